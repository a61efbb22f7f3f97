/*
 * The KV state machine: etcd v3 semantics (MVCC revisions, range, put, delete, txn,
 * compaction, leases) as pure logic over the storage transaction interface.
 *
 * Determinism is the contract: kv_apply reads nothing but its transaction and the entry —
 * no clock, no random source, no process state. Lease ids, TTLs, expiry decisions and the
 * time a join credential is checked against are chosen by the leader and carried in the
 * entry (kv_cmd). So every replica, and both storage backends, reach byte-identical tables
 * from the same log (the differential test and the simulator check this with kv_digest).
 *
 * Revisions (etcd's model): the store has one revision counter, starting at 1 for the
 * empty store. Each command that modifies something (a put, a delete that deleted
 * something, a txn whose executed branch wrote) increments it once; every key written by
 * that command gets mod_revision = the new revision. A key's create_revision is the
 * revision that created it (since its last delete), version counts its puts since then
 * (1 after creation), and a delete removes it (a tombstone in history). History is kept
 * until Compact(rev): reads at a revision below the compacted one fail ASPEN_E_COMPACTED,
 * reads above the current one fail ASPEN_E_FUTURE_REV.
 *
 * Keys are 1..ASPEN_MAX_KEY_BYTES raw bytes (NUL and invalid UTF-8 are ordinary bytes);
 * values 0..ASPEN_MAX_VALUE_BYTES. The empty key is invalid, as in etcd. range_end
 * follows etcd: empty = the single key; "\0" = every key >= key (from-key); otherwise
 * [key, range_end). kv_prefix_end() computes the range_end of a prefix.
 *
 * Memory: requests are borrowed for the call. Results are allocated in the arena the
 * caller passes (their slices point into it, never into the store), so they outlive the
 * transaction; the caller resets the arena when done with them.
 */
#ifndef ASPEN_KV_KV_H
#define ASPEN_KV_KV_H

#include "base/buf.h"
#include "base/mem.h"
#include "base/slice.h"
#include "kv/cluster.h"
#include "raft/raft.h"
#include "storage/store.h"

