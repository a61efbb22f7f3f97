/*
 * constants.h — every limit of the Aspen system, in one place.
 *
 * Each constant says why it has its value; relations between them are checked at
 * compile time below. Code never hard-codes a limit that belongs here. Later modules
 * add their sections. Starting points are the Rust original's `aspen-constants`
 * (shared/research/aspen-original.md §3.6), widened where etcd v3 compatibility needs it.
 *
 * Units are in the names: _BYTES, _MS, _NS, _COUNT.
 */
#ifndef ASPEN_BASE_CONSTANTS_H
#define ASPEN_BASE_CONSTANTS_H

#include <stdint.h>

#define ASPEN_KIB (UINT64_C(1024))
#define ASPEN_MIB (UINT64_C(1024) * ASPEN_KIB)
#define ASPEN_GIB (UINT64_C(1024) * ASPEN_MIB)

/* ---------------------------------------------------------------------------------------
 * Keys and values (KV API)
 * ------------------------------------------------------------------------------------- */

/* The original capped keys at 1 KiB; etcd has no key limit of its own beyond the request
 * size, and etcd clients do use longer keys (deep paths, encoded ids). 64 KiB keeps a key
 * comfortably inside one LMDB page chain while accepting anything etcd users send in
 * practice. LMDB's own default key limit (511 bytes) is lifted by how the storage module
 * lays keys out (issue 4). */
#define ASPEN_MAX_KEY_BYTES (64 * ASPEN_KIB)

/* Largest value stored under one key: the original's 1 MiB. etcd accepts a value up to
 * its request limit (1.5 MiB minus overhead), so we allow the same. */
#define ASPEN_MAX_VALUE_BYTES (ASPEN_MAX_REQUEST_BYTES - ASPEN_MAX_KEY_BYTES - 4 * ASPEN_KIB)

/* etcd's --max-request-bytes default is 1.5 MiB; a larger etcd request is refused, and so
 * is ours, so clients see the same limit on both. */
#define ASPEN_MAX_REQUEST_BYTES (3 * ASPEN_MIB / 2)

/* Operations in one transaction (compare + success + failure each). etcd's default
 * --max-txn-ops is 128; the original allowed 100 keys per SetMulti. 128 serves both. */
#define ASPEN_MAX_TXN_OPS 128

/* Nesting levels of Txn inside Txn (etcd allows nesting without a documented bound; we
 * bound the recursion of apply and decode). */
#define ASPEN_MAX_TXN_DEPTH 8

/* Keys in one BatchRead/BatchWrite/ConditionalBatch (original: MAX_SETMULTI_KEYS=100;
 * raised to match the txn limit so a batch is never more restricted than a txn). */
#define ASPEN_MAX_BATCH_KEYS ASPEN_MAX_TXN_OPS

/* ScanKeys page size: default and hard maximum (original's values). */
#define ASPEN_SCAN_DEFAULT_LIMIT 1000
#define ASPEN_SCAN_MAX_LIMIT     10000

/* Opaque continuation token for ScanKeys: it carries the last key plus a revision and a
 * MAC, so it must hold a full key. */
#define ASPEN_MAX_SCAN_TOKEN_BYTES (ASPEN_MAX_KEY_BYTES + 128)

/* Leases: etcd's minimum TTL is effectively its election timeout; ours is 1 s below
 * which a lease could expire during one leader change. Maximum: etcd's 9e10 s is
 * absurd; a year is ample and keeps expiry arithmetic far from overflow. */
#define ASPEN_LEASE_MIN_TTL_MS   1000
#define ASPEN_LEASE_MAX_TTL_MS   (UINT64_C(365) * 24 * 3600 * 1000)
#define ASPEN_MAX_LEASES         (1u << 20)
#define ASPEN_MAX_KEYS_PER_LEASE (1u << 20)

/* The cluster registry (kv/cluster.h). Member records: every member plus nodes being
 * added or removed. Names and addresses are short strings; client URLs a comma list.
 * Join credentials are few (an admin makes one per joining node); expired ones are
 * dropped a few at a time by later CRED_ADD entries, so no entry does unbounded work. */
#define ASPEN_MAX_MEMBER_RECORDS    (2 * ASPEN_MAX_MEMBERS)
#define ASPEN_MAX_MEMBER_NAME_BYTES 64
#define ASPEN_MAX_MEMBER_ADDR_BYTES 300
#define ASPEN_MAX_MEMBER_URLS_BYTES 1024
#define ASPEN_MAX_JOIN_CREDENTIALS  1024
#define ASPEN_CREDENTIAL_GC_PER_ADD 16

/* Watches per node, and events queued per watcher: a watcher whose queue cannot take a
 * whole revision falls behind ("unsynced") and is caught up later from history (etcd's
 * unsynced watchers) instead of growing its queue; if that history is compacted away
 * meanwhile, it is canceled with the compact revision (kv/watch.c). */
#define ASPEN_MAX_WATCHERS          100000
#define ASPEN_WATCH_EVENT_QUEUE_MAX 4096

/* ---------------------------------------------------------------------------------------
 * RPC and network
 * ------------------------------------------------------------------------------------- */

/* Largest gRPC message we accept or send. The original's MAX_RPC_MESSAGE_SIZE was 10 MiB;
 * the issue asks for 16 MiB so snapshot chunks and large range responses fit in one. It
 * must hold any request plus framing. */
#define ASPEN_MAX_RPC_MESSAGE_BYTES (16 * ASPEN_MIB)

/* Range responses are cut at this size (etcd's clients expect `more` for the rest).
 * Each kv is counted as its key, its value and ASPEN_RANGE_KV_OVERHEAD_BYTES for the
 * rest of its encoding (four varint revisions, lengths and tags: under 64 bytes), so the
 * encoded response stays inside one RPC message. A single kv always fits. */
#define ASPEN_MAX_RANGE_RESPONSE_BYTES (ASPEN_MAX_RPC_MESSAGE_BYTES - ASPEN_MIB)
#define ASPEN_RANGE_KV_OVERHEAD_BYTES  64

/* Concurrent HTTP/2 streams per client connection (original: 100 per connection). */
#define ASPEN_MAX_STREAMS_PER_CONNECTION 100

/* Client connections per node (original: MAX_CONCURRENT_CONNECTIONS=500). */
#define ASPEN_MAX_CLIENT_CONNECTIONS 500

/* The node's HTTP/1.1 endpoint (health, metrics, admin and KV API; src/node/http.h).
 * Header block: 16 KiB like nginx's large_client_header_buffers; a body holds any
 * request (a value of ASPEN_MAX_VALUE_BYTES plus room for its encoding). A connection
 * that has not sent a whole request within the read timeout, or idles past the idle
 * timeout, is closed (slow-loris). Connections share ASPEN_MAX_CLIENT_CONNECTIONS. */
