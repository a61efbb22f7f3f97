/*
 * The LMDB backend of the storage interface (store_lmdb.h, store.h).
 *
 * A thin shell: each store_* call maps onto one LMDB call, and the work here is in
 * the edges LMDB leaves to its user — translating its error codes into ours (with a
 * log line naming the table when pages are damaged), keeping one write transaction at
 * a time, growing the map after MDB_MAP_FULL at a moment when that is allowed (no
 * transaction open in the process: mdb_env_set_mapsize remaps the file under readers),
 * and refusing to carry on after a failed commit write or sync (fsyncgate).
 *
 * The store's mutex guards only the bookkeeping (open transactions, the writer flag, a
 * pending growth and the counters); LMDB calls run outside it, except the growth itself,
 * which must not race a transaction beginning.
 */
#include "storage/store_lmdb.h"

#include "base/assert.h"
#include "base/constants.h"
#include "base/log.h"
#include "base/mem.h"

#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Option sizes are rounded up to this, which is a multiple of every page size LMDB
 * uses on Linux (4 KiB to 64 KiB), as mdb_env_set_mapsize wants. */
#define MAP_ALIGN_BYTES (64u * 1024u)

/* dir + "/" + file name + NUL. */
#define PATH_MAX_BYTES 4096

struct lmdb_store {
    struct store base; /* first: store.h's dispatch */
    MDB_env *env;      /* owned */
    MDB_dbi dbi[STORE_N_TABLES];
    char path[PATH_MAX_BYTES]; /* the data file, for messages */

    uint64_t map_step_bytes; /* growth step (the initial size) */
    uint64_t map_max_bytes;

    pthread_mutex_t mu;   /* guards everything below */
    uint64_t map_bytes;   /* current map size */
    uint32_t active_txns; /* read and write transactions open */
    bool has_writer;      /* a write transaction is open */
    bool grow_pending;    /* a transaction hit MDB_MAP_FULL; grow when none is open */
    uint64_t commits, map_grows;
};

struct lmdb_txn {
    struct store_txn_head head; /* first: store.h's dispatch */
    struct lmdb_store *s;       /* borrowed */
    MDB_txn *txn;               /* owned until commit or abort */
    bool is_write;
    /* Once an operation of a write transaction fails with FULL, LMDB has marked the
     * transaction broken (later calls return MDB_BAD_TXN, which would read as damage):
     * we remember the first failure and report it again until the caller aborts. */
    int failed_rc;
    /* One closed cursor per table, kept for the next store_cursor_open of this
     * transaction: a point read opens a cursor each time, and mdb_cursor_open plus our
     * wrapper cost two allocations. Owned; closed when the transaction ends. */
    struct lmdb_cursor *spare[STORE_N_TABLES];
};

struct lmdb_cursor {
    struct store_cursor_head head; /* first: store.h's dispatch */
    struct lmdb_txn *t;            /* borrowed: the cursor lives inside it */
    MDB_cursor *cur;               /* owned */
    enum store_table tb;
};

/* Closes the spare cursors (before the LMDB transaction ends: a read-only transaction's
 * cursors must be closed explicitly, and a write transaction's may be). */
static void spares_close(struct lmdb_txn *t)
{
    for (int i = 0; i < STORE_N_TABLES; i++) {
        if (t->spare[i]) {
            mdb_cursor_close(t->spare[i]->cur);
            mem_free(t->spare[i]);
            t->spare[i] = NULL;
        }
    }
}

static const struct store_vtable lmdb_vtable;

/* ---------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------- */

static MDB_val val_of(struct slice s)
{
    /* A zero-length value still needs a valid address: LMDB copies mv_size bytes from
     * mv_data, and memcpy from NULL is undefined even for 0 bytes. */
    static const uint8_t empty;
    const void *p = s.len ? (const void *)s.ptr : (const void *)&empty;
    return (MDB_val){.mv_size = s.len, .mv_data = (void *)(uintptr_t)p};
}

