/*
 * The raft shell of the production node: what raft.h's contract asks of the caller,
 * done with the committer (storage thread) and the peer transport (loop).
 *
 * Every update that has anything durable becomes ONE storage job: the log change, the
 * hard state and the KV apply of the entries it hands out as committed, in one write
 * transaction with one fsync (the single-fsync rule, docs/ARCHITECTURE.md). The job owns
 * copies of everything, because the update is the core's only until the next step. Jobs
 * run in submission order, so updates are persisted in order (contract rule 4) and a
 * job's apply sees exactly the state after every earlier job.
 *
 * Messages: those the core marks `after_persist` (votes, append acknowledgements) ride in
 * the job and leave when it is durable; the others leave at once — the leader's appends
 * overlap its own disk write (thesis §10.2.1).
 *
 * Completion runs on the loop: send the held messages, step PERSISTED, publish the new
 * applied index, answer the clients whose entries applied (matched by index AND term: a
 * different term at that index means the proposal was overwritten after a leader change,
 * raft.h), serve reads whose read index is now applied, and reload the member table when
 * a registry command applied.
 *
 * A storage failure is fatal: after a failed fsync the page cache state is undefined
 * (fsyncgate), so the process stops and restarts from what is durable.
 */
#include "node/internal.h"

#include "base/assert.h"
#include "base/log.h"
#include "raft/codec.h"
#include "storage/raftlog.h"

#include <aspen/error.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- waiter lists ---- */

static struct waiter_list *list_of(struct node *n, const struct node_waiter *w)
{
    return w->kind == WAITER_READ      ? &n->reads
           : w->kind == WAITER_FORWARD ? &n->forwards
                                       : &n->proposals;
}

static void wl_push(struct waiter_list *l, struct node_waiter *w)
{
    if (!l->head.next) {
        l->head.next = l->head.prev = &l->head;
    }
    w->prev = l->head.prev;
    w->next = &l->head;
    l->head.prev->next = w;
    l->head.prev = w;
    l->n++;
}

static void wl_remove(struct waiter_list *l, struct node_waiter *w)
{
    w->prev->next = w->next;
    w->next->prev = w->prev;
    w->prev = w->next = NULL;
    l->n--;
}

static struct node_waiter *wl_first(struct waiter_list *l)
{
    if (!l->head.next || l->head.next == &l->head)
        return NULL;
    return l->head.next;
}

static struct node_waiter *wl_next(struct waiter_list *l, struct node_waiter *w)
{
    return w->next == &l->head ? NULL : w->next;
}

static void waiter_finish(struct node *n, struct node_waiter *w, int rc,
                          const struct kv_result *res, raft_index index)
{
    wl_remove(list_of(n, w), w);
    w->done(w, rc, res, index);
}

void shell_forget(struct node *n, struct node_waiter *w)
{
    if (w->prev)
        wl_remove(list_of(n, w), w);
}

void shell_waiter_push(struct node *n, struct node_waiter *w)
{
    wl_push(list_of(n, w), w);
}

void shell_waiter_finish(struct node *n, struct node_waiter *w, int rc, const struct kv_result *res,
                         raft_index index)
{
    waiter_finish(n, w, rc, res, index);
}

struct node_waiter *shell_forward_find(struct node *n, uint64_t id)
{
    for (struct node_waiter *w = wl_first(&n->forwards); w; w = wl_next(&n->forwards, w))
        if (w->read_ctx == id)
            return w;
    return NULL;
}

void shell_forward_proposed(struct node *n, struct node_waiter *w, raft_index index, raft_term term)
{
    wl_remove(&n->forwards, w);
    w->kind = WAITER_PROPOSAL;
    w->index = index;
    w->term = term;
    wl_push(&n->proposals, w);
}

