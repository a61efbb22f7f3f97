/*
 * grpc_echo_server: the gRPC server (src/rpc) with test handlers, for
 * tests/integration/grpc_test.py to drive with a real gRPC client (python3-grpcio).
 *
 * It serves on two ports of 127.0.0.1: the gRPC server's own listener, and an HTTP/1.1
 * server (src/node/http.h) whose on_h2_preface hands HTTP/2 connections to the gRPC
 * server (how the node shares its client port); plain HTTP requests there get "http ok".
 * It prints "grpc_port=N http_port=M" on stdout once both listen.
 *
 * Methods of /aspen.test.Echo/ (requests and responses are raw bytes):
 *   Unary         answers the request.
 *   ServerStream  request "COUNT,SIZE": COUNT messages of SIZE bytes (the first 8 bytes
 *                 of message i are i in decimal, zero-padded), sent as fast as the call's
 *                 queue takes them: on BUSY it waits for on_writable.
 *   ClientStream  counts messages and bytes; answers "n=N bytes=B" at half-close. A
 *                 message "hold" is pushed back (BUSY) once and resumed 50 ms later.
 *   Bidi          answers each message with itself; OK at half-close.
 *   Slow          unary, request "MS": answers the request after MS ms, from a timer.
 *   Never         unary; never answers (deadlines and cancellation end it).
 *   Fail          request "CODE:MESSAGE": finishes with that status and message.
 *   Metadata      answers the value of the request's "x-aspen-test" header.
 *   Stats         "key=value" lines: the server's counters, the handlers' (cancels per
 *                 method, calls held), the HTTP server's handovers and this process's RSS.
 *
 * SIGTERM: graceful stop — stop accepting (GOAWAY), wait up to 5 s for the calls in
 * flight, then close both servers and exit 0.
 *
 * usage: grpc_echo_server [--keepalive-ms N] [--handshake-ms N] [--send-queue-bytes N]
 *                         [--max-message-bytes N]
 */
#include "base/assert.h"
#include "base/constants.h"
#include "base/log.h"
#include "base/mem.h"
#include "node/http.h"
#include "rpc/server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { M_SERVER_STREAM, M_CLIENT_STREAM, M_BIDI, M_SLOW, M_NEVER, M_COUNT };
static const char *const method_names[M_COUNT] = {"ServerStream", "ClientStream", "Bidi", "Slow",
                                                  "Never"};

static uv_loop_t *loop;
static struct rpc_server *rpc;
static struct http_server *http;
static uint64_t cancels[M_COUNT];
static int64_t held_calls;   /* calls a handler of ours holds right now */
static uint64_t stream_busy; /* ServerStream sends answered BUSY */
static uv_signal_t sig_term, sig_int;
static uv_timer_t drain_timer;
static uint64_t drain_started;
static bool is_stopping;

static void hold(void)
{
    held_calls++;
}

static void unhold(void)
{
    held_calls--;
}

/* ---- Unary, Fail, Metadata ---- */

static void unary_on_call(void *ctx, struct rpc_call *call, struct slice req)
{
    (void)ctx;
    int rc = rpc_call_send(call, req);
    rpc_call_finish(call, rc == 0 ? GRPC_STATUS_OK : GRPC_STATUS_INTERNAL, NULL);
}

static void no_cancel(void *ctx, struct rpc_call *call)
{
    (void)ctx;
    rpc_call_release(call); /* never reached: these answer inside on_call */
}

static void fail_on_call(void *ctx, struct rpc_call *call, struct slice req)
{
    (void)ctx;
    char text[512];
    size_t n = req.len < sizeof(text) - 1 ? req.len : sizeof(text) - 1;
    memcpy(text, req.ptr, n);
    text[n] = '\0';
    char *colon = strchr(text, ':');
    int code = atoi(text);
    rpc_call_finish(call, code >= 0 && code < GRPC_STATUS_COUNT ? code : GRPC_STATUS_UNKNOWN,
                    colon ? colon + 1 : "");
}

