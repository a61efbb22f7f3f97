/*
 * The snapshot stream (kv/snapshot.h): writer over a read transaction, reader/installer
 * over a write transaction.
 *
 * The writer walks the streamed tables with one cursor, packing whole records into DATA
 * chunks; a record that does not fit the chunk being built stays "current" (its slices
 * point into the read transaction, valid until it ends) and opens the next chunk. The
 * reader trusts nothing before the CRC, then checks the stream's shape (sequence numbers
 * without gap or repeat, HEADER first, TRAILER last) and each record (a streamed table,
 * "kv." meta keys only, strictly ascending order, so a stream installs exactly one state),
 * and at the end the trailer's count, size and BLAKE3 against what it installed.
 */
#include "kv/snapshot.h"

#include "base/assert.h"
#include "base/constants.h"
#include "base/crc32c.h"
#include "raft/codec.h"

#include <string.h>

static const uint8_t magic[4] = {'A', 'S', 'N', 'P'};

/* The tables in stream order; the last is STORE_T_META, restricted to "kv." keys. */
static const uint8_t streamed[] = {STORE_T_KV_REV,    STORE_T_KV_INDEX, STORE_T_LEASE,
                                   STORE_T_LEASE_KEY, STORE_T_CLUSTER,  STORE_T_META};
#define N_STREAMED  (sizeof(streamed) / sizeof(streamed[0]))
#define META_PREFIX "kv."

/* Record framing: table, key length, value length. */
#define RECORD_OVERHEAD (1 + 4 + 4)

enum { PHASE_HEADER, PHASE_DATA, PHASE_TRAILER, PHASE_DONE };

_Static_assert(ASPEN_SNAPSHOT_CHUNK_MAX_BYTES >= ASPEN_SNAPSHOT_CHUNK_BYTES +
                                                     ASPEN_SNAPSHOT_RECORD_MAX_BYTES +
                                                     KV_SNAPSHOT_OVERHEAD_BYTES,
               "a chunk over its target by one record must fit the chunk maximum");
_Static_assert(RECORD_OVERHEAD + STORE_MAX_KEY < ASPEN_SNAPSHOT_RECORD_MAX_BYTES,
               "a record's framing and key fit a record");

static bool is_meta(uint8_t table)
{
    return table == STORE_T_META;
}

static struct slice meta_prefix(void)
{
    return slice_make(META_PREFIX, sizeof(META_PREFIX) - 1);
}

/* ---------------------------------------------------------------------------------------
 * Chunk framing
 * ------------------------------------------------------------------------------------- */

int kv_snapshot_chunk_decode(struct slice data, struct kv_snapshot_chunk *out)
{
    memset(out, 0, sizeof(*out));
    if (data.len < KV_SNAPSHOT_OVERHEAD_BYTES)
        return ASPEN_E_MALFORMED;
    const uint8_t *p = data.ptr;
    if (memcmp(p, magic, sizeof(magic)) != 0 || p[4] != KV_SNAPSHOT_VERSION)
        return ASPEN_E_MALFORMED;
    uint32_t len = be32_load(p + 10);
    if (len > ASPEN_SNAPSHOT_CHUNK_MAX_BYTES || len != data.len - KV_SNAPSHOT_OVERHEAD_BYTES)
        return ASPEN_E_MALFORMED;
    if (crc32c(p, data.len - 4) != be32_load(p + data.len - 4))
        return ASPEN_E_CORRUPT;
    if (p[5] < KV_SNAPSHOT_HEADER || p[5] > KV_SNAPSHOT_TRAILER)
        return ASPEN_E_MALFORMED;
    out->kind = p[5];
    out->seq = be32_load(p + 6);
    out->payload = slice_make(p + KV_SNAPSHOT_HEADER_BYTES, len);
    return 0;
}

