/* test_table.c: the shard hash table (shards/table.h).
 * The table allocates through mimalloc, which AddressSanitizer cannot see
 * into. So this test defines the mimalloc calls the table makes, on top of
 * malloc, and keeps a registry of the blocks they hand out: under ASan every
 * entry and slot array is then checked for use-after-free and leaks, and in
 * any build the test counts the table's live blocks (none after
 * table_destroy) and sees when one chosen block is freed. mimalloc itself may
 * call mi_free() on its own blocks (its realloc does); the registry tells
 * those apart and passes them on to free(), which is mimalloc's then.
 * Under TSan, mi_free() acquires what every table_read_end() released, which
 * is exactly the epoch's guarantee, so TSan judges the table's own accesses. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <mimalloc.h>

#include "keyhash.h"
#include "table.h"

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
static char tsan_epoch_token;
#define TSAN_READ_END() __tsan_release(&tsan_epoch_token)
#define TSAN_BEFORE_FREE() __tsan_acquire(&tsan_epoch_token)
#else
#define TSAN_READ_END() ((void)0)
#define TSAN_BEFORE_FREE() ((void)0)
#endif

/* --- Allocation seen by the sanitizers --------------------------------------- */

/* Registry of the blocks handed to the table: a pointer set under one lock,
 * linear probing with backward-shift deletion. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static uintptr_t *reg_slots; /* 0 = empty */
static unsigned reg_log2;
static size_t reg_count;
static void *watched;         /* a block whose free the test waits for */
static int watched_was_freed; /* atomic */

static size_t reg_home(uintptr_t p)
{
    return (size_t)((p * 0x9e3779b97f4a7c15ull) >> (64 - reg_log2));
}

static void reg_insert_locked(uintptr_t p)
{
    size_t mask = ((size_t)1 << reg_log2) - 1;
    size_t i = reg_home(p);
    for (; reg_slots[i]; i = (i + 1) & mask)
        if (reg_slots[i] == p)
            return;
    reg_slots[i] = p;
    reg_count++;
}

static void reg_add(void *p)
{
    pthread_mutex_lock(&reg_lock);
    if (!reg_slots || reg_count * 2 >= (size_t)1 << reg_log2) {
        uintptr_t *old = reg_slots;
        size_t old_n = old ? (size_t)1 << reg_log2 : 0;
        reg_log2 = old ? reg_log2 + 1 : 12;
        reg_slots = calloc((size_t)1 << reg_log2, sizeof *reg_slots);
        if (!reg_slots)
            abort();
        reg_count = 0;
        for (size_t i = 0; i < old_n; i++)
            if (old[i])
                reg_insert_locked(old[i]);
        free(old);
    }
    reg_insert_locked((uintptr_t)p);
    pthread_mutex_unlock(&reg_lock);
}

/* Removes p; false when it was not the table's. */
static bool reg_del(void *p)
{
    pthread_mutex_lock(&reg_lock);
    size_t mask = reg_slots ? ((size_t)1 << reg_log2) - 1 : 0;
    size_t i = reg_slots ? reg_home((uintptr_t)p) : 0;
    while (reg_slots && reg_slots[i] && reg_slots[i] != (uintptr_t)p)
        i = (i + 1) & mask;
    if (!reg_slots || !reg_slots[i]) {
        pthread_mutex_unlock(&reg_lock);
        return false;
    }
    /* Pull later members of the cluster back over the hole when their home
     * is not in (hole, j]. */
    for (size_t j = i;;) {
        j = (j + 1) & mask;
        if (!reg_slots[j])
            break;
        size_t k = reg_home(reg_slots[j]);
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            reg_slots[i] = reg_slots[j];
            i = j;
        }
    }
    reg_slots[i] = 0;
    reg_count--;
    if (p == __atomic_load_n(&watched, __ATOMIC_RELAXED))
        __atomic_store_n(&watched_was_freed, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&reg_lock);
    return true;
}

static void *tracked(void *p)
{
    if (p)
        reg_add(p);
    return p;
}

void *mi_malloc(size_t size)
{
    return tracked(malloc(size));
}
void *mi_zalloc(size_t size)
{
    return tracked(calloc(1, size));
}

void *mi_zalloc_aligned(size_t size, size_t alignment)
{
    size_t rounded = (size + alignment - 1) / alignment * alignment;
    void *p = aligned_alloc(alignment, rounded);
    if (p)
        memset(p, 0, rounded);
    return tracked(p);
}

void *mi_realloc(void *p, size_t newsize)
{
    if (p && !reg_del(p))
        return realloc(p, newsize); /* not the table's */
    void *q = realloc(p, newsize);
    if (!q && p)
        reg_add(p);
    return tracked(q);
}

size_t mi_usable_size(const void *p)
{
    return malloc_usable_size((void *)p);
}

void mi_free(void *p)
{
    if (!p)
        return;
    TSAN_BEFORE_FREE();
    reg_del(p);
    free(p);
}

static long blocks(void)
{
    pthread_mutex_lock(&reg_lock);
    long n = (long)reg_count;
    pthread_mutex_unlock(&reg_lock);
    return n;
}

/* --- Helpers ----------------------------------------------------------------- */

static uint64_t hash_of(const char *key)
{
    return keyhash(key, strlen(key));
}

/* An entry whose value is the 4-byte index `idx`. */
static struct table_entry *mk(const char *key, uint32_t idx)
{
    uint32_t len = (uint32_t)strlen(key);
    struct table_entry *e = table_entry_alloc(len, sizeof idx);
    assert_non_null(e);
    memcpy(e->data, key, len);
    memcpy(table_entry_val(e), &idx, sizeof idx);
    e->val_len = sizeof idx;
    return e;
}

static uint32_t idx_of(const struct table_entry *e)
{
    uint32_t idx;
    memcpy(&idx, e->data + e->key_len, sizeof idx);
    return idx;
}

static const char *key_name(char *buf, const char *prefix, uint32_t i)
{
    snprintf(buf, 32, "%s%u", prefix, i);
    return buf;
}

static struct table_entry *find(struct table *t, const char *key)
{
    return table_find(t, key, (uint32_t)strlen(key), hash_of(key));
}

static void put(struct table *t, const char *key, uint32_t idx)
{
    struct table_entry *old;
    assert_int_equal(table_put(t, mk(key, idx), hash_of(key), &old), 0);
    table_retire(t, old);
}

