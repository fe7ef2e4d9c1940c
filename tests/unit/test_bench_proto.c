/* test_bench_proto.c: requests as the servers expect them, replies read back
 * whole however the bytes are cut, and checked values that catch damage.
 * The split tests feed a stream of replies to a consumer that behaves as the
 * client does (append what arrives, parse every whole reply, keep the rest)
 * with the stream cut at every offset, and one byte at a time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "bench_proto.h"

struct expect {
    enum bench_reply_kind kind;
    const char *text; /* NULL: do not compare */
    size_t len;
};

#define EXPECT(k, s)                                                                               \
    {                                                                                              \
        (k), (s), sizeof(s) - 1                                                                    \
    }

/* A client-like consumer: a buffer, a cursor into the expectations. */
struct consumer {
    enum bench_protocol proto;
    char buf[4096];
    size_t len;
    const struct expect *want;
    size_t nwant, got;
};

static void consume(struct consumer *c, const char *data, size_t n)
{
    assert_true(c->len + n <= sizeof c->buf);
    memcpy(c->buf + c->len, data, n);
    c->len += n;
    size_t pos = 0;
    for (;;) {
        struct bench_reply r;
        size_t consumed = 12345, need = 0;
        enum bench_reply_status st =
            bench_proto_parse(c->proto, c->buf + pos, c->len - pos, &r, &consumed, &need);
        assert_int_not_equal(st, BENCH_REPLY_BAD);
        if (st == BENCH_REPLY_MORE) {
            assert_true(need == 0 || need > c->len - pos);
            break;
        }
        assert_true(c->got < c->nwant);
        const struct expect *e = &c->want[c->got++];
        assert_int_equal(r.kind, e->kind);
        if (e->text) {
            assert_int_equal(r.len, e->len);
            assert_memory_equal(r.text, e->text, e->len);
        }
        pos += consumed;
    }
    memmove(c->buf, c->buf + pos, c->len - pos);
    c->len -= pos;
}

/* The whole stream, cut once at every offset, and then byte by byte. */
static void check_every_split(enum bench_protocol proto, const char *stream,
                              const struct expect *want, size_t nwant)
{
    size_t n = strlen(stream);
    for (size_t cut = 0; cut <= n; cut++) {
        struct consumer c = {.proto = proto, .want = want, .nwant = nwant};
        consume(&c, stream, cut);
        consume(&c, stream + cut, n - cut);
        assert_int_equal(c.got, nwant);
        assert_int_equal(c.len, 0);
    }
    struct consumer c = {.proto = proto, .want = want, .nwant = nwant};
    for (size_t i = 0; i < n; i++)
        consume(&c, stream + i, 1);
    assert_int_equal(c.got, nwant);
    assert_int_equal(c.len, 0);
}

static void test_bench_proto_writes_resp_requests(void **state)
{
    char buf[256];
    char *end = bench_proto_set(buf, BENCH_PROTO_REDIS, "k:1", 3, "hello", 5);
    const char set[] = "*3\r\n$3\r\nSET\r\n$3\r\nk:1\r\n$5\r\nhello\r\n";
    assert_int_equal(end - buf, sizeof set - 1);
    assert_memory_equal(buf, set, sizeof set - 1);
    end = bench_proto_get(buf, BENCH_PROTO_REDIS, "k:1", 3);
    const char get[] = "*2\r\n$3\r\nGET\r\n$3\r\nk:1\r\n";
    assert_int_equal(end - buf, sizeof get - 1);
    assert_memory_equal(buf, get, sizeof get - 1);
}

static void test_bench_proto_writes_memcached_requests(void **state)
{
    char buf[256];
    char *end = bench_proto_set(buf, BENCH_PROTO_MEMCACHE_TEXT, "k:1", 3, "a\r\nb", 4);
    const char set[] = "set k:1 0 0 4\r\na\r\nb\r\n";
    assert_int_equal(end - buf, sizeof set - 1);
    assert_memory_equal(buf, set, sizeof set - 1);
    end = bench_proto_get(buf, BENCH_PROTO_MEMCACHE_TEXT, "k:1", 3);
    assert_int_equal(end - buf, 9);
    assert_memory_equal(buf, "get k:1\r\n", 9);
}

