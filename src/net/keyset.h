/*
 * A set of Ed25519 public keys: the transport's trust registry, the keys allowed to
 * connect to us and to be connected to. The node keeps it equal to the applied cluster membership;
 * a key outside it is refused during the TLS handshake, in both directions.
 *
 * A sorted array of 32-byte keys with binary search: membership changes are rare and
 * lookups happen on every handshake, and the set is bounded by ASPEN_MAX_PEERS. Pure.
 */
#ifndef ASPEN_NET_KEYSET_H
#define ASPEN_NET_KEYSET_H

#include "net/transport.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct net_keyset {
    uint8_t (*keys)[NET_KEY_BYTES]; /* owned: sorted, distinct */
    size_t n;
    size_t cap;
    size_t max; /* n never exceeds this */
};

/* Empty registry of at most max keys. Allocates nothing. */
void net_keyset_init(struct net_keyset *t, size_t max);
void net_keyset_release(struct net_keyset *t);

bool net_keyset_contains(const struct net_keyset *t, const uint8_t pk[NET_KEY_BYTES]);

/* Binary search over any array of n items sorted by a 32-byte key (key_at(arr, i) gives
 * item i's key): the index of pk, or of where it would be inserted; *found says which.
 * The key set and the transport's peer table both use it. */
size_t net_key_search(const void *arr, size_t n,
                      const uint8_t *(*key_at)(const void *arr, size_t i),
                      const uint8_t pk[NET_KEY_BYTES], bool *found);

/* Replaces the contents with pks[0..n) (duplicates collapse). ASPEN_E_FULL (more than max
 * distinct keys) or ASPEN_E_NOMEM leave the registry unchanged. */
int net_keyset_replace(struct net_keyset *t, const uint8_t (*pks)[NET_KEY_BYTES], size_t n);

/* Adds pk (present already: 0). ASPEN_E_FULL, ASPEN_E_NOMEM. */
int net_keyset_add(struct net_keyset *t, const uint8_t pk[NET_KEY_BYTES]);

/* Removes pk. ASPEN_E_NOT_FOUND if it was absent. */
int net_keyset_remove(struct net_keyset *t, const uint8_t pk[NET_KEY_BYTES]);

#endif
