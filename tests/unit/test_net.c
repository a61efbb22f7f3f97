/*
 * The peer transport (src/net): the pure pieces (backoff delays, frame reassembly, the
 * key set) alone, then the TLS-over-TCP transport with real sockets on 127.0.0.1 and
 * ephemeral ports, all endpoints on one libuv loop that the test drives. Every wait has a
 * deadline (run_until), so a broken transport fails a test instead of hanging it.
 *
 * Covered: frames both ways, 10,000 pipelined frames of 1 byte .. 1 MiB arriving in order
 * and intact; refusal of an untrusted client and of a server presenting another key than
 * the one dialed (with the logged reason); unknown ALPN refused and two protocols routed
 * apart; back-pressure (BUSY at the queue limit, on_writable after draining); reconnect
 * after the server restarts on the same port; garbage from a raw TCP client and an
 * oversized length prefix inside TLS closing only that connection; removing a key from
 * the registry closing its connections and refusing new ones; close releasing every
 * allocation and handle.
 */
#include "test.h"

#include "base/constants.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/rand.h"
#include "net/backoff.h"
#include "net/frame.h"
#include "net/keyset.h"
#include "net/tls_tcp.h"

#include <sodium.h>
#include <uv.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ALPN_TEST  "aspen/test/1"
#define ALPN_OTHER "aspen/other/1"
#define WAIT_MS    20000 /* generous: the machine is shared; a pass takes far less */

/* ---------------------------------------------------------------------------------------
 * Log capture
 * ------------------------------------------------------------------------------------- */

static char log_text[1 << 20];
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

static void log_begin(void)
{
    log_len = 0;
    log_text[0] = '\0';
    log_set_sink(capture, NULL);
    log_set_level(LOG_LEVEL_INFO);
}

static void log_end(void)
{
    log_set_sink(NULL, NULL);
}

/* True when one captured line contains every one of the (NULL-terminated) needles. */
static bool log_has_line(const char *a, const char *b, const char *c)
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
        if (strstr(tmp, a) && (!b || strstr(tmp, b)) && (!c || strstr(tmp, c)))
            return true;
        line += n + (end ? 1 : 0);
        if (!end)
            break;
    }
    return false;
}

/* ---------------------------------------------------------------------------------------
 * The loop
 * ------------------------------------------------------------------------------------- */

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
}

/* Every handle closed: uv_loop_close would return UV_EBUSY otherwise. */
static int loop_end(void)
{
    uv_run(&loop, UV_RUN_NOWAIT);
    return uv_loop_close(&loop);
}

/* ---------------------------------------------------------------------------------------
 * Deterministic frame contents: frame `seq` of stream `stream` has a size and bytes that
 * both sender and receiver compute, so the receiver checks every byte.
 * ------------------------------------------------------------------------------------- */

#define MAX_TEST_FRAME (1024 * 1024)

static uint8_t gen_buf[MAX_TEST_FRAME];

static size_t gen_frame(uint64_t stream, uint64_t seq, uint8_t *out)
{
    uint64_t s = stream * 0x9e3779b97f4a7c15ULL ^ seq;
    uint64_t r = splitmix64_next(&s);
    size_t len;
    if (seq == 0)
        len = 1;
    else if (seq == 1)
        len = MAX_TEST_FRAME;
    else if (r % 100 < 80)
        len = 1 + (size_t)(r >> 8) % 256;
    else if (r % 100 < 99)
        len = 257 + (size_t)(r >> 8) % (64 * 1024 - 257);
    else
        len = 64 * 1024 + (size_t)(r >> 8) % (MAX_TEST_FRAME - 64 * 1024 + 1);
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = splitmix64_next(&s);
        size_t n = len - i < 8 ? len - i : 8;
        memcpy(out + i, &v, n);
    }
    return len;
}

/* ---------------------------------------------------------------------------------------
 * Endpoints
 * ------------------------------------------------------------------------------------- */

struct node;

/* What one protocol's handlers on one node saw. */
struct rx {
    struct node *node;
    uint64_t frames, bytes;
    uint64_t bad;          /* frames that failed the content check */
    uint64_t stream;       /* != 0: frames must be gen_frame(stream, 0, 1, ...) in order */
    uint8_t tag;           /* != 0: every frame must start with this byte */
    uint64_t wrong_tag;    /* frames with another first byte */
    uint8_t last_peer[32]; /* sender of the last frame */
    uint32_t up, down, writable;
    int last_down;
    struct sender *sender; /* on_writable resumes it */
};

/* Sends gen_frame(stream, seq) for seq in [next, total) until BUSY. */
struct sender {
    struct node *from;
    const uint8_t *to;
    const char *alpn;
    uint64_t stream, next, total;
    uint64_t busy; /* BUSY answers */
    int error;     /* any other error */
};

struct node {
    struct net_transport t;
    struct net_identity id;
    struct rng rng;
    struct aspen_random rand;
    uint16_t port;
    bool is_open, closed;
    struct rx rx[3]; /* raft, test, other */
};

static void sender_pump(struct sender *s);

static void on_frame(void *ctx, const uint8_t peer_pk[32], struct slice frame)
{
    struct rx *rx = ctx;
    memcpy(rx->last_peer, peer_pk, 32);
    if (rx->stream) {
        size_t len = gen_frame(rx->stream, rx->frames, gen_buf);
        if (len != frame.len || memcmp(gen_buf, frame.ptr, len) != 0)
            rx->bad++;
    }
    if (rx->tag && (frame.len == 0 || frame.ptr[0] != rx->tag))
        rx->wrong_tag++;
    rx->frames++;
    rx->bytes += frame.len;
}

