/*
 * Differential test of the storage backends under the KV state machine: the same random
 * command sequence applied on LMDB and on the memory backend must give identical results
 * (every field of every answer), identical reads (ranges at random revisions, history)
 * and identical state digests after every entry.
 *
 * The memory backend is what the simulator trusts; LMDB is what production runs. If they
 * ever differ, one of them breaks store.h's contract (ordering, cursor behaviour after
 * deletes, empty values, overwrite, clear), and the KV code above would behave differently
 * in the simulator than on disk. Commands mix puts, deletes (single, range, prefix,
 * from-key), nested txns, compactions with cleanup steps, leases, and the cluster
 * registry's commands (refused ones too); keys are binary
 * (NUL, 0xff) and some are long (past the 480-byte inline limit of the key index).
 */
#include "test.h"

#include "base/buf.h"
#include "base/mem.h"
#include "base/rand.h"
#include "kv/kv.h"
#include "storage/store_lmdb.h"
#include "storage/store_mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* For helpers that return a value (CHECK returns from the test function). */
#define NEED(x)                                                                                    \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #x);                                \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define DIFF_KEYS       24
#define DIFF_LONG_BYTES 700

struct pair {
    struct store *mem;
    struct store *lmdb;
    char dir[64];
};

static void pair_open(struct pair *p)
{
    CHECK_OK(store_mem_open(&p->mem, NULL));
    snprintf(p->dir, sizeof(p->dir), "/tmp/aspen-diff-XXXXXX");
    CHECK(mkdtemp(p->dir) != NULL);
    struct store_lmdb_options o = {.map_initial_bytes = 64u << 20, .map_max_bytes = 1u << 30};
    char err[256];
    CHECK_OK(store_lmdb_open(&p->lmdb, p->dir, &o, err, sizeof(err)));
    struct store *both[2] = {p->mem, p->lmdb};
    for (int i = 0; i < 2; i++) {
        struct store_txn *t;
        CHECK_OK(store_begin(both[i], true, &t));
        CHECK_OK(kv_init(t));
        CHECK_OK(store_commit(t, true));
    }
}

static void pair_close(struct pair *p)
{
    store_close(p->mem);
    store_close(p->lmdb);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", p->dir);
    CHECK_EQ(system(cmd), 0);
}

/* Key i of the test's universe: short binary keys, a few sharing prefixes, and long keys
 * (several sharing their first 600 bytes, so they fall in one long-key group). */
static struct slice key_of(uint32_t i, uint8_t *scratch)
{
    if (i < 16) {
        static const uint8_t shortk[16][4] = {{'a'},
                                              {'a', 0},
                                              {'a', 0, 0},
                                              {'a', 1},
                                              {'a', 0xff},
                                              {'b'},
                                              {'b', 'a'},
                                              {0},
                                              {0, 0},
                                              {0, 'x'},
                                              {0xff},
                                              {0xff, 0xff},
                                              {'c', 0xc3, 0x28},
                                              {'d'},
                                              {'d', 'd'},
                                              {'e'}};
        static const uint8_t lens[16] = {1, 2, 3, 2, 2, 1, 2, 1, 2, 2, 1, 2, 3, 1, 2, 1};
        return slice_make(shortk[i], lens[i]);
    }
    memset(scratch, 'L', DIFF_LONG_BYTES);
    scratch[600] = (uint8_t)i; /* differ after the shared 600 bytes */
    scratch[0] = i % 2 ? 'a' : 'd';
    size_t len = DIFF_LONG_BYTES - (i % 3) * 50;
    return slice_make(scratch, len);
}

struct gen {
    struct rng r;
    struct arena a; /* command storage for one entry */
    int64_t leases[8];
    uint32_t n_leases;
    int64_t max_rev_seen;
    int64_t now_ms; /* the registry commands' leader clock: never goes back */
};

static struct slice copy_key(struct gen *g, uint32_t i)
{
    uint8_t scratch[DIFF_LONG_BYTES];
    struct slice k = key_of(i, scratch);
    uint8_t *p = arena_alloc(&g->a, k.len, 1);
    NEED(p != NULL);
    memcpy(p, k.ptr, k.len);
    return slice_make(p, k.len);
}

