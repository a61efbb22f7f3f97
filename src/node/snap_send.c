/*
 * Sending snapshots (the leader's side of node/snap.h): one transfer per follower that
 * the core asks to receive a snapshot, at most ASPEN_SNAPSHOT_MAX_SENDS at once.
 *
 * A transfer's chunks are produced on libuv's thread pool, one work item at a time (the
 * read transaction is then used by one thread at a time, which LMDB's MDB_NOTLS allows),
 * and handed to the transport on the loop. Two limits pace it: the receiver's ACKs
 * (ASPEN_SNAPSHOT_WINDOW_CHUNKS chunks may be unacknowledged) and the transport's queue
 * (ASPEN_E_BUSY, then on_writable). Memory is bounded by one chunk being produced plus
 * what the transport holds.
 *
 * The core hears how a transfer ended through shell_snapshot_status: success only when
 * the receiver reports the snapshot installed (or not needed).
 */
#include "node/internal.h"
#include "node/snap.h"

#include "base/assert.h"
#include "base/log.h"
#include "raft/codec.h"

#include <aspen/error.h>
#include <inttypes.h>
#include <string.h>

static const char *peer_name(struct node *n, raft_id id)
{
    const struct member_info *m = members_find(n, id);
    return m ? m->name : "?";
}

static void send_free(struct snap_send *s)
{
    kv_snapshot_writer_release(&s->w);
    if (s->txn)
        store_abort(s->txn);
    buf_release(&s->frame);
    buf_release(&s->chunk);
    mem_free(s);
}

static void send_abort_frame(struct snap_send *s, int reason)
{
    struct buf b;
    buf_init(&b, 64);
    struct snap_frame f = {.type = SNAP_ABORT, .id = s->id, .code = reason < 0 ? reason : 0};
    if (snap_frame_encode(&f, &b) == 0)
        (void)net_send(&s->n->net, s->pk, NET_ALPN_SNAP, buf_slice(&b));
    buf_release(&b);
}

/* Ends s: rc 0 = the receiver installed it. The core hears it after the current step. */
static void send_finish(struct snap_send *s, int rc, bool tell_peer)
{
    struct node *n = s->n;
    if (s->finished)
        return;
    s->finished = true;
    if (rc && tell_peer)
        send_abort_frame(s, rc);
    for (size_t i = 0; i < ASPEN_SNAPSHOT_MAX_SENDS; i++)
        if (n->sends[i] == s)
            n->sends[i] = NULL;
    uint64_t ms = node_now_ms(n) - s->started_ms;
    if (rc == 0) {
        n->m.snapshots_sent->value++;
        LOG_INFO("node", "snapshot sent", "to=%s index=%" PRIu64 " bytes=%" PRIu64 " ms=%" PRIu64,
                 peer_name(n, s->to), s->msg.snapshot.index, s->bytes, ms);
    } else {
        n->m.snapshot_send_failures->value++;
        LOG_WARN("node", "snapshot transfer failed",
                 "to=%s index=%" PRIu64 " reason=%s ms=%" PRIu64, peer_name(n, s->to),
                 s->msg.snapshot.index, aspen_err_name(rc), ms);
    }
    shell_snapshot_status(n, s->to, rc == 0);
    if (!s->producing)
        send_free(s);
}

/* Pool thread: the next chunk, framed. Touches only s's writer, transaction and buffers,
 * which the loop leaves alone while `producing`. */
static void produce(uv_work_t *w)
{
    struct snap_send *s = w->data;
    buf_clear(&s->frame);
    s->work_rc = kv_snapshot_writer_next(&s->w, &s->chunk);
    if (s->work_rc == 0) {
        struct snap_frame f = {
            .type = SNAP_CHUNK, .id = s->id, .seq = s->next_seq, .body = buf_slice(&s->chunk)};
        s->work_rc = snap_frame_encode(&f, &s->frame);
    }
}

static void pump(struct snap_send *s);

