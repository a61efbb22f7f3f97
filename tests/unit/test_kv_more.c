/*
 * The KV state machine, second suite: the index-key encoding's order (random binary and
 * long keys, checked pairwise and through range scans on a store), binary and 64 KiB
 * keys, compaction (boundaries, tombstones, bounded steps with a cursor inside one
 * revision), leases, kv_history, kv_digest, and a randomized run of puts, deletes, txns,
 * compactions and leases checked against a small reference model at random revisions.
 */
#include "kv_util.h"

#include "base/rand.h"
#include "kv/internal.h"

#include <stdlib.h>

/* ---------------------------------------------------------------------------------------
 * Index keys
 * ------------------------------------------------------------------------------------- */

/* Random keys built to stress the encoding: bytes drawn from {00, 01, FE, FF, 'a'},
 * lengths around the short/long boundary, and long keys sharing 480+ byte prefixes. */
static size_t gen_key(struct rng *r, uint8_t *out, size_t max)
{
    static const uint8_t alphabet[] = {0x00, 0x01, 0xFE, 0xFF, 'a'};
    static uint8_t shared[700];
    static bool init;
    if (!init) {
        for (size_t i = 0; i < sizeof(shared); i++)
            shared[i] = alphabet[i % 7 == 3 ? 0 : 4 - (i % 2)];
        init = true;
    }
    size_t len;
    switch (rng_below(r, 4)) {
    case 0:
        len = 1 + rng_below(r, 8);
        break;
    case 1:
        len = 230 + rng_below(r, 260); /* E(u) around 480 */
        break;
    default:
        len = 470 + rng_below(r, 200);
        break;
    }
    if (len > max)
        len = max;
    size_t prefix = rng_below(r, 2) ? len - rng_below(r, 6 < len ? 6 : len) : 0;
    if (prefix > sizeof(shared))
        prefix = sizeof(shared);
    memcpy(out, shared, prefix);
    for (size_t i = prefix; i < len; i++)
        out[i] = alphabet[rng_below(r, sizeof(alphabet))];
    return len;
}

static int sign(int x)
{
    return (x > 0) - (x < 0);
}

static void test_ik_order(void)
{
    struct rng r;
    rng_seed(&r, test_seed());
    enum { N = 400 };
    static uint8_t keys[N][800], iks[N][KV_IK_MAX];
    static size_t klen[N], iklen[N];
    size_t n_long = 0, n_grouped = 0;
    for (int i = 0; i < N; i++) {
        klen[i] = gen_key(&r, keys[i], sizeof(keys[i]));
        iklen[i] = kv_ik_encode(slice_make(keys[i], klen[i]), iks[i]);
        if (!kv_ik_is_long(iklen[i])) {
            uint8_t back[KV_IK_INLINE];
            size_t blen;
            CHECK_OK(kv_ik_decode_short(slice_make(iks[i], iklen[i]), back, &blen));
            CHECK(slice_eq(slice_make(back, blen), slice_make(keys[i], klen[i])));
        } else {
            n_long++;
        }
    }
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < N; j++) {
            struct slice u = slice_make(keys[i], klen[i]), v = slice_make(keys[j], klen[j]);
            struct slice a = slice_make(iks[i], iklen[i]), b = slice_make(iks[j], iklen[j]);
            if (slice_eq(u, v)) {
                CHECK(slice_eq(a, b));
                continue;
            }
            CHECK(!slice_has_prefix(a, b)); /* prefix-free */
            bool same_group = kv_ik_is_long(a.len) && kv_ik_is_long(b.len) &&
                              slice_eq(kv_ik_group(a), kv_ik_group(b));
            if (same_group) {
                n_grouped++;
                continue;
            }
            CHECK_MSG(sign(slice_cmp(a, b)) == sign(slice_cmp(u, v)), "keys %d and %d misorder", i,
                      j);
        }
    }
    CHECK(n_long > N / 4);
    CHECK(n_grouped > 0);
}

static int cmp_slices(const void *a, const void *b)
{
    return slice_cmp(*(const struct slice *)a, *(const struct slice *)b);
}

