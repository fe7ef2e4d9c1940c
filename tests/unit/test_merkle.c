/* Unit tests for merkle: tictac trees (shards/merkle.h).
 * - two replicas that reach the same clocks in different orders (dvv_sync)
 *   have the same digests and equal trees; one update (old out, new in) gives
 *   the tree a rebuild from scratch gives, in any order, and a tombstone is a
 *   state of its own while an absent key adds nothing;
 * - the exchange's comparison narrows one differing key down to its branch
 *   and its leaf (and finds nothing between equal trees);
 * - the payload decoders refuse every wrong length and empty bitmaps;
 * - a store watcher (store_watch, anti-entropy's hook) sees every change of
 *   a real store: after thousands of plain and versioned writes, deletes,
 *   expiry changes, lazy and active expiry, evictions under maxmemory and a
 *   flush, the tree it kept equals one built by scanning the table. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "dvv.h"
#include "keyhash.h"
#include "merkle.h"
#include "store.h"
#include "table.h"

#define KEYS 2000

static struct dvv_entry entries[4][8];
static struct dvv_value values[4][8];

/* The digest of key with clock c (its canonical meta). */
static uint64_t digest_of(const char *key, const struct dvv_clock *c)
{
    struct buf meta;
    buf_init(&meta);
    assert_int_equal(dvv_encode_meta(c, &meta), 0);
    uint64_t d = merkle_digest(keyhash(key, strlen(key)), meta.data, meta.len);
    buf_fini(&meta);
    return d;
}

/* A write of value v by actor at the key, on top of clock server. */
static void write_at(struct dvv_clock *out, const struct dvv_clock *server, const char *v,
                     int64_t ts, uint64_t actor, bool is_tombstone)
{
    struct dvv_clock client;
    dvv_init(&client, entries[3], 8, values[3], 8);
    struct dvv_value val = {.data = is_tombstone ? NULL : v,
                            .len = is_tombstone ? 0 : (uint32_t)strlen(v),
                            .flags = is_tombstone ? DVV_TOMBSTONE : 0,
                            .ts_ms = ts};
    assert_int_equal(dvv_new(&client, &val), 0);
    assert_int_equal(dvv_update(out, &client, server, actor), 0);
}

static void test_merkle_same_state_same_digest(void **state)
{
    (void)state;
    struct dvv_clock a, b, ab, ba;
    dvv_init(&a, entries[0], 8, values[0], 8);
    dvv_init(&b, entries[1], 8, values[1], 8);
    write_at(&a, NULL, "one", 10, 0xA, false);
    write_at(&b, NULL, "two", 11, 0xB, false);
    dvv_init(&ab, entries[2], 8, values[2], 8);
    assert_int_equal(dvv_sync(&ab, &a, &b), 0);
    uint64_t d_ab = digest_of("k", &ab);
    dvv_init(&ba, entries[2], 8, values[2], 8);
    assert_int_equal(dvv_sync(&ba, &b, &a), 0);
    assert_int_equal(digest_of("k", &ba), d_ab); /* siblings either way round */
    assert_int_not_equal(digest_of("k", &a), digest_of("k", &b));
    assert_int_not_equal(digest_of("k", &a), digest_of("other", &a)); /* the key counts */
    /* a delete over the value is another state */
    struct dvv_clock t;
    dvv_init(&t, entries[1], 8, values[1], 8);
    write_at(&t, &a, NULL, 12, 0xA, true);
    assert_int_not_equal(digest_of("k", &t), digest_of("k", &a));
}

static uint64_t rng_state = 0x12345;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

struct model_key {
    char name[16];
    uint64_t hash;
    uint64_t digest; /* 0: absent */
};

static void add(struct merkle_tree *t, const struct model_key *k, uint64_t d)
{
    merkle_toggle(t, merkle_leaf_of(k->hash), d);
}

static void rebuild(struct merkle_tree *t, const struct model_key *keys, uint32_t n)
{
    merkle_clear(t);
    for (uint32_t i = n; i-- > 0;) /* another order than the writes' */
        if (keys[i].digest)
            add(t, &keys[i], keys[i].digest);
}

