/*
 * The node runtime's private state, shared by its files:
 *   node.c     lifecycle: open (storage, boot or bootstrap, raft core, committer,
 *              transport, HTTP), the tick timer, graceful shutdown;
 *   shell.c    the raft shell: each update → one storage job + messages; completions
 *              back on the loop; proposals, reads and their waiters;
 *   members.c  the member table (from the replicated registry), the trust registry,
 *              leader duties for membership (auto-promote);
 *   api.c      the HTTP routes (health, metrics, KV, cluster admin).
 * Everything here runs on the loop thread except a job's run(), which runs on the
 * committer's storage thread and touches only its job and the write transaction.
 */
#ifndef ASPEN_NODE_INTERNAL_H
#define ASPEN_NODE_INTERNAL_H

#include "base/buf.h"
#include "base/mem.h"
#include "base/rand.h"
#include "kv/kv.h"
#include "net/transport.h"
#include "node/config.h"
#include "node/http.h"
#include "node/identity.h"
#include "node/member.h"
#include "node/metrics.h"
#include "node/node.h"
#include "node/snap.h"
#include "raft/raft.h"
#include "storage/committer.h"
#include "storage/store.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* ---- waiters: a client request waiting for the log ---- */

enum waiter_kind {
    WAITER_PROPOSAL = 1, /* a command or configuration change: done when its entry applies */
    WAITER_READ = 2,     /* a linearizable read: done when applied >= its read index */
    WAITER_FORWARD = 3,  /* a proposal sent to the leader: becomes a PROPOSAL once the
                            leader says where its entry went (forward.c) */
};

struct node_waiter;

/* rc 0: res (may be NULL for a read or a configuration change) is valid only during the
 * call; index = the entry's index (proposal) or the read index (read). rc < 0: failed
 * (ASPEN_E_NOT_LEADER: lost leadership, the entry will not apply; ASPEN_E_TIMEOUT:
 * outcome unknown; ASPEN_E_CLOSED: shutting down). */
typedef void node_waiter_fn(struct node_waiter *w, int rc, const struct kv_result *res,
                            raft_index index);

struct node_waiter {
    node_waiter_fn *done; /* set by the caller */
    uint8_t kind;         /* the node's */
    bool ready;           /* read: index known */
    raft_index index;
    raft_term term;
    uint64_t read_ctx; /* READ: the core's read id; FORWARD: the forwarding request id */
    uint64_t deadline_ms;
    struct node_waiter *prev, *next;
};

struct waiter_list {
    struct node_waiter head; /* sentinel */
    size_t n;
};

/* ---- storage jobs ---- */

struct out_msg {
    raft_id to;
    size_t off, len; /* in the job's msg bytes */
};

/* One raft update's durable work, or a snapshot / compaction step. Built on the loop,
 * run on the storage thread, completed on the loop. Everything it needs is copied in. */
struct persist_job {
    struct store_job job;
    struct node *n;
    struct persist_job *next_inflight; /* the node's FIFO of submitted jobs */

    struct raft_entry *entries; /* owned array; data in `data` */
    size_t n_entries;
    struct raft_entry *committed; /* owned array; data in `data` */
    size_t n_committed;
    struct buf data; /* entry payloads */
    bool has_hs;
    struct raft_hard_state hs;
    bool must_persist;
    raft_index persist_index;
    raft_term persist_term;

    /* Messages that wait for this write (contract rule 2), encoded. */
    struct buf msg_bytes;
    struct out_msg *msgs;
    size_t n_msgs;

    /* Snapshot save (want_snapshot): record meta and compact the log behind it. */
    bool has_save;
    struct raft_snapshot_meta save;
    /* Snapshot install (update->has_snapshot): the spool's state replaces the state
     * machine's, the log is reset to the meta (node/snap.h). */
    bool has_install;
    struct raft_snapshot_meta install;
    char *install_path; /* owned copy */
    /* Compaction only: drop log entries up to compact_upto (what a save or an install
     * could not drop in one bounded step). */
    raft_index compact_upto;
    bool compact_more; /* run: more log to drop in a later job */

    /* Results of applying `committed` (run fills them; arena reset on retry). */
    struct arena arena;
    struct kv_result *results;
    bool cluster_changed; /* a registry command applied */
};

/* ---- the node ---- */

struct node {
    uv_loop_t *loop;
    struct node_config cfg;
    struct node_identity id;
    uint64_t cluster_id; /* 0 until known */

