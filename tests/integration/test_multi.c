/* test_multi.c: MULTI / EXEC / DISCARD / WATCH / UNWATCH against a real node,
 * as Redis 7 answers them, plus ringkv's one-slot rule (Redis Cluster's):
 * every key of a transaction, watched or queued, in one hash slot.
 * The node runs with --threads 4 so that most transactions run on a shard
 * other than their connection's (one message there, run back to back).
 * Under RINGKV_TEST_TARGET=redis the same cases run against redis-server,
 * except the ringkv-only ones (CROSSSLOT, commands ringkv refuses inside a
 * transaction, the size limits). */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

static struct harness_server server;

static int group_setup(void **state)
{
    (void)state;
    struct harness_opts o = {.threads = 4};
    return harness_start(&server, &o) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
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

#define QUEUED HARNESS_STATUS("QUEUED")
#define EXECABORT HARNESS_ERR("EXECABORT Transaction discarded because of previous errors.")
#define CROSSSLOT HARNESS_ERR("CROSSSLOT Keys in request don't hash to the same slot")

/* Runs EXEC and checks it is an array of exactly these replies. The reply
 * is the caller's (for nested checks): freeReplyObject. */
static redisReply *expect_exec_at(const char *file, int line, redisContext *c,
                                  const struct harness_want *want, size_t n)
{
    redisReply *r = harness_cmd_at(file, line, c, "EXEC");
    harness_check_at(file, line, r, HARNESS_ARRAY((long long)n), "EXEC");
    for (size_t i = 0; i < n; i++) {
        char what[48];
        snprintf(what, sizeof what, "EXEC element %zu", i);
        harness_check_at(file, line, r->element[i], want[i], what);
    }
    return r;
}
#define expect_exec(c, ...)                                                                        \
    expect_exec_at(__FILE__, __LINE__, (c), (const struct harness_want[]){__VA_ARGS__},            \
                   sizeof((const struct harness_want[]){__VA_ARGS__}) /                            \
                       sizeof(struct harness_want))

static void test_multi_queue_and_exec(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "MULTI");
    harness_expect(c, QUEUED, "SET {t}a 1");
    harness_expect(c, QUEUED, "INCR {t}a");
    harness_expect(c, QUEUED, "INCRBY {t}a 40");
    harness_expect(c, QUEUED, "GET {t}a");
    harness_expect(c, QUEUED, "MGET {t}a {t}b");
    harness_expect(c, QUEUED, "MSET {t}b x {t}c y");
    harness_expect(c, QUEUED, "EXISTS {t}a {t}b {t}nope");
    harness_expect(c, QUEUED, "DEL {t}c {t}nope");
    harness_expect(c, QUEUED, "PING");
    harness_expect(c, QUEUED, "ECHO hi");
    redisReply *r = expect_exec(c, HARNESS_OK, HARNESS_INT(2), HARNESS_INT(42), HARNESS_BULK("42"),
                                HARNESS_ARRAY(2), HARNESS_OK, HARNESS_INT(2), HARNESS_INT(1),
                                HARNESS_STATUS("PONG"), HARNESS_BULK("hi"));
    const char *mget[] = {"42", NULL};
    harness_check_bulks(r->element[4], mget, 2, "MGET inside EXEC");
    freeReplyObject(r);
    harness_expect(c, HARNESS_BULK("x"), "GET {t}b");
    harness_expect(c, HARNESS_NIL, "GET {t}c");
    /* an empty transaction is an empty array */
    harness_expect(c, HARNESS_OK, "MULTI");
    freeReplyObject(expect_exec_at(__FILE__, __LINE__, c, NULL, 0));
}

/* A command's own failure at EXEC is its element; the others still apply. */
static void test_multi_runtime_error_is_an_element(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "SET {r}word abc");
    harness_expect(c, HARNESS_OK, "MULTI");
    harness_expect(c, QUEUED, "INCR {r}word");
    harness_expect(c, QUEUED, "SET {r}n 5");
    harness_expect(c, QUEUED, "INCR {r}n");
    freeReplyObject(expect_exec(c, HARNESS_ERR("ERR value is not an integer or out of range"),
                                HARNESS_OK, HARNESS_INT(6)));
    harness_expect(c, HARNESS_BULK("6"), "GET {r}n");
}

