/* test_rejoin: a node that left its cluster (or lost its directory) joins
 * it again when started with seeds, as README's auto-join promises: real
 * ringkv processes on 127.0.0.2 .. 127.0.0.5 (cluster_harness.h), Q = 1024.
 * - Three nodes form; node 2 leaves (DELETE /v1/nodes/{id}) and, once it is
 *   a cluster of one and the others list it "left", is stopped and started
 *   again with its directory (same id) and a seed: it joins as a new join
 *   (the others hold it as a left tombstone; its announcement carries a
 *   higher incarnation and state version), all three agree on a ring of
 *   three, it owns about Q/3 partitions, and a key written through it reads
 *   back through the others. Before the fix it stayed a ring of one (the
 *   fault suite's join,leave,rejoin round).
 * - A node that left, while it runs on, serves no key: SET, GET and DBSIZE
 *   get -CLUSTERDOWN and CLUSTER SLOTS is empty (it took writes as a
 *   cluster of one that its old cluster's clients sent it, and lost them).
 * - A node sent INCRs while it leaves never answers one from its own copy
 *   once the cluster stopped writing it (each counter's replies only grow,
 *   and the cluster holds at least the last one acknowledged).
 * - A node removed while down (DELETE of a dead node), started again with its
 *   directory and a seed, joins at that start as a new join and serves.
 * - With auto-join no, the node that left and is started again with a seed
 *   gets no partitions until POST /v1/nodes adds it again.
 * - A node restarted with a wiped directory is a new node (new id): it joins
 *   while its old id is left (node 2 again), and while its old id is down
 *   (node 1 killed, its directory removed, started again: the old id stays in
 *   the ring, down, and the new one is added).
 * Every wait is on a condition with a deadline. */
#include <pthread.h>
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

#define AGREE_MS 30000
#define Q 1024

/* What nodes[0..n) must report: one ring (same hash) of ring_members
 * members that holds each of ids[0..n_ids), each of them listed "up". */
struct want {
    int nodes[CLUSTER_NODES_MAX];
    int n;
    size_t ring_members;
    char ids[CLUSTER_NODES_MAX][41];
    int n_ids;
};

static bool ring_has(json_t *ring, const char *id)
{
    json_t *members = json_object_get(ring, "members"), *m;
    size_t k;
    json_array_foreach(members, k, m) {
        const char *mid = json_is_string(m) ? json_string_value(m)
                                            : json_string_value(json_object_get(m, "id"));
        if (mid && strcmp(mid, id) == 0)
            return true;
    }
    return false;
}

static bool agreed(void *arg)
{
    const struct want *w = arg;
    char hash0[32] = "";
    for (int k = 0; k < w->n; k++) {
        json_t *ring = cluster_get(w->nodes[k], "/v1/ring");
        const char *hash = json_string_value(json_object_get(ring, "hash"));
        bool ok = hash && json_array_size(json_object_get(ring, "members")) == w->ring_members &&
                  (k == 0 || strcmp(hash, hash0) == 0);
        if (ok && k == 0)
            snprintf(hash0, sizeof hash0, "%s", hash);
        for (int j = 0; ok && j < w->n_ids; j++) {
            const char *st = cluster_status_of(w->nodes[k], w->ids[j]);
            ok = ring_has(ring, w->ids[j]) && st && strcmp(st, "up") == 0;
        }
        json_decref(ring);
        if (!ok)
            return false;
    }
    return true;
}

static void dump(const struct want *w)
{
    for (int k = 0; k < w->n; k++) {
        json_t *nodes = cluster_get(w->nodes[k], "/v1/nodes");
        json_t *ring = cluster_get(w->nodes[k], "/v1/ring");
        char *a = nodes ? json_dumps(json_object_get(nodes, "nodes"), JSON_COMPACT) : NULL;
        printf("rejoin: node %d lists %s; ring epoch %lld of %zu members\n", w->nodes[k],
               a ? a : "nothing", (long long)json_integer_value(json_object_get(ring, "epoch")),
               json_array_size(json_object_get(ring, "members")));
        free(a);
        json_decref(nodes);
        json_decref(ring);
    }
}

