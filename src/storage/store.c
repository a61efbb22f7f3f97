/*
 * The helpers of the storage interface (store.h) that every backend shares: the names
 * of the tables, used as LMDB sub-database names and in log lines. The names are part of
 * the on-disk format of the LMDB backend: renaming one orphans its data.
 */
#include "storage/store.h"

#include "base/assert.h"

const char *store_table_name(enum store_table tb)
{
    switch (tb) {
    case STORE_T_META:
        return "meta";
    case STORE_T_LOG:
        return "log";
    case STORE_T_KV_REV:
        return "kv_rev";
    case STORE_T_KV_INDEX:
        return "kv_index";
    case STORE_T_LEASE:
        return "lease";
    case STORE_T_LEASE_KEY:
        return "lease_key";
    case STORE_T_CLUSTER:
        return "cluster";
    case STORE_N_TABLES:
        break;
    }
    return "invalid";
}
