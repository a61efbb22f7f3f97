/*
 * The node's HTTP routes: health and metrics for monitoring, and an admin / KV API for
 * operators with curl, scripts/local-cluster and the integration tests. The etcd v3 gRPC
 * API (issue 6) will be the main client API; this one stays for operations.
 *
 *   GET    /health                      200 {"health":"true"} with a leader, else 503
 *   GET    /metrics                     Prometheus text exposition
 *   GET    /v1/status                   this node: role, term, indexes, leader
 *   GET    /v1/cluster/members          the member table with each member's raft role
 *   GET    /v1/cluster/ticket           a ticket for joining (no secret)
 *   POST   /v1/cluster/credentials[?ttl=SECONDS][&reusable]   a join credential (leader)
 *   POST   /v1/cluster/join             a new node asks to join (join.h's body; leader)
 *   POST   /v1/cluster/members/ID/promote                     learner → voter (leader)
 *   DELETE /v1/cluster/members/ID       remove a member (leader)
 *   POST   /v1/cluster/transfer?to=ID   hand leadership over (leader)
 *   POST   /v1/cluster/snapshot         take a snapshot now (any node)
 *   GET    /v1/kv/KEY[?serializable][&prefix]   value (raw body) or, with prefix, JSON
 *   PUT    /v1/kv/KEY                   body = value (leader)
 *   DELETE /v1/kv/KEY[?prefix]          (leader)
 *
 * Writes on a follower answer 307 with the leader's client URL in Location (curl -L
 * follows it), or 503 when no leader is known: the HTTP form of NOT_LEADER with a
 * leader hint. Reads are linearizable (ReadIndex, thesis §6.4) on any node unless
 * `serializable` asks for the local state. Errors are JSON {"error": "...", "code": "..."}.
 */
#include "node/internal.h"

#include "base/hash.h"
#include "base/log.h"
#include "node/join.h"
#include "node/ticket.h"

#include <aspen/error.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_TYPE "application/json"
#define TEXT_TYPE "text/plain; charset=utf-8"

/* ---- small helpers ---- */

static void json_escape(struct buf *b, const uint8_t *p, size_t n)
{
    (void)buf_append_u8(b, '"');
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c == '"' || c == '\\') {
            (void)buf_append_u8(b, '\\');
            (void)buf_append_u8(b, c);
        } else if (c < 0x20 || c >= 0x7f) {
            (void)buf_printf(b, "\\u%04x", c);
        } else {
            (void)buf_append_u8(b, c);
        }
    }
    (void)buf_append_u8(b, '"');
}

static void json_str(struct buf *b, const char *s)
{
    json_escape(b, (const uint8_t *)s, strlen(s));
}

static void respond_buf(struct http_exchange *x, int status, const char *type, struct buf *b)
{
    http_respond(x, status, type, NULL, b->data, b->len);
    buf_release(b);
}

static int status_of(int rc)
{
    switch (rc) {
    case ASPEN_E_INVALID:
    case ASPEN_E_MALFORMED:
    case ASPEN_E_TRUNCATED:
        return 400;
    case ASPEN_E_PERMISSION:
        return 403;
    case ASPEN_E_NOT_FOUND:
    case ASPEN_E_LEASE_NOT_FOUND:
        return 404;
    case ASPEN_E_EXISTS:
    case ASPEN_E_PRECONDITION:
        return 409;
    case ASPEN_E_COMPACTED:
    case ASPEN_E_FUTURE_REV:
        return 410;
    case ASPEN_E_TOO_LARGE:
        return 413;
    case ASPEN_E_BUSY:
    case ASPEN_E_LIMIT:
        return 429;
    case ASPEN_E_TIMEOUT:
        return 504;
    case ASPEN_E_NOT_LEADER:
    case ASPEN_E_CLOSED:
    case ASPEN_E_UNAVAILABLE:
        return 503;
    default:
        return 500;
    }
}

/* Appends a string literal (its length known at compile time). */
#define buf_append_lit(b, lit) buf_append((b), lit, sizeof(lit) - 1)

/* Responds with a string literal body (its length known at compile time). */
#define RESPOND_LIT(x, status, hdr, lit)                                                           \
    http_respond((x), (status), JSON_TYPE, (hdr), lit, sizeof(lit) - 1)

static void respond_error(struct http_exchange *x, int rc, const char *msg)
{
    struct buf b;
    buf_init(&b, 4096);
    (void)buf_append_lit(&b, "{\"error\":");
    json_str(&b, msg ? msg : aspen_strerror(rc));
    (void)buf_printf(&b, ",\"code\":\"%s\"}\n", aspen_err_name(rc));
    respond_buf(x, status_of(rc), JSON_TYPE, &b);
}

