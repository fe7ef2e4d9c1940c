/* test_memcached.c: the memcached text protocol on the node's memcached port,
 * over raw sockets: storage commands (set add replace append prepend cas),
 * retrieval (get gets gat gats, many keys), delete touch incr decr, expiry,
 * noreply, flush_all, stats (and stats reset) version verbosity quit, the
 * meta no-op mn, the version clients read (1.6 or newer), and errors.
 * Expectations are memcached 1.6's bytes (RINGKV_TEST_TARGET=redis runs this
 * file against a real memcached). Where memcached's recovery after a bad line
 * is an accident of its parser (whether the data block of a refused "set" is
 * swallowed), only the first reply line is checked and the connection is
 * dropped. One ringkv-only case checks that both protocols share one
 * keyspace. Every case starts with flush_all on a fresh connection. */
#include "harness.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct harness_server server;

static int group_setup(void **state)
{
    struct harness_opts o = {.memcache = true};
    return harness_start(&server, &o) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    return harness_stop(&server) == 0 ? 0 : -1;
}

static int setup(void **state)
{
    struct harness_raw *r = harness_raw_open(server.mc_port);
    harness_raw_send_str(r, "flush_all\r\n");
    harness_raw_expect(r, "OK\r\n");
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    harness_raw_close(*state);
    return 0;
}

/* Sends "<cmd> <key> <flags> <exptime> <len>[ noreply]\r\n<data>\r\n". */
static void mc_store(struct harness_raw *r, const char *cmd, const char *key, uint32_t flags,
                     long long exptime, const char *data, size_t len, bool noreply)
{
    char line[400];
    snprintf(line, sizeof(line), "%s %s %" PRIu32 " %lld %zu%s\r\n", cmd, key, flags, exptime, len,
             noreply ? " noreply" : "");
    harness_raw_send_str(r, line);
    harness_raw_send(r, data, len);
    harness_raw_send_str(r, "\r\n");
}

/* Reads "VALUE <key> <flags> <len> <cas>\r\n<data>\r\nEND\r\n" of gets; returns cas. */
static uint64_t mc_gets_cas(struct harness_raw *r, const char *key)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "gets %s\r\n", key);
    harness_raw_send_str(r, cmd);
    char *line = harness_raw_line(r, HARNESS_TIMEOUT_MS);
    assert_non_null(line);
    char k[260];
    unsigned flags;
    size_t len;
    uint64_t cas;
    if (sscanf(line, "VALUE %259s %u %zu %" SCNu64, k, &flags, &len, &cas) != 4) {
        print_error("gets %s: unexpected line \"%s\"\n", key, line);
        fail();
    }
    free(line);
    assert_string_equal(k, key);
    harness_raw_fill(r, len + 2, HARNESS_TIMEOUT_MS);
    assert_true(r->len >= len + 2);
    memmove(r->buf, r->buf + len + 2, r->len - len - 2);
    r->len -= len + 2;
    harness_raw_expect(r, "END\r\n");
    return cas;
}

static void test_memcached_set_get(void **state)
{
    struct harness_raw *r = *state;
    mc_store(r, "set", "a", 5, 0, "abc", 3, false);
    harness_raw_expect(r, "STORED\r\n");
    harness_raw_send_str(r, "get a\r\n");
    harness_raw_expect(r, "VALUE a 5 3\r\nabc\r\nEND\r\n");
    mc_store(r, "set", "b", 4294967295u, 0, "x\r\ny", 4, false);
    harness_raw_expect(r, "STORED\r\n");
    mc_store(r, "set", "empty", 0, 0, "", 0, false);
    harness_raw_expect(r, "STORED\r\n");
    harness_raw_send_str(r, "get a missing b a empty\r\n");
    harness_raw_expect(r, "VALUE a 5 3\r\nabc\r\nVALUE b 4294967295 4\r\nx\r\ny\r\n"
                          "VALUE a 5 3\r\nabc\r\nVALUE empty 0 0\r\n\r\nEND\r\n");
    harness_raw_send_str(r, "get missing\r\n");
    harness_raw_expect(r, "END\r\n");
    mc_store(r, "set", "a", 0, 0, "new", 3, false);
    harness_raw_expect(r, "STORED\r\n");
    harness_raw_send_str(r, "get a\r\n");
    harness_raw_expect(r, "VALUE a 0 3\r\nnew\r\nEND\r\n");
}

