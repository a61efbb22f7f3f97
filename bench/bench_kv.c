/*
 * Storage and the KV state machine on one node, in process, fsync on (issue 4's numbers).
 *
 * Every write goes through the production write path: a job on the group-commit thread
 * (storage/committer.h) that, in ONE LMDB write transaction, appends the Raft entry
 * (raftlog_append), records the hard state (raftlog_set_hard_state) and applies the entry
 * (kv_apply) — the single-fsync transaction of a single-voter node, as
 * tests/integration/crash_test.c drives it. There is no Raft core and no network: this is
 * the ceiling the storage layer puts on a node, which the whole server can only lower.
 *
 * Phases, on one store in a fresh directory (removed afterwards unless --keep):
 *   1. puts/s with P concurrent proposers, for each P of --proposers: P puts in flight
 *      from one event-loop thread (--model loop) or P threads with one put each (--model
 *      thread); also syncs/s (committer batches/s), mean batch size and p50/p99 latency
 *      per put;
 *   2. bytes per entry on disk: aspen.mdb's size / entries written, the log kept (nothing
 *      is compacted, so the file holds every log entry AND the MVCC state);
 *   3. load --keys keys with big batches (jobs of --load-batch entries, several in
 *      flight), then the process's own memory excluding LMDB's map: live allocations of
 *      base/mem.h and RssAnon (the map is a file mapping: it counts in RssFile);
 *   4. point reads/s from one thread over the loaded keys (random keys, kv_range of one
 *      key), with a read transaction per read and with one per 1000 reads;
 *   5. range scan keys/s: the loaded keys in pages of --page (kv_range with a limit,
 *      continuing after the last key returned), one read transaction per page.
 *
 * Output: one line per number, "name label=... value=N", greppable by scripts/bench.sh
 * and docs/BENCHMARKS.md; lines starting with '#' are context.
 *
 * usage: bench_kv [--dir PARENT] [--keep] [--seconds S] [--proposers 1,16,256]
 *                 [--keys N] [--key-bytes B] [--value-bytes B] [--load-batch N]
 *                 [--reads N] [--page N] [--completions thread|storage]
 *                 [--model loop|thread|both] [--key-order spread|sequential]
 */
#include "base/buf.h"
#include "base/constants.h"
#include "base/mem.h"
#include "base/rand.h"
#include "kv/extras.h"
#include "kv/kv.h"
#include "kv/layout.h"
#include "storage/committer.h"
#include "storage/raftlog.h"
#include "storage/store_lmdb.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROPOSER_LEVELS 16
#define MAX_PROPOSERS       4096
#define LOAD_IN_FLIGHT      4 /* jobs queued at once while loading: encoding overlaps syncs */
#define READS_PER_TXN       1000
#define MAX_KEY_BYTES       64

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_kv: %s: %s\n", what, aspen_strerror(rc));
    exit(1);
}

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double seconds_since(uint64_t t0)
{
    return (double)(wall_ns() - t0) / 1e9;
}

/* Keys are a prefix letter and a zero-padded decimal number, `bytes` long in all: fixed
 * length and in numeric order, so the loaded keys form one contiguous range and a page
 * boundary can be computed (the bounded-scan diagnostic). Hand-rolled rather than
 * snprintf, which would cost as much as a point read. */
static void make_key(char prefix, uint64_t n, size_t bytes, uint8_t *out)
{
    out[0] = (uint8_t)prefix;
    for (size_t i = bytes - 1; i >= 1; i--) {
        out[i] = (uint8_t)('0' + n % 10);
        n /= 10;
    }
}

/* ---------------------------------------------------------------------------------------
 * The write path: a job of n encoded commands, applied as the production shell does
 * ------------------------------------------------------------------------------------- */

/* Where a batch's time goes, seen from the jobs' callbacks and the committer's deliver
 * hook: "run" from the first run() to the end of the last (encoding into LMDB: raftlog +
 * kv_apply), "commit" from there to the hand-over of the finished batch (mdb_txn_commit:
 * writing the dirty pages and fdatasync), "wake" the time spent completing a batch
 * (waking every waiting proposer). In the loop model batches are completed on the loop
 * thread. In the thread model, with --completions thread (the default, as a node's event
 * loop would) the wake-ups run on a completion thread while the storage thread goes on
 * to the next batch; with --completions storage they run on the storage thread between
 * batches. */
struct batch_times {
    atomic_uint_fast64_t batches, run_ns, commit_ns, wake_ns;
};

/* Finished batches handed over by the committer, completed on their own thread. */
struct completer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct store_job *head, **tail; /* delivered batches, concatenated in order */
    bool is_stopping;
    pthread_t thread;
    struct batch_times *times;
};

struct node {
    struct store *st;
    struct committer *c;
    /* Where finished batches go (NULL: completed on the storage thread). Swapped only
     * between phases, when nothing is in flight. */
    struct completer *_Atomic completer;
    raft_term term;
    /* Touched only on the storage thread (inside run and the deliver hook): */
    raft_index next_index;
    struct arena arena; /* for kv_apply */
    bool in_batch;
    uint64_t first_run, last_run_end;
    struct batch_times times; /* read by the main thread */
};

