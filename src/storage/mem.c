/*
 * The in-memory storage backend (store_mem.h): sorted arrays of records per table, with
 * undo logs for abort and for simulated crashes.
 *
 * Writes go straight into the tables and remember what they replaced. Abort replays the
 * transaction's undo log backwards. A commit with sync=false keeps its undo log on a stack
 * of "not yet durable" commits; a synced commit empties that stack (everything up to it is
 * durable, as with LMDB); store_mem_crash() replays the stack backwards, which leaves
 * exactly the state of the last synced commit — what a power loss leaves on disk.
 *
 * Sorted arrays make inserts O(n); this backend serves the simulator and unit tests, whose
 * states are small, and simplicity wins there. Cursors remember their key, so a write in
 * the same transaction (which may move records) never leaves them pointing at the wrong
 * record: they re-find their place by key when the table has changed under them.
 */
#include "storage/store_mem.h"

#include "base/assert.h"
#include "base/mem.h"

#include <string.h>

struct rec {
    uint8_t *key; /* owned; one allocation holds key then value */
    uint8_t *val; /* points into the same allocation */
    uint32_t klen;
    uint32_t vlen;
};

struct table {
    struct rec *recs; /* owned, sorted by key */
    size_t n;
    size_t cap;
    uint64_t version; /* bumped by every write: cursors re-seek when it moved */
};

/* One undone write: the record that `key` held before (absent if !had). */
struct undo {
    uint8_t tb;
    bool had;
    struct rec old; /* owned: key always set; the value only if had */
};

struct undo_log {
    struct undo *u; /* owned */
    size_t n;
    size_t cap;
};

struct mem_store {
    struct store base;
    struct table tables[STORE_N_TABLES];
    uint64_t quota_bytes;
    uint64_t bytes;
    struct undo_log *unsynced; /* owned: commits since the last sync, oldest first */
    size_t n_unsynced;
    size_t cap_unsynced;
    bool writer_open;
    uint32_t readers_open;
    uint64_t fail_after; /* commits to let through before failing one */
    int fail_rc;         /* 0: no injected failure armed */
    struct store_mem_stats stats;
};

struct mem_txn {
    struct store_txn_head head;
    struct mem_store *s;
    bool write;
    struct undo_log undo; /* owned (write transactions) */
};

struct mem_cursor {
    struct store_cursor_head head;
    struct mem_txn *t;
    struct table *tb;
    size_t pos;       /* index of the current record when valid */
    bool valid;       /* the cursor stands on a record */
    uint64_t version; /* tb->version when pos was computed */
    uint8_t *key;     /* owned copy of the current key (re-seek after writes) */
    uint32_t klen;
    uint32_t key_cap;
};

static const struct store_vtable mem_vtable;

/* ---------------------------------------------------------------------------------------
 * Records and tables
 * ------------------------------------------------------------------------------------- */

static int rec_make(struct rec *r, struct slice key, struct slice val)
{
    uint8_t *p = mem_alloc(key.len + val.len + 1);
    if (!p)
        return ASPEN_E_NOMEM;
    if (key.len)
        memcpy(p, key.ptr, key.len);
    if (val.len)
        memcpy(p + key.len, val.ptr, val.len);
    r->key = p;
    r->val = p + key.len;
    r->klen = (uint32_t)key.len;
    r->vlen = (uint32_t)val.len;
    return 0;
}

static void rec_free(struct rec *r)
{
    mem_free(r->key);
    r->key = r->val = NULL;
}

static struct slice rec_key(const struct rec *r)
{
    return slice_make(r->key, r->klen);
}

