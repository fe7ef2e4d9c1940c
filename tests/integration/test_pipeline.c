/* test_pipeline.c: long pipelines of mixed commands over keys on every shard,
 * with every reply checked in order against a model kept by the test.
 * The node runs with --threads 4 (even on 2 cores) so that consecutive
 * requests of one pipeline land on different shards and the node must put
 * their replies back in request order. The model is a table of KEYS slots
 * ("pk:<i>" -> value or absent); a seeded generator (RINGKV_TEST_SEED to
 * replay; the seed is printed) draws SET / GET / INCR / DEL / MGET / EXISTS,
 * and the expected reply of each is computed from the model before the model
 * is updated. Values are numbers (so INCR works) or words (so INCR fails with
 * Redis's error and leaves them alone).
 * Also: one large burst written before any reply is read (the node must keep
 * reading while replies queue up), and a stream cut into tiny random chunks on
 * a raw socket so that requests arrive split at every possible byte. */
#include "harness.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEYS 256
#define VAL_MAX 32
#define BATCHES 10
#define BATCH_LEN 2000
#define MULTI_MAX 6

static struct harness_server server;
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static unsigned rng_below(unsigned n)
{
    return (unsigned)(rng_next() % n);
}

static int group_setup(void **state)
{
    const char *seed = getenv("RINGKV_TEST_SEED");
    rng_state = seed != NULL ? strtoull(seed, NULL, 10) : (uint64_t)time(NULL);
    print_message("test_pipeline: RINGKV_TEST_SEED=%" PRIu64 "\n", rng_state);
    struct harness_opts o = {.threads = 4};
    return harness_start(&server, &o) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    return harness_stop(&server) == 0 ? 0 : -1;
}

static int setup(void **state)
{
    redisContext *c = harness_connect(server.port);
    harness_expect(c, HARNESS_OK, "FLUSHALL");
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    redisFree(*state);
    return 0;
}

struct slot {
    bool present;
    char val[VAL_MAX];
};

/* One expected reply. Arrays (MGET) keep their element wants in elems. */
struct expect {
    struct harness_want want;
    char text[VAL_MAX]; /* storage for a bulk want */
    int nelems;
    struct harness_want elems[MULTI_MAX];
    char elem_text[MULTI_MAX][VAL_MAX];
    char what[96];
};

/* Redis's integer rule: optional '-', no leading zeros, fits in int64. */
static bool parse_i64(const char *s, long long *out)
{
    char *end;
    if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0') || (s[0] == '-' && s[1] == '0'))
        return false;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || s[0] == ' ' || s[0] == '+')
        return false;
    *out = v;
    return true;
}

static void expect_bulk(struct harness_want *w, char *store, const struct slot *s)
{
    if (!s->present) {
        *w = HARNESS_NIL;
        return;
    }
    snprintf(store, VAL_MAX, "%s", s->val);
    *w = HARNESS_BULK(store);
}

static void gen_set(redisContext *c, struct slot *m, struct expect *e)
{
    unsigned k = rng_below(KEYS);
    if (rng_below(2) == 0)
        snprintf(m[k].val, VAL_MAX, "%d", (int)rng_below(2000000) - 1000000);
    else
        snprintf(m[k].val, VAL_MAX, "w%u", (unsigned)rng_below(1000000));
    m[k].present = true;
    redisAppendCommand(c, "SET pk:%u %s", k, m[k].val);
    e->want = HARNESS_OK;
    snprintf(e->what, sizeof(e->what), "SET pk:%u %s", k, m[k].val);
}

static void gen_get(redisContext *c, struct slot *m, struct expect *e)
{
    unsigned k = rng_below(KEYS);
    redisAppendCommand(c, "GET pk:%u", k);
    expect_bulk(&e->want, e->text, &m[k]);
    snprintf(e->what, sizeof(e->what), "GET pk:%u", k);
}

static void gen_incr(redisContext *c, struct slot *m, struct expect *e)
{
    unsigned k = rng_below(KEYS);
    long long v = 0;
    redisAppendCommand(c, "INCR pk:%u", k);
    snprintf(e->what, sizeof(e->what), "INCR pk:%u", k);
    if (m[k].present && !parse_i64(m[k].val, &v)) {
        e->want = HARNESS_ERR("ERR value is not an integer or out of range");
        return;
    }
    v++;
    snprintf(m[k].val, VAL_MAX, "%lld", v);
    m[k].present = true;
    e->want = HARNESS_INT(v);
}

/* Draws 1..MULTI_MAX keys, duplicates allowed. */
static int gen_keys(unsigned *keys, const char **argv, size_t *lens, char names[][16])
{
    int n = 1 + (int)rng_below(MULTI_MAX);
    for (int i = 0; i < n; i++) {
        keys[i] = rng_below(KEYS);
        snprintf(names[i], 16, "pk:%u", keys[i]);
        argv[i + 1] = names[i];
        lens[i + 1] = strlen(names[i]);
    }
    return n;
}

