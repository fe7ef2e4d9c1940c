/* test_cmd_keys.c: Redis keyspace commands and the per-shard halves of
 * KEYS, SCAN, RANDOMKEY, DBSIZE and FLUSHALL, driven directly on a fresh
 * store; replies are compared byte for byte with redis-server 7.0's. Also
 * the glob matcher behind KEYS and SCAN MATCH. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cmd_keys.h"
#include "cmd_string.h"
#include "glob.h"
#include "keyhash.h"
#include "store.h"

#define T0 1700000000000LL /* a fixed "now", unix ms */
#define MAX_ARGS 16

static struct store st;
static struct buf out;
static int proto;

static int setup(void **state)
{
    struct store_config cfg = {.seed = 3};
    if (store_init(&st, &cfg) != 0)
        return -1;
    store_tick(&st, T0);
    buf_init(&out);
    proto = 2;
    return 0;
}

static int teardown(void **state)
{
    store_fini(&st);
    buf_fini(&out);
    return 0;
}

/* Runs h on argv and returns the reply (NUL-terminated). */
static const char *run_v(cmd_handler *h, uint32_t argc, const char *const *argv)
{
    struct resp_arg args[MAX_ARGS];
    for (uint32_t i = 0; i < argc; i++) {
        args[i].ptr = argv[i];
        args[i].len = (uint32_t)strlen(argv[i]);
    }
    struct req_result res = {0};
    struct cmd_ctx c = {
        .res = &res, .store = &st, .out = &out, .proto = proto, .argc = argc, .argv = args};
    if (argc > 1)
        c.hash = keyhash(args[1].ptr, args[1].len);
    buf_clear(&out);
    h(&c);
    buf_append(&out, "", 1);
    out.len--;
    return out.data;
}

/* Runs h on a command line split at single spaces. */
static const char *run(cmd_handler *h, const char *line)
{
    static char copy[1024];
    const char *argv[MAX_ARGS];
    uint32_t argc = 0;
    snprintf(copy, sizeof copy, "%s", line);
    for (char *p = copy, *sp; argc < MAX_ARGS; p = sp + 1) {
        argv[argc++] = p;
        sp = strchr(p, ' ');
        if (!sp)
            break;
        *sp = '\0';
    }
    return run_v(h, argc, argv);
}

#define expect(h, line, reply) assert_string_equal(run(h, line), reply)

static void set_key(const char *key)
{
    const char *argv[] = {"SET", key, "v"};
    assert_string_equal(run_v(cmd_set, 3, argv), "+OK\r\n");
}

static void test_cmd_keys_del_exists_type(void **state)
{
    expect(cmd_exists, "EXISTS k", ":0\r\n");
    expect(cmd_type, "TYPE k", "+none\r\n");
    expect(cmd_del, "DEL k", ":0\r\n");
    set_key("k");
    expect(cmd_exists, "EXISTS k", ":1\r\n");
    expect(cmd_type, "TYPE k", "+string\r\n");
    expect(cmd_del, "UNLINK k", ":1\r\n");
    expect(cmd_del, "DEL k", ":0\r\n");
    expect(cmd_exists, "EXISTS k", ":0\r\n");
}

static void test_cmd_keys_expired_key_is_gone_everywhere(void **state)
{
    expect(cmd_set, "SET k v PX 100", "+OK\r\n");
    store_tick(&st, T0 + 100);
    expect(cmd_exists, "EXISTS k", ":0\r\n");
    expect(cmd_set, "SET k v PX 100", "+OK\r\n");
    store_tick(&st, T0 + 200);
    expect(cmd_type, "TYPE k", "+none\r\n");
    expect(cmd_set, "SET k v PX 100", "+OK\r\n");
    store_tick(&st, T0 + 300);
    expect(cmd_ttl, "TTL k", ":-2\r\n");
    expect(cmd_set, "SET k v PX 100", "+OK\r\n");
    store_tick(&st, T0 + 400);
    expect(cmd_del, "DEL k", ":0\r\n");
    expect(cmd_set, "SET k v PX 100", "+OK\r\n");
    store_tick(&st, T0 + 500);
    expect(cmd_expire, "EXPIRE k 100", ":0\r\n");
    expect(cmd_persist, "PERSIST k", ":0\r\n");
    expect(cmd_keys_shard, "KEYS *", "*0\r\n");
    struct store_stats s;
    store_read_stats(&st, &s);
    assert_int_equal(s.expired_keys, 5);
}

