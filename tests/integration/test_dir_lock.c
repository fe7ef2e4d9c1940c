/* test_dir_lock.c: one ringkv per data directory. A second process started
 * on a directory a running node uses (here with another shard count, which
 * would re-lay the data and remove every segment under the first node) is
 * refused before it reads or writes anything there: exit status 1 and one
 * line naming the holder's pid and the directory. The first node serves on
 * untouched. The lock dies with its process, kill -9 included, so a restart
 * after a crash works. storage = memory locks too when dir keeps the node id
 * (a writable directory). Real processes; ringkv-only. */
#include "harness.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static char data_dir[64];

static int setup(void **state)
{
    return harness_temp_dir(data_dir, sizeof data_dir, "ringkv-lock");
}

static int teardown(void **state)
{
    harness_crash_all(); /* a failed assertion left its node running there */
    return harness_remove_dir(data_dir);
}

static void start(struct harness_server *s, const char *storage)
{
    const char *args[] = {"--storage", storage, "--dir", data_dir, "--appendfsync", "always", NULL};
    struct harness_opts o = {.args = args};
    assert_int_equal(harness_start(s, &o), 0);
}

/* Starts a second node on data_dir with `storage` and 3 shards (the first
 * has 2) and checks it is refused, naming holder's pid. */
static void check_second_refused(const struct harness_server *holder, const char *storage)
{
    int port, unused;
    assert_int_equal(harness_free_ports(&port, &unused), 0);
    char flags[256], log[128], needle[160];
    snprintf(flags, sizeof flags, "--threads 3 --storage %s --dir '%s'", storage, data_dir);
    snprintf(log, sizeof log, "%s/second.log", data_dir);
    snprintf(needle, sizeof needle, "another ringkv (pid %d) uses %s; ", (int)holder->pid,
             data_dir);
    harness_start_refused(port, flags, log, needle);
}

static void test_dir_lock_second_node_refused(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    start(&s, "log");
    redisContext *c = harness_connect(s.port);
    harness_expect(c, HARNESS_OK, "SET kept v");
    char meta[128];
    snprintf(meta, sizeof meta, "%s/ringkv.meta", data_dir);
    struct stat before, after;
    assert_int_equal(stat(meta, &before), 0);

    check_second_refused(&s, "log");
    assert_int_equal(stat(meta, &after), 0); /* no re-lay began */
    assert_true(after.st_ino == before.st_ino && after.st_size == before.st_size);
    harness_expect(c, HARNESS_BULK("v"), "GET kept");
    harness_expect(c, HARNESS_OK, "SET after v2");
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);

    start(&s, "log"); /* stopped cleanly: the lock went with it */
    c = harness_connect(s.port);
    harness_expect(c, HARNESS_BULK("v"), "GET kept");
    harness_expect(c, HARNESS_BULK("v2"), "GET after");
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

static void test_dir_lock_released_by_kill_9(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    start(&s, "log");
    redisContext *c = harness_connect(s.port);
    harness_expect(c, HARNESS_OK, "SET kept v");
    redisFree(c);
    assert_int_equal(harness_crash(&s), 0); /* the LOCK file stays, with a dead pid */

    start(&s, "log");
    c = harness_connect(s.port);
    harness_expect(c, HARNESS_BULK("v"), "GET kept"); /* appendfsync always */
    redisFree(c);
    check_second_refused(&s, "log"); /* the new node holds it, under its own pid */
    assert_int_equal(harness_stop(&s), 0);
}

static void test_dir_lock_memory_storage_keeping_node_id(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    start(&s, "memory");
    check_second_refused(&s, "memory");
    check_second_refused(&s, "log");
    assert_int_equal(harness_stop(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dir_lock_second_node_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_lock_released_by_kill_9, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_lock_memory_storage_keeping_node_id, setup,
                                        teardown),
    };
    return harness_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
