/* bench_hist.c: the log-linear latency histogram (see bench_hist.h).
 * Layout: slot i < 2048 holds exactly the value i (bucket 0, unit width).
 * Bucket b >= 1 covers [1024 << b, 2048 << b) in 1024 slots of width 1 << b,
 * stored at slots (b + 1) * 1024 .. (b + 2) * 1024 - 1. So the index is the
 * top 11 significant bits of the value plus the bucket number, computed with
 * one count-leading-zeros (bench_hist_index, inline for the hot path), and
 * the relative width of any slot above 2048 is at most 1/1024.
 * Percentiles walk the slots once from the bottom; they are reported as the
 * highest value a slot stands for (never understating a latency), capped at
 * the exact maximum seen. The mean is exact: the sum is kept beside the counts.
 * A histogram is owned by one client thread while it runs; reports merge the
 * threads' histograms after joining them. */
#include "bench_hist.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int bench_hist_init(struct bench_hist *h)
{
    memset(h, 0, sizeof *h);
    h->counts = calloc(BENCH_HIST_SLOTS, sizeof *h->counts);
    if (!h->counts)
        return -ENOMEM;
    h->min_ns = UINT64_MAX;
    return 0;
}

void bench_hist_fini(struct bench_hist *h)
{
    free(h->counts);
    h->counts = NULL;
}

void bench_hist_reset(struct bench_hist *h)
{
    memset(h->counts, 0, BENCH_HIST_SLOTS * sizeof *h->counts);
    h->total = 0;
    h->sum_ns = 0;
    h->min_ns = UINT64_MAX;
    h->max_ns = 0;
    h->clamped = 0;
}

void bench_hist_slot_range(uint32_t index, uint64_t *low_ns, uint64_t *high_ns)
{
    if (index < 2 * BENCH_HIST_HALF) {
        *low_ns = index;
        *high_ns = index;
        return;
    }
    uint32_t bucket = (index >> (BENCH_HIST_SUB_BITS - 1)) - 1;
    uint64_t sub = (index & (BENCH_HIST_HALF - 1)) + BENCH_HIST_HALF;
    *low_ns = sub << bucket;
    *high_ns = *low_ns + (1ull << bucket) - 1;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
    if (src->total == 0)
        return;
    for (uint32_t i = 0; i < BENCH_HIST_SLOTS; i++)
        dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->sum_ns += src->sum_ns;
    dst->clamped += src->clamped;
    if (src->min_ns < dst->min_ns)
        dst->min_ns = src->min_ns;
    if (src->max_ns > dst->max_ns)
        dst->max_ns = src->max_ns;
}

uint64_t bench_hist_percentile(const struct bench_hist *h, double p)
{
    if (h->total == 0)
        return 0;
    if (p > 100.0)
        p = 100.0;
    double want = p / 100.0 * (double)h->total;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < BENCH_HIST_SLOTS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t low, high;
            bench_hist_slot_range(i, &low, &high);
            return high < h->max_ns ? high : h->max_ns;
        }
    }
    return h->max_ns;
}

double bench_hist_mean(const struct bench_hist *h)
{
    return h->total ? (double)h->sum_ns / (double)h->total : 0.0;
}

int bench_hist_next(const struct bench_hist *h, uint32_t *cursor, struct bench_hist_slot *slot)
{
    for (uint32_t i = *cursor; i < BENCH_HIST_SLOTS; i++) {
        if (h->counts[i] == 0)
            continue;
        bench_hist_slot_range(i, &slot->low_ns, &slot->high_ns);
        slot->count = h->counts[i];
        *cursor = i + 1;
        return 1;
    }
    *cursor = BENCH_HIST_SLOTS;
    return 0;
}
