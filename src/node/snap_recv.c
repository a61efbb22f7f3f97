/*
 * Receiving snapshots (the receiver's side of node/snap.h) and the protocol's frame
 * handler, which routes the sender's frames here and the receiver's answers to
 * snap_send.c.
 *
 * One transfer at a time. Each chunk is checked on arrival (kv_snapshot_reader without a
 * transaction) and appended to a spool file named after the transfer, with uv_fs writes
 * so the loop never blocks on the disk. The spool is a sequence of (be32 length, chunk).
 * Only a whole, checked stream whose DONE message matches its header is stepped into the
 * core; the shell's install job then reads the spool (snap_install_spool) on the storage
 * thread.
 *
 * A transfer abandoned while a file operation runs is detached from the node: its
 * callbacks finish the cleanup (close, unlink, free) using only what the transfer itself
 * holds, so the node may even be gone by then.
 */
#include "node/internal.h"
#include "node/snap.h"

#include "base/assert.h"
#include "base/log.h"
#include "raft/codec.h"

#include <aspen/error.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct snap_recv_state {
    struct snap_recv r;
    uv_loop_t *loop;
    struct node *n; /* NULL once detached */
    char path[ASPEN_NODE_CONFIG_VALUE_MAX_BYTES + 32];
};

static struct snap_recv_state *state_of(struct snap_recv *r)
{
    return (struct snap_recv_state *)r;
}

static void reply(struct node *n, const uint8_t pk[NET_KEY_BYTES], uint8_t type, uint64_t id,
                  uint32_t seq, int code)
{
    struct buf b;
    buf_init(&b, 64);
    struct snap_frame f = {.type = type, .id = id, .seq = seq, .code = code < 0 ? code : 0};
    if (snap_frame_encode(&f, &b) == 0)
        (void)net_send(&n->net, pk, NET_ALPN_SNAP, buf_slice(&b));
    buf_release(&b);
}

/* ---- teardown of a detached transfer ---- */

static void free_queue(struct snap_recv *r)
{
    while (r->wq_head) {
        struct snap_wbuf *b = r->wq_head;
        r->wq_head = b->next;
        mem_free(b);
    }
    r->wq_tail = NULL;
    r->wq_len = 0;
}

static void teardown(struct snap_recv_state *st);

static void on_teardown_step(uv_fs_t *req)
{
    struct snap_recv_state *st = req->data;
    uv_fs_req_cleanup(req);
    st->r.closing = false;
    teardown(st);
}

/* Closes the spool, removes it and frees st, one file operation at a time. */
static void teardown(struct snap_recv_state *st)
{
    struct snap_recv *r = &st->r;
    ASPEN_ASSERT(!st->n && !r->opening && !r->writing && !r->closing);
    r->req.data = st;
    if (r->fd >= 0) {
        uv_file fd = r->fd;
        r->fd = -1;
        r->closing = true;
        if (uv_fs_close(st->loop, &r->req, fd, on_teardown_step) == 0)
            return;
        r->closing = false;
    }
    if (st->path[0]) {
        r->closing = true;
        int rc = uv_fs_unlink(st->loop, &r->req, st->path, on_teardown_step);
        st->path[0] = '\0';
        if (rc == 0)
            return;
        r->closing = false;
    }
    free_queue(r);
    mem_free(st);
}

/* Detaches the node's transfer and cleans it up; tells the sender rc unless quiet. */
static void recv_end(struct node *n, int rc, bool tell_sender)
{
    struct snap_recv *r = n->recv;
    if (!r)
        return;
    struct snap_recv_state *st = state_of(r);
    n->recv = NULL;
    st->n = NULL;
    if (tell_sender)
        reply(n, r->pk, SNAP_RESULT, r->id, 0, rc);
    if (rc) {
        n->m.snapshot_recv_failures->value++;
        LOG_WARN("node", "incoming snapshot abandoned", "from=%016" PRIx64 " chunks=%u reason=%s",
                 r->from, r->next_seq, aspen_err_name(rc));
    }
    /* The queue goes with the rest in teardown: a write in flight still reads its head. */
    if (!r->opening && !r->writing && !r->closing)
        teardown(st);
}

void snap_recv_cancel(struct node *n, int reason)
{
    /* Once queued, the install job reads the spool: its completion ends the transfer. */
    if (n->recv && !n->recv->install_queued)
        recv_end(n, reason, true);
}

void snap_recv_finish(struct node *n, int rc)
{
    struct snap_recv *r = n->recv;
    if (!r)
        return;
    if (rc == 0) {
        n->m.snapshots_installed->value++;
        LOG_INFO("node", "snapshot installed", "index=%" PRIu64 " term=%" PRIu64 " bytes=%" PRIu64,
                 r->msg.snapshot.index, r->msg.snapshot.term, r->bytes);
    }
    recv_end(n, rc, true);
}

