/*
 * The binary encoding of KV commands (kv_cmd_encode / kv_cmd_decode): what a Raft log
 * entry carries. It is stored in the log forever and replayed by every replica, so it is
 * versioned and strictly validated in both directions — the encoder refuses what the
 * decoder would refuse, and the decoder accepts only canonical bytes (so a decoded
 * command re-encodes to the same bytes).
 *
 * Layout (u8 = one byte, var = unsigned LEB128 varint in canonical form, zz = an int64
 * zigzag-mapped then written as var, bytes = var length ++ that many bytes):
 *   cmd     = u8 0xA1 (magic nibble 0xA, format version 1) ++ u8 kind ++ body
 *   PUT     = put                     put   = u8 flags (1 prev_kv, 2 ignore_value,
 *   DELETE  = del                             4 ignore_lease) ++ zz lease ++ bytes key
 *   TXN     = txn                             ++ bytes value
 *   COMPACT = zz revision             del   = u8 flags (1 prev_kv) ++ bytes key ++ bytes end
 *   COMPACT_STEP, NOOP = nothing      range = u8 flags (1 keys_only, 2 count_only) ++
 *   LEASE_GRANT  = zz id ++ zz ttl_ms         u8 sort_order ++ u8 sort_target ++ bytes key
 *   LEASE_REVOKE = zz id                      ++ bytes end ++ zz limit ++ zz revision ++
 *   txn = var n ++ cmp*n ++ var n ++ op*n     zz min_mod ++ zz max_mod ++ zz min_create ++
 *         ++ var n ++ op*n                    zz max_create
 *   op  = u8 kind (1 range, 2 put, 3 del, 4 txn) ++ that body
 *   cmp = u8 result ++ u8 target ++ bytes key ++ bytes end ++ (bytes value | zz number)
 * The cluster registry (kv/cluster.h; u8[32] = 32 raw bytes):
 *   CLUSTER_INIT  = var cluster_id
 *   MEMBER_SET    = member
 *   MEMBER_REMOVE = var id
 *   CRED_ADD      = u8[32] hash ++ zz expires_ms ++ u8 flags (1 single_use) ++ zz created_ms
 *                   ++ zz now_ms
 *   MEMBER_JOIN   = u8[32] hash ++ zz now_ms ++ member
 *   member        = var id ++ u8[32] pk ++ bytes name ++ bytes peer_addr ++ bytes client_urls
 *                   ++ u8 flags
 * Nothing may follow the body.
 *
 * Limits: keys 1..ASPEN_MAX_KEY_BYTES, range ends up to the same, values up to
 * ASPEN_MAX_VALUE_BYTES, a whole command up to ASPEN_MAX_REQUEST_BYTES, txn nesting up to
 * ASPEN_MAX_TXN_DEPTH levels and ASPEN_MAX_TXN_OPS operations (and as many compares) in
 * all levels together; registry ids != 0, member strings and times as kv_member_check
 * and kv_credential_check (kv/cluster.c) say, now_ms >= 0. The decoder checks every count
 * against both its limit and the bytes left before allocating, so hostile input cannot
 * make it allocate much.
 */
#include "kv/internal.h"

#include "base/assert.h"
#include "base/constants.h"

#include <string.h>

#define KV_CMD_MAGIC 0xA1u

#define PUT_PREV_KV      0x01u
#define PUT_IGNORE_VALUE 0x02u
#define PUT_IGNORE_LEASE 0x04u
#define DEL_PREV_KV      0x01u
#define RANGE_KEYS_ONLY  0x01u
#define RANGE_COUNT_ONLY 0x02u
#define CRED_SINGLE_USE  0x01u

struct budget {
    uint32_t ops;
    uint32_t cmps;
};

/* ---------------------------------------------------------------------------------------
 * Rules (shared by both directions)
 * ------------------------------------------------------------------------------------- */

static int check_key(struct slice k)
{
    if (k.len == 0)
        return ASPEN_E_INVALID;
    if (k.len > ASPEN_MAX_KEY_BYTES)
        return ASPEN_E_TOO_LARGE;
    return 0;
}

