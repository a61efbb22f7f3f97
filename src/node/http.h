/*
 * The node's HTTP/1.1 endpoint: health, Prometheus metrics and the admin / KV API that
 * operators reach with curl (and that scripts/local-cluster and the integration tests
 * use). The etcd-compatible gRPC API shares the client port: with on_h2_preface set, a
 * connection that opens with the HTTP/2 client preface is handed over to it (src/rpc);
 * without it a "PRI * HTTP/2.0" request is answered 505.
 *
 * Two layers:
 *   - the parser (pure, no I/O): a request is fed in arbitrary chunks and comes out whole
 *     (request line, headers, body by Content-Length or chunked transfer coding), or as
 *     an error carrying the HTTP status to answer (400, 413, 414, 431, 501, 505; 500 if
 *     memory runs out); http_parse.c lists the rules and the status each breach gets;
 *   - the server on a libuv loop: accepts connections, parses, calls on_request once per
 *     request, writes the response when the handler calls http_respond — at once or
 *     later (a write waits for Raft), from the loop thread.
 *
 * One request at a time per connection: bytes of a pipelined next request wait (and the
 * socket stops being read once ASPEN_HTTP_MAX_HEADER_BYTES of them are buffered) until the
 * current response is written. The socket is otherwise still read while the handler
 * holds a request, so a client that closes its connection (or half-closes it: the two
 * cannot be told apart) is noticed and its exchange orphaned. Every response carries
 * Content-Length (except 204); keep-alive is the default for HTTP/1.1, close for HTTP/1.0
 * unless it asked for keep-alive, and after "Connection: close" or any parse error (the
 * error response is written, then the connection is closed). Timeouts (408 for a request
 * not whole within the read timeout, silent close after the idle timeout between
 * requests) and the connection cap are in http_server.c's comment. Limits live in
 * base/constants.h (ASPEN_HTTP_*).
 */
#ifndef ASPEN_NODE_HTTP_H
#define ASPEN_NODE_HTTP_H

#include "base/slice.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* ---------------------------------------------------------------------------------------
 * Requests
 * ------------------------------------------------------------------------------------- */

struct http_header {
    struct slice name;  /* as sent (compare with http_header_find, case-insensitive) */
    struct slice value; /* leading/trailing spaces and tabs removed */
};

struct http_request {
    struct slice method;   /* "GET", "PUT", ... (case-sensitive, as RFC 9110 says) */
    struct slice target;   /* the request target as sent: path ["?" query] */
    struct slice path;     /* target up to '?' (not percent-decoded) */
    struct slice query;    /* after '?', empty if none */
    uint8_t version_minor; /* HTTP/1.x */
    bool keep_alive;       /* the connection stays open after the response */
    struct http_header *headers;
    size_t n_headers;
    struct slice body; /* de-chunked; empty without a body */
};

/* The first header named `name` (ASCII case-insensitive), or NULL. */
const struct http_header *http_header_find(const struct http_request *req, const char *name);

/* Percent-decodes src into dst (capacity dst_cap); with `plus_is_space`, '+' becomes ' '
 * (query strings). Returns the decoded length, or -1 for a bad escape or no room. */
long http_percent_decode(struct slice src, uint8_t *dst, size_t dst_cap, bool plus_is_space);

/* Finds query parameter `name` (exact, undecoded name) in a query string "a=1&b&c=x":
 * true if present; *value is its raw (undecoded) value, empty for "b" or "b=". */
bool http_query_param(struct slice query, const char *name, struct slice *value);

/* ---------------------------------------------------------------------------------------
 * Parser (pure)
 * ------------------------------------------------------------------------------------- */

enum http_parse_result {
    HTTP_PARSE_MORE = 0,  /* everything consumed, the request is not complete yet */
    HTTP_PARSE_DONE = 1,  /* a whole request is in *req; *consumed says how many bytes */
    HTTP_PARSE_ERROR = 2, /* malformed or over a limit: answer parser->error_status */
};

struct http_parser; /* opaque; owns the bytes a parsed request points into */

/* Creates / frees a parser. Errors: ASPEN_E_NOMEM. */
int http_parser_create(struct http_parser **out);
void http_parser_free(struct http_parser *p);

/* Feeds data[0..len). On DONE, *req points into the parser's memory and stays valid until
 * the next feed or reset; *consumed is the bytes of data used (the rest belongs to the
 * next request: feed it after http_parser_reset). On MORE, *consumed == len. On ERROR,
 * http_parser_error_status() gives the status to answer and http_parser_error_reason()
 * a short lowercase reason for the log and the response body; the parser then refuses
 * more input until reset. Feeding again after DONE or ERROR (without a reset) consumes
 * nothing and returns the same result (the same *req for DONE).
 *
 * The result never depends on how the bytes were cut: whole, byte by byte or split
 * anywhere, the same stream gives the same request or the same error. */
enum http_parse_result http_parser_feed(struct http_parser *p, const uint8_t *data, size_t len,
                                        size_t *consumed, const struct http_request **req);
int http_parser_error_status(const struct http_parser *p);
const char *http_parser_error_reason(const struct http_parser *p);

/* Forgets the current request (its memory is reused) to parse the next one. */
void http_parser_reset(struct http_parser *p);

