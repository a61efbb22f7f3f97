/*
 * The node's HTTP/1.1 server (node/http.h): the libuv shell around the pure parser
 * (http_parse.c). It accepts connections, feeds their bytes to a parser, hands each whole
 * request to the handler as an exchange and writes the response the handler gives back,
 * now or later.
 *
 * A connection is in one of four states:
 *   - READING: feeding the parser. A deadline runs: the read timeout from the connection's
 *     start or from the first byte of a request (a request not whole by then is answered
 *     408), or the idle timeout between requests (then the connection closes silently);
 *   - HANDLING: the handler holds the exchange. The socket is still read so a client that
 *     goes away is noticed (the exchange is then orphaned: http_respond only frees it),
 *     but what it sends is only buffered, up to PENDING_MAX_BYTES; past that the socket
 *     stops being read. No deadline: a response may wait for Raft;
 *   - WRITING: the response's one uv_write is in flight (deadline: the idle timeout, so a
 *     client that never reads cannot pin the connection). When it completes, the
 *     buffered bytes are parsed: pipelined requests are answered one at a time, in order.
 *     A client that half-closes meanwhile still gets this response, then the close;
 *   - LINGERING: the last response is written and the connection must close. Closing a
 *     socket with unread input makes the kernel send a reset, which can destroy the
 *     response before the client reads it, so the write side is shut down and input is
 *     read and dropped until the client closes or LINGER_MS pass (nginx's lingering close).
 *
 * Lifetimes follow libuv: a handle's memory goes only in its close callback, so a conn is
 * marked closing at once and freed once both its handles have closed; every handle is
 * counted in live_handles, and the server is freed (on_closed called) when the count
 * reaches zero after http_server_close. The exchange outlives its connection when the
 * connection closes under the handler: it takes the parser (the request points into it)
 * and frees both in http_respond.
 */
#include "node/http.h"

#include "base/assert.h"
#include "base/buf.h"
#include "base/constants.h"
#include "base/log.h"
#include "base/mem.h"

#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* Read buffer shared by all connections: libuv hands it to one read callback at a time,
 * and the bytes are parsed or copied before the callback returns. */
#define READ_BUF_BYTES (64 * 1024)
/* Bytes buffered while a request is with the handler: enough for the head of the next
 * pipelined request; beyond it the socket is not read until the response is written. */
#define PENDING_MAX_BYTES ASPEN_HTTP_MAX_HEADER_BYTES
/* Lingering close: how long, and how many bytes, to drain before closing anyway. */
#define LINGER_MS        2000
#define LINGER_MAX_BYTES ASPEN_HTTP_MAX_BODY_BYTES
#define LISTEN_BACKLOG   128
/* "[ipv6]:port" */
#define PEER_TEXT_BYTES (INET6_ADDRSTRLEN + 8)
/* Status line, Content-Type, Content-Length and Connection lines around a response. */
#define RESPONSE_HEAD_BYTES 256

static const char continue_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

enum conn_state { C_READING, C_HANDLING, C_WRITING, C_LINGERING };

enum timer_kind { T_NONE, T_READ, T_IDLE, T_WRITE, T_LINGER };

struct conn;

struct http_exchange {
    struct conn *conn;          /* NULL once orphaned */
    struct http_parser *parser; /* the conn's; owned by the exchange once orphaned */
    const struct http_request *req;
    bool is_outstanding; /* with the handler */
    char peer[PEER_TEXT_BYTES];
};

struct conn {
    struct http_server *s;
    struct conn *prev, *next; /* s->conns */
    uv_tcp_t *tcp;            /* owned (allocated, so it can be handed over); NULL once it was */
    uv_timer_t timer;
    uv_write_t write_req;
    uv_write_t continue_req;
    uv_shutdown_t shutdown_req;
    unsigned open_handles;
    enum conn_state state;
    enum timer_kind timer_kind;
    bool is_closing;
    bool is_reading;
    bool is_writing_continue;
    bool close_after_write;
    bool saw_eof;               /* the client sent FIN while its response was being written */
    bool is_sniffing;           /* on_h2_preface set, and the first bytes may be the preface */
    struct http_parser *parser; /* owned (NULL once handed to an orphaned exchange) */
    struct http_exchange *x;    /* owned while not with the handler */
    struct buf pending;         /* owned: bytes read, not yet parsed */
    size_t request_bytes;       /* bytes of the current request fed to the parser */
    uint64_t lingered_bytes;
    uint8_t *wbuf; /* owned: the response being written */
};