static void test_memcached_large_value_and_long_key(void **state)
{
    struct harness_raw *r = *state;
    enum { N = 500 * 1024 };
    char *v = malloc(N);
    assert_non_null(v);
    for (size_t i = 0; i < N; i++)
        v[i] = (char)('A' + i % 53);
    mc_store(r, "set", "big", 7, 0, v, N, false);
    harness_raw_expect(r, "STORED\r\n");
    harness_raw_send_str(r, "get big\r\n");
    char head[64];
    snprintf(head, sizeof(head), "VALUE big 7 %d\r\n", N);
    harness_raw_expect(r, head);
    harness_raw_expect_at(__FILE__, __LINE__, r, v, N);
    harness_raw_expect(r, "\r\nEND\r\n");
    free(v);
    char key[251];
    memset(key, 'k', 250);
    key[250] = '\0';
    mc_store(r, "set", key, 0, 0, "v", 1, false);
    harness_raw_expect(r, "STORED\r\n");
    char get[300];
    snprintf(get, sizeof(get), "get %s\r\n", key);
    harness_raw_send_str(r, get);
    char want[300];
    snprintf(want, sizeof(want), "VALUE %s 0 1\r\nv\r\nEND\r\n", key);
    harness_raw_expect(r, want);
}

static void test_memcached_gets_cas(void **state)
{
    struct harness_raw *r = *state;
    mc_store(r, "set", "k", 0, 0, "v1", 2, false);
    harness_raw_expect(r, "STORED\r\n");
    uint64_t cas1 = mc_gets_cas(r, "k");
    char line[128];
    snprintf(line, sizeof(line), "cas k 3 0 2 %" PRIu64 "\r\nv2\r\n", cas1);
    harness_raw_send_str(r, line);
    harness_raw_expect(r, "STORED\r\n");
    harness_raw_send_str(r, line);
    harness_raw_expect(r, "EXISTS\r\n");
    harness_raw_send_str(r, "get k\r\n");
    harness_raw_expect(r, "VALUE k 3 2\r\nv2\r\nEND\r\n");
    uint64_t cas2 = mc_gets_cas(r, "k");
    assert_true(cas2 != cas1);
    mc_store(r, "set", "k", 0, 0, "v3", 2, false);
    harness_raw_expect(r, "STORED\r\n");
    uint64_t cas3 = mc_gets_cas(r, "k");
    assert_true(cas3 != cas2);
    snprintf(line, sizeof(line), "cas k 0 0 2 %" PRIu64 "\r\nv4\r\n", cas2);
    harness_raw_send_str(r, line);
    harness_raw_expect(r, "EXISTS\r\n");
    harness_raw_send_str(r, "cas nokey 0 0 1 1\r\nq\r\n");
    harness_raw_expect(r, "NOT_FOUND\r\n");
    harness_raw_send_str(r, "gets nokey\r\n");
    harness_raw_expect(r, "END\r\n");
}

static void test_memcached_add_replace(void **state)
{
    struct harness_raw *r = *state;
    mc_store(r, "add", "a", 1, 0, "x", 1, false);
    harness_raw_expect(r, "STORED\r\n");
    mc_store(r, "add", "a", 2, 0, "y", 1, false);
    harness_raw_expect(r, "NOT_STORED\r\n");
    mc_store(r, "replace", "b", 0, 0, "z", 1, false);
    harness_raw_expect(r, "NOT_STORED\r\n");
    mc_store(r, "replace", "a", 9, 0, "zz", 2, false);
    harness_raw_expect(r, "STORED\r\n");
    harness_raw_send_str(r, "get a b\r\n");
    harness_raw_expect(r, "VALUE a 9 2\r\nzz\r\nEND\r\n");
}

