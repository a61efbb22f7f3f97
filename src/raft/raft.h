/*
 * The consensus core: Raft as a pure state machine.
 *
 * One entry point, raft_step(), takes an event (a tick, a received message, a proposal,
 * a read request, "persisted up to (index, term)", ...) and fills an update record that
 * says what the caller — the shell — must persist, send and apply. The core makes no
 * syscalls, reads no clock (time is the count of TICK events) and draws randomness only
 * from the struct aspen_random it is given, so the production node and the simulator
 * drive the very same code and a seed replays a whole cluster bit for bit.
 *
 * The contract with the shell (docs/ARCHITECTURE.md, "The contract with the shell"):
 *
 *  1. Call raft_step() with one event; it returns 0 or a negative code and fills *update.
 *     Everything the update points to is owned by the core and stays valid only until the
 *     next raft_step() or raft_free(): copy or encode what you keep.
 *  2. Messages with `after_persist == false` may be sent at once. The others — vote grants,
 *     append acknowledgements, anything that promises durable state — go out only after
 *     this update's persistent part is durable (and all earlier updates' were).
 *  3. Persist, in one atomic write (or in this order): the snapshot to install, then the
 *     log change (discard every stored entry with index >= entries[0].index, append the
 *     entries), the hard state. A shell may apply `committed` entries in the same write.
 *  4. When update->must_persist and the write is durable, step RAFT_EVENT_PERSISTED with
 *     update->persist_index / persist_term. Updates are persisted in order.
 *  5. Apply `committed` entries in order (after or atomically with step 3). Serve each
 *     read in `reads` once the state machine has applied read.index.
 *
 * Raft thesis references are to Ongaro, "Consensus: Bridging Theory and Practice" (2014);
 * paper references to Ongaro & Ousterhout, "In Search of an Understandable Consensus
 * Algorithm" (2014).
 */
#ifndef ASPEN_RAFT_RAFT_H
#define ASPEN_RAFT_RAFT_H

#include "base/constants.h"
#include "base/rand.h"
#include <aspen/error.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t raft_id;    /* a member's id; 0 means "none" */
typedef uint64_t raft_term;  /* election term; 0 before the first election */
typedef uint64_t raft_index; /* log position; the first entry is index 1 */

/* ---------------------------------------------------------------------------------------
 * Log entries
 * ------------------------------------------------------------------------------------- */

enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 0, /* application data (empty data: a leader's no-op, §5.4.2) */
    RAFT_ENTRY_CONF = 1,   /* a membership change: data is an encoded raft_conf_change */
};

struct raft_entry {
    raft_term term;
    raft_index index;
    uint8_t type;  /* enum raft_entry_type */
    uint32_t len;  /* bytes of data, <= ASPEN_MAX_REQUEST_BYTES */
    uint8_t *data; /* owned by the holder of the entry; borrowed in updates and messages */
};

/* ---------------------------------------------------------------------------------------
 * Membership (thesis §4.3 joint consensus)
 * ------------------------------------------------------------------------------------- */

/* A configuration. Outside a joint configuration `n_outgoing == 0`. In a joint
 * configuration decisions need a majority of `voters` AND a majority of `outgoing` (the
 * two usually overlap). `learners` replicate but never count; `learners_next` are
 * outgoing voters that become learners when the joint configuration is left (a
 * demotion). Rules (etcd-raft's): no zero or repeated id within a list; a learner is
 * neither an incoming nor an outgoing voter; a member of learners_next is an outgoing but
 * not an incoming voter; outside a joint configuration learners_next is empty and
 * auto_leave false. */
struct raft_config {
    uint32_t n_voters, n_outgoing, n_learners, n_learners_next;
    raft_id voters[ASPEN_MAX_VOTERS];
    raft_id outgoing[ASPEN_MAX_VOTERS];
    raft_id learners[ASPEN_MAX_MEMBERS];
    raft_id learners_next[ASPEN_MAX_VOTERS];
    bool auto_leave; /* in joint: the leader proposes the leave on its own once applied */
};

enum raft_change_type {
    RAFT_CHANGE_ADD_VOTER = 0,   /* add, or promote a learner */
    RAFT_CHANGE_ADD_LEARNER = 1, /* add as learner, or demote a voter */
    RAFT_CHANGE_REMOVE = 2,
};

enum raft_transition {
    RAFT_TRANSITION_AUTO = 0,     /* simple if one voter changes, else joint + auto leave */
    RAFT_TRANSITION_IMPLICIT = 1, /* always joint, left automatically */
    RAFT_TRANSITION_EXPLICIT = 2, /* always joint, left by an empty change */
};