static bool method_is(const struct http_request *r, const char *m)
{
    return r->method.len == strlen(m) && memcmp(r->method.ptr, m, r->method.len) == 0;
}

static bool path_is(const struct http_request *r, const char *p)
{
    return r->path.len == strlen(p) && memcmp(r->path.ptr, p, r->path.len) == 0;
}

static bool path_starts(const struct http_request *r, const char *p)
{
    return r->path.len >= strlen(p) && memcmp(r->path.ptr, p, strlen(p)) == 0;
}

static const char *role_name(uint8_t role)
{
    switch (role) {
    case RAFT_LEADER:
        return "leader";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_PRE_CANDIDATE:
        return "pre-candidate";
    default:
        return "follower";
    }
}

/* Answers a write on a follower: a redirect to the leader's client URL, or 503. */
static void not_leader(struct node *n, struct http_exchange *x, raft_id hint)
{
    const struct member_info *m = members_find(n, hint ? hint : n->leader);
    char url[ASPEN_MAX_MEMBER_URLS_BYTES + 1];
    if (m)
        member_first_url(m->client_urls, url, sizeof(url));
    if (!m || !url[0]) {
        respond_error(x, ASPEN_E_NOT_LEADER, "this node is not the leader and no leader is known");
        return;
    }
    const struct http_request *r = http_exchange_request(x);
    char hdr[ASPEN_MAX_MEMBER_URLS_BYTES + 64 + ASPEN_HTTP_MAX_HEADER_BYTES];
    snprintf(hdr, sizeof(hdr), "Location: %s%.*s\r\n", url, (int)r->target.len,
             (const char *)r->target.ptr);
    struct buf b;
    buf_init(&b, 4096);
    (void)buf_append_lit(&b, "{\"error\":\"not the leader\",\"code\":\"NOT_LEADER\",\"leader\":");
    json_str(&b, m->name);
    (void)buf_append_lit(&b, ",\"leader_url\":");
    json_str(&b, url);
    (void)buf_append_lit(&b, "}\n");
    http_respond(x, 307, JSON_TYPE, hdr, b.data, b.len);
    buf_release(&b);
}

/* ---- calls that wait for the log ---- */

enum call_kind {
    CALL_PUT = 1,
    CALL_DELETE,
    CALL_GET,
    CALL_CRED,
    CALL_JOIN_RECORD,
    CALL_JOIN_CONF,
    CALL_CONF,
    CALL_REMOVE_CONF,
    CALL_REMOVE_RECORD,
};

struct api_call {
    struct node_waiter w; /* first: the waiter's callback finds the call */
    struct node *n;
    struct http_exchange *x;
    uint8_t kind;
    bool prefix;
    raft_id member; /* join / remove */
    char secret[2 * ASPEN_JOIN_CREDENTIAL_BYTES + 1];
    uint8_t key[ASPEN_MAX_KEY_BYTES];
    size_t key_len;
};

static void call_done(struct node_waiter *w, int rc, const struct kv_result *res, raft_index index);

static void call_free(struct api_call *c)
{
    mem_free(c);
}

static int call_propose(struct api_call *c, const struct kv_cmd *cmd, raft_id *hint)
{
    struct buf b;
    buf_init(&b, ASPEN_MAX_REQUEST_BYTES);
    int rc = kv_cmd_encode(cmd, &b);
    if (!rc) {
        c->w.done = call_done;
        rc = shell_propose(c->n, buf_slice(&b), &c->w, ASPEN_NODE_REQUEST_TIMEOUT_MS, hint);
    }
    buf_release(&b);
    return rc;
}

static int call_conf(struct api_call *c, uint8_t type, raft_id node, raft_id *hint)
{
    struct raft_conf_change cc = {.transition = RAFT_TRANSITION_AUTO, .n_changes = 1};
    cc.changes[0] = (struct raft_change){.type = type, .node = node};
    c->w.done = call_done;
    return shell_conf_change(c->n, &cc, &c->w, ASPEN_NODE_REQUEST_TIMEOUT_MS, hint);
}

/* Starts c's first step; on an immediate error answers and frees c. */
static void call_start_failed(struct api_call *c, int rc, raft_id hint)
{
    if (rc == ASPEN_E_NOT_LEADER)
        not_leader(c->n, c->x, hint);
    else
        respond_error(c->x, rc, NULL);
    call_free(c);
}

static void serve_get(struct node *n, struct http_exchange *x, const uint8_t *key, size_t key_len,
                      bool prefix);

static void members_json(struct node *n, struct buf *b);

static void join_answer(struct api_call *c)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    int rc = join_response_encode(c->n->cluster_id, c->n->members, c->n->n_members, &b);
    if (rc) {
        buf_release(&b);
        respond_error(c->x, rc, NULL);
        return;
    }
    respond_buf(c->x, 200, TEXT_TYPE, &b);
}

