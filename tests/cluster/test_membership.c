/* test_membership: joins and leaves of real ringkv processes on 127.0.0.2 ..
 * 127.0.0.6 (cluster_harness.h), with the ring agreed through the claimant
 * (admin.c) and the default Q = 1024.
 * - Four nodes form from one seed and agree on the ring (hash and epoch).
 * - A fifth joins (auto-join): every node reports the same new ring, every
 *   partition that changed owner moved to the new node, and it owns Q/5
 *   within max(1, 10%): the minimum movement, not a rebuilt chain's.
 * - DELETE /v1/nodes/{id}: only that node's partitions move, the others list
 *   it "left", GET /v1/ring shows the moves as pending transfers, and the node
 *   that left is a cluster of one.
 * - The API's errors: 400 bad JSON or fields, 404 unknown id, 409 a node
 *   already leaving or left, the last node of a cluster, a POST to a node
 *   not in a ring yet or of a node already in it.
 * - A node started with --auto-join no and a seed is listed "joining", not
 *   admitted, with no partitions, until POST /v1/nodes admits it; a cluster
 *   of one is added by POST too.
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

#define AGREE_MS 20000
#define Q 1024

/* What every node in nodes[0..n) must report: the same ring, of
 * ring_members members, and each node of the list up. */
struct agreement {
    int nodes[CLUSTER_NODES_MAX];
    int n;
    size_t ring_members;
};

static bool node_lists_up(int viewer, const struct agreement *w)
{
    for (int k = 0; k < w->n; k++) {
        const char *st = cluster_status_of(viewer, cluster_node(w->nodes[k])->id);
        if (!st || strcmp(st, "up") != 0)
            return false;
    }
    return true;
}

static bool agree(void *arg)
{
    const struct agreement *w = arg;
    char hash0[32] = "";
    json_int_t epoch0 = -1;
    for (int k = 0; k < w->n; k++) {
        json_t *ring = cluster_get(w->nodes[k], "/v1/ring");
        const char *hash = json_string_value(json_object_get(ring, "hash"));
        json_int_t epoch = json_integer_value(json_object_get(ring, "epoch"));
        bool ok = hash && json_array_size(json_object_get(ring, "members")) == w->ring_members &&
                  (k == 0 || (strcmp(hash, hash0) == 0 && epoch == epoch0));
        if (ok && k == 0) {
            snprintf(hash0, sizeof hash0, "%s", hash);
            epoch0 = epoch;
        }
        json_decref(ring);
        if (!ok || !node_lists_up(w->nodes[k], w))
            return false;
    }
    return true;
}

static void wait_agree(const struct agreement *w, const char *what)
{
    int64_t t0 = cluster_now_ms();
    if (!cluster_wait(agree, (void *)w, AGREE_MS))
        fail_msg("%s: the nodes did not agree on a ring of %zu members within %d ms", what,
                 w->ring_members, AGREE_MS);
    printf("membership: %s: agreed after %lld ms\n", what, (long long)(cluster_now_ms() - t0));
}

/* Owner ids (first of each list) of node i's ring into owners[Q]. */
static void owners_of(int i, char owners[Q][41])
{
    json_t *ring = cluster_get(i, "/v1/ring");
    json_t *lists = json_object_get(ring, "owners");
    assert_int_equal(json_array_size(lists), Q);
    for (size_t p = 0; p < Q; p++)
        snprintf(owners[p], 41, "%s",
                 json_string_value(json_array_get(json_array_get(lists, p), 0)) ?: "");
    json_decref(ring);
}

static int owned(char owners[Q][41], const char *id)
{
    int n = 0;
    for (int p = 0; p < Q; p++)
        n += strcmp(owners[p], id) == 0;
    return n;
}

static void start(int i, const char *seed_of, const char *auto_join)
{
    const char *flags[5] = {NULL};
    int k = 0;
    if (seed_of) {
        flags[k++] = "--seeds";
        flags[k++] = seed_of;
    }
    if (auto_join) {
        flags[k++] = "--auto-join";
        flags[k++] = auto_join;
    }
    assert_int_equal(cluster_start(i, flags), 0);
}

/* The status and body of a request; the body is freed here, its "status"
 * field copied to field (when not NULL). */
static int request(int i, const char *method, const char *path, const char *body, char *field,
                   size_t cap)
{
    int status;
    json_t *doc = cluster_request(i, method, path, body, &status);
    if (field)
        snprintf(field, cap, "%s", json_string_value(json_object_get(doc, "status")) ?: "");
    json_decref(doc);
    return status;
}

