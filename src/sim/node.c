/*
 * The shell around one simulated node's raft core: it does what a production node does
 * with each update (raft.h's contract), against the simulated disk and network.
 *
 * For every update: install a received snapshot, change the log, apply committed
 * entries to the live state machine, and turn everything that must be durable into ONE
 * pending atomic write (disk.h); send the messages that may go at once; hold the
 * after_persist messages in that write until it completes; on completion step PERSISTED
 * and answer the clients whose writes it applied. Reads wait until the live state
 * machine has applied their read index. A want_snapshot becomes a snapshot-save write;
 * SNAPSHOT_TAKEN is stepped once it is durable.
 *
 * Alongside, the shell keeps a "live log" of (term, chain hash) per index — the chain
 * hash covers the whole prefix — and feeds every append, truncation and apply to the
 * checker (check.c).
 */
#include "sim/cluster.h"

#include "base/assert.h"
#include "base/buf.h"
#include "base/mem.h"
#include "raft/codec.h"
#include "sim/packet.h"
#include "sim/stream.h"

#include <aspen/error.h>
#include <inttypes.h>
#include <string.h>

/* ---- live log ---- */

static raft_index live_last(const struct live_log *l)
{
    return l->base + l->n;
}

bool live_log_term(const struct live_log *l, raft_index index, raft_term *term)
{
    if (index == l->base) {
        *term = l->base_term;
        return true;
    }
    if (index < l->base || index > live_last(l))
        return false;
    *term = l->v[index - l->base - 1].term;
    return true;
}

static uint64_t live_chain(const struct live_log *l, raft_index index)
{
    return index == l->base ? l->base_chain : l->v[index - l->base - 1].chain;
}

static int live_push(struct live_log *l, raft_term term, uint64_t chain)
{
    int rc = mem_grow(&l->v, &l->cap, l->n, sizeof(*l->v), 64, ASPEN_SIM_MAX_LOG_ENTRIES);
    if (rc)
        return rc;
    l->v[l->n++] = (struct live_ent){.term = term, .chain = chain};
    return 0;
}

static void live_reset(struct live_log *l, raft_index base, raft_term term, uint64_t chain)
{
    l->base = base;
    l->base_term = term;
    l->base_chain = chain;
    l->n = 0;
}

/* Forgets indexes below `index`, which becomes the base. */
static void live_compact(struct live_log *l, raft_index index)
{
    if (index <= l->base || index > live_last(l))
        return;
    size_t drop = index - l->base;
    struct live_ent at = l->v[drop - 1];
    memmove(l->v, l->v + drop, (l->n - drop) * sizeof(*l->v));
    l->n -= drop;
    l->base = index;
    l->base_term = at.term;
    l->base_chain = at.chain;
}

void live_log_release(struct live_log *l)
{
    mem_free(l->v);
    *l = (struct live_log){0};
}

static uint64_t entry_hash(const struct raft_entry *e)
{
    uint64_t h = sim_hash_u64(sim_hash_u64(e->term, e->index), e->type);
    return sim_hash(h, e->data, e->len);
}

static uint64_t chain_next(uint64_t prev, const struct raft_entry *e)
{
    return sim_hash_u64(prev, entry_hash(e));
}

/* ---- snapshots held by the shell ---- */

static void snap_clear(struct snap_copy *c)
{
    mem_free(c->blob);
    *c = (struct snap_copy){0};
}

static int snap_set(struct snap_copy *c, const struct raft_snapshot_meta *meta, const uint8_t *blob,
                    size_t len)
{
    uint8_t *copy = NULL;
    if (len) {
        copy = mem_alloc(len);
        if (!copy)
            return ASPEN_E_NOMEM;
        memcpy(copy, blob, len);
    }
    snap_clear(c);
    c->meta = *meta;
    c->blob = copy;
    c->len = len;
    c->valid = true;
    return 0;
}

/* ---- lifecycle ---- */

/* Drops the events held for a paused node; s is NULL at teardown (no accounting). */
static void free_deferred(struct sim *s, struct sim_node *n)
{
    for (size_t i = 0; i < n->n_deferred; i++) {
        const struct sim_event *ev = &n->deferred[i];
        if (ev->kind == EV_DELIVER) {
            if (s)
                net_arrived(&s->net, (uint32_t)ev->a, n->slot);
            packet_free(ev->ptr);
        }
    }
    n->n_deferred = 0;
}

static void forget_memory(struct sim *s, struct sim_node *n)
{
    if (n->raft)
        raft_free(n->raft);
    n->raft = NULL;
    live_log_release(&n->log);
    snap_clear(&n->snap);
    snap_clear(&n->incoming);
    free_deferred(s, n);
    n->n_props = n->n_reads = 0;
    n->saving_snapshot = false;
    n->role = RAFT_FOLLOWER;
    n->term = 0;
    n->leader = 0;
    n->commit = 0;
}

