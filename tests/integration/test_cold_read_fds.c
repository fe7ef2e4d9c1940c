/* test_cold_read_fds.c: issue 9, item 5. A shard keeps at most 64 segment
 * files open for cold reads; past that it lets the closed segments'
 * descriptors go. Reads prepared in the same loop turn still name those
 * descriptors, so letting them go then made the reads fail (EBADF) or read
 * whatever file took the number. Here the data spans more than 64 segments
 * (1 MiB each), nearly every value is on disk only, and one pipeline reads a
 * key from each segment in one loop turn: every value must come back right.
 * ringkv-only. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VALUE_LEN 16000
#define SEGMENTS 85 /* written */
#define READS 80    /* keys read in one turn, spread over them: past the 64 kept open */
#define MAX_KEYS 20000
#define BATCH 16    /* a quarter of a segment per loop turn */
#define SEGMENT_BYTES (1 << 20)

struct rotation_wait {
    redisContext *c;
    double segments; /* the count before */
};

static bool rotated_since(void *arg)
{
    struct rotation_wait *w = arg;
    return harness_info_number(w->c, "persistence", "segments") > w->segments;
}

static char data_dir[64];

static int setup(void **state)
{
    return harness_temp_dir(data_dir, sizeof data_dir, "ringkv-fds");
}

static int teardown(void **state)
{
    harness_crash_all(); /* a failed assertion left its node running there */
    return harness_remove_dir(data_dir);
}

static void test_cold_read_fds_reads_in_one_turn_past_the_open_limit(void **state)
{
    harness_skip_unless_ringkv();
    const char *args[] = {"--storage",  "log", "--dir", data_dir, "--segment-size", "1mb",
                          "--maxmemory", "8mb", "--compaction-threshold", "0", NULL};
    struct harness_opts o = {.threads = 1, .args = args};
    struct harness_server s;
    assert_int_equal(harness_start(&s, &o), 0);
    redisContext *c = harness_connect(s.port);
    static char val[VALUE_LEN];
    int keys = 0;
    /* Segments stay near 1 MiB only if the writer waits for rotation: it
     * comes once the next file (made ahead) and the previous segment's
     * fdatasync are done, which on a busy disk takes long enough for a fast
     * writer to fill several megabytes. Past a segment's worth of writes
     * since the last rotation, the next batch waits for one. */
    struct rotation_wait w = {c, harness_info_number(c, "persistence", "segments")};
    size_t since = 0; /* bytes written since the last rotation seen */
    while (keys < MAX_KEYS && w.segments < SEGMENTS) {
        if (since >= SEGMENT_BYTES) {
            assert_true(harness_wait_until(rotated_since, &w, HARNESS_TIMEOUT_MS, 5));
            since = 0;
        }
        for (int j = keys; j < keys + BATCH; j++) {
            harness_noise((uint32_t)j, val, VALUE_LEN);
            redisAppendCommand(c, "SET key:%d %b", j, val, (size_t)VALUE_LEN);
        }
        for (int j = keys; j < keys + BATCH; j++) {
            redisReply *r = harness_next_reply(c);
            harness_check(r, HARNESS_OK, "SET");
            freeReplyObject(r);
        }
        keys += BATCH;
        since += (size_t)BATCH * VALUE_LEN;
        double now = harness_info_number(c, "persistence", "segments");
        if (now > w.segments)
            since = 0;
        w.segments = now;
    }
    assert_true(keys < MAX_KEYS);
    assert_true(harness_info_number(c, "persistence", "cold_keys") > keys - 600);
    int stride = keys / READS;
    for (int round = 0; round < 4; round++) { /* each round passes the limit again */
        for (int i = 0; i < READS; i++)
            redisAppendCommand(c, "GET key:%d", i * stride + round);
        for (int i = 0; i < READS; i++) {
            redisReply *r = harness_next_reply(c);
            harness_noise((uint32_t)(i * stride + round), val, VALUE_LEN);
            harness_check(r, HARNESS_BULK_LEN(val, VALUE_LEN), "GET of a cold value");
            freeReplyObject(r);
        }
    }
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cold_read_fds_reads_in_one_turn_past_the_open_limit,
                                        setup, teardown),
    };
    return harness_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