static struct slice random_value(struct gen *g)
{
    size_t len = rng_below(&g->r, 4) == 0 ? 0 : 1 + rng_below(&g->r, 40);
    uint8_t *p = arena_alloc(&g->a, len + 1, 1);
    NEED(p != NULL);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)rng_next(&g->r);
    return slice_make(p, len);
}

static int64_t random_lease(struct gen *g)
{
    if (g->n_leases == 0 || rng_below(&g->r, 3) != 0)
        return rng_below(&g->r, 10) == 0 ? 999 : 0; /* 999: never granted */
    return g->leases[rng_below(&g->r, g->n_leases)];
}

/* A range [key, end) in etcd's forms: single key, [a, b), prefix, from-key. */
static void random_range(struct gen *g, struct slice *key, struct slice *end)
{
    uint32_t a = (uint32_t)rng_below(&g->r, DIFF_KEYS), b = (uint32_t)rng_below(&g->r, DIFF_KEYS);
    *key = copy_key(g, a);
    switch (rng_below(&g->r, 4)) {
    case 0:
        *end = slice_make(NULL, 0);
        break;
    case 1:
        *end = copy_key(g, b);
        break;
    case 2:
        *end = kv_prefix_end(*key, &g->a);
        break;
    default: {
        uint8_t *z = arena_alloc(&g->a, 1, 1);
        CHECK(z != NULL);
        z[0] = 0;
        *end = slice_make(z, 1);
    }
    }
}

static void random_put(struct gen *g, struct kv_put_req *p)
{
    memset(p, 0, sizeof(*p));
    p->key = copy_key(g, (uint32_t)rng_below(&g->r, DIFF_KEYS));
    p->value = random_value(g);
    p->lease = random_lease(g);
    p->prev_kv = rng_below(&g->r, 2);
    p->ignore_value = rng_below(&g->r, 12) == 0;
    p->ignore_lease = rng_below(&g->r, 12) == 0;
    if (p->ignore_value)
        p->value = slice_make(NULL, 0);
    if (p->ignore_lease)
        p->lease = 0;
}

static void random_txn(struct gen *g, struct kv_txn_req *t, int depth);

static void random_ops(struct gen *g, const struct kv_op **out, uint32_t *n, int depth)
{
    *n = (uint32_t)rng_below(&g->r, 4);
    struct kv_op *ops = arena_alloc(&g->a, sizeof(*ops) * (*n + 1), _Alignof(struct kv_op));
    CHECK(ops != NULL);
    memset(ops, 0, sizeof(*ops) * (*n + 1));
    for (uint32_t i = 0; i < *n; i++) {
        uint64_t k = rng_below(&g->r, depth < 2 ? 4 : 3);
        if (k == 0) {
            ops[i].kind = KV_OP_RANGE;
            random_range(g, &ops[i].u.range.key, &ops[i].u.range.range_end);
            ops[i].u.range.limit = (int64_t)rng_below(&g->r, 4);
        } else if (k == 1) {
            ops[i].kind = KV_OP_PUT;
            random_put(g, &ops[i].u.put);
        } else if (k == 2) {
            ops[i].kind = KV_OP_DELETE;
            random_range(g, &ops[i].u.del.key, &ops[i].u.del.range_end);
            ops[i].u.del.prev_kv = rng_below(&g->r, 2);
        } else {
            struct kv_txn_req *t = arena_alloc(&g->a, sizeof(*t), _Alignof(struct kv_txn_req));
            CHECK(t != NULL);
            random_txn(g, t, depth + 1);
            ops[i].kind = KV_OP_TXN;
            ops[i].u.txn = t;
        }
    }
    *out = ops;
}

