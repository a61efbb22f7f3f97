/*
 * Crash test with real processes: a writer process appends Raft entries and applies them
 * through the production write path (the LMDB backend, the group-commit thread, one write
 * transaction per batch holding the log append, the hard state, the KV apply and the
 * applied index) and reports each acknowledged batch on a pipe. The driver kills it with
 * SIGKILL at a random moment, then reopens the data file and checks:
 *   - start-up verification passes (every log record's checksum, contiguity, commit <=
 *     last; LMDB opens cleanly);
 *   - every acknowledged entry is in the log and applied (applied >= every ack);
 *   - the single-fsync rule held: the applied index equals the last log index (the
 *     append and the apply of a batch are one transaction, so neither can be durable
 *     without the other);
 *   - the state equals a replay of the log from scratch on the memory backend (same
 *     kv_digest), so nothing was applied twice, skipped, or half-applied.
 * Then the writer restarts on the same file (recovering from its applied index) for the
 * next cycle. Every CRASH_FRESH_EVERY cycles the directory starts over, which bounds the
 * replay cost. Finally, byte flips in copies of the data file must be reported clearly at
 * start-up: in a log record ("log entry N: checksum mismatch"), and in LMDB's header.
 *
 * Cycles: ASPEN_CRASH_CYCLES (default 200, as `make test` runs it); seed: ASPEN_TEST_SEED.
 */
#include "base/buf.h"
#include "base/mem.h"
#include "base/rand.h"
#include "kv/kv.h"
#include "raft/codec.h"
#include "storage/committer.h"
#include "storage/raftlog.h"
#include "storage/store_lmdb.h"
#include "storage/store_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CRASH_PRODUCERS   4
#define CRASH_MAX_BATCH   8
#define CRASH_MAX_ENTRIES 1500 /* per writer run: bounds the replay the driver does */
#define CRASH_FRESH_EVERY 20
#define CRASH_KEYS        64
#define CRASH_MARK        "CRASHMARK-"

static void die(const char *what, int rc)
{
    fprintf(stderr, "crash_test: %s: %s\n", what, aspen_strerror(rc));
    exit(2);
}

/* ---------------------------------------------------------------------------------------
 * Writer (child process)
 * ------------------------------------------------------------------------------------- */

struct writer {
    struct store *st;
    struct committer *c;
    raft_index next_index; /* touched only on the storage thread (inside run) */
    raft_term term;
    int ack_fd;
    pthread_mutex_t mu;
    uint64_t submitted_entries;
    struct arena arena; /* the storage thread's, for kv_apply */
};

struct batch {
    struct store_job job;
    struct writer *w;
    uint32_t n;
    struct buf data[CRASH_MAX_BATCH]; /* encoded kv_cmds */
    raft_index first, last;           /* assigned on the storage thread */
    bool claimed;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rc;
};

static int batch_run(struct store_txn *t, void *ctx)
{
    struct batch *b = ctx;
    struct writer *w = b->w;
    struct raft_entry e[CRASH_MAX_BATCH];
    /* run() may run again when the committer retries a batch after ASPEN_E_FULL: claim
     * the indexes once, so a retry writes the same entries at the same places. */
    if (!b->claimed) {
        b->first = w->next_index;
        w->next_index += b->n;
        b->claimed = true;
    }
    for (uint32_t i = 0; i < b->n; i++)
        e[i] = (struct raft_entry){.term = w->term,
                                   .index = b->first + i,
                                   .type = RAFT_ENTRY_NORMAL,
                                   .len = (uint32_t)b->data[i].len,
                                   .data = b->data[i].data};
    b->last = b->first + b->n - 1;
    int rc = raftlog_append(t, e, b->n);
    struct raft_hard_state hs = {.term = w->term, .vote = 1, .commit = b->last};
    if (rc == 0)
        rc = raftlog_set_hard_state(t, &hs);
    /* A single voter: its own durable append is the quorum, and append + apply land in
     * this one transaction (the single-fsync rule). */
    for (uint32_t i = 0; rc == 0 && i < b->n; i++)
        rc = kv_apply(t, &e[i], &w->arena, NULL, NULL);
    arena_reset(&w->arena);
    return rc;
}

