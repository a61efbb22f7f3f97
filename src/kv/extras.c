/*
 * The Aspen extras (extras.h): CAS, CAD, BatchWrite and ConditionalBatch as txn commands,
 * BatchRead and ScanKeys as kv_range calls at one revision.
 *
 * ScanKeys pages form one snapshot: the first page fixes the store's revision and every
 * later page reads at it, so writes between pages neither show up nor shift keys across
 * page boundaries. The continuation token carries that revision, a tag of the prefix and
 * the last key returned, under a CRC-32C. The CRC is not a MAC: a client can forge a
 * token, but a forged token can only ask for keys it could scan anyway (the key must
 * start with the prefix, the revision goes through kv_range's checks), so the checks
 * exist to turn damage and misuse into ASPEN_E_INVALID, never into a wrong page or an
 * out-of-bounds read.
 */
#include "kv/extras.h"

#include "base/crc32c.h"
#include "base/hash.h"

#include <string.h>

/* BLAKE3 key-derivation context for the prefix tag (globally unique, never changes). */
#define SCAN_TAG_CONTEXT "aspen 2026-11-21 scan token prefix tag v1"

static bool key_ok(struct slice key)
{
    return key.len >= 1 && key.len <= ASPEN_MAX_KEY_BYTES;
}

/* The failure branch of CAS and CAD: read the key back so a client can retry without a
 * second round trip. */
static void range_of(struct slice key, struct kv_op *op)
{
    memset(op, 0, sizeof(*op));
    op->kind = KV_OP_RANGE;
    op->u.range.key = key;
}

int kv_cas_build(struct slice key, const struct slice *expected, struct slice new_value,
                 struct kv_cas_storage *st, struct kv_cmd *out)
{
    if (!key_ok(key))
        return ASPEN_E_INVALID;
    memset(st, 0, sizeof(*st));
    st->cmp.key = key;
    st->cmp.result = KV_CMP_EQUAL;
    if (expected) {
        st->cmp.target = KV_CMP_VALUE;
        st->cmp.value = *expected;
    } else {
        /* etcd's idiom for "absent": an absent key compares as create_revision 0, and a
         * present key's create_revision is always > 0. */
        st->cmp.target = KV_CMP_CREATE;
        st->cmp.number = 0;
    }
    st->success.kind = KV_OP_PUT;
    st->success.u.put.key = key;
    st->success.u.put.value = new_value;
    range_of(key, &st->failure);

    memset(out, 0, sizeof(*out));
    out->kind = KV_CMD_TXN;
    out->u.txn = (struct kv_txn_req){.compares = &st->cmp,
                                     .n_compares = 1,
                                     .success = &st->success,
                                     .n_success = 1,
                                     .failure = &st->failure,
                                     .n_failure = 1};
    return 0;
}

int kv_cad_build(struct slice key, struct slice expected, struct kv_cas_storage *st,
                 struct kv_cmd *out)
{
    if (!key_ok(key))
        return ASPEN_E_INVALID;
    memset(st, 0, sizeof(*st));
    st->cmp = (struct kv_compare){
        .result = KV_CMP_EQUAL, .target = KV_CMP_VALUE, .key = key, .value = expected};
    st->success.kind = KV_OP_DELETE;
    st->success.u.del.key = key;
    range_of(key, &st->failure);

    memset(out, 0, sizeof(*out));
    out->kind = KV_CMD_TXN;
    out->u.txn = (struct kv_txn_req){.compares = &st->cmp,
                                     .n_compares = 1,
                                     .success = &st->success,
                                     .n_success = 1,
                                     .failure = &st->failure,
                                     .n_failure = 1};
    return 0;
}

/* Fills ops[0..n) from writes. Duplicates are refused here, before proposing, rather
 * than left to apply's DUPLICATE_KEY, so a bad batch costs no log entry. n is at most
 * ASPEN_MAX_BATCH_KEYS, so the quadratic check is at most ~8k comparisons. */