#define ASPEN_HTTP_MAX_HEADER_BYTES   (16 * ASPEN_KIB)
#define ASPEN_HTTP_MAX_HEADERS        64
#define ASPEN_HTTP_MAX_BODY_BYTES     (ASPEN_MAX_REQUEST_BYTES + 64 * ASPEN_KIB)
#define ASPEN_HTTP_READ_TIMEOUT_MS    10000
#define ASPEN_HTTP_IDLE_TIMEOUT_MS    120000
#define ASPEN_HTTP_MAX_RESPONSE_BYTES ASPEN_MAX_RPC_MESSAGE_BYTES
/* The request line's parts: a method longer than any we implement is answered 501 (RFC 9112
 * §3), a target over 8 KiB 414 (about Apache's LimitRequestLine; keys travel in bodies, not
 * URLs). Both fit the header block with room for the headers themselves. */
#define ASPEN_HTTP_MAX_METHOD_BYTES 32
#define ASPEN_HTTP_MAX_TARGET_BYTES (8 * ASPEN_KIB)

/* The gRPC client API (src/rpc): gRPC over HTTP/2 without TLS (h2c, prior knowledge) on
 * the client port, through nghttp2.
 *
 * Largest request message: etcd's server reads --max-request-bytes plus 512 KiB of gRPC
 * overhead (its grpcOverheadBytes), so with the 1.5 MiB request limit a message of up to
 * 2 MiB is read and a longer one is refused RESOURCE_EXHAUSTED from its 5-byte prefix,
 * before any of it is buffered. Responses may be larger (a range page, a snapshot chunk):
 * up to the RPC message bound. */
#define ASPEN_GRPC_MAX_MESSAGE_BYTES      (ASPEN_MAX_REQUEST_BYTES + 512 * ASPEN_KIB)
#define ASPEN_GRPC_MAX_SEND_MESSAGE_BYTES ASPEN_MAX_RPC_MESSAGE_BYTES
/* SETTINGS_MAX_CONCURRENT_STREAMS, and connections per server: the HTTP endpoint's caps
 * (a connection handed over from the HTTP/1.1 server counts here, no longer there). */
#define ASPEN_GRPC_MAX_CONCURRENT_STREAMS ASPEN_MAX_STREAMS_PER_CONNECTION
#define ASPEN_GRPC_MAX_CONNECTIONS        ASPEN_MAX_CLIENT_CONNECTIONS
/* HTTP/2 receive windows. A request's bytes are taken (WINDOW_UPDATE sent) as the message
 * is assembled, so the stream window bounds only the bytes waiting for a handler that
 * pushed back; 256 KiB keeps a 2 MiB put flowing at LAN speed without waiting on window
 * updates. The connection window holds every stream's full window, so streams held back
 * by their handlers can never starve the others. */
#define ASPEN_GRPC_STREAM_WINDOW_BYTES (256 * ASPEN_KIB)
#define ASPEN_GRPC_CONN_WINDOW_BYTES                                                               \
    (ASPEN_GRPC_MAX_CONCURRENT_STREAMS * ASPEN_GRPC_STREAM_WINDOW_BYTES)
/* SETTINGS_MAX_HEADER_LIST_SIZE: the HTTP/1.1 endpoint's header bound (etcd's clients send
 * a handful of short headers: path, content type, timeout, a token). */
#define ASPEN_GRPC_MAX_HEADER_LIST_BYTES ASPEN_HTTP_MAX_HEADER_BYTES
/* Response bytes one call may have queued and not yet handed to HTTP/2: beyond it a send
 * answers ASPEN_E_BUSY and the handler waits for its writable callback, so a watcher that
 * reads slowly costs at most this (or one larger message, which an empty queue always
 * takes). */
#define ASPEN_GRPC_CALL_SEND_QUEUE_BYTES ASPEN_MIB
/* A status message (grpc-message trailer) is cut to this many bytes before it is
 * percent-encoded; etcd's error strings are a few dozen bytes. */
#define ASPEN_GRPC_MAX_STATUS_MESSAGE_BYTES 1024
/* Methods one server routes: etcd v3's 39 plus the aspen.v1 services and room to grow. */
#define ASPEN_GRPC_MAX_METHODS 256
/* Keepalive: a connection from which nothing has arrived for the interval gets a PING; no
 * acknowledgement within the timeout closes it (a peer gone without a FIN). etcd's
 * defaults (--grpc-keepalive-interval 2h, --grpc-keepalive-timeout 20s). */
#define ASPEN_GRPC_KEEPALIVE_INTERVAL_MS (2u * 3600 * 1000)
#define ASPEN_GRPC_KEEPALIVE_TIMEOUT_MS  20000
/* A new connection must deliver the HTTP/2 client preface within this (slow-loris), like
 * a first HTTP/1.1 request. */
#define ASPEN_GRPC_HANDSHAKE_TIMEOUT_MS ASPEN_HTTP_READ_TIMEOUT_MS
/* Bytes handed to one uv_write: nghttp2's frames are gathered up to this, one write in
 * flight per connection, so a client that stops reading holds at most this much of ours
 * (the rest stays in the calls' bounded queues). */
#define ASPEN_GRPC_WRITE_BATCH_BYTES (64 * ASPEN_KIB)
/* Closing a connection: its last frames (final statuses, GOAWAY) get this long to be
 * written before the socket is closed anyway. */
#define ASPEN_GRPC_CLOSE_LINGER_MS 1000

/* Client requests waiting for the log on one node (proposals, and linearizable reads
 * separately): beyond this the node answers BUSY instead of queueing without bound. */
#define ASPEN_NODE_MAX_PENDING 16384

/* How long a client write or linearizable read may wait for Raft before it is answered
 * with a timeout (outcome unknown for a write), like etcd's request timeout. */
#define ASPEN_NODE_REQUEST_TIMEOUT_MS 10000

/* Joining: the new node tries the ticket's members, follows at most this many redirects
 * to the leader, and gives up after the timeout (waiting out elections meanwhile). */
#define ASPEN_JOIN_TIMEOUT_MS       60000
#define ASPEN_JOIN_MAX_REDIRECTS    3
#define ASPEN_JOIN_IO_TIMEOUT_MS    5000
#define ASPEN_JOIN_CREDENTIAL_BYTES 24 /* random bytes; shown as 48 hex digits */
/* A credential's default lifetime when the admin gives none: one hour. */
#define ASPEN_JOIN_CREDENTIAL_TTL_MS (3600 * 1000)

/* Graceful shutdown: how long each phase may take before the next one starts anyway. */
#define ASPEN_SHUTDOWN_TRANSFER_MS 3000
#define ASPEN_SHUTDOWN_DRAIN_MS    5000

/* Known peers in the trust registry (original: MAX_PEERS=1000). */
#define ASPEN_MAX_PEERS 1000

/* Reconnect backoff to a peer: capped exponential with jitter (original: 16 s cap). */
#define ASPEN_PEER_BACKOFF_MIN_MS 50
#define ASPEN_PEER_BACKOFF_MAX_MS 16000

