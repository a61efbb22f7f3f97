/*
 * Memory: the fault-injection hook fails exactly the requested call, the live
 * allocation count tracks frees, the arena respects alignment and its limit, and the
 * pool hands out every object once and nothing more.
 */
#include "test.h"

#include "base/assert.h"
#include "base/mem.h"

#include <stdlib.h>

static void test_fail_at_nth_call(void)
{
    mem_fail_at(3, 0);
    void *a = mem_alloc(8), *b = mem_alloc(8), *c = mem_alloc(8), *d = mem_alloc(8);
    int ok = a && b && !c && d;
    mem_free(a);
    mem_free(b);
    mem_free(d);
    CHECK(ok);
}

static void test_fail_sticky_and_off(void)
{
    mem_fail_at(2, 1);
    void *a = mem_alloc(1), *b = mem_calloc(1, 1), *c = mem_alloc(1);
    mem_fail_at(0, 0);
    void *d = mem_alloc(1);
    int ok = a && !b && !c && d;
    mem_free(a);
    mem_free(d);
    CHECK(ok);
}

static void test_realloc_failure_keeps_block(void)
{
    char *p = mem_alloc(4);
    CHECK(p != NULL);
    memcpy(p, "abc", 4);
    mem_fail_at(1, 0);
    char *q = mem_realloc(p, 1 << 20);
    int ok = q == NULL && strcmp(p, "abc") == 0;
    q = mem_realloc(p, 64);
    ok = ok && q != NULL && strcmp(q, "abc") == 0;
    mem_free(q ? q : p);
    CHECK(ok);
}

static void test_outstanding_counts(void)
{
    int64_t before = mem_outstanding();
    void *a = mem_alloc(0), *b = mem_calloc(0, 8);
    CHECK(a && b);
    CHECK_EQ(mem_outstanding() - before, 2);
    mem_free(a);
    mem_free(b);
    mem_free(NULL);
    CHECK_EQ(mem_outstanding(), before);
    /* Zero elements of a huge size is a zero-size block, not a huge allocation. */
    void *c = mem_calloc(0, SIZE_MAX);
    CHECK(c != NULL);
    mem_free(c);
}

static void test_arena_alignment_and_limit(void)
{
    struct arena a;
    arena_init(&a, 256, 1000);
    for (size_t align = 1; align <= 64; align *= 2) {
        uint8_t *p = arena_alloc(&a, 3, align);
        CHECK(p != NULL);
        CHECK(((uintptr_t)p & (align - 1)) == 0);
        memset(p, 0xab, 3);
    }
    void *big = arena_alloc(&a, 600, 8); /* larger than a chunk: a chunk of its own */
    CHECK(big != NULL);
    memset(big, 1, 600);
    CHECK(arena_alloc(&a, 400, 1) == NULL); /* would pass the 1000-byte limit */
    CHECK(arena_alloc(&a, 8, 8) != NULL);   /* small ones still fit */
    arena_reset(&a);
    CHECK_EQ(a.used_bytes, 0);
    CHECK(arena_alloc(&a, 900, 1) != NULL);
    arena_release(&a);
}

/* Alignment must not depend on what malloc happens to return: a fresh arena's first
 * allocation (a fresh chunk) and oversized ones (a chunk of their own) are the cases
 * that only hold by luck when the chunk's own alignment is assumed. */
static void test_arena_alignment_fresh_chunks(void)
{
    /* All arenas stay alive until the end so that malloc hands out many different
     * addresses (freeing each first would give back the same block every round). */
    enum { ROUNDS = 64 };
    struct arena arenas[ROUNDS];
    int bad = -1;
    for (int round = 0; round < ROUNDS; round++) {
        size_t align = (size_t)1 << (round % 7); /* 1 .. 64 */
        struct arena *a = &arenas[round];
        arena_init(a, 200 + (size_t)round * 8, 1 << 20);
        uint8_t *first = arena_alloc(a, 8, align);
        uint8_t *big = arena_alloc(a, 1000, align);
        int ok = first && big && ((uintptr_t)first & (align - 1)) == 0 &&
                 ((uintptr_t)big & (align - 1)) == 0;
        if (ok)
            memset(big, 0x5a, 1000);
        else if (bad < 0)
            bad = round;
    }
    for (int round = 0; round < ROUNDS; round++)
        arena_release(&arenas[round]);
    CHECK_MSG(bad < 0, "round %d: alignment %zu not honoured", bad, (size_t)1 << (bad % 7));
}

static void test_arena_small_after_big_reuses_head(void)
{
    struct arena a;
    arena_init(&a, 128, 1 << 20);
    uint8_t *p1 = arena_alloc(&a, 8, 1);
    CHECK(arena_alloc(&a, 4096, 1) != NULL);
    uint8_t *p2 = arena_alloc(&a, 8, 1);
    int same_chunk = p2 == p1 + 8;
    arena_release(&a);
    CHECK(same_chunk);
}

