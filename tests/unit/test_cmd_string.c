/* test_cmd_string.c: the Redis string commands, driven directly: each case
 * runs a handler on a fresh store and compares the reply bytes with what
 * redis-server 7.0 sends for the same command (checked by hand with
 * redis-cli and a raw socket). The clock is fixed at T0 and moved through
 * store_tick. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cmd_keys.h"
#include "cmd_string.h"
#include "keyhash.h"
#include "store.h"

#define T0 1700000000000LL /* a fixed "now", unix ms */
#define MAX_ARGS 16

static struct store st;
static struct buf out;
static int proto;

static int setup_with(const struct store_config *cfg)
{
    if (store_init(&st, cfg) != 0)
        return -1;
    store_tick(&st, T0);
    buf_init(&out);
    proto = 2;
    return 0;
}

static int setup(void **state)
{
    struct store_config cfg = {.seed = 1};
    return setup_with(&cfg);
}

static int teardown(void **state)
{
    store_fini(&st);
    buf_fini(&out);
    return 0;
}

/* Runs h on argv (lens[i] == SIZE_MAX: strlen) and returns the reply. */
static const char *run_v(cmd_handler *h, uint32_t argc, const char *const *argv, const size_t *lens)
{
    struct resp_arg args[MAX_ARGS];
    for (uint32_t i = 0; i < argc; i++) {
        args[i].ptr = argv[i];
        args[i].len = (uint32_t)(lens && lens[i] != SIZE_MAX ? lens[i] : strlen(argv[i]));
    }
    struct req_result res = {0};
    struct cmd_ctx c = {
        .res = &res, .store = &st, .out = &out, .proto = proto, .argc = argc, .argv = args};
    if (argc > 1)
        c.hash = keyhash(args[1].ptr, args[1].len);
    buf_clear(&out);
    h(&c);
    buf_append(&out, "", 1);
    out.len--;
    return out.data;
}

/* Runs h on a command line split at single spaces. */
static const char *run(cmd_handler *h, const char *line)
{
    static char copy[1024];
    const char *argv[MAX_ARGS];
    uint32_t argc = 0;
    snprintf(copy, sizeof copy, "%s", line);
    for (char *p = copy, *sp; argc < MAX_ARGS; p = sp + 1) {
        argv[argc++] = p;
        sp = strchr(p, ' ');
        if (!sp)
            break;
        *sp = '\0';
    }
    return run_v(h, argc, argv, NULL);
}

#define expect(h, line, reply) assert_string_equal(run(h, line), reply)

static void test_cmd_string_get_set(void **state)
{
    expect(cmd_get, "GET k", "$-1\r\n");
    expect(cmd_set, "SET k hello", "+OK\r\n");
    expect(cmd_get, "GET k", "$5\r\nhello\r\n");
    expect(cmd_set, "SET k bye", "+OK\r\n");
    expect(cmd_get, "GET k", "$3\r\nbye\r\n");
    expect(cmd_get, "GET other", "$-1\r\n");
    proto = 3;
    expect(cmd_get, "GET other", "_\r\n");
}

static void test_cmd_string_set_binary_and_empty(void **state)
{
    const char *argv[] = {"SET", "bin", "a\0b\r\n"};
    size_t lens[] = {SIZE_MAX, SIZE_MAX, 5};
    assert_string_equal(run_v(cmd_set, 3, argv, lens), "+OK\r\n");
    run(cmd_get, "GET bin");
    assert_int_equal(out.len, 11);
    assert_memory_equal(out.data, "$5\r\na\0b\r\n\r\n", 11);
    const char *empty[] = {"SET", "e", ""};
    assert_string_equal(run_v(cmd_set, 3, empty, NULL), "+OK\r\n");
    expect(cmd_get, "GET e", "$0\r\n\r\n");
}

