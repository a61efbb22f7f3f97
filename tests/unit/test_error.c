/*
 * Error table: every code has a distinct value in Aspen's band, a message and a name;
 * negated errno values pass through with glibc's description.
 */
#include "test.h"

#include <errno.h>
#include <string.h>

static void test_codes_are_in_band_and_distinct(void)
{
    static const int codes[] = {
#define C_(name, msg) ASPEN_E_##name,
        ASPEN_ERRNO_MAP(C_)
#undef C_
    };
    CHECK_EQ(sizeof(codes) / sizeof(codes[0]), ASPEN_ERR_COUNT);
    for (size_t i = 0; i < ASPEN_ERR_COUNT; i++) {
        CHECK(aspen_err_is_aspen(codes[i]));
        CHECK(codes[i] < -ASPEN_ERRNO_LIMIT); /* never collides with -errno */
        for (size_t j = 0; j < i; j++)
            CHECK(codes[i] != codes[j]);
    }
    CHECK_EQ(ASPEN_E_INVALID, ASPEN_ERR_BAND_START);
}

static void test_messages_and_names(void)
{
    CHECK_STR_EQ(aspen_strerror(0), "ok");
    CHECK_STR_EQ(aspen_err_name(0), "OK");
    CHECK_STR_EQ(aspen_err_name(ASPEN_E_NOT_FOUND), "ASPEN_E_NOT_FOUND");
    CHECK_STR_EQ(aspen_strerror(ASPEN_E_NOT_FOUND), "not found");
    CHECK_STR_EQ(aspen_err_name(ASPEN_E_INTERNAL), "ASPEN_E_INTERNAL");
#define C_(name, msg)                                                                              \
    CHECK(strlen(aspen_strerror(ASPEN_E_##name)) > 0);                                             \
    CHECK(strncmp(aspen_err_name(ASPEN_E_##name), "ASPEN_E_", 8) == 0);
    ASPEN_ERRNO_MAP(C_)
#undef C_
}

static void test_errno_passes_through(void)
{
    CHECK_STR_EQ(aspen_err_name(-ENOENT), "ENOENT");
    CHECK_STR_EQ(aspen_strerror(-ENOSPC), "No space left on device");
    CHECK(!aspen_err_is_aspen(-ENOENT));
}

static void test_unknown_codes(void)
{
    CHECK_STR_EQ(aspen_err_name(ASPEN_ERR_BAND_END - 1), "UNKNOWN");
    CHECK_STR_EQ(aspen_strerror(ASPEN_ERR_BAND_END - 1), "unknown error");
    CHECK_STR_EQ(aspen_err_name(5), "UNKNOWN");
    CHECK_STR_EQ(aspen_err_name(-4000), "UNKNOWN");
}

static const struct test_case tests[] = {
    TEST(test_codes_are_in_band_and_distinct),
    TEST(test_messages_and_names),
    TEST(test_errno_passes_through),
    TEST(test_unknown_codes),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("error", tests);
}
