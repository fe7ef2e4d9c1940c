/* test_store.c: the shard keyspace (store.h) on the real table: accounting,
 * lazy and active expiry, cas, in-place append, and eviction under a tiny
 * maxmemory for every policy, and values beyond RAM (cold entries) with a
 * fake log. The clock is set by hand through store_tick. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dvv.h"
#include "keyhash.h"
#include "seg.h"
#include "store.h"

#define T0 1700000000000LL /* a fixed "now", unix ms */
#define VAL_LEN 100

static struct store st;

static int setup_with(const struct store_config *cfg)
{
    if (store_init(&st, cfg) != 0)
        return -1;
    store_tick(&st, T0);
    return 0;
}

static int setup(void **state)
{
    struct store_config cfg = {.seed = 42};
    return setup_with(&cfg);
}

static int teardown(void **state)
{
    store_fini(&st);
    return 0;
}

static int put_ttl(const char *key, const char *val, int64_t expire_ms)
{
    return store_put(&st, key, (uint32_t)strlen(key), keyhash(key, strlen(key)), val, strlen(val),
                     expire_ms, 0, NULL);
}

static int put(const char *key, const char *val)
{
    return put_ttl(key, val, 0);
}

static struct table_entry *get(const char *key)
{
    return store_lookup(&st, key, (uint32_t)strlen(key), keyhash(key, strlen(key)));
}

static bool del(const char *key)
{
    return store_delete(&st, key, (uint32_t)strlen(key), keyhash(key, strlen(key)));
}

static void assert_value(const char *key, const char *val)
{
    struct table_entry *e = get(key);
    assert_non_null(e);
    assert_int_equal(e->val_len, strlen(val));
    assert_memory_equal(table_entry_val(e), val, strlen(val));
}

static void key_name(char *buf, size_t n, const char *prefix, int i)
{
    snprintf(buf, n, "%s:%d", prefix, i);
}

static const char *filler(void)
{
    static char v[VAL_LEN + 1];
    memset(v, 'x', VAL_LEN);
    return v;
}

static void test_store_put_lookup_delete(void **state)
{
    assert_null(get("a"));
    assert_int_equal(put("a", "1"), 0);
    assert_int_equal(put("b", "22"), 0);
    assert_value("a", "1");
    assert_value("b", "22");
    assert_int_equal(store_count(&st), 2);
    assert_int_equal(put("a", "333"), 0);
    assert_value("a", "333");
    assert_int_equal(store_count(&st), 2);
    assert_true(del("a"));
    assert_false(del("a"));
    assert_null(get("a"));
    assert_int_equal(store_count(&st), 1);
}

static void test_store_counts_hits_and_misses(void **state)
{
    put("k", "v");
    const char *k = "k", *m = "missing";
    assert_non_null(store_lookup_read(&st, k, 1, keyhash(k, 1)));
    assert_null(store_lookup_read(&st, m, 7, keyhash(m, 7)));
    assert_null(store_lookup_read(&st, m, 7, keyhash(m, 7)));
    get("k"); /* write lookups count nothing */
    struct store_stats s;
    store_read_stats(&st, &s);
    assert_int_equal(s.keyspace_hits, 1);
    assert_int_equal(s.keyspace_misses, 2);
    assert_int_equal(s.keys, 1);
}

static void test_store_accounts_used_bytes(void **state)
{
    assert_int_equal(store_used_bytes(&st), table_overhead_bytes(st.table));
    assert_int_equal(put("a", filler()), 0);
    struct table_entry *e = get("a");
    size_t mem_a = table_entry_mem(e);
    assert_true(mem_a >= sizeof *e + 1 + VAL_LEN);
    struct store_stats s;
    store_read_stats(&st, &s);
    assert_int_equal(s.entry_bytes, mem_a);
    assert_int_equal(store_used_bytes(&st), mem_a + table_overhead_bytes(st.table));
    put("b", "x");
    size_t mem_b = table_entry_mem(get("b"));
    store_read_stats(&st, &s);
    assert_int_equal(s.entry_bytes, mem_a + mem_b);
    put("a", "short"); /* replaced: the old entry leaves the count */
    store_read_stats(&st, &s);
    assert_int_equal(s.entry_bytes, table_entry_mem(get("a")) + mem_b);
    del("a");
    del("b");
    store_read_stats(&st, &s);
    assert_int_equal(s.entry_bytes, 0);
    assert_int_equal(store_used_bytes(&st), table_overhead_bytes(st.table));
}

