/* test_persistence.c: storage = log. Every acknowledged change survives a
 * restart (values, TTLs, deletes, overwrites, FLUSHALL), a crash (kill -9
 * under concurrent writes with appendfsync always), a change of shard count,
 * and damage to the segment files (a torn tail, a flipped byte), which the
 * node reports and truncates, keeping everything before it.
 * `ringkv --check-data DIR` finds the same damage offline. ringkv-only. */
#include "harness.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char data_dir[64];

static int setup(void **state)
{
    return harness_temp_dir(data_dir, sizeof data_dir, "ringkv-data");
}

static int teardown(void **state)
{
    harness_crash_all(); /* a failed assertion left its node running there */
    return harness_remove_dir(data_dir);
}

static void start(struct harness_server *s, int threads, const char *fsync)
{
    const char *args[] = {"--storage", "log", "--dir", data_dir, "--appendfsync", fsync, NULL};
    struct harness_opts o = {.threads = threads, .args = args};
    assert_int_equal(harness_start(s, &o), 0);
}

static void test_persistence_restart_keeps_every_change(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    start(&s, 2, "everysec");
    redisContext *c = harness_connect(s.port);
    for (int i = 0; i < 500; i++)
        harness_expect(c, HARNESS_OK, "SET k:%d v:%d", i, i);
    for (int i = 0; i < 100; i++)
        harness_expect(c, HARNESS_OK, "SET k:%d new:%d", i, i);
    for (int i = 100; i < 150; i++)
        harness_expect(c, HARNESS_INT(1), "DEL k:%d", i);
    harness_expect(c, HARNESS_OK, "SET ttl v EX 1000");
    harness_expect(c, HARNESS_OK, "SET persisted v EX 1000");
    harness_expect(c, HARNESS_INT(1), "PERSIST persisted");
    harness_expect(c, HARNESS_INT(1), "EXPIRE k:300 1000");
    for (int i = 1; i <= 5; i++)
        harness_expect(c, HARNESS_INT(i), "INCR counter");
    harness_expect(c, HARNESS_INT(10), "APPEND k:200 +more");
    static char big[100000];
    memset(big, 'z', sizeof big); /* compresses */
    harness_expect(c, HARNESS_OK, "SET big %b", big, sizeof big);
    static char noise[5000];
    for (size_t i = 0; i < sizeof noise; i++)
        noise[i] = (char)(rand() & 0xff); /* does not */
    harness_expect(c, HARNESS_OK, "SET noise %b", noise, sizeof noise);
    long long keys = harness_integer(c, "DBSIZE");
    harness_expect(c, HARNESS_OK, "SET short v PX 30"); /* gone by the restart */
    usleep(40 * 1000);
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);

    start(&s, 2, "everysec");
    c = harness_connect(s.port);
    for (int i = 0; i < 100; i++) {
        char want[32];
        snprintf(want, sizeof want, "new:%d", i);
        harness_expect(c, HARNESS_BULK(want), "GET k:%d", i);
    }
    for (int i = 100; i < 150; i++)
        harness_expect(c, HARNESS_NIL, "GET k:%d", i);
    harness_expect(c, HARNESS_BULK("v:499"), "GET k:499");
    harness_expect(c, HARNESS_BULK("v:200+more"), "GET k:200");
    harness_expect(c, HARNESS_BULK("5"), "GET counter");
    harness_expect(c, HARNESS_BULK_LEN(big, sizeof big), "GET big");
    harness_expect(c, HARNESS_BULK_LEN(noise, sizeof noise), "GET noise");
    harness_expect(c, HARNESS_NIL, "GET short");
    harness_expect(c, HARNESS_INT(-1), "TTL persisted");
    long long ttl = harness_integer(c, "TTL ttl");
    assert_true(ttl > 990 && ttl <= 1000);
    ttl = harness_integer(c, "TTL k:300");
    assert_true(ttl > 990 && ttl <= 1000);
    assert_int_equal(harness_integer(c, "DBSIZE"), keys);
    redisReply *r = harness_cmd(c, "INFO persistence");
    assert_non_null(strstr(r->str, "storage:log"));
    freeReplyObject(r);
    assert_true(harness_info_number(c, "persistence", "recovered_keys") == (double)keys);
    assert_true(harness_info_number(c, "persistence", "damaged_segments") == 0); /* a clean stop leaves no damage */
    /* Nothing written since the restart: write the big value again. */
    harness_expect(c, HARNESS_OK, "SET big %b", big, sizeof big);
    assert_true(harness_info_number(c, "persistence", "compression_ratio") > 10.0);
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

