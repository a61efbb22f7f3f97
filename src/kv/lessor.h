/*
 * The lessor: the leader's lease expiry clock.
 *
 * Leases themselves are replicated state (kv.h: a grant or revoke is a log entry, applied
 * on every replica alike). When a lease *expires* is not: it depends on wall-clock time,
 * which replicas do not share, so only the leader decides it and proposes the revoke
 * (KV_CMD_LEASE_REVOKE). This module is that decision, kept pure: the caller passes the
 * time in milliseconds (a monotonic clock in production, virtual time in the simulator)
 * and randomness as a number, and the lessor reads neither itself.
 *
 * Every node tracks every lease (lessor_on_grant / lessor_on_revoke when it applies the
 * entries, lessor_load from the store at start-up), so any node can become the leader at
 * once. Expiry runs only while the node is primary: lessor_promote gives every lease a
 * fresh expiry of now + its TTL — etcd's rule on a leader change, which may extend a
 * lease by up to one TTL but never expires one early because the new leader's clock
 * started late — and lessor_demote stops it.
 *
 * Expired leases come out of lessor_expired in expiry order from a binary min-heap, in
 * O(k log n) for k leases. Each is then marked "revoking" until its revoke applies; if
 * that has not happened ASPEN_LEASE_REVOKE_RETRY_MS later (the proposal was lost), it is
 * reported again. A revoking lease cannot be kept alive (etcd answers an expired lease's
 * keepalive with "lease not found" too): its revoke is already under way.
 *
 * Single-threaded: the node's loop owns it. Bounded by ASPEN_MAX_LEASES.
 */
#ifndef ASPEN_KV_LESSOR_H
#define ASPEN_KV_LESSOR_H

#include "kv/kv.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lessor_lease {
    int64_t id;
    int64_t ttl_ms;      /* as granted */
    int64_t deadline_ms; /* expiry, or the revoke retry time when revoking; primary only */
    uint32_t heap_pos;   /* index in lessor.heap */
    bool revoking;
};

/* One slot of the id -> lease index table (open addressing, linear probing). */
struct lessor_slot {
    int64_t id;   /* 0: empty (lease ids are > 0) */
    uint32_t idx; /* index in lessor.leases */
};

struct lessor {
    struct lessor_lease *leases; /* owned; n of cap in use, dense (order is arbitrary) */
    size_t n, cap;
    uint32_t *heap;            /* owned; cap entries, the first n used: indexes in leases */
    struct lessor_slot *table; /* owned; table_cap slots, a power of two, at most half full */
    size_t table_cap;
    bool is_primary;
};

/* Initializes an empty lessor (not primary). Allocates nothing. */
void lessor_init(struct lessor *l);

/* Frees everything; l may be initialized again. */
void lessor_release(struct lessor *l);

/* Replaces the tracked leases with leases[0..n) (from kv_lease_list at start-up or after
 * installing a snapshot). Keeps the primary flag; when primary, every lease expires at
 * now_ms + its TTL. ASPEN_E_INVALID (an id <= 0, a TTL out of range, a duplicate id),
 * ASPEN_E_FULL (more than ASPEN_MAX_LEASES), ASPEN_E_NOMEM; on error l holds no leases. */
int lessor_load(struct lessor *l, const struct kv_lease *leases, size_t n, int64_t now_ms);

/* A grant was applied. When primary, the lease expires at now_ms + ttl_ms.
 * ASPEN_E_INVALID (id <= 0, or ttl_ms outside [ASPEN_LEASE_MIN_TTL_MS,
 * ASPEN_LEASE_MAX_TTL_MS]: the leader clamps before proposing), ASPEN_E_EXISTS,
 * ASPEN_E_FULL, ASPEN_E_NOMEM. */
int lessor_on_grant(struct lessor *l, int64_t id, int64_t ttl_ms, int64_t now_ms);

/* A revoke was applied (by a client or by the leader's expiry). ASPEN_E_LEASE_NOT_FOUND
 * if the lease is not tracked (harmless: a duplicate revoke of the same lease). */
int lessor_on_revoke(struct lessor *l, int64_t id);

/* This node became the leader (its term's first entry applied): expiry starts, every
 * lease at now_ms + its TTL, and no lease is revoking. */
void lessor_promote(struct lessor *l, int64_t now_ms);

/* This node is no longer the leader: expiry stops. */
void lessor_demote(struct lessor *l);

static inline bool lessor_is_primary(const struct lessor *l)
{
    return l->is_primary;
}

/* Number of leases tracked. */
static inline size_t lessor_count(const struct lessor *l)
{
    return l->n;
}

/* LeaseKeepAlive: the lease now expires at now_ms + its TTL, returned in *ttl_ms.
 * ASPEN_E_NOT_LEADER (not primary), ASPEN_E_LEASE_NOT_FOUND (absent, or expired: past its
 * expiry or already being revoked). */
int lessor_keepalive(struct lessor *l, int64_t id, int64_t now_ms, int64_t *ttl_ms);

/* LeaseTimeToLive: milliseconds left (0 once expired), and the granted TTL if ttl_ms is
 * not NULL. ASPEN_E_NOT_LEADER (not primary: only the leader's clock counts),
 * ASPEN_E_LEASE_NOT_FOUND. */
int lessor_remaining(const struct lessor *l, int64_t id, int64_t now_ms, int64_t *remaining_ms,
                     int64_t *ttl_ms);

/* Writes to ids[] up to max leases whose deadline is <= now_ms, earliest first: leases
 * past their expiry, and revoking leases whose retry time has come. Each is (again)
 * marked revoking with a retry at now_ms + ASPEN_LEASE_REVOKE_RETRY_MS. The leader
 * proposes a revoke for each. Returns how many; 0 when not primary. O(k log n). */
size_t lessor_expired(struct lessor *l, int64_t now_ms, int64_t *ids, size_t max);

/* A positive lease id not in use, derived from `random` (the leader's choice when a
 * client grants with id 0; the caller supplies the randomness). */
int64_t lessor_pick_id(const struct lessor *l, uint64_t random);

/* A client's requested TTL clamped to [ASPEN_LEASE_MIN_TTL_MS, ASPEN_LEASE_MAX_TTL_MS].
 * etcd raises a too-short TTL to its minimum too; it refuses one over its maximum, where
 * we lower it: a year is longer than any client means in practice. */
int64_t lessor_clamp_ttl(int64_t ttl_ms);

#endif /* ASPEN_KV_LESSOR_H */
