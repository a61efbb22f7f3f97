/*
 * The KV state machine, operation by operation, against etcd v3's documented and
 * observed behaviour: revisions and versions of puts, deletes (single, range, prefix,
 * from-key) with prev_kv, Range with limit/count/more, every sort, filters, keys_only,
 * count_only, historical reads, COMPACTED/FUTURE_REV, txn compares (every target and
 * result, absent keys, ranges), nested txns, reads of own writes, DUPLICATE_KEY, failed
 * validation changing nothing, the command codec, and the in-order apply assertion.
 * Leases, compaction, history, digests, long keys and the randomized model check are in
 * test_kv_more.c.
 */
#include "kv_util.h"

#include "kv/layout.h"

/* ---------------------------------------------------------------------------------------
 * Puts and reads
 * ------------------------------------------------------------------------------------- */

static void test_put_revisions(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    CHECK_EQ(kvt_rev(&k), 1); /* etcd: the empty store is at revision 1 */
    CHECK_OK(kvt_put(&k, "a", "1", 0));
    CHECK_EQ(kvt_rev(&k), 2);
    CHECK_OK(kvt_put(&k, "a", "2", 0));
    CHECK_OK(kvt_put(&k, "b", "x", 0));
    CHECK_EQ(kvt_rev(&k), 4);

    struct kv_range_result r;
    CHECK_OK(kvt_get(&k, "a", NULL, 0, &r));
    CHECK_EQ(r.n_kvs, 1);
    CHECK_EQ(r.count, 1);
    CHECK(kv_eq_str(&r.kvs[0], "a", "2"));
    CHECK_EQ(r.kvs[0].create_revision, 2);
    CHECK_EQ(r.kvs[0].mod_revision, 3);
    CHECK_EQ(r.kvs[0].version, 2);
    CHECK_EQ(r.kvs[0].lease, 0);

    /* prev_kv, and the result's revision */
    struct kv_cmd c = {.kind = KV_CMD_PUT};
    c.u.put.key = S("a");
    c.u.put.value = S("3");
    c.u.put.prev_kv = true;
    struct kv_result res;
    CHECK_OK(kvt_apply(&k, &c, &res));
    CHECK_EQ(res.revision, 5);
    CHECK(res.u.put.has_prev);
    CHECK(kv_eq_str(&res.u.put.prev, "a", "2"));
    CHECK_EQ(res.u.put.prev.mod_revision, 3);
    CHECK_EQ(k.ev.n, 1);
    CHECK_EQ(k.ev.ev[0].type, KV_EVENT_PUT);
    CHECK_EQ(k.ev.ev[0].kv.version, 3);
    CHECK(k.ev.ev[0].has_prev);

    /* ignore_value keeps the value; on an absent key it is refused with NOT_FOUND */
    c.u.put.value = slice_make(NULL, 0);
    c.u.put.ignore_value = true;
    CHECK_OK(kvt_apply(&k, &c, &res));
    CHECK_OK(kvt_get(&k, "a", NULL, 0, &r));
    CHECK(kv_eq_str(&r.kvs[0], "a", "3"));
    CHECK_EQ(r.kvs[0].version, 4);
    c.u.put.key = S("zz");
    CHECK_ERR(kvt_apply(&k, &c, &res), ASPEN_E_NOT_FOUND);
    CHECK_EQ(kvt_rev(&k), 6);

    /* an empty value is a value */
    CHECK_OK(kvt_put(&k, "e", "", 0));
    CHECK_OK(kvt_get(&k, "e", NULL, 0, &r));
    CHECK_EQ(r.n_kvs, 1);
    CHECK_EQ(r.kvs[0].value.len, 0);

    /* absent key */
    CHECK_OK(kvt_get(&k, "nope", NULL, 0, &r));
    CHECK_EQ(r.n_kvs, 0);
    CHECK_EQ(r.count, 0);
    kvt_close(&k);
}

