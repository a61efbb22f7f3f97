/*
 * The lessor (kv/lessor.h): leases in a dense array, an id -> index hash table for
 * lookups, and a binary min-heap of indexes ordered by deadline for expiry.
 *
 * One deadline per lease serves both states: the expiry while the lease is live, the
 * revoke retry time while it is revoking. So lessor_expired is a plain "pop everything
 * due" on one heap, and a retried lease simply goes back into the heap with a later
 * deadline. While the node is not primary every deadline is INT64_MAX: the heap stays
 * valid (all keys equal) and nothing is due.
 *
 * Removing a lease moves the last lease of the dense array into the hole, so the array
 * stays dense; the moved lease's table slot and heap entry are updated to its new index.
 */
#include "kv/lessor.h"

#include "base/assert.h"
#include "base/constants.h"
#include "base/mem.h"

#include <string.h>

#define NEVER_MS INT64_MAX

/* First allocation of the dense array and heap; the table starts at twice that. */
#define MIN_LEASES 16

_Static_assert(ASPEN_MAX_LEASES <= UINT32_MAX / 4, "lease indexes and table sizes are 32-bit");

void lessor_init(struct lessor *l)
{
    memset(l, 0, sizeof(*l));
}

void lessor_release(struct lessor *l)
{
    mem_free(l->leases);
    mem_free(l->heap);
    mem_free(l->table);
    memset(l, 0, sizeof(*l));
}

/* ---------------------------------------------------------------------------------------
 * id -> index table
 * ------------------------------------------------------------------------------------- */