void shell_fail_all(struct node *n, int rc)
{
    struct node_waiter *w;
    while ((w = wl_first(&n->proposals)))
        waiter_finish(n, w, rc, NULL, 0);
    while ((w = wl_first(&n->reads)))
        waiter_finish(n, w, rc, NULL, 0);
    while ((w = wl_first(&n->forwards)))
        waiter_finish(n, w, rc, NULL, 0);
}

void shell_expire(struct node *n)
{
    uint64_t now = node_now_ms(n);
    struct waiter_list *lists[3] = {&n->proposals, &n->reads, &n->forwards};
    for (int i = 0; i < 3; i++) {
        struct node_waiter *w = wl_first(lists[i]);
        while (w) {
            struct node_waiter *next = wl_next(lists[i], w);
            if (w->deadline_ms <= now)
                waiter_finish(n, w, ASPEN_E_TIMEOUT, NULL, 0);
            w = next;
        }
    }
}

static void serve_reads(struct node *n)
{
    struct node_waiter *w = wl_first(&n->reads);
    while (w) {
        struct node_waiter *next = wl_next(&n->reads, w);
        if (w->ready && w->index <= n->applied)
            waiter_finish(n, w, 0, NULL, w->index);
        w = next;
    }
}

/* ---- messages ---- */

static void send_frame(struct node *n, raft_id to, struct slice frame)
{
    const struct member_info *m = members_find(n, to);
    if (!m) {
        n->m.msgs_dropped->value++;
        LOG_DEBUG("node", "message to unknown member dropped", "to=%016" PRIx64, to);
        return;
    }
    int rc = net_send(&n->net, m->pk, NET_ALPN_RAFT, frame);
    if (rc) {
        /* Raft resends what matters (heartbeats, probes); a full queue means the peer is
         * slow or gone. */
        n->m.msgs_dropped->value++;
        LOG_DEBUG("node", "message dropped", "to=%s reason=%s", m->name, aspen_err_name(rc));
        return;
    }
    n->m.msgs_sent->value++;
}

static void send_now(struct node *n, const struct raft_msg *m, struct buf *scratch)
{
    if (m->type == RAFT_MSG_SNAPSHOT) {
        /* The follower is behind the leader's compacted log: the state machine travels
         * on the snapshot protocol, this message last (node/snap.h). */
        snap_send_start(n, m);
        return;
    }
    buf_clear(scratch);
    int rc = raft_msg_encode(m, scratch);
    if (rc) {
        LOG_ERROR("node", "cannot encode a raft message", "type=%u reason=%s", m->type,
                  aspen_err_name(rc));
        return;
    }
    send_frame(n, m->to, buf_slice(scratch));
}

/* ---- jobs ---- */

static void job_free(struct persist_job *j)
{
    if (!j)
        return;
    mem_free(j->entries);
    mem_free(j->committed);
    mem_free(j->msgs);
    buf_release(&j->data);
    buf_release(&j->msg_bytes);
    arena_release(&j->arena);
    mem_free(j->results);
    mem_free(j->install_path);
    mem_free(j);
}

static struct persist_job *job_new(struct node *n)
{
    struct persist_job *j = mem_calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->n = n;
    buf_init(&j->data, ASPEN_STORAGE_MAX_BATCH_BYTES);
    buf_init(&j->msg_bytes, ASPEN_STORAGE_MAX_BATCH_BYTES);
    arena_init(&j->arena, 16 * ASPEN_KIB, 64 * ASPEN_MIB);
    return j;
}

/* Copies entries with their data into the job; *out is an owned array. */
static int copy_entries(struct persist_job *j, const struct raft_entry *src, size_t n,
                        struct raft_entry **out)
{
    if (n == 0)
        return 0;
    struct raft_entry *v = mem_calloc(n, sizeof(*v));
    if (!v)
        return ASPEN_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        v[i] = src[i];
        v[i].data = NULL;
        if (src[i].len) {
            /* Offsets first: the buffer may move while it grows. */
            v[i].data = (uint8_t *)(uintptr_t)(j->data.len + 1);
            int rc = buf_append(&j->data, src[i].data, src[i].len);
            if (rc) {
                mem_free(v);
                return rc;
            }
        }
    }
    *out = v;
    return 0;
}