static void test_bench_proto_formats_keys(void **state)
{
    char key[64];
    size_t n = bench_proto_key(key, "memtier-", 8, 0);
    assert_int_equal(n, 9);
    assert_memory_equal(key, "memtier-0", 9);
    n = bench_proto_key(key, "", 0, UINT64_MAX - 1);
    assert_int_equal(n, 20);
    assert_memory_equal(key, "18446744073709551614", 20);
}

static void test_bench_proto_reads_resp_at_every_split(void **state)
{
    const char stream[] = "+OK\r\n$5\r\nhello\r\n$-1\r\n-ERR wrong type\r\n:42\r\n_\r\n"
                          "$0\r\n\r\n$7\r\na\r\nb\r\nc\r\n";
    const struct expect want[] = {
        EXPECT(BENCH_REPLY_STATUS, "OK"), EXPECT(BENCH_REPLY_VALUE, "hello"),
        {BENCH_REPLY_NIL, NULL, 0},       EXPECT(BENCH_REPLY_ERROR, "ERR wrong type"),
        EXPECT(BENCH_REPLY_INT, "42"),    {BENCH_REPLY_NIL, NULL, 0},
        EXPECT(BENCH_REPLY_VALUE, ""),    EXPECT(BENCH_REPLY_VALUE, "a\r\nb\r\nc"),
    };
    check_every_split(BENCH_PROTO_REDIS, stream, want, sizeof want / sizeof want[0]);
}

static void test_bench_proto_reads_memcached_at_every_split(void **state)
{
    const char stream[] = "STORED\r\nVALUE k:1 0 5\r\nhello\r\nEND\r\nEND\r\n"
                          "VALUE key:22 7 4 991\r\n\r\nEN\r\nEND\r\n"
                          "SERVER_ERROR out of memory storing object\r\nERROR\r\n"
                          "CLIENT_ERROR bad data chunk\r\nNOT_STORED\r\n";
    const struct expect want[] = {
        EXPECT(BENCH_REPLY_STATUS, "STORED"),
        EXPECT(BENCH_REPLY_VALUE, "hello"),
        {BENCH_REPLY_NIL, NULL, 0},
        EXPECT(BENCH_REPLY_VALUE, "\r\nEN"),
        EXPECT(BENCH_REPLY_ERROR, "SERVER_ERROR out of memory storing object"),
        EXPECT(BENCH_REPLY_ERROR, "ERROR"),
        EXPECT(BENCH_REPLY_ERROR, "CLIENT_ERROR bad data chunk"),
        EXPECT(BENCH_REPLY_STATUS, "NOT_STORED"),
    };
    check_every_split(BENCH_PROTO_MEMCACHE_TEXT, stream, want, sizeof want / sizeof want[0]);
}

static void test_bench_proto_names_memcached_key(void **state)
{
    const char in[] = "VALUE key:22 7 4 991\r\nabcd\r\nEND\r\n";
    struct bench_reply r;
    size_t consumed, need;
    assert_int_equal(
        bench_proto_parse(BENCH_PROTO_MEMCACHE_TEXT, in, sizeof in - 1, &r, &consumed, &need),
        BENCH_REPLY_DONE);
    assert_int_equal(consumed, sizeof in - 1);
    assert_int_equal(r.key_len, 6);
    assert_memory_equal(r.key, "key:22", 6);
}

static void test_bench_proto_reports_length_needed(void **state)
{
    struct bench_reply r;
    size_t consumed = 0, need = 0;
    const char resp[] = "$1000\r\nabc";
    assert_int_equal(
        bench_proto_parse(BENCH_PROTO_REDIS, resp, sizeof resp - 1, &r, &consumed, &need),
        BENCH_REPLY_MORE);
    assert_int_equal(need, 7 + 1000 + 2);
    const char mc[] = "VALUE k 0 2000\r\nxy";
    assert_int_equal(
        bench_proto_parse(BENCH_PROTO_MEMCACHE_TEXT, mc, sizeof mc - 1, &r, &consumed, &need),
        BENCH_REPLY_MORE);
    assert_int_equal(need, 16 + 2000 + 2 + 5);
    assert_int_equal(bench_proto_parse(BENCH_PROTO_REDIS, "+O", 2, &r, &consumed, &need),
                     BENCH_REPLY_MORE);
    assert_int_equal(need, 0);
}

