/*
 * Log replication (paper §5.3), the commitment rule (§5.4.2), heartbeats, and snapshot
 * installation (paper §7, thesis chapter 5).
 *
 * The leader appends proposals to its log and sends them at once, in parallel with its
 * own disk write (thesis §10.2.1): it counts itself toward a quorum only for entries its
 * shell reported durable (RAFT_EVENT_PERSISTED). Followers acknowledge only after their
 * write is durable (after_persist). An entry is committed when a quorum holds it AND it
 * belongs to the leader's current term; older entries commit with it (Figure 8).
 *
 * Flow control and back-off follow etcd-raft: per-follower probe/replicate/snapshot
 * states, a window of in-flight appends by count and bytes, and rejection hints that
 * skip a whole conflicting term per round trip.
 */
#include "raft/internal.h"

#include "base/assert.h"
#include "raft/canary.h"

int replication_propose(struct raft *r, const struct raft_proposal *items, uint32_t n, uint8_t type,
                        raft_index *first_out)
{
    if (r->role != RAFT_LEADER)
        return ASPEN_E_NOT_LEADER;
    if (n > ASPEN_RAFT_MAX_PENDING_PROPOSALS)
        return ASPEN_E_TOO_LARGE;
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (items[i].len > ASPEN_MAX_REQUEST_BYTES || (items[i].len && !items[i].data))
            return items[i].len > ASPEN_MAX_REQUEST_BYTES ? ASPEN_E_TOO_LARGE : ASPEN_E_INVALID;
        bytes += items[i].len;
    }
    /* Bound the uncommitted tail; a lone proposal is always let through so a large
     * request can never be refused forever (etcd-raft's rule). */
    if (r->uncommitted_bytes && r->uncommitted_bytes + bytes > r->o.max_uncommitted_bytes)
        return ASPEN_E_BUSY;
    raft_index first = log_last_index(&r->log) + 1;
    for (uint32_t i = 0; i < n; i++) {
        struct raft_entry e = {.term = r->term,
                               .index = first + i,
                               .type = type,
                               .len = items[i].len,
                               .data = (uint8_t *)items[i].data};
        int rc = log_append(&r->log, &e);
        if (rc) {
            log_truncate(&r->log, first);
            return rc;
        }
    }
    if (first < r->persist_from)
        r->persist_from = first;
    r->uncommitted_bytes += bytes;
    if (first_out)
        *first_out = first;
    if (CANARY(ACK_BEFORE_DURABLE)) {
        progress_update(raft_progress(r, r->id), log_last_index(&r->log));
        replication_maybe_commit(r);
    }
    replication_bcast_append(r, false);
    return 0;
}

static void send_snapshot(struct raft *r, struct progress *pr)
{
    struct raft_msg *m = raft_send(r, RAFT_MSG_SNAPSHOT, pr->id);
    if (!m)
        return;
    m->snapshot = r->snap;
    m->flags = r->transferee ? RAFT_MSG_F_TRANSFER : 0;
    progress_become_snapshot(pr, r->snap.index);
}

bool replication_send_append(struct raft *r, struct progress *pr, bool send_if_empty)
{
    if (progress_is_paused(pr, r->o.max_inflight_msgs, r->o.max_inflight_bytes))
        return false;
    raft_index last = log_last_index(&r->log);
    if (pr->next > last + 1)
        pr->next = last + 1;
    raft_index prev = pr->next - 1;
    raft_term prev_term;
    if (!log_term(&r->log, prev, &prev_term)) {
        /* The entries the follower needs were compacted away: it gets the snapshot. */
        ASPEN_ASSERT(prev + 1 < r->log.first && r->snap.index >= r->log.first - 1);
        send_snapshot(r, pr);
        return true;
    }
    uint32_t n = 0;
    uint64_t bytes = 0;
    while (pr->next + n <= last && n < r->o.max_msg_entries) {
        uint64_t len = log_entry(&r->log, pr->next + n)->len;
        if (n > 0 && bytes + len > r->o.max_msg_bytes)
            break;
        bytes += len;
        n++;
    }
    if (n == 0 && !send_if_empty)
        return false;
    struct raft_msg *m = raft_send(r, RAFT_MSG_APPEND, pr->id);
    if (!m)
        return false;
    m->index = prev;
    m->log_term = prev_term;
    m->commit = r->commit;
    m->flags = r->transferee ? RAFT_MSG_F_TRANSFER : 0;
    m->n_entries = n;
    m->entries = NULL; /* resolved when the update is finished: the log may still grow */
    progress_sent(pr, prev + n, bytes, n);
    return true;
}

void replication_bcast_append(struct raft *r, bool send_if_empty)
{
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].id != r->id)
            replication_send_append(r, &r->prs[i], send_if_empty);
}

