/*
 * The LMDB storage backend: one node's tables on disk.
 *
 * One environment per node in ONE data file, `<dir>/aspen.mdb` (LMDB adds
 * `aspen.mdb-lock` beside it), with one named sub-database per enum store_table. LMDB
 * gives us what store.h promises without a write-ahead log of our own: copy-on-write
 * B+trees make every commit atomic, readers see a snapshot and never block the writer,
 * and a commit returns once its pages and the new meta page are synced.
 *
 * The map (LMDB's address-space reservation, which bounds the file) starts at
 * ASPEN_STORAGE_MAP_INITIAL_BYTES and grows by the same step up to
 * ASPEN_STORAGE_MAP_MAX_BYTES: when a write transaction hits the end of the map it fails
 * ASPEN_E_FULL (the caller must abort it), and the store grows the map as soon as no
 * transaction is open, so retrying the transaction can succeed. Only at the maximum is
 * ASPEN_E_FULL final. Reads keep working either way.
 *
 * Threads: read transactions may run on any thread (MDB_NOTLS) alongside the writer; a
 * write transaction must begin and end on the same thread (LMDB's writer lock is a
 * thread-owned mutex) — the committer's storage thread is the one writer in production.
 */
#ifndef ASPEN_STORAGE_STORE_LMDB_H
#define ASPEN_STORAGE_STORE_LMDB_H

#include "storage/store.h"

#include <stddef.h>
#include <stdint.h>

/* The data file's name inside the node's directory. */
#define STORE_LMDB_FILE_NAME "aspen.mdb"

/* Zero fields take the defaults from base/constants.h. Tests shrink the map to reach
 * ASPEN_E_FULL quickly. Sizes are rounded up to a multiple of 64 KiB (any page size). */
struct store_lmdb_options {
    uint64_t map_initial_bytes; /* also the growth step */
    uint64_t map_max_bytes;     /* >= map_initial_bytes */
    uint32_t max_readers;       /* concurrent read transactions */
};

/* Opens (creating if needed, mode 0700 for the directory and 0600 for the files) the
 * store in directory `dir`. On success *out belongs to the caller (store_close). On
 * failure a message "storage: <path>: <reason>" is written to err (if err_len > 0) and
 * logged. Errors: ASPEN_E_CORRUPT (the file is not an LMDB environment, is damaged, or
 * was written by an incompatible LMDB version), ASPEN_E_INVALID (bad options or a path
 * too long), ASPEN_E_NOMEM, ASPEN_E_BUSY (too many readers for the lock file), or a
 * negated errno from the file system (-EACCES, -ENOTDIR, ...). */
int store_lmdb_open(struct store **out, const char *dir, const struct store_lmdb_options *opts,
                    char *err, size_t err_len);

/* For benchmarks and tests. */
struct store_lmdb_stats {
    uint64_t map_bytes;     /* current map size */
    uint64_t map_max_bytes; /* the map will not grow beyond this */
    uint64_t file_bytes;    /* size of aspen.mdb on disk */
    uint64_t page_bytes;    /* LMDB page size */
    uint64_t commits;       /* write transactions committed */
    uint64_t syncs;         /* commits that synced (all of them: LMDB always syncs) */
    uint64_t map_grows;     /* times the map grew after ASPEN_E_FULL */
};

/* s must come from store_lmdb_open. Returns 0 or a negated errno (stat of the file). */
int store_lmdb_stats(struct store *s, struct store_lmdb_stats *out);

#endif /* ASPEN_STORAGE_STORE_LMDB_H */
