/*
 * A message in flight between simulated nodes.
 *
 * The core's messages borrow their entries from the sender's log and stay valid only
 * until its next step, so what travels through the simulated network is an owned
 * packet. ADAPTER POINT: until the raft codec (src/raft/codec.h) lands, a packet is a
 * deep copy of the message, its entries and their data; once it lands, a packet holds
 * the encoded bytes and delivery decodes them, which exercises the codec on every
 * message and lets the network corrupt bytes.
 *
 * A RAFT_MSG_SNAPSHOT packet also carries the snapshot's state-machine blob: the core
 * never moves snapshot data, the shell does (raft.h, raft_snapshot_meta).
 */
#ifndef ASPEN_SIM_PACKET_H
#define ASPEN_SIM_PACKET_H

#include "raft/raft.h"

#include <stddef.h>
#include <stdint.h>

struct packet;

/* Copies msg (and, for snapshots, blob) into a new packet. 0, ASPEN_E_NOMEM or
 * ASPEN_E_TOO_LARGE. On success *out belongs to the caller (packet_free). */
int packet_make(struct packet **out, const struct raft_msg *msg, const uint8_t *blob,
                size_t blob_len);

/* An identical, independent copy (network duplication). */
int packet_dup(struct packet **out, const struct packet *p);

void packet_free(struct packet *p);

/* Opens the packet for delivery: *msg views the packet (entries borrowed from it) and
 * stays valid while the packet lives. 0 or ASPEN_E_MALFORMED/ASPEN_E_CORRUPT when the
 * bytes do not decode. */
int packet_open(struct packet *p, struct raft_msg *msg);

/* Routing facts readable without decoding. */
raft_id packet_from(const struct packet *p);
raft_id packet_to(const struct packet *p);
uint8_t packet_type(const struct packet *p);
size_t packet_bytes(const struct packet *p);

/* The snapshot blob a RAFT_MSG_SNAPSHOT packet carries (NULL, 0 otherwise). */
const uint8_t *packet_blob(const struct packet *p, size_t *len);

#endif