static void random_txn(struct gen *g, struct kv_txn_req *t, int depth)
{
    memset(t, 0, sizeof(*t));
    t->n_compares = (uint32_t)rng_below(&g->r, 3);
    struct kv_compare *c =
        arena_alloc(&g->a, sizeof(*c) * (t->n_compares + 1), _Alignof(struct kv_compare));
    CHECK(c != NULL);
    for (uint32_t i = 0; i < t->n_compares; i++) {
        memset(&c[i], 0, sizeof(c[i]));
        c[i].result = (uint8_t)rng_below(&g->r, 4);
        c[i].target = (uint8_t)rng_below(&g->r, 5);
        if (rng_below(&g->r, 4) == 0)
            random_range(g, &c[i].key, &c[i].range_end);
        else
            c[i].key = copy_key(g, (uint32_t)rng_below(&g->r, DIFF_KEYS));
        c[i].number = (int64_t)rng_below(&g->r, 6);
        c[i].value = random_value(g);
    }
    t->compares = c;
    random_ops(g, &t->success, &t->n_success, depth);
    random_ops(g, &t->failure, &t->n_failure, depth);
}

/* A member among a few ids; now and then another key for an id (refused as EXISTS). */
static struct kv_member random_member(struct gen *g)
{
    static const char *const names[] = {"a", "node-2", "n~3"};
    struct kv_member m;
    memset(&m, 0, sizeof(m));
    m.id = 1 + rng_below(&g->r, 6);
    memset(m.pk, rng_below(&g->r, 5) == 0 ? 0xee : (int)m.id, sizeof(m.pk));
    m.name = slice_str(names[rng_below(&g->r, 3)]);
    m.peer_addr = slice_str("10.0.0.1:2380");
    m.client_urls = rng_below(&g->r, 2) ? slice_str("http://x:1") : slice_make(NULL, 0);
    return m;
}

/* A registry command: small id and hash spaces so refusals (exists, not found, expired,
 * consumed) happen often. */
static void random_cluster_cmd(struct gen *g, struct kv_cmd *cmd)
{
    g->now_ms += (int64_t)rng_below(&g->r, 50);
    switch (rng_below(&g->r, 5)) {
    case 0:
        cmd->kind = KV_CMD_CLUSTER_INIT;
        cmd->u.cluster_init.cluster_id = 1 + rng_below(&g->r, 3);
        break;
    case 1:
        cmd->kind = KV_CMD_MEMBER_SET;
        cmd->u.member_set = random_member(g);
        break;
    case 2:
        cmd->kind = KV_CMD_MEMBER_REMOVE;
        cmd->u.member_remove.id = 1 + rng_below(&g->r, 6);
        break;
    case 3:
        cmd->kind = KV_CMD_CRED_ADD;
        memset(cmd->u.cred_add.cred.hash, (int)rng_below(&g->r, 8), KV_CLUSTER_HASH_BYTES);
        cmd->u.cred_add.cred.expires_ms =
            rng_below(&g->r, 3) == 0 ? 0 : g->now_ms + (int64_t)rng_below(&g->r, 500);
        cmd->u.cred_add.cred.single_use = rng_below(&g->r, 2);
        cmd->u.cred_add.cred.created_ms = g->now_ms;
        cmd->u.cred_add.now_ms = g->now_ms;
        break;
    default:
        cmd->kind = KV_CMD_MEMBER_JOIN;
        memset(cmd->u.member_join.hash, (int)rng_below(&g->r, 8), KV_CLUSTER_HASH_BYTES);
        cmd->u.member_join.now_ms = g->now_ms;
        cmd->u.member_join.member = random_member(g);
        break;
    }
}

