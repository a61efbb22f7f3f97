/*
 * Growable byte buffer with a hard size limit.
 *
 * Used to build encodings (tuples, log records, wire frames). Every buffer carries a
 * maximum so that a bug or hostile input cannot grow it without bound: appends past the
 * maximum fail with ASPEN_E_TOO_LARGE and leave the buffer unchanged. Growth goes
 * through mem_realloc, so allocation failures can be injected in tests.
 */
#ifndef ASPEN_BASE_BUF_H
#define ASPEN_BASE_BUF_H

#include "base/slice.h"

#include <stddef.h>
#include <stdint.h>

struct buf {
    uint8_t *data; /* owned; NULL until the first append */
    size_t len;    /* bytes in use */
    size_t cap;    /* bytes allocated */
    size_t max;    /* len never exceeds this */
};

/* Initializes an empty buffer that may grow to max_bytes. Allocates nothing. */
void buf_init(struct buf *b, size_t max_bytes);

/* Frees the contents; the buffer is empty and may be reused (same limit). */
void buf_release(struct buf *b);

/* Forgets the contents but keeps the allocation. */
static inline void buf_clear(struct buf *b)
{
    b->len = 0;
}

static inline struct slice buf_slice(const struct buf *b)
{
    return slice_make(b->data, b->len);
}

/* Makes room for extra more bytes. 0, ASPEN_E_TOO_LARGE or ASPEN_E_NOMEM. */
int buf_reserve(struct buf *b, size_t extra);

/* Appends n bytes (ptr may be NULL when n == 0). 0, ASPEN_E_TOO_LARGE or ASPEN_E_NOMEM;
 * on failure the buffer is unchanged. */
int buf_append(struct buf *b, const void *ptr, size_t n);

static inline int buf_append_slice(struct buf *b, struct slice s)
{
    return buf_append(b, s.ptr, s.len);
}

int buf_append_u8(struct buf *b, uint8_t v);
int buf_append_be32(struct buf *b, uint32_t v);
int buf_append_be64(struct buf *b, uint64_t v);

/* Appends formatted text (no NUL is kept in len). Same errors as buf_append. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Hands the contents to the caller (free with mem_free) and leaves the buffer empty.
 * Returns NULL for an empty buffer that never allocated. */
uint8_t *buf_steal(struct buf *b, size_t *len_out);

#endif
