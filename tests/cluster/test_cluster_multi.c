/* test_cluster_multi: MULTI/EXEC/WATCH in a cluster (shards/cmd_multi.c with
 * the coordinator, shards/coord.c), real nodes on 127.0.0.x.
 * - test_cluster_multi_applied_at_every_replica: 3 nodes, replicas 3: a
 *   transaction (SET, INCR, GET, SET of {tag} keys) at each node answers
 *   its array and its writes are then in every node's own store (read with
 *   CONSISTENCY R 1); keys of two slots still get -CROSSSLOT and EXECABORT.
 * - test_cluster_multi_watch: 3 nodes: WATCH then EXEC at every node (each
 *   compares the causal context WATCH saw with the one the slot's first
 *   replica holds) commits and replicates; a write at another node between
 *   WATCH and EXEC aborts the transaction (null array).
 * - test_cluster_multi_rename_copy: RENAME, COPY and RENAMENX at each of 4
 *   nodes (replicas 2: nodes 0 and 1 hold no replica of their keys and
 *   forward, 2 and 3 hold one) change both keys at both replicas (R 1 at
 *   a replica reads its own store; at the others it asks one replica),
 *   carry the expiry, and refuse keys of two slots.
 * - test_cluster_multi_at_a_non_replica: 4 nodes, replicas 2: node 0 holds
 *   no replica of a slot; a transaction there is forwarded, answered, and
 *   held by both replicas; WATCH there answers the documented error.
 * - test_cluster_multi_w2_with_one_frozen: one of 3 nodes SIGSTOPped (and
 *   seen down): EXEC (W = 2) succeeds and the other live node holds its
 *   writes; after CONSISTENCY W 3 it answers -UNAVAILABLE.
 * - test_cluster_multi_too_many_keys_refused_quickly: 2 nodes: EXEC of a
 *   60k-key MSET answers that it touches too many keys within a second.
 * Without the coordinated EXEC (main before it), EXEC ran as a plain local
 * write on the connection's node: every test fails where it reads a
 * transaction's writes from another node's own store (R 1). Every wait is
 * on a condition with a deadline; nodes are stopped by PID. */
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

static void start_nodes(int n, const char *replicas)
{
    const char *flags[] = {"--request-timeout", "2000", "--replicas", replicas, NULL, NULL, NULL};
    assert_int_equal(cluster_start(0, flags), 0);
    flags[4] = "--seeds";
    flags[5] = cluster_seed(0);
    for (int i = 1; i < n; i++)
        assert_int_equal(cluster_start(i, flags), 0);
    assert_true(cluster_wait(cluster_formed, &n, FORM_MS));
}

/* A command on c whose reply must be of type `type` (and, for a status,
 * string or error, start with want when want is not NULL). */
static redisReply *expect(redisContext *c, int type, const char *want, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type != type || (want && (!r->str || strncmp(r->str, want, strlen(want)) != 0)))
        fprintf(stderr, "%s: type %d '%s' (want type %d '%s')\n", fmt, r->type,
                r->str ? r->str : "", type, want ? want : "");
    assert_int_equal(r->type, type);
    if (want)
        assert_true(strncmp(r->str, want, strlen(want)) == 0);
    return r;
}

static void ok(redisContext *c, const char *want, const char *fmt, const char *a, const char *b)
{
    int type = strcmp(want, "QUEUED") == 0 || strcmp(want, "OK") == 0 ? REDIS_REPLY_STATUS
                                                                      : REDIS_REPLY_ERROR;
    freeReplyObject(expect(c, type, want, fmt, a, b));
}

/* MULTI; SET k 5; INCR k; GET k; SET k2 v; EXEC on c: its array is checked. */
static void transaction(redisContext *c, const char *k, const char *k2, const char *v)
{
    ok(c, "OK", "MULTI", NULL, NULL);
    ok(c, "QUEUED", "SET %s 5", k, NULL);
    ok(c, "QUEUED", "INCR %s", k, NULL);
    ok(c, "QUEUED", "GET %s", k, NULL);
    ok(c, "QUEUED", "SET %s %s", k2, v);
    redisReply *r = expect(c, REDIS_REPLY_ARRAY, NULL, "EXEC");
    assert_int_equal(r->elements, 4);
    assert_string_equal(r->element[0]->str, "OK");
    assert_int_equal(r->element[1]->integer, 6);
    assert_string_equal(r->element[2]->str, "6");
    assert_string_equal(r->element[3]->str, "OK");
    freeReplyObject(r);
}

