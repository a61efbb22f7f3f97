/*
 * The core's step loop: roles, terms, timers, and building the update record.
 *
 * raft_step() dispatches one event to the file that owns its concern (election.c,
 * replication.c, read.c, membership.c), then hands out newly committed entries (applying
 * configuration changes as they pass, so the configuration in force is always the one at
 * the applied index) and packs what changed into the update: the hard state and log
 * suffix to persist, the messages, the committed entries, the answered reads.
 *
 * Term rules (paper §5.1, Figure 2 "Rules for Servers"): a message from a higher term
 * makes us a follower of that term; a message from a lower term is answered only where
 * that helps the sender learn of the new term, and is otherwise dropped.
 */
#include "raft/internal.h"

#include "base/assert.h"
#include "base/mem.h"
#include "raft/canary.h"

#include <string.h>

void raft_options_default(struct raft_options *o, raft_id id, struct aspen_random random)
{
    memset(o, 0, sizeof(*o));
    o->id = id;
    o->election_ticks = ASPEN_RAFT_DEFAULT_ELECTION_TICKS;
    o->heartbeat_ticks = ASPEN_RAFT_DEFAULT_HEARTBEAT_TICKS;
    o->pre_vote = true;
    o->check_quorum = true;
    o->lease_reads = false;
    o->lease_drift_ticks = 1;
    o->max_msg_entries = ASPEN_RAFT_MAX_ENTRIES_PER_MSG;
    o->max_msg_bytes = ASPEN_RAFT_MAX_BYTES_PER_MSG;
    o->max_inflight_msgs = ASPEN_RAFT_MAX_INFLIGHT_MSGS;
    o->max_inflight_bytes = ASPEN_RAFT_MAX_INFLIGHT_BYTES;
    o->max_uncommitted_bytes = ASPEN_RAFT_MAX_UNCOMMITTED_BYTES;
    o->snapshot_threshold = ASPEN_SNAPSHOT_LOG_THRESHOLD;
    o->snapshot_keep = ASPEN_SNAPSHOT_KEEP_ENTRIES;
    o->random = random;
}

static bool options_valid(const struct raft_options *o)
{
    if (o->id == 0 || o->heartbeat_ticks == 0 || o->election_ticks <= o->heartbeat_ticks)
        return false;
    if (o->lease_reads && (!o->check_quorum || o->lease_drift_ticks >= o->election_ticks))
        return false;
    if (o->max_msg_entries == 0 || o->max_msg_bytes == 0 || o->max_inflight_msgs == 0 ||
        o->max_inflight_bytes == 0 || o->max_uncommitted_bytes == 0)
        return false;
    if (o->snapshot_threshold == 0 || o->snapshot_keep >= o->snapshot_threshold)
        return false;
    return o->random.next_u64 != NULL;
}

/* Checks the recovered state: entries consecutive after the snapshot, terms never
 * decreasing and never above the hard state's term, applied within the log. */
static bool boot_valid(const struct raft_boot *b)
{
    raft_index idx = b->snapshot.index;
    raft_term t = b->snapshot.term;
    for (size_t i = 0; i < b->n_entries; i++) {
        const struct raft_entry *e = &b->entries[i];
        if (e->index != idx + 1 || e->term < t || e->term > b->hard_state.term ||
            e->type > RAFT_ENTRY_CONF || (e->len && !e->data))
            return false;
        idx = e->index;
        t = e->term;
    }
    if (b->applied < b->snapshot.index || b->applied > idx)
        return false;
    if (b->snapshot.index == 0 &&
        (b->snapshot.term || b->snapshot.config.n_voters || b->snapshot.config.n_learners))
        return false; /* a configuration needs a log position: use raft_bootstrap */
    return b->snapshot.term <= b->hard_state.term && config_valid(&b->snapshot.config);
}

