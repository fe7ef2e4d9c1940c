/* test_keyspace: DBSIZE, KEYS, SCAN and RANDOMKEY across a cluster
 * (shards/keyspace.h), 3 nodes of 2 shards each on 127.0.0.x.
 * - test_keyspace_replicas_2 (keys on 2 of 3 nodes) and
 *   test_keyspace_replicas_3 (keys everywhere): 300 keys written; at every
 *   node a plain client gets DBSIZE 300, KEYS * with each key exactly once,
 *   a full SCAN loop (COUNT 7) with each key exactly once, and RANDOMKEY a
 *   key that exists; the node-local DBSIZE and KEYS of the masters CLUSTER
 *   SLOTS lists, asked on cluster-aware connections as redis-py's
 *   RedisCluster does, add up to 300 keys, each once. RING.LOCAL (the
 *   peers' request) is refused to a client. With 2 replicas, OBJECT
 *   ENCODING and MEMORY USAGE answer at every node for keys it does not
 *   hold too (nil for a missing key).
 * - test_keyspace_deleted_keys_left_out: after DEL of all keys but one
 *   (tombstones stay), every node answers DBSIZE 1, KEYS * that key, and
 *   RANDOMKEY that key.
 * - test_keyspace_randomkey_varies: 30 live keys among tombstones; 60
 *   RANDOMKEYs at one node give live keys, at least 5 different ones, each
 *   in under 500 ms.
 * On main's binary every node answers for every key it holds: with 2
 *   replicas DBSIZE is about 200 at each node (the first test fails there),
 *   with 3 the masters' sum is 900 (the second fails there), and tombstones
 *   count and are listed (the third fails on DBSIZE about 200, want 1).
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
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "cluster_harness.h"

#define FORM_MS 20000
#define NODES 3
#define KEYS 300
#define SCAN_ROUNDS_MAX 10000 /* a SCAN loop that never ends fails */
#define RANDOMKEY_LIVE 30         /* keys left live in test_keyspace_randomkey_varies */
#define RANDOMKEY_CALLS 60
#define RANDOMKEY_DISTINCT_MIN 5  /* of RANDOMKEY_LIVE, in RANDOMKEY_CALLS calls */
#define RANDOMKEY_SLOW_MS 500

static void start_cluster(const char *replicas)
{
    const char *flags[] = {
        "--request-timeout", "2000", "--replicas", replicas, "--threads", "2", NULL, NULL, NULL};
    assert_int_equal(cluster_start(0, flags), 0);
    flags[6] = "--seeds";
    flags[7] = cluster_seed(0);
    for (int i = 1; i < NODES; i++)
        assert_int_equal(cluster_start(i, flags), 0);
    int n = NODES;
    assert_true(cluster_wait(cluster_formed, &n, FORM_MS));
}

/* Runs a command on c; the reply (never NULL: the test fails). */
static redisReply *cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    return r;
}

static int key_index(const char *s, size_t len)
{
    int k;
    char tail;
    if (len < 4 || len > 12 || strncmp(s, "ks:", 3) != 0)
        return -1;
    char text[16];
    memcpy(text, s, len);
    text[len] = '\0';
    return sscanf(text + 3, "%d%c", &k, &tail) == 1 && k >= 0 && k < KEYS ? k : -1;
}

/* Counts an array of key names into seen[]; false (printed) on a name
 * that is not one of ours. */
static bool count_keys(const redisReply *a, int *seen, const char *where)
{
    if (a->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "%s: not an array (type %d: %s)\n", where, a->type, a->str ? a->str : "");
        return false;
    }
    for (size_t i = 0; i < a->elements; i++) {
        int k = key_index(a->element[i]->str, a->element[i]->len);
        if (k < 0) {
            fprintf(stderr, "%s: unexpected key %.*s\n", where, (int)a->element[i]->len,
                    a->element[i]->str);
            return false;
        }
        seen[k]++;
    }
    return true;
}

/* Every key of live[] seen exactly once, no other. */
static bool each_once(const int *seen, const bool *live, const char *where)
{
    for (int k = 0; k < KEYS; k++) {
        if (seen[k] != (live[k] ? 1 : 0)) {
            fprintf(stderr, "%s: ks:%d seen %d times\n", where, k, seen[k]);
            return false;
        }
    }
    return true;
}

struct expect {
    const bool *live;
    long long count;
};

static bool node_dbsize_is(redisContext *c, long long want, const char *where)
{
    redisReply *r = cmd(c, "DBSIZE");
    bool ok = r->type == REDIS_REPLY_INTEGER && r->integer == want;
    if (!ok)
        fprintf(stderr, "%s: DBSIZE %lld (type %d), want %lld\n", where, r->integer, r->type, want);
    freeReplyObject(r);
    return ok;
}

static bool node_keys_once(redisContext *c, const bool *live, const char *where)
{
    int seen[KEYS] = {0};
    redisReply *r = cmd(c, "KEYS *");
    bool ok = count_keys(r, seen, where) && each_once(seen, live, where);
    freeReplyObject(r);
    return ok;
}

