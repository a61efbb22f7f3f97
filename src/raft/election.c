/*
 * Leader election (paper §5.2, §5.4.1) with PreVote (thesis §9.6).
 *
 * A follower that hears nothing for its randomized timeout first runs a pre-election:
 * it asks whether it *would* win at term+1 without changing anyone's term. Only if a
 * majority says yes does it start a real election. A node cut off by a partition thus
 * cannot come back with an inflated term and depose a healthy leader.
 *
 * Votes are granted at most once per term (the vote is persisted before the grant is
 * sent: after_persist) and only to candidates whose log is at least as up to date as
 * ours (§5.4.1), which is what makes every elected leader hold every committed entry.
 */
#include "raft/internal.h"

#include "base/assert.h"
#include "raft/canary.h"

static int vote_of(const struct raft *r, const struct progress *pr)
{
    (void)r;
    return pr->vote;
}

static int active_of(const struct raft *r, const struct progress *pr)
{
    return pr->id == r->id || pr->recent_active ? 1 : -1;
}

enum vote_result election_tally(struct raft *r)
{
    return quorum_joint_tally(r, vote_of);
}

bool election_quorum_active(struct raft *r)
{
    return quorum_joint_tally(r, active_of) == VOTE_WON;
}

static void request_votes(struct raft *r, uint8_t type, raft_term term, bool transfer)
{
    raft_id ids[2 * ASPEN_MAX_VOTERS];
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->conf.n_voters; i++)
        ids[n++] = r->conf.voters[i];
    for (uint32_t i = 0; i < r->conf.n_outgoing; i++)
        if (!config_has(ids, n, r->conf.outgoing[i]))
            ids[n++] = r->conf.outgoing[i];
    for (uint32_t i = 0; i < n; i++) {
        if (ids[i] == r->id)
            continue;
        struct raft_msg *m = raft_send(r, type, ids[i]);
        if (!m)
            return;
        m->term = term;
        m->index = log_last_index(&r->log);
        m->log_term = raft_last_term(r);
        m->flags = transfer ? RAFT_MSG_F_TRANSFER : 0;
        /* A real vote request carries our new term and self-vote: durable first. */
        m->after_persist = type == RAFT_MSG_VOTE;
    }
}

void election_campaign(struct raft *r, bool pre, bool transfer)
{
    ASPEN_ASSERT(raft_is_promotable(r));
    if (r->role == RAFT_LEADER)
        read_fail_all(r);
    raft_term term;
    if (pre) {
        r->role = RAFT_PRE_CANDIDATE;
        term = r->term + 1; /* the term we would use; ours does not change */
    } else {
        r->role = RAFT_CANDIDATE;
        r->term++;
        r->vote = r->id;
        term = r->term;
    }
    r->leader = 0;
    r->election_elapsed = 0;
    r->transferee = 0;
    r->lease_until = 0;
    raft_reset_randomized_timeout(r);
    for (uint32_t i = 0; i < r->n_prs; i++)
        r->prs[i].vote = r->prs[i].id == r->id ? 1 : 0;
    enum vote_result res = election_tally(r);
    if (res == VOTE_WON) {
        /* A single voter wins at once; a real election still bumped the term above
         * (dqlite#689: every path to leadership must). */
        if (pre) {
            election_campaign(r, false, transfer);
        } else {
            /* Elected without a single message: nothing we send may carry this term
             * before it is durable, or a crash could reuse it for other entries. */
            raft_become_leader(r);
            r->term_unsynced = true;
        }
        return;
    }
    request_votes(r, pre ? RAFT_MSG_PREVOTE : RAFT_MSG_VOTE, term, transfer);
}

void election_share_commit(struct raft *r, struct raft_msg *resp)
{
    raft_term t;
    if (log_term(&r->log, r->commit, &t)) {
        resp->commit = r->commit;
        resp->log_term = t;
    }
}

/* Learns a commit index from a vote response: a committed (index, term) is a fact about
 * the cluster, and if our log holds the same entry, Log Matching (§5.3) makes our prefix
 * up to it the committed one. Without this, voters that refuse us (their logs are longer)
 * and cannot campaign (not voters in their own, newer configuration) could leave us in
 * an older configuration forever, needing their votes. */
static void learn_commit(struct raft *r, const struct raft_msg *m)
{
    raft_term t;
    /* A leader's commit index follows from its own quorum counting alone (Figure 8). */
    if (r->role != RAFT_LEADER && m->commit > r->commit && log_term(&r->log, m->commit, &t) &&
        t == m->log_term)
        r->commit = m->commit;
}

void election_on_vote(struct raft *r, const struct raft_msg *m)
{
    bool pre = m->type == RAFT_MSG_PREVOTE;
    /* One vote per term: we may repeat a grant, or vote if we have neither voted nor
     * heard from a leader in this term. A pre-vote for a later term promises nothing. */
    bool can_vote =
        r->vote == m->from || (r->vote == 0 && r->leader == 0) || (pre && m->term > r->term);
    /* §5.4.1: the candidate's log must be at least as up to date as ours. */
    raft_term last_term = raft_last_term(r);
    bool up_to_date = m->log_term > last_term ||
                      (m->log_term == last_term && m->index >= log_last_index(&r->log));
    if (CANARY(VOTE_WITHOUT_LOG_CHECK))
        up_to_date = true;
    struct raft_msg *resp = raft_send(r, pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP, m->from);
    if (!resp)
        return;
    resp->after_persist = !pre;
    election_share_commit(r, resp);
    if (can_vote && up_to_date) {
        resp->term = m->term;
        if (!pre) {
            r->vote = m->from;
            r->election_elapsed = 0;
        }
    } else {
        resp->reject = true;
        bool ahead = m->log_term > last_term ||
                     (m->log_term == last_term && m->index > log_last_index(&r->log));
        if (!pre && r->role == RAFT_CANDIDATE && ahead && r->vote == r->id) {
            /* We voted for ourselves, yet this candidate's log is strictly more complete
             * than ours: yield. Our vote stands, but we stop competing for the next term so
             * that it can win it, rather than racing it term after term (seen with a
             * voter lagging a configuration behind, whose campaigns never reach it). */
            raft_become_follower(r, r->term, 0);
        }
    }
}

void election_on_vote_resp(struct raft *r, const struct raft_msg *m)
{
    bool pre = m->type == RAFT_MSG_PREVOTE_RESP;
    learn_commit(r, m); /* also when the answer made us a follower of a newer term */
    if (r->role != (pre ? RAFT_PRE_CANDIDATE : RAFT_CANDIDATE))
        return;
    if (!raft_is_promotable(r)) {
        /* A configuration applied since the campaign began left us out. */
        raft_become_follower(r, r->term, 0);
        return;
    }
    if (pre && !m->reject && m->term != r->term + 1)
        return; /* a grant for an older pre-election */
    struct progress *pr = raft_progress(r, m->from);
    if (!pr)
        return;
    if (pr->vote == 0)
        pr->vote = m->reject ? -1 : 1;
    switch (election_tally(r)) {
    case VOTE_WON:
        if (pre)
            election_campaign(r, false, false);
        else
            raft_become_leader(r);
        break;
    case VOTE_LOST:
        raft_become_follower(r, r->term, 0);
        break;
    default:
        break;
    }
}
