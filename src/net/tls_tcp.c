/*
 * TLS-over-TCP peer transport (net/tls_tcp.h): the libuv shell around the pure pieces
 * (net/frame.h reassembly, net/keyset.h registry, net/backoff.h delays) and the TLS engine
 * over memory buffers (net/tls.h).
 *
 * Objects:
 *   - peer: a key we know of (an address to dial, counters); created by peer_set_addr or
 *     when an inbound connection authenticates (a send to an unknown key is NOT_FOUND); bounded by
 * ASPEN_MAX_PEERS.
 *   - chan: the outgoing side of (peer, protocol): the frame queue, the connection state
 *     (idle → connecting → ready, or backoff after a failure), the backoff timer. A chan
 *     outlives its connections, so queued frames survive a reconnect.
 *   - conn: one TCP connection with its TLS session and frame reader, outbound (serving a
 *     chan) or inbound (receive-only: we never send on a connection the peer dialed).
 *
 * Lifetimes follow libuv: a handle's memory may go only in its close callback, so a conn
 * is marked closing at once (no more callbacks to handlers, no more I/O) and freed when
 * both its handles have closed; chans and peers live until the transport is closed. Every
 * handle we initialize is counted in live_handles, and close finishes (frees everything,
 * calls done) when the count reaches zero, which always happens from the loop.
 *
 * The acceptance frame: once a server's handshake is done it sends one empty frame, and
 * a client's connection counts as up (on_peer_up, frames pumped) only when that arrives.
 * TLS 1.3 finishes the client's handshake before the server has seen the client's key,
 * so without it a refused client would report the peer up and send frames into a
 * connection about to be reset. It costs half a round trip per connection, not per frame.
 *
 * Send accounting: a chan's queued_bytes counts each frame (header included) from send
 * until the write that carries its last byte completes, or until its connection is lost
 * (then frames already encrypted are given up: they may or may not have arrived, and raft
 * resends). A frame partly encrypted when its connection dies is sent again from its
 * start on the next connection, so the peer never sees a torn frame.
 */
#include "net/tls_tcp.h"

#include "base/assert.h"
#include "base/constants.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "net/backoff.h"
#include "net/frame.h"
#include "net/keyset.h"
#include "net/tls.h"

#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* Read buffer shared by all connections: libuv hands it to exactly one read callback at a
 * time, and we finish with the bytes before returning. */
#define READ_BUF_BYTES (64 * 1024)
/* Plaintext of one TLS record, with room to spare over net_tls_feed's minimum. */
#define PLAIN_BUF_BYTES (16 * 1024 + 1024)
_Static_assert(PLAIN_BUF_BYTES >= NET_TLS_SCRATCH_MIN_BYTES, "net_tls_feed's scratch minimum");
/* Pending ciphertext of one connection: a write batch plus the record that crossed it,
 * plus handshake and alert messages produced meanwhile. */
#define TLS_OUT_MAX_BYTES (2 * ASPEN_PEER_WRITE_BATCH_BYTES + 64 * 1024)
/* Returned through the TLS and frame callbacks to stop feeding a connection that is
 * closing (distinct from net_tls_feed's 1 = "peer closed"). */
#define STOP           2
#define LISTEN_BACKLOG 128

enum chan_state {
    CHAN_IDLE,       /* no connection; the next send dials */
    CHAN_CONNECTING, /* TCP connect or TLS handshake in progress */
    CHAN_READY,      /* handshake done; frames flow */
    CHAN_BACKOFF,    /* waiting for the backoff timer */
};

struct qframe {
    struct qframe *next;
    size_t len;      /* header + payload */
    uint8_t bytes[]; /* be32 length, then the payload */
};

struct proto {
    char alpn[ASPEN_PEER_MAX_ALPN_BYTES + 1];
    size_t alpn_len;
    struct net_handlers h;
};

struct peer;
struct conn;
struct tt;

struct chan {
    struct tt *tt;
    struct peer *peer;
    unsigned proto;
    struct qframe *head, *tail; /* owned: frames not yet fully encrypted */
    size_t head_off;            /* bytes of head already encrypted on the current conn */
    uint64_t queued_bytes;      /* see the file comment */
    enum chan_state state;
    struct conn *conn; /* the connection serving this chan, or NULL */
    uv_timer_t timer;  /* backoff */
    uint32_t attempt;  /* failures since the last established connection */
    bool wants_writable;
};

struct peer {
    uint8_t pk[NET_KEY_BYTES];
    struct sockaddr_storage addr;
    bool has_addr;
    struct chan *chans[ASPEN_PEER_MAX_PROTOCOLS]; /* owned; NULL until first used */
    uint64_t frames_sent, frames_received, reconnects;
};

struct conn {
    struct tt *tt;
    struct conn *prev, *next; /* tt->conns */
    uv_tcp_t tcp;
    uv_timer_t timer; /* connect + handshake deadline */
    uv_connect_t connect_req;
    uv_write_t write_req;
    unsigned open_handles;
    bool is_closing;
    bool is_outbound;
    bool is_connected;                /* TCP is up (inbound: from accept) */
    bool is_established;              /* TLS handshake done */
    bool is_ready;                    /* outbound: the server's acceptance frame arrived */
    struct chan *chan;                /* outbound: the chan served, until the conn is lost */
    struct peer *peer;                /* once established (NULL if the peer table was full) */
    unsigned proto;                   /* once established */
    uint8_t dialed_pk[NET_KEY_BYTES]; /* outbound: the key we expect */
    struct net_tls tls;               /* owned */
    struct net_frame_reader reader;   /* owned */
    uint8_t *wbuf;                    /* owned: the ciphertext being written */
    bool is_writing;
    uint64_t write_frame_bytes, write_frames; /* frames completed by the write in flight */
    uint64_t enc_frame_bytes, enc_frames;     /* frames completed in tls.out, not yet written */
};

