/*
 * kv_range: etcd's Range (server/etcdserver/txn/range.go over server/mvcc).
 *
 * etcd's rules, reproduced: count is every key in the range at the revision, before
 * filters and limit; without sorting or filters only limit+1 keys are fetched (the rest
 * are only counted, from the index alone) and `more` says whether there were more than
 * the limit; with sorting or a min/max filter every key is fetched, filtered, sorted and
 * then cut at the limit. A sort target other than KEY with order NONE sorts ASCEND.
 * count_only returns no kvs; keys_only drops values after sorting (so a VALUE sort still
 * works). A response is also cut, with `more`, at ASPEN_MAX_RANGE_RESPONSE_BYTES (etcd
 * would fail the request as too large for its gRPC message instead). Ties in a sort keep ascending
 * key order (etcd's sort is unstable there; we pick the deterministic order).
 *
 * Candidates point into the store while they are collected and sorted; only the kvs
 * returned are copied into the caller's arena.
 */
#include "kv/internal.h"

#include "base/assert.h"

#include <stdlib.h>
#include <string.h>

int kv_range_check_rev(int64_t req_rev, int64_t current, int64_t compacted)
{
    if (req_rev > current)
        return ASPEN_E_FUTURE_REV;
    if (req_rev > 0 && req_rev < compacted)
        return ASPEN_E_COMPACTED;
    return 0;
}

int kv_kv_copy(struct arena *a, struct slice key, const struct kv_rec *rec, int64_t mod_rev,
               bool with_value, struct kv_kv *out)
{
    memset(out, 0, sizeof(*out));
    uint8_t *p = arena_alloc(a, key.len, 1);
    if (!p)
        return ASPEN_E_NOMEM;
    memcpy(p, key.ptr, key.len);
    out->key = slice_make(p, key.len);
    out->mod_revision = mod_rev;
    if (!rec)
        return 0;
    out->create_revision = rec->create_rev;
    out->version = rec->version;
    out->lease = rec->lease;
    if (with_value && rec->value.len) {
        uint8_t *q = arena_alloc(a, rec->value.len, 1);
        if (!q)
            return ASPEN_E_NOMEM;
        memcpy(q, rec->value.ptr, rec->value.len);
        out->value = slice_make(q, rec->value.len);
    }
    return 0;
}

int kv_kv_dup(struct arena *a, const struct kv_kv *in, struct kv_kv *out)
{
    struct kv_rec rec = {.create_rev = in->create_revision,
                         .version = in->version,
                         .lease = in->lease,
                         .value = in->value};
    return kv_kv_copy(a, in->key, &rec, in->mod_revision, true, out);
}

static bool filtered_out(const struct kv_range_req *r, const struct kv_kv *kv)
{
    return (r->max_mod_revision && kv->mod_revision > r->max_mod_revision) ||
           (r->min_mod_revision && kv->mod_revision < r->min_mod_revision) ||
           (r->max_create_revision && kv->create_revision > r->max_create_revision) ||
           (r->min_create_revision && kv->create_revision < r->min_create_revision);
}

/* Adds kv to a response's byte count unless that would pass
 * ASPEN_MAX_RANGE_RESPONSE_BYTES (true: it does not fit). The first kv always fits
 * (constants.h asserts a largest key and value do). */
static bool response_full(uint64_t *bytes, const struct kv_kv *kv, bool keys_only)
{
    uint64_t sz = kv->key.len + (keys_only ? 0 : kv->value.len) + ASPEN_RANGE_KV_OVERHEAD_BYTES;
    if (*bytes > 0 && *bytes + sz > ASPEN_MAX_RANGE_RESPONSE_BYTES)
        return true;
    *bytes += sz;
    return false;
}

/* qsort has no context argument; the sort runs inside one apply or read at a time per
 * thread, so a thread-local target is enough. */
static _Thread_local uint8_t sort_target;
static _Thread_local bool sort_descend;

static int cmp_i64(int64_t a, int64_t b)
{
    return (a > b) - (a < b);
}

static int cmp_kv(const void *pa, const void *pb)
{
    const struct kv_kv *a = pa, *b = pb;
    int c;
    switch (sort_target) {
    case KV_SORT_VERSION:
        c = cmp_i64(a->version, b->version);
        break;
    case KV_SORT_CREATE:
        c = cmp_i64(a->create_revision, b->create_revision);
        break;
    case KV_SORT_MOD:
        c = cmp_i64(a->mod_revision, b->mod_revision);
        break;
    case KV_SORT_VALUE:
        c = slice_cmp(a->value, b->value);
        break;
    default:
        c = 0;
        break;
    }
    if (sort_descend)
        c = -c;
    if (c == 0) {
        c = slice_cmp(a->key, b->key);
        if (sort_target == KV_SORT_KEY && sort_descend)
            c = -c;
    }
    return c;
}

