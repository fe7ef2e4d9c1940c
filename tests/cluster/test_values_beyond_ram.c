/* test_values_beyond_ram: a cluster's values past maxmemory go to disk as a
 * single node's do (3 nodes, N = 3, R = W = 2, storage = log, maxmemory
 * 4mb each, noeviction). 3000 SETs of 2 KiB values (about 6 MiB per node)
 * spread over the three nodes are all acknowledged, some values are cold
 * on every node (INFO cold_keys), and every key reads back with its value
 * at another node than the one that wrote it, pipelined (coordinators and
 * replicas read cold values back from disk: tier.h, coord.c's parked peer
 * requests, and a coordinator's value that went cold again while its
 * replicas answered is read back once more). Without cold versioned
 * entries (store.c) about a fifth of the SETs get -OOM; without parking,
 * reads get -UNAVAILABLE (replicas answer an error for a cold value);
 * without the second read back, some GETs answer bytes that are not the
 * value. Last, MULTI/EXEC over pairs of keys of one slot whose values went
 * cold runs (after -TRYAGAIN while they are read back) and supersedes
 * them: one version each at another node; were a cold key's versions left
 * out of the transaction's context, its old value would stay a sibling. Every wait is on a condition with a deadline; nodes are
 * stopped by PID (cluster_finish). */
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

#define FORM_MS 20000
#define KEYS 3000
#define VALUE_LEN 2048
#define PIPELINE 50

static void value_of(int k, char *out)
{
    memset(out, 'a' + k % 26, VALUE_LEN);
    snprintf(out, 16, "%08d", k); /* the key's number, then its letter */
    out[8] = '-';
}

/* A warm-up SET at node i is acknowledged (links may still be dialling). */
static bool warm(void *arg)
{
    int i = *(int *)arg;
    redisReply *r = cluster_redis_command(i, "SET warm-%d up", i);
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    return ok;
}

/* Keys k with k % 3 == node, pipelined: how many got +OK. */
static int set_all(int node)
{
    redisContext *c = cluster_redis(node);
    char *val = malloc(VALUE_LEN);
    assert_non_null(val);
    int ok = 0, shown = 0;
    for (int k = node; k < KEYS; k += 3 * PIPELINE) {
        int sent = 0;
        for (int j = k; j < KEYS && j < k + 3 * PIPELINE; j += 3, sent++) {
            value_of(j, val);
            redisAppendCommand(c, "SET key:%d %b", j, val, (size_t)VALUE_LEN);
        }
        for (int s = 0; s < sent; s++) {
            redisReply *r = NULL;
            assert_int_equal(redisGetReply(c, (void **)&r), REDIS_OK);
            if (r->type == REDIS_REPLY_STATUS)
                ok++;
            else if (shown++ < 5) /* the first few refusals say why */
                fprintf(stderr, "node %d: SET: %s\n", node, r->str ? r->str : "?");
            freeReplyObject(r);
        }
    }
    free(val);
    redisFree(c);
    return ok;
}

/* Every key read at the next node, pipelined (so that values go back to
 * disk while other reads wait for replicas): how many have their value. */
static int get_all(void)
{
    redisContext *c[3] = {cluster_redis(0), cluster_redis(1), cluster_redis(2)};
    char *want = malloc(VALUE_LEN);
    assert_non_null(want);
    int ok = 0, shown = 0;
    for (int b = 0; b < KEYS; b += 3 * PIPELINE) {
        int end = b + 3 * PIPELINE < KEYS ? b + 3 * PIPELINE : KEYS;
        for (int k = b; k < end; k++)
            redisAppendCommand(c[(k + 1) % 3], "GET key:%d", k);
        for (int k = b; k < end; k++) { /* each node's replies come in order */
            redisReply *r = NULL;
            assert_int_equal(redisGetReply(c[(k + 1) % 3], (void **)&r), REDIS_OK);
            value_of(k, want);
            bool same = r->type == REDIS_REPLY_STRING && r->len == VALUE_LEN &&
                        memcmp(r->str, want, VALUE_LEN) == 0;
            ok += same;
            if (!same && shown++ < 5)
                fprintf(stderr, "GET key:%d at node %d: type %d %.60s\n", k, (k + 1) % 3, r->type,
                        r->str ? r->str : "");
            freeReplyObject(r);
        }
    }
    free(want);
    for (int i = 0; i < 3; i++)
        redisFree(c[i]);
    return ok;
}

