/*
 * Subspaces: a key prefix under which keys are tuples.
 *
 * Applications partition the one flat key space by giving each kind of data its own
 * prefix (usually itself a packed tuple, e.g. ("users",)) and packing the rest of the
 * key as a tuple after it. Because tuple encodings preserve order and every packed key
 * under a prefix starts with it, all keys of a subspace form one contiguous range that
 * can be scanned or cleared at once, and subspaces nest by extending the prefix.
 *
 * A struct subspace owns a copy of its prefix (mem_alloc), so it can outlive the bytes
 * or items it was made from.
 */
#ifndef ASPEN_BASE_SUBSPACE_H
#define ASPEN_BASE_SUBSPACE_H

#include "base/buf.h"
#include "base/mem.h"
#include "base/slice.h"
#include "base/tuple.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct subspace {
    uint8_t *prefix; /* owned (mem_alloc); never NULL after a successful init */
    size_t len;
};

/* Makes a subspace whose prefix is a copy of the given bytes (which need not be a
 * packed tuple). Errors: ASPEN_E_INVALID (NULL with a non-zero length),
 * ASPEN_E_TOO_LARGE (longer than ASPEN_SUBSPACE_MAX_PREFIX_BYTES), ASPEN_E_NOMEM. On error *s is
 * left empty (nothing to release). */
int subspace_init_raw(struct subspace *s, struct slice prefix);

/* Makes a subspace whose prefix is pack(items). Errors: those of tuple_pack, and
 * ASPEN_E_TOO_LARGE when the packed prefix exceeds ASPEN_SUBSPACE_MAX_PREFIX_BYTES. */
int subspace_init_tuple(struct subspace *s, const struct tuple_item *items, size_t n);

/* Frees the prefix; s is left empty and may be initialized again. Safe on an empty
 * subspace. */
void subspace_release(struct subspace *s);

/* The prefix, borrowed from s. */
struct slice subspace_key(const struct subspace *s);

/* Makes child, a subspace of s with prefix s.prefix + pack(items). child must not be s
 * itself. Same errors as subspace_init_tuple. */
int subspace_sub(const struct subspace *s, const struct tuple_item *items, size_t n,
                 struct subspace *child);

/* Appends prefix + pack(items) to out. Errors: those of tuple_pack; on error out is
 * restored to its previous length. */
int subspace_pack(const struct subspace *s, const struct tuple_item *items, size_t n,
                  struct buf *out);

/* True when key starts with the subspace's prefix (it may or may not be a valid tuple
 * after it). */
bool subspace_contains(const struct subspace *s, struct slice key);

/* Decodes the tuple after the prefix of key, as tuple_unpack does (items live in a).
 * Errors: ASPEN_E_INVALID when key does not start with the prefix, otherwise those of
 * tuple_unpack. */
int subspace_unpack(const struct subspace *s, struct slice key, struct arena *a,
                    struct tuple_item **items_out, size_t *n_out);

/* The key range [begin, end) holding every key prefix + pack(items) + X, where X is
 * the encoding of one or more further items: begin = prefix + pack(items) + 0x00,
 * end = prefix + pack(items) + 0xff. (No item encoding starts with 0xff, so end is
 * past all of them; prefix + pack(items) itself is not in the range.) Appends to both
 * buffers, which must be two different buffers (asserted). Errors: those of tuple_pack;
 * on error both are restored to their previous lengths. */
int subspace_range(const struct subspace *s, const struct tuple_item *items, size_t n,
                   struct buf *begin, struct buf *end);

#endif
