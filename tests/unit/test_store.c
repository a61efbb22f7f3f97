/*
 * Storage conformance: ONE suite of cases for the contract in storage/store.h, run
 * against every backend (each case appears once per backend: lmdb_<case>, mem_<case>),
 * so the backends cannot drift apart on ordering, edge cases or errors. A randomized
 * case drives thousands of operations against a sorted-array reference model. Cases
 * that only one backend can show follow: LMDB's persistence, map growth and
 * concurrent-reader snapshot isolation; the memory backend's crash model, injected
 * failures, quota and clone.
 *
 * LMDB stores live in a fresh mkdtemp directory under /tmp, removed afterwards.
 */
#include "test.h"

#include "base/assert.h"
#include "base/constants.h"
#include "base/mem.h"
#include "base/rand.h"
#include "storage/store.h"
#include "storage/store_lmdb.h"
#include "storage/store_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------
 * Fixture: a store of one backend
 * ------------------------------------------------------------------------------------- */

enum backend { B_LMDB, B_MEM };

struct fixture {
    enum backend backend;
    struct store *s; /* owned */
    char dir[64];    /* LMDB: the temporary directory */
};

static int lmdb_open_dir(struct fixture *f, const struct store_lmdb_options *o)
{
    char err[256] = "";
    int rc = store_lmdb_open(&f->s, f->dir, o, err, sizeof(err));
    if (rc)
        fprintf(stderr, "%s\n", err);
    return rc;
}

static int fixture_open(struct fixture *f, enum backend b)
{
    memset(f, 0, sizeof(*f));
    f->backend = b;
    if (b == B_LMDB) {
        snprintf(f->dir, sizeof(f->dir), "/tmp/aspen-test-store-XXXXXX");
        if (!mkdtemp(f->dir))
            return -errno;
        return lmdb_open_dir(f, NULL);
    }
    return store_mem_open(&f->s, NULL);
}

static void remove_dir(const char *dir)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/%s", dir, STORE_LMDB_FILE_NAME);
    unlink(p);
    snprintf(p, sizeof(p), "%s/%s-lock", dir, STORE_LMDB_FILE_NAME);
    unlink(p);
    rmdir(dir);
}

static void fixture_close(struct fixture *f)
{
    store_close(f->s);
    f->s = NULL;
    if (f->backend == B_LMDB && f->dir[0])
        remove_dir(f->dir);
}

static struct slice S(const char *s) {
    return slice_str(s);
}

/* Puts in a transaction of its own. */
static int
put1(struct store *s, enum store_table tb, struct slice k, struct slice v)
{
    struct store_txn *t;
    int rc = store_begin(s, true, &t);
    if (rc)
        return rc;
    if ((rc = store_put(t, tb, k, v)) != 0) {
        store_abort(t);
        return rc;
    }
    return store_commit(t, true);
}