static void test_arena_nomem(void)
{
    struct arena a;
    arena_init(&a, 64, 1 << 20);
    mem_fail_at(1, 0);
    CHECK(arena_alloc(&a, 8, 8) == NULL);
    CHECK(arena_alloc(&a, 8, 8) != NULL);
    arena_release(&a);
}

static void test_pool_get_put(void)
{
    struct pool p;
    CHECK_OK(pool_init(&p, 24, 4));
    void *objs[4];
    for (int i = 0; i < 4; i++) {
        objs[i] = pool_get(&p);
        CHECK(objs[i] != NULL);
        memset(objs[i], i, 24);
        for (int j = 0; j < i; j++)
            CHECK(objs[i] != objs[j]);
    }
    CHECK(pool_get(&p) == NULL);
    CHECK_EQ(p.in_use, 4);
    pool_put(&p, objs[2]);
    CHECK(pool_get(&p) == objs[2]);
    for (int i = 0; i < 4; i++)
        pool_put(&p, objs[i]);
    pool_release(&p);
}

static void test_pool_errors(void)
{
    struct pool p;
    CHECK_ERR(pool_init(&p, 0, 4), ASPEN_E_INVALID);
    CHECK_ERR(pool_init(&p, 8, 0), ASPEN_E_INVALID);
    CHECK_ERR(pool_init(&p, SIZE_MAX / 2, 4), ASPEN_E_OVERFLOW);
    mem_fail_at(1, 0);
    CHECK_ERR(pool_init(&p, 8, 4), ASPEN_E_NOMEM);
}

/* One object is checked out (so only the range check can object) and the pointer is
 * suitably aligned, just one past the slab's end. */
static void put_one_past_end(void *arg)
{
    struct pool *p = arg;
    pool_put(p, p->slab + (size_t)p->capacity * p->obj_size);
}

static void put_misaligned(void *arg)
{
    struct pool *p = arg;
    pool_put(p, p->slab + 1);
}

static void put_twice(void *arg)
{
    struct pool *p = arg;
    void *a = pool_get(p);
    (void)pool_get(p);
    pool_put(p, a);
    pool_put(p, a);
}

static void test_pool_rejects_double_put(void)
{
    struct pool p;
    CHECK_OK(pool_init(&p, 8, 4));
    int died = test_dies(put_twice, &p);
    pool_release(&p); /* the child's gets and puts happened in its own copy */
    CHECK(died);
}

static void test_pool_rejects_foreign_pointer(void)
{
    struct pool p;
    CHECK_OK(pool_init(&p, 8, 2));
    void *obj = pool_get(&p);
    int died_end = test_dies(put_one_past_end, &p);
    int died_misaligned = test_dies(put_misaligned, &p);
    pool_put(&p, obj);
    pool_release(&p);
    CHECK(died_end);
    CHECK(died_misaligned);
}

static void test_grow_doubles_up_to_max_and_keeps_the_array_on_failure(void)
{
    uint32_t *v = NULL;
    size_t cap = 0, n = 0;
    for (; n < 10; n++) {
        CHECK_OK(mem_grow(&v, &cap, n, sizeof(*v), 4, 10));
        v[n] = (uint32_t)n;
    }
    CHECK_EQ(cap, 10); /* 4, 8, then capped at 10 */
    CHECK_ERR(mem_grow(&v, &cap, n, sizeof(*v), 4, 10), ASPEN_E_FULL);
    uint32_t *before = v;
    size_t big_cap = cap, m = cap;
    mem_fail_at(1, 0);
    CHECK_ERR(mem_grow(&v, &big_cap, m, sizeof(*v), 4, 100), ASPEN_E_NOMEM);
    mem_fail_at(0, 0);
    CHECK(v == before && big_cap == 10);
    for (uint32_t i = 0; i < 10; i++)
        CHECK_EQ(v[i], i);
    CHECK_OK(mem_grow(&v, &big_cap, m, sizeof(*v), 4, 100));
    CHECK_EQ(big_cap, 20);
    CHECK_EQ(v[9], 9);
    mem_free(v);
}

static const struct test_case tests[] = {
    TEST(test_grow_doubles_up_to_max_and_keeps_the_array_on_failure),
    TEST(test_fail_at_nth_call),
    TEST(test_fail_sticky_and_off),
    TEST(test_realloc_failure_keeps_block),
    TEST(test_outstanding_counts),
    TEST(test_arena_alignment_and_limit),
    TEST(test_arena_alignment_fresh_chunks),
    TEST(test_arena_small_after_big_reuses_head),
    TEST(test_arena_nomem),
    TEST(test_pool_get_put),
    TEST(test_pool_errors),
    TEST(test_pool_rejects_foreign_pointer),
    TEST(test_pool_rejects_double_put),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("mem", tests);
}
