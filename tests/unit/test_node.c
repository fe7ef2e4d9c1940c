/* Unit tests for node.h's routing: a key's partition is its Redis Cluster
 * slot's (the slot CLUSTER KEYSLOT answers), so keys of one {hash tag} live
 * on one shard whatever the shard count; the xxh3 function of upgrade tests
 * places keys as releases before slots did. The nodes here are built by
 * hand, as node_create() builds them (partition p on shard p mod S). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "keyhash.h"
#include "node.h"

static uint16_t map[KEYHASH_SLOTS];

static struct node node_with(uint32_t q, uint32_t nshards, enum keyhash_fn fn)
{
    for (uint32_t p = 0; p < q; p++)
        map[p] = (uint16_t)(p % nshards);
    return (struct node){.nshards = nshards, .npartitions = q,
                         .slot_shift = keyhash_slot_shift(q), .partition_fn = fn,
                         .partition_shard = map};
}

static void test_node_slot_shift_matches_slot_partition(void **state)
{
    for (uint32_t q = 1; q <= KEYHASH_SLOTS; q <<= 1)
        for (uint32_t slot = 0; slot < KEYHASH_SLOTS; slot++)
            if ((slot >> keyhash_slot_shift(q)) != keyhash_slot_partition(slot, q))
                fail_msg("slot %u, %u partitions", slot, q);
}

/* Slots a real Redis Cluster node gave (CLUSTER KEYSLOT). */
static const struct {
    const char *key;
    uint32_t slot;
} redis_slots[] = {
    {"foo", 12182},         {"somekey", 11058},     {"foo{hash_tag}", 2515},
    {"user:1000", 1649},    {"{user1000}.following", 3443},
    {"123456789", 12739},   {"", 0},
};

static void test_node_partition_is_that_of_the_redis_slot(void **state)
{
    for (uint32_t q = 1; q <= KEYHASH_SLOTS; q <<= 1) {
        struct node n = node_with(q, q < 4 ? q : 4, KEYHASH_FN_SLOT);
        for (size_t i = 0; i < sizeof redis_slots / sizeof redis_slots[0]; i++) {
            const char *k = redis_slots[i].key;
            uint32_t want = keyhash_slot_partition(redis_slots[i].slot, q);
            assert_int_equal(node_partition_of(&n, k, strlen(k), keyhash(k, strlen(k))), want);
            assert_int_equal(node_shard_of(&n, k, strlen(k), keyhash(k, strlen(k))),
                             want % n.nshards);
        }
    }
    /* Q = 1024: partition p owns slots 16p .. 16p+15. */
    struct node n = node_with(1024, 3, KEYHASH_FN_SLOT);
    assert_int_equal(node_partition_of(&n, "foo", 3, keyhash("foo", 3)), 12182 / 16);
}

static void test_node_same_hash_tag_same_shard(void **state)
{
    char a[64], b[64];
    for (uint32_t nshards = 1; nshards <= 16; nshards++) {
        struct node n = node_with(1024, nshards, KEYHASH_FN_SLOT);
        uint32_t spread = 0;
        for (int i = 0; i < 200; i++) {
            int la = snprintf(a, sizeof a, "{user%d}:name", i);
            int lb = snprintf(b, sizeof b, "x{user%d}y:%d", i, i * 7);
            uint32_t sa = node_shard_of(&n, a, (size_t)la, keyhash(a, (size_t)la));
            assert_int_equal(sa, node_shard_of(&n, b, (size_t)lb, keyhash(b, (size_t)lb)));
            spread |= 1u << sa;
        }
        assert_int_equal(spread, (1u << nshards) - 1); /* tags still spread over every shard */
    }
}

static void test_node_xxh3_function_places_keys_as_before_slots(void **state)
{
    struct node n = node_with(1024, 3, KEYHASH_FN_XXH3);
    uint32_t differ = 0;
    for (int i = 0; i < 1000; i++) {
        char k[32];
        int len = snprintf(k, sizeof k, "key:%d", i);
        if (len <= 0 || len > 16)
            abort(); /* "key:999" at most; tells GCC -O3 that xxh3 reads within k */
        uint64_t h = keyhash(k, (size_t)len);
        assert_int_equal(node_partition_of(&n, k, (size_t)len, h), h & 1023);
        assert_int_equal(keyhash_partition_by(KEYHASH_FN_XXH3, k, (size_t)len, h, 1024), h & 1023);
        uint32_t slot_p = keyhash_partition_by(KEYHASH_FN_SLOT, k, (size_t)len, h, 1024);
        assert_int_equal(slot_p, keyhash_slot(k, (size_t)len) / 16);
        differ += slot_p % 3 != (h & 1023) % 3;
    }
    assert_true(differ > 500); /* most keys move shard: an upgrade must re-lay them */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_slot_shift_matches_slot_partition),
        cmocka_unit_test(test_node_partition_is_that_of_the_redis_slot),
        cmocka_unit_test(test_node_same_hash_tag_same_shard),
        cmocka_unit_test(test_node_xxh3_function_places_keys_as_before_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