struct entries_job {
    struct store_job job;
    struct node *node;
    uint32_t n, cap;
    struct buf data;         /* the encoded commands, back to back */
    uint32_t *off;           /* owned: cap of each */
    struct raft_entry *ents; /* owned: cap, filled on the storage thread */
    raft_index first;        /* claimed on the storage thread */
    bool claimed;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rc;
};

static int job_run(struct store_txn *t, void *ctx)
{
    struct entries_job *j = ctx;
    struct node *nd = j->node;
    if (!nd->in_batch) {
        nd->in_batch = true;
        nd->first_run = wall_ns();
    }
    /* run() may run again when the committer retries a batch after ASPEN_E_FULL: claim
     * the indexes once, so a retry writes the same entries at the same places. */
    if (!j->claimed) {
        j->first = nd->next_index;
        nd->next_index += j->n;
        j->claimed = true;
    }
    for (uint32_t i = 0; i < j->n; i++) {
        uint32_t end = i + 1 < j->n ? j->off[i + 1] : (uint32_t)j->data.len;
        j->ents[i] = (struct raft_entry){.term = nd->term,
                                         .index = j->first + i,
                                         .type = RAFT_ENTRY_NORMAL,
                                         .len = end - j->off[i],
                                         .data = j->data.data + j->off[i]};
    }
    int rc = raftlog_append(t, j->ents, j->n);
    struct raft_hard_state hs = {.term = nd->term, .vote = 1, .commit = j->first + j->n - 1};
    if (rc == 0)
        rc = raftlog_set_hard_state(t, &hs);
    /* A single voter: its own durable append is the quorum, so the entry is applied in
     * the same transaction (the single-fsync rule). No results are wanted. */
    for (uint32_t i = 0; rc == 0 && i < j->n; i++)
        rc = kv_apply(t, &j->ents[i], &nd->arena, NULL, NULL);
    arena_reset(&nd->arena);
    nd->last_run_end = wall_ns();
    return rc;
}

