/*
 * Joining a cluster (join.h): the join request and answer bodies, and the small blocking
 * HTTP/1.1 client the new node uses before its loop starts. Every socket operation has a
 * deadline (ASPEN_JOIN_IO_TIMEOUT_MS); the whole join has ASPEN_JOIN_TIMEOUT_MS.
 */
#include "node/join.h"

#include "base/hash.h"
#include "base/hlc.h"
#include "base/log.h"
#include "node/ticket.h"

#include <aspen/error.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define JOIN_MAX_ANSWER_BYTES (1 << 20)

/* ---- bodies ---- */

static int fail(char *why, size_t whylen, int rc, const char *reason)
{
    snprintf(why, whylen, "%s", reason);
    return rc;
}

/* Printable ASCII without spaces: what the registry accepts (kv/cluster.h). */
static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

/* What the joiner signs: every field, in a fixed order, under a context string. */
static int signed_text(const struct join_request *r, struct buf *out)
{
    char pk[2 * KV_CLUSTER_PK_BYTES + 1];
    hash_to_hex(r->member.pk, sizeof(r->member.pk), pk);
    return buf_printf(out, "aspen-join-v1\n%s\n%s\n%s\n%s\n%s\n%u\n", r->credential, pk,
                      r->member.name, r->member.peer_addr, r->member.client_urls,
                      (unsigned)r->member.flags);
}

void join_request_sign(struct join_request *r, const uint8_t sk[64])
{
    struct buf b;
    buf_init(&b, 1 << 16);
    if (signed_text(r, &b) == 0)
        crypto_sign_detached(r->signature, NULL, b.data, b.len, sk);
    sodium_memzero(b.data, b.len);
    buf_release(&b);
}

int join_request_encode(const struct join_request *r, struct buf *out)
{
    char pk[2 * KV_CLUSTER_PK_BYTES + 1], sig[2 * 64 + 1];
    hash_to_hex(r->member.pk, sizeof(r->member.pk), pk);
    hash_to_hex(r->signature, sizeof(r->signature), sig);
    return buf_printf(out,
                      "credential=%s\npublic-key=%s\nname=%s\npeer-addr=%s\nclient-urls=%s\n"
                      "auto-promote=%s\nsignature=%s\n",
                      r->credential, pk, r->member.name, r->member.peer_addr, r->member.client_urls,
                      (r->member.flags & KV_MEMBER_F_MANUAL_PROMOTE) ? "false" : "true", sig);
}

static int hex_decode(const char *hex, uint8_t *out, size_t n)
{
    if (strlen(hex) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char c = hex[2 * i + (size_t)k];
            unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                         : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                         : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                                : 16u;
            if (d > 15)
                return -1;
            v = v * 16 + d;
        }
        out[i] = (uint8_t)v;
    }
    return 0;
}

/* Calls fn(key, value) for each "key=value" line of body (copied into a NUL-terminated
 * scratch line). Stops at the first nonzero return. */
static int each_line(struct slice body, int (*fn)(void *ctx, const char *k, const char *v),
                     void *ctx, char *why, size_t whylen)
{
    size_t i = 0;
    while (i < body.len) {
        const uint8_t *nl = memchr(body.ptr + i, '\n', body.len - i);
        size_t end = nl ? (size_t)(nl - body.ptr) : body.len;
        size_t len = end - i;
        if (len && body.ptr[end - 1] == '\r')
            len--;
        if (len) {
            char line[ASPEN_NODE_CONFIG_VALUE_MAX_BYTES + 64];
            if (len >= sizeof(line))
                return fail(why, whylen, ASPEN_E_TOO_LARGE, "line too long");
            memcpy(line, body.ptr + i, len);
            line[len] = 0;
            if (memchr(line, 0, len))
                return fail(why, whylen, ASPEN_E_MALFORMED, "NUL byte in body");
            char *eq = strchr(line, '=');
            if (!eq)
                return fail(why, whylen, ASPEN_E_MALFORMED, "expected key=value lines");
            *eq = 0;
            int rc = fn(ctx, line, eq + 1);
            if (rc)
                return rc;
        }
        i = end + 1;
    }
    return 0;
}

