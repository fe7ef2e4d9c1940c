/* test_strings.c: the string commands of one node, as Redis 7.0 answers them.
 * One node serves the whole file; every case starts from an empty keyspace
 * (FLUSHALL) on a fresh hiredis connection. Expectations, including the exact
 * error texts, were taken from redis-server 7.0 (RINGKV_TEST_TARGET=redis runs
 * this file against it). TTLs are checked as ranges, never as exact values,
 * so a slow machine or a sanitizer build does not make a case flaky. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Integer reply of a command, failing the test on any other reply. */
static long long int_reply(redisContext *c, const char *cmd, const char *key)
{
    redisReply *r = harness_cmd(c, "%s %s", cmd, key);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static void assert_ttl_in(redisContext *c, const char *key, long long lo, long long hi)
{
    long long ttl = int_reply(c, "TTL", key);
    assert_in_range(ttl, lo, hi);
}

static void test_strings_set_get(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_NIL, "GET missing");
    harness_expect(c, HARNESS_OK, "SET k hello");
    harness_expect(c, HARNESS_BULK("hello"), "GET k");
    harness_expect(c, HARNESS_OK, "SET k world");
    harness_expect(c, HARNESS_BULK("world"), "GET k");
    harness_expect(c, HARNESS_OK, "SET empty %b", "", (size_t)0);
    harness_expect(c, HARNESS_BULK(""), "GET empty");
    harness_expect(c, HARNESS_INT(-1), "TTL k");
}

static void test_strings_binary_safe(void **state)
{
    redisContext *c = *state;
    const char key[] = "bin\0key\r\n";
    const char val[] = "a\0b\r\n$3\r\n*1\r\n\xff";
    harness_expect(c, HARNESS_OK, "SET %b %b", key, sizeof(key) - 1, val, sizeof(val) - 1);
    harness_expect(c, HARNESS_BULK_LEN(val, sizeof(val) - 1), "GET %b", key, sizeof(key) - 1);
    harness_expect(c, HARNESS_NIL, "GET bin");
    harness_expect(c, HARNESS_INT((long long)sizeof(val) - 1), "STRLEN %b", key, sizeof(key) - 1);
}

static void test_strings_big_value(void **state)
{
    redisContext *c = *state;
    size_t n = 1 << 20;
    char *v = malloc(n);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = (char)('a' + (i * 7) % 26);
    harness_expect(c, HARNESS_OK, "SET big %b", v, n);
    harness_expect(c, HARNESS_BULK_LEN(v, n), "GET big");
    harness_expect(c, HARNESS_INT((long long)n), "STRLEN big");
    free(v);
}

static void test_strings_set_ex_px(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "SET k v EX 100");
    assert_ttl_in(c, "k", 90, 100);
    harness_expect(c, HARNESS_OK, "SET k v px 100000");
    long long pttl = int_reply(c, "PTTL", "k");
    assert_in_range(pttl, 90000, 100000);
    long long now = (long long)time(NULL);
    harness_expect(c, HARNESS_OK, "SET k v EXAT %lld", now + 100);
    assert_ttl_in(c, "k", 90, 101);
    harness_expect(c, HARNESS_OK, "SET k v PXAT %lld", (now + 200) * 1000);
    assert_ttl_in(c, "k", 190, 201);
    harness_expect(c, HARNESS_BULK("v"), "GET k");
    harness_expect(c, HARNESS_OK, "SET k v");
    harness_expect(c, HARNESS_INT(-1), "TTL k");
}

static void test_strings_set_rejects_bad_expire(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_ERR("ERR invalid expire time in 'set' command"), "SET k v EX 0");
    harness_expect(c, HARNESS_ERR("ERR invalid expire time in 'set' command"), "SET k v EX -1");
    harness_expect(c, HARNESS_ERR("ERR invalid expire time in 'set' command"), "SET k v PX 0");
    harness_expect(c, HARNESS_ERR("ERR value is not an integer or out of range"), "SET k v EX abc");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "SET k v EX 10 PX 100");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "SET k v EX");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "SET k v KEEPTTL EX 10");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "SET k v NX XX");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "SET k v FOO");
    harness_expect(c, HARNESS_NIL, "GET k");
}

static void test_strings_set_nx_xx(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_NIL, "SET k v XX");
    harness_expect(c, HARNESS_NIL, "GET k");
    harness_expect(c, HARNESS_OK, "SET k v1 NX");
    harness_expect(c, HARNESS_NIL, "SET k v2 nx");
    harness_expect(c, HARNESS_BULK("v1"), "GET k");
    harness_expect(c, HARNESS_OK, "SET k v3 xx");
    harness_expect(c, HARNESS_BULK("v3"), "GET k");
}

static void test_strings_set_keepttl(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "SET k v EX 100");
    harness_expect(c, HARNESS_OK, "SET k v2 KEEPTTL");
    assert_ttl_in(c, "k", 90, 100);
    harness_expect(c, HARNESS_BULK("v2"), "GET k");
    harness_expect(c, HARNESS_OK, "SET k v3");
    harness_expect(c, HARNESS_INT(-1), "TTL k");
}

