/* test_bench_cluster.c: ringkv-bench --cluster-mode's topology: CLUSTER SLOTS
 * replies as Redis 3 and 7 write them (ids, hostname metadata, replicas,
 * NULL and empty endpoints) read into a slot map whatever the cut, odd or
 * hostile replies refused with a reason, -MOVED and -ASK read, and keys
 * routed by Redis Cluster's slot (hash tags included). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench_cluster.h"

static struct bench_cluster_map map;
static char why[256];

/* Redis 7.0's reply from a 3-master cluster after a reshard (ids, empty metadata). */
static const char redis7[] = "*5\r\n"
                             "*3\r\n:0\r\n:99\r\n*4\r\n$9\r\n127.0.0.1\r\n:23103\r\n"
                             "$40\r\naa28ff7f28e8aed2f03821fb487ab4698d0d93a1\r\n*0\r\n"
                             "*3\r\n:100\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:23101\r\n"
                             "$40\r\n1370b8c5e3841e1f978e40833f6bdff0f2b87ac1\r\n*0\r\n"
                             "*3\r\n:5461\r\n:5660\r\n*4\r\n$9\r\n127.0.0.1\r\n:23103\r\n"
                             "$40\r\naa28ff7f28e8aed2f03821fb487ab4698d0d93a1\r\n*0\r\n"
                             "*3\r\n:5661\r\n:10922\r\n*4\r\n$9\r\n127.0.0.1\r\n:23102\r\n"
                             "$40\r\ndea2447f7ba70d41321235162dd5d9a76fa4793a\r\n*0\r\n"
                             "*3\r\n:10923\r\n:16383\r\n*4\r\n$9\r\n127.0.0.1\r\n:23103\r\n"
                             "$40\r\naa28ff7f28e8aed2f03821fb487ab4698d0d93a1\r\n*0\r\n";

static enum bench_cluster_status parse(const char *reply, size_t len)
{
    size_t consumed = 0;
    why[0] = '\0';
    enum bench_cluster_status st =
        bench_cluster_parse_slots(reply, len, "seed.example", &map, &consumed, why, sizeof why);
    if (st == BENCH_CLUSTER_OK)
        assert_int_equal(consumed, len);
    return st;
}

#define PARSE(s) parse((s), sizeof(s) - 1)

/* The reply is refused, and the reason mentions `words`. */
static void expect_refused(const char *reply, const char *words)
{
    assert_int_equal(parse(reply, strlen(reply)), BENCH_CLUSTER_BAD);
    if (!strstr(why, words))
        fail_msg("reason '%s' does not mention '%s'", why, words);
}

static const char *host_of(uint32_t slot)
{
    return map.nodes[map.slot_node[slot]].host;
}

static unsigned port_of(uint32_t slot)
{
    return map.nodes[map.slot_node[slot]].port;
}

static void test_bench_cluster_reads_redis7_reply(void **state)
{
    assert_int_equal(PARSE(redis7), BENCH_CLUSTER_OK);
    assert_int_equal(map.nnodes, 3); /* 23103 serves three ranges: one node */
    assert_int_equal(port_of(0), 23103);
    assert_int_equal(port_of(99), 23103);
    assert_int_equal(port_of(100), 23101);
    assert_int_equal(port_of(5460), 23101);
    assert_int_equal(port_of(5461), 23103);
    assert_int_equal(port_of(5661), 23102);
    assert_int_equal(port_of(10922), 23102);
    assert_int_equal(port_of(16383), 23103);
    assert_string_equal(host_of(7000), "127.0.0.1");
}

static void test_bench_cluster_reads_reply_at_every_cut(void **state)
{
    size_t len = sizeof redis7 - 1;
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(parse(redis7, cut), BENCH_CLUSTER_MORE);
    assert_int_equal(parse(redis7, len), BENCH_CLUSTER_OK);
}

static void test_bench_cluster_takes_redis3_hostnames_and_replicas(void **state)
{
    /* Redis 3: [ip, port] only; Redis 7 with hostnames: metadata pairs;
     * replicas after the master; a NULL endpoint and an empty one. */
    static const char reply[] =
        "*4\r\n"
        "*3\r\n:0\r\n:4095\r\n*2\r\n$8\r\n10.0.0.1\r\n:7000\r\n"
        "*4\r\n:4096\r\n:8191\r\n*4\r\n$13\r\nnode2.example\r\n:7001\r\n$3\r\nid2\r\n"
        "*2\r\n$2\r\nip\r\n$8\r\n10.0.0.2\r\n"
        "*4\r\n$13\r\nnode5.example\r\n:7004\r\n$3\r\nid5\r\n*2\r\n$8\r\nhostname\r\n$"
        "5\r\nnode5\r\n"
        "*3\r\n:8192\r\n:12287\r\n*3\r\n$-1\r\n:7002\r\n$3\r\nid3\r\n"
        "*3\r\n:12288\r\n:16383\r\n*3\r\n$0\r\n\r\n:7003\r\n$3\r\nid4\r\n";
    assert_int_equal(PARSE(reply), BENCH_CLUSTER_OK);
    assert_int_equal(map.nnodes, 4);
    assert_string_equal(host_of(0), "10.0.0.1");
    assert_string_equal(host_of(5000), "node2.example");
    assert_int_equal(port_of(5000), 7001);
    assert_string_equal(host_of(9000), "seed.example"); /* NULL endpoint: the seed's host */
    assert_int_equal(port_of(9000), 7002);
    assert_string_equal(host_of(16383), "seed.example"); /* empty endpoint: the same */
    assert_int_equal(port_of(16383), 7003);
}