static void test_delete(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    const char *keys[] = {"a", "b", "b1", "b2", "c", "d"};
    for (int i = 0; i < 6; i++)
        CHECK_OK(kvt_put(&k, keys[i], keys[i], 0));
    CHECK_EQ(kvt_rev(&k), 7);
    int64_t n;
    /* no-op delete: no revision */
    CHECK_OK(kvt_del(&k, "zz", NULL, &n));
    CHECK_EQ(n, 0);
    CHECK_EQ(kvt_rev(&k), 7);
    /* single */
    CHECK_OK(kvt_del(&k, "a", NULL, &n));
    CHECK_EQ(n, 1);
    CHECK_EQ(kvt_rev(&k), 8);
    /* prefix with prev_kv: one revision for all */
    struct kv_cmd c = {.kind = KV_CMD_DELETE};
    c.u.del.key = S("b");
    c.u.del.range_end = kv_prefix_end(S("b"), &k.a);
    c.u.del.prev_kv = true;
    struct kv_result res;
    CHECK_OK(kvt_apply(&k, &c, &res));
    CHECK_EQ(res.u.del.deleted, 3);
    CHECK_EQ(res.u.del.n_prev, 3);
    CHECK(kv_eq_str(&res.u.del.prev_kvs[0], "b", "b"));
    CHECK(kv_eq_str(&res.u.del.prev_kvs[2], "b2", "b2"));
    CHECK_EQ(res.revision, 9);
    CHECK_EQ(k.ev.n, 3);
    CHECK_EQ(k.ev.ev[1].type, KV_EVENT_DELETE);
    CHECK_EQ(k.ev.ev[1].kv.mod_revision, 9);
    CHECK_EQ(k.ev.ev[1].kv.version, 0);
    CHECK(kv_eq_str(&k.ev.ev[1].prev, "b1", "b1"));
    /* [c, d) leaves d */
    CHECK_OK(kvt_del(&k, "c", "d", &n));
    CHECK_EQ(n, 1);
    struct kv_range_result r;
    CHECK_OK(kvt_get(&k, "a", "z", 0, &r));
    CHECK_EQ(r.count, 1);
    CHECK(kv_eq_str(&r.kvs[0], "d", "d"));
    CHECK_EQ(kvt_rev(&k), 10);
    kvt_close(&k);
}

static void test_delete_from_key(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    CHECK_OK(kvt_put(&k, "a", "1", 0));
    CHECK_OK(kvt_put(&k, "c", "1", 0));
    CHECK_OK(kvt_put(&k, "d", "1", 0));
    struct kv_cmd c = {.kind = KV_CMD_DELETE};
    c.u.del.key = S("b");
    c.u.del.range_end = slice_make("\0", 1);
    struct kv_result res;
    CHECK_OK(kvt_apply(&k, &c, &res));
    CHECK_EQ(res.u.del.deleted, 2);
    CHECK_EQ(res.u.del.n_prev, 0);
    struct kv_range_result r;
    struct kv_range_req q = {.key = slice_make("\0", 1), .range_end = slice_make("\0", 1)};
    CHECK_OK(kvt_range(&k, &q, &r, NULL));
    CHECK_EQ(r.count, 1);
    CHECK(kv_eq_str(&r.kvs[0], "a", "1"));
    /* recreate after delete: create revision and version restart */
    CHECK_OK(kvt_put(&k, "c", "2", 0));
    CHECK_OK(kvt_get(&k, "c", NULL, 0, &r));
    CHECK_EQ(r.kvs[0].version, 1);
    CHECK_EQ(r.kvs[0].create_revision, 6);
    /* a range end <= key selects nothing */
    CHECK_OK(kvt_get(&k, "c", "a", 0, &r));
    CHECK_EQ(r.count, 0);
    kvt_close(&k);
}

/* ---------------------------------------------------------------------------------------
 * Range options
 * ------------------------------------------------------------------------------------- */

/* Keys k0..k4 with values and versions chosen so every sort target orders differently. */
static int setup_sort(struct kvt *k)
{
    int rc = 0;
    const char *vals[] = {"d", "a", "e", "c", "b"};
    char key[4] = "k0";
    for (int i = 0; i < 5 && !rc; i++) {
        key[1] = (char)('0' + (4 - i)); /* create order k4, k3, ... */
        rc = kvt_put(k, key, vals[i], 0);
    }
    for (int i = 0; i < 3 && !rc; i++)
        rc = kvt_put(k, "k1", "a", 0); /* k1: version 4, newest mod */
    return rc;
}

static bool order_is(const struct kv_range_result *r, const char *digits)
{
    if (r->n_kvs != strlen(digits))
        return false;
    for (size_t i = 0; i < r->n_kvs; i++)
        if (r->kvs[i].key.len != 2 || r->kvs[i].key.ptr[1] != digits[i])
            return false;
    return true;
}