struct held {
    int node;
    const char *key, *want;
};

/* Node x->node's own store (CONSISTENCY R 1: no other replica asked) holds
 * key with value want (NULL: lacks key). */
static bool holds(void *arg)
{
    const struct held *x = arg;
    redisContext *c = cluster_redis(x->node);
    redisReply *r = redisCommand(c, "CONSISTENCY R 1");
    freeReplyObject(r);
    r = redisCommand(c, "GET %s", x->key);
    bool is = r && (x->want ? r->type == REDIS_REPLY_STRING && strcmp(r->str, x->want) == 0
                            : r->type == REDIS_REPLY_NIL);
    freeReplyObject(r);
    redisFree(c);
    return is;
}

static void expect_held(int node, const char *key, const char *want)
{
    struct held x = {node, key, want};
    if (!cluster_wait(holds, &x, 5000))
        fprintf(stderr, "node %d does not hold %s = %s\n", node, key, want);
    assert_true(cluster_wait(holds, &x, 1));
}

/* A first write acknowledged: the peer links are up. */
static bool write_goes(void *arg)
{
    redisContext *c = cluster_redis(*(int *)arg);
    redisReply *r = redisCommand(c, "SET warm up");
    bool is = r && r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    redisFree(c);
    return is;
}

static void warm(int node)
{
    assert_true(cluster_wait(write_goes, &node, 10000));
}

static void test_cluster_multi_applied_at_every_replica(void **state)
{
    (void)state;
    start_nodes(3, "3");
    warm(0);
    char k[32], k2[32];
    for (int at = 0; at < 3; at++) {
        redisContext *c = cluster_redis(at);
        snprintf(k, sizeof k, "{tx%d}n", at);
        snprintf(k2, sizeof k2, "{tx%d}s", at);
        transaction(c, k, k2, "set");
        for (int i = 0; i < 3; i++) {
            expect_held(i, k, "6");
            expect_held(i, k2, "set");
        }
        redisFree(c);
    }
    redisContext *c = cluster_redis(1);
    ok(c, "OK", "MULTI", NULL, NULL);
    ok(c, "QUEUED", "SET {a}x 1", NULL, NULL);
    ok(c, "CROSSSLOT", "SET {b}y 2", NULL, NULL);
    ok(c, "EXECABORT", "EXEC", NULL, NULL);
    redisFree(c);
    assert_int_equal(cluster_finish(0), 0);
}

/* RENAME, RENAMENX and COPY are transactions of one command: at any node
 * (4 nodes, replicas 2: some forward), both keys change at both replicas
 * (a replica's own store, R 1: both SYNCs reached it), the expiry goes
 * along, and keys of two slots get -CROSSSLOT. */
static void test_cluster_multi_rename_copy(void **state)
{
    (void)state;
    start_nodes(4, "2");
    warm(0);
    char src[48], dst[48], cp[48], val[32];
    for (int at = 0; at < 4; at++) {
        /* nodes 0 and 1 hold no replica of their keys (forwarded), 2 and 3 do */
        bool want_away = at < 2;
        redisContext *ro = cluster_redis(at);
        freeReplyObject(redisCommand(ro, "READONLY"));
        for (int k = 0;; k++) {
            assert_true(k < 1000);
            snprintf(src, sizeof src, "{rn%d.%d}src", at, k);
            int to = cluster_moved_to(ro, src);
            assert_true(to >= -1);
            if ((to >= 0) == want_away)
                break;
        }
        redisFree(ro);
        const char *tag_end = strchr(src, '}');
        snprintf(dst, sizeof dst, "%.*sdst", (int)(tag_end - src + 1), src);
        snprintf(cp, sizeof cp, "%.*scopy", (int)(tag_end - src + 1), src);
        snprintf(val, sizeof val, "v%d", at);
        redisContext *c = cluster_redis(at);
        ok(c, "OK", "SET %s %s", src, val);
        freeReplyObject(expect(c, REDIS_REPLY_INTEGER, NULL, "EXPIRE %s 1000", src));
        ok(c, "OK", "RENAME %s %s", src, dst);
        redisReply *r = expect(c, REDIS_REPLY_INTEGER, NULL, "COPY %s %s", dst, cp);
        assert_int_equal(r->integer, 1);
        freeReplyObject(r);
        r = expect(c, REDIS_REPLY_INTEGER, NULL, "RENAMENX %s %s", cp, dst);
        assert_int_equal(r->integer, 0); /* dst exists */
        freeReplyObject(r);
        ok(c, "ERR no such key", "RENAME %s %s", src, dst);
        ok(c, "CROSSSLOT", "RENAME %s %s", dst, "elsewhere");
        r = expect(c, REDIS_REPLY_INTEGER, NULL, "TTL %s", dst);
        assert_in_range(r->integer, 990, 1000);
        freeReplyObject(r);
        redisFree(c);
        for (int i = 0; i < 4; i++) {
            expect_held(i, dst, val);
            expect_held(i, cp, val);
            struct held gone = {i, src, NULL};
            assert_true(cluster_wait(holds, &gone, 5000));
        }
    }
}

