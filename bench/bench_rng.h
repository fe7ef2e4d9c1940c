/* bench_rng.h: the load generator's pseudo-random numbers.
 * xoshiro256** seeded through splitmix64: fast, 2^256 period, and the same
 * seed gives the same stream on every machine, so runs are repeatable.
 * Threads: each client (connection) owns its own generator; nothing is shared.
 * Errors: none. */
#ifndef RINGKV_BENCH_RNG_H
#define RINGKV_BENCH_RNG_H

#include <stdbool.h>
#include <stdint.h>

struct bench_rng {
    uint64_t s[4];
    double spare; /* second normal deviate of the last polar draw */
    bool has_spare;
};

/* Seeds the generator; any seed, 0 included, gives a good stream. */
void bench_rng_seed(struct bench_rng *r, uint64_t seed);

static inline uint64_t bench_rng_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* Next 64 uniform bits. */
static inline uint64_t bench_rng_next(struct bench_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = bench_rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = bench_rng_rotl(s[3], 45);
    return out;
}

/* Uniform in [0, n) for n >= 1 (multiply-high; bias below 2^-64 * n). */
static inline uint64_t bench_rng_below(struct bench_rng *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)bench_rng_next(r) * n) >> 64);
}

/* Uniform double in [0, 1) with 53 random bits. */
static inline double bench_rng_unit(struct bench_rng *r)
{
    return (double)(bench_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Standard normal deviate (Marsaglia's polar method). */
double bench_rng_gauss(struct bench_rng *r);

#endif
