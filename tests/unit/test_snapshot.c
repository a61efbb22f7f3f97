/*
 * Snapshot stream (kv/snapshot.h) on the memory backend: random table contents (empty
 * values, NUL bytes in keys, maximal keys, ~1.5 MiB values, thousands of records) are
 * streamed and installed into a second store, after which every streamed table is byte
 * for byte the source's, the "kv." meta records too, while the target's other meta
 * records stay and the source's do not travel; an install replaces what was there; an
 * empty state streams as header + trailer; chunks keep their size bound. Then every kind
 * of damage — a flipped byte in any chunk, truncation, reordering, duplication, a missing
 * chunk, content changed under a valid CRC, a table or meta key the stream may not carry
 * — is refused, and aborting leaves the target store exactly as it was.
 *
 * With ASPEN_SNAPSHOT_CORPUS_DIR set, test_fuzz_seeds writes the fuzzer's seed corpus
 * (tests/fuzz/corpus/snapshot) into that directory.
 */
#include "test.h"

#include "base/assert.h"
#include "base/constants.h"
#include "base/crc32c.h"
#include "base/hash.h"
#include "base/mem.h"
#include "base/rand.h"
#include "kv/snapshot.h"
#include "raft/codec.h"
#include "storage/store_mem.h"

#include <stdio.h>
#include <stdlib.h>

#define MAX_CHUNKS 256

static const enum store_table streamed_tables[] = {STORE_T_KV_REV, STORE_T_KV_INDEX, STORE_T_LEASE,
                                                   STORE_T_LEASE_KEY, STORE_T_CLUSTER};
#define N_STREAMED (sizeof(streamed_tables) / sizeof(streamed_tables[0]))

/* A stream held in memory: each chunk its own allocation. */
struct stream {
    uint8_t *data[MAX_CHUNKS];
    size_t len[MAX_CHUNKS];
    size_t n;
};

static void stream_release(struct stream *s)
{
    for (size_t i = 0; i < s->n; i++)
        mem_free(s->data[i]);
    s->n = 0;
}

static int stream_copy(const struct stream *from, struct stream *to)
{
    to->n = 0;
    for (size_t i = 0; i < from->n; i++) {
        to->data[i] = mem_alloc(from->len[i] ? from->len[i] : 1);
        if (!to->data[i])
            return ASPEN_E_NOMEM;
        memcpy(to->data[i], from->data[i], from->len[i]);
        to->len[i] = from->len[i];
        to->n++;
    }
    return 0;
}

static struct raft_snapshot_meta test_meta(void)
{
    struct raft_snapshot_meta m;
    memset(&m, 0, sizeof(m));
    m.index = 1234;
    m.term = 7;
    m.config.n_voters = 3;
    m.config.voters[0] = 1;
    m.config.voters[1] = 2;
    m.config.voters[2] = 3;
    m.config.n_learners = 1;
    m.config.learners[0] = 9;
    return m;
}

static int put(struct store_txn *t, enum store_table tb, const void *k, size_t klen, const void *v,
               size_t vlen)
{
    return store_put(t, tb, slice_make(k, klen), slice_make(v, vlen));
}

/* Fills s with random records: n per streamed table, "kv." meta records, other meta
 * records, a few log records, and `big` values of ~1.5 MiB. */
static int fill(struct store *s, struct rng *r, size_t n, size_t big, const char *tag)
{
    struct store_txn *t;
    int rc = store_begin(s, true, &t);
    if (rc)
        return rc;
    uint8_t key[STORE_MAX_KEY], small[64];
    uint8_t *large = mem_alloc(ASPEN_MAX_VALUE_BYTES);
    if (!large) {
        store_abort(t);
        return ASPEN_E_NOMEM;
    }
    rng_fill(r, large, ASPEN_MAX_VALUE_BYTES);
    for (size_t ti = 0; ti < N_STREAMED && !rc; ti++) {
        for (size_t i = 0; i < n && !rc; i++) {
            size_t klen = rng_ratio(r, 1, 50) ? STORE_MAX_KEY : (size_t)rng_range(r, 1, 24);
            rng_fill(r, key, klen);
            if (rng_ratio(r, 1, 4))
                key[rng_below(r, klen)] = 0; /* NUL bytes are ordinary */
            size_t vlen = rng_ratio(r, 1, 5) ? 0 : (size_t)rng_below(r, sizeof(small));
            rng_fill(r, small, vlen);
            rc = put(t, streamed_tables[ti], key, klen, small, vlen);
        }
    }
    for (size_t i = 0; i < big && !rc; i++) {
        uint8_t k[2] = {0xfe, (uint8_t)i};
        large[0] = (uint8_t)i;
        rc = put(t, STORE_T_KV_REV, k, 2, large, ASPEN_MAX_VALUE_BYTES - i);
    }
    char name[64];
    for (int i = 0; i < 5 && !rc; i++) {
        int len = snprintf(name, sizeof(name), "kv.%s.%d", tag, i);
        rc = put(t, STORE_T_META, name, (size_t)len, tag, strlen(tag));
        len = snprintf(name, sizeof(name), "raft.%s.%d", tag, i);
        if (!rc)
            rc = put(t, STORE_T_META, name, (size_t)len, tag, strlen(tag));
        uint8_t idx[8];
        be64_store(idx, (uint64_t)i + 1);
        if (!rc)
            rc = put(t, STORE_T_LOG, idx, 8, tag, strlen(tag));
    }
    mem_free(large);
    if (rc) {
        store_abort(t);
        return rc;
    }
    return store_commit(t, true);
}