static void metadata_on_call(void *ctx, struct rpc_call *call, struct slice req)
{
    (void)ctx;
    (void)req;
    struct slice v = {0};
    if (!rpc_call_metadata(call, "x-aspen-test", &v))
        v = slice_str("(none)");
    (void)rpc_call_send(call, v);
    rpc_call_finish(call, GRPC_STATUS_OK, NULL);
}

/* ---- ServerStream ---- */

struct stream_state {
    uint64_t count, size, next;
};

static void stream_pump(struct rpc_call *call)
{
    struct stream_state *st = rpc_call_user(call);
    uint8_t *msg = mem_alloc(st->size + 16);
    ASPEN_ASSERT(msg);
    while (st->next < st->count) {
        memset(msg, 'a' + (int)(st->next % 26), st->size);
        char head[16];
        snprintf(head, sizeof(head), "%08llu", (unsigned long long)st->next);
        memcpy(msg, head, st->size < 8 ? st->size : 8);
        int rc = rpc_call_send(call, slice_make(msg, st->size));
        if (rc == ASPEN_E_BUSY) {
            stream_busy++;
            mem_free(msg);
            return; /* on_writable brings us back */
        }
        if (rc != 0) {
            mem_free(msg);
            mem_free(st);
            unhold();
            rpc_call_finish(call, GRPC_STATUS_INTERNAL, "send failed");
            return;
        }
        st->next++;
    }
    mem_free(msg);
    mem_free(st);
    unhold();
    rpc_call_finish(call, GRPC_STATUS_OK, NULL);
}

static void stream_on_call(void *ctx, struct rpc_call *call, struct slice req)
{
    (void)ctx;
    char text[64];
    size_t n = req.len < sizeof(text) - 1 ? req.len : sizeof(text) - 1;
    memcpy(text, req.ptr, n);
    text[n] = '\0';
    unsigned long long count = 0, size = 0;
    if (sscanf(text, "%llu,%llu", &count, &size) != 2 || size > ASPEN_GRPC_MAX_SEND_MESSAGE_BYTES) {
        rpc_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, "want COUNT,SIZE");
        return;
    }
    struct stream_state *st = mem_calloc(1, sizeof(*st));
    ASPEN_ASSERT(st);
    st->count = count;
    st->size = size;
    rpc_call_set_user(call, st);
    hold();
    stream_pump(call);
}

static void stream_on_writable(void *ctx, struct rpc_call *call)
{
    (void)ctx;
    stream_pump(call);
}

static void stream_on_cancel(void *ctx, struct rpc_call *call)
{
    (void)ctx;
    cancels[M_SERVER_STREAM]++;
    mem_free(rpc_call_user(call));
    unhold();
    rpc_call_release(call);
}

/* ---- ClientStream ---- */

struct collect_state {
    uint64_t n, bytes;
    bool held_once;
    uv_timer_t resume; /* rpc_call_resume after a push-back */
    struct rpc_call *call;
    bool is_done; /* the call was given back; the state goes when the timer has closed */
};

static void collect_timer_closed(uv_handle_t *h)
{
    mem_free(h->data);
}

static void collect_done(struct collect_state *st)
{
    st->is_done = true;
    uv_close((uv_handle_t *)&st->resume, collect_timer_closed);
    unhold();
}

static void collect_on_resume_timer(uv_timer_t *t)
{
    struct collect_state *st = t->data;
    if (!st->is_done)
        rpc_call_resume(st->call);
}

static void collect_on_call(void *ctx, struct rpc_call *call, struct slice req)
{
    (void)ctx;
    (void)req;
    struct collect_state *st = mem_calloc(1, sizeof(*st));
    ASPEN_ASSERT(st);
    st->call = call;
    uv_timer_init(loop, &st->resume);
    st->resume.data = st;
    rpc_call_set_user(call, st);
    hold();
}

static int collect_on_message(void *ctx, struct rpc_call *call, struct slice msg)
{
    (void)ctx;
    struct collect_state *st = rpc_call_user(call);
    if (!st->held_once && slice_eq(msg, slice_str("hold"))) {
        st->held_once = true;
        uv_timer_start(&st->resume, collect_on_resume_timer, 50, 0);
        return ASPEN_E_BUSY;
    }
    st->n++;
    st->bytes += msg.len;
    return 0;
}