static int check_end(struct slice e)
{
    return e.len > ASPEN_MAX_KEY_BYTES ? ASPEN_E_TOO_LARGE : 0;
}

static int check_put(const struct kv_put_req *p)
{
    int rc = check_key(p->key);
    if (rc)
        return rc;
    if (p->value.len > ASPEN_MAX_VALUE_BYTES)
        return ASPEN_E_TOO_LARGE;
    /* etcd refuses a lease with ignore_lease (ErrLeaseProvided). */
    if (p->lease < 0 || (p->ignore_lease && p->lease != 0))
        return ASPEN_E_INVALID;
    return 0;
}

static int check_del(const struct kv_delete_req *d)
{
    int rc = check_key(d->key);
    return rc ? rc : check_end(d->range_end);
}

static int check_range(const struct kv_range_req *r)
{
    int rc = check_key(r->key);
    if (rc || (rc = check_end(r->range_end)))
        return rc;
    if (r->sort_order > KV_SORT_DESCEND || r->sort_target > KV_SORT_VALUE || r->limit < 0 ||
        r->min_mod_revision < 0 || r->max_mod_revision < 0 || r->min_create_revision < 0 ||
        r->max_create_revision < 0)
        return ASPEN_E_INVALID;
    return 0;
}

static int check_compare(const struct kv_compare *c)
{
    int rc = check_key(c->key);
    if (rc || (rc = check_end(c->range_end)))
        return rc;
    if (c->result > KV_CMP_NOT_EQUAL || c->target > KV_CMP_LEASE)
        return ASPEN_E_INVALID;
    if (c->target == KV_CMP_VALUE && c->value.len > ASPEN_MAX_VALUE_BYTES)
        return ASPEN_E_TOO_LARGE;
    return 0;
}

static int check_txn(const struct kv_txn_req *t, unsigned depth, struct budget *b);