struct listener {
    struct tt *tt;
    uv_tcp_t tcp;
};

struct tt {
    uv_loop_t *loop;
    struct aspen_random *rng;
    struct net_options opt; /* resolved: no zero fields */
    uint8_t self_pk[NET_KEY_BYTES];
    struct net_tls_creds creds;
    struct net_keyset trust;
    struct proto protos[ASPEN_PEER_MAX_PROTOCOLS];
    unsigned n_protos;
    struct peer **peers; /* owned: sorted by key */
    size_t n_peers, cap_peers;
    struct conn *conns; /* every conn not yet freed */
    size_t n_conns;
    struct listener *listener; /* owned until its close callback */
    uv_timer_t close_timer;    /* makes close's done asynchronous even with no I/O */
    uint64_t live_handles;
    unsigned api_depth; /* > 0 inside a transport call: handlers are not called */
    bool is_closing;
    void (*done)(void *arg);
    void *done_arg;
    uint8_t read_buf[READ_BUF_BYTES];
    uint8_t plain_buf[PLAIN_BUF_BYTES];
};

static const struct net_transport_ops tt_ops;

/* ---------------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------------- */

/* The first 8 bytes of a key in hex: enough to tell peers apart in a log. */
static void key_hex(const uint8_t pk[NET_KEY_BYTES], char out[17])
{
    hash_to_hex(pk, 8, out);
}

static int parse_addr(const char *host, uint16_t port, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof(*out));
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0)
        return 0;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0)
        return 0;
    return ASPEN_E_INVALID;
}

static int find_proto(const struct tt *tt, const char *alpn, size_t len)
{
    for (unsigned i = 0; i < tt->n_protos; i++) {
        if (tt->protos[i].alpn_len == len && memcmp(tt->protos[i].alpn, alpn, len) == 0)
            return (int)i;
    }
    return -1;
}

static bool handlers_allowed(const struct tt *tt)
{
    return !tt->is_closing && tt->api_depth == 0;
}

static void handle_closed(struct tt *tt);

/* ---------------------------------------------------------------------------------------
 * Peers
 * ------------------------------------------------------------------------------------- */

static const uint8_t *peer_key_at(const void *arr, size_t i)
{
    return ((struct peer *const *)arr)[i]->pk;
}

static size_t peer_search(const struct tt *tt, const uint8_t pk[NET_KEY_BYTES], bool *found)
{
    return net_key_search(tt->peers, tt->n_peers, peer_key_at, pk, found);
}

static struct peer *peer_find(const struct tt *tt, const uint8_t pk[NET_KEY_BYTES])
{
    bool found;
    size_t at = peer_search(tt, pk, &found);
    return found ? tt->peers[at] : NULL;
}

/* The peer for pk, created if new. NULL with *rc = ASPEN_E_FULL or ASPEN_E_NOMEM. */
static struct peer *peer_get(struct tt *tt, const uint8_t pk[NET_KEY_BYTES], int *rc)
{
    bool found;
    size_t at = peer_search(tt, pk, &found);
    if (found)
        return tt->peers[at];
    *rc =
        mem_grow(&tt->peers, &tt->cap_peers, tt->n_peers, sizeof(*tt->peers), 16, ASPEN_MAX_PEERS);
    if (*rc != 0)
        return NULL;
    struct peer *p = mem_calloc(1, sizeof(*p));
    if (!p) {
        *rc = ASPEN_E_NOMEM;
        return NULL;
    }
    memcpy(p->pk, pk, NET_KEY_BYTES);
    memmove(tt->peers + at + 1, tt->peers + at, (tt->n_peers - at) * sizeof(*tt->peers));
    tt->peers[at] = p;
    tt->n_peers++;
    return p;
}

/* ---------------------------------------------------------------------------------------
 * Channel queues
 * ------------------------------------------------------------------------------------- */

static void chan_drop_queue(struct chan *c)
{
    while (c->head) {
        struct qframe *q = c->head;
        c->head = q->next;
        c->queued_bytes -= q->len;
        mem_free(q);
    }
    c->tail = NULL;
    c->head_off = 0;
}

/* Flow control: a refused sender hears once that the queue drained below half. */
static void chan_maybe_writable(struct chan *c)
{
    struct tt *tt = c->tt;
    if (!c->wants_writable || c->queued_bytes > tt->opt.send_queue_bytes / 2 ||
        !handlers_allowed(tt))
        return;
    c->wants_writable = false;
    const struct net_handlers *h = &tt->protos[c->proto].h;
    if (h->on_writable)
        h->on_writable(h->ctx, c->peer->pk);
}

/* ---------------------------------------------------------------------------------------
 * Connections: closing
 * ------------------------------------------------------------------------------------- */

static void chan_lost(struct chan *c, int err);

static void conn_free(struct conn *conn)
{
    struct tt *tt = conn->tt;
    net_tls_release(&conn->tls);
    net_frame_reader_release(&conn->reader);
    mem_free(conn->wbuf);
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        tt->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    tt->n_conns--;
    mem_free(conn);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    struct conn *conn = h->data;
    struct tt *tt = conn->tt;
    if (--conn->open_handles == 0)
        conn_free(conn);
    handle_closed(tt);
}