static void test_store_expires_lazily(void **state)
{
    assert_int_equal(put_ttl("t", "v", T0 + 1000), 0);
    assert_int_equal(put("p", "v"), 0);
    struct store_stats s;
    store_read_stats(&st, &s);
    assert_int_equal(s.expires, 1);
    st.now_ms = T0 + 999; /* the clock alone, no sweep */
    assert_non_null(get("t"));
    st.now_ms = T0 + 1000;
    assert_null(get("t"));
    assert_non_null(get("p"));
    store_read_stats(&st, &s);
    assert_int_equal(s.expired_keys, 1);
    assert_int_equal(s.expires, 0);
    assert_int_equal(store_count(&st), 1);
}

static void test_store_put_in_the_past_leaves_no_key(void **state)
{
    put("k", "old");
    struct table_entry *out = (struct table_entry *)1;
    const char *k = "k";
    assert_int_equal(store_put(&st, k, 1, keyhash(k, 1), "v", 1, T0 - 1, 0, &out), 0);
    assert_null(out);
    assert_null(get("k"));
    assert_int_equal(store_count(&st), 0);
}

static void test_store_tick_expires_actively(void **state)
{
    char key[32];
    for (int i = 0; i < 1000; i++) {
        key_name(key, sizeof key, "ttl", i);
        assert_int_equal(put_ttl(key, "v", T0 + 1000 + i), 0);
        key_name(key, sizeof key, "keep", i);
        assert_int_equal(put(key, "v"), 0);
    }
    store_tick(&st, T0 + 500); /* nothing due yet */
    assert_int_equal(store_count(&st), 2000);
    int ticks = 0;
    while (st.stats.expires != 0 && ticks < 1000) {
        store_tick(&st, T0 + 10000);
        ticks++;
    }
    struct store_stats s;
    store_read_stats(&st, &s);
    assert_int_equal(s.expires, 0);
    assert_int_equal(s.expired_keys, 1000);
    assert_int_equal(store_count(&st), 1000);
    assert_true(ticks < 1000);
    for (int i = 0; i < 1000; i++) {
        key_name(key, sizeof key, "keep", i);
        assert_non_null(get(key));
    }
}

static void test_store_tick_keeps_keys_not_yet_due(void **state)
{
    char key[32];
    for (int i = 0; i < 200; i++) {
        key_name(key, sizeof key, "soon", i);
        put_ttl(key, "v", T0 + 1000);
        key_name(key, sizeof key, "later", i);
        put_ttl(key, "v", T0 + 100000);
    }
    for (int i = 0; i < 100; i++)
        store_tick(&st, T0 + 5000);
    for (int i = 0; i < 200; i++) {
        key_name(key, sizeof key, "later", i);
        assert_non_null(get(key));
    }
    /* every "soon" key is gone, swept or on lookup */
    for (int i = 0; i < 200; i++) {
        key_name(key, sizeof key, "soon", i);
        assert_null(get(key));
    }
    assert_int_equal(store_count(&st), 200);
}

static void test_store_cas_changes_on_every_write(void **state)
{
    put("k", "a");
    uint64_t c1 = get("k")->cas;
    put("k", "b");
    uint64_t c2 = get("k")->cas;
    assert_int_not_equal(c1, c2);
    struct table_entry *e = get("k");
    assert_int_equal(store_append(&st, e, keyhash("k", 1), "c", 1, &e), 0);
    assert_int_not_equal(e->cas, c2);
    uint64_t c3 = e->cas;
    /* an expiry change keeps the cas (memcached touch) */
    assert_int_equal(store_set_expire(&st, e, keyhash("k", 1), T0 + 5000, &e), 0);
    assert_int_equal(e->cas, c3);
    assert_int_equal(e->expire_ms, T0 + 5000);
    assert_value("k", "bc");
}

static void test_store_append_grows_in_place(void **state)
{
    put("k", "");
    struct table_entry *e = get("k");
    uint64_t h = keyhash("k", 1);
    char expect[4096];
    size_t len = 0;
    int moves = 0;
    for (int i = 0; i < 1000; i++) {
        struct table_entry *before = e;
        char piece = (char)('a' + i % 26);
        assert_int_equal(store_append(&st, e, h, &piece, 1, &e), 0);
        expect[len++] = piece;
        moves += e != before;
    }
    /* capacity doubles, so 1000 appends move the value only a few times */
    assert_true(moves < 20);
    assert_int_equal(e->val_len, len);
    assert_memory_equal(table_entry_val(get("k")), expect, len);
    struct store_stats s;
    store_read_stats(&st, &s);
    assert_int_equal(s.entry_bytes, table_entry_mem(get("k")));
}