static void test_memcached_append_prepend(void **state)
{
    struct harness_raw *r = *state;
    mc_store(r, "set", "b", 5, 0, "zz", 2, false);
    harness_raw_expect(r, "STORED\r\n");
    mc_store(r, "append", "b", 0, 0, "12", 2, false);
    harness_raw_expect(r, "STORED\r\n");
    mc_store(r, "prepend", "b", 0, 0, "00", 2, false);
    harness_raw_expect(r, "STORED\r\n");
    harness_raw_send_str(r, "get b\r\n");
    harness_raw_expect(r, "VALUE b 5 6\r\n00zz12\r\nEND\r\n");
    mc_store(r, "append", "nokey", 0, 0, "x", 1, false);
    harness_raw_expect(r, "NOT_STORED\r\n");
    mc_store(r, "prepend", "nokey", 0, 0, "x", 1, false);
    harness_raw_expect(r, "NOT_STORED\r\n");
    harness_raw_send_str(r, "get nokey\r\n");
    harness_raw_expect(r, "END\r\n");
}

static void test_memcached_delete(void **state)
{
    struct harness_raw *r = *state;
    mc_store(r, "set", "a", 0, 0, "1", 1, false);
    harness_raw_expect(r, "STORED\r\n");
    harness_raw_send_str(r, "delete a\r\ndelete a\r\nget a\r\n");
    harness_raw_expect(r, "DELETED\r\nNOT_FOUND\r\nEND\r\n");
}

static void test_memcached_touch_gat_gats(void **state)
{
    struct harness_raw *r = *state;
    mc_store(r, "set", "n", 3, 0, "10", 2, false);
    harness_raw_expect(r, "STORED\r\n");
    mc_store(r, "set", "b", 0, 0, "bb", 2, false);
    harness_raw_expect(r, "STORED\r\n");
    harness_raw_send_str(r, "touch n 100\r\ntouch nokey 10\r\n");
    harness_raw_expect(r, "TOUCHED\r\nNOT_FOUND\r\n");
    harness_raw_send_str(r, "gat 100 n missing b\r\n");
    harness_raw_expect(r, "VALUE n 3 2\r\n10\r\nVALUE b 0 2\r\nbb\r\nEND\r\n");
    harness_raw_send_str(r, "gats 100 n\r\n");
    char *line = harness_raw_line(r, HARNESS_TIMEOUT_MS);
    assert_non_null(line);
    uint64_t cas = 0;
    assert_int_equal(sscanf(line, "VALUE n 3 2 %" SCNu64, &cas), 1);
    free(line);
    harness_raw_expect(r, "10\r\nEND\r\n");
    /* A negative exptime expires at once: gat still returns the value it read. */
    harness_raw_send_str(r, "gat -1 n\r\nget n\r\n");
    harness_raw_expect(r, "VALUE n 3 2\r\n10\r\nEND\r\nEND\r\n");
    harness_raw_send_str(r, "touch b -1\r\nget b\r\n");
    harness_raw_expect(r, "TOUCHED\r\nEND\r\n");
    harness_raw_send_str(r, "gat abc b\r\n");
    harness_raw_expect(r, "CLIENT_ERROR invalid exptime argument\r\n");
    harness_raw_send_str(r, "touch b abc\r\n");
    harness_raw_expect(r, "CLIENT_ERROR invalid exptime argument\r\n");
}

