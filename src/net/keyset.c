/*
 * Trust registry (net/keyset.h): a sorted key array. Replacing sorts a fresh copy and
 * swaps it in only when everything succeeded, so a failure leaves the old set in force.
 */
#include "net/keyset.h"

#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

void net_keyset_init(struct net_keyset *t, size_t max)
{
    *t = (struct net_keyset){.max = max};
}

void net_keyset_release(struct net_keyset *t)
{
    mem_free(t->keys);
    t->keys = NULL;
    t->n = t->cap = 0;
}

size_t net_key_search(const void *arr, size_t n,
                      const uint8_t *(*key_at)(const void *arr, size_t i),
                      const uint8_t pk[NET_KEY_BYTES], bool *found)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(key_at(arr, mid), pk, NET_KEY_BYTES);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static const uint8_t *keys_at(const void *arr, size_t i)
{
    return ((const uint8_t(*)[NET_KEY_BYTES])arr)[i];
}

/* Index of pk in t, or of where it would be inserted; *found says which. */
static size_t search(const struct net_keyset *t, const uint8_t pk[NET_KEY_BYTES], bool *found)
{
    return net_key_search(t->keys, t->n, keys_at, pk, found);
}

bool net_keyset_contains(const struct net_keyset *t, const uint8_t pk[NET_KEY_BYTES])
{
    bool found;
    search(t, pk, &found);
    return found;
}

static int key_cmp(const void *a, const void *b)
{
    return memcmp(a, b, NET_KEY_BYTES);
}

int net_keyset_replace(struct net_keyset *t, const uint8_t (*pks)[NET_KEY_BYTES], size_t n)
{
    uint8_t(*keys)[NET_KEY_BYTES] = mem_alloc((n ? n : 1) * NET_KEY_BYTES);
    if (!keys)
        return ASPEN_E_NOMEM;
    if (n)
        memcpy(keys, pks, n * NET_KEY_BYTES);
    qsort(keys, n, NET_KEY_BYTES, key_cmp);
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++) {
        if (distinct == 0 || memcmp(keys[distinct - 1], keys[i], NET_KEY_BYTES) != 0)
            memmove(keys[distinct++], keys[i], NET_KEY_BYTES);
    }
    if (distinct > t->max) {
        mem_free(keys);
        return ASPEN_E_FULL;
    }
    mem_free(t->keys);
    t->keys = keys;
    t->n = distinct;
    t->cap = n ? n : 1;
    return 0;
}

int net_keyset_add(struct net_keyset *t, const uint8_t pk[NET_KEY_BYTES])
{
    bool found;
    size_t at = search(t, pk, &found);
    if (found)
        return 0;
    if (t->n >= t->max)
        return ASPEN_E_FULL;
    int rc = mem_grow(&t->keys, &t->cap, t->n, NET_KEY_BYTES, 16, t->max);
    if (rc != 0)
        return rc;
    if (at < t->n)
        memmove(t->keys[at + 1], t->keys[at], (t->n - at) * NET_KEY_BYTES);
    memcpy(t->keys[at], pk, NET_KEY_BYTES);
    t->n++;
    return 0;
}

int net_keyset_remove(struct net_keyset *t, const uint8_t pk[NET_KEY_BYTES])
{
    bool found;
    size_t at = search(t, pk, &found);
    if (!found)
        return ASPEN_E_NOT_FOUND;
    memmove(t->keys[at], t->keys[at + 1], (t->n - at - 1) * NET_KEY_BYTES);
    t->n--;
    return 0;
}