static void check_share(int got, int members, const char *what)
{
    double share = (double)Q / members, bound = share / 10 > 1 ? share / 10 : 1;
    printf("membership: %s owns %d partitions, its share %.1f\n", what, got, share);
    if (got < share - bound || got > share + bound)
        fail_msg("%s owns %d partitions, not %.1f within %.1f", what, got, share, bound);
}

static char before[Q][41], after[Q][41];

/* Node 1, which left, reports a cluster of one: its ring and its list. */
static bool alone(void *arg)
{
    int i = *(int *)arg;
    json_t *ring = cluster_get(i, "/v1/ring"), *nodes = cluster_get(i, "/v1/nodes");
    bool ok = json_array_size(json_object_get(ring, "members")) == 1 &&
              json_array_size(json_object_get(nodes, "nodes")) == 1;
    json_decref(ring);
    json_decref(nodes);
    return ok;
}

static bool seen_left(void *arg)
{
    const struct agreement *w = arg;
    for (int k = 0; k < w->n; k++) {
        const char *st = cluster_status_of(w->nodes[k], cluster_node(1)->id);
        if (!st || strcmp(st, "left") != 0)
            return false;
    }
    return agree(arg);
}

/* Node i's pending transfers: moved of them, all from `from` (NULL: any). */
static void check_pending(int i, const char *from, int moved)
{
    json_t *ring = cluster_get(i, "/v1/ring"), *t;
    json_t *pending = json_object_get(ring, "pending_transfers");
    size_t k;
    assert_int_equal(json_array_size(pending), moved);
    json_array_foreach(pending, k, t) {
        if (from)
            assert_string_equal(json_string_value(json_object_get(t, "from")), from);
        assert_string_equal(json_string_value(json_object_get(t, "state")), "pending");
    }
    json_decref(ring);
    json_t *stats = cluster_get(i, "/v1/stats");
    assert_int_equal(json_integer_value(json_object_get(stats, "pending_transfers")), moved);
    json_decref(stats);
}

static void test_membership_join_and_leave_move_the_minimum(void **state)
{
    (void)state;
    start(0, NULL, NULL);
    for (int i = 1; i < 4; i++)
        start(i, cluster_seed(0), NULL);
    struct agreement four = {{0, 1, 2, 3}, 4, 4};
    wait_agree(&four, "4 nodes from one seed");
    owners_of(0, before);

    /* (b) a fifth joins */
    start(4, cluster_seed(0), NULL);
    struct agreement five = {{0, 1, 2, 3, 4}, 5, 5};
    wait_agree(&five, "a 5th node joined");
    owners_of(3, after);
    const char *id4 = cluster_node(4)->id;
    int moved = 0;
    for (int p = 0; p < Q; p++)
        if (strcmp(before[p], after[p]) != 0) {
            moved++;
            if (strcmp(after[p], id4) != 0)
                fail_msg("partition %d moved from %s to %s, not to the new node", p, before[p],
                         after[p]);
        }
    printf("membership: join 4 -> 5 moved %d partitions (ideal %.1f)\n", moved, Q / 5.0);
    check_share(owned(after, id4), 5, "the joiner");
    check_pending(2, NULL, moved);

    /* (c) node 1 leaves */
    memcpy(before, after, sizeof before);
    char id1[41], status[32];
    snprintf(id1, sizeof id1, "%s", cluster_node(1)->id);
    char path[128];
    snprintf(path, sizeof path, "/v1/nodes/%s", id1);
    assert_int_equal(request(0, "DELETE", path, "", status, sizeof status), 202);
    assert_string_equal(status, "leaving");
    assert_int_equal(request(0, "DELETE", path, "", NULL, 0), 409); /* already leaving (or left) */
    struct agreement rest = {{0, 2, 3, 4}, 4, 4};
    if (!cluster_wait(seen_left, &rest, AGREE_MS))
        fail_msg("node 1 not seen left by all, or no agreed ring without it");
    int one = 1;
    if (!cluster_wait(alone, &one, AGREE_MS))
        fail_msg("node 1 is not a cluster of one after leaving");
    owners_of(4, after);
    moved = 0;
    for (int p = 0; p < Q; p++) {
        if (strcmp(before[p], after[p]) == 0)
            continue;
        moved++;
        if (strcmp(before[p], id1) != 0)
            fail_msg("partition %d moved from %s, which did not leave", p, before[p]);
    }
    printf("membership: leave 5 -> 4 moved %d partitions (ideal: the leaver's %d)\n", moved,
           owned(before, id1));
    assert_int_equal(moved, owned(before, id1));
    assert_int_equal(owned(after, id1), 0);
    check_pending(0, id1, moved);

    /* (e) the errors */
    assert_int_equal(request(0, "POST", "/v1/nodes", "{", NULL, 0), 400);
    assert_int_equal(request(0, "POST", "/v1/nodes", "{\"address\": 5}", NULL, 0), 400);
    assert_int_equal(request(0, "POST", "/v1/nodes", "{\"address\": \"nohost\"}", NULL, 0), 400);
    assert_int_equal(request(0, "DELETE", "/v1/nodes/xyz", "", NULL, 0), 400);
    assert_int_equal(request(0, "DELETE", "/v1/nodes/0123456789012345678901234567890123456789",
                             "", NULL, 0), 404);
    assert_int_equal(request(0, "DELETE", path, "", NULL, 0), 409);   /* has left */
    assert_int_equal(request(1, "DELETE", path, "", NULL, 0), 409);   /* the last node */
    /* a dry run answers the plan and changes nothing */
    char dry[128];
    snprintf(dry, sizeof dry, "/v1/nodes/%s?dry_run=1", cluster_node(2)->id);
    assert_int_equal(request(0, "DELETE", dry, "", NULL, 0), 200);
    char seed[64], body[128];
    snprintf(seed, sizeof seed, "%s", cluster_seed(1));
    snprintf(body, sizeof body, "{\"address\": \"%s\"}", seed);
    assert_int_equal(request(0, "POST", "/v1/nodes?dry_run=1", body, NULL, 0), 200);
    assert_true(agree(&rest));
    owners_of(0, before);
    assert_memory_equal(before, after, sizeof before);
}

