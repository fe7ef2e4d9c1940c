/* test_ring_cmds.c: RING.GET, RING.PUT and RING.DEL on one node (a cluster
 * of one): contexts and siblings, tombstones, plain commands on versioned
 * keys, max-siblings, versions across a restart, a crash (appendfsync
 * always) and compaction, versioned keys kept in memory past maxmemory, a
 * wiped data directory writing as a new actor (KV-679), and hostile
 * contexts. ringkv-only. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char data_dir[64];

static int setup(void **state)
{
    (void)state;
    return harness_temp_dir(data_dir, sizeof data_dir, "ringkv-ring");
}

static int teardown(void **state)
{
    (void)state;
    harness_crash_all(); /* a failed assertion left its node running there */
    return harness_remove_dir(data_dir);
}

/* A node on data_dir (storage = log) with extra flags (NULL-terminated). */
static void start(struct harness_server *s, const char *fsync, const char *const *more)
{
    const char *args[16] = {"--storage", "log", "--dir", data_dir, "--appendfsync", fsync};
    size_t n = 6;
    for (; more && *more && n < 15; more++)
        args[n++] = *more;
    args[n] = NULL;
    struct harness_opts o = {.threads = 2, .args = args};
    assert_int_equal(harness_start(s, &o), 0);
}

/* start(), then a client of it. */
static redisContext *start_connected(struct harness_server *s, const char *fsync,
                                     const char *const *more)
{
    start(s, fsync, more);
    return harness_connect(s->port);
}

/* Closes the client and stops the node cleanly. */
static void stop_connected(struct harness_server *s, redisContext *c)
{
    redisFree(c);
    assert_int_equal(harness_stop(s), 0);
}

/* A context as RING.GET returned it (raw bytes). */
struct ctx {
    char bytes[512];
    size_t len;
};

/* RING.GET key: checks the reply's shape and that its siblings are exactly
 * want[0..n) in any order; returns the context. */
static struct ctx ring_get_at(const char *file, int line, redisContext *c, const char *key,
                              const char *const *want, size_t n)
{
    redisReply *r = harness_cmd_at(file, line, c, "RING.GET %s", key);
    struct ctx out = {0};
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY ||
        r->element[0]->len > sizeof out.bytes)
        _fail(file, line);
    memcpy(out.bytes, r->element[0]->str, r->element[0]->len);
    out.len = r->element[0]->len;
    const redisReply *vals = r->element[1];
    if (vals->elements != n) {
        fprintf(stderr, "RING.GET %s: %zu siblings, wanted %zu\n", key, vals->elements, n);
        _fail(file, line);
    }
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t j = 0; j < vals->elements && !found; j++)
            found = vals->element[j]->type == REDIS_REPLY_STRING &&
                    vals->element[j]->len == strlen(want[i]) &&
                    memcmp(vals->element[j]->str, want[i], vals->element[j]->len) == 0;
        if (!found) {
            fprintf(stderr, "RING.GET %s: sibling '%s' missing\n", key, want[i]);
            _fail(file, line);
        }
    }
    freeReplyObject(r);
    return out;
}
#define ring_get(c, key, ...)                                                                      \
    ring_get_at(__FILE__, __LINE__, (c), (key), (const char *const[]){__VA_ARGS__},            \
                sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))
#define ring_get_none(c, key) ring_get_at(__FILE__, __LINE__, (c), (key), NULL, 0)

#define ring_put(c, key, ctx, value)                                                               \
    harness_expect((c), HARNESS_OK, "RING.PUT %s %b %s", (key), (ctx).bytes, (ctx).len, (value))

static const struct ctx empty_ctx;

static void test_ring_put_empty_context_then_get(void **state)
{
    (void)state;
    harness_skip_unless_ringkv();
    struct harness_server s;
    redisContext *c = start_connected(&s, "everysec", NULL);
    struct ctx none = ring_get_none(c, "k");
    assert_int_equal(none.len, 0); /* never written: the empty context */
    ring_put(c, "k", empty_ctx, "v1");
    struct ctx k = ring_get(c, "k", "v1");
    assert_true(k.len > 0);
    harness_expect(c, HARNESS_BULK("v1"), "GET k");
    harness_expect(c, HARNESS_INT(1), "EXISTS k");
    harness_expect(c, HARNESS_OK, "RING.PUT k %b v2 W 1 EX 100", k.bytes, k.len);
    ring_get(c, "k", "v2");
    assert_true(harness_integer(c, "TTL k") > 0);
    stop_connected(&s, c);
}

