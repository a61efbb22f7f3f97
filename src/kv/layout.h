/*
 * The KV state machine's storage layout: how user keys become index keys that fit LMDB's
 * key limit and still sort like the user keys, and the byte formats of every record the
 * KV module writes. This comment is the reference (docs/ARCHITECTURE.md copies it); the
 * functions below are the only code that builds or parses these bytes.
 *
 * Index key IK(u) of a user key u (1..ASPEN_MAX_KEY_BYTES bytes). LMDB keys are at most
 * 511 bytes, so long user keys cannot be stored whole; IK must still sort like u so range
 * scans walk the index in key order.
 *   E(u)  = u with every 0x00 byte written as 0x00 0xFF (so 0x00 0x00 and 0x00 0x01 never
 *           occur inside E and can terminate it).
 *   Short form, when |E(u)| + 2 <= KV_IK_INLINE (480):  IK = E(u) ++ 0x00 0x00.
 *   Long form, otherwise:  T = the first 480 bytes of E(u), or 481 if byte 479 is the 0x00
 *           opening an escape pair (T = all of E(u) if E(u) is shorter), and
 *           IK = T ++ 0x00 0x01 ++ the first 16 bytes of BLAKE3(u).
 *   A short IK is at most 480 bytes and a long one at least 497, so the length tells the
 *   forms apart. IK is prefix-free, and memcmp order of IKs is the order of the user keys
 *   EXCEPT among long keys with the same T (a "long group"), which order by hash: range
 *   scans gather a whole group and order it by full key in memory (kv/read.c). Groups are
 *   contiguous in the index and ordered correctly against everything outside them.
 *
 * Tables (big-endian integers throughout; `~` is bitwise not):
 *   STORE_T_KV_INDEX  IK(u) ++ be64(~main_rev)  ->  be32 sub ++ u8 flags (bit0 tombstone)
 *       One record per revision that changed u; the newest comes first and all records of
 *       one key are contiguous. A read at revision R seeks IK(u) ++ be64(~R).
 *   STORE_T_KV_REV    be64 main ++ be32 sub  ->  u8 format (1) ++ u8 flags (bit0
 *       tombstone) ++ be64 create_rev ++ be64 version ++ be64 lease ++ be32 key_len ++ key
 *       ++ value (a tombstone has no value and zero create_rev, version and lease).
 *       sub numbers the changes within one revision (a txn or range delete writes many
 *       keys at one revision), from 0.
 *   STORE_T_LEASE     be64 id  ->  u8 format (2) ++ be64 ttl_ms ++ be64 n_keys (the
 *       records of the lease in STORE_T_LEASE_KEY, kept so ASPEN_MAX_KEYS_PER_LEASE can
 *       be checked without counting)
 *   STORE_T_LEASE_KEY be64 id ++ IK(u)  ->  empty
 *   STORE_T_META      "kv.applied"   -> be64 index ++ be64 term
 *                     "kv.rev"       -> be64 current revision (1 for the empty store)
 *                     "kv.compacted" -> be64 compacted revision (0: none)
 *                     "kv.compact"   -> be64 target ++ be64 main ++ be32 sub: the pending
 *                                       physical cleanup and the next KV_REV record it
 *                                       examines (absent: none pending). The cursor
 *                                       carries sub as well as main because one revision
 *                                       (a range delete, a lease revoke) may hold more
 *                                       records than one step examines.
 *                     "kv.cluster_id" -> be64 cluster id (absent before CLUSTER_INIT)
 *   Every KV meta name starts with "kv." (the snapshot stream copies exactly those).
 *   STORE_T_CLUSTER   the cluster registry: member records and join credentials. Their
 *       layout is drawn in kv/cluster.h and only kv/cluster.c builds or parses them.
 */
#ifndef ASPEN_KV_LAYOUT_H
#define ASPEN_KV_LAYOUT_H

