/*
 * The raft core alone: entries committed per second on a 3-node cluster whose network
 * and storage cost nothing (issue 3's target: >= 1,000,000 small entries/s, batched).
 *
 * Three cores run in one thread. The leader proposes batches of --batch entries of
 * --size bytes; every update is "persisted" at once (PERSISTED is stepped right away) and
 * its messages are copied into a FIFO that is drained before the next batch — a copy is
 * what any transport does, and the update's pointers die at the next step. Snapshots are
 * taken whenever the core asks, so the log stays bounded as in production.
 *
 * Printed: committed entries/s, CPU ns per entry inside the leader's raft_step alone, and
 * CPU ns per entry for the whole process (three cores plus the copying).
 *
 * usage: bench_raft [--seconds S] [--batch N] [--size BYTES]
 */
#include "base/mem.h"
#include "base/rand.h"
#include "raft/raft.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NODES 3

struct qmsg {
    struct raft_msg m;
    struct raft_entry *ents; /* copies; data points into `blob` */
    uint8_t *blob;
};

struct bench {
    struct raft *r[NODES + 1];
    struct rng rng[NODES + 1];
    struct qmsg *q;
    size_t q_head, q_len, q_cap;
    uint64_t leader_ns;
    uint64_t committed_on_leader;
};

static uint64_t next_u64(void *ctx)
{
    return rng_next(ctx);
}

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void push(struct bench *b, const struct raft_msg *m)
{
    if (b->q_len == b->q_cap) {
        size_t cap = b->q_cap ? b->q_cap * 2 : 64;
        struct qmsg *n = mem_alloc(cap * sizeof(*n));
        if (!n)
            abort();
        for (size_t i = 0; i < b->q_len; i++)
            n[i] = b->q[(b->q_head + i) % b->q_cap];
        mem_free(b->q);
        b->q = n;
        b->q_cap = cap;
        b->q_head = 0;
    }
    struct qmsg *d = &b->q[(b->q_head + b->q_len++) % b->q_cap];
    d->m = *m;
    d->ents = NULL;
    d->blob = NULL;
    if (m->n_entries) {
        size_t bytes = 0;
        for (uint32_t i = 0; i < m->n_entries; i++)
            bytes += m->entries[i].len;
        d->ents = mem_alloc(m->n_entries * sizeof(*d->ents));
        d->blob = mem_alloc(bytes ? bytes : 1);
        if (!d->ents || !d->blob)
            abort();
        size_t off = 0;
        for (uint32_t i = 0; i < m->n_entries; i++) {
            d->ents[i] = m->entries[i];
            d->ents[i].data = d->blob + off;
            memcpy(d->blob + off, m->entries[i].data, m->entries[i].len);
            off += m->entries[i].len;
        }
        d->m.entries = d->ents;
    }
}

static void step(struct bench *b, raft_id id, const struct raft_event *ev);

static void process(struct bench *b, raft_id id, const struct raft_update *u)
{
    if (id == 1)
        b->committed_on_leader += u->n_committed;
    for (size_t i = 0; i < u->n_msgs; i++)
        push(b, &u->msgs[i]);
    bool persist = u->must_persist;
    struct raft_event pe = {.type = RAFT_EVENT_PERSISTED};
    pe.u.persisted.index = u->persist_index;
    pe.u.persisted.term = u->persist_term;
    if (u->want_snapshot) {
        struct raft_status st;
        raft_status(b->r[id], &st);
        struct raft_snapshot_meta meta = {.index = st.applied,
                                          .term = raft_term_at(b->r[id], st.applied)};
        meta.config = *raft_config(b->r[id]);
        struct raft_event ev = {.type = RAFT_EVENT_SNAPSHOT_TAKEN, .u.taken = &meta};
        step(b, id, &ev);
    }
    if (persist)
        step(b, id, &pe);
}

static void step(struct bench *b, raft_id id, const struct raft_event *ev)
{
    const struct raft_update *u;
    /* The monotonic clock is a vDSO call (~20 ns); the thread CPU clock is a system call
     * that would cost more than the step itself. One thread that never blocks: elapsed
     * time is CPU time. */
    uint64_t t0 = id == 1 ? wall_ns() : 0;
    int rc = raft_step(b->r[id], ev, &u);
    if (id == 1)
        b->leader_ns += wall_ns() - t0;
    if (rc && rc != ASPEN_E_BUSY) {
        fprintf(stderr, "bench_raft: step on %u: %s\n", (unsigned)id, aspen_strerror(rc));
        exit(1);
    }
    process(b, id, u);
}

