/*
 * A message in flight between simulated nodes: the raft codec's frame (raft/codec.h).
 *
 * The core's messages borrow their entries from the sender's log and stay valid only
 * until its next step, so what travels through the simulated network is the message
 * encoded as bytes — exactly what the production transport sends — and delivery decodes
 * it. Every simulated message therefore exercises the codec both ways, and the network
 * can damage bytes in flight: the frame's CRC must catch it (a damaged frame is dropped,
 * as a transport would).
 *
 * A RAFT_MSG_SNAPSHOT packet also carries the snapshot's state-machine blob: the core
 * never moves snapshot data, the shell does (raft.h, raft_snapshot_meta).
 */
#ifndef ASPEN_SIM_PACKET_H
#define ASPEN_SIM_PACKET_H

#include "base/rand.h"
#include "raft/raft.h"

#include <stddef.h>
#include <stdint.h>

struct packet;

/* Encodes msg (which must pass raft_msg_validate) and copies blob into a new packet.
 * 0, ASPEN_E_NOMEM or ASPEN_E_TOO_LARGE. On success *out belongs to the caller
 * (packet_free). */
int packet_make(struct packet **out, const struct raft_msg *msg, const uint8_t *blob,
                size_t blob_len);

/* An identical, independent copy (network duplication). */
int packet_dup(struct packet **out, const struct packet *p);

void packet_free(struct packet *p);

/* Decodes the packet for delivery: *msg views the packet (entries borrowed from it) and
 * stays valid while the packet lives. 0 or raft_msg_decode's error (ASPEN_E_CORRUPT for
 * a damaged frame). */
int packet_open(struct packet *p, struct raft_msg *msg);

/* Flips one random bit of the frame (a damaged packet). */
void packet_corrupt(struct packet *p, struct rng *r);

/* Routing facts, known to the transport without decoding. */
raft_id packet_from(const struct packet *p);
raft_id packet_to(const struct packet *p);
uint8_t packet_type(const struct packet *p);
size_t packet_bytes(const struct packet *p);

/* The snapshot blob a RAFT_MSG_SNAPSHOT packet carries (NULL, 0 otherwise). */
const uint8_t *packet_blob(const struct packet *p, size_t *len);

#endif