void node_release(struct sim_node *n)
{
    forget_memory(NULL, n);
    mem_free(n->deferred);
    n->deferred = NULL;
    n->cap_deferred = 0;
    disk_release(&n->disk);
    if (n->sm)
        n->sm_ops->free(n->sm);
    n->sm = NULL;
}

void node_stop(struct sim *s, struct sim_node *n)
{
    forget_memory(s, n);
    size_t landed = 0;
    uint64_t lost_before = n->disk.writes_lost;
    int rc = disk_crash(&n->disk, &landed);
    n->up = false;
    n->paused = false;
    n->incarnation++;
    sim_trace(s, TR_CRASH, n, 0, landed, n->disk.writes_lost - lost_before, 0);
    if (rc)
        sim_violation(s, "persistence contract", "n%u: a landed write: %s", n->slot + 1,
                      n->disk.error);
}

int node_start(struct sim *s, struct sim_node *n)
{
    const struct sim_params *p = &s->p;
    struct raft_options o;
    raft_options_default(&o, n->id, rng_as_random(&n->raft_rng));
    o.election_ticks = p->election_ticks;
    o.heartbeat_ticks = p->heartbeat_ticks;
    o.pre_vote = p->pre_vote;
    o.check_quorum = p->check_quorum;
    o.lease_reads = p->lease_reads;
    o.max_msg_entries = p->max_msg_entries;
    o.max_inflight_msgs = p->max_inflight_msgs;
    o.snapshot_threshold = p->snapshot_threshold;
    o.snapshot_keep = p->snapshot_keep;

    struct raft_boot boot;
    disk_boot(&n->disk, &boot);
    int rc = raft_create(&n->raft, &o, &boot);
    if (rc) {
        sim_violation(s, "restart from durable state",
                      "n%u: raft_create refused its own durable state: %s (term %" PRIu64
                      " commit %" PRIu64 " snapshot %" PRIu64 " entries %zu applied %" PRIu64 ")",
                      n->slot + 1, aspen_err_name(rc), boot.hard_state.term, boot.hard_state.commit,
                      boot.snapshot.index, boot.n_entries, boot.applied);
        n->raft = NULL;
        return rc;
    }
    const struct disk_image *im = &n->disk.durable;
    rc = s->sm_ops->copy(n->sm, im->sm);
    if (rc) {
        sim_internal_error(s, rc, "restart: copy the state machine");
        raft_free(n->raft);
        n->raft = NULL;
        return rc;
    }
    n->applied = im->applied;
    uint64_t chain = 0;
    if (im->snap.index && !check_chain_of(&s->chk, im->snap.index, im->snap.term, &chain))
        sim_violation(s, "log matching",
                      "n%u: durable snapshot %" PRIu64 "/%" PRIu64 " of an entry no node ever had",
                      n->slot + 1, im->snap.index, im->snap.term);
    live_reset(&n->log, im->snap.index, im->snap.term, chain);
    for (size_t i = 0; i < im->log.n; i++) {
        const struct raft_entry *e = &im->log.v[i];
        chain = chain_next(chain, e);
        rc = live_push(&n->log, e->term, chain);
        if (rc)
            return rc;
        check_append(s, n, e->index, e->term, chain);
    }
    rc = snap_set(&n->snap, &im->snap, im->snap_blob, im->snap_len);
    if (rc)
        return rc;
    struct raft_status st;
    raft_status(n->raft, &st);
    n->role = st.role;
    n->term = st.hard_state.term;
    n->leader = st.leader;
    n->commit = st.hard_state.commit;
    n->up = true;
    n->paused = false;
    n->incarnation++;
    n->missed_ticks = 0;
    sim_schedule(
        s, &(struct sim_event){.time_ns = s->now_ns + 1 + rng_below(&n->clock_rng, n->tick_ns),
                               .kind = EV_TICK,
                               .node = (uint8_t)n->slot,
                               .incarnation = n->incarnation});
    return 0;
}

/* ---- sending ---- */

static void snapshot_status_later(struct sim *s, uint32_t leader_slot, raft_id target, bool ok,
                                  uint64_t delay_ns)
{
    const struct sim_node *l = &s->nodes[leader_slot];
    if (!l->up)
        return;
    sim_schedule(s, &(struct sim_event){.time_ns = s->now_ns + delay_ns,
                                        .kind = EV_SNAPSHOT_STATUS,
                                        .node = (uint8_t)leader_slot,
                                        .incarnation = l->incarnation,
                                        .a = target,
                                        .flag = ok});
}

