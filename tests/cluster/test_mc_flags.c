/* test_mc_flags: memcached client flags in a cluster (3 nodes, N = 3,
 * storage = log, read-quorum 1 so that each node answers from its own
 * store). A `set` with flags 5 at node 0 is answered with flags 5 by a get
 * at every node (each replica holds the flags the coordinator's version
 * carries), and still after node 1 is stopped by PID and started again (the
 * flags come back from its log record). A second set with other flags at
 * another node replaces them everywhere.
 * Without flags in the versions (src/dvv.h, replica.c, store.c) every
 * node, the coordinator included, answers flags 0. Every wait is on a
 * condition with a deadline; nodes are stopped by PID (cluster_finish). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster_harness.h"

#define FORM_MS 20000
#define READ_MS 5000

static int mc_port;

static const char *const *node_flags(bool is_seeded)
{
    static char port[16];
    static const char *flags[16];
    snprintf(port, sizeof port, "%d", mc_port);
    int k = 0;
    const char *common[] = {"--memcache-port", port, "--storage",         "log",
                            "--read-quorum",   "1",  "--request-timeout", "2000"};
    for (size_t i = 0; i < sizeof common / sizeof *common; i++)
        flags[k++] = common[i];
    if (is_seeded) {
        flags[k++] = "--seeds";
        flags[k++] = cluster_seed(0);
    }
    flags[k] = NULL;
    return flags;
}

struct mc_expect {
    int from, to; /* nodes from .. to - 1 */
    const char *req, *want;
};

static bool mc_nodes_answer(void *arg)
{
    const struct mc_expect *x = arg;
    for (int i = x->from; i < x->to; i++) {
        char *got = cluster_mc_ask(i, mc_port, x->req, "END\r\n");
        bool ok = got && strcmp(got, x->want) == 0;
        if (!ok)
            fprintf(stderr, "node %d: %s-> %s\n", i, x->req, got ? got : "(nothing)");
        free(got);
        if (!ok)
            return false;
    }
    return true;
}

/* The set at node i is acknowledged (the peer links may still be dialling
 * just after the cluster formed). */
struct mc_set {
    int node;
    const char *req;
};

static bool mc_stored(void *arg)
{
    const struct mc_set *x = arg;
    char *got = cluster_mc_ask(x->node, mc_port, x->req, "\r\n");
    bool ok = got && strcmp(got, "STORED\r\n") == 0;
    if (!ok)
        fprintf(stderr, "node %d: %s-> %s\n", x->node, x->req, got ? got : "(nothing)");
    free(got);
    return ok;
}

static void test_mc_flags_kept_at_every_node_and_restart(void **state)
{
    (void)state;
    mc_port = cluster_free_port(3);
    assert_true(mc_port > 0);
    assert_int_equal(cluster_start(0, node_flags(false)), 0);
    for (int i = 1; i < 3; i++)
        assert_int_equal(cluster_start(i, node_flags(true)), 0);
    int n = 3;
    assert_true(cluster_wait(cluster_formed, &n, FORM_MS));

    struct mc_set set5 = {0, "set k 5 0 1\r\nx\r\n"};
    assert_true(cluster_wait(mc_stored, &set5, 10000));
    struct mc_expect five = {0, 3, "get k\r\n", "VALUE k 5 1\r\nx\r\nEND\r\n"};
    assert_true(cluster_wait(mc_nodes_answer, &five, READ_MS));
    char *got = cluster_mc_ask(2, mc_port, "gets k\r\n", "END\r\n");
    assert_non_null(got);
    assert_true(strncmp(got, "VALUE k 5 1 ", 12) == 0);
    free(got);

    /* Node 1 stopped by PID and started again: its log gives flags 5 back. */
    pid_t before = cluster_node(1)->pid;
    cluster_stop(1);
    assert_int_equal(cluster_node(1)->pid, 0);
    assert_int_equal(cluster_start(1, node_flags(true)), 0);
    assert_true(cluster_node(1)->pid != before);
    struct mc_expect after_restart = {1, 2, "get k\r\n", "VALUE k 5 1\r\nx\r\nEND\r\n"};
    assert_true(mc_nodes_answer(&after_restart));
    assert_true(cluster_wait(cluster_formed, &n, FORM_MS));

    /* A set with other flags at another node replaces them everywhere. */
    struct mc_set set9 = {2, "set k 9 0 2\r\nyy\r\n"};
    assert_true(cluster_wait(mc_stored, &set9, 10000));
    struct mc_expect nine = {0, 3, "get k\r\n", "VALUE k 9 2\r\nyy\r\nEND\r\n"};
    assert_true(cluster_wait(mc_nodes_answer, &nine, READ_MS));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_mc_flags_kept_at_every_node_and_restart, cluster_forget_all),
    };
    int failures = cmocka_run_group_tests(tests, NULL, NULL);
    return cluster_finish(failures);
}
