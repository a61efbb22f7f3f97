/*
 * Joining a running cluster, from the new node's side, and the join request's wire form.
 *
 * A node started with --join TICKET --join-credential SECRET and an empty data dir asks
 * the cluster to add it before it starts its loop: it POSTs a join request to a member's
 * client endpoint (POST /v1/cluster/join), follows a redirect to the leader, and receives
 * the member list once the leader has recorded it (MEMBER_JOIN, which checks the
 * credential) and added it to the Raft configuration as a learner. The node then trusts
 * those members' keys and starts as an empty follower; the leader replicates the log to
 * it and promotes it to voter once it has caught up (auto-promote).
 *
 * The blocking client runs before the node's loop exists (nothing else to serve yet), with
 * a deadline on every connect, send and receive.
 *
 * Bodies are "key=value" lines (values are printable ASCII with no newline):
 *   request:  credential=<secret> public-key=<hex> name=<name> peer-addr=<host:port>
 *             client-urls=<comma list> signature=<hex>
 * The signature (Ed25519, by the joining node's key, over "aspen-join-v1" and the other
 * fields) proves the joiner holds the key it registers: without it, anyone who read a
 * ticket could re-register a member's key with another address (a re-join of a recorded
 * key needs no fresh credential, kv/cluster.h).
 *   response: cluster-id=<16 hex digits>, then one line per member:
 *             member=<public key hex> <peer addr> <client urls or -> <name>
 */
#ifndef ASPEN_NODE_JOIN_H
#define ASPEN_NODE_JOIN_H

#include "base/buf.h"
#include "node/config.h"
#include "node/identity.h"
#include "node/member.h"

#include <stddef.h>
#include <stdint.h>

struct join_result {
    uint64_t cluster_id;
    uint32_t n;
    struct member_info *members; /* owned: n of them (join_result_release) */
};

/* Joins the cluster named by cfg->join with cfg->join_credential as identity id. Tries
 * each member of the ticket, follows up to ASPEN_JOIN_MAX_REDIRECTS redirects, retries
 * while the cluster has no leader, until ASPEN_JOIN_TIMEOUT_MS. 0 with *out filled, or an
 * error with a reason in err: ASPEN_E_PERMISSION (the credential was refused),
 * ASPEN_E_MALFORMED (bad ticket or answer), ASPEN_E_TIMEOUT, ASPEN_E_UNSUPPORTED (https
 * client URLs), ASPEN_E_NOMEM. */
int join_cluster(const struct node_config *cfg, const struct node_identity *id,
                 struct join_result *out, char *err, size_t errlen);

void join_result_release(struct join_result *r);

/* ---- The wire form (shared with the server side, node/api.c) ---- */

struct join_request {
    char credential[ASPEN_NODE_CONFIG_VALUE_MAX_BYTES];
    struct member_info member; /* id derived from the key */
    uint8_t signature[64];
};

/* Signs r with sk (libsodium layout; the key of r->member.pk). */
void join_request_sign(struct join_request *r, const uint8_t sk[64]);
int join_request_encode(const struct join_request *r, struct buf *out);
/* ASPEN_E_MALFORMED / ASPEN_E_INVALID / ASPEN_E_TOO_LARGE, ASPEN_E_PERMISSION (the
 * signature does not verify), with a reason in why. */
int join_request_decode(struct slice body, struct join_request *out, char *why, size_t whylen);

int join_response_encode(uint64_t cluster_id, const struct member_info *m, size_t n,
                         struct buf *out);
int join_response_decode(struct slice body, struct join_result *out, char *why, size_t whylen);

#endif /* ASPEN_NODE_JOIN_H */