static void test_store_append_respects_max_val_len(void **state)
{
    store_fini(&st);
    struct store_config cfg = {.max_val_len = 10, .max_key_len = 4};
    assert_int_equal(setup_with(&cfg), 0);
    assert_int_equal(put("k", "12345"), 0);
    struct table_entry *e = get("k");
    assert_int_equal(store_append(&st, e, keyhash("k", 1), "678901", 6, NULL), -E2BIG);
    assert_int_equal(store_append(&st, e, keyhash("k", 1), "67890", 5, NULL), 0);
    assert_value("k", "1234567890");
    assert_int_equal(put("k", "12345678901"), -E2BIG);
    assert_int_equal(put("toolong", "v"), -ENAMETOOLONG);
    assert_int_equal(put("four", "v"), 0);
}

/* Issue 9, item 1: whatever the settings ask, nothing longer than a log
 * record holds is accepted (it would be acknowledged, then lost at recovery). */
static void test_store_limits_stay_within_a_log_record(void **state)
{
    store_fini(&st);
    struct store_config cfg = {.max_val_len = 4ull << 30, .max_key_len = UINT32_MAX};
    assert_int_equal(setup_with(&cfg), 0);
    assert_int_equal(store_check_len(&st, 1, SEG_MAX_VALUE), 0);
    assert_int_equal(store_check_len(&st, 1, (uint64_t)SEG_MAX_VALUE + 1), -E2BIG);
    assert_int_equal(store_check_len(&st, SEG_MAX_KEY, 1), 0);
    assert_int_equal(store_check_len(&st, (size_t)SEG_MAX_KEY + 1, 1), -ENAMETOOLONG);
    store_fini(&st);
    struct store_config none = {0}; /* "no limit" is the log's limit */
    assert_int_equal(setup_with(&none), 0);
    assert_int_equal(store_check_len(&st, (size_t)SEG_MAX_KEY + 1, 1), -ENAMETOOLONG);
}

/* Issue 9, item 6: recovery loads the newest record of a key even when the
 * node restarted with lower limits; skipping it would serve an older one. */
static void test_store_recovery_ignores_length_limits(void **state)
{
    store_fini(&st);
    struct store_config cfg = {.max_val_len = 4, .max_key_len = 4};
    assert_int_equal(setup_with(&cfg), 0);
    const char *key = "a-long-key", *val = "a value past the limit";
    assert_int_equal(store_put_recovered(&st, key, (uint32_t)strlen(key),
                                         keyhash(key, strlen(key)), "old", 3, 0, 0, 1, 0),
                     0);
    assert_int_equal(store_put_recovered(&st, key, (uint32_t)strlen(key),
                                         keyhash(key, strlen(key)), val, strlen(val), 0, 0, 2,
                                         0),
                     0);
    assert_value(key, val);
    assert_int_equal(get(key)->cas, 2);
    assert_int_equal(put(key, "v"), -ENAMETOOLONG); /* requests still meet the limits */
}

static void test_store_set_expire_in_the_past_deletes(void **state)
{
    put("k", "v");
    struct table_entry *e = get("k"), *out = e;
    assert_int_equal(store_set_expire(&st, e, keyhash("k", 1), T0, &out), 0);
    assert_null(out);
    assert_null(get("k"));
    assert_int_equal(store_count(&st), 0);
}

static void test_store_persist_by_set_expire_zero(void **state)
{
    put_ttl("k", "v", T0 + 100);
    struct table_entry *e = get("k");
    assert_int_equal(store_set_expire(&st, e, keyhash("k", 1), 0, &e), 0);
    assert_int_equal(e->expire_ms, 0);
    assert_int_equal(st.stats.expires, 0);
    st.now_ms = T0 + 200;
    assert_value("k", "v");
}

static void test_store_random_skips_expired(void **state)
{
    assert_null(store_random(&st));
    put_ttl("gone1", "v", T0 + 10);
    put_ttl("gone2", "v", T0 + 10);
    put("live", "v");
    st.now_ms = T0 + 20;
    for (int i = 0; i < 20; i++) {
        struct table_entry *e = store_random(&st);
        assert_non_null(e);
        assert_int_equal(e->key_len, 4);
        assert_memory_equal(table_entry_key(e), "live", 4);
    }
    del("live");
    assert_null(store_random(&st));
}

