/*
 * The cluster registry (kv/cluster.h): the record codecs of STORE_T_CLUSTER, the readers,
 * and the apply functions of the five registry commands.
 *
 * The registry is replicated state like the keyspace, so the same rules hold: apply reads
 * nothing but its transaction and the command (the leader's clock arrives as now_ms), and
 * every check runs before the first write, so a refused command leaves the tables exactly
 * as they were (apply.c asserts it through ctx->wrote_unversioned). None of these commands
 * moves the revision: they never set ctx->wrote.
 *
 * Work per entry is bounded: member counts walk at most the member records (a few hundred
 * at most), a CRED_ADD walks the credentials once (at most ASPEN_MAX_JOIN_CREDENTIALS) and
 * deletes at most ASPEN_CREDENTIAL_GC_PER_ADD expired ones.
 */
#include "kv/internal.h"

#include "base/assert.h"
#include "base/constants.h"

#include <string.h>

#define MEMBER_PREFIX    'm'
#define CRED_PREFIX      'c'
#define MEMBER_KEY_BYTES (1u + 8u)
#define CRED_KEY_BYTES   (1u + KV_CLUSTER_HASH_BYTES)
#define MEMBER_FORMAT    1u
#define CRED_FORMAT      1u
#define CRED_SINGLE_USE  0x01u
/* u8 format ++ be64 expires_ms ++ u8 flags ++ be64 created_ms */
#define CRED_VAL_BYTES (1u + 8u + 1u + 8u)
/* u8 format ++ pk ++ three be16-prefixed strings ++ u8 flags */
#define MEMBER_VAL_FIXED (1u + KV_CLUSTER_PK_BYTES + 3u * 2u + 1u)
#define MEMBER_VAL_MAX                                                                             \
    (MEMBER_VAL_FIXED + ASPEN_MAX_MEMBER_NAME_BYTES + ASPEN_MAX_MEMBER_ADDR_BYTES +                \
     ASPEN_MAX_MEMBER_URLS_BYTES)

_Static_assert(ASPEN_MAX_MEMBER_NAME_BYTES <= UINT16_MAX &&
                   ASPEN_MAX_MEMBER_ADDR_BYTES <= UINT16_MAX &&
                   ASPEN_MAX_MEMBER_URLS_BYTES <= UINT16_MAX,
               "member strings are stored with a be16 length");
_Static_assert(CRED_KEY_BYTES <= STORE_MAX_KEY, "a credential key fits the key limit");

/* ---------------------------------------------------------------------------------------
 * Rules
 * ------------------------------------------------------------------------------------- */

/* min..max bytes of printable ASCII without space (0x21..0x7e): names, addresses and URL
 * lists end up in logs, metrics labels and configuration files, where a control byte or a
 * space would break a line or a field. */
static int check_text(struct slice s, size_t min, size_t max)
{
    if (s.len > max)
        return ASPEN_E_TOO_LARGE;
    if (s.len < min)
        return ASPEN_E_INVALID;
    for (size_t i = 0; i < s.len; i++)
        if (s.ptr[i] < 0x21 || s.ptr[i] > 0x7e)
            return ASPEN_E_INVALID;
    return 0;
}

int kv_member_check(const struct kv_member *m)
{
    if (m->id == 0 || (m->flags & ~KV_MEMBER_FLAGS_KNOWN))
        return ASPEN_E_INVALID;
    int rc = check_text(m->name, 1, ASPEN_MAX_MEMBER_NAME_BYTES);
    if (!rc)
        rc = check_text(m->peer_addr, 1, ASPEN_MAX_MEMBER_ADDR_BYTES);
    if (!rc)
        rc = check_text(m->client_urls, 0, ASPEN_MAX_MEMBER_URLS_BYTES);
    return rc;
}

int kv_credential_check(const struct kv_credential *c)
{
    return c->expires_ms < 0 || c->created_ms < 0 ? ASPEN_E_INVALID : 0;
}