static void test_range_sort(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    CHECK_OK(setup_sort(&k));
    struct kv_range_result r;
    struct kv_range_req q = {.key = S("k"), .range_end = S("l")};
    CHECK_OK(kvt_range(&k, &q, &r, NULL));
    CHECK(order_is(&r, "01234"));
    q.sort_order = KV_SORT_DESCEND;
    CHECK_OK(kvt_range(&k, &q, &r, NULL));
    CHECK(order_is(&r, "43210"));
    q.sort_target = KV_SORT_CREATE; /* created k4, k3, k2, k1, k0 */
    CHECK_OK(kvt_range(&k, &q, &r, NULL));
    CHECK(order_is(&r, "01234"));
    q.sort_order = KV_SORT_NONE; /* target != KEY with NONE sorts ASCEND */
    CHECK_OK(kvt_range(&k, &q, &r, NULL));
    CHECK(order_is(&r, "43210"));
    q.sort_target = KV_SORT_MOD; /* k1 last */
    q.sort_order = KV_SORT_ASCEND;
    CHECK_OK(kvt_range(&k, &q, &r, NULL));
    CHECK(order_is(&r, "43201"));
    q.sort_target = KV_SORT_VERSION; /* all 1 but k1 (4): ties in key order */
    CHECK_OK(kvt_range(&k, &q, &r, NULL));
    CHECK(order_is(&r, "02341"));
    q.sort_order = KV_SORT_DESCEND;
    CHECK_OK(kvt_range(&k, &q, &r, NULL));
    CHECK(order_is(&r, "10234"));
    /* values: k4=d k3=a k2=e k1=a k0=b */
    q.sort_target = KV_SORT_VALUE;
    q.sort_order = KV_SORT_ASCEND;
    q.keys_only = true; /* sorting by value still works; values are dropped after */
    CHECK_OK(kvt_range(&k, &q, &r, NULL));
    CHECK(order_is(&r, "13042"));
    CHECK_EQ(r.kvs[0].value.len, 0);
    CHECK_EQ(r.kvs[0].version, 4);
    /* sort + limit: sorted over everything, then cut */
    q.limit = 2;
    q.sort_order = KV_SORT_DESCEND;
    CHECK_OK(kvt_range(&k, &q, &r, NULL));
    CHECK(order_is(&r, "24"));
    CHECK(r.more);
    CHECK_EQ(r.count, 5);
    kvt_close(&k);
}

static void test_range_limit_filters(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    CHECK_OK(setup_sort(&k));
    struct kv_range_result r;
    struct kv_range_req q = {.key = S("k"), .range_end = S("l"), .limit = 2};
    int64_t header;
    CHECK_OK(kvt_range(&k, &q, &r, &header));
    CHECK_EQ(header, 9);
    CHECK(order_is(&r, "01"));
    CHECK(r.more);
    CHECK_EQ(r.count, 5);
    q.limit = 5;
    CHECK_OK(kvt_range(&k, &q, &r, NULL));
    CHECK(!r.more);
    CHECK_EQ(r.n_kvs, 5);
    q.limit = 6;
    CHECK_OK(kvt_range(&k, &q, &r, NULL));
    CHECK(!r.more);
    /* count_only */
    q.limit = 0;
    q.count_only = true;
    CHECK_OK(kvt_range(&k, &q, &r, NULL));
    CHECK_EQ(r.n_kvs, 0);
    CHECK_EQ(r.count, 5);
    CHECK(!r.more);
    /* keys_only */
    q.count_only = false;
    q.keys_only = true;
    CHECK_OK(kvt_range(&k, &q, &r, NULL));
    CHECK_EQ(r.n_kvs, 5);
    CHECK_EQ(r.kvs[2].value.len, 0);
    CHECK_EQ(r.kvs[2].create_revision, 4);
    q.keys_only = false;
    /* filters: mod revisions are k4=2 k3=3 k2=4 k1=9 k0=6; count is before filters */
    q.min_mod_revision = 3;
    q.max_mod_revision = 6;
    CHECK_OK(kvt_range(&k, &q, &r, NULL));
    CHECK(order_is(&r, "023"));
    CHECK_EQ(r.count, 5);
    q.min_mod_revision = q.max_mod_revision = 0;
    q.min_create_revision = 5; /* created: k4=2 k3=3 k2=4 k1=5 k0=6 */
    CHECK_OK(kvt_range(&k, &q, &r, NULL));
    CHECK(order_is(&r, "01"));
    q.min_create_revision = 0;
    q.max_create_revision = 3;
    q.limit = 1;
    CHECK_OK(kvt_range(&k, &q, &r, NULL));
    CHECK(order_is(&r, "3"));
    CHECK(r.more);
    /* invalid requests */
    struct kv_range_req bad = {.key = slice_make(NULL, 0)};
    CHECK_ERR(kvt_range(&k, &bad, &r, NULL), ASPEN_E_INVALID);
    bad.key = S("a");
    bad.limit = -1;
    CHECK_ERR(kvt_range(&k, &bad, &r, NULL), ASPEN_E_INVALID);
    kvt_close(&k);
}

