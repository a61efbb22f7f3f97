/*
 * TLS engine over memory buffers (net/tls.h) on GnuTLS 3.7.
 *
 * Raw public keys need three things from GnuTLS: GNUTLS_ENABLE_RAWPK on the session, a
 * priority string that allows only the raw-key certificate type in both directions
 * (CTYPE-CLI-RAWPK, CTYPE-SRV-RAWPK) with TLS 1.3 only, and credentials whose "certificate"
 * is a bare public key (gnutls_pcert_import_rawpk) next to the private key. Ed25519 keys
 * are imported from their raw bytes (x = public point, k = seed). The peer's key arrives
 * as a DER SubjectPublicKeyInfo, which we import and export back to its raw 32 bytes.
 */
#include "net/tls.h"

#include "base/assert.h"
#include "base/constants.h"

#include <gnutls/abstract.h>

#include <errno.h>
#include <string.h>

/* TLS 1.3 only; the certificate type in both directions is a raw public key (X.509 is
 * not offered, so a peer cannot fall back to it). No session tickets: every connection
 * does a full, mutually authenticated handshake. */
static const char PRIORITY[] =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CTYPE-ALL:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK";

/* The plaintext of one TLS record (2^14). */
#define TLS_RECORD_PLAINTEXT_BYTES (16 * 1024)

/* ---------------------------------------------------------------------------------------
 * Credentials
 * ------------------------------------------------------------------------------------- */

static int verify_peer(gnutls_session_t session);

int net_tls_creds_init(struct net_tls_creds *c, const struct net_identity *id)
{
    /* libsodium's secret key is seed || pk: a mismatch means a corrupt identity file. */
    if (memcmp(id->sk + 32, id->pk, NET_KEY_BYTES) != 0)
        return ASPEN_E_INVALID;
    *c = (struct net_tls_creds){0};
    int rc = ASPEN_E_INTERNAL;
    gnutls_privkey_t priv = NULL;
    gnutls_pubkey_t pub = NULL;
    gnutls_pcert_st pcert;
    bool has_pcert = false;
    if (gnutls_certificate_allocate_credentials(&c->cred) < 0) {
        c->cred = NULL;
        return ASPEN_E_NOMEM;
    }
    if (gnutls_priority_init(&c->priority, PRIORITY, NULL) < 0) {
        c->priority = NULL;
        goto free_cred;
    }
    gnutls_datum_t x = {.data = (unsigned char *)id->pk, .size = NET_KEY_BYTES};
    gnutls_datum_t k = {.data = (unsigned char *)id->sk, .size = 32};
    if (gnutls_privkey_init(&priv) < 0 || gnutls_pubkey_init(&pub) < 0)
        goto free_keys;
    if (gnutls_privkey_import_ecc_raw(priv, GNUTLS_ECC_CURVE_ED25519, &x, NULL, &k) < 0 ||
        gnutls_pubkey_import_ecc_raw(pub, GNUTLS_ECC_CURVE_ED25519, &x, NULL) < 0) {
        rc = ASPEN_E_INVALID;
        goto free_keys;
    }
    /* On success pcert owns pub. */
    if (gnutls_pcert_import_rawpk(&pcert, pub, 0) < 0)
        goto free_keys;
    pub = NULL;
    has_pcert = true;
    /* On success the credentials own pcert's contents and priv. */
    if (gnutls_certificate_set_key(c->cred, NULL, 0, &pcert, 1, priv) < 0)
        goto free_keys;
    gnutls_certificate_set_verify_function(c->cred, verify_peer);
    return 0;

free_keys:
    if (has_pcert)
        gnutls_pcert_deinit(&pcert);
    if (pub)
        gnutls_pubkey_deinit(pub);
    if (priv)
        gnutls_privkey_deinit(priv);
    gnutls_priority_deinit(c->priority);
    c->priority = NULL;
free_cred:
    gnutls_certificate_free_credentials(c->cred);
    c->cred = NULL;
    return rc;
}

void net_tls_creds_release(struct net_tls_creds *c)
{
    if (c->priority)
        gnutls_priority_deinit(c->priority);
    if (c->cred)
        gnutls_certificate_free_credentials(c->cred);
    *c = (struct net_tls_creds){0};
}

/* ---------------------------------------------------------------------------------------
 * Verification: the peer's raw key against the owner's hook
 * ------------------------------------------------------------------------------------- */

