/*
 * The simulator's internal state, shared by its files: the cluster (nodes with their
 * raft cores, disks and live state machines), the clients, the network, the event heap,
 * the checker's tables and the trace. Private to src/sim (sim.h is the interface).
 *
 * Who does what:
 *   sim.c      the event loop, phases, scheduling helpers
 *   swarm.c    per-seed parameters (which faults, how intense)
 *   node.c     the shell around one raft core: steps events, persists updates through
 *              the disk, sends messages, applies entries, answers clients
 *   faults.c   crash/restart, pause/resume, partitions, clogs, membership, transfers
 *   workload.c clients: issue operations, follow leader hints, time out, record history
 *   check.c    the safety invariants, checked as things happen
 */
#ifndef ASPEN_SIM_CLUSTER_H
#define ASPEN_SIM_CLUSTER_H

#include "base/constants.h"
#include "base/rand.h"
#include "raft/raft.h"
#include "sim/disk.h"
#include "sim/heap.h"
#include "sim/history.h"
#include "sim/model.h"
#include "sim/net.h"
#include "sim/sim.h"
#include "sim/trace.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- parameters drawn per seed (swarm.c) ---- */

struct sim_params {
    uint32_t nodes; /* founding voters */
    uint32_t slots; /* nodes + spares */
    /* raft */
    uint32_t election_ticks, heartbeat_ticks;
    bool pre_vote, check_quorum, lease_reads;
    uint64_t snapshot_threshold, snapshot_keep;
    uint32_t max_msg_entries, max_inflight_msgs;
    /* environment */
    struct net_params net;
    struct disk_params disk;
    uint32_t drift_permille; /* a node's tick period differs by up to this much */
    /* faults: chances per fault tick (fault_tick_ns) */
    uint64_t fault_tick_ns;
    uint32_t crash_permille;
    uint64_t restart_max_ns;
    uint32_t pause_permille;
    uint64_t pause_max_ns;
    uint32_t partition_permille, heal_permille;
    uint32_t partition_modes; /* bit per enum net_partition_mode */
    bool asymmetric;
    uint32_t clog_permille;
    uint64_t clog_max_ns;
    uint32_t conf_permille, transfer_permille;
    uint32_t vote_crash_permille; /* crash a node right after it sends a vote grant */
    /* workload */
    uint32_t clients, keys;
    uint64_t think_max_ns, op_timeout_ns;
    uint32_t read_permille, follower_read_permille, cas_permille, delete_permille;
    uint64_t client_delay_max_ns;
    uint32_t reply_loss_permille; /* replies lost on the way back: outcome unknown */
    /* phases */
    uint64_t safety_ns, liveness_ns;
};

void swarm_draw(struct sim_params *p, uint64_t seed, const struct sim_options *opt);

/* ---- event kinds (struct sim_event.kind) ---- */

enum sim_event_kind {
    EV_TICK = 0,        /* node */
    EV_DELIVER,         /* node = receiver, a = sender slot, ptr = packet */
    EV_DISK,            /* node: the oldest pending write completes */
    EV_CLIENT_REQ,      /* node, client, a = op id */
    EV_CLIENT_RESP,     /* client, a = op id, flag = enum sim_reply | ok << 4, b = value,
                           c = index, d = read index, node = leader hint (id, 0 none) */
    EV_CLIENT_TIMEOUT,  /* client, a = op id */
    EV_CLIENT_NEXT,     /* client: issue the next operation */
    EV_FAULT,           /* the fault injector's periodic decision */
    EV_RESTART,         /* node */
    EV_RESUME,          /* node */
    EV_SNAPSHOT_STATUS, /* node = leader, a = target id, flag = ok */
    EV_PHASE,           /* the safety phase ends */
    EV_DEADLINE,        /* the liveness phase's bound */
    EV_CRASH,           /* node: a targeted crash (faults.c), restarted soon after */
};

enum sim_reply {
    REPLY_OK = 0,
    REPLY_NOT_LEADER = 1, /* definitely not executed; node = hint */
    REPLY_BUSY = 2,       /* definitely not executed */
    REPLY_FAILED = 3,     /* definitely not executed (index taken by another term) */
};

/* ---- nodes (node.c) ---- */

/* The shell's view of a node's live log: per index the term and the chain hash (the
 * hash of the whole log prefix), for the log-matching check. Index base is the
 * snapshot the log starts after. */
