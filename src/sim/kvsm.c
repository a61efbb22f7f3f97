/*
 * The real KV state machine (src/kv) on the in-memory storage backend, behind the
 * simulator's sm_ops — so every simulated cluster replicates, applies, snapshots and
 * restores with the production code, and the simulator's determinism and linearizability
 * checks cover it.
 *
 * The workload's register operations become etcd commands: PUT is a Put, CAS a Txn
 * (compare the value — or create_revision == 0 for "absent" — then Put), DELETE a
 * DeleteRange of one key, and GET a Range. Register k is the binary key "\0k" ++ byte k
 * (a NUL in every key, since keys are raw bytes); a value is its 8 big-endian bytes.
 * Entry data is a small header naming the operation (kind, register, id and client: what
 * the simulator needs to answer the right client) followed by the encoded kv_cmd.
 *
 * Each state machine is one memory store, always committed with sync: the simulator's
 * own disk model decides what a crash loses, and copies whole states with
 * store_mem_clone. Snapshots are the production snapshot stream (kv/snapshot.h): its
 * chunks, each prefixed with its length.
 */
#include "sim/kvsm.h"

#include "base/assert.h"
#include "base/hash.h"
#include "base/mem.h"
#include "kv/kv.h"
#include "kv/snapshot.h"
#include "storage/store_mem.h"

#include <string.h>

#define KVSM_MAGIC       0x4b                /* 'K' */
#define KVSM_HEADER      (1 + 1 + 1 + 8 + 4) /* magic, kind, register, op id, client */
#define KVSM_ARENA_CHUNK (64 * 1024)

struct kvsm {
    struct store *st; /* owned */
    struct arena arena;
};

static void key_of(uint32_t k, uint8_t out[3])
{
    out[0] = 0;
    out[1] = 'k';
    out[2] = (uint8_t)k;
}

/* A new memory store holding an empty, initialised KV state. */
static int fresh_store(struct store **out)
{
    struct store_txn *t;
    int rc = store_mem_open(out, NULL);
    if (rc)
        return rc;
    if ((rc = store_begin(*out, true, &t)) == 0) {
        rc = kv_init(t);
        rc = rc ? (store_abort(t), rc) : store_commit(t, true);
    }
    if (rc) {
        store_close(*out);
        *out = NULL;
    }
    return rc;
}

static int kvsm_create(void **out)
{
    struct kvsm *m = mem_calloc(1, sizeof(*m));
    if (!m)
        return ASPEN_E_NOMEM;
    int rc = fresh_store(&m->st);
    if (rc) {
        mem_free(m);
        return rc;
    }
    arena_init(&m->arena, KVSM_ARENA_CHUNK, ASPEN_MAX_SNAPSHOT_BYTES);
    *out = m;
    return 0;
}

static void kvsm_free(void *sm)
{
    struct kvsm *m = sm;
    store_close(m->st);
    arena_release(&m->arena);
    mem_free(m);
}

static int kvsm_copy(void *dst, void *src)
{
    struct kvsm *d = dst, *s = src;
    struct store *clone;
    int rc = store_mem_clone(s->st, &clone);
    if (rc)
        return rc;
    store_close(d->st);
    d->st = clone;
    return 0;
}

static int kvsm_encode(const struct model_op *op, struct buf *out)
{
    uint8_t key[3], value[8], expect[8];
    key_of(op->key, key);
    be64_store(value, op->value);
    be64_store(expect, op->expect);
    struct kv_cmd cmd = {0};
    struct kv_compare cmp = {.result = KV_CMP_EQUAL, .key = slice_make(key, sizeof(key))};
    struct kv_op put = {.kind = KV_OP_PUT};
    put.u.put.key = slice_make(key, sizeof(key));
    put.u.put.value = slice_make(value, sizeof(value));
    switch (op->kind) {
    case MODEL_OP_PUT:
        cmd.kind = KV_CMD_PUT;
        cmd.u.put = put.u.put;
        break;
    case MODEL_OP_CAS:
        if (op->expect == 0) {
            cmp.target = KV_CMP_CREATE;
            cmp.number = 0;
        } else {
            cmp.target = KV_CMP_VALUE;
            cmp.value = slice_make(expect, sizeof(expect));
        }
        cmd.kind = KV_CMD_TXN;
        cmd.u.txn =
            (struct kv_txn_req){.compares = &cmp, .n_compares = 1, .success = &put, .n_success = 1};
        break;
    case MODEL_OP_DELETE:
        cmd.kind = KV_CMD_DELETE;
        cmd.u.del.key = slice_make(key, sizeof(key));
        break;
    default:
        return ASPEN_E_INVALID;
    }
    int rc = buf_append_u8(out, KVSM_MAGIC);
    rc = rc ? rc : buf_append_u8(out, op->kind);
    rc = rc ? rc : buf_append_u8(out, op->key);
    rc = rc ? rc : buf_append_be64(out, op->op_id);
    rc = rc ? rc : buf_append_be32(out, op->client);
    return rc ? rc : kv_cmd_encode(&cmd, out);
}

/* The register's value in t (0: absent). */
static int read_value(struct kvsm *m, struct store_txn *t, uint32_t k, uint64_t *value)
{
    uint8_t key[3];
    key_of(k, key);
    struct kv_range_req req = {.key = slice_make(key, sizeof(key))};
    struct kv_range_result rr;
    int64_t rev;
    int rc = kv_range(t, &req, &m->arena, &rr, &rev);
    if (rc)
        return rc;
    *value = 0;
    if (rr.n_kvs == 1) {
        if (rr.kvs[0].value.len != 8)
            return ASPEN_E_MALFORMED;
        *value = be64_load(rr.kvs[0].value.ptr);
    }
    return 0;
}