static void test_merkle_update_is_rebuild(void **state)
{
    (void)state;
    static struct model_key keys[KEYS];
    struct merkle_tree live, fresh;
    merkle_clear(&live);
    for (uint32_t i = 0; i < KEYS; i++) {
        snprintf(keys[i].name, sizeof keys[i].name, "key:%u", i);
        keys[i].hash = keyhash(keys[i].name, strlen(keys[i].name));
        keys[i].digest = 0;
    }
    for (int step = 0; step < 20000; step++) {
        struct model_key *k = &keys[rng() % KEYS];
        uint64_t next = rng() % 4 == 0 ? 0 : rng() | 1; /* a delete of the key, or a state */
        if (k->digest)
            add(&live, k, k->digest); /* the old state leaves */
        if (next)
            add(&live, k, next); /* the new one enters */
        k->digest = next;
    }
    rebuild(&fresh, keys, KEYS);
    assert_true(merkle_equal(&live, &fresh));
    for (uint32_t b = 0; b < MERKLE_BRANCHES; b++) {
        uint64_t x = 0;
        for (uint32_t l = 0; l < MERKLE_FANOUT; l++)
            x ^= live.leaf[b * MERKLE_FANOUT + l];
        assert_true(live.branch[b] == x);
    }
    /* every key gone: an empty tree */
    for (uint32_t i = 0; i < KEYS; i++)
        if (keys[i].digest)
            add(&live, &keys[i], keys[i].digest);
    merkle_clear(&fresh);
    assert_true(merkle_equal(&live, &fresh));
}

static void test_merkle_exchange_finds_the_leaf(void **state)
{
    (void)state;
    static struct model_key keys[KEYS];
    struct merkle_tree a, b;
    for (uint32_t i = 0; i < KEYS; i++) {
        snprintf(keys[i].name, sizeof keys[i].name, "k%u", i);
        keys[i].hash = keyhash(keys[i].name, strlen(keys[i].name));
        keys[i].digest = rng() | 1;
    }
    rebuild(&a, keys, KEYS);
    rebuild(&b, keys, KEYS);
    struct buf tree, segs;
    buf_init(&tree);
    buf_init(&segs);
    merkle_put_branches(&b, &tree);
    assert_int_equal(tree.len, MERKLE_TREE_BYTES);
    uint32_t map = 1;
    assert_int_equal(merkle_diff_branches(&a, tree.data, tree.len, &map), 0);
    assert_int_equal(map, 0); /* equal trees: nothing to descend into */
    /* b misses one key, holds another at a newer state */
    add(&b, &keys[7], keys[7].digest);
    add(&b, &keys[99], keys[99].digest);
    add(&b, &keys[99], keys[99].digest ^ 0x55);
    buf_clear(&tree);
    merkle_put_branches(&b, &tree);
    assert_int_equal(merkle_diff_branches(&a, tree.data, tree.len, &map), 0);
    uint32_t l7 = merkle_leaf_of(keys[7].hash), l99 = merkle_leaf_of(keys[99].hash);
    uint32_t want = 1u << (l7 / MERKLE_FANOUT) | 1u << (l99 / MERKLE_FANOUT);
    assert_int_equal(map, want);
    struct buf req;
    buf_init(&req);
    merkle_put_branchmap(map, &req);
    uint32_t got_map;
    assert_int_equal(merkle_get_branchmap(req.data, req.len, &got_map), 0);
    assert_int_equal(got_map, map);
    merkle_put_segments(&b, got_map, &segs);
    uint8_t leaves[MERKLE_LEAFMAP_BYTES];
    int n = merkle_diff_segments(&a, map, segs.data, segs.len, leaves);
    assert_int_equal(n, l7 == l99 ? 1 : 2);
    for (uint32_t l = 0; l < MERKLE_LEAVES; l++)
        assert_int_equal(merkle_leafmap_has(leaves, l), l == l7 || l == l99);
    /* the keys of those leaves are one range of hash space each */
    assert_true(keys[7].hash >= merkle_leaf_start(l7));
    assert_true(l7 == MERKLE_LEAVES - 1 || keys[7].hash < merkle_leaf_start(l7 + 1));
    assert_true(merkle_leaf_start(MERKLE_LEAVES) == 0);
    uint8_t back[MERKLE_LEAFMAP_BYTES];
    assert_int_equal(merkle_get_leafmap(leaves, sizeof leaves, back), 0);
    assert_memory_equal(back, leaves, sizeof leaves);
    buf_fini(&req);
    buf_fini(&tree);
    buf_fini(&segs);
}