static void test_range_revisions(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    CHECK_OK(kvt_put(&k, "a", "1", 0));     /* 2 */
    CHECK_OK(kvt_put(&k, "a", "2", 0));     /* 3 */
    CHECK_OK(kvt_del(&k, "a", NULL, NULL)); /* 4 */
    CHECK_OK(kvt_put(&k, "a", "3", 0));     /* 5 */
    CHECK_OK(kvt_put(&k, "b", "1", 0));     /* 6 */
    struct kv_range_result r;
    CHECK_OK(kvt_get(&k, "a", NULL, 1, &r));
    CHECK_EQ(r.n_kvs, 0);
    CHECK_OK(kvt_get(&k, "a", NULL, 2, &r));
    CHECK(kv_eq_str(&r.kvs[0], "a", "1"));
    CHECK_OK(kvt_get(&k, "a", NULL, 3, &r));
    CHECK(kv_eq_str(&r.kvs[0], "a", "2"));
    CHECK_EQ(r.kvs[0].version, 2);
    CHECK_OK(kvt_get(&k, "a", NULL, 4, &r));
    CHECK_EQ(r.n_kvs, 0);
    CHECK_OK(kvt_get(&k, "a", "c", 5, &r));
    CHECK_EQ(r.count, 1);
    CHECK_EQ(r.kvs[0].create_revision, 5);
    CHECK_OK(kvt_get(&k, "a", "c", 6, &r));
    CHECK_EQ(r.count, 2);
    CHECK_ERR(kvt_get(&k, "a", NULL, 7, &r), ASPEN_E_FUTURE_REV);
    CHECK_OK(kvt_compact(&k, 3));
    CHECK_ERR(kvt_get(&k, "a", NULL, 2, &r), ASPEN_E_COMPACTED);
    CHECK_OK(kvt_get(&k, "a", NULL, 3, &r)); /* == compacted is readable */
    CHECK(kv_eq_str(&r.kvs[0], "a", "2"));
    CHECK_OK(kvt_get(&k, "a", NULL, 4, &r));
    CHECK_EQ(r.n_kvs, 0);
    kvt_close(&k);
}

/* ---------------------------------------------------------------------------------------
 * Txn
 * ------------------------------------------------------------------------------------- */

static int txn1(struct kvt *k, struct kv_compare cmp, bool *succeeded)
{
    struct kv_op op = {.kind = KV_OP_RANGE};
    op.u.range.key = S("a");
    struct kv_cmd c = {.kind = KV_CMD_TXN};
    c.u.txn.compares = &cmp;
    c.u.txn.n_compares = 1;
    c.u.txn.success = &op;
    c.u.txn.n_success = 1;
    struct kv_result res;
    int rc = kvt_apply(k, &c, &res);
    *succeeded = res.u.txn.succeeded;
    if (!rc && res.u.txn.failed_compare != (res.u.txn.succeeded ? -1 : 0))
        rc = ASPEN_E_INTERNAL;
    return rc;
}