static void test_store_flush_empties(void **state)
{
    put("a", "1");
    put_ttl("b", "2", T0 + 100);
    store_flush(&st);
    assert_int_equal(store_count(&st), 0);
    assert_null(get("a"));
    struct store_stats s;
    store_read_stats(&st, &s);
    assert_int_equal(s.entry_bytes, 0);
    assert_int_equal(s.expires, 0);
}

/* ---- eviction ---- */

#define EVICT_MAXMEMORY (256 * 1024)

static void restart_with_policy(enum store_policy policy)
{
    store_fini(&st);
    struct store_config cfg = {.maxmemory = EVICT_MAXMEMORY, .policy = policy, .seed = 7};
    assert_int_equal(setup_with(&cfg), 0);
}

/* Finishes the table's resize, if one is under way (its two arrays count). */
static void settle(void)
{
    for (int i = 0; i < 100 && table_step(st.table, 1u << 20); i++)
        ;
}

/* Puts keys "prefix:i" until one put would go over, without evicting:
 * returns how many fit. */
static int fill_to_limit(const char *prefix, int64_t (*ttl_of)(int))
{
    char key[32];
    int i = 0;
    for (;; i++) {
        key_name(key, sizeof key, prefix, i);
        size_t need = store_need(strlen(key), VAL_LEN) + 64;
        settle();
        if (store_used_bytes(&st) + need > EVICT_MAXMEMORY)
            return i;
        assert_int_equal(put_ttl(key, filler(), ttl_of ? ttl_of(i) : 0), 0);
        assert_int_equal(st.stats.evicted_keys, 0);
    }
}

/* After a put, the store can always get back under maxmemory. */
static void assert_within_maxmemory(void)
{
    assert_int_equal(store_ensure_memory(&st, 0), 0);
    assert_true(store_used_bytes(&st) <= EVICT_MAXMEMORY);
}

static int count_live(const char *prefix, int from, int to)
{
    char key[32];
    int n = 0;
    for (int i = from; i < to; i++) {
        key_name(key, sizeof key, prefix, i);
        n += get(key) != NULL;
    }
    return n;
}

static void test_store_noeviction_refuses_when_full(void **state)
{
    restart_with_policy(STORE_NOEVICTION);
    int n = fill_to_limit("k", NULL);
    assert_true(n > 100);
    int rc = 0;
    char key[32];
    for (int i = n; i < n + 1000 && rc == 0; i++) {
        key_name(key, sizeof key, "k", i);
        rc = put(key, filler());
    }
    assert_int_equal(rc, -ENOMEM);
    /* refused because the store is over the limit, whatever the size */
    assert_true(store_used_bytes(&st) > EVICT_MAXMEMORY);
    assert_int_equal(store_ensure_memory(&st, 0), -ENOMEM);
    assert_int_equal(st.stats.evicted_keys, 0);
    /* nothing was lost */
    assert_int_equal(count_live("k", 0, n), n);
    /* once under the limit, a write goes ahead even if it overshoots */
    for (int i = 0; i < n && store_used_bytes(&st) > EVICT_MAXMEMORY; i++) {
        key_name(key, sizeof key, "k", i);
        assert_true(del(key));
    }
    static char big[8192];
    memset(big, 'b', sizeof big - 1);
    assert_int_equal(put("big", big), 0);
    assert_true(store_used_bytes(&st) > EVICT_MAXMEMORY);
    assert_int_equal(put("small", "v"), -ENOMEM);
}

static void test_store_allkeys_lru_keeps_recently_used(void **state)
{
    restart_with_policy(STORE_ALLKEYS_LRU);
    int n = fill_to_limit("old", NULL);
    assert_true(n > 400);
    /* ten seconds later, read the first half */
    store_tick(&st, T0 + 10000);
    for (int i = 0; i < n / 2; i++) {
        char key[32];
        key_name(key, sizeof key, "old", i);
        assert_non_null(get(key));
    }
    /* ten seconds later, write as many new keys as there are old ones / 2 */
    store_tick(&st, T0 + 20000);
    char key[32];
    for (int i = 0; i < n / 2; i++) {
        key_name(key, sizeof key, "new", i);
        assert_int_equal(put(key, filler()), 0);
        assert_within_maxmemory();
    }
    assert_true(st.stats.evicted_keys > (uint64_t)n / 4);
    int hot = count_live("old", 0, n / 2);
    int cold = count_live("old", n / 2, n);
    /* sampled LRU: untouched keys go first, by a wide margin */
    assert_true(hot > 2 * cold);
    assert_true(hot > n / 2 * 6 / 10);
}