struct http_server {
    uv_loop_t *loop;
    struct http_handlers h;
    struct http_server_options opt; /* resolved: no zero fields */
    uv_tcp_t listener;
    bool is_listening;
    uint16_t port;
    char addr_text[PEER_TEXT_BYTES];
    struct conn *conns; /* every conn not yet freed */
    size_t n_conns;
    uv_timer_t close_timer; /* makes close's callback asynchronous even with no I/O */
    uint64_t live_handles;
    bool is_closing;
    struct http_server_stats stats;
    void (*on_closed)(void *ctx);
    void *on_closed_ctx;
    uint8_t read_buf[READ_BUF_BYTES];
};

static void handle_closed(struct http_server *s);
static void conn_advance(struct conn *conn);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b);

/* ---------------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------------- */

static void sockaddr_text(const struct sockaddr_storage *a, char out[PEER_TEXT_BYTES])
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)a;
        uv_ip6_name(a6, ip, sizeof(ip));
        port = ntohs(a6->sin6_port);
        snprintf(out, PEER_TEXT_BYTES, "[%s]:%u", ip, port);
    } else {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)a;
        uv_ip4_name(a4, ip, sizeof(ip));
        port = ntohs(a4->sin_port);
        snprintf(out, PEER_TEXT_BYTES, "%s:%u", ip, port);
    }
}

static void timer_set(struct conn *conn, enum timer_kind kind, uint32_t ms);

/* ---------------------------------------------------------------------------------------
 * Closing
 * ------------------------------------------------------------------------------------- */

static void conn_free(struct conn *conn)
{
    struct http_server *s = conn->s;
    ASPEN_ASSERT(!conn->wbuf); /* write callbacks run before close callbacks */
    if (conn->x && !conn->x->is_outstanding)
        mem_free(conn->x);
    http_parser_free(conn->parser);
    buf_release(&conn->pending);
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        s->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    s->n_conns--;
    s->stats.connections_open--;
    mem_free(conn);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    struct conn *conn = h->data;
    struct http_server *s = conn->s;
    if (h == (uv_handle_t *)conn->tcp) {
        mem_free(conn->tcp);
        conn->tcp = NULL;
    }
    if (--conn->open_handles == 0)
        conn_free(conn);
    handle_closed(s);
}

/* Closes conn at once (idempotent). An exchange with the handler is orphaned: it keeps
 * the parser its request points into. */
