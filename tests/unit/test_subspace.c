/*
 * Subspaces: keys packed under a prefix unpack again, a subspace's range holds exactly
 * the keys that extend a given tuple under it, foreign keys are refused, and
 * allocation failures leave nothing behind.
 */
#include "test.h"

#include "base/buf.h"
#include "base/mem.h"
#include "base/rand.h"
#include "base/subspace.h"
#include "base/tuple.h"

#include <stdlib.h>

#define MAX_KEY 4096

static struct slice lit(const char *s)
{
    return slice_str(s);
}

static void test_raw_prefix_round_trip(void)
{
    struct subspace s;
    CHECK_OK(subspace_init_raw(&s, slice_make("\x15\x07p", 3)));
    struct tuple_item items[3] = {tuple_string(lit("user")), tuple_i64(-42), tuple_null()};
    struct buf key;
    buf_init(&key, MAX_KEY);
    int rc = subspace_pack(&s, items, 3, &key);
    struct arena a;
    arena_init(&a, 1024, 1 << 20);
    struct tuple_item *got = NULL;
    size_t n = 0;
    int urc = subspace_unpack(&s, buf_slice(&key), &a, &got, &n);
    bool same = urc == 0 && tuple_cmp(got, n, items, 3) == 0;
    bool prefixed = key.len > 3 && memcmp(key.data, "\x15\x07p", 3) == 0;
    bool contains = subspace_contains(&s, buf_slice(&key));
    arena_release(&a);
    buf_release(&key);
    subspace_release(&s);
    CHECK_OK(rc);
    CHECK_OK(urc);
    CHECK(same && prefixed && contains);
}

static void test_tuple_prefix_and_nesting(void)
{
    struct tuple_item top = tuple_string(lit("users"));
    struct tuple_item id = tuple_i64(7);
    struct subspace users, user7;
    CHECK_OK(subspace_init_tuple(&users, &top, 1));
    CHECK_OK(subspace_sub(&users, &id, 1, &user7));
    /* The child's prefix is the parent's followed by pack((7,)). */
    struct slice want = slice_make("\x02users\x00\x15\x07", 9);
    bool prefix_ok = slice_eq(subspace_key(&user7), want);

    struct tuple_item field = tuple_string(lit("name"));
    struct buf key;
    buf_init(&key, MAX_KEY);
    int rc = subspace_pack(&user7, &field, 1, &key);
    /* Unpacked through the parent, the key is the whole tuple ("users" omitted). */
    struct arena a;
    arena_init(&a, 1024, 1 << 20);
    struct tuple_item *got = NULL;
    size_t n = 0;
    int urc = subspace_unpack(&users, buf_slice(&key), &a, &got, &n);
    struct tuple_item whole[2] = {id, field};
    bool same = urc == 0 && tuple_cmp(got, n, whole, 2) == 0;
    bool in_both =
        subspace_contains(&users, buf_slice(&key)) && subspace_contains(&user7, buf_slice(&key));
    arena_release(&a);
    buf_release(&key);
    subspace_release(&user7);
    subspace_release(&users);
    CHECK(prefix_ok);
    CHECK_OK(rc);
    CHECK_OK(urc);
    CHECK(same && in_both);
}

static void test_foreign_keys(void)
{
    struct tuple_item top = tuple_string(lit("users"));
    struct subspace s;
    CHECK_OK(subspace_init_tuple(&s, &top, 1));
    struct arena a;
    arena_init(&a, 1024, 1 << 20);
    struct tuple_item *got = NULL;
    size_t n = 0;
    int rc_other = subspace_unpack(&s, slice_make("\x02usert\x00\x14", 8), &a, &got, &n);
    int rc_short = subspace_unpack(&s, slice_make("\x02user", 5), &a, &got, &n);
    int rc_empty = subspace_unpack(&s, slice_make(NULL, 0), &a, &got, &n);
    bool contains_other = subspace_contains(&s, slice_make("\x02usert\x00", 7));
    /* The prefix alone is in the subspace and unpacks to the empty tuple. */
    int rc_self = subspace_unpack(&s, subspace_key(&s), &a, &got, &n);
    size_t self_n = n;
    /* A key with the prefix but a malformed tail reports the decoding error. */
    int rc_bad = subspace_unpack(&s, slice_make("\x02users\x00\x03", 8), &a, &got, &n);
    arena_release(&a);
    subspace_release(&s);
    CHECK_ERR(rc_other, ASPEN_E_INVALID);
    CHECK_ERR(rc_short, ASPEN_E_INVALID);
    CHECK_ERR(rc_empty, ASPEN_E_INVALID);
    CHECK(!contains_other);
    CHECK_OK(rc_self);
    CHECK_EQ(self_n, 0);
    CHECK_ERR(rc_bad, ASPEN_E_MALFORMED);
}

