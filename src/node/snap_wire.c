/*
 * The snapshot-transfer protocol's frames (format in node/snap.h): pure encoding and
 * decoding, kept apart from the transfers so the decoder can be fuzzed alone.
 */
#include "node/snap.h"

#include "base/constants.h"
#include "raft/codec.h"

#include <aspen/error.h>
#include <string.h>

static bool has_seq(uint8_t type)
{
    return type == SNAP_CHUNK || type == SNAP_ACK;
}

static bool has_code(uint8_t type)
{
    return type == SNAP_ABORT || type == SNAP_RESULT;
}

static bool has_body(uint8_t type)
{
    return type == SNAP_CHUNK || type == SNAP_DONE;
}

int snap_frame_encode(const struct snap_frame *f, struct buf *out)
{
    if (f->type < SNAP_CHUNK || f->type > SNAP_RESULT || f->code > 0)
        return ASPEN_E_INVALID;
    int rc = buf_append_u8(out, f->type);
    if (!rc)
        rc = buf_append_be64(out, f->id);
    if (!rc && has_seq(f->type))
        rc = buf_append_be32(out, f->seq);
    if (!rc && has_code(f->type))
        rc = buf_append_be32(out, (uint32_t) - (int64_t)f->code);
    if (!rc && has_body(f->type))
        rc = buf_append_slice(out, f->body);
    return rc;
}

int snap_frame_decode(struct slice data, struct snap_frame *out)
{
    memset(out, 0, sizeof(*out));
    if (data.len < SNAP_FRAME_HEADER_BYTES)
        return ASPEN_E_MALFORMED;
    out->type = data.ptr[0];
    if (out->type < SNAP_CHUNK || out->type > SNAP_RESULT)
        return ASPEN_E_MALFORMED;
    out->id = be64_load(data.ptr + 1);
    size_t at = SNAP_FRAME_HEADER_BYTES;
    if (has_seq(out->type) || has_code(out->type)) {
        if (data.len - at < 4)
            return ASPEN_E_MALFORMED;
        uint32_t v = be32_load(data.ptr + at);
        at += 4;
        if (has_seq(out->type)) {
            out->seq = v;
        } else {
            /* A code travels negated; 0 is success, and nothing above INT32_MAX fits. */
            if (v > (uint32_t)INT32_MAX)
                return ASPEN_E_MALFORMED;
            out->code = -(int32_t)v;
        }
    }
    size_t rest = data.len - at;
    if (!has_body(out->type))
        return rest == 0 ? 0 : ASPEN_E_MALFORMED;
    if (rest == 0 || (out->type == SNAP_CHUNK && rest > ASPEN_SNAPSHOT_CHUNK_MAX_BYTES))
        return ASPEN_E_MALFORMED;
    out->body = slice_make(data.ptr + at, rest);
    return 0;
}

bool snap_meta_equal(const struct raft_snapshot_meta *a, const struct raft_snapshot_meta *b)
{
    /* Compared by encoding: the configuration's arrays hold garbage past their counts. */
    struct buf ea, eb;
    buf_init(&ea, 4 * ASPEN_KIB);
    buf_init(&eb, 4 * ASPEN_KIB);
    bool same = raft_snapshot_meta_encode(a, &ea) == 0 && raft_snapshot_meta_encode(b, &eb) == 0 &&
                ea.len == eb.len && memcmp(ea.data, eb.data, ea.len) == 0;
    buf_release(&ea);
    buf_release(&eb);
    return same;
}