static int fill_writes(const struct kv_write *writes, size_t n, struct kv_op *ops)
{
    if (n > ASPEN_MAX_BATCH_KEYS)
        return ASPEN_E_INVALID;
    for (size_t i = 0; i < n; i++) {
        if (!key_ok(writes[i].key))
            return ASPEN_E_INVALID;
        for (size_t j = 0; j < i; j++)
            if (slice_eq(writes[i].key, writes[j].key))
                return ASPEN_E_DUPLICATE_KEY;
    }
    for (size_t i = 0; i < n; i++) {
        memset(&ops[i], 0, sizeof(ops[i]));
        if (writes[i].is_delete) {
            ops[i].kind = KV_OP_DELETE;
            ops[i].u.del.key = writes[i].key;
        } else {
            ops[i].kind = KV_OP_PUT;
            ops[i].u.put.key = writes[i].key;
            ops[i].u.put.value = writes[i].value;
            ops[i].u.put.lease = writes[i].lease;
        }
    }
    return 0;
}

int kv_batch_write_build(const struct kv_write *writes, size_t n, struct kv_op *ops,
                         struct kv_cmd *out)
{
    return kv_conditional_batch_build(NULL, 0, writes, n, ops, out);
}

int kv_conditional_batch_build(const struct kv_compare *conds, size_t n_conds,
                               const struct kv_write *writes, size_t n, struct kv_op *ops,
                               struct kv_cmd *out)
{
    if (n_conds > ASPEN_MAX_BATCH_KEYS)
        return ASPEN_E_INVALID;
    int rc = fill_writes(writes, n, ops);
    if (rc)
        return rc;
    memset(out, 0, sizeof(*out));
    out->kind = KV_CMD_TXN;
    /* Both counts are <= ASPEN_MAX_BATCH_KEYS, so the narrowing is exact. */
    out->u.txn = (struct kv_txn_req){.compares = n_conds ? conds : NULL,
                                     .n_compares = (uint32_t)n_conds,
                                     .success = n ? ops : NULL,
                                     .n_success = (uint32_t)n};
    return 0;
}

