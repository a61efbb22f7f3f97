/*
 * The cluster registry: who the members are (beyond Raft's bare ids) and who may join.
 *
 * Raft's configuration knows members only as 64-bit ids. A node needs more about each
 * member: its Ed25519 public key (the id is derived from it, and the peer transport's
 * trust registry needs the key itself), a human name, the peer address to dial and the
 * client URLs to hand to clients. That metadata is replicated state, so it lives in the
 * state machine, in the table STORE_T_CLUSTER, changed only by log entries (kv_cmd kinds
 * CLUSTER_INIT, MEMBER_SET, MEMBER_REMOVE, CRED_ADD, MEMBER_JOIN) and therefore present on
 * every replica, in snapshots and in the digest. None of these commands moves the KV
 * revision: they are not keyspace writes (etcd's member changes do not create revisions
 * either).
 *
 * Join credentials: an admin creates a credential (a random secret shown once to the
 * admin); the registry stores only BLAKE3(secret), its expiry and whether it is single
 * use. A joining node presents the secret; the leader proposes MEMBER_JOIN with the
 * secret's hash and the leader's wall clock (`now_ms`, carried in the entry so that every
 * replica decides the same), and the entry adds the member record only if the credential
 * exists and has not expired — consuming it if it is single-use. The same node joining
 * again (same id and public key already recorded) succeeds without consuming anything,
 * so a joiner that lost the answer may retry.
 *
 * Layout of STORE_T_CLUSTER (integers big-endian):
 *   "m" ++ be64 id     -> u8 format (1) ++ pk[32] ++ be16 len ++ name ++ be16 len ++
 *                         peer_addr ++ be16 len ++ client_urls
 *   "c" ++ hash[32]    -> u8 format (1) ++ be64 expires_ms (0: never) ++ u8 flags
 *                         (bit 0: single use) ++ be64 created_ms
 * and in STORE_T_META: "kv.cluster_id" -> be64 cluster id (absent before CLUSTER_INIT).
 */
#ifndef ASPEN_KV_CLUSTER_H
#define ASPEN_KV_CLUSTER_H

#include "base/mem.h"
#include "base/slice.h"
#include "raft/raft.h"
#include "storage/store.h"

#include <stdbool.h>
#include <stdint.h>

#define KV_CLUSTER_PK_BYTES   32
#define KV_CLUSTER_HASH_BYTES 32

/* One member's metadata. Strings are not NUL-terminated slices: name 1..
 * ASPEN_MAX_MEMBER_NAME_BYTES printable ASCII (0x21..0x7e); peer_addr 1..
 * ASPEN_MAX_MEMBER_ADDR_BYTES ("host:port"); client_urls 0..ASPEN_MAX_MEMBER_URLS_BYTES
 * (comma-separated URLs). The encoders and apply check these limits (ASPEN_E_INVALID /
 * ASPEN_E_TOO_LARGE), not the syntax of addresses (the node's config parser does). */
struct kv_member {
    raft_id id; /* != 0; hlc_node_id_from_key(pk) — checked by the node, not here */
    uint8_t pk[KV_CLUSTER_PK_BYTES];
    struct slice name;
    struct slice peer_addr;
    struct slice client_urls;
};

struct kv_credential {
    uint8_t hash[KV_CLUSTER_HASH_BYTES]; /* BLAKE3 of the secret */
    int64_t expires_ms;                  /* unix ms; 0: never */
    bool single_use;
    int64_t created_ms;
};

/* ---- reads (any transaction) ---- */

/* The cluster id; ASPEN_E_NOT_FOUND before CLUSTER_INIT was applied. */
int kv_cluster_id(struct store_txn *t, uint64_t *id);

/* The member record of id (slices allocated in a). ASPEN_E_NOT_FOUND, ASPEN_E_CORRUPT. */
int kv_member_get(struct store_txn *t, raft_id id, struct arena *a, struct kv_member *out);

/* Every member record in id order, allocated in a. */
int kv_member_list(struct store_txn *t, struct arena *a, struct kv_member **out, size_t *n);

/* The credential with this hash (expired ones too, until removed). ASPEN_E_NOT_FOUND. */
int kv_credential_get(struct store_txn *t, const uint8_t hash[KV_CLUSTER_HASH_BYTES],
                      struct kv_credential *out);

/* Number of stored credentials. */
int kv_credential_count(struct store_txn *t, uint64_t *n);

#endif /* ASPEN_KV_CLUSTER_H */
