/*
 * Byte formats of the KV layout (kv/layout.h): index keys IK(u), index and revision
 * records, and etcd's range helpers (kv_prefix_end, kv_in_range).
 *
 * Everything read back from the store is validated here before use, so a damaged record
 * surfaces as ASPEN_E_CORRUPT instead of an out-of-bounds read further up.
 */
#include "kv/kv.h"
#include "kv/layout.h"

#include "base/assert.h"
#include "base/hash.h"

#include <string.h>

_Static_assert(ASPEN_MAX_KEY_BYTES <= UINT32_MAX, "a key length must fit a be32 field");

size_t kv_ik_encode(struct slice u, uint8_t out[KV_IK_MAX])
{
    ASPEN_ASSERT(u.len >= 1 && u.len <= ASPEN_MAX_KEY_BYTES);
    /* Emit E(u) until it reaches KV_IK_INLINE bytes; an escape pair started at byte 479
     * runs to 481, which is exactly the long form's T. */
    size_t n = 0, i = 0;
    for (; i < u.len && n < KV_IK_INLINE; i++) {
        if (u.ptr[i] == 0) {
            out[n++] = 0x00;
            out[n++] = 0xFF;
        } else {
            out[n++] = u.ptr[i];
        }
    }
    if (i == u.len && n + 2 <= KV_IK_INLINE) {
        out[n++] = 0x00;
        out[n++] = 0x00;
        return n;
    }
    uint8_t h[HASH_BYTES];
    hash_bytes(u.ptr, u.len, h);
    out[n++] = 0x00;
    out[n++] = 0x01;
    memcpy(out + n, h, KV_IK_HASH_BYTES);
    n += KV_IK_HASH_BYTES;
    ASPEN_ASSERT(kv_ik_is_long(n) && n <= KV_IK_MAX);
    return n;
}

int kv_ik_decode_short(struct slice ik, uint8_t *out, size_t *out_len)
{
    if (ik.len < 3 || ik.len > KV_IK_INLINE || ik.ptr[ik.len - 2] != 0 || ik.ptr[ik.len - 1] != 0)
        return ASPEN_E_CORRUPT;
    size_t n = 0, end = ik.len - 2;
    for (size_t i = 0; i < end; i++) {
        uint8_t b = ik.ptr[i];
        if (b == 0) {
            if (i + 1 >= end || ik.ptr[i + 1] != 0xFF)
                return ASPEN_E_CORRUPT;
            i++;
        }
        out[n++] = b;
    }
    *out_len = n;
    return 0;
}

int kv_index_split(struct slice k, struct slice *ik, int64_t *main_rev)
{
    if (k.len < 3 + 8 || k.len > KV_INDEX_KEY_MAX)
        return ASPEN_E_CORRUPT;
    size_t n = k.len - 8;
    /* A long IK's T is 479..481 bytes (E(u) is longer than 478 bytes, or it would be short). */
    if (kv_ik_is_long(n) && n < KV_IK_INLINE - 1 + KV_IK_LONG_TAIL)
        return ASPEN_E_CORRUPT;
    uint64_t r = ~be64_load(k.ptr + n);
    if (r == 0 || r > INT64_MAX)
        return ASPEN_E_CORRUPT;
    *ik = slice_make(k.ptr, n);
    *main_rev = (int64_t)r;
    return 0;
}

size_t kv_index_key(struct slice ik, int64_t rev, uint8_t *out)
{
    ASPEN_ASSERT(ik.len <= KV_IK_MAX && rev >= 0);
    memcpy(out, ik.ptr, ik.len);
    be64_store(out + ik.len, ~(uint64_t)rev);
    return ik.len + 8;
}

void kv_rev_key(int64_t main_rev, uint32_t sub, uint8_t out[KV_REV_KEY_LEN])
{
    ASPEN_ASSERT(main_rev >= 0);
    be64_store(out, (uint64_t)main_rev);
    be32_store(out + 8, sub);
}

int kv_rev_key_parse(struct slice k, int64_t *main_rev, uint32_t *sub)
{
    if (k.len != KV_REV_KEY_LEN)
        return ASPEN_E_CORRUPT;
    uint64_t m = be64_load(k.ptr);
    if (m == 0 || m > INT64_MAX)
        return ASPEN_E_CORRUPT;
    *main_rev = (int64_t)m;
    *sub = be32_load(k.ptr + 8);
    return 0;
}