static void log_close(const struct conn *conn, int err, const char *reason)
{
    const struct tt *tt = conn->tt;
    char self[17], peer[17] = "unknown", dialed[32] = "";
    key_hex(tt->self_pk, self);
    if (conn->tls.has_presented_pk)
        key_hex(conn->tls.presented_pk, peer);
    else if (conn->is_outbound)
        key_hex(conn->dialed_pk, peer);
    if (conn->is_outbound && conn->tls.has_presented_pk &&
        memcmp(conn->tls.presented_pk, conn->dialed_pk, NET_KEY_BYTES) != 0) {
        char hex[17];
        key_hex(conn->dialed_pk, hex);
        snprintf(dialed, sizeof(dialed), " dialed=%s", hex);
    }
    const char *dir = conn->is_outbound ? "out" : "in";
    const char *proto = conn->is_established              ? tt->protos[conn->proto].alpn
                        : conn->is_outbound && conn->chan ? tt->protos[conn->chan->proto].alpn
                                                          : "-";
    enum log_level level = LOG_LEVEL_WARN;
    const char *msg = "connection dropped";
    if (tt->is_closing) {
        level = LOG_LEVEL_DEBUG;
        msg = "connection closed";
    } else if (err == ASPEN_E_PERMISSION) {
        msg = "peer refused";
    } else if (err == ASPEN_E_CLOSED || err == UV_ECONNREFUSED || err == UV_ECONNRESET ||
               err == UV_EOF) {
        level = LOG_LEVEL_INFO;
        msg = "connection closed";
    }
    LOG_AT(level, "net", msg, "self=%s peer=%s%s dir=%s proto=%s reason=\"%s\" err=%s", self, peer,
           dialed, dir, proto, reason, aspen_err_name(err));
}

/* Closes conn (idempotent): logs why, sends a pending alert if the socket takes it at
 * once, and hands its chan to backoff. Memory goes in the close callbacks. */
static void conn_close(struct conn *conn, int err, const char *reason)
{
    if (conn->is_closing)
        return;
    conn->is_closing = true;
    log_close(conn, err, reason);
    if (conn->is_connected && !conn->is_writing && conn->tls.out.len > 0) {
        /* Best effort: lets the peer see why (a TLS alert) instead of a bare reset. */
        uv_buf_t b = uv_buf_init((char *)conn->tls.out.data, (unsigned)conn->tls.out.len);
        (void)uv_try_write((uv_stream_t *)&conn->tcp, &b, 1);
    }
    uv_read_stop((uv_stream_t *)&conn->tcp);
    uv_timer_stop(&conn->timer);
    uv_close((uv_handle_t *)&conn->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&conn->timer, on_conn_handle_closed);
    if (conn->chan)
        chan_lost(conn->chan, err);
}

/* ---------------------------------------------------------------------------------------
 * Connections: writing
 * ------------------------------------------------------------------------------------- */

static void conn_pump(struct conn *conn);

static void on_write(uv_write_t *req, int status)
{
    struct conn *conn = req->data;
    conn->is_writing = false;
    mem_free(conn->wbuf);
    conn->wbuf = NULL;
    struct chan *c = conn->chan;
    if (c) {
        c->queued_bytes -= conn->write_frame_bytes;
        c->peer->frames_sent += conn->write_frames;
    }
    conn->write_frame_bytes = conn->write_frames = 0;
    if (conn->is_closing)
        return;
    if (status < 0) {
        conn_close(conn, status, "write failed");
        return;
    }
    conn_pump(conn);
    if (c && !conn->is_closing)
        chan_maybe_writable(c);
}

/* Starts writing the pending ciphertext if no write is in flight. */
static void conn_flush(struct conn *conn)
{
    if (conn->is_closing || conn->is_writing || !conn->is_connected || conn->tls.out.len == 0)
        return;
    size_t len = 0;
    conn->wbuf = buf_steal(&conn->tls.out, &len);
    conn->write_frame_bytes = conn->enc_frame_bytes;
    conn->write_frames = conn->enc_frames;
    conn->enc_frame_bytes = conn->enc_frames = 0;
    conn->is_writing = true;
    uv_buf_t b = uv_buf_init((char *)conn->wbuf, (unsigned)len);
    conn->write_req.data = conn;
    int rc = uv_write(&conn->write_req, (uv_stream_t *)&conn->tcp, &b, 1, on_write);
    if (rc < 0) {
        /* No callback will come. The batch's bytes leave the queue in chan_lost (via
         * conn_close), with the rest of what this connection had encrypted. */
        conn->is_writing = false;
        mem_free(conn->wbuf);
        conn->wbuf = NULL;
        conn_close(conn, rc, "write failed");
    }
}

/* Encrypts queued frames up to one write batch and starts the write. */
static void conn_pump(struct conn *conn)
{
    struct chan *c = conn->chan;
    if (!c || conn->is_closing || !conn->is_ready || conn->is_writing)
        return;
    while (c->head && conn->tls.out.len < ASPEN_PEER_WRITE_BATCH_BYTES) {
        struct qframe *q = c->head;
        size_t n = 0;
        int rc = net_tls_send(&conn->tls, q->bytes + c->head_off, q->len - c->head_off, &n);
        if (rc != 0) {
            conn_close(conn, rc, "encryption failed");
            return;
        }
        c->head_off += n;
        if (c->head_off == q->len) {
            c->head = q->next;
            if (!c->head)
                c->tail = NULL;
            c->head_off = 0;
            conn->enc_frame_bytes += q->len;
            conn->enc_frames++;
            mem_free(q);
        }
    }
    conn_flush(conn);
}

