/*
 * Reading the MVCC keyspace: a point lookup at a revision (one index seek, one revision
 * record get) and the ordered scanner every range, delete-range, range compare and lease
 * listing is built on.
 *
 * The scanner walks the index cursor with next(): a key's records are contiguous, newest
 * first, so the version visible at revision R is the first record of the key if its
 * revision is <= R, and otherwise one seek to IK ++ be64(~R) finds it; one more seek
 * skips the rest of the key's history only when the key has more than one record.
 * Long keys sharing a T prefix (layout.h) sort by hash in the index, so the scanner
 * gathers such a group, keeps the members in range and orders them by full key. The
 * scanner copies nothing: it returns slices into the store (valid while the transaction
 * makes no write), which callers copy into their result arena.
 */
#include "kv/internal.h"

#include "base/assert.h"

#include <stdlib.h>
#include <string.h>

int kv_rev_get(struct store_txn *t, int64_t main_rev, uint32_t sub, struct kv_rec *rec)
{
    uint8_t k[KV_REV_KEY_LEN];
    kv_rev_key(main_rev, sub, k);
    struct slice v;
    int rc = store_get(t, STORE_T_KV_REV, slice_make(k, sizeof(k)), &v);
    if (rc == ASPEN_E_NOT_FOUND)
        return ASPEN_E_CORRUPT;
    if (rc)
        return rc;
    return kv_rec_decode(v, rec);
}

/* Fills f from an index record whose IK and revision are already split out. */
static int found_fill(struct kv_found *f, struct slice ik, int64_t main_rev, struct slice v)
{
    f->ik = ik;
    f->mod_rev = main_rev;
    f->has_rec = false;
    return kv_index_val_parse(v, &f->sub, &f->tombstone);
}

/* The scanner's revision lookup: through one cursor kept for the whole scan, because
 * LMDB searches only the cursor's current leaf when the key falls inside it, and a
 * range's keys often have neighbouring revisions (written together, or loaded in key
 * order); a fresh store_get descends from the root every time. */
static int scan_rev_get(struct kv_scanner *s, int64_t main_rev, uint32_t sub, struct kv_rec *rec)
{
    int rc;
    if (!s->c_rev && (rc = store_cursor_open(s->t, STORE_T_KV_REV, &s->c_rev)))
        return rc;
    uint8_t want[KV_REV_KEY_LEN];
    kv_rev_key(main_rev, sub, want);
    struct slice k, v;
    rc = store_seek(s->c_rev, slice_make(want, sizeof(want)), &k, &v);
    if (rc == ASPEN_E_NOT_FOUND || (rc == 0 && !slice_eq(k, slice_make(want, sizeof(want)))))
        return ASPEN_E_CORRUPT; /* the index names a revision record that is not there */
    if (rc)
        return rc;
    return kv_rec_decode(v, rec);
}

static int found_check(struct kv_found *f, int rc)
{
    if (rc)
        return rc;
    if (f->rec.tombstone != f->tombstone)
        return ASPEN_E_CORRUPT;
    f->has_rec = true;
    return 0;
}

static int found_load(struct store_txn *t, struct kv_found *f)
{
    return found_check(f, kv_rev_get(t, f->mod_rev, f->sub, &f->rec));
}

static int scan_load(struct kv_scanner *s, struct kv_found *f)
{
    return found_check(f, scan_rev_get(s, f->mod_rev, f->sub, &f->rec));
}

