/*
 * The PRNG tree of one simulation run: every source of randomness gets its own stream
 * derived from (seed, stream kind, index).
 *
 * Deriving each stream directly from the seed — rather than splitting them one after
 * another off a parent generator — means adding a fault site, a node or a draw in one
 * component never shifts the numbers another component sees, so a seed keeps meaning
 * "the same network, the same disks" as the simulator grows (research consensus.md
 * §3.5, "one PRNG tree per seed").
 */
#ifndef ASPEN_SIM_STREAM_H
#define ASPEN_SIM_STREAM_H

#include "base/rand.h"

#include <stdint.h>

enum sim_stream {
    SIM_STREAM_SWARM = 1,  /* the run's parameters (cluster size, fault mix) */
    SIM_STREAM_NET,        /* delays, loss, duplication */
    SIM_STREAM_DISK,       /* per node: write latency, which writes survive a crash */
    SIM_STREAM_RAFT,       /* per node: the core's election jitter */
    SIM_STREAM_WORKLOAD,   /* per client: operations, keys, think time */
    SIM_STREAM_CLIENT_NET, /* client <-> node delays */
    SIM_STREAM_CRASH,      /* crash and restart decisions */
    SIM_STREAM_PAUSE,      /* process pauses */
    SIM_STREAM_PARTITION,  /* partitions and clogs */
    SIM_STREAM_MEMBERSHIP, /* configuration changes and leadership transfers */
    SIM_STREAM_CLOCK,      /* per node: tick phase and drift */
    SIM_STREAM_CORRUPT,    /* which packets are damaged in flight, and where */
    /* New streams go last: the values above are part of what a seed means. */
};

/* Seeds *out with the stream (kind, index) of the run `seed`. */
static inline void sim_stream(struct rng *out, uint64_t seed, enum sim_stream kind, uint32_t index)
{
    uint64_t st = seed;
    uint64_t base = splitmix64_next(&st);
    uint64_t mix = base ^ ((uint64_t)kind * 0xd1b54a32d192ed03ULL) ^
                   (((uint64_t)index + 1) * 0x8cb92ba72f3d8dd7ULL);
    rng_seed(out, splitmix64_next(&mix));
}

/* A 64-bit mixing hash (FNV-1a over the bytes, finished with splitmix64's mixer): cheap,
 * deterministic, good enough to tell entries and states apart in checks. Not a
 * cryptographic hash. */
static inline uint64_t sim_hash(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    h ^= 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    uint64_t st = h;
    return splitmix64_next(&st);
}

static inline uint64_t sim_hash_u64(uint64_t h, uint64_t v)
{
    uint64_t st = h ^ (v * 0x9e3779b97f4a7c15ULL);
    return splitmix64_next(&st);
}

#endif
