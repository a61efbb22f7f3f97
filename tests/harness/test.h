/*
 * A small test harness: one binary per suite, a list of test functions, CHECK macros
 * that report the failing expression with its values, death tests for assertions, a
 * reproducible seed for randomized tests, and a leak check per test through the
 * allocation counter in base/mem.h.
 *
 * A suite's main is one line:
 *     int main(int argc, char **argv) { return TEST_MAIN("buf", tests); }
 * It runs every test (or those whose name contains argv[1]) and ends its output with
 * "buf: N passed, N failed", which scripts/test-summary.py sums across suites.
 *
 * CHECK* macros return from the enclosing test function on failure, so they belong in
 * the test function itself; helpers return a value for the test to check.
 */
#ifndef ASPEN_TEST_H
#define ASPEN_TEST_H

#include <aspen/error.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct test_case {
    const char *name;
    void (*fn)(void);
};

#define TEST(fn)                                                                                   \
    {                                                                                              \
#fn, fn                                                                                    \
    }
#define TEST_MAIN(suite, cases)                                                                    \
    test_main(argc, argv, suite, cases, sizeof(cases) / sizeof(cases[0]))

int test_main(int argc, char **argv, const char *suite, const struct test_case *cases, size_t n);

/* Records a failure of the running test (printf-style message). */
void test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* True once the running test has recorded a failure. */
bool test_failed(void);

/* The seed for randomized tests: ASPEN_TEST_SEED if set (a number, or "random"),
 * otherwise a fixed default so runs are reproducible. Printed when a test fails. */
uint64_t test_seed(void);

/* Scales iteration counts: ASPEN_TEST_SCALE (default 1) multiplies n. */
uint64_t test_iters(uint64_t n);

/* Runs fn(arg) in a child process and reports whether it died from SIGABRT (what a
 * failed assertion does). The child's stderr is discarded. */
bool test_dies(void (*fn)(void *), void *arg);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                                     \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            test_fail(__FILE__, __LINE__, __VA_ARGS__);                                            \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            test_fail(__FILE__, __LINE__, "CHECK_EQ(%s, %s): %lld != %lld", #a, #b, a_, b_);       \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_U64(a, b)                                                                         \
    do {                                                                                           \
        uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                                           \
        if (a_ != b_) {                                                                            \
            test_fail(__FILE__, __LINE__, "CHECK_EQ_U64(%s, %s): %" PRIu64 " != %" PRIu64, #a, #b, \
                      a_, b_);                                                                     \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* expr must return 0. */
#define CHECK_OK(expr)                                                                             \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != 0) {                                                                            \
            test_fail(__FILE__, __LINE__, "CHECK_OK(%s): %s (%d)", #expr, aspen_err_name(rc_),     \
                      rc_);                                                                        \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* expr must return exactly the error code err. */
#define CHECK_ERR(expr, err)                                                                       \
    do {                                                                                           \
        int rc_ = (expr), want_ = (err);                                                           \
        if (rc_ != want_) {                                                                        \
            test_fail(__FILE__, __LINE__, "CHECK_ERR(%s): got %s, want %s", #expr,                 \
                      aspen_err_name(rc_), aspen_err_name(want_));                                 \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_MEM_EQ(a, b, n)                                                                      \
    do {                                                                                           \
        size_t n_ = (n);                                                                           \
        if (n_ && memcmp((a), (b), n_) != 0) {                                                     \
            test_fail(__FILE__, __LINE__, "CHECK_MEM_EQ(%s, %s, %zu): bytes differ", #a, #b, n_);  \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_STR_EQ(a, b)                                                                         \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (strcmp(a_, b_) != 0) {                                                                 \
            test_fail(__FILE__, __LINE__, "CHECK_STR_EQ(%s, %s): \"%s\" != \"%s\"", #a, #b, a_,    \
                      b_);                                                                         \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#endif
