/* test_pipeline_order: a client's pipeline runs in order in a cluster, as
 * on a node alone (shards/cmd_order.h). Four real nodes on 127.0.0.2 .. 5
 * (cluster_harness.h), N = 3, R = 2, W = 2, two shards each and the
 * memcache port on, so every key has a node holding no replica (which
 * sends its requests on) and read-modify-writes are coordinated by the
 * slot's first live replica, elsewhere for most clients.
 * - RESP pipelines sent in one write at every node, for many keys: a GET
 *   sees the SET and the INCR before it and not the SET or DEL after it,
 *   a SET after an INCR wins, APPEND after SET appends to it, a GET after
 *   EXEC sees the transaction and not the SET behind it. Before
 *   cmd_order, at 3 nodes: 600 of 600 such pipelines answered wrong (a GET
 *   behind a SET read nil: its read ran again after the DEL behind it).
 * - memcached pipelines: incr, append, replace then get in one write, and
 *   set then gets. Before: about half answered with the value before the
 *   write.
 * - gets then cas at every node succeeds once the nodes' cas uniques
 *   differ (gets answers the first live replica's unique, as cas is checked
 *   there). Before: cas through two nodes of three always got EXISTS.
 * - SET, FLUSHALL, GET, SET, GET pipelined at W = N: the GET behind
 *   FLUSHALL finds nothing, the SET behind it stays.
 * - A held request's bytes count once in total_parser_examined_bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "cluster_harness.h"

#define NODES 4
#define KEYS 12

static int mc_port;

static int group_setup(void **state)
{
    (void)state;
    const char *const flags[] = {"--threads", "2", NULL};
    return cluster_start_formed_mc(NODES, flags, &mc_port) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    return cluster_forget_all(state);
}

/* One pipelined command and the reply it must get: "+OK", ":6", "$v" (a
 * bulk string), "$" (nil), "*1:1" (EXEC's one-integer array). */
struct step {
    const char *cmd; /* a format for redisAppendCommand with the key as %s
                        where it takes one */
    const char *want;
};

static void reply_text(const redisReply *r, char *out, size_t len)
{
    switch (r->type) {
    case REDIS_REPLY_STATUS:
        snprintf(out, len, "+%s", r->str);
        break;
    case REDIS_REPLY_INTEGER:
        snprintf(out, len, ":%lld", r->integer);
        break;
    case REDIS_REPLY_STRING:
        snprintf(out, len, "$%s", r->str);
        break;
    case REDIS_REPLY_NIL:
        snprintf(out, len, "$");
        break;
    case REDIS_REPLY_ARRAY:
        snprintf(out, len, "*%zu%s", r->elements,
                 r->elements == 1 && r->element[0]->type == REDIS_REPLY_INTEGER ? ":" : "?");
        if (r->elements == 1 && r->element[0]->type == REDIS_REPLY_INTEGER)
            snprintf(out + strlen(out), len - strlen(out), "%lld", r->element[0]->integer);
        break;
    default:
        snprintf(out, len, "-%s", r->str ? r->str : "?");
    }
}

/* Sends every step of one pipeline at once (hiredis writes the appended
 * commands in one go) on c, then checks each reply in order. */
static void run_pipeline(redisContext *c, int node, const char *key, const struct step *steps,
                         size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(redisAppendCommand(c, steps[i].cmd, key), REDIS_OK);
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !r)
            fail_msg("node %d: no reply to %s (%s)", node, steps[i].cmd, c->errstr);
        char got[128];
        reply_text(r, got, sizeof got);
        freeReplyObject(r);
        if (strcmp(got, steps[i].want) != 0)
            fail_msg("node %d, key %s: step %zu (%s) got \"%s\", want \"%s\"", node, key, i,
                     steps[i].cmd, got, steps[i].want);
    }
}

