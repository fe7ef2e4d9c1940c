/* test_stop_join: a replica stopped across two ring changes loses no
 * acknowledged write (shards/transfer.c, "Release": the handoff check
 * before a released copy is dropped), real nodes on 127.0.0.x.
 * - test_stop_join_keeps_acknowledged_writes: nodes 0 and 1 form (N = 2,
 *   storage log). Node 1 is SIGSTOPped; node 2 joins; 2000 SETs at node 0
 *   (node 1's share goes to a stand-in as hints); node 3 joins; node 1
 *   gets SIGCONT. Node 1's shards saw ring epoch 2 and now take epoch 4,
 *   calling themselves whole for the epochs they missed. Once every node
 *   has the 4-member ring and no transfer is pending, streaming or
 *   releasing (for 3 s in a row), every acknowledged key reads back at node
 *   0 (R = 2). The SETs are sent once node 0 sees node 1 down; some may
 *   still time out, and at least half must be acknowledged. Without the handoff check node 1 served its
 *   stale copies to the joiner, the old owners dropped theirs once both
 *   said whole, and 4 runs of 4 read nil for 16 to 216 acknowledged keys.
 *   Two rounds, each on a fresh cluster.
 * - test_stale_source_keeps_writes: the same loss without a second ring
 *   change, every time. Nodes 0 and 1 form (N = 2, anti-entropy rounds an
 *   hour apart, so that only the handoff check can mend). Node 1 is
 *   SIGSTOPped until node 0 sees it down; KEYS SETs at node 0 with
 *   CONSISTENCY W 1 (no stand-in exists: node 0 alone has them); node 1
 *   resumes and is seen up; node 2 joins. Node 1, in both rings' lists and
 *   pulling nothing, calls itself whole; node 2 pulls a partition from the
 *   old list's first node, node 1 for about half of them, and node 0, asked
 *   "do you hold it whole?", hears yes from both. Every acknowledged key
 *   must read back at node 2 (R = 2) once transfers settle, and the
 *   handoff checks must have sent keys. Without the check, the keys of the
 *   partitions node 0 released were gone.
 * Every wait is on a condition with a deadline; nodes are stopped by PID. */
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

#define KEYS 2000
#define ROUNDS 2
#define SETTLE_MS 60000
#define STABLE_MS 3000

static const char *const base_flags[] = {"--replicas", "2", "--storage", "log", "--partitions",
                                         "128", "--threads", "2", NULL};

static void start_joiner(int i)
{
    const char *flags[16];
    int k = 0;
    for (; base_flags[k]; k++)
        flags[k] = base_flags[k];
    flags[k++] = "--seeds";
    flags[k++] = cluster_seed(0);
    flags[k] = NULL;
    assert_int_equal(cluster_start(i, flags), 0);
}

struct members {
    int node;
    size_t want;
};

/* Node m->node's ring has m->want members. */
static bool ring_has(void *arg)
{
    const struct members *m = arg;
    json_t *ring = cluster_get(m->node, "/v1/ring");
    bool ok = ring && json_array_size(json_object_get(ring, "members")) == m->want;
    json_decref(ring);
    return ok;
}

/* Node 0 sees node 1 down. */
static bool node1_down(void *arg)
{
    (void)arg;
    const char *st = cluster_status_of(0, cluster_node(1)->id);
    return st && strcmp(st, "down") == 0;
}

/* Nodes 0 .. n - 1 have the n-member ring, their shards have taken it, and
 * nothing is pending, streaming or releasing. */
static bool settled_now(int n)
{
    for (int i = 0; i < n; i++) {
        json_t *ring = cluster_get(i, "/v1/ring");
        json_t *t = ring ? json_object_get(ring, "transfers") : NULL;
        bool ok = t && json_array_size(json_object_get(ring, "members")) == (size_t)n &&
                  json_integer_value(json_object_get(t, "ring_epoch")) ==
                      json_integer_value(json_object_get(ring, "epoch")) &&
                  json_integer_value(json_object_get(t, "partitions_pending")) == 0 &&
                  json_integer_value(json_object_get(t, "partitions_streaming")) == 0 &&
                  json_integer_value(json_object_get(t, "partitions_releasing")) == 0;
        json_decref(ring);
        if (!ok)
            return false;
    }
    return true;
}