/* The same keys in a store: full scans and random sub-ranges come back in key order. */
static void test_scan_order(void)
{
    struct rng r;
    rng_seed(&r, test_seed() + 1);
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    enum { N = 150 };
    static uint8_t keys[N][800];
    struct slice sorted[N];
    size_t n = 0;
    for (int i = 0; i < N; i++) {
        size_t len = gen_key(&r, keys[n], sizeof(keys[n]));
        struct slice s = slice_make(keys[n], len);
        bool dup = false;
        for (size_t j = 0; j < n; j++)
            dup |= slice_eq(sorted[j], s);
        if (dup)
            continue;
        CHECK_OK(kvt_put_bin(&k, s, s));
        sorted[n++] = s;
    }
    qsort(sorted, n, sizeof(sorted[0]), cmp_slices);
    struct kv_range_req q = {.key = slice_make("\0", 1), .range_end = slice_make("\0", 1)};
    struct kv_range_result res;
    CHECK_OK(kvt_range(&k, &q, &res, NULL));
    CHECK_EQ(res.n_kvs, n);
    for (size_t i = 0; i < n; i++) {
        CHECK_MSG(slice_eq(res.kvs[i].key, sorted[i]), "position %zu", i);
        CHECK(slice_eq(res.kvs[i].value, sorted[i]));
    }
    for (int iter = 0; iter < 200; iter++) {
        /* bounds: existing keys, or fresh random ones */
        uint8_t b1[800], b2[800];
        struct slice lo = sorted[rng_below(&r, n)], hi = sorted[rng_below(&r, n)];
        if (rng_below(&r, 2)) {
            lo = slice_make(b1, gen_key(&r, b1, sizeof(b1)));
            hi = slice_make(b2, gen_key(&r, b2, sizeof(b2)));
        }
        q.key = lo;
        q.range_end = hi;
        q.limit = (int64_t)rng_below(&r, 4);
        CHECK_OK(kvt_range(&k, &q, &res, NULL));
        size_t want = 0, first = SIZE_MAX;
        for (size_t i = 0; i < n; i++)
            if (kv_in_range(sorted[i], lo, hi)) {
                if (first == SIZE_MAX)
                    first = i;
                want++;
            }
        CHECK_EQ(res.count, want);
        for (size_t i = 0; i < res.n_kvs; i++)
            CHECK(slice_eq(res.kvs[i].key, sorted[first + i]));
        CHECK_EQ(res.more, q.limit > 0 && want > (size_t)q.limit);
        /* skip_count: the same page and `more`, but only limit + 1 keys counted. */
        struct kv_range_result page = res;
        q.skip_count = true;
        CHECK_OK(kvt_range(&k, &q, &res, NULL));
        q.skip_count = false;
        CHECK_EQ(res.n_kvs, page.n_kvs);
        for (size_t i = 0; i < res.n_kvs && i < page.n_kvs; i++)
            CHECK(slice_eq(res.kvs[i].key, page.kvs[i].key));
        CHECK_EQ(res.more, page.more);
        size_t counted = q.limit > 0 && want > (size_t)q.limit ? (size_t)q.limit + 1 : want;
        CHECK_EQ(res.count, counted);
    }
    kvt_close(&k);
}

static void test_binary_and_huge_keys(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    uint8_t *big = mem_alloc(ASPEN_MAX_KEY_BYTES);
    CHECK(big != NULL);
    memset(big, 0, ASPEN_MAX_KEY_BYTES);
    struct slice keys[] = {slice_make("\0", 1),
                           slice_make("\0\0", 2),
                           slice_make("a\0b", 3),
                           slice_make("\xff", 1),
                           slice_make("\xff\xfe\x80", 3),
                           slice_make(big, ASPEN_MAX_KEY_BYTES),
                           slice_make(big, ASPEN_MAX_KEY_BYTES - 1)};
    size_t n = sizeof(keys) / sizeof(keys[0]);
    for (size_t i = 0; i < n; i++)
        CHECK_OK(kvt_put_bin(&k, keys[i], slice_make(&i, 1)));
    qsort(keys, n, sizeof(keys[0]), cmp_slices);
    struct kv_range_req q = {.key = slice_make("\0", 1), .range_end = slice_make("\0", 1)};
    struct kv_range_result res;
    CHECK_OK(kvt_range(&k, &q, &res, NULL));
    CHECK_EQ(res.n_kvs, n);
    for (size_t i = 0; i < n; i++)
        CHECK(slice_eq(res.kvs[i].key, keys[i]));
    /* point reads of the two long all-zero keys (one group) */
    q.key = slice_make(big, ASPEN_MAX_KEY_BYTES);
    q.range_end = slice_make(NULL, 0);
    CHECK_OK(kvt_range(&k, &q, &res, NULL));
    CHECK_EQ(res.n_kvs, 1);
    CHECK_EQ(res.kvs[0].key.len, ASPEN_MAX_KEY_BYTES);
    int64_t deleted;
    struct kv_cmd c = {.kind = KV_CMD_DELETE};
    c.u.del.key = slice_make(big, 1000);
    c.u.del.range_end = slice_make("\x01", 1);
    struct kv_result r;
    CHECK_OK(kvt_apply(&k, &c, &r));
    deleted = r.u.del.deleted;
    CHECK_EQ(deleted, 2);
    /* too long */
    c.kind = KV_CMD_PUT;
    c.u.put = (struct kv_put_req){.key = slice_make(big, ASPEN_MAX_KEY_BYTES + 1)};
    struct buf b;
    buf_init(&b, ASPEN_MAX_REQUEST_BYTES);
    CHECK_ERR(kv_cmd_encode(&c, &b), ASPEN_E_TOO_LARGE);
    buf_release(&b);
    mem_free(big);
    kvt_close(&k);
}

