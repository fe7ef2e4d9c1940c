/* test_mc.c: the memcached text protocol parser and writers (net/mc.c).
 * Parses run over exact-size heap copies so AddressSanitizer catches a read
 * past len. Expected replies were checked against memcached 1.6.18. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pieces.h"

#include "mc.h"

#define KEYS_MAX 32

static const struct mc_limits limits = {
    .max_line = 2048,
    .max_value = 1024 * 1024,
};

struct parsed {
    enum mc_status st;
    struct mc_request req;
    struct mc_key keys[KEYS_MAX];
    size_t consumed;
    size_t need;
    const char *err;
    char *copy;
};

static struct parsed parsed;

static struct parsed *parse_lim(const struct mc_limits *lim, const char *data, size_t len,
                                uint32_t keys_cap)
{
    struct parsed *p = &parsed;
    free(p->copy);
    p->copy = malloc(len ? len : 1);
    assert_non_null(p->copy);
    memcpy(p->copy, data, len);
    struct mc_state ms = {0};
    p->st = mc_parse(lim, &ms, p->copy, len, &p->req, p->keys, keys_cap, &p->consumed, &p->need,
                     &p->err);
    if (p->st == MC_OK) {
        assert_true(p->consumed > 0 && p->consumed <= len);
        assert_ptr_equal(p->req.keys, p->keys);
        for (uint32_t i = 0; i < p->req.nkeys; i++) {
            const char *k = p->req.keys[i].ptr;
            assert_true(k >= p->copy && k + p->req.keys[i].len <= p->copy + len);
        }
        assert_null(p->err);
    }
    if (p->st == MC_ERROR || p->st == MC_BAD) {
        assert_non_null(p->err);
        size_t n = strlen(p->err);
        assert_true(n >= 2 && memcmp(p->err + n - 2, "\r\n", 2) == 0);
    }
    return p;
}

static struct parsed *parse_n(const char *data, size_t len)
{
    return parse_lim(&limits, data, len, KEYS_MAX);
}

static struct parsed *parse(const char *s)
{
    return parse_n(s, strlen(s));
}

static struct parsed *parse_ok(const char *s, enum mc_cmd cmd)
{
    struct parsed *p = parse(s);
    assert_int_equal(p->st, MC_OK);
    assert_int_equal(p->req.cmd, cmd);
    assert_int_equal(p->consumed, strlen(s));
    return p;
}

static void assert_key(const struct parsed *p, uint32_t i, const char *want)
{
    assert_true(i < p->req.nkeys);
    assert_int_equal(p->req.keys[i].len, strlen(want));
    assert_memory_equal(p->req.keys[i].ptr, want, strlen(want));
}

static void assert_error(const char *s, const char *err, size_t consumed)
{
    struct parsed *p = parse(s);
    assert_int_equal(p->st, MC_ERROR);
    assert_string_equal(p->err, err);
    assert_int_equal(p->consumed, consumed);
}

static const char err_error[] = "ERROR\r\n";
static const char err_format[] = "CLIENT_ERROR bad command line format\r\n";

/* ---- retrieval ---- */

static void test_mc_parses_get(void **state)
{
    struct parsed *p = parse_ok("get foo\r\n", MC_GET);
    assert_int_equal(p->req.nkeys, 1);
    assert_key(p, 0, "foo");
    p = parse_ok("gets a bb ccc\r\n", MC_GETS);
    assert_int_equal(p->req.nkeys, 3);
    assert_key(p, 0, "a");
    assert_key(p, 1, "bb");
    assert_key(p, 2, "ccc");
    p = parse_ok("  get   k1    k2  \n", MC_GET);
    assert_int_equal(p->req.nkeys, 2);
    assert_key(p, 1, "k2");
}

static void test_mc_parses_gat(void **state)
{
    struct parsed *p = parse_ok("gat 100 k1 k2\r\n", MC_GAT);
    assert_int_equal(p->req.exptime, 100);
    assert_int_equal(p->req.nkeys, 2);
    assert_key(p, 0, "k1");
    p = parse_ok("gats -1 k\r\n", MC_GATS);
    assert_int_equal(p->req.exptime, -1);
    assert_key(p, 0, "k");
    /* memcached answers "END" to a gat without keys. */
    p = parse_ok("gat 10\r\n", MC_GAT);
    assert_int_equal(p->req.nkeys, 0);
    assert_error("gat x k\r\n", "CLIENT_ERROR invalid exptime argument\r\n", 9);
}

