/*
 * The cluster registry (kv/cluster.h) on the memory backend: each of the five commands'
 * success and every refusal, where a refusal must leave the state exactly as a no-op entry
 * would (compared by kv_digest against a clone that applied NOOP instead) while the
 * applied index still moves; re-joins that consume nothing, single-use against reusable
 * credentials, expiry at the boundary, the bounded credential GC, the record limits with
 * the real constants, the revision never moving, records travelling through a snapshot
 * stream, and the command codec (round trips, every validation error both ways).
 *
 * With ASPEN_KV_CMD_CORPUS_DIR set, test_fuzz_seeds writes the registry commands' seeds of
 * the fuzzer's corpus (tests/fuzz/corpus/kv_cmd) into that directory.
 */
#include "kv_util.h"

#include "kv/snapshot.h"

#include <stdlib.h>

/* ---------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------- */

#define ADDR "10.0.0.1:2380"
#define URLS "http://10.0.0.1:2379,https://node.example:2379"

static struct kv_member member(raft_id id, uint8_t pk, const char *name)
{
    struct kv_member m;
    memset(&m, 0, sizeof(m));
    m.id = id;
    memset(m.pk, pk, sizeof(m.pk));
    m.name = S(name);
    m.peer_addr = S(ADDR);
    m.client_urls = S(URLS);
    return m;
}

/* Credential hashes whose key order is i's order. */
static void hash_of(uint32_t i, uint8_t out[KV_CLUSTER_HASH_BYTES])
{
    memset(out, 0xab, KV_CLUSTER_HASH_BYTES);
    be32_store(out, i);
}

static struct kv_cmd cmd_init(uint64_t id)
{
    struct kv_cmd c = {.kind = KV_CMD_CLUSTER_INIT};
    c.u.cluster_init.cluster_id = id;
    return c;
}

static struct kv_cmd cmd_set(const struct kv_member *m)
{
    struct kv_cmd c = {.kind = KV_CMD_MEMBER_SET};
    c.u.member_set = *m;
    return c;
}

static struct kv_cmd cmd_remove(raft_id id)
{
    struct kv_cmd c = {.kind = KV_CMD_MEMBER_REMOVE};
    c.u.member_remove.id = id;
    return c;
}

static struct kv_cmd cmd_cred(uint32_t h, int64_t expires_ms, bool single_use, int64_t now_ms)
{
    struct kv_cmd c = {.kind = KV_CMD_CRED_ADD};
    hash_of(h, c.u.cred_add.cred.hash);
    c.u.cred_add.cred.expires_ms = expires_ms;
    c.u.cred_add.cred.single_use = single_use;
    c.u.cred_add.cred.created_ms = now_ms;
    c.u.cred_add.now_ms = now_ms;
    return c;
}

static struct kv_cmd cmd_join(uint32_t h, int64_t now_ms, const struct kv_member *m)
{
    struct kv_cmd c = {.kind = KV_CMD_MEMBER_JOIN};
    hash_of(h, c.u.member_join.hash);
    c.u.member_join.now_ms = now_ms;
    c.u.member_join.member = *m;
    return c;
}

static int apply(struct kvt *k, struct kv_cmd c)
{
    return kvt_apply(k, &c, NULL);
}

/* Applies an entry with no results to store s at index. */
static int apply_to(struct store *s, uint64_t index, const struct kv_cmd *c)
{
    struct buf b;
    buf_init(&b, ASPEN_MAX_REQUEST_BYTES);
    int rc = kv_cmd_encode(c, &b);
    struct raft_entry e = {.term = 1,
                           .index = index,
                           .type = RAFT_ENTRY_NORMAL,
                           .len = (uint32_t)b.len,
                           .data = b.data};
    struct store_txn *t = NULL;
    if (!rc)
        rc = store_begin(s, true, &t);
    if (!rc) {
        rc = kv_apply(t, &e, NULL, NULL, NULL);
        if (rc)
            store_abort(t);
        else
            rc = store_commit(t, true);
    }
    buf_release(&b);
    return rc;
}

static int digest_of(struct store *s, uint8_t out[32])
{
    struct store_txn *t;
    int rc = store_begin(s, false, &t);
    if (rc)
        return rc;
    rc = kv_digest(t, out);
    store_abort(t);
    return rc;
}

static uint64_t applied_of(struct kvt *k)
{
    struct store_txn *t;
    raft_index index = 0;
    raft_term term;
    if (store_begin(k->s, false, &t) == 0) {
        if (kv_applied(t, &index, &term))
            index = 0;
        store_abort(t);
    }
    return index;
}

/* Applies c, which must be refused with `want`: the applied index moves, the revision does
 * not, and the state equals a clone's that applied a NOOP at the same index instead (the
 * digest covers kv.applied, so the clone is how "nothing else changed" is compared).
 * Returns 0, or the line of the first failed expectation. */
static int refused(struct kvt *k, struct kv_cmd c, int want)
{
    struct store *clone;
    if (store_mem_clone(k->s, &clone))
        return __LINE__;
    int line = 0;
    int64_t rev = kvt_rev(k);
    struct kv_cmd noop = {.kind = KV_CMD_NOOP};
    struct kv_result res;
    uint8_t da[32], db[32];
    if (apply_to(clone, k->index + 1, &noop))
        line = __LINE__;
    else if (kvt_apply(k, &c, &res) != want || res.rc != want || res.kind != c.kind)
        line = __LINE__;
    else if (res.revision != rev || kvt_rev(k) != rev)
        line = __LINE__;
    else if (applied_of(k) != k->index)
        line = __LINE__;
    else if (digest_of(k->s, da) || digest_of(clone, db) || memcmp(da, db, 32) != 0)
        line = __LINE__;
    store_close(clone);
    return line;
}