static void call_done(struct node_waiter *w, int rc, const struct kv_result *res, raft_index index)
{
    struct api_call *c = (struct api_call *)w;
    struct node *n = c->n;
    if (rc) {
        respond_error(c->x, rc,
                      rc == ASPEN_E_TIMEOUT ? "timed out waiting for raft; the outcome is unknown"
                                            : NULL);
        call_free(c);
        return;
    }
    struct buf b;
    buf_init(&b, 1 << 20);
    raft_id hint = 0;
    switch (c->kind) {
    case CALL_PUT:
        if (res->rc) {
            buf_release(&b);
            respond_error(c->x, res->rc, NULL);
            break;
        }
        (void)buf_printf(&b, "{\"revision\":%" PRId64 ",\"index\":%" PRIu64 "}\n", res->revision,
                         index);
        respond_buf(c->x, 200, JSON_TYPE, &b);
        break;
    case CALL_DELETE:
        (void)buf_printf(&b, "{\"deleted\":%" PRId64 ",\"revision\":%" PRId64 "}\n",
                         res->u.del.deleted, res->revision);
        respond_buf(c->x, 200, JSON_TYPE, &b);
        break;
    case CALL_GET:
        buf_release(&b);
        serve_get(n, c->x, c->key, c->key_len, c->prefix);
        break;
    case CALL_CRED:
        if (res->rc) {
            buf_release(&b);
            respond_error(c->x, res->rc, NULL);
            break;
        }
        (void)buf_printf(&b, "%s\n", c->secret);
        respond_buf(c->x, 200, TEXT_TYPE, &b);
        break;
    case CALL_JOIN_RECORD: {
        buf_release(&b);
        if (res->rc) {
            respond_error(c->x, res->rc,
                          res->rc == ASPEN_E_PERMISSION
                              ? "join credential refused (unknown, used or expired)"
                          : res->rc == ASPEN_E_EXISTS ? "another key is recorded for this id"
                                                      : NULL);
            break;
        }
        const struct raft_config *cfg = raft_config(n->raft);
        if (raft_config_is_voter(cfg, c->member) || raft_config_is_learner(cfg, c->member)) {
            join_answer(c); /* a retry: already in the configuration */
            break;
        }
        c->kind = CALL_JOIN_CONF;
        rc = call_conf(c, RAFT_CHANGE_ADD_LEARNER, c->member, &hint);
        if (rc) {
            call_start_failed(c, rc, hint);
            return;
        }
        LOG_INFO("node", "joining node recorded; adding it as a learner", "id=%016" PRIx64,
                 c->member);
        return; /* waits again */
    }
    case CALL_JOIN_CONF:
        buf_release(&b);
        join_answer(c);
        break;
    case CALL_CONF:
        (void)buf_printf(&b, "{\"index\":%" PRIu64 "}\n", index);
        respond_buf(c->x, 200, JSON_TYPE, &b);
        break;
    case CALL_REMOVE_CONF: {
        buf_release(&b);
        c->kind = CALL_REMOVE_RECORD;
        struct kv_cmd cmd = {.kind = KV_CMD_MEMBER_REMOVE};
        cmd.u.member_remove.id = c->member;
        rc = n->raft ? call_propose(c, &cmd, &hint) : ASPEN_E_CLOSED;
        if (rc == ASPEN_E_NOT_LEADER) {
            /* A leader that removed itself has stepped down and no new leader is known
             * to forward to yet: the record stays until an admin removes it on the new
             * leader (it is harmless: not in the configuration, so it takes part in
             * nothing). */
            buf_init(&b, 256);
            (void)buf_printf(&b, "{\"index\":%" PRIu64 ",\"record\":\"kept\"}\n", index);
            respond_buf(c->x, 200, JSON_TYPE, &b);
            call_free(c);
            return;
        }
        if (rc) {
            call_start_failed(c, rc, hint);
            return;
        }
        return;
    }
    case CALL_REMOVE_RECORD:
        (void)buf_printf(&b, "{\"index\":%" PRIu64 "}\n", index);
        respond_buf(c->x, 200, JSON_TYPE, &b);
        break;
    default:
        buf_release(&b);
        respond_error(c->x, ASPEN_E_INTERNAL, NULL);
    }
    call_free(c);
}

static struct api_call *call_new(struct node *n, struct http_exchange *x, uint8_t kind)
{
    struct api_call *c = mem_calloc(1, sizeof(*c));
    if (!c) {
        respond_error(x, ASPEN_E_NOMEM, NULL);
        return NULL;
    }
    c->n = n;
    c->x = x;
    c->kind = kind;
    return c;
}

/* ---- KV ---- */