static void on_up(void *ctx, const uint8_t peer_pk[32])
{
    (void)peer_pk;
    ((struct rx *)ctx)->up++;
}

static void on_down(void *ctx, const uint8_t peer_pk[32], int reason)
{
    (void)peer_pk;
    struct rx *rx = ctx;
    rx->down++;
    rx->last_down = reason;
}

static void on_writable(void *ctx, const uint8_t peer_pk[32])
{
    (void)peer_pk;
    struct rx *rx = ctx;
    rx->writable++;
    if (rx->sender)
        sender_pump(rx->sender);
}

static void make_identity(struct net_identity *id, uint8_t who)
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    uint64_t s = test_seed() ^ who;
    for (size_t i = 0; i < sizeof(seed); i += 8) {
        uint64_t v = splitmix64_next(&s);
        memcpy(seed + i, &v, 8);
    }
    crypto_sign_seed_keypair(id->pk, id->sk, seed);
}

static const char *const alpns[3] = {NET_ALPN_RAFT, ALPN_TEST, ALPN_OTHER};

/* Opens node n with identity `who`, registering the first n_protos protocols, listening
 * on port (0: ephemeral). */
static int node_open(struct node *n, uint8_t who, const struct net_options *opt, int n_protos,
                     uint16_t port)
{
    memset(n, 0, sizeof(*n));
    make_identity(&n->id, who);
    rng_seed(&n->rng, test_seed() + who);
    n->rand = rng_as_random(&n->rng);
    int rc = net_tls_tcp_open(&loop, &n->id, opt, &n->rand, &n->t);
    if (rc != 0)
        return rc;
    n->is_open = true;
    for (int i = 0; i < n_protos; i++) {
        n->rx[i].node = n;
        struct net_handlers h = {.ctx = &n->rx[i],
                                 .on_frame = on_frame,
                                 .on_peer_up = on_up,
                                 .on_peer_down = on_down,
                                 .on_writable = on_writable};
        rc = net_register_protocol(&n->t, alpns[i], &h);
        if (rc != 0)
            return rc;
    }
    return net_listen(&n->t, "127.0.0.1", port, &n->port);
}

static void on_closed(void *arg)
{
    ((struct node *)arg)->closed = true;
}

static bool node_close(struct node *n)
{
    if (!n->is_open)
        return true;
    n->is_open = false;
    net_close(&n->t, on_closed, n);
    return run_until(flag_set, &n->closed, WAIT_MS);
}

/* a trusts b and knows its address. */
static int introduce(struct node *a, const struct node *b)
{
    int rc = net_trust_add(&a->t, b->id.pk);
    return rc ? rc : net_peer_set_addr(&a->t, b->id.pk, "127.0.0.1", b->port);
}

static void sender_pump(struct sender *s)
{
    while (s->next < s->total && s->error == 0) {
        size_t len = gen_frame(s->stream, s->next, gen_buf);
        int rc = net_send(&s->from->t, s->to, s->alpn, slice_make(gen_buf, len));
        if (rc == ASPEN_E_BUSY) {
            s->busy++;
            return;
        }
        if (rc != 0) {
            s->error = rc;
            return;
        }
        s->next++;
    }
}

static bool rx_count_at_least(struct rx *rx, uint64_t n)
{
    return rx->frames >= n;
}

struct want_frames {
    struct rx *rx;
    uint64_t n;
};

static bool want_frames_met(void *ctx)
{
    struct want_frames *w = ctx;
    return rx_count_at_least(w->rx, w->n);
}

static bool wait_frames(struct rx *rx, uint64_t n)
{
    struct want_frames w = {rx, n};
    return run_until(want_frames_met, &w, WAIT_MS);
}

static bool down_seen(void *ctx)
{
    return ((struct rx *)ctx)->down > 0;
}

/* Sends a short tagged frame (tag byte + index). */
static int send_tagged(struct node *from, const struct node *to, const char *alpn, uint8_t tag,
                       uint32_t i)
{
    uint8_t f[5] = {tag};
    be32_store(f + 1, i);
    return net_send(&from->t, to->id.pk, alpn, slice_make(f, sizeof(f)));
}

/* ---------------------------------------------------------------------------------------
 * Pure pieces
 * ------------------------------------------------------------------------------------- */

static void test_backoff_bounds(void)
{
    struct rng r;
    rng_seed(&r, test_seed());
    struct aspen_random rand = rng_as_random(&r);
    const uint32_t min = ASPEN_PEER_BACKOFF_MIN_MS, max = ASPEN_PEER_BACKOFF_MAX_MS;
    double prev_mean = 0;
    uint32_t prev_ceiling = 0;
    for (uint32_t attempt = 0; attempt < 40; attempt++) {
        uint32_t ceiling = net_backoff_ceiling_ms(attempt, min, max);
        CHECK(ceiling >= min && ceiling <= max);
        CHECK(ceiling >= prev_ceiling);
        if (attempt < 8) /* 50 << 8 = 12800 < 16000: still doubling */
            CHECK_EQ(ceiling, min << attempt);
        else if (attempt > 9)
            CHECK_EQ(ceiling, max);
        double sum = 0;
        for (int i = 0; i < 2000; i++) {
            uint32_t d = net_backoff_delay_ms(attempt, min, max, &rand);
            CHECK(d >= min && d <= ceiling);
            sum += d;
        }
        double mean = sum / 2000;
        /* Full jitter: the mean sits near the middle of [min, ceiling] and grows with the
         * ceiling until the cap. */
        CHECK(mean > min + (ceiling - min) * 0.4 - 1 && mean < min + (ceiling - min) * 0.6 + 1);
        if (attempt > 0 && attempt <= 9)
            CHECK(mean > prev_mean);
        prev_mean = mean;
        prev_ceiling = ceiling;
    }
    /* Deterministic: the same seed gives the same delays. */
    struct rng r1, r2;
    rng_seed(&r1, 42);
    rng_seed(&r2, 42);
    struct aspen_random a1 = rng_as_random(&r1), a2 = rng_as_random(&r2);
    for (uint32_t i = 0; i < 100; i++)
        CHECK_EQ(net_backoff_delay_ms(i % 12, min, max, &a1),
                 net_backoff_delay_ms(i % 12, min, max, &a2));
    /* Degenerate range and huge attempts. */
    CHECK_EQ(net_backoff_delay_ms(5, 7, 7, &rand), 7);
    CHECK_EQ(net_backoff_ceiling_ms(UINT32_MAX, 1, UINT32_MAX), UINT32_MAX);
    CHECK_EQ(net_backoff_ceiling_ms(31, 1, UINT32_MAX), 1u << 31);
}