/* Extracts the peer's Ed25519 key; a static reason on failure. */
static const char *peer_key(gnutls_session_t session, uint8_t pk[NET_KEY_BYTES])
{
    if (gnutls_certificate_type_get2(session, GNUTLS_CTYPE_PEERS) != GNUTLS_CRT_RAWPK)
        return "peer did not present a raw public key";
    unsigned n = 0;
    const gnutls_datum_t *spki = gnutls_certificate_get_peers(session, &n);
    if (!spki || n != 1)
        return "peer presented no key";
    const char *reason = "peer key is not Ed25519";
    gnutls_pubkey_t pub;
    if (gnutls_pubkey_init(&pub) < 0)
        return "out of memory";
    gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;
    gnutls_datum_t x = {0}, y = {0};
    if (gnutls_pubkey_import(pub, spki, GNUTLS_X509_FMT_DER) < 0) {
        reason = "peer key does not parse";
        goto free_pub;
    }
    if (gnutls_pubkey_get_pk_algorithm(pub, NULL) != GNUTLS_PK_EDDSA_ED25519 ||
        gnutls_pubkey_export_ecc_raw2(pub, &curve, &x, &y, 0) < 0)
        goto free_pub;
    if (curve == GNUTLS_ECC_CURVE_ED25519 && x.size == NET_KEY_BYTES) {
        memcpy(pk, x.data, NET_KEY_BYTES);
        reason = NULL;
    }
    gnutls_free(x.data);
    gnutls_free(y.data);
free_pub:
    gnutls_pubkey_deinit(pub);
    return reason;
}

static int verify_peer(gnutls_session_t session)
{
    struct net_tls *t = gnutls_session_get_ptr(session);
    uint8_t pk[NET_KEY_BYTES];
    const char *reason = peer_key(session, pk);
    if (!reason) {
        memcpy(t->presented_pk, pk, NET_KEY_BYTES);
        t->has_presented_pk = true;
        reason = t->ev.verify(t->ev.ctx, pk);
    }
    if (reason) {
        t->refusal = reason;
        return GNUTLS_E_CERTIFICATE_ERROR;
    }
    memcpy(t->peer_pk, pk, NET_KEY_BYTES);
    t->has_peer_pk = true;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Memory transport
 * ------------------------------------------------------------------------------------- */

static ssize_t push(gnutls_transport_ptr_t ptr, const void *data, size_t len)
{
    struct net_tls *t = ptr;
    if (buf_append(&t->out, data, len) != 0) {
        gnutls_transport_set_errno(t->session, ENOMEM);
        return -1;
    }
    return (ssize_t)len;
}

static ssize_t pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
    struct net_tls *t = ptr;
    if (t->in.len == 0) {
        gnutls_transport_set_errno(t->session, EAGAIN);
        return -1;
    }
    if (len > t->in.len)
        len = t->in.len;
    memcpy(data, t->in.ptr, len);
    t->in.ptr += len;
    t->in.len -= len;
    return (ssize_t)len;
}

/* ---------------------------------------------------------------------------------------
 * Sessions
 * ------------------------------------------------------------------------------------- */

