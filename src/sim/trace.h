/*
 * The run's event trace: one compact record per thing that happened, folded into a
 * digest (two runs of a seed must produce the same digest — the determinism test), kept
 * in a ring of the most recent records (printed when a violation is found), and printed
 * one line per record with --trace, in the spirit of the VOPR's per-event status lines
 * (research consensus.md §3.2).
 *
 * Records are formatted only when printed, so keeping the trace costs a few stores and
 * a hash per event.
 */
#ifndef ASPEN_SIM_TRACE_H
#define ASPEN_SIM_TRACE_H

#include "base/constants.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum trace_kind {
    TR_TICK = 0,
    TR_RECV,      /* peer = from; a = msg type | 0x100 if reject, b = term, c = index */
    TR_DROP,      /* peer = to; a = msg type, b = why (enum below) */
    TR_PERSIST,   /* a = persist index, b = entries, c = committed entries */
    TR_ROLE,      /* a = role, b = term, c = leader id */
    TR_PROPOSE,   /* client; a = op id, b = index, c = rc */
    TR_READ,      /* client; a = op id, b = rc */
    TR_REPLY,     /* client; a = op id, b = status, c = index */
    TR_TIMEOUT,   /* client; a = op id */
    TR_INVOKE,    /* client; a = op id, b = kind, c = target slot */
    TR_CRASH,     /* a = writes landed, b = writes lost */
    TR_RESTART,   /* a = applied, b = last index, c = term */
    TR_PAUSE,     /* a = until (ms) */
    TR_RESUME,    /* a = missed ticks */
    TR_PARTITION, /* a = mode, b = asymmetric */
    TR_HEAL,
    TR_CLOG,     /* peer = to; a = until (ms) */
    TR_CONF,     /* a = change type, b = target id, c = rc */
    TR_TRANSFER, /* peer = target; a = rc */
    TR_SNAPSHOT, /* a = index (snapshot taken and saved) */
    TR_INSTALL,  /* a = index, b = term (snapshot installed) */
    TR_PHASE,    /* a = phase */
    TR_VIOLATION,
    TR_KIND_COUNT
};

/* Why a message was dropped (TR_DROP b). */
enum trace_drop {
    TR_DROP_NET = 0,     /* lost, partitioned or over capacity when sent */
    TR_DROP_CUT = 1,     /* the link was cut while it was in flight */
    TR_DROP_DOWN = 2,    /* the receiver was down */
    TR_DROP_PAUSED = 3,  /* the receiver's buffer overflowed during a pause */
    TR_DROP_BUSY = 4,    /* the receiver's disk queue is full (back-pressure) */
    TR_DROP_CORRUPT = 5, /* damaged in flight: the frame failed to decode */
};

struct trace_rec {
    uint64_t time_ns;
    uint8_t kind;
    uint8_t node; /* slot + 1; 0: the cluster */
    uint8_t peer; /* slot + 1 or client + 1, by kind */
    uint8_t role;
    uint64_t a, b, c;
    uint64_t term, commit, applied; /* the node's state after the event */
};

struct trace {
    struct trace_rec ring[ASPEN_SIM_TRACE_RING];
    uint64_t count; /* records in the ring so far (ticks are not kept) */
    uint64_t digest;
    FILE *print; /* non-NULL: print every record here as it is added */
    bool print_ticks;
};

void trace_init(struct trace *t, FILE *print);

void trace_add(struct trace *t, const struct trace_rec *r);

/* Formats one record as a line (without newline). */
void trace_format(const struct trace_rec *r, char *out, size_t len);

/* Prints the last n records to f. */
void trace_dump(const struct trace *t, FILE *f, uint32_t n);

#endif
