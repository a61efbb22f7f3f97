/*
 * History checkers (src/sim/lincheck.h): the linearizability search accepts known-good
 * register histories and rejects the classic bad shapes (stale read, phantom value, lost
 * update, double CAS) on the right key; it agrees with an independent brute-force checker
 * on thousands of small random histories, whichever of its passes does the work (plus
 * kept regression histories); it handles 10^4 operations per key quickly, linearizable
 * or not; it gives up within its budget; the index-order checker flags index/value and
 * real-time
 * inconsistencies without ever flagging what an unindexed write could explain; and every
 * allocation failure comes back as ASPEN_E_NOMEM without a leak.
 */
#include "test.h"

#include "base/buf.h"
#include "base/mem.h"
#include "base/rand.h"
#include "sim/lincheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* ---- Building histories ---- */

static struct lincheck_op mk(enum lincheck_kind kind, uint64_t client, uint64_t key, uint64_t inv,
                             uint64_t ret)
{
    struct lincheck_op op;
    memset(&op, 0, sizeof(op));
    op.kind = kind;
    op.client = client;
    op.key = key;
    op.invoke_t = inv;
    op.return_t = ret;
    op.unknown = ret == LINCHECK_INF;
    return op;
}

static struct lincheck_op put(uint64_t c, uint64_t key, uint64_t v, uint64_t inv, uint64_t ret)
{
    struct lincheck_op op = mk(LINCHECK_PUT, c, key, inv, ret);
    op.value = v;
    return op;
}

static struct lincheck_op get(uint64_t c, uint64_t key, uint64_t v, uint64_t inv, uint64_t ret)
{
    struct lincheck_op op = mk(LINCHECK_GET, c, key, inv, ret);
    op.value = v;
    return op;
}

static struct lincheck_op cas(uint64_t c, uint64_t key, uint64_t expect, uint64_t v, bool ok,
                              uint64_t inv, uint64_t ret)
{
    struct lincheck_op op = mk(LINCHECK_CAS, c, key, inv, ret);
    op.expected = expect;
    op.value = v;
    op.ok = ok;
    return op;
}

static struct lincheck_op del(uint64_t c, uint64_t key, uint64_t inv, uint64_t ret)
{
    return mk(LINCHECK_DELETE, c, key, inv, ret);
}

static struct lincheck_op del_existed(uint64_t c, uint64_t key, bool existed, uint64_t inv,
                                      uint64_t ret)
{
    struct lincheck_op op = mk(LINCHECK_DELETE, c, key, inv, ret);
    op.existed_known = true;
    op.existed = existed;
    return op;
}

static struct lincheck_op at(struct lincheck_op op, uint64_t raft_index)
{
    op.raft_index = raft_index;
    return op;
}

#define INF     LINCHECK_INF
#define ABSENT  LINCHECK_ABSENT
#define NOPS(a) (sizeof(a) / sizeof((a)[0]))

static struct lincheck_result last; /* the most recent result, for CHECKs on details */

static enum lincheck_verdict verdict(const struct lincheck_op *ops, size_t n)
{
    int rc = lincheck_check(ops, n, NULL, &last);
    return rc ? (enum lincheck_verdict) - 1 : last.verdict;
}

static enum lincheck_verdict index_verdict(const struct lincheck_op *ops, size_t n)
{
    int rc = lincheck_check_index(ops, n, &last);
    return rc ? (enum lincheck_verdict) - 1 : last.verdict;
}

static double elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* ---- Linearizable histories ---- */

static void test_empty(void)
{
    CHECK_EQ(verdict(NULL, 0), LINCHECK_OK);
    CHECK_EQ(last.keys, 0);
    CHECK_EQ(index_verdict(NULL, 0), LINCHECK_OK);
    CHECK_STR_EQ(last.explain, "");
}

static void test_sequential(void)
{
    const struct lincheck_op h[] = {
        get(1, 0, ABSENT, 0, 5),
        put(1, 0, 1, 10, 20),
        get(1, 0, 1, 30, 40),
        put(2, 0, 2, 50, 60),
        get(3, 0, 2, 70, 80),
        del_existed(1, 0, true, 90, 100),
        get(2, 0, ABSENT, 110, 120),
        cas(1, 0, ABSENT, 3, true, 130, 140),
        get(1, 0, 3, 150, 160),
        cas(2, 0, 1, 4, false, 170, 180),
        get(3, 0, 3, 190, 200),
        del(1, 0, 210, 220),
        del_existed(2, 0, false, 230, 240),
        cas(3, 0, ABSENT, 5, true, 250, 260),
        cas(3, 0, 5, 6, true, 270, 280),
        get(1, 0, 6, 290, 300),
    };
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_OK);
    CHECK_EQ(last.keys, 1);
    CHECK_EQ(last.op, SIZE_MAX);
    CHECK_STR_EQ(last.explain, "");
}

static void test_concurrent_puts_either_order(void)
{
    /* Two overlapping puts, then a read: either one may have won. */
    struct lincheck_op h[] = {
        put(1, 0, 1, 0, 10),
        put(2, 0, 2, 5, 15),
        get(3, 0, 1, 20, 30),
    };
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_OK);
    h[2].value = 2;
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_OK);
    h[2].value = ABSENT; /* but not neither */
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_VIOLATION);
    /* A read concurrent with both may also see the old value. */
    h[2] = get(3, 0, ABSENT, 8, 30);
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_OK);
    /* Reads pin the order: 2 seen, then 1 seen, so put(2) went first. */
    const struct lincheck_op g[] = {
        put(1, 0, 1, 0, 100), put(2, 0, 2, 0, 100),   get(3, 0, 2, 10, 20),
        get(3, 0, 1, 30, 40), get(4, 0, 1, 110, 120),
    };
    CHECK_EQ(verdict(g, NOPS(g)), LINCHECK_OK);
}

static void test_closed_intervals(void)
{
    /* A get invoked at the put's return instant is concurrent with it (closed intervals),
     * so it may still see the old value; one tick later it may not. */
    struct lincheck_op h[] = {
        put(1, 0, 1, 0, 10),
        get(2, 0, ABSENT, 10, 20),
    };
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_OK);
    h[1].invoke_t = 11;
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_VIOLATION);
    /* Zero-length intervals at one instant are all concurrent with each other. */
    const struct lincheck_op z[] = {
        get(1, 0, 7, 5, 5),
        put(2, 0, 7, 5, 5),
        get(3, 0, ABSENT, 5, 5),
    };
    CHECK_EQ(verdict(z, NOPS(z)), LINCHECK_OK);
}

static void test_cas_outcomes(void)
{
    /* Two racing CAS from absent: one wins, the other fails, the read sees the winner. */
    struct lincheck_op h[] = {
        cas(1, 0, ABSENT, 1, true, 0, 10),
        cas(2, 0, ABSENT, 2, false, 0, 10),
        get(3, 0, 1, 20, 30),
    };
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_OK);
    h[2].value = 2; /* the loser's value must never appear */
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_VIOLATION);
    /* A failed CAS while the value equals its expectation cannot be. */
    const struct lincheck_op f[] = {
        put(1, 0, 1, 0, 10),
        cas(2, 0, 1, 2, false, 20, 30),
    };
    CHECK_EQ(verdict(f, NOPS(f)), LINCHECK_VIOLATION);
    /* A failed CAS against a value nobody writes is always fine. */
    const struct lincheck_op g[] = {cas(2, 0, 99, 2, false, 20, 30)};
    CHECK_EQ(verdict(g, NOPS(g)), LINCHECK_OK);
}