static void test_strings_set_get_option(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_NIL, "SET k v1 GET");
    harness_expect(c, HARNESS_BULK("v1"), "SET k v2 GET");
    harness_expect(c, HARNESS_BULK("v2"), "GET k");
    harness_expect(c, HARNESS_BULK("v2"), "SET k v3 NX GET");
    harness_expect(c, HARNESS_BULK("v2"), "GET k");
    harness_expect(c, HARNESS_NIL, "SET other v XX GET");
    harness_expect(c, HARNESS_INT(0), "EXISTS other");
    harness_expect(c, HARNESS_BULK("v2"), "SET k v4 XX GET EX 100");
    assert_ttl_in(c, "k", 90, 100);
}

static void test_strings_setex_psetex(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "SETEX k 100 v");
    assert_ttl_in(c, "k", 90, 100);
    harness_expect(c, HARNESS_BULK("v"), "GET k");
    harness_expect(c, HARNESS_OK, "PSETEX p 100000 w");
    assert_ttl_in(c, "p", 90, 100);
    harness_expect(c, HARNESS_ERR("ERR invalid expire time in 'setex' command"), "SETEX k 0 v");
    harness_expect(c, HARNESS_ERR("ERR invalid expire time in 'psetex' command"), "PSETEX k -1 v");
    harness_expect(c, HARNESS_ERR("ERR value is not an integer or out of range"), "SETEX k x v");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'setex' command"),
                   "SETEX k 10");
    harness_expect(c, HARNESS_BULK("v"), "GET k");
}

static void test_strings_setnx(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_INT(1), "SETNX k a");
    harness_expect(c, HARNESS_INT(0), "SETNX k b");
    harness_expect(c, HARNESS_BULK("a"), "GET k");
}

static void test_strings_getset(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_NIL, "GETSET k a");
    harness_expect(c, HARNESS_BULK("a"), "GET k");
    harness_expect(c, HARNESS_OK, "SET k b EX 100");
    harness_expect(c, HARNESS_BULK("b"), "GETSET k c");
    harness_expect(c, HARNESS_BULK("c"), "GET k");
    harness_expect(c, HARNESS_INT(-1), "TTL k");
}

static void test_strings_getdel(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "SET k v");
    harness_expect(c, HARNESS_BULK("v"), "GETDEL k");
    harness_expect(c, HARNESS_NIL, "GET k");
    harness_expect(c, HARNESS_NIL, "GETDEL k");
    harness_expect(c, HARNESS_INT(0), "EXISTS k");
}

static void test_strings_getex(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_NIL, "GETEX missing EX 10");
    harness_expect(c, HARNESS_INT(0), "EXISTS missing");
    harness_expect(c, HARNESS_OK, "SET k v");
    harness_expect(c, HARNESS_BULK("v"), "GETEX k");
    harness_expect(c, HARNESS_INT(-1), "TTL k");
    harness_expect(c, HARNESS_BULK("v"), "GETEX k EX 100");
    assert_ttl_in(c, "k", 90, 100);
    harness_expect(c, HARNESS_BULK("v"), "GETEX k PERSIST");
    harness_expect(c, HARNESS_INT(-1), "TTL k");
    harness_expect(c, HARNESS_BULK("v"), "GETEX k PX 200000");
    assert_ttl_in(c, "k", 190, 200);
    long long now = (long long)time(NULL);
    harness_expect(c, HARNESS_BULK("v"), "GETEX k EXAT %lld", now + 300);
    assert_ttl_in(c, "k", 290, 301);
    harness_expect(c, HARNESS_BULK("v"), "GETEX k PXAT %lld", (now + 400) * 1000);
    assert_ttl_in(c, "k", 390, 401);
    harness_expect(c, HARNESS_ERR("ERR invalid expire time in 'getex' command"), "GETEX k EX 0");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "GETEX k PERSIST EX 10");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "GETEX k FOO");
    assert_ttl_in(c, "k", 390, 401);
}

static void test_strings_mset_mget(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "MSET a 1 b 2 c 3");
    redisReply *r = harness_cmd(c, "MGET a b missing c a");
    const char *want[] = {"1", "2", NULL, "3", "1"};
    harness_check_bulks(r, want, 5, "MGET a b missing c a");
    freeReplyObject(r);
    harness_expect(c, HARNESS_OK, "MSET a x a y");
    harness_expect(c, HARNESS_BULK("y"), "GET a");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'mset' command"), "MSET a");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'mset' command"),
                   "MSET a 1 b");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'mget' command"), "MGET");
    harness_expect(c, HARNESS_BULK("2"), "GET b");
}

