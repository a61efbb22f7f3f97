/*
 * Unit tests of the simulator's building blocks: the event heap's order, the network's
 * partition shapes and fault accounting, the disk's write ordering and crash semantics
 * (a prefix of pending writes lands, never a torn one; the persistence contract is
 * enforced), the KV model's apply/snapshot/restore and the packet copies.
 */
#include "test.h"

#include "base/mem.h"
#include "base/rand.h"
#include "sim/disk.h"
#include "sim/heap.h"
#include "sim/model.h"
#include "sim/net.h"
#include "sim/packet.h"

#include <string.h>

/* ---- heap ---- */

static void test_heap_orders_by_time_then_push_order(void)
{
    struct sim_heap h;
    heap_init(&h, 100000);
    struct rng r;
    rng_seed(&r, test_seed());
    enum { N = 20000 };
    for (uint64_t i = 0; i < N; i++) {
        /* Few distinct times, so ties are common and the sequence must break them. */
        struct sim_event ev = {.time_ns = rng_below(&r, 50), .a = i};
        CHECK_OK(heap_push(&h, &ev));
    }
    struct sim_event prev = {0}, ev;
    size_t n = 0;
    while (heap_pop(&h, &ev)) {
        if (n > 0) {
            CHECK(ev.time_ns >= prev.time_ns);
            if (ev.time_ns == prev.time_ns)
                CHECK(ev.seq > prev.seq && ev.a > prev.a); /* FIFO among equals */
        }
        prev = ev;
        n++;
    }
    CHECK_EQ(n, N);
    heap_release(&h, NULL);
}

static int freed_count;
static void count_free(struct sim_event *ev)
{
    mem_free(ev->ptr);
    freed_count++;
}

static void test_heap_bounded_and_release_frees_payloads(void)
{
    struct sim_heap h;
    heap_init(&h, 3);
    for (int i = 0; i < 3; i++)
        CHECK_OK(heap_push(&h, &(struct sim_event){.time_ns = 5, .ptr = mem_alloc(8)}));
    CHECK_ERR(heap_push(&h, &(struct sim_event){.time_ns = 1}), ASPEN_E_FULL);
    freed_count = 0;
    heap_release(&h, count_free);
    CHECK_EQ(freed_count, 3);
}

/* ---- network ---- */

static struct net_params quiet_net(void)
{
    return (struct net_params){.delay_min_ns = 1000, .delay_mean_ns = 5000};
}

static void test_net_delays_within_bounds_and_fifo(void)
{
    struct net_params p = quiet_net();
    p.fifo = true;
    struct net net;
    net_init(&net, &p, test_seed(), 3);
    uint64_t last = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t when[2];
        CHECK_EQ(net_route(&net, 100, 0, 1, when), 1);
        CHECK(when[0] >= 100 + p.delay_min_ns && when[0] <= 100 + 2 * p.delay_mean_ns);
        CHECK(when[0] >= last); /* FIFO: never before an earlier packet */
        last = when[0];
        net_arrived(&net, 0, 1);
    }
}

static void test_net_symmetric_isolation(void)
{
    struct net_params p = quiet_net();
    struct net net;
    net_init(&net, &p, test_seed(), 5);
    struct rng r;
    rng_seed(&r, 1);
    net_partition(&net, NET_PART_LEADER, false, 2, &r);
    for (uint32_t i = 0; i < 5; i++)
        for (uint32_t j = 0; j < 5; j++) {
            bool cut = i != j && (i == 2 || j == 2);
            CHECK(net_link_up(&net, i, j) == !cut);
        }
    uint64_t when[2];
    CHECK_EQ(net_route(&net, 0, 2, 0, when), 0);
    CHECK_EQ(net.stats.partitioned, 1);
    net_heal(&net);
    for (uint32_t i = 0; i < 5; i++)
        for (uint32_t j = 0; j < 5; j++)
            CHECK(net_link_up(&net, i, j));
}

