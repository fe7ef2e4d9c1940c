/* test_idset.c: CLIENT LIST ID's id sets (idset.h) cost O(log n) comparisons
 * per lookup, counted (idset_steps), not timed: a million ids asked and a
 * thousand connections cost a shard about 20 comparisons per connection
 * (issue 9: it parsed every id for every connection, 1M x 1000), and the
 * combiner finds each id asked among the shards' records in about 10. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "idset.h"

enum { NIDS = 1 << 20, CONNS = 1000 };

static void test_idset_has_is_a_binary_search(void **state)
{
    int64_t *ids = test_malloc(NIDS * sizeof *ids);
    for (uint32_t i = 0; i < NIDS; i++) /* the even numbers below 2 NIDS, shuffled */
        ids[i] = (int64_t)((i * 2654435761u) & (NIDS - 1)) * 2;
    idset_steps = 0;
    idset_sort(ids, NIDS);
    assert_true(idset_steps <= (uint64_t)NIDS * 2 * 21); /* n log n */
    for (uint32_t i = 0; i < NIDS; i++)
        assert_int_equal(ids[i], 2 * (int64_t)i);
    /* unaligned, as the ids arrive in a shard's message */
    char *raw = test_malloc(NIDS * sizeof *ids + 1);
    memcpy(raw + 1, ids, NIDS * sizeof *ids);
    idset_steps = 0;
    for (int64_t id = -1; id < 2 * CONNS; id++) /* each connection's id, once */
        assert_int_equal(idset_has(raw + 1, NIDS, id), id >= 0 && id % 2 == 0);
    assert_true(idset_has(raw + 1, NIDS, 2 * (NIDS - 1)));
    assert_false(idset_has(raw + 1, NIDS, 2 * NIDS));
    assert_true(idset_steps <= (2 * CONNS + 3) * 21); /* log2(1M) = 20 */
    assert_false(idset_has(raw + 1, 0, 0));
    test_free(raw);
    test_free(ids);
}

/* Records of CONNS connections on two shards; the ids asked (NIDS of them,
 * most unknown) are each found in O(log CONNS). */
static void test_idset_records_indexed_by_id(void **state)
{
    struct buf shard[2];
    for (int s = 0; s < 2; s++)
        buf_init(&shard[s]);
    for (int64_t id = CONNS; id > 0; id--) {
        size_t at = idset_record_begin(&shard[id % 2], id);
        buf_printf(&shard[id % 2], "id=%lld name=x%s\n", (long long)id, id == 7 ? "\nid=8 " : "");
        idset_record_end(&shard[id % 2], at);
    }
    struct idset_line *lines = test_malloc(CONNS * sizeof *lines);
    uint32_t n = idset_index(shard[0].data, shard[0].len, lines, CONNS);
    n += idset_index(shard[1].data, shard[1].len, lines + n, CONNS - n);
    assert_int_equal(n, CONNS);
    /* a truncated record ends the reading */
    assert_int_equal(idset_index(shard[0].data, shard[0].len - 1, lines, CONNS), CONNS / 2 - 1);
    n = idset_index(shard[0].data, shard[0].len, lines, CONNS);
    n += idset_index(shard[1].data, shard[1].len, lines + n, CONNS - n);
    idset_steps = 0;
    idset_lines_sort(lines, n);
    assert_true(idset_steps <= CONNS * 2 * 10);
    idset_steps = 0;
    uint32_t found = 0;
    for (int64_t id = 0; id < NIDS; id++) {
        const struct idset_line *l = idset_lines_find(lines, n, id);
        if (!l)
            continue;
        found++;
        char want[64];
        int wn = snprintf(want, sizeof want, "id=%lld name=x", (long long)id);
        assert_true(l->n > (uint32_t)wn && memcmp(l->p, want, (size_t)wn) == 0);
        assert_int_equal(l->p[l->n - 1], '\n');
    }
    assert_int_equal(found, CONNS);
    assert_true(idset_steps <= (uint64_t)NIDS * 11); /* log2(1000) < 10 */
    /* a line whose text looks like another's id is still its own */
    const struct idset_line *l8 = idset_lines_find(lines, n, 8);
    assert_non_null(l8);
    assert_memory_equal(l8->p, "id=8 name=x\n", l8->n);
    test_free(lines);
    for (int s = 0; s < 2; s++)
        buf_fini(&shard[s]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idset_has_is_a_binary_search),
        cmocka_unit_test(test_idset_records_indexed_by_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
