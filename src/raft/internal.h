/*
 * The raft core's private parts, shared by its files: the in-memory log (log.c), quorum
 * arithmetic (quorum.c), per-follower progress and flow control (progress.c),
 * configuration changes (config.c), and the core's state (struct raft) whose behaviour
 * is split by concern across raft.c (roles, terms, the step loop), election.c,
 * replication.c, read.c and membership.c.
 *
 * Nothing here is visible outside src/raft.
 */
#ifndef ASPEN_RAFT_INTERNAL_H
#define ASPEN_RAFT_INTERNAL_H

#include "raft/raft.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------------------
 * log.c: the entries after the last compaction, held in memory
 * ------------------------------------------------------------------------------------- */

/* ents[i] is the entry at index first + i. The entry just before the first one has term
 * prev_term (the compaction point or the snapshot). Entry data is owned by the log. The
 * log's size is bounded by the snapshot threshold (committed part) and by
 * max_uncommitted_bytes (uncommitted part). */
struct raft_log {
    struct raft_entry *ents;
    size_t len, cap;
    raft_index first;
    raft_term prev_term;
    uint64_t bytes; /* sum of data lengths */
};

void log_init(struct raft_log *log, raft_index prev_index, raft_term prev_term);
void log_release(struct raft_log *log);

static inline raft_index log_last_index(const struct raft_log *log)
{
    return log->first + log->len - 1;
}

/* True and *term set if the term of `index` is known (first-1 .. last). */
bool log_term(const struct raft_log *log, raft_index index, raft_term *term);
raft_term log_last_term(const struct raft_log *log);

/* The entry at index, which must be in first..last. */
const struct raft_entry *log_entry(const struct raft_log *log, raft_index index);

/* Appends a copy of e (which must have index last+1); ASPEN_E_NOMEM leaves the log as
 * it was. */
int log_append(struct raft_log *log, const struct raft_entry *e);

/* Drops entries index..last (index >= first). */
void log_truncate(struct raft_log *log, raft_index index);

/* Drops entries first..index (index <= last). */
void log_compact(struct raft_log *log, raft_index index);

/* Drops everything and restarts after (index, term): snapshot install. */
void log_reset(struct raft_log *log, raft_index index, raft_term term);

/* The largest j <= index whose term is <= term, or first-1 (fast back-off, §5.3 of the
 * paper's "optimization" paragraph; etcd-raft findConflictByTerm). */
raft_index log_find_conflict_by_term(const struct raft_log *log, raft_index index, raft_term term);

/* ---------------------------------------------------------------------------------------
 * quorum.c: majorities, simple and joint (thesis §4.3)
 * ------------------------------------------------------------------------------------- */

enum vote_result { VOTE_PENDING = 0, VOTE_WON = 1, VOTE_LOST = 2 };

/* The largest value v such that a majority of vals[0..n) are >= v; UINT64_MAX if n == 0
 * (an empty half of a joint configuration agrees to everything). Reorders vals. */
uint64_t quorum_majority_value(uint64_t *vals, uint32_t n);

/* Tally of a simple vote: granted and rejected counts of n voters. */
enum vote_result quorum_vote_result(uint32_t n, uint32_t granted, uint32_t rejected);

struct raft;
struct progress;

/* The vote of r's configuration (both halves when joint); get() says 1 (yes), -1 (no)
 * or 0 (not yet) for a member. */
enum vote_result quorum_joint_tally(struct raft *r,
                                    int (*get)(const struct raft *r, const struct progress *pr));

/* The largest value a quorum of r's configuration has reached (both halves when joint);
 * UINT64_MAX if the configuration has no voters. */
uint64_t quorum_joint_value(struct raft *r,
                            uint64_t (*get)(const struct raft *r, const struct progress *pr));

/* ---------------------------------------------------------------------------------------
 * progress.c: what the leader knows about each member (etcd-raft tracker)
 * ------------------------------------------------------------------------------------- */

enum progress_state {
    PROGRESS_PROBE = 0,     /* one append at a time until the match point is found */
    PROGRESS_REPLICATE = 1, /* optimistic pipelining within the in-flight limits */
    PROGRESS_SNAPSHOT = 2,  /* waiting for a snapshot transfer; appends paused */
};

