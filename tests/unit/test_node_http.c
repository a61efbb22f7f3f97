/*
 * The node's HTTP/1.1 endpoint (src/node/http.h).
 *
 * Parser: a table of valid and invalid requests with the expected status (each limit at
 * its bound and one byte over), every one parsed whole, byte by byte and split at every
 * position (sampled for the megabyte bodies): the outcome (request fields, consumed
 * bytes, or the error status) must be the same every way. Then pipelined requests in one
 * buffer, chunked edge cases, 100-continue, allocation failures, and the helpers
 * (header lookup, percent decoding, query parameters, status texts).
 *
 * Server: real sockets on 127.0.0.1 (ephemeral ports), the server and test clients on one
 * libuv loop that the test drives; every wait has a deadline (run_until), so a broken
 * server fails a test instead of hanging it. Covered: immediate and deferred responses,
 * keep-alive, pipelining in order and one request at a time, Connection: close, HTTP/1.0,
 * HEAD, 100-continue, 413 / 400 then close, a client leaving before its deferred response,
 * read and idle timeouts, the connection cap, stop_accepting, close with an exchange
 * outstanding, open errors, and the HTTP/2 handover (the preface, even split, hands the
 * socket and the bytes read to on_h2_preface; near misses stay HTTP/1.1).
 */
#include "test.h"

#include "base/assert.h"
#include "base/buf.h"
#include "base/constants.h"
#include "base/log.h"
#include "base/mem.h"
#include "node/http.h"

#include <uv.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define WAIT_MS 20000 /* generous: the machine is shared; a pass takes far less */

/* ---------------------------------------------------------------------------------------
 * Parser: running one input in chunks and recording the outcome
 * ------------------------------------------------------------------------------------- */

static void put_slice(struct buf *o, const char *tag, struct slice s)
{
    (void)buf_printf(o, "%s[%zu]=", tag, s.len);
    (void)buf_append(o, s.ptr, s.len);
    (void)buf_append(o, "\n", 1);
}

/* Everything a feed sequence produced, as bytes to compare. */
static void record(struct buf *o, enum http_parse_result r, const struct http_parser *p,
                   const struct http_request *req, size_t consumed)
{
    (void)buf_printf(o, "result=%d\n", (int)r);
    if (r == HTTP_PARSE_ERROR) {
        (void)buf_printf(o, "status=%d reason=%s\n", http_parser_error_status(p),
                         http_parser_error_reason(p));
        return;
    }
    if (r != HTTP_PARSE_DONE)
        return;
    (void)buf_printf(o, "consumed=%zu minor=%u keep_alive=%d\n", consumed,
                     (unsigned)req->version_minor, (int)req->keep_alive);
    put_slice(o, "method", req->method);
    put_slice(o, "target", req->target);
    put_slice(o, "path", req->path);
    put_slice(o, "query", req->query);
    for (size_t i = 0; i < req->n_headers; i++) {
        put_slice(o, "name", req->headers[i].name);
        put_slice(o, "value", req->headers[i].value);
    }
    put_slice(o, "body", req->body);
}

/* Feeds in[0..len) cut at the positions cuts[0..n) (ascending) and records the outcome
 * of the first request. */
static void run_cuts(const uint8_t *in, size_t len, const size_t *cuts, size_t n, struct buf *o)
{
    struct http_parser *p = NULL;
    ASPEN_ASSERT(http_parser_create(&p) == 0);
    size_t off = 0;
    enum http_parse_result r = HTTP_PARSE_MORE;
    const struct http_request *req = NULL;
    size_t consumed = 0;
    for (size_t c = 0; c <= n && r == HTTP_PARSE_MORE; c++) {
        size_t end = c < n ? cuts[c] : len;
        size_t used = 0;
        r = http_parser_feed(p, in + off, end - off, &used, &req);
        if (r == HTTP_PARSE_MORE)
            ASPEN_ASSERT(used == end - off);
        consumed = off + used;
        off = end;
    }
    record(o, r, p, req, consumed);
    http_parser_free(p);
}

static void run_whole(const uint8_t *in, size_t len, struct buf *o)
{
    run_cuts(in, len, NULL, 0, o);
}

static void run_split(const uint8_t *in, size_t len, size_t at, struct buf *o)
{
    run_cuts(in, len, &at, 1, o);
}

/* Chunks of `step` bytes (1: byte by byte). */
static void run_steps(const uint8_t *in, size_t len, size_t step, struct buf *o)
{
    struct http_parser *p = NULL;
    ASPEN_ASSERT(http_parser_create(&p) == 0);
    enum http_parse_result r = HTTP_PARSE_MORE;
    const struct http_request *req = NULL;
    size_t off = 0, consumed = 0;
    while (r == HTTP_PARSE_MORE && off < len) {
        size_t n = len - off < step ? len - off : step;
        size_t used = 0;
        r = http_parser_feed(p, in + off, n, &used, &req);
        consumed = off + used;
        off += n;
    }
    record(o, r, p, req, consumed);
    http_parser_free(p);
}

/* Inputs up to this size are split at every position; longer ones (the limit cases, up to
 * megabytes) at the first and last SPLIT_EDGE positions and SPLIT_SAMPLES spread between. */
#define SPLIT_ALL_MAX 4096
#define SPLIT_EDGE    300
#define SPLIT_SAMPLES 256

static bool split_wanted(size_t at, size_t len)
{
    if (len <= SPLIT_ALL_MAX || at <= SPLIT_EDGE || at + SPLIT_EDGE >= len)
        return true;
    size_t stride = len / SPLIT_SAMPLES;
    return at % stride == 0;
}

/* Checks that byte-by-byte feeding and the splits give the whole feed's outcome. Returns
 * a description of the first difference, or NULL. */