static void test_store_allkeys_random_evicts_any(void **state)
{
    restart_with_policy(STORE_ALLKEYS_RANDOM);
    int n = fill_to_limit("k", NULL);
    char key[32];
    for (int i = n; i < 3 * n; i++) {
        key_name(key, sizeof key, "k", i);
        assert_int_equal(put(key, filler()), 0);
        assert_within_maxmemory();
    }
    assert_true(st.stats.evicted_keys >= (uint64_t)n);
    /* both early and late keys were evicted */
    assert_true(count_live("k", 0, n) < n);
    assert_true(count_live("k", 2 * n, 3 * n) < n);
}

static int64_t ttl_far(int i)
{
    return T0 + 1000000 + i;
}

static int64_t ttl_every_other(int i)
{
    return i % 2 ? T0 + 1000000 : 0;
}

static void check_volatile_policy(enum store_policy policy)
{
    restart_with_policy(policy);
    int n = fill_to_limit("k", ttl_every_other);
    char key[32];
    for (int i = 0; i < n / 4; i++) {
        key_name(key, sizeof key, "new", i);
        assert_int_equal(put(key, filler()), 0);
    }
    assert_true(st.stats.evicted_keys > 0);
    /* every key without a TTL is still there */
    for (int i = 0; i < n; i += 2) {
        key_name(key, sizeof key, "k", i);
        assert_non_null(get(key));
    }
    /* once no key has a TTL, nothing can go */
    int rc = 0;
    for (int i = n / 4; i < 4 * n && rc == 0; i++) {
        key_name(key, sizeof key, "new", i);
        rc = put(key, filler());
    }
    assert_int_equal(rc, -ENOMEM);
    assert_int_equal(st.stats.expires, 0);
    for (int i = 0; i < n; i += 2) {
        key_name(key, sizeof key, "k", i);
        assert_non_null(get(key));
    }
}

static void test_store_volatile_lru_evicts_only_keys_with_ttl(void **state)
{
    check_volatile_policy(STORE_VOLATILE_LRU);
}

static void test_store_volatile_random_evicts_only_keys_with_ttl(void **state)
{
    check_volatile_policy(STORE_VOLATILE_RANDOM);
}

static void test_store_volatile_ttl_evicts_soonest_expiring(void **state)
{
    restart_with_policy(STORE_VOLATILE_TTL);
    int n = fill_to_limit("k", ttl_far); /* key i expires at T0 + 1000000 + i */
    char key[32];
    for (int i = 0; i < n / 3; i++) {
        key_name(key, sizeof key, "new", i);
        assert_int_equal(put(key, filler()), 0);
    }
    uint64_t evicted = st.stats.evicted_keys;
    assert_true(evicted > 0);
    /* the soonest third went far more than the latest third */
    int soon = count_live("k", 0, n / 3);
    int late = count_live("k", n - n / 3, n);
    assert_true(late > 2 * soon);
    assert_true(late > (n / 3) * 8 / 10);
}

static void test_store_volatile_scan_finds_rare_ttl_keys(void **state)
{
    restart_with_policy(STORE_VOLATILE_LRU);
    int n = fill_to_limit("k", NULL);
    char key[32];
    /* give two keys a TTL (no eviction on this path): samples of 5 will
     * rarely meet them */
    int with_ttl[2] = {3, n / 2};
    for (int i = 0; i < 2; i++) {
        key_name(key, sizeof key, "k", with_ttl[i]);
        struct table_entry *e = get(key);
        assert_int_equal(store_set_expire(&st, e, keyhash(key, strlen(key)), T0 + 100000, NULL), 0);
    }
    /* exactly full; ask for one byte more than fits, again and again: each
     * time the only candidates are the two keys with a TTL */
    st.maxmemory = store_used_bytes(&st);
    for (uint64_t evicted = 1; evicted <= 2; evicted++) {
        assert_int_equal(store_ensure_memory(&st, st.maxmemory - store_used_bytes(&st) + 1), 0);
        assert_int_equal(st.stats.evicted_keys, evicted);
    }
    /* nothing left to evict: under the limit the write may still go ahead
     * (as Redis), over it it is refused */
    assert_int_equal(store_ensure_memory(&st, st.maxmemory - store_used_bytes(&st) + 1), 0);
    st.maxmemory = store_used_bytes(&st) - 1;
    assert_int_equal(store_ensure_memory(&st, 0), -ENOMEM);
    assert_int_equal(st.stats.evicted_keys, 2);
    assert_int_equal(count_live("k", 0, n), n - 2);
    key_name(key, sizeof key, "k", 3);
    assert_null(get(key));
    key_name(key, sizeof key, "k", n / 2);
    assert_null(get(key));
}