static void test_persistence_flushall_survives_restart(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    start(&s, 2, "no");
    redisContext *c = harness_connect(s.port);
    for (int i = 0; i < 200; i++)
        harness_expect(c, HARNESS_OK, "SET old:%d x", i);
    harness_expect(c, HARNESS_OK, "FLUSHALL");
    for (int i = 0; i < 20; i++)
        harness_expect(c, HARNESS_OK, "SET new:%d y", i);
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
    start(&s, 2, "no");
    c = harness_connect(s.port);
    assert_int_equal(harness_integer(c, "DBSIZE"), 20);
    harness_expect(c, HARNESS_BULK("y"), "GET new:7");
    harness_expect(c, HARNESS_NIL, "GET old:7");
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

static void check_keys(int port, int n)
{
    redisContext *c = harness_connect(port);
    assert_int_equal(harness_integer(c, "DBSIZE"), n);
    for (int i = 0; i < n; i++)
        redisAppendCommand(c, "GET key:%d", i);
    for (int i = 0; i < n; i++) {
        redisReply *r = harness_next_reply(c);
        char want[32];
        snprintf(want, sizeof want, "value:%d", i);
        harness_check(r, HARNESS_BULK(want), "GET after a change of shard count");
        freeReplyObject(r);
    }
    redisFree(c);
}

static bool dir_exists(const char *name)
{
    char path[128];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", data_dir, name);
    return stat(path, &st) == 0;
}

static void test_persistence_shard_count_can_change(void **state)
{
    harness_skip_unless_ringkv();
    enum { N = 3000 };
    struct harness_server s;
    start(&s, 2, "everysec");
    redisContext *c = harness_connect(s.port);
    for (int i = 0; i < N; i++)
        redisAppendCommand(c, "SET key:%d value:%d", i, i);
    for (int i = 0; i < N; i++)
        freeReplyObject(harness_next_reply(c));
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
    start(&s, 3, "everysec");
    check_keys(s.port, N);
    assert_int_equal(harness_stop(&s), 0);
    start(&s, 1, "everysec");
    check_keys(s.port, N);
    assert_int_equal(harness_stop(&s), 0);
    assert_true(dir_exists("shard-000"));
    assert_false(dir_exists("shard-002")); /* old shards' files are gone */
    start(&s, 2, "everysec");
    check_keys(s.port, N);
    assert_int_equal(harness_stop(&s), 0);
}

/* A reshard whose manifest cannot be written must not serve (nothing is
 * acknowledged in the new layout) and must not cost a key: the next start
 * removes the unfinished reshard's files and reshards again. */
static void test_persistence_unfinished_reshard_loses_nothing(void **state)
{
    harness_skip_unless_ringkv();
    enum { N = 1000 };
    struct harness_server s;
    start(&s, 2, "everysec");
    redisContext *c = harness_connect(s.port);
    for (int i = 0; i < N; i++)
        redisAppendCommand(c, "SET key:%d value:%d", i, i);
    for (int i = 0; i < N; i++)
        freeReplyObject(harness_next_reply(c));
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);

    char blocker[128], flags[256], log[128];
    snprintf(blocker, sizeof blocker, "%s/ringkv.meta.tmp", data_dir);
    assert_int_equal(mkdir(blocker, 0755), 0); /* the manifest cannot be replaced */
    snprintf(flags, sizeof flags, "--threads 4 --storage log --dir '%s'", data_dir);
    snprintf(log, sizeof log, "%s/reshard.log", data_dir);
    harness_start_refused(s.port, flags, log, "cannot write");
    assert_int_equal(rmdir(blocker), 0);

    start(&s, 4, "everysec");
    check_keys(s.port, N);
    assert_int_equal(harness_stop(&s), 0);
    start(&s, 2, "everysec");
    check_keys(s.port, N);
    assert_int_equal(harness_stop(&s), 0);
}