/* Two writes with the same context are concurrent: both stay; a write with
 * the context that saw both resolves them; GET picks the newest. */
static void test_ring_siblings_and_resolution(void **state)
{
    (void)state;
    harness_skip_unless_ringkv();
    struct harness_server s;
    redisContext *c = start_connected(&s, "everysec", NULL);
    ring_put(c, "k", empty_ctx, "a");
    struct ctx seen_a = ring_get(c, "k", "a");
    ring_put(c, "k", seen_a, "b");
    ring_put(c, "k", seen_a, "c");
    struct ctx both = ring_get(c, "k", "b", "c");
    harness_expect(c, HARNESS_BULK("c"), "GET k"); /* the newest of the two */
    harness_expect(c, HARNESS_INT(1), "STRLEN k");
    ring_put(c, "k", both, "d");
    ring_get(c, "k", "d");
    /* An empty context adds a sibling. */
    ring_put(c, "k", empty_ctx, "e");
    ring_get(c, "k", "d", "e");
    stop_connected(&s, c);
}

static void test_ring_del_leaves_tombstone(void **state)
{
    (void)state;
    harness_skip_unless_ringkv();
    struct harness_server s;
    redisContext *c = start_connected(&s, "everysec", NULL);
    ring_put(c, "k", empty_ctx, "v");
    struct ctx k = ring_get(c, "k", "v");
    harness_expect(c, HARNESS_OK, "RING.DEL k %b", k.bytes, k.len);
    harness_expect(c, HARNESS_NIL, "GET k");
    harness_expect(c, HARNESS_INT(0), "EXISTS k");
    struct ctx after = ring_get_none(c, "k");
    assert_true(after.len > 0); /* the tombstone's history is kept */
    /* A plain DEL sees no key, and deletes the tombstone as any key. */
    harness_expect(c, HARNESS_INT(0), "DEL k");
    assert_int_equal(ring_get_none(c, "k").len, 0);
    /* RING.DEL of a never written key, then a write over its context. */
    harness_expect(c, HARNESS_OK, "RING.DEL fresh %b W 1", "", (size_t)0);
    struct ctx fresh = ring_get_none(c, "fresh");
    harness_expect(c, HARNESS_NIL, "GET fresh");
    ring_put(c, "fresh", fresh, "back");
    ring_get(c, "fresh", "back");
    harness_expect(c, HARNESS_BULK("back"), "GET fresh");
    stop_connected(&s, c);
}

/* SET makes a versioned key plain; a RING.PUT with a context from before
 * the SET keeps the SET's value as a sibling; EXPIRE keeps versions; APPEND
 * makes the key plain. */
static void test_ring_plain_commands_on_versioned_keys(void **state)
{
    (void)state;
    harness_skip_unless_ringkv();
    struct harness_server s;
    redisContext *c = start_connected(&s, "everysec", NULL);
    ring_put(c, "k", empty_ctx, "a");
    ring_put(c, "k", empty_ctx, "b");
    struct ctx before = ring_get(c, "k", "a", "b");
    harness_expect(c, HARNESS_OK, "SET k plain");
    harness_expect(c, HARNESS_BULK("plain"), "GET k");
    struct ctx plain = ring_get(c, "k", "plain");
    ring_put(c, "k", before, "late");
    ring_get(c, "k", "plain", "late");
    struct ctx joined = ring_get(c, "k", "plain", "late");
    ring_put(c, "k", joined, "one");
    ring_get(c, "k", "one");
    (void)plain;

    ring_put(c, "e", empty_ctx, "x");
    ring_put(c, "e", empty_ctx, "y");
    harness_expect(c, HARNESS_INT(1), "EXPIRE e 1000");
    ring_get(c, "e", "x", "y");
    assert_true(harness_integer(c, "TTL e") > 0);
    harness_expect(c, HARNESS_BULK("y"), "GET e");
    harness_expect(c, HARNESS_INT(2), "APPEND e z");
    harness_expect(c, HARNESS_BULK("yz"), "GET e");
    ring_get(c, "e", "yz");
    stop_connected(&s, c);
}

