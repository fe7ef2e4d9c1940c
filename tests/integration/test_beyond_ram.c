/* test_beyond_ram.c: values beyond RAM (storage = log with maxmemory).
 * A dataset of more than twice maxmemory stays fully readable and writable:
 * cold values leave memory (INFO persistence cold_keys) and are read back
 * from disk on access, memory settles under maxmemory, every value reads
 * back right (through RESP and memcached), requests on cold keys keep their
 * order in a pipeline, compaction moves cold values without losing one, and
 * a restart (also with another shard count) brings every key back.
 * ringkv-only. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NKEYS 6000
#define VALUE_LEN 1500 /* 6000 x 1500 = 9 MB against 4 MB of maxmemory */
#define MAXMEMORY (4ll << 20)

static char data_dir[64];

static int setup(void **state)
{
    return harness_temp_dir(data_dir, sizeof data_dir, "ringkv-tier");
}

static int teardown(void **state)
{
    harness_crash_all(); /* a failed assertion left its node running there */
    return harness_remove_dir(data_dir);
}

static void start_with(struct harness_server *s, int threads, const char *maxmemory)
{
    const char *args[] = {"--storage", "log", "--dir", data_dir, "--maxmemory", maxmemory,
                          "--segment-size", "1mb", "--compaction-threshold", "50", NULL};
    struct harness_opts o = {.threads = threads, .memcache = true, .args = args};
    assert_int_equal(harness_start(s, &o), 0);
}

static void start(struct harness_server *s, int threads) { start_with(s, threads, "4mb"); }

/* The value of key i in generation gen: incompressible bytes, so that the
 * disk holds what memory would. */
static void value_of(int i, int gen, char *out)
{
    uint64_t x = (uint64_t)i * 0x9e3779b97f4a7c15ULL + (uint64_t)gen * 0xbf58476d1ce4e5b9ULL + 1;
    for (int k = 0; k < VALUE_LEN; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out[k] = (char)(x >> 24);
    }
}

/* Writes keys [from, to) in generation gen, pipelined. */
static void write_keys(redisContext *c, int from, int to, int gen)
{
    char v[VALUE_LEN];
    for (int i = from; i < to; i++) {
        value_of(i, gen, v);
        redisAppendCommand(c, "SET key:%d %b", i, v, (size_t)VALUE_LEN);
    }
    for (int i = from; i < to; i++) {
        redisReply *r = harness_next_reply(c);
        if (r->type != REDIS_REPLY_STATUS) /* never -OOM: values go to disk */
            fail_msg("SET key:%d: %s", i, r->type == REDIS_REPLY_ERROR ? r->str : "not +OK");
        freeReplyObject(r);
    }
}

/* Reads every key back, pipelined, and checks it holds generation gen(i). */
static void check_keys(redisContext *c, int (*gen)(int i))
{
    char v[VALUE_LEN];
    for (int i = 0; i < NKEYS; i++)
        redisAppendCommand(c, "GET key:%d", i);
    for (int i = 0; i < NKEYS; i++) {
        redisReply *r = harness_next_reply(c);
        value_of(i, gen(i), v);
        if (r->type != REDIS_REPLY_STRING || r->len != VALUE_LEN || memcmp(r->str, v, VALUE_LEN))
            fail_msg("key:%d: wrong reply (type %d, %zu bytes: %.60s)", i, r->type, r->len,
                     r->type == REDIS_REPLY_ERROR ? r->str : "");
        freeReplyObject(r);
    }
}

static int gen_zero(int i) { return 0 * i; }
static int gen_later(int i) { return i % 3 == 0 ? 2 : 1; }

/* Reads the next pipelined reply and checks it. */
#define next_is(c, want, what)                                                                     \
    do {                                                                                           \
        redisReply *reply_ = harness_next_reply(c);                                                \
        harness_check(reply_, want, what);                                                         \
        freeReplyObject(reply_);                                                                   \
    } while (0)

