/*
 * The gRPC server (rpc/server.h): nghttp2 sessions on libuv TCP connections, one call per
 * request stream, handlers from the method table.
 *
 * Connections. Each has one nghttp2 server session fed by its reads
 * (nghttp2_session_mem_recv) and drained into one uv_write at a time
 * (nghttp2_session_mem_send, up to ASPEN_GRPC_WRITE_BATCH_BYTES): while a write is in
 * flight nothing more is serialized, so a client that stops reading holds one batch of
 * ours and the rest waits, bounded, in the calls' queues. Handler functions never drive
 * the session themselves (nghttp2 forbids sending from inside its callbacks, and handlers
 * run inside them): they submit frames and mark the connection dirty; the bytes go out at
 * the end of the read that ran the handler, or from the server's idle handle, which also
 * runs the deferred handler callbacks (on_writable, redelivery after rpc_call_resume). One
 * timer per connection covers the handshake deadline (the preface and SETTINGS must
 * arrive), keepalive (PING after the interval without input, close when its ACK does not
 * come within the timeout) and the linger of a closing connection.
 *
 * Calls go through phases: HEADERS (request headers arriving) → RECEIVING (unary and
 * server-streaming: the one request message and END_STREAM) → HANDLER (the handler holds
 * it) → DONE (the final status is decided; further input is discarded). An answer that
 * needs no handler (unknown method, bad headers, a refused request message) goes straight
 * to DONE with a trailers-only response. After our END_STREAM is sent on a stream the
 * client has not finished, the stream is reset with NO_ERROR (what gRPC servers do) so it
 * stops sending.
 *
 * Receive flow control: automatic WINDOW_UPDATEs are off; bytes are consumed once parsed
 * into the current message or delivered. Bytes that arrive while a handler holds a
 * message back (on_message said BUSY) wait unconsumed in the call's inbox, which the
 * stream window bounds; the connection window holds every stream's window (constants.h),
 * so held streams never block the others.
 *
 * Lifetimes. A call is freed when three things are over: the handler's hold (has_handler),
 * the stream (has_stream) and its deadline timer (timer_state). A call whose stream is
 * gone but whose handler still holds it sits in the server's orphan list; when the server
 * is freed those calls forget it (s = NULL) and only need releasing. Handles follow libuv:
 * memory goes in close callbacks; every handle is counted in live_handles and the server
 * is freed when the count reaches zero after rpc_server_close.
 */
#include "rpc/server.h"

#include "base/assert.h"
#include "base/buf.h"
#include "base/constants.h"
#include "base/log.h"
#include "base/mem.h"

#include <inttypes.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define READ_BUF_BYTES  (64 * 1024)
#define LISTEN_BACKLOG  128
#define PEER_TEXT_BYTES (INET6_ADDRSTRLEN + 8)
/* Longest method path: "/" package "." service "/" method; real ones are under 80. */
#define PATH_MAX_BYTES 255
/* A write batch may end with one frame that crosses the batch size. */
#define WBUF_MAX_BYTES (ASPEN_GRPC_WRITE_BATCH_BYTES + ASPEN_MIB)
/* Raw bytes a held-back stream may have waiting: its window, plus slack for a frame that
 * nghttp2 accepted at the window's edge. */
#define INBOX_MAX_BYTES (ASPEN_GRPC_STREAM_WINDOW_BYTES + 64 * 1024)

enum phase { P_HEADERS, P_RECEIVING, P_HANDLER, P_DONE };
enum timer_state { TS_NONE, TS_ACTIVE, TS_CLOSING };

struct method {
    char path[PATH_MAX_BYTES + 1];
    size_t path_len;
    struct rpc_handler h;
};

/* One framed response message (prefix included) in a call's send queue. */
struct out_chunk {
    struct out_chunk *next;
    size_t len, off;
    uint8_t data[];
};

struct conn;

struct rpc_call {
    struct rpc_server *s;                   /* NULL once the server is gone */
    struct conn *conn;                      /* NULL once the stream is gone */
    struct rpc_call *prev, *next;           /* conn->calls, or s->orphans once detached */
    struct rpc_call *pend_prev, *pend_next; /* in *pend_list: deferred callbacks due */
    struct rpc_call **pend_list;            /* &s->pending, &s->running, or NULL */
    int32_t stream_id;
    enum phase phase;
    struct rpc_handler h;
    bool has_handler, has_stream;
    enum timer_state timer_state;
    bool is_cancelled;
    bool is_remote_closed;  /* END_STREAM received */
    bool is_half_close_due; /* END_STREAM received while messages were held back */
    bool is_headers_sent;   /* response headers (or a trailers-only response) submitted */
    bool is_finished;       /* trailers due once the queue is empty */
    bool is_status_counted; /* calls_by_status has this stream */
    bool want_writable, want_resume;
    bool is_held;     /* `held` is a message on_message pushed back */
    bool has_request; /* unary: `request` holds the message */
    uint32_t n_sent;
    int final_status;
    struct buf final_message; /* owned: percent-encoded grpc-message */
    struct grpc_frame_parser parser;
    struct buf request; /* owned */
    struct buf held;    /* owned */
    struct buf inbox;   /* owned: raw DATA not parsed (and not consumed) */
    struct buf headers; /* owned: request headers as (be32 nlen, be32 vlen, name, value) */
    struct out_chunk *out_head, *out_tail; /* owned */
    size_t out_bytes;
    uint64_t deadline;
    uv_timer_t timer;
    void *user;
    char path[PATH_MAX_BYTES + 1];
    char peer[PEER_TEXT_BYTES];
};

struct conn {
    struct rpc_server *s;
    struct conn *prev, *next;             /* s->conns */
    struct conn *dirty_prev, *dirty_next; /* s->dirty */
    bool is_dirty;
    uv_tcp_t *tcp; /* owned */
    uv_timer_t timer;
    uv_write_t write_req;
    unsigned open_handles;
    nghttp2_session *session; /* owned */
    struct buf wbuf;          /* owned: the batch being written */
    bool is_writing, is_closing, is_lingering, is_goaway_sent, has_settings;
    bool is_ping_outstanding;
    uint64_t started_ms, last_recv_ms, ping_sent_ms, linger_until_ms;
    struct rpc_call *calls; /* streams with a call */
    size_t n_streams;
    char peer[PEER_TEXT_BYTES];
};

struct rpc_server {
    uv_loop_t *loop;
    struct rpc_server_options opt; /* resolved: no zero fields */
    uv_tcp_t listener;
    bool has_listener, is_listening, is_accepting, is_closing;
    uint16_t port;
    char addr_text[PEER_TEXT_BYTES];
    struct method *methods[ASPEN_GRPC_MAX_METHODS]; /* owned, sorted by path */
    size_t n_methods;
    struct conn *conns;
    size_t n_conns;
    struct rpc_call *orphans;
    struct rpc_call *pending; /* calls with deferred callbacks */
    struct rpc_call *running; /* the pass of on_idle in progress */
    struct conn *dirty;       /* conns to flush */
    uv_idle_t idle;
    bool is_idle_active;
    uv_timer_t close_timer;
    uint64_t live_handles;
    nghttp2_session_callbacks *callbacks; /* owned */
    nghttp2_option *h2opt;                /* owned */
    struct rpc_server_stats stats;
    void (*on_closed)(void *ctx);
    void *on_closed_ctx;
    uint8_t read_buf[READ_BUF_BYTES];
};

