/* test_restart: a node restarted with its data directory rejoins as itself
 * without seeds (issue 10), with real ringkv processes on 127.0.0.2 .. 4
 * (cluster_harness.h; storage = memory, each node its own directory).
 * - Three nodes formed from one seed agree on the ring hash.
 * - Node 2 killed with SIGKILL (and seen down by the others) and started
 *   again with no seeds: same id; the others see it up again; it lists the
 *   other two as up, heard from since its restart (incarnation above 0:
 *   nothing it could have made up), and reports the ring hash and epoch
 *   they report, the ones from before.
 * - All three stopped and started again, none with seeds: the first, alone
 *   at first, serves the saved ring at once; they find each other and agree
 *   on the same ring as before (hash and epoch).
 * Without the saved cluster state a node started without seeds is a cluster
 * of one: it lists itself only and has a ring of its own.
 * Every wait is on a condition with a deadline. */
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cluster_harness.h"

#define NODES 3
#define FORM_MS 15000
#define DOWN_MS 10000
#define REJOIN_MS 10000

struct ring_id {
    char hash[32];
    json_int_t epoch;
};

/* Node i's ring hash and epoch; false when it does not answer. */
static bool ring_of(int i, struct ring_id *out)
{
    json_t *ring = cluster_get(i, "/v1/ring");
    const char *hash = json_string_value(json_object_get(ring, "hash"));
    bool ok = hash != NULL;
    if (ok) {
        snprintf(out->hash, sizeof out->hash, "%s", hash);
        out->epoch = json_integer_value(json_object_get(ring, "epoch"));
    }
    json_decref(ring);
    return ok;
}

/* True when node i lists exactly the NODES nodes, every one up, and every
 * other one at an incarnation above 0 (heard from, not remembered). */
static bool lists_all_up(int i)
{
    json_t *doc = cluster_get(i, "/v1/nodes");
    json_t *list = json_object_get(doc, "nodes"), *n;
    size_t k;
    int good = 0;
    json_array_foreach(list, k, n) {
        const char *id = json_string_value(json_object_get(n, "id")) ?: "";
        const char *status = json_string_value(json_object_get(n, "status")) ?: "";
        json_int_t inc = json_integer_value(json_object_get(n, "incarnation"));
        for (int j = 0; j < NODES; j++)
            if (strcmp(id, cluster_node(j)->id) == 0 && strcmp(status, "up") == 0 &&
                (j == i || inc > 0))
                good++;
    }
    bool ok = json_array_size(list) == NODES && good == NODES;
    json_decref(doc);
    return ok;
}

/* True when every node lists all up and reports the ring `want` (or, when
 * want->hash is empty, the same ring as node 0). */
static bool agreed(void *arg)
{
    const struct ring_id *want = arg;
    struct ring_id first = {"", 0};
    for (int i = 0; i < NODES; i++) {
        struct ring_id r;
        if (!lists_all_up(i) || !ring_of(i, &r))
            return false;
        if (i == 0)
            first = r;
        const struct ring_id *w = want->hash[0] ? want : &first;
        if (strcmp(r.hash, w->hash) != 0 || r.epoch != w->epoch)
            return false;
    }
    return true;
}

static bool others_see_down(void *arg)
{
    int node = *(int *)arg;
    for (int i = 0; i < NODES; i++) {
        const char *st = i == node ? "down" : cluster_status_of(i, cluster_node(node)->id);
        if (!st || strcmp(st, "down") != 0)
            return false;
    }
    return true;
}

/* Prints what each node sees, for a failure's message. */
static void describe(const char *when)
{
    printf("restart: %s:\n", when);
    for (int i = 0; i < NODES; i++) {
        json_t *doc = cluster_get(i, "/v1/nodes");
        struct ring_id r = {"?", -1};
        ring_of(i, &r);
        printf("  node %d (%s): ring %s epoch %lld, lists %zu node(s):", i,
               cluster_node(i)->id, r.hash, (long long)r.epoch,
               json_array_size(json_object_get(doc, "nodes")));
        json_t *n;
        size_t k;
        json_array_foreach(json_object_get(doc, "nodes"), k, n)
            printf(" %.8s %s inc %lld;", json_string_value(json_object_get(n, "id")) ?: "?",
                   json_string_value(json_object_get(n, "status")) ?: "?",
                   (long long)json_integer_value(json_object_get(n, "incarnation")));
        printf("\n");
        json_decref(doc);
    }
}

static void wait_agreed(const struct ring_id *want, int limit_ms, const char *what)
{
    int64_t t0 = cluster_now_ms();
    bool ok = cluster_wait(agreed, (void *)want, limit_ms);
    printf("restart: %s: %s after %lld ms\n", what, ok ? "agreed" : "NOT agreed",
           (long long)(cluster_now_ms() - t0));
    if (!ok) {
        describe(what);
        fail_msg("%s: the %d nodes do not list each other up with ring %s epoch %lld within "
                 "%d ms", what, NODES, want->hash[0] ? want->hash : "(any, the same)",
                 (long long)want->epoch, limit_ms);
    }
}

static void test_restart_rejoins_without_seeds(void **state)
{
    const char *seeded[] = {"--seeds", NULL, NULL};
    for (int i = 0; i < NODES; i++) {
        seeded[1] = cluster_seed(0);
        assert_int_equal(cluster_start(i, i == 0 ? NULL : seeded), 0);
    }
    struct ring_id any = {"", 0}, before;
    wait_agreed(&any, FORM_MS, "3 nodes from one seed");
    assert_true(ring_of(0, &before));
    char ids[NODES][41];
    for (int i = 0; i < NODES; i++)
        memcpy(ids[i], cluster_node(i)->id, sizeof ids[i]);

    /* kill -9 node 2; once the others see it down, start it with no seeds */
    cluster_signal(2, SIGKILL);
    int two = 2;
    if (!cluster_wait(others_see_down, &two, DOWN_MS))
        fail_msg("node 2 killed was not seen down within %d ms", DOWN_MS);
    assert_int_equal(cluster_start(2, NULL), 0);
    assert_string_equal(cluster_node(2)->id, ids[2]);
    wait_agreed(&before, REJOIN_MS, "node 2 killed and started without seeds");

    /* all three stopped, then started, none with seeds */
    for (int i = 0; i < NODES; i++)
        cluster_stop(i);
    for (int i = 0; i < NODES; i++) {
        assert_int_equal(cluster_start(i, NULL), 0);
        assert_string_equal(cluster_node(i)->id, ids[i]);
        if (i == 0) { /* alone for now, it serves the saved ring, not one of its own */
            struct ring_id r;
            assert_true(ring_of(0, &r));
            if (strcmp(r.hash, before.hash) != 0 || r.epoch != before.epoch)
                fail_msg("node 0 restarted alone has ring %s epoch %lld, not the saved %s "
                         "epoch %lld", r.hash, (long long)r.epoch, before.hash,
                         (long long)before.epoch);
        }
    }
    wait_agreed(&before, FORM_MS, "all three stopped and started without seeds");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_restart_rejoins_without_seeds, cluster_forget_all),
    };
    return cluster_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