/* A writer that counts the SETs the server acknowledged. */
struct writer {
    int port, id;
    int acked;         /* key:<id>:0 .. key:<id>:acked-1 were acknowledged */
    volatile int *stop;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", w->port, tv);
    if (!c || c->err)
        return NULL;
    redisSetTimeout(c, tv);
    for (int next = 0; !*w->stop; next += 16) {
        for (int i = next; i < next + 16; i++)
            redisAppendCommand(c, "SET key:%d:%d value:%d", w->id, i, i);
        for (int i = next; i < next + 16; i++) {
            redisReply *r;
            if (redisGetReply(c, (void **)&r) != REDIS_OK) {
                redisFree(c);
                return NULL;
            }
            bool ok = r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0;
            freeReplyObject(r);
            if (!ok) {
                redisFree(c);
                return NULL;
            }
            w->acked = i + 1;
        }
    }
    redisFree(c);
    return NULL;
}

static int total_acked(struct writer *w, int n)
{
    int total = 0;
    for (int i = 0; i < n; i++)
        total += __atomic_load_n(&w[i].acked, __ATOMIC_RELAXED);
    return total;
}

/* appendfsync always: a reply leaves only after the fdatasync that covers
 * its record. One client waiting for each reply therefore costs one
 * fdatasync per write; a pipeline shares them (group commit). */