static void handle_closed(struct rpc_server *s);
static void conn_flush(struct conn *c);
static void conn_close(struct conn *c, enum log_level level, const char *reason);
static void conn_timer_arm(struct conn *c);
static void call_fail(struct rpc_call *call, int status, const char *text);
static void call_maybe_free(struct rpc_call *call);
static void call_timer_close(struct rpc_call *call);
static void call_parse(struct rpc_call *call, const uint8_t *data, size_t len);
static void call_remote_end(struct rpc_call *call);

/* ---------------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------------- */

static void sockaddr_text(const struct sockaddr_storage *a, char out[PEER_TEXT_BYTES])
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)a;
        uv_ip6_name(a6, ip, sizeof(ip));
        snprintf(out, PEER_TEXT_BYTES, "[%s]:%u", ip, (unsigned)ntohs(a6->sin6_port));
    } else {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)a;
        uv_ip4_name(a4, ip, sizeof(ip));
        snprintf(out, PEER_TEXT_BYTES, "%s:%u", ip, (unsigned)ntohs(a4->sin_port));
    }
}

static nghttp2_nv make_nv(const char *name, const char *value, size_t value_len)
{
    return (nghttp2_nv){.name = (uint8_t *)(uintptr_t)name,
                        .value = (uint8_t *)(uintptr_t)value,
                        .namelen = strlen(name),
                        .valuelen = value_len,
                        .flags = NGHTTP2_NV_FLAG_NONE};
}

static bool ascii_prefix_ci(struct slice s, const char *prefix)
{
    size_t n = strlen(prefix);
    if (s.len < n)
        return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t a = s.ptr[i], b = (uint8_t)prefix[i];
        if (a >= 'A' && a <= 'Z')
            a = (uint8_t)(a + 32);
        if (a != b)
            return false;
    }
    return true;
}

/* Where a request's content-type leads: 0 gRPC with protobuf, 1 not gRPC (HTTP 415), 2
 * gRPC with another codec. */
static int content_type_kind(struct slice ct)
{
    static const char grpc[] = "application/grpc";
    size_t n = sizeof(grpc) - 1;
    if (!ascii_prefix_ci(ct, grpc))
        return 1;
    if (ct.len == n || ct.ptr[n] == ';')
        return 0;
    if (ct.ptr[n] != '+')
        return 1;
    struct slice sub = slice_make(ct.ptr + n + 1, ct.len - n - 1);
    size_t end = 0;
    while (end < sub.len && sub.ptr[end] != ';')
        end++;
    return end == 5 && ascii_prefix_ci(sub, "proto") ? 0 : 2;
}

/* ---------------------------------------------------------------------------------------
 * Deferred work: the idle handle flushes dirty connections and runs pending callbacks.
 * ------------------------------------------------------------------------------------- */

static void on_idle(uv_idle_t *h);

static void idle_want(struct rpc_server *s)
{
    /* Once closing, the idle handle is closed: lingering connections flush from their
     * write callbacks and deferred callbacks are moot (every call was cancelled). */
    if (!s->is_idle_active && !s->is_closing) {
        uv_idle_start(&s->idle, on_idle);
        s->is_idle_active = true;
    }
}

static void conn_mark_dirty(struct conn *c)
{
    if (c->is_dirty || c->is_closing)
        return;
    struct rpc_server *s = c->s;
    c->is_dirty = true;
    c->dirty_prev = NULL;
    c->dirty_next = s->dirty;
    if (s->dirty)
        s->dirty->dirty_prev = c;
    s->dirty = c;
    idle_want(s);
}

static void conn_unmark_dirty(struct conn *c)
{
    if (!c->is_dirty)
        return;
    c->is_dirty = false;
    if (c->dirty_prev)
        c->dirty_prev->dirty_next = c->dirty_next;
    else
        c->s->dirty = c->dirty_next;
    if (c->dirty_next)
        c->dirty_next->dirty_prev = c->dirty_prev;
    c->dirty_prev = c->dirty_next = NULL;
}

static void pend_link(struct rpc_call *call, struct rpc_call **list)
{
    call->pend_list = list;
    call->pend_prev = NULL;
    call->pend_next = *list;
    if (*list)
        (*list)->pend_prev = call;
    *list = call;
}

static void call_unmark_pending(struct rpc_call *call)
{
    if (!call->pend_list)
        return;
    if (call->pend_prev)
        call->pend_prev->pend_next = call->pend_next;
    else
        *call->pend_list = call->pend_next;
    if (call->pend_next)
        call->pend_next->pend_prev = call->pend_prev;
    call->pend_prev = call->pend_next = NULL;
    call->pend_list = NULL;
}

static void call_mark_pending(struct rpc_call *call)
{
    struct rpc_server *s = call->s;
    if (!s || !call->has_stream || call->pend_list == &s->pending)
        return;
    call_unmark_pending(call); /* from the running pass: it will run in the next one */
    pend_link(call, &s->pending);
    idle_want(s);
}

static void call_drain_held(struct rpc_call *call);

/* The deferred callbacks of one call: redelivery after rpc_call_resume, then on_writable. */
static void call_run_deferred(struct rpc_call *call)
{
    if (!call->has_stream || !call->has_handler || call->is_cancelled || call->phase != P_HANDLER)
        return;
    if (call->want_resume) {
        call->want_resume = false;
        call_drain_held(call);
    }
    if (call->has_handler && !call->is_cancelled && call->phase == P_HANDLER &&
        call->want_writable && call->out_bytes <= call->s->opt.send_queue_bytes / 2) {
        call->want_writable = false;
        if (call->h.on_writable)
            call->h.on_writable(call->h.ctx, call);
    }
    if (call->conn)
        conn_mark_dirty(call->conn);
}

static void on_idle(uv_idle_t *h)
{
    struct rpc_server *s = h->data;
    /* The calls marked so far run in this pass; calls marked meanwhile wait for the next,
     * so a handler that resumes from its own on_message cannot spin here. */
    ASPEN_ASSERT(s->running == NULL);
    while (s->pending) {
        struct rpc_call *call = s->pending;
        call_unmark_pending(call);
        pend_link(call, &s->running);
    }
    while (s->running) {
        struct rpc_call *call = s->running;
        call_unmark_pending(call);
        call_run_deferred(call);
    }
    while (s->dirty) {
        struct conn *c = s->dirty;
        conn_unmark_dirty(c);
        conn_flush(c);
    }
    if (!s->pending && !s->dirty) {
        uv_idle_stop(&s->idle);
        s->is_idle_active = false;
    }
}

/* ---------------------------------------------------------------------------------------
 * Calls: creation, status, freeing
 * ------------------------------------------------------------------------------------- */

static struct rpc_call *call_new(struct conn *c, int32_t stream_id)
{
    struct rpc_call *call = mem_calloc(1, sizeof(*call));
    if (!call)
        return NULL;
    call->s = c->s;
    call->conn = c;
    call->stream_id = stream_id;
    call->has_stream = true;
    call->phase = P_HEADERS;
    buf_init(&call->final_message, 3 * ASPEN_GRPC_MAX_STATUS_MESSAGE_BYTES);
    buf_init(&call->request, c->s->opt.max_message_bytes);
    buf_init(&call->held, c->s->opt.max_message_bytes);
    buf_init(&call->inbox, INBOX_MAX_BYTES);
    buf_init(&call->headers, ASPEN_GRPC_MAX_HEADER_LIST_BYTES + 64 * 8);
    grpc_frame_parser_init(&call->parser, c->s->opt.max_message_bytes);
    memcpy(call->peer, c->peer, sizeof(call->peer));
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    c->n_streams++;
    c->s->stats.streams_open++;
    c->s->stats.streams_total++;
    return call;
}

