/* test_restart: a node restarted with its data directory rejoins as itself
 * without seeds (issue 10), with real ringkv processes on 127.0.0.2 .. 5
 * (cluster_harness.h; storage = memory, each node its own directory).
 * - A cluster of one restarted answers CLUSTER MYID and CLUSTER INFO at once,
 *   with its saved ring's epoch (the restored ring is published to the
 *   shards' snapshot).
 * - Three nodes formed from one seed agree on the ring hash (run without and
 *   with a cluster-secret).
 * - Node 2 killed with SIGKILL (and seen down by the others) and started
 *   again with no seeds: same id; CLUSTER INFO answers at once with the saved
 *   epoch; the others see it up again; it lists the other two as up, heard
 *   from since its restart (incarnation above 0: nothing it could have made
 *   up), and reports the ring hash and epoch they report, the ones from
 *   before.
 * - All three stopped and started again, none with seeds: the first, alone
 *   at first, serves the saved ring at once and counts the other two down
 *   (not heard from), not up; they find each other and agree on the same
 *   ring as before (hash and epoch).
 * - Four nodes all stopped, one started: it counts three down and says
 *   cluster_state:fail at once (slots whose preference list lacks it).
 * - A node (B) that left while another (A) was down, and the others restarted
 *   since, stays left when A comes back: the restarted nodes kept B as a
 *   tombstone, and A's stale record of B brings it back nowhere (never
 *   "up", in no ring).
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
#include <stdlib.h>
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

/* Node i's flags: base (NULL-terminated, may be NULL), then --seeds seed
 * when seed is not NULL. Static storage, one set at a time. */
static const char *const *flags_of(const char *const *base, const char *seed)
{
    static const char *flags[16];
    int k = 0;
    for (; base && base[k]; k++)
        flags[k] = base[k];
    if (seed) {
        flags[k++] = "--seeds";
        flags[k++] = seed;
    }
    flags[k] = NULL;
    return flags;
}

/* What node i's CLUSTER INFO must say right after its start. */
struct info_now {
    json_int_t epoch;
    long long known, up, down;
    const char *state; /* "cluster_state:ok" or ":fail" */
};

/* Node i answers CLUSTER MYID (its id) and CLUSTER INFO as x says: asked
 * once, at once (the caller just started it). */
static void expect_info_now(int i, const struct info_now *x, const char *what)
{
    char *id = cluster_ask(i, "CLUSTER MYID");
    if (!id || strcmp(id, cluster_node(i)->id) != 0)
        fail_msg("%s: node %d's CLUSTER MYID gave %s, not %s", what, i, id ? id : "an error",
                 cluster_node(i)->id);
    free(id);
    char *info = cluster_ask(i, "CLUSTER INFO");
    if (!info)
        fail_msg("%s: node %d's CLUSTER INFO gave an error", what, i);
    bool ok = cluster_info_field(info, "cluster_current_epoch") == x->epoch &&
              cluster_info_field(info, "cluster_known_nodes") == x->known &&
              cluster_info_field(info, "ringkv_nodes_up") == x->up &&
              cluster_info_field(info, "ringkv_nodes_down") == x->down &&
              cluster_info_has(info, x->state);
    if (!ok)
        fail_msg("%s: node %d's CLUSTER INFO, wanted epoch %lld, %lld known, %lld up, %lld "
                 "down, %s:\n%s", what, i, (long long)x->epoch, x->known, x->up, x->down,
                 x->state, info);
    free(info);
}

static void test_restart_alone_answers_at_once(void **state)
{
    assert_int_equal(cluster_start(0, NULL), 0);
    struct ring_id r;
    assert_true(ring_of(0, &r));
    cluster_stop(0);
    assert_int_equal(cluster_start(0, NULL), 0);
    struct info_now x = {r.epoch, 1, 1, 0, "cluster_state:ok"};
    expect_info_now(0, &x, "a cluster of one restarted");
}