struct raft_change {
    uint8_t type; /* enum raft_change_type */
    raft_id node;
};

/* A membership change as proposed and as stored in a RAFT_ENTRY_CONF entry. Zero changes
 * means "leave the joint configuration". */
struct raft_conf_change {
    uint8_t transition; /* enum raft_transition */
    uint32_t n_changes;
    struct raft_change changes[ASPEN_RAFT_MAX_CHANGES];
};

/* Bytes an encoded raft_conf_change needs at most (raft_conf_change_encode). */
#define RAFT_CONF_CHANGE_MAX_BYTES (8 + 9 * ASPEN_RAFT_MAX_CHANGES)

/* ---------------------------------------------------------------------------------------
 * Persistent state
 * ------------------------------------------------------------------------------------- */

/* Figure 2's persistent state besides the log, plus the commit index (which needs no
 * fsync of its own: it is recoverable from peers, etcd-raft's MustSync rule). */
struct raft_hard_state {
    raft_term term;
    raft_id vote;
    raft_index commit;
};

/* What a snapshot stands for: the state machine after applying `index` (of `term`), with
 * the configuration in force at that point. The data itself never passes through the
 * core; the shell moves it. */
struct raft_snapshot_meta {
    raft_index index;
    raft_term term;
    struct raft_config config;
};

/* ---------------------------------------------------------------------------------------
 * Messages
 * ------------------------------------------------------------------------------------- */

enum raft_msg_type {
    RAFT_MSG_APPEND = 0,          /* AppendEntries (§5.3); index/log_term = previous entry */
    RAFT_MSG_APPEND_RESP = 1,     /* index = match (or, if reject, the rejected index) */
    RAFT_MSG_VOTE = 2,            /* RequestVote (§5.2); index/log_term = candidate's last */
    RAFT_MSG_VOTE_RESP = 3,       /* reject = vote denied; commit/log_term: voter's commit */
    RAFT_MSG_PREVOTE = 4,         /* thesis §9.6; term = the term the candidate would use */
    RAFT_MSG_PREVOTE_RESP = 5,    /* term = the request's term when granted */
    RAFT_MSG_HEARTBEAT = 6,       /* commit + context = the leader's read round (§6.4) */
    RAFT_MSG_HEARTBEAT_RESP = 7,  /* context echoes the round */
    RAFT_MSG_SNAPSHOT = 8,        /* InstallSnapshot (§5.1 of thesis ch. 5); data by shell */
    RAFT_MSG_TIMEOUT_NOW = 9,     /* leadership transfer (thesis §3.10) */
    RAFT_MSG_READ_INDEX = 10,     /* follower asks the leader for a read index; context = id */
    RAFT_MSG_READ_INDEX_RESP = 11 /* index = read index; reject = leader could not serve */
};
#define RAFT_MSG_TYPE_COUNT 12

/* Message flags. RAFT_MSG_F_TRANSFER on a VOTE: the campaign follows a TimeoutNow;
 * on an APPEND, HEARTBEAT or SNAPSHOT: the leader is transferring leadership. A voter
 * skips its leader lease for a transfer campaign only while the latest word from its
 * leader says a transfer is on — so a TimeoutNow delivered after the transfer was
 * abandoned cannot break the lease that lease reads rely on. */
#define RAFT_MSG_F_TRANSFER 0x1u

struct raft_msg {
    uint8_t type; /* enum raft_msg_type */
    uint8_t flags;
    raft_id from, to;
    raft_term term;
    raft_index index;   /* see the type */
    raft_term log_term; /* see the type; on APPEND_RESP reject: term at reject_hint */
    raft_index commit;  /* APPEND, HEARTBEAT: leader's commit */
    raft_index reject_hint;
    uint64_t context; /* HEARTBEAT(_RESP): read round; READ_INDEX(_RESP): request id */
    bool reject;
    uint32_t n_entries;                 /* APPEND only */
    const struct raft_entry *entries;   /* borrowed (points into the sender's log) */
    struct raft_snapshot_meta snapshot; /* SNAPSHOT only */
    /* Not on the wire: true if the message must wait until the update that produced it
     * is durable (contract rule 2). */
    bool after_persist;
};

/* ---------------------------------------------------------------------------------------
 * Events
 * ------------------------------------------------------------------------------------- */

