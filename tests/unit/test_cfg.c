/* Unit tests for cfg: defaults, INI file, flags, validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cfg.h"
#include "seg.h"

static int load(struct cfg *c, int argc, char **argv, char *err)
{
    bool exit_now;
    return cfg_load(c, argc, argv, &exit_now, err, 256);
}

static void test_cfg_defaults_match_redis(void **state)
{
    struct cfg c;
    char err[256];
    char *argv[] = {"ringkv"};
    assert_int_equal(load(&c, 1, argv, err), 0);
    assert_int_equal(c.port, 6379);
    assert_int_equal(c.memcache_port, 11211);
    assert_string_equal(c.bind, "127.0.0.1");
    assert_int_equal(c.maxmemory, 0);
    assert_int_equal(c.maxmemory_policy, CFG_POLICY_NOEVICTION);
    assert_int_equal(c.partitions, 1024);
    assert_int_equal(c.proto_max_bulk_len, 512LL << 20);
}

/* Issue 9: durable by default, in a directory of its own under the working one. */
static void test_cfg_durable_by_default(void **state)
{
    struct cfg c;
    char err[256];
    char *argv[] = {"ringkv"};
    assert_int_equal(load(&c, 1, argv, err), 0);
    assert_int_equal(c.storage, CFG_STORAGE_LOG);
    assert_int_equal(c.appendfsync, CFG_FSYNC_EVERYSEC);
    assert_string_equal(c.dir, "ringkv-data");
}

/* Issue 9, item 1: no size setting goes past what one log record holds. */
static void test_cfg_sizes_stay_within_a_log_record(void **state)
{
    struct cfg c;
    char err[256];
    char *at_limit[] = {"ringkv", "--proto-max-bulk-len", "1gb", "--max-key-size", "512mb"};
    assert_int_equal(load(&c, 5, at_limit, err), 0);
    assert_int_equal(c.proto_max_bulk_len, SEG_MAX_VALUE);
    assert_int_equal(c.max_key_size, SEG_MAX_KEY);
    char *bulk[] = {"ringkv", "--proto-max-bulk-len", "1073741825"};
    assert_int_not_equal(load(&c, 3, bulk, err), 0);
    assert_non_null(strstr(err, "proto-max-bulk-len"));
    assert_non_null(strstr(err, "data log record"));
    char *key[] = {"ringkv", "--max-key-size", "513mb"};
    assert_int_not_equal(load(&c, 3, key, err), 0);
    assert_non_null(strstr(err, "max-key-size"));
}

static void test_cfg_flags_override_file(void **state)
{
    char path[] = "/tmp/ringkv-cfg-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *ini = "; comment\nport = 7000\nmaxmemory = 2mb\nmaxmemory-policy = allkeys-lru\n"
                      "threads = 3\n";
    assert_int_equal(write(fd, ini, strlen(ini)), (ssize_t)strlen(ini));
    close(fd);
    struct cfg c;
    char err[256];
    char *argv[] = {"ringkv", path, "--port", "7001", "--maxmemory", "1kb"};
    assert_int_equal(load(&c, 6, argv, err), 0);
    unlink(path);
    assert_int_equal(c.port, 7001);
    assert_int_equal(c.maxmemory, 1024);
    assert_int_equal(c.maxmemory_policy, CFG_POLICY_ALLKEYS_LRU);
    assert_int_equal(c.threads, 3);
}

static void test_cfg_rejects_bad_values(void **state)
{
    struct cfg c;
    char err[256];
    char *bad_port[] = {"ringkv", "--port", "70000"};
    assert_int_not_equal(load(&c, 3, bad_port, err), 0);
    assert_non_null(strstr(err, "port"));
    char *bad_policy[] = {"ringkv", "--maxmemory-policy", "sometimes"};
    assert_int_not_equal(load(&c, 3, bad_policy, err), 0);
    char *bad_size[] = {"ringkv", "--maxmemory", "12parsecs"};
    assert_int_not_equal(load(&c, 3, bad_size, err), 0);
    char *unknown[] = {"ringkv", "--no-such-setting", "1"};
    assert_int_not_equal(load(&c, 3, unknown, err), 0);
    char *odd[] = {"ringkv", "--port"};
    assert_int_not_equal(load(&c, 2, odd, err), 0);
    char *not_pow2[] = {"ringkv", "--partitions", "1000"};
    assert_int_not_equal(load(&c, 3, not_pow2, err), 0);
}