static redisContext *wait_ctx;

static bool memory_settled(void *arg)
{
    (void)arg;
    return harness_info_number(wait_ctx, "memory", "used_memory") <= MAXMEMORY + MAXMEMORY / 10;
}

static bool compacted(void *arg)
{
    (void)arg;
    return harness_info_number(wait_ctx, "persistence", "compactions") > 0;
}

/* A node with every key:i of generation 0 written and memory settled
 * under maxmemory (most values on disk only). */
static redisContext *start_filled(struct harness_server *s, int threads)
{
    start(s, threads);
    redisContext *c = harness_connect(s->port);
    write_keys(c, 0, NKEYS, 0);
    wait_ctx = c;
    assert_true(harness_wait_until(memory_settled, NULL, HARNESS_TIMEOUT_MS, 20));
    return c;
}

static void test_beyond_ram_twice_maxmemory_stays_readable(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    start(&s, 2);
    redisContext *c = harness_connect(s.port);
    write_keys(c, 0, NKEYS, 0);
    assert_int_equal(harness_integer(c, "DBSIZE"), NKEYS);
    wait_ctx = c;
    assert_true(harness_wait_until(memory_settled, NULL, HARNESS_TIMEOUT_MS, 20));
    long long cold = harness_info_number(c, "persistence", "cold_keys");
    assert_true(cold > NKEYS / 3); /* most of the data is on disk only */
    assert_true(harness_info_number(c, "persistence", "cold_value_bytes") >= cold * VALUE_LEN);

    check_keys(c, gen_zero);
    assert_true(harness_info_number(c, "persistence", "values_loaded") > 0);
    assert_true(harness_info_number(c, "memory", "used_memory") <= MAXMEMORY + MAXMEMORY / 10);

    /* Overwrite everything twice over (a third of the keys twice): the old
     * records die, compaction rewrites segments holding cold values. */
    write_keys(c, 0, NKEYS, 1);
    for (int i = 0; i < NKEYS; i += 3)
        write_keys(c, i, i + 1, 2);
    assert_true(harness_wait_until(compacted, NULL, 3 * HARNESS_TIMEOUT_MS, 50));
    check_keys(c, gen_later);
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);

    /* A restart loads the index and what fits; the rest stays on disk. */
    start(&s, 2);
    c = harness_connect(s.port);
    assert_int_equal(harness_info_number(c, "persistence", "recovered_keys"), NKEYS);
    assert_true(harness_info_number(c, "persistence", "cold_keys") > NKEYS / 3);
    assert_true(harness_info_number(c, "memory", "used_memory") <= MAXMEMORY + MAXMEMORY / 10);
    check_keys(c, gen_later);
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);

    /* And with another shard count. */
    start(&s, 3);
    c = harness_connect(s.port);
    assert_int_equal(harness_integer(c, "DBSIZE"), NKEYS);
    wait_ctx = c;
    assert_true(harness_wait_until(memory_settled, NULL, HARNESS_TIMEOUT_MS, 20));
    check_keys(c, gen_later);
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