static size_t slot_of(int64_t id, size_t cap)
{
    /* Fibonacci hashing: ids from a random source are spread already, but sequential
     * ids (tests, clients that pick their own) must not cluster. */
    return (size_t)(((uint64_t)id * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (cap - 1);
}

/* Index in leases of id, or SIZE_MAX. */
static size_t find(const struct lessor *l, int64_t id)
{
    if (l->table_cap == 0 || id <= 0)
        return SIZE_MAX;
    for (size_t i = slot_of(id, l->table_cap);; i = (i + 1) & (l->table_cap - 1)) {
        if (l->table[i].id == 0)
            return SIZE_MAX;
        if (l->table[i].id == id)
            return l->table[i].idx;
    }
}

static void table_put(struct lessor_slot *table, size_t cap, int64_t id, uint32_t idx)
{
    size_t i = slot_of(id, cap);
    while (table[i].id != 0 && table[i].id != id)
        i = (i + 1) & (cap - 1);
    table[i] = (struct lessor_slot){.id = id, .idx = idx};
}

/* Deletes id by backward shifting, so no tombstones build up. */
static void table_del(struct lessor *l, int64_t id)
{
    size_t mask = l->table_cap - 1;
    size_t i = slot_of(id, l->table_cap);
    while (l->table[i].id != id) {
        ASPEN_ASSERT(l->table[i].id != 0);
        i = (i + 1) & mask;
    }
    for (size_t j = (i + 1) & mask; l->table[j].id != 0; j = (j + 1) & mask) {
        size_t home = slot_of(l->table[j].id, l->table_cap);
        /* Slot j's entry may move to the hole i only if its home is not in (i, j]. */
        bool stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            l->table[i] = l->table[j];
            i = j;
        }
    }
    l->table[i] = (struct lessor_slot){0};
}

/* Makes room for one more lease in every structure. */
static int reserve_one(struct lessor *l)
{
    if (l->n >= ASPEN_MAX_LEASES)
        return ASPEN_E_FULL;
    if (l->n == l->cap) {
        size_t cap = l->cap;
        int rc = mem_grow(&l->leases, &cap, l->n, sizeof(*l->leases), MIN_LEASES, ASPEN_MAX_LEASES);
        if (rc)
            return rc;
        uint32_t *heap = mem_realloc(l->heap, cap * sizeof(*heap));
        if (!heap)
            return ASPEN_E_NOMEM; /* leases grew; cap stays: the next call retries */
        l->heap = heap;
        l->cap = cap;
    }
    if ((l->n + 1) * 2 > l->table_cap) {
        size_t cap = l->table_cap ? l->table_cap * 2 : 2 * MIN_LEASES;
        struct lessor_slot *table = mem_calloc(cap, sizeof(*table));
        if (!table)
            return ASPEN_E_NOMEM;
        for (size_t i = 0; i < l->table_cap; i++)
            if (l->table[i].id != 0)
                table_put(table, cap, l->table[i].id, l->table[i].idx);
        mem_free(l->table);
        l->table = table;
        l->table_cap = cap;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Heap on deadline
 * ------------------------------------------------------------------------------------- */

static int64_t key_at(const struct lessor *l, size_t pos)
{
    return l->leases[l->heap[pos]].deadline_ms;
}

static void heap_set(struct lessor *l, size_t pos, uint32_t idx)
{
    l->heap[pos] = idx;
    l->leases[idx].heap_pos = (uint32_t)pos;
}

static void sift_up(struct lessor *l, size_t pos)
{
    uint32_t idx = l->heap[pos];
    int64_t key = l->leases[idx].deadline_ms;
    while (pos > 0) {
        size_t parent = (pos - 1) / 2;
        if (key_at(l, parent) <= key)
            break;
        heap_set(l, pos, l->heap[parent]);
        pos = parent;
    }
    heap_set(l, pos, idx);
}

static void sift_down(struct lessor *l, size_t pos)
{
    uint32_t idx = l->heap[pos];
    int64_t key = l->leases[idx].deadline_ms;
    for (;;) {
        size_t child = 2 * pos + 1;
        if (child >= l->n)
            break;
        if (child + 1 < l->n && key_at(l, child + 1) < key_at(l, child))
            child++;
        if (key <= key_at(l, child))
            break;
        heap_set(l, pos, l->heap[child]);
        pos = child;
    }
    heap_set(l, pos, idx);
}

/* Restores the heap after lease idx's deadline changed. */
static void heap_fix(struct lessor *l, uint32_t idx)
{
    size_t pos = l->leases[idx].heap_pos;
    sift_up(l, pos);
    sift_down(l, l->leases[idx].heap_pos);
}

/* Rebuilds the heap from scratch in O(n) (after every deadline changed). */
static void heap_build(struct lessor *l)
{
    for (size_t i = 0; i < l->n; i++)
        heap_set(l, i, (uint32_t)i);
    for (size_t i = l->n / 2; i-- > 0;)
        sift_down(l, i);
}

/* ---------------------------------------------------------------------------------------
 * Leases
 * ------------------------------------------------------------------------------------- */

static bool ttl_ok(int64_t ttl_ms)
{
    return ttl_ms >= ASPEN_LEASE_MIN_TTL_MS && ttl_ms <= (int64_t)ASPEN_LEASE_MAX_TTL_MS;
}

static int64_t expiry(int64_t now_ms, int64_t ttl_ms)
{
    /* now is a monotonic or virtual clock far from INT64_MAX; ttl is at most a year. */
    ASPEN_ASSERT(now_ms <= INT64_MAX - (int64_t)ASPEN_LEASE_MAX_TTL_MS);
    return now_ms + ttl_ms;
}

int lessor_on_grant(struct lessor *l, int64_t id, int64_t ttl_ms, int64_t now_ms)
{
    /* Both come from applied entries, which a decoder may have let through unchecked. */
    if (id <= 0 || !ttl_ok(ttl_ms))
        return ASPEN_E_INVALID;
    if (find(l, id) != SIZE_MAX)
        return ASPEN_E_EXISTS;
    int rc = reserve_one(l);
    if (rc)
        return rc;
    uint32_t idx = (uint32_t)l->n++;
    l->leases[idx] = (struct lessor_lease){
        .id = id,
        .ttl_ms = ttl_ms,
        .deadline_ms = l->is_primary ? expiry(now_ms, ttl_ms) : NEVER_MS,
        .heap_pos = idx,
    };
    table_put(l->table, l->table_cap, id, idx);
    l->heap[idx] = idx;
    sift_up(l, idx);
    return 0;
}

int lessor_on_revoke(struct lessor *l, int64_t id)
{
    size_t idx = find(l, id);
    if (idx == SIZE_MAX)
        return ASPEN_E_LEASE_NOT_FOUND;
    table_del(l, id);

    /* Take it out of the heap: the last heap entry fills its place. */
    size_t pos = l->leases[idx].heap_pos;
    size_t last_pos = l->n - 1;
    if (pos != last_pos) {
        heap_set(l, pos, l->heap[last_pos]);
        /* The heap shrinks below before the fix, so sift within the remaining n - 1. */
    }

    /* Move the last lease into the hole of the dense array. */
    size_t last = l->n - 1;
    if (idx != last) {
        l->leases[idx] = l->leases[last];
        l->heap[l->leases[idx].heap_pos] = (uint32_t)idx;
        table_put(l->table, l->table_cap, l->leases[idx].id, (uint32_t)idx);
    }
    l->n--;
    if (pos < l->n)
        heap_fix(l, l->heap[pos]);
    return 0;
}

int lessor_load(struct lessor *l, const struct kv_lease *leases, size_t n, int64_t now_ms)
{
    bool primary = l->is_primary;
    lessor_release(l);
    l->is_primary = primary;
    for (size_t i = 0; i < n; i++) {
        int rc = lessor_on_grant(l, leases[i].id, leases[i].ttl_ms, now_ms);
        if (rc == ASPEN_E_EXISTS)
            rc = ASPEN_E_INVALID;
        if (rc) {
            lessor_release(l);
            l->is_primary = primary;
            return rc;
        }
    }
    return 0;
}

void lessor_promote(struct lessor *l, int64_t now_ms)
{
    l->is_primary = true;
    for (size_t i = 0; i < l->n; i++) {
        l->leases[i].deadline_ms = expiry(now_ms, l->leases[i].ttl_ms);
        l->leases[i].revoking = false;
    }
    heap_build(l);
}

void lessor_demote(struct lessor *l)
{
    l->is_primary = false;
    for (size_t i = 0; i < l->n; i++) {
        l->leases[i].deadline_ms = NEVER_MS;
        l->leases[i].revoking = false;
    }
    /* All keys are equal: any order is a heap. */
}

int lessor_keepalive(struct lessor *l, int64_t id, int64_t now_ms, int64_t *ttl_ms)
{
    if (!l->is_primary)
        return ASPEN_E_NOT_LEADER;
    size_t idx = find(l, id);
    if (idx == SIZE_MAX)
        return ASPEN_E_LEASE_NOT_FOUND;
    struct lessor_lease *lease = &l->leases[idx];
    if (lease->revoking || lease->deadline_ms <= now_ms)
        return ASPEN_E_LEASE_NOT_FOUND;
    lease->deadline_ms = expiry(now_ms, lease->ttl_ms);
    heap_fix(l, (uint32_t)idx);
    *ttl_ms = lease->ttl_ms;
    return 0;
}

int lessor_remaining(const struct lessor *l, int64_t id, int64_t now_ms, int64_t *remaining_ms,
                     int64_t *ttl_ms)
{
    if (!l->is_primary)
        return ASPEN_E_NOT_LEADER;
    size_t idx = find(l, id);
    if (idx == SIZE_MAX)
        return ASPEN_E_LEASE_NOT_FOUND;
    const struct lessor_lease *lease = &l->leases[idx];
    int64_t left = lease->revoking ? 0 : lease->deadline_ms - now_ms;
    *remaining_ms = left > 0 ? left : 0;
    if (ttl_ms)
        *ttl_ms = lease->ttl_ms;
    return 0;
}

size_t lessor_expired(struct lessor *l, int64_t now_ms, int64_t *ids, size_t max)
{
    if (!l->is_primary)
        return 0;
    size_t k = 0;
    while (k < max && l->n > 0 && key_at(l, 0) <= now_ms) {
        uint32_t idx = l->heap[0];
        struct lessor_lease *lease = &l->leases[idx];
        ids[k++] = lease->id;
        lease->revoking = true;
        lease->deadline_ms = now_ms + ASPEN_LEASE_REVOKE_RETRY_MS;
        sift_down(l, 0);
    }
    return k;
}

int64_t lessor_pick_id(const struct lessor *l, uint64_t random)
{
    /* At most ASPEN_MAX_LEASES ids are taken, so probing that many + 1 consecutive
     * candidates always finds a free one. */
    uint64_t candidate = random & (uint64_t)INT64_MAX;
    for (uint64_t i = 0; i <= (uint64_t)ASPEN_MAX_LEASES + 1; i++) {
        int64_t id = (int64_t)((candidate + i) & (uint64_t)INT64_MAX);
        if (id > 0 && find(l, id) == SIZE_MAX)
            return id;
    }
    ASPEN_UNREACHABLE();
}

int64_t lessor_clamp_ttl(int64_t ttl_ms)
{
    if (ttl_ms < ASPEN_LEASE_MIN_TTL_MS)
        return ASPEN_LEASE_MIN_TTL_MS;
    if (ttl_ms > (int64_t)ASPEN_LEASE_MAX_TTL_MS)
        return (int64_t)ASPEN_LEASE_MAX_TTL_MS;
    return ttl_ms;
}