int kv_rec_decode(struct slice v, struct kv_rec *out)
{
    if (v.len < KV_REC_HEADER || v.ptr[0] != KV_REC_FORMAT || (v.ptr[1] & ~KV_FLAG_TOMBSTONE))
        return ASPEN_E_CORRUPT;
    out->tombstone = (v.ptr[1] & KV_FLAG_TOMBSTONE) != 0;
    out->create_rev = (int64_t)be64_load(v.ptr + 2);
    out->version = (int64_t)be64_load(v.ptr + 10);
    out->lease = (int64_t)be64_load(v.ptr + 18);
    uint32_t klen = be32_load(v.ptr + 26);
    if (klen == 0 || klen > ASPEN_MAX_KEY_BYTES || klen > v.len - KV_REC_HEADER)
        return ASPEN_E_CORRUPT;
    out->key = slice_make(v.ptr + KV_REC_HEADER, klen);
    out->value = slice_make(v.ptr + KV_REC_HEADER + klen, v.len - KV_REC_HEADER - klen);
    if (out->value.len == 0)
        out->value.ptr = NULL;
    if (out->tombstone) {
        if (out->value.len || out->create_rev || out->version || out->lease)
            return ASPEN_E_CORRUPT;
    } else if (out->create_rev <= 0 || out->version <= 0 || out->lease < 0 ||
               out->value.len > ASPEN_MAX_VALUE_BYTES) {
        return ASPEN_E_CORRUPT;
    }
    return 0;
}

size_t kv_rec_size(const struct kv_rec *r)
{
    return KV_REC_HEADER + r->key.len + (r->tombstone ? 0 : r->value.len);
}

void kv_rec_encode(const struct kv_rec *r, uint8_t *out)
{
    ASPEN_ASSERT(r->key.len >= 1 && r->key.len <= ASPEN_MAX_KEY_BYTES);
    out[0] = KV_REC_FORMAT;
    out[1] = r->tombstone ? KV_FLAG_TOMBSTONE : 0;
    be64_store(out + 2, (uint64_t)r->create_rev);
    be64_store(out + 10, (uint64_t)r->version);
    be64_store(out + 18, (uint64_t)r->lease);
    be32_store(out + 26, (uint32_t)r->key.len);
    memcpy(out + KV_REC_HEADER, r->key.ptr, r->key.len);
    if (!r->tombstone && r->value.len)
        memcpy(out + KV_REC_HEADER + r->key.len, r->value.ptr, r->value.len);
}

void kv_index_val(uint32_t sub, bool tombstone, uint8_t out[KV_INDEX_VAL_LEN])
{
    be32_store(out, sub);
    out[4] = tombstone ? KV_FLAG_TOMBSTONE : 0;
}

int kv_index_val_parse(struct slice v, uint32_t *sub, bool *tombstone)
{
    if (v.len != KV_INDEX_VAL_LEN || (v.ptr[4] & ~KV_FLAG_TOMBSTONE))
        return ASPEN_E_CORRUPT;
    *sub = be32_load(v.ptr);
    *tombstone = (v.ptr[4] & KV_FLAG_TOMBSTONE) != 0;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * etcd's range rules
 * ------------------------------------------------------------------------------------- */

struct slice kv_prefix_end(struct slice prefix, struct arena *a)
{
    /* etcd's GetPrefixRangeEnd: drop trailing 0xff bytes and increment the last one; if
     * nothing is left, the range runs to the end ("\0"). */
    size_t n = prefix.len;
    while (n > 0 && prefix.ptr[n - 1] == 0xFF)
        n--;
    uint8_t *p = arena_alloc(a, n ? n : 1, 1);
    if (!p)
        return slice_make(NULL, 0);
    if (n == 0) {
        p[0] = 0;
        return slice_make(p, 1);
    }
    memcpy(p, prefix.ptr, n);
    p[n - 1]++;
    return slice_make(p, n);
}

bool kv_in_range(struct slice key, struct slice begin, struct slice range_end)
{
    if (range_end.len == 0)
        return slice_eq(key, begin);
    if (slice_cmp(key, begin) < 0)
        return false;
    if (range_end.len == 1 && range_end.ptr[0] == 0)
        return true;
    return slice_cmp(key, range_end) < 0;
}