static void test_strings_mset_many_keys(void **state)
{
    redisContext *c = *state;
    enum { N = 500 };
    const char *argv[1 + 2 * N];
    size_t lens[1 + 2 * N];
    char bufs[2 * N][24];
    argv[0] = "MSET";
    lens[0] = 4;
    for (int i = 0; i < N; i++) {
        snprintf(bufs[2 * i], sizeof(bufs[0]), "key:%d", i);
        snprintf(bufs[2 * i + 1], sizeof(bufs[0]), "val:%d", i * 3);
        argv[1 + 2 * i] = bufs[2 * i];
        argv[2 + 2 * i] = bufs[2 * i + 1];
    }
    for (int i = 0; i < 1 + 2 * N; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = redisCommandArgv(c, 1 + 2 * N, argv, lens);
    harness_check(r, HARNESS_OK, "MSET of 500 keys");
    freeReplyObject(r);
    argv[0] = "MGET";
    for (int i = 0; i < N; i++) {
        argv[1 + i] = bufs[2 * i];
        lens[1 + i] = strlen(bufs[2 * i]);
    }
    r = redisCommandArgv(c, 1 + N, argv, lens);
    harness_check(r, HARNESS_ARRAY(N), "MGET of 500 keys");
    for (int i = 0; i < N; i++)
        harness_check(r->element[i], HARNESS_BULK(bufs[2 * i + 1]), "MGET element");
    freeReplyObject(r);
    harness_expect(c, HARNESS_INT(N), "DBSIZE");
}

static void test_strings_msetnx(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_INT(1), "MSETNX a 1 b 2");
    harness_expect(c, HARNESS_INT(0), "MSETNX c 3 b 4");
    harness_expect(c, HARNESS_INT(0), "EXISTS c");
    harness_expect(c, HARNESS_BULK("2"), "GET b");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'msetnx' command"),
                   "MSETNX a");
}

/* A client's next commands see its MSETNX, even when the keys live on two
 * shards (two phases) and the commands come in the same pipeline: 100 pairs
 * of keys, about half of them split across the node's two shards. */
static void test_strings_msetnx_pipelined_then_read(void **state)
{
    enum { PAIRS = 100 };
    static char req[PAIRS * 160], want[PAIRS * 64];
    size_t nreq = 0, nwant = 0;
    for (int i = 0; i < PAIRS; i++) {
        char a[24], b[24];
        int na = snprintf(a, sizeof a, "pa:%d", i), nb = snprintf(b, sizeof b, "pb:%d", i);
        nreq += (size_t)snprintf(req + nreq, sizeof req - nreq,
                                 "*5\r\n$6\r\nMSETNX\r\n$%d\r\n%s\r\n$1\r\n1\r\n$%d\r\n%s\r\n"
                                 "$1\r\n2\r\n*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n"
                                 "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n",
                                 na, a, nb, b, na, a, nb, b);
        nwant += (size_t)snprintf(want + nwant, sizeof want - nwant,
                                  ":1\r\n$1\r\n1\r\n$1\r\n2\r\n");
    }
    struct harness_raw *r = harness_raw_open(server.port);
    harness_raw_send(r, req, nreq);
    harness_raw_expect(r, want);
    harness_raw_close(r);
}

static void test_strings_append_strlen(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_INT(0), "STRLEN k");
    harness_expect(c, HARNESS_INT(5), "APPEND k hello");
    harness_expect(c, HARNESS_INT(11), "APPEND k %s", " world");
    harness_expect(c, HARNESS_BULK("hello world"), "GET k");
    harness_expect(c, HARNESS_INT(11), "STRLEN k");
    harness_expect(c, HARNESS_OK, "SET t x EX 100");
    harness_expect(c, HARNESS_INT(2), "APPEND t y");
    assert_ttl_in(c, "t", 90, 100);
}

static void test_strings_getrange(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "SET h %s", "Hello World");
    harness_expect(c, HARNESS_BULK("Hello"), "GETRANGE h 0 4");
    harness_expect(c, HARNESS_BULK("World"), "GETRANGE h -5 -1");
    harness_expect(c, HARNESS_BULK("Hello World"), "GETRANGE h 0 -1");
    harness_expect(c, HARNESS_BULK("Hello World"), "GETRANGE h 0 100");
    harness_expect(c, HARNESS_BULK(""), "GETRANGE h 5 3");
    harness_expect(c, HARNESS_BULK(""), "GETRANGE h -1 -5");
    harness_expect(c, HARNESS_BULK("d"), "GETRANGE h 10 10");
    harness_expect(c, HARNESS_BULK(""), "GETRANGE missing 0 -1");
    harness_expect(c, HARNESS_ERR("ERR value is not an integer or out of range"), "GETRANGE h a 1");
}

static void test_strings_setrange(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "SET h %s", "Hello World");
    harness_expect(c, HARNESS_INT(11), "SETRANGE h 6 Redis");
    harness_expect(c, HARNESS_BULK("Hello Redis"), "GET h");
    harness_expect(c, HARNESS_INT(13), "SETRANGE h 11 !!");
    harness_expect(c, HARNESS_BULK("Hello Redis!!"), "GET h");
    harness_expect(c, HARNESS_INT(4), "SETRANGE pad 3 x");
    harness_expect(c, HARNESS_BULK_LEN("\0\0\0x", 4), "GET pad");
    harness_expect(c, HARNESS_INT(0), "SETRANGE none 0 %b", "", (size_t)0);
    harness_expect(c, HARNESS_INT(0), "EXISTS none");
    harness_expect(c, HARNESS_INT(13), "SETRANGE h 2 %b", "", (size_t)0);
    harness_expect(c, HARNESS_ERR("ERR offset is out of range"), "SETRANGE h -1 x");
    harness_expect(c, HARNESS_BULK("Hello Redis!!"), "GET h");
}