static void test_mc_get_many_keys(void **state)
{
    char line[2048];
    size_t n = (size_t)snprintf(line, sizeof line, "get");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(line + n, sizeof line - n, " key%d", i);
    n += (size_t)snprintf(line + n, sizeof line - n, "\r\n");
    struct parsed *p = parse_lim(&limits, line, n, 8);
    assert_int_equal(p->st, MC_NEED_KEYS);
    assert_int_equal(p->req.nkeys, 100);
    assert_int_equal(p->consumed, 0);

    static struct mc_key keys[100];
    struct mc_request req;
    size_t consumed, need;
    const char *err;
    struct mc_state ms = {0};
    assert_int_equal(mc_parse(&limits, &ms, line, n, &req, keys, 100, &consumed, &need, &err),
                     MC_OK);
    assert_int_equal(req.nkeys, 100);
    assert_int_equal(keys[99].len, 5);
    assert_memory_equal(keys[99].ptr, "key99", 5);
    assert_int_equal(consumed, n);
}

static void test_mc_keyed_commands_need_a_key_slot(void **state)
{
    struct parsed *p = parse_lim(&limits, "delete k\r\n", 10, 0);
    assert_int_equal(p->st, MC_NEED_KEYS);
    assert_int_equal(p->req.nkeys, 1);
    p = parse_lim(&limits, "set k 0 0 1\r\na\r\n", 16, 0);
    assert_int_equal(p->st, MC_NEED_KEYS);
    p = parse_lim(&limits, "set k 0 0 1\r\na\r\n", 16, 1);
    assert_int_equal(p->st, MC_OK);
}

/* ---- storage ---- */

static void test_mc_parses_storage_commands(void **state)
{
    static const struct {
        const char *name;
        enum mc_cmd cmd;
    } forms[] = {{"set", MC_SET},
                 {"add", MC_ADD},
                 {"replace", MC_REPLACE},
                 {"append", MC_APPEND},
                 {"prepend", MC_PREPEND}};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char line[64];
        snprintf(line, sizeof line, "%s key 42 3600 5\r\nhello\r\n", forms[i].name);
        struct parsed *p = parse_ok(line, forms[i].cmd);
        assert_key(p, 0, "key");
        assert_int_equal(p->req.flags, 42);
        assert_int_equal(p->req.exptime, 3600);
        assert_int_equal(p->req.data_len, 5);
        assert_memory_equal(p->req.data, "hello", 5);
        assert_false(p->req.noreply);
        snprintf(line, sizeof line, "%s key 0 0 0 noreply\r\n\r\n", forms[i].name);
        p = parse_ok(line, forms[i].cmd);
        assert_true(p->req.noreply);
        assert_int_equal(p->req.data_len, 0);
    }
}

static void test_mc_parses_cas(void **state)
{
    struct parsed *p = parse_ok("cas k 1 2 3 18446744073709551615\r\nabc\r\n", MC_CAS);
    assert_int_equal(p->req.cas, UINT64_MAX);
    assert_int_equal(p->req.flags, 1);
    assert_int_equal(p->req.exptime, 2);
    assert_memory_equal(p->req.data, "abc", 3);
    p = parse_ok("cas k 0 0 1 7 noreply\r\nx\r\n", MC_CAS);
    assert_int_equal(p->req.cas, 7);
    assert_true(p->req.noreply);
    assert_error("cas k 0 0 1\r\na\r\n", err_error, 13);
    assert_error("cas k 0 0 1 x\r\na\r\n", err_format, 15);
}

static void test_mc_storage_data_is_binary(void **state)
{
    static const char in[] = "set k 0 0 6\r\na\r\n\0b\n\r\n";
    struct parsed *p = parse_n(in, sizeof in - 1);
    assert_int_equal(p->st, MC_OK);
    assert_int_equal(p->req.data_len, 6);
    assert_memory_equal(p->req.data, "a\r\n\0b\n", 6);
    assert_int_equal(p->consumed, sizeof in - 1);
}

static void test_mc_storage_numbers(void **state)
{
    struct parsed *p = parse_ok("set k 4294967295 -1 1\r\na\r\n", MC_SET);
    assert_int_equal(p->req.flags, UINT32_MAX);
    assert_int_equal(p->req.exptime, -1);
    p = parse_ok("set k +5 +0 +1\r\na\r\n", MC_SET);
    assert_int_equal(p->req.flags, 5);
    assert_error("set k 4294967296 0 1\r\na\r\n", err_format, 22);
    assert_error("set k -1 0 1\r\na\r\n", err_format, 14);
    assert_error("set k x 0 1\r\na\r\n", err_format, 13);
    assert_error("set k 0 1x 1\r\na\r\n", err_format, 14);
    assert_error("set k 0 0 -1\r\n", err_format, 14);
    assert_error("set k 0 0 1a\r\n", err_format, 14);
    assert_error("set k 0 0 2147483646\r\n", err_format, 22);
    assert_error("set k 0 0 +\r\n", err_format, 13);
    assert_error("set k 0 -+1 1\r\n", err_format, 15);
}