static int set_str(char *dst, size_t cap, const char *v)
{
    size_t n = strlen(v);
    if (n >= cap)
        return ASPEN_E_TOO_LARGE;
    memcpy(dst, v, n + 1);
    return 0;
}

struct req_parse {
    struct join_request *r;
    unsigned seen;
};

static int req_field(void *ctx, const char *k, const char *v)
{
    struct req_parse *p = ctx;
    struct member_info *m = &p->r->member;
    if (strcmp(k, "credential") == 0) {
        p->seen |= 1;
        return set_str(p->r->credential, sizeof(p->r->credential), v);
    }
    if (strcmp(k, "public-key") == 0) {
        p->seen |= 2;
        return hex_decode(v, m->pk, sizeof(m->pk)) ? ASPEN_E_INVALID : 0;
    }
    if (strcmp(k, "name") == 0) {
        p->seen |= 4;
        return set_str(m->name, sizeof(m->name), v);
    }
    if (strcmp(k, "peer-addr") == 0) {
        p->seen |= 8;
        return set_str(m->peer_addr, sizeof(m->peer_addr), v);
    }
    if (strcmp(k, "client-urls") == 0)
        return set_str(m->client_urls, sizeof(m->client_urls), v);
    if (strcmp(k, "auto-promote") == 0) {
        if (strcmp(v, "false") == 0)
            m->flags = (uint8_t)(m->flags | KV_MEMBER_F_MANUAL_PROMOTE);
        else if (strcmp(v, "true") != 0)
            return ASPEN_E_INVALID;
        return 0;
    }
    if (strcmp(k, "signature") == 0) {
        p->seen |= 16;
        return hex_decode(v, p->r->signature, sizeof(p->r->signature)) ? ASPEN_E_INVALID : 0;
    }
    return 0; /* unknown keys are ignored: newer joiners may send more */
}

int join_request_decode(struct slice body, struct join_request *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof(*out));
    struct req_parse p = {.r = out};
    int rc = each_line(body, req_field, &p, why, whylen);
    if (rc)
        return why[0] ? rc : fail(why, whylen, rc, "bad join request field");
    if (p.seen != 31)
        return fail(why, whylen, ASPEN_E_INVALID,
                    "join request needs credential, public-key, name, peer-addr and signature");
    struct member_info *m = &out->member;
    /* The credential too: each_line strips one CR before the LF, so a credential ending in
     * CR (sent as "...\r\r\n") would not survive encoding again, and a real one is hex
     * digits anyway. Found with tests/fuzz/fuzz_join.c. */
    if (!out->credential[0] || !m->name[0] || !m->peer_addr[0] || !printable(out->credential) ||
        !printable(m->name) || !printable(m->peer_addr) || !printable(m->client_urls))
        return fail(why, whylen, ASPEN_E_INVALID, "empty or unprintable field in join request");
    struct buf text;
    buf_init(&text, 1 << 16);
    rc = signed_text(out, &text);
    if (!rc && crypto_sign_verify_detached(out->signature, text.data, text.len, m->pk) != 0)
        rc = fail(why, whylen, ASPEN_E_PERMISSION,
                  "join request signature does not verify with its public key");
    buf_release(&text);
    if (rc)
        return rc;
    m->id = hlc_node_id_from_key(m->pk, sizeof(m->pk));
    return 0;
}

int join_response_encode(uint64_t cluster_id, const struct member_info *m, size_t n,
                         struct buf *out)
{
    int rc = buf_printf(out, "cluster-id=%016" PRIx64 "\n", cluster_id);
    for (size_t i = 0; !rc && i < n; i++) {
        char pk[2 * KV_CLUSTER_PK_BYTES + 1];
        hash_to_hex(m[i].pk, sizeof(m[i].pk), pk);
        rc = buf_printf(out, "member=%s %s %s %s\n", pk, m[i].peer_addr,
                        m[i].client_urls[0] ? m[i].client_urls : "-", m[i].name);
    }
    return rc;
}

struct resp_parse {
    struct join_result *r;
    size_t cap;
    bool has_id;
};