/* One random command, encoded into out. */
static void random_cmd(struct gen *g, int64_t current_rev, struct buf *out)
{
    struct kv_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    uint64_t k = rng_below(&g->r, 110);
    if (k < 45) {
        cmd.kind = KV_CMD_PUT;
        random_put(g, &cmd.u.put);
    } else if (k < 60) {
        cmd.kind = KV_CMD_DELETE;
        random_range(g, &cmd.u.del.key, &cmd.u.del.range_end);
        cmd.u.del.prev_kv = rng_below(&g->r, 2);
    } else if (k < 80) {
        cmd.kind = KV_CMD_TXN;
        random_txn(g, &cmd.u.txn, 0);
    } else if (k < 85) {
        cmd.kind = KV_CMD_COMPACT;
        cmd.u.compact.revision = 1 + (int64_t)rng_below(&g->r, (uint64_t)current_rev + 2);
    } else if (k < 90) {
        cmd.kind = KV_CMD_COMPACT_STEP;
    } else if (k < 95) {
        cmd.kind = KV_CMD_LEASE_GRANT;
        cmd.u.lease_grant.id = 1 + (int64_t)rng_below(&g->r, 12);
        cmd.u.lease_grant.ttl_ms = 5000;
        if (g->n_leases < 8)
            g->leases[g->n_leases++] = cmd.u.lease_grant.id;
    } else if (k < 100) {
        cmd.kind = KV_CMD_LEASE_REVOKE;
        cmd.u.lease_revoke.id = g->n_leases ? g->leases[rng_below(&g->r, g->n_leases)] : 5;
    } else {
        random_cluster_cmd(g, &cmd);
    }
    int rc = kv_cmd_encode(&cmd, out);
    /* Random txns may break the encoder's own rules (duplicate keys are refused only at
     * apply; limits at encode): fall back to a no-op then. */
    if (rc) {
        buf_clear(out);
        cmd = (struct kv_cmd){.kind = KV_CMD_NOOP};
        CHECK_OK(kv_cmd_encode(&cmd, out));
    }
}

/* Canonical bytes of results, so two results compare with memcmp. */
static void put_kv(struct buf *b, const struct kv_kv *kv)
{
    CHECK_OK(buf_append_be32(b, (uint32_t)kv->key.len));
    CHECK_OK(buf_append(b, kv->key.ptr, kv->key.len));
    CHECK_OK(buf_append_be32(b, (uint32_t)kv->value.len));
    CHECK_OK(buf_append(b, kv->value.ptr, kv->value.len));
    CHECK_OK(buf_append_be64(b, (uint64_t)kv->create_revision));
    CHECK_OK(buf_append_be64(b, (uint64_t)kv->mod_revision));
    CHECK_OK(buf_append_be64(b, (uint64_t)kv->version));
    CHECK_OK(buf_append_be64(b, (uint64_t)kv->lease));
}

static void put_range(struct buf *b, const struct kv_range_result *r)
{
    CHECK_OK(buf_append_be64(b, r->n_kvs));
    for (size_t i = 0; i < r->n_kvs; i++)
        put_kv(b, &r->kvs[i]);
    CHECK_OK(buf_append_u8(b, r->more));
    CHECK_OK(buf_append_be64(b, (uint64_t)r->count));
}

static void put_txn(struct buf *b, const struct kv_txn_result *t);

static void put_op(struct buf *b, const struct kv_op_result *o)
{
    CHECK_OK(buf_append_u8(b, o->kind));
    switch (o->kind) {
    case KV_OP_RANGE:
        put_range(b, &o->u.range);
        break;
    case KV_OP_PUT:
        CHECK_OK(buf_append_u8(b, o->u.put.has_prev));
        if (o->u.put.has_prev)
            put_kv(b, &o->u.put.prev);
        break;
    case KV_OP_DELETE:
        CHECK_OK(buf_append_be64(b, (uint64_t)o->u.del.deleted));
        for (size_t i = 0; i < o->u.del.n_prev; i++)
            put_kv(b, &o->u.del.prev_kvs[i]);
        break;
    case KV_OP_TXN:
        put_txn(b, o->u.txn);
        break;
    default:
        CHECK(false);
    }
}

static void put_txn(struct buf *b, const struct kv_txn_result *t)
{
    CHECK_OK(buf_append_u8(b, t->succeeded));
    CHECK_OK(buf_append_be32(b, (uint32_t)t->failed_compare));
    CHECK_OK(buf_append_be64(b, t->n_results));
    for (size_t i = 0; i < t->n_results; i++)
        put_op(b, &t->results[i]);
}