/* Small value domain so random tuples often share prefixes with the range's tuple. */
static struct tuple_item small_item(struct rng *r)
{
    static const char *const strs[] = {"", "a", "b"};
    switch (rng_below(r, 5)) {
    case 0:
        return tuple_null();
    case 1:
        return tuple_string(lit(strs[rng_below(r, 3)]));
    case 2:
        return tuple_bytes(slice_make("\0", rng_below(r, 2)));
    default:
        return tuple_i64((int64_t)rng_below(r, 3) - 1);
    }
}

/* For random keys k under the subspace: begin <= k < end exactly when k's tuple
 * extends the range's tuple by at least one item. */
static void test_range_bounds(void)
{
    struct rng r;
    rng_seed(&r, test_seed());
    struct tuple_item top = tuple_string(lit("t"));
    struct subspace s, sibling;
    CHECK_OK(subspace_init_tuple(&s, &top, 1));
    struct tuple_item sib = tuple_string(lit("u"));
    CHECK_OK(subspace_init_tuple(&sibling, &sib, 1));
    struct buf begin, end, key;
    buf_init(&begin, MAX_KEY);
    buf_init(&end, MAX_KEY);
    buf_init(&key, MAX_KEY);
    uint64_t inside = 0, outside = 0, bad = UINT64_MAX;
    for (uint64_t i = 0; i < test_iters(20000) && bad == UINT64_MAX; i++) {
        struct tuple_item p[2], k[4];
        size_t np = (size_t)rng_below(&r, 3), nk = (size_t)rng_below(&r, 5);
        for (size_t j = 0; j < np; j++)
            p[j] = small_item(&r);
        for (size_t j = 0; j < nk; j++)
            k[j] = j < np && rng_ratio(&r, 3, 4) ? p[j] : small_item(&r);
        buf_clear(&begin);
        buf_clear(&end);
        buf_clear(&key);
        struct subspace *owner = rng_ratio(&r, 1, 10) ? &sibling : &s;
        if (subspace_range(&s, p, np, &begin, &end) || subspace_pack(owner, k, nk, &key))
            abort();
        bool want = owner == &s && nk > np && tuple_cmp(k, np, p, np) == 0;
        bool got = slice_cmp(buf_slice(&begin), buf_slice(&key)) <= 0 &&
                   slice_cmp(buf_slice(&key), buf_slice(&end)) < 0;
        if (got != want || subspace_contains(&s, buf_slice(&key)) != (owner == &s))
            bad = i;
        inside += want;
        outside += !want;
    }
    buf_release(&key);
    buf_release(&end);
    buf_release(&begin);
    subspace_release(&sibling);
    subspace_release(&s);
    CHECK_MSG(bad == UINT64_MAX, "range membership wrong at iteration %" PRIu64, bad);
    CHECK(inside > 1000 && outside > 1000);
}