/* BLAKE3 over the records of table tb with keys starting with prefix (all when empty). */
static int table_digest(struct store_txn *t, enum store_table tb, struct slice prefix,
                        uint8_t out[HASH_BYTES])
{
    struct hash_state h;
    hash_init(&h);
    struct store_cursor *c;
    int rc = store_cursor_open(t, tb, &c);
    if (rc)
        return rc;
    struct slice k, v;
    for (rc = store_seek(c, prefix, &k, &v); rc == 0 && slice_has_prefix(k, prefix);
         rc = store_next(c, &k, &v)) {
        uint8_t lens[8];
        be32_store(lens, (uint32_t)k.len);
        be32_store(lens + 4, (uint32_t)v.len);
        hash_update(&h, lens, 8);
        hash_update(&h, k.ptr, k.len);
        hash_update(&h, v.ptr, v.len);
    }
    store_cursor_close(c);
    if (rc != 0 && rc != ASPEN_E_NOT_FOUND)
        return rc;
    hash_final(&h, out, HASH_BYTES);
    return 0;
}

/* Digest of every table of the store, entirely. */
static int store_digest(struct store *s, uint8_t out[HASH_BYTES])
{
    struct store_txn *t;
    int rc = store_begin(s, false, &t);
    if (rc)
        return rc;
    struct hash_state h;
    hash_init(&h);
    for (int tb = 0; tb < STORE_N_TABLES && !rc; tb++) {
        uint8_t d[HASH_BYTES];
        rc = table_digest(t, (enum store_table)tb, slice_make(NULL, 0), d);
        hash_update(&h, d, sizeof(d));
    }
    store_commit(t, false);
    hash_final(&h, out, HASH_BYTES);
    return rc;
}

/* Streams s's state into *out, checking each chunk's size bound. */
static int write_stream(struct store *s, const struct raft_snapshot_meta *meta, struct stream *out,
                        size_t *max_payload_multi)
{
    struct store_txn *t;
    int rc = store_begin(s, false, &t);
    if (rc)
        return rc;
    struct kv_snapshot_writer w;
    kv_snapshot_writer_init(&w, t, meta);
    struct buf chunk;
    buf_init(&chunk, ASPEN_SNAPSHOT_CHUNK_MAX_BYTES);
    out->n = 0;
    *max_payload_multi = 0;
    while ((rc = kv_snapshot_writer_next(&w, &chunk)) == 0) {
        if (out->n == MAX_CHUNKS || chunk.len > ASPEN_SNAPSHOT_CHUNK_MAX_BYTES) {
            rc = ASPEN_E_INTERNAL;
            break;
        }
        /* A DATA chunk over the target must hold exactly one record. */
        struct kv_snapshot_chunk c;
        rc = kv_snapshot_chunk_decode(buf_slice(&chunk), &c);
        if (rc)
            break;
        if (c.kind == KV_SNAPSHOT_DATA && c.payload.len > ASPEN_SNAPSHOT_CHUNK_BYTES) {
            uint32_t klen = be32_load(c.payload.ptr + 1);
            uint32_t vlen = be32_load(c.payload.ptr + 5 + klen);
            if (9 + (size_t)klen + vlen != c.payload.len) {
                rc = ASPEN_E_INTERNAL;
                break;
            }
        } else if (c.kind == KV_SNAPSHOT_DATA && c.payload.len > *max_payload_multi) {
            *max_payload_multi = c.payload.len;
        }
        size_t len;
        out->len[out->n] = chunk.len;
        out->data[out->n++] = buf_steal(&chunk, &len);
    }
    buf_release(&chunk);
    kv_snapshot_writer_release(&w);
    store_commit(t, false);
    return rc == ASPEN_E_NOT_FOUND ? 0 : rc;
}