static void out_queue_free(struct rpc_call *call)
{
    struct out_chunk *ch = call->out_head;
    while (ch) {
        struct out_chunk *next = ch->next;
        mem_free(ch);
        ch = next;
    }
    call->out_head = call->out_tail = NULL;
    if (call->s)
        call->s->stats.send_queued_bytes -= call->out_bytes;
    call->out_bytes = 0;
}

/* Drops input waiting for a handler (consuming it, so the windows reopen). */
static void call_drop_input(struct rpc_call *call)
{
    if (call->s)
        call->s->stats.recv_held_bytes -= call->inbox.len + (call->is_held ? call->held.len : 0);
    if (call->conn && call->inbox.len)
        nghttp2_session_consume(call->conn->session, call->stream_id, call->inbox.len);
    buf_release(&call->inbox);
    buf_release(&call->held);
    call->is_held = false;
    buf_release(&call->request);
    grpc_frame_parser_release(&call->parser);
}

static void call_free(struct rpc_call *call)
{
    ASPEN_ASSERT(!call->has_handler && !call->has_stream && call->timer_state == TS_NONE);
    ASPEN_ASSERT(!call->pend_list);
    if (call->s) {
        /* Unlink from the orphans. */
        if (call->prev)
            call->prev->next = call->next;
        else
            call->s->orphans = call->next;
        if (call->next)
            call->next->prev = call->prev;
    }
    buf_release(&call->final_message);
    buf_release(&call->headers);
    call_drop_input(call);
    out_queue_free(call);
    mem_free(call);
}

static void call_maybe_free(struct rpc_call *call)
{
    if (!call->has_handler && !call->has_stream && call->timer_state == TS_NONE)
        call_free(call);
}

static void count_status(struct rpc_call *call, int status)
{
    if (call->is_status_counted || !call->s)
        return;
    call->is_status_counted = true;
    call->s->stats.calls_by_status[status]++;
}

/* Tells the handler its call is over (once). */
static void call_cancel_handler(struct rpc_call *call)
{
    if (!call->has_handler || call->is_cancelled)
        return;
    call->is_cancelled = true;
    call->want_writable = call->want_resume = false;
    call_unmark_pending(call);
    if (call->s)
        call->s->stats.calls_cancelled++;
    call->h.on_cancel(call->h.ctx, call);
}

static void status_text(int status, char out[4])
{
    snprintf(out, 4, "%d", status);
}

/* Submits the final status of a stream: a trailers-only response if nothing was sent
 * yet, else trailers once the queued messages are out. http_status is 200 except for
 * the early refusals (405, 415). */
static void call_submit_final(struct rpc_call *call, int http_status, int status, const char *text)
{
    ASPEN_ASSERT(status >= 0 && status < GRPC_STATUS_COUNT);
    call->final_status = status;
    buf_clear(&call->final_message);
    if (text) {
        size_t n = strlen(text);
        if (n > ASPEN_GRPC_MAX_STATUS_MESSAGE_BYTES)
            n = ASPEN_GRPC_MAX_STATUS_MESSAGE_BYTES;
        (void)grpc_message_encode(slice_make(text, n), &call->final_message);
    }
    count_status(call, status);
    if (!call->has_stream)
        return;
    struct conn *c = call->conn;
    if (!call->is_headers_sent) {
        char st[4], http[4];
        status_text(status, st);
        snprintf(http, sizeof(http), "%d", http_status);
        nghttp2_nv nv[4] = {
            make_nv(":status", http, strlen(http)),
            make_nv("content-type", "application/grpc", 16),
            make_nv("grpc-status", st, strlen(st)),
            make_nv("grpc-message", (const char *)call->final_message.data,
                    call->final_message.len),
        };
        call->is_headers_sent = true;
        int rc = nghttp2_submit_response(c->session, call->stream_id, nv,
                                         call->final_message.len ? 4 : 3, NULL);
        if (rc != 0)
            nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, call->stream_id,
                                      NGHTTP2_INTERNAL_ERROR);
    } else {
        call->is_finished = true;
        nghttp2_session_resume_data(c->session, call->stream_id);
    }
    conn_mark_dirty(c);
}

/* The server ends a stream on its own (refused request, deadline, shutdown): the status
 * goes out, input is dropped, and a handler holding the call is told. */
static void call_fail(struct rpc_call *call, int status, const char *text)
{
    if (call->phase == P_DONE)
        return;
    bool had_handler = call->phase == P_HANDLER;
    call->phase = P_DONE;
    call_drop_input(call);
    out_queue_free(call); /* a refused or expired call's queued messages are moot */
    if (call->has_stream)
        call_submit_final(call, 200, status, text);
    if (had_handler)
        call_cancel_handler(call); /* last: the handler may give the call back here */
}

/* The stream is gone (closed, reset, or its connection closed). */
static void call_detach(struct rpc_call *call)
{
    struct conn *c = call->conn;
    ASPEN_ASSERT(c && call->has_stream);
    if (call->prev)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->prev = call->next = NULL;
    c->n_streams--;
    struct rpc_server *s = c->s;
    s->stats.streams_open--;
    call_drop_input(call);
    out_queue_free(call);
    call_unmark_pending(call);
    call->conn = NULL;
    call->has_stream = false;
    /* Orphans list: the handler may hold the call after its stream. */
    call->next = s->orphans;
    if (s->orphans)
        s->orphans->prev = call;
    s->orphans = call;
    if (call->phase != P_HEADERS)
        count_status(call, GRPC_STATUS_CANCELLED); /* no status of ours reached the client */
    call_timer_close(call);
    bool must_tell = call->phase == P_HANDLER && call->has_handler && !call->is_cancelled;
    call->phase = P_DONE;
    if (must_tell) {
        /* Last: the handler may give the call back inside on_cancel, which frees it. */
        call_cancel_handler(call);
        return;
    }
    call_maybe_free(call);
}

/* ---------------------------------------------------------------------------------------
 * Calls: deadline timers
 * ------------------------------------------------------------------------------------- */

static void on_call_timer_closed(uv_handle_t *h)
{
    struct rpc_call *call = h->data;
    struct rpc_server *s = call->s;
    call->timer_state = TS_NONE;
    call_maybe_free(call);
    if (s)
        handle_closed(s);
}

static void call_timer_close(struct rpc_call *call)
{
    if (call->timer_state != TS_ACTIVE)
        return;
    call->timer_state = TS_CLOSING;
    uv_close((uv_handle_t *)&call->timer, on_call_timer_closed);
}

static void on_call_deadline(uv_timer_t *t)
{
    struct rpc_call *call = t->data;
    struct conn *c = call->conn;
    if (call->has_stream && call->phase != P_DONE) {
        LOG_DEBUG("rpc", "deadline exceeded", "peer=%s method=%s", call->peer, call->path);
        call_fail(call, GRPC_STATUS_DEADLINE_EXCEEDED, "deadline exceeded");
    }
    call_timer_close(call);
    if (c)
        conn_flush(c);
}

/* ---------------------------------------------------------------------------------------
 * Calls: the request side
 * ------------------------------------------------------------------------------------- */

static bool call_header(const struct rpc_call *call, const char *name, struct slice *value)
{
    size_t nlen = strlen(name);
    struct reader r = reader_make(buf_slice(&call->headers));
    uint32_t nl, vl;
    struct slice n, v;
    while (reader_be32(&r, &nl) == 0 && reader_be32(&r, &vl) == 0 &&
           reader_bytes(&r, nl, &n) == 0 && reader_bytes(&r, vl, &v) == 0) {
        if (n.len == nlen && memcmp(n.ptr, name, nlen) == 0) {
            *value = v;
            return true;
        }
    }
    return false;
}