/* Expired at now_ms: the expiry instant itself is already too late, so a credential
 * valid "until T" is usable only while now < T. */
static bool cred_expired(const struct kv_credential *c, int64_t now_ms)
{
    return c->expires_ms != 0 && c->expires_ms <= now_ms;
}

/* ---------------------------------------------------------------------------------------
 * Record codecs
 * ------------------------------------------------------------------------------------- */

static void member_key(raft_id id, uint8_t out[MEMBER_KEY_BYTES])
{
    out[0] = MEMBER_PREFIX;
    be64_store(out + 1, id);
}

static void cred_key(const uint8_t hash[KV_CLUSTER_HASH_BYTES], uint8_t out[CRED_KEY_BYTES])
{
    out[0] = CRED_PREFIX;
    memcpy(out + 1, hash, KV_CLUSTER_HASH_BYTES);
}

static size_t put_text(uint8_t *p, struct slice s)
{
    be16_store(p, (uint16_t)s.len);
    if (s.len)
        memcpy(p + 2, s.ptr, s.len);
    return 2 + s.len;
}

/* Encodes m's value into out (MEMBER_VAL_MAX bytes); returns its length. */
static size_t member_encode(const struct kv_member *m, uint8_t *out)
{
    ASPEN_ASSERT(kv_member_check(m) == 0);
    size_t n = 0;
    out[n++] = MEMBER_FORMAT;
    memcpy(out + n, m->pk, KV_CLUSTER_PK_BYTES);
    n += KV_CLUSTER_PK_BYTES;
    n += put_text(out + n, m->name);
    n += put_text(out + n, m->peer_addr);
    n += put_text(out + n, m->client_urls);
    out[n++] = m->flags;
    return n;
}

static int get_text(struct reader *r, struct slice *out)
{
    uint16_t len;
    int rc = reader_be16(r, &len);
    if (!rc)
        rc = reader_bytes(r, len, out);
    if (!rc && len == 0)
        out->ptr = NULL;
    return rc;
}

/* Decodes a member record; the slices point into v. ASPEN_E_CORRUPT on anything but a
 * record member_encode could have written. */
static int member_decode(struct slice k, struct slice v, struct kv_member *out)
{
    memset(out, 0, sizeof(*out));
    if (k.len != MEMBER_KEY_BYTES || k.ptr[0] != MEMBER_PREFIX)
        return ASPEN_E_CORRUPT;
    out->id = be64_load(k.ptr + 1);
    struct reader r = reader_make(v);
    uint8_t format;
    struct slice pk;
    if (reader_u8(&r, &format) || format != MEMBER_FORMAT ||
        reader_bytes(&r, KV_CLUSTER_PK_BYTES, &pk) || get_text(&r, &out->name) ||
        get_text(&r, &out->peer_addr) || get_text(&r, &out->client_urls) ||
        reader_u8(&r, &out->flags) || r.left != 0)
        return ASPEN_E_CORRUPT;
    memcpy(out->pk, pk.ptr, KV_CLUSTER_PK_BYTES);
    return kv_member_check(out) ? ASPEN_E_CORRUPT : 0;
}

static void cred_encode(const struct kv_credential *c, uint8_t out[CRED_VAL_BYTES])
{
    ASPEN_ASSERT(kv_credential_check(c) == 0);
    out[0] = CRED_FORMAT;
    be64_store(out + 1, (uint64_t)c->expires_ms);
    out[9] = c->single_use ? CRED_SINGLE_USE : 0;
    be64_store(out + 10, (uint64_t)c->created_ms);
}

static int cred_decode(struct slice k, struct slice v, struct kv_credential *out)
{
    memset(out, 0, sizeof(*out));
    if (k.len != CRED_KEY_BYTES || k.ptr[0] != CRED_PREFIX || v.len != CRED_VAL_BYTES ||
        v.ptr[0] != CRED_FORMAT || (v.ptr[9] & ~CRED_SINGLE_USE) != 0)
        return ASPEN_E_CORRUPT;
    memcpy(out->hash, k.ptr + 1, KV_CLUSTER_HASH_BYTES);
    out->expires_ms = (int64_t)be64_load(v.ptr + 1);
    out->single_use = v.ptr[9] & CRED_SINGLE_USE;
    out->created_ms = (int64_t)be64_load(v.ptr + 10);
    return kv_credential_check(out) ? ASPEN_E_CORRUPT : 0;
}