/* Installs the stream into s. Returns the first error (the txn is then aborted) or 0
 * (committed). */
static int install(struct store *s, const struct stream *st, struct raft_snapshot_meta *meta)
{
    struct store_txn *t;
    int rc = store_begin(s, true, &t);
    if (rc)
        return rc;
    struct kv_snapshot_reader r;
    rc = kv_snapshot_reader_begin(&r, t);
    for (size_t i = 0; i < st->n && !rc; i++)
        rc = kv_snapshot_reader_chunk(&r, slice_make(st->data[i], st->len[i]));
    if (!rc)
        rc = kv_snapshot_reader_end(&r, meta);
    if (rc) {
        store_abort(t);
        return rc;
    }
    return store_commit(t, true);
}

/* Checks the stream without installing it (reader with no transaction). */
static int check_only(const struct stream *st, struct raft_snapshot_meta *meta)
{
    struct kv_snapshot_reader r;
    int rc = kv_snapshot_reader_begin(&r, NULL);
    for (size_t i = 0; i < st->n && !rc; i++)
        rc = kv_snapshot_reader_chunk(&r, slice_make(st->data[i], st->len[i]));
    return rc ? rc : kv_snapshot_reader_end(&r, meta);
}

static bool meta_equal(const struct raft_snapshot_meta *a, const struct raft_snapshot_meta *b)
{
    return a->index == b->index && a->term == b->term && a->config.n_voters == b->config.n_voters &&
           memcmp(a->config.voters, b->config.voters, sizeof(a->config.voters)) == 0 &&
           a->config.n_learners == b->config.n_learners &&
           a->config.learners[0] == b->config.learners[0];
}

/* Are the streamed parts of a and b equal, and is b's non-"kv." meta as expected? */
static int compare_streamed(struct store *a, struct store *b, bool *equal)
{
    struct store_txn *ta, *tb;
    int rc = store_begin(a, false, &ta);
    if (rc)
        return rc;
    *equal = true;
    uint8_t da[N_STREAMED + 1][HASH_BYTES], db[N_STREAMED + 1][HASH_BYTES];
    for (size_t i = 0; i < N_STREAMED && !rc; i++)
        rc = table_digest(ta, streamed_tables[i], slice_make(NULL, 0), da[i]);
    if (!rc)
        rc = table_digest(ta, STORE_T_META, slice_str("kv."), da[N_STREAMED]);
    store_commit(ta, false);
    if (rc || (rc = store_begin(b, false, &tb)) != 0)
        return rc;
    for (size_t i = 0; i < N_STREAMED && !rc; i++)
        rc = table_digest(tb, streamed_tables[i], slice_make(NULL, 0), db[i]);
    if (!rc)
        rc = table_digest(tb, STORE_T_META, slice_str("kv."), db[N_STREAMED]);
    store_commit(tb, false);
    *equal = memcmp(da, db, sizeof(da)) == 0;
    return rc;
}

static int count_prefix(struct store *s, enum store_table tbl, const char *prefix, uint64_t *n)
{
    struct store_txn *t;
    int rc = store_begin(s, false, &t);
    if (rc)
        return rc;
    struct store_cursor *c;
    rc = store_cursor_open(t, tbl, &c);
    *n = 0;
    struct slice k, v;
    if (!rc) {
        for (rc = store_seek(c, slice_str(prefix), &k, &v);
             rc == 0 && slice_has_prefix(k, slice_str(prefix)); rc = store_next(c, &k, &v))
            (*n)++;
        store_cursor_close(c);
    }
    store_commit(t, false);
    return rc == ASPEN_E_NOT_FOUND || rc == 0 ? 0 : rc;
}

/* ---------------------------------------------------------------------------------------
 * Round trips
 * ------------------------------------------------------------------------------------- */

