/* test_cmd_mc.c: the memcached commands, driven directly with decoded
 * requests on a fresh store; reply lines are compared byte for byte with
 * what memcached 1.6.18 sends (checked by hand over a socket). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cmd_mc.h"
#include "cmd_string.h"
#include "keyhash.h"
#include "store.h"

#define T0 1700000000000LL /* a fixed "now", unix ms */

static struct store st;
static struct buf out;

static int setup_with(const struct store_config *cfg)
{
    if (store_init(&st, cfg) != 0)
        return -1;
    store_tick(&st, T0);
    buf_init(&out);
    return 0;
}

static int setup(void **state)
{
    struct store_config cfg = {.seed = 5};
    return setup_with(&cfg);
}

static int teardown(void **state)
{
    store_fini(&st);
    buf_fini(&out);
    return 0;
}

static struct mc_key req_key;

static struct mc_request req(enum mc_cmd cmd, const char *key)
{
    req_key.ptr = key;
    req_key.len = (uint32_t)strlen(key);
    struct mc_request r = {.cmd = cmd, .keys = &req_key, .nkeys = 1};
    return r;
}

/* Runs h on r and returns the reply (NUL-terminated). */
static const char *run(cmd_handler *h, const struct mc_request *r)
{
    struct req_result res = {0};
    struct cmd_ctx c = {.res = &res, .store = &st, .out = &out, .proto = 2, .mc = r};
    c.hash = keyhash(r->keys[0].ptr, r->keys[0].len);
    buf_clear(&out);
    h(&c);
    buf_append(&out, "", 1);
    out.len--;
    return out.data;
}

/* A storage command: "<cmd> key flags exptime bytes [cas] [noreply]". */
static const char *storage(cmd_handler *h, enum mc_cmd cmd, const char *key, uint32_t flags,
                           int64_t exptime, const char *data, bool noreply)
{
    struct mc_request r = req(cmd, key);
    r.flags = flags;
    r.exptime = exptime;
    r.data = data;
    r.data_len = (uint32_t)strlen(data);
    r.noreply = noreply;
    return run(h, &r);
}

static const char *set(const char *key, uint32_t flags, int64_t exptime, const char *data)
{
    return storage(cmd_mc_set, MC_SET, key, flags, exptime, data, false);
}

static const char *get(const char *key)
{
    struct mc_request r = req(MC_GET, key);
    return run(cmd_mc_get, &r);
}

static const char *gets(const char *key)
{
    struct mc_request r = req(MC_GETS, key);
    return run(cmd_mc_gets, &r);
}

static const char *cas(const char *key, const char *data, uint64_t unique)
{
    struct mc_request r = req(MC_CAS, key);
    r.data = data;
    r.data_len = (uint32_t)strlen(data);
    r.cas = unique;
    return run(cmd_mc_cas, &r);
}

static const char *arith(bool is_incr, const char *key, uint64_t delta, bool noreply)
{
    struct mc_request r = req(is_incr ? MC_INCR : MC_DECR, key);
    r.delta = delta;
    r.noreply = noreply;
    return run(is_incr ? cmd_mc_incr : cmd_mc_decr, &r);
}

static const char *touch(cmd_handler *h, enum mc_cmd cmd, const char *key, int64_t exptime)
{
    struct mc_request r = req(cmd, key);
    r.exptime = exptime;
    return run(h, &r);
}

static struct table_entry *entry(const char *key)
{
    return store_lookup(&st, key, (uint32_t)strlen(key), keyhash(key, strlen(key)));
}

static void test_cmd_mc_set_get_gets(void **state)
{
    assert_string_equal(get("k"), "");
    assert_string_equal(set("k", 5, 0, "hi"), "STORED\r\n");
    assert_string_equal(get("k"), "VALUE k 5 2\r\nhi\r\n");
    char expect[64];
    snprintf(expect, sizeof expect, "VALUE k 5 2 %llu\r\nhi\r\n",
             (unsigned long long)entry("k")->cas);
    assert_string_equal(gets("k"), expect);
    assert_string_equal(set("k", 0, 0, ""), "STORED\r\n");
    assert_string_equal(get("k"), "VALUE k 0 0\r\n\r\n");
    assert_string_equal(set("k", 4294967295u, 0, "x"), "STORED\r\n");
    assert_string_equal(get("k"), "VALUE k 4294967295 1\r\nx\r\n");
}

static void test_cmd_mc_shares_keys_with_redis(void **state)
{
    struct resp_arg argv[] = {{"SET", 3}, {"r", 1}, {"redis", 5}};
    struct req_result res = {0};
    struct cmd_ctx c = {.res = &res,
                        .store = &st,
                        .out = &out,
                        .proto = 2,
                        .argc = 3,
                        .argv = argv,
                        .hash = keyhash("r", 1)};
    cmd_set(&c);
    assert_string_equal(get("r"), "VALUE r 0 5\r\nredis\r\n");
}