static void rejoin(const char *const *base)
{
    for (int i = 0; i < NODES; i++)
        assert_int_equal(cluster_start(i, flags_of(base, i == 0 ? NULL : cluster_seed(0))), 0);
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
    assert_int_equal(cluster_start(2, flags_of(base, NULL)), 0);
    assert_string_equal(cluster_node(2)->id, ids[2]);
    char *info = cluster_ask(2, "CLUSTER INFO"); /* at once: the saved ring */
    assert_non_null(info);
    assert_int_equal(cluster_info_field(info, "cluster_current_epoch"), before.epoch);
    free(info);
    wait_agreed(&before, REJOIN_MS, "node 2 killed and started without seeds");

    /* all three stopped, then started, none with seeds */
    for (int i = 0; i < NODES; i++)
        cluster_stop(i);
    for (int i = 0; i < NODES; i++) {
        assert_int_equal(cluster_start(i, flags_of(base, NULL)), 0);
        assert_string_equal(cluster_node(i)->id, ids[i]);
        if (i == 0) { /* alone for now, it serves the saved ring, not one of its own */
            struct ring_id r;
            assert_true(ring_of(0, &r));
            if (strcmp(r.hash, before.hash) != 0 || r.epoch != before.epoch)
                fail_msg("node 0 restarted alone has ring %s epoch %lld, not the saved %s "
                         "epoch %lld", r.hash, (long long)r.epoch, before.hash,
                         (long long)before.epoch);
            /* the two it has not heard from are down, not up; with N = 3 it
             * is in every preference list: every slot is still ok */
            struct info_now x = {before.epoch, 3, 1, 2, "cluster_state:ok"};
            expect_info_now(0, &x, "node 0 restarted alone");
            for (int j = 1; j < NODES; j++) {
                const char *st = cluster_status_of(0, ids[j]);
                if (!st || strcmp(st, "down") != 0)
                    fail_msg("node 0 restarted alone lists node %d as %s, not down", j,
                             st ? st : "nothing");
            }
        }
    }
    wait_agreed(&before, FORM_MS, "all three stopped and started without seeds");
}

static void test_restart_rejoins_without_seeds(void **state)
{
    rejoin(NULL);
}

static void test_restart_rejoins_with_a_cluster_secret(void **state)
{
    static const char *const secret[] = {"--cluster-secret", "restart-test-secret", NULL};
    rejoin(secret);
}

/* The nodes listed report the same ring, of `members` members, not node
 * `gone`, list each other up and `gone` left (or not at all); seen_up is
 * set when one lists `gone` up. */
struct stays_left {
    int nodes[4];
    int n, gone;
    size_t members;
    bool seen_up;
};

static bool in_ring(int i, const char *id, size_t *members, char *hash, size_t cap)
{
    json_t *ring = cluster_get(i, "/v1/ring");
    json_t *list = json_object_get(ring, "members"), *m;
    size_t k;
    bool found = false;
    json_array_foreach(list, k, m)
        found |= strcmp(json_string_value(json_object_get(m, "id")) ?: "", id) == 0;
    *members = json_array_size(list);
    snprintf(hash, cap, "%s", json_string_value(json_object_get(ring, "hash")) ?: "");
    json_decref(ring);
    return found;
}

static bool left_everywhere(void *arg)
{
    struct stays_left *x = arg;
    const char *gone = cluster_node(x->gone)->id;
    char hash0[32] = "";
    bool ok = true;
    for (int k = 0; k < x->n; k++) {
        int i = x->nodes[k];
        const char *st = cluster_status_of(i, gone);
        if (st && strcmp(st, "up") == 0)
            x->seen_up = true;
        size_t members;
        char hash[32];
        bool there = in_ring(i, gone, &members, hash, sizeof hash);
        ok = ok && (!st || strcmp(st, "left") == 0) && !there && members == x->members &&
             (k == 0 || strcmp(hash, hash0) == 0);
        if (k == 0)
            snprintf(hash0, sizeof hash0, "%s", hash);
        for (int j = 0; ok && j < x->n; j++) { /* and heard from each other */
            const char *sj = cluster_status_of(i, cluster_node(x->nodes[j])->id);
            ok = sj && strcmp(sj, "up") == 0;
        }
    }
    return ok;
}