static void test_multi_discard(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "MULTI");
    harness_expect(c, QUEUED, "SET {d}k 1");
    harness_expect(c, HARNESS_OK, "DISCARD");
    harness_expect(c, HARNESS_NIL, "GET {d}k");
    harness_expect(c, HARNESS_ERR("ERR DISCARD without MULTI"), "DISCARD");
    harness_expect(c, HARNESS_ERR("ERR EXEC without MULTI"), "EXEC");
}

static void test_multi_execabort_on_bad_command(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "MULTI");
    harness_expect(c, QUEUED, "SET {e}k 1");
    redisReply *r = harness_cmd(c, "NOSUCHCOMMAND {e}k");
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "unknown command"));
    freeReplyObject(r);
    harness_expect(c, QUEUED, "SET {e}j 2");
    harness_expect(c, EXECABORT, "EXEC");
    harness_expect(c, HARNESS_NIL, "GET {e}k");
    harness_expect(c, HARNESS_NIL, "GET {e}j");
    /* a wrong number of arguments aborts it too, and EXEC left MULTI */
    harness_expect(c, HARNESS_OK, "MULTI");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'get' command"), "GET");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'get' command"),
                   "GET {e}a {e}b");
    harness_expect(c, EXECABORT, "EXEC");
    harness_expect(c, HARNESS_ERR("ERR EXEC without MULTI"), "EXEC");
}

static void test_multi_nested_and_watch_inside(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_ERR("ERR EXEC without MULTI"), "EXEC");
    harness_expect(c, HARNESS_OK, "MULTI");
    harness_expect(c, HARNESS_ERR("ERR MULTI calls can not be nested"), "MULTI");
    harness_expect(c, HARNESS_ERR("ERR WATCH inside MULTI is not allowed"), "WATCH {n}k");
    harness_expect(c, QUEUED, "SET {n}k v");
    /* neither error aborts the transaction (Redis 7) */
    freeReplyObject(expect_exec(c, HARNESS_OK));
    harness_expect(c, HARNESS_BULK("v"), "GET {n}k");
}

/* Another connection's write between WATCH and EXEC: EXEC answers a null
 * array and runs nothing; the watches are gone afterwards. */
static void test_multi_watch_abort_by_other_write(void **state)
{
    redisContext *c = *state;
    redisContext *other = harness_connect(server.port);
    harness_expect(c, HARNESS_OK, "SET {w}k 1");
    harness_expect(c, HARNESS_OK, "WATCH {w}k {w}other");
    harness_expect(other, HARNESS_OK, "SET {w}k 2");
    harness_expect(c, HARNESS_OK, "MULTI");
    harness_expect(c, QUEUED, "SET {w}k mine");
    harness_expect(c, QUEUED, "SET {w}side effect");
    harness_expect(c, HARNESS_NIL, "EXEC");
    harness_expect(c, HARNESS_BULK("2"), "GET {w}k");
    harness_expect(c, HARNESS_NIL, "GET {w}side");
    /* the failed EXEC unwatched: the next transaction runs */
    harness_expect(other, HARNESS_OK, "SET {w}k 3");
    harness_expect(c, HARNESS_OK, "MULTI");
    harness_expect(c, QUEUED, "INCR {w}k");
    freeReplyObject(expect_exec(c, HARNESS_INT(4)));
    redisFree(other);
}

/* Deleted, created, or given a TTL by another client: each counts as changed. */
static void test_multi_watch_sees_delete_create_and_expire(void **state)
{
    redisContext *c = *state;
    redisContext *other = harness_connect(server.port);
    const char *change[][2] = {
        {"SET {x}k v", "DEL {x}k"},             /* deleted */
        {"DEL {x}k", "SET {x}k new"},           /* absent at WATCH, present at EXEC */
        {"SET {x}k v", "EXPIRE {x}k 1000"},     /* a TTL, same value and cas-less change */
        {"SET {x}k v EX 1000", "PERSIST {x}k"}, /* its TTL removed */
    };
    for (size_t i = 0; i < sizeof change / sizeof change[0]; i++) {
        freeReplyObject(harness_cmd(c, change[i][0]));
        harness_expect(c, HARNESS_OK, "WATCH {x}k");
        freeReplyObject(harness_cmd(other, change[i][1]));
        harness_expect(c, HARNESS_OK, "MULTI");
        harness_expect(c, QUEUED, "GET {x}k");
        redisReply *r = harness_cmd(c, "EXEC");
        if (r->type != REDIS_REPLY_NIL)
            fail_msg("after '%s' then another client's '%s', EXEC should be null, got type %d",
                     change[i][0], change[i][1], r->type);
        freeReplyObject(r);
    }
    redisFree(other);
}