static struct slice slice_of(MDB_val v)
{
    return slice_make(v.mv_size ? v.mv_data : NULL, v.mv_size);
}

static int check_key(enum store_table tb, struct slice key)
{
    if ((unsigned)tb >= STORE_N_TABLES || key.len == 0 || key.len > STORE_MAX_KEY)
        return ASPEN_E_INVALID;
    return 0;
}

/* Called with s->mu held: grows the map by one step if a transaction asked for it and
 * none is open (LMDB's rule for mdb_env_set_mapsize). */
static void maybe_grow_locked(struct lmdb_store *s)
{
    if (!s->grow_pending || s->active_txns != 0)
        return;
    s->grow_pending = false;
    if (s->map_bytes >= s->map_max_bytes)
        return;
    uint64_t next = s->map_bytes + s->map_step_bytes;
    if (next > s->map_max_bytes)
        next = s->map_max_bytes;
    int rc = mdb_env_set_mapsize(s->env, (size_t)next);
    if (rc) {
        LOG_WARN("storage", "map growth failed", "path=%s to=%" PRIu64 " err=\"%s\"", s->path, next,
                 mdb_strerror(rc));
        return;
    }
    LOG_INFO("storage", "map grown", "path=%s from=%" PRIu64 " to=%" PRIu64, s->path, s->map_bytes,
             next);
    s->map_bytes = next;
    s->map_grows++;
}

/* Translates an LMDB result (0, an MDB_* code or an errno) into ours. */
static int map_err(struct lmdb_store *s, int rc, enum store_table tb, const char *op)
{
    const char *table = (unsigned)tb < STORE_N_TABLES ? store_table_name(tb) : "-";
    switch (rc) {
    case MDB_SUCCESS:
        return 0;
    case MDB_NOTFOUND:
        return ASPEN_E_NOT_FOUND;
    case MDB_MAP_FULL:
        pthread_mutex_lock(&s->mu);
        s->grow_pending = true;
        if (s->map_bytes >= s->map_max_bytes)
            LOG_WARN("storage", "store full at its maximum map size",
                     "path=%s table=%s map=%" PRIu64, s->path, table, s->map_bytes);
        pthread_mutex_unlock(&s->mu);
        return ASPEN_E_FULL;
    case ENOSPC:
        LOG_WARN("storage", "disk full", "path=%s table=%s op=%s", s->path, table, op);
        return ASPEN_E_FULL;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_BAD_TXN:
        LOG_ERROR("storage", "damaged storage", "path=%s table=%s op=%s err=\"%s\"", s->path, table,
                  op, mdb_strerror(rc));
        return ASPEN_E_CORRUPT;
    case MDB_BAD_VALSIZE:
        return ASPEN_E_INVALID;
    case MDB_READERS_FULL:
        LOG_WARN("storage", "out of reader slots", "path=%s", s->path);
        return ASPEN_E_BUSY;
    case EIO:
        LOG_ERROR("storage", "I/O error", "path=%s table=%s op=%s", s->path, table, op);
        return ASPEN_E_IO;
    case ENOMEM:
        return ASPEN_E_NOMEM;
    default:
        LOG_ERROR("storage", "unexpected LMDB error", "path=%s table=%s op=%s err=\"%s\"", s->path,
                  table, op, mdb_strerror(rc));
        return ASPEN_E_INTERNAL;
    }
}

/* Ends the bookkeeping of a transaction whose LMDB handle is gone. Frees t. */
static void txn_end(struct lmdb_txn *t)
{
    struct lmdb_store *s = t->s;
    pthread_mutex_lock(&s->mu);
    ASPEN_ASSERT(s->active_txns > 0);
    s->active_txns--;
    if (t->is_write) {
        ASPEN_ASSERT(s->has_writer);
        s->has_writer = false;
    }
    maybe_grow_locked(s);
    pthread_mutex_unlock(&s->mu);
    mem_free(t);
}

