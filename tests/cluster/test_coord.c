/* test_coord: the coordinator (shards/coord.c) with real nodes on 127.0.0.x.
 * - test_coord_set_at_one_get_at_every: 3 nodes (N = 3, R = W = 2): values
 *   SET (and MSET, and a RING.PUT) at one node are read back at every node,
 *   DEL at another removes them everywhere, INCR at two nodes counts on,
 *   BITFIELD and BITOP at a third write what every node reads, MGET and EXISTS see
 *   keys of every node, FLUSHALL empties every node;
 *   then MSET, MGET and DEL of 5000 keys (routed over several loop turns)
 *   at three nodes: MGET's values in order, DEL's count, and a GET
 *   pipelined after the MSET sees its last key.
 * - test_coord_w2_with_one_frozen_w3_unavailable: one of 3 nodes SIGSTOPped:
 *   a plain SET (W = 2) is acknowledged; RING.PUT ... W 3 and SET after
 *   CONSISTENCY W 3 get -UNAVAILABLE within request-timeout and a margin;
 *   RING.PUT ... W 4 is refused naming the cap (N = 3); after SIGCONT a W 3
 *   write is acknowledged again.
 * - test_coord_read_repairs_a_replica_that_missed_a_write: a node frozen
 *   until the others see it down misses a write (W = 2 without it); once
 *   back, its own store (CONSISTENCY R 1) lacks the key until a quorum read
 *   at another node repairs it (INFO ringkv_read_repairs grows).
 * - test_coord_non_replica_forwards: 4 nodes with replicas 2 (and 2 shards
 *   each): node 0 holds no replica of some keys, so it forwards them (INFO's
 *   ringkv_forwarded grows) and every key written there reads back at every
 *   node; a cluster-aware connection (READONLY) gets -MOVED <slot> <addr>
 *   for such a key instead, and the node named there answers it.
 * - test_coord_memcached_replicates: memcached set at one node is read by
 *   get at every node; incr at two others counts on (and GET sees it).
 * - test_coord_memcached_gat_reads_a_quorum: a node that missed a write
 *   (frozen, as above) answers memcached gat and gats of the key with the
 *   value it missed: gat is a read-modify-write, coordinated after a
 *   quorum read (it answered its own miss when routed as a plain write).
 * - test_coord_lcs_reads_a_quorum: LCS of two keys at the node that missed
 *   one of them answers with the value it missed (a quorum read of both).
 * - test_coord_cold_links_take_a_burst: 2 nodes: a 10000-key MSET is the
 *   first thing node 1 sends node 0, its rows waiting for the link's
 *   handshake: acknowledged (a link used to keep 4096 waiting and refuse
 *   the rest: -UNAVAILABLE).
 * Without the coordinator every node serves only its own store: the first
 * and last fail on reads at other nodes (the fourth on the repair), the second on the missing
 * -UNAVAILABLE (a W above 1 is refused). Every wait is on a condition with a
 * deadline; nodes are stopped by PID (cluster_finish). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "cluster_harness.h"

#define FORM_MS 20000
#define TIMEOUT_MS 2000 /* the nodes' request-timeout */
#define KEYS 40

static redisContext *client(int i)
{
    struct timeval tv = {.tv_sec = 10};
    redisContext *c = redisConnectWithTimeout(cluster_host(i), cluster_client_port(), tv);
    assert_non_null(c);
    assert_int_equal(c->err, 0);
    redisSetTimeout(c, tv);
    return c;
}

/* The reply to a command on c, as text: "+OK" style for status, ":n" for
 * integers, "$value" for strings, "nil", "-ERR ..." for errors. Caller
 * frees. */
static char *run(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    char *text = NULL;
    if (!r)
        return strdup("(no reply)");
    switch (r->type) {
    case REDIS_REPLY_STATUS:
        assert_true(asprintf(&text, "+%s", r->str) > 0);
        break;
    case REDIS_REPLY_ERROR:
        assert_true(asprintf(&text, "-%s", r->str) > 0);
        break;
    case REDIS_REPLY_INTEGER:
        assert_true(asprintf(&text, ":%lld", r->integer) > 0);
        break;
    case REDIS_REPLY_STRING:
        assert_true(asprintf(&text, "$%.*s", (int)r->len, r->str) > 0);
        break;
    case REDIS_REPLY_NIL:
        text = strdup("nil");
        break;
    case REDIS_REPLY_ARRAY: { /* "[a,b,nil]" of string elements */
        size_t cap = 3, n = 0;
        for (size_t i = 0; i < r->elements; i++)
            cap += (r->element[i]->str ? r->element[i]->len : 3) + 1;
        text = malloc(cap);
        assert_non_null(text);
        text[n++] = '[';
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *e = r->element[i];
            n += (size_t)snprintf(text + n, cap - n, "%s%.*s", i ? "," : "",
                                  e->str ? (int)e->len : 3, e->str ? e->str : "nil");
        }
        snprintf(text + n, cap - n, "]");
        break;
    }
    default:
        assert_true(asprintf(&text, "(type %d)", r->type) > 0);
    }
    freeReplyObject(r);
    return text;
}

