/*
 * Snapshot transfer between nodes: how a leader sends its state machine to a follower
 * whose log it has compacted away, and how the follower installs it (thesis §5.1's
 * InstallSnapshot, with the data moved by the shell as raft.h's contract says).
 *
 * The transfer runs on its own protocol of the peer transport (ALPN "aspen/snap/1"), so
 * a snapshot's megabytes never queue in front of raft's heartbeats and votes.
 *
 * Sender (snap_send.c, the leader):
 *   - When the core emits RAFT_MSG_SNAPSHOT, the sender opens a read transaction. That
 *     transaction pins the state at its applied index A, which is at least the core's
 *     snapshot index: LMDB keeps the state, not old snapshots. The message's meta is
 *     rewritten to (A, term(A), configuration at A). Every committed entry up to A is
 *     equally a valid snapshot, and the follower's acknowledgement of A moves the
 *     leader's match past the snapshot it asked for.
 *   - kv/snapshot.h's writer turns that transaction into chunks on libuv's thread pool,
 *     so page faults never stall the loop. Chunks go out as CHUNK frames.
 *   - At most ASPEN_SNAPSHOT_WINDOW_CHUNKS chunks may be unacknowledged, and the
 *     transport's bounded queue (on_writable) paces the rest. This is flow control from
 *     disk to disk.
 *   - After the last chunk, a DONE frame carries the encoded SNAPSHOT message.
 *   - The follower's RESULT frame, a stall (ASPEN_SNAPSHOT_STALL_MS without progress),
 *     the peer's connection going down, or losing leadership ends the transfer. The core
 *     then hears RAFT_EVENT_SNAPSHOT_STATUS.
 *
 * Receiver (snap_recv.c, any node, one transfer at a time):
 *   - Each chunk is checked as it arrives by a kv_snapshot_reader without a transaction
 *     (framing, CRC, order, size, trailer digest). It is then appended to a spool file in
 *     the data dir with uv_fs writes, and acknowledged (ACK) once written.
 *   - On DONE, the SNAPSHOT message must name the same meta as the stream's header. The
 *     message is then stepped into the core like any received message. If the core
 *     installs it (update->has_snapshot), the shell's install job reads the spool in the
 *     storage thread. That job replaces the state machine's tables and resets the Raft
 *     log, in one transaction with the update's hard state.
 *   - When the job is durable (or the core needed nothing), a RESULT frame tells the
 *     sender, and the spool file is removed.
 *
 * A transfer that breaks anywhere is abandoned on both sides. The leader's core probes
 * again and sends a new snapshot if one is still needed: nothing is resumed, so no state
 * outlives a failure.
 *
 * Wire format of a frame (integers big-endian):
 *   u8 type, be64 transfer id, then by type:
 *     CHUNK  (1, sender→receiver): be32 chunk sequence (0 = the stream's HEADER), chunk
 *     DONE   (2, sender→receiver): the encoded RAFT_MSG_SNAPSHOT (raft/codec.h)
 *     ABORT  (3, sender→receiver): be32 reason (a negated error code)
 *     ACK    (4, receiver→sender): be32 chunks written so far
 *     RESULT (5, receiver→sender): be32 status (0: installed or not needed; else a
 *                                  negated error code)
 */
#ifndef ASPEN_NODE_SNAP_H
#define ASPEN_NODE_SNAP_H

#include "base/buf.h"
#include "base/slice.h"
#include "kv/snapshot.h"
#include "net/transport.h"
#include "raft/raft.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define NET_ALPN_SNAP "aspen/snap/1"

enum snap_frame_type {
    SNAP_CHUNK = 1,
    SNAP_DONE = 2,
    SNAP_ABORT = 3,
    SNAP_ACK = 4,
    SNAP_RESULT = 5,
};

#define SNAP_FRAME_HEADER_BYTES (1 + 8)

/* A decoded frame. body points into the decoded bytes (borrowed). */
struct snap_frame {
    uint8_t type; /* enum snap_frame_type */
    uint64_t id;
    uint32_t seq;      /* CHUNK: sequence; ACK: chunks written */
    int32_t code;      /* ABORT, RESULT: 0 or a negative error code */
    struct slice body; /* CHUNK: the chunk; DONE: the encoded message */
};

/* Appends f's encoding to out. ASPEN_E_INVALID (unknown type, or a positive code),
 * ASPEN_E_TOO_LARGE / ASPEN_E_NOMEM from the buffer. */
int snap_frame_encode(const struct snap_frame *f, struct buf *out);

/* Decodes exactly data as one frame. ASPEN_E_MALFORMED: short, unknown type, a body
 * where none belongs or none where one must be, a positive code, a CHUNK body over
 * ASPEN_SNAPSHOT_CHUNK_MAX_BYTES. The body's contents are the caller's to check. */
int snap_frame_decode(struct slice data, struct snap_frame *out);

/* ---- transfers (the node's side; snap_send.c and snap_recv.c) ---- */

struct node;