#define CHECK_REFUSED(k, c, want)                                                                  \
    do {                                                                                           \
        int line_ = refused((k), (c), (want));                                                     \
        CHECK_MSG(line_ == 0, "refusal %s: expectation at line %d failed", #want, line_);          \
    } while (0)

static int get_member(struct kvt *k, raft_id id, struct kv_member *out)
{
    struct store_txn *t;
    int rc = store_begin(k->s, false, &t);
    if (rc)
        return rc;
    rc = kv_member_get(t, id, &k->a, out);
    store_abort(t);
    return rc;
}

static int get_cred(struct kvt *k, uint32_t h, struct kv_credential *out)
{
    uint8_t hash[KV_CLUSTER_HASH_BYTES];
    hash_of(h, hash);
    struct store_txn *t;
    int rc = store_begin(k->s, false, &t);
    if (rc)
        return rc;
    rc = kv_credential_get(t, hash, out);
    store_abort(t);
    return rc;
}

static uint64_t cred_count(struct kvt *k)
{
    struct store_txn *t;
    uint64_t n = UINT64_MAX;
    if (store_begin(k->s, false, &t) == 0) {
        if (kv_credential_count(t, &n))
            n = UINT64_MAX;
        store_abort(t);
    }
    return n;
}

static bool member_eq(const struct kv_member *a, const struct kv_member *b)
{
    return a->id == b->id && memcmp(a->pk, b->pk, sizeof(a->pk)) == 0 &&
           slice_eq(a->name, b->name) && slice_eq(a->peer_addr, b->peer_addr) &&
           slice_eq(a->client_urls, b->client_urls);
}

/* ---------------------------------------------------------------------------------------
 * Commands
 * ------------------------------------------------------------------------------------- */

static void test_cluster_init(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    struct store_txn *t;
    uint64_t id = 0;
    CHECK_OK(store_begin(k.s, false, &t));
    CHECK_ERR(kv_cluster_id(t, &id), ASPEN_E_NOT_FOUND);
    store_abort(t);

    /* the top bit set: the id is a full u64, not an int64 */
    const uint64_t cid = UINT64_C(0xfedcba9876543210);
    struct kv_cmd c = cmd_init(cid);
    struct kv_result res;
    CHECK_OK(kvt_apply(&k, &c, &res));
    CHECK_EQ(res.kind, KV_CMD_CLUSTER_INIT);
    CHECK_EQ(res.revision, 1);
    CHECK_EQ(kvt_rev(&k), 1);
    CHECK_EQ(applied_of(&k), 1);
    CHECK_OK(store_begin(k.s, false, &t));
    CHECK_OK(kv_cluster_id(t, &id));
    store_abort(t);
    CHECK_EQ_U64(id, cid);

    /* once only, even with the same id */
    CHECK_REFUSED(&k, cmd_init(cid), ASPEN_E_EXISTS);
    CHECK_REFUSED(&k, cmd_init(7), ASPEN_E_EXISTS);
    CHECK_OK(store_begin(k.s, false, &t));
    CHECK_OK(kv_cluster_id(t, &id));
    store_abort(t);
    CHECK_EQ_U64(id, cid);
    kvt_close(&k);
}

static void test_member_set(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    CHECK_OK(kvt_put(&k, "a", "1", 0)); /* revision 2 */
    struct kv_member a = member(UINT64_C(0x8000000000000001), 0x11, "alpha");
    struct kv_member b = member(5, 0x22, "bravo");
    b.client_urls = slice_make(NULL, 0); /* no client URLs: allowed */
    CHECK_OK(apply(&k, cmd_set(&a)));
    CHECK_OK(apply(&k, cmd_set(&b)));
    CHECK_EQ(kvt_rev(&k), 2);

    struct kv_member got;
    CHECK_OK(get_member(&k, a.id, &got));
    CHECK(member_eq(&got, &a));
    CHECK_OK(get_member(&k, b.id, &got));
    CHECK(member_eq(&got, &b));
    CHECK_ERR(get_member(&k, 6, &got), ASPEN_E_NOT_FOUND);

    /* update in place: same key, other fields */
    struct kv_member a2 = a;
    a2.name = S("alpha-2");
    a2.peer_addr = S("[::1]:9999");
    CHECK_OK(apply(&k, cmd_set(&a2)));
    CHECK_OK(get_member(&k, a.id, &got));
    CHECK(member_eq(&got, &a2));

    /* the same id with another key is another node */
    struct kv_member impostor = member(a.id, 0x99, "alpha");
    CHECK_REFUSED(&k, cmd_set(&impostor), ASPEN_E_EXISTS);

    /* listed in id order (5 before 2^63 + 1) */
    struct store_txn *t;
    struct kv_member *list;
    size_t n;
    CHECK_OK(store_begin(k.s, false, &t));
    CHECK_OK(kv_member_list(t, &k.a, &list, &n));
    store_abort(t);
    CHECK_EQ(n, 2);
    CHECK(member_eq(&list[0], &b));
    CHECK(member_eq(&list[1], &a2));
    CHECK_EQ(kvt_rev(&k), 2);
    kvt_close(&k);
}

static void test_member_remove(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    struct kv_member a = member(1, 1, "a"), b = member(2, 2, "b");
    CHECK_OK(apply(&k, cmd_set(&a)));
    CHECK_OK(apply(&k, cmd_set(&b)));
    CHECK_REFUSED(&k, cmd_remove(3), ASPEN_E_NOT_FOUND);
    CHECK_OK(apply(&k, cmd_remove(1)));
    struct kv_member got;
    CHECK_ERR(get_member(&k, 1, &got), ASPEN_E_NOT_FOUND);
    CHECK_OK(get_member(&k, 2, &got));
    CHECK_REFUSED(&k, cmd_remove(1), ASPEN_E_NOT_FOUND);
    CHECK_EQ(kvt_rev(&k), 1);

    struct store_txn *t;
    struct kv_member *list;
    size_t n;
    CHECK_OK(store_begin(k.s, false, &t));
    CHECK_OK(kv_member_list(t, &k.a, &list, &n));
    store_abort(t);
    CHECK_EQ(n, 1);
    CHECK_EQ_U64(list[0].id, 2);
    CHECK_OK(apply(&k, cmd_remove(2)));
    CHECK_OK(store_begin(k.s, false, &t));
    CHECK_OK(kv_member_list(t, &k.a, &list, &n));
    store_abort(t);
    CHECK_EQ(n, 0);
    kvt_close(&k);
}

static void test_member_limit(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    char name[32];
    for (uint32_t i = 1; i <= ASPEN_MAX_MEMBER_RECORDS; i++) {
        snprintf(name, sizeof(name), "n%u", i);
        struct kv_member m = member(i, (uint8_t)i, name);
        CHECK_OK(apply(&k, cmd_set(&m)));
    }
    struct kv_member extra = member(ASPEN_MAX_MEMBER_RECORDS + 1, 0xee, "extra");
    CHECK_REFUSED(&k, cmd_set(&extra), ASPEN_E_LIMIT);
    /* an update is not a new record */
    struct kv_member upd = member(7, 7, "seven");
    CHECK_OK(apply(&k, cmd_set(&upd)));
    /* a join with a valid credential is refused too, and consumes nothing */
    CHECK_OK(apply(&k, cmd_cred(1, 0, true, 0)));
    CHECK_REFUSED(&k, cmd_join(1, 0, &extra), ASPEN_E_LIMIT);
    struct kv_credential cr;
    CHECK_OK(get_cred(&k, 1, &cr));
    /* room again after a remove */
    CHECK_OK(apply(&k, cmd_remove(3)));
    CHECK_OK(apply(&k, cmd_join(1, 0, &extra)));
    CHECK_ERR(get_cred(&k, 1, &cr), ASPEN_E_NOT_FOUND);
    CHECK_REFUSED(&k, cmd_set(&(struct kv_member){.id = 3, .name = S("x"), .peer_addr = S("y")}),
                  ASPEN_E_LIMIT);
    CHECK_EQ(kvt_rev(&k), 1);
    kvt_close(&k);
}

static void test_cred_add(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    CHECK_OK(apply(&k, cmd_cred(1, 5000, true, 1000)));
    CHECK_OK(apply(&k, cmd_cred(2, 0, false, 1000)));
    struct kv_credential c;
    CHECK_OK(get_cred(&k, 1, &c));
    uint8_t h[KV_CLUSTER_HASH_BYTES];
    hash_of(1, h);
    CHECK_MEM_EQ(c.hash, h, sizeof(h));
    CHECK_EQ(c.expires_ms, 5000);
    CHECK(c.single_use);
    CHECK_EQ(c.created_ms, 1000);
    CHECK_OK(get_cred(&k, 2, &c));
    CHECK_EQ(c.expires_ms, 0);
    CHECK(!c.single_use);
    CHECK_ERR(get_cred(&k, 3, &c), ASPEN_E_NOT_FOUND);
    CHECK_EQ_U64(cred_count(&k), 2);

    /* the same hash again: refused, whatever its other fields */
    CHECK_REFUSED(&k, cmd_cred(1, 9000, false, 2000), ASPEN_E_EXISTS);
    /* even once expired: a refused add does not GC either (it writes nothing) */
    CHECK_REFUSED(&k, cmd_cred(1, 0, false, 5000), ASPEN_E_EXISTS);
    CHECK_OK(get_cred(&k, 1, &c));
    CHECK_EQ(c.expires_ms, 5000);
    /* an accepted add at that time drops it */
    CHECK_OK(apply(&k, cmd_cred(3, 0, true, 5000)));
    CHECK_ERR(get_cred(&k, 1, &c), ASPEN_E_NOT_FOUND);
    CHECK_EQ_U64(cred_count(&k), 2);
    CHECK_EQ(kvt_rev(&k), 1);
    kvt_close(&k);
}

static void test_cred_gc_bound(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    const uint32_t n_expired = 2 * ASPEN_CREDENTIAL_GC_PER_ADD + 5;
    /* Interleaved in key order: expired-to-be (even), never-expiring (1 mod 4) and
     * later-expiring (3 mod 4) ones, so the GC must skip live credentials. */
    for (uint32_t i = 0; i < n_expired; i++) {
        CHECK_OK(apply(&k, cmd_cred(4 * i, 100, false, 0)));
        CHECK_OK(apply(&k, cmd_cred(4 * i + 1, 0, false, 0)));
        CHECK_OK(apply(&k, cmd_cred(4 * i + 3, 1000, true, 0)));
    }
    CHECK_EQ_U64(cred_count(&k), 3 * n_expired);
    /* before the expiry nothing is dropped */
    CHECK_OK(apply(&k, cmd_cred(1000000, 0, false, 99)));
    CHECK_EQ_U64(cred_count(&k), 3 * n_expired + 1);

    uint32_t left = n_expired, added = 1;
    struct kv_credential c;
    for (uint32_t round = 0; left > 0; round++) {
        CHECK(round < 10);
        CHECK_OK(apply(&k, cmd_cred(2000000 + round, 0, false, 100)));
        added++;
        uint32_t dropped = left < ASPEN_CREDENTIAL_GC_PER_ADD ? left : ASPEN_CREDENTIAL_GC_PER_ADD;
        left -= dropped;
        CHECK_EQ_U64(cred_count(&k), 2 * n_expired + left + added);
        /* the first ones in key order went */
        for (uint32_t i = 0; i < n_expired; i++) {
            int want = i < n_expired - left ? ASPEN_E_NOT_FOUND : 0;
            CHECK_ERR(get_cred(&k, 4 * i, &c), want);
        }
    }
    for (uint32_t i = 0; i < n_expired; i++) {
        CHECK_OK(get_cred(&k, 4 * i + 1, &c));
        CHECK_OK(get_cred(&k, 4 * i + 3, &c));
    }
    CHECK_EQ(kvt_rev(&k), 1);
    kvt_close(&k);
}

static void test_cred_limit(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    /* The first three in key order expire at 100; the rest never. */
    for (uint32_t i = 0; i < ASPEN_MAX_JOIN_CREDENTIALS; i++)
        CHECK_OK(apply(&k, cmd_cred(i, i < 3 ? 100 : 0, false, 0)));
    CHECK_EQ_U64(cred_count(&k), ASPEN_MAX_JOIN_CREDENTIALS);
    CHECK_REFUSED(&k, cmd_cred(5000, 0, false, 99), ASPEN_E_LIMIT);
    /* once three have expired, the GC makes room: the limit counts after the GC */
    CHECK_OK(apply(&k, cmd_cred(5000, 0, false, 100)));
    CHECK_EQ_U64(cred_count(&k), ASPEN_MAX_JOIN_CREDENTIALS - 2);
    CHECK_OK(apply(&k, cmd_cred(5001, 0, false, 100)));
    CHECK_OK(apply(&k, cmd_cred(5002, 0, false, 100)));
    CHECK_REFUSED(&k, cmd_cred(5003, 0, false, 100), ASPEN_E_LIMIT);
    CHECK_EQ_U64(cred_count(&k), ASPEN_MAX_JOIN_CREDENTIALS);
    CHECK_EQ(kvt_rev(&k), 1);
    kvt_close(&k);
}

static void test_join(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    CHECK_OK(kvt_put(&k, "a", "1", 0)); /* revision 2 */
    struct kv_member a = member(10, 0xa, "a"), b = member(11, 0xb, "b");
    struct kv_member c = member(12, 0xc, "c"), d = member(13, 0xd, "d");
    struct kv_credential cr, cr2;
    struct kv_member got;

    /* no such credential */
    CHECK_REFUSED(&k, cmd_join(1, 0, &a), ASPEN_E_PERMISSION);

    /* reusable: two nodes join with it, and it stays */
    CHECK_OK(apply(&k, cmd_cred(1, 0, false, 0)));
    CHECK_OK(get_cred(&k, 1, &cr));
    CHECK_OK(apply(&k, cmd_join(1, 10, &a)));
    CHECK_OK(apply(&k, cmd_join(1, 20, &b)));
    CHECK_OK(get_cred(&k, 1, &cr2));
    CHECK_MEM_EQ(&cr, &cr2, sizeof(cr));
    CHECK_OK(get_member(&k, a.id, &got));
    CHECK(member_eq(&got, &a));
    CHECK_OK(get_member(&k, b.id, &got));
    CHECK(member_eq(&got, &b));

    /* single use: consumed by the first join */
    CHECK_OK(apply(&k, cmd_cred(2, 0, true, 0)));
    CHECK_OK(apply(&k, cmd_join(2, 30, &c)));
    CHECK_ERR(get_cred(&k, 2, &cr), ASPEN_E_NOT_FOUND);
    CHECK_REFUSED(&k, cmd_join(2, 30, &d), ASPEN_E_PERMISSION);

    /* re-join of c (same id and key): succeeds with a consumed credential, with an unknown
     * one, and with a live single-use one, which it does not consume; the record takes the
     * request's fields */
    struct kv_member c2 = c;
    c2.name = S("c-renamed");
    c2.client_urls = slice_make(NULL, 0);
    CHECK_OK(apply(&k, cmd_join(2, 40, &c)));
    CHECK_OK(apply(&k, cmd_join(77, 40, &c)));
    CHECK_OK(apply(&k, cmd_cred(3, 0, true, 0)));
    CHECK_OK(apply(&k, cmd_join(3, 40, &c2)));
    CHECK_OK(get_cred(&k, 3, &cr));
    CHECK_OK(get_member(&k, c.id, &got));
    CHECK(member_eq(&got, &c2));

    /* the same id with another key */
    struct kv_member impostor = member(c.id, 0xff, "c");
    CHECK_REFUSED(&k, cmd_join(3, 40, &impostor), ASPEN_E_EXISTS);
    CHECK_OK(get_cred(&k, 3, &cr));

    /* expiry: usable while now < expires_ms, refused from expires_ms on */
    CHECK_OK(apply(&k, cmd_cred(4, 1000, false, 0)));
    CHECK_OK(apply(&k, cmd_join(4, 999, &d)));
    struct kv_member e = member(14, 0xe, "e");
    CHECK_REFUSED(&k, cmd_join(4, 1000, &e), ASPEN_E_PERMISSION);
    CHECK_REFUSED(&k, cmd_join(4, 5000, &e), ASPEN_E_PERMISSION);
    CHECK_OK(get_cred(&k, 4, &cr)); /* a refused join GCs nothing */
    /* a single-use credential that expired is not consumed by the refusal */
    CHECK_OK(apply(&k, cmd_cred(5, 1000, true, 0)));
    CHECK_REFUSED(&k, cmd_join(5, 1000, &e), ASPEN_E_PERMISSION);
    CHECK_OK(get_cred(&k, 5, &cr));

    CHECK_EQ(kvt_rev(&k), 2);
    kvt_close(&k);
}

/* A damaged record is a storage error, not a refusal: apply fails and the caller aborts. */
static void test_corrupt_records(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    struct kv_member a = member(1, 1, "a");
    CHECK_OK(apply(&k, cmd_set(&a)));
    struct store_txn *t;
    uint8_t key[9] = {'m'};
    be64_store(key + 1, 1);
    struct slice v;
    uint8_t bad[2048];
    size_t n;
    CHECK_OK(store_begin(k.s, true, &t));
    CHECK_OK(store_get(t, STORE_T_CLUSTER, slice_make(key, 9), &v));
    n = v.len;
    memcpy(bad, v.ptr, n);
    bad[40] = ' '; /* inside the peer address: a space is not allowed */
    CHECK_OK(store_put(t, STORE_T_CLUSTER, slice_make(key, 9), slice_make(bad, n)));
    CHECK_OK(store_commit(t, true));
    struct kv_member got;
    CHECK_ERR(get_member(&k, 1, &got), ASPEN_E_CORRUPT);
    CHECK_ERR(apply(&k, cmd_set(&a)), ASPEN_E_CORRUPT);

    /* a credential with an unknown flag */
    CHECK_OK(apply(&k, cmd_cred(1, 0, false, 0)));
    uint8_t ck[1 + KV_CLUSTER_HASH_BYTES] = {'c'};
    hash_of(1, ck + 1);
    CHECK_OK(store_begin(k.s, true, &t));
    CHECK_OK(store_get(t, STORE_T_CLUSTER, slice_make(ck, sizeof(ck)), &v));
    n = v.len;
    CHECK_EQ(n, 18);
    memcpy(bad, v.ptr, n);
    bad[9] = 0x02;
    CHECK_OK(store_put(t, STORE_T_CLUSTER, slice_make(ck, sizeof(ck)), slice_make(bad, n)));
    CHECK_OK(store_commit(t, true));
    struct kv_credential c;
    CHECK_ERR(get_cred(&k, 1, &c), ASPEN_E_CORRUPT);
    CHECK_ERR(apply(&k, cmd_cred(2, 0, false, 0)), ASPEN_E_CORRUPT); /* the GC walk sees it */
    kvt_close(&k);
}

/* ---------------------------------------------------------------------------------------
 * Snapshots
 * ------------------------------------------------------------------------------------- */

/* Streams a's state into b (a fresh memory store) through kv/snapshot.h. */
static int stream_into(struct store *a, struct store *b, uint64_t index)
{
    struct raft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.index = index;
    meta.term = 1;
    meta.config.n_voters = 1;
    meta.config.voters[0] = 1;
    struct store_txn *ta, *tb;
    int rc = store_begin(a, false, &ta);
    if (rc)
        return rc;
    if ((rc = store_begin(b, true, &tb))) {
        store_abort(ta);
        return rc;
    }
    struct buf chunk;
    buf_init(&chunk, ASPEN_SNAPSHOT_CHUNK_MAX_BYTES);
    struct kv_snapshot_writer w;
    struct kv_snapshot_reader r;
    kv_snapshot_writer_init(&w, ta, &meta);
    rc = kv_snapshot_reader_begin(&r, tb);
    while (!rc && (rc = kv_snapshot_writer_next(&w, &chunk)) == 0)
        rc = kv_snapshot_reader_chunk(&r, buf_slice(&chunk));
    if (rc == ASPEN_E_NOT_FOUND) {
        struct raft_snapshot_meta got;
        rc = kv_snapshot_reader_end(&r, &got);
    }
    kv_snapshot_writer_release(&w);
    buf_release(&chunk);
    store_abort(ta);
    if (rc)
        store_abort(tb);
    else
        rc = store_commit(tb, true);
    return rc;
}

static void test_snapshot_roundtrip(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    CHECK_OK(kvt_put(&k, "key", "value", 0));
    CHECK_OK(apply(&k, cmd_init(42)));
    struct kv_member a = member(1, 1, "a"), b = member(2, 2, "b");
    CHECK_OK(apply(&k, cmd_set(&a)));
    CHECK_OK(apply(&k, cmd_cred(9, 0, true, 0)));
    CHECK_OK(apply(&k, cmd_cred(8, 7000, false, 0)));
    CHECK_OK(apply(&k, cmd_join(9, 1, &b)));

    struct store *fresh;
    CHECK_OK(store_mem_open(&fresh, NULL));
    CHECK_OK(stream_into(k.s, fresh, k.index));
    uint8_t da[32], db[32];
    CHECK_OK(digest_of(k.s, da));
    CHECK_OK(digest_of(fresh, db));
    CHECK_MEM_EQ(da, db, 32);

    struct store_txn *t;
    CHECK_OK(store_begin(fresh, false, &t));
    uint64_t cid = 0, n_cred = 0;
    struct kv_member *list = NULL;
    size_t n = 0;
    struct kv_credential c;
    uint8_t h[KV_CLUSTER_HASH_BYTES];
    hash_of(8, h);
    int rc = kv_cluster_id(t, &cid);
    if (!rc)
        rc = kv_member_list(t, &k.a, &list, &n);
    if (!rc)
        rc = kv_credential_count(t, &n_cred);
    if (!rc)
        rc = kv_credential_get(t, h, &c);
    store_abort(t);
    store_close(fresh);
    CHECK_OK(rc);
    CHECK_EQ_U64(cid, 42);
    CHECK_EQ(n, 2);
    CHECK(member_eq(&list[0], &a));
    CHECK(member_eq(&list[1], &b));
    CHECK_EQ_U64(n_cred, 1); /* 9 was single use */
    CHECK_EQ(c.expires_ms, 7000);

    /* The registry is part of the digest: at the same applied index, a store with one
     * more member, one more credential or a cluster id differs from one without. */
    struct kv_member x = member(3, 3, "x");
    struct kv_cmd more[] = {cmd_set(&x), cmd_cred(10, 0, false, 0), cmd_init(43)};
    struct kvt fresh_k;
    CHECK_OK(kvt_open(&fresh_k));
    for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++) {
        struct store *twin;
        struct kvt *kk = i < 2 ? &k : &fresh_k;
        CHECK_OK(store_mem_clone(kk->s, &twin));
        struct kv_cmd noop = {.kind = KV_CMD_NOOP};
        rc = apply_to(twin, kk->index + 1, &noop);
        int rc2 = apply(kk, more[i]);
        uint8_t dt[32], dk[32];
        if (!rc && !rc2 && !(rc = digest_of(twin, dt)))
            rc = digest_of(kk->s, dk);
        store_close(twin);
        CHECK_OK(rc);
        CHECK_OK(rc2);
        CHECK_MSG(memcmp(dt, dk, 32) != 0, "command %zu: digest unchanged", i);
    }
    kvt_close(&fresh_k);
    kvt_close(&k);
}

