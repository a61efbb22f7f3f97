/*
 * The gRPC server: gRPC over HTTP/2 without TLS (h2c with prior knowledge) on a libuv
 * loop, HTTP/2 by nghttp2. It owns connections, streams, flow control, deadlines and
 * keepalive; it does not decode protobuf. A method table maps "/package.Service/Method"
 * to a handler, which receives each request message as bytes and answers with message
 * bytes and a final status — at once or later from the loop (the node answers a write
 * once Raft has applied it). The etcd and aspen.v1 services are handlers registered on
 * top of this (a later layer); tests register echo handlers.
 *
 * Connections arrive two ways: the server's own listener (tests, or a dedicated port), or
 * rpc_server_adopt, through which the node's HTTP/1.1 server hands over a connection that
 * began with the HTTP/2 client preface, so one client port serves both.
 *
 * Everything runs on the loop thread; no function here may be called from another.
 *
 * ---- Calls and their ownership ----
 *
 * One call per request stream. The server creates it and hands it to the method's
 * on_call; from then the handler holds the call (one reference) until it gives it back
 * with exactly one of:
 *     rpc_call_finish(call, status, message)  the final status (sent if still possible);
 *     rpc_call_release(call)                  nothing more to say (after on_cancel: the
 *                                             usual way out; before: answers CANCELLED).
 * After either, the call pointer is invalid. Until then the handler may send messages
 * (rpc_call_send) and read the call's metadata.
 *
 * Cancellation: when the client resets the stream, the connection dies, the deadline
 * (grpc-timeout) passes, the request stream turns out malformed after on_call, or the
 * server closes, the server ends the stream itself (sending the status it can: e.g.
 * DEADLINE_EXCEEDED) and calls the method's on_cancel once. From then the call accepts no
 * more messages (rpc_call_send returns ASPEN_E_CANCELED) and must only be released or
 * finished, which then only frees it; the handler should do so promptly, because the
 * call's memory lives until then. on_cancel never runs after the handler gave the call
 * back, and never from inside an rpc_call_* function: only from the loop (a read, a
 * timer, rpc_server_close).
 *
 * Kinds:
 *   UNARY, SERVER_STREAM  on_call receives the one request message, once the client has
 *                         finished sending (a second message, or none, is refused
 *                         INTERNAL before any handler runs);
 *   CLIENT_STREAM, BIDI   on_call runs when the headers arrive (empty request); each
 *                         message then goes to on_message, and on_half_close tells that
 *                         the client sent its last one.
 *   UNARY, CLIENT_STREAM  at most one response message.
 *
 * Flow control, receiving: on_message returns 0 to take the message, or ASPEN_E_BUSY to
 * push back — the server keeps the message, stops taking the stream's bytes (so HTTP/2
 * flow control stops the client once its window is spent) and delivers the same message
 * again after rpc_call_resume. Sending: rpc_call_send queues at most
 * ASPEN_GRPC_CALL_SEND_QUEUE_BYTES per call (an empty queue takes any one message up to
 * ASPEN_GRPC_MAX_SEND_MESSAGE_BYTES) and answers ASPEN_E_BUSY beyond; after a BUSY, the
 * method's on_writable runs once the queue has drained to half, so a slow reader costs
 * bounded memory.
 *
 * Protocol details: responses are ":status 200" + "content-type: application/grpc", the
 * messages, and trailers grpc-status / grpc-message (percent-encoded); a call finished
 * before any message gets a trailers-only response. Requests need POST (else 405) and a
 * content-type of application/grpc or application/grpc+proto (parameters allowed; other
 * application/grpc+codec: UNIMPLEMENTED; anything else: HTTP 415). Unknown method:
 * UNIMPLEMENTED. Bad grpc-timeout: INTERNAL. A message over the receive limit:
 * RESOURCE_EXHAUSTED; compressed: UNIMPLEMENTED; bad framing or a message cut short:
 * INTERNAL — each ends only that stream, the connection stays. HTTP/2 errors and bytes
 * that are not HTTP/2 close the connection (after a GOAWAY where nghttp2 sends one).
 */
#ifndef ASPEN_RPC_SERVER_H
#define ASPEN_RPC_SERVER_H

#include "base/slice.h"
#include "rpc/grpc_frame.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct rpc_server;
struct rpc_call;

enum rpc_kind {
    RPC_UNARY,
    RPC_SERVER_STREAM,
    RPC_CLIENT_STREAM,
    RPC_BIDI,
};