static void fix_pointers(struct persist_job *j, struct raft_entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].len)
            v[i].data = j->data.data + ((uintptr_t)v[i].data - 1);
}

static bool is_cluster_kind(uint8_t kind)
{
    return kind >= KV_CMD_CLUSTER_INIT && kind <= KV_CMD_MEMBER_JOIN;
}

/* Storage thread: the job's writes, in one transaction with the rest of the batch. */
static int job_run(struct store_txn *t, void *ctx)
{
    struct persist_job *j = ctx;
    arena_reset(&j->arena);
    j->cluster_changed = false;
    int rc = 0;
    bool done = true;
    if (j->has_install) {
        /* Contract rule 3: the snapshot first, then the log change and the hard state.
         * The spool was checked as it arrived; a failure here is the disk's. */
        rc = snap_install_spool(t, j->install_path, &j->install);
        if (!rc)
            rc = raftlog_install_snapshot(t, &j->install);
        if (!rc)
            rc = raftlog_compact(t, j->install.index, &done);
        j->compact_more = !done;
        j->cluster_changed = true;
    }
    if (!rc && j->compact_upto) {
        rc = raftlog_compact(t, j->compact_upto, &done);
        j->compact_more = !done;
    }
    if (!rc && j->n_entries)
        rc = raftlog_append(t, j->entries, j->n_entries);
    if (!rc && j->has_hs)
        rc = raftlog_set_hard_state(t, &j->hs);
    for (size_t i = 0; !rc && i < j->n_committed; i++) {
        rc = kv_apply(t, &j->committed[i], &j->arena, &j->results[i], NULL);
        if (!rc && j->results[i].rc == 0 && is_cluster_kind(j->results[i].kind))
            j->cluster_changed = true;
    }
    if (!rc && j->has_save) {
        rc = raftlog_install_snapshot(t, &j->save);
        if (!rc)
            rc = raftlog_compact(t, j->save.index, &done);
        j->compact_more = !done;
    }
    return rc;
}

static void resolve_proposals(struct node *n, struct persist_job *j)
{
    if (!j->n_committed)
        return;
    raft_index lo = j->committed[0].index, hi = j->committed[j->n_committed - 1].index;
    struct node_waiter *w = wl_first(&n->proposals);
    while (w) {
        struct node_waiter *next = wl_next(&n->proposals, w);
        if (w->index <= hi) {
            if (w->index >= lo && j->committed[w->index - lo].term == w->term)
                waiter_finish(n, w, 0, &j->results[w->index - lo], w->index);
            else /* overwritten by another leader's entry: it will never apply */
                waiter_finish(n, w, ASPEN_E_NOT_LEADER, NULL, 0);
        }
        w = next;
    }
}

static void submit(struct node *n, struct persist_job *j);

/* Drops the log behind `upto` in bounded steps, one job each. */
static void compact_later(struct node *n, raft_index upto)
{
    struct persist_job *c = job_new(n);
    if (!c)
        return; /* the next snapshot's compaction covers it */
    c->compact_upto = upto;
    submit(n, c);
}

/* Proposals whose entries a snapshot install covered: their outcome is unknown here. */
static void fail_covered(struct node *n, raft_index upto)
{
    struct node_waiter *w = wl_first(&n->proposals);
    while (w) {
        struct node_waiter *next = wl_next(&n->proposals, w);
        if (w->index <= upto)
            waiter_finish(n, w, ASPEN_E_TIMEOUT, NULL, 0);
        w = next;
    }
}

