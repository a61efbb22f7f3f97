/*
 * Deterministic pseudo-random numbers and the randomness interface.
 *
 * struct rng is xoshiro256** (Blackman & Vigna) seeded through splitmix64: fast, small,
 * and — being pure integer arithmetic — the same sequence for the same seed on every
 * run and machine. The simulator replays a whole cluster from one seed because every
 * random choice comes from an rng it owns. This is not a cryptographic generator: keys
 * and tokens come from libsodium.
 *
 * struct aspen_random is how pure code (the raft core) receives randomness from its
 * environment: production hands it an OS-seeded rng, the simulator a seeded one.
 */
#ifndef ASPEN_BASE_RAND_H
#define ASPEN_BASE_RAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rng {
    uint64_t s[4];
};

/* splitmix64 step: advances *state and returns the next output. Exposed because it is
 * also a good 64-bit mixer for deriving seeds. */
uint64_t splitmix64_next(uint64_t *state);

/* Seeds the generator; any seed (including 0) gives a valid, full-period state. */
void rng_seed(struct rng *r, uint64_t seed);

/* Next 64 random bits. */
uint64_t rng_next(struct rng *r);

/* Uniform integer in [0, bound), without modulo bias (Lemire's method). bound > 0. */
uint64_t rng_below(struct rng *r, uint64_t bound);

/* Uniform integer in [lo, hi], lo <= hi. */
uint64_t rng_range(struct rng *r, uint64_t lo, uint64_t hi);

/* True with probability num/den (den > 0, num <= den). Integer-only so the decision is
 * identical everywhere. */
bool rng_ratio(struct rng *r, uint64_t num, uint64_t den);

/* Uniform double in [0, 1) with 53 random bits. */
double rng_double(struct rng *r);

/* Fills n bytes with random data. */
void rng_fill(struct rng *r, void *out, size_t n);

/* A new generator whose stream is independent of the parent's, derived from it (the
 * parent advances). Used to give each simulated node its own stream from one seed. */
void rng_split(struct rng *parent, struct rng *child);

/* Reads a seed from the kernel (getrandom). 0 or a negated errno. */
int rng_os_seed(uint64_t *seed_out);

/* Randomness handed to pure code by its environment. */
struct aspen_random {
    uint64_t (*next_u64)(void *ctx);
    void *ctx;
};

/* An aspen_random backed by r (borrowed; must outlive the returned struct's use). */
struct aspen_random rng_as_random(struct rng *r);

#endif
