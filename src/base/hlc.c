/*
 * Hybrid logical clock (base/hlc.h).
 *
 * The rules, with pt the local wall clock and (l, c) the last timestamp:
 *   local/send:  l' = max(l, pt); c' = (l' == l) ? c + 1 : 0
 *   receive m:   l' = max(l, m.l, pt);
 *                c' = l' == l == m.l ? max(c, m.c) + 1
 *                   : l' == l        ? c + 1
 *                   : l' == m.l      ? m.c + 1
 *                   : 0
 * If the logical counter would overflow, we advance l by one nanosecond instead: that
 * keeps the order strict. Locally that moves us at most 1 ns ahead per 2^32 events. On
 * receive, a remote timestamp with a saturated counter could push us 1 ns past the drift
 * bound, so the bound is checked on the result, before anything is committed.
 */
#include "base/hlc.h"

#include "base/assert.h"
#include "base/clock.h"
#include "base/hash.h"
#include "base/slice.h"
#include <aspen/error.h>

#define HLC_NODE_ID_CONTEXT "aspen 2026-11-21 hlc node id v1"

void hlc_init(struct hlc *h, const struct aspen_clock *clock, uint64_t node_id,
              uint64_t max_drift_ns)
{
    h->clock = clock;
    h->node_id = node_id;
    h->max_drift_ns = max_drift_ns;
    h->last = (struct hlc_ts){.wall_ns = 0, .logical = 0, .node_id = node_id};
}

uint64_t hlc_node_id_from_key(const uint8_t *public_key, size_t len)
{
    uint8_t out[8];
    hash_derive_key(HLC_NODE_ID_CONTEXT, public_key, len, out, sizeof(out));
    return be64_load(out);
}

/* The timestamp (wall, logical) with a logical overflow spilled into wall. */
static struct hlc_ts make_ts(const struct hlc *h, uint64_t wall, uint64_t logical)
{
    if (logical > UINT32_MAX) {
        ASPEN_ASSERT(wall < UINT64_MAX);
        wall++;
        logical = 0;
    }
    return (struct hlc_ts){.wall_ns = wall, .logical = (uint32_t)logical, .node_id = h->node_id};
}

struct hlc_ts hlc_now(struct hlc *h)
{
    uint64_t pt = clock_wall_ns(h->clock);
    if (pt > h->last.wall_ns)
        h->last = make_ts(h, pt, 0);
    else
        h->last = make_ts(h, h->last.wall_ns, (uint64_t)h->last.logical + 1);
    return h->last;
}

int hlc_update(struct hlc *h, struct hlc_ts remote, struct hlc_ts *out)
{
    uint64_t pt = clock_wall_ns(h->clock);
    uint64_t l = h->last.wall_ns;
    uint64_t m = remote.wall_ns;
    if (m > pt && m - pt > h->max_drift_ns)
        return ASPEN_E_CLOCK_DRIFT;
    uint64_t top = l > m ? l : m;
    uint32_t max_logical = h->last.logical > remote.logical ? h->last.logical : remote.logical;
    struct hlc_ts next;
    if (pt > top)
        next = make_ts(h, pt, 0);
    else if (top == l && top == m)
        next = make_ts(h, top, (uint64_t)max_logical + 1);
    else if (top == l)
        next = make_ts(h, top, (uint64_t)h->last.logical + 1);
    else
        next = make_ts(h, top, (uint64_t)remote.logical + 1);

    /* A remote just inside the bound with a saturated counter spills one nanosecond past
     * it; moving forward to there would make our next timestamps unacceptable to peers
     * whose clocks match ours, so that is refused too. */
    if (next.wall_ns > l && next.wall_ns > pt && next.wall_ns - pt > h->max_drift_ns)
        return ASPEN_E_CLOCK_DRIFT;
    h->last = next;
    *out = next;
    return 0;
}

int hlc_ts_cmp(struct hlc_ts a, struct hlc_ts b)
{
    if (a.wall_ns != b.wall_ns)
        return a.wall_ns < b.wall_ns ? -1 : 1;
    if (a.logical != b.logical)
        return a.logical < b.logical ? -1 : 1;
    if (a.node_id != b.node_id)
        return a.node_id < b.node_id ? -1 : 1;
    return 0;
}

void hlc_ts_encode(struct hlc_ts ts, uint8_t out[HLC_TS_BYTES])
{
    be64_store(out, ts.wall_ns);
    be32_store(out + 8, ts.logical);
    be64_store(out + 12, ts.node_id);
}

struct hlc_ts hlc_ts_decode(const uint8_t in[HLC_TS_BYTES])
{
    return (struct hlc_ts){
        .wall_ns = be64_load(in), .logical = be32_load(in + 8), .node_id = be64_load(in + 12)};
}
