/*
 * The two write primitives of the MVCC keyspace — put one key, delete a range — and the
 * change events they produce. Each change writes one KV_REV record at (new_rev, sub) and
 * its KV_INDEX entry, and keeps STORE_T_LEASE_KEY in step with the key's lease.
 *
 * Callers validate first (txn.c, lease.c): by the time a primitive runs, the command is
 * known to succeed, so a failure here is a storage error and the whole transaction is
 * aborted. Anything read from the store is copied into the arena before the first write,
 * since a write invalidates the slices the store handed out.
 */
#include "kv/internal.h"

#include "base/assert.h"

#include <string.h>

int kv_events_push(struct kv_events *ev, const struct kv_event *e)
{
    if (ev->n == ev->cap) {
        size_t cap = ev->cap ? 2 * ev->cap : 16;
        struct kv_event *p = arena_alloc(ev->arena, cap * sizeof(*p), _Alignof(struct kv_event));
        if (!p)
            return ASPEN_E_NOMEM;
        if (ev->n)
            memcpy(p, ev->ev, ev->n * sizeof(*p));
        ev->ev = p;
        ev->cap = cap;
    }
    ev->ev[ev->n++] = *e;
    return 0;
}

static void lease_key(int64_t id, struct slice ik, uint8_t *out, size_t *len)
{
    be64_store(out, (uint64_t)id);
    memcpy(out + 8, ik.ptr, ik.len);
    *len = 8 + ik.len;
}

static int lease_attach(struct kv_ctx *ctx, int64_t id, struct slice ik)
{
    uint8_t k[8 + KV_IK_MAX];
    size_t n;
    lease_key(id, ik, k, &n);
    int rc = store_put(ctx->t, STORE_T_LEASE_KEY, slice_make(k, n), slice_make(NULL, 0));
    return rc ? rc : kv_lease_keys_adjust(ctx->t, id, +1);
}

static int lease_detach(struct kv_ctx *ctx, int64_t id, struct slice ik)
{
    uint8_t k[8 + KV_IK_MAX];
    size_t n;
    lease_key(id, ik, k, &n);
    int rc = store_del(ctx->t, STORE_T_LEASE_KEY, slice_make(k, n));
    if (rc)
        return rc == ASPEN_E_NOT_FOUND ? ASPEN_E_CORRUPT : rc;
    return kv_lease_keys_adjust(ctx->t, id, -1);
}

/* Writes one change (record + index entry) at (new_rev, next sub). */
static int write_change(struct kv_ctx *ctx, struct slice ik, const struct kv_rec *rec)
{
    size_t size = kv_rec_size(rec);
    buf_clear(&ctx->scratch);
    int rc = buf_reserve(&ctx->scratch, size);
    if (rc)
        return rc;
    kv_rec_encode(rec, ctx->scratch.data);
    uint32_t sub = ctx->sub++;
    uint8_t rk[KV_REV_KEY_LEN];
    kv_rev_key(ctx->new_rev, sub, rk);
    if ((rc = store_put(ctx->t, STORE_T_KV_REV, slice_make(rk, sizeof(rk)),
                        slice_make(ctx->scratch.data, size))))
        return rc;
    uint8_t xk[KV_INDEX_KEY_MAX], xv[KV_INDEX_VAL_LEN];
    size_t xn = kv_index_key(ik, ctx->new_rev, xk);
    kv_index_val(sub, rec->tombstone, xv);
    ctx->wrote = true;
    return store_put(ctx->t, STORE_T_KV_INDEX, slice_make(xk, xn), slice_make(xv, sizeof(xv)));
}