static void test_mc_storage_arity(void **state)
{
    assert_error("set k 0 0\r\n", err_error, 11);
    assert_error("set k 0 0 1 noreply x\r\n", err_error, 23);
    assert_error("set\r\n", err_error, 5);
    /* memcached ignores a token other than "noreply" in the optional slot. */
    struct parsed *p = parse_ok("set k 0 0 1 foo\r\na\r\n", MC_SET);
    assert_false(p->req.noreply);
}

static void test_mc_storage_waits_for_data(void **state)
{
    const char *in = "set k 0 0 10\r\n0123456789\r\n";
    size_t len = strlen(in);
    for (size_t cut = 0; cut < len; cut++) {
        struct parsed *p = parse_n(in, cut);
        assert_int_equal(p->st, MC_MORE);
        assert_int_equal(p->consumed, 0);
        /* Once the line is in, *need is the whole request. */
        assert_int_equal(p->need, cut >= 14 ? len : 0);
    }
    struct parsed *p = parse_n(in, len);
    assert_int_equal(p->st, MC_OK);
    assert_memory_equal(p->req.data, "0123456789", 10);
}

static void test_mc_rejects_bad_data_chunk(void **state)
{
    const char *err = "CLIENT_ERROR bad data chunk\r\n";
    /* consumed covers line + bytes + 2, as memcached reads it. */
    assert_error("set k 0 0 1\r\nab\r\n", err, 16);
    assert_error("set k 0 0 1\na\nget k\n", err, 15);
    assert_error("set k 0 0 1 noreply\r\nab\r\n", err, 24);
    struct parsed *p = parse("set k 0 0 1 noreply\r\nab\r\n");
    assert_true(p->req.noreply);
}

static void test_mc_rejects_too_large_value(void **state)
{
    struct mc_limits lim = limits;
    lim.max_value = 4;
    struct parsed *p = parse_lim(&lim, "set k 0 0 4\r\nabcd\r\n", 19, KEYS_MAX);
    assert_int_equal(p->st, MC_OK);
    /* Reported at once, before the data; consumed reaches past len. */
    p = parse_lim(&lim, "set k 0 0 5\r\n", 13, KEYS_MAX);
    assert_int_equal(p->st, MC_ERROR);
    assert_string_equal(p->err, "SERVER_ERROR object too large for cache\r\n");
    assert_int_equal(p->consumed, 13 + 5 + 2);
    p = parse_lim(&limits, "set k 0 0 2000000\r\n", 19, KEYS_MAX);
    assert_int_equal(p->st, MC_ERROR);
    assert_int_equal(p->consumed, 19 + 2000000 + 2);
    /* a set names its key, whose old value is to go (memcached unlinks it);
     * other storage commands do not */
    assert_true(p->req.too_large);
    assert_int_equal(p->req.nkeys, 1);
    assert_int_equal(p->req.keys[0].len, 1);
    assert_memory_equal(p->req.keys[0].ptr, "k", 1);
    p = parse_lim(&lim, "add k 0 0 5\r\n", 13, KEYS_MAX);
    assert_int_equal(p->st, MC_ERROR);
    assert_false(p->req.too_large);
}

/* ---- keys ---- */

static void test_mc_key_rules(void **state)
{
    char line[600];
    char key[300];
    memset(key, 'k', sizeof key);
    key[250] = '\0';
    snprintf(line, sizeof line, "get %s\r\n", key);
    struct parsed *p = parse(line);
    assert_int_equal(p->st, MC_OK);
    assert_int_equal(p->req.keys[0].len, 250);
    key[250] = 'k';
    key[251] = '\0';
    static const char *const forms[] = {"get %s\r\n",       "gets a %s\r\n",     "gat 1 %s\r\n",
                                        "set %s 0 0 1\r\n", "delete %s\r\n",     "touch %s 1\r\n",
                                        "incr %s 1\r\n",    "cas %s 0 0 1 1\r\n"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        int n = snprintf(line, sizeof line, forms[i], key);
        assert_error(line, err_format, (size_t)n);
    }
    assert_error("get a\tb\r\n", err_format, 9);
    assert_error("get a\x01\r\n", err_format, 8);
    assert_error("get ok a\x7f\r\n", err_format, 11);
    assert_error("get a\rb\r\n", err_format, 9);
    assert_error("set a\x02 0 0 1\r\n", err_format, 14);
    p = parse_ok("get \xc3\xa9t\xc3\xa9\r\n", MC_GET);
    assert_key(p, 0, "\xc3\xa9t\xc3\xa9");
}

