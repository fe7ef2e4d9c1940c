/* test_versions: replicated keys and their versions end to end, three real
 * nodes on 127.0.0.2 .. 4 (cluster_harness.h) at the defaults N=3, R=2, W=2,
 * request-timeout 1000 ms.
 * - A value written at one node is read at every node; plain SET, GET, DEL,
 *   INCR and APPEND through different nodes agree; an expiry set at one
 *   node (SET EX, RING.PUT EX, EXPIRE) is every node's TTL, and a key that
 *   expires is gone at every node.
 * - Two coordinators writing with the same context give two siblings, seen
 *   at a third node (and GET picks the same one of them everywhere); a
 *   RING.PUT with the merged context resolves them to one, at every node;
 *   so does a plain SET at a node that holds both.
 * - A replica that missed writes (frozen with SIGSTOP until the others count
 *   it down, then SIGCONT) is repaired by reads at the other nodes: an
 *   updated key by RING.GET R 3, a key made meanwhile by a plain GET at the
 *   default R. A node's own state is read with RING.GET R 1 while the other
 *   two are frozen, and they are thawed only once that request is past its
 *   deadline, so that their late answers cannot repair it.
 * - With one of three nodes frozen, W=2 succeeds and W=3 (and R=3) get
 *   -UNAVAILABLE within request-timeout plus a margin, both while the frozen
 *   node still counts as up (its replies never come) and once it is down;
 *   W=3 succeeds again after SIGCONT.
 * - KV-679: a node (storage = log) stopped, its data wiped but its node id
 *   kept, and started again writes as a new actor: its RING.PUT with an
 *   empty context, its RING.PUT with a context from before the wipe and its
 *   plain SETs are all kept at the other nodes, not dropped as already seen.
 * - A reaped delete stays deleted (tombstone-grace 1 s, storage = log): once
 *   every node reaped the tombstone, and after a restart that replays the
 *   log, the key is absent everywhere; a delete missed by a frozen replica
 *   does not come back from that replica after the grace: the others keep
 *   its tombstone past the grace while it is frozen (INFO
 *   ringkv_tombstones_reaped 0, ringkv_reaps_deferred counting), and every
 *   node reaps it once the replica is back and holds it; a replica that is
 *   up but still pulling the partition (wiped, handoff-concurrency 0) and
 *   lacks the key holds the reap off too, until it has pulled it.
 * Every wait is on a condition with a deadline, or past a deadline the node
 * itself keeps (request-timeout, tombstone-grace). */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "cluster_harness.h"

#define NODES 3
#define TIMEOUT_MS 1000 /* request-timeout of every node here */
#define MARGIN_MS 1500  /* what -UNAVAILABLE may take past request-timeout */
#define REPLY_MS 5000   /* how long a client waits for any reply */
#define DOWN_MS 10000   /* failure detection: the others count a node down */
#define UP_MS 10000
#define REPAIR_MS 10000 /* a read's repair reaches the stale replica */
#define GRACE_S 1       /* tombstone-grace where deletes are reaped */
#define REAP_MS 20000

#define TIMEOUT_FLAGS "--request-timeout", "1000"

static redisContext *clients[NODES];

struct ctx {
    char bytes[2048];
    size_t len;
};

static const struct ctx empty_ctx;

static void connect_all(void)
{
    for (int i = 0; i < NODES; i++) {
        redisFree(clients[i]);
        clients[i] = cluster_connect(i, REPLY_MS);
        if (!clients[i])
            fail_msg("no client connection to node %d", i);
    }
}

/* Three nodes formed with these flags (NULL-terminated), a client of each. */
static void start_cluster(const char *const *flags)
{
    if (cluster_start_formed(NODES, flags) != 0)
        fail_msg("three nodes did not start and form a cluster");
    connect_all();
}

static int teardown(void **state)
{
    for (int i = 0; i < NODES; i++) {
        redisFree(clients[i]);
        clients[i] = NULL;
    }
    return cluster_forget_all(state);
}

/* The reply to a command at node i; fails the test (at the caller's line)
 * when none comes. The caller frees it. */
static redisReply *vcmd(int line, int i, const char *fmt, va_list ap)
{
    redisReply *r = redisvCommand(clients[i], fmt, ap);
    if (!r)
        fail_msg("line %d: node %d: no reply to '%s': %s", line, i, fmt, clients[i]->errstr);
    return r;
}

static redisReply *cmd_at(int line, int i, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = vcmd(line, i, fmt, ap);
    va_end(ap);
    return r;
}
#define cmd(i, ...) cmd_at(__LINE__, (i), __VA_ARGS__)