static void job_done(void *ctx, int rc)
{
    struct entries_job *j = ctx; /* j may be reused as soon as the mutex is released */
    pthread_mutex_lock(&j->mu);
    j->done = true;
    j->rc = rc;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* Completes one or more batches (concatenated) and times it. */
static void complete_timed(struct batch_times *times, struct store_job *batches)
{
    uint64_t t0 = wall_ns();
    committer_complete(batches);
    atomic_fetch_add_explicit(&times->wake_ns, wall_ns() - t0, memory_order_relaxed);
}

/* The committer's deliver hook (storage thread): closes the batch's timings, then hands
 * the batch to the completion thread, or completes it here. */
static void deliver(void *ctx, struct store_job *batch)
{
    struct node *nd = ctx;
    uint64_t now = wall_ns();
    if (nd->in_batch) {
        nd->in_batch = false;
        atomic_fetch_add_explicit(&nd->times.batches, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&nd->times.run_ns, nd->last_run_end - nd->first_run,
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(&nd->times.commit_ns, now - nd->last_run_end,
                                  memory_order_relaxed);
    }
    struct completer *cp = atomic_load_explicit(&nd->completer, memory_order_acquire);
    if (!cp) {
        complete_timed(&nd->times, batch);
        return;
    }
    pthread_mutex_lock(&cp->mu);
    bool was_empty = cp->head == NULL;
    *cp->tail = batch;
    while (batch->next)
        batch = batch->next;
    cp->tail = &batch->next;
    if (was_empty)
        pthread_cond_signal(&cp->cv);
    pthread_mutex_unlock(&cp->mu);
}

/* Waits for delivered batches and takes them all (NULL once stopping and drained). */
static struct store_job *completer_take(struct completer *cp)
{
    pthread_mutex_lock(&cp->mu);
    while (!cp->head && !cp->is_stopping)
        pthread_cond_wait(&cp->cv, &cp->mu);
    struct store_job *batches = cp->head;
    cp->head = NULL;
    cp->tail = &cp->head;
    pthread_mutex_unlock(&cp->mu);
    return batches;
}

static void *completer_main(void *arg)
{
    struct completer *cp = arg;
    for (struct store_job *b; (b = completer_take(cp)) != NULL;)
        complete_timed(cp->times, b);
    return NULL;
}

/* A completer whose batches are taken by the caller's own loop (no thread). */
static struct completer *completer_new(struct batch_times *times)
{
    struct completer *cp = mem_calloc(1, sizeof(*cp));
    if (!cp)
        die("alloc", ASPEN_E_NOMEM);
    pthread_mutex_init(&cp->mu, NULL);
    pthread_cond_init(&cp->cv, NULL);
    cp->tail = &cp->head;
    cp->times = times;
    return cp;
}

static void completer_free(struct completer *cp)
{
    pthread_cond_destroy(&cp->cv);
    pthread_mutex_destroy(&cp->mu);
    mem_free(cp);
}

static struct completer *completer_start(struct batch_times *times)
{
    struct completer *cp = completer_new(times);
    int rc = pthread_create(&cp->thread, NULL, completer_main, cp);
    if (rc)
        die("pthread_create", -rc);
    return cp;
}

/* After committer_stop: every batch has been delivered; complete them and stop. */
static void completer_stop(struct completer *cp)
{
    if (!cp)
        return;
    pthread_mutex_lock(&cp->mu);
    cp->is_stopping = true;
    pthread_cond_signal(&cp->cv);
    pthread_mutex_unlock(&cp->mu);
    pthread_join(cp->thread, NULL);
    completer_free(cp);
}

static void job_init(struct entries_job *j, struct node *nd, uint32_t cap)
{
    memset(j, 0, sizeof(*j));
    j->node = nd;
    j->cap = cap;
    buf_init(&j->data, (size_t)cap * ASPEN_MAX_REQUEST_BYTES);
    j->off = mem_alloc(cap * sizeof(*j->off));
    j->ents = mem_alloc(cap * sizeof(*j->ents));
    if (!j->off || !j->ents)
        die("alloc", ASPEN_E_NOMEM);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
}

static void job_release(struct entries_job *j)
{
    buf_release(&j->data);
    mem_free(j->off);
    mem_free(j->ents);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
}

static void job_clear(struct entries_job *j)
{
    j->n = 0;
    buf_clear(&j->data);
}

/* Appends the encoding of put(key, value) to the job. */
static void job_add_put(struct entries_job *j, const uint8_t *key, size_t key_len,
                        const uint8_t *value, size_t value_len)
{
    struct kv_cmd cmd = {.kind = KV_CMD_PUT};
    cmd.u.put.key = slice_make(key, key_len);
    cmd.u.put.value = slice_make(value, value_len);
    j->off[j->n++] = (uint32_t)j->data.len;
    int rc = kv_cmd_encode(&cmd, &j->data);
    if (rc)
        die("kv_cmd_encode", rc);
}

static void job_submit_as(struct entries_job *j, void (*done)(void *ctx, int rc), void *ctx)
{
    j->done = false;
    j->claimed = false;
    j->job = (struct store_job){
        .run = job_run, .done = done, .ctx = ctx, .n_entries = j->n, .n_bytes = j->data.len};
    int rc = committer_submit(j->node->c, &j->job);
    if (rc)
        die("committer_submit", rc);
}

static void job_submit(struct entries_job *j)
{
    job_submit_as(j, job_done, j);
}

static void job_wait(struct entries_job *j)
{
    pthread_mutex_lock(&j->mu);
    while (!j->done)
        pthread_cond_wait(&j->cv, &j->mu);
    pthread_mutex_unlock(&j->mu);
    if (j->rc)
        die("write job", j->rc);
}

/* ---------------------------------------------------------------------------------------
 * Phase 1: concurrent proposers
 * ------------------------------------------------------------------------------------- */

struct proposer {
    struct node *node;
    uint32_t id;
    size_t key_bytes;
    const uint8_t *value;
    size_t value_bytes;
    pthread_barrier_t *start;
    atomic_bool *stop;
    uint64_t puts;
    uint64_t *lat_ns; /* owned: one per put */
    size_t cap_lat;
    pthread_t thread;
};

static void *proposer_main(void *arg)
{
    struct proposer *p = arg;
    struct entries_job j;
    job_init(&j, p->node, 1);
    uint8_t key[MAX_KEY_BYTES];
    pthread_barrier_wait(p->start);
    while (!atomic_load_explicit(p->stop, memory_order_relaxed)) {
        /* A fresh key per put (an insert, as etcdctl check perf does); the client's
         * encoding is part of the put's latency, as it is in a server. */
        uint64_t t0 = wall_ns();
        make_key('p', (uint64_t)p->id * 1000000000u + p->puts, p->key_bytes, key);
        job_clear(&j);
        job_add_put(&j, key, p->key_bytes, p->value, p->value_bytes);
        job_submit(&j);
        job_wait(&j);
        uint64_t dt = wall_ns() - t0;
        if (mem_grow(&p->lat_ns, &p->cap_lat, p->puts, sizeof(*p->lat_ns), 1024, SIZE_MAX / 8))
            die("alloc", ASPEN_E_NOMEM);
        p->lat_ns[p->puts++] = dt;
    }
    job_release(&j);
    return NULL;
}

/* Bytes this process caused to be written to the block layer (/proc/self/io's
 * write_bytes): the dirty pages LMDB writes back at each commit, i.e. the write
 * amplification of a put. 0 if the kernel does not account I/O. */
static uint64_t proc_write_bytes(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    if (!f)
        return 0;
    char line[128];
    uint64_t v = 0;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "write_bytes:", 12) == 0)
            v = strtoull(line + 12, NULL, 10);
    fclose(f);
    return v;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Latencies of every put of a phase, in ns. */
struct lats {
    uint64_t *ns; /* owned */
    size_t n, cap;
};

static void lats_add(struct lats *l, uint64_t ns)
{
    if (mem_grow(&l->ns, &l->cap, l->n, sizeof(*l->ns), 4096, SIZE_MAX / 8))
        die("alloc", ASPEN_E_NOMEM);
    l->ns[l->n++] = ns;
}

static void sleep_seconds(double seconds)
{
    struct timespec nap = {.tv_sec = (time_t)seconds,
                           .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&nap, &nap) != 0 && errno == EINTR)
        ;
}

