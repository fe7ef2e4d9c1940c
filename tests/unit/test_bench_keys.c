/* test_bench_keys.c: key patterns have the shapes they claim.
 * Random patterns are drawn with fixed seeds, so the figures are repeatable;
 * the bounds are several standard errors wide, and a broken sampler (wrong
 * exponent, wrong spread, off-by-one range) misses them by far more. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench_keys.h"
#include "bench_rng.h"

static struct bench_key_space space(uint64_t min, uint64_t max)
{
    struct bench_key_space ks = {.min = min, .max = max, .zipf_exp = 1.0};
    ks.median = (double)min + (double)(max - min) / 2.0;
    ks.stddev = (double)(max - min) / 6.0;
    return ks;
}

static void test_bench_keys_parses_patterns(void **state)
{
    enum bench_key_pattern s, g;
    assert_int_equal(bench_keys_parse_pattern("R:R", &s, &g), 0);
    assert_int_equal(s, BENCH_KEYS_UNIFORM);
    assert_int_equal(bench_keys_parse_pattern("S:Z", &s, &g), 0);
    assert_int_equal(s, BENCH_KEYS_SEQUENTIAL);
    assert_int_equal(g, BENCH_KEYS_ZIPFIAN);
    assert_int_equal(bench_keys_parse_pattern("P:G", &s, &g), 0);
    assert_int_equal(s, BENCH_KEYS_PARALLEL);
    assert_int_equal(g, BENCH_KEYS_GAUSSIAN);
    const char *bad[] = {"", "R", "R:", "RR", "R:RR", "X:R", "r:r", "R-R", ":R"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(bench_keys_parse_pattern(bad[i], &s, &g), -EINVAL);
}

static void test_bench_keys_sequential_covers_range_in_order(void **state)
{
    struct bench_key_space ks = space(10, 1009);
    struct bench_keygen g;
    struct bench_rng rng;
    bench_rng_seed(&rng, 1);
    assert_int_equal(bench_keys_init(&g, BENCH_KEYS_SEQUENTIAL, &ks, 0, 1), 0);
    assert_int_equal(bench_keys_lap(&g), 1000);
    for (uint64_t k = 10; k <= 1009; k++)
        assert_int_equal(bench_keys_next(&g, &rng), k);
    assert_int_equal(bench_keys_next(&g, &rng), 10); /* wraps */
}

static void test_bench_keys_sequential_clients_start_apart(void **state)
{
    struct bench_key_space ks = space(0, 999);
    struct bench_rng rng;
    bench_rng_seed(&rng, 1);
    for (uint32_t c = 0; c < 4; c++) {
        struct bench_keygen g;
        assert_int_equal(bench_keys_init(&g, BENCH_KEYS_SEQUENTIAL, &ks, c, 4), 0);
        assert_int_equal(bench_keys_next(&g, &rng), c * 250);
        /* each still walks the whole range before repeating */
        uint64_t seen = 1;
        while (bench_keys_next(&g, &rng) != c * 250)
            seen++;
        assert_int_equal(seen, 1000);
    }
}

/* P: the slices of all clients cover every key exactly once per lap. */
static void test_bench_keys_parallel_slices_partition_range(void **state)
{
    const uint64_t min = 5, max = 1004;
    const uint32_t clients = 7;
    struct bench_key_space ks = space(min, max);
    uint8_t seen[1000] = {0};
    struct bench_rng rng;
    bench_rng_seed(&rng, 1);
    uint64_t total = 0;
    for (uint32_t c = 0; c < clients; c++) {
        struct bench_keygen g;
        assert_int_equal(bench_keys_init(&g, BENCH_KEYS_PARALLEL, &ks, c, clients), 0);
        uint64_t lap = bench_keys_lap(&g);
        total += lap;
        for (uint64_t i = 0; i < lap; i++) {
            uint64_t k = bench_keys_next(&g, &rng);
            assert_true(k >= min && k <= max);
            seen[k - min]++;
        }
    }
    assert_int_equal(total, 1000);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(seen[i], 1);
}