static void del(struct table *t, const char *key)
{
    struct table_entry *e = table_remove(t, key, (uint32_t)strlen(key), hash_of(key));
    assert_non_null(e);
    table_retire(t, e);
}

/* Steps until nothing is left to do; bounded. */
static void settle(struct table *t)
{
    int i = 0;
    while (table_step(t, 1024) && i < 1000000)
        i++;
    assert_false(table_step(t, 1024));
}

static long blocks_before_test;

static int note_blocks(void **state)
{
    blocks_before_test = blocks();
    return 0;
}

static void destroy_and_check(struct table *t)
{
    table_destroy(t);
    assert_int_equal(blocks(), blocks_before_test);
}

/* Two slot arrays live (a resize in progress) when the slot count is not a
 * power of two; growth and shrink both give one. */
static bool resizing(const struct table *t)
{
    size_t slots = table_overhead_bytes(t) / sizeof(uint64_t);
    return (slots & (slots - 1)) != 0;
}

static void check_key(struct table *t, const char *prefix, uint32_t i)
{
    char k[32];
    struct table_entry *e = find(t, key_name(k, prefix, i));
    if (!e)
        fail_msg("key %s missing", k);
    assert_int_equal(idx_of(e), i);
}

static void check_range(struct table *t, const char *prefix, uint32_t from, uint32_t to)
{
    for (uint32_t i = from; i < to; i++)
        check_key(t, prefix, i);
}

/* --- Basic operations -------------------------------------------------------- */

static void test_table_put_find_replace_remove(void **state)
{
    struct table *t = table_create(0);
    assert_non_null(t);
    assert_null(find(t, "a"));

    struct table_entry *a = mk("a", 1), *old = NULL;
    assert_int_equal(table_put(t, a, hash_of("a"), &old), 0);
    assert_null(old);
    assert_ptr_equal(find(t, "a"), a);
    assert_null(find(t, "b"));
    assert_null(find(t, "aa"));
    assert_int_equal(table_count(t), 1);

    struct table_entry *a2 = mk("a", 2);
    assert_int_equal(table_put(t, a2, hash_of("a"), &old), 0);
    assert_ptr_equal(old, a);
    assert_ptr_equal(find(t, "a"), a2);
    assert_int_equal(table_count(t), 1);
    table_retire(t, old);

    put(t, "b", 3);
    assert_int_equal(table_count(t), 2);
    assert_null(table_remove(t, "c", 1, hash_of("c")));
    struct table_entry *r = table_remove(t, "a", 1, hash_of("a"));
    assert_ptr_equal(r, a2);
    table_retire(t, r);
    assert_null(find(t, "a"));
    assert_int_equal(idx_of(find(t, "b")), 3);
    assert_int_equal(table_count(t), 1);
    assert_int_equal(table_overhead_bytes(t), 16 * sizeof(uint64_t));
    settle(t);
    destroy_and_check(t);
}

static void test_table_entry_sizes(void **state)
{
    struct table_entry *e = table_entry_alloc(5, 100);
    assert_non_null(e);
    assert_int_equal(e->key_len, 5);
    assert_int_equal(e->val_len, 0);
    assert_int_equal(e->expire_ms, 0);
    assert_true(table_entry_val_cap(e) >= 100);
    assert_int_equal(table_entry_mem(e), table_entry_val_cap(e) + sizeof *e + 5);
    table_entry_free(e);
    assert_null(table_entry_alloc(UINT32_MAX, SIZE_MAX - 8));
    assert_int_equal(blocks(), blocks_before_test);
}

/* A key's home slot in a 16-slot table (top 4 bits) and its tag. */
static uint32_t collision_sig(const char *key)
{
    uint64_t h = hash_of(key);
    return (uint32_t)(h >> 60) << 16 | (uint32_t)((h >> 16) & 0xffff);
}

/* Two keys with the same home slot and the same tag are told apart by their bytes. */
static void test_table_tag_collisions_compare_keys(void **state)
{
    uint32_t *seen_at = malloc((1u << 20) * sizeof *seen_at); /* signature -> key */
    assert_non_null(seen_at);
    memset(seen_at, 0xff, (1u << 20) * sizeof *seen_at);
    char a[32], b[32];
    for (uint32_t i = 0; seen_at[collision_sig(key_name(a, "x", i))] == UINT32_MAX; i++) {
        seen_at[collision_sig(a)] = i;
        assert_true(i < (1u << 20));
    }
    key_name(b, "x", seen_at[collision_sig(a)]);
    free(seen_at);

    struct table *t = table_create(0);
    put(t, a, 1);
    put(t, b, 2);
    assert_int_equal(table_overhead_bytes(t), 16 * sizeof(uint64_t));
    assert_int_equal(idx_of(find(t, a)), 1);
    assert_int_equal(idx_of(find(t, b)), 2);
    del(t, a);
    assert_null(find(t, a));
    assert_int_equal(idx_of(find(t, b)), 2);
    put(t, a, 3);
    del(t, b);
    assert_null(find(t, b));
    assert_int_equal(idx_of(find(t, a)), 3);
    settle(t);
    destroy_and_check(t);
}

/* --- Resizing ---------------------------------------------------------------- */

#define MANY 1000000u

static void test_table_many_keys_through_resizes(void **state)
{
    struct table *t = table_create(0);
    uint64_t rng = 1;
    unsigned resizes = 0, checks_in_resize = 0;
    bool was_resizing = false;
    char k[32];

    for (uint32_t i = 0; i < MANY; i++) {
        put(t, key_name(k, "key:", i), i);
        check_key(t, "key:", i);
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        check_key(t, "key:", (uint32_t)((rng >> 33) % (i + 1)));
        bool now = resizing(t);
        if (now && (!was_resizing || i % 65536 == 0)) {
            check_range(t, "key:", 0, i + 1); /* every key, mid-migration */
            checks_in_resize++;
        }
        resizes += now && !was_resizing;
        was_resizing = now;
        if (i % 512 == 0)
            table_step(t, 64);
    }
    assert_int_equal(table_count(t), MANY);
    assert_true(resizes >= 14); /* 16 slots to 2M: 17 doublings */
    assert_true(checks_in_resize >= resizes);
    settle(t);
    check_range(t, "key:", 0, MANY);

    /* Remove everything, shrinking on the way; the rest stays findable. */
    size_t peak = table_overhead_bytes(t);
    unsigned shrinks = 0;
    was_resizing = false;
    for (uint32_t i = 0; i < MANY; i++) {
        del(t, key_name(k, "key:", i));
        assert_null(find(t, k));
        if (i + 1 < MANY)
            check_key(t, "key:", MANY - 1 - (i % (MANY - 1 - i)));
        bool now = resizing(t);
        if (now && !was_resizing) {
            check_range(t, "key:", i + 1, MANY);
            shrinks++;
        }
        was_resizing = now;
        if (i % 512 == 0)
            table_step(t, 64);
    }
    assert_int_equal(table_count(t), 0);
    assert_true(shrinks >= 3);
    settle(t);
    assert_true(table_overhead_bytes(t) * 1024 < peak);
    destroy_and_check(t);
}