int kv_write_put(struct kv_ctx *ctx, const struct kv_put_req *req, struct kv_put_result *out)
{
    memset(out, 0, sizeof(*out));
    uint8_t ik[KV_IK_MAX];
    size_t ik_len = kv_ik_encode(req->key, ik);
    struct kv_found f;
    int rc = kv_read_point(ctx->t, req->key, ctx->new_rev, true, &f);
    if (rc && rc != ASPEN_E_NOT_FOUND)
        return rc;
    bool exists = rc == 0 && !f.tombstone;

    /* Copy what the change needs from the old version before writing anything: the
     * result's prev into ctx->a, the event's into the events arena. */
    if (exists && req->prev_kv) {
        out->has_prev = true;
        if ((rc = kv_kv_copy(ctx->a, req->key, &f.rec, f.mod_rev, true, &out->prev)))
            return rc;
    }
    struct kv_event ev = {.type = KV_EVENT_PUT, .has_prev = exists};
    if (ctx->events && exists &&
        (rc = kv_kv_copy(ctx->events->arena, req->key, &f.rec, f.mod_rev, true, &ev.prev)))
        return rc;
    struct kv_rec rec = {.tombstone = false,
                         .create_rev = exists ? f.rec.create_rev : ctx->new_rev,
                         .version = exists ? f.rec.version + 1 : 1,
                         .lease = req->lease,
                         .key = req->key,
                         .value = req->value};
    int64_t old_lease = exists ? f.rec.lease : 0;
    if (req->ignore_value) {
        ASPEN_ASSERT(exists);
        rec.value = f.rec.value;
    }
    if (req->ignore_lease) {
        ASPEN_ASSERT(exists);
        rec.lease = old_lease;
    }
    if (ctx->events &&
        (rc = kv_kv_copy(ctx->events->arena, req->key, &rec, ctx->new_rev, true, &ev.kv)))
        return rc;

    struct slice iks = slice_make(ik, ik_len);
    if ((rc = write_change(ctx, iks, &rec)))
        return rc;
    if (old_lease != rec.lease) {
        if (old_lease && (rc = lease_detach(ctx, old_lease, iks)))
            return rc;
        if (rec.lease && (rc = lease_attach(ctx, rec.lease, iks)))
            return rc;
    }
    return ctx->events ? kv_events_push(ctx->events, &ev) : 0;
}

int kv_write_tombstone(struct kv_ctx *ctx, const struct kv_kv *prev)
{
    uint8_t ik[KV_IK_MAX];
    struct slice iks = slice_make(ik, kv_ik_encode(prev->key, ik));
    struct kv_rec rec = {.tombstone = true, .key = prev->key};
    int rc = write_change(ctx, iks, &rec);
    if (!rc && prev->lease)
        rc = lease_detach(ctx, prev->lease, iks);
    if (rc || !ctx->events)
        return rc;
    struct kv_event ev = {.type = KV_EVENT_DELETE, .has_prev = true};
    if ((rc = kv_kv_dup(ctx->events->arena, prev, &ev.prev)) ||
        (rc = kv_kv_copy(ctx->events->arena, prev->key, NULL, ctx->new_rev, false, &ev.kv)))
        return rc;
    return kv_events_push(ctx->events, &ev);
}

int kv_write_delete(struct kv_ctx *ctx, const struct kv_delete_req *req,
                    struct kv_delete_result *out)
{
    memset(out, 0, sizeof(*out));
    /* Collect the live keys first (copies: the writes below invalidate the scan). */
    struct kv_kv *victims = NULL; /* owned */
    size_t n = 0, cap = 0;
    bool with_value = req->prev_kv || ctx->events;
    struct kv_scanner s;
    int rc = kv_scan_open(&s, ctx->t, req->key, req->range_end, ctx->new_rev, true);
    while (!rc) {
        struct kv_found f;
        rc = kv_scan_next(&s, &f);
        if (rc)
            break;
        if ((rc = mem_grow(&victims, &cap, n, sizeof(*victims), 16, SIZE_MAX / sizeof(*victims))))
            break;
        rc = kv_kv_copy(ctx->a, f.rec.key, &f.rec, f.mod_rev, with_value, &victims[n]);
        n += rc == 0;
    }
    kv_scan_close(&s);
    if (rc != ASPEN_E_NOT_FOUND)
        goto out;
    rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        rc = kv_write_tombstone(ctx, &victims[i]);
    if (rc)
        goto out;
    out->deleted = (int64_t)n;
    if (req->prev_kv && n) {
        out->prev_kvs = arena_alloc(ctx->a, n * sizeof(*out->prev_kvs), _Alignof(struct kv_kv));
        if (!out->prev_kvs) {
            rc = ASPEN_E_NOMEM;
            goto out;
        }
        memcpy(out->prev_kvs, victims, n * sizeof(*victims)); /* their bytes live in ctx->a */
        out->n_prev = n;
    }
out:
    mem_free(victims);
    return rc;
}
