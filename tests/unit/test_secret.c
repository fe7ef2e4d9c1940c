/* test_secret.c: secret_equal() (src/secret.c), the password comparison of
 * AUTH and HELLO ... AUTH. Its constant time is by construction (the loop
 * always runs over the secret's whole length, see secret.c); these cases
 * check that it answers right, in particular for guesses that a comparison
 * over a repeated guess could mistake for the secret. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "secret.h"

static bool eq(const char *secret, const char *guess)
{
    return secret_equal(secret, strlen(secret), guess, strlen(guess));
}

static void test_secret_equal_accepts_the_secret(void **state)
{
    assert_true(eq("s3cret", "s3cret"));
    assert_true(eq("x", "x"));
    char bin[4] = {'a', '\0', 'b', '\xff'}; /* binary-safe: NUL and high bytes */
    assert_true(secret_equal(bin, 4, bin, 4));
}

static void test_secret_equal_rejects_any_difference(void **state)
{
    assert_false(eq("s3cret", "X3cret")); /* first byte */
    assert_false(eq("s3cret", "s3creX")); /* last byte */
    assert_false(eq("s3cret", "S3CRET"));
    char a[4] = {'a', '\0', 'b', 'c'};
    char b[4] = {'a', '\0', 'b', 'd'};
    assert_false(secret_equal(a, 4, b, 4));
}

static void test_secret_equal_rejects_other_lengths(void **state)
{
    assert_false(eq("s3cret", ""));
    assert_false(eq("s3cret", "s3cre"));   /* a prefix */
    assert_false(eq("s3cret", "s3crets")); /* the secret and more */
    assert_false(eq("abab", "ab"));        /* repeated, the guess covers the secret */
    assert_false(eq("aaaa", "a"));
    assert_false(eq("ab", "abab"));
    assert_false(secret_equal("", 0, "x", 1));
    assert_true(secret_equal("", 0, "", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_equal_accepts_the_secret),
        cmocka_unit_test(test_secret_equal_rejects_any_difference),
        cmocka_unit_test(test_secret_equal_rejects_other_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