static int resp_field(void *ctx, const char *k, const char *v)
{
    struct resp_parse *p = ctx;
    if (strcmp(k, "cluster-id") == 0) {
        char *end = NULL;
        p->r->cluster_id = strtoull(v, &end, 16);
        p->has_id = *v && !*end && p->r->cluster_id;
        return p->has_id ? 0 : ASPEN_E_MALFORMED;
    }
    if (strcmp(k, "member") != 0)
        return 0;
    if (p->r->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        if (cap > ASPEN_MAX_MEMBER_RECORDS)
            return ASPEN_E_TOO_LARGE;
        struct member_info *nv = mem_realloc(p->r->members, cap * sizeof(*nv));
        if (!nv)
            return ASPEN_E_NOMEM;
        p->r->members = nv;
        p->cap = cap;
    }
    struct member_info *m = &p->r->members[p->r->n];
    memset(m, 0, sizeof(*m));
    char pk[2 * KV_CLUSTER_PK_BYTES + 2], addr[ASPEN_MAX_MEMBER_ADDR_BYTES + 1],
        urls[ASPEN_MAX_MEMBER_URLS_BYTES + 1], name[ASPEN_MAX_MEMBER_NAME_BYTES + 1];
    char *dst[4] = {pk, addr, urls, name};
    size_t caps[4] = {sizeof(pk), sizeof(addr), sizeof(urls), sizeof(name)};
    const char *s = v;
    for (int i = 0; i < 4; i++) {
        const char *sp = i < 3 ? strchr(s, ' ') : s + strlen(s);
        if (!sp)
            return ASPEN_E_MALFORMED;
        size_t len = (size_t)(sp - s);
        if (len == 0 || len >= caps[i])
            return ASPEN_E_MALFORMED;
        memcpy(dst[i], s, len);
        dst[i][len] = 0;
        s = sp + (i < 3);
    }
    /* The registry's rule (kv/cluster.h): printable ASCII without spaces. Otherwise a name
     * ending in CR (the last field takes the rest of the line, and each_line strips only
     * one CR) or holding control bytes would come back from the cluster's answer as a
     * member record no registry holds. Found with tests/fuzz/fuzz_join.c. */
    if (hex_decode(pk, m->pk, sizeof(m->pk)) || !printable(addr) || !printable(urls) ||
        !printable(name))
        return ASPEN_E_MALFORMED;
    memcpy(m->peer_addr, addr, strlen(addr) + 1);
    if (strcmp(urls, "-") != 0)
        memcpy(m->client_urls, urls, strlen(urls) + 1);
    memcpy(m->name, name, strlen(name) + 1);
    m->id = hlc_node_id_from_key(m->pk, sizeof(m->pk));
    p->r->n++;
    return 0;
}

int join_response_decode(struct slice body, struct join_result *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof(*out));
    struct resp_parse p = {.r = out};
    int rc = each_line(body, resp_field, &p, why, whylen);
    if (!rc && (!p.has_id || out->n == 0))
        rc = ASPEN_E_MALFORMED;
    if (rc) {
        if (!why[0])
            fail(why, whylen, rc, "malformed join answer");
        join_result_release(out);
    }
    return rc;
}

void join_result_release(struct join_result *r)
{
    mem_free(r->members);
    memset(r, 0, sizeof(*r));
}

/* ---- the blocking client ---- */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Splits "http://host:port[/...]" into host and port. */
static int parse_http_url(const char *url, char *host, size_t host_cap, char *port, size_t port_cap)
{
    if (strncmp(url, "https://", 8) == 0)
        return ASPEN_E_UNSUPPORTED;
    if (strncmp(url, "http://", 7) != 0)
        return ASPEN_E_INVALID;
    const char *h = url + 7;
    size_t hl = strcspn(h, "/");
    char hp[ASPEN_MAX_MEMBER_ADDR_BYTES + 1];
    if (hl == 0 || hl >= sizeof(hp))
        return ASPEN_E_INVALID;
    memcpy(hp, h, hl);
    hp[hl] = 0;
    uint16_t p = 0;
    int rc = member_split_addr(hp, host, host_cap, &p);
    if (rc)
        return rc;
    snprintf(port, port_cap, "%u", p);
    return 0;
}