static void collect_on_half_close(void *ctx, struct rpc_call *call)
{
    (void)ctx;
    struct collect_state *st = rpc_call_user(call);
    char text[64];
    int n = snprintf(text, sizeof(text), "n=%llu bytes=%llu", (unsigned long long)st->n,
                     (unsigned long long)st->bytes);
    (void)rpc_call_send(call, slice_make(text, (size_t)n));
    collect_done(st);
    rpc_call_finish(call, GRPC_STATUS_OK, NULL);
}

static void collect_on_cancel(void *ctx, struct rpc_call *call)
{
    (void)ctx;
    cancels[M_CLIENT_STREAM]++;
    collect_done(rpc_call_user(call));
    rpc_call_release(call);
}

/* ---- Bidi ---- */

static void bidi_on_call(void *ctx, struct rpc_call *call, struct slice req)
{
    (void)ctx;
    (void)req;
    (void)call;
    hold();
}

static int bidi_on_message(void *ctx, struct rpc_call *call, struct slice msg)
{
    (void)ctx;
    int rc = rpc_call_send(call, msg);
    return rc == ASPEN_E_BUSY ? ASPEN_E_BUSY : 0; /* BUSY: the client's bytes wait too */
}

static void bidi_on_writable(void *ctx, struct rpc_call *call)
{
    (void)ctx;
    rpc_call_resume(call);
}

static void bidi_on_half_close(void *ctx, struct rpc_call *call)
{
    (void)ctx;
    unhold();
    rpc_call_finish(call, GRPC_STATUS_OK, NULL);
}

static void bidi_on_cancel(void *ctx, struct rpc_call *call)
{
    (void)ctx;
    cancels[M_BIDI]++;
    unhold();
    rpc_call_release(call);
}

/* ---- Slow ---- */

struct slow_state {
    uv_timer_t timer;
    struct rpc_call *call; /* NULL once given back */
    uint8_t req[64];
    size_t req_len;
};

static void slow_closed(uv_handle_t *h)
{
    mem_free(h->data);
}

static void slow_on_timer(uv_timer_t *t)
{
    struct slow_state *st = t->data;
    (void)rpc_call_send(st->call, slice_make(st->req, st->req_len));
    rpc_call_finish(st->call, GRPC_STATUS_OK, NULL);
    st->call = NULL;
    unhold();
    uv_close((uv_handle_t *)&st->timer, slow_closed);
}

static void slow_on_call(void *ctx, struct rpc_call *call, struct slice req)
{
    (void)ctx;
    struct slow_state *st = mem_calloc(1, sizeof(*st));
    ASPEN_ASSERT(st);
    st->call = call;
    st->req_len = req.len < sizeof(st->req) ? req.len : sizeof(st->req);
    memcpy(st->req, req.ptr, st->req_len);
    char text[16] = {0};
    memcpy(text, st->req, st->req_len < 15 ? st->req_len : 15);
    uv_timer_init(loop, &st->timer);
    st->timer.data = st;
    rpc_call_set_user(call, st);
    hold();
    uv_timer_start(&st->timer, slow_on_timer, (uint64_t)atoi(text), 0);
}

static void slow_on_cancel(void *ctx, struct rpc_call *call)
{
    (void)ctx;
    struct slow_state *st = rpc_call_user(call);
    cancels[M_SLOW]++;
    st->call = NULL;
    unhold();
    rpc_call_release(call);
    uv_close((uv_handle_t *)&st->timer, slow_closed);
}

/* ---- Never ---- */

static void never_on_call(void *ctx, struct rpc_call *call, struct slice req)
{
    (void)ctx;
    (void)req;
    (void)call;
    hold(); /* held until on_cancel */
}

static void never_on_cancel(void *ctx, struct rpc_call *call)
{
    (void)ctx;
    cancels[M_NEVER]++;
    unhold();
    rpc_call_release(call);
}

/* ---- Stats ---- */

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = atol(line + 6);
    }
    if (f)
        fclose(f);
    return kib;
}