/* ---------------------------------------------------------------------------------------
 * Compaction
 * ------------------------------------------------------------------------------------- */

static uint64_t table_count(struct kvt *k, enum store_table tb)
{
    struct store_txn *t;
    uint64_t n = UINT64_MAX;
    if (store_begin(k->s, false, &t) == 0) {
        if (store_count(t, tb, &n))
            n = UINT64_MAX;
        store_abort(t);
    }
    return n;
}

static bool pending(struct kvt *k)
{
    struct store_txn *t;
    bool p = false;
    if (store_begin(k->s, false, &t) == 0) {
        if (kv_compact_pending(t, &p))
            p = false;
        store_abort(t);
    }
    return p;
}

static void test_compact_basics(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    CHECK_OK(kvt_put(&k, "a", "1", 0));     /* 2 */
    CHECK_OK(kvt_put(&k, "a", "2", 0));     /* 3 */
    CHECK_OK(kvt_put(&k, "b", "1", 0));     /* 4 */
    CHECK_OK(kvt_del(&k, "b", NULL, NULL)); /* 5 */
    CHECK_OK(kvt_put(&k, "c", "1", 0));     /* 6 */
    CHECK_OK(kvt_put(&k, "a", "3", 0));     /* 7 */
    CHECK_ERR(kvt_compact(&k, 8), ASPEN_E_FUTURE_REV);
    CHECK_OK(kvt_compact(&k, 5));
    CHECK_EQ(kvt_rev(&k), 7); /* compaction is not a keyspace change */
    CHECK_ERR(kvt_compact(&k, 5), ASPEN_E_COMPACTED);
    CHECK_ERR(kvt_compact(&k, 4), ASPEN_E_COMPACTED);
    CHECK(!pending(&k));
    /* kept: a@3 (newest <= 5), c@6, a@7; gone: a@2, b@4, the tombstone b@5 */
    CHECK_EQ(table_count(&k, STORE_T_KV_REV), 3);
    CHECK_EQ(table_count(&k, STORE_T_KV_INDEX), 3);
    struct kv_range_result r;
    CHECK_ERR(kvt_get(&k, "a", "z", 4, &r), ASPEN_E_COMPACTED);
    CHECK_OK(kvt_get(&k, "a", "z", 5, &r));
    CHECK_EQ(r.count, 1);
    CHECK(kv_eq_str(&r.kvs[0], "a", "2"));
    CHECK_OK(kvt_get(&k, "a", "z", 6, &r));
    CHECK_EQ(r.count, 2);
    CHECK_OK(kvt_compact(&k, 7));
    CHECK_EQ(table_count(&k, STORE_T_KV_REV), 2);
    CHECK_OK(kvt_get(&k, "a", "z", 7, &r));
    CHECK_EQ(r.count, 2);
    CHECK(kv_eq_str(&r.kvs[0], "a", "3"));
    CHECK_EQ(r.kvs[0].version, 3);
    CHECK_EQ(r.kvs[0].create_revision, 2);
    kvt_close(&k);
}

/* Builds the same history in a store; many keys change in one revision (a range
 * delete) so a small step must stop inside a revision. */
static int build_history(struct kvt *k)
{
    int rc = 0;
    char key[8];
    for (int round = 0; round < 3 && !rc; round++)
        for (int i = 0; i < 10 && !rc; i++) {
            snprintf(key, sizeof(key), "k%02d", i);
            rc = kvt_put(k, key, round == 2 ? "last" : "old", 0);
        }
    if (!rc)
        rc = kvt_del(k, "k00", "k05", NULL); /* 5 tombstones at one revision */
    if (!rc)
        rc = kvt_put(k, "k07", "new", 0);
    return rc;
}