static void test_resp_pipelines_keep_their_order(void **state)
{
    (void)state;
    static const struct step set_get_del[] = {
        {"SET %s 1", "+OK"}, {"GET %s", "$1"}, {"SET %s 2", "+OK"},
        {"GET %s", "$2"},    {"DEL %s", ":1"}, {"GET %s", "$"},
    };
    static const struct step incr_set[] = {
        {"INCR %s", ":1"},  {"GET %s", "$1"},  {"SET %s 100", "+OK"}, {"GET %s", "$100"},
        {"INCR %s", ":101"}, {"GET %s", "$101"}, {"DEL %s", ":1"},
    };
    static const struct step append_set[] = {
        {"APPEND %s a", ":1"}, {"SET %s b", "+OK"}, {"APPEND %s c", ":2"},
        {"GET %s", "$bc"},     {"DEL %s", ":1"},
    };
    static const struct step set_incr_del[] = {
        {"SET %s 5", "+OK"}, {"INCR %s", ":6"}, {"DEL %s", ":1"}, {"GET %s", "$"},
    };
    static const struct step exec_then_set[] = {
        {"MULTI", "+OK"},     {"INCR %s", "+QUEUED"}, {"EXEC", "*1:1"}, {"GET %s", "$1"},
        {"SET %s 100", "+OK"}, {"GET %s", "$100"},     {"DEL %s", ":1"},
    };
    for (int node = 0; node < NODES; node++) {
        redisContext *c = cluster_connect(node, 10000);
        assert_non_null(c);
        for (int k = 0; k < KEYS; k++) {
            char key[48];
            snprintf(key, sizeof key, "{po%d}:%d", node, k);
            run_pipeline(c, node, key, set_get_del, sizeof set_get_del / sizeof set_get_del[0]);
            run_pipeline(c, node, key, incr_set, sizeof incr_set / sizeof incr_set[0]);
            run_pipeline(c, node, key, append_set, sizeof append_set / sizeof append_set[0]);
            run_pipeline(c, node, key, set_incr_del, sizeof set_incr_del / sizeof set_incr_del[0]);
            run_pipeline(c, node, key, exec_then_set,
                         sizeof exec_then_set / sizeof exec_then_set[0]);
        }
        redisFree(c);
    }
}

/* req sent to node i's memcache port in one write, its replies read up to
 * the last "END\r\n". */
static void mc_expect(int i, const char *req, const char *want)
{
    char *got = cluster_mc_ask(i, mc_port, req, "END\r\n");
    if (!got)
        fail_msg("no connection to node %d", i);
    if (strcmp(got, want) != 0)
        fail_msg("node %d: %s-> \"%s\", want \"%s\"", i, req, got, want);
    free(got);
}

static void test_mc_pipelines_keep_their_order(void **state)
{
    (void)state;
    char req[256], want[256];
    for (int node = 0; node < NODES; node++) {
        for (int k = 0; k < KEYS; k++) {
            char key[48];
            snprintf(key, sizeof key, "mpo%d:%d", node, k);
            snprintf(req, sizeof req, "set %s 0 0 1\r\n1\r\nincr %s 5\r\nget %s\r\n", key, key,
                     key);
            snprintf(want, sizeof want, "STORED\r\n6\r\nVALUE %s 0 1\r\n6\r\nEND\r\n", key);
            mc_expect(node, req, want);
            snprintf(req, sizeof req, "append %s 0 0 1\r\nx\r\nget %s\r\n", key, key);
            snprintf(want, sizeof want, "STORED\r\nVALUE %s 0 2\r\n6x\r\nEND\r\n", key);
            mc_expect(node, req, want);
            snprintf(req, sizeof req, "replace %s 3 0 2\r\nzz\r\nget %s\r\n", key, key);
            snprintf(want, sizeof want, "STORED\r\nVALUE %s 3 2\r\nzz\r\nEND\r\n", key);
            mc_expect(node, req, want);
            snprintf(req, sizeof req, "delete %s\r\nadd %s 0 0 1\r\ny\r\nget %s\r\n", key, key,
                     key);
            snprintf(want, sizeof want, "DELETED\r\nSTORED\r\nVALUE %s 0 1\r\ny\r\nEND\r\n",
                     key);
            mc_expect(node, req, want);
            /* a gets goes to the first live replica: it still sees the set */
            snprintf(req, sizeof req, "set %s 0 0 2\r\nv%d\r\ngets %s\r\n", key, k % 10, key);
            char *got = cluster_mc_ask(node, mc_port, req, "END\r\n");
            snprintf(want, sizeof want, "STORED\r\nVALUE %s 0 2 ", key);
            char tail[32];
            snprintf(tail, sizeof tail, "\r\nv%d\r\nEND\r\n", k % 10);
            if (!got || strncmp(got, want, strlen(want)) != 0 || !strstr(got, tail))
                fail_msg("node %d: %s-> \"%s\"", node, req, got ? got : "(no connection)");
            free(got);
        }
    }
}

/* The cas unique in a gets reply ("VALUE key flags bytes unique\r\n..."). */
static unsigned long long gets_unique(int node, const char *key)
{
    char req[128];
    snprintf(req, sizeof req, "gets %s\r\n", key);
    char *got = cluster_mc_ask(node, mc_port, req, "END\r\n");
    if (!got || strncmp(got, "VALUE ", 6) != 0)
        fail_msg("node %d: %s-> \"%s\"", node, req, got ? got : "(no connection)");
    const char *eol = strstr(got, "\r\n");
    const char *sp = eol;
    while (sp > got && sp[-1] != ' ')
        sp--;
    unsigned long long unique = strtoull(sp, NULL, 10);
    free(got);
    return unique;
}