struct gone {
    redisContext *c;
    const char *key;
};

static bool key_gone(void *arg)
{
    struct gone *g = arg;
    redisReply *r = redisCommand(g->c, "PTTL %s", g->key);
    bool gone = r && r->type == REDIS_REPLY_INTEGER && r->integer == -2;
    freeReplyObject(r);
    return gone;
}

static void test_multi_watch_sees_expiry(void **state)
{
    redisContext *c = *state;
    redisContext *other = harness_connect(server.port);
    harness_expect(c, HARNESS_OK, "SET {x}ttl v PX 150");
    harness_expect(c, HARNESS_OK, "WATCH {x}ttl");
    struct gone g = {other, "{x}ttl"};
    assert_true(harness_wait_until(key_gone, &g, HARNESS_TIMEOUT_MS, 10));
    harness_expect(c, HARNESS_OK, "MULTI");
    harness_expect(c, QUEUED, "SET {x}ttl again");
    harness_expect(c, HARNESS_NIL, "EXEC");
    harness_expect(c, HARNESS_NIL, "GET {x}ttl");
    redisFree(other);
}

/* Writes to other keys, reads of the watched one, and writes after UNWATCH
 * do not abort. */
static void test_multi_watch_unchanged_succeeds(void **state)
{
    redisContext *c = *state;
    redisContext *other = harness_connect(server.port);
    harness_expect(c, HARNESS_OK, "SET {u}k 10");
    harness_expect(c, HARNESS_OK, "WATCH {u}k {u}absent");
    harness_expect(other, HARNESS_OK, "SET {u}neighbour 1");
    harness_expect(other, HARNESS_BULK("10"), "GET {u}k");
    harness_expect(c, HARNESS_BULK("10"), "GET {u}k");
    harness_expect(c, HARNESS_OK, "MULTI");
    harness_expect(c, QUEUED, "INCRBY {u}k 5");
    freeReplyObject(expect_exec(c, HARNESS_INT(15)));

    harness_expect(c, HARNESS_OK, "WATCH {u}k");
    harness_expect(c, HARNESS_OK, "UNWATCH");
    harness_expect(other, HARNESS_OK, "SET {u}k 1");
    harness_expect(c, HARNESS_OK, "MULTI");
    harness_expect(c, QUEUED, "INCR {u}k");
    harness_expect(c, QUEUED, "UNWATCH");
    freeReplyObject(expect_exec(c, HARNESS_INT(2), HARNESS_OK));
    redisFree(other);
}

/* The check-and-set loop WATCH exists for: two clients taking turns to
 * increment one counter by GET, then MULTI / SET / EXEC; on every third
 * round the other client writes in between, and that EXEC must fail. Every
 * increment reported done is in the final count, once. */
static void test_multi_watch_cas_loop(void **state)
{
    redisContext *c = *state;
    redisContext *other = harness_connect(server.port);
    harness_expect(c, HARNESS_OK, "SET {cas}n 0");
    long long done = 0;
    for (int i = 0; i < 120; i++) {
        redisContext *me = i % 2 ? c : other, *them = i % 2 ? other : c;
        harness_expect(me, HARNESS_OK, "WATCH {cas}n");
        redisReply *g = harness_cmd(me, "GET {cas}n");
        assert_int_equal(g->type, REDIS_REPLY_STRING);
        long long n = atoll(g->str);
        freeReplyObject(g);
        bool raced = i % 3 == 0;
        if (raced) {
            harness_expect(them, HARNESS_INT(n + 1), "INCR {cas}n");
            done++;
        }
        harness_expect(me, HARNESS_OK, "MULTI");
        harness_expect(me, QUEUED, "SET {cas}n %lld", n + 1);
        redisReply *r = harness_cmd(me, "EXEC");
        assert_int_equal(r->type, raced ? REDIS_REPLY_NIL : REDIS_REPLY_ARRAY);
        done += r->type == REDIS_REPLY_ARRAY;
        freeReplyObject(r);
    }
    char want[24];
    snprintf(want, sizeof want, "%lld", done);
    harness_expect(c, HARNESS_BULK(want), "GET {cas}n");
    redisFree(other);
}