static void test_delete(void)
{
    struct lincheck_op h[] = {
        put(1, 0, 1, 0, 10),
        del_existed(1, 0, true, 20, 30),
        get(2, 0, ABSENT, 40, 50),
        del_existed(2, 0, false, 60, 70),
    };
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_OK);
    h[1].existed = false; /* it did exist */
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_VIOLATION);
    CHECK_EQ(last.op, 1);
    h[1].existed_known = false; /* not reported: no constraint */
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_OK);
    h[3].existed = true; /* deleted twice, the second cannot find it */
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_VIOLATION);
}

static void test_unknown_outcome(void)
{
    /* An unknown put that took effect (observed) ... */
    struct lincheck_op h[] = {
        put(1, 0, 1, 0, 10),
        put(2, 0, 2, 20, INF),
        get(3, 0, 2, 50, 60),
        get(3, 0, 2, 70, 80),
    };
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_OK);
    /* ... that did not (never observed) ... */
    h[2].value = 1;
    h[3].value = 1;
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_OK);
    /* ... that took effect late, between two reads ... */
    h[3].value = 2;
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_OK);
    /* ... but once seen it cannot be undone, and it cannot act before its invoke. */
    h[2].value = 2;
    h[3].value = 1;
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_VIOLATION);
    CHECK_EQ(last.op, 3);
    const struct lincheck_op early[] = {
        get(3, 0, 2, 0, 10),
        put(2, 0, 2, 20, INF),
    };
    CHECK_EQ(verdict(early, NOPS(early)), LINCHECK_VIOLATION);
    /* return_t == INF alone also means unknown; an unknown get's output is ignored. */
    struct lincheck_op g[] = {
        put(1, 0, 1, 0, 10),       get(2, 0, 77, 20, INF),    del(3, 0, 30, INF),
        get(4, 0, ABSENT, 40, 50), get(4, 0, ABSENT, 60, 70),
    };
    g[1].unknown = false;
    g[2].unknown = false;
    CHECK_EQ(verdict(g, NOPS(g)), LINCHECK_OK);
    /* The unknown flag alone also means unknown, whatever return_t says. */
    struct lincheck_op f[] = {
        put(1, 0, 1, 0, 10),
        del(3, 0, 30, 35),
        get(4, 0, 1, 40, 50),
        get(4, 0, ABSENT, 60, 70),
    };
    CHECK_EQ(verdict(f, NOPS(f)), LINCHECK_VIOLATION);
    f[1].unknown = true;
    CHECK_EQ(verdict(f, NOPS(f)), LINCHECK_OK);
}

static void test_unknown_cas(void)
{
    struct lincheck_op h[] = {
        put(1, 0, 1, 0, 10),
        cas(2, 0, 1, 2, false, 20, INF), /* ok/fail fields are ignored when unknown */
        get(3, 0, 2, 50, 60),
    };
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_OK);
    h[2].value = 1;
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_OK);
    /* It can only have succeeded from its expected value. */
    h[0].value = 5;
    h[2].value = 2;
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_VIOLATION);
}

/* ---- Non-linearizable histories ---- */

static void test_stale_read(void)
{
    const struct lincheck_op h[] = {
        put(1, 7, 1, 0, 10),
        put(2, 7, 2, 20, 30),
        get(3, 7, 1, 40, 50),
    };
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_VIOLATION);
    CHECK_EQ_U64(last.key, 7);
    CHECK_EQ(last.op, 2);
    CHECK_EQ(last.other_op, 1);
    CHECK_EQ(last.placed_ops, 2);
    CHECK_EQ(last.key_ops, 3);
    CHECK_EQ_U64(last.t_lo, 20);
    CHECK_EQ_U64(last.t_hi, 50);
    CHECK_MSG(strstr(last.explain, "key 7") && strstr(last.explain, "#2 c3 get -> 1 [40, 50]") &&
                  strstr(last.explain, "register at 2") &&
                  strstr(last.explain, "#1 c2 put(2) [20, 30]"),
              "explain: %s", last.explain);
}

static void test_phantom_value(void)
{
    const struct lincheck_op h[] = {
        put(1, 3, 1, 0, 10),
        get(2, 3, 42, 5, 50),
    };
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_VIOLATION);
    CHECK_EQ_U64(last.key, 3);
    CHECK_EQ(last.op, 1);
    CHECK_MSG(strstr(last.explain, "get -> 42"), "explain: %s", last.explain);
}

static void test_absent_after_put(void)
{
    const struct lincheck_op h[] = {
        put(1, 4, 1, 0, 10),
        get(2, 4, ABSENT, 20, 30),
    };
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_VIOLATION);
    CHECK_EQ_U64(last.key, 4);
    CHECK_EQ(last.op, 1);
}

static void test_double_cas(void)
{
    /* Both CAS(1 -> x) claim success though only one can see 1. */
    const struct lincheck_op h[] = {
        put(1, 5, 1, 0, 10),
        cas(2, 5, 1, 2, true, 20, 40),
        cas(3, 5, 1, 3, true, 25, 35),
    };
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_VIOLATION);
    CHECK_EQ_U64(last.key, 5);
}

static void test_lost_update(void)
{
    /* A completed CAS(1 -> 2) is lost: a later CAS still finds 1. */
    const struct lincheck_op h[] = {
        put(1, 6, 1, 0, 10),
        cas(2, 6, 1, 2, true, 20, 30),
        cas(3, 6, 1, 3, true, 40, 50),
        get(1, 6, 3, 60, 70),
    };
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_VIOLATION);
    CHECK_EQ_U64(last.key, 6);
    CHECK_EQ(last.op, 2);
}

static void test_partitions(void)
{
    /* Key 1 is fine, key 2 has a stale read; their operations interleave in time and in
     * the array, and the values collide across keys (allowed: keys are independent). */
    const struct lincheck_op h[] = {
        put(1, 1, 1, 0, 10),  put(2, 2, 1, 0, 10),  get(3, 1, 1, 12, 18), put(4, 2, 2, 20, 30),
        put(1, 1, 2, 20, 30), get(3, 2, 1, 40, 50), get(4, 1, 2, 40, 50),
    };
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_VIOLATION);
    CHECK_EQ_U64(last.key, 2);
    CHECK_EQ(last.op, 5);
    CHECK_EQ(last.keys, 2);
    /* Each key alone: only key 2 fails. A history of key 1's ops only is fine. */
    const struct lincheck_op k1[] = {h[0], h[2], h[4], h[6]};
    CHECK_EQ(verdict(k1, NOPS(k1)), LINCHECK_OK);
    /* Keys really are separate registers: fine per key, not as one register. */
    struct lincheck_op sep[] = {
        put(1, 1, 1, 0, 10),
        put(2, 2, 2, 0, 10),
        get(3, 1, 1, 20, 30),
        get(4, 2, 2, 20, 30),
    };
    CHECK_EQ(verdict(sep, NOPS(sep)), LINCHECK_OK);
    CHECK_EQ(last.keys, 2);
    for (size_t i = 0; i < NOPS(sep); i++)
        sep[i].key = 9;
    CHECK_EQ(verdict(sep, NOPS(sep)), LINCHECK_VIOLATION);
    /* Several bad keys: the lowest key is reported. */
    struct lincheck_op two[NOPS(h) * 2];
    memcpy(two, h, sizeof(h));
    memcpy(two + NOPS(h), h, sizeof(h));
    for (size_t i = NOPS(h); i < NOPS(two); i++)
        two[i].key = h[i - NOPS(h)].key == 2 ? 0 : 3;
    CHECK_EQ(verdict(two, NOPS(two)), LINCHECK_VIOLATION);
    CHECK_EQ_U64(last.key, 0);
}

