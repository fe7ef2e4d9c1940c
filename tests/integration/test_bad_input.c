/* test_bad_input.c: hostile and malformed RESP on raw sockets.
 * A request that loses framing (bad lengths, a missing '$', unbalanced inline
 * quotes, header lines past the limits) must get Redis's exact "-ERR
 * Protocol error: ..." reply and then a closed connection, and nothing sent
 * after it may run. Mistakes that keep framing (unknown command, wrong arity,
 * a first byte other than '*', which makes an inline command; empty or
 * negative multibulk counts) get an error or nothing, and the connection
 * stays usable. After every case a guard key written beforehand must be
 * intact and a fresh client must be served: the node never crashes, which the
 * group teardown also checks (harness_stop fails on a dead node).
 * Nothing a hostile client leaves behind may leak, checked twice: once its
 * clients are gone the node counts only the test's own client again
 * (connected_clients, every build); and the group teardown stops the node
 * with SIGTERM and requires exit status 0, which in the sanitizer build
 * (RINGKV_SANITIZE=ON) LeakSanitizer makes non-zero when any block the node
 * allocated was never freed (tests/sanitize/mi_libc.c lets it see them).
 * The node runs with --proto-max-bulk-len 1048576 (Redis's minimum, so the
 * same flag works for both targets) to check that a bulk one byte longer is
 * refused while one of exactly the limit is accepted. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BULK 1048576
#define GUARD_VALUE "guard-value"

static struct harness_server server;

static int group_setup(void **state)
{
    static const char *const args[] = {"--proto-max-bulk-len", "1048576", NULL};
    struct harness_opts o = {.args = args};
    return harness_start(&server, &o) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    return harness_stop(&server) == 0 ? 0 : -1;
}

static int setup(void **state)
{
    redisContext *c = harness_connect(server.port);
    harness_expect(c, HARNESS_OK, "FLUSHALL");
    harness_expect(c, HARNESS_OK, "SET guard %s", GUARD_VALUE);
    *state = c;
    return 0;
}

/* The guard key is intact and a new client is served. */
static void assert_node_healthy(void)
{
    redisContext *c = harness_connect(server.port);
    harness_expect(c, HARNESS_STATUS("PONG"), "PING");
    harness_expect(c, HARNESS_BULK(GUARD_VALUE), "GET guard");
    redisFree(c);
}

static bool only_test_client_left(void *arg)
{
    return harness_info_number(arg, "clients", "connected_clients") == 1;
}

/* Every connection the case opened is gone from the node: only the test's
 * own client (c) is counted, within HARNESS_TIMEOUT_MS. */
static void assert_clients_released(redisContext *c)
{
    assert_true(harness_wait_until(only_test_client_left, c, HARNESS_TIMEOUT_MS, 10));
}

static int teardown(void **state)
{
    redisFree(*state);
    return 0;
}

struct framing_case {
    const char *name;
    const char *bytes;
    size_t len;        /* 0: strlen(bytes) */
    const char *error; /* after "-ERR Protocol error: " */
};

/* Bytes after each case's error; the node must never run them. */
#define AFTER_ERROR "SET guard hacked\r\n*3\r\n$3\r\nSET\r\n$5\r\nguard\r\n$6\r\nhacked\r\n"

static const struct framing_case framing_cases[] = {
    {"non-numeric multibulk length", "*abc\r\n", 0, "invalid multibulk length"},
    {"multibulk length with a space", "* 1\r\n", 0, "invalid multibulk length"},
    {"multibulk length with trailing space", "*1 \r\n", 0, "invalid multibulk length"},
    {"multibulk length with a leading zero", "*01\r\n$4\r\nPING\r\n", 0,
     "invalid multibulk length"},
    {"multibulk length past INT_MAX", "*2147483648\r\n", 0, "invalid multibulk length"},
    {"multibulk length past 2^32", "*4294967297\r\n", 0, "invalid multibulk length"},
    {"negative bulk length", "*1\r\n$-1\r\n", 0, "invalid bulk length"},
    {"negative bulk length after args", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$-3\r\n", 0,
     "invalid bulk length"},
    {"non-numeric bulk length", "*1\r\n$abc\r\n", 0, "invalid bulk length"},
    {"bulk length with a space", "*1\r\n$ 3\r\n", 0, "invalid bulk length"},
    {"bulk length with a plus", "*1\r\n$+3\r\n", 0, "invalid bulk length"},
    {"bulk length with a leading zero", "*1\r\n$04\r\nPING\r\n", 0, "invalid bulk length"},
    {"bulk length past 512 MB", "*1\r\n$536870913\r\n", 0, "invalid bulk length"},
    {"bulk longer than proto-max-bulk-len", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048577\r\n", 0,
     "invalid bulk length"},
    {"bulk header missing CR", "*1\r\n$4\nPING\r\n", 0, "invalid bulk length"},
    {"missing '$' before an argument", "*1\r\nGET\r\n", 0, "expected '$', got 'G'"},
    {"nested array in a request", "*1\r\n*1\r\n", 0, "expected '$', got '*'"},
    {"unbalanced double quote", "SET k \"abc\r\n", 0, "unbalanced quotes in request"},
    {"unbalanced single quote", "SET k 'abc\r\n", 0, "unbalanced quotes in request"},
    {"closing quote followed by text", "SET k \"a\"b\r\n", 0, "unbalanced quotes in request"},
};

static void run_framing_case(const struct framing_case *fc)
{
    print_message("  case: %s\n", fc->name);
    struct harness_raw *r = harness_raw_open(server.port);
    harness_raw_send(r, fc->bytes, fc->len != 0 ? fc->len : strlen(fc->bytes));
    harness_raw_send_str(r, AFTER_ERROR);
    char want[160];
    snprintf(want, sizeof(want), "-ERR Protocol error: %s\r\n", fc->error);
    harness_raw_expect(r, want);
    harness_raw_expect_closed(r);
    harness_raw_close(r);
    assert_node_healthy();
}

