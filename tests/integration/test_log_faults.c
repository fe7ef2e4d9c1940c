/* test_log_faults.c: issue 9, item 2 (and 3): write and fdatasync failures
 * that only a fault hook can stage. The node under test is ringkv-faults
 * ($RINGKV_FAULTS_BIN: ringkv built with persist.c's RINGKV_FAULTS hook),
 * whose shard reads a control file named by $RINGKV_FAULTS on its tick:
 * "fsync N", "write N", "rotation N" fail the next N fdatasyncs of the
 * current segment, writes, fdatasyncs of a closed segment. An injected
 * fdatasync failure also zeroes the file's bytes past its last good
 * fdatasync, as a kernel that dropped dirty pages after a writeback error
 * leaves them. Each case: the fault fires (write_errors counts it), write
 * commands meet MISCONF while the log cannot persist, the node recovers by
 * itself, and after a crash (SIGKILL) everything acknowledged is there.
 * One shard, so that one tick reads the control file. ringkv-only. */
#include "harness.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define VALUE_LEN 1000

static char work[64];
static char data_dir[96];
static char control[96];

static int setup(void **state)
{
    if (harness_temp_dir(work, sizeof work, "ringkv-faults") != 0)
        return -1;
    snprintf(data_dir, sizeof data_dir, "%s/data", work);
    snprintf(control, sizeof control, "%s/faults", work);
    return setenv("RINGKV_FAULTS", control, 1);
}

static int teardown(void **state)
{
    harness_crash_all(); /* a failed assertion left its node running there */
    return harness_remove_dir(work);
}

static void start_compacting(struct harness_server *s, const char *fsync,
                             const char *segment_size, const char *compaction_threshold)
{
    const char *args[] = {"--dir",          data_dir,     "--appendfsync",
                          fsync,            "--segment-size", segment_size,
                          "--compaction-threshold", compaction_threshold, NULL};
    struct harness_opts o = {.threads = 1, .args = args};
    assert_int_equal(harness_start(s, &o), 0);
}

static void start(struct harness_server *s, const char *fsync, const char *segment_size)
{
    start_compacting(s, fsync, segment_size, "0");
}

static bool control_consumed(void *arg)
{
    struct stat st;
    return stat(control, &st) != 0;
}

/* Arms faults ("fsync 1") and waits until the node has read them. */
static void arm(const char *faults)
{
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s.tmp", control);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", faults);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, control), 0);
    assert_true(harness_wait_until(control_consumed, NULL, HARNESS_TIMEOUT_MS, 20));
}

/* SET key:from .. key:to-1; a write refused with MISCONF is tried again
 * until the node takes it. Returns how many refusals were met. */
static int write_keys(redisContext *c, int from, int to)
{
    static char val[VALUE_LEN];
    int refused = 0;
    int64_t deadline = harness_now_ms() + 30000;
    for (int i = from; i < to;) {
        harness_noise((uint32_t)i, val, VALUE_LEN);
        redisReply *r = harness_cmd(c, "SET key:%d %b", i, val, (size_t)VALUE_LEN);
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "MISCONF ", 8) == 0) {
            refused++;
            freeReplyObject(r);
            assert_true(harness_now_ms() < deadline);
            usleep(20 * 1000); /* the node retries on its 100 ms tick */
            continue;
        }
        harness_check(r, HARNESS_OK, "SET");
        freeReplyObject(r);
        i++;
    }
    return refused;
}

/* The fault fired, the log recovered, and everything is synced. */
static bool recovered_and_synced(void *arg)
{
    redisContext *c = arg;
    redisReply *r = harness_cmd(c, "INFO persistence");
    bool ok = strstr(r->str, "log_write_status:ok") != NULL &&
              strstr(r->str, "log_unsynced_bytes:0\r\n") != NULL &&
              strstr(r->str, "\r\nwrite_errors:0\r\n") == NULL;
    freeReplyObject(r);
    return ok;
}

static bool synced(void *arg)
{
    redisContext *c = arg;
    return harness_info_number(c, "persistence", "log_unsynced_bytes") == 0;
}