static const char *check_consistent(const uint8_t *in, size_t len, struct buf *whole)
{
    static char why[64];
    struct buf o;
    buf_init(&o, SIZE_MAX);
    run_whole(in, len, whole);
    run_steps(in, len, 1, &o);
    bool same = slice_eq(buf_slice(&o), buf_slice(whole));
    buf_release(&o);
    if (!same)
        return "byte by byte differs";
    for (size_t at = 0; at <= len; at++) {
        if (!split_wanted(at, len))
            continue;
        buf_init(&o, SIZE_MAX);
        run_split(in, len, at, &o);
        same = slice_eq(buf_slice(&o), buf_slice(whole));
        buf_release(&o);
        if (!same) {
            snprintf(why, sizeof(why), "split at %zu differs", at);
            return why;
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------
 * Parser: the table
 * ------------------------------------------------------------------------------------- */

struct pcase {
    const char *name;
    const char *in;
    int status;         /* 0: a whole request */
    const char *method; /* for whole requests (NULL: not checked) */
    const char *target;
    const char *body;
    int keep_alive; /* 0 / 1, or -1: not checked */
};

#define H "Host: a\r\n"
#define BAD(name, in, status)                                                                      \
    {                                                                                              \
        name, in, status, NULL, NULL, NULL, -1                                                     \
    }

static const struct pcase pcases[] = {
    /* Valid. */
    {"simple get", "GET / HTTP/1.1\r\n" H "\r\n", 0, "GET", "/", "", 1},
    {"bare lf", "GET /x?y=1 HTTP/1.1\nHost: a\n\n", 0, "GET", "/x?y=1", "", 1},
    {"mixed line ends", "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\n", 0, "GET", "/", "", 1},
    {"leading empty lines", "\r\n\nGET / HTTP/1.1\r\n" H "\r\n", 0, "GET", "/", "", 1},
    {"http/1.0 closes", "GET / HTTP/1.0\r\n\r\n", 0, "GET", "/", "", 0},
    {"http/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 0, "GET", "/", "",
     1},
    {"connection close", "GET / HTTP/1.1\r\n" H "Connection: close\r\n\r\n", 0, "GET", "/", "", 0},
    {"connection list", "GET / HTTP/1.1\r\n" H "Connection: foo, , CLOSE\r\n\r\n", 0, "GET", "/",
     "", 0},
    {"connection list keep", "GET / HTTP/1.1\r\n" H "Connection: upgrade, keep-alive\r\n\r\n", 0,
     "GET", "/", "", 1},
    {"http/1.0 keep-alive and close", "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", 0,
     "GET", "/", "", 0},
    {"http/1.9", "GET / HTTP/1.9\r\n" H "\r\n", 0, "GET", "/", "", 1},
    {"content-length body", "POST /k HTTP/1.1\r\n" H "Content-Length: 5\r\n\r\nhello", 0, "POST",
     "/k", "hello", 1},
    {"content-length zero", "PUT /k HTTP/1.1\r\n" H "Content-Length: 0\r\n\r\n", 0, "PUT", "/k", "",
     1},
    {"content-length leading zeros", "PUT /k HTTP/1.1\r\n" H "Content-Length: 003\r\n\r\nabc", 0,
     "PUT", "/k", "abc", 1},
    {"content-length repeated equal",
     "PUT /k HTTP/1.1\r\n" H "Content-Length: 3\r\ncontent-length:3\r\n\r\nabc", 0, "PUT", "/k",
     "abc", 1},
    {"post without length", "POST /k HTTP/1.1\r\n" H "\r\n", 0, "POST", "/k", "", 1},
    {"chunked", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     0, "POST", "/", "hello", 1},
    {"chunked case and list",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: , Chunked\r\n\r\n"
     "3\r\nabc\r\n0\r\n\r\n",
     0, "POST", "/", "abc", 1},
    {"chunked extensions and trailers",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
     "5;a=b;c\r\nhello\r\n6 \t; x=\"y z\"\r\n world\r\n0;last\r\nTrailer-A: v\r\nX:\r\n\r\n",
     0, "POST", "/", "hello world", 1},
    {"chunked hex",
     "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
     "A\r\n0123456789\r\n0000000000000001\r\nx\r\n0\r\n\r\n",
     0, "POST", "/", "0123456789x", 1},
    {"chunked empty", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0,
     "POST", "/", "", 1},
    {"options asterisk", "OPTIONS * HTTP/1.1\r\n" H "\r\n", 0, "OPTIONS", "*", "", 1},
    {"odd token method", "M-SEARCH /x HTTP/1.1\r\n" H "\r\n", 0, "M-SEARCH", "/x", "", 1},
    {"value trimmed", "GET / HTTP/1.1\r\n" H "X:  \t a b \t \r\n\r\n", 0, "GET", "/", "", 1},
    {"empty value", "GET / HTTP/1.1\r\n" H "X:\r\n\r\n", 0, "GET", "/", "", 1},
    {"obs-text value", "GET / HTTP/1.1\r\n" H "X: caf\xc3\xa9\r\n\r\n", 0, "GET", "/", "", 1},
    {"target chars", "GET /a%20b/c;d=e?f=g&h=%2F#x HTTP/1.1\r\n" H "\r\n", 0, "GET",
     "/a%20b/c;d=e?f=g&h=%2F#x", "", 1},
    {"expect continue", "PUT / HTTP/1.1\r\n" H "Expect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
     0, "PUT", "/", "x", 1},

    /* Request line. */
    BAD("bad method char", "G(T / HTTP/1.1\r\n" H "\r\n", 400),
    BAD("leading control", "\x01GET / HTTP/1.1\r\n" H "\r\n", 400),
    BAD("double space", "GET  / HTTP/1.1\r\n" H "\r\n", 400),
    BAD("trailing space", "GET / HTTP/1.1 \r\n" H "\r\n", 400),
    BAD("tab separator", "GET\t/ HTTP/1.1\r\n" H "\r\n", 400),
    BAD("no version", "GET /\r\n\r\n", 400),
    BAD("relative target", "GET x HTTP/1.1\r\n" H "\r\n", 400),
    BAD("absolute target", "GET http://a/ HTTP/1.1\r\n" H "\r\n", 400),
    BAD("asterisk outside options", "GET * HTTP/1.1\r\n" H "\r\n", 400),
    BAD("control in target", "GET /a\x01 HTTP/1.1\r\n" H "\r\n", 400),
    BAD("del in target", "GET /a\x7f HTTP/1.1\r\n" H "\r\n", 400),
    BAD("non-ascii target", "GET /caf\xc3\xa9 HTTP/1.1\r\n" H "\r\n", 400),
    BAD("bare cr in request line", "GET / HTTP/1.1\rX\r\n" H "\r\n", 400),
    BAD("bare cr before request", "\rGET / HTTP/1.1\r\n" H "\r\n", 400),
    BAD("lowercase version", "GET / http/1.1\r\n" H "\r\n", 400),
    BAD("version without minor", "GET / HTTP/1\r\n" H "\r\n", 400),
    BAD("version too long", "GET / HTTP/1.10\r\n" H "\r\n", 400),
    BAD("version garbage", "GET / HTTP/x.1\r\n" H "\r\n", 400),
    BAD("http/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    BAD("http/2.0", "GET / HTTP/2.0\r\n" H "\r\n", 505),
    BAD("http/3", "GET / HTTP/3\r\n" H "\r\n", 505),
    BAD("http/0.9", "GET / HTTP/0.9\r\n" H "\r\n", 505),

    /* Header lines. */
    BAD("space before colon", "GET / HTTP/1.1\r\n" H "X : y\r\n\r\n", 400),
    BAD("tab before colon", "GET / HTTP/1.1\r\n" H "X\t: y\r\n\r\n", 400),
    BAD("obs-fold", "GET / HTTP/1.1\r\n" H "X: a\r\n b\r\n\r\n", 400),
    BAD("obs-fold first line", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),
    BAD("no colon", "GET / HTTP/1.1\r\n" H "Xy\r\n\r\n", 400),
    BAD("empty name", "GET / HTTP/1.1\r\n" H ": y\r\n\r\n", 400),
    BAD("bad name", "GET / HTTP/1.1\r\n" H "X@Y: z\r\n\r\n", 400),
    BAD("control in value",
        "GET / HTTP/1.1\r\n" H "X: a\x01"
        "b\r\n\r\n",
        400),
    BAD("nul in value", "GET / HTTP/1.1\r\n" H "X: a\0b\r\n\r\n", 400),
    BAD("bare cr in header", "GET / HTTP/1.1\r\n" H "X: a\rb\r\n\r\n", 400),
    BAD("missing host", "GET / HTTP/1.1\r\n\r\n", 400),
    BAD("two hosts", "GET / HTTP/1.1\r\n" H "host: b\r\n\r\n", 400),
    BAD("two hosts http/1.0", "GET / HTTP/1.0\r\n" H H "\r\n", 400),

    /* Framing. */
    BAD("content-length letters", "PUT / HTTP/1.1\r\n" H "Content-Length: abc\r\n\r\n", 400),
    BAD("content-length sign", "PUT / HTTP/1.1\r\n" H "Content-Length: +5\r\n\r\nhello", 400),
    BAD("content-length negative", "PUT / HTTP/1.1\r\n" H "Content-Length: -1\r\n\r\n", 400),
    BAD("content-length list", "PUT / HTTP/1.1\r\n" H "Content-Length: 5, 5\r\n\r\nhello", 400),
    BAD("content-length inner space", "PUT / HTTP/1.1\r\n" H "Content-Length: 5 5\r\n\r\n", 400),
    BAD("content-length empty", "PUT / HTTP/1.1\r\n" H "Content-Length:\r\n\r\n", 400),
    BAD("content-length conflict",
        "PUT / HTTP/1.1\r\n" H "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    BAD("content-length overflow",
        "PUT / HTTP/1.1\r\n" H "Content-Length: 18446744073709551616\r\n\r\n", 400),
    BAD("content-length huge",
        "PUT / HTTP/1.1\r\n" H "Content-Length: 18446744073709551615\r\n\r\n", 413),
    BAD("te and cl",
        "POST / HTTP/1.1\r\n" H "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    BAD("cl and te",
        "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400),
    BAD("te gzip", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n\r\n", 501),
    BAD("te gzip chunked", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip, chunked\r\n\r\n", 501),
    BAD("te chunked twice",
        "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        400),
    BAD("te empty", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: \r\n\r\n", 400),
    BAD("te in http/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    BAD("chunk size missing", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n\r\n",
        400),
    BAD("chunk size bad", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\ng\r\n", 400),
    BAD("chunk size signed", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n-1\r\n",
        400),
    BAD("chunk size 0x", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n0x5\r\n", 400),
    BAD("chunk size 17 digits",
        "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n00000000000000001\r\nx\r\n",
        400),
    BAD("chunk size over body bound",
        "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n", 413),
    BAD("chunk bare lf size",
        "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n", 400),
    BAD("chunk bare lf data",
        "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", 400),
    BAD("chunk data too long",
        "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n", 400),
    BAD("chunk space junk", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5 x\r\n",
        400),
    BAD("chunk ext control",
        "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5;a\x01\r\nhello\r\n", 400),
    BAD("chunk ext bare lf", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5;a\nb\r\n",
        400),
    BAD("trailer obs-fold",
        "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n0\r\nA: b\r\n c\r\n\r\n", 400),
    BAD("trailer no colon",
        "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n0\r\nAb\r\n\r\n", 400),
    BAD("trailer bare lf",
        "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n0\r\nA: b\n\r\n", 400),
    BAD("final crlf broken", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n0\r\n\rx",
        400),
};

/* Checks one input every way; the DONE fields against the case when given. */
static bool check_case(const struct pcase *c, const uint8_t *in, size_t len)
{
    struct buf whole;
    buf_init(&whole, SIZE_MAX);
    const char *diff = check_consistent(in, len, &whole);
    bool ok = true;
    if (diff) {
        test_fail(__FILE__, __LINE__, "case '%s': %s", c->name, diff);
        ok = false;
    }
    struct http_parser *p = NULL;
    ASPEN_ASSERT(http_parser_create(&p) == 0);
    size_t used = 0;
    const struct http_request *req = NULL;
    enum http_parse_result r = http_parser_feed(p, in, len, &used, &req);
    if (ok && c->status != 0) {
        if (r != HTTP_PARSE_ERROR || http_parser_error_status(p) != c->status) {
            test_fail(__FILE__, __LINE__, "case '%s': want status %d, got result %d status %d",
                      c->name, c->status, (int)r, http_parser_error_status(p));
            ok = false;
        }
    } else if (ok) {
        if (r != HTTP_PARSE_DONE) {
            test_fail(__FILE__, __LINE__, "case '%s': not done (result %d status %d %s)", c->name,
                      (int)r, http_parser_error_status(p), http_parser_error_reason(p));
            ok = false;
        } else if (used != len || (c->method && !slice_eq(req->method, slice_str(c->method))) ||
                   (c->target && !slice_eq(req->target, slice_str(c->target))) ||
                   (c->body && !slice_eq(req->body, slice_str(c->body))) ||
                   (c->keep_alive >= 0 && req->keep_alive != (c->keep_alive == 1))) {
            test_fail(__FILE__, __LINE__, "case '%s': fields differ", c->name);
            ok = false;
        }
    }
    http_parser_free(p);
    buf_release(&whole);
    return ok;
}

static void test_parse_table(void)
{
    for (size_t i = 0; i < sizeof(pcases) / sizeof(pcases[0]); i++) {
        const struct pcase *c = &pcases[i];
        /* "nul in value" holds a NUL: its length is that of the literal. */
        size_t len = strcmp(c->name, "nul in value") == 0
                         ? sizeof("GET / HTTP/1.1\r\n" H "X: a\0b\r\n\r\n") - 1
                         : strlen(c->in);
        if (!check_case(c, (const uint8_t *)c->in, len))
            return;
    }
}

static void test_parse_fields(void)
{
    const char *in = "GET /a/b?x=1&y HTTP/1.0\r\nHost: h\r\nX-Long:  v  1 \r\n"
                     "x-long: second\r\nConnection: keep-alive\r\n\r\n";
    struct http_parser *p = NULL;
    CHECK_OK(http_parser_create(&p));
    size_t used = 0;
    const struct http_request *req = NULL;
    CHECK_EQ(http_parser_feed(p, (const uint8_t *)in, strlen(in), &used, &req), HTTP_PARSE_DONE);
    CHECK_EQ(used, strlen(in));
    CHECK(slice_eq(req->path, slice_str("/a/b")));
    CHECK(slice_eq(req->query, slice_str("x=1&y")));
    CHECK_EQ(req->version_minor, 0);
    CHECK(req->keep_alive);
    CHECK_EQ(req->n_headers, 4);
    const struct http_header *h = http_header_find(req, "X-LONG");
    CHECK(h && slice_eq(h->value, slice_str("v  1")));
    CHECK(slice_eq(h->name, slice_str("X-Long"))); /* the first one, as sent */
    CHECK(http_header_find(req, "x-lon") == NULL);
    CHECK(http_header_find(req, "content-length") == NULL);
    CHECK_EQ(req->body.len, 0);
    /* Fed again without a reset: the same request, nothing consumed. */
    const struct http_request *again = NULL;
    CHECK_EQ(http_parser_feed(p, (const uint8_t *)"x", 1, &used, &again), HTTP_PARSE_DONE);
    CHECK_EQ(used, 0);
    CHECK(again == req);
    http_parser_reset(p);
    CHECK_EQ(http_parser_feed(p, (const uint8_t *)"BAD\x01", 4, &used, &req), HTTP_PARSE_ERROR);
    CHECK_EQ(http_parser_error_status(p), 400);
    CHECK_STR_EQ(http_parser_error_reason(p), "malformed method");
    CHECK_EQ(http_parser_feed(p, (const uint8_t *)"GET", 3, &used, &req), HTTP_PARSE_ERROR);
    CHECK_EQ(used, 0);
    http_parser_reset(p);
    CHECK_EQ(http_parser_error_status(p), 0);
    CHECK_EQ(http_parser_feed(p, (const uint8_t *)"GET / HT", 8, &used, &req), HTTP_PARSE_MORE);
    CHECK_EQ(used, 8);
    CHECK(req == NULL);
    http_parser_free(p);
}

/* ---------------------------------------------------------------------------------------
 * Parser: limits at their bound and one over
 * ------------------------------------------------------------------------------------- */

/* Runs a generated input through check_case with the expected status. */
static bool check_generated(const char *name, struct buf *b, int status)
{
    struct pcase c = {.name = name, .status = status, .keep_alive = -1};
    bool ok = check_case(&c, b->data, b->len);
    buf_release(b);
    return ok;
}

static void fill(struct buf *b, char ch, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ASPEN_ASSERT(buf_append(b, &ch, 1) == 0);
}

static void test_parse_limit_method(void)
{
    for (size_t extra = 0; extra <= 1; extra++) {
        struct buf b;
        buf_init(&b, SIZE_MAX);
        fill(&b, 'M', ASPEN_HTTP_MAX_METHOD_BYTES + extra);
        ASPEN_ASSERT(buf_printf(&b, " / HTTP/1.1\r\nHost: a\r\n\r\n") == 0);
        if (!check_generated("method bound", &b, extra ? 501 : 0))
            return;
    }
}

static void test_parse_limit_target(void)
{
    for (size_t extra = 0; extra <= 1; extra++) {
        struct buf b;
        buf_init(&b, SIZE_MAX);
        ASPEN_ASSERT(buf_printf(&b, "GET /") == 0);
        fill(&b, 'a', ASPEN_HTTP_MAX_TARGET_BYTES - 1 + extra);
        ASPEN_ASSERT(buf_printf(&b, " HTTP/1.1\r\nHost: a\r\n\r\n") == 0);
        if (!check_generated("target bound", &b, extra ? 414 : 0))
            return;
    }
    /* A target over the bound with no end in sight is refused at its first byte too far. */
    struct buf b;
    buf_init(&b, SIZE_MAX);
    ASPEN_ASSERT(buf_printf(&b, "GET /") == 0);
    fill(&b, 'a', ASPEN_HTTP_MAX_TARGET_BYTES);
    check_generated("target unterminated", &b, 414);
}

/* A head of exactly `total` bytes: request line, Host, one padding header, empty line. */
static void head_of(struct buf *b, size_t total, const char *end)
{
    const char *start = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
    ASPEN_ASSERT(buf_printf(b, "%s", start) == 0);
    fill(b, 'v', total - strlen(start) - 2 - strlen(end));
    ASPEN_ASSERT(buf_printf(b, "\r\n%s", end) == 0);
}

static void test_parse_limit_head(void)
{
    for (size_t extra = 0; extra <= 1; extra++) {
        struct buf b;
        buf_init(&b, SIZE_MAX);
        head_of(&b, ASPEN_HTTP_MAX_HEADER_BYTES + extra, "\r\n");
        if (!check_generated("head bound crlf", &b, extra ? 431 : 0))
            return;
        buf_init(&b, SIZE_MAX);
        head_of(&b, ASPEN_HTTP_MAX_HEADER_BYTES + extra, "\n");
        if (!check_generated("head bound lf", &b, extra ? 431 : 0))
            return;
    }
    /* Empty lines before the request line count toward the head. */
    struct buf b;
    buf_init(&b, SIZE_MAX);
    fill(&b, '\n', ASPEN_HTTP_MAX_HEADER_BYTES);
    ASPEN_ASSERT(buf_printf(&b, "GET / HTTP/1.1\r\n\r\n") == 0);
    check_generated("empty lines before", &b, 431);
}

static void test_parse_limit_headers(void)
{
    for (size_t extra = 0; extra <= 1; extra++) {
        struct buf b;
        buf_init(&b, SIZE_MAX);
        ASPEN_ASSERT(buf_printf(&b, "GET / HTTP/1.1\r\nHost: a\r\n") == 0);
        for (size_t i = 1; i < ASPEN_HTTP_MAX_HEADERS + extra; i++)
            ASPEN_ASSERT(buf_printf(&b, "X-%zu: %zu\r\n", i, i) == 0);
        ASPEN_ASSERT(buf_printf(&b, "\r\n") == 0);
        if (!check_generated("header count bound", &b, extra ? 431 : 0))
            return;
    }
}

static void test_parse_limit_body(void)
{
    for (size_t extra = 0; extra <= 1; extra++) {
        struct buf b;
        buf_init(&b, SIZE_MAX);
        size_t n = ASPEN_HTTP_MAX_BODY_BYTES + extra;
        ASPEN_ASSERT(
            buf_printf(&b, "PUT /k HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n\r\n", n) == 0);
        if (!extra)
            fill(&b, 'b', n);
        if (!check_generated("content-length bound", &b, extra ? 413 : 0))
            return;
    }
    /* Chunked: the sum of the chunks at the bound, and one byte over (refused at the last
     * size digit, before the data). */
    for (size_t extra = 0; extra <= 1; extra++) {
        struct buf b;
        buf_init(&b, SIZE_MAX);
        ASPEN_ASSERT(buf_printf(&b, "PUT /k HTTP/1.1\r\nHost: a\r\n"
                                    "Transfer-Encoding: chunked\r\n\r\n") == 0);
        size_t half = ASPEN_HTTP_MAX_BODY_BYTES / 2;
        size_t rest = ASPEN_HTTP_MAX_BODY_BYTES - half + extra;
        ASPEN_ASSERT(buf_printf(&b, "%zx\r\n", half) == 0);
        fill(&b, 'c', half);
        ASPEN_ASSERT(buf_printf(&b, "\r\n%zx;ext\r\n", rest) == 0);
        if (!extra) {
            fill(&b, 'd', rest);
            ASPEN_ASSERT(buf_printf(&b, "\r\n0\r\n\r\n") == 0);
        }
        if (!check_generated("chunked bound", &b, extra ? 413 : 0))
            return;
    }
}

static void test_parse_limit_chunk_meta(void)
{
    /* Extensions: at most ASPEN_HTTP_MAX_HEADER_BYTES in all (after each ';'). */
    for (size_t extra = 0; extra <= 1; extra++) {
        struct buf b;
        buf_init(&b, SIZE_MAX);
        ASPEN_ASSERT(buf_printf(&b, "PUT /k HTTP/1.1\r\nHost: a\r\n"
                                    "Transfer-Encoding: chunked\r\n\r\n1;") == 0);
        fill(&b, 'e', ASPEN_HTTP_MAX_HEADER_BYTES / 2);
        ASPEN_ASSERT(buf_printf(&b, "\r\nx\r\n0;") == 0);
        fill(&b, 'e', ASPEN_HTTP_MAX_HEADER_BYTES - ASPEN_HTTP_MAX_HEADER_BYTES / 2 + extra);
        ASPEN_ASSERT(buf_printf(&b, "\r\n\r\n") == 0);
        if (!check_generated("chunk extension bound", &b, extra ? 413 : 0))
            return;
    }
    /* Trailers: at most ASPEN_HTTP_MAX_HEADER_BYTES, the final CRLF included. */
    for (size_t extra = 0; extra <= 1; extra++) {
        struct buf b;
        buf_init(&b, SIZE_MAX);
        ASPEN_ASSERT(buf_printf(&b, "PUT /k HTTP/1.1\r\nHost: a\r\n"
                                    "Transfer-Encoding: chunked\r\n\r\n0\r\nT: ") == 0);
        fill(&b, 't', ASPEN_HTTP_MAX_HEADER_BYTES - 3 - 4 + extra);
        ASPEN_ASSERT(buf_printf(&b, "\r\n\r\n") == 0);
        if (!check_generated("trailer bound", &b, extra ? 431 : 0))
            return;
    }
}

/* ---------------------------------------------------------------------------------------
 * Parser: pipelining, 100-continue, allocation failures
 * ------------------------------------------------------------------------------------- */

static const char pipelined[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
                                "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                                "PUT /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "2\r\nxy\r\n0\r\n\r\n"
                                "GET /4 HTTP/1.1\r\nHost: a\r\n\r\n"
                                "GET /5 HT";

/* Parses `pipelined` fed in chunks of `step` bytes, keeping leftovers for the next request
 * as a server does; writes "target:body;" per request into out. */
static bool parse_pipelined(size_t step, char *out, size_t cap)
{
    struct http_parser *p = NULL;
    ASPEN_ASSERT(http_parser_create(&p) == 0);
    size_t len = sizeof(pipelined) - 1, off = 0, n_out = 0, fed_to = 0;
    out[0] = '\0';
    bool ok = true;
    while (off < len) {
        /* Bytes available so far: up to the next chunk boundary. */
        if (fed_to <= off)
            fed_to = off + step < len ? off + step : len;
        size_t used = 0;
        const struct http_request *req = NULL;
        enum http_parse_result r =
            http_parser_feed(p, (const uint8_t *)pipelined + off, fed_to - off, &used, &req);
        off += used;
        if (r == HTTP_PARSE_ERROR) {
            ok = false;
            break;
        }
        if (r == HTTP_PARSE_DONE) {
            int k = snprintf(out + n_out, cap - n_out, "%.*s:%.*s;", (int)req->target.len,
                             (const char *)req->target.ptr, (int)req->body.len,
                             req->body.len ? (const char *)req->body.ptr : "");
            n_out += (size_t)k;
            http_parser_reset(p);
        }
    }
    http_parser_free(p);
    return ok;
}

static void test_parse_pipelined(void)
{
    const char *want = "/1:;/2:abc;/3:xy;/4:;";
    for (size_t step = 1; step <= sizeof(pipelined); step++) {
        char out[256];
        CHECK_MSG(parse_pipelined(step, out, sizeof(out)), "step %zu: parse error", step);
        CHECK_MSG(strcmp(out, want) == 0, "step %zu: got '%s'", step, out);
    }
}

static void test_parse_continue(void)
{
    const char *head = "PUT /k HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n"
                       "Content-Length: 5\r\n\r\n";
    struct http_parser *p = NULL;
    CHECK_OK(http_parser_create(&p));
    size_t used = 0;
    const struct http_request *req = NULL;
    CHECK(!http_parser_take_continue(p));
    CHECK_EQ(http_parser_feed(p, (const uint8_t *)head, 20, &used, &req), HTTP_PARSE_MORE);
    CHECK(!http_parser_take_continue(p)); /* the head is not whole yet */
    CHECK_EQ(http_parser_feed(p, (const uint8_t *)head + 20, strlen(head) - 20, &used, &req),
             HTTP_PARSE_MORE);
    CHECK(http_parser_take_continue(p));
    CHECK(!http_parser_take_continue(p)); /* once */
    CHECK_EQ(http_parser_feed(p, (const uint8_t *)"hello", 5, &used, &req), HTTP_PARSE_DONE);
    CHECK(slice_eq(req->body, slice_str("hello")));
    /* Body already here: nothing to ask for. */
    http_parser_reset(p);
    CHECK_EQ(http_parser_feed(p, (const uint8_t *)head, strlen(head), &used, &req),
             HTTP_PARSE_MORE);
    CHECK_EQ(http_parser_feed(p, (const uint8_t *)"hello", 5, &used, &req), HTTP_PARSE_DONE);
    CHECK(!http_parser_take_continue(p));
    /* HTTP/1.0 and requests without a body: none. */
    const char *v10 = "PUT /k HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    http_parser_reset(p);
    CHECK_EQ(http_parser_feed(p, (const uint8_t *)v10, strlen(v10), &used, &req), HTTP_PARSE_MORE);
    CHECK(!http_parser_take_continue(p));
    const char *nobody = "GET /k HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n";
    http_parser_reset(p);
    CHECK_EQ(http_parser_feed(p, (const uint8_t *)nobody, strlen(nobody), &used, &req),
             HTTP_PARSE_DONE);
    CHECK(!http_parser_take_continue(p));
    /* Refused heads get their error, not 100. */
    const char *big = "PUT /k HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                      "Content-Length: 99999999999\r\n\r\n";
    http_parser_reset(p);
    CHECK_EQ(http_parser_feed(p, (const uint8_t *)big, strlen(big), &used, &req), HTTP_PARSE_ERROR);
    CHECK_EQ(http_parser_error_status(p), 413);
    CHECK(!http_parser_take_continue(p));
    http_parser_free(p);
}

static void test_parse_nomem(void)
{
    const char *in = "PUT /k HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n0\r\n\r\n";
    struct http_parser *p = NULL;
    mem_fail_at(1, 0);
    int rc = http_parser_create(&p);
    mem_fail_at(0, 0);
    CHECK_ERR(rc, ASPEN_E_NOMEM);
    bool saw_failure = false, saw_success = false;
    for (uint64_t n = 1; n < 20 && !saw_success; n++) {
        CHECK_OK(http_parser_create(&p));
        mem_fail_at(n, 1);
        size_t used = 0;
        const struct http_request *req = NULL;
        enum http_parse_result r =
            http_parser_feed(p, (const uint8_t *)in, strlen(in), &used, &req);
        mem_fail_at(0, 0);
        if (r == HTTP_PARSE_ERROR) {
            CHECK_EQ(http_parser_error_status(p), 500);
            saw_failure = true;
        } else {
            CHECK_EQ(r, HTTP_PARSE_DONE);
            CHECK(slice_eq(req->body, slice_str("hello")));
            saw_success = true;
        }
        http_parser_free(p);
    }
    CHECK(saw_failure && saw_success);
}

/* ---------------------------------------------------------------------------------------
 * Helpers for handlers
 * ------------------------------------------------------------------------------------- */

static void test_percent_decode(void)
{
    uint8_t out[32];
    CHECK_EQ(http_percent_decode(slice_str("a%20b%2Fc+d"), out, sizeof(out), false), 7);
    CHECK_MEM_EQ(out, "a b/c+d", 7);
    CHECK_EQ(http_percent_decode(slice_str("a+b%2b"), out, sizeof(out), true), 4);
    CHECK_MEM_EQ(out, "a b+", 4);
    CHECK_EQ(http_percent_decode(slice_str("%00%ff%Fe"), out, sizeof(out), false), 3);
    CHECK_MEM_EQ(out, "\x00\xff\xfe", 3);
    CHECK_EQ(http_percent_decode(slice_str(""), out, sizeof(out), false), 0);
    CHECK_EQ(http_percent_decode(slice_str("%"), out, sizeof(out), false), -1);
    CHECK_EQ(http_percent_decode(slice_str("%2"), out, sizeof(out), false), -1);
    CHECK_EQ(http_percent_decode(slice_str("%zz"), out, sizeof(out), false), -1);
    CHECK_EQ(http_percent_decode(slice_str("ab%2"), out, sizeof(out), false), -1);
    CHECK_EQ(http_percent_decode(slice_str("abc"), out, 3, false), 3);
    CHECK_EQ(http_percent_decode(slice_str("abcd"), out, 3, false), -1);
    CHECK_EQ(http_percent_decode(slice_str("%41%42%43"), out, 3, false), 3);
    CHECK_MEM_EQ(out, "ABC", 3);
}

static void test_query_param(void)
{
    struct slice q = slice_str("a=1&b&c=&&d=x=y&a=2&e%20=3");
    struct slice v;
    CHECK(http_query_param(q, "a", &v) && slice_eq(v, slice_str("1")));
    CHECK(http_query_param(q, "b", &v) && v.len == 0);
    CHECK(http_query_param(q, "c", &v) && v.len == 0);
    CHECK(http_query_param(q, "d", &v) && slice_eq(v, slice_str("x=y")));
    CHECK(http_query_param(q, "e%20", &v) && slice_eq(v, slice_str("3")));
    CHECK(!http_query_param(q, "e", &v));
    CHECK(!http_query_param(q, "", &v));
    CHECK(!http_query_param(q, "x", &v));
    CHECK(!http_query_param(slice_str(""), "a", &v));
}

static void test_status_text(void)
{
    CHECK_STR_EQ(http_status_text(200), "OK");
    CHECK_STR_EQ(http_status_text(404), "Not Found");
    CHECK_STR_EQ(http_status_text(413), "Content Too Large");
    CHECK_STR_EQ(http_status_text(431), "Request Header Fields Too Large");
    CHECK_STR_EQ(http_status_text(505), "HTTP Version Not Supported");
    CHECK_STR_EQ(http_status_text(299), "Unknown");
    CHECK_STR_EQ(http_status_text(-1), "Unknown");
}

/* ---------------------------------------------------------------------------------------
 * Server: log capture and the loop
 * ------------------------------------------------------------------------------------- */

static char log_text[1 << 18];
static size_t log_len;

static void capture(void *ctx, const char *line, size_t len)
{
    (void)ctx;
    if (log_len + len < sizeof(log_text)) {
        memcpy(log_text + log_len, line, len);
        log_len += len;
        log_text[log_len] = '\0';
    }
    if (getenv("ASPEN_TEST_VERBOSE"))
        fwrite(line, 1, len, stderr);
}

/* True when one captured line contains both needles (b may be NULL). */
static bool log_has_line(const char *a, const char *b)
{
    const char *line = log_text;
    while (*line) {
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        char tmp[4096];
        if (n >= sizeof(tmp))
            n = sizeof(tmp) - 1;
        memcpy(tmp, line, n);
        tmp[n] = '\0';
        if (strstr(tmp, a) && (!b || strstr(tmp, b)))
            return true;
        line += n + (end ? 1 : 0);
        if (!end)
            break;
    }
    return false;
}

static uv_loop_t loop;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until pred(ctx) holds or timeout_ms pass; returns pred's last value. A
 * repeating timer makes sure the loop wakes up to look at the deadline. */
static bool run_until(bool (*pred)(void *), void *ctx, uint64_t timeout_ms)
{
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, tick, 5, 5);
    uint64_t deadline = now_ms() + timeout_ms;
    bool ok;
    while (!(ok = pred(ctx)) && now_ms() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return ok;
}

static bool never(void *ctx)
{
    (void)ctx;
    return false;
}

/* Lets the loop run for ms (to show that something does NOT happen). */
static void run_for(uint64_t ms)
{
    run_until(never, NULL, ms);
}

static bool flag_set(void *ctx)
{
    return *(bool *)ctx;
}

static void set_flag(void *arg)
{
    *(bool *)arg = true;
}

static void loop_begin(void)
{
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    log_len = 0;
    log_text[0] = '\0';
    log_set_sink(capture, NULL);
    log_set_level(LOG_LEVEL_DEBUG);
}

/* Every handle closed: uv_loop_close would return UV_EBUSY otherwise. */
static int loop_end(void)
{
    log_set_sink(NULL, NULL);
    log_set_level(LOG_LEVEL_INFO);
    uv_run(&loop, UV_RUN_NOWAIT);
    return uv_loop_close(&loop);
}

/* ---------------------------------------------------------------------------------------
 * Server: the handler under test
 * ------------------------------------------------------------------------------------- */

enum mode {
    RESPOND_NOW,   /* in on_request */
    RESPOND_LATER, /* from a timer, delay_ms later, in arrival order */
    HOLD,          /* the test responds */
    RESPOND_HUGE,  /* a body over ASPEN_HTTP_MAX_RESPONSE_BYTES */
};

#define MAX_HELD 16

struct srv {
    struct http_server *s;
    enum mode mode;
    uint32_t delay_ms;
    struct http_exchange *held[MAX_HELD];
    size_t n_held;
    uint64_t seen;
    int outstanding, max_outstanding;
    char last_peer[64];
    uv_timer_t timer;
    bool closed;
};

/* Answers "<method> <target> <body length>:<body>" with an extra header. */
static void respond_echo(struct srv *t, struct http_exchange *x)
{
    const struct http_request *r = http_exchange_request(x);
    char body[256];
    int n = snprintf(body, sizeof(body), "%.*s %.*s %zu:%.*s", (int)r->method.len,
                     (const char *)r->method.ptr, (int)r->target.len, (const char *)r->target.ptr,
                     r->body.len, (int)(r->body.len < 64 ? r->body.len : 64),
                     r->body.len ? (const char *)r->body.ptr : "");
    t->outstanding--;
    http_respond(x, 200, "text/plain", "X-Test: 1\r\n", body, (size_t)n);
}

static void on_srv_timer(uv_timer_t *tm)
{
    struct srv *t = tm->data;
    for (size_t i = 0; i < t->n_held; i++)
        respond_echo(t, t->held[i]);
    t->n_held = 0;
}

static void on_request(void *ctx, struct http_exchange *x)
{
    struct srv *t = ctx;
    t->seen++;
    if (++t->outstanding > t->max_outstanding)
        t->max_outstanding = t->outstanding;
    snprintf(t->last_peer, sizeof(t->last_peer), "%s", http_exchange_peer(x));
    switch (t->mode) {
    case RESPOND_NOW:
        respond_echo(t, x);
        break;
    case RESPOND_LATER:
        ASPEN_ASSERT(t->n_held < MAX_HELD);
        t->held[t->n_held++] = x;
        uv_timer_start(&t->timer, on_srv_timer, t->delay_ms, 0);
        break;
    case HOLD:
        ASPEN_ASSERT(t->n_held < MAX_HELD);
        t->held[t->n_held++] = x;
        break;
    case RESPOND_HUGE: {
        static const char small[] = "never read";
        t->outstanding--;
        /* The server must refuse the length before it reads the body. */
        http_respond(x, 200, "text/plain", NULL, small, ASPEN_HTTP_MAX_RESPONSE_BYTES + 1);
        break;
    }
    }
}

static int srv_open(struct srv *t, enum mode mode, const struct http_server_options *opt)
{
    memset(t, 0, sizeof(*t));
    t->mode = mode;
    t->delay_ms = 20;
    uv_timer_init(&loop, &t->timer);
    t->timer.data = t;
    struct http_handlers h = {.on_request = on_request, .ctx = t};
    char err[128];
    return http_server_open_opts(&loop, "127.0.0.1", 0, &h, opt, &t->s, err, sizeof(err));
}

static bool srv_stats_open_is(struct srv *t, uint64_t n)
{
    struct http_server_stats st;
    http_server_stats(t->s, &st);
    return st.connections_open == n;
}

static bool srv_no_connections(void *ctx)
{
    return srv_stats_open_is(ctx, 0);
}

static bool srv_one_connection(void *ctx)
{
    return srv_stats_open_is(ctx, 1);
}

static bool srv_has_held(void *ctx)
{
    return ((struct srv *)ctx)->n_held > 0;
}

/* Closes the server and its timer; true once on_closed ran. */
static bool srv_close(struct srv *t)
{
    uv_close((uv_handle_t *)&t->timer, NULL);
    http_server_close(t->s, set_flag, &t->closed);
    return run_until(flag_set, &t->closed, WAIT_MS);
}

static struct http_server_stats srv_stats(struct srv *t)
{
    struct http_server_stats st;
    http_server_stats(t->s, &st);
    return st;
}

/* ---------------------------------------------------------------------------------------
 * Server: test clients (libuv TCP on the same loop)
 * ------------------------------------------------------------------------------------- */

struct client {
    uv_tcp_t tcp;
    uv_connect_t creq;
    bool connected, connect_failed, eof, closed;
    int connect_err, read_err;
    struct buf in; /* everything received */
};

struct wreq {
    uv_write_t req;
    uint8_t data[];
};

static void client_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    (void)suggested;
    struct client *c = h->data;
    ASPEN_ASSERT(buf_reserve(&c->in, 64 * 1024) == 0);
    *out = uv_buf_init((char *)c->in.data + c->in.len, 64 * 1024);
}

static void client_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    (void)b;
    struct client *c = s->data;
    if (nread > 0)
        c->in.len += (size_t)nread;
    else if (nread < 0) {
        c->eof = true;
        c->read_err = (int)nread;
        uv_read_stop(s);
    }
}

static void client_on_connect(uv_connect_t *req, int status)
{
    struct client *c = req->data;
    if (status < 0) {
        c->connect_failed = true;
        c->connect_err = status;
        return;
    }
    c->connected = true;
    uv_read_start((uv_stream_t *)&c->tcp, client_on_alloc, client_on_read);
}

static bool client_settled(void *ctx)
{
    struct client *c = ctx;
    return c->connected || c->connect_failed;
}

/* Connects to host:port; true once connected. */
static bool client_open_at(struct client *c, const char *host, uint16_t port)
{
    memset(c, 0, sizeof(*c));
    buf_init(&c->in, 8 * ASPEN_MIB);
    struct sockaddr_storage addr;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0)
        ASPEN_ASSERT(uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) == 0);
    uv_tcp_init(&loop, &c->tcp);
    c->tcp.data = c;
    c->creq.data = c;
    ASPEN_ASSERT(
        uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&addr, client_on_connect) == 0);
    run_until(client_settled, c, WAIT_MS);
    return c->connected;
}

static bool client_open(struct client *c, struct srv *t)
{
    return client_open_at(c, "127.0.0.1", http_server_port(t->s));
}

static void client_on_write(uv_write_t *req, int status)
{
    (void)status;
    mem_free(req);
}

static void client_send_bytes(struct client *c, const void *data, size_t len)
{
    struct wreq *w = mem_alloc(sizeof(*w) + len);
    ASPEN_ASSERT(w);
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
    ASPEN_ASSERT(uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, client_on_write) == 0);
}

static void client_send(struct client *c, const char *text)
{
    client_send_bytes(c, text, strlen(text));
}

static void client_on_closed(uv_handle_t *h)
{
    struct client *c = h->data;
    c->closed = true;
}

static void client_close(struct client *c)
{
    uv_close((uv_handle_t *)&c->tcp, client_on_closed);
    run_until(flag_set, &c->closed, WAIT_MS);
    buf_release(&c->in);
}

static bool client_eof(void *ctx)
{
    return ((struct client *)ctx)->eof;
}

static bool client_has_text(struct client *c, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= c->in.len; i++) {
        if (memcmp(c->in.data + i, needle, n) == 0)
            return true;
    }
    return false;
}

/* ---------------------------------------------------------------------------------------
 * Server: reading responses
 * ------------------------------------------------------------------------------------- */

struct resp {
    int status;
    struct slice head; /* status line and fields, up to the empty line */
    struct slice body;
    bool is_close;       /* Connection: close */
    bool is_keep_alive;  /* Connection: keep-alive */
    long content_length; /* -1: none */
};

static bool line_is(struct slice line, const char *name, struct slice *value)
{
    size_t n = strlen(name);
    if (line.len <= n || line.ptr[n] != ':')
        return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t a = line.ptr[i], b = (uint8_t)name[i];
        if ((a | 0x20) != (b | 0x20))
            return false;
    }
    *value = slice_make(line.ptr + n + 1, line.len - n - 1);
    while (value->len && value->ptr[0] == ' ') {
        value->ptr++;
        value->len--;
    }
    return true;
}

/* Splits the bytes received into whole responses (Content-Length framed; 1xx and 204 and
 * the response to a HEAD have no body). Returns how many. */
static size_t parse_responses(const struct client *c, struct resp *out, size_t max,
                              bool first_is_head)
{
    const uint8_t *d = c->in.data;
    size_t len = c->in.len, pos = 0, n = 0;
    while (n < max && pos < len) {
        size_t end = pos;
        while (end + 4 <= len && memcmp(d + end, "\r\n\r\n", 4) != 0)
            end++;
        if (end + 4 > len)
            break;
        struct resp r = {.head = slice_make(d + pos, end - pos), .content_length = -1};
        if (r.head.len < 12 || memcmp(r.head.ptr, "HTTP/1.1 ", 9) != 0)
            break;
        r.status = atoi((const char *)r.head.ptr + 9);
        size_t at = pos;
        while (at < end) {
            size_t e = at;
            while (e < end && d[e] != '\r')
                e++;
            struct slice line = slice_make(d + at, e - at), v;
            if (line_is(line, "content-length", &v))
                r.content_length = strtol((const char *)v.ptr, NULL, 10);
            else if (line_is(line, "connection", &v)) {
                r.is_close = v.len >= 5 && memcmp(v.ptr, "close", 5) == 0;
                r.is_keep_alive = v.len >= 10 && memcmp(v.ptr, "keep-alive", 10) == 0;
            }
            at = e + 2;
        }
        size_t body = 0;
        if (r.status >= 200 && r.status != 204 && !(n == 0 && first_is_head))
            body = r.content_length < 0 ? 0 : (size_t)r.content_length;
        if (len - (end + 4) < body)
            break;
        r.body = slice_make(d + end + 4, body);
        out[n++] = r;
        pos = end + 4 + body;
    }
    return n;
}

struct want_responses {
    struct client *c;
    size_t n;
};

static bool has_responses(void *ctx)
{
    struct want_responses *w = ctx;
    struct resp r[16];
    return parse_responses(w->c, r, 16, false) >= w->n;
}

static bool wait_responses(struct client *c, size_t n)
{
    struct want_responses w = {c, n};
    return run_until(has_responses, &w, WAIT_MS);
}

static bool body_is(const struct resp *r, const char *text)
{
    return slice_eq(r->body, slice_str(text));
}

static bool head_has(const struct resp *r, const char *text)
{
    size_t n = strlen(text);
    for (size_t i = 0; i + n <= r->head.len; i++) {
        if (memcmp(r->head.ptr + i, text, n) == 0)
            return true;
    }
    return false;
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: t\r\n\r\n"

/* ---------------------------------------------------------------------------------------
 * Server tests
 * ------------------------------------------------------------------------------------- */

static void test_server_get(void)
{
    loop_begin();
    struct srv t;
    CHECK_OK(srv_open(&t, RESPOND_NOW, NULL));
    CHECK(http_server_port(t.s) != 0);
    struct client c;
    CHECK(client_open(&c, &t));
    client_send(&c, GET("/a?b=1"));
    CHECK(wait_responses(&c, 1));
    struct resp r[2];
    CHECK_EQ(parse_responses(&c, r, 2, false), 1);
    CHECK_EQ(r[0].status, 200);
    CHECK(body_is(&r[0], "GET /a?b=1 0:"));
    CHECK(head_has(&r[0], "HTTP/1.1 200 OK\r\n"));
    CHECK(head_has(&r[0], "\r\nContent-Type: text/plain\r\n"));
    CHECK(head_has(&r[0], "\r\nX-Test: 1"));
    CHECK(!r[0].is_close);
    CHECK(strncmp(t.last_peer, "127.0.0.1:", 10) == 0);
    run_for(50);
    CHECK(!c.eof); /* kept alive */
    struct http_server_stats st = srv_stats(&t);
    CHECK_EQ(st.requests, 1);
    CHECK_EQ(st.connections_total, 1);
    CHECK_EQ(st.connections_open, 1);
    CHECK_EQ(st.parse_errors, 0);
    client_close(&c);
    CHECK(run_until(srv_no_connections, &t, WAIT_MS));
    CHECK(srv_close(&t));
    CHECK_EQ(loop_end(), 0);
}

static void test_server_deferred(void)
{
    loop_begin();
    struct srv t;
    CHECK_OK(srv_open(&t, RESPOND_LATER, NULL));
    t.delay_ms = 100;
    struct client c;
    CHECK(client_open(&c, &t));
    client_send(&c, GET("/later"));
    CHECK(run_until(srv_has_held, &t, WAIT_MS));
    run_for(20);
    CHECK_EQ(c.in.len, 0); /* nothing until the handler responds */
    CHECK(wait_responses(&c, 1));
    struct resp r[1];
    CHECK_EQ(parse_responses(&c, r, 1, false), 1);
    CHECK(body_is(&r[0], "GET /later 0:"));
    client_close(&c);
    CHECK(srv_close(&t));
    CHECK_EQ(loop_end(), 0);
}

static void test_server_keep_alive(void)
{
    loop_begin();
    struct srv t;
    CHECK_OK(srv_open(&t, RESPOND_NOW, NULL));
    struct client c;
    CHECK(client_open(&c, &t));
    client_send(&c, GET("/one"));
    CHECK(wait_responses(&c, 1));
    client_send(&c, "POST /two HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    CHECK(wait_responses(&c, 2));
    struct resp r[2];
    CHECK_EQ(parse_responses(&c, r, 2, false), 2);
    CHECK(body_is(&r[0], "GET /one 0:"));
    CHECK(body_is(&r[1], "POST /two 3:abc"));
    CHECK_EQ(srv_stats(&t).connections_total, 1);
    CHECK_EQ(srv_stats(&t).requests, 2);
    client_close(&c);
    CHECK(srv_close(&t));
    CHECK_EQ(loop_end(), 0);
}

static void test_server_pipelined(void)
{
    loop_begin();
    struct srv t;
    CHECK_OK(srv_open(&t, RESPOND_LATER, NULL));
    struct client c;
    CHECK(client_open(&c, &t));
    client_send(&c, GET("/1") "POST /2 HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi"
                              "PUT /3 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "3\r\nabc\r\n0\r\n\r\n"
                              "GET /4 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    CHECK(wait_responses(&c, 4));
    CHECK(run_until(client_eof, &c, WAIT_MS));
    struct resp r[5];
    CHECK_EQ(parse_responses(&c, r, 5, false), 4);
    CHECK(body_is(&r[0], "GET /1 0:"));
    CHECK(body_is(&r[1], "POST /2 2:hi"));
    CHECK(body_is(&r[2], "PUT /3 3:abc"));
    CHECK(body_is(&r[3], "GET /4 0:"));
    CHECK(!r[2].is_close && r[3].is_close);
    CHECK_EQ(t.max_outstanding, 1); /* one request at a time */
    client_close(&c);
    CHECK(srv_close(&t));
    CHECK_EQ(loop_end(), 0);
}

static void client_on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    mem_free(req);
}

/* Half-closes: no more bytes from the client. */
static void client_shutdown(struct client *c)
{
    uv_shutdown_t *req = mem_alloc(sizeof(*req));
    ASPEN_ASSERT(req);
    ASPEN_ASSERT(uv_shutdown(req, (uv_stream_t *)&c->tcp, client_on_shutdown) == 0);
}

static void test_server_half_close(void)
{
    loop_begin();
    struct srv t;
    CHECK_OK(srv_open(&t, RESPOND_NOW, NULL));
    struct client c;
    CHECK(client_open(&c, &t));
    client_send(&c, GET("/bye"));
    client_shutdown(&c);
    CHECK(run_until(client_eof, &c, WAIT_MS));
    struct resp r[2];
    CHECK_EQ(parse_responses(&c, r, 2, false), 1);
    CHECK(body_is(&r[0], "GET /bye 0:"));
    CHECK(run_until(srv_no_connections, &t, WAIT_MS));
    client_close(&c);
    CHECK(srv_close(&t));
    CHECK_EQ(loop_end(), 0);
}

static void test_server_pipelined_error(void)
{
    loop_begin();
    struct srv t;
    CHECK_OK(srv_open(&t, RESPOND_NOW, NULL));
    struct client c;
    CHECK(client_open(&c, &t));
    client_send(&c, GET("/ok") "GET /bad HTTP/1.1\r\nHost: t\r\nX : y\r\n\r\n" GET("/never"));
    CHECK(run_until(client_eof, &c, WAIT_MS));
    struct resp r[3];
    CHECK_EQ(parse_responses(&c, r, 3, false), 2);
    CHECK(body_is(&r[0], "GET /ok 0:"));
    CHECK_EQ(r[1].status, 400);
    CHECK(r[1].is_close);
    CHECK(body_is(&r[1], "whitespace before colon\n"));
    CHECK_EQ(t.seen, 1);
    client_close(&c);
    CHECK(srv_close(&t));
    CHECK_EQ(loop_end(), 0);
}

static void test_server_connection_close(void)
{
    loop_begin();
    struct srv t;
    CHECK_OK(srv_open(&t, RESPOND_NOW, NULL));
    struct client c;
    CHECK(client_open(&c, &t));
    client_send(&c, "GET /c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    CHECK(run_until(client_eof, &c, WAIT_MS));
    struct resp r[2];
    CHECK_EQ(parse_responses(&c, r, 2, false), 1);
    CHECK(r[0].is_close);
    CHECK(body_is(&r[0], "GET /c 0:"));
    client_close(&c);
    CHECK(srv_close(&t));
    CHECK_EQ(loop_end(), 0);
}

static void test_server_http10(void)
{
    loop_begin();
    struct srv t;
    CHECK_OK(srv_open(&t, RESPOND_NOW, NULL));
    struct client c;
    CHECK(client_open(&c, &t));
    client_send(&c, "GET /old HTTP/1.0\r\n\r\n");
    CHECK(run_until(client_eof, &c, WAIT_MS));
    struct resp r[2];
    CHECK_EQ(parse_responses(&c, r, 2, false), 1);
    CHECK(r[0].is_close);
    CHECK(head_has(&r[0], "HTTP/1.1 200 OK"));
    client_close(&c);
    /* HTTP/1.0 asking for keep-alive is told it is kept. */
    CHECK(client_open(&c, &t));
    client_send(&c, "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    CHECK(wait_responses(&c, 1));
    run_for(30);
    CHECK(!c.eof);
    client_send(&c, "GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    CHECK(wait_responses(&c, 2));
    CHECK_EQ(parse_responses(&c, r, 2, false), 2);
    CHECK(r[0].is_keep_alive && r[1].is_keep_alive);
    CHECK(body_is(&r[1], "GET /b 0:"));
    client_close(&c);
    CHECK(srv_close(&t));
    CHECK_EQ(loop_end(), 0);
}

static bool client_has_head_end(void *ctx)
{
    return client_has_text(ctx, "\r\n\r\n");
}

static void test_server_head(void)
{
    loop_begin();
    struct srv t;
    CHECK_OK(srv_open(&t, RESPOND_NOW, NULL));
    struct client c;
    CHECK(client_open(&c, &t));
    client_send(&c, "HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(run_until(client_has_head_end, &c, WAIT_MS));
    run_for(30);
    struct resp r[2];
    CHECK_EQ(parse_responses(&c, r, 2, true), 1);
    CHECK_EQ(r[0].content_length, (long)strlen("HEAD /h 0:"));
    CHECK_EQ(c.in.len, r[0].head.len + 4); /* no body bytes */
    client_close(&c);
    CHECK(srv_close(&t));
    CHECK_EQ(loop_end(), 0);
}

static bool client_has_continue(void *ctx)
{
    return client_has_text(ctx, "HTTP/1.1 100 Continue\r\n\r\n");
}

static void test_server_continue(void)
{
    loop_begin();
    struct srv t;
    CHECK_OK(srv_open(&t, RESPOND_NOW, NULL));
    struct client c;
    CHECK(client_open(&c, &t));
    client_send(&c, "PUT /k HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                    "Content-Length: 5\r\n\r\n");
    CHECK(run_until(client_has_continue, &c, WAIT_MS));
    CHECK_EQ(t.seen, 0);
    client_send(&c, "hello");
    CHECK(wait_responses(&c, 2));
    struct resp r[2];
    CHECK_EQ(parse_responses(&c, r, 2, false), 2);
    CHECK_EQ(r[0].status, 100);
    CHECK_EQ(r[1].status, 200);
    CHECK(body_is(&r[1], "PUT /k 5:hello"));
    client_close(&c);
    CHECK(srv_close(&t));
    CHECK_EQ(loop_end(), 0);
}

static void test_server_too_large(void)
{
    loop_begin();
    struct srv t;
    struct http_server_options opt = {.linger_ms = 200};
    CHECK_OK(srv_open(&t, RESPOND_NOW, &opt));
    struct client c;
    CHECK(client_open(&c, &t));
    char head[160];
    snprintf(head, sizeof(head), "PUT /big HTTP/1.1\r\nHost: t\r\nContent-Length: %llu\r\n\r\n",
             (unsigned long long)ASPEN_HTTP_MAX_BODY_BYTES + 1);
    client_send(&c, head);
    /* The client keeps sending its body: the lingering close must still deliver the 413. */
    static uint8_t chunk[256 * 1024];
    memset(chunk, 'x', sizeof(chunk));
    client_send_bytes(&c, chunk, sizeof(chunk));
    CHECK(run_until(client_eof, &c, WAIT_MS));
    struct resp r[2];
    CHECK_EQ(parse_responses(&c, r, 2, false), 1);
    CHECK_EQ(r[0].status, 413);
    CHECK(r[0].is_close);
    CHECK(body_is(&r[0], "body too large\n"));
    CHECK_EQ(t.seen, 0);
    CHECK_EQ(srv_stats(&t).parse_errors, 1);
    CHECK(log_has_line("bad request", "status=413"));
    client_close(&c);
    CHECK(run_until(srv_no_connections, &t, WAIT_MS));
    CHECK(srv_close(&t));
    CHECK_EQ(loop_end(), 0);
}

static void test_server_garbage(void)
{
    loop_begin();
    struct srv t;
    CHECK_OK(srv_open(&t, RESPOND_NOW, NULL));
    struct client c;
    CHECK(client_open(&c, &t));
    /* A TLS ClientHello's first bytes, then noise. */
    client_send_bytes(&c, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", 22);
    CHECK(run_until(client_eof, &c, WAIT_MS));
    struct resp r[2];
    CHECK_EQ(parse_responses(&c, r, 2, false), 1);
    CHECK_EQ(r[0].status, 400);
    CHECK(r[0].is_close);
    CHECK_EQ(srv_stats(&t).parse_errors, 1);
    CHECK(log_has_line("bad request", "status=400"));
    client_close(&c);
    /* The HTTP/2 preface is answered 505. */
    CHECK(client_open(&c, &t));
    client_send(&c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    CHECK(run_until(client_eof, &c, WAIT_MS));
    CHECK_EQ(parse_responses(&c, r, 2, false), 1);
    CHECK_EQ(r[0].status, 505);
    client_close(&c);
    CHECK(srv_close(&t));
    CHECK_EQ(loop_end(), 0);
}

/* ---------------------------------------------------------------------------------------
 * HTTP/2 handover (http_server_options.on_h2_preface)
 * ------------------------------------------------------------------------------------- */

struct h2_taken {
    uv_tcp_t *tcp;
    uint8_t bytes[256];
    size_t n;
    int calls;
    bool closed;
};

static void h2_take(void *ctx, uv_tcp_t *tcp, const uint8_t *bytes, size_t n)
{
    struct h2_taken *h = ctx;
    h->calls++;
    h->tcp = tcp;
    h->n = n < sizeof(h->bytes) ? n : sizeof(h->bytes);
    memcpy(h->bytes, bytes, h->n);
}

static bool h2_has_tcp(void *ctx)
{
    return ((struct h2_taken *)ctx)->tcp != NULL;
}

static void h2_on_closed(uv_handle_t *h)
{
    struct h2_taken *t = h->data;
    t->closed = true;
    mem_free(h);
}

static void h2_on_write(uv_write_t *req, int status)
{
    (void)status;
    mem_free(req);
}

static bool client_has_hello(void *ctx)
{
    return client_has_text(ctx, "hello from the new owner");
}

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static void test_server_h2_handover(void)
{
    loop_begin();
    struct srv t;
    struct h2_taken taken = {0};
    struct http_server_options opt = {.on_h2_preface = h2_take, .h2_ctx = &taken};
    CHECK_OK(srv_open(&t, RESPOND_NOW, &opt));
    /* HTTP/1.1 still works with the callback set, including requests that start like the
     * preface and then differ. */
    struct client c;
    CHECK(client_open(&c, &t));
    client_send(&c, GET("/plain"));
    CHECK(wait_responses(&c, 1));
    client_close(&c);
    CHECK(client_open(&c, &t));
    client_send(&c, "PRI * HTTP/2.0\r\n\r\nXX");
    CHECK(run_until(client_eof, &c, WAIT_MS));
    struct resp r[2];
    CHECK_EQ(parse_responses(&c, r, 2, false), 1);
    CHECK_EQ(r[0].status, 505);
    client_close(&c);
    CHECK_EQ(taken.calls, 0);
    /* The preface, split across two sends, plus the bytes after it: all handed over. */
    CHECK(client_open(&c, &t));
    client_send_bytes(&c, h2_preface, 5);
    run_for(30);
    CHECK_EQ(taken.calls, 0);
    client_send(&c, h2_preface + 5);
    client_send(&c, "\x00\x00\x00\x04\x00\x00\x00\x00\x00"); /* an empty SETTINGS frame */
    CHECK(run_until(h2_has_tcp, &taken, WAIT_MS));
    run_for(30); /* nothing more is read by the HTTP/1.1 server */
    CHECK_EQ(taken.calls, 1);
    size_t plen = sizeof(h2_preface) - 1;
    CHECK(taken.n == plen || taken.n == plen + 9);
    CHECK_MEM_EQ(taken.bytes, h2_preface, plen);
    CHECK_EQ(srv_stats(&t).handed_over, 1);
    CHECK(run_until(srv_no_connections, &t, WAIT_MS));
    CHECK_EQ(t.seen, 1); /* only the plain GET reached the handler */
    /* The socket works for its new owner, and outlives the HTTP server. */
    CHECK(srv_close(&t));
    uv_write_t *w = mem_alloc(sizeof(*w));
    static const char hello[] = "hello from the new owner";
    uv_buf_t b = uv_buf_init((char *)hello, sizeof(hello) - 1);
    CHECK(uv_write(w, (uv_stream_t *)taken.tcp, &b, 1, h2_on_write) == 0);
    CHECK(run_until(client_has_hello, &c, WAIT_MS));
    taken.tcp->data = &taken;
    uv_close((uv_handle_t *)taken.tcp, h2_on_closed);
    CHECK(run_until(flag_set, &taken.closed, WAIT_MS));
    CHECK(run_until(client_eof, &c, WAIT_MS));
    client_close(&c);
    CHECK_EQ(loop_end(), 0);
}

static void test_server_client_leaves(void)
{
    loop_begin();
    struct srv t;
    CHECK_OK(srv_open(&t, HOLD, NULL));
    struct client c;
    CHECK(client_open(&c, &t));
    client_send(&c, GET("/slow"));
    CHECK(run_until(srv_has_held, &t, WAIT_MS));
    client_close(&c);
    /* The server notices while the handler still holds the request. */
    CHECK(run_until(srv_no_connections, &t, WAIT_MS));
    CHECK(log_has_line("connection closed", "client went away"));
    /* The request stays readable until the response, which then only frees it. */
    const struct http_request *req = http_exchange_request(t.held[0]);
    CHECK(slice_eq(req->target, slice_str("/slow")));
    CHECK(strncmp(http_exchange_peer(t.held[0]), "127.0.0.1:", 10) == 0);
    respond_echo(&t, t.held[0]);
    t.n_held = 0;
    CHECK(srv_close(&t));
    CHECK_EQ(loop_end(), 0);
}

static void test_server_read_timeout(void)
{
    loop_begin();
    struct srv t;
    struct http_server_options opt = {.read_timeout_ms = 150, .linger_ms = 100};
    CHECK_OK(srv_open(&t, RESPOND_NOW, &opt));
    struct client c;
    CHECK(client_open(&c, &t));
    uint64_t start = now_ms();
    client_send(&c, "GET /slow HTTP/1.1\r\nHost: t\r\n"); /* never finished */
    CHECK(run_until(client_eof, &c, WAIT_MS));
    CHECK(now_ms() - start >= 100);
    struct resp r[2];
    CHECK_EQ(parse_responses(&c, r, 2, false), 1);
    CHECK_EQ(r[0].status, 408);
    CHECK(r[0].is_close);
    CHECK_EQ(srv_stats(&t).timeouts, 1);
    CHECK(log_has_line("request timed out", NULL));
    client_close(&c);
    /* A connection that sends nothing is closed silently. */
    CHECK(client_open(&c, &t));
    CHECK(run_until(client_eof, &c, WAIT_MS));
    CHECK_EQ(c.in.len, 0);
    CHECK_EQ(srv_stats(&t).timeouts, 2);
    client_close(&c);
    CHECK(srv_close(&t));
    CHECK_EQ(loop_end(), 0);
}

static void test_server_idle_timeout(void)
{
    loop_begin();
    struct srv t;
    struct http_server_options opt = {.idle_timeout_ms = 150};
    CHECK_OK(srv_open(&t, RESPOND_NOW, &opt));
    struct client c;
    CHECK(client_open(&c, &t));
    client_send(&c, GET("/x"));
    CHECK(wait_responses(&c, 1));
    size_t got = c.in.len;
    CHECK(run_until(client_eof, &c, WAIT_MS));
    CHECK_EQ(c.in.len, got); /* closed without a word */
    CHECK_EQ(srv_stats(&t).timeouts, 1);
    client_close(&c);
    CHECK(srv_close(&t));
    CHECK_EQ(loop_end(), 0);
}

static bool client_gone(void *ctx)
{
    struct client *c = ctx;
    return c->eof || c->connect_failed;
}

static void test_server_connection_cap(void)
{
    loop_begin();
    struct srv t;
    struct http_server_options opt = {.max_connections = 2};
    CHECK_OK(srv_open(&t, RESPOND_NOW, &opt));
    struct client a, b, x;
    CHECK(client_open(&a, &t));
    client_send(&a, GET("/a"));
    CHECK(wait_responses(&a, 1));
    CHECK(client_open(&b, &t));
    client_send(&b, GET("/b"));
    CHECK(wait_responses(&b, 1));
    /* The third is accepted and closed at once. */
    client_open(&x, &t);
    CHECK(run_until(client_gone, &x, WAIT_MS));
    CHECK_EQ(x.in.len, 0);
    CHECK_EQ(srv_stats(&t).connections_refused, 1);
    CHECK(log_has_line("connection refused", "too many connections"));
    client_close(&x);
    /* The two still work; once one leaves, a new one is served. */
    client_send(&a, GET("/a2"));
    CHECK(wait_responses(&a, 2));
    client_close(&b);
    CHECK(run_until(srv_one_connection, &t, WAIT_MS));
    CHECK(client_open(&x, &t));
    client_send(&x, GET("/x"));
    CHECK(wait_responses(&x, 1));
    CHECK_EQ(srv_stats(&t).connections_total, 3);
    client_close(&x);
    client_close(&a);
    CHECK(srv_close(&t));
    CHECK_EQ(loop_end(), 0);
}

static void test_server_close_outstanding(void)
{
    loop_begin();
    struct srv t;
    CHECK_OK(srv_open(&t, HOLD, NULL));
    struct client c;
    CHECK(client_open(&c, &t));
    client_send(&c, "PUT /held HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\ndata");
    CHECK(run_until(srv_has_held, &t, WAIT_MS));
    uv_close((uv_handle_t *)&t.timer, NULL);
    http_server_close(t.s, set_flag, &t.closed);
    CHECK(run_until(flag_set, &t.closed, WAIT_MS));
    CHECK(run_until(client_eof, &c, WAIT_MS));
    CHECK_EQ(c.in.len, 0);
    /* The server is gone; the exchange is still valid, and responding frees it. */
    const struct http_request *req = http_exchange_request(t.held[0]);
    CHECK(slice_eq(req->body, slice_str("data")));
    respond_echo(&t, t.held[0]);
    client_close(&c);
    CHECK_EQ(loop_end(), 0);
}

static void test_server_stop_accepting(void)
{
    loop_begin();
    struct srv t;
    CHECK_OK(srv_open(&t, RESPOND_NOW, NULL));
    struct client a, b;
    CHECK(client_open(&a, &t));
    uint16_t port = http_server_port(t.s);
    http_server_stop_accepting(t.s);
    http_server_stop_accepting(t.s); /* idempotent */
    run_for(10);
    CHECK(!client_open_at(&b, "127.0.0.1", port));
    CHECK_EQ(b.connect_err, UV_ECONNREFUSED);
    client_close(&b);
    client_send(&a, GET("/still"));
    CHECK(wait_responses(&a, 1));
    client_close(&a);
    CHECK(srv_close(&t));
    CHECK_EQ(loop_end(), 0);
}

static void test_server_response_too_large(void)
{
    loop_begin();
    struct srv t;
    CHECK_OK(srv_open(&t, RESPOND_HUGE, NULL));
    struct client c;
    CHECK(client_open(&c, &t));
    client_send(&c, GET("/huge"));
    CHECK(wait_responses(&c, 1));
    struct resp r[1];
    CHECK_EQ(parse_responses(&c, r, 1, false), 1);
    CHECK_EQ(r[0].status, 500);
    CHECK(log_has_line("response too large", NULL));
    client_close(&c);
    CHECK(srv_close(&t));
    CHECK_EQ(loop_end(), 0);
}

static void test_server_open_errors(void)
{
    loop_begin();
    struct http_handlers h = {.on_request = on_request, .ctx = NULL};
    struct http_server *s = NULL;
    char err[160];
    CHECK_ERR(http_server_open(&loop, "localhost", 0, &h, &s, err, sizeof(err)), ASPEN_E_INVALID);
    CHECK(strstr(err, "invalid address 'localhost'") != NULL);
    CHECK_ERR(http_server_open(&loop, "127.0.0.256", 0, &h, &s, err, sizeof(err)), ASPEN_E_INVALID);
    struct http_handlers none = {0};
    CHECK_ERR(http_server_open(&loop, "127.0.0.1", 0, &none, &s, err, sizeof(err)),
              ASPEN_E_INVALID);
    struct http_server_options too_many = {.max_connections = ASPEN_MAX_CLIENT_CONNECTIONS + 1};
    CHECK_ERR(http_server_open_opts(&loop, "127.0.0.1", 0, &h, &too_many, &s, err, sizeof(err)),
              ASPEN_E_INVALID);
    /* The port is taken. */
    struct srv t;
    CHECK_OK(srv_open(&t, RESPOND_NOW, NULL));
    CHECK_ERR(http_server_open(&loop, "127.0.0.1", http_server_port(t.s), &h, &s, err, sizeof(err)),
              UV_EADDRINUSE);
    CHECK(strstr(err, "cannot listen on 127.0.0.1") != NULL);
    CHECK(srv_close(&t));
    CHECK_EQ(loop_end(), 0);
}

static void test_server_ipv6(void)
{
    loop_begin();
    struct srv t;
    memset(&t, 0, sizeof(t));
    t.mode = RESPOND_NOW;
    uv_timer_init(&loop, &t.timer);
    struct http_handlers h = {.on_request = on_request, .ctx = &t};
    char err[160];
    int rc = http_server_open(&loop, "::1", 0, &h, &t.s, err, sizeof(err));
    if (rc != 0) {
        /* No IPv6 loopback here: nothing to test. */
        fprintf(stderr, "skipped: %s\n", err);
        uv_close((uv_handle_t *)&t.timer, NULL);
        CHECK_EQ(loop_end(), 0);
        return;
    }
    struct client c;
    CHECK(client_open_at(&c, "::1", http_server_port(t.s)));
    client_send(&c, GET("/v6"));
    CHECK(wait_responses(&c, 1));
    CHECK(strncmp(t.last_peer, "[::1]:", 6) == 0);
    client_close(&c);
    CHECK(srv_close(&t));
    CHECK_EQ(loop_end(), 0);
}

static const struct test_case tests[] = {
    TEST(test_parse_table),
    TEST(test_parse_fields),
    TEST(test_parse_limit_method),
    TEST(test_parse_limit_target),
    TEST(test_parse_limit_head),
    TEST(test_parse_limit_headers),
    TEST(test_parse_limit_body),
    TEST(test_parse_limit_chunk_meta),
    TEST(test_parse_pipelined),
    TEST(test_parse_continue),
    TEST(test_parse_nomem),
    TEST(test_percent_decode),
    TEST(test_query_param),
    TEST(test_status_text),
    TEST(test_server_get),
    TEST(test_server_deferred),
    TEST(test_server_keep_alive),
    TEST(test_server_pipelined),
    TEST(test_server_pipelined_error),
    TEST(test_server_half_close),
    TEST(test_server_connection_close),
    TEST(test_server_http10),
    TEST(test_server_head),
    TEST(test_server_continue),
    TEST(test_server_too_large),
    TEST(test_server_garbage),
    TEST(test_server_h2_handover),
    TEST(test_server_client_leaves),
    TEST(test_server_read_timeout),
    TEST(test_server_idle_timeout),
    TEST(test_server_connection_cap),
    TEST(test_server_close_outstanding),
    TEST(test_server_stop_accepting),
    TEST(test_server_response_too_large),
    TEST(test_server_open_errors),
    TEST(test_server_ipv6),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("node_http", tests);
}