static void test_cmd_string_set_nx_xx(void **state)
{
    expect(cmd_set, "SET k v XX", "$-1\r\n");
    expect(cmd_get, "GET k", "$-1\r\n");
    expect(cmd_set, "SET k v1 NX", "+OK\r\n");
    expect(cmd_set, "SET k v2 nx", "$-1\r\n");
    expect(cmd_get, "GET k", "$2\r\nv1\r\n");
    expect(cmd_set, "SET k v3 XX", "+OK\r\n");
    expect(cmd_get, "GET k", "$2\r\nv3\r\n");
    expect(cmd_set, "SET k v4 NX NX", "$-1\r\n"); /* repeats are accepted */
    expect(cmd_set, "SET k v v XX NX", "-ERR syntax error\r\n");
    expect(cmd_set, "SET k v NX XX", "-ERR syntax error\r\n");
}

static void test_cmd_string_set_get_option(void **state)
{
    expect(cmd_set, "SET k v1 GET", "$-1\r\n");
    expect(cmd_set, "SET k v2 GET", "$2\r\nv1\r\n");
    expect(cmd_get, "GET k", "$2\r\nv2\r\n");
    /* NX with GET: the old value, and nothing set */
    expect(cmd_set, "SET k v3 NX GET", "$2\r\nv2\r\n");
    expect(cmd_get, "GET k", "$2\r\nv2\r\n");
    expect(cmd_set, "SET n v NX GET", "$-1\r\n");
    expect(cmd_get, "GET n", "$1\r\nv\r\n");
    /* XX with GET on a missing key: null, nothing set */
    expect(cmd_set, "SET m v XX GET", "$-1\r\n");
    expect(cmd_get, "GET m", "$-1\r\n");
    expect(cmd_set, "SET k v4 GET GET", "$2\r\nv2\r\n");
    expect(cmd_set, "SET k v5 get ex 100", "$2\r\nv4\r\n");
    expect(cmd_ttl, "TTL k", ":100\r\n");
}

static void test_cmd_string_set_expire_options(void **state)
{
    expect(cmd_set, "SET k v EX 100", "+OK\r\n");
    expect(cmd_pttl, "PTTL k", ":100000\r\n");
    expect(cmd_set, "SET k v PX 1500", "+OK\r\n");
    expect(cmd_pttl, "PTTL k", ":1500\r\n");
    expect(cmd_set, "SET k v EXAT 1700000100", "+OK\r\n");
    expect(cmd_pttl, "PTTL k", ":100000\r\n");
    expect(cmd_set, "SET k v PXAT 1700000000250", "+OK\r\n");
    expect(cmd_pttl, "PTTL k", ":250\r\n");
    expect(cmd_set, "SET k v ex 10 EX 20", "+OK\r\n"); /* the last one wins */
    expect(cmd_ttl, "TTL k", ":20\r\n");
    expect(cmd_set, "SET k v", "+OK\r\n"); /* a plain SET drops the TTL */
    expect(cmd_ttl, "TTL k", ":-1\r\n");
    /* the key expires when the clock passes */
    expect(cmd_set, "SET k v PX 10", "+OK\r\n");
    store_tick(&st, T0 + 9);
    expect(cmd_get, "GET k", "$1\r\nv\r\n");
    store_tick(&st, T0 + 10);
    expect(cmd_get, "GET k", "$-1\r\n");
}

static void test_cmd_string_set_in_the_past_leaves_no_key(void **state)
{
    expect(cmd_set, "SET k v", "+OK\r\n");
    expect(cmd_set, "SET k v2 PXAT 1", "+OK\r\n");
    expect(cmd_get, "GET k", "$-1\r\n");
    expect(cmd_set, "SET k v EXAT 1700000000", "+OK\r\n"); /* exactly now */
    expect(cmd_exists, "EXISTS k", ":0\r\n");
}

static void test_cmd_string_set_keepttl(void **state)
{
    expect(cmd_set, "SET k v EX 100", "+OK\r\n");
    expect(cmd_set, "SET k v2 KEEPTTL", "+OK\r\n");
    expect(cmd_ttl, "TTL k", ":100\r\n");
    expect(cmd_get, "GET k", "$2\r\nv2\r\n");
    expect(cmd_set, "SET n v KEEPTTL KEEPTTL", "+OK\r\n");
    expect(cmd_ttl, "TTL n", ":-1\r\n");
    expect(cmd_set, "SET k v EX 10 KEEPTTL", "-ERR syntax error\r\n");
    expect(cmd_set, "SET k v KEEPTTL PX 10", "-ERR syntax error\r\n");
}