/* A whole SCAN loop on c: each live key once. */
static bool node_scan_once(redisContext *c, const bool *live, const char *where)
{
    int seen[KEYS] = {0};
    char cursor[32] = "0";
    for (int round = 0; round < SCAN_ROUNDS_MAX; round++) {
        redisReply *r = cmd(c, "SCAN %s COUNT 7", cursor);
        bool ok = r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                  r->element[0]->type == REDIS_REPLY_STRING && r->element[0]->len < sizeof cursor &&
                  count_keys(r->element[1], seen, where);
        if (ok)
            snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        else
            fprintf(stderr, "%s: bad SCAN reply\n", where);
        freeReplyObject(r);
        if (!ok)
            return false;
        if (strcmp(cursor, "0") == 0)
            return each_once(seen, live, where);
    }
    fprintf(stderr, "%s: SCAN did not end\n", where);
    return false;
}

static bool node_randomkey_live(redisContext *c, const bool *live, const char *where)
{
    redisReply *r = cmd(c, "RANDOMKEY");
    int k = r->type == REDIS_REPLY_STRING ? key_index(r->str, r->len) : -1;
    bool ok = k >= 0 && live[k];
    if (!ok)
        fprintf(stderr, "%s: RANDOMKEY gave %s\n", where, r->str ? r->str : "(nil)");
    freeReplyObject(r);
    return ok;
}

/* Every node, to a plain client, answers for the whole cluster. */
static bool every_node_answers_all(void *arg)
{
    const struct expect *x = arg;
    for (int i = 0; i < NODES; i++) {
        char where[4][32];
        const char *what[4] = {"DBSIZE", "KEYS", "SCAN", "RANDOMKEY"};
        for (int k = 0; k < 4; k++)
            snprintf(where[k], sizeof where[k], "node %d %s", i, what[k]);
        redisContext *c = cluster_redis(i);
        bool ok = node_dbsize_is(c, x->count, where[0]) && node_keys_once(c, x->live, where[1]) &&
                  node_scan_once(c, x->live, where[2]) && node_randomkey_live(c, x->live, where[3]);
        redisFree(c);
        if (!ok)
            return false;
    }
    return true;
}

/* The node index of a CLUSTER SLOTS address; -1 if none. */
static int node_at(const char *ip)
{
    for (int i = 0; i < NODES; i++)
        if (strcmp(cluster_host(i), ip) == 0)
            return i;
    return -1;
}

/* The masters CLUSTER SLOTS lists at node 0, each asked for its node-local
 * DBSIZE and KEYS on a cluster-aware connection (it sent CLUSTER SLOTS):
 * the sums are the cluster's. */
static bool masters_add_up(void *arg)
{
    const struct expect *x = arg;
    redisContext *c0 = cluster_redis(0);
    redisReply *slots = cmd(c0, "CLUSTER SLOTS");
    bool is_master[NODES] = {false};
    for (size_t i = 0; slots->type == REDIS_REPLY_ARRAY && i < slots->elements; i++) {
        const redisReply *range = slots->element[i];
        if (range->elements >= 3 && range->element[2]->elements >= 1) {
            int n = node_at(range->element[2]->element[0]->str);
            assert_true(n >= 0);
            is_master[n] = true;
        }
    }
    freeReplyObject(slots);
    redisFree(c0);
    long long total = 0;
    int seen[KEYS] = {0};
    bool ok = true;
    for (int i = 0; i < NODES && ok; i++) {
        if (!is_master[i])
            continue;
        redisContext *c = cluster_redis(i);
        freeReplyObject(cmd(c, "CLUSTER SLOTS")); /* now cluster-aware */
        redisReply *r = cmd(c, "DBSIZE");
        total += r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
        freeReplyObject(r);
        r = cmd(c, "KEYS *");
        ok = count_keys(r, seen, "master");
        freeReplyObject(r);
        redisFree(c);
    }
    if (total != x->count)
        fprintf(stderr, "masters' DBSIZE add up to %lld, want %lld\n", total, x->count);
    return ok && total == x->count && each_once(seen, x->live, "masters' KEYS");
}

/* SET ks:0 acknowledged at node 0 (peer links may still be dialling). */
static bool first_write(void *arg)
{
    (void)arg;
    redisReply *r = cluster_redis_command(0, "SET ks:0 v0");
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    return ok;
}

/* Writes the KEYS keys, spread over the nodes; all live. */
static void write_keys(bool *live)
{
    assert_true(cluster_wait(first_write, NULL, 10000));
    redisContext *c[NODES];
    for (int i = 0; i < NODES; i++)
        c[i] = cluster_redis(i);
    for (int k = 0; k < KEYS; k++) {
        /* right after formation a node whose peer links are still being
         * dialled answers -UNAVAILABLE: retried, as a client would */
        int64_t deadline = cluster_now_ms() + 10000;
        redisReply *r = cmd(c[k % NODES], "SET ks:%d v%d", k, k);
        while (r->type == REDIS_REPLY_ERROR && cluster_now_ms() < deadline) {
            freeReplyObject(r);
            usleep(20 * 1000);
            r = cmd(c[k % NODES], "SET ks:%d v%d", k, k);
        }
        if (r->type != REDIS_REPLY_STATUS)
            fail_msg("SET ks:%d at node %d: %s", k, k % NODES,
                     r->type == REDIS_REPLY_ERROR ? r->str : "not a status");
        freeReplyObject(r);
        live[k] = true;
    }
    for (int i = 0; i < NODES; i++)
        redisFree(c[i]);
}