static void test_bench_proto_rejects_lost_framing(void **state)
{
    const char *resp_bad[] = {"$5\r\nhelloXX", "?x\r\n", "$abc\r\n", "+OK\n",
                              "$-2\r\n",       "_x\r\n", "*1\r\n",   "$99999999999\r\n"};
    for (size_t i = 0; i < sizeof resp_bad / sizeof resp_bad[0]; i++) {
        struct bench_reply r;
        size_t consumed, need;
        if (bench_proto_parse(BENCH_PROTO_REDIS, resp_bad[i], strlen(resp_bad[i]), &r, &consumed,
                              &need) != BENCH_REPLY_BAD)
            fail_msg("RESP accepted '%s'", resp_bad[i]);
    }
    const char *mc_bad[] = {"VALUE k 0 5\r\nhelloXXEND\r\n",
                            "VALUE k 0 5\r\nhello\r\nENX\r\n",
                            "VALUE k x 5\r\n",
                            "VALUE  0 5\r\n",
                            "VALUE k 0\r\n",
                            "\r\n",
                            "STORED\n"};
    for (size_t i = 0; i < sizeof mc_bad / sizeof mc_bad[0]; i++) {
        struct bench_reply r;
        size_t consumed, need;
        if (bench_proto_parse(BENCH_PROTO_MEMCACHE_TEXT, mc_bad[i], strlen(mc_bad[i]), &r,
                              &consumed, &need) != BENCH_REPLY_BAD)
            fail_msg("memcached accepted '%s'", mc_bad[i]);
    }
}

static void test_bench_proto_rejects_endless_line(void **state)
{
    static char line[BENCH_PROTO_MAX_LINE + 10];
    memset(line, 'x', sizeof line);
    line[0] = '+';
    struct bench_reply r;
    size_t consumed, need;
    assert_int_equal(
        bench_proto_parse(BENCH_PROTO_REDIS, line, BENCH_PROTO_MAX_LINE - 1, &r, &consumed, &need),
        BENCH_REPLY_MORE);
    assert_int_equal(bench_proto_parse(BENCH_PROTO_REDIS, line, sizeof line, &r, &consumed, &need),
                     BENCH_REPLY_BAD);
}

static void test_bench_proto_checked_value_round_trips(void **state)
{
    const char key[] = "memtier-123456";
    size_t klen = sizeof key - 1;
    for (size_t vlen = klen + BENCH_PROTO_CHECK_OVERHEAD; vlen < 300; vlen += 7) {
        char val[300];
        bench_proto_value_fill(val, vlen, key, klen);
        assert_memory_equal(val, key, klen);
        assert_true(bench_proto_value_check(val, vlen, key, klen));
    }
}

static void test_bench_proto_checked_value_catches_damage(void **state)
{
    const char key[] = "key:77";
    size_t klen = sizeof key - 1;
    char val[64];
    bench_proto_value_fill(val, sizeof val, key, klen);
    for (size_t i = 0; i < sizeof val; i++) {
        char saved = val[i];
        val[i] ^= 0x01;
        if (bench_proto_value_check(val, sizeof val, key, klen))
            fail_msg("flipping byte %zu went unnoticed", i);
        val[i] = saved;
    }
    assert_false(bench_proto_value_check(val, sizeof val - 1, key, klen));  /* truncated */
    assert_false(bench_proto_value_check(val, sizeof val, "key:78", klen)); /* other key */
    char other[64];
    bench_proto_value_fill(other, sizeof other, "key:78", klen);
    assert_false(bench_proto_value_check(other, sizeof other, key, klen));
    assert_false(bench_proto_value_check(val, klen + 5, key, klen)); /* too short */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bench_proto_writes_resp_requests),
        cmocka_unit_test(test_bench_proto_writes_memcached_requests),
        cmocka_unit_test(test_bench_proto_formats_keys),
        cmocka_unit_test(test_bench_proto_reads_resp_at_every_split),
        cmocka_unit_test(test_bench_proto_reads_memcached_at_every_split),
        cmocka_unit_test(test_bench_proto_names_memcached_key),
        cmocka_unit_test(test_bench_proto_reports_length_needed),
        cmocka_unit_test(test_bench_proto_rejects_lost_framing),
        cmocka_unit_test(test_bench_proto_rejects_endless_line),
        cmocka_unit_test(test_bench_proto_checked_value_round_trips),
        cmocka_unit_test(test_bench_proto_checked_value_catches_damage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