const char *snap_recv_spool_path(const struct node *n)
{
    return n->recv ? state_of(n->recv)->path : NULL;
}

/* ---- the spool ---- */

static int write_next(struct snap_recv_state *st);
static void maybe_step(struct snap_recv_state *st);

static void on_opened(uv_fs_t *req)
{
    struct snap_recv_state *st = req->data;
    ssize_t res = req->result;
    uv_fs_req_cleanup(req);
    st->r.opening = false;
    if (res >= 0)
        st->r.fd = (uv_file)res;
    if (!st->n) {
        teardown(st);
        return;
    }
    if (res < 0) {
        LOG_ERROR("node", "cannot create the snapshot spool", "path=%s err=\"%s\"", st->path,
                  uv_strerror((int)res));
        recv_end(st->n, ASPEN_E_IO, true);
        return;
    }
    (void)write_next(st);
}

static void on_written(uv_fs_t *req)
{
    struct snap_recv_state *st = req->data;
    struct snap_recv *r = &st->r;
    ssize_t res = req->result;
    uv_fs_req_cleanup(req);
    r->writing = false;
    if (!st->n) {
        teardown(st);
        return;
    }
    struct node *n = st->n;
    struct snap_wbuf *b = r->wq_head;
    if (res < 0 || (size_t)res != b->len) {
        LOG_ERROR("node", "cannot write the snapshot spool", "path=%s err=\"%s\"", st->path,
                  res < 0 ? uv_strerror((int)res) : "short write");
        recv_end(n, ASPEN_E_IO, true);
        return;
    }
    r->wq_head = b->next;
    if (!r->wq_head)
        r->wq_tail = NULL;
    r->wq_len--;
    r->offset += b->len;
    r->written = b->seq + 1;
    mem_free(b);
    r->progress_ms = node_now_ms(n);
    reply(n, r->pk, SNAP_ACK, r->id, r->written, 0);
    if (write_next(st) == 0)
        maybe_step(st);
}

/* Starts the next spool write if one is due. Non-zero: the transfer ended (st may be
 * freed). */
static int write_next(struct snap_recv_state *st)
{
    struct snap_recv *r = &st->r;
    if (r->fd < 0 || r->writing || r->closing || !r->wq_head)
        return 0;
    struct snap_wbuf *b = r->wq_head;
    uv_buf_t ub = uv_buf_init((char *)b->data, (unsigned int)b->len);
    r->writing = true;
    r->req.data = st;
    int rc = uv_fs_write(st->loop, &r->req, r->fd, &ub, 1, (int64_t)r->offset, on_written);
    if (rc) {
        r->writing = false;
        recv_end(st->n, ASPEN_E_IO, true);
        return rc;
    }
    return 0;
}

static void on_spool_closed(uv_fs_t *req)
{
    struct snap_recv_state *st = req->data;
    ssize_t res = req->result;
    uv_fs_req_cleanup(req);
    st->r.closing = false;
    if (!st->n) {
        teardown(st);
        return;
    }
    struct node *n = st->n;
    struct snap_recv *r = &st->r;
    if (res < 0) {
        recv_end(n, ASPEN_E_IO, true);
        return;
    }
    /* The whole stream is on disk and checked: hand the message to the core. If it
     * installs the snapshot, process() queues the install job (install_queued); if not
     * (it already holds that state, or a newer term intervened), nothing is needed. */
    if (!n->raft) {
        recv_end(n, ASPEN_E_CLOSED, true);
        return;
    }
    r->stepped = true;
    struct raft_event ev = {.type = RAFT_EVENT_RECEIVE};
    ev.u.msg = &r->msg;
    (void)shell_step(n, &ev, NULL);
    if (n->recv == r && !r->install_queued) {
        struct raft_status rs;
        raft_status(n->raft, &rs);
        snap_recv_finish(n, rs.hard_state.commit >= r->msg.snapshot.index ? 0 : ASPEN_E_CANCELED);
    }
}

/* After DONE and the last write: close the spool, then step the message. */
static void maybe_step(struct snap_recv_state *st)
{
    struct snap_recv *r = &st->r;
    if (!r->done_received || r->stepped || r->writing || r->closing || r->wq_head || r->fd < 0 ||
        r->written != r->next_seq)
        return;
    uv_file fd = r->fd;
    r->fd = -1;
    r->closing = true;
    r->req.data = st;
    if (uv_fs_close(st->loop, &r->req, fd, on_spool_closed) != 0) {
        r->closing = false;
        recv_end(st->n, ASPEN_E_IO, true);
    }
}