/* One outgoing transfer. Owned by the node's sends[] until finished; if a pool work item
 * is running when it finishes, the work's completion frees it. */
struct snap_send {
    struct node *n;
    raft_id to;
    uint8_t pk[NET_KEY_BYTES];
    uint64_t id;
    struct store_txn *txn; /* owned: the read transaction that pins the state */
    struct kv_snapshot_writer w;
    struct raft_msg msg; /* the core's SNAPSHOT message with the rewritten meta */
    uint32_t next_seq;   /* of the next chunk to produce */
    uint32_t acked;      /* chunks the receiver has written */
    bool producing;      /* a pool work item runs the writer */
    bool eof;            /* the writer has produced the trailer */
    bool done_sent;      /* DONE is queued: wait for RESULT */
    bool blocked;        /* the transport refused with BUSY: wait for on_writable */
    bool finished;       /* ended; freed when no work item runs */
    bool has_frame;      /* `frame` holds the next frame to hand to the transport */
    struct buf frame;    /* owned */
    struct buf chunk;    /* owned; the worker's output */
    int work_rc;
    uv_work_t work;
    uint64_t started_ms, progress_ms;
    uint64_t bytes; /* chunk bytes handed to the transport */
};

/* One incoming transfer. The node holds at most one (n->recv). */
struct snap_recv {
    bool done_received;  /* DONE arrived and matched: waiting for writes, then step */
    bool stepped;        /* the message was stepped: the spool is the core's now */
    bool install_queued; /* the core installs it: the shell's job reads the spool */
    uint8_t pk[NET_KEY_BYTES];
    raft_id from;
    uint64_t id;
    uint32_t next_seq;               /* next chunk expected */
    uint32_t written;                /* chunks written to the spool */
    uint64_t offset;                 /* spool bytes written or being written */
    uint64_t bytes;                  /* chunk bytes received */
    struct kv_snapshot_reader check; /* without a transaction: checks as chunks arrive */
    struct raft_msg msg;             /* DONE's message */
    uv_file fd;                      /* -1 until open */
    bool opening, writing, closing;
    struct snap_wbuf *wq_head, *wq_tail; /* owned: chunks waiting for the spool */
    uint32_t wq_len;
    uv_fs_t req;
    uint64_t progress_ms;
};

/* A chunk waiting to be written: a be32 length prefix, then the chunk. */
struct snap_wbuf {
    struct snap_wbuf *next;
    uint32_t seq;
    size_t len;
    uint8_t data[]; /* 4 + chunk bytes */
};

/* The spool file's name inside the data dir. */
#define SNAP_SPOOL_NAME "snapshot.recv"

/* Registers the protocol's handlers on the node's transport. */
int snap_register(struct node *n);

/* Leader: the core emitted m (RAFT_MSG_SNAPSHOT). Starts a transfer, or keeps the one
 * already running to m->to. A failure to start is reported to the core as a failed
 * status after the current step. */
void snap_send_start(struct node *n, const struct raft_msg *m);

/* Ends every outgoing transfer as failed (lost leadership, shutdown). */
void snap_send_cancel_all(struct node *n, int reason);

/* Ticks: a transfer without progress for ASPEN_SNAPSHOT_STALL_MS (or, once DONE is
 * sent, ASPEN_SNAPSHOT_INSTALL_TIMEOUT_MS) ends. */
void snap_send_tick(struct node *n);
void snap_recv_tick(struct node *n);

/* The receiver's answers and the transport's signals, routed by snap_recv.c's handler. */
void snap_send_on_ack(struct node *n, const uint8_t pk[NET_KEY_BYTES], const struct snap_frame *f);
void snap_send_on_result(struct node *n, const uint8_t pk[NET_KEY_BYTES],
                         const struct snap_frame *f);
void snap_send_on_writable(struct node *n, const uint8_t pk[NET_KEY_BYTES]);
void snap_send_on_peer_down(struct node *n, const uint8_t pk[NET_KEY_BYTES], int reason);

/* The spool of the incoming transfer (NULL if none); borrowed from the transfer. */
const char *snap_recv_spool_path(const struct node *n);

/* Receiver: the install job for the spool is durable (rc 0) or the core needed no
 * install (the caller passes 0 too). Tells the sender and removes the spool. */
void snap_recv_finish(struct node *n, int rc);

/* Ends the incoming transfer, if any (shutdown). */
void snap_recv_cancel(struct node *n, int reason);

/* Storage thread: installs the spool at path into t (kv tables and "kv." meta), checking
 * that its meta equals want. ASPEN_E_CORRUPT / ASPEN_E_MALFORMED if the file does not
 * hold that stream, ASPEN_E_IO if it cannot be read, or a storage error. */
int snap_install_spool(struct store_txn *t, const char *path,
                       const struct raft_snapshot_meta *want);

/* Are a and b the same meta (index, term and configuration)? */
bool snap_meta_equal(const struct raft_snapshot_meta *a, const struct raft_snapshot_meta *b);

#endif /* ASPEN_NODE_SNAP_H */
