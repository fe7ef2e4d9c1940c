/* test_keys.c: the keyspace commands of one node: DEL UNLINK EXISTS TYPE, the
 * EXPIRE family with NX XX GT LT, TTL PTTL PERSIST EXPIRETIME PEXPIRETIME, expiry
 * actually happening, TOUCH, TIME, RENAME RENAMENX COPY, OBJECT, MEMORY USAGE,
 * SCAN (every key present throughout a scan comes back at least once, with
 * MATCH and COUNT, even while keys are added between calls), KEYS patterns,
 * RANDOMKEY, DBSIZE and FLUSHALL.
 * One node (two shards) serves the file; each case starts from FLUSHALL on a
 * fresh connection. Expiry is awaited as a condition with a deadline. Key sets
 * are tracked by index (names "<prefix><i>"), so a SCAN that returns a key
 * twice is fine but a missing or foreign key fails. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SCAN_MAX_CALLS 100000
#define SCAN_TIMEOUT_MS 30000

static struct harness_server server;

static int group_setup(void **state)
{
    return harness_start(&server, NULL) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    return harness_stop(&server) == 0 ? 0 : -1;
}

static int setup(void **state)
{
    redisContext *c = harness_connect(server.port);
    harness_expect(c, HARNESS_OK, "FLUSHALL");
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    redisFree(*state);
    return 0;
}

static long long int_reply(redisContext *c, const char *cmd, const char *key)
{
    redisReply *r = harness_cmd(c, "%s %s", cmd, key);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* Sets prefix0..prefix(n-1) = their index, pipelined. */
static void fill_keys(redisContext *c, const char *prefix, int n)
{
    for (int i = 0; i < n; i++)
        redisAppendCommand(c, "SET %s%d %d", prefix, i, i);
    for (int i = 0; i < n; i++) {
        redisReply *r = harness_next_reply(c);
        harness_check(r, HARNESS_OK, "pipelined SET");
        freeReplyObject(r);
    }
}

/* Index of key in "<prefix><i>" with i < n, else -1. */
static int key_index(const char *key, size_t len, const char *prefix, int n)
{
    size_t pl = strlen(prefix);
    if (len <= pl || len > pl + 9 || memcmp(key, prefix, pl) != 0)
        return -1;
    int v = 0;
    for (size_t i = pl; i < len; i++) {
        if (key[i] < '0' || key[i] > '9')
            return -1;
        v = v * 10 + (key[i] - '0');
    }
    return v < n ? v : -1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks that an array reply holds exactly these strings in any order. */
static void check_key_set(redisReply *r, const char **want, size_t n, const char *what)
{
    harness_check(r, HARNESS_ARRAY((long long)n), what);
    const char **got = calloc(n + 1, sizeof(*got));
    assert_non_null(got);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(r->element[i]->type, REDIS_REPLY_STRING);
        got[i] = r->element[i]->str;
    }
    qsort(got, n, sizeof(*got), cmp_str);
    qsort(want, n, sizeof(*want), cmp_str);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(got[i], want[i]);
    free(got);
}

struct int_cond {
    redisContext *c;
    const char *cmd;
    long long want;
};

static bool int_cond_holds(void *arg)
{
    struct int_cond *ic = arg;
    redisReply *r = redisCommand(ic->c, ic->cmd);
    bool ok = r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == ic->want;
    freeReplyObject(r);
    return ok;
}

static void test_keys_del_unlink(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "MSET a 1 b 2 c 3 d 4");
    harness_expect(c, HARNESS_INT(2), "DEL a a b missing");
    harness_expect(c, HARNESS_INT(0), "DEL a");
    harness_expect(c, HARNESS_NIL, "GET a");
    harness_expect(c, HARNESS_INT(1), "UNLINK c c");
    harness_expect(c, HARNESS_INT(0), "UNLINK c missing");
    harness_expect(c, HARNESS_INT(1), "DBSIZE");
    harness_expect(c, HARNESS_BULK("4"), "GET d");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'del' command"), "DEL");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'unlink' command"), "UNLINK");
}

