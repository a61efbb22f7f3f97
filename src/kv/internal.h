/*
 * What the files of the KV state machine share with each other (not with users of kv.h):
 * the per-command apply context, the point reader and the ordered scanner, the write
 * primitives, and the pieces apply.c dispatches to.
 */
#ifndef ASPEN_KV_INTERNAL_H
#define ASPEN_KV_INTERNAL_H

#include "kv/kv.h"
#include "kv/layout.h"

/* State of applying one command. Every key the command changes is written at new_rev,
 * with sub numbering the changes in order; `wrote` says whether the revision moved. */
struct kv_ctx {
    struct store_txn *t;      /* borrowed: the apply's write transaction */
    struct arena *a;          /* borrowed: results */
    struct kv_events *events; /* borrowed, may be NULL */
    int64_t rev;              /* the store's revision before this command */
    int64_t compacted;        /* the compacted revision before this command */
    int64_t new_rev;          /* rev + 1: the revision of this command's changes */
    uint32_t sub;             /* next sub position within new_rev */
    bool wrote;               /* something was written at new_rev */
    /* Something outside the revision history was written (the cluster registry, which
     * never moves the revision): apply.c asserts that a refusal comes before this too. */
    bool wrote_unversioned;
    struct buf scratch; /* owned: encodes one revision record at a time */
};

/* ---- meta.c ---- */

/* A be64 meta record; *v = dflt if absent. ASPEN_E_CORRUPT if it has the wrong size. */
int kv_meta_get_i64(struct store_txn *t, const char *name, int64_t dflt, int64_t *v);
int kv_meta_put_i64(struct store_txn *t, const char *name, int64_t v);

/* ---- read.c ---- */

/* One key's version as found in the index at some revision. */
struct kv_found {
    struct slice key; /* the user key: into the store, or into the scanner (short keys) */
    struct slice ik;  /* its index key prefix (into the store) */
    int64_t mod_rev;
    uint32_t sub;
    bool tombstone;
    bool has_rec;
    struct kv_rec rec; /* with has_rec: the revision record (into the store) */
};

/* Reads KV_REV (main, sub); a missing record is ASPEN_E_CORRUPT (the index named it). */
int kv_rev_get(struct store_txn *t, int64_t main_rev, uint32_t sub, struct kv_rec *rec);

/* The newest version of key with revision <= rev: 0 and *f (tombstones included; with
 * need_rec and not a tombstone, f->rec is filled), or ASPEN_E_NOT_FOUND if the key has no
 * version at or below rev. f->key is the caller's key. */
int kv_read_point(struct store_txn *t, struct slice key, int64_t rev, bool need_rec,
                  struct kv_found *f);

/* Walks the keys live at `rev` in [begin, end) (etcd range_end rules) in key order. The
 * slices it returns stay valid until the transaction's next write (not beyond the next
 * call for a short key's f->key, which lives in the scanner). Long-key groups are
 * gathered and ordered by full key (layout.h). */
struct kv_scanner {
    struct store_txn *t;
    struct store_cursor *c;     /* owned */
    struct store_cursor *c_rev; /* owned, opened on first use: revision records */
    int64_t rev;
    struct slice begin; /* borrowed */
    struct slice end;   /* borrowed */
    bool single;        /* end empty: the one key `begin` */
    bool to_end;        /* end "\0": no upper bound */
    bool need_rec;      /* fill f->rec (long keys always have it: it holds their key) */
    bool done;
    bool end_long; /* the end bound's IK is long: compare against its group T */
    size_t end_ik_len;
    struct slice k, v;    /* the cursor's record */
    struct kv_found *grp; /* owned: the current long group, ordered */
    size_t grp_n, grp_cap, grp_i;
    uint8_t end_ik[KV_IK_MAX];
    uint8_t keybuf[KV_IK_INLINE];
    uint8_t seekbuf[KV_INDEX_KEY_MAX];
};

int kv_scan_open(struct kv_scanner *s, struct store_txn *t, struct slice begin, struct slice end,
                 int64_t rev, bool need_rec);
/* 0 and the next live key, ASPEN_E_NOT_FOUND at the end, or a storage error. */
int kv_scan_next(struct kv_scanner *s, struct kv_found *f);
void kv_scan_close(struct kv_scanner *s);