/* Timeouts (original: connect 5 s, read 10 s, ReadIndex 5 s). */
#define ASPEN_CONNECT_TIMEOUT_MS    5000
#define ASPEN_READ_TIMEOUT_MS       10000
#define ASPEN_READ_INDEX_TIMEOUT_MS 5000

/* Bytes queued toward one peer on one protocol (src/net keeps a queue per (peer,
 * protocol), so a snapshot stream cannot starve raft's heartbeats) before send answers
 * ASPEN_E_BUSY: the sender's back-pressure. */
#define ASPEN_PEER_SEND_QUEUE_BYTES (64 * ASPEN_MIB)

/* Peer transport (src/net). A frame on a peer connection is a be32 length + payload inside
 * TLS; the largest payload is the largest encoded raft message, so every raft message fits
 * one frame, and a peer cannot make a receiver buffer more than this for one frame. A
 * length prefix above it closes the connection. */
#define ASPEN_PEER_MAX_FRAME_BYTES (ASPEN_RAFT_MAX_BYTES_PER_MSG + ASPEN_RAFT_MSG_FRAME_SLACK_BYTES)

/* Protocols (ALPN ids) one endpoint routes: raft now, blobs, gossip and a few more later. */
#define ASPEN_PEER_MAX_PROTOCOLS 8

/* Longest ALPN id we accept. TLS allows 255 bytes; ours are short names like
 * "aspen/raft/1", and a bound keeps them in fixed arrays. */
#define ASPEN_PEER_MAX_ALPN_BYTES 32

/* Connections an endpoint holds at once, inbound and outbound: one outgoing and (at most)
 * one incoming per (peer, protocol) for a full cluster, with room for handshakes in
 * progress. A connection beyond it is closed on accept, so a flood of raw TCP clients
 * cannot exhaust descriptors or memory. */
#define ASPEN_PEER_MAX_CONNECTIONS 4096

/* Ciphertext one connection hands to the kernel in one write. Encrypting the whole send
 * queue at once would double its memory; one batch in flight per connection keeps the
 * kernel's socket buffer busy on a LAN while the rest waits as plaintext. */
#define ASPEN_PEER_WRITE_BATCH_BYTES (256 * ASPEN_KIB)

/* A receive buffer larger than this is freed after its frame is delivered, so a burst of
 * large frames (snapshots) does not pin megabytes per idle connection. */
#define ASPEN_PEER_RECV_KEEP_BYTES (64 * ASPEN_KIB)

/* Config file size limit (original's value). */
#define ASPEN_MAX_CONFIG_FILE_BYTES (10 * ASPEN_MIB)

/* ---------------------------------------------------------------------------------------
 * Raft
 * ------------------------------------------------------------------------------------- */

/* Cluster size. Voters: the original allowed 100, but every voter adds a replica to each
 * commit's quorum; 9 voters tolerate 4 failures, and more members join as learners. */
#define ASPEN_MAX_VOTERS  9
#define ASPEN_MAX_MEMBERS 64 /* voters + learners */

/* Entries and bytes in one AppendEntries message, and in flight per follower. */
#define ASPEN_RAFT_MAX_ENTRIES_PER_MSG 1024
#define ASPEN_RAFT_MAX_BYTES_PER_MSG   (4 * ASPEN_MIB)
#define ASPEN_RAFT_MAX_INFLIGHT_MSGS   256
#define ASPEN_RAFT_MAX_INFLIGHT_BYTES  (64 * ASPEN_MIB)

/* Largest encoded raft message (src/raft/codec.h): the entry payload of a full message
 * plus slack for everything else in the frame — the fixed header, the 21-byte header of
 * each of up to ASPEN_RAFT_MAX_ENTRIES_PER_MSG entries and a full configuration, about
 * 22 KiB in all (codec.c checks its exact worst case against the slack). A decoder refuses
 * a larger frame before reading it, so a peer cannot make us buffer more than this. */
#define ASPEN_RAFT_MSG_FRAME_SLACK_BYTES (64 * ASPEN_KIB)
#define ASPEN_RAFT_MAX_MSG_FRAME_BYTES                                                             \
    (ASPEN_RAFT_MAX_BYTES_PER_MSG + ASPEN_RAFT_MSG_FRAME_SLACK_BYTES)

/* Proposals waiting for the leader to append them; beyond this the leader answers BUSY. */
#define ASPEN_RAFT_MAX_PENDING_PROPOSALS 65536

/* Linearizable reads waiting for one ReadIndex round. */
#define ASPEN_RAFT_MAX_PENDING_READS 65536

/* Bytes of proposals appended but not yet committed; beyond this the leader answers BUSY
 * rather than growing its log while it cannot reach a quorum (etcd-raft's
 * MaxUncommittedEntriesSize, raft_test TestUncommittedEntryLimit). */
#define ASPEN_RAFT_MAX_UNCOMMITTED_BYTES (256 * ASPEN_MIB)

/* Member changes in one configuration change (one per voter is the most that is useful). */
#define ASPEN_RAFT_MAX_CHANGES ASPEN_MAX_VOTERS

/* Logical ticks. The core counts TICK events and never reads a clock; the shell ticks it
 * once per heartbeat interval of its timing profile. Defaults: heartbeat every tick,
 * elections after 10-20 ticks (etcd's 1:10 ratio). */
#define ASPEN_RAFT_DEFAULT_HEARTBEAT_TICKS 1
#define ASPEN_RAFT_DEFAULT_ELECTION_TICKS  10

/* Snapshots: the core asks for one after this many entries since the last (original:
 * LogsSinceLast(10_000)), keeps this many entries behind it for slow followers (original:
 * 1_000), and never takes one more often than every MIN entries. */
#define ASPEN_SNAPSHOT_LOG_THRESHOLD 10000
#define ASPEN_SNAPSHOT_KEEP_ENTRIES  1000
#define ASPEN_SNAPSHOT_MIN_THRESHOLD 1000

/* Largest snapshot we will send or install (original: 1 GiB). The original also silently
 * capped snapshots at 1M keys — we do not: a snapshot is bounded by bytes only. */
#define ASPEN_MAX_SNAPSHOT_BYTES (ASPEN_GIB)

/* Snapshot transfer chunk: a fraction of a message so chunks pipeline. */
#define ASPEN_SNAPSHOT_CHUNK_BYTES (ASPEN_MIB)

/* Snapshot transfer between nodes (src/node/snap.h). A sender keeps at most WINDOW
 * chunks unacknowledged by the receiver's disk, so neither side buffers more than that
 * plus the transport's queue. At most MAX_SENDS transfers run at once on a leader (each
 * pins a read transaction). A transfer without progress for STALL_MS ends (both sides);
 * once the last chunk is out the sender waits up to INSTALL_TIMEOUT_MS for the install,
 * which rewrites the receiver's whole state machine in one transaction. */
