/* test_tombstone_reap.c: a node reaps tombstones on its tick once
 * tombstone-grace has passed (shards/replica.h, replica_reap), keeps a key
 * whose tombstone stands next to a live sibling, and a reaped delete stays
 * gone after a restart from the log. ringkv-only. */
#include "harness.h"

#include <string.h>

static char data_dir[64];

static int setup(void **state)
{
    (void)state;
    return harness_temp_dir(data_dir, sizeof data_dir, "ringkv-reap");
}

static int teardown(void **state)
{
    (void)state;
    harness_crash_all(); /* a failed assertion left its node running there */
    return harness_remove_dir(data_dir);
}

static redisContext *start(struct harness_server *s)
{
    const char *args[] = {"--storage",         "log", "--dir", data_dir, "--appendfsync", "always",
                          "--tombstone-grace", "1",   NULL};
    struct harness_opts o = {.threads = 2, .args = args};
    assert_int_equal(harness_start(s, &o), 0);
    return harness_connect(s->port);
}

/* RING.GET key's context into ctx (at most cap bytes); its length. */
static size_t context_of(redisContext *c, const char *key, char *ctx, size_t cap)
{
    redisReply *r = harness_cmd(c, "RING.GET %s", key);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    size_t len = r->element[0]->len;
    assert_true(len <= cap);
    memcpy(ctx, r->element[0]->str, len);
    freeReplyObject(r);
    return len;
}

/* RING.GET key answers exactly one live sibling, want. */
static void expect_one_sibling(redisContext *c, const char *key, const char *want)
{
    redisReply *r = harness_cmd(c, "RING.GET %s", key);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    assert_true(r->element[0]->len > 0);
    assert_int_equal(r->element[1]->elements, 1);
    assert_string_equal(r->element[1]->element[0]->str, want);
    freeReplyObject(r);
}

static bool only_one_key(void *arg)
{
    return harness_integer((redisContext *)arg, "DBSIZE") == 1;
}

static void test_tombstone_reaped_after_grace_stays_gone(void **state)
{
    (void)state;
    harness_skip_unless_ringkv();
    struct harness_server s;
    redisContext *c = start(&s);
    char ctx[512];
    /* "dead": a tombstone alone. */
    harness_expect(c, HARNESS_OK, "RING.PUT dead %b v", "", (size_t)0);
    size_t n = context_of(c, "dead", ctx, sizeof ctx);
    harness_expect(c, HARNESS_OK, "RING.DEL dead %b", ctx, n);
    /* "mixed": a tombstone next to a concurrent live value. */
    harness_expect(c, HARNESS_OK, "RING.PUT mixed %b a", "", (size_t)0);
    n = context_of(c, "mixed", ctx, sizeof ctx);
    harness_expect(c, HARNESS_OK, "RING.PUT mixed %b b", "", (size_t)0);
    harness_expect(c, HARNESS_OK, "RING.DEL mixed %b", ctx, n);
    assert_int_equal(harness_integer(c, "DBSIZE"), 2); /* tombstones count until reaped */
    assert_true(harness_wait_until(only_one_key, c, 10000, 50));
    assert_int_equal(context_of(c, "dead", ctx, sizeof ctx), 0); /* never written, as far as
                                                                    RING.GET can tell */
    expect_one_sibling(c, "mixed", "b");
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
    c = start(&s);
    assert_int_equal(harness_integer(c, "DBSIZE"), 1);
    assert_int_equal(context_of(c, "dead", ctx, sizeof ctx), 0);
    expect_one_sibling(c, "mixed", "b");
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tombstone_reaped_after_grace_stays_gone, setup,
                                        teardown),
    };
    return harness_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