/* ---- range.c ---- */

/* ASPEN_E_FUTURE_REV / ASPEN_E_COMPACTED for a request revision against the store's. */
int kv_range_check_rev(int64_t req_rev, int64_t current, int64_t compacted);

/* Range at revision rev (already checked), results in a. */
int kv_range_at(struct store_txn *t, const struct kv_range_req *req, int64_t rev, struct arena *a,
                struct kv_range_result *out);

/* Copies key (and the record's fields, the value if with_value) into a. */
int kv_kv_copy(struct arena *a, struct slice key, const struct kv_rec *rec, int64_t mod_rev,
               bool with_value, struct kv_kv *out);
/* A deep copy of in into a. */
int kv_kv_dup(struct arena *a, const struct kv_kv *in, struct kv_kv *out);

/* ---- write.c ---- */

/* Put and delete-range at ctx->new_rev, validated by the caller. Results go to ctx->a and
 * events to ctx->events. */
int kv_write_put(struct kv_ctx *ctx, const struct kv_put_req *req, struct kv_put_result *out);
int kv_write_delete(struct kv_ctx *ctx, const struct kv_delete_req *req,
                    struct kv_delete_result *out);
/* Writes a tombstone for the live key described by prev (copied: arena memory) and
 * detaches it from its lease. */
int kv_write_tombstone(struct kv_ctx *ctx, const struct kv_kv *prev);

int kv_events_push(struct kv_events *ev, const struct kv_event *e);

/* ---- txn.c ---- */

/* Put with etcd's checks (lease exists, ignore_value/ignore_lease need the key). */
int kv_put_apply(struct kv_ctx *ctx, const struct kv_put_req *req, struct kv_put_result *out);
int kv_txn_apply(struct kv_ctx *ctx, const struct kv_txn_req *req, struct kv_txn_result *out);

/* ---- lease.c ---- */

int kv_lease_grant_apply(struct kv_ctx *ctx, int64_t id, int64_t ttl_ms);
/* Moves lease id's attached-key count by delta (write.c, as keys attach and detach). */
int kv_lease_keys_adjust(struct store_txn *t, int64_t id, int delta);
int kv_lease_revoke_apply(struct kv_ctx *ctx, int64_t id);

/* ---- compact.c ---- */

int kv_compact_apply(struct kv_ctx *ctx, int64_t rev);
/* One cleanup step examining at most max revision records (apply uses
 * ASPEN_COMPACT_BATCH_REVISIONS; tests pass small numbers). */
int kv_compact_step(struct store_txn *t, size_t max);

/* ---- cluster.c ---- */

/* The rules a member or credential must keep, shared by the command codec (cmd.c, both
 * directions) and the record decoders (a stored record breaking them is corrupt):
 * ASPEN_E_INVALID (id 0, empty name or address, a byte outside 0x21..0x7e, a negative
 * time) or ASPEN_E_TOO_LARGE (a string over its limit). */
int kv_member_check(const struct kv_member *m);
int kv_credential_check(const struct kv_credential *c);

/* The five registry commands (kv/cluster.h). None moves the revision (ctx->wrote stays
 * false); each sets ctx->wrote_unversioned before its first write, after every check, so a
 * refusal (ASPEN_E_EXISTS, ASPEN_E_NOT_FOUND, ASPEN_E_LIMIT, ASPEN_E_PERMISSION) writes
 * nothing. The command was validated by kv_cmd_decode. */
int kv_cluster_init_apply(struct kv_ctx *ctx, uint64_t cluster_id);
int kv_member_set_apply(struct kv_ctx *ctx, const struct kv_member *m);
int kv_member_remove_apply(struct kv_ctx *ctx, raft_id id);
int kv_cred_add_apply(struct kv_ctx *ctx, const struct kv_credential *c, int64_t now_ms);
int kv_member_join_apply(struct kv_ctx *ctx, const uint8_t hash[KV_CLUSTER_HASH_BYTES],
                         int64_t now_ms, const struct kv_member *m);

#endif /* ASPEN_KV_INTERNAL_H */