struct settle {
    int n;         /* nodes */
    int64_t since; /* settled_now() since then (0: not now) */
};

/* settled_now() has held for STABLE_MS in a row (a node looks for keys of
 * partitions it no longer replicates every second: such a look may release
 * more after a first quiet moment). */
static bool settled(void *arg)
{
    struct settle *st = arg;
    if (!settled_now(st->n)) {
        st->since = 0;
        return false;
    }
    if (!st->since)
        st->since = cluster_now_ms();
    return cluster_now_ms() - st->since >= STABLE_MS;
}

/* handoff_checks and handoff_keys_sent summed over nodes 0 .. n - 1. */
static void handoff_figures(int n, long long *checks, long long *sent)
{
    *checks = *sent = 0;
    for (int i = 0; i < n; i++) {
        json_t *ring = cluster_get(i, "/v1/ring");
        json_t *t = ring ? json_object_get(ring, "transfers") : NULL;
        *checks += json_integer_value(json_object_get(t, "handoff_checks"));
        *sent += json_integer_value(json_object_get(t, "handoff_keys_sent"));
        json_decref(ring);
    }
}

/* SETs k:0 .. KEYS - 1 at node 0, after `first` (a command, or NULL)
 * on the same connection; acked[k]: k's was acknowledged; returns how many
 * were. */
static int write_all(const char *first, char *acked)
{
    redisContext *c = cluster_connect(0, 10000);
    assert_non_null(c);
    if (first) {
        redisReply *r = redisCommand(c, first);
        assert_true(r && r->type == REDIS_REPLY_STATUS);
        freeReplyObject(r);
    }
    for (int k = 0; k < KEYS; k++)
        redisAppendCommand(c, "SET k:%d v-%d", k, k);
    int n = 0, n_failed = 0;
    for (int k = 0; k < KEYS; k++) {
        redisReply *r = NULL;
        assert_int_equal(redisGetReply(c, (void **)&r), REDIS_OK);
        acked[k] = r->type == REDIS_REPLY_STATUS;
        n += acked[k];
        if (!acked[k] && n_failed++ == 0) /* the first refusal's text, for the log */
            print_message("stop/join: SET k:%d: %s\n", k,
                          r->type == REDIS_REPLY_ERROR ? r->str : "(not a status)");
        freeReplyObject(r);
    }
    redisFree(c);
    return n;
}

/* How many of the acknowledged keys read back at node `node` (R = 2). */
static int readable(int node, const char *acked)
{
    redisContext *c = cluster_connect(node, 10000);
    assert_non_null(c);
    for (int k = 0; k < KEYS; k++)
        redisAppendCommand(c, "GET k:%d", k);
    int found = 0;
    char want[32];
    for (int k = 0; k < KEYS; k++) {
        redisReply *r = NULL;
        assert_int_equal(redisGetReply(c, (void **)&r), REDIS_OK);
        snprintf(want, sizeof want, "v-%d", k);
        found += acked[k] && r->type == REDIS_REPLY_STRING && strcmp(r->str, want) == 0;
        freeReplyObject(r);
    }
    redisFree(c);
    return found;
}