/* table_reserve grows the table ahead (a resize under way ends first, the
 * keys stay findable), never shrinks it, and the keys it was grown for then
 * go in without another resize. */
static void test_table_reserve_grows_ahead(void **state)
{
    enum { HELD = 1000, WANT = 100000 };
    struct table *t = table_create(0);
    for (uint32_t i = 0; i < HELD; i++)
        put(t, key_name((char[32]){0}, "key:", i), i);
    size_t before = table_overhead_bytes(t);
    assert_int_equal(table_reserve(t, 0, 10), 0);
    assert_int_equal(table_overhead_bytes(t), before); /* never smaller */
    assert_int_equal(table_reserve(t, 0, WANT), 0);
    assert_true(table_overhead_bytes(t) >= (size_t)WANT * 2 * sizeof(uint64_t));
    check_range(t, "key:", 0, HELD); /* mid-migration */
    settle(t);
    size_t grown = table_overhead_bytes(t);
    for (uint32_t i = HELD; i < WANT; i++) {
        put(t, key_name((char[32]){0}, "key:", i), i);
        assert_false(resizing(t));
    }
    assert_int_equal(table_overhead_bytes(t), grown);
    check_range(t, "key:", 0, WANT);
    destroy_and_check(t);
}

/* Removing and re-adding keys reuses their slots: the table never resizes. */
static void test_table_reuses_tombstones(void **state)
{
    struct table *t = table_create(100);
    char k[32];
    for (uint32_t i = 0; i < 100; i++)
        put(t, key_name(k, "k", i), i);
    size_t base = table_overhead_bytes(t);
    for (uint32_t n = 0; n < 20000; n++) {
        uint32_t i = (n * 37) % 100;
        del(t, key_name(k, "k", i));
        put(t, k, i);
        assert_int_equal(table_overhead_bytes(t), base);
        if (n % 100 == 0)
            table_step(t, 0);
    }
    check_range(t, "k", 0, 100);

    /* A sliding window of fresh keys leaves tombstones everywhere: the table
     * rebuilds at its size instead of growing. */
    for (uint32_t i = 60; i < 100; i++)
        del(t, key_name(k, "k", i));
    unsigned rebuilds = 0;
    for (uint32_t i = 0; i < 20000; i++) {
        put(t, key_name(k, "w", i), i);
        if (i >= 20)
            del(t, key_name(k, "w", i - 20));
        assert_true(table_overhead_bytes(t) <= 2 * base);
        rebuilds += table_overhead_bytes(t) == 2 * base;
    }
    assert_true(rebuilds > 0);
    settle(t);
    assert_int_equal(table_overhead_bytes(t), base);
    assert_int_equal(table_count(t), 80);
    check_range(t, "k", 0, 60);
    check_range(t, "w", 20000 - 20, 20000);
    destroy_and_check(t);
}

/* Writes while a resize is in progress (no table_step at all) drain it. */
static void test_table_writes_alone_finish_a_resize(void **state)
{
    struct table *t = table_create(0);
    char k[32];
    uint32_t i = 0;
    for (; !resizing(t); i++)
        put(t, key_name(k, "k", i), i);
    uint32_t started = i;
    for (; resizing(t); i++) {
        put(t, key_name(k, "k", i), i);
        assert_true(i - started < 64);
    }
    check_range(t, "k", 0, i);
    settle(t);
    destroy_and_check(t);
}

/* --- Scan -------------------------------------------------------------------- */

struct visits {
    uint8_t *seen; /* per index of prefix-`s` keys */
    uint32_t n;
    size_t calls;
};

static void count_visit(struct table_entry *e, void *arg)
{
    struct visits *v = arg;
    v->calls++;
    if (e->data[0] == 's' && idx_of(e) < v->n && v->seen[idx_of(e)] < 255)
        v->seen[idx_of(e)]++;
}

static void test_table_scan_visits_each_key_once(void **state)
{
    struct table *t = table_create(0);
    struct visits v = {.seen = calloc(10000, 1), .n = 10000};
    assert_int_equal(table_scan(t, 0, 10, count_visit, &v), 0);
    assert_int_equal(v.calls, 0);

    char k[32];
    for (uint32_t i = 0; i < 10000; i++)
        put(t, key_name(k, "s", i), i);
    uint64_t cursor = 0;
    size_t calls = 0;
    do {
        size_t before = v.calls;
        cursor = table_scan(t, cursor, 7, count_visit, &v);
        assert_true(cursor == 0 || v.calls - before >= 7);
        calls++;
    } while (cursor != 0);
    assert_true(calls > 100);
    assert_int_equal(v.calls, 10000);
    for (uint32_t i = 0; i < 10000; i++)
        assert_int_equal(v.seen[i], 1);
    free(v.seen);
    settle(t);
    destroy_and_check(t);
}

/* Keys present throughout a scan are seen even though the table grows and
 * shrinks between calls (and resizes are in progress during calls). */