static void wait_agreed(const struct want *w, const char *what)
{
    int64_t t0 = cluster_now_ms();
    bool ok = cluster_wait(agreed, (void *)w, AGREE_MS);
    printf("rejoin: %s: %s after %lld ms\n", what, ok ? "agreed" : "NOT agreed",
           (long long)(cluster_now_ms() - t0));
    if (!ok) {
        dump(w);
        fail_msg("%s: the nodes did not agree on a ring of %zu members within %d ms", what,
                 w->ring_members, AGREE_MS);
    }
}

/* Nodes 0, 1 and 2 (their current ids) agree on a ring of ring_members
 * members holding the three, up. */
static void wait_three(size_t ring_members, const char *what)
{
    struct want w = {.nodes = {0, 1, 2}, .n = 3, .ring_members = ring_members, .n_ids = 3};
    for (int k = 0; k < 3; k++)
        snprintf(w.ids[k], sizeof w.ids[k], "%s", cluster_node(k)->id);
    wait_agreed(&w, what);
}

static void start(int i, int seed)
{
    const char *flags[] = {"--seeds", cluster_seed(seed), NULL};
    assert_int_equal(cluster_start(i, seed < 0 ? NULL : flags), 0);
}

static void form_three(void)
{
    start(0, -1);
    start(1, 0);
    start(2, 0);
    int n = 3;
    if (!cluster_wait(cluster_formed, &n, AGREE_MS))
        fail_msg("three nodes did not form a cluster within %d ms", AGREE_MS);
}

/* Node 2 left: it is a cluster of one, nodes 0 and 1 list it "left". */
static bool two_left(void *arg)
{
    const char *id = arg;
    json_t *ring = cluster_get(2, "/v1/ring");
    bool ok = json_array_size(json_object_get(ring, "members")) == 1;
    json_decref(ring);
    for (int k = 0; ok && k < 2; k++) {
        const char *st = cluster_status_of(k, id);
        ok = st && strcmp(st, "left") == 0;
    }
    return ok;
}

/* Node 0 lists the node with this id, and not as left. */
static bool heard_again(void *id)
{
    const char *st = cluster_status_of(0, id);
    return st && strcmp(st, "left") != 0;
}

/* DELETE /v1/nodes/{id} at node 0 (202), then waits until done(id). */
static void delete_node(const char *id, bool (*done)(void *), const char *what)
{
    char path[96];
    snprintf(path, sizeof path, "/v1/nodes/%s", id);
    int status;
    json_decref(cluster_request(0, "DELETE", path, "", &status));
    assert_int_equal(status, 202);
    if (!cluster_wait(done, (void *)id, AGREE_MS))
        fail_msg("%s: not within %d ms", what, AGREE_MS);
}

static void leave_two(void)
{
    char id[41];
    snprintf(id, sizeof id, "%s", cluster_node(2)->id);
    delete_node(id, two_left, "node 2 leaves");
}

/* SET key value through node i, again until it is served (10 s). */
static void set_through(int i, const char *key, const char *value)
{
    struct redisReply *r = NULL;
    for (int64_t until = cluster_now_ms() + 10000; cluster_now_ms() < until;) {
        freeReplyObject(r);
        r = cluster_redis_command(i, "SET %s %s", key, value);
        if (r && r->type == REDIS_REPLY_STATUS)
            break;
    }
    if (!r || r->type != REDIS_REPLY_STATUS)
        fail_msg("SET through node %d answered %s", i, r && r->str ? r->str : "nothing");
    freeReplyObject(r);
}

static int owned_by(int viewer, const char *id)
{
    json_t *ring = cluster_get(viewer, "/v1/ring");
    json_t *lists = json_object_get(ring, "owners");
    int n = 0;
    for (size_t p = 0; p < json_array_size(lists); p++) {
        const char *o = json_string_value(json_array_get(json_array_get(lists, p), 0));
        n += o && strcmp(o, id) == 0;
    }
    json_decref(ring);
    return n;
}

