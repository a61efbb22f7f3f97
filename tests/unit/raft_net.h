/*
 * A tiny, fully controlled cluster for scenario tests of the raft core (etcd-raft's
 * `network` helper in C): N cores, persistence that completes at once, a FIFO of
 * messages that tests deliver, drop or filter, and a record of what each node applied.
 *
 * Unlike the simulator this has no time, no randomness in delivery and no faults beyond
 * what a test asks for, so each test reads like the paper's figure it mirrors.
 */
#ifndef ASPEN_TEST_RAFT_NET_H
#define ASPEN_TEST_RAFT_NET_H

#include "base/rand.h"
#include "raft/raft.h"

#include <stdbool.h>
#include <stdint.h>

#define NET_MAX_NODES   9
#define NET_MAX_MSGS    8192
#define NET_MAX_APPLIED 4096
#define NET_MAX_TERMS   4096

struct net_msg {
    struct raft_msg m; /* entries and their data owned by the queue */
    bool dropped;
    bool after_persist; /* the flag as the core set it (m.after_persist is cleared) */
};

/* Options tweak applied to every node before creation (may be NULL). */
typedef void (*net_tweak_fn)(struct raft_options *o);

/* What a node's storage durably holds: what a restart recovers (net_restart). Entries
 * are snap.index+1 .. snap.index+n, data owned. */
struct net_store {
    struct raft_hard_state hs;
    struct raft_snapshot_meta snap;
    struct raft_entry *ents;
    size_t n, cap;
    raft_index applied; /* the state machine's applied index */
};

/* One entry handed to the state machine: enough to compare it across nodes. */
struct net_applied {
    raft_index index;
    raft_term term;
    uint64_t hash; /* of type, length and data */
};

/* An update's persistent part waiting for the (asynchronous) disk, with what must wait
 * for it: messages marked after_persist and the committed entries to apply. */
struct net_write {
    struct net_write *next;
    bool must_persist, hs_changed, has_snapshot, want_snapshot;
    raft_index persist_index;
    raft_term persist_term;
    struct raft_hard_state hs;
    struct raft_snapshot_meta snap;
    struct raft_entry *ents; /* owned copies */
    size_t n_ents;
    struct net_applied *apply;
    size_t n_apply;
    struct raft_msg *msgs; /* owned deep copies, queued when the write completes */
    size_t n_msgs;
};

struct net_node {
    struct raft *r;
    struct rng rng;
    bool down;           /* isolated: messages to and from it are dropped */
    bool manual_persist; /* PERSISTED events are left to the test */
    /* Asynchronous disk (contract rules 2-5): each update's write waits in `writes`
     * until net_persist(); messages marked after_persist and committed entries wait with
     * it. A restart loses the writes still waiting. */
    bool async;
    struct net_write *writes, *writes_tail;
    uint32_t n_writes;
    struct net_store store;
    net_tweak_fn tweak;
    raft_index handed;      /* last committed index the core handed out */
    raft_index commit_seen; /* commit prefix already checked against net->committed */
    uint32_t restarts;
    raft_index applied_index[NET_MAX_APPLIED];
    raft_term applied_term[NET_MAX_APPLIED];
    uint32_t n_applied;
    struct raft_read_state reads[64];
    uint32_t n_reads;
    raft_index want_snapshot_at;
    raft_index last_persist_index;
    raft_term last_persist_term;
};

struct net;

/* A delivery filter: true drops the message. */
typedef bool (*net_filter_fn)(struct net *net, const struct raft_msg *m, void *ctx);

struct net {
    uint32_t n;
    struct net_node nodes[NET_MAX_NODES + 1]; /* 1-based: node i has id i */
    struct net_msg *q;
    uint32_t q_head, q_len;
    bool cut[NET_MAX_NODES + 1][NET_MAX_NODES + 1]; /* cut[a][b]: a -> b dropped */
    bool drop_type[RAFT_MSG_TYPE_COUNT];
    int last_rc;
    net_filter_fn filter;
    void *filter_ctx;
    /* The last top-level net_step's update (scalar fields only; its pointers are dead). */
    struct raft_update last_up;
    /* If nonzero, the n-th allocation inside the next top-level raft_step fails. */
    uint64_t fail_alloc_in_step;
    /* Top-level steps so far; if fail_step matches, the fail_step_alloc-th allocation
     * inside that raft_step and all later ones in it fail (placed by step number). */
    uint64_t top_steps, fail_step, fail_step_alloc;
    uint32_t n_nomem; /* steps that returned ASPEN_E_NOMEM */
    /* If set, allocs_per_step[k] counts the allocation calls inside top-level step k+1
     * (for k < n_allocs_per_step). */
    uint32_t *allocs_per_step;
    uint64_t n_allocs_per_step;
    /* Safety checks run on every step (never abort; tests read net_violation()):
     * Election Safety (one leader per term), State Machine Safety (every node applies
     * the same entry at an index), committed entries never change, entries are handed
     * out in order, once, and never beyond the commit index, a write never leaves a
     * hole in a node's stored log. */
    uint32_t n_violations;
    char violation[256];
    raft_id term_leader[NET_MAX_TERMS];
    struct net_applied committed[NET_MAX_APPLIED]; /* by index; term 0 = not yet known */
};