/* Every one of the first *arg nodes has its formation's partition
 * transfers behind it (shards/transfer.h: nothing pending, streaming or
 * being released), so its ring is the others' and writes are not refused
 * by a node whose view is an epoch behind or ahead. */
static bool transfers_settled(void *arg)
{
    int n = *(const int *)arg;
    for (int i = 0; i < n; i++) {
        json_t *st = cluster_get(i, "/v1/stats");
        long long busy = 0;
        const char *keys[] = {"transfer_partitions_pending", "transfer_partitions_streaming",
                              "transfer_partitions_releasing"};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            json_t *v = st ? json_object_get(st, keys[k]) : NULL;
            busy += json_is_number(v) ? (long long)json_number_value(v) : 1;
        }
        json_decref(st);
        if (busy != 0)
            return false;
    }
    return true;
}

static void start_cluster(int n, const char *const *extra)
{
    const char *flags[16];
    int k = 0;
    flags[k++] = "--request-timeout";
    flags[k++] = "2000";
    for (int i = 0; extra && extra[i]; i++)
        flags[k++] = extra[i];
    flags[k] = NULL;
    assert_int_equal(cluster_start(0, flags), 0);
    const char *seeded[18];
    memcpy(seeded, flags, sizeof(char *) * (size_t)k);
    seeded[k] = "--seeds";
    seeded[k + 1] = cluster_seed(0);
    seeded[k + 2] = NULL;
    for (int i = 1; i < n; i++)
        assert_int_equal(cluster_start(i, seeded), 0);
    assert_true(cluster_wait(cluster_formed, &n, FORM_MS));
    assert_true(cluster_wait(transfers_settled, &n, 30000));
}

struct expect_value {
    int nodes;
    const char *key;
    const char *want; /* "$value" or "nil" */
};

/* Every node answers GET key with want. */
static bool every_node_reads(void *arg)
{
    const struct expect_value *x = arg;
    for (int i = 0; i < x->nodes; i++) {
        redisContext *c = client(i);
        char *got = run(c, "GET %s", x->key);
        bool ok = strcmp(got, x->want) == 0;
        if (!ok)
            fprintf(stderr, "node %d: GET %s: %s (want %s)\n", i, x->key, got, x->want);
        free(got);
        redisFree(c);
        if (!ok)
            return false;
    }
    return true;
}

static void expect_everywhere(int nodes, const char *key, const char *want)
{
    struct expect_value x = {nodes, key, want};
    assert_true(cluster_wait(every_node_reads, &x, 5000));
}

struct write_try {
    int node;
    const char *key, *value;
};

/* SET at the node is acknowledged (the peer links may still be dialling
 * just after the cluster formed). */
static bool set_acknowledged(void *arg)
{
    const struct write_try *w = arg;
    redisContext *c = client(w->node);
    char *got = run(c, "SET %s %s", w->key, w->value);
    bool ok = strcmp(got, "+OK") == 0;
    if (!ok)
        fprintf(stderr, "node %d: SET %s: %s\n", w->node, w->key, got);
    free(got);
    redisFree(c);
    return ok;
}

/* argv of cmd then, for each of nkeys keys "<prefix>:<i>", the key and
 * (values) "v-<i>"; every string allocated (argv_free). How many. */
#define BIG_KEYS 5000 /* a split command of more rows than one loop turn routes (1024) */
#define MSETNX_KEYS 2100 /* three turns' rows in each of MSETNX's phases */
static size_t keys_argv(const char *cmd, const char *prefix, int nkeys, bool values,
                        char **argv, size_t *lens)
{
    size_t n = 0;
    argv[n++] = strdup(cmd);
    for (int i = 0; i < nkeys; i++) {
        assert_true(asprintf(&argv[n++], "%s:%d", prefix, i) > 0);
        if (values)
            assert_true(asprintf(&argv[n++], "v-%d", i) > 0);
    }
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    return n;
}

static void argv_free(char **argv, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(argv[i]);
}

/* MSET, MGET, DEL and MSETNX of BIG_KEYS keys, each at another node: routed over
 * several loop turns (cmd.c's cmd_route_each), each row still reaches its
 * own sub-result (MGET's values in order), and a command pipelined after
 * the MSET sees all of it. */
