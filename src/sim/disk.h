/*
 * A simulated node's storage: the durable image and the queue of pending atomic writes.
 *
 * The durable image is what survives a crash: the hard state, the log, the latest
 * snapshot (its meta and the state machine's blob) and the applied state machine with
 * its applied index. Every raft update that must be persisted — and every update that
 * hands out committed entries — becomes ONE pending atomic write holding, in the order
 * raft.h's rule 3 prescribes: a snapshot to install, the log change (truncate, append),
 * the hard state, the committed entries to apply (with the applied index), and a
 * snapshot to save. This is the single-fsync design of research consensus.md §7.2: log
 * append and state-machine apply land together or not at all, so after any crash the
 * durable applied prefix is a prefix of the durable log.
 *
 * Writes complete in submission order after a per-seed latency (with an optional slow
 * tail). A crash lands a prefix of the pending writes — all of them, or, when the seed
 * enables "lost unsynced writes", a random prefix possibly empty — and discards the
 * rest; a write is never torn. The node's in-memory ("live") view is the durable image
 * with every pending write applied; node.c maintains it alongside.
 */
#ifndef ASPEN_SIM_DISK_H
#define ASPEN_SIM_DISK_H

#include "base/rand.h"
#include "raft/raft.h"
#include "sim/model.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct packet;

/* A log with owned entries: indexes first .. first + n - 1. */
struct disk_log {
    raft_index first;
    struct raft_entry *v; /* owned, and so is each entry's data */
    size_t n, cap;
};

/* The durable image. */
struct disk_image {
    struct raft_hard_state hs;
    struct raft_snapshot_meta snap; /* index 0: none yet */
    uint8_t *snap_blob;             /* owned; NULL: the initial state */
    size_t snap_len;
    struct disk_log log; /* entries snap.index + 1 .. */
    void *sm;            /* owned: the applied state machine (disk->ops) */
    raft_index applied;
};

/* A client answer that goes out when the write that applied its operation is durable. */
struct disk_reply {
    uint8_t client;
    uint64_t op_id;
    raft_index index;
    struct sm_result res;
};

/* One pending atomic write. All pointers are owned by the write. */
struct disk_write {
    uint64_t done_ns; /* set by disk_submit */
    bool must_persist;
    raft_index persist_index;
    raft_term persist_term;
    bool has_install;
    struct raft_snapshot_meta install;
    uint8_t *install_blob;
    size_t install_len;
    struct raft_entry *entries; /* each entry's data owned too */
    size_t n_entries;
    bool has_hs;
    struct raft_hard_state hs;
    struct raft_entry *committed; /* each entry's data owned too */
    size_t n_committed;
    bool has_save; /* save a snapshot taken from the state machine */
    struct raft_snapshot_meta save;
    uint8_t *save_blob;
    size_t save_len;
    struct packet **msgs; /* after_persist messages, sent on completion */
    size_t n_msgs;
    struct disk_reply *replies;
    size_t n_replies;
    bool needs_sync;  /* false: only an ordering barrier, no latency */
    bool grants_vote; /* shell bookkeeping: msgs include a vote grant */
};

struct disk_params {
    uint64_t latency_min_ns;
    uint64_t latency_mean_ns;
    uint32_t slow_permille; /* chance a write hits the slow tail */
    uint32_t slow_factor;   /* the slow tail: up to this many times the mean */
    bool lose_unsynced;     /* a crash lands only a random prefix of pending writes */
};

struct disk {
    struct disk_image durable;
    struct disk_write **q; /* owned ring of pending writes, oldest at head */
    size_t head, n, cap;
    uint64_t last_done_ns;
    struct disk_params p;
    const struct sm_ops *ops; /* the state machine kept in durable.sm */
    struct rng rng;
    uint64_t writes_done, writes_lost;
    char error[160]; /* why the last call returned ASPEN_E_INVALID */
};

/* An empty disk (a brand-new member: all zero) holding an empty state machine of `ops`.
 * 0 or ASPEN_E_NOMEM; disk_release frees it either way. */
int disk_init(struct disk *d, const struct disk_params *p, const struct sm_ops *ops, uint64_t seed);

/* Makes the durable image a founding member's initial state (raft_bootstrap's boot
 * record: its hard state and log). 0 or ASPEN_E_NOMEM. */
int disk_bootstrap(struct disk *d, const struct raft_boot *boot);

/* Frees everything, pending writes included. */
void disk_release(struct disk *d);

/* The boot state for raft_create: entries are borrowed from the durable log and stay
 * valid until the next disk call. */
void disk_boot(const struct disk *d, struct raft_boot *boot);

/* Queues w (ownership passes to the disk) and returns its completion time, never
 * earlier than the previous write's. 0, ASPEN_E_FULL or ASPEN_E_NOMEM (then w is still
 * the caller's). */
int disk_submit(struct disk *d, struct disk_write *w, uint64_t now_ns);

/* Completes the oldest pending write: applies it to the durable image and hands it back
 * (the caller sends its messages and replies, then disk_write_free). 0, or
 * ASPEN_E_INVALID when the write breaks the persistence contract (a hole in the log, an
 * apply beyond the durable log, a truncation below the applied index...) — described in
 * d->error — or ASPEN_E_NOT_FOUND when nothing is pending. */
int disk_complete(struct disk *d, struct disk_write **out);

/* The process crashed: a prefix of the pending writes lands (all of them unless
 * lose_unsynced), the rest are discarded. Returns how many landed, or a negative code
 * as disk_complete. */
int disk_crash(struct disk *d, size_t *landed);

/* The oldest pending write, or NULL. */
static inline const struct disk_write *disk_head(const struct disk *d)
{
    return d->n ? d->q[d->head] : NULL;
}

/* Frees a write and everything it owns (packets included). */
void disk_write_free(struct disk_write *w);

/* Owned copies of entries (data included). NULL on allocation failure (or n == 0). */
struct raft_entry *disk_entries_dup(const struct raft_entry *src, size_t n);
void disk_entries_free(struct raft_entry *v, size_t n);

/* Log helpers, shared with the live view. */
raft_index disk_log_last(const struct disk_log *l);
const struct raft_entry *disk_log_at(const struct disk_log *l, raft_index index);

#endif