static void test_compact_steps(void)
{
    struct kvt a, b;
    CHECK_OK(kvt_open(&a));
    CHECK_OK(kvt_open(&b));
    CHECK_OK(build_history(&a));
    CHECK_OK(build_history(&b));
    int64_t target = kvt_rev(&a) - 1; /* the delete's revision */
    CHECK_OK(kvt_compact(&a, target));
    CHECK(!pending(&a));
    /* b: the same compaction by hand in steps of 3 records */
    struct store_txn *t;
    CHECK_OK(store_begin(b.s, true, &t));
    CHECK_OK(kv_meta_put_i64(t, KV_META_COMPACTED, target));
    uint8_t st[20] = {0};
    be64_store(st, (uint64_t)target);
    be64_store(st + 8, 1);
    CHECK_OK(store_put(t, STORE_T_META, S(KV_META_COMPACT), slice_make(st, 20)));
    CHECK_OK(store_commit(t, true));
    int steps = 0;
    uint64_t total = table_count(&b, STORE_T_KV_REV);
    while (pending(&b)) {
        CHECK(steps < 100);
        CHECK_OK(store_begin(b.s, true, &t));
        CHECK_OK(kv_compact_step(t, 3));
        CHECK_OK(store_commit(t, true));
        steps++;
        /* reads at target are unaffected at every step */
        struct kv_range_result ra, rb;
        CHECK_OK(kvt_get(&a, "k", "l", target, &ra));
        CHECK_OK(kvt_get(&b, "k", "l", target, &rb));
        CHECK_EQ(ra.count, rb.count);
        for (size_t i = 0; i < ra.n_kvs; i++)
            CHECK(slice_eq(ra.kvs[i].value, rb.kvs[i].value));
    }
    CHECK(steps >= (int)(total / 3)); /* a step examined at most 3 */
    CHECK_EQ(table_count(&b, STORE_T_KV_REV), table_count(&a, STORE_T_KV_REV));
    CHECK_EQ(table_count(&b, STORE_T_KV_INDEX), table_count(&a, STORE_T_KV_INDEX));
    CHECK_EQ(table_count(&a, STORE_T_KV_REV), 6); /* k05..k09 and k07@new */
    /* COMPACT_STEP with nothing pending is a no-op */
    struct kv_cmd c = {.kind = KV_CMD_COMPACT_STEP};
    CHECK_OK(kvt_apply(&a, &c, NULL));
    CHECK_EQ(table_count(&a, STORE_T_KV_REV), 6);
    kvt_close(&a);
    kvt_close(&b);
}

/* ---------------------------------------------------------------------------------------
 * Leases
 * ------------------------------------------------------------------------------------- */

static int lease_keys(struct kvt *k, int64_t id, struct slice **keys, size_t *n)
{
    struct store_txn *t;
    int rc = store_begin(k->s, false, &t);
    if (rc)
        return rc;
    struct kv_lease l;
    rc = kv_lease_get(t, id, &l, &k->a, keys, n);
    if (!rc && (l.id != id || l.ttl_ms != 5000))
        rc = ASPEN_E_INTERNAL;
    store_abort(t);
    return rc;
}

static void test_leases(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    CHECK_OK(kvt_grant(&k, 1));
    CHECK_EQ(kvt_rev(&k), 1); /* a grant is no keyspace change */
    CHECK_ERR(kvt_grant(&k, 1), ASPEN_E_EXISTS);
    CHECK_ERR(kvt_put(&k, "a", "1", 2), ASPEN_E_LEASE_NOT_FOUND);
    CHECK_EQ(kvt_rev(&k), 1);
    CHECK_OK(kvt_grant(&k, 2));
    CHECK_OK(kvt_put(&k, "a", "1", 1));
    CHECK_OK(kvt_put(&k, "b", "1", 1));
    CHECK_OK(kvt_put(&k, "c", "1", 1));
    CHECK_OK(kvt_put(&k, "b", "2", 2)); /* moves b */
    struct slice *keys;
    size_t n;
    CHECK_OK(lease_keys(&k, 1, &keys, &n));
    CHECK_EQ(n, 2);
    CHECK(slice_eq(keys[0], S("a")) && slice_eq(keys[1], S("c")));
    CHECK_OK(lease_keys(&k, 2, &keys, &n));
    CHECK_EQ(n, 1);
    CHECK_OK(kvt_put(&k, "c", "2", 0)); /* lease 0 detaches */
    CHECK_OK(lease_keys(&k, 1, &keys, &n));
    CHECK_EQ(n, 1);
    /* ignore_lease keeps it */
    struct kv_cmd c = {.kind = KV_CMD_PUT};
    c.u.put = (struct kv_put_req){.key = S("a"), .value = S("9"), .ignore_lease = true};
    CHECK_OK(kvt_apply(&k, &c, NULL));
    struct kv_range_result r;
    CHECK_OK(kvt_get(&k, "a", NULL, 0, &r));
    CHECK_EQ(r.kvs[0].lease, 1);
    /* deleting a key detaches it */
    CHECK_OK(kvt_put(&k, "d", "1", 1));
    CHECK_OK(kvt_del(&k, "d", NULL, NULL));
    CHECK_OK(lease_keys(&k, 1, &keys, &n));
    CHECK_EQ(n, 1);
    /* revoke: every attached key in one revision */
    CHECK_OK(kvt_put(&k, "e", "1", 1));
    int64_t rev = kvt_rev(&k);
    CHECK_OK(kvt_revoke(&k, 1));
    CHECK_EQ(kvt_rev(&k), rev + 1);
    CHECK_EQ(k.ev.n, 2);
    CHECK_EQ(k.ev.ev[0].type, KV_EVENT_DELETE);
    CHECK(kv_eq_str(&k.ev.ev[0].prev, "a", "9"));
    CHECK_OK(kvt_get(&k, "a", "z", 0, &r));
    CHECK_EQ(r.count, 2); /* b, c */
    CHECK_ERR(lease_keys(&k, 1, &keys, &n), ASPEN_E_LEASE_NOT_FOUND);
    CHECK_ERR(kvt_revoke(&k, 1), ASPEN_E_LEASE_NOT_FOUND);
    /* revoking a lease without keys does not move the revision */
    CHECK_OK(kvt_grant(&k, 3));
    rev = kvt_rev(&k);
    CHECK_OK(kvt_revoke(&k, 3));
    CHECK_EQ(kvt_rev(&k), rev);
    CHECK_OK(kvt_grant(&k, 9));
    struct store_txn *t;
    CHECK_OK(store_begin(k.s, false, &t));
    struct kv_lease *ls;
    CHECK_OK(kv_lease_list(t, &k.a, &ls, &n));
    store_abort(t);
    CHECK_EQ(n, 2);
    CHECK_EQ(ls[0].id, 2);
    CHECK_EQ(ls[1].id, 9);
    CHECK_EQ(table_count(&k, STORE_T_LEASE_KEY), 1);
    kvt_close(&k);
}