static void test_keys_del_many_keys_across_shards(void **state)
{
    redisContext *c = *state;
    enum { N = 400 };
    fill_keys(c, "key:", N);
    const char *argv[N + 2];
    size_t lens[N + 2];
    char names[N][16];
    argv[0] = "DEL";
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "key:%d", i * 2);
        argv[i + 1] = names[i];
    }
    argv[N + 1] = "key:1";
    for (int i = 0; i < N + 2; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = redisCommandArgv(c, N + 2, argv, lens);
    harness_check(r, HARNESS_INT(N / 2 + 1), "DEL of 400 keys");
    freeReplyObject(r);
    harness_expect(c, HARNESS_INT(N / 2 - 1), "DBSIZE");
    harness_expect(c, HARNESS_NIL, "GET key:0");
    harness_expect(c, HARNESS_BULK("3"), "GET key:3");
}

static void test_keys_exists_counts_duplicates(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "SET a 1");
    harness_expect(c, HARNESS_INT(1), "EXISTS a");
    harness_expect(c, HARNESS_INT(0), "EXISTS b");
    harness_expect(c, HARNESS_INT(3), "EXISTS a a b a");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'exists' command"), "EXISTS");
}

static void test_keys_touch_counts_existing(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "MSET a 1 b 2");
    harness_expect(c, HARNESS_INT(3), "TOUCH a b a nokey");
    harness_expect(c, HARNESS_INT(0), "TOUCH nokey");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'touch' command"), "TOUCH");
    harness_expect(c, HARNESS_BULK("1"), "GET a");
}

/* TIME: two bulk strings, seconds and microseconds, this machine's clock. */
static void test_keys_time(void **state)
{
    redisContext *c = *state;
    long long before = (long long)time(NULL);
    redisReply *r = redisCommand(c, "TIME");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    assert_int_equal(r->element[0]->type, REDIS_REPLY_STRING);
    assert_int_equal(r->element[1]->type, REDIS_REPLY_STRING);
    long long sec = atoll(r->element[0]->str), usec = atoll(r->element[1]->str);
    freeReplyObject(r);
    assert_in_range(sec, before, (long long)time(NULL));
    assert_in_range(usec, 0, 999999);
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'time' command"), "TIME 1");
}

static void test_keys_type(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "SET a 1");
    harness_expect(c, HARNESS_STATUS("string"), "TYPE a");
    harness_expect(c, HARNESS_STATUS("none"), "TYPE missing");
}

/* OBJECT and MEMORY USAGE, as Redis 7.0 answers them for strings: the
 * encodings (int for a canonical integer, embstr up to 44 bytes, raw past),
 * REFCOUNT, IDLETIME (OBJECT does not count as a use, GET does), FREQ's
 * refusal without an LFU policy, nil for a missing key, the errors, and a
 * larger value's larger MEMORY USAGE. Keys live on both shards. */
