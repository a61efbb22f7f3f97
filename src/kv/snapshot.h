/*
 * The snapshot stream: the whole KV state machine state as a sequence of checksummed
 * chunks, for sending a snapshot to a follower that is too far behind for the log, and
 * for installing it there atomically.
 *
 * A stream is a HEADER chunk (format version and the Raft snapshot meta: index, term,
 * configuration, encoded by raft_snapshot_meta_encode), DATA chunks holding the records
 * of the KV's tables in table and key order, then a TRAILER chunk (record count, DATA
 * payload bytes, BLAKE3 of all DATA payloads). The streamed tables are STORE_T_KV_REV,
 * STORE_T_KV_INDEX, STORE_T_LEASE, STORE_T_LEASE_KEY, STORE_T_CLUSTER (the cluster
 * registry) and, last, the STORE_T_META records whose key starts with "kv." (the KV's own
 * meta: revisions, applied index, cluster id); the Raft log and the Raft records of
 * STORE_T_META are not part of it.
 *
 * Chunk layout (integers big-endian):
 *   offset 0  u8[4]  magic "ASNP"
 *          4  u8     version (KV_SNAPSHOT_VERSION)
 *          5  u8     kind (enum kv_snapshot_kind)
 *          6  be32   sequence number: 0 for the header, then 1, 2, ...
 *         10  be32   payload length
 *         14  ...    payload
 *        end  be32   CRC-32C of every byte before it
 * HEADER payload: be32 format version, then the snapshot meta's encoding.
 * DATA payload: records, none split across chunks: u8 table, be32 key length, key,
 *   be32 value length, value.
 * TRAILER payload: be64 record count, be64 DATA payload bytes, 32-byte BLAKE3.
 *
 * A DATA chunk's payload stays within ASPEN_SNAPSHOT_CHUNK_BYTES unless a single record
 * is larger (a value of up to ~1.5 MiB); then that record travels alone, and no chunk
 * exceeds ASPEN_SNAPSHOT_CHUNK_MAX_BYTES. A stream has no count limit: only its size is
 * bounded, by ASPEN_MAX_SNAPSHOT_BYTES.
 *
 * Installing: kv_snapshot_reader_begin clears the streamed tables and meta records in
 * the caller's write transaction, _chunk checks and writes each chunk, _end checks the
 * trailer. On any error the caller aborts the transaction, so nothing is installed; on
 * success the caller resets the Raft log to the snapshot's index in the same transaction
 * and commits, so the install is atomic.
 */
#ifndef ASPEN_KV_SNAPSHOT_H
#define ASPEN_KV_SNAPSHOT_H

#include "base/buf.h"
#include "base/hash.h"
#include "base/slice.h"
#include "raft/raft.h"
#include "storage/store.h"

#include <stdbool.h>
#include <stdint.h>

#define KV_SNAPSHOT_VERSION        1
#define KV_SNAPSHOT_FORMAT         1 /* the HEADER's record format version */
#define KV_SNAPSHOT_HEADER_BYTES   14
#define KV_SNAPSHOT_OVERHEAD_BYTES (KV_SNAPSHOT_HEADER_BYTES + 4)
#define KV_SNAPSHOT_TRAILER_BYTES  (8 + 8 + HASH_BYTES)

enum kv_snapshot_kind {
    KV_SNAPSHOT_HEADER = 1,
    KV_SNAPSHOT_DATA = 2,
    KV_SNAPSHOT_TRAILER = 3,
};

/* One chunk, decoded. payload points into the decoded bytes (borrowed). */
struct kv_snapshot_chunk {
    uint8_t kind; /* enum kv_snapshot_kind */
    uint32_t seq;
    struct slice payload;
};

/* Decodes exactly data's bytes as one chunk, checking length, magic, version, kind and
 * CRC (not the payload's contents nor the sequence). ASPEN_E_MALFORMED (short, long,
 * bad magic, version, kind, or a payload over ASPEN_SNAPSHOT_CHUNK_MAX_BYTES),
 * ASPEN_E_CORRUPT (CRC mismatch). */