/* Routes an owned packet from n; the network or the heap takes it. */
static void route(struct sim *s, struct sim_node *n, struct packet *pk)
{
    raft_id to = packet_to(pk);
    uint8_t type = packet_type(pk);
    uint32_t to_slot = (uint32_t)(to - 1);
    uint64_t when[2];
    uint32_t copies = net_route(&s->net, s->now_ns, n->slot, to_slot, when);
    s->res->msgs_sent++;
    if (copies == 0) {
        s->res->msgs_dropped++;
        sim_trace(s, TR_DROP, n, (uint8_t)to, type, TR_DROP_NET, 0);
        if (type == RAFT_MSG_SNAPSHOT)
            snapshot_status_later(s, n->slot, to, false, s->p.net.delay_mean_ns);
        packet_free(pk);
        return;
    }
    struct packet *copy[2] = {pk, NULL};
    if (copies == 2) {
        int rc = packet_dup(&copy[1], pk); /* before either copy can be damaged */
        if (rc) {
            sim_internal_error(s, rc, "packet_dup");
            net_arrived(&s->net, n->slot, to_slot);
            copies = 1;
        }
    }
    for (uint32_t i = 0; i < copies; i++) {
        bool damaged =
            s->net.p.corrupt_permille && rng_ratio(&s->r_corrupt, s->net.p.corrupt_permille, 1000);
        if (damaged)
            packet_corrupt(copy[i], &s->r_corrupt);
        sim_schedule(s, &(struct sim_event){.time_ns = when[i],
                                            .kind = EV_DELIVER,
                                            .node = (uint8_t)to_slot,
                                            .flag = damaged,
                                            .a = n->slot,
                                            .ptr = copy[i]});
    }
}

/* Packs a message of n's update; NULL after reporting a problem. */
static struct packet *pack(struct sim *s, struct sim_node *n, const struct raft_msg *m)
{
    if (m->to == 0 || m->to > s->p.slots || m->to == n->id || m->from != n->id) {
        sim_violation(s, "message addressing",
                      "n%u sends type %u from %" PRIu64 " to %" PRIu64 " (slots 1..%u)",
                      n->slot + 1, m->type, m->from, m->to, s->p.slots);
        return NULL;
    }
    const uint8_t *blob = NULL;
    size_t blob_len = 0;
    if (m->type == RAFT_MSG_SNAPSHOT) {
        /* The shell moves the data: it must hold the snapshot the core describes. */
        if (!n->snap.valid || n->snap.meta.index != m->snapshot.index ||
            n->snap.meta.term != m->snapshot.term) {
            sim_violation(s, "snapshot contract",
                          "n%u sends snapshot %" PRIu64 "/%" PRIu64 " but the shell holds %" PRIu64
                          "/%" PRIu64,
                          n->slot + 1, m->snapshot.index, m->snapshot.term, n->snap.meta.index,
                          n->snap.meta.term);
            return NULL;
        }
        blob = n->snap.blob;
        blob_len = n->snap.len;
    }
    /* The codec asserts validity when encoding; check first so a bad message from the
     * core is reported with the seed instead of aborting the run. */
    int rc = raft_msg_validate(m);
    if (rc) {
        sim_violation(s, "message encoding", "n%u sends a type %u message the codec refuses: %s",
                      n->slot + 1, m->type, aspen_err_name(rc));
        return NULL;
    }
    struct packet *pk = NULL;
    rc = packet_make(&pk, m, blob, blob_len);
    if (rc) {
        sim_internal_error(s, rc, "packet_make");
        return NULL;
    }
    return pk;
}

/* ---- applying ---- */

static void reply_write(struct sim *s, struct sim_node *n, struct disk_reply *r)
{
    workload_reply(s, n, r->client, r->op_id, r->res.is_op ? REPLY_OK : REPLY_FAILED, r->res.value,
                   r->res.ok, r->index, 0, 0);
}

/* Resolves proposals at e's index (raft.h: a different term there means ours failed). */
static void resolve_proposals(struct sim *s, struct sim_node *n, const struct raft_entry *e,
                              const struct sm_result *res, struct disk_write *w)
{
    for (uint32_t i = 0; i < n->n_props;) {
        struct proposal *pr = &n->props[i];
        if (pr->index > e->index) {
            i++;
            continue;
        }
        struct disk_reply r = {.client = pr->client, .op_id = pr->op_id, .index = e->index};
        if (pr->index == e->index && pr->term == e->term) {
            if (!res->is_op || res->op_id != pr->op_id) {
                sim_violation(s, "log matching",
                              "n%u: proposal op %" PRIu64 " at %" PRIu64 "/%" PRIu64
                              " applied as a different entry",
                              n->slot + 1, pr->op_id, e->index, e->term);
                return;
            }
            r.res = *res;
        } else {
            r.res = (struct sm_result){.is_op = false}; /* definitely not executed */
        }
        w->replies[w->n_replies++] = r;
        n->props[i] = n->props[--n->n_props];
    }
}