static void test_keys_object_and_memory_usage(void **state)
{
    redisContext *c = *state;
    char big[100];
    memset(big, 'x', sizeof big);
    harness_expect(c, HARNESS_OK, "SET obj:int 12345");
    harness_expect(c, HARNESS_OK, "SET obj:lead 012345");
    harness_expect(c, HARNESS_OK, "SET obj:short hello");
    harness_expect(c, HARNESS_OK, "SET obj:big %b", big, sizeof big);
    harness_expect(c, HARNESS_BULK("int"), "OBJECT ENCODING obj:int");
    harness_expect(c, HARNESS_BULK("embstr"), "OBJECT ENCODING obj:lead");
    harness_expect(c, HARNESS_BULK("embstr"), "object encoding obj:short");
    harness_expect(c, HARNESS_BULK("raw"), "OBJECT ENCODING obj:big");
    harness_expect(c, HARNESS_NIL, "OBJECT ENCODING obj:absent");
    harness_expect(c, HARNESS_NIL, "MEMORY USAGE obj:absent");
    harness_expect(c, HARNESS_INT(1), "OBJECT REFCOUNT obj:short");
    harness_expect(c, HARNESS_ERR("ERR An LFU maxmemory policy is not selected, access "
                                  "frequency not tracked. Please note that when switching "
                                  "between policies at runtime LRU and LFU data will take some "
                                  "time to adjust."),
                   "OBJECT FREQ obj:short");
    long long small_use = harness_integer(c, "MEMORY USAGE obj:short");
    long long big_use = harness_integer(c, "MEMORY USAGE obj:big SAMPLES 0");
    if (small_use <= 5 || big_use < small_use + 90)
        fail_msg("MEMORY USAGE: %lld bytes for 5, %lld for 100", small_use, big_use);
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "MEMORY USAGE obj:short SAMPLES");
    harness_expect(c, HARNESS_ERR("ERR value is not an integer or out of range"),
                   "MEMORY USAGE obj:short SAMPLES x");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'object|encoding' command"),
                   "OBJECT ENCODING");
    harness_expect(c, HARNESS_ERR("ERR unknown subcommand 'nope'. Try OBJECT HELP."),
                   "OBJECT nope obj:short");
    redisReply *r = harness_cmd(c, "OBJECT HELP");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_true(r->elements > 4);
    freeReplyObject(r);
    /* idle time: seconds since the last use, which OBJECT is not */
    usleep(3100 * 1000);
    long long idle = harness_integer(c, "OBJECT IDLETIME obj:short");
    long long again = harness_integer(c, "OBJECT IDLETIME obj:short");
    if (idle < 2 || again < idle)
        fail_msg("OBJECT IDLETIME after 3.1 s: %lld, then %lld", idle, again);
    harness_expect(c, HARNESS_BULK("hello"), "GET obj:short");
    long long used = harness_integer(c, "OBJECT IDLETIME obj:short");
    if (used > 1) /* 0, or 1 where a second's boundary fell between the two */
        fail_msg("OBJECT IDLETIME just after a GET: %lld", used);
}

static void test_keys_ttl_pttl_persist(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_INT(-2), "TTL missing");
    harness_expect(c, HARNESS_INT(-2), "PTTL missing");
    harness_expect(c, HARNESS_OK, "SET k v");
    harness_expect(c, HARNESS_INT(-1), "TTL k");
    harness_expect(c, HARNESS_INT(-1), "PTTL k");
    harness_expect(c, HARNESS_INT(0), "PERSIST k");
    harness_expect(c, HARNESS_INT(0), "PERSIST missing");
    harness_expect(c, HARNESS_INT(1), "EXPIRE k 100");
    assert_in_range(int_reply(c, "TTL", "k"), 90, 100);
    assert_in_range(int_reply(c, "PTTL", "k"), 90000, 100000);
    harness_expect(c, HARNESS_INT(1), "PERSIST k");
    harness_expect(c, HARNESS_INT(-1), "TTL k");
    harness_expect(c, HARNESS_BULK("v"), "GET k");
}

/* EXPIRETIME and PEXPIRETIME: the absolute expiry (Redis 7), -1 without
 * one, -2 without the key. */
static void test_keys_expiretime(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_INT(-2), "EXPIRETIME missing");
    harness_expect(c, HARNESS_INT(-2), "PEXPIRETIME missing");
    harness_expect(c, HARNESS_OK, "SET k v");
    harness_expect(c, HARNESS_INT(-1), "EXPIRETIME k");
    harness_expect(c, HARNESS_INT(-1), "PEXPIRETIME k");
    long long at = (long long)time(NULL) + 1000;
    harness_expect(c, HARNESS_INT(1), "PEXPIREAT k %lld", at * 1000 + 123);
    harness_expect(c, HARNESS_INT(at * 1000 + 123), "PEXPIRETIME k");
    harness_expect(c, HARNESS_INT(at), "EXPIRETIME k");
    harness_expect(c, HARNESS_INT(1), "PEXPIREAT k %lld", at * 1000 + 500);
    harness_expect(c, HARNESS_INT(at + 1), "EXPIRETIME k"); /* rounded, as Redis */
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'expiretime' command"),
                   "EXPIRETIME k x");
}