static void test_strings_substr_is_getrange(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "SET h %s", "Hello World");
    harness_expect(c, HARNESS_BULK("World"), "SUBSTR h -5 -1");
    harness_expect(c, HARNESS_BULK(""), "SUBSTR missing 0 -1");
    harness_expect(c, HARNESS_ERR("ERR value is not an integer or out of range"), "SUBSTR h 0 x");
}

/* SETBIT and GETBIT: bit 0 is the first byte's most significant bit; a bit
 * past the end reads 0; setting one grows the value with zero bytes and
 * keeps its TTL. */
static void test_strings_setbit_getbit(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_INT(0), "GETBIT missing 7");
    harness_expect(c, HARNESS_INT(0), "SETBIT k 7 1");
    harness_expect(c, HARNESS_BULK_LEN("\x01", 1), "GET k");
    harness_expect(c, HARNESS_INT(0), "SETBIT k 0 1");
    harness_expect(c, HARNESS_BULK_LEN("\x81", 1), "GET k");
    harness_expect(c, HARNESS_INT(1), "SETBIT k 0 1");
    harness_expect(c, HARNESS_INT(1), "SETBIT k 7 0");
    harness_expect(c, HARNESS_BULK_LEN("\x80", 1), "GET k");
    harness_expect(c, HARNESS_INT(1), "GETBIT k 0");
    harness_expect(c, HARNESS_INT(0), "GETBIT k 1");
    harness_expect(c, HARNESS_INT(0), "GETBIT k 1000");
    harness_expect(c, HARNESS_INT(0), "SETBIT k 25 0"); /* clearing past the end still grows */
    harness_expect(c, HARNESS_BULK_LEN("\x80\0\0\0", 4), "GET k");
    harness_expect(c, HARNESS_OK, "SET t a EX 100"); /* 'a' is 01100001 */
    harness_expect(c, HARNESS_INT(1), "GETBIT t 1");
    harness_expect(c, HARNESS_INT(0), "SETBIT t 6 1");
    harness_expect(c, HARNESS_BULK("c"), "GET t");
    assert_ttl_in(c, "t", 90, 100);
    harness_expect(c, HARNESS_INT(0), "GETBIT k 4294967295"); /* the last of 512 MB */
    const char *bad_offset = "ERR bit offset is not an integer or out of range";
    harness_expect(c, HARNESS_ERR(bad_offset), "SETBIT k 4294967296 1");
    harness_expect(c, HARNESS_ERR(bad_offset), "SETBIT k -1 1");
    harness_expect(c, HARNESS_ERR(bad_offset), "SETBIT k x 1");
    harness_expect(c, HARNESS_ERR(bad_offset), "SETBIT k x 2"); /* the offset is checked first */
    harness_expect(c, HARNESS_ERR(bad_offset), "GETBIT k 4294967296");
    harness_expect(c, HARNESS_ERR(bad_offset), "GETBIT missing +1");
    const char *bad_bit = "ERR bit is not an integer or out of range";
    harness_expect(c, HARNESS_ERR(bad_bit), "SETBIT k 1 2");
    harness_expect(c, HARNESS_ERR(bad_bit), "SETBIT k 1 -1");
    harness_expect(c, HARNESS_ERR(bad_bit), "SETBIT k 1 x");
    harness_expect(c, HARNESS_BULK_LEN("\x80\0\0\0", 4), "GET k");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'setbit' command"),
                   "SETBIT k 1");
}

/* A BITFIELD reply as text: its elements, integers or "nil", joined by
 * commas ("ERR..." for an error reply). */
static void expect_bitfield(redisContext *c, const char *want, const char *cmd)
{
    redisReply *r = redisCommand(c, cmd);
    assert_non_null(r);
    char got[256] = "";
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(got, sizeof got, "%s", r->str);
    } else {
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *e = r->element[i];
            size_t at = strlen(got);
            if (e->type == REDIS_REPLY_NIL)
                snprintf(got + at, sizeof got - at, "%snil", i ? "," : "");
            else
                snprintf(got + at, sizeof got - at, "%s%lld", i ? "," : "", e->integer);
        }
    }
    freeReplyObject(r);
    if (strcmp(got, want) != 0)
        fail_msg("%s: got [%s], want [%s]", cmd, got, want);
}

/* BITFIELD: fields of any width at any bit offset, the three overflow
 * rules, #n offsets, zeros past the end, the value grown (keeping its
 * TTL) only by writes; BITFIELD_RO refuses writes; errors come before any
 * change. (tests/integration/bits_vs_redis.sh compares thousands of random
 * ones with redis-server.) */
