/*
 * The stable binary encoding of raft messages (between nodes) and of log entries (in
 * storage).
 *
 * Both encodings start with a magic number and a version byte, so a peer or a store of a
 * different format is recognized instead of misread, and end with a CRC-32C over every
 * byte before it, so damage in transit or at rest is detected rather than applied. All
 * integers are big-endian. Decoders treat their input as hostile: every length is checked
 * against the remaining input and against the limits in base/constants.h before it is
 * used, and every value the raft core relies on is validated after decoding (the same
 * rules are asserted when encoding, so a node never sends what its peers would refuse).
 *
 * Message frame, version 1 (offsets in bytes):
 *
 *      0   2  magic        0xA5 0x52 ('R': a raft message)
 *      2   1  version      1
 *      3   1  type         enum raft_msg_type
 *      4   4  frame_len    bytes in the whole frame, from the magic through the CRC
 *      8   1  flags        RAFT_MSG_F_* (bits not in RAFT_MSG_FLAGS_KNOWN are refused)
 *      9   1  reject       0 or 1
 *     10   8  from         != 0
 *     18   8  to           != 0
 *     26   8  term
 *     34   8  index
 *     42   8  log_term
 *     50   8  commit
 *     58   8  reject_hint
 *     66   8  context
 *     74   4  n_entries    <= ASPEN_RAFT_MAX_ENTRIES_PER_MSG; 0 unless type is APPEND
 *     78      body, by type:
 *               APPEND    n_entries times, 21 + len bytes each:
 *                           term u64, index u64, type u8, len u32, data[len]
 *               SNAPSHOT  the snapshot meta, 33 + 8 × (number of ids) bytes:
 *                           index u64, term u64,
 *                           n_voters u32, voters u64[n_voters],
 *                           n_outgoing u32, outgoing u64[n_outgoing],
 *                           n_learners u32, learners u64[n_learners],
 *                           n_learners_next u32, learners_next u64[n_learners_next],
 *                           auto_leave u8 (0 or 1)
 *               others    nothing
 *      frame_len - 4   4  CRC-32C of bytes [0, frame_len - 4)
 *
 * The 8-byte prelude (magic, version, type, frame_len) lets a stream reader learn the
 * frame's size, and refuse an oversized one, before buffering it (raft_msg_frame_len),
 * and lets the decoder verify the checksum before it interprets any other field: a
 * damaged byte outside the prelude is always reported as ASPEN_E_CORRUPT rather than as
 * whatever nonsense the damage happens to spell.
 *
 * Entry record, version 1 (storage; the entries inside a message frame are covered by
 * the frame's CRC instead):
 *
 *      0   2  magic        0xA5 0x45 ('E': a log entry)
 *      2   1  version      1
 *      3   1  type         enum raft_entry_type
 *      4   8  term         >= 1
 *     12   8  index        >= 1
 *     20   4  len          <= ASPEN_MAX_REQUEST_BYTES
 *     24 len  data
 *     24 + len   4  CRC-32C of bytes [0, 24 + len)
 *
 * after_persist is local to the sender and not on the wire: decoding yields false. The
 * snapshot meta travels only on SNAPSHOT messages and entries only on APPEND; on other
 * types they decode as zero.
 */
#ifndef ASPEN_RAFT_CODEC_H
#define ASPEN_RAFT_CODEC_H

#include "base/buf.h"
#include "base/mem.h"
#include "raft/raft.h"

#include <stddef.h>
#include <stdint.h>

#define RAFT_CODEC_MAGIC0         0xA5
#define RAFT_CODEC_MAGIC_MSG      0x52 /* 'R' */
#define RAFT_CODEC_MAGIC_ENTRY    0x45 /* 'E' */
#define RAFT_CODEC_VERSION        1
#define RAFT_MSG_PRELUDE_BYTES    8  /* magic, version, type, frame_len */
#define RAFT_MSG_HEADER_BYTES     78 /* everything before the body */
#define RAFT_MSG_ENTRY_OVERHEAD   21 /* per entry in an APPEND body, besides its data */
#define RAFT_CODEC_CRC_BYTES      4
#define RAFT_MSG_MIN_FRAME_BYTES  (RAFT_MSG_HEADER_BYTES + RAFT_CODEC_CRC_BYTES)
#define RAFT_ENTRY_HEADER_BYTES   24 /* an entry record before its data */
#define RAFT_ENTRY_OVERHEAD_BYTES (RAFT_ENTRY_HEADER_BYTES + RAFT_CODEC_CRC_BYTES)

/* The message flags this version knows; any other bit set is refused. */
#define RAFT_MSG_FLAGS_KNOWN RAFT_MSG_F_TRANSFER

/* ---------------------------------------------------------------------------------------
 * Messages
 * ------------------------------------------------------------------------------------- */

/* Checks m against every rule a decoded message must satisfy (the layout comment above
 * and raft_msg_decode's list): 0, ASPEN_E_MALFORMED (a broken rule), ASPEN_E_TOO_LARGE (a
 * count, an entry or the whole frame over its limit) or ASPEN_E_INVALID (n_entries > 0
 * with entries NULL, or an entry with len > 0 and data NULL: not representable on the
 * wire, only in memory). Pure; encoding asserts it returns 0. */
int raft_msg_validate(const struct raft_msg *m);

/* Bytes raft_msg_encode will append for m (the whole frame, CRC included). m must hold
 * counts within their limits (asserted). */
size_t raft_msg_encoded_size(const struct raft_msg *m);

/* Appends m's frame to out. m must be valid (raft_msg_validate: asserted — sending a
 * message the peer must refuse is a bug in the sender). Borrows m. Returns 0,
 * ASPEN_E_TOO_LARGE (out's maximum would be exceeded) or ASPEN_E_NOMEM; on failure out is
 * unchanged. */