void raft_reset_randomized_timeout(struct raft *r)
{
    /* §5.2: randomized election timeouts make split votes rare. */
    uint64_t x = r->o.random.next_u64(r->o.random.ctx);
    r->randomized_timeout = r->o.election_ticks + (uint32_t)(x % r->o.election_ticks);
}

int raft_create(struct raft **out, const struct raft_options *opts, const struct raft_boot *boot)
{
    if (!options_valid(opts) || !boot_valid(boot))
        return ASPEN_E_INVALID;
    struct raft *r = mem_calloc(1, sizeof(*r));
    if (!r)
        return ASPEN_E_NOMEM;
    int rc;
    r->o = *opts;
    r->id = opts->id;
    r->term = boot->hard_state.term;
    r->vote = boot->hard_state.vote;
    r->snap = boot->snapshot;
    r->conf = boot->snapshot.config;
    log_init(&r->log, boot->snapshot.index, boot->snapshot.term);
    for (size_t i = 0; i < boot->n_entries; i++)
        if ((rc = log_append(&r->log, &boot->entries[i])))
            goto fail;
    r->durable = log_last_index(&r->log);
    /* The commit index is not synced on its own, so it may lag what the state machine
     * applied before a crash; applied entries were committed. */
    r->commit = boot->hard_state.commit;
    if (r->commit < boot->applied)
        r->commit = boot->applied;
    if (r->commit > log_last_index(&r->log))
        r->commit = log_last_index(&r->log);
    r->applied = boot->snapshot.index;
    /* Replay configuration changes the state machine already applied: the configuration
     * in force is the one at the applied index. */
    while (r->applied < boot->applied) {
        const struct raft_entry *e = log_entry(&r->log, ++r->applied);
        if (e->type == RAFT_ENTRY_CONF)
            membership_apply(r, e);
    }
    r->snapshot_asked_at = r->snap.index;
    r->role = RAFT_FOLLOWER;
    r->hs0 = (struct raft_hard_state){r->term, r->vote, r->commit};
    if ((rc = membership_sync_progress(r)))
        goto fail;
    raft_reset_randomized_timeout(r);
    *out = r;
    return 0;
fail:
    raft_free(r);
    return rc;
}

void raft_free(struct raft *r)
{
    if (!r)
        return;
    for (uint32_t i = 0; i < r->n_prs; i++)
        progress_release(&r->prs[i]);
    mem_free(r->prs);
    log_release(&r->log);
    mem_free(r->reads);
    mem_free(r->msgs);
    mem_free(r->out_reads);
    mem_free(r);
}

struct progress *raft_progress(struct raft *r, raft_id id)
{
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].id == id)
            return &r->prs[i];
    return NULL;
}

bool raft_is_promotable(const struct raft *r)
{
    /* Only voters campaign; a member that is a learner or was removed never disrupts. */
    return raft_config_is_voter(&r->conf, r->id);
}

raft_term raft_last_term(const struct raft *r)
{
    return log_last_term(&r->log);
}

/* Appends an outgoing message to the update; NULL (and step_err set) if out of memory. */
struct raft_msg *raft_send(struct raft *r, uint8_t type, raft_id to)
{
    ASPEN_ASSERT(to != r->id && to != 0);
    int rc = mem_grow(&r->msgs, &r->cap_msgs, r->n_msgs, sizeof(*r->msgs), 16, SIZE_MAX);
    if (rc) {
        r->step_err = rc;
        return NULL;
    }
    struct raft_msg *m = &r->msgs[r->n_msgs++];
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->from = r->id;
    m->to = to;
    m->term = r->term;
    return m;
}

void raft_become_follower(struct raft *r, raft_term term, raft_id leader)
{
    if (r->role == RAFT_LEADER)
        read_fail_all(r);
    if (term != r->term) {
        ASPEN_ASSERT(term > r->term);
        r->term = term;
        r->vote = 0;
    }
    r->role = RAFT_FOLLOWER;
    r->leader = leader;
    r->leader_transferring = false;
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    r->transferee = 0;
    r->lease_until = 0;
    raft_reset_randomized_timeout(r);
}