static void gen_del(redisContext *c, struct slot *m, struct expect *e)
{
    unsigned keys[MULTI_MAX];
    const char *argv[MULTI_MAX + 1] = {"DEL"};
    size_t lens[MULTI_MAX + 1] = {3};
    char names[MULTI_MAX][16];
    int n = gen_keys(keys, argv, lens, names);
    redisAppendCommandArgv(c, n + 1, argv, lens);
    long long deleted = 0;
    for (int i = 0; i < n; i++) {
        deleted += m[keys[i]].present;
        m[keys[i]].present = false;
    }
    e->want = HARNESS_INT(deleted);
    snprintf(e->what, sizeof(e->what), "DEL of %d keys from pk:%u", n, keys[0]);
}

static void gen_exists(redisContext *c, struct slot *m, struct expect *e)
{
    unsigned keys[MULTI_MAX];
    const char *argv[MULTI_MAX + 1] = {"EXISTS"};
    size_t lens[MULTI_MAX + 1] = {6};
    char names[MULTI_MAX][16];
    int n = gen_keys(keys, argv, lens, names);
    redisAppendCommandArgv(c, n + 1, argv, lens);
    long long count = 0;
    for (int i = 0; i < n; i++)
        count += m[keys[i]].present;
    e->want = HARNESS_INT(count);
    snprintf(e->what, sizeof(e->what), "EXISTS of %d keys from pk:%u", n, keys[0]);
}

static void gen_mget(redisContext *c, struct slot *m, struct expect *e)
{
    unsigned keys[MULTI_MAX];
    const char *argv[MULTI_MAX + 1] = {"MGET"};
    size_t lens[MULTI_MAX + 1] = {4};
    char names[MULTI_MAX][16];
    int n = gen_keys(keys, argv, lens, names);
    redisAppendCommandArgv(c, n + 1, argv, lens);
    e->want = HARNESS_ARRAY(n);
    e->nelems = n;
    for (int i = 0; i < n; i++)
        expect_bulk(&e->elems[i], e->elem_text[i], &m[keys[i]]);
    snprintf(e->what, sizeof(e->what), "MGET of %d keys from pk:%u", n, keys[0]);
}

static void check_reply(const redisReply *r, const struct expect *e, int index)
{
    char what[160];
    snprintf(what, sizeof(what), "reply %d (%s)", index, e->what);
    harness_check(r, e->want, what);
    for (int i = 0; i < e->nelems; i++)
        harness_check(r->element[i], e->elems[i], what);
}

static void test_pipeline_mixed_commands_match_model(void **state)
{
    redisContext *c = *state;
    static struct slot model[KEYS];
    static struct expect exp[BATCH_LEN];
    memset(model, 0, sizeof(model));
    void (*gens[])(redisContext *, struct slot *, struct expect *) = {
        gen_set, gen_set, gen_get, gen_get, gen_incr, gen_del, gen_mget, gen_exists};
    int ngens = (int)(sizeof(gens) / sizeof(gens[0]));
    for (int b = 0; b < BATCHES; b++) {
        for (int i = 0; i < BATCH_LEN; i++) {
            memset(&exp[i], 0, sizeof(exp[i]));
            gens[rng_below((unsigned)ngens)](c, model, &exp[i]);
        }
        for (int i = 0; i < BATCH_LEN; i++) {
            redisReply *r = harness_next_reply(c);
            check_reply(r, &exp[i], b * BATCH_LEN + i);
            freeReplyObject(r);
        }
    }
    /* The node's final state is the model's. */
    for (unsigned k = 0; k < KEYS; k++) {
        struct expect e = {0};
        snprintf(e.what, sizeof(e.what), "final GET pk:%u", k);
        expect_bulk(&e.want, e.text, &model[k]);
        redisReply *r = harness_cmd(c, "GET pk:%u", k);
        check_reply(r, &e, (int)k);
        freeReplyObject(r);
    }
}

static void test_pipeline_large_burst(void **state)
{
    redisContext *c = *state;
    enum { N = 20000 };
    for (int i = 0; i < N; i++)
        redisAppendCommand(c, "SET burst:%d value-%d-%0100d", i, i, 0);
    for (int i = 0; i < N; i++)
        redisAppendCommand(c, "GET burst:%d", i);
    for (int i = 0; i < N; i++) {
        redisReply *r = harness_next_reply(c);
        harness_check(r, HARNESS_OK, "burst SET");
        freeReplyObject(r);
    }
    for (int i = 0; i < N; i++) {
        char want[160];
        snprintf(want, sizeof(want), "value-%d-%0100d", i, 0);
        redisReply *r = harness_next_reply(c);
        harness_check(r, HARNESS_BULK(want), "burst GET");
        freeReplyObject(r);
    }
    harness_expect(c, HARNESS_INT(N), "DBSIZE");
}