static void test_cluster_multi_watch(void **state)
{
    (void)state;
    start_nodes(3, "3");
    warm(0);
    char k[32], k2[32];
    for (int at = 0; at < 3; at++) { /* one of them is the slot's first replica */
        redisContext *c = cluster_redis(at);
        snprintf(k, sizeof k, "{w}n%d", at);
        snprintf(k2, sizeof k2, "{w}s%d", at);
        ok(c, "OK", "SET %s before", k, NULL);
        ok(c, "OK", "WATCH %s %s", k, k2);
        transaction(c, k, k2, "watched");
        for (int i = 0; i < 3; i++)
            expect_held(i, k2, "watched");
        redisFree(c);
    }
    for (int at = 0; at < 3; at++) {
        redisContext *c = cluster_redis(at);
        redisContext *other = cluster_redis((at + 1) % 3);
        ok(c, "OK", "WATCH {w}n0", NULL, NULL);
        ok(other, "OK", "SET {w}n0 %s", at == 0 ? "x0" : at == 1 ? "x1" : "x2", NULL);
        ok(c, "OK", "MULTI", NULL, NULL);
        ok(c, "QUEUED", "SET {w}n0 mine", NULL, NULL);
        freeReplyObject(expect(c, REDIS_REPLY_NIL, NULL, "EXEC"));
        redisFree(other);
        redisFree(c);
    }
    for (int i = 0; i < 3; i++)
        expect_held(i, "{w}n0", "x2");
    assert_int_equal(cluster_finish(0), 0);
}

/* The slot of key, asked at node 0. */
static long long keyslot(const char *key)
{
    redisContext *c = cluster_redis(0);
    redisReply *r = expect(c, REDIS_REPLY_INTEGER, NULL, "CLUSTER KEYSLOT %s", key);
    long long slot = r->integer;
    freeReplyObject(r);
    redisFree(c);
    return slot;
}

/* Whether CLUSTER SLOTS (asked at node 0) lists node `node` for slot. */
static bool lists(long long slot, int node)
{
    redisContext *c = cluster_redis(0);
    redisReply *r = expect(c, REDIS_REPLY_ARRAY, NULL, "CLUSTER SLOTS");
    bool found = false;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *range = r->element[i];
        if (slot < range->element[0]->integer || slot > range->element[1]->integer)
            continue;
        for (size_t j = 2; j < range->elements; j++)
            found |= strcmp(range->element[j]->element[0]->str, cluster_host(node)) == 0;
    }
    freeReplyObject(r);
    redisFree(c);
    return found;
}