/* ---------------------------------------------------------------------------------------
 * Connections: TLS events and reading
 * ------------------------------------------------------------------------------------- */

static const char *conn_verify(void *ctx, const uint8_t pk[NET_KEY_BYTES])
{
    struct conn *conn = ctx;
    if (!net_keyset_contains(&conn->tt->trust, pk))
        return "key not in trust registry";
    if (conn->is_outbound && memcmp(pk, conn->dialed_pk, NET_KEY_BYTES) != 0)
        return "server key differs from the key dialed";
    return NULL;
}

static void conn_ready(struct conn *conn);

static int conn_on_frame(void *ctx, struct slice frame)
{
    struct conn *conn = ctx;
    struct tt *tt = conn->tt;
    if (conn->is_outbound && !conn->is_ready) {
        if (frame.len != 0) {
            conn_close(conn, ASPEN_E_MALFORMED, "expected the server's acceptance frame");
            return STOP;
        }
        conn_ready(conn);
        return conn->is_closing || tt->is_closing ? STOP : 0;
    }
    if (conn->peer)
        conn->peer->frames_received++;
    const struct net_handlers *h = &tt->protos[conn->proto].h;
    h->on_frame(h->ctx, conn->tls.peer_pk, frame);
    return conn->is_closing || tt->is_closing ? STOP : 0;
}

static int conn_plaintext(void *ctx, struct slice data)
{
    struct conn *conn = ctx;
    int rc = net_frame_reader_feed(&conn->reader, data, conn_on_frame, conn);
    if (rc == ASPEN_E_TOO_LARGE) {
        char reason[96];
        snprintf(reason, sizeof(reason), "frame of %" PRIu32 " bytes exceeds the limit of %" PRIu32,
                 conn->reader.bad_len, conn->tt->opt.max_frame_bytes);
        conn_close(conn, rc, reason);
        return STOP;
    }
    if (rc < 0) {
        conn_close(conn, rc, "frame reassembly failed");
        return STOP;
    }
    return rc;
}

static void conn_log_established(const struct conn *conn)
{
    char self[17], peer[17];
    key_hex(conn->tt->self_pk, self);
    key_hex(conn->tls.peer_pk, peer);
    LOG_INFO("net", "connection established", "self=%s peer=%s dir=%s proto=%s", self, peer,
             conn->is_outbound ? "out" : "in", conn->tls.alpn);
}

static int conn_handshake_done(void *ctx)
{
    struct conn *conn = ctx;
    struct tt *tt = conn->tt;
    const uint8_t *pk = conn->tls.peer_pk;
    /* conn_verify checked the key mid-handshake, and a registry change since then closed
     * this conn (trust_sweep covers every conn with a verified key). */
    ASPEN_ASSERT(net_keyset_contains(&tt->trust, pk));
    int proto = find_proto(tt, conn->tls.alpn, strlen(conn->tls.alpn));
    if (proto < 0 || (conn->is_outbound && (unsigned)proto != conn->chan->proto)) {
        conn_close(conn, ASPEN_E_UNSUPPORTED, "negotiated an unexpected protocol");
        return STOP;
    }
    int rc = 0;
    conn->proto = (unsigned)proto;
    conn->peer = peer_get(tt, pk, &rc); /* NULL: no counters, still served */
    conn->is_established = true;
    if (conn->is_outbound)
        return 0; /* ready once the server's acceptance frame arrives */
    uv_timer_stop(&conn->timer);
    conn_log_established(conn);
    /* The acceptance frame (empty): in TLS 1.3 the client finishes its handshake before
     * the server has checked the client's key, so without it a client would count a
     * refused connection as up and send frames into it. */
    uint8_t hdr[NET_FRAME_HEADER_BYTES];
    net_frame_header(hdr, 0);
    size_t n = 0;
    rc = net_tls_send(&conn->tls, hdr, sizeof(hdr), &n);
    if (rc != 0 || n != sizeof(hdr)) {
        conn_close(conn, rc ? rc : ASPEN_E_INTERNAL, "cannot send the acceptance frame");
        return STOP;
    }
    return 0;
}

/* Outbound: the server accepted our key; frames may flow. */
static void conn_ready(struct conn *conn)
{
    struct tt *tt = conn->tt;
    struct chan *c = conn->chan;
    conn->is_ready = true;
    uv_timer_stop(&conn->timer);
    conn_log_established(conn);
    c->state = CHAN_READY;
    c->attempt = 0;
    const struct net_handlers *h = &tt->protos[c->proto].h;
    if (h->on_peer_up && handlers_allowed(tt))
        h->on_peer_up(h->ctx, conn->tls.peer_pk);
    conn_pump(conn);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    (void)suggested;
    struct conn *conn = h->data;
    *out = uv_buf_init((char *)conn->tt->read_buf, READ_BUF_BYTES);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct conn *conn = s->data;
    if (conn->is_closing || nread == 0)
        return;
    if (nread < 0) {
        conn_close(conn, nread == UV_EOF ? ASPEN_E_CLOSED : (int)nread,
                   nread == UV_EOF ? "closed by peer" : "read failed");
        return;
    }
    struct tt *tt = conn->tt;
    int rc = net_tls_feed(&conn->tls, slice_make(b->base, (size_t)nread), tt->plain_buf,
                          PLAIN_BUF_BYTES);
    if (rc == 1)
        conn_close(conn, ASPEN_E_CLOSED, "peer ended the session");
    else if (rc < 0)
        conn_close(conn, rc, net_tls_describe(&conn->tls));
    conn_flush(conn);
}