static void put_result(struct buf *b, const struct kv_result *r)
{
    CHECK_OK(buf_append_be32(b, (uint32_t)r->rc));
    CHECK_OK(buf_append_u8(b, r->kind));
    CHECK_OK(buf_append_be64(b, (uint64_t)r->revision));
    if (r->rc)
        return;
    switch (r->kind) {
    case KV_CMD_PUT:
        CHECK_OK(buf_append_u8(b, r->u.put.has_prev));
        if (r->u.put.has_prev)
            put_kv(b, &r->u.put.prev);
        break;
    case KV_CMD_DELETE:
        CHECK_OK(buf_append_be64(b, (uint64_t)r->u.del.deleted));
        for (size_t i = 0; i < r->u.del.n_prev; i++)
            put_kv(b, &r->u.del.prev_kvs[i]);
        break;
    case KV_CMD_TXN:
        put_txn(b, &r->u.txn);
        break;
    case KV_CMD_LEASE_GRANT:
        CHECK_OK(buf_append_be64(b, (uint64_t)r->u.lease_grant.id));
        CHECK_OK(buf_append_be64(b, (uint64_t)r->u.lease_grant.ttl_ms));
        break;
    default:
        break;
    }
}

static void put_events(struct buf *b, const struct kv_events *ev)
{
    CHECK_OK(buf_append_be64(b, ev->n));
    for (size_t i = 0; i < ev->n; i++) {
        CHECK_OK(buf_append_u8(b, ev->ev[i].type));
        put_kv(b, &ev->ev[i].kv);
        CHECK_OK(buf_append_u8(b, ev->ev[i].has_prev));
        if (ev->ev[i].has_prev)
            put_kv(b, &ev->ev[i].prev);
    }
}

/* Applies entry e on store s; appends the canonical result and events to out. */
static void apply_on(struct store *s, const struct raft_entry *e, struct buf *out)
{
    struct arena a;
    arena_init(&a, 64 * 1024, 64u << 20);
    struct kv_events ev = {.arena = &a};
    struct kv_result res;
    struct store_txn *t;
    CHECK_OK(store_begin(s, true, &t));
    CHECK_OK(kv_apply(t, e, &a, &res, &ev));
    CHECK_OK(store_commit(t, true));
    put_result(out, &res);
    put_events(out, &ev);
    arena_release(&a);
}

/* A random read on s: a range at a random revision and a history scan. */
static void read_on(struct store *s, uint64_t seed, struct buf *out)
{
    struct gen g;
    rng_seed(&g.r, seed);
    arena_init(&g.a, 64 * 1024, 64u << 20);
    struct store_txn *t;
    CHECK_OK(store_begin(s, false, &t));
    int64_t cur, compacted;
    CHECK_OK(kv_revisions(t, &cur, &compacted));
    struct kv_range_req req;
    memset(&req, 0, sizeof(req));
    random_range(&g, &req.key, &req.range_end);
    req.revision = rng_below(&g.r, 3) == 0 ? 0 : (int64_t)rng_below(&g.r, (uint64_t)cur + 2);
    req.limit = (int64_t)rng_below(&g.r, 5);
    req.sort_order = (uint8_t)rng_below(&g.r, 3);
    req.sort_target = (uint8_t)rng_below(&g.r, 5);
    req.keys_only = rng_below(&g.r, 4) == 0;
    req.count_only = rng_below(&g.r, 6) == 0;
    req.min_mod_revision =
        rng_below(&g.r, 4) == 0 ? (int64_t)rng_below(&g.r, (uint64_t)cur + 1) : 0;
    struct kv_range_result rr;
    int64_t hdr;
    int rc = kv_range(t, &req, &g.a, &rr, &hdr);
    CHECK_OK(buf_append_be32(out, (uint32_t)rc));
    if (rc == 0) {
        put_range(out, &rr);
        CHECK_OK(buf_append_be64(out, (uint64_t)hdr));
    }
    struct kv_events ev = {.arena = &g.a};
    struct slice hk, he;
    random_range(&g, &hk, &he);
    int64_t next;
    rc = kv_history(t, hk, he, 1 + (int64_t)rng_below(&g.r, (uint64_t)cur + 1), 0,
                    rng_below(&g.r, 2), 1 + rng_below(&g.r, 50), &ev, &next);
    CHECK_OK(buf_append_be32(out, (uint32_t)rc));
    if (rc == 0) {
        put_events(out, &ev);
        CHECK_OK(buf_append_be64(out, (uint64_t)next));
    }
    /* The registry: members in id order, the credential count, the cluster id. */
    struct kv_member *m;
    size_t n_m;
    rc = kv_member_list(t, &g.a, &m, &n_m);
    CHECK_OK(buf_append_be32(out, (uint32_t)rc));
    for (size_t i = 0; rc == 0 && i < n_m; i++) {
        CHECK_OK(buf_append_be64(out, m[i].id));
        CHECK_OK(buf_append(out, m[i].pk, sizeof(m[i].pk)));
        const struct slice *strs[3] = {&m[i].name, &m[i].peer_addr, &m[i].client_urls};
        for (int j = 0; j < 3; j++) {
            CHECK_OK(buf_append_be32(out, (uint32_t)strs[j]->len));
            CHECK_OK(buf_append_slice(out, *strs[j]));
        }
    }
    uint64_t n_cred = 0, cluster_id = 0;
    CHECK_OK(kv_credential_count(t, &n_cred));
    CHECK_OK(buf_append_be64(out, n_cred));
    rc = kv_cluster_id(t, &cluster_id);
    CHECK_OK(buf_append_be32(out, (uint32_t)rc));
    CHECK_OK(buf_append_be64(out, cluster_id));
    store_abort(t);
    arena_release(&g.a);
}