static void test_persistence_always_replies_after_fdatasync(void **state)
{
    harness_skip_unless_ringkv();
    enum { SEQUENTIAL = 50, PIPELINED = 2000 };
    struct harness_server s;
    start(&s, 1, "always");
    redisContext *c = harness_connect(s.port);
    double before = harness_info_number(c, "persistence", "fsyncs");
    for (int i = 0; i < SEQUENTIAL; i++)
        harness_expect(c, HARNESS_OK, "SET seq:%d v", i);
    double after = harness_info_number(c, "persistence", "fsyncs");
    print_message("  %d sequential writes: %.0f fdatasyncs\n", SEQUENTIAL, after - before);
    assert_true(after - before >= SEQUENTIAL);
    for (int i = 0; i < PIPELINED; i++)
        redisAppendCommand(c, "SET pipe:%d v", i);
    for (int i = 0; i < PIPELINED; i++) {
        redisReply *r = harness_next_reply(c);
        harness_check(r, HARNESS_OK, "a pipelined SET with appendfsync always");
        freeReplyObject(r);
    }
    double grouped = harness_info_number(c, "persistence", "fsyncs") - after;
    print_message("  %d pipelined writes: %.0f fdatasyncs\n", PIPELINED, grouped);
    assert_true(grouped >= 1 && grouped < PIPELINED / 4);
    assert_true(harness_info_number(c, "persistence", "write_errors") == 0);
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

static void test_persistence_crash_keeps_acknowledged_writes(void **state)
{
    harness_skip_unless_ringkv();
    enum { WRITERS = 4, BEFORE_CRASH = 4000 };
    struct harness_server s;
    start(&s, 2, "always");
    volatile int stop = 0;
    struct writer w[WRITERS];
    pthread_t t[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (struct writer){.port = s.port, .id = i, .stop = &stop};
        assert_int_equal(pthread_create(&t[i], NULL, writer_main, &w[i]), 0);
    }
    int64_t deadline = harness_now_ms() + 60000;
    while (total_acked(w, WRITERS) < BEFORE_CRASH && harness_now_ms() < deadline)
        usleep(1000);
    assert_true(total_acked(w, WRITERS) >= BEFORE_CRASH);
    assert_int_equal(harness_crash(&s), 0); /* writes are in flight right now */
    stop = 1;
    for (int i = 0; i < WRITERS; i++)
        pthread_join(t[i], NULL);

    start(&s, 2, "always");
    redisContext *c = harness_connect(s.port);
    for (int i = 0; i < WRITERS; i++) {
        print_message("  writer %d: %d writes acknowledged before the crash\n", i, w[i].acked);
        for (int k = 0; k < w[i].acked; k++)
            redisAppendCommand(c, "GET key:%d:%d", i, k);
        for (int k = 0; k < w[i].acked; k++) {
            redisReply *r = harness_next_reply(c);
            char want[32];
            snprintf(want, sizeof want, "value:%d", k);
            harness_check(r, HARNESS_BULK(want), "an acknowledged write after kill -9");
            freeReplyObject(r);
        }
    }
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

/* The newest segment of shard 0, and its size. */
static void newest_segment(char *path, size_t len, off_t *size)
{
    char best[256];
    harness_shard0_segment(data_dir, true, best, sizeof best);
    assert_true(best[0]);
    snprintf(path, len, "%.300s/shard-000/%.200s", data_dir, best);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    *size = st.st_size;
}

static int check_data(const char *extra)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' --check-data '%s' %s > /dev/null", getenv("RINGKV_BIN"),
             data_dir, extra);
    int status = system(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void fill_one_shard(int n)
{
    struct harness_server s;
    start(&s, 1, "everysec");
    redisContext *c = harness_connect(s.port);
    for (int i = 0; i < n; i++)
        harness_expect(c, HARNESS_OK, "SET key:%d value:%d", i, i);
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

/* The total size of the segment files under the data directory. */
static long long disk_use(void)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "du -sb --apparent-size '%s' | cut -f1", data_dir);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    long long bytes = -1;
    assert_int_equal(fscanf(f, "%lld", &bytes), 1);
    pclose(f);
    return bytes;
}

struct compaction_wait {
    redisContext *c;
    double compactions;
};

static bool compaction_caught_up(void *arg)
{
    struct compaction_wait *w = arg;
    double live = harness_info_number(w->c, "persistence", "live_ratio");
    return harness_info_number(w->c, "persistence", "compactions") > w->compactions && live >= 0.5;
}

/* Overwrites (with new and with equal values), deletes and expiries under
 * load: compaction rewrites old segments so that disk use stays near the
 * live data, and every live key keeps its newest value, before and after a
 * restart. */
/* One shard's log of 1 MiB segments, uncompressed, synced every second,
 * compacted at `threshold` percent live ("0": never on its own). */
static void start_small_segments(struct harness_server *s, const char *threshold)
{
    const char *args[] = {"--storage", "log", "--dir", data_dir, "--appendfsync", "everysec",
                          "--segment-size", "1mb", "--compression", "none",
                          "--compaction-threshold", threshold, NULL};
    struct harness_opts o = {.threads = 1, .args = args};
    assert_int_equal(harness_start(s, &o), 0);
}

/* The 1000-byte value of key i written in a round: names both, so a check
 * sees which write survived. */
enum { ROUND_VALUE = 1000 };
static const char *round_value(int round, int i)
{
    static char value[ROUND_VALUE + 1];
    snprintf(value, sizeof value, "%d:%d:", round, i);
    memset(value + strlen(value), 'v', ROUND_VALUE - strlen(value));
    return value;
}

/* SET key:0 .. key:keys-1, pipelined: odd keys to their value of round
 * odd_round, even keys of even_round. */
static void set_round(redisContext *c, int keys, int odd_round, int even_round)
{
    for (int i = 0; i < keys; i++)
        redisAppendCommand(c, "SET key:%d %s", i, round_value(i % 2 ? odd_round : even_round, i));
    for (int i = 0; i < keys; i++) {
        redisReply *r = harness_next_reply(c);
        harness_check(r, HARNESS_OK, "SET of a round");
        freeReplyObject(r);
    }
}

static void test_persistence_compaction_bounds_disk_use(void **state)
{
    harness_skip_unless_ringkv();
    enum { KEYS = 1000, ROUNDS = 24 };
    struct harness_server s;
    start_small_segments(&s, "50");
    redisContext *c = harness_connect(s.port);
    /* Odd keys get a new value each round, even keys the same one again (a
     * rewrite of an equal value is still a new version). */
    for (int round = 0; round < ROUNDS; round++)
        set_round(c, KEYS, round, ROUNDS - 1);
    for (int i = 0; i < KEYS; i += 10)
        harness_expect(c, HARNESS_INT(1), "DEL key:%d", i);
    for (int i = 5; i < KEYS; i += 10)
        harness_expect(c, HARNESS_INT(1), "PEXPIRE key:%d 1", i);
    long long written = (long long)harness_info_number(c, "persistence", "disk_bytes_written");
    struct compaction_wait w = {c, 0};
    assert_true(harness_wait_until(compaction_caught_up, &w, 30000, 50));
    long long used = disk_use();
    print_message("  %lld bytes written, %lld on disk after %.0f compactions\n", written, used,
                  harness_info_number(c, "persistence", "compactions"));
    assert_true(used < written / 4);
    for (int i = 0; i < KEYS; i++) {
        if (i % 10 == 0 || i % 10 == 5)
            harness_expect(c, HARNESS_NIL, "GET key:%d", i);
        else
            harness_expect(c, HARNESS_BULK(round_value(ROUNDS - 1, i)), "GET key:%d", i);
    }
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);

    start_small_segments(&s, "50");
    c = harness_connect(s.port);
    assert_int_equal(harness_integer(c, "DBSIZE"), KEYS - KEYS / 5);
    for (int i = 1; i < KEYS; i += 10)
        harness_expect(c, HARNESS_BULK(round_value(ROUNDS - 1, i)), "GET key:%d", i);
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
    assert_int_equal(check_data(""), 0);
}