/* Appends in flight to one follower: a ring of (last index, bytes) per message. */
struct inflights {
    raft_index *last;
    uint64_t *bytes;
    uint32_t start, count, cap;
    uint64_t total_bytes;
};

struct progress {
    raft_id id;
    raft_index match, next;
    uint8_t state; /* enum progress_state */
    bool probe_sent;
    bool recent_active; /* heard from since the last CheckQuorum round */
    int8_t vote;        /* election tally: 0 none, 1 granted, -1 rejected */
    raft_index pending_snapshot;
    uint32_t snapshot_ticks;
    uint64_t read_ack; /* highest read round (heartbeat context) acknowledged */
    struct inflights inflights;
};

int progress_init(struct progress *pr, raft_id id, raft_index next, uint32_t max_inflight);
void progress_release(struct progress *pr);
void progress_become_probe(struct progress *pr);
void progress_become_replicate(struct progress *pr);
void progress_become_snapshot(struct progress *pr, raft_index snapshot_index);
/* Records an acknowledged match; false if stale. */
bool progress_update(struct progress *pr, raft_index index);
/* Handles a rejection of `rejected` with the follower's hint; false if stale. */
bool progress_decrease(struct progress *pr, raft_index rejected, raft_index hint);
bool progress_is_paused(const struct progress *pr, uint32_t max_msgs, uint64_t max_bytes);
void progress_sent(struct progress *pr, raft_index last, uint64_t bytes, uint32_t n_entries);

void inflights_free_to(struct inflights *in, raft_index index);
void inflights_reset(struct inflights *in);
void inflights_free_first(struct inflights *in);

/* ---------------------------------------------------------------------------------------
 * config.c: configurations and the rules for changing them
 * ------------------------------------------------------------------------------------- */

/* Applies cc to *cfg (joint consensus rules of thesis §4.3, etcd-raft confchange):
 * ASPEN_E_INVALID if the change is not allowed from this configuration; *cfg is unchanged
 * on error. */
int config_apply(struct raft_config *cfg, const struct raft_conf_change *cc);
bool config_is_joint(const struct raft_config *cfg);
bool config_has(const raft_id *ids, uint32_t n, raft_id id);
/* Every member once: voters, outgoing-only voters, learners. Returns the count. */
uint32_t config_members(const struct raft_config *cfg, raft_id *out);
bool config_valid(const struct raft_config *cfg);

/* ---------------------------------------------------------------------------------------
 * The core's state
 * ------------------------------------------------------------------------------------- */

/* A linearizable read waiting at the leader: for the first entry committed in this term
 * (round == 0, index == 0), or for its heartbeat round to be acknowledged by a quorum. */
struct pending_read {
    uint64_t ctx;
    raft_id from; /* 0: local; else the follower that forwarded it */
    uint64_t round;
    raft_index index;
};

#define READ_ROUND_TICKS 64 /* recent rounds whose start tick is kept for leases */

struct raft {
    struct raft_options o;
    raft_id id;

    /* Persistent state (Figure 2) and the commit index. */
    raft_term term;
    raft_id vote;
    raft_index commit;

    struct raft_log log;
    struct raft_snapshot_meta snap; /* the latest durable snapshot */
    struct raft_config conf;        /* in force: as of `applied` */
    raft_index applied;             /* handed out in update->committed */
    raft_index durable;             /* our log is durable up to here */

    uint8_t role;
    raft_id leader;

    /* Timers (in ticks). */
    uint64_t now;              /* ticks since creation */
    uint32_t election_elapsed; /* since the last heartbeat from a leader / own reset */
    uint32_t heartbeat_elapsed;
    uint32_t randomized_timeout; /* [election_ticks, 2 * election_ticks) */

    /* Members: one progress per member of conf (leader bookkeeping, vote tallies). */
    struct progress *prs;
    uint32_t n_prs;

    /* Follower state: the leader's latest message said a transfer is in progress. */
    bool leader_transferring;

