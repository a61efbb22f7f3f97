/*
 * The HTTP/1.1 request parser (node/http.h): pure, no I/O, links only src/base.
 *
 * Bytes arrive in arbitrary chunks and the parser consumes exactly one request, so the
 * server can keep what follows (a pipelined request) for later. Every decision is made
 * at a byte position of the stream and depends only on the bytes before it, never on
 * where the chunks were cut: the request line and the chunked framing are stepped one
 * byte at a time, header lines are judged when their LF arrives, and size limits fire at
 * the first byte past them. So a request fed whole, byte by byte or split anywhere gives
 * the same result (the unit suite and fuzz_http check this).
 *
 * Memory: one growable buffer holds the request line and the header lines as received,
 * then the body (de-chunked) right after them. Header positions are kept as offsets while
 * the buffer may still move and turned into slices once the request is complete.
 *
 * Rules (RFC 9112 and RFC 9110) and the status each breach gets:
 *   - request line: method = token (400; longer than ASPEN_HTTP_MAX_METHOD_BYTES → 501),
 *     one SP, target = visible ASCII (400) in origin-form "/..." or "*" for OPTIONS only
 *     (400), over ASPEN_HTTP_MAX_TARGET_BYTES → 414, one SP, "HTTP/1.x" (other versions,
 *     "HTTP/2.0" of the HTTP/2 preface included → 505; not a version at all → 400);
 *     empty lines before it are skipped (RFC 9112 §2.2);
 *   - header lines: token name, no whitespace before the colon, no obs-fold, values of
 *     visible characters, SP, HT and obs-text (400); a bare CR anywhere → 400; lines end
 *     in CRLF or a bare LF (§2.2 allows it in the message head);
 *   - the head (request line + header lines + the empty line) over
 *     ASPEN_HTTP_MAX_HEADER_BYTES, or more than ASPEN_HTTP_MAX_HEADERS fields → 431;
 *   - HTTP/1.1 needs exactly one Host field, and no request may carry two (§3.2) → 400;
 *   - framing (§6): Transfer-Encoding with Content-Length, or in HTTP/1.0 → 400 (the
 *     request-smuggling ambiguities); codings other than one "chunked" → 501; Content-Length
 *     digits only, repeats equal, no overflow → 400; over ASPEN_HTTP_MAX_BODY_BYTES → 413;
 *     neither → no body;
 *   - chunked (§7.1): hex sizes (at most 16 digits → 400; a size that would take the body
 *     past its bound → 413 at once), extensions ignored but checked for control
 *     characters and bounded in total by ASPEN_HTTP_MAX_HEADER_BYTES (413), trailer fields
 *     checked and dropped (over ASPEN_HTTP_MAX_HEADER_BYTES → 431). The chunk framing
 *     needs CRLF: a bare LF there is refused, because the servers and proxies that disagree
 *     about it are how chunked bodies get smuggled.
 */
#include "node/http.h"

#include "base/assert.h"
#include "base/buf.h"
#include "base/constants.h"
#include "base/mem.h"

#include <limits.h>
#include <string.h>

/* After a big request the buffer is freed rather than kept for the next one, so an idle
 * keep-alive connection holds at most this much. */
#define PARSER_KEEP_BYTES (2 * ASPEN_HTTP_MAX_HEADER_BYTES)
/* "HTTP/1.1" */
#define VERSION_BYTES 8
/* 16 hex digits hold any 64-bit size; longer (zero-padded) sizes are refused. */
#define CHUNK_SIZE_MAX_DIGITS 16

enum state {
    S_REQUEST_LINE,
    S_HEADERS,
    S_BODY,         /* Content-Length bytes */
    S_CHUNK_SIZE,   /* hex digits */
    S_CHUNK_EXT_WS, /* whitespace after the size */
    S_CHUNK_EXT,    /* ";..." up to CR */
    S_CHUNK_SIZE_LF,
    S_CHUNK_DATA,
    S_CHUNK_DATA_CR,
    S_CHUNK_DATA_LF,
    S_TRAILER_START, /* start of a trailer line or of the final CRLF */
    S_TRAILER_NAME,
    S_TRAILER_VALUE,
    S_TRAILER_LF,
    S_TRAILER_END_LF,
    S_DONE,
    S_ERROR,
};

