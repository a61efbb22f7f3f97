/*
 * gRPC's pure pieces (rpc/grpc_frame.h): status names, the message parser, grpc-timeout
 * and grpc-message encoding.
 *
 * The parser holds at most one message: its body buffer grows only as bytes arrive (a
 * hostile 2 MiB length prefix followed by nothing costs nothing), and a buffer grown past
 * KEEP_BYTES for a large message is freed once that message has been delivered, so an
 * idle stream does not pin megabytes.
 */
#include "rpc/grpc_frame.h"

#include "base/assert.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* A body buffer larger than this is freed after its message was delivered. */
#define KEEP_BYTES (64 * 1024)

static const char *const status_names[GRPC_STATUS_COUNT] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *grpc_status_name(int code)
{
    if (code < 0 || code >= GRPC_STATUS_COUNT)
        return NULL;
    return status_names[code];
}

/* ---------------------------------------------------------------------------------------
 * Framing
 * ------------------------------------------------------------------------------------- */

void grpc_frame_prefix(uint8_t out[GRPC_FRAME_PREFIX_BYTES], uint32_t len)
{
    out[0] = 0;
    be32_store(out + 1, len);
}

void grpc_frame_parser_init(struct grpc_frame_parser *p, size_t max_message_bytes)
{
    ASPEN_ASSERT(max_message_bytes <= UINT32_MAX);
    memset(p, 0, sizeof(*p));
    p->max_message_bytes = max_message_bytes;
    buf_init(&p->body, max_message_bytes);
}

void grpc_frame_parser_release(struct grpc_frame_parser *p)
{
    buf_release(&p->body);
    p->prefix_len = 0;
    p->is_delivered = false;
}

/* Makes the parser's error final (error_text already written). */
static enum grpc_frame_result fail(struct grpc_frame_parser *p, int status)
{
    p->error_status = status;
    buf_release(&p->body);
    return GRPC_FRAME_ERROR;
}

enum grpc_frame_result grpc_frame_parser_feed(struct grpc_frame_parser *p, const uint8_t *in,
                                              size_t len, size_t *consumed, struct slice *msg)
{
    *consumed = 0;
    *msg = slice_make(NULL, 0);
    if (p->error_status != 0)
        return GRPC_FRAME_ERROR;
    if (p->is_delivered) {
        /* The message handed out last time is no longer needed. */
        p->is_delivered = false;
        if (p->body.cap > KEEP_BYTES)
            buf_release(&p->body);
        else
            buf_clear(&p->body);
    }
    size_t pos = 0;
    if (p->prefix_len < GRPC_FRAME_PREFIX_BYTES) {
        size_t take = GRPC_FRAME_PREFIX_BYTES - p->prefix_len;
        if (take > len)
            take = len;
        if (take)
            memcpy(p->prefix + p->prefix_len, in, take);
        p->prefix_len += take;
        pos = take;
        *consumed = pos;
        if (p->prefix_len < GRPC_FRAME_PREFIX_BYTES)
            return GRPC_FRAME_MORE;
        uint8_t flag = p->prefix[0];
        p->msg_len = be32_load(p->prefix + 1);
        if (flag == 1) {
            snprintf(p->error_text, sizeof(p->error_text),
                     "compressed message refused: no grpc-encoding is supported");
            return fail(p, GRPC_STATUS_UNIMPLEMENTED);
        }
        if (flag != 0) {
            snprintf(p->error_text, sizeof(p->error_text), "invalid message flag %u",
                     (unsigned)flag);
            return fail(p, GRPC_STATUS_INTERNAL);
        }
        if (p->msg_len > p->max_message_bytes) {
            snprintf(p->error_text, sizeof(p->error_text),
                     "received message larger than max (%" PRIu32 " vs. %zu)", p->msg_len,
                     p->max_message_bytes);
            return fail(p, GRPC_STATUS_RESOURCE_EXHAUSTED);
        }
    }
    size_t need = p->msg_len - p->body.len;
    size_t avail = len - pos;
    if (p->body.len == 0 && avail >= need) {
        /* The whole body is in this input: hand it out in place. */
        *msg = slice_make(need ? in + pos : NULL, need);
        *consumed = pos + need;
        p->prefix_len = 0;
        p->is_delivered = true;
        return GRPC_FRAME_MESSAGE;
    }
    size_t take = need < avail ? need : avail;
    if (buf_append(&p->body, in + pos, take) != 0) {
        snprintf(p->error_text, sizeof(p->error_text),
                 "out of memory for a message of %" PRIu32 " bytes", p->msg_len);
        return fail(p, GRPC_STATUS_RESOURCE_EXHAUSTED);
    }
    pos += take;
    *consumed = pos;
    if (p->body.len < p->msg_len)
        return GRPC_FRAME_MORE;
    *msg = buf_slice(&p->body);
    p->prefix_len = 0;
    p->is_delivered = true;
    return GRPC_FRAME_MESSAGE;
}

bool grpc_frame_parser_is_idle(const struct grpc_frame_parser *p)
{
    return p->error_status == 0 && p->prefix_len == 0;
}

size_t grpc_frame_parser_buffered(const struct grpc_frame_parser *p)
{
    if (p->prefix_len == 0)
        return 0;
    return p->prefix_len + p->body.len;
}

/* ---------------------------------------------------------------------------------------
 * Headers
 * ------------------------------------------------------------------------------------- */

int grpc_timeout_parse(struct slice value, uint64_t *timeout_ms)
{
    if (value.len < 2 || value.len > 9)
        return ASPEN_E_MALFORMED;
    uint64_t n = 0;
    for (size_t i = 0; i + 1 < value.len; i++) {
        uint8_t c = value.ptr[i];
        if (c < '0' || c > '9')
            return ASPEN_E_MALFORMED;
        n = n * 10 + (uint64_t)(c - '0');
    }
    /* At most 99,999,999 of any unit: hours are 3.6e14 ms, far from overflow. */
    switch (value.ptr[value.len - 1]) {
    case 'H':
        *timeout_ms = n * 3600 * 1000;
        return 0;
    case 'M':
        *timeout_ms = n * 60 * 1000;
        return 0;
    case 'S':
        *timeout_ms = n * 1000;
        return 0;
    case 'm':
        *timeout_ms = n;
        return 0;
    case 'u':
        *timeout_ms = (n + 999) / 1000;
        return 0;
    case 'n':
        *timeout_ms = (n + 999999) / 1000000;
        return 0;
    default:
        return ASPEN_E_MALFORMED;
    }
}

int grpc_message_encode(struct slice text, struct buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t start = out->len;
    for (size_t i = 0; i < text.len; i++) {
        uint8_t c = text.ptr[i];
        int rc;
        if (c >= 0x20 && c <= 0x7E && c != '%') {
            rc = buf_append_u8(out, c);
        } else {
            uint8_t esc[3] = {'%', (uint8_t)hex[c >> 4], (uint8_t)hex[c & 15]};
            rc = buf_append(out, esc, sizeof(esc));
        }
        if (rc != 0) {
            out->len = start;
            return rc;
        }
    }
    return 0;
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

size_t grpc_message_decode(struct slice value, uint8_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < value.len; i++) {
        uint8_t c = value.ptr[i];
        if (c == '%' && i + 2 < value.len && hex_value(value.ptr[i + 1]) >= 0 &&
            hex_value(value.ptr[i + 2]) >= 0) {
            out[n++] = (uint8_t)(hex_value(value.ptr[i + 1]) << 4 | hex_value(value.ptr[i + 2]));
            i += 2;
        } else {
            out[n++] = c;
        }
    }
    return n;
}