static void apply_live(struct sim *s, struct sim_node *n, const struct raft_entry *e,
                       struct disk_write *w)
{
    if (e->index != n->applied + 1) {
        sim_violation(s, "apply order", "n%u applies %" PRIu64 " after %" PRIu64, n->slot + 1,
                      e->index, n->applied);
        return;
    }
    raft_term t;
    if (!live_log_term(&n->log, e->index, &t) || t != e->term) {
        sim_violation(s, "apply from log",
                      "n%u applies %" PRIu64 "/%" PRIu64 " which its log does not hold",
                      n->slot + 1, e->index, e->term);
        return;
    }
    struct sm_result res;
    if (s->sm_ops->apply(n->sm, e, &res)) {
        sim_violation(s, "entry encoding", "n%u: entry %" PRIu64 " does not decode", n->slot + 1,
                      e->index);
        return;
    }
    n->applied = e->index;
    check_apply(s, n, e->index, e->term, live_chain(&n->log, e->index), s->sm_ops->digest(n->sm));
    resolve_proposals(s, n, e, &res, w);
}

static void install_live(struct sim *s, struct sim_node *n, const struct raft_snapshot_meta *m,
                         struct disk_write *w)
{
    const struct snap_copy *src = NULL;
    if (n->incoming.valid && n->incoming.meta.index == m->index && n->incoming.meta.term == m->term)
        src = &n->incoming;
    else if (n->snap.valid && n->snap.meta.index == m->index && n->snap.meta.term == m->term)
        src = &n->snap;
    if (!src) {
        sim_violation(s, "snapshot contract",
                      "n%u installs snapshot %" PRIu64 "/%" PRIu64 " it never received",
                      n->slot + 1, m->index, m->term);
        return;
    }
    if (m->index < n->applied) {
        sim_violation(s, "snapshot contract",
                      "n%u installs snapshot %" PRIu64 " below its applied index %" PRIu64,
                      n->slot + 1, m->index, n->applied);
        return;
    }
    if (s->sm_ops->restore(n->sm, src->blob, src->len)) {
        sim_violation(s, "snapshot contract", "n%u: snapshot blob does not restore", n->slot + 1);
        return;
    }
    check_install(s, n, m->index, m->term, s->sm_ops->digest(n->sm));
    /* Installing empties the log (raft.h contract). */
    uint64_t chain = 0;
    if (m->index && !check_chain_of(&s->chk, m->index, m->term, &chain))
        sim_violation(s, "log matching",
                      "n%u installs snapshot %" PRIu64 "/%" PRIu64 " of an entry no node ever had",
                      n->slot + 1, m->index, m->term);
    check_truncate(s, n, n->log.base + 1, m->index);
    live_reset(&n->log, m->index, m->term, chain);
    n->applied = m->index;
    /* Proposals inside the snapshot can no longer be told apart: their clients time out
     * and the outcome stays unknown. */
    for (uint32_t i = 0; i < n->n_props;)
        if (n->props[i].index <= m->index)
            n->props[i] = n->props[--n->n_props];
        else
            i++;
    w->has_install = true;
    w->install = *m;
    if (src->len) {
        w->install_blob = mem_alloc(src->len);
        if (!w->install_blob) {
            sim_internal_error(s, ASPEN_E_NOMEM, "install blob");
            return;
        }
        memcpy(w->install_blob, src->blob, src->len);
        w->install_len = src->len;
    }
    if (src == &n->incoming) {
        snap_clear(&n->snap);
        n->snap = n->incoming;
        n->incoming = (struct snap_copy){0};
    }
    sim_trace(s, TR_INSTALL, n, 0, m->index, m->term, 0);
}

/* ---- reads ---- */

static void serve_reads(struct sim *s, struct sim_node *n)
{
    for (uint32_t i = 0; i < n->n_reads;) {
        struct pending_read *r = &n->reads[i];
        if (!r->ready || r->index > n->applied) {
            i++;
            continue;
        }
        const struct history_op *op = &s->hist.ops[r->op_id];
        struct sm_result res;
        s->sm_ops->get(n->sm, op->key, &res);
        workload_reply(s, n, r->client, r->op_id, REPLY_OK, res.value, true, n->applied, r->index,
                       0);
        n->reads[i] = n->reads[--n->n_reads];
    }
}

static struct pending_read *find_read(struct sim_node *n, uint64_t op_id)
{
    for (uint32_t i = 0; i < n->n_reads; i++)
        if (n->reads[i].op_id == op_id)
            return &n->reads[i];
    return NULL;
}