/* ---------------------------------------------------------------------------------------
 * History, digest
 * ------------------------------------------------------------------------------------- */

static int history(struct kvt *k, const char *key, const char *end, int64_t from, int64_t to,
                   size_t max, int64_t *next)
{
    struct store_txn *t;
    int rc = store_begin(k->s, false, &t);
    if (rc)
        return rc;
    k->ev = (struct kv_events){.arena = &k->a};
    rc = kv_history(t, S(key), end ? S(end) : slice_make(NULL, 0), from, to, true, max, &k->ev,
                    next);
    store_abort(t);
    return rc;
}

static void test_history(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    CHECK_OK(kvt_put(&k, "a", "1", 0));    /* 2 */
    CHECK_OK(kvt_put(&k, "b", "1", 0));    /* 3 */
    CHECK_OK(kvt_put(&k, "a", "2", 0));    /* 4 */
    CHECK_OK(kvt_del(&k, "a", "c", NULL)); /* 5: two events */
    CHECK_OK(kvt_put(&k, "x", "1", 0));    /* 6 */
    int64_t next;
    CHECK_OK(history(&k, "a", "c", 1, 0, 100, &next));
    CHECK_EQ(next, 7);
    CHECK_EQ(k.ev.n, 5);
    CHECK_EQ(k.ev.ev[2].kv.mod_revision, 4);
    CHECK(k.ev.ev[2].has_prev);
    CHECK(kv_eq_str(&k.ev.ev[2].prev, "a", "1"));
    CHECK(!k.ev.ev[0].has_prev);
    CHECK_EQ(k.ev.ev[3].type, KV_EVENT_DELETE);
    CHECK(kv_eq_str(&k.ev.ev[3].prev, "a", "2"));
    CHECK(kv_eq_str(&k.ev.ev[4].prev, "b", "1"));
    /* max: a revision is never split */
    CHECK_OK(history(&k, "a", "z", 4, 0, 2, &next));
    CHECK_EQ(k.ev.n, 3);
    CHECK_EQ(next, 6);
    CHECK_OK(history(&k, "a", "z", 2, 3, 1, &next));
    CHECK_EQ(k.ev.n, 1);
    CHECK_EQ(next, 3);
    CHECK_OK(history(&k, "x", NULL, 1, 0, 10, &next));
    CHECK_EQ(k.ev.n, 1);
    CHECK_OK(kvt_compact(&k, 4));
    CHECK_ERR(history(&k, "a", "c", 3, 0, 10, &next), ASPEN_E_COMPACTED);
    CHECK_OK(history(&k, "a", "c", 4, 0, 10, &next)); /* == compacted is allowed */
    CHECK_EQ(k.ev.n, 3);
    kvt_close(&k);
}

static int ops_for_digest(struct kvt *k, bool variant)
{
    int rc = kvt_grant(k, 4);
    if (!rc)
        rc = kvt_put(k, "a", "1", 4);
    if (!rc)
        rc = kvt_put(k, "b", variant ? "X" : "1", 0);
    if (!rc)
        rc = kvt_del(k, "a", NULL, NULL);
    if (!rc)
        rc = kvt_compact(k, 3);
    return rc;
}

