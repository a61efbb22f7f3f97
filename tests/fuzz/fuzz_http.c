/*
 * Fuzz target for the node's HTTP/1.1 request parser (node/http.h, http_parse.c).
 *
 * The first input byte picks a chunking pattern; the rest is a byte stream as a client
 * would send it, possibly several pipelined requests. The stream is parsed twice, as the
 * server does (after DONE: reset, then feed what the request did not consume): once fed
 * whole, once in chunks whose sizes come from the input itself. Whatever the bytes, the
 * parser must not crash or read out of bounds, and the two runs must agree request for
 * request: the same method, target, path, query, version, keep-alive, headers, body and
 * bytes consumed, or the same error status and reason. Every request that comes out also
 * satisfies the limits (constants.h), and the helpers handlers use (header lookup,
 * percent decoding, query parameters) run on its fields.
 */
#include "base/assert.h"
#include "base/buf.h"
#include "base/constants.h"
#include "base/mem.h"
#include "node/http.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put_slice(struct buf *o, struct slice s)
{
    ASPEN_ASSERT(buf_printf(o, "[%zu]", s.len) == 0);
    ASPEN_ASSERT(buf_append(o, s.ptr, s.len) == 0);
}

static bool is_tchar(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Checks a finished request against the rules and records it. */
static void record_request(struct buf *o, const struct http_request *r, size_t at)
{
    ASPEN_ASSERT(r->method.len >= 1 && r->method.len <= ASPEN_HTTP_MAX_METHOD_BYTES);
    for (size_t i = 0; i < r->method.len; i++)
        ASPEN_ASSERT(is_tchar(r->method.ptr[i]));
    ASPEN_ASSERT(r->target.len >= 1 && r->target.len <= ASPEN_HTTP_MAX_TARGET_BYTES);
    ASPEN_ASSERT(r->target.ptr[0] == '/' || (r->target.len == 1 && r->target.ptr[0] == '*'));
    ASPEN_ASSERT(r->path.ptr == r->target.ptr && r->path.len <= r->target.len);
    ASPEN_ASSERT(r->query.len == 0 || r->path.len + 1 + r->query.len == r->target.len);
    ASPEN_ASSERT(r->n_headers <= ASPEN_HTTP_MAX_HEADERS);
    ASPEN_ASSERT(r->body.len <= ASPEN_HTTP_MAX_BODY_BYTES);
    ASPEN_ASSERT(r->version_minor <= 9);
    ASPEN_ASSERT(buf_printf(o, "DONE at=%zu minor=%u ka=%d ", at, (unsigned)r->version_minor,
                            (int)r->keep_alive) == 0);
    put_slice(o, r->method);
    put_slice(o, r->target);
    put_slice(o, r->path);
    put_slice(o, r->query);
    for (size_t i = 0; i < r->n_headers; i++) {
        ASPEN_ASSERT(r->headers[i].name.len >= 1);
        put_slice(o, r->headers[i].name);
        put_slice(o, r->headers[i].value);
        /* The first header of a name is what lookup finds. */
        char name[64];
        if (r->headers[i].name.len < sizeof(name)) {
            memcpy(name, r->headers[i].name.ptr, r->headers[i].name.len);
            name[r->headers[i].name.len] = '\0';
            const struct http_header *h = http_header_find(r, name);
            ASPEN_ASSERT(h && h <= &r->headers[i]);
        }
    }
    put_slice(o, r->body);
    ASPEN_ASSERT(buf_append(o, "\n", 1) == 0);

    uint8_t dec[ASPEN_HTTP_MAX_TARGET_BYTES];
    long n = http_percent_decode(r->path, dec, sizeof(dec), false);
    ASPEN_ASSERT(n >= -1 && n <= (long)r->path.len);
    n = http_percent_decode(r->query, dec, sizeof(dec), true);
    ASPEN_ASSERT(n >= -1 && n <= (long)r->query.len);
    struct slice v;
    if (http_query_param(r->query, "key", &v))
        ASPEN_ASSERT(
            v.len < r->query.len &&
            (v.len == 0 || (v.ptr > r->query.ptr && v.ptr + v.len <= r->query.ptr + r->query.len)));
}

/* Parses in[0..len) as pipelined requests. max_chunk == 0: each feed offers everything
 * left; otherwise chunks of 1..max_chunk bytes, sizes drawn from the input. */
static void run(const uint8_t *in, size_t len, unsigned max_chunk, struct buf *o)
{
    struct http_parser *p = NULL;
    ASPEN_ASSERT(http_parser_create(&p) == 0);
    size_t off = 0, avail = 0, start = 0;
    unsigned draw = 0, continues = 0;
    enum http_parse_result r = HTTP_PARSE_MORE;
    while (off < len) {
        if (max_chunk == 0) {
            avail = len;
        } else if (avail <= off) {
            size_t c = 1 + (size_t)(in[(draw * 7 + 3) % len] ^ draw) % max_chunk;
            draw++;
            avail = off + c < len ? off + c : len;
        }
        size_t used = 0;
        const struct http_request *req = NULL;
        r = http_parser_feed(p, in + off, avail - off, &used, &req);
        ASPEN_ASSERT(used <= avail - off);
        if (r == HTTP_PARSE_ERROR) {
            int status = http_parser_error_status(p);
            ASPEN_ASSERT(status == 400 || status == 413 || status == 414 || status == 431 ||
                         status == 501 || status == 505);
            const char *reason = http_parser_error_reason(p);
            ASPEN_ASSERT(reason && reason[0]);
            ASPEN_ASSERT(buf_printf(o, "ERROR %d %s\n", status, reason) == 0);
            break;
        }
        off += used;
        if (r == HTTP_PARSE_MORE) {
            ASPEN_ASSERT(off == avail);
            continues += http_parser_take_continue(p) ? 1u : 0u;
            ASPEN_ASSERT(continues <= 1);
            continue;
        }
        /* DONE: positions are absolute in the stream, so both runs must agree. */
        record_request(o, req, off - start);
        start = off;
        continues = 0;
        http_parser_reset(p);
    }
    if (r == HTTP_PARSE_MORE && off > start)
        ASPEN_ASSERT(buf_printf(o, "MORE %zu\n", off - start) == 0);
    http_parser_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    /* 1..64-byte chunks, or up to 1 KiB when the high bit is set. */
    unsigned max_chunk = data[0] & 0x80 ? 1 + (data[0] & 0x7fu) * 8 : 1 + (data[0] & 0x3fu);
    const uint8_t *in = data + 1;
    size_t len = size - 1;
    struct buf whole, chunked;
    buf_init(&whole, SIZE_MAX);
    buf_init(&chunked, SIZE_MAX);
    run(in, len, 0, &whole);
    run(in, len, max_chunk, &chunked);
    ASPEN_ASSERT(slice_eq(buf_slice(&whole), buf_slice(&chunked)));
    buf_release(&whole);
    buf_release(&chunked);
    return 0;
}