/* A reply as text ("+OK", "-ERR ...", ":5", "$value", "nil", "*2"), in a
 * static buffer; frees r. */
static const char *reply_text(redisReply *r)
{
    static char text[512];
    switch (r->type) {
    case REDIS_REPLY_STATUS:
        snprintf(text, sizeof text, "+%s", r->str);
        break;
    case REDIS_REPLY_ERROR:
        snprintf(text, sizeof text, "-%s", r->str);
        break;
    case REDIS_REPLY_INTEGER:
        snprintf(text, sizeof text, ":%lld", r->integer);
        break;
    case REDIS_REPLY_STRING:
        snprintf(text, sizeof text, "$%.*s", (int)r->len, r->str);
        break;
    case REDIS_REPLY_NIL:
        snprintf(text, sizeof text, "nil");
        break;
    default:
        snprintf(text, sizeof text, "(a reply of type %d, %zu elements)", r->type, r->elements);
    }
    freeReplyObject(r);
    return text;
}

/* The command at node i answers exactly want (reply_text's form). */
static void vexpect(int line, int i, const char *want, const char *fmt, va_list ap)
{
    const char *got = reply_text(vcmd(line, i, fmt, ap));
    if (strcmp(got, want) != 0)
        fail_msg("line %d: node %d: '%s' answered %s, wanted %s", line, i, fmt, got, want);
}

static void expect_ok_at(int line, int i, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vexpect(line, i, "+OK", fmt, ap);
    va_end(ap);
}
#define expect_ok(i, ...) expect_ok_at(__LINE__, (i), __VA_ARGS__)

/* want NULL: a nil reply. */
static void expect_bulk_at(int line, int i, const char *want, const char *fmt, ...)
{
    char text[256];
    snprintf(text, sizeof text, want ? "$%s" : "nil", want);
    va_list ap;
    va_start(ap, fmt);
    vexpect(line, i, text, fmt, ap);
    va_end(ap);
}
#define expect_bulk(i, want, ...) expect_bulk_at(__LINE__, (i), (want), __VA_ARGS__)

static void expect_int_at(int line, int i, long long want, const char *fmt, ...)
{
    char text[32];
    snprintf(text, sizeof text, ":%lld", want);
    va_list ap;
    va_start(ap, fmt);
    vexpect(line, i, text, fmt, ap);
    va_end(ap);
}
#define expect_int(i, want, ...) expect_int_at(__LINE__, (i), (want), __VA_ARGS__)

/* An error reply starting with prefix ("UNAVAILABLE"); returns how long it took (ms). */
static int64_t expect_error_at(int line, int i, const char *prefix, const char *fmt, ...)
{
    int64_t t0 = cluster_now_ms();
    va_list ap;
    va_start(ap, fmt);
    const char *got = reply_text(vcmd(line, i, fmt, ap));
    va_end(ap);
    int64_t took = cluster_now_ms() - t0;
    if (got[0] != '-' || strncmp(got + 1, prefix, strlen(prefix)) != 0)
        fail_msg("line %d: node %d: '%s' answered %s after %lld ms, wanted -%s...", line, i, fmt,
                 got, (long long)took, prefix);
    printf("versions: node %d: '%s': %s after %lld ms\n", i, fmt, got, (long long)took);
    return took;
}
#define expect_error(i, prefix, ...) expect_error_at(__LINE__, (i), (prefix), __VA_ARGS__)

/* cluster_versions_text(v) in a buffer of its own, v freed: for a failure's
 * message (fail_msg does not return). */
static const char *versions_text_free(struct cluster_versions *v)
{
    static char text[1100];
    snprintf(text, sizeof text, "%s", cluster_versions_text(v));
    cluster_versions_free(v);
    return text;
}

/* Whether v's siblings are exactly want[0 .. n) (values unique). */
static bool same_siblings(const struct cluster_versions *v, const char *const *want, size_t n)
{
    if (v->nvalues != n)
        return false;
    for (size_t k = 0; k < n; k++)
        if (!cluster_versions_has(v, want[k]))
            return false;
    return true;
}