/* ---- frames from the sender ---- */

static int recv_begin(struct node *n, const struct member_info *from, const struct snap_frame *f)
{
    if (n->recv) {
        if (n->recv->stepped)
            return ASPEN_E_BUSY;             /* the core owns that one now */
        recv_end(n, ASPEN_E_CANCELED, true); /* superseded (a new leader, or a retry) */
    }
    struct snap_recv_state *st = mem_calloc(1, sizeof(*st));
    if (!st)
        return ASPEN_E_NOMEM;
    int len = snprintf(st->path, sizeof(st->path), "%s/snapshot.%016" PRIx64 ".recv",
                       n->cfg.data_dir, f->id);
    if (len < 0 || (size_t)len >= sizeof(st->path)) {
        mem_free(st);
        return ASPEN_E_TOO_LARGE;
    }
    struct snap_recv *r = &st->r;
    st->loop = n->loop;
    st->n = n;
    r->fd = -1;
    r->id = f->id;
    r->from = from->id;
    memcpy(r->pk, from->pk, NET_KEY_BYTES);
    r->progress_ms = node_now_ms(n);
    (void)kv_snapshot_reader_begin(&r->check, NULL);
    r->opening = true;
    r->req.data = st;
    if (uv_fs_open(n->loop, &r->req, st->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600,
                   on_opened) != 0) {
        mem_free(st);
        return ASPEN_E_IO;
    }
    n->recv = r;
    LOG_INFO("node", "receiving a snapshot", "from=%s", from->name);
    return 0;
}

static bool is_current(struct node *n, const uint8_t pk[NET_KEY_BYTES], uint64_t id)
{
    return n->recv && n->recv->id == id && memcmp(n->recv->pk, pk, NET_KEY_BYTES) == 0;
}

static void on_chunk(struct node *n, const struct member_info *from, const struct snap_frame *f)
{
    if (f->seq == 0 && !is_current(n, from->pk, f->id)) {
        int rc = recv_begin(n, from, f);
        if (rc) {
            reply(n, from->pk, SNAP_RESULT, f->id, 0, rc);
            return;
        }
    } else if (!is_current(n, from->pk, f->id)) {
        reply(n, from->pk, SNAP_RESULT, f->id, 0, ASPEN_E_CANCELED); /* unknown: stop */
        return;
    }
    struct snap_recv *r = n->recv;
    int rc = 0;
    if (f->seq != r->next_seq || r->done_received)
        rc = ASPEN_E_MALFORMED; /* a gap (a lost connection) or a repeat */
    else if (r->next_seq - r->written >= ASPEN_SNAPSHOT_WINDOW_CHUNKS)
        rc = ASPEN_E_LIMIT; /* the sender ignores the window */
    if (!rc)
        rc = kv_snapshot_reader_chunk(&r->check, f->body);
    struct snap_wbuf *b = NULL;
    if (!rc) {
        b = mem_alloc(sizeof(*b) + 4 + f->body.len);
        if (!b)
            rc = ASPEN_E_NOMEM;
    }
    if (rc) {
        recv_end(n, rc, true);
        return;
    }
    b->next = NULL;
    b->seq = f->seq;
    b->len = 4 + f->body.len;
    be32_store(b->data, (uint32_t)f->body.len);
    memcpy(b->data + 4, f->body.ptr, f->body.len);
    if (r->wq_tail)
        r->wq_tail->next = b;
    else
        r->wq_head = b;
    r->wq_tail = b;
    r->wq_len++;
    r->next_seq++;
    r->bytes += f->body.len;
    r->progress_ms = node_now_ms(n);
    (void)write_next(state_of(r));
}

static void on_done(struct node *n, const struct member_info *from, const struct snap_frame *f)
{
    if (!is_current(n, from->pk, f->id)) {
        reply(n, from->pk, SNAP_RESULT, f->id, 0, ASPEN_E_CANCELED);
        return;
    }
    struct snap_recv *r = n->recv;
    struct arena a;
    arena_init(&a, 4 * ASPEN_KIB, ASPEN_PEER_MAX_FRAME_BYTES);
    struct raft_msg m;
    struct raft_snapshot_meta streamed;
    int rc = r->done_received ? ASPEN_E_MALFORMED : 0;
    if (!rc)
        rc = raft_msg_decode(f->body.ptr, f->body.len, &m, &a);
    if (!rc && (m.type != RAFT_MSG_SNAPSHOT || m.from != from->id || m.to != n->id.raft_id))
        rc = ASPEN_E_MALFORMED;
    if (!rc)
        rc = kv_snapshot_reader_end(&r->check, &streamed);
    if (!rc && !snap_meta_equal(&streamed, &m.snapshot))
        rc = ASPEN_E_MALFORMED; /* the message must describe the stream it ends */
    if (!rc) {
        m.entries = NULL; /* a SNAPSHOT carries none; nothing may point into the arena */
        r->msg = m;
        r->done_received = true;
        r->progress_ms = node_now_ms(n);
    }
    arena_release(&a);
    if (rc) {
        LOG_WARN("node", "snapshot stream refused", "from=%s reason=%s", from->name,
                 aspen_err_name(rc));
        recv_end(n, rc, true);
        return;
    }
    maybe_step(state_of(r));
}