/* ---------------------------------------------------------------------------------------
 * Codec
 * ------------------------------------------------------------------------------------- */

/* Encodes c, decodes it, re-encodes the result: same bytes; the decoded command is
 * returned in out (slices into b, which the caller releases). */
static int roundtrip(const struct kv_cmd *c, struct buf *b, struct arena *a, struct kv_cmd *out)
{
    int rc = kv_cmd_encode(c, b);
    if (rc)
        return rc;
    if ((rc = kv_cmd_decode(buf_slice(b), a, out)))
        return rc;
    struct buf again;
    buf_init(&again, ASPEN_MAX_REQUEST_BYTES);
    rc = kv_cmd_encode(out, &again);
    if (!rc && !slice_eq(buf_slice(&again), buf_slice(b)))
        rc = ASPEN_E_INTERNAL;
    buf_release(&again);
    return rc;
}

static void test_codec_roundtrip(void)
{
    struct arena a;
    arena_init(&a, 4096, 1u << 20);
    struct buf b;
    buf_init(&b, ASPEN_MAX_REQUEST_BYTES);
    struct kv_cmd got;

    static char name[ASPEN_MAX_MEMBER_NAME_BYTES], addr[ASPEN_MAX_MEMBER_ADDR_BYTES],
        urls[ASPEN_MAX_MEMBER_URLS_BYTES];
    memset(name, 'n', sizeof(name));
    memset(addr, '~', sizeof(addr));
    memset(urls, '!', sizeof(urls));
    struct kv_member big = member(UINT64_MAX, 0xff, "x");
    big.name = slice_make(name, sizeof(name));
    big.peer_addr = slice_make(addr, sizeof(addr));
    big.client_urls = slice_make(urls, sizeof(urls));
    for (size_t i = 0; i < sizeof(big.pk); i++)
        big.pk[i] = (uint8_t)i;

    struct kv_cmd c = cmd_init(UINT64_MAX);
    CHECK_OK(roundtrip(&c, &b, &a, &got));
    CHECK_EQ(got.kind, KV_CMD_CLUSTER_INIT);
    CHECK_EQ_U64(got.u.cluster_init.cluster_id, UINT64_MAX);

    buf_clear(&b);
    c = cmd_set(&big);
    CHECK_OK(roundtrip(&c, &b, &a, &got));
    CHECK_EQ(got.kind, KV_CMD_MEMBER_SET);
    CHECK(member_eq(&got.u.member_set, &big));

    buf_clear(&b);
    c = cmd_remove(1);
    CHECK_OK(roundtrip(&c, &b, &a, &got));
    CHECK_EQ_U64(got.u.member_remove.id, 1);

    buf_clear(&b);
    c = cmd_cred(0xdeadbeef, INT64_MAX, true, 123);
    c.u.cred_add.now_ms = INT64_MAX;
    CHECK_OK(roundtrip(&c, &b, &a, &got));
    CHECK_EQ(got.kind, KV_CMD_CRED_ADD);
    CHECK_MEM_EQ(got.u.cred_add.cred.hash, c.u.cred_add.cred.hash, KV_CLUSTER_HASH_BYTES);
    CHECK_EQ(got.u.cred_add.cred.expires_ms, INT64_MAX);
    CHECK(got.u.cred_add.cred.single_use);
    CHECK_EQ(got.u.cred_add.cred.created_ms, 123);
    CHECK_EQ(got.u.cred_add.now_ms, INT64_MAX);

    buf_clear(&b);
    c = cmd_cred(1, 0, false, 0);
    CHECK_OK(roundtrip(&c, &b, &a, &got));
    CHECK(!got.u.cred_add.cred.single_use);

    buf_clear(&b);
    struct kv_member small = member(2, 3, "s");
    small.client_urls = slice_make(NULL, 0);
    c = cmd_join(77, 5555, &small);
    CHECK_OK(roundtrip(&c, &b, &a, &got));
    CHECK_EQ(got.kind, KV_CMD_MEMBER_JOIN);
    CHECK_MEM_EQ(got.u.member_join.hash, c.u.member_join.hash, KV_CLUSTER_HASH_BYTES);
    CHECK_EQ(got.u.member_join.now_ms, 5555);
    CHECK(member_eq(&got.u.member_join.member, &small));

    buf_release(&b);
    arena_release(&a);
}