static void test_strings_bitfield(void **state)
{
    redisContext *c = *state;
    expect_bitfield(c, "0,0", "BITFIELD missing GET u8 0 GET i64 100");
    harness_expect(c, HARNESS_INT(0), "EXISTS missing"); /* GETs write nothing */
    expect_bitfield(c, "0,255", "BITFIELD k SET u8 0 255 GET u8 0");
    harness_expect(c, HARNESS_BULK_LEN("\xff", 1), "GET k");
    expect_bitfield(c, "-1,15,0", "BITFIELD k GET i8 0 GET u4 4 INCRBY u8 0 1"); /* wraps */
    expect_bitfield(c, "255,nil,0", "BITFIELD k OVERFLOW SAT INCRBY u8 0 300 OVERFLOW FAIL "
                                    "INCRBY u8 0 1 GET u8 #1");
    expect_bitfield(c, "0,-128,nil", "BITFIELD s OVERFLOW SAT SET i8 0 1000 INCRBY i8 0 -999 "
                                       "OVERFLOW FAIL INCRBY i8 0 -1");
    harness_expect(c, HARNESS_BULK_LEN("\x80", 1), "GET s");
    expect_bitfield(c, "0,-32768", "BITFIELD w SET i16 #1 -32768 GET i16 16");
    harness_expect(c, HARNESS_BULK_LEN("\0\0\x80\0", 4), "GET w");
    harness_expect(c, HARNESS_OK, "SET t a EX 100");
    expect_bitfield(c, "0", "BITFIELD t SET u1 30 1"); /* grows to 4 bytes, keeps the TTL */
    harness_expect(c, HARNESS_BULK_LEN("a\0\0\x02", 4), "GET t");
    assert_ttl_in(c, "t", 90, 100);
    expect_bitfield(c, "", "BITFIELD t");
    expect_bitfield(c, "97", "BITFIELD_RO t GET u8 0");
    expect_bitfield(c, "ERR BITFIELD_RO only supports the GET subcommand",
                    "BITFIELD_RO t GET u8 0 SET u8 0 1");
    const char *bad_type = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 "
                           "is not supported but i64 is.";
    expect_bitfield(c, bad_type, "BITFIELD t SET u8 0 1 GET u64 0");
    expect_bitfield(c, "ERR bit offset is not an integer or out of range",
                    "BITFIELD t SET u8 0 1 GET u8 -1");
    expect_bitfield(c, "ERR value is not an integer or out of range", "BITFIELD t SET u8 0 x");
    expect_bitfield(c, "ERR Invalid OVERFLOW type specified", "BITFIELD t OVERFLOW x");
    expect_bitfield(c, "ERR syntax error", "BITFIELD t SET u8 0 1 GET u8");
    harness_expect(c, HARNESS_BULK_LEN("a\0\0\x02", 4), "GET t"); /* none of those wrote */
}

/* BITOP over keys of one hash slot: the result as long as the longest
 * source (shorter and missing ones read as zeros), the destination's
 * expiry gone, an empty result deleting it; keys of two slots refused
 * as in Redis Cluster (the node's shards split the slots). */
static void test_strings_bitop(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "SET {b}a \xf0\x0f\xff");
    harness_expect(c, HARNESS_OK, "SET {b}c \x3c");
    harness_expect(c, HARNESS_OK, "SET {b}d old EX 100");
    harness_expect(c, HARNESS_INT(3), "BITOP AND {b}d {b}a {b}c");
    harness_expect(c, HARNESS_BULK_LEN("\x30\0\0", 3), "GET {b}d");
    harness_expect(c, HARNESS_INT(-1), "TTL {b}d");
    harness_expect(c, HARNESS_INT(3), "bitop or {b}d {b}a {b}c {b}missing");
    harness_expect(c, HARNESS_BULK_LEN("\xfc\x0f\xff", 3), "GET {b}d");
    harness_expect(c, HARNESS_INT(3), "BITOP XOR {b}d {b}a {b}c");
    harness_expect(c, HARNESS_BULK_LEN("\xcc\x0f\xff", 3), "GET {b}d");
    harness_expect(c, HARNESS_INT(3), "BITOP NOT {b}d {b}d");
    harness_expect(c, HARNESS_BULK_LEN("\x33\xf0\0", 3), "GET {b}d");
    harness_expect(c, HARNESS_INT(0), "BITOP AND {b}d {b}missing");
    harness_expect(c, HARNESS_INT(0), "EXISTS {b}d");
    harness_expect(c, HARNESS_ERR("ERR BITOP NOT must be called with a single source key."),
                   "BITOP NOT {b}d {b}a {b}c");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "BITOP NAND {b}d {b}a");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'bitop' command"),
                   "BITOP AND {b}d");
    harness_expect(c, HARNESS_ERR("CROSSSLOT Keys in request don't hash to the same slot"),
                   "BITOP AND dst a c");
}

/* LCS (bits_vs_redis.sh compares it with redis-server): the subsequence,
 * its length, its ranges; a pair of values whose table would pass 4M
 * cells is refused (its fill would hold up the shard), the largest below
 * answers. */