static bool rotated(void *arg)
{
    return harness_info_number(arg, "persistence", "segments") >= 2;
}

/* Crashes the node, starts it again on the same data, checks n keys. */
static void crash_and_check(struct harness_server *s, redisContext *c, int n, const char *fsync,
                            const char *segment_size)
{
    assert_true(harness_wait_until(recovered_and_synced, c, HARNESS_TIMEOUT_MS, 50));
    redisFree(c);
    assert_int_equal(harness_crash(s), 0);
    start(s, fsync, segment_size);
    c = harness_connect(s->port);
    harness_check_noise_keys(c, n, VALUE_LEN);
    redisFree(c);
    assert_int_equal(harness_stop(s), 0);
}

/* everysec: an fdatasync fails and the kernel dropped what it was to sync;
 * the next good one must not declare those bytes durable unwritten. */
static void test_log_faults_failed_fsync_writes_again(void **state)
{
    struct harness_server s;
    start(&s, "everysec", "64mb");
    redisContext *c = harness_connect(s.port);
    write_keys(c, 0, 200);
    assert_true(harness_wait_until(synced, c, HARNESS_TIMEOUT_MS, 50));
    arm("fsync 1");
    write_keys(c, 200, 400); /* written, then lost by the failed fdatasync */
    crash_and_check(&s, c, 400, "everysec", "64mb");
}

/* A write that fails: MISCONF until it is written again, then writes again. */
static void test_log_faults_failed_write_refuses_then_recovers(void **state)
{
    struct harness_server s;
    start(&s, "everysec", "64mb");
    redisContext *c = harness_connect(s.port);
    write_keys(c, 0, 100);
    arm("write 3");
    assert_true(write_keys(c, 100, 1000) > 0);
    crash_and_check(&s, c, 1000, "everysec", "64mb");
}

/* A closed segment whose fdatasync fails: its unsynced bytes are written
 * again (it stays open until then), not just logged. */
static void test_log_faults_failed_rotation_sync_writes_again(void **state)
{
    struct harness_server s;
    start(&s, "everysec", "1mb");
    redisContext *c = harness_connect(s.port);
    arm("rotation 1");
    /* Writes go on until the segment rotates meanwhile, so that the closed
     * one has bytes no fdatasync covered yet. How far past 1 MB that is
     * depends on time, not bytes: rotation waits for the next file, made
     * ahead through the ring (openat, header, fdatasync, directory fsync),
     * and for the write or fdatasync in flight; on a loaded machine a fast
     * writer fills several megabytes meanwhile. */
    int n = 0;
    int64_t deadline = harness_now_ms() + HARNESS_TIMEOUT_MS;
    while (!rotated(c)) {
        assert_true(harness_now_ms() < deadline);
        write_keys(c, n, n + 200);
        n += 200;
    }
    print_message("  rotated after %d keys\n", n);
    crash_and_check(&s, c, n, "everysec", "1mb");
}

static bool compacted(void *arg)
{
    return harness_info_number(arg, "persistence", "compactions") >= 1;
}

/* Writes 1500 keys in 1 MB segments, then new versions of the even keys
 * below 1000 (so the oldest segment is mostly dead), and stops the node. */
static void write_compactable(struct harness_server *s)
{
    start(s, "everysec", "1mb");
    redisContext *c = harness_connect(s->port);
    write_keys(c, 0, 1500); /* about 1.5 MB: the oldest segment holds key:0 onwards */
    assert_true(harness_wait_until(rotated, c, HARNESS_TIMEOUT_MS, 50));
    static char val[VALUE_LEN];
    for (int round = 0; round < 3; round++) /* even keys get new versions; odd ones stay */
        for (int i = 0; i < 1000; i += 2) {
            harness_noise((uint32_t)(i + 100000), val, VALUE_LEN);
            harness_expect(c, HARNESS_OK, "SET key:%d %b", i, val, (size_t)VALUE_LEN);
        }
    redisFree(c);
    assert_int_equal(harness_stop(s), 0);
}

