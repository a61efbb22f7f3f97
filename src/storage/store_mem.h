/*
 * The in-memory storage backend, for the simulator and unit tests.
 *
 * Same interface and the same ordering rules as LMDB (store.h), plus a model of
 * durability: a commit with sync=false is visible at once but is lost by a simulated crash
 * unless a later sync=true commit covers it (LMDB syncs everything up to the commit it
 * syncs). store_mem_crash() throws away exactly what a power loss would. It is single
 * threaded: no read transaction may be open while a write transaction is (asserted).
 *
 * Faults for tests: a byte quota (puts beyond it fail ASPEN_E_FULL, as a full disk does)
 * and an injected failure of the Nth commit.
 */
#ifndef ASPEN_STORAGE_STORE_MEM_H
#define ASPEN_STORAGE_STORE_MEM_H

#include "storage/store.h"

#include <stdint.h>

struct store_mem_options {
    uint64_t quota_bytes; /* 0: unlimited; keys + values of all tables */
};

/* On success *out belongs to the caller (store_close). ASPEN_E_NOMEM. */
int store_mem_open(struct store **out, const struct store_mem_options *opts);

/* Simulates a crash: every commit made since the last synced one is undone. No
 * transaction may be open. */
void store_mem_crash(struct store *s);

/* Makes the commit after `n` more commits fail with `rc` (a negative code) before any of
 * its writes land; n == 0 is the next commit. rc == 0 cancels. */
void store_mem_fail_commit(struct store *s, uint64_t n, int rc);

/* Counters for tests and the simulator. */
struct store_mem_stats {
    uint64_t commits;
    uint64_t syncs;
    uint64_t bytes; /* keys + values held */
};
void store_mem_stats(struct store *s, struct store_mem_stats *out);

/* Deep copy of the committed state (the simulator's "disk image" of a node). Durability
 * bookkeeping is copied too. No transaction may be open. ASPEN_E_NOMEM. */
int store_mem_clone(struct store *s, struct store **out);

#endif /* ASPEN_STORAGE_STORE_MEM_H */