static void on_conn_timer(uv_timer_t *t)
{
    struct conn *conn = t->data;
    conn_close(conn, ASPEN_E_TIMEOUT,
               conn->is_connected ? "handshake timed out" : "connect timed out");
}

/* ---------------------------------------------------------------------------------------
 * Connections: creating
 * ------------------------------------------------------------------------------------- */

/* A new conn with both handles initialized and counted, linked into tt->conns; its TLS
 * session is set up for the given side. NULL with *rc on failure (nothing to close). */
static struct conn *conn_new(struct tt *tt, bool is_outbound, unsigned proto, int *rc)
{
    if (tt->n_conns >= ASPEN_PEER_MAX_CONNECTIONS) {
        *rc = ASPEN_E_FULL;
        return NULL;
    }
    struct conn *conn = mem_calloc(1, sizeof(*conn));
    if (!conn) {
        *rc = ASPEN_E_NOMEM;
        return NULL;
    }
    conn->tt = tt;
    conn->is_outbound = is_outbound;
    struct slice alpns[ASPEN_PEER_MAX_PROTOCOLS];
    size_t n_alpns = 0;
    if (is_outbound) {
        alpns[n_alpns++] = slice_make(tt->protos[proto].alpn, tt->protos[proto].alpn_len);
    } else {
        for (unsigned i = 0; i < tt->n_protos; i++)
            alpns[n_alpns++] = slice_make(tt->protos[i].alpn, tt->protos[i].alpn_len);
    }
    struct net_tls_events ev = {.ctx = conn,
                                .verify = conn_verify,
                                .handshake_done = conn_handshake_done,
                                .plaintext = conn_plaintext};
    *rc =
        net_tls_init(&conn->tls, &tt->creds, !is_outbound, alpns, n_alpns, &ev, TLS_OUT_MAX_BYTES);
    if (*rc != 0)
        goto free_conn;
    *rc = uv_tcp_init(tt->loop, &conn->tcp);
    if (*rc != 0)
        goto release_tls;
    uv_timer_init(tt->loop, &conn->timer);
    conn->tcp.data = conn->timer.data = conn;
    conn->open_handles = 2;
    tt->live_handles += 2;
    net_frame_reader_init(&conn->reader, tt->opt.max_frame_bytes, ASPEN_PEER_RECV_KEEP_BYTES);
    conn->next = tt->conns;
    if (tt->conns)
        tt->conns->prev = conn;
    tt->conns = conn;
    tt->n_conns++;
    uv_timer_start(&conn->timer, on_conn_timer, tt->opt.connect_timeout_ms, 0);
    return conn;

release_tls:
    net_tls_release(&conn->tls);
free_conn:
    mem_free(conn);
    return NULL;
}

static void on_rejected_closed(uv_handle_t *h)
{
    struct tt *tt = h->data;
    mem_free(h);
    handle_closed(tt);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct listener *l = server->data;
    struct tt *tt = l->tt;
    if (tt->is_closing)
        return;
    if (status < 0) {
        LOG_WARN("net", "accept failed", "err=%s", aspen_err_name(status));
        return;
    }
    int rc = ASPEN_E_UNAVAILABLE;
    struct conn *conn = tt->n_protos ? conn_new(tt, false, 0, &rc) : NULL;
    if (!conn) {
        /* Take the connection off the backlog and drop it, or libuv would report it
         * again at once. */
        uv_tcp_t *tmp = mem_alloc(sizeof(*tmp));
        if (tmp && uv_tcp_init(tt->loop, tmp) == 0) {
            tmp->data = tt;
            tt->live_handles++;
            (void)uv_accept(server, (uv_stream_t *)tmp);
            uv_close((uv_handle_t *)tmp, on_rejected_closed);
        } else {
            mem_free(tmp);
        }
        LOG_WARN("net", "connection refused", "reason=\"cannot take a connection\" err=%s",
                 aspen_err_name(rc));
        return;
    }
    rc = uv_accept(server, (uv_stream_t *)&conn->tcp);
    if (rc != 0) {
        conn_close(conn, rc, "accept failed");
        return;
    }
    conn->is_connected = true;
    uv_tcp_nodelay(&conn->tcp, 1);
    rc = uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read);
    if (rc != 0)
        conn_close(conn, rc, "read failed");
}

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *conn = req->data;
    if (conn->is_closing)
        return;
    if (status < 0) {
        conn_close(conn, status, "connect failed");
        return;
    }
    conn->is_connected = true;
    int rc = uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read);
    if (rc == 0)
        rc = net_tls_start(&conn->tls);
    if (rc != 0) {
        conn_close(conn, rc, "handshake start failed");
        return;
    }
    conn_flush(conn);
}

static void on_backoff(uv_timer_t *t);