static void test_invalid_input(void)
{
    struct lincheck_op h[] = {put(1, 0, 1, 0, 10)};
    CHECK_ERR(lincheck_check(NULL, 1, NULL, &last), ASPEN_E_INVALID);
    h[0].kind = (enum lincheck_kind)0;
    CHECK_ERR(lincheck_check(h, 1, NULL, &last), ASPEN_E_INVALID);
    h[0].kind = (enum lincheck_kind)(LINCHECK_DELETE + 1);
    CHECK_ERR(lincheck_check(h, 1, NULL, &last), ASPEN_E_INVALID);
    h[0] = put(1, 0, 1, 10, 9); /* returns before it was invoked */
    CHECK_ERR(lincheck_check(h, 1, NULL, &last), ASPEN_E_INVALID);
    CHECK_ERR(lincheck_check_index(h, 1, &last), ASPEN_E_INVALID);
    h[0] = put(1, 0, ABSENT, 0, 10); /* writes "absent" */
    CHECK_ERR(lincheck_check(h, 1, NULL, &last), ASPEN_E_INVALID);
    h[0] = cas(1, 0, 1, ABSENT, true, 0, 10);
    CHECK_ERR(lincheck_check(h, 1, NULL, &last), ASPEN_E_INVALID);
    h[0] = get(1, 0, 1, INF, INF); /* invoked at infinity */
    CHECK_ERR(lincheck_check(h, 1, NULL, &last), ASPEN_E_INVALID);
    CHECK_EQ(last.verdict, LINCHECK_OK); /* an error leaves a reset result */
    /* An unknown op may have return_t < invoke_t: its return_t is ignored. */
    h[0] = put(1, 0, 1, 10, 0);
    h[0].unknown = true;
    CHECK_OK(lincheck_check(h, 1, NULL, &last));
}

static void test_too_many_ops_per_key(void)
{
    size_t n = ASPEN_LINCHECK_MAX_OPS_PER_KEY + 1;
    struct lincheck_op *h = mem_calloc(n, sizeof(*h));
    CHECK(h != NULL);
    for (size_t i = 0; i < n; i++)
        h[i] = put(1, i == 0 ? 1 : 2, i + 1, 2 * i, 2 * i + 1);
    int ok_split = lincheck_check(h, n, NULL, &last); /* 1 + 100000: at the limit */
    h[0].key = 2;
    int too_many = lincheck_check(h, n, NULL, &last);
    int too_many_ix = lincheck_check_index(h, n, &last);
    h[0].kind = LINCHECK_GET; /* unknown gets do not count */
    h[0].unknown = true;
    int unknown_get = lincheck_check(h, n, NULL, &last);
    mem_free(h);
    CHECK_OK(ok_split);
    CHECK_ERR(too_many, ASPEN_E_TOO_LARGE);
    CHECK_ERR(too_many_ix, ASPEN_E_TOO_LARGE);
    CHECK_OK(unknown_get);
}

/* ---- Brute force cross-check ---- */

/* An independent checker for small histories: depth-first over every order of the
 * operations that respects real time, each unknown-outcome write included or left out,
 * remembering only which (placed set, value) pairs failed. None of the checker's
 * reductions (patching, anonymous values, dominance, symmetry, normal form, passes). */
#define BRUTE_MAX_OPS    12
#define BRUTE_MAX_VALUES 64 /* values in these histories stay below this */

struct brute {
    const struct lincheck_op *ops;
    size_t n;
    uint8_t *failed; /* [1 << n][BRUTE_MAX_VALUES] */
};

static bool brute_unknown(const struct lincheck_op *op)
{
    return op->unknown || op->return_t == INF;
}

static bool brute_step(const struct lincheck_op *op, uint64_t s, uint64_t *ns)
{
    bool unknown = brute_unknown(op);
    *ns = s;
    switch (op->kind) {
    case LINCHECK_PUT:
        *ns = op->value;
        return true;
    case LINCHECK_GET:
        return s == op->value;
    case LINCHECK_CAS:
        if (s == op->expected && (unknown || op->ok)) {
            *ns = op->value;
            return true;
        }
        return unknown || (!op->ok && s != op->expected);
    case LINCHECK_DELETE:
        *ns = ABSENT;
        return unknown || !op->existed_known || op->existed == (s != ABSENT);
    }
    return false;
}

static bool brute_search(struct brute *b, uint32_t used, uint64_t s)
{
    uint8_t *failed = &b->failed[(size_t)used * BRUTE_MAX_VALUES + s];
    if (*failed)
        return false;
    bool all_known = true;
    for (size_t i = 0; i < b->n; i++)
        if (!brute_unknown(&b->ops[i]) && !(used & (1u << i)))
            all_known = false;
    if (all_known)
        return true;
    for (size_t i = 0; i < b->n; i++) {
        const struct lincheck_op *op = &b->ops[i];
        if (used & (1u << i))
            continue;
        if (op->kind == LINCHECK_GET && brute_unknown(op))
            continue;
        bool minimal = true;
        for (size_t j = 0; j < b->n && minimal; j++) {
            const struct lincheck_op *o = &b->ops[j];
            if (j != i && !(used & (1u << j)) && !brute_unknown(o) && o->return_t < op->invoke_t)
                minimal = false;
        }
        uint64_t ns;
        if (minimal && brute_step(op, s, &ns) && brute_search(b, used | (1u << i), ns))
            return true;
    }
    *failed = 1;
    return false;
}

/* 1 linearizable, 0 not, -1 out of memory. */
static int brute_check(const struct lincheck_op *ops, size_t n)
{
    struct brute b = {ops, n, mem_calloc((size_t)BRUTE_MAX_VALUES << n, 1)};
    if (!b.failed)
        return -1;
    bool ok = brute_search(&b, 0, ABSENT);
    mem_free(b.failed);
    return ok;
}

static void random_small_history(struct rng *r, struct lincheck_op *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t inv = rng_below(r, 3 * n);
        uint64_t ret = rng_ratio(r, 1, 6) ? INF : inv + rng_below(r, 8);
        uint64_t c = i % 3;
        /* Values from a tiny pool, not unique: the search must not rely on uniqueness. */
        uint64_t v = 1 + rng_below(r, 3);
        switch (rng_below(r, 4)) {
        case 0:
            h[i] = put(c, 0, v, inv, ret);
            break;
        case 1:
            h[i] = get(c, 0, rng_below(r, 4), inv, ret);
            break;
        case 2:
            h[i] = cas(c, 0, rng_below(r, 4), v, rng_ratio(r, 1, 2), inv, ret);
            break;
        default:
            h[i] = rng_ratio(r, 1, 2) ? del(c, 0, inv, ret)
                                      : del_existed(c, 0, rng_ratio(r, 1, 2), inv, ret);
            break;
        }
    }
}

/* Like random_small_history, but the way the simulator writes: unique values, reads
 * and CAS expectations drawn from values written (or absent), and many unknown outcomes,
 * so patching, anonymous values and the unknown-operation reductions all come into play. */
static void random_unique_history(struct rng *r, struct lincheck_op *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t inv = rng_below(r, 2 * n + 4);
        uint64_t ret = rng_ratio(r, 1, 3) ? INF : inv + rng_below(r, 6);
        uint64_t c = i % 4, v = 10 + i;
        uint64_t seen = rng_ratio(r, 1, 4) ? ABSENT : 10 + rng_below(r, n);
        switch (rng_below(r, 4)) {
        case 0:
            h[i] = put(c, 0, v, inv, ret);
            break;
        case 1:
            h[i] = get(c, 0, seen, inv, ret);
            break;
        case 2:
            h[i] = cas(c, 0, seen, v, rng_ratio(r, 1, 2), inv, ret);
            break;
        default:
            h[i] = rng_ratio(r, 1, 2) ? del(c, 0, inv, ret)
                                      : del_existed(c, 0, rng_ratio(r, 1, 2), inv, ret);
            break;
        }
    }
}

/* Search settings that send small histories through each of the search's passes. */
static const struct lincheck_opts efforts[] = {
    {.greedy_steps_per_op = 1},
    {.greedy_steps_per_op = 1, .deepening_passes = 1},
};

