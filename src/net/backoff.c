/*
 * Reconnect backoff (net/backoff.h): the ceiling doubles per attempt up to the cap, and a
 * delay is drawn uniformly between the floor and the ceiling.
 */
#include "net/backoff.h"

#include "base/assert.h"

__extension__ typedef unsigned __int128 u128;

uint32_t net_backoff_ceiling_ms(uint32_t attempt, uint32_t min_ms, uint32_t max_ms)
{
    ASPEN_ASSERT(min_ms > 0 && min_ms <= max_ms);
    /* Doubling min_ms 32 times passes any 32-bit cap, so larger attempts saturate. */
    if (attempt >= 32)
        return max_ms;
    uint64_t ceiling = (uint64_t)min_ms << attempt;
    return ceiling > max_ms ? max_ms : (uint32_t)ceiling;
}

uint32_t net_backoff_delay_ms(uint32_t attempt, uint32_t min_ms, uint32_t max_ms,
                              struct aspen_random *rng)
{
    uint32_t ceiling = net_backoff_ceiling_ms(attempt, min_ms, max_ms);
    uint64_t span = (uint64_t)ceiling - min_ms + 1;
    /* Multiply-shift maps 64 random bits onto [0, span): the bias is below span / 2^64,
     * nothing next to the scheduler's own jitter. */
    uint64_t r = rng->next_u64(rng->ctx);
    uint64_t offset = (uint64_t)(((u128)r * span) >> 64);
    return min_ms + (uint32_t)offset;
}
