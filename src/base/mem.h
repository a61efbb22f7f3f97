/*
 * Memory: the one allocation hook, a bump arena and a fixed-capacity object pool.
 *
 * All heap allocation in Aspen goes through mem_alloc/mem_calloc/mem_realloc/mem_free.
 * That gives tests one switch to make the N-th allocation fail (so every error path
 * that handles ASPEN_E_NOMEM can be exercised) and a count of live allocations (so the
 * test harness can report a leak even without a sanitizer).
 *
 * Arenas serve short-lived groups of allocations freed together (decoding one request);
 * pools serve hot paths with a bound fixed at start-up (no allocation per request).
 */
#ifndef ASPEN_BASE_MEM_H
#define ASPEN_BASE_MEM_H

#include <stddef.h>
#include <stdint.h>

/* Like malloc/calloc/realloc/free. Return NULL on failure, including an injected one.
 * mem_alloc(0) returns a unique non-NULL pointer that must be freed. mem_realloc(p, 0)
 * is not allowed (its meaning differs between C standards): free explicitly. */
void *mem_alloc(size_t size);
void *mem_calloc(size_t count, size_t size);
void *mem_realloc(void *ptr, size_t size);
void mem_free(void *ptr);

/* Makes room for element n of a growable array: `array` is the address of the array
 * pointer (T **), *cap its capacity in elements of `size` bytes. When n == *cap the
 * capacity doubles (starting at min_cap), never beyond max elements. Returns 0,
 * ASPEN_E_FULL (max reached) or ASPEN_E_NOMEM; on error the array is unchanged. */
int mem_grow(void *array, size_t *cap, size_t n, size_t size, size_t min_cap, size_t max);

/* Fault injection: the n-th allocation call from now (1-based) returns NULL, and so do
 * all later ones if sticky is set. n == 0 turns injection off. Safe to call from any
 * thread, but "from now" is exact only while no other thread is allocating. */
void mem_fail_at(uint64_t n, int sticky);

/* Number of allocation calls made (successful or not) since start. */
uint64_t mem_alloc_calls(void);

/* Number of live allocations made through this module (allocations minus frees). */
int64_t mem_outstanding(void);

/* ---- Arena: bump allocation from chunks, all freed at once. ---- */

struct arena_chunk;

struct arena {
    struct arena_chunk *head; /* owned: newest chunk first */
    size_t chunk_bytes;       /* size of a regular chunk */
    size_t used_bytes;        /* bytes handed out since the last reset */
    size_t limit_bytes;       /* allocation fails once used_bytes would exceed this */
};

/* chunk_bytes: granularity of growth; limit_bytes: hard bound on what the arena hands
 * out (requests larger than chunk_bytes get a chunk of their own). Allocates nothing. */
void arena_init(struct arena *a, size_t chunk_bytes, size_t limit_bytes);

/* Returns size bytes aligned to align (a power of two, at most 64), or NULL when the
 * limit would be exceeded or memory is short. The memory belongs to the arena. */
void *arena_alloc(struct arena *a, size_t size, size_t align);

/* Forgets every allocation but keeps one chunk for reuse. */
void arena_reset(struct arena *a);

/* Frees all chunks; the arena may be initialized again. */
void arena_release(struct arena *a);

/* ---- Pool: fixed-size objects, fixed capacity, O(1) get/put, no allocation after init. ---- */

struct pool {
    uint8_t *slab;   /* owned: capacity * obj_size bytes */
    void *free_list; /* intrusive singly linked list through free objects */
    size_t obj_size; /* rounded up to pointer alignment */
    uint32_t capacity;
    uint32_t in_use;
};

/* Allocates the whole slab up front. Returns 0, ASPEN_E_INVALID (zero size or capacity),
 * ASPEN_E_OVERFLOW (slab size does not fit size_t) or ASPEN_E_NOMEM. */
int pool_init(struct pool *p, size_t obj_size, uint32_t capacity);

/* Returns a free object (contents undefined) or NULL when all are in use. */
void *pool_get(struct pool *p);

/* Returns obj, which must have come from pool_get on this pool, to the pool. A pointer
 * from elsewhere, or an object put back twice, fails an assertion. */
void pool_put(struct pool *p, void *obj);

/* Frees the slab. Every object must have been put back. */
void pool_release(struct pool *p);

#endif
