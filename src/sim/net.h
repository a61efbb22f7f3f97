/*
 * The simulated network between node slots: delays, loss, duplication, reordering,
 * partitions, clogged links and link capacity, all drawn from one PRNG stream.
 *
 * Shaped after TigerBeetle's packet simulator (research consensus.md §3.2): each seed
 * picks its own delay distribution and fault rates ("swarm testing"), reordering falls
 * out of independent random delays (unless the seed asks for FIFO links, as TCP would
 * give), and partitions come in the shapes that broke real systems: random halves,
 * one isolated node, the isolated leader, and a "majority ring" in which every node sees
 * a majority but no two distant nodes see each other (the Cloudflare 2020 etcd outage
 * shape, §3.5). Any partition may be asymmetric (A hears B, B does not hear A).
 *
 * The network only decides fates and times; sim.c schedules the deliveries. A link's
 * partition state is checked when a packet is sent and again when it arrives, so a
 * partition also cuts what was already in flight.
 */
#ifndef ASPEN_SIM_NET_H
#define ASPEN_SIM_NET_H

#include "base/constants.h"
#include "base/rand.h"

#include <stdbool.h>
#include <stdint.h>

struct net_params {
    uint64_t delay_min_ns;     /* one-way delay floor */
    uint64_t delay_mean_ns;    /* typical one-way delay (>= min) */
    uint32_t tail_permille;    /* chance of a long-tail delay (up to 10x the mean) */
    uint32_t loss_permille;    /* chance a packet is dropped */
    uint32_t dup_permille;     /* chance a packet is delivered twice */
    uint32_t capacity;         /* packets in flight per link before drops (0: unbounded) */
    uint32_t corrupt_permille; /* chance a packet has one bit flipped in flight */
    bool fifo;                 /* links deliver in send order (a TCP-like transport) */
};

enum net_partition_mode {
    NET_PART_HALVES = 0,  /* random split of the slots into two non-empty sides */
    NET_PART_ISOLATE = 1, /* one random slot alone */
    NET_PART_LEADER = 2,  /* the current leader alone (a random slot if none) */
    NET_PART_RING = 3,    /* each slot reaches only its ring neighbours (a majority) */
    NET_PART_MODE_COUNT = 4,
};

struct net_stats {
    uint64_t sent, delivered, lost, partitioned, overflowed, duplicated;
};

struct net {
    struct net_params p;
    struct net_params base; /* as drawn, before net_calm */
    struct rng rng;
    uint32_t n;                                             /* slots */
    bool blocked[ASPEN_SIM_MAX_NODES][ASPEN_SIM_MAX_NODES]; /* [from][to] */
    uint64_t clog_until_ns[ASPEN_SIM_MAX_NODES][ASPEN_SIM_MAX_NODES];
    uint64_t last_arrival_ns[ASPEN_SIM_MAX_NODES][ASPEN_SIM_MAX_NODES]; /* FIFO links */
    uint32_t inflight[ASPEN_SIM_MAX_NODES][ASPEN_SIM_MAX_NODES];
    bool partitioned;
    struct net_stats stats;
};

/* A fully connected network of n slots (n <= ASPEN_SIM_MAX_NODES) with the given
 * parameters and its own stream seeded from seed. */
void net_init(struct net *net, const struct net_params *p, uint64_t seed, uint32_t n);

/* Decides the fate of one packet sent now from -> to: writes the arrival time of each
 * copy to deliver into when[] and returns their number (0: dropped, 2: duplicated). The
 * caller calls net_arrived() once per copy when it is delivered or discarded. */
uint32_t net_route(struct net *net, uint64_t now_ns, uint32_t from, uint32_t to, uint64_t when[2]);

/* Can a packet from -> to be delivered now (the link is not partitioned)? */
bool net_link_up(const struct net *net, uint32_t from, uint32_t to);

/* One copy of a routed packet left the network (delivered or dropped on arrival). */
void net_arrived(struct net *net, uint32_t from, uint32_t to);

/* Cuts the network in the given shape. `leader` is the leader's slot for
 * NET_PART_LEADER (or -1 when unknown); draws from r. Asymmetric: only one direction of
 * each cut link is blocked. */
void net_partition(struct net *net, enum net_partition_mode mode, bool asymmetric, int leader,
                   struct rng *r);

/* Restores full connectivity. */
void net_heal(struct net *net);

/* Holds back everything sent from -> to until until_ns (a clogged link). */
void net_clog(struct net *net, uint32_t from, uint32_t to, uint64_t until_ns);

/* The liveness phase's network: healed, no clogs, no loss, no duplication, no capacity
 * drops, no long tails (delays keep their base distribution). */
void net_calm(struct net *net);

#endif
