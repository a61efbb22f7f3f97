/*
 * The peer transport: what a node uses to exchange framed messages with other nodes.
 *
 * A peer is named by its Ed25519 public key (32 bytes, libsodium's crypto_sign layout);
 * the transport authenticates every connection so that a frame handed to a handler really
 * comes from the key it is reported with, and only keys in the trust registry (which the
 * caller keeps equal to the applied membership) may talk to us or be talked to. Frames are
 * opaque byte strings routed by protocol: each protocol is an ALPN id ("aspen/raft/1";
 * blobs and gossip later) with its own handlers.
 *
 * The interface is a small struct of function pointers plus an opaque handle, so the node
 * and raft shell do not know what carries the bytes: today TLS 1.3 over TCP
 * (net/tls_tcp.h), later a QUIC endpoint, and in tests possibly an in-memory fake. The
 * contract every implementation keeps:
 *   - Everything runs on the caller's event loop; no call blocks, no callback runs on
 *     another thread, and no callback runs from inside the call that caused it unless
 *     stated (send never calls back synchronously).
 *   - Delivery is per (peer, protocol) in order and without duplicates, but not
 *     guaranteed: frames in flight when a connection is lost may be lost (raft resends).
 *     Frames not yet started toward the peer stay queued for the next connection.
 *   - Send copies the frame; a handler's frame slice is valid only during the call.
 *   - Handlers may call back into the transport (send, trust changes, even close).
 */
#ifndef ASPEN_NET_TRANSPORT_H
#define ASPEN_NET_TRANSPORT_H

#include "base/slice.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_KEY_BYTES        32
#define NET_SECRET_KEY_BYTES 64

/* The raft protocol's ALPN id. */
#define NET_ALPN_RAFT "aspen/raft/1"

/* A node's identity: an Ed25519 key pair in libsodium's layout (sk = seed || pk). */
struct net_identity {
    uint8_t pk[NET_KEY_BYTES];
    uint8_t sk[NET_SECRET_KEY_BYTES];
};

/* One protocol's callbacks, registered once per ALPN id. All but on_frame are optional
 * (NULL). peer_pk is borrowed for the call. */
struct net_handlers {
    void *ctx;
    /* A frame from peer_pk; the bytes are valid only during the call. */
    void (*on_frame)(void *ctx, const uint8_t peer_pk[NET_KEY_BYTES], struct slice frame);
    /* Our outgoing connection to peer_pk for this protocol is established: both keys
     * were checked and the peer accepted ours, so frames now flow. */
    void (*on_peer_up)(void *ctx, const uint8_t peer_pk[NET_KEY_BYTES]);
    /* Our outgoing connection for this protocol was lost, or an attempt to establish it
     * failed (reason: a negative code). Frames already handed to the lost connection may
     * not have arrived; queued ones wait for the next attempt. */
    void (*on_peer_down)(void *ctx, const uint8_t peer_pk[NET_KEY_BYTES], int reason);
    /* After a send to peer_pk on this protocol was refused with ASPEN_E_BUSY: the queue has
     * drained below half its limit. Called once per refusal episode (flow control). */
    void (*on_writable)(void *ctx, const uint8_t peer_pk[NET_KEY_BYTES]);
};

struct net_peer_stats {
    uint64_t queued_bytes;    /* accepted by send, not yet written to the kernel (all
                                 protocols; each protocol's queue has its own limit) */
    uint64_t frames_sent;     /* written to the kernel */
    uint64_t frames_received; /* delivered to a handler, over any connection */
    uint64_t reconnects;      /* connection attempts made after a failure (retries) */
    uint32_t rtt_us;          /* smoothed RTT of an outgoing connection, 0 if unknown */
    uint32_t connections_up;  /* established outgoing connections (one per protocol) */
    bool is_trusted;          /* in the trust registry */
};

/* Tunables; a zero field takes the default named in its comment. */
struct net_options {
    uint64_t send_queue_bytes;   /* per (peer, protocol): ASPEN_PEER_SEND_QUEUE_BYTES */
    uint32_t max_frame_bytes;    /* sent and received: ASPEN_PEER_MAX_FRAME_BYTES */
    uint32_t backoff_min_ms;     /* ASPEN_PEER_BACKOFF_MIN_MS */
    uint32_t backoff_max_ms;     /* ASPEN_PEER_BACKOFF_MAX_MS */
    uint32_t connect_timeout_ms; /* TCP connect + TLS handshake: ASPEN_CONNECT_TIMEOUT_MS */
};

/* The operations. impl is the implementation's handle. Unless noted, each returns 0 or a
 * negative code, and ASPEN_E_CLOSED once close has been called. */
