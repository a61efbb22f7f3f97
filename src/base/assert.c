/*
 * The one place an assertion failure ends the process. Writes with a single fprintf to
 * unbuffered stderr so the message survives the abort, then aborts so a core dump and
 * the sanitizer's stack trace are produced.
 */
#include "base/assert.h"

#include <stdio.h>
#include <stdlib.h>

void aspen_assert_fail(const char *expr, const char *file, int line, const char *func)
{
    fprintf(stderr, "assertion failed: %s (%s:%d in %s)\n", expr, file, line, func);
    fflush(stderr);
    abort();
}