/* Enters backoff: the next attempt after a jittered delay. */
static void chan_backoff(struct chan *c)
{
    struct tt *tt = c->tt;
    c->state = CHAN_BACKOFF;
    uint32_t delay =
        net_backoff_delay_ms(c->attempt, tt->opt.backoff_min_ms, tt->opt.backoff_max_ms, tt->rng);
    if (c->attempt < UINT32_MAX)
        c->attempt++;
    uv_timer_start(&c->timer, on_backoff, delay, 0);
}

/* Dials the chan's peer. A failure before any I/O (no memory, descriptors, connection
 * slots) goes straight to backoff: it is logged but not reported through on_peer_down,
 * which must not run inside the send that got here. */
static void chan_connect(struct chan *c)
{
    struct tt *tt = c->tt;
    int rc = 0;
    struct conn *conn = conn_new(tt, true, c->proto, &rc);
    if (!conn) {
        char peer[17];
        key_hex(c->peer->pk, peer);
        LOG_WARN("net", "cannot dial", "peer=%s err=%s", peer, aspen_err_name(rc));
        chan_backoff(c);
        return;
    }
    memcpy(conn->dialed_pk, c->peer->pk, NET_KEY_BYTES);
    conn->chan = c;
    c->conn = conn;
    c->state = CHAN_CONNECTING;
    uv_tcp_nodelay(&conn->tcp, 1);
    conn->connect_req.data = conn;
    rc = uv_tcp_connect(&conn->connect_req, &conn->tcp, (const struct sockaddr *)&c->peer->addr,
                        on_connect);
    if (rc != 0)
        conn_close(conn, rc, "connect failed");
}

static void on_backoff(uv_timer_t *t)
{
    struct chan *c = t->data;
    struct tt *tt = c->tt;
    if (tt->is_closing || c->state != CHAN_BACKOFF)
        return;
    if (!c->head || !net_keyset_contains(&tt->trust, c->peer->pk)) {
        c->state = CHAN_IDLE; /* nothing to send: dial again on the next send */
        return;
    }
    c->peer->reconnects++;
    chan_connect(c);
}

/* The peer left the trust registry: nothing more goes to it on this chan. */
static void chan_forget(struct chan *c)
{
    chan_drop_queue(c);
    uv_timer_stop(&c->timer);
    c->state = CHAN_IDLE;
    c->wants_writable = false;
}

/* The chan's connection is gone (closed, refused, timed out). */
static void chan_lost(struct chan *c, int err)
{
    struct tt *tt = c->tt;
    struct conn *conn = c->conn;
    if (conn) {
        /* Encrypted frames are given up with the connection; a torn one starts over. */
        c->queued_bytes -= conn->write_frame_bytes + conn->enc_frame_bytes;
        conn->write_frame_bytes = conn->enc_frame_bytes = 0;
        conn->write_frames = conn->enc_frames = 0;
        conn->chan = NULL;
    }
    c->conn = NULL;
    c->head_off = 0;
    if (tt->is_closing)
        return;
    if (!net_keyset_contains(&tt->trust, c->peer->pk)) {
        chan_forget(c);
        return;
    }
    chan_backoff(c);
    const struct net_handlers *h = &tt->protos[c->proto].h;
    if (h->on_peer_down && handlers_allowed(tt))
        h->on_peer_down(h->ctx, c->peer->pk, err);
    chan_maybe_writable(c);
}

/* ---------------------------------------------------------------------------------------
 * Trust changes
 * ------------------------------------------------------------------------------------- */