static const char *want_text(const char *const *want, size_t n)
{
    static char text[512];
    size_t len = (size_t)snprintf(text, sizeof text, "[");
    for (size_t k = 0; k < n && len < sizeof text - 64; k++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%s%s", k ? ", " : "", want[k]);
    snprintf(text + len, sizeof text - len, "]");
    return text;
}

static struct ctx ctx_of(int line, const struct cluster_versions *v)
{
    struct ctx c = {.len = v->ctx_len};
    if (v->ctx_len > sizeof c.bytes)
        fail_msg("line %d: a context of %zu bytes", line, v->ctx_len);
    memcpy(c.bytes, v->ctx, v->ctx_len);
    return c;
}

/* RING.GET key [R r] at node i answers exactly the siblings want[0 .. n);
 * returns its context. */
static struct ctx versions_at(int line, int i, const char *key, int r, const char *const *want,
                              size_t n)
{
    struct cluster_versions v;
    int rc = cluster_ring_get(clients[i], key, r, &v);
    if (rc != 0 || !same_siblings(&v, want, n))
        fail_msg("line %d: node %d: RING.GET %s R %d answered %s, wanted %s", line, i, key, r,
                 rc == -EIO ? clients[i]->errstr : versions_text_free(&v), want_text(want, n));
    struct ctx c = ctx_of(line, &v);
    cluster_versions_free(&v);
    return c;
}
#define WANT(...)                                                                                  \
    (const char *const[]){__VA_ARGS__}, sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *)
#define versions(i, key, r, ...) versions_at(__LINE__, (i), (key), (r), WANT(__VA_ARGS__))
#define no_versions(i, key, r) versions_at(__LINE__, (i), (key), (r), NULL, 0)

#define ring_put(i, key, ctx, value, w)                                                            \
    expect_ok((i), "RING.PUT %s %b %s W %d", (key), (ctx).bytes, (ctx).len, (value), (w))

/* ---- the nodes' views ---- */

struct seen {
    int node;         /* whose status the others report */
    const char *want; /* "up" or "down" */
};

/* Every other running node reports node's status as want, and, for "down",
 * its shard counts it down too (CLUSTER INFO is the shard's snapshot: the
 * coordinator's view). */
static bool others_see(void *arg)
{
    const struct seen *s = arg;
    for (int i = 0; i < NODES; i++) {
        if (i == s->node || !cluster_node(i)->pid)
            continue;
        const char *st = cluster_status_of(i, cluster_node(s->node)->id);
        if (!st || strcmp(st, s->want) != 0)
            return false;
        char *info = cluster_ask(i, "CLUSTER INFO");
        long long down = cluster_info_field(info, "ringkv_nodes_down");
        free(info);
        if ((strcmp(s->want, "down") == 0) != (down >= 1))
            return false;
    }
    return true;
}

static void wait_seen(int node, const char *want, int limit_ms)
{
    struct seen s = {node, want};
    int64_t t0 = cluster_now_ms();
    if (!cluster_wait(others_see, &s, limit_ms))
        fail_msg("node %d not seen %s by the others within %d ms", node, want, limit_ms);
    printf("versions: node %d seen %s by the others after %lld ms\n", node, want,
           (long long)(cluster_now_ms() - t0));
}

/* Every node up at every node (after a thaw or a restart). */
static void wait_all_up(void)
{
    for (int i = 0; i < NODES; i++)
        wait_seen(i, "up", UP_MS);
}

struct local_read {
    int i;
    const char *key;
    struct cluster_versions *v;
    int rc;
};

static void local_read(void *arg)
{
    struct local_read *l = arg;
    l->rc = cluster_ring_get(clients[l->i], l->key, 1, l->v);
}

/* Node i's own versions of key (cluster_alone: RING.GET key R 1 with the
 * other two frozen past that request's deadline). */
static int local_versions(int i, const char *key, struct cluster_versions *v)
{
    struct local_read l = {i, key, v, 0};
    cluster_alone(i, TIMEOUT_MS + 300, local_read, &l);
    if (l.rc == -EIO)
        fail_msg("node %d: no reply to RING.GET %s R 1 with the others frozen: %s", i, key,
                 clients[i]->errstr);
    return l.rc;
}

/* The keys node i holds itself (INFO keyspace is the node's own store). */
static long long local_keys(int i)
{
    char *info = cluster_ask(i, "INFO keyspace");
    const char *db = info ? strstr(info, "db0:keys=") : NULL;
    long long n = db ? strtoll(db + strlen("db0:keys="), NULL, 10) : info ? 0 : -1;
    free(info);
    return n;
}

/* ---- the cases ---- */

/* Node i answers TTL key in 1 .. max_s. */
static void expect_ttl_at(int line, int i, const char *key, long long max_s)
{
    const char *got = reply_text(cmd_at(line, i, "TTL %s", key));
    long long ttl = got[0] == ':' ? strtoll(got + 1, NULL, 10) : -1;
    if (ttl < 1 || ttl > max_s)
        fail_msg("line %d: node %d: TTL %s answered %s, wanted 1 .. %lld: the expiry did not "
                 "travel with the value",
                 line, i, key, got, max_s);
}