/* Steps of the request line. */
enum rl_step {
    RL_START,    /* before the method; skipping empty lines */
    RL_START_LF, /* CR of an empty line seen */
    RL_METHOD,
    RL_TARGET,
    RL_VERSION,
    RL_LF, /* CR after the version seen */
};

/* Where a header sits in the buffer (the buffer may move until the request is done). */
struct header_pos {
    uint32_t name_off, name_len;
    uint32_t value_off, value_len;
};

struct http_parser {
    struct buf buf; /* owned: request line, header lines, then the body */
    enum state state;
    enum rl_step rl;
    size_t head_bytes; /* bytes of the head so far, skipped empty lines included */
    size_t method_len, target_len, version_len;
    size_t line_start; /* offset of the header line being received */
    struct header_pos pos[ASPEN_HTTP_MAX_HEADERS];
    size_t n_headers;
    uint8_t version_minor;
    bool keep_alive;
    bool wants_continue; /* Expect: 100-continue, not yet taken by the server */
    size_t body_off;     /* where the body starts in buf */
    uint64_t body_left;  /* S_BODY: Content-Length bytes still to come */
    uint64_t chunk_left; /* chunk size, then its bytes still to come */
    unsigned chunk_digits;
    size_t chunk_ext_bytes; /* every extension of the request */
    size_t trailer_bytes;
    int error_status;
    const char *error_reason;
    struct http_header headers[ASPEN_HTTP_MAX_HEADERS];
    struct http_request req;
};

/* ---------------------------------------------------------------------------------------
 * Character classes
 * ------------------------------------------------------------------------------------- */

/* tchar (RFC 9110 §5.6.2). */
static bool is_tchar(uint8_t c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-vchar, SP or HT (RFC 9110 §5.5): anything but the other controls and DEL. */
static bool is_field_char(uint8_t c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

static int hex_value(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static uint8_t ascii_lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c + ('a' - 'A')) : c;
}

static bool eq_nocase(struct slice s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (ascii_lower(s.ptr[i]) != ascii_lower((uint8_t)lit[i]))
            return false;
    }
    return true;
}

static struct slice trim_ows(struct slice s)
{
    while (s.len && is_ows(s.ptr[0])) {
        s.ptr++;
        s.len--;
    }
    while (s.len && is_ows(s.ptr[s.len - 1]))
        s.len--;
    return s;
}

/* Splits a comma-separated list: the next element (trimmed; empty elements are skipped,
 * as RFC 9110 §5.6.1 asks of recipients) into *elem. False at the end. */
static bool list_next(struct slice *rest, struct slice *elem)
{
    while (rest->len) {
        const uint8_t *comma = memchr(rest->ptr, ',', rest->len);
        size_t n = comma ? (size_t)(comma - rest->ptr) : rest->len;
        *elem = trim_ows(slice_make(rest->ptr, n));
        rest->ptr += comma ? n + 1 : n;
        rest->len -= comma ? n + 1 : n;
        if (elem->len)
            return true;
    }
    return false;
}

/* ---------------------------------------------------------------------------------------
 * Life cycle
 * ------------------------------------------------------------------------------------- */

int http_parser_create(struct http_parser **out)
{
    struct http_parser *p = mem_calloc(1, sizeof(*p));
    if (!p)
        return ASPEN_E_NOMEM;
    buf_init(&p->buf, ASPEN_HTTP_MAX_HEADER_BYTES + ASPEN_HTTP_MAX_BODY_BYTES);
    http_parser_reset(p);
    *out = p;
    return 0;
}

void http_parser_free(struct http_parser *p)
{
    if (!p)
        return;
    buf_release(&p->buf);
    mem_free(p);
}

void http_parser_reset(struct http_parser *p)
{
    if (p->buf.cap > PARSER_KEEP_BYTES)
        buf_release(&p->buf);
    buf_clear(&p->buf);
    p->state = S_REQUEST_LINE;
    p->rl = RL_START;
    p->head_bytes = 0;
    p->method_len = p->target_len = p->version_len = 0;
    p->line_start = 0;
    p->n_headers = 0;
    p->version_minor = 0;
    p->keep_alive = false;
    p->wants_continue = false;
    p->body_off = 0;
    p->body_left = p->chunk_left = 0;
    p->chunk_digits = 0;
    p->chunk_ext_bytes = p->trailer_bytes = 0;
    p->error_status = 0;
    p->error_reason = NULL;
    memset(&p->req, 0, sizeof(p->req));
}

