/*
 * The Aspen extras over the KV engine: CAS / CAD (including create-if-absent), BatchRead,
 * BatchWrite, ConditionalBatch and ScanKeys with opaque continuation tokens.
 *
 * They add no storage format and no new command: every write is an ordinary KV_CMD_TXN
 * built here and replicated like any other (so replicas, backends, watches and the
 * digest see nothing new), and every read is kv_range at one revision. The builders only
 * fill a struct kv_cmd and storage the caller provides for its compares and ops: no
 * allocation, and the slices passed in are borrowed — keep them (and the storage) alive
 * until the command has been encoded.
 *
 * Reading the applied result (struct kv_result res, res.kind == KV_CMD_TXN):
 *   - CAS / CAD: res.u.txn.succeeded says whether the write happened. On failure,
 *     res.u.txn.results[0].u.range holds the key's current state (n_kvs == 0: absent).
 *   - BatchWrite: res.rc == 0 and res.revision is the one revision of every write.
 *   - ConditionalBatch: res.u.txn.succeeded; when false, res.u.txn.failed_compare is the
 *     index (into the caller's conditions) of the first condition that did not hold, and
 *     nothing was written.
 */
#ifndef ASPEN_KV_EXTRAS_H
#define ASPEN_KV_EXTRAS_H

#include "base/constants.h"
#include "kv/kv.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Scan token layout: version (1) | revision (be64) | prefix tag (8) | key length (be32)
 * | last key | CRC-32C of everything before it (be32). */
#define KV_SCAN_TOKEN_VERSION  1
#define KV_SCAN_TOKEN_TAG      8
#define KV_SCAN_TOKEN_OVERHEAD (1 + 8 + KV_SCAN_TOKEN_TAG + 4 + 4)
_Static_assert(KV_SCAN_TOKEN_OVERHEAD + ASPEN_MAX_KEY_BYTES <= ASPEN_MAX_SCAN_TOKEN_BYTES,
               "a scan token with the longest key fits the token limit");

/* ---------------------------------------------------------------------------------------
 * Write builders
 * ------------------------------------------------------------------------------------- */

/* The storage one CAS or CAD command points into; owned by the caller. */
struct kv_cas_storage {
    struct kv_compare cmp;
    struct kv_op success;
    struct kv_op failure;
};

/* Compare-and-swap: put key = new_value if key's value equals *expected, or, with
 * expected == NULL, if key is absent (create-if-absent: compare create_revision == 0).
 * The failure branch ranges the key so the caller sees its current value.
 * ASPEN_E_INVALID (empty or oversized key). */
int kv_cas_build(struct slice key, const struct slice *expected, struct slice new_value,
                 struct kv_cas_storage *st, struct kv_cmd *out);

/* Compare-and-delete: delete key if its value equals expected (an absent key never
 * matches). The failure branch ranges the key. ASPEN_E_INVALID. */
int kv_cad_build(struct slice key, struct slice expected, struct kv_cas_storage *st,
                 struct kv_cmd *out);

/* One write of a batch: a put (value, lease) or, with is_delete, a single-key delete. */
struct kv_write {
    struct slice key;
    struct slice value;
    int64_t lease; /* 0: none */
    bool is_delete;
};

/* BatchWrite: n writes in one txn without compares, so all apply at one revision or (a
 * refusal at apply time, e.g. a missing lease) none does. ops has room for n (caller's
 * storage). ASPEN_E_INVALID (n > ASPEN_MAX_BATCH_KEYS, empty or oversized key),
 * ASPEN_E_DUPLICATE_KEY (a key written twice). */
int kv_batch_write_build(const struct kv_write *writes, size_t n, struct kv_op *ops,
                         struct kv_cmd *out);

/* ConditionalBatch: the writes apply only if every condition holds (etcd compares, borrowed
 * as given). Errors as kv_batch_write_build, and ASPEN_E_INVALID for more than
 * ASPEN_MAX_BATCH_KEYS conditions. */
int kv_conditional_batch_build(const struct kv_compare *conds, size_t n_conds,
                               const struct kv_write *writes, size_t n, struct kv_op *ops,
                               struct kv_cmd *out);

/* ---------------------------------------------------------------------------------------
 * Reads
 * ------------------------------------------------------------------------------------- */

/* BatchRead: n point reads at one revision (the store's current one if revision <= 0).
 * kvs[i] and found[i] (caller's arrays of n) receive key i; the kv's bytes are allocated
 * in a. *header_rev (may be NULL) = the revision read at. ASPEN_E_INVALID (n >
 * ASPEN_MAX_BATCH_KEYS, a bad key), ASPEN_E_COMPACTED, ASPEN_E_FUTURE_REV, storage errors. */
int kv_batch_read(struct store_txn *t, const struct slice *keys, size_t n, int64_t revision,
                  struct arena *a, struct kv_kv *kvs, bool *found, int64_t *header_rev);

struct kv_scan_result {
    struct kv_kv *kvs; /* n_kvs of them, ascending key order; allocated in the arena */
    size_t n_kvs;
    struct slice next_token; /* allocated in the arena; empty when the scan is done */
    int64_t revision;        /* the snapshot revision every page of this scan reads at */
};

/* ScanKeys: one page of the keys starting with prefix (empty: every key). limit 0 means
 * ASPEN_SCAN_DEFAULT_LIMIT. token empty starts a scan at the current revision; otherwise
 * it is a next_token of an earlier page for the same prefix, and this page continues
 * strictly after that page's last key at that page's revision. ASPEN_E_INVALID (limit <
 * 0 or > ASPEN_SCAN_MAX_LIMIT, a prefix over ASPEN_MAX_KEY_BYTES, a damaged or foreign
 * token), ASPEN_E_COMPACTED (the scan's revision was compacted since it started), storage
 * errors. */
int kv_scan(struct store_txn *t, struct slice prefix, int64_t limit, struct slice token,
            bool keys_only, struct arena *a, struct kv_scan_result *out);

#endif /* ASPEN_KV_EXTRAS_H */