static void test_strings_lcs(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "MSET {l}x ohmytext {l}y mynewtext");
    harness_expect(c, HARNESS_BULK("mytext"), "LCS {l}x {l}y");
    harness_expect(c, HARNESS_INT(6), "LCS {l}x {l}y LEN");
    harness_expect(c, HARNESS_BULK(""), "LCS {l}x {l}missing");
    redisReply *r = harness_cmd(c, "LCS {l}x {l}y IDX MINMATCHLEN 4 WITHMATCHLEN");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 4);
    assert_string_equal(r->element[0]->str, "matches");
    assert_int_equal(r->element[1]->elements, 1); /* "text": [4, 7] in x, [5, 8] in y */
    redisReply *m = r->element[1]->element[0];
    assert_int_equal(m->element[0]->element[0]->integer, 4);
    assert_int_equal(m->element[1]->element[1]->integer, 8);
    assert_int_equal(m->element[2]->integer, 4);
    assert_int_equal(r->element[3]->integer, 6);
    freeReplyObject(r);
    harness_expect(c, HARNESS_ERR("ERR If you want both the length and indexes, please just use "
                                  "IDX."), "LCS {l}x {l}y LEN IDX");
    char *big = malloc(2048);
    assert_non_null(big);
    memset(big, 'a', 2047);
    big[2047] = '\0';
    r = harness_cmd(c, "SET {l}big %s", big); /* 2048 x 2048 cells: the most allowed */
    freeReplyObject(r);
    harness_expect(c, HARNESS_INT(2047), "LCS {l}big {l}big LEN");
    r = harness_cmd(c, "APPEND {l}big a");
    freeReplyObject(r);
    harness_expect(c, HARNESS_ERR("ERR LCS of strings this long would hold up the server: "
                                  "(len1 + 1) * (len2 + 1) must be at most 4194304"),
                   "LCS {l}big {l}big");
    free(big);
}

/* The last bit proto-max-bulk-len allows (1 MB here, Redis's least) can be
 * set, the next cannot. */
static void test_strings_setbit_limit(void **state)
{
    struct harness_server small;
    const char *const args[] = {"--proto-max-bulk-len", "1mb", NULL};
    struct harness_opts o = {.args = args};
    assert_int_equal(harness_start(&small, &o), 0);
    redisContext *c = harness_connect(small.port);
    harness_expect(c, HARNESS_INT(0), "SETBIT k 8388607 1");
    harness_expect(c, HARNESS_INT(1048576), "STRLEN k");
    harness_expect(c, HARNESS_INT(1), "BITCOUNT k");
    harness_expect(c, HARNESS_INT(8388607), "BITPOS k 1");
    harness_expect(c, HARNESS_ERR("ERR bit offset is not an integer or out of range"),
                   "SETBIT k 8388608 1");
    redisFree(c);
    assert_int_equal(harness_stop(&small), 0);
}

/* SETBIT of a bit to the value it already has, inside the value, changes
 * nothing, and a transaction watching the key goes through (as in Redis
 * 7.0); one that flips a bit aborts it. (One slot: a hash tag.) */
static void test_strings_setbit_same_bit(void **state)
{
    redisContext *c = *state, *other = harness_connect(server.port);
    harness_expect(c, HARNESS_INT(0), "SETBIT {b}k 3 1");
    harness_expect(c, HARNESS_OK, "WATCH {b}k");
    harness_expect(other, HARNESS_INT(1), "SETBIT {b}k 3 1");
    harness_expect(other, HARNESS_INT(0), "SETBIT {b}k 4 0");
    harness_expect(c, HARNESS_OK, "MULTI");
    harness_expect(c, HARNESS_STATUS("QUEUED"), "SET {b}x 1");
    harness_expect(c, HARNESS_ARRAY(1), "EXEC");
    harness_expect(c, HARNESS_OK, "WATCH {b}k");
    harness_expect(other, HARNESS_INT(0), "SETBIT {b}k 5 1");
    harness_expect(c, HARNESS_OK, "MULTI");
    harness_expect(c, HARNESS_STATUS("QUEUED"), "SET {b}x 2");
    harness_expect(c, HARNESS_NIL, "EXEC");
    harness_expect(c, HARNESS_BULK_LEN("\x14", 1), "GET {b}k");
    harness_expect(c, HARNESS_BULK("1"), "GET {b}x");
    redisFree(other);
}

