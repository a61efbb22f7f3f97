/*
 * Put and Txn with etcd's checks (server/etcdserver/txn/txn.go).
 *
 * A txn runs in three passes, as in etcd, so that a txn that fails changes nothing:
 *   1. compareToPath: evaluate the compares of the txn and of every nested txn in the
 *      branches taken, all against the state before the txn (etcd evaluates nested
 *      compares up front too, not after the outer ops ran);
 *   2. check the ops on that path: a put's lease must exist, ignore_value/ignore_lease
 *      need the key to exist, a range's revision must be readable, and no key may be
 *      written twice (a put key twice, or a put inside a deleted range:
 *      ASPEN_E_DUPLICATE_KEY);
 *   3. execute the path in order at one revision; reads see the txn's earlier writes.
 */
#include "kv/internal.h"

#include "base/assert.h"

#include <string.h>

/* The branch each txn on the executed path takes. */
struct path {
    bool ok;
    int32_t failed;    /* first failing compare, -1 */
    struct path **sub; /* per op of the taken branch: the nested txn's path, or NULL */
};

struct writes {
    struct slice puts[ASPEN_MAX_TXN_OPS];
    size_t n_puts;
    const struct kv_delete_req *dels[ASPEN_MAX_TXN_OPS];
    size_t n_dels;
};

static bool compare_kv(const struct kv_compare *c, const struct kv_kv *kv)
{
    int r;
    switch (c->target) {
    case KV_CMP_VALUE:
        r = slice_cmp(kv->value, c->value);
        break;
    case KV_CMP_CREATE:
        r = (kv->create_revision > c->number) - (kv->create_revision < c->number);
        break;
    case KV_CMP_MOD:
        r = (kv->mod_revision > c->number) - (kv->mod_revision < c->number);
        break;
    case KV_CMP_VERSION:
        r = (kv->version > c->number) - (kv->version < c->number);
        break;
    case KV_CMP_LEASE:
        r = (kv->lease > c->number) - (kv->lease < c->number);
        break;
    default:
        ASPEN_UNREACHABLE();
    }
    switch (c->result) {
    case KV_CMP_EQUAL:
        return r == 0;
    case KV_CMP_NOT_EQUAL:
        return r != 0;
    case KV_CMP_GREATER:
        return r > 0;
    case KV_CMP_LESS:
        return r < 0;
    default:
        ASPEN_UNREACHABLE();
    }
}

/* etcd's applyCompare: every existing key in the range must satisfy it; with no key, the
 * zero KeyValue is compared, except that a VALUE compare is then false. */
static int eval_compare(struct store_txn *t, int64_t rev, const struct kv_compare *c, bool *ok)
{
    struct kv_scanner s;
    int rc = kv_scan_open(&s, t, c->key, c->range_end, rev, true);
    bool any = false;
    *ok = true;
    while (!rc && *ok) {
        struct kv_found f;
        rc = kv_scan_next(&s, &f);
        if (rc)
            break;
        any = true;
        struct kv_kv kv = {.value = f.rec.value,
                           .create_revision = f.rec.create_rev,
                           .mod_revision = f.mod_rev,
                           .version = f.rec.version,
                           .lease = f.rec.lease};
        *ok = compare_kv(c, &kv);
    }
    kv_scan_close(&s);
    if (rc && rc != ASPEN_E_NOT_FOUND)
        return rc;
    if (!any) {
        struct kv_kv zero = {0};
        *ok = c->target != KV_CMP_VALUE && compare_kv(c, &zero);
    }
    return 0;
}

static int build_path(struct kv_ctx *ctx, const struct kv_txn_req *req, struct path **out)
{
    struct path *p = arena_alloc(ctx->a, sizeof(*p), _Alignof(struct path));
    if (!p)
        return ASPEN_E_NOMEM;
    p->ok = true;
    p->failed = -1;
    p->sub = NULL;
    for (uint32_t i = 0; i < req->n_compares && p->ok; i++) {
        int rc = eval_compare(ctx->t, ctx->rev, &req->compares[i], &p->ok);
        if (rc)
            return rc;
        if (!p->ok)
            p->failed = (int32_t)i;
    }
    const struct kv_op *ops = p->ok ? req->success : req->failure;
    uint32_t n = p->ok ? req->n_success : req->n_failure;
    if (n) {
        p->sub = arena_alloc(ctx->a, n * sizeof(*p->sub), _Alignof(struct path *));
        if (!p->sub)
            return ASPEN_E_NOMEM;
        for (uint32_t i = 0; i < n; i++) {
            p->sub[i] = NULL;
            if (ops[i].kind == KV_OP_TXN) {
                int rc = build_path(ctx, ops[i].u.txn, &p->sub[i]);
                if (rc)
                    return rc;
            }
        }
    }
    *out = p;
    return 0;
}