static int kvsm_apply(void *sm, const struct raft_entry *e, struct sm_result *res)
{
    struct kvsm *m = sm;
    *res = (struct sm_result){0};
    struct raft_entry sub = *e;
    uint8_t kind = 0, key = 0;
    if (e->type == RAFT_ENTRY_NORMAL && e->len > 0) {
        if (e->len < KVSM_HEADER || e->data[0] != KVSM_MAGIC)
            return ASPEN_E_MALFORMED;
        kind = e->data[1];
        key = e->data[2];
        res->is_op = true;
        res->op_id = be64_load(e->data + 3);
        res->client = be32_load(e->data + 11);
        sub.data = e->data + KVSM_HEADER;
        sub.len = e->len - KVSM_HEADER;
    }
    struct store_txn *t;
    int rc = store_begin(m->st, true, &t);
    if (rc)
        return rc;
    struct kv_result kr;
    rc = kv_apply(t, &sub, &m->arena, &kr, NULL);
    if (rc == 0 && res->is_op) {
        if (kr.rc == ASPEN_E_MALFORMED) {
            rc = ASPEN_E_MALFORMED;
        } else {
            switch (kind) {
            case MODEL_OP_PUT:
                res->ok = true;
                break;
            case MODEL_OP_CAS:
                res->ok = kr.u.txn.succeeded;
                break;
            case MODEL_OP_DELETE:
                res->ok = kr.u.del.deleted > 0;
                break;
            default:
                rc = ASPEN_E_MALFORMED;
            }
            if (rc == 0)
                rc = read_value(m, t, key, &res->value);
        }
    }
    arena_reset(&m->arena);
    if (rc) {
        store_abort(t);
        return rc;
    }
    return store_commit(t, true);
}

static int kvsm_snapshot(void *sm, struct buf *out)
{
    struct kvsm *m = sm;
    struct store_txn *t;
    int rc = store_begin(m->st, false, &t);
    if (rc)
        return rc;
    struct raft_snapshot_meta meta = {0};
    raft_term term;
    rc = kv_applied(t, &meta.index, &term);
    meta.term = term;
    if (rc) {
        store_abort(t);
        return rc;
    }
    struct kv_snapshot_writer w;
    kv_snapshot_writer_init(&w, t, &meta);
    struct buf chunk;
    buf_init(&chunk, ASPEN_SNAPSHOT_CHUNK_MAX_BYTES);
    for (;;) {
        buf_clear(&chunk);
        rc = kv_snapshot_writer_next(&w, &chunk);
        if (rc == ASPEN_E_NOT_FOUND) {
            rc = 0;
            break;
        }
        if (rc || (rc = buf_append_be32(out, (uint32_t)chunk.len)) != 0 ||
            (rc = buf_append(out, chunk.data, chunk.len)) != 0)
            break;
    }
    buf_release(&chunk);
    kv_snapshot_writer_release(&w);
    store_abort(t);
    return rc;
}

static int kvsm_restore(void *sm, const uint8_t *blob, size_t len)
{
    struct kvsm *m = sm;
    struct store_txn *t;
    int rc;
    if (len == 0) {
        /* The empty state: a fresh store. */
        struct store *fresh;
        if ((rc = fresh_store(&fresh)) != 0)
            return rc;
        store_close(m->st);
        m->st = fresh;
        return 0;
    }
    if ((rc = store_begin(m->st, true, &t)) != 0)
        return rc;
    struct kv_snapshot_reader r;
    rc = kv_snapshot_reader_begin(&r, t);
    struct reader in = reader_make(slice_make(blob, len));
    while (rc == 0 && in.left > 0) {
        uint32_t n;
        struct slice chunk;
        if ((rc = reader_be32(&in, &n)) != 0 || (rc = reader_bytes(&in, n, &chunk)) != 0)
            rc = ASPEN_E_MALFORMED;
        else
            rc = kv_snapshot_reader_chunk(&r, chunk);
    }
    struct raft_snapshot_meta meta;
    if (rc == 0)
        rc = kv_snapshot_reader_end(&r, &meta);
    if (rc) {
        store_abort(t);
        return ASPEN_E_MALFORMED;
    }
    return store_commit(t, true);
}

static uint64_t kvsm_digest(void *sm)
{
    struct kvsm *m = sm;
    struct store_txn *t;
    uint8_t d[32] = {0};
    int rc = store_begin(m->st, false, &t);
    ASPEN_ASSERT(rc == 0);
    rc = kv_digest(t, d);
    ASPEN_ASSERT(rc == 0);
    store_abort(t);
    return be64_load(d);
}

static void kvsm_get(void *sm, uint32_t key, struct sm_result *res)
{
    struct kvsm *m = sm;
    struct store_txn *t;
    *res = (struct sm_result){.is_op = true, .ok = true};
    int rc = store_begin(m->st, false, &t);
    ASPEN_ASSERT(rc == 0);
    rc = read_value(m, t, key, &res->value);
    ASPEN_ASSERT(rc == 0);
    store_abort(t);
    arena_reset(&m->arena);
}

const struct sm_ops kvsm_ops = {
    .name = "kv",
    .create = kvsm_create,
    .free = kvsm_free,
    .copy = kvsm_copy,
    .encode = kvsm_encode,
    .apply = kvsm_apply,
    .snapshot = kvsm_snapshot,
    .restore = kvsm_restore,
    .digest = kvsm_digest,
    .get = kvsm_get,
};