static void drop_read(struct sim_node *n, struct pending_read *r)
{
    *r = n->reads[--n->n_reads];
}

/* ---- the update ---- */

struct step_ctx {
    bool propose;
    uint8_t client;
    uint64_t op_id;
    raft_id hint;
};

static void take_snapshot(struct sim *s, struct sim_node *n)
{
    if (n->saving_snapshot || n->applied <= n->snap.meta.index)
        return;
    struct raft_snapshot_meta m = {.index = n->applied, .config = *raft_config(n->raft)};
    if (!live_log_term(&n->log, n->applied, &m.term)) {
        sim_violation(s, "snapshot contract", "n%u: no term for applied index %" PRIu64,
                      n->slot + 1, n->applied);
        return;
    }
    struct buf b;
    buf_init(&b, ASPEN_MAX_SNAPSHOT_BYTES);
    struct disk_write *w = mem_calloc(1, sizeof(*w));
    int rc = w ? s->sm_ops->snapshot(n->sm, &b) : ASPEN_E_NOMEM;
    if (rc) {
        buf_release(&b);
        mem_free(w);
        sim_internal_error(s, rc, "snapshot");
        return;
    }
    w->has_save = true;
    w->save = m;
    w->save_blob = buf_steal(&b, &w->save_len);
    w->needs_sync = true;
    rc = disk_submit(&n->disk, w, s->now_ns);
    if (rc) {
        disk_write_free(w);
        sim_internal_error(s, rc, "disk_submit");
        return;
    }
    n->saving_snapshot = true;
    sim_schedule(s, &(struct sim_event){.time_ns = w->done_ns,
                                        .kind = EV_DISK,
                                        .node = (uint8_t)n->slot,
                                        .incarnation = n->incarnation});
}

static void process(struct sim *s, struct sim_node *n, const struct raft_update *u,
                    struct step_ctx *ctx, int rc_step)
{
    if (ctx && ctx->propose && rc_step == 0) {
        if (n->n_props == NODE_MAX_PROPOSALS)
            n->n_props--; /* forget the newest-but-one; its client will time out */
        n->props[n->n_props++] = (struct proposal){.index = u->proposed_index,
                                                   .term = u->proposed_term,
                                                   .client = ctx->client,
                                                   .op_id = ctx->op_id};
        sim_trace(s, TR_PROPOSE, n, (uint8_t)(ctx->client + 1), ctx->op_id, u->proposed_index, 0);
    }
    bool became_leader = u->role == RAFT_LEADER && (n->role != RAFT_LEADER || n->term != u->term);
    if (u->role != n->role || u->term != n->term || u->leader != n->leader) {
        n->role = u->role;
        n->term = u->term;
        n->leader = u->leader;
        sim_trace(s, TR_ROLE, n, 0, u->role, u->term, u->leader);
        check_leader(s, n);
    }

    bool after = false;
    for (size_t i = 0; i < u->n_msgs; i++)
        after |= u->msgs[i].after_persist;
    bool need_write = u->must_persist || u->n_committed || u->has_snapshot || u->n_entries ||
                      u->hard_state_changed || after;
    struct disk_write *w = NULL;
    if (need_write) {
        w = mem_calloc(1, sizeof(*w));
        if (w && u->n_committed)
            w->replies = mem_calloc(u->n_committed + NODE_MAX_PROPOSALS, sizeof(*w->replies));
        if (w && u->n_msgs)
            w->msgs = mem_calloc(u->n_msgs, sizeof(*w->msgs));
        if (!w || (u->n_committed && !w->replies) || (u->n_msgs && !w->msgs)) {
            disk_write_free(w);
            sim_internal_error(s, ASPEN_E_NOMEM, "disk write");
            return;
        }
    }

