/*
 * Hybrid logical clock: strictly increasing per node across wall-clock steps backwards
 * and equal readings, causality across nodes with skewed clocks, refusal of remote
 * timestamps too far ahead, logical-counter overflow, total order and its encoding.
 */
#include "test.h"

#include "base/clock.h"
#include "base/constants.h"
#include "base/hlc.h"
#include "base/rand.h"

#define SEC UINT64_C(1000000000)
#define T0  (UINT64_C(1700000000) * SEC)

static void test_node_id_is_stable(void)
{
    /* Pinned against `b3sum --derive-key "aspen 2026-11-21 hlc node id v1" --length 8`:
     * node ids end up persisted inside timestamps, so they must never change. */
    const char *key = "node-key-A-32-bytes-for-testing!";
    CHECK_EQ_U64(hlc_node_id_from_key((const uint8_t *)key, 32), 0x1862e8d0ba51144cULL);
    CHECK_EQ_U64(hlc_node_id_from_key(NULL, 0), 0x8c43f0941dbe8bf1ULL);
}

static void test_now_follows_wall_clock(void)
{
    struct manual_clock mc;
    manual_clock_init(&mc, 0, T0);
    struct hlc h;
    hlc_init(&h, &mc.iface, 7, ASPEN_HLC_MAX_DRIFT_NS);
    struct hlc_ts a = hlc_now(&h);
    CHECK_EQ_U64(a.wall_ns, T0);
    CHECK_EQ(a.logical, 0);
    CHECK_EQ_U64(a.node_id, 7);
    manual_clock_advance(&mc, 5);
    struct hlc_ts b = hlc_now(&h);
    CHECK_EQ_U64(b.wall_ns, T0 + 5);
    CHECK_EQ(b.logical, 0);
}

static void test_equal_wall_readings_still_increase(void)
{
    struct manual_clock mc;
    manual_clock_init(&mc, 0, T0);
    struct hlc h;
    hlc_init(&h, &mc.iface, 1, ASPEN_HLC_MAX_DRIFT_NS);
    struct hlc_ts prev = hlc_now(&h);
    for (uint32_t i = 1; i <= 1000; i++) {
        struct hlc_ts t = hlc_now(&h);
        CHECK(hlc_ts_cmp(prev, t) < 0);
        CHECK_EQ(t.logical, i);
        prev = t;
    }
}

static void test_wall_clock_steps_backwards(void)
{
    struct manual_clock mc;
    manual_clock_init(&mc, 0, T0);
    struct hlc h;
    hlc_init(&h, &mc.iface, 1, ASPEN_HLC_MAX_DRIFT_NS);
    struct hlc_ts prev = hlc_now(&h);
    manual_clock_set_wall(&mc, T0 - 3600 * SEC); /* an NTP step back by an hour */
    for (int i = 0; i < 100; i++) {
        struct hlc_ts t = hlc_now(&h);
        CHECK(hlc_ts_cmp(prev, t) < 0);
        CHECK_EQ_U64(t.wall_ns, T0); /* holds the highest wall time seen */
        prev = t;
        manual_clock_advance(&mc, SEC);
    }
    manual_clock_set_wall(&mc, T0 + 1);
    struct hlc_ts t = hlc_now(&h);
    CHECK_EQ_U64(t.wall_ns, T0 + 1);
    CHECK_EQ(t.logical, 0); /* caught up: the counter resets */
}

static void test_logical_overflow_spills_into_wall(void)
{
    struct manual_clock mc;
    manual_clock_init(&mc, 0, T0);
    struct hlc h;
    hlc_init(&h, &mc.iface, 1, ASPEN_HLC_MAX_DRIFT_NS);
    h.last = (struct hlc_ts){.wall_ns = T0, .logical = UINT32_MAX, .node_id = 1};
    struct hlc_ts t = hlc_now(&h);
    CHECK_EQ_U64(t.wall_ns, T0 + 1);
    CHECK_EQ(t.logical, 0);
    /* Same on receive. */
    h.last = (struct hlc_ts){.wall_ns = T0, .logical = 0, .node_id = 1};
    struct hlc_ts remote = {.wall_ns = T0, .logical = UINT32_MAX, .node_id = 2};
    CHECK_OK(hlc_update(&h, remote, &t));
    CHECK(hlc_ts_cmp(remote, t) < 0);
    CHECK_EQ_U64(t.wall_ns, T0 + 1);
}