static void test_bad_input_framing_errors_close(void **state)
{
    for (size_t i = 0; i < sizeof(framing_cases) / sizeof(framing_cases[0]); i++)
        run_framing_case(&framing_cases[i]);
    assert_clients_released(*state);
}

/* A header line that never ends: the node must give up past its limit. */
static void run_endless_line(const char *prefix, char fill, const char *error)
{
    enum { LEN = 256 * 1024 };
    char *buf = malloc(LEN);
    assert_non_null(buf);
    size_t pl = strlen(prefix);
    memcpy(buf, prefix, pl);
    memset(buf + pl, fill, LEN - pl);
    struct harness_raw *r = harness_raw_open(server.port);
    harness_raw_send(r, buf, LEN);
    char want[96];
    snprintf(want, sizeof(want), "-ERR Protocol error: %s\r\n", error);
    harness_raw_expect(r, want);
    harness_raw_expect_closed(r);
    harness_raw_close(r);
    free(buf);
    assert_node_healthy();
}

static void test_bad_input_endless_lines_close(void **state)
{
    run_endless_line("*", '1', "too big mbulk count string");
    run_endless_line("*1\r\n$", '1', "too big bulk count string");
    run_endless_line("SET k ", 'x', "too big inline request");
    assert_clients_released(*state);
}

static void test_bad_input_bulk_at_limit_is_accepted(void **state)
{
    redisContext *c = *state;
    char *v = malloc(MAX_BULK);
    assert_non_null(v);
    memset(v, 'z', MAX_BULK);
    harness_expect(c, HARNESS_OK, "SET big %b", v, (size_t)MAX_BULK);
    harness_expect(c, HARNESS_INT(MAX_BULK), "STRLEN big");
    free(v);
}

static void test_bad_input_errors_keep_connection(void **state)
{
    struct harness_raw *r = harness_raw_open(server.port);
    /* A first byte other than '*' starts an inline command. */
    harness_raw_send_str(r, "!3\r\n");
    harness_raw_expect(r, "-ERR unknown command '!3', with args beginning with: \r\n");
    harness_raw_send_str(r, ":5\r\n");
    harness_raw_expect(r, "-ERR unknown command ':5', with args beginning with: \r\n");
    harness_raw_send_str(r, "*2\r\n$7\r\nNOSUCH1\r\n$1\r\nx\r\n");
    harness_raw_expect(r, "-ERR unknown command 'NOSUCH1', with args beginning with: 'x' \r\n");
    harness_raw_send_str(r, "*1\r\n$3\r\nGET\r\n");
    harness_raw_expect(r, "-ERR wrong number of arguments for 'get' command\r\n");
    harness_raw_send_str(r, "*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$3\r\nFOO\r\n");
    harness_raw_expect(r, "-ERR syntax error\r\n");
    /* Empty and negative counts are skipped without a reply, as are blank lines. */
    harness_raw_send_str(r, "*0\r\n*-1\r\n*-5\r\n\r\n   \r\nPING\r\n");
    harness_raw_expect(r, "+PONG\r\n");
    harness_raw_send_str(r,
                         "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    harness_raw_expect(r, "+OK\r\n$0\r\n\r\n");
    harness_raw_close(r);
    assert_node_healthy();
}

static void test_bad_input_split_request_waits(void **state)
{
    /* A request cut anywhere is not an error: the rest completes it. */
    struct harness_raw *r = harness_raw_open(server.port);
    harness_raw_send_str(r, "*3\r\n$3\r\nSET\r\n$5\r\nsplit\r\n$10\r\n01234");
    harness_raw_send_str(r, "56789\r");
    harness_raw_send_str(r, "\n");
    harness_raw_expect(r, "+OK\r\n");
    harness_raw_close(r);
    harness_expect(*state, HARNESS_BULK("0123456789"), "GET split");
}

static void test_bad_input_abandoned_requests(void **state)
{
    /* Headers that promise much, then a client that goes away: nothing may
     * be allocated up front in proportion to the promise, nothing may leak. */
    const char *starts[] = {
        "*1000000\r\n$1\r\nx\r\n",
        "*2147483647\r\n",
        "*3\r\n$3\r\nSET\r\n$5\r\nguard\r\n$1048576\r\npartial",
        "*2\r\n$3\r\nGET\r\n$5\r\ngu",
        "SET guard \"unterminated inline",
    };
    for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
        struct harness_raw *r = harness_raw_open(server.port);
        harness_raw_send_str(r, starts[i]);
        harness_raw_close(r);
    }
    assert_node_healthy();
    assert_clients_released(*state);
}

static void test_bad_input_many_clients_of_garbage(void **state)
{
    enum { CONNS = 100, BYTES = 2048 };
    uint64_t x = 0x2545F4914F6CDD1DULL;
    char buf[BYTES];
    for (int i = 0; i < CONNS; i++) {
        for (int j = 0; j < BYTES; j++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[j] = (char)(x & 0xff);
        }
        if (i % 2 == 0)
            buf[0] = '*';
        struct harness_raw *r = harness_raw_open(server.port);
        harness_raw_send(r, buf, BYTES);
        harness_raw_close(r);
    }
    assert_node_healthy();
    harness_expect(*state, HARNESS_BULK(GUARD_VALUE), "GET guard");
    assert_clients_released(*state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_input_framing_errors_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_endless_lines_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_bulk_at_limit_is_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_errors_keep_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_split_request_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_abandoned_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_many_clients_of_garbage, setup, teardown),
    };
    return harness_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