struct collected {
    uint8_t data[4096];
    size_t len;
    size_t frames;
    size_t lens[64];
    int stop_after; /* > 0: the callback returns 7 after this many frames */
};

static int collect(void *ctx, struct slice f)
{
    struct collected *c = ctx;
    if (f.len) /* an empty frame may come as a NULL slice */
        memcpy(c->data + c->len, f.ptr, f.len);
    c->len += f.len;
    c->lens[c->frames++] = f.len;
    return c->stop_after > 0 && (int)c->frames == c->stop_after ? 7 : 0;
}

static void test_frame_reader(void)
{
    /* Stream: frames of 0, 1, 300 and 5 bytes. */
    uint8_t stream[4 * 4 + 306];
    size_t at = 0;
    size_t lens[4] = {0, 1, 300, 5};
    uint8_t payload[306];
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 7 + 1);
    size_t p = 0;
    for (int i = 0; i < 4; i++) {
        net_frame_header(stream + at, (uint32_t)lens[i]);
        at += 4;
        memcpy(stream + at, payload + p, lens[i]);
        at += lens[i];
        p += lens[i];
    }
    /* Every way of cutting the stream in two chunks, and byte by byte. */
    for (size_t cut = 0; cut <= at; cut++) {
        struct net_frame_reader r;
        net_frame_reader_init(&r, 1000, 64);
        struct collected c = {0};
        CHECK_OK(net_frame_reader_feed(&r, slice_make(stream, cut), collect, &c));
        CHECK_OK(net_frame_reader_feed(&r, slice_make(stream + cut, at - cut), collect, &c));
        CHECK_EQ(c.frames, 4);
        CHECK_EQ(c.len, 306);
        CHECK_MEM_EQ(c.data, payload, 306);
        CHECK_EQ(c.lens[2], 300);
        net_frame_reader_release(&r);
    }
    struct net_frame_reader r;
    net_frame_reader_init(&r, 1000, 64);
    struct collected c = {0};
    for (size_t i = 0; i < at; i++)
        CHECK_OK(net_frame_reader_feed(&r, slice_make(stream + i, 1), collect, &c));
    CHECK_EQ(c.frames, 4);
    CHECK_MEM_EQ(c.data, payload, 306);
    /* The 300-byte body was larger than keep_bytes and was freed; the last (5 bytes) is
     * kept for reuse. */
    CHECK(r.body_cap <= 64);
    net_frame_reader_release(&r);

    /* A callback's stop value comes back and the rest is not consumed. */
    net_frame_reader_init(&r, 1000, 64);
    struct collected s = {.stop_after = 2};
    CHECK_EQ(net_frame_reader_feed(&r, slice_make(stream, at), collect, &s), 7);
    CHECK_EQ(s.frames, 2);
    net_frame_reader_release(&r);

    /* A length above the limit breaks the reader, before any payload is buffered. */
    uint8_t big[8];
    net_frame_header(big, 1001);
    memset(big + 4, 0, 4);
    net_frame_reader_init(&r, 1000, 64);
    struct collected b = {0};
    CHECK_ERR(net_frame_reader_feed(&r, slice_make(big, 2), collect, &b), 0);
    CHECK_ERR(net_frame_reader_feed(&r, slice_make(big + 2, 6), collect, &b), ASPEN_E_TOO_LARGE);
    CHECK_EQ(r.bad_len, 1001);
    CHECK(r.body == NULL);
    CHECK_ERR(net_frame_reader_feed(&r, slice_make(stream, at), collect, &b), ASPEN_E_TOO_LARGE);
    CHECK_EQ(b.frames, 0);
    net_frame_reader_release(&r);
    /* Exactly the limit is fine. */
    net_frame_header(big, 4);
    net_frame_reader_init(&r, 4, 64);
    CHECK_OK(net_frame_reader_feed(&r, slice_make(big, 8), collect, &b));
    CHECK_EQ(b.frames, 1);
    net_frame_reader_release(&r);
}