int http_parser_error_status(const struct http_parser *p)
{
    return p->state == S_ERROR ? p->error_status : 0;
}

const char *http_parser_error_reason(const struct http_parser *p)
{
    return p->state == S_ERROR ? p->error_reason : "";
}

bool http_parser_take_continue(struct http_parser *p)
{
    bool wants = p->wants_continue && p->state != S_DONE && p->state != S_ERROR;
    p->wants_continue = false;
    return wants;
}

static void fail(struct http_parser *p, int status, const char *reason)
{
    p->state = S_ERROR;
    p->error_status = status;
    p->error_reason = reason;
}

static bool append(struct http_parser *p, const uint8_t *d, size_t n)
{
    /* The buffer's maximum is the head bound plus the body bound, which the checks before
     * every append keep to; so only memory can run short. */
    if (buf_append(&p->buf, d, n) != 0) {
        fail(p, 500, "out of memory");
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------------------------------
 * The request line
 * ------------------------------------------------------------------------------------- */

/* The whole request line is in buf: judges the version and the form of the target. */
static void request_line_done(struct http_parser *p)
{
    const uint8_t *line = p->buf.data;
    struct slice method = slice_make(line, p->method_len);
    struct slice target = slice_make(line + p->method_len + 1, p->target_len);
    struct slice version = slice_make(target.ptr + target.len + 1, p->version_len);
    /* "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3); "HTTP/3" and friends name other versions. */
    bool is_http = version.len >= 6 && memcmp(version.ptr, "HTTP/", 5) == 0 &&
                   version.ptr[5] >= '0' && version.ptr[5] <= '9';
    bool has_minor = version.len == VERSION_BYTES && version.ptr[6] == '.' &&
                     version.ptr[7] >= '0' && version.ptr[7] <= '9';
    if (!is_http || (version.len != 6 && !has_minor)) {
        fail(p, 400, "malformed http version");
        return;
    }
    if (version.ptr[5] != '1') {
        fail(p, 505, "http version not supported");
        return;
    }
    if (!has_minor) {
        fail(p, 400, "malformed http version");
        return;
    }
    p->version_minor = (uint8_t)(version.ptr[7] - '0');
    bool is_asterisk = target.len == 1 && target.ptr[0] == '*';
    if (is_asterisk && !slice_eq(method, slice_str("OPTIONS"))) {
        fail(p, 400, "asterisk target outside OPTIONS");
        return;
    }
    if (!is_asterisk && target.ptr[0] != '/') {
        fail(p, 400, "request target not in origin form");
        return;
    }
    p->state = S_HEADERS;
    p->line_start = p->buf.len;
}

/* Steps the request line one byte at a time, so each limit fires at its exact byte.
 * Returns the bytes consumed. */
static size_t feed_request_line(struct http_parser *p, const uint8_t *d, size_t n)
{
    size_t i = 0;
    size_t span = p->rl == RL_START || p->rl == RL_START_LF ? SIZE_MAX : 0;
    while (i < n && p->state == S_REQUEST_LINE) {
        uint8_t c = d[i];
        if (++p->head_bytes > ASPEN_HTTP_MAX_HEADER_BYTES) {
            fail(p, 431, "request head too large");
            return i;
        }
        bool line_end = false;
        switch (p->rl) {
        case RL_START:
            if (c == '\r') {
                p->rl = RL_START_LF;
            } else if (c != '\n') {
                if (!is_tchar(c)) {
                    fail(p, 400, "malformed method");
                    return i;
                }
                p->rl = RL_METHOD;
                p->method_len = 1;
                span = i;
            }
            break;
        case RL_START_LF:
            if (c != '\n') {
                fail(p, 400, "bare cr");
                return i;
            }
            p->rl = RL_START;
            break;
        case RL_METHOD:
            if (c == ' ') {
                p->rl = RL_TARGET;
            } else if (!is_tchar(c)) {
                fail(p, 400, "malformed method");
                return i;
            } else if (++p->method_len > ASPEN_HTTP_MAX_METHOD_BYTES) {
                fail(p, 501, "method not implemented");
                return i;
            }
            break;
        case RL_TARGET:
            if (c == ' ' && p->target_len > 0) {
                p->rl = RL_VERSION;
            } else if (c <= 0x20 || c >= 0x7f) {
                fail(p, 400, "malformed request target");
                return i;
            } else if (++p->target_len > ASPEN_HTTP_MAX_TARGET_BYTES) {
                fail(p, 414, "request target too long");
                return i;
            }
            break;
        case RL_VERSION:
            if (c == '\r' && p->version_len > 0) {
                p->rl = RL_LF;
            } else if (c == '\n' && p->version_len > 0) {
                line_end = true;
            } else if (c <= 0x20 || c >= 0x7f || ++p->version_len > VERSION_BYTES) {
                fail(p, 400, "malformed http version");
                return i;
            }
            break;
        case RL_LF:
            if (c != '\n') {
                fail(p, 400, "bare cr");
                return i;
            }
            line_end = true;
            break;
        }
        i++;
        if (line_end) {
            if (!append(p, d + span, i - span))
                return i;
            span = SIZE_MAX;
            request_line_done(p);
        }
    }
    if (span != SIZE_MAX && p->state == S_REQUEST_LINE)
        append(p, d + span, i - span);
    return i;
}

/* ---------------------------------------------------------------------------------------
 * Header lines and the framing they decide
 * ------------------------------------------------------------------------------------- */

static struct slice pos_name(const struct http_parser *p, const struct header_pos *h)
{
    return slice_make(p->buf.data + h->name_off, h->name_len);
}

static struct slice pos_value(const struct http_parser *p, const struct header_pos *h)
{
    return slice_make(p->buf.data + h->value_off, h->value_len);
}

/* 1*DIGIT without overflow. */
static bool parse_content_length(struct slice v, uint64_t *out)
{
    if (v.len == 0)
        return false;
    uint64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9')
            return false;
        unsigned d = (unsigned)(v.ptr[i] - '0');
        if (n > (UINT64_MAX - d) / 10)
            return false;
        n = n * 10 + d;
    }
    *out = n;
    return true;
}

/* The empty line ended the head: decides keep-alive, Expect and how the body is framed. */
static void head_done(struct http_parser *p)
{
    bool has_cl = false, has_te = false, other_coding = false;
    bool saw_close = false, saw_keep_alive = false, expects_continue = false;
    unsigned chunked = 0, hosts = 0;
    uint64_t cl = 0;
    for (size_t i = 0; i < p->n_headers; i++) {
        struct slice name = pos_name(p, &p->pos[i]);
        struct slice value = pos_value(p, &p->pos[i]);
        struct slice rest = value, elem;
        if (eq_nocase(name, "content-length")) {
            uint64_t v;
            if (!parse_content_length(value, &v)) {
                fail(p, 400, "malformed content-length");
                return;
            }
            if (has_cl && v != cl) {
                fail(p, 400, "conflicting content-length");
                return;
            }
            has_cl = true;
            cl = v;
        } else if (eq_nocase(name, "transfer-encoding")) {
            has_te = true;
            while (list_next(&rest, &elem)) {
                if (eq_nocase(elem, "chunked"))
                    chunked++;
                else
                    other_coding = true;
            }
        } else if (eq_nocase(name, "connection")) {
            while (list_next(&rest, &elem)) {
                if (eq_nocase(elem, "close"))
                    saw_close = true;
                else if (eq_nocase(elem, "keep-alive"))
                    saw_keep_alive = true;
            }
        } else if (eq_nocase(name, "expect")) {
            expects_continue = eq_nocase(value, "100-continue");
        } else if (eq_nocase(name, "host")) {
            hosts++;
        }
    }
    if (hosts > 1 || (hosts == 0 && p->version_minor >= 1)) {
        fail(p, 400, hosts ? "more than one host field" : "missing host field");
        return;
    }
    if (has_te) {
        /* RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing;
         * with Content-Length too, the two framings disagree (request smuggling). */
        if (p->version_minor == 0) {
            fail(p, 400, "transfer-encoding in http/1.0");
            return;
        }
        if (has_cl) {
            fail(p, 400, "both content-length and transfer-encoding");
            return;
        }
        if (other_coding) {
            fail(p, 501, "transfer coding not implemented");
            return;
        }
        if (chunked != 1) {
            fail(p, 400, "malformed transfer-encoding");
            return;
        }
    }
    if (has_cl && cl > ASPEN_HTTP_MAX_BODY_BYTES) {
        fail(p, 413, "body too large");
        return;
    }
    p->keep_alive = p->version_minor >= 1 ? !saw_close : saw_keep_alive && !saw_close;
    /* An HTTP/1.0 client does not wait for 100 Continue (RFC 9110 §10.1.1). */
    p->wants_continue = expects_continue && p->version_minor >= 1;
    p->body_off = p->buf.len;
    if (has_te) {
        p->state = S_CHUNK_SIZE;
        p->chunk_left = 0;
        p->chunk_digits = 0;
    } else if (cl > 0) {
        p->state = S_BODY;
        p->body_left = cl;
    } else {
        p->state = S_DONE;
    }
    if (p->state == S_DONE)
        p->wants_continue = false;
}

/* A whole header line (LF included) sits in buf from line_start. */
static void header_line(struct http_parser *p)
{
    const uint8_t *line = p->buf.data + p->line_start;
    size_t len = p->buf.len - p->line_start - 1;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len == 0) {
        head_done(p);
        return;
    }
    if (is_ows(line[0])) {
        fail(p, 400, "obsolete line folding");
        return;
    }
    if (memchr(line, '\r', len)) {
        fail(p, 400, "bare cr");
        return;
    }
    const uint8_t *colon = memchr(line, ':', len);
    if (!colon) {
        fail(p, 400, "header line without colon");
        return;
    }
    size_t name_len = (size_t)(colon - line);
    if (name_len == 0) {
        fail(p, 400, "empty header name");
        return;
    }
    if (is_ows(line[name_len - 1])) {
        fail(p, 400, "whitespace before colon");
        return;
    }
    for (size_t i = 0; i < name_len; i++) {
        if (!is_tchar(line[i])) {
            fail(p, 400, "malformed header name");
            return;
        }
    }
    struct slice value = trim_ows(slice_make(colon + 1, len - name_len - 1));
    for (size_t i = 0; i < value.len; i++) {
        if (!is_field_char(value.ptr[i])) {
            fail(p, 400, "malformed header value");
            return;
        }
    }
    if (p->n_headers == ASPEN_HTTP_MAX_HEADERS) {
        fail(p, 431, "too many header fields");
        return;
    }
    /* Offsets fit 32 bits: the head is bounded by ASPEN_HTTP_MAX_HEADER_BYTES. */
    struct header_pos *h = &p->pos[p->n_headers++];
    h->name_off = (uint32_t)p->line_start;
    h->name_len = (uint32_t)name_len;
    h->value_off = (uint32_t)(value.ptr - p->buf.data);
    h->value_len = (uint32_t)value.len;
    p->line_start = p->buf.len;
}