/* Requests on a cold key run in the order sent, whatever they need. */
static void test_beyond_ram_cold_keys_keep_pipeline_order(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    redisContext *c = start_filled(&s, 2);
    char v0[VALUE_LEN], v1[VALUE_LEN], tail[VALUE_LEN + 2];
    int checked = 0;
    for (int i = 0; i < NKEYS && checked < 200; i += 5) {
        value_of(i, 0, v0);
        value_of(i, 1, v1);
        redisAppendCommand(c, "GET key:%d", i);
        redisAppendCommand(c, "STRLEN key:%d", i);
        redisAppendCommand(c, "GETRANGE key:%d 0 9", i);
        redisAppendCommand(c, "SET key:%d %b", i, v1, (size_t)VALUE_LEN);
        redisAppendCommand(c, "GET key:%d", i);
        redisAppendCommand(c, "APPEND key:%d zz", i);
        redisAppendCommand(c, "GETDEL key:%d", i);
        redisAppendCommand(c, "EXISTS key:%d", i);
        next_is(c, HARNESS_BULK_LEN(v0, VALUE_LEN), "GET");
        next_is(c, HARNESS_INT(VALUE_LEN), "STRLEN");
        next_is(c, HARNESS_BULK_LEN(v0, 10), "GETRANGE");
        next_is(c, HARNESS_OK, "SET");
        next_is(c, HARNESS_BULK_LEN(v1, VALUE_LEN), "GET after SET");
        next_is(c, HARNESS_INT(VALUE_LEN + 2), "APPEND");
        memcpy(tail, v1, VALUE_LEN);
        memcpy(tail + VALUE_LEN, "zz", 2);
        next_is(c, HARNESS_BULK_LEN(tail, VALUE_LEN + 2), "GETDEL");
        next_is(c, HARNESS_INT(0), "EXISTS after GETDEL");
        checked++;
    }
    /* MGET across shards, and a shard-wide command behind cold reads:
     * FLUSHALL neither overtakes the GET before it nor is overtaken. */
    value_of(1, 0, v0);
    value_of(2, 0, v1);
    redisAppendCommand(c, "MGET key:1 key:2 nosuch");
    redisAppendCommand(c, "GET key:3");
    redisAppendCommand(c, "FLUSHALL");
    redisAppendCommand(c, "GET key:4");
    redisAppendCommand(c, "DBSIZE");
    redisReply *r = harness_next_reply(c);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 3);
    harness_check(r->element[0], HARNESS_BULK_LEN(v0, VALUE_LEN), "MGET");
    harness_check(r->element[1], HARNESS_BULK_LEN(v1, VALUE_LEN), "MGET");
    harness_check(r->element[2], HARNESS_NIL, "MGET");
    freeReplyObject(r);
    value_of(3, 0, v0);
    next_is(c, HARNESS_BULK_LEN(v0, VALUE_LEN), "GET before FLUSHALL");
    next_is(c, HARNESS_OK, "FLUSHALL");
    next_is(c, HARNESS_NIL, "GET after FLUSHALL");
    next_is(c, HARNESS_INT(0), "DBSIZE after FLUSHALL");
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

/* MSETNX on one shard does not overtake a read in flight for one of its
 * keys (regression: it ran at once, judged by its first key only). */
