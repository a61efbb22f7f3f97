/*
 * Fuzz target for the snapshot stream's decoder (kv/snapshot.h): the chunk framing and
 * the installer that parses chunk payloads into store writes.
 *
 * Arbitrary bytes must never crash kv_snapshot_chunk_decode or the reader, never make
 * them read out of bounds, and may only fail with the codes snapshot.h documents. Each
 * input is tried three ways: as a bare chunk; as the first chunk of a stream (where only
 * a HEADER is acceptable); and "sealed" — magic, version, sequence, length and CRC made
 * consistent — as the second chunk after a valid header, so mutations reach the record
 * parser and the trailer check behind the checksum. Installs run on the memory backend
 * and are always aborted.
 */
#include "base/assert.h"
#include "base/buf.h"
#include "base/crc32c.h"
#include "base/mem.h"
#include "kv/snapshot.h"
#include "raft/codec.h"
#include "storage/store_mem.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool allowed(int rc)
{
    return rc == 0 || rc == ASPEN_E_MALFORMED || rc == ASPEN_E_CORRUPT || rc == ASPEN_E_TOO_LARGE;
}

/* A valid HEADER chunk (sequence 0) in b. */
static void header_chunk(struct buf *b)
{
    struct raft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.index = 10;
    meta.term = 2;
    meta.config.n_voters = 1;
    meta.config.voters[0] = 1;
    uint8_t h[KV_SNAPSHOT_HEADER_BYTES] = {
        'A', 'S', 'N', 'P', KV_SNAPSHOT_VERSION, KV_SNAPSHOT_HEADER};
    ASPEN_ASSERT(buf_append(b, h, sizeof(h)) == 0);
    ASPEN_ASSERT(buf_append_be32(b, KV_SNAPSHOT_FORMAT) == 0);
    ASPEN_ASSERT(raft_snapshot_meta_encode(&meta, b) == 0);
    be32_store(b->data + 10, (uint32_t)(b->len - KV_SNAPSHOT_HEADER_BYTES));
    ASPEN_ASSERT(buf_append_be32(b, crc32c(b->data, b->len)) == 0);
}

/* Feeds chunks[0..n) to a reader over a fresh memory store, then ends it. */
static void install(const struct slice *chunks, size_t n)
{
    struct store *s = NULL;
    struct store_mem_options o = {0};
    ASPEN_ASSERT(store_mem_open(&s, &o) == 0);
    struct store_txn *t;
    ASPEN_ASSERT(store_begin(s, true, &t) == 0);
    struct kv_snapshot_reader r;
    ASPEN_ASSERT(kv_snapshot_reader_begin(&r, t) == 0);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = kv_snapshot_reader_chunk(&r, chunks[i]);
        ASPEN_ASSERT(allowed(rc));
    }
    struct raft_snapshot_meta meta;
    int end = kv_snapshot_reader_end(&r, &meta);
    ASPEN_ASSERT(allowed(end));
    ASPEN_ASSERT(rc == 0 || end == rc); /* errors are sticky */
    store_abort(t);
    store_close(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slice in = slice_make(data, size);
    struct kv_snapshot_chunk c;
    int rc = kv_snapshot_chunk_decode(in, &c);
    ASPEN_ASSERT(rc == 0 || rc == ASPEN_E_MALFORMED || rc == ASPEN_E_CORRUPT);
    if (rc == 0) {
        ASPEN_ASSERT(c.kind >= KV_SNAPSHOT_HEADER && c.kind <= KV_SNAPSHOT_TRAILER);
        ASPEN_ASSERT(c.payload.ptr == data + KV_SNAPSHOT_HEADER_BYTES &&
                     c.payload.len + KV_SNAPSHOT_OVERHEAD_BYTES == size);
    }
    install(&in, 1);

    if (size < KV_SNAPSHOT_OVERHEAD_BYTES ||
        size - KV_SNAPSHOT_OVERHEAD_BYTES > ASPEN_SNAPSHOT_CHUNK_MAX_BYTES)
        return 0;
    uint8_t *sealed = mem_alloc(size);
    ASPEN_ASSERT(sealed != NULL);
    memcpy(sealed, data, size);
    memcpy(sealed, "ASNP", 4);
    sealed[4] = KV_SNAPSHOT_VERSION;
    be32_store(sealed + 6, 1);
    be32_store(sealed + 10, (uint32_t)(size - KV_SNAPSHOT_OVERHEAD_BYTES));
    be32_store(sealed + size - 4, crc32c(sealed, size - 4));
    struct buf header;
    buf_init(&header, 4096);
    header_chunk(&header);
    struct slice chunks[2] = {buf_slice(&header), slice_make(sealed, size)};
    install(chunks, 2);
    buf_release(&header);
    mem_free(sealed);
    return 0;
}
