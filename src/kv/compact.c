/*
 * Compaction (etcd's Compact): the logical part takes effect at once — reads below the
 * compacted revision fail ASPEN_E_COMPACTED — and the physical cleanup runs in bounded
 * steps, each part of applying a log entry, so every replica and both backends delete
 * exactly the same records in the same entries (the tables stay byte-identical).
 *
 * A step walks KV_REV from the saved cursor (layout.h "kv.compact") and examines at most
 * `max` records with main <= target. It deletes a record and its index entry unless the
 * record is its key's newest revision <= target and not a tombstone: etcd's
 * keyIndex.compact keeps, for every key, the newest version at or below the compaction
 * revision, and drops a tombstone there. Reads at any revision >= target therefore see
 * the same keyspace before, during and after the cleanup. A new compaction restarts the
 * cursor (from the first revision: what earlier cleanups kept is examined again).
 */
#include "kv/internal.h"

#include "base/assert.h"

#include <string.h>

#define COMPACT_STATE_LEN (8 + 8 + 4)

static int state_put(struct store_txn *t, int64_t target, int64_t main_rev, uint32_t sub)
{
    uint8_t v[COMPACT_STATE_LEN];
    be64_store(v, (uint64_t)target);
    be64_store(v + 8, (uint64_t)main_rev);
    be32_store(v + 16, sub);
    return store_put(t, STORE_T_META, slice_str(KV_META_COMPACT), slice_make(v, sizeof(v)));
}

int kv_compact_apply(struct kv_ctx *ctx, int64_t rev)
{
    if (rev <= ctx->compacted)
        return ASPEN_E_COMPACTED;
    if (rev > ctx->rev)
        return ASPEN_E_FUTURE_REV;
    int rc = kv_meta_put_i64(ctx->t, KV_META_COMPACTED, rev);
    if (!rc)
        rc = state_put(ctx->t, rev, 1, 0);
    if (!rc)
        rc = kv_compact_step(ctx->t, ASPEN_COMPACT_BATCH_REVISIONS);
    return rc;
}

/* Is the record (main, rec) obsolete after compacting at target? */
static int obsolete(struct store_txn *t, int64_t main_rev, const struct kv_rec *rec, int64_t target,
                    bool *out)
{
    if (rec->tombstone) {
        *out = true;
        return 0;
    }
    struct kv_found f;
    int rc = kv_read_point(t, rec->key, target, false, &f);
    if (rc == ASPEN_E_NOT_FOUND)
        return ASPEN_E_CORRUPT; /* the record itself is at or below target */
    if (rc)
        return rc;
    *out = f.mod_rev != main_rev;
    return 0;
}

static int drop(struct store_txn *t, struct slice rev_key, int64_t main_rev,
                const struct kv_rec *rec)
{
    uint8_t xk[KV_INDEX_KEY_MAX], ik[KV_IK_MAX];
    size_t ik_len = kv_ik_encode(rec->key, ik);
    size_t xn = kv_index_key(slice_make(ik, ik_len), main_rev, xk);
    uint8_t rk[KV_REV_KEY_LEN];
    memcpy(rk, rev_key.ptr, KV_REV_KEY_LEN); /* rev_key dies with the first write */
    int rc = store_del(t, STORE_T_KV_INDEX, slice_make(xk, xn));
    if (!rc)
        rc = store_del(t, STORE_T_KV_REV, slice_make(rk, sizeof(rk)));
    return rc == ASPEN_E_NOT_FOUND ? ASPEN_E_CORRUPT : rc;
}

int kv_compact_step(struct store_txn *t, size_t max)
{
    ASPEN_ASSERT(max > 0);
    struct slice sv;
    int rc = store_get(t, STORE_T_META, slice_str(KV_META_COMPACT), &sv);
    if (rc == ASPEN_E_NOT_FOUND)
        return 0;
    if (rc)
        return rc;
    if (sv.len != COMPACT_STATE_LEN)
        return ASPEN_E_CORRUPT;
    int64_t target = (int64_t)be64_load(sv.ptr);
    int64_t main_rev = (int64_t)be64_load(sv.ptr + 8);
    uint32_t sub = be32_load(sv.ptr + 16);

    struct store_cursor *c;
    if ((rc = store_cursor_open(t, STORE_T_KV_REV, &c)))
        return rc;
    uint8_t pos[KV_REV_KEY_LEN];
    kv_rev_key(main_rev, sub, pos);
    struct slice k, v;
    size_t examined = 0;
    bool finished = false;
    rc = store_seek(c, slice_make(pos, sizeof(pos)), &k, &v);
    for (;;) {
        if (rc == ASPEN_E_NOT_FOUND) {
            finished = true;
            rc = 0;
            break;
        }
        if (rc)
            break;
        if ((rc = kv_rev_key_parse(k, &main_rev, &sub)))
            break;
        if (main_rev > target) {
            finished = true;
            break;
        }
        if (examined == max)
            break; /* (main_rev, sub) is where the next step starts */
        examined++;
        struct kv_rec rec;
        bool gone;
        if ((rc = kv_rec_decode(v, &rec)) || (rc = obsolete(t, main_rev, &rec, target, &gone)))
            break;
        if (!gone) {
            rc = store_next(c, &k, &v);
            continue;
        }
        if ((rc = drop(t, k, main_rev, &rec)))
            break;
        /* Writes may move the backend under the cursor: seek again past what was dropped. */
        kv_rev_key(main_rev, sub, pos);
        rc = store_seek(c, slice_make(pos, sizeof(pos)), &k, &v);
    }
    store_cursor_close(c);
    if (rc)
        return rc;
    if (finished)
        return store_del(t, STORE_T_META, slice_str(KV_META_COMPACT));
    return state_put(t, target, main_rev, sub);
}
