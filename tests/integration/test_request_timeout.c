/* test_request_timeout.c: request-timeout (issue 9, one way to finish a
 * request later). With appendfsync always and a deadline of 2 ms, replies
 * wait for the log's fdatasync and some pass their deadline first: every
 * request gets exactly one reply, in request order, either its own or
 * -TIMEOUT (never both, never a late one in another request's place), and
 * every write answered +OK survives a crash (no reply leaves before its
 * records are durable). Which requests time out depends on the disk; the
 * properties hold either way. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NKEYS 3000

static char data_dir[64];

static int setup(void **state)
{
    snprintf(data_dir, sizeof data_dir, "/tmp/ringkv-timeout-XXXXXX");
    return mkdtemp(data_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", data_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void start(struct harness_server *s, const char *timeout_ms)
{
    const char *args[] = {
        "--storage",         "log",      "--dir", data_dir, "--appendfsync", "always",
        "--request-timeout", timeout_ms, NULL};
    struct harness_opts o = {.threads = 3, .args = args};
    assert_int_equal(harness_start(s, &o), 0);
}

static void test_request_timeout_replies_in_order_and_acks_only_durable(void **state)
{
    harness_skip_unless_ringkv();
    static bool acked[NKEYS];
    struct harness_server s;
    start(&s, "2");
    redisContext *c = harness_connect(s.port);
    /* SETs (held for the fdatasync) interleaved with cross-shard MGETs and
     * PINGs, pipelined: the PINGs mark the order. */
    for (int i = 0; i < NKEYS; i++) {
        redisAppendCommand(c, "SET key:%d v:%d", i, i);
        if (i % 10 == 9) {
            redisAppendCommand(c, "MGET key:%d key:%d key:%d", i - 9, i - 5, i);
            redisAppendCommand(c, "PING %d", i);
        }
    }
    int timeouts = 0;
    for (int i = 0; i < NKEYS; i++) {
        redisReply *r = harness_next_reply(c);
        if (r->type == REDIS_REPLY_ERROR) {
            if (strncmp(r->str, "TIMEOUT ", 8) != 0)
                fail_msg("SET key:%d: unexpected error %s", i, r->str);
            timeouts++;
        } else if (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0) {
            acked[i] = true;
        } else {
            fail_msg("SET key:%d: reply type %d out of order", i, r->type);
        }
        freeReplyObject(r);
        if (i % 10 == 9) {
            r = harness_next_reply(c);
            if (r->type == REDIS_REPLY_ERROR)
                timeouts++;
            else if (r->type != REDIS_REPLY_ARRAY || r->elements != 3)
                fail_msg("MGET after key:%d: reply type %d out of order", i, r->type);
            freeReplyObject(r);
            char want[32];
            snprintf(want, sizeof want, "%d", i);
            r = harness_next_reply(c);
            harness_check(r, HARNESS_BULK(want), "PING in order");
            freeReplyObject(r);
        }
    }
    print_message("  %d of %d waiting replies timed out\n", timeouts, NKEYS + NKEYS / 10);
    /* The node serves on. */
    harness_expect(c, HARNESS_STATUS("PONG"), "PING");
    redisFree(c);
    assert_int_equal(harness_crash(&s), 0);

    start(&s, "5000");
    c = harness_connect(s.port);
    for (int i = 0; i < NKEYS; i++) {
        if (!acked[i])
            continue; /* not acknowledged: may or may not be there */
        char want[32];
        snprintf(want, sizeof want, "v:%d", i);
        harness_expect(c, HARNESS_BULK(want), "GET key:%d", i);
    }
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_timeout_replies_in_order_and_acks_only_durable,
                                        setup, teardown),
    };
    return harness_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