/* Header lines are judged when their LF arrives; the head's bound fires at its exact
 * byte (the whole segment is refused, as a byte-by-byte feed would refuse its last byte).
 */
static size_t feed_headers(struct http_parser *p, const uint8_t *d, size_t n)
{
    size_t i = 0;
    while (i < n && p->state == S_HEADERS) {
        const uint8_t *nl = memchr(d + i, '\n', n - i);
        size_t seg = nl ? (size_t)(nl - (d + i)) + 1 : n - i;
        if (seg > ASPEN_HTTP_MAX_HEADER_BYTES - p->head_bytes) {
            fail(p, 431, "request head too large");
            return i;
        }
        if (!append(p, d + i, seg))
            return i;
        p->head_bytes += seg;
        i += seg;
        if (nl)
            header_line(p);
    }
    return i;
}

/* ---------------------------------------------------------------------------------------
 * Bodies
 * ------------------------------------------------------------------------------------- */

static size_t feed_body(struct http_parser *p, const uint8_t *d, size_t n)
{
    size_t k = n < p->body_left ? n : (size_t)p->body_left;
    if (!append(p, d, k))
        return 0;
    p->body_left -= k;
    if (p->body_left == 0)
        p->state = S_DONE;
    return k;
}

static size_t body_len(const struct http_parser *p)
{
    return p->buf.len - p->body_off;
}

