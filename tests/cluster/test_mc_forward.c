/* test_mc_forward: memcached clients served at a node that holds no replica
 * of their key (issue 11: "a plain client connected anywhere is served").
 * Four real nodes on 127.0.0.2 .. 5 (cluster_harness.h) with replicas 2 and
 * their memcache port on, so each key has two nodes holding no replica; the
 * tests find one per key from CLUSTER SLOTS and CLUSTER KEYSLOT.
 * - set, get, gets, cas, incr, append, add, replace, touch and delete of 40 keys
 *   at a non-replica node answer as memcached does, and every node reads
 *   each write back; a multi-key get there gets each value and one END.
 * - noreply at a non-replica node: nothing comes back, the write is done.
 * - a bad request there still gets its usual error: a malformed line
 *   (answered by the node itself) and an error from the replica that ran it
 *   (incr of a non-numeric value), relayed as it is.
 * Before memcached requests were forwarded, each of these got "SERVER_ERROR
 * this node holds no replica of the key". */
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

#define NODES 4
#define KEYS 40

static int mc_port; /* every node's memcache port */

static int group_setup(void **state)
{
    (void)state;
    const char *const flags[] = {"--replicas", "2", NULL};
    return cluster_start_formed_mc(NODES, flags, &mc_port) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    return cluster_forget_all(state);
}

/* Whether node i is among the nodes CLUSTER SLOTS (asked at node 0) lists
 * for the slot of key. */
static bool is_replica_of(int i, const char *key)
{
    redisReply *slot = cluster_redis_command(0, "CLUSTER KEYSLOT %s", key);
    redisReply *slots = cluster_redis_command(0, "CLUSTER SLOTS");
    assert_non_null(slot);
    assert_non_null(slots);
    assert_int_equal(slot->type, REDIS_REPLY_INTEGER);
    assert_int_equal(slots->type, REDIS_REPLY_ARRAY);
    bool found = false;
    for (size_t k = 0; k < slots->elements; k++) {
        redisReply *range = slots->element[k];
        if (slot->integer < range->element[0]->integer ||
            slot->integer > range->element[1]->integer)
            continue;
        for (size_t j = 2; j < range->elements; j++)
            found |= strcmp(range->element[j]->element[0]->str, cluster_host(i)) == 0;
    }
    freeReplyObject(slot);
    freeReplyObject(slots);
    return found;
}

/* A node holding no replica of key. */
static int non_replica(const char *key)
{
    for (int i = 0; i < NODES; i++)
        if (!is_replica_of(i, key))
            return i;
    fail_msg("every node holds %s", key);
    return -1;
}

/* req sent to node i on a connection of its own; its reply, read through
 * "END\r\n" for a retrieval, else one line. Static buffer. */
static const char *mc_call(int i, const char *req)
{
    static char got[4096];
    bool is_retrieval = strstr(req, "get") != NULL || strncmp(req, "gat", 3) == 0;
    char *out = cluster_mc_ask(i, mc_port, req, is_retrieval ? "END\r\n" : "\r\n");
    if (!out)
        fail_msg("no connection to node %d for %s", i, req);
    snprintf(got, sizeof got, "%s", out);
    free(out);
    return got;
}

static void expect(int i, const char *req, const char *want)
{
    const char *got = mc_call(i, req);
    if (strcmp(got, want) != 0)
        fail_msg("node %d: %s-> \"%s\", want \"%s\"", i, req, got, want);
}

/* get key at every node gives want. */
static void expect_everywhere(const char *key, const char *want)
{
    char req[128];
    snprintf(req, sizeof req, "get %s\r\n", key);
    for (int i = 0; i < NODES; i++)
        expect(i, req, want);
}