static void conn_close(struct conn *conn, enum log_level level, const char *reason)
{
    if (conn->is_closing)
        return;
    conn->is_closing = true;
    LOG_AT(level, "http", "connection closed", "peer=%s reason=\"%s\"", conn->x->peer, reason);
    if (conn->x->is_outstanding) {
        conn->x->conn = NULL;
        conn->x->parser = conn->parser;
        conn->parser = NULL;
        conn->x = NULL; /* the exchange frees itself in http_respond */
    }
    if (conn->tcp)
        uv_read_stop((uv_stream_t *)conn->tcp);
    uv_timer_stop(&conn->timer);
    if (conn->tcp)
        uv_close((uv_handle_t *)conn->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&conn->timer, on_conn_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *conn = req->data;
    if (status < 0 && !conn->is_closing)
        conn_close(conn, LOG_LEVEL_DEBUG, "shutdown failed");
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out);

/* Reads unless the bytes waiting for the next request have reached their bound (they are
 * parsed once the current response is written). */
static void conn_update_reading(struct conn *conn)
{
    if (conn->is_closing)
        return;
    bool wants = !conn->saw_eof && (conn->state == C_READING || conn->state == C_LINGERING ||
                                    conn->pending.len < PENDING_MAX_BYTES);
    if (wants && !conn->is_reading) {
        if (uv_read_start((uv_stream_t *)conn->tcp, on_alloc, on_read) != 0) {
            conn_close(conn, LOG_LEVEL_INFO, "read failed");
            return;
        }
        conn->is_reading = true;
    } else if (!wants && conn->is_reading) {
        uv_read_stop((uv_stream_t *)conn->tcp);
        conn->is_reading = false;
    }
}

/* The final response is written: stop sending, drain what the client still sends, then
 * close (see the file comment). */
static void conn_linger(struct conn *conn)
{
    conn->state = C_LINGERING;
    conn->shutdown_req.data = conn;
    if (uv_shutdown(&conn->shutdown_req, (uv_stream_t *)conn->tcp, on_shutdown) != 0) {
        conn_close(conn, LOG_LEVEL_DEBUG, "shutdown failed");
        return;
    }
    timer_set(conn, T_LINGER, conn->s->opt.linger_ms);
    conn_update_reading(conn);
}

/* ---------------------------------------------------------------------------------------
 * Timers
 * ------------------------------------------------------------------------------------- */

static void conn_write_error(struct conn *conn, int status, const char *reason);

static void on_conn_timer(uv_timer_t *t)
{
    struct conn *conn = t->data;
    struct http_server *s = conn->s;
    enum timer_kind kind = conn->timer_kind;
    conn->timer_kind = T_NONE;
    if (conn->is_closing)
        return;
    switch (kind) {
    case T_READ:
        s->stats.timeouts++;
        if (conn->request_bytes > 0 || conn->pending.len > 0) {
            LOG_INFO("http", "request timed out", "peer=%s received=%zu", conn->x->peer,
                     conn->request_bytes + conn->pending.len);
            conn_write_error(conn, 408, "request not received in time");
        } else {
            conn_close(conn, LOG_LEVEL_DEBUG, "no request in time");
        }
        break;
    case T_IDLE:
        s->stats.timeouts++;
        conn_close(conn, LOG_LEVEL_DEBUG, "idle");
        break;
    case T_WRITE:
        s->stats.timeouts++;
        conn_close(conn, LOG_LEVEL_INFO, "response not read in time");
        break;
    case T_LINGER:
        conn_close(conn, LOG_LEVEL_DEBUG, "lingering close timed out");
        break;
    case T_NONE:
        break;
    }
}

static void timer_set(struct conn *conn, enum timer_kind kind, uint32_t ms)
{
    conn->timer_kind = kind;
    if (kind == T_NONE)
        uv_timer_stop(&conn->timer);
    else
        uv_timer_start(&conn->timer, on_conn_timer, ms, 0);
}

/* ---------------------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------------------- */

static void on_write(uv_write_t *req, int status)
{
    struct conn *conn = req->data;
    mem_free(conn->wbuf);
    conn->wbuf = NULL;
    if (conn->is_closing)
        return;
    if (status < 0) {
        conn_close(conn, LOG_LEVEL_INFO, "write failed");
        return;
    }
    if (conn->saw_eof) {
        /* Everything the client sent has been read: no reset can destroy the response. */
        conn_close(conn, LOG_LEVEL_DEBUG, "closed by client after its response");
        return;
    }
    if (conn->close_after_write) {
        conn_linger(conn);
        return;
    }
    /* Ready for the next request: buffered bytes first, then the socket. */
    http_parser_reset(conn->parser);
    conn->state = C_READING;
    conn->request_bytes = 0;
    timer_set(conn, conn->pending.len ? T_READ : T_IDLE,
              conn->pending.len ? conn->s->opt.read_timeout_ms : conn->s->opt.idle_timeout_ms);
    conn_advance(conn);
    conn_update_reading(conn);
}

static void on_continue_written(uv_write_t *req, int status)
{
    struct conn *conn = req->data;
    conn->is_writing_continue = false;
    if (status < 0 && !conn->is_closing)
        conn_close(conn, LOG_LEVEL_INFO, "write failed");
}

/* Builds the response in one buffer and starts its one write. */
static void conn_write_response(struct conn *conn, int status, const char *content_type,
                                const char *headers, const void *body, size_t len,
                                bool is_head_request, bool keep_alive, uint8_t version_minor)
{
    ASPEN_ASSERT(conn->state == C_READING || conn->state == C_HANDLING);
    /* RFC 9110 §6.4.1: 204 and 304 carry no content; a HEAD response announces the
     * length a GET would have had but sends no bytes of it. */
    bool has_no_content = status == 204 || status == 304;
    size_t body_bytes = has_no_content || is_head_request ? 0 : len;
    size_t headers_len = headers ? strlen(headers) : 0;
    size_t type_len = content_type ? strlen(content_type) : 0;
    struct buf out;
    buf_init(&out, RESPONSE_HEAD_BYTES + type_len + headers_len + body_bytes);
    int rc = buf_reserve(&out, out.max);
    if (rc == 0)
        rc = buf_printf(&out, "HTTP/1.1 %d %s\r\n", status, http_status_text(status));
    if (rc == 0 && content_type && !has_no_content)
        rc = buf_printf(&out, "Content-Type: %s\r\n", content_type);
    if (rc == 0 && status != 204)
        rc = buf_printf(&out, "Content-Length: %zu\r\n", has_no_content ? (size_t)0 : len);
    if (rc == 0 && !keep_alive)
        rc = buf_printf(&out, "Connection: close\r\n");
    else if (rc == 0 && version_minor == 0)
        rc = buf_printf(&out, "Connection: keep-alive\r\n"); /* HTTP/1.0 assumes close */
    if (rc == 0)
        rc = buf_append(&out, headers, headers_len);
    if (rc == 0)
        rc = buf_append(&out, "\r\n", 2);
    if (rc == 0)
        rc = buf_append(&out, body, body_bytes);
    if (rc != 0) {
        buf_release(&out);
        conn_close(conn, LOG_LEVEL_WARN, "cannot build a response");
        return;
    }
    size_t out_len = 0;
    conn->wbuf = buf_steal(&out, &out_len);
    conn->state = C_WRITING;
    conn->close_after_write = !keep_alive;
    timer_set(conn, T_WRITE, conn->s->opt.idle_timeout_ms);
    conn->write_req.data = conn;
    uv_buf_t b = uv_buf_init((char *)conn->wbuf, (unsigned)out_len);
    rc = uv_write(&conn->write_req, (uv_stream_t *)conn->tcp, &b, 1, on_write);
    if (rc < 0) {
        mem_free(conn->wbuf); /* no callback will come */
        conn->wbuf = NULL;
        conn_close(conn, LOG_LEVEL_INFO, "write failed");
    }
}

/* Answers a request that cannot be served (parse error, timeout) and closes after it. */
static void conn_write_error(struct conn *conn, int status, const char *reason)
{
    char body[128];
    int n = snprintf(body, sizeof(body), "%s\n", reason);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(body) ? (size_t)n : sizeof(body) - 1;
    conn_write_response(conn, status, "text/plain; charset=utf-8", NULL, body, len, false, false,
                        1);
}

/* ---------------------------------------------------------------------------------------
 * Reading and parsing
 * ------------------------------------------------------------------------------------- */

static void dispatch(struct conn *conn, const struct http_request *req)
{
    struct http_server *s = conn->s;
    s->stats.requests++;
    conn->state = C_HANDLING;
    conn->request_bytes = 0;
    timer_set(conn, T_NONE, 0);
    conn->x->req = req;
    conn->x->parser = conn->parser;
    conn->x->is_outstanding = true;
    s->h.on_request(s->h.ctx, conn->x);
}

static void parse_error(struct conn *conn)
{
    struct http_server *s = conn->s;
    int status = http_parser_error_status(conn->parser);
    const char *reason = http_parser_error_reason(conn->parser);
    s->stats.parse_errors++;
    LOG_INFO("http", "bad request", "peer=%s status=%d reason=\"%s\"", conn->x->peer, status,
             reason);
    conn_write_error(conn, status, reason);
}

/* Feeds data to the parser (state READING). Returns the bytes it took: all of them
 * unless a request completed (the rest is the next request's) or an error ended it. */
static size_t conn_feed(struct conn *conn, const uint8_t *data, size_t len)
{
    size_t consumed = 0;
    const struct http_request *req = NULL;
    enum http_parse_result r = http_parser_feed(conn->parser, data, len, &consumed, &req);
    if (r == HTTP_PARSE_ERROR) {
        parse_error(conn);
        return len;
    }
    conn->request_bytes += consumed;
    if (r == HTTP_PARSE_DONE) {
        dispatch(conn, req);
        return consumed;
    }
    if (http_parser_take_continue(conn->parser) && !conn->is_writing_continue) {
        /* The client waits for this before it sends the body (RFC 9110 §10.1.1). */
        uv_buf_t b = uv_buf_init((char *)continue_100, sizeof(continue_100) - 1);
        conn->continue_req.data = conn;
        if (uv_write(&conn->continue_req, (uv_stream_t *)conn->tcp, &b, 1, on_continue_written) ==
            0)
            conn->is_writing_continue = true;
    }
    return consumed;
}

/* Parses buffered bytes while the connection is reading and has some. */
static void conn_advance(struct conn *conn)
{
    while (!conn->is_closing && conn->state == C_READING && conn->pending.len > 0) {
        size_t n = conn_feed(conn, conn->pending.data, conn->pending.len);
        if (conn->is_closing)
            return;
        memmove(conn->pending.data, conn->pending.data + n, conn->pending.len - n);
        conn->pending.len -= n;
    }
}

/* Gives the socket and the bytes read so far to on_h2_preface; conn closes without it. */
static void hand_over(struct conn *conn)
{
    struct http_server *s = conn->s;
    uv_tcp_t *tcp = conn->tcp;
    uv_read_stop((uv_stream_t *)tcp);
    conn->is_reading = false;
    conn->tcp = NULL;
    conn->open_handles--;
    s->live_handles--;
    s->stats.handed_over++;
    size_t n = 0;
    uint8_t *bytes = buf_steal(&conn->pending, &n);
    tcp->data = NULL;
    conn_close(conn, LOG_LEVEL_DEBUG, "handed over to HTTP/2");
    s->opt.on_h2_preface(s->opt.h2_ctx, tcp, bytes, n);
    mem_free(bytes);
}

/* Decides, from the first bytes of a connection, whether it speaks HTTP/2 (prior
 * knowledge: RFC 9113 §3.4's preface) or HTTP/1.1. */
static void sniff(struct conn *conn)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    size_t want = sizeof(preface) - 1;
    size_t n = conn->pending.len < want ? conn->pending.len : want;
    if (memcmp(conn->pending.data, preface, n) != 0) {
        conn->is_sniffing = false;
        conn_advance(conn); /* HTTP/1.1 after all */
        return;
    }
    if (n == want)
        hand_over(conn);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    (void)suggested;
    struct conn *conn = h->data;
    *out = uv_buf_init((char *)conn->s->read_buf, READ_BUF_BYTES);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
    struct conn *conn = stream->data;
    if (conn->is_closing || nread == 0)
        return;
    if (nread == UV_EOF && conn->state == C_WRITING) {
        /* A half-close after the request: the response being written still goes out. */
        conn->saw_eof = true;
        uv_read_stop(stream);
        conn->is_reading = false;
        return;
    }
    if (nread < 0) {
        bool is_eof = nread == UV_EOF;
        const char *reason = conn->state == C_HANDLING    ? "client went away during a request"
                             : conn->state == C_LINGERING ? "closed after the last response"
                             : is_eof                     ? "closed by client"
                                                          : "read failed";
        conn_close(conn, conn->state == C_HANDLING ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG, reason);
        return;
    }
    const uint8_t *data = (const uint8_t *)b->base;
    size_t len = (size_t)nread;
    switch (conn->state) {
    case C_LINGERING:
        conn->lingered_bytes += len;
        if (conn->lingered_bytes > LINGER_MAX_BYTES)
            conn_close(conn, LOG_LEVEL_DEBUG, "lingering close drained too much");
        return;
    case C_HANDLING:
    case C_WRITING:
        /* The next request waits for this response; buffer it, within a bound. */
        if (buf_append(&conn->pending, data, len) != 0) {
            conn_close(conn, LOG_LEVEL_WARN, "cannot buffer input");
            return;
        }
        conn_update_reading(conn);
        return;
    case C_READING:
        break;
    }
    if (conn->timer_kind == T_IDLE)
        timer_set(conn, T_READ, conn->s->opt.read_timeout_ms); /* a request has begun */
    if (conn->is_sniffing) {
        /* The first bytes wait in pending until they match the HTTP/2 preface or not. */
        if (buf_append(&conn->pending, data, len) != 0) {
            conn_close(conn, LOG_LEVEL_WARN, "cannot buffer input");
            return;
        }
        sniff(conn);
        if (!conn->is_closing)
            conn_update_reading(conn);
        return;
    }
    if (conn->pending.len > 0) {
        if (buf_append(&conn->pending, data, len) != 0) {
            conn_close(conn, LOG_LEVEL_WARN, "cannot buffer input");
            return;
        }
        conn_advance(conn);
    } else {
        /* The common case: parse straight from the read buffer, keep only what is left. */
        size_t n = conn_feed(conn, data, len);
        if (!conn->is_closing && n < len && buf_append(&conn->pending, data + n, len - n) != 0)
            conn_close(conn, LOG_LEVEL_WARN, "cannot buffer input");
    }
    conn_update_reading(conn);
}

