/*
 * The storage transaction interface: the one seam between pure logic (the Raft log
 * records, the KV state machine) and a storage backend.
 *
 * Two backends implement it: LMDB on disk (store_lmdb.h, one environment = one file per
 * node) and memory (store_mem.h, for the simulator and unit tests, which models what a
 * crash loses). Callers see ordered tables of byte keys to byte values, read and write
 * transactions, and cursors. Everything above this header — log records, MVCC layout,
 * leases, snapshots — is the same code on both backends, which is what lets the
 * differential test compare them byte for byte.
 *
 * Rules every backend keeps (and the tests check):
 * - Tables are ordered bytewise (memcmp, shorter prefix first). Keys are 1..STORE_MAX_KEY
 *   bytes; values 0..STORE_MAX_VALUE bytes.
 * - One write transaction at a time. A write transaction sees its own writes. Commit is
 *   atomic: after a crash either all of a transaction's writes are present or none are.
 *   commit(sync=true) returns only once the transaction and every one committed before it
 *   are durable. (The LMDB backend always syncs: LMDB cannot skip a sync without risking
 *   corruption on power loss. The memory backend honours sync=false by losing that
 *   transaction on a simulated crash unless a later sync covers it.)
 * - Read transactions see the state of the last commit when they began. On LMDB they may
 *   run on any thread alongside the writer. The memory backend is single-threaded and
 *   asserts that no read transaction is open while a write transaction is.
 * - Slices returned by get/seek/next/prev point into the backend and stay valid until the
 *   transaction ends or, in a write transaction, until its next write. Copy what you keep.
 * - Errors: ASPEN_E_NOT_FOUND (no such key / cursor at the end), ASPEN_E_INVALID (bad
 *   table or key size), ASPEN_E_TOO_LARGE (value too big), ASPEN_E_FULL (map or disk full —
 *   the transaction must be aborted; the store keeps serving reads), ASPEN_E_CORRUPT
 *   (the backend found damaged pages), ASPEN_E_IO (an I/O error), ASPEN_E_NOMEM.
 *   A failed sync is not an error a caller can handle: after fsync fails the page cache
 *   is undefined (fsyncgate), so the backend aborts the process with a clear message.
 */
#ifndef ASPEN_STORAGE_STORE_H
#define ASPEN_STORAGE_STORE_H

#include "base/slice.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The tables of one node's store. Each backend keeps them separate (LMDB: one named
 * sub-database each). The formats of their keys and values are owned by the modules named
 * here and drawn in docs/ARCHITECTURE.md ("Storage layout"). */
enum store_table {
    STORE_T_META = 0,      /* short names -> records (storage/raftlog.c, kv/meta) */
    STORE_T_LOG = 1,       /* be64 index -> Raft entry record (storage/raftlog.c) */
    STORE_T_KV_REV = 2,    /* MVCC keyspace: revision -> key record (kv/) */
    STORE_T_KV_INDEX = 3,  /* key index: key ++ inverted revision -> (kv/) */
    STORE_T_LEASE = 4,     /* be64 lease id -> lease record (kv/) */
    STORE_T_LEASE_KEY = 5, /* be64 lease id ++ key -> empty: keys attached (kv/) */
    STORE_T_CLUSTER = 6,   /* member records and join credentials (kv/cluster.h) */
    STORE_N_TABLES = 7,
};

/* LMDB's compile-time key limit in Debian's build (MDB_MAXKEYSIZE = 511): layouts that
 * hold user keys (up to ASPEN_MAX_KEY_BYTES) must fit their table keys under it. */
#define STORE_MAX_KEY   511u
#define STORE_MAX_VALUE (64u * 1024u * 1024u)

struct store;
struct store_txn;
struct store_cursor;

/* What a backend implements. Use the store_* wrappers below rather than calling these. */
struct store_vtable {
    /* Begins a transaction; *out belongs to the caller until commit or abort. ASPEN_E_BUSY
     * if a write transaction is already open (one writer at a time). */
    int (*begin)(struct store *s, bool write, struct store_txn **out);
    /* Commits and frees t (also a read transaction: then it only ends it). On error t is
     * aborted and freed. */
    int (*commit)(struct store_txn *t, bool sync);
    /* Discards t's writes and frees t. */
    void (*abort)(struct store_txn *t);

    int (*get)(struct store_txn *t, enum store_table tb, struct slice key, struct slice *val);
    /* Inserts or replaces. */
    int (*put)(struct store_txn *t, enum store_table tb, struct slice key, struct slice val);
    /* ASPEN_E_NOT_FOUND if the key is absent. */
    int (*del)(struct store_txn *t, enum store_table tb, struct slice key);
    /* Deletes every record of the table. */
    int (*clear)(struct store_txn *t, enum store_table tb);