static void test_roundtrip(void)
{
    struct rng r;
    rng_seed(&r, test_seed());
    struct store *a = NULL, *b = NULL;
    struct store_mem_options o = {0};
    CHECK_OK(store_mem_open(&a, &o));
    CHECK_OK(store_mem_open(&b, &o));
    CHECK_OK(fill(a, &r, 1500, 3, "src"));
    CHECK_OK(fill(b, &r, 200, 1, "dst")); /* to be replaced */
    struct raft_snapshot_meta meta = test_meta(), got;
    struct stream st = {0};
    size_t max_multi;
    CHECK_OK(write_stream(a, &meta, &st, &max_multi));
    CHECK(st.n >= 5); /* header, several DATA (three big values alone), trailer */
    CHECK(max_multi > 0 && max_multi <= ASPEN_SNAPSHOT_CHUNK_BYTES);
    CHECK_OK(install(b, &st, &got));
    CHECK(meta_equal(&meta, &got));
    bool equal;
    CHECK_OK(compare_streamed(a, b, &equal));
    CHECK(equal);
    /* The target keeps its own Raft meta and log; the source's do not travel. */
    uint64_t n;
    CHECK_OK(count_prefix(b, STORE_T_META, "raft.dst", &n));
    CHECK_EQ(n, 5);
    CHECK_OK(count_prefix(b, STORE_T_META, "raft.src", &n));
    CHECK_EQ(n, 0);
    CHECK_OK(count_prefix(b, STORE_T_META, "kv.dst", &n));
    CHECK_EQ(n, 0);
    CHECK_OK(count_prefix(b, STORE_T_LOG, "", &n));
    CHECK_EQ(n, 5);

    /* An empty state: header and trailer only, and installing it empties the target. */
    struct store *e = NULL;
    CHECK_OK(store_mem_open(&e, &o));
    struct stream empty = {0};
    CHECK_OK(write_stream(e, &meta, &empty, &max_multi));
    CHECK_EQ(empty.n, 2);
    CHECK_OK(install(b, &empty, &got));
    CHECK_OK(compare_streamed(e, b, &equal));
    CHECK(equal);
    CHECK_OK(count_prefix(b, STORE_T_META, "raft.dst", &n));
    CHECK_EQ(n, 5);
    stream_release(&empty);
    stream_release(&st);
    store_close(a);
    store_close(b);
    store_close(e);
}

/* Many small records: chunks stay under the target and the stream is deterministic. */
static void test_many_records_deterministic(void)
{
    struct rng r;
    rng_seed(&r, test_seed() + 1);
    struct store *a = NULL, *b = NULL;
    struct store_mem_options o = {0};
    CHECK_OK(store_mem_open(&a, &o));
    CHECK_OK(fill(a, &r, 6000, 0, "src"));
    CHECK_OK(store_mem_clone(a, &b));
    struct raft_snapshot_meta meta = test_meta();
    struct stream s1 = {0}, s2 = {0};
    size_t max_multi;
    CHECK_OK(write_stream(a, &meta, &s1, &max_multi));
    CHECK_OK(write_stream(b, &meta, &s2, &max_multi));
    CHECK_EQ(s1.n, s2.n);
    for (size_t i = 0; i < s1.n; i++) {
        CHECK_EQ(s1.len[i], s2.len[i]);
        CHECK_MEM_EQ(s1.data[i], s2.data[i], s1.len[i]);
    }
    stream_release(&s1);
    stream_release(&s2);
    store_close(a);
    store_close(b);
}

static void test_writer_limits(void)
{
    struct store *a = NULL;
    struct store_mem_options o = {0};
    CHECK_OK(store_mem_open(&a, &o));
    struct store_txn *t;
    CHECK_OK(store_begin(a, true, &t));
    size_t big = ASPEN_SNAPSHOT_RECORD_MAX_BYTES;
    uint8_t *v = mem_calloc(1, big);
    CHECK(v != NULL);
    CHECK_OK(put(t, STORE_T_LEASE, "k", 1, v, big)); /* framing makes it one too many */
    mem_free(v);
    CHECK_OK(store_commit(t, true));
    CHECK_OK(store_begin(a, false, &t));
    struct raft_snapshot_meta meta = test_meta();
    struct kv_snapshot_writer w;
    struct buf small;
    buf_init(&small, 1024);
    kv_snapshot_writer_init(&w, t, &meta);
    CHECK_ERR(kv_snapshot_writer_next(&w, &small), ASPEN_E_TOO_LARGE);
    buf_release(&small);
    struct buf chunk;
    buf_init(&chunk, ASPEN_SNAPSHOT_CHUNK_MAX_BYTES);
    kv_snapshot_writer_init(&w, t, &meta);
    CHECK_OK(kv_snapshot_writer_next(&w, &chunk)); /* header */
    CHECK_ERR(kv_snapshot_writer_next(&w, &chunk), ASPEN_E_TOO_LARGE);
    CHECK_ERR(kv_snapshot_writer_next(&w, &chunk), ASPEN_E_TOO_LARGE); /* sticky */
    kv_snapshot_writer_release(&w);
    /* An inconsistent configuration is refused at the header. */
    meta.config.n_learners = 1;
    meta.config.learners[0] = 1; /* also a voter */
    kv_snapshot_writer_init(&w, t, &meta);
    CHECK_ERR(kv_snapshot_writer_next(&w, &chunk), ASPEN_E_INVALID);
    kv_snapshot_writer_release(&w);
    buf_release(&chunk);
    store_commit(t, false);
    store_close(a);
}