static void kv_json(struct buf *b, const struct kv_kv *kv)
{
    (void)buf_append_lit(b, "{\"key\":");
    json_escape(b, kv->key.ptr, kv->key.len);
    (void)buf_append_lit(b, ",\"value\":");
    json_escape(b, kv->value.ptr, kv->value.len);
    (void)buf_printf(b,
                     ",\"create_revision\":%" PRId64 ",\"mod_revision\":%" PRId64
                     ",\"version\":%" PRId64 ",\"lease\":%" PRId64 "}",
                     kv->create_revision, kv->mod_revision, kv->version, kv->lease);
}

static void serve_get(struct node *n, struct http_exchange *x, const uint8_t *key, size_t key_len,
                      bool prefix)
{
    if (!n->store) {
        respond_error(x, ASPEN_E_CLOSED, NULL);
        return;
    }
    struct store_txn *t = NULL;
    int rc = store_begin(n->store, false, &t);
    if (rc) {
        respond_error(x, rc, NULL);
        return;
    }
    struct arena a;
    arena_init(&a, 64 * ASPEN_KIB, ASPEN_MAX_RPC_MESSAGE_BYTES * 2);
    struct kv_range_req req = {.key = slice_make(key, key_len)};
    if (prefix)
        req.range_end = kv_prefix_end(req.key, &a);
    struct kv_range_result res;
    int64_t rev = 0;
    rc = kv_range(t, &req, &a, &res, &rev);
    store_abort(t);
    if (rc) {
        arena_release(&a);
        respond_error(x, rc, NULL);
        return;
    }
    char hdr[128];
    if (!prefix) {
        if (res.n_kvs == 0) {
            snprintf(hdr, sizeof(hdr), "X-Aspen-Revision: %" PRId64 "\r\n", rev);
            RESPOND_LIT(x, 404, hdr, "{\"error\":\"key not found\",\"code\":\"NOT_FOUND\"}\n");
        } else {
            const struct kv_kv *kv = &res.kvs[0];
            snprintf(hdr, sizeof(hdr),
                     "X-Aspen-Revision: %" PRId64 "\r\nX-Aspen-Mod-Revision: %" PRId64
                     "\r\nX-Aspen-Version: %" PRId64 "\r\n",
                     rev, kv->mod_revision, kv->version);
            http_respond(x, 200, "application/octet-stream", hdr, kv->value.ptr, kv->value.len);
        }
        arena_release(&a);
        return;
    }
    struct buf b;
    buf_init(&b, ASPEN_HTTP_MAX_RESPONSE_BYTES);
    (void)buf_printf(&b, "{\"revision\":%" PRId64 ",\"count\":%" PRId64 ",\"more\":%s,\"kvs\":[",
                     rev, res.count, res.more ? "true" : "false");
    for (size_t i = 0; i < res.n_kvs; i++) {
        if (i)
            (void)buf_append_u8(&b, ',');
        kv_json(&b, &res.kvs[i]);
    }
    (void)buf_append_lit(&b, "]}\n");
    arena_release(&a);
    respond_buf(x, 200, JSON_TYPE, &b);
}

static void route_kv(struct node *n, struct http_exchange *x, const struct http_request *r)
{
    struct slice raw = slice_make(r->path.ptr + 7, r->path.len - 7); /* after "/v1/kv/" */
    uint8_t key[ASPEN_MAX_KEY_BYTES];
    long kl = http_percent_decode(raw, key, sizeof(key), false);
    if (kl <= 0) {
        respond_error(x, ASPEN_E_INVALID, kl == 0 ? "empty key" : "bad key (escape or length)");
        return;
    }
    struct slice v;
    bool prefix = http_query_param(r->query, "prefix", &v);
    bool serializable = http_query_param(r->query, "serializable", &v);
    raft_id hint = 0;
    int rc;
    if (method_is(r, "GET")) {
        if (serializable) {
            serve_get(n, x, key, (size_t)kl, prefix);
            return;
        }
        struct api_call *c = call_new(n, x, CALL_GET);
        if (!c)
            return;
        memcpy(c->key, key, (size_t)kl);
        c->key_len = (size_t)kl;
        c->prefix = prefix;
        c->w.done = call_done;
        rc = shell_read(n, &c->w, ASPEN_NODE_REQUEST_TIMEOUT_MS, &hint);
        if (rc)
            call_start_failed(c, rc, hint);
        return;
    }
    struct kv_cmd cmd = {0};
    uint8_t kind;
    struct arena a;
    arena_init(&a, 1024, 4 * ASPEN_KIB);
    if (method_is(r, "PUT") || method_is(r, "POST")) {
        kind = CALL_PUT;
        cmd.kind = KV_CMD_PUT;
        cmd.u.put.key = slice_make(key, (size_t)kl);
        cmd.u.put.value = r->body;
    } else if (method_is(r, "DELETE")) {
        kind = CALL_DELETE;
        cmd.kind = KV_CMD_DELETE;
        cmd.u.del.key = slice_make(key, (size_t)kl);
        if (prefix)
            cmd.u.del.range_end = kv_prefix_end(cmd.u.del.key, &a);
    } else {
        arena_release(&a);
        RESPOND_LIT(x, 405, "Allow: GET, PUT, POST, DELETE\r\n",
                    "{\"error\":\"method not allowed\",\"code\":\"INVALID\"}\n");
        return;
    }
    struct api_call *c = call_new(n, x, kind);
    if (!c) {
        arena_release(&a);
        return;
    }
    rc = call_propose(c, &cmd, &hint);
    arena_release(&a);
    if (rc)
        call_start_failed(c, rc, hint);
}