static void test_digest(void)
{
    struct kvt a, b, c;
    CHECK_OK(kvt_open(&a));
    CHECK_OK(kvt_open(&b));
    CHECK_OK(kvt_open(&c));
    uint8_t da[32], db[32], dc[32];
    CHECK_OK(kvt_digest(&a, da));
    CHECK_OK(kvt_digest(&b, db));
    CHECK_MEM_EQ(da, db, 32);
    CHECK_OK(ops_for_digest(&a, false));
    CHECK_OK(ops_for_digest(&b, false));
    CHECK_OK(ops_for_digest(&c, true));
    CHECK_OK(kvt_digest(&a, da));
    CHECK_OK(kvt_digest(&b, db));
    CHECK_OK(kvt_digest(&c, dc));
    CHECK_MEM_EQ(da, db, 32);
    CHECK(memcmp(da, dc, 32) != 0);
    /* a refused command still moves the applied index: the digest sees it */
    CHECK_ERR(kvt_revoke(&a, 77), ASPEN_E_LEASE_NOT_FOUND);
    CHECK_OK(kvt_digest(&a, da));
    CHECK(memcmp(da, db, 32) != 0);
    kvt_close(&a);
    kvt_close(&b);
    kvt_close(&c);
}

/* ---------------------------------------------------------------------------------------
 * Randomized check against a reference model
 * ------------------------------------------------------------------------------------- */

#define M_KEYS    10
#define M_OPS     400
#define M_MAX_OPS 4000 /* the model's capacity: ASPEN_TEST_SCALE stops here */

struct m_ver {
    int64_t rev, create, version, lease;
    bool tomb;
    uint8_t val;
};

struct model {
    struct slice keys[M_KEYS]; /* sorted */
    struct m_ver vers[M_KEYS][M_MAX_OPS + 2];
    size_t n_vers[M_KEYS];
    int64_t rev, compacted;
    bool lease_live[4];
};

static const struct m_ver *m_at(const struct model *m, int key, int64_t rev)
{
    const struct m_ver *found = NULL;
    for (size_t i = 0; i < m->n_vers[key]; i++)
        if (m->vers[key][i].rev <= rev)
            found = &m->vers[key][i];
    return found && !found->tomb ? found : NULL;
}

static void m_put(struct model *m, int key, uint8_t val, int64_t lease)
{
    const struct m_ver *cur = m_at(m, key, m->rev);
    struct m_ver v = {.rev = m->rev + 1,
                      .create = cur ? cur->create : m->rev + 1,
                      .version = cur ? cur->version + 1 : 1,
                      .lease = lease,
                      .val = val};
    m->vers[key][m->n_vers[key]++] = v;
}

static bool m_del(struct model *m, int key)
{
    if (!m_at(m, key, m->rev))
        return false;
    m->vers[key][m->n_vers[key]++] = (struct m_ver){.rev = m->rev + 1, .tomb = true};
    return true;
}

static bool check_model(struct kvt *k, const struct model *m, int64_t rev)
{
    struct kv_range_req q = {
        .key = slice_make("\0", 1), .range_end = slice_make("\0", 1), .revision = rev};
    struct kv_range_result r;
    if (kvt_range(k, &q, &r, NULL))
        return false;
    size_t j = 0;
    for (int i = 0; i < M_KEYS; i++) {
        const struct m_ver *v = m_at(m, i, rev);
        if (!v)
            continue;
        if (j >= r.n_kvs)
            return false;
        const struct kv_kv *kv = &r.kvs[j++];
        if (!slice_eq(kv->key, m->keys[i]) || kv->mod_revision != v->rev ||
            kv->create_revision != v->create || kv->version != v->version ||
            kv->lease != v->lease || kv->value.len != 1 || kv->value.ptr[0] != v->val)
            return false;
    }
    return j == r.n_kvs && r.count == (int64_t)j;
}

