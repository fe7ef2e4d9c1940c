/* test_bench_opts.c: ringkv-bench's command line: memtier's flag names
 * (including --print-percentiles, --run-count, --out-file, --authenticate and
 * --select-db, --cluster-mode), strict values, and the checks that span
 * several flags. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bench_opts.h"

#define PARSE(cfg, ...)                                                                            \
    parse(cfg, (char *[]){"ringkv-bench", __VA_ARGS__, NULL},                                      \
          (int)(sizeof((char *[]){"ringkv-bench", __VA_ARGS__}) / sizeof(char *)))

static char err[256];

static int parse(struct bench_config *cfg, char **argv, int argc)
{
    bench_opts_defaults(cfg);
    err[0] = '\0';
    return bench_opts_parse(cfg, argc, argv, err, sizeof err);
}

static void test_bench_opts_defaults_follow_memtier(void **state)
{
    struct bench_config cfg;
    assert_int_equal(parse(&cfg, (char *[]){"ringkv-bench", NULL}, 1), 0);
    assert_int_equal(cfg.threads, 4);
    assert_int_equal(cfg.clients, 50);
    assert_int_equal(cfg.pipeline, 1);
    assert_int_equal(cfg.ratio_set, 1);
    assert_int_equal(cfg.ratio_get, 10);
    assert_int_equal(cfg.data_size_min, 32);
    assert_int_equal(cfg.requests, 10000);
    assert_int_equal(cfg.set_pattern, BENCH_KEYS_UNIFORM);
    assert_string_equal(cfg.key_prefix, "memtier-");
    assert_true(cfg.keys.median == 5000000.0);
    assert_int_equal(cfg.run_count, 1);
    assert_int_equal(cfg.npercentiles, 3);
    assert_true(cfg.percentiles[0] == 50.0 && cfg.percentiles[1] == 99.0 &&
                cfg.percentiles[2] == 99.9);
    assert_null(cfg.out_file);
    assert_null(cfg.auth);
    assert_int_equal(cfg.select_db, 0);
}

static void test_bench_opts_parses_memtier_flags(void **state)
{
    struct bench_config cfg;
    assert_int_equal(PARSE(&cfg, "-s", "localhost", "-p", "7000", "-t", "2", "-c", "8",
                           "--pipeline=16", "--ratio", "1:1", "--data-size-range=20-100",
                           "--key-pattern", "G:Z", "--key-minimum=5", "--key-maximum", "1005",
                           "--key-prefix=k:", "--test-time=3", "-P", "memcache_text",
                           "--json-out-file", "/tmp/x.json", "--rate-limiting", "100",
                           "--distinct-client-seed", "--hide-histogram", "--data-verify"),
                     0);
    assert_string_equal(cfg.host, "localhost");
    assert_string_equal(cfg.port, "7000");
    assert_int_equal(cfg.threads, 2);
    assert_int_equal(cfg.clients, 8);
    assert_int_equal(cfg.pipeline, 16);
    assert_int_equal(cfg.ratio_set, 1);
    assert_int_equal(cfg.ratio_get, 1);
    assert_int_equal(cfg.data_size_min, 20);
    assert_int_equal(cfg.data_size_max, 100);
    assert_int_equal(cfg.set_pattern, BENCH_KEYS_GAUSSIAN);
    assert_int_equal(cfg.get_pattern, BENCH_KEYS_ZIPFIAN);
    assert_int_equal(cfg.keys.min, 5);
    assert_int_equal(cfg.keys.max, 1005);
    assert_true(cfg.keys.median == 505.0);
    assert_true(cfg.keys.stddev > 166.0 && cfg.keys.stddev < 167.0);
    assert_int_equal(cfg.test_time_s, 3);
    assert_int_equal(cfg.requests, 0); /* bounded by time alone */
    assert_int_equal(cfg.protocol, BENCH_PROTO_MEMCACHE_TEXT);
    assert_int_equal(cfg.rate_limit, 100);
    assert_true(cfg.distinct_client_seed && cfg.hide_histogram && cfg.verify);
    assert_int_equal(PARSE(&cfg, "-n", "allkeys", "--key-pattern", "P:P", "--key-maximum", "999"),
                     0);
    assert_true(cfg.requests_allkeys);
}