    /* Rule 3's order: snapshot, log change, hard state; then apply (rule 5). */
    if (u->has_snapshot)
        install_live(s, n, &u->snapshot, w);
    if (u->n_entries) {
        raft_index first = u->entries[0].index;
        if (first <= n->log.base || first > live_last(&n->log) + 1) {
            sim_violation(s, "log contract",
                          "n%u appends at %" PRIu64 " to a log of %" PRIu64 "..%" PRIu64,
                          n->slot + 1, first, n->log.base + 1, live_last(&n->log));
        } else {
            if (first <= live_last(&n->log)) {
                if (n->step_was_leader && u->role == RAFT_LEADER && u->term == n->step_term)
                    sim_violation(s, "leader append-only",
                                  "n%u, leader of term %" PRIu64 ", truncates its log at %" PRIu64,
                                  n->slot + 1, u->term, first);
                check_truncate(s, n, first, 0);
                n->log.n = first - n->log.base - 1;
            }
            uint64_t chain = live_chain(&n->log, first - 1);
            for (size_t i = 0; i < u->n_entries; i++) {
                const struct raft_entry *e = &u->entries[i];
                if (e->index != first + i) {
                    sim_violation(s, "log contract", "n%u: entries not consecutive at %" PRIu64,
                                  n->slot + 1, e->index);
                    break;
                }
                chain = chain_next(chain, e);
                int rc = live_push(&n->log, e->term, chain);
                if (rc) {
                    sim_internal_error(s, rc, "live log");
                    break;
                }
                check_append(s, n, e->index, e->term, chain);
            }
        }
        w->entries = disk_entries_dup(u->entries, u->n_entries);
        if (!w->entries)
            sim_internal_error(s, ASPEN_E_NOMEM, "entries");
        else
            w->n_entries = u->n_entries;
    }
    if (became_leader)
        check_leader_complete(s, n);
    if (u->hard_state_changed) {
        w->has_hs = true;
        w->hs = u->hard_state;
    }
    for (size_t i = 0; i < u->n_committed && !s->res->violation; i++)
        apply_live(s, n, &u->committed[i], w);
    if (u->n_committed) {
        w->committed = disk_entries_dup(u->committed, u->n_committed);
        if (!w->committed)
            sim_internal_error(s, ASPEN_E_NOMEM, "committed");
        else
            w->n_committed = u->n_committed;
    }

    /* Messages: the others wait in the write (rule 2). */
    for (size_t i = 0; i < u->n_msgs; i++) {
        struct packet *pk = pack(s, n, &u->msgs[i]);
        if (!pk)
            continue;
        if (u->msgs[i].after_persist) {
            w->msgs[w->n_msgs++] = pk;
            w->grants_vote |= u->msgs[i].type == RAFT_MSG_VOTE_RESP && !u->msgs[i].reject;
        } else
            route(s, n, pk);
    }

    if (w) {
        w->must_persist = u->must_persist;
        w->persist_index = u->persist_index;
        w->persist_term = u->persist_term;
        w->needs_sync = u->must_persist || u->n_committed || u->has_snapshot;
        int rc = disk_submit(&n->disk, w, s->now_ns);
        if (rc) {
            disk_write_free(w);
            sim_internal_error(s, rc, "disk_submit");
        } else {
            sim_schedule(s, &(struct sim_event){.time_ns = w->done_ns,
                                                .kind = EV_DISK,
                                                .node = (uint8_t)n->slot,
                                                .incarnation = n->incarnation});
        }
    }

    for (size_t i = 0; i < u->n_reads; i++) {
        const struct raft_read_state *rs = &u->reads[i];
        struct pending_read *r = find_read(n, rs->ctx);
        if (!r)
            continue;
        if (rs->err) {
            uint8_t client = r->client;
            uint64_t op_id = r->op_id;
            drop_read(n, r);
            workload_reply(s, n, client, op_id,
                           rs->err == ASPEN_E_NOT_LEADER ? REPLY_NOT_LEADER : REPLY_BUSY, 0, false,
                           0, 0, u->leader);
        } else {
            r->ready = true;
            r->index = rs->index;
        }
    }
    serve_reads(s, n);

    if (u->want_snapshot)
        take_snapshot(s, n);
    if (!s->res->violation)
        check_node(s, n);
}

static int step(struct sim *s, struct sim_node *n, const struct raft_event *ev,
                struct step_ctx *ctx)
{
    const struct raft_update *u = NULL;
    n->cfg_before = *raft_config(n->raft);
    n->step_was_leader = n->role == RAFT_LEADER;
    n->step_term = n->term;
    n->step_commit = n->commit;
    int rc = raft_step(n->raft, ev, &u);
    if (!u) {
        sim_violation(s, "step contract", "n%u: raft_step returned %s without an update",
                      n->slot + 1, aspen_err_name(rc));
        return ASPEN_E_INTERNAL;
    }
    if (rc && ctx)
        ctx->hint = u->leader;
    /* Even a refused event's update must be processed: it may hand out entries. */
    process(s, n, u, ctx, rc);
    return rc;
}

int node_step(struct sim *s, struct sim_node *n, const struct raft_event *ev, raft_id *leader_hint)
{
    struct step_ctx ctx = {0};
    int rc = step(s, n, ev, &ctx);
    if (leader_hint)
        *leader_hint = ctx.hint;
    return rc;
}

/* ---- events ---- */