static void test_random_model(void)
{
    struct rng r;
    rng_seed(&r, test_seed() + 2);
    static struct model m;
    memset(&m, 0, sizeof(m));
    static uint8_t longkeys[3][600];
    const char *shorts[] = {"a", "a\0", "ab", "b", "\xff", "\xff\xff", "m"};
    for (int i = 0; i < 7; i++)
        m.keys[i] = slice_make(shorts[i], i == 1 ? 2 : strlen(shorts[i]));
    for (int i = 0; i < 3; i++) {
        memset(longkeys[i], 'L', sizeof(longkeys[i]));
        longkeys[i][590] = (uint8_t)('0' + i * 3 % 5);
        m.keys[7 + i] = slice_make(longkeys[i], 500 + 30 * (size_t)i);
    }
    qsort(m.keys, M_KEYS, sizeof(m.keys[0]), cmp_slices);
    m.rev = 1;
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    uint64_t n_ops = test_iters(M_OPS) < M_MAX_OPS ? test_iters(M_OPS) : M_MAX_OPS;
    for (int op = 0; op < (int)n_ops; op++) {
        int key = (int)rng_below(&r, M_KEYS);
        uint8_t val = (uint8_t)rng_below(&r, 256);
        struct kv_cmd c = {0};
        int want = 0;
        bool bump = false;
        switch (rng_below(&r, 8)) {
        case 0:
        case 1:
        case 2: { /* put, maybe with a lease */
            int64_t lease = rng_below(&r, 3) == 0 ? (int64_t)rng_below(&r, 4) : 0;
            c.kind = KV_CMD_PUT;
            c.u.put = (struct kv_put_req){
                .key = m.keys[key], .value = slice_make(&val, 1), .lease = lease};
            if (lease && !m.lease_live[lease]) {
                want = ASPEN_E_LEASE_NOT_FOUND;
            } else {
                m_put(&m, key, val, lease);
                bump = true;
            }
            break;
        }
        case 3: { /* range delete [key, key2) */
            int key2 = (int)rng_below(&r, M_KEYS);
            c.kind = KV_CMD_DELETE;
            c.u.del = (struct kv_delete_req){.key = m.keys[key], .range_end = m.keys[key2]};
            for (int i = key; i < key2; i++)
                bump |= m_del(&m, i);
            break;
        }
        case 4: { /* txn: if key exists, delete it and put key2; else put key */
            int key2 = (int)rng_below(&r, M_KEYS);
            static struct kv_compare cmp;
            static struct kv_op ok[2], fail[1];
            cmp = (struct kv_compare){
                .result = KV_CMP_GREATER, .target = KV_CMP_VERSION, .key = m.keys[key]};
            ok[0] = (struct kv_op){.kind = KV_OP_DELETE};
            ok[0].u.del.key = m.keys[key];
            ok[1] = (struct kv_op){.kind = KV_OP_PUT};
            ok[1].u.put = (struct kv_put_req){.key = m.keys[key2], .value = slice_make(&val, 1)};
            fail[0] = (struct kv_op){.kind = KV_OP_PUT};
            fail[0].u.put = (struct kv_put_req){.key = m.keys[key], .value = slice_make(&val, 1)};
            c.kind = KV_CMD_TXN;
            c.u.txn = (struct kv_txn_req){.compares = &cmp,
                                          .n_compares = 1,
                                          .success = ok,
                                          .n_success = 2,
                                          .failure = fail,
                                          .n_failure = 1};
            if (m_at(&m, key, m.rev)) {
                if (key2 == key) {
                    want = ASPEN_E_DUPLICATE_KEY;
                } else {
                    m_del(&m, key);
                    m_put(&m, key2, val, 0);
                    bump = true;
                }
            } else {
                m_put(&m, key, val, 0);
                bump = true;
            }
            break;
        }
        case 5: { /* compact somewhere in (compacted, rev] */
            int64_t target =
                m.compacted + 1 + (int64_t)rng_below(&r, (uint64_t)(m.rev - m.compacted) + 1);
            c.kind = KV_CMD_COMPACT;
            c.u.compact.revision = target;
            if (target > m.rev)
                want = ASPEN_E_FUTURE_REV;
            else
                m.compacted = target;
            break;
        }
        case 6: { /* grant */
            int64_t id = 1 + (int64_t)rng_below(&r, 3);
            c.kind = KV_CMD_LEASE_GRANT;
            c.u.lease_grant.id = id;
            c.u.lease_grant.ttl_ms = 5000;
            if (m.lease_live[id])
                want = ASPEN_E_EXISTS;
            m.lease_live[id] = true;
            break;
        }
        default: { /* revoke */
            int64_t id = 1 + (int64_t)rng_below(&r, 3);
            c.kind = KV_CMD_LEASE_REVOKE;
            c.u.lease_revoke.id = id;
            if (!m.lease_live[id]) {
                want = ASPEN_E_LEASE_NOT_FOUND;
                break;
            }
            m.lease_live[id] = false;
            for (int i = 0; i < M_KEYS; i++) {
                const struct m_ver *v = m_at(&m, i, m.rev);
                if (v && v->lease == id)
                    bump |= m_del(&m, i);
            }
            break;
        }
        }
        struct kv_result res;
        int rc = kvt_apply(&k, &c, &res);
        CHECK_MSG(rc == want, "op %d kind %u: got %s want %s", op, c.kind, aspen_err_name(rc),
                  aspen_err_name(want));
        if (bump)
            m.rev++;
        CHECK_EQ(kvt_rev(&k), m.rev);
        /* check the current revision and a random readable one */
        CHECK_MSG(check_model(&k, &m, m.rev), "op %d: state at %lld differs", op, (long long)m.rev);
        int64_t lo = m.compacted > 1 ? m.compacted : 1;
        int64_t at = lo + (int64_t)rng_below(&r, (uint64_t)(m.rev - lo) + 1);
        CHECK_MSG(check_model(&k, &m, at), "op %d: state at %lld differs", op, (long long)at);
        k.ev = (struct kv_events){.arena = &k.a};
        arena_reset(&k.a);
    }
    kvt_close(&k);
}

/* Limits from the constants header: a range response is cut at
 * ASPEN_MAX_RANGE_RESPONSE_BYTES with `more` (count stays the total), and a lease grant
 * past ASPEN_MAX_LEASES is refused as a result, the entry still applied. */