    /* Cursors live inside their transaction; close them before it ends. */
    int (*cursor_open)(struct store_txn *t, enum store_table tb, struct store_cursor **out);
    void (*cursor_close)(struct store_cursor *c);
    /* Positions at the first record >= key (first of the table if key.len == 0) and
     * returns it; ASPEN_E_NOT_FOUND if there is none. */
    int (*seek)(struct store_cursor *c, struct slice key, struct slice *k, struct slice *v);
    /* Positions at the last record of the table; ASPEN_E_NOT_FOUND if it is empty. */
    int (*last)(struct store_cursor *c, struct slice *k, struct slice *v);
    /* Moves one record forward / backward; ASPEN_E_NOT_FOUND past either end (the cursor
     * must then be re-positioned with seek or last). */
    int (*next)(struct store_cursor *c, struct slice *k, struct slice *v);
    int (*prev)(struct store_cursor *c, struct slice *k, struct slice *v);
    /* Write transactions: deletes the record under the cursor; the cursor then stands on
     * the record that followed it, which is returned (ASPEN_E_NOT_FOUND if none). */
    int (*cursor_del)(struct store_cursor *c, struct slice *k, struct slice *v);

    /* Counts the records of a table (for stats and tests). */
    int (*count)(struct store_txn *t, enum store_table tb, uint64_t *n);

    /* Flushes and closes; open transactions must have ended. */
    void (*close)(struct store *s);
};

/* Every backend's store begins with this. */
struct store {
    const struct store_vtable *vt;
};

static inline int store_begin(struct store *s, bool write, struct store_txn **out)
{
    return s->vt->begin(s, write, out);
}

/* A transaction remembers its store's vtable in its first member. */
struct store_txn_head {
    const struct store_vtable *vt;
};

static inline const struct store_vtable *store_txn_vt(struct store_txn *t)
{
    return ((const struct store_txn_head *)(const void *)t)->vt;
}

static inline int store_commit(struct store_txn *t, bool sync)
{
    return store_txn_vt(t)->commit(t, sync);
}

static inline void store_abort(struct store_txn *t)
{
    store_txn_vt(t)->abort(t);
}

static inline int store_get(struct store_txn *t, enum store_table tb, struct slice key,
                            struct slice *val)
{
    return store_txn_vt(t)->get(t, tb, key, val);
}

static inline int store_put(struct store_txn *t, enum store_table tb, struct slice key,
                            struct slice val)
{
    return store_txn_vt(t)->put(t, tb, key, val);
}

static inline int store_del(struct store_txn *t, enum store_table tb, struct slice key)
{
    return store_txn_vt(t)->del(t, tb, key);
}

static inline int store_clear(struct store_txn *t, enum store_table tb)
{
    return store_txn_vt(t)->clear(t, tb);
}

static inline int store_count(struct store_txn *t, enum store_table tb, uint64_t *n)
{
    return store_txn_vt(t)->count(t, tb, n);
}

/* A cursor remembers its vtable in its first member too. */
struct store_cursor_head {
    const struct store_vtable *vt;
};

static inline const struct store_vtable *store_cursor_vt(struct store_cursor *c)
{
    return ((const struct store_cursor_head *)(const void *)c)->vt;
}

static inline int store_cursor_open(struct store_txn *t, enum store_table tb,
                                    struct store_cursor **out)
{
    return store_txn_vt(t)->cursor_open(t, tb, out);
}

static inline void store_cursor_close(struct store_cursor *c)
{
    if (c)
        store_cursor_vt(c)->cursor_close(c);
}

static inline int store_seek(struct store_cursor *c, struct slice key, struct slice *k,
                             struct slice *v)
{
    return store_cursor_vt(c)->seek(c, key, k, v);
}

static inline int store_last(struct store_cursor *c, struct slice *k, struct slice *v)
{
    return store_cursor_vt(c)->last(c, k, v);
}

static inline int store_next(struct store_cursor *c, struct slice *k, struct slice *v)
{
    return store_cursor_vt(c)->next(c, k, v);
}

static inline int store_prev(struct store_cursor *c, struct slice *k, struct slice *v)
{
    return store_cursor_vt(c)->prev(c, k, v);
}

static inline int store_cursor_del(struct store_cursor *c, struct slice *k, struct slice *v)
{
    return store_cursor_vt(c)->cursor_del(c, k, v);
}

static inline void store_close(struct store *s)
{
    if (s)
        s->vt->close(s);
}

/* The table's name (LMDB sub-database name, logs, errors). */
const char *store_table_name(enum store_table tb);

#endif /* ASPEN_STORAGE_STORE_H */