static bool short_gone_everywhere(void *arg)
{
    (void)arg;
    for (int i = 0; i < NODES; i++) {
        redisReply *r = redisCommand(clients[i], "GET short");
        bool gone = r && r->type == REDIS_REPLY_NIL;
        freeReplyObject(r);
        if (!gone)
            return false;
    }
    return true;
}

/* Expiries set at one node hold at every node, and a key that expires is
 * gone at every node. */
static void expect_expiry_replicated(void)
{
    expect_ok(0, "SET timed v EX 100");
    expect_ok(1, "RING.PUT ringtimed %b v W 3 EX 200", "", (size_t)0);
    expect_int(2, 1, "EXPIRE s 300");
    for (int i = 0; i < NODES; i++) {
        expect_ttl_at(__LINE__, i, "timed", 100);
        expect_ttl_at(__LINE__, i, "ringtimed", 200);
        expect_ttl_at(__LINE__, i, "s", 300);
    }
    expect_ok(1, "SET short v PX 300");
    if (!cluster_wait(short_gone_everywhere, NULL, 5000))
        fail_msg("a key set with PX 300 at node 1 is still read somewhere 5 s later");
}

static void test_versions_written_anywhere_read_everywhere(void **state)
{
    (void)state;
    start_cluster((const char *const[]){TIMEOUT_FLAGS, NULL});
    expect_ok(0, "SET greeting hello");
    for (int i = 0; i < NODES; i++)
        expect_bulk(i, "hello", "GET greeting");
    expect_ok(1, "RING.PUT pair %b left", "", (size_t)0);
    for (int i = 0; i < NODES; i++)
        versions(i, "pair", 0, "left");

    expect_ok(0, "SET n 10");
    expect_int(1, 11, "INCR n");
    expect_int(2, 16, "INCRBY n 5");
    expect_int(0, 15, "DECR n");
    for (int i = 0; i < NODES; i++)
        expect_bulk(i, "15", "GET n");

    expect_ok(2, "SET s a");
    expect_int(0, 2, "APPEND s b");
    expect_int(1, 3, "APPEND s c");
    for (int i = 0; i < NODES; i++)
        expect_bulk(i, "abc", "GET s");

    expect_int(1, 1, "DEL s");
    for (int i = 0; i < NODES; i++) {
        expect_bulk(i, NULL, "GET s");
        expect_int(i, 0, "EXISTS s");
    }
    expect_ok(2, "SET s again");
    for (int i = 0; i < NODES; i++)
        expect_bulk(i, "again", "GET s");
    expect_expiry_replicated();
}

static void test_versions_concurrent_puts_make_siblings_merge_resolves(void **state)
{
    (void)state;
    start_cluster((const char *const[]){TIMEOUT_FLAGS, NULL});
    ring_put(0, "cart", empty_ctx, "base", 3);
    struct ctx base = versions(0, "cart", 3, "base");
    /* two coordinators, the same context: concurrent */
    ring_put(0, "cart", base, "from-a", 3);
    ring_put(1, "cart", base, "from-b", 3);
    struct ctx both = versions(2, "cart", 0, "from-a", "from-b");
    for (int i = 0; i < NODES; i++)
        versions(i, "cart", 3, "from-a", "from-b");
    /* GET picks one of them, the same one at every node */
    char first[64];
    snprintf(first, sizeof first, "%s", reply_text(cmd(0, "GET cart")));
    if (strcmp(first, "$from-a") != 0 && strcmp(first, "$from-b") != 0)
        fail_msg("GET cart with siblings answered %s, not one of them", first);
    for (int i = 1; i < NODES; i++)
        expect_bulk(i, first + 1, "GET cart");

    ring_put(2, "cart", both, "merged", 3);
    for (int i = 0; i < NODES; i++) {
        versions(i, "cart", 3, "merged");
        versions(i, "cart", 1, "merged");
        expect_bulk(i, "merged", "GET cart");
    }

    /* siblings again; a plain SET at a node that holds both supersedes them */
    struct ctx merged = versions(0, "cart", 3, "merged");
    ring_put(0, "cart", merged, "again-a", 3);
    ring_put(1, "cart", merged, "again-b", 3);
    versions(2, "cart", 3, "again-a", "again-b");
    expect_ok(2, "SET cart plain");
    for (int i = 0; i < NODES; i++)
        versions(i, "cart", 3, "plain");
}

/* Node 2 misses an update of "old" and the making of "made": frozen until
 * nodes 0 and 1 count it down, so that their coordinators do not send it
 * the writes at all. Returns the keys node 2 held before. */
/* What each node counted that could have carried a write to node 2 (for a
 * failure's message: which path did). */
