/*
 * The allocation hook, arena and pool declared in base/mem.h.
 *
 * Counters are atomics with relaxed ordering: they are statistics and a fault trigger,
 * not synchronisation, and they must stay cheap on every allocation.
 */
#include "base/mem.h"

#include "base/assert.h"
#include <aspen/error.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static atomic_uint_fast64_t alloc_calls;
static atomic_int_fast64_t outstanding;
static atomic_uint_fast64_t fail_at; /* absolute call number that fails; 0 = off */
static atomic_int fail_sticky;

/* Counts this call and says whether it must fail. */
static int should_fail(void)
{
    uint64_t call = atomic_fetch_add_explicit(&alloc_calls, 1, memory_order_relaxed) + 1;
    uint64_t at = atomic_load_explicit(&fail_at, memory_order_relaxed);
    if (at == 0)
        return 0;
    if (call == at)
        return 1;
    return call > at && atomic_load_explicit(&fail_sticky, memory_order_relaxed);
}

void *mem_alloc(size_t size)
{
    if (should_fail())
        return NULL;
    void *p = malloc(size ? size : 1);
    if (p)
        atomic_fetch_add_explicit(&outstanding, 1, memory_order_relaxed);
    return p;
}

void *mem_calloc(size_t count, size_t size)
{
    if (should_fail())
        return NULL;
    if (count == 0 || size == 0)
        count = size = 1; /* a unique zero-size block, never count * 1 bytes */
    void *p = calloc(count, size);
    if (p)
        atomic_fetch_add_explicit(&outstanding, 1, memory_order_relaxed);
    return p;
}

void *mem_realloc(void *ptr, size_t size)
{
    ASPEN_ASSERT(size > 0);
    if (ptr == NULL)
        return mem_alloc(size);
    if (should_fail())
        return NULL;
    return realloc(ptr, size);
}

int mem_grow(void *array, size_t *cap, size_t n, size_t size, size_t min_cap, size_t max)
{
    ASPEN_ASSERT(n <= *cap && size > 0 && min_cap > 0);
    if (n < *cap)
        return 0;
    if (*cap >= max)
        return ASPEN_E_FULL;
    size_t want = *cap ? *cap * 2 : min_cap;
    if (want > max)
        want = max;
    if (want > SIZE_MAX / size)
        return ASPEN_E_NOMEM;
    /* `array` points at a T *: copy the pointer in and out rather than alias it. */
    void *old;
    memcpy(&old, array, sizeof(old));
    void *grown = mem_realloc(old, want * size);
    if (!grown)
        return ASPEN_E_NOMEM;
    memcpy(array, &grown, sizeof(grown));
    *cap = want;
    return 0;
}

void mem_free(void *ptr)
{
    if (ptr == NULL)
        return;
    atomic_fetch_sub_explicit(&outstanding, 1, memory_order_relaxed);
    free(ptr);
}

void mem_fail_at(uint64_t n, int sticky)
{
    uint64_t now = atomic_load_explicit(&alloc_calls, memory_order_relaxed);
    atomic_store_explicit(&fail_sticky, sticky, memory_order_relaxed);
    atomic_store_explicit(&fail_at, n ? now + n : 0, memory_order_relaxed);
}

uint64_t mem_alloc_calls(void)
{
    return atomic_load_explicit(&alloc_calls, memory_order_relaxed);
}

int64_t mem_outstanding(void)
{
    return atomic_load_explicit(&outstanding, memory_order_relaxed);
}

/* ---- Arena ---- */

/* data[] is only as aligned as malloc makes it (max_align_t), so larger alignments are
 * computed on absolute addresses in take(), never assumed from the chunk. */
struct arena_chunk {
    struct arena_chunk *next;
    size_t size; /* usable bytes in data[] */
    size_t used;
    _Alignas(max_align_t) uint8_t data[];
};

void arena_init(struct arena *a, size_t chunk_bytes, size_t limit_bytes)
{
    ASPEN_ASSERT(chunk_bytes > 0);
    a->head = NULL;
    a->chunk_bytes = chunk_bytes;
    a->used_bytes = 0;
    a->limit_bytes = limit_bytes;
}

static struct arena_chunk *chunk_new(size_t size)
{
    if (size > SIZE_MAX - sizeof(struct arena_chunk))
        return NULL;
    struct arena_chunk *c = mem_alloc(sizeof(struct arena_chunk) + size);
    if (c) {
        c->next = NULL;
        c->size = size;
        c->used = 0;
    }
    return c;
}

/* Carves size bytes at an address aligned to align from c, or returns NULL. */
static void *take(struct arena_chunk *c, size_t size, size_t align)
{
    uintptr_t base = (uintptr_t)c->data;
    uintptr_t at = (base + c->used + (align - 1)) & ~(uintptr_t)(align - 1);
    size_t start = (size_t)(at - base);
    if (start > c->size || size > c->size - start)
        return NULL;
    c->used = start + size;
    return c->data + start;
}

