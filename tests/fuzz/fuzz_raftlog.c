/*
 * Fuzz target for the raft log's meta record decoders (storage/raftlog.h): the hard
 * state and the snapshot meta record, the two records raftlog_load reads from STORE_T_META
 * before trusting anything else. (Log entry records are raft/codec.h's, fuzzed by
 * fuzz_raft_entry.)
 *
 * The first input byte picks the decoder (even: hard state, odd: snapshot); the rest is
 * the record. Arbitrary bytes must never crash a decoder or make it read out of bounds,
 * and it may only fail with the codes raftlog.h documents, leaving its output zeroed. A
 * record that decodes re-encodes to the input byte for byte. Each input is also tried
 * "sealed" (format byte and CRC made right) so mutations reach the checks behind the
 * checksum.
 */
#include "base/assert.h"
#include "base/buf.h"
#include "base/constants.h"
#include "base/crc32c.h"
#include "base/mem.h"
#include "storage/raftlog.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool is_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

static void check_hard_state(const uint8_t *data, size_t size)
{
    struct raft_hard_state hs;
    int rc = raftlog_hard_state_decode(data, size, &hs);
    if (rc) {
        ASPEN_ASSERT(rc == ASPEN_E_TRUNCATED || rc == ASPEN_E_UNSUPPORTED ||
                     rc == ASPEN_E_CORRUPT || rc == ASPEN_E_MALFORMED);
        ASPEN_ASSERT(is_zero(&hs, sizeof(hs)));
        return;
    }
    uint8_t again[RAFTLOG_HARD_STATE_BYTES];
    raftlog_hard_state_encode(&hs, again);
    ASPEN_ASSERT(size == sizeof(again) && memcmp(again, data, size) == 0);
}

static void check_snapshot(const uint8_t *data, size_t size)
{
    struct raft_snapshot_meta m;
    int rc = raftlog_snapshot_decode(data, size, &m);
    if (rc) {
        ASPEN_ASSERT(rc == ASPEN_E_TRUNCATED || rc == ASPEN_E_UNSUPPORTED ||
                     rc == ASPEN_E_CORRUPT || rc == ASPEN_E_MALFORMED || rc == ASPEN_E_TOO_LARGE);
        ASPEN_ASSERT(is_zero(&m, sizeof(m)));
        return;
    }
    ASPEN_ASSERT(m.index >= 1 && m.term >= 1);
    struct buf out;
    buf_init(&out, ASPEN_STORAGE_MAX_META_RECORD_BYTES);
    rc = raftlog_snapshot_encode(&m, &out);
    ASPEN_ASSERT(rc == 0);
    ASPEN_ASSERT(slice_eq(buf_slice(&out), slice_make(data, size)));
    buf_release(&out);
}

static void check(bool is_snapshot, const uint8_t *data, size_t size)
{
    if (is_snapshot)
        check_snapshot(data, size);
    else
        check_hard_state(data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool is_snapshot = data[0] & 1;
    data++;
    size--;
    check(is_snapshot, data, size);
    if (size < 5 || size > ASPEN_STORAGE_MAX_META_RECORD_BYTES)
        return 0;
    uint8_t *sealed = mem_alloc(size);
    ASPEN_ASSERT(sealed != NULL);
    memcpy(sealed, data, size);
    sealed[0] = RAFTLOG_FORMAT;
    be32_store(sealed + size - 4, crc32c(sealed, size - 4));
    check(is_snapshot, sealed, size);
    mem_free(sealed);
    return 0;
}