static void test_keyset(void)
{
    uint8_t keys[5][32];
    for (int i = 0; i < 5; i++)
        memset(keys[i], 0x10 * (5 - i), 32);
    struct net_keyset s;
    net_keyset_init(&s, 3);
    CHECK(!net_keyset_contains(&s, keys[0]));
    CHECK_ERR(net_keyset_remove(&s, keys[0]), ASPEN_E_NOT_FOUND);
    CHECK_OK(net_keyset_add(&s, keys[2]));
    CHECK_OK(net_keyset_add(&s, keys[0]));
    CHECK_OK(net_keyset_add(&s, keys[0])); /* already present */
    CHECK_OK(net_keyset_add(&s, keys[4]));
    CHECK_EQ(s.n, 3);
    CHECK_ERR(net_keyset_add(&s, keys[1]), ASPEN_E_FULL);
    for (size_t i = 1; i < s.n; i++)
        CHECK(memcmp(s.keys[i - 1], s.keys[i], 32) < 0);
    CHECK(net_keyset_contains(&s, keys[4]) && !net_keyset_contains(&s, keys[3]));
    CHECK_OK(net_keyset_remove(&s, keys[2]));
    CHECK(!net_keyset_contains(&s, keys[2]));
    /* Replace: duplicates collapse; too many distinct keys leave the old set. */
    uint8_t dup[4][32];
    memcpy(dup[0], keys[1], 32);
    memcpy(dup[1], keys[3], 32);
    memcpy(dup[2], keys[1], 32);
    memcpy(dup[3], keys[3], 32);
    CHECK_OK(net_keyset_replace(&s, (const uint8_t(*)[32])dup, 4));
    CHECK_EQ(s.n, 2);
    CHECK(net_keyset_contains(&s, keys[1]) && net_keyset_contains(&s, keys[3]));
    CHECK(!net_keyset_contains(&s, keys[0]));
    CHECK_ERR(net_keyset_replace(&s, (const uint8_t(*)[32])keys, 5), ASPEN_E_FULL);
    CHECK_EQ(s.n, 2);
    CHECK_OK(net_keyset_replace(&s, NULL, 0));
    CHECK_EQ(s.n, 0);
    net_keyset_release(&s);
}

/* ---------------------------------------------------------------------------------------
 * Transport: frames both ways
 * ------------------------------------------------------------------------------------- */

struct exchange {
    struct sender *s[2];
    struct rx *rx[2];
};

static bool exchange_done(void *ctx)
{
    struct exchange *e = ctx;
    for (int i = 0; i < 2; i++) {
        if (e->s[i]->error || e->rx[i]->frames < e->s[i]->total)
            return e->s[i]->error != 0;
    }
    return true;
}

static void test_exchange_pipelined(void)
{
    loop_begin();
    log_begin();
    struct node a, b;
    CHECK_OK(node_open(&a, 1, NULL, 1, 0));
    CHECK_OK(node_open(&b, 2, NULL, 1, 0));
    CHECK_OK(introduce(&a, &b));
    CHECK_OK(introduce(&b, &a));
    uint64_t n = test_iters(10000);
    struct sender ab = {&a, b.id.pk, NET_ALPN_RAFT, 11, 0, n, 0, 0};
    struct sender ba = {&b, a.id.pk, NET_ALPN_RAFT, 22, 0, n, 0, 0};
    b.rx[0].stream = 11;
    a.rx[0].stream = 22;
    a.rx[0].sender = &ab;
    b.rx[0].sender = &ba;
    sender_pump(&ab);
    sender_pump(&ba);
    struct exchange e = {{&ab, &ba}, {&b.rx[0], &a.rx[0]}};
    bool ok = run_until(exchange_done, &e, 120000);
    CHECK_OK(ab.error);
    CHECK_OK(ba.error);
    CHECK_MSG(ok, "a->b %" PRIu64 "/%" PRIu64 " b->a %" PRIu64 "/%" PRIu64, b.rx[0].frames, n,
              a.rx[0].frames, n);
    CHECK_EQ(b.rx[0].frames, n);
    CHECK_EQ(a.rx[0].frames, n);
    CHECK_EQ(b.rx[0].bad, 0);
    CHECK_EQ(a.rx[0].bad, 0);
    CHECK_MEM_EQ(b.rx[0].last_peer, a.id.pk, 32);
    CHECK_MEM_EQ(a.rx[0].last_peer, b.id.pk, 32);
    CHECK_EQ(a.rx[0].up, 1);
    CHECK_EQ(a.rx[0].down, 0);
    /* The default queue (64 MiB) is smaller than the stream, so flow control worked. */
    CHECK(ab.busy > 0 && a.rx[0].writable > 0);
    struct net_peer_stats st;
    net_stats(&a.t, b.id.pk, &st);
    CHECK(st.is_trusted);
    CHECK_EQ(st.connections_up, 1);
    CHECK_EQ(st.queued_bytes, 0);
    CHECK_EQ(st.frames_sent, n);
    CHECK_EQ(st.frames_received, n);
    CHECK(log_has_line("connection established", "dir=out", NET_ALPN_RAFT));
    CHECK(node_close(&a) && node_close(&b));
    log_end();
    CHECK_EQ(loop_end(), 0);
}

/* ---------------------------------------------------------------------------------------
 * Trust: refused in both directions
 * ------------------------------------------------------------------------------------- */