static void test_strings_bitcount(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "SET k foobar"); /* 4 6 6 3 3 4 bits set */
    harness_expect(c, HARNESS_INT(26), "BITCOUNT k");
    harness_expect(c, HARNESS_INT(4), "BITCOUNT k 0 0");
    harness_expect(c, HARNESS_INT(6), "BITCOUNT k 1 1");
    harness_expect(c, HARNESS_INT(7), "BITCOUNT k -2 -1");
    harness_expect(c, HARNESS_INT(26), "BITCOUNT k -100 100");
    harness_expect(c, HARNESS_INT(0), "BITCOUNT k 3 1");
    harness_expect(c, HARNESS_INT(4), "BITCOUNT k 0 0 BYTE");
    harness_expect(c, HARNESS_INT(17), "BITCOUNT k 5 30 bit");
    harness_expect(c, HARNESS_INT(1), "BITCOUNT k 1 1 BIT"); /* 'f' is 01100110 */
    harness_expect(c, HARNESS_INT(4), "BITCOUNT k 1 6 BIT");
    harness_expect(c, HARNESS_INT(1), "BITCOUNT k -4 -1 BIT"); /* 'r' ends 0010 */
    /* Both negative and in the wrong order: 0 before the unit is looked at. */
    harness_expect(c, HARNESS_INT(0), "BITCOUNT k -1 -100 nonsense");
    harness_expect(c, HARNESS_INT(0), "BITCOUNT missing");
    harness_expect(c, HARNESS_INT(0), "BITCOUNT missing 0"); /* the key is looked up first */
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "BITCOUNT k 0");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "BITCOUNT k 0 1 BITS");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "BITCOUNT k 0 1 BIT x");
    harness_expect(c, HARNESS_ERR("ERR value is not an integer or out of range"),
                   "BITCOUNT k 0 x");
    harness_expect(c, HARNESS_INT(26),
                   "BITCOUNT k -9223372036854775808 9223372036854775807 BIT");
    harness_expect(c, HARNESS_INT(0), "BITCOUNT k 9223372036854775807 -9223372036854775808");
    harness_expect(c, HARNESS_OK, "SET long %s", "0123456789abcdefghijklmnopqrstuvwxyz");
    harness_expect(c, HARNESS_INT(147), "BITCOUNT long"); /* whole words and a tail */
    harness_expect(c, HARNESS_INT(134), "BITCOUNT long 3 -2");
}

static void test_strings_bitpos(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "SET k %b", "\xff\xf0\x00", (size_t)3);
    harness_expect(c, HARNESS_INT(12), "BITPOS k 0");
    harness_expect(c, HARNESS_INT(0), "BITPOS k 1");
    harness_expect(c, HARNESS_INT(16), "BITPOS k 0 2");
    harness_expect(c, HARNESS_INT(16), "BITPOS k 0 2 -1 BYTE");
    harness_expect(c, HARNESS_INT(-1), "BITPOS k 1 2");
    harness_expect(c, HARNESS_INT(12), "BITPOS k 0 7 15 BIT");
    harness_expect(c, HARNESS_INT(5), "BITPOS k 1 5 -1 bit");
    harness_expect(c, HARNESS_INT(-1), "BITPOS k 1 2 1");
    harness_expect(c, HARNESS_OK, "SET ones %b", "\xff\xff", (size_t)2);
    /* No clear bit: the first past the value, unless an end was given. */
    harness_expect(c, HARNESS_INT(16), "BITPOS ones 0");
    harness_expect(c, HARNESS_INT(16), "BITPOS ones 0 1");
    harness_expect(c, HARNESS_INT(-1), "BITPOS ones 0 0 -1");
    harness_expect(c, HARNESS_INT(-1), "BITPOS ones 0 3 10 BIT");
    harness_expect(c, HARNESS_OK, "SET far %b", "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", (size_t)18);
    harness_expect(c, HARNESS_INT(143), "BITPOS far 1"); /* past whole zero words */
    harness_expect(c, HARNESS_INT(143), "BITPOS far 1 -9223372036854775808 9223372036854775807 BIT");
    harness_expect(c, HARNESS_OK, "SET full %b",
                   "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe",
                   (size_t)18);
    harness_expect(c, HARNESS_INT(143), "BITPOS full 0"); /* past whole all-ones words */
    harness_expect(c, HARNESS_INT(-1), "BITPOS full 0 0 16");
    harness_expect(c, HARNESS_INT(0), "BITPOS missing 0");
    harness_expect(c, HARNESS_INT(-1), "BITPOS missing 1");
    harness_expect(c, HARNESS_INT(-1), "BITPOS missing 1 0 1 nonsense"); /* looked up first */
    harness_expect(c, HARNESS_OK, "SET empty %b", "", (size_t)0);
    harness_expect(c, HARNESS_INT(-1), "BITPOS empty 0");
    harness_expect(c, HARNESS_ERR("ERR The bit argument must be 1 or 0."), "BITPOS k 2");
    harness_expect(c, HARNESS_ERR("ERR value is not an integer or out of range"),
                   "BITPOS missing x");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "BITPOS k 1 0 1 BITS");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "BITPOS k 1 0 1 BIT x");
    harness_expect(c, HARNESS_ERR("ERR value is not an integer or out of range"),
                   "BITPOS k 1 x");
}

static void test_strings_incr_decr(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_INT(1), "INCR n");
    harness_expect(c, HARNESS_INT(11), "INCRBY n 10");
    harness_expect(c, HARNESS_INT(10), "DECR n");
    harness_expect(c, HARNESS_INT(-5), "DECRBY n 15");
    harness_expect(c, HARNESS_INT(-3), "INCRBY n 2");
    harness_expect(c, HARNESS_BULK("-3"), "GET n");
    harness_expect(c, HARNESS_INT(-1), "DECR fresh");
    harness_expect(c, HARNESS_OK, "SET t 10 EX 100");
    harness_expect(c, HARNESS_INT(11), "INCR t");
    assert_ttl_in(c, "t", 90, 100);
}