static void test_net_asymmetric_halves_cut_one_way(void)
{
    struct net_params p = quiet_net();
    struct net net;
    net_init(&net, &p, test_seed(), 7);
    struct rng r;
    rng_seed(&r, test_seed());
    for (int round = 0; round < 50; round++) {
        net_partition(&net, NET_PART_HALVES, true, -1, &r);
        uint32_t cut = 0;
        for (uint32_t i = 0; i < 7; i++)
            for (uint32_t j = 0; j < 7; j++) {
                /* Never both directions of a pair. */
                CHECK(net_link_up(&net, i, j) || net_link_up(&net, j, i));
                cut += !net_link_up(&net, i, j);
            }
        CHECK(cut > 0);
    }
}

static void test_net_ring_gives_everyone_a_majority(void)
{
    for (uint32_t n = 3; n <= 9; n++) {
        struct net_params p = quiet_net();
        struct net net;
        net_init(&net, &p, test_seed(), n);
        struct rng r;
        rng_seed(&r, 1);
        net_partition(&net, NET_PART_RING, false, -1, &r);
        bool some_cut = false;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t reach = 0;
            for (uint32_t j = 0; j < n; j++) {
                reach += net_link_up(&net, i, j);
                CHECK(net_link_up(&net, i, j) == net_link_up(&net, j, i));
                some_cut |= !net_link_up(&net, i, j);
            }
            CHECK_MSG(reach >= n / 2 + 1, "n=%u slot %u reaches %u", n, i, reach);
        }
        CHECK(n <= 4 || some_cut); /* from 5 nodes on the ring really cuts something */
    }
}

static void test_net_loss_dup_capacity_and_clog(void)
{
    struct net_params p = quiet_net();
    p.loss_permille = 500;
    p.dup_permille = 500;
    struct net net;
    net_init(&net, &p, test_seed(), 2);
    uint64_t delivered = 0, when[2];
    for (int i = 0; i < 4000; i++) {
        uint32_t k = net_route(&net, 0, 0, 1, when);
        for (uint32_t j = 0; j < k; j++)
            net_arrived(&net, 0, 1);
        delivered += k;
    }
    CHECK(net.stats.lost > 1500 && net.stats.lost < 2500);
    CHECK(net.stats.duplicated > 700 && net.stats.duplicated < 1300);
    CHECK_EQ(delivered, 4000 - net.stats.lost + net.stats.duplicated);

    p = quiet_net();
    p.capacity = 2;
    net_init(&net, &p, test_seed(), 2);
    CHECK_EQ(net_route(&net, 0, 0, 1, when), 1);
    CHECK_EQ(net_route(&net, 0, 0, 1, when), 1);
    CHECK_EQ(net_route(&net, 0, 0, 1, when), 0); /* link full */
    net_arrived(&net, 0, 1);
    CHECK_EQ(net_route(&net, 0, 0, 1, when), 1);

    net_clog(&net, 1, 0, 1000000);
    CHECK_EQ(net_route(&net, 10, 1, 0, when), 1);
    CHECK(when[0] >= 1000000);
    net_calm(&net);
    CHECK_EQ(net_route(&net, 10, 1, 0, when), 1);
    CHECK(when[0] < 1000000);
}

/* ---- model ---- */

static struct raft_entry op_entry(uint8_t *buf, raft_index index, uint8_t kind, uint8_t key,
                                  uint64_t value, uint64_t expect)
{
    struct model_op op = {
        .kind = kind, .key = key, .client = 7, .op_id = index, .value = value, .expect = expect};
    model_op_encode(&op, buf);
    return (struct raft_entry){.term = 1, .index = index, .len = MODEL_OP_BYTES, .data = buf};
}

