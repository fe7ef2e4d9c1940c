/* test_concurrency.c: many clients at once against one node (--threads 4).
 * THREADS worker threads each drive CONNS_PER_THREAD hiredis connections; every
 * connection owns its key range ("c:<conn>:<i>"), writes and reads it back in
 * pipelined rounds, and also increments one shared counter that every
 * connection hits, so the node must serialise writes to a key arriving from
 * connections on different shards. Workers never call cmocka: each records
 * its first error as text, and the cmocka thread checks them after joining,
 * then verifies the totals (DBSIZE, every value, the shared counter).
 * A second case churns connections (connect, write, read, close) from several
 * threads and then waits, with a deadline, for connected_clients to return to
 * one. Every loop is bounded by counts; every wait by hiredis's timeout. */
#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 8
#define CONNS_PER_THREAD 8
#define CONNS (THREADS * CONNS_PER_THREAD)
#define KEYS_PER_CONN 100
#define ROUNDS 3
#define CHURN_THREADS 4
#define CHURN_CONNS 100
#define ERR_MAX 320

static struct harness_server server;

static int group_setup(void **state)
{
    struct harness_opts o = {.threads = 4};
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
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    redisFree(*state);
    return 0;
}

struct worker {
    pthread_t tid;
    int index;
    char err[ERR_MAX]; /* first failure, empty when none */
};

static void worker_fail(struct worker *w, const char *what, const redisReply *r,
                        const redisContext *c)
{
    if (w->err[0] != '\0')
        return;
    char got[160];
    if (r == NULL)
        snprintf(got, sizeof(got), "no reply (%.128s)", c->errstr);
    else
        harness_escape(r->str != NULL ? r->str : "", r->str != NULL ? r->len : 0, got, sizeof(got));
    snprintf(w->err, sizeof(w->err), "worker %d: %s: got type %d \"%s\"", w->index, what,
             r != NULL ? r->type : -1, got);
}

static void value_of(char *out, size_t cap, int conn, int key, int round)
{
    snprintf(out, cap, "v-%d-%d-%d-%0*d", conn, key, round, (key % 7) * 10, 0);
}

/* One round on one connection: SET its keys, INCR the shared counter, GET the keys back. */
static bool conn_round(struct worker *w, redisContext *c, int conn, int round)
{
    char val[128];
    for (int k = 0; k < KEYS_PER_CONN; k++) {
        value_of(val, sizeof(val), conn, k, round);
        redisAppendCommand(c, "SET c:%d:%d %s", conn, k, val);
    }
    redisAppendCommand(c, "INCR shared");
    for (int k = 0; k < KEYS_PER_CONN; k++)
        redisAppendCommand(c, "GET c:%d:%d", conn, k);
    for (int k = 0; k < 2 * KEYS_PER_CONN + 1; k++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL) {
            worker_fail(w, "pipeline", NULL, c);
            return false;
        }
        bool ok;
        if (k < KEYS_PER_CONN) {
            ok = harness_reply_matches(r, HARNESS_OK, NULL, 0);
        } else if (k == KEYS_PER_CONN) {
            ok = r->type == REDIS_REPLY_INTEGER && r->integer >= 1 &&
                 r->integer <= (long long)CONNS * ROUNDS;
        } else {
            value_of(val, sizeof(val), conn, k - KEYS_PER_CONN - 1, round);
            ok = harness_reply_matches(r, HARNESS_BULK(val), NULL, 0);
        }
        if (!ok)
            worker_fail(w, k < KEYS_PER_CONN ? "SET" : k == KEYS_PER_CONN ? "INCR" : "GET", r, c);
        freeReplyObject(r);
        if (!ok)
            return false;
    }
    return true;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    redisContext *conns[CONNS_PER_THREAD] = {0};
    struct timeval tv = {.tv_sec = HARNESS_TIMEOUT_MS / 1000};
    for (int i = 0; i < CONNS_PER_THREAD; i++) {
        conns[i] = redisConnectWithTimeout("127.0.0.1", server.port, tv);
        if (conns[i] == NULL || conns[i]->err) {
            snprintf(w->err, sizeof(w->err), "worker %d: connect %d failed: %s", w->index, i,
                     conns[i] ? conns[i]->errstr : "no memory");
            goto out;
        }
        redisSetTimeout(conns[i], tv);
    }
    for (int round = 0; round < ROUNDS; round++)
        for (int i = 0; i < CONNS_PER_THREAD; i++)
            if (!conn_round(w, conns[i], w->index * CONNS_PER_THREAD + i, round))
                goto out;
