/*
 * kv_digest: one BLAKE3 hash over the whole state machine — KV_REV, KV_INDEX, LEASE,
 * LEASE_KEY, CLUSTER in full and the "kv." meta records — so replicas, backends and replays can
 * be compared byte for byte (the differential test, the simulator). Each record is
 * hashed as u8 table ++ be32 key length ++ key ++ be32 value length ++ value, so no two
 * different states produce the same byte stream.
 */
#include "kv/internal.h"

#include "base/hash.h"

static void hash_record(struct hash_state *h, uint8_t tb, struct slice k, struct slice v)
{
    uint8_t hdr[5];
    hdr[0] = tb;
    be32_store(hdr + 1, (uint32_t)k.len);
    hash_update(h, hdr, 5);
    hash_update(h, k.ptr, k.len);
    be32_store(hdr, (uint32_t)v.len);
    hash_update(h, hdr, 4);
    hash_update(h, v.ptr, v.len);
}

static int hash_table(struct store_txn *t, struct hash_state *h, enum store_table tb,
                      struct slice prefix)
{
    struct store_cursor *c;
    int rc = store_cursor_open(t, tb, &c);
    if (rc)
        return rc;
    struct slice k, v;
    for (rc = store_seek(c, prefix, &k, &v); rc == 0; rc = store_next(c, &k, &v)) {
        if (!slice_has_prefix(k, prefix))
            break;
        hash_record(h, (uint8_t)tb, k, v);
    }
    store_cursor_close(c);
    return rc == ASPEN_E_NOT_FOUND ? 0 : rc;
}

int kv_digest(struct store_txn *t, uint8_t out[32])
{
    static const enum store_table tables[] = {STORE_T_KV_REV, STORE_T_KV_INDEX, STORE_T_LEASE,
                                              STORE_T_LEASE_KEY, STORE_T_CLUSTER};
    struct hash_state h;
    hash_init_derive(&h, "aspen 2026 kv state digest v1");
    int rc = 0;
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]) && !rc; i++)
        rc = hash_table(t, &h, tables[i], slice_make(NULL, 0));
    if (!rc)
        rc = hash_table(t, &h, STORE_T_META, slice_str(KV_META_PREFIX));
    if (!rc)
        hash_final(&h, out, 32);
    return rc;
}