static void test_range_bytes(void)
{
    struct subspace s;
    CHECK_OK(subspace_init_raw(&s, slice_make("P", 1)));
    struct tuple_item one = tuple_i64(1);
    struct buf begin, end;
    buf_init(&begin, MAX_KEY);
    buf_init(&end, 3); /* "P" 15 01 fits, the 0xff does not */
    CHECK_OK(buf_append(&begin, "x", 1));
    int rc_small = subspace_range(&s, &one, 1, &begin, &end);
    size_t lens_after_fail = begin.len * 100 + end.len;
    buf_release(&end);
    buf_init(&end, MAX_KEY);
    buf_clear(&begin);
    int rc = subspace_range(&s, &one, 1, &begin, &end);
    bool ok = rc == 0 && slice_eq(buf_slice(&begin), slice_make("P\x15\x01\x00", 4)) &&
              slice_eq(buf_slice(&end), slice_make("P\x15\x01\xff", 4));
    buf_release(&end);
    buf_release(&begin);
    subspace_release(&s);
    CHECK_ERR(rc_small, ASPEN_E_TOO_LARGE);
    CHECK_EQ(lens_after_fail, 100); /* both restored: begin "x", end empty */
    CHECK_OK(rc);
    CHECK(ok);
}

static void test_empty_and_limits(void)
{
    struct subspace s;
    CHECK_OK(subspace_init_raw(&s, slice_make(NULL, 0)));
    struct tuple_item z = tuple_i64(0);
    struct buf key;
    buf_init(&key, MAX_KEY);
    int rc = subspace_pack(&s, &z, 1, &key);
    bool ok = rc == 0 && key.len == 1 && key.data[0] == 0x14 &&
              subspace_contains(&s, slice_make(NULL, 0)) && s.prefix != NULL;
    buf_release(&key);
    subspace_release(&s);
    subspace_release(&s); /* safe twice */
    CHECK(ok);

    static uint8_t big[ASPEN_SUBSPACE_MAX_PREFIX_BYTES + 1];
    CHECK_ERR(subspace_init_raw(&s, slice_make(big, sizeof(big))), ASPEN_E_TOO_LARGE);
    CHECK(s.prefix == NULL);
    CHECK_ERR(subspace_init_raw(&s, slice_make(NULL, 1)), ASPEN_E_INVALID);
    struct tuple_item blob = tuple_bytes(slice_make(big, ASPEN_SUBSPACE_MAX_PREFIX_BYTES));
    CHECK_ERR(subspace_init_tuple(&s, &blob, 1), ASPEN_E_TOO_LARGE);
    struct tuple_item bad = tuple_string(slice_make("\xff", 1));
    CHECK_ERR(subspace_init_tuple(&s, &bad, 1), ASPEN_E_INVALID);
    CHECK(s.prefix == NULL);
}

static void test_alloc_failure(void)
{
    struct tuple_item top[2] = {tuple_string(lit("alloc")), tuple_i64(99)};
    struct tuple_item more = tuple_bytes(slice_make("xyz", 3));
    unsigned failures = 0;
    bool done = false;
    for (uint64_t k = 1; k < 50 && !done; k++) {
        struct subspace s = {0}, child = {0};
        struct buf begin, end;
        buf_init(&begin, MAX_KEY);
        buf_init(&end, MAX_KEY);
        mem_fail_at(k, 1);
        int rc = subspace_init_tuple(&s, top, 2);
        if (rc == 0)
            rc = subspace_sub(&s, &more, 1, &child);
        if (rc == 0)
            rc = subspace_range(&child, &more, 1, &begin, &end);
        mem_fail_at(0, 0);
        bool ok = rc == 0 && begin.len == end.len && begin.len == child.len + 6;
        buf_release(&end);
        buf_release(&begin);
        subspace_release(&child);
        subspace_release(&s);
        if (rc == 0) {
            CHECK(ok);
            done = true;
        } else {
            CHECK_ERR(rc, ASPEN_E_NOMEM);
            failures++;
        }
    }
    CHECK(done);
    CHECK(failures >= 3);
}

static const struct test_case tests[] = {
    TEST(test_raw_prefix_round_trip), TEST(test_tuple_prefix_and_nesting),
    TEST(test_foreign_keys),          TEST(test_range_bounds),
    TEST(test_range_bytes),           TEST(test_empty_and_limits),
    TEST(test_alloc_failure),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("subspace", tests);
}