static const struct method *method_find(const struct rpc_server *s, struct slice path)
{
    size_t lo = 0, hi = s->n_methods;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct method *m = s->methods[mid];
        int c = slice_cmp(slice_make(m->path, m->path_len), path);
        if (c == 0)
            return m;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* An answer without a handler: trailers-only, then the stream only discards. */
static void call_refuse(struct rpc_call *call, int http_status, int status, const char *text)
{
    LOG_DEBUG("rpc", "call refused", "peer=%s status=%s reason=\"%s\"", call->peer,
              grpc_status_name(status), text);
    call->phase = P_DONE;
    call_drop_input(call);
    call_submit_final(call, http_status, status, text);
}

static void call_dispatch(struct rpc_call *call, struct slice request)
{
    struct rpc_server *s = call->s;
    call->phase = P_HANDLER;
    call->has_handler = true;
    s->stats.calls_active++;
    s->stats.calls_total++;
    call->h.on_call(call->h.ctx, call, request);
}

/* The request headers are complete: check them and route the call. */
static void call_begin(struct rpc_call *call)
{
    struct rpc_server *s = call->s;
    struct slice method = {0}, path = {0}, ct = {0}, timeout = {0};
    call_header(call, ":method", &method);
    call_header(call, ":path", &path);
    if (!slice_eq(method, slice_str("POST"))) {
        call_refuse(call, 405, GRPC_STATUS_UNIMPLEMENTED, "gRPC requires POST");
        return;
    }
    int ct_kind = call_header(call, "content-type", &ct) ? content_type_kind(ct) : 1;
    if (ct_kind == 1) {
        call_refuse(call, 415, GRPC_STATUS_INTERNAL, "invalid gRPC request content-type");
        return;
    }
    if (ct_kind == 2) {
        call_refuse(call, 200, GRPC_STATUS_UNIMPLEMENTED, "only protobuf is supported");
        return;
    }
    const struct method *m = method_find(s, path);
    if (!m) {
        char text[PATH_MAX_BYTES + 32];
        snprintf(text, sizeof(text), "unknown method %.*s",
                 (int)(path.len < PATH_MAX_BYTES ? path.len : PATH_MAX_BYTES),
                 path.len ? (const char *)path.ptr : "");
        call_refuse(call, 200, GRPC_STATUS_UNIMPLEMENTED, text);
        return;
    }
    uint64_t timeout_ms = 0;
    bool has_timeout = call_header(call, "grpc-timeout", &timeout);
    if (has_timeout && grpc_timeout_parse(timeout, &timeout_ms) != 0) {
        call_refuse(call, 200, GRPC_STATUS_INTERNAL, "malformed grpc-timeout");
        return;
    }
    memcpy(call->path, m->path, m->path_len + 1);
    call->h = m->h;
    if (has_timeout) {
        call->deadline = uv_now(s->loop) + timeout_ms;
        uv_timer_init(s->loop, &call->timer);
        call->timer.data = call;
        call->timer_state = TS_ACTIVE;
        s->live_handles++;
        uv_timer_start(&call->timer, on_call_deadline, timeout_ms, 0);
    }
    if (call->h.kind == RPC_CLIENT_STREAM || call->h.kind == RPC_BIDI)
        call_dispatch(call, slice_make(NULL, 0));
    else
        call->phase = P_RECEIVING;
}

static void consume(struct rpc_call *call, size_t n)
{
    if (n && call->conn)
        nghttp2_session_consume(call->conn->session, call->stream_id, n);
}

/* Parses DATA bytes of a RECEIVING or HANDLER call that is not holding input back. Bytes
 * parsed are consumed; bytes after a message the handler pushed back go to the inbox. */
static void call_parse(struct rpc_call *call, const uint8_t *data, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        size_t used = 0;
        struct slice msg;
        enum grpc_frame_result r =
            grpc_frame_parser_feed(&call->parser, data + pos, len - pos, &used, &msg);
        pos += used;
        if (r == GRPC_FRAME_MORE)
            break;
        if (r == GRPC_FRAME_ERROR) {
            consume(call, len);
            call_fail(call, call->parser.error_status, call->parser.error_text);
            return;
        }
        if (call->phase == P_RECEIVING) {
            if (call->has_request) {
                consume(call, len);
                call_fail(call, GRPC_STATUS_INTERNAL,
                          "more than one request message for a unary request");
                return;
            }
            if (buf_append_slice(&call->request, msg) != 0) {
                consume(call, len);
                call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
                return;
            }
            call->has_request = true;
            continue;
        }
        ASPEN_ASSERT(call->phase == P_HANDLER);
        if (call->is_cancelled || !call->has_handler)
            continue; /* finished by the handler meanwhile: drop */
        int rc = call->h.on_message(call->h.ctx, call, msg);
        if (call->phase != P_HANDLER) {
            consume(call, len); /* finished inside the callback */
            return;
        }
        if (rc == ASPEN_E_BUSY) {
            /* Keep the message and the bytes after it until rpc_call_resume. */
            if (buf_append_slice(&call->held, msg) != 0 ||
                buf_append(&call->inbox, data + pos, len - pos) != 0) {
                consume(call, len);
                call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "cannot hold the request");
                return;
            }
            call->is_held = true;
            call->s->stats.recv_held_bytes += call->held.len + (len - pos);
            consume(call, pos);
            return;
        }
    }
    consume(call, len);
}

/* Redelivers a pushed-back message, then the bytes that waited behind it. */
static void call_drain_held(struct rpc_call *call)
{
    struct rpc_server *s = call->s;
    if (call->is_held) {
        int rc = call->h.on_message(call->h.ctx, call, buf_slice(&call->held));
        if (call->phase != P_HANDLER || rc == ASPEN_E_BUSY)
            return;
        s->stats.recv_held_bytes -= call->held.len;
        call->is_held = false;
        buf_release(&call->held);
    }
    if (call->inbox.len) {
        size_t n = 0;
        uint8_t *data = buf_steal(&call->inbox, &n);
        s->stats.recv_held_bytes -= n;
        call_parse(call, data, n);
        mem_free(data);
    }
    if (call->phase == P_HANDLER && !call->is_held && call->is_half_close_due) {
        call->is_half_close_due = false;
        call_remote_end(call);
    }
}

/* DATA for a call. */
static void call_data(struct rpc_call *call, const uint8_t *data, size_t len)
{
    if (call->phase != P_RECEIVING && call->phase != P_HANDLER) {
        consume(call, len);
        return;
    }
    if (call->is_held || call->inbox.len) {
        if (buf_append(&call->inbox, data, len) != 0) {
            consume(call, len);
            call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "flow control window exceeded");
            return;
        }
        call->s->stats.recv_held_bytes += len;
        return;
    }
    call_parse(call, data, len);
}