static void test_mc_gets_then_cas_at_every_node(void **state)
{
    (void)state;
    char req[256];
    for (int k = 0; k < KEYS; k++) {
        char key[48];
        snprintf(key, sizeof key, "mcas:%d", k);
        /* writes through every node move each node's uniques apart */
        for (int node = 0; node < NODES; node++) {
            snprintf(req, sizeof req, "set %s 0 0 1\r\n%d\r\n", key, node);
            char *got = cluster_mc_ask(node, mc_port, req, "\r\n");
            assert_non_null(got);
            assert_string_equal(got, "STORED\r\n");
            free(got);
        }
        for (int node = 0; node < NODES; node++) {
            unsigned long long unique = gets_unique(node, key);
            snprintf(req, sizeof req, "cas %s 0 0 1 %llu\r\nc\r\n", key, unique);
            char *got = cluster_mc_ask(node, mc_port, req, "\r\n");
            assert_non_null(got);
            if (strcmp(got, "STORED\r\n") != 0)
                fail_msg("node %d: gets then cas of %s -> \"%s\", want STORED", node, key, got);
            free(got);
        }
    }
}

/* FLUSHALL goes to every member on links of its own: a SET before it in
 * the pipeline is flushed, one after it is kept. The connection writes at
 * W = N (CONSISTENCY ALL): a write acknowledged at W < N may still be on
 * its way to its last replica, and land there after the flush (README:
 * FLUSHALL removes keys without versions). Last: it empties every node. */
static void test_flushall_keeps_its_place(void **state)
{
    (void)state;
    static const struct step set_flush_get[] = {
        {"SET %s 1", "+OK"}, {"FLUSHALL", "+OK"}, {"GET %s", "$"},
        {"SET %s 2", "+OK"}, {"GET %s", "$2"},
    };
    for (int node = 0; node < NODES; node++) {
        redisContext *c = cluster_connect(node, 10000);
        assert_non_null(c);
        redisReply *all = redisCommand(c, "CONSISTENCY ALL");
        assert_non_null(all);
        assert_int_equal(all->type, REDIS_REPLY_STATUS);
        freeReplyObject(all);
        for (int k = 0; k < 4; k++) {
            char key[48];
            snprintf(key, sizeof key, "fpo%d:%d", node, k);
            run_pipeline(c, node, key, set_flush_get, sizeof set_flush_get / sizeof set_flush_get[0]);
        }
        redisFree(c);
    }
}

/* INFO stats' total_parser_examined_bytes through c. */
static unsigned long long examined_bytes(redisContext *c)
{
    redisReply *r = redisCommand(c, "INFO stats");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    const char *at = strstr(r->str, "total_parser_examined_bytes:");
    assert_non_null(at);
    unsigned long long n = strtoull(at + strlen("total_parser_examined_bytes:"), NULL, 10);
    freeReplyObject(r);
    return n;
}

/* A request held behind another (read again once that one ends) counts its
 * bytes once in total_parser_examined_bytes: a pipeline of writes and reads
 * of one key, whose writes wait for the reads before them, adds exactly its
 * length (and the INFO that reads the count). Before, each held request
 * added its bytes again every time it was looked at. */
static void test_held_requests_count_their_bytes_once(void **state)
{
    (void)state;
    static const struct step set_get[] = {
        {"SET %s 1", "+OK"}, {"GET %s", "$1"}, {"SET %s 2", "+OK"}, {"GET %s", "$2"},
        {"SET %s 3", "+OK"}, {"GET %s", "$3"}, {"DEL %s", ":1"},
    };
    redisContext *c = cluster_connect(0, 10000);
    assert_non_null(c);
    unsigned long long sent = 0, before = examined_bytes(c);
    for (int k = 0; k < KEYS; k++) {
        char key[48];
        snprintf(key, sizeof key, "{eb}:%d", k);
        for (size_t i = 0; i < sizeof set_get / sizeof set_get[0]; i++) {
            char *cmd = NULL;
            int len = redisFormatCommand(&cmd, set_get[i].cmd, key);
            assert_true(len > 0);
            sent += (unsigned long long)len;
            redisFreeCommand(cmd);
        }
        run_pipeline(c, 0, key, set_get, sizeof set_get / sizeof set_get[0]);
    }
    char *info = NULL;
    sent += (unsigned long long)redisFormatCommand(&info, "INFO stats");
    redisFreeCommand(info);
    unsigned long long after = examined_bytes(c);
    printf("pipeline_order: %llu bytes sent, %llu examined\n", sent, after - before);
    assert_int_equal(after - before, sent);
    redisFree(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resp_pipelines_keep_their_order),
        cmocka_unit_test(test_mc_pipelines_keep_their_order),
        cmocka_unit_test(test_mc_gets_then_cas_at_every_node),
        cmocka_unit_test(test_flushall_keeps_its_place),
        cmocka_unit_test(test_held_requests_count_their_bytes_once),
    };
    return cluster_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