static void print_paths(void)
{
    static const char *const stats[] = {"ringkv_coordinated_writes", "ringkv_replica_syncs",
                                        "ringkv_read_repairs",       "ringkv_hinted_writes",
                                        "ringkv_forwarded",          "ringkv_aae_keys_repaired",
                                        "ringkv_hints_delivered"};
    for (int i = 0; i < NODES; i++) {
        printf("versions: node %d:", i);
        for (size_t k = 0; k < sizeof stats / sizeof stats[0]; k++)
            printf(" %s %lld", stats[k] + 7, cluster_info_stat(i, "stats", stats[k]));
        printf("\n");
    }
}

static long long miss_writes_on_node_2(void)
{
    ring_put(0, "old", empty_ctx, "v1", 3);
    long long keys = local_keys(2);
    cluster_signal(2, SIGSTOP);
    wait_seen(2, "down", DOWN_MS);
    struct ctx c = versions(0, "old", 0, "v1");
    ring_put(0, "old", c, "v2", 2);
    expect_ok(1, "SET made fresh");
    cluster_signal(2, SIGCONT);
    wait_all_up();
    return keys;
}

static bool local_keys_are(void *arg)
{
    return local_keys(2) == *(long long *)arg;
}

static bool local_old_is_v2(void *arg)
{
    (void)arg;
    struct cluster_versions v;
    bool ok = local_versions(2, "old", &v) == 0 && same_siblings(&v, WANT("v2"));
    cluster_versions_free(&v);
    return ok;
}

static void test_versions_read_repairs_missed_writes(void **state)
{
    (void)state;
    /* anti-entropy off: only reads may repair node 2 here */
    start_cluster((const char *const[]){TIMEOUT_FLAGS, "--aae-interval", "0", NULL});
    long long keys_before = miss_writes_on_node_2();
    /* node 2 missed both: no "made" in its store, "old" still v1 there */
    if (local_keys(2) != keys_before)
        fail_msg("node 2 holds %lld keys, not %lld: it got \"made\" without a read (hints? "
                 "then this test must turn them off)",
                 local_keys(2), keys_before);
    struct cluster_versions v;
    if (local_versions(2, "old", &v) != 0 || !same_siblings(&v, WANT("v1"))) {
        print_paths();
        fail_msg("node 2's own \"old\" is %s, not the stale [v1]", versions_text_free(&v));
    }
    cluster_versions_free(&v);

    /* a plain GET at node 1, at the default R, repairs "made" on node 2 */
    expect_bulk(1, "fresh", "GET made");
    long long want = keys_before + 1;
    if (!cluster_wait(local_keys_are, &want, REPAIR_MS))
        fail_msg("a GET of \"made\" at node 1 did not repair node 2 within %d ms (it holds "
                 "%lld keys, not %lld)",
                 REPAIR_MS, local_keys(2), want);
    /* RING.GET R 3 at node 0 repairs "old" on node 2 */
    versions(0, "old", 3, "v2");
    if (!cluster_wait(local_old_is_v2, NULL, REPAIR_MS)) {
        local_versions(2, "old", &v);
        fail_msg("RING.GET old R 3 at node 0 did not repair node 2 within %d ms: it holds %s",
                 REPAIR_MS, versions_text_free(&v));
    }
    if (local_versions(2, "made", &v) != 0 || !same_siblings(&v, WANT("fresh")))
        fail_msg("node 2's own \"made\" is %s, not [fresh]", versions_text_free(&v));
    cluster_versions_free(&v);
}

/* With node 2 frozen: W=2 succeeds, W=3 and R=3 get -UNAVAILABLE in time. */
static void expect_quorums_without_node_2(const char *when)
{
    printf("versions: node 2 frozen, %s\n", when);
    expect_ok(0, "RING.PUT q %b w2 W 2", "", (size_t)0);
    int64_t took = expect_error(0, "UNAVAILABLE", "RING.PUT q %b w3 W 3", "", (size_t)0);
    if (took > TIMEOUT_MS + MARGIN_MS)
        fail_msg("%s: W=3 took %lld ms to fail, past request-timeout %d + %d ms", when,
                 (long long)took, TIMEOUT_MS, MARGIN_MS);
    took = expect_error(1, "UNAVAILABLE", "RING.GET q R 3");
    if (took > TIMEOUT_MS + MARGIN_MS)
        fail_msg("%s: R=3 took %lld ms to fail", when, (long long)took);
    expect_ok(1, "SET plain w2");
}

static bool w3_succeeds(void *arg)
{
    (void)arg;
    redisReply *r = redisCommand(clients[0], "RING.PUT q %b back W 3", "", (size_t)0);
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    return ok;
}