/* The thread model: n proposer threads, each with one put in flight, woken one by one. */
static void proposers_threads(struct node *nd, uint32_t n, double seconds, size_t key_bytes,
                              const uint8_t *value, size_t value_bytes, struct lats *out)
{
    struct proposer *ps = mem_calloc(n, sizeof(*ps));
    if (!ps)
        die("alloc", ASPEN_E_NOMEM);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, n + 1);
    atomic_bool stop = false;
    for (uint32_t i = 0; i < n; i++) {
        ps[i] = (struct proposer){.node = nd,
                                  .id = i,
                                  .key_bytes = key_bytes,
                                  .value = value,
                                  .value_bytes = value_bytes,
                                  .start = &start,
                                  .stop = &stop};
        int rc = pthread_create(&ps[i].thread, NULL, proposer_main, &ps[i]);
        if (rc)
            die("pthread_create", -rc);
    }
    pthread_barrier_wait(&start);
    sleep_seconds(seconds);
    atomic_store(&stop, true);
    for (uint32_t i = 0; i < n; i++) {
        pthread_join(ps[i].thread, NULL);
        for (uint64_t k = 0; k < ps[i].puts; k++)
            lats_add(out, ps[i].lat_ns[k]);
        mem_free(ps[i].lat_ns);
    }
    pthread_barrier_destroy(&start);
    mem_free(ps);
}

/* The event-loop model, the way aspen-node is designed to propose: one thread keeps n
 * puts in flight (n clients with one request each). Finished batches come back to it in one
 * hand-over; it records their latencies and proposes the freed slots' next puts as one
 * job, as a node's loop turns a step's new entries into one storage write. Put k goes
 * to insertion point k mod n (the thread model's key ranges). */
struct loop;

struct loop_job {
    struct entries_job j;
    struct loop *loop; /* borrowed: the model it belongs to */
    uint64_t t0;
    struct loop_job *next_free;
};

struct loop {
    struct node *nd;
    struct lats *lats;
    struct loop_job *free;
    uint32_t n, outstanding, freed;
    uint64_t seq, base; /* base: where this phase's per-slot counters start */
    bool sequential;    /* every put appends after the last: one insertion point */
    size_t key_bytes, value_bytes;
    const uint8_t *value;
};

static void loop_job_done(void *ctx, int rc)
{
    struct loop_job *lj = ctx; /* called on the loop thread (committer_complete) */
    if (rc)
        die("write job", rc);
    struct loop *l = lj->loop;
    uint64_t now = wall_ns();
    for (uint32_t i = 0; i < lj->j.n; i++)
        lats_add(l->lats, now - lj->t0);
    l->outstanding -= lj->j.n;
    l->freed += lj->j.n;
    lj->next_free = l->free;
    l->free = lj;
}

static void loop_propose(struct loop *l, uint32_t k)
{
    struct loop_job *lj = l->free;
    if (lj) {
        l->free = lj->next_free;
    } else {
        lj = mem_calloc(1, sizeof(*lj));
        if (!lj)
            die("alloc", ASPEN_E_NOMEM);
        job_init(&lj->j, l->nd, l->n);
        lj->loop = l;
    }
    lj->t0 = wall_ns();
    job_clear(&lj->j);
    uint8_t key[MAX_KEY_BYTES];
    for (uint32_t i = 0; i < k; i++, l->seq++) {
        uint64_t kn =
            l->sequential ? l->seq : (l->seq % l->n) * 1000000000u + l->base + l->seq / l->n;
        make_key(l->sequential ? 'q' : 'p', kn, l->key_bytes, key);
        job_add_put(&lj->j, key, l->key_bytes, l->value, l->value_bytes);
    }
    job_submit_as(&lj->j, loop_job_done, lj); /* lj starts with its entries_job */
    l->outstanding += k;
}