void replication_bcast_heartbeat(struct raft *r, uint64_t round)
{
    for (uint32_t i = 0; i < r->n_prs; i++) {
        struct progress *pr = &r->prs[i];
        if (pr->id == r->id)
            continue;
        struct raft_msg *m = raft_send(r, RAFT_MSG_HEARTBEAT, pr->id);
        if (!m)
            return;
        /* Never tell a follower to commit beyond what it is known to hold: its log past
         * the match point may still differ from ours. */
        m->commit = pr->match < r->commit ? pr->match : r->commit;
        m->context = round;
        m->flags = r->transferee ? RAFT_MSG_F_TRANSFER : 0;
    }
}

/* A message from the current leader: follow it and restart the election timer. */
static void follow(struct raft *r, const struct raft_msg *m)
{
    if (r->role != RAFT_FOLLOWER)
        raft_become_follower(r, r->term, m->from);
    r->leader = m->from;
    r->election_elapsed = 0;
    r->leader_transferring = (m->flags & RAFT_MSG_F_TRANSFER) != 0;
}

void replication_on_append(struct raft *r, const struct raft_msg *m)
{
    follow(r, m);
    struct raft_msg *resp = raft_send(r, RAFT_MSG_APPEND_RESP, m->from);
    if (!resp)
        return;
    resp->after_persist = !CANARY(ACK_BEFORE_DURABLE);
    if (m->index < r->commit) {
        /* Everything up to our commit index already matches the leader (§5.4). */
        resp->index = r->commit;
        return;
    }
    raft_term t;
    if (!log_term(&r->log, m->index, &t) || t != m->log_term) {
        /* §5.3 consistency check failed. Hint where to retry: the last index at or
         * below the probe whose term is not newer than the leader's entry there. */
        raft_index last = log_last_index(&r->log);
        raft_index hint = m->index < last ? m->index : last;
        hint = log_find_conflict_by_term(&r->log, hint, m->log_term);
        resp->reject = true;
        resp->index = m->index;
        resp->reject_hint = hint;
        if (!log_term(&r->log, hint, &resp->log_term))
            resp->log_term = 0;
        return;
    }
    raft_index last_new = m->index + m->n_entries;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        raft_term et;
        if (log_term(&r->log, e->index, &et)) {
            if (et == e->term)
                continue; /* already have it */
            /* §5.3: a conflicting entry and all that follow it are deleted. A committed
             * entry never conflicts (Leader Completeness). */
            ASPEN_ASSERT(e->index > r->commit);
            ASPEN_ASSERT(e->index > r->applied || CANARY(APPLY_UNCOMMITTED));
            log_truncate(&r->log, e->index);
            if (r->durable >= e->index)
                r->durable = e->index - 1;
        }
        int rc = log_append(&r->log, e);
        if (rc) {
            r->step_err = rc;
            r->n_msgs--; /* no acknowledgement: the leader will resend */
            if (e->index < r->persist_from)
                r->persist_from = e->index;
            return;
        }
        if (e->index < r->persist_from)
            r->persist_from = e->index;
    }
    /* Commit only what this message verified (copycat#265): our log past last_new may
     * still hold entries of another term. */
    raft_index c = m->commit < last_new ? m->commit : last_new;
    if (c > r->commit)
        r->commit = c;
    resp->index = last_new;
}

static uint64_t match_of(const struct raft *r, const struct progress *pr)
{
    (void)r;
    return pr->match;
}

bool replication_maybe_commit(struct raft *r)
{
    raft_index q = quorum_joint_value(r, match_of);
    if (q <= r->commit || q == UINT64_MAX)
        return false;
    raft_term t;
    if (!log_term(&r->log, q, &t))
        return false;
    /* §5.4.2 (Figure 8): only entries of the current term are committed by counting
     * replicas; earlier ones commit indirectly with them. */
    if (t != r->term && !CANARY(OLD_TERM_COMMIT))
        return false;
    bool first_in_term = true;
    raft_term ct;
    if (log_term(&r->log, r->commit, &ct) && ct == r->term)
        first_in_term = false;
    for (raft_index i = r->commit + 1; i <= q; i++) {
        const struct raft_entry *e = log_entry(&r->log, i);
        if (e->term == r->term)
            r->uncommitted_bytes -= e->len < r->uncommitted_bytes ? e->len : r->uncommitted_bytes;
    }
    r->commit = q;
    if (first_in_term && t == r->term)
        read_on_term_commit(r);
    return true;
}

/* The progress of a follower that answered us, if we still lead; it is alive. */
static struct progress *answering_follower(struct raft *r, const struct raft_msg *m)
{
    struct progress *pr = r->role == RAFT_LEADER ? raft_progress(r, m->from) : NULL;
    if (pr)
        pr->recent_active = true;
    return pr;
}