static void test_ring_max_siblings_refuses(void **state)
{
    (void)state;
    harness_skip_unless_ringkv();
    struct harness_server s;
    const char *more[] = {"--max-siblings", "3", "--warn-siblings", "2", NULL};
    redisContext *c = start_connected(&s, "everysec", more);
    ring_put(c, "k", empty_ctx, "1");
    ring_put(c, "k", empty_ctx, "2");
    assert_int_equal(harness_info_number(c, "stats", "sibling_warnings"), 0);
    ring_put(c, "k", empty_ctx, "3");
    assert_int_equal(harness_info_number(c, "stats", "sibling_warnings"), 1);
    harness_expect(c,
                   HARNESS_ERR("ERR too many siblings: the write would leave 4, max-siblings is "
                               "3; write with the context of a RING.GET to resolve them"),
                   "RING.PUT k %b 4", "", (size_t)0);
    struct ctx k = ring_get(c, "k", "1", "2", "3"); /* unchanged */
    ring_put(c, "k", k, "resolved");
    ring_get(c, "k", "resolved");
    assert_true(harness_output_mentions(&s, "siblings (warn-siblings 2)"));
    harness_expect(c, HARNESS_OK, "CONFIG RESETSTAT");
    assert_int_equal(harness_info_number(c, "stats", "sibling_warnings"), 0);
    stop_connected(&s, c);
}

static void test_ring_restart_keeps_contexts_and_siblings(void **state)
{
    (void)state;
    harness_skip_unless_ringkv();
    struct harness_server s;
    redisContext *c = start_connected(&s, "everysec", NULL);
    ring_put(c, "k", empty_ctx, "a");
    ring_put(c, "k", empty_ctx, "b");
    struct ctx k = ring_get(c, "k", "a", "b");
    ring_put(c, "gone", empty_ctx, "x");
    struct ctx g = ring_get(c, "gone", "x");
    harness_expect(c, HARNESS_OK, "RING.DEL gone %b", g.bytes, g.len);
    struct ctx tomb = ring_get_none(c, "gone");
    stop_connected(&s, c);

    c = start_connected(&s, "everysec", NULL);
    struct ctx k2 = ring_get(c, "k", "a", "b");
    assert_int_equal(k2.len, k.len);
    assert_memory_equal(k2.bytes, k.bytes, k.len);
    harness_expect(c, HARNESS_BULK("b"), "GET k");
    struct ctx tomb2 = ring_get_none(c, "gone");
    assert_int_equal(tomb2.len, tomb.len);
    assert_memory_equal(tomb2.bytes, tomb.bytes, tomb.len);
    harness_expect(c, HARNESS_NIL, "GET gone");
    ring_put(c, "k", k, "resolved"); /* the old context still covers both */
    ring_get(c, "k", "resolved");
    stop_connected(&s, c);
}

static void test_ring_crash_keeps_acknowledged_put(void **state)
{
    (void)state;
    harness_skip_unless_ringkv();
    struct harness_server s;
    redisContext *c = start_connected(&s, "always", NULL);
    ring_put(c, "k", empty_ctx, "a");
    ring_put(c, "k", empty_ctx, "b");
    struct ctx k = ring_get(c, "k", "a", "b");
    redisFree(c);
    assert_int_equal(harness_crash(&s), 0);

    c = start_connected(&s, "always", NULL);
    struct ctx k2 = ring_get(c, "k", "a", "b");
    assert_int_equal(k2.len, k.len);
    assert_memory_equal(k2.bytes, k.bytes, k.len);
    stop_connected(&s, c);
}

struct compaction_wait {
    redisContext *c;
    const char *segment; /* under shard 0 */
};

/* Whether compaction copied what was live in the segment and removed it
 * (the file is gone, and INFO counts the pass: it does so once the
 * directory is synced, a little after the unlink). The live share on disk
 * is no condition to wait on: with 300 KB live and 1 MiB segments, a mostly
 * dead open segment can hold it under the threshold until more is written. */
static bool segment_compacted(void *arg)
{
    const struct compaction_wait *w = arg;
    char path[256];
    snprintf(path, sizeof path, "%s/shard-000/%s", data_dir, w->segment);
    return access(path, F_OK) != 0 &&
           harness_info_number(w->c, "persistence", "compactions") > 0;
}

/* Compaction copies versioned records whole (their meta and body): after it
 * removed the segments they were first written to, a restart still finds
 * every context and sibling. */
