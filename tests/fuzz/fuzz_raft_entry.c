/*
 * Fuzz target for the raft entry record decoder (the storage format of one log entry).
 *
 * Arbitrary bytes must never crash raft_entry_decode or make it read out of bounds, and
 * it may only fail with the codes codec.h documents. A record that decodes re-encodes to
 * the input byte for byte and decodes again to the same entry. As for messages, each
 * input is also tried "sealed" (magic, version, length field and CRC made consistent) so
 * mutations reach the checks behind the checksum.
 */
#include "base/assert.h"
#include "base/buf.h"
#include "base/crc32c.h"
#include "base/mem.h"
#include "raft/codec.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *data, size_t size)
{
    struct raft_entry e;
    int rc = raft_entry_decode(data, size, &e);
    if (rc) {
        ASPEN_ASSERT(rc == ASPEN_E_TRUNCATED || rc == ASPEN_E_MALFORMED || rc == ASPEN_E_CORRUPT ||
                     rc == ASPEN_E_TOO_LARGE || rc == ASPEN_E_UNSUPPORTED);
        ASPEN_ASSERT(e.len == 0 && e.data == NULL);
        return;
    }
    ASPEN_ASSERT(raft_entry_encoded_size(&e) == size);
    ASPEN_ASSERT(e.len == 0 ? e.data == NULL : e.data == data + RAFT_ENTRY_HEADER_BYTES);
    struct buf out;
    buf_init(&out, size);
    rc = raft_entry_encode(&e, &out);
    ASPEN_ASSERT(rc == 0);
    ASPEN_ASSERT(slice_eq(buf_slice(&out), slice_make(data, size)));
    struct raft_entry again;
    rc = raft_entry_decode(out.data, out.len, &again);
    ASPEN_ASSERT(rc == 0);
    ASPEN_ASSERT(again.term == e.term && again.index == e.index && again.type == e.type &&
                 again.len == e.len && (e.len == 0 || !memcmp(again.data, e.data, e.len)));
    buf_release(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(data, size);
    if (size < RAFT_ENTRY_OVERHEAD_BYTES ||
        size - RAFT_ENTRY_OVERHEAD_BYTES > ASPEN_MAX_REQUEST_BYTES)
        return 0;
    uint8_t *sealed = mem_alloc(size);
    ASPEN_ASSERT(sealed != NULL);
    memcpy(sealed, data, size);
    sealed[0] = RAFT_CODEC_MAGIC0;
    sealed[1] = RAFT_CODEC_MAGIC_ENTRY;
    sealed[2] = RAFT_CODEC_VERSION;
    be32_store(sealed + 20, (uint32_t)(size - RAFT_ENTRY_OVERHEAD_BYTES));
    be32_store(sealed + size - 4, crc32c(sealed, size - 4));
    check(sealed, size);
    mem_free(sealed);
    return 0;
}
