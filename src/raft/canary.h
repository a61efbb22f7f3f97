/*
 * Canaries: deliberate bugs compiled into the core on request, one at a time.
 *
 * A simulator that never fails proves nothing. Each canary below re-introduces a real
 * Raft bug from the field (research consensus.md §2.6, §5); the `canary` test suite
 * builds the core once per canary (-DASPEN_CANARY=n) and runs the seed sweep, which
 * must report a violation. A canary that is not caught fails `make test`.
 *
 * Production builds define nothing, so ASPEN_CANARY is 0 and every CANARY(x) is false.
 */
#ifndef ASPEN_RAFT_CANARY_H
#define ASPEN_RAFT_CANARY_H

#define ASPEN_CANARY_NONE            0
#define ASPEN_CANARY_OLD_TERM_COMMIT 1 /* commit by counting an old-term entry (Fig. 8) */
#define ASPEN_CANARY_READ_BEFORE_TERM_COMMIT                                                       \
    2                                         /* ReadIndex before the own-term commit (etcd#7331) */
#define ASPEN_CANARY_ACK_BEFORE_DURABLE     3 /* ack appends before they are durable */
#define ASPEN_CANARY_VOTE_NOT_PERSISTED     4 /* grant a vote without persisting it */
#define ASPEN_CANARY_VOTE_WITHOUT_LOG_CHECK 5 /* grant a vote to a candidate with a stale log */
#define ASPEN_CANARY_APPLY_UNCOMMITTED      6 /* hand out entries beyond the commit index */
#define ASPEN_CANARY_COUNT                  7

#ifndef ASPEN_CANARY
#define ASPEN_CANARY ASPEN_CANARY_NONE
#endif

#define CANARY(name) (ASPEN_CANARY == ASPEN_CANARY_##name)

#endif
