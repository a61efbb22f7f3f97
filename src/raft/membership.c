/*
 * Membership changes (thesis chapter 4) and leadership transfer (thesis §3.10).
 *
 * A change is proposed as a RAFT_ENTRY_CONF entry and takes effect when it is applied,
 * on every member alike (etcd-raft's model): the configuration in force is always the
 * one at the applied index, so it becomes durable together with the state machine and
 * needs no rollback when an uncommitted entry is truncated (canonical/raft#323). Only
 * one change may be pending at a time. A leader that applies a configuration without
 * itself as a voter hands leadership to a new voter, then steps down; one that applies
 * a joint configuration with auto-leave proposes the leave itself.
 *
 * A transfer catches the target up, then sends it TimeoutNow so it campaigns at once,
 * bypassing PreVote and the followers' leader lease; the leader refuses proposals
 * meanwhile, and gives up after an election timeout.
 */
#include "raft/internal.h"

#include "base/assert.h"
#include "base/mem.h"

#include <string.h>

int membership_sync_progress(struct raft *r)
{
    raft_id ids[ASPEN_MAX_MEMBERS + ASPEN_MAX_VOTERS];
    uint32_t n = config_members(&r->conf, ids);
    struct progress *prs = n ? mem_calloc(n, sizeof(*prs)) : NULL;
    if (n && !prs)
        return ASPEN_E_NOMEM;
    raft_index next = log_last_index(&r->log) + 1;
    for (uint32_t i = 0; i < n; i++) {
        struct progress *old = raft_progress(r, ids[i]);
        if (old) {
            prs[i] = *old;
            continue;
        }
        int rc = progress_init(&prs[i], ids[i], next, r->o.max_inflight_msgs);
        if (rc) {
            for (uint32_t j = 0; j < i; j++)
                if (!raft_progress(r, prs[j].id))
                    progress_release(&prs[j]);
            mem_free(prs);
            return rc;
        }
        if (ids[i] == r->id) {
            prs[i].match = r->durable;
            if (r->role == RAFT_LEADER)
                progress_become_replicate(&prs[i]);
        }
        prs[i].recent_active = true; /* a newcomer gets an election timeout's grace */
    }
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (!config_has(ids, n, r->prs[i].id))
            progress_release(&r->prs[i]);
    mem_free(r->prs);
    r->prs = prs;
    r->n_prs = n;
    return 0;
}

int membership_propose(struct raft *r, const struct raft_conf_change *cc, raft_index *first_out)
{
    if (r->role != RAFT_LEADER)
        return ASPEN_E_NOT_LEADER;
    if (r->transferee || r->pending_conf_index > r->applied)
        return ASPEN_E_BUSY;
    struct raft_config next = r->conf;
    int rc = config_apply(&next, cc);
    if (rc)
        return rc;
    uint8_t buf[RAFT_CONF_CHANGE_MAX_BYTES];
    struct raft_proposal p = {.data = buf, .len = (uint32_t)raft_conf_change_encode(cc, buf)};
    rc = replication_propose(r, &p, 1, RAFT_ENTRY_CONF, first_out);
    if (rc)
        return rc;
    r->pending_conf_index = *first_out;
    return 0;
}

void membership_apply(struct raft *r, const struct raft_entry *e)
{
    struct raft_conf_change cc;
    /* A change that does not decode or apply is skipped by every member alike: all of
     * them hold the same configuration at this index, so they all decide the same. */
    if (raft_conf_change_decode(e->data, e->len, &cc))
        return;
    if (config_apply(&r->conf, &cc))
        return;
    /* Every member must switch at this index; one that cannot is better dead than
     * diverging. */
    int rc = membership_sync_progress(r);
    ASPEN_ASSERT(rc == 0 && "out of memory applying a configuration change");
    r->config_changed = true;
}

