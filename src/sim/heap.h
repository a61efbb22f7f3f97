/*
 * The simulator's event queue: a binary min-heap of scheduled events ordered by
 * (virtual time, sequence number).
 *
 * Everything that happens in a simulated cluster — a tick, a message arriving, a disk
 * write completing, a client request — is one event popped from this heap. The sequence
 * number is assigned at push time and breaks ties between events scheduled for the
 * same instant, so the order is a pure function of the pushes: never of pointer values,
 * allocation addresses or hash-table layout. That is what lets one seed replay a run bit
 * for bit (TigerBeetle VOPR and FoundationDB's Sim2 use the same shape, research
 * consensus.md §3.1).
 */
#ifndef ASPEN_SIM_HEAP_H
#define ASPEN_SIM_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One scheduled event. The meaning of the payload fields depends on `kind` (sim.c). A
 * non-NULL ptr is owned by the event: whoever pops it frees it (or passes it on), and
 * heap_release() hands each remaining one to the free callback. */
struct sim_event {
    uint64_t time_ns;
    uint64_t seq; /* set by heap_push */
    uint8_t kind;
    uint8_t node;   /* target node slot, when the event targets a node */
    uint8_t client; /* client slot, when it concerns a client */
    uint8_t flag;
    uint32_t incarnation; /* the target node's incarnation: stale after a crash */
    uint64_t a, b, c, d;
    void *ptr;
};

struct sim_heap {
    struct sim_event *v; /* owned */
    size_t n, cap, max;
    uint64_t next_seq;
};

/* An empty heap that holds at most max events. Allocates nothing. */
void heap_init(struct sim_heap *h, size_t max);

/* Frees the storage; free_ptr (may be NULL) is called for every remaining event with a
 * non-NULL ptr, in heap order. */
void heap_release(struct sim_heap *h, void (*free_ptr)(struct sim_event *ev));

/* Schedules ev (its seq is assigned here). 0, ASPEN_E_FULL or ASPEN_E_NOMEM. */
int heap_push(struct sim_heap *h, const struct sim_event *ev);

/* Removes the earliest event into *out. False when empty. */
bool heap_pop(struct sim_heap *h, struct sim_event *out);

/* The earliest event without removing it, or NULL. */
const struct sim_event *heap_peek(const struct sim_heap *h);

static inline size_t heap_len(const struct sim_heap *h)
{
    return h->n;
}

#endif
