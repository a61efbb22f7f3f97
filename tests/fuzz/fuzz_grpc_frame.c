/*
 * Fuzz target for gRPC's pure pieces (rpc/grpc_frame.h): the length-prefixed message
 * parser, grpc-timeout and grpc-message encoding.
 *
 * The first input byte picks a message limit and a chunking pattern; the rest is a
 * stream's DATA bytes as HTTP/2 would deliver them. Whatever the bytes, the parser must
 * not crash or over-read, and cutting the stream into chunks must not change what comes
 * out: the messages (count, bytes) and the verdict (the error status, or whether the
 * stream ended between messages) equal those of a one-pass reading written independently
 * here. It never buffers more than the limit. The same bytes are also tried as a
 * grpc-timeout value (accepted only in the 1-8 digits + unit form) and must survive a
 * grpc-message encode / decode round trip.
 */
#include "base/assert.h"
#include "base/mem.h"
#include "rpc/grpc_frame.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_timeout(const uint8_t *in, size_t len)
{
    uint64_t ms = 0;
    int rc = grpc_timeout_parse(slice_make(in, len), &ms);
    bool want_ok = len >= 2 && len <= 9 && strchr("HMSmun", in[len - 1]) && in[len - 1] != 0;
    for (size_t i = 0; want_ok && i + 1 < len; i++)
        want_ok = in[i] >= '0' && in[i] <= '9';
    ASPEN_ASSERT((rc == 0) == want_ok);
    ASPEN_ASSERT(rc == 0 || rc == ASPEN_E_MALFORMED);
}

static void check_message_encoding(const uint8_t *in, size_t len)
{
    struct buf b;
    buf_init(&b, 3 * len + 1);
    ASPEN_ASSERT(grpc_message_encode(slice_make(in, len), &b) == 0);
    for (size_t i = 0; i < b.len; i++)
        ASPEN_ASSERT(b.data[i] >= 0x20 && b.data[i] <= 0x7e);
    uint8_t *back = mem_alloc(b.len + 1);
    ASPEN_ASSERT(back);
    size_t n = grpc_message_decode(buf_slice(&b), back);
    ASPEN_ASSERT(n == len && (len == 0 || memcmp(back, in, len) == 0));
    /* Decoding arbitrary text never writes more than it reads. */
    n = grpc_message_decode(slice_make(in, len), back);
    ASPEN_ASSERT(n <= len);
    mem_free(back);
    buf_release(&b);
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

    check_timeout(in, len < 12 ? len : 12);
    check_message_encoding(in, len);

    /* Reference: whole messages in order; the first bad prefix decides the verdict. */
    uint8_t *expect = mem_alloc(len ? len : 1);
    ASPEN_ASSERT(expect);
    size_t expect_len = 0, expect_msgs = 0, p = 0;
    int expect_status = 0;
    for (;;) {
        if (len - p < GRPC_FRAME_PREFIX_BYTES)
            break;
        uint8_t flag = in[p];
        uint32_t n = be32_load(in + p + 1);
        if (flag == 1) {
            expect_status = GRPC_STATUS_UNIMPLEMENTED;
            break;
        }
        if (flag != 0) {
            expect_status = GRPC_STATUS_INTERNAL;
            break;
        }
        if (n > limit) {
            expect_status = GRPC_STATUS_RESOURCE_EXHAUSTED;
            break;
        }
        if (len - p - GRPC_FRAME_PREFIX_BYTES < n)
            break;
        memcpy(expect + expect_len, in + p + GRPC_FRAME_PREFIX_BYTES, n);
        expect_len += n;
        expect_msgs++;
        p += GRPC_FRAME_PREFIX_BYTES + n;
    }
    bool expect_idle = expect_status == 0 && p == len;

    struct grpc_frame_parser parser;
    grpc_frame_parser_init(&parser, limit);
    size_t off = 0, got_len = 0, got_msgs = 0;
    enum grpc_frame_result r = GRPC_FRAME_MORE;
    for (unsigned i = 0; off < len && r != GRPC_FRAME_ERROR; i++) {
        /* Chunk sizes 1..(pattern+1), varying with the position. */
        size_t chunk = 1 + (size_t)((pattern * 7 + i * 13) % (pattern + 1));
        if (chunk > len - off)
            chunk = len - off;
        size_t at = 0;
        while (at < chunk) {
            size_t used = 0;
            struct slice msg;
            r = grpc_frame_parser_feed(&parser, in + off + at, chunk - at, &used, &msg);
            ASPEN_ASSERT(used <= chunk - at);
            at += used;
            ASPEN_ASSERT(parser.body.len <= limit);
            if (r != GRPC_FRAME_MESSAGE)
                break;
            ASPEN_ASSERT(msg.len <= limit);
            ASPEN_ASSERT(got_len + msg.len <= expect_len);
            ASPEN_ASSERT(msg.len == 0 || memcmp(expect + got_len, msg.ptr, msg.len) == 0);
            got_len += msg.len;
            got_msgs++;
        }
        ASPEN_ASSERT(r == GRPC_FRAME_ERROR || at == chunk);
        off += chunk;
    }
    ASPEN_ASSERT(got_msgs == expect_msgs && got_len == expect_len);
    ASPEN_ASSERT(parser.error_status == expect_status);
    ASPEN_ASSERT((r == GRPC_FRAME_ERROR) == (expect_status != 0));
    ASPEN_ASSERT(grpc_frame_parser_is_idle(&parser) == expect_idle);
    grpc_frame_parser_release(&parser);
    mem_free(expect);
    return 0;
}
