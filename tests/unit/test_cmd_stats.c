/* test_cmd_stats.c: the command and error counters and CLIENT REPLY's
 * silencing, driven through the hooks cmd.c calls, on one connection whose
 * output and pending replies the test writes by hand: a reply written whole
 * at dispatch, one that comes later through a pending item, a refusal, an
 * error prefix that is one word only, SKIP lasting one request, and reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <mimalloc.h>

#include "cmd_stats.h"
#include "conn.h"
#include "node.h"

#define ROW 3 /* any command table row */

static struct node node;
static struct conn conn;
static struct cmd_stats_shard *stats;

static int setup(void **state)
{
    memset(&node, 0, sizeof node);
    memset(&conn, 0, sizeof conn);
    node.cmd_stats = cmd_stats_create(2);
    if (!node.cmd_stats)
        return -1;
    stats = cmd_stats_of(&node, 1);
    buf_init(&conn.out);
    return 0;
}

static int teardown(void **state)
{
    buf_fini(&conn.out);
    cmd_stats_destroy(node.cmd_stats);
    return 0;
}

/* One request answered at dispatch: `reply` written into the output. */
static void request(int32_t row, bool admitted, const char *reply)
{
    cmd_stats_begin(stats, &conn, row);
    if (admitted)
        cmd_stats_admit(stats);
    buf_append_str(&conn.out, reply);
    cmd_stats_end(stats, &conn);
}

static struct cmd_stat sum(uint32_t slot)
{
    struct cmd_stat t;
    cmd_stats_sum(&node, slot, &t);
    return t;
}

struct error_seen {
    char prefix[CMD_STATS_PREFIX_MAX];
    uint64_t count;
    int n;
};

static void note_error(const char *prefix, uint64_t count, void *arg)
{
    struct error_seen *e = arg;
    snprintf(e->prefix, sizeof e->prefix, "%s", prefix);
    e->count = count;
    e->n++;
}

static struct error_seen errors(void)
{
    struct error_seen e = {.n = 0};
    cmd_stats_errors(&node, note_error, &e);
    return e;
}

static void test_cmd_stats_counts_calls_failures_and_refusals(void **state)
{
    request(ROW, true, "+OK\r\n");
    request(ROW, true, "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    request(ROW, false, "-NOAUTH Authentication required.\r\n");
    request(-1, false, "-ERR unknown command 'x'\r\n");
    struct cmd_stat t = sum(ROW);
    assert_int_equal(t.calls, 2);
    assert_int_equal(t.failed, 1);
    assert_int_equal(t.rejected, 1);
    int wrongtype = 0, noauth = 0, err = 0;
    for (uint32_t i = 0; i < stats->nerrors; i++) {
        wrongtype += strcmp(stats->errors[i].prefix, "WRONGTYPE") == 0;
        noauth += strcmp(stats->errors[i].prefix, "NOAUTH") == 0;
        err += strcmp(stats->errors[i].prefix, "ERR") == 0;
    }
    assert_int_equal(wrongtype + noauth + err, 3);
    assert_int_equal(stats->nerrors, 3);
}

/* Redis's rule: no space in the first 32 bytes means ERR. */
static void test_cmd_stats_one_word_error_counts_as_err(void **state)
{
    request(ROW, true, "-NOSPACEHERE\r\n");
    struct error_seen e = errors();
    assert_int_equal(e.n, 1);
    assert_string_equal(e.prefix, "ERR");
    assert_int_equal(e.count, 1);
}

/* A reply that comes later is checked when it is combined. */
static void test_cmd_stats_counts_a_pending_reply(void **state)
{
    struct conn_slot p = {.is_ready = false};
    cmd_stats_begin(stats, &conn, ROW);
    cmd_stats_admit(stats);
    conn.head = conn.tail = &p; /* what conn_slot_reserve() does */
    cmd_stats_end(stats, &conn);
    assert_int_equal(sum(ROW).failed, 0);
    assert_true(p.stats & CMD_STATS_P_TRACKED);

    size_t at = conn.out.len;
    int32_t was = cmd_stats_combine_begin(stats, &p);
    assert_int_equal(stats->slot, ROW); /* a second phase's messages carry it */
    buf_append_str(&conn.out, "-OOM command not allowed\r\n");
    cmd_stats_combine_end(stats, &conn, &p, &conn.out, at, was);
    assert_int_equal(stats->slot, -1);
    assert_int_equal(sum(ROW).calls, 1);
    assert_int_equal(sum(ROW).failed, 1);
    assert_string_equal(errors().prefix, "OOM");
}

/* CLIENT REPLY SKIP drops the next request's reply only; OFF all until ON.
 * Dropped errors still count. */
static void test_cmd_stats_silences_replies(void **state)
{
    conn.reply_flags = CONN_REPLY_SKIP_NEXT; /* CLIENT REPLY SKIP ran */
    request(ROW, true, "");                  /* ... and ends here */
    request(ROW, true, "-ERR dropped\r\n");
    assert_int_equal(conn.out.len, 0);
    request(ROW, true, "+PONG\r\n");
    assert_int_equal(conn.out.len, 7);

    conn.reply_flags = CONN_REPLY_OFF;
    struct conn_slot p = {.is_ready = false};
    cmd_stats_begin(stats, &conn, ROW);
    cmd_stats_admit(stats);
    conn.head = conn.tail = &p;
    cmd_stats_end(stats, &conn);
    size_t at = conn.out.len;
    int32_t was = cmd_stats_combine_begin(stats, &p);
    buf_append_str(&conn.out, "*0\r\n");
    cmd_stats_combine_end(stats, &conn, &p, &conn.out, at, was);
    assert_int_equal(conn.out.len, 7);
    assert_int_equal(sum(ROW).failed, 1);
    assert_int_equal(errors().count, 1);
}

static void test_cmd_stats_reset(void **state)
{
    request(ROW, true, "-ERR x\r\n");
    request(ROW, false, "-ERR y\r\n");
    cmd_stats_reset(stats);
    struct cmd_stat t = sum(ROW);
    assert_int_equal(t.calls + t.failed + t.rejected + t.ns, 0);
    assert_int_equal(errors().n, 0);
    request(ROW, true, "-ERR z\r\n");
    assert_int_equal(errors().count, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cmd_stats_counts_calls_failures_and_refusals, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cmd_stats_one_word_error_counts_as_err, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cmd_stats_counts_a_pending_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmd_stats_silences_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmd_stats_reset, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