/* ---------------------------------------------------------------------------------------
 * Damage
 * ------------------------------------------------------------------------------------- */

/* Recomputes chunk i's length field and CRC after an edit. */
static void reseal(struct stream *s, size_t i)
{
    be32_store(s->data[i] + 10, (uint32_t)(s->len[i] - KV_SNAPSHOT_OVERHEAD_BYTES));
    be32_store(s->data[i] + s->len[i] - 4, crc32c(s->data[i], s->len[i] - 4));
}

struct damage_ctx {
    struct store *target;
    uint8_t before[HASH_BYTES];
    const struct stream *good;
};

/* Installs a damaged copy made by edit(); the install must fail with one of the codes
 * and leave the target as it was. Returns 0 or the failing line. */
static int refused(struct damage_ctx *d, void (*edit)(struct stream *, size_t), size_t arg,
                   int want1, int want2)
{
    struct stream s = {0};
    if (stream_copy(d->good, &s))
        return __LINE__;
    edit(&s, arg);
    struct raft_snapshot_meta got;
    int rc = install(d->target, &s, &got);
    /* A check without a transaction refuses exactly what installing refuses. */
    int checked = check_only(&s, &got);
    stream_release(&s);
    if (checked != rc) {
        fprintf(stderr, "    install %s, check only %s\n", aspen_err_name(rc),
                aspen_err_name(checked));
        return __LINE__;
    }
    if (rc != want1 && rc != want2) {
        fprintf(stderr, "    damage refused with %s\n", aspen_err_name(rc));
        return __LINE__;
    }
    uint8_t after[HASH_BYTES];
    if (store_digest(d->target, after) || memcmp(after, d->before, HASH_BYTES) != 0)
        return __LINE__;
    return 0;
}

static void edit_flip(struct stream *s, size_t arg)
{
    size_t i = arg % s->n;
    size_t at = (arg / s->n) % s->len[i];
    s->data[i][at] ^= 0x20;
}

static void edit_truncate(struct stream *s, size_t arg)
{
    size_t i = arg % s->n;
    s->len[i] -= 1 + (arg / s->n) % (s->len[i] - 1);
}

static void edit_swap(struct stream *s, size_t arg)
{
    uint8_t *d = s->data[arg];
    size_t l = s->len[arg];
    s->data[arg] = s->data[arg + 1];
    s->len[arg] = s->len[arg + 1];
    s->data[arg + 1] = d;
    s->len[arg + 1] = l;
}

static void edit_drop(struct stream *s, size_t arg)
{
    mem_free(s->data[arg]);
    for (size_t i = arg; i + 1 < s->n; i++) {
        s->data[i] = s->data[i + 1];
        s->len[i] = s->len[i + 1];
    }
    s->n--;
}

static void edit_duplicate(struct stream *s, size_t arg)
{
    for (size_t i = s->n; i > arg; i--) {
        s->data[i] = s->data[i - 1];
        s->len[i] = s->len[i - 1];
    }
    s->data[arg + 1] = mem_alloc(s->len[arg]);
    ASPEN_ASSERT(s->data[arg + 1] != NULL);
    memcpy(s->data[arg + 1], s->data[arg], s->len[arg]);
    s->n++;
}

/* Changes the last byte of the first DATA chunk's payload and reseals it: the CRC is
 * right, only the trailer's BLAKE3 can tell. */
static void edit_value_resealed(struct stream *s, size_t arg)
{
    (void)arg;
    s->data[1][s->len[1] - 5] ^= 1;
    reseal(s, 1);
}

/* Makes the first DATA record's table id something else, resealed. */
static void edit_table_resealed(struct stream *s, size_t arg)
{
    s->data[1][KV_SNAPSHOT_HEADER_BYTES] = (uint8_t)arg;
    reseal(s, 1);
}

/* Renames the meta record "kv.x" to "kx.x" in the last DATA chunk, resealed. */
static void edit_meta_key_resealed(struct stream *s, size_t arg)
{
    (void)arg;
    size_t i = s->n - 2;
    for (size_t at = KV_SNAPSHOT_HEADER_BYTES; at + 3 < s->len[i]; at++)
        if (memcmp(s->data[i] + at, "kv.x", 4) == 0)
            s->data[i][at + 1] = 'x';
    reseal(s, i);
}