/* END_STREAM from the client. */
static void call_remote_end(struct rpc_call *call)
{
    call->is_remote_closed = true;
    if (call->phase == P_RECEIVING) {
        if (!grpc_frame_parser_is_idle(&call->parser)) {
            call_fail(call, GRPC_STATUS_INTERNAL, "request message cut short");
            return;
        }
        if (!call->has_request) {
            call_fail(call, GRPC_STATUS_INTERNAL, "no request message");
            return;
        }
        call_dispatch(call, buf_slice(&call->request));
        buf_release(&call->request);
        return;
    }
    if (call->phase != P_HANDLER)
        return;
    if (call->is_held || call->inbox.len) {
        call->is_half_close_due = true; /* after the held messages */
        return;
    }
    if (!grpc_frame_parser_is_idle(&call->parser)) {
        call_fail(call, GRPC_STATUS_INTERNAL, "request message cut short");
        return;
    }
    if (call->has_handler && !call->is_cancelled && call->h.on_half_close)
        call->h.on_half_close(call->h.ctx, call);
}

/* ---------------------------------------------------------------------------------------
 * Calls: the response side
 * ------------------------------------------------------------------------------------- */

static void submit_trailers(struct rpc_call *call)
{
    char st[4];
    status_text(call->final_status, st);
    nghttp2_nv nv[2] = {
        make_nv("grpc-status", st, strlen(st)),
        make_nv("grpc-message", (const char *)call->final_message.data, call->final_message.len),
    };
    if (nghttp2_submit_trailer(call->conn->session, call->stream_id, nv,
                               call->final_message.len ? 2 : 1) != 0)
        nghttp2_submit_rst_stream(call->conn->session, NGHTTP2_FLAG_NONE, call->stream_id,
                                  NGHTTP2_INTERNAL_ERROR);
}

static ssize_t on_data_read(nghttp2_session *session, int32_t stream_id, uint8_t *out,
                            size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                            void *user_data)
{
    (void)session;
    (void)stream_id;
    (void)user_data;
    struct rpc_call *call = source->ptr;
    size_t n = 0;
    while (n < length && call->out_head) {
        struct out_chunk *ch = call->out_head;
        size_t take = ch->len - ch->off;
        if (take > length - n)
            take = length - n;
        memcpy(out + n, ch->data + ch->off, take);
        ch->off += take;
        n += take;
        if (ch->off == ch->len) {
            call->out_head = ch->next;
            if (!call->out_head)
                call->out_tail = NULL;
            mem_free(ch);
        }
    }
    call->out_bytes -= n;
    if (call->s)
        call->s->stats.send_queued_bytes -= n;
    if (call->want_writable && call->out_bytes <= call->s->opt.send_queue_bytes / 2)
        call_mark_pending(call);
    if (!call->out_head && call->is_finished) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        submit_trailers(call);
        return (ssize_t)n;
    }
    if (n == 0)
        return NGHTTP2_ERR_DEFERRED;
    return (ssize_t)n;
}

int rpc_call_send(struct rpc_call *call, struct slice msg)
{
    ASPEN_ASSERT(call->has_handler);
    if (call->is_cancelled || !call->has_stream || call->phase != P_HANDLER)
        return ASPEN_E_CANCELED;
    if ((call->h.kind == RPC_UNARY || call->h.kind == RPC_CLIENT_STREAM) && call->n_sent > 0)
        return ASPEN_E_INVALID;
    if (msg.len > ASPEN_GRPC_MAX_SEND_MESSAGE_BYTES)
        return ASPEN_E_TOO_LARGE;
    struct rpc_server *s = call->s;
    size_t framed = GRPC_FRAME_PREFIX_BYTES + msg.len;
    if (call->out_bytes > 0 && call->out_bytes + framed > s->opt.send_queue_bytes) {
        call->want_writable = true;
        s->stats.send_busy++;
        return ASPEN_E_BUSY;
    }
    struct out_chunk *ch = mem_alloc(sizeof(*ch) + framed);
    if (!ch)
        return ASPEN_E_NOMEM;
    ch->next = NULL;
    ch->len = framed;
    ch->off = 0;
    grpc_frame_prefix(ch->data, (uint32_t)msg.len);
    if (msg.len)
        memcpy(ch->data + GRPC_FRAME_PREFIX_BYTES, msg.ptr, msg.len);
    struct conn *c = call->conn;
    if (!call->is_headers_sent) {
        nghttp2_nv nv[2] = {
            make_nv(":status", "200", 3),
            make_nv("content-type", "application/grpc", 16),
        };
        nghttp2_data_provider prd = {.source.ptr = call, .read_callback = on_data_read};
        if (nghttp2_submit_response(c->session, call->stream_id, nv, 2, &prd) != 0) {
            mem_free(ch);
            return ASPEN_E_NOMEM;
        }
        call->is_headers_sent = true;
    } else {
        nghttp2_session_resume_data(c->session, call->stream_id);
    }
    if (call->out_tail)
        call->out_tail->next = ch;
    else
        call->out_head = ch;
    call->out_tail = ch;
    call->out_bytes += framed;
    call->n_sent++;
    s->stats.send_queued_bytes += framed;
    if (call->out_bytes > s->stats.send_queued_bytes_max)
        s->stats.send_queued_bytes_max = call->out_bytes;
    conn_mark_dirty(c);
    return 0;
}

/* The handler gives the call back. */
static void call_unhold(struct rpc_call *call)
{
    ASPEN_ASSERT(call->has_handler);
    call->has_handler = false;
    call->want_writable = call->want_resume = false;
    call_unmark_pending(call);
    if (call->s)
        call->s->stats.calls_active--;
}

void rpc_call_finish(struct rpc_call *call, int status, const char *message)
{
    ASPEN_ASSERT(call->has_handler);
    ASPEN_ASSERT(status >= 0 && status < GRPC_STATUS_COUNT);
    bool is_live = !call->is_cancelled && call->has_stream && call->phase == P_HANDLER;
    call_unhold(call);
    if (is_live) {
        call->phase = P_DONE;
        call_drop_input(call); /* consumed: the connection window must not shrink */
        call_submit_final(call, 200, status, message);
    }
    call_maybe_free(call);
}

void rpc_call_release(struct rpc_call *call)
{
    if (!call->is_cancelled && call->has_stream && call->phase == P_HANDLER) {
        rpc_call_finish(call, GRPC_STATUS_CANCELLED, "call abandoned by the server");
        return;
    }
    call_unhold(call);
    call_maybe_free(call);
}

void rpc_call_resume(struct rpc_call *call)
{
    ASPEN_ASSERT(call->has_handler);
    if (!call->is_held || call->is_cancelled || !call->has_stream)
        return;
    call->want_resume = true;
    call_mark_pending(call);
}

void rpc_call_set_user(struct rpc_call *call, void *user)
{
    call->user = user;
}

void *rpc_call_user(const struct rpc_call *call)
{
    return call->user;
}

const char *rpc_call_method(const struct rpc_call *call)
{
    return call->path;
}

const char *rpc_call_peer(const struct rpc_call *call)
{
    return call->peer;
}

bool rpc_call_metadata(const struct rpc_call *call, const char *name, struct slice *value)
{
    return call_header(call, name, value);
}

uint64_t rpc_call_deadline(const struct rpc_call *call)
{
    return call->deadline;
}

bool rpc_call_is_cancelled(const struct rpc_call *call)
{
    return call->is_cancelled;
}