static int check_put(struct kv_ctx *ctx, const struct kv_put_req *req)
{
    if (req->lease) {
        struct kv_lease l;
        int rc = kv_lease_get(ctx->t, req->lease, &l, NULL, NULL, NULL);
        if (rc)
            return rc;
        if (l.n_keys >= (int64_t)ASPEN_MAX_KEYS_PER_LEASE) {
            /* Full, unless the key already carries this lease. Checked against the state
             * before the command, so one txn may overshoot by its own puts. */
            struct kv_found f;
            rc = kv_read_point(ctx->t, req->key, ctx->rev, true, &f);
            if (rc && rc != ASPEN_E_NOT_FOUND)
                return rc;
            if (rc || f.tombstone || f.rec.lease != req->lease)
                return ASPEN_E_LIMIT;
        }
    }
    if (req->ignore_value || req->ignore_lease) {
        struct kv_found f;
        int rc = kv_read_point(ctx->t, req->key, ctx->rev, false, &f);
        if (rc == 0 && f.tombstone)
            rc = ASPEN_E_NOT_FOUND;
        if (rc)
            return rc;
    }
    return 0;
}

static int check_path(struct kv_ctx *ctx, const struct kv_txn_req *req, const struct path *p,
                      struct writes *w)
{
    const struct kv_op *ops = p->ok ? req->success : req->failure;
    uint32_t n = p->ok ? req->n_success : req->n_failure;
    for (uint32_t i = 0; i < n; i++) {
        int rc = 0;
        switch (ops[i].kind) {
        case KV_OP_RANGE:
            rc = kv_range_check_rev(ops[i].u.range.revision, ctx->rev, ctx->compacted);
            break;
        case KV_OP_PUT:
            rc = check_put(ctx, &ops[i].u.put);
            ASPEN_ASSERT(w->n_puts < ASPEN_MAX_TXN_OPS);
            w->puts[w->n_puts++] = ops[i].u.put.key;
            break;
        case KV_OP_DELETE:
            ASPEN_ASSERT(w->n_dels < ASPEN_MAX_TXN_OPS);
            w->dels[w->n_dels++] = &ops[i].u.del;
            break;
        case KV_OP_TXN:
            rc = check_path(ctx, ops[i].u.txn, p->sub[i], w);
            break;
        default:
            ASPEN_UNREACHABLE();
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* etcd's checkIntervals on the executed path: overlapping deletes are fine. */
static bool has_duplicates(const struct writes *w)
{
    for (size_t i = 0; i < w->n_puts; i++) {
        for (size_t j = i + 1; j < w->n_puts; j++)
            if (slice_eq(w->puts[i], w->puts[j]))
                return true;
        for (size_t j = 0; j < w->n_dels; j++)
            if (kv_in_range(w->puts[i], w->dels[j]->key, w->dels[j]->range_end))
                return true;
    }
    return false;
}

static int exec_path(struct kv_ctx *ctx, const struct kv_txn_req *req, const struct path *p,
                     struct kv_txn_result *out)
{
    memset(out, 0, sizeof(*out));
    out->succeeded = p->ok;
    out->failed_compare = p->failed;
    const struct kv_op *ops = p->ok ? req->success : req->failure;
    uint32_t n = p->ok ? req->n_success : req->n_failure;
    if (n == 0)
        return 0;
    out->results = arena_alloc(ctx->a, n * sizeof(*out->results), _Alignof(struct kv_op_result));
    if (!out->results)
        return ASPEN_E_NOMEM;
    memset(out->results, 0, n * sizeof(*out->results));
    out->n_results = n;
    for (uint32_t i = 0; i < n; i++) {
        struct kv_op_result *r = &out->results[i];
        r->kind = ops[i].kind;
        int rc;
        switch (ops[i].kind) {
        case KV_OP_RANGE: {
            const struct kv_range_req *q = &ops[i].u.range;
            /* Without a revision the txn reads its own writes (at new_rev). */
            rc = kv_range_at(ctx->t, q, q->revision > 0 ? q->revision : ctx->new_rev, ctx->a,
                             &r->u.range);
            break;
        }
        case KV_OP_PUT:
            rc = kv_write_put(ctx, &ops[i].u.put, &r->u.put);
            break;
        case KV_OP_DELETE:
            rc = kv_write_delete(ctx, &ops[i].u.del, &r->u.del);
            break;
        case KV_OP_TXN:
            r->u.txn = arena_alloc(ctx->a, sizeof(*r->u.txn), _Alignof(struct kv_txn_result));
            rc = r->u.txn ? exec_path(ctx, ops[i].u.txn, p->sub[i], r->u.txn) : ASPEN_E_NOMEM;
            break;
        default:
            ASPEN_UNREACHABLE();
        }
        if (rc)
            return rc;
    }
    return 0;
}

int kv_txn_apply(struct kv_ctx *ctx, const struct kv_txn_req *req, struct kv_txn_result *out)
{
    memset(out, 0, sizeof(*out));
    struct path *p;
    int rc = build_path(ctx, req, &p);
    if (rc)
        return rc;
    struct writes *w = mem_alloc(sizeof(*w));
    if (!w)
        return ASPEN_E_NOMEM;
    w->n_puts = w->n_dels = 0;
    rc = check_path(ctx, req, p, w);
    if (!rc && has_duplicates(w))
        rc = ASPEN_E_DUPLICATE_KEY;
    mem_free(w);
    if (rc)
        return rc;
    return exec_path(ctx, req, p, out);
}

int kv_put_apply(struct kv_ctx *ctx, const struct kv_put_req *req, struct kv_put_result *out)
{
    memset(out, 0, sizeof(*out));
    int rc = check_put(ctx, req);
    return rc ? rc : kv_write_put(ctx, req, out);
}