#define ASPEN_SNAPSHOT_WINDOW_CHUNKS      4
#define ASPEN_SNAPSHOT_MAX_SENDS          2
#define ASPEN_SNAPSHOT_STALL_MS           10000
#define ASPEN_SNAPSHOT_INSTALL_TIMEOUT_MS 120000

/* Raft timing profiles (original: conservative 500 / 1500–3000 ms; balanced 100 /
 * 500–1000; fast 30 / 100–200). The election timeout is drawn uniformly from [min, max]. */
#define ASPEN_RAFT_CONSERVATIVE_HEARTBEAT_MS    500
#define ASPEN_RAFT_CONSERVATIVE_ELECTION_MIN_MS 1500
#define ASPEN_RAFT_CONSERVATIVE_ELECTION_MAX_MS 3000
#define ASPEN_RAFT_BALANCED_HEARTBEAT_MS        100
#define ASPEN_RAFT_BALANCED_ELECTION_MIN_MS     500
#define ASPEN_RAFT_BALANCED_ELECTION_MAX_MS     1000
#define ASPEN_RAFT_FAST_HEARTBEAT_MS            30
#define ASPEN_RAFT_FAST_ELECTION_MIN_MS         100
#define ASPEN_RAFT_FAST_ELECTION_MAX_MS         200

/* Learner promotion: a learner is caught up when within this many entries of the leader
 * (original: LEARNER_LAG_THRESHOLD=100). */
#define ASPEN_LEARNER_LAG_THRESHOLD 100

/* ---------------------------------------------------------------------------------------
 * Storage
 * ------------------------------------------------------------------------------------- */

/* One group-commit transaction holds at most this much (entries and bytes), so one fsync
 * never stalls the pipeline behind an unbounded batch. */
#define ASPEN_STORAGE_MAX_BATCH_ENTRIES 4096
#define ASPEN_STORAGE_MAX_BATCH_BYTES   (32 * ASPEN_MIB)

/* Initial LMDB map size; it grows in steps of the same size up to the maximum. */
#define ASPEN_STORAGE_MAP_INITIAL_BYTES (ASPEN_GIB)
#define ASPEN_STORAGE_MAP_MAX_BYTES     (256 * ASPEN_GIB)

/* ---- Storage backend (src/storage: lmdb.c, raftlog.c, committer.c) ---- */

/* LMDB reader slots: one per concurrently open read transaction in the process (client
 * reads, snapshot streaming, the committer's own). LMDB's default is 126; reads beyond
 * the table fail MDB_READERS_FULL (ASPEN_E_BUSY), so leave head room. */
#define ASPEN_STORAGE_LMDB_MAX_READERS 512

/* The committer's queue: at most this many jobs wait for the storage thread, so a
 * flood of submitters meets back-pressure (ASPEN_E_FULL) instead of unbounded memory. */
#define ASPEN_STORAGE_MAX_QUEUED_JOBS 65536

/* A raft meta record (hard state, snapshot meta) is small: the snapshot's configuration
 * is the largest part. Bounds the buffer the encoder builds. */
#define ASPEN_STORAGE_MAX_META_RECORD_BYTES (16 * ASPEN_KIB)

/* raftlog_compact deletes at most this many entries per call, so one compaction never
 * turns into an unbounded write transaction; callers repeat until it reports done. */
#define ASPEN_STORAGE_MAX_COMPACT_ENTRIES 65536

/* Physical compaction examines at most this many revision records per applied compact or
 * COMPACT_STEP entry (kv/compact.c), so a large compaction never stalls writes; the steps
 * are log entries, which keeps the cleanup deterministic across replicas. */
#define ASPEN_COMPACT_BATCH_REVISIONS 10000

/* ---------------------------------------------------------------------------------------
 * Clocks
 * ------------------------------------------------------------------------------------- */

/* Hybrid logical clock: a timestamp from a peer more than this far ahead of our wall
 * clock is refused (ASPEN_E_CLOCK_DRIFT) instead of dragging our clock forward — one node
 * with a bad clock must not push every node's time into the future. The original warned
 * at 100 ms and alerted at 500 ms of drift; refusing at 500 ms matches its alert level. */
#define ASPEN_HLC_MAX_DRIFT_NS (UINT64_C(500) * 1000 * 1000)

/* Clock-drift bound assumed by lease reads (off by default; issue 3). A leader may serve
 * lease reads for (election timeout - drift) after a quorum heartbeat; with the fast
 * profile's 100 ms minimum election timeout, 50 ms of assumed drift leaves a 50 ms lease. */
#define ASPEN_LEASE_READ_MAX_DRIFT_MS 50

/* ---------------------------------------------------------------------------------------
 * Coordination and capabilities (later waves; values from the original)
 * ------------------------------------------------------------------------------------- */

#define ASPEN_MAX_CAPABILITIES_PER_TOKEN 32
#define ASPEN_MAX_DELEGATION_DEPTH       8
#define ASPEN_MAX_TOKEN_BYTES            (8 * ASPEN_KIB)
#define ASPEN_TOKEN_CLOCK_SKEW_MS        60000
#define ASPEN_MAX_CAS_RETRIES            100

/* ---------------------------------------------------------------------------------------
 * Encodings
 * ------------------------------------------------------------------------------------- */

/* Deepest nesting of FDB tuples inside tuples that pack and unpack accept (a top-level
 * tuple is depth 0). Encoding, decoding and comparison recurse once per level, so this
 * bound keeps hostile input from exhausting the stack; 16 is far more than any key
 * schema needs. */
#define ASPEN_TUPLE_MAX_DEPTH 16

/* Longest subspace prefix: FoundationDB's own key size limit. A prefix must leave room in
 * a key for the tuple that follows it (checked below against ASPEN_MAX_KEY_BYTES). */
#define ASPEN_SUBSPACE_MAX_PREFIX_BYTES 10000

/* Logging: one log line is cut at this length so a huge value cannot flood stderr. */
#define ASPEN_LOG_LINE_MAX_BYTES 4096

/* ---------------------------------------------------------------------------------------
 * Deterministic simulator (src/sim)
 * ------------------------------------------------------------------------------------- */

/* Node slots in one simulated cluster: up to 7 founding voters plus spares that join
 * through membership changes. Never more than the core's voter cap, so a change that
 * promotes every slot is still a legal configuration. */
#define ASPEN_SIM_MAX_NODES 9

/* Concurrent clients per run. The linearizability checker's search grows with the
 * number of operations that overlap in time on one key; a handful of clients over a
 * few keys keeps it fast while still producing real concurrency. */
#define ASPEN_SIM_MAX_CLIENTS 8

/* Keys the workload touches: few keys means many operations per key, which is where
 * stale reads and lost writes show up. */
#define ASPEN_SIM_MAX_KEYS 8

/* Operations recorded per run. Bounds the history (and so the checker's work); a client
 * stops issuing new operations once the run has recorded this many. */