static void batch_done(void *ctx, int rc)
{
    struct batch *b = ctx;
    pthread_mutex_lock(&b->mu);
    b->done = true;
    b->rc = rc;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static void make_cmd(struct rng *r, uint32_t producer, uint64_t seq, struct buf *out)
{
    char key[16], value[64];
    int kl = snprintf(key, sizeof(key), "k%02u", (unsigned)rng_below(r, CRASH_KEYS));
    int vl = snprintf(value, sizeof(value), CRASH_MARK "%u-%" PRIu64, producer, seq);
    struct kv_cmd cmd = {0};
    uint64_t k = rng_below(r, 10);
    if (k < 7) {
        cmd.kind = KV_CMD_PUT;
        cmd.u.put.key = slice_make(key, (size_t)kl);
        cmd.u.put.value = slice_make(value, (size_t)vl);
    } else if (k < 9) {
        cmd.kind = KV_CMD_DELETE;
        cmd.u.del.key = slice_make(key, (size_t)kl);
    } else {
        cmd.kind = KV_CMD_COMPACT_STEP;
    }
    buf_clear(out);
    int rc = kv_cmd_encode(&cmd, out);
    if (rc)
        die("encode", rc);
}

struct producer {
    struct writer *w;
    uint32_t id;
    uint64_t seed;
};

static void *producer_main(void *arg)
{
    struct producer *p = arg;
    struct writer *w = p->w;
    struct rng r;
    rng_seed(&r, p->seed);
    struct batch *b = mem_calloc(1, sizeof(*b));
    if (!b)
        die("alloc", ASPEN_E_NOMEM);
    for (uint32_t i = 0; i < CRASH_MAX_BATCH; i++)
        buf_init(&b->data[i], ASPEN_MAX_REQUEST_BYTES);
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    for (uint64_t seq = 0;; seq++) {
        pthread_mutex_lock(&w->mu);
        bool stop = w->submitted_entries >= CRASH_MAX_ENTRIES;
        b->n = 1 + (uint32_t)rng_below(&r, CRASH_MAX_BATCH);
        if (!stop)
            w->submitted_entries += b->n;
        pthread_mutex_unlock(&w->mu);
        if (stop)
            break;
        for (uint32_t i = 0; i < b->n; i++)
            make_cmd(&r, p->id, seq * CRASH_MAX_BATCH + i, &b->data[i]);
        b->w = w;
        b->done = false;
        b->claimed = false;
        b->job = (struct store_job){.run = batch_run,
                                    .done = batch_done,
                                    .ctx = b,
                                    .n_entries = b->n,
                                    .n_bytes = 64u * b->n};
        int rc = committer_submit(w->c, &b->job);
        if (rc)
            die("submit", rc);
        pthread_mutex_lock(&b->mu);
        while (!b->done)
            pthread_cond_wait(&b->cv, &b->mu);
        pthread_mutex_unlock(&b->mu);
        if (b->rc)
            die("batch", b->rc);
        /* Acknowledged: durable and applied. One write(2) below PIPE_BUF is atomic. */
        char line[64];
        int n = snprintf(line, sizeof(line), "ack %" PRIu64 " %" PRIu64 "\n", b->first, b->last);
        if (write(w->ack_fd, line, (size_t)n) != n)
            die("write ack", -errno);
    }
    return NULL;
}

/* Opens the store, recovers (apply committed-but-unapplied entries: none are expected
 * with single-fsync batches, but a node must do it), and runs the producers until the
 * entry budget is spent; then idles until killed. */
static void writer_main(const char *dir, int ack_fd, uint64_t seed)
{
    struct writer w = {.ack_fd = ack_fd, .term = 1};
    arena_init(&w.arena, 64 * 1024, 64u << 20);
    char err[256];
    int rc = store_lmdb_open(&w.st, dir, NULL, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "%s\n", err);
        exit(2);
    }
    struct store_txn *t;
    struct raftlog_state ls;
    if ((rc = store_begin(w.st, true, &t)) != 0 || (rc = kv_init(t)) != 0)
        die("init", rc);
    if ((rc = raftlog_load(t, &ls)) != 0) {
        fprintf(stderr, "crash_test: writer start-up: %s\n", ls.error);
        exit(2);
    }
    raft_index applied;
    raft_term applied_term;
    if ((rc = kv_applied(t, &applied, &applied_term)) != 0)
        die("applied", rc);
    raft_index last = ls.boot.snapshot.index + ls.boot.n_entries;
    for (size_t i = 0; i < ls.boot.n_entries; i++) {
        const struct raft_entry *e = &ls.boot.entries[i];
        if (e->index > applied && e->index <= ls.boot.hard_state.commit)
            if ((rc = kv_apply(t, e, &w.arena, NULL, NULL)) != 0)
                die("recover apply", rc);
    }
    raftlog_state_release(&ls);
    if ((rc = store_commit(t, true)) != 0)
        die("recover commit", rc);
    w.next_index = last + 1;
    pthread_mutex_init(&w.mu, NULL);
    if ((rc = committer_start(&w.c, w.st, NULL)) != 0)
        die("committer", rc);
    pthread_t th[CRASH_PRODUCERS];
    struct producer p[CRASH_PRODUCERS];
    for (uint32_t i = 0; i < CRASH_PRODUCERS; i++) {
        p[i] = (struct producer){.w = &w, .id = i, .seed = seed * 31 + i};
        pthread_create(&th[i], NULL, producer_main, &p[i]);
    }
    for (uint32_t i = 0; i < CRASH_PRODUCERS; i++)
        pthread_join(th[i], NULL);
    if (write(ack_fd, "idle\n", 5) != 5)
        die("write idle", -errno);
    for (;;)
        pause();
}