static void test_ring_compaction_keeps_versions(void **state)
{
    (void)state;
    harness_skip_unless_ringkv();
    enum { VKEYS = 50, FILLER = 300, ROUNDS = 12, VALUE = 1000 };
    const char *args[] = {"--storage", "log", "--dir", data_dir, "--appendfsync", "everysec",
                          "--segment-size", "1mb", "--compression", "none",
                          "--compaction-threshold", "50", NULL};
    struct harness_opts o = {.threads = 1, .args = args};
    struct harness_server s;
    assert_int_equal(harness_start(&s, &o), 0);
    redisContext *c = harness_connect(s.port);
    static struct ctx ctxs[VKEYS];
    char key[32], a[32], b[32];
    for (int i = 0; i < VKEYS; i++) {
        snprintf(key, sizeof key, "v:%d", i);
        snprintf(a, sizeof a, "a%d", i);
        snprintf(b, sizeof b, "b%d", i);
        ring_put(c, key, empty_ctx, a);
        ring_put(c, key, empty_ctx, b);
        ctxs[i] = ring_get(c, key, a, b);
    }
    char first[128];
    harness_shard0_segment(data_dir, false, first, sizeof first);
    assert_true(first[0]);
    static char value[VALUE + 1];
    for (int round = 0; round < ROUNDS; round++) {
        snprintf(value, sizeof value, "%d:", round);
        memset(value + strlen(value), 'f', VALUE - strlen(value));
        for (int i = 0; i < FILLER; i++)
            redisAppendCommand(c, "SET filler:%d %s", i, value);
        for (int i = 0; i < FILLER; i++) {
            redisReply *r = harness_next_reply(c);
            harness_check(r, HARNESS_OK, "SET filler");
            freeReplyObject(r);
        }
    }
    struct compaction_wait w = {c, first};
    assert_true(harness_wait_until(segment_compacted, &w, 30000, 50));
    stop_connected(&s, c);

    assert_int_equal(harness_start(&s, &o), 0);
    c = harness_connect(s.port);
    for (int i = 0; i < VKEYS; i++) {
        snprintf(key, sizeof key, "v:%d", i);
        snprintf(a, sizeof a, "a%d", i);
        snprintf(b, sizeof b, "b%d", i);
        struct ctx k = ring_get(c, key, a, b);
        assert_int_equal(k.len, ctxs[i].len);
        assert_memory_equal(k.bytes, ctxs[i].bytes, k.len);
    }
    stop_connected(&s, c);
}

/* Past maxmemory with storage = log, values leave memory; versioned keys
 * stay whole in memory (a cold entry keeps no versions), so RING.GET still
 * answers every sibling while plain keys around them go cold. */
static void test_ring_versions_stay_in_memory_past_maxmemory(void **state)
{
    (void)state;
    harness_skip_unless_ringkv();
    enum { VKEYS = 100, FILLER = 4000, VALUE = 1500 };
    const char *more[] = {"--maxmemory", "2mb", NULL};
    struct harness_server s;
    redisContext *c = start_connected(&s, "everysec", more);
    static char a[VALUE + 1], b[VALUE + 1];
    char key[32];
    for (int i = 0; i < VKEYS; i++) {
        snprintf(key, sizeof key, "v:%d", i);
        harness_noise((uint32_t)(2 * i), a, VALUE);
        harness_noise((uint32_t)(2 * i + 1), b, VALUE);
        ring_put(c, key, empty_ctx, a);
        ring_put(c, key, empty_ctx, b);
    }
    static char filler[VALUE];
    for (int i = 0; i < FILLER; i++) {
        harness_noise((uint32_t)(100000 + i), filler, VALUE);
        redisAppendCommand(c, "SET filler:%d %b", i, filler, (size_t)VALUE);
    }
    for (int i = 0; i < FILLER; i++) {
        redisReply *r = harness_next_reply(c);
        harness_check(r, HARNESS_OK, "SET filler past maxmemory");
        freeReplyObject(r);
    }
    assert_true(harness_info_number(c, "persistence", "cold_keys") > 0);
    for (int i = 0; i < VKEYS; i++) {
        snprintf(key, sizeof key, "v:%d", i);
        harness_noise((uint32_t)(2 * i), a, VALUE);
        harness_noise((uint32_t)(2 * i + 1), b, VALUE);
        ring_get(c, key, a, b);
    }
    stop_connected(&s, c);
}

/* Removes the data (segments and manifest) but keeps the node's identity,
 * as a node whose disk was replaced and that rejoins under its id. */
static void wipe_data_keep_identity(void)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s/shard-* %s/ringkv.meta", data_dir, data_dir);
    assert_int_equal(system(cmd), 0);
}

static void my_id(redisContext *c, char *out, size_t cap)
{
    redisReply *r = harness_cmd(c, "CLUSTER MYID");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    snprintf(out, cap, "%s", r->str);
    freeReplyObject(r);
}