static int wait_fd(int fd, short events, uint64_t deadline)
{
    uint64_t now = mono_ms();
    if (now >= deadline)
        return ASPEN_E_TIMEOUT;
    struct pollfd p = {.fd = fd, .events = events};
    int r = poll(&p, 1, (int)(deadline - now));
    if (r < 0)
        return errno == EINTR ? 0 : -errno;
    return r == 0 ? ASPEN_E_TIMEOUT : 0;
}

/* One POST; *status, the Location header (or "") and the body come back. */
static int http_post(const char *url, const char *path, struct slice body, int *status,
                     char *location, size_t loc_cap, struct buf *answer)
{
    char host[ASPEN_MAX_MEMBER_ADDR_BYTES + 1], port[8];
    int rc = parse_http_url(url, host, sizeof(host), port, sizeof(port));
    if (rc)
        return rc;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
        return ASPEN_E_UNAVAILABLE;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        freeaddrinfo(ai);
        return -errno;
    }
    uint64_t deadline = mono_ms() + ASPEN_JOIN_IO_TIMEOUT_MS;
    rc = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS ? 0 : -errno;
    freeaddrinfo(ai);
    if (!rc)
        rc = wait_fd(fd, POLLOUT, deadline);
    if (!rc) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        rc = soerr ? -soerr : 0;
    }
    struct buf req;
    buf_init(&req, JOIN_MAX_ANSWER_BYTES);
    if (!rc)
        rc = buf_printf(&req,
                        "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: text/plain\r\n"
                        "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                        path, host, port, body.len);
    if (!rc)
        rc = buf_append(&req, body.ptr, body.len);
    size_t sent = 0;
    while (!rc && sent < req.len) {
        ssize_t w = send(fd, req.data + sent, req.len - sent, MSG_NOSIGNAL);
        if (w > 0)
            sent += (size_t)w;
        else if (w < 0 && (errno == EAGAIN || errno == EINTR))
            rc = wait_fd(fd, POLLOUT, deadline);
        else
            rc = w < 0 ? -errno : ASPEN_E_CLOSED;
    }
    buf_release(&req);
    buf_clear(answer);
    while (!rc) {
        uint8_t chunk[4096];
        ssize_t got = recv(fd, chunk, sizeof(chunk), 0);
        if (got > 0) {
            rc = buf_append(answer, chunk, (size_t)got);
        } else if (got == 0) {
            break;
        } else if (errno == EAGAIN || errno == EINTR) {
            rc = wait_fd(fd, POLLIN, deadline);
        } else {
            rc = -errno;
        }
    }
    close(fd);
    if (rc)
        return rc;
    /* Status line, headers, body. */
    const char *a = (const char *)answer->data;
    size_t n = answer->len;
    const uint8_t *hdr_end = NULL;
    for (size_t i = 0; i + 3 < n; i++)
        if (memcmp(a + i, "\r\n\r\n", 4) == 0) {
            hdr_end = answer->data + i;
            break;
        }
    if (!hdr_end || n < 12 || memcmp(a, "HTTP/1.", 7) != 0)
        return ASPEN_E_MALFORMED;
    *status = atoi(a + 9);
    location[0] = 0;
    for (const char *p = a; p < (const char *)hdr_end; p++) {
        if ((p == a || p[-1] == '\n') && strncasecmp(p, "Location:", 9) == 0) {
            const char *v = p + 9;
            while (*v == ' ')
                v++;
            size_t l = strcspn(v, "\r\n");
            if (l < loc_cap) {
                memcpy(location, v, l);
                location[l] = 0;
            }
        }
    }
    size_t off = (size_t)(hdr_end - answer->data) + 4;
    memmove(answer->data, answer->data + off, n - off);
    answer->len = n - off;
    return 0;
}