static void test_multi_crossslot(void **state)
{
    harness_skip_unless_ringkv();
    redisContext *c = *state;
    /* two slots in one transaction: refused when queued, then EXECABORT */
    harness_expect(c, HARNESS_OK, "MULTI");
    harness_expect(c, QUEUED, "SET a 1");
    harness_expect(c, CROSSSLOT, "SET b 2");
    harness_expect(c, EXECABORT, "EXEC");
    harness_expect(c, HARNESS_NIL, "GET a");
    /* one command spanning two slots */
    harness_expect(c, HARNESS_OK, "MULTI");
    harness_expect(c, CROSSSLOT, "MSET a 1 b 2");
    harness_expect(c, EXECABORT, "EXEC");
    /* watched keys fix the slot too */
    harness_expect(c, CROSSSLOT, "WATCH a b");
    harness_expect(c, HARNESS_OK, "WATCH a");
    harness_expect(c, HARNESS_OK, "MULTI");
    harness_expect(c, CROSSSLOT, "SET b 1");
    harness_expect(c, EXECABORT, "EXEC");
    harness_expect(c, HARNESS_OK, "WATCH a");
    harness_expect(c, HARNESS_OK, "WATCH b");
    harness_expect(c, HARNESS_OK, "MULTI");
    harness_expect(c, QUEUED, "PING");
    harness_expect(c, CROSSSLOT, "EXEC");
    /* EXEC ended it all: a new transaction starts clean */
    harness_expect(c, HARNESS_OK, "MULTI");
    harness_expect(c, QUEUED, "SET b 1");
    freeReplyObject(expect_exec(c, HARNESS_OK));
    /* UNWATCH forgets the slot the watches fixed */
    harness_expect(c, HARNESS_OK, "WATCH a");
    harness_expect(c, HARNESS_OK, "UNWATCH");
    harness_expect(c, HARNESS_OK, "MULTI");
    harness_expect(c, QUEUED, "GET b");
    freeReplyObject(expect_exec(c, HARNESS_BULK("1")));
}

/* Keys sharing a {hash tag} share a slot: any number of them, on whichever
 * shard owns the tag, in one transaction. */
static void test_multi_hash_tags_one_slot(void **state)
{
    redisContext *c = *state;
    for (int tag = 0; tag < 16; tag++) {
        harness_expect(c, HARNESS_OK, "WATCH {user%d}:name", tag);
        harness_expect(c, HARNESS_OK, "MULTI");
        harness_expect(c, QUEUED, "SET {user%d}:name n%d", tag, tag);
        harness_expect(c, QUEUED, "INCR {user%d}:visits", tag);
        harness_expect(c, QUEUED, "MSET {user%d}:a 1 {user%d}:b 2", tag, tag);
        harness_expect(c, QUEUED, "MGET {user%d}:name {user%d}:b", tag, tag);
        redisReply *r = expect_exec(c, HARNESS_OK, HARNESS_INT(1), HARNESS_OK, HARNESS_ARRAY(2));
        char name[16];
        snprintf(name, sizeof name, "n%d", tag);
        const char *want[] = {name, "2"};
        harness_check_bulks(r->element[3], want, 2, "MGET inside EXEC");
        freeReplyObject(r);
    }
}

/* Commands that run on every shard or need the connection are refused in
 * a transaction here (ringkv's choice), and abort it. */
static void test_multi_refuses_shard_wide_commands(void **state)
{
    harness_skip_unless_ringkv();
    redisContext *c = *state;
    const char *refused[] = {"KEYS *", "DBSIZE", "FLUSHALL", "SCAN 0", "CLIENT ID", "INFO"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        harness_expect(c, HARNESS_OK, "MULTI");
        harness_expect(c, HARNESS_ERR("ERR Command not allowed inside a transaction"), refused[i]);
        harness_expect(c, EXECABORT, "EXEC");
    }
}

/* Past max-request-args queued commands, or client-query-buffer-limit
 * queued bytes, a command is refused and the transaction aborts. */