void raft_become_leader(struct raft *r)
{
    ASPEN_ASSERT(r->role == RAFT_CANDIDATE);
    r->role = RAFT_LEADER;
    r->term_unsynced = false; /* won by votes sent only after our term was durable */
    r->leader = r->id;
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    r->transferee = 0;
    r->lease_until = 0;
    raft_index last = log_last_index(&r->log);
    for (uint32_t i = 0; i < r->n_prs; i++) {
        struct progress *pr = &r->prs[i];
        pr->match = pr->id == r->id ? r->durable : 0;
        pr->next = last + 1;
        pr->recent_active = pr->id == r->id;
        pr->read_ack = 0;
        progress_become_probe(pr);
        pr->next = last + 1;
        if (pr->id == r->id)
            progress_become_replicate(pr);
    }
    /* A configuration change may sit uncommitted in the log; allow no new one until it
     * is applied (etcd-raft's conservative pendingConfIndex). */
    r->pending_conf_index = last;
    r->uncommitted_bytes = 0;
    /* §5.4.2 / §8: commit an entry of the new term at once. Entries of older terms then
     * commit with it, and ReadIndex may serve once it commits (thesis §6.4). */
    struct raft_proposal noop = {0};
    int rc = replication_propose(r, &noop, 1, RAFT_ENTRY_NORMAL, NULL);
    if (rc)
        r->step_err = rc;
}

static void tick(struct raft *r)
{
    r->now++;
    r->election_elapsed++;
    if (r->role != RAFT_LEADER) {
        if (r->election_elapsed >= r->randomized_timeout && raft_is_promotable(r)) {
            r->election_elapsed = 0;
            election_campaign(r, r->o.pre_vote, false);
        }
        return;
    }
    for (uint32_t i = 0; i < r->n_prs; i++) {
        struct progress *pr = &r->prs[i];
        /* A snapshot whose transfer was never reported: give up and probe again. */
        if (pr->state == PROGRESS_SNAPSHOT && ++pr->snapshot_ticks >= 10 * r->o.election_ticks)
            progress_become_probe(pr);
    }
    if (r->election_elapsed >= r->o.election_ticks) {
        r->election_elapsed = 0;
        if (r->o.check_quorum) {
            /* CheckQuorum (thesis §6.2): a leader cut off from a quorum steps down, so a
             * partitioned leader stops accepting work it can never commit. */
            bool active = election_quorum_active(r);
            for (uint32_t i = 0; i < r->n_prs; i++)
                r->prs[i].recent_active = r->prs[i].id == r->id;
            if (!active) {
                raft_become_follower(r, r->term, 0);
                return;
            }
        }
        /* A transfer that did not finish within an election timeout is abandoned. A
         * leader no longer in the configuration then steps down anyway. */
        r->transferee = 0;
        if (!raft_is_promotable(r)) {
            raft_become_follower(r, r->term, 0);
            return;
        }
    }
    if (++r->heartbeat_elapsed >= r->o.heartbeat_ticks) {
        r->heartbeat_elapsed = 0;
        replication_bcast_heartbeat(r, read_next_round(r));
    }
}

