/*
 * Index-order checker (lincheck_check_index in sim/lincheck.h): a cheap check of the Raft
 * indexes the implementation returns with its responses, the "fast pre-check" of
 * shared/research/consensus.md §4.4 item 7.
 *
 * lincheck_check treats the cluster as a black box; this one checks the cluster's own
 * account of what happened. Every write reports the log index it committed at and every
 * read the applied index it was served at, so each key's history can be replayed in index
 * order. Three rules, each O(log n) per operation after sorting:
 *
 *   (c) two writes of one key never share an index;
 *   (b) real time: an operation invoked after A returned carries an index >= idx(A), and
 *       > idx(A) if it is a write (it was appended after A was committed or served);
 *   (a) every observation (a GET's value, a failed CAS's mismatch, a successful CAS's match,
 *       a DELETE's `existed`) agrees with the latest indexed write at or before its index.
 *
 * Writes without an index (unknown outcome, or an index the simulator did not report)
 * make (a) uncertain: such a write Y may have been applied at any index greater than every
 * index returned before Y was invoked (rule (b) gives that lower bound, L(Y)). An
 * observation at r that disagrees with the indexed replay is accepted, and counted as
 * skipped, whenever some unindexed write could sit between the replayed write and r; it
 * is flagged only when no such write could. The checker must never report a violation on
 * a correct run, so every doubt resolves towards "skipped".
 */
#include "sim/lincheck.h"

#include "base/mem.h"
#include "sim/lincheck_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct ix_write { /* an indexed write: a known-outcome write with raft_index != 0 */
    uint64_t idx;
    size_t src;
};

struct ix_value { /* an operation that may write value v: PUT or CAS of any outcome */
    uint64_t v;
    size_t src;
};

struct ix_done { /* an indexed known-outcome operation, by return time */
    uint64_t t;
    uint64_t idx;
    size_t src;
    uint64_t max_idx; /* max idx over this and every earlier-returning entry */
    size_t max_src;   /* the operation that carries max_idx */
};

static int write_cmp(const void *pa, const void *pb)
{
    const struct ix_write *a = pa, *b = pb;
    if (a->idx != b->idx)
        return a->idx < b->idx ? -1 : 1;
    return a->src < b->src ? -1 : a->src > b->src;
}

static int value_cmp(const void *pa, const void *pb)
{
    const struct ix_value *a = pa, *b = pb;
    if (a->v != b->v)
        return a->v < b->v ? -1 : 1;
    return a->src < b->src ? -1 : a->src > b->src;
}

static int done_cmp(const void *pa, const void *pb)
{
    const struct ix_done *a = pa, *b = pb;
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    return a->src < b->src ? -1 : a->src > b->src;
}

/* One key's tables, in storage sized for the largest key. */
struct ix {
    const struct lincheck_op *ops;
    struct lincheck_result *res;
    uint64_t key;
    struct ix_write *w;
    size_t nw;
    struct ix_value *v;
    size_t nv;
    struct ix_done *d;
    size_t nd;
    uint64_t lmin_any; /* min L(Y) over unindexed writes; UINT64_MAX if none */
    uint64_t lmin_del; /* the same over unindexed DELETEs */
};

static bool is_indexed(const struct lincheck_op *op)
{
    return !lincheck_is_unknown(op) && op->raft_index != 0;
}

/* An operation that may have written without telling us where: unknown-outcome PUT,
 * DELETE or CAS, or a known write that carries no index. */
static bool is_unindexed_write(const struct lincheck_op *op)
{
    if (lincheck_is_unknown(op))
        return op->kind != LINCHECK_GET;
    return lincheck_is_known_write(op) && op->raft_index == 0;
}

/* Fills x->v with the key's (value, writer) pairs sorted by value. ASPEN_E_INVALID when
 * two operations write the same value. */
static int build_values(struct ix *x, const size_t *order, size_t m)
{
    x->nv = 0;
    for (size_t j = 0; j < m; j++) {
        const struct lincheck_op *op = &x->ops[order[j]];
        if (op->kind == LINCHECK_PUT || op->kind == LINCHECK_CAS)
            x->v[x->nv++] = (struct ix_value){op->value, order[j]};
    }
    qsort(x->v, x->nv, sizeof(*x->v), value_cmp);
    for (size_t i = 1; i < x->nv; i++)
        if (x->v[i].v == x->v[i - 1].v)
            return ASPEN_E_INVALID;
    return 0;
}