static void test_store_eviction_prefers_expired_keys(void **state)
{
    restart_with_policy(STORE_ALLKEYS_LRU);
    int n = fill_to_limit("k", ttl_every_other);
    /* the TTL keys are all due; their memory is there for the taking */
    st.now_ms = T0 + 2000000;
    char key[32];
    for (int i = 0; i < n / 4; i++) {
        key_name(key, sizeof key, "new", i);
        assert_int_equal(put(key, filler()), 0);
    }
    struct store_stats s;
    store_read_stats(&st, &s);
    assert_true(s.expired_keys > 0);
    assert_true(s.evicted_keys < s.expired_keys);
}

/* ---- values beyond RAM: a fake log whose records are written below
 * fake_readable, with fake_unwritten bytes still on their way ---- */

#define TIER_MAXMEMORY (64 * 1024)
#define TIER_VAL 1000

static uint64_t fake_next_lsn, fake_readable;
static uint64_t fake_unwritten;
static struct table_entry *fake_last_put;

static uint64_t fake_put(void *arg, const struct table_entry *e, uint64_t prev)
{
    (void)arg, (void)prev;
    fake_last_put = (struct table_entry *)e;
    uint64_t lsn = fake_next_lsn;
    fake_next_lsn += 64 + e->key_len + e->val_len;
    return lsn;
}
static void fake_del(void *arg, const void *key, uint32_t klen, uint64_t prev)
{
    (void)arg, (void)key, (void)klen, (void)prev;
}
static void fake_flush(void *arg) { (void)arg; }
static bool fake_is_readable(void *arg, uint64_t lsn) { return (void)arg, lsn < fake_readable; }
static uint64_t fake_unwritten_bytes(void *arg) { return (void)arg, fake_unwritten; }

static const struct store_journal fake_journal = {fake_put, fake_del, fake_flush, NULL};
static const struct store_tier fake_tier = {fake_is_readable, fake_unwritten_bytes, NULL};

static void restart_tiered(void)
{
    store_fini(&st);
    struct store_config cfg = {.maxmemory = TIER_MAXMEMORY, .policy = STORE_NOEVICTION,
                               .seed = 7};
    assert_int_equal(setup_with(&cfg), 0);
    store_attach_journal(&st, &fake_journal);
    store_attach_tier(&st, &fake_tier);
    fake_next_lsn = 0;
    fake_readable = UINT64_MAX; /* everything written */
    fake_unwritten = 0;
}

static const char *tier_value(int i)
{
    static char v[TIER_VAL + 1];
    memset(v, 'a' + i % 26, TIER_VAL);
    v[TIER_VAL] = '\0';
    return v;
}

static void test_store_tier_cools_instead_of_refusing(void **state)
{
    restart_tiered();
    char key[32];
    int n = 4 * TIER_MAXMEMORY / TIER_VAL; /* four times the limit */
    for (int i = 0; i < n; i++) {
        key_name(key, sizeof key, "t", i);
        assert_int_equal(put(key, tier_value(i)), 0);
    }
    assert_true(store_used_bytes(&st) <= TIER_MAXMEMORY);
    assert_int_equal(store_count(&st), n);
    assert_true(st.stats.cold_keys > (uint64_t)n / 2);
    assert_int_equal(st.stats.cold_bytes, st.stats.cold_keys * TIER_VAL);
    assert_int_equal(st.stats.evicted_keys, 0);
    /* A cold entry keeps everything but the value, and its log position. */
    int cold_seen = 0;
    for (int i = 0; i < n; i++) {
        key_name(key, sizeof key, "t", i);
        struct table_entry *e = get(key);
        assert_non_null(e);
        assert_int_equal(e->val_len, TIER_VAL);
        assert_true(e->meta & TABLE_ENTRY_LSN);
        if (!table_entry_is_cold(e))
            assert_memory_equal(table_entry_val(e), tier_value(i), TIER_VAL);
        else
            cold_seen++;
    }
    assert_int_equal(cold_seen, st.stats.cold_keys);
}

