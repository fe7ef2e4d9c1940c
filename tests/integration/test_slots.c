/* test_slots.c: a key lives where Redis Cluster's slot puts it. CLUSTER
 * KEYSLOT answers Redis's slots; keys of one {hash tag} share a shard, so a
 * tagged MSETNX runs on one shard (atomic) and a tagged MSET or MGET crosses
 * to one shard at most; data laid out by the partitioning before slots
 * (xxh3, written here with the upgrade-test setting partition-function xxh3
 * and a format-1 manifest, as those releases wrote) is re-laid at the first
 * start with slots, over the same or another shard count, keeping every
 * key, and a re-lay that stopped before its manifest loses nothing.
 * ringkv-only. */
#include "harness.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char data_dir[64];

static int setup(void **state)
{
    return harness_temp_dir(data_dir, sizeof data_dir, "ringkv-slots");
}

static int teardown(void **state)
{
    return harness_remove_dir(data_dir);
}

static void test_slots_cluster_keyslot_is_redis_cluster_slot(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    struct harness_opts o = {.threads = 2};
    assert_int_equal(harness_start(&s, &o), 0);
    redisContext *c = harness_connect(s.port);
    /* Slots a Redis Cluster node answers (and Redis's documentation shows). */
    harness_expect(c, HARNESS_INT(11058), "CLUSTER KEYSLOT somekey");
    harness_expect(c, HARNESS_INT(2515), "CLUSTER KEYSLOT foo{hash_tag}");
    harness_expect(c, HARNESS_INT(12182), "CLUSTER KEYSLOT foo");
    harness_expect(c, HARNESS_INT(3443), "CLUSTER KEYSLOT {user1000}.following");
    harness_expect(c, HARNESS_INT(3443), "CLUSTER keyslot {user1000}.followers");
    harness_expect(c, HARNESS_INT(0), "CLUSTER KEYSLOT %b", "", (size_t)0);
    harness_expect(c, HARNESS_ERR("ERR wrong number of arguments for 'cluster|keyslot' command"),
                   "CLUSTER KEYSLOT");
    harness_expect(c, HARNESS_ERR("ERR unknown subcommand 'SETSLOT'. Try CLUSTER HELP."),
                   "CLUSTER SETSLOT 1 STABLE");
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

static long long cross_shard(redisContext *c)
{
    return (long long)harness_info_number(c, "stats", "cross_shard_requests");
}

/* CLUSTER COUNTKEYSINSLOT and GETKEYSINSLOT over four shards: every
 * connection, whichever shard it landed on, gets the slot's live keys from
 * the shard that holds them (some of the 16 connections' requests cross
 * shards: the kernel spreads connections); expired and deleted keys are not
 * counted. */
static void test_slots_keys_in_slot(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    struct harness_opts o = {.threads = 4};
    assert_int_equal(harness_start(&s, &o), 0);
    redisContext *c = harness_connect(s.port);
    harness_expect(c, HARNESS_INT(3443), "CLUSTER KEYSLOT {user1000}");
    for (int i = 0; i < 50; i++) {
        harness_expect(c, HARNESS_OK, "SET {user1000}.k%d v", i);
        harness_expect(c, HARNESS_OK, "SET other%d v", i); /* other slots */
    }
    harness_expect(c, HARNESS_OK, "SET {user1000}.brief v PX 1");
    harness_expect(c, HARNESS_INT(1), "DEL {user1000}.k49");
    harness_expect(c, HARNESS_OK, "SET {user1000}.k49x v");
    usleep(20 * 1000); /* .brief expires: counted no more (reclaimed or not) */
    long long crossed_before = cross_shard(c);
    for (int conn = 0; conn < 16; conn++) {
        redisContext *d = harness_connect(s.port);
        harness_expect(d, HARNESS_INT(50), "CLUSTER COUNTKEYSINSLOT 3443");
        harness_expect(d, HARNESS_INT(0), "CLUSTER COUNTKEYSINSLOT 3444");
        redisReply *r = harness_cmd(d, "CLUSTER GETKEYSINSLOT 3443 1000");
        harness_check(r, HARNESS_ARRAY(50), "GETKEYSINSLOT of every key");
        for (size_t i = 0; i < r->elements; i++) {
            assert_int_equal(r->element[i]->type, REDIS_REPLY_STRING);
            assert_memory_equal(r->element[i]->str, "{user1000}.k", 12);
            assert_string_not_equal(r->element[i]->str, "{user1000}.k49");
        }
        freeReplyObject(r);
        r = harness_cmd(d, "CLUSTER GETKEYSINSLOT 3443 7");
        harness_check(r, HARNESS_ARRAY(7), "GETKEYSINSLOT of 7");
        freeReplyObject(r);
        r = harness_cmd(d, "CLUSTER GETKEYSINSLOT 3443 0");
        harness_check(r, HARNESS_ARRAY(0), "GETKEYSINSLOT of none");
        freeReplyObject(r);
        redisFree(d);
    }
    assert_true(cross_shard(c) > crossed_before);
    harness_expect(c, HARNESS_ERR("ERR Invalid slot"), "CLUSTER COUNTKEYSINSLOT 16384");
    harness_expect(c, HARNESS_ERR("ERR Invalid slot"), "CLUSTER COUNTKEYSINSLOT -1");
    harness_expect(c, HARNESS_ERR("ERR value is not an integer or out of range"),
                   "CLUSTER COUNTKEYSINSLOT x");
    harness_expect(c, HARNESS_ERR("ERR Invalid slot or number of keys"),
                   "CLUSTER GETKEYSINSLOT 0 -1");
    harness_expect(c, HARNESS_ERR("ERR Invalid slot or number of keys"),
                   "CLUSTER GETKEYSINSLOT 16384 1");
    harness_expect(c, HARNESS_ERR("ERR value is not an integer or out of range"),
                   "CLUSTER GETKEYSINSLOT 0 x");
    harness_expect(c,
                   HARNESS_ERR("ERR wrong number of arguments for 'cluster|getkeysinslot' command"),
                   "CLUSTER GETKEYSINSLOT 0");
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

/* With four shards, keys of one tag are on one shard: MSETNX over them is
 * one request to one shard (at most one message crosses; the two-phase path
 * of keys on several shards sends a message per key off this shard in each
 * phase, so at least two), and MSET and MGET over them cross to all of them
 * or to none. */
static void test_slots_hash_tag_keys_share_a_shard(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    struct harness_opts o = {.threads = 4};
    assert_int_equal(harness_start(&s, &o), 0);
    redisContext *c = harness_connect(s.port);
    for (int t = 0; t < 20; t++) {
        long long before = cross_shard(c);
        harness_expect(c, HARNESS_INT(1),
                       "MSETNX {t%d}a 1 {t%d}b 2 x{t%d}c 3 {t%d}d 4 {t%d}e 5 {t%d}f 6 {t%d}g 7 "
                       "{t%d}h 8",
                       t, t, t, t, t, t, t, t);
        long long crossed = cross_shard(c) - before;
        if (crossed > 1)
            fail_msg("MSETNX over tag t%d crossed shards %lld times", t, crossed);
        harness_expect(c, HARNESS_INT(0), "MSETNX {t%d}z 1 {t%d}a 2", t, t);
        harness_expect(c, HARNESS_NIL, "GET {t%d}z", t);

        before = cross_shard(c);
        harness_expect(c, HARNESS_OK, "MSET {t%d}a 9 {t%d}b 9 {t%d}c 9 {t%d}d 9", t, t, t, t);
        crossed = cross_shard(c) - before;
        if (crossed != 0 && crossed != 4)
            fail_msg("MSET over tag t%d crossed %lld times: its keys are on several shards", t,
                     crossed);
        before = cross_shard(c);
        redisReply *r = harness_cmd(c, "MGET {t%d}a {t%d}b x{t%d}c {t%d}h", t, t, t, t);
        harness_check(r, HARNESS_ARRAY(4), "MGET over one tag");
        freeReplyObject(r);
        crossed = cross_shard(c) - before;
        if (crossed != 0 && crossed != 4)
            fail_msg("MGET over tag t%d crossed %lld times", t, crossed);
    }
    /* The control: untagged keys spread over shards take the two phases. */
    long long before = cross_shard(c);
    harness_expect(c, HARNESS_INT(1), "MSETNX a 1 b 2 c 3 d 4 e 5 f 6 g 7 h 8");
    assert_true(cross_shard(c) - before >= 2);
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

static void start(struct harness_server *s, int threads, const char *fn)
{
    const char *args[] = {"--storage", "log", "--dir", data_dir, "--appendfsync", "everysec",
                          "--partition-function", fn, NULL};
    struct harness_opts o = {.threads = threads, .args = args};
    assert_int_equal(harness_start(s, &o), 0);
}

static bool manifest_mentions(const char *needle)
{
    char path[128], text[512];
    snprintf(path, sizeof path, "%s/ringkv.meta", data_dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    return strstr(text, needle) != NULL;
}

enum { OLD_GONE = 300, KEYS = 1500, DELETED = 100, TAGGED = 100 };

/* What the old layout holds: a:* written then flushed, b:* with b:0..99
 * deleted, {tag}:* keys, one key with a TTL. */
static void write_old_layout(int port)
{
    redisContext *c = harness_connect(port);
    for (int i = 0; i < OLD_GONE; i++)
        redisAppendCommand(c, "SET a:%d gone", i);
    for (int i = 0; i < OLD_GONE; i++)
        freeReplyObject(harness_next_reply(c));
    harness_expect(c, HARNESS_OK, "FLUSHALL");
    for (int i = 0; i < KEYS; i++)
        redisAppendCommand(c, "SET b:%d value:%d", i, i);
    for (int i = 0; i < TAGGED; i++)
        redisAppendCommand(c, "SET {tag}:%d tagged:%d", i, i);
    for (int i = 0; i < DELETED; i++)
        redisAppendCommand(c, "DEL b:%d", i);
    for (int i = 0; i < KEYS + TAGGED + DELETED; i++)
        freeReplyObject(harness_next_reply(c));
    harness_expect(c, HARNESS_OK, "SET ttl v EX 100000");
    redisFree(c);
}

static void check_every_key(int port)
{
    redisContext *c = harness_connect(port);
    assert_int_equal(harness_integer(c, "DBSIZE"), KEYS - DELETED + TAGGED + 1);
    for (int i = 0; i < KEYS; i++)
        redisAppendCommand(c, "GET b:%d", i);
    for (int i = 0; i < TAGGED; i++)
        redisAppendCommand(c, "GET {tag}:%d", i);
    for (int i = 0; i < OLD_GONE; i++)
        redisAppendCommand(c, "GET a:%d", i);
    char want[32];
    for (int i = 0; i < KEYS; i++) {
        redisReply *r = harness_next_reply(c);
        snprintf(want, sizeof want, "value:%d", i);
        harness_check(r, i < DELETED ? HARNESS_NIL : HARNESS_BULK(want), "GET b:i after a re-lay");
        freeReplyObject(r);
    }
    for (int i = 0; i < TAGGED; i++) {
        redisReply *r = harness_next_reply(c);
        snprintf(want, sizeof want, "tagged:%d", i);
        harness_check(r, HARNESS_BULK(want), "GET {tag}:i after a re-lay");
        freeReplyObject(r);
    }
    for (int i = 0; i < OLD_GONE; i++) {
        redisReply *r = harness_next_reply(c);
        harness_check(r, HARNESS_NIL, "a flushed key after a re-lay");
        freeReplyObject(r);
    }
    long long ttl = harness_integer(c, "TTL ttl");
    assert_true(ttl > 99000 && ttl <= 100000);
    redisFree(c);
}

static void test_slots_upgrade_relays_xxh3_data(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    start(&s, 3, "xxh3");
    write_old_layout(s.port);
    assert_int_equal(harness_stop(&s), 0);
    assert_true(manifest_mentions("ringkv-data 1\n"));
    assert_false(manifest_mentions("partition-function"));

    start(&s, 3, "slot"); /* same shard count: only the function changed */
    assert_true(harness_output_mentions(&s, "re-laying it by crc16-slot"));
    check_every_key(s.port);
    assert_int_equal(harness_stop(&s), 0);
    assert_true(manifest_mentions("ringkv-data 2\n"));
    assert_true(manifest_mentions("partition-function crc16-slot\n"));

    start(&s, 2, "slot");
    check_every_key(s.port);
    assert_int_equal(harness_stop(&s), 0);
    start(&s, 2, "slot");
    assert_false(harness_output_mentions(&s, "re-laying"));
    check_every_key(s.port);
    assert_int_equal(harness_stop(&s), 0);
}

/* Data laid out by xxh3 goes through the 3-shard re-lay straight to 4
 * shards too (function and count change at once). */
static void test_slots_upgrade_with_another_shard_count(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    start(&s, 3, "xxh3");
    write_old_layout(s.port);
    assert_int_equal(harness_stop(&s), 0);
    start(&s, 4, "slot");
    check_every_key(s.port);
    assert_int_equal(harness_stop(&s), 0);
}

/* A re-lay by slot whose manifest cannot be written does not serve; its new
 * segments (same shard count, slot function in their headers) are found as
 * foreign by the next start, removed, and the re-lay runs again. */
static void test_slots_unfinished_relay_loses_nothing(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    start(&s, 3, "xxh3");
    write_old_layout(s.port);
    assert_int_equal(harness_stop(&s), 0);

    char blocker[128], flags[256], log[128];
    snprintf(blocker, sizeof blocker, "%s/ringkv.meta.tmp", data_dir);
    assert_int_equal(mkdir(blocker, 0755), 0); /* the manifest cannot be replaced */
    snprintf(flags, sizeof flags, "--threads 3 --storage log --dir '%s'", data_dir);
    snprintf(log, sizeof log, "%s/relay.log", data_dir);
    harness_start_refused(s.port, flags, log, "cannot write");
    assert_int_equal(rmdir(blocker), 0);

    start(&s, 3, "slot");
    assert_true(harness_output_mentions(&s, "by a re-lay that did not finish"));
    assert_true(harness_output_mentions(&s, "re-laying it by crc16-slot"));
    check_every_key(s.port);
    assert_int_equal(harness_stop(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slots_cluster_keyslot_is_redis_cluster_slot),
        cmocka_unit_test(test_slots_hash_tag_keys_share_a_shard),
        cmocka_unit_test(test_slots_keys_in_slot),
        cmocka_unit_test_setup_teardown(test_slots_upgrade_relays_xxh3_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slots_upgrade_with_another_shard_count, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_slots_unfinished_relay_loses_nothing, setup,
                                        teardown),
    };
    return harness_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
