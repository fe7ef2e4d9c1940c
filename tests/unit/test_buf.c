/* test_buf.c: the decimal appends of buf.h (the transfer state file writes
 * its numbers with buf_append_u64, without printf): every digit count, the
 * extremes, and the same text printf gives for a spread of values. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"

static void expect_u64(uint64_t v)
{
    struct buf b;
    buf_init(&b);
    buf_append(&b, "x", 1); /* appends after what is there */
    buf_append_u64(&b, v);
    char want[32];
    int n = snprintf(want, sizeof want, "x%" PRIu64, v);
    assert_int_equal(b.len, (size_t)n);
    assert_memory_equal(b.data, want, (size_t)n);
    assert_false(b.failed);
    buf_fini(&b);
}

static void test_buf_append_u64_is_printf(void **state)
{
    (void)state;
    expect_u64(0);
    expect_u64(9);
    expect_u64(10);
    expect_u64(UINT64_MAX); /* 20 digits */
    expect_u64(UINT64_MAX - 1);
    expect_u64(10000000000000000000u);
    for (uint64_t p = 1; p && p <= UINT64_MAX / 10; p *= 10) { /* every digit count */
        expect_u64(p - 1);
        expect_u64(p);
        expect_u64(p + 1);
    }
    for (uint64_t v = 1, i = 0; i < 2000; i++, v = v * 6364136223846793005u + 1442695040888963407u)
        expect_u64(v >> (i % 64));
}

static void test_buf_append_i64_is_printf(void **state)
{
    (void)state;
    int64_t vs[] = {0, -1, 1, INT64_MIN, INT64_MAX, -1000000007, 42};
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        struct buf b;
        buf_init(&b);
        buf_append_i64(&b, vs[i]);
        char want[32];
        int n = snprintf(want, sizeof want, "%" PRId64, vs[i]);
        assert_int_equal(b.len, (size_t)n);
        assert_memory_equal(b.data, want, (size_t)n);
        buf_fini(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_append_u64_is_printf),
        cmocka_unit_test(test_buf_append_i64_is_printf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