/* ---------------------------------------------------------------------------------------
 * nghttp2 callbacks
 * ------------------------------------------------------------------------------------- */

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    struct conn *c = ud;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct rpc_call *call = call_new(c, frame->hd.stream_id);
    if (!call)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* the stream is reset */
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, call);
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)flags;
    (void)ud;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* a client's trailers carry nothing gRPC uses */
    struct rpc_call *call = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!call)
        return 0;
    uint8_t lens[8];
    be32_store(lens, (uint32_t)namelen);
    be32_store(lens + 4, (uint32_t)valuelen);
    /* HTTP/2 counts 32 bytes of overhead per field against the header list limit. */
    if (call->headers.len + namelen + valuelen + 32 > ASPEN_GRPC_MAX_HEADER_LIST_BYTES ||
        buf_append(&call->headers, lens, sizeof(lens)) != 0 ||
        buf_append(&call->headers, name, namelen) != 0 ||
        buf_append(&call->headers, value, valuelen) != 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    struct conn *c = ud;
    switch (frame->hd.type) {
    case NGHTTP2_SETTINGS:
        if (!c->has_settings) {
            c->has_settings = true; /* the preface and the first SETTINGS are in */
            conn_timer_arm(c);
        }
        break;
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK)
            c->is_ping_outstanding = false;
        break;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA: {
        struct rpc_call *call = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (!call)
            break;
        if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
            call_begin(call);
        if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && call->has_stream)
            call_remote_end(call);
        break;
    }
    default:
        break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *ud)
{
    (void)flags;
    (void)ud;
    struct rpc_call *call = nghttp2_session_get_stream_user_data(session, stream_id);
    if (!call) {
        nghttp2_session_consume(session, stream_id, len);
        return 0;
    }
    call_data(call, data, len);
    return 0;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    struct conn *c = ud;
    if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR) {
        c->s->stats.connection_errors++;
        LOG_INFO("rpc", "connection refused by HTTP/2", "peer=%s error=%s", c->peer,
                 nghttp2_http2_strerror(frame->goaway.error_code));
    }
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        nghttp2_session_get_stream_remote_close(session, frame->hd.stream_id) == 0) {
        /* Our answer is complete but the client is still sending: tell it to stop. */
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_NO_ERROR);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *ud)
{
    (void)ud;
    struct rpc_call *call = nghttp2_session_get_stream_user_data(session, stream_id);
    if (!call)
        return 0;
    if (error_code != NGHTTP2_NO_ERROR && call->phase == P_HANDLER)
        LOG_DEBUG("rpc", "stream reset", "peer=%s method=%s error=%s", call->peer, call->path,
                  nghttp2_http2_strerror(error_code));
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    call_detach(call);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------------------- */

static void conn_free(struct conn *c)
{
    struct rpc_server *s = c->s;
    ASPEN_ASSERT(!c->is_writing && c->calls == NULL);
    buf_release(&c->wbuf);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conns--;
    s->stats.connections_open--;
    mem_free(c);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct rpc_server *s = c->s;
    if (h == (uv_handle_t *)c->tcp) {
        mem_free(c->tcp);
        c->tcp = NULL;
    }
    if (--c->open_handles == 0)
        conn_free(c);
    handle_closed(s);
}

/* Closes at once (idempotent): every call's stream is gone, handlers are told. Never
 * called from inside an nghttp2 callback. */
static void conn_close(struct conn *c, enum log_level level, const char *reason)
{
    if (c->is_closing)
        return;
    c->is_closing = true;
    LOG_AT(level, "rpc", "connection closed", "peer=%s streams=%zu reason=\"%s\"", c->peer,
           c->n_streams, reason);
    conn_unmark_dirty(c);
    while (c->calls) {
        struct rpc_call *call = c->calls;
        nghttp2_session_set_stream_user_data(c->session, call->stream_id, NULL);
        call_detach(call);
    }
    nghttp2_session_del(c->session);
    c->session = NULL;
    uv_read_stop((uv_stream_t *)c->tcp);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    c->is_writing = false;
    if (c->wbuf.cap > 2 * ASPEN_GRPC_WRITE_BATCH_BYTES)
        buf_release(&c->wbuf);
    else
        buf_clear(&c->wbuf);
    if (c->is_closing)
        return;
    if (status < 0) {
        conn_close(c, LOG_LEVEL_DEBUG, "write failed");
        return;
    }
    conn_flush(c);
}

/* Serializes what nghttp2 has to send (one batch) and writes it; closes the connection
 * when HTTP/2 is done with it. */
static void conn_flush(struct conn *c)
{
    if (c->is_closing || c->is_writing)
        return;
    while (c->wbuf.len < ASPEN_GRPC_WRITE_BATCH_BYTES) {
        const uint8_t *data = NULL;
        ssize_t n = nghttp2_session_mem_send(c->session, &data);
        if (n < 0) {
            c->s->stats.connection_errors++;
            conn_close(c, LOG_LEVEL_INFO, nghttp2_strerror((int)n));
            return;
        }
        if (n == 0)
            break;
        if (buf_append(&c->wbuf, data, (size_t)n) != 0) {
            conn_close(c, LOG_LEVEL_WARN, "cannot buffer output");
            return;
        }
    }
    if (c->wbuf.len > 0) {
        c->write_req.data = c;
        uv_buf_t b = uv_buf_init((char *)c->wbuf.data, (unsigned)c->wbuf.len);
        int rc = uv_write(&c->write_req, (uv_stream_t *)c->tcp, &b, 1, on_write);
        if (rc < 0) {
            buf_clear(&c->wbuf);
            conn_close(c, LOG_LEVEL_DEBUG, "write failed");
            return;
        }
        c->is_writing = true;
        return;
    }
    if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session))
        conn_close(c, LOG_LEVEL_DEBUG, c->is_goaway_sent ? "drained after GOAWAY" : "HTTP/2 done");
    else if (c->is_lingering && c->n_streams == 0)
        conn_close(c, LOG_LEVEL_DEBUG, "server closing");
}

static void on_conn_timer(uv_timer_t *t);

/* Arms the connection's timer for its next deadline. */
static void conn_timer_arm(struct conn *c)
{
    if (c->is_closing)
        return;
    const struct rpc_server_options *o = &c->s->opt;
    uint64_t at;
    if (c->is_lingering)
        at = c->linger_until_ms;
    else if (!c->has_settings)
        at = c->started_ms + o->handshake_timeout_ms;
    else if (c->is_ping_outstanding)
        at = c->ping_sent_ms + o->keepalive_timeout_ms;
    else
        at = c->last_recv_ms + o->keepalive_interval_ms;
    uint64_t now = uv_now(c->s->loop);
    uv_timer_start(&c->timer, on_conn_timer, at > now ? at - now : 0, 0);
}

static void on_conn_timer(uv_timer_t *t)
{
    struct conn *c = t->data;
    struct rpc_server *s = c->s;
    if (c->is_closing)
        return;
    uint64_t now = uv_now(s->loop);
    if (c->is_lingering) {
        if (now >= c->linger_until_ms) {
            conn_close(c, LOG_LEVEL_DEBUG, "linger over");
            return;
        }
    } else if (!c->has_settings) {
        if (now >= c->started_ms + s->opt.handshake_timeout_ms) {
            conn_close(c, LOG_LEVEL_INFO, "no HTTP/2 preface in time");
            return;
        }
    } else if (c->is_ping_outstanding) {
        if (now >= c->ping_sent_ms + s->opt.keepalive_timeout_ms) {
            s->stats.keepalive_timeouts++;
            conn_close(c, LOG_LEVEL_INFO, "keepalive ping not answered");
            return;
        }
    } else if (now >= c->last_recv_ms + s->opt.keepalive_interval_ms) {
        static const uint8_t opaque[8] = {'a', 's', 'p', 'e', 'n', 'k', 'a', 0};
        if (nghttp2_submit_ping(c->session, NGHTTP2_FLAG_NONE, opaque) == 0) {
            c->is_ping_outstanding = true;
            c->ping_sent_ms = now;
            conn_flush(c);
        }
    }
    conn_timer_arm(c);
}