/* Turns chunk arg (the header or the trailer) into a DATA chunk, resealed. */
static void edit_kind(struct stream *s, size_t arg)
{
    s->data[arg][5] = KV_SNAPSHOT_DATA;
    reseal(s, arg);
}

static void test_damage_refused(void)
{
    struct rng r;
    rng_seed(&r, test_seed() + 2);
    struct store *a = NULL, *b = NULL;
    struct store_mem_options o = {0};
    CHECK_OK(store_mem_open(&a, &o));
    CHECK_OK(store_mem_open(&b, &o));
    CHECK_OK(fill(a, &r, 300, 0, "x"));
    CHECK_OK(fill(b, &r, 50, 0, "dst"));
    /* Enough data for several DATA chunks. */
    struct store_txn *t;
    CHECK_OK(store_begin(a, true, &t));
    uint8_t *v = mem_calloc(1, 400 * 1024);
    CHECK(v != NULL);
    for (int i = 0; i < 6; i++) {
        uint8_t k[3] = {0xf0, 0, (uint8_t)i};
        CHECK_OK(put(t, STORE_T_KV_INDEX, k, 3, v, 400 * 1024));
    }
    mem_free(v);
    CHECK_OK(store_commit(t, true));
    struct raft_snapshot_meta meta = test_meta();
    struct stream good = {0};
    size_t max_multi;
    CHECK_OK(write_stream(a, &meta, &good, &max_multi));
    CHECK(good.n >= 5);
    struct damage_ctx d = {.target = b, .good = &good};
    CHECK_OK(store_digest(b, d.before));

    int line;
    for (size_t k = 0; k < 40; k++) {
        size_t arg = (size_t)rng_next(&r);
        line = refused(&d, edit_flip, arg, ASPEN_E_CORRUPT, ASPEN_E_MALFORMED);
        CHECK_MSG(line == 0, "flip %zu: line %d", arg, line);
        line = refused(&d, edit_truncate, arg, ASPEN_E_MALFORMED, ASPEN_E_MALFORMED);
        CHECK_MSG(line == 0, "truncate %zu: line %d", arg, line);
    }
    for (size_t i = 0; i + 1 < good.n; i++) {
        line = refused(&d, edit_swap, i, ASPEN_E_MALFORMED, ASPEN_E_MALFORMED);
        CHECK_MSG(line == 0, "swap %zu: line %d", i, line);
    }
    for (size_t i = 0; i < good.n; i++) {
        line = refused(&d, edit_drop, i, ASPEN_E_MALFORMED, ASPEN_E_MALFORMED);
        CHECK_MSG(line == 0, "drop %zu: line %d", i, line);
        line = refused(&d, edit_duplicate, i, ASPEN_E_MALFORMED, ASPEN_E_MALFORMED);
        CHECK_MSG(line == 0, "duplicate %zu: line %d", i, line);
    }
    line = refused(&d, edit_value_resealed, 0, ASPEN_E_CORRUPT, ASPEN_E_CORRUPT);
    CHECK_MSG(line == 0, "value: line %d", line);
    for (size_t tb = 0; tb < 256; tb++) {
        if (tb == STORE_T_KV_REV)
            continue; /* the record's own table, still in order */
        /* Not a streamed table, a meta key without "kv.", or records out of order. */
        line = refused(&d, edit_table_resealed, tb, ASPEN_E_MALFORMED, ASPEN_E_MALFORMED);
        CHECK_MSG(line == 0, "table %zu: line %d", tb, line);
    }
    line = refused(&d, edit_meta_key_resealed, 0, ASPEN_E_MALFORMED, ASPEN_E_MALFORMED);
    CHECK_MSG(line == 0, "meta key: line %d", line);
    line = refused(&d, edit_kind, 0, ASPEN_E_MALFORMED, ASPEN_E_MALFORMED);
    CHECK_MSG(line == 0, "kind: line %d", line);
    line = refused(&d, edit_kind, good.n - 1, ASPEN_E_MALFORMED, ASPEN_E_MALFORMED);
    CHECK_MSG(line == 0, "kind: line %d", line);

    /* The undamaged stream still installs (the refusals were not a broken target), and a
     * check alone passes it with the same meta, writing nothing. */
    struct raft_snapshot_meta got, checked;
    uint8_t before_check[HASH_BYTES];
    CHECK_OK(store_digest(b, before_check));
    CHECK_OK(check_only(&good, &checked));
    CHECK(meta_equal(&checked, &meta));
    CHECK_OK(store_digest(b, d.before));
    CHECK(memcmp(before_check, d.before, HASH_BYTES) == 0);
    CHECK_OK(install(b, &good, &got));
    bool equal;
    CHECK_OK(compare_streamed(a, b, &equal));
    CHECK(equal);
    /* Chunks after the trailer are refused, and so is ending without one. */
    CHECK_OK(store_begin(b, true, &t));
    struct kv_snapshot_reader rd;
    CHECK_OK(kv_snapshot_reader_begin(&rd, t));
    CHECK_OK(kv_snapshot_reader_chunk(&rd, slice_make(good.data[0], good.len[0])));
    CHECK_ERR(kv_snapshot_reader_end(&rd, &got), ASPEN_E_MALFORMED);
    for (size_t i = 1; i < good.n; i++)
        CHECK_OK(kv_snapshot_reader_chunk(&rd, slice_make(good.data[i], good.len[i])));
    CHECK_ERR(kv_snapshot_reader_chunk(&rd, slice_make(good.data[0], good.len[0])),
              ASPEN_E_MALFORMED);
    store_abort(t);
    stream_release(&good);
    store_close(a);
    store_close(b);
}