static void test_cmd_mc_add_replace(void **state)
{
    assert_string_equal(storage(cmd_mc_replace, MC_REPLACE, "k", 1, 0, "x", false),
                        "NOT_STORED\r\n");
    assert_string_equal(get("k"), "");
    assert_string_equal(storage(cmd_mc_add, MC_ADD, "k", 1, 0, "x", false), "STORED\r\n");
    assert_string_equal(storage(cmd_mc_add, MC_ADD, "k", 2, 0, "y", false), "NOT_STORED\r\n");
    assert_string_equal(get("k"), "VALUE k 1 1\r\nx\r\n");
    assert_string_equal(storage(cmd_mc_replace, MC_REPLACE, "k", 7, 0, "zz", false), "STORED\r\n");
    assert_string_equal(get("k"), "VALUE k 7 2\r\nzz\r\n");
    /* an expired key is no key */
    assert_string_equal(set("t", 0, 10, "v"), "STORED\r\n");
    store_tick(&st, T0 + 10000);
    assert_string_equal(storage(cmd_mc_replace, MC_REPLACE, "t", 0, 0, "w", false),
                        "NOT_STORED\r\n");
    assert_string_equal(storage(cmd_mc_add, MC_ADD, "t", 0, 0, "w", false), "STORED\r\n");
}

static void test_cmd_mc_append_prepend_keep_flags_and_exptime(void **state)
{
    assert_string_equal(storage(cmd_mc_append, MC_APPEND, "k", 0, 0, "x", false), "NOT_STORED\r\n");
    assert_string_equal(storage(cmd_mc_prepend, MC_PREPEND, "k", 0, 0, "x", false),
                        "NOT_STORED\r\n");
    assert_string_equal(get("k"), "");
    assert_string_equal(set("k", 7, 100, "zz"), "STORED\r\n");
    uint64_t cas0 = entry("k")->cas;
    assert_string_equal(storage(cmd_mc_append, MC_APPEND, "k", 9, 0, "++", false), "STORED\r\n");
    uint64_t cas1 = entry("k")->cas;
    assert_string_equal(storage(cmd_mc_prepend, MC_PREPEND, "k", 9, 0, "--", false), "STORED\r\n");
    assert_string_equal(get("k"), "VALUE k 7 6\r\n--zz++\r\n");
    assert_int_equal(entry("k")->expire_ms, T0 + 100000);
    assert_int_not_equal(cas0, cas1);
    assert_int_not_equal(cas1, entry("k")->cas);
}

static void test_cmd_mc_cas(void **state)
{
    assert_string_equal(cas("k", "q", 1), "NOT_FOUND\r\n");
    assert_string_equal(set("k", 3, 0, "a"), "STORED\r\n");
    uint64_t unique = entry("k")->cas;
    assert_string_equal(cas("k", "q", unique + 1000), "EXISTS\r\n");
    assert_string_equal(get("k"), "VALUE k 3 1\r\na\r\n");
    assert_string_equal(cas("k", "b", unique), "STORED\r\n");
    assert_string_equal(get("k"), "VALUE k 0 1\r\nb\r\n");
    /* the unique changed, so the same cas now fails */
    assert_string_equal(cas("k", "c", unique), "EXISTS\r\n");
}

static void test_cmd_mc_delete(void **state)
{
    struct mc_request r = req(MC_DELETE, "k");
    assert_string_equal(run(cmd_mc_delete, &r), "NOT_FOUND\r\n");
    set("k", 0, 0, "v");
    assert_string_equal(run(cmd_mc_delete, &r), "DELETED\r\n");
    assert_string_equal(run(cmd_mc_delete, &r), "NOT_FOUND\r\n");
    assert_string_equal(get("k"), "");
}

static void test_cmd_mc_touch_and_gat(void **state)
{
    assert_string_equal(touch(cmd_mc_touch, MC_TOUCH, "k", 100), "NOT_FOUND\r\n");
    assert_string_equal(touch(cmd_mc_gat, MC_GAT, "k", 100), "");
    set("k", 7, 0, "v");
    uint64_t unique = entry("k")->cas;
    assert_string_equal(touch(cmd_mc_touch, MC_TOUCH, "k", 100), "TOUCHED\r\n");
    assert_int_equal(entry("k")->expire_ms, T0 + 100000);
    assert_int_equal(entry("k")->cas, unique); /* touch keeps the cas */
    assert_string_equal(touch(cmd_mc_gat, MC_GAT, "k", 200), "VALUE k 7 1\r\nv\r\n");
    assert_int_equal(entry("k")->expire_ms, T0 + 200000);
    char expect[64];
    snprintf(expect, sizeof expect, "VALUE k 7 1 %llu\r\nv\r\n", (unsigned long long)unique);
    assert_string_equal(touch(cmd_mc_gats, MC_GATS, "k", 0), expect);
    assert_int_equal(entry("k")->expire_ms, 0);
    /* gat with a past exptime serves the value once */
    assert_string_equal(touch(cmd_mc_gat, MC_GAT, "k", -1), "VALUE k 7 1\r\nv\r\n");
    assert_string_equal(get("k"), "");
    set("k", 0, 0, "v");
    assert_string_equal(touch(cmd_mc_touch, MC_TOUCH, "k", -1), "TOUCHED\r\n");
    assert_string_equal(get("k"), "");
}