/* Loop: the job is durable (rc 0). */
static void job_done(void *ctx, int rc)
{
    struct persist_job *j = ctx;
    struct node *n = j->n;
    ASPEN_ASSERT(n->inflight_head == j);
    n->inflight_head = j->next_inflight;
    if (!n->inflight_head)
        n->inflight_tail = NULL;
    n->inflight--;
    if (rc) {
        LOG_ERROR("node", "storage write failed; stopping (restart recovers from disk)",
                  "reason=%s", aspen_err_name(rc));
        abort();
    }
    n->m.jobs->value++;
    if (j->job.batch_jobs) { /* the batch's first job carries its commit's figures */
        metrics_histogram_observe(n->m.commit_seconds, (double)j->job.commit_ns / 1e9);
        metrics_histogram_observe(n->m.batch_jobs, (double)j->job.batch_jobs);
    }
    for (size_t i = 0; i < j->n_msgs; i++)
        send_frame(n, j->msgs[i].to,
                   slice_make(j->msg_bytes.data + j->msgs[i].off, j->msgs[i].len));
    if (j->has_install) {
        n->applied = j->install.index;
        fail_covered(n, j->install.index);
    }
    if (j->n_committed)
        n->applied = j->committed[j->n_committed - 1].index;
    /* The member table first: a join's answer lists the member it just recorded. */
    if (j->cluster_changed && (rc = members_reload(n)))
        LOG_ERROR("node", "cannot reload the member table", "reason=%s", aspen_err_name(rc));
    resolve_proposals(n, j);
    if (j->must_persist && n->raft) {
        struct raft_event ev = {.type = RAFT_EVENT_PERSISTED};
        ev.u.persisted.index = j->persist_index;
        ev.u.persisted.term = j->persist_term;
        (void)shell_step(n, &ev, NULL);
    }
    if (j->has_save)
        n->saving_snapshot = false;
    if (j->has_save && n->raft && j->save.index >= n->snapshot_index) {
        /* (An install queued after this save may already have moved past it.) */
        n->snapshot_index = j->save.index;
        struct raft_event ev = {.type = RAFT_EVENT_SNAPSHOT_TAKEN};
        ev.u.taken = &j->save;
        rc = shell_step(n, &ev, NULL);
        LOG_INFO("node", "snapshot taken", "index=%" PRIu64 " term=%" PRIu64 " rc=%s",
                 j->save.index, j->save.term, rc ? aspen_err_name(rc) : "ok");
    }
    if (j->compact_more && n->raft)
        compact_later(n, j->has_install ? j->install.index
                         : j->has_save  ? j->save.index
                                        : j->compact_upto);
    if (j->has_install)
        snap_recv_finish(n, 0);
    serve_reads(n);
    job_free(j);
}

static void submit(struct node *n, struct persist_job *j)
{
    j->job = (struct store_job){.run = job_run,
                                .done = job_done,
                                .ctx = j,
                                .n_entries = (uint32_t)(j->n_entries + j->n_committed),
                                .n_bytes = j->data.len};
    int rc = committer_submit(n->committer, &j->job);
    if (rc) {
        /* The contract leaves no way to drop an update; back-pressure keeps the queue
         * far from its bound, so this is a bug or a stopped committer. */
        LOG_ERROR("node", "cannot queue a storage job; stopping", "reason=%s", aspen_err_name(rc));
        abort();
    }
    if (n->inflight_tail)
        n->inflight_tail->next_inflight = j;
    else
        n->inflight_head = j;
    n->inflight_tail = j;
    n->inflight++;
}

static void take_snapshot(struct node *n)
{
    if (n->saving_snapshot || n->handed_applied <= n->snapshot_index || n->handed_term == 0)
        return;
    struct persist_job *j = job_new(n);
    if (!j)
        return;
    /* Jobs run in order, so this one sees exactly the state after the last committed
     * entry handed out, and the configuration in force there is the core's current one
     * (raft.h: configurations take effect as they are handed out). */
    j->has_save = true;
    j->save.index = n->handed_applied;
    j->save.term = n->handed_term;
    j->save.config = *raft_config(n->raft);
    n->saving_snapshot = true;
    submit(n, j);
}