static void test_bench_keys_rejects_impossible_spaces(void **state)
{
    struct bench_keygen g;
    struct bench_key_space ks = space(0, 4); /* 5 keys */
    assert_int_equal(bench_keys_init(&g, BENCH_KEYS_PARALLEL, &ks, 0, 6), -EINVAL);
    assert_int_equal(bench_keys_init(&g, BENCH_KEYS_PARALLEL, &ks, 0, 5), 0);
    ks = space(10, 5);
    assert_int_equal(bench_keys_init(&g, BENCH_KEYS_UNIFORM, &ks, 0, 1), -EINVAL);
    ks = space(0, UINT64_MAX);
    assert_int_equal(bench_keys_init(&g, BENCH_KEYS_UNIFORM, &ks, 0, 1), -EINVAL);
    ks = space(0, 100);
    ks.stddev = 0;
    assert_int_equal(bench_keys_init(&g, BENCH_KEYS_GAUSSIAN, &ks, 0, 1), -EINVAL);
    ks = space(0, 100);
    ks.zipf_exp = 0;
    assert_int_equal(bench_keys_init(&g, BENCH_KEYS_ZIPFIAN, &ks, 0, 1), -EINVAL);
}

/* Uniform: a chi-square test over 100 keys (99 degrees of freedom; the
 * 99.9% critical value is 148.2). */
static void test_bench_keys_uniform_is_flat(void **state)
{
    struct bench_key_space ks = space(1000, 1099);
    struct bench_keygen g;
    struct bench_rng rng;
    bench_rng_seed(&rng, 42);
    assert_int_equal(bench_keys_init(&g, BENCH_KEYS_UNIFORM, &ks, 0, 1), 0);
    uint64_t counts[100] = {0};
    const int n = 1000000;
    for (int i = 0; i < n; i++) {
        uint64_t k = bench_keys_next(&g, &rng);
        assert_true(k >= 1000 && k <= 1099);
        counts[k - 1000]++;
    }
    double chi2 = 0, expect = n / 100.0;
    for (int i = 0; i < 100; i++)
        chi2 += ((double)counts[i] - expect) * ((double)counts[i] - expect) / expect;
    assert_true(chi2 < 148.2);
}

/* Gaussian: mean, deviation and the 1- and 2-sigma masses. */
static void test_bench_keys_gaussian_shape(void **state)
{
    struct bench_key_space ks = space(0, 100000);
    ks.median = 40000;
    ks.stddev = 5000;
    struct bench_keygen g;
    struct bench_rng rng;
    bench_rng_seed(&rng, 7);
    assert_int_equal(bench_keys_init(&g, BENCH_KEYS_GAUSSIAN, &ks, 0, 1), 0);
    const int n = 400000;
    double sum = 0, sum2 = 0;
    int in1 = 0, in2 = 0;
    for (int i = 0; i < n; i++) {
        double k = (double)bench_keys_next(&g, &rng);
        sum += k;
        sum2 += k * k;
        in1 += fabs(k - 40000) <= 5000;
        in2 += fabs(k - 40000) <= 10000;
    }
    double mean = sum / n, sd = sqrt(sum2 / n - mean * mean);
    assert_true(fabs(mean - 40000) < 50);
    assert_true(fabs(sd - 5000) < 50);
    assert_true(fabs((double)in1 / n - 0.6827) < 0.005);
    assert_true(fabs((double)in2 / n - 0.9545) < 0.003);
}

static void test_bench_keys_gaussian_stays_in_range(void **state)
{
    struct bench_key_space ks = space(100, 199);
    ks.median = 100;
    ks.stddev = 1000; /* far wider than the range */
    struct bench_keygen g;
    struct bench_rng rng;
    bench_rng_seed(&rng, 3);
    assert_int_equal(bench_keys_init(&g, BENCH_KEYS_GAUSSIAN, &ks, 0, 1), 0);
    for (int i = 0; i < 100000; i++) {
        uint64_t k = bench_keys_next(&g, &rng);
        assert_true(k >= 100 && k <= 199);
    }
}