/* Starts a chunk in b: the fixed header with a length to be patched. */
static int chunk_start(struct buf *b, uint8_t kind, uint32_t seq)
{
    buf_clear(b);
    uint8_t h[KV_SNAPSHOT_HEADER_BYTES];
    memcpy(h, magic, sizeof(magic));
    h[4] = KV_SNAPSHOT_VERSION;
    h[5] = kind;
    be32_store(h + 6, seq);
    be32_store(h + 10, 0);
    return buf_append(b, h, sizeof(h));
}

/* Patches the length and appends the CRC. */
static int chunk_finish(struct buf *b)
{
    size_t len = b->len - KV_SNAPSHOT_HEADER_BYTES;
    ASPEN_ASSERT(len <= ASPEN_SNAPSHOT_CHUNK_MAX_BYTES);
    be32_store(b->data + 10, (uint32_t)len);
    return buf_append_be32(b, crc32c(b->data, b->len));
}

/* ---------------------------------------------------------------------------------------
 * Writer
 * ------------------------------------------------------------------------------------- */

void kv_snapshot_writer_init(struct kv_snapshot_writer *w, struct store_txn *txn,
                             const struct raft_snapshot_meta *meta)
{
    memset(w, 0, sizeof(*w));
    w->txn = txn;
    w->meta = *meta;
    w->phase = PHASE_HEADER;
    hash_init(&w->hash);
}

void kv_snapshot_writer_release(struct kv_snapshot_writer *w)
{
    store_cursor_close(w->cur);
    w->cur = NULL;
}

/* Loads the next record into w->rec_*, opening the next table's cursor as needed. Sets
 * has_record false at the end of the last table. */
static int advance(struct kv_snapshot_writer *w, bool first_in_table)
{
    for (;;) {
        if (w->table >= N_STREAMED) {
            w->has_record = false;
            return 0;
        }
        uint8_t tb = streamed[w->table];
        struct slice k, v;
        int rc;
        if (!w->cur) {
            rc = store_cursor_open(w->txn, (enum store_table)tb, &w->cur);
            if (rc)
                return rc;
            first_in_table = true;
        }
        if (first_in_table)
            rc = store_seek(w->cur, is_meta(tb) ? meta_prefix() : slice_make(NULL, 0), &k, &v);
        else
            rc = store_next(w->cur, &k, &v);
        if (rc == 0 && is_meta(tb) && !slice_has_prefix(k, meta_prefix()))
            rc = ASPEN_E_NOT_FOUND; /* past the "kv." records */
        if (rc == 0) {
            w->rec_key = k;
            w->rec_val = v;
            w->has_record = true;
            return 0;
        }
        if (rc != ASPEN_E_NOT_FOUND)
            return rc;
        store_cursor_close(w->cur);
        w->cur = NULL;
        w->table++;
    }
}

static int write_header(struct kv_snapshot_writer *w, struct buf *chunk)
{
    int rc = chunk_start(chunk, KV_SNAPSHOT_HEADER, w->seq);
    if (!rc)
        rc = buf_append_be32(chunk, KV_SNAPSHOT_FORMAT);
    if (!rc)
        rc = raft_snapshot_meta_encode(&w->meta, chunk);
    if (!rc)
        rc = chunk_finish(chunk);
    if (rc)
        return rc;
    return advance(w, true);
}

static int write_data(struct kv_snapshot_writer *w, struct buf *chunk)
{
    int rc = chunk_start(chunk, KV_SNAPSHOT_DATA, w->seq);
    if (rc)
        return rc;
    size_t payload = 0;
    while (w->has_record) {
        size_t size = RECORD_OVERHEAD + w->rec_key.len + w->rec_val.len;
        if (size > ASPEN_SNAPSHOT_RECORD_MAX_BYTES)
            return ASPEN_E_TOO_LARGE;
        /* Whole records only; a chunk's first record goes in whatever its size. */
        if (payload > 0 && payload + size > ASPEN_SNAPSHOT_CHUNK_BYTES)
            break;
        if (w->bytes + payload + size > ASPEN_MAX_SNAPSHOT_BYTES)
            return ASPEN_E_TOO_LARGE;
        size_t at = chunk->len;
        rc = buf_append_u8(chunk, streamed[w->table]);
        if (!rc)
            rc = buf_append_be32(chunk, (uint32_t)w->rec_key.len);
        if (!rc)
            rc = buf_append_slice(chunk, w->rec_key);
        if (!rc)
            rc = buf_append_be32(chunk, (uint32_t)w->rec_val.len);
        if (!rc)
            rc = buf_append_slice(chunk, w->rec_val);
        if (rc)
            return rc;
        hash_update(&w->hash, chunk->data + at, size);
        payload += size;
        w->records++;
        rc = advance(w, false);
        if (rc)
            return rc;
    }
    w->bytes += payload;
    return chunk_finish(chunk);
}

