/*
 * Lease state (etcd's lessor, minus the clock): granting, revoking with the deletion of
 * every attached key in one revision, and the queries kv_lease_get / kv_lease_list.
 * Attaching and detaching keys happens in write.c as keys are put and deleted, so
 * STORE_T_LEASE_KEY always lists exactly the live keys that carry each lease.
 *
 * Granting does not move the revision (etcd's lease grant is not a keyspace change);
 * revoking moves it once if it deleted keys, and not at all otherwise.
 */
#include "kv/internal.h"

#include "base/assert.h"

#include <stdlib.h>
#include <string.h>

static int lease_decode(struct slice k, struct slice v, struct kv_lease *out)
{
    if (k.len != 8 || v.len != KV_LEASE_VAL_LEN || v.ptr[0] != KV_LEASE_FORMAT)
        return ASPEN_E_CORRUPT;
    out->id = (int64_t)be64_load(k.ptr);
    out->ttl_ms = (int64_t)be64_load(v.ptr + 1);
    out->n_keys = (int64_t)be64_load(v.ptr + 9);
    if (out->n_keys < 0)
        return ASPEN_E_CORRUPT;
    return 0;
}

static int lease_encode_put(struct store_txn *t, const struct kv_lease *l)
{
    uint8_t k[8], v[KV_LEASE_VAL_LEN];
    be64_store(k, (uint64_t)l->id);
    v[0] = KV_LEASE_FORMAT;
    be64_store(v + 1, (uint64_t)l->ttl_ms);
    be64_store(v + 9, (uint64_t)l->n_keys);
    return store_put(t, STORE_T_LEASE, slice_make(k, 8), slice_make(v, sizeof(v)));
}

static int lease_read(struct store_txn *t, int64_t id, struct kv_lease *out)
{
    uint8_t k[8];
    be64_store(k, (uint64_t)id);
    struct slice v;
    int rc = store_get(t, STORE_T_LEASE, slice_make(k, 8), &v);
    if (rc == ASPEN_E_NOT_FOUND)
        return ASPEN_E_LEASE_NOT_FOUND;
    return rc ? rc : lease_decode(slice_make(k, 8), v, out);
}

int kv_lease_keys_adjust(struct store_txn *t, int64_t id, int delta)
{
    struct kv_lease l;
    int rc = lease_read(t, id, &l);
    if (rc == ASPEN_E_LEASE_NOT_FOUND)
        return ASPEN_E_CORRUPT; /* a key carries a lease that does not exist */
    if (rc)
        return rc;
    l.n_keys += delta;
    if (l.n_keys < 0)
        return ASPEN_E_CORRUPT;
    return lease_encode_put(t, &l);
}

int kv_lease_grant_apply(struct kv_ctx *ctx, int64_t id, int64_t ttl_ms)
{
    struct kv_lease old;
    int rc = lease_read(ctx->t, id, &old);
    if (rc == 0)
        return ASPEN_E_EXISTS;
    if (rc != ASPEN_E_LEASE_NOT_FOUND)
        return rc;
    uint64_t n;
    if ((rc = store_count(ctx->t, STORE_T_LEASE, &n)))
        return rc;
    if (n >= ASPEN_MAX_LEASES)
        return ASPEN_E_LIMIT;
    struct kv_lease l = {.id = id, .ttl_ms = ttl_ms, .n_keys = 0};
    return lease_encode_put(ctx->t, &l);
}

/* The live version of an attached key, by its IK: the newest index record. */
static int attached_key(struct store_txn *t, struct store_cursor *xc, struct slice ik,
                        struct kv_found *f)
{
    uint8_t sk[KV_INDEX_KEY_MAX];
    size_t n = kv_index_key(ik, INT64_MAX, sk);
    struct slice k, v, fik;
    int64_t m;
    int rc = store_seek(xc, slice_make(sk, n), &k, &v);
    if (rc == ASPEN_E_NOT_FOUND)
        return ASPEN_E_CORRUPT;
    if (rc || (rc = kv_index_split(k, &fik, &m)))
        return rc;
    if (!slice_eq(fik, ik))
        return ASPEN_E_CORRUPT;
    f->ik = fik;
    f->mod_rev = m;
    if ((rc = kv_index_val_parse(v, &f->sub, &f->tombstone)))
        return rc;
    if (f->tombstone)
        return ASPEN_E_CORRUPT; /* a deleted key must have been detached */
    if ((rc = kv_rev_get(t, m, f->sub, &f->rec)))
        return rc;
    f->has_rec = true;
    f->key = f->rec.key;
    return 0;
}

