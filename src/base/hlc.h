/*
 * Hybrid logical clock (Kulkarni, Demirbas et al., "Logical Physical Clocks", 2014).
 *
 * A timestamp is (wall_ns, logical, node_id). It stays close to physical time, never
 * goes backwards on one node even when the wall clock is stepped back, and respects
 * causality across nodes: a timestamp taken after receiving a message is greater than
 * the message's. Ties between nodes are broken by node_id, so timestamps are totally
 * ordered and two nodes never produce equal ones.
 *
 * node_id is derived from the node's Ed25519 public key by hashing, so it is stable,
 * needs no coordination and cannot be chosen by a misconfigured operator.
 *
 * Not thread-safe: one struct hlc per thread, or a lock around it (the node uses it from
 * its loop thread only).
 */
#ifndef ASPEN_BASE_HLC_H
#define ASPEN_BASE_HLC_H

#include <stddef.h>
#include <stdint.h>

struct aspen_clock;

struct hlc_ts {
    uint64_t wall_ns; /* physical component: max wall time seen, in ns since the epoch */
    uint32_t logical; /* counter for events within the same wall_ns */
    uint64_t node_id; /* tie-breaker: the issuing node */
};

/* Size of the order-preserving binary encoding: 8 + 4 + 8 bytes, big-endian. */
#define HLC_TS_BYTES 20

struct hlc {
    const struct aspen_clock *clock; /* borrowed; provides wall time */
    uint64_t node_id;
    uint64_t max_drift_ns; /* refuse remote timestamps further ahead than this */
    struct hlc_ts last;    /* the latest timestamp issued or observed */
};

/* clock is borrowed and must outlive h. max_drift_ns is usually ASPEN_HLC_MAX_DRIFT_NS. */
void hlc_init(struct hlc *h, const struct aspen_clock *clock, uint64_t node_id,
              uint64_t max_drift_ns);

/* The node id for an identity public key: the first 8 bytes (big-endian) of a BLAKE3
 * derive-key hash of the key under a fixed context. */
uint64_t hlc_node_id_from_key(const uint8_t *public_key, size_t len);

/* A timestamp for a local or send event; strictly greater than every timestamp this clock
 * issued or observed before. */
struct hlc_ts hlc_now(struct hlc *h);

/* Merges a timestamp received from another node and returns, in *out, a timestamp for
 * the receive event, greater than both remote and everything issued before.
 * ASPEN_E_CLOCK_DRIFT when remote.wall_ns is more than max_drift_ns ahead of the local
 * wall clock: the clock is then left unchanged. */
int hlc_update(struct hlc *h, struct hlc_ts remote, struct hlc_ts *out);

/* Total order: by wall_ns, then logical, then node_id. Returns <0, 0 or >0. */
int hlc_ts_cmp(struct hlc_ts a, struct hlc_ts b);

/* Big-endian fields, so the bytes sort like hlc_ts_cmp (usable inside keys). */
void hlc_ts_encode(struct hlc_ts ts, uint8_t out[HLC_TS_BYTES]);
struct hlc_ts hlc_ts_decode(const uint8_t in[HLC_TS_BYTES]);

#endif
