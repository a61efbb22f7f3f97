/*
 * Quorum arithmetic. Raft's safety rests on any two majorities of the same voter set
 * intersecting (paper §5.4); joint consensus (thesis §4.3) asks for a majority of the old
 * AND of the new voter set. The joint forms below are the only place that combines the
 * two halves: votes, CheckQuorum, the commit index and read rounds all go through them.
 */
#include "raft/internal.h"

uint64_t quorum_majority_value(uint64_t *vals, uint32_t n)
{
    if (n == 0)
        return UINT64_MAX;
    /* n <= ASPEN_MAX_VOTERS: insertion sort, descending. */
    for (uint32_t i = 1; i < n; i++) {
        uint64_t v = vals[i];
        uint32_t j = i;
        while (j > 0 && vals[j - 1] < v) {
            vals[j] = vals[j - 1];
            j--;
        }
        vals[j] = v;
    }
    /* The (n/2+1)-th largest value is held by a majority. */
    return vals[n / 2];
}

enum vote_result quorum_vote_result(uint32_t n, uint32_t granted, uint32_t rejected)
{
    if (n == 0)
        return VOTE_WON;
    uint32_t q = n / 2 + 1;
    if (granted >= q)
        return VOTE_WON;
    if (granted + (n - granted - rejected) >= q)
        return VOTE_PENDING;
    return VOTE_LOST;
}

enum vote_result quorum_joint_tally(struct raft *r,
                                    int (*get)(const struct raft *r, const struct progress *pr))
{
    const raft_id *sets[2] = {r->conf.voters, r->conf.outgoing};
    uint32_t ns[2] = {r->conf.n_voters, r->conf.n_outgoing};
    enum vote_result res[2];
    for (int h = 0; h < 2; h++) {
        uint32_t yes = 0, no = 0;
        for (uint32_t i = 0; i < ns[h]; i++) {
            struct progress *pr = raft_progress(r, sets[h][i]);
            int v = pr ? get(r, pr) : 0;
            yes += v > 0;
            no += v < 0;
        }
        res[h] = quorum_vote_result(ns[h], yes, no);
    }
    if (res[0] == VOTE_LOST || res[1] == VOTE_LOST)
        return VOTE_LOST;
    if (res[0] == VOTE_WON && res[1] == VOTE_WON)
        return VOTE_WON;
    return VOTE_PENDING;
}

uint64_t quorum_joint_value(struct raft *r,
                            uint64_t (*get)(const struct raft *r, const struct progress *pr))
{
    const raft_id *sets[2] = {r->conf.voters, r->conf.outgoing};
    uint32_t ns[2] = {r->conf.n_voters, r->conf.n_outgoing};
    uint64_t best = UINT64_MAX;
    for (int h = 0; h < 2; h++) {
        uint64_t vals[ASPEN_MAX_VOTERS];
        for (uint32_t i = 0; i < ns[h]; i++) {
            struct progress *pr = raft_progress(r, sets[h][i]);
            vals[i] = pr ? get(r, pr) : 0;
        }
        uint64_t v = quorum_majority_value(vals, ns[h]);
        if (v < best)
            best = v;
    }
    return best;
}