static void big_mset_mget_del(void)
{
    static char *argv[1 + 2 * BIG_KEYS];
    static size_t lens[1 + 2 * BIG_KEYS];
    redisContext *c0 = client(0);
    size_t n = keys_argv("MSET", "big", BIG_KEYS, true, argv, lens);
    assert_int_equal(redisAppendCommandArgv(c0, (int)n, (const char **)argv, lens), REDIS_OK);
    argv_free(argv, n);
    assert_int_equal(redisAppendCommand(c0, "GET big:%d", BIG_KEYS - 1), REDIS_OK);
    redisReply *r = NULL;
    assert_int_equal(redisGetReply(c0, (void **)&r), REDIS_OK);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    assert_string_equal(r->str, "OK");
    freeReplyObject(r);
    char want[32];
    snprintf(want, sizeof want, "v-%d", BIG_KEYS - 1);
    assert_int_equal(redisGetReply(c0, (void **)&r), REDIS_OK);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, want);
    freeReplyObject(r);
    redisFree(c0);

    redisContext *c1 = client(1);
    n = keys_argv("MGET", "big", BIG_KEYS, false, argv, lens);
    r = redisCommandArgv(c1, (int)n, (const char **)argv, lens);
    argv_free(argv, n);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, BIG_KEYS);
    for (int i = 0; i < BIG_KEYS; i++) {
        snprintf(want, sizeof want, "v-%d", i);
        assert_int_equal(r->element[i]->type, REDIS_REPLY_STRING);
        assert_string_equal(r->element[i]->str, want);
    }
    freeReplyObject(r);
    redisFree(c1);

    redisContext *c2 = client(2);
    n = keys_argv("DEL", "big", BIG_KEYS, false, argv, lens);
    r = redisCommandArgv(c2, (int)n, (const char **)argv, lens);
    argv_free(argv, n);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, BIG_KEYS);
    freeReplyObject(r);
    /* MSETNX's two phases, paced the same way (fewer keys: both phases run
     * under one request-timeout): with only its last key there, nothing is
     * set (the first phase saw every key); with none, every key is */
    for (int round = 0; round < 2; round++) {
        r = redisCommand(c2, round == 0 ? "SET big:%d old" : "DEL big:%d", MSETNX_KEYS - 1);
        freeReplyObject(r);
        n = keys_argv("MSETNX", "big", MSETNX_KEYS, true, argv, lens);
        r = redisCommandArgv(c2, (int)n, (const char **)argv, lens);
        argv_free(argv, n);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        assert_int_equal(r->integer, round == 0 ? 0 : 1);
        freeReplyObject(r);
        if (round == 0) {
            expect_everywhere(3, "big:0", "nil");
            r = redisCommand(c2, "GET big:%d", MSETNX_KEYS - 1);
            assert_string_equal(r->str, "old");
            freeReplyObject(r);
        }
    }
    r = redisCommand(c2, "GET big:%d", MSETNX_KEYS - 1);
    assert_non_null(r);
    snprintf(want, sizeof want, "v-%d", MSETNX_KEYS - 1);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, want);
    freeReplyObject(r);
    n = keys_argv("DEL", "big", MSETNX_KEYS, false, argv, lens);
    r = redisCommandArgv(c2, (int)n, (const char **)argv, lens);
    argv_free(argv, n);
    assert_non_null(r);
    assert_int_equal(r->integer, MSETNX_KEYS);
    freeReplyObject(r);
    redisFree(c2);
    expect_everywhere(3, "big:0", "nil");
}

/* A node's first requests to a peer wait in its link's queue while the
 * link is dialled and its handshake runs: a 10000-key MSET at a node that
 * has sent its peer nothing yet (2 nodes, one shard each, W = N = 2: every
 * row needs the peer) is acknowledged. The queue took 4096 messages, and
 * the rest were refused: -UNAVAILABLE "1 of 2 replicas answered". */
#define BURST_KEYS 10000
static void test_coord_cold_links_take_a_burst(void **state)
{
    (void)state;
    start_cluster(2, NULL);
    static char *argv[1 + 2 * BURST_KEYS];
    static size_t lens[1 + 2 * BURST_KEYS];
    size_t n = keys_argv("MSET", "burst", BURST_KEYS, true, argv, lens);
    redisContext *c1 = client(1);
    redisReply *r = redisCommandArgv(c1, (int)n, (const char **)argv, lens);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("MSET of %d keys: %s", BURST_KEYS, r->str);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(c1);
    argv_free(argv, n);
    expect_everywhere(2, "burst:9999", "$v-9999");
}

