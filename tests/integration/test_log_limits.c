/* test_log_limits.c: issue 9, items 1 and 6: one size limit everywhere, and
 * recovery that never serves a version older than the newest it holds.
 * - A value the limit does not allow is refused before it is acknowledged,
 *   also when APPEND, SETRANGE or memcached append/prepend would grow one
 *   past it; a restart finds every acknowledged value (a small
 *   proto-max-bulk-len keeps it cheap; the log's own 1 GiB bound is checked
 *   by test_cfg, test_store and cli.sh).
 * - A restart with lower max-key-size and proto-max-bulk-len still loads
 *   the newest record of every key, compaction under those limits keeps it,
 *   and a later restart with the old limits still finds it. ringkv-only. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BIG_LEN 5000

static char data_dir[64];

static int setup(void **state)
{
    return harness_temp_dir(data_dir, sizeof data_dir, "ringkv-limits");
}

static int teardown(void **state)
{
    harness_crash_all(); /* a failed assertion left its node running there */
    return harness_remove_dir(data_dir);
}

static void start(struct harness_server *s, const char *bulk, const char *key)
{
    const char *args[] = {"--storage", "log", "--dir", data_dir, "--proto-max-bulk-len", bulk,
                          "--max-key-size", key, "--threads", "1", "--segment-size", "1mb",
                          "--compaction-threshold", "90", NULL};
    struct harness_opts o = {.memcache = true, .args = args};
    assert_int_equal(harness_start(s, &o), 0);
}

static void test_log_limits_growth_past_the_limit_is_refused(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    start(&s, "1024", "64kb");
    redisContext *c = harness_connect(s.port);
    static char v[1000], more[100];
    harness_noise(1, v, sizeof v);
    memset(more, '+', sizeof more);
    harness_expect(c, HARNESS_OK, "SET k %b", v, sizeof v);
    harness_expect(c, HARNESS_OK, "SET m %b", v, sizeof v);
    redisReply *r = harness_cmd(c, "APPEND k %b", more, sizeof more);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    r = harness_cmd(c, "SETRANGE k 1020 12345678");
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    harness_expect(c, HARNESS_INT(1024), "SETRANGE k 1000 %b", more, (size_t)24); /* up to it */
    struct harness_raw *mc = harness_raw_open(s.mc_port);
    harness_raw_send_str(mc, "append m 0 0 100\r\n");
    harness_raw_send(mc, more, sizeof more);
    harness_raw_send_str(mc, "\r\n");
    harness_raw_expect(mc, "SERVER_ERROR object too large for cache\r\n");
    harness_raw_send_str(mc, "prepend m 0 0 100\r\n");
    harness_raw_send(mc, more, sizeof more);
    harness_raw_send_str(mc, "\r\n");
    harness_raw_expect(mc, "SERVER_ERROR object too large for cache\r\n");
    harness_raw_close(mc);
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);

    start(&s, "1024", "64kb");
    c = harness_connect(s.port);
    static char k_want[1024];
    memcpy(k_want, v, sizeof v);
    memset(k_want + sizeof v, '+', 24);
    harness_expect(c, HARNESS_BULK_LEN(k_want, sizeof k_want), "GET k");
    harness_expect(c, HARNESS_BULK_LEN(v, sizeof v), "GET m");
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

/* Compaction has rewritten and removed at least one segment. */
static bool compacted(void *arg)
{
    return harness_info_number((redisContext *)arg, "persistence", "compactions") >= 1;
}

static void test_log_limits_restart_with_lower_limits_serves_the_newest(void **state)
{
    harness_skip_unless_ringkv();
    static char big[BIG_LEN], long_key[100];
    harness_noise(2, big, sizeof big);
    memset(long_key, 'L', sizeof long_key);
    struct harness_server s;
    start(&s, "512mb", "64kb");
    redisContext *c = harness_connect(s.port);
    harness_expect(c, HARNESS_OK, "SET k old");
    harness_expect(c, HARNESS_OK, "SET k %b", big, sizeof big);
    harness_expect(c, HARNESS_OK, "SET %b old", long_key, sizeof long_key);
    harness_expect(c, HARNESS_OK, "SET %b new", long_key, sizeof long_key);
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);

    start(&s, "2048", "50"); /* both records are now past the limits */
    c = harness_connect(s.port);
    harness_expect(c, HARNESS_BULK_LEN(big, sizeof big), "GET k");
    assert_int_equal(harness_integer(c, "DBSIZE"), 2);
    harness_expect(c, HARNESS_INT(1), "EXISTS k");
    /* Overwrites of one filler key fill new segments with dead records, so
     * compaction rewrites the oldest segment, which holds k's and the long
     * key's records: it must copy their newest versions, past the limits or
     * not. */
    static char filler[2000];
    harness_noise(3, filler, sizeof filler);
    for (int round = 0; round < 30; round++) { /* 6 MB over 1 MB segments */
        for (int i = 0; i < 100; i++)
            redisAppendCommand(c, "SET filler %b", filler, sizeof filler);
        for (int i = 0; i < 100; i++) {
            redisReply *ok = harness_next_reply(c);
            assert_int_equal(ok->type, REDIS_REPLY_STATUS);
            freeReplyObject(ok);
        }
    }
    assert_true(harness_wait_until(compacted, c, HARNESS_TIMEOUT_MS, 20));
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);

    start(&s, "512mb", "64kb");
    c = harness_connect(s.port);
    harness_expect(c, HARNESS_BULK_LEN(big, sizeof big), "GET k");
    harness_expect(c, HARNESS_BULK("new"), "GET %b", long_key, sizeof long_key);
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

/* A memcached set whose value is over the limit answers SERVER_ERROR and
 * drops the key's old value, as memcached does (a reader must not get the
 * old value after a set that failed); noreply drops it silently; add,
 * replace, append and prepend leave it (memcached unlinks on set only). The
 * node reads on after the swallowed data block. */
static void test_log_limits_too_large_set_drops_the_old_value(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    start(&s, "1024", "64kb");
    struct harness_raw *mc = harness_raw_open(s.mc_port);
    static char big[1100];
    memset(big, 'b', sizeof big);
    harness_raw_send_str(mc, "set k 0 0 3\r\nold\r\nadd k 0 0 1100\r\n");
    harness_raw_send(mc, big, sizeof big);
    harness_raw_send_str(mc, "\r\nget k\r\n");
    harness_raw_expect(mc, "STORED\r\nSERVER_ERROR object too large for cache\r\n"
                           "VALUE k 0 3\r\nold\r\nEND\r\n");
    harness_raw_send_str(mc, "set k 0 0 1100\r\n");
    harness_raw_send(mc, big, sizeof big);
    harness_raw_send_str(mc, "\r\nget k\r\n");
    harness_raw_expect(mc, "SERVER_ERROR object too large for cache\r\nEND\r\n");
    harness_raw_send_str(mc, "set k 0 0 3\r\nold\r\nset k 0 0 1100 noreply\r\n");
    harness_raw_send(mc, big, sizeof big);
    harness_raw_send_str(mc, "\r\nget k\r\n");
    harness_raw_expect(mc, "STORED\r\nEND\r\n");
    harness_raw_close(mc);
    assert_int_equal(harness_stop(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_log_limits_too_large_set_drops_the_old_value, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_log_limits_growth_past_the_limit_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_log_limits_restart_with_lower_limits_serves_the_newest, setup, teardown),
    };
    return harness_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
