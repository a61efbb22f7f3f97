/*
 * kv_history: the changes a watch needs to catch up from the past, read straight from
 * KV_REV in revision order (which is the order the changes were made in: (main, sub)).
 * prev_kv comes from a point read of the key at main - 1.
 *
 * A revision is never split between two calls: `max` is checked only between
 * revisions, so one call may return more than `max` events when a single revision (a
 * large range delete or lease revoke) holds more; a watcher never sees half a txn.
 */
#include "kv/internal.h"

#include <string.h>

static int event_from(struct store_txn *t, struct arena *a, int64_t main_rev,
                      const struct kv_rec *rec, bool prev, struct kv_event *e)
{
    memset(e, 0, sizeof(*e));
    e->type = rec->tombstone ? KV_EVENT_DELETE : KV_EVENT_PUT;
    int rc = kv_kv_copy(a, rec->key, rec->tombstone ? NULL : rec, main_rev, true, &e->kv);
    if (rc || !prev)
        return rc;
    struct kv_found f;
    rc = kv_read_point(t, rec->key, main_rev - 1, true, &f);
    if (rc == ASPEN_E_NOT_FOUND || (rc == 0 && f.tombstone))
        return 0;
    if (rc)
        return rc;
    e->has_prev = true;
    return kv_kv_copy(a, rec->key, &f.rec, f.mod_rev, true, &e->prev);
}

int kv_history(struct store_txn *t, struct slice key, struct slice range_end, int64_t from_rev,
               int64_t to_rev, bool prev, size_t max, struct kv_events *out, int64_t *next_rev)
{
    if (key.len == 0 || key.len > ASPEN_MAX_KEY_BYTES || range_end.len > ASPEN_MAX_KEY_BYTES)
        return ASPEN_E_INVALID;
    int64_t cur, compacted;
    int rc = kv_revisions(t, &cur, &compacted);
    if (rc)
        return rc;
    if (from_rev < 1)
        from_rev = 1;
    if (from_rev < compacted)
        return ASPEN_E_COMPACTED;
    if (to_rev <= 0 || to_rev > cur)
        to_rev = cur;
    *next_rev = from_rev > to_rev ? from_rev : to_rev + 1;
    if (from_rev > to_rev)
        return 0;

    struct store_cursor *c;
    if ((rc = store_cursor_open(t, STORE_T_KV_REV, &c)))
        return rc;
    uint8_t pos[KV_REV_KEY_LEN];
    kv_rev_key(from_rev, 0, pos);
    struct slice k, v;
    int64_t last = 0;
    size_t n = 0;
    for (rc = store_seek(c, slice_make(pos, sizeof(pos)), &k, &v); rc == 0;
         rc = store_next(c, &k, &v)) {
        int64_t m;
        uint32_t sub;
        if ((rc = kv_rev_key_parse(k, &m, &sub)))
            break;
        if (m > to_rev)
            break;
        if (m != last && max && n >= max) {
            *next_rev = m;
            break;
        }
        last = m;
        struct kv_rec rec;
        if ((rc = kv_rec_decode(v, &rec)))
            break;
        if (!kv_in_range(rec.key, key, range_end))
            continue;
        struct kv_event e;
        if ((rc = event_from(t, out->arena, m, &rec, prev, &e)) || (rc = kv_events_push(out, &e)))
            break;
        n++;
    }
    store_cursor_close(c);
    return rc == ASPEN_E_NOT_FOUND ? 0 : rc;
}