static void stats_on_call(void *ctx, struct rpc_call *call, struct slice req)
{
    (void)ctx;
    (void)req;
    struct rpc_server_stats st;
    rpc_server_stats(rpc, &st);
    struct http_server_stats hs;
    http_server_stats(http, &hs);
    char text[4096];
    size_t n = 0;
#define PUT(...) n += (size_t)snprintf(text + n, sizeof(text) - n, __VA_ARGS__)
    PUT("connections_open=%llu\n", (unsigned long long)st.connections_open);
    PUT("connections_total=%llu\n", (unsigned long long)st.connections_total);
    PUT("connections_refused=%llu\n", (unsigned long long)st.connections_refused);
    PUT("connection_errors=%llu\n", (unsigned long long)st.connection_errors);
    PUT("keepalive_timeouts=%llu\n", (unsigned long long)st.keepalive_timeouts);
    PUT("streams_open=%llu\n", (unsigned long long)st.streams_open);
    PUT("streams_total=%llu\n", (unsigned long long)st.streams_total);
    PUT("calls_active=%llu\n", (unsigned long long)st.calls_active);
    PUT("calls_total=%llu\n", (unsigned long long)st.calls_total);
    PUT("calls_cancelled=%llu\n", (unsigned long long)st.calls_cancelled);
    for (int i = 0; i < GRPC_STATUS_COUNT; i++)
        PUT("status_%s=%llu\n", grpc_status_name(i), (unsigned long long)st.calls_by_status[i]);
    PUT("send_queued_bytes=%llu\n", (unsigned long long)st.send_queued_bytes);
    PUT("send_queued_bytes_max=%llu\n", (unsigned long long)st.send_queued_bytes_max);
    PUT("send_busy=%llu\n", (unsigned long long)st.send_busy);
    PUT("recv_held_bytes=%llu\n", (unsigned long long)st.recv_held_bytes);
    for (int i = 0; i < M_COUNT; i++)
        PUT("cancels_%s=%llu\n", method_names[i], (unsigned long long)cancels[i]);
    PUT("held_calls=%lld\n", (long long)held_calls);
    PUT("stream_busy=%llu\n", (unsigned long long)stream_busy);
    PUT("http_handed_over=%llu\n", (unsigned long long)hs.handed_over);
    PUT("http_requests=%llu\n", (unsigned long long)hs.requests);
    PUT("rss_kib=%ld\n", rss_kib());
    PUT("mem_outstanding=%lld\n", (long long)mem_outstanding());
#undef PUT
    (void)rpc_call_send(call, slice_make(text, n));
    rpc_call_finish(call, GRPC_STATUS_OK, NULL);
}

/* ---- HTTP side ---- */

static void on_http_request(void *ctx, struct http_exchange *x)
{
    (void)ctx;
    http_respond(x, 200, "text/plain", NULL, "http ok\n", 8);
}

static void on_h2(void *ctx, uv_tcp_t *tcp, const uint8_t *bytes, size_t n)
{
    (void)ctx;
    (void)rpc_server_adopt(rpc, tcp, bytes, n);
}

/* ---- Shutdown ---- */

static void on_closed(void *ctx)
{
    (void)ctx;
}