    /* storage */
    struct store *store;
    struct committer *committer;
    uv_async_t completions; /* the committer's deliver hook wakes the loop */
    pthread_mutex_t done_mu;
    struct store_job *done_head, *done_tail; /* delivered batches, under done_mu */
    struct persist_job *inflight_head, *inflight_tail;
    size_t inflight;

    /* raft */
    struct raft *raft;
    struct rng raft_rng;
    struct rng rng; /* ids, credentials */
    uv_timer_t tick;
    uint64_t tick_ms;
    uint8_t role;
    raft_id leader;
    raft_term term;
    raft_index applied;        /* durable applied index (what reads may see) */
    raft_index handed_applied; /* the last committed index handed to a job */
    raft_term handed_term;
    raft_index last_proposed_index; /* of the last step (PROPOSE / CONF_CHANGE) */
    raft_term last_proposed_term;
    bool in_step; /* inside shell_step: the core may not be stepped again yet */
#define NODE_MAX_SNAP_STATUS (2 * ASPEN_MAX_MEMBERS)
    struct {
        raft_id to;
        bool ok;
    } snap_status[NODE_MAX_SNAP_STATUS]; /* transfer outcomes to step after this step */
    size_t n_snap_status;
    bool saving_snapshot;
    raft_index snapshot_index;
    uint64_t next_read_ctx;
    uint64_t rtt_sampled_ms; /* when peer RTTs were last observed (metrics) */
    /* Configurations by applied index at job boundaries, ascending, so a snapshot of
     * any durable applied index can name the configuration in force there. */
#define NODE_CONF_HISTORY 8
    struct {
        raft_index index;
        struct raft_config config;
    } conf_hist[NODE_CONF_HISTORY];
    size_t n_conf_hist;

    /* snapshot transfers (node/snap.h) */
    struct snap_send *sends[ASPEN_SNAPSHOT_MAX_SENDS]; /* owned, see struct snap_send */
    struct snap_recv *recv;                            /* owned; NULL if none */
    size_t snap_works; /* sender work items on the thread pool (they use the store) */

    /* waiters */
    struct waiter_list proposals;
    struct waiter_list reads;
    struct waiter_list forwards; /* forwarded proposals not yet placed by the leader */
    uint64_t next_forward_id;

    /* network */
    struct net_transport net;
    struct aspen_random net_random; /* backoff jitter, from rng */
    bool net_open;
    bool handles_open; /* tick, stop_timer, completions initialised */
    struct http_server *http;
    uint16_t http_port;

    /* members (from the registry; members.c) */
    struct member_info *members; /* owned, n_members */
    size_t n_members;
    raft_index learner_match[ASPEN_MAX_MEMBERS]; /* leader: acknowledged index, by slot */
    raft_id learner_ids[ASPEN_MAX_MEMBERS];      /* leader: followers heard from this term */
    size_t n_learner_track;
    bool promote_pending;

    /* metrics */
    struct metrics_registry metrics;
    struct {
        struct metric_gauge *term, *role, *commit, *applied, *leader_changes_seen, *members,
            *is_leader, *has_leader;
        struct metric_counter *proposals, *proposals_failed, *reads, *jobs, *msgs_sent,
            *msgs_received, *msgs_dropped, *snapshots_sent, *snapshot_send_failures,
            *snapshots_installed, *snapshot_recv_failures, *forwarded;
        struct metric_histogram *commit_seconds, *batch_jobs, *peer_rtt_seconds;
    } m;

    /* shutdown */
    bool stopping;
    int stop_phase;
    uv_timer_t stop_timer;
    uint64_t stop_started_ms;
    void (*stop_done)(void *ctx);
    void *stop_ctx;
    int closing_handles;
};

/* ---- node.c ---- */
uint64_t node_now_ms(const struct node *n);

/* ---- shell.c ---- */
/* Steps the core with ev and processes the update (contract in raft.h). Returns the
 * step's code; *hint (may be NULL) receives the leader hint. */
int shell_step(struct node *n, const struct raft_event *ev, raft_id *hint);
/* Hands finished batches over from the storage thread (committer deliver hook). */
void shell_deliver(void *ctx, struct store_job *batch);
/* The uv_async callback: completes delivered batches on the loop. */
void shell_on_completions(uv_async_t *h);
/* A raft frame from a peer. */
void shell_on_frame(void *ctx, const uint8_t pk[NET_KEY_BYTES], struct slice frame);
/* Proposes cmd (an encoded kv_cmd) and waits for its entry to apply. 0: w->done will be
 * called; else an immediate error (NOT_LEADER with *hint, BUSY, TOO_LARGE, CLOSED). */