static void test_agrees_with_brute_force(void)
{
    struct rng r;
    rng_seed(&r, test_seed());
    uint64_t iters = test_iters(6000), ok = 0, bad = 0;
    for (uint64_t it = 0; it < iters; it++) {
        struct lincheck_op h[BRUTE_MAX_OPS];
        size_t n = 1 + rng_below(&r, BRUTE_MAX_OPS);
        if (it % 2)
            random_unique_history(&r, h, n);
        else
            random_small_history(&r, h, n);
        int brute = brute_check(h, n);
        CHECK(brute >= 0);
        bool expect = brute == 1;
        /* The same verdict whichever passes do the work: the greedy pass alone (the
         * default, for such small histories), deepening, or straight to the final pass. */
        for (size_t how = 0; how < NOPS(efforts); how++) {
            CHECK_OK(lincheck_check(h, n, &efforts[how], &last));
            CHECK_MSG(last.verdict == (expect ? LINCHECK_OK : LINCHECK_VIOLATION),
                      "iteration %" PRIu64 " (effort %zu): brute force says %s, checker says "
                      "%s (%s)",
                      it, how, expect ? "ok" : "violation", lincheck_verdict_name(last.verdict),
                      last.explain);
        }
        enum lincheck_verdict got = verdict(h, n);
        CHECK_MSG(got == (expect ? LINCHECK_OK : LINCHECK_VIOLATION),
                  "iteration %" PRIu64 ": brute force says %s, checker says %s (%s)", it,
                  expect ? "ok" : "violation", lincheck_verdict_name(got), last.explain);
        expect ? ok++ : bad++;
    }
    /* Both outcomes must be well represented or the comparison proves little. */
    CHECK_MSG(ok > iters / 10 && bad > iters / 10, "ok %" PRIu64 ", violations %" PRIu64, ok, bad);
}

/* Histories on which dominance that ignored the unknown set, or tested the subset the
 * wrong way round, gave false violations (found by the random cross-check at 20 times its
 * default iterations; kept here so the default run catches those mistakes). Each is
 * linearizable. */
static void test_unknown_set_regressions(void)
{
    const struct lincheck_op reg_s2_i7164[] = {
        /* seed 2, iteration 7164 */
        del_existed(0, 0, false, 19, 22),
        put(1, 0, 2, 6, 11),
        cas(2, 0, 2, 1, true, 22, 28),
        del_existed(0, 0, false, 7, INF),
        get(1, 0, 3, 34, 38),
        put(2, 0, 2, 5, INF),
        del_existed(0, 0, true, 11, 15),
        cas(1, 0, ABSENT, 3, true, 0, INF),
        cas(2, 0, ABSENT, 2, true, 9, 11),
        cas(0, 0, 2, 3, true, 34, 41),
        get(1, 0, 3, 10, 17),
        del(2, 0, 32, 37),
    };
    const struct lincheck_op reg_s4_i5494[] = {
        /* seed 4, iteration 5494 */
        cas(0, 0, 2, 1, true, 14, 16),
        cas(1, 0, 2, 3, true, 21, 28),
        put(2, 0, 1, 9, 14),
        del_existed(0, 0, false, 6, INF),
        del_existed(1, 0, false, 12, 19),
        put(2, 0, 3, 13, 20),
        cas(0, 0, ABSENT, 3, true, 29, 30),
        put(1, 0, 2, 18, INF),
        put(2, 0, 3, 24, 24),
        put(0, 0, 2, 14, 18),
    };
    const struct lincheck_op reg_s2_i5007[] = {
        /* seed 2, iteration 5007 */
        cas(0, 0, 13, 10, true, 23, INF),
        del(1, 0, 0, 4),
        put(2, 0, 12, 27, INF),
        del_existed(3, 0, true, 11, 11),
        cas(0, 0, 19, 14, true, 12, INF),
        cas(1, 0, 11, 15, false, 6, 7),
        put(2, 0, 16, 12, 16),
        del_existed(3, 0, false, 27, INF),
        cas(0, 0, 14, 18, true, 14, 16),
        put(1, 0, 19, 2, INF),
        put(2, 0, 20, 7, INF),
        del(3, 0, 26, 30),
    };
    const struct lincheck_op reg_s1_i29530[] = {
        /* seed 1, iteration 29530 */
        put(0, 0, 3, 23, INF),
        put(1, 0, 1, 20, INF),
        cas(2, 0, 2, 1, false, 20, INF),
        del(0, 0, 23, INF),
        cas(1, 0, 1, 1, true, 25, 31),
        del_existed(2, 0, true, 17, 24),
        del_existed(0, 0, true, 9, INF),
        cas(1, 0, 1, 3, false, 14, INF),
        del(2, 0, 26, 28),
    };
    const struct lincheck_op reg_s7_i21305[] = {
        /* seed 7, iteration 21305 */
        put(0, 0, 10, 8, 12),
        put(1, 0, 11, 11, 11),
        cas(2, 0, ABSENT, 12, false, 17, 22),
        del_existed(3, 0, true, 3, 5),
        del_existed(0, 0, false, 13, INF),
        del_existed(1, 0, false, 16, 20),
        put(2, 0, 16, 2, INF),
        cas(3, 0, ABSENT, 17, true, 8, 13),
    };
    const struct lincheck_op reg_s8_i13382[] = {
        /* seed 8, iteration 13382 */
        cas(0, 0, 2, 3, true, 28, 30),
        put(1, 0, 2, 26, INF),
        put(2, 0, 3, 5, INF),
        del(0, 0, 25, 26),
        put(1, 0, 3, 19, 26),
        cas(2, 0, 3, 2, true, 11, 11),
        del(0, 0, 21, 26),
        cas(1, 0, 3, 3, false, 0, 1),
        del(2, 0, 7, 7),
        cas(0, 0, 2, 1, true, 25, 32),
    };
    const struct {
        const struct lincheck_op *ops;
        size_t n;
    } hs[] = {
        {reg_s2_i7164, NOPS(reg_s2_i7164)},   {reg_s4_i5494, NOPS(reg_s4_i5494)},
        {reg_s2_i5007, NOPS(reg_s2_i5007)},   {reg_s1_i29530, NOPS(reg_s1_i29530)},
        {reg_s7_i21305, NOPS(reg_s7_i21305)}, {reg_s8_i13382, NOPS(reg_s8_i13382)},
    };
    for (size_t i = 0; i < NOPS(hs); i++) {
        CHECK_EQ(brute_check(hs[i].ops, hs[i].n), 1);
        for (size_t how = 0; how < NOPS(efforts); how++) {
            CHECK_OK(lincheck_check(hs[i].ops, hs[i].n, &efforts[how], &last));
            CHECK_MSG(last.verdict == LINCHECK_OK, "history %zu (effort %zu): %s", i, how,
                      last.explain);
        }
        CHECK_EQ(verdict(hs[i].ops, hs[i].n), LINCHECK_OK);
    }
}

/* ---- Large generated histories ---- */

/* A linearizable history of one register: clients issue operations back to back, each
 * takes effect at a random point inside its interval, and outputs (and Raft indexes, from
 * a simulated log) are computed by applying them in that order. */
struct gen {
    struct lincheck_op *ops;
    uint64_t *lp; /* linearization point of each op */
    size_t n;
};

/* Fills order[] with op indexes by linearization point (stable). A bottom-up merge sort:
 * qsort has no context argument to reach g->lp. */
static int sort_by_lp(struct gen *g, size_t *order)
{
    size_t n = g->n;
    size_t *tmp = mem_calloc(n ? n : 1, sizeof(*tmp));
    if (!tmp)
        return ASPEN_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t a = lo, b = mid, k = lo;
            while (a < mid || b < hi) {
                bool take_a = b >= hi || (a < mid && g->lp[order[a]] <= g->lp[order[b]]);
                tmp[k++] = take_a ? order[a++] : order[b++];
            }
        }
        memcpy(order, tmp, n * sizeof(*order));
    }
    mem_free(tmp);
    return 0;
}