static void test_merkle_decoders_refuse(void **state)
{
    (void)state;
    struct merkle_tree t;
    merkle_clear(&t);
    uint8_t big[MERKLE_TREE_BYTES * 2] = {0};
    uint32_t map;
    uint8_t leaves[MERKLE_LEAFMAP_BYTES];
    assert_int_equal(merkle_diff_branches(&t, big, MERKLE_TREE_BYTES - 1, &map), -EINVAL);
    assert_int_equal(merkle_diff_branches(&t, big, MERKLE_TREE_BYTES + 1, &map), -EINVAL);
    assert_int_equal(merkle_get_branchmap(big, 2, &map), -EINVAL); /* no branch */
    assert_int_equal(merkle_get_branchmap("\x01", 1, &map), -EINVAL);
    assert_int_equal(merkle_get_branchmap("\x01\0\0", 3, &map), -EINVAL);
    assert_int_equal(merkle_diff_segments(&t, 0x3, big, MERKLE_FANOUT * 8, leaves), -EINVAL);
    assert_int_equal(merkle_diff_segments(&t, 0x3, big, MERKLE_FANOUT * 16, leaves), 0);
    assert_int_equal(merkle_get_leafmap(big, MERKLE_LEAFMAP_BYTES, leaves), -EINVAL); /* empty */
    big[3] = 1;
    assert_int_equal(merkle_get_leafmap(big, MERKLE_LEAFMAP_BYTES - 1, leaves), -EINVAL);
    assert_int_equal(merkle_get_leafmap(big, MERKLE_LEAFMAP_BYTES, leaves), 0);
    /* KEYS pages: the request's start and the reply's stop */
    uint64_t at = 0;
    assert_int_equal(merkle_get_keys_request(big, MERKLE_LEAFMAP_BYTES, leaves, &at), -EINVAL);
    assert_int_equal(merkle_get_keys_request(big, MERKLE_KEYS_REQ_BYTES + 1, leaves, &at),
                     -EINVAL);
    struct buf page;
    buf_init(&page);
    merkle_put_keys_request(leaves, 0x1122334455667788ull, &page);
    assert_int_equal(page.len, MERKLE_KEYS_REQ_BYTES);
    uint8_t back[MERKLE_LEAFMAP_BYTES];
    assert_int_equal(merkle_get_keys_request(page.data, page.len, back, &at), 0);
    assert_memory_equal(back, leaves, sizeof back);
    assert_true(at == 0x1122334455667788ull);
    buf_clear(&page);
    merkle_put_stop(42, &page);
    assert_int_equal(merkle_get_stop(page.data, page.len, &at), 0);
    assert_true(at == 42);
    assert_int_equal(merkle_get_stop(page.data, page.len - 1, &at), -EINVAL);
    buf_fini(&page);
    uint64_t d;
    const void *key;
    uint32_t klen;
    assert_int_equal(merkle_get_key(big, 7, &d, &key, &klen), -EINVAL);
    struct buf v;
    buf_init(&v);
    merkle_put_key(0x0102030405060708ull, "abc", 3, &v);
    assert_int_equal(merkle_get_key(v.data, v.len, &d, &key, &klen), 0);
    assert_true(d == 0x0102030405060708ull);
    assert_int_equal(klen, 3);
    assert_memory_equal(key, "abc", 3);
    buf_fini(&v);
}

/* The store test: a plain entry's digest is a stand-in (its cas); aae.c
 * uses its implicit clock's meta, which the cas also determines. */
static uint64_t entry_digest(const struct table_entry *e, uint64_t hash)
{
    if (e->meta & TABLE_ENTRY_VERSIONED) {
        struct store_version v;
        store_entry_version(e, &v);
        return merkle_digest(hash, v.meta, v.meta_len);
    }
    return merkle_digest(hash, &e->cas, sizeof e->cas);
}

