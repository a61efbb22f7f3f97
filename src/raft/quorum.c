/*
 * Quorum arithmetic. Raft's safety rests on any two majorities of the same voter set
 * intersecting (paper §5.4); joint consensus (thesis §4.3) asks for a majority of the old
 * AND of the new voter set, which is done by the callers combining two of these answers.
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