/* SCAN's cursor holds the shard in 8 bits (cmd.c): more than 256 shard
 * threads would make SCAN stop before the shards past 255, so 257 is refused
 * with a reason naming the setting, and 256 is accepted. */
/* Issue 10: admin-port -1 is port + 1000, 0 is off; cluster-port 0 is port +
 * 10000; both step down instead when the sum is past 65535. */
static void test_cfg_cluster_ports_follow_port(void **state)
{
    struct cfg c;
    char err[256];
    char *argv[] = {"ringkv"};
    assert_int_equal(load(&c, 1, argv, err), 0);
    assert_int_equal(cfg_admin_port(&c), 7379);
    assert_int_equal(cfg_cluster_port(&c), 16379);
    assert_int_equal(c.weight, 100);
    assert_string_equal(c.zone, "");
    char *high[] = {"ringkv", "--port", "60000"};
    assert_int_equal(load(&c, 3, high, err), 0);
    assert_int_equal(cfg_admin_port(&c), 61000);
    assert_int_equal(cfg_cluster_port(&c), 50000);
    char *top[] = {"ringkv", "--port", "65000"};
    assert_int_equal(load(&c, 3, top, err), 0);
    assert_int_equal(cfg_admin_port(&c), 64000);
    char *off[] = {"ringkv", "--admin-port", "0", "--cluster-port", "7000"};
    assert_int_equal(load(&c, 5, off, err), 0);
    assert_int_equal(cfg_admin_port(&c), 0);
    assert_int_equal(cfg_cluster_port(&c), 7000);
    char *clash[] = {"ringkv", "--admin-port", "6379"};
    assert_int_not_equal(load(&c, 3, clash, err), 0);
    char *bad_zone[] = {"ringkv", "--zone", "a b"};
    assert_int_not_equal(load(&c, 3, bad_zone, err), 0);
    char *long_zone[] = {"ringkv", "--zone",
                         "0123456789012345678901234567890123456789012345678901234567890123"};
    assert_int_not_equal(load(&c, 3, long_zone, err), 0);
    char *zero_weight[] = {"ringkv", "--weight", "0"};
    assert_int_not_equal(load(&c, 3, zero_weight, err), 0);
}

static void test_cfg_threads_fit_the_scan_cursor(void **state)
{
    struct cfg c;
    char err[256];
    char *too_many[] = {"ringkv", "--threads", "257"};
    assert_int_not_equal(load(&c, 3, too_many, err), 0);
    assert_non_null(strstr(err, "threads"));
    assert_non_null(strstr(err, "256"));
    char *most[] = {"ringkv", "--threads", "256"};
    assert_int_equal(load(&c, 3, most, err), 0);
    assert_int_equal(c.threads, 256);
}

static void count_pairs(const char *name, const char *value, void *arg) { (*(int *)arg)++; }

static void test_cfg_get_matches_globs(void **state)
{
    struct cfg c;
    char err[256];
    char *argv[] = {"ringkv"};
    assert_int_equal(load(&c, 1, argv, err), 0);
    int n = 0;
    assert_int_equal(cfg_get(&c, "maxmemory*", count_pairs, &n), 3);
    assert_int_equal(n, 3);
    n = 0;
    assert_int_equal(cfg_get(&c, "port", count_pairs, &n), 1);
    assert_int_equal(cfg_get(&c, "nothing", count_pairs, &n), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cfg_defaults_match_redis),
        cmocka_unit_test(test_cfg_durable_by_default),
        cmocka_unit_test(test_cfg_sizes_stay_within_a_log_record),
        cmocka_unit_test(test_cfg_flags_override_file),
        cmocka_unit_test(test_cfg_rejects_bad_values),
        cmocka_unit_test(test_cfg_threads_fit_the_scan_cursor),
        cmocka_unit_test(test_cfg_cluster_ports_follow_port),
        cmocka_unit_test(test_cfg_get_matches_globs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