static void test_cmd_keys_expire_family(void **state)
{
    set_key("k");
    expect(cmd_expire, "EXPIRE k 100", ":1\r\n");
    expect(cmd_pttl, "PTTL k", ":100000\r\n");
    expect(cmd_pexpire, "PEXPIRE k 1500", ":1\r\n");
    expect(cmd_pttl, "PTTL k", ":1500\r\n");
    expect(cmd_expireat, "EXPIREAT k 1700000050", ":1\r\n");
    expect(cmd_pttl, "PTTL k", ":50000\r\n");
    expect(cmd_pexpireat, "PEXPIREAT k 1700000000777", ":1\r\n");
    expect(cmd_pttl, "PTTL k", ":777\r\n");
    expect(cmd_pexpireat, "PEXPIREAT k 9223372036854775807", ":1\r\n");
    expect(cmd_ttl, "TTL k", ":9223370336854776\r\n");
    expect(cmd_expire, "EXPIRE missing 100", ":0\r\n");
    expect(cmd_exists, "EXISTS missing", ":0\r\n");
}

static void test_cmd_keys_expire_in_the_past_deletes(void **state)
{
    const char *cases[] = {
        "EXPIRE k 0",    "EXPIRE k -5",           "PEXPIRE k 0",    "EXPIREAT k 1",
        "PEXPIREAT k 0", "EXPIREAT k 1700000000", "PEXPIRE k -100", "EXPIRE k -9223372036854775"};
    cmd_handler *handlers[] = {cmd_expire,    cmd_expire,   cmd_pexpire, cmd_expireat,
                               cmd_pexpireat, cmd_expireat, cmd_pexpire, cmd_expire};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        set_key("k");
        expect(handlers[i], cases[i], ":1\r\n");
        expect(cmd_exists, "EXISTS k", ":0\r\n");
    }
}

static void test_cmd_keys_expire_options(void **state)
{
    set_key("k");
    expect(cmd_expire, "EXPIRE k 100 XX", ":0\r\n"); /* no TTL yet */
    expect(cmd_expire, "EXPIRE k 100 GT", ":0\r\n"); /* none counts as infinite */
    expect(cmd_expire, "EXPIRE k 100 LT", ":1\r\n");
    expect(cmd_expire, "EXPIRE k 100 NX", ":0\r\n");
    expect(cmd_expire, "EXPIRE k 200 XX", ":1\r\n");
    expect(cmd_expire, "EXPIRE k 50 GT", ":0\r\n");
    expect(cmd_expire, "EXPIRE k 200 GT", ":0\r\n"); /* equal is not greater */
    expect(cmd_expire, "EXPIRE k 300 gt", ":1\r\n");
    expect(cmd_expire, "EXPIRE k 300 LT", ":0\r\n");
    expect(cmd_expire, "EXPIRE k 200 LT", ":1\r\n");
    expect(cmd_ttl, "TTL k", ":200\r\n");
    expect(cmd_expire, "EXPIRE k 100 XX LT", ":1\r\n");
    expect(cmd_expire, "EXPIRE k 100 nx nx", ":0\r\n");
    expect(cmd_ttl, "TTL k", ":100\r\n");
    expect(cmd_persist, "PERSIST k", ":1\r\n");
    expect(cmd_expire, "EXPIRE k 10 NX", ":1\r\n");
    expect(cmd_ttl, "TTL k", ":10\r\n");
}