/* Zipfian with exponent s over n ranks: P(k) = k^-s / sum_j j^-s. The first
 * ranks are compared one by one, the tail in decades, all within 3%. */
static void check_zipf(double s, uint64_t n)
{
    struct bench_key_space ks = space(500, 500 + n - 1);
    ks.zipf_exp = s;
    struct bench_keygen g;
    struct bench_rng rng;
    bench_rng_seed(&rng, 11);
    assert_int_equal(bench_keys_init(&g, BENCH_KEYS_ZIPFIAN, &ks, 0, 1), 0);
    uint64_t *counts = calloc(n, sizeof *counts);
    assert_non_null(counts);
    const int draws = 2000000;
    for (int i = 0; i < draws; i++) {
        uint64_t k = bench_keys_next(&g, &rng);
        assert_true(k >= 500 && k < 500 + n);
        counts[k - 500]++;
    }
    double norm = 0;
    for (uint64_t k = 1; k <= n; k++)
        norm += pow((double)k, -s);
    for (uint64_t k = 1; k <= 10; k++) {
        double want = pow((double)k, -s) / norm * draws;
        double got = (double)counts[k - 1];
        if (fabs(got - want) / want > 0.03)
            fail_msg("s=%g rank %lu: got %.0f want %.0f", s, (unsigned long)k, got, want);
    }
    for (uint64_t lo = 11; lo <= n; lo *= 10) {
        uint64_t hi = lo * 10 - 1 < n ? lo * 10 - 1 : n;
        double want = 0, got = 0;
        for (uint64_t k = lo; k <= hi; k++) {
            want += pow((double)k, -s) / norm * draws;
            got += (double)counts[k - 1];
        }
        if (fabs(got - want) / want > 0.03)
            fail_msg("s=%g ranks %lu-%lu: got %.0f want %.0f", s, (unsigned long)lo,
                     (unsigned long)hi, got, want);
    }
    free(counts);
}

static void test_bench_keys_zipfian_shape(void **state)
{
    check_zipf(1.0, 10000);
    check_zipf(0.7, 10000);
    check_zipf(1.4, 100000);
}

static void test_bench_keys_zipfian_single_key(void **state)
{
    struct bench_key_space ks = space(9, 9);
    struct bench_keygen g;
    struct bench_rng rng;
    bench_rng_seed(&rng, 1);
    assert_int_equal(bench_keys_init(&g, BENCH_KEYS_ZIPFIAN, &ks, 0, 1), 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(bench_keys_next(&g, &rng), 9);
}

static void test_bench_keys_seeds_repeat_and_differ(void **state)
{
    struct bench_rng a, b, c;
    bench_rng_seed(&a, 5);
    bench_rng_seed(&b, 5);
    bench_rng_seed(&c, 6);
    int same = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = bench_rng_next(&a);
        assert_int_equal(x, bench_rng_next(&b));
        same += x == bench_rng_next(&c);
    }
    assert_int_equal(same, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bench_keys_parses_patterns),
        cmocka_unit_test(test_bench_keys_sequential_covers_range_in_order),
        cmocka_unit_test(test_bench_keys_sequential_clients_start_apart),
        cmocka_unit_test(test_bench_keys_parallel_slices_partition_range),
        cmocka_unit_test(test_bench_keys_rejects_impossible_spaces),
        cmocka_unit_test(test_bench_keys_uniform_is_flat),
        cmocka_unit_test(test_bench_keys_gaussian_shape),
        cmocka_unit_test(test_bench_keys_gaussian_stays_in_range),
        cmocka_unit_test(test_bench_keys_zipfian_shape),
        cmocka_unit_test(test_bench_keys_zipfian_single_key),
        cmocka_unit_test(test_bench_keys_seeds_repeat_and_differ),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