static void one_round(void)
{
    assert_int_equal(cluster_start_formed(2, base_flags), 0);
    cluster_signal(1, SIGSTOP);
    start_joiner(2);
    struct members three = {0, 3};
    if (!cluster_wait(ring_has, &three, 20000)) {
        cluster_signal(1, SIGCONT);
        fail_msg("node 0's ring did not take node 2 within 20 s");
    }
    /* node 0 writes past node 1 (hints) once it sees it down */
    if (!cluster_wait(node1_down, NULL, 20000)) {
        cluster_signal(1, SIGCONT);
        fail_msg("node 0 did not see node 1 down within 20 s");
    }
    char acked[KEYS];
    int n_acked = write_all(NULL, acked);
    start_joiner(3);
    struct members four = {0, 4};
    bool joined = cluster_wait(ring_has, &four, 20000);
    cluster_signal(1, SIGCONT);
    assert_true(joined);
    print_message("stop/join: %d of %d writes acknowledged\n", n_acked, KEYS);
    /* W = 2 through sloppy quorum: node 1 is seen down (a write may still
     * time out: not acknowledged, nothing is promised of it). Until node 2
     * has the 3-member ring it can neither take hints nor coordinate, and
     * the two thirds of the SETs whose lists hold node 1 failed: a joiner
     * whose periodic ring request to node 0 (unanswered: no better ring
     * then) was outstanding waited up to 2 s before asking for the new one
     * (admin_fetch_ring); about 680 of 2000 were acknowledged in half the
     * rounds then, 1999 or 2000 since. */
    assert_true(n_acked >= KEYS / 2);
    struct settle four_settled = {4, 0};
    if (!cluster_wait(settled, &four_settled, SETTLE_MS)) {
        for (int i = 0; i < 4; i++) {
            char *text = cluster_get_text(i, "/v1/ring");
            json_t *ring = cluster_get(i, "/v1/ring");
            char *t = ring ? json_dumps(json_object_get(ring, "transfers"), JSON_COMPACT) : NULL;
            print_message("node %d: epoch %lld members %zu transfers %s\n", i,
                          (long long)json_integer_value(json_object_get(ring, "epoch")),
                          json_array_size(json_object_get(ring, "members")), t ? t : "?");
            free(t);
            free(text);
            json_decref(ring);
        }
        fail_msg("transfers did not settle within %d s", SETTLE_MS / 1000);
    }
    int found = readable(0, acked);
    long long checks, sent;
    handoff_figures(4, &checks, &sent);
    print_message("stop/join: %d of %d acknowledged keys read back; %lld handoff checks sent "
                  "%lld keys\n", found, n_acked, checks, sent);
    assert_int_equal(found, n_acked);
}

/* Node 0 sees node 1 up. */
static bool node1_up(void *arg)
{
    (void)arg;
    const char *st = cluster_status_of(0, cluster_node(1)->id);
    return st && strcmp(st, "up") == 0;
}

static void test_stale_source_keeps_writes(void **state)
{
    (void)state;
    static const char *const flags[] = {"--replicas", "2", "--storage", "log", "--partitions",
                                        "128", "--threads", "2", "--aae-interval", "3600",
                                        NULL};
    assert_int_equal(cluster_start_formed(2, flags), 0);
    cluster_signal(1, SIGSTOP);
    if (!cluster_wait(node1_down, NULL, 20000)) {
        cluster_signal(1, SIGCONT);
        fail_msg("node 0 did not see node 1 down within 20 s");
    }
    char acked[KEYS];
    int n_acked = write_all("CONSISTENCY W 1", acked);
    cluster_signal(1, SIGCONT);
    assert_true(n_acked == KEYS); /* W = 1: node 0 alone */
    assert_true(cluster_wait(node1_up, NULL, 20000));
    const char *const joiner[] = {"--replicas", "2", "--storage", "log", "--partitions", "128",
                                  "--threads", "2", "--aae-interval", "3600", "--seeds",
                                  cluster_seed(0), NULL};
    assert_int_equal(cluster_start(2, joiner), 0);
    struct settle three_settled = {3, 0};
    assert_true(cluster_wait(settled, &three_settled, SETTLE_MS));
    /* read at node 2 (R = 2): the partitions node 0 released are on
     * nodes 1 and 2 only now */
    int found = readable(2, acked);
    long long checks, sent;
    handoff_figures(3, &checks, &sent);
    print_message("stale source: %d of %d keys read back; %lld handoff checks sent %lld keys\n",
                  found, KEYS, checks, sent);
    assert_int_equal(found, KEYS);
    assert_true(sent > 0); /* node 1's copies lacked them: the checks sent them */
}

static void test_stop_join_keeps_acknowledged_writes(void **state)
{
    for (int round = 0; round < ROUNDS; round++) {
        one_round();
        assert_int_equal(cluster_forget_all(state), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_stop_join_keeps_acknowledged_writes, cluster_forget_all),
        cmocka_unit_test_teardown(test_stale_source_keeps_writes, cluster_forget_all),
    };
    return cluster_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