/* n founders (ids 1..n), bootstrapped with raft_bootstrap. Returns 0 or an error. */
int net_init(struct net *net, uint32_t n, net_tweak_fn tweak);
/* A node with explicit boot state (for log-shape tests); replaces node id. */
int net_boot_node(struct net *net, raft_id id, const struct raft_boot *boot, net_tweak_fn tweak);
void net_free(struct net *net);

/* Steps an event on node id and processes the update (messages queued, persistence
 * completed at once unless manual_persist). Returns raft_step's code. */
int net_step(struct net *net, raft_id id, const struct raft_event *ev);

int net_tick(struct net *net, raft_id id, uint32_t ticks);
int net_campaign(struct net *net, raft_id id);
int net_propose(struct net *net, raft_id id, const char *data);
int net_read(struct net *net, raft_id id, uint64_t ctx);

/* Delivers queued messages (and those they cause) until the queue is empty or `max`
 * deliveries happened. Returns the number delivered. */
uint32_t net_deliver(struct net *net, uint32_t max);
/* Drops everything queued. */
void net_clear(struct net *net);

void net_isolate(struct net *net, raft_id id, bool isolated);
void net_cut(struct net *net, raft_id a, raft_id b); /* both directions */
void net_heal(struct net *net);

/* Ticks every live node once and delivers, `rounds` times. */
void net_run(struct net *net, uint32_t rounds);

/* The unique leader among live nodes in the highest term, or 0. */
raft_id net_leader(struct net *net);

struct raft_status net_status(struct net *net, raft_id id);

/* Counts queued (not dropped) messages of a type from -> to (0 = any). */
uint32_t net_count(struct net *net, uint8_t type, raft_id from, raft_id to);

/* ---- Extensions for the paper/etcd-style suites ---- */

/* The first queued (not dropped) message of a type from -> to (0 = any), or NULL. */
struct net_msg *net_find(struct net *net, uint8_t type, raft_id from, raft_id to);

/* Boots node id of a cluster of voters 1..n_voters with the log
 *   index 1: the bootstrap configuration (term 1), index i+2: terms[i] (i < n),
 * entry data "i<index>t<term>" (so equal index and term mean equal bytes), hard state
 * term max(hs_term, last term), vote 0, commit = applied = 1. */
int net_boot_terms(struct net *net, raft_id id, uint32_t n_voters, const raft_term *terms, size_t n,
                   raft_term hs_term, net_tweak_fn tweak);

/* Steps RECEIVE of m on node m->to. */
int net_recv(struct net *net, const struct raft_msg *m);

/* Marks every queued message matching (type, from, to) as dropped (type 0xff = any).
 * Returns how many. */
uint32_t net_drop(struct net *net, uint8_t type, raft_id from, raft_id to);

/* Delivers queued messages like net_deliver but only those matching (type, from, to);
 * the others stay queued in order. Returns the number delivered. */
uint32_t net_deliver_only(struct net *net, uint8_t type, raft_id from, raft_id to);

/* Async mode: completes node id's oldest waiting write (storage updated, held messages
 * queued, committed entries applied, PERSISTED stepped). False if none waits. */
bool net_persist(struct net *net, raft_id id);
void net_persist_all(struct net *net, raft_id id);

/* Crash and restart: the writes still waiting are lost, the core is rebuilt from what
 * the node's storage holds (net_store). Messages in flight stay in flight. */
int net_restart(struct net *net, raft_id id);

/* Randomly permutes the queued messages. */
void net_shuffle(struct net *net, struct rng *g);

/* Queues a copy of the i-th queued message (a duplicate delivery). */
void net_duplicate(struct net *net, uint32_t i);

/* The first safety violation recorded, or NULL. */
const char *net_violation(const struct net *net);

/* Checks the in-memory log of node id against its storage: every entry the core counts
 * as durable is stored with the same term. NULL if fine, else a description. */
const char *net_check_store(struct net *net, raft_id id);

#endif