/* SAVE and BGSAVE sync now: with appendfsync no nothing is synced until
 * the unsynced bytes reach their cap, so a log with no unsynced byte and
 * fdatasyncs counted right after them is their doing. Every shard of the
 * node takes part (two here); BGREWRITEAOF rewrites the closed segments. */
static bool nothing_unsynced(void *arg)
{
    return harness_info_number(arg, "persistence", "log_unsynced_bytes") == 0;
}

static void test_persistence_save_and_bgsave_sync_now(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    start(&s, 2, "no");
    redisContext *c = harness_connect(s.port);
    long long before = (long long)time(NULL);
    for (int i = 0; i < 200; i++)
        redisAppendCommand(c, "SET save:%d v:%d", i, i);
    redisAppendCommand(c, "SAVE"); /* pipelined: it covers the SETs before it */
    for (int i = 0; i < 200; i++) {
        redisReply *r = harness_next_reply(c);
        harness_check(r, HARNESS_OK, "SET before SAVE");
        freeReplyObject(r);
    }
    redisReply *r = harness_next_reply(c);
    harness_check(r, HARNESS_OK, "SAVE");
    freeReplyObject(r);
    assert_true(harness_info_number(c, "persistence", "log_unsynced_bytes") == 0);
    assert_true(harness_info_number(c, "persistence", "fsyncs") >= 2); /* both shards */
    assert_true(harness_integer(c, "LASTSAVE") >= before);
    long long saved = (long long)time(NULL);
    while ((long long)time(NULL) == saved) /* a later second for LASTSAVE to move to */
        usleep(20000);
    harness_expect(c, HARNESS_OK, "SAVE"); /* nothing new: at once, and LASTSAVE moves */
    assert_true(harness_integer(c, "LASTSAVE") > saved);

    for (int i = 0; i < 200; i++)
        harness_expect(c, HARNESS_OK, "SET bgsave:%d v:%d", i, i);
    assert_true(harness_info_number(c, "persistence", "log_unsynced_bytes") > 0);
    harness_expect(c, HARNESS_STATUS("Background saving started"), "BGSAVE");
    assert_true(harness_wait_until(nothing_unsynced, c, 10000, 20));
    harness_expect(c, HARNESS_STATUS("Background saving started"), "BGSAVE SCHEDULE");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "BGSAVE NOW");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'save' command"), "SAVE x");
    assert_true(harness_info_number(c, "persistence", "rdb_bgsave_in_progress") == 0);
    redisFree(c);
    assert_int_equal(harness_crash(&s), 0);
    start(&s, 2, "no");
    c = harness_connect(s.port);
    harness_expect(c, HARNESS_BULK("v:199"), "GET save:199");
    harness_expect(c, HARNESS_BULK("v:199"), "GET bgsave:199");
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

