/*
 * Aspen error codes.
 *
 * Every function that does something returns an int: 0 on success, a negative code on
 * failure. Aspen's own codes live in a band of their own (ASPEN_ERR_BAND_START down to
 * ASPEN_ERR_BAND_END) so that a negated errno value (-ENOENT, -ENOSPC, ...) can pass
 * through untouched from a system call to the caller. One X-macro list below generates
 * the enum, aspen_strerror() and aspen_err_name(), so a code can never lack a message.
 *
 * This header is public: the client library returns the same codes.
 */
#ifndef ASPEN_ERROR_H
#define ASPEN_ERROR_H

/* Linux errno values are below 4096 (the kernel's MAX_ERRNO is 4095); our band starts
 * well beyond that so the two ranges can never overlap. */
#define ASPEN_ERRNO_LIMIT    4096
#define ASPEN_ERR_BAND_START (-10000)

/* X(NAME, message). Append only: the numeric values are part of the client ABI. */
#define ASPEN_ERRNO_MAP(X)                                                                         \
    X(INVALID, "invalid argument")                                                                 \
    X(NOMEM, "out of memory")                                                                      \
    X(OVERFLOW, "value out of range")                                                              \
    X(TOO_LARGE, "size exceeds a configured limit")                                                \
    X(TRUNCATED, "input ends early")                                                               \
    X(MALFORMED, "malformed encoding")                                                             \
    X(CORRUPT, "checksum mismatch: data is damaged")                                               \
    X(NOT_FOUND, "not found")                                                                      \
    X(EXISTS, "already exists")                                                                    \
    X(FULL, "queue or table is full")                                                              \
    X(BUSY, "resource busy, try again")                                                            \
    X(CLOSED, "object is closed")                                                                  \
    X(TIMEOUT, "operation timed out")                                                              \
    X(CANCELED, "operation canceled")                                                              \
    X(UNSUPPORTED, "operation not supported")                                                      \
    X(CLOCK_DRIFT, "remote clock is too far ahead of the local clock")                             \
    X(NOT_LEADER, "this node is not the leader")                                                   \
    X(NO_QUORUM, "no quorum reachable")                                                            \
    X(COMPACTED, "requested revision has been compacted")                                          \
    X(FUTURE_REV, "requested revision is in the future")                                           \
    X(PRECONDITION, "precondition failed")                                                         \
    X(UNAVAILABLE, "service unavailable")                                                          \
    X(PERMISSION, "permission denied")                                                             \
    X(INTERNAL, "internal error")                                                                  \
    X(IO, "storage I/O error")                                                                     \
    X(LEASE_NOT_FOUND, "requested lease not found")                                                \
    X(DUPLICATE_KEY, "duplicate key given in txn request")                                         \
    X(LIMIT, "a configured limit was reached")

/* Position of each code in the table; values are derived from it below. */
enum aspen_err_index {
#define ASPEN_ERR_INDEX_(name, msg) ASPEN_ERR_INDEX_##name,
    ASPEN_ERRNO_MAP(ASPEN_ERR_INDEX_)
#undef ASPEN_ERR_INDEX_
        ASPEN_ERR_COUNT
};

/* ASPEN_E_INVALID == ASPEN_ERR_BAND_START, and each later code is one lower. */
enum aspen_err {
#define ASPEN_ERR_VALUE_(name, msg) ASPEN_E_##name = ASPEN_ERR_BAND_START - ASPEN_ERR_INDEX_##name,
    ASPEN_ERRNO_MAP(ASPEN_ERR_VALUE_)
#undef ASPEN_ERR_VALUE_
};

/* The lowest code in our band. */
#define ASPEN_ERR_BAND_END (ASPEN_ERR_BAND_START - ASPEN_ERR_COUNT + 1)

/* Human-readable message for any code: ours, a negated errno, or 0 ("ok").
 * Never returns NULL; unknown codes get "unknown error". The string is static. */
const char *aspen_strerror(int code);

/* Symbolic name: "ASPEN_E_NOT_FOUND", "ENOENT", "OK"; "UNKNOWN" for unknown codes. */
const char *aspen_err_name(int code);

/* True when code lies in Aspen's own band (as opposed to a negated errno). */
static inline int aspen_err_is_aspen(int code)
{
    return code <= ASPEN_ERR_BAND_START && code >= ASPEN_ERR_BAND_END;
}

#endif