/* ---------------------------------------------------------------------------------------
 * Crafted streams: valid framing and a correct trailer around bad records, as a writer
 * with a bug (or an attacker who knows the format) would send
 * ------------------------------------------------------------------------------------- */

struct crafter {
    struct stream s;
    struct hash_state h;
    uint64_t records, bytes;
};

static void craft_chunk(struct crafter *c, uint8_t kind, const uint8_t *payload, size_t len)
{
    size_t total = KV_SNAPSHOT_OVERHEAD_BYTES + len;
    uint8_t *p = mem_alloc(total);
    ASPEN_ASSERT(p != NULL);
    memcpy(p, "ASNP", 4);
    p[4] = KV_SNAPSHOT_VERSION;
    p[5] = kind;
    be32_store(p + 6, (uint32_t)c->s.n);
    if (len)
        memcpy(p + KV_SNAPSHOT_HEADER_BYTES, payload, len);
    c->s.data[c->s.n] = p;
    c->s.len[c->s.n++] = total;
    reseal(&c->s, c->s.n - 1);
    if (kind == KV_SNAPSHOT_DATA) {
        hash_update(&c->h, payload, len);
        c->bytes += len;
    }
}

static void craft_header(struct crafter *c, uint32_t format)
{
    memset(c, 0, sizeof(*c));
    hash_init(&c->h);
    struct raft_snapshot_meta meta = test_meta();
    struct buf b;
    buf_init(&b, 4096);
    ASPEN_ASSERT(buf_append_be32(&b, format) == 0);
    ASPEN_ASSERT(raft_snapshot_meta_encode(&meta, &b) == 0);
    craft_chunk(c, KV_SNAPSHOT_HEADER, b.data, b.len);
    buf_release(&b);
}

/* A DATA chunk of records given as (table, key) pairs with value "v". */
static void craft_data(struct crafter *c, const uint8_t *tables, const char *const *keys, size_t n)
{
    struct buf b;
    buf_init(&b, 4096);
    for (size_t i = 0; i < n; i++) {
        ASPEN_ASSERT(buf_append_u8(&b, tables[i]) == 0);
        ASPEN_ASSERT(buf_append_be32(&b, (uint32_t)strlen(keys[i])) == 0);
        ASPEN_ASSERT(buf_append(&b, keys[i], strlen(keys[i])) == 0);
        ASPEN_ASSERT(buf_append_be32(&b, 1) == 0);
        ASPEN_ASSERT(buf_append(&b, "v", 1) == 0);
    }
    c->records += n;
    craft_chunk(c, KV_SNAPSHOT_DATA, b.data, b.len);
    buf_release(&b);
}

static void craft_trailer(struct crafter *c)
{
    uint8_t t[KV_SNAPSHOT_TRAILER_BYTES];
    be64_store(t, c->records);
    be64_store(t + 8, c->bytes);
    hash_final(&c->h, t + 16, HASH_BYTES);
    craft_chunk(c, KV_SNAPSHOT_TRAILER, t, sizeof(t));
}