static void test_model_apply_snapshot_restore(void)
{
    struct model m;
    model_init(&m);
    uint8_t b[MODEL_OP_BYTES];
    struct sm_result res;
    struct raft_entry e = op_entry(b, 1, MODEL_OP_PUT, 1, 10, 0);
    CHECK_OK(model_sm_ops.apply(&m, &e, &res));
    CHECK(res.is_op && res.ok && res.op_id == 1 && res.client == 7);
    e = op_entry(b, 2, MODEL_OP_CAS, 1, 11, 99);
    CHECK_OK(model_sm_ops.apply(&m, &e, &res));
    CHECK(!res.ok);
    e = op_entry(b, 3, MODEL_OP_CAS, 1, 12, 10);
    CHECK_OK(model_sm_ops.apply(&m, &e, &res));
    CHECK(res.ok);
    e = op_entry(b, 4, MODEL_OP_CAS, 2, 13, 0); /* expect absent */
    CHECK_OK(model_sm_ops.apply(&m, &e, &res));
    CHECK(res.ok);
    model_sm_ops.get(&m, 1, &res);
    CHECK_EQ_U64(res.value, 12);
    struct raft_entry noop = {.term = 2, .index = 5};
    CHECK_OK(model_sm_ops.apply(&m, &noop, &res));
    CHECK(!res.is_op);

    struct buf snap;
    buf_init(&snap, 1 << 20);
    CHECK_OK(model_sm_ops.snapshot(&m, &snap));
    struct model m2;
    model_init(&m2);
    CHECK(model_sm_ops.digest(&m2) != model_sm_ops.digest(&m));
    CHECK_OK(model_sm_ops.restore(&m2, snap.data, snap.len));
    CHECK_EQ_U64(model_sm_ops.digest(&m2), model_sm_ops.digest(&m));
    CHECK_ERR(model_sm_ops.restore(&m2, snap.data, snap.len - 1), ASPEN_E_MALFORMED);

    e = op_entry(b, 6, MODEL_OP_DELETE, 1, 0, 0);
    CHECK_OK(model_sm_ops.apply(&m2, &e, &res));
    CHECK(res.ok);
    CHECK_OK(model_sm_ops.apply(&m2, &e, &res));
    CHECK(!res.ok); /* already gone */
    buf_release(&snap);

    b[0] = 'X';
    e = (struct raft_entry){.term = 1, .index = 7, .len = MODEL_OP_BYTES, .data = b};
    CHECK_ERR(model_sm_ops.apply(&m2, &e, &res), ASPEN_E_MALFORMED);
}

/* ---- disk ---- */

static struct disk_write *append_write(raft_index first, size_t n, raft_term term,
                                       uint8_t bufs[][MODEL_OP_BYTES])
{
    struct raft_entry ents[8];
    for (size_t i = 0; i < n; i++)
        ents[i] = op_entry(bufs[i], first + i, MODEL_OP_PUT, 0, first + i, 0);
    for (size_t i = 0; i < n; i++)
        ents[i].term = term;
    struct disk_write *w = mem_calloc(1, sizeof(*w));
    w->entries = disk_entries_dup(ents, n);
    w->n_entries = n;
    w->has_hs = true;
    w->hs = (struct raft_hard_state){.term = term, .vote = 1};
    w->must_persist = true;
    w->persist_index = first + n - 1;
    w->persist_term = term;
    w->needs_sync = true;
    return w;
}

static struct disk_params disk_params(bool lose)
{
    return (struct disk_params){
        .latency_min_ns = 1000, .latency_mean_ns = 2000, .lose_unsynced = lose};
}

static void test_disk_writes_complete_in_order(void)
{
    struct disk d;
    struct disk_params p = disk_params(false);
    p.slow_permille = 500;
    p.slow_factor = 100;
    CHECK_EQ(disk_init(&d, &p, &model_sm_ops, test_seed()), 0);
    uint8_t b[8][MODEL_OP_BYTES];
    uint64_t prev = 0;
    for (raft_index i = 1; i <= 6; i++) {
        struct disk_write *w = append_write(i, 1, 1, b);
        CHECK_OK(disk_submit(&d, w, 10 * i));
        CHECK(w->done_ns >= prev); /* never overtakes an earlier write */
        prev = w->done_ns;
    }
    for (raft_index i = 1; i <= 6; i++) {
        struct disk_write *w;
        CHECK_OK(disk_complete(&d, &w));
        CHECK_EQ(w->persist_index, i);
        CHECK_EQ(disk_log_last(&d.durable.log), i);
        disk_write_free(w);
    }
    struct disk_write *w;
    CHECK_ERR(disk_complete(&d, &w), ASPEN_E_NOT_FOUND);
    disk_release(&d);
}