static void test_limits(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    size_t vlen = ASPEN_MAX_VALUE_BYTES;
    uint8_t *big = mem_alloc(vlen);
    CHECK(big != NULL);
    if (!big)
        return;
    memset(big, 'v', vlen);
    size_t per = 2 + vlen + ASPEN_RANGE_KV_OVERHEAD_BYTES;
    size_t fit = ASPEN_MAX_RANGE_RESPONSE_BYTES / per, total = fit + 3;
    for (size_t i = 0; i < total; i++) {
        char key[3] = {'b', (char)('a' + i), 0};
        CHECK_OK(kvt_put_bin(&k, slice_make(key, 2), slice_make(big, vlen)));
    }
    struct kv_range_req q = {.key = S("b"), .range_end = S("c")};
    struct kv_range_result res;
    CHECK_OK(kvt_range(&k, &q, &res, NULL));
    CHECK_EQ(res.n_kvs, fit);
    CHECK(res.more);
    CHECK_EQ(res.count, total);
    q.keys_only = true; /* without values everything fits */
    CHECK_OK(kvt_range(&k, &q, &res, NULL));
    CHECK_EQ(res.n_kvs, total);
    CHECK(!res.more);
    mem_free(big);
    arena_reset(&k.a);

    /* Fill the lease table to the limit directly, then grant one more. */
    struct store_txn *t;
    CHECK_OK(store_begin(k.s, true, &t));
    for (uint64_t id = 1; id <= ASPEN_MAX_LEASES; id++) {
        uint8_t key[8], v[KV_LEASE_VAL_LEN];
        be64_store(key, id);
        v[0] = KV_LEASE_FORMAT;
        be64_store(v + 1, 5000);
        be64_store(v + 9, 0); /* no keys attached */
        CHECK_OK(store_put(t, STORE_T_LEASE, slice_make(key, 8), slice_make(v, sizeof(v))));
    }
    CHECK_OK(store_commit(t, true));
    uint64_t before = k.index;
    CHECK_ERR(kvt_grant(&k, INT64_C(1) << 40), ASPEN_E_LIMIT);
    CHECK_EQ_U64(k.index, before + 1); /* refused, but applied */
    CHECK_OK(kvt_revoke(&k, 7));
    CHECK_OK(kvt_grant(&k, INT64_C(1) << 40)); /* room again */

    /* Keys per lease: the count follows attach and detach... */
    int64_t lid = INT64_C(1) << 41;
    CHECK_OK(kvt_revoke(&k, 8)); /* the lease table is full again */
    CHECK_OK(kvt_grant(&k, lid));
    CHECK_OK(kvt_put(&k, "la", "1", lid));
    CHECK_OK(kvt_put(&k, "lb", "1", lid));
    CHECK_OK(kvt_put(&k, "lb", "2", lid)); /* already attached: no change */
    CHECK_OK(kvt_put(&k, "lc", "1", lid));
    CHECK_OK(kvt_put(&k, "lc", "2", 0)); /* detached by a put without the lease */
    CHECK_OK(kvt_del(&k, "la", NULL, NULL));
    struct kv_lease l;
    CHECK_OK(store_begin(k.s, false, &t));
    CHECK_OK(kv_lease_get(t, lid, &l, NULL, NULL, NULL));
    store_abort(t);
    CHECK_EQ(l.n_keys, 1);
    /* ...and a lease at the limit takes no new key, but keeps its own. */
    CHECK_OK(store_begin(k.s, true, &t));
    uint8_t lk[8], lv[KV_LEASE_VAL_LEN];
    be64_store(lk, (uint64_t)lid);
    lv[0] = KV_LEASE_FORMAT;
    be64_store(lv + 1, 5000);
    be64_store(lv + 9, ASPEN_MAX_KEYS_PER_LEASE);
    CHECK_OK(store_put(t, STORE_T_LEASE, slice_make(lk, 8), slice_make(lv, sizeof(lv))));
    CHECK_OK(store_commit(t, true));
    CHECK_ERR(kvt_put(&k, "ld", "1", lid), ASPEN_E_LIMIT);
    CHECK_OK(kvt_put(&k, "lb", "3", lid));
    struct kv_range_result res2;
    CHECK_OK(kvt_get(&k, "ld", NULL, 0, &res2));
    CHECK_EQ(res2.n_kvs, 0);
    kvt_close(&k);
}

static const struct test_case tests[] = {
    TEST(test_limits),         TEST(test_ik_order),
    TEST(test_scan_order),     TEST(test_binary_and_huge_keys),
    TEST(test_compact_basics), TEST(test_compact_steps),
    TEST(test_leases),         TEST(test_history),
    TEST(test_digest),         TEST(test_random_model),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("kv_more", tests);
}