static void test_cmd_string_set_syntax_errors(void **state)
{
    expect(cmd_set, "SET k v EX 10 PX 10", "-ERR syntax error\r\n");
    expect(cmd_set, "SET k v EXAT 10 PXAT 10", "-ERR syntax error\r\n");
    expect(cmd_set, "SET k v EX", "-ERR syntax error\r\n");
    expect(cmd_set, "SET k v FOO", "-ERR syntax error\r\n");
    expect(cmd_set, "SET k v PERSIST", "-ERR syntax error\r\n");
    expect(cmd_set, "SET k v EX 10 PERSIST", "-ERR syntax error\r\n");
    /* every option is parsed before the expire value is checked */
    expect(cmd_set, "SET k v EX abc FOO", "-ERR syntax error\r\n");
    expect(cmd_get, "GET k", "$-1\r\n");
}

static void test_cmd_string_set_invalid_expire(void **state)
{
    const char *bad = "-ERR invalid expire time in 'set' command\r\n";
    expect(cmd_set, "SET k v EX 0", bad);
    expect(cmd_set, "SET k v EX -1", bad);
    expect(cmd_set, "SET k v PX 0", bad);
    expect(cmd_set, "SET k v EXAT 0", bad);
    expect(cmd_set, "SET k v PXAT -1", bad);
    expect(cmd_set, "SET k v EX 9223372036854775807", bad);
    expect(cmd_set, "SET k v EX 9223372036854776", bad);
    expect(cmd_set, "SET k v EXAT 9223372036854776", bad);
    /* relative times may not overflow once now is added */
    expect(cmd_set, "SET k v PX 9223372036854775000", bad);
    expect(cmd_set, "SET k v EX abc", "-ERR value is not an integer or out of range\r\n");
    expect(cmd_set, "SET k v PX 1.5", "-ERR value is not an integer or out of range\r\n");
    expect(cmd_get, "GET k", "$-1\r\n");
    expect(cmd_set, "SET k v EXAT 9223372036854775", "+OK\r\n");
    expect(cmd_set, "SET k v PXAT 9223372036854775807", "+OK\r\n");
    expect(cmd_pttl, "PTTL k", ":9223370336854775807\r\n");
    /* the expire check comes before GET's reply */
    expect(cmd_set, "SET k v GET EX 0", bad);
}

static void test_cmd_string_setex_psetex(void **state)
{
    expect(cmd_setex, "SETEX k 10 v", "+OK\r\n");
    expect(cmd_get, "GET k", "$1\r\nv\r\n");
    expect(cmd_pttl, "PTTL k", ":10000\r\n");
    expect(cmd_psetex, "PSETEX k 1234 w", "+OK\r\n");
    expect(cmd_pttl, "PTTL k", ":1234\r\n");
    expect(cmd_get, "GET k", "$1\r\nw\r\n");
    expect(cmd_setex, "SETEX k 0 v", "-ERR invalid expire time in 'setex' command\r\n");
    expect(cmd_setex, "SETEX k 9223372036854775 v",
           "-ERR invalid expire time in 'setex' command\r\n");
    expect(cmd_psetex, "PSETEX k -5 v", "-ERR invalid expire time in 'psetex' command\r\n");
    expect(cmd_psetex, "PSETEX k 9223372036854775807 v",
           "-ERR invalid expire time in 'psetex' command\r\n");
    expect(cmd_setex, "SETEX k abc v", "-ERR value is not an integer or out of range\r\n");
    expect(cmd_pttl, "PTTL k", ":1234\r\n");
}

static void test_cmd_string_setnx(void **state)
{
    expect(cmd_setnx, "SETNX k 1", ":1\r\n");
    expect(cmd_setnx, "SETNX k 2", ":0\r\n");
    expect(cmd_get, "GET k", "$1\r\n1\r\n");
    /* an expired key is no key */
    expect(cmd_set, "SET t v PX 5", "+OK\r\n");
    store_tick(&st, T0 + 5);
    expect(cmd_setnx, "SETNX t 2", ":1\r\n");
    expect(cmd_ttl, "TTL t", ":-1\r\n");
}