static bool listed_waiting(void *arg)
{
    int i = *(int *)arg;
    json_t *doc = cluster_get(0, "/v1/nodes"), *n;
    size_t k;
    bool found = false;
    json_array_foreach(json_object_get(doc, "nodes"), k, n) {
        if (strcmp(json_string_value(json_object_get(n, "id")) ?: "", cluster_node(i)->id) != 0)
            continue;
        found = strcmp(json_string_value(json_object_get(n, "status")) ?: "", "joining") == 0 &&
                json_is_false(json_object_get(n, "admitted")) &&
                json_integer_value(json_object_get(n, "partitions")) == 0;
    }
    json_decref(doc);
    return found;
}

static void test_membership_operator_adds_nodes(void **state)
{
    (void)state;
    start(0, NULL, NULL);
    start(1, cluster_seed(0), NULL);
    start(2, cluster_seed(0), NULL);
    struct agreement three = {{0, 1, 2}, 3, 3};
    wait_agree(&three, "3 nodes");
    /* (d) a node that waits for an operator */
    start(3, cluster_seed(0), "no");
    int three_i = 3;
    if (!cluster_wait(listed_waiting, &three_i, AGREE_MS))
        fail_msg("the node started with auto-join no is not listed joining, not admitted");
    char body[128], status[32];
    snprintf(body, sizeof body, "{\"address\": \"%s\"}", cluster_seed(1));
    assert_int_equal(request(3, "POST", "/v1/nodes", body, NULL, 0), 409); /* not in a ring */
    assert_true(agree(&three)); /* still three in the ring */
    snprintf(body, sizeof body, "{\"address\": \"%s\"}", cluster_seed(3));
    assert_int_equal(request(1, "POST", "/v1/nodes", body, status, sizeof status), 202);
    assert_string_equal(status, "joining");
    struct agreement four = {{0, 1, 2, 3}, 4, 4};
    wait_agree(&four, "the node admitted by POST /v1/nodes");
    char owners[Q][41];
    owners_of(3, owners);
    check_share(owned(owners, cluster_node(3)->id), 4, "the admitted node");
    assert_int_equal(request(2, "POST", "/v1/nodes", body, NULL, 0), 409); /* a member now */

    /* a cluster of one, added by POST */
    start(4, NULL, NULL);
    snprintf(body, sizeof body, "{\"address\": \"%s\"}", cluster_seed(4));
    assert_int_equal(request(2, "POST", "/v1/nodes", body, status, sizeof status), 202);
    struct agreement five = {{0, 1, 2, 3, 4}, 5, 5};
    wait_agree(&five, "a cluster of one added by POST /v1/nodes");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_membership_join_and_leave_move_the_minimum, cluster_forget_all),
        cmocka_unit_test_teardown(test_membership_operator_adds_nodes, cluster_forget_all),
    };
    return cluster_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
