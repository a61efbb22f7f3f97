/*
 * Fuzz target for the peer transport's frame reassembly (net/frame.h).
 *
 * The first input byte picks a frame limit and a chunking pattern; the rest is the byte
 * stream as it would leave TLS. Whatever the bytes, the reader must not crash or read out
 * of bounds, and cutting the stream into chunks must not change what comes out: the
 * frames (count, lengths, bytes) and the final verdict equal those of a plain one-pass
 * parse written independently here. The reader's receive buffer never exceeds the limit.
 */
#include "base/assert.h"
#include "base/mem.h"
#include "net/frame.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
    const uint8_t *expect; /* the reference frames' payloads, concatenated */
    size_t expect_len;
    size_t at;
    size_t frames;
};

static int check_frame(void *ctx, struct slice f)
{
    struct seen *s = ctx;
    ASPEN_ASSERT(s->at + f.len <= s->expect_len);
    ASPEN_ASSERT(f.len == 0 || memcmp(s->expect + s->at, f.ptr, f.len) == 0);
    s->at += f.len;
    s->frames++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    static const size_t limits[4] = {0, 16, 300, 5000};
    size_t limit = limits[data[0] & 3];
    unsigned pattern = data[0] >> 2;
    const uint8_t *in = data + 1;
    size_t len = size - 1;

    /* Reference: frames whose payload is complete; a length above the limit stops. */
    uint8_t *expect = mem_alloc(len ? len : 1);
    ASPEN_ASSERT(expect);
    size_t expect_len = 0, expect_frames = 0, p = 0;
    bool too_large = false;
    while (len - p >= NET_FRAME_HEADER_BYTES) {
        uint32_t n = be32_load(in + p);
        if (n > limit) {
            too_large = true;
            break;
        }
        if (len - p - NET_FRAME_HEADER_BYTES < n)
            break;
        memcpy(expect + expect_len, in + p + NET_FRAME_HEADER_BYTES, n);
        expect_len += n;
        expect_frames++;
        p += NET_FRAME_HEADER_BYTES + n;
    }

    struct net_frame_reader r;
    net_frame_reader_init(&r, limit, 64);
    struct seen s = {.expect = expect, .expect_len = expect_len};
    int rc = 0;
    size_t off = 0;
    for (unsigned i = 0; off < len; i++) {
        /* Chunk sizes 1..(pattern+1), varying with the position. */
        size_t chunk = 1 + (size_t)((pattern * 7 + i * 13) % (pattern + 1));
        if (chunk > len - off)
            chunk = len - off;
        rc = net_frame_reader_feed(&r, slice_make(in + off, chunk), check_frame, &s);
        off += chunk;
        ASPEN_ASSERT(r.body_cap <= limit);
        if (rc != 0)
            break;
    }
    ASPEN_ASSERT(rc == 0 || rc == ASPEN_E_TOO_LARGE);
    ASPEN_ASSERT((rc == ASPEN_E_TOO_LARGE) == too_large);
    ASPEN_ASSERT(s.frames == expect_frames);
    ASPEN_ASSERT(s.at == expect_len);
    net_frame_reader_release(&r);
    mem_free(expect);
    return 0;
}
