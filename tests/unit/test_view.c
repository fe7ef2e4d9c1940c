/* Unit tests for the admin API's renderings (admin/view.c): /v1/nodes,
 * /v1/ring and plan documents from a membership and rings built here, and
 * the Prometheus text of a list of samples. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "view.h"

static const char *const ids[] = {"1111111111111111111111111111111111111111",
                                  "2222222222222222222222222222222222222222",
                                  "3333333333333333333333333333333333333333"};

static struct ring *ring_of(uint32_t count, const struct ring *prev)
{
    struct ring_member m[3];
    memset(m, 0, sizeof m);
    for (uint32_t i = 0; i < count; i++) {
        memcpy(m[i].id, ids[i], 41);
        m[i].weight = 100;
    }
    struct ring *r;
    assert_int_equal(ring_build(m, count, 16, count < 3 ? count : 3, prev, &r), 0);
    return r;
}

static void test_view_nodes_lists_self(void **state)
{
    struct gossip_info self = {.weight = 100};
    memcpy(self.id, ids[0], 41);
    strcpy(self.client_addr, "127.0.0.1:6379");
    strcpy(self.cluster_addr, "127.0.0.1:16379");
    struct member_config cfg;
    member_config_default(&cfg);
    struct member_table *t;
    assert_int_equal(member_create(&cfg, &self, 1000, &t), 0);
    assert_int_equal(member_set_state(t, ids[0], MEMBER_UP, 1000), 0);
    struct ring *r = ring_of(1, NULL);
    json_t *doc = view_nodes(t, r);
    char *text = json_dumps(doc, JSON_COMPACT);
    assert_string_equal(text, "{\"epoch\":1,\"nodes\":[{\"id\":\"1111111111111111111111111111111111111111\","
                              "\"address\":\"127.0.0.1:6379\",\"cluster_address\":\"127.0.0.1:16379\","
                              "\"admin_address\":null,\"status\":\"up\",\"admitted\":true,\"weight\":100,\"zone\":\"\","
                              "\"partitions\":16,\"incarnation\":1}]}");
    free(text);
    json_decref(doc);
    ring_destroy(r);
    member_destroy(t);
}

static void test_view_ring_has_every_list(void **state)
{
    struct ring *r = ring_of(3, NULL);
    json_t *doc = view_ring(r, NULL);
    assert_int_equal(json_integer_value(json_object_get(doc, "partitions")), 16);
    assert_int_equal(json_integer_value(json_object_get(doc, "replicas")), 3);
    assert_int_equal(strlen(json_string_value(json_object_get(doc, "hash"))), 16);
    json_t *owners = json_object_get(doc, "owners");
    assert_int_equal(json_array_size(owners), 16);
    for (uint32_t p = 0; p < 16; p++) {
        json_t *list = json_array_get(owners, p);
        assert_int_equal(json_array_size(list), 3);
        assert_string_equal(json_string_value(json_array_get(list, 0)),
                            r->members[r->owner[p]].id);
    }
    assert_int_equal(json_array_size(json_object_get(doc, "pending_transfers")), 0);
    assert_int_equal(json_array_size(json_object_get(doc, "members")), 3);
    assert_true(json_is_real(json_object_get(json_object_get(doc, "balance"), "owned_dev_max")));
    json_decref(doc);
    ring_destroy(r);
}

static void test_view_plan_lists_the_moves(void **state)
{
    struct ring *two = ring_of(2, NULL);
    struct ring *three = ring_of(3, two);
    json_t *doc = view_plan("join", ids[2], two, three);
    json_t *moves = json_object_get(doc, "moves");
    json_int_t moved = json_integer_value(json_object_get(doc, "moved"));
    assert_int_equal(json_array_size(moves), moved);
    assert_true(moved >= 5 && moved <= 6); /* 16/3 to the new member, nothing else */
    for (size_t i = 0; i < json_array_size(moves); i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(moves, i), "to")),
                            ids[2]);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "owned"), ids[2])),
                     moved);
    assert_int_equal(json_integer_value(json_object_get(doc, "epoch")), 2);
    json_decref(doc);
    ring_destroy(two);
    ring_destroy(three);
}

static void test_view_prometheus_text(void **state)
{
    const struct view_metric m[] = {
        {"a_total", "ringkv_a_total", "counter", "A things.", NULL, 12345678901},
        {"nodes_up", "ringkv_nodes", "gauge", "Nodes.", "status=\"up\"", 3},
        {"nodes_down", "ringkv_nodes", "gauge", "Nodes.", "status=\"down\"", 0},
        {"ratio", "ringkv_ratio", "gauge", "A ratio.", NULL, 0.5},
    };
    char *text = view_prometheus(m, 4);
    assert_string_equal(text, "# HELP ringkv_a_total A things.\n# TYPE ringkv_a_total counter\n"
                              "ringkv_a_total 12345678901\n"
                              "# HELP ringkv_nodes Nodes.\n# TYPE ringkv_nodes gauge\n"
                              "ringkv_nodes{status=\"up\"} 3\nringkv_nodes{status=\"down\"} 0\n"
                              "# HELP ringkv_ratio A ratio.\n# TYPE ringkv_ratio gauge\n"
                              "ringkv_ratio 0.5\n");
    free(text);
    json_t *doc = view_stats(m, 4);
    text = json_dumps(doc, JSON_COMPACT);
    assert_string_equal(text, "{\"a_total\":12345678901,\"nodes_up\":3,\"nodes_down\":0,"
                              "\"ratio\":0.5}");
    free(text);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_view_nodes_lists_self),
        cmocka_unit_test(test_view_ring_has_every_list),
        cmocka_unit_test(test_view_plan_lists_the_moves),
        cmocka_unit_test(test_view_prometheus_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
