/*
 * Reconnect backoff: how long a transport waits before its next attempt to reach a peer.
 *
 * Capped exponential backoff with full jitter: attempt n waits a uniform random time in
 * [min, min(max, min * 2^n)]. The ceiling doubles per failure so a dead peer costs little,
 * and the randomness spreads the retries of many nodes that lost a peer at the same moment
 * (a restarted leader would otherwise be hit by every follower in lockstep). The floor of
 * `min` (rather than full jitter's 0) keeps a flapping peer from being hammered.
 *
 * Pure: the randomness comes in as a struct aspen_random, so tests pin the sequence.
 */
#ifndef ASPEN_NET_BACKOFF_H
#define ASPEN_NET_BACKOFF_H

#include "base/rand.h"

#include <stdint.h>

/* The ceiling for attempt (0-based): min(max_ms, min_ms * 2^attempt). 0 < min_ms <= max_ms. */
uint32_t net_backoff_ceiling_ms(uint32_t attempt, uint32_t min_ms, uint32_t max_ms);

/* A delay for attempt, uniform in [min_ms, net_backoff_ceiling_ms(...)]; draws one value
 * from rng. 0 < min_ms <= max_ms. */
uint32_t net_backoff_delay_ms(uint32_t attempt, uint32_t min_ms, uint32_t max_ms,
                              struct aspen_random *rng);

#endif