static void test_memcached_incr_decr(void **state)
{
    struct harness_raw *r = *state;
    mc_store(r, "set", "n", 0, 0, "10", 2, false);
    harness_raw_expect(r, "STORED\r\n");
    harness_raw_send_str(r, "incr n 5\r\nincr n 1\r\ndecr n 2\r\ndecr n 100\r\nincr n 7\r\n");
    harness_raw_expect(r, "15\r\n16\r\n14\r\n0\r\n7\r\n");
    harness_raw_send_str(r, "incr nokey 1\r\ndecr nokey 1\r\n");
    harness_raw_expect(r, "NOT_FOUND\r\nNOT_FOUND\r\n");
    mc_store(r, "set", "w", 0, 0, "word", 4, false);
    harness_raw_expect(r, "STORED\r\n");
    harness_raw_send_str(r, "incr w 1\r\n");
    harness_raw_expect(r, "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
    harness_raw_send_str(r, "incr n abc\r\nincr n 18446744073709551616\r\n");
    harness_raw_expect(r, "CLIENT_ERROR invalid numeric delta argument\r\n"
                          "CLIENT_ERROR invalid numeric delta argument\r\n");
    /* Counters are unsigned 64-bit and wrap on incr. */
    mc_store(r, "set", "max", 0, 0, "18446744073709551615", 20, false);
    harness_raw_expect(r, "STORED\r\n");
    harness_raw_send_str(r, "incr max 1\r\n");
    harness_raw_expect(r, "0\r\n");
    mc_store(r, "set", "g", 0, 0, "99", 2, false);
    harness_raw_expect(r, "STORED\r\n");
    harness_raw_send_str(r, "incr g 1\r\nget g\r\n");
    harness_raw_expect(r, "100\r\nVALUE g 0 3\r\n100\r\nEND\r\n");
    harness_raw_send_str(r, "get w\r\n");
    harness_raw_expect(r, "VALUE w 0 4\r\nword\r\nEND\r\n");
}

struct mc_gone {
    struct harness_raw *r;
    const char *get;
};

static bool mc_key_gone(void *arg)
{
    struct mc_gone *g = arg;
    harness_raw_send_str(g->r, g->get);
    char *line = harness_raw_line(g->r, HARNESS_TIMEOUT_MS);
    assert_non_null(line);
    bool gone = strcmp(line, "END") == 0;
    while (strcmp(line, "END") != 0) {
        free(line);
        line = harness_raw_line(g->r, HARNESS_TIMEOUT_MS);
        assert_non_null(line);
    }
    free(line);
    return gone;
}

static void test_memcached_expiry(void **state)
{
    struct harness_raw *r = *state;
    long long now = (long long)time(NULL);
    mc_store(r, "set", "neg", 0, -1, "x", 1, false);
    mc_store(r, "set", "past", 0, 1000000000, "x", 1, false);
    mc_store(r, "set", "future", 0, now + 1000, "x", 1, false);
    mc_store(r, "set", "rel", 0, 1000, "x", 1, false);
    mc_store(r, "set", "short", 0, 1, "x", 1, false);
    harness_raw_expect(r, "STORED\r\nSTORED\r\nSTORED\r\nSTORED\r\nSTORED\r\n");
    harness_raw_send_str(r, "get neg past future rel\r\n");
    harness_raw_expect(r, "VALUE future 0 1\r\nx\r\nVALUE rel 0 1\r\nx\r\nEND\r\n");
    struct mc_gone g = {r, "get short\r\n"};
    assert_true(harness_wait_until(mc_key_gone, &g, 5000, 50));
    harness_raw_send_str(r, "get future rel\r\n");
    harness_raw_expect(r, "VALUE future 0 1\r\nx\r\nVALUE rel 0 1\r\nx\r\nEND\r\n");
}

static void test_memcached_noreply(void **state)
{
    struct harness_raw *r = *state;
    mc_store(r, "set", "n", 0, 0, "5", 1, true);
    mc_store(r, "add", "n", 0, 0, "9", 1, true);
    mc_store(r, "add", "a", 0, 0, "a", 1, true);
    mc_store(r, "replace", "a", 0, 0, "b", 1, true);
    mc_store(r, "append", "a", 0, 0, "c", 1, true);
    mc_store(r, "prepend", "a", 0, 0, "d", 1, true);
    harness_raw_send_str(r, "incr n 10 noreply\r\ndecr n 3 noreply\r\ntouch n 100 noreply\r\n");
    harness_raw_send_str(r, "get n a\r\n");
    harness_raw_expect(r, "VALUE n 0 2\r\n12\r\nVALUE a 0 3\r\ndbc\r\nEND\r\n");
    uint64_t cas = mc_gets_cas(r, "a");
    char line[128];
    snprintf(line, sizeof(line), "cas a 0 0 1 %" PRIu64 " noreply\r\nz\r\n", cas);
    harness_raw_send_str(r, line);
    harness_raw_send_str(r, "delete n noreply\r\nget n a\r\n");
    harness_raw_expect(r, "VALUE a 0 1\r\nz\r\nEND\r\n");
    harness_raw_send_str(r, "flush_all noreply\r\nget a\r\n");
    harness_raw_expect(r, "END\r\n");
}

static void test_memcached_flush_all(void **state)
{
    struct harness_raw *r = *state;
    for (int i = 0; i < 50; i++) {
        char key[16];
        snprintf(key, sizeof(key), "f%d", i);
        mc_store(r, "set", key, 0, 0, "v", 1, false);
        harness_raw_expect(r, "STORED\r\n");
    }
    harness_raw_send_str(r, "get f0 f49\r\n");
    harness_raw_expect(r, "VALUE f0 0 1\r\nv\r\nVALUE f49 0 1\r\nv\r\nEND\r\n");
    harness_raw_send_str(r, "flush_all\r\nget f0 f1 f2 f49\r\n");
    harness_raw_expect(r, "OK\r\nEND\r\n");
    mc_store(r, "set", "after", 0, 0, "v", 1, false);
    harness_raw_expect(r, "STORED\r\n");
    harness_raw_send_str(r, "flush_all 0\r\nget after\r\n");
    harness_raw_expect(r, "OK\r\nEND\r\n");
    harness_raw_send_str(r, "flush_all abc\r\n");
    harness_raw_expect(r, "CLIENT_ERROR invalid exptime argument\r\n");
}

static struct harness_raw *flush_conn;

static bool flushed(void *arg)
{
    (void)arg;
    harness_raw_send_str(flush_conn, "get later\r\n");
    char *line = harness_raw_line(flush_conn, HARNESS_TIMEOUT_MS);
    bool gone = line && strcmp(line, "END") == 0;
    while (line && strcmp(line, "END") != 0) {
        free(line);
        line = harness_raw_line(flush_conn, HARNESS_TIMEOUT_MS);
    }
    free(line);
    return gone;
}

/* flush_all with a delay: items stay readable until it has passed. */
static void test_memcached_flush_all_delay(void **state)
{
    struct harness_raw *r = *state;
    mc_store(r, "set", "later", 0, 0, "v", 1, false);
    harness_raw_expect(r, "STORED\r\n");
    int64_t t0 = harness_now_ms();
    harness_raw_send_str(r, "flush_all 2\r\nget later\r\n");
    harness_raw_expect(r, "OK\r\nVALUE later 0 1\r\nv\r\nEND\r\n");
    flush_conn = r;
    assert_true(harness_wait_until(flushed, NULL, 4000, 50));
    /* Not before its time (memcached counts whole seconds, so 1 s at least). */
    assert_true(harness_now_ms() - t0 >= 900);
}

/* Reads a stats reply up to END; returns the value of name (caller frees) or NULL. */
static char *mc_stat(struct harness_raw *r, const char *name)
{
    harness_raw_send_str(r, "stats\r\n");
    char *val = NULL;
    for (int i = 0; i < 1000; i++) {
        char *line = harness_raw_line(r, HARNESS_TIMEOUT_MS);
        assert_non_null(line);
        if (strcmp(line, "END") == 0) {
            free(line);
            return val;
        }
        if (strncmp(line, "STAT ", 5) != 0) {
            print_error("stats: unexpected line \"%s\"\n", line);
            fail();
        }
        size_t nl = strlen(name);
        if (val == NULL && strncmp(line + 5, name, nl) == 0 && line[5 + nl] == ' ')
            val = strdup(line + 6 + nl);
        free(line);
    }
    fail_msg("stats: no END after 1000 lines");
    return NULL;
}

static long long mc_stat_int(struct harness_raw *r, const char *name)
{
    char *v = mc_stat(r, name);
    if (v == NULL) {
        print_error("stats has no %s\n", name);
        fail();
    }
    long long n = strtoll(v, NULL, 10);
    free(v);
    return n;
}

static void test_memcached_stats_version_verbosity(void **state)
{
    struct harness_raw *r = *state;
    const char *fields[] = {
        "pid",     "uptime",  "time",     "version",    "curr_connections", "total_connections",
        "cmd_get", "cmd_set", "get_hits", "get_misses", "curr_items"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        char *v = mc_stat(r, fields[i]);
        if (v == NULL) {
            print_error("stats has no %s\n", fields[i]);
            fail();
        }
        free(v);
    }
    mc_store(r, "set", "s", 0, 0, "v", 1, false);
    harness_raw_expect(r, "STORED\r\n");
    long long hits = mc_stat_int(r, "get_hits");
    long long misses = mc_stat_int(r, "get_misses");
    harness_raw_send_str(r, "get s s nokey\r\n");
    harness_raw_expect(r, "VALUE s 0 1\r\nv\r\nVALUE s 0 1\r\nv\r\nEND\r\n");
    assert_int_equal(mc_stat_int(r, "get_hits"), hits + 2);
    assert_int_equal(mc_stat_int(r, "get_misses"), misses + 1);
    /* memcached drops flushed items lazily, so curr_items only has a lower bound. */
    assert_true(mc_stat_int(r, "curr_items") >= 1);

    harness_raw_send_str(r, "version\r\n");
    char *line = harness_raw_line(r, HARNESS_TIMEOUT_MS);
    assert_non_null(line);
    assert_true(strncmp(line, "VERSION ", 8) == 0 && strlen(line) > 8);
    free(line);
    harness_raw_send_str(r, "verbosity 1\r\nverbosity 0 noreply\r\nverbosity\r\nverbosity abc\r\n");
    harness_raw_expect(r, "OK\r\nERROR\r\nCLIENT_ERROR bad command line format\r\n");
}

/* Clients that pick their dialect by the server's version must see a
 * current memcached (1.6 or newer); ringkv's own version is in stats. */
static void test_memcached_version_reads_as_current(void **state)
{
    struct harness_raw *r = *state;
    harness_raw_send_str(r, "version\r\n");
    char *line = harness_raw_line(r, HARNESS_TIMEOUT_MS);
    assert_non_null(line);
    unsigned major = 0, minor = 0, patch = 0;
    if (sscanf(line, "VERSION %u.%u.%u", &major, &minor, &patch) != 3 ||
        major * 1000 + minor < 1006) {
        print_error("version: \"%s\" does not read as memcached 1.6 or newer\n", line);
        fail();
    }
    char *stat_version = mc_stat(r, "version");
    assert_non_null(stat_version);
    assert_string_equal(stat_version, line + 8);
    free(stat_version);
    free(line);
    if (!harness_target_is_redis()) {
        char *own = mc_stat(r, "ringkv_version");
        assert_non_null(own);
        assert_true(strlen(own) > 0);
        free(own);
    }
}

/* "stats noreply" and other arguments memcached does not know are an
 * ERROR; the meta no-op answers MN, whatever follows it. */
static void test_memcached_stats_arguments_and_mn(void **state)
{
    struct harness_raw *r = *state;
    harness_raw_send_str(r, "stats noreply\r\nstats nosuch\r\nmn\r\nmn q k\r\nMN\r\n");
    harness_raw_expect(r, "ERROR\r\nERROR\r\nMN\r\nMN\r\nERROR\r\n");
    mc_store(r, "set", "after", 0, 0, "v", 1, false);
    harness_raw_send_str(r, "mn\r\nget after\r\n");
    harness_raw_expect(r, "STORED\r\nMN\r\nVALUE after 0 1\r\nv\r\nEND\r\n");
}

/* "stats reset" answers RESET, whatever words follow it (memcached 1.6), and
 * zeroes the counters memcached's resets: connections, gets, sets, hits,
 * misses, expired gets, evictions, bytes read; items stay. The keys spread
 * over every shard, so each shard's counters must be reset. */
static void test_memcached_stats_reset(void **state)
{
    struct harness_raw *r = *state;
    char key[16], get[48], want[48];
    for (int i = 0; i < 16; i++) {
        snprintf(key, sizeof key, "reset%d", i);
        mc_store(r, "set", key, 0, 0, "v", 1, false);
        snprintf(get, sizeof get, "get %s nokey%d\r\n", key, i);
        harness_raw_send_str(r, get);
        snprintf(want, sizeof want, "STORED\r\nVALUE %s 0 1\r\nv\r\nEND\r\n", key);
        harness_raw_expect(r, want);
    }
    static const char *const zeroed[] = {"total_connections", "cmd_get",     "cmd_set",
                                         "get_hits",          "get_misses",  "get_expired",
                                         "evictions"};
    assert_true(mc_stat_int(r, "cmd_set") >= 16);
    assert_true(mc_stat_int(r, "get_hits") >= 16);
    assert_true(mc_stat_int(r, "get_misses") >= 16);
    assert_true(mc_stat_int(r, "total_connections") >= 1);
    long long bytes_read = mc_stat_int(r, "bytes_read");
    harness_raw_send_str(r, "stats reset\r\nstats reset noreply\r\nstats reset all\r\n");
    harness_raw_expect(r, "RESET\r\nRESET\r\nRESET\r\n");
    for (size_t i = 0; i < sizeof zeroed / sizeof zeroed[0]; i++) {
        long long v = mc_stat_int(r, zeroed[i]);
        if (v != 0)
            fail_msg("after stats reset, %s is %lld, not 0", zeroed[i], v);
    }
    assert_true(mc_stat_int(r, "bytes_read") < bytes_read); /* the stats lines since */
    assert_true(mc_stat_int(r, "curr_items") >= 16);
}

static void test_memcached_errors_keep_connection(void **state)
{
    struct harness_raw *r = *state;
    harness_raw_send_str(r, "foo\r\nGET a\r\nget\r\nset a 0 0\r\nincr\r\n");
    harness_raw_expect(r, "ERROR\r\nERROR\r\nERROR\r\nERROR\r\nERROR\r\n");
    harness_raw_send_str(r, "set x 0 0 abc\r\n");
    harness_raw_expect(r, "CLIENT_ERROR bad command line format\r\n");
    harness_raw_send_str(r, "set x 0 0 -1\r\n");
    harness_raw_expect(r, "CLIENT_ERROR bad command line format\r\n");
    char key[252];
    memset(key, 'k', 251);
    key[251] = '\0';
    char get[300];
    snprintf(get, sizeof(get), "get %s\r\n", key);
    harness_raw_send_str(r, get);
    harness_raw_expect(r, "CLIENT_ERROR bad command line format\r\n");
    /* Extra spaces and a bare LF are tolerated. */
    harness_raw_send_str(r, "set  sp  0 0 1 \r\nx\r\nget sp  \r\nget sp\n");
    harness_raw_expect(r, "STORED\r\nVALUE sp 0 1\r\nx\r\nEND\r\nVALUE sp 0 1\r\nx\r\nEND\r\n");
}

static void test_memcached_bad_data_chunk(void **state)
{
    struct harness_raw *r = harness_raw_open(server.mc_port);
    harness_raw_send_str(r, "set x 0 0 3\r\nabcxx");
    harness_raw_expect(r, "CLIENT_ERROR bad data chunk\r\n");
    harness_raw_close(r);
    r = harness_raw_open(server.mc_port);
    char key[252];
    memset(key, 'k', 251);
    key[251] = '\0';
    mc_store(r, "set", key, 0, 0, "v", 1, false);
    harness_raw_expect(r, "CLIENT_ERROR bad command line format\r\n");
    harness_raw_close(r);
    r = *state;
    harness_raw_send_str(r, "get x\r\n");
    harness_raw_expect(r, "END\r\n");
    mc_store(r, "set", "x", 0, 0, "abc", 3, false);
    harness_raw_expect(r, "STORED\r\n");
}

static void test_memcached_quit(void **state)
{
    struct harness_raw *r = harness_raw_open(server.mc_port);
    harness_raw_send_str(r, "set q 0 0 1\r\n1\r\nquit\r\nset q 0 0 1\r\n2\r\n");
    harness_raw_expect(r, "STORED\r\n");
    harness_raw_expect_closed(r);
    harness_raw_close(r);
    r = *state;
    harness_raw_send_str(r, "get q\r\n");
    harness_raw_expect(r, "VALUE q 0 1\r\n1\r\nEND\r\n");
}

/* A client of memcached's binary protocol gets a binary "Not supported"
 * response (its opaque echoed) and a closed connection at once, not a wait
 * for a text line that never comes. */
static void test_memcached_binary_client_is_refused(void **state)
{
    harness_skip_unless_ringkv();
    static const uint8_t get[] = {0x80, 0x00, 0x00, 0x01, [11] = 1,
                                  [12] = 1, 2, 3, 4, [24] = 'k'};
    struct harness_raw *r = harness_raw_open(server.mc_port);
    harness_raw_send(r, get, sizeof get);
    static const char msg[] = "binary protocol not supported: use the text protocol";
    uint8_t want[24 + sizeof msg - 1] = {
        0x81, 0x00, [7] = 0x83, [11] = sizeof msg - 1, [12] = 1, 2, 3, 4};
    memcpy(want + 24, msg, sizeof msg - 1);
    harness_raw_expect_at(__FILE__, __LINE__, r, (const char *)want, sizeof want);
    harness_raw_expect_closed(r);
    harness_raw_close(r);
    r = *state;
    harness_raw_send_str(r, "version\r\n");
    char *v = harness_raw_line(r, 5000);
    assert_non_null(v);
    assert_true(strncmp(v, "VERSION ", 8) == 0);
    free(v);
}

static void test_memcached_shares_keyspace_with_resp(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_raw *r = *state;
    redisContext *c = harness_connect(server.port);
    mc_store(r, "set", "shared", 0, 0, "from-mc", 7, false);
    harness_raw_expect(r, "STORED\r\n");
    harness_expect(c, HARNESS_BULK("from-mc"), "GET shared");
    harness_expect(c, HARNESS_OK, "SET fromresp hello");
    harness_raw_send_str(r, "get fromresp\r\n");
    harness_raw_expect(r, "VALUE fromresp 0 5\r\nhello\r\nEND\r\n");
    harness_expect(c, HARNESS_OK, "SET counter 41");
    harness_raw_send_str(r, "incr counter 1\r\n");
    harness_raw_expect(r, "42\r\n");
    harness_expect(c, HARNESS_BULK("42"), "GET counter");
    harness_expect(c, HARNESS_INT(1), "DEL fromresp");
    harness_raw_send_str(r, "get fromresp\r\ndelete shared\r\n");
    harness_raw_expect(r, "END\r\nDELETED\r\n");
    harness_expect(c, HARNESS_NIL, "GET shared");
    redisFree(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_memcached_set_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memcached_large_value_and_long_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memcached_gets_cas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memcached_add_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memcached_append_prepend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memcached_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memcached_touch_gat_gats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memcached_incr_decr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memcached_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memcached_noreply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memcached_flush_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memcached_flush_all_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memcached_stats_version_verbosity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memcached_version_reads_as_current, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memcached_stats_arguments_and_mn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memcached_stats_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memcached_errors_keep_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memcached_bad_data_chunk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memcached_quit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memcached_binary_client_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memcached_shares_keyspace_with_resp, setup, teardown),
    };
    return harness_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