static void keyspace_with(const char *replicas)
{
    bool live[KEYS];
    start_cluster(replicas);
    write_keys(live);
    struct expect x = {live, KEYS};
    assert_true(cluster_wait(every_node_answers_all, &x, 10000));
    assert_true(cluster_wait(masters_add_up, &x, 10000));
}

/* OBJECT ENCODING and MEMORY USAGE of keys at every node: with 2 replicas
 * of 3 a third of them are held elsewhere, and reach their key's replicas
 * as keyed reads do (RING.KEYINFO); a missing key is nil. */
static void keyinfo_everywhere(void)
{
    for (int i = 0; i < NODES; i++) {
        redisContext *c = cluster_redis(i);
        for (int k = 0; k < 30; k++) {
            redisReply *r = cmd(c, "OBJECT ENCODING ks:%d", k);
            if (r->type != REDIS_REPLY_STRING || strcmp(r->str, "embstr") != 0)
                fail_msg("node %d: OBJECT ENCODING ks:%d gave %s, not embstr", i, k,
                         r->type == REDIS_REPLY_ERROR ? r->str : "another reply");
            freeReplyObject(r);
            r = cmd(c, "MEMORY USAGE ks:%d", k);
            if (r->type != REDIS_REPLY_INTEGER || r->integer < 16)
                fail_msg("node %d: MEMORY USAGE ks:%d gave %s", i, k,
                         r->type == REDIS_REPLY_ERROR ? r->str : "no byte count");
            freeReplyObject(r);
        }
        redisReply *r = cmd(c, "OBJECT ENCODING ks:absent");
        assert_int_equal(r->type, REDIS_REPLY_NIL);
        freeReplyObject(r);
        redisFree(c);
    }
}

static void test_keyspace_replicas_2(void **state)
{
    (void)state;
    keyspace_with("2");
    keyinfo_everywhere();
    redisReply *r = cluster_redis_command(0, "RING.LOCAL DBSIZE"); /* for peers only */
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
}

static void test_keyspace_replicas_3(void **state)
{
    (void)state;
    keyspace_with("3");
}

static void test_keyspace_deleted_keys_left_out(void **state)
{
    (void)state;
    bool live[KEYS];
    start_cluster("2");
    write_keys(live);
    redisContext *c = cluster_redis(1);
    for (int k = 1; k < KEYS; k++) {
        redisReply *r = cmd(c, "DEL ks:%d", k);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        freeReplyObject(r);
        live[k] = false;
    }
    redisFree(c);
    struct expect x = {live, 1};
    assert_true(cluster_wait(every_node_answers_all, &x, 10000));
}

/* RANDOMKEY among the few live keys left between tombstones (which no node
 * answers for, so most samples miss): every answer is a live key, the
 * answers vary, and each call is quick (the walk after missed samples is
 * bounded; RANDOMKEY_SLOW_MS is generous, for a loaded machine). */
static void test_keyspace_randomkey_varies(void **state)
{
    (void)state;
    bool live[KEYS];
    start_cluster("2");
    write_keys(live);
    redisContext *c = cluster_redis(2);
    for (int k = RANDOMKEY_LIVE; k < KEYS; k++) {
        freeReplyObject(cmd(c, "DEL ks:%d", k));
        live[k] = false;
    }
    struct expect x = {live, RANDOMKEY_LIVE};
    assert_true(cluster_wait(every_node_answers_all, &x, 10000));
    bool seen[KEYS] = {false};
    int distinct = 0;
    for (int i = 0; i < RANDOMKEY_CALLS; i++) {
        int64_t t0 = cluster_now_ms();
        redisReply *r = cmd(c, "RANDOMKEY");
        int64_t took_ms = cluster_now_ms() - t0;
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        int k = key_index(r->str, r->len);
        freeReplyObject(r);
        assert_true(k >= 0 && live[k]);
        assert_true(took_ms < RANDOMKEY_SLOW_MS);
        distinct += !seen[k];
        seen[k] = true;
    }
    redisFree(c);
    if (distinct < RANDOMKEY_DISTINCT_MIN)
        fprintf(stderr, "RANDOMKEY gave %d distinct keys in %d calls\n", distinct, RANDOMKEY_CALLS);
    assert_true(distinct >= RANDOMKEY_DISTINCT_MIN);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_keyspace_replicas_2, cluster_forget_all),
        cmocka_unit_test_teardown(test_keyspace_replicas_3, cluster_forget_all),
        cmocka_unit_test_teardown(test_keyspace_deleted_keys_left_out, cluster_forget_all),
        cmocka_unit_test_teardown(test_keyspace_randomkey_varies, cluster_forget_all),
    };
    return cluster_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