void snap_recv_tick(struct node *n)
{
    struct snap_recv *r = n->recv;
    if (r && !r->stepped && node_now_ms(n) - r->progress_ms > ASPEN_SNAPSHOT_STALL_MS)
        recv_end(n, ASPEN_E_TIMEOUT, true);
}

/* ---- the protocol ---- */

static void on_frame(void *ctx, const uint8_t pk[NET_KEY_BYTES], struct slice frame)
{
    struct node *n = ctx;
    if (!n->raft || n->stopping)
        return;
    const struct member_info *from = members_find_pk(n, pk);
    if (!from)
        return; /* trusted a moment ago, removed since */
    struct snap_frame f;
    int rc = snap_frame_decode(frame, &f);
    if (rc) {
        LOG_WARN("node", "undecodable snapshot frame dropped", "from=%s reason=%s", from->name,
                 aspen_err_name(rc));
        return;
    }
    switch (f.type) {
    case SNAP_CHUNK:
        on_chunk(n, from, &f);
        return;
    case SNAP_DONE:
        on_done(n, from, &f);
        return;
    case SNAP_ABORT:
        if (is_current(n, pk, f.id) && !n->recv->stepped)
            recv_end(n, f.code ? f.code : ASPEN_E_CANCELED, false);
        return;
    case SNAP_ACK:
        snap_send_on_ack(n, pk, &f);
        return;
    default:
        snap_send_on_result(n, pk, &f);
        return;
    }
}

static void on_writable(void *ctx, const uint8_t pk[NET_KEY_BYTES])
{
    snap_send_on_writable(ctx, pk);
}

static void on_peer_down(void *ctx, const uint8_t pk[NET_KEY_BYTES], int reason)
{
    snap_send_on_peer_down(ctx, pk, reason);
}

int snap_register(struct node *n)
{
    struct net_handlers h = {
        .ctx = n, .on_frame = on_frame, .on_writable = on_writable, .on_peer_down = on_peer_down};
    return net_register_protocol(&n->net, NET_ALPN_SNAP, &h);
}

/* ---- installing (storage thread) ---- */

static int read_exact(int fd, uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t got = read(fd, p, len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return ASPEN_E_IO;
        if (got == 0)
            return ASPEN_E_TRUNCATED;
        p += got;
        len -= (size_t)got;
    }
    return 0;
}

int snap_install_spool(struct store_txn *t, const char *path, const struct raft_snapshot_meta *want)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        LOG_ERROR("node", "cannot open the snapshot spool", "path=%s err=\"%s\"", path,
                  strerror(errno));
        return ASPEN_E_IO;
    }
    uint8_t *chunk = mem_alloc(ASPEN_SNAPSHOT_CHUNK_MAX_BYTES);
    struct kv_snapshot_reader rd;
    int rc = chunk ? kv_snapshot_reader_begin(&rd, t) : ASPEN_E_NOMEM;
    while (!rc) {
        uint8_t len_be[4];
        ssize_t got;
        do
            got = read(fd, len_be, 1);
        while (got < 0 && errno == EINTR);
        if (got == 0)
            break; /* the end of the spool, between chunks */
        if (got < 0) {
            rc = ASPEN_E_IO;
            break;
        }
        rc = read_exact(fd, len_be + 1, 3);
        uint32_t len = be32_load(len_be);
        if (!rc && len > ASPEN_SNAPSHOT_CHUNK_MAX_BYTES)
            rc = ASPEN_E_MALFORMED;
        if (!rc)
            rc = read_exact(fd, chunk, len);
        if (!rc)
            rc = kv_snapshot_reader_chunk(&rd, slice_make(chunk, len));
    }
    struct raft_snapshot_meta got_meta;
    if (!rc)
        rc = kv_snapshot_reader_end(&rd, &got_meta);
    if (!rc && !snap_meta_equal(&got_meta, want))
        rc = ASPEN_E_CORRUPT;
    mem_free(chunk);
    close(fd);
    return rc;
}