/* ---- status and membership ---- */

static const char *member_role(struct node *n, raft_id id)
{
    const struct raft_config *cfg = raft_config(n->raft);
    if (raft_config_is_voter(cfg, id))
        return id == n->leader ? "leader" : "voter";
    if (raft_config_is_learner(cfg, id))
        return "learner";
    return "none";
}

static void members_json(struct node *n, struct buf *b)
{
    (void)buf_printf(b, "{\"cluster_id\":\"%016" PRIx64 "\",\"members\":[", n->cluster_id);
    for (size_t i = 0; i < n->n_members; i++) {
        const struct member_info *m = &n->members[i];
        char pk[2 * KV_CLUSTER_PK_BYTES + 1];
        hash_to_hex(m->pk, sizeof(m->pk), pk);
        (void)buf_printf(b, "%s{\"id\":\"%016" PRIx64 "\",\"name\":", i ? "," : "", m->id);
        json_str(b, m->name);
        (void)buf_printf(b, ",\"public_key\":\"%s\",\"peer_addr\":", pk);
        json_str(b, m->peer_addr);
        (void)buf_append_lit(b, ",\"client_urls\":");
        json_str(b, m->client_urls);
        (void)buf_printf(b, ",\"role\":\"%s\"", n->raft ? member_role(n, m->id) : "unknown");
        if (m->id != n->id.raft_id && n->net_open) {
            /* How this node sees the peer: its outgoing connection and smoothed RTT. */
            struct net_peer_stats ps;
            net_stats(&n->net, m->pk, &ps);
            (void)buf_printf(b, ",\"connected\":%s,\"rtt_ms\":%.3f",
                             ps.connections_up ? "true" : "false", (double)ps.rtt_us / 1000.0);
        }
        (void)buf_append(b, "}", 1);
    }
    (void)buf_append_lit(b, "]}\n");
}

static void route_status(struct node *n, struct http_exchange *x)
{
    struct raft_status st;
    raft_status(n->raft, &st);
    const struct member_info *lm = members_find(n, st.leader);
    struct buf b;
    buf_init(&b, 8192);
    (void)buf_append_lit(&b, "{\"name\":");
    json_str(&b, n->cfg.name);
    (void)buf_printf(
        &b,
        ",\"id\":\"%016" PRIx64 "\",\"public_key\":\"%s\",\"cluster_id\":\"%016" PRIx64
        "\",\"role\":\"%s\",\"term\":%" PRIu64 ",\"leader\":\"%016" PRIx64 "\",\"leader_name\":",
        n->id.raft_id, n->id.id, n->cluster_id, role_name(st.role), st.hard_state.term, st.leader);
    json_str(&b, lm ? lm->name : "");
    (void)buf_printf(&b,
                     ",\"commit\":%" PRIu64 ",\"applied\":%" PRIu64 ",\"last_index\":%" PRIu64
                     ",\"snapshot_index\":%" PRIu64 ",\"members\":%zu,\"member_role\":\"%s\"}\n",
                     st.hard_state.commit, n->applied, st.last_index, st.snapshot_index,
                     n->n_members, member_role(n, n->id.raft_id));
    respond_buf(x, 200, JSON_TYPE, &b);
}