#define ASPEN_SIM_MAX_OPS 4096

/* Scheduled events in flight at once (ticks, deliveries, disk completions, client
 * messages). A run that needs more is a simulator bug (a message storm), reported as
 * such rather than growing without bound. */
#define ASPEN_SIM_MAX_EVENTS (1u << 20)

/* Pending atomic writes per simulated disk. The core never has more than a few updates
 * outstanding per round trip; a queue this deep means persistence stopped completing. */
#define ASPEN_SIM_MAX_PENDING_WRITES 4096

/* Back-pressure: a node whose disk has this many pending writes stops taking messages
 * (they are dropped, as a full socket buffer would), keeping the rest of the queue for
 * what cannot be refused — ticks, completions and client requests that already stepped
 * the core. An append storm on a slow disk must not overflow the queue. */
#define ASPEN_SIM_BACKPRESSURE_WRITES (ASPEN_SIM_MAX_PENDING_WRITES - 512)

/* Events held for a paused node (deliveries, completions, client requests). Beyond this
 * the oldest network messages are dropped, as a full socket buffer would. */
#define ASPEN_SIM_MAX_DEFERRED_EVENTS 8192

/* Entries a simulated log may hold between snapshots: the sweep picks snapshot
 * thresholds far below this, so reaching it means compaction stopped working. */
#define ASPEN_SIM_MAX_LOG_ENTRIES (1u << 18)

/* Highest term the checker tracks (it keeps one slot per term). Terms grow by one per
 * election; a run that reaches this is an election storm worth reporting. */
#define ASPEN_SIM_MAX_TERMS (1u << 20)

/* Recent trace records kept in memory for the report printed on a violation. */
#define ASPEN_SIM_TRACE_RING 256

/* Virtual time per tick of the raft core: 10 ms, so election timeouts of 10-30 ticks
 * are 100-300 ms (the fast profile) and runs cover many elections per virtual second. */
#define ASPEN_SIM_TICK_NS (UINT64_C(10) * 1000 * 1000)
/* ---------------------------------------------------------------------------------------
 * Simulator: linearizability checker (src/sim/lincheck.h)
 * ------------------------------------------------------------------------------------- */

/* Operations on one key that the checker accepts. The search is exponential in the
 * number of concurrent operations but close to linear in history length, and the research
 * notes (consensus.md §4.4) advise keeping per-key histories around 10^4; ten times that
 * still checks in seconds and keeps every per-partition index in a uint32_t. A simulator
 * that wants longer runs should spread its clients over more keys. */
#define ASPEN_LINCHECK_MAX_OPS_PER_KEY 100000

/* Memory the search's memo table (Lowe's cache of visited configurations) may use for one
 * key before the checker gives up with LINCHECK_UNKNOWN. A typical 10^4-op history needs
 * well under 10 MiB; 256 MiB leaves room for hard histories (many unknown outcomes, high
 * concurrency) without letting one key exhaust a test machine. Callers may lower it. */
#define ASPEN_LINCHECK_CACHE_MAX_BYTES (256 * ASPEN_MIB)

/* Steps (list entries examined) per operation the search's first, greedy pass may take
 * before it gives way to the deepening passes (src/sim/lincheck.c, search()). Finding a
 * linearization of a generated 10^4-operation history (5-8 clients, 1% timeouts) took 28
 * to 213 steps per operation; 256 lets linearizable histories finish there, while proving
 * a violation, which the greedy pass does badly, loses at most that much time first. */
#define ASPEN_LINCHECK_GREEDY_STEPS_PER_OP 256

/* Deepening passes the search runs before its final unlimited pass, when a history with
 * unknown-outcome writes is not linearizable without them (src/sim/lincheck.c, search()).
 * Each pass records the configurations needing one more unknown write; in generated
 * 10^4-operation histories they stop adding any after 3 to 6 passes, so 12 covers them
 * while bounding the re-exploration each pass costs. */
#define ASPEN_LINCHECK_DEEPENING_PASSES 12

/* The explanation string in a check result: a few sentences naming the key, the operation
 * that could not be placed and its neighbour, each with client, values, times and index. */
#define ASPEN_LINCHECK_EXPLAIN_BYTES 640

/* Debug timelines: at most this many lines (one per operation), each with a bar this many
 * columns wide; a violation window rarely holds more than a few dozen operations. */
#define ASPEN_LINCHECK_TIMELINE_MAX_LINES 200
#define ASPEN_LINCHECK_TIMELINE_COLUMNS   64

/* ---------------------------------------------------------------------------------------
 * KV auxiliaries: watch hub, lessor, snapshot stream (src/kv/watch.h, lessor.h, snapshot.h)
 * ------------------------------------------------------------------------------------- */

/* How often the loop calls watch_progress_tick for watchers created with progress_notify:
 * etcd's default --experimental-watch-progress-notify-interval is 10 minutes. */
#define ASPEN_WATCH_PROGRESS_INTERVAL_MS (10 * 60 * 1000)

/* Events the loop lets watch_sync read from history per call, so catching up slow
 * watchers never stalls the loop for long; the rest waits for the next turn. */
#define ASPEN_WATCH_SYNC_BUDGET_EVENTS 4096

/* Scratch memory one history read of the watch hub may use. A read returns whole
 * revisions, and one revision (a delete-range over a large prefix) may hold more events
 * than a queue; it can never hold more than the whole state, old and new values. */
#define ASPEN_WATCH_HISTORY_BATCH_MAX_BYTES (2 * ASPEN_MAX_SNAPSHOT_BYTES)

/* A lease the leader found expired is proposed for revocation; if the revoke has not
 * applied this long later (the proposal was lost in a leader change or dropped), the
 * lessor reports the lease again so the leader proposes it again. */
#define ASPEN_LEASE_REVOKE_RETRY_MS 3000

/* Snapshot stream: one record may not fit the chunk target (values up to ~1.5 MiB, the
 * chunk target is 1 MiB), so a chunk may exceed the target by one record. A record is
 * table id + two lengths + a table key (STORE_MAX_KEY) + a value of the largest size the
 * KV tables hold (a full request's value plus its record header). */
#define ASPEN_SNAPSHOT_RECORD_MAX_BYTES (ASPEN_MAX_REQUEST_BYTES + 64 * ASPEN_KIB)
#define ASPEN_SNAPSHOT_CHUNK_MAX_BYTES                                                             \
    (ASPEN_SNAPSHOT_CHUNK_BYTES + ASPEN_SNAPSHOT_RECORD_MAX_BYTES + 64)

/* ---------------------------------------------------------------------------------------
 * Node: configuration, identity, metrics (src/node)
 * ------------------------------------------------------------------------------------- */

/* --snapshot-count default: the raft core's own threshold (the original's 10,000
 * entries). etcd defaulted to 100,000 for years; every entry since the last snapshot
 * stays in the core's in-memory log, so the smaller value bounds a node's memory and how
 * much a slow follower must replay, at the price of more frequent snapshots. */