static void test_multi_limits(void **state)
{
    (void)state;
    harness_skip_unless_ringkv();
    struct harness_server small;
    const char *args[] = {"--max-request-args", "8", "--client-query-buffer-limit", "1mb", NULL};
    struct harness_opts o = {.threads = 2, .args = args};
    assert_int_equal(harness_start(&small, &o), 0);
    redisContext *c = harness_connect(small.port);
    harness_expect(c, HARNESS_OK, "MULTI");
    for (int i = 0; i < 8; i++)
        harness_expect(c, QUEUED, "SET {l}k%d v", i);
    harness_expect(
        c,
        HARNESS_ERR(
            "ERR transaction too large (see max-request-args and client-query-buffer-limit)"),
        "SET {l}k v");
    harness_expect(c, EXECABORT, "EXEC");
    size_t n = 400 * 1024;
    char *v = malloc(n);
    assert_non_null(v);
    memset(v, 'v', n);
    harness_expect(c, HARNESS_OK, "MULTI");
    harness_expect(c, QUEUED, "SET {l}a %b", v, n);
    harness_expect(c, QUEUED, "SET {l}b %b", v, n);
    harness_expect(
        c,
        HARNESS_ERR(
            "ERR transaction too large (see max-request-args and client-query-buffer-limit)"),
        "SET {l}c %b", v, n);
    harness_expect(c, EXECABORT, "EXEC");
    harness_expect(c, HARNESS_INT(0), "EXISTS {l}a");
    free(v);
    redisFree(c);
    assert_int_equal(harness_stop(&small), 0);
}

/* Clients that leave in the middle: with a queue and watches, and with an
 * EXEC still out on another shard. Nothing may leak (the sanitizer build's
 * leak check runs when the node stops) and the node goes on serving. */
static void test_multi_connection_closes_mid_transaction(void **state)
{
    redisContext *c = *state;
    size_t n = 64 * 1024;
    char *v = malloc(n);
    assert_non_null(v);
    memset(v, 'q', n);
    for (int i = 0; i < 8; i++) {
        redisContext *gone = harness_connect(server.port);
        harness_expect(gone, HARNESS_OK, "WATCH {q%d}a {q%d}b", i, i);
        harness_expect(gone, HARNESS_OK, "MULTI");
        for (int j = 0; j < 16; j++)
            harness_expect(gone, QUEUED, "SET {q%d}k%d %b", i, j, v, n);
        redisFree(gone);
    }
    for (int i = 0; i < 8; i++) {
        struct harness_raw *raw = harness_raw_open(server.port);
        char cmd[256];
        int len =
            snprintf(cmd, sizeof cmd,
                     "WATCH {z%d}k\r\nMULTI\r\nSET {z%d}k v\r\nINCR {z%d}n\r\nEXEC\r\n", i, i, i);
        harness_raw_send(raw, cmd, (size_t)len);
        harness_raw_close(raw); /* before any reply */
    }
    free(v);
    harness_expect(c, HARNESS_STATUS("PONG"), "PING");
    harness_expect(c, HARNESS_OK, "MULTI");
    harness_expect(c, QUEUED, "SET {q0}k0 fine");
    freeReplyObject(expect_exec(c, HARNESS_OK));
}

/* RESP3: a watched key's change makes EXEC answer null (_). */
static void test_multi_resp3_null(void **state)
{
    redisContext *c = *state;
    struct harness_raw *raw = harness_raw_open(server.port);
    harness_raw_send_str(raw, "HELLO 3\r\n");
    harness_resp_free(harness_raw_reply(raw));
    harness_expect(c, HARNESS_OK, "SET {3}k 1");
    harness_raw_send_str(raw, "WATCH {3}k\r\n");
    harness_raw_expect(raw, "+OK\r\n");
    harness_expect(c, HARNESS_OK, "SET {3}k 2");
    harness_raw_send_str(raw, "MULTI\r\nGET {3}k\r\nEXEC\r\n");
    harness_raw_expect(raw, "+OK\r\n+QUEUED\r\n_\r\n");
    harness_raw_send_str(raw, "MULTI\r\nGET {3}k\r\nEXEC\r\n");
    harness_raw_expect(raw, "+OK\r\n+QUEUED\r\n*1\r\n$1\r\n2\r\n");
    harness_raw_close(raw);
}

/* A queued command counts as a call of its command (INFO commandstats),
 * not as a rejected one; a refused one counts as rejected. */