static void test_update_cases(void)
{
    struct manual_clock mc;
    manual_clock_init(&mc, 0, T0);
    struct hlc h;
    hlc_init(&h, &mc.iface, 1, ASPEN_HLC_MAX_DRIFT_NS);
    struct hlc_ts t, local = hlc_now(&h); /* (T0, 0) */

    /* Remote ahead (within the drift bound): adopt its wall time, logical + 1. */
    struct hlc_ts remote = {.wall_ns = T0 + 1000, .logical = 4, .node_id = 2};
    CHECK_OK(hlc_update(&h, remote, &t));
    CHECK(t.wall_ns == T0 + 1000 && t.logical == 5);
    CHECK(hlc_ts_cmp(local, t) < 0 && hlc_ts_cmp(remote, t) < 0);

    /* Remote equal in wall time: max of both counters + 1. */
    remote = (struct hlc_ts){.wall_ns = T0 + 1000, .logical = 9, .node_id = 2};
    CHECK_OK(hlc_update(&h, remote, &t));
    CHECK(t.wall_ns == T0 + 1000 && t.logical == 10);

    /* Remote behind: our own counter + 1. */
    remote = (struct hlc_ts){.wall_ns = T0 - 50, .logical = 99, .node_id = 2};
    CHECK_OK(hlc_update(&h, remote, &t));
    CHECK(t.wall_ns == T0 + 1000 && t.logical == 11);

    /* Physical clock ahead of both: take it, counter 0. */
    manual_clock_advance(&mc, SEC);
    CHECK_OK(hlc_update(&h, remote, &t));
    CHECK(t.wall_ns == T0 + SEC && t.logical == 0);
}

static void test_refuses_remote_too_far_ahead(void)
{
    struct manual_clock mc;
    manual_clock_init(&mc, 0, T0);
    struct hlc h;
    hlc_init(&h, &mc.iface, 1, ASPEN_HLC_MAX_DRIFT_NS);
    struct hlc_ts before = hlc_now(&h), t = {0};
    struct hlc_ts far = {.wall_ns = T0 + ASPEN_HLC_MAX_DRIFT_NS + 1, .logical = 0, .node_id = 2};
    CHECK_ERR(hlc_update(&h, far, &t), ASPEN_E_CLOCK_DRIFT);
    CHECK(hlc_ts_cmp(h.last, before) == 0); /* unchanged */
    /* At the bound with a saturated counter, accepting would spill 1 ns past it. */
    struct hlc_ts spill = {
        .wall_ns = T0 + ASPEN_HLC_MAX_DRIFT_NS, .logical = UINT32_MAX, .node_id = 2};
    CHECK_ERR(hlc_update(&h, spill, &t), ASPEN_E_CLOCK_DRIFT);
    CHECK(hlc_ts_cmp(h.last, before) == 0);
    struct hlc_ts edge = {.wall_ns = T0 + ASPEN_HLC_MAX_DRIFT_NS, .logical = 0, .node_id = 2};
    CHECK_OK(hlc_update(&h, edge, &t));
    CHECK_EQ_U64(t.wall_ns, T0 + ASPEN_HLC_MAX_DRIFT_NS);
}

/* Three nodes whose clocks are skewed (0, 100, 200 ms) and occasionally glitch back by
 * up to 150 ms exchange messages in a random order: every receive event is later than
 * its send, and each node's timestamps strictly increase. The skews and glitches stay
 * inside the drift bound, so every message must be accepted — a test that mostly
 * exercised refusals would prove nothing. */
