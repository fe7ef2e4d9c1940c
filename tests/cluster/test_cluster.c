/* test_cluster: real ringkv processes on 127.0.0.2 .. 127.0.0.6 gossiping
 * over their cluster ports (cluster_harness.h).
 * - Five nodes started with one seed and a cluster-secret (so through peer
 *   sessions) form one cluster: every node lists five
 *   members up and reports the same ring epoch and hash, and the partitions
 *   they own add up to Q.
 * - A node killed with SIGKILL is seen down by every other node within 10 s,
 *   and up again within 5 s of its restart (same directory: same id); one
 *   frozen with SIGSTOP is seen down within 10 s and up within 5 s of
 *   SIGCONT. The times measured are printed.
 * - With cluster-secret, two nodes with the secret form a cluster while a
 *   third with another secret, seeded at the first, is refused (its frames
 *   are counted as refused) and never appears on either; it sees nobody.
 * Every wait is on a condition with a deadline. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cluster_harness.h"

#define FORM_MS 15000
#define DOWN_MS 10000
#define UP_MS 5000

static int n_running; /* nodes 0 .. n_running-1 form the cluster under test */

struct seen {
    int node;          /* whose status */
    const char *want;  /* "up" or "down" */
};

/* True when every other running node reports node's status as want. */
static bool all_see(void *arg)
{
    const struct seen *s = arg;
    for (int i = 0; i < n_running; i++) {
        if (i == s->node)
            continue;
        const char *st = cluster_status_of(i, cluster_node(s->node)->id);
        if (!st || strcmp(st, s->want) != 0)
            return false;
    }
    return true;
}

static void start_seeded(int i, const char *secret)
{
    const char *flags[5] = {NULL};
    int k = 0;
    if (i != 0) {
        flags[k++] = "--seeds";
        flags[k++] = cluster_seed(0);
    }
    if (secret) {
        flags[k++] = "--cluster-secret";
        flags[k++] = secret;
    }
    assert_int_equal(cluster_start(i, flags), 0);
}

/* Waits for node's status to become want on all others, counting from t0
 * (cluster_now_ms() when the event happened); fails past limit_ms from t0.
 * Returns the time it took. */
static int64_t wait_seen(int node, const char *want, int64_t t0, int limit_ms, const char *what)
{
    struct seen s = {node, want};
    int left = (int)(t0 + limit_ms - cluster_now_ms());
    bool ok = cluster_wait(all_see, &s, left > 0 ? left : 0);
    int64_t took = cluster_now_ms() - t0;
    printf("cluster: %s: %s on every other node after %lld ms%s\n", what, want,
           (long long)took, ok ? "" : " (NOT within the limit)");
    if (!ok)
        fail_msg("%s: node %d not seen %s by all within %d ms", what, node, want, limit_ms);
    return took;
}

/* The five run with a cluster-secret: every frame goes through a peer
 * session (admin/peer.c), so detection and return are measured with it. */
#define FIVE_SECRET "five nodes' secret"

static void test_cluster_forms_detects_failures_and_returns(void **state)
{
    (void)state;
    n_running = 5;
    int64_t t0 = cluster_now_ms();
    for (int i = 0; i < n_running; i++)
        start_seeded(i, FIVE_SECRET);
    if (!cluster_wait(cluster_formed, &n_running, FORM_MS))
        fail_msg("5 nodes did not agree on members and ring hash within %d ms", FORM_MS);
    printf("cluster: 5 nodes formed (same members, same ring hash) %lld ms after the first "
           "start\n", (long long)(cluster_now_ms() - t0));
    /* The partitions owned add up to Q on one node's view. */
    json_t *nodes = cluster_get(1, "/v1/nodes"), *ring = cluster_get(1, "/v1/ring");
    json_t *list = json_object_get(nodes, "nodes"), *n;
    size_t k;
    json_int_t total = 0;
    json_array_foreach(list, k, n)
        total += json_integer_value(json_object_get(n, "partitions"));
    assert_int_equal(total, json_integer_value(json_object_get(ring, "partitions")));
    json_decref(nodes);
    json_decref(ring);

    int64_t t = cluster_now_ms();
    cluster_signal(3, SIGKILL);
    wait_seen(3, "down", t, DOWN_MS, "SIGKILL");
    t = cluster_now_ms(); /* the restart's time counts its start-up */
    start_seeded(3, FIVE_SECRET);
    wait_seen(3, "up", t, UP_MS, "restart after SIGKILL (same directory, same id)");

    t = cluster_now_ms();
    cluster_signal(4, SIGSTOP);
    wait_seen(4, "down", t, DOWN_MS, "SIGSTOP");
    t = cluster_now_ms();
    cluster_signal(4, SIGCONT);
    wait_seen(4, "up", t, UP_MS, "SIGCONT");
    if (!cluster_wait(cluster_formed, &n_running, FORM_MS))
        fail_msg("the 5 nodes do not agree again after the failures");
}

static json_int_t metric(int i, const char *key)
{
    json_t *stats = cluster_get(i, "/v1/stats");
    json_int_t v = json_integer_value(json_object_get(stats, key));
    json_decref(stats);
    return v;
}

static bool refused_twice(void *arg)
{
    (void)arg;
    return metric(0, "peer_frames_refused") >= 2;
}

static int member_count(int i)
{
    json_t *nodes = cluster_get(i, "/v1/nodes");
    int count = (int)json_array_size(json_object_get(nodes, "nodes"));
    json_decref(nodes);
    return count;
}

static void test_cluster_wrong_secret_is_refused(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) /* new nodes: with its directory a node rejoins its cluster */
        assert_int_equal(cluster_forget(i), 0);
    n_running = 2;
    start_seeded(0, "right secret");
    start_seeded(1, "right secret");
    if (!cluster_wait(cluster_formed, &n_running, FORM_MS))
        fail_msg("two nodes with the same cluster-secret did not form");
    start_seeded(2, "wrong secret");
    /* Its join requests (every 2 s) arrive and are refused. */
    if (!cluster_wait(refused_twice, NULL, FORM_MS))
        fail_msg("the seed did not refuse the wrong secret's frames");
    assert_true(cluster_formed(&n_running));
    assert_int_equal(member_count(0), 2);
    assert_int_equal(member_count(1), 2);
    assert_int_equal(member_count(2), 1);
    assert_null(cluster_status_of(0, cluster_node(2)->id));
    assert_null(cluster_status_of(1, cluster_node(2)->id));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_cluster_forms_detects_failures_and_returns, cluster_forget_all),
        cmocka_unit_test_teardown(test_cluster_wrong_secret_is_refused, cluster_forget_all),
    };
    return cluster_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
