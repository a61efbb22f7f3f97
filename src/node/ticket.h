/*
 * Cluster tickets: what a running cluster hands out so that a new node can find it.
 *
 * A ticket names the cluster (its id) and its voters: each one's Ed25519 public key, peer
 * address and client URLs. It holds no secret — knowing a ticket lets a node find the
 * cluster and check it is talking to the right keys, not join it: joining also needs a
 * join credential (kv/cluster.h), which travels separately.
 *
 * Text form: "aspen-ticket-1." ++ base64url (no padding) of
 *   u8 version (1) ++ be64 cluster id ++ u8 n ++ n * (pk[32] ++ u8 len ++ peer_addr ++
 *   be16 len ++ client_urls) ++ be32 CRC-32C of everything before it.
 * The checksum catches a ticket damaged by copy and paste before any connection is tried.
 */
#ifndef ASPEN_NODE_TICKET_H
#define ASPEN_NODE_TICKET_H

#include "base/buf.h"
#include "node/member.h"

#include <stddef.h>
#include <stdint.h>

#define TICKET_PREFIX  "aspen-ticket-1."
#define TICKET_VERSION 1

struct ticket {
    uint64_t cluster_id;
    uint32_t n;                                   /* 1..ASPEN_MAX_VOTERS */
    struct member_info members[ASPEN_MAX_VOTERS]; /* names are not carried (empty) */
};

/* Appends the text form of t. ASPEN_E_INVALID (n out of range, an address over 255
 * bytes), ASPEN_E_TOO_LARGE / ASPEN_E_NOMEM from out. */
int ticket_encode(const struct ticket *t, struct buf *out);

/* Parses text[0..len) (surrounding whitespace allowed) into *out; member ids are derived
 * from the keys. ASPEN_E_MALFORMED (prefix, base64, layout, version), ASPEN_E_CORRUPT
 * (checksum), with a reason in why. */
int ticket_decode(const char *text, size_t len, struct ticket *out, char *why, size_t whylen);

#endif /* ASPEN_NODE_TICKET_H */