static void test_disk_crash_lands_a_prefix(void)
{
    uint8_t b[8][MODEL_OP_BYTES];
    bool saw_partial = false;
    for (uint64_t seed = 0; seed < 40; seed++) {
        struct disk d;
        struct disk_params p = disk_params(true);
        CHECK_EQ(disk_init(&d, &p, &model_sm_ops, seed), 0);
        for (raft_index i = 1; i <= 5; i++)
            CHECK_OK(disk_submit(&d, append_write(i, 1, 1, b), 0));
        size_t landed;
        CHECK_OK(disk_crash(&d, &landed));
        CHECK(landed <= 5);
        /* Exactly the first `landed` writes are durable: a prefix, nothing torn. */
        CHECK_EQ(d.durable.log.n, landed);
        CHECK_EQ(d.n, 0);
        CHECK_EQ(d.writes_lost, 5 - landed);
        saw_partial |= landed > 0 && landed < 5;
        struct raft_boot boot;
        disk_boot(&d, &boot);
        CHECK_EQ(boot.n_entries, landed);
        CHECK_EQ(boot.hard_state.term, landed ? 1 : 0);
        disk_release(&d);
    }
    CHECK(saw_partial);

    /* Without lost unsynced writes, everything submitted survives. */
    struct disk d;
    struct disk_params p = disk_params(false);
    CHECK_EQ(disk_init(&d, &p, &model_sm_ops, 1), 0);
    for (raft_index i = 1; i <= 5; i++)
        CHECK_OK(disk_submit(&d, append_write(i, 1, 1, b), 0));
    size_t landed;
    CHECK_OK(disk_crash(&d, &landed));
    CHECK_EQ(landed, 5);
    CHECK_EQ(d.durable.log.n, 5);
    disk_release(&d);
}

static void test_disk_truncate_apply_and_snapshot(void)
{
    struct disk d;
    struct disk_params p = disk_params(false);
    CHECK_EQ(disk_init(&d, &p, &model_sm_ops, 1), 0);
    uint8_t b[8][MODEL_OP_BYTES], c[8][MODEL_OP_BYTES];
    struct disk_write *w;
    CHECK_OK(disk_submit(&d, append_write(1, 4, 1, b), 0));
    CHECK_OK(disk_complete(&d, &w));
    disk_write_free(w);
    /* A new leader's entries replace 3..4; 1..2 are applied in the same write. */
    w = append_write(3, 2, 2, c);
    struct raft_entry applied[2] = {op_entry(b[0], 1, MODEL_OP_PUT, 0, 1, 0),
                                    op_entry(b[1], 2, MODEL_OP_PUT, 0, 2, 0)};
    w->committed = disk_entries_dup(applied, 2);
    w->n_committed = 2;
    CHECK_OK(disk_submit(&d, w, 0));
    CHECK_OK(disk_complete(&d, &w));
    disk_write_free(w);
    CHECK_EQ(d.durable.applied, 2);
    CHECK_EQ(disk_log_at(&d.durable.log, 3)->term, 2);
    CHECK_EQ(disk_log_last(&d.durable.log), 4);

    /* Truncating at or below the applied index breaks the contract. */
    CHECK_OK(disk_submit(&d, append_write(2, 1, 3, c), 0));
    CHECK_ERR(disk_complete(&d, &w), ASPEN_E_INVALID);
    CHECK(strstr(d.error, "truncates applied") != NULL);
    disk_write_free(w);

    /* Applying an entry that is not durable in the log breaks it too (single-fsync
     * rule 2). */
    w = mem_calloc(1, sizeof(*w));
    struct raft_entry far = op_entry(b[2], 3, MODEL_OP_PUT, 0, 3, 0); /* term 1, log has 2 */
    w->committed = disk_entries_dup(&far, 1);
    w->n_committed = 1;
    CHECK_OK(disk_submit(&d, w, 0));
    CHECK_ERR(disk_complete(&d, &w), ASPEN_E_INVALID);
    disk_write_free(w);

    /* Saving a snapshot compacts the log up to it. */
    w = mem_calloc(1, sizeof(*w));
    w->has_save = true;
    w->save = (struct raft_snapshot_meta){.index = 2, .term = 1};
    struct buf blob;
    buf_init(&blob, 1024);
    CHECK_OK(model_sm_ops.snapshot(d.durable.sm, &blob));
    w->save_blob = buf_steal(&blob, &w->save_len);
    CHECK_OK(disk_submit(&d, w, 0));
    CHECK_OK(disk_complete(&d, &w));
    disk_write_free(w);
    CHECK_EQ(d.durable.snap.index, 2);
    CHECK_EQ(d.durable.log.first, 3);
    struct raft_boot boot;
    disk_boot(&d, &boot);
    CHECK_EQ(boot.snapshot.index, 2);
    CHECK_EQ(boot.n_entries, 2);
    CHECK_EQ(boot.entries[0].index, 3);
    CHECK_EQ(boot.applied, 2);
    disk_release(&d);
}

