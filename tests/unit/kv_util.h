/*
 * Helpers shared by the KV state machine suites (test_kv*.c): a memory store with the KV
 * state machine on it, commands applied as real log entries (encoded, applied in order
 * inside a write transaction, committed), and short constructors for requests. Results
 * live in one arena per fixture, released at the end of the test.
 */
#ifndef ASPEN_TEST_KV_UTIL_H
#define ASPEN_TEST_KV_UTIL_H

#include "test.h"

#include "base/buf.h"
#include "base/mem.h"
#include "kv/kv.h"
#include "storage/store_mem.h"

#include <stdio.h>
#include <string.h>

struct kvt {
    struct store *s;
    uint64_t index;
    struct arena a;
    struct kv_events ev;
};

static inline int kvt_open(struct kvt *k)
{
    memset(k, 0, sizeof(*k));
    arena_init(&k->a, 1u << 16, 1u << 30);
    k->ev.arena = &k->a;
    int rc = store_mem_open(&k->s, NULL);
    if (rc)
        return rc;
    struct store_txn *t;
    if ((rc = store_begin(k->s, true, &t)))
        return rc;
    if ((rc = kv_init(t))) {
        store_abort(t);
        return rc;
    }
    return store_commit(t, true);
}

static inline void kvt_close(struct kvt *k)
{
    store_close(k->s);
    arena_release(&k->a);
}

/* Applies raw entry data as the next entry. Returns kv_apply's code. */
static inline int kvt_apply_raw(struct kvt *k, uint8_t type, const uint8_t *data, size_t len,
                                struct kv_result *res)
{
    struct raft_entry e = {.term = 1,
                           .index = k->index + 1,
                           .type = type,
                           .len = (uint32_t)len,
                           .data = (uint8_t *)data};
    struct store_txn *t;
    int rc = store_begin(k->s, true, &t);
    if (rc)
        return rc;
    k->ev = (struct kv_events){.arena = &k->a};
    rc = kv_apply(t, &e, &k->a, res, &k->ev);
    if (rc) {
        store_abort(t);
        return rc;
    }
    k->index++;
    return store_commit(t, true);
}

/* Encodes and applies cmd; returns the apply's code, or the command's refusal (res->rc). */
static inline int kvt_apply(struct kvt *k, const struct kv_cmd *cmd, struct kv_result *res)
{
    struct kv_result local;
    if (!res)
        res = &local;
    struct buf b;
    buf_init(&b, ASPEN_MAX_REQUEST_BYTES);
    int rc = kv_cmd_encode(cmd, &b);
    if (!rc)
        rc = kvt_apply_raw(k, RAFT_ENTRY_NORMAL, b.data, b.len, res);
    buf_release(&b);
    return rc ? rc : res->rc;
}

static inline struct slice S(const char *s) {
    return slice_str(s);
}

static inline int
kvt_put(struct kvt *k, const char *key, const char *val, int64_t lease)
{
    struct kv_cmd c = {.kind = KV_CMD_PUT};
    c.u.put.key = S(key);
    c.u.put.value = S(val);
    c.u.put.lease = lease;
    return kvt_apply(k, &c, NULL);
}

static inline int kvt_put_bin(struct kvt *k, struct slice key, struct slice val)
{
    struct kv_cmd c = {.kind = KV_CMD_PUT};
    c.u.put.key = key;
    c.u.put.value = val;
    return kvt_apply(k, &c, NULL);
}

static inline int kvt_del(struct kvt *k, const char *key, const char *end, int64_t *deleted)
{
    struct kv_cmd c = {.kind = KV_CMD_DELETE};
    c.u.del.key = S(key);
    c.u.del.range_end = end ? S(end) : slice_make(NULL, 0);
    struct kv_result r;
    int rc = kvt_apply(k, &c, &r);
    if (deleted)
        *deleted = r.u.del.deleted;
    return rc;
}

static inline int kvt_compact(struct kvt *k, int64_t rev)
{
    struct kv_cmd c = {.kind = KV_CMD_COMPACT};
    c.u.compact.revision = rev;
    return kvt_apply(k, &c, NULL);
}

static inline int kvt_grant(struct kvt *k, int64_t id)
{
    struct kv_cmd c = {.kind = KV_CMD_LEASE_GRANT};
    c.u.lease_grant.id = id;
    c.u.lease_grant.ttl_ms = 5000;
    return kvt_apply(k, &c, NULL);
}

static inline int kvt_revoke(struct kvt *k, int64_t id)
{
    struct kv_cmd c = {.kind = KV_CMD_LEASE_REVOKE};
    c.u.lease_revoke.id = id;
    return kvt_apply(k, &c, NULL);
}

static inline int kvt_range(struct kvt *k, const struct kv_range_req *req,
                            struct kv_range_result *out, int64_t *header)
{
    struct store_txn *t;
    int rc = store_begin(k->s, false, &t);
    if (rc)
        return rc;
    rc = kv_range(t, req, &k->a, out, header);
    store_abort(t);
    return rc;
}

/* A range over [key, end) at rev (end NULL: the single key). */
static inline int kvt_get(struct kvt *k, const char *key, const char *end, int64_t rev,
                          struct kv_range_result *out)
{
    struct kv_range_req q = {.key = S(key), .revision = rev};
    if (end)
        q.range_end = S(end);
    return kvt_range(k, &q, out, NULL);
}

static inline int64_t kvt_rev(struct kvt *k)
{
    struct store_txn *t;
    int64_t cur = -1, compacted;
    if (store_begin(k->s, false, &t))
        return -1;
    if (kv_revisions(t, &cur, &compacted))
        cur = -1;
    store_abort(t);
    return cur;
}

static inline int kvt_digest(struct kvt *k, uint8_t out[32])
{
    struct store_txn *t;
    int rc = store_begin(k->s, false, &t);
    if (rc)
        return rc;
    rc = kv_digest(t, out);
    store_abort(t);
    return rc;
}

static inline bool kv_eq_str(const struct kv_kv *kv, const char *key, const char *val)
{
    return slice_eq(kv->key, S(key)) && (!val || slice_eq(kv->value, S(val)));
}

#endif