static void test_txn_compares(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    CHECK_OK(kvt_grant(&k, 7));
    CHECK_OK(kvt_put(&k, "a", "m", 7)); /* create 2, mod 2, version 1, lease 7 */
    CHECK_OK(kvt_put(&k, "b", "x", 0));
    CHECK_OK(kvt_put(&k, "a", "m", 7)); /* mod 4, version 2 */
    /* actual values per target: VERSION 2, CREATE 2, MOD 4, VALUE "m", LEASE 7 */
    const int64_t actual[] = {2, 2, 4, 0, 7};
    for (uint8_t target = 0; target <= KV_CMP_LEASE; target++) {
        for (int delta = -1; delta <= 1; delta++) {
            for (uint8_t result = 0; result <= KV_CMP_NOT_EQUAL; result++) {
                struct kv_compare c = {.result = result, .target = target, .key = S("a")};
                if (target == KV_CMP_VALUE)
                    c.value = delta < 0 ? S("l") : delta == 0 ? S("m") : S("n");
                else
                    c.number = actual[target] + delta;
                /* compare(actual, given): actual - given has the sign of -delta */
                bool want = result == KV_CMP_EQUAL       ? delta == 0
                            : result == KV_CMP_NOT_EQUAL ? delta != 0
                            : result == KV_CMP_GREATER   ? delta < 0
                                                         : delta > 0;
                bool got;
                CHECK_OK(txn1(&k, c, &got));
                CHECK_MSG(got == want, "target %u delta %d result %u: got %d", target, delta,
                          result, got);
            }
        }
    }
    /* absent key: zeros; a value compare is false whatever it says */
    struct kv_compare c = {.result = KV_CMP_EQUAL, .target = KV_CMP_VERSION, .key = S("zz")};
    bool got;
    CHECK_OK(txn1(&k, c, &got));
    CHECK(got);
    c.target = KV_CMP_VALUE;
    c.result = KV_CMP_NOT_EQUAL;
    c.value = S("q");
    CHECK_OK(txn1(&k, c, &got));
    CHECK(!got);
    /* range compare: must hold for every existing key */
    c = (struct kv_compare){.result = KV_CMP_GREATER,
                            .target = KV_CMP_MOD,
                            .key = S("a"),
                            .range_end = S("c"),
                            .number = 2};
    CHECK_OK(txn1(&k, c, &got));
    CHECK(got); /* a: 4, b: 3 */
    c.number = 3;
    CHECK_OK(txn1(&k, c, &got));
    CHECK(!got);
    c.key = S("x"); /* empty range: compares zero */
    c.range_end = S("y");
    c.result = KV_CMP_LESS;
    c.number = 1;
    CHECK_OK(txn1(&k, c, &got));
    CHECK(got);
    CHECK_EQ(kvt_rev(&k), 4); /* read-only txns do not move the revision */
    kvt_close(&k);
}

static void test_txn_writes(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    CHECK_OK(kvt_put(&k, "a", "1", 0));
    /* success: put b, range b (sees the write), delete a, nested txn that puts c */
    struct kv_compare cmp = {.result = KV_CMP_EQUAL, .target = KV_CMP_VALUE, .key = S("a")};
    cmp.value = S("1");
    struct kv_compare ncmp = {.result = KV_CMP_EQUAL, .target = KV_CMP_VERSION, .key = S("b")};
    ncmp.number = 0; /* nested compares see the state before the txn: b absent */
    struct kv_op nops[1] = {{.kind = KV_OP_PUT}};
    nops[0].u.put.key = S("c");
    nops[0].u.put.value = S("3");
    struct kv_txn_req nested = {
        .compares = &ncmp, .n_compares = 1, .success = nops, .n_success = 1};
    struct kv_op ops[4] = {
        {.kind = KV_OP_PUT}, {.kind = KV_OP_RANGE}, {.kind = KV_OP_DELETE}, {.kind = KV_OP_TXN}};
    ops[0].u.put.key = S("b");
    ops[0].u.put.value = S("2");
    ops[1].u.range.key = S("a");
    ops[1].u.range.range_end = S("z");
    ops[2].u.del.key = S("a");
    ops[2].u.del.prev_kv = true;
    ops[3].u.txn = &nested;
    struct kv_cmd c = {.kind = KV_CMD_TXN};
    c.u.txn =
        (struct kv_txn_req){.compares = &cmp, .n_compares = 1, .success = ops, .n_success = 4};
    struct kv_result res;
    CHECK_OK(kvt_apply(&k, &c, &res));
    CHECK(res.u.txn.succeeded);
    CHECK_EQ(res.revision, 3); /* one revision for the whole txn */
    CHECK_EQ(kvt_rev(&k), 3);
    CHECK_EQ(res.u.txn.n_results, 4);
    const struct kv_range_result *rr = &res.u.txn.results[1].u.range;
    CHECK_EQ(rr->count, 2);
    CHECK(kv_eq_str(&rr->kvs[1], "b", "2"));
    CHECK_EQ(rr->kvs[1].mod_revision, 3);
    CHECK_EQ(res.u.txn.results[2].u.del.deleted, 1);
    CHECK(res.u.txn.results[3].u.txn->succeeded);
    CHECK_EQ(k.ev.n, 3);
    struct kv_range_result r;
    CHECK_OK(kvt_get(&k, "a", "z", 0, &r));
    CHECK_EQ(r.count, 2);
    CHECK(kv_eq_str(&r.kvs[0], "b", "2"));
    CHECK(kv_eq_str(&r.kvs[1], "c", "3"));
    CHECK_EQ(r.kvs[1].mod_revision, 3);

    /* failure branch */
    cmp.value = S("nope");
    struct kv_op fop = {.kind = KV_OP_PUT};
    fop.u.put.key = S("f");
    fop.u.put.value = S("f");
    c.u.txn.failure = &fop;
    c.u.txn.n_failure = 1;
    CHECK_OK(kvt_apply(&k, &c, &res));
    CHECK(!res.u.txn.succeeded);
    CHECK_EQ(res.u.txn.failed_compare, 0);
    CHECK_EQ(res.u.txn.n_results, 1);
    CHECK_EQ(kvt_rev(&k), 4);
    kvt_close(&k);
}