static void test_versions_frozen_node_w2_succeeds_w3_unavailable(void **state)
{
    (void)state;
    start_cluster((const char *const[]){TIMEOUT_FLAGS, NULL});
    expect_ok(0, "RING.PUT q %b first W 3", "", (size_t)0);
    cluster_signal(2, SIGSTOP);
    expect_quorums_without_node_2("still counted up (its replies never come)");
    wait_seen(2, "down", DOWN_MS);
    expect_quorums_without_node_2("counted down");
    cluster_signal(2, SIGCONT);
    wait_all_up();
    if (!cluster_wait(w3_succeeds, NULL, UP_MS))
        fail_msg("W=3 still fails %d ms after node 2 is up again", UP_MS);
}

/* A write is acknowledged once durable on W nodes; these cases measure no
 * deadline, so a slow fsync on a loaded machine must not turn W=3 into
 * -UNAVAILABLE: request-timeout 5 s. */
#define LOG_FLAGS "--request-timeout", "5000", "--storage", "log", "--appendfsync", "always"

/* Nodes 1 and 2 each hold `value` among key's siblings, and RING.GET R 3
 * there too. */
static void expect_kept_elsewhere(const char *key, const char *value)
{
    for (int i = 1; i < NODES; i++)
        for (int r = 1; r <= 3; r += 2) {
            struct cluster_versions v;
            int rc = cluster_ring_get(clients[i], key, r, &v);
            if (rc != 0 || !cluster_versions_has(&v, value))
                fail_msg("KV-679: node %d: RING.GET %s R %d answered %s: node 0's write %s "
                         "after its wipe was dropped",
                         i, key, r, versions_text_free(&v), value);
            cluster_versions_free(&v);
        }
}

/* RING.GET key R 3 answers at every node: their links to a restarted node
 * are back (one that carried traffic while it was down, a partition
 * transfer's, waits out its reconnect backoff first). */
static bool all_links_back(void *arg)
{
    for (int i = 0; i < NODES; i++) {
        struct cluster_versions v;
        int rc = cluster_ring_get(clients[i], arg, 3, &v);
        cluster_versions_free(&v);
        if (rc != 0)
            return false;
    }
    return true;
}

static void test_versions_kv679_wiped_node_keeps_writing(void **state)
{
    (void)state;
    const char *const flags[] = {LOG_FLAGS, NULL};
    start_cluster(flags);
    ring_put(0, "k", empty_ctx, "old", 3);
    struct ctx old = versions(1, "k", 3, "old");
    expect_ok(0, "SET p one");
    for (int i = 0; i < NODES; i++)
        expect_bulk(i, "one", "GET p");

    char id[41];
    snprintf(id, sizeof id, "%s", cluster_node(0)->id);
    assert_int_equal(cluster_wipe_data(0), 0);
    assert_int_equal(cluster_start(0, flags), 0);
    assert_string_equal(cluster_node(0)->id, id); /* the same node, its data gone */
    int n = NODES;
    if (!cluster_wait(cluster_formed, &n, 15000))
        fail_msg("node 0 did not rejoin after its wipe");
    wait_all_up();
    connect_all();
    if (!cluster_wait(all_links_back, "p", UP_MS))
        fail_msg("RING.GET R 3 still fails %d ms after node 0 is up again", UP_MS);

    /* an empty context adds a sibling: node 0's first dot after the wipe */
    ring_put(0, "k", empty_ctx, "new", 3);
    expect_kept_elsewhere("k", "old");
    expect_kept_elsewhere("k", "new");
    /* a context from before the wipe covers "old", not the new write */
    ring_put(0, "k", old, "stale-view", 3);
    expect_kept_elsewhere("k", "new");
    expect_kept_elsewhere("k", "stale-view");
    /* plain writes through node 0 after its wipe are seen at the others */
    expect_ok(0, "SET p two");
    expect_kept_elsewhere("p", "two");
    for (int i = 0; i < NODES; i++)
        expect_bulk(i, "two", "GET p");
    expect_ok(0, "SET k plain");
    for (int i = 0; i < NODES; i++)
        expect_bulk(i, "plain", "GET k");
    expect_kept_elsewhere("k", "plain");
}

#define GRACE_FLAGS LOG_FLAGS, "--tombstone-grace", "1"

/* RING.GET R 3 at node 0 says no node holds anything of "gone" any more:
 * the empty context of a key never written. Asked every half second: a
 * read that finds the tombstone on some nodes and not on others repairs it
 * back onto them (harmless: a tombstone, reaped again on the next pass), so
 * asking all the time would keep it alive. */
static bool reaped_everywhere(void *arg)
{
    (void)arg;
    usleep(450 * 1000);
    struct cluster_versions v;
    bool ok = cluster_ring_get(clients[0], "gone", 3, &v) == 0 && v.ctx_len == 0 && v.nvalues == 0;
    cluster_versions_free(&v);
    return ok;
}