/* KV-679 on one node: after the data is lost, the node must write as a new
 * actor. Were it to count again from its old actor's first dot, a client
 * holding a context from before the loss (which names that dot) would
 * supersede the new write it never saw. */
static void test_ring_wiped_data_writes_as_new_actor(void **state)
{
    (void)state;
    harness_skip_unless_ringkv();
    struct harness_server s;
    redisContext *c = start_connected(&s, "everysec", NULL);
    char id_before[64], id_after[64];
    my_id(c, id_before, sizeof id_before);
    ring_put(c, "k", empty_ctx, "old");
    struct ctx old = ring_get(c, "k", "old");
    stop_connected(&s, c);
    wipe_data_keep_identity();

    c = start_connected(&s, "everysec", NULL);
    my_id(c, id_after, sizeof id_after);
    assert_string_equal(id_before, id_after); /* the same node, its data gone */
    ring_get_none(c, "k");
    ring_put(c, "k", empty_ctx, "new");
    ring_put(c, "k", old, "stale-view");
    ring_get(c, "k", "new", "stale-view"); /* "new" is not dropped */
    stop_connected(&s, c);
}

static void test_ring_hostile_input_gets_errors(void **state)
{
    (void)state;
    harness_skip_unless_ringkv();
    struct harness_server s;
    redisContext *c = start_connected(&s, "everysec", NULL);
    ring_put(c, "k", empty_ctx, "a");
    struct ctx k = ring_get(c, "k", "a");
    const char *bad_ctx = "ERR invalid context: pass back the context RING.GET returned";
    harness_expect(c, HARNESS_ERR(bad_ctx), "RING.PUT k garbage v");
    harness_expect(c, HARNESS_ERR(bad_ctx), "RING.DEL k garbage");
    harness_expect(c, HARNESS_ERR(bad_ctx), "RING.PUT k %b v", k.bytes, k.len - 1);
    char longer[600];
    memcpy(longer, k.bytes, k.len);
    longer[k.len] = 0;
    harness_expect(c, HARNESS_ERR(bad_ctx), "RING.PUT k %b v", longer, k.len + 1);
    srand(679);
    for (int i = 0; i < 300; i++) {
        char noise[64];
        size_t n = 1 + (size_t)rand() % sizeof noise;
        for (size_t j = 0; j < n; j++)
            noise[j] = (char)rand();
        if (i % 3 == 0)
            memcpy(noise, k.bytes, n < k.len ? n : k.len); /* a plausible start */
        redisReply *r = harness_cmd(c, "RING.PUT k %b v", noise, n);
        assert_true(r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS);
        freeReplyObject(r);
    }
    const char *cap_r = "ERR R must be from 1 to 1: the cluster's size (1) caps it";
    const char *cap_w = "ERR W must be from 1 to 1: the cluster's size (1) caps it";
    harness_expect(c, HARNESS_ERR(cap_r), "RING.GET k R 2");
    harness_expect(c, HARNESS_ERR(cap_r), "RING.GET k R 0");
    harness_expect(c, HARNESS_ARRAY(2), "RING.GET k R 1");
    harness_expect(c, HARNESS_ERR(cap_w), "RING.PUT k %b v W 3", "", (size_t)0);
    harness_expect(c, HARNESS_ERR("ERR value is not an integer or out of range"),
                   "RING.PUT k %b v W x", "", (size_t)0);
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "RING.GET k X 1");
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "RING.PUT k %b v W", "", (size_t)0);
    harness_expect(c, HARNESS_ERR("ERR syntax error"), "RING.DEL k %b EX 10", "", (size_t)0);
    harness_expect(c, HARNESS_ERR("ERR invalid expire time in 'ring.put' command"),
                   "RING.PUT k %b v EX -1", "", (size_t)0);
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'ring.put' command"),
                   "RING.PUT k ctx");
    harness_expect(c, HARNESS_STATUS("PONG"), "PING");
    stop_connected(&s, c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ring_put_empty_context_then_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_siblings_and_resolution, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_del_leaves_tombstone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_plain_commands_on_versioned_keys, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ring_max_siblings_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_restart_keeps_contexts_and_siblings, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ring_crash_keeps_acknowledged_put, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_compaction_keeps_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_versions_stay_in_memory_past_maxmemory, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ring_wiped_data_writes_as_new_actor, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ring_hostile_input_gets_errors, setup, teardown),
    };
    return harness_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