static void test_untrusted_refused(void)
{
    loop_begin();
    log_begin();
    struct node a, b;
    CHECK_OK(node_open(&a, 1, NULL, 1, 0));
    CHECK_OK(node_open(&b, 2, NULL, 1, 0));
    CHECK_OK(introduce(&a, &b)); /* a trusts b, b does not trust a */
    CHECK_OK(send_tagged(&a, &b, NET_ALPN_RAFT, 'x', 1));
    CHECK(run_until(down_seen, &a.rx[0], WAIT_MS));
    run_for(50);
    CHECK_EQ(b.rx[0].frames, 0);
    CHECK_EQ(a.rx[0].up, 0);
    char a_hex[17];
    hash_to_hex(a.id.pk, 8, a_hex);
    CHECK_MSG(log_has_line("peer refused", a_hex, "reason=\"key not in trust registry\""),
              "log:\n%s", log_text);
    /* A send to a key we do not trust never leaves. */
    uint8_t f = 1;
    CHECK_ERR(net_send(&b.t, a.id.pk, NET_ALPN_RAFT, slice_make(&f, 1)), ASPEN_E_PERMISSION);

    /* A server presenting another key than the one dialed: c's address leads to b. */
    struct net_identity c;
    make_identity(&c, 3);
    CHECK_OK(net_trust_add(&a.t, c.pk));
    CHECK_OK(net_peer_set_addr(&a.t, c.pk, "127.0.0.1", b.port));
    /* b accepts a now: the refused frame, still queued at a, finally arrives. */
    CHECK_OK(net_trust_add(&b.t, a.id.pk));
    CHECK(wait_frames(&b.rx[0], 1));
    a.rx[0].down = 0;
    CHECK_OK(net_send(&a.t, c.pk, NET_ALPN_RAFT, slice_make(&f, 1)));
    CHECK(run_until(down_seen, &a.rx[0], WAIT_MS));
    CHECK_EQ(a.rx[0].last_down, ASPEN_E_PERMISSION);
    run_for(50);
    CHECK_EQ(b.rx[0].frames, 1);
    CHECK_MSG(log_has_line("peer refused", "dir=out", "server key differs from the key dialed"),
              "log:\n%s", log_text);
    CHECK(node_close(&a) && node_close(&b));
    log_end();
    CHECK_EQ(loop_end(), 0);
}

/* ---------------------------------------------------------------------------------------
 * Protocols: unknown ALPN refused, two protocols routed apart
 * ------------------------------------------------------------------------------------- */

struct two_rx {
    struct rx *a, *b;
    uint64_t n;
};

static bool two_rx_done(void *ctx)
{
    struct two_rx *t = ctx;
    return t->a->frames >= t->n && t->b->frames >= t->n;
}

static void test_protocols(void)
{
    loop_begin();
    log_begin();
    struct node a, b;
    CHECK_OK(node_open(&a, 1, NULL, 3, 0)); /* raft, test, other */
    CHECK_OK(node_open(&b, 2, NULL, 2, 0)); /* raft, test */
    CHECK_OK(introduce(&a, &b));
    CHECK_OK(introduce(&b, &a));
    /* b does not speak "other": refused at the handshake. */
    CHECK_OK(send_tagged(&a, &b, ALPN_OTHER, 'o', 0));
    CHECK(run_until(down_seen, &a.rx[2], WAIT_MS));
    CHECK_EQ(a.rx[2].last_down, ASPEN_E_UNSUPPORTED);
    CHECK_MSG(log_has_line("connection dropped", "dir=in", "err=ASPEN_E_UNSUPPORTED"), "log:\n%s",
              log_text);
    /* Sending on a protocol we did not register ourselves is refused locally. */
    CHECK_ERR(send_tagged(&b, &a, ALPN_OTHER, 'o', 0), ASPEN_E_NOT_FOUND);

    b.rx[0].tag = 'r';
    b.rx[1].tag = 't';
    const uint32_t n = 200;
    for (uint32_t i = 0; i < n; i++) {
        CHECK_OK(send_tagged(&a, &b, NET_ALPN_RAFT, 'r', i));
        CHECK_OK(send_tagged(&a, &b, ALPN_TEST, 't', i));
    }
    struct two_rx w = {&b.rx[0], &b.rx[1], n};
    CHECK(run_until(two_rx_done, &w, WAIT_MS));
    run_for(20);
    CHECK_EQ(b.rx[0].frames, n);
    CHECK_EQ(b.rx[1].frames, n);
    CHECK_EQ(b.rx[0].wrong_tag, 0);
    CHECK_EQ(b.rx[1].wrong_tag, 0);
    CHECK_EQ(b.rx[2].frames, 0);
    struct net_peer_stats st;
    net_stats(&a.t, b.id.pk, &st);
    CHECK_EQ(st.connections_up, 2); /* one per protocol */
    CHECK(node_close(&a) && node_close(&b));
    log_end();
    CHECK_EQ(loop_end(), 0);
}

/* ---------------------------------------------------------------------------------------
 * Back-pressure and reconnect
 * ------------------------------------------------------------------------------------- */

/* A port that was free a moment ago (bound, read, closed). */
static int reserve_port(uint16_t *port)
{
    uv_tcp_t t;
    uv_tcp_init(&loop, &t);
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    int rc = uv_tcp_bind(&t, (const struct sockaddr *)&addr, 0);
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    if (rc == 0)
        rc = uv_tcp_getsockname(&t, (struct sockaddr *)&bound, &len);
    if (rc == 0)
        *port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return rc;
}

static bool writable_seen(void *ctx)
{
    return ((struct rx *)ctx)->writable > 0;
}