void membership_after_apply(struct raft *r)
{
    if ((r->role == RAFT_CANDIDATE || r->role == RAFT_PRE_CANDIDATE) && !raft_is_promotable(r))
        raft_become_follower(r, r->term, 0); /* a campaign for a seat we no longer hold */
    if (r->role != RAFT_LEADER)
        return;
    if (!raft_config_is_voter(&r->conf, r->id)) {
        /* Removed or demoted (within a joint configuration an outgoing leader keeps
         * leading until the leave is applied). Stepping down at once would strand the
         * new voters: configurations take effect at apply, and we may be the only one
         * that knows the change committed — the others would still need our vote, which
         * our longer log refuses (found by the simulator). So keep leading without
         * counting ourselves and hand leadership to the most caught-up new voter; the
         * tick steps us down if that transfer does not finish in an election timeout. */
        if (r->transferee == 0) {
            raft_id best = 0;
            raft_index best_match = 0;
            for (uint32_t i = 0; i < r->conf.n_voters; i++) {
                struct progress *pr = raft_progress(r, r->conf.voters[i]);
                if (pr && (best == 0 || pr->match > best_match)) {
                    best = pr->id;
                    best_match = pr->match;
                }
            }
            if (best)
                membership_transfer(r, best);
        }
        return;
    }
    /* The quorum changed: entries may now be committed, or followers may need appends. */
    if (r->config_changed && replication_maybe_commit(r))
        replication_bcast_append(r, true);
    /* Checked on every apply, not only when the joint entry is applied: a leader elected
     * while the joint configuration was already in force must leave it too. */
    if (config_is_joint(&r->conf) && r->conf.auto_leave && r->applied >= r->pending_conf_index) {
        struct raft_conf_change leave = {.transition = RAFT_TRANSITION_AUTO, .n_changes = 0};
        uint8_t buf[RAFT_CONF_CHANGE_MAX_BYTES];
        struct raft_proposal p = {.data = buf,
                                  .len = (uint32_t)raft_conf_change_encode(&leave, buf)};
        /* On failure (limits, memory) the leave is retried at the next apply. */
        raft_index first;
        if (replication_propose(r, &p, 1, RAFT_ENTRY_CONF, &first) == 0)
            r->pending_conf_index = first;
    }
}

int membership_transfer(struct raft *r, raft_id target)
{
    if (r->role != RAFT_LEADER)
        return ASPEN_E_NOT_LEADER;
    if (target == r->id)
        return 0;
    if (!raft_config_is_voter(&r->conf, target))
        return ASPEN_E_INVALID;
    struct progress *pr = raft_progress(r, target);
    ASPEN_ASSERT(pr);
    r->transferee = target;
    r->timeout_now_sent = false;
    r->election_elapsed = 0; /* the transfer's deadline: one election timeout */
    r->lease_until = 0;      /* the target will ignore the lease: so must we */
    /* Tell the voters first (heartbeats flagged RAFT_MSG_F_TRANSFER): they skip their
     * lease only for a transfer their leader announced. TimeoutNow waits until a
     * quorum acknowledged the announcement and the target holds our whole log. */
    r->transfer_round = read_next_round(r);
    replication_bcast_heartbeat(r, r->transfer_round);
    if (pr->match < log_last_index(&r->log))
        replication_send_append(r, pr, true);
    membership_maybe_timeout_now(r);
    return 0;
}

void membership_maybe_timeout_now(struct raft *r)
{
    if (r->role != RAFT_LEADER || r->transferee == 0 || r->timeout_now_sent ||
        r->read_confirmed < r->transfer_round)
        return;
    struct progress *pr = raft_progress(r, r->transferee);
    if (!pr || pr->match != log_last_index(&r->log))
        return;
    if (raft_send(r, RAFT_MSG_TIMEOUT_NOW, r->transferee))
        r->timeout_now_sent = true;
}

void membership_on_timeout_now(struct raft *r, const struct raft_msg *m)
{
    (void)m;
    if (r->role == RAFT_LEADER || !raft_is_promotable(r))
        return;
    election_campaign(r, false, true);
}