static void proposers_loop(struct node *nd, uint32_t n, bool sequential, double seconds,
                           size_t key_bytes, const uint8_t *value, size_t value_bytes,
                           struct lats *out)
{
    /* Every phase inserts new keys: its counters start past the previous phase's. */
    static uint64_t seq_next, base_next;
    struct loop l = {.nd = nd,
                     .sequential = sequential,
                     .seq = sequential ? seq_next : 0,
                     .base = base_next,
                     .lats = out,
                     .n = n,
                     .key_bytes = key_bytes,
                     .value = value,
                     .value_bytes = value_bytes};
    struct completer *cp = completer_new(&nd->times);
    struct completer *saved = atomic_exchange(&nd->completer, cp);
    uint64_t end = wall_ns() + (uint64_t)(seconds * 1e9);
    loop_propose(&l, n);
    while (l.outstanding > 0) {
        struct store_job *b = completer_take(cp);
        l.freed = 0;
        complete_timed(&nd->times, b);
        if (wall_ns() < end && l.freed)
            loop_propose(&l, l.freed);
    }
    if (sequential)
        seq_next = l.seq;
    else
        base_next += l.seq / n + 1;
    atomic_store(&nd->completer, saved);
    completer_free(cp);
    while (l.free) {
        struct loop_job *lj = l.free;
        l.free = lj->next_free;
        job_release(&lj->j);
        mem_free(lj);
    }
}

static void run_proposers(struct node *nd, uint32_t n, bool loop_model, bool sequential,
                          double seconds, size_t key_bytes, const uint8_t *value,
                          size_t value_bytes)
{
    struct committer_stats c0, c1;
    committer_stats(nd->c, &c0);
    uint64_t b0 = atomic_load(&nd->times.batches), r0 = atomic_load(&nd->times.run_ns),
             m0 = atomic_load(&nd->times.commit_ns), w0 = atomic_load(&nd->times.wake_ns);
    uint64_t io0 = proc_write_bytes();
    uint64_t t0 = wall_ns();
    struct lats l = {0};
    if (loop_model)
        proposers_loop(nd, n, sequential, seconds, key_bytes, value, value_bytes, &l);
    else
        proposers_threads(nd, n, seconds, key_bytes, value, value_bytes, &l);
    double wall = seconds_since(t0);
    uint64_t io = proc_write_bytes() - io0;
    committer_stats(nd->c, &c1);
    uint64_t total = l.n, *lat = l.ns;
    qsort(lat, total, sizeof(*lat), cmp_u64);
    uint64_t batches = c1.batches - c0.batches;
    printf("puts_per_s proposers=%u value=%.0f\n", n, (double)total / wall);
    printf("syncs_per_s proposers=%u value=%.0f\n", n, (double)batches / wall);
    printf("batch_mean_puts proposers=%u value=%.1f\n", n,
           batches ? (double)total / (double)batches : 0.0);
    printf("put_p50_us proposers=%u value=%.1f\n", n, total ? (double)lat[total / 2] / 1e3 : 0.0);
    printf("put_p99_us proposers=%u value=%.1f\n", n,
           total ? (double)lat[(total * 99) / 100] / 1e3 : 0.0);
    double nb = (double)(atomic_load(&nd->times.batches) - b0);
    if (nb > 0) {
        printf("batch_run_us proposers=%u value=%.1f\n", n,
               (double)(atomic_load(&nd->times.run_ns) - r0) / nb / 1e3);
        printf("batch_commit_us proposers=%u value=%.1f\n", n,
               (double)(atomic_load(&nd->times.commit_ns) - m0) / nb / 1e3);
        printf("batch_wake_us proposers=%u completions=%s value=%.1f\n", n,
               loop_model      ? "loop"
               : nd->completer ? "thread"
                               : "storage",
               (double)(atomic_load(&nd->times.wake_ns) - w0) / nb / 1e3);
    }
    printf("disk_write_bytes_per_put proposers=%u value=%.0f\n", n,
           total ? (double)io / (double)total : 0.0);
    printf("# proposers=%u (%s model): %" PRIu64 " puts in %.2f s, %" PRIu64
           " batches, largest batch so far %" PRIu64 " jobs\n",
           n, loop_model ? "loop" : "thread", total, wall, batches, c1.max_batch_jobs);
    fflush(stdout);
    mem_free(lat);
}

/* ---------------------------------------------------------------------------------------
 * Phase 3: bulk load and memory
 * ------------------------------------------------------------------------------------- */

static void load_keys(struct node *nd, uint64_t keys, uint32_t batch, size_t key_bytes,
                      const uint8_t *value, size_t value_bytes)
{
    struct entries_job *js = mem_calloc(LOAD_IN_FLIGHT, sizeof(*js));
    if (!js)
        die("alloc", ASPEN_E_NOMEM);
    for (uint32_t i = 0; i < LOAD_IN_FLIGHT; i++)
        job_init(&js[i], nd, batch);
    bool busy[LOAD_IN_FLIGHT] = {false};
    struct committer_stats c0, c1;
    committer_stats(nd->c, &c0);
    uint64_t t0 = wall_ns();
    uint8_t key[MAX_KEY_BYTES];
    uint32_t slot = 0;
    for (uint64_t k = 0; k < keys;) {
        struct entries_job *j = &js[slot];
        if (busy[slot])
            job_wait(j);
        job_clear(j);
        for (; j->n < batch && k < keys; k++) {
            make_key('k', k, key_bytes, key);
            job_add_put(j, key, key_bytes, value, value_bytes);
        }
        job_submit(j);
        busy[slot] = true;
        slot = (slot + 1) % LOAD_IN_FLIGHT;
    }
    for (uint32_t i = 0; i < LOAD_IN_FLIGHT; i++)
        if (busy[i])
            job_wait(&js[i]);
    double wall = seconds_since(t0);
    committer_stats(nd->c, &c1);
    for (uint32_t i = 0; i < LOAD_IN_FLIGHT; i++)
        job_release(&js[i]);
    mem_free(js);
    printf("load_keys_per_s keys=%" PRIu64 " batch=%u value=%.0f\n", keys, batch,
           (double)keys / wall);
    printf("# load: %" PRIu64 " keys in %.2f s, %" PRIu64 " syncs\n", keys, wall,
           c1.batches - c0.batches);
    fflush(stdout);
}

