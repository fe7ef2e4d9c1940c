/* test_cluster_info: what a shard answers about the cluster (CLUSTER MYID,
 * CLUSTER INFO, INFO's cluster section) follows a real cluster, read from the
 * snapshot the admin thread publishes (admin/snapshot.h).
 * - Alone, a node answers its own id (the one GET /v1/health gives), one
 *   known node and its ring's epoch.
 * - When two more join it, every node's CLUSTER INFO comes to say
 *   cluster_known_nodes:3, cluster_size:3 and, as current and own epoch, the
 *   epoch its GET /v1/ring gives, the same on all three (so the snapshot
 *   followed each ring change); INFO says cluster_enabled:1 (always: Redis
 *   Cluster clients route by CLUSTER SLOTS, a node alone included).
 * - A node killed with SIGKILL is counted down by the others'
 *   CLUSTER INFO (a change of health alone, no ring change), still known;
 *   cluster_size, the masters (CLUSTER NODES), drops to the two live ones.
 * - Throughout, ringkv_nodes_up is the known nodes less the down ones, and
 *   cluster_state:ok with every slot ok, none failed: with N = min(3,
 *   members) and 3 nodes, every node is in every preference list, so one
 *   down leaves each slot a live node (test_restart shows "fail").
 * Every wait is on a condition with a deadline. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster_harness.h"

#define FORM_MS 15000
#define DOWN_MS 10000

static long long ring_epoch(int i)
{
    json_t *ring = cluster_get(i, "/v1/ring");
    long long e = ring ? json_integer_value(json_object_get(ring, "epoch")) : -1;
    json_decref(ring);
    return e;
}

/* Every slot has a node of its preference list not down: with N = min(3,
 * members), at most 3 nodes and one down, always (what CLUSTER INFO
 * promises: "ok" while every slot is served). */
static bool slots_all_ok(const char *info)
{
    return cluster_info_has(info, "cluster_state:ok") &&
           cluster_info_field(info, "cluster_slots_ok") == 16384 &&
           cluster_info_field(info, "cluster_slots_fail") == 0;
}

struct expect {
    int nodes;       /* nodes 0 .. nodes-1 are asked */
    long long known; /* cluster_known_nodes */
    long long size;  /* cluster_size */
    long long down;  /* ringkv_nodes_down */
    int skip;        /* a node not asked (stopped), or -1 */
};

/* True when every node asked answers CLUSTER INFO as expected, with its
 * /v1/ring's epoch as both epochs, the same epoch on all of them. */
static bool info_agrees(void *arg)
{
    const struct expect *x = arg;
    long long epoch0 = -1;
    for (int i = 0; i < x->nodes; i++) {
        if (i == x->skip)
            continue;
        long long before = ring_epoch(i);
        char *info = cluster_ask(i, "CLUSTER INFO");
        long long after = ring_epoch(i);
        long long f_down = info ? cluster_info_field(info, "ringkv_nodes_down") : -1;
        bool ok = info && before == after && (epoch0 < 0 || before == epoch0) &&
                  cluster_info_field(info, "cluster_current_epoch") == before &&
                  cluster_info_field(info, "cluster_my_epoch") == before &&
                  cluster_info_field(info, "cluster_known_nodes") == x->known &&
                  cluster_info_field(info, "cluster_size") == x->size && f_down == x->down &&
                  cluster_info_field(info, "ringkv_nodes_up") == x->known - x->down &&
                  cluster_info_field(info, "cluster_slots_assigned") == 16384 &&
                  slots_all_ok(info);
        epoch0 = before;
        free(info);
        if (!ok)
            return false;
    }
    return true;
}

static void expect_info(const struct expect *x, int limit_ms, const char *what)
{
    if (cluster_wait(info_agrees, (void *)x, limit_ms))
        return;
    for (int i = 0; i < x->nodes; i++) {
        char *info = i == x->skip ? NULL : cluster_ask(i, "CLUSTER INFO");
        fprintf(stderr, "node %d (ring epoch %lld):\n%s\n", i, ring_epoch(i), info ? info : "-");
        free(info);
    }
    fail_msg("%s: CLUSTER INFO did not follow within %d ms", what, limit_ms);
}

static void expect_myid(int i)
{
    char *id = cluster_ask(i, "CLUSTER MYID");
    assert_non_null(id);
    json_t *health = cluster_get(i, "/v1/health");
    assert_non_null(health);
    assert_string_equal(id, json_string_value(json_object_get(health, "id")));
    assert_string_equal(id, cluster_node(i)->id);
    json_decref(health);
    char *info = cluster_ask(i, "INFO cluster");
    assert_non_null(info);
    assert_non_null(strstr(info, "# Cluster\r\ncluster_enabled:1\r\n"));
    char line[80];
    snprintf(line, sizeof line, "ringkv_node_id:%s\r\n", id);
    assert_non_null(strstr(info, line));
    free(info);
    free(id);
}

static void test_cluster_info_follows_joins_and_failures(void **state)
{
    (void)state;
    assert_int_equal(cluster_start(0, NULL), 0);
    expect_myid(0);
    struct expect alone = {.nodes = 1, .known = 1, .size = 1, .skip = -1};
    expect_info(&alone, 5000, "one node");
    long long epoch_alone = ring_epoch(0);

    const char *seeded[] = {"--seeds", cluster_seed(0), NULL};
    assert_int_equal(cluster_start(1, seeded), 0);
    assert_int_equal(cluster_start(2, seeded), 0);
    struct expect three = {.nodes = 3, .known = 3, .size = 3, .skip = -1};
    expect_info(&three, FORM_MS, "three nodes");
    assert_true(ring_epoch(0) > epoch_alone);
    for (int i = 0; i < 3; i++)
        expect_myid(i);
    char *info = cluster_ask(1, "INFO cluster");
    assert_non_null(info);
    assert_int_equal(cluster_info_field(info, "ringkv_known_nodes"), 3);
    assert_int_equal(cluster_info_field(info, "ringkv_ring_epoch"), ring_epoch(1));
    free(info);

    long long epoch = ring_epoch(0);
    cluster_signal(2, SIGKILL);
    struct expect one_down = {.nodes = 3, .known = 3, .size = 2, .down = 1, .skip = 2};
    expect_info(&one_down, DOWN_MS + 5000, "a node killed");
    assert_int_equal(ring_epoch(0), epoch); /* down is not leaving: same ring */
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_cluster_info_follows_joins_and_failures, cluster_forget_all),
    };
    return cluster_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
