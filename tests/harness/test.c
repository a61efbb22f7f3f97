/*
 * Test harness runner (tests/harness/test.h).
 *
 * Runs each test in turn in this process, records failures, checks that the test
 * returned every allocation it made through base/mem.h, and prints one result line per
 * test and the suite's closing "<suite>: N passed, N failed" line.
 */
#include "test.h"

#include "base/mem.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static bool current_failed;
static const char *current_name;
static uint64_t seed_value;
static bool seed_ready;

void test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stdout, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    current_failed = true;
}

bool test_failed(void)
{
    return current_failed;
}

uint64_t test_seed(void)
{
    if (!seed_ready) {
        const char *env = getenv("ASPEN_TEST_SEED");
        seed_value = 0x5eed0a59e4ULL; /* fixed default: CI runs are reproducible */
        if (env && strcmp(env, "random") == 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            seed_value = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
        } else if (env && *env) {
            seed_value = strtoull(env, NULL, 0);
        }
        seed_ready = true;
    }
    return seed_value;
}

uint64_t test_iters(uint64_t n)
{
    const char *env = getenv("ASPEN_TEST_SCALE");
    uint64_t scale = env && *env ? strtoull(env, NULL, 0) : 1;
    return n * (scale ? scale : 1);
}

bool test_dies(void (*fn)(void *), void *arg)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr))
            _exit(3);
        fn(arg);
        _exit(0);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return false;
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

int test_main(int argc, char **argv, const char *suite, const struct test_case *cases, size_t n)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    unsigned passed = 0, failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t i = 0; i < n; i++) {
        if (filter && !strstr(cases[i].name, filter))
            continue;
        current_failed = false;
        current_name = cases[i].name;
        int64_t live_before = mem_outstanding();
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        cases[i].fn();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        mem_fail_at(0, 0); /* a test that injected faults must not affect the next */
        int64_t leaked = mem_outstanding() - live_before;
        if (!current_failed && leaked != 0)
            test_fail(__FILE__, __LINE__, "%lld allocation(s) not freed", (long long)leaked);
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        if (current_failed) {
            failed++;
            printf("FAIL %s (%.1f ms; seed %" PRIu64 ")\n", current_name, ms, test_seed());
        } else {
            passed++;
            printf("ok   %s (%.1f ms)\n", current_name, ms);
        }
    }
    if (passed + failed == 0) {
        /* A filter that matches nothing must not look like a passing run. */
        printf("%s: no test matches '%s'\n", suite, filter ? filter : "");
        printf("%s: 0 passed, 1 failed\n", suite);
        return 1;
    }
    printf("%s: %u passed, %u failed\n", suite, passed, failed);
    return failed ? 1 : 0;
}
