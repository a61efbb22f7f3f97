/*
 * Subspaces (base/subspace.h): an owned prefix plus tuple packing after it.
 *
 * Prefixes built from tuples are packed into a bounded buf and then taken over with
 * buf_steal, so the subspace owns exactly one mem_alloc allocation however it was made.
 */
#include "base/subspace.h"

#include "base/assert.h"

/* Takes over b's contents as s's prefix. An empty buffer never allocated, so give the
 * subspace its own (unique, non-NULL) allocation to keep "prefix owned" uniform. */
static int adopt(struct subspace *s, struct buf *b)
{
    size_t len = 0;
    uint8_t *p = buf_steal(b, &len);
    if (p == NULL) {
        p = mem_alloc(0);
        if (p == NULL)
            return ASPEN_E_NOMEM;
        len = 0;
    }
    s->prefix = p;
    s->len = len;
    return 0;
}

/* Builds a subspace with prefix base + pack(items); base may be empty. */
static int init_with(struct subspace *s, struct slice base, const struct tuple_item *items,
                     size_t n)
{
    s->prefix = NULL;
    s->len = 0;
    struct buf b;
    buf_init(&b, ASPEN_SUBSPACE_MAX_PREFIX_BYTES);
    int rc = buf_append_slice(&b, base);
    if (rc == 0)
        rc = tuple_pack(&b, items, n);
    if (rc == 0)
        rc = adopt(s, &b);
    buf_release(&b);
    return rc;
}

int subspace_init_raw(struct subspace *s, struct slice prefix)
{
    if (prefix.ptr == NULL && prefix.len != 0) {
        s->prefix = NULL;
        s->len = 0;
        return ASPEN_E_INVALID;
    }
    return init_with(s, prefix, NULL, 0);
}

int subspace_init_tuple(struct subspace *s, const struct tuple_item *items, size_t n)
{
    return init_with(s, slice_make(NULL, 0), items, n);
}

void subspace_release(struct subspace *s)
{
    mem_free(s->prefix);
    s->prefix = NULL;
    s->len = 0;
}

struct slice subspace_key(const struct subspace *s)
{
    return slice_make(s->prefix, s->len);
}

int subspace_sub(const struct subspace *s, const struct tuple_item *items, size_t n,
                 struct subspace *child)
{
    ASPEN_ASSERT(child != s);
    return init_with(child, subspace_key(s), items, n);
}

int subspace_pack(const struct subspace *s, const struct tuple_item *items, size_t n,
                  struct buf *out)
{
    size_t old_len = out->len;
    int rc = buf_append_slice(out, subspace_key(s));
    if (rc == 0)
        rc = tuple_pack(out, items, n);
    if (rc)
        out->len = old_len;
    return rc;
}

bool subspace_contains(const struct subspace *s, struct slice key)
{
    return slice_has_prefix(key, subspace_key(s));
}

int subspace_unpack(const struct subspace *s, struct slice key, struct arena *a,
                    struct tuple_item **items_out, size_t *n_out)
{
    if (!subspace_contains(s, key))
        return ASPEN_E_INVALID;
    struct slice rest = slice_make(key.len > s->len ? key.ptr + s->len : NULL, key.len - s->len);
    return tuple_unpack(rest, a, items_out, n_out);
}

int subspace_range(const struct subspace *s, const struct tuple_item *items, size_t n,
                   struct buf *begin, struct buf *end)
{
    ASPEN_ASSERT(begin != end); /* end is built from begin's bytes, which may move */
    size_t begin_len = begin->len, end_len = end->len;
    int rc = subspace_pack(s, items, n, begin);
    if (rc == 0)
        rc = buf_append_u8(begin, 0x00);
    /* end is begin with its last byte raised to 0xff. */
    if (rc == 0)
        rc = buf_append(end, begin->data + begin_len, begin->len - begin_len - 1);
    if (rc == 0)
        rc = buf_append_u8(end, 0xff);
    if (rc) {
        begin->len = begin_len;
        end->len = end_len;
    }
    return rc;
}