int kv_range_at(struct store_txn *t, const struct kv_range_req *req, int64_t rev, struct arena *a,
                struct kv_range_result *out)
{
    memset(out, 0, sizeof(*out));
    bool filters = req->min_mod_revision || req->max_mod_revision || req->min_create_revision ||
                   req->max_create_revision;
    uint8_t order = req->sort_order;
    if (req->sort_target != KV_SORT_KEY && order == KV_SORT_NONE)
        order = KV_SORT_ASCEND;
    else if (req->sort_target == KV_SORT_KEY && order == KV_SORT_ASCEND)
        order = KV_SORT_NONE; /* the scan is already in key order */
    bool fetch_all = req->sort_order != KV_SORT_NONE || filters;

    struct kv_kv *cand = NULL; /* owned: candidates pointing into the store */
    size_t n = 0, cap = 0;
    /* In key order (!fetch_all) the page is known as it is collected: once it is full
     * (limit + 1 keys, or the response size), later keys are only counted. */
    bool is_full = false;
    uint64_t bytes = 0;
    struct kv_scanner s;
    int rc = kv_scan_open(&s, t, req->key, req->range_end, rev, !req->count_only);
    if (rc)
        goto out;
    for (;;) {
        struct kv_found f;
        rc = kv_scan_next(&s, &f);
        if (rc == ASPEN_E_NOT_FOUND) {
            rc = 0;
            break;
        }
        if (rc)
            goto out;
        out->count++;
        if (req->count_only)
            continue;
        /* etcd fetches limit+1 keys (then sorts them, if asked to sort by something
         * other than the key without ASCEND/DESCEND, and cuts): the rest is counted. */
        if (is_full) {
            if (req->skip_count && req->limit > 0 && out->count > req->limit)
                break; /* limit + 1 keys looked at say `more`; the rest is not counted */
            s.need_rec = false;
            continue;
        }
        ASPEN_ASSERT(f.has_rec);
        struct kv_kv kv = {.key = f.rec.key,
                           .value = f.rec.value,
                           .create_revision = f.rec.create_rev,
                           .mod_revision = f.mod_rev,
                           .version = f.rec.version,
                           .lease = f.rec.lease};
        if (filters && filtered_out(req, &kv))
            continue;
        if (!fetch_all && response_full(&bytes, &kv, req->keys_only)) {
            is_full = out->more = true;
        } else {
            if ((rc = mem_grow(&cand, &cap, n, sizeof(*cand), 16, SIZE_MAX / sizeof(*cand))))
                goto out;
            cand[n++] = kv;
            is_full = !fetch_all && req->limit > 0 && n > (uint64_t)req->limit;
        }
        if (is_full && req->skip_count && req->limit > 0 && out->count > req->limit)
            break;
    }
    if (order != KV_SORT_NONE && n > 1) {
        sort_target = req->sort_target;
        sort_descend = order == KV_SORT_DESCEND;
        qsort(cand, n, sizeof(*cand), cmp_kv);
    }
    if (req->limit > 0 && n > (uint64_t)req->limit) {
        n = (size_t)req->limit;
        out->more = true;
    }
    /* A sorted or filtered page is cut at the response size only now. */
    for (size_t i = 0; fetch_all && i < n; i++) {
        if (response_full(&bytes, &cand[i], req->keys_only)) {
            n = i;
            out->more = true;
        }
    }
    if (n) {
        out->kvs = arena_alloc(a, n * sizeof(*out->kvs), _Alignof(struct kv_kv));
        if (!out->kvs) {
            rc = ASPEN_E_NOMEM;
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            struct kv_rec rec = {.create_rev = cand[i].create_revision,
                                 .version = cand[i].version,
                                 .lease = cand[i].lease,
                                 .value = cand[i].value};
            rc = kv_kv_copy(a, cand[i].key, &rec, cand[i].mod_revision, !req->keys_only,
                            &out->kvs[i]);
            if (rc)
                goto out;
        }
        out->n_kvs = n;
    }
out:
    kv_scan_close(&s);
    mem_free(cand);
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

int kv_range(struct store_txn *t, const struct kv_range_req *req, struct arena *a,
             struct kv_range_result *out, int64_t *header_rev)
{
    memset(out, 0, sizeof(*out));
    if (req->key.len == 0 || req->key.len > ASPEN_MAX_KEY_BYTES ||
        req->range_end.len > ASPEN_MAX_KEY_BYTES || req->limit < 0 ||
        req->sort_order > KV_SORT_DESCEND || req->sort_target > KV_SORT_VALUE)
        return ASPEN_E_INVALID;
    int64_t cur, compacted;
    int rc = kv_revisions(t, &cur, &compacted);
    if (rc)
        return rc;
    if (header_rev)
        *header_rev = cur;
    if ((rc = kv_range_check_rev(req->revision, cur, compacted)))
        return rc;
    return kv_range_at(t, req, req->revision > 0 ? req->revision : cur, a, out);
}
