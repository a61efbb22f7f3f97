/*
 * Linearizability checking of per-key register histories recorded by the simulator's
 * clients (put / get / cas / delete with unique values).
 *
 * The simulator records one struct lincheck_op per client request and hands the whole
 * array to two checkers:
 *
 *   lincheck_check        the black-box oracle: Wing & Gong's search with Lowe's
 *                         memoization (Porcupine's checkSingle), run on each key's history
 *                         separately (P-compositionality: a register map is linearizable
 *                         iff every key's history is). Exact, exponential in the worst case,
 *                         bounded by a memory budget that turns into LINCHECK_UNKNOWN.
 *   lincheck_check_index  a cheap O(n log n) check of the implementation's own claim: the
 *                         Raft index carried by each response must be consistent with the
 *                         values observed and with real-time order.
 *
 * Both are pure: no clock, no I/O, allocation only through base/mem.h, and the same input
 * always gives the same result and explanation, so a failing seed replays exactly. The
 * research notes behind the design are shared/research/consensus.md §4.
 *
 * Cost (measured on generated histories, one key, 10^4 operations from 5-8 concurrent
 * clients, 1% of them timing out, -O2): a linearizable one checks in 10-40 ms; proving
 * one with a single stale read in the middle NOT linearizable takes 0.1-1 s and a few
 * MiB to a few tens of MiB of memo table. Unknown outcomes are what make the search
 * expensive, so the simulator should resolve every one it can from the committed log
 * before checking (as etcd's robustness tests patch their histories): a request whose
 * entry was applied becomes a known-outcome operation returning when it was applied,
 * with the outcome the state machine computed; one that never reached the log can be
 * left out. Only requests whose fate is truly open should stay unknown.
 */
#ifndef ASPEN_SIM_LINCHECK_H
#define ASPEN_SIM_LINCHECK_H

#include "base/buf.h"
#include "base/constants.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Value id 0 means "the key is absent". Written values are non-zero ids chosen by the
 * simulator, unique per key (the checker relies on that only in lincheck_check_index). */
#define LINCHECK_ABSENT UINT64_C(0)

/* A return time of LINCHECK_INF marks an operation whose outcome is unknown. */
#define LINCHECK_INF UINT64_MAX

enum lincheck_kind {
    LINCHECK_PUT = 1, /* value := v */
    LINCHECK_GET,     /* reads the value (or absent) */
    LINCHECK_CAS,     /* if value == expected then value := v; reports ok or fail */
    LINCHECK_DELETE,  /* value := absent; may report whether the key existed */
};

/* One client request as the simulator saw it. The checkers only read the array.
 *
 * Unknown outcome (a timeout, a crashed client): `unknown` is set or return_t is
 * LINCHECK_INF. The operation may then have taken effect at any moment after invoke_t or
 * never, and every output field (return_t included) is ignored. An unknown GET tells
 * nothing and is dropped; an unknown PUT / CAS / DELETE is kept as "maybe". (An unknown
 * PUT or CAS that is the only write of its value, when some GET returns that value or
 * some successful CAS expects it, certainly took effect: lincheck_check treats it as
 * known, returning at the earliest such observation.) As Knossos requires, a client that
 * saw a timeout should continue under a fresh client id (the checkers do not need it, but
 * timelines read better).
 *
 * Intervals are closed: an operation invoked at the very time another returned is
 * concurrent with it. */
struct lincheck_op {
    uint64_t client; /* for explanations only */
    uint64_t key;    /* interned key id; each key is checked on its own */
    enum lincheck_kind kind;
    uint64_t value;      /* PUT: value written (non-zero); CAS: new value (non-zero);
                            GET: value read, or LINCHECK_ABSENT; DELETE: unused */
    uint64_t expected;   /* CAS: expected value, or LINCHECK_ABSENT for "must be absent" */
    uint64_t invoke_t;   /* virtual ns when the client sent the request (< LINCHECK_INF) */
    uint64_t return_t;   /* virtual ns when the response arrived (>= invoke_t), or INF */
    uint64_t raft_index; /* index carried by the response, 0 if none; see below */
    bool unknown;        /* outcome unknown; same as return_t == LINCHECK_INF */
    bool ok;             /* CAS: the swap happened */
    bool existed_known;  /* DELETE: `existed` was reported */
    bool existed;        /* DELETE: the key existed when it was deleted */
};

/* raft_index, as lincheck_check_index reads it (lincheck_check ignores it):
 *   - PUT, DELETE and successful CAS: the log index at which the write committed. Two
 *     writes to one key never share an index.
 *   - GET and failed CAS: the applied index of the state the request was evaluated
 *     against, i.e. it saw every write with index <= raft_index and none after. This is the
 *     index the state machine had applied when it served the read, NOT the ReadIndex it
 *     waited for (a leader may have applied further by then). A failed CAS that went
 *     through the log may report its own entry's index: that entry writes nothing.
 *   - 0: not known; the operation takes no part in index checks.
 *   - The index of an unknown-outcome operation is ignored: without a response there is
 *     nothing to trust it with. */

enum lincheck_verdict {
    LINCHECK_OK = 0,    /* every key's history is linearizable / consistent */
    LINCHECK_VIOLATION, /* some key's is not: see key, op and explain */
    LINCHECK_UNKNOWN,   /* no violation found, but some key exhausted the search budget */
};