/* ---------------------------------------------------------------------------------------
 * Record access
 * ------------------------------------------------------------------------------------- */

/* The member record of id, slices into the store (valid until the next write).
 * ASPEN_E_NOT_FOUND, ASPEN_E_CORRUPT. */
static int member_read(struct store_txn *t, raft_id id, struct kv_member *out)
{
    uint8_t k[MEMBER_KEY_BYTES];
    member_key(id, k);
    struct slice v;
    int rc = store_get(t, STORE_T_CLUSTER, slice_make(k, sizeof(k)), &v);
    return rc ? rc : member_decode(slice_make(k, sizeof(k)), v, out);
}

static int member_write(struct store_txn *t, const struct kv_member *m)
{
    uint8_t k[MEMBER_KEY_BYTES], v[MEMBER_VAL_MAX];
    member_key(m->id, k);
    size_t n = member_encode(m, v);
    return store_put(t, STORE_T_CLUSTER, slice_make(k, sizeof(k)), slice_make(v, n));
}

static int cred_read(struct store_txn *t, const uint8_t hash[KV_CLUSTER_HASH_BYTES],
                     struct kv_credential *out)
{
    uint8_t k[CRED_KEY_BYTES];
    cred_key(hash, k);
    struct slice v;
    int rc = store_get(t, STORE_T_CLUSTER, slice_make(k, sizeof(k)), &v);
    return rc ? rc : cred_decode(slice_make(k, sizeof(k)), v, out);
}

static int cred_delete(struct store_txn *t, const uint8_t hash[KV_CLUSTER_HASH_BYTES])
{
    uint8_t k[CRED_KEY_BYTES];
    cred_key(hash, k);
    return store_del(t, STORE_T_CLUSTER, slice_make(k, sizeof(k)));
}

/* Counts the records whose key starts with prefix (one byte: the record kind). */
static int count_kind(struct store_txn *t, uint8_t prefix, uint64_t *n)
{
    *n = 0;
    struct store_cursor *c;
    int rc = store_cursor_open(t, STORE_T_CLUSTER, &c);
    if (rc)
        return rc;
    struct slice k, v, p = slice_make(&prefix, 1);
    for (rc = store_seek(c, p, &k, &v); rc == 0 && slice_has_prefix(k, p);
         rc = store_next(c, &k, &v))
        (*n)++;
    store_cursor_close(c);
    return rc == ASPEN_E_NOT_FOUND ? 0 : rc;
}

static int copy_text(struct arena *a, struct slice s, struct slice *out)
{
    *out = slice_make(NULL, 0);
    if (s.len == 0)
        return 0;
    uint8_t *p = arena_alloc(a, s.len, 1);
    if (!p)
        return ASPEN_E_NOMEM;
    memcpy(p, s.ptr, s.len);
    *out = slice_make(p, s.len);
    return 0;
}