static void test_restart_left_node_stays_left(void **state)
{
    int four = 4;
    for (int i = 0; i < 4; i++)
        assert_int_equal(cluster_start(i, i == 0 ? NULL : flags_of(NULL, cluster_seed(0))), 0);
    if (!cluster_wait(cluster_formed, &four, FORM_MS))
        fail_msg("4 nodes did not form within %d ms", FORM_MS);
    struct ring_id r;
    assert_true(ring_of(0, &r));
    /* all four stopped, one started: the three not heard from are down, and
     * the slots whose preference list is theirs fail, at once */
    for (int i = 0; i < 4; i++)
        cluster_stop(i);
    assert_int_equal(cluster_start(0, NULL), 0);
    struct info_now x = {r.epoch, 4, 1, 3, "cluster_state:fail"};
    expect_info_now(0, &x, "node 0 of 4 restarted alone");
    for (int i = 1; i < 4; i++)
        assert_int_equal(cluster_start(i, NULL), 0);
    if (!cluster_wait(cluster_formed, &four, FORM_MS))
        fail_msg("4 nodes restarted did not form again within %d ms", FORM_MS);

    /* A (node 1) down; B (node 3) leaves, then is shut down; C and D (nodes 2
     * and 0) restart */
    cluster_stop(1);
    char path[128];
    snprintf(path, sizeof path, "/v1/nodes/%s", cluster_node(3)->id);
    int status = 0;
    json_decref(cluster_request(0, "DELETE", path, "", &status));
    assert_int_equal(status, 202);
    struct stays_left two = {{0, 2}, 2, 3, 3, false};
    if (!cluster_wait(left_everywhere, &two, FORM_MS))
        fail_msg("node 3 not seen left by nodes 0 and 2 within %d ms", FORM_MS);
    cluster_stop(3);
    for (int i = 0; i < 3; i += 2) /* C and D (nodes 2 and 0): no live node remembers B */
        cluster_stop(i);
    for (int i = 0; i < 3; i += 2) {
        assert_int_equal(cluster_start(i, NULL), 0);
        const char *st = cluster_status_of(i, cluster_node(3)->id);
        if ((!st || strcmp(st, "left") != 0))
            fail_msg("node %d restarted lists node 3, which left, as %s, not left (a "
                     "tombstone)", i, st ? st : "nothing");
    }
    two.seen_up = false;
    if (!cluster_wait(left_everywhere, &two, FORM_MS))
        fail_msg("nodes 0 and 2 restarted did not agree again within %d ms", FORM_MS);

    /* A comes back without seeds, holding B up: B stays left everywhere */
    assert_int_equal(cluster_start(1, NULL), 0);
    struct stays_left three = {{0, 1, 2}, 3, 3, 3, false};
    bool settled = cluster_wait(left_everywhere, &three, FORM_MS);
    for (int i = 0; i < 3; i++)
        printf("restart: node %d lists node 3 as %s\n", i,
               cluster_status_of(i, cluster_node(3)->id) ?: "nothing");
    if (!settled || three.seen_up || two.seen_up)
        fail_msg("node 3, which left, %s", !settled ? "is not left in the ring and lists of "
                 "nodes 0, 1 and 2 after node 1 came back" : "was listed up again");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_restart_alone_answers_at_once, cluster_forget_all),
        cmocka_unit_test_teardown(test_restart_rejoins_without_seeds, cluster_forget_all),
        cmocka_unit_test_teardown(test_restart_rejoins_with_a_cluster_secret, cluster_forget_all),
        cmocka_unit_test_teardown(test_restart_left_node_stays_left, cluster_forget_all),
    };
    return cluster_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