/* Term rules for a received message; false if the message is to be dropped. */
static bool check_term(struct raft *r, const struct raft_msg *m)
{
    if (m->term > r->term) {
        bool is_vote = m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE;
        /* Leader lease (thesis §4.2.3): we heard from a live leader within the minimum
         * election timeout, so a disruptive candidate gets no vote and no term bump. With
         * lease reads, a freshly started core counts as inside a lease for its first
         * election timeout: before a restart it may have promised one. */
        bool in_lease =
            r->o.check_quorum && ((r->leader != 0 && r->election_elapsed < r->o.election_ticks) ||
                                  (r->o.lease_reads && r->now < r->o.election_ticks));
        bool transfer = (m->flags & RAFT_MSG_F_TRANSFER) && r->leader_transferring;
        if (is_vote && in_lease && !transfer)
            return false;
        if (m->type == RAFT_MSG_PREVOTE)
            return true; /* a pre-vote never changes our term */
        if (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject)
            return true; /* granted pre-votes carry the future term */
        bool from_leader = m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
                           m->type == RAFT_MSG_SNAPSHOT;
        uint32_t elapsed = r->election_elapsed;
        raft_become_follower(r, m->term, from_leader ? m->from : 0);
        /* Figure 2: only a leader's message or a granted vote restarts the election
         * timer. A candidate we refuse (its log is behind) must not keep us from ever
         * timing out by bumping the term again and again. */
        if (m->type == RAFT_MSG_VOTE)
            r->election_elapsed = elapsed;
        return true;
    }
    if (m->term < r->term) {
        if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT) {
            /* A stale leader (healed from a partition, or one that handed over after
             * removing itself and is no longer replicated to) learns our term and steps
             * down. With CheckQuorum it is also what frees a node whose votes we ignore
             * (etcd-raft TestFreeStuckCandidate). */
            raft_send(r, RAFT_MSG_APPEND_RESP, m->from);
        } else if (m->type == RAFT_MSG_PREVOTE || m->type == RAFT_MSG_VOTE) {
            /* §5.1: reject with our term. A candidate that never hears our newer term
             * (we do not ask it for votes: our configuration is older than its) would
             * otherwise trail us by a term forever. */
            bool pre = m->type == RAFT_MSG_PREVOTE;
            struct raft_msg *resp =
                raft_send(r, pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP, m->from);
            if (resp) {
                resp->reject = true;
                election_share_commit(r, resp);
            }
        }
        return false;
    }
    return true;
}

static void receive(struct raft *r, const struct raft_msg *m)
{
    if (!check_term(r, m))
        return;
    switch (m->type) {
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        election_on_vote(r, m);
        return;
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PREVOTE_RESP:
        election_on_vote_resp(r, m);
        return;
    case RAFT_MSG_APPEND:
        replication_on_append(r, m);
        return;
    case RAFT_MSG_APPEND_RESP:
        replication_on_append_resp(r, m);
        return;
    case RAFT_MSG_HEARTBEAT:
        replication_on_heartbeat(r, m);
        return;
    case RAFT_MSG_HEARTBEAT_RESP:
        replication_on_heartbeat_resp(r, m);
        return;
    case RAFT_MSG_SNAPSHOT:
        replication_on_snapshot(r, m);
        return;
    case RAFT_MSG_TIMEOUT_NOW:
        membership_on_timeout_now(r, m);
        return;
    case RAFT_MSG_READ_INDEX:
        if (r->role == RAFT_LEADER) {
            read_request(r, m->context, m->from);
        } else {
            struct raft_msg *resp = raft_send(r, RAFT_MSG_READ_INDEX_RESP, m->from);
            if (resp) {
                resp->context = m->context;
                resp->reject = true;
            }
        }
        return;
    case RAFT_MSG_READ_INDEX_RESP:
        read_on_read_index_resp(r, m);
        return;
    default:
        return;
    }
}

/* Hands out committed entries and applies configuration changes among them. */
static void advance_apply(struct raft *r)
{
    if (r->snapshot_installed)
        return; /* never mix a snapshot install with applying entries (etcd-raft) */
    raft_index hi = r->commit;
    if (CANARY(APPLY_UNCOMMITTED))
        hi = log_last_index(&r->log);
    if (hi > log_last_index(&r->log))
        hi = log_last_index(&r->log);
    if (hi <= r->applied)
        return;
    if (r->up.n_committed == 0)
        r->committed_from = r->applied + 1;
    while (r->applied < hi) {
        const struct raft_entry *e = log_entry(&r->log, ++r->applied);
        r->up.n_committed++;
        if (e->type == RAFT_ENTRY_CONF)
            membership_apply(r, e);
    }
    membership_after_apply(r);
}