/* Steps the chunked framing (RFC 9112 §7.1) one byte at a time; chunk data is copied in
 * runs. Returns the bytes consumed. */
static size_t feed_chunked(struct http_parser *p, const uint8_t *d, size_t n)
{
    size_t i = 0;
    while (i < n && p->state != S_DONE && p->state != S_ERROR) {
        if (p->state == S_CHUNK_DATA) {
            size_t k = n - i < p->chunk_left ? n - i : (size_t)p->chunk_left;
            if (!append(p, d + i, k))
                return i;
            i += k;
            p->chunk_left -= k;
            if (p->chunk_left == 0)
                p->state = S_CHUNK_DATA_CR;
            continue;
        }
        uint8_t c = d[i++];
        if (p->state >= S_TRAILER_START && ++p->trailer_bytes > ASPEN_HTTP_MAX_HEADER_BYTES) {
            fail(p, 431, "trailer section too large");
            return i;
        }
        switch (p->state) {
        case S_CHUNK_SIZE: {
            int v = hex_value(c);
            if (v >= 0) {
                if (++p->chunk_digits > CHUNK_SIZE_MAX_DIGITS) {
                    fail(p, 400, "chunk size too long");
                    return i;
                }
                /* The body bound is far below 2^60, so this check also rules out
                 * overflow of the shift; the explicit test says so to the reader. */
                if (p->chunk_left > (UINT64_MAX >> 4)) {
                    fail(p, 400, "chunk size overflows");
                    return i;
                }
                p->chunk_left = p->chunk_left << 4 | (uint64_t)v;
                if (p->chunk_left > ASPEN_HTTP_MAX_BODY_BYTES - body_len(p)) {
                    fail(p, 413, "body too large");
                    return i;
                }
            } else if (p->chunk_digits == 0) {
                fail(p, 400, "malformed chunk size");
                return i;
            } else if (is_ows(c)) {
                p->state = S_CHUNK_EXT_WS;
            } else if (c == ';') {
                p->state = S_CHUNK_EXT;
            } else if (c == '\r') {
                p->state = S_CHUNK_SIZE_LF;
            } else {
                fail(p, 400, "malformed chunk size");
                return i;
            }
            break;
        }
        case S_CHUNK_EXT_WS:
            if (c == ';') {
                p->state = S_CHUNK_EXT;
            } else if (c == '\r') {
                p->state = S_CHUNK_SIZE_LF;
            } else if (!is_ows(c)) {
                fail(p, 400, "malformed chunk extension");
                return i;
            }
            break;
        case S_CHUNK_EXT:
            if (c == '\r') {
                p->state = S_CHUNK_SIZE_LF;
            } else if (!is_field_char(c)) {
                fail(p, 400, "malformed chunk extension");
                return i;
            } else if (++p->chunk_ext_bytes > ASPEN_HTTP_MAX_HEADER_BYTES) {
                fail(p, 413, "chunk extensions too large");
                return i;
            }
            break;
        case S_CHUNK_SIZE_LF:
            if (c != '\n') {
                fail(p, 400, "chunk line without crlf");
                return i;
            }
            p->state = p->chunk_left ? S_CHUNK_DATA : S_TRAILER_START;
            break;
        case S_CHUNK_DATA_CR:
            if (c != '\r') {
                fail(p, 400, "chunk data without crlf");
                return i;
            }
            p->state = S_CHUNK_DATA_LF;
            break;
        case S_CHUNK_DATA_LF:
            if (c != '\n') {
                fail(p, 400, "chunk data without crlf");
                return i;
            }
            p->state = S_CHUNK_SIZE;
            p->chunk_digits = 0;
            break;
        case S_TRAILER_START:
            if (c == '\r') {
                p->state = S_TRAILER_END_LF;
            } else if (is_tchar(c)) {
                p->state = S_TRAILER_NAME;
            } else {
                fail(p, 400, "malformed trailer field");
                return i;
            }
            break;
        case S_TRAILER_NAME:
            if (c == ':') {
                p->state = S_TRAILER_VALUE;
            } else if (!is_tchar(c)) {
                fail(p, 400, "malformed trailer field");
                return i;
            }
            break;
        case S_TRAILER_VALUE:
            if (c == '\r') {
                p->state = S_TRAILER_LF;
            } else if (!is_field_char(c)) {
                fail(p, 400, "malformed trailer field");
                return i;
            }
            break;
        case S_TRAILER_LF:
            if (c != '\n') {
                fail(p, 400, "trailer line without crlf");
                return i;
            }
            p->state = S_TRAILER_START;
            break;
        case S_TRAILER_END_LF:
            if (c != '\n') {
                fail(p, 400, "trailer section without crlf");
                return i;
            }
            p->state = S_DONE;
            break;
        default:
            ASPEN_UNREACHABLE();
        }
    }
    return i;
}

