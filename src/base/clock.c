/*
 * System and manual clocks (base/clock.h).
 */
#include "base/clock.h"

#include "base/assert.h"

#include <time.h>

static uint64_t read_clock(clockid_t id)
{
    struct timespec ts;
    /* clock_gettime cannot fail for these clock ids with a valid pointer. */
    int rc = clock_gettime(id, &ts);
    ASPEN_ASSERT(rc == 0);
    return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static uint64_t system_monotonic(void *ctx)
{
    (void)ctx;
    return read_clock(CLOCK_MONOTONIC);
}

static uint64_t system_wall(void *ctx)
{
    (void)ctx;
    return read_clock(CLOCK_REALTIME);
}

static const struct aspen_clock system_clock = {
    .monotonic_ns = system_monotonic,
    .wall_ns = system_wall,
    .ctx = NULL,
};

const struct aspen_clock *clock_system(void)
{
    return &system_clock;
}

static uint64_t manual_monotonic(void *ctx)
{
    return ((struct manual_clock *)ctx)->mono_ns;
}

static uint64_t manual_wall(void *ctx)
{
    return ((struct manual_clock *)ctx)->wall_ns;
}

void manual_clock_init(struct manual_clock *mc, uint64_t mono_ns, uint64_t wall_ns)
{
    mc->iface.monotonic_ns = manual_monotonic;
    mc->iface.wall_ns = manual_wall;
    mc->iface.ctx = mc;
    mc->mono_ns = mono_ns;
    mc->wall_ns = wall_ns;
}

void manual_clock_advance(struct manual_clock *mc, uint64_t delta_ns)
{
    ASPEN_ASSERT(mc->mono_ns <= UINT64_MAX - delta_ns);
    mc->mono_ns += delta_ns;
    mc->wall_ns += delta_ns;
}

void manual_clock_set_wall(struct manual_clock *mc, uint64_t wall_ns)
{
    mc->wall_ns = wall_ns;
}