static void test_bench_opts_parses_percentiles(void **state)
{
    struct bench_config cfg;
    assert_int_equal(PARSE(&cfg, "--print-percentiles=90,99.99,0,100"), 0);
    assert_int_equal(cfg.npercentiles, 4);
    assert_true(cfg.percentiles[0] == 90.0 && cfg.percentiles[1] == 99.99 &&
                cfg.percentiles[2] == 0.0 && cfg.percentiles[3] == 100.0);
    assert_int_equal(PARSE(&cfg, "--print-percentiles", "99.9"), 0);
    assert_int_equal(cfg.npercentiles, 1);
    assert_true(cfg.percentiles[0] == 99.9);
    assert_int_equal(PARSE(&cfg, "--print-percentiles", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16"),
                     0);
    assert_int_equal(cfg.npercentiles, BENCH_MAX_PERCENTILES);
    static const char *const bad[] = {
        "",    "101", "-1",    "50,,99", "50,",
        ",50", "p99", "99.9x", "nan",    "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(PARSE(&cfg, "--print-percentiles", (char *)bad[i]), -EINVAL);
        assert_non_null(strstr(err, "--print-percentiles"));
    }
}

static void test_bench_opts_parses_runs_output_and_setup(void **state)
{
    struct bench_config cfg;
    assert_int_equal(
        PARSE(&cfg, "-x", "3", "-o", "/tmp/out.txt", "-a", "secret", "--select-db", "7"), 0);
    assert_int_equal(cfg.run_count, 3);
    assert_string_equal(cfg.out_file, "/tmp/out.txt");
    assert_string_equal(cfg.auth, "secret");
    assert_int_equal(cfg.select_db, 7);
    assert_int_equal(
        PARSE(&cfg, "--run-count=5", "--out-file=r.txt", "--authenticate=user:pw", "--select-db=0"),
        0);
    assert_int_equal(cfg.run_count, 5);
    assert_string_equal(cfg.out_file, "r.txt");
    assert_string_equal(cfg.auth, "user:pw");
    assert_int_equal(cfg.select_db, 0);
    assert_int_equal(PARSE(&cfg, "-x", "0"), -EINVAL);
    assert_int_equal(PARSE(&cfg, "--run-count", "many"), -EINVAL);
    assert_int_equal(PARSE(&cfg, "--out-file="), -EINVAL);
    assert_int_equal(PARSE(&cfg, "--authenticate="), -EINVAL);
    assert_int_equal(PARSE(&cfg, "--select-db", "-1"), -EINVAL);
    assert_int_equal(PARSE(&cfg, "--select-db", "x"), -EINVAL);
    /* memcached's text protocol has neither AUTH nor databases */
    assert_int_equal(PARSE(&cfg, "-P", "memcache_text", "-a", "secret"), -EINVAL);
    assert_non_null(strstr(err, "--authenticate"));
    assert_int_equal(PARSE(&cfg, "-P", "memcache_text", "--select-db", "2"), -EINVAL);
    assert_non_null(strstr(err, "--select-db"));
    assert_int_equal(PARSE(&cfg, "-P", "memcache_text", "--select-db", "0", "-x", "2"), 0);
}

static void test_bench_opts_rejects_bad_values(void **state)
{
    struct bench_config cfg;
    assert_int_equal(PARSE(&cfg, "-t", "0"), -EINVAL);
    assert_int_equal(PARSE(&cfg, "-c", "x"), -EINVAL);
    assert_int_equal(PARSE(&cfg, "-p", "70000"), -EINVAL);
    assert_int_equal(PARSE(&cfg, "--ratio", "1-10"), -EINVAL);
    assert_int_equal(PARSE(&cfg, "--ratio", "0:0"), -EINVAL);
    assert_int_equal(PARSE(&cfg, "--data-size-range", "100-10"), -EINVAL);
    assert_int_equal(PARSE(&cfg, "--key-pattern", "Q:R"), -EINVAL);
    assert_int_equal(PARSE(&cfg, "--key-minimum", "10", "--key-maximum", "5"), -EINVAL);
    assert_int_equal(PARSE(&cfg, "-P", "memcache_binary"), -EINVAL);
    assert_int_equal(PARSE(&cfg, "--requests", "-5"), -EINVAL);
    assert_int_equal(PARSE(&cfg, "--no-such-flag"), -EINVAL);
    assert_int_equal(PARSE(&cfg, "stray"), -EINVAL);
    assert_true(strlen(err) > 0);
}

static void test_bench_opts_checks_settings_together(void **state)
{
    struct bench_config cfg;
    /* a checked value must hold the key and the checksum */
    assert_int_equal(PARSE(&cfg, "--verify", "-d", "20"), -EINVAL);
    assert_non_null(strstr(err, "--verify"));
    assert_int_equal(PARSE(&cfg, "--verify", "-d", "32", "--key-prefix", "k"), 0);
    /* memcached keys have no spaces */
    assert_int_equal(PARSE(&cfg, "-P", "memcache_text", "--key-prefix", "a b"), -EINVAL);
    /* P slices need at least one key per connection */
    assert_int_equal(
        PARSE(&cfg, "--key-pattern", "P:P", "--key-maximum", "9", "-t", "2", "-c", "8"), -EINVAL);
    assert_int_equal(PARSE(&cfg, "--prepopulate", "--key-maximum", "9", "-t", "1", "-c", "10"), 0);
}

static void test_bench_opts_cluster_mode_is_redis_only(void **state)
{
    struct bench_config cfg;
    assert_int_equal(PARSE(&cfg, "-p", "7000"), 0);
    assert_false(cfg.cluster_mode);
    assert_int_equal(PARSE(&cfg, "--cluster-mode", "-a", "pw", "--pipeline", "16"), 0);
    assert_true(cfg.cluster_mode);
    assert_int_equal(PARSE(&cfg, "--cluster-mode", "-P", "memcache_text"), -EINVAL);
    assert_non_null(strstr(err, "--cluster-mode"));
    assert_int_equal(PARSE(&cfg, "--cluster-mode", "--select-db", "1"), -EINVAL);
    assert_non_null(strstr(err, "database 0"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bench_opts_defaults_follow_memtier),
        cmocka_unit_test(test_bench_opts_parses_memtier_flags),
        cmocka_unit_test(test_bench_opts_parses_percentiles),
        cmocka_unit_test(test_bench_opts_parses_runs_output_and_setup),
        cmocka_unit_test(test_bench_opts_rejects_bad_values),
        cmocka_unit_test(test_bench_opts_checks_settings_together),
        cmocka_unit_test(test_bench_opts_cluster_mode_is_redis_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
