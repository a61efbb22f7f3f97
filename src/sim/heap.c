/*
 * Binary min-heap of simulator events (sim/heap.h), ordered by (time_ns, seq).
 */
#include "sim/heap.h"

#include "base/assert.h"
#include "base/mem.h"

#include <aspen/error.h>

void heap_init(struct sim_heap *h, size_t max)
{
    *h = (struct sim_heap){.max = max};
}

static bool before(const struct sim_event *a, const struct sim_event *b)
{
    return a->time_ns < b->time_ns || (a->time_ns == b->time_ns && a->seq < b->seq);
}

void heap_release(struct sim_heap *h, void (*free_ptr)(struct sim_event *ev))
{
    struct sim_event ev;
    while (heap_pop(h, &ev))
        if (ev.ptr && free_ptr)
            free_ptr(&ev);
    mem_free(h->v);
    *h = (struct sim_heap){.max = h->max};
}

int heap_push(struct sim_heap *h, const struct sim_event *ev)
{
    int rc = mem_grow(&h->v, &h->cap, h->n, sizeof(*h->v), 256, h->max);
    if (rc)
        return rc;
    size_t i = h->n++;
    struct sim_event e = *ev;
    e.seq = h->next_seq++;
    /* Sift up: move parents down until e's place is found. */
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&e, &h->v[parent]))
            break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = e;
    return 0;
}

bool heap_pop(struct sim_heap *h, struct sim_event *out)
{
    if (h->n == 0)
        return false;
    *out = h->v[0];
    struct sim_event last = h->v[--h->n];
    size_t i = 0;
    /* Sift down the former last element from the root. */
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct sim_event *best = &last;
        if (l < h->n && before(&h->v[l], best)) {
            m = l;
            best = &h->v[l];
        }
        if (r < h->n && before(&h->v[r], best))
            m = r;
        if (m == i)
            break;
        h->v[i] = h->v[m];
        i = m;
    }
    if (h->n > 0)
        h->v[i] = last;
    return true;
}

const struct sim_event *heap_peek(const struct sim_heap *h)
{
    return h->n ? &h->v[0] : NULL;
}