/* RING.GET of key on node i gives value (R 2: two replicas answer). */
static bool reads(int i, const char *key, const char *value)
{
    struct redisContext *c = cluster_connect(i, 5000);
    if (!c)
        return false;
    struct cluster_versions v;
    bool ok = cluster_ring_get(c, key, 2, &v) == 0 && cluster_versions_has(&v, value);
    cluster_versions_free(&v);
    redisFree(c);
    return ok;
}

/* reply's type and text are an error starting with `prefix`. */
static void expect_error(struct redisReply *r, const char *cmd, const char *prefix)
{
    if (!r || r->type != REDIS_REPLY_ERROR || strncmp(r->str, prefix, strlen(prefix)) != 0)
        fail_msg("node 2 (left): %s -> %s, want an error %s...", cmd,
                 r ? (r->str ? r->str : "(no text)") : "(no reply)", prefix);
    freeReplyObject(r);
}

/* Node 2, which left (still running), serves no key: its Redis Cluster
 * clients, whose map still names it, must not write where the cluster never
 * reads (before: it took them as a cluster of one, and they were lost to
 * the cluster). CLUSTER SLOTS there is empty, so such a client takes the map
 * of another node; connection commands still answer. */
static void left_node_serves_no_key(void)
{
    expect_error(cluster_redis_command(2, "SET rejoin:left v"), "SET", "CLUSTERDOWN");
    expect_error(cluster_redis_command(2, "GET rejoin:left"), "GET", "CLUSTERDOWN");
    expect_error(cluster_redis_command(2, "DBSIZE"), "DBSIZE", "CLUSTERDOWN");
    struct redisReply *r = cluster_redis_command(2, "CLUSTER SLOTS");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 0);
    freeReplyObject(r);
    r = cluster_redis_command(2, "PING");
    assert_non_null(r);
    assert_string_equal(r->str, "PONG");
    freeReplyObject(r);
    /* CLUSTER NODES names itself alone, with no slot; CLUSTER INFO: fail */
    char *nodes = cluster_ask(2, "CLUSTER NODES");
    assert_non_null(nodes);
    if (!strstr(nodes, "myself,master - ") || strchr(nodes, '\n') != nodes + strlen(nodes) - 1 ||
        strstr(nodes, "connected\n") == NULL)
        fail_msg("node 2 (left): CLUSTER NODES -> \"%s\"", nodes);
    free(nodes);
    char *info = cluster_ask(2, "CLUSTER INFO");
    assert_non_null(info);
    assert_true(cluster_info_has(info, "cluster_state:fail"));
    assert_true(cluster_info_has(info, "cluster_slots_assigned:0")); /* as SLOTS says */
    assert_true(cluster_info_has(info, "cluster_slots_ok:0"));
    free(info);
    /* a transaction with a key is discarded; the connection leaves MULTI */
    struct redisContext *c = cluster_connect(2, 5000);
    assert_non_null(c);
    freeReplyObject(redisCommand(c, "MULTI"));
    freeReplyObject(redisCommand(c, "SET rejoin:left v"));
    expect_error(redisCommand(c, "EXEC"), "EXEC", "EXECABORT");
    r = redisCommand(c, "PING");
    assert_non_null(r);
    assert_string_equal(r->str, "PONG");
    freeReplyObject(r);
    redisFree(c);
}

/* Three nodes formed, then node 2 (its id into id2) left and stopped, its
 * directory kept. */
static void three_then_two_left(char id2[41])
{
    form_three();
    snprintf(id2, 41, "%s", cluster_node(2)->id);
    leave_two();
    left_node_serves_no_key();
    cluster_stop(2);
}

static void test_rejoin_after_leave_with_its_directory(void **state)
{
    (void)state;
    char id2[41];
    three_then_two_left(id2);
    start(2, 0); /* its directory kept: the same id, its saved state says it left */
    assert_string_equal(cluster_node(2)->id, id2);
    wait_three(3, "node 2 left and started again with its directory and a seed");
    int got = owned_by(0, id2);
    printf("rejoin: node 2 owns %d partitions again\n", got);
    assert_true(got >= Q / 3 - Q / 30 && got <= Q / 3 + Q / 30);
    /* it serves: a key written through it is read through the others */
    set_through(2, "rejoin:k", "v1");
    assert_true(reads(0, "rejoin:k", "v1"));
    assert_true(reads(1, "rejoin:k", "v1"));
}