int net_tls_init(struct net_tls *t, const struct net_tls_creds *creds, bool is_server,
                 const struct slice *alpns, size_t n_alpns, const struct net_tls_events *ev,
                 size_t out_max)
{
    if (n_alpns > ASPEN_PEER_MAX_PROTOCOLS)
        return ASPEN_E_INVALID;
    gnutls_datum_t protos[ASPEN_PEER_MAX_PROTOCOLS];
    for (size_t i = 0; i < n_alpns; i++) {
        if (alpns[i].len == 0 || alpns[i].len > ASPEN_PEER_MAX_ALPN_BYTES)
            return ASPEN_E_INVALID;
        protos[i] =
            (gnutls_datum_t){.data = (unsigned char *)alpns[i].ptr, .size = (unsigned)alpns[i].len};
    }
    *t = (struct net_tls){.ev = *ev};
    buf_init(&t->out, out_max);
    unsigned flags = (is_server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NONBLOCK |
                     GNUTLS_ENABLE_RAWPK | GNUTLS_NO_SIGNAL | GNUTLS_NO_TICKETS;
    if (gnutls_init(&t->session, flags) < 0) {
        t->session = NULL;
        return ASPEN_E_NOMEM;
    }
    if (gnutls_priority_set(t->session, creds->priority) < 0 ||
        gnutls_credentials_set(t->session, GNUTLS_CRD_CERTIFICATE, creds->cred) < 0 ||
        gnutls_alpn_set_protocols(t->session, protos, (unsigned)n_alpns, GNUTLS_ALPN_MANDATORY) < 0)
        goto deinit;
    if (is_server)
        gnutls_certificate_server_set_request(t->session, GNUTLS_CERT_REQUIRE);
    gnutls_session_set_ptr(t->session, t);
    gnutls_transport_set_ptr(t->session, t);
    gnutls_transport_set_push_function(t->session, push);
    gnutls_transport_set_pull_function(t->session, pull);
    /* The shell's timer bounds the handshake; GnuTLS's own clock must not end it. */
    gnutls_handshake_set_timeout(t->session, 0);
    return 0;

deinit:
    gnutls_deinit(t->session);
    t->session = NULL;
    return ASPEN_E_INTERNAL;
}

void net_tls_release(struct net_tls *t)
{
    if (t->session)
        gnutls_deinit(t->session);
    t->session = NULL;
    buf_release(&t->out);
}

/* Maps the GnuTLS error that ended the session to our code. */
static int fail(struct net_tls *t, int gnutls_rc)
{
    t->gnutls_err = gnutls_rc;
    /* GnuTLS leaves the alert to us: queue the one matching the error so the peer learns
     * why (bad_certificate, no_application_protocol, ...); the shell sends it if the
     * socket takes it at once. Not in answer to the peer's own alert. */
    if (gnutls_rc != GNUTLS_E_FATAL_ALERT_RECEIVED && gnutls_rc != GNUTLS_E_MEMORY_ERROR)
        (void)gnutls_alert_send_appropriate(t->session, gnutls_rc);
    if (t->refusal)
        return ASPEN_E_PERMISSION;
    if (gnutls_rc == GNUTLS_E_NO_APPLICATION_PROTOCOL)
        return ASPEN_E_UNSUPPORTED;
    if (gnutls_rc == GNUTLS_E_FATAL_ALERT_RECEIVED) {
        gnutls_alert_description_t a = gnutls_alert_get(t->session);
        if (a == GNUTLS_A_NO_APPLICATION_PROTOCOL)
            return ASPEN_E_UNSUPPORTED;
        if (a == GNUTLS_A_BAD_CERTIFICATE || a == GNUTLS_A_CERTIFICATE_UNKNOWN ||
            a == GNUTLS_A_UNSUPPORTED_CERTIFICATE || a == GNUTLS_A_ACCESS_DENIED ||
            a == GNUTLS_A_CERTIFICATE_REQUIRED || a == GNUTLS_A_UNKNOWN_CA)
            return ASPEN_E_PERMISSION;
    }
    if (gnutls_rc == GNUTLS_E_MEMORY_ERROR)
        return ASPEN_E_NOMEM;
    return ASPEN_E_MALFORMED;
}

static int handshake_finished(struct net_tls *t)
{
    t->is_done = true;
    /* Defensive: GnuTLS requires the client's key (CERT_REQUIRE) and calls the verify
     * function for every peer key, so both must hold here; never trust that silently. */
    if (!t->has_peer_pk) {
        t->refusal = "handshake finished without a verified peer key";
        return fail(t, GNUTLS_E_CERTIFICATE_ERROR);
    }
    gnutls_datum_t proto = {0};
    if (gnutls_alpn_get_selected_protocol(t->session, &proto) < 0 || proto.size == 0 ||
        proto.size > ASPEN_PEER_MAX_ALPN_BYTES)
        return fail(t, GNUTLS_E_NO_APPLICATION_PROTOCOL);
    memcpy(t->alpn, proto.data, proto.size);
    t->alpn[proto.size] = '\0';
    return t->ev.handshake_done(t->ev.ctx);
}

int net_tls_start(struct net_tls *t)
{
    int rc = gnutls_handshake(t->session);
    if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
        return 0;
    return rc < 0 ? fail(t, rc) : ASPEN_E_INTERNAL; /* a client cannot finish alone */
}

int net_tls_feed(struct net_tls *t, struct slice in, uint8_t *scratch, size_t scratch_bytes)
{
    ASPEN_ASSERT(scratch_bytes >= NET_TLS_SCRATCH_MIN_BYTES);
    t->in = in;
    int result = 0;
    /* GnuTLS reports AGAIN only when pull found no input, so each turn either consumes
     * input or produces an event. A stall (AGAIN with input left, twice at the same
     * length) would be a GnuTLS surprise: treat it as a broken stream, not a spin. */
    size_t stalled_at = SIZE_MAX;
    for (;;) {
        ssize_t rc;
        if (!t->is_done) {
            rc = gnutls_handshake(t->session);
            if (rc == 0) {
                result = handshake_finished(t);
                if (result != 0)
                    break;
                continue;
            }
        } else {
            rc = gnutls_record_recv(t->session, scratch, scratch_bytes);
            if (rc > 0) {
                result = t->ev.plaintext(t->ev.ctx, slice_make(scratch, (size_t)rc));
                if (result != 0)
                    break;
                continue;
            }
            if (rc == 0) {
                result = 1;
                break;
            }
        }
        if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
            if (t->in.len == 0)
                break;
            if (t->in.len == stalled_at) {
                result = fail(t, GNUTLS_E_INTERNAL_ERROR);
                break;
            }
            stalled_at = t->in.len;
            continue;
        }
        result = fail(t, (int)rc);
        break;
    }
    t->in = slice_make(NULL, 0);
    return result;
}

int net_tls_send(struct net_tls *t, const uint8_t *data, size_t len, size_t *sent)
{
    ASPEN_ASSERT(t->is_done);
    if (len > TLS_RECORD_PLAINTEXT_BYTES)
        len = TLS_RECORD_PLAINTEXT_BYTES;
    ssize_t rc = gnutls_record_send(t->session, data, len);
    if (rc < 0)
        return rc == GNUTLS_E_AGAIN ? ASPEN_E_NOMEM : fail(t, (int)rc);
    *sent = (size_t)rc;
    return 0;
}

const char *net_tls_describe(const struct net_tls *t)
{
    if (t->refusal)
        return t->refusal;
    if (t->gnutls_err == GNUTLS_E_FATAL_ALERT_RECEIVED ||
        t->gnutls_err == GNUTLS_E_WARNING_ALERT_RECEIVED)
        return gnutls_alert_get_name(gnutls_alert_get(t->session));
    if (t->gnutls_err)
        return gnutls_strerror(t->gnutls_err);
    return "no error";
}