static void test_persistence_save_without_a_log_is_refused(void **state)
{
    harness_skip_unless_ringkv();
    const char *args[] = {"--storage", "memory", NULL};
    struct harness_opts o = {.threads = 2, .args = args};
    struct harness_server s;
    assert_int_equal(harness_start(&s, &o), 0);
    redisContext *c = harness_connect(s.port);
    const char *why = "ERR this node keeps no data on disk (storage memory): nothing to save";
    harness_expect(c, HARNESS_ERR(why), "SAVE");
    harness_expect(c, HARNESS_ERR(why), "BGSAVE");
    harness_expect(c, HARNESS_ERR(why), "BGREWRITEAOF");
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

struct rewrite_wait {
    redisContext *c;
    double compactions;
};

static bool rewrite_done(void *arg)
{
    struct rewrite_wait *w = arg;
    return harness_info_number(w->c, "persistence", "aof_rewrite_in_progress") == 0 &&
           harness_info_number(w->c, "persistence", "compactions") > w->compactions;
}

/* With compaction off (threshold 0) the log only grows; BGREWRITEAOF has
 * every closed segment rewritten once, keeping the live values only. */
static void test_persistence_bgrewriteaof_rewrites_the_log(void **state)
{
    harness_skip_unless_ringkv();
    enum { KEYS = 200, ROUNDS = 30 };
    struct harness_server s;
    start_small_segments(&s, "0");
    redisContext *c = harness_connect(s.port);
    for (int round = 0; round < ROUNDS; round++)
        set_round(c, KEYS, round, round);
    harness_expect(c, HARNESS_OK, "SAVE");
    double compactions = harness_info_number(c, "persistence", "compactions");
    assert_true(compactions == 0); /* off */
    long long before = disk_use();
    assert_true(before > (long long)KEYS * ROUND_VALUE * ROUNDS / 2);
    harness_expect(c, HARNESS_STATUS("Background append only file rewriting started"),
                   "BGREWRITEAOF");
    assert_true(harness_info_number(c, "persistence", "aof_rewrite_in_progress") == 1);
    harness_expect(c, HARNESS_ERR("ERR Background append only file rewriting already in progress"),
                   "BGREWRITEAOF");
    struct rewrite_wait w = {c, compactions};
    assert_true(harness_wait_until(rewrite_done, &w, 30000, 50));
    long long after = disk_use();
    print_message("  %lld bytes on disk before BGREWRITEAOF, %lld after %.0f compactions\n", before,
                  after, harness_info_number(c, "persistence", "compactions"));
    assert_true(after < before / 4);
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);

    start_small_segments(&s, "0");
    c = harness_connect(s.port);
    assert_int_equal(harness_integer(c, "DBSIZE"), KEYS);
    for (int i = 0; i < KEYS; i++)
        harness_expect(c, HARNESS_BULK(round_value(ROUNDS - 1, i)), "GET key:%d", i);
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
    assert_int_equal(check_data(""), 0);
}

