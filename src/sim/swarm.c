/*
 * Per-seed parameters: swarm testing (TigerBeetle's options_swarm, research
 * consensus.md §3.2). Each seed turns on a random subset of the fault kinds, each with a
 * random intensity, and picks its own cluster size, timing and workload shape. Many
 * seeds with different mixes find more bugs than one "everything at medium" mix: some
 * bugs need a quiet network and a crash, others need a storm.
 *
 * Every draw comes from the swarm stream, so the parameters of a seed never depend on
 * what the run does afterwards.
 */
#include "sim/cluster.h"

#include "sim/stream.h"

#define MS (UINT64_C(1000) * 1000)
#define S  (UINT64_C(1000) * MS)

/* True with probability num/den: "is this fault kind enabled for the seed?" */
static bool on(struct rng *r, uint64_t num, uint64_t den)
{
    return rng_ratio(r, num, den);
}

static uint32_t permille(struct rng *r, uint32_t max)
{
    return (uint32_t)rng_range(r, 1, max);
}

void swarm_draw(struct sim_params *p, uint64_t seed, const struct sim_options *opt)
{
    struct rng r;
    sim_stream(&r, seed, SIM_STREAM_SWARM, 0);
    *p = (struct sim_params){0};

    static const uint32_t sizes[] = {1, 3, 3, 3, 5, 5, 5, 7, 7};
    p->nodes = opt->nodes ? opt->nodes : sizes[rng_below(&r, 9)];
    bool members = p->nodes + 2 <= ASPEN_SIM_MAX_NODES && on(&r, 2, 5);
    p->slots = p->nodes + (members ? (uint32_t)rng_range(&r, 1, 2) : 0);

    /* Raft timing: elections of 100-300 ms at 10 ms per tick, heartbeats often enough
     * that several fit in the shortest election timeout (constants.h's 1:3 rule). */
    static const uint32_t elections[] = {10, 15, 20, 30};
    p->election_ticks = elections[rng_below(&r, 4)];
    p->heartbeat_ticks = (uint32_t)rng_range(&r, 1, 3);
    p->pre_vote = on(&r, 4, 5);
    p->check_quorum = on(&r, 4, 5);
    p->lease_reads = opt->lease_reads;
    if (p->lease_reads)
        p->check_quorum = true;
    /* Small snapshot thresholds make compaction, snapshot sends and installs happen in
     * seconds of virtual time instead of never. */
    static const uint64_t thresholds[] = {8, 16, 32, 64, 256};
    p->snapshot_threshold = thresholds[rng_below(&r, 5)];
    p->snapshot_keep = rng_below(&r, p->snapshot_threshold / 2 + 1);
    static const uint32_t max_entries[] = {1, 4, 64, ASPEN_RAFT_MAX_ENTRIES_PER_MSG};
    p->max_msg_entries = max_entries[rng_below(&r, 4)];
    static const uint32_t inflight[] = {1, 4, 64, ASPEN_RAFT_MAX_INFLIGHT_MSGS};
    p->max_inflight_msgs = inflight[rng_below(&r, 4)];

    /* Network. */
    p->net.delay_min_ns = rng_below(&r, 5 * MS + 1);
    p->net.delay_mean_ns = p->net.delay_min_ns + rng_range(&r, MS / 10, 30 * MS);
    p->net.tail_permille = on(&r, 1, 2) ? permille(&r, 50) : 0;
    p->net.loss_permille = on(&r, 1, 2) ? permille(&r, 300) : 0;
    p->net.dup_permille = on(&r, 2, 5) ? permille(&r, 500) : 0;
    p->net.capacity = on(&r, 3, 10) ? (uint32_t)rng_range(&r, 2, 64) : 0;
    p->net.fifo = on(&r, 3, 10);

    /* Disk: fast NVMe to a slow network volume; sometimes a long tail. */
    p->disk.latency_min_ns = rng_range(&r, MS / 20, 2 * MS);
    p->disk.latency_mean_ns = p->disk.latency_min_ns + rng_below(&r, 10 * MS + 1);
    if (on(&r, 3, 10)) {
        p->disk.slow_permille = permille(&r, 100);
        p->disk.slow_factor = (uint32_t)rng_range(&r, 10, 100);
    }
    p->disk.lose_unsynced = on(&r, 1, 2);
    p->drift_permille = !p->lease_reads && on(&r, 2, 5) ? permille(&r, 20) : 0;

    /* Faults, as chances per 100 ms fault tick. */
    p->fault_tick_ns = 100 * MS;
    p->crash_permille = on(&r, 1, 2) ? permille(&r, 30) : 0;
    p->restart_max_ns = rng_range(&r, 200 * MS, 5 * S);
    /* Lease reads are only sound while pauses and drift stay within the bound they
     * assume, so seeds that enable them draw no pauses. */
    p->pause_permille = !p->lease_reads && on(&r, 3, 10) ? permille(&r, 20) : 0;
    p->pause_max_ns = rng_range(&r, 100 * MS, 3 * S);
    if (p->nodes > 1 && on(&r, 1, 2)) {
        p->partition_permille = permille(&r, 30);
        p->heal_permille = (uint32_t)rng_range(&r, 10, 200);
        p->partition_modes = (uint32_t)rng_range(&r, 1, (1u << NET_PART_MODE_COUNT) - 1);
        p->asymmetric = on(&r, 1, 2);
    }
    if (p->nodes > 1 && on(&r, 3, 10)) {
        p->clog_permille = permille(&r, 30);
        p->clog_max_ns = rng_range(&r, 100 * MS, 2 * S);
    }
    p->conf_permille = (members || p->nodes > 1) && on(&r, 2, 5) ? permille(&r, 30) : 0;
    p->transfer_permille = p->nodes > 1 && on(&r, 3, 10) ? permille(&r, 30) : 0;

    /* Workload. */
    p->clients = (uint32_t)rng_range(&r, 1, 6);
    p->keys = (uint32_t)rng_range(&r, 1, 5);
    p->think_max_ns = rng_below(&r, 100 * MS + 1);
    p->op_timeout_ns = rng_range(&r, 1 * S, 5 * S);
    p->read_permille = (uint32_t)rng_range(&r, 200, 600);
    p->follower_read_permille = on(&r, 1, 2) ? permille(&r, 500) : 0;
    p->cas_permille = (uint32_t)rng_range(&r, 0, 400);
    p->delete_permille = (uint32_t)rng_range(&r, 0, 200);
    p->client_delay_max_ns = rng_range(&r, MS / 10, 3 * MS);
    p->reply_loss_permille = on(&r, 1, 5) ? permille(&r, 20) : 0;

    p->safety_ns = opt->safety_ns ? opt->safety_ns : rng_range(&r, 2 * S, 10 * S);
    p->liveness_ns = 30 * S;

    /* New draws go below this line, so the seeds recorded so far (docs/FINDINGS.md) keep
     * meaning the same runs. */
    p->net.corrupt_permille = on(&r, 1, 5) ? permille(&r, 20) : 0;
    /* Targeted crash right after a vote grant goes out (BUGGIFY style: votes are rare,
     * so a plain random crash almost never lands in that window). */
    p->vote_crash_permille = p->crash_permille && on(&r, 1, 2) ? permille(&r, 500) : 0;
}