/* GET key on node i as that node alone holds it (CONSISTENCY R 1: no
 * other replica asked, nothing merged). */
static char *local_read(int i, const char *key)
{
    redisContext *c = client(i);
    char *got = run(c, "CONSISTENCY R 1");
    assert_string_equal(got, "+OK");
    free(got);
    got = run(c, "GET %s", key);
    redisFree(c);
    return got;
}

struct local_value {
    int node;
    const char *key, *want;
};

static bool local_read_is(void *arg)
{
    const struct local_value *x = arg;
    char *got = local_read(x->node, x->key);
    bool ok = strcmp(got, x->want) == 0;
    free(got);
    return ok;
}

static void test_coord_set_at_one_get_at_every(void **state)
{
    (void)state;
    start_cluster(3, NULL);
    struct write_try first = {0, "first", "one"};
    assert_true(cluster_wait(set_acknowledged, &first, 10000));
    redisContext *c0 = client(0);
    char key[32], value[32], want[40];
    for (int k = 0; k < KEYS; k++) {
        snprintf(key, sizeof key, "key:%d", k);
        snprintf(value, sizeof value, "value-%d", k);
        char *got = run(c0, "SET %s %s", key, value);
        assert_string_equal(got, "+OK");
        free(got);
    }
    char *got = run(c0, "MSET m1 a m2 b {t}x c");
    assert_string_equal(got, "+OK");
    free(got);
    got = run(c0, "RING.PUT ringkey %b v1", "", (size_t)0);
    assert_string_equal(got, "+OK");
    free(got);
    redisFree(c0);
    expect_everywhere(3, "first", "$one");
    for (int k = 0; k < KEYS; k++) {
        snprintf(key, sizeof key, "key:%d", k);
        snprintf(want, sizeof want, "$value-%d", k);
        expect_everywhere(3, key, want);
    }
    expect_everywhere(3, "m2", "$b");
    expect_everywhere(3, "{t}x", "$c");
    expect_everywhere(3, "ringkey", "$v1");

    redisContext *c1 = client(1);
    got = run(c1, "DEL key:1 key:2 nothere");
    assert_string_equal(got, ":2");
    free(got);
    got = run(c1, "INCR counter");
    assert_string_equal(got, ":1");
    free(got);
    redisFree(c1);
    expect_everywhere(3, "key:1", "nil");
    expect_everywhere(3, "key:2", "nil");
    expect_everywhere(3, "counter", "$1");
    redisContext *c2 = client(2);
    got = run(c2, "INCR counter");
    assert_string_equal(got, ":2");
    free(got);
    redisReply *bf = redisCommand(c2, "BITFIELD bf SET u8 0 65 INCRBY u8 8 66"); /* RMW */
    assert_true(bf && bf->type == REDIS_REPLY_ARRAY && bf->elements == 2);
    assert_int_equal(bf->element[0]->integer, 0);
    assert_int_equal(bf->element[1]->integer, 66);
    freeReplyObject(bf);
    expect_everywhere(3, "bf", "$AB");
    got = run(c2, "SET {bf}x 0");
    free(got);
    got = run(c2, "BITOP OR {bf}y {bf}x {bf}none"); /* reads every source, writes one key */
    assert_string_equal(got, ":1");
    free(got);
    for (int i = 0; i < 3; i++) { /* written on every replica, not only its coordinator */
        struct local_value y = {i, "{bf}y", "$0"};
        assert_true(cluster_wait(local_read_is, &y, 5000));
    }
    got = run(c2, "MGET m1 key:1 {t}x m2");
    assert_string_equal(got, "[a,nil,c,b]");
    free(got);
    got = run(c2, "EXISTS m1 m2 key:1 key:3");
    assert_string_equal(got, ":3");
    free(got);
    got = run(c2, "FLUSHALL"); /* every member's keys go */
    assert_string_equal(got, "+OK");
    free(got);
    redisFree(c2);
    expect_everywhere(3, "m1", "nil");
    expect_everywhere(3, "key:3", "nil");
    expect_everywhere(3, "ringkey", "nil");
    big_mset_mget_del();
}

/* The time a write takes to be refused, and the refusal. */
static char *timed(redisContext *c, int64_t *ms, const char *fmt, const char *key, const char *v)
{
    int64_t t0 = cluster_now_ms();
    char *got = run(c, fmt, key, "", (size_t)0, v);
    *ms = cluster_now_ms() - t0;
    return got;
}