/* One "Name:   N kB" line of /proc/self/status, in KiB; 0 if absent. */
static uint64_t proc_status_kib(const char *name)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    uint64_t v = 0;
    size_t nl = strlen(name);
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, name, nl) == 0 && line[nl] == ':') {
            v = strtoull(line + nl + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

/* ---------------------------------------------------------------------------------------
 * Phases 4 and 5: reads
 * ------------------------------------------------------------------------------------- */

static void point_reads(struct store *st, uint64_t keys, uint64_t reads, uint32_t per_txn,
                        size_t key_bytes, size_t value_bytes)
{
    struct arena a;
    arena_init(&a, 64 * 1024, 64u << 20);
    struct rng r;
    rng_seed(&r, 4);
    uint8_t key[MAX_KEY_BYTES];
    struct store_txn *t = NULL;
    uint64_t t0 = wall_ns();
    for (uint64_t i = 0; i < reads; i++) {
        int rc;
        if (i % per_txn == 0) {
            if (t)
                store_abort(t);
            if ((rc = store_begin(st, false, &t)) != 0)
                die("begin read", rc);
        }
        make_key('k', rng_below(&r, keys), key_bytes, key);
        struct kv_range_req req = {.key = slice_make(key, key_bytes)};
        struct kv_range_result res;
        int64_t hdr;
        if ((rc = kv_range(t, &req, &a, &res, &hdr)) != 0)
            die("kv_range", rc);
        if (res.n_kvs != 1 || res.kvs[0].value.len != value_bytes)
            die("point read found no value", ASPEN_E_CORRUPT);
        arena_reset(&a);
    }
    if (t)
        store_abort(t);
    double wall = seconds_since(t0);
    arena_release(&a);
    printf("point_reads_per_s reads_per_txn=%u value=%.0f\n", per_txn, (double)reads / wall);
    fflush(stdout);
}

/* The floor under a point read, as a diagnostic: one LMDB lookup per read, nothing else.
 * table KV_INDEX: a seek to IK(key) on one cursor (the first of a point read's two
 * lookups); KV_REV: a get of a random loaded key's revision record (the second). */
static void lookup_floor(struct store *st, uint64_t keys, uint64_t reads, size_t key_bytes,
                         enum store_table tb)
{
    struct rng r;
    rng_seed(&r, 5);
    struct store_txn *t;
    int rc = store_begin(st, false, &t);
    int64_t cur = 0, compacted;
    if (rc || (rc = kv_revisions(t, &cur, &compacted)))
        die("begin read", rc);
    struct store_cursor *c;
    if ((rc = store_cursor_open(t, tb, &c)))
        die("cursor", rc);
    uint8_t key[MAX_KEY_BYTES], ik[KV_IK_MAX], rk[KV_REV_KEY_LEN];
    uint64_t t0 = wall_ns();
    for (uint64_t i = 0; i < reads; i++) {
        uint64_t k = rng_below(&r, keys);
        struct slice fk, fv;
        if (tb == STORE_T_KV_INDEX) {
            make_key('k', k, key_bytes, key);
            size_t n = kv_ik_encode(slice_make(key, key_bytes), ik);
            rc = store_seek(c, slice_make(ik, n), &fk, &fv);
        } else {
            kv_rev_key(cur - (int64_t)k, 0, rk);
            rc = store_get(t, tb, slice_make(rk, sizeof(rk)), &fv);
        }
        if (rc)
            die("lookup", rc);
    }
    double wall = seconds_since(t0);
    store_cursor_close(c);
    store_abort(t);
    printf("lookup_floor_per_s table=%s value=%.0f\n", store_table_name(tb), (double)reads / wall);
    fflush(stdout);
}

/* Pages through the loaded keys. api "range": etcd's Range with a limit, the next page
 * starting at last key ++ "\0" (what etcd clients do); each page also counts the rest of
 * the range (etcd's count), so paging is O(n^2 / page) as it is in etcd. api "scankeys":
 * Aspen's ScanKeys (kv_scan) with continuation tokens, which stops at the limit. */
static void range_scan(struct store *st, uint64_t keys, uint32_t page, bool scankeys)
{
    struct arena a;
    arena_init(&a, 1024 * 1024, 1u << 30);
    uint8_t start[MAX_KEY_BYTES + 1];
    uint8_t token[256];
    size_t start_len = 1, token_len = 0;
    start[0] = 'k';
    uint64_t seen = 0, pages = 0;
    uint64_t t0 = wall_ns();
    for (bool more = true; more; pages++) {
        struct store_txn *t;
        int rc = store_begin(st, false, &t);
        if (rc)
            die("begin read", rc);
        struct kv_kv *kvs;
        size_t n;
        if (scankeys) {
            struct kv_scan_result res;
            rc =
                kv_scan(t, slice_make("k", 1), page, slice_make(token, token_len), false, &a, &res);
            if (rc)
                die("kv_scan", rc);
            kvs = res.kvs;
            n = res.n_kvs;
            more = res.next_token.len > 0;
            if (res.next_token.len > sizeof(token))
                die("scan token too long", ASPEN_E_TOO_LARGE);
            memcpy(token, res.next_token.ptr, res.next_token.len);
            token_len = res.next_token.len;
        } else {
            struct kv_range_req req = {.key = slice_make(start, start_len),
                                       .range_end = slice_make("l", 1),
                                       .limit = page};
            struct kv_range_result res;
            int64_t hdr;
            if ((rc = kv_range(t, &req, &a, &res, &hdr)) != 0)
                die("kv_range", rc);
            kvs = res.kvs;
            n = res.n_kvs;
            more = res.more;
        }
        seen += n;
        /* The next etcd page starts just after the last key: key ++ "\0". */
        if (n) {
            struct slice last = kvs[n - 1].key;
            memcpy(start, last.ptr, last.len);
            start[last.len] = 0;
            start_len = last.len + 1;
        }
        store_abort(t);
        arena_reset(&a);
    }
    double wall = seconds_since(t0);
    arena_release(&a);
    if (seen != keys)
        die("scan saw a different number of keys", ASPEN_E_CORRUPT);
    const char *api = scankeys ? "scankeys" : "range";
    printf("scan_keys_per_s api=%s page=%u value=%.0f\n", api, page, (double)seen / wall);
    printf("# scan (%s): %" PRIu64 " keys in %" PRIu64 " pages, %.3f s\n", api, seen, pages, wall);
    fflush(stdout);
}

/* ---------------------------------------------------------------------------------------
 * Driver
 * ------------------------------------------------------------------------------------- */

static void file_stats(struct node *nd, const char *when)
{
    struct store_lmdb_stats s;
    int rc = store_lmdb_stats(nd->st, &s);
    if (rc)
        die("store_lmdb_stats", rc);
    uint64_t entries = nd->next_index - 1;
    printf("bytes_per_entry after=%s entries=%" PRIu64 " log=kept value=%.1f\n", when, entries,
           entries ? (double)s.file_bytes / (double)entries : 0.0);
    printf("# %s: aspen.mdb %" PRIu64 " bytes, page %" PRIu64 " B, map %" PRIu64 " B, %" PRIu64
           " commits\n",
           when, s.file_bytes, s.page_bytes, s.map_bytes, s.commits);
    fflush(stdout);
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--dir PARENT] [--keep] [--seconds S] [--proposers 1,16,256]\n"
            "          [--keys N] [--key-bytes B] [--value-bytes B] [--load-batch N]\n"
            "          [--reads N] [--page N] [--completions thread|storage]\n"
            "          [--model loop|thread|both] [--key-order spread|sequential]\n",
            argv0);
    exit(2);
}