static void test_txn_validation(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    CHECK_OK(kvt_put(&k, "a", "1", 0));
    uint8_t before[32], after[32];
    CHECK_OK(kvt_digest(&k, before));
    struct kv_op ops[3] = {{.kind = KV_OP_PUT}, {.kind = KV_OP_PUT}, {.kind = KV_OP_DELETE}};
    ops[0].u.put.key = S("x");
    ops[1].u.put.key = S("x");
    struct kv_cmd c = {.kind = KV_CMD_TXN};
    c.u.txn.success = ops;
    c.u.txn.n_success = 2;
    struct kv_result res;
    CHECK_ERR(kvt_apply(&k, &c, &res), ASPEN_E_DUPLICATE_KEY);
    /* put inside a deleted range */
    ops[1].kind = KV_OP_DELETE;
    ops[1].u.del = (struct kv_delete_req){.key = S("w"), .range_end = S("y")};
    CHECK_ERR(kvt_apply(&k, &c, &res), ASPEN_E_DUPLICATE_KEY);
    /* overlapping deletes are fine, but in this test: the last op has a missing lease */
    ops[0].kind = KV_OP_DELETE;
    ops[0].u.del = (struct kv_delete_req){.key = S("a"), .range_end = S("z")};
    ops[2].kind = KV_OP_PUT;
    ops[2].u.put = (struct kv_put_req){.key = S("q"), .lease = 99};
    c.u.txn.n_success = 3;
    CHECK_ERR(kvt_apply(&k, &c, &res), ASPEN_E_LEASE_NOT_FOUND);
    ops[2].u.put = (struct kv_put_req){.key = S("q"), .ignore_value = true};
    CHECK_ERR(kvt_apply(&k, &c, &res), ASPEN_E_NOT_FOUND);
    ops[2].kind = KV_OP_RANGE;
    ops[2].u.range = (struct kv_range_req){.key = S("q"), .revision = 50};
    CHECK_ERR(kvt_apply(&k, &c, &res), ASPEN_E_FUTURE_REV);
    CHECK_EQ(k.ev.n, 0);
    CHECK_EQ(kvt_rev(&k), 2);
    CHECK_OK(kvt_digest(&k, after));
    /* only kv.applied moved */
    struct kv_range_result r;
    CHECK_OK(kvt_get(&k, "a", NULL, 0, &r));
    CHECK_EQ(r.n_kvs, 1);
    /* and now it goes through */
    ops[2].u.range.revision = 0;
    CHECK_OK(kvt_apply(&k, &c, &res));
    CHECK_EQ(res.u.txn.results[2].u.range.count, 0); /* sees its own deletes */
    CHECK_EQ(kvt_rev(&k), 3);
    kvt_close(&k);
}

/* ---------------------------------------------------------------------------------------
 * Entries, codec
 * ------------------------------------------------------------------------------------- */

static void test_apply_entries(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    struct kv_result res;
    CHECK_OK(kvt_apply_raw(&k, RAFT_ENTRY_NORMAL, NULL, 0, &res)); /* leader no-op */
    CHECK_EQ(res.rc, 0);
    CHECK_EQ(res.kind, 0);
    uint8_t junk[3] = {1, 2, 3};
    CHECK_OK(kvt_apply_raw(&k, RAFT_ENTRY_CONF, junk, 3, &res));
    CHECK_EQ(res.rc, 0);
    CHECK_OK(kvt_apply_raw(&k, RAFT_ENTRY_NORMAL, junk, 3, &res));
    CHECK_EQ(res.rc, ASPEN_E_MALFORMED);
    struct kv_cmd c = {.kind = KV_CMD_NOOP};
    CHECK_OK(kvt_apply(&k, &c, &res));
    CHECK_EQ(res.kind, KV_CMD_NOOP);
    CHECK_EQ(res.revision, 1);
    struct store_txn *t;
    CHECK_OK(store_begin(k.s, false, &t));
    raft_index i;
    raft_term term;
    CHECK_OK(kv_applied(t, &i, &term));
    store_abort(t);
    CHECK_EQ(i, 4);
    CHECK_EQ(term, 1);
    kvt_close(&k);
}

static void apply_out_of_order(void *arg)
{
    struct kvt *k = arg;
    k->index += 1; /* skip one */
    struct kv_result res;
    (void)kvt_apply_raw(k, RAFT_ENTRY_NORMAL, NULL, 0, &res);
}

