/* test_disk_full_node: one node's full disk stops no write through it
 * (shards/coord.c, coord_route_slot), and the writes it refused reach it
 * once it has room again (a stand-in's hints). 4 nodes on 127.0.0.x,
 * replicas 3, W = 2, storage = log, anti-entropy every hour (so that only
 * hints can bring node 2 what it missed within the test); node 2's data
 * directory is a 4 MB tmpfs this test
 * mounts (root only, as in CI: skipped with 77 otherwise), filled by a
 * file until node 2's log cannot persist (INFO persistence says err).
 * - test_disk_full_node_writes_go_on: then SET, INCR, MSET, DEL and a
 *   transaction sent to node 2 are answered as they would be by a healthy
 *   node, and their values are read at node 0; memcached set, gets and cas
 *   too (the cas unique is the coordinating replica's); INCRs and
 *   transactions sent to node 0, some of whose slots have node 2 first,
 *   are sent on by node 2; FLUSHALL there still gets MISCONF. Node 2 sends
 *   each such write to another replica, which coordinates it (W from
 *   itself and the third node; node 2 refuses its SYNC). Before, node 2
 *   answered every write -MISCONF. A coordinator that saw node 2 refuse a
 *   SYNC also gives each later write's copy for node 2 to a stand-in (the
 *   fourth node of its list) as a hint: writes through every node first,
 *   so that each has seen a refusal (the refusal of a write answered
 *   already finds no operation to hint). Once the filler file is removed
 *   and node 2's log takes writes again, the hints are delivered and node
 *   2's own copies (CONSISTENCY R 1) hold every checked value.
 * Every wait is on a condition with a deadline; nodes are stopped by PID
 * (cluster_stop, cluster_finish) before the tmpfs is unmounted. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "cluster_harness.h"

#define FORM_MS 20000
#define NODES 4
#define FULL_NODE 2
#define VALUE_LEN 3000
#define WRITES_MAX 3000 /* 9 MB of values: far past the 4 MB filesystem */

static char mounted[160];

/* The filler's bytes: incompressible, so that the log's values take room. */
static void noise(char *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (char)('!' + (seed >> 16) % 90);
    }
}

/* Whether node 2's INFO persistence has the line `line` (a cluster_wait
 * condition). */
static bool full_node_log_is(void *line)
{
    char *info = cluster_ask(FULL_NODE, "INFO persistence");
    bool is = info && cluster_info_has(info, line);
    free(info);
    return is;
}

#define LOG_FAILING "log_write_status:err"
#define LOG_OK "log_write_status:ok"

/* Every stand-in delivered what it kept (none pending, some delivered). */
static bool hints_delivered(void *arg)
{
    (void)arg;
    long long pending = 0, delivered = 0;
    for (int i = 0; i < NODES; i++) {
        long long p = cluster_info_stat(i, "stats", "ringkv_hints_pending"),
                  d = cluster_info_stat(i, "stats", "ringkv_hints_delivered");
        if (p < 0 || d < 0)
            return false;
        pending += p;
        delivered += d;
    }
    return pending == 0 && delivered > 0;
}

/* A reply's text, for messages. */
static const char *reply_text(const redisReply *r)
{
    return !r                            ? "(no reply)"
           : r->str                      ? r->str
           : r->type == REDIS_REPLY_NIL ? "(nil)"
                                         : "(not a string)";
}

/* Each checks the reply to `what`, sent to node `node`, and frees it. */
static void check_status(int node, redisReply *r, const char *want, const char *what)
{
    if (!r || r->type != REDIS_REPLY_STATUS || strcmp(r->str, want) != 0)
        fail_msg("node %d: %s answered %s, not %s", node, what, reply_text(r), want);
    freeReplyObject(r);
}

static void check_int(int node, redisReply *r, long long want, const char *what)
{
    if (!r || r->type != REDIS_REPLY_INTEGER || r->integer != want)
        fail_msg("node %d: %s answered %s, not %lld", node, what, reply_text(r), want);
    freeReplyObject(r);
}

static void check_bulk(int node, redisReply *r, const char *want, const char *what)
{
    if (!r || r->type != REDIS_REPLY_STRING || strcmp(r->str, want) != 0)
        fail_msg("node %d: %s answered %s, not %s", node, what, reply_text(r), want);
    freeReplyObject(r);
}

#define EXPECT(kind, node, want, ...)                                                              \
    check_##kind((node), cluster_redis_command((node), __VA_ARGS__), (want), #__VA_ARGS__)