/* Every rule, in the encoder (INVALID / TOO_LARGE) and in the decoder (the same bytes
 * produced without the encoder's check: MALFORMED / TOO_LARGE). */
static int encode_unchecked(const struct kv_member *m, struct buf *out);

static void test_codec_validation(void)
{
    static char long_name[ASPEN_MAX_MEMBER_NAME_BYTES + 1],
        long_addr[ASPEN_MAX_MEMBER_ADDR_BYTES + 1], long_urls[ASPEN_MAX_MEMBER_URLS_BYTES + 1];
    memset(long_name, 'n', sizeof(long_name));
    memset(long_addr, 'a', sizeof(long_addr));
    memset(long_urls, 'u', sizeof(long_urls));
    struct {
        const char *what;
        struct kv_member m;
        int enc; /* the encoder's answer; the decoder's is MALFORMED for INVALID */
    } bad[] = {
        {"id 0", member(0, 1, "a"), ASPEN_E_INVALID},
        {"empty name", member(1, 1, ""), ASPEN_E_INVALID},
        {"name with a space", member(1, 1, "a b"), ASPEN_E_INVALID},
        {"name with DEL", member(1, 1, "a\x7f"), ASPEN_E_INVALID},
        {"name with a control byte", member(1, 1, "a\n"), ASPEN_E_INVALID},
        {"name with a high byte", member(1, 1, "caf\xc3\xa9"), ASPEN_E_INVALID},
        {"long name", member(1, 1, "a"), ASPEN_E_TOO_LARGE},
        {"empty address", member(1, 1, "a"), ASPEN_E_INVALID},
        {"address with a space", member(1, 1, "a"), ASPEN_E_INVALID},
        {"long address", member(1, 1, "a"), ASPEN_E_TOO_LARGE},
        {"URLs with a tab", member(1, 1, "a"), ASPEN_E_INVALID},
        {"long URLs", member(1, 1, "a"), ASPEN_E_TOO_LARGE},
        {"unknown flag", member(1, 1, "a"), ASPEN_E_INVALID},
    };
    bad[12].m.flags = 0x02;
    bad[6].m.name = slice_make(long_name, sizeof(long_name));
    bad[7].m.peer_addr = slice_make(NULL, 0);
    bad[8].m.peer_addr = S("host: 1");
    bad[9].m.peer_addr = slice_make(long_addr, sizeof(long_addr));
    bad[10].m.client_urls = S("http://a\thttp://b");
    bad[11].m.client_urls = slice_make(long_urls, sizeof(long_urls));

    struct arena a;
    arena_init(&a, 4096, 1u << 20);
    struct buf b;
    buf_init(&b, ASPEN_MAX_REQUEST_BYTES);
    struct kv_cmd got;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int dec = bad[i].enc == ASPEN_E_INVALID ? ASPEN_E_MALFORMED : bad[i].enc;
        struct kv_cmd c = cmd_set(&bad[i].m);
        buf_clear(&b);
        int rc = kv_cmd_encode(&c, &b);
        CHECK_MSG(rc == bad[i].enc && b.len == 0, "%s: encode %s", bad[i].what, aspen_err_name(rc));
        c = cmd_join(1, 0, &bad[i].m);
        rc = kv_cmd_encode(&c, &b);
        CHECK_MSG(rc == bad[i].enc && b.len == 0, "%s: join encode %s", bad[i].what,
                  aspen_err_name(rc));
        CHECK_OK(encode_unchecked(&bad[i].m, &b));
        rc = kv_cmd_decode(buf_slice(&b), &a, &got);
        CHECK_MSG(rc == dec, "%s: decode %s", bad[i].what, aspen_err_name(rc));
        CHECK_EQ(got.kind, 0); /* a refused decode leaves nothing behind */
    }

    /* Scalars: the encoder refuses, and the same bytes written by hand are refused. */
    struct buf tmp;
    buf_init(&tmp, ASPEN_MAX_REQUEST_BYTES);
    struct kv_member ok = member(1, 1, "a");
    buf_clear(&b);
    struct kv_cmd c = cmd_init(0);
    CHECK_ERR(kv_cmd_encode(&c, &b), ASPEN_E_INVALID);
    c = cmd_remove(0);
    CHECK_ERR(kv_cmd_encode(&c, &b), ASPEN_E_INVALID);
    c = cmd_cred(1, -1, false, 0);
    CHECK_ERR(kv_cmd_encode(&c, &b), ASPEN_E_INVALID);
    c = cmd_cred(1, 0, false, 0);
    c.u.cred_add.cred.created_ms = -1;
    CHECK_ERR(kv_cmd_encode(&c, &b), ASPEN_E_INVALID);
    c = cmd_cred(1, 0, false, 0);
    c.u.cred_add.now_ms = -1;
    CHECK_ERR(kv_cmd_encode(&c, &b), ASPEN_E_INVALID);
    c = cmd_join(1, -1, &ok);
    CHECK_ERR(kv_cmd_encode(&c, &b), ASPEN_E_INVALID);
    CHECK_EQ(b.len, 0);

    /* By hand: magic, kind, body. zz(-1) = 0x01. */
    const uint8_t h32[KV_CLUSTER_HASH_BYTES] = {0};
    struct {
        const char *what;
        uint8_t kind;
        uint8_t tail[8];
        size_t n_tail;
        bool with_hash;
        int want;
    } raw[] = {
        {"cluster id 0", KV_CMD_CLUSTER_INIT, {0x00}, 1, false, ASPEN_E_MALFORMED},
        {"remove id 0", KV_CMD_MEMBER_REMOVE, {0x00}, 1, false, ASPEN_E_MALFORMED},
        {"non-canonical varint", KV_CMD_MEMBER_REMOVE, {0x81, 0x00}, 2, false, ASPEN_E_MALFORMED},
        {"expires -1", KV_CMD_CRED_ADD, {0x01, 0x00, 0x00, 0x00}, 4, true, ASPEN_E_MALFORMED},
        {"created -1", KV_CMD_CRED_ADD, {0x00, 0x00, 0x01, 0x00}, 4, true, ASPEN_E_MALFORMED},
        {"now -1", KV_CMD_CRED_ADD, {0x00, 0x00, 0x00, 0x01}, 4, true, ASPEN_E_MALFORMED},
        {"unknown flag", KV_CMD_CRED_ADD, {0x00, 0x02, 0x00, 0x00}, 4, true, ASPEN_E_MALFORMED},
        {"trailing byte",
         KV_CMD_CRED_ADD,
         {0x00, 0x01, 0x00, 0x00, 0x00},
         5,
         true,
         ASPEN_E_MALFORMED},
        {"cred cut short", KV_CMD_CRED_ADD, {0x00, 0x01, 0x00}, 3, true, ASPEN_E_TRUNCATED},
        {"hash cut short", KV_CMD_MEMBER_JOIN, {0}, 0, false, ASPEN_E_TRUNCATED},
        {"cluster id missing", KV_CMD_CLUSTER_INIT, {0}, 0, false, ASPEN_E_TRUNCATED},
    };
    for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
        buf_clear(&tmp);
        uint8_t head[2] = {0xA1, raw[i].kind};
        CHECK_OK(buf_append(&tmp, head, 2));
        if (raw[i].with_hash)
            CHECK_OK(buf_append(&tmp, h32, sizeof(h32)));
        else if (raw[i].kind == KV_CMD_MEMBER_JOIN)
            CHECK_OK(buf_append(&tmp, h32, 10));
        CHECK_OK(buf_append(&tmp, raw[i].tail, raw[i].n_tail));
        int rc = kv_cmd_decode(buf_slice(&tmp), &a, &got);
        CHECK_MSG(rc == raw[i].want, "%s: decode %s", raw[i].what, aspen_err_name(rc));
    }
    /* The control: the well-formed CRED_ADD of the table decodes. */
    buf_clear(&tmp);
    CHECK_OK(buf_append(&tmp, (uint8_t[]){0xA1, KV_CMD_CRED_ADD}, 2));
    CHECK_OK(buf_append(&tmp, h32, sizeof(h32)));
    CHECK_OK(buf_append(&tmp, (uint8_t[]){0x00, 0x01, 0x00, 0x00}, 4));
    CHECK_OK(kv_cmd_decode(buf_slice(&tmp), &a, &got));
    CHECK(got.u.cred_add.cred.single_use);

    /* A malformed registry entry still applies, as a refusal. */
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    uint8_t bad_init[] = {0xA1, KV_CMD_CLUSTER_INIT, 0x00};
    struct kv_result res;
    CHECK_OK(kvt_apply_raw(&k, RAFT_ENTRY_NORMAL, bad_init, sizeof(bad_init), &res));
    CHECK_EQ(res.rc, ASPEN_E_MALFORMED);
    CHECK_EQ(applied_of(&k), 1);
    kvt_close(&k);

    buf_release(&tmp);
    buf_release(&b);
    arena_release(&a);
}