static void test_multi_commandstats(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "CONFIG RESETSTAT");
    harness_expect(c, HARNESS_OK, "MULTI");
    harness_expect(c, QUEUED, "SET {s}k v");
    harness_expect(c, QUEUED, "GET {s}k");
    freeReplyObject(expect_exec(c, HARNESS_OK, HARNESS_BULK("v")));
    redisReply *r = harness_cmd(c, "INFO commandstats");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    const char *set = strstr(r->str, "cmdstat_set:calls=1,");
    if (!set || !strstr(set, "rejected_calls=0,failed_calls=0"))
        fail_msg("want cmdstat_set calls=1 rejected_calls=0, got:\n%s", r->str);
    if (!strstr(r->str, "cmdstat_get:calls=1,") || !strstr(r->str, "cmdstat_exec:calls=1,"))
        fail_msg("want cmdstat_get and cmdstat_exec calls=1, got:\n%s", r->str);
    freeReplyObject(r);
}

/* Values beyond RAM (storage log with maxmemory): a transaction reading a
 * value that is on disk only gets it read back first (its first reading
 * key), or -TRYAGAIN for another cold one with nothing run; never wrong
 * bytes. */
#define COLD_KEYS 6000
#define COLD_LEN 1500 /* 9 MB against 4 MB of maxmemory */

static void cold_value(int i, char *out)
{
    harness_noise((uint32_t)i + 1, out, COLD_LEN);
}

static redisContext *cold_ctx;

static bool has_cold_keys(void *arg)
{
    (void)arg;
    return harness_info_number(cold_ctx, "persistence", "cold_keys") > COLD_KEYS / 3;
}

/* EXEC of GET {c}k<i> for each i: each element is key i's value, unless
 * the whole EXEC is -TRYAGAIN. True when it ran. */
static bool exec_cold_gets(redisContext *c, const int *keys, size_t n)
{
    char v[COLD_LEN];
    harness_expect(c, HARNESS_OK, "MULTI");
    for (size_t i = 0; i < n; i++)
        harness_expect(c, QUEUED, "GET {c}k%d", keys[i]);
    redisReply *r = harness_cmd(c, "EXEC");
    if (r->type == REDIS_REPLY_ERROR) {
        assert_true(strncmp(r->str, "TRYAGAIN ", 9) == 0);
        freeReplyObject(r);
        return false;
    }
    harness_check(r, HARNESS_ARRAY((long long)n), "EXEC of cold GETs");
    for (size_t i = 0; i < n; i++) {
        cold_value(keys[i], v);
        harness_check(r->element[i], HARNESS_BULK_LEN(v, sizeof v), "a cold value");
    }
    freeReplyObject(r);
    return true;
}

static void test_multi_cold_values(void **state)
{
    (void)state;
    harness_skip_unless_ringkv();
    char dir[64];
    assert_int_equal(harness_temp_dir(dir, sizeof dir, "ringkv-multi-tier"), 0);
    const char *args[] = {"--storage", "log", "--dir", dir, "--maxmemory", "4mb", NULL};
    struct harness_opts o = {.threads = 2, .args = args};
    struct harness_server s;
    assert_int_equal(harness_start(&s, &o), 0);
    redisContext *c = harness_connect(s.port);
    char v[COLD_LEN];
    for (int i = 0; i < COLD_KEYS; i++) {
        cold_value(i, v);
        redisAppendCommand(c, "SET {c}k%d %b", i, v, sizeof v);
    }
    for (int i = 0; i < COLD_KEYS; i++)
        freeReplyObject(harness_next_reply(c));
    cold_ctx = c;
    assert_true(harness_wait_until(has_cold_keys, NULL, HARNESS_TIMEOUT_MS, 10));
    /* the oldest keys are the cold ones */
    assert_true(exec_cold_gets(c, (const int[]){0}, 1));
    bool ran = exec_cold_gets(c, (const int[]){1, 2, 3}, 3);
    print_message("  three cold GETs in one transaction: %s\n", ran ? "ran" : "TRYAGAIN");
    for (int i = 2; i <= 3; i++) /* read back outside: the retry then runs */
        freeReplyObject(harness_cmd(c, "GET {c}k%d", i));
    assert_true(exec_cold_gets(c, (const int[]){1, 2, 3}, 3));
    /* writes that make room inside the transaction, then reads */
    harness_expect(c, HARNESS_OK, "MULTI");
    for (int i = 0; i < 20; i++) {
        cold_value(COLD_KEYS + i, v);
        harness_expect(c, QUEUED, "SET {c}new%d %b", i, v, sizeof v);
    }
    harness_expect(c, QUEUED, "GET {c}k0");
    redisReply *r = harness_cmd(c, "EXEC");
    harness_check(r, HARNESS_ARRAY(21), "EXEC of writes then a read");
    const redisReply *last = r->element[20];
    cold_value(0, v);
    if (!(last->type == REDIS_REPLY_ERROR && strncmp(last->str, "TRYAGAIN ", 9) == 0))
        harness_check(last, HARNESS_BULK_LEN(v, sizeof v), "a read after the writes");
    freeReplyObject(r);
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
    harness_remove_dir(dir);
}

