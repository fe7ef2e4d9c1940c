/* Unit tests for keyhash: Redis Cluster's CRC16 key slots and their partitions.
 * The expected slots were computed by a real Redis Cluster node (redis-server
 * 7 with --cluster-enabled yes, `CLUSTER KEYSLOT key`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keyhash.h"

static void test_keyhash_crc16_matches_xmodem_check_value(void **state)
{
    assert_int_equal(keyhash_crc16("123456789", 9), 0x31c3);
    assert_int_equal(keyhash_crc16("", 0), 0);
}

/* CRC16 XMODEM a bit at a time, as its definition reads. */
static uint16_t crc16_bitwise(const unsigned char *p, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int bit = 0; bit < 8; bit++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

/* The eight-bytes-at-a-time CRC agrees with the definition at every length
 * and alignment (whole blocks, tails, both). */
static void test_keyhash_crc16_matches_bitwise_definition(void **state)
{
    unsigned char buf[200];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (unsigned char)(x >> 16);
    }
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; off + len <= sizeof buf; len++)
            if (keyhash_crc16(buf + off, len) != crc16_bitwise(buf + off, len))
                fail_msg("CRC16 of %zu bytes at offset %zu", len, off);
}

static const struct {
    const char *key;
    uint32_t slot;
} redis_slots[] = {
    {"foo", 12182},
    {"bar", 5061},
    {"123456789", 12739},
    {"", 0},
    {"hello world", 15332},
    {"somekey", 11058},
    {"user:1000", 1649},
    {"\xc3\xa9", 10180}, /* "é" in UTF-8 */
    {"{user1000}.following", 3443},
    {"{user1000}.followers", 3443},
    {"foo{}{bar}", 8363},    /* empty tag: the whole key */
    {"foo{{bar}}zap", 4015}, /* tag "{bar" */
    {"foo{bar}{zap}", 5061}, /* tag "bar", as the key "bar" */
    {"{}", 15257},
    {"a{b", 13340}, /* no closing brace */
    {"}a{", 11710},
    {"{a}", 15495},
    {"x{}y{z}", 15453},
    {"{{}}", 4092}, /* tag "{" */
};

static void test_keyhash_slot_matches_redis_cluster(void **state)
{
    for (size_t i = 0; i < sizeof redis_slots / sizeof redis_slots[0]; i++) {
        const char *k = redis_slots[i].key;
        uint32_t got = keyhash_slot(k, strlen(k));
        if (got != redis_slots[i].slot)
            fail_msg("slot of \"%s\": %u, Redis says %u", k, got, redis_slots[i].slot);
    }
}

static void test_keyhash_slot_reads_only_len_bytes(void **state)
{
    /* "{a}b" cut to "{a" has no closing brace: the slot of "{a" itself. */
    assert_int_equal(keyhash_slot("{a}b", 2), keyhash_crc16("{a", 2) & (KEYHASH_SLOTS - 1));
    assert_int_equal(keyhash_slot("{a}b", 3), keyhash_slot("a", 1));
}

static void test_keyhash_slot_partition_owns_consecutive_slots(void **state)
{
    assert_int_equal(keyhash_slot_partition(0, 1), 0);
    assert_int_equal(keyhash_slot_partition(16383, 1), 0);
    assert_int_equal(keyhash_slot_partition(15, 1024), 0);
    assert_int_equal(keyhash_slot_partition(16, 1024), 1);
    assert_int_equal(keyhash_slot_partition(16383, 1024), 1023);
    assert_int_equal(keyhash_slot_partition(12182, 16384), 12182);
    for (uint32_t q = 1; q <= KEYHASH_SLOTS; q <<= 1)
        for (uint32_t p = 0; p < q; p++) {
            assert_int_equal(keyhash_slot_partition(p * KEYHASH_SLOTS / q, q), p);
            assert_int_equal(keyhash_slot_partition((p + 1) * KEYHASH_SLOTS / q - 1, q), p);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyhash_crc16_matches_xmodem_check_value),
        cmocka_unit_test(test_keyhash_crc16_matches_bitwise_definition),
        cmocka_unit_test(test_keyhash_slot_matches_redis_cluster),
        cmocka_unit_test(test_keyhash_slot_reads_only_len_bytes),
        cmocka_unit_test(test_keyhash_slot_partition_owns_consecutive_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