void shell_snapshot_now(struct node *n)
{
    take_snapshot(n);
}

/* ---- configurations by index (for snapshots sent at the durable applied index) ---- */

static void conf_push(struct node *n, raft_index index)
{
    /* Keep the newest point at or below the durable applied index, and all after it. */
    while (n->n_conf_hist >= 2 && n->conf_hist[1].index <= n->applied) {
        memmove(&n->conf_hist[0], &n->conf_hist[1], (n->n_conf_hist - 1) * sizeof(n->conf_hist[0]));
        n->n_conf_hist--;
    }
    if (n->n_conf_hist == NODE_CONF_HISTORY) {
        /* Many changes not yet durable: forget the oldest; a snapshot that needed it
         * fails to start and the core asks again. */
        memmove(&n->conf_hist[0], &n->conf_hist[1], (n->n_conf_hist - 1) * sizeof(n->conf_hist[0]));
        n->n_conf_hist--;
    }
    n->conf_hist[n->n_conf_hist].index = index;
    n->conf_hist[n->n_conf_hist].config = *raft_config(n->raft);
    n->n_conf_hist++;
}

void shell_config_reset(struct node *n, raft_index index)
{
    n->n_conf_hist = 0;
    conf_push(n, index);
}

int shell_config_at(const struct node *n, raft_index index, struct raft_config *out)
{
    for (size_t i = n->n_conf_hist; i-- > 0;) {
        if (n->conf_hist[i].index <= index) {
            *out = n->conf_hist[i].config;
            return 0;
        }
    }
    return ASPEN_E_NOT_FOUND;
}

/* ---- processing an update ---- */

