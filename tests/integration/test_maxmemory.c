/* test_maxmemory.c: behaviour at the memory limit, per maxmemory-policy.
 * noeviction: writes past the limit get Redis's -OOM error while reads,
 * deletes and FLUSHALL still work, and writes succeed again once memory is
 * freed. allkeys-lru: writes keep succeeding and DBSIZE stays bounded.
 * volatile-ttl: keys with a TTL are evicted to make room, keys without one
 * are kept.
 * ringkv and Redis account memory differently, so the limit is not a fixed
 * number: the group setup starts a node without a limit, reads its idle
 * used_memory, stops it, and each case then runs its own node with
 * maxmemory = idle + HEADROOM. Assertions are about behaviour (an error
 * appears, writes succeed, counts are bounded), never exact byte counts.
 * Every write loop is bounded by a count and a deadline. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEADROOM (4LL * 1024 * 1024)
#define VALUE_LEN 4096
#define MAX_WRITES 20000
#define BATCH 100
#define LOOP_TIMEOUT_MS 60000

static struct harness_server server;
static long long idle_used_memory;
static char value[VALUE_LEN + 1];

static long long used_memory(redisContext *c)
{
    redisReply *r = harness_cmd(c, "INFO memory");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    const char *p = strstr(r->str, "used_memory:");
    assert_non_null(p);
    long long v = strtoll(p + strlen("used_memory:"), NULL, 10);
    freeReplyObject(r);
    return v;
}

static int group_setup(void **state)
{
    memset(value, 'm', VALUE_LEN);
    struct harness_server probe;
    const char *args[] = {"--storage", "memory", NULL};
    struct harness_opts o = {.args = args};
    if (harness_start(&probe, &o) != 0)
        return -1;
    redisContext *c = harness_connect(probe.port);
    idle_used_memory = used_memory(c);
    redisFree(c);
    print_message("test_maxmemory: idle used_memory %lld, limit %lld\n", idle_used_memory,
                  idle_used_memory + HEADROOM);
    return harness_stop(&probe) == 0 && idle_used_memory > 0 ? 0 : -1;
}

static int start_with_policy(void **state, const char *policy)
{
    static char limit[32];
    snprintf(limit, sizeof(limit), "%lld", idle_used_memory + HEADROOM);
    /* One shard: ringkv splits maxmemory evenly between shards, so with one
     * the limit is the node's, as in Redis, whichever shard a key lands on. */
    const char *args[] = {"--maxmemory", limit, "--maxmemory-policy", policy, "--threads", "1",
                          "--storage", "memory", NULL}; /* a cache: eviction, not values on disk */
    struct harness_opts o = {.args = args};
    if (harness_start(&server, &o) != 0)
        return -1;
    *state = harness_connect(server.port);
    return 0;
}

static int setup_noeviction(void **state)
{
    return start_with_policy(state, "noeviction");
}

static int setup_allkeys_lru(void **state)
{
    return start_with_policy(state, "allkeys-lru");
}

static int setup_volatile_ttl(void **state)
{
    return start_with_policy(state, "volatile-ttl");
}

static int teardown(void **state)
{
    redisFree(*state);
    return harness_stop(&server) == 0 ? 0 : -1;
}

struct write_result {
    int ok;        /* writes answered +OK */
    int oom;       /* writes answered with the OOM error */
    int first_oom; /* index of the first OOM, -1 if none */
};

/* Writes prefix<i> for i in [from, from+n) in pipelined batches, each with
 * "EX ttl" when ttl > 0. Stops early after stop_after_oom OOM replies (0: never).
 * Fails on any reply other than +OK or the OOM error. */
static struct write_result write_keys(redisContext *c, const char *prefix, int from, int n, int ttl,
                                      int stop_after_oom)
{
    struct write_result res = {0, 0, -1};
    int64_t deadline = harness_now_ms() + LOOP_TIMEOUT_MS;
    for (int i = from; i < from + n; i += BATCH) {
        assert_true(harness_now_ms() < deadline);
        int end = i + BATCH < from + n ? i + BATCH : from + n;
        for (int j = i; j < end; j++) {
            if (ttl > 0)
                redisAppendCommand(c, "SET %s%d %s EX %d", prefix, j, value, ttl + j);
            else
                redisAppendCommand(c, "SET %s%d %s", prefix, j, value);
        }
        for (int j = i; j < end; j++) {
            redisReply *r = harness_next_reply(c);
            if (harness_reply_matches(r, HARNESS_OK, NULL, 0)) {
                res.ok++;
            } else {
                harness_check(r,
                              HARNESS_ERR("OOM command not allowed when used memory > "
                                          "'maxmemory'."),
                              "SET past maxmemory");
                if (res.oom++ == 0)
                    res.first_oom = j;
            }
            freeReplyObject(r);
        }
        if (stop_after_oom > 0 && res.oom >= stop_after_oom)
            break;
    }
    return res;
}