static void expect_absent_everywhere(const char *key)
{
    for (int i = 0; i < NODES; i++) {
        expect_bulk(i, NULL, "GET %s", key);
        expect_int(i, 0, "EXISTS %s", key);
        no_versions(i, key, 3);
        no_versions(i, key, 1);
    }
}

/* INFO's counter `name` (ringkv_tombstones_reaped, ...) at node i; fails
 * the test when node i gives no INFO within REPLY_MS, twice (a missing
 * answer must not read as a counter of -1). */
static long long reap_counter(int i, const char *name)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        char *info = cluster_ask(i, "INFO stats");
        long long v = info ? cluster_info_field(info, name) : -1;
        free(info);
        if (v >= 0)
            return v;
    }
    fail_msg("node %d: INFO stats gave no %s", i, name);
    return -1;
}

/* Every node reaped its own copy of the tombstone (once node 2 has it). */
static bool each_node_reaped(void *arg)
{
    (void)arg;
    for (int i = 0; i < NODES; i++)
        if (reap_counter(i, "ringkv_tombstones_reaped") < 1)
            return false;
    return true;
}

static void test_versions_reaped_delete_stays_deleted(void **state)
{
    (void)state;
    const char *const flags[] = {GRACE_FLAGS, NULL};
    start_cluster(flags);
    ring_put(0, "gone", empty_ctx, "doomed", 3);
    struct ctx c = versions(1, "gone", 3, "doomed");
    int64_t t0 = cluster_now_ms();
    expect_ok(1, "RING.DEL gone %b W 3", c.bytes, c.len);
    struct ctx tomb = no_versions(2, "gone", 3);
    /* An empty context is only wrong inside the grace: past it (a stalled
     * test on a loaded machine), the tombstone may be reaped already. */
    if (tomb.len == 0 && cluster_now_ms() - t0 < GRACE_S * 1000)
        fail_msg("right after RING.DEL the tombstone's context is empty: it was not kept");
    if (!cluster_wait(reaped_everywhere, NULL, REAP_MS))
        fail_msg("the tombstone of \"gone\" (tombstone-grace %d s) is not reaped on every node "
                 "within %d ms",
                 GRACE_S, REAP_MS);
    /* each node counted its reap: the tombstone was kept, then reaped */
    if (!cluster_wait(each_node_reaped, NULL, REAP_MS))
        fail_msg("not every node counts a reaped tombstone (INFO ringkv_tombstones_reaped)");
    printf("versions: tombstone reaped everywhere %lld ms after the delete\n",
           (long long)(cluster_now_ms() - t0));
    expect_absent_everywhere("gone");
    /* node 1 restarted replays its log: the value's record must not revive */
    cluster_stop(1);
    assert_int_equal(cluster_start(1, flags), 0);
    wait_all_up();
    connect_all();
    expect_absent_everywhere("gone");
}

/* tombstone-grace passed since the delete, with margin for the reaping tick. */
static void wait_past_grace(int64_t since_ms)
{
    while (cluster_now_ms() < since_ms + GRACE_S * 1000 + 2000)
        usleep(50 * 1000);
}

/* Past the grace with node 2 frozen: nodes 0 and 1 keep the tombstone
 * (node 2 cannot confirm it holds it), and say they put its reaping off. */
static void expect_tombstone_kept_while_node_2_frozen(void)
{
    for (int i = 0; i < 2; i++) {
        struct ctx tomb = no_versions(i, "gone", 1);
        if (tomb.len == 0)
            fail_msg("node %d: the tombstone of \"gone\" was reaped past its grace while node 2, "
                     "which missed the delete, was frozen",
                     i);
        long long reaped = reap_counter(i, "ringkv_tombstones_reaped");
        long long deferred = reap_counter(i, "ringkv_reaps_deferred");
        if (reaped != 0 || deferred < 1)
            fail_msg("node %d: INFO says tombstones_reaped %lld, reaps_deferred %lld with node 2 "
                     "frozen (want 0 and at least 1)",
                     i, reaped, deferred);
    }
}