/* ---------------------------------------------------------------------------------------
 * Accepting
 * ------------------------------------------------------------------------------------- */

static void on_rejected_closed(uv_handle_t *h)
{
    struct http_server *s = h->data;
    mem_free(h);
    handle_closed(s);
}

/* Takes a connection off the backlog and closes it, or libuv would report it again. */
static void refuse(struct http_server *s, uv_stream_t *server, const char *reason, int err)
{
    s->stats.connections_refused++;
    uv_tcp_t *tmp = mem_alloc(sizeof(*tmp));
    if (tmp && uv_tcp_init(s->loop, tmp) == 0) {
        tmp->data = s;
        s->live_handles++;
        (void)uv_accept(server, (uv_stream_t *)tmp);
        uv_close((uv_handle_t *)tmp, on_rejected_closed);
    } else {
        mem_free(tmp);
    }
    LOG_WARN("http", "connection refused", "reason=\"%s\" open=%zu limit=%" PRIu32 " err=%s",
             reason, s->n_conns, s->opt.max_connections, aspen_err_name(err));
}

/* A new conn with both handles initialized and counted, linked into s->conns. NULL with
 * *rc on failure (nothing to close). */
static struct conn *conn_new(struct http_server *s, int *rc)
{
    struct conn *conn = mem_calloc(1, sizeof(*conn));
    struct http_exchange *x = mem_calloc(1, sizeof(*x));
    uv_tcp_t *tcp = mem_alloc(sizeof(*tcp));
    struct http_parser *p = NULL;
    *rc = conn && x && tcp ? http_parser_create(&p) : ASPEN_E_NOMEM;
    if (*rc == 0)
        *rc = uv_tcp_init(s->loop, tcp);
    if (*rc != 0) {
        http_parser_free(p);
        mem_free(tcp);
        mem_free(x);
        mem_free(conn);
        return NULL;
    }
    uv_timer_init(s->loop, &conn->timer);
    conn->tcp = tcp;
    conn->tcp->data = conn->timer.data = conn;
    conn->open_handles = 2;
    s->live_handles += 2;
    conn->s = s;
    conn->parser = p;
    conn->x = x;
    x->conn = conn;
    x->parser = p;
    snprintf(x->peer, sizeof(x->peer), "unknown");
    /* Pending bytes: the bound plus one read of slack (a read may cross it). */
    buf_init(&conn->pending, PENDING_MAX_BYTES + READ_BUF_BYTES);
    conn->next = s->conns;
    if (s->conns)
        s->conns->prev = conn;
    s->conns = conn;
    s->n_conns++;
    s->stats.connections_open++;
    return conn;
}