static void test_cmd_string_getset_getdel(void **state)
{
    expect(cmd_getset, "GETSET k a", "$-1\r\n");
    expect(cmd_setex, "SETEX k 100 b", "+OK\r\n");
    expect(cmd_getset, "GETSET k c", "$1\r\nb\r\n");
    expect(cmd_ttl, "TTL k", ":-1\r\n"); /* GETSET drops the TTL */
    expect(cmd_getdel, "GETDEL k", "$1\r\nc\r\n");
    expect(cmd_getdel, "GETDEL k", "$-1\r\n");
    expect(cmd_exists, "EXISTS k", ":0\r\n");
}

static void test_cmd_string_getex(void **state)
{
    expect(cmd_getex, "GETEX k", "$-1\r\n");
    expect(cmd_set, "SET k v", "+OK\r\n");
    expect(cmd_getex, "GETEX k", "$1\r\nv\r\n");
    expect(cmd_ttl, "TTL k", ":-1\r\n");
    expect(cmd_getex, "GETEX k EX 100", "$1\r\nv\r\n");
    expect(cmd_pttl, "PTTL k", ":100000\r\n");
    expect(cmd_getex, "GETEX k PX 500", "$1\r\nv\r\n");
    expect(cmd_pttl, "PTTL k", ":500\r\n");
    expect(cmd_getex, "GETEX k EXAT 1700000200", "$1\r\nv\r\n");
    expect(cmd_pttl, "PTTL k", ":200000\r\n");
    expect(cmd_getex, "GETEX k PXAT 1700000000300", "$1\r\nv\r\n");
    expect(cmd_pttl, "PTTL k", ":300\r\n");
    expect(cmd_getex, "GETEX k PERSIST", "$1\r\nv\r\n");
    expect(cmd_pttl, "PTTL k", ":-1\r\n");
    expect(cmd_getex, "GETEX k PERSIST PERSIST", "$1\r\nv\r\n");
    /* a time in the past: the value once more, then the key is gone */
    expect(cmd_getex, "GETEX k EXAT 1", "$1\r\nv\r\n");
    expect(cmd_exists, "EXISTS k", ":0\r\n");
}

static void test_cmd_string_getex_errors(void **state)
{
    const char *syntax = "-ERR syntax error\r\n";
    expect(cmd_getex, "GETEX missing FOO", syntax);
    /* the key is looked up before the expire value is checked */
    expect(cmd_getex, "GETEX missing EX 0", "$-1\r\n");
    expect(cmd_getex, "GETEX missing EX abc", "$-1\r\n");
    expect(cmd_set, "SET k v", "+OK\r\n");
    expect(cmd_getex, "GETEX k EX abc", "-ERR value is not an integer or out of range\r\n");
    expect(cmd_getex, "GETEX k EX 0", "-ERR invalid expire time in 'getex' command\r\n");
    expect(cmd_getex, "GETEX k EX 9223372036854775807",
           "-ERR invalid expire time in 'getex' command\r\n");
    expect(cmd_getex, "GETEX k EX 10 PX 5", syntax);
    expect(cmd_getex, "GETEX k PERSIST EX 10", syntax);
    expect(cmd_getex, "GETEX k EX 10 PERSIST", syntax);
    expect(cmd_getex, "GETEX k KEEPTTL", syntax);
    expect(cmd_getex, "GETEX k GET", syntax);
    expect(cmd_getex, "GETEX k NX", syntax);
    expect(cmd_getex, "GETEX k EX", syntax);
    expect(cmd_ttl, "TTL k", ":-1\r\n");
}