static void produced(uv_work_t *w, int status)
{
    struct snap_send *s = w->data;
    struct node *n = s->n;
    s->producing = false;
    n->snap_works--;
    if (s->finished) {
        send_free(s);
        return;
    }
    int rc = status < 0 ? ASPEN_E_CANCELED : s->work_rc;
    if (rc == ASPEN_E_NOT_FOUND) {
        s->eof = true; /* the trailer went out last time */
    } else if (rc) {
        send_finish(s, rc, true);
        return;
    } else {
        s->has_frame = true;
        s->next_seq++;
        s->bytes += s->chunk.len;
    }
    pump(s);
}

/* Frames the DONE message (the core's SNAPSHOT message with the rewritten meta). */
static int frame_done(struct snap_send *s)
{
    buf_clear(&s->chunk);
    int rc = raft_msg_encode(&s->msg, &s->chunk);
    if (rc)
        return rc;
    buf_clear(&s->frame);
    struct snap_frame f = {.type = SNAP_DONE, .id = s->id, .body = buf_slice(&s->chunk)};
    return snap_frame_encode(&f, &s->frame);
}

/* Moves s forward as far as the limits allow. */
static void pump(struct snap_send *s)
{
    struct node *n = s->n;
    while (!s->finished && !s->blocked && !s->producing) {
        if (s->has_frame) {
            int rc = net_send(&n->net, s->pk, NET_ALPN_SNAP, buf_slice(&s->frame));
            if (rc == ASPEN_E_BUSY) {
                s->blocked = true; /* on_writable resumes */
                return;
            }
            if (rc) {
                send_finish(s, rc, false);
                return;
            }
            s->has_frame = false;
            s->progress_ms = node_now_ms(n);
            continue;
        }
        if (s->done_sent)
            return; /* waiting for RESULT */
        if (s->eof) {
            int rc = frame_done(s);
            if (rc) {
                send_finish(s, rc, true);
                return;
            }
            s->done_sent = true;
            s->has_frame = true;
            continue;
        }
        if (s->next_seq - s->acked >= ASPEN_SNAPSHOT_WINDOW_CHUNKS)
            return; /* an ACK resumes */
        s->producing = true;
        n->snap_works++;
        s->work.data = s;
        int rc = uv_queue_work(n->loop, &s->work, produce, produced);
        if (rc) {
            s->producing = false;
            n->snap_works--;
            send_finish(s, ASPEN_E_INTERNAL, true);
            return;
        }
    }
}

static struct snap_send *find_send(struct node *n, const uint8_t pk[NET_KEY_BYTES], uint64_t id)
{
    for (size_t i = 0; i < ASPEN_SNAPSHOT_MAX_SENDS; i++) {
        struct snap_send *s = n->sends[i];
        if (s && s->id == id && memcmp(s->pk, pk, NET_KEY_BYTES) == 0)
            return s;
    }
    return NULL;
}