struct lincheck_result {
    enum lincheck_verdict verdict;
    uint64_t key;         /* VIOLATION: the key; UNKNOWN: the first key given up on */
    size_t op;            /* VIOLATION: index in ops[] of the operation that could not be
                             placed (lincheck_check) or that breaks a rule (index check);
                             SIZE_MAX when none */
    size_t other_op;      /* the operation it conflicts with (the last one placed before
                             it, or the write / earlier op of the broken rule); SIZE_MAX */
    size_t placed_ops;    /* lincheck_check: most of the key's known-outcome operations
                             linearized at once (the longest linearizable prefix) */
    size_t key_ops;       /* lincheck_check: known-outcome operations of that key (with
                             the unknown ones it could resolve, see lincheck_op) */
    uint64_t t_lo, t_hi;  /* a window of virtual time around the problem, for timelines */
    uint64_t keys;        /* partitions (keys) examined */
    uint64_t keys_gaveup; /* lincheck_check: keys that exhausted the budget */
    uint64_t checked;     /* lincheck_check_index: observations proven consistent */
    uint64_t skipped;     /* lincheck_check_index: observations that could not be proven
                             (no index, or an unindexed write could explain them) */
    char explain[ASPEN_LINCHECK_EXPLAIN_BYTES]; /* NUL-terminated, "" when OK */
};

struct lincheck_opts {
    /* Memo table budget per key; 0 means ASPEN_LINCHECK_CACHE_MAX_BYTES. When a key's
     * search needs more, that key counts as given up and the verdict becomes UNKNOWN
     * (unless another key has a violation). */
    size_t cache_max_bytes;
    /* How the search spends its effort (see search() in lincheck.c). They change the
     * cost, never the verdict; tests set them to 1 to drive every pass. The first, greedy
     * pass may take this many steps per operation; 0 means
     * ASPEN_LINCHECK_GREEDY_STEPS_PER_OP. */
    unsigned greedy_steps_per_op;
    /* Deepening passes before the final one; 0 means ASPEN_LINCHECK_DEEPENING_PASSES. */
    unsigned deepening_passes;
};

/* Checks that the history ops[0..n) is linearizable with respect to a map of registers
 * that all start absent. opts may be NULL (defaults). Keys are checked in ascending order
 * and the first violation stops the check; the result (always fully written on return 0)
 * names it. ops is only read and may be freed once the call returns.
 *
 * Returns 0 with the verdict in *res, or:
 *   ASPEN_E_INVALID    an operation is malformed (unknown kind, return before invoke,
 *                      invoke at LINCHECK_INF, PUT or CAS writing LINCHECK_ABSENT), or
 *                      ops is NULL with n > 0;
 *   ASPEN_E_TOO_LARGE  a key has more than ASPEN_LINCHECK_MAX_OPS_PER_KEY operations;
 *   ASPEN_E_NOMEM      out of memory (the budget is not exceeded, malloc failed).
 * On error *res holds no verdict and nothing is leaked. */
int lincheck_check(const struct lincheck_op *ops, size_t n, const struct lincheck_opts *opts,
                   struct lincheck_result *res);

/* Checks the Raft indexes carried by the responses (see raft_index above), key by key:
 *   (a) every observation agrees with replaying the key's indexed writes in index order:
 *       a GET at r sees the latest write with index <= r; a failed CAS at r saw a value
 *       other than its expected one; a successful CAS or a DELETE reporting `existed` at w
 *       saw, just before w, what it claims;
 *   (b) real time: if A returned before B was invoked, idx(A) <= idx(B), and idx(A) <
 *       idx(B) when B is a write (PUT, DELETE, successful CAS);
 *   (c) no two writes of one key share an index.
 * Writes without an index (unknown outcome, or not reported) may have been applied at any
 * index after every operation that returned before they were invoked; an observation such
 * a write could explain is counted as skipped, never flagged. The verdict is OK or
 * VIOLATION (never UNKNOWN); the first violation (keys ascending; per key (c), then (b),
 * then (a) in invocation order) is reported.
 *
 * Returns 0 with the verdict in *res, or ASPEN_E_INVALID (as lincheck_check, and also
 * when two writes of one key (PUT values and CAS new values) use the same value),
 * ASPEN_E_TOO_LARGE or ASPEN_E_NOMEM. */
int lincheck_check_index(const struct lincheck_op *ops, size_t n, struct lincheck_result *res);

/* Appends to out a small text timeline of key's operations whose intervals meet
 * [t_lo, t_hi] (pass 0 and LINCHECK_INF for all; a result's t_lo/t_hi for its window):
 * one line per operation in invocation order, at most ASPEN_LINCHECK_TIMELINE_MAX_LINES,
 * each with its description and a bar showing its interval. 0, or the buffer's
 * ASPEN_E_TOO_LARGE / ASPEN_E_NOMEM (out may then hold part of the timeline). */
int lincheck_timeline(const struct lincheck_op *ops, size_t n, uint64_t key, uint64_t t_lo,
                      uint64_t t_hi, struct buf *out);

/* Writes a one-line description of op into out[0..size) (always NUL-terminated when
 * size > 0, truncated if needed), e.g. "c3 cas(7 -> 12) ok [100, 180] @42". */
void lincheck_describe_op(const struct lincheck_op *op, char *out, size_t size);

/* "ok", "violation" or "unknown". */
const char *lincheck_verdict_name(enum lincheck_verdict v);

#endif