static void process(struct node *n, const struct raft_update *u)
{
    if (u->role != n->role || u->term != n->term || u->leader != n->leader) {
        if (u->leader != n->leader)
            n->m.leader_changes_seen->value++;
        if (u->role != n->role || u->leader != n->leader) {
            const struct member_info *lm = members_find(n, u->leader);
            LOG_INFO("node", "raft state", "role=%s term=%" PRIu64 " leader=%s",
                     u->role == RAFT_LEADER          ? "leader"
                     : u->role == RAFT_CANDIDATE     ? "candidate"
                     : u->role == RAFT_PRE_CANDIDATE ? "pre-candidate"
                                                     : "follower",
                     u->term, lm ? lm->name : (u->leader ? "?" : "none"));
        }
        if (u->role == RAFT_LEADER && n->role != RAFT_LEADER)
            n->n_learner_track = 0;
        if (u->role != RAFT_LEADER && n->role == RAFT_LEADER)
            snap_send_cancel_all(n, ASPEN_E_NOT_LEADER);
        n->role = u->role;
        n->term = u->term;
        n->leader = u->leader;
    }

    bool held = false;
    for (size_t i = 0; i < u->n_msgs; i++)
        held |= u->msgs[i].after_persist;
    bool need_job = u->must_persist || u->n_entries || u->hard_state_changed || u->n_committed ||
                    held || u->has_snapshot;

    struct buf scratch;
    buf_init(&scratch, ASPEN_PEER_MAX_FRAME_BYTES);
    struct persist_job *j = NULL;
    if (need_job) {
        j = job_new(n);
        int rc = j ? 0 : ASPEN_E_NOMEM;
        if (!rc)
            rc = copy_entries(j, u->entries, u->n_entries, &j->entries);
        if (!rc)
            rc = copy_entries(j, u->committed, u->n_committed, &j->committed);
        if (!rc && u->n_committed) {
            j->results = mem_calloc(u->n_committed, sizeof(*j->results));
            rc = j->results ? 0 : ASPEN_E_NOMEM;
        }
        if (!rc && held) {
            j->msgs = mem_calloc(u->n_msgs, sizeof(*j->msgs));
            rc = j->msgs ? 0 : ASPEN_E_NOMEM;
        }
        if (rc) {
            LOG_ERROR("node", "out of memory building a storage job; stopping", "");
            abort();
        }
        j->n_entries = u->n_entries;
        j->n_committed = u->n_committed;
        fix_pointers(j, j->entries, j->n_entries);
        fix_pointers(j, j->committed, j->n_committed);
        j->has_hs = u->hard_state_changed;
        j->hs = u->hard_state;
        if (u->has_snapshot) {
            /* Only a stream received whole and stepped by snap_recv.c installs: raft
             * frames carrying a SNAPSHOT are dropped on arrival. */
            struct snap_recv *r = n->recv;
            const char *path = snap_recv_spool_path(n);
            ASPEN_ASSERT(r && r->stepped && !r->install_queued && path &&
                         snap_meta_equal(&r->msg.snapshot, &u->snapshot));
            j->install_path = mem_alloc(strlen(path) + 1);
            if (!j->install_path) {
                LOG_ERROR("node", "out of memory building a storage job; stopping", "");
                abort();
            }
            memcpy(j->install_path, path, strlen(path) + 1);
            j->has_install = true;
            j->install = u->snapshot;
            r->install_queued = true;
            n->handed_applied = u->snapshot.index;
            n->handed_term = u->snapshot.term;
            if (n->snapshot_index < u->snapshot.index)
                n->snapshot_index = u->snapshot.index;
            shell_config_reset(n, u->snapshot.index);
        }
        j->must_persist = u->must_persist;
        j->persist_index = u->persist_index;
        j->persist_term = u->persist_term;
        if (u->n_committed) {
            n->handed_applied = u->committed[u->n_committed - 1].index;
            n->handed_term = u->committed[u->n_committed - 1].term;
            if (u->config_changed)
                conf_push(n, n->handed_applied);
        }
    }
    for (size_t i = 0; i < u->n_msgs; i++) {
        const struct raft_msg *m = &u->msgs[i];
        if (!m->after_persist) {
            send_now(n, m, &scratch);
            continue;
        }
        size_t off = j->msg_bytes.len;
        int rc = raft_msg_encode(m, &j->msg_bytes);
        if (rc) {
            LOG_ERROR("node", "cannot encode a raft message", "reason=%s", aspen_err_name(rc));
            continue;
        }
        j->msgs[j->n_msgs++] =
            (struct out_msg){.to = m->to, .off = off, .len = j->msg_bytes.len - off};
    }
    buf_release(&scratch);
    if (j)
        submit(n, j);

    for (size_t i = 0; i < u->n_reads; i++) {
        const struct raft_read_state *rs = &u->reads[i];
        for (struct node_waiter *w = wl_first(&n->reads); w; w = wl_next(&n->reads, w)) {
            if (w->read_ctx != rs->ctx)
                continue;
            if (rs->err) {
                waiter_finish(n, w, rs->err, NULL, 0);
            } else {
                w->ready = true;
                w->index = rs->index;
            }
            break;
        }
    }
    serve_reads(n);
    if (u->want_snapshot)
        take_snapshot(n);
}

/* Steps the transfer outcomes queued during a step, each with its own update. */
static void drain_snap_status(struct node *n)
{
    while (n->n_snap_status && n->raft) {
        struct raft_event sev = {.type = RAFT_EVENT_SNAPSHOT_STATUS};
        sev.u.snapshot_status.node = n->snap_status[0].to;
        sev.u.snapshot_status.ok = n->snap_status[0].ok;
        n->n_snap_status--;
        memmove(&n->snap_status[0], &n->snap_status[1],
                n->n_snap_status * sizeof(n->snap_status[0]));
        const struct raft_update *su = NULL;
        (void)raft_step(n->raft, &sev, &su);
        process(n, su);
    }
}