static void remove_store(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, STORE_LMDB_FILE_NAME);
    unlink(path);
    snprintf(path, sizeof(path), "%s/%s-lock", dir, STORE_LMDB_FILE_NAME);
    unlink(path);
    if (rmdir(dir) != 0)
        fprintf(stderr, "bench_kv: could not remove %s: %s\n", dir, strerror(errno));
}

int main(int argc, char **argv)
{
    const char *parent = "/tmp";
    bool keep = false;
    double seconds = 3;
    uint32_t levels[MAX_PROPOSER_LEVELS] = {1, 16, 256}, n_levels = 3;
    uint64_t keys = 1000000, reads = 1000000;
    uint32_t key_bytes = 16, value_bytes = 100, load_batch = 4096, page = 10000;
    bool completions_on_thread = true;
    unsigned models = 1; /* bit 0: loop model, bit 1: thread model */
    bool sequential = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--keep")) {
            keep = true;
            continue;
        }
        if (!v)
            usage(argv[0]);
        i++;
        if (!strcmp(a, "--dir"))
            parent = v;
        else if (!strcmp(a, "--seconds"))
            seconds = strtod(v, NULL);
        else if (!strcmp(a, "--keys"))
            keys = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--reads"))
            reads = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--key-bytes"))
            key_bytes = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--value-bytes"))
            value_bytes = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--load-batch"))
            load_batch = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--page"))
            page = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--key-order") && !strcmp(v, "spread"))
            sequential = false;
        else if (!strcmp(a, "--key-order") && !strcmp(v, "sequential"))
            sequential = true;
        else if (!strcmp(a, "--model") && !strcmp(v, "loop"))
            models = 1;
        else if (!strcmp(a, "--model") && !strcmp(v, "thread"))
            models = 2;
        else if (!strcmp(a, "--model") && !strcmp(v, "both"))
            models = 3;
        else if (!strcmp(a, "--completions") && !strcmp(v, "thread"))
            completions_on_thread = true;
        else if (!strcmp(a, "--completions") && !strcmp(v, "storage"))
            completions_on_thread = false;
        else if (!strcmp(a, "--proposers")) {
            n_levels = 0;
            for (const char *p = v; *p && n_levels < MAX_PROPOSER_LEVELS;) {
                char *endp;
                levels[n_levels++] = (uint32_t)strtoul(p, &endp, 10);
                p = *endp == ',' ? endp + 1 : endp;
                if (endp == p && *p)
                    usage(argv[0]);
            }
        } else
            usage(argv[0]);
    }
    /* Keys: a letter and enough digits for every key (puts use 10 + 3 digits). */
    uint64_t max_n = keys > 9999999999999u ? keys : 9999999999999u;
    uint32_t digits = 1;
    for (uint64_t x = max_n; x >= 10; x /= 10)
        digits++;
    bool ok = seconds > 0 && seconds <= 3600 && keys > 0 && reads > 0 && page > 0 &&
              page <= ASPEN_SCAN_MAX_LIMIT && key_bytes - 1 >= digits &&
              key_bytes <= MAX_KEY_BYTES && value_bytes <= ASPEN_MAX_VALUE_BYTES &&
              load_batch > 0 && load_batch <= ASPEN_STORAGE_MAX_BATCH_ENTRIES && n_levels > 0;
    for (uint32_t i = 0; i < n_levels; i++)
        ok = ok && levels[i] > 0 && levels[i] <= MAX_PROPOSERS;
    if (!ok) {
        fprintf(stderr, "bench_kv: bad arguments (key-bytes must be >= %u)\n", digits + 1);
        return 2;
    }

    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/aspen-bench-kv-XXXXXX", parent);
    if (!mkdtemp(dir))
        die("mkdtemp", -errno);
    uint64_t rss_anon_start = proc_status_kib("RssAnon");
    printf("# bench_kv: dir %s, %u-byte keys, %u-byte values, fsync on (LMDB always syncs)\n", dir,
           key_bytes, value_bytes);

    struct node nd = {.term = 1, .next_index = 1};
    arena_init(&nd.arena, 64 * 1024, 64u << 20);
    char err[512];
    int rc = store_lmdb_open(&nd.st, dir, NULL, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "bench_kv: %s\n", err);
        return 1;
    }
    struct store_txn *t;
    if ((rc = store_begin(nd.st, true, &t)) != 0 || (rc = kv_init(t)) != 0 ||
        (rc = store_commit(t, true)) != 0)
        die("kv_init", rc);
    if (completions_on_thread)
        nd.completer = completer_start(&nd.times);
    struct committer_options copt = {.deliver = deliver, .deliver_ctx = &nd};
    if ((rc = committer_start(&nd.c, nd.st, &copt)) != 0)
        die("committer_start", rc);
    uint8_t *value = mem_alloc(value_bytes ? value_bytes : 1);
    if (!value)
        die("alloc", ASPEN_E_NOMEM);
    for (uint32_t i = 0; i < value_bytes; i++)
        value[i] = (uint8_t)('a' + i % 26);

    for (uint32_t i = 0; i < n_levels; i++)
        for (int m = 0; m < 2; m++)
            if (models & (1 << m))
                run_proposers(&nd, levels[i], m == 0, sequential, seconds, key_bytes, value,
                              value_bytes);
    file_stats(&nd, "puts");

    load_keys(&nd, keys, load_batch, key_bytes, value, value_bytes);
    file_stats(&nd, "load");
    printf("mem_outstanding_allocs after=load value=%" PRId64 "\n", mem_outstanding());
    printf("rss_anon_kib after=load value=%" PRIu64 "\n", proc_status_kib("RssAnon"));
    printf("# RssAnon at start %" PRIu64 " KiB; RssFile now %" PRIu64
           " KiB (LMDB's map, not counted above)\n",
           rss_anon_start, proc_status_kib("RssFile"));
    fflush(stdout);

    point_reads(nd.st, keys, reads, 1, key_bytes, value_bytes);
    point_reads(nd.st, keys, reads, READS_PER_TXN, key_bytes, value_bytes);
    lookup_floor(nd.st, keys, reads, key_bytes, STORE_T_KV_INDEX);
    lookup_floor(nd.st, keys, reads, key_bytes, STORE_T_KV_REV);
    range_scan(nd.st, keys, page, false);
    range_scan(nd.st, keys, page, true);

    committer_stop(nd.c);
    completer_stop(nd.completer);
    store_close(nd.st);
    arena_release(&nd.arena);
    mem_free(value);
    if (keep)
        printf("# kept %s\n", dir);
    else
        remove_store(dir);
    return 0;
}