static void test_table_scan_survives_growth_and_shrink(void **state)
{
    enum { STABLE = 3000, CHURN_PER_CALL = 500, GROW_CALLS = 80 };
    struct table *t = table_create(0);
    struct visits v = {.seen = calloc(STABLE, 1), .n = STABLE};
    char k[32];
    for (uint32_t i = 0; i < STABLE; i++)
        put(t, key_name(k, "s", i), i);
    settle(t);

    size_t start = table_overhead_bytes(t), max = start, min_after_max = SIZE_MAX;
    unsigned calls = 0, during_resize = 0;
    uint32_t churn = 0, removed = 0;
    uint64_t cursor = 0;
    do {
        during_resize += resizing(t);
        cursor = table_scan(t, cursor, 40, count_visit, &v);
        calls++;
        if (calls <= GROW_CALLS) {
            for (uint32_t j = 0; j < CHURN_PER_CALL; j++, churn++)
                put(t, key_name(k, "c", churn), churn);
        } else {
            for (uint32_t j = 0; j < 4 * CHURN_PER_CALL && removed < churn; j++)
                del(t, key_name(k, "c", removed++));
        }
        table_step(t, 256);
        size_t now = table_overhead_bytes(t);
        if (now > max) {
            max = now;
            min_after_max = SIZE_MAX;
        } else if (now < min_after_max) {
            min_after_max = now;
        }
    } while (cursor != 0);
    assert_true(calls > GROW_CALLS + 5);
    assert_true(max >= 8 * start);         /* grew */
    assert_true(min_after_max * 4 <= max); /* and shrank */
    assert_true(during_resize >= 5);
    for (uint32_t i = 0; i < STABLE; i++)
        if (v.seen[i] < 1)
            fail_msg("stable key %u never visited", i);
    free(v.seen);
    settle(t);
    destroy_and_check(t);
}

/* --- Sample ------------------------------------------------------------------ */

static void check_sample(struct table *t, uint64_t *rng, size_t n, size_t expect_min)
{
    struct table_entry *out[64];
    size_t got = table_sample(t, rng, out, n);
    assert_true(got >= expect_min && got <= n);
    for (size_t i = 0; i < got; i++) {
        char k[32];
        memcpy(k, out[i]->data, out[i]->key_len);
        k[out[i]->key_len] = '\0';
        assert_ptr_equal(find(t, k), out[i]);
        assert_int_equal(idx_of(out[i]) % 2, 1);
        for (size_t j = 0; j < i; j++)
            assert_ptr_not_equal(out[i], out[j]);
    }
}

static void test_table_sample_returns_live_entries(void **state)
{
    struct table *t = table_create(0);
    uint64_t rng = 12345;
    struct table_entry *out[8];
    assert_int_equal(table_sample(t, &rng, out, 8), 0);

    char k[32];
    for (uint32_t i = 0; i < 1000; i++)
        put(t, key_name(k, "k", i), i);
    for (uint32_t i = 0; i < 1000; i += 2)
        del(t, key_name(k, "k", i));
    for (int r = 0; r < 2000; r++)
        check_sample(t, &rng, 5, 5);
    check_sample(t, &rng, 0, 0);

    /* During a resize entries sit in both arrays; a sample still finds them. */
    uint32_t i = 1001;
    while (!resizing(t)) {
        put(t, key_name(k, "k", i), i);
        i += 2;
    }
    for (int r = 0; r < 200; r++)
        check_sample(t, &rng, 64, 64);
    settle(t);

    /* A near-empty table: the sample walks until it finds the one key. */
    for (uint32_t j = 1; j < i; j += 2)
        if (j != 999)
            del(t, key_name(k, "k", j));
    for (int r = 0; r < 100; r++)
        check_sample(t, &rng, 4, 1);
    destroy_and_check(t);
}

/* --- Clear, retire, reclaim -------------------------------------------------- */

static void test_table_clear_empties_and_frees(void **state)
{
    struct table *t = table_create(0);
    char k[32];
    uint32_t i = 0;
    for (; !resizing(t) || i < 5000; i++)
        put(t, key_name(k, "k", i), i);
    assert_true(resizing(t));
    table_clear(t);
    assert_int_equal(table_count(t), 0);
    assert_null(find(t, "k0"));
    assert_null(find(t, key_name(k, "k", i - 1)));
    assert_int_equal(table_overhead_bytes(t), 16 * sizeof(uint64_t));
    settle(t);
    assert_int_equal(blocks(), blocks_before_test + 2); /* the table and its one array */

    for (uint32_t j = 0; j < 100; j++)
        put(t, key_name(k, "n", j), j);
    check_range(t, "n", 0, 100);
    table_clear(t);
    table_clear(t);
    assert_null(find(t, "n1"));
    put(t, "n1", 1);
    check_key(t, "n", 1);
    destroy_and_check(t);
}

static void test_table_retired_entry_outlives_reader_section(void **state)
{
    struct table *t = table_create(0);
    put(t, "a", 7);
    struct table_reader *r = table_reader_register(t);
    assert_non_null(r);

    table_read_begin(r);
    struct table_entry *e = find(t, "a");
    assert_non_null(e);
    __atomic_store_n(&watched_was_freed, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&watched, e, __ATOMIC_RELAXED);
    del(t, "a");
    for (int i = 0; i < 100; i++)
        assert_true(table_step(t, 16));
    assert_false(__atomic_load_n(&watched_was_freed, __ATOMIC_RELAXED));
    assert_int_equal(idx_of(e), 7); /* still readable: ASan would object */
    table_read_end(r);

    for (int i = 0; i < 100 && table_step(t, 16); i++)
        ;
    assert_false(table_step(t, 16));
    assert_true(__atomic_load_n(&watched_was_freed, __ATOMIC_RELAXED));
    __atomic_store_n(&watched, NULL, __ATOMIC_RELAXED);

    /* An unregistered record is reused rather than leaked. */
    table_reader_unregister(t, r);
    struct table_reader *r2 = table_reader_register(t);
    assert_ptr_equal(r2, r);
    table_reader_unregister(t, r2);
    destroy_and_check(t);
}

static void test_table_destroy_frees_everything(void **state)
{
    struct table *t = table_create(1000);
    struct table_reader *r = table_reader_register(t);
    char k[32];
    for (uint32_t i = 0; i < 3000; i++)
        put(t, key_name(k, "k", i), i);
    for (uint32_t i = 0; i < 3000; i += 3)
        del(t, key_name(k, "k", i));
    for (uint32_t i = 3000; !resizing(t); i++)
        put(t, key_name(k, "k", i), i);
    table_reader_unregister(t, r);
    destroy_and_check(t); /* mid-resize, with retired entries not yet handed over */
}

/* --- Concurrent reader ------------------------------------------------------- */