static void on_drain_tick(uv_timer_t *t)
{
    struct rpc_server_stats st;
    rpc_server_stats(rpc, &st);
    if (st.calls_active > 0 && uv_now(loop) - drain_started < 5000)
        return;
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
    uv_close((uv_handle_t *)&sig_term, NULL); /* repeated signals were ignored until now */
    uv_close((uv_handle_t *)&sig_int, NULL);
    fprintf(stderr, "grpc_echo_server: closing (calls active %llu)\n",
            (unsigned long long)st.calls_active);
    rpc_server_close(rpc, on_closed, NULL);
    http_server_close(http, on_closed, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    if (is_stopping)
        return;
    is_stopping = true;
    rpc_server_stop_accepting(rpc);
    http_server_stop_accepting(http);
    drain_started = uv_now(loop);
    uv_timer_init(loop, &drain_timer);
    uv_timer_start(&drain_timer, on_drain_tick, 20, 20);
}

int main(int argc, char **argv)
{
    struct rpc_server_options opt = {0};
    for (int i = 1; i + 1 < argc; i += 2) {
        uint32_t v = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        if (strcmp(argv[i], "--keepalive-ms") == 0) {
            opt.keepalive_interval_ms = v;
            opt.keepalive_timeout_ms = v;
        } else if (strcmp(argv[i], "--send-queue-bytes") == 0) {
            opt.send_queue_bytes = v;
        } else if (strcmp(argv[i], "--handshake-ms") == 0) {
            opt.handshake_timeout_ms = v;
        } else if (strcmp(argv[i], "--max-message-bytes") == 0) {
            opt.max_message_bytes = v;
        } else {
            fprintf(stderr, "grpc_echo_server: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    log_init_from_env();
    loop = uv_default_loop();
    char err[256];
    int rc = rpc_server_open(loop, &opt, "127.0.0.1", 0, &rpc, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "grpc_echo_server: %s\n", err);
        return 1;
    }
    static const struct {
        const char *path;
        struct rpc_handler h;
    } methods[] = {
        {"/aspen.test.Echo/Unary",
         {.kind = RPC_UNARY, .on_call = unary_on_call, .on_cancel = no_cancel}},
        {"/aspen.test.Echo/Fail",
         {.kind = RPC_UNARY, .on_call = fail_on_call, .on_cancel = no_cancel}},
        {"/aspen.test.Echo/Metadata",
         {.kind = RPC_UNARY, .on_call = metadata_on_call, .on_cancel = no_cancel}},
        {"/aspen.test.Echo/Stats",
         {.kind = RPC_UNARY, .on_call = stats_on_call, .on_cancel = no_cancel}},
        {"/aspen.test.Echo/ServerStream",
         {.kind = RPC_SERVER_STREAM,
          .on_call = stream_on_call,
          .on_writable = stream_on_writable,
          .on_cancel = stream_on_cancel}},
        {"/aspen.test.Echo/ClientStream",
         {.kind = RPC_CLIENT_STREAM,
          .on_call = collect_on_call,
          .on_message = collect_on_message,
          .on_half_close = collect_on_half_close,
          .on_cancel = collect_on_cancel}},
        {"/aspen.test.Echo/Bidi",
         {.kind = RPC_BIDI,
          .on_call = bidi_on_call,
          .on_message = bidi_on_message,
          .on_half_close = bidi_on_half_close,
          .on_writable = bidi_on_writable,
          .on_cancel = bidi_on_cancel}},
        {"/aspen.test.Echo/Slow",
         {.kind = RPC_UNARY, .on_call = slow_on_call, .on_cancel = slow_on_cancel}},
        {"/aspen.test.Echo/Never",
         {.kind = RPC_UNARY, .on_call = never_on_call, .on_cancel = never_on_cancel}},
    };
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        rc = rpc_server_register(rpc, methods[i].path, &methods[i].h);
        ASPEN_ASSERT(rc == 0);
    }
    ASPEN_ASSERT(rpc_server_register(rpc, "/aspen.test.Echo/Unary", &methods[0].h) ==
                 ASPEN_E_EXISTS);
    ASPEN_ASSERT(rpc_server_register(rpc, "no-slash", &methods[0].h) == ASPEN_E_INVALID);
    struct http_handlers hh = {.on_request = on_http_request};
    struct http_server_options hopt = {.on_h2_preface = on_h2};
    rc = http_server_open_opts(loop, "127.0.0.1", 0, &hh, &hopt, &http, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "grpc_echo_server: %s\n", err);
        return 1;
    }
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    printf("grpc_port=%u http_port=%u\n", (unsigned)rpc_server_port(rpc),
           (unsigned)http_server_port(http));
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    int close_rc = uv_loop_close(loop);
    int64_t leaked = mem_outstanding();
    fprintf(stderr, "grpc_echo_server: stopped (loop close %d, blocks outstanding %lld)\n",
            close_rc, (long long)leaked);
    return close_rc == 0 && leaked == 0 ? 0 : 3;
}