/* ---- other commands ---- */

static void test_mc_parses_delete(void **state)
{
    struct parsed *p = parse_ok("delete k\r\n", MC_DELETE);
    assert_key(p, 0, "k");
    assert_false(p->req.noreply);
    p = parse_ok("delete k 0\r\n", MC_DELETE);
    assert_false(p->req.noreply);
    p = parse_ok("delete k noreply\r\n", MC_DELETE);
    assert_true(p->req.noreply);
    p = parse_ok("delete k 0 noreply\r\n", MC_DELETE);
    assert_true(p->req.noreply);
    const char *usage = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";
    assert_error("delete k 1\r\n", usage, 12);
    assert_error("delete k 0 0\r\n", usage, 14);
    assert_error("delete k noreply 0\r\n", usage, 20);
    assert_error("delete k 1 noreply\r\n", usage, 20);
    assert_error("delete\r\n", err_error, 8);
    assert_error("delete a b c d\r\n", err_error, 16);
}

static void test_mc_parses_touch(void **state)
{
    struct parsed *p = parse_ok("touch k 60\r\n", MC_TOUCH);
    assert_key(p, 0, "k");
    assert_int_equal(p->req.exptime, 60);
    p = parse_ok("touch k 60 noreply\r\n", MC_TOUCH);
    assert_true(p->req.noreply);
    assert_error("touch k x\r\n", "CLIENT_ERROR invalid exptime argument\r\n", 11);
    assert_error("touch k\r\n", err_error, 9);
}

static void test_mc_parses_incr_decr(void **state)
{
    struct parsed *p = parse_ok("incr k 5\r\n", MC_INCR);
    assert_key(p, 0, "k");
    assert_int_equal(p->req.delta, 5);
    p = parse_ok("decr k 18446744073709551615 noreply\r\n", MC_DECR);
    assert_int_equal(p->req.delta, UINT64_MAX);
    assert_true(p->req.noreply);
    const char *err = "CLIENT_ERROR invalid numeric delta argument\r\n";
    assert_error("incr k x\r\n", err, 10);
    assert_error("incr k -1\r\n", err, 11);
    assert_error("decr k 18446744073709551616\r\n", err, 29);
    assert_error("incr k\r\n", err_error, 8);
}

static void test_mc_parses_flush_all(void **state)
{
    struct parsed *p = parse_ok("flush_all\r\n", MC_FLUSH_ALL);
    assert_int_equal(p->req.number, 0);
    assert_false(p->req.noreply);
    p = parse_ok("flush_all 30\r\n", MC_FLUSH_ALL);
    assert_int_equal(p->req.number, 30);
    p = parse_ok("flush_all noreply\r\n", MC_FLUSH_ALL);
    assert_true(p->req.noreply);
    p = parse_ok("flush_all 30 noreply\r\n", MC_FLUSH_ALL);
    assert_int_equal(p->req.number, 30);
    assert_true(p->req.noreply);
    assert_error("flush_all x\r\n", "CLIENT_ERROR invalid exptime argument\r\n", 13);
    assert_error("flush_all 1 2 3\r\n", err_error, 17);
}

static void test_mc_parses_stats_version_verbosity_quit(void **state)
{
    struct parsed *p = parse_ok("stats\r\n", MC_STATS);
    assert_null(p->req.stats_arg);
    p = parse_ok("stats items\r\n", MC_STATS);
    assert_int_equal(p->req.stats_arg_len, 5);
    assert_memory_equal(p->req.stats_arg, "items", 5);
    p = parse_ok("stats  cachedump 1 0  \r\n", MC_STATS);
    assert_int_equal(p->req.stats_arg_len, 13);
    assert_memory_equal(p->req.stats_arg, "cachedump 1 0", 13);
    parse_ok("version\r\n", MC_VERSION);
    parse_ok("version extra\r\n", MC_VERSION);
    parse_ok("quit\r\n", MC_QUIT);
    parse_ok("mn\r\n", MC_MN);
    parse_ok("mn q k\r\n", MC_MN);
    p = parse_ok("verbosity 1\r\n", MC_VERBOSITY);
    assert_int_equal(p->req.number, 1);
    p = parse_ok("verbosity 2 noreply\r\n", MC_VERBOSITY);
    assert_true(p->req.noreply);
    assert_error("verbosity\r\n", err_error, 11);
    assert_error("verbosity x\r\n", err_format, 13);
}

static void test_mc_unknown_and_empty_lines(void **state)
{
    assert_error("bogus\r\n", err_error, 7);
    assert_error("GET k\r\n", err_error, 7);
    assert_error("get\r\n", err_error, 5);
    assert_error("\r\n", err_error, 2);
    assert_error("\n", err_error, 1);
    assert_error("   \r\n", err_error, 5);
    assert_error("get\tk\r\n", err_error, 7);
}