static int write_trailer(struct kv_snapshot_writer *w, struct buf *chunk)
{
    uint8_t digest[HASH_BYTES];
    hash_final(&w->hash, digest, sizeof(digest));
    int rc = chunk_start(chunk, KV_SNAPSHOT_TRAILER, w->seq);
    if (!rc)
        rc = buf_append_be64(chunk, w->records);
    if (!rc)
        rc = buf_append_be64(chunk, w->bytes);
    if (!rc)
        rc = buf_append(chunk, digest, sizeof(digest));
    if (!rc)
        rc = chunk_finish(chunk);
    return rc;
}

int kv_snapshot_writer_next(struct kv_snapshot_writer *w, struct buf *chunk)
{
    if (w->failed)
        return w->failed;
    if (w->phase == PHASE_DONE)
        return ASPEN_E_NOT_FOUND;
    if (chunk->max < ASPEN_SNAPSHOT_CHUNK_MAX_BYTES)
        return ASPEN_E_TOO_LARGE;
    int rc;
    switch (w->phase) {
    case PHASE_HEADER:
        rc = write_header(w, chunk);
        if (!rc)
            w->phase = w->has_record ? PHASE_DATA : PHASE_TRAILER;
        break;
    case PHASE_DATA:
        rc = write_data(w, chunk);
        if (!rc && !w->has_record)
            w->phase = PHASE_TRAILER;
        break;
    default:
        rc = write_trailer(w, chunk);
        if (!rc)
            w->phase = PHASE_DONE;
        break;
    }
    if (rc) {
        w->failed = rc;
        buf_clear(chunk);
        kv_snapshot_writer_release(w);
        return rc;
    }
    w->seq++;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Reader
 * ------------------------------------------------------------------------------------- */

static int clear_meta(struct store_txn *txn)
{
    struct store_cursor *c;
    int rc = store_cursor_open(txn, STORE_T_META, &c);
    if (rc)
        return rc;
    struct slice k, v;
    rc = store_seek(c, meta_prefix(), &k, &v);
    while (rc == 0 && slice_has_prefix(k, meta_prefix()))
        rc = store_cursor_del(c, &k, &v);
    store_cursor_close(c);
    return rc == ASPEN_E_NOT_FOUND || rc == 0 ? 0 : rc;
}

int kv_snapshot_reader_begin(struct kv_snapshot_reader *r, struct store_txn *txn)
{
    memset(r, 0, sizeof(*r));
    r->txn = txn;
    r->phase = PHASE_HEADER;
    hash_init(&r->hash);
    for (size_t i = 0; txn && i < N_STREAMED; i++) {
        int rc = is_meta(streamed[i]) ? clear_meta(txn)
                                      : store_clear(txn, (enum store_table)streamed[i]);
        if (rc) {
            r->failed = rc;
            return rc;
        }
    }
    return 0;
}

/* Position of table tb in the stream order, or N_STREAMED. */
static size_t table_rank(uint8_t tb)
{
    for (size_t i = 0; i < N_STREAMED; i++)
        if (streamed[i] == tb)
            return i;
    return N_STREAMED;
}

static int read_header(struct kv_snapshot_reader *r, struct slice payload)
{
    if (payload.len < 4 || be32_load(payload.ptr) != KV_SNAPSHOT_FORMAT)
        return ASPEN_E_MALFORMED;
    if (raft_snapshot_meta_decode(payload.ptr + 4, payload.len - 4, &r->meta) != 0)
        return ASPEN_E_MALFORMED;
    return 0;
}

static int read_record(struct kv_snapshot_reader *r, struct reader *rd)
{
    uint8_t tb;
    uint32_t klen, vlen;
    struct slice k, v;
    if (reader_u8(rd, &tb) || reader_be32(rd, &klen) || reader_bytes(rd, klen, &k) ||
        reader_be32(rd, &vlen) || reader_bytes(rd, vlen, &v))
        return ASPEN_E_MALFORMED;
    size_t rank = table_rank(tb);
    if (rank == N_STREAMED || klen == 0 || klen > STORE_MAX_KEY)
        return ASPEN_E_MALFORMED;
    if (is_meta(tb) && !slice_has_prefix(k, meta_prefix()))
        return ASPEN_E_MALFORMED;
    /* Strictly ascending (table rank, key): no record twice, one order only. */
    if (r->records > 0) {
        size_t last_rank = table_rank(r->last_table);
        if (rank < last_rank ||
            (rank == last_rank && slice_cmp(k, slice_make(r->last_key, r->last_key_len)) <= 0))
            return ASPEN_E_MALFORMED;
    }
    int rc = r->txn ? store_put(r->txn, (enum store_table)tb, k, v) : 0;
    if (rc)
        return rc;
    r->last_table = tb;
    r->last_key_len = klen;
    memcpy(r->last_key, k.ptr, klen);
    r->records++;
    return 0;
}

static int read_data(struct kv_snapshot_reader *r, struct slice payload)
{
    if (payload.len == 0)
        return ASPEN_E_MALFORMED; /* the writer never sends an empty DATA chunk */
    if (r->bytes + payload.len > ASPEN_MAX_SNAPSHOT_BYTES)
        return ASPEN_E_TOO_LARGE;
    struct reader rd = reader_make(payload);
    while (rd.left > 0) {
        int rc = read_record(r, &rd);
        if (rc)
            return rc;
    }
    r->bytes += payload.len;
    hash_update(&r->hash, payload.ptr, payload.len);
    return 0;
}

static int read_trailer(struct kv_snapshot_reader *r, struct slice payload)
{
    if (payload.len != KV_SNAPSHOT_TRAILER_BYTES)
        return ASPEN_E_MALFORMED;
    uint8_t digest[HASH_BYTES];
    hash_final(&r->hash, digest, sizeof(digest));
    if (be64_load(payload.ptr) != r->records || be64_load(payload.ptr + 8) != r->bytes ||
        memcmp(payload.ptr + 16, digest, HASH_BYTES) != 0)
        return ASPEN_E_CORRUPT;
    return 0;
}

int kv_snapshot_reader_chunk(struct kv_snapshot_reader *r, struct slice data)
{
    if (r->failed)
        return r->failed;
    struct kv_snapshot_chunk c;
    int rc = kv_snapshot_chunk_decode(data, &c);
    if (!rc && (c.seq != r->next_seq || r->phase == PHASE_DONE))
        rc = ASPEN_E_MALFORMED;
    if (!rc && (r->phase == PHASE_HEADER) != (c.kind == KV_SNAPSHOT_HEADER))
        rc = ASPEN_E_MALFORMED;
    if (!rc) {
        switch (c.kind) {
        case KV_SNAPSHOT_HEADER:
            rc = read_header(r, c.payload);
            r->phase = PHASE_DATA;
            break;
        case KV_SNAPSHOT_DATA:
            rc = read_data(r, c.payload);
            break;
        default:
            rc = read_trailer(r, c.payload);
            r->phase = PHASE_DONE;
            break;
        }
    }
    if (rc) {
        r->failed = rc;
        return rc;
    }
    r->next_seq++;
    return 0;
}

int kv_snapshot_reader_end(struct kv_snapshot_reader *r, struct raft_snapshot_meta *meta_out)
{
    if (r->failed)
        return r->failed;
    if (r->phase != PHASE_DONE)
        return ASPEN_E_MALFORMED;
    *meta_out = r->meta;
    return 0;
}
