/* test_bench_hist.c: the latency histogram against known distributions.
 * Distributions are fed as stratified samples (the inverse CDF at the
 * midpoints of n equal probability strata), so every percentile has a known
 * exact answer and the only error left is the histogram's own precision. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "bench_hist.h"

#define REL_PRECISION (1.0 / 1000.0) /* 3 significant digits */

static void assert_close(double got, double want, double rel)
{
    double err = fabs(got - want) / want;
    if (err > rel)
        fail_msg("got %.6g, want %.6g (relative error %.3g > %.3g)", got, want, err, rel);
}

static void test_bench_hist_counts_small_values_exactly(void **state)
{
    struct bench_hist h;
    assert_int_equal(bench_hist_init(&h), 0);
    for (uint64_t v = 0; v < 2048; v++)
        bench_hist_record(&h, v);
    assert_int_equal(h.total, 2048);
    assert_int_equal(bench_hist_percentile(&h, 50.0), 1023);
    assert_int_equal(bench_hist_percentile(&h, 100.0), 2047);
    assert_int_equal(bench_hist_percentile(&h, 0.0), 0);
    assert_int_equal(h.min_ns, 0);
    assert_int_equal(h.max_ns, 2047);
    assert_true(bench_hist_mean(&h) == 1023.5);
    bench_hist_fini(&h);
}

/* Every value from 1 us to 100 s lands in a slot that contains it and is
 * no wider than 1/1000 of it (1/1024 above 2048 ns). */
static void test_bench_hist_keeps_three_digits_over_the_range(void **state)
{
    for (double v = 1000.0; v <= (double)BENCH_HIST_MAX_NS; v *= 1.0007) {
        uint64_t x = (uint64_t)v;
        uint32_t i = bench_hist_index(x);
        assert_true(i < BENCH_HIST_SLOTS);
        uint64_t low, high;
        bench_hist_slot_range(i, &low, &high);
        assert_true(low <= x && x <= high);
        assert_true((double)(high - low + 1) / (double)low <= REL_PRECISION);
        if (x >= 2048)
            assert_true((double)(high - low + 1) / (double)low <= 1.0 / 1024.0);
    }
    uint64_t low, high;
    bench_hist_slot_range(bench_hist_index(BENCH_HIST_MAX_NS), &low, &high);
    assert_true(low <= BENCH_HIST_MAX_NS && BENCH_HIST_MAX_NS <= high);
}

static void test_bench_hist_slots_are_contiguous(void **state)
{
    uint64_t prev_high = 0;
    for (uint32_t i = 1; i < BENCH_HIST_SLOTS; i++) {
        uint64_t low, high;
        bench_hist_slot_range(i, &low, &high);
        assert_int_equal(low, prev_high + 1);
        assert_int_equal(bench_hist_index(low), i);
        assert_int_equal(bench_hist_index(high), i);
        prev_high = high;
    }
}

/* Uniform latencies between 50 us and 5 ms. */
static void test_bench_hist_uniform_percentiles(void **state)
{
    struct bench_hist h;
    assert_int_equal(bench_hist_init(&h), 0);
    const double lo = 50e3, hi = 5e6;
    const int n = 1000000;
    for (int i = 0; i < n; i++)
        bench_hist_record(&h, (uint64_t)(lo + (hi - lo) * (i + 0.5) / n));
    const double ps[] = {10, 50, 90, 99, 99.9};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        assert_close((double)bench_hist_percentile(&h, ps[i]), lo + (hi - lo) * ps[i] / 100,
                     REL_PRECISION + 1e-5);
    assert_close(bench_hist_mean(&h), (lo + hi) / 2, 1e-6);
    bench_hist_fini(&h);
}

/* Exponential latencies, mean 200 us: quantile q is -mean * ln(1 - q). */
static void test_bench_hist_exponential_percentiles(void **state)
{
    struct bench_hist h;
    assert_int_equal(bench_hist_init(&h), 0);
    const double mean = 200e3;
    const int n = 1000000;
    for (int i = 0; i < n; i++)
        bench_hist_record(&h, (uint64_t)(-mean * log(1.0 - (i + 0.5) / n)));
    const double ps[] = {50, 90, 99, 99.9, 99.99};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        assert_close((double)bench_hist_percentile(&h, ps[i]), -mean * log(1.0 - ps[i] / 100),
                     REL_PRECISION + 1e-4);
    assert_close(bench_hist_mean(&h), mean, 1e-3);
    bench_hist_fini(&h);
}