/* ---- framing ---- */

static void test_mc_waits_for_the_line(void **state)
{
    const char *s = "get k";
    for (size_t cut = 0; cut <= strlen(s); cut++) {
        struct parsed *p = parse_n(s, cut);
        assert_int_equal(p->st, MC_MORE);
        assert_int_equal(p->need, 0);
    }
    assert_int_equal(parse("get k\r")->st, MC_MORE);
}

static void test_mc_rejects_too_long_line(void **state)
{
    struct mc_limits lim = limits;
    lim.max_line = 16;
    char line[32];
    memset(line, 'k', sizeof line);
    memcpy(line, "get ", 4);
    memcpy(line + 14, "\r\n", 2); /* exactly 16 bytes with CRLF */
    struct parsed *p = parse_lim(&lim, line, 16, KEYS_MAX);
    assert_int_equal(p->st, MC_OK);
    memset(line + 14, 'k', 2);
    p = parse_lim(&lim, line, 15, KEYS_MAX);
    assert_int_equal(p->st, MC_MORE);
    p = parse_lim(&lim, line, 16, KEYS_MAX);
    assert_int_equal(p->st, MC_BAD);
    assert_string_equal(p->err, "CLIENT_ERROR line too long\r\n");
    line[16] = '\n';
    p = parse_lim(&lim, line, 17, KEYS_MAX);
    assert_int_equal(p->st, MC_BAD);
}

/* A binary-protocol request (magic 0x80) is recognised once its 24-byte
 * header is in, and refused in its own protocol: a response header with its
 * opcode and opaque, status 0x0083 and a message as body. */
static void test_mc_refuses_binary_protocol(void **state)
{
    uint8_t get[MC_BINARY_HEADER_LEN + 3] = {
        0x80, 0x00, 0x00, 0x03, /* GET, key length 3 */
        [11] = 3,               /* body length */
        [12] = 0xde, 0xad, 0xbe, 0xef, [24] = 'k', 'e', 'y'};
    for (size_t n = 1; n < MC_BINARY_HEADER_LEN; n++)
        assert_int_equal(parse_n((const char *)get, n)->st, MC_MORE);
    struct parsed *p = parse_n((const char *)get, sizeof get);
    assert_int_equal(p->st, MC_BINARY);
    assert_int_equal(p->consumed, MC_BINARY_HEADER_LEN);
    struct buf out;
    buf_init(&out);
    mc_write_binary_refusal(&out, get);
    const uint8_t *res = (const uint8_t *)out.data;
    assert_true(out.len > MC_BINARY_HEADER_LEN);
    assert_int_equal(res[0], 0x81);
    assert_int_equal(res[1], 0x00);
    assert_int_equal((res[6] << 8) | res[7], 0x0083);
    uint32_t body = (uint32_t)res[8] << 24 | (uint32_t)res[9] << 16 | res[10] << 8 | res[11];
    assert_int_equal(body, out.len - MC_BINARY_HEADER_LEN);
    assert_memory_equal(res + 12, get + 12, 4);
    assert_non_null(memmem(res + MC_BINARY_HEADER_LEN, body, "text protocol", 13));
    buf_fini(&out);
    /* A text line is never taken for one. */
    parse_ok("get \x80\r\n", MC_GET);
    /* Nor, once a connection spoke text, a value's first byte after a refused
     * line (a pickled value starts with 0x80): only the first request can be
     * binary, as memcached picks a connection's protocol once. */
    struct mc_state ms = {0};
    struct mc_request req;
    struct mc_key keys[KEYS_MAX];
    size_t consumed, need;
    const char *err;
    char refused[300 + 40];
    memset(refused, 'k', sizeof refused);
    memcpy(refused, "set ", 4);
    int n = 4 + 251; /* a key one byte too long: the line is refused, its data read next */
    n += snprintf(refused + n, sizeof refused - (size_t)n, " 0 0 24\r\n");
    memcpy(refused + n, get, MC_BINARY_HEADER_LEN);
    n += MC_BINARY_HEADER_LEN;
    memcpy(refused + n, "\r\n", 2);
    n += 2;
    assert_int_equal(mc_parse(&limits, &ms, refused, (size_t)n, &req, keys, KEYS_MAX, &consumed,
                              &need, &err),
                     MC_ERROR);
    assert_true(consumed < (size_t)n);
    enum mc_status st = mc_parse(&limits, &ms, refused + consumed, (size_t)n - consumed, &req, keys,
                                 KEYS_MAX, &consumed, &need, &err);
    assert_int_equal(st, MC_ERROR); /* "ERROR": an unknown command, as memcached says */
}