static void digest_of(struct store *s, uint8_t d[32])
{
    struct store_txn *t;
    CHECK_OK(store_begin(s, false, &t));
    CHECK_OK(kv_digest(t, d));
    store_abort(t);
}

static void run_diff(uint64_t seed, uint32_t n_entries)
{
    struct pair p;
    pair_open(&p);
    struct gen g;
    memset(&g, 0, sizeof(g));
    rng_seed(&g.r, seed);
    arena_init(&g.a, 64 * 1024, 64u << 20);
    struct buf cmd, ra, rb;
    buf_init(&cmd, ASPEN_MAX_REQUEST_BYTES);
    buf_init(&ra, 256u << 20);
    buf_init(&rb, 256u << 20);
    int64_t rev = 1;
    for (uint32_t i = 1; i <= n_entries; i++) {
        buf_clear(&cmd);
        uint64_t shape = rng_below(&g.r, 20);
        struct raft_entry e = {.term = 1 + i / 100, .index = i, .type = RAFT_ENTRY_NORMAL};
        if (shape == 0) {
            e.type = RAFT_ENTRY_CONF; /* only advances the applied index */
        } else if (shape != 1) {
            random_cmd(&g, rev, &cmd);
            e.data = cmd.data;
            e.len = (uint32_t)cmd.len;
        }
        buf_clear(&ra);
        buf_clear(&rb);
        apply_on(p.mem, &e, &ra);
        apply_on(p.lmdb, &e, &rb);
        if (ra.len != rb.len || memcmp(ra.data, rb.data, ra.len) != 0) {
            fprintf(stderr, "seed %llu entry %u: results differ\n", (unsigned long long)seed, i);
            CHECK(false);
        }
        uint8_t da[32], db[32];
        digest_of(p.mem, da);
        digest_of(p.lmdb, db);
        if (memcmp(da, db, 32) != 0) {
            fprintf(stderr, "seed %llu entry %u: digests differ\n", (unsigned long long)seed, i);
            CHECK(false);
        }
        struct store_txn *t;
        CHECK_OK(store_begin(p.mem, false, &t));
        int64_t compacted;
        CHECK_OK(kv_revisions(t, &rev, &compacted));
        store_abort(t);
        uint64_t rs = rng_next(&g.r);
        buf_clear(&ra);
        buf_clear(&rb);
        read_on(p.mem, rs, &ra);
        read_on(p.lmdb, rs, &rb);
        if (ra.len != rb.len || memcmp(ra.data, rb.data, ra.len) != 0) {
            fprintf(stderr, "seed %llu entry %u: reads differ\n", (unsigned long long)seed, i);
            CHECK(false);
        }
        arena_reset(&g.a);
    }
    buf_release(&cmd);
    buf_release(&ra);
    buf_release(&rb);
    arena_release(&g.a);
    pair_close(&p);
}

static void test_backends_agree(void)
{
    uint64_t base = test_seed();
    for (uint64_t s = 0; s < 6; s++)
        run_diff(base + s, 400);
}

static const struct test_case tests[] = {
    TEST(test_backends_agree),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("backend_diff", tests);
}