#define ASPEN_NODE_DEFAULT_SNAPSHOT_COUNT ASPEN_SNAPSHOT_LOG_THRESHOLD

/* --snapshot-count bounds. The core keeps ASPEN_SNAPSHOT_KEEP_ENTRIES behind a snapshot
 * and refuses a threshold that is not above that (raft_options). At the top, a million
 * entries of even a few hundred bytes is hundreds of MiB held in memory between
 * snapshots; a node configured beyond that runs out of memory before it snapshots. */
#define ASPEN_NODE_MIN_SNAPSHOT_COUNT (ASPEN_SNAPSHOT_KEEP_ENTRIES + 1)
#define ASPEN_NODE_MAX_SNAPSHOT_COUNT 1000000

/* --quota-backend-bytes: etcd's default of 2 GiB, so a workload sized for etcd meets its
 * space alarm at the same point. The smallest quota must hold a few maximal messages
 * (anything less fills with the first large writes); the largest is what the LMDB map may
 * grow to. */
#define ASPEN_NODE_DEFAULT_QUOTA_BACKEND_BYTES (2 * ASPEN_GIB)
#define ASPEN_NODE_MIN_QUOTA_BACKEND_BYTES     ASPEN_MAX_RPC_MESSAGE_BYTES
#define ASPEN_NODE_MAX_QUOTA_BACKEND_BYTES     ASPEN_STORAGE_MAP_MAX_BYTES

/* --max-request-bytes may lower the request limit but never raise it above
 * ASPEN_MAX_REQUEST_BYTES: value, message and snapshot-record limits are derived from
 * that constant. Below 1 KiB even a small Put and its framing would be refused. */
#define ASPEN_NODE_MIN_REQUEST_BYTES ASPEN_KIB

/* --heartbeat-interval and --election-timeout overrides of a raft profile. Below 10 ms a
 * heartbeat is shorter than the event loop's timer granularity (libuv timers count whole
 * milliseconds) plus one busy loop turn. The shortest election timeout is the fast
 * profile's: below it the lease-read drift bound (ASPEN_LEASE_READ_MAX_DRIFT_MS) would
 * eat most of a lease. etcd refuses election timeouts above 50 s ("too long"), and so do
 * we: a leader loss would go unnoticed for that long. */
#define ASPEN_NODE_MIN_HEARTBEAT_MS        10
#define ASPEN_NODE_MIN_ELECTION_TIMEOUT_MS ASPEN_RAFT_FAST_ELECTION_MIN_MS
#define ASPEN_NODE_MAX_ELECTION_TIMEOUT_MS 50000

/* One string setting (name, data-dir, join ticket, join credential): PATH_MAX, so any
 * path Linux accepts fits data-dir, and far more than a ticket or a name needs. */
#define ASPEN_NODE_CONFIG_VALUE_MAX_BYTES 4096

/* URLs in one list setting (listen/advertise, client/peer/metrics). A node listens on a
 * handful of interfaces at most; etcd users rarely give more than two or three. */
#define ASPEN_NODE_CONFIG_MAX_URLS 8

/* One URL: "https://" + a 253-byte DNS name + ":65535" is 267 bytes; with the NUL and
 * some rounding, 272. The host alone: a DNS name (253) or an IPv6 literal (45) + NUL. */
#define ASPEN_NODE_CONFIG_URL_MAX_BYTES  272
#define ASPEN_NODE_CONFIG_HOST_MAX_BYTES 254

/* Metrics registry (src/node/metrics.h). Families and series are registered at start-up;
 * a node exports a few dozen families, and per-peer series are bounded by the cluster
 * size (ASPEN_MAX_MEMBERS), so 1024 series leaves room for every family to be labelled
 * per peer. Label pairs per series: Prometheus practice is a few fixed dimensions (peer,
 * op, status); more means a cardinality problem. Buckets: 24 covers 0.1 ms .. 1 s at
 * doublings with room to spare. Names and values are short identifiers; help is one
 * sentence. The arena bound covers the worst case of every table full (checked below). */
#define ASPEN_METRICS_MAX_FAMILIES          128
#define ASPEN_METRICS_MAX_SERIES            1024
#define ASPEN_METRICS_MAX_LABELS            4
#define ASPEN_METRICS_MAX_BUCKETS           24
#define ASPEN_METRICS_MAX_NAME_BYTES        128
#define ASPEN_METRICS_MAX_HELP_BYTES        512
#define ASPEN_METRICS_MAX_LABEL_VALUE_BYTES 128
#define ASPEN_METRICS_ARENA_BYTES           (4 * ASPEN_MIB)

/* ---------------------------------------------------------------------------------------
 * Relations that must hold
 * ------------------------------------------------------------------------------------- */

_Static_assert(ASPEN_SCAN_DEFAULT_LIMIT <= ASPEN_SCAN_MAX_LIMIT, "default scan within max");
_Static_assert(ASPEN_MAX_KEY_BYTES + ASPEN_MAX_VALUE_BYTES < ASPEN_MAX_REQUEST_BYTES,
               "a maximal put must fit in a request");
_Static_assert(ASPEN_MAX_VALUE_BYTES >= ASPEN_MIB, "values of 1 MiB (the original's) must fit");
_Static_assert(ASPEN_MAX_KEY_BYTES + ASPEN_MAX_VALUE_BYTES + ASPEN_RANGE_KV_OVERHEAD_BYTES <=
                   ASPEN_MAX_RANGE_RESPONSE_BYTES,
               "one kv always fits a range response");
_Static_assert(ASPEN_MAX_REQUEST_BYTES <= ASPEN_MAX_RPC_MESSAGE_BYTES,
               "a request must fit in one gRPC message");
_Static_assert(ASPEN_MAX_REQUEST_BYTES <= ASPEN_RAFT_MAX_BYTES_PER_MSG,
               "a single proposal must fit in one AppendEntries message");
_Static_assert(ASPEN_RAFT_MAX_BYTES_PER_MSG <= ASPEN_MAX_RPC_MESSAGE_BYTES,
               "an AppendEntries message must fit the transport's frame limit");
_Static_assert(ASPEN_RAFT_MAX_MSG_FRAME_BYTES <= ASPEN_MAX_RPC_MESSAGE_BYTES,
               "an encoded raft message must fit the transport's frame limit");
_Static_assert(ASPEN_RAFT_MAX_MSG_FRAME_BYTES <= UINT32_MAX,
               "the raft frame's 32-bit length field must hold any frame");
_Static_assert(ASPEN_RAFT_MAX_BYTES_PER_MSG <= ASPEN_RAFT_MAX_INFLIGHT_BYTES,
               "at least one message must be allowed in flight");
_Static_assert(ASPEN_SNAPSHOT_CHUNK_BYTES <= ASPEN_MAX_RPC_MESSAGE_BYTES,
               "a snapshot chunk must fit in one message");