int raft_msg_encode(const struct raft_msg *m, struct buf *out);

/* Reads the prelude of a frame (the first RAFT_MSG_PRELUDE_BYTES) and stores the frame's
 * total length in *frame_len, for a reader that must know how much to buffer. Returns 0,
 * ASPEN_E_TRUNCATED (fewer than RAFT_MSG_PRELUDE_BYTES bytes), ASPEN_E_MALFORMED (wrong
 * magic, or a length below RAFT_MSG_MIN_FRAME_BYTES), ASPEN_E_UNSUPPORTED (a version other
 * than RAFT_CODEC_VERSION: the peer runs a format we do not know) or ASPEN_E_TOO_LARGE
 * (longer than ASPEN_RAFT_MAX_MSG_FRAME_BYTES). */
int raft_msg_frame_len(const uint8_t *data, size_t len, size_t *frame_len);

/* Decodes exactly one frame occupying all of data[0..len) into *out.
 *
 * Lifetimes: on success out->entries (NULL when n_entries == 0) is an array allocated
 * from arena a and lives until the arena is reset or released; each entry's data points
 * into `data` (NULL when its len is 0) and lives as long as the caller keeps the input
 * buffer. The data is borrowed: the pointer is non-const only because struct raft_entry
 * also holds owned data; do not write through it. Everything else is copied into *out.
 * Decoding takes nothing from the arena unless it succeeds.
 *
 * Errors (*out is zeroed on any failure), in the order they are checked:
 *   everything raft_msg_frame_len returns, for the prelude;
 *   ASPEN_E_TRUNCATED  the input is shorter than frame_len;
 *   ASPEN_E_MALFORMED  the input is longer than frame_len (trailing bytes);
 *   ASPEN_E_CORRUPT    the CRC does not match;
 *   then, on checksummed content:
 *   ASPEN_E_TOO_LARGE  n_entries > ASPEN_RAFT_MAX_ENTRIES_PER_MSG, an entry's len >
 *                      ASPEN_MAX_REQUEST_BYTES, a configuration list longer than
 *                      ASPEN_MAX_VOTERS (learners: ASPEN_MAX_MEMBERS), or the arena's
 *                      own limit refused the entries array;
 *   ASPEN_E_MALFORMED  unknown message or entry type, unknown flag bits, reject not 0/1,
 *                      from or to 0, entries on a type other than APPEND, entry indexes
 *                      not consecutive from index + 1, entry terms not within
 *                      [max(log_term, 1), term] and non-decreasing, counts that claim
 *                      more bytes than the frame holds, bytes left between the body and
 *                      the CRC, or a bad configuration (below);
 *   ASPEN_E_NOMEM      the arena could not allocate.
 * A configuration is refused when an id is 0 or repeated within a list, a learner is
 * also a voter (incoming or outgoing), a member of learners_next is not an outgoing voter
 * or is an incoming voter, or outside a joint configuration (n_outgoing == 0)
 * learners_next is not empty or auto_leave is set (etcd-raft's confchange invariants), or
 * auto_leave is not 0/1. */
int raft_msg_decode(const uint8_t *data, size_t len, struct raft_msg *out, struct arena *a);

/* ---------------------------------------------------------------------------------------
 * Entry records (storage)
 * ------------------------------------------------------------------------------------- */

/* Bytes raft_entry_encode will append: RAFT_ENTRY_OVERHEAD_BYTES + e->len. */
size_t raft_entry_encoded_size(const struct raft_entry *e);

/* Appends e's record to out. e must be valid — known type, term and index >= 1, len <=
 * ASPEN_MAX_REQUEST_BYTES, data non-NULL when len > 0 (asserted). Borrows e. Returns 0,
 * ASPEN_E_TOO_LARGE (out's maximum) or ASPEN_E_NOMEM; on failure out is unchanged. */
int raft_entry_encode(const struct raft_entry *e, struct buf *out);

/* Decodes exactly one record occupying all of data[0..len) into *out; out->data points
 * into `data` (borrowed, as for messages; NULL when len is 0). Errors (*out is zeroed),
 * in the order they are checked: ASPEN_E_TRUNCATED (shorter than the 24-byte header),
 * ASPEN_E_MALFORMED (wrong magic), ASPEN_E_UNSUPPORTED (unknown version),
 * ASPEN_E_TOO_LARGE (len > ASPEN_MAX_REQUEST_BYTES), ASPEN_E_TRUNCATED (shorter than the
 * header's len says), ASPEN_E_MALFORMED (longer: trailing bytes), ASPEN_E_CORRUPT (CRC
 * mismatch), ASPEN_E_MALFORMED (unknown type, term 0 or index 0). */
int raft_entry_decode(const uint8_t *data, size_t len, struct raft_entry *out);

/* ---------------------------------------------------------------------------------------
 * Snapshot meta (index, term, configuration) for storage records and snapshot streams.
 * The bytes are the same as inside a SNAPSHOT message; callers add their own framing and
 * checksum.
 * ------------------------------------------------------------------------------------- */

size_t raft_snapshot_meta_encoded_size(const struct raft_snapshot_meta *m);

/* Appends m's encoding to out. ASPEN_E_INVALID (inconsistent configuration),
 * ASPEN_E_TOO_LARGE, ASPEN_E_NOMEM; on failure out is unchanged. */
int raft_snapshot_meta_encode(const struct raft_snapshot_meta *m, struct buf *out);

/* Decodes exactly data[0..len). ASPEN_E_MALFORMED (short, long or inconsistent),
 * ASPEN_E_TOO_LARGE (a list over its limit). */
int raft_snapshot_meta_decode(const uint8_t *data, size_t len, struct raft_snapshot_meta *out);

#endif