static void start_cluster(int mc_port)
{
    char mc[16];
    snprintf(mc, sizeof mc, "%d", mc_port);
    const char *flags[] = {"--replicas", "3", "--write-quorum", "2", "--storage", "log",
                           "--compression", "none", "--memcache-port", "0", "--aae-interval",
                           "3600", NULL, NULL, NULL};
    assert_int_equal(cluster_start(0, flags), 0);
    flags[12] = "--seeds";
    flags[13] = cluster_seed(0);
    for (int i = 1; i < NODES; i++) {
        if (i == FULL_NODE) {
            snprintf(mounted, sizeof mounted, "%s", cluster_dir(i));
            mkdir(mounted, 0700);
            if (mount("tmpfs", mounted, "tmpfs", 0, "size=4m") != 0) {
                fprintf(stderr, "cannot mount a tmpfs (%s): skipping\n", strerror(errno));
                mounted[0] = '\0';
                cluster_finish(0);
                exit(77);
            }
            flags[9] = mc; /* node 2 takes memcached clients too */
        }
        assert_int_equal(cluster_start(i, flags), 0);
        flags[9] = "0";
    }
    int n = NODES;
    assert_true(cluster_wait(cluster_formed, &n, FORM_MS));
    assert_true(cluster_wait(cluster_views_agree, &n, FORM_MS));
    assert_true(cluster_wait(cluster_pulls_done, &n, FORM_MS));
}

/* Fills node 2's volume: a file, then SETs through node 0 (which reach
 * node 2 as SYNCs) until its log fails. */
static void fill_node_disk(void)
{
    char path[200];
    snprintf(path, sizeof path, "%s/filler", mounted);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    static char block[1 << 16];
    noise(block, sizeof block, 7);
    for (int i = 0; i < 40; i++) /* 2.5 MB of the 4 */
        assert_int_equal(fwrite(block, 1, sizeof block, f), sizeof block);
    assert_int_equal(fclose(f), 0);
    static char value[VALUE_LEN + 1];
    for (int i = 0; i < WRITES_MAX && !full_node_log_is(LOG_FAILING); i++) {
        noise(value, VALUE_LEN, (uint32_t)i);
        redisReply *r = cluster_redis_command(0, "SET fill:%d %s", i, value);
        freeReplyObject(r); /* OK: nodes 0 and 1 make W */
    }
    assert_true(cluster_wait(full_node_log_is, LOG_FAILING, 10000));
}

