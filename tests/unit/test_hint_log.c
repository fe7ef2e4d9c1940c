/* test_hint_log.c: the hint log's codec and recovery scan (shards/hints.c).
 * - round trips: every field (partition, target, time, expiry, key, meta,
 *   body, empty ones too) comes back, and the bytes are hints.h's layout
 *   (lengths, version, the target id as 20 bytes, XXH3-64 over the rest);
 * - every proper prefix of a record is HINT_MORE, never OK or BAD;
 * - every single-bit change is never HINT_OK (a changed length may make the
 *   record look longer than the bytes: HINT_MORE);
 * - bad input to the encoder (a target that is not 40 lowercase hex) is
 *   -EINVAL and appends nothing;
 * - the scan recovery runs: a file of records takes them all; a torn tail
 *   (nothing valid after) ends it at the last whole record; a flipped byte
 *   or a corrupt length in the middle skips that record only (counted as
 *   skipped bytes) and every whole record after it is taken.
 * Every decode reads an exact-size heap copy, so AddressSanitizer catches a
 * read past the end. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "buf.h"
#include "hints.h"

#define TARGET "0123456789abcdef0123456789abcdef01234567"

static struct hint_record sample(int i, const char *key, const char *meta, const char *body)
{
    struct hint_record r = {.partition = (uint16_t)(100 + i),
                            .time_ms = 1700000000000ULL + (uint64_t)i,
                            .expire_at_ms = i % 2 ? 1800000000000ULL : 0};
    memcpy(r.target, TARGET, sizeof r.target);
    r.key = (struct wire_bytes){(const uint8_t *)key, (uint32_t)strlen(key)};
    r.meta = (struct wire_bytes){(const uint8_t *)meta, (uint32_t)strlen(meta)};
    r.body = (struct wire_bytes){(const uint8_t *)body, (uint32_t)strlen(body)};
    return r;
}

static enum hint_status decode_exact(const void *p, size_t len, struct hint_record *r,
                                     size_t *used, uint8_t **copy)
{
    *copy = malloc(len ? len : 1);
    assert_non_null(*copy);
    memcpy(*copy, p, len);
    return hint_decode(*copy, len, r, used);
}

static void same_bytes(struct wire_bytes a, struct wire_bytes b)
{
    assert_int_equal(a.len, b.len);
    if (a.len)
        assert_memory_equal(a.ptr, b.ptr, a.len);
}

static void test_hints_round_trip(void **state)
{
    (void)state;
    const char *keys[] = {"k", "", "a longer key {tag}"};
    const char *metas[] = {"m", "meta bytes", ""};
    const char *bodies[] = {"", "value", "v2"};
    for (int i = 0; i < 3; i++) {
        struct hint_record in = sample(i, keys[i], metas[i], bodies[i]), out;
        struct buf b;
        buf_init(&b);
        assert_int_equal(hint_encode(&b, &in), 0);
        size_t want = HINT_HEADER_LEN + HINT_BODY_FIXED + in.key.len + in.meta.len + in.body.len;
        assert_int_equal(b.len, want);
        const uint8_t *p = (const uint8_t *)b.data;
        assert_int_equal(p[8] | p[9] << 8 | p[10] << 16 | (uint32_t)p[11] << 24,
                         want - HINT_HEADER_LEN);
        assert_int_equal(p[12], HINT_VERSION);
        assert_int_equal(p[16], 0x01); /* the id's first two hex digits */
        assert_int_equal(p[35], 0x67);
        uint64_t sum = 0;
        for (int k = 7; k >= 0; k--)
            sum = sum << 8 | p[k];
        assert_true(sum == XXH3_64bits(p + 8, want - 8));
        size_t used;
        uint8_t *copy;
        assert_int_equal(decode_exact(b.data, b.len, &out, &used, &copy), HINT_OK);
        assert_int_equal(used, want);
        assert_int_equal(out.partition, in.partition);
        assert_string_equal(out.target, TARGET);
        assert_true(out.time_ms == in.time_ms);
        assert_true(out.expire_at_ms == in.expire_at_ms);
        same_bytes(out.key, in.key);
        same_bytes(out.meta, in.meta);
        same_bytes(out.body, in.body);
        free(copy);
        buf_fini(&b);
    }
}

static void test_hints_prefixes_are_more(void **state)
{
    (void)state;
    struct hint_record in = sample(1, "key", "meta", "body"), out;
    struct buf b;
    buf_init(&b);
    assert_int_equal(hint_encode(&b, &in), 0);
    for (size_t n = 0; n < b.len; n++) {
        size_t used = 7;
        uint8_t *copy;
        assert_int_equal(decode_exact(b.data, n, &out, &used, &copy), HINT_MORE);
        assert_int_equal(used, 0);
        free(copy);
    }
    buf_fini(&b);
}

static void test_hints_bit_flips_are_never_ok(void **state)
{
    (void)state;
    struct hint_record in = sample(2, "key", "meta", "body"), out;
    struct buf b;
    buf_init(&b);
    assert_int_equal(hint_encode(&b, &in), 0);
    for (size_t i = 0; i < b.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b.data[i] ^= (char)(1 << bit);
            size_t used;
            uint8_t *copy;
            enum hint_status st = decode_exact(b.data, b.len, &out, &used, &copy);
            assert_int_not_equal(st, HINT_OK);
            if (st == HINT_MORE)
                assert_true(i >= 8 && i < 12); /* only the length can say "longer" */
            free(copy);
            b.data[i] ^= (char)(1 << bit);
        }
    }
    buf_fini(&b);
}