static void test_coord_w2_with_one_frozen_w3_unavailable(void **state)
{
    (void)state;
    const char *extra[] = {"--threads", "2", NULL}; /* coordinators on other shards too */
    start_cluster(3, extra);
    struct write_try warm = {0, "warm", "up"};
    assert_true(cluster_wait(set_acknowledged, &warm, 10000));
    redisContext *c0 = client(0);
    char *got = NULL;
    int64_t settle = cluster_now_ms() + 10000;
    do { /* all three up: W = 3 can be met (once every shard has the 3-node ring) */
        free(got);
        got = run(c0, "RING.PUT w3 %b v W 3", "", (size_t)0);
    } while (strcmp(got, "+OK") != 0 && cluster_now_ms() < settle);
    assert_string_equal(got, "+OK");
    free(got);
    got = run(c0, "RING.PUT w3 %b v W 4", "", (size_t)0);
    assert_non_null(strstr(got, "from 1 to 3"));
    free(got);

    cluster_signal(2, SIGSTOP);
    struct write_try w2 = {0, "frozen:w2", "kept"};
    assert_true(set_acknowledged(&w2)); /* W = 2: node 0 and node 1 */
    int64_t ms;
    got = timed(c0, &ms, "RING.PUT %s %b %s W 3", "frozen:w3", "v");
    fprintf(stderr, "RING.PUT W 3 with a node frozen: %s after %lld ms\n", got, (long long)ms);
    assert_true(strncmp(got, "-UNAVAILABLE 2 of 3 replicas answered", 37) == 0);
    assert_true(ms <= TIMEOUT_MS + 1500);
    free(got);
    got = run(c0, "CONSISTENCY W 3");
    assert_string_equal(got, "+OK");
    free(got);
    int64_t t0 = cluster_now_ms();
    got = run(c0, "SET frozen:consistency v");
    ms = cluster_now_ms() - t0;
    assert_true(strncmp(got, "-UNAVAILABLE ", 13) == 0);
    assert_true(ms <= TIMEOUT_MS + 1500);
    free(got);
    got = run(c0, "INFO stats");
    assert_true(strstr(got, "ringkv_unavailable:") != NULL);
    free(got);

    cluster_signal(2, SIGCONT);
    int64_t deadline = cluster_now_ms() + 15000;
    bool acked = false;
    while (!acked && cluster_now_ms() < deadline) { /* W = 3 (CONSISTENCY) once node 2 answers */
        got = run(c0, "SET after thaw");
        acked = strcmp(got, "+OK") == 0;
        free(got);
    }
    assert_true(acked);
    redisFree(c0);
    expect_everywhere(3, "frozen:w2", "$kept");
    expect_everywhere(3, "after", "$thaw");
}

struct status_is {
    int viewer;
    int node;
    const char *status;
};

static bool node_status_is(void *arg)
{
    const struct status_is *x = arg;
    const char *st = cluster_status_of(x->viewer, cluster_node(x->node)->id);
    return st && strcmp(st, x->status) == 0;
}

/* Waits (20 s at most) until node `viewer` lists node `node` as status. */
static void wait_seen_as(int viewer, int node, const char *status)
{
    struct status_is x = {viewer, node, status};
    assert_true(cluster_wait(node_status_is, &x, 20000));
}

static long long info_stat(int i, const char *name);

/* On a cluster just started: node 2 is frozen until nodes 0 and 1 see it
 * down, misses SET key value (W = 2 on nodes 0 and 1; node 2 not asked),
 * and is thawed until both see it up again, its own store still without
 * the key (start the cluster with --aae-interval 0). */
static void node2_misses_a_write(const char *key, const char *value)
{
    struct write_try warm = {0, "warm", "up"};
    assert_true(cluster_wait(set_acknowledged, &warm, 10000));
    cluster_signal(2, SIGSTOP);
    wait_seen_as(0, 2, "down");
    wait_seen_as(1, 2, "down");
    struct write_try missed = {0, key, value};
    assert_true(set_acknowledged(&missed));
    cluster_signal(2, SIGCONT);
    wait_seen_as(0, 2, "up");
    wait_seen_as(1, 2, "up");
    char *got = local_read(2, key);
    assert_string_equal(got, "nil"); /* it never had it */
    free(got);
}


static void test_coord_read_repairs_a_replica_that_missed_a_write(void **state)
{
    (void)state;
    const char *no_aae[] = {"--aae-interval", "0", NULL}; /* only a read may repair node 2 */
    start_cluster(3, no_aae);
    node2_misses_a_write("missed", "by-2");
    long long repairs = info_stat(0, "ringkv_read_repairs");
    redisContext *c0 = client(0);
    char *got = run(c0, "GET missed"); /* R = 2: asks nodes 1 and 2, repairs 2 */
    assert_string_equal(got, "$by-2");
    free(got);
    redisFree(c0);
    struct local_value repaired = {2, "missed", "$by-2"};
    assert_true(cluster_wait(local_read_is, &repaired, 5000));
    assert_true(info_stat(0, "ringkv_read_repairs") > repairs);
}