/* ---------------------------------------------------------------------------------------
 * Driver
 * ------------------------------------------------------------------------------------- */

struct acks {
    raft_index max_acked;
    uint64_t n;
    bool idle;
    char partial[128];
    size_t partial_len;
};

static void parse_acks(struct acks *a, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char ch = data[i];
        if (ch != '\n') {
            if (a->partial_len + 1 < sizeof(a->partial))
                a->partial[a->partial_len++] = ch;
            continue;
        }
        a->partial[a->partial_len] = 0;
        uint64_t first, last;
        if (sscanf(a->partial, "ack %" SCNu64 " %" SCNu64, &first, &last) == 2) {
            if (last > a->max_acked)
                a->max_acked = last;
            a->n++;
        } else if (strcmp(a->partial, "idle") == 0) {
            a->idle = true;
        }
        a->partial_len = 0;
    }
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void digest_store(struct store *s, uint8_t d[32])
{
    struct store_txn *t;
    int rc = store_begin(s, false, &t);
    if (rc == 0)
        rc = kv_digest(t, d);
    if (rc)
        die("digest", rc);
    store_abort(t);
}

/* Reopens dir and checks everything the file comment promises. Returns the last index. */
static raft_index verify(const char *dir, raft_index max_acked, uint32_t cycle)
{
    struct store *st;
    char err[256];
    int rc = store_lmdb_open(&st, dir, NULL, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "cycle %u: reopen failed: %s\n", cycle, err);
        exit(1);
    }
    struct store_txn *t;
    struct raftlog_state ls;
    if ((rc = store_begin(st, false, &t)) != 0)
        die("begin", rc);
    if ((rc = raftlog_load(t, &ls)) != 0) {
        fprintf(stderr, "cycle %u: start-up verification failed: %s\n", cycle, ls.error);
        exit(1);
    }
    raft_index applied = 0;
    raft_term applied_term = 0;
    if ((rc = kv_applied(t, &applied, &applied_term)) != 0 && rc != ASPEN_E_NOT_FOUND)
        die("applied", rc);
    /* A writer killed before its kv_init committed (a kill within milliseconds of the
     * start in a fresh directory, likely on a loaded machine) leaves an uninitialised
     * store: the replay must start from the same nothing. kv_init's first record tells. */
    struct slice rev;
    rc = store_get(t, STORE_T_META, slice_str("kv.rev"), &rev);
    if (rc && rc != ASPEN_E_NOT_FOUND)
        die("kv.rev", rc);
    bool initialised = rc == 0;
    store_abort(t);
    raft_index last = ls.boot.snapshot.index + ls.boot.n_entries;
    if (applied != last) {
        fprintf(stderr, "cycle %u: applied %" PRIu64 " != last log index %" PRIu64 "\n", cycle,
                applied, last);
        exit(1);
    }
    if (max_acked > applied) {
        fprintf(stderr, "cycle %u: acknowledged %" PRIu64 " but only %" PRIu64 " survived\n", cycle,
                max_acked, applied);
        exit(1);
    }
    /* Replay the whole log on a fresh memory store. */
    struct store *m;
    if ((rc = store_mem_open(&m, NULL)) != 0 || (rc = store_begin(m, true, &t)) != 0 ||
        (initialised && (rc = kv_init(t)) != 0))
        die("replay open", rc);
    struct arena a;
    arena_init(&a, 64 * 1024, 64u << 20);
    for (size_t i = 0; i < ls.boot.n_entries; i++) {
        if ((rc = kv_apply(t, &ls.boot.entries[i], &a, NULL, NULL)) != 0)
            die("replay apply", rc);
        arena_reset(&a);
    }
    arena_release(&a);
    if ((rc = store_commit(t, true)) != 0)
        die("replay commit", rc);
    uint8_t d1[32], d2[32];
    digest_store(st, d1);
    digest_store(m, d2);
    if (memcmp(d1, d2, 32) != 0) {
        fprintf(stderr, "cycle %u: state differs from a replay of its log (%" PRIu64 " entries)\n",
                cycle, last);
        exit(1);
    }
    raftlog_state_release(&ls);
    store_close(m);
    store_close(st);
    return last;
}