/* Copies m's strings into a (m's slices point into the store). */
static int member_own(struct arena *a, struct kv_member *m)
{
    int rc = copy_text(a, m->name, &m->name);
    if (!rc)
        rc = copy_text(a, m->peer_addr, &m->peer_addr);
    if (!rc)
        rc = copy_text(a, m->client_urls, &m->client_urls);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Reads
 * ------------------------------------------------------------------------------------- */

int kv_cluster_id(struct store_txn *t, uint64_t *id)
{
    struct slice v;
    int rc = store_get(t, STORE_T_META, slice_str(KV_META_CLUSTER_ID), &v);
    if (rc)
        return rc;
    if (v.len != 8 || be64_load(v.ptr) == 0)
        return ASPEN_E_CORRUPT;
    *id = be64_load(v.ptr);
    return 0;
}

int kv_member_get(struct store_txn *t, raft_id id, struct arena *a, struct kv_member *out)
{
    int rc = member_read(t, id, out);
    if (!rc)
        rc = member_own(a, out);
    return rc;
}

int kv_member_list(struct store_txn *t, struct arena *a, struct kv_member **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    /* Two passes in one transaction: count, then fill an array of exactly that size. */
    uint64_t count;
    int rc = count_kind(t, MEMBER_PREFIX, &count);
    if (rc || count == 0)
        return rc;
    struct kv_member *m = arena_alloc(a, (size_t)count * sizeof(*m), _Alignof(struct kv_member));
    if (!m)
        return ASPEN_E_NOMEM;
    struct store_cursor *c;
    if ((rc = store_cursor_open(t, STORE_T_CLUSTER, &c)))
        return rc;
    uint8_t prefix = MEMBER_PREFIX;
    struct slice k, v, p = slice_make(&prefix, 1);
    size_t i = 0;
    for (rc = store_seek(c, p, &k, &v); rc == 0 && i < count && slice_has_prefix(k, p);
         rc = store_next(c, &k, &v)) {
        if ((rc = member_decode(k, v, &m[i])) || (rc = member_own(a, &m[i])))
            break;
        i++;
    }
    store_cursor_close(c);
    if (rc && rc != ASPEN_E_NOT_FOUND)
        return rc;
    *out = m;
    *n = i;
    return 0;
}

int kv_credential_get(struct store_txn *t, const uint8_t hash[KV_CLUSTER_HASH_BYTES],
                      struct kv_credential *out)
{
    return cred_read(t, hash, out);
}

int kv_credential_count(struct store_txn *t, uint64_t *n)
{
    return count_kind(t, CRED_PREFIX, n);
}

/* ---------------------------------------------------------------------------------------
 * Commands
 * ------------------------------------------------------------------------------------- */

int kv_cluster_init_apply(struct kv_ctx *ctx, uint64_t cluster_id)
{
    ASPEN_ASSERT(cluster_id != 0);
    uint64_t cur;
    int rc = kv_cluster_id(ctx->t, &cur);
    /* Set once: even the same id again is refused, so a second CLUSTER_INIT (a second
     * bootstrap of a running cluster) is visible as an error. */
    if (rc == 0)
        return ASPEN_E_EXISTS;
    if (rc != ASPEN_E_NOT_FOUND)
        return rc;
    ctx->wrote_unversioned = true;
    uint8_t b[8];
    be64_store(b, cluster_id);
    return store_put(ctx->t, STORE_T_META, slice_str(KV_META_CLUSTER_ID), slice_make(b, 8));
}

/* Refusal for writing m as a new record or over an existing one: a record of the same id
 * with another public key is another node (ASPEN_E_EXISTS); a new record needs room. Sets
 * *exists when a record with the same key is there. */
static int member_admit(struct kv_ctx *ctx, const struct kv_member *m, bool *exists)
{
    struct kv_member old;
    int rc = member_read(ctx->t, m->id, &old);
    *exists = rc == 0;
    if (rc == 0)
        return memcmp(old.pk, m->pk, KV_CLUSTER_PK_BYTES) == 0 ? 0 : ASPEN_E_EXISTS;
    if (rc != ASPEN_E_NOT_FOUND)
        return rc;
    return 0;
}

static int member_room(struct kv_ctx *ctx)
{
    uint64_t n;
    int rc = count_kind(ctx->t, MEMBER_PREFIX, &n);
    if (!rc && n >= ASPEN_MAX_MEMBER_RECORDS)
        rc = ASPEN_E_LIMIT;
    return rc;
}

int kv_member_set_apply(struct kv_ctx *ctx, const struct kv_member *m)
{
    bool exists;
    int rc = member_admit(ctx, m, &exists);
    if (!rc && !exists)
        rc = member_room(ctx);
    if (rc)
        return rc;
    ctx->wrote_unversioned = true;
    return member_write(ctx->t, m);
}

int kv_member_remove_apply(struct kv_ctx *ctx, raft_id id)
{
    struct kv_member old;
    int rc = member_read(ctx->t, id, &old);
    if (rc)
        return rc; /* ASPEN_E_NOT_FOUND is the refusal */
    ctx->wrote_unversioned = true;
    uint8_t k[MEMBER_KEY_BYTES];
    member_key(id, k);
    return store_del(ctx->t, STORE_T_CLUSTER, slice_make(k, sizeof(k)));
}

int kv_cred_add_apply(struct kv_ctx *ctx, const struct kv_credential *c, int64_t now_ms)
{
    /* Any stored record with this hash refuses the add, expired or not: the secret is
     * random, so a repeated hash means the same secret was submitted twice. */
    struct kv_credential old;
    int rc = cred_read(ctx->t, c->hash, &old);
    if (rc == 0)
        return ASPEN_E_EXISTS;
    if (rc != ASPEN_E_NOT_FOUND)
        return rc;

    /* One walk in key order: the number stored and the first expired ones (those the GC
     * will drop). The limit is checked against what remains after the GC, but before the
     * GC deletes anything, so a refused add writes nothing. */
    uint8_t gc[ASPEN_CREDENTIAL_GC_PER_ADD][KV_CLUSTER_HASH_BYTES];
    size_t n_gc = 0;
    uint64_t n = 0;
    struct store_cursor *cur;
    if ((rc = store_cursor_open(ctx->t, STORE_T_CLUSTER, &cur)))
        return rc;
    uint8_t prefix = CRED_PREFIX;
    struct slice k, v, p = slice_make(&prefix, 1);
    for (rc = store_seek(cur, p, &k, &v); rc == 0 && slice_has_prefix(k, p);
         rc = store_next(cur, &k, &v)) {
        struct kv_credential e;
        if ((rc = cred_decode(k, v, &e)))
            break;
        n++;
        if (n_gc < ASPEN_CREDENTIAL_GC_PER_ADD && cred_expired(&e, now_ms))
            memcpy(gc[n_gc++], e.hash, KV_CLUSTER_HASH_BYTES);
    }
    store_cursor_close(cur);
    if (rc && rc != ASPEN_E_NOT_FOUND)
        return rc;
    if (n - n_gc >= ASPEN_MAX_JOIN_CREDENTIALS)
        return ASPEN_E_LIMIT;

    ctx->wrote_unversioned = true;
    for (size_t i = 0; i < n_gc; i++)
        if ((rc = cred_delete(ctx->t, gc[i])))
            return rc;
    uint8_t key[CRED_KEY_BYTES], val[CRED_VAL_BYTES];
    cred_key(c->hash, key);
    cred_encode(c, val);
    return store_put(ctx->t, STORE_T_CLUSTER, slice_make(key, sizeof(key)),
                     slice_make(val, sizeof(val)));
}

int kv_member_join_apply(struct kv_ctx *ctx, const uint8_t hash[KV_CLUSTER_HASH_BYTES],
                         int64_t now_ms, const struct kv_member *m)
{
    bool exists;
    int rc = member_admit(ctx, m, &exists);
    if (rc)
        return rc;
    /* The same node again (same id and key): a retry of a join whose answer was lost. It
     * succeeds without the credential, which may be consumed or expired by now; the
     * record takes the request's name and addresses. */
    if (exists) {
        ctx->wrote_unversioned = true;
        return member_write(ctx->t, m);
    }
    struct kv_credential c;
    rc = cred_read(ctx->t, hash, &c);
    if (rc == ASPEN_E_NOT_FOUND || (rc == 0 && cred_expired(&c, now_ms)))
        return ASPEN_E_PERMISSION;
    if (rc || (rc = member_room(ctx)))
        return rc;
    ctx->wrote_unversioned = true;
    if (c.single_use && (rc = cred_delete(ctx->t, hash)))
        return rc;
    return member_write(ctx->t, m);
}