static int gen_history(struct rng *r, size_t n, uint64_t key, unsigned unknown_permille,
                       struct gen *g)
{
    g->n = n;
    g->ops = mem_calloc(n, sizeof(*g->ops));
    g->lp = mem_calloc(n, sizeof(*g->lp));
    size_t *order = mem_calloc(n, sizeof(*order));
    if (!g->ops || !g->lp || !order) {
        mem_free(order);
        return ASPEN_E_NOMEM;
    }
    size_t clients = (size_t)rng_range(r, 5, 8);
    uint64_t free_at[8] = {0}, id[8], next_client = 0;
    for (size_t c = 0; c < clients; c++)
        id[c] = next_client++;
    for (size_t i = 0; i < n; i++) {
        size_t c = 0;
        for (size_t k = 1; k < clients; k++)
            if (free_at[k] < free_at[c])
                c = k;
        /* Multiples of 5 ns make equal timestamps (touching intervals) common. */
        uint64_t inv = free_at[c] + 5 * rng_below(r, 8);
        uint64_t dur = 5 * rng_below(r, 20);
        g->lp[i] = inv + rng_below(r, dur + 1);
        struct lincheck_op *op = &g->ops[i];
        op->key = key;
        op->client = id[c];
        op->invoke_t = inv;
        if (rng_below(r, 1000) < unknown_permille) {
            op->return_t = INF;
            op->unknown = true;
            id[c] = next_client++; /* a client that timed out continues as a new one */
            free_at[c] = inv + 500;
        } else {
            op->return_t = inv + dur;
            free_at[c] = op->return_t;
        }
        uint64_t roll = rng_below(r, 100);
        op->kind = roll < 40   ? LINCHECK_GET
                   : roll < 70 ? LINCHECK_PUT
                   : roll < 85 ? LINCHECK_CAS
                               : LINCHECK_DELETE;
    }
    int rc = sort_by_lp(g, order);
    if (rc) {
        mem_free(order);
        return rc;
    }
    uint64_t state = ABSENT, log = 0, next_value = 1;
    uint64_t *last_read = mem_calloc(next_client, sizeof(*last_read)); /* per client id */
    if (!last_read) {
        mem_free(order);
        return ASPEN_E_NOMEM;
    }
    for (size_t j = 0; j < n; j++) {
        struct lincheck_op *op = &g->ops[order[j]];
        bool applies = !op->unknown || rng_ratio(r, 1, 2);
        switch (op->kind) {
        case LINCHECK_PUT:
            op->value = next_value++;
            if (applies) {
                state = op->value;
                op->raft_index = ++log;
            }
            break;
        case LINCHECK_GET:
            op->value = state;
            op->raft_index = log;
            if (!op->unknown)
                last_read[op->client] = state;
            break;
        case LINCHECK_CAS:
            /* Like a read-modify-write client: expect the value this client last read,
             * which is often still current (success) and sometimes stale (failure). */
            op->expected = last_read[op->client];
            op->value = next_value++;
            op->ok = applies && state == op->expected;
            if (op->ok) {
                state = op->value;
                op->raft_index = ++log;
            } else {
                op->raft_index = log;
            }
            break;
        case LINCHECK_DELETE:
            op->existed_known = rng_ratio(r, 1, 2);
            op->existed = state != ABSENT;
            if (applies) {
                state = ABSENT;
                op->raft_index = ++log;
            }
            break;
        }
        if (op->unknown)
            op->raft_index = 0; /* no response, nothing carried */
        else if (rng_ratio(r, 1, 100))
            op->raft_index = 0; /* now and then the response carries no index */
    }
    mem_free(last_read);
    mem_free(order);
    return 0;
}

static void gen_release(struct gen *g)
{
    mem_free(g->ops);
    mem_free(g->lp);
    g->ops = NULL;
    g->lp = NULL;
}

/* Turns a GET in the second half into a stale read: it returns the value of a PUT that
 * was followed, in real time, by another completed PUT that returned before the GET was
 * invoked. Returns the GET's index, or SIZE_MAX if the history has no such shape. */
static size_t inject_stale_read(struct gen *g)
{
    for (size_t i = g->n / 2; i < g->n; i++) {
        struct lincheck_op *rd = &g->ops[i];
        if (rd->kind != LINCHECK_GET || rd->unknown || !rd->raft_index)
            continue;
        for (size_t q = i; q-- > 0;) {
            const struct lincheck_op *wq = &g->ops[q];
            if (wq->kind != LINCHECK_PUT || wq->unknown || !wq->raft_index ||
                wq->return_t >= rd->invoke_t)
                continue;
            for (size_t p = q; p-- > 0;) {
                const struct lincheck_op *wp = &g->ops[p];
                if (wp->kind != LINCHECK_PUT || wp->unknown || !wp->raft_index ||
                    wp->return_t >= wq->invoke_t)
                    continue;
                rd->value = wp->value;
                return i;
            }
        }
    }
    return SIZE_MAX;
}