int kv_batch_read(struct store_txn *t, const struct slice *keys, size_t n, int64_t revision,
                  struct arena *a, struct kv_kv *kvs, bool *found, int64_t *header_rev)
{
    if (n > ASPEN_MAX_BATCH_KEYS)
        return ASPEN_E_INVALID;
    for (size_t i = 0; i < n; i++)
        if (!key_ok(keys[i]))
            return ASPEN_E_INVALID;
    /* Pin "current" once, so every read below names the same revision explicitly. */
    int64_t rev = revision;
    if (rev <= 0) {
        int64_t compacted;
        int rc = kv_revisions(t, &rev, &compacted);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        struct kv_range_req q = {.key = keys[i], .revision = rev};
        struct kv_range_result r;
        int rc = kv_range(t, &q, a, &r, NULL);
        if (rc)
            return rc;
        found[i] = r.n_kvs == 1;
        if (found[i])
            kvs[i] = r.kvs[0];
        else
            memset(&kvs[i], 0, sizeof(kvs[i]));
    }
    if (header_rev)
        *header_rev = rev;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * ScanKeys tokens
 * ------------------------------------------------------------------------------------- */

static void prefix_tag(struct slice prefix, uint8_t tag[KV_SCAN_TOKEN_TAG])
{
    hash_derive_key(SCAN_TAG_CONTEXT, prefix.ptr, prefix.len, tag, KV_SCAN_TOKEN_TAG);
}

static int token_encode(int64_t rev, struct slice prefix, struct slice last, struct arena *a,
                        struct slice *out)
{
    size_t len = KV_SCAN_TOKEN_OVERHEAD + last.len;
    uint8_t *p = arena_alloc(a, len, 1);
    if (!p)
        return ASPEN_E_NOMEM;
    uint8_t *w = p;
    *w++ = KV_SCAN_TOKEN_VERSION;
    be64_store(w, (uint64_t)rev);
    w += 8;
    prefix_tag(prefix, w);
    w += KV_SCAN_TOKEN_TAG;
    be32_store(w, (uint32_t)last.len);
    w += 4;
    memcpy(w, last.ptr, last.len);
    w += last.len;
    be32_store(w, crc32c(p, (size_t)(w - p)));
    *out = slice_make(p, len);
    return 0;
}

/* Every check failure is ASPEN_E_INVALID: to the client, a token is opaque. *last points
 * into token. */
static int token_decode(struct slice token, struct slice prefix, int64_t *rev, struct slice *last)
{
    if (token.len < KV_SCAN_TOKEN_OVERHEAD + 1 || token.len > ASPEN_MAX_SCAN_TOKEN_BYTES)
        return ASPEN_E_INVALID;
    size_t body = token.len - 4;
    if (crc32c(token.ptr, body) != be32_load(token.ptr + body))
        return ASPEN_E_INVALID;
    struct reader r = reader_make(slice_make(token.ptr, body));
    uint8_t version;
    uint64_t r64;
    uint32_t klen;
    struct slice tag;
    if (reader_u8(&r, &version) || reader_be64(&r, &r64) ||
        reader_bytes(&r, KV_SCAN_TOKEN_TAG, &tag) || reader_be32(&r, &klen))
        return ASPEN_E_INVALID;
    if (version != KV_SCAN_TOKEN_VERSION || r64 == 0 || r64 > INT64_MAX || klen != r.left ||
        klen == 0 || klen > ASPEN_MAX_KEY_BYTES)
        return ASPEN_E_INVALID;
    uint8_t want[KV_SCAN_TOKEN_TAG];
    prefix_tag(prefix, want);
    if (memcmp(want, tag.ptr, KV_SCAN_TOKEN_TAG) != 0)
        return ASPEN_E_INVALID;
    if (reader_bytes(&r, klen, last) || !slice_has_prefix(*last, prefix))
        return ASPEN_E_INVALID;
    *rev = (int64_t)r64;
    return 0;
}

/* The smallest key strictly after last: last + 0x00, or — when last is already as long
 * as a key can be, so no key extends it — the prefix end of last. *done when no key can
 * follow (last is all 0xff bytes at full length). */
static int key_after(struct slice last, struct arena *a, struct slice *out, bool *done)
{
    *done = false;
    if (last.len < ASPEN_MAX_KEY_BYTES) {
        uint8_t *p = arena_alloc(a, last.len + 1, 1);
        if (!p)
            return ASPEN_E_NOMEM;
        memcpy(p, last.ptr, last.len);
        p[last.len] = 0x00;
        *out = slice_make(p, last.len + 1);
        return 0;
    }
    *out = kv_prefix_end(last, a);
    if (!out->ptr)
        return ASPEN_E_NOMEM;
    *done = out->len == 1 && out->ptr[0] == 0x00; /* kv_prefix_end's "to the end" */
    return 0;
}

int kv_scan(struct store_txn *t, struct slice prefix, int64_t limit, struct slice token,
            bool keys_only, struct arena *a, struct kv_scan_result *out)
{
    memset(out, 0, sizeof(*out));
    if (limit < 0 || limit > ASPEN_SCAN_MAX_LIMIT || prefix.len > ASPEN_MAX_KEY_BYTES)
        return ASPEN_E_INVALID;
    if (limit == 0)
        limit = ASPEN_SCAN_DEFAULT_LIMIT;

    /* The empty prefix is every key: from the smallest key ("\0") to the end ("\0"). */
    static const uint8_t nul = 0x00;
    struct slice start = prefix.len ? prefix : slice_make(&nul, 1);
    struct slice end = prefix.len ? kv_prefix_end(prefix, a) : slice_make(&nul, 1);
    if (!end.ptr)
        return ASPEN_E_NOMEM;

    int64_t rev;
    int rc;
    if (token.len == 0) {
        int64_t compacted;
        if ((rc = kv_revisions(t, &rev, &compacted)))
            return rc;
    } else {
        struct slice last;
        if ((rc = token_decode(token, prefix, &rev, &last)))
            return rc;
        bool done;
        if ((rc = key_after(last, a, &start, &done)))
            return rc;
        if (done) {
            out->revision = rev;
            return 0;
        }
    }

    struct kv_range_req q = {.key = start,
                             .range_end = end,
                             .limit = limit,
                             .revision = rev,
                             .keys_only = keys_only,
                             .skip_count = true};
    struct kv_range_result r;
    if ((rc = kv_range(t, &q, a, &r, NULL)))
        return rc;
    out->kvs = r.kvs;
    out->n_kvs = r.n_kvs;
    out->revision = rev;
    if (r.more && r.n_kvs > 0)
        rc = token_encode(rev, prefix, r.kvs[r.n_kvs - 1].key, a, &out->next_token);
    return rc;
}