/* RENAME, RENAMENX, COPY (Redis 7's replies): the value and its expiry
 * go along; keys of two slots get -CROSSSLOT (one shard, as Redis
 * Cluster), so the keys here share a hash tag. */
static void test_keys_rename_copy(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_ERR("ERR no such key"), "RENAME {t}a {t}b");
    harness_expect(c, HARNESS_OK, "SET {t}a 1");
    harness_expect(c, HARNESS_INT(1), "PEXPIRE {t}a 100000");
    harness_expect(c, HARNESS_OK, "RENAME {t}a {t}b");
    harness_expect(c, HARNESS_NIL, "GET {t}a");
    harness_expect(c, HARNESS_BULK("1"), "GET {t}b");
    assert_in_range(int_reply(c, "PTTL", "{t}b"), 90000, 100000); /* the expiry went along */
    harness_expect(c, HARNESS_OK, "RENAME {t}b {t}b");           /* itself: nothing changes */
    harness_expect(c, HARNESS_BULK("1"), "GET {t}b");
    harness_expect(c, HARNESS_OK, "SET {t}c 2");
    harness_expect(c, HARNESS_OK, "RENAME {t}c {t}b"); /* overwrites, expiry and all */
    harness_expect(c, HARNESS_INT(-1), "PTTL {t}b");
    harness_expect(c, HARNESS_BULK("2"), "GET {t}b");
    harness_expect(c, HARNESS_INT(1), "EXISTS {t}b");
    harness_expect(c, HARNESS_INT(0), "EXISTS {t}c");
    /* RENAMENX: only to a free name */
    harness_expect(c, HARNESS_OK, "SET {t}d 3");
    harness_expect(c, HARNESS_INT(0), "RENAMENX {t}d {t}b");
    harness_expect(c, HARNESS_BULK("2"), "GET {t}b");
    harness_expect(c, HARNESS_INT(1), "RENAMENX {t}d {t}e");
    harness_expect(c, HARNESS_BULK("3"), "GET {t}e");
    harness_expect(c, HARNESS_INT(0), "EXISTS {t}d");
    harness_expect(c, HARNESS_INT(0), "RENAMENX {t}e {t}e");
    harness_expect(c, HARNESS_ERR("ERR no such key"), "RENAMENX {t}d {t}f");
    /* COPY: the source stays; REPLACE to overwrite; DB 0 only */
    harness_expect(c, HARNESS_INT(0), "COPY {t}missing {t}f");
    harness_expect(c, HARNESS_INT(0), "COPY {t}e {t}b");
    harness_expect(c, HARNESS_BULK("2"), "GET {t}b");
    harness_expect(c, HARNESS_INT(1), "COPY {t}e {t}b REPLACE");
    harness_expect(c, HARNESS_BULK("3"), "GET {t}b");
    harness_expect(c, HARNESS_BULK("3"), "GET {t}e");
    harness_expect(c, HARNESS_INT(1), "EXPIRE {t}e 500");
    harness_expect(c, HARNESS_INT(1), "COPY {t}e {t}f DB 0");
    assert_in_range(int_reply(c, "TTL", "{t}f"), 490, 500);
    static const char same[] = "ERR source and destination objects are the same",
                      crossslot[] = "CROSSSLOT Keys in request don't hash to the same slot";
    harness_expect(c, HARNESS_ERR(same), "COPY {t}e {t}e");
    harness_expect(c, HARNESS_ERR(same), "COPY {t}missing {t}missing"); /* before the key */
    harness_expect(c, HARNESS_ERR("ERR DB index is out of range"), "COPY {t}e {t}g DB 1");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "COPY {t}e {t}g NOPE");
    harness_expect(c, HARNESS_ERR("ERR value is not an integer or out of range"),
                   "COPY {t}e {t}g DB x");
    harness_expect(c, HARNESS_ERR(crossslot), "RENAME {t}e other"); /* keys of two slots */
    harness_expect(c, HARNESS_ERR(crossslot), "COPY {t}e other");
    harness_expect(c, HARNESS_BULK("3"), "GET {t}e");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'rename' command"),
                   "RENAME {t}e");
}