#define PAIRS 100

/* Pairs of keys of one slot ({p<n>}a, {p<n>}b), written first so that the
 * SETs after them send their values to disk. */
static void set_pairs(const char *value)
{
    redisContext *c = cluster_redis(0);
    for (int p = 0; p < PAIRS; p++) {
        redisReply *r = redisCommand(c, "MSET {p%d}a %s {p%d}b %s", p, value, p, value);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STATUS);
        freeReplyObject(r);
    }
    redisFree(c);
}

/* MULTI; SET both keys of pair p; EXEC at node 1: true once it ran (a
 * -TRYAGAIN while a cold value is read back is retried). */
static bool pair_tx(void *arg)
{
    int p = *(int *)arg;
    redisContext *c = cluster_redis(1);
    redisReply *r[4] = {redisCommand(c, "MULTI"), redisCommand(c, "SET {p%d}a tx", p),
                        redisCommand(c, "SET {p%d}b tx", p), redisCommand(c, "EXEC")};
    bool ran = r[3] && r[3]->type == REDIS_REPLY_ARRAY && r[3]->elements == 2;
    if (!ran && r[3])
        fprintf(stderr, "pair %d: EXEC: %s\n", p, r[3]->str ? r[3]->str : "?");
    for (int i = 0; i < 4; i++)
        if (r[i])
            freeReplyObject(r[i]);
    redisFree(c);
    return ran;
}

/* Both keys of pair p read "tx" at node 2, one version each (RING.GET). */
static void check_pair(int p)
{
    for (int k = 0; k < 2; k++) {
        redisReply *r = cluster_redis_command(2, "RING.GET {p%d}%s", p, k ? "b" : "a");
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        assert_int_equal(r->element[1]->elements, 1); /* the write superseded the old value */
        assert_string_equal(r->element[1]->element[0]->str, "tx");
        freeReplyObject(r);
    }
}

static void test_values_beyond_ram_in_a_cluster(void **state)
{
    (void)state;
    const char *flags[] = {"--storage", "log", "--maxmemory", "4mb", "--request-timeout",
                           "5000",      NULL,  NULL,          NULL};
    assert_int_equal(cluster_start(0, flags), 0);
    flags[6] = "--seeds";
    flags[7] = cluster_seed(0);
    for (int i = 1; i < 3; i++)
        assert_int_equal(cluster_start(i, flags), 0);
    int n = 3;
    assert_true(cluster_wait(cluster_formed, &n, FORM_MS));
    for (int i = 0; i < 3; i++)
        assert_true(cluster_wait(warm, &i, 10000));

    char *old = malloc(VALUE_LEN + 1);
    assert_non_null(old);
    memset(old, 'o', VALUE_LEN);
    old[VALUE_LEN] = '\0';
    set_pairs(old);
    free(old);
    int acked = 0;
    for (int i = 0; i < 3; i++)
        acked += set_all(i);
    assert_int_equal(acked, KEYS);
    for (int i = 0; i < 3; i++)
        assert_true(cluster_info_stat(i, "persistence", "cold_keys") > 0);
    assert_int_equal(get_all(), KEYS);
    /* Transactions over keys whose values are cold: each runs (after a
     * -TRYAGAIN or two while they are read back) and supersedes them. */
    for (int p = 0; p < PAIRS; p++) {
        assert_true(cluster_wait(pair_tx, &p, 5000));
        check_pair(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_values_beyond_ram_in_a_cluster, cluster_forget_all),
    };
    int failures = cmocka_run_group_tests(tests, NULL, NULL);
    return cluster_finish(failures);
}