static void test_10k_linearizable(void)
{
    struct rng r;
    rng_seed(&r, test_seed());
    struct gen g;
    CHECK_OK(gen_history(&r, 10000, 42, 10, &g));
    size_t unknown = 0;
    for (size_t i = 0; i < g.n; i++)
        unknown += g.ops[i].unknown;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = lincheck_check(g.ops, g.n, NULL, &last);
    double ms = elapsed_ms(&t0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc_ix = lincheck_check_index(g.ops, g.n, &last);
    double ms_ix = elapsed_ms(&t0);
    struct lincheck_result ix = last;
    lincheck_check(g.ops, g.n, NULL, &last);
    gen_release(&g);
    printf("    10k linearizable (%zu unknown): search %.1f ms, index check %.1f ms (%" PRIu64
           " checked, %" PRIu64 " skipped)\n",
           unknown, ms, ms_ix, ix.checked, ix.skipped);
    CHECK_OK(rc);
    CHECK_OK(rc_ix);
    CHECK_MSG(last.verdict == LINCHECK_OK, "%s: %s", lincheck_verdict_name(last.verdict),
              last.explain);
    CHECK_MSG(ix.verdict == LINCHECK_OK, "index: %s", ix.explain);
    CHECK(unknown > 20);
    CHECK(ix.checked > 5000);
}

static void test_10k_stale_read(void)
{
    struct rng r;
    rng_seed(&r, test_seed() + 1);
    struct gen g;
    CHECK_OK(gen_history(&r, 10000, 42, 10, &g));
    size_t bad = inject_stale_read(&g);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = lincheck_check(g.ops, g.n, NULL, &last);
    double ms = elapsed_ms(&t0);
    struct lincheck_result lin = last;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc_ix = lincheck_check_index(g.ops, g.n, &last);
    double ms_ix = elapsed_ms(&t0);
    struct buf tl;
    buf_init(&tl, 1 << 20);
    int rc_tl = lincheck_timeline(g.ops, g.n, lin.key, lin.t_lo, lin.t_hi, &tl);
    size_t tl_lines = 0;
    for (size_t i = 0; i < tl.len; i++)
        tl_lines += tl.data[i] == '\n';
    buf_release(&tl);
    gen_release(&g);
    printf("    10k with a stale read at #%zu: search %.1f ms, index check %.1f ms\n", bad, ms,
           ms_ix);
    CHECK(bad != SIZE_MAX);
    CHECK_OK(rc);
    CHECK_OK(rc_ix);
    CHECK_MSG(lin.verdict == LINCHECK_VIOLATION, "%s", lincheck_verdict_name(lin.verdict));
    CHECK_EQ_U64(lin.key, 42);
    /* The search stops at the first return it cannot get past: the stale read itself or
     * an operation it overlaps. */
    CHECK_MSG(lin.placed_ops < lin.key_ops, "placed %zu of %zu", lin.placed_ops, lin.key_ops);
    printf("    %s\n", lin.explain);
    CHECK_EQ(last.verdict, LINCHECK_VIOLATION);
    CHECK_EQ(last.op, bad);
    CHECK_OK(rc_tl);
    CHECK(tl_lines >= 2);
}

static void test_many_keys(void)
{
    /* Several generated keys interleaved in one array (each with its own simulated log). */
    struct rng r;
    rng_seed(&r, test_seed() + 2);
    enum { KEYS = 6, PER_KEY = 1500 };
    struct lincheck_op *all = mem_calloc(KEYS * PER_KEY, sizeof(*all));
    CHECK(all != NULL);
    int rc = 0;
    for (size_t k = 0; k < KEYS && !rc; k++) {
        struct gen g;
        rc = gen_history(&r, PER_KEY, 100 - k, 20, &g);
        for (size_t i = 0; !rc && i < PER_KEY; i++)
            all[i * KEYS + k] = g.ops[i];
        gen_release(&g);
    }
    int rc_lin = rc ? rc : lincheck_check(all, KEYS * PER_KEY, NULL, &last);
    struct lincheck_result lin = last;
    int rc_ix = rc ? rc : lincheck_check_index(all, KEYS * PER_KEY, &last);
    mem_free(all);
    CHECK_OK(rc_lin);
    CHECK_OK(rc_ix);
    CHECK_MSG(lin.verdict == LINCHECK_OK, "%s", lin.explain);
    CHECK_EQ(lin.keys, KEYS);
    CHECK_MSG(last.verdict == LINCHECK_OK, "%s", last.explain);
    CHECK_EQ(last.keys, KEYS);
}

/* ---- Budget ---- */

static void test_budget_gives_unknown(void)
{
    struct rng r;
    rng_seed(&r, test_seed() + 3);
    struct gen g;
    CHECK_OK(gen_history(&r, 2000, 1, 10, &g));
    /* The stale read key needs a proof of exhaustion; with a budget too small for the
     * search the answer is UNKNOWN, never OK. */
    size_t bad = inject_stale_read(&g);
    struct lincheck_opts tiny = {.cache_max_bytes = 16 * 1024};
    int rc_small = lincheck_check(g.ops, g.n, &tiny, &last);
    struct lincheck_result small = last;
    struct lincheck_opts none = {.cache_max_bytes = 100}; /* not even the first table */
    int rc_none = lincheck_check(g.ops, g.n, &none, &last);
    struct lincheck_result nothing = last;
    int rc_full = lincheck_check(g.ops, g.n, NULL, &last);
    struct lincheck_result full = last;
    /* A violation on another key is still found when one key gives up. */
    struct lincheck_op *both = mem_calloc(g.n + 2, sizeof(*both));
    int rc_both = ASPEN_E_NOMEM;
    if (both) {
        memcpy(both, g.ops, g.n * sizeof(*both));
        both[g.n] = put(1, 2, 1, 0, 10);
        both[g.n + 1] = get(2, 2, ABSENT, 20, 30);
        rc_both = lincheck_check(both, g.n + 2, &tiny, &last);
        mem_free(both);
    }
    gen_release(&g);
    CHECK(bad != SIZE_MAX);
    CHECK_OK(rc_small);
    CHECK_EQ(small.verdict, LINCHECK_UNKNOWN);
    CHECK_EQ_U64(small.key, 1);
    CHECK_EQ(small.keys_gaveup, 1);
    CHECK_MSG(strstr(small.explain, "gave up"), "%s", small.explain);
    CHECK_OK(rc_none);
    CHECK_EQ(nothing.verdict, LINCHECK_UNKNOWN);
    CHECK_OK(rc_full);
    CHECK_EQ(full.verdict, LINCHECK_VIOLATION);
    CHECK_OK(rc_both);
    CHECK_EQ(last.verdict, LINCHECK_VIOLATION);
    CHECK_EQ_U64(last.key, 2);
    CHECK_EQ(last.keys_gaveup, 1);
}

/* ---- Index-order checker ---- */

static void test_index_correct(void)
{
    const struct lincheck_op h[] = {
        at(get(1, 0, ABSENT, 0, 5), 0),
        at(put(1, 0, 1, 10, 20), 1),
        at(get(2, 0, 1, 12, 25), 1), /* served after put(1) applied */
        at(put(3, 0, 2, 15, 30), 2),
        at(get(2, 0, 2, 31, 35), 3), /* another key's entry was applied at 3 */
        at(cas(1, 0, 2, 3, true, 40, 50), 4),
        at(cas(2, 0, 2, 9, false, 41, 51), 5), /* evaluated at its own entry: 3 there */
        at(del_existed(3, 0, true, 60, 70), 6),
        at(get(1, 0, ABSENT, 80, 90), 6),
        at(del_existed(2, 0, false, 91, 92), 7),
        at(cas(1, 0, ABSENT, 4, true, 95, 99), 9),
        get(3, 0, 4, 100, 110), /* no index: skipped */
    };
    CHECK_EQ(index_verdict(h, NOPS(h)), LINCHECK_OK);
    CHECK_MSG(last.checked == 8 && last.skipped == 2, "checked %" PRIu64 " skipped %" PRIu64,
              last.checked, last.skipped);
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_OK); /* and it is linearizable, of course */
}

static void test_index_stale_read(void)
{
    const struct lincheck_op h[] = {
        at(put(1, 8, 1, 0, 10), 1), at(put(2, 8, 2, 20, 30), 2),
        at(get(3, 8, 1, 15, 50), 2), /* concurrent in time, so only the index tells */
    };
    CHECK_EQ(index_verdict(h, NOPS(h)), LINCHECK_VIOLATION);
    CHECK_EQ_U64(last.key, 8);
    CHECK_EQ(last.op, 2);
    CHECK_EQ(last.other_op, 0);
    CHECK_MSG(strstr(last.explain, "stale"), "%s", last.explain);
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_OK); /* black box: linearizable */

    /* Seeing a write from the future. */
    const struct lincheck_op f[] = {
        at(put(1, 8, 1, 0, 10), 5),
        at(get(3, 8, 1, 5, 50), 4),
    };
    CHECK_EQ(index_verdict(f, NOPS(f)), LINCHECK_VIOLATION);
    CHECK_MSG(strstr(last.explain, "committed later"), "%s", last.explain);

    /* A value nobody wrote, and one only a failed CAS would have. */
    const struct lincheck_op p[] = {at(get(3, 8, 9, 5, 50), 4)};
    CHECK_EQ(index_verdict(p, NOPS(p)), LINCHECK_VIOLATION);
    const struct lincheck_op q[] = {
        at(cas(1, 8, 5, 9, false, 0, 1), 1),
        at(get(3, 8, 9, 5, 50), 4),
    };
    CHECK_EQ(index_verdict(q, NOPS(q)), LINCHECK_VIOLATION);
    CHECK_EQ(last.op, 1);

    /* Absent where a write stands; CAS and DELETE observations. */
    const struct lincheck_op a[] = {at(put(1, 8, 1, 0, 10), 1), at(get(2, 8, ABSENT, 0, 10), 3)};
    CHECK_EQ(index_verdict(a, NOPS(a)), LINCHECK_VIOLATION);
    const struct lincheck_op c[] = {
        at(put(1, 8, 1, 0, 10), 1),
        at(cas(2, 8, 1, 2, false, 0, 10), 2),
    };
    CHECK_EQ(index_verdict(c, NOPS(c)), LINCHECK_VIOLATION);
    const struct lincheck_op d[] = {
        at(put(1, 8, 1, 0, 10), 1),
        at(cas(2, 8, ABSENT, 2, true, 0, 10), 2),
    };
    CHECK_EQ(index_verdict(d, NOPS(d)), LINCHECK_VIOLATION);
    const struct lincheck_op e[] = {
        at(put(1, 8, 1, 0, 10), 1),
        at(del_existed(2, 8, false, 0, 10), 2),
    };
    CHECK_EQ(index_verdict(e, NOPS(e)), LINCHECK_VIOLATION);
}