static void test_keys_expire_family(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_INT(0), "EXPIRE missing 100");
    harness_expect(c, HARNESS_INT(0), "PEXPIRE missing 100");
    harness_expect(c, HARNESS_OK, "MSET a 1 b 2 c 3 d 4");
    harness_expect(c, HARNESS_INT(1), "PEXPIRE a 100000");
    assert_in_range(int_reply(c, "TTL", "a"), 90, 100);
    long long now = (long long)time(NULL);
    harness_expect(c, HARNESS_INT(1), "EXPIREAT b %lld", now + 200);
    assert_in_range(int_reply(c, "TTL", "b"), 190, 201);
    harness_expect(c, HARNESS_INT(1), "PEXPIREAT c %lld", (now + 300) * 1000);
    assert_in_range(int_reply(c, "TTL", "c"), 290, 301);
    harness_expect(c, HARNESS_ERR("ERR value is not an integer or out of range"), "EXPIRE d abc");
    harness_expect(c, HARNESS_ERR("ERR value is not an integer or out of range"), "EXPIREAT d 1.5");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'expire' command"),
                   "EXPIRE d");
    harness_expect(c, HARNESS_ERR("ERR invalid expire time in 'pexpire' command"),
                   "PEXPIRE d 9223372036854775807");
    harness_expect(c, HARNESS_ERR("ERR Unsupported option foo"), "EXPIRE d 10 foo");
    harness_expect(c, HARNESS_INT(-1), "TTL d");
}

static void test_keys_expire_in_past_deletes(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "MSET a 1 b 2 c 3 d 4");
    harness_expect(c, HARNESS_INT(1), "EXPIRE a 0");
    harness_expect(c, HARNESS_INT(1), "EXPIRE b -10");
    harness_expect(c, HARNESS_INT(1), "EXPIREAT c 1");
    harness_expect(c, HARNESS_INT(1), "PEXPIREAT d 1000");
    harness_expect(c, HARNESS_INT(0), "EXISTS a b c d");
    harness_expect(c, HARNESS_NIL, "GET a");
    harness_expect(c, HARNESS_INT(0), "DBSIZE");
}

static void test_keys_expire_nx_xx_gt_lt(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "SET k v");
    /* No TTL counts as an infinite one for GT and LT. */
    harness_expect(c, HARNESS_INT(0), "EXPIRE k 100 XX");
    harness_expect(c, HARNESS_INT(0), "EXPIRE k 100 GT");
    harness_expect(c, HARNESS_INT(-1), "TTL k");
    harness_expect(c, HARNESS_INT(1), "EXPIRE k 100 LT");
    assert_in_range(int_reply(c, "TTL", "k"), 90, 100);
    harness_expect(c, HARNESS_INT(0), "EXPIRE k 300 NX");
    harness_expect(c, HARNESS_INT(0), "EXPIRE k 50 GT");
    harness_expect(c, HARNESS_INT(1), "EXPIRE k 200 GT");
    assert_in_range(int_reply(c, "TTL", "k"), 190, 200);
    harness_expect(c, HARNESS_INT(0), "EXPIRE k 300 LT");
    harness_expect(c, HARNESS_INT(1), "EXPIRE k 150 lt");
    assert_in_range(int_reply(c, "TTL", "k"), 140, 150);
    harness_expect(c, HARNESS_INT(1), "PEXPIRE k 400000 XX");
    assert_in_range(int_reply(c, "TTL", "k"), 390, 400);
    harness_expect(c, HARNESS_INT(1), "PERSIST k");
    harness_expect(c, HARNESS_INT(1), "EXPIRE k 500 NX");
    assert_in_range(int_reply(c, "TTL", "k"), 490, 500);
    harness_expect(c,
                   HARNESS_ERR("ERR NX and XX, GT or LT options at the same time are not "
                               "compatible"),
                   "EXPIRE k 10 NX XX");
    harness_expect(c, HARNESS_ERR("ERR GT and LT options at the same time are not compatible"),
                   "EXPIRE k 10 GT LT");
    assert_in_range(int_reply(c, "TTL", "k"), 490, 500);
}