/* "Expect: 100-continue" (RFC 9110 §10.1.1): true once, after a feed returned MORE, when an
 * HTTP/1.1 request asked for it and its head has been accepted (a head refused with 413
 * gets the error instead) but its body has not all arrived; the server then writes
 * "HTTP/1.1 100 Continue\r\n\r\n" so the client sends the body. Later calls return false. */
bool http_parser_take_continue(struct http_parser *p);

/* ---------------------------------------------------------------------------------------
 * Server
 * ------------------------------------------------------------------------------------- */

struct http_server;
struct http_exchange; /* one request awaiting its response */

struct http_handlers {
    /* Called on the loop thread for each complete request. The handler must call
     * http_respond(x, ...) exactly once, now or later (on the loop thread). The request
     * (http_exchange_request) stays valid until then. */
    void (*on_request)(void *ctx, struct http_exchange *x);
    void *ctx;
};

/* Listens on host:port (numeric IPv4 or IPv6 address; port 0 picks a free one) on loop.
 * On success *out belongs to the caller (http_server_close). Errors: ASPEN_E_INVALID (bad
 * address), ASPEN_E_NOMEM, or a negated errno / libuv code from bind and listen
 * (-EADDRINUSE, ...), with a message in err. A failed open leaves nothing to close (what
 * it created is released on the loop). */
int http_server_open(uv_loop_t *loop, const char *host, uint16_t port,
                     const struct http_handlers *h, struct http_server **out, char *err,
                     size_t err_len);

/* Settings that tests shorten; a zero field takes the default. The node itself uses
 * http_server_open (all defaults). */
struct http_server_options {
    uint32_t max_connections; /* default and maximum ASPEN_MAX_CLIENT_CONNECTIONS */
    uint32_t read_timeout_ms; /* default ASPEN_HTTP_READ_TIMEOUT_MS */
    uint32_t idle_timeout_ms; /* default ASPEN_HTTP_IDLE_TIMEOUT_MS; also bounds a write */
    uint32_t linger_ms;       /* draining before a close; default 2000 */
    /* Optional HTTP/2 handover (NULL: none). A connection whose first bytes are the HTTP/2
     * client preface ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") is given away: reading is
     * stopped, the server forgets it, and tcp (allocated with mem_alloc; data field
     * free for the callee) belongs to the callee, which must close it with uv_close and
     * then mem_free it (rpc_server_adopt does both). bytes[0..n) are all the bytes read
     * from it (the preface and whatever followed), valid during the call only. */
    void (*on_h2_preface)(void *h2_ctx, uv_tcp_t *tcp, const uint8_t *bytes, size_t n);
    void *h2_ctx;
};

/* http_server_open with options (NULL: defaults). ASPEN_E_INVALID also for
 * max_connections over ASPEN_MAX_CLIENT_CONNECTIONS or h->on_request missing. */
int http_server_open_opts(uv_loop_t *loop, const char *host, uint16_t port,
                          const struct http_handlers *h, const struct http_server_options *opt,
                          struct http_server **out, char *err, size_t err_len);

/* The port actually bound (useful with port 0). */
uint16_t http_server_port(const struct http_server *s);

/* Stops accepting new connections; open connections keep being served (graceful
 * shutdown's first phase). Idempotent. */
void http_server_stop_accepting(struct http_server *s);

/* Closes every connection and the listener. Exchanges still awaiting their response stay
 * valid: http_respond on them then only frees them. on_closed (may be NULL) runs on the
 * loop once every handle is closed; s is freed then. */
void http_server_close(struct http_server *s, void (*on_closed)(void *ctx), void *ctx);

struct http_server_stats {
    uint64_t connections_open;    /* accepted and not yet closed */
    uint64_t connections_total;   /* accepted */
    uint64_t connections_refused; /* over ASPEN_MAX_CLIENT_CONNECTIONS (or out of memory) */
    uint64_t requests;            /* handed to on_request */
    uint64_t parse_errors;
    uint64_t timeouts;    /* read (408 or no request at all), idle and write deadlines */
    uint64_t handed_over; /* connections given to on_h2_preface */
};
void http_server_stats(const struct http_server *s, struct http_server_stats *out);

const struct http_request *http_exchange_request(const struct http_exchange *x);

/* The peer's address as text ("127.0.0.1:53211"), for logs. */
const char *http_exchange_peer(const struct http_exchange *x);

/* Sends the response and releases x (x is invalid afterwards). `headers` is NULL or extra
 * header lines, each ending in "\r\n" ("Location: http://...\r\n"); Content-Type,
 * Content-Length and Connection are written by the server. The body is copied. If the
 * client went away meanwhile, nothing is sent. A body over ASPEN_HTTP_MAX_RESPONSE_BYTES
 * is replaced by a 500. A HEAD request's response keeps the Content-Length of the body
 * given but sends none of it; 204 and 304 send no body (204 no Content-Length either).
 * Preconditions (asserted): status 200..599, headers ending in "\r\n", no CR or LF in
 * content_type. */
void http_respond(struct http_exchange *x, int status, const char *content_type,
                  const char *headers, const void *body, size_t len);

/* The reason phrase of a status ("Not Found"); "Unknown" for others. */
const char *http_status_text(int status);

#endif /* ASPEN_NODE_HTTP_H */