static void begin_update(struct raft *r)
{
    memset(&r->up, 0, sizeof(r->up));
    r->n_msgs = 0;
    r->n_out_reads = 0;
    r->persist_from = UINT64_MAX;
    r->hs0 = (struct raft_hard_state){r->term, r->vote, r->commit};
    r->role0 = r->role;
    r->leader0 = r->leader;
    r->snapshot_installed = false;
    r->config_changed = false;
    r->step_err = 0;
}

static void finish_update(struct raft *r)
{
    struct raft_update *u = &r->up;
    raft_index last = log_last_index(&r->log);
    raft_id vote = r->vote;
    if (CANARY(VOTE_NOT_PERSISTED))
        vote = 0;
    u->hard_state = (struct raft_hard_state){r->term, vote, r->commit};
    bool term_or_vote = r->term != r->hs0.term || r->vote != r->hs0.vote;
    u->hard_state_changed = term_or_vote || r->commit != r->hs0.commit;
    if (r->snapshot_installed) {
        u->has_snapshot = true;
        u->snapshot = r->snap;
    }
    if (r->persist_from <= last) {
        u->entries = log_entry(&r->log, r->persist_from);
        u->n_entries = (size_t)(last - r->persist_from + 1);
    }
    u->must_sync = term_or_vote || u->n_entries || u->has_snapshot;
    /* No message may carry a term or vote that a crash could still take back: the
     * receiver would hold entries or promises of a term we might reuse. */
    if (term_or_vote || (r->role == RAFT_LEADER && r->term_unsynced))
        for (size_t i = 0; i < r->n_msgs; i++)
            r->msgs[i].after_persist = true;
    u->must_persist = u->must_sync || u->hard_state_changed;
    u->persist_index = last;
    u->persist_term = log_last_term(&r->log);
    /* Pointers into the log are resolved last: appends during the step may have moved
     * the entry array. */
    if (u->n_committed)
        u->committed = log_entry(&r->log, r->committed_from);
    for (size_t i = 0; i < r->n_msgs; i++)
        if (r->msgs[i].type == RAFT_MSG_APPEND && r->msgs[i].n_entries)
            r->msgs[i].entries = log_entry(&r->log, r->msgs[i].index + 1);
    u->msgs = r->msgs;
    u->n_msgs = r->n_msgs;
    u->reads = r->out_reads;
    u->n_reads = r->n_out_reads;
    if (r->applied >= r->snapshot_asked_at + r->o.snapshot_threshold) {
        u->want_snapshot = true;
        r->snapshot_asked_at = r->applied;
    }
    u->role = r->role;
    u->leader = r->leader;
    u->term = r->term;
    u->role_changed = r->role != r->role0 || r->leader != r->leader0;
    u->config_changed = r->config_changed;
}

static int on_snapshot_taken(struct raft *r, const struct raft_snapshot_meta *m)
{
    raft_term t;
    if (m->index > r->applied || !log_term(&r->log, m->index, &t) || t != m->term ||
        !config_valid(&m->config))
        return ASPEN_E_INVALID;
    if (m->index <= r->snap.index)
        return 0;
    r->snap = *m;
    /* Keep snapshot_keep entries behind the snapshot so a follower that is only a little
     * behind catches up from the log instead of needing the whole snapshot. Never drop
     * what is not yet durable: the storage copy is the one compacted along with ours. */
    raft_index upto = m->index > r->o.snapshot_keep ? m->index - r->o.snapshot_keep : 0;
    if (upto > r->durable)
        upto = r->durable;
    if (upto >= r->log.first)
        log_compact(&r->log, upto);
    return 0;
}