static void test_disk_install_replaces_state(void)
{
    struct disk d;
    struct disk_params p = disk_params(false);
    CHECK_EQ(disk_init(&d, &p, &model_sm_ops, 1), 0);
    uint8_t b[8][MODEL_OP_BYTES];
    struct disk_write *w;
    CHECK_OK(disk_submit(&d, append_write(1, 3, 1, b), 0));
    CHECK_OK(disk_complete(&d, &w));
    disk_write_free(w);

    struct model m;
    model_init(&m);
    m.value[3] = 42;
    struct buf blob;
    buf_init(&blob, 1024);
    CHECK_OK(model_sm_ops.snapshot(&m, &blob));
    w = mem_calloc(1, sizeof(*w));
    w->has_install = true;
    w->install = (struct raft_snapshot_meta){.index = 10, .term = 4};
    w->install_blob = buf_steal(&blob, &w->install_len);
    w->needs_sync = true;
    CHECK_OK(disk_submit(&d, w, 0));
    CHECK_OK(disk_complete(&d, &w));
    disk_write_free(w);
    CHECK_EQ(d.durable.applied, 10);
    CHECK_EQ(d.durable.log.n, 0); /* the old log did not continue the snapshot */
    CHECK_EQ(d.durable.log.first, 11);
    CHECK_EQ_U64(((struct model *)d.durable.sm)->value[3], 42);
    disk_release(&d);
}

/* ---- packets ---- */

static void test_packet_is_an_independent_copy(void)
{
    uint8_t d1[3] = {1, 2, 3}, d2[1] = {9};
    struct raft_entry ents[2] = {{.term = 2, .index = 5, .len = 3, .data = d1},
                                 {.term = 2, .index = 6, .len = 1, .data = d2}};
    struct raft_msg m = {.type = RAFT_MSG_APPEND,
                         .from = 1,
                         .to = 2,
                         .term = 2,
                         .index = 4,
                         .n_entries = 2,
                         .entries = ents,
                         .after_persist = true};
    struct packet *p, *q;
    CHECK_OK(packet_make(&p, &m, NULL, 0));
    d1[0] = 77; /* the sender's log changes after the send */
    CHECK_OK(packet_dup(&q, p));
    packet_free(p);
    struct raft_msg got;
    CHECK_OK(packet_open(q, &got));
    CHECK_EQ(got.n_entries, 2);
    CHECK_EQ(got.entries[0].data[0], 1);
    CHECK_EQ(got.entries[1].data[0], 9);
    CHECK(!got.after_persist);
    CHECK_EQ(packet_to(q), 2);
    packet_free(q);

    uint8_t blob[4] = {4, 3, 2, 1};
    struct raft_msg sm = {.type = RAFT_MSG_SNAPSHOT, .from = 1, .to = 3};
    CHECK_OK(packet_make(&p, &sm, blob, 4));
    size_t len;
    const uint8_t *bp = packet_blob(p, &len);
    CHECK_EQ(len, 4);
    CHECK_MEM_EQ(bp, blob, 4);
    packet_free(p);
}

static const struct test_case tests[] = {
    TEST(test_heap_orders_by_time_then_push_order),
    TEST(test_heap_bounded_and_release_frees_payloads),
    TEST(test_net_delays_within_bounds_and_fifo),
    TEST(test_net_symmetric_isolation),
    TEST(test_net_asymmetric_halves_cut_one_way),
    TEST(test_net_ring_gives_everyone_a_majority),
    TEST(test_net_loss_dup_capacity_and_clog),
    TEST(test_model_apply_snapshot_restore),
    TEST(test_disk_writes_complete_in_order),
    TEST(test_disk_crash_lands_a_prefix),
    TEST(test_disk_truncate_apply_and_snapshot),
    TEST(test_disk_install_replaces_state),
    TEST(test_packet_is_an_independent_copy),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("sim-pieces", tests);
}