static void test_store_tier_load_value_brings_it_back(void **state)
{
    restart_tiered();
    char key[32];
    int n = 3 * TIER_MAXMEMORY / TIER_VAL;
    for (int i = 0; i < n; i++) {
        key_name(key, sizeof key, "t", i);
        assert_int_equal(put_ttl(key, tier_value(i), T0 + 100000), 0);
    }
    struct table_entry *cold = NULL;
    int which = -1;
    for (int i = 0; i < n && !cold; i++) {
        key_name(key, sizeof key, "t", i);
        struct table_entry *e = get(key);
        if (table_entry_is_cold(e)) {
            cold = e;
            which = i;
        }
    }
    assert_non_null(cold);
    uint64_t cas = cold->cas, lsn = table_entry_lsn(cold), cooled = st.stats.cold_keys;
    uint64_t hash = keyhash(key, strlen(key));
    assert_int_equal(store_load_value(&st, cold, hash, "short", 5, NULL), -EINVAL);
    struct table_entry *hot = NULL;
    assert_int_equal(store_load_value(&st, cold, hash, tier_value(which), TIER_VAL, &hot), 0);
    assert_non_null(hot);
    assert_false(table_entry_is_cold(hot));
    assert_int_equal(hot->cas, cas); /* the same version, not a write */
    assert_int_equal(hot->expire_ms, T0 + 100000);
    assert_int_equal(table_entry_lsn(hot), lsn);
    assert_memory_equal(table_entry_val(hot), tier_value(which), TIER_VAL);
    assert_int_equal(st.stats.values_loaded, 1);
    /* Room was made by cooling another value: the count stays. */
    assert_int_equal(st.stats.cold_keys, cooled);
    assert_true(store_used_bytes(&st) <= TIER_MAXMEMORY);
}

static void test_store_tier_never_cools_unwritten_or_pinned(void **state)
{
    restart_tiered();
    fake_readable = 0; /* nothing is written yet */
    char key[32];
    int n = 2 * TIER_MAXMEMORY / TIER_VAL;
    fake_unwritten = 20 * TIER_VAL; /* some writes on their way: that much is let in */
    int accepted = 0, rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        key_name(key, sizeof key, "t", i);
        rc = put(key, tier_value(i));
        accepted += rc == 0;
    }
    assert_int_equal(rc, -ENOMEM); /* and no more */
    assert_int_equal(st.stats.cold_keys, 0);
    assert_true(store_used_bytes(&st) > TIER_MAXMEMORY);
    assert_true(store_used_bytes(&st) <= TIER_MAXMEMORY + fake_unwritten + 2 * TIER_VAL);
    fake_unwritten = 0; /* ... and if they never get written, writes are refused */
    assert_int_equal(put("more", tier_value(0)), -ENOMEM);
    /* Once written, the tick brings memory back under the limit, sparing
     * the pinned key. */
    assert_true(accepted > 0);
    key_name(key, sizeof key, "t", 0);
    struct table_entry *pinned = get(key);
    store_pin(&st, pinned);
    fake_readable = UINT64_MAX;
    for (int i = 0; i < 50 && store_used_bytes(&st) > TIER_MAXMEMORY; i++)
        store_tick(&st, T0 + i);
    assert_true(store_used_bytes(&st) <= TIER_MAXMEMORY);
    assert_true(st.stats.cold_keys > 0);
    assert_ptr_equal(get(key), pinned);
    assert_false(table_entry_is_cold(pinned));
    store_pin(&st, NULL);
}

static void test_store_tier_append_keeps_lsn_room(void **state)
{
    restart_tiered();
    assert_int_equal(put("a", "x"), 0);
    struct table_entry *e = get("a");
    size_t cap = table_entry_val_cap(e);
    /* An append in place up to the capacity leaves the log position whole. */
    static char more[4096];
    memset(more, 'y', sizeof more);
    assert_true(cap >= 1);
    assert_int_equal(store_append(&st, e, keyhash("a", 1), more, cap - 1, NULL), 0);
    struct table_entry *now = get("a");
    assert_int_equal(table_entry_lsn(now), fake_next_lsn - (64 + 1 + cap));
    assert_ptr_equal(fake_last_put, now);
    assert_ptr_equal(now, e); /* in place */
    assert_int_equal(now->val_len, cap);
    assert_memory_equal(table_entry_val(now) + 1, more, cap - 1); /* the position spared it */
}

/* Partition counts (store_track_partitions): the test's partition is the
 * key's first byte mod 4; every overwrite, tombstone and removal moves them,
 * and a watcher sees both sides of every replacement. */