static void test_versions_delete_missed_by_a_replica_stays_deleted(void **state)
{
    (void)state;
    const char *const flags[] = {GRACE_FLAGS, NULL};
    start_cluster(flags);
    ring_put(0, "gone", empty_ctx, "doomed", 3);
    struct ctx c = versions(0, "gone", 3, "doomed");
    cluster_signal(2, SIGSTOP);
    wait_seen(2, "down", DOWN_MS);
    expect_ok(0, "RING.DEL gone %b W 2", c.bytes, c.len);
    wait_past_grace(cluster_now_ms());
    expect_tombstone_kept_while_node_2_frozen();
    cluster_signal(2, SIGCONT);
    wait_all_up();
    /* node 2 still holds "doomed"; the delete must win over it */
    for (int i = 0; i < NODES; i++) {
        struct cluster_versions v;
        if (cluster_ring_get(clients[i], "gone", 3, &v) != 0 || v.nvalues != 0)
            fail_msg("node %d: RING.GET gone R 3 answered %s: the delete came back from node 2, "
                     "which missed it, once the others had reaped its tombstone (grace %d s)",
                     i, versions_text_free(&v), GRACE_S);
        cluster_versions_free(&v);
    }
    if (!cluster_wait(each_node_reaped, NULL, REAP_MS))
        fail_msg("the tombstone of \"gone\" is not reaped on every node within %d ms of node 2's "
                 "return",
                 REAP_MS);
    expect_absent_everywhere("gone");
}

/* deferrals counted at node 0 since `arg` (a long long): at least 3 more. */
static bool reaps_deferred_again(void *arg)
{
    return reap_counter(0, "ringkv_reaps_deferred") >= *(long long *)arg + 3;
}

/* A replica still pulling a partition has not yet received all its keys: a
 * reap check must not take its "not found" as "holds nothing that could
 * bring the value back" (the key may be on its way from a source that
 * missed the delete). Node 2 comes back with its data wiped and
 * handoff-concurrency 0 (it pulls nothing, so it lacks "gone" for good);
 * nobody reads "gone" (a read would repair the tombstone onto it). Past the
 * grace, with node 2 up, nodes 0 and 1 keep deferring the reap. Restarted
 * with transfers on, node 2 pulls the tombstone and every node reaps it. */
static void test_versions_reap_waits_for_a_pulling_replica(void **state)
{
    (void)state;
    const char *const flags[] = {GRACE_FLAGS, "--aae-interval", "0", NULL};
    const char *const no_pull[] = {GRACE_FLAGS, "--aae-interval", "0", "--handoff-concurrency",
                                   "0", NULL};
    start_cluster(flags);
    ring_put(0, "gone", empty_ctx, "doomed", 3);
    struct ctx c = versions(0, "gone", 3, "doomed");
    cluster_stop(2);
    wait_seen(2, "down", DOWN_MS);
    expect_ok(0, "RING.DEL gone %b W 2", c.bytes, c.len);
    assert_int_equal(cluster_wipe_data(2), 0);
    assert_int_equal(cluster_start(2, no_pull), 0);
    wait_all_up();
    connect_all();
    wait_past_grace(cluster_now_ms());
    long long before = reap_counter(0, "ringkv_reaps_deferred");
    if (!cluster_wait(reaps_deferred_again, &before, REAP_MS))
        fail_msg("node 0 stopped deferring the reap of \"gone\" (INFO ringkv_reaps_deferred %lld, "
                 "was %lld; ringkv_tombstones_reaped %lld) while node 2 pulls its partition and "
                 "lacks the key",
                 reap_counter(0, "ringkv_reaps_deferred"), before,
                 reap_counter(0, "ringkv_tombstones_reaped"));
    for (int i = 0; i < 2; i++)
        if (reap_counter(i, "ringkv_tombstones_reaped") != 0)
            fail_msg("node %d reaped the tombstone of \"gone\" while node 2, a replica still "
                     "pulling its partition, had not received it",
                     i);
    cluster_stop(2);
    assert_int_equal(cluster_start(2, flags), 0);
    wait_all_up();
    connect_all();
    if (!cluster_wait(each_node_reaped, NULL, REAP_MS))
        fail_msg("the tombstone of \"gone\" is not reaped on every node within %d ms of node 2 "
                 "pulling its partitions",
                 REAP_MS);
    expect_absent_everywhere("gone");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_versions_written_anywhere_read_everywhere, teardown),
        cmocka_unit_test_teardown(test_versions_concurrent_puts_make_siblings_merge_resolves,
                                  teardown),
        cmocka_unit_test_teardown(test_versions_read_repairs_missed_writes, teardown),
        cmocka_unit_test_teardown(test_versions_frozen_node_w2_succeeds_w3_unavailable, teardown),
        cmocka_unit_test_teardown(test_versions_kv679_wiped_node_keeps_writing, teardown),
        cmocka_unit_test_teardown(test_versions_reaped_delete_stays_deleted, teardown),
        cmocka_unit_test_teardown(test_versions_delete_missed_by_a_replica_stays_deleted, teardown),
        cmocka_unit_test_teardown(test_versions_reap_waits_for_a_pulling_replica, teardown),
    };
    return cluster_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