/* ---------------------------------------------------------------------------------------
 * Feeding
 * ------------------------------------------------------------------------------------- */

/* The request is whole: turns offsets into slices over the (now final) buffer. */
static void build_request(struct http_parser *p)
{
    const uint8_t *b = p->buf.data;
    struct http_request *r = &p->req;
    r->method = slice_make(b, p->method_len);
    r->target = slice_make(b + p->method_len + 1, p->target_len);
    const uint8_t *q = memchr(r->target.ptr, '?', r->target.len);
    if (q) {
        r->path = slice_make(r->target.ptr, (size_t)(q - r->target.ptr));
        r->query = slice_make(q + 1, r->target.len - r->path.len - 1);
    } else {
        r->path = r->target;
        r->query = slice_make(NULL, 0);
    }
    r->version_minor = p->version_minor;
    r->keep_alive = p->keep_alive;
    for (size_t i = 0; i < p->n_headers; i++) {
        p->headers[i].name = pos_name(p, &p->pos[i]);
        p->headers[i].value = pos_value(p, &p->pos[i]);
    }
    r->headers = p->headers;
    r->n_headers = p->n_headers;
    size_t n = body_len(p);
    r->body = slice_make(n ? b + p->body_off : NULL, n);
}

enum http_parse_result http_parser_feed(struct http_parser *p, const uint8_t *data, size_t len,
                                        size_t *consumed, const struct http_request **req)
{
    *consumed = 0;
    *req = NULL;
    if (p->state == S_DONE) {
        *req = &p->req; /* fed again before a reset: the same request, nothing taken */
        return HTTP_PARSE_DONE;
    }
    if (p->state == S_ERROR)
        return HTTP_PARSE_ERROR;
    size_t i = 0;
    while (i < len && p->state != S_DONE && p->state != S_ERROR) {
        switch (p->state) {
        case S_REQUEST_LINE:
            i += feed_request_line(p, data + i, len - i);
            break;
        case S_HEADERS:
            i += feed_headers(p, data + i, len - i);
            break;
        case S_BODY:
            i += feed_body(p, data + i, len - i);
            break;
        default:
            i += feed_chunked(p, data + i, len - i);
            break;
        }
    }
    if (p->state == S_ERROR)
        return HTTP_PARSE_ERROR;
    *consumed = i;
    if (p->state == S_DONE) {
        build_request(p);
        *req = &p->req;
        return HTTP_PARSE_DONE;
    }
    return HTTP_PARSE_MORE;
}

