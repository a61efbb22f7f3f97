/*
 * History recording (sim/history.h) and the adapter to the history checkers of
 * sim/lincheck.h (linearizability search and Raft index order).
 *
 * The adapter is compiled when the checker library is part of the build (meson defines
 * ASPEN_SIM_HAVE_LINCHECK); without it the history is recorded but only the simulator's
 * online index-order check (workload.c) looks at it.
 */
#include "sim/history.h"

#include "base/mem.h"
#include "sim/model.h"

#include <aspen/error.h>
#include <stdio.h>

#ifdef ASPEN_SIM_HAVE_LINCHECK
#include "base/buf.h"
#include "sim/lincheck.h"

#include <inttypes.h>
#endif

void history_init(struct history *h, size_t max_ops)
{
    *h = (struct history){.max = max_ops};
}

void history_release(struct history *h)
{
    mem_free(h->ops);
    *h = (struct history){.max = h->max};
}

int history_add(struct history *h, const struct history_op *op, uint64_t *id)
{
    int rc = mem_grow(&h->ops, &h->cap, h->n, sizeof(*h->ops), 64, h->max);
    if (rc)
        return rc;
    h->ops[h->n] = *op;
    h->ops[h->n].status = HISTORY_PENDING;
    *id = h->n++;
    return 0;
}

#ifdef ASPEN_SIM_HAVE_LINCHECK

static enum lincheck_kind kind_of(uint8_t kind)
{
    switch (kind) {
    case MODEL_OP_GET:
        return LINCHECK_GET;
    case MODEL_OP_PUT:
        return LINCHECK_PUT;
    case MODEL_OP_CAS:
        return LINCHECK_CAS;
    default:
        return LINCHECK_DELETE;
    }
}

/* Converts the checkable operations (OK or UNKNOWN; FAILED ones provably never ran, and
 * PENDING ones cannot remain at the end of a run) into lincheck's records. */
static int convert(const struct history *h, struct lincheck_op **out, size_t *n_out)
{
    struct lincheck_op *v = mem_calloc(h->n ? h->n : 1, sizeof(*v));
    if (!v)
        return ASPEN_E_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < h->n; i++) {
        const struct history_op *op = &h->ops[i];
        if (op->status != HISTORY_OK && op->status != HISTORY_UNKNOWN)
            continue;
        bool unknown = op->status == HISTORY_UNKNOWN;
        v[n++] = (struct lincheck_op){
            .client = op->client,
            .key = op->key,
            .kind = kind_of(op->kind),
            .value = op->value,
            .expected = op->expect,
            .invoke_t = op->invoke_ns,
            .return_t = unknown ? LINCHECK_INF : op->return_ns,
            .raft_index = unknown ? 0 : op->index,
            .unknown = unknown,
            .ok = op->ok,
            .existed_known = op->kind == MODEL_OP_DELETE && !unknown,
            .existed = op->ok,
        };
    }
    *out = v;
    *n_out = n;
    return 0;
}

/* Fills why with the verdict's explanation and a timeline around the problem. */
static void explain(const struct lincheck_op *ops, size_t n, const struct lincheck_result *res,
                    const char *checker, char *why, size_t why_len)
{
    struct buf tl;
    buf_init(&tl, why_len);
    (void)lincheck_timeline(ops, n, res->key, res->t_lo, res->t_hi, &tl);
    snprintf(why, why_len, "%s: key %" PRIu64 ": %s\n%.*s", checker, res->key, res->explain,
             (int)tl.len, tl.data ? (const char *)tl.data : "");
    buf_release(&tl);
}

int history_check(const struct history *h, char *why, size_t why_len)
{
    if (why_len)
        why[0] = '\0';
    struct lincheck_op *ops;
    size_t n;
    int rc = convert(h, &ops, &n);
    if (rc)
        return rc;
    struct lincheck_result *res = mem_alloc(sizeof(*res));
    if (!res) {
        mem_free(ops);
        return ASPEN_E_NOMEM;
    }
    /* The cheap index-order check first: when it fails its explanation is the most
     * direct; then the black-box oracle. */
    rc = lincheck_check_index(ops, n, res);
    if (rc == 0 && res->verdict == LINCHECK_VIOLATION) {
        explain(ops, n, res, "index order", why, why_len);
        rc = ASPEN_E_INVALID;
    } else if (rc == 0) {
        rc = lincheck_check(ops, n, NULL, res);
        if (rc == 0 && res->verdict == LINCHECK_VIOLATION) {
            explain(ops, n, res, "linearizability", why, why_len);
            rc = ASPEN_E_INVALID;
        } else if (rc == 0 && res->verdict == LINCHECK_UNKNOWN) {
            rc = ASPEN_E_BUSY; /* the search budget ran out: undecided, not a violation */
        }
    }
    mem_free(res);
    mem_free(ops);
    return rc;
}

#else

int history_check(const struct history *h, char *why, size_t why_len)
{
    /* ADAPTER POINT: the checker library (src/sim/lincheck.h, sim_check_lib) is not in
     * this build; the history is recorded and checked online for index order only. */
    (void)h;
    if (why_len)
        why[0] = '\0';
    return 0;
}

#endif
