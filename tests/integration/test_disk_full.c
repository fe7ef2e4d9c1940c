/* test_disk_full.c: issue 9, item 3: a full disk. The node's data directory
 * lives on a real small filesystem (a 4 MB tmpfs this test mounts; root
 * only, as in CI: skipped with 77 otherwise). Writes go on until the log
 * cannot persist; from then on write commands get MISCONF (RESP) or
 * SERVER_ERROR (memcached) and nothing more is acknowledged, reads go on,
 * INFO persistence says so; once space is freed (a filler file the test made
 * is removed) the node takes writes again by itself, and everything it ever
 * acknowledged survives a crash. And a log that fills its own volume with
 * dead records (one key overwritten) frees it by compaction while writes
 * are refused, and takes writes again by itself. Each test mounts its own
 * tmpfs. ringkv-only. */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#define VALUE_LEN 4000
#define MAX_KEYS 5000 /* 20 MB of values: far past the filesystem */
#define FILLER_BYTES (1 << 20)
#define MISCONF_PREFIX "MISCONF Errors writing to the data log: No space left on device"

static char mnt[64];
static char data_dir[96];
static char filler[96];
static bool mounted;

static int setup(void **state)
{
    if (harness_temp_dir(mnt, sizeof mnt, "ringkv-full") != 0)
        return -1;
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=4m") != 0) {
        fprintf(stderr, "cannot mount a tmpfs (%s): skipping\n", strerror(errno));
        rmdir(mnt);
        exit(77);
    }
    mounted = true;
    snprintf(data_dir, sizeof data_dir, "%s/data", mnt);
    snprintf(filler, sizeof filler, "%s/filler", mnt);
    FILE *f = fopen(filler, "w");
    static char block[FILLER_BYTES];
    return f && fwrite(block, 1, sizeof block, f) == sizeof block && fclose(f) == 0 ? 0 : -1;
}

static struct harness_server *running; /* the test's node, stopped at teardown */

static int teardown(void **state)
{
    if (running && running->pid) /* a failed assertion left it running */
        harness_crash(running);
    running = NULL;
    /* A process that still has a file open there keeps it busy: detach. */
    if (mounted && umount2(mnt, MNT_DETACH) != 0)
        return -1;
    mounted = false;
    return rmdir(mnt);
}

static bool synced(void *arg)
{
    return harness_info_number(arg, "persistence", "log_unsynced_bytes") == 0;
}

static void start(struct harness_server *s)
{
    const char *args[] = {"--dir", data_dir, "--compaction-threshold", "0", NULL};
    struct harness_opts o = {.threads = 2, .memcache = true, .args = args};
    assert_int_equal(harness_start(s, &o), 0);
    running = s;
}

static bool writes_taken_again(void *arg)
{
    redisContext *c = arg;
    redisReply *r = harness_cmd(c, "SET after-recovery yes");
    bool ok = r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    return ok;
}