static void test_backpressure(void)
{
    loop_begin();
    log_begin();
    const uint64_t limit = 64 * 1024;
    struct net_options opt = {
        .send_queue_bytes = limit, .backoff_min_ms = 10, .backoff_max_ms = 40};
    struct node a, b;
    CHECK_OK(node_open(&a, 1, &opt, 1, 0));
    uint16_t port = 0;
    CHECK_OK(reserve_port(&port));
    /* b's key, at an address where nothing listens yet. */
    make_identity(&b.id, 2);
    CHECK_OK(net_trust_add(&a.t, b.id.pk));
    CHECK_OK(net_peer_set_addr(&a.t, b.id.pk, "127.0.0.1", port));
    uint8_t frame[1024];
    memset(frame, 'q', sizeof(frame));
    uint64_t accepted = 0;
    int rc = 0;
    while ((rc = net_send(&a.t, b.id.pk, NET_ALPN_RAFT, slice_make(frame, sizeof(frame)))) == 0)
        accepted++;
    CHECK_ERR(rc, ASPEN_E_BUSY);
    CHECK_EQ(accepted, limit / (sizeof(frame) + 4));
    struct net_peer_stats st;
    net_stats(&a.t, b.id.pk, &st);
    CHECK_EQ(st.queued_bytes, accepted * (sizeof(frame) + 4));
    CHECK_EQ(st.connections_up, 0);
    /* Still refused while nothing drains; the attempts fail and back off. */
    run_for(100);
    CHECK_ERR(net_send(&a.t, b.id.pk, NET_ALPN_RAFT, slice_make(frame, sizeof(frame))),
              ASPEN_E_BUSY);
    CHECK(a.rx[0].down > 0);
    CHECK_EQ(a.rx[0].writable, 0);
    /* b comes up on that port: the queue drains, on_writable fires once. */
    struct node b2;
    CHECK_OK(node_open(&b2, 2, NULL, 1, port));
    CHECK_OK(net_trust_add(&b2.t, a.id.pk));
    CHECK(run_until(writable_seen, &a.rx[0], WAIT_MS));
    CHECK(wait_frames(&b2.rx[0], accepted));
    run_for(20);
    CHECK_EQ(a.rx[0].writable, 1);
    CHECK_EQ(b2.rx[0].frames, accepted);
    net_stats(&a.t, b.id.pk, &st);
    CHECK_EQ(st.queued_bytes, 0);
    CHECK(st.reconnects > 0);
    CHECK(node_close(&a) && node_close(&b2));
    log_end();
    CHECK_EQ(loop_end(), 0);
}

static void test_reconnect(void)
{
    loop_begin();
    log_begin();
    struct net_options opt = {.backoff_min_ms = 10, .backoff_max_ms = 80};
    struct node a, b;
    CHECK_OK(node_open(&a, 1, &opt, 1, 0));
    CHECK_OK(node_open(&b, 2, NULL, 1, 0));
    CHECK_OK(introduce(&a, &b));
    CHECK_OK(introduce(&b, &a));
    b.rx[0].tag = 'r';
    for (uint32_t i = 0; i < 10; i++)
        CHECK_OK(send_tagged(&a, &b, NET_ALPN_RAFT, 'r', i));
    CHECK(wait_frames(&b.rx[0], 10));
    uint16_t port = b.port;
    /* The server goes away; the client notices and backs off. */
    CHECK(node_close(&b));
    CHECK(run_until(down_seen, &a.rx[0], WAIT_MS));
    for (uint32_t i = 0; i < 10; i++)
        CHECK_OK(send_tagged(&a, &b, NET_ALPN_RAFT, 'r', 100 + i));
    run_for(100); /* several failed attempts */
    struct net_peer_stats st;
    net_stats(&a.t, b.id.pk, &st);
    CHECK_EQ(st.queued_bytes, 10 * (5 + 4));
    CHECK_EQ(st.connections_up, 0);
    /* The same key comes back on the same port: the queued frames arrive. */
    struct node b2;
    CHECK_OK(node_open(&b2, 2, NULL, 1, port));
    CHECK_OK(introduce(&b2, &a));
    b2.rx[0].tag = 'r';
    CHECK(wait_frames(&b2.rx[0], 10));
    for (uint32_t i = 0; i < 10; i++)
        CHECK_OK(send_tagged(&a, &b2, NET_ALPN_RAFT, 'r', 200 + i));
    CHECK(wait_frames(&b2.rx[0], 20));
    CHECK_EQ(b2.rx[0].wrong_tag, 0);
    net_stats(&a.t, b.id.pk, &st);
    CHECK(st.reconnects > 0);
    CHECK_EQ(st.connections_up, 1);
    CHECK_EQ(a.rx[0].up, 2);
    CHECK(node_close(&a) && node_close(&b2));
    log_end();
    CHECK_EQ(loop_end(), 0);
}

/* ---------------------------------------------------------------------------------------
 * Malformed input
 * ------------------------------------------------------------------------------------- */

struct raw_client {
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wr;
    bool is_connected, is_eof, is_closed;
    int connect_status;
    uint8_t rbuf[4096];
};

static void raw_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    (void)s;
    struct raw_client *c = h->data;
    *b = uv_buf_init((char *)c->rbuf, sizeof(c->rbuf));
}

static void raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    struct raw_client *c = s->data;
    if (n < 0)
        c->is_eof = true;
}

static void raw_written(uv_write_t *w, int status)
{
    (void)w;
    (void)status;
}

static uint8_t garbage[8192];

static void raw_connected(uv_connect_t *req, int status)
{
    struct raw_client *c = req->data;
    c->connect_status = status;
    c->is_connected = true;
    if (status < 0)
        return;
    uv_read_start((uv_stream_t *)&c->tcp, raw_alloc, raw_read);
    uv_buf_t b = uv_buf_init((char *)garbage, sizeof(garbage));
    uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, raw_written);
}

static bool raw_eof(void *ctx)
{
    return ((struct raw_client *)ctx)->is_eof;
}

static void raw_closed(uv_handle_t *h)
{
    ((struct raw_client *)h->data)->is_closed = true;
}