static void test_bench_cluster_refuses_odd_replies(void **state)
{
    static const char master[] = "*2\r\n$9\r\n127.0.0.1\r\n:7000\r\n";
    char buf[512];
    expect_refused("-ERR This instance has cluster support disabled\r\n",
                   "cluster support disabled");
    expect_refused("*0\r\n", "no slot has a master");
    expect_refused("+OK\r\n", "not an array");
    expect_refused("*-1\r\n", "not an array");
    snprintf(buf, sizeof buf, "*1\r\n*3\r\n:0\r\n:16000\r\n%s", master);
    expect_refused(buf, "slots 16001-16383 have no master");
    snprintf(buf, sizeof buf, "*1\r\n*3\r\n:0\r\n:16384\r\n%s", master);
    expect_refused(buf, "last slot");
    snprintf(buf, sizeof buf, "*1\r\n*3\r\n:-1\r\n:16383\r\n%s", master);
    expect_refused(buf, "first slot");
    snprintf(buf, sizeof buf, "*1\r\n*3\r\n:9\r\n:3\r\n%s", master);
    expect_refused(buf, "ends before it starts");
    snprintf(buf, sizeof buf, "*2\r\n*3\r\n:0\r\n:16383\r\n%s*3\r\n:5\r\n:5\r\n%s", master, master);
    expect_refused(buf, "slot 5 is listed twice");
    expect_refused("*1\r\n*2\r\n:0\r\n:16383\r\n", "not first, last and master");
    expect_refused("*1\r\n*3\r\n:0\r\n:16383\r\n*1\r\n$1\r\na\r\n", "not endpoint and port");
    expect_refused("*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$1\r\n?\r\n:7000\r\n", "unknown");
    expect_refused("*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$1\r\na\r\n:0\r\n", "port is 0");
    expect_refused("*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$1\r\na\r\n:65536\r\n", "port");
    expect_refused("*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$1\r\na\r\n$4\r\n7000\r\n", "port");
    expect_refused("*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$3\r\na b\r\n:7000\r\n", "spaces");
    expect_refused("*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$1\r\na\r\n:7000\n", "CRLF");
    expect_refused("*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$1\r\naXY:7000\r\n", "CRLF");
    expect_refused("*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$1\r\na\r\n:7000\r\n!x\r\n", "type");
}

static void test_bench_cluster_refuses_long_hosts_and_deep_nesting(void **state)
{
    static char buf[4096];
    char host[BENCH_CLUSTER_MAX_HOST + 2];
    memset(host, 'h', sizeof host - 1);
    host[sizeof host - 1] = '\0';
    snprintf(buf, sizeof buf, "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$%zu\r\n%s\r\n:7000\r\n",
             strlen(host), host);
    expect_refused(buf, "longer than 255 bytes");
    /* metadata nested past the limit */
    int n = snprintf(buf, sizeof buf, "*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$1\r\na\r\n:7000\r\n");
    for (int i = 0; i < BENCH_CLUSTER_MAX_DEPTH + 2; i++)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "*1\r\n");
    n += snprintf(buf + n, sizeof buf - (size_t)n, ":1\r\n");
    expect_refused(buf, "nested deeper");
}

static void test_bench_cluster_refuses_too_many_masters(void **state)
{
    /* one range per slot, each on its own port: more masters than a map holds */
    size_t cap = 64u * KEYHASH_SLOTS, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    n += (size_t)snprintf(buf + n, cap - n, "*%u\r\n", KEYHASH_SLOTS);
    for (unsigned s = 0; s < KEYHASH_SLOTS; s++)
        n += (size_t)snprintf(buf + n, cap - n, "*3\r\n:%u\r\n:%u\r\n*2\r\n$1\r\nh\r\n:%u\r\n", s,
                              s, 1000 + s);
    assert_int_equal(parse(buf, n), BENCH_CLUSTER_BAD);
    assert_non_null(strstr(why, "more than 1024 masters"));
    free(buf);
}