static void on_connection(uv_stream_t *server, int status)
{
    struct http_server *s = server->data;
    if (s->is_closing)
        return;
    if (status < 0) {
        LOG_WARN("http", "accept failed", "err=%s", aspen_err_name(status));
        return;
    }
    if (s->n_conns >= s->opt.max_connections) {
        refuse(s, server, "too many connections", ASPEN_E_LIMIT);
        return;
    }
    int rc = 0;
    struct conn *conn = conn_new(s, &rc);
    if (!conn) {
        refuse(s, server, "cannot take a connection", rc);
        return;
    }
    s->stats.connections_total++;
    rc = uv_accept(server, (uv_stream_t *)conn->tcp);
    if (rc != 0) {
        conn_close(conn, LOG_LEVEL_WARN, "accept failed");
        return;
    }
    struct sockaddr_storage peer;
    int plen = sizeof(peer);
    if (uv_tcp_getpeername(conn->tcp, (struct sockaddr *)&peer, &plen) == 0)
        sockaddr_text(&peer, conn->x->peer);
    uv_tcp_nodelay(conn->tcp, 1);
    conn->is_sniffing = s->opt.on_h2_preface != NULL;
    LOG_DEBUG("http", "connection accepted", "peer=%s", conn->x->peer);
    /* A new connection is opened to send a request: the read timeout, not the idle one. */
    timer_set(conn, T_READ, s->opt.read_timeout_ms);
    conn_update_reading(conn);
}