static void test_beyond_ram_msetnx_waits_for_cold_reads(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    redisContext *c = start_filled(&s, 1);
    char v[VALUE_LEN];
    int tried = 0;
    for (int i = 0; i < NKEYS && tried < 50; i += 7, tried++) {
        value_of(i, 0, v);
        redisAppendCommand(c, "GET key:%d", i);
        redisAppendCommand(c, "DEL key:%d", i);
        redisAppendCommand(c, "MSETNX fresh:%d x key:%d y", i, i);
        redisAppendCommand(c, "GET fresh:%d", i);
        redisAppendCommand(c, "GET key:%d", i);
        next_is(c, HARNESS_BULK_LEN(v, VALUE_LEN), "GET");
        next_is(c, HARNESS_INT(1), "DEL");
        next_is(c, HARNESS_INT(1), "MSETNX after the DEL");
        next_is(c, HARNESS_BULK("x"), "GET fresh");
        next_is(c, HARNESS_BULK("y"), "GET key");
    }
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

struct bitop_try {
    redisContext *c;
    int i;
    int tryagain; /* -TRYAGAIN replies met */
};

/* BITOP OR {key:i}d key:i answered its length (not -TRYAGAIN). */
static bool bitop_answered(void *arg)
{
    struct bitop_try *t = arg;
    redisReply *r = redisCommand(t->c, "BITOP OR {key:%d}d key:%d", t->i, t->i);
    assert_non_null(r);
    bool again = r->type == REDIS_REPLY_ERROR && strncmp(r->str, "TRYAGAIN", 8) == 0;
    if (!again && (r->type != REDIS_REPLY_INTEGER || r->integer != VALUE_LEN))
        fail_msg("BITOP of key:%d: %s", t->i, r->type == REDIS_REPLY_ERROR ? r->str : "?");
    t->tryagain += again;
    freeReplyObject(r);
    return !again;
}

/* MULTI, GET {key:i}d (no such key), GET key:i, EXEC answered both
 * (not -TRYAGAIN for key:i's value on disk only). */
static bool exec_answered(void *arg)
{
    struct bitop_try *t = arg;
    redisAppendCommand(t->c, "MULTI");
    redisAppendCommand(t->c, "GET {key:%d}d", t->i);
    redisAppendCommand(t->c, "GET key:%d", t->i);
    redisAppendCommand(t->c, "EXEC");
    for (int k = 0; k < 3; k++)
        freeReplyObject(harness_next_reply(t->c));
    redisReply *r = harness_next_reply(t->c);
    bool again = r->type == REDIS_REPLY_ERROR && strncmp(r->str, "TRYAGAIN", 8) == 0;
    if (!again && (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
                   r->element[1]->type != REDIS_REPLY_STRING || r->element[1]->len != VALUE_LEN))
        fail_msg("EXEC reading key:%d: %s", t->i, r->type == REDIS_REPLY_ERROR ? r->str : "?");
    t->tryagain += again;
    freeReplyObject(r);
    return !again;
}

/* BITOP's source is not the key read back before a command runs (its
 * destination is, argv[1]), nor is a transaction's second reading key:
 * one on disk only gets -TRYAGAIN, and is read back then, so that a retry
 * is answered (it never was before). */
static void test_beyond_ram_retry_reads_what_was_on_disk(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    redisContext *c = start_filled(&s, 1);
    char v[VALUE_LEN];
    int tryagain = 0;
    for (int i = 0; i < NKEYS; i += 150) {
        struct bitop_try t = {c, i, 0};
        assert_true(harness_wait_until(bitop_answered, &t, HARNESS_TIMEOUT_MS, 10));
        tryagain += t.tryagain;
        value_of(i, 0, v);
        redisReply *r = redisCommand(c, "GET {key:%d}d", i);
        harness_check(r, HARNESS_BULK_LEN(v, VALUE_LEN), "the destination");
        freeReplyObject(r);
    }
    assert_true(tryagain > 0); /* some sources were on disk only */
    tryagain = 0;
    for (int i = 75; i < NKEYS; i += 150) { /* keys the BITOPs did not read */
        struct bitop_try t = {c, i, 0};
        assert_true(harness_wait_until(exec_answered, &t, HARNESS_TIMEOUT_MS, 10));
        tryagain += t.tryagain;
    }
    assert_true(tryagain > 0);
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

static bool oom_reply(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR && strncmp(r->str, "OOM", 3) == 0;
}

/* When the index itself fills maxmemory (values too small to leave memory),
 * writes meet noeviction's -OOM, however many come in one batch; and a
 * restart loads every acknowledged key, never dropping one for maxmemory
 * (regression: a batch's unwritten records let any number of writes in, and
 * recovery then refused the keys that did not fit). */
static void test_beyond_ram_index_over_maxmemory_loses_nothing(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    start_with(&s, 1, "1mb");
    redisContext *c = harness_connect(s.port);
    long long stored = 0;
    bool full = false;
    for (int round = 0; round < 100 && !full; round++) {
        for (int i = 0; i < 1000; i++)
            redisAppendCommand(c, "SET small:%d:%d 0123456789", round, i);
        for (int i = 0; i < 1000; i++) {
            redisReply *r = harness_next_reply(c);
            if (oom_reply(r))
                full = true;
            else if (r->type == REDIS_REPLY_STATUS)
                stored++;
            else
                fail_msg("SET: unexpected reply type %d", r->type);
            freeReplyObject(r);
        }
    }
    assert_true(full);
    /* One burst after the store is full: almost all of it is refused. */
    for (int i = 0; i < 20000; i++)
        redisAppendCommand(c, "SET burst:%d 0123456789", i);
    long long burst_ok = 0;
    for (int i = 0; i < 20000; i++) {
        redisReply *r = harness_next_reply(c);
        burst_ok += r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
    }
    stored += burst_ok;
    assert_true(burst_ok < 2000);
    assert_true(harness_info_number(c, "memory", "used_memory") < (1ll << 20) * 3 / 2);
    assert_int_equal(harness_integer(c, "DBSIZE"), stored);
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
    start_with(&s, 1, "1mb");
    c = harness_connect(s.port);
    assert_int_equal(harness_integer(c, "DBSIZE"), stored);
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

/* memcached clients read cold values too. */
static void test_beyond_ram_memcached_reads_cold_values(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    redisContext *c = start_filled(&s, 2);
    assert_true(harness_info_number(c, "persistence", "cold_keys") > 0);
    struct harness_raw *m = harness_raw_open(s.mc_port);
    char v[VALUE_LEN], want[VALUE_LEN + 64];
    for (int i = 0; i < 300; i++) {
        char req[64];
        snprintf(req, sizeof req, "get key:%d key:%d\r\n", i, i + 3000);
        harness_raw_send_str(m, req);
        for (int k = 0; k < 2; k++) {
            int key = k ? i + 3000 : i;
            value_of(key, 0, v);
            int n = snprintf(want, sizeof want, "VALUE key:%d 0 %d\r\n", key, VALUE_LEN);
            memcpy(want + n, v, VALUE_LEN);
            memcpy(want + n + VALUE_LEN, "\r\n", 2);
            harness_raw_expect_at(__FILE__, __LINE__, m, want, (size_t)n + VALUE_LEN + 2);
        }
        harness_raw_expect(m, "END\r\n");
    }
    harness_raw_close(m);
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

/* Clients that leave while their requests wait for cold values (one key,
 * MGET across shards, memcached get) or behind a shard-wide DBSIZE: their
 * requests are cancelled, and what the reads and other shards answer later
 * is dropped. The node serves on, loses nothing and exits clean (under the
 * sanitizer build, its leak check at exit would fail the stop). */
static void test_beyond_ram_client_gone_mid_flight(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    redisContext *c = start_filled(&s, 4);
    char line[160];
    for (int round = 0; round < 30; round++) {
        struct harness_raw *r = harness_raw_open(s.port);
        struct harness_raw *m = harness_raw_open(s.mc_port);
        for (int i = round; i + 3 < NKEYS; i += 61) {
            int n = snprintf(line, sizeof line,
                             "GET key:%d\r\nMGET key:%d key:%d key:%d\r\nDBSIZE\r\n", i, i + 1,
                             i + 2, i + 3);
            harness_raw_send(r, line, (size_t)n);
            n = snprintf(line, sizeof line, "get key:%d key:%d\r\n", i, i + 2);
            harness_raw_send(m, line, (size_t)n);
        }
        harness_raw_close(r);
        harness_raw_close(m);
    }
    assert_int_equal(harness_integer(c, "DBSIZE"), NKEYS);
    check_keys(c, gen_zero);
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_beyond_ram_twice_maxmemory_stays_readable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_beyond_ram_cold_keys_keep_pipeline_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_beyond_ram_memcached_reads_cold_values, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_beyond_ram_msetnx_waits_for_cold_reads, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_beyond_ram_index_over_maxmemory_loses_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_beyond_ram_client_gone_mid_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_beyond_ram_retry_reads_what_was_on_disk, setup,
                                        teardown),
    };
    return harness_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