int kv_snapshot_chunk_decode(struct slice data, struct kv_snapshot_chunk *out);

/* ---------------------------------------------------------------------------------------
 * Writer
 * ------------------------------------------------------------------------------------- */

struct kv_snapshot_writer {
    struct store_txn *txn;          /* borrowed: a read transaction, open until _release */
    struct raft_snapshot_meta meta; /* copied */
    struct store_cursor *cur;       /* owned; the table being streamed */
    uint32_t seq;                   /* of the next chunk */
    uint8_t phase;                  /* internal */
    uint8_t table;                  /* index into the streamed tables */
    bool has_record;                /* rec_key/rec_val hold a record not yet written */
    struct slice rec_key, rec_val;  /* point into txn */
    uint64_t records, bytes;        /* DATA records and payload bytes so far */
    struct hash_state hash;         /* over DATA payloads */
    int failed;                     /* sticky error */
};

/* Prepares a stream of txn's state with the given meta (copied). txn is borrowed and
 * must stay open until kv_snapshot_writer_release. Allocates nothing. */
void kv_snapshot_writer_init(struct kv_snapshot_writer *w, struct store_txn *txn,
                             const struct raft_snapshot_meta *meta);

/* Writes the next chunk into chunk (cleared first; its maximum must allow
 * ASPEN_SNAPSHOT_CHUNK_MAX_BYTES). Returns 0, ASPEN_E_NOT_FOUND after the trailer (the
 * stream is complete), ASPEN_E_TOO_LARGE (a record over ASPEN_SNAPSHOT_RECORD_MAX_BYTES,
 * the stream over ASPEN_MAX_SNAPSHOT_BYTES, or chunk's maximum too small),
 * ASPEN_E_INVALID (meta's configuration), or a storage error; errors are sticky. */
int kv_snapshot_writer_next(struct kv_snapshot_writer *w, struct buf *chunk);

/* Closes the writer's cursor. The transaction stays the caller's. */
void kv_snapshot_writer_release(struct kv_snapshot_writer *w);

/* ---------------------------------------------------------------------------------------
 * Reader / installer
 * ------------------------------------------------------------------------------------- */

struct kv_snapshot_reader {
    struct store_txn *txn; /* borrowed: the write transaction installing the snapshot */
    uint32_t next_seq;
    uint8_t phase; /* internal */
    struct raft_snapshot_meta meta;
    uint64_t records, bytes;
    struct hash_state hash;
    uint8_t last_table; /* the last record's table and key: records must ascend */
    uint32_t last_key_len;
    uint8_t last_key[STORE_MAX_KEY];
    int failed; /* sticky error */
};

/* Starts installing into write transaction txn (borrowed until _end): clears the
 * streamed tables and the "kv." meta records. Storage errors are returned.
 * txn NULL checks a stream without installing it: every check below runs (framing,
 * order, syntax, size, trailer), nothing is written. A receiver runs such a check over
 * the chunks as they arrive, so that what it later installs is known to be whole. */
int kv_snapshot_reader_begin(struct kv_snapshot_reader *r, struct store_txn *txn);

/* Checks one chunk (in stream order) and writes its records. ASPEN_E_MALFORMED (framing,
 * sequence, kind order, record syntax, a table not streamed, a meta key without "kv.",
 * records out of order), ASPEN_E_CORRUPT (CRC), ASPEN_E_TOO_LARGE (over
 * ASPEN_MAX_SNAPSHOT_BYTES), or a storage error. Errors are sticky: the caller aborts. */
int kv_snapshot_reader_chunk(struct kv_snapshot_reader *r, struct slice chunk);

/* Checks that the stream ended with a valid trailer (count, bytes and BLAKE3 of what was
 * installed) and returns the header's meta. ASPEN_E_MALFORMED (no trailer yet),
 * ASPEN_E_CORRUPT (trailer mismatch), or the sticky error. */
int kv_snapshot_reader_end(struct kv_snapshot_reader *r, struct raft_snapshot_meta *meta_out);

#endif /* ASPEN_KV_SNAPSHOT_H */