/* L(t): the largest index carried by an operation that returned before t (0 if none),
 * and in *src that operation (SIZE_MAX if none). Any write invoked at t lands above it. */
static uint64_t lower_bound_at(const struct ix *x, uint64_t t, size_t *src)
{
    size_t lo = 0, hi = x->nd;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (x->d[mid].t < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) {
        *src = SIZE_MAX;
        return 0;
    }
    *src = x->d[lo - 1].max_src;
    return x->d[lo - 1].max_idx;
}

/* The latest indexed write at or before r, or NULL. */
static const struct ix_write *write_at(const struct ix *x, uint64_t r)
{
    size_t lo = 0, hi = x->nw;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (x->w[mid].idx <= r)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo ? &x->w[lo - 1] : NULL;
}

static const struct ix_value *writer_of(const struct ix *x, uint64_t v)
{
    size_t lo = 0, hi = x->nv;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (x->v[mid].v < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < x->nv && x->v[lo].v == v ? &x->v[lo] : NULL;
}

/* Marks a violation by op i against op j (SIZE_MAX for none) and starts its explanation. */
static void flag(struct ix *x, size_t i, size_t j)
{
    struct lincheck_result *res = x->res;
    res->verdict = LINCHECK_VIOLATION;
    res->key = x->key;
    res->op = i;
    res->other_op = j;
    const struct lincheck_op *a = &x->ops[i];
    res->t_lo = a->invoke_t;
    res->t_hi = a->return_t;
    if (j != SIZE_MAX) {
        const struct lincheck_op *b = &x->ops[j];
        if (b->invoke_t < res->t_lo)
            res->t_lo = b->invoke_t;
        if (!lincheck_is_unknown(b) && b->return_t > res->t_hi)
            res->t_hi = b->return_t;
    }
    lincheck_explain(res, "key %" PRIu64 ": index order: ", x->key);
    lincheck_explain_op(res, x->ops, i);
}

/* Explains what the indexed replay says the register held at r. */
static void explain_state(struct ix *x, const struct ix_write *w, uint64_t r)
{
    if (!w) {
        lincheck_explain(
            x->res, "; no indexed write is at or before %" PRIu64 ", so the key was absent", r);
        return;
    }
    lincheck_explain(x->res, "; the latest indexed write at or before %" PRIu64 " is ", r);
    lincheck_explain_op(x->res, x->ops, w->src);
}

/* (c): distinct indexes. True if a violation was flagged. */
static bool check_distinct(struct ix *x)
{
    for (size_t i = 1; i < x->nw; i++) {
        if (x->w[i].idx != x->w[i - 1].idx)
            continue;
        flag(x, x->w[i].src, x->w[i - 1].src);
        lincheck_explain(x->res, " committed at the same index as ");
        lincheck_explain_op(x->res, x->ops, x->w[i - 1].src);
        return true;
    }
    return false;
}

/* (b): real-time order, for each indexed operation in invocation order. */
static bool check_real_time(struct ix *x, const size_t *order, size_t m)
{
    for (size_t j = 0; j < m; j++) {
        const struct lincheck_op *b = &x->ops[order[j]];
        if (!is_indexed(b))
            continue;
        size_t a;
        uint64_t before = lower_bound_at(x, b->invoke_t, &a);
        bool write = lincheck_is_known_write(b);
        if (a == SIZE_MAX || before < b->raft_index || (!write && before == b->raft_index))
            continue;
        flag(x, order[j], a);
        lincheck_explain(x->res, " was invoked after ");
        lincheck_explain_op(x->res, x->ops, a);
        lincheck_explain(x->res, " returned, yet its index is not %s",
                         write ? "greater (a later write must be appended after it)"
                               : "at least as large (a later read must see it)");
        return true;
    }
    return false;
}

enum pred { PRED_EQ, PRED_NE };

/* (a) for one observation by op i: the register held (pred == PRED_EQ) or did not hold
 * (PRED_NE) value v in the state after applying every entry up to index r. Returns true
 * if a violation was flagged; otherwise counts the observation as checked or skipped. */
static bool observe(struct ix *x, size_t i, uint64_t r, enum pred pred, uint64_t v)
{
    const struct ix_write *w = write_at(x, r);
    uint64_t s = LINCHECK_ABSENT, w_idx = 0;
    if (w) {
        const struct lincheck_op *wop = &x->ops[w->src];
        s = wop->kind == LINCHECK_DELETE ? LINCHECK_ABSENT : wop->value;
        w_idx = w->idx;
    }
    if ((pred == PRED_EQ) == (s == v)) {
        x->res->checked++;
        return false;
    }
    /* An unindexed write Y could have landed in (w_idx, r] iff L(Y) < r, w_idx < r. */
    bool open = w_idx < r;
    char val[24];
    if (pred == PRED_NE) {
        if (open && x->lmin_any < r) {
            x->res->skipped++;
            return false;
        }
        flag(x, i, w ? w->src : SIZE_MAX);
        lincheck_explain(x->res, " saw a value other than %s at index %" PRIu64,
                         lincheck_value_str(v, val, sizeof(val)), r);
        explain_state(x, w, r);
        return true;
    }
    if (v == LINCHECK_ABSENT) {
        if (open && x->lmin_del < r) {
            x->res->skipped++;
            return false;
        }
        flag(x, i, w ? w->src : SIZE_MAX);
        lincheck_explain(x->res, " found the key absent at index %" PRIu64, r);
        explain_state(x, w, r);
        lincheck_explain(x->res, ", and no unindexed delete can fall in between");
        return true;
    }
    const struct ix_value *xv = writer_of(x, v);
    const struct lincheck_op *xop = xv ? &x->ops[xv->src] : NULL;
    if (!xop || (xop->kind == LINCHECK_CAS && !lincheck_is_unknown(xop) && !xop->ok)) {
        flag(x, i, xv ? xv->src : SIZE_MAX);
        lincheck_explain(x->res, " observed value %" PRIu64 ", which %s", v,
                         xop ? "only a failed cas would have written" : "no operation wrote");
        return true;
    }
    if (is_indexed(xop)) {
        flag(x, i, xv->src);
        if (xop->raft_index > r) {
            lincheck_explain(x->res, " observed at index %" PRIu64 " the value of ", r);
            lincheck_explain_op(x->res, x->ops, xv->src);
            lincheck_explain(x->res, ", committed later");
        } else {
            lincheck_explain(x->res, " observed at index %" PRIu64 " the stale value of ", r);
            lincheck_explain_op(x->res, x->ops, xv->src);
            explain_state(x, w, r);
        }
        return true;
    }
    size_t a;
    uint64_t lx = lower_bound_at(x, xop->invoke_t, &a);
    if (open && lx < r) {
        x->res->skipped++;
        return false;
    }
    flag(x, i, xv->src);
    lincheck_explain(x->res, " observed at index %" PRIu64 " the value of unindexed ", r);
    lincheck_explain_op(x->res, x->ops, xv->src);
    if (!open && !w) {
        lincheck_explain(x->res, ", but no write can come before index 1");
    } else if (!open) {
        lincheck_explain(x->res, ", but index %" PRIu64 " holds ", r);
        lincheck_explain_op(x->res, x->ops, w->src);
    } else {
        lincheck_explain(x->res, ", which was invoked after ");
        lincheck_explain_op(x->res, x->ops, a);
        lincheck_explain(x->res, " returned and so committed after index %" PRIu64, lx);
    }
    return true;
}

/* (a): every observation, in invocation order. */
static bool check_observations(struct ix *x, const size_t *order, size_t m)
{
    for (size_t j = 0; j < m; j++) {
        size_t i = order[j];
        const struct lincheck_op *op = &x->ops[i];
        if (lincheck_is_unknown(op))
            continue;
        bool observes = op->kind == LINCHECK_GET || op->kind == LINCHECK_CAS ||
                        (op->kind == LINCHECK_DELETE && op->existed_known);
        if (!observes)
            continue;
        if (op->raft_index == 0) {
            x->res->skipped++;
            continue;
        }
        uint64_t r = op->raft_index;
        bool bad = false;
        switch (op->kind) {
        case LINCHECK_GET:
            bad = observe(x, i, r, PRED_EQ, op->value);
            break;
        case LINCHECK_CAS:
            /* A successful CAS at w matched the state just before w; a failed one reports
             * the state it saw, including entry r (which, if its own, writes nothing). */
            bad = op->ok ? observe(x, i, r - 1, PRED_EQ, op->expected)
                         : observe(x, i, r, PRED_NE, op->expected);
            break;
        case LINCHECK_DELETE:
            bad = observe(x, i, r - 1, op->existed ? PRED_NE : PRED_EQ, LINCHECK_ABSENT);
            break;
        case LINCHECK_PUT:
            break;
        }
        if (bad)
            return true;
    }
    return false;
}

/* Checks one key. True if a violation was flagged. */
static bool check_key(struct ix *x, const size_t *order, size_t m)
{
    x->nw = x->nd = 0;
    for (size_t j = 0; j < m; j++) {
        const struct lincheck_op *op = &x->ops[order[j]];
        if (!is_indexed(op))
            continue;
        if (lincheck_is_known_write(op))
            x->w[x->nw++] = (struct ix_write){op->raft_index, order[j]};
        x->d[x->nd++] = (struct ix_done){op->return_t, op->raft_index, order[j], 0, 0};
    }
    qsort(x->w, x->nw, sizeof(*x->w), write_cmp);
    qsort(x->d, x->nd, sizeof(*x->d), done_cmp);
    for (size_t i = 0; i < x->nd; i++) {
        bool carry = i > 0 && x->d[i - 1].max_idx > x->d[i].idx;
        x->d[i].max_idx = carry ? x->d[i - 1].max_idx : x->d[i].idx;
        x->d[i].max_src = carry ? x->d[i - 1].max_src : x->d[i].src;
    }
    x->lmin_any = x->lmin_del = UINT64_MAX;
    for (size_t j = 0; j < m; j++) {
        const struct lincheck_op *op = &x->ops[order[j]];
        if (!is_unindexed_write(op))
            continue;
        size_t a;
        uint64_t l = lower_bound_at(x, op->invoke_t, &a);
        if (l < x->lmin_any)
            x->lmin_any = l;
        if (op->kind == LINCHECK_DELETE && l < x->lmin_del)
            x->lmin_del = l;
    }
    if (build_values(x, order, m))
        return false; /* cannot happen: validated in the first pass */
    return check_distinct(x) || check_real_time(x, order, m) || check_observations(x, order, m);
}

int lincheck_check_index(const struct lincheck_op *ops, size_t n, struct lincheck_result *res)
{
    lincheck_result_reset(res);
    int rc = lincheck_validate(ops, n);
    if (rc)
        return rc;
    size_t *order, count;
    rc = lincheck_partition(ops, n, &order, &count);
    if (rc)
        return rc;
    size_t largest = 0;
    for (size_t lo = 0, hi; lo < count; lo = hi) {
        for (hi = lo + 1; hi < count && ops[order[hi]].key == ops[order[lo]].key; hi++)
            ;
        if (hi - lo > largest)
            largest = hi - lo;
    }
    struct ix x = {.ops = ops, .res = res};
    if (largest) {
        x.w = mem_calloc(largest, sizeof(*x.w));
        x.v = mem_calloc(largest, sizeof(*x.v));
        x.d = mem_calloc(largest, sizeof(*x.d));
        if (!x.w || !x.v || !x.d) {
            rc = ASPEN_E_NOMEM;
            goto release;
        }
    }
    /* First pass: unique written values, so the error does not depend on violations. */
    for (size_t lo = 0, hi; lo < count && !rc; lo = hi) {
        for (hi = lo + 1; hi < count && ops[order[hi]].key == ops[order[lo]].key; hi++)
            ;
        rc = build_values(&x, order + lo, hi - lo);
    }
    if (rc)
        goto release;
    for (size_t lo = 0, hi; lo < count; lo = hi) {
        x.key = ops[order[lo]].key;
        for (hi = lo + 1; hi < count && ops[order[hi]].key == x.key; hi++)
            ;
        res->keys++;
        if (check_key(&x, order + lo, hi - lo))
            break;
    }
release:
    mem_free(x.w);
    mem_free(x.v);
    mem_free(x.d);
    mem_free(order);
    if (rc)
        lincheck_result_reset(res);
    return rc;
}