void shell_snapshot_status(struct node *n, raft_id to, bool ok)
{
    if (!n->raft)
        return;
    if (n->n_snap_status < NODE_MAX_SNAP_STATUS) {
        n->snap_status[n->n_snap_status].to = to;
        n->snap_status[n->n_snap_status].ok = ok;
        n->n_snap_status++;
    }
    /* (A full queue drops an outcome: the core's own snapshot timeout recovers.) */
    if (!n->in_step) {
        n->in_step = true;
        drain_snap_status(n);
        n->in_step = false;
    }
}

int shell_step(struct node *n, const struct raft_event *ev, raft_id *hint)
{
    if (!n->raft)
        return ASPEN_E_CLOSED;
    ASPEN_ASSERT(!n->in_step); /* the update of the running step would be overwritten */
    n->in_step = true;
    const struct raft_update *u = NULL;
    int rc = raft_step(n->raft, ev, &u);
    ASPEN_ASSERT(u != NULL);
    n->last_proposed_index = u->proposed_index;
    n->last_proposed_term = u->proposed_term;
    if (hint)
        *hint = u->leader;
    /* Even a refused event's update must be processed (raft.h). */
    process(n, u);
    drain_snap_status(n);
    n->in_step = false;
    return rc;
}

/* ---- completions ---- */

void shell_deliver(void *ctx, struct store_job *batch)
{
    struct node *n = ctx;
    struct store_job *last = batch;
    while (last->next)
        last = last->next;
    pthread_mutex_lock(&n->done_mu);
    if (n->done_tail)
        n->done_tail->next = batch;
    else
        n->done_head = batch;
    n->done_tail = last;
    pthread_mutex_unlock(&n->done_mu);
    uv_async_send(&n->completions);
}

void shell_on_completions(uv_async_t *h)
{
    struct node *n = h->data;
    pthread_mutex_lock(&n->done_mu);
    struct store_job *batch = n->done_head;
    n->done_head = n->done_tail = NULL;
    pthread_mutex_unlock(&n->done_mu);
    if (batch)
        committer_complete(batch);
}

/* ---- frames from peers ---- */

/* Incoming frames are dropped while this many jobs wait for the disk (raft resends):
 * the same back-pressure the simulator's shell applies. */
#define SHELL_MAX_INFLIGHT_JOBS (ASPEN_STORAGE_MAX_QUEUED_JOBS / 4)

void shell_on_frame(void *ctx, const uint8_t pk[NET_KEY_BYTES], struct slice frame)
{
    struct node *n = ctx;
    if (!n->raft || n->stopping)
        return;
    const struct member_info *from = members_find_pk(n, pk);
    if (!from)
        return; /* trusted a moment ago, removed since */
    if (forward_is_frame(frame)) {
        forward_on_frame(n, from, frame);
        return;
    }
    n->m.msgs_received->value++;
    if (n->inflight >= SHELL_MAX_INFLIGHT_JOBS) {
        n->m.msgs_dropped->value++;
        return;
    }
    struct arena a;
    arena_init(&a, 4 * ASPEN_KIB, ASPEN_PEER_MAX_FRAME_BYTES);
    struct raft_msg m;
    int rc = raft_msg_decode(frame.ptr, frame.len, &m, &a);
    if (rc) {
        LOG_WARN("node", "undecodable raft frame dropped", "from=%s reason=%s", from->name,
                 aspen_err_name(rc));
    } else if (m.from != from->id || m.to != n->id.raft_id) {
        LOG_WARN("node", "misaddressed raft frame dropped",
                 "from=%s claims=%016" PRIx64 " to=%016" PRIx64, from->name, m.from, m.to);
    } else if (m.type == RAFT_MSG_SNAPSHOT) {
        /* A snapshot's message arrives only at the end of its stream (node/snap.h); one
         * without the data would install a state this node does not hold. */
        LOG_WARN("node", "raft frame with a snapshot message dropped", "from=%s", from->name);
    } else {
        if (m.type == RAFT_MSG_APPEND_RESP && !m.reject && n->role == RAFT_LEADER)
            members_on_ack(n, m.from, m.index);
        struct raft_event ev = {.type = RAFT_EVENT_RECEIVE};
        ev.u.msg = &m;
        (void)shell_step(n, &ev, NULL);
    }
    arena_release(&a);
}