/* A method's handler. Every callback runs on the loop thread; ctx is passed back. */
struct rpc_handler {
    enum rpc_kind kind;
    /* Required. The call starts: the handler now holds it (see the file comment). For
     * UNARY and SERVER_STREAM, request is the request message (valid during the call
     * only: copy what you keep); for the streaming kinds it is empty. */
    void (*on_call)(void *ctx, struct rpc_call *call, struct slice request);
    /* CLIENT_STREAM and BIDI (required there, unused otherwise): one request message,
     * valid during the callback. Return 0 (taken) or ASPEN_E_BUSY (keep it and stop
     * reading until rpc_call_resume; it is delivered again then). */
    int (*on_message)(void *ctx, struct rpc_call *call, struct slice msg);
    /* CLIENT_STREAM and BIDI (optional): the client has sent its last message. */
    void (*on_half_close)(void *ctx, struct rpc_call *call);
    /* Optional: after rpc_call_send returned ASPEN_E_BUSY, the queue has room again. */
    void (*on_writable)(void *ctx, struct rpc_call *call);
    /* Required: the call was cancelled (see the file comment). */
    void (*on_cancel)(void *ctx, struct rpc_call *call);
    void *ctx;
};

/* Settings; a zero field takes the default. The node uses the defaults; tests shorten
 * timeouts and bounds. */
struct rpc_server_options {
    uint32_t max_connections;        /* default and maximum ASPEN_GRPC_MAX_CONNECTIONS */
    uint32_t max_concurrent_streams; /* default and maximum ASPEN_GRPC_MAX_CONCURRENT_STREAMS */
    uint32_t max_message_bytes; /* receive limit; default, maximum ASPEN_GRPC_MAX_MESSAGE_BYTES */
    uint32_t send_queue_bytes;  /* per call; default, maximum ASPEN_GRPC_CALL_SEND_QUEUE_BYTES */
    uint32_t keepalive_interval_ms; /* default ASPEN_GRPC_KEEPALIVE_INTERVAL_MS */
    uint32_t keepalive_timeout_ms;  /* default ASPEN_GRPC_KEEPALIVE_TIMEOUT_MS */
    uint32_t handshake_timeout_ms;  /* default ASPEN_GRPC_HANDSHAKE_TIMEOUT_MS */
};

/* Creates a server on loop. With host non-NULL it also listens on host:port (a numeric
 * IPv4 or IPv6 address; port 0 picks a free one); with host NULL it only serves adopted
 * connections. opt may be NULL (defaults). On success *out belongs to the caller
 * (rpc_server_close). Errors: ASPEN_E_INVALID (bad address or options), ASPEN_E_NOMEM,
 * or a libuv / negated errno code from bind and listen, with a message in err. A failed
 * open leaves nothing to close. */
int rpc_server_open(uv_loop_t *loop, const struct rpc_server_options *opt, const char *host,
                    uint16_t port, struct rpc_server **out, char *err, size_t err_len);

/* The port listened on (0 without a listener). */
uint16_t rpc_server_port(const struct rpc_server *s);

/* Routes path ("/package.Service/Method", copied) to h (copied). Calls already running are
 * not affected. Errors: ASPEN_E_INVALID (path not of that form, longer than 255 bytes, or
 * h incomplete for its kind), ASPEN_E_EXISTS (path already registered), ASPEN_E_FULL
 * (ASPEN_GRPC_MAX_METHODS reached), ASPEN_E_NOMEM. */
int rpc_server_register(struct rpc_server *s, const char *path, const struct rpc_handler *h);

/* Takes over an accepted TCP connection whose first bytes (bytes[0..n), copied; n may be
 * 0) were already read from it and are fed to HTTP/2 first: the HTTP/1.1 server's
 * handover of a connection that opened with the HTTP/2 preface. Reading must be stopped
 * on tcp. Whatever the result, tcp (allocated with mem_alloc, an initialized handle of
 * this loop) now belongs to the server, which closes it with uv_close and frees it with
 * mem_free; its data field is the server's. Returns 0, or ASPEN_E_CLOSED (stopped
 * accepting), ASPEN_E_LIMIT (at max_connections), ASPEN_E_NOMEM, or a libuv code — then
 * the connection has been closed. */
int rpc_server_adopt(struct rpc_server *s, uv_tcp_t *tcp, const uint8_t *bytes, size_t n);

/* Graceful shutdown, first phase: closes the listener, refuses adoptions, and sends every
 * connection a GOAWAY naming the last stream it took, so clients open new streams
 * elsewhere while the calls in flight finish; a connection closes once its last call
 * ends. Idempotent. */