/* Index of the first record >= key. */
static size_t lower_bound(const struct table *tb, struct slice key)
{
    size_t lo = 0, hi = tb->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (slice_cmp(rec_key(&tb->recs[mid]), key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool found_at(const struct table *tb, size_t i, struct slice key)
{
    return i < tb->n && slice_cmp(rec_key(&tb->recs[i]), key) == 0;
}

static void table_release(struct table *tb)
{
    for (size_t i = 0; i < tb->n; i++)
        rec_free(&tb->recs[i]);
    mem_free(tb->recs);
    memset(tb, 0, sizeof(*tb));
}

/* Puts r (ownership moves in) at its place; returns the record it replaced through *old
 * (ownership moves out) and whether there was one. */
static int table_set(struct table *tb, struct rec r, struct rec *old, bool *had)
{
    size_t i = lower_bound(tb, rec_key(&r));
    tb->version++;
    if (found_at(tb, i, rec_key(&r))) {
        *old = tb->recs[i];
        *had = true;
        tb->recs[i] = r;
        return 0;
    }
    int rc = mem_grow(&tb->recs, &tb->cap, tb->n, sizeof(*tb->recs), 64, SIZE_MAX / 2);
    if (rc)
        return rc;
    memmove(&tb->recs[i + 1], &tb->recs[i], (tb->n - i) * sizeof(*tb->recs));
    tb->recs[i] = r;
    tb->n++;
    *had = false;
    return 0;
}

/* Removes the record at i; ownership of it moves to *out. */
static void table_remove_at(struct table *tb, size_t i, struct rec *out)
{
    *out = tb->recs[i];
    memmove(&tb->recs[i], &tb->recs[i + 1], (tb->n - i - 1) * sizeof(*tb->recs));
    tb->n--;
    tb->version++;
}

/* ---------------------------------------------------------------------------------------
 * Undo logs
 * ------------------------------------------------------------------------------------- */

static void undo_log_release(struct undo_log *l)
{
    for (size_t i = 0; i < l->n; i++)
        rec_free(&l->u[i].old);
    mem_free(l->u);
    memset(l, 0, sizeof(*l));
}

static int undo_reserve(struct undo_log *l)
{
    return mem_grow(&l->u, &l->cap, l->n, sizeof(*l->u), 16, SIZE_MAX / 2);
}

/* Replays l backwards on s, leaving the tables as they were before l's writes, and
 * empties l. */
static void undo_log_rollback(struct mem_store *s, struct undo_log *l)
{
    while (l->n > 0) {
        struct undo *u = &l->u[--l->n];
        struct table *tb = &s->tables[u->tb];
        size_t i = lower_bound(tb, rec_key(&u->old));
        if (found_at(tb, i, rec_key(&u->old))) {
            struct rec cur;
            table_remove_at(tb, i, &cur);
            s->bytes -= (uint64_t)cur.klen + cur.vlen;
            rec_free(&cur);
        }
        if (u->had) {
            bool had;
            struct rec unused;
            /* Cannot fail for lack of memory: the slot it left is still allocated. */
            int rc = table_set(tb, u->old, &unused, &had);
            ASPEN_ASSERT(rc == 0 && !had);
            s->bytes += (uint64_t)u->old.klen + u->old.vlen;
        } else {
            rec_free(&u->old);
        }
    }
    undo_log_release(l);
}

/* ---------------------------------------------------------------------------------------
 * Store and transactions
 * ------------------------------------------------------------------------------------- */

int store_mem_open(struct store **out, const struct store_mem_options *opts)
{
    struct mem_store *s = mem_calloc(1, sizeof(*s));
    if (!s)
        return ASPEN_E_NOMEM;
    s->base.vt = &mem_vtable;
    s->quota_bytes = opts ? opts->quota_bytes : 0;
    *out = &s->base;
    return 0;
}

static struct mem_store *mem_of(struct store *s)
{
    ASPEN_ASSERT(s->vt == &mem_vtable);
    return (struct mem_store *)(void *)s;
}

static void drop_unsynced(struct mem_store *s)
{
    for (size_t i = 0; i < s->n_unsynced; i++)
        undo_log_release(&s->unsynced[i]);
    s->n_unsynced = 0;
}

static void mem_close(struct store *base)
{
    struct mem_store *s = mem_of(base);
    ASPEN_ASSERT(!s->writer_open && s->readers_open == 0);
    drop_unsynced(s);
    mem_free(s->unsynced);
    for (int i = 0; i < STORE_N_TABLES; i++)
        table_release(&s->tables[i]);
    mem_free(s);
}

static int mem_begin(struct store *base, bool write, struct store_txn **out)
{
    struct mem_store *s = mem_of(base);
    /* Single-threaded backend: readers and the writer never overlap (store_mem.h). */
    ASPEN_ASSERT(!s->writer_open);
    if (write)
        ASPEN_ASSERT(s->readers_open == 0);
    struct mem_txn *t = mem_calloc(1, sizeof(*t));
    if (!t)
        return ASPEN_E_NOMEM;
    t->head.vt = &mem_vtable;
    t->s = s;
    t->write = write;
    if (write)
        s->writer_open = true;
    else
        s->readers_open++;
    *out = (struct store_txn *)(void *)t;
    return 0;
}

static struct mem_txn *txn_of(struct store_txn *t)
{
    return (struct mem_txn *)(void *)t;
}

static void txn_end(struct mem_txn *t)
{
    if (t->write)
        t->s->writer_open = false;
    else
        t->s->readers_open--;
    mem_free(t);
}

static void mem_abort(struct store_txn *tt)
{
    struct mem_txn *t = txn_of(tt);
    if (t->write)
        undo_log_rollback(t->s, &t->undo);
    txn_end(t);
}

static int mem_commit(struct store_txn *tt, bool sync)
{
    struct mem_txn *t = txn_of(tt);
    struct mem_store *s = t->s;
    if (!t->write) {
        txn_end(t);
        return 0;
    }
    if (s->fail_rc != 0) {
        if (s->fail_after == 0) {
            int rc = s->fail_rc;
            s->fail_rc = 0;
            mem_abort(tt);
            return rc;
        }
        s->fail_after--;
    }
    s->stats.commits++;
    if (sync) {
        s->stats.syncs++;
        drop_unsynced(s);
        undo_log_release(&t->undo);
    } else if (t->undo.n > 0) {
        int rc = mem_grow(&s->unsynced, &s->cap_unsynced, s->n_unsynced, sizeof(*s->unsynced), 8,
                          SIZE_MAX / 2);
        if (rc) {
            mem_abort(tt);
            return rc;
        }
        s->unsynced[s->n_unsynced++] = t->undo;
        memset(&t->undo, 0, sizeof(t->undo));
    }
    txn_end(t);
    return 0;
}

static int check_table(enum store_table tb)
{
    return (unsigned)tb < STORE_N_TABLES ? 0 : ASPEN_E_INVALID;
}

static int check_key(struct slice key)
{
    return key.len >= 1 && key.len <= STORE_MAX_KEY ? 0 : ASPEN_E_INVALID;
}

static int mem_get(struct store_txn *tt, enum store_table tbi, struct slice key, struct slice *val)
{
    struct mem_txn *t = txn_of(tt);
    int rc = check_table(tbi);
    if (rc || (rc = check_key(key)) != 0)
        return rc;
    const struct table *tb = &t->s->tables[tbi];
    size_t i = lower_bound(tb, key);
    if (!found_at(tb, i, key))
        return ASPEN_E_NOT_FOUND;
    *val = slice_make(tb->recs[i].val, tb->recs[i].vlen);
    return 0;
}

static int mem_put(struct store_txn *tt, enum store_table tbi, struct slice key, struct slice val)
{
    struct mem_txn *t = txn_of(tt);
    struct mem_store *s = t->s;
    ASPEN_ASSERT(t->write);
    int rc = check_table(tbi);
    if (rc || (rc = check_key(key)) != 0)
        return rc;
    if (val.len > STORE_MAX_VALUE)
        return ASPEN_E_TOO_LARGE;
    uint64_t add = (uint64_t)key.len + val.len;
    if (s->quota_bytes && s->bytes + add > s->quota_bytes)
        return ASPEN_E_FULL;
    struct rec r, old, kcopy;
    if ((rc = undo_reserve(&t->undo)) != 0)
        return rc;
    if ((rc = rec_make(&r, key, val)) != 0)
        return rc;
    if ((rc = rec_make(&kcopy, key, slice_make(NULL, 0))) != 0) {
        rec_free(&r);
        return rc;
    }
    bool had;
    if ((rc = table_set(&s->tables[tbi], r, &old, &had)) != 0) {
        rec_free(&r);
        rec_free(&kcopy);
        return rc;
    }
    s->bytes += add;
    struct undo *u = &t->undo.u[t->undo.n++];
    u->tb = (uint8_t)tbi;
    u->had = had;
    if (had) {
        s->bytes -= (uint64_t)old.klen + old.vlen;
        rec_free(&kcopy);
        u->old = old;
    } else {
        u->old = kcopy;
    }
    return 0;
}

/* Deletes the record at i of table tbi, logging it for undo. */
static int del_at(struct mem_txn *t, enum store_table tbi, size_t i)
{
    int rc = undo_reserve(&t->undo);
    if (rc)
        return rc;
    struct rec old;
    table_remove_at(&t->s->tables[tbi], i, &old);
    t->s->bytes -= (uint64_t)old.klen + old.vlen;
    struct undo *u = &t->undo.u[t->undo.n++];
    u->tb = (uint8_t)tbi;
    u->had = true;
    u->old = old;
    return 0;
}

static int mem_del(struct store_txn *tt, enum store_table tbi, struct slice key)
{
    struct mem_txn *t = txn_of(tt);
    ASPEN_ASSERT(t->write);
    int rc = check_table(tbi);
    if (rc || (rc = check_key(key)) != 0)
        return rc;
    struct table *tb = &t->s->tables[tbi];
    size_t i = lower_bound(tb, key);
    if (!found_at(tb, i, key))
        return ASPEN_E_NOT_FOUND;
    return del_at(t, tbi, i);
}

static int mem_clear(struct store_txn *tt, enum store_table tbi)
{
    struct mem_txn *t = txn_of(tt);
    ASPEN_ASSERT(t->write);
    int rc = check_table(tbi);
    if (rc)
        return rc;
    struct table *tb = &t->s->tables[tbi];
    while (tb->n > 0)
        if ((rc = del_at(t, tbi, tb->n - 1)) != 0)
            return rc;
    return 0;
}

static int mem_count(struct store_txn *tt, enum store_table tbi, uint64_t *n)
{
    int rc = check_table(tbi);
    if (rc)
        return rc;
    *n = txn_of(tt)->s->tables[tbi].n;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Cursors
 * ------------------------------------------------------------------------------------- */

static int mem_cursor_open(struct store_txn *tt, enum store_table tbi, struct store_cursor **out)
{
    int rc = check_table(tbi);
    if (rc)
        return rc;
    struct mem_cursor *c = mem_calloc(1, sizeof(*c));
    if (!c)
        return ASPEN_E_NOMEM;
    c->head.vt = &mem_vtable;
    c->t = txn_of(tt);
    c->tb = &c->t->s->tables[tbi];
    *out = (struct store_cursor *)(void *)c;
    return 0;
}

static struct mem_cursor *cursor_of(struct store_cursor *c)
{
    return (struct mem_cursor *)(void *)c;
}

static void mem_cursor_close(struct store_cursor *cc)
{
    struct mem_cursor *c = cursor_of(cc);
    mem_free(c->key);
    mem_free(c);
}

/* Stands the cursor on record i (or nowhere if i is past the end) and returns it. */
static int stand(struct mem_cursor *c, size_t i, struct slice *k, struct slice *v)
{
    c->version = c->tb->version;
    if (i >= c->tb->n) {
        c->valid = false;
        return ASPEN_E_NOT_FOUND;
    }
    const struct rec *r = &c->tb->recs[i];
    if (r->klen > c->key_cap) {
        uint8_t *p = mem_realloc(c->key, r->klen);
        if (!p) {
            c->valid = false;
            return ASPEN_E_NOMEM;
        }
        c->key = p;
        c->key_cap = r->klen;
    }
    memcpy(c->key, r->key, r->klen);
    c->klen = r->klen;
    c->pos = i;
    c->valid = true;
    if (k)
        *k = rec_key(r);
    if (v)
        *v = slice_make(r->val, r->vlen);
    return 0;
}

static int mem_seek(struct store_cursor *cc, struct slice key, struct slice *k, struct slice *v)
{
    struct mem_cursor *c = cursor_of(cc);
    return stand(c, key.len ? lower_bound(c->tb, key) : 0, k, v);
}

static int mem_last(struct store_cursor *cc, struct slice *k, struct slice *v)
{
    struct mem_cursor *c = cursor_of(cc);
    return stand(c, c->tb->n ? c->tb->n - 1 : SIZE_MAX, k, v);
}

/* Re-finds the cursor's place after writes: *at = index of the first record >= its key,
 * *exact = that record is its key. */
static void refind(struct mem_cursor *c, size_t *at, bool *exact)
{
    struct slice key = slice_make(c->key, c->klen);
    if (c->version == c->tb->version) {
        *at = c->pos;
        *exact = true;
        return;
    }
    *at = lower_bound(c->tb, key);
    *exact = found_at(c->tb, *at, key);
}

static int mem_next(struct store_cursor *cc, struct slice *k, struct slice *v)
{
    struct mem_cursor *c = cursor_of(cc);
    if (!c->valid)
        return ASPEN_E_NOT_FOUND;
    size_t at;
    bool exact;
    refind(c, &at, &exact);
    return stand(c, exact ? at + 1 : at, k, v);
}

static int mem_prev(struct store_cursor *cc, struct slice *k, struct slice *v)
{
    struct mem_cursor *c = cursor_of(cc);
    if (!c->valid)
        return ASPEN_E_NOT_FOUND;
    size_t at;
    bool exact;
    refind(c, &at, &exact);
    if (at == 0) {
        c->valid = false;
        return ASPEN_E_NOT_FOUND;
    }
    return stand(c, at - 1, k, v);
}

static int mem_cursor_del(struct store_cursor *cc, struct slice *k, struct slice *v)
{
    struct mem_cursor *c = cursor_of(cc);
    ASPEN_ASSERT(c->t->write);
    if (!c->valid)
        return ASPEN_E_NOT_FOUND;
    size_t at;
    bool exact;
    refind(c, &at, &exact);
    if (!exact)
        return ASPEN_E_NOT_FOUND;
    int rc = del_at(c->t, (enum store_table)(c->tb - c->t->s->tables), at);
    if (rc)
        return rc;
    return stand(c, at, k, v);
}

/* ---------------------------------------------------------------------------------------
 * Test and simulator controls
 * ------------------------------------------------------------------------------------- */

void store_mem_crash(struct store *base)
{
    struct mem_store *s = mem_of(base);
    ASPEN_ASSERT(!s->writer_open && s->readers_open == 0);
    while (s->n_unsynced > 0)
        undo_log_rollback(s, &s->unsynced[--s->n_unsynced]);
}

void store_mem_fail_commit(struct store *base, uint64_t n, int rc)
{
    struct mem_store *s = mem_of(base);
    ASPEN_ASSERT(rc <= 0);
    s->fail_after = n;
    s->fail_rc = rc;
}

void store_mem_stats(struct store *base, struct store_mem_stats *out)
{
    struct mem_store *s = mem_of(base);
    *out = s->stats;
    out->bytes = s->bytes;
}

static int copy_table(struct table *dst, const struct table *src)
{
    if (src->n == 0)
        return 0;
    dst->recs = mem_calloc(src->n, sizeof(*dst->recs));
    if (!dst->recs)
        return ASPEN_E_NOMEM;
    dst->cap = src->n;
    for (size_t i = 0; i < src->n; i++) {
        const struct rec *r = &src->recs[i];
        int rc = rec_make(&dst->recs[i], rec_key(r), slice_make(r->val, r->vlen));
        if (rc)
            return rc;
        dst->n++;
    }
    return 0;
}

static int copy_undo_log(struct undo_log *dst, const struct undo_log *src)
{
    for (size_t i = 0; i < src->n; i++) {
        int rc = undo_reserve(dst);
        if (rc)
            return rc;
        const struct undo *u = &src->u[i];
        struct undo *d = &dst->u[dst->n];
        *d = *u;
        if ((rc = rec_make(&d->old, rec_key(&u->old),
                           slice_make(u->old.val, u->had ? u->old.vlen : 0))) != 0)
            return rc;
        dst->n++;
    }
    return 0;
}

int store_mem_clone(struct store *base, struct store **out)
{
    struct mem_store *s = mem_of(base);
    ASPEN_ASSERT(!s->writer_open && s->readers_open == 0);
    struct store_mem_options o = {.quota_bytes = s->quota_bytes};
    struct store *cb;
    int rc = store_mem_open(&cb, &o);
    if (rc)
        return rc;
    struct mem_store *c = mem_of(cb);
    c->bytes = s->bytes;
    c->stats = s->stats;
    for (int i = 0; i < STORE_N_TABLES && rc == 0; i++)
        rc = copy_table(&c->tables[i], &s->tables[i]);
    if (rc == 0 && s->n_unsynced > 0) {
        c->unsynced = mem_calloc(s->n_unsynced, sizeof(*c->unsynced));
        if (!c->unsynced)
            rc = ASPEN_E_NOMEM;
        else
            c->cap_unsynced = s->n_unsynced;
        for (size_t i = 0; rc == 0 && i < s->n_unsynced; i++) {
            c->n_unsynced++;
            rc = copy_undo_log(&c->unsynced[i], &s->unsynced[i]);
        }
    }
    if (rc) {
        mem_close(cb);
        return rc;
    }
    *out = cb;
    return 0;
}

static const struct store_vtable mem_vtable = {
    .begin = mem_begin,
    .commit = mem_commit,
    .abort = mem_abort,
    .get = mem_get,
    .put = mem_put,
    .del = mem_del,
    .clear = mem_clear,
    .cursor_open = mem_cursor_open,
    .cursor_close = mem_cursor_close,
    .seek = mem_seek,
    .last = mem_last,
    .next = mem_next,
    .prev = mem_prev,
    .cursor_del = mem_cursor_del,
    .count = mem_count,
    .close = mem_close,
};