int shell_propose(struct node *n, struct slice cmd, struct node_waiter *w, uint64_t timeout_ms,
                  raft_id *hint);
int shell_conf_change(struct node *n, const struct raft_conf_change *cc, struct node_waiter *w,
                      uint64_t timeout_ms, raft_id *hint);
/* A linearizable read: w->done once the node applied the read index — possibly before
 * this returns (a single voter answers at once). 0: done() has run or will run; an error:
 * it will not. */
int shell_read(struct node *n, struct node_waiter *w, uint64_t timeout_ms, raft_id *hint);
/* Saves a snapshot at the last handed-out index now (admin), unless one is being saved. */
void shell_snapshot_now(struct node *n);
/* A snapshot transfer to `to` ended: tells the core (after the current step if inside
 * one). */
void shell_snapshot_status(struct node *n, raft_id to, bool ok);
/* The configuration in force after applying `index`, which must be a job boundary at or
 * after the durable applied index. ASPEN_E_NOT_FOUND if no longer known. */
int shell_config_at(const struct node *n, raft_index index, struct raft_config *out);
/* Records the configuration in force after `index` (start-up, installs). */
void shell_config_reset(struct node *n, raft_index index);
/* Fails waiters past their deadline (called every tick). */
void shell_expire(struct node *n);
/* Fails every waiter with rc (shutdown). */
void shell_fail_all(struct node *n, int rc);
/* Removes w from its list without calling it (the caller gave up on it). */
void shell_forget(struct node *n, struct node_waiter *w);
/* Leader: proposes cmd with no waiter (a forwarded proposal: the follower waits). On 0,
 * n->last_proposed_index/term say where it went. Errors as shell_propose. */
int shell_propose_unwaited(struct node *n, struct slice cmd, raft_id *hint);
/* Waiter list plumbing for forward.c. */
void shell_waiter_push(struct node *n, struct node_waiter *w);
void shell_waiter_finish(struct node *n, struct node_waiter *w, int rc, const struct kv_result *res,
                         raft_index index);
struct node_waiter *shell_forward_find(struct node *n, uint64_t id);
/* The leader placed w's entry at (index, term): wait for it like a local proposal. */
void shell_forward_proposed(struct node *n, struct node_waiter *w, raft_index index,
                            raft_term term);

/* ---- forward.c ---- */
#define FORWARD_MAGIC0 0xA5
#define FORWARD_MAGIC1 0x46 /* 'F' */
/* Is this raft-protocol frame a forwarding frame (not a raft message)? */
bool forward_is_frame(struct slice frame);
void forward_on_frame(struct node *n, const struct member_info *from, struct slice frame);
/* Follower: sends cmd to the leader and waits for its entry like a local proposal. 0:
 * w->done will be called; ASPEN_E_NOT_LEADER (no leader known, *hint), ASPEN_E_BUSY,
 * ASPEN_E_TOO_LARGE. */
int forward_propose(struct node *n, struct slice cmd, struct node_waiter *w, uint64_t timeout_ms,
                    raft_id *hint);

/* ---- members.c ---- */
/* Reloads the member table from the registry (a read transaction) and applies it to the
 * trust registry and the peer addresses. */
int members_reload(struct node *n);
/* Replaces the member table with a copy of v[0..count) (a joiner's answer). */
int members_set(struct node *n, const struct member_info *v, size_t count);
const struct member_info *members_find(const struct node *n, raft_id id);
const struct member_info *members_find_pk(const struct node *n, const uint8_t pk[NET_KEY_BYTES]);
/* Leader: a follower acknowledged `index` (from an APPEND_RESP). */
void members_on_ack(struct node *n, raft_id from, raft_index index);
/* Leader: the voter (not itself) with the highest acknowledged index, 0 if none heard. */
raft_id members_most_caught_up_voter(const struct node *n);
/* Leader duties run every tick: promote caught-up learners. */
void members_tick(struct node *n);

/* ---- api.c ---- */
void api_on_request(void *ctx, struct http_exchange *x);
int metrics_setup(struct node *n);
void metrics_update(struct node *n);
/* Every tick: samples the peers' RTT into the histogram once per second. */
void metrics_tick(struct node *n);

#endif /* ASPEN_NODE_INTERNAL_H */