static void test_malformed_input(void)
{
    loop_begin();
    log_begin();
    struct net_options small = {
        .max_frame_bytes = 1024, .backoff_min_ms = 10, .backoff_max_ms = 40};
    struct node a, b, c;
    CHECK_OK(node_open(&b, 2, &small, 1, 0));
    CHECK_OK(node_open(&a, 1, NULL, 1, 0));
    CHECK_OK(node_open(&c, 3, NULL, 1, 0));
    CHECK_OK(introduce(&a, &b));
    CHECK_OK(introduce(&c, &b));
    CHECK_OK(net_trust_add(&b.t, a.id.pk));
    CHECK_OK(net_trust_add(&b.t, c.id.pk));

    /* Garbage from a raw TCP client: b drops that connection. */
    struct rng r;
    rng_seed(&r, test_seed());
    rng_fill(&r, garbage, sizeof(garbage));
    struct raw_client raw = {0};
    uv_tcp_init(&loop, &raw.tcp);
    raw.tcp.data = raw.conn.data = &raw;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", b.port, &addr);
    CHECK_OK(uv_tcp_connect(&raw.conn, &raw.tcp, (const struct sockaddr *)&addr, raw_connected));
    bool eof = run_until(raw_eof, &raw, WAIT_MS);
    uv_close((uv_handle_t *)&raw.tcp, raw_closed);
    CHECK(run_until(flag_set, &raw.is_closed, WAIT_MS));
    CHECK_EQ(raw.connect_status, 0);
    CHECK(eof);
    CHECK_MSG(log_has_line("connection dropped", "dir=in", "peer=unknown"), "log:\n%s", log_text);

    /* A TLS client announcing a frame above b's limit: that connection closes... */
    uint8_t big[2000];
    memset(big, 'r', sizeof(big));
    b.rx[0].tag = 'r';
    CHECK_OK(send_tagged(&a, &b, NET_ALPN_RAFT, 'r', 0));
    CHECK_OK(net_send(&a.t, b.id.pk, NET_ALPN_RAFT, slice_make(big, sizeof(big))));
    CHECK(run_until(down_seen, &a.rx[0], WAIT_MS));
    CHECK_MSG(log_has_line("connection dropped", "frame of 2000 bytes exceeds the limit of 1024",
                           "err=ASPEN_E_TOO_LARGE"),
              "log:\n%s", log_text);
    CHECK_EQ(b.rx[0].frames, 1);
    /* ...and b keeps serving: c's frames arrive, and a's after it reconnects. */
    for (uint32_t i = 0; i < 5; i++)
        CHECK_OK(send_tagged(&c, &b, NET_ALPN_RAFT, 'r', i));
    CHECK(wait_frames(&b.rx[0], 6));
    CHECK_MEM_EQ(b.rx[0].last_peer, c.id.pk, 32);
    CHECK_OK(send_tagged(&a, &b, NET_ALPN_RAFT, 'r', 1));
    CHECK(wait_frames(&b.rx[0], 7));
    CHECK_MEM_EQ(b.rx[0].last_peer, a.id.pk, 32);
    CHECK_EQ(b.rx[0].wrong_tag, 0);
    /* A frame above our own limit is refused at send. */
    CHECK_ERR(net_send(&b.t, a.id.pk, NET_ALPN_RAFT, slice_make(big, sizeof(big))),
              ASPEN_E_TOO_LARGE);
    CHECK(node_close(&a) && node_close(&b) && node_close(&c));
    log_end();
    CHECK_EQ(loop_end(), 0);
}

/* ---------------------------------------------------------------------------------------
 * Trust registry updates
 * ------------------------------------------------------------------------------------- */

static void test_trust_removal(void)
{
    loop_begin();
    log_begin();
    struct net_options opt = {.backoff_min_ms = 10, .backoff_max_ms = 40};
    struct node a, b;
    CHECK_OK(node_open(&a, 1, &opt, 1, 0));
    CHECK_OK(node_open(&b, 2, &opt, 1, 0));
    CHECK_OK(introduce(&a, &b));
    CHECK_OK(introduce(&b, &a));
    CHECK_OK(send_tagged(&a, &b, NET_ALPN_RAFT, 'r', 0));
    CHECK_OK(send_tagged(&b, &a, NET_ALPN_RAFT, 'r', 0));
    CHECK(wait_frames(&b.rx[0], 1) && wait_frames(&a.rx[0], 1));
    struct net_peer_stats st;
    net_stats(&b.t, a.id.pk, &st);
    CHECK_EQ(st.connections_up, 1);

    /* b drops a: both connections between them close at once. */
    uint8_t keep[1][32];
    memset(keep[0], 0x77, 32);
    CHECK_OK(net_trust_set(&b.t, (const uint8_t(*)[32])keep, 1));
    net_stats(&b.t, a.id.pk, &st);
    CHECK(!st.is_trusted);
    CHECK_EQ(st.connections_up, 0);
    CHECK_EQ(b.rx[0].down, 0); /* the caller removed the key: no down report for it */
    CHECK(log_has_line("peer refused", "reason=\"key removed from trust registry\"", "dir=in"));
    CHECK(log_has_line("peer refused", "reason=\"key removed from trust registry\"", "dir=out"));
    CHECK(run_until(down_seen, &a.rx[0], WAIT_MS)); /* a sees its connection to b lost */
    CHECK_ERR(send_tagged(&b, &a, NET_ALPN_RAFT, 'r', 1), ASPEN_E_PERMISSION);

    /* a keeps trying: every new connection is refused, nothing is delivered. */
    log_len = 0;
    log_text[0] = '\0';
    CHECK_OK(send_tagged(&a, &b, NET_ALPN_RAFT, 'r', 1));
    a.rx[0].down = 0;
    CHECK(run_until(down_seen, &a.rx[0], WAIT_MS));
    run_for(50);
    CHECK_EQ(b.rx[0].frames, 1);
    CHECK(log_has_line("peer refused", "reason=\"key not in trust registry\"", "dir=in"));
    /* Trusted again: the queued frame goes through. */
    CHECK_OK(net_trust_add(&b.t, a.id.pk));
    CHECK(wait_frames(&b.rx[0], 2));
    CHECK(node_close(&a) && node_close(&b));
    log_end();
    CHECK_EQ(loop_end(), 0);
}