/* With auto-join no, the node that left waits for an operator: it gets no
 * partitions until POST /v1/nodes adds it again. */
static void test_rejoin_without_auto_join_waits_for_post(void **state)
{
    (void)state;
    char id2[41];
    three_then_two_left(id2);
    const char *flags[] = {"--seeds", cluster_seed(0), "--auto-join", "no", NULL};
    assert_int_equal(cluster_start(2, flags), 0);
    /* node 0 hears of it again (not as left), and keeps its ring of two */
    if (!cluster_wait(heard_again, id2, AGREE_MS))
        fail_msg("node 0 did not hear from node 2 again within %d ms", AGREE_MS);
    json_t *ring = cluster_get(0, "/v1/ring");
    assert_int_equal(json_array_size(json_object_get(ring, "members")), 2);
    json_decref(ring);
    char body[96];
    snprintf(body, sizeof body, "{\"address\": \"%s\"}", cluster_seed(2));
    int status;
    json_decref(cluster_request(0, "POST", "/v1/nodes", body, &status));
    assert_int_equal(status, 202);
    wait_three(3, "node 2 left, started again with auto-join no, then POSTed");
}

static bool down_at_0(void *id)
{
    const char *st = cluster_status_of(0, id);
    return st && strcmp(st, "down") == 0;
}

/* Nodes 0 and 1 list the node with this id left. */
static bool removed(void *id)
{
    for (int k = 0; k < 2; k++) {
        const char *st = cluster_status_of(k, id);
        if (!st || strcmp(st, "left") != 0)
            return false;
    }
    return true;
}

/* INCRs of LEAVE_KEYS counters through node 2 while it leaves: each reply
 * of a counter must be above its last one (an error leaves it unknown
 * whether it counted); the INCRs stop once node 2 refuses them. */
#define LEAVE_KEYS 64
struct incr_load {
    long long last[LEAVE_KEYS]; /* the last acknowledged value of each counter */
    long long acked, refused, backwards;
    char backwards_what[160];
    volatile bool stop;
};

static void *incr_through_two(void *arg)
{
    struct incr_load *l = arg;
    struct redisContext *c = cluster_connect(2, 5000);
    for (int k = 0; c && !l->stop && l->refused < 100; k = (k + 1) % LEAVE_KEYS) {
        struct redisReply *r = redisCommand(c, "INCR rejoin:lv:%d", k);
        if (!r) {
            redisFree(c);
            c = cluster_connect(2, 5000);
            continue;
        }
        if (r->type == REDIS_REPLY_INTEGER) {
            if (r->integer <= l->last[k] && l->backwards++ == 0)
                snprintf(l->backwards_what, sizeof l->backwards_what,
                         "INCR rejoin:lv:%d answered %lld after %lld", k, r->integer, l->last[k]);
            l->last[k] = r->integer;
            __atomic_add_fetch(&l->acked, 1, __ATOMIC_RELAXED);
        } else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "CLUSTERDOWN", 11) == 0) {
            __atomic_add_fetch(&l->refused, 1, __ATOMIC_RELAXED);
        }
        freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return NULL;
}

static bool incrs_going(void *arg)
{
    return __atomic_load_n(&((struct incr_load *)arg)->acked, __ATOMIC_RELAXED) >= 4 * LEAVE_KEYS;
}

/* The INCRs through node 2 are refused now (CLUSTERDOWN). */
static bool incrs_refused(void *arg)
{
    return __atomic_load_n(&((struct incr_load *)arg)->refused, __ATOMIC_RELAXED) >= 100;
}

/* A node that leaves while a client sends it INCRs never answers one from
 * its own copy: once it took its ring of one it refuses them. Before, the
 * ring of one reached its shards a few milliseconds before the refusal
 * (saving the cluster state between), and INCRs in that window answered
 * from the copy the cluster had stopped writing (a counter at 428 answered
 * 267, and the cluster kept 427): acknowledged and lost. */
