/* test_durable_default.c: issue 9, "durable by default". A node started with
 * no storage settings at all (as the README's start command does) keeps what
 * it acknowledged across a clean restart and across a crash once a second has
 * passed (appendfsync everysec), over RESP and memcached, and leaves exactly
 * one data directory, ringkv-data, in its working directory. Each node runs
 * in a directory of this test (harness_opts.dir), removed at the end.
 * ringkv-only. */
#include "harness.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define KEYS 300

static char work_dir[64];

static int setup(void **state)
{
    return harness_temp_dir(work_dir, sizeof work_dir, "ringkv-durable");
}

static int teardown(void **state)
{
    return harness_remove_dir(work_dir);
}

static void start(struct harness_server *s)
{
    struct harness_opts o = {.memcache = true, .dir = work_dir}; /* no storage flags */
    assert_int_equal(harness_start(s, &o), 0);
}

static void write_keys(const struct harness_server *s, const char *tag)
{
    redisContext *c = harness_connect(s->port);
    for (int i = 0; i < KEYS; i++)
        harness_expect(c, HARNESS_OK, "SET %s:%d v:%d", tag, i, i);
    redisFree(c);
    struct harness_raw *r = harness_raw_open(s->mc_port);
    char line[128];
    snprintf(line, sizeof line, "set mc:%s 7 0 5\r\nhello\r\n", tag);
    harness_raw_send_str(r, line);
    harness_raw_expect(r, "STORED\r\n");
    harness_raw_close(r);
}

static void check_keys(const struct harness_server *s, const char *tag)
{
    redisContext *c = harness_connect(s->port);
    for (int i = 0; i < KEYS; i++) {
        char want[32];
        snprintf(want, sizeof want, "v:%d", i);
        harness_expect(c, HARNESS_BULK(want), "GET %s:%d", tag, i);
    }
    redisReply *r = harness_cmd(c, "INFO persistence");
    assert_non_null(strstr(r->str, "storage:log"));
    assert_non_null(strstr(r->str, "appendfsync:everysec"));
    freeReplyObject(r);
    /* tools that ask Redis whether it persists hear the same */
    static const char *const durable[] = {"appendonly", "yes", "appendfsync", "everysec"};
    r = harness_cmd(c, "CONFIG GET appendonly appendfsync");
    harness_check_bulks(r, durable, 4, "CONFIG GET appendonly appendfsync");
    freeReplyObject(r);
    redisFree(c);
    struct harness_raw *raw = harness_raw_open(s->mc_port);
    char line[64], want[64];
    snprintf(line, sizeof line, "get mc:%s\r\n", tag);
    snprintf(want, sizeof want, "VALUE mc:%s 7 5\r\nhello\r\nEND\r\n", tag);
    harness_raw_send_str(raw, line);
    harness_raw_expect(raw, want);
    harness_raw_close(raw);
}

/* The working directory holds the node's log and ringkv-data, nothing else. */
static void check_tidy(void)
{
    DIR *d = opendir(work_dir);
    assert_non_null(d);
    struct dirent *de;
    int data = 0;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
            !strcmp(de->d_name, "ringkv.log"))
            continue;
        if (!strcmp(de->d_name, "ringkv-data")) {
            data++;
            continue;
        }
        print_error("unexpected entry '%s' in the working directory\n", de->d_name);
        fail();
    }
    closedir(d);
    assert_int_equal(data, 1);
}

static void test_durable_default_restart_keeps_keys(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    start(&s);
    write_keys(&s, "clean");
    assert_int_equal(harness_stop(&s), 0);
    check_tidy();
    start(&s);
    check_keys(&s, "clean");
    assert_int_equal(harness_stop(&s), 0);
}

/* SHUTDOWN (redis-cli shutdown) stops the node as SIGTERM does: no reply, a
 * clean exit (status 0), and what it acknowledged is there after a restart.
 * SHUTDOWN ABORT has nothing to abort and leaves it serving. */
static void test_durable_default_shutdown_command(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    start(&s);
    write_keys(&s, "shutdown");
    redisContext *c = harness_connect(s.port);
    harness_expect(c, HARNESS_ERR("ERR No shutdown in progress."), "SHUTDOWN ABORT");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "SHUTDOWN LATER");
    harness_expect(c, HARNESS_OK, "SET after-abort yes");
    redisFree(c);
    struct harness_raw *r = harness_raw_open(s.port);
    harness_raw_send_str(r, "*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n");
    harness_raw_expect_closed(r);
    harness_raw_close(r);
    assert_int_equal(harness_wait_exit(&s, 10000), 0);
    check_tidy();
    start(&s);
    check_keys(&s, "shutdown");
    c = harness_connect(s.port);
    harness_expect(c, HARNESS_BULK("yes"), "GET after-abort");
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

static bool fsynced_since(void *arg)
{
    const struct harness_server *s = arg;
    redisContext *c = harness_connect(s->port);
    bool ok = harness_info_number(c, "persistence", "fsyncs") > 0 &&
              harness_info_number(c, "persistence", "log_unsynced_bytes") == 0;
    redisFree(c);
    return ok;
}

static void test_durable_default_crash_keeps_synced_keys(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    start(&s);
    write_keys(&s, "crash");
    /* everysec: within about a second everything written is synced. */
    assert_true(harness_wait_until(fsynced_since, &s, HARNESS_TIMEOUT_MS, 100));
    assert_int_equal(harness_crash(&s), 0);
    start(&s);
    check_keys(&s, "crash");
    check_keys(&s, "clean");
    assert_int_equal(harness_stop(&s), 0);
    check_tidy();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durable_default_restart_keeps_keys),
        cmocka_unit_test(test_durable_default_shutdown_command),
        cmocka_unit_test(test_durable_default_crash_keeps_synced_keys),
    };
    return harness_finish(cmocka_run_group_tests(tests, setup, teardown));
}