static void test_cmd_mc_exptime_rules(void **state)
{
    assert_int_equal(cmd_mc_expire_ms(0, T0), 0);
    assert_int_equal(cmd_mc_expire_ms(1, T0), T0 + 1000);
    assert_int_equal(cmd_mc_expire_ms(2592000, T0), T0 + 2592000000LL);
    assert_int_equal(cmd_mc_expire_ms(2592001, T0), 2592001000LL); /* absolute, long past */
    assert_int_equal(cmd_mc_expire_ms(1700000100, T0), 1700000100000LL);
    assert_true(cmd_mc_expire_ms(-1, T0) > 0 && cmd_mc_expire_ms(-1, T0) <= T0);
    assert_int_equal(cmd_mc_expire_ms(INT64_MAX, T0), INT64_MAX);

    assert_string_equal(set("rel", 0, 10, "v"), "STORED\r\n");
    assert_string_equal(set("abs", 0, 1700000020, "v"), "STORED\r\n");
    assert_string_equal(set("past", 0, 2592001, "v"), "STORED\r\n");
    assert_string_equal(get("past"), "");
    assert_string_equal(set("neg", 0, 0, "old"), "STORED\r\n");
    assert_string_equal(set("neg", 0, -1, "v"), "STORED\r\n"); /* stored, and gone at once */
    assert_string_equal(get("neg"), "");
    assert_string_equal(storage(cmd_mc_add, MC_ADD, "neg", 0, -1, "v", false), "STORED\r\n");
    assert_string_equal(get("neg"), "");
    store_tick(&st, T0 + 9999);
    assert_string_equal(get("rel"), "VALUE rel 0 1\r\nv\r\n");
    store_tick(&st, T0 + 10000);
    assert_string_equal(get("rel"), "");
    assert_string_equal(get("abs"), "VALUE abs 0 1\r\nv\r\n");
    store_tick(&st, T0 + 20000);
    assert_string_equal(get("abs"), "");
}

static void test_cmd_mc_incr_decr(void **state)
{
    assert_string_equal(arith(true, "n", 1, false), "NOT_FOUND\r\n");
    assert_string_equal(arith(false, "n", 1, false), "NOT_FOUND\r\n");
    set("n", 3, 100, "99");
    assert_string_equal(arith(true, "n", 1, false), "100\r\n");
    assert_string_equal(get("n"), "VALUE n 3 3\r\n100\r\n"); /* flags kept */
    assert_int_equal(entry("n")->expire_ms, T0 + 100000);    /* exptime kept */
    assert_string_equal(arith(false, "n", 1000, false), "0\r\n");
    /* shorter results are padded to the old length, as memcached does */
    assert_string_equal(get("n"), "VALUE n 3 3\r\n0  \r\n");
    set("n", 5, 0, "10");
    assert_string_equal(arith(false, "n", 5, false), "5\r\n");
    assert_string_equal(get("n"), "VALUE n 5 2\r\n5 \r\n");
    /* incr wraps at 2^64 */
    assert_string_equal(arith(true, "n", 18446744073709551615ull, false), "4\r\n");
    set("m", 0, 0, "18446744073709551615");
    assert_string_equal(arith(true, "m", 2, false), "1\r\n");
    uint64_t before = entry("m")->cas;
    assert_string_equal(arith(true, "m", 1, false), "2\r\n");
    assert_int_not_equal(entry("m")->cas, before);
}