_Static_assert(ASPEN_RAFT_MAX_BYTES_PER_MSG <= ASPEN_RAFT_MAX_UNCOMMITTED_BYTES,
               "a full append message must fit in the uncommitted budget");
_Static_assert(ASPEN_RAFT_DEFAULT_HEARTBEAT_TICKS * 3 <= ASPEN_RAFT_DEFAULT_ELECTION_TICKS,
               "several heartbeats must fit in the shortest election timeout");
_Static_assert(ASPEN_SNAPSHOT_KEEP_ENTRIES < ASPEN_SNAPSHOT_LOG_THRESHOLD,
               "compaction must keep fewer entries than trigger a snapshot");
_Static_assert(ASPEN_SNAPSHOT_MIN_THRESHOLD <= ASPEN_SNAPSHOT_LOG_THRESHOLD, "snapshot bounds");
_Static_assert(ASPEN_MAX_VOTERS <= ASPEN_MAX_MEMBERS, "voters are members");
_Static_assert(ASPEN_MAX_VOTERS % 2 == 1, "an even voter cap adds no fault tolerance");
_Static_assert(ASPEN_MAX_BATCH_KEYS <= ASPEN_MAX_TXN_OPS, "a batch is at most a txn");
_Static_assert(ASPEN_RAFT_CONSERVATIVE_HEARTBEAT_MS * 3 <= ASPEN_RAFT_CONSERVATIVE_ELECTION_MIN_MS,
               "several heartbeats must fit in the shortest election timeout");
_Static_assert(ASPEN_RAFT_BALANCED_HEARTBEAT_MS * 3 <= ASPEN_RAFT_BALANCED_ELECTION_MIN_MS,
               "several heartbeats must fit in the shortest election timeout");
_Static_assert(ASPEN_RAFT_FAST_HEARTBEAT_MS * 3 <= ASPEN_RAFT_FAST_ELECTION_MIN_MS,
               "several heartbeats must fit in the shortest election timeout");
_Static_assert(ASPEN_RAFT_CONSERVATIVE_ELECTION_MIN_MS < ASPEN_RAFT_CONSERVATIVE_ELECTION_MAX_MS &&
                   ASPEN_RAFT_BALANCED_ELECTION_MIN_MS < ASPEN_RAFT_BALANCED_ELECTION_MAX_MS &&
                   ASPEN_RAFT_FAST_ELECTION_MIN_MS < ASPEN_RAFT_FAST_ELECTION_MAX_MS,
               "election timeouts need a randomization range");
_Static_assert(ASPEN_LEASE_MIN_TTL_MS >= ASPEN_RAFT_FAST_ELECTION_MAX_MS,
               "a lease must outlive one leader election of the fastest profile");
_Static_assert(ASPEN_STORAGE_MAX_BATCH_BYTES >= ASPEN_RAFT_MAX_BYTES_PER_MSG,
               "one received AppendEntries must fit one storage batch");
_Static_assert(ASPEN_STORAGE_MAP_INITIAL_BYTES <= ASPEN_STORAGE_MAP_MAX_BYTES, "map bounds");
_Static_assert(ASPEN_MAX_SNAPSHOT_BYTES <= ASPEN_STORAGE_MAP_MAX_BYTES,
               "a snapshot must fit the store that installs it");
_Static_assert(ASPEN_SUBSPACE_MAX_PREFIX_BYTES < ASPEN_MAX_KEY_BYTES,
               "a subspace prefix must leave room for the tuple in a key");
_Static_assert(ASPEN_PEER_BACKOFF_MIN_MS < ASPEN_PEER_BACKOFF_MAX_MS, "backoff range");
_Static_assert(ASPEN_HTTP_MAX_METHOD_BYTES + ASPEN_HTTP_MAX_TARGET_BYTES + 64 <
                   ASPEN_HTTP_MAX_HEADER_BYTES,
               "an HTTP request line leaves room for the headers in the header block");
_Static_assert(ASPEN_HTTP_MAX_HEADER_BYTES + ASPEN_HTTP_MAX_BODY_BYTES <=
                   ASPEN_MAX_RPC_MESSAGE_BYTES,
               "a whole HTTP request stays under the RPC message bound");
_Static_assert(ASPEN_GRPC_MAX_MESSAGE_BYTES >= ASPEN_MAX_REQUEST_BYTES + 64 * ASPEN_KIB,
               "a gRPC message holds any request with room for its encoding");
_Static_assert(ASPEN_GRPC_MAX_MESSAGE_BYTES <= ASPEN_GRPC_MAX_SEND_MESSAGE_BYTES &&
                   ASPEN_GRPC_MAX_SEND_MESSAGE_BYTES <= ASPEN_MAX_RPC_MESSAGE_BYTES,
               "gRPC messages stay within the RPC message bound");
_Static_assert(ASPEN_MAX_RANGE_RESPONSE_BYTES + ASPEN_MIB <= ASPEN_GRPC_MAX_SEND_MESSAGE_BYTES,
               "a full range page plus its header fits one gRPC response");
_Static_assert(ASPEN_GRPC_MAX_SEND_MESSAGE_BYTES + 5 <= UINT32_MAX,
               "the gRPC length prefix is 32-bit");
_Static_assert(ASPEN_GRPC_STREAM_WINDOW_BYTES >= 65535 && ASPEN_GRPC_CONN_WINDOW_BYTES <= INT32_MAX,
               "HTTP/2 windows: at least the protocol's default, at most 2^31-1");
_Static_assert(ASPEN_GRPC_CONN_WINDOW_BYTES >=
                   (uint64_t)ASPEN_GRPC_MAX_CONCURRENT_STREAMS * ASPEN_GRPC_STREAM_WINDOW_BYTES,
               "held-back streams cannot exhaust the connection window");
_Static_assert(ASPEN_GRPC_KEEPALIVE_TIMEOUT_MS < ASPEN_GRPC_KEEPALIVE_INTERVAL_MS,
               "a keepalive ping is answered or given up before the next one");
_Static_assert(ASPEN_PEER_MAX_FRAME_BYTES >= ASPEN_RAFT_MAX_MSG_FRAME_BYTES,
               "every encoded raft message must fit one peer frame");
_Static_assert(ASPEN_PEER_MAX_FRAME_BYTES >= ASPEN_SNAPSHOT_CHUNK_MAX_BYTES,
               "a snapshot chunk must fit one peer frame");
_Static_assert(ASPEN_PEER_MAX_FRAME_BYTES <= UINT32_MAX, "the frame length prefix is 32-bit");
_Static_assert(ASPEN_PEER_MAX_FRAME_BYTES + 4 <= ASPEN_PEER_SEND_QUEUE_BYTES,
               "one frame of the largest size must fit a peer's send queue");
_Static_assert(ASPEN_PEER_MAX_CONNECTIONS >= 2 * ASPEN_MAX_MEMBERS * ASPEN_PEER_MAX_PROTOCOLS,
               "a full cluster's connections (out and in, every protocol) must fit");