static void on_disk(struct sim *s, struct sim_node *n)
{
    struct disk_write *w = NULL;
    int rc = disk_complete(&n->disk, &w);
    if (rc == ASPEN_E_NOT_FOUND) {
        sim_internal_error(s, rc, "disk completion with nothing pending");
        return;
    }
    if (rc) {
        sim_violation(s, "persistence contract", "n%u: %s", n->slot + 1, n->disk.error);
        disk_write_free(w);
        return;
    }
    sim_trace(s, TR_PERSIST, n, 0, w->must_persist ? w->persist_index : 0, w->n_entries,
              n->disk.durable.applied);
    for (size_t i = 0; i < w->n_msgs; i++) {
        route(s, n, w->msgs[i]);
        w->msgs[i] = NULL;
    }
    for (size_t i = 0; i < w->n_replies; i++)
        reply_write(s, n, &w->replies[i]);
    if (w->grants_vote)
        faults_after_vote(s, n);
    if (w->must_persist && !s->res->violation) {
        struct raft_event ev = {.type = RAFT_EVENT_PERSISTED};
        ev.u.persisted.index = w->persist_index;
        ev.u.persisted.term = w->persist_term;
        rc = node_step(s, n, &ev, NULL);
        if (rc)
            sim_violation(s, "persist contract", "n%u: PERSISTED %" PRIu64 "/%" PRIu64 ": %s",
                          n->slot + 1, w->persist_index, w->persist_term, aspen_err_name(rc));
    }
    if (w->has_save && !s->res->violation) {
        const struct disk_image *im = &n->disk.durable;
        n->saving_snapshot = false;
        if (im->snap.index == w->save.index && im->snap.index > n->snap.meta.index) {
            rc = snap_set(&n->snap, &im->snap, im->snap_blob, im->snap_len);
            if (rc) {
                sim_internal_error(s, rc, "snapshot copy");
            } else {
                live_compact(&n->log, w->save.index);
                sim_trace(s, TR_SNAPSHOT, n, 0, w->save.index, w->save.term, 0);
                s->res->snapshots++;
                struct raft_event ev = {.type = RAFT_EVENT_SNAPSHOT_TAKEN};
                ev.u.taken = &w->save;
                rc = node_step(s, n, &ev, NULL);
                if (rc)
                    sim_violation(s, "snapshot contract", "n%u: SNAPSHOT_TAKEN %" PRIu64 ": %s",
                                  n->slot + 1, w->save.index, aspen_err_name(rc));
            }
        }
    }
    disk_write_free(w);
}

static void on_deliver(struct sim *s, struct sim_node *n, const struct sim_event *ev)
{
    struct packet *pk = ev->ptr;
    uint32_t from = (uint32_t)ev->a;
    net_arrived(&s->net, from, n->slot);
    uint8_t type = packet_type(pk);
    int why = -1;
    if (!net_link_up(&s->net, from, n->slot))
        why = TR_DROP_CUT;
    else if (!n->up)
        why = TR_DROP_DOWN;
    else if (n->disk.n >= ASPEN_SIM_BACKPRESSURE_WRITES)
        why = TR_DROP_BUSY;
    if (why >= 0) {
        s->res->msgs_dropped++;
        sim_trace(s, TR_DROP, &s->nodes[from], (uint8_t)(n->slot + 1), type, (uint64_t)why, 0);
        if (type == RAFT_MSG_SNAPSHOT)
            snapshot_status_later(s, from, n->id, false, 0);
        packet_free(pk);
        return;
    }
    struct raft_msg m;
    int rc = packet_open(pk, &m);
    if (rc) {
        /* Only the network's deliberate damage may make a frame undecodable (damage in
         * the prelude shows as a bad length or version, elsewhere as a CRC mismatch). */
        if (rc == ASPEN_E_NOMEM)
            sim_internal_error(s, rc, "packet_open");
        else if (!ev->flag)
            sim_violation(s, "message encoding",
                          "n%u cannot decode an undamaged type %u frame from n%u: %s", n->slot + 1,
                          type, from + 1, aspen_err_name(rc));
        s->res->msgs_dropped++;
        sim_trace(s, TR_DROP, &s->nodes[from], (uint8_t)(n->slot + 1), type, TR_DROP_CORRUPT, 0);
        if (type == RAFT_MSG_SNAPSHOT)
            snapshot_status_later(s, from, n->id, false, 0);
        packet_free(pk);
        return;
    }
    if (ev->flag) {
        /* A flipped bit the CRC did not notice: possible (1 in 2^32) but in a simulation
         * it means the frame check is broken. */
        sim_violation(s, "message encoding", "a damaged frame from n%u decoded without error",
                      from + 1);
        packet_free(pk);
        return;
    }
    if (m.type == RAFT_MSG_SNAPSHOT) {
        size_t len;
        const uint8_t *blob = packet_blob(pk, &len);
        rc = snap_set(&n->incoming, &m.snapshot, blob, len);
        if (rc) {
            sim_internal_error(s, rc, "incoming snapshot");
            packet_free(pk);
            return;
        }
    }
    sim_trace(s, TR_RECV, n, (uint8_t)(from + 1), m.type | (m.reject ? 0x100u : 0u), m.term,
              m.index);
    struct raft_event rev = {.type = RAFT_EVENT_RECEIVE};
    rev.u.msg = &m;
    (void)node_step(s, n, &rev, NULL);
    if (m.type == RAFT_MSG_SNAPSHOT)
        snapshot_status_later(s, from, n->id, true, 0);
    packet_free(pk);
}