enum raft_event_type {
    RAFT_EVENT_TICK = 0,            /* one unit of logical time passed */
    RAFT_EVENT_RECEIVE = 1,         /* a message arrived (already decoded and verified) */
    RAFT_EVENT_PROPOSE = 2,         /* leader only: append entries (ASPEN_E_NOT_LEADER) */
    RAFT_EVENT_READ = 3,            /* linearizable read; answered in update->reads */
    RAFT_EVENT_CONF_CHANGE = 4,     /* leader only: propose a membership change */
    RAFT_EVENT_TRANSFER = 5,        /* leader only: hand leadership to `node` */
    RAFT_EVENT_PERSISTED = 6,       /* the update marked (index, term) is durable */
    RAFT_EVENT_SNAPSHOT_TAKEN = 7,  /* the shell saved a snapshot: compact the log */
    RAFT_EVENT_SNAPSHOT_STATUS = 8, /* leader: a snapshot transfer to `node` ended */
    RAFT_EVENT_UNREACHABLE = 9,     /* leader: sending to `node` failed */
    RAFT_EVENT_CAMPAIGN = 10,       /* start an election now (tests, bootstrap of 1 node) */
};

struct raft_proposal {
    const uint8_t *data; /* borrowed for the call; the core copies it */
    uint32_t len;
};

struct raft_event {
    uint8_t type; /* enum raft_event_type */
    union {
        const struct raft_msg *msg; /* RECEIVE; borrowed for the call */
        struct {
            const struct raft_proposal *items; /* borrowed for the call */
            uint32_t n;
        } propose;
        uint64_t read_ctx; /* READ: the shell's id for the request, echoed in reads[] */
        const struct raft_conf_change *conf; /* CONF_CHANGE; borrowed for the call */
        raft_id node;                        /* TRANSFER, UNREACHABLE */
        struct {
            raft_index index;
            raft_term term;
        } persisted;                            /* PERSISTED */
        const struct raft_snapshot_meta *taken; /* SNAPSHOT_TAKEN; borrowed */
        struct {
            raft_id node;
            bool ok;
        } snapshot_status; /* SNAPSHOT_STATUS */
    } u;
};

/* ---------------------------------------------------------------------------------------
 * The update record
 * ------------------------------------------------------------------------------------- */

enum raft_role {
    RAFT_FOLLOWER = 0,
    RAFT_PRE_CANDIDATE = 1,
    RAFT_CANDIDATE = 2,
    RAFT_LEADER = 3,
};

/* A linearizable read's answer: serve it once the state machine applied `index`. If err is
 * nonzero the read failed (ASPEN_E_NOT_LEADER: leadership was lost or unknown; ASPEN_E_BUSY:
 * too many pending) and index is 0. */
struct raft_read_state {
    uint64_t ctx;
    raft_index index;
    int err;
};

struct raft_update {
    /* Persist. `must_persist` is set when anything below needs a durable write; then the
     * shell steps RAFT_EVENT_PERSISTED with (persist_index, persist_term) afterwards. */
    bool must_persist;
    bool must_sync; /* false if only the commit index changed: no fsync needed */
    bool hard_state_changed;
    struct raft_hard_state hard_state;
    bool has_snapshot; /* install: the shell already holds the data for this meta */
    struct raft_snapshot_meta snapshot;
    const struct raft_entry *entries; /* discard stored entries >= entries[0].index first */
    size_t n_entries;
    raft_index persist_index;
    raft_term persist_term;

    /* Send. */
    const struct raft_msg *msgs;
    size_t n_msgs;

    /* Apply, in order. Never includes entries beyond the commit index. */
    const struct raft_entry *committed;
    size_t n_committed;

    /* Reads that are now answered (or failed). */
    const struct raft_read_state *reads;
    size_t n_reads;

    /* PROPOSE / CONF_CHANGE: where the (first) new entry went. */
    raft_index proposed_index;
    raft_term proposed_term;

    /* The log has grown past the snapshot threshold: take a snapshot of the state machine
     * at its applied index and step RAFT_EVENT_SNAPSHOT_TAKEN. */
    bool want_snapshot;

    /* Volatile state after this step, for the shell's routing and metrics. */
    bool role_changed;
    uint8_t role; /* enum raft_role */
    raft_id leader;
    raft_term term;
    bool config_changed; /* raft_config() returns the new configuration */
};

/* ---------------------------------------------------------------------------------------
 * Creation
 * ------------------------------------------------------------------------------------- */

