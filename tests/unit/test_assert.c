/*
 * Assertions: ASPEN_ASSERT aborts on a false condition in every build type and does
 * nothing on a true one; ALWAYS/NEVER pass their value through.
 */
#include "test.h"

#include "base/assert.h"

static void assert_false(void *arg)
{
    int *x = arg;
    ASPEN_ASSERT(*x == 42);
}

static void unreachable(void *arg)
{
    (void)arg;
    ASPEN_UNREACHABLE();
}

static void test_assert_aborts(void)
{
    int x = 41;
    CHECK(test_dies(assert_false, &x));
    CHECK(test_dies(unreachable, NULL));
}

static void test_assert_passes(void)
{
    int x = 42;
    CHECK(!test_dies(assert_false, &x));
    ASPEN_ASSERT(x == 42);
    ASPEN_DEBUG_ASSERT(x == 42);
}

static void test_always_never_values(void)
{
    int yes = 1, no = 0;
    CHECK(ASPEN_ALWAYS(yes == 1));
    CHECK(!ASPEN_NEVER(no == 1));
}

static const struct test_case tests[] = {
    TEST(test_assert_aborts),
    TEST(test_assert_passes),
    TEST(test_always_never_values),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("assert", tests);
}