enum { STABLE_KEYS = 512, ROUNDS = 8, CHURN_KEYS = 30000 };

/* Value of a stable key: generation, the key again, generation. */
static struct table_entry *mk_stable(uint32_t i, uint64_t gen)
{
    char k[32];
    key_name(k, "s", i);
    uint32_t len = (uint32_t)strlen(k);
    struct table_entry *e = table_entry_alloc(len, len + 16);
    assert_non_null(e);
    memcpy(e->data, k, len);
    char *v = table_entry_val(e);
    memcpy(v, &gen, 8);
    memcpy(v + 8, k, len);
    memcpy(v + 8 + len, &gen, 8);
    __atomic_store_n(&e->val_len, len + 16, __ATOMIC_RELEASE);
    return e;
}

struct shared {
    struct table *t;
    int stop;         /* atomic */
    long passes;      /* atomic: full passes over the stable keys */
    long misses;      /* atomic */
    long torn;        /* atomic */
    uint64_t max_gen; /* atomic: highest generation published */
};

static bool stable_ok(struct table_entry *e, const char *k, uint32_t len, uint64_t max_gen)
{
    if (e->key_len != len || memcmp(e->data, k, len) != 0)
        return false;
    if (table_entry_val_len(e) != len + 16)
        return false;
    const char *v = table_entry_val(e);
    uint64_t g1, g2;
    memcpy(&g1, v, 8);
    memcpy(&g2, v + 8 + len, 8);
    return g1 == g2 && g1 <= max_gen && memcmp(v + 8, k, len) == 0;
}

static void *reader_main(void *arg)
{
    struct shared *s = arg;
    struct table_reader *r = table_reader_register(s->t);
    if (!r) {
        __atomic_add_fetch(&s->torn, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    char k[32];
    while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
        for (uint32_t i = 0; i < STABLE_KEYS; i++) {
            uint32_t len = (uint32_t)strlen(key_name(k, "s", i));
            uint64_t hash = keyhash(k, len);
            table_read_begin(r);
            struct table_entry *e = table_find(s->t, k, len, hash);
            /* Published before e was: covers e's generation. */
            uint64_t max_gen = __atomic_load_n(&s->max_gen, __ATOMIC_ACQUIRE);
            if (!e)
                __atomic_add_fetch(&s->misses, 1, __ATOMIC_RELAXED);
            else if (!stable_ok(e, k, len, max_gen))
                __atomic_add_fetch(&s->torn, 1, __ATOMIC_RELAXED);
            TSAN_READ_END();
            table_read_end(r);
        }
        __atomic_add_fetch(&s->passes, 1, __ATOMIC_RELEASE);
    }
    table_reader_unregister(s->t, r);
    return NULL;
}

/* Waits (bounded) until the reader completes a pass that started after now. */
static void wait_for_reader(struct shared *s)
{
    long target = __atomic_load_n(&s->passes, __ATOMIC_ACQUIRE) + 2;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (__atomic_load_n(&s->passes, __ATOMIC_ACQUIRE) < target) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 60)
            fail_msg("reader made no progress in 60 s");
        sched_yield();
    }
}

static void replace_stable(struct shared *s, uint32_t i, uint64_t gen)
{
    char k[32];
    key_name(k, "s", i);
    __atomic_store_n(&s->max_gen, gen, __ATOMIC_RELEASE);
    struct table_entry *old;
    assert_int_equal(table_put(s->t, mk_stable(i, gen), hash_of(k), &old), 0);
    assert_non_null(old);
    table_retire(s->t, old);
}

static void test_table_concurrent_reader_never_misses(void **state)
{
    struct shared s = {.t = table_create(0)};
    char k[32];
    for (uint32_t i = 0; i < STABLE_KEYS; i++) {
        struct table_entry *old;
        assert_int_equal(table_put(s.t, mk_stable(i, 0), hash_of(key_name(k, "s", i)), &old), 0);
    }
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reader_main, &s), 0);
    wait_for_reader(&s);

    uint64_t gen = 0;
    unsigned resizes = 0;
    bool was_resizing = false;
    for (int round = 0; round < ROUNDS; round++) {
        for (uint32_t i = 0; i < 2 * CHURN_KEYS; i++) {
            if (i < CHURN_KEYS)
                put(s.t, key_name(k, "c", i), i);
            else
                del(s.t, key_name(k, "c", i - CHURN_KEYS));
            if (i % 4 == 0) {
                gen++;
                replace_stable(&s, (uint32_t)(gen % STABLE_KEYS), gen);
            }
            if (i % 64 == 0)
                table_step(s.t, 32);
            bool now = resizing(s.t);
            resizes += now && !was_resizing;
            was_resizing = now;
            if (i == CHURN_KEYS / 2 || i == CHURN_KEYS + CHURN_KEYS / 2)
                wait_for_reader(&s);
        }
        wait_for_reader(&s);
    }
    __atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
    assert_int_equal(pthread_join(th, NULL), 0);

    assert_true(resizes >= 4 * ROUNDS); /* 4096 <-> 65536 slots each round */
    assert_int_equal(__atomic_load_n(&s.misses, __ATOMIC_RELAXED), 0);
    assert_int_equal(__atomic_load_n(&s.torn, __ATOMIC_RELAXED), 0);
    assert_true(__atomic_load_n(&s.passes, __ATOMIC_RELAXED) >= 6 * ROUNDS);
    settle(s.t);
    destroy_and_check(s.t);
}

/* --- Split by partition ------------------------------------------------------ */

enum { SPLIT_PARTS = 16 };

static unsigned slot_part_calls; /* how often the table asked for a key's partition */

/* The test's partition of a key: its Redis Cluster slot's sixteenth. */
static uint32_t slot_part(const void *arg, const void *key, uint32_t len, uint64_t hash)
{
    (void)arg;
    (void)hash;
    slot_part_calls++;
    return keyhash_slot(key, len) >> 10;
}

static uint32_t part_of_name(const char *key)
{
    return slot_part(NULL, key, (uint32_t)strlen(key), 0);
}

/* Every entry a walk meets is of partition `want_part` (-1: any). */
struct part_visits {
    struct visits v;
    int want_part;
    size_t strangers;
};