/* One memcached request to node i's memcache port and its reply up to
 * `until` (a line end, or "END\r\n"). Caller frees. */
static char *mc_ask(int i, int port, const char *req, const char *until)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, cluster_host(i), &a.sin_addr);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    char *buf = calloc(1, 4096);
    assert_non_null(buf);
    size_t n = 0;
    while (n < 4095 && !strstr(buf, until)) {
        ssize_t got = read(fd, buf + n, 4095 - n);
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    return buf;
}

/* A TCP port free on the addresses of nodes 0 .. n - 1 (the kernel's pick
 * for node 0, checked on the others). */
static int free_port(int n)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        int fds[CLUSTER_NODES_MAX], port = 0, bound = 0;
        for (int i = 0; i < n; i++, bound++) {
            fds[i] = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
            inet_pton(AF_INET, cluster_host(i), &a.sin_addr);
            socklen_t len = sizeof a;
            if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof a) != 0 ||
                getsockname(fds[i], (struct sockaddr *)&a, &len) != 0)
                break;
            port = ntohs(a.sin_port);
        }
        for (int i = 0; i < bound + (bound < n); i++)
            if (fds[i] >= 0)
                close(fds[i]);
        if (bound == n)
            return port;
    }
    fail_msg("no port free on every node's address");
    return -1;
}

struct mc_expect {
    int nodes, port;
    const char *req, *want;
};

static bool mc_every_node(void *arg)
{
    const struct mc_expect *x = arg;
    for (int i = 0; i < x->nodes; i++) {
        char *got = mc_ask(i, x->port, x->req, "END\r\n");
        bool ok = strcmp(got, x->want) == 0;
        if (!ok)
            fprintf(stderr, "node %d: %s-> %s\n", i, x->req, got);
        free(got);
        if (!ok)
            return false;
    }
    return true;
}

static void test_coord_memcached_replicates(void **state)
{
    (void)state;
    char port[16];
    int mc_port = free_port(3);
    snprintf(port, sizeof port, "%d", mc_port);
    const char *extra[] = {"--memcache-port", port, NULL};
    start_cluster(3, extra);
    struct write_try warm = {0, "warm", "up"};
    assert_true(cluster_wait(set_acknowledged, &warm, 10000));
    char *got = mc_ask(0, mc_port, "set mk 0 0 3\r\nabc\r\n", "\r\n");
    assert_string_equal(got, "STORED\r\n");
    free(got);
    struct mc_expect x = {3, mc_port, "get mk\r\n", "VALUE mk 0 3\r\nabc\r\nEND\r\n"};
    assert_true(cluster_wait(mc_every_node, &x, 5000));
    got = mc_ask(1, mc_port, "set n 0 0 1\r\n7\r\n", "\r\n");
    assert_string_equal(got, "STORED\r\n");
    free(got);
    got = mc_ask(2, mc_port, "incr n 3\r\n", "\r\n");
    assert_string_equal(got, "10\r\n");
    free(got);
    got = mc_ask(0, mc_port, "incr n 1\r\n", "\r\n");
    assert_string_equal(got, "11\r\n");
    free(got);
    expect_everywhere(3, "n", "$11"); /* and RESP reads what memcached wrote */
}

/* memcached gat is a read-modify-write (README): a replica that missed a
 * write answers it from a quorum read (or sends it to the first live
 * replica, which reads one), never from its own stale copy. */
static void test_coord_memcached_gat_reads_a_quorum(void **state)
{
    (void)state;
    char port[16];
    int mc_port = free_port(3);
    snprintf(port, sizeof port, "%d", mc_port);
    const char *extra[] = {"--memcache-port", port, "--aae-interval", "0", NULL};
    start_cluster(3, extra);
    node2_misses_a_write("gat-missed", "by-2");
    char *got = mc_ask(2, mc_port, "gat 100 gat-missed\r\n", "END\r\n");
    assert_string_equal(got, "VALUE gat-missed 0 4\r\nby-2\r\nEND\r\n");
    free(got);
    got = mc_ask(2, mc_port, "gats 100 gat-missed\r\n", "END\r\n");
    assert_non_null(strstr(got, "\r\nby-2\r\nEND\r\n"));
    free(got);
}

static long long info_stat(int i, const char *name)
{
    char *info = cluster_ask(i, "INFO stats");
    long long v = info ? cluster_info_field(info, name) : -1;
    free(info);
    return v;
}