/* Log-normal latencies spanning microseconds to seconds: median e^mu. */
static void test_bench_hist_lognormal_tail(void **state)
{
    struct bench_hist h;
    assert_int_equal(bench_hist_init(&h), 0);
    const double mu = log(300e3), sigma = 2.0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double q = (i + 0.5) / n;
        /* inverse normal CDF by bisection on erfc: slow but exact enough */
        double a = -10, b = 10;
        for (int k = 0; k < 80; k++) {
            double m = (a + b) / 2;
            if (0.5 * erfc(-m / sqrt(2.0)) < q)
                a = m;
            else
                b = m;
        }
        bench_hist_record(&h, (uint64_t)exp(mu + sigma * (a + b) / 2));
    }
    assert_close((double)bench_hist_percentile(&h, 50.0), exp(mu), REL_PRECISION + 1e-4);
    /* z(0.99) = 2.326348 */
    assert_close((double)bench_hist_percentile(&h, 99.0), exp(mu + sigma * 2.326348),
                 REL_PRECISION + 1e-3);
    bench_hist_fini(&h);
}

static void test_bench_hist_merge_equals_recording_both(void **state)
{
    struct bench_hist a, b, both;
    assert_int_equal(bench_hist_init(&a), 0);
    assert_int_equal(bench_hist_init(&b), 0);
    assert_int_equal(bench_hist_init(&both), 0);
    for (uint64_t v = 1; v < 5000000; v = v * 3 / 2 + 7) {
        bench_hist_record(&a, v);
        bench_hist_record(&both, v);
        bench_hist_record(&b, v * 2);
        bench_hist_record(&both, v * 2);
    }
    bench_hist_merge(&a, &b);
    assert_int_equal(a.total, both.total);
    assert_int_equal(a.sum_ns, both.sum_ns);
    assert_int_equal(a.min_ns, both.min_ns);
    assert_int_equal(a.max_ns, both.max_ns);
    for (uint32_t i = 0; i < BENCH_HIST_SLOTS; i++)
        assert_int_equal(a.counts[i], both.counts[i]);
    bench_hist_fini(&a);
    bench_hist_fini(&b);
    bench_hist_fini(&both);
}

static void test_bench_hist_clamps_beyond_100_seconds(void **state)
{
    struct bench_hist h;
    assert_int_equal(bench_hist_init(&h), 0);
    bench_hist_record(&h, 5000);
    bench_hist_record(&h, 250ull * 1000000000ull);
    assert_int_equal(h.clamped, 1);
    assert_int_equal(h.total, 2);
    assert_int_equal(bench_hist_percentile(&h, 100.0), BENCH_HIST_MAX_NS);
    bench_hist_reset(&h);
    assert_int_equal(h.total, 0);
    assert_int_equal(h.clamped, 0);
    assert_int_equal(bench_hist_percentile(&h, 50.0), 0);
    bench_hist_fini(&h);
}

static void test_bench_hist_walks_nonempty_slots(void **state)
{
    struct bench_hist h;
    assert_int_equal(bench_hist_init(&h), 0);
    const uint64_t values[] = {3, 3, 3000, 3001, 1000000, 2000000000};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        bench_hist_record(&h, values[i]);
    uint32_t cursor = 0;
    struct bench_hist_slot slot;
    uint64_t seen = 0, prev = 0;
    int slots = 0;
    while (bench_hist_next(&h, &cursor, &slot)) {
        assert_true(slot.low_ns >= prev);
        prev = slot.high_ns;
        seen += slot.count;
        slots++;
    }
    assert_int_equal(seen, h.total);
    assert_int_equal(slots, 4); /* 3000 and 3001 share a slot 2 ns wide */
    bench_hist_fini(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bench_hist_counts_small_values_exactly),
        cmocka_unit_test(test_bench_hist_keeps_three_digits_over_the_range),
        cmocka_unit_test(test_bench_hist_slots_are_contiguous),
        cmocka_unit_test(test_bench_hist_uniform_percentiles),
        cmocka_unit_test(test_bench_hist_exponential_percentiles),
        cmocka_unit_test(test_bench_hist_lognormal_tail),
        cmocka_unit_test(test_bench_hist_merge_equals_recording_both),
        cmocka_unit_test(test_bench_hist_clamps_beyond_100_seconds),
        cmocka_unit_test(test_bench_hist_walks_nonempty_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
