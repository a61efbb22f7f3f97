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

struct net_msg {
    struct raft_msg m; /* entries and their data owned by the queue */
    bool dropped;
};

struct net_node {
    struct raft *r;
    struct rng rng;
    bool down;           /* isolated: messages to and from it are dropped */
    bool manual_persist; /* PERSISTED events are left to the test */
    raft_index applied_index[NET_MAX_APPLIED];
    raft_term applied_term[NET_MAX_APPLIED];
    uint32_t n_applied;
    struct raft_read_state reads[64];
    uint32_t n_reads;
    raft_index want_snapshot_at;
    raft_index last_persist_index;
    raft_term last_persist_term;
};

struct net {
    uint32_t n;
    struct net_node nodes[NET_MAX_NODES + 1]; /* 1-based: node i has id i */
    struct net_msg *q;
    uint32_t q_head, q_len;
    bool cut[NET_MAX_NODES + 1][NET_MAX_NODES + 1]; /* cut[a][b]: a -> b dropped */
    bool drop_type[RAFT_MSG_TYPE_COUNT];
    int last_rc;
};

/* Options tweak applied to every node before creation (may be NULL). */
typedef void (*net_tweak_fn)(struct raft_options *o);

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

#endif