_Static_assert(ASPEN_PEER_MAX_ALPN_BYTES <= 255, "TLS limits an ALPN id to 255 bytes");
_Static_assert(ASPEN_SIM_MAX_NODES <= ASPEN_MAX_VOTERS, "every simulated slot may become a voter");
_Static_assert(ASPEN_SIM_MAX_NODES < 256, "the simulator's trace stores a node slot in a byte");
_Static_assert(ASPEN_SIM_BACKPRESSURE_WRITES > 0 &&
                   ASPEN_SIM_BACKPRESSURE_WRITES < ASPEN_SIM_MAX_PENDING_WRITES,
               "back-pressure must leave room in the disk queue");
_Static_assert(ASPEN_SIM_MAX_CLIENTS < 256, "the simulator's trace stores a client in a byte");
_Static_assert(ASPEN_LINCHECK_MAX_OPS_PER_KEY < UINT32_MAX / 2,
               "the checker numbers a key's calls and returns in uint32_t");
_Static_assert(ASPEN_LINCHECK_CACHE_MAX_BYTES >= ASPEN_MIB,
               "the default search budget must fit a typical 10^4-op history");
_Static_assert(ASPEN_LEASE_READ_MAX_DRIFT_MS < ASPEN_RAFT_FAST_ELECTION_MIN_MS,
               "lease reads are unsafe if drift can exceed an election timeout");

_Static_assert(ASPEN_STORAGE_MAX_QUEUED_JOBS >= ASPEN_STORAGE_MAX_BATCH_ENTRIES,
               "the committer's queue must hold at least one full batch");
_Static_assert(ASPEN_STORAGE_LMDB_MAX_READERS >= 126, "no fewer readers than LMDB's default");
_Static_assert(ASPEN_STORAGE_MAX_META_RECORD_BYTES >=
                   64 + 8 * (3 * ASPEN_MAX_VOTERS + ASPEN_MAX_MEMBERS),
               "a snapshot meta with every configuration list full must fit its record");
_Static_assert(ASPEN_STORAGE_MAX_COMPACT_ENTRIES >= ASPEN_SNAPSHOT_LOG_THRESHOLD,
               "one compaction call must be able to drop what one snapshot covers");
_Static_assert(ASPEN_LEASE_REVOKE_RETRY_MS >= ASPEN_RAFT_CONSERVATIVE_ELECTION_MAX_MS,
               "a revoke must get at least one election's time to apply before a retry");
_Static_assert(ASPEN_WATCH_SYNC_BUDGET_EVENTS >= 1, "sync must make progress");
_Static_assert(ASPEN_SNAPSHOT_CHUNK_MAX_BYTES <= ASPEN_MAX_RPC_MESSAGE_BYTES,
               "a snapshot chunk, even one with an oversized record, fits one message");
_Static_assert(ASPEN_SNAPSHOT_CHUNK_MAX_BYTES <= UINT32_MAX, "chunk lengths are 32-bit");
_Static_assert(ASPEN_SNAPSHOT_WINDOW_CHUNKS *(ASPEN_SNAPSHOT_CHUNK_MAX_BYTES + 64) <=
                   ASPEN_PEER_SEND_QUEUE_BYTES,
               "a window of chunk frames fits the transport's queue");
_Static_assert(ASPEN_SNAPSHOT_RECORD_MAX_BYTES > ASPEN_MAX_VALUE_BYTES + ASPEN_MAX_KEY_BYTES,
               "a maximal put's records must fit one snapshot record");
_Static_assert(ASPEN_NODE_MIN_SNAPSHOT_COUNT <= ASPEN_NODE_DEFAULT_SNAPSHOT_COUNT &&
                   ASPEN_NODE_DEFAULT_SNAPSHOT_COUNT <= ASPEN_NODE_MAX_SNAPSHOT_COUNT,
               "the default snapshot count lies within its bounds");
_Static_assert(ASPEN_NODE_MIN_QUOTA_BACKEND_BYTES <= ASPEN_NODE_DEFAULT_QUOTA_BACKEND_BYTES &&
                   ASPEN_NODE_DEFAULT_QUOTA_BACKEND_BYTES <= ASPEN_NODE_MAX_QUOTA_BACKEND_BYTES,
               "the default quota lies within its bounds");
_Static_assert(ASPEN_NODE_MIN_REQUEST_BYTES <= ASPEN_MAX_REQUEST_BYTES, "request bounds");
_Static_assert(ASPEN_NODE_MIN_HEARTBEAT_MS * 3 <= ASPEN_NODE_MIN_ELECTION_TIMEOUT_MS,
               "the shortest heartbeat must fit the shortest election timeout three times");
_Static_assert(ASPEN_LEASE_READ_MAX_DRIFT_MS < ASPEN_NODE_MIN_ELECTION_TIMEOUT_MS,
               "no election-timeout override may make lease reads unsafe");
_Static_assert(ASPEN_RAFT_CONSERVATIVE_ELECTION_MAX_MS <= ASPEN_NODE_MAX_ELECTION_TIMEOUT_MS,
               "every profile must pass the override bounds");
_Static_assert(ASPEN_RAFT_FAST_HEARTBEAT_MS >= ASPEN_NODE_MIN_HEARTBEAT_MS,
               "every profile must pass the override bounds");
_Static_assert(ASPEN_RAFT_CONSERVATIVE_ELECTION_MAX_MS ==
                       2 * ASPEN_RAFT_CONSERVATIVE_ELECTION_MIN_MS &&
                   ASPEN_RAFT_BALANCED_ELECTION_MAX_MS == 2 * ASPEN_RAFT_BALANCED_ELECTION_MIN_MS &&
                   ASPEN_RAFT_FAST_ELECTION_MAX_MS == 2 * ASPEN_RAFT_FAST_ELECTION_MIN_MS,
               "an --election-timeout override keeps the profiles' [t, 2t] range");
_Static_assert(ASPEN_METRICS_MAX_SERIES >= ASPEN_METRICS_MAX_FAMILIES, "a family has a series");
_Static_assert(ASPEN_METRICS_ARENA_BYTES >=
                   ASPEN_METRICS_MAX_FAMILIES *
                           (ASPEN_METRICS_MAX_NAME_BYTES + ASPEN_METRICS_MAX_HELP_BYTES +
                            ASPEN_METRICS_MAX_LABELS * ASPEN_METRICS_MAX_NAME_BYTES +
                            ASPEN_METRICS_MAX_BUCKETS * 8 + 256) +
                       ASPEN_METRICS_MAX_SERIES *
                           (ASPEN_METRICS_MAX_LABELS * ASPEN_METRICS_MAX_LABEL_VALUE_BYTES +
                            (ASPEN_METRICS_MAX_BUCKETS + 1) * 8 + 256),
               "the metrics arena holds every table full (256 bytes of struct slack each)");

#endif