static void test_cluster_multi_at_a_non_replica(void **state)
{
    (void)state;
    start_nodes(4, "2");
    warm(0);
    char tag[32], k[48], k2[48];
    long long slot = -1;
    for (int t = 0; t < 200 && slot < 0; t++) {
        snprintf(tag, sizeof tag, "{nr%d}", t);
        long long s = keyslot(tag);
        if (!lists(s, 0))
            slot = s;
    }
    assert_true(slot >= 0);
    snprintf(k, sizeof k, "%sn", tag);
    snprintf(k2, sizeof k2, "%ss", tag);
    redisContext *c = cluster_redis(0);
    ok(c, "ERR WATCH needs a connection to a node holding a replica", "WATCH %s", k, NULL);
    transaction(c, k, k2, "forwarded");
    redisFree(c);
    int replicas[2], n = 0;
    for (int i = 1; i < 4 && n < 2; i++)
        if (lists(slot, i))
            replicas[n++] = i;
    assert_int_equal(n, 2);
    for (int i = 0; i < n; i++) {
        expect_held(replicas[i], k, "6");
        expect_held(replicas[i], k2, "forwarded");
    }
    for (int i = 0; i < n; i++) { /* WATCH at a replica works, the first or not */
        c = cluster_redis(replicas[i]);
        ok(c, "OK", "WATCH %s", k, NULL);
        transaction(c, k, k2, i == 0 ? "at-first" : "at-second");
        redisFree(c);
        for (int j = 0; j < n; j++)
            expect_held(replicas[j], k2, i == 0 ? "at-first" : "at-second");
    }
    assert_int_equal(cluster_finish(0), 0);
}

struct status_is {
    int viewer, node;
};

static bool seen_down(void *arg)
{
    const struct status_is *x = arg;
    const char *st = cluster_status_of(x->viewer, cluster_node(x->node)->id);
    return st && strcmp(st, "down") == 0;
}

static void test_cluster_multi_w2_with_one_frozen(void **state)
{
    (void)state;
    start_nodes(3, "3");
    warm(0);
    cluster_signal(2, SIGSTOP);
    struct status_is down0 = {0, 2}, down1 = {1, 2};
    assert_true(cluster_wait(seen_down, &down0, 20000));
    assert_true(cluster_wait(seen_down, &down1, 20000));
    redisContext *c = cluster_redis(0);
    transaction(c, "{f}n", "{f}s", "w2");
    expect_held(1, "{f}n", "6");
    expect_held(1, "{f}s", "w2");
    ok(c, "OK", "CONSISTENCY W 3", NULL, NULL);
    ok(c, "OK", "MULTI", NULL, NULL);
    ok(c, "QUEUED", "SET {f}n 1", NULL, NULL);
    ok(c, "UNAVAILABLE", "EXEC", NULL, NULL);
    redisFree(c);
    cluster_signal(2, SIGCONT);
    assert_int_equal(cluster_finish(0), 0);
}

/* A transaction of too many keys for a cluster (one MSET of 60k keys, one
 * slot) is refused quickly: its keys were de-duplicated each against all
 * earlier ones before the count was checked, stalling the shard seconds. */
static void test_cluster_multi_too_many_keys_refused_quickly(void **state)
{
    (void)state;
    start_nodes(2, "2");
    warm(0);
    enum { KEYS = 60000 };
    size_t argc = 1 + 2 * (size_t)KEYS;
    const char **argv = calloc(argc, sizeof *argv);
    char *words = calloc(KEYS, 16);
    assert_true(argv && words);
    argv[0] = "MSET";
    for (size_t i = 0; i < KEYS; i++) {
        snprintf(words + 16 * i, 16, "{big}%zu", i);
        argv[1 + 2 * i] = words + 16 * i;
        argv[2 + 2 * i] = "v";
    }
    redisContext *c = cluster_redis(0);
    ok(c, "OK", "MULTI", NULL, NULL);
    redisReply *r = redisCommandArgv(c, (int)argc, argv, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    int64_t t0 = cluster_now_ms();
    r = expect(c, REDIS_REPLY_ERROR, "ERR a transaction touches too many keys", "EXEC");
    int64_t took = cluster_now_ms() - t0;
    printf("cluster_multi: EXEC of %d keys refused in %lld ms\n", KEYS, (long long)took);
    freeReplyObject(r);
    assert_true(took < 1000);
    redisFree(c);
    free(argv);
    free(words);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_cluster_multi_applied_at_every_replica, cluster_forget_all),
        cmocka_unit_test_teardown(test_cluster_multi_watch, cluster_forget_all),
        cmocka_unit_test_teardown(test_cluster_multi_rename_copy, cluster_forget_all),
        cmocka_unit_test_teardown(test_cluster_multi_at_a_non_replica, cluster_forget_all),
        cmocka_unit_test_teardown(test_cluster_multi_w2_with_one_frozen, cluster_forget_all),
        cmocka_unit_test_teardown(test_cluster_multi_too_many_keys_refused_quickly,
                                  cluster_forget_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
