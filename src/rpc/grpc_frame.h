/*
 * The pure parts of gRPC over HTTP/2: status codes, the length-prefixed message framing,
 * the grpc-timeout header and the percent-encoding of grpc-message. No I/O and no
 * nghttp2 here, so the fuzz target and the unit suite drive them directly; the server
 * (rpc/server.c) feeds them what HTTP/2 delivers.
 *
 * Framing (gRPC's PROTOCOL-HTTP2 "Length-Prefixed-Message"): each message on a stream's
 * DATA is one flag byte (0: uncompressed, 1: compressed), a 32-bit big-endian length and
 * that many bytes. DATA frames cut the byte stream anywhere, so the parser is incremental:
 * a message may span many frames and a frame may hold many messages. The length is judged
 * from the prefix, before any byte of the message is buffered.
 */
#ifndef ASPEN_RPC_GRPC_FRAME_H
#define ASPEN_RPC_GRPC_FRAME_H

#include "base/buf.h"
#include "base/slice.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------------------
 * Status codes (gRPC's doc/statuscodes.md): the value of the grpc-status trailer.
 * ------------------------------------------------------------------------------------- */

enum grpc_status {
    GRPC_STATUS_OK = 0,
    GRPC_STATUS_CANCELLED = 1,
    GRPC_STATUS_UNKNOWN = 2,
    GRPC_STATUS_INVALID_ARGUMENT = 3,
    GRPC_STATUS_DEADLINE_EXCEEDED = 4,
    GRPC_STATUS_NOT_FOUND = 5,
    GRPC_STATUS_ALREADY_EXISTS = 6,
    GRPC_STATUS_PERMISSION_DENIED = 7,
    GRPC_STATUS_RESOURCE_EXHAUSTED = 8,
    GRPC_STATUS_FAILED_PRECONDITION = 9,
    GRPC_STATUS_ABORTED = 10,
    GRPC_STATUS_OUT_OF_RANGE = 11,
    GRPC_STATUS_UNIMPLEMENTED = 12,
    GRPC_STATUS_INTERNAL = 13,
    GRPC_STATUS_UNAVAILABLE = 14,
    GRPC_STATUS_DATA_LOSS = 15,
    GRPC_STATUS_UNAUTHENTICATED = 16,
};

#define GRPC_STATUS_COUNT 17

/* "OK", "CANCELLED", ..., "UNAUTHENTICATED" (the canonical names); NULL for a code outside
 * 0..16. The string is static. */
const char *grpc_status_name(int code);

/* ---------------------------------------------------------------------------------------
 * Message framing
 * ------------------------------------------------------------------------------------- */

#define GRPC_FRAME_PREFIX_BYTES 5

/* Writes the prefix of an uncompressed message of len bytes. */
void grpc_frame_prefix(uint8_t out[GRPC_FRAME_PREFIX_BYTES], uint32_t len);

enum grpc_frame_result {
    GRPC_FRAME_MORE = 0,    /* every byte given was taken; no message is complete */
    GRPC_FRAME_MESSAGE = 1, /* one message is complete: *msg, after *consumed bytes */
    GRPC_FRAME_ERROR = 2,   /* the stream is unusable: answer error_status, error_text */
};

/* Reassembles messages from a stream's DATA. Caller's storage; init before use, release
 * after. */
struct grpc_frame_parser {
    size_t max_message_bytes;                /* a longer message is an error */
    uint8_t prefix[GRPC_FRAME_PREFIX_BYTES]; /* the current message's prefix, as received */
    size_t prefix_len;
    uint32_t msg_len;     /* the current message's length, once prefix_len == 5 */
    struct buf body;      /* owned: the current message's bytes when they came in pieces */
    bool is_delivered;    /* the last feed returned a message (its memory goes next feed) */
    int error_status;     /* enum grpc_status once a feed returned ERROR, else 0 */
    char error_text[112]; /* why, for grpc-message and logs (NUL-terminated) */
};

/* max_message_bytes: the largest message accepted (at most UINT32_MAX). Allocates nothing. */
void grpc_frame_parser_init(struct grpc_frame_parser *p, size_t max_message_bytes);

/* Frees the buffer; the parser may be initialized again. */
void grpc_frame_parser_release(struct grpc_frame_parser *p);

/* Feeds in[0..len) (in may be NULL when len == 0). Takes bytes until one message is
 * complete and returns MESSAGE with *consumed = the bytes taken (the rest belongs to the
 * next messages: feed them again) and *msg = the message, which points into `in` (a
 * message whole within it) or into the parser, and stays valid until the next feed or
 * release. Returns MORE when all of in was taken (*consumed == len) without completing a
 * message. Errors, checked on each message's prefix before its body is buffered:
 *   - compressed flag (1): UNIMPLEMENTED (we offer no grpc-encoding, so a client must not
 *     compress; refusing is what the spec allows when the encoding is not supported);
 *   - any other flag but 0: INTERNAL;
 *   - length over max_message_bytes: RESOURCE_EXHAUSTED;
 *   - out of memory while buffering: RESOURCE_EXHAUSTED.
 * An error is final: later feeds take nothing and return ERROR again. A zero-length
 * message is a message (empty *msg). Whatever the cuts, the same bytes give the same
 * messages and the same verdict. */
enum grpc_frame_result grpc_frame_parser_feed(struct grpc_frame_parser *p, const uint8_t *in,
                                              size_t len, size_t *consumed, struct slice *msg);

/* True between messages: nothing of a next message (prefix or body) has been taken. An
 * end of stream anywhere else cut a message short. */
bool grpc_frame_parser_is_idle(const struct grpc_frame_parser *p);

/* Bytes of the current, incomplete message held by the parser (prefix included). */
size_t grpc_frame_parser_buffered(const struct grpc_frame_parser *p);

/* ---------------------------------------------------------------------------------------
 * Headers
 * ------------------------------------------------------------------------------------- */

/* grpc-timeout: 1 to 8 ASCII digits and a unit: H (hours), M (minutes), S (seconds), m
 * (milliseconds), u (microseconds), n (nanoseconds); nothing else (no sign, space or
 * second unit). *timeout_ms gets the duration rounded up to whole milliseconds (so a
 * nonzero timeout is never 0 ms; "0n" is 0). Returns 0 or ASPEN_E_MALFORMED. */
int grpc_timeout_parse(struct slice value, uint64_t *timeout_ms);

/* Appends the grpc-message form of a status message to out: bytes 0x20..0x7E other than
 * '%' as they are, every other byte as "%XX" (uppercase hex), so any bytes (UTF-8
 * included) survive HTTP/2 header rules. Returns 0, or buf_append's error with out
 * unchanged. */
int grpc_message_encode(struct slice text, struct buf *out);

/* Decodes a grpc-message value into out (room for value.len bytes) and returns the
 * decoded length. As the spec asks of receivers, a '%' not followed by two hex digits is
 * kept as it is rather than refused. */
size_t grpc_message_decode(struct slice value, uint8_t *out);

#endif /* ASPEN_RPC_GRPC_FRAME_H */