static void part_visit(struct table_entry *e, void *arg)
{
    struct part_visits *pv = arg;
    count_visit(e, &pv->v);
    if (pv->want_part >= 0 && slot_part(NULL, e->data, e->key_len, 0) != (uint32_t)pv->want_part)
        pv->strangers++;
}

/* A whole-table scan with a small `want` (cursors across parts) sees each
 * of the n "s" keys once. */
static void scan_all_once(struct table *t, uint32_t n, uint32_t present_from)
{
    struct part_visits pv = {.v = {.seen = calloc(n, 1), .n = n}, .want_part = -1};
    uint64_t cursor = 0;
    do {
        size_t before = pv.v.calls;
        cursor = table_scan(t, cursor, 5, part_visit, &pv);
        assert_true(cursor == 0 || pv.v.calls - before >= 5);
        assert_int_equal(cursor & 0xffff, 0); /* SCAN's cursors keep the top 48 bits only */
    } while (cursor != 0);
    for (uint32_t i = present_from; i < n; i++)
        if (pv.v.seen[i] != 1)
            fail_msg("key s%u seen %u times by a scan of the split table", i, pv.v.seen[i]);
    free(pv.v.seen);
}

/* A split table: every key is found and counted in its partition's part;
 * a walk of one partition meets that partition's keys only, each once, and
 * as many as it holds (its cost is that partition, not the table); a walk
 * of the whole table meets every key once; writes, removes, reserve,
 * sample and clear go on per part; a second split changes nothing. */
static void test_table_split_walks_one_partition_alone(void **state)
{
    enum { KEYS = 6000 };
    struct table *t = table_create(0);
    char k[32];
    size_t per_part[SPLIT_PARTS] = {0};
    for (uint32_t i = 0; i < KEYS / 2; i++)
        put(t, key_name(k, "s", i), i);
    assert_false(table_is_split(t));
    assert_int_equal(table_split(t, 0, slot_part, NULL), -EINVAL);
    assert_int_equal(table_split(t, SPLIT_PARTS, slot_part, NULL), 0);
    assert_true(table_is_split(t));
    assert_int_equal(table_count(t), KEYS / 2);
    check_range(t, "s", 0, KEYS / 2);
    for (uint32_t i = KEYS / 2; i < KEYS; i++) /* the parts grow on their own */
        put(t, key_name(k, "s", i), i);
    check_range(t, "s", 0, KEYS);
    for (uint32_t i = 0; i < KEYS; i++)
        per_part[part_of_name(key_name(k, "s", i))]++;
    size_t total = 0;
    for (uint32_t p = 0; p < SPLIT_PARTS; p++) {
        assert_int_equal(table_part_count(t, p), per_part[p]);
        total += per_part[p];
    }
    assert_int_equal(total, KEYS);
    assert_int_equal(table_part_count(t, SPLIT_PARTS), 0);

    for (uint32_t p = 0; p < SPLIT_PARTS; p++) {
        struct part_visits pv = {.v = {.seen = calloc(KEYS, 1), .n = KEYS}, .want_part = (int)p};
        uint64_t cursor = 0;
        do
            cursor = table_scan_parts(t, &p, 1, cursor, 7, part_visit, &pv);
        while (cursor != 0);
        assert_int_equal(pv.strangers, 0);
        assert_int_equal(pv.v.calls, per_part[p]); /* that partition's keys, once each */
        free(pv.v.seen);
    }
    uint32_t two[2] = {3, 11};
    struct part_visits both = {.v = {.seen = calloc(KEYS, 1), .n = KEYS}, .want_part = -1};
    uint64_t cursor = 0;
    do
        cursor = table_scan_parts(t, two, 2, cursor, 3, part_visit, &both);
    while (cursor != 0);
    assert_int_equal(both.v.calls, per_part[3] + per_part[11]);
    free(both.v.seen);
    scan_all_once(t, KEYS, 0);

    /* removes shrink parts; the rest stays found and walked once */
    for (uint32_t i = 0; i < KEYS / 2; i++)
        del(t, key_name(k, "s", i));
    assert_int_equal(table_count(t), KEYS / 2);
    check_range(t, "s", KEYS / 2, KEYS);
    for (uint32_t i = 0; i < KEYS / 2; i++)
        assert_null(find(t, key_name(k, "s", i)));
    scan_all_once(t, KEYS, KEYS / 2);

    size_t before = table_overhead_bytes(t);
    assert_int_equal(table_reserve(t, 5, 100000), 0);
    assert_true(table_overhead_bytes(t) >= before + 100000 * sizeof(uint64_t));
    assert_int_equal(table_reserve(t, SPLIT_PARTS, 10), -EINVAL);
    check_range(t, "s", KEYS / 2, KEYS);

    uint64_t rng = 7;
    struct table_entry *got[4];
    for (int i = 0; i < 200; i++) {
        size_t n = table_sample(t, &rng, got, 4);
        assert_true(n >= 1);
        for (size_t j = 0; j < n; j++)
            assert_true(idx_of(got[j]) >= KEYS / 2 && idx_of(got[j]) < KEYS);
    }
    assert_int_equal(table_split(t, SPLIT_PARTS, slot_part, NULL), 0); /* once */
    check_range(t, "s", KEYS / 2, KEYS);
    table_clear(t);
    assert_int_equal(table_count(t), 0);
    assert_int_equal(table_sample(t, &rng, got, 4), 0);
    scan_all_once(t, 0, 0);
    settle(t);
    destroy_and_check(t);
}

static bool part_resizing(const struct table *t, uint32_t p)
{
    size_t slots = table_part_bytes(t, p) / sizeof(uint64_t);
    return (slots & (slots - 1)) != 0; /* two arrays: not a power of two */
}

/* A split table's small part moves its keys at once when it grows, so a
 * cluster's thousand parts do not each hold two arrays after growing
 * together; a bigger part drains as before, and table_step's budget goes
 * on to the next resizing part when one finishes. */