void replication_on_append_resp(struct raft *r, const struct raft_msg *m)
{
    struct progress *pr = answering_follower(r, m);
    if (!pr)
        return;
    if (m->reject) {
        raft_index hint = m->reject_hint;
        if (m->log_term > 0)
            hint = log_find_conflict_by_term(&r->log, m->reject_hint, m->log_term);
        if (progress_decrease(pr, m->index, hint)) {
            if (pr->state == PROGRESS_REPLICATE)
                progress_become_probe(pr);
            replication_send_append(r, pr, true);
        }
        return;
    }
    bool was_paused = progress_is_paused(pr, r->o.max_inflight_msgs, r->o.max_inflight_bytes);
    bool updated = progress_update(pr, m->index);
    if (!updated && !(pr->match == m->index && pr->state == PROGRESS_PROBE))
        return;
    switch (pr->state) {
    case PROGRESS_PROBE:
        progress_become_replicate(pr);
        break;
    case PROGRESS_SNAPSHOT:
        if (pr->match + 1 >= r->log.first) {
            progress_become_probe(pr);
            progress_become_replicate(pr);
        }
        break;
    default:
        inflights_free_to(&pr->inflights, m->index);
        break;
    }
    if (replication_maybe_commit(r))
        replication_bcast_append(r, true); /* spread the new commit index */
    else if (was_paused)
        replication_send_append(r, pr, false);
    /* Fill the pipeline: bounded by the in-flight window. */
    while (replication_send_append(r, pr, false))
        ;
    if (pr->id == r->transferee)
        membership_maybe_timeout_now(r);
}

void replication_on_heartbeat(struct raft *r, const struct raft_msg *m)
{
    follow(r, m);
    raft_index c = m->commit;
    if (c > log_last_index(&r->log))
        c = log_last_index(&r->log);
    if (c > r->commit)
        r->commit = c;
    struct raft_msg *resp = raft_send(r, RAFT_MSG_HEARTBEAT_RESP, m->from);
    if (resp)
        resp->context = m->context;
}

void replication_on_heartbeat_resp(struct raft *r, const struct raft_msg *m)
{
    struct progress *pr = answering_follower(r, m);
    if (!pr)
        return;
    pr->probe_sent = false; /* a live follower: resume probing (etcd-raft) */
    /* A full window whose appends were lost would stall replication forever: let one
     * more through; a gap makes the follower reject and the leader probe again. */
    if (pr->state == PROGRESS_REPLICATE &&
        progress_is_paused(pr, r->o.max_inflight_msgs, r->o.max_inflight_bytes))
        inflights_free_first(&pr->inflights);
    if (m->context > pr->read_ack && m->context <= r->read_round)
        pr->read_ack = m->context;
    if (pr->match < log_last_index(&r->log))
        replication_send_append(r, pr, true); /* a probe, even if it carries nothing */
    read_on_confirm(r);
    membership_maybe_timeout_now(r);
}

void replication_on_snapshot(struct raft *r, const struct raft_msg *m)
{
    follow(r, m);
    const struct raft_snapshot_meta *s = &m->snapshot;
    if (r->up.n_committed) {
        /* Entries were handed out earlier in this step; a snapshot must not share an
         * update with them. Drop it: the leader resends. */
        return;
    }
    struct raft_msg *resp = raft_send(r, RAFT_MSG_APPEND_RESP, m->from);
    if (!resp)
        return;
    resp->after_persist = true;
    raft_term t;
    if (s->index <= r->commit) {
        resp->index = r->commit;
        return;
    }
    if (log_term(&r->log, s->index, &t) && t == s->term) {
        /* We hold the snapshot's last entry: just commit up to it and keep the log
         * (replacing it would drop entries the leader may have acknowledged from us;
         * hashicorp/raft#704 is the opposite mistake). */
        r->commit = s->index;
        resp->index = s->index;
        return;
    }
    if (!config_valid(&s->config) || s->config.n_voters == 0) {
        r->n_msgs--;
        return;
    }
    log_reset(&r->log, s->index, s->term);
    r->snap = *s;
    r->conf = s->config;
    r->config_changed = true;
    r->commit = r->applied = s->index;
    r->durable = 0; /* until the install is reported durable */
    r->persist_from = UINT64_MAX;
    r->snapshot_installed = true;
    r->snapshot_asked_at = s->index;
    int rc = membership_sync_progress(r);
    if (rc)
        r->step_err = rc;
    resp->index = s->index;
}

void replication_on_snapshot_status(struct raft *r, raft_id node, bool ok)
{
    if (r->role != RAFT_LEADER)
        return;
    struct progress *pr = raft_progress(r, node);
    if (!pr || pr->state != PROGRESS_SNAPSHOT)
        return;
    if (!ok)
        pr->pending_snapshot = 0;
    progress_become_probe(pr);
    /* Wait for the next heartbeat response before probing (etcd-raft ReportSnapshot). */
    pr->probe_sent = true;
}

void replication_on_persisted(struct raft *r, raft_index index, raft_term term)
{
    raft_term t;
    /* A completion for entries since overwritten (same index, other term) proves nothing
     * about the current log (the ABA case of etcd-raft's async storage writes). */
    if (index > log_last_index(&r->log) || !log_term(&r->log, index, &t) || t != term)
        return;
    if (index > r->durable)
        r->durable = index;
    if (term == r->term)
        r->term_unsynced = false; /* an update written in our term carried the term too */
    if (r->role == RAFT_LEADER) {
        struct progress *self = raft_progress(r, r->id);
        if (self && progress_update(self, r->durable) && replication_maybe_commit(r))
            replication_bcast_append(r, true);
    }
}