static int check_ops(const struct kv_op *ops, uint32_t n, unsigned depth, struct budget *b)
{
    if (n > ASPEN_MAX_TXN_OPS - b->ops)
        return ASPEN_E_TOO_LARGE;
    b->ops += n;
    for (uint32_t i = 0; i < n; i++) {
        const struct kv_op *op = &ops[i];
        int rc;
        switch (op->kind) {
        case KV_OP_RANGE:
            rc = check_range(&op->u.range);
            break;
        case KV_OP_PUT:
            rc = check_put(&op->u.put);
            break;
        case KV_OP_DELETE:
            rc = check_del(&op->u.del);
            break;
        case KV_OP_TXN:
            rc = op->u.txn ? check_txn(op->u.txn, depth + 1, b) : ASPEN_E_INVALID;
            break;
        default:
            rc = ASPEN_E_INVALID;
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int check_txn(const struct kv_txn_req *t, unsigned depth, struct budget *b)
{
    if (depth > ASPEN_MAX_TXN_DEPTH)
        return ASPEN_E_TOO_LARGE;
    if (t->n_compares > ASPEN_MAX_TXN_OPS - b->cmps)
        return ASPEN_E_TOO_LARGE;
    b->cmps += t->n_compares;
    for (uint32_t i = 0; i < t->n_compares; i++) {
        int rc = check_compare(&t->compares[i]);
        if (rc)
            return rc;
    }
    int rc = check_ops(t->success, t->n_success, depth, b);
    return rc ? rc : check_ops(t->failure, t->n_failure, depth, b);
}

static int check_cmd(const struct kv_cmd *c)
{
    struct budget b = {0, 0};
    switch (c->kind) {
    case KV_CMD_PUT:
        return check_put(&c->u.put);
    case KV_CMD_DELETE:
        return check_del(&c->u.del);
    case KV_CMD_TXN:
        return check_txn(&c->u.txn, 1, &b);
    case KV_CMD_COMPACT:
        return c->u.compact.revision > 0 ? 0 : ASPEN_E_INVALID;
    case KV_CMD_LEASE_GRANT:
        if (c->u.lease_grant.id <= 0 || c->u.lease_grant.ttl_ms < ASPEN_LEASE_MIN_TTL_MS ||
            (uint64_t)c->u.lease_grant.ttl_ms > ASPEN_LEASE_MAX_TTL_MS)
            return ASPEN_E_INVALID;
        return 0;
    case KV_CMD_LEASE_REVOKE:
        return c->u.lease_revoke.id > 0 ? 0 : ASPEN_E_INVALID;
    case KV_CMD_COMPACT_STEP:
    case KV_CMD_NOOP:
        return 0;
    case KV_CMD_CLUSTER_INIT:
        return c->u.cluster_init.cluster_id != 0 ? 0 : ASPEN_E_INVALID;
    case KV_CMD_MEMBER_SET:
        return kv_member_check(&c->u.member_set);
    case KV_CMD_MEMBER_REMOVE:
        return c->u.member_remove.id != 0 ? 0 : ASPEN_E_INVALID;
    case KV_CMD_CRED_ADD:
        if (c->u.cred_add.now_ms < 0)
            return ASPEN_E_INVALID;
        return kv_credential_check(&c->u.cred_add.cred);
    case KV_CMD_MEMBER_JOIN:
        if (c->u.member_join.now_ms < 0)
            return ASPEN_E_INVALID;
        return kv_member_check(&c->u.member_join.member);
    default:
        return ASPEN_E_INVALID;
    }
}

/* ---------------------------------------------------------------------------------------
 * Encoding
 * ------------------------------------------------------------------------------------- */

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static int put_var(struct buf *out, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    return buf_append(out, tmp, n);
}

static int put_zz(struct buf *out, int64_t v)
{
    return put_var(out, zigzag(v));
}

static int put_bytes(struct buf *out, struct slice s)
{
    int rc = put_var(out, s.len);
    return rc ? rc : buf_append(out, s.ptr, s.len);
}

static int enc_put(struct buf *o, const struct kv_put_req *p)
{
    uint8_t f =
        (uint8_t)((p->prev_kv ? PUT_PREV_KV : 0) | (p->ignore_value ? PUT_IGNORE_VALUE : 0) |
                  (p->ignore_lease ? PUT_IGNORE_LEASE : 0));
    int rc = buf_append_u8(o, f);
    if (!rc)
        rc = put_zz(o, p->lease);
    if (!rc)
        rc = put_bytes(o, p->key);
    if (!rc)
        rc = put_bytes(o, p->value);
    return rc;
}

static int enc_del(struct buf *o, const struct kv_delete_req *d)
{
    int rc = buf_append_u8(o, d->prev_kv ? DEL_PREV_KV : 0);
    if (!rc)
        rc = put_bytes(o, d->key);
    if (!rc)
        rc = put_bytes(o, d->range_end);
    return rc;
}

static int enc_range(struct buf *o, const struct kv_range_req *r)
{
    uint8_t f =
        (uint8_t)((r->keys_only ? RANGE_KEYS_ONLY : 0) | (r->count_only ? RANGE_COUNT_ONLY : 0));
    uint8_t head[3] = {f, r->sort_order, r->sort_target};
    int rc = buf_append(o, head, 3);
    if (!rc)
        rc = put_bytes(o, r->key);
    if (!rc)
        rc = put_bytes(o, r->range_end);
    const int64_t nums[6] = {r->limit,
                             r->revision,
                             r->min_mod_revision,
                             r->max_mod_revision,
                             r->min_create_revision,
                             r->max_create_revision};
    for (int i = 0; i < 6 && !rc; i++)
        rc = put_zz(o, nums[i]);
    return rc;
}

static int enc_txn(struct buf *o, const struct kv_txn_req *t);

static int enc_ops(struct buf *o, const struct kv_op *ops, uint32_t n)
{
    int rc = put_var(o, n);
    for (uint32_t i = 0; i < n && !rc; i++) {
        rc = buf_append_u8(o, ops[i].kind);
        if (rc)
            break;
        switch (ops[i].kind) {
        case KV_OP_RANGE:
            rc = enc_range(o, &ops[i].u.range);
            break;
        case KV_OP_PUT:
            rc = enc_put(o, &ops[i].u.put);
            break;
        case KV_OP_DELETE:
            rc = enc_del(o, &ops[i].u.del);
            break;
        case KV_OP_TXN:
            rc = enc_txn(o, ops[i].u.txn);
            break;
        default:
            ASPEN_UNREACHABLE(); /* check_cmd ran first */
        }
    }
    return rc;
}

static int enc_txn(struct buf *o, const struct kv_txn_req *t)
{
    int rc = put_var(o, t->n_compares);
    for (uint32_t i = 0; i < t->n_compares && !rc; i++) {
        const struct kv_compare *c = &t->compares[i];
        uint8_t head[2] = {c->result, c->target};
        rc = buf_append(o, head, 2);
        if (!rc)
            rc = put_bytes(o, c->key);
        if (!rc)
            rc = put_bytes(o, c->range_end);
        if (!rc)
            rc = c->target == KV_CMP_VALUE ? put_bytes(o, c->value) : put_zz(o, c->number);
    }
    if (!rc)
        rc = enc_ops(o, t->success, t->n_success);
    if (!rc)
        rc = enc_ops(o, t->failure, t->n_failure);
    return rc;
}

static int enc_member(struct buf *o, const struct kv_member *m)
{
    int rc = put_var(o, m->id);
    if (!rc)
        rc = buf_append(o, m->pk, KV_CLUSTER_PK_BYTES);
    if (!rc)
        rc = put_bytes(o, m->name);
    if (!rc)
        rc = put_bytes(o, m->peer_addr);
    if (!rc)
        rc = put_bytes(o, m->client_urls);
    if (!rc)
        rc = buf_append_u8(o, m->flags);
    return rc;
}

static int enc_cred_add(struct buf *o, const struct kv_credential *c, int64_t now_ms)
{
    int rc = buf_append(o, c->hash, KV_CLUSTER_HASH_BYTES);
    if (!rc)
        rc = put_zz(o, c->expires_ms);
    if (!rc)
        rc = buf_append_u8(o, c->single_use ? CRED_SINGLE_USE : 0);
    if (!rc)
        rc = put_zz(o, c->created_ms);
    if (!rc)
        rc = put_zz(o, now_ms);
    return rc;
}

int kv_cmd_encode(const struct kv_cmd *cmd, struct buf *out)
{
    int rc = check_cmd(cmd);
    if (rc)
        return rc;
    size_t start = out->len;
    uint8_t head[2] = {KV_CMD_MAGIC, cmd->kind};
    rc = buf_append(out, head, 2);
    if (rc)
        goto fail;
    switch (cmd->kind) {
    case KV_CMD_PUT:
        rc = enc_put(out, &cmd->u.put);
        break;
    case KV_CMD_DELETE:
        rc = enc_del(out, &cmd->u.del);
        break;
    case KV_CMD_TXN:
        rc = enc_txn(out, &cmd->u.txn);
        break;
    case KV_CMD_COMPACT:
        rc = put_zz(out, cmd->u.compact.revision);
        break;
    case KV_CMD_LEASE_GRANT:
        rc = put_zz(out, cmd->u.lease_grant.id);
        if (!rc)
            rc = put_zz(out, cmd->u.lease_grant.ttl_ms);
        break;
    case KV_CMD_LEASE_REVOKE:
        rc = put_zz(out, cmd->u.lease_revoke.id);
        break;
    case KV_CMD_CLUSTER_INIT:
        rc = put_var(out, cmd->u.cluster_init.cluster_id);
        break;
    case KV_CMD_MEMBER_SET:
        rc = enc_member(out, &cmd->u.member_set);
        break;
    case KV_CMD_MEMBER_REMOVE:
        rc = put_var(out, cmd->u.member_remove.id);
        break;
    case KV_CMD_CRED_ADD:
        rc = enc_cred_add(out, &cmd->u.cred_add.cred, cmd->u.cred_add.now_ms);
        break;
    case KV_CMD_MEMBER_JOIN:
        rc = buf_append(out, cmd->u.member_join.hash, KV_CLUSTER_HASH_BYTES);
        if (!rc)
            rc = put_zz(out, cmd->u.member_join.now_ms);
        if (!rc)
            rc = enc_member(out, &cmd->u.member_join.member);
        break;
    default:
        break;
    }
    if (!rc && out->len - start > ASPEN_MAX_REQUEST_BYTES)
        rc = ASPEN_E_TOO_LARGE;
    if (rc)
        goto fail;
    return 0;
fail:
    out->len = start;
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Decoding
 * ------------------------------------------------------------------------------------- */

/* Canonical LEB128: at most 10 bytes, no redundant trailing zero group. */
static int get_var(struct reader *r, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 10; i++) {
        uint8_t b;
        int rc = reader_u8(r, &b);
        if (rc)
            return rc;
        if (i == 9 && b > 1)
            return ASPEN_E_MALFORMED;
        v |= (uint64_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            if (b == 0 && i > 0)
                return ASPEN_E_MALFORMED;
            *out = v;
            return 0;
        }
    }
    return ASPEN_E_MALFORMED;
}

static int get_zz(struct reader *r, int64_t *out)
{
    uint64_t v;
    int rc = get_var(r, &v);
    if (!rc)
        *out = unzigzag(v);
    return rc;
}

static int get_bytes(struct reader *r, size_t max, struct slice *out)
{
    uint64_t n;
    int rc = get_var(r, &n);
    if (rc)
        return rc;
    if (n > max)
        return ASPEN_E_TOO_LARGE;
    rc = reader_bytes(r, (size_t)n, out);
    if (!rc && out->len == 0)
        out->ptr = NULL;
    return rc;
}

/* A count of items each at least min_bytes long: bounded by the limit left in the budget
 * and by the input left, before anything is allocated for it. */
static int get_count(struct reader *r, uint32_t left, size_t min_bytes, uint32_t *out)
{
    uint64_t n;
    int rc = get_var(r, &n);
    if (rc)
        return rc;
    if (n > left)
        return ASPEN_E_TOO_LARGE;
    if (n * min_bytes > r->left)
        return ASPEN_E_TRUNCATED;
    *out = (uint32_t)n;
    return 0;
}

static int dec_put(struct reader *r, struct kv_put_req *p)
{
    uint8_t f;
    int rc = reader_u8(r, &f);
    if (rc)
        return rc;
    if (f & ~(PUT_PREV_KV | PUT_IGNORE_VALUE | PUT_IGNORE_LEASE))
        return ASPEN_E_MALFORMED;
    p->prev_kv = f & PUT_PREV_KV;
    p->ignore_value = f & PUT_IGNORE_VALUE;
    p->ignore_lease = f & PUT_IGNORE_LEASE;
    if ((rc = get_zz(r, &p->lease)) || (rc = get_bytes(r, ASPEN_MAX_KEY_BYTES, &p->key)))
        return rc;
    return get_bytes(r, ASPEN_MAX_VALUE_BYTES, &p->value);
}

static int dec_del(struct reader *r, struct kv_delete_req *d)
{
    uint8_t f;
    int rc = reader_u8(r, &f);
    if (rc)
        return rc;
    if (f & ~DEL_PREV_KV)
        return ASPEN_E_MALFORMED;
    d->prev_kv = f & DEL_PREV_KV;
    if ((rc = get_bytes(r, ASPEN_MAX_KEY_BYTES, &d->key)))
        return rc;
    return get_bytes(r, ASPEN_MAX_KEY_BYTES, &d->range_end);
}

static int dec_range(struct reader *r, struct kv_range_req *q)
{
    struct slice head;
    int rc = reader_bytes(r, 3, &head);
    if (rc)
        return rc;
    if (head.ptr[0] & ~(RANGE_KEYS_ONLY | RANGE_COUNT_ONLY))
        return ASPEN_E_MALFORMED;
    q->keys_only = head.ptr[0] & RANGE_KEYS_ONLY;
    q->count_only = head.ptr[0] & RANGE_COUNT_ONLY;
    q->sort_order = head.ptr[1];
    q->sort_target = head.ptr[2];
    if ((rc = get_bytes(r, ASPEN_MAX_KEY_BYTES, &q->key)) ||
        (rc = get_bytes(r, ASPEN_MAX_KEY_BYTES, &q->range_end)))
        return rc;
    int64_t *nums[6] = {&q->limit,
                        &q->revision,
                        &q->min_mod_revision,
                        &q->max_mod_revision,
                        &q->min_create_revision,
                        &q->max_create_revision};
    for (int i = 0; i < 6 && !rc; i++)
        rc = get_zz(r, nums[i]);
    return rc;
}

static int dec_txn(struct reader *r, struct arena *a, unsigned depth, struct budget *b,
                   struct kv_txn_req *t);

static int dec_ops(struct reader *r, struct arena *a, unsigned depth, struct budget *b,
                   const struct kv_op **out, uint32_t *n_out)
{
    uint32_t n;
    int rc = get_count(r, ASPEN_MAX_TXN_OPS - b->ops, 1, &n);
    if (rc)
        return rc;
    b->ops += n;
    *n_out = n;
    *out = NULL;
    if (n == 0)
        return 0;
    struct kv_op *ops = arena_alloc(a, n * sizeof(*ops), _Alignof(struct kv_op));
    if (!ops)
        return ASPEN_E_NOMEM;
    memset(ops, 0, n * sizeof(*ops));
    for (uint32_t i = 0; i < n; i++) {
        if ((rc = reader_u8(r, &ops[i].kind)))
            return rc;
        switch (ops[i].kind) {
        case KV_OP_RANGE:
            rc = dec_range(r, &ops[i].u.range);
            break;
        case KV_OP_PUT:
            rc = dec_put(r, &ops[i].u.put);
            break;
        case KV_OP_DELETE:
            rc = dec_del(r, &ops[i].u.del);
            break;
        case KV_OP_TXN: {
            if (depth + 1 > ASPEN_MAX_TXN_DEPTH)
                return ASPEN_E_TOO_LARGE;
            struct kv_txn_req *sub = arena_alloc(a, sizeof(*sub), _Alignof(struct kv_txn_req));
            if (!sub)
                return ASPEN_E_NOMEM;
            rc = dec_txn(r, a, depth + 1, b, sub);
            ops[i].u.txn = sub;
            break;
        }
        default:
            return ASPEN_E_MALFORMED;
        }
        if (rc)
            return rc;
    }
    *out = ops;
    return 0;
}

static int dec_txn(struct reader *r, struct arena *a, unsigned depth, struct budget *b,
                   struct kv_txn_req *t)
{
    memset(t, 0, sizeof(*t));
    uint32_t n;
    int rc = get_count(r, ASPEN_MAX_TXN_OPS - b->cmps, 2, &n);
    if (rc)
        return rc;
    b->cmps += n;
    if (n) {
        struct kv_compare *c = arena_alloc(a, n * sizeof(*c), _Alignof(struct kv_compare));
        if (!c)
            return ASPEN_E_NOMEM;
        memset(c, 0, n * sizeof(*c));
        for (uint32_t i = 0; i < n; i++) {
            struct slice head;
            if ((rc = reader_bytes(r, 2, &head)))
                return rc;
            c[i].result = head.ptr[0];
            c[i].target = head.ptr[1];
            if ((rc = get_bytes(r, ASPEN_MAX_KEY_BYTES, &c[i].key)) ||
                (rc = get_bytes(r, ASPEN_MAX_KEY_BYTES, &c[i].range_end)))
                return rc;
            rc = c[i].target == KV_CMP_VALUE ? get_bytes(r, ASPEN_MAX_VALUE_BYTES, &c[i].value)
                                             : get_zz(r, &c[i].number);
            if (rc)
                return rc;
        }
        t->compares = c;
        t->n_compares = n;
    }
    if ((rc = dec_ops(r, a, depth, b, &t->success, &t->n_success)))
        return rc;
    return dec_ops(r, a, depth, b, &t->failure, &t->n_failure);
}

/* n raw bytes into out. */
static int get_raw(struct reader *r, uint8_t *out, size_t n)
{
    struct slice s;
    int rc = reader_bytes(r, n, &s);
    if (!rc)
        memcpy(out, s.ptr, n);
    return rc;
}

static int dec_member(struct reader *r, struct kv_member *m)
{
    int rc = get_var(r, &m->id);
    if (!rc)
        rc = get_raw(r, m->pk, KV_CLUSTER_PK_BYTES);
    if (!rc)
        rc = get_bytes(r, ASPEN_MAX_MEMBER_NAME_BYTES, &m->name);
    if (!rc)
        rc = get_bytes(r, ASPEN_MAX_MEMBER_ADDR_BYTES, &m->peer_addr);
    if (!rc)
        rc = get_bytes(r, ASPEN_MAX_MEMBER_URLS_BYTES, &m->client_urls);
    if (!rc)
        rc = get_raw(r, &m->flags, 1);
    return rc;
}

static int dec_cred_add(struct reader *r, struct kv_credential *c, int64_t *now_ms)
{
    uint8_t f;
    int rc = get_raw(r, c->hash, KV_CLUSTER_HASH_BYTES);
    if (!rc)
        rc = get_zz(r, &c->expires_ms);
    if (!rc)
        rc = reader_u8(r, &f);
    if (rc)
        return rc;
    if (f & ~CRED_SINGLE_USE)
        return ASPEN_E_MALFORMED;
    c->single_use = f & CRED_SINGLE_USE;
    rc = get_zz(r, &c->created_ms);
    return rc ? rc : get_zz(r, now_ms);
}

int kv_cmd_decode(struct slice data, struct arena *a, struct kv_cmd *cmd)
{
    memset(cmd, 0, sizeof(*cmd));
    if (data.len > ASPEN_MAX_REQUEST_BYTES)
        return ASPEN_E_TOO_LARGE;
    struct reader r = reader_make(data);
    uint8_t magic, kind;
    int rc = reader_u8(&r, &magic);
    if (rc || (rc = reader_u8(&r, &kind)))
        goto fail;
    if (magic != KV_CMD_MAGIC) {
        rc = ASPEN_E_MALFORMED;
        goto fail;
    }
    cmd->kind = kind;
    struct budget b = {0, 0};
    switch (kind) {
    case KV_CMD_PUT:
        rc = dec_put(&r, &cmd->u.put);
        break;
    case KV_CMD_DELETE:
        rc = dec_del(&r, &cmd->u.del);
        break;
    case KV_CMD_TXN:
        rc = dec_txn(&r, a, 1, &b, &cmd->u.txn);
        break;
    case KV_CMD_COMPACT:
        rc = get_zz(&r, &cmd->u.compact.revision);
        break;
    case KV_CMD_LEASE_GRANT:
        rc = get_zz(&r, &cmd->u.lease_grant.id);
        if (!rc)
            rc = get_zz(&r, &cmd->u.lease_grant.ttl_ms);
        break;
    case KV_CMD_LEASE_REVOKE:
        rc = get_zz(&r, &cmd->u.lease_revoke.id);
        break;
    case KV_CMD_COMPACT_STEP:
    case KV_CMD_NOOP:
        break;
    case KV_CMD_CLUSTER_INIT:
        rc = get_var(&r, &cmd->u.cluster_init.cluster_id);
        break;
    case KV_CMD_MEMBER_SET:
        rc = dec_member(&r, &cmd->u.member_set);
        break;
    case KV_CMD_MEMBER_REMOVE:
        rc = get_var(&r, &cmd->u.member_remove.id);
        break;
    case KV_CMD_CRED_ADD:
        rc = dec_cred_add(&r, &cmd->u.cred_add.cred, &cmd->u.cred_add.now_ms);
        break;
    case KV_CMD_MEMBER_JOIN:
        rc = get_raw(&r, cmd->u.member_join.hash, KV_CLUSTER_HASH_BYTES);
        if (!rc)
            rc = get_zz(&r, &cmd->u.member_join.now_ms);
        if (!rc)
            rc = dec_member(&r, &cmd->u.member_join.member);
        break;
    default:
        rc = ASPEN_E_MALFORMED;
    }
    if (rc)
        goto fail;
    if (r.left) {
        rc = ASPEN_E_MALFORMED;
        goto fail;
    }
    /* The encoder's rules: what it would refuse is refused here too. Semantic errors in
     * stored bytes are malformed input, not a caller's invalid argument. */
    rc = check_cmd(cmd);
    if (rc == ASPEN_E_INVALID)
        rc = ASPEN_E_MALFORMED;
    if (rc)
        goto fail;
    return 0;
fail:
    memset(cmd, 0, sizeof(*cmd));
    return rc;
}