/* ---------------------------------------------------------------------------------------
 * Close
 * ------------------------------------------------------------------------------------- */

static void test_close_releases_everything(void)
{
    loop_begin();
    log_begin();
    int64_t before = mem_outstanding();
    struct net_options opt = {.backoff_min_ms = 10, .backoff_max_ms = 40};
    struct node a, b;
    CHECK_OK(node_open(&a, 1, &opt, 2, 0));
    CHECK_OK(node_open(&b, 2, &opt, 2, 0));
    CHECK_OK(introduce(&a, &b));
    CHECK_OK(introduce(&b, &a));
    /* Traffic in flight both ways on two protocols, large frames partly written, and a
     * queue toward an unreachable peer (in backoff). */
    struct net_identity ghost;
    make_identity(&ghost, 7);
    uint16_t port = 0;
    CHECK_OK(reserve_port(&port));
    CHECK_OK(net_trust_add(&a.t, ghost.pk));
    CHECK_OK(net_peer_set_addr(&a.t, ghost.pk, "127.0.0.1", port));
    uint8_t f = 1;
    CHECK_OK(net_send(&a.t, ghost.pk, NET_ALPN_RAFT, slice_make(&f, 1)));
    struct sender ab = {&a, b.id.pk, NET_ALPN_RAFT, 5, 0, 40, 0, 0};
    struct sender ba = {&b, a.id.pk, ALPN_TEST, 6, 0, 40, 0, 0};
    sender_pump(&ab);
    sender_pump(&ba);
    CHECK(wait_frames(&b.rx[0], 2));
    CHECK(node_close(&a) && node_close(&b));
    CHECK_EQ(mem_outstanding(), before);
    log_end();
    CHECK_EQ(loop_end(), 0);
    /* Closing right after open, with nothing done, also completes from the loop. */
    loop_begin();
    struct node c;
    CHECK_OK(node_open(&c, 3, NULL, 0, 0));
    CHECK(node_close(&c));
    CHECK_EQ(mem_outstanding(), before);
    CHECK_EQ(loop_end(), 0);
}

static void test_open_rejects_bad_input(void)
{
    loop_begin();
    log_begin();
    struct net_identity id;
    make_identity(&id, 1);
    struct rng r;
    rng_seed(&r, 1);
    struct aspen_random rand = rng_as_random(&r);
    struct net_transport t;
    struct net_identity bad = id;
    bad.sk[40] ^= 1; /* public half of sk differs from pk */
    CHECK_ERR(net_tls_tcp_open(&loop, &bad, NULL, &rand, &t), ASPEN_E_INVALID);
    struct net_options o = {.backoff_min_ms = 100, .backoff_max_ms = 10};
    CHECK_ERR(net_tls_tcp_open(&loop, &id, &o, &rand, &t), ASPEN_E_INVALID);
    o = (struct net_options){.max_frame_bytes = ASPEN_PEER_MAX_FRAME_BYTES + 1};
    CHECK_ERR(net_tls_tcp_open(&loop, &id, &o, &rand, &t), ASPEN_E_INVALID);
    CHECK_OK(net_tls_tcp_open(&loop, &id, NULL, &rand, &t));
    struct net_handlers h = {.on_frame = on_frame};
    CHECK_OK(net_register_protocol(&t, NET_ALPN_RAFT, &h));
    CHECK_ERR(net_register_protocol(&t, NET_ALPN_RAFT, &h), ASPEN_E_EXISTS);
    CHECK_ERR(net_register_protocol(&t, "", &h), ASPEN_E_INVALID);
    CHECK_ERR(net_register_protocol(&t, "0123456789abcdef0123456789abcdefX", &h), ASPEN_E_INVALID);
    CHECK_ERR(net_listen(&t, "not-an-address", 0, NULL), ASPEN_E_INVALID);
    CHECK_ERR(net_peer_set_addr(&t, id.pk, "localhost", 1), ASPEN_E_INVALID);
    CHECK_OK(net_listen(&t, "127.0.0.1", 0, NULL));
    CHECK_ERR(net_listen(&t, "127.0.0.1", 0, NULL), ASPEN_E_EXISTS);
    uint8_t f = 0;
    CHECK_OK(net_trust_add(&t, id.pk));
    CHECK_ERR(net_send(&t, id.pk, NET_ALPN_RAFT, slice_make(&f, 1)), ASPEN_E_NOT_FOUND);
    bool closed = false;
    net_close(&t, set_flag, &closed);
    CHECK(!closed); /* never from inside close */
    CHECK(run_until(flag_set, &closed, WAIT_MS));
    log_end();
    CHECK_EQ(loop_end(), 0);
}

static const struct test_case tests[] = {
    TEST(test_backoff_bounds),
    TEST(test_frame_reader),
    TEST(test_keyset),
    TEST(test_open_rejects_bad_input),
    TEST(test_exchange_pipelined),
    TEST(test_untrusted_refused),
    TEST(test_protocols),
    TEST(test_backpressure),
    TEST(test_reconnect),
    TEST(test_malformed_input),
    TEST(test_trust_removal),
    TEST(test_close_releases_everything),
};

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    return TEST_MAIN("net", tests);
}
