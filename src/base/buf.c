/*
 * Growable byte buffer (base/buf.h). Capacity doubles, starting at 64 bytes, and is
 * clamped to the buffer's maximum so the last growth never over-allocates past it.
 */
#include "base/buf.h"

#include "base/mem.h"

#include <stdarg.h>
#include <stdio.h>

void buf_init(struct buf *b, size_t max_bytes)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max_bytes;
}

void buf_release(struct buf *b)
{
    mem_free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

int buf_reserve(struct buf *b, size_t extra)
{
    if (extra > b->max - b->len)
        return ASPEN_E_TOO_LARGE;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max)
        cap = b->max;
    uint8_t *p = mem_realloc(b->data, cap);
    if (!p)
        return ASPEN_E_NOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int buf_append(struct buf *b, const void *ptr, size_t n)
{
    if (n == 0)
        return 0;
    int rc = buf_reserve(b, n);
    if (rc)
        return rc;
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    return 0;
}

int buf_append_u8(struct buf *b, uint8_t v)
{
    return buf_append(b, &v, 1);
}

int buf_append_be32(struct buf *b, uint32_t v)
{
    uint8_t tmp[4];
    be32_store(tmp, v);
    return buf_append(b, tmp, sizeof(tmp));
}

int buf_append_be64(struct buf *b, uint64_t v)
{
    uint8_t tmp[8];
    be64_store(tmp, v);
    return buf_append(b, tmp, sizeof(tmp));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return ASPEN_E_INVALID;
    size_t len = (size_t)n;
    int rc = buf_reserve(b, len);
    if (rc)
        return rc;
    if (b->cap - b->len > len) {
        /* Room for vsnprintf's terminating NUL too: format in place. */
        va_start(ap, fmt);
        vsnprintf((char *)b->data + b->len, len + 1, fmt, ap);
        va_end(ap);
        b->len += len;
        return 0;
    }
    /* The text fits exactly up to the limit, with no byte left for the NUL that
     * vsnprintf insists on writing: format into a scratch block and copy. */
    char *tmp = mem_alloc(len + 1);
    if (!tmp)
        return ASPEN_E_NOMEM;
    va_start(ap, fmt);
    vsnprintf(tmp, len + 1, fmt, ap);
    va_end(ap);
    rc = buf_append(b, tmp, len);
    mem_free(tmp);
    return rc;
}

uint8_t *buf_steal(struct buf *b, size_t *len_out)
{
    uint8_t *p = b->data;
    *len_out = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
