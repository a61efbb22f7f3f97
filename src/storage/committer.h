/*
 * Group commit: one storage thread that turns many small durable writes into few syncs.
 *
 * A sync costs the same for one record as for a thousand, so the thread takes everything
 * queued when it becomes free (up to ASPEN_STORAGE_MAX_BATCH_ENTRIES entries and
 * ASPEN_STORAGE_MAX_BATCH_BYTES; a single job over the bound still runs, alone), runs
 * every job's writes in order inside ONE write transaction, commits it with one sync, and
 * only then reports each job done, in submission order. Jobs submitted while a batch is
 * syncing form the next batch; there is no timer and no batching window, so a lone write
 * is never delayed and a busy node amortises its syncs automatically.
 *
 * Completions: by default each done() runs on the storage thread right after the commit.
 * With a `deliver` hook, the storage thread instead hands the whole finished batch over
 * in one call (meant for the node, to pass it to its event loop with one wake-up; bench_kv passes
 * it to a completion thread) and goes straight on to the next batch: waking N waiters then overlaps
 * the next batch's writes and sync instead of delaying them.
 *
 * Failure is per batch, because the batch is one transaction: if any job's run() fails
 * or the commit fails, the transaction is aborted and every job of the batch is done with
 * that error — except ASPEN_E_FULL, after which the store has grown its map (LMDB) and
 * the batch is retried once before failing.
 */
#ifndef ASPEN_STORAGE_COMMITTER_H
#define ASPEN_STORAGE_COMMITTER_H

#include "storage/store.h"

#include <stdint.h>

/* One unit of durable work. The submitter owns the job and keeps it alive until done()
 * has been called; the committer only links it through `next`. */
struct store_job {
    /* Writes the job's records into t. Runs on the storage thread, in submission order.
     * May run twice (a retry after ASPEN_E_FULL), so it must only write to t and keep no
     * other side effect. Returns 0 or a negative code (which fails the whole batch). */
    int (*run)(struct store_txn *t, void *ctx);
    /* Called exactly once after the batch's commit returned (on the storage thread, or
     * wherever the deliver hook completes the batch): rc 0 means the writes are durable.
     * The job may be freed from inside done(). */
    void (*done)(void *ctx, int rc);
    void *ctx;
    uint32_t n_entries; /* the job's weight against the batch bounds (e.g. log entries) */
    uint64_t n_bytes;
    int rc; /* the committer's: the batch's outcome, set before delivery */
    /* The committer's, on the batch's first job only (0 on the others): how long the
     * batch's commit took (page writes and syncs) and how many jobs it carried. */
    uint64_t commit_ns;
    uint32_t batch_jobs;
    struct store_job *next; /* the committer's while submitted; links a delivered batch */
};

struct committer_options {
    /* Optional. Receives every finished batch on the storage thread: the jobs in
     * submission order linked through `next`, each with `rc` set. The hook must return
     * quickly and see that committer_complete() (or each done()) runs exactly once per
     * job, on any thread. NULL: done() runs on the storage thread. */
    void (*deliver)(void *ctx, struct store_job *batch);
    void *deliver_ctx;
};

struct committer;

/* Starts the storage thread over s (borrowed: it must outlive the committer, and no
 * one else may write to it while the committer runs); opt may be NULL. On success *out
 * belongs to the caller (committer_stop). Errors: ASPEN_E_NOMEM, or a negated errno
 * from pthread_create. */
int committer_start(struct committer **out, struct store *s, const struct committer_options *opt);

/* Runs done(ctx, rc) for every job of a delivered batch (or a concatenation of
 * batches), in order. A job may be freed by its done(). */
void committer_complete(struct store_job *batch);

/* Queues j (j->run and j->done non-NULL). Any thread. Errors: ASPEN_E_FULL (more than
 * ASPEN_STORAGE_MAX_QUEUED_JOBS are waiting: back off), ASPEN_E_CLOSED (stopping). On
 * error done() will not be called. */
int committer_submit(struct committer *c, struct store_job *j);

/* Runs every job already queued, then stops and joins the thread and frees c. With a
 * deliver hook, every batch has been delivered when this returns (completing them is
 * the hook's business). */
void committer_stop(struct committer *c);

struct committer_stats {
    uint64_t batches;        /* write transactions committed or failed */
    uint64_t jobs;           /* jobs done (with any rc) */
    uint64_t max_batch_jobs; /* the largest batch */
    uint64_t retries;        /* batches retried after ASPEN_E_FULL */
    uint64_t failed_batches; /* batches whose jobs got an error */
};

void committer_stats(struct committer *c, struct committer_stats *out);

#endif /* ASPEN_STORAGE_COMMITTER_H */
