/*
 * Clocks behind an interface.
 *
 * Code that needs time takes a `const struct aspen_clock *` instead of calling
 * clock_gettime, so the simulator can run whole clusters on virtual time and tests can
 * step the wall clock backwards. Two readings exist because they answer different
 * questions: monotonic time measures intervals (timeouts, latency) and never goes back;
 * wall time is what humans and hybrid logical clocks see, and can jump either way.
 * Pure cores (raft, kv apply) take no clock at all: they are given ticks and values.
 */
#ifndef ASPEN_BASE_CLOCK_H
#define ASPEN_BASE_CLOCK_H

#include <stdint.h>

struct aspen_clock {
    uint64_t (*monotonic_ns)(void *ctx); /* never decreases */
    uint64_t (*wall_ns)(void *ctx);      /* nanoseconds since the Unix epoch; may jump */
    void *ctx;
};

static inline uint64_t clock_monotonic_ns(const struct aspen_clock *c)
{
    return c->monotonic_ns(c->ctx);
}

static inline uint64_t clock_wall_ns(const struct aspen_clock *c)
{
    return c->wall_ns(c->ctx);
}

/* The operating system's clocks (CLOCK_MONOTONIC and CLOCK_REALTIME). Static; never NULL. */
const struct aspen_clock *clock_system(void);

/* A clock that moves only when told: for tests and the simulator. */
struct manual_clock {
    struct aspen_clock iface; /* pass &mc->iface wherever a clock is wanted */
    uint64_t mono_ns;
    uint64_t wall_ns;
};

void manual_clock_init(struct manual_clock *mc, uint64_t mono_ns, uint64_t wall_ns);

/* Advances both readings by delta_ns. */
void manual_clock_advance(struct manual_clock *mc, uint64_t delta_ns);

/* Sets the wall reading to any value, earlier ones included (an NTP step). */
void manual_clock_set_wall(struct manual_clock *mc, uint64_t wall_ns);

#endif
