/* bench_hist.h: latency histogram with constant relative precision.
 * Log-linear buckets in the manner of HdrHistogram: values (nanoseconds) below
 * 2048 are counted exactly; above that, each power-of-two range is cut into
 * 1024 equal sub-buckets, so a recorded value is known to within 0.1% of
 * itself (3 significant digits) across the whole range, 1 microsecond to
 * 100 seconds (BENCH_HIST_MAX_NS). Larger values are counted at the top and
 * tallied in `clamped`. There is no sampling: every value is counted.
 * Threads: a histogram belongs to one thread; merge after its owner is done.
 * Ownership: bench_hist_init() allocates the counters, bench_hist_fini() frees.
 * Errors: bench_hist_init() returns -ENOMEM; nothing else fails. */
#ifndef RINGKV_BENCH_HIST_H
#define RINGKV_BENCH_HIST_H

#include <stdint.h>

#define BENCH_HIST_MAX_NS 100000000000ull /* 100 s */
#define BENCH_HIST_SUB_BITS 11            /* 2048 sub-buckets: 3 significant digits */
#define BENCH_HIST_HALF (1u << (BENCH_HIST_SUB_BITS - 1))
/* Buckets so that 2048 << (buckets - 1) exceeds BENCH_HIST_MAX_NS. */
#define BENCH_HIST_BUCKETS 27
#define BENCH_HIST_SLOTS ((BENCH_HIST_BUCKETS + 1) * BENCH_HIST_HALF)

struct bench_hist {
    uint64_t *counts; /* BENCH_HIST_SLOTS counters */
    uint64_t total;   /* values recorded */
    uint64_t sum_ns;  /* exact sum, for the mean */
    uint64_t min_ns;  /* UINT64_MAX while empty */
    uint64_t max_ns;
    uint64_t clamped; /* values above BENCH_HIST_MAX_NS */
};

/* One non-empty slot, as bench_hist_next() yields it. */
struct bench_hist_slot {
    uint64_t low_ns;  /* lowest value counted in the slot */
    uint64_t high_ns; /* highest value counted in the slot */
    uint64_t count;
};

/* Allocates zeroed counters. 0 or -ENOMEM. */
int bench_hist_init(struct bench_hist *h);
void bench_hist_fini(struct bench_hist *h);
void bench_hist_reset(struct bench_hist *h);

/* Slot index of a value (already clamped to BENCH_HIST_MAX_NS). */
static inline uint32_t bench_hist_index(uint64_t v)
{
    uint32_t msb = 63u - (uint32_t)__builtin_clzll(v | ((1u << BENCH_HIST_SUB_BITS) - 1));
    uint32_t bucket = msb - (BENCH_HIST_SUB_BITS - 1);
    uint32_t sub = (uint32_t)(v >> bucket);
    return ((bucket + 1) << (BENCH_HIST_SUB_BITS - 1)) + sub - BENCH_HIST_HALF;
}

/* Counts one value. */
static inline void bench_hist_record(struct bench_hist *h, uint64_t v)
{
    if (v > BENCH_HIST_MAX_NS) {
        v = BENCH_HIST_MAX_NS;
        h->clamped++;
    }
    h->counts[bench_hist_index(v)]++;
    h->total++;
    h->sum_ns += v;
    if (v < h->min_ns)
        h->min_ns = v;
    if (v > h->max_ns)
        h->max_ns = v;
}

/* Lowest and highest value a slot stands for. */
void bench_hist_slot_range(uint32_t index, uint64_t *low_ns, uint64_t *high_ns);

/* Adds src's counts into dst. */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);

/* Value at percentile p (0..100]: the highest value of the slot holding the
 * ceil(p% of total)-th value, capped at the largest value recorded; 0 when empty. */
uint64_t bench_hist_percentile(const struct bench_hist *h, double p);

/* Exact mean of the recorded values (clamped ones count as the maximum); 0 when empty. */
double bench_hist_mean(const struct bench_hist *h);

/* Walks non-empty slots in increasing order: start with *cursor = 0; returns 1
 * and fills *slot while one remains, else 0. */
int bench_hist_next(const struct bench_hist *h, uint32_t *cursor, struct bench_hist_slot *slot);

#endif