static void test_maxmemory_noeviction_refuses_writes(void **state)
{
    redisContext *c = *state;
    struct write_result w = write_keys(c, "k:", 0, MAX_WRITES, 0, 10);
    print_message("  %d writes accepted before the first OOM\n", w.ok);
    assert_true(w.ok > 0);
    assert_true(w.oom > 0);
    /* Keys are not evicted: everything accepted is still there. */
    assert_int_equal(harness_integer(c, "DBSIZE"), w.ok);
    harness_expect(c, HARNESS_BULK(value), "GET k:0");
    /* The refusal lasts. A table resize that finishes in the background
     * frees its old array, which may let a few more writes in (as in
     * Redis), but never more than a handful. */
    struct write_result more = write_keys(c, "another:", 0, 100, 0, 1);
    print_message("  %d more writes accepted before the next OOM\n", more.first_oom);
    assert_true(more.oom >= 1);
    assert_true(more.first_oom >= 0 && more.first_oom <= w.ok / 20);
    harness_expect(c, HARNESS_ERR("OOM command not allowed when used memory > 'maxmemory'."),
                   "APPEND k:0 more");
    harness_expect(c, HARNESS_INT(1), "EXISTS k:1");
    harness_expect(c, HARNESS_INT(1), "DEL k:1");
    harness_expect(c, HARNESS_STATUS("PONG"), "PING");
    harness_expect(c, HARNESS_OK, "FLUSHALL");
    harness_expect(c, HARNESS_OK, "SET after-flush %s", value);
    harness_expect(c, HARNESS_BULK(value), "GET after-flush");
}

static void test_maxmemory_allkeys_lru_keeps_accepting(void **state)
{
    redisContext *c = *state;
    struct write_result w = write_keys(c, "k:", 0, MAX_WRITES, 0, 0);
    assert_int_equal(w.oom, 0);
    assert_int_equal(w.ok, MAX_WRITES);
    long long n = harness_integer(c, "DBSIZE");
    print_message("  DBSIZE %lld after %d writes\n", n, MAX_WRITES);
    assert_true(n > 0);
    assert_true(n < MAX_WRITES / 2);
    /* The newest key was just written: an LRU policy keeps it. */
    harness_expect(c, HARNESS_BULK(value), "GET k:%d", MAX_WRITES - 1);
}

static void test_maxmemory_volatile_ttl_evicts_only_volatile(void **state)
{
    redisContext *c = *state;
    /* As many volatile writes as the other cases make: far past the limit. */
    enum { VOLATILE = MAX_WRITES, PERSISTENT = 400 };
    struct write_result v = write_keys(c, "vol:", 0, VOLATILE, 1000, 0);
    assert_int_equal(v.oom, 0);
    struct write_result p = write_keys(c, "perm:", 0, PERSISTENT, 0, 0);
    assert_int_equal(p.oom, 0);
    for (int i = 0; i < PERSISTENT; i++)
        redisAppendCommand(c, "EXISTS perm:%d", i);
    for (int i = 0; i < PERSISTENT; i++) {
        redisReply *r = harness_next_reply(c);
        harness_check(r, HARNESS_INT(1), "EXISTS of a key without TTL");
        freeReplyObject(r);
    }
    long long n = harness_integer(c, "DBSIZE");
    print_message("  DBSIZE %lld after %d volatile and %d persistent writes\n", n, VOLATILE,
                  PERSISTENT);
    assert_true(n >= PERSISTENT);
    assert_true(n < VOLATILE + PERSISTENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_maxmemory_noeviction_refuses_writes, setup_noeviction,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_maxmemory_allkeys_lru_keeps_accepting,
                                        setup_allkeys_lru, teardown),
        cmocka_unit_test_setup_teardown(test_maxmemory_volatile_ttl_evicts_only_volatile,
                                        setup_volatile_ttl, teardown),
    };
    return harness_finish(cmocka_run_group_tests(tests, group_setup, NULL));
}
