/*
 * Assertions for invariants (programmer errors), as opposed to operating errors, which
 * are returned as negative codes.
 *
 * ASPEN_ASSERT stays on in every build, release included: the consensus core and the
 * state machine must crash rather than continue with broken state (TigerBeetle's rule).
 * ASPEN_DEBUG_ASSERT is for checks too costly for release hot paths; it compiles to
 * nothing under NDEBUG but still type-checks its argument.
 *
 * ASPEN_ALWAYS / ASPEN_NEVER mark conditions believed always true / never true that the
 * code nevertheless handles (SQLite's ALWAYS/NEVER): debug builds assert, release builds
 * evaluate the condition and take the defensive branch.
 */
#ifndef ASPEN_BASE_ASSERT_H
#define ASPEN_BASE_ASSERT_H

/* Prints "assertion failed: <expr>" with the location to stderr and aborts. */
_Noreturn void aspen_assert_fail(const char *expr, const char *file, int line, const char *func);

#define ASPEN_ASSERT(cond)                                                                         \
    ((cond) ? (void)0 : aspen_assert_fail(#cond, __FILE__, __LINE__, __func__))

#define ASPEN_UNREACHABLE() aspen_assert_fail("unreachable", __FILE__, __LINE__, __func__)

#ifdef NDEBUG
#define ASPEN_DEBUG_ASSERT(cond) ((void)sizeof(cond))
#define ASPEN_ALWAYS(cond)       (cond)
#define ASPEN_NEVER(cond)        (cond)
#else
#define ASPEN_DEBUG_ASSERT(cond) ASPEN_ASSERT(cond)
#define ASPEN_ALWAYS(cond)                                                                         \
    ((cond) ? 1 : (aspen_assert_fail(#cond, __FILE__, __LINE__, __func__), 0))
#define ASPEN_NEVER(cond)                                                                          \
    ((cond) ? (aspen_assert_fail("!(" #cond ")", __FILE__, __LINE__, __func__), 1) : 0)
#endif

#endif