static void test_keys_expiry_happens(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "SET short v PX 150");
    harness_expect(c, HARNESS_OK, "SET long v EX 1000");
    harness_expect(c, HARNESS_OK, "SET plain v");
    harness_expect(c, HARNESS_INT(0), "PEXPIRE other 1");
    struct int_cond gone = {c, "EXISTS short", 0};
    assert_true(harness_wait_until(int_cond_holds, &gone, 5000, 20));
    harness_expect(c, HARNESS_NIL, "GET short");
    harness_expect(c, HARNESS_INT(-2), "TTL short");
    harness_expect(c, HARNESS_BULK("v"), "GET long");
    harness_expect(c, HARNESS_BULK("v"), "GET plain");
}

static void test_keys_expired_keys_leave_dbsize(void **state)
{
    redisContext *c = *state;
    enum { N = 200 };
    for (int i = 0; i < N; i++)
        redisAppendCommand(c, "SET exp:%d v PX 100", i);
    for (int i = 0; i < N; i++) {
        redisReply *r = harness_next_reply(c);
        harness_check(r, HARNESS_OK, "SET PX");
        freeReplyObject(r);
    }
    harness_expect(c, HARNESS_OK, "SET keep v");
    /* Nobody touches the expired keys: only a background sweep removes them. */
    struct int_cond one_left = {c, "DBSIZE", 1};
    assert_true(harness_wait_until(int_cond_holds, &one_left, 10000, 50));
    harness_expect(c, HARNESS_BULK("v"), "GET keep");
    harness_expect(c, HARNESS_NIL, "GET exp:0");
}

static void test_keys_expired_key_can_be_set_again(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "SET k old PX 100");
    struct int_cond gone = {c, "EXISTS k", 0};
    assert_true(harness_wait_until(int_cond_holds, &gone, 5000, 20));
    harness_expect(c, HARNESS_INT(1), "SETNX k new");
    harness_expect(c, HARNESS_BULK("new"), "GET k");
    harness_expect(c, HARNESS_INT(-1), "TTL k");
}

/* Scans with the given options until the cursor returns to 0, counting how
 * often each "<prefix><i>" key came back. between (may be NULL) runs after
 * every call. Fails on a key outside the expected sets. */
struct scan_run {
    const char *match;  /* NULL for none */
    int count;          /* 0 for no COUNT */
    const char *prefix; /* keys that must come back */
    int n;
    int *seen;          /* n counters */
    const char *ignore; /* prefix of keys that may come back (added during the scan) */
    void (*between)(redisContext *c, int call);
};

static void scan_all(redisContext *c, struct scan_run *s)
{
    char cursor[32] = "0";
    int64_t deadline = harness_now_ms() + SCAN_TIMEOUT_MS;
    for (int call = 0;; call++) {
        assert_true(call < SCAN_MAX_CALLS);
        assert_true(harness_now_ms() < deadline);
        redisReply *r;
        if (s->match != NULL && s->count > 0)
            r = harness_cmd(c, "SCAN %s MATCH %s COUNT %d", cursor, s->match, s->count);
        else if (s->match != NULL)
            r = harness_cmd(c, "SCAN %s MATCH %s", cursor, s->match);
        else if (s->count > 0)
            r = harness_cmd(c, "SCAN %s COUNT %d", cursor, s->count);
        else
            r = harness_cmd(c, "SCAN %s", cursor);
        harness_check(r, HARNESS_ARRAY(2), "SCAN reply");
        assert_int_equal(r->element[0]->type, REDIS_REPLY_STRING);
        assert_true(r->element[0]->len < sizeof(cursor));
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        assert_int_equal(r->element[1]->type, REDIS_REPLY_ARRAY);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const redisReply *k = r->element[1]->element[i];
            assert_int_equal(k->type, REDIS_REPLY_STRING);
            int idx = key_index(k->str, k->len, s->prefix, s->n);
            if (idx >= 0) {
                s->seen[idx]++;
                continue;
            }
            if (s->ignore == NULL || strncmp(k->str, s->ignore, strlen(s->ignore)) != 0) {
                print_error("SCAN returned unexpected key \"%s\"\n", k->str);
                fail();
            }
        }
        freeReplyObject(r);
        if (strcmp(cursor, "0") == 0)
            return;
        if (s->between != NULL)
            s->between(c, call);
    }
}