/* A MEMBER_SET of m in the codec's layout (cmd.c), without the rules. */
static int encode_unchecked(const struct kv_member *m, struct buf *out)
{
    buf_clear(out);
    uint8_t head[2] = {0xA1, KV_CMD_MEMBER_SET};
    int rc = buf_append(out, head, 2);
    uint8_t var[10];
    size_t n = 0;
    uint64_t id = m->id;
    while (id >= 0x80) {
        var[n++] = (uint8_t)(id | 0x80);
        id >>= 7;
    }
    var[n++] = (uint8_t)id;
    if (!rc)
        rc = buf_append(out, var, n);
    if (!rc)
        rc = buf_append(out, m->pk, sizeof(m->pk));
    const struct slice *s[3] = {&m->name, &m->peer_addr, &m->client_urls};
    for (int i = 0; i < 3 && !rc; i++) {
        /* lengths here stay under 16384: at most two varint bytes */
        size_t len = s[i]->len;
        uint8_t l[2] = {(uint8_t)(len | 0x80), (uint8_t)(len >> 7)};
        rc = len < 0x80 ? buf_append_u8(out, (uint8_t)len) : buf_append(out, l, 2);
        if (!rc)
            rc = buf_append(out, s[i]->ptr, s[i]->len);
    }
    if (!rc)
        rc = buf_append_u8(out, m->flags);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Fuzz seeds
 * ------------------------------------------------------------------------------------- */

static void write_seed(const char *dir, const char *name, struct slice data)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data.ptr, 1, data.len, f);
        fclose(f);
    }
}