void snap_send_start(struct node *n, const struct raft_msg *m)
{
    size_t slot = ASPEN_SNAPSHOT_MAX_SENDS;
    for (size_t i = 0; i < ASPEN_SNAPSHOT_MAX_SENDS; i++) {
        if (n->sends[i] && n->sends[i]->to == m->to)
            return; /* already sending: the core asked again after its own timeout */
        if (!n->sends[i] && slot == ASPEN_SNAPSHOT_MAX_SENDS)
            slot = i;
    }
    const struct member_info *peer = members_find(n, m->to);
    int rc = 0;
    struct snap_send *s = NULL;
    if (slot == ASPEN_SNAPSHOT_MAX_SENDS) {
        rc = ASPEN_E_BUSY;
        goto fail;
    }
    if (!peer) {
        rc = ASPEN_E_NOT_FOUND;
        goto fail;
    }
    s = mem_calloc(1, sizeof(*s));
    if (!s) {
        rc = ASPEN_E_NOMEM;
        goto fail;
    }
    s->n = n;
    s->to = m->to;
    memcpy(s->pk, peer->pk, NET_KEY_BYTES);
    buf_init(&s->frame, SNAP_FRAME_HEADER_BYTES + 4 + ASPEN_SNAPSHOT_CHUNK_MAX_BYTES);
    buf_init(&s->chunk, ASPEN_SNAPSHOT_CHUNK_MAX_BYTES);
    /* The state the read transaction sees is the state after its applied index A: send
     * A with its term and the configuration in force there (node/snap.h). */
    rc = store_begin(n->store, false, &s->txn);
    raft_index a = 0;
    raft_term a_term = 0;
    if (!rc)
        rc = kv_applied(s->txn, &a, &a_term);
    if (!rc && a < m->snapshot.index) {
        LOG_ERROR("node", "applied state is behind the core's snapshot",
                  "applied=%" PRIu64 " snapshot=%" PRIu64, a, m->snapshot.index);
        rc = ASPEN_E_INTERNAL;
    }
    s->msg = *m;
    s->msg.snapshot.index = a;
    s->msg.snapshot.term = a_term;
    if (!rc)
        rc = shell_config_at(n, a, &s->msg.snapshot.config);
    if (rc)
        goto fail;
    if (a == n->handed_applied) {
        /* Nothing handed out since: the history must agree with the core. */
        struct raft_snapshot_meta now = s->msg.snapshot;
        now.config = *raft_config(n->raft);
        ASPEN_ASSERT(snap_meta_equal(&now, &s->msg.snapshot));
    }
    kv_snapshot_writer_init(&s->w, s->txn, &s->msg.snapshot);
    s->id = rng_next(&n->rng) | 1;
    s->started_ms = s->progress_ms = node_now_ms(n);
    n->sends[slot] = s;
    LOG_INFO("node", "sending a snapshot", "to=%s index=%" PRIu64 " term=%" PRIu64, peer->name, a,
             a_term);
    pump(s);
    return;
fail:
    n->m.snapshot_send_failures->value++;
    LOG_WARN("node", "cannot start a snapshot transfer", "to=%s reason=%s", peer_name(n, m->to),
             aspen_err_name(rc));
    if (s)
        send_free(s);
    shell_snapshot_status(n, m->to, false);
}

void snap_send_cancel_all(struct node *n, int reason)
{
    for (size_t i = 0; i < ASPEN_SNAPSHOT_MAX_SENDS; i++)
        if (n->sends[i])
            send_finish(n->sends[i], reason, true);
}

void snap_send_tick(struct node *n)
{
    uint64_t now = node_now_ms(n);
    for (size_t i = 0; i < ASPEN_SNAPSHOT_MAX_SENDS; i++) {
        struct snap_send *s = n->sends[i];
        if (!s)
            continue;
        /* Installing can take long after the last chunk; moving chunks must not stall. */
        uint64_t limit = s->done_sent ? ASPEN_SNAPSHOT_INSTALL_TIMEOUT_MS : ASPEN_SNAPSHOT_STALL_MS;
        if (now - s->progress_ms > limit)
            send_finish(s, ASPEN_E_TIMEOUT, true);
    }
}

void snap_send_on_ack(struct node *n, const uint8_t pk[NET_KEY_BYTES], const struct snap_frame *f)
{
    struct snap_send *s = find_send(n, pk, f->id);
    if (!s || f->seq <= s->acked)
        return;
    if (f->seq > s->next_seq) {
        send_finish(s, ASPEN_E_MALFORMED, true); /* acknowledges a chunk never sent */
        return;
    }
    s->acked = f->seq;
    s->progress_ms = node_now_ms(n);
    pump(s);
}

void snap_send_on_result(struct node *n, const uint8_t pk[NET_KEY_BYTES],
                         const struct snap_frame *f)
{
    struct snap_send *s = find_send(n, pk, f->id);
    if (s)
        send_finish(s, f->code, false);
}

void snap_send_on_writable(struct node *n, const uint8_t pk[NET_KEY_BYTES])
{
    for (size_t i = 0; i < ASPEN_SNAPSHOT_MAX_SENDS; i++) {
        struct snap_send *s = n->sends[i];
        if (s && s->blocked && memcmp(s->pk, pk, NET_KEY_BYTES) == 0) {
            s->blocked = false;
            pump(s);
        }
    }
}

void snap_send_on_peer_down(struct node *n, const uint8_t pk[NET_KEY_BYTES], int reason)
{
    for (size_t i = 0; i < ASPEN_SNAPSHOT_MAX_SENDS; i++) {
        struct snap_send *s = n->sends[i];
        if (s && memcmp(s->pk, pk, NET_KEY_BYTES) == 0)
            send_finish(s, reason < 0 ? reason : ASPEN_E_CLOSED, false);
    }
}