struct live_ent {
    raft_term term;
    uint64_t chain;
};

struct live_log {
    raft_index base;
    raft_term base_term;
    uint64_t base_chain;
    struct live_ent *v; /* owned: indexes base + 1 .. base + n */
    size_t n, cap;
};

struct proposal {
    raft_index index;
    raft_term term;
    uint8_t client;
    uint64_t op_id;
};

struct pending_read {
    uint64_t op_id;
    uint8_t client;
    bool ready; /* the core answered: serve once applied >= index */
    raft_index index;
};

#define NODE_MAX_PROPOSALS (4 * ASPEN_SIM_MAX_CLIENTS)
#define NODE_MAX_READS     (4 * ASPEN_SIM_MAX_CLIENTS)

struct snap_copy {
    struct raft_snapshot_meta meta;
    uint8_t *blob; /* owned */
    size_t len;
    bool valid;
};

struct sim_node {
    uint32_t slot;
    raft_id id; /* slot + 1 */
    bool up, paused;
    uint32_t incarnation; /* bumped at every crash and restart */
    struct raft *raft;    /* owned while up */
    struct rng raft_rng;  /* the core's randomness: one stream across restarts */
    struct rng clock_rng; /* tick phase after each restart */
    uint64_t tick_ns;     /* this node's tick period (clock drift) */
    uint64_t missed_ticks;
    struct disk disk;
    /* live (in-memory) state: durable + every pending write */
    const struct sm_ops *sm_ops;
    void *sm; /* owned: the live state machine (sm_ops) */
    raft_index applied;
    struct live_log log;
    struct snap_copy snap;     /* the newest snapshot the core knows (for sending) */
    struct snap_copy incoming; /* the newest snapshot received in a message */
    bool saving_snapshot;
    struct proposal props[NODE_MAX_PROPOSALS];
    uint32_t n_props;
    struct pending_read reads[NODE_MAX_READS];
    uint32_t n_reads;
    struct sim_event *deferred; /* owned: events held while paused */
    size_t n_deferred, cap_deferred;
    /* last volatile state seen */
    uint8_t role;
    raft_term term;
    raft_id leader;
    raft_index commit;
    /* The configuration in force before the current step: entries handed out in a step
     * were committed under it, even if they change it (configurations take effect as
     * their entries are handed out). */
    struct raft_config cfg_before;
    /* The volatile state before the current step, for the leader rules in check_node. */
    bool step_was_leader;
    raft_term step_term;
    raft_index step_commit;
};

/* ---- clients (workload.c) ---- */

struct sim_client {
    uint8_t slot;
    uint32_t id;     /* history client id */
    uint32_t target; /* node slot it believes leads */
    bool busy;
    uint64_t op; /* outstanding op id */
    struct rng rng;
};

/* ---- checker (check.c) ---- */

struct check_term_chain {
    raft_term term;
    uint64_t chain;
};

struct check_index {
    struct check_term_chain *v; /* owned: every (term, chain) seen at this index */
    uint32_t n, cap;
};

struct check_commit {
    raft_term term;
    /* The lowest term known to have this index committed: the term of a leader whose
     * commit index covered it, else that of the first node to apply it. A leader of this
     * term or later must hold the entry (Leader Completeness); a stale one need not. */
    raft_term commit_term;
    uint64_t chain;
    uint64_t digest; /* state machine digest after applying it */
    bool set;
};

struct check {
    raft_id *term_leader; /* owned, by term */
    size_t n_terms;
    struct check_index *idx; /* owned, by index */
    size_t n_idx;
    struct check_commit *commit; /* owned, by index */
    size_t n_commit;
    raft_index max_committed;
    /* The configuration in force at max_committed (of the node that applied it first):
     * committed, hence the one every crash check measures quorums against. */
    struct raft_config committed_cfg;
    bool has_committed_cfg;
    raft_term max_term;
};

/* ---- the simulation ---- */

enum sim_phase {
    PHASE_SAFETY = 0,
    PHASE_LIVENESS = 1, /* healed: a new write must commit */
    PHASE_DRAIN = 2,    /* liveness shown: wait for outstanding operations */
};