static void test_mc_forward_commands_at_a_non_replica(void **state)
{
    (void)state;
    char req[256], want[256], key[32];
    for (int k = 0; k < KEYS; k++) {
        snprintf(key, sizeof key, "mcf:%d", k);
        int node = non_replica(key);
        snprintf(req, sizeof req, "set %s 5 0 1\r\n7\r\n", key);
        expect(node, req, "STORED\r\n");
        snprintf(req, sizeof req, "get %s\r\n", key);
        snprintf(want, sizeof want, "VALUE %s 5 1\r\n7\r\nEND\r\n", key);
        expect(node, req, want);
        snprintf(req, sizeof req, "incr %s 3\r\n", key);
        expect(node, req, "10\r\n");
        snprintf(req, sizeof req, "append %s 0 0 1\r\nx\r\n", key);
        expect(node, req, "STORED\r\n");
        snprintf(want, sizeof want, "VALUE %s 5 3\r\n10x\r\nEND\r\n", key);
        expect_everywhere(key, want);
        snprintf(req, sizeof req, "add %s 0 0 1\r\ny\r\n", key);
        expect(node, req, "NOT_STORED\r\n");
        snprintf(req, sizeof req, "replace %s 9 0 2\r\nab\r\n", key);
        expect(node, req, "STORED\r\n");
        snprintf(req, sizeof req, "touch %s 1000\r\n", key);
        expect(node, req, "TOUCHED\r\n");
        snprintf(req, sizeof req, "gets %s\r\n", key);
        const char *got = mc_call(node, req);
        snprintf(want, sizeof want, "VALUE %s 9 2 ", key);
        if (strncmp(got, want, strlen(want)) != 0 || !strstr(got, "\r\nab\r\nEND\r\n"))
            fail_msg("%s-> \"%s\"", req, got);
        /* The same node takes the cas (cas uniques are node-local). */
        unsigned long long cas = strtoull(got + strlen(want), NULL, 10);
        snprintf(req, sizeof req, "cas %s 0 0 2 %llu\r\ncd\r\n", key, cas + 1000000);
        expect(node, req, "EXISTS\r\n");
        snprintf(req, sizeof req, "cas %s 0 0 2 %llu\r\ncd\r\n", key, cas);
        expect(node, req, "STORED\r\n");
        snprintf(want, sizeof want, "VALUE %s 0 2\r\ncd\r\nEND\r\n", key);
        expect_everywhere(key, want);
        snprintf(req, sizeof req, "delete %s\r\n", key);
        expect(node, req, "DELETED\r\n");
        expect_everywhere(key, "END\r\n");
        snprintf(req, sizeof req, "add %s 0 0 1\r\nz\r\n", key);
        expect(node, req, "STORED\r\n");
    }
    /* Many keys in one get: some forwarded, some not; one END. */
    char many[1024] = "get", all[2048] = "";
    for (int k = 0; k < 8; k++) {
        snprintf(key, sizeof key, " mcf:%d", k);
        strcat(many, key);
        snprintf(want, sizeof want, "VALUE mcf:%d 0 1\r\nz\r\n", k);
        strcat(all, want);
    }
    strcat(many, " mcf:none\r\n");
    strcat(all, "END\r\n");
    expect(0, many, all);
}

static void test_mc_forward_noreply_is_silent(void **state)
{
    (void)state;
    char req[256], want[256];
    const char *key = "mcf:quiet";
    int node = non_replica(key);
    /* Each noreply request is followed by a get in the same write:
     * any reply line the noreply one got would come first. */
    snprintf(req, sizeof req, "set %s 0 0 1 noreply\r\n4\r\nget %s\r\n", key, key);
    snprintf(want, sizeof want, "VALUE %s 0 1\r\n4\r\nEND\r\n", key);
    expect(node, req, want);
    snprintf(req, sizeof req, "incr %s 2 noreply\r\nget %s\r\n", key, key);
    snprintf(want, sizeof want, "VALUE %s 0 1\r\n6\r\nEND\r\n", key);
    expect(node, req, want);
    snprintf(req, sizeof req, "add %s 0 0 1 noreply\r\n9\r\nget %s\r\n", key, key);
    expect(node, req, want); /* NOT_STORED, unsaid */
    snprintf(req, sizeof req, "delete %s noreply\r\nget %s\r\n", key, key);
    expect(node, req, "END\r\n");
    expect_everywhere(key, "END\r\n");
}

static void test_mc_forward_bad_requests_get_their_errors(void **state)
{
    (void)state;
    char req[256];
    const char *key = "mcf:bad";
    int node = non_replica(key);
    snprintf(req, sizeof req, "set %s 0 0 abc\r\n", key);
    expect(node, req, "CLIENT_ERROR bad command line format\r\n");
    expect(node, "bogus\r\n", "ERROR\r\n");
    snprintf(req, sizeof req, "set %s 0 0 2\r\nhi\r\n", key);
    expect(node, req, "STORED\r\n");
    snprintf(req, sizeof req, "incr %s 1\r\n", key);
    expect(node, req, "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
    snprintf(req, sizeof req, "incr mcf:absent 1\r\n");
    expect(node, req, "NOT_FOUND\r\n");
    snprintf(req, sizeof req, "get %s\r\n", key);
    char want[128];
    snprintf(want, sizeof want, "VALUE %s 0 2\r\nhi\r\nEND\r\n", key);
    expect(node, req, want);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mc_forward_commands_at_a_non_replica),
        cmocka_unit_test(test_mc_forward_noreply_is_silent),
        cmocka_unit_test(test_mc_forward_bad_requests_get_their_errors),
    };
    return cluster_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