/* ---------------------------------------------------------------------------------------
 * Exchanges
 * ------------------------------------------------------------------------------------- */

const struct http_request *http_exchange_request(const struct http_exchange *x)
{
    return x->req;
}

const char *http_exchange_peer(const struct http_exchange *x)
{
    return x->peer;
}

void http_respond(struct http_exchange *x, int status, const char *content_type,
                  const char *headers, const void *body, size_t len)
{
    ASPEN_ASSERT(x->is_outstanding);
    ASPEN_ASSERT(status >= 200 && status <= 599);
    size_t headers_len = headers ? strlen(headers) : 0;
    /* Programmer errors: the server frames the response, so headers must be whole lines
     * and the content type one value. */
    ASPEN_ASSERT(headers_len == 0 ||
                 (headers_len >= 2 && memcmp(headers + headers_len - 2, "\r\n", 2) == 0));
    ASPEN_ASSERT(!content_type || strpbrk(content_type, "\r\n") == NULL);
    struct conn *conn = x->conn;
    x->is_outstanding = false;
    if (!conn) {
        /* Orphaned: the connection is gone (client left, or the server closed). */
        http_parser_free(x->parser);
        mem_free(x);
        return;
    }
    ASPEN_ASSERT(!conn->is_closing && conn->state == C_HANDLING);
    const struct http_request *req = x->req;
    bool is_head = slice_eq(req->method, slice_str("HEAD"));
    if (len > ASPEN_HTTP_MAX_RESPONSE_BYTES) {
        LOG_ERROR("http", "response too large", "peer=%s status=%d bytes=%zu limit=%" PRIu64,
                  x->peer, status, len, (uint64_t)ASPEN_HTTP_MAX_RESPONSE_BYTES);
        static const char msg[] = "response too large\n";
        conn_write_response(conn, 500, "text/plain; charset=utf-8", NULL, msg, sizeof(msg) - 1,
                            is_head, req->keep_alive, req->version_minor);
        return;
    }
    conn_write_response(conn, status, content_type, headers, body, len, is_head, req->keep_alive,
                        req->version_minor);
}