/* The command (a format and its arguments, as run) on c answers want. */
#define RUN_IS(c, want, ...)                                                                       \
    do {                                                                                           \
        char *got_ = run(c, __VA_ARGS__);                                                          \
        assert_string_equal(got_, want);                                                           \
        free(got_);                                                                                \
    } while (0)

/* LCS reads its two keys as WATCH does: at the node that missed a write
 * of one, the answer is the cluster's (a local read gave ""); with a
 * replica down it answers whatever W says (a read: R replicas). */
static void test_coord_lcs_reads_a_quorum(void **state)
{
    (void)state;
    const char *no_aae[] = {"--aae-interval", "0", NULL};
    start_cluster(3, no_aae);
    struct write_try both = {0, "{l}b", "mynewtext"};
    assert_true(cluster_wait(set_acknowledged, &both, 10000));
    node2_misses_a_write("{l}a", "ohmytext");
    redisContext *c2 = client(2);
    RUN_IS(c2, "$mytext", "LCS {l}a {l}b");
    RUN_IS(c2, ":6", "LCS {l}b {l}a LEN");
    RUN_IS(c2, "-CROSSSLOT Keys in request don't hash to the same slot", "LCS {l}a other");
    redisFree(c2);
    /* a read: R replicas suffice whatever W says (node 2 frozen, W = 3) */
    cluster_signal(2, SIGSTOP);
    wait_seen_as(0, 2, "down");
    redisContext *c0 = client(0);
    RUN_IS(c0, "+OK", "CONSISTENCY W 3");
    RUN_IS(c0, "$mytext", "LCS {l}a {l}b");
    redisFree(c0);
    cluster_signal(2, SIGCONT);
}

/* At node 0, which holds no replica of key fwd:<k>'s slot: a BITFIELD of
 * 20 SETs and a BITOP of 70 sources (keys of that slot) are forwarded
 * whole and answered (the peer parses more than its 64 arguments on the
 * stack). */
