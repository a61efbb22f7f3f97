/*
 * TLS 1.3 with Ed25519 raw public keys (RFC 7250) over memory buffers.
 *
 * This wraps one GnuTLS session so that it never touches a socket: ciphertext comes in
 * through net_tls_feed (whatever the socket delivered) and goes out by accumulating in
 * `out`, which the caller writes to its socket. That keeps the session driveable from an
 * event loop as bytes arrive (GnuTLS's push/pull functions read and write our buffers)
 * and leaves the sockets, timers and queues to the shell (net/tls_tcp.c).
 *
 * Authentication: both sides present a raw Ed25519 key (no certificates, no CA); the node
 * id is that key. During the handshake the peer's key is extracted from its
 * SubjectPublicKeyInfo and handed to a verify hook, which accepts or refuses it with a
 * reason (the trust registry; on a client also "is this the key I dialed"). The server
 * requires a client key. ALPN picks the protocol: the server offers every registered id
 * and refuses a client that proposes none of them.
 */
#ifndef ASPEN_NET_TLS_H
#define ASPEN_NET_TLS_H

#include "base/buf.h"
#include "base/constants.h"
#include "net/transport.h"

#include <gnutls/gnutls.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An endpoint's credentials: its key pair and the session priorities. Shared by all of
 * its sessions. */
struct net_tls_creds {
    gnutls_certificate_credentials_t cred; /* owned */
    gnutls_priority_t priority;            /* owned */
};

/* Builds the credentials from id (copied). ASPEN_E_INVALID (sk's public half differs
 * from pk, or GnuTLS refuses the key), ASPEN_E_NOMEM, ASPEN_E_INTERNAL (GnuTLS setup). */
int net_tls_creds_init(struct net_tls_creds *c, const struct net_identity *id);
void net_tls_creds_release(struct net_tls_creds *c);

/* What a session reports to its owner while being fed. */
struct net_tls_events {
    void *ctx;
    /* The peer presented pk: return NULL to accept it, or a static reason to refuse. */
    const char *(*verify)(void *ctx, const uint8_t pk[NET_KEY_BYTES]);
    /* The handshake finished (peer_pk and alpn are set). Non-zero stops the feed. */
    int (*handshake_done)(void *ctx);
    /* Decrypted application bytes (valid during the call). Non-zero stops the feed. */
    int (*plaintext)(void *ctx, struct slice data);
};

struct net_tls {
    gnutls_session_t session; /* owned */
    struct net_tls_events ev;
    struct buf out;   /* owned: ciphertext waiting to be written */
    struct slice in;  /* borrowed during net_tls_feed: ciphertext not yet read */
    uint8_t *scratch; /* borrowed during net_tls_feed: plaintext buffer */
    size_t scratch_bytes;
    uint8_t peer_pk[NET_KEY_BYTES];      /* valid once has_peer_pk */
    bool has_peer_pk;                    /* the verify hook accepted peer_pk */
    uint8_t presented_pk[NET_KEY_BYTES]; /* the key the peer showed, accepted or not */
    bool has_presented_pk;
    bool is_done;                             /* handshake complete */
    const char *refusal;                      /* why we refused the peer's key (static), or NULL */
    int gnutls_err;                           /* the GnuTLS error that ended the session, or 0 */
    char alpn[ASPEN_PEER_MAX_ALPN_BYTES + 1]; /* negotiated protocol, once is_done */
};

/* A session over creds (borrowed; must outlive it). A client offers alpns[0..n) (one in
 * practice); a server offers them all and refuses a client that proposes none. ev is
 * copied. out_max bounds the pending ciphertext. ASPEN_E_NOMEM, ASPEN_E_INTERNAL,
 * ASPEN_E_INVALID (an ALPN id too long); on failure nothing is left to release. */
int net_tls_init(struct net_tls *t, const struct net_tls_creds *creds, bool is_server,
                 const struct slice *alpns, size_t n_alpns, const struct net_tls_events *ev,
                 size_t out_max);
void net_tls_release(struct net_tls *t);

/* The least scratch net_tls_feed takes: the plaintext of one TLS record (2^14 bytes)
 * plus slack. */
#define NET_TLS_SCRATCH_MIN_BYTES (16 * 1024 + 256)

/* A client starts its handshake: the ClientHello lands in `out`. Same errors as feed. */
int net_tls_start(struct net_tls *t);

/* Consumes ciphertext `in`, advancing the handshake and delivering plaintext through the
 * events; scratch (at least NET_TLS_SCRATCH_MIN_BYTES) receives plaintext. Returns 0
 * (all consumed), 1 (the peer closed the session cleanly), an event's non-zero value, or
 * an error: ASPEN_E_PERMISSION (we refused the peer's key: t->refusal says why, or the
 * peer refused ours: an alert), ASPEN_E_UNSUPPORTED (no common protocol), ASPEN_E_MALFORMED
 * (anything else the TLS layer rejects; t->gnutls_err has the detail). After an error
 * `out` may hold an alert worth sending before closing. */
int net_tls_feed(struct net_tls *t, struct slice in, uint8_t *scratch, size_t scratch_bytes);

/* Encrypts a prefix of data (at most one record) into `out`; *sent receives its length.
 * Only after the handshake. ASPEN_E_NOMEM (out full), ASPEN_E_MALFORMED. */
int net_tls_send(struct net_tls *t, const uint8_t *data, size_t len, size_t *sent);

/* A human-readable account of why the session failed, for log lines (static). */
const char *net_tls_describe(const struct net_tls *t);

#endif
