/* test_weights: the ring that real nodes build shares partitions by weight
 * and spreads preference lists over nodes and zones (cluster_harness.h).
 * - Three nodes with weights 100:100:200, started from one seed, form one
 *   cluster with one ring hash; on every node, GET /v1/ring and GET /v1/nodes
 *   give each node Q * w / W partitions (256/256/512 at Q = 1024) within
 *   max(1, 10%), the owners of the partitions add up to those counts, and
 *   every preference list names N distinct members.
 * - Five nodes in three zones (weights 100:100:200:100:100, zones a b c a b)
 *   do the same, and every preference list names N = 3 distinct zones.
 * Were weights ignored, equal shares (341 or 342 of 1024 for three nodes,
 * 204 or 205 for five) would miss the bound of the weight-200 node (512 +- 51;
 * 341 +- 34 of five). Every wait is on a condition with a deadline. */
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

#define FORM_MS 20000

struct spec {
    const char *weight;
    const char *zone; /* NULL: none */
};

/* Starts nodes 0 .. n - 1 (all but the first seeded at it) and waits until
 * they agree on members and ring. */
static void start_cluster(const struct spec *specs, int n)
{
    for (int i = 0; i < n; i++) {
        const char *flags[7] = {"--weight", specs[i].weight};
        int k = 2;
        if (specs[i].zone) {
            flags[k++] = "--zone";
            flags[k++] = specs[i].zone;
        }
        if (i != 0) {
            flags[k++] = "--seeds";
            flags[k++] = cluster_seed(0);
        }
        assert_int_equal(cluster_start(i, flags), 0);
    }
    if (!cluster_wait(cluster_formed, &n, FORM_MS)) {
        cluster_print_views(n);
        fail_msg("%d nodes did not agree on members and ring hash within %d ms", n, FORM_MS);
    }
}

/* The index of the started node with this id, or -1. */
static int node_of(const char *id, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(cluster_node(i)->id, id) == 0)
            return i;
    return -1;
}

/* Checks viewer's ring against the specs: members, weights, shares (from
 * /v1/ring's members, its owners and /v1/nodes), distinct nodes in every
 * list and, when zones, distinct zones. */
static void check_ring(int viewer, const struct spec *specs, int n, bool zones)
{
    json_t *ring = cluster_get(viewer, "/v1/ring");
    json_t *nodes = cluster_get(viewer, "/v1/nodes");
    assert_non_null(ring);
    assert_non_null(nodes);
    json_int_t q = json_integer_value(json_object_get(ring, "partitions"));
    json_int_t replicas = json_integer_value(json_object_get(ring, "replicas"));
    json_t *owners = json_object_get(ring, "owners"), *members = json_object_get(ring, "members");
    assert_int_equal(json_array_size(owners), (size_t)q);
    assert_int_equal(replicas, n < 3 ? n : 3);
    assert_int_equal(json_array_size(members), (size_t)n);

    double total_weight = 0;
    for (int i = 0; i < n; i++)
        total_weight += atof(specs[i].weight);
    json_int_t owned_first[CLUSTER_NODES_MAX] = {0};
    json_t *list, *m;
    size_t p, k;
    json_array_foreach(owners, p, list) {
        assert_int_equal(json_array_size(list), (size_t)replicas);
        int seen[3] = {0};
        json_array_foreach(list, k, m) {
            int i = node_of(json_string_value(m) ?: "", n);
            assert_true(i >= 0);
            for (size_t j = 0; j < k; j++) {
                if (seen[j] == i)
                    fail_msg("node %d: partition %zu names node %d twice", viewer, p, i);
                if (zones && strcmp(specs[seen[j]].zone, specs[i].zone) == 0)
                    fail_msg("node %d: partition %zu names zone %s twice", viewer, p,
                             specs[i].zone);
            }
            seen[k] = i;
        }
        owned_first[seen[0]]++;
    }
    json_array_foreach(members, k, m) {
        int i = node_of(json_string_value(json_object_get(m, "id")) ?: "", n);
        assert_true(i >= 0);
        json_int_t owned = json_integer_value(json_object_get(m, "owned"));
        double share = (double)q * atof(specs[i].weight) / total_weight;
        printf("weights: node %d sees node %d (weight %s): %lld partitions, share %.1f\n",
               viewer, i, specs[i].weight, (long long)owned, share);
        assert_int_equal(json_integer_value(json_object_get(m, "weight")), atoi(specs[i].weight));
        assert_int_equal(owned, owned_first[i]);
        double off = (double)owned - share, bound = 0.1 * share > 1 ? 0.1 * share : 1;
        if (off > bound || -off > bound)
            fail_msg("node %d: node %d owns %lld partitions, not %.1f within max(1, 10%%)",
                     viewer, i, (long long)owned, share);
    }
    json_array_foreach(json_object_get(nodes, "nodes"), k, m) {
        int i = node_of(json_string_value(json_object_get(m, "id")) ?: "", n);
        assert_true(i >= 0);
        assert_int_equal(json_integer_value(json_object_get(m, "partitions")), owned_first[i]);
    }
    json_decref(nodes);
    json_decref(ring);
}

static void test_weights_share_partitions(void **state)
{
    (void)state;
    static const struct spec specs[] = {{"100", NULL}, {"100", NULL}, {"200", NULL}};
    start_cluster(specs, 3);
    for (int i = 0; i < 3; i++)
        check_ring(i, specs, 3, false);
}

static void test_weights_lists_span_zones(void **state)
{
    (void)state;
    static const struct spec specs[] = {
        {"100", "a"}, {"100", "b"}, {"200", "c"}, {"100", "a"}, {"100", "b"}};
    start_cluster(specs, 5);
    for (int i = 0; i < 5; i++)
        check_ring(i, specs, 5, true);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_weights_share_partitions, cluster_forget_all),
        cmocka_unit_test_teardown(test_weights_lists_span_zones, cluster_forget_all),
    };
    return cluster_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
