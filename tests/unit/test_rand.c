/*
 * PRNG: the sequence is pinned to golden values (computed by an independent
 * implementation and, for splitmix64, the published reference output) so it can never
 * drift between runs, compilers or machines; the bounded helpers are unbiased and stay
 * in range.
 */
#include "test.h"

#include "base/rand.h"

static void test_splitmix64_reference(void)
{
    uint64_t st = 0;
    CHECK_EQ_U64(splitmix64_next(&st), 0xe220a8397b1dcdafULL);
    CHECK_EQ_U64(splitmix64_next(&st), 0x6e789e6aa1b965f4ULL);
    CHECK_EQ_U64(splitmix64_next(&st), 0x06c45d188009454fULL);
}

static void test_xoshiro_from_raw_state(void)
{
    struct rng r = {.s = {1, 2, 3, 4}};
    static const uint64_t want[] = {0x2d00, 0x0, 0x5a007080, 0x10e0000000009d80ULL,
                                    0x10e0b61ce1009d80ULL};
    for (size_t i = 0; i < 5; i++)
        CHECK_EQ_U64(rng_next(&r), want[i]);
}

static void test_seeded_sequence_is_pinned(void)
{
    struct rng r;
    rng_seed(&r, 42);
    CHECK_EQ_U64(rng_next(&r), 0x15780b2e0c2ec716ULL);
    CHECK_EQ_U64(rng_next(&r), 0x6104d9866d113a7eULL);
    CHECK_EQ_U64(rng_next(&r), 0xae17533239e499a1ULL);
    CHECK_EQ_U64(rng_next(&r), 0xecb8ad4703b360a1ULL);
}

static void test_same_seed_same_stream(void)
{
    struct rng a, b;
    rng_seed(&a, test_seed());
    rng_seed(&b, test_seed());
    for (int i = 0; i < 10000; i++)
        CHECK_EQ_U64(rng_next(&a), rng_next(&b));
    rng_seed(&b, test_seed() + 1);
    int same = 0;
    for (int i = 0; i < 100; i++)
        same += rng_next(&a) == rng_next(&b);
    CHECK(same == 0);
}

static void test_below_in_range_and_unbiased(void)
{
    struct rng r;
    rng_seed(&r, test_seed());
    /* Each of 6 buckets should get n/6 draws; with n = 600,000 a bucket off by more
     * than 1% would be a ~6-sigma event for a correct generator. */
    enum { N = 600000, K = 6 };
    unsigned counts[K] = {0};
    for (int i = 0; i < N; i++) {
        uint64_t v = rng_below(&r, K);
        CHECK(v < K);
        counts[v]++;
    }
    for (int k = 0; k < K; k++)
        CHECK_MSG(counts[k] > N / K * 99 / 100 && counts[k] < N / K * 101 / 100,
                  "bucket %d has %u of %d", k, counts[k], N);
    CHECK_EQ_U64(rng_below(&r, 1), 0);
    /* With bound = 3 * 2^62, a multiply-shift without the rejection step maps two raw
     * values onto every v with v % 3 == 0 and one onto the others: those v would come up
     * half the time instead of a third. */
    unsigned zero_mod3 = 0;
    for (int i = 0; i < 30000; i++)
        zero_mod3 += rng_below(&r, 3ULL << 62) % 3 == 0;
    CHECK_MSG(zero_mod3 > 9400 && zero_mod3 < 10600, "%u of 30000 draws are 0 mod 3", zero_mod3);
    /* A bound just above 2^63 rejects almost half the raw draws: still in range. */
    for (int i = 0; i < 1000; i++)
        CHECK(rng_below(&r, (1ULL << 63) + 1) <= (1ULL << 63));
}

static void test_range_ratio_double(void)
{
    struct rng r;
    rng_seed(&r, test_seed());
    for (int i = 0; i < 10000; i++) {
        uint64_t v = rng_range(&r, 10, 20);
        CHECK(v >= 10 && v <= 20);
        double d = rng_double(&r);
        CHECK(d >= 0.0 && d < 1.0);
    }
    (void)rng_range(&r, 0, UINT64_MAX);
    CHECK_EQ_U64(rng_range(&r, 7, 7), 7);
    int hits = 0;
    for (int i = 0; i < 100000; i++)
        hits += rng_ratio(&r, 1, 4);
    CHECK(hits > 24000 && hits < 26000);
    CHECK(!rng_ratio(&r, 0, 5));
    CHECK(rng_ratio(&r, 5, 5));
}

static void test_fill_is_byte_order_independent(void)
{
    struct rng a, b;
    rng_seed(&a, 42);
    rng_seed(&b, 42);
    uint8_t buf[11];
    rng_fill(&a, buf, sizeof(buf));
    uint64_t w0 = rng_next(&b), w1 = rng_next(&b);
    for (int i = 0; i < 8; i++)
        CHECK_EQ(buf[i], (uint8_t)(w0 >> (8 * i)));
    for (int i = 0; i < 3; i++)
        CHECK_EQ(buf[8 + i], (uint8_t)(w1 >> (8 * i)));
}

static void test_split_streams_differ(void)
{
    struct rng parent, c1, c2;
    rng_seed(&parent, test_seed());
    rng_split(&parent, &c1);
    rng_split(&parent, &c2);
    int same = 0;
    for (int i = 0; i < 100; i++)
        same += rng_next(&c1) == rng_next(&c2);
    CHECK(same == 0);
}

static void test_os_seed_and_interface(void)
{
    uint64_t a = 0, b = 0;
    CHECK_OK(rng_os_seed(&a));
    CHECK_OK(rng_os_seed(&b));
    CHECK(a != b);
    struct rng r1, r2;
    rng_seed(&r1, 9);
    rng_seed(&r2, 9);
    struct aspen_random src = rng_as_random(&r1);
    CHECK_EQ_U64(src.next_u64(src.ctx), rng_next(&r2));
}

static const struct test_case tests[] = {
    TEST(test_splitmix64_reference),           TEST(test_xoshiro_from_raw_state),
    TEST(test_seeded_sequence_is_pinned),      TEST(test_same_seed_same_stream),
    TEST(test_below_in_range_and_unbiased),    TEST(test_range_ratio_double),
    TEST(test_fill_is_byte_order_independent), TEST(test_split_streams_differ),
    TEST(test_os_seed_and_interface),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("rand", tests);
}
