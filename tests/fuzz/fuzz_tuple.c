/*
 * Fuzz target for the tuple decoder.
 *
 * Arbitrary bytes must never crash tuple_unpack or make it read out of bounds. When
 * they do decode, the encoding must be canonical: packing the decoded items reproduces
 * the input byte for byte, and decoding that again gives items that compare equal.
 * The arena has a hard limit (as a server's would) and is reset for every input.
 */
#include "base/assert.h"
#include "base/buf.h"
#include "base/mem.h"
#include "base/tuple.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decoded items take a few dozen bytes per input byte at worst; 16 MiB covers the
 * replay driver's 4 KiB inputs and bounds what libFuzzer's larger ones can take. */
#define FUZZ_ARENA_LIMIT (16u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct arena first, second;
    static bool ready;
    if (!ready) {
        arena_init(&first, 1 << 16, FUZZ_ARENA_LIMIT);
        arena_init(&second, 1 << 16, FUZZ_ARENA_LIMIT);
        ready = true;
    }
    arena_reset(&first);
    arena_reset(&second);

    struct tuple_item *items = NULL;
    size_t n = 0;
    int rc = tuple_unpack(slice_make(data, size), &first, &items, &n);
    if (rc) {
        ASPEN_ASSERT(rc == ASPEN_E_TRUNCATED || rc == ASPEN_E_MALFORMED ||
                     rc == ASPEN_E_UNSUPPORTED || rc == ASPEN_E_TOO_LARGE);
        return 0;
    }
    struct buf out;
    buf_init(&out, size + 1);
    rc = tuple_pack(&out, items, n);
    ASPEN_ASSERT(rc == 0);
    ASPEN_ASSERT(slice_eq(buf_slice(&out), slice_make(data, size)));

    struct tuple_item *again = NULL;
    size_t n_again = 0;
    rc = tuple_unpack(buf_slice(&out), &second, &again, &n_again);
    ASPEN_ASSERT(rc == 0);
    ASPEN_ASSERT(tuple_cmp(items, n, again, n_again) == 0);
    ASPEN_ASSERT(tuple_cmp(again, n_again, items, n) == 0);
    buf_release(&out);
    return 0;
}