static void test_causality_across_skewed_nodes(void)
{
    enum { NODES = 3, MSGS = 64 };
    const uint64_t ms = 1000 * 1000;
    struct manual_clock clocks[NODES];
    struct hlc h[NODES];
    struct hlc_ts last[NODES];
    uint64_t glitch[NODES] = {0};
    uint64_t true_time = T0;
    struct rng r;
    rng_seed(&r, test_seed());
    for (int i = 0; i < NODES; i++) {
        manual_clock_init(&clocks[i], 0, true_time + (uint64_t)i * 100 * ms);
        hlc_init(&h[i], &clocks[i].iface, (uint64_t)i + 1, ASPEN_HLC_MAX_DRIFT_NS);
        last[i] = hlc_now(&h[i]);
    }
    struct {
        struct hlc_ts ts;
        int to;
    } inflight[MSGS];
    int n = 0;
    uint64_t received = 0, steps_back = 0;
    for (uint64_t step = 0; step < test_iters(20000); step++) {
        true_time += rng_below(&r, 2 * ms);
        for (int i = 0; i < NODES; i++) {
            if (glitch[i] == 0 && rng_ratio(&r, 1, 200)) {
                glitch[i] = 1 + rng_below(&r, 150 * ms);
                steps_back++;
            } else if (glitch[i] != 0 && rng_ratio(&r, 1, 20)) {
                glitch[i] = 0; /* NTP corrects the clock again */
            }
            manual_clock_set_wall(&clocks[i], true_time + (uint64_t)i * 100 * ms - glitch[i]);
        }
        int node = (int)rng_below(&r, NODES);
        struct hlc_ts t;
        if (n > 0 && rng_ratio(&r, 1, 2)) {
            int k = (int)rng_below(&r, (uint64_t)n);
            int to = inflight[k].to;
            struct hlc_ts sent = inflight[k].ts;
            inflight[k] = inflight[--n];
            CHECK_OK(hlc_update(&h[to], sent, &t));
            CHECK(hlc_ts_cmp(sent, t) < 0);
            CHECK(hlc_ts_cmp(last[to], t) < 0);
            last[to] = t;
            received++;
        } else if (n < MSGS) {
            t = hlc_now(&h[node]);
            CHECK(hlc_ts_cmp(last[node], t) < 0);
            last[node] = t;
            inflight[n].ts = t;
            inflight[n].to = (node + 1 + (int)rng_below(&r, NODES - 1)) % NODES;
            n++;
        }
    }
    CHECK_MSG(received > test_iters(20000) / 3, "only %" PRIu64 " receives", received);
    CHECK(steps_back > 100);
}

static void test_total_order_and_encoding(void)
{
    struct rng r;
    rng_seed(&r, test_seed());
    for (int i = 0; i < 100000; i++) {
        /* Small value ranges so that equal fields (and ties) are common. */
        struct hlc_ts a = {rng_below(&r, 3) << 40, (uint32_t)rng_below(&r, 3), rng_below(&r, 3)};
        struct hlc_ts b = {rng_below(&r, 3) << 40, (uint32_t)rng_below(&r, 3), rng_below(&r, 3)};
        if (rng_ratio(&r, 1, 4))
            a.logical = UINT32_MAX, a.node_id = UINT64_MAX - rng_below(&r, 2);
        uint8_t ea[HLC_TS_BYTES], eb[HLC_TS_BYTES];
        hlc_ts_encode(a, ea);
        hlc_ts_encode(b, eb);
        int c = hlc_ts_cmp(a, b), m = memcmp(ea, eb, HLC_TS_BYTES);
        CHECK((c < 0) == (m < 0) && (c == 0) == (m == 0));
        CHECK(hlc_ts_cmp(b, a) == -c);
        CHECK(hlc_ts_cmp(hlc_ts_decode(ea), a) == 0);
    }
}

static const struct test_case tests[] = {
    TEST(test_node_id_is_stable),
    TEST(test_now_follows_wall_clock),
    TEST(test_equal_wall_readings_still_increase),
    TEST(test_wall_clock_steps_backwards),
    TEST(test_logical_overflow_spills_into_wall),
    TEST(test_update_cases),
    TEST(test_refuses_remote_too_far_ahead),
    TEST(test_causality_across_skewed_nodes),
    TEST(test_total_order_and_encoding),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("hlc", tests);
}