/* Pipelined MGETs of many keys on every shard: each is answered whole and
 * right (no -TIMEOUT while its sub-requests wait behind the others'), and
 * the node stays up (issue 9: the sender's backlog retry read messages the
 * receiver already owned). */
static void test_pipeline_huge_mgets(void **state)
{
    redisContext *c = *state;
    enum { NKEYS = 100000, REPS = 4 };
    harness_expect(c, HARNESS_OK, "SET hk:0 first");
    harness_expect(c, HARNESS_OK, "SET hk:%d last", NKEYS - 1);
    const char **argv = malloc((NKEYS + 1) * sizeof *argv);
    size_t *lens = malloc((NKEYS + 1) * sizeof *lens);
    char *names = malloc((size_t)NKEYS * 16);
    assert_true(argv && lens && names);
    argv[0] = "MGET";
    lens[0] = 4;
    for (int i = 0; i < NKEYS; i++) {
        argv[i + 1] = names + (size_t)i * 16;
        lens[i + 1] = (size_t)snprintf(names + (size_t)i * 16, 16, "hk:%d", i);
    }
    for (int r = 0; r < REPS; r++)
        assert_int_equal(redisAppendCommandArgv(c, NKEYS + 1, argv, lens), REDIS_OK);
    redisAppendCommand(c, "PING");
    for (int r = 0; r < REPS; r++) {
        redisReply *reply = harness_next_reply(c);
        assert_int_equal(reply->type, REDIS_REPLY_ARRAY);
        assert_int_equal(reply->elements, NKEYS);
        harness_check(reply->element[0], HARNESS_BULK("first"), "MGET's first key");
        harness_check(reply->element[NKEYS - 1], HARNESS_BULK("last"), "MGET's last key");
        for (int i = 1; i < NKEYS - 1; i++)
            assert_int_equal(reply->element[i]->type, REDIS_REPLY_NIL);
        freeReplyObject(reply);
    }
    redisReply *pong = harness_next_reply(c);
    harness_check(pong, HARNESS_STATUS("PONG"), "PING after the MGETs");
    freeReplyObject(pong);
    free(names);
    free(lens);
    free(argv);
}

static void append_str(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *buf = realloc(*buf, *cap);
        assert_non_null(*buf);
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

static void test_pipeline_split_at_every_byte(void **state)
{
    enum { GROUPS = 150, CHUNK_MAX = 17 };
    char *req = NULL, *want = NULL;
    size_t rlen = 0, rcap = 0, wlen = 0, wcap = 0;
    for (int j = 0; j < GROUPS; j++) {
        char key[16], val[16], next[16], buf[160];
        int v = (int)rng_below(100000);
        snprintf(key, sizeof(key), "sp:%d", j);
        snprintf(val, sizeof(val), "%d", v);
        snprintf(next, sizeof(next), "%d", v + 1);
        snprintf(buf, sizeof(buf), "*3\r\n$3\r\nSET\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n", strlen(key),
                 key, strlen(val), val);
        append_str(&req, &rlen, &rcap, buf);
        append_str(&want, &wlen, &wcap, "+OK\r\n");
        snprintf(buf, sizeof(buf), "*2\r\n$4\r\nINCR\r\n$%zu\r\n%s\r\n", strlen(key), key);
        append_str(&req, &rlen, &rcap, buf);
        snprintf(buf, sizeof(buf), ":%s\r\n", next);
        append_str(&want, &wlen, &wcap, buf);
        snprintf(buf, sizeof(buf), "GET %s\r\n", key);
        append_str(&req, &rlen, &rcap, buf);
        snprintf(buf, sizeof(buf), "$%zu\r\n%s\r\n", strlen(next), next);
        append_str(&want, &wlen, &wcap, buf);
        append_str(&req, &rlen, &rcap, "PING\r\n");
        append_str(&want, &wlen, &wcap, "+PONG\r\n");
    }
    struct harness_raw *r = harness_raw_open(server.port);
    for (size_t off = 0; off < rlen;) {
        size_t n = 1 + rng_below(CHUNK_MAX);
        if (n > rlen - off)
            n = rlen - off;
        harness_raw_send(r, req + off, n);
        off += n;
        harness_raw_fill(r, r->len + 1, 0);
    }
    harness_raw_expect_at(__FILE__, __LINE__, r, want, wlen);
    harness_raw_close(r);
    free(req);
    free(want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pipeline_mixed_commands_match_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_large_burst, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_huge_mgets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_split_at_every_byte, setup, teardown),
    };
    return harness_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