/* ---------------------------------------------------------------------------------------
 * Helpers for handlers
 * ------------------------------------------------------------------------------------- */

const struct http_header *http_header_find(const struct http_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++) {
        if (eq_nocase(req->headers[i].name, name))
            return &req->headers[i];
    }
    return NULL;
}

long http_percent_decode(struct slice src, uint8_t *dst, size_t dst_cap, bool plus_is_space)
{
    size_t n = 0;
    for (size_t i = 0; i < src.len; i++) {
        uint8_t c = src.ptr[i];
        if (c == '%') {
            if (src.len - i < 3)
                return -1;
            int hi = hex_value(src.ptr[i + 1]), lo = hex_value(src.ptr[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (uint8_t)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (n == dst_cap || n >= (size_t)LONG_MAX)
            return -1;
        dst[n++] = c;
    }
    return (long)n;
}

bool http_query_param(struct slice query, const char *name, struct slice *value)
{
    struct slice want = slice_str(name);
    struct slice rest = query;
    while (rest.len) {
        const uint8_t *amp = memchr(rest.ptr, '&', rest.len);
        size_t n = amp ? (size_t)(amp - rest.ptr) : rest.len;
        struct slice part = slice_make(rest.ptr, n);
        rest.ptr += amp ? n + 1 : n;
        rest.len -= amp ? n + 1 : n;
        const uint8_t *eq = part.len ? memchr(part.ptr, '=', part.len) : NULL;
        struct slice key = eq ? slice_make(part.ptr, (size_t)(eq - part.ptr)) : part;
        if (part.len && slice_eq(key, want)) {
            *value = eq ? slice_make(eq + 1, part.len - key.len - 1) : slice_make(NULL, 0);
            return true;
        }
    }
    return false;
}

static const struct {
    int status;
    const char *text;
} status_texts[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Content"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char *http_status_text(int status)
{
    for (size_t i = 0; i < sizeof(status_texts) / sizeof(status_texts[0]); i++) {
        if (status_texts[i].status == status)
            return status_texts[i].text;
    }
    return "Unknown";
}