int kv_read_point(struct store_txn *t, struct slice key, int64_t rev, bool need_rec,
                  struct kv_found *f)
{
    uint8_t ik[KV_IK_MAX], sk[KV_INDEX_KEY_MAX];
    size_t ik_len = kv_ik_encode(key, ik);
    size_t sk_len = kv_index_key(slice_make(ik, ik_len), rev, sk);
    struct store_cursor *c;
    int rc = store_cursor_open(t, STORE_T_KV_INDEX, &c);
    if (rc)
        return rc;
    struct slice k, v, fik;
    int64_t m;
    rc = store_seek(c, slice_make(sk, sk_len), &k, &v);
    if (rc)
        goto out;
    if ((rc = kv_index_split(k, &fik, &m)))
        goto out;
    if (!slice_eq(fik, slice_make(ik, ik_len))) {
        rc = ASPEN_E_NOT_FOUND;
        goto out;
    }
    if ((rc = found_fill(f, fik, m, v)))
        goto out;
    f->key = key;
    if (need_rec && !f->tombstone) {
        rc = found_load(t, f);
        if (!rc && !slice_eq(f->rec.key, key))
            rc = ASPEN_E_CORRUPT; /* a 128-bit hash collision, or damage */
    }
out:
    store_cursor_close(c);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * The scanner
 * ------------------------------------------------------------------------------------- */

static bool is_from_key(struct slice end)
{
    return end.len == 1 && end.ptr[0] == 0;
}

int kv_scan_open(struct kv_scanner *s, struct store_txn *t, struct slice begin, struct slice end,
                 int64_t rev, bool need_rec)
{
    memset(s, 0, offsetof(struct kv_scanner, end_ik));
    s->t = t;
    s->rev = rev;
    s->begin = begin;
    s->end = end;
    s->need_rec = need_rec;
    s->single = end.len == 0;
    s->to_end = is_from_key(end);
    if (s->single)
        return 0;
    if (!s->to_end) {
        if (slice_cmp(begin, end) >= 0) {
            s->done = true;
            return 0;
        }
        s->end_ik_len = kv_ik_encode(end, s->end_ik);
        s->end_long = kv_ik_is_long(s->end_ik_len);
        if (s->end_long)
            s->end_ik_len -= KV_IK_LONG_TAIL; /* compare against the group T */
    }
    int rc = store_cursor_open(t, STORE_T_KV_INDEX, &s->c);
    if (rc)
        return rc;
    /* Start at IK(begin), or at its group's T for a long key (earlier members of the
     * group may sort after it by hash but still be >= begin). */
    uint8_t ik[KV_IK_MAX];
    size_t n = kv_ik_encode(begin, ik);
    if (kv_ik_is_long(n))
        n -= KV_IK_LONG_TAIL;
    rc = store_seek(s->c, slice_make(ik, n), &s->k, &s->v);
    if (rc == ASPEN_E_NOT_FOUND) {
        s->done = true;
        return 0;
    }
    return rc;
}

void kv_scan_close(struct kv_scanner *s)
{
    store_cursor_close(s->c);
    s->c = NULL;
    store_cursor_close(s->c_rev);
    s->c_rev = NULL;
    mem_free(s->grp);
    s->grp = NULL;
}

/* Moves the cursor; the end of the table ends the scan. */
static int scan_step(struct kv_scanner *s, int rc)
{
    if (rc == ASPEN_E_NOT_FOUND) {
        s->done = true;
        return 0;
    }
    return rc;
}

/* The cursor stands on the first (newest) record of key ik. Finds the version visible at
 * s->rev (*found) and leaves the cursor on the first record of the following key. */
static int scan_resolve(struct kv_scanner *s, struct slice ik, int64_t main_rev, struct kv_found *f,
                        bool *found)
{
    *found = false;
    struct slice v = s->v;
    int rc;
    if (main_rev > s->rev) {
        size_t n = kv_index_key(ik, s->rev, s->seekbuf);
        rc = store_seek(s->c, slice_make(s->seekbuf, n), &s->k, &s->v);
        if (rc)
            return scan_step(s, rc);
        struct slice ik2;
        if ((rc = kv_index_split(s->k, &ik2, &main_rev)))
            return rc;
        if (!slice_eq(ik2, ik))
            return 0; /* no version at or below rev: the cursor is on the next key */
        v = s->v;
    }
    if ((rc = found_fill(f, ik, main_rev, v)))
        return rc;
    *found = true;
    rc = store_next(s->c, &s->k, &s->v);
    if (rc)
        return scan_step(s, rc);
    if (s->k.len == ik.len + 8 && memcmp(s->k.ptr, ik.ptr, ik.len) == 0) {
        /* Older history of the same key: skip it with one seek past its last record. */
        memcpy(s->seekbuf, ik.ptr, ik.len);
        memset(s->seekbuf + ik.len, 0xFF, 8);
        rc = store_seek(s->c, slice_make(s->seekbuf, ik.len + 8), &s->k, &s->v);
        if (rc)
            return scan_step(s, rc);
    }
    return 0;
}

/* Is the index record with this IK past the end bound? (For a long end bound, records
 * of its own group are not: their keys are compared one by one.) */
static bool past_end(const struct kv_scanner *s, struct slice ik)
{
    if (s->to_end)
        return false;
    struct slice e = slice_make(s->end_ik, s->end_ik_len);
    if (!s->end_long)
        return slice_cmp(ik, e) >= 0;
    if (kv_ik_is_long(ik.len) && slice_eq(kv_ik_group(ik), e))
        return false;
    return slice_cmp(ik, e) > 0;
}

static int cmp_found(const void *a, const void *b)
{
    const struct kv_found *x = a, *y = b;
    return slice_cmp(x->key, y->key);
}

/* Gathers the long group at the cursor into s->grp: members live at rev and in range,
 * ordered by key. */
static int scan_group(struct kv_scanner *s, struct slice group)
{
    s->grp_n = 0;
    s->grp_i = 0;
    while (!s->done) {
        struct slice ik;
        int64_t m;
        int rc = kv_index_split(s->k, &ik, &m);
        if (rc)
            return rc;
        if (!kv_ik_is_long(ik.len) || !slice_eq(kv_ik_group(ik), group))
            break;
        struct kv_found f;
        bool found;
        if ((rc = scan_resolve(s, ik, m, &f, &found)))
            return rc;
        if (!found || f.tombstone)
            continue;
        if ((rc = scan_load(s, &f)))
            return rc;
        f.key = f.rec.key;
        if (!kv_in_range(f.key, s->begin, s->end))
            continue;
        rc = mem_grow(&s->grp, &s->grp_cap, s->grp_n, sizeof(*s->grp), 8, SIZE_MAX / 2);
        if (rc)
            return rc;
        s->grp[s->grp_n++] = f;
    }
    if (s->grp_n > 1)
        qsort(s->grp, s->grp_n, sizeof(*s->grp), cmp_found);
    return 0;
}

int kv_scan_next(struct kv_scanner *s, struct kv_found *f)
{
    int rc;
    if (s->single) {
        if (s->done)
            return ASPEN_E_NOT_FOUND;
        s->done = true;
        rc = kv_read_point(s->t, s->begin, s->rev, s->need_rec, f);
        if (rc == 0 && f->tombstone)
            rc = ASPEN_E_NOT_FOUND;
        return rc;
    }
    for (;;) {
        if (s->grp_i < s->grp_n) {
            *f = s->grp[s->grp_i++];
            return 0;
        }
        if (s->done)
            return ASPEN_E_NOT_FOUND;
        struct slice ik;
        int64_t m;
        if ((rc = kv_index_split(s->k, &ik, &m)))
            return rc;
        if (past_end(s, ik)) {
            s->done = true;
            return ASPEN_E_NOT_FOUND;
        }
        if (kv_ik_is_long(ik.len)) {
            if ((rc = scan_group(s, kv_ik_group(ik))))
                return rc;
            continue;
        }
        bool found;
        if ((rc = scan_resolve(s, ik, m, f, &found)))
            return rc;
        if (!found || f->tombstone)
            continue;
        size_t klen;
        if ((rc = kv_ik_decode_short(ik, s->keybuf, &klen)))
            return rc;
        f->key = slice_make(s->keybuf, klen);
        if (slice_cmp(f->key, s->begin) < 0)
            continue; /* cannot happen (see kv_scan_open), but costs one compare */
        if (s->need_rec && (rc = scan_load(s, f)))
            return rc;
        return 0;
    }
}
