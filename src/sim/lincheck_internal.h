/*
 * What the two history checkers (lincheck.c, indexcheck.c) share and nothing else needs:
 * input validation, the split of a history into per-key partitions, and the helpers that
 * fill a result's explanation. Not installed, not included outside src/sim.
 */
#ifndef ASPEN_SIM_LINCHECK_INTERNAL_H
#define ASPEN_SIM_LINCHECK_INTERNAL_H

#include "sim/lincheck.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when op's outcome is unknown (the flag, or a return at LINCHECK_INF). */
static inline bool lincheck_is_unknown(const struct lincheck_op *op)
{
    return op->unknown || op->return_t == LINCHECK_INF;
}

/* True for a known-outcome operation that changed the register: PUT, DELETE, CAS ok. */
static inline bool lincheck_is_known_write(const struct lincheck_op *op)
{
    if (lincheck_is_unknown(op))
        return false;
    return op->kind == LINCHECK_PUT || op->kind == LINCHECK_DELETE ||
           (op->kind == LINCHECK_CAS && op->ok);
}

/* 0, or ASPEN_E_INVALID for the first malformed operation (see lincheck_check). */
int lincheck_validate(const struct lincheck_op *ops, size_t n);

/* The history split by key: order[] holds indexes into ops[], sorted by (key, invoke_t,
 * index), with unknown-outcome GETs left out (they constrain nothing). On success
 * *order_out (free with mem_free; NULL when *count_out == 0) belongs to the caller.
 * ASPEN_E_TOO_LARGE when a key has more than ASPEN_LINCHECK_MAX_OPS_PER_KEY operations,
 * ASPEN_E_NOMEM. */
int lincheck_partition(const struct lincheck_op *ops, size_t n, size_t **order_out,
                       size_t *count_out);

/* A result with no verdict details: OK, no key, no ops, empty explanation. */
void lincheck_result_reset(struct lincheck_result *res);

/* Appends formatted text to res->explain, silently truncating at its size (the
 * explanation is a diagnostic; cutting it short must not fail a check). */
void lincheck_explain(struct lincheck_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "absent" for LINCHECK_ABSENT, else v in decimal (written into tmp). */
const char *lincheck_value_str(uint64_t v, char *tmp, size_t size);

/* Appends op's description (lincheck_describe_op) prefixed with "#<index> ". */
void lincheck_explain_op(struct lincheck_result *res, const struct lincheck_op *ops, size_t i);

#endif