static void test_index_real_time(void)
{
    /* A write returned, then a read was served at an older index (a stale follower). */
    const struct lincheck_op h[] = {
        at(put(1, 0, 1, 0, 10), 5),
        at(get(2, 0, ABSENT, 20, 30), 3),
    };
    CHECK_EQ(index_verdict(h, NOPS(h)), LINCHECK_VIOLATION);
    CHECK_EQ(last.op, 1);
    CHECK_EQ(last.other_op, 0);
    CHECK_MSG(strstr(last.explain, "was invoked after"), "%s", last.explain);
    /* Write after write must be strictly later, even after a read at the same index. */
    const struct lincheck_op w[] = {
        at(put(1, 0, 1, 0, 10), 5),
        at(put(2, 0, 2, 20, 30), 4),
    };
    CHECK_EQ(index_verdict(w, NOPS(w)), LINCHECK_VIOLATION);
    CHECK_EQ(last.op, 1);
    const struct lincheck_op rw[] = {
        at(get(1, 0, ABSENT, 0, 10), 3),
        at(put(2, 0, 2, 20, 30), 3),
    };
    CHECK_EQ(index_verdict(rw, NOPS(rw)), LINCHECK_VIOLATION);
    CHECK_EQ(last.op, 1); /* the real-time rule, not the replay, must catch it */
    CHECK_MSG(strstr(last.explain, "not greater"), "%s", last.explain);
    /* Read after read at the same index is fine; touching intervals are concurrent. */
    const struct lincheck_op rr[] = {
        at(put(1, 0, 1, 0, 10), 3),  at(get(1, 0, 1, 20, 30), 3), at(get(2, 0, 1, 40, 50), 3),
        at(put(2, 0, 2, 50, 60), 4), at(get(3, 0, 1, 60, 70), 3),
    };
    CHECK_EQ(index_verdict(rr, NOPS(rr)), LINCHECK_OK);
    /* Two writes at one index. */
    const struct lincheck_op dup[] = {
        at(put(1, 0, 1, 0, 10), 3),
        at(put(2, 0, 2, 0, 10), 3),
    };
    CHECK_EQ(index_verdict(dup, NOPS(dup)), LINCHECK_VIOLATION);
    CHECK_MSG(strstr(last.explain, "same index"), "%s", last.explain);
}

static void test_index_unknown_writes(void)
{
    /* An unknown put observed by reads that the indexed replay cannot explain: skipped. */
    const struct lincheck_op h[] = {
        at(put(1, 0, 1, 0, 10), 1),  put(2, 0, 2, 20, INF),       at(get(3, 0, 2, 30, 40), 5),
        at(get(3, 0, 1, 50, 60), 6), /* not linearizable, but the index check cannot tell */
        at(put(1, 0, 3, 70, 80), 7), at(get(3, 0, 3, 90, 95), 7),
    };
    CHECK_EQ(index_verdict(h, NOPS(h)), LINCHECK_OK);
    CHECK_EQ(last.skipped, 1);
    CHECK_EQ(last.checked, 2);
    CHECK_EQ(verdict(h, NOPS(h)), LINCHECK_VIOLATION); /* the oracle can */
    /* An unknown delete may explain an absent read; a known unindexed put a value. */
    const struct lincheck_op d[] = {
        at(put(1, 0, 1, 0, 10), 1),       del(2, 0, 20, INF),
        at(get(3, 0, ABSENT, 30, 40), 4), put(4, 0, 5, 50, 60),
        at(get(3, 0, 5, 70, 80), 6),      at(cas(1, 0, 1, 6, false, 90, 95), 6),
    };
    CHECK_EQ(index_verdict(d, NOPS(d)), LINCHECK_OK);
    CHECK_EQ(last.skipped, 3);
    /* An unknown write invoked after an op with index >= r returned cannot land at or
     * before r: a read at r that needs it is flagged. */
    const struct lincheck_op late[] = {
        at(put(1, 0, 1, 0, 10), 1),
        at(get(1, 0, 1, 12, 18), 2),
        del(2, 0, 20, INF),
        at(get(3, 0, ABSENT, 15, 40), 2),
    };
    CHECK_EQ(index_verdict(late, NOPS(late)), LINCHECK_VIOLATION);
    CHECK_EQ(last.op, 3);
    const struct lincheck_op late_put[] = {
        at(put(1, 0, 1, 0, 10), 1),
        at(get(1, 0, 1, 12, 18), 2),
        put(2, 0, 2, 20, INF),
        at(get(3, 0, 2, 15, 40), 2),
    };
    CHECK_EQ(index_verdict(late_put, NOPS(late_put)), LINCHECK_VIOLATION);
    CHECK_EQ(last.op, 3);
    CHECK_MSG(strstr(last.explain, "unindexed"), "%s", last.explain);
    /* A CAS that succeeded at index 1 saw the initial state: an unindexed put's value is
     * impossible there. */
    const struct lincheck_op first[] = {
        put(1, 0, 1, 0, 10),
        at(cas(2, 0, 1, 2, true, 20, 30), 1),
    };
    CHECK_EQ(index_verdict(first, NOPS(first)), LINCHECK_VIOLATION);
    CHECK_EQ(last.op, 1);
    CHECK_MSG(strstr(last.explain, "before index 1"), "%s", last.explain);
    /* An index on an unknown op is ignored (no response carried it). */
    struct lincheck_op ign[] = {
        at(put(1, 0, 1, 0, 10), 1),
        at(put(2, 0, 2, 20, INF), 1),
    };
    CHECK_EQ(index_verdict(ign, NOPS(ign)), LINCHECK_OK);
    /* Duplicate written values are refused: the checker maps values to writes. */
    const struct lincheck_op dupv[] = {
        put(1, 0, 1, 0, 10),
        cas(2, 0, ABSENT, 1, false, 20, 30),
    };
    CHECK_ERR(lincheck_check_index(dupv, NOPS(dupv), &last), ASPEN_E_INVALID);
}

static void test_index_random_never_false_positive(void)
{
    /* Many small generated runs with lots of unknown outcomes and missing indexes: the
     * index checker must never flag a correct history. */
    struct rng r;
    rng_seed(&r, test_seed() + 4);
    uint64_t skipped = 0;
    for (uint64_t it = 0; it < test_iters(300); it++) {
        struct gen g;
        CHECK_OK(gen_history(&r, 60, 0, 150, &g));
        int rc = lincheck_check_index(g.ops, g.n, &last);
        struct lincheck_result ix = last;
        int rc_lin = lincheck_check(g.ops, g.n, NULL, &last);
        gen_release(&g);
        CHECK_OK(rc);
        CHECK_OK(rc_lin);
        CHECK_MSG(ix.verdict == LINCHECK_OK, "iteration %" PRIu64 ": %s", it, ix.explain);
        CHECK_MSG(last.verdict == LINCHECK_OK, "iteration %" PRIu64 ": %s", it, last.explain);
        skipped += ix.skipped;
    }
    CHECK(skipped > 0);
}

/* ---- Output ---- */

