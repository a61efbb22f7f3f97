/*
 * A member's metadata as the node keeps it in memory: plain fixed-size strings, so the
 * node's member table, a join's answer and a ticket can hold it without pointers into
 * storage. The replicated form is struct kv_member (kv/cluster.h).
 */
#ifndef ASPEN_NODE_MEMBER_H
#define ASPEN_NODE_MEMBER_H

#include "base/constants.h"
#include "kv/cluster.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct member_info {
    uint64_t id; /* hlc_node_id_from_key(pk) */
    uint8_t pk[KV_CLUSTER_PK_BYTES];
    char name[ASPEN_MAX_MEMBER_NAME_BYTES + 1];
    char peer_addr[ASPEN_MAX_MEMBER_ADDR_BYTES + 1];   /* "host:port" */
    char client_urls[ASPEN_MAX_MEMBER_URLS_BYTES + 1]; /* comma-separated */
    uint8_t flags;                                     /* KV_MEMBER_F_* */
};

/* Copies a registry record into *out (strings NUL-terminated; they fit by the registry's
 * limits). */
void member_from_kv(const struct kv_member *m, struct member_info *out);

/* A view of *m as a registry record (slices point into m). */
struct kv_member member_to_kv(const struct member_info *m);

/* Splits "host:port" (host an IPv4 address, a name, or a bracketed IPv6 address) into
 * host (without brackets, NUL-terminated, capacity host_cap) and port. ASPEN_E_INVALID. */
int member_split_addr(const char *addr, char *host, size_t host_cap, uint16_t *port);

/* The first URL of a comma list into out (capacity cap); "" if none. */
void member_first_url(const char *urls, char *out, size_t cap);

#endif /* ASPEN_NODE_MEMBER_H */