void *arena_alloc(struct arena *a, size_t size, size_t align)
{
    ASPEN_ASSERT(align > 0 && align <= 64 && (align & (align - 1)) == 0);
    if (size > a->limit_bytes - a->used_bytes)
        return NULL;
    struct arena_chunk *c = a->head;
    void *p = c ? take(c, size, align) : NULL;
    if (!p) {
        /* Room for the worst-case alignment padding as well. Oversized requests get a
         * chunk of their own, placed behind the current head so the head's free space
         * stays available for the small allocations that follow. */
        if (size > SIZE_MAX - align)
            return NULL;
        size_t need = size + align - 1;
        int own = need > a->chunk_bytes;
        struct arena_chunk *n = chunk_new(own ? need : a->chunk_bytes);
        if (!n)
            return NULL;
        p = take(n, size, align);
        ASPEN_ASSERT(p != NULL);
        if (own && c) {
            n->next = c->next;
            c->next = n;
        } else {
            n->next = c;
            a->head = n;
        }
    }
    a->used_bytes += size;
    return p;
}

void arena_reset(struct arena *a)
{
    struct arena_chunk *keep = NULL;
    struct arena_chunk *c = a->head;
    while (c) {
        struct arena_chunk *next = c->next;
        if (!keep && c->size == a->chunk_bytes) {
            keep = c;
            keep->used = 0;
            keep->next = NULL;
        } else {
            mem_free(c);
        }
        c = next;
    }
    a->head = keep;
    a->used_bytes = 0;
}

void arena_release(struct arena *a)
{
    struct arena_chunk *c = a->head;
    while (c) {
        struct arena_chunk *next = c->next;
        mem_free(c);
        c = next;
    }
    a->head = NULL;
    a->used_bytes = 0;
}

/* ---- Pool ---- */

/* A free object carries this value in its second word (the first is the free-list
 * link), so putting an object back twice is caught at once rather than handing the same
 * object to two owners later. Objects are at least 16 bytes (max_align_t rounding). */
#define POOL_FREE_MAGIC UINT64_C(0xf7ee0b1ec7f7ee0b)

static void mark_free(void *obj, bool is_free)
{
    uint64_t v = is_free ? POOL_FREE_MAGIC : 0;
    memcpy((uint8_t *)obj + sizeof(void *), &v, sizeof(v));
}

static bool is_marked_free(const void *obj)
{
    uint64_t v;
    memcpy(&v, (const uint8_t *)obj + sizeof(void *), sizeof(v));
    return v == POOL_FREE_MAGIC;
}

int pool_init(struct pool *p, size_t obj_size, uint32_t capacity)
{
    memset(p, 0, sizeof(*p));
    if (obj_size == 0 || capacity == 0)
        return ASPEN_E_INVALID;
    size_t a = _Alignof(max_align_t);
    _Static_assert(_Alignof(max_align_t) >= sizeof(void *) + sizeof(uint64_t),
                   "a rounded object must hold the free-list link and the free mark");
    if (obj_size > SIZE_MAX - a)
        return ASPEN_E_OVERFLOW;
    obj_size = (obj_size + a - 1) & ~(a - 1);
    if (obj_size > SIZE_MAX / capacity)
        return ASPEN_E_OVERFLOW;
    p->slab = mem_alloc(obj_size * capacity);
    if (!p->slab)
        return ASPEN_E_NOMEM;
    p->obj_size = obj_size;
    p->capacity = capacity;
    /* Thread the free list so the first get returns the first object. */
    for (uint32_t i = capacity; i-- > 0;) {
        void *obj = p->slab + (size_t)i * obj_size;
        *(void **)obj = p->free_list;
        mark_free(obj, true);
        p->free_list = obj;
    }
    return 0;
}

void *pool_get(struct pool *p)
{
    void *obj = p->free_list;
    if (!obj)
        return NULL;
    p->free_list = *(void **)obj;
    mark_free(obj, false);
    p->in_use++;
    return obj;
}

void pool_put(struct pool *p, void *obj)
{
    uint8_t *o = obj;
    ASPEN_ASSERT(o >= p->slab && o < p->slab + (size_t)p->capacity * p->obj_size);
    ASPEN_ASSERT((size_t)(o - p->slab) % p->obj_size == 0);
    ASPEN_ASSERT(p->in_use > 0);
    ASPEN_ASSERT(!is_marked_free(obj)); /* put twice */
    *(void **)obj = p->free_list;
    mark_free(obj, true);
    p->free_list = obj;
    p->in_use--;
}

void pool_release(struct pool *p)
{
    ASPEN_ASSERT(p->in_use == 0);
    mem_free(p->slab);
    memset(p, 0, sizeof(*p));
}