struct raft_options {
    raft_id id;
    uint32_t election_ticks;    /* minimum election timeout; drawn from [t, 2t) (§5.2) */
    uint32_t heartbeat_ticks;   /* < election_ticks */
    bool pre_vote;              /* thesis §9.6 */
    bool check_quorum;          /* leader steps down without a quorum; followers keep a lease */
    bool lease_reads;           /* needs check_quorum; set on every member alike */
    uint32_t lease_drift_ticks; /* the clock-drift bound lease reads assume (< election) */
    uint32_t max_msg_entries;
    uint64_t max_msg_bytes;
    uint32_t max_inflight_msgs;
    uint64_t max_inflight_bytes;
    uint64_t max_uncommitted_bytes; /* proposals beyond this are refused with ASPEN_E_BUSY */
    uint64_t snapshot_threshold;    /* entries since the last snapshot before asking */
    uint64_t snapshot_keep;         /* entries kept behind a snapshot for slow followers */
    struct aspen_random random;     /* election jitter; borrowed for the core's lifetime */
};

/* Fills opts with Aspen's defaults (PreVote and CheckQuorum on, lease reads off, limits
 * from constants.h) for member `id` with the given random source. */
void raft_options_default(struct raft_options *opts, raft_id id, struct aspen_random random);

/* What the shell recovered from storage. A brand-new member that joins an existing
 * cluster starts from all zeros and learns everything from the leader. A new cluster's
 * founders all start from raft_bootstrap(): one committed configuration entry at index 1,
 * so that joiners replaying the log from index 1 learn the founders too (a configuration
 * kept only in a snapshot at index 0 would never reach them). */
struct raft_boot {
    struct raft_hard_state hard_state;
    struct raft_snapshot_meta snapshot;
    const struct raft_entry *entries; /* snapshot.index+1 .. ; borrowed for the call */
    size_t n_entries;
    raft_index applied; /* the state machine's applied index (>= snapshot.index) */
};

struct raft;

/* Fills *boot (and *entry, whose data is `buf`) for a founding member of a new cluster
 * whose voters are founders[0..n). Every founder must use the same list. Errors:
 * ASPEN_E_INVALID (n == 0, n > ASPEN_MAX_VOTERS, zero or duplicate ids). */
int raft_bootstrap(const raft_id *founders, uint32_t n, uint8_t buf[RAFT_CONF_CHANGE_MAX_BYTES],
                   struct raft_entry *entry, struct raft_boot *boot);

/* Creates a core. On success *out belongs to the caller (raft_free). Errors:
 * ASPEN_E_INVALID (bad options or inconsistent boot state), ASPEN_E_NOMEM. */
int raft_create(struct raft **out, const struct raft_options *opts, const struct raft_boot *boot);

void raft_free(struct raft *r);

/* Processes one event and fills *update (owned by the core, valid until the next call).
 * The update is valid and must be processed whatever the return value: even a refused
 * event may come with committed entries handed out. Errors mean the event itself had no
 * effect: ASPEN_E_NOT_LEADER (update->leader is a hint), ASPEN_E_BUSY (limits, transfer or
 * configuration change in progress), ASPEN_E_INVALID (malformed event), ASPEN_E_TOO_LARGE,
 * ASPEN_E_NOMEM. */
int raft_step(struct raft *r, const struct raft_event *ev, const struct raft_update **update);

/* ---------------------------------------------------------------------------------------
 * Introspection
 * ------------------------------------------------------------------------------------- */

struct raft_status {
    raft_id id;
    uint8_t role;
    raft_id leader;
    struct raft_hard_state hard_state;
    raft_index first_index, last_index, applied, durable_index;
    raft_index snapshot_index;
    raft_term snapshot_term;
};

void raft_status(const struct raft *r, struct raft_status *st);
const struct raft_config *raft_config(const struct raft *r);

/* The term of the entry at index, 0 if unknown (compacted or beyond the log). */
raft_term raft_term_at(const struct raft *r, raft_index index);

/* The entry at index if the core still holds it in memory, else NULL. Borrowed until the
 * next raft_step(). */
const struct raft_entry *raft_entry_at(const struct raft *r, raft_index index);

/* Is `id` a voter (incoming or outgoing) / a learner in cfg? */
bool raft_config_is_voter(const struct raft_config *cfg, raft_id id);
bool raft_config_is_learner(const struct raft_config *cfg, raft_id id);

/* Encodes/decodes a raft_conf_change as stored in a RAFT_ENTRY_CONF entry. encode needs
 * RAFT_CONF_CHANGE_MAX_BYTES of space and returns the length used; decode returns
 * ASPEN_E_MALFORMED / ASPEN_E_TRUNCATED / ASPEN_E_TOO_LARGE on bad input. */
size_t raft_conf_change_encode(const struct raft_conf_change *cc, uint8_t *out);
int raft_conf_change_decode(const uint8_t *data, size_t len, struct raft_conf_change *cc);

#endif