static void test_cmd_keys_expire_errors(void **state)
{
    set_key("k");
    expect(cmd_expire, "EXPIRE k 100 NX XX",
           "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n");
    expect(cmd_expire, "EXPIRE k 100 NX GT",
           "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n");
    expect(cmd_expire, "EXPIRE k 100 GT LT",
           "-ERR GT and LT options at the same time are not compatible\r\n");
    expect(cmd_expire, "EXPIRE k 100 FOO", "-ERR Unsupported option FOO\r\n");
    expect(cmd_expire, "EXPIRE k 100 nx foo", "-ERR Unsupported option foo\r\n");
    /* options are checked before the time */
    expect(cmd_expire, "EXPIRE k abc FOO", "-ERR Unsupported option FOO\r\n");
    const char *crlf[] = {"EXPIRE", "k", "100", "A\r\nB"};
    assert_string_equal(run_v(cmd_expire, 4, crlf), "-ERR Unsupported option A  B\r\n");
    expect(cmd_expire, "EXPIRE k abc", "-ERR value is not an integer or out of range\r\n");
    expect(cmd_expire, "EXPIRE missing abc", "-ERR value is not an integer or out of range\r\n");
    expect(cmd_expire, "EXPIRE k 9223372036854776",
           "-ERR invalid expire time in 'expire' command\r\n");
    expect(cmd_expire, "EXPIRE k -9223372036854776",
           "-ERR invalid expire time in 'expire' command\r\n");
    /* in range as milliseconds, but not once now is added */
    expect(cmd_expire, "EXPIRE k 9223372036854775",
           "-ERR invalid expire time in 'expire' command\r\n");
    expect(cmd_pexpire, "PEXPIRE k 9223372036854775807",
           "-ERR invalid expire time in 'pexpire' command\r\n");
    expect(cmd_expireat, "EXPIREAT k 9223372036854776",
           "-ERR invalid expire time in 'expireat' command\r\n");
    expect(cmd_ttl, "TTL k", ":-1\r\n");
}

static void test_cmd_keys_ttl_rounds_as_redis(void **state)
{
    expect(cmd_ttl, "TTL missing", ":-2\r\n");
    expect(cmd_pttl, "PTTL missing", ":-2\r\n");
    set_key("k");
    expect(cmd_ttl, "TTL k", ":-1\r\n");
    expect(cmd_pttl, "PTTL k", ":-1\r\n");
    expect(cmd_pexpire, "PEXPIRE k 1499", ":1\r\n");
    expect(cmd_ttl, "TTL k", ":1\r\n");
    expect(cmd_pexpire, "PEXPIRE k 1500", ":1\r\n");
    expect(cmd_ttl, "TTL k", ":2\r\n");
    expect(cmd_pexpire, "PEXPIRE k 499", ":1\r\n");
    expect(cmd_ttl, "TTL k", ":0\r\n");
    expect(cmd_expire, "EXPIRE k 10", ":1\r\n");
    store_tick(&st, T0 + 3000);
    expect(cmd_ttl, "TTL k", ":7\r\n");
    expect(cmd_pttl, "PTTL k", ":7000\r\n");
    store_tick(&st, T0 + 9999);
    expect(cmd_pttl, "PTTL k", ":1\r\n");
    store_tick(&st, T0 + 10000);
    expect(cmd_pttl, "PTTL k", ":-2\r\n");
}

static void test_cmd_keys_persist(void **state)
{
    expect(cmd_persist, "PERSIST k", ":0\r\n");
    set_key("k");
    expect(cmd_persist, "PERSIST k", ":0\r\n");
    expect(cmd_expire, "EXPIRE k 100", ":1\r\n");
    expect(cmd_persist, "PERSIST k", ":1\r\n");
    expect(cmd_ttl, "TTL k", ":-1\r\n");
    store_tick(&st, T0 + 1000000);
    expect(cmd_exists, "EXISTS k", ":1\r\n");
}

static void test_cmd_keys_dbsize_and_flushall(void **state)
{
    expect(cmd_dbsize_shard, "DBSIZE", ":0\r\n");
    set_key("a");
    set_key("b");
    expect(cmd_set, "SET c v EX 10", "+OK\r\n");
    expect(cmd_dbsize_shard, "DBSIZE", ":3\r\n");
    expect(cmd_flushall_shard, "FLUSHALL FOO", "-ERR syntax error\r\n");
    expect(cmd_flushall_shard, "FLUSHALL SYNC ASYNC", "-ERR syntax error\r\n");
    expect(cmd_dbsize_shard, "DBSIZE", ":3\r\n");
    expect(cmd_flushall_shard, "FLUSHALL", "+OK\r\n");
    expect(cmd_dbsize_shard, "DBSIZE", ":0\r\n");
    expect(cmd_exists, "EXISTS a", ":0\r\n");
    set_key("a");
    expect(cmd_flushall_shard, "FLUSHDB async", "+OK\r\n");
    expect(cmd_dbsize_shard, "DBSIZE", ":0\r\n");
    set_key("a");
    expect(cmd_flushall_shard, "FLUSHALL SYNC", "+OK\r\n");
    expect(cmd_dbsize_shard, "DBSIZE", ":0\r\n");
}

