/* bench_rng.c: seeding and the normal distribution (see bench_rng.h).
 * The 256-bit xoshiro state is filled from the 64-bit seed with splitmix64,
 * which never yields the all-zero state xoshiro must avoid. Normal deviates
 * use Marsaglia's polar method: draw a point in the unit square until it
 * falls inside the unit circle, then turn it into two independent deviates;
 * the second is kept for the next call. */
#include "bench_rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void bench_rng_seed(struct bench_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    r->has_spare = false;
    r->spare = 0.0;
}

double bench_rng_gauss(struct bench_rng *r)
{
    if (r->has_spare) {
        r->has_spare = false;
        return r->spare;
    }
    double u, v, s;
    do {
        u = 2.0 * bench_rng_unit(r) - 1.0;
        v = 2.0 * bench_rng_unit(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    double f = sqrt(-2.0 * log(s) / s);
    r->spare = v * f;
    r->has_spare = true;
    return u * f;
}
