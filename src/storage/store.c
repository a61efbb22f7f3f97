/*
 * What every backend shares: the names of the tables (LMDB sub-database names, and the
 * words errors and logs use for them).
 */
#include "storage/store.h"

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
    case STORE_N_TABLES:
        break;
    }
    return "?";
}
