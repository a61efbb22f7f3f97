/*
 * Fuzz target for the KV command decoder (kv/cmd.c: what every Raft log entry of the KV
 * state machine carries).
 *
 * Arbitrary bytes must never crash kv_cmd_decode or make it read out of bounds, and it
 * may only fail with the codes kv.h documents. A command that decodes must re-encode
 * (the encoder accepts everything the decoder does), and since the decoder accepts only
 * canonical bytes the re-encoding is the input itself; decoding it again succeeds too.
 * This holds for every kind alike, the cluster registry's included (their seeds in
 * corpus/kv_cmd are written by tests/unit/test_kv_cluster.c's test_fuzz_seeds).
 */
#include "base/assert.h"
#include "base/buf.h"
#include "base/mem.h"
#include "kv/kv.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct arena a;
    arena_init(&a, 4096, 1u << 24);
    struct kv_cmd cmd;
    int rc = kv_cmd_decode(slice_make(data, size), &a, &cmd);
    if (rc) {
        ASPEN_ASSERT(rc == ASPEN_E_TRUNCATED || rc == ASPEN_E_MALFORMED ||
                     rc == ASPEN_E_TOO_LARGE || rc == ASPEN_E_NOMEM);
        arena_release(&a);
        return 0;
    }
    struct buf out;
    buf_init(&out, ASPEN_MAX_REQUEST_BYTES);
    rc = kv_cmd_encode(&cmd, &out);
    ASPEN_ASSERT(rc == 0);
    ASPEN_ASSERT(slice_eq(buf_slice(&out), slice_make(data, size)));
    struct kv_cmd again;
    rc = kv_cmd_decode(buf_slice(&out), &a, &again);
    ASPEN_ASSERT(rc == 0 && again.kind == cmd.kind);
    buf_release(&out);
    arena_release(&a);
    return 0;
}