/* Feeds received bytes to HTTP/2 and sends what that produced. */
static void conn_receive(struct conn *c, const uint8_t *data, size_t len)
{
    c->last_recv_ms = uv_now(c->s->loop);
    ssize_t n = nghttp2_session_mem_recv(c->session, data, len);
    if (n < 0) {
        c->s->stats.connection_errors++;
        conn_close(c, LOG_LEVEL_INFO, nghttp2_strerror((int)n));
        return;
    }
    conn_flush(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    (void)suggested;
    struct conn *c = h->data;
    *out = uv_buf_init((char *)c->s->read_buf, READ_BUF_BYTES);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
    struct conn *c = stream->data;
    if (c->is_closing || nread == 0)
        return;
    if (nread < 0) {
        conn_close(c, c->n_streams ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG,
                   nread == UV_EOF ? "closed by client" : "read failed");
        return;
    }
    conn_receive(c, (const uint8_t *)b->base, (size_t)nread);
}

static int conn_session_new(struct conn *c)
{
    struct rpc_server *s = c->s;
    if (nghttp2_session_server_new2(&c->session, s->callbacks, c, s->h2opt) != 0)
        return ASPEN_E_NOMEM;
    nghttp2_settings_entry iv[3] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s->opt.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, ASPEN_GRPC_STREAM_WINDOW_BYTES},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, ASPEN_GRPC_MAX_HEADER_LIST_BYTES},
    };
    if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, 3) != 0 ||
        nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)ASPEN_GRPC_CONN_WINDOW_BYTES) != 0) {
        nghttp2_session_del(c->session);
        c->session = NULL;
        return ASPEN_E_NOMEM;
    }
    return 0;
}

static void on_foreign_closed(uv_handle_t *h)
{
    struct rpc_server *s = h->data;
    mem_free(h);
    handle_closed(s);
}

/* Closes a handle the server owns but made no conn for. */
static void close_foreign(struct rpc_server *s, uv_tcp_t *tcp)
{
    tcp->data = s;
    s->live_handles++;
    uv_close((uv_handle_t *)tcp, on_foreign_closed);
}

/* Takes tcp (owned from now on) as a connection: session, timer, reading. */
static int conn_take(struct rpc_server *s, uv_tcp_t *tcp, const uint8_t *bytes, size_t n)
{
    int rc = 0;
    const char *why = NULL;
    if (!s->is_accepting) {
        rc = ASPEN_E_CLOSED;
        why = "server not accepting";
    } else if (s->n_conns >= s->opt.max_connections) {
        rc = ASPEN_E_LIMIT;
        why = "too many connections";
    }
    struct conn *c = rc ? NULL : mem_calloc(1, sizeof(*c));
    if (!rc && !c) {
        rc = ASPEN_E_NOMEM;
        why = "out of memory";
    }
    if (c) {
        c->s = s;
        if ((rc = conn_session_new(c)) != 0) {
            mem_free(c);
            c = NULL;
            why = "cannot create an HTTP/2 session";
        }
    }
    if (!c) {
        s->stats.connections_refused++;
        LOG_WARN("rpc", "connection refused", "reason=\"%s\" open=%zu limit=%" PRIu32, why,
                 s->n_conns, s->opt.max_connections);
        close_foreign(s, tcp);
        return rc;
    }
    c->tcp = tcp;
    tcp->data = c;
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 2;
    s->live_handles += 2;
    buf_init(&c->wbuf, WBUF_MAX_BYTES);
    c->started_ms = c->last_recv_ms = uv_now(s->loop);
    snprintf(c->peer, sizeof(c->peer), "unknown");
    struct sockaddr_storage peer;
    int plen = sizeof(peer);
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&peer, &plen) == 0)
        sockaddr_text(&peer, c->peer);
    uv_tcp_nodelay(tcp, 1);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    s->stats.connections_open++;
    s->stats.connections_total++;
    LOG_DEBUG("rpc", "connection taken", "peer=%s via=%s", c->peer, n ? "handover" : "listener");
    conn_timer_arm(c);
    if (n)
        conn_receive(c, bytes, n);
    else
        conn_flush(c); /* our SETTINGS go out at once */
    if (c->is_closing)
        return 0;
    rc = uv_read_start((uv_stream_t *)tcp, on_alloc, on_read);
    if (rc != 0)
        conn_close(c, LOG_LEVEL_INFO, "read failed");
    return 0;
}

int rpc_server_adopt(struct rpc_server *s, uv_tcp_t *tcp, const uint8_t *bytes, size_t n)
{
    return conn_take(s, tcp, bytes, n);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct rpc_server *s = server->data;
    if (status < 0) {
        LOG_WARN("rpc", "accept failed", "err=%s", aspen_err_name(status));
        return;
    }
    uv_tcp_t *tcp = mem_alloc(sizeof(*tcp));
    if (!tcp || uv_tcp_init(s->loop, tcp) != 0) {
        mem_free(tcp);
        s->stats.connections_refused++;
        /* Leave it in the backlog: the next accept may have memory. */
        LOG_WARN("rpc", "connection refused", "reason=\"out of memory\"");
        return;
    }
    int rc = uv_accept(server, (uv_stream_t *)tcp);
    if (rc != 0) {
        close_foreign(s, tcp);
        return;
    }
    (void)conn_take(s, tcp, NULL, 0);
}

/* ---------------------------------------------------------------------------------------
 * The server
 * ------------------------------------------------------------------------------------- */

static void finish(struct rpc_server *s)
{
    ASPEN_ASSERT(s->conns == NULL && s->pending == NULL && s->dirty == NULL);
    void (*cb)(void *) = s->on_closed;
    void *ctx = s->on_closed_ctx;
    /* Calls still held by handlers outlive the server: they forget it. */
    for (struct rpc_call *call = s->orphans; call; call = call->next)
        call->s = NULL;
    for (size_t i = 0; i < s->n_methods; i++)
        mem_free(s->methods[i]);
    nghttp2_session_callbacks_del(s->callbacks);
    nghttp2_option_del(s->h2opt);
    if (s->port)
        LOG_INFO("rpc", "server closed", "addr=%s", s->addr_text);
    mem_free(s);
    if (cb)
        cb(ctx);
}

static void handle_closed(struct rpc_server *s)
{
    ASPEN_ASSERT(s->live_handles > 0);
    if (--s->live_handles == 0 && s->is_closing)
        finish(s);
}

static void on_server_handle_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

static int resolve_options(const struct rpc_server_options *in, struct rpc_server_options *out)
{
    struct rpc_server_options o = in ? *in : (struct rpc_server_options){0};
    if (!o.max_connections)
        o.max_connections = ASPEN_GRPC_MAX_CONNECTIONS;
    if (!o.max_concurrent_streams)
        o.max_concurrent_streams = ASPEN_GRPC_MAX_CONCURRENT_STREAMS;
    if (!o.max_message_bytes)
        o.max_message_bytes = ASPEN_GRPC_MAX_MESSAGE_BYTES;
    if (!o.send_queue_bytes)
        o.send_queue_bytes = ASPEN_GRPC_CALL_SEND_QUEUE_BYTES;
    if (!o.keepalive_interval_ms)
        o.keepalive_interval_ms = ASPEN_GRPC_KEEPALIVE_INTERVAL_MS;
    if (!o.keepalive_timeout_ms)
        o.keepalive_timeout_ms = ASPEN_GRPC_KEEPALIVE_TIMEOUT_MS;
    if (!o.handshake_timeout_ms)
        o.handshake_timeout_ms = ASPEN_GRPC_HANDSHAKE_TIMEOUT_MS;
    if (o.max_connections > ASPEN_GRPC_MAX_CONNECTIONS ||
        o.max_concurrent_streams > ASPEN_GRPC_MAX_CONCURRENT_STREAMS ||
        o.max_message_bytes > ASPEN_GRPC_MAX_MESSAGE_BYTES ||
        o.send_queue_bytes > ASPEN_GRPC_CALL_SEND_QUEUE_BYTES)
        return ASPEN_E_INVALID;
    *out = o;
    return 0;
}