static void test_apply_order_asserted(void)
{
    struct kvt k;
    CHECK_OK(kvt_open(&k));
    CHECK(test_dies(apply_out_of_order, &k));
    kvt_close(&k);
}

static bool cmd_roundtrip(const struct kv_cmd *c, struct arena *a)
{
    struct buf b1, b2;
    buf_init(&b1, ASPEN_MAX_REQUEST_BYTES);
    buf_init(&b2, ASPEN_MAX_REQUEST_BYTES);
    struct kv_cmd d;
    bool ok = kv_cmd_encode(c, &b1) == 0 && kv_cmd_decode(buf_slice(&b1), a, &d) == 0 &&
              kv_cmd_encode(&d, &b2) == 0 && slice_eq(buf_slice(&b1), buf_slice(&b2));
    /* every truncation fails cleanly */
    for (size_t n = 0; ok && n < b1.len; n++)
        ok = kv_cmd_decode(slice_make(b1.data, n), a, &d) != 0;
    buf_release(&b1);
    buf_release(&b2);
    return ok;
}

static void test_cmd_codec(void)
{
    struct arena a;
    arena_init(&a, 4096, 1u << 24);
    struct kv_cmd c = {.kind = KV_CMD_PUT};
    c.u.put = (struct kv_put_req){.key = S("k"), .value = S("v"), .lease = 5, .prev_kv = true};
    CHECK(cmd_roundtrip(&c, &a));
    c.kind = KV_CMD_DELETE;
    c.u.del = (struct kv_delete_req){.key = S("k"), .range_end = slice_make("\0", 1)};
    CHECK(cmd_roundtrip(&c, &a));
    c.kind = KV_CMD_COMPACT;
    c.u.compact.revision = INT64_MAX;
    CHECK(cmd_roundtrip(&c, &a));
    c.kind = KV_CMD_LEASE_GRANT;
    c.u.lease_grant.id = 1;
    c.u.lease_grant.ttl_ms = ASPEN_LEASE_MIN_TTL_MS;
    CHECK(cmd_roundtrip(&c, &a));
    c.kind = KV_CMD_LEASE_REVOKE;
    c.u.lease_revoke.id = 3;
    CHECK(cmd_roundtrip(&c, &a));
    c.kind = KV_CMD_COMPACT_STEP;
    CHECK(cmd_roundtrip(&c, &a));

    /* a txn with every op kind and nesting to the limit */
    struct kv_compare cmps[2] = {
        {.result = KV_CMP_LESS, .target = KV_CMP_MOD, .key = S("a"), .number = -5},
        {.result = KV_CMP_EQUAL, .target = KV_CMP_VALUE, .key = S("b"), .value = S("vv")}};
    struct kv_txn_req levels[ASPEN_MAX_TXN_DEPTH];
    struct kv_op ops[ASPEN_MAX_TXN_DEPTH][3];
    for (int d = ASPEN_MAX_TXN_DEPTH - 1; d >= 0; d--) {
        ops[d][0] = (struct kv_op){.kind = KV_OP_RANGE};
        ops[d][0].u.range = (struct kv_range_req){.key = S("r"),
                                                  .limit = 3,
                                                  .revision = -1,
                                                  .sort_order = 2,
                                                  .sort_target = 4,
                                                  .keys_only = true,
                                                  .max_create_revision = 9};
        ops[d][1] = (struct kv_op){.kind = KV_OP_DELETE};
        ops[d][1].u.del.key = S("d");
        ops[d][2] = (struct kv_op){.kind = KV_OP_TXN};
        ops[d][2].u.txn = d + 1 < ASPEN_MAX_TXN_DEPTH ? &levels[d + 1] : NULL;
        levels[d] = (struct kv_txn_req){.compares = cmps,
                                        .n_compares = 2,
                                        .success = ops[d],
                                        .n_success = d + 1 < ASPEN_MAX_TXN_DEPTH ? 3 : 2,
                                        .failure = ops[d],
                                        .n_failure = 1};
    }
    c.kind = KV_CMD_TXN;
    c.u.txn = levels[0];
    CHECK(cmd_roundtrip(&c, &a));
    /* one level too deep */
    struct kv_op deeper = {.kind = KV_OP_TXN};
    struct kv_txn_req leaf = {0};
    deeper.u.txn = &leaf;
    ops[ASPEN_MAX_TXN_DEPTH - 1][2] = deeper;
    levels[ASPEN_MAX_TXN_DEPTH - 1].n_success = 3;
    struct buf b;
    buf_init(&b, ASPEN_MAX_REQUEST_BYTES);
    CHECK_ERR(kv_cmd_encode(&c, &b), ASPEN_E_TOO_LARGE);
    CHECK_EQ(b.len, 0);
    /* too many ops in all levels together */
    struct kv_op many[ASPEN_MAX_TXN_OPS + 1];
    for (size_t i = 0; i <= ASPEN_MAX_TXN_OPS; i++) {
        many[i] = (struct kv_op){.kind = KV_OP_DELETE};
        many[i].u.del.key = S("x");
    }
    c.u.txn = (struct kv_txn_req){.success = many, .n_success = ASPEN_MAX_TXN_OPS};
    CHECK(cmd_roundtrip(&c, &a));
    c.u.txn.n_success = ASPEN_MAX_TXN_OPS + 1;
    CHECK_ERR(kv_cmd_encode(&c, &b), ASPEN_E_TOO_LARGE);
    c.u.txn =
        (struct kv_txn_req){.success = many, .n_success = 100, .failure = many, .n_failure = 29};
    CHECK_ERR(kv_cmd_encode(&c, &b), ASPEN_E_TOO_LARGE);
    /* invalid */
    c.kind = KV_CMD_PUT;
    c.u.put = (struct kv_put_req){.key = slice_make(NULL, 0)};
    CHECK_ERR(kv_cmd_encode(&c, &b), ASPEN_E_INVALID);
    c.u.put = (struct kv_put_req){.key = S("k"), .lease = 3, .ignore_lease = true};
    CHECK_ERR(kv_cmd_encode(&c, &b), ASPEN_E_INVALID);
    c.kind = 99;
    CHECK_ERR(kv_cmd_encode(&c, &b), ASPEN_E_INVALID);
    c.kind = KV_CMD_COMPACT;
    c.u.compact.revision = 0;
    CHECK_ERR(kv_cmd_encode(&c, &b), ASPEN_E_INVALID);
    /* decoder: bad magic, trailing bytes, non-canonical varint */
    struct kv_cmd d;
    uint8_t noop[3] = {0xA1, KV_CMD_NOOP, 0};
    CHECK_OK(kv_cmd_decode(slice_make(noop, 2), &a, &d));
    CHECK_ERR(kv_cmd_decode(slice_make(noop, 3), &a, &d), ASPEN_E_MALFORMED);
    noop[0] = 0xA2;
    CHECK_ERR(kv_cmd_decode(slice_make(noop, 2), &a, &d), ASPEN_E_MALFORMED);
    uint8_t compact[4] = {0xA1, KV_CMD_COMPACT, 0x82, 0x00};
    CHECK_ERR(kv_cmd_decode(slice_make(compact, 4), &a, &d), ASPEN_E_MALFORMED);
    compact[3] = 0x01;
    CHECK_OK(kv_cmd_decode(slice_make(compact, 4), &a, &d));
    CHECK_EQ(d.u.compact.revision, 65); /* zigzag(65) = 130 */
    buf_release(&b);
    arena_release(&a);
}