static void watch_fn(void *arg, const struct table_entry *e, uint64_t hash, uint32_t part)
{
    (void)part;
    struct merkle_tree *t = arg;
    if (!e) {
        merkle_clear(t);
        return;
    }
    assert_true(hash == keyhash(table_entry_key(e), e->key_len)); /* the store's, as said */
    merkle_toggle(t, merkle_leaf_of(hash), entry_digest(e, hash));
}

static void scan_fn(struct table_entry *e, void *arg)
{
    watch_fn(arg, e, keyhash(table_entry_key(e), e->key_len), TABLE_NO_PART);
}

static void expect_scan_equal(struct store *s, const struct merkle_tree *live)
{
    struct merkle_tree fresh;
    merkle_clear(&fresh);
    uint64_t cursor = 0;
    do {
        cursor = table_scan(s->table, cursor, 512, scan_fn, &fresh);
    } while (cursor != 0);
    assert_true(merkle_equal(live, &fresh));
}

#define T0 1700000000000LL

static void test_merkle_store_watch_sees_every_change(void **state)
{
    (void)state;
    static struct store s __attribute__((aligned(64)));
    struct store_config cfg = {.seed = 7, .maxmemory = 16 << 10, .policy = STORE_ALLKEYS_LRU};
    assert_int_equal(store_init(&s, &cfg), 0);
    int64_t now = T0;
    store_tick(&s, now);
    static struct merkle_tree live;
    merkle_clear(&live);
    store_watch(&s, watch_fn, &live);
    struct dvv_clock c;
    dvv_init(&c, entries[0], 8, values[0], 8);
    char key[32], val[64];
    for (int step = 0; step < 20000; step++) {
        snprintf(key, sizeof key, "k%u", (unsigned)(rng() % 500));
        uint32_t klen = (uint32_t)strlen(key);
        uint64_t hash = keyhash(key, klen);
        int len = snprintf(val, sizeof val, "v%d", step);
        int64_t expire = rng() % 5 == 0 ? now + (int64_t)(rng() % 3000) : 0;
        switch (rng() % 7) {
        case 0:
        case 1:
            store_put(&s, key, klen, hash, val, (size_t)len, expire, 0, NULL);
            break;
        case 2: { /* a versioned write, or a delete's tombstone */
            bool is_del = rng() % 3 == 0;
            write_at(&c, NULL, is_del ? NULL : val, now, 0xA0 + rng() % 4, is_del);
            store_put_versioned(&s, key, klen, hash, &c, expire, NULL);
            break;
        }
        case 3:
            store_delete(&s, key, klen, hash);
            break;
        case 4: {
            struct table_entry *e = store_lookup(&s, key, klen, hash);
            if (e) /* a time in the past deletes the key */
                store_set_expire(&s, e, hash, now + (int64_t)(rng() % 2000) - 500, NULL);
            break;
        }
        case 5: { /* APPEND: in place when the value has room (cas and length change) */
            struct table_entry *e = store_lookup(&s, key, klen, hash);
            if (e && !(e->meta & TABLE_ENTRY_VERSIONED))
                store_append(&s, e, hash, "ab", 2, NULL);
            break;
        }
        default:
            now += 50; /* expiry: lazily on lookups, actively on ticks */
            store_tick(&s, now);
            store_lookup_read(&s, key, klen, hash);
            break;
        }
        if (step % 2000 == 1999)
            expect_scan_equal(&s, &live);
    }
    struct store_stats stats;
    store_read_stats(&s, &stats);
    assert_true(stats.evicted_keys > 0); /* maxmemory took some */
    assert_true(stats.expired_keys > 0);
    store_flush(&s);
    struct merkle_tree empty;
    merkle_clear(&empty);
    assert_true(merkle_equal(&live, &empty));
    expect_scan_equal(&s, &live);
    store_put(&s, "after", 5, keyhash("after", 5), "x", 1, 0, 0, NULL);
    expect_scan_equal(&s, &live);
    store_watch(&s, NULL, NULL);
    store_fini(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merkle_same_state_same_digest),
        cmocka_unit_test(test_merkle_update_is_rebuild),
        cmocka_unit_test(test_merkle_exchange_finds_the_leaf),
        cmocka_unit_test(test_merkle_decoders_refuse),
        cmocka_unit_test(test_merkle_store_watch_sees_every_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