static uint32_t first_byte_part(const void *arg, const void *key, uint32_t klen)
{
    (void)arg;
    return klen ? ((const unsigned char *)key)[0] % 4 : 0;
}

static unsigned watched;
static void count_watch(void *arg, const struct table_entry *e, uint64_t hash, uint32_t part)
{
    (void)arg;
    assert_true(e && hash == keyhash(table_entry_key(e), e->key_len));
    assert_int_equal(part, TABLE_NO_PART); /* the table is not split here */
    watched++;
}

static int put_version(const char *key, const char *val, bool tombstone, uint64_t counter)
{
    struct dvv_entry e = {.actor = 7, .counter = counter, .nvalues = 1};
    struct dvv_value v = {.data = tombstone ? "" : val,
                          .len = tombstone ? 0 : (uint32_t)strlen(val),
                          .flags = tombstone ? DVV_TOMBSTONE : 0,
                          .ts_ms = T0};
    struct dvv_clock c;
    dvv_init(&c, &e, 1, &v, 1);
    c.nentries = c.nvalues = 1;
    return store_put_versioned(&st, key, (uint32_t)strlen(key), keyhash(key, strlen(key)), &c, 0,
                               NULL);
}

static void test_store_partition_counts_follow_every_change(void **state)
{
    (void)state;
    assert_int_equal(put("a1", "x"), 0); /* 'a' = 97: partition 1 */
    assert_int_equal(put("b1", "x"), 0); /* partition 2 */
    assert_int_equal(store_track_partitions(&st, 4, first_byte_part, NULL), 0);
    store_watch(&st, count_watch, NULL);
    assert_int_equal(store_partition_count(&st, 1), 1);
    assert_int_equal(store_partition_count(&st, 2), 1);
    assert_int_equal(put("a2", "x"), 0);
    assert_int_equal(store_partition_count(&st, 1), 2);
    watched = 0;
    assert_int_equal(put("a2", "longer value"), 0); /* an overwrite: the same count */
    assert_int_equal(store_partition_count(&st, 1), 2);
    assert_int_equal(watched, 2); /* the new entry and the old one */
    assert_int_equal(put_version("a2", "v", false, 1), 0);
    assert_int_equal(store_partition_count(&st, 1), 2);
    assert_int_equal(put_version("a2", NULL, true, 2), 0); /* a tombstone: no key */
    assert_int_equal(store_partition_count(&st, 1), 1);
    assert_null(get("a2"));
    assert_int_equal(put_version("a2", NULL, true, 3), 0); /* tombstone over tombstone */
    assert_int_equal(store_partition_count(&st, 1), 1);
    assert_int_equal(put_version("a2", "back", false, 4), 0);
    assert_int_equal(store_partition_count(&st, 1), 2);
    assert_int_equal(put("a2", "plain again"), 0);
    assert_int_equal(store_partition_count(&st, 1), 2);
    assert_true(del("a2"));
    assert_int_equal(store_partition_count(&st, 1), 1);
    assert_int_equal(put_ttl("b1", "gone", T0 - 1), 0); /* an expiry already past removes it */
    assert_int_equal(store_partition_count(&st, 2), 0);
    assert_int_equal(store_partition_count(&st, 1) + store_partition_count(&st, 2) +
                         store_partition_count(&st, 0) + store_partition_count(&st, 3),
                     store_count(&st));
    store_watch(&st, NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_put_lookup_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_counts_hits_and_misses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_accounts_used_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_expires_lazily, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_put_in_the_past_leaves_no_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_tick_expires_actively, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_tick_keeps_keys_not_yet_due, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_cas_changes_on_every_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_append_grows_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_append_respects_max_val_len, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_limits_stay_within_a_log_record, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_recovery_ignores_length_limits, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_set_expire_in_the_past_deletes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_persist_by_set_expire_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_random_skips_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_flush_empties, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_noeviction_refuses_when_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_allkeys_lru_keeps_recently_used, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_allkeys_random_evicts_any, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_volatile_lru_evicts_only_keys_with_ttl, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_volatile_random_evicts_only_keys_with_ttl, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_volatile_ttl_evicts_soonest_expiring, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_volatile_scan_finds_rare_ttl_keys, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_eviction_prefers_expired_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_tier_cools_instead_of_refusing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_tier_load_value_brings_it_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_tier_never_cools_unwritten_or_pinned, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_tier_append_keeps_lsn_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_partition_counts_follow_every_change, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