out:
    for (int i = 0; i < CONNS_PER_THREAD; i++)
        if (conns[i] != NULL)
            redisFree(conns[i]);
    return NULL;
}

static void run_workers(struct worker *ws, int n, void *(*fn)(void *))
{
    for (int i = 0; i < n; i++) {
        ws[i].index = i;
        ws[i].err[0] = '\0';
        assert_int_equal(pthread_create(&ws[i].tid, NULL, fn, &ws[i]), 0);
    }
    for (int i = 0; i < n; i++)
        pthread_join(ws[i].tid, NULL);
    for (int i = 0; i < n; i++) {
        if (ws[i].err[0] != '\0') {
            print_error("%s\n", ws[i].err);
            fail();
        }
    }
}

static void test_concurrency_many_clients_own_key_ranges(void **state)
{
    redisContext *c = *state;
    struct worker ws[THREADS];
    run_workers(ws, THREADS, worker_main);
    char total[16];
    snprintf(total, sizeof(total), "%d", CONNS * ROUNDS);
    harness_expect(c, HARNESS_BULK(total), "GET shared");
    harness_expect(c, HARNESS_INT(CONNS * KEYS_PER_CONN + 1), "DBSIZE");
    char val[128];
    for (int conn = 0; conn < CONNS; conn++) {
        for (int k = 0; k < KEYS_PER_CONN; k++)
            redisAppendCommand(c, "GET c:%d:%d", conn, k);
        for (int k = 0; k < KEYS_PER_CONN; k++) {
            value_of(val, sizeof(val), conn, k, ROUNDS - 1);
            redisReply *r = harness_next_reply(c);
            harness_check(r, HARNESS_BULK(val), "final GET");
            freeReplyObject(r);
        }
    }
}

static void *churn_main(void *arg)
{
    struct worker *w = arg;
    struct timeval tv = {.tv_sec = HARNESS_TIMEOUT_MS / 1000};
    for (int i = 0; i < CHURN_CONNS && w->err[0] == '\0'; i++) {
        redisContext *c = redisConnectWithTimeout("127.0.0.1", server.port, tv);
        if (c == NULL || c->err) {
            snprintf(w->err, sizeof(w->err), "churn %d: connect %d failed: %s", w->index, i,
                     c ? c->errstr : "no memory");
            if (c != NULL)
                redisFree(c);
            return NULL;
        }
        redisSetTimeout(c, tv);
        char want[32];
        snprintf(want, sizeof(want), "%d-%d", w->index, i);
        redisReply *r = redisCommand(c, "SET churn:%d %s", w->index, want);
        if (r == NULL || !harness_reply_matches(r, HARNESS_OK, NULL, 0))
            worker_fail(w, "churn SET", r, c);
        freeReplyObject(r);
        r = redisCommand(c, "GET churn:%d", w->index);
        if (r == NULL || !harness_reply_matches(r, HARNESS_BULK(want), NULL, 0))
            worker_fail(w, "churn GET", r, c);
        freeReplyObject(r);
        redisFree(c);
    }
    return NULL;
}

struct clients_cond {
    redisContext *c;
    char want[32];
};

static bool only_me_connected(void *arg)
{
    struct clients_cond *cc = arg;
    redisReply *r = redisCommand(cc->c, "INFO clients");
    bool ok = r != NULL && r->type == REDIS_REPLY_STRING && strstr(r->str, cc->want) != NULL;
    freeReplyObject(r);
    return ok;
}

static void test_concurrency_connection_churn(void **state)
{
    redisContext *c = *state;
    struct worker ws[CHURN_THREADS];
    run_workers(ws, CHURN_THREADS, churn_main);
    for (int i = 0; i < CHURN_THREADS; i++) {
        char want[32];
        snprintf(want, sizeof(want), "%d-%d", i, CHURN_CONNS - 1);
        harness_expect(c, HARNESS_BULK(want), "GET churn:%d", i);
    }
    struct clients_cond cc = {c, "connected_clients:1\r\n"};
    assert_true(harness_wait_until(only_me_connected, &cc, HARNESS_TIMEOUT_MS, 10));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_concurrency_many_clients_own_key_ranges, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_concurrency_connection_churn, setup, teardown),
    };
    return harness_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