static void test_bench_cluster_reads_moved_and_ask(void **state)
{
    struct bench_redirect r;
    static const char moved[] = "MOVED 3999 127.0.0.1:6381";
    assert_int_equal(bench_cluster_parse_redirect(moved, sizeof moved - 1, &r),
                     BENCH_REDIRECT_MOVED);
    assert_int_equal(r.slot, 3999);
    assert_int_equal(r.port, 6381);
    assert_int_equal(r.host_len, 9);
    assert_memory_equal(r.host, "127.0.0.1", 9);
    static const char ask[] = "ASK 16383 node7.example:7006";
    assert_int_equal(bench_cluster_parse_redirect(ask, sizeof ask - 1, &r), BENCH_REDIRECT_ASK);
    assert_int_equal(r.slot, 16383);
    assert_int_equal(r.port, 7006);
    assert_memory_equal(r.host, "node7.example", 13);
    static const char nohost[] = "MOVED 0 :7001"; /* unknown endpoint: the node that answered */
    assert_int_equal(bench_cluster_parse_redirect(nohost, sizeof nohost - 1, &r),
                     BENCH_REDIRECT_MOVED);
    assert_int_equal(r.host_len, 0);
    assert_int_equal(r.port, 7001);
    static const char v6[] = "MOVED 12 ::1:7002";
    assert_int_equal(bench_cluster_parse_redirect(v6, sizeof v6 - 1, &r), BENCH_REDIRECT_MOVED);
    assert_int_equal(r.host_len, 3);
    assert_memory_equal(r.host, "::1", 3);
    assert_int_equal(r.port, 7002);
}

static void test_bench_cluster_refuses_bad_redirects(void **state)
{
    static const char *const bad[] = {
        "MOVED 16384 h:1", "MOVED -1 h:1", "MOVED 1 h",   "MOVED 1 h:0",
        "MOVED 1 h:65536", "MOVED 1 h:x",  "MOVED x h:1", "MOVED 1",
        "ASK 1 a b:7",     "MOVED  1 h:1", "MOVED 1 h:",  "ASK 99999999999999999999 h:1",
    };
    struct bench_redirect r;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (bench_cluster_parse_redirect(bad[i], strlen(bad[i]), &r) != BENCH_REDIRECT_BAD)
            fail_msg("'%s' was not refused", bad[i]);
    static const char *const other[] = {"ERR unknown command", "MOVEDX 1 h:1", "ASKING", "",
                                        "TRYAGAIN"};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        assert_int_equal(bench_cluster_parse_redirect(other[i], strlen(other[i]), &r),
                         BENCH_REDIRECT_NONE);
}

static void test_bench_cluster_routes_keys_by_slot(void **state)
{
    /* Redis Cluster's specification: CRC16 of "123456789" is 0x31c3. */
    assert_int_equal(bench_cluster_slot("123456789", 9), 0x31c3);
    assert_int_equal(bench_cluster_slot("foo", 3), 12182);
    /* a hash tag: only the part in braces counts */
    assert_int_equal(bench_cluster_slot("{user1000}.following", 20),
                     bench_cluster_slot("user1000", 8));
    assert_int_equal(bench_cluster_slot("{}foo", 5), bench_cluster_slot("{}foo", 5));
    assert_int_not_equal(bench_cluster_slot("{}foo", 5), bench_cluster_slot("", 0));
    assert_int_equal(PARSE(redis7), BENCH_CLUSTER_OK);
    /* "foo" is in slot 12182: 10923-16383, port 23103 */
    assert_int_equal(port_of(bench_cluster_slot("foo", 3)), 23103);
}

static void test_bench_cluster_numbers_nodes_once(void **state)
{
    map.nnodes = 0;
    assert_int_equal(bench_cluster_node(&map, "a", 1, 7000), 0);
    assert_int_equal(bench_cluster_node(&map, "a", 1, 7001), 1);
    assert_int_equal(bench_cluster_node(&map, "b", 1, 7000), 2);
    assert_int_equal(bench_cluster_node(&map, "a", 1, 7001), 1);
    assert_int_equal(bench_cluster_node(&map, "", 0, 7001), -EINVAL);
    while (map.nnodes < BENCH_CLUSTER_MAX_NODES)
        assert_true(bench_cluster_node(&map, "c", 1, (uint16_t)(map.nnodes + 1)) >= 0);
    assert_int_equal(bench_cluster_node(&map, "d", 1, 1), -ENOSPC);
    assert_int_equal(bench_cluster_node(&map, "a", 1, 7000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bench_cluster_reads_redis7_reply),
        cmocka_unit_test(test_bench_cluster_reads_reply_at_every_cut),
        cmocka_unit_test(test_bench_cluster_takes_redis3_hostnames_and_replicas),
        cmocka_unit_test(test_bench_cluster_refuses_odd_replies),
        cmocka_unit_test(test_bench_cluster_refuses_long_hosts_and_deep_nesting),
        cmocka_unit_test(test_bench_cluster_refuses_too_many_masters),
        cmocka_unit_test(test_bench_cluster_reads_moved_and_ask),
        cmocka_unit_test(test_bench_cluster_refuses_bad_redirects),
        cmocka_unit_test(test_bench_cluster_routes_keys_by_slot),
        cmocka_unit_test(test_bench_cluster_numbers_nodes_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