static void test_mc_pipeline(void **state)
{
    const char *in = "set a 0 0 1\r\nx\r\nget a b\r\ndelete a noreply\r\n";
    size_t len = strlen(in);
    struct parsed *p = parse_n(in, len);
    assert_int_equal(p->req.cmd, MC_SET);
    assert_int_equal(p->consumed, 16);
    p = parse_n(in + 16, len - 16);
    assert_int_equal(p->req.cmd, MC_GET);
    assert_int_equal(p->req.nkeys, 2);
    assert_int_equal(p->consumed, 9);
    p = parse_n(in + 25, len - 25);
    assert_int_equal(p->req.cmd, MC_DELETE);
    assert_int_equal(p->consumed, len - 25);
}

/* Appends a one-line record of one outcome (bytes escaped) to t. */
static void record(struct buf *t, enum mc_status st, const struct mc_request *req, size_t consumed,
                   const char *err)
{
    buf_printf(t, "st=%d consumed=%zu", (int)st, consumed);
    if (st == MC_ERROR || st == MC_BAD)
        buf_printf(t, " err=%.*s", (int)strcspn(err, "\r"), err);
    if (st == MC_OK) {
        buf_printf(t, " %s flags=%u exp=%lld cas=%llu delta=%llu num=%lld noreply=%d",
                   mc_cmd_name(req->cmd), req->flags, (long long)req->exptime,
                   (unsigned long long)req->cas, (unsigned long long)req->delta,
                   (long long)req->number, req->noreply);
        for (uint32_t i = 0; i < req->nkeys; i++)
            buf_printf(t, " [%.*s]", (int)req->keys[i].len, req->keys[i].ptr);
        for (uint32_t i = 0; req->data && i < req->data_len; i++)
            buf_printf(t, "%02x", (unsigned char)req->data[i]);
        if (req->stats_arg)
            buf_printf(t, " stats=%.*s", (int)req->stats_arg_len, req->stats_arg);
    }
    buf_append_str(t, "\n");
}

/* Feeds in[0..len) `step` bytes at a time (0: whole), like a connection:
 * parses every whole request, swallows past-the-end error consumption, grows
 * keys on MC_NEED_KEYS, and checks *need on the way. */
static void transcript(const char *in, size_t len, size_t step, struct buf *t)
{
    size_t avail = 0, start = 0, need = 0;
    uint32_t cap = 1;
    struct mc_key *keys = malloc(cap * sizeof *keys);
    struct mc_state ms = {0};
    assert_non_null(keys);
    for (;;) {
        size_t n = avail - start;
        char *copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, in + start, n);
        struct mc_request req;
        size_t consumed, this_need;
        const char *err;
        enum mc_status st =
            mc_parse(&limits, &ms, copy, n, &req, keys, cap, &consumed, &this_need, &err);
        if (st == MC_NEED_KEYS) {
            cap = req.nkeys;
            keys = realloc(keys, cap * sizeof *keys);
            assert_non_null(keys);
        } else if (st == MC_OK || st == MC_ERROR) {
            assert_true(need == 0 || consumed == need);
            need = 0;
            record(t, st, &req, consumed, err);
            start += consumed;
            if (start > len)
                start = len;
            if (start > avail)
                avail = start;
        } else if (st == MC_MORE && avail < len) {
            assert_true(this_need == 0 || this_need > n);
            need = this_need;
            avail = step && avail + step < len ? avail + step : len;
        } else {
            record(t, st, &req, consumed, err);
            free(copy);
            break;
        }
        free(copy);
    }
    free(keys);
}

static void check_split_invariance(const char *in, size_t len)
{
    struct buf whole, split;
    buf_init(&whole);
    buf_init(&split);
    transcript(in, len, 0, &whole);
    for (size_t step = 1; step <= len; step++) {
        buf_clear(&split);
        transcript(in, len, step, &split);
        assert_int_equal(split.len, whole.len);
        assert_memory_equal(split.data, whole.data, whole.len);
    }
    buf_fini(&whole);
    buf_fini(&split);
}

static void test_mc_splits_give_same_requests(void **state)
{
    static const char in[] = "set a 1 2 5\r\nab\0\r\n\r\n"
                             "get a b c\r\n"
                             "gats 5 x y\n"
                             "bogus line\r\n"
                             "cas a 0 0 1 99 noreply\r\nz\r\n"
                             "set a 0 0 1\r\nxy\r\n"
                             "incr n 7\r\n"
                             "delete a 0\r\n"
                             "stats slabs\r\n"
                             "flush_all 10 noreply\r\n"
                             "version\r\n";
    struct buf t;
    buf_init(&t);
    transcript(in, sizeof in - 1, 0, &t);
    size_t lines = 0;
    for (size_t i = 0; i < t.len; i++)
        lines += t.data[i] == '\n';
    /* 12 outcomes (the bad chunk leaves "\n" behind: one more ERROR) and MORE */
    assert_int_equal(lines, 13);
    buf_fini(&t);
    check_split_invariance(in, sizeof in - 1);
}