/* Records the first failure of a write transaction (see lmdb_txn.failed_rc). */
static int txn_fail(struct lmdb_txn *t, int rc)
{
    if (t->is_write && rc != 0 && rc != ASPEN_E_NOT_FOUND && rc != ASPEN_E_INVALID &&
        rc != ASPEN_E_TOO_LARGE && t->failed_rc == 0)
        t->failed_rc = rc;
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Transactions
 * ------------------------------------------------------------------------------------- */

static int lmdb_begin(struct store *base, bool write, struct store_txn **out)
{
    struct lmdb_store *s = (struct lmdb_store *)base;
    struct lmdb_txn *t = mem_calloc(1, sizeof(*t));
    if (!t)
        return ASPEN_E_NOMEM;
    t->head.vt = &lmdb_vtable;
    t->s = s;
    t->is_write = write;

    pthread_mutex_lock(&s->mu);
    if (write && s->has_writer) {
        pthread_mutex_unlock(&s->mu);
        mem_free(t);
        return ASPEN_E_BUSY;
    }
    maybe_grow_locked(s);
    s->active_txns++;
    if (write)
        s->has_writer = true;
    pthread_mutex_unlock(&s->mu);

    int rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
    if (rc) {
        rc = map_err(s, rc, STORE_N_TABLES, "begin");
        txn_end(t);
        return rc;
    }
    *out = (struct store_txn *)t;
    return 0;
}

static void lmdb_abort(struct store_txn *tx)
{
    struct lmdb_txn *t = (struct lmdb_txn *)tx;
    spares_close(t);
    mdb_txn_abort(t->txn);
    txn_end(t);
}

/* A commit's writes and syncs happen inside mdb_txn_commit, which cannot tell us which
 * of them failed. After a failed fsync the kernel may have dropped the dirty pages and
 * cleared the error (fsyncgate, PostgreSQL 2018): a retry could "succeed" over lost
 * data. So an I/O error at commit ends the process; restart recovers from the last
 * durable meta page. Running out of space (ENOSPC while writing pages, or the map) is
 * different: LMDB aborts before the meta page is written, and the file is unchanged. */
static _Noreturn void commit_failed(struct lmdb_store *s, int rc)
{
    LOG_ERROR("storage", "commit failed: cannot know what is durable, aborting",
              "path=%s err=\"%s\"", s->path, mdb_strerror(rc));
    fprintf(stderr,
            "storage: %s: commit failed (%s); aborting: after a failed write or sync "
            "the page cache no longer says what is on disk\n",
            s->path, mdb_strerror(rc));
    abort();
}

static int lmdb_commit(struct store_txn *tx, bool sync)
{
    struct lmdb_txn *t = (struct lmdb_txn *)tx;
    struct lmdb_store *s = t->s;
    /* LMDB always syncs a write commit: skipping it (MDB_NOSYNC) risks corrupting the
     * file on power loss, not only losing the last transactions. */
    (void)sync;
    if (!t->is_write || t->failed_rc) {
        /* A read transaction has nothing to commit (its failed_rc stays 0); a broken
         * write transaction reports its first failure. */
        int failed = t->failed_rc;
        lmdb_abort(tx);
        return failed;
    }
    spares_close(t);
    int rc = mdb_txn_commit(t->txn); /* frees the LMDB transaction even on failure */
    if (rc == 0) {
        pthread_mutex_lock(&s->mu);
        s->commits++;
        pthread_mutex_unlock(&s->mu);
        txn_end(t);
        return 0;
    }
    if (rc == MDB_MAP_FULL || rc == ENOSPC || rc == ENOMEM || rc == MDB_TXN_FULL) {
        rc = rc == MDB_TXN_FULL ? ASPEN_E_FULL : map_err(s, rc, STORE_N_TABLES, "commit");
        txn_end(t);
        return rc;
    }
    if (rc > 0) /* an errno from a write or a sync */
        commit_failed(s, rc);
    rc = map_err(s, rc, STORE_N_TABLES, "commit");
    txn_end(t);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Records
 * ------------------------------------------------------------------------------------- */

static int lmdb_get(struct store_txn *tx, enum store_table tb, struct slice key, struct slice *val)
{
    struct lmdb_txn *t = (struct lmdb_txn *)tx;
    int rc = check_key(tb, key);
    if (rc)
        return rc;
    if (t->failed_rc)
        return t->failed_rc;
    MDB_val k = val_of(key), v;
    rc = mdb_get(t->txn, t->s->dbi[tb], &k, &v);
    if (rc)
        return txn_fail(t, map_err(t->s, rc, tb, "get"));
    *val = slice_of(v);
    return 0;
}

static int lmdb_put(struct store_txn *tx, enum store_table tb, struct slice key, struct slice val)
{
    struct lmdb_txn *t = (struct lmdb_txn *)tx;
    ASPEN_ASSERT(t->is_write);
    int rc = check_key(tb, key);
    if (rc)
        return rc;
    if (val.len > STORE_MAX_VALUE)
        return ASPEN_E_TOO_LARGE;
    if (t->failed_rc)
        return t->failed_rc;
    MDB_val k = val_of(key), v = val_of(val);
    rc = mdb_put(t->txn, t->s->dbi[tb], &k, &v, 0);
    return rc ? txn_fail(t, map_err(t->s, rc, tb, "put")) : 0;
}

static int lmdb_del(struct store_txn *tx, enum store_table tb, struct slice key)
{
    struct lmdb_txn *t = (struct lmdb_txn *)tx;
    ASPEN_ASSERT(t->is_write);
    int rc = check_key(tb, key);
    if (rc)
        return rc;
    if (t->failed_rc)
        return t->failed_rc;
    MDB_val k = val_of(key);
    rc = mdb_del(t->txn, t->s->dbi[tb], &k, NULL);
    return rc ? txn_fail(t, map_err(t->s, rc, tb, "del")) : 0;
}

static int lmdb_clear(struct store_txn *tx, enum store_table tb)
{
    struct lmdb_txn *t = (struct lmdb_txn *)tx;
    ASPEN_ASSERT(t->is_write);
    if ((unsigned)tb >= STORE_N_TABLES)
        return ASPEN_E_INVALID;
    if (t->failed_rc)
        return t->failed_rc;
    int rc = mdb_drop(t->txn, t->s->dbi[tb], 0); /* 0: empty it, keep the sub-database */
    return rc ? txn_fail(t, map_err(t->s, rc, tb, "clear")) : 0;
}

static int lmdb_count(struct store_txn *tx, enum store_table tb, uint64_t *n)
{
    struct lmdb_txn *t = (struct lmdb_txn *)tx;
    if ((unsigned)tb >= STORE_N_TABLES)
        return ASPEN_E_INVALID;
    if (t->failed_rc)
        return t->failed_rc;
    MDB_stat st;
    int rc = mdb_stat(t->txn, t->s->dbi[tb], &st);
    if (rc)
        return txn_fail(t, map_err(t->s, rc, tb, "count"));
    *n = st.ms_entries;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Cursors
 * ------------------------------------------------------------------------------------- */

static int lmdb_cursor_open(struct store_txn *tx, enum store_table tb, struct store_cursor **out)
{
    struct lmdb_txn *t = (struct lmdb_txn *)tx;
    if ((unsigned)tb >= STORE_N_TABLES)
        return ASPEN_E_INVALID;
    if (t->failed_rc)
        return t->failed_rc;
    struct lmdb_cursor *c = t->spare[tb];
    if (c) {
        t->spare[tb] = NULL;
        *out = (struct store_cursor *)c;
        return 0;
    }
    c = mem_calloc(1, sizeof(*c));
    if (!c)
        return ASPEN_E_NOMEM;
    c->head.vt = &lmdb_vtable;
    c->t = t;
    c->tb = tb;
    int rc = mdb_cursor_open(t->txn, t->s->dbi[tb], &c->cur);
    if (rc) {
        mem_free(c);
        return txn_fail(t, map_err(t->s, rc, tb, "cursor_open"));
    }
    *out = (struct store_cursor *)c;
    return 0;
}

static void lmdb_cursor_close(struct store_cursor *cc)
{
    struct lmdb_cursor *c = (struct lmdb_cursor *)cc;
    if (!c->t->spare[c->tb]) {
        c->t->spare[c->tb] = c;
        return;
    }
    mdb_cursor_close(c->cur);
    mem_free(c);
}

static int cursor_get(struct lmdb_cursor *c, MDB_val *k, MDB_cursor_op op, struct slice *ko,
                      struct slice *vo, const char *what)
{
    if (c->t->failed_rc)
        return c->t->failed_rc;
    MDB_val v;
    int rc = mdb_cursor_get(c->cur, k, &v, op);
    if (rc)
        return txn_fail(c->t, map_err(c->t->s, rc, c->tb, what));
    *ko = slice_of(*k);
    *vo = slice_of(v);
    return 0;
}

static int lmdb_seek(struct store_cursor *cc, struct slice key, struct slice *k, struct slice *v)
{
    struct lmdb_cursor *c = (struct lmdb_cursor *)cc;
    MDB_val kv = {0, NULL};
    if (key.len == 0)
        return cursor_get(c, &kv, MDB_FIRST, k, v, "seek");
    int rc = check_key(c->tb, key);
    if (rc)
        return rc;
    kv = val_of(key);
    return cursor_get(c, &kv, MDB_SET_RANGE, k, v, "seek");
}

static int lmdb_last(struct store_cursor *cc, struct slice *k, struct slice *v)
{
    MDB_val kv = {0, NULL};
    return cursor_get((struct lmdb_cursor *)cc, &kv, MDB_LAST, k, v, "last");
}

static int lmdb_next(struct store_cursor *cc, struct slice *k, struct slice *v)
{
    MDB_val kv = {0, NULL};
    return cursor_get((struct lmdb_cursor *)cc, &kv, MDB_NEXT, k, v, "next");
}

static int lmdb_prev(struct store_cursor *cc, struct slice *k, struct slice *v)
{
    MDB_val kv = {0, NULL};
    return cursor_get((struct lmdb_cursor *)cc, &kv, MDB_PREV, k, v, "prev");
}

/* After mdb_cursor_del the cursor already stands on the record that followed (LMDB moves
 * to the next page when the deleted record was the last of its page) with a "just
 * deleted" flag that makes the next MDB_NEXT return that record instead of skipping it.
 * MDB_GET_CURRENT reads the record and, like every mdb_cursor_get, clears the flag, so
 * a later store_next moves on as store.h says. When the table became empty the cursor
 * is no longer positioned at all and GET_CURRENT says EINVAL. */
static int lmdb_cursor_del(struct store_cursor *cc, struct slice *k, struct slice *v)
{
    struct lmdb_cursor *c = (struct lmdb_cursor *)cc;
    ASPEN_ASSERT(c->t->is_write);
    if (c->t->failed_rc)
        return c->t->failed_rc;
    int rc = mdb_cursor_del(c->cur, 0);
    if (rc)
        return txn_fail(c->t, map_err(c->t->s, rc, c->tb, "cursor_del"));
    MDB_val kv = {0, NULL}, vv;
    rc = mdb_cursor_get(c->cur, &kv, &vv, MDB_GET_CURRENT);
    /* Deleting the table's last record leaves the cursor unpositioned: EINVAL. */
    if (rc == EINVAL || rc == MDB_NOTFOUND)
        return ASPEN_E_NOT_FOUND;
    if (rc)
        return txn_fail(c->t, map_err(c->t->s, rc, c->tb, "cursor_del"));
    *k = slice_of(kv);
    *v = slice_of(vv);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Open, close, stats
 * ------------------------------------------------------------------------------------- */

static void lmdb_close(struct store *base)
{
    struct lmdb_store *s = (struct lmdb_store *)base;
    pthread_mutex_lock(&s->mu);
    ASPEN_ASSERT(s->active_txns == 0);
    pthread_mutex_unlock(&s->mu);
    mdb_env_close(s->env);
    pthread_mutex_destroy(&s->mu);
    mem_free(s);
}

static const struct store_vtable lmdb_vtable = {
    .begin = lmdb_begin,
    .commit = lmdb_commit,
    .abort = lmdb_abort,
    .get = lmdb_get,
    .put = lmdb_put,
    .del = lmdb_del,
    .clear = lmdb_clear,
    .cursor_open = lmdb_cursor_open,
    .cursor_close = lmdb_cursor_close,
    .seek = lmdb_seek,
    .last = lmdb_last,
    .next = lmdb_next,
    .prev = lmdb_prev,
    .cursor_del = lmdb_cursor_del,
    .count = lmdb_count,
    .close = lmdb_close,
};

static uint64_t round_up(uint64_t n)
{
    return (n + MAP_ALIGN_BYTES - 1) / MAP_ALIGN_BYTES * MAP_ALIGN_BYTES;
}

static void set_err(char *err, size_t err_len, const char *path, const char *reason)
{
    LOG_ERROR("storage", "cannot open store", "path=%s reason=\"%s\"", path, reason);
    if (err && err_len)
        snprintf(err, err_len, "storage: %s: %s", path, reason);
}

/* Translates an error of mdb_env_open into ours with a message. */
static int open_err(int rc, const char *path, char *err, size_t err_len)
{
    switch (rc) {
    case MDB_INVALID:
        set_err(err, err_len, path, "not an LMDB environment (wrong magic or damaged header)");
        return ASPEN_E_CORRUPT;
    case MDB_VERSION_MISMATCH:
        set_err(err, err_len, path, "written by an incompatible LMDB version");
        return ASPEN_E_CORRUPT;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
        set_err(err, err_len, path, mdb_strerror(rc));
        return ASPEN_E_CORRUPT;
    case MDB_READERS_FULL:
        set_err(err, err_len, path, mdb_strerror(rc));
        return ASPEN_E_BUSY;
    case ENOMEM:
        set_err(err, err_len, path, mdb_strerror(rc));
        return ASPEN_E_NOMEM;
    default:
        set_err(err, err_len, path, mdb_strerror(rc));
        return rc > 0 ? -rc : ASPEN_E_INTERNAL;
    }
}

int store_lmdb_open(struct store **out, const char *dir, const struct store_lmdb_options *opts,
                    char *err, size_t err_len)
{
    struct store_lmdb_options o = opts ? *opts : (struct store_lmdb_options){0};
    if (!o.map_initial_bytes)
        o.map_initial_bytes = ASPEN_STORAGE_MAP_INITIAL_BYTES;
    if (!o.map_max_bytes)
        o.map_max_bytes = ASPEN_STORAGE_MAP_MAX_BYTES;
    if (!o.max_readers)
        o.max_readers = ASPEN_STORAGE_LMDB_MAX_READERS;
    o.map_initial_bytes = round_up(o.map_initial_bytes);
    o.map_max_bytes = round_up(o.map_max_bytes);
    if (o.map_max_bytes < o.map_initial_bytes || o.map_max_bytes > SIZE_MAX) {
        set_err(err, err_len, dir, "map maximum below its initial size");
        return ASPEN_E_INVALID;
    }

    int rc = 0;
    struct lmdb_store *s = mem_calloc(1, sizeof(*s));
    if (!s) {
        set_err(err, err_len, dir, "out of memory");
        return ASPEN_E_NOMEM;
    }
    int n = snprintf(s->path, sizeof(s->path), "%s/%s", dir, STORE_LMDB_FILE_NAME);
    if (n < 0 || (size_t)n >= sizeof(s->path)) {
        set_err(err, err_len, dir, "path too long");
        rc = ASPEN_E_INVALID;
        goto free_store;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        rc = -errno;
        set_err(err, err_len, dir, strerror(errno));
        goto free_store;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = errno ? -errno : -ENOTDIR;
        set_err(err, err_len, dir, "not a directory");
        goto free_store;
    }
    s->base.vt = &lmdb_vtable;
    s->map_step_bytes = o.map_initial_bytes;
    s->map_max_bytes = o.map_max_bytes;
    pthread_mutex_init(&s->mu, NULL);

    if ((rc = mdb_env_create(&s->env)) != 0) {
        rc = open_err(rc, s->path, err, err_len);
        goto destroy_mutex;
    }
    if ((rc = mdb_env_set_maxdbs(s->env, STORE_N_TABLES)) != 0 ||
        (rc = mdb_env_set_maxreaders(s->env, o.max_readers)) != 0 ||
        (rc = mdb_env_set_mapsize(s->env, (size_t)o.map_initial_bytes)) != 0) {
        rc = open_err(rc, s->path, err, err_len);
        goto close_env;
    }
    /* MDB_NOSUBDIR: the path names the data file itself. MDB_NOTLS: a read transaction
     * is not tied to its thread's reader slot, so any thread may run reads. */
    rc = mdb_env_open(s->env, s->path, MDB_NOSUBDIR | MDB_NOTLS, 0600);
    if (rc) {
        rc = open_err(rc, s->path, err, err_len);
        goto close_env;
    }
    /* An existing file may have been grown beyond our initial size: LMDB keeps the
     * larger of the two, and so must our bookkeeping. */
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    s->map_bytes = info.me_mapsize;
    if (s->map_max_bytes < s->map_bytes)
        s->map_max_bytes = s->map_bytes;

    MDB_txn *txn;
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
        rc = open_err(rc, s->path, err, err_len);
        goto close_env;
    }
    for (unsigned i = 0; i < STORE_N_TABLES; i++) {
        rc = mdb_dbi_open(txn, store_table_name((enum store_table)i), MDB_CREATE, &s->dbi[i]);
        if (rc) {
            mdb_txn_abort(txn);
            rc = open_err(rc, s->path, err, err_len);
            goto close_env;
        }
    }
    if ((rc = mdb_txn_commit(txn)) != 0) {
        rc = open_err(rc, s->path, err, err_len);
        goto close_env;
    }
    *out = &s->base;
    return 0;

close_env:
    mdb_env_close(s->env);
destroy_mutex:
    pthread_mutex_destroy(&s->mu);
free_store:
    mem_free(s);
    return rc;
}

int store_lmdb_stats(struct store *base, struct store_lmdb_stats *out)
{
    ASPEN_ASSERT(base->vt == &lmdb_vtable);
    struct lmdb_store *s = (struct lmdb_store *)base;
    memset(out, 0, sizeof(*out));
    MDB_stat ms;
    if (mdb_env_stat(s->env, &ms) == 0)
        out->page_bytes = ms.ms_psize;
    pthread_mutex_lock(&s->mu);
    out->map_bytes = s->map_bytes;
    out->map_max_bytes = s->map_max_bytes;
    out->commits = s->commits;
    out->syncs = s->commits;
    out->map_grows = s->map_grows;
    pthread_mutex_unlock(&s->mu);
    struct stat st;
    if (stat(s->path, &st) != 0)
        return -errno;
    out->file_bytes = (uint64_t)st.st_size;
    return 0;
}