/* ---- client requests ---- */

static int admit(struct node *n, raft_id *hint)
{
    if (n->stopping || !n->raft)
        return ASPEN_E_CLOSED;
    if (n->role != RAFT_LEADER) {
        if (hint)
            *hint = n->leader;
        return ASPEN_E_NOT_LEADER;
    }
    if (n->inflight >= SHELL_MAX_INFLIGHT_JOBS || n->proposals.n >= ASPEN_NODE_MAX_PENDING)
        return ASPEN_E_BUSY;
    return 0;
}

static int after_propose(struct node *n, int rc, struct node_waiter *w, uint64_t timeout_ms)
{
    if (rc)
        return rc;
    w->kind = WAITER_PROPOSAL;
    w->index = n->last_proposed_index;
    w->term = n->last_proposed_term;
    w->deadline_ms = node_now_ms(n) + timeout_ms;
    n->m.proposals->value++;
    wl_push(&n->proposals, w);
    return 0;
}

int shell_propose_unwaited(struct node *n, struct slice cmd, raft_id *hint)
{
    int rc = admit(n, hint);
    if (rc)
        return rc;
    if (cmd.len > ASPEN_MAX_REQUEST_BYTES)
        return ASPEN_E_TOO_LARGE;
    struct raft_proposal p = {.data = cmd.ptr, .len = (uint32_t)cmd.len};
    struct raft_event ev = {.type = RAFT_EVENT_PROPOSE};
    ev.u.propose.items = &p;
    ev.u.propose.n = 1;
    rc = shell_step(n, &ev, hint);
    if (rc)
        n->m.proposals_failed->value++;
    return rc;
}

int shell_propose(struct node *n, struct slice cmd, struct node_waiter *w, uint64_t timeout_ms,
                  raft_id *hint)
{
    if (n->stopping || !n->raft)
        return ASPEN_E_CLOSED;
    if (cmd.len > ASPEN_MAX_REQUEST_BYTES)
        return ASPEN_E_TOO_LARGE;
    if (n->role != RAFT_LEADER)
        return forward_propose(n, cmd, w, timeout_ms, hint); /* one hop to the leader */
    int rc = shell_propose_unwaited(n, cmd, hint);
    return after_propose(n, rc, w, timeout_ms);
}

int shell_conf_change(struct node *n, const struct raft_conf_change *cc, struct node_waiter *w,
                      uint64_t timeout_ms, raft_id *hint)
{
    int rc = admit(n, hint);
    if (rc)
        return rc;
    struct raft_event ev = {.type = RAFT_EVENT_CONF_CHANGE};
    ev.u.conf = cc;
    rc = shell_step(n, &ev, hint);
    return after_propose(n, rc, w, timeout_ms);
}

int shell_read(struct node *n, struct node_waiter *w, uint64_t timeout_ms, raft_id *hint)
{
    if (n->stopping || !n->raft)
        return ASPEN_E_CLOSED;
    if (n->reads.n >= ASPEN_NODE_MAX_PENDING)
        return ASPEN_E_BUSY;
    w->kind = WAITER_READ;
    w->ready = false;
    w->index = 0;
    w->read_ctx = ++n->next_read_ctx;
    w->deadline_ms = node_now_ms(n) + timeout_ms;
    wl_push(&n->reads, w);
    n->m.reads->value++;
    struct raft_event ev = {.type = RAFT_EVENT_READ};
    ev.u.read_ctx = w->read_ctx;
    int rc = shell_step(n, &ev, hint);
    if (rc && !w->prev)
        return 0; /* already answered through the update: done() has run */
    if (rc)
        wl_remove(&n->reads, w);
    return rc;
}