static void test_hints_encoder_refuses_bad_targets(void **state)
{
    (void)state;
    const char *bad[] = {"", "0123", "0123456789abcdef0123456789abcdef0123456", "0123456789ABCDEF0123456789abcdef01234567",
                         "0123456789abcdef0123456789abcdef0123456g"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct hint_record r = sample(0, "k", "m", "v");
        snprintf(r.target, sizeof r.target, "%s", bad[i]);
        struct buf b;
        buf_init(&b);
        assert_int_equal(hint_encode(&b, &r), -EINVAL);
        assert_int_equal(b.len, 0);
        buf_fini(&b);
    }
}

struct taken {
    int n;
    size_t offs[16];
};

static void take(void *arg, const struct hint_record *r, size_t off, size_t len)
{
    struct taken *t = arg;
    assert_true(len > HINT_HEADER_LEN);
    assert_string_equal(r->target, TARGET);
    t->offs[t->n++] = off;
}

/* A file image of n records; ends[i]: where record i ends. */
static void image(struct buf *b, int n, size_t *ends)
{
    buf_init(b);
    for (int i = 0; i < n; i++) {
        char key[16];
        snprintf(key, sizeof key, "key%d", i);
        struct hint_record r = sample(i, key, "meta", "a value");
        assert_int_equal(hint_encode(b, &r), 0);
        ends[i] = b->len;
    }
}

static void test_hints_scan_recovers_whole_records(void **state)
{
    (void)state;
    struct buf b;
    size_t ends[5];
    image(&b, 5, ends);
    struct taken t = {0};
    size_t skipped = 1;
    assert_int_equal(hint_scan((const uint8_t *)b.data, b.len, take, &t, &skipped), b.len);
    assert_int_equal(skipped, 0);
    assert_int_equal(t.n, 5);
    assert_int_equal(t.offs[3], ends[2]);

    /* a torn tail: cut inside the last record */
    for (size_t cut = ends[3] + 1; cut < ends[4]; cut += 7) {
        struct taken tt = {0};
        assert_int_equal(hint_scan((const uint8_t *)b.data, cut, take, &tt, &skipped), ends[3]);
        assert_int_equal(skipped, 0);
        assert_int_equal(tt.n, 4);
    }
    buf_fini(&b);
}

/* A record in the middle that fails its checksum is skipped: the scan
 * resyncs at the next valid record and keeps every one after it. */
static void test_hints_scan_skips_a_bad_record(void **state)
{
    (void)state;
    struct buf b;
    size_t ends[5];
    image(&b, 5, ends);
    b.data[ends[1] + HINT_HEADER_LEN + HINT_BODY_FIXED + 1] ^= 0x20; /* record 2's key */
    struct taken t = {0};
    size_t skipped = 0;
    assert_int_equal(hint_scan((const uint8_t *)b.data, b.len, take, &t, &skipped), b.len);
    assert_int_equal(skipped, ends[2] - ends[1]);
    assert_int_equal(t.n, 4); /* 0, 1, 3 and 4 */
    assert_int_equal(t.offs[2], ends[2]);
    assert_int_equal(t.offs[3], ends[3]);
    buf_fini(&b);
}

/* A corrupt length (past the end of the file, or past the record) is not a
 * torn tail when valid records follow. */
static void test_hints_scan_skips_a_corrupt_length(void **state)
{
    (void)state;
    uint32_t lens[] = {0xfffff0u, HINT_BODY_FIXED + 1, 3};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        struct buf b;
        size_t ends[5];
        image(&b, 5, ends);
        uint8_t *p = (uint8_t *)b.data + ends[0]; /* record 1's length */
        for (int k = 0; k < 4; k++)
            p[8 + k] = (uint8_t)(lens[i] >> (8 * k));
        struct taken t = {0};
        size_t skipped = 0;
        assert_int_equal(hint_scan((const uint8_t *)b.data, b.len, take, &t, &skipped), b.len);
        assert_int_equal(skipped, ends[1] - ends[0]);
        assert_int_equal(t.n, 4);
        buf_fini(&b);
    }
}

/* Garbage after the last valid record is a torn tail: the scan ends where
 * that record ends, and counts nothing as skipped. */
static void test_hints_scan_cuts_only_a_torn_tail(void **state)
{
    (void)state;
    struct buf b;
    size_t ends[3];
    image(&b, 3, ends);
    b.data[ends[2] - 1] ^= 0x01; /* the last record's value */
    struct taken t = {0};
    size_t skipped = 1;
    assert_int_equal(hint_scan((const uint8_t *)b.data, b.len, take, &t, &skipped), ends[1]);
    assert_int_equal(skipped, 0);
    assert_int_equal(t.n, 2);
    buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hints_round_trip),
        cmocka_unit_test(test_hints_prefixes_are_more),
        cmocka_unit_test(test_hints_bit_flips_are_never_ok),
        cmocka_unit_test(test_hints_encoder_refuses_bad_targets),
        cmocka_unit_test(test_hints_scan_recovers_whole_records),
        cmocka_unit_test(test_hints_scan_skips_a_bad_record),
        cmocka_unit_test(test_hints_scan_skips_a_corrupt_length),
        cmocka_unit_test(test_hints_scan_cuts_only_a_torn_tail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