struct sim {
    uint64_t seed;
    const struct sm_ops *sm_ops; /* the replicated state machine under test */
    struct sim_options opt;
    struct sim_params p;
    FILE *out;
    uint64_t now_ns;
    uint8_t phase;
    uint64_t heal_ns;
    bool live_write_done;
    struct sim_heap heap;
    struct net net;
    struct sim_node nodes[ASPEN_SIM_MAX_NODES];
    struct sim_client clients[ASPEN_SIM_MAX_CLIENTS];
    uint32_t next_client_id;
    struct history hist;
    struct check chk;
    struct trace trace;
    struct rng r_crash, r_pause, r_part, r_member, r_client_net, r_corrupt;
    uint64_t key_seen[ASPEN_SIM_MAX_KEYS][4]; /* recent values per key, for CAS expectations */
    raft_index acked_max; /* highest index of a write whose success reached its client */
    struct sim_result *res;
    int internal_error; /* a simulator failure (not a violation): ends the run */
};

/* sim.c */
void sim_schedule(struct sim *s, const struct sim_event *ev);
void sim_trace(struct sim *s, uint8_t kind, const struct sim_node *n, uint8_t peer, uint64_t a,
               uint64_t b, uint64_t c);
/* Reports a violated invariant (first one wins) and stops the run. */
void sim_violation(struct sim *s, const char *invariant, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sim_internal_error(struct sim *s, int rc, const char *what);
/* The slot of the node that leads with the highest term, or -1. */
int sim_leader_slot(const struct sim *s);

/* node.c */
int node_start(struct sim *s, struct sim_node *n);
void node_stop(struct sim *s, struct sim_node *n); /* crash: lose memory, land writes */
void node_release(struct sim_node *n);
void node_on_event(struct sim *s, struct sim_node *n, const struct sim_event *ev);
/* Steps an event and processes its update; returns raft_step's code. */
int node_step(struct sim *s, struct sim_node *n, const struct raft_event *ev, raft_id *leader_hint);
void node_client_request(struct sim *s, struct sim_node *n, uint8_t client, uint64_t op_id);
void live_log_release(struct live_log *l);
/* The term at index in a live log, or false when it does not hold the index. */
bool live_log_term(const struct live_log *l, raft_index index, raft_term *term);

/* workload.c */
void workload_start(struct sim *s);
void workload_on_event(struct sim *s, const struct sim_event *ev);
void workload_reply(struct sim *s, struct sim_node *from, uint8_t client, uint64_t op_id,
                    enum sim_reply status, uint64_t value, bool ok, raft_index index,
                    raft_index read_index, raft_id hint);
bool workload_idle(const struct sim *s);

/* faults.c */
void faults_on_tick(struct sim *s);
void faults_crash(struct sim *s, struct sim_node *n);
/* n just released a vote grant: maybe crash it now and restart it quickly, so another
 * candidate of the same term asks it again (the window a lost vote opens). */
void faults_after_vote(struct sim *s, struct sim_node *n);
void faults_crash_quick(struct sim *s, struct sim_node *n);
void faults_restart(struct sim *s, struct sim_node *n);
void faults_pause(struct sim *s, struct sim_node *n, uint64_t until_ns);
void faults_resume(struct sim *s, struct sim_node *n);
void faults_heal_all(struct sim *s);

/* check.c */
int check_init(struct check *c);
void check_release(struct check *c);
void check_leader(struct sim *s, const struct sim_node *n);
void check_leader_complete(struct sim *s, const struct sim_node *n);
/* A node appends (index, term) with the given chain hash. */
void check_append(struct sim *s, const struct sim_node *n, raft_index index, raft_term term,
                  uint64_t chain);
/* The chain hash recorded for (index, term); false if never seen. */
bool check_chain_of(const struct check *c, raft_index index, raft_term term, uint64_t *chain);
/* A node discards its live entries >= index; those <= covered are kept in a snapshot. */
void check_truncate(struct sim *s, const struct sim_node *n, raft_index index, raft_index covered);
/* A node applied (index, term) to its live state machine, reaching `digest`. */
void check_apply(struct sim *s, const struct sim_node *n, raft_index index, raft_term term,
                 uint64_t chain, uint64_t digest);
/* A node installed a snapshot: its state must equal what was applied up to there. */
void check_install(struct sim *s, const struct sim_node *n, raft_index index, raft_term term,
                   uint64_t digest);
/* After a crash: the highest committed entry is still durable where it must be. */
void check_committed_durable(struct sim *s);
/* Per-node bounds after a step: applied <= commit <= last, the shell's log agrees. */
void check_node(struct sim *s, struct sim_node *n);

#endif