static void test_disk_full_refuses_writes_then_recovers(void **state)
{
    harness_skip_unless_ringkv();
    static struct harness_server s; /* outlives a failed assertion: teardown stops it */
    start(&s);
    redisContext *c = harness_connect(s.port);
    static char val[VALUE_LEN];
    int acked = 0;
    redisReply *refusal = NULL;
    int64_t deadline = harness_now_ms() + 60000;
    while (acked < MAX_KEYS && harness_now_ms() < deadline) {
        harness_noise((uint32_t)acked, val, VALUE_LEN);
        redisReply *r = harness_cmd(c, "SET key:%d %b", acked, val, (size_t)VALUE_LEN);
        if (r->type == REDIS_REPLY_ERROR) {
            refusal = r;
            break;
        }
        harness_check(r, HARNESS_OK, "SET before the disk is full");
        freeReplyObject(r);
        acked++;
    }
    assert_non_null(refusal);
    print_message("  %d writes acknowledged before: %s\n", acked, refusal->str);
    assert_true(strncmp(refusal->str, MISCONF_PREFIX, strlen(MISCONF_PREFIX)) == 0);
    freeReplyObject(refusal);
    assert_true(acked > 100);

    /* Every write command is refused, whatever its key; reads go on. */
    redisReply *r = harness_cmd(c, "DEL key:0");
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_true(strncmp(r->str, "MISCONF", 7) == 0);
    freeReplyObject(r);
    r = harness_cmd(c, "INFO persistence");
    assert_non_null(strstr(r->str, "log_write_status:err"));
    assert_non_null(strstr(r->str, "log_last_error:No space left on device"));
    freeReplyObject(r);
    struct harness_raw *mc = harness_raw_open(s.mc_port);
    harness_raw_send_str(mc, "set mc 0 0 1\r\nx\r\n");
    harness_raw_expect(mc, "SERVER_ERROR Errors writing to the data log: No space left on "
                           "device\r\n");
    harness_raw_send_str(mc, "get mc\r\n");
    harness_raw_expect(mc, "END\r\n");
    harness_check_noise_keys(c, acked, VALUE_LEN);

    /* Space comes back: the node takes writes again by itself. */
    assert_int_equal(unlink(filler), 0);
    assert_true(harness_wait_until(writes_taken_again, c, HARNESS_TIMEOUT_MS, 100));
    r = harness_cmd(c, "INFO persistence");
    assert_non_null(strstr(r->str, "log_write_status:ok"));
    freeReplyObject(r);
    harness_raw_send_str(mc, "set mc 0 0 1\r\nx\r\n");
    harness_raw_expect(mc, "STORED\r\n");
    harness_raw_close(mc);
    /* A crash, not a clean stop: what was acknowledged is on disk. */
    assert_true(harness_wait_until(synced, c, HARNESS_TIMEOUT_MS, 50));
    redisFree(c);
    assert_int_equal(harness_crash(&s), 0);

    start(&s);
    c = harness_connect(s.port);
    harness_check_noise_keys(c, acked, VALUE_LEN);
    harness_expect(c, HARNESS_BULK("yes"), "GET after-recovery");
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
    running = NULL;
}

#define OVERWRITES 4000 /* 16 MB of values through a 4 MB filesystem */

/* One key overwritten with 4 KB values in 1 MB segments fills the
 * filesystem with dead records: while writes are refused, compaction must
 * still remove the dead segments (nothing else frees space), and the node
 * takes writes again by itself. Every acknowledged value survives a crash. */
static void test_disk_full_compaction_frees_a_full_disk(void **state)
{
    harness_skip_unless_ringkv();
    assert_int_equal(unlink(filler), 0);
    static struct harness_server s; /* outlives a failed assertion: teardown stops it */
    const char *args[] = {"--dir", data_dir, "--segment-size", "1mb", NULL};
    struct harness_opts o = {.threads = 1, .args = args};
    assert_int_equal(harness_start(&s, &o), 0);
    running = &s;
    redisContext *c = harness_connect(s.port);
    static char val[VALUE_LEN];
    int refusals = 0, last = -1;
    for (int i = 0; i < OVERWRITES; i++) {
        harness_noise((uint32_t)i, val, VALUE_LEN);
        int64_t deadline = harness_now_ms() + 15000;
        for (;;) {
            redisReply *r = harness_cmd(c, "SET key %b", val, (size_t)VALUE_LEN);
            if (r->type == REDIS_REPLY_STATUS) {
                freeReplyObject(r);
                break;
            }
            assert_int_equal(r->type, REDIS_REPLY_ERROR);
            assert_true(strncmp(r->str, "MISCONF", 7) == 0);
            freeReplyObject(r);
            refusals++;
            /* The node frees space by itself: no write stays refused. */
            assert_true(harness_now_ms() < deadline);
            usleep(20 * 1000);
        }
        last = i;
    }
    print_message("  %d refusals met on the way\n", refusals);
    assert_true(harness_wait_until(synced, c, HARNESS_TIMEOUT_MS, 50));
    redisFree(c);
    assert_int_equal(harness_crash(&s), 0);
    assert_int_equal(harness_start(&s, &o), 0);
    c = harness_connect(s.port);
    harness_noise((uint32_t)last, val, VALUE_LEN);
    harness_expect(c, HARNESS_BULK_LEN(val, VALUE_LEN), "GET key");
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
    running = NULL;
}

int main(void)
{
    if (harness_target_is_redis())
        return 77;
    if (geteuid() != 0) {
        fprintf(stderr, "mounting a small filesystem needs root: skipping\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_disk_full_refuses_writes_then_recovers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_disk_full_compaction_frees_a_full_disk, setup,
                                        teardown),
    };
    return harness_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
