/* bench_keys.c: key patterns (see bench_keys.h for what each letter means).
 * Sequential patterns keep a cursor in their slice of the range and wrap.
 * Gaussian draws redraw outside the range (a few times, then clamp, so a
 * deviation much wider than the range cannot loop for long).
 * Zipfian uses rejection-inversion (Hormann and Derflinger, 1996): with
 * h(x) = x^-s and H its integral, a uniform point u between H(1.5) - 1 and
 * H(n + 0.5) is mapped back through H^-1 to x, rounded to the rank k; it is
 * kept when it lies in the part of k's strip [H(k - 0.5), H(k + 0.5)] whose
 * length is h(k), which gives rank k probability h(k) / sum h exactly. The
 * strip of rank 1 is laid out as [H(1.5) - 1, H(1.5)] so it is always kept.
 * Acceptance is high for every exponent; the squeeze accepts most draws
 * without computing H again. H and H^-1 are written through expm1/log1p
 * forms that stay accurate as s approaches 1, where H becomes log. */
#include "bench_keys.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define GAUSS_REDRAWS 16

static int pattern_of(char c, enum bench_key_pattern *p)
{
    if (c == '\0' || !strchr("SPRGZ", c))
        return -EINVAL;
    *p = (enum bench_key_pattern)c;
    return 0;
}

int bench_keys_parse_pattern(const char *s, enum bench_key_pattern *set,
                             enum bench_key_pattern *get)
{
    if (!s || strlen(s) != 3 || s[1] != ':')
        return -EINVAL;
    if (pattern_of(s[0], set) != 0 || pattern_of(s[2], get) != 0)
        return -EINVAL;
    return 0;
}

/* expm1(t) / t, and its limit 1 at t = 0. */
static double expm1_over(double t)
{
    return fabs(t) > 1e-8 ? expm1(t) / t : 1.0 + t * 0.5;
}

/* log1p(t) / t, and its limit 1 at t = 0. */
static double log1p_over(double t)
{
    return fabs(t) > 1e-8 ? log1p(t) / t : 1.0 - t * 0.5;
}

/* H(x) = (x^(1-s) - 1) / (1 - s), log(x) when s = 1. */
static double zipf_H(double s, double x)
{
    double lx = log(x);
    return lx * expm1_over((1.0 - s) * lx);
}

static double zipf_H_inv(double s, double y)
{
    return exp(y * log1p_over((1.0 - s) * y));
}

static double zipf_h(double s, double x)
{
    return exp(-s * log(x));
}

void bench_zipf_init(struct bench_zipf *z, uint64_t n, double s)
{
    z->n = (double)n;
    z->s = s;
    z->h_x1 = zipf_H(s, 1.5) - 1.0;
    z->h_n = zipf_H(s, z->n + 0.5);
    z->squeeze = 2.0 - zipf_H_inv(s, zipf_H(s, 2.5) - zipf_h(s, 2.0));
}

uint64_t bench_zipf_next(const struct bench_zipf *z, struct bench_rng *rng)
{
    for (;;) {
        double u = z->h_n + bench_rng_unit(rng) * (z->h_x1 - z->h_n);
        double x = zipf_H_inv(z->s, u);
        double k = floor(x + 0.5);
        if (k < 1.0)
            k = 1.0;
        else if (k > z->n)
            k = z->n;
        if (k - x <= z->squeeze || u >= zipf_H(z->s, k + 0.5) - zipf_h(z->s, k))
            return (uint64_t)k;
    }
}

int bench_keys_init(struct bench_keygen *g, enum bench_key_pattern pattern,
                    const struct bench_key_space *ks, uint32_t client, uint32_t nclients)
{
    if (ks->min > ks->max || ks->max == UINT64_MAX || nclients == 0 || client >= nclients)
        return -EINVAL;
    uint64_t range = ks->max - ks->min + 1;
    memset(g, 0, sizeof *g);
    g->pattern = pattern;
    g->lo = ks->min;
    g->hi = ks->max;
    g->median = ks->median;
    g->stddev = ks->stddev;
    uint64_t start = (uint64_t)((unsigned __int128)range * client / nclients);
    switch (pattern) {
    case BENCH_KEYS_SEQUENTIAL:
        g->next = ks->min + start;
        return 0;
    case BENCH_KEYS_PARALLEL: {
        if (range < nclients)
            return -EINVAL;
        uint64_t end = (uint64_t)((unsigned __int128)range * (client + 1) / nclients);
        g->lo = ks->min + start;
        g->hi = ks->min + end - 1;
        g->next = g->lo;
        return 0;
    }
    case BENCH_KEYS_UNIFORM:
        return 0;
    case BENCH_KEYS_GAUSSIAN:
        return ks->stddev > 0.0 ? 0 : -EINVAL;
    case BENCH_KEYS_ZIPFIAN:
        if (!(ks->zipf_exp > 0.0))
            return -EINVAL;
        bench_zipf_init(&g->zipf, range, ks->zipf_exp);
        return 0;
    }
    return -EINVAL;
}

uint64_t bench_keys_lap(const struct bench_keygen *g)
{
    return g->hi - g->lo + 1;
}

static uint64_t next_sequential(struct bench_keygen *g)
{
    uint64_t k = g->next;
    g->next = k == g->hi ? g->lo : k + 1;
    return k;
}

static uint64_t next_gaussian(struct bench_keygen *g, struct bench_rng *rng)
{
    double lo = (double)g->lo, hi = (double)g->hi;
    double x = g->median;
    for (int i = 0; i < GAUSS_REDRAWS; i++) {
        x = floor(g->median + g->stddev * bench_rng_gauss(rng) + 0.5);
        if (x >= lo && x <= hi)
            break;
    }
    if (x < lo)
        return g->lo;
    if (x > hi)
        return g->hi;
    return (uint64_t)x;
}

uint64_t bench_keys_next(struct bench_keygen *g, struct bench_rng *rng)
{
    switch (g->pattern) {
    case BENCH_KEYS_SEQUENTIAL:
    case BENCH_KEYS_PARALLEL:
        return next_sequential(g);
    case BENCH_KEYS_UNIFORM:
        return g->lo + bench_rng_below(rng, g->hi - g->lo + 1);
    case BENCH_KEYS_GAUSSIAN:
        return next_gaussian(g, rng);
    case BENCH_KEYS_ZIPFIAN:
        return g->lo + bench_zipf_next(&g->zipf, rng) - 1;
    }
    return g->lo;
}
