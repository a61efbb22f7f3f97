/*
 * Byte slices and a bounds-checked reader.
 *
 * A slice is a borrowed view (pointer + length) of bytes: keys, values and wire data are
 * raw bytes in Aspen, never NUL-terminated strings. The reader walks a slice while
 * decoding and turns every overrun into ASPEN_E_TRUNCATED instead of a read out of
 * bounds, so decoders of disk and network input cannot over-read by construction.
 * Integers on the wire and on disk are big-endian (it sorts bytewise like the number).
 */
#ifndef ASPEN_BASE_SLICE_H
#define ASPEN_BASE_SLICE_H

#include <aspen/error.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct slice {
    const uint8_t *ptr; /* borrowed; may be NULL when len == 0 */
    size_t len;
};

static inline struct slice slice_make(const void *ptr, size_t len)
{
    return (struct slice){.ptr = (const uint8_t *)ptr, .len = len};
}

/* A slice over a C string, without its terminating NUL. */
static inline struct slice slice_str(const char *s)
{
    return slice_make(s, strlen(s));
}

/* Bytewise lexicographic order; a proper prefix sorts first. Returns <0, 0 or >0. */
static inline int slice_cmp(struct slice a, struct slice b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c != 0)
        return c;
    return (a.len > b.len) - (a.len < b.len);
}

static inline bool slice_eq(struct slice a, struct slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static inline bool slice_has_prefix(struct slice s, struct slice prefix)
{
    return s.len >= prefix.len && (prefix.len == 0 || memcmp(s.ptr, prefix.ptr, prefix.len) == 0);
}

/* ---- Big-endian load/store ---- */

static inline void be16_store(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void be32_store(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static inline void be64_store(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static inline uint16_t be16_load(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t be32_load(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t be64_load(const uint8_t *p)
{
    return (uint64_t)be32_load(p) << 32 | be32_load(p + 4);
}

/* ---- Reader ---- */

struct reader {
    const uint8_t *ptr; /* borrowed: next unread byte */
    size_t left;        /* bytes not yet read */
};

static inline struct reader reader_make(struct slice s)
{
    return (struct reader){.ptr = s.ptr, .left = s.len};
}

/* Each reader_* call either consumes exactly what it returns and yields 0, or consumes
 * nothing and yields ASPEN_E_TRUNCATED. */
static inline int reader_bytes(struct reader *r, size_t n, struct slice *out)
{
    if (n > r->left)
        return ASPEN_E_TRUNCATED;
    *out = slice_make(r->ptr, n);
    r->ptr += n;
    r->left -= n;
    return 0;
}

static inline int reader_u8(struct reader *r, uint8_t *out)
{
    if (r->left < 1)
        return ASPEN_E_TRUNCATED;
    *out = r->ptr[0];
    r->ptr++;
    r->left--;
    return 0;
}

static inline int reader_be16(struct reader *r, uint16_t *out)
{
    if (r->left < 2)
        return ASPEN_E_TRUNCATED;
    *out = be16_load(r->ptr);
    r->ptr += 2;
    r->left -= 2;
    return 0;
}

static inline int reader_be32(struct reader *r, uint32_t *out)
{
    if (r->left < 4)
        return ASPEN_E_TRUNCATED;
    *out = be32_load(r->ptr);
    r->ptr += 4;
    r->left -= 4;
    return 0;
}

static inline int reader_be64(struct reader *r, uint64_t *out)
{
    if (r->left < 8)
        return ASPEN_E_TRUNCATED;
    *out = be64_load(r->ptr);
    r->ptr += 8;
    r->left -= 8;
    return 0;
}

#endif