static void test_cmd_string_append(void **state)
{
    expect(cmd_append, "APPEND a hello", ":5\r\n");
    expect(cmd_append, "APPEND a _world", ":11\r\n");
    expect(cmd_get, "GET a", "$11\r\nhello_world\r\n");
    expect(cmd_setex, "SETEX a 100 x", "+OK\r\n");
    expect(cmd_append, "APPEND a yz", ":3\r\n");
    expect(cmd_ttl, "TTL a", ":100\r\n"); /* APPEND keeps the TTL */
    expect(cmd_get, "GET a", "$3\r\nxyz\r\n");
    char expect_val[2001] = "xyz";
    for (int i = 0; i < 1997; i++) {
        const char *argv[] = {"APPEND", "a", (i % 2) ? "1" : "2"};
        char reply[16];
        snprintf(reply, sizeof reply, ":%d\r\n", 4 + i);
        assert_string_equal(run_v(cmd_append, 3, argv, NULL), reply);
        expect_val[3 + i] = (i % 2) ? '1' : '2';
    }
    run(cmd_get, "GET a");
    assert_int_equal(out.len, 7 + 2000 + 2);
    assert_memory_equal(out.data, "$2000\r\n", 7);
    assert_memory_equal(out.data + 7, expect_val, 2000);
}

static void test_cmd_string_strlen(void **state)
{
    expect(cmd_strlen, "STRLEN k", ":0\r\n");
    expect(cmd_set, "SET k hello", "+OK\r\n");
    expect(cmd_strlen, "STRLEN k", ":5\r\n");
}

static void test_cmd_string_getrange(void **state)
{
    expect(cmd_getrange, "GETRANGE missing 0 1", "$0\r\n\r\n");
    expect(cmd_set, "SET g Hello_World", "+OK\r\n");
    expect(cmd_getrange, "GETRANGE g 0 4", "$5\r\nHello\r\n");
    expect(cmd_getrange, "GETRANGE g -5 -1", "$5\r\nWorld\r\n");
    expect(cmd_getrange, "GETRANGE g -1 -5", "$0\r\n\r\n");
    expect(cmd_getrange, "GETRANGE g 5 2", "$0\r\n\r\n");
    expect(cmd_getrange, "GETRANGE g -100 100", "$11\r\nHello_World\r\n");
    expect(cmd_getrange, "GETRANGE g 100 200", "$0\r\n\r\n");
    expect(cmd_getrange, "GETRANGE g 0 -100", "$1\r\nH\r\n");
    expect(cmd_getrange, "GETRANGE g -100 -200", "$0\r\n\r\n");
    expect(cmd_getrange, "GETRANGE g 9223372036854775807 9223372036854775807", "$0\r\n\r\n");
    expect(cmd_getrange, "GETRANGE g -9223372036854775808 -1", "$11\r\nHello_World\r\n");
    expect(cmd_getrange, "GETRANGE g 3 abc", "-ERR value is not an integer or out of range\r\n");
    expect(cmd_getrange, "GETRANGE missing abc 1",
           "-ERR value is not an integer or out of range\r\n");
    expect(cmd_set, "SET e x", "+OK\r\n");
    expect(cmd_getrange, "GETRANGE e 0 0", "$1\r\nx\r\n");
}

static void test_cmd_string_setrange(void **state)
{
    expect(cmd_setrange, "SETRANGE m 5 x", ":6\r\n");
    run(cmd_get, "GET m");
    assert_int_equal(out.len, 12);
    assert_memory_equal(out.data, "$6\r\n\0\0\0\0\0x\r\n", 12);
    expect(cmd_set, "SET s Hello_World", "+OK\r\n");
    expect(cmd_setrange, "SETRANGE s 6 Redis", ":11\r\n");
    expect(cmd_get, "GET s", "$11\r\nHello_Redis\r\n");
    expect(cmd_setrange, "SETRANGE s 9 long_tail", ":18\r\n");
    expect(cmd_get, "GET s", "$18\r\nHello_Redlong_tail\r\n");
    /* an empty value changes nothing and creates nothing */
    const char *argv[] = {"SETRANGE", "s", "1", ""};
    assert_string_equal(run_v(cmd_setrange, 4, argv, NULL), ":18\r\n");
    const char *argv2[] = {"SETRANGE", "none", "5", ""};
    assert_string_equal(run_v(cmd_setrange, 4, argv2, NULL), ":0\r\n");
    expect(cmd_exists, "EXISTS none", ":0\r\n");
    expect(cmd_setrange, "SETRANGE s -1 x", "-ERR offset is out of range\r\n");
    expect(cmd_setrange, "SETRANGE s abc x", "-ERR value is not an integer or out of range\r\n");
    /* the TTL stays */
    expect(cmd_setex, "SETEX t 100 v", "+OK\r\n");
    expect(cmd_setrange, "SETRANGE t 0 w", ":1\r\n");
    expect(cmd_ttl, "TTL t", ":100\r\n");
    expect(cmd_get, "GET t", "$1\r\nw\r\n");
}

