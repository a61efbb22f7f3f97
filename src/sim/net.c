/*
 * The simulated network (sim/net.h).
 */
#include "sim/net.h"

#include "base/assert.h"

#include <string.h>

void net_init(struct net *net, const struct net_params *p, uint64_t seed, uint32_t n)
{
    ASPEN_ASSERT(n >= 1 && n <= ASPEN_SIM_MAX_NODES);
    ASPEN_ASSERT(p->delay_mean_ns >= p->delay_min_ns);
    memset(net, 0, sizeof(*net));
    net->p = *p;
    net->base = *p;
    net->n = n;
    rng_seed(&net->rng, seed);
}

static uint64_t draw_delay(struct net *net)
{
    const struct net_params *p = &net->p;
    uint64_t spread = p->delay_mean_ns - p->delay_min_ns;
    /* Integer-only distribution (identical on every machine): mostly uniform around the
     * mean, sometimes a long tail of up to ten times the spread. */
    if (p->tail_permille && rng_ratio(&net->rng, p->tail_permille, 1000))
        return p->delay_min_ns + rng_below(&net->rng, 10 * spread + 1);
    return p->delay_min_ns + rng_below(&net->rng, 2 * spread + 1);
}

uint32_t net_route(struct net *net, uint64_t now_ns, uint32_t from, uint32_t to, uint64_t when[2])
{
    ASPEN_ASSERT(from < net->n && to < net->n);
    net->stats.sent++;
    if (net->blocked[from][to]) {
        net->stats.partitioned++;
        return 0;
    }
    if (net->p.loss_permille && rng_ratio(&net->rng, net->p.loss_permille, 1000)) {
        net->stats.lost++;
        return 0;
    }
    uint32_t copies = 1;
    if (net->p.dup_permille && rng_ratio(&net->rng, net->p.dup_permille, 1000))
        copies = 2;
    uint32_t n = 0;
    for (uint32_t i = 0; i < copies; i++) {
        if (net->p.capacity && net->inflight[from][to] >= net->p.capacity) {
            net->stats.overflowed++;
            continue;
        }
        uint64_t t = now_ns + draw_delay(net);
        if (net->clog_until_ns[from][to] > now_ns)
            t += net->clog_until_ns[from][to] - now_ns;
        if (net->p.fifo && t < net->last_arrival_ns[from][to])
            t = net->last_arrival_ns[from][to];
        net->last_arrival_ns[from][to] = t;
        net->inflight[from][to]++;
        when[n++] = t;
    }
    if (n == 2)
        net->stats.duplicated++;
    return n;
}

bool net_link_up(const struct net *net, uint32_t from, uint32_t to)
{
    return !net->blocked[from][to];
}

void net_arrived(struct net *net, uint32_t from, uint32_t to)
{
    ASPEN_ASSERT(net->inflight[from][to] > 0);
    net->inflight[from][to]--;
}

static void cut(struct net *net, const bool side[ASPEN_SIM_MAX_NODES], bool asymmetric)
{
    /* Asymmetric: only traffic from side A to side B is lost; B still reaches A. */
    for (uint32_t i = 0; i < net->n; i++)
        for (uint32_t j = 0; j < net->n; j++)
            if (side[i] && !side[j])
                net->blocked[i][j] = true;
            else if (!side[i] && side[j] && !asymmetric)
                net->blocked[i][j] = true;
}

void net_partition(struct net *net, enum net_partition_mode mode, bool asymmetric, int leader,
                   struct rng *r)
{
    net_heal(net);
    if (net->n < 2)
        return;
    bool side[ASPEN_SIM_MAX_NODES] = {false};
    switch (mode) {
    case NET_PART_HALVES: {
        /* A uniformly random non-empty proper subset. */
        uint32_t k = (uint32_t)rng_range(r, 1, net->n - 1);
        uint32_t order[ASPEN_SIM_MAX_NODES] = {0}; /* gcc -O3 cannot see the loop fills it */
        for (uint32_t i = 0; i < net->n; i++)
            order[i] = i;
        for (uint32_t i = net->n - 1; i > 0; i--) {
            uint32_t j = (uint32_t)rng_below(r, i + 1);
            uint32_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (uint32_t i = 0; i < k; i++)
            side[order[i]] = true;
        cut(net, side, asymmetric);
        break;
    }
    case NET_PART_LEADER:
    case NET_PART_ISOLATE:
        /* Without a known leader, isolate a random slot. */
        if (mode == NET_PART_LEADER && leader >= 0 && (uint32_t)leader < net->n)
            side[leader] = true;
        else
            side[rng_below(r, net->n)] = true;
        cut(net, side, asymmetric);
        break;
    case NET_PART_RING: {
        /* Slot i reaches j iff their ring distance is at most k, where 1 + 2k is the
         * smallest group that is a majority of n. Every slot sees a majority of the
         * cluster, yet slots across the ring do not see each other. */
        uint32_t majority = net->n / 2 + 1;
        uint32_t k = majority / 2;
        for (uint32_t i = 0; i < net->n; i++)
            for (uint32_t j = 0; j < net->n; j++) {
                uint32_t d = i > j ? i - j : j - i;
                if (net->n - d < d)
                    d = net->n - d;
                if (d > k && (!asymmetric || i < j))
                    net->blocked[i][j] = true;
            }
        break;
    }
    default:
        ASPEN_UNREACHABLE();
    }
    net->partitioned = true;
}

void net_heal(struct net *net)
{
    memset(net->blocked, 0, sizeof(net->blocked));
    net->partitioned = false;
}

void net_clog(struct net *net, uint32_t from, uint32_t to, uint64_t until_ns)
{
    if (net->clog_until_ns[from][to] < until_ns)
        net->clog_until_ns[from][to] = until_ns;
}

void net_calm(struct net *net)
{
    net_heal(net);
    memset(net->clog_until_ns, 0, sizeof(net->clog_until_ns));
    net->p.loss_permille = 0;
    net->p.dup_permille = 0;
    net->p.capacity = 0;
    net->p.tail_permille = 0;
    net->p.corrupt_permille = 0;
}