static void test_crafted_streams(void)
{
    struct store *b = NULL;
    struct store_mem_options o = {0};
    CHECK_OK(store_mem_open(&b, &o));
    struct raft_snapshot_meta got;
    struct crafter c;
    const uint8_t rev = STORE_T_KV_REV, idx = STORE_T_KV_INDEX, meta = STORE_T_META;

    /* The crafter itself makes streams that install. */
    craft_header(&c, KV_SNAPSHOT_FORMAT);
    craft_data(&c, (const uint8_t[]){rev, rev, idx}, (const char *const[]){"a", "b", "a"}, 3);
    craft_data(&c, (const uint8_t[]){meta}, (const char *const[]){"kv.rev"}, 1);
    craft_trailer(&c);
    CHECK_OK(install(b, &c.s, &got));
    stream_release(&c.s);
    uint64_t n;
    CHECK_OK(count_prefix(b, STORE_T_KV_REV, "", &n));
    CHECK_EQ(n, 2);

    struct {
        const char *what;
        uint8_t tables[3];
        const char *keys[3];
        size_t n;
        uint32_t format;
    } bad[] = {
        {"descending keys", {rev, rev}, {"b", "a"}, 2, KV_SNAPSHOT_FORMAT},
        {"a record twice", {rev, rev}, {"a", "a"}, 2, KV_SNAPSHOT_FORMAT},
        {"tables out of order", {idx, rev}, {"a", "b"}, 2, KV_SNAPSHOT_FORMAT},
        {"the registry after meta",
         {meta, STORE_T_CLUSTER},
         {"kv.rev", "m"},
         2,
         KV_SNAPSHOT_FORMAT},
        {"not a KV meta key", {meta}, {"raft.term"}, 1, KV_SNAPSHOT_FORMAT},
        {"the raft log", {STORE_T_LOG}, {"a"}, 1, KV_SNAPSHOT_FORMAT},
        {"no such table", {STORE_N_TABLES}, {"a"}, 1, KV_SNAPSHOT_FORMAT},
        {"an empty key", {rev}, {""}, 1, KV_SNAPSHOT_FORMAT},
        {"empty DATA chunk", {0}, {NULL}, 0, KV_SNAPSHOT_FORMAT},
        {"unknown format", {rev}, {"a"}, 1, KV_SNAPSHOT_FORMAT + 1},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        craft_header(&c, bad[i].format);
        craft_data(&c, bad[i].tables, bad[i].keys, bad[i].n);
        craft_trailer(&c);
        int rc = install(b, &c.s, &got);
        stream_release(&c.s);
        CHECK_MSG(rc == ASPEN_E_MALFORMED, "%s: %s", bad[i].what, aspen_err_name(rc));
    }
    CHECK_OK(count_prefix(b, STORE_T_KV_REV, "", &n));
    CHECK_EQ(n, 2);
    store_close(b);
}

/* ---------------------------------------------------------------------------------------
 * Fuzz seeds
 * ------------------------------------------------------------------------------------- */

static void write_seed(const char *dir, const char *name, const uint8_t *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, len, f);
        fclose(f);
    }
}

static void test_fuzz_seeds(void)
{
    const char *dir = getenv("ASPEN_SNAPSHOT_CORPUS_DIR");
    struct store *a = NULL;
    struct store_mem_options o = {0};
    CHECK_OK(store_mem_open(&a, &o));
    struct store_txn *t;
    CHECK_OK(store_begin(a, true, &t));
    CHECK_OK(put(t, STORE_T_KV_REV, "\x00\x01", 2, "value", 5));
    CHECK_OK(put(t, STORE_T_KV_INDEX, "key\0", 4, "", 0));
    CHECK_OK(put(t, STORE_T_LEASE, "\0\0\0\0\0\0\0\7", 8, "ttl", 3));
    CHECK_OK(put(t, STORE_T_CLUSTER, "m\0\0\0\0\0\0\0\1", 9, "member", 6));
    CHECK_OK(put(t, STORE_T_META, "kv.rev", 6, "\0\0\0\0\0\0\0\2", 8));
    CHECK_OK(store_commit(t, true));
    struct raft_snapshot_meta meta = test_meta();
    struct stream s = {0};
    size_t max_multi;
    CHECK_OK(write_stream(a, &meta, &s, &max_multi));
    CHECK_EQ(s.n, 3);
    if (dir) {
        write_seed(dir, "header", s.data[0], s.len[0]);
        write_seed(dir, "data", s.data[1], s.len[1]);
        write_seed(dir, "trailer", s.data[2], s.len[2]);
        s.data[1][20] ^= 1;
        write_seed(dir, "bad-crc", s.data[1], s.len[1]);
        write_seed(dir, "bad-truncated", s.data[1], s.len[1] - 3);
    }
    stream_release(&s);
    store_close(a);
}

static const struct test_case tests[] = {
    TEST(test_roundtrip),       TEST(test_many_records_deterministic),
    TEST(test_writer_limits),   TEST(test_damage_refused),
    TEST(test_crafted_streams), TEST(test_fuzz_seeds),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("snapshot", tests);
}
