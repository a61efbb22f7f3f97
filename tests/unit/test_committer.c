/*
 * Group commit (storage/committer.h) on the LMDB backend: many threads submitting at
 * once get every done() exactly once and in their own submission order, the data is all
 * there after reopening, and batches really group (fewer commits than jobs); a gate job
 * that holds the storage thread makes batching deterministic for the cases that need an
 * exact batch: a failing job fails its whole batch, a batch that overflows a small map
 * is retried once after the map grows, and stop drains the queue.
 */
#include "test.h"

#include "base/mem.h"
#include "storage/committer.h"
#include "storage/store_lmdb.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------- */

struct tmpstore {
    struct store *s;
    char dir[64];
};

static int tmp_open(struct tmpstore *ts, const struct store_lmdb_options *o)
{
    snprintf(ts->dir, sizeof(ts->dir), "/tmp/aspen-test-committer-XXXXXX");
    if (!mkdtemp(ts->dir))
        return ASPEN_E_IO;
    return store_lmdb_open(&ts->s, ts->dir, o, NULL, 0);
}

static void tmp_close(struct tmpstore *ts)
{
    store_close(ts->s);
    ts->s = NULL;
    char p[128];
    snprintf(p, sizeof(p), "%s/%s", ts->dir, STORE_LMDB_FILE_NAME);
    unlink(p);
    snprintf(p, sizeof(p), "%s/%s-lock", ts->dir, STORE_LMDB_FILE_NAME);
    unlink(p);
    rmdir(ts->dir);
}

/* A job that writes key (thread, seq) and checks its done order. */
struct wjob {
    struct store_job job;
    uint32_t thread, seq;
    uint32_t value_bytes;
    bool should_fail;
    atomic_int done_calls;
    int rc;
    uint32_t *next_seq; /* the thread's expected next seq (done runs on one thread) */
    atomic_int *order_errors;
};

static uint8_t big_value[256 * 1024];

static int wjob_run(struct store_txn *t, void *ctx)
{
    struct wjob *w = ctx;
    if (w->should_fail)
        return ASPEN_E_INVALID;
    uint8_t key[8];
    be32_store(key, w->thread);
    be32_store(key + 4, w->seq);
    return store_put(t, STORE_T_KV_REV, slice_make(key, 8), slice_make(big_value, w->value_bytes));
}

static void wjob_done(void *ctx, int rc)
{
    struct wjob *w = ctx;
    w->rc = rc;
    if (w->next_seq) {
        if (*w->next_seq != w->seq)
            atomic_fetch_add(w->order_errors, 1);
        *w->next_seq = w->seq + 1;
    }
    atomic_fetch_add(&w->done_calls, 1);
}

static void wjob_init(struct wjob *w, uint32_t thread, uint32_t seq, uint32_t value_bytes)
{
    memset(w, 0, sizeof(*w));
    w->job = (struct store_job){
        .run = wjob_run, .done = wjob_done, .ctx = w, .n_entries = 1, .n_bytes = value_bytes + 8};
    w->thread = thread;
    w->seq = seq;
    w->value_bytes = value_bytes;
}

/* A job whose run() holds the storage thread until released, so everything submitted
 * meanwhile forms the next batch. */
struct gate {
    struct store_job job;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool entered, released;
    atomic_int done_calls;
};

static int gate_run(struct store_txn *t, void *ctx)
{
    (void)t;
    struct gate *g = ctx;
    pthread_mutex_lock(&g->mu);
    g->entered = true;
    pthread_cond_broadcast(&g->cv);
    while (!g->released)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    return 0;
}

static void gate_done(void *ctx, int rc)
{
    (void)rc;
    struct gate *g = ctx;
    atomic_fetch_add(&g->done_calls, 1);
}

static void gate_init(struct gate *g)
{
    memset(g, 0, sizeof(*g));
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->job = (struct store_job){.run = gate_run, .done = gate_done, .ctx = g, .n_entries = 1};
}

/* Submits the gate and waits until the storage thread is inside it. */
static int gate_close(struct committer *c, struct gate *g)
{
    int rc = committer_submit(c, &g->job);
    if (rc)
        return rc;
    pthread_mutex_lock(&g->mu);
    while (!g->entered)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    return 0;
}

