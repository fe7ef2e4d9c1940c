/* Unit tests for the node id file (admin/identity.c): made once, read back,
 * a damaged file refused and left alone. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "identity.h"

static char dir[64];

static int make_dir(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/ringkv-identity-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    char path[128];
    snprintf(path, sizeof path, "%s/" IDENTITY_FILE, dir);
    unlink(path);
    return rmdir(dir);
}

static void test_identity_made_once_and_kept(void **state)
{
    char a[IDENTITY_LEN + 1], b[IDENTITY_LEN + 1];
    bool created;
    assert_int_equal(identity_load(dir, a, &created), 0);
    assert_true(created);
    assert_true(identity_valid(a, strlen(a)));
    assert_int_equal(identity_load(dir, b, &created), 0);
    assert_false(created);
    assert_string_equal(a, b);
    char path[128], line[64] = "";
    snprintf(path, sizeof path, "%s/" IDENTITY_FILE, dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_int_equal(strlen(line), IDENTITY_LEN + 1);
    assert_memory_equal(line, a, IDENTITY_LEN);
    snprintf(path, sizeof path, "%s/" IDENTITY_FILE ".tmp", dir);
    assert_int_not_equal(access(path, F_OK), 0); /* the temporary name is gone */
}

static void test_identity_refuses_a_damaged_file(void **state)
{
    char path[128];
    snprintf(path, sizeof path, "%s/" IDENTITY_FILE, dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("0123456789ABCDEF0123456789abcdef01234567\n", f); /* upper case */
    fclose(f);
    char id[IDENTITY_LEN + 1];
    bool created;
    assert_int_equal(identity_load(dir, id, &created), -EINVAL);
    f = fopen(path, "r");
    char line[64] = "";
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_string_equal(line, "0123456789ABCDEF0123456789abcdef01234567\n"); /* left alone */
}

static void test_identity_missing_dir_is_an_error(void **state)
{
    char id[IDENTITY_LEN + 1];
    bool created;
    assert_int_equal(identity_load("/nonexistent/ringkv", id, &created), -ENOENT);
}

static void test_identity_random_ids_differ(void **state)
{
    char a[IDENTITY_LEN + 1], b[IDENTITY_LEN + 1];
    assert_int_equal(identity_random(a), 0);
    assert_int_equal(identity_random(b), 0);
    assert_true(identity_valid(a, IDENTITY_LEN));
    assert_string_not_equal(a, b);
    assert_false(identity_valid(a, IDENTITY_LEN - 1));
    assert_false(identity_valid("g123456789abcdef0123456789abcdef01234567", IDENTITY_LEN));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity_made_once_and_kept, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_identity_refuses_a_damaged_file, make_dir,
                                        remove_dir),
        cmocka_unit_test(test_identity_missing_dir_is_an_error),
        cmocka_unit_test(test_identity_random_ids_differ),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