static void test_mc_splits_give_same_errors(void **state)
{
    /* A too-large value is swallowed, whatever the reads. */
    static const char big[] = "set big 0 0 40\r\n0123456789012345678901234567890123456789\r\n"
                              "get a\r\n";
    static const char chunk[] = "set k 0 0 3\r\nabcd\r\nget k\r\n";
    static const char junk[] = "get k\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    check_split_invariance(big, sizeof big - 1);
    check_split_invariance(chunk, sizeof chunk - 1);
    check_split_invariance(junk, sizeof junk - 1);
}

/* ---- resumption: each byte is looked at a bounded number of times ---- */

/* Feeds in[0..len) in pieces of 1..16 bytes into a buffer that moves as it
 * grows, parsing after each piece with one state kept across calls, and
 * checks the request parses whole. Returns the bytes the parser examined. */
static uint64_t feed_in_pieces(const struct mc_limits *lim, const char *in, size_t len,
                               uint32_t nkeys)
{
    struct mc_state ms = {0};
    uint32_t cap = 16;
    struct mc_key *keys = malloc(cap * sizeof *keys);
    struct pieces feed = {.in = in, .len = len, .rng = 7};
    assert_non_null(keys);
    for (;;) {
        assert_true(pieces_next(&feed));
        const char *data = feed.data;
        size_t avail = feed.avail;
        struct mc_request req;
        size_t consumed, need;
        const char *err;
        enum mc_status st =
            mc_parse(lim, &ms, data, avail, &req, keys, cap, &consumed, &need, &err);
        if (st == MC_NEED_KEYS) {
            cap = req.nkeys;
            keys = realloc(keys, cap * sizeof *keys);
            assert_non_null(keys);
            st = mc_parse(lim, &ms, data, avail, &req, keys, cap, &consumed, &need, &err);
        }
        if (st == MC_MORE) {
            assert_true(avail < len);
            continue;
        }
        assert_int_equal(st, MC_OK);
        assert_int_equal(consumed, len);
        assert_int_equal(req.nkeys, nkeys);
        break;
    }
    print_message("%zu bytes in pieces of 1..16: %llu examined\n", len,
                  (unsigned long long)ms.examined);
    free(feed.data);
    free(keys);
    return ms.examined;
}

static void test_mc_resumed_get_is_linear(void **state)
{
    struct mc_limits lim = limits;
    lim.max_line = 1u << 20;
    struct buf b;
    buf_init(&b);
    buf_append_str(&b, "get");
    for (uint32_t i = 0; i < 50000; i++)
        buf_printf(&b, " key%u", i);
    buf_append_str(&b, "\r\n");
    assert_false(b.failed);
    /* The line is searched once, then tokenized and walked for keys twice
     * (once more after MC_NEED_KEYS). */
    assert_true(feed_in_pieces(&lim, b.data, b.len, 50000) <= 6 * (uint64_t)b.len);
    buf_fini(&b);
}

static void test_mc_value_in_pieces_costs_its_line_only(void **state)
{
    struct mc_limits lim = limits;
    lim.max_value = 1u << 20;
    const char line[] = "set k 0 0 1000000\r\n";
    size_t line_len = sizeof line - 1;
    size_t len = line_len + 1000000 + 2;
    char *in = malloc(len);
    assert_non_null(in);
    memcpy(in, line, line_len);
    memset(in + line_len, 'v', 1000000);
    memcpy(in + len - 2, "\r\n", 2);
    /* Once the line is in, a piece of the value costs nothing until the
     * whole value is: the line is searched once and decoded twice. */
    assert_true(feed_in_pieces(&lim, in, len, 1) <= 4 * line_len);
    free(in);
}

/* ---- writers ---- */

#define assert_written(b, lit)                                                                     \
    do {                                                                                           \
        assert_int_equal((b)->len, sizeof(lit) - 1);                                               \
        assert_memory_equal((b)->data, lit, sizeof(lit) - 1);                                      \
        buf_clear(b);                                                                              \
    } while (0)