int join_cluster(const struct node_config *cfg, const struct node_identity *id,
                 struct join_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    struct ticket t;
    char why[160];
    int rc = ticket_decode(cfg->join, strlen(cfg->join), &t, why, sizeof(why));
    if (rc) {
        snprintf(err, errlen, "--join: %s", why);
        return rc;
    }
    if (!cfg->join_credential[0]) {
        snprintf(err, errlen,
                 "--join needs --join-credential (create one with "
                 "POST /v1/cluster/credentials on a member)");
        return ASPEN_E_INVALID;
    }
    struct join_request jr = {0};
    snprintf(jr.credential, sizeof(jr.credential), "%s", cfg->join_credential);
    jr.member.id = id->raft_id;
    jr.member.flags = (uint8_t)(cfg->auto_promote ? 0u : KV_MEMBER_F_MANUAL_PROMOTE);
    memcpy(jr.member.pk, id->public_key, sizeof(jr.member.pk));
    snprintf(jr.member.name, sizeof(jr.member.name), "%.*s", (int)sizeof(jr.member.name) - 1,
             cfg->name);
    snprintf(jr.member.peer_addr, sizeof(jr.member.peer_addr), "%.*s",
             (int)sizeof(jr.member.peer_addr) - 1, cfg->advertise_peer_urls.items[0].text);
    size_t off = 0;
    for (uint32_t i = 0; i < cfg->advertise_client_urls.count; i++) {
        int w = snprintf(jr.member.client_urls + off, sizeof(jr.member.client_urls) - off, "%s%s",
                         i ? "," : "", cfg->advertise_client_urls.items[i].text);
        if (w < 0 || (size_t)w >= sizeof(jr.member.client_urls) - off)
            break;
        off += (size_t)w;
    }
    struct buf body, answer;
    buf_init(&body, 1 << 16);
    buf_init(&answer, JOIN_MAX_ANSWER_BYTES);
    join_request_sign(&jr, id->secret_key);
    rc = join_request_encode(&jr, &body);
    sodium_memzero(&jr, sizeof(jr));
    uint64_t deadline = mono_ms() + ASPEN_JOIN_TIMEOUT_MS;
    char last[ASPEN_MAX_MEMBER_URLS_BYTES + 512] = "no member answered";
    int result = ASPEN_E_TIMEOUT;
    for (uint32_t attempt = 0; !rc && mono_ms() < deadline; attempt++) {
        const struct member_info *m = &t.members[attempt % t.n];
        char url[ASPEN_MAX_MEMBER_URLS_BYTES + 1];
        member_first_url(m->client_urls, url, sizeof(url));
        for (int hop = 0; url[0] && hop <= ASPEN_JOIN_MAX_REDIRECTS; hop++) {
            int status = 0;
            char location[ASPEN_MAX_MEMBER_URLS_BYTES + 64];
            int prc = http_post(url, "/v1/cluster/join", buf_slice(&body), &status, location,
                                sizeof(location), &answer);
            if (prc) {
                snprintf(last, sizeof(last), "%s: %s", url, aspen_strerror(prc));
                if (prc == ASPEN_E_UNSUPPORTED) {
                    result = prc;
                    goto done;
                }
                break;
            }
            if (status == 200) {
                result = join_response_decode(buf_slice(&answer), out, why, sizeof(why));
                if (result)
                    snprintf(last, sizeof(last), "%s: %s", url, why);
                else if (out->cluster_id != t.cluster_id) {
                    snprintf(last, sizeof(last),
                             "%s answers for cluster %016" PRIx64 ", the ticket names %016" PRIx64,
                             url, out->cluster_id, t.cluster_id);
                    join_result_release(out);
                    result = ASPEN_E_INVALID;
                }
                goto done;
            }
            size_t bl = answer.len < 200 ? answer.len : 200;
            snprintf(last, sizeof(last), "%s: HTTP %d %.*s", url, status, (int)bl,
                     (const char *)answer.data);
            if (status == 307 && location[0]) {
                /* Location is the leader's URL + our path: keep the base. */
                char *p = strstr(location, "/v1/cluster/join");
                if (p)
                    *p = 0;
                snprintf(url, sizeof(url), "%.*s", (int)sizeof(url) - 1, location);
                continue;
            }
            if (status == 403 || status == 400 || status == 409) {
                result = status == 403 ? ASPEN_E_PERMISSION : ASPEN_E_INVALID;
                goto done;
            }
            break; /* 503 (no leader yet) and others: try again */
        }
        LOG_INFO("node", "join attempt failed; retrying", "last=\"%s\"", last);
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 500 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
done:
    if (rc)
        result = rc;
    if (result)
        snprintf(err, errlen, "join failed: %s", last);
    buf_release(&body);
    buf_release(&answer);
    return result;
}