static void forward_many_arguments(int k)
{
    enum { SETS = 20, SOURCES = 70 };
    char text[2 + SOURCES][40];
    const char *argv[2 + SOURCES + 2 * SETS + SETS];
    int n = 0;
    argv[n++] = "BITFIELD";
    snprintf(text[0], sizeof text[0], "{fwd:%d}bf", k);
    argv[n++] = text[0];
    for (int i = 0; i < SETS; i++) {
        snprintf(text[1 + i], sizeof text[1 + i], "#%d", i);
        argv[n++] = "SET";
        argv[n++] = "u8";
        argv[n++] = text[1 + i];
        argv[n++] = "65";
    }
    redisContext *c = client(0);
    redisReply *r = redisCommandArgv(c, n, argv, NULL);
    assert_true(r && r->type == REDIS_REPLY_ARRAY && r->elements == SETS);
    freeReplyObject(r);
    RUN_IS(c, "$AAAAAAAAAAAAAAAAAAAA", "GET %s", text[0]);
    RUN_IS(c, "+OK", "SET {fwd:%d}s0 x", k);
    n = 0;
    argv[n++] = "BITOP";
    argv[n++] = "OR";
    for (int i = 0; i <= SOURCES; i++) { /* the destination, then the sources */
        snprintf(text[i], sizeof text[i], i ? "{fwd:%d}s%d" : "{fwd:%d}dst", k, i - 1);
        argv[n++] = text[i];
    }
    r = redisCommandArgv(c, n, argv, NULL);
    assert_true(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    freeReplyObject(r);
    RUN_IS(c, "$x", "GET {fwd:%d}dst", k);
    redisFree(c);
}

static void test_coord_non_replica_forwards(void **state)
{
    (void)state;
    const char *extra[] = {"--replicas", "2", "--threads", "2", NULL};
    start_cluster(4, extra);
    struct write_try warm = {0, "warm", "up"};
    assert_true(cluster_wait(set_acknowledged, &warm, 10000));
    long long forwarded_before = info_stat(0, "ringkv_forwarded");
    redisContext *c0 = client(0);
    char key[32], value[32], want[40];
    for (int k = 0; k < KEYS; k++) {
        snprintf(key, sizeof key, "fwd:%d", k);
        snprintf(value, sizeof value, "v%d", k);
        char *got = run(c0, "SET %s %s", key, value);
        assert_string_equal(got, "+OK");
        free(got);
    }
    assert_true(info_stat(0, "ringkv_forwarded") > forwarded_before);
    for (int k = 0; k < KEYS; k++) {
        snprintf(key, sizeof key, "fwd:%d", k);
        snprintf(want, sizeof want, "$v%d", k);
        expect_everywhere(4, key, want);
    }

    /* A cluster-aware client is sent to a replica instead. */
    char *got = run(c0, "READONLY");
    assert_string_equal(got, "+OK");
    free(got);
    int moved = 0, moved_key = -1;
    for (int k = 0; k < KEYS; k++) {
        snprintf(key, sizeof key, "fwd:%d", k);
        got = run(c0, "GET %s", key);
        if (strncmp(got, "-MOVED ", 7) == 0) {
            unsigned slot;
            char addr[64];
            assert_int_equal(sscanf(got + 7, "%u %63s", &slot, addr), 2);
            char *colon = strrchr(addr, ':');
            assert_non_null(colon);
            *colon = '\0';
            int there = -1;
            for (int i = 1; i < 4; i++)
                if (strcmp(cluster_host(i), addr) == 0)
                    there = i;
            assert_true(there > 0);
            redisContext *ct = client(there);
            char *again = run(ct, "GET %s", key);
            snprintf(want, sizeof want, "$v%d", k);
            assert_string_equal(again, want);
            free(again);
            redisFree(ct);
            moved_key = k;
            moved++;
        }
        free(got);
    }
    assert_true(moved > 0);
    redisFree(c0);
    forward_many_arguments(moved_key);
}


/* Reads with a state hash: replicas holding the coordinator's state answer
 * "same" (INFO ringkv_replica_gets_same), and a replica that answered
 * "same" while another held a newer write is repaired to it. Nodes 0 and 1
 * hold X; node 2 alone has Y (written with W=1 while 0 and 1 were frozen);
 * a GET at node 0 with R=3 sends X's hash: 1 answers "same", 2 answers Y,
 * node 0 merges Y, and read repair must send Y to node 1 too. */
static void test_coord_same_answers_and_repair(void **state)
{
    (void)state;
    start_cluster(3, NULL);
    struct write_try x = {0, "k", "X"};
    assert_true(cluster_wait(set_acknowledged, &x, 10000));
    expect_everywhere(3, "k", "$X");
    struct local_value x1 = {1, "k", "$X"}, x2 = {2, "k", "$X"};
    assert_true(cluster_wait(local_read_is, &x1, 5000));
    assert_true(cluster_wait(local_read_is, &x2, 5000));
    long long same = info_stat(1, "ringkv_replica_gets_same") +
                     info_stat(2, "ringkv_replica_gets_same");
    redisContext *c0 = client(0);
    RUN_IS(c0, "$X", "GET k");
    redisFree(c0);
    assert_true(info_stat(1, "ringkv_replica_gets_same") +
                    info_stat(2, "ringkv_replica_gets_same") >
                same);
    cluster_signal(0, SIGSTOP);
    cluster_signal(1, SIGSTOP);
    wait_seen_as(2, 0, "down");
    wait_seen_as(2, 1, "down");
    redisContext *c2 = client(2);
    RUN_IS(c2, "+OK", "CONSISTENCY W 1");
    RUN_IS(c2, "+OK", "SET k Y");
    redisFree(c2);
    cluster_signal(0, SIGCONT);
    cluster_signal(1, SIGCONT);
    wait_seen_as(2, 0, "up");
    wait_seen_as(2, 1, "up");
    wait_seen_as(0, 2, "up");
    wait_seen_as(0, 1, "up");
    char *got = local_read(1, "k");
    assert_string_equal(got, "$X"); /* node 1 never had Y */
    free(got);
    c0 = client(0);
    RUN_IS(c0, "+OK", "CONSISTENCY R 3");
    RUN_IS(c0, "$Y", "GET k");
    redisFree(c0);
    struct local_value y1 = {1, "k", "$Y"};
    assert_true(cluster_wait(local_read_is, &y1, 5000));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_coord_set_at_one_get_at_every, cluster_forget_all),
        cmocka_unit_test_teardown(test_coord_cold_links_take_a_burst, cluster_forget_all),
        cmocka_unit_test_teardown(test_coord_w2_with_one_frozen_w3_unavailable, cluster_forget_all),
        cmocka_unit_test_teardown(test_coord_non_replica_forwards, cluster_forget_all),
        cmocka_unit_test_teardown(test_coord_read_repairs_a_replica_that_missed_a_write,
                                  cluster_forget_all),
        cmocka_unit_test_teardown(test_coord_memcached_replicates, cluster_forget_all),
        cmocka_unit_test_teardown(test_coord_memcached_gat_reads_a_quorum, cluster_forget_all),
        cmocka_unit_test_teardown(test_coord_lcs_reads_a_quorum, cluster_forget_all),
        cmocka_unit_test_teardown(test_coord_same_answers_and_repair, cluster_forget_all),
    };
    return cluster_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
