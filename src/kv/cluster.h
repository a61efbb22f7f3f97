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
 * The commands' outcomes (kv_result.rc; every refusal writes nothing, the entry still
 * advances the applied index):
 *   CLUSTER_INIT  ASPEN_E_EXISTS once a cluster id is set (even to the same value).
 *   MEMBER_SET    upsert; ASPEN_E_EXISTS if the id is recorded with another pk,
 *                 ASPEN_E_LIMIT for a new record beyond ASPEN_MAX_MEMBER_RECORDS.
 *   MEMBER_REMOVE ASPEN_E_NOT_FOUND if there is no record.
 *   CRED_ADD      first drops up to ASPEN_CREDENTIAL_GC_PER_ADD expired credentials (the
 *                 first in key order; expired = expires_ms != 0 && expires_ms <= now_ms),
 *                 then stores the new one. ASPEN_E_EXISTS if a credential with that hash
 *                 is stored (expired or not), ASPEN_E_LIMIT if ASPEN_MAX_JOIN_CREDENTIALS
 *                 would still be stored after the GC; a refused add drops nothing.
 *   MEMBER_JOIN   id recorded with the same pk: success, the record takes the request's
 *                 name and addresses, no credential is needed or consumed. Id recorded
 *                 with another pk: ASPEN_E_EXISTS. Otherwise ASPEN_E_PERMISSION unless the
 *                 credential exists and now_ms < expires_ms (or expires_ms == 0), then
 *                 ASPEN_E_LIMIT if the registry is full; on success a single-use
 *                 credential is deleted and the record written.
 *
 * Layout of STORE_T_CLUSTER (integers big-endian):
 *   "m" ++ be64 id     -> u8 format (1) ++ pk[32] ++ be16 len ++ name ++ be16 len ++
 *                         peer_addr ++ be16 len ++ client_urls ++ u8 flags
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
 * (comma-separated URLs). kv_cmd_encode refuses anything else (ASPEN_E_INVALID /
 * ASPEN_E_TOO_LARGE) and kv_cmd_decode too (ASPEN_E_MALFORMED / ASPEN_E_TOO_LARGE), so
 * apply only sees valid members; a stored record breaking these rules is
 * ASPEN_E_CORRUPT. The syntax of addresses is not checked here (the node's config parser
 * does). */
/* kv_member.flags */
#define KV_MEMBER_F_MANUAL_PROMOTE 0x01u /* the leader must not promote it on its own */
#define KV_MEMBER_FLAGS_KNOWN      KV_MEMBER_F_MANUAL_PROMOTE

struct kv_member {
    raft_id id; /* != 0; hlc_node_id_from_key(pk) — checked by the node, not here */
    uint8_t pk[KV_CLUSTER_PK_BYTES];
    struct slice name;
    struct slice peer_addr;
    struct slice client_urls;
    uint8_t flags; /* KV_MEMBER_F_*; unknown bits are refused (ASPEN_E_INVALID) */
};

struct kv_credential {
    uint8_t hash[KV_CLUSTER_HASH_BYTES]; /* BLAKE3 of the secret */
    int64_t expires_ms;                  /* unix ms, >= 0; 0: never */
    bool single_use;
    int64_t created_ms; /* unix ms, >= 0; informational (the registry never reads it) */
};

/* ---- reads (any transaction) ---- */

/* The cluster id; ASPEN_E_NOT_FOUND before CLUSTER_INIT was applied. */
int kv_cluster_id(struct store_txn *t, uint64_t *id);

/* The member record of id (slices allocated in a). ASPEN_E_NOT_FOUND, ASPEN_E_CORRUPT. */
int kv_member_get(struct store_txn *t, raft_id id, struct arena *a, struct kv_member *out);

/* Every member record in id order, allocated in a (*out NULL and *n 0 when there is
 * none). ASPEN_E_CORRUPT, ASPEN_E_NOMEM. */
int kv_member_list(struct store_txn *t, struct arena *a, struct kv_member **out, size_t *n);

/* The credential with this hash (expired ones too, until removed). ASPEN_E_NOT_FOUND,
 * ASPEN_E_CORRUPT. */
int kv_credential_get(struct store_txn *t, const uint8_t hash[KV_CLUSTER_HASH_BYTES],
                      struct kv_credential *out);

/* Number of stored credentials, expired ones included (a walk over them: at most
 * ASPEN_MAX_JOIN_CREDENTIALS records). */
int kv_credential_count(struct store_txn *t, uint64_t *n);

#endif /* ASPEN_KV_CLUSTER_H */