/* MISCONF between queueing and EXEC: a transaction that writes is
 * discarded at EXEC with the reason (as Redis does); one that only reads
 * runs. The node's log lives on a 4 MB tmpfs this test mounts (root only,
 * as in CI; skipped otherwise) and fills. */
static char full_mnt[64];
static struct harness_server full_node;

static int setup_full(void **state)
{
    if (harness_target_is_redis())
        return setup(state);
    if (harness_temp_dir(full_mnt, sizeof full_mnt, "ringkv-multi-full") != 0)
        return -1;
    if (mount("tmpfs", full_mnt, "tmpfs", 0, "size=4m") != 0) {
        print_message("cannot mount a tmpfs (%s): the test is skipped\n", strerror(errno));
        rmdir(full_mnt);
        full_mnt[0] = '\0';
    }
    return setup(state);
}

static int teardown_full(void **state)
{
    if (full_node.pid) /* a failed assertion left it running */
        harness_crash(&full_node);
    if (full_mnt[0] && (umount2(full_mnt, MNT_DETACH) != 0 || rmdir(full_mnt) != 0))
        return -1;
    full_mnt[0] = '\0';
    return teardown(state);
}

static void test_multi_misconf_at_exec(void **state)
{
    (void)state;
    harness_skip_unless_ringkv();
    if (!full_mnt[0])
        skip();
    char dir[96];
    snprintf(dir, sizeof dir, "%s/data", full_mnt);
    const char *args[] = {"--dir", dir, "--compaction-threshold", "0", NULL};
    struct harness_opts o = {.threads = 2, .args = args};
    assert_int_equal(harness_start(&full_node, &o), 0);
    redisContext *c = harness_connect(full_node.port);
    redisContext *filler = harness_connect(full_node.port);
    harness_expect(c, HARNESS_OK, "MULTI");
    harness_expect(c, QUEUED, "SET {m}k v");
    redisContext *reader = harness_connect(full_node.port);
    harness_expect(reader, HARNESS_OK, "MULTI");
    harness_expect(reader, QUEUED, "GET {m}k");

    static char val[4000];
    bool refused = false;
    int64_t deadline = harness_now_ms() + 60000;
    for (int i = 0; !refused && harness_now_ms() < deadline; i++) {
        harness_noise((uint32_t)i, val, sizeof val);
        redisReply *r = harness_cmd(filler, "SET fill:%d %b", i, val, sizeof val);
        refused = r->type == REDIS_REPLY_ERROR && strncmp(r->str, "MISCONF", 7) == 0;
        freeReplyObject(r);
    }
    assert_true(refused);
    redisReply *r = harness_cmd(c, "EXEC");
    const char *want = "EXECABORT Transaction discarded because of: MISCONF ";
    if (r->type != REDIS_REPLY_ERROR || strncmp(r->str, want, strlen(want)) != 0)
        fail_msg("EXEC of a write under MISCONF: want \"%s...\", got type %d \"%s\"", want, r->type,
                 r->str ? r->str : "");
    freeReplyObject(r);
    harness_expect(c, HARNESS_ERR("ERR EXEC without MULTI"), "EXEC");
    r = harness_cmd(reader, "EXEC");
    harness_check(r, HARNESS_ARRAY(1), "EXEC of a read under MISCONF");
    harness_check(r->element[0], HARNESS_NIL, "GET inside it");
    freeReplyObject(r);
    redisFree(c);
    redisFree(filler);
    redisFree(reader);
    assert_int_equal(harness_crash(&full_node), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_multi_queue_and_exec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_runtime_error_is_an_element, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_discard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_execabort_on_bad_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_nested_and_watch_inside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_watch_abort_by_other_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_watch_sees_delete_create_and_expire, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_multi_watch_sees_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_watch_unchanged_succeeds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_watch_cas_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_crossslot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_hash_tags_one_slot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_refuses_shard_wide_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_connection_closes_mid_transaction, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_multi_resp3_null, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_commandstats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_cold_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_misconf_at_exec, setup_full, teardown_full),
    };
    return harness_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