    /* Leader state. */
    bool term_unsynced; /* won alone: our term is not known durable yet */
    raft_id transferee;
    uint64_t transfer_round; /* TimeoutNow waits until a quorum acknowledged this round */
    bool timeout_now_sent;
    raft_index pending_conf_index;
    uint64_t uncommitted_bytes;

    /* Reads (read.c). */
    struct pending_read *reads;
    uint32_t reads_head, reads_count, reads_cap;
    uint64_t read_round;     /* the last round started; never reused (raft#397) */
    uint64_t read_confirmed; /* highest round confirmed by a quorum */
    uint64_t round_tick[READ_ROUND_TICKS];
    uint64_t lease_until; /* tick before which lease reads are safe */

    /* Snapshot request bookkeeping. */
    raft_index snapshot_asked_at;

    /* The update being built. */
    struct raft_update up;
    struct raft_msg *msgs;
    size_t n_msgs, cap_msgs;
    struct raft_read_state *out_reads;
    size_t n_out_reads, cap_out_reads;
    raft_index persist_from;    /* lowest log index changed in this step */
    raft_index committed_from;  /* first entry handed out in this step */
    struct raft_hard_state hs0; /* hard state at the start of the step */
    uint8_t role0;
    raft_id leader0;
    bool snapshot_installed;
    bool config_changed;
    int step_err; /* first allocation failure while building messages */
};

/* raft.c */
void raft_become_follower(struct raft *r, raft_term term, raft_id leader);
void raft_become_leader(struct raft *r);
struct raft_msg *raft_send(struct raft *r, uint8_t type, raft_id to);
struct progress *raft_progress(struct raft *r, raft_id id);
bool raft_is_promotable(const struct raft *r);
void raft_reset_randomized_timeout(struct raft *r);
raft_term raft_last_term(const struct raft *r);

/* election.c */
void election_campaign(struct raft *r, bool pre, bool transfer);
void election_on_vote(struct raft *r, const struct raft_msg *m);
void election_on_vote_resp(struct raft *r, const struct raft_msg *m);
void election_share_commit(struct raft *r, struct raft_msg *resp);
enum vote_result election_tally(struct raft *r);
bool election_quorum_active(struct raft *r);

/* replication.c */
/* Appends entries of our term and sends them (leader only). The caller decides policy
 * (client proposals are refused during a transfer); *first_out gets the first index. */
int replication_propose(struct raft *r, const struct raft_proposal *items, uint32_t n, uint8_t type,
                        raft_index *first_out);
void replication_bcast_append(struct raft *r, bool send_if_empty);
bool replication_send_append(struct raft *r, struct progress *pr, bool send_if_empty);
void replication_bcast_heartbeat(struct raft *r, uint64_t round);
void replication_on_append(struct raft *r, const struct raft_msg *m);
void replication_on_append_resp(struct raft *r, const struct raft_msg *m);
void replication_on_heartbeat(struct raft *r, const struct raft_msg *m);
void replication_on_heartbeat_resp(struct raft *r, const struct raft_msg *m);
void replication_on_snapshot(struct raft *r, const struct raft_msg *m);
void replication_on_snapshot_status(struct raft *r, raft_id node, bool ok);
bool replication_maybe_commit(struct raft *r);
void replication_on_persisted(struct raft *r, raft_index index, raft_term term);

/* read.c */
int read_request(struct raft *r, uint64_t ctx, raft_id from);
void read_on_read_index_resp(struct raft *r, const struct raft_msg *m);
void read_on_confirm(struct raft *r);
void read_on_term_commit(struct raft *r);
void read_start_round_if_needed(struct raft *r);
void read_fail_all(struct raft *r);
uint64_t read_next_round(struct raft *r);

/* membership.c */
int membership_propose(struct raft *r, const struct raft_conf_change *cc, raft_index *first_out);
void membership_apply(struct raft *r, const struct raft_entry *e);
void membership_after_apply(struct raft *r);
int membership_sync_progress(struct raft *r);
int membership_transfer(struct raft *r, raft_id target);
void membership_maybe_timeout_now(struct raft *r);
void membership_on_timeout_now(struct raft *r, const struct raft_msg *m);

#endif