/* Parses an array reply of bulk strings into a sorted, comma-joined list. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char *sorted_keys(const char *reply, size_t len, size_t *count)
{
    static char joined[65536];
    static char copy[65536];
    char *items[4096];
    assert_true(len < sizeof copy);
    memcpy(copy, reply, len);
    copy[len] = '\0';
    assert_int_equal(copy[0], '*');
    char *p = copy + 1;
    long n = strtol(p, &p, 10);
    assert_true(n >= 0 && n <= 4096);
    p += 2;
    for (long i = 0; i < n; i++) {
        assert_int_equal(*p, '$');
        long l = strtol(p + 1, &p, 10);
        p += 2;
        items[i] = p;
        p[l] = '\0';
        p += l + 2;
    }
    assert_ptr_equal(p, copy + len);
    qsort(items, (size_t)n, sizeof items[0], cmp_str);
    joined[0] = '\0';
    for (long i = 0; i < n; i++) {
        if (i)
            strcat(joined, ",");
        strcat(joined, items[i]);
    }
    *count = (size_t)n;
    return joined;
}

static const char *keys_of(const char *pattern)
{
    const char *argv[] = {"KEYS", pattern};
    run_v(cmd_keys_shard, 2, argv);
    size_t n;
    return sorted_keys(out.data, out.len, &n);
}

static void test_cmd_keys_keys_matches_patterns(void **state)
{
    assert_string_equal(keys_of("*"), "");
    const char *names[] = {"hello",  "hallo",   "hxllo", "hllo", "heeeello",
                           "user:1", "user:22", "a*b",   "x"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        set_key(names[i]);
    expect(cmd_set, "SET gone v PX 10", "+OK\r\n");
    expect(cmd_set, "SET hzllo v PX 10", "+OK\r\n");
    st.now_ms = T0 + 10; /* the clock alone: no sweep removes them */
    assert_string_equal(keys_of("*"), "a*b,hallo,heeeello,hello,hllo,hxllo,user:1,user:22,x");
    assert_string_equal(keys_of("h?llo"), "hallo,hello,hxllo");
    assert_string_equal(keys_of("h*llo"), "hallo,heeeello,hello,hllo,hxllo");
    assert_string_equal(keys_of("h[ae]llo"), "hallo,hello");
    assert_string_equal(keys_of("h[^e]llo"), "hallo,hxllo");
    assert_string_equal(keys_of("h[a-b]llo"), "hallo");
    assert_string_equal(keys_of("user:?"), "user:1");
    assert_string_equal(keys_of("a\\*b"), "a*b");
    assert_string_equal(keys_of("nothing*"), "");
    assert_string_equal(keys_of("["), "");
    /* expired keys are never listed, and KEYS does not drop them */
    assert_int_equal(store_count(&st), 11);
}

static void test_cmd_keys_randomkey(void **state)
{
    expect(cmd_randomkey_shard, "RANDOMKEY", "$-1\r\n");
    proto = 3;
    expect(cmd_randomkey_shard, "RANDOMKEY", "_\r\n");
    proto = 2;
    expect(cmd_set, "SET gone v PX 10", "+OK\r\n");
    set_key("only");
    store_tick(&st, T0 + 10);
    for (int i = 0; i < 20; i++)
        expect(cmd_randomkey_shard, "RANDOMKEY", "$4\r\nonly\r\n");
    /* with many keys, different ones come out */
    char key[16];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "k%d", i);
        set_key(key);
    }
    char first[64];
    snprintf(first, sizeof first, "%s", run(cmd_randomkey_shard, "RANDOMKEY"));
    bool differs = false;
    for (int i = 0; i < 50 && !differs; i++)
        differs = strcmp(run(cmd_randomkey_shard, "RANDOMKEY"), first) != 0;
    assert_true(differs);
}

/* Runs SCAN from `cursor` with extra options; returns the next cursor and
 * appends the keys (comma-joined) to acc. */