struct net_transport_ops {
    /* Accepts connections on host (a numeric IPv4 or IPv6 address) and port (0: an
     * ephemeral port); *bound_port receives the port (may be NULL). One listener per
     * transport: ASPEN_E_EXISTS for a second. Or a negated errno from the socket layer. */
    int (*listen)(void *impl, const char *host, uint16_t port, uint16_t *bound_port);

    /* Routes the protocol alpn (1..ASPEN_PEER_MAX_ALPN_BYTES bytes) to h (copied; h->ctx
     * must outlive the transport). Connections accepted afterwards offer it. ASPEN_E_EXISTS
     * (already registered), ASPEN_E_FULL (ASPEN_PEER_MAX_PROTOCOLS), ASPEN_E_INVALID. */
    int (*register_protocol)(void *impl, const char *alpn, const struct net_handlers *h);

    /* The trust registry. trust_set replaces it (duplicates are allowed, n at most
     * ASPEN_MAX_PEERS, else ASPEN_E_FULL and nothing changes); add and remove edit it.
     * Every connection with a key that is no longer trusted is closed at once and its
     * queued frames are dropped (an outbound dial to such a key included); an inbound
     * handshake is checked against the registry when the peer presents its key.
     * ASPEN_E_NOMEM leaves the registry as it was. */
    int (*trust_set)(void *impl, const uint8_t (*pks)[NET_KEY_BYTES], size_t n);
    int (*trust_add)(void *impl, const uint8_t pk[NET_KEY_BYTES]);
    int (*trust_remove)(void *impl, const uint8_t pk[NET_KEY_BYTES]); /* ASPEN_E_NOT_FOUND */

    /* Where to dial pk (numeric address). A changed address takes effect on the next
     * connection attempt. ASPEN_E_INVALID (unparsable), ASPEN_E_FULL (ASPEN_MAX_PEERS). */
    int (*peer_set_addr)(void *impl, const uint8_t pk[NET_KEY_BYTES], const char *host,
                         uint16_t port);

    /* Queues a copy of frame toward pk on protocol alpn; connects on first use. Errors:
     * ASPEN_E_PERMISSION (pk not trusted), ASPEN_E_NOT_FOUND (alpn not registered, or no
     * address for pk), ASPEN_E_TOO_LARGE (frame above
     * max_frame_bytes, or above the queue limit by itself), ASPEN_E_BUSY (the
     * (pk, alpn) queue would exceed send_queue_bytes: on_writable follows once it drains
     * below half), ASPEN_E_NOMEM. Never calls a handler synchronously. */
    int (*send)(void *impl, const uint8_t pk[NET_KEY_BYTES], const char *alpn, struct slice frame);

    /* Fills *out for pk (zeros for an unknown peer). Cannot fail. */
    void (*stats)(void *impl, const uint8_t pk[NET_KEY_BYTES], struct net_peer_stats *out);

    /* Closes every connection and the listener, drops queued frames, and calls done(arg)
     * from the loop once every resource is released (never synchronously). No handler is
     * called after close returns. The transport must not be used after done. */
    void (*close)(void *impl, void (*done)(void *arg), void *arg);
};

struct net_transport {
    const struct net_transport_ops *ops;
    void *impl; /* owned by the implementation; released by close */
};

/* Wrappers, so callers read like ordinary calls. */
static inline int net_listen(struct net_transport *t, const char *host, uint16_t port,
                             uint16_t *bound_port)
{
    return t->ops->listen(t->impl, host, port, bound_port);
}

static inline int net_register_protocol(struct net_transport *t, const char *alpn,
                                        const struct net_handlers *h)
{
    return t->ops->register_protocol(t->impl, alpn, h);
}

static inline int net_trust_set(struct net_transport *t, const uint8_t (*pks)[NET_KEY_BYTES],
                                size_t n)
{
    return t->ops->trust_set(t->impl, pks, n);
}

static inline int net_trust_add(struct net_transport *t, const uint8_t pk[NET_KEY_BYTES])
{
    return t->ops->trust_add(t->impl, pk);
}

static inline int net_trust_remove(struct net_transport *t, const uint8_t pk[NET_KEY_BYTES])
{
    return t->ops->trust_remove(t->impl, pk);
}

static inline int net_peer_set_addr(struct net_transport *t, const uint8_t pk[NET_KEY_BYTES],
                                    const char *host, uint16_t port)
{
    return t->ops->peer_set_addr(t->impl, pk, host, port);
}

static inline int net_send(struct net_transport *t, const uint8_t pk[NET_KEY_BYTES],
                           const char *alpn, struct slice frame)
{
    return t->ops->send(t->impl, pk, alpn, frame);
}

static inline void net_stats(struct net_transport *t, const uint8_t pk[NET_KEY_BYTES],
                             struct net_peer_stats *out)
{
    t->ops->stats(t->impl, pk, out);
}

static inline void net_close(struct net_transport *t, void (*done)(void *arg), void *arg)
{
    t->ops->close(t->impl, done, arg);
}

#endif