static void test_cmd_mc_incr_reads_numbers_as_memcached(void **state)
{
    const char *non_numeric = "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
    const char *bad[] = {"abc", " 12x", "-5", "", "18446744073709551616", "x1", "1.5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        set("n", 0, 0, bad[i]);
        assert_string_equal(arith(true, "n", 1, false), non_numeric);
    }
    const struct {
        const char *value;
        const char *reply;
        const char *stored;
    } good[] = {
        {"12 ab", "13\r\n", "13   "}, {"-0", "1\r\n", "1 "},   {"+5", "6\r\n", "6 "},
        {" 7", "8\r\n", "8 "},        {"007", "8\r\n", "8  "}, {"0", "1\r\n", "1"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        set("n", 0, 0, good[i].value);
        assert_string_equal(arith(true, "n", 1, false), good[i].reply);
        struct table_entry *e = entry("n");
        assert_int_equal(e->val_len, strlen(good[i].stored));
        assert_memory_equal(table_entry_val(e), good[i].stored, e->val_len);
    }
}

static void test_cmd_mc_noreply_writes_nothing(void **state)
{
    assert_string_equal(storage(cmd_mc_set, MC_SET, "k", 0, 0, "1", true), "");
    assert_string_equal(get("k"), "VALUE k 0 1\r\n1\r\n");
    assert_string_equal(storage(cmd_mc_add, MC_ADD, "k", 0, 0, "2", true), "");
    assert_string_equal(storage(cmd_mc_replace, MC_REPLACE, "x", 0, 0, "2", true), "");
    assert_string_equal(storage(cmd_mc_append, MC_APPEND, "k", 0, 0, "2", true), "");
    assert_string_equal(storage(cmd_mc_prepend, MC_PREPEND, "k", 0, 0, "0", true), "");
    assert_string_equal(get("k"), "VALUE k 0 3\r\n012\r\n");
    assert_string_equal(arith(true, "k", 1, true), "");
    assert_string_equal(get("k"), "VALUE k 0 3\r\n13 \r\n");
    set("s", 0, 0, "abc");
    assert_string_equal(arith(true, "s", 1, true), ""); /* even the error */
    struct mc_request r = req(MC_TOUCH, "k");
    r.exptime = 10;
    r.noreply = true;
    assert_string_equal(run(cmd_mc_touch, &r), "");
    assert_int_equal(entry("k")->expire_ms, T0 + 10000);
    r = req(MC_DELETE, "k");
    r.noreply = true;
    assert_string_equal(run(cmd_mc_delete, &r), "");
    assert_string_equal(get("k"), "");
    r = req(MC_CAS, "k");
    r.noreply = true;
    assert_string_equal(run(cmd_mc_cas, &r), "");
}

static void test_cmd_mc_flush_all_shard(void **state)
{
    set("a", 0, 0, "1");
    set("b", 0, 0, "2");
    struct mc_request r = req(MC_FLUSH_ALL, "");
    r.nkeys = 0;
    assert_string_equal(run(cmd_mc_flush_all_shard, &r), "");
    assert_int_equal(store_count(&st), 0);
    assert_string_equal(get("a"), "");
}

static void test_cmd_mc_limits_and_oom(void **state)
{
    store_fini(&st);
    buf_fini(&out);
    struct store_config cfg = {
        .maxmemory = 64 * 1024, .policy = STORE_NOEVICTION, .max_val_len = 1000};
    assert_int_equal(setup_with(&cfg), 0);
    char big[1002];
    memset(big, 'b', 1001);
    big[1001] = '\0';
    assert_string_equal(set("big", 0, 0, big), "SERVER_ERROR object too large for cache\r\n");
    big[1000] = '\0';
    assert_string_equal(set("big", 0, 0, big), "STORED\r\n");
    assert_string_equal(storage(cmd_mc_append, MC_APPEND, "big", 0, 0, "x", false),
                        "SERVER_ERROR object too large for cache\r\n");
    assert_string_equal(storage(cmd_mc_prepend, MC_PREPEND, "big", 0, 0, "x", false),
                        "SERVER_ERROR object too large for cache\r\n");
    assert_string_equal(set("victim", 0, 0, "old"), "STORED\r\n");
    st.maxmemory = store_used_bytes(&st) - 1; /* no room left */
    const char *oom = "SERVER_ERROR out of memory storing object\r\n";
    assert_string_equal(set("new", 0, 0, "v"), oom);
    assert_string_equal(storage(cmd_mc_add, MC_ADD, "new", 0, 0, "v", false), oom);
    assert_string_equal(cas("victim", "v", 1), oom);
    /* a failed set does not leave the old value behind */
    assert_string_equal(set("victim", 0, 0, "newer"), oom);
    assert_string_equal(get("victim"), "");
    get("big"); /* reads still work */
    assert_int_equal(out.len, strlen("VALUE big 0 1000\r\n") + 1000 + 2);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_cmd_mc_set_get_gets),
        T(test_cmd_mc_shares_keys_with_redis),
        T(test_cmd_mc_add_replace),
        T(test_cmd_mc_append_prepend_keep_flags_and_exptime),
        T(test_cmd_mc_cas),
        T(test_cmd_mc_delete),
        T(test_cmd_mc_touch_and_gat),
        T(test_cmd_mc_exptime_rules),
        T(test_cmd_mc_incr_decr),
        T(test_cmd_mc_incr_reads_numbers_as_memcached),
        T(test_cmd_mc_noreply_writes_nothing),
        T(test_cmd_mc_flush_all_shard),
        T(test_cmd_mc_limits_and_oom),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
