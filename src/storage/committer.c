/*
 * Group commit on a dedicated storage thread (storage/committer.h).
 *
 * The queue is an intrusive FIFO under one mutex; the thread sleeps on a condition
 * variable while it is empty (no polling). Batches are cut from the head of the queue,
 * so submission order is commit order and done order. The mutex is never held while a
 * job runs or the transaction syncs: submitters only ever wait for the queue's
 * bookkeeping, never for the disk.
 */
#include "storage/committer.h"

#include "base/assert.h"
#include "base/clock.h"
#include "base/constants.h"
#include "base/log.h"
#include "base/mem.h"

#include <inttypes.h>
#include <pthread.h>

struct committer {
    struct store *s; /* borrowed */
    struct committer_options opt;
    pthread_t thread;

    pthread_mutex_t mu;     /* guards everything below */
    pthread_cond_t cv;      /* signalled on submit and on stop */
    struct store_job *head; /* borrowed jobs, oldest first */
    struct store_job *tail;
    uint64_t queued; /* jobs in the queue */
    bool is_stopping;
    struct committer_stats stats;
};

/* Cuts the next batch from the queue (c->mu held): at least one job, then more while
 * they fit the entry and byte bounds. */
static struct store_job *take_batch(struct committer *c, uint64_t *n_jobs)
{
    struct store_job *first = c->head, *last = first;
    uint64_t entries = first->n_entries, bytes = first->n_bytes, n = 1;
    while (last->next) {
        const struct store_job *j = last->next;
        if (entries + j->n_entries > ASPEN_STORAGE_MAX_BATCH_ENTRIES ||
            bytes + j->n_bytes > ASPEN_STORAGE_MAX_BATCH_BYTES)
            break;
        entries += j->n_entries;
        bytes += j->n_bytes;
        last = last->next;
        n++;
    }
    c->head = last->next;
    if (!c->head)
        c->tail = NULL;
    last->next = NULL;
    c->queued -= n;
    *n_jobs = n;
    return first;
}

/* One attempt: every job's writes in one transaction, one synced commit. *commit_ns
 * receives the commit's duration. */
static int run_once(struct committer *c, struct store_job *batch, uint64_t *commit_ns)
{
    struct store_txn *t;
    int rc = store_begin(c->s, true, &t);
    if (rc)
        return rc;
    for (struct store_job *j = batch; j; j = j->next) {
        if ((rc = j->run(t, j->ctx)) != 0) {
            store_abort(t);
            return rc;
        }
    }
    uint64_t t0 = clock_monotonic_ns(clock_system());
    rc = store_commit(t, true);
    *commit_ns = clock_monotonic_ns(clock_system()) - t0;
    return rc;
}

static void run_batch(struct committer *c, struct store_job *batch, uint64_t n_jobs)
{
    uint64_t commit_ns = 0;
    int rc = run_once(c, batch, &commit_ns);
    bool is_retry = false;
    if (rc == ASPEN_E_FULL) {
        /* The backend grew its map when the failed transaction ended (store_lmdb.h): one
         * more try can fit. A second FULL is final for this batch. */
        is_retry = true;
        rc = run_once(c, batch, &commit_ns);
    }
    if (rc)
        LOG_WARN("storage", "batch failed", "jobs=%" PRIu64 " err=%s", n_jobs, aspen_err_name(rc));

    pthread_mutex_lock(&c->mu);
    c->stats.batches++;
    c->stats.jobs += n_jobs;
    if (n_jobs > c->stats.max_batch_jobs)
        c->stats.max_batch_jobs = n_jobs;
    c->stats.retries += is_retry;
    c->stats.failed_batches += rc != 0;
    pthread_mutex_unlock(&c->mu);

    for (struct store_job *j = batch; j; j = j->next) {
        j->rc = rc;
        j->commit_ns = 0;
        j->batch_jobs = 0;
    }
    batch->commit_ns = commit_ns;
    batch->batch_jobs = (uint32_t)n_jobs;
    if (c->opt.deliver)
        c->opt.deliver(c->opt.deliver_ctx, batch);
    else
        committer_complete(batch);
}

void committer_complete(struct store_job *batch)
{
    /* done() may free its job: read next first. */
    for (struct store_job *j = batch, *next; j; j = next) {
        next = j->next;
        j->next = NULL;
        j->done(j->ctx, j->rc);
    }
}

static void *committer_main(void *arg)
{
    struct committer *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->head && !c->is_stopping)
            pthread_cond_wait(&c->cv, &c->mu);
        if (!c->head)
            break; /* stopping, and the queue is drained */
        uint64_t n;
        struct store_job *batch = take_batch(c, &n);
        pthread_mutex_unlock(&c->mu);
        run_batch(c, batch, n);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int committer_start(struct committer **out, struct store *s, const struct committer_options *opt)
{
    struct committer *c = mem_calloc(1, sizeof(*c));
    if (!c)
        return ASPEN_E_NOMEM;
    c->s = s;
    if (opt)
        c->opt = *opt;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    int rc = pthread_create(&c->thread, NULL, committer_main, c);
    if (rc) {
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
        mem_free(c);
        return -rc;
    }
    *out = c;
    return 0;
}

int committer_submit(struct committer *c, struct store_job *j)
{
    ASPEN_ASSERT(j->run && j->done);
    j->next = NULL;
    pthread_mutex_lock(&c->mu);
    int rc = 0;
    if (c->is_stopping) {
        rc = ASPEN_E_CLOSED;
    } else if (c->queued >= ASPEN_STORAGE_MAX_QUEUED_JOBS) {
        rc = ASPEN_E_FULL;
    } else {
        if (c->tail)
            c->tail->next = j;
        else
            c->head = j;
        c->tail = j;
        c->queued++;
        pthread_cond_signal(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

void committer_stop(struct committer *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->is_stopping = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    ASPEN_ASSERT(c->head == NULL && c->queued == 0);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    mem_free(c);
}

void committer_stats(struct committer *c, struct committer_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->stats;
    pthread_mutex_unlock(&c->mu);
}