/* One seed per registry command (the fuzz target's corpus); each must decode. */
static void test_fuzz_seeds(void)
{
    const char *dir = getenv("ASPEN_KV_CMD_CORPUS_DIR");
    struct kv_member m = member(0x1234567, 0x5a, "node-1");
    struct {
        const char *name;
        struct kv_cmd cmd;
    } seeds[] = {
        {"cluster-init", cmd_init(UINT64_C(0x0123456789abcdef))},
        {"member-set", cmd_set(&m)},
        {"member-remove", cmd_remove(0x1234567)},
        {"cred-add", cmd_cred(7, 1700000000000, true, 1690000000000)},
        {"member-join", cmd_join(7, 1695000000000, &m)},
    };
    struct arena a;
    arena_init(&a, 4096, 1u << 20);
    struct buf b;
    buf_init(&b, ASPEN_MAX_REQUEST_BYTES);
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        struct kv_cmd got;
        buf_clear(&b);
        CHECK_OK(roundtrip(&seeds[i].cmd, &b, &a, &got));
        if (dir)
            write_seed(dir, seeds[i].name, buf_slice(&b));
    }
    buf_release(&b);
    arena_release(&a);
}

static const struct test_case tests[] = {
    TEST(test_cluster_init),    TEST(test_member_set),
    TEST(test_member_remove),   TEST(test_member_limit),
    TEST(test_cred_add),        TEST(test_cred_gc_bound),
    TEST(test_cred_limit),      TEST(test_join),
    TEST(test_corrupt_records), TEST(test_snapshot_roundtrip),
    TEST(test_codec_roundtrip), TEST(test_codec_validation),
    TEST(test_fuzz_seeds),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("kv_cluster", tests);
}
