/*
 * The Raft's durable state, as records in a store transaction: the log, the hard state
 * (term, vote, commit) and the snapshot meta. Pure and backend-agnostic: everything goes
 * through storage/store.h, so the simulator's memory store and the LMDB store hold the
 * same bytes.
 *
 * Layout (see docs/ARCHITECTURE.md, "Storage layout"):
 *
 *   STORE_T_LOG   be64(index) -> entry record (raft/codec.h: magic, version, type, term,
 *                 index, len, data, CRC-32C)
 *   STORE_T_META  "raft.hard_state" -> format u8 (1), term u64, vote u64, commit u64,
 *                                      CRC-32C u32 of the bytes before it
 *                 "raft.snapshot"   -> format u8 (1), snapshot meta (raft/codec.h's
 *                                      raft_snapshot_meta_encode: index, term, config),
 *                                      CRC-32C u32 of the bytes before it
 *
 * Big-endian index keys sort in index order, so the log is a contiguous key range and
 * truncation is one cursor walk. Every record carries its own checksum: raftlog_load
 * verifies all of them and refuses (ASPEN_E_CORRUPT with a message naming the record)
 * rather than start a node on a log that silently lost or changed acknowledged entries.
 *
 * Who calls what: the shell that persists a raft_update runs, in ONE write transaction,
 * raftlog_install_snapshot (if the update installs one), raftlog_append (if it has
 * entries) and raftlog_set_hard_state (if it changed), then commits with sync before
 * sending the messages that wait for persistence.
 */
#ifndef ASPEN_STORAGE_RAFTLOG_H
#define ASPEN_STORAGE_RAFTLOG_H

#include "raft/raft.h"
#include "storage/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RAFTLOG_FORMAT           1
#define RAFTLOG_KEY_HARD_STATE   "raft.hard_state"
#define RAFTLOG_KEY_SNAPSHOT     "raft.snapshot"
#define RAFTLOG_HARD_STATE_BYTES (1 + 8 + 8 + 8 + 4)
#define RAFTLOG_ERROR_BYTES      160

/* Appends entries[0..n) (n >= 1, consecutive indexes, non-decreasing terms: asserted)
 * to the log of write transaction t, after deleting every stored entry with index >=
 * entries[0].index (a leader's log overrides a follower's conflicting suffix, §5.3).
 * entries[0].index must be at most one past the last stored index and above the
 * snapshot's index — a truncation into the snapshot would lose committed state (both
 * asserted). Borrows entries. Errors: the store's (ASPEN_E_FULL, ...), ASPEN_E_CORRUPT (the
 * snapshot record is damaged), ASPEN_E_NOMEM. On error the transaction must be aborted. */
int raftlog_append(struct store_txn *t, const struct raft_entry *entries, size_t n);

/* Records the hard state. Errors: the store's. */
int raftlog_set_hard_state(struct store_txn *t, const struct raft_hard_state *hs);

/* Deletes log entries with index <= upto, which must not exceed the snapshot's index
 * (asserted: the entries after the snapshot are the log). At most
 * ASPEN_STORAGE_MAX_COMPACT_ENTRIES per call, so one compaction never becomes an
 * unbounded transaction: *is_done is false when entries <= upto remain (call again in a
 * later transaction). Errors: the store's, ASPEN_E_CORRUPT. */
int raftlog_compact(struct store_txn *t, raft_index upto, bool *is_done);

/* Records a snapshot's meta (meta->index >= the current snapshot's index, asserted) and
 * drops the log it replaces: if the stored entry at meta->index has meta->term, the
 * entries after it are a valid suffix and stay (only entries <= meta->index go, at most
 * ASPEN_STORAGE_MAX_COMPACT_ENTRIES of them: raftlog_compact removes any rest, and
 * raftlog_load never reads below the snapshot);
 * otherwise the whole log goes, since entries that disagree with the snapshot at its
 * index may disagree after it too (hashicorp/raft#704). Errors: the store's,
 * ASPEN_E_INVALID (an inconsistent configuration), ASPEN_E_CORRUPT. */
int raftlog_install_snapshot(struct store_txn *t, const struct raft_snapshot_meta *meta);

/* What raftlog_load reads back. */
struct raftlog_state {
    /* hard_state and snapshot are zero when never written. entries point into `owned`;
     * applied is left 0: the caller fills it from the state machine's applied index. */
    struct raft_boot boot;
    struct raft_entry *owned; /* owned: n_entries entries, each with owned data */
    size_t n_owned;
    size_t cap_owned;
    char error[RAFTLOG_ERROR_BYTES]; /* why load failed ("" on success) */
};

/* Reads the hard state, the snapshot meta and every entry after the snapshot's index
 * into *out (initialized here; release it with raftlog_state_release even on failure).
 * Verifies each record's checksum and format, that the entries' indexes are consecutive
 * from snapshot.index + 1 and their terms non-decreasing (and not below the snapshot's),
 * and that hard_state.commit does not exceed the last index (a commit beyond the log
 * means acknowledged entries are missing). Errors: ASPEN_E_CORRUPT with out->error
 * saying which record and why ("log entry 1234: checksum mismatch", "log gap: 1200
 * followed by 1202"); the store's errors; ASPEN_E_NOMEM. */
int raftlog_load(struct store_txn *t, struct raftlog_state *out);

/* Frees what raftlog_load allocated; *s may be loaded again. */
void raftlog_state_release(struct raftlog_state *s);

/* ---- The meta records' codecs (exposed for the fuzzer and tests) ---- */

/* Writes the RAFTLOG_HARD_STATE_BYTES record of hs into out. */
void raftlog_hard_state_encode(const struct raft_hard_state *hs,
                               uint8_t out[RAFTLOG_HARD_STATE_BYTES]);

/* Decodes exactly data[0..len). Errors, in the order checked: ASPEN_E_TRUNCATED (shorter
 * than a format byte and a CRC), ASPEN_E_UNSUPPORTED (unknown format), ASPEN_E_CORRUPT
 * (CRC mismatch), ASPEN_E_MALFORMED (wrong length). *out is zeroed on failure. */
int raftlog_hard_state_decode(const uint8_t *data, size_t len, struct raft_hard_state *out);

/* Appends the snapshot record of meta to out (a struct buf from base/buf.h). */
struct buf;
int raftlog_snapshot_encode(const struct raft_snapshot_meta *meta, struct buf *out);

/* Decodes exactly data[0..len). Errors as for the hard state, plus ASPEN_E_MALFORMED /
 * ASPEN_E_TOO_LARGE from the meta's own decoder, and ASPEN_E_MALFORMED for index or term
 * 0 (a stored snapshot stands for at least one applied entry). */
int raftlog_snapshot_decode(const uint8_t *data, size_t len, struct raft_snapshot_meta *out);

#endif /* ASPEN_STORAGE_RAFTLOG_H */