static void test_table_split_parts_grow_without_holding_two_arrays(void **state)
{
    struct table *t = table_create(0);
    char k[32];
    assert_int_equal(table_split(t, SPLIT_PARTS, slot_part, NULL), 0);
    /* up to about 180 keys a part: every old array has at most 256 slots */
    uint32_t i = 0;
    for (; i < SPLIT_PARTS * 150; i++) {
        put(t, key_name(k, "g", i), i);
        uint32_t p = part_of_name(k);
        if (part_resizing(t, p))
            fail_msg("part %u holds two arrays after key %u (%zu keys)", p, i,
                     table_part_count(t, p));
    }
    check_range(t, "g", 0, i);
    /* past that, parts drain write by write; one table_step with the
     * budget of all of them finishes every one */
    uint32_t resizing = 0;
    for (; i < SPLIT_PARTS * 1500 && resizing < 3; i++) {
        put(t, key_name(k, "g", i), i);
        resizing = 0;
        for (uint32_t p = 0; p < SPLIT_PARTS; p++)
            resizing += part_resizing(t, p);
    }
    assert_true(resizing >= 3);
    table_step(t, SPLIT_PARTS * 8192);
    for (uint32_t p = 0; p < SPLIT_PARTS; p++)
        if (part_resizing(t, p))
            fail_msg("part %u still resizing after one table_step of every part's budget", p);
    check_range(t, "g", 0, i);
    settle(t);
    destroy_and_check(t);
}

/* A reader looking keys up while the owner splits the table (and then
 * changes it) never misses one and never sees a torn entry. */
static void test_table_split_under_a_reader(void **state)
{
    struct shared s = {.t = table_create(0)};
    char k[32];
    for (uint32_t i = 0; i < STABLE_KEYS; i++) {
        struct table_entry *old;
        assert_int_equal(table_put(s.t, mk_stable(i, 0), hash_of(key_name(k, "s", i)), &old), 0);
    }
    for (uint32_t i = 0; i < CHURN_KEYS; i++)
        put(s.t, key_name(k, "c", i), i);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reader_main, &s), 0);
    wait_for_reader(&s);
    assert_int_equal(table_split(s.t, SPLIT_PARTS, slot_part, NULL), 0);
    wait_for_reader(&s);
    uint64_t gen = 0;
    for (uint32_t i = 0; i < CHURN_KEYS; i++) {
        del(s.t, key_name(k, "c", i));
        if (i % 4 == 0) {
            gen++;
            replace_stable(&s, (uint32_t)(gen % STABLE_KEYS), gen);
        }
        if (i % 64 == 0)
            table_step(s.t, 32);
    }
    wait_for_reader(&s);
    __atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(__atomic_load_n(&s.misses, __ATOMIC_RELAXED), 0);
    assert_int_equal(__atomic_load_n(&s.torn, __ATOMIC_RELAXED), 0);
    assert_int_equal(table_count(s.t), STABLE_KEYS);
    settle(s.t);
    destroy_and_check(s.t);
}

/* table_scan_passed names exactly the keys a whole-table walk has met so
 * far, split or not (anti-entropy's rebuild relies on it for writes made
 * while it walks). */
static void test_table_scan_passed_names_the_keys_met(void **state)
{
    enum { KEYS = 1500 };
    for (int split = 0; split < 2; split++) {
        struct table *t = table_create(0);
        char k[32];
        for (uint32_t i = 0; i < KEYS; i++)
            put(t, key_name(k, "s", i), i);
        if (split)
            assert_int_equal(table_split(t, SPLIT_PARTS, slot_part, NULL), 0);
        struct part_visits pv = {.v = {.seen = calloc(KEYS, 1), .n = KEYS}, .want_part = -1};
        uint64_t cursor = 0;
        int calls = 0;
        do {
            cursor = table_scan(t, cursor, 40, part_visit, &pv);
            calls++;
            for (uint32_t i = 0; cursor != 0 && i < KEYS; i++) {
                key_name(k, "s", i);
                bool passed = table_scan_passed(t, cursor, split ? part_of_name(k) : 0, hash_of(k));
                if (passed != (pv.v.seen[i] > 0))
                    fail_msg("split %d, call %d: s%u met %u times, passed %d", split, calls, i,
                             pv.v.seen[i], passed);
            }
        } while (cursor != 0);
        assert_true(calls > 10);
        free(pv.v.seen);
        settle(t);
        destroy_and_check(t);
    }
}

/* A walk of a big and a tiny partition together meets about `want` keys
 * per call: its chunks follow the big part's slots, not the tiny one's
 * (which would hand over a sixteenth of the big part at once). */
static void test_table_scan_parts_steps_follow_the_biggest_part(void **state)
{
    enum { KEYS = 20000 };
    struct table *t = table_create(0);
    char k[32];
    for (uint32_t i = 0; i < KEYS; i++)
        put(t, key_name(k, "s", i), i);
    assert_int_equal(table_split(t, SPLIT_PARTS, slot_part, NULL), 0);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < KEYS; i++)
        if (part_of_name(key_name(k, "s", i)) == 11 && kept++ > 0)
            del(t, k); /* partition 11 keeps one key: its part shrinks to 16 slots */
    settle(t);
    assert_int_equal(table_part_count(t, 11), 1);
    uint32_t two[2] = {3, 11};
    struct part_visits pv = {.v = {.seen = calloc(KEYS, 1), .n = KEYS}, .want_part = -1};
    uint64_t cursor = 0;
    size_t most = 0;
    do {
        size_t before = pv.v.calls;
        cursor = table_scan_parts(t, two, 2, cursor, 8, part_visit, &pv);
        if (pv.v.calls - before > most)
            most = pv.v.calls - before;
    } while (cursor != 0);
    assert_int_equal(pv.v.calls, table_part_count(t, 3) + 1);
    if (most > 24)
        fail_msg("one call met %zu keys for a want of 8", most);
    free(pv.v.seen);
    destroy_and_check(t);
}

/* A table of `keys` "s" keys, split by slot_part. */
static struct table *split_table_of(uint32_t keys)
{
    struct table *t = table_create(0);
    char k[32];
    for (uint32_t i = 0; i < keys; i++)
        put(t, key_name(k, "s", i), i);
    assert_int_equal(table_split(t, SPLIT_PARTS, slot_part, NULL), 0);
    return t;
}

/* Sixteen probes, of keys `prefix`(base + j) % keys, named in names. */
static void probes_of(struct table_probe probes[16], char names[16][32], const char *prefix,
                      uint32_t base, uint32_t keys)
{
    for (uint32_t j = 0; j < 16; j++) {
        key_name(names[j], prefix, (base + j) % keys);
        probes[j] = (struct table_probe){names[j], (uint32_t)strlen(names[j]), hash_of(names[j])};
    }
}

