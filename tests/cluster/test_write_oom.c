/* test_write_oom: a write whose new version does not fit is not acknowledged
 * (shards/coord.c, coord_write_start), 3 nodes on 127.0.0.x, replicas 3,
 * W = 2; node 0 alone has a small maxmemory with noeviction.
 * - test_write_oom_never_ok_but_missing: SETs at node 0 with values that
 *   shrink once it refuses them (so that some fit as plain entries but not
 *   as versioned ones, which are larger) until it refuses even the smallest:
 *   every SET answers +OK or an error, and every key answered +OK is in the
 *   store of node 1 or node 2 (CONSISTENCY R 1), as W = 2 promises.
 * Before the fix a SET whose plain value fitted but whose version did not
 *   was answered +OK with no peer asked: such a key is at neither node 1 nor
 *   node 2, and the test fails naming it.
 * Every wait is on a condition with a deadline; nodes are stopped by PID
 * (cluster_finish). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "cluster_harness.h"

#define FORM_MS 20000
#define NODES 3
#define SETS_MAX 20000
#define VALUE_BIG 900    /* bytes of each value until the first refusal */
#define VALUE_STEP 8     /* then each refusal shrinks the value by this much */
#define REFUSED_SMALL 20 /* refusals of the smallest value that end the test */

static void start_cluster(void)
{
    const char *flags[] = {"--request-timeout", "2000", "--replicas", "3", "--threads", "1",
                           "--maxmemory", "2mb", NULL, NULL, NULL};
    assert_int_equal(cluster_start(0, flags), 0);
    flags[6] = "--seeds";
    flags[7] = cluster_seed(0);
    for (int i = 1; i < NODES; i++)
        assert_int_equal(cluster_start(i, flags), 0);
    int n = NODES;
    assert_true(cluster_wait(cluster_formed, &n, FORM_MS));
}

/* SET wo:0 acknowledged at node 0 (peer links may still be dialling). */
static bool first_write(void *arg)
{
    (void)arg;
    redisReply *r = cluster_redis_command(0, "SET wo:0 v");
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    return ok;
}

/* Whether node i's own store (CONSISTENCY R 1) holds key. */
static bool held_at(int i, int k)
{
    redisContext *c = cluster_redis(i);
    redisReply *r = redisCommand(c, "CONSISTENCY R 1");
    assert_non_null(r);
    freeReplyObject(r);
    r = redisCommand(c, "GET wo:%d", k);
    assert_non_null(r);
    bool held = r->type == REDIS_REPLY_STRING;
    freeReplyObject(r);
    redisFree(c);
    return held;
}

static void test_write_oom_never_ok_but_missing(void **state)
{
    (void)state;
    start_cluster();
    assert_true(cluster_wait(first_write, NULL, 10000));
    static char value[VALUE_BIG + 1];
    memset(value, 'x', VALUE_BIG);
    size_t len = VALUE_BIG;
    int refused_small = 0, oks = 0, refusals = 0;
    redisContext *c = cluster_redis(0);
    for (int k = 1; k < SETS_MAX && refused_small < REFUSED_SMALL; k++) {
        redisReply *r = redisCommand(c, "SET wo:%d %b", k, value, len);
        assert_non_null(r);
        bool is_ok = r->type == REDIS_REPLY_STATUS;
        assert_true(is_ok || r->type == REDIS_REPLY_ERROR);
        freeReplyObject(r);
        if (is_ok) {
            oks++;
            if (!held_at(1, k) && !held_at(2, k)) {
                fprintf(stderr, "SET wo:%d (%zu bytes) was +OK but is at neither peer\n", k,
                        len);
                fail();
            }
            continue;
        }
        refusals++;
        if (len > VALUE_STEP)
            len -= VALUE_STEP;
        else
            refused_small++;
    }
    redisFree(c);
    fprintf(stderr, "%d SETs acknowledged, %d refused\n", oks, refusals);
    assert_int_equal(refused_small, REFUSED_SMALL); /* it did reach maxmemory */
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_write_oom_never_ok_but_missing, cluster_forget_all),
    };
    return cluster_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