/* Every key attached to lease id, copied into a (with values if with_value). */
static int attached_keys(struct store_txn *t, int64_t id, struct arena *a, bool with_value,
                         struct kv_kv **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    struct store_cursor *lc = NULL, *xc = NULL;
    struct kv_kv *kvs = NULL; /* owned until copied to a */
    size_t n = 0, cap = 0;
    uint8_t prefix[8];
    be64_store(prefix, (uint64_t)id);
    int rc = store_cursor_open(t, STORE_T_LEASE_KEY, &lc);
    if (rc || (rc = store_cursor_open(t, STORE_T_KV_INDEX, &xc)))
        goto out;
    struct slice k, v;
    for (rc = store_seek(lc, slice_make(prefix, 8), &k, &v); rc == 0; rc = store_next(lc, &k, &v)) {
        if (!slice_has_prefix(k, slice_make(prefix, 8)))
            break;
        struct kv_found f;
        if ((rc = attached_key(t, xc, slice_make(k.ptr + 8, k.len - 8), &f)))
            goto out;
        if (f.rec.lease != id) {
            rc = ASPEN_E_CORRUPT;
            goto out;
        }
        if ((rc = mem_grow(&kvs, &cap, n, sizeof(*kvs), 16, SIZE_MAX / sizeof(*kvs))))
            goto out;
        if ((rc = kv_kv_copy(a, f.key, &f.rec, f.mod_rev, with_value, &kvs[n])))
            goto out;
        n++;
    }
    if (rc && rc != ASPEN_E_NOT_FOUND)
        goto out;
    rc = 0;
    if (n) {
        *out = arena_alloc(a, n * sizeof(**out), _Alignof(struct kv_kv));
        if (!*out) {
            rc = ASPEN_E_NOMEM;
            goto out;
        }
        memcpy(*out, kvs, n * sizeof(*kvs));
        *n_out = n;
    }
out:
    store_cursor_close(xc);
    store_cursor_close(lc);
    mem_free(kvs);
    return rc;
}

static int cmp_slice(const void *a, const void *b)
{
    return slice_cmp(*(const struct slice *)a, *(const struct slice *)b);
}

static int cmp_kv_key(const void *a, const void *b)
{
    return slice_cmp(((const struct kv_kv *)a)->key, ((const struct kv_kv *)b)->key);
}

int kv_lease_revoke_apply(struct kv_ctx *ctx, int64_t id)
{
    struct kv_lease l;
    int rc = lease_read(ctx->t, id, &l);
    if (rc)
        return rc;
    struct kv_kv *kvs;
    size_t n;
    if ((rc = attached_keys(ctx->t, id, ctx->a, ctx->events != NULL, &kvs, &n)))
        return rc;
    /* etcd deletes a revoked lease's keys in key order; the LEASE_KEY table is in IK
     * order, which differs inside long-key groups. Sort so sub numbers follow etcd. */
    if (n > 1)
        qsort(kvs, n, sizeof(*kvs), cmp_kv_key);
    for (size_t i = 0; i < n && !rc; i++)
        rc = kv_write_tombstone(ctx, &kvs[i]); /* also removes the LEASE_KEY record */
    if (rc)
        return rc;
    uint8_t k[8];
    be64_store(k, (uint64_t)id);
    return store_del(ctx->t, STORE_T_LEASE, slice_make(k, 8));
}

int kv_lease_get(struct store_txn *t, int64_t id, struct kv_lease *out, struct arena *a,
                 struct slice **keys, size_t *n_keys)
{
    int rc = lease_read(t, id, out);
    if (rc)
        return rc;
    if (!keys)
        return 0;
    struct kv_kv *kvs;
    size_t n;
    if ((rc = attached_keys(t, id, a, false, &kvs, &n)))
        return rc;
    *keys = NULL;
    *n_keys = n;
    if (n == 0)
        return 0;
    *keys = arena_alloc(a, n * sizeof(**keys), _Alignof(struct slice));
    if (!*keys)
        return ASPEN_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        (*keys)[i] = kvs[i].key;
    qsort(*keys, n, sizeof(**keys), cmp_slice);
    return 0;
}

int kv_lease_list(struct store_txn *t, struct arena *a, struct kv_lease **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    uint64_t count;
    int rc = store_count(t, STORE_T_LEASE, &count);
    if (rc || count == 0)
        return rc;
    struct kv_lease *l = arena_alloc(a, (size_t)count * sizeof(*l), _Alignof(struct kv_lease));
    if (!l)
        return ASPEN_E_NOMEM;
    struct store_cursor *c;
    if ((rc = store_cursor_open(t, STORE_T_LEASE, &c)))
        return rc;
    struct slice k, v;
    size_t i = 0;
    for (rc = store_seek(c, slice_make(NULL, 0), &k, &v); rc == 0 && i < count;
         rc = store_next(c, &k, &v)) {
        if ((rc = lease_decode(k, v, &l[i])))
            break;
        i++;
    }
    store_cursor_close(c);
    if (rc && rc != ASPEN_E_NOT_FOUND)
        return rc;
    *out = l;
    *n = i;
    return 0;
}