/* Lookups after a prefetch (which remembers each hash's part) find every
 * key of a split table, absent keys stay absent, and a remembered part
 * never hides a key whose hash shares the memo's slot. */
static void test_table_prefetched_lookups_in_a_split_table(void **state)
{
    enum { KEYS = 3000 };
    struct table *t = split_table_of(KEYS);
    char names[16][32];
    for (uint32_t base = 0; base < 2 * KEYS; base += 16) {
        struct table_probe probes[16]; /* present ("s") and absent ("x") keys */
        probes_of(probes, names, base < KEYS ? "s" : "x", base, KEYS);
        table_prefetch(t, probes, 16);
        for (uint32_t j = 0; j < 16; j++) {
            struct table_entry *e = find(t, names[j]);
            if (base < KEYS)
                assert_true(e && idx_of(e) == (base + j) % KEYS);
            else
                assert_null(e);
        }
        /* keys not prefetched, whose memo slots hold other hashes now */
        for (uint32_t j = 0; j < 16; j++)
            check_key(t, "s", (base * 7 + j * 131) % KEYS);
    }
    settle(t);
    destroy_and_check(t);
}

/* A write into a split table names the key's partition (table_put_placed);
 * an overwrite of a prefetched key takes it from the prefetch's memo, not
 * from the partition function again; a new key, or a memo that names
 * another part (a hash shared by two keys), asks the function and lands
 * in the key's own part. */
static void test_table_put_placed_names_the_part(void **state)
{
    enum { KEYS = 2000 };
    struct table *t = split_table_of(KEYS);
    char names[16][32];
    struct table_entry *old;
    uint32_t part;
    for (uint32_t base = 0; base < 2 * KEYS; base += 16) {
        struct table_probe probes[16]; /* present ("s") and new ("n") keys */
        probes_of(probes, names, base < KEYS ? "s" : "n", base, KEYS);
        table_prefetch(t, probes, 16);
        for (uint32_t j = 0; j < 16; j++) {
            /* (again alone: two of a batch may share a memo word) */
            table_prefetch(t, &probes[j], 1);
            uint32_t want = part_of_name(names[j]);
            unsigned calls = slot_part_calls;
            assert_int_equal(table_put_placed(t, mk(names[j], KEYS + j), hash_of(names[j]), &old,
                                              &part),
                             0);
            if (base < KEYS) /* asked before the checks below count calls */
                assert_int_equal(slot_part_calls, calls);
            assert_int_equal(part, want);
            if (base < KEYS) { /* an overwrite: the memo's part was the key's */
                assert_true(old && idx_of(old) == (base + j) % KEYS);
            } else { /* a new key: not in the memo's part, so it was asked */
                assert_null(old);
                assert_int_equal(slot_part_calls, calls + 1);
            }
            table_retire(t, old);
            assert_int_equal(idx_of(find(t, names[j])), KEYS + j);
        }
    }
    /* a memo naming another part: key b written with the hash a prefetch
     * gave key a, of another partition */
    const char *a = "s1", *b = NULL;
    for (uint32_t i = 2; !b; i++)
        if (part_of_name(key_name(names[0], "s", i)) != part_of_name(a))
            b = names[0];
    uint64_t h = hash_of(a);
    size_t in_b = table_part_count(t, part_of_name(b)), in_a = table_part_count(t, part_of_name(a));
    table_prefetch(t, &(struct table_probe){a, (uint32_t)strlen(a), h}, 1);
    struct table_entry *e = table_remove(t, b, (uint32_t)strlen(b), hash_of(b));
    table_retire(t, e);
    assert_int_equal(table_put_placed(t, mk(b, 7), h, &old, &part), 0);
    assert_null(old);
    assert_int_equal(part, part_of_name(b));
    assert_int_equal(table_part_count(t, part_of_name(b)), in_b);
    assert_int_equal(table_part_count(t, part_of_name(a)), in_a);
    e = table_find(t, b, (uint32_t)strlen(b), h);
    assert_true(e && idx_of(e) == 7);
    table_retire(t, table_remove(t, b, (uint32_t)strlen(b), h));
    /* not split: no part */
    struct table *whole = table_create(0);
    assert_int_equal(table_put_placed(whole, mk("w", 1), hash_of("w"), &old, &part), 0);
    assert_int_equal(part, TABLE_NO_PART);
    table_destroy(whole);
    settle(t);
    destroy_and_check(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_table_put_find_replace_remove, note_blocks),
        cmocka_unit_test_setup(test_table_entry_sizes, note_blocks),
        cmocka_unit_test_setup(test_table_tag_collisions_compare_keys, note_blocks),
        cmocka_unit_test_setup(test_table_many_keys_through_resizes, note_blocks),
        cmocka_unit_test_setup(test_table_reserve_grows_ahead, note_blocks),
        cmocka_unit_test_setup(test_table_reuses_tombstones, note_blocks),
        cmocka_unit_test_setup(test_table_writes_alone_finish_a_resize, note_blocks),
        cmocka_unit_test_setup(test_table_scan_visits_each_key_once, note_blocks),
        cmocka_unit_test_setup(test_table_scan_survives_growth_and_shrink, note_blocks),
        cmocka_unit_test_setup(test_table_sample_returns_live_entries, note_blocks),
        cmocka_unit_test_setup(test_table_clear_empties_and_frees, note_blocks),
        cmocka_unit_test_setup(test_table_retired_entry_outlives_reader_section, note_blocks),
        cmocka_unit_test_setup(test_table_destroy_frees_everything, note_blocks),
        cmocka_unit_test_setup(test_table_concurrent_reader_never_misses, note_blocks),
        cmocka_unit_test_setup(test_table_split_walks_one_partition_alone, note_blocks),
        cmocka_unit_test_setup(test_table_split_parts_grow_without_holding_two_arrays,
                               note_blocks),
        cmocka_unit_test_setup(test_table_split_under_a_reader, note_blocks),
        cmocka_unit_test_setup(test_table_scan_passed_names_the_keys_met, note_blocks),
        cmocka_unit_test_setup(test_table_scan_parts_steps_follow_the_biggest_part, note_blocks),
        cmocka_unit_test_setup(test_table_prefetched_lookups_in_a_split_table, note_blocks),
        cmocka_unit_test_setup(test_table_put_placed_names_the_part, note_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