static void test_mc_writes_values(void **state)
{
    struct buf b;
    buf_init(&b);
    mc_write_value(&b, "foo", 3, 0, "bar", 3, NULL);
    assert_written(&b, "VALUE foo 0 3\r\nbar\r\n");
    uint64_t cas = 18446744073709551615u;
    mc_write_value(&b, "k", 1, UINT32_MAX, "a\r\nb", 4, &cas);
    assert_written(&b, "VALUE k 4294967295 4 18446744073709551615\r\na\r\nb\r\n");
    cas = 0;
    mc_write_value(&b, "e", 1, 7, "", 0, &cas);
    assert_written(&b, "VALUE e 7 0 0\r\n\r\n");
    mc_write_line(&b, "END");
    assert_written(&b, "END\r\n");
    mc_write_value(&b, "x", 1, 1, "y", 1, NULL);
    mc_write_line(&b, "END");
    assert_written(&b, "VALUE x 1 1\r\ny\r\nEND\r\n");
    assert_false(b.failed);
    buf_fini(&b);
}

static void test_mc_every_command_has_a_name(void **state)
{
    static const char *const lines[MC_CMD_COUNT] = {
        [MC_GET] = "get k\r\n",
        [MC_GETS] = "gets k\r\n",
        [MC_GAT] = "gat 1 k\r\n",
        [MC_GATS] = "gats 1 k\r\n",
        [MC_SET] = "set k 0 0 1\r\nx\r\n",
        [MC_ADD] = "add k 0 0 1\r\nx\r\n",
        [MC_REPLACE] = "replace k 0 0 1\r\nx\r\n",
        [MC_APPEND] = "append k 0 0 1\r\nx\r\n",
        [MC_PREPEND] = "prepend k 0 0 1\r\nx\r\n",
        [MC_CAS] = "cas k 0 0 1 1\r\nx\r\n",
        [MC_DELETE] = "delete k\r\n",
        [MC_TOUCH] = "touch k 1\r\n",
        [MC_INCR] = "incr k 1\r\n",
        [MC_DECR] = "decr k 1\r\n",
        [MC_FLUSH_ALL] = "flush_all\r\n",
        [MC_STATS] = "stats\r\n",
        [MC_VERSION] = "version\r\n",
        [MC_VERBOSITY] = "verbosity 1\r\n",
        [MC_QUIT] = "quit\r\n",
        [MC_MN] = "mn\r\n",
    };
    for (int i = 0; i < MC_CMD_COUNT; i++) {
        const char *name = mc_cmd_name((enum mc_cmd)i);
        assert_non_null(lines[i]);
        assert_int_equal(strncmp(lines[i], name, strlen(name)), 0);
        assert_int_equal(lines[i][strlen(name)], lines[i][strlen(name)] == ' ' ? ' ' : '\r');
        parse_ok(lines[i], (enum mc_cmd)i);
    }
    assert_string_equal(mc_cmd_name(MC_CMD_COUNT), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mc_parses_get),
        cmocka_unit_test(test_mc_parses_gat),
        cmocka_unit_test(test_mc_get_many_keys),
        cmocka_unit_test(test_mc_keyed_commands_need_a_key_slot),
        cmocka_unit_test(test_mc_parses_storage_commands),
        cmocka_unit_test(test_mc_parses_cas),
        cmocka_unit_test(test_mc_storage_data_is_binary),
        cmocka_unit_test(test_mc_storage_numbers),
        cmocka_unit_test(test_mc_storage_arity),
        cmocka_unit_test(test_mc_storage_waits_for_data),
        cmocka_unit_test(test_mc_rejects_bad_data_chunk),
        cmocka_unit_test(test_mc_rejects_too_large_value),
        cmocka_unit_test(test_mc_key_rules),
        cmocka_unit_test(test_mc_parses_delete),
        cmocka_unit_test(test_mc_parses_touch),
        cmocka_unit_test(test_mc_parses_incr_decr),
        cmocka_unit_test(test_mc_parses_flush_all),
        cmocka_unit_test(test_mc_parses_stats_version_verbosity_quit),
        cmocka_unit_test(test_mc_unknown_and_empty_lines),
        cmocka_unit_test(test_mc_waits_for_the_line),
        cmocka_unit_test(test_mc_rejects_too_long_line),
        cmocka_unit_test(test_mc_refuses_binary_protocol),
        cmocka_unit_test(test_mc_pipeline),
        cmocka_unit_test(test_mc_splits_give_same_requests),
        cmocka_unit_test(test_mc_splits_give_same_errors),
        cmocka_unit_test(test_mc_resumed_get_is_linear),
        cmocka_unit_test(test_mc_value_in_pieces_costs_its_line_only),
        cmocka_unit_test(test_mc_writes_values),
        cmocka_unit_test(test_mc_every_command_has_a_name),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(parsed.copy);
    return rc;
}