static void drain(struct bench *b)
{
    while (b->q_len) {
        struct qmsg d = b->q[b->q_head];
        b->q_head = (b->q_head + 1) % b->q_cap;
        b->q_len--;
        struct raft_event ev = {.type = RAFT_EVENT_RECEIVE, .u.msg = &d.m};
        step(b, (raft_id)d.m.to, &ev);
        mem_free(d.ents);
        mem_free(d.blob);
    }
}

int main(int argc, char **argv)
{
    double seconds = 2;
    uint32_t batch = 256, size = 64;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = strtod(argv[++i], NULL);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--size") && i + 1 < argc)
            size = (uint32_t)strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: %s [--seconds S] [--batch N] [--size BYTES]\n", argv[0]);
            return 2;
        }
    }
    if (!(seconds > 0 && seconds <= 3600) || batch == 0 || batch > ASPEN_RAFT_MAX_ENTRIES_PER_MSG ||
        size > ASPEN_MAX_REQUEST_BYTES) {
        fprintf(stderr, "bench_raft: bad arguments\n");
        return 2;
    }
    struct bench b;
    memset(&b, 0, sizeof(b));
    raft_id ids[NODES] = {1, 2, 3};
    uint8_t buf[RAFT_CONF_CHANGE_MAX_BYTES];
    struct raft_entry e;
    struct raft_boot boot;
    if (raft_bootstrap(ids, NODES, buf, &e, &boot))
        return 1;
    for (raft_id i = 1; i <= NODES; i++) {
        rng_seed(&b.rng[i], i);
        struct raft_options o;
        raft_options_default(&o, i, (struct aspen_random){next_u64, &b.rng[i]});
        if (raft_create(&b.r[i], &o, &boot))
            return 1;
    }
    struct raft_event camp = {.type = RAFT_EVENT_CAMPAIGN};
    step(&b, 1, &camp);
    drain(&b);
    struct raft_status st;
    raft_status(b.r[1], &st);
    if (st.role != RAFT_LEADER) {
        fprintf(stderr, "bench_raft: node 1 did not become leader\n");
        return 1;
    }

    uint8_t *payload = mem_alloc(size ? size : 1);
    memset(payload, 0xab, size ? size : 1);
    struct raft_proposal *props = mem_alloc(batch * sizeof(*props));
    for (uint32_t i = 0; i < batch; i++)
        props[i] = (struct raft_proposal){.data = payload, .len = size};
    struct raft_event prop = {.type = RAFT_EVENT_PROPOSE};
    prop.u.propose.items = props;
    prop.u.propose.n = batch;

    b.committed_on_leader = 0;
    b.leader_ns = 0;
    uint64_t t0 = wall_ns(), c0 = cpu_ns(), end = t0 + (uint64_t)(seconds * 1e9);
    uint64_t rounds = 0;
    while (wall_ns() < end) {
        for (int k = 0; k < 16; k++) {
            step(&b, 1, &prop);
            drain(&b);
            rounds++;
        }
    }
    uint64_t wall = wall_ns() - t0, cpu = cpu_ns() - c0;
    double n = (double)b.committed_on_leader;
    printf("raft core, 3 nodes, zero-cost network and storage: batch %u x %u B\n", batch, size);
    printf("  committed      %.0f entries in %.2f s = %.0f entries/s\n", n, (double)wall / 1e9,
           n / ((double)wall / 1e9));
    printf("  leader step    %.1f ns CPU per entry (raft_step on the leader only)\n",
           (double)b.leader_ns / n);
    printf("  whole process  %.1f ns CPU per entry (3 cores + message copies)\n", (double)cpu / n);
    printf("  rounds         %" PRIu64 "\n", rounds);
    mem_free(props);
    mem_free(payload);
    for (raft_id i = 1; i <= NODES; i++)
        raft_free(b.r[i]);
    mem_free(b.q);
    return 0;
}