static void test_cmd_string_size_limits(void **state)
{
    store_fini(&st);
    buf_fini(&out);
    struct store_config cfg = {.max_val_len = 10, .max_key_len = 8};
    assert_int_equal(setup_with(&cfg), 0);
    const char *too_big = "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n";
    expect(cmd_setrange, "SETRANGE m 9 x", ":10\r\n");
    expect(cmd_setrange, "SETRANGE m 10 x", too_big);
    expect(cmd_setrange, "SETRANGE n 9223372036854775807 x", too_big);
    expect(cmd_exists, "EXISTS n", ":0\r\n");
    expect(cmd_set, "SET a 12345", "+OK\r\n");
    expect(cmd_append, "APPEND a 67890", ":10\r\n");
    expect(cmd_append, "APPEND a 1", too_big);
    expect(cmd_get, "GET a", "$10\r\n1234567890\r\n");
    expect(cmd_set, "SET b 12345678901", too_big);
    const char *key_too_long = "-ERR key exceeds maximum allowed size (max-key-size)\r\n";
    expect(cmd_set, "SET key_is_long v", key_too_long);
    expect(cmd_setrange, "SETRANGE key_is_long 0 v", key_too_long);
    expect(cmd_append, "APPEND key_is_long v", key_too_long);
    expect(cmd_incr, "INCR key_is_long", key_too_long);
    expect(cmd_exists, "EXISTS key_is_long", ":0\r\n");
}

static void test_cmd_string_incr_decr(void **state)
{
    expect(cmd_incr, "INCR x", ":1\r\n");
    expect(cmd_incr, "INCR x", ":2\r\n");
    expect(cmd_decr, "DECR x", ":1\r\n");
    expect(cmd_incrby, "INCRBY x 100", ":101\r\n");
    expect(cmd_decrby, "DECRBY x 200", ":-99\r\n");
    expect(cmd_get, "GET x", "$3\r\n-99\r\n");
    expect(cmd_incrby, "INCRBY y -3", ":-3\r\n");
    expect(cmd_decrby, "DECRBY y -10", ":7\r\n");
    expect(cmd_set, "SET n 5", "+OK\r\n");
    expect(cmd_incrby, "INCRBY n -5", ":0\r\n");
    expect(cmd_get, "GET n", "$1\r\n0\r\n");
    /* INCR keeps the TTL */
    expect(cmd_setex, "SETEX t 100 5", "+OK\r\n");
    expect(cmd_incr, "INCR t", ":6\r\n");
    expect(cmd_ttl, "TTL t", ":100\r\n");
}

static void test_cmd_string_incr_rejects_non_integers(void **state)
{
    const char *not_int = "-ERR value is not an integer or out of range\r\n";
    const char *values[] = {"007",
                            "+5",
                            "-0",
                            "-",
                            "1e3",
                            " 1",
                            "1 ",
                            "abc",
                            "",
                            "9223372036854775808",
                            "-9223372036854775809",
                            "1.0",
                            "0x10"};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        const char *set[] = {"SET", "n", values[i]};
        run_v(cmd_set, 3, set, NULL);
        expect(cmd_incr, "INCR n", not_int);
    }
    expect(cmd_incrby, "INCRBY n abc", not_int);
    expect(cmd_incrby, "INCRBY n 9223372036854775808", not_int);
    expect(cmd_decrby, "DECRBY n 01", not_int);
    expect(cmd_get, "GET n", "$4\r\n0x10\r\n");
}

