/*
 * The KV state machine's meta records (layout.h): the applied index, the current and
 * compacted revisions, and the pending-compaction flag.
 */
#include "kv/internal.h"

int kv_meta_get_i64(struct store_txn *t, const char *name, int64_t dflt, int64_t *v)
{
    struct slice val;
    int rc = store_get(t, STORE_T_META, slice_str(name), &val);
    if (rc == ASPEN_E_NOT_FOUND) {
        *v = dflt;
        return 0;
    }
    if (rc)
        return rc;
    if (val.len != 8 || be64_load(val.ptr) > INT64_MAX)
        return ASPEN_E_CORRUPT;
    *v = (int64_t)be64_load(val.ptr);
    return 0;
}

int kv_meta_put_i64(struct store_txn *t, const char *name, int64_t v)
{
    uint8_t b[8];
    be64_store(b, (uint64_t)v);
    return store_put(t, STORE_T_META, slice_str(name), slice_make(b, 8));
}

int kv_init(struct store_txn *t)
{
    struct slice v;
    int rc = store_get(t, STORE_T_META, slice_str(KV_META_REV), &v);
    if (rc != ASPEN_E_NOT_FOUND)
        return rc;
    uint8_t applied[16] = {0};
    if ((rc = kv_meta_put_i64(t, KV_META_REV, 1)) ||
        (rc = kv_meta_put_i64(t, KV_META_COMPACTED, 0)))
        return rc;
    return store_put(t, STORE_T_META, slice_str(KV_META_APPLIED), slice_make(applied, 16));
}

int kv_applied(struct store_txn *t, raft_index *index, raft_term *term)
{
    struct slice v;
    int rc = store_get(t, STORE_T_META, slice_str(KV_META_APPLIED), &v);
    if (rc == ASPEN_E_NOT_FOUND) {
        *index = 0;
        *term = 0;
        return 0;
    }
    if (rc)
        return rc;
    if (v.len != 16)
        return ASPEN_E_CORRUPT;
    *index = be64_load(v.ptr);
    *term = be64_load(v.ptr + 8);
    return 0;
}

int kv_revisions(struct store_txn *t, int64_t *current, int64_t *compacted)
{
    int rc = kv_meta_get_i64(t, KV_META_REV, 1, current);
    if (!rc)
        rc = kv_meta_get_i64(t, KV_META_COMPACTED, 0, compacted);
    if (!rc && (*current < 1 || *compacted < 0 || *compacted > *current))
        rc = ASPEN_E_CORRUPT;
    return rc;
}

int kv_compact_pending(struct store_txn *t, bool *pending)
{
    struct slice v;
    int rc = store_get(t, STORE_T_META, slice_str(KV_META_COMPACT), &v);
    *pending = rc == 0;
    return rc == ASPEN_E_NOT_FOUND ? 0 : rc;
}