static uint64_t scan_step(uint64_t cursor, const char *opts, char *acc, size_t *total)
{
    char line[256];
    snprintf(line, sizeof line, "SCAN %llu%s%s", (unsigned long long)cursor, *opts ? " " : "",
             opts);
    run(cmd_scan_shard, line);
    assert_memory_equal(out.data, "*2\r\n$", 5);
    char *p = out.data + 5;
    long clen = strtol(p, &p, 10);
    p += 2;
    char num[32];
    memcpy(num, p, (size_t)clen);
    num[clen] = '\0';
    uint64_t next = strtoull(num, NULL, 10);
    p += clen + 2;
    size_t n;
    const char *keys = sorted_keys(p, out.len - (size_t)(p - out.data), &n);
    if (n) {
        if (*acc)
            strcat(acc, ",");
        strcat(acc, keys);
    }
    *total += n;
    return next;
}

static void test_cmd_keys_scan_visits_every_key_once(void **state)
{
    char key[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        set_key(key);
    }
    static char acc[65536];
    acc[0] = '\0';
    size_t total = 0;
    int calls = 0;
    uint64_t cursor = 0;
    do {
        cursor = scan_step(cursor, "COUNT 50", acc, &total);
        calls++;
    } while (cursor != 0 && calls < 10000);
    assert_int_equal(cursor, 0);
    assert_int_equal(total, 1000);
    assert_true(calls > 5); /* COUNT bounds each step */
    /* every key exactly once: sort the union and compare */
    char *items[1000];
    size_t n = 0;
    for (char *tok = strtok(acc, ","); tok; tok = strtok(NULL, ","))
        items[n++] = tok;
    assert_int_equal(n, 1000);
    qsort(items, n, sizeof items[0], cmp_str);
    for (size_t i = 1; i < n; i++)
        assert_true(strcmp(items[i - 1], items[i]) < 0);
}

static void test_cmd_keys_scan_match_and_type(void **state)
{
    set_key("apple");
    set_key("apricot");
    set_key("banana");
    expect(cmd_set, "SET avocado v PX 10", "+OK\r\n");
    st.now_ms = T0 + 10; /* expired, but not swept */
    static char acc[4096];
    size_t total = 0;
    acc[0] = '\0';
    uint64_t cursor = 0;
    do {
        cursor = scan_step(cursor, "MATCH a* COUNT 1000", acc, &total);
    } while (cursor != 0);
    assert_string_equal(acc, "apple,apricot");
    acc[0] = '\0';
    total = 0;
    cursor = 0;
    do {
        cursor = scan_step(cursor, "TYPE String", acc, &total);
    } while (cursor != 0);
    assert_int_equal(total, 3);
    acc[0] = '\0';
    total = 0;
    cursor = 0;
    do {
        cursor = scan_step(cursor, "TYPE hash", acc, &total);
    } while (cursor != 0);
    assert_int_equal(total, 0);
    acc[0] = '\0';
    total = 0;
    do {
        cursor = scan_step(cursor, "MATCH a* COUNT 5 TYPE string MATCH b*", acc, &total);
    } while (cursor != 0);
    assert_string_equal(acc, "banana");
    expect(cmd_scan_shard, "SCAN 0 MATCH nothing", "*2\r\n$1\r\n0\r\n*0\r\n");
}

static void test_cmd_keys_scan_errors(void **state)
{
    const char *syntax = "-ERR syntax error\r\n";
    expect(cmd_scan_shard, "SCAN 0 COUNT 0", syntax);
    expect(cmd_scan_shard, "SCAN 0 COUNT -1", syntax);
    expect(cmd_scan_shard, "SCAN 0 COUNT abc", "-ERR value is not an integer or out of range\r\n");
    expect(cmd_scan_shard, "SCAN 0 COUNT 9223372036854775808",
           "-ERR value is not an integer or out of range\r\n");
    expect(cmd_scan_shard, "SCAN 0 COUNT", syntax);
    expect(cmd_scan_shard, "SCAN 0 MATCH", syntax);
    expect(cmd_scan_shard, "SCAN 0 TYPE", syntax);
    expect(cmd_scan_shard, "SCAN 0 FOO bar", syntax);
    expect(cmd_scan_shard, "SCAN abc", "-ERR invalid cursor\r\n");
    expect(cmd_scan_shard, "SCAN -1", "-ERR invalid cursor\r\n");
    expect(cmd_scan_shard, "SCAN 18446744073709551616", "-ERR invalid cursor\r\n");
    expect(cmd_scan_shard, "SCAN 0", "*2\r\n$1\r\n0\r\n*0\r\n");
}