static void copy_file(const char *from, const char *to)
{
    char cmd[2200];
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
    if (system(cmd) != 0)
        die("cp", ASPEN_E_IO);
}

/* Flips one byte at `off` of file `path`. */
static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    uint8_t b;
    if (fd < 0 || pread(fd, &b, 1, off) != 1)
        die("flip read", -errno);
    b ^= 0x5a;
    if (pwrite(fd, &b, 1, off) != 1)
        die("flip write", -errno);
    close(fd);
}

/* The offsets of every occurrence of CRASH_MARK in file `path`, in file order, into
 * *out (mem_alloc'd, the caller frees it). */
static size_t marker_offsets(const char *path, off_t **out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("open data file", -errno);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = mem_alloc((size_t)size + 1);
    if (!data || fread(data, 1, (size_t)size, f) != (size_t)size)
        die("read data file", ASPEN_E_IO);
    fclose(f);
    size_t n = 0, cap = 0, ml = strlen(CRASH_MARK);
    *out = NULL;
    for (long i = 0; i + (long)ml <= size; i++) {
        if (memcmp(data + i, CRASH_MARK, ml) != 0)
            continue;
        if (mem_grow(out, &cap, n, sizeof(**out), 64, SIZE_MAX / 2) != 0)
            die("alloc", ASPEN_E_NOMEM);
        (*out)[n++] = (off_t)i;
    }
    mem_free(data);
    return n;
}