static void test_rejoin_leaver_never_serves_its_copy(void **state)
{
    (void)state;
    form_three();
    struct incr_load load = {.stop = false};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, incr_through_two, &load), 0);
    bool going = cluster_wait(incrs_going, &load, AGREE_MS);
    if (going)
        leave_two();
    bool refused = going && cluster_wait(incrs_refused, &load, AGREE_MS);
    load.stop = true;
    pthread_join(t, NULL);
    printf("rejoin: %lld INCRs acknowledged through the leaver, %lld refused, %lld backwards\n",
           load.acked, load.refused, load.backwards);
    assert_true(going);
    assert_true(refused);
    if (load.backwards)
        fail_msg("%lld INCRs answered from the leaver's copy, first: %s", load.backwards,
                 load.backwards_what);
    /* the cluster counted every acknowledged INCR */
    struct redisContext *c = cluster_connect(0, 5000);
    assert_non_null(c);
    for (int k = 0; k < LEAVE_KEYS; k++) {
        struct redisReply *r = redisCommand(c, "GET rejoin:lv:%d", k);
        assert_non_null(r);
        long long got = r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
        if (got < load.last[k])
            fail_msg("rejoin:lv:%d holds %lld; %lld was acknowledged", k, got, load.last[k]);
        freeReplyObject(r);
    }
    redisFree(c);
}

/* A node removed while it was down (force-remove) and started again with
 * its directory and a seed joins at that start as a new join, and serves.
 * Before, it learned of its removal from its seed and stayed a cluster of
 * one that serves no key until its next start. */
static void test_rejoin_after_removal_while_down(void **state)
{
    (void)state;
    form_three();
    char id2[41];
    snprintf(id2, sizeof id2, "%s", cluster_node(2)->id);
    cluster_signal(2, SIGKILL); /* and reaped */
    if (!cluster_wait(down_at_0, id2, AGREE_MS))
        fail_msg("node 0 does not list node 2 down within %d ms", AGREE_MS);
    delete_node(id2, removed, "node 2 (down) is removed");
    start(2, 0);
    assert_string_equal(cluster_node(2)->id, id2);
    wait_three(3, "node 2 removed while down, started again with its directory and a seed");
    set_through(2, "rejoin:removed", "v1");
    assert_true(reads(0, "rejoin:removed", "v1"));
}

static void test_rejoin_wiped_directory_is_a_new_node(void **state)
{
    (void)state;
    form_three();
    char old2[41], old1[41];
    snprintf(old2, sizeof old2, "%s", cluster_node(2)->id);
    snprintf(old1, sizeof old1, "%s", cluster_node(1)->id);
    leave_two();
    assert_int_equal(cluster_forget(2), 0); /* stopped, its directory removed */
    start(2, 0);
    assert_string_not_equal(cluster_node(2)->id, old2);
    wait_three(3, "node 2 left, wiped, started with a seed (a new id)");
    /* node 1 killed and wiped: its old id is down (it stays in the ring) */
    cluster_signal(1, SIGKILL);
    assert_int_equal(cluster_forget(1), 0);
    start(1, 0);
    assert_string_not_equal(cluster_node(1)->id, old1);
    wait_three(4, "node 1 killed, wiped, started with a seed (a new id)");
    /* the old id: down (once seen dead), still in the ring of four */
    if (!cluster_wait(down_at_0, old1, AGREE_MS))
        fail_msg("node 0 does not list node 1's old id down within %d ms", AGREE_MS);
    wait_three(4, "node 1's old id down");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_rejoin_after_leave_with_its_directory, cluster_forget_all),
        cmocka_unit_test_teardown(test_rejoin_without_auto_join_waits_for_post,
                                  cluster_forget_all),
        cmocka_unit_test_teardown(test_rejoin_after_removal_while_down, cluster_forget_all),
        cmocka_unit_test_teardown(test_rejoin_leaver_never_serves_its_copy, cluster_forget_all),
        cmocka_unit_test_teardown(test_rejoin_wiped_directory_is_a_new_node, cluster_forget_all),
    };
    return cluster_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