static void test_cmd_string_incr_overflow(void **state)
{
    const char *overflow = "-ERR increment or decrement would overflow\r\n";
    expect(cmd_set, "SET n 9223372036854775807", "+OK\r\n");
    expect(cmd_incr, "INCR n", overflow);
    expect(cmd_decr, "DECR n", ":9223372036854775806\r\n");
    expect(cmd_set, "SET n -9223372036854775808", "+OK\r\n");
    expect(cmd_decr, "DECR n", overflow);
    expect(cmd_incrby, "INCRBY n -1", overflow);
    expect(cmd_incrby, "INCRBY n 9223372036854775807", ":-1\r\n");
    expect(cmd_decrby, "DECRBY n -9223372036854775808", "-ERR decrement would overflow\r\n");
    expect(cmd_decrby, "DECRBY missing -9223372036854775808", "-ERR decrement would overflow\r\n");
    expect(cmd_exists, "EXISTS missing", ":0\r\n");
    expect(cmd_decrby, "DECRBY n 9223372036854775807", ":-9223372036854775808\r\n");
}

static void test_cmd_string_incrbyfloat(void **state)
{
    expect(cmd_set, "SET f 10.5", "+OK\r\n");
    expect(cmd_incrbyfloat, "INCRBYFLOAT f 0.1", "$4\r\n10.6\r\n");
    expect(cmd_set, "SET f 3.0e3", "+OK\r\n");
    expect(cmd_incrbyfloat, "INCRBYFLOAT f 0", "$4\r\n3000\r\n");
    expect(cmd_incrbyfloat, "INCRBYFLOAT f 1e20", "$21\r\n100000000000000003000\r\n");
    expect(cmd_incrbyfloat, "INCRBYFLOAT g 5.0e3", "$4\r\n5000\r\n");
    expect(cmd_incrbyfloat, "INCRBYFLOAT h -0", "$1\r\n0\r\n");
    expect(cmd_incrbyfloat, "INCRBYFLOAT h 1.5", "$3\r\n1.5\r\n");
    expect(cmd_incrbyfloat, "INCRBYFLOAT h -1.5", "$1\r\n0\r\n");
    expect(cmd_incrbyfloat, "INCRBYFLOAT h 0.3", "$3\r\n0.3\r\n");
    expect(cmd_incrbyfloat, "INCRBYFLOAT i 1e-20", "$1\r\n0\r\n");
    expect(cmd_incrbyfloat, "INCRBYFLOAT j 0x10", "$2\r\n16\r\n");
    expect(cmd_set, "SET s 1", "+OK\r\n");
    expect(cmd_incrbyfloat, "INCRBYFLOAT s 1.0", "$1\r\n2\r\n");
    expect(cmd_get, "GET s", "$1\r\n2\r\n");
    expect(cmd_incrbyfloat, "INCRBYFLOAT s -3.25", "$5\r\n-1.25\r\n");
    /* the TTL stays */
    expect(cmd_setex, "SETEX t 100 1", "+OK\r\n");
    expect(cmd_incrbyfloat, "INCRBYFLOAT t 1", "$1\r\n2\r\n");
    expect(cmd_ttl, "TTL t", ":100\r\n");
    /* a huge value prints all its digits, as Redis's %.17Lf */
    run(cmd_incrbyfloat, "INCRBYFLOAT big 1e300");
    assert_true(out.len > 300 && memcmp(out.data, "$301\r\n1000000000000000000", 25) == 0);
}

static void test_cmd_string_incrbyfloat_errors(void **state)
{
    const char *not_float = "-ERR value is not a valid float\r\n";
    const char *nan_inf = "-ERR increment would produce NaN or Infinity\r\n";
    expect(cmd_set, "SET f 1", "+OK\r\n");
    expect(cmd_incrbyfloat, "INCRBYFLOAT f abc", not_float);
    expect(cmd_incrbyfloat, "INCRBYFLOAT f nan", not_float);
    expect(cmd_incrbyfloat, "INCRBYFLOAT f 1e5000", not_float);
    const char *spaced[] = {"INCRBYFLOAT", "f", " 1"};
    assert_string_equal(run_v(cmd_incrbyfloat, 3, spaced, NULL), not_float);
    expect(cmd_incrbyfloat, "INCRBYFLOAT f 1x", not_float);
    expect(cmd_incrbyfloat, "INCRBYFLOAT f inf", nan_inf);
    expect(cmd_set, "SET f inf", "+OK\r\n");
    expect(cmd_incrbyfloat, "INCRBYFLOAT f 1", nan_inf);
    expect(cmd_set, "SET f abc", "+OK\r\n");
    expect(cmd_incrbyfloat, "INCRBYFLOAT f 1", not_float);
    expect(cmd_get, "GET f", "$3\r\nabc\r\n");
}

