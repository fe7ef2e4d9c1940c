/* Unit tests for the admin HTTP server's pure parts (admin/http.c): routes,
 * the methods each takes, the Authorization check and yes/no query
 * parameters (?dry_run). */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http.h"

static void test_http_routes_fixed_paths(void **state)
{
    char id[HTTP_ID_LEN + 1];
    assert_int_equal(http_route("/v1/health", id), HTTP_HEALTH);
    assert_int_equal(http_route("/v1/nodes", id), HTTP_NODES);
    assert_int_equal(http_route("/v1/nodes/", id), HTTP_NODES);
    assert_int_equal(http_route("/v1/ring", id), HTTP_RING);
    assert_int_equal(http_route("/v1/stats", id), HTTP_STATS);
    assert_int_equal(http_route("/metrics", id), HTTP_METRICS);
    assert_int_equal(http_route("/", id), HTTP_NOT_FOUND);
    assert_int_equal(http_route("/v1", id), HTTP_NOT_FOUND);
    assert_int_equal(http_route("/v1/healthz", id), HTTP_NOT_FOUND);
    assert_int_equal(http_route("/v1/health/x", id), HTTP_NOT_FOUND);
    assert_int_equal(http_route("", id), HTTP_NOT_FOUND);
}

static void test_http_routes_node_ids(void **state)
{
    char id[HTTP_ID_LEN + 1];
    const char *good = "0123456789abcdef0123456789abcdef01234567";
    char path[128];
    snprintf(path, sizeof path, "/v1/nodes/%s", good);
    assert_int_equal(http_route(path, id), HTTP_NODE);
    assert_string_equal(id, good);
    assert_int_equal(http_route("/v1/nodes/abc", id), HTTP_NODE); /* the handler says 400 */
    assert_string_equal(id, "abc");
    snprintf(path, sizeof path, "/v1/nodes/%s0", good);            /* 41 characters */
    assert_int_equal(http_route(path, id), HTTP_NOT_FOUND);
    assert_int_equal(http_route("/v1/nodes/a/b", id), HTTP_NOT_FOUND);
}

static void test_http_methods_per_route(void **state)
{
    assert_true(http_method_allowed(HTTP_NODES, HTTP_POST));
    assert_true(http_method_allowed(HTTP_NODE, HTTP_DELETE));
    assert_true(http_method_allowed(HTTP_RING, HTTP_GET));
    assert_false(http_method_allowed(HTTP_RING, HTTP_POST));
    assert_false(http_method_allowed(HTTP_NODES, HTTP_DELETE));
    assert_false(http_method_allowed(HTTP_HEALTH, HTTP_OTHER));
    assert_false(http_method_allowed(HTTP_NOT_FOUND, HTTP_GET));
    assert_string_equal(http_allowed(HTTP_NODES), "GET, HEAD, POST");
    assert_string_equal(http_allowed(HTTP_NODE), "GET, HEAD, DELETE");
    assert_string_equal(http_allowed(HTTP_METRICS), "GET, HEAD");
    assert_int_equal(http_method_of("HEAD"), HTTP_GET);
    assert_int_equal(http_method_of("PUT"), HTTP_OTHER);
    assert_int_equal(http_method_of("get"), HTTP_OTHER); /* methods are case-sensitive */
}

static void test_http_auth_bearer_and_basic(void **state)
{
    assert_true(http_auth_ok(NULL, ""));          /* no password: everyone */
    assert_true(http_auth_ok("Bearer x", ""));
    assert_false(http_auth_ok(NULL, "s3cret"));
    assert_true(http_auth_ok("Bearer s3cret", "s3cret"));
    assert_true(http_auth_ok("bearer s3cret", "s3cret"));
    assert_false(http_auth_ok("Bearer s3cre", "s3cret"));
    assert_false(http_auth_ok("Bearer s3cret2", "s3cret"));
    assert_false(http_auth_ok("Bearer ", "s3cret"));
    assert_true(http_auth_ok("Basic YW55OnMzY3JldA==", "s3cret"));  /* any:s3cret */
    assert_true(http_auth_ok("Basic OnMzY3JldA", "s3cret"));        /* :s3cret, unpadded */
    assert_true(http_auth_ok("Basic dTpzM2NyZXQ6eA==", "s3cret:x")); /* u:s3cret:x */
    assert_false(http_auth_ok("Basic YW55Ondyb25n", "s3cret"));      /* any:wrong */
    assert_false(http_auth_ok("Basic czNjcmV0", "s3cret"));          /* s3cret: no colon */
    assert_false(http_auth_ok("Basic !!!!", "s3cret"));
    assert_false(http_auth_ok("Digest s3cret", "s3cret"));
    assert_false(http_auth_ok("s3cret", "s3cret"));
}

static void test_http_error_is_json(void **state)
{
    struct http_response res = {0};
    http_error(&res, 404, "no \"such\" node");
    assert_int_equal(res.status, 404);
    assert_string_equal(res.body, "{\"error\":\"no \\\"such\\\" node\"}");
    assert_null(res.content_type);
    free(res.body);
}

static void test_http_flag_values(void **state)
{
    bool on = true;
    assert_int_equal(http_flag(NULL, &on), 0); /* absent: no */
    assert_false(on);
    const char *yes[] = {"", "1", "true", "TRUE", "yes", "Yes"};
    for (size_t k = 0; k < sizeof yes / sizeof yes[0]; k++) {
        on = false;
        assert_int_equal(http_flag(yes[k], &on), 0);
        assert_true(on);
    }
    const char *no[] = {"0", "false", "False", "no", "NO"};
    for (size_t k = 0; k < sizeof no / sizeof no[0]; k++) {
        on = true;
        assert_int_equal(http_flag(no[k], &on), 0);
        assert_false(on);
    }
    /* anything else is refused, never taken for "no" (a real change) */
    const char *bad[] = {"on", "off", "2", "y", "truex", " 1", "nope"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        assert_int_equal(http_flag(bad[k], &on), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_routes_fixed_paths),
        cmocka_unit_test(test_http_routes_node_ids),
        cmocka_unit_test(test_http_methods_per_route),
        cmocka_unit_test(test_http_auth_bearer_and_basic),
        cmocka_unit_test(test_http_error_is_json),
        cmocka_unit_test(test_http_flag_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