static void test_persistence_torn_tail_is_cut_and_reported(void **state)
{
    harness_skip_unless_ringkv();
    fill_one_shard(100);
    assert_int_equal(check_data(""), 0);
    char path[600];
    off_t size;
    newest_segment(path, sizeof path, &size);
    assert_int_equal(truncate(path, size - 5), 0); /* the last record loses its end */
    assert_int_equal(check_data(""), 1);
    assert_int_equal(check_data("--repair"), 1); /* found, and cut */
    assert_int_equal(check_data(""), 0);
    newest_segment(path, sizeof path, &size);
    assert_int_equal(truncate(path, size - 5), 0); /* the node meets the next one */

    struct harness_server s;
    start(&s, 1, "everysec");
    redisContext *c = harness_connect(s.port);
    assert_int_equal(harness_integer(c, "DBSIZE"), 98); /* served: recovery is over */
    assert_true(harness_output_mentions(&s, "torn record"));
    harness_expect(c, HARNESS_BULK("value:97"), "GET key:97");
    harness_expect(c, HARNESS_NIL, "GET key:98");
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
    assert_int_equal(check_data(""), 0); /* the node truncated it */
}

static void test_persistence_flipped_byte_keeps_what_came_before(void **state)
{
    harness_skip_unless_ringkv();
    fill_one_shard(100);
    char path[600];
    off_t size;
    newest_segment(path, sizeof path, &size);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    off_t at = size / 2;
    unsigned char byte;
    assert_int_equal(pread(fd, &byte, 1, at), 1);
    byte ^= 0x40;
    assert_int_equal(pwrite(fd, &byte, 1, at), 1);
    close(fd);
    assert_int_equal(check_data(""), 1);

    struct harness_server s;
    start(&s, 1, "everysec");
    redisContext *c = harness_connect(s.port);
    long long n = harness_integer(c, "DBSIZE"); /* served: recovery is over */
    assert_true(harness_output_mentions(&s, "corrupt record"));
    assert_true(harness_info_number(c, "persistence", "damaged_segments") == 1);
    print_message("  %lld of 100 keys kept before the damaged record\n", n);
    assert_true(n > 20 && n < 100);
    for (int i = 0; i < n; i++) { /* records are in write order: a prefix survives */
        char want[32];
        snprintf(want, sizeof want, "value:%d", i);
        harness_expect(c, HARNESS_BULK(want), "GET key:%d", i);
    }
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
    assert_int_equal(check_data(""), 0); /* the node cut the damage off */
}

/* dir is "made if missing" (README): its missing parents too, as mkdir -p. */
static void test_persistence_dir_made_with_its_parents(void **state)
{
    harness_skip_unless_ringkv();
    char dir[128];
    snprintf(dir, sizeof dir, "%s/a/b/c", data_dir);
    const char *args[] = {"--storage", "log", "--dir", dir, NULL};
    struct harness_opts o = {.threads = 1, .args = args};
    struct harness_server s;
    assert_int_equal(harness_start(&s, &o), 0);
    redisContext *c = harness_connect(s.port);
    harness_expect(c, HARNESS_OK, "SET k v");
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
    assert_int_equal(harness_start(&s, &o), 0);
    c = harness_connect(s.port);
    harness_expect(c, HARNESS_BULK("v"), "GET k");
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
    char manifest[160];
    snprintf(manifest, sizeof manifest, "%s/ringkv.meta", dir);
    struct stat st;
    assert_int_equal(stat(manifest, &st), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_persistence_dir_made_with_its_parents, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_persistence_restart_keeps_every_change, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_persistence_flushall_survives_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_persistence_shard_count_can_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persistence_unfinished_reshard_loses_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_persistence_always_replies_after_fdatasync, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_persistence_crash_keeps_acknowledged_writes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_persistence_compaction_bounds_disk_use, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_persistence_save_and_bgsave_sync_now, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_persistence_save_without_a_log_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_persistence_bgrewriteaof_rewrites_the_log, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_persistence_torn_tail_is_cut_and_reported, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_persistence_flipped_byte_keeps_what_came_before,
                                        setup, teardown),
    };
    return harness_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