/* ---- glob ---- */

static bool match(const char *pat, const char *str)
{
    return glob_match(pat, strlen(pat), str, strlen(str));
}

static void test_glob_literals_and_wildcards(void **state)
{
    assert_true(match("", ""));
    assert_false(match("", "a"));
    assert_true(match("abc", "abc"));
    assert_false(match("abc", "abd"));
    assert_false(match("abc", "ab"));
    assert_true(match("*", ""));
    assert_true(match("*", "anything"));
    assert_true(match("a*", "a"));
    assert_true(match("a*c", "abbbc"));
    assert_false(match("a*c", "abbbd"));
    assert_true(match("*a*b*", "xxaxxbxx"));
    assert_false(match("*a*b*", "xxbxxaxx"));
    assert_true(match("**a**", "a"));
    assert_true(match("?", "x"));
    assert_false(match("?", ""));
    assert_false(match("?", "xy"));
    assert_true(match("a?c", "abc"));
    assert_true(match("*?", "a"));
    assert_false(match("*?", ""));
    assert_true(match("Abc", "Abc"));
    assert_false(match("abc", "ABC")); /* case matters */
}

static void test_glob_classes(void **state)
{
    assert_true(match("[abc]", "b"));
    assert_false(match("[abc]", "d"));
    assert_true(match("[^abc]", "d"));
    assert_false(match("[^abc]", "a"));
    assert_true(match("[a-c]x", "bx"));
    assert_false(match("[a-c]x", "dx"));
    assert_true(match("[c-a]", "b")); /* reversed ranges are swapped */
    assert_true(match("[0-9][0-9]", "42"));
    assert_true(match("[\\]]", "]"));
    assert_true(match("[\\-]", "-"));
    assert_false(match("[]", "a")); /* ']' right away closes an empty class */
    assert_true(match("[^]", "a"));
    assert_true(match("[abc", "b")); /* an unclosed class runs to the end */
    assert_false(match("[", "["));
    assert_true(match("a[xy]*", "ayzzz"));
    /* Redis's quirk: "a-]" is a range, and the class then runs on */
    assert_false(match("[a-]", "-"));
    assert_true(match("[a-]x", "]"));
}

static void test_glob_escapes(void **state)
{
    assert_true(match("\\*", "*"));
    assert_false(match("\\*", "a"));
    assert_true(match("\\?", "?"));
    assert_false(match("\\?", "x"));
    assert_true(match("a\\[b", "a[b"));
    assert_true(match("\\a", "a"));
    assert_true(match("ab\\", "ab\\")); /* a trailing backslash is literal */
}

static void test_glob_binary_and_hostile_patterns(void **state)
{
    assert_true(glob_match("a?c", 3, "a\0c", 3));
    assert_true(glob_match("*\0", 2, "xyz\0", 4));
    /* many stars against a long non-matching string stays fast (no blowup) */
    char pat[64], str[4096];
    for (int i = 0; i < 31; i++) {
        pat[2 * i] = '*';
        pat[2 * i + 1] = 'a';
    }
    pat[62] = 'b';
    pat[63] = '\0';
    memset(str, 'a', sizeof str - 1);
    str[sizeof str - 1] = '\0';
    assert_false(match(pat, str));
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_cmd_keys_del_exists_type),
        T(test_cmd_keys_expired_key_is_gone_everywhere),
        T(test_cmd_keys_expire_family),
        T(test_cmd_keys_expire_in_the_past_deletes),
        T(test_cmd_keys_expire_options),
        T(test_cmd_keys_expire_errors),
        T(test_cmd_keys_ttl_rounds_as_redis),
        T(test_cmd_keys_persist),
        T(test_cmd_keys_dbsize_and_flushall),
        T(test_cmd_keys_keys_matches_patterns),
        T(test_cmd_keys_randomkey),
        T(test_cmd_keys_scan_visits_every_key_once),
        T(test_cmd_keys_scan_match_and_type),
        T(test_cmd_keys_scan_errors),
        cmocka_unit_test(test_glob_literals_and_wildcards),
        cmocka_unit_test(test_glob_classes),
        cmocka_unit_test(test_glob_escapes),
        cmocka_unit_test(test_glob_binary_and_hostile_patterns),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