/* ---------------------------------------------------------------------------------------
 * The server
 * ------------------------------------------------------------------------------------- */

static void finish(struct http_server *s)
{
    ASPEN_ASSERT(s->conns == NULL);
    void (*cb)(void *) = s->on_closed;
    void *ctx = s->on_closed_ctx;
    if (s->port)
        LOG_INFO("http", "server closed", "addr=%s", s->addr_text);
    mem_free(s);
    if (cb)
        cb(ctx);
}

static void handle_closed(struct http_server *s)
{
    ASPEN_ASSERT(s->live_handles > 0);
    if (--s->live_handles == 0 && s->is_closing)
        finish(s);
}

static void on_server_handle_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

static int resolve_options(const struct http_server_options *in, struct http_server_options *out)
{
    struct http_server_options o = in ? *in : (struct http_server_options){0};
    if (!o.max_connections)
        o.max_connections = ASPEN_MAX_CLIENT_CONNECTIONS;
    if (!o.read_timeout_ms)
        o.read_timeout_ms = ASPEN_HTTP_READ_TIMEOUT_MS;
    if (!o.idle_timeout_ms)
        o.idle_timeout_ms = ASPEN_HTTP_IDLE_TIMEOUT_MS;
    if (!o.linger_ms)
        o.linger_ms = LINGER_MS;
    if (o.max_connections > ASPEN_MAX_CLIENT_CONNECTIONS)
        return ASPEN_E_INVALID;
    *out = o;
    return 0;
}