void rpc_server_stop_accepting(struct rpc_server *s);

/* Closes everything: calls still running are ended (UNAVAILABLE sent where possible) and
 * their handlers get on_cancel — their calls then only need releasing, which works after
 * the server is gone; each connection gets a GOAWAY and up to ASPEN_GRPC_CLOSE_LINGER_MS
 * to write its last frames. on_closed (may be NULL) runs on the loop once every handle is
 * closed; s is freed then. Not from inside a handler's callback (it drives the HTTP/2
 * sessions those callbacks run in). */
void rpc_server_close(struct rpc_server *s, void (*on_closed)(void *ctx), void *ctx);

struct rpc_server_stats {
    uint64_t connections_open;    /* taken and not yet closed */
    uint64_t connections_total;   /* taken: accepted or adopted */
    uint64_t connections_refused; /* over max_connections, after stop, or out of memory */
    uint64_t connection_errors;   /* closed for HTTP/2 errors or bytes that are not HTTP/2 */
    uint64_t keepalive_timeouts;  /* closed because a PING went unanswered */
    uint64_t streams_open;        /* request streams open now */
    uint64_t streams_total;
    uint64_t calls_active;                       /* with a handler now */
    uint64_t calls_total;                        /* handed to a handler */
    uint64_t calls_cancelled;                    /* on_cancel called */
    uint64_t calls_by_status[GRPC_STATUS_COUNT]; /* final status per stream (clients' resets
                                                  * count as CANCELLED) */
    uint64_t send_queued_bytes;                  /* response bytes queued in calls now */
    uint64_t send_queued_bytes_max;              /* the most ever queued in one call */
    uint64_t send_busy;                          /* rpc_call_send answers of ASPEN_E_BUSY */
    uint64_t recv_held_bytes; /* request bytes held for handlers that pushed back */
};
void rpc_server_stats(const struct rpc_server *s, struct rpc_server_stats *out);

/* ---------------------------------------------------------------------------------------
 * Calls. Every function here requires that the handler still holds the call.
 * ------------------------------------------------------------------------------------- */

/* Queues one response message (copied). Returns 0, or:
 *   ASPEN_E_BUSY      the call's queue is full: wait for on_writable (nothing queued);
 *   ASPEN_E_CANCELED  the call was cancelled (on_cancel has run or will run);
 *   ASPEN_E_TOO_LARGE over ASPEN_GRPC_MAX_SEND_MESSAGE_BYTES;
 *   ASPEN_E_INVALID   a second message on a UNARY or CLIENT_STREAM call;
 *   ASPEN_E_NOMEM. */
int rpc_call_send(struct rpc_call *call, struct slice msg);

/* Ends the call with status (0..16) and an optional message (NULL or text, bytes of any
 * value; cut to ASPEN_GRPC_MAX_STATUS_MESSAGE_BYTES), after the messages already queued,
 * and gives the call back: call is invalid afterwards. After a cancellation nothing is
 * sent. */
void rpc_call_finish(struct rpc_call *call, int status, const char *message);

/* Gives the call back without a status of its own (see the file comment). */
void rpc_call_release(struct rpc_call *call);

/* After on_message returned ASPEN_E_BUSY: deliver the kept message again (later, from
 * the loop) and go on reading. No effect otherwise. */
void rpc_call_resume(struct rpc_call *call);

/* A pointer for the handler's own state (NULL at first). */
void rpc_call_set_user(struct rpc_call *call, void *user);
void *rpc_call_user(const struct rpc_call *call);

/* The method path, "/package.Service/Method" (static while the call lives). */
const char *rpc_call_method(const struct rpc_call *call);

/* The peer's address as text ("127.0.0.1:53211"), for logs. */
const char *rpc_call_peer(const struct rpc_call *call);

/* The first request header (metadata) named name (lowercase, as HTTP/2 sends it; pseudo
 * headers like ":authority" too): true and *value (valid while the call is held) if
 * present. */
bool rpc_call_metadata(const struct rpc_call *call, const char *name, struct slice *value);

/* The call's deadline in the loop's clock (uv_now, ms), or 0 without grpc-timeout. */
uint64_t rpc_call_deadline(const struct rpc_call *call);

/* True once the call was cancelled (on_cancel has run or is about to). */
bool rpc_call_is_cancelled(const struct rpc_call *call);

#endif /* ASPEN_RPC_SERVER_H */