/* Closes whatever the registry no longer allows. */
static void trust_sweep(struct tt *tt)
{
    for (struct conn *conn = tt->conns; conn; conn = conn->next) {
        if (conn->is_closing)
            continue;
        const uint8_t *pk = conn->tls.has_peer_pk ? conn->tls.peer_pk
                            : conn->is_outbound   ? conn->dialed_pk
                                                  : NULL;
        if (pk && !net_keyset_contains(&tt->trust, pk))
            conn_close(conn, ASPEN_E_PERMISSION, "key removed from trust registry");
    }
    for (size_t i = 0; i < tt->n_peers; i++) {
        struct peer *p = tt->peers[i];
        if (net_keyset_contains(&tt->trust, p->pk))
            continue;
        for (unsigned j = 0; j < ASPEN_PEER_MAX_PROTOCOLS; j++) {
            if (p->chans[j])
                chan_forget(p->chans[j]);
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * Operations
 * ------------------------------------------------------------------------------------- */

static void on_listener_closed(uv_handle_t *h)
{
    struct listener *l = h->data;
    struct tt *tt = l->tt;
    mem_free(l);
    handle_closed(tt);
}

static int tt_listen(void *impl, const char *host, uint16_t port, uint16_t *bound_port)
{
    struct tt *tt = impl;
    if (tt->is_closing)
        return ASPEN_E_CLOSED;
    if (tt->listener)
        return ASPEN_E_EXISTS;
    struct sockaddr_storage addr;
    int rc = parse_addr(host, port, &addr);
    if (rc != 0)
        return rc;
    struct listener *l = mem_calloc(1, sizeof(*l));
    if (!l)
        return ASPEN_E_NOMEM;
    l->tt = tt;
    rc = uv_tcp_init(tt->loop, &l->tcp);
    if (rc != 0) {
        mem_free(l);
        return rc;
    }
    l->tcp.data = l;
    tt->live_handles++;
    rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, LISTEN_BACKLOG, on_connection);
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    if (rc == 0)
        rc = uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&bound, &len);
    if (rc != 0) {
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
        return rc;
    }
    uint16_t p = bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                             : ((struct sockaddr_in *)&bound)->sin_port;
    if (bound_port)
        *bound_port = ntohs(p);
    tt->listener = l;
    char self[17];
    key_hex(tt->self_pk, self);
    LOG_INFO("net", "listening", "self=%s host=%s port=%u", self, host, (unsigned)ntohs(p));
    return 0;
}

static int tt_register_protocol(void *impl, const char *alpn, const struct net_handlers *h)
{
    struct tt *tt = impl;
    if (tt->is_closing)
        return ASPEN_E_CLOSED;
    size_t len = strlen(alpn);
    if (len == 0 || len > ASPEN_PEER_MAX_ALPN_BYTES || !h || !h->on_frame)
        return ASPEN_E_INVALID;
    if (find_proto(tt, alpn, len) >= 0)
        return ASPEN_E_EXISTS;
    if (tt->n_protos >= ASPEN_PEER_MAX_PROTOCOLS)
        return ASPEN_E_FULL;
    struct proto *p = &tt->protos[tt->n_protos++];
    memcpy(p->alpn, alpn, len + 1);
    p->alpn_len = len;
    p->h = *h;
    return 0;
}

static int tt_trust_set(void *impl, const uint8_t (*pks)[NET_KEY_BYTES], size_t n)
{
    struct tt *tt = impl;
    if (tt->is_closing)
        return ASPEN_E_CLOSED;
    int rc = net_keyset_replace(&tt->trust, pks, n);
    if (rc == 0) {
        tt->api_depth++;
        trust_sweep(tt);
        tt->api_depth--;
    }
    return rc;
}

static int tt_trust_add(void *impl, const uint8_t pk[NET_KEY_BYTES])
{
    struct tt *tt = impl;
    if (tt->is_closing)
        return ASPEN_E_CLOSED;
    return net_keyset_add(&tt->trust, pk);
}

static int tt_trust_remove(void *impl, const uint8_t pk[NET_KEY_BYTES])
{
    struct tt *tt = impl;
    if (tt->is_closing)
        return ASPEN_E_CLOSED;
    int rc = net_keyset_remove(&tt->trust, pk);
    if (rc == 0) {
        tt->api_depth++;
        trust_sweep(tt);
        tt->api_depth--;
    }
    return rc;
}

static int tt_peer_set_addr(void *impl, const uint8_t pk[NET_KEY_BYTES], const char *host,
                            uint16_t port)
{
    struct tt *tt = impl;
    if (tt->is_closing)
        return ASPEN_E_CLOSED;
    struct sockaddr_storage addr;
    int rc = parse_addr(host, port, &addr);
    if (rc != 0)
        return rc;
    struct peer *p = peer_get(tt, pk, &rc);
    if (!p)
        return rc;
    p->addr = addr;
    p->has_addr = true;
    return 0;
}

static struct chan *chan_get(struct tt *tt, struct peer *p, unsigned proto)
{
    if (p->chans[proto])
        return p->chans[proto];
    struct chan *c = mem_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->tt = tt;
    c->peer = p;
    c->proto = proto;
    uv_timer_init(tt->loop, &c->timer);
    c->timer.data = c;
    tt->live_handles++;
    p->chans[proto] = c;
    return c;
}

static int tt_send(void *impl, const uint8_t pk[NET_KEY_BYTES], const char *alpn,
                   struct slice frame)
{
    struct tt *tt = impl;
    if (tt->is_closing)
        return ASPEN_E_CLOSED;
    int proto = find_proto(tt, alpn, strlen(alpn));
    if (proto < 0)
        return ASPEN_E_NOT_FOUND;
    uint64_t need = (uint64_t)frame.len + NET_FRAME_HEADER_BYTES;
    if (frame.len > tt->opt.max_frame_bytes || need > tt->opt.send_queue_bytes)
        return ASPEN_E_TOO_LARGE;
    if (!net_keyset_contains(&tt->trust, pk))
        return ASPEN_E_PERMISSION;
    struct peer *p = peer_find(tt, pk);
    if (!p || !p->has_addr)
        return ASPEN_E_NOT_FOUND;
    struct chan *c = chan_get(tt, p, (unsigned)proto);
    if (!c)
        return ASPEN_E_NOMEM;
    if (c->queued_bytes + need > tt->opt.send_queue_bytes) {
        c->wants_writable = true;
        return ASPEN_E_BUSY;
    }
    struct qframe *q = mem_alloc(sizeof(*q) + need);
    if (!q)
        return ASPEN_E_NOMEM;
    q->next = NULL;
    q->len = need;
    net_frame_header(q->bytes, (uint32_t)frame.len);
    if (frame.len)
        memcpy(q->bytes + NET_FRAME_HEADER_BYTES, frame.ptr, frame.len);
    if (c->tail)
        c->tail->next = q;
    else
        c->head = q;
    c->tail = q;
    c->queued_bytes += need;
    tt->api_depth++;
    if (c->state == CHAN_IDLE)
        chan_connect(c);
    else if (c->state == CHAN_READY)
        conn_pump(c->conn);
    tt->api_depth--;
    return 0;
}

static uint32_t conn_rtt_us(struct conn *conn)
{
    uv_os_fd_t fd;
    struct tcp_info info;
    socklen_t len = sizeof(info);
    if (uv_fileno((uv_handle_t *)&conn->tcp, &fd) != 0 ||
        getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0)
        return 0;
    return info.tcpi_rtt;
}

static void tt_stats(void *impl, const uint8_t pk[NET_KEY_BYTES], struct net_peer_stats *out)
{
    struct tt *tt = impl;
    *out = (struct net_peer_stats){0};
    out->is_trusted = net_keyset_contains(&tt->trust, pk);
    struct peer *p = peer_find(tt, pk);
    if (!p)
        return;
    out->frames_sent = p->frames_sent;
    out->frames_received = p->frames_received;
    out->reconnects = p->reconnects;
    for (unsigned i = 0; i < ASPEN_PEER_MAX_PROTOCOLS; i++) {
        struct chan *c = p->chans[i];
        if (!c)
            continue;
        out->queued_bytes += c->queued_bytes;
        if (c->state == CHAN_READY && c->conn) {
            out->connections_up++;
            if (out->rtt_us == 0)
                out->rtt_us = conn_rtt_us(c->conn);
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * Close
 * ------------------------------------------------------------------------------------- */

static void finish(struct tt *tt)
{
    ASPEN_ASSERT(tt->conns == NULL);
    for (size_t i = 0; i < tt->n_peers; i++) {
        struct peer *p = tt->peers[i];
        for (unsigned j = 0; j < ASPEN_PEER_MAX_PROTOCOLS; j++) {
            if (p->chans[j]) {
                chan_drop_queue(p->chans[j]);
                mem_free(p->chans[j]);
            }
        }
        mem_free(p);
    }
    mem_free(tt->peers);
    net_keyset_release(&tt->trust);
    net_tls_creds_release(&tt->creds);
    void (*done)(void *) = tt->done;
    void *arg = tt->done_arg;
    mem_free(tt);
    if (done)
        done(arg);
}

static void handle_closed(struct tt *tt)
{
    ASPEN_ASSERT(tt->live_handles > 0);
    if (--tt->live_handles == 0 && tt->is_closing)
        finish(tt);
}

static void on_tt_handle_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

static void tt_close(void *impl, void (*done)(void *arg), void *arg)
{
    struct tt *tt = impl;
    ASPEN_ASSERT(!tt->is_closing);
    tt->is_closing = true;
    tt->done = done;
    tt->done_arg = arg;
    for (struct conn *conn = tt->conns; conn; conn = conn->next)
        conn_close(conn, ASPEN_E_CLOSED, "transport closing");
    for (size_t i = 0; i < tt->n_peers; i++) {
        for (unsigned j = 0; j < ASPEN_PEER_MAX_PROTOCOLS; j++) {
            struct chan *c = tt->peers[i]->chans[j];
            if (c) {
                c->timer.data = tt;
                uv_close((uv_handle_t *)&c->timer, on_tt_handle_closed);
            }
        }
    }
    if (tt->listener) {
        uv_close((uv_handle_t *)&tt->listener->tcp, on_listener_closed);
        tt->listener = NULL;
    }
    uv_close((uv_handle_t *)&tt->close_timer, on_tt_handle_closed);
}

/* ---------------------------------------------------------------------------------------
 * Open
 * ------------------------------------------------------------------------------------- */

static int resolve_options(const struct net_options *in, struct net_options *out)
{
    struct net_options o = in ? *in : (struct net_options){0};
    if (!o.send_queue_bytes)
        o.send_queue_bytes = ASPEN_PEER_SEND_QUEUE_BYTES;
    if (!o.max_frame_bytes)
        o.max_frame_bytes = ASPEN_PEER_MAX_FRAME_BYTES;
    if (!o.backoff_min_ms)
        o.backoff_min_ms = ASPEN_PEER_BACKOFF_MIN_MS;
    if (!o.backoff_max_ms)
        o.backoff_max_ms = ASPEN_PEER_BACKOFF_MAX_MS;
    if (!o.connect_timeout_ms)
        o.connect_timeout_ms = ASPEN_CONNECT_TIMEOUT_MS;
    if (o.max_frame_bytes > ASPEN_PEER_MAX_FRAME_BYTES || o.backoff_min_ms > o.backoff_max_ms)
        return ASPEN_E_INVALID;
    *out = o;
    return 0;
}

int net_tls_tcp_open(uv_loop_t *loop, const struct net_identity *id, const struct net_options *opt,
                     struct aspen_random *rng, struct net_transport *out)
{
    struct net_options resolved;
    int rc = resolve_options(opt, &resolved);
    if (rc != 0)
        return rc;
    struct tt *tt = mem_calloc(1, sizeof(*tt));
    if (!tt)
        return ASPEN_E_NOMEM;
    rc = net_tls_creds_init(&tt->creds, id);
    if (rc != 0) {
        mem_free(tt);
        return rc;
    }
    tt->loop = loop;
    tt->rng = rng;
    tt->opt = resolved;
    memcpy(tt->self_pk, id->pk, NET_KEY_BYTES);
    net_keyset_init(&tt->trust, ASPEN_MAX_PEERS);
    uv_timer_init(loop, &tt->close_timer);
    tt->close_timer.data = tt;
    tt->live_handles = 1;
    *out = (struct net_transport){.ops = &tt_ops, .impl = tt};
    return 0;
}

static const struct net_transport_ops tt_ops = {
    .listen = tt_listen,
    .register_protocol = tt_register_protocol,
    .trust_set = tt_trust_set,
    .trust_add = tt_trust_add,
    .trust_remove = tt_trust_remove,
    .peer_set_addr = tt_peer_set_addr,
    .send = tt_send,
    .stats = tt_stats,
    .close = tt_close,
};