int http_server_open_opts(uv_loop_t *loop, const char *host, uint16_t port,
                          const struct http_handlers *h, const struct http_server_options *opt,
                          struct http_server **out, char *err, size_t err_len)
{
    struct http_server_options resolved;
    if (!h || !h->on_request || resolve_options(opt, &resolved) != 0) {
        snprintf(err, err_len, "invalid handlers or options");
        return ASPEN_E_INVALID;
    }
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof(addr));
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) != 0) {
        snprintf(err, err_len, "invalid address '%s' (want a numeric IPv4 or IPv6 address)", host);
        return ASPEN_E_INVALID;
    }
    struct http_server *s = mem_calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, err_len, "out of memory");
        return ASPEN_E_NOMEM;
    }
    s->loop = loop;
    s->h = *h;
    s->opt = resolved;
    int rc = uv_tcp_init(loop, &s->listener);
    if (rc != 0) {
        mem_free(s);
        snprintf(err, err_len, "cannot create a socket: %s", uv_strerror(rc));
        return rc;
    }
    uv_timer_init(loop, &s->close_timer);
    s->listener.data = s->close_timer.data = s;
    s->live_handles = 2;
    rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, LISTEN_BACKLOG, on_connection);
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    if (rc == 0)
        rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen);
    if (rc != 0) {
        snprintf(err, err_len, "cannot listen on %s port %u: %s", host, (unsigned)port,
                 uv_strerror(rc));
        /* The handles close on the loop, which frees s (nothing for the caller to do). */
        s->is_closing = true;
        uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
        uv_close((uv_handle_t *)&s->close_timer, on_server_handle_closed);
        return rc;
    }
    s->is_listening = true;
    sockaddr_text(&bound, s->addr_text);
    s->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                          : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    LOG_INFO("http", "listening", "addr=%s", s->addr_text);
    *out = s;
    return 0;
}

int http_server_open(uv_loop_t *loop, const char *host, uint16_t port,
                     const struct http_handlers *h, struct http_server **out, char *err,
                     size_t err_len)
{
    return http_server_open_opts(loop, host, port, h, NULL, out, err, err_len);
}

uint16_t http_server_port(const struct http_server *s)
{
    return s->port;
}

void http_server_stop_accepting(struct http_server *s)
{
    if (!s->is_listening)
        return;
    s->is_listening = false;
    uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
    LOG_INFO("http", "stopped accepting", "addr=%s open=%zu", s->addr_text, s->n_conns);
}

void http_server_close(struct http_server *s, void (*on_closed)(void *ctx), void *ctx)
{
    ASPEN_ASSERT(!s->is_closing);
    http_server_stop_accepting(s);
    s->is_closing = true;
    s->on_closed = on_closed;
    s->on_closed_ctx = ctx;
    for (struct conn *conn = s->conns; conn; conn = conn->next)
        conn_close(conn, LOG_LEVEL_DEBUG, "server closing");
    uv_close((uv_handle_t *)&s->close_timer, on_server_handle_closed);
}

void http_server_stats(const struct http_server *s, struct http_server_stats *out)
{
    *out = s->stats;
}
