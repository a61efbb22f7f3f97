/*
 * The deterministic cluster simulator: whole Aspen raft clusters of 1-7 nodes (plus
 * spares that join through membership changes) in one process on virtual time, every
 * choice drawn from one 64-bit seed, so a seed replays a run bit for bit.
 *
 * A run has a safety phase — faults on: a lossy, duplicating, reordering, partitioned
 * network, crashes with lost unsynced writes, pauses, slow disks, membership changes and
 * leadership transfers — then a liveness phase: the network heals, every node comes
 * back, faults stop, and the cluster must elect a leader and commit a new write within a
 * bounded virtual time while outstanding client operations finish or time out. Safety
 * invariants are checked after every event (check.c); the client history is checked for
 * linearizability at the end (history.c). See docs/ARCHITECTURE.md, "The simulator".
 */
#ifndef ASPEN_SIM_SIM_H
#define ASPEN_SIM_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct sm_ops;

struct sim_options {
    uint32_t nodes;              /* founding voters; 0: drawn per seed from {1, 3, 5, 7} */
    bool trace;                  /* print one line per event to `out` */
    bool lease_reads;            /* enable lease reads; the seed then draws no pauses or drift */
    uint64_t safety_ns;          /* length of the safety phase; 0: drawn per seed */
    FILE *out;                   /* trace and violation reports (NULL: stderr) */
    const struct sm_ops *sm_ops; /* the state machine under test (NULL: the register model) */
};

struct sim_result {
    bool violation;
    char invariant[48]; /* which invariant broke ("one leader per term", ...) */
    char detail[2048];
    uint32_t nodes, slots, clients;
    uint64_t events;
    uint64_t virtual_ns;
    uint64_t digest;    /* hash of the whole event trace */
    uint64_t committed; /* highest index known committed */
    uint64_t max_term;
    uint64_t ops_ok, ops_failed, ops_unknown;
    uint64_t crashes, restarts, pauses, partitions, conf_changes, transfers, snapshots;
    uint64_t msgs_sent, msgs_dropped;
};

/* Runs one seed. Returns 0 when the run finished (then res->violation tells whether an
 * invariant broke; a report with the seed, the invariant and the recent trace has been
 * printed to opt->out), or a negative code when the simulator itself failed
 * (ASPEN_E_NOMEM, ...). */
int sim_run(uint64_t seed, const struct sim_options *opt, struct sim_result *res);

#endif