static void test_disk_full_node_writes_go_on(void **state)
{
    (void)state;
    int mc_port = cluster_free_port(NODES);
    assert_true(mc_port > 0);
    start_cluster(mc_port);
    fill_node_disk();
    for (int node = 0; node < NODES; node++) /* every coordinator sees node 2 refuse */
        for (int i = 0; i < 30; i++)
            EXPECT(status, node, "OK", "SET warm:%d:%d v", node, i);

    for (int i = 0; i < 50; i++)
        EXPECT(status, FULL_NODE, "OK", "SET full:%d v%d", i, i);
    EXPECT(int, FULL_NODE, 1, "INCR full:counter");
    EXPECT(int, FULL_NODE, 2, "INCR full:counter");
    EXPECT(status, FULL_NODE, "OK", "MSET full:a 1 full:b 2");
    EXPECT(int, FULL_NODE, 1, "DEL full:a");
    for (int i = 0; i < 50; i++) {
        char want[16];
        snprintf(want, sizeof want, "v%d", i);
        EXPECT(bulk, 0, want, "GET full:%d", i);
    }
    EXPECT(bulk, 0, "2", "GET full:counter");
    EXPECT(bulk, 0, "2", "GET full:b");
    EXPECT(int, 0, 0, "EXISTS full:a");
    /* read-modify-writes sent to node 0: node 2 is the first live replica
     * of about a quarter of these keys, and sends them on */
    for (int i = 0; i < 30; i++) {
        EXPECT(int, 0, 1, "INCR rmw:%d", i);
        EXPECT(int, FULL_NODE, 2, "INCR rmw:%d", i);
        EXPECT(bulk, 0, "2", "GET rmw:%d", i);
    }
    for (int node = 0; node <= FULL_NODE; node += FULL_NODE) { /* nodes 0 and 2 */
        for (int i = 0; i < 10; i++) {
            redisContext *c = cluster_redis(node);
            assert_non_null(c);
            redisAppendCommand(c, "MULTI");
            redisAppendCommand(c, "SET tx:%d:%d a", node, i);
            redisAppendCommand(c, "APPEND tx:%d:%d b", node, i);
            redisAppendCommand(c, "EXEC");
            redisReply *r = NULL;
            for (int k = 0; k < 4; k++) {
                if (r)
                    freeReplyObject(r);
                assert_int_equal(redisGetReply(c, (void **)&r), REDIS_OK);
            }
            if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
                fail_msg("node %d: EXEC answered %s, not 2 replies", node, reply_text(r));
            freeReplyObject(r);
            redisFree(c);
            EXPECT(bulk, 0, "ab", "GET tx:%d:%d", node, i);
        }
    }

    char *reply = cluster_mc_ask(FULL_NODE, mc_port, "set full:mc 0 0 2\r\nhi\r\n", "\r\n");
    assert_non_null(reply);
    if (strcmp(reply, "STORED\r\n") != 0)
        fail_msg("memcached set at node %d answered %s", FULL_NODE, reply);
    free(reply);
    EXPECT(bulk, 0, "hi", "GET full:mc");
    reply = cluster_mc_ask(FULL_NODE, mc_port, "gets full:mc\r\n", "END\r\n");
    assert_non_null(reply);
    unsigned long long unique = 0;
    if (sscanf(reply, "VALUE full:mc 0 2 %llu", &unique) != 1)
        fail_msg("memcached gets at node %d answered %s", FULL_NODE, reply);
    free(reply);
    char cas[96];
    snprintf(cas, sizeof cas, "cas full:mc 0 0 2 %llu\r\nho\r\n", unique);
    reply = cluster_mc_ask(FULL_NODE, mc_port, cas, "\r\n");
    assert_non_null(reply);
    if (strcmp(reply, "STORED\r\n") != 0)
        fail_msg("memcached cas at node %d with gets' unique answered %s", FULL_NODE, reply);
    free(reply);
    EXPECT(bulk, 0, "ho", "GET full:mc");

    redisReply *r = cluster_redis_command(FULL_NODE, "FLUSHALL");
    if (!r || r->type != REDIS_REPLY_ERROR || strncmp(r->str, "MISCONF ", 8) != 0)
        fail_msg("FLUSHALL at a node whose log fails answered %s, not MISCONF", reply_text(r));
    freeReplyObject(r);
    EXPECT(bulk, 0, "2", "GET full:b"); /* and it ran nowhere */
    assert_true(full_node_log_is(LOG_FAILING)); /* all of it was with node 2 failing */

    char path[200];
    snprintf(path, sizeof path, "%s/filler", mounted);
    assert_int_equal(unlink(path), 0);
    assert_true(cluster_wait(full_node_log_is, LOG_OK, 20000));
    assert_true(cluster_wait(hints_delivered, NULL, 90000)); /* the hint log backs off up to 30 s */
    redisContext *c = cluster_redis(FULL_NODE);
    assert_non_null(c);
    freeReplyObject(redisCommand(c, "CONSISTENCY R 1"));
    /* node 2's own copy, or a forward (R 1 there) for keys it holds none of */
    for (int i = 0; i < 50; i++) {
        char want[16];
        snprintf(want, sizeof want, "v%d", i);
        redisReply *got = redisCommand(c, "GET full:%d", i);
        if (!got || got->type != REDIS_REPLY_STRING || strcmp(got->str, want) != 0)
            fail_msg("node 2 (R 1) answered %s for full:%d, not %s", reply_text(got), i, want);
        freeReplyObject(got);
    }
    for (int i = 0; i < 30; i++) {
        redisReply *got = redisCommand(c, "GET rmw:%d", i);
        if (!got || got->type != REDIS_REPLY_STRING || strcmp(got->str, "2") != 0)
            fail_msg("node 2 (R 1) answered %s for rmw:%d, not 2", reply_text(got), i);
        freeReplyObject(got);
    }
    redisFree(c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disk_full_node_writes_go_on),
    };
    int failures = cmocka_run_group_tests(tests, NULL, NULL);
    for (int i = 0; i < NODES; i++)
        cluster_stop(i); /* before the volume goes */
    if (mounted[0] && umount(mounted) != 0)
        fprintf(stderr, "cannot unmount %s: %s\n", mounted, strerror(errno));
    return cluster_finish(failures);
}