#include "base/constants.h"
#include "base/slice.h"
#include "storage/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Format constants (changing one changes the bytes on disk). */
#define KV_IK_INLINE      480u /* longest short-form IK; also the length of a long T */
#define KV_IK_HASH_BYTES  16u  /* BLAKE3 prefix that tells long keys of one group apart */
#define KV_IK_LONG_TAIL   (2u + KV_IK_HASH_BYTES) /* 0x00 0x01 ++ hash */
#define KV_IK_MAX         (KV_IK_INLINE + 1u + KV_IK_LONG_TAIL)
#define KV_INDEX_KEY_MAX  (KV_IK_MAX + 8u)
#define KV_INDEX_VAL_LEN  5u
#define KV_REV_KEY_LEN    12u
#define KV_REC_HEADER     (1u + 1u + 8u + 8u + 8u + 4u)
#define KV_REC_FORMAT     1u
#define KV_LEASE_FORMAT   2u
#define KV_LEASE_VAL_LEN  17u
#define KV_FLAG_TOMBSTONE 0x01u

_Static_assert(KV_INDEX_KEY_MAX <= STORE_MAX_KEY, "an index key must fit LMDB's key limit");
_Static_assert(8u + KV_IK_MAX <= STORE_MAX_KEY, "a lease-key record must fit LMDB's key limit");
_Static_assert(KV_IK_INLINE >= 2u + 1u, "a short IK holds at least one byte and its end");

#define KV_META_APPLIED    "kv.applied"
#define KV_META_REV        "kv.rev"
#define KV_META_COMPACTED  "kv.compacted"
#define KV_META_COMPACT    "kv.compact"
#define KV_META_CLUSTER_ID "kv.cluster_id"
#define KV_META_PREFIX     "kv."

/* Writes IK(u) into out and returns its length. u must be 1..ASPEN_MAX_KEY_BYTES. */
size_t kv_ik_encode(struct slice u, uint8_t out[KV_IK_MAX]);

static inline bool kv_ik_is_long(size_t ik_len)
{
    return ik_len > KV_IK_INLINE;
}

/* The T part of a long IK (its group). */
static inline struct slice kv_ik_group(struct slice ik)
{
    return slice_make(ik.ptr, ik.len - KV_IK_LONG_TAIL);
}

/* Recovers u from a short-form IK into out (KV_IK_INLINE bytes). ASPEN_E_CORRUPT if ik is
 * not a well-formed short IK. */
int kv_ik_decode_short(struct slice ik, uint8_t *out, size_t *out_len);

/* The IK part of an index key; ASPEN_E_CORRUPT if the key cannot be one. */
int kv_index_split(struct slice k, struct slice *ik, int64_t *main_rev);

/* Index key IK ++ be64(~rev) into out (KV_INDEX_KEY_MAX); returns its length. */
size_t kv_index_key(struct slice ik, int64_t rev, uint8_t *out);

void kv_rev_key(int64_t main_rev, uint32_t sub, uint8_t out[KV_REV_KEY_LEN]);
int kv_rev_key_parse(struct slice k, int64_t *main_rev, uint32_t *sub);

/* A KV_REV record, decoded; key and value point into the record's bytes. */
struct kv_rec {
    bool tombstone;
    int64_t create_rev;
    int64_t version;
    int64_t lease;
    struct slice key;
    struct slice value;
};

/* ASPEN_E_CORRUPT on any inconsistency (format, flags, lengths). */
int kv_rec_decode(struct slice v, struct kv_rec *out);

/* Bytes of the encoded record, and the encoding into out (that many bytes). */
size_t kv_rec_size(const struct kv_rec *r);
void kv_rec_encode(const struct kv_rec *r, uint8_t *out);

/* Index record value. */
void kv_index_val(uint32_t sub, bool tombstone, uint8_t out[KV_INDEX_VAL_LEN]);
int kv_index_val_parse(struct slice v, uint32_t *sub, bool *tombstone);

#endif /* ASPEN_KV_LAYOUT_H */