static int make_h2(struct rpc_server *s)
{
    if (nghttp2_session_callbacks_new(&s->callbacks) != 0)
        return ASPEN_E_NOMEM;
    nghttp2_session_callbacks *cb = s->callbacks;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    if (nghttp2_option_new(&s->h2opt) != 0)
        return ASPEN_E_NOMEM;
    /* Windows reopen as the server takes bytes (see the file comment). */
    nghttp2_option_set_no_auto_window_update(s->h2opt, 1);
    nghttp2_option_set_max_send_header_block_length(s->h2opt, 64 * 1024);
    return 0;
}

int rpc_server_open(uv_loop_t *loop, const struct rpc_server_options *opt, const char *host,
                    uint16_t port, struct rpc_server **out, char *err, size_t err_len)
{
    struct rpc_server_options resolved;
    if (resolve_options(opt, &resolved) != 0) {
        snprintf(err, err_len, "invalid options");
        return ASPEN_E_INVALID;
    }
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof(addr));
    if (host && uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) != 0) {
        snprintf(err, err_len, "invalid address '%s' (want a numeric IPv4 or IPv6 address)", host);
        return ASPEN_E_INVALID;
    }
    struct rpc_server *s = mem_calloc(1, sizeof(*s));
    if (!s || make_h2(s) != 0) {
        if (s) {
            nghttp2_session_callbacks_del(s->callbacks);
            nghttp2_option_del(s->h2opt);
        }
        mem_free(s);
        snprintf(err, err_len, "out of memory");
        return ASPEN_E_NOMEM;
    }
    s->loop = loop;
    s->opt = resolved;
    s->is_accepting = true;
    uv_timer_init(loop, &s->close_timer);
    uv_idle_init(loop, &s->idle);
    s->close_timer.data = s->idle.data = s;
    s->live_handles = 2;
    if (host) {
        int rc = uv_tcp_init(loop, &s->listener);
        if (rc == 0) {
            s->listener.data = s;
            s->has_listener = true;
            s->live_handles++;
            rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
        }
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&s->listener, LISTEN_BACKLOG, on_connection);
        struct sockaddr_storage bound;
        int blen = sizeof(bound);
        if (rc == 0)
            rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen);
        if (rc != 0) {
            snprintf(err, err_len, "cannot listen on %s port %u: %s", host, (unsigned)port,
                     uv_strerror(rc));
            /* The handles close on the loop, which frees s. */
            s->is_closing = true;
            if (s->has_listener)
                uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
            uv_close((uv_handle_t *)&s->close_timer, on_server_handle_closed);
            uv_close((uv_handle_t *)&s->idle, on_server_handle_closed);
            return rc;
        }
        s->is_listening = true;
        sockaddr_text(&bound, s->addr_text);
        s->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                              : ntohs(((struct sockaddr_in *)&bound)->sin_port);
        LOG_INFO("rpc", "listening", "addr=%s", s->addr_text);
    }
    *out = s;
    return 0;
}

uint16_t rpc_server_port(const struct rpc_server *s)
{
    return s->port;
}

int rpc_server_register(struct rpc_server *s, const char *path, const struct rpc_handler *h)
{
    size_t len = path ? strlen(path) : 0;
    /* "/" package.Service "/" Method: two slashes, neither part empty. */
    const char *second = len > 1 ? strchr(path + 1, '/') : NULL;
    if (!h || !h->on_call || !h->on_cancel || len > PATH_MAX_BYTES || path[0] != '/' || !second ||
        second == path + 1 || second[1] == '\0' || strchr(second + 1, '/'))
        return ASPEN_E_INVALID;
    bool is_streaming_request = h->kind == RPC_CLIENT_STREAM || h->kind == RPC_BIDI;
    if (h->kind > RPC_BIDI || (is_streaming_request && !h->on_message))
        return ASPEN_E_INVALID;
    if (method_find(s, slice_make(path, len)))
        return ASPEN_E_EXISTS;
    if (s->n_methods == ASPEN_GRPC_MAX_METHODS)
        return ASPEN_E_FULL;
    struct method *m = mem_calloc(1, sizeof(*m));
    if (!m)
        return ASPEN_E_NOMEM;
    memcpy(m->path, path, len + 1);
    m->path_len = len;
    m->h = *h;
    size_t at = 0;
    while (at < s->n_methods &&
           slice_cmp(slice_make(s->methods[at]->path, s->methods[at]->path_len),
                     slice_make(path, len)) < 0)
        at++;
    memmove(&s->methods[at + 1], &s->methods[at], (s->n_methods - at) * sizeof(s->methods[0]));
    s->methods[at] = m;
    s->n_methods++;
    return 0;
}

static void conn_goaway(struct conn *c)
{
    if (c->is_closing || c->is_goaway_sent)
        return;
    c->is_goaway_sent = true;
    nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(c->session), NGHTTP2_NO_ERROR,
                          NULL, 0);
    conn_mark_dirty(c); /* written (and, without streams, closed) from the idle handle */
}

void rpc_server_stop_accepting(struct rpc_server *s)
{
    if (!s->is_accepting)
        return;
    s->is_accepting = false;
    if (s->is_listening) {
        s->is_listening = false;
        uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
    }
    LOG_INFO("rpc", "stopped accepting", "addr=%s open=%zu", s->port ? s->addr_text : "-",
             s->n_conns);
    for (struct conn *c = s->conns; c; c = c->next)
        conn_goaway(c);
}

void rpc_server_close(struct rpc_server *s, void (*on_closed)(void *ctx), void *ctx)
{
    ASPEN_ASSERT(!s->is_closing);
    rpc_server_stop_accepting(s);
    s->is_closing = true;
    s->on_closed = on_closed;
    s->on_closed_ctx = ctx;
    uint64_t now = uv_now(s->loop);
    struct conn *c = s->conns;
    while (c) {
        struct conn *next = c->next;
        if (!c->is_closing) {
            /* End every call (handlers are told), then write the statuses and close. */
            for (struct rpc_call *call = c->calls; call; call = call->next)
                call_fail(call, GRPC_STATUS_UNAVAILABLE, "server shutting down");
            c->is_lingering = true;
            c->linger_until_ms = now + ASPEN_GRPC_CLOSE_LINGER_MS;
            conn_timer_arm(c);
            conn_flush(c);
            if (!c->is_closing && !c->is_writing)
                conn_close(c, LOG_LEVEL_DEBUG, "server closing");
        }
        c = next;
    }
    while (s->pending)
        call_unmark_pending(s->pending);
    while (s->dirty)
        conn_unmark_dirty(s->dirty);
    uv_idle_stop(&s->idle);
    uv_close((uv_handle_t *)&s->idle, on_server_handle_closed);
    uv_close((uv_handle_t *)&s->close_timer, on_server_handle_closed);
}

void rpc_server_stats(const struct rpc_server *s, struct rpc_server_stats *out)
{
    *out = s->stats;
}