int raft_step(struct raft *r, const struct raft_event *ev, const struct raft_update **update)
{
    begin_update(r);
    *update = &r->up;
    int rc = 0;
    raft_index proposed = 0; /* PROPOSE / CONF_CHANGE: where the entry went */
    /* Entries committed before this event (e.g. at start-up) are handed out first. */
    advance_apply(r);
    switch (ev->type) {
    case RAFT_EVENT_TICK:
        tick(r);
        break;
    case RAFT_EVENT_RECEIVE:
        if (!ev->u.msg || ev->u.msg->to != r->id || ev->u.msg->from == 0 ||
            ev->u.msg->from == r->id || ev->u.msg->type >= RAFT_MSG_TYPE_COUNT) {
            rc = ASPEN_E_INVALID;
            break;
        }
        receive(r, ev->u.msg);
        break;
    case RAFT_EVENT_PROPOSE:
        if (ev->u.propose.n == 0 || !ev->u.propose.items)
            rc = ASPEN_E_INVALID;
        else if (r->role == RAFT_LEADER && r->transferee)
            rc = ASPEN_E_BUSY; /* thesis §3.10: stop accepting work while handing over */
        else
            rc = replication_propose(r, ev->u.propose.items, ev->u.propose.n, RAFT_ENTRY_NORMAL,
                                     &proposed);
        break;
    case RAFT_EVENT_READ:
        rc = read_request(r, ev->u.read_ctx, 0);
        break;
    case RAFT_EVENT_CONF_CHANGE:
        rc = ev->u.conf ? membership_propose(r, ev->u.conf, &proposed) : ASPEN_E_INVALID;
        break;
    case RAFT_EVENT_TRANSFER:
        rc = membership_transfer(r, ev->u.node);
        break;
    case RAFT_EVENT_PERSISTED:
        replication_on_persisted(r, ev->u.persisted.index, ev->u.persisted.term);
        break;
    case RAFT_EVENT_SNAPSHOT_TAKEN:
        rc = ev->u.taken ? on_snapshot_taken(r, ev->u.taken) : ASPEN_E_INVALID;
        break;
    case RAFT_EVENT_SNAPSHOT_STATUS:
        replication_on_snapshot_status(r, ev->u.snapshot_status.node, ev->u.snapshot_status.ok);
        break;
    case RAFT_EVENT_UNREACHABLE:
        if (r->role == RAFT_LEADER) {
            struct progress *pr = raft_progress(r, ev->u.node);
            if (pr && pr->id != r->id && pr->state == PROGRESS_REPLICATE)
                progress_become_probe(pr);
        }
        break;
    case RAFT_EVENT_CAMPAIGN:
        if (r->role != RAFT_LEADER && raft_is_promotable(r))
            election_campaign(r, r->o.pre_vote, false);
        break;
    default:
        rc = ASPEN_E_INVALID;
        break;
    }
    advance_apply(r);
    if (r->role == RAFT_LEADER)
        read_start_round_if_needed(r);
    if (!rc && r->step_err)
        rc = r->step_err;
    finish_update(r);
    if (!rc && proposed) {
        r->up.proposed_index = proposed;
        r->up.proposed_term = raft_term_at(r, proposed);
    }
    if (rc == ASPEN_E_NOT_LEADER)
        r->up.leader = r->leader;
    return rc;
}

void raft_status(const struct raft *r, struct raft_status *st)
{
    memset(st, 0, sizeof(*st));
    st->id = r->id;
    st->role = r->role;
    st->leader = r->leader;
    st->hard_state = (struct raft_hard_state){r->term, r->vote, r->commit};
    st->first_index = r->log.first;
    st->last_index = log_last_index(&r->log);
    st->applied = r->applied;
    st->durable_index = r->durable;
    st->snapshot_index = r->snap.index;
    st->snapshot_term = r->snap.term;
}

const struct raft_config *raft_config(const struct raft *r)
{
    return &r->conf;
}

raft_term raft_term_at(const struct raft *r, raft_index index)
{
    raft_term t;
    if (log_term(&r->log, index, &t))
        return t;
    if (index == r->snap.index)
        return r->snap.term;
    return 0;
}

const struct raft_entry *raft_entry_at(const struct raft *r, raft_index index)
{
    if (index < r->log.first || index > log_last_index(&r->log))
        return NULL;
    return log_entry(&r->log, index);
}