static void test_describe(void)
{
    char s[128];
    struct lincheck_op op = at(cas(3, 0, 7, 12, true, 100, 180), 42);
    lincheck_describe_op(&op, s, sizeof(s));
    CHECK_STR_EQ(s, "c3 cas(7 -> 12) ok [100, 180] @42");
    op = cas(3, 0, ABSENT, 12, false, 100, INF);
    lincheck_describe_op(&op, s, sizeof(s));
    CHECK_STR_EQ(s, "c3 cas(absent -> 12) ? [100, ?]");
    op = get(1, 0, ABSENT, 1, 2);
    lincheck_describe_op(&op, s, sizeof(s));
    CHECK_STR_EQ(s, "c1 get -> absent [1, 2]");
    op = del_existed(1, 0, false, 1, 2);
    lincheck_describe_op(&op, s, sizeof(s));
    CHECK_STR_EQ(s, "c1 delete (was absent) [1, 2]");
    op = put(9, 0, 5, 1, 2);
    lincheck_describe_op(&op, s, 8);
    CHECK_STR_EQ(s, "c9 put(");
    CHECK_STR_EQ(lincheck_verdict_name(LINCHECK_UNKNOWN), "unknown");
}

static void test_timeline(void)
{
    const struct lincheck_op h[] = {
        put(1, 7, 1, 0, 10),  put(2, 7, 2, 20, 30), get(3, 7, 1, 40, 50),
        put(4, 8, 9, 0, 100), del(5, 7, 45, INF),   get(6, 7, 2, 100, 100),
    };
    struct buf b;
    buf_init(&b, 1 << 16);
    int rc = lincheck_timeline(h, NOPS(h), 7, 0, INF, &b);
    int rc_nul = buf_append_u8(&b, 0);
    char *text = (char *)b.data;
    bool ok = rc == 0 && rc_nul == 0 && strstr(text, "key 7: 5 operation(s), time 0..100\n") &&
              strstr(text, "  |[=====]     ") && strstr(text, "=>| #4 c5 delete ? [45, ?]") &&
              strstr(text, "|| #5 c6 get -> 2 [100, 100]") && !strstr(text, "c4");
    if (!ok)
        printf("%s", text ? text : "(null)");
    buf_clear(&b);
    /* A window: only ops meeting [35, 60]; the delete is clipped on the right. */
    int rc_win = lincheck_timeline(h, NOPS(h), 7, 35, 60, &b);
    buf_append_u8(&b, 0);
    bool ok_win = rc_win == 0 && strstr((char *)b.data, "2 operation(s)") &&
                  strstr((char *)b.data, "#2 c3") && strstr((char *)b.data, "#4 c5");
    buf_clear(&b);
    int rc_none = lincheck_timeline(h, NOPS(h), 99, 0, INF, &b);
    buf_append_u8(&b, 0);
    bool ok_none = rc_none == 0 && strcmp((char *)b.data, "key 99: 0 operation(s)\n") == 0;
    buf_release(&b);
    /* The line cap: more operations than lines are counted. */
    size_t n = ASPEN_LINCHECK_TIMELINE_MAX_LINES + 5;
    struct lincheck_op *many = mem_calloc(n, sizeof(*many));
    CHECK(many != NULL);
    for (size_t i = 0; i < n; i++)
        many[i] = put(1, 0, i + 1, i, i + 1);
    buf_init(&b, 1 << 20);
    int rc_many = lincheck_timeline(many, n, 0, 0, INF, &b);
    buf_append_u8(&b, 0);
    bool ok_many = rc_many == 0 && strstr((char *)b.data, "  ... 5 more\n");
    buf_release(&b);
    /* Too small a buffer reports its error. */
    buf_init(&b, 16);
    int rc_small = lincheck_timeline(many, n, 0, 0, INF, &b);
    buf_release(&b);
    mem_free(many);
    CHECK(ok);
    CHECK(ok_win);
    CHECK(ok_none);
    CHECK(ok_many);
    CHECK_ERR(rc_small, ASPEN_E_TOO_LARGE);
}

/* ---- Allocation failures ---- */

/* Runs f with the k-th allocation failing, for k = 1, 2, ... until f succeeds; every
 * failure must be ASPEN_E_NOMEM. Returns the number of failure points, or -1 on a wrong
 * error code. The harness's leak check covers the whole loop. */
static int64_t fail_each_allocation(int (*f)(void *), void *arg, int sticky)
{
    for (uint64_t k = 1; k < 100000; k++) {
        mem_fail_at(k, sticky);
        int rc = f(arg);
        mem_fail_at(0, 0);
        if (rc == 0)
            return (int64_t)k - 1;
        if (rc != ASPEN_E_NOMEM)
            return -1;
    }
    return -1;
}

static int run_check(void *arg)
{
    const struct gen *g = arg;
    struct lincheck_result res;
    return lincheck_check(g->ops, g->n, NULL, &res);
}

static int run_index(void *arg)
{
    const struct gen *g = arg;
    struct lincheck_result res;
    return lincheck_check_index(g->ops, g->n, &res);
}

static int run_timeline(void *arg)
{
    const struct gen *g = arg;
    struct buf b;
    buf_init(&b, 1 << 20);
    int rc = lincheck_timeline(g->ops, g->n, 1, 0, INF, &b);
    buf_release(&b);
    return rc;
}

static void test_nomem(void)
{
    /* Three keys, a few hundred ops each (so the memo table and its pool both grow), with
     * unknown outcomes; one key has a violation so that path is covered as well. */
    struct rng r;
    rng_seed(&r, test_seed() + 5);
    struct gen g = {0};
    struct lincheck_op *all = mem_calloc(900, sizeof(*all));
    CHECK(all != NULL);
    int rc = 0;
    for (size_t k = 0; k < 3 && !rc; k++) {
        struct gen one;
        rc = gen_history(&r, 300, k, 20, &one);
        if (!rc && k == 2)
            inject_stale_read(&one);
        if (!rc)
            memcpy(all + 300 * k, one.ops, 300 * sizeof(*all));
        gen_release(&one);
    }
    g.ops = all;
    g.n = 900;
    int64_t points_check = rc ? -2 : fail_each_allocation(run_check, &g, 0);
    int64_t points_sticky = rc ? -2 : fail_each_allocation(run_check, &g, 1);
    int64_t points_index = rc ? -2 : fail_each_allocation(run_index, &g, 0);
    int64_t points_tl = rc ? -2 : fail_each_allocation(run_timeline, &g, 0);
    struct lincheck_result res;
    int rc_final = lincheck_check(all, 900, NULL, &res);
    mem_free(all);
    CHECK_OK(rc);
    CHECK_MSG(points_check > 10, "%" PRId64, points_check);
    CHECK_MSG(points_sticky > 10, "%" PRId64, points_sticky);
    CHECK_MSG(points_index >= 5, "%" PRId64, points_index);
    CHECK_MSG(points_tl >= 2, "%" PRId64, points_tl);
    CHECK_OK(rc_final);
    CHECK_EQ(res.verdict, LINCHECK_VIOLATION);
    CHECK_EQ_U64(res.key, 2);
}

static const struct test_case tests[] = {
    TEST(test_empty),
    TEST(test_sequential),
    TEST(test_concurrent_puts_either_order),
    TEST(test_closed_intervals),
    TEST(test_cas_outcomes),
    TEST(test_delete),
    TEST(test_unknown_outcome),
    TEST(test_unknown_cas),
    TEST(test_stale_read),
    TEST(test_phantom_value),
    TEST(test_absent_after_put),
    TEST(test_double_cas),
    TEST(test_lost_update),
    TEST(test_partitions),
    TEST(test_invalid_input),
    TEST(test_too_many_ops_per_key),
    TEST(test_agrees_with_brute_force),
    TEST(test_unknown_set_regressions),
    TEST(test_10k_linearizable),
    TEST(test_10k_stale_read),
    TEST(test_many_keys),
    TEST(test_budget_gives_unknown),
    TEST(test_index_correct),
    TEST(test_index_stale_read),
    TEST(test_index_real_time),
    TEST(test_index_unknown_writes),
    TEST(test_index_random_never_false_positive),
    TEST(test_describe),
    TEST(test_timeline),
    TEST(test_nomem),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("lincheck", tests);
}