static void test_cmd_string_oom_under_noeviction(void **state)
{
    store_fini(&st);
    buf_fini(&out);
    struct store_config cfg = {.maxmemory = 64 * 1024, .policy = STORE_NOEVICTION};
    assert_int_equal(setup_with(&cfg), 0);
    const char *oom = "-OOM command not allowed when used memory > 'maxmemory'.\r\n";
    char key[32], val[512];
    memset(val, 'v', sizeof val - 1);
    val[sizeof val - 1] = '\0';
    int stored = 0;
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        const char *argv[] = {"SET", key, val};
        const char *r = run_v(cmd_set, 3, argv, NULL);
        if (strcmp(r, "+OK\r\n") != 0) {
            assert_string_equal(r, oom);
            break;
        }
        stored++;
    }
    assert_true(stored > 10 && stored < 1000);
    /* no room left at all from here on */
    st.maxmemory = store_used_bytes(&st) - 1;
    /* every denyoom command refuses, before even parsing its arguments */
    expect(cmd_set, "SET k v EX abc", oom);
    expect(cmd_setex, "SETEX k 10 v", oom);
    expect(cmd_psetex, "PSETEX k 10 v", oom);
    expect(cmd_setnx, "SETNX k v", oom);
    expect(cmd_getset, "GETSET k0 v", oom);
    expect(cmd_append, "APPEND k0 v", oom);
    expect(cmd_setrange, "SETRANGE k0 abc v", oom);
    expect(cmd_incr, "INCR c", oom);
    expect(cmd_decr, "DECR c", oom);
    expect(cmd_incrby, "INCRBY c 1", oom);
    expect(cmd_decrby, "DECRBY c 1", oom);
    expect(cmd_incrbyfloat, "INCRBYFLOAT c 1", oom);
    /* reads and deletes still work, and free room */
    run(cmd_get, "GET k0");
    assert_int_equal(out.len, 6 + 511 + 2);
    run(cmd_getdel, "GETDEL k1");
    assert_int_equal(out.len, 6 + 511 + 2);
    for (int i = 2; i < 10; i++) {
        snprintf(key, sizeof key, "DEL k%d", i);
        expect(cmd_del, key, ":1\r\n");
    }
    expect(cmd_set, "SET k v", "+OK\r\n");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_cmd_string_get_set),
        T(test_cmd_string_set_binary_and_empty),
        T(test_cmd_string_set_nx_xx),
        T(test_cmd_string_set_get_option),
        T(test_cmd_string_set_expire_options),
        T(test_cmd_string_set_in_the_past_leaves_no_key),
        T(test_cmd_string_set_keepttl),
        T(test_cmd_string_set_syntax_errors),
        T(test_cmd_string_set_invalid_expire),
        T(test_cmd_string_setex_psetex),
        T(test_cmd_string_setnx),
        T(test_cmd_string_getset_getdel),
        T(test_cmd_string_getex),
        T(test_cmd_string_getex_errors),
        T(test_cmd_string_append),
        T(test_cmd_string_strlen),
        T(test_cmd_string_getrange),
        T(test_cmd_string_setrange),
        T(test_cmd_string_size_limits),
        T(test_cmd_string_incr_decr),
        T(test_cmd_string_incr_rejects_non_integers),
        T(test_cmd_string_incr_overflow),
        T(test_cmd_string_incrbyfloat),
        T(test_cmd_string_incrbyfloat_errors),
        T(test_cmd_string_oom_under_noeviction),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