/* 1 if the committed value of k equals v, 0 if it differs, an error code otherwise. */
static int value_is(struct store *s, enum store_table tb, struct slice k, struct slice v)
{
    struct store_txn *t;
    struct slice got;
    int rc = store_begin(s, false, &t);
    if (rc)
        return rc;
    rc = store_get(t, tb, k, &got);
    if (rc == 0)
        rc = slice_eq(got, v);
    store_abort(t);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Conformance cases (every backend)
 * ------------------------------------------------------------------------------------- */

static void conf_basic(struct fixture *f)
{
    struct store_txn *t;
    struct slice v;
    CHECK_OK(store_begin(f->s, true, &t));
    CHECK_ERR(store_get(t, STORE_T_META, S("a"), &v), ASPEN_E_NOT_FOUND);
    CHECK_ERR(store_del(t, STORE_T_META, S("a")), ASPEN_E_NOT_FOUND);
    CHECK_OK(store_put(t, STORE_T_META, S("a"), S("1")));
    CHECK_OK(store_put(t, STORE_T_LOG, S("a"), S("other table")));
    CHECK_OK(store_get(t, STORE_T_META, S("a"), &v)); /* read your writes */
    CHECK(slice_eq(v, S("1")));
    CHECK_OK(store_put(t, STORE_T_META, S("a"), S("22"))); /* overwrite */
    CHECK_OK(store_get(t, STORE_T_META, S("a"), &v));
    CHECK(slice_eq(v, S("22")));
    /* Zero-length values (lease_key uses them) and binary keys with NUL bytes. */
    static const uint8_t bin[] = {0, 'x', 0, 0xff};
    CHECK_OK(store_put(t, STORE_T_LEASE_KEY, slice_make(bin, 4), slice_make(NULL, 0)));
    CHECK_OK(store_put(t, STORE_T_LEASE_KEY, slice_make(bin, 2), S("short")));
    CHECK_OK(store_commit(t, true));

    CHECK_OK(store_begin(f->s, false, &t));
    CHECK_OK(store_get(t, STORE_T_META, S("a"), &v));
    CHECK(slice_eq(v, S("22")));
    CHECK_OK(store_get(t, STORE_T_LOG, S("a"), &v));
    CHECK(slice_eq(v, S("other table")));
    CHECK_OK(store_get(t, STORE_T_LEASE_KEY, slice_make(bin, 4), &v));
    CHECK_EQ(v.len, 0);
    CHECK_OK(store_get(t, STORE_T_LEASE_KEY, slice_make(bin, 2), &v));
    CHECK(slice_eq(v, S("short")));
    CHECK_ERR(store_get(t, STORE_T_LEASE_KEY, slice_make(bin, 3), &v), ASPEN_E_NOT_FOUND);
    CHECK_ERR(store_get(t, STORE_T_KV_REV, S("a"), &v), ASPEN_E_NOT_FOUND);
    uint64_t n;
    CHECK_OK(store_count(t, STORE_T_LEASE_KEY, &n));
    CHECK_EQ_U64(n, 2);
    CHECK_OK(store_commit(t, false)); /* committing a read transaction just ends it */

    CHECK_OK(store_begin(f->s, true, &t));
    CHECK_OK(store_del(t, STORE_T_META, S("a")));
    CHECK_ERR(store_get(t, STORE_T_META, S("a"), &v), ASPEN_E_NOT_FOUND);
    CHECK_ERR(store_del(t, STORE_T_META, S("a")), ASPEN_E_NOT_FOUND);
    CHECK_OK(store_commit(t, true));
    CHECK_ERR(value_is(f->s, STORE_T_META, S("a"), S("22")), ASPEN_E_NOT_FOUND);
    CHECK_EQ(value_is(f->s, STORE_T_LOG, S("a"), S("other table")), 1);
}

static void conf_limits(struct fixture *f)
{
    static uint8_t key[STORE_MAX_KEY + 1];
    memset(key, 0xab, sizeof(key));
    struct store_txn *t;
    struct slice v;
    struct store_cursor *c;
    struct slice k;
    CHECK_OK(store_begin(f->s, true, &t));
    CHECK_OK(store_put(t, STORE_T_KV_INDEX, slice_make(key, STORE_MAX_KEY), S("max")));
    CHECK_ERR(store_put(t, STORE_T_KV_INDEX, slice_make(key, STORE_MAX_KEY + 1), S("x")),
              ASPEN_E_INVALID);
    CHECK_ERR(store_get(t, STORE_T_KV_INDEX, slice_make(key, STORE_MAX_KEY + 1), &v),
              ASPEN_E_INVALID);
    CHECK_ERR(store_del(t, STORE_T_KV_INDEX, slice_make(key, STORE_MAX_KEY + 1)), ASPEN_E_INVALID);
    CHECK_ERR(store_put(t, STORE_T_KV_INDEX, slice_make(key, 0), S("x")), ASPEN_E_INVALID);
    CHECK_ERR(store_get(t, STORE_T_KV_INDEX, slice_make(key, 0), &v), ASPEN_E_INVALID);
    CHECK_ERR(store_put(t, STORE_N_TABLES, S("k"), S("x")), ASPEN_E_INVALID);
    CHECK_ERR(store_get(t, (enum store_table)99, S("k"), &v), ASPEN_E_INVALID);
    CHECK_ERR(store_cursor_open(t, STORE_N_TABLES, &c), ASPEN_E_INVALID);
    /* The backend must refuse on the length alone, before touching the bytes. */
    CHECK_ERR(store_put(t, STORE_T_KV_REV, S("big"), slice_make(key, STORE_MAX_VALUE + 1u)),
              ASPEN_E_TOO_LARGE);
    /* The invalid calls did not break the transaction. */
    CHECK_OK(store_get(t, STORE_T_KV_INDEX, slice_make(key, STORE_MAX_KEY), &v));
    CHECK(slice_eq(v, S("max")));
    CHECK_OK(store_cursor_open(t, STORE_T_KV_INDEX, &c));
    CHECK_ERR(store_seek(c, slice_make(key, STORE_MAX_KEY + 1), &k, &v), ASPEN_E_INVALID);
    CHECK_OK(store_seek(c, slice_make(key, STORE_MAX_KEY), &k, &v));
    CHECK_EQ(k.len, STORE_MAX_KEY);
    store_cursor_close(c);
    CHECK_OK(store_commit(t, true));
    CHECK_EQ(value_is(f->s, STORE_T_KV_INDEX, slice_make(key, STORE_MAX_KEY), S("max")), 1);
}

/* The keys of conf_order in the bytewise order the backends must produce. */
static const struct {
    const char *p;
    size_t len;
} ordered[] = {
    {"\x00", 1},     {"\x00\x00", 2},     {"\x01", 1}, {"a", 1},
    {"a\x00", 2},    {"ab", 2},           {"abc", 3},  {"b", 1},
    {"\x7f\xff", 2}, {"\x80", 1},         {"\xff", 1}, {"\xff\x00", 2},
    {"\xff\xff", 2}, {"\xff\xff\xff", 3},
};
#define N_ORDERED (sizeof(ordered) / sizeof(ordered[0]))

static struct slice ord(size_t i)
{
    return slice_make(ordered[i].p, ordered[i].len);
}

static void conf_order(struct fixture *f)
{
    struct store_txn *t;
    struct store_cursor *c;
    struct slice k, v;
    /* An empty table has no first and no last record. */
    CHECK_OK(store_begin(f->s, false, &t));
    CHECK_OK(store_cursor_open(t, STORE_T_KV_REV, &c));
    CHECK_ERR(store_seek(c, slice_make(NULL, 0), &k, &v), ASPEN_E_NOT_FOUND);
    CHECK_ERR(store_last(c, &k, &v), ASPEN_E_NOT_FOUND);
    store_cursor_close(c);
    store_abort(t);

    /* Insert in a scrambled order. */
    CHECK_OK(store_begin(f->s, true, &t));
    for (size_t j = 0; j < N_ORDERED; j++) {
        size_t i = (j * 5 + 3) % N_ORDERED;
        uint8_t val = (uint8_t)i;
        CHECK_OK(store_put(t, STORE_T_KV_REV, ord(i), slice_make(&val, 1)));
    }
    CHECK_OK(store_commit(t, true));

    CHECK_OK(store_begin(f->s, false, &t));
    CHECK_OK(store_cursor_open(t, STORE_T_KV_REV, &c));
    /* Forward from the first. */
    CHECK_OK(store_seek(c, slice_make(NULL, 0), &k, &v));
    for (size_t i = 0; i < N_ORDERED; i++) {
        if (i > 0)
            CHECK_OK(store_next(c, &k, &v));
        CHECK_MSG(slice_eq(k, ord(i)), "forward position %zu", i);
        CHECK(v.len == 1 && v.ptr[0] == i);
    }
    CHECK_ERR(store_next(c, &k, &v), ASPEN_E_NOT_FOUND);
    /* Backward from the last. */
    CHECK_OK(store_last(c, &k, &v));
    for (size_t i = N_ORDERED; i-- > 0;) {
        if (i < N_ORDERED - 1)
            CHECK_OK(store_prev(c, &k, &v));
        CHECK_MSG(slice_eq(k, ord(i)), "backward position %zu", i);
    }
    CHECK_ERR(store_prev(c, &k, &v), ASPEN_E_NOT_FOUND);
    /* Seeks: exact, between keys (a proper prefix sorts first), past the end. */
    CHECK_OK(store_seek(c, S("a"), &k, &v));
    CHECK(slice_eq(k, S("a")));
    CHECK_OK(store_seek(c, S("aa"), &k, &v));
    CHECK(slice_eq(k, S("ab")));
    CHECK_OK(store_seek(c, S("abd"), &k, &v));
    CHECK(slice_eq(k, S("b")));
    CHECK_OK(store_seek(c, slice_make("\x00\x00\x00", 3), &k, &v));
    CHECK(slice_eq(k, S("\x01")));
    CHECK_OK(store_seek(c, S("\xff\xff"), &k, &v));
    CHECK_OK(store_prev(c, &k, &v));
    CHECK(slice_eq(k, slice_make("\xff\x00", 2)));
    CHECK_ERR(store_seek(c, slice_make("\xff\xff\xff\x00", 4), &k, &v), ASPEN_E_NOT_FOUND);
    /* After running off the end, seek and last re-position the cursor. */
    CHECK_OK(store_last(c, &k, &v));
    CHECK(slice_eq(k, ord(N_ORDERED - 1)));
    CHECK_OK(store_seek(c, S("b"), &k, &v));
    CHECK_OK(store_next(c, &k, &v));
    CHECK(slice_eq(k, ord(8)));
    store_cursor_close(c);
    store_abort(t);
}

static void make_key(uint8_t out[8], uint64_t i)
{
    be64_store(out, i);
}

static void conf_cursor_del(struct fixture *f)
{
    /* Enough records to span many pages, so deletes cross page boundaries. */
    const uint64_t n = 3000;
    struct store_txn *t;
    struct store_cursor *c;
    struct slice k, v;
    uint8_t key[8];
    static uint8_t val[100];
    CHECK_OK(store_begin(f->s, true, &t));
    for (uint64_t i = 0; i < n; i++) {
        make_key(key, i);
        CHECK_OK(store_put(t, STORE_T_LOG, slice_make(key, 8), slice_make(val, sizeof(val))));
    }
    CHECK_OK(store_commit(t, true));

    /* Delete every even record while walking forward. */
    CHECK_OK(store_begin(f->s, true, &t));
    CHECK_OK(store_cursor_open(t, STORE_T_LOG, &c));
    CHECK_OK(store_seek(c, slice_make(NULL, 0), &k, &v));
    uint64_t i = 0;
    for (;;) {
        CHECK_EQ_U64(be64_load(k.ptr), i);
        int rc;
        if (i % 2 == 0) {
            rc = store_cursor_del(c, &k, &v); /* stands on i + 1 */
        } else {
            rc = store_next(c, &k, &v);
        }
        i++;
        if (rc == ASPEN_E_NOT_FOUND)
            break;
        CHECK_OK(rc);
    }
    CHECK_EQ_U64(i, n);
    /* Deleting the last record reports that nothing follows. */
    CHECK_OK(store_last(c, &k, &v));
    CHECK_EQ_U64(be64_load(k.ptr), n - 1);
    CHECK_ERR(store_cursor_del(c, &k, &v), ASPEN_E_NOT_FOUND);
    CHECK_OK(store_last(c, &k, &v));
    CHECK_EQ_U64(be64_load(k.ptr), n - 3);
    store_cursor_close(c);
    uint64_t count;
    CHECK_OK(store_count(t, STORE_T_LOG, &count));
    CHECK_EQ_U64(count, n / 2 - 1);
    CHECK_OK(store_commit(t, true));

    /* Delete everything from the first record on: each delete returns the next. */
    CHECK_OK(store_begin(f->s, true, &t));
    CHECK_OK(store_cursor_open(t, STORE_T_LOG, &c));
    CHECK_OK(store_seek(c, slice_make(NULL, 0), &k, &v));
    uint64_t expect = 1, deleted = 0;
    int rc;
    while ((rc = store_cursor_del(c, &k, &v)) == 0) {
        deleted++;
        expect += 2;
        CHECK_EQ_U64(be64_load(k.ptr), expect);
    }
    CHECK_ERR(rc, ASPEN_E_NOT_FOUND);
    CHECK_EQ_U64(deleted + 1, n / 2 - 1);
    CHECK_ERR(store_seek(c, slice_make(NULL, 0), &k, &v), ASPEN_E_NOT_FOUND);
    store_cursor_close(c);
    CHECK_OK(store_commit(t, true));
    CHECK_OK(store_begin(f->s, false, &t));
    CHECK_OK(store_count(t, STORE_T_LOG, &count));
    CHECK_EQ_U64(count, 0);
    store_abort(t);
}

static void conf_clear_count_abort(struct fixture *f)
{
    struct store_txn *t;
    struct slice v;
    uint8_t key[8];
    CHECK_OK(store_begin(f->s, true, &t));
    for (uint64_t i = 0; i < 500; i++) {
        make_key(key, i);
        CHECK_OK(store_put(t, STORE_T_LEASE, slice_make(key, 8), S("lease")));
    }
    CHECK_OK(store_put(t, STORE_T_META, S("keep"), S("me")));
    CHECK_OK(store_commit(t, true));

    /* An aborted transaction leaves nothing behind, including a clear. */
    CHECK_OK(store_begin(f->s, true, &t));
    CHECK_OK(store_clear(t, STORE_T_LEASE));
    CHECK_OK(store_put(t, STORE_T_META, S("keep"), S("changed")));
    CHECK_OK(store_put(t, STORE_T_META, S("new"), S("x")));
    uint64_t n;
    CHECK_OK(store_count(t, STORE_T_LEASE, &n));
    CHECK_EQ_U64(n, 0);
    store_abort(t);
    CHECK_OK(store_begin(f->s, false, &t));
    CHECK_OK(store_count(t, STORE_T_LEASE, &n));
    CHECK_EQ_U64(n, 500);
    CHECK_OK(store_get(t, STORE_T_META, S("keep"), &v));
    CHECK(slice_eq(v, S("me")));
    CHECK_ERR(store_get(t, STORE_T_META, S("new"), &v), ASPEN_E_NOT_FOUND);
    store_abort(t);

    /* A committed clear empties only its table; the table stays usable. */
    CHECK_OK(store_begin(f->s, true, &t));
    CHECK_OK(store_clear(t, STORE_T_LEASE));
    CHECK_OK(store_put(t, STORE_T_LEASE, S("after"), S("clear")));
    CHECK_OK(store_commit(t, true));
    CHECK_OK(store_begin(f->s, false, &t));
    CHECK_OK(store_count(t, STORE_T_LEASE, &n));
    CHECK_EQ_U64(n, 1);
    CHECK_OK(store_count(t, STORE_T_META, &n));
    CHECK_EQ_U64(n, 1);
    store_abort(t);

    /* One writer at a time. */
    struct store_txn *t2;
    CHECK_OK(store_begin(f->s, true, &t));
    CHECK_ERR(store_begin(f->s, true, &t2), ASPEN_E_BUSY);
    store_abort(t);
}

static void conf_cursor_sees_writes(struct fixture *f)
{
    struct store_txn *t;
    struct store_cursor *c;
    struct slice k, v;
    CHECK_OK(put1(f->s, STORE_T_KV_REV, S("b"), S("old")));
    CHECK_OK(store_begin(f->s, true, &t));
    CHECK_OK(store_put(t, STORE_T_KV_REV, S("a"), S("new")));
    CHECK_OK(store_put(t, STORE_T_KV_REV, S("c"), S("new")));
    CHECK_OK(store_cursor_open(t, STORE_T_KV_REV, &c));
    CHECK_OK(store_seek(c, slice_make(NULL, 0), &k, &v));
    CHECK(slice_eq(k, S("a")));
    CHECK_OK(store_next(c, &k, &v));
    CHECK(slice_eq(k, S("b")) && slice_eq(v, S("old")));
    CHECK_OK(store_next(c, &k, &v));
    CHECK(slice_eq(k, S("c")));
    store_cursor_close(c);
    store_abort(t);
}

static void conf_large_values(struct fixture *f)
{
    const size_t len = 3u * 1024u * 1024u / 2u; /* 1.5 MiB */
    uint8_t *big = mem_alloc(len);
    CHECK(big != NULL);
    struct rng r;
    rng_seed(&r, test_seed());
    rng_fill(&r, big, len);
    int rc = put1(f->s, STORE_T_KV_REV, S("big"), slice_make(big, len));
    if (rc == 0)
        rc = put1(f->s, STORE_T_KV_REV, S("big2"), slice_make(big, len - 1));
    int same = rc ? rc : value_is(f->s, STORE_T_KV_REV, S("big"), slice_make(big, len));
    int same2 = rc ? rc : value_is(f->s, STORE_T_KV_REV, S("big2"), slice_make(big, len - 1));
    mem_free(big);
    CHECK_OK(rc);
    CHECK_EQ(same, 1);
    CHECK_EQ(same2, 1);
}

/* ---- Randomized operations against a reference model ---- */

#define MODEL_MAX     256
#define MODEL_KEY_MAX 6
#define MODEL_VAL_MAX 24

struct model_rec {
    uint8_t k[MODEL_KEY_MAX], v[MODEL_VAL_MAX];
    uint8_t klen, vlen;
};

/* A sorted array: the simplest thing that is obviously right. */
struct model {
    struct model_rec r[MODEL_MAX];
    size_t n;
};

static struct slice mk(const struct model_rec *r)
{
    return slice_make(r->k, r->klen);
}

/* Index of the first record >= key. */
static size_t model_lower(const struct model *m, struct slice key)
{
    size_t i = 0;
    while (i < m->n && slice_cmp(mk(&m->r[i]), key) < 0)
        i++;
    return i;
}

static void model_put(struct model *m, struct slice key, struct slice val)
{
    size_t i = model_lower(m, key);
    if (i == m->n || !slice_eq(mk(&m->r[i]), key)) {
        ASPEN_ASSERT(m->n < MODEL_MAX);
        memmove(&m->r[i + 1], &m->r[i], (m->n - i) * sizeof(m->r[0]));
        m->n++;
    }
    memcpy(m->r[i].k, key.ptr, key.len);
    m->r[i].klen = (uint8_t)key.len;
    if (val.len)
        memcpy(m->r[i].v, val.ptr, val.len);
    m->r[i].vlen = (uint8_t)val.len;
}

static bool model_del(struct model *m, struct slice key)
{
    size_t i = model_lower(m, key);
    if (i == m->n || !slice_eq(mk(&m->r[i]), key))
        return false;
    memmove(&m->r[i], &m->r[i + 1], (m->n - i - 1) * sizeof(m->r[0]));
    m->n--;
    return true;
}

/* Keys from a tiny alphabet that includes 0x00 and 0xff, so prefixes and extremes
 * collide often. */
static size_t random_key(struct rng *r, uint8_t *out)
{
    static const uint8_t alphabet[] = {0x00, 0x01, 'a', 0x7f, 0x80, 0xff};
    size_t len = 1 + (size_t)rng_below(r, 3);
    for (size_t i = 0; i < len; i++)
        out[i] = alphabet[rng_below(r, sizeof(alphabet))];
    return len;
}

static void conf_random_model(struct fixture *f)
{
    struct model *committed = mem_calloc(1, sizeof(struct model));
    struct model *work = mem_calloc(1, sizeof(struct model));
    CHECK(committed && work);
    struct rng r;
    rng_seed(&r, test_seed());
    struct store_txn *t = NULL;
    struct store_cursor *c = NULL;
    struct slice k, v;
    int failed_at = -1;
    uint64_t ops = test_iters(6000);
    for (uint64_t op = 0; op < ops && failed_at < 0; op++) {
        if (!t) {
            if (store_begin(f->s, true, &t) != 0) {
                failed_at = __LINE__;
                break;
            }
            *work = *committed;
        }
        uint8_t key[MODEL_KEY_MAX], val[MODEL_VAL_MAX];
        size_t klen = random_key(&r, key);
        struct slice ks = slice_make(key, klen);
        uint64_t dice = rng_below(&r, 100);
        if (dice < 35 && work->n < MODEL_MAX) {
            size_t vlen = (size_t)rng_below(&r, MODEL_VAL_MAX + 1);
            rng_fill(&r, val, vlen);
            if (store_put(t, STORE_T_KV_INDEX, ks, slice_make(val, vlen)) != 0)
                failed_at = __LINE__;
            model_put(work, ks, slice_make(val, vlen));
        } else if (dice < 50) {
            int rc = store_del(t, STORE_T_KV_INDEX, ks);
            bool had = model_del(work, ks);
            if (rc != (had ? 0 : ASPEN_E_NOT_FOUND))
                failed_at = __LINE__;
        } else if (dice < 65) {
            int rc = store_get(t, STORE_T_KV_INDEX, ks, &v);
            size_t i = model_lower(work, ks);
            bool has = i < work->n && slice_eq(mk(&work->r[i]), ks);
            if (has ? (rc != 0 || !slice_eq(v, slice_make(work->r[i].v, work->r[i].vlen)))
                    : rc != ASPEN_E_NOT_FOUND)
                failed_at = __LINE__;
        } else if (dice < 85) {
            /* A random seek, then a short random walk either way. */
            if (store_cursor_open(t, STORE_T_KV_INDEX, &c) != 0) {
                failed_at = __LINE__;
                break;
            }
            size_t i = model_lower(work, ks);
            int rc = store_seek(c, ks, &k, &v);
            if (i == work->n ? rc != ASPEN_E_NOT_FOUND : (rc != 0 || !slice_eq(k, mk(&work->r[i]))))
                failed_at = __LINE__;
            for (int step = 0; step < 5 && rc == 0 && failed_at < 0; step++) {
                bool fwd = rng_ratio(&r, 1, 2);
                rc = fwd ? store_next(c, &k, &v) : store_prev(c, &k, &v);
                bool off = fwd ? i + 1 >= work->n : i == 0;
                if (off) {
                    if (rc != ASPEN_E_NOT_FOUND)
                        failed_at = __LINE__;
                    break;
                }
                i = fwd ? i + 1 : i - 1;
                if (rc != 0 || !slice_eq(k, mk(&work->r[i])) ||
                    !slice_eq(v, slice_make(work->r[i].v, work->r[i].vlen)))
                    failed_at = __LINE__;
            }
            if (rng_ratio(&r, 1, 4) && failed_at < 0) {
                /* And sometimes one from the end. */
                rc = store_last(c, &k, &v);
                if (work->n == 0 ? rc != ASPEN_E_NOT_FOUND
                                 : (rc != 0 || !slice_eq(k, mk(&work->r[work->n - 1]))))
                    failed_at = __LINE__;
            }
            store_cursor_close(c);
            c = NULL;
        } else if (dice < 88) {
            uint64_t n;
            if (store_count(t, STORE_T_KV_INDEX, &n) != 0 || n != work->n)
                failed_at = __LINE__;
        } else if (dice < 97) {
            if (store_commit(t, rng_ratio(&r, 1, 2)) != 0)
                failed_at = __LINE__;
            t = NULL;
            *committed = *work;
        } else {
            store_abort(t);
            t = NULL;
        }
    }
    if (t)
        store_abort(t);
    mem_free(committed);
    mem_free(work);
    CHECK_MSG(failed_at < 0, "model mismatch detected at line %d (seed %" PRIu64 ")", failed_at,
              test_seed());
}

/* Every conformance case, for the per-backend wrappers below. */
#define CONFORMANCE(X)                                                                             \
    X(basic)                                                                                       \
    X(limits)                                                                                      \
    X(order)                                                                                       \
    X(cursor_del)                                                                                  \
    X(clear_count_abort)                                                                           \
    X(cursor_sees_writes)                                                                          \
    X(large_values)                                                                                \
    X(random_model)

static void run_case(enum backend b, void (*fn)(struct fixture *))
{
    struct fixture f;
    int rc = fixture_open(&f, b);
    if (rc) {
        test_fail(__FILE__, __LINE__, "open backend %d: %s", (int)b, aspen_err_name(rc));
        return;
    }
    fn(&f);
    fixture_close(&f);
}

#define LMDB_CASE(name)                                                                            \
    static void lmdb_##name(void)                                                                  \
    {                                                                                              \
        run_case(B_LMDB, conf_##name);                                                             \
    }
CONFORMANCE(LMDB_CASE)

#define MEM_CASE(name)                                                                             \
    static void mem_##name(void)                                                                   \
    {                                                                                              \
        run_case(B_MEM, conf_##name);                                                              \
    }
CONFORMANCE(MEM_CASE)

/* ---------------------------------------------------------------------------------------
 * LMDB only
 * ------------------------------------------------------------------------------------- */

static void lmdb_reopen_persists(void)
{
    struct fixture f;
    CHECK_OK(fixture_open(&f, B_LMDB));
    int rc = put1(f.s, STORE_T_META, S("k"), S("durable"));
    if (rc == 0) {
        store_close(f.s);
        f.s = NULL;
        rc = lmdb_open_dir(&f, NULL);
    }
    int same = rc ? rc : value_is(f.s, STORE_T_META, S("k"), S("durable"));
    struct store_lmdb_stats st = {0};
    if (f.s)
        store_lmdb_stats(f.s, &st);
    /* The files: one data file and LMDB's lock file, both private to the user. */
    char p[128];
    struct stat sb;
    snprintf(p, sizeof(p), "%s/%s", f.dir, STORE_LMDB_FILE_NAME);
    int mode = stat(p, &sb) == 0 ? (int)(sb.st_mode & 0777) : -1;
    fixture_close(&f);
    CHECK_OK(rc);
    CHECK_EQ(same, 1);
    CHECK_EQ(mode, 0600);
    CHECK(st.file_bytes > 0 && st.page_bytes >= 4096);
    CHECK_EQ_U64(st.map_bytes, ASPEN_STORAGE_MAP_INITIAL_BYTES);
}

/* A read transaction begun before a commit keeps seeing the old data (LMDB's MVCC). */
static void lmdb_snapshot_isolation(void)
{
    struct fixture f;
    CHECK_OK(fixture_open(&f, B_LMDB));
    struct store_txn *r = NULL, *w = NULL;
    struct slice v;
    int rc = put1(f.s, STORE_T_META, S("k"), S("old"));
    if (!rc)
        rc = store_begin(f.s, false, &r);
    if (!rc)
        rc = store_begin(f.s, true, &w); /* a writer alongside a reader */
    if (!rc)
        rc = store_put(w, STORE_T_META, S("k"), S("new"));
    if (!rc)
        rc = store_put(w, STORE_T_META, S("k2"), S("new"));
    if (!rc) {
        rc = store_commit(w, true);
        w = NULL;
    }
    int old_seen = rc ? rc : store_get(r, STORE_T_META, S("k"), &v);
    if (!old_seen)
        old_seen = slice_eq(v, S("old"));
    int k2_absent = rc ? rc : store_get(r, STORE_T_META, S("k2"), &v);
    if (r)
        store_abort(r);
    if (w)
        store_abort(w);
    int new_seen = rc ? rc : value_is(f.s, STORE_T_META, S("k"), S("new"));
    fixture_close(&f);
    CHECK_OK(rc);
    CHECK_EQ(old_seen, 1);
    CHECK_ERR(k2_absent, ASPEN_E_NOT_FOUND);
    CHECK_EQ(new_seen, 1);
}

/* Fills a small map: FULL, the map grows when the transaction is gone, the retry
 * succeeds; at the maximum FULL is final; reads keep working throughout. */
static void lmdb_full_and_grow(void)
{
    struct fixture f;
    memset(&f, 0, sizeof(f));
    f.backend = B_LMDB;
    snprintf(f.dir, sizeof(f.dir), "/tmp/aspen-test-store-XXXXXX");
    CHECK(mkdtemp(f.dir) != NULL);
    struct store_lmdb_options o = {.map_initial_bytes = 1u << 20, .map_max_bytes = 3u << 20};
    CHECK_OK(lmdb_open_dir(&f, &o));
    static uint8_t val[64 * 1024];
    uint8_t key[8];
    uint64_t written = 0, fulls = 0, grows_seen = 0;
    int rc = 0;
    for (uint64_t i = 0; i < 200; i++) {
        make_key(key, i);
        rc = put1(f.s, STORE_T_KV_REV, slice_make(key, 8), slice_make(val, sizeof(val)));
        if (rc == ASPEN_E_FULL) {
            fulls++;
            struct store_lmdb_stats st;
            store_lmdb_stats(f.s, &st);
            if (st.map_grows == grows_seen)
                break; /* no growth happened: the maximum is reached */
            grows_seen = st.map_grows;
            /* Retry the same record after the growth. */
            rc = put1(f.s, STORE_T_KV_REV, slice_make(key, 8), slice_make(val, sizeof(val)));
            if (rc == ASPEN_E_FULL) {
                fulls++;
                store_lmdb_stats(f.s, &st);
                if (st.map_grows == grows_seen)
                    break;
                grows_seen = st.map_grows;
                continue;
            }
        }
        if (rc)
            break;
        written++;
    }
    struct store_lmdb_stats st = {0};
    store_lmdb_stats(f.s, &st);
    /* The store still serves reads, and everything committed is there. */
    uint64_t n = 0;
    struct store_txn *t;
    int rrc = store_begin(f.s, false, &t);
    if (!rrc) {
        rrc = store_count(t, STORE_T_KV_REV, &n);
        store_abort(t);
    }
    make_key(key, 0);
    int first = value_is(f.s, STORE_T_KV_REV, slice_make(key, 8), slice_make(val, sizeof(val)));
    fixture_close(&f);
    CHECK_ERR(rc, ASPEN_E_FULL);
    CHECK(fulls >= 2);
    CHECK_EQ_U64(st.map_grows, 2); /* 1 MiB -> 2 MiB -> 3 MiB */
    CHECK_EQ_U64(st.map_bytes, 3u << 20);
    CHECK(written > 20);
    CHECK_OK(rrc);
    CHECK_EQ_U64(n, written);
    CHECK_EQ(first, 1);
}

static void lmdb_open_garbage(void)
{
    struct fixture f;
    memset(&f, 0, sizeof(f));
    f.backend = B_LMDB;
    snprintf(f.dir, sizeof(f.dir), "/tmp/aspen-test-store-XXXXXX");
    CHECK(mkdtemp(f.dir) != NULL);
    char p[128];
    snprintf(p, sizeof(p), "%s/%s", f.dir, STORE_LMDB_FILE_NAME);
    int fd = open(p, O_CREAT | O_WRONLY, 0600);
    static uint8_t junk[16384];
    memset(junk, 0x5a, sizeof(junk));
    ssize_t w = fd >= 0 ? write(fd, junk, sizeof(junk)) : -1;
    if (fd >= 0)
        close(fd);
    char err[256] = "";
    int rc = store_lmdb_open(&f.s, f.dir, NULL, err, sizeof(err));
    bool names_path = strstr(err, p) != NULL && strncmp(err, "storage: ", 9) == 0;
    bool says_why = strstr(err, "not an LMDB") != NULL;
    /* A directory path that is a regular file. */
    char err2[256] = "";
    struct store *s2 = NULL;
    int rc2 = store_lmdb_open(&s2, p, NULL, err2, sizeof(err2));
    store_close(s2);
    fixture_close(&f);
    CHECK_EQ(w, (ssize_t)sizeof(junk));
    CHECK_ERR(rc, ASPEN_E_CORRUPT);
    CHECK_MSG(names_path && says_why, "message: %s", err);
    CHECK(rc2 != 0);
    CHECK_MSG(strncmp(err2, "storage: ", 9) == 0, "message: %s", err2);
}

/* ---------------------------------------------------------------------------------------
 * Memory backend only
 * ------------------------------------------------------------------------------------- */

static int put_sync(struct store *s, const char *k, bool sync)
{
    struct store_txn *t;
    int rc = store_begin(s, true, &t);
    if (rc)
        return rc;
    if ((rc = store_put(t, STORE_T_META, S(k), S("v"))) != 0) {
        store_abort(t);
        return rc;
    }
    return store_commit(t, sync);
}

static bool has(struct store *s, const char *k)
{
    return value_is(s, STORE_T_META, S(k), S("v")) == 1;
}

/* A crash loses exactly the commits no later sync covered. */
static void mem_crash(void)
{
    struct store *s;
    CHECK_OK(store_mem_open(&s, NULL));
    int rc = put_sync(s, "a", true);
    if (!rc)
        rc = put_sync(s, "b", false);
    bool before = !rc && has(s, "b"); /* visible at once */
    store_mem_crash(s);
    bool a1 = has(s, "a"), b1 = has(s, "b");
    if (!rc)
        rc = put_sync(s, "c", false);
    if (!rc)
        rc = put_sync(s, "d", true); /* covers c */
    if (!rc)
        rc = put_sync(s, "e", false);
    store_mem_crash(s);
    bool c2 = has(s, "c"), d2 = has(s, "d"), e2 = has(s, "e");
    struct store_mem_stats st;
    store_mem_stats(s, &st);
    store_close(s);
    CHECK_OK(rc);
    CHECK(before);
    CHECK(a1 && !b1);
    CHECK(c2 && d2 && !e2);
    CHECK_EQ_U64(st.syncs, 2);
}

static void mem_fail_commit(void)
{
    struct store *s;
    CHECK_OK(store_mem_open(&s, NULL));
    store_mem_fail_commit(s, 1, ASPEN_E_IO); /* the second commit from now fails */
    int rc1 = put_sync(s, "a", true);
    int rc2 = put_sync(s, "b", true);
    int rc3 = put_sync(s, "c", true);
    bool a = has(s, "a"), b = has(s, "b"), c = has(s, "c");
    store_mem_fail_commit(s, 0, ASPEN_E_FULL);
    store_mem_fail_commit(s, 0, 0); /* cancelled */
    int rc4 = put_sync(s, "d", true);
    store_close(s);
    CHECK_OK(rc1);
    CHECK_ERR(rc2, ASPEN_E_IO);
    CHECK_OK(rc3);
    CHECK(a && !b && c);
    CHECK_OK(rc4);
}

static void mem_quota(void)
{
    struct store *s;
    struct store_mem_options o = {.quota_bytes = 4096};
    CHECK_OK(store_mem_open(&s, &o));
    static uint8_t val[100];
    uint8_t key[8];
    int rc = 0;
    uint64_t written = 0;
    for (uint64_t i = 0; i < 1000 && rc == 0; i++) {
        make_key(key, i);
        rc = put1(s, STORE_T_KV_REV, slice_make(key, 8), slice_make(val, sizeof(val)));
        if (!rc)
            written++;
    }
    /* Still readable after FULL, and nothing of the failed transaction stayed. */
    struct store_txn *t;
    uint64_t n = 0;
    int rrc = store_begin(s, false, &t);
    if (!rrc) {
        rrc = store_count(t, STORE_T_KV_REV, &n);
        store_abort(t);
    }
    struct store_mem_stats st;
    store_mem_stats(s, &st);
    store_close(s);
    CHECK_ERR(rc, ASPEN_E_FULL);
    CHECK(written > 10 && written < 1000);
    CHECK_OK(rrc);
    CHECK_EQ_U64(n, written);
    CHECK(st.bytes <= 4096);
}

/* A clone is a deep, independent copy of the committed state and its durability. */
static void mem_clone(void)
{
    struct store *s, *c = NULL;
    CHECK_OK(store_mem_open(&s, NULL));
    int rc = put_sync(s, "synced", true);
    if (!rc)
        rc = put_sync(s, "unsynced", false);
    if (!rc)
        rc = store_mem_clone(s, &c);
    if (!rc)
        rc = put_sync(s, "later", true);
    bool later_in_clone = c && has(c, "later");
    bool both = c && has(c, "synced") && has(c, "unsynced");
    if (c)
        store_mem_crash(c);
    bool after_crash = c && has(c, "synced") && !has(c, "unsynced");
    bool orig = has(s, "unsynced") && has(s, "later");
    store_close(c);
    store_close(s);
    CHECK_OK(rc);
    CHECK(!later_in_clone);
    CHECK(both);
    CHECK(after_crash);
    CHECK(orig);
}

#define MEM_ONLY_TESTS TEST(mem_crash), TEST(mem_fail_commit), TEST(mem_quota), TEST(mem_clone),

#define LMDB_TEST(name) TEST(lmdb_##name),
#define MEM_TEST(name)  TEST(mem_##name),

static const struct test_case tests[] = {
    CONFORMANCE(LMDB_TEST) CONFORMANCE(MEM_TEST) MEM_ONLY_TESTS TEST(lmdb_reopen_persists),
    TEST(lmdb_snapshot_isolation),
    TEST(lmdb_full_and_grow),
    TEST(lmdb_open_garbage),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("store", tests);
}