static void route_ticket(struct node *n, struct http_exchange *x)
{
    struct ticket t = {.cluster_id = n->cluster_id};
    const struct raft_config *cfg = raft_config(n->raft);
    for (size_t i = 0; i < n->n_members && t.n < ASPEN_MAX_VOTERS; i++)
        if (raft_config_is_voter(cfg, n->members[i].id))
            t.members[t.n++] = n->members[i];
    if (t.cluster_id == 0 || t.n == 0) {
        respond_error(x, ASPEN_E_UNAVAILABLE, "the member registry is not known yet");
        return;
    }
    struct buf b;
    buf_init(&b, 1 << 16);
    int rc = ticket_encode(&t, &b);
    if (!rc)
        rc = buf_append_u8(&b, '\n');
    if (rc) {
        buf_release(&b);
        respond_error(x, rc, NULL);
        return;
    }
    respond_buf(x, 200, TEXT_TYPE, &b);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void route_credentials(struct node *n, struct http_exchange *x, const struct http_request *r)
{
    struct slice v;
    int64_t ttl_ms = ASPEN_JOIN_CREDENTIAL_TTL_MS;
    if (http_query_param(r->query, "ttl", &v)) {
        char tmp[24];
        if (v.len == 0 || v.len >= sizeof(tmp)) {
            respond_error(x, ASPEN_E_INVALID, "ttl: seconds expected");
            return;
        }
        memcpy(tmp, v.ptr, v.len);
        tmp[v.len] = 0;
        char *end = NULL;
        long long s = strtoll(tmp, &end, 10);
        if (*end || s < 0 || s > 365LL * 24 * 3600) {
            respond_error(x, ASPEN_E_INVALID, "ttl: seconds from 0 (never expires) to a year");
            return;
        }
        ttl_ms = s * 1000;
    }
    bool reusable = http_query_param(r->query, "reusable", &v);
    struct api_call *c = call_new(n, x, CALL_CRED);
    if (!c)
        return;
    uint8_t raw[ASPEN_JOIN_CREDENTIAL_BYTES];
    rng_fill(&n->rng, raw, sizeof(raw));
    hash_to_hex(raw, sizeof(raw), c->secret);
    struct kv_cmd cmd = {.kind = KV_CMD_CRED_ADD};
    int64_t now = wall_ms();
    hash_bytes(c->secret, strlen(c->secret), cmd.u.cred_add.cred.hash);
    cmd.u.cred_add.cred.expires_ms = ttl_ms ? now + ttl_ms : 0;
    cmd.u.cred_add.cred.single_use = !reusable;
    cmd.u.cred_add.cred.created_ms = now;
    cmd.u.cred_add.now_ms = now;
    raft_id hint = 0;
    int rc = call_propose(c, &cmd, &hint);
    if (rc)
        call_start_failed(c, rc, hint);
}

static void route_join(struct node *n, struct http_exchange *x, const struct http_request *r)
{
    struct join_request jr;
    char why[160];
    int rc = join_request_decode(r->body, &jr, why, sizeof(why));
    if (rc) {
        respond_error(x, rc, why);
        return;
    }
    if (n->role != RAFT_LEADER) {
        not_leader(n, x, 0);
        return;
    }
    struct api_call *c = call_new(n, x, CALL_JOIN_RECORD);
    if (!c)
        return;
    c->member = jr.member.id;
    struct kv_cmd cmd = {.kind = KV_CMD_MEMBER_JOIN};
    hash_bytes(jr.credential, strlen(jr.credential), cmd.u.member_join.hash);
    cmd.u.member_join.now_ms = wall_ms();
    cmd.u.member_join.member = member_to_kv(&jr.member);
    LOG_INFO("node", "join request", "name=%s peer=%s from=%s", jr.member.name, jr.member.peer_addr,
             http_exchange_peer(x));
    raft_id hint = 0;
    rc = call_propose(c, &cmd, &hint);
    memset(&jr, 0, sizeof(jr));
    if (rc)
        call_start_failed(c, rc, hint);
}

static int parse_id(struct slice s, raft_id *out)
{
    if (s.len == 0 || s.len > 16)
        return ASPEN_E_INVALID;
    char tmp[17];
    memcpy(tmp, s.ptr, s.len);
    tmp[s.len] = 0;
    char *end = NULL;
    unsigned long long v = strtoull(tmp, &end, 16);
    if (*end || v == 0)
        return ASPEN_E_INVALID;
    *out = v;
    return 0;
}

/* /v1/cluster/members/ID[/promote] */
static void route_member(struct node *n, struct http_exchange *x, const struct http_request *r)
{
    const char *base = "/v1/cluster/members/";
    struct slice rest = slice_make(r->path.ptr + strlen(base), r->path.len - strlen(base));
    const uint8_t *slash = memchr(rest.ptr, '/', rest.len);
    struct slice ids = slash ? slice_make(rest.ptr, (size_t)(slash - rest.ptr)) : rest;
    struct slice verb = slash ? slice_make(slash + 1, rest.len - ids.len - 1) : slice_make("", 0);
    raft_id id = 0;
    if (parse_id(ids, &id)) {
        respond_error(x, ASPEN_E_INVALID, "member id: 16 hex digits expected");
        return;
    }
    bool promote = verb.len == 7 && memcmp(verb.ptr, "promote", 7) == 0;
    uint8_t kind, type;
    if (promote && method_is(r, "POST")) {
        kind = CALL_CONF;
        type = RAFT_CHANGE_ADD_VOTER;
        if (!raft_config_is_learner(raft_config(n->raft), id)) {
            respond_error(x, ASPEN_E_PRECONDITION, "not a learner");
            return;
        }
    } else if (verb.len == 0 && method_is(r, "DELETE")) {
        kind = CALL_REMOVE_CONF;
        type = RAFT_CHANGE_REMOVE;
    } else {
        respond_error(x, ASPEN_E_INVALID, "use POST .../ID/promote or DELETE .../ID");
        return;
    }
    struct api_call *c = call_new(n, x, kind);
    if (!c)
        return;
    c->member = id;
    raft_id hint = 0;
    int rc = call_conf(c, type, id, &hint);
    if (rc)
        call_start_failed(c, rc, hint);
}

static void route_transfer(struct node *n, struct http_exchange *x, const struct http_request *r)
{
    struct slice v;
    raft_id to = 0;
    if (!http_query_param(r->query, "to", &v) || parse_id(v, &to)) {
        respond_error(x, ASPEN_E_INVALID, "to: a member id (16 hex digits) expected");
        return;
    }
    if (n->role != RAFT_LEADER) {
        not_leader(n, x, 0);
        return;
    }
    struct raft_event ev = {.type = RAFT_EVENT_TRANSFER};
    ev.u.node = to;
    int rc = shell_step(n, &ev, NULL);
    if (rc) {
        respond_error(x, rc, NULL);
        return;
    }
    RESPOND_LIT(x, 202, NULL, "{\"transfer\":\"started\"}\n");
}

static void route_health(struct node *n, struct http_exchange *x)
{
    if (n->stopping)
        RESPOND_LIT(x, 503, NULL, "{\"health\":\"false\",\"reason\":\"SHUTTING DOWN\"}\n");
    else if (!n->leader)
        RESPOND_LIT(x, 503, NULL, "{\"health\":\"false\",\"reason\":\"RAFT NO LEADER\"}\n");
    else
        RESPOND_LIT(x, 200, NULL, "{\"health\":\"true\",\"reason\":\"\"}\n");
}

static void route_metrics(struct node *n, struct http_exchange *x)
{
    metrics_update(n);
    struct buf b;
    buf_init(&b, ASPEN_HTTP_MAX_RESPONSE_BYTES);
    int rc = metrics_render(&n->metrics, &b);
    if (rc) {
        buf_release(&b);
        respond_error(x, rc, NULL);
        return;
    }
    respond_buf(x, 200, METRICS_CONTENT_TYPE, &b);
}

void api_on_request(void *ctx, struct http_exchange *x)
{
    struct node *n = ctx;
    const struct http_request *r = http_exchange_request(x);
    bool get = method_is(r, "GET") || method_is(r, "HEAD");
    if (!n->raft) {
        respond_error(x, ASPEN_E_CLOSED, "the node is shutting down");
    } else if (path_is(r, "/health") && get) {
        route_health(n, x);
    } else if (path_is(r, "/metrics") && get) {
        route_metrics(n, x);
    } else if (path_starts(r, "/v1/kv/")) {
        route_kv(n, x, r);
    } else if (path_is(r, "/v1/status") && get) {
        route_status(n, x);
    } else if (path_is(r, "/v1/cluster/members") && get) {
        struct buf b;
        buf_init(&b, 1 << 20);
        members_json(n, &b);
        respond_buf(x, 200, JSON_TYPE, &b);
    } else if (path_is(r, "/v1/cluster/ticket") && get) {
        route_ticket(n, x);
    } else if (path_is(r, "/v1/cluster/credentials") && method_is(r, "POST")) {
        route_credentials(n, x, r);
    } else if (path_is(r, "/v1/cluster/join") && method_is(r, "POST")) {
        route_join(n, x, r);
    } else if (path_starts(r, "/v1/cluster/members/")) {
        route_member(n, x, r);
    } else if (path_is(r, "/v1/cluster/transfer") && method_is(r, "POST")) {
        route_transfer(n, x, r);
    } else if (path_is(r, "/v1/cluster/snapshot") && method_is(r, "POST")) {
        shell_snapshot_now(n);
        RESPOND_LIT(x, 202, NULL, "{\"snapshot\":\"started\"}\n");
    } else {
        respond_error(x, ASPEN_E_NOT_FOUND, "no such endpoint");
    }
}

/* ---- metrics ---- */

int metrics_setup(struct node *n)
{
    struct metrics_registry *r = &n->metrics;
    int rc = 0;
#define GAUGE(field, name, help)                                                                   \
    if (!rc)                                                                                       \
    rc = metrics_register_gauge(r, name, help, NULL, 0, &n->m.field)
#define COUNTER(field, name, help)                                                                 \
    if (!rc)                                                                                       \
    rc = metrics_register_counter(r, name, help, NULL, 0, &n->m.field)
    GAUGE(term, "aspen_raft_term", "The current Raft term.");
    GAUGE(role, "aspen_raft_role", "0 follower, 1 pre-candidate, 2 candidate, 3 leader.");
    GAUGE(is_leader, "aspen_server_is_leader", "1 if this node is the leader.");
    GAUGE(has_leader, "aspen_server_has_leader", "1 if a leader is known.");
    GAUGE(commit, "aspen_raft_commit_index", "The Raft commit index.");
    GAUGE(applied, "aspen_raft_applied_index", "The index applied durably to the KV state.");
    GAUGE(leader_changes_seen, "aspen_server_leader_changes_seen",
          "Leader changes this node has seen since it started.");
    GAUGE(members, "aspen_cluster_members", "Member records in the registry.");
    COUNTER(proposals, "aspen_raft_proposals_total", "Entries proposed by clients on this node.");
    COUNTER(proposals_failed, "aspen_raft_proposals_failed_total",
            "Proposals refused (not leader, busy, too large).");
    COUNTER(reads, "aspen_raft_reads_total", "Linearizable reads started.");
    COUNTER(jobs, "aspen_storage_jobs_total", "Durable raft updates written.");
    COUNTER(msgs_sent, "aspen_peer_messages_sent_total", "Raft messages queued to peers.");
    COUNTER(msgs_received, "aspen_peer_messages_received_total", "Raft messages from peers.");
    COUNTER(msgs_dropped, "aspen_peer_messages_dropped_total",
            "Raft messages dropped (unknown peer, full queue, back-pressure).");
    COUNTER(snapshots_sent, "aspen_snapshot_sent_total",
            "Snapshots sent to followers and installed by them.");
    COUNTER(snapshot_send_failures, "aspen_snapshot_send_failures_total",
            "Snapshot transfers to followers that failed or could not start.");
    COUNTER(snapshots_installed, "aspen_snapshot_installed_total",
            "Snapshots received from a leader and installed.");
    COUNTER(snapshot_recv_failures, "aspen_snapshot_receive_failures_total",
            "Incoming snapshot transfers abandoned (stall, bad stream, disk error).");
    COUNTER(forwarded, "aspen_proposals_forwarded_total",
            "Proposals this follower forwarded to the leader.");
#undef GAUGE
#undef COUNTER
    /* Disk: a group commit is LMDB's page writes plus its fsyncs, so its duration is
     * what a write waits for on the disk (etcd's backend commit duration). */
    double b[ASPEN_METRICS_MAX_BUCKETS];
    size_t nb = metrics_buckets_exponential(0.0001, 2, 16, b); /* 100 us .. 3.3 s */
    if (!rc)
        rc = metrics_register_histogram(
            &n->metrics, "aspen_disk_commit_duration_seconds",
            "Duration of a durable group commit (page writes and fsyncs).", NULL, 0, b, nb,
            &n->m.commit_seconds);
    double bj[ASPEN_METRICS_MAX_BUCKETS];
    size_t nbj = metrics_buckets_exponential(1, 2, 12, bj); /* 1 .. 2048 */
    if (!rc)
        rc = metrics_register_histogram(&n->metrics, "aspen_disk_commit_batch_jobs",
                                        "Raft updates written by one group commit.", NULL, 0, bj,
                                        nbj, &n->m.batch_jobs);
    size_t nr = metrics_buckets_exponential(0.0001, 2, 16, b);
    if (!rc)
        rc = metrics_register_histogram(
            &n->metrics, "aspen_network_peer_round_trip_time_seconds",
            "Peers' smoothed TCP round-trip time, sampled once a second per connected peer.", NULL,
            0, b, nr, &n->m.peer_rtt_seconds);
    return rc;
}

void metrics_tick(struct node *n)
{
    uint64_t now = node_now_ms(n);
    if (now - n->rtt_sampled_ms < 1000 || !n->net_open)
        return;
    n->rtt_sampled_ms = now;
    for (size_t i = 0; i < n->n_members; i++) {
        if (n->members[i].id == n->id.raft_id)
            continue;
        struct net_peer_stats ps;
        net_stats(&n->net, n->members[i].pk, &ps);
        if (ps.connections_up && ps.rtt_us)
            metrics_histogram_observe(n->m.peer_rtt_seconds, (double)ps.rtt_us / 1e6);
    }
}

void metrics_update(struct node *n)
{
    if (!n->raft)
        return;
    struct raft_status st;
    raft_status(n->raft, &st);
    n->m.term->value = (int64_t)st.hard_state.term;
    n->m.role->value = st.role;
    n->m.is_leader->value = st.role == RAFT_LEADER;
    n->m.has_leader->value = st.leader != 0;
    n->m.commit->value = (int64_t)st.hard_state.commit;
    n->m.applied->value = (int64_t)n->applied;
}
