/*
 * The client history of one run: every operation the workload issued, with its
 * invocation time, its return time (or "unknown"), its result and the raft index the
 * response carried — the input of the linearizability and index-order checkers
 * (research consensus.md §4.3, §4.4).
 *
 * Operations whose failure proves they never executed (NOT_LEADER, BUSY, a proposal
 * whose index was taken by another term's entry) are kept but marked FAILED and left out
 * of the check. A timeout leaves the outcome UNKNOWN: the operation may or may not have
 * taken effect, its return is at +infinity, and its client id is retired (Knossos'
 * :info rule) — the workload continues under a fresh id.
 */
#ifndef ASPEN_SIM_HISTORY_H
#define ASPEN_SIM_HISTORY_H

#include "raft/raft.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum history_status {
    HISTORY_PENDING = 0,
    HISTORY_OK = 1,      /* returned with a result */
    HISTORY_FAILED = 2,  /* definitely not executed: excluded from the check */
    HISTORY_UNKNOWN = 3, /* timed out: may or may not have executed */
};

#define HISTORY_NEVER UINT64_MAX /* return time of an operation that never returned */

struct history_op {
    uint32_t client; /* history client id (fresh after each UNKNOWN) */
    uint8_t kind;    /* enum model_op_kind */
    uint8_t key;
    uint8_t status;  /* enum history_status */
    bool ok;         /* CAS: swapped; DELETE: existed; PUT: true; GET: true */
    uint64_t value;  /* PUT/CAS: written; GET: the value read (0: absent) */
    uint64_t expect; /* CAS: expected (0: absent) */
    uint64_t invoke_ns, return_ns;
    raft_index index;      /* writes: the entry's index; reads: the applied index served at */
    raft_index read_index; /* reads: the ReadIndex the core answered */
    raft_index must_see;   /* highest write index acknowledged before this op began */
    uint8_t node;          /* slot the final attempt went to */
};

struct history {
    struct history_op *ops; /* owned */
    size_t n, cap, max;
};

void history_init(struct history *h, size_t max_ops);
void history_release(struct history *h);

/* Appends an operation (status PENDING); its id is its position. 0, ASPEN_E_FULL or
 * ASPEN_E_NOMEM. */
int history_add(struct history *h, const struct history_op *op, uint64_t *id);

/* Checks the finished history: linearizability per key (Wing-Gong with Lowe's memo) and
 * the index-order rules. Writes a description of the first problem into why (size
 * why_len) and returns ASPEN_E_INVALID when the history is not linearizable, 0 when it
 * is. Other negative codes: the checker could not decide (budget).
 *
 * ADAPTER POINT: this is where src/sim/lincheck.h plugs in (history.c converts these
 * records into its input). */
int history_check(const struct history *h, char *why, size_t why_len);

#endif
