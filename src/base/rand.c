/*
 * xoshiro256** with splitmix64 seeding (base/rand.h). Algorithms are public domain
 * (Blackman & Vigna, "Scrambled linear pseudorandom number generators", 2018); this
 * is our own implementation of them.
 */
#include "base/rand.h"

#include "base/assert.h"

#include <errno.h>
#include <sys/random.h>

uint64_t splitmix64_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void rng_seed(struct rng *r, uint64_t seed)
{
    uint64_t sm = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64_next(&sm);
    /* splitmix64 never yields four zero words in a row, so the state is valid. */
}

/* __extension__ keeps -Wpedantic quiet about the GCC/Clang 128-bit type. */
__extension__ typedef unsigned __int128 u128;

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t rng_below(struct rng *r, uint64_t bound)
{
    ASPEN_ASSERT(bound > 0);
    /* Lemire, "Fast Random Integer Generation in an Interval" (2019): multiply into 128
     * bits and reject the few low products that would bias the result. */
    u128 m = (u128)rng_next(r) * bound;
    uint64_t low = (uint64_t)m;
    if (low < bound) {
        uint64_t threshold = (0 - bound) % bound;
        while (low < threshold) {
            m = (u128)rng_next(r) * bound;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

uint64_t rng_range(struct rng *r, uint64_t lo, uint64_t hi)
{
    ASPEN_ASSERT(lo <= hi);
    if (lo == 0 && hi == UINT64_MAX)
        return rng_next(r);
    return lo + rng_below(r, hi - lo + 1);
}

bool rng_ratio(struct rng *r, uint64_t num, uint64_t den)
{
    ASPEN_ASSERT(den > 0 && num <= den);
    return rng_below(r, den) < num;
}

double rng_double(struct rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

void rng_fill(struct rng *r, void *out, size_t n)
{
    /* Bytes are taken little-endian explicitly so the output does not depend on the
     * host's byte order. */
    uint8_t *p = out;
    while (n > 0) {
        uint64_t v = rng_next(r);
        for (int i = 0; i < 8 && n > 0; i++, n--, v >>= 8)
            *p++ = (uint8_t)v;
    }
}

void rng_split(struct rng *parent, struct rng *child)
{
    rng_seed(child, rng_next(parent));
}

int rng_os_seed(uint64_t *seed_out)
{
    uint64_t v;
    for (int tries = 0; tries < 8; tries++) {
        ssize_t n = getrandom(&v, sizeof(v), 0);
        if (n == (ssize_t)sizeof(v)) {
            *seed_out = v;
            return 0;
        }
        if (n < 0 && errno != EINTR)
            return -errno;
    }
    return -EIO;
}

static uint64_t rng_random_next(void *ctx)
{
    return rng_next(ctx);
}

struct aspen_random rng_as_random(struct rng *r)
{
    return (struct aspen_random){.next_u64 = rng_random_next, .ctx = r};
}