/* Starts the node compacting with faults armed before its first tick reads
 * them (it then begins compacting: the live share is well under 95%). */
static void start_compacting_with(struct harness_server *s, const char *faults)
{
    FILE *f = fopen(control, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", faults);
    assert_int_equal(fclose(f), 0);
    start_compacting(s, "everysec", "1mb", "95");
}

static void check_compactable(struct harness_server *s)
{
    start(s, "everysec", "1mb");
    redisContext *c = harness_connect(s->port);
    static char val[VALUE_LEN];
    for (int i = 0; i < 1500; i++) {
        harness_noise((uint32_t)(i < 1000 && i % 2 == 0 ? i + 100000 : i), val, VALUE_LEN);
        harness_expect(c, HARNESS_BULK_LEN(val, VALUE_LEN), "GET key:%d", i);
    }
    redisFree(c);
    assert_int_equal(harness_stop(s), 0);
}

/* Compaction copies the live records of the oldest segment to the tail,
 * and the fdatasync that should make the copies durable fails (dropping
 * them): the old segment must not go before the copies are written again
 * and synced. */
static void test_log_faults_compaction_keeps_its_source_until_copies_sync(void **state)
{
    struct harness_server s;
    write_compactable(&s);
    start_compacting_with(&s, "fsync 1");
    redisContext *c = harness_connect(s.port);
    assert_true(harness_wait_until(compacted, c, HARNESS_TIMEOUT_MS, 50));
    assert_true(harness_wait_until(recovered_and_synced, c, HARNESS_TIMEOUT_MS, 50));
    redisFree(c);
    assert_int_equal(harness_crash(&s), 0);
    check_compactable(&s);
}

static bool failed_thrice(void *arg)
{
    return harness_info_number(arg, "persistence", "write_errors") >= 3;
}

/* The same, crashed while the fdatasyncs still fail: an unlink that came
 * before the copies were durable shows now. */
static void test_log_faults_compaction_crash_while_failing(void **state)
{
    struct harness_server s;
    write_compactable(&s);
    start_compacting_with(&s, "fsync 100000");
    redisContext *c = harness_connect(s.port);
    assert_true(harness_wait_until(failed_thrice, c, HARNESS_TIMEOUT_MS, 50));
    redisReply *r = harness_cmd(c, "INFO persistence");
    assert_non_null(strstr(r->str, "log_write_status:err"));
    freeReplyObject(r);
    redisFree(c);
    assert_int_equal(harness_crash(&s), 0);
    check_compactable(&s);
}

static bool vanished(void *arg)
{
    return harness_output_mentions(arg, "segment 1 vanished");
}

/* A segment compaction is about to open was removed behind its back (the
 * fault hook unlinks segment 1 first, as a second process on the directory
 * or an operator would). Its records are gone; compaction must not turn
 * itself off until restart for that, but drop it and go on: every record
 * in segment 1 was superseded later, so nothing live is lost either. */
static void test_log_faults_compaction_goes_on_past_a_vanished_segment(void **state)
{
    struct harness_server s;
    start(&s, "everysec", "1mb");
    redisContext *c = harness_connect(s.port);
    write_keys(c, 0, 1500); /* segment 1 holds these */
    assert_true(harness_wait_until(rotated, c, HARNESS_TIMEOUT_MS, 50));
    static char val[VALUE_LEN];
    for (int round = 0; round < 3; round++) /* later segments: mostly dead too */
        for (int i = 0; i < 1500; i++) {
            harness_noise((uint32_t)(i + 100000), val, VALUE_LEN);
            harness_expect(c, HARNESS_OK, "SET key:%d %b", i, val, (size_t)VALUE_LEN);
        }
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
    start_compacting_with(&s, "vanish 1");
    c = harness_connect(s.port);
    assert_true(harness_wait_until(compacted, c, HARNESS_TIMEOUT_MS, 50));
    assert_true(vanished(&s)); /* the first pass met the gap */
    assert_false(harness_output_mentions(&s, "compaction is off"));
    assert_true(harness_wait_until(synced, c, HARNESS_TIMEOUT_MS, 50));
    redisFree(c);
    assert_int_equal(harness_crash(&s), 0);
    start(&s, "everysec", "1mb");
    c = harness_connect(s.port);
    for (int i = 0; i < 1500; i++) {
        harness_noise((uint32_t)(i + 100000), val, VALUE_LEN);
        harness_expect(c, HARNESS_BULK_LEN(val, VALUE_LEN), "GET key:%d", i);
    }
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

/* always: a failed fdatasync holds the replies until the batch is written
 * and synced again. */
static void test_log_faults_always_holds_replies_through_a_failure(void **state)
{
    struct harness_server s;
    start(&s, "always", "64mb");
    redisContext *c = harness_connect(s.port);
    write_keys(c, 0, 50);
    arm("fsync 2");
    write_keys(c, 50, 300);
    crash_and_check(&s, c, 300, "always", "64mb");
}

/* Reads INFO persistence on a raw connection: is the log failing? */
static bool raw_log_failing(struct harness_raw *r)
{
    harness_raw_send_str(r, "*2\r\n$4\r\nINFO\r\n$11\r\npersistence\r\n");
    struct harness_resp *info = harness_raw_reply(r);
    bool failing = info->str && strstr(info->str, "log_write_status:err") != NULL;
    harness_resp_free(info);
    return failing;
}

/* Sends a command on a raw connection and expects this reply line (or,
 * with prefix, a line starting so) within ms: prompt, not held. */
static void raw_prompt(struct harness_raw *r, const char *cmd, const char *want, bool prefix,
                       int ms)
{
    harness_raw_send_str(r, cmd);
    char *l = harness_raw_line(r, ms);
    assert_non_null(l);
    if (prefix)
        assert_true(strncmp(l, want, strlen(want)) == 0);
    else
        assert_string_equal(l, want);
    free(l);
}

static bool log_ok(void *arg)
{
    redisContext *c = arg;
    redisReply *r = harness_cmd(c, "INFO persistence");
    bool ok = strstr(r->str, "log_write_status:ok") != NULL;
    freeReplyObject(r);
    return ok;
}

/* always, fdatasync failing for good: the shard must not freeze. Another
 * client's read of a durable key, PING and INFO (showing the failure) are
 * answered at once, well before request-timeout; a write gets -MISCONF (or,
 * the one that met the failure, nothing until its record is synced), never
 * +OK; once the fault is cleared writes go on, and every +OK survives a
 * crash. */
static void test_log_faults_always_failure_does_not_freeze_the_shard(void **state)
{
    struct harness_server s;
    const char *args[] = {"--dir", data_dir, "--appendfsync", "always", "--segment-size",
                          "64mb", "--compaction-threshold", "0", "--request-timeout", "60000",
                          NULL};
    struct harness_opts o = {.threads = 1, .args = args};
    assert_int_equal(harness_start(&s, &o), 0);
    redisContext *c = harness_connect(s.port);
    write_keys(c, 0, 50);
    arm("fsync 100000");
    struct harness_raw *w = harness_raw_open(s.port); /* its SET meets the failure */
    harness_raw_send_str(w, "*3\r\n$3\r\nSET\r\n$4\r\nnew1\r\n$1\r\nx\r\n");
    struct harness_raw *r = harness_raw_open(s.port);
    int64_t deadline = harness_now_ms() + HARNESS_TIMEOUT_MS;
    for (;;) {
        raw_prompt(r, "*1\r\n$4\r\nPING\r\n", "+PONG", false, 2000);
        if (raw_log_failing(r))
            break;
        assert_true(harness_now_ms() < deadline);
        usleep(20 * 1000);
    }
    static char val[VALUE_LEN];
    harness_noise(7, val, VALUE_LEN);
    raw_prompt(r, "*2\r\n$3\r\nGET\r\n$5\r\nkey:7\r\n", "$1000", false, 2000);
    char *l = harness_raw_line(r, 2000);
    assert_non_null(l);
    assert_memory_equal(l, val, VALUE_LEN);
    free(l);
    raw_prompt(r, "*3\r\n$3\r\nSET\r\n$4\r\nnew2\r\n$1\r\nx\r\n", "-MISCONF ", true, 2000);
    raw_prompt(r, "*1\r\n$4\r\nPING\r\n", "+PONG", false, 2000);
    int64_t t0 = harness_now_ms(); /* CLIENT LIST asks every shard: held by none */
    harness_raw_send_str(r, "*2\r\n$6\r\nCLIENT\r\n$4\r\nLIST\r\n");
    struct harness_resp *list = harness_raw_reply(r);
    assert_int_equal(list->type, '$');
    harness_resp_free(list);
    assert_true(harness_now_ms() - t0 < 2000);
    assert_true(raw_log_failing(r));
    l = harness_raw_line(w, 500); /* not acknowledged while its record is not synced */
    assert_null(l);
    arm("clear 0");
    assert_true(harness_wait_until(log_ok, c, HARNESS_TIMEOUT_MS, 50));
    l = harness_raw_line(w, HARNESS_TIMEOUT_MS); /* synced now: acknowledged */
    assert_non_null(l);
    assert_string_equal(l, "+OK");
    free(l);
    harness_raw_close(r);
    harness_raw_close(w);
    write_keys(c, 50, 100);
    harness_expect(c, HARNESS_OK, "SET new3 y");
    redisFree(c);
    assert_int_equal(harness_crash(&s), 0);
    assert_int_equal(harness_start(&s, &o), 0);
    c = harness_connect(s.port);
    harness_check_noise_keys(c, 100, VALUE_LEN);
    harness_expect(c, HARNESS_BULK("x"), "GET new1");
    harness_expect(c, HARNESS_BULK("y"), "GET new3");
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

#define PIPE_CLIENTS 4
#define PIPE_WRITES 1500

/* always, several clients pipelining writes, so that more than one batch
 * is in flight when an fdatasync fails: the others are poisoned (their
 * success may hide the lost pages) and written again. No +OK is lost. */
static void test_log_faults_always_poisons_batches_in_flight(void **state)
{
    struct harness_server s;
    start(&s, "always", "64mb");
    struct harness_raw *raw[PIPE_CLIENTS];
    static char val[VALUE_LEN];
    struct buf_like {
        char *p;
        size_t len;
    } req[PIPE_CLIENTS];
    for (int k = 0; k < PIPE_CLIENTS; k++) {
        raw[k] = harness_raw_open(s.port);
        req[k].p = malloc((size_t)PIPE_WRITES * (VALUE_LEN + 64));
        assert_non_null(req[k].p);
        req[k].len = 0;
        for (int i = 0; i < PIPE_WRITES; i++) {
            char key[32];
            int klen = snprintf(key, sizeof key, "p:%d:%d", k, i);
            harness_noise((uint32_t)(k * PIPE_WRITES + i), val, VALUE_LEN);
            req[k].len += (size_t)sprintf(req[k].p + req[k].len,
                                          "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n", klen, key,
                                          VALUE_LEN);
            memcpy(req[k].p + req[k].len, val, VALUE_LEN);
            req[k].len += VALUE_LEN;
            memcpy(req[k].p + req[k].len, "\r\n", 2);
            req[k].len += 2;
        }
    }
    /* Half of each pipeline, the fault, the other half: batches of all
     * clients are in flight around it. */
    for (int k = 0; k < PIPE_CLIENTS; k++)
        harness_raw_send(raw[k], req[k].p, req[k].len / 2);
    arm("fsync 1");
    for (int k = 0; k < PIPE_CLIENTS; k++)
        harness_raw_send(raw[k], req[k].p + req[k].len / 2, req[k].len - req[k].len / 2);
    /* Where a command was cut in two, the halves join: replies come for all. */
    static bool ok[PIPE_CLIENTS][PIPE_WRITES];
    int acked = 0;
    for (int k = 0; k < PIPE_CLIENTS; k++) {
        for (int i = 0; i < PIPE_WRITES; i++) {
            char *l = harness_raw_line(raw[k], 30000);
            assert_non_null(l);
            ok[k][i] = strcmp(l, "+OK") == 0;
            assert_true(ok[k][i] || strncmp(l, "-MISCONF ", 9) == 0);
            acked += ok[k][i];
            free(l);
        }
        harness_raw_close(raw[k]);
        free(req[k].p);
    }
    print_message("  %d of %d writes acknowledged\n", acked, PIPE_CLIENTS * PIPE_WRITES);
    redisContext *c = harness_connect(s.port);
    assert_true(harness_info_number(c, "persistence", "write_errors") >= 1);
    assert_true(harness_wait_until(recovered_and_synced, c, HARNESS_TIMEOUT_MS, 50));
    redisFree(c);
    assert_int_equal(harness_crash(&s), 0);
    start(&s, "always", "64mb");
    c = harness_connect(s.port);
    for (int k = 0; k < PIPE_CLIENTS; k++)
        for (int i = 0; i < PIPE_WRITES; i++) {
            if (!ok[k][i])
                continue;
            harness_noise((uint32_t)(k * PIPE_WRITES + i), val, VALUE_LEN);
            harness_expect(c, HARNESS_BULK_LEN(val, VALUE_LEN), "GET p:%d:%d", k, i);
        }
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

static bool failing(void *arg)
{
    redisContext *c = arg;
    redisReply *r = harness_cmd(c, "INFO persistence");
    bool yes = strstr(r->str, "log_write_status:err") != NULL;
    freeReplyObject(r);
    return yes;
}

/* Stopping while the log cannot persist: the node tries again for a while,
 * and when the disk stays bad it exits non-zero, saying how many records
 * it could not write, never "stopped cleanly". */
static void test_log_faults_stop_while_failing_exits_non_zero(void **state)
{
    struct harness_server s;
    start(&s, "everysec", "64mb");
    redisContext *c = harness_connect(s.port);
    write_keys(c, 0, 100);
    arm("fsync 100000");
    assert_true(harness_wait_until(failing, c, HARNESS_TIMEOUT_MS, 20));
    redisFree(c);
    assert_int_equal(harness_stop_exit(&s, 30000), 1);
    assert_true(harness_output_mentions(&s, "records of the data log not on disk"));
    assert_false(harness_output_mentions(&s, "stopped cleanly"));
}

/* The same with a disk that comes back while stopping: the records are
 * written then, the node stops cleanly, and nothing acknowledged is lost. */
static void test_log_faults_stop_while_failing_writes_when_it_can(void **state)
{
    struct harness_server s;
    start(&s, "everysec", "64mb");
    redisContext *c = harness_connect(s.port);
    write_keys(c, 0, 100);
    arm("fsync 4");
    assert_true(harness_wait_until(failing, c, HARNESS_TIMEOUT_MS, 20));
    redisFree(c);
    assert_int_equal(harness_stop_exit(&s, 30000), 0);
    assert_true(harness_output_mentions(&s, "stopped cleanly"));
    start(&s, "everysec", "64mb");
    c = harness_connect(s.port);
    harness_check_noise_keys(c, 100, VALUE_LEN);
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

#define BIG_VALUE (100 * 1000)
#define BIG_WRITES 2000          /* 200 MB, past the 128 MiB cap */
#define BUFFERED_CAP (128 << 20) /* persist.c's PERSIST_MAX_BUFFERED */
#define TURN_SLACK (32 << 20)    /* what one loop turn may add past it */

struct pipeliner {
    int fd;
    volatile int done;
    int failed;
};

static void *pipeliner_main(void *arg)
{
    struct pipeliner *w = arg;
    static char val[BIG_VALUE];
    harness_noise(1, val, BIG_VALUE);
    for (int i = 0; i < BIG_WRITES && !w->failed; i++) {
        char head[96];
        int n = snprintf(head, sizeof head, "*3\r\n$3\r\nSET\r\n$%d\r\nbig:%d\r\n$%d\r\n",
                         (int)strlen("big:") + snprintf(NULL, 0, "%d", i), i, BIG_VALUE);
        memcpy(val, &i, sizeof i); /* each value its own */
        struct {
            const char *p;
            size_t n;
        } parts[3] = {{head, (size_t)n}, {val, BIG_VALUE}, {"\r\n", 2}};
        for (int k = 0; k < 3 && !w->failed; k++)
            for (size_t off = 0; off < parts[k].n;) {
                ssize_t m = send(w->fd, parts[k].p + off, parts[k].n - off, MSG_NOSIGNAL);
                if (m < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                    struct pollfd pfd = {.fd = w->fd, .events = POLLOUT};
                    poll(&pfd, 1, 1000); /* paused by the node: TCP holds the rest */
                    continue;
                }
                if (m <= 0) {
                    w->failed = 1;
                    break;
                }
                off += (size_t)m;
            }
    }
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* always, fdatasyncs slow (a second each): a client pipelining writes is
 * paused while the shard's log holds more than its cap of bytes not durable
 * yet, so memory stays bounded; every write is acknowledged in the end. */
static void test_log_faults_back_pressure_bounds_unsynced_bytes(void **state)
{
    struct harness_server s;
    const char *args[] = {"--dir", data_dir, "--appendfsync", "always", "--request-timeout",
                          "120000", "--compaction-threshold", "0", NULL};
    struct harness_opts o = {.threads = 1, .args = args};
    assert_int_equal(harness_start(&s, &o), 0);
    redisContext *c = harness_connect(s.port);
    arm("slow 100000");
    struct harness_raw *raw = harness_raw_open(s.port);
    struct pipeliner w = {.fd = raw->fd};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, pipeliner_main, &w), 0);
    double most = 0;
    int64_t deadline = harness_now_ms() + 120000;
    while (!__atomic_load_n(&w.done, __ATOMIC_ACQUIRE) && harness_now_ms() < deadline) {
        double n = harness_info_number(c, "persistence", "log_unsynced_bytes");
        most = n > most ? n : most;
        usleep(10 * 1000);
    }
    print_message("  at most %.0f bytes not durable (sender failed %d)\n", most, w.failed);
    assert_true(most <= (double)BUFFERED_CAP + TURN_SLACK);
    assert_true(most >= (double)BUFFERED_CAP / 2); /* the cap was reached */
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(w.failed, 0);
    arm("clear 0");
    for (int i = 0; i < BIG_WRITES; i++) {
        char *l = harness_raw_line(raw, 60000);
        assert_non_null(l);
        assert_string_equal(l, "+OK");
        free(l);
    }
    harness_raw_close(raw);
    redisReply *r = harness_cmd(c, "STRLEN big:%d", BIG_WRITES - 1);
    assert_int_equal(r->integer, BIG_VALUE);
    freeReplyObject(r);
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

int main(void)
{
    if (harness_target_is_redis())
        return 77;
    const char *bin = getenv("RINGKV_FAULTS_BIN");
    if (bin == NULL || access(bin, X_OK) != 0) {
        fprintf(stderr, "RINGKV_FAULTS_BIN is not an executable (ctest sets it)\n");
        return 1;
    }
    setenv("RINGKV_BIN", bin, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_log_faults_failed_fsync_writes_again, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_log_faults_failed_write_refuses_then_recovers,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_faults_failed_rotation_sync_writes_again,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_faults_always_holds_replies_through_a_failure,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_log_faults_compaction_keeps_its_source_until_copies_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_faults_compaction_crash_while_failing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_log_faults_compaction_goes_on_past_a_vanished_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_faults_always_failure_does_not_freeze_the_shard,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_faults_always_poisons_batches_in_flight, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_log_faults_stop_while_failing_exits_non_zero, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_log_faults_back_pressure_bounds_unsynced_bytes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_faults_stop_while_failing_writes_when_it_can,
                                        setup, teardown),
    };
    return harness_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