static void assert_all_seen(const struct scan_run *s)
{
    for (int i = 0; i < s->n; i++) {
        if (s->seen[i] == 0) {
            print_error("SCAN never returned %s%d\n", s->prefix, i);
            fail();
        }
    }
}

static void test_keys_scan_returns_every_key(void **state)
{
    redisContext *c = *state;
    enum { N = 2000 };
    fill_keys(c, "key:", N);
    int seen[N] = {0};
    struct scan_run s = {.count = 50, .prefix = "key:", .n = N, .seen = seen};
    scan_all(c, &s);
    assert_all_seen(&s);
    int seen2[N] = {0};
    struct scan_run d = {.prefix = "key:", .n = N, .seen = seen2};
    scan_all(c, &d);
    assert_all_seen(&d);
}

static void test_keys_scan_match(void **state)
{
    redisContext *c = *state;
    enum { N = 300 };
    fill_keys(c, "user:", N);
    fill_keys(c, "item:", N);
    int seen[N] = {0};
    struct scan_run s = {.match = "user:*", .count = 100, .prefix = "user:", .n = N, .seen = seen};
    scan_all(c, &s);
    assert_all_seen(&s);
    int none[1] = {0};
    struct scan_run z = {.match = "nomatch*", .count = 1000, .prefix = "x", .n = 0, .seen = none};
    scan_all(c, &z);
}

static void add_keys_between(redisContext *c, int call)
{
    if (call >= 200)
        return;
    for (int i = 0; i < 20; i++) {
        redisReply *r = harness_cmd(c, "SET new:%d:%d v", call, i);
        harness_check(r, HARNESS_OK, "SET during SCAN");
        freeReplyObject(r);
    }
}

static void test_keys_scan_while_keys_are_added(void **state)
{
    redisContext *c = *state;
    enum { N = 1000 };
    fill_keys(c, "key:", N);
    int seen[N] = {0};
    struct scan_run s = {.count = 20,
                         .prefix = "key:",
                         .n = N,
                         .seen = seen,
                         .ignore = "new:",
                         .between = add_keys_between};
    scan_all(c, &s);
    assert_all_seen(&s);
}

static void test_keys_scan_empty_and_errors(void **state)
{
    redisContext *c = *state;
    redisReply *r = harness_cmd(c, "SCAN 0");
    harness_check(r, HARNESS_ARRAY(2), "SCAN 0 on an empty node");
    harness_check(r->element[0], HARNESS_BULK("0"), "cursor");
    harness_check(r->element[1], HARNESS_ARRAY(0), "keys");
    freeReplyObject(r);
    harness_expect(c, HARNESS_ERR("ERR invalid cursor"), "SCAN abc");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "SCAN 0 COUNT 0");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "SCAN 0 MATCH");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "SCAN 0 FOO bar");
    harness_expect(c, HARNESS_ERR("ERR value is not an integer or out of range"), "SCAN 0 COUNT x");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'scan' command"), "SCAN");
}