void node_on_event(struct sim *s, struct sim_node *n, const struct sim_event *ev)
{
    switch (ev->kind) {
    case EV_TICK: {
        if (ev->incarnation != n->incarnation || !n->up)
            return;
        sim_schedule(s, &(struct sim_event){.time_ns = s->now_ns + n->tick_ns,
                                            .kind = EV_TICK,
                                            .node = (uint8_t)n->slot,
                                            .incarnation = n->incarnation});
        if (n->paused) {
            n->missed_ticks++;
            return;
        }
        sim_trace(s, TR_TICK, n, 0, 0, 0, 0);
        (void)node_step(s, n, &(struct raft_event){.type = RAFT_EVENT_TICK}, NULL);
        return;
    }
    case EV_DELIVER:
        on_deliver(s, n, ev);
        return;
    case EV_DISK:
        if (ev->incarnation == n->incarnation && n->up)
            on_disk(s, n);
        return;
    case EV_CLIENT_REQ:
        node_client_request(s, n, ev->client, ev->a);
        return;
    case EV_SNAPSHOT_STATUS: {
        if (ev->incarnation != n->incarnation || !n->up)
            return;
        struct raft_event rev = {.type = RAFT_EVENT_SNAPSHOT_STATUS};
        rev.u.snapshot_status.node = ev->a;
        rev.u.snapshot_status.ok = ev->flag;
        (void)node_step(s, n, &rev, NULL);
        return;
    }
    default:
        ASPEN_UNREACHABLE();
    }
}

void node_client_request(struct sim *s, struct sim_node *n, uint8_t client, uint64_t op_id)
{
    if (!n->up)
        return; /* the client times out */
    const struct history_op *op = &s->hist.ops[op_id];
    struct step_ctx ctx = {.client = client, .op_id = op_id};
    if (n->disk.n >= ASPEN_SIM_BACKPRESSURE_WRITES) {
        workload_reply(s, n, client, op_id, REPLY_BUSY, 0, false, 0, 0, 0);
        return;
    }
    int rc;
    if (op->kind == MODEL_OP_GET) {
        if (n->n_reads == NODE_MAX_READS) {
            workload_reply(s, n, client, op_id, REPLY_BUSY, 0, false, 0, 0, 0);
            return;
        }
        n->reads[n->n_reads++] = (struct pending_read){.op_id = op_id, .client = client};
        struct raft_event ev = {.type = RAFT_EVENT_READ};
        ev.u.read_ctx = op_id;
        rc = step(s, n, &ev, &ctx);
        sim_trace(s, TR_READ, n, (uint8_t)(client + 1), op_id, (uint64_t)-rc, 0);
        if (rc) {
            struct pending_read *r = find_read(n, op_id);
            if (r)
                drop_read(n, r);
        }
    } else {
        struct model_op mop = {.kind = op->kind,
                               .key = op->key,
                               .client = op->client,
                               .op_id = op_id,
                               .value = op->value,
                               .expect = op->expect};
        struct buf data;
        buf_init(&data, ASPEN_MAX_REQUEST_BYTES);
        rc = s->sm_ops->encode(&mop, &data);
        if (rc) {
            buf_release(&data);
            sim_internal_error(s, rc, "encode an operation");
            return;
        }
        struct raft_proposal prop = {.data = data.data, .len = (uint32_t)data.len};
        struct raft_event ev = {.type = RAFT_EVENT_PROPOSE};
        ev.u.propose.items = &prop;
        ev.u.propose.n = 1;
        ctx.propose = true;
        rc = step(s, n, &ev, &ctx);
        buf_release(&data);
        if (rc)
            sim_trace(s, TR_PROPOSE, n, (uint8_t)(client + 1), op_id, 0, (uint64_t)-rc);
    }
    if (rc == ASPEN_E_NOT_LEADER)
        workload_reply(s, n, client, op_id, REPLY_NOT_LEADER, 0, false, 0, 0, ctx.hint);
    else if (rc)
        workload_reply(s, n, client, op_id, REPLY_BUSY, 0, false, 0, 0, 0);
}
