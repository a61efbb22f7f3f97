/*
 * The peer transport over TCP with TLS 1.3 and Ed25519 raw public keys: the production
 * implementation of net/transport.h.
 *
 * One libuv loop drives everything (no threads, no blocking calls). Per (peer, protocol)
 * there is one outgoing connection, dialed on the first send and kept; it carries a queue
 * of frames with a byte limit (ASPEN_E_BUSY beyond it, on_writable below half), and is
 * re-dialed after a failure with capped exponential backoff and full jitter. Incoming
 * connections are authenticated the same way and their frames routed by ALPN.
 *
 * The caller must ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)) before using it: libuv writes
 * to sockets with write(2), and a peer that resets a connection would otherwise kill the
 * process. A library should not change process-wide signal dispositions, so we do not.
 */
#ifndef ASPEN_NET_TLS_TCP_H
#define ASPEN_NET_TLS_TCP_H

#include "base/rand.h"
#include "net/transport.h"

#include <uv.h>

/* Opens a transport on loop (borrowed; must outlive it). id is copied; opt may be NULL
 * (all defaults); rng (borrowed; must outlive the transport) draws the backoff jitter.
 * On success *out is filled and must be closed with net_close. Errors: ASPEN_E_INVALID
 * (bad identity or options: min backoff > max, a frame limit above
 * ASPEN_PEER_MAX_FRAME_BYTES; zeros mean the defaults), ASPEN_E_NOMEM, ASPEN_E_INTERNAL (GnuTLS
 * setup); on failure nothing needs closing. */
int net_tls_tcp_open(uv_loop_t *loop, const struct net_identity *id, const struct net_options *opt,
                     struct aspen_random *rng, struct net_transport *out);

#endif