static void test_keys_keys_patterns(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "MSET hello 1 hallo 2 hxllo 3 hllo 4 heeello 5 %s 6 other 7",
                   "h*llo");
    redisReply *r = harness_cmd(c, "KEYS h?llo");
    const char *q[] = {"hello", "hallo", "hxllo", "h*llo"};
    check_key_set(r, q, 4, "KEYS h?llo");
    freeReplyObject(r);
    r = harness_cmd(c, "KEYS h*llo");
    const char *star[] = {"hello", "hallo", "hxllo", "hllo", "heeello", "h*llo"};
    check_key_set(r, star, 6, "KEYS h*llo");
    freeReplyObject(r);
    r = harness_cmd(c, "KEYS h[ae]llo");
    const char *set[] = {"hello", "hallo"};
    check_key_set(r, set, 2, "KEYS h[ae]llo");
    freeReplyObject(r);
    r = harness_cmd(c, "KEYS h[^e]llo");
    const char *neg[] = {"hallo", "hxllo", "h*llo"};
    check_key_set(r, neg, 3, "KEYS h[^e]llo");
    freeReplyObject(r);
    r = harness_cmd(c, "KEYS h[a-b]llo");
    const char *range[] = {"hallo"};
    check_key_set(r, range, 1, "KEYS h[a-b]llo");
    freeReplyObject(r);
    r = harness_cmd(c, "KEYS %s", "h\\*llo");
    const char *esc[] = {"h*llo"};
    check_key_set(r, esc, 1, "KEYS h\\*llo");
    freeReplyObject(r);
    r = harness_cmd(c, "KEYS *");
    const char *all[] = {"hello", "hallo", "hxllo", "hllo", "heeello", "h*llo", "other"};
    check_key_set(r, all, 7, "KEYS *");
    freeReplyObject(r);
    r = harness_cmd(c, "KEYS nothing*");
    harness_check(r, HARNESS_ARRAY(0), "KEYS nothing*");
    freeReplyObject(r);
}

static void test_keys_keys_sees_every_shard(void **state)
{
    redisContext *c = *state;
    enum { N = 500 };
    fill_keys(c, "key:", N);
    redisReply *r = harness_cmd(c, "KEYS key:*");
    harness_check(r, HARNESS_ARRAY(N), "KEYS key:*");
    int seen[N] = {0};
    for (size_t i = 0; i < r->elements; i++) {
        int idx = key_index(r->element[i]->str, r->element[i]->len, "key:", N);
        assert_true(idx >= 0);
        seen[idx]++;
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);
    freeReplyObject(r);
}

static void test_keys_randomkey(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_NIL, "RANDOMKEY");
    harness_expect(c, HARNESS_OK, "SET only v");
    harness_expect(c, HARNESS_BULK("only"), "RANDOMKEY");
    fill_keys(c, "key:", 50);
    for (int i = 0; i < 20; i++) {
        redisReply *r = harness_cmd(c, "RANDOMKEY");
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        assert_true(strcmp(r->str, "only") == 0 || key_index(r->str, r->len, "key:", 50) >= 0);
        freeReplyObject(r);
    }
}

static void test_keys_dbsize_flushall(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_INT(0), "DBSIZE");
    fill_keys(c, "key:", 300);
    harness_expect(c, HARNESS_INT(300), "DBSIZE");
    harness_expect(c, HARNESS_INT(1), "DEL key:7");
    harness_expect(c, HARNESS_INT(299), "DBSIZE");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'dbsize' command"),
                   "DBSIZE x");
    harness_expect(c, HARNESS_OK, "FLUSHALL");
    harness_expect(c, HARNESS_INT(0), "DBSIZE");
    harness_expect(c, HARNESS_NIL, "GET key:1");
    fill_keys(c, "key:", 10);
    harness_expect(c, HARNESS_OK, "FLUSHALL SYNC");
    harness_expect(c, HARNESS_INT(0), "DBSIZE");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "FLUSHALL foo");
    harness_expect(c, HARNESS_OK, "SET after v");
    harness_expect(c, HARNESS_BULK("v"), "GET after");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keys_del_unlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_del_many_keys_across_shards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_exists_counts_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_touch_counts_existing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_object_and_memory_usage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_ttl_pttl_persist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_expiretime, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_rename_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_expire_family, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_expire_in_past_deletes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_expire_nx_xx_gt_lt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_expiry_happens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_expired_keys_leave_dbsize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_expired_key_can_be_set_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_scan_returns_every_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_scan_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_scan_while_keys_are_added, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_scan_empty_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_keys_patterns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_keys_sees_every_shard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_randomkey, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_dbsize_flushall, setup, teardown),
    };
    return harness_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