#include <stdbool.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------------------
 * Requests (etcd's RangeRequest, PutRequest, DeleteRangeRequest, TxnRequest)
 * ------------------------------------------------------------------------------------- */

enum kv_sort_order { KV_SORT_NONE = 0, KV_SORT_ASCEND = 1, KV_SORT_DESCEND = 2 };
enum kv_sort_target {
    KV_SORT_KEY = 0,
    KV_SORT_VERSION = 1,
    KV_SORT_CREATE = 2,
    KV_SORT_MOD = 3,
    KV_SORT_VALUE = 4,
};

struct kv_range_req {
    struct slice key;
    struct slice range_end;
    int64_t limit;       /* 0: no limit */
    int64_t revision;    /* <= 0: the current revision */
    uint8_t sort_order;  /* enum kv_sort_order */
    uint8_t sort_target; /* enum kv_sort_target */
    bool keys_only;
    bool count_only;
    int64_t min_mod_revision; /* 0: no filter */
    int64_t max_mod_revision;
    int64_t min_create_revision;
    int64_t max_create_revision;
    /* Not in etcd's request: stop at limit + 1 keys instead of counting the whole range
     * (count is then the keys looked at, not the total). For ScanKeys and other pagers,
     * which need only `more`: etcd's count makes every page walk to the end of the
     * range, so paging through n keys costs O(n^2 / limit). Ignored without a limit or
     * when sorting or filtering (those must see every key anyway). */
    bool skip_count;
};

struct kv_put_req {
    struct slice key;
    struct slice value;
    int64_t lease; /* 0: none */
    bool prev_kv;
    bool ignore_value; /* keep the current value (key must exist) */
    bool ignore_lease; /* keep the current lease (key must exist) */
};

struct kv_delete_req {
    struct slice key;
    struct slice range_end;
    bool prev_kv;
};

enum kv_compare_result {
    KV_CMP_EQUAL = 0,
    KV_CMP_GREATER = 1,
    KV_CMP_LESS = 2,
    KV_CMP_NOT_EQUAL = 3,
};
enum kv_compare_target {
    KV_CMP_VERSION = 0,
    KV_CMP_CREATE = 1,
    KV_CMP_MOD = 2,
    KV_CMP_VALUE = 3,
    KV_CMP_LEASE = 4,
};

/* etcd's Compare: with a range_end, it holds only if it holds for every key in the range
 * (an absent key compares as version 0, create 0, mod 0, lease 0, and no value — so a
 * value compare on an absent key is false). */
struct kv_compare {
    uint8_t result; /* enum kv_compare_result */
    uint8_t target; /* enum kv_compare_target */
    struct slice key;
    struct slice range_end;
    int64_t number;     /* VERSION, CREATE, MOD, LEASE */
    struct slice value; /* VALUE */
};

enum kv_op_kind { KV_OP_RANGE = 1, KV_OP_PUT = 2, KV_OP_DELETE = 3, KV_OP_TXN = 4 };

struct kv_txn_req;

struct kv_op {
    uint8_t kind; /* enum kv_op_kind */
    union {
        struct kv_range_req range;
        struct kv_put_req put;
        struct kv_delete_req del;
        const struct kv_txn_req *txn;
    } u;
};

/* Limits: at most ASPEN_MAX_TXN_OPS operations in all branches of all nesting levels
 * together, at most ASPEN_MAX_TXN_DEPTH levels, and no key written twice by the executed
 * branches (ASPEN_E_DUPLICATE_KEY, as etcd). */
struct kv_txn_req {
    const struct kv_compare *compares;
    uint32_t n_compares;
    const struct kv_op *success;
    uint32_t n_success;
    const struct kv_op *failure;
    uint32_t n_failure;
};

/* ---------------------------------------------------------------------------------------
 * Commands: what a log entry carries (RAFT_ENTRY_NORMAL data)
 * ------------------------------------------------------------------------------------- */

enum kv_cmd_kind {
    KV_CMD_PUT = 1,
    KV_CMD_DELETE = 2,
    KV_CMD_TXN = 3,
    KV_CMD_COMPACT = 4,      /* logical compaction at once + the first cleanup step */
    KV_CMD_COMPACT_STEP = 5, /* one more bounded cleanup step (leader proposes while pending) */
    KV_CMD_LEASE_GRANT = 6,
    KV_CMD_LEASE_REVOKE = 7, /* by a client, or by the leader on expiry */
    KV_CMD_NOOP = 8,         /* carries nothing; advances the applied index */
    /* The cluster registry (kv/cluster.h); none of these moves the revision. */
    KV_CMD_CLUSTER_INIT = 9,   /* set the cluster id once (ASPEN_E_EXISTS after) */
    KV_CMD_MEMBER_SET = 10,    /* add or update a member record */
    KV_CMD_MEMBER_REMOVE = 11, /* drop a member record (ASPEN_E_NOT_FOUND) */
    KV_CMD_CRED_ADD = 12,      /* store a join credential's hash */
    KV_CMD_MEMBER_JOIN = 13,   /* credential check (+ consume) and member record */
};

struct kv_cmd {
    uint8_t kind; /* enum kv_cmd_kind */
    union {
        struct kv_put_req put;
        struct kv_delete_req del;
        struct kv_txn_req txn;
        struct {
            int64_t revision;
        } compact;
        struct {
            int64_t id;     /* chosen by the leader if the client gave 0; > 0 */
            int64_t ttl_ms; /* clamped by the leader to [MIN, MAX]_TTL */
        } lease_grant;
        struct {
            int64_t id;
        } lease_revoke;
        struct {
            uint64_t cluster_id; /* != 0 */
        } cluster_init;
        struct kv_member member_set;
        struct {
            raft_id id;
        } member_remove;
        struct {
            struct kv_credential cred;
            int64_t now_ms; /* the leader's clock: expired credentials are dropped */
        } cred_add;
        struct {
            uint8_t hash[KV_CLUSTER_HASH_BYTES]; /* BLAKE3 of the presented secret */
            int64_t now_ms;                      /* the leader's clock, for the expiry */
            struct kv_member member;
        } member_join;
    } u;
};

/* Appends the stable binary encoding of cmd (versioned; see kv/cmd.c) to out. Validates
 * first: ASPEN_E_INVALID (empty key, bad enum, txn limits), ASPEN_E_TOO_LARGE (key, value
 * or the whole command over its limit). */
int kv_cmd_encode(const struct kv_cmd *cmd, struct buf *out);

/* Decodes entry data into *cmd; nested arrays and slices are allocated in / point into
 * `a` and `data` (borrowed: keep data alive while using cmd). ASPEN_E_MALFORMED,
 * ASPEN_E_TRUNCATED, ASPEN_E_TOO_LARGE, ASPEN_E_NOMEM. Never reads out of bounds. */
int kv_cmd_decode(struct slice data, struct arena *a, struct kv_cmd *cmd);

/* ---------------------------------------------------------------------------------------
 * Results
 * ------------------------------------------------------------------------------------- */

/* etcd's mvccpb.KeyValue. */
struct kv_kv {
    struct slice key;
    struct slice value; /* empty with keys_only */
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease;
};

struct kv_range_result {
    struct kv_kv *kvs; /* n_kvs of them, in the requested order */
    size_t n_kvs;
    bool more;     /* more keys matched than were returned (limit) */
    int64_t count; /* every key that matched (before limit) */
};

struct kv_put_result {
    bool has_prev;
    struct kv_kv prev;
};

struct kv_delete_result {
    int64_t deleted;
    struct kv_kv *prev_kvs; /* with prev_kv */
    size_t n_prev;
};

struct kv_txn_result;

struct kv_op_result {
    uint8_t kind; /* enum kv_op_kind */
    union {
        struct kv_range_result range;
        struct kv_put_result put;
        struct kv_delete_result del;
        struct kv_txn_result *txn;
    } u;
};

struct kv_txn_result {
    bool succeeded;
    int32_t failed_compare;       /* index of the first compare that failed, -1 if none */
    struct kv_op_result *results; /* one per op of the executed branch */
    size_t n_results;
};

/* The outcome of applying one entry. */
struct kv_result {
    /* 0, or the reason this command changed nothing (the entry is still applied, on every
     * replica alike): ASPEN_E_LEASE_NOT_FOUND, ASPEN_E_NOT_FOUND (ignore_value on an
     * absent key, MEMBER_REMOVE of an absent member), ASPEN_E_COMPACTED /
     * ASPEN_E_FUTURE_REV (compact), ASPEN_E_EXISTS (lease id taken; cluster id already
     * set, member id recorded with another key, credential hash stored: kv/cluster.h),
     * ASPEN_E_DUPLICATE_KEY, ASPEN_E_MALFORMED (undecodable entry data), ASPEN_E_LIMIT (a
     * table bound), ASPEN_E_PERMISSION (MEMBER_JOIN with an unknown or expired
     * credential). */
    int rc;
    uint8_t kind;     /* enum kv_cmd_kind, 0 for non-command entries */
    int64_t revision; /* the store's revision after this entry */
    union {
        struct kv_put_result put;
        struct kv_delete_result del;
        struct kv_txn_result txn;
        struct {
            int64_t id;
            int64_t ttl_ms;
        } lease_grant;
    } u;
};

/* ---------------------------------------------------------------------------------------
 * Change events (for the watch hub): every key change an entry made, in order.
 * ------------------------------------------------------------------------------------- */

enum kv_event_type { KV_EVENT_PUT = 0, KV_EVENT_DELETE = 1 };

struct kv_event {
    uint8_t type;    /* enum kv_event_type */
    struct kv_kv kv; /* DELETE: key, mod_revision = the delete's revision, rest zero */
    bool has_prev;
    struct kv_kv prev; /* the key before this change, when it existed */
};

/* A growable list of events, allocated in its arena. */
struct kv_events {
    struct arena *arena;
    struct kv_event *ev;
    size_t n;
    size_t cap;
};

/* ---------------------------------------------------------------------------------------
 * Applying entries
 * ------------------------------------------------------------------------------------- */

/* Creates the KV meta records of an empty store (revision 1, nothing compacted, applied
 * 0) if they do not exist yet; a no-op on an initialised store. */
int kv_init(struct store_txn *t);

/* Applies one committed Raft entry inside write transaction t and records e->index/term
 * as the applied index, in the same transaction. Normal entries carry a kv_cmd (empty
 * data = no-op); configuration entries only advance the applied index. `res` (may be
 * NULL) and `events` (may be NULL) receive the outcome, allocated in `a` / events->arena;
 * `a` may be NULL only when `res` is (the command is then decoded in a private arena).
 * Returns 0 — command-level refusals go to res->rc — or a storage error (ASPEN_E_FULL,
 * ASPEN_E_IO, ASPEN_E_NOMEM, ASPEN_E_CORRUPT), after which the caller must abort t.
 * Asserts e->index == applied + 1 (entries are applied in order, exactly once). */
int kv_apply(struct store_txn *t, const struct raft_entry *e, struct arena *a,
             struct kv_result *res, struct kv_events *events);

/* The applied index and term (0, 0 for a fresh store). */
int kv_applied(struct store_txn *t, raft_index *index, raft_term *term);

/* The current and compacted revisions. */
int kv_revisions(struct store_txn *t, int64_t *current, int64_t *compacted);

/* True if a compaction's physical cleanup is unfinished: the leader should propose
 * KV_CMD_COMPACT_STEP. */
int kv_compact_pending(struct store_txn *t, bool *pending);

/* ---------------------------------------------------------------------------------------
 * Reads (any transaction: a read transaction for serving, the write one inside apply)
 * ------------------------------------------------------------------------------------- */

/* Range (etcd semantics). *header_rev = the store's current revision. ASPEN_E_COMPACTED,
 * ASPEN_E_FUTURE_REV, ASPEN_E_INVALID. */
int kv_range(struct store_txn *t, const struct kv_range_req *req, struct arena *a,
             struct kv_range_result *out, int64_t *header_rev);

/* Every change with revision in [from_rev, to_rev] (to_rev <= 0: up to the current one)
 * to keys in [key, range_end) (etcd range_end rules), in revision order, with prev_kv if
 * `prev` — what a watch needs to catch up from history. About `max` events (0: no
 * limit): a revision is never split, so the last revision returned may take the count
 * past max; *next_rev is where to continue (to_rev + 1 when everything was returned).
 * ASPEN_E_COMPACTED if from_rev < the compacted revision (== is allowed, as etcd's
 * watch allows it). */
int kv_history(struct store_txn *t, struct slice key, struct slice range_end, int64_t from_rev,
               int64_t to_rev, bool prev, size_t max, struct kv_events *out, int64_t *next_rev);

/* ---------------------------------------------------------------------------------------
 * Leases (the state; the leader's expiry clock is kv/lessor.h)
 * ------------------------------------------------------------------------------------- */

struct kv_lease {
    int64_t id;
    int64_t ttl_ms; /* as granted */
    int64_t n_keys; /* live keys attached */
};

/* ASPEN_E_LEASE_NOT_FOUND if absent. With keys != NULL, also the attached keys (sorted,
 * allocated in a). */
int kv_lease_get(struct store_txn *t, int64_t id, struct kv_lease *out, struct arena *a,
                 struct slice **keys, size_t *n_keys);

/* Every lease, in id order, allocated in a. */
int kv_lease_list(struct store_txn *t, struct arena *a, struct kv_lease **out, size_t *n);

/* ---------------------------------------------------------------------------------------
 * Whole-state digest and helpers
 * ------------------------------------------------------------------------------------- */

/* BLAKE3 over the state machine's tables and meta (keyspace with history, key index,
 * leases, cluster registry, revisions, applied index, cluster id) — not the Raft log or
 * hard state. Equal states, equal digests, on either backend. */
int kv_digest(struct store_txn *t, uint8_t out[32]);

/* The range_end that selects every key starting with prefix ("\0" if prefix is all
 * 0xff bytes, i.e. from-key). Allocated in a. */
struct slice kv_prefix_end(struct slice prefix, struct arena *a);

/* Does key fall in [begin, range_end) by etcd's rules? */
bool kv_in_range(struct slice key, struct slice begin, struct slice range_end);

#endif /* ASPEN_KV_KV_H */