static void gate_open(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->released = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void gate_release(struct gate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

/* ---------------------------------------------------------------------------------------
 * Many submitters
 * ------------------------------------------------------------------------------------- */

#define N_THREADS  4
#define PER_THREAD 400

struct submitter {
    struct committer *c;
    struct wjob *jobs; /* PER_THREAD */
    uint32_t next_seq;
    atomic_int *order_errors;
    int rc;
};

static void *submit_main(void *arg)
{
    struct submitter *sb = arg;
    for (uint32_t i = 0; i < PER_THREAD && !sb->rc; i++)
        sb->rc = committer_submit(sb->c, &sb->jobs[i].job);
    return NULL;
}

static void test_concurrent_submitters(void)
{
    struct tmpstore ts;
    CHECK_OK(tmp_open(&ts, NULL));
    struct committer *c = NULL;
    int rc = committer_start(&c, ts.s, NULL);
    struct wjob *jobs = mem_calloc(N_THREADS * PER_THREAD, sizeof(*jobs));
    struct submitter sb[N_THREADS];
    pthread_t th[N_THREADS];
    atomic_int order_errors = 0;
    for (uint32_t t = 0; t < N_THREADS && jobs && !rc; t++) {
        sb[t] = (struct submitter){
            .c = c, .jobs = jobs + t * PER_THREAD, .order_errors = &order_errors};
        for (uint32_t i = 0; i < PER_THREAD; i++) {
            wjob_init(&sb[t].jobs[i], t, i, 100);
            sb[t].jobs[i].next_seq = &sb[t].next_seq;
            sb[t].jobs[i].order_errors = &order_errors;
        }
    }
    for (uint32_t t = 0; t < N_THREADS && jobs && !rc; t++)
        pthread_create(&th[t], NULL, submit_main, &sb[t]);
    for (uint32_t t = 0; t < N_THREADS && jobs && !rc; t++)
        pthread_join(th[t], NULL);
    if (c)
        committer_stop(c); /* drains the queue first */
    int once = 1, submit_rc = 0;
    for (uint32_t i = 0; jobs && i < N_THREADS * PER_THREAD; i++) {
        once &= atomic_load(&jobs[i].done_calls) == 1 && jobs[i].rc == 0;
    }
    for (uint32_t t = 0; t < N_THREADS && jobs && !rc; t++)
        submit_rc = submit_rc ? submit_rc : sb[t].rc;
    /* Reopen: every record is on disk. */
    uint64_t n = 0;
    struct store_lmdb_stats ls = {0};
    if (!rc) {
        store_lmdb_stats(ts.s, &ls);
        store_close(ts.s);
        ts.s = NULL;
        rc = store_lmdb_open(&ts.s, ts.dir, NULL, NULL, 0);
    }
    if (!rc) {
        struct store_txn *t;
        if (!(rc = store_begin(ts.s, false, &t))) {
            rc = store_count(t, STORE_T_KV_REV, &n);
            store_abort(t);
        }
    }
    mem_free(jobs);
    tmp_close(&ts);
    CHECK_OK(rc);
    CHECK_OK(submit_rc);
    CHECK(once);
    CHECK_EQ(atomic_load(&order_errors), 0);
    CHECK_EQ_U64(n, N_THREADS * PER_THREAD);
    /* Group commit: fewer commits (each one sync) than jobs. */
    CHECK_MSG(ls.commits < N_THREADS * PER_THREAD, "commits %" PRIu64, ls.commits);
}

/* Jobs submitted while a batch runs form exactly one next batch. */
static void test_batches_group(void)
{
    struct tmpstore ts;
    CHECK_OK(tmp_open(&ts, NULL));
    struct committer *c;
    CHECK_OK(committer_start(&c, ts.s, NULL));
    struct gate g;
    gate_init(&g);
    static struct wjob w[100];
    int rc = gate_close(c, &g);
    for (uint32_t i = 0; i < 100 && !rc; i++) {
        wjob_init(&w[i], 0, i, 10);
        rc = committer_submit(c, &w[i].job);
    }
    gate_open(&g);
    while (!rc && atomic_load(&w[99].done_calls) == 0)
        usleep(1000);
    struct committer_stats st;
    committer_stats(c, &st);
    committer_stop(c);
    gate_release(&g);
    tmp_close(&ts);
    CHECK_OK(rc);
    for (int i = 0; i < 100; i++)
        CHECK(atomic_load(&w[i].done_calls) == 1 && w[i].rc == 0);
    CHECK_EQ_U64(st.batches, 2);
    CHECK_EQ_U64(st.max_batch_jobs, 100);
    CHECK_EQ_U64(st.jobs, 101);
}

static void test_batch_stats_and_failure(void)
{
    struct tmpstore ts;
    CHECK_OK(tmp_open(&ts, NULL));
    struct committer *c;
    CHECK_OK(committer_start(&c, ts.s, NULL));
    struct gate g;
    gate_init(&g);
    static struct wjob w[4];
    /* Batch 1: the gate. Batch 2: w0, w1 (fails), w2. Batch 3: w3 alone. */
    int rc = gate_close(c, &g);
    for (uint32_t i = 0; i < 3 && !rc; i++) {
        wjob_init(&w[i], 0, i, 10);
        w[i].should_fail = i == 1;
        rc = committer_submit(c, &w[i].job);
    }
    gate_open(&g);
    /* Wait for batch 2, then submit w3 on its own. */
    while (!rc && atomic_load(&w[2].done_calls) == 0)
        usleep(1000);
    wjob_init(&w[3], 0, 3, 10);
    if (!rc)
        rc = committer_submit(c, &w[3].job);
    while (!rc && atomic_load(&w[3].done_calls) == 0)
        usleep(1000);
    struct committer_stats st;
    committer_stats(c, &st);
    committer_stop(c);
    gate_release(&g);
    /* w0's write went with its batch. */
    struct store_txn *t;
    struct slice v;
    uint8_t key[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int got0 = -1, got3 = -1;
    if (!rc && !store_begin(ts.s, false, &t)) {
        got0 = store_get(t, STORE_T_KV_REV, slice_make(key, 8), &v);
        key[7] = 3;
        got3 = store_get(t, STORE_T_KV_REV, slice_make(key, 8), &v);
        store_abort(t);
    }
    tmp_close(&ts);
    CHECK_OK(rc);
    CHECK_EQ(atomic_load(&g.done_calls), 1);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(atomic_load(&w[i].done_calls), 1);
    CHECK_ERR(w[0].rc, ASPEN_E_INVALID);
    CHECK_ERR(w[1].rc, ASPEN_E_INVALID);
    CHECK_ERR(w[2].rc, ASPEN_E_INVALID);
    CHECK_OK(w[3].rc);
    CHECK_ERR(got0, ASPEN_E_NOT_FOUND);
    CHECK_OK(got3);
    CHECK_EQ_U64(st.batches, 3);
    CHECK_EQ_U64(st.jobs, 5);
    CHECK_EQ_U64(st.max_batch_jobs, 3);
    CHECK_EQ_U64(st.failed_batches, 1);
}

/* A batch that overflows a 1 MiB map fails FULL once, the map grows, the retry fits. */
static void test_full_retry(void)
{
    struct tmpstore ts;
    struct store_lmdb_options o = {.map_initial_bytes = 1u << 20, .map_max_bytes = 8u << 20};
    CHECK_OK(tmp_open(&ts, &o));
    struct committer *c;
    CHECK_OK(committer_start(&c, ts.s, NULL));
    struct gate g;
    gate_init(&g);
    static struct wjob w[5];
    int rc = gate_close(c, &g);
    for (uint32_t i = 0; i < 5 && !rc; i++) {
        wjob_init(&w[i], 0, i, sizeof(big_value)); /* 5 x 256 KiB > 1 MiB */
        rc = committer_submit(c, &w[i].job);
    }
    gate_open(&g);
    while (!rc && atomic_load(&w[4].done_calls) == 0)
        usleep(1000);
    struct committer_stats st;
    committer_stats(c, &st);
    committer_stop(c);
    gate_release(&g);
    struct store_lmdb_stats ls;
    store_lmdb_stats(ts.s, &ls);
    tmp_close(&ts);
    CHECK_OK(rc);
    for (int i = 0; i < 5; i++)
        CHECK_OK(w[i].rc);
    CHECK_EQ_U64(st.retries, 1);
    CHECK_EQ_U64(st.failed_batches, 0);
    CHECK(ls.map_grows >= 1);
}

/* A deliver hook that parks finished batches; the test completes them itself. */
struct parked {
    pthread_mutex_t mu;
    struct store_job *head, **tail;
    int deliveries;
};

static void park(void *ctx, struct store_job *batch)
{
    struct parked *p = ctx;
    pthread_mutex_lock(&p->mu);
    *p->tail = batch;
    while (batch->next)
        batch = batch->next;
    p->tail = &batch->next;
    p->deliveries++;
    pthread_mutex_unlock(&p->mu);
}

/* With a deliver hook the committer calls no done(): each batch arrives once, in order,
 * with its rc set, and committer_complete runs every done() exactly once. */
static void test_deliver_hook(void)
{
    struct tmpstore ts;
    CHECK_OK(tmp_open(&ts, NULL));
    struct parked p = {.mu = PTHREAD_MUTEX_INITIALIZER};
    p.tail = &p.head;
    struct committer_options o = {.deliver = park, .deliver_ctx = &p};
    struct committer *c;
    CHECK_OK(committer_start(&c, ts.s, &o));
    struct gate g;
    gate_init(&g);
    static struct wjob w[10];
    /* Batch 1: the gate. Batch 2: w0..w4, of which w2 fails. Batch 3: w5..w9. */
    int rc = gate_close(c, &g);
    for (uint32_t i = 0; i < 5 && !rc; i++) {
        wjob_init(&w[i], 0, i, 10);
        w[i].should_fail = i == 2;
        rc = committer_submit(c, &w[i].job);
    }
    gate_open(&g);
    for (int spins = 0; !rc && spins < 5000; spins++) {
        pthread_mutex_lock(&p.mu);
        int d = p.deliveries;
        pthread_mutex_unlock(&p.mu);
        if (d == 2)
            break;
        usleep(1000);
    }
    for (uint32_t i = 5; i < 10 && !rc; i++) {
        wjob_init(&w[i], 0, i, 10);
        rc = committer_submit(c, &w[i].job);
    }
    committer_stop(c); /* returns once every batch has been delivered */
    int not_yet_done = 0;
    for (int i = 0; i < 10; i++)
        not_yet_done += atomic_load(&w[i].done_calls) == 0;
    int deliveries = p.deliveries;
    int order_errors = p.head != &g.job;
    struct store_job *j = p.head ? p.head->next : NULL;
    for (int i = 0; i < 10; i++, j = j ? j->next : NULL)
        order_errors += j != &w[i].job;
    committer_complete(p.head);
    gate_release(&g);
    tmp_close(&ts);
    CHECK_OK(rc);
    CHECK_EQ(not_yet_done, 10);
    CHECK_EQ(order_errors, 0);
    CHECK(deliveries >= 3 && deliveries <= 7); /* w5..w9 may split into several batches */
    CHECK_EQ(atomic_load(&g.done_calls), 1);
    /* Each batch's first job carries the batch's size (and commit time); the rest zero. */
    CHECK_EQ(g.job.batch_jobs, 1u);
    CHECK_EQ(w[0].job.batch_jobs, 5u);
    for (int i = 1; i < 5; i++)
        CHECK_EQ(w[i].job.batch_jobs, 0u);
    CHECK(w[5].job.batch_jobs >= 1 && w[5].job.commit_ns > 0);
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(atomic_load(&w[i].done_calls), 1);
        if (i < 5)
            CHECK_ERR(w[i].rc, ASPEN_E_INVALID);
        else
            CHECK_OK(w[i].rc);
    }
}

static const struct test_case tests[] = {
    TEST(test_concurrent_submitters),
    TEST(test_batches_group),
    TEST(test_batch_stats_and_failure),
    TEST(test_full_retry),
    TEST(test_deliver_hook),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("committer", tests);
}