/* Byte flips in copies of the data file are reported at start-up, with what is damaged. */
static void corruption_checks(const char *dir, const char *scratch)
{
    char src[1024], dst[1024];
    snprintf(src, sizeof(src), "%s/" STORE_LMDB_FILE_NAME, dir);
    snprintf(dst, sizeof(dst), "%s/" STORE_LMDB_FILE_NAME, scratch);

    /* 1. A flip inside a log record (found by its unique value marker). The same marker
     * also sits in the KV tables; flip the occurrence the log holds: try each until the
     * log load reports it. */
    off_t *marks;
    size_t n_marks = marker_offsets(src, &marks);
    if (n_marks == 0)
        die("no marker in the data file", ASPEN_E_NOT_FOUND);
    bool reported = false;
    for (size_t m = 0; m < n_marks && !reported; m++) {
        copy_file(src, dst);
        flip_byte(dst, marks[m] + 3);
        struct store *st;
        char err[256];
        int rc = store_lmdb_open(&st, scratch, NULL, err, sizeof(err));
        if (rc) {
            fprintf(stderr, "crash_test: flip in a value made open fail: %s\n", err);
            exit(1);
        }
        struct store_txn *t;
        struct raftlog_state ls;
        if ((rc = store_begin(st, false, &t)) != 0)
            die("begin", rc);
        rc = raftlog_load(t, &ls);
        if (rc == ASPEN_E_CORRUPT) {
            if (strstr(ls.error, "log entry") == NULL) {
                fprintf(stderr, "crash_test: corruption reported without naming the entry: %s\n",
                        ls.error);
                exit(1);
            }
            printf("# flipped a log record byte: \"%s\"\n", ls.error);
            reported = true;
        } else if (rc == 0) {
            raftlog_state_release(&ls);
        } else {
            die("load", rc);
        }
        store_abort(t);
        store_close(st);
    }
    mem_free(marks);
    if (!reported) {
        fprintf(stderr, "crash_test: no flip inside a log record was reported\n");
        exit(1);
    }

    /* 2. A flip in LMDB's header (the meta pages' magic). */
    copy_file(src, dst);
    flip_byte(dst, 16 + 4);
    struct store *st;
    char err[256];
    int rc = store_lmdb_open(&st, scratch, NULL, err, sizeof(err));
    if (rc == 0) {
        /* LMDB keeps two meta pages; a flip in one may leave the other usable. Flip the
         * second one's too: then it must refuse. */
        store_close(st);
        long page = sysconf(_SC_PAGESIZE);
        flip_byte(dst, (off_t)page + 16 + 4);
        rc = store_lmdb_open(&st, scratch, NULL, err, sizeof(err));
        if (rc == 0) {
            store_close(st);
            fprintf(stderr, "crash_test: both LMDB meta pages damaged, yet it opened\n");
            exit(1);
        }
    }
    printf("# flipped LMDB's header: \"%s\" (%s)\n", err, aspen_err_name(rc));
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    const char *cyc = getenv("ASPEN_CRASH_CYCLES");
    const char *seed_env = getenv("ASPEN_TEST_SEED");
    uint32_t cycles = cyc ? (uint32_t)strtoul(cyc, NULL, 10) : 200;
    uint64_t seed = seed_env ? strtoull(seed_env, NULL, 10) : 20261121;
    struct rng r;
    rng_seed(&r, seed);
    char dir[] = "/tmp/aspen-crash-XXXXXX";
    char scratch[] = "/tmp/aspen-crash-copy-XXXXXX";
    if (!mkdtemp(dir) || !mkdtemp(scratch))
        die("mkdtemp", -errno);
    char data_dir[600];
    snprintf(data_dir, sizeof(data_dir), "%s/node", dir);
    signal(SIGPIPE, SIG_IGN);
    uint64_t total_acks = 0, kills_mid_write = 0;
    raft_index last = 0;
    for (uint32_t cycle = 1; cycle <= cycles; cycle++) {
        if (cycle % CRASH_FRESH_EVERY == 1) {
            char cmd[700];
            snprintf(cmd, sizeof(cmd), "rm -rf '%s'", data_dir);
            if (system(cmd) != 0)
                die("rm", ASPEN_E_IO);
        }
        int fds[2];
        if (pipe(fds) != 0)
            die("pipe", -errno);
        pid_t pid = fork();
        if (pid < 0)
            die("fork", -errno);
        if (pid == 0) {
            close(fds[0]);
            writer_main(data_dir, fds[1], seed + cycle);
            _exit(0);
        }
        close(fds[1]);
        fcntl(fds[0], F_SETFL, O_NONBLOCK);
        struct acks a = {0};
        /* Kill at a random moment: most soon after start (mid-recovery, first batches),
         * some later (mid-stream). */
        uint64_t delay = rng_below(&r, 4) == 0 ? rng_below(&r, 20) : 20 + rng_below(&r, 200);
        uint64_t deadline = now_ms() + delay;
        char chunk[4096];
        while (now_ms() < deadline && !a.idle) {
            ssize_t n = read(fds[0], chunk, sizeof(chunk));
            if (n > 0)
                parse_acks(&a, chunk, (size_t)n);
            else
                usleep(200);
        }
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
            fprintf(stderr, "cycle %u: the writer died on its own (status %d)\n", cycle, status);
            return 1;
        }
        /* Acks written before the kill are still in the pipe. */
        for (;;) {
            ssize_t n = read(fds[0], chunk, sizeof(chunk));
            if (n <= 0)
                break;
            parse_acks(&a, chunk, (size_t)n);
        }
        close(fds[0]);
        kills_mid_write += !a.idle;
        total_acks += a.n;
        last = verify(data_dir, a.max_acked, cycle);
    }
    printf("# %u cycles, %" PRIu64 " acknowledged batches, %" PRIu64
           " kills while writing, last log index %" PRIu64 "\n",
           cycles, total_acks, kills_mid_write, last);
    corruption_checks(data_dir, scratch);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, scratch);
    if (system(cmd) != 0)
        die("rm", ASPEN_E_IO);
    printf("crash: 1 passed, 0 failed\n");
    return 0;
}