static void test_strings_incr_rejects_non_integers(void **state)
{
    redisContext *c = *state;
    const char *bad[] = {"abc", " 1", "1 ", "1.5", "+5", "007", "", "0x10", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        harness_expect(c, HARNESS_OK, "SET k %s", bad[i]);
        harness_expect(c, HARNESS_ERR("ERR value is not an integer or out of range"), "INCR k");
        harness_expect(c, HARNESS_BULK(bad[i]), "GET k");
    }
    harness_expect(c, HARNESS_OK, "SET k 5");
    harness_expect(c, HARNESS_ERR("ERR value is not an integer or out of range"), "INCRBY k abc");
    harness_expect(c, HARNESS_ERR("ERR value is not an integer or out of range"), "DECRBY k 1.0");
    harness_expect(c, HARNESS_BULK("5"), "GET k");
}

static void test_strings_incr_overflow(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "SET n 9223372036854775807");
    harness_expect(c, HARNESS_ERR("ERR increment or decrement would overflow"), "INCR n");
    harness_expect(c, HARNESS_BULK("9223372036854775807"), "GET n");
    harness_expect(c, HARNESS_OK, "SET n -9223372036854775808");
    harness_expect(c, HARNESS_ERR("ERR increment or decrement would overflow"), "DECR n");
    harness_expect(c, HARNESS_INT(-9223372036854775807LL), "INCR n");
    harness_expect(c, HARNESS_OK, "SET n 1");
    harness_expect(c, HARNESS_ERR("ERR decrement would overflow"), "DECRBY n -9223372036854775808");
    harness_expect(c, HARNESS_ERR("ERR increment or decrement would overflow"),
                   "INCRBY n 9223372036854775807");
    harness_expect(c, HARNESS_BULK("1"), "GET n");
}

static void test_strings_incrbyfloat(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "SET f 10.50");
    harness_expect(c, HARNESS_BULK("10.6"), "INCRBYFLOAT f 0.1");
    harness_expect(c, HARNESS_BULK("5.6"), "INCRBYFLOAT f -5");
    harness_expect(c, HARNESS_BULK("5.6"), "GET f");
    harness_expect(c, HARNESS_OK, "SET g 5.0e3");
    harness_expect(c, HARNESS_BULK("5200"), "INCRBYFLOAT g 2.0e2");
    harness_expect(c, HARNESS_BULK("3.5"), "INCRBYFLOAT fresh 3.5");
    harness_expect(c, HARNESS_OK, "SET i 7");
    harness_expect(c, HARNESS_BULK("10"), "INCRBYFLOAT i 3");
    harness_expect(c, HARNESS_ERR("ERR value is not a valid float"), "INCRBYFLOAT g abc");
    harness_expect(c, HARNESS_ERR("ERR increment would produce NaN or Infinity"),
                   "INCRBYFLOAT g inf");
    harness_expect(c, HARNESS_OK, "SET s notanumber");
    harness_expect(c, HARNESS_ERR("ERR value is not a valid float"), "INCRBYFLOAT s 1");
    harness_expect(c, HARNESS_BULK("5200"), "GET g");
}

static void test_strings_arity_errors(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'get' command"), "GET");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'get' command"), "GET a b");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'set' command"), "SET k");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'incr' command"), "incr");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'getrange' command"),
                   "GETRANGE k 0");
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'append' command"),
                   "APPEND k");
    harness_expect(c, HARNESS_OK, "SET k v");
    harness_expect(c, HARNESS_BULK("v"), "GET k");
}

static void test_strings_unknown_command(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_ERR("ERR unknown command 'foo', with args beginning with: 'a' 'b' "),
                   "foo a b");
    harness_expect(c, HARNESS_ERR("ERR unknown command 'FOO', with args beginning with: "), "FOO");
    harness_expect(c, HARNESS_OK, "SET k v");
    harness_expect(c, HARNESS_BULK("v"), "GET k");
}

static void test_strings_commands_are_case_insensitive(void **state)
{
    redisContext *c = *state;
    harness_expect(c, HARNESS_OK, "set k v");
    harness_expect(c, HARNESS_BULK("v"), "gEt k");
    harness_expect(c, HARNESS_NIL, "GET K");
    harness_expect(c, HARNESS_BULK("v"), "Set k v2 eX 100 Get");
    assert_ttl_in(c, "k", 90, 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_strings_set_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_binary_safe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_big_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_set_ex_px, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_set_rejects_bad_expire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_set_nx_xx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_set_keepttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_set_get_option, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_setex_psetex, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_setnx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_getset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_getdel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_getex, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_mset_mget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_mset_many_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_msetnx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_msetnx_pipelined_then_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_append_strlen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_getrange, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_setrange, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_substr_is_getrange, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_setbit_getbit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_setbit_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_setbit_same_bit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_bitcount, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_bitpos, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_bitfield, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_bitop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_lcs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_incr_decr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_incr_rejects_non_integers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_incr_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_incrbyfloat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_arity_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_unknown_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_commands_are_case_insensitive, setup,
                                        teardown),
    };
    return harness_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