static void test_prefix_end(void)
{
    struct arena a;
    arena_init(&a, 4096, 1u << 20);
    struct slice e = kv_prefix_end(S("ab"), &a);
    CHECK(slice_eq(e, S("ac")));
    e = kv_prefix_end(slice_make("a\xff\xff", 3), &a);
    CHECK(slice_eq(e, S("b")));
    e = kv_prefix_end(slice_make("\xff", 1), &a);
    CHECK(slice_eq(e, slice_make("\0", 1)));
    CHECK(kv_in_range(S("b"), S("a"), slice_make("\0", 1)));
    CHECK(!kv_in_range(S("a"), S("b"), slice_make("\0", 1)));
    CHECK(kv_in_range(S("a"), S("a"), slice_make(NULL, 0)));
    CHECK(!kv_in_range(S("ab"), S("a"), slice_make(NULL, 0)));
    CHECK(!kv_in_range(S("c"), S("a"), S("c")));
    arena_release(&a);
}

static const struct test_case tests[] = {
    TEST(test_put_revisions),        TEST(test_delete),
    TEST(test_delete_from_key),      TEST(test_range_sort),
    TEST(test_range_limit_filters),  TEST(test_range_revisions),
    TEST(test_txn_compares),         TEST(test_txn_writes),
    TEST(test_txn_validation),       TEST(test_apply_entries),
    TEST(test_apply_order_asserted), TEST(test_cmd_codec),
    TEST(test_prefix_end),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("kv", tests);
}
