/* test_aae: active anti-entropy (shards/aae.c) with real nodes on 127.0.0.x.
 * - test_aae_repairs_a_replica_without_reads: 3 nodes (N = 3, W = 2),
 *   aae-interval 1 s: node 2 frozen (SIGSTOP) until the others see it down
 *   misses writes of KEYS keys; once thawed, and without any read that
 *   could repair it, it comes to hold every key (read there with
 *   CONSISTENCY R 1, which asks no other replica), INFO counts repaired
 *   keys, and no read repair happened anywhere; the trees, rebuilt every
 *   second meanwhile, never differed from the ones the writes kept.
 * - test_aae_delete_stays_deleted: tombstone-grace 1 s: a key every node
 *   holds is deleted while node 2 is frozen, and kept frozen past the grace
 *   (until a reap check was deferred for it); once it is back, the old value
 *   it still holds never comes back: after several anti-entropy rounds of
 *   every node every node reads nothing (alone and by quorum), and the
 *   tombstone is finally reaped.
 * - test_aae_capped_listing_pages_on: aae-max-keys-per-exchange 2, keys of
 *   one hash tag whose partition's first replica (the one that starts its
 *   exchanges) is node 2: frozen, it misses newer states of some keys and
 *   whole other keys; once back it comes to hold every newer state and
 *   every key. Before KEYS replies said where a capped listing stopped,
 *   node 2 read the capped listing as complete, pushed its own stale
 *   states to the peers for the keys left out ("only here"), counted them
 *   repaired, and never pulled the rest: it failed at its deadline.
 * - test_aae_repairs_cold_values: storage log, maxmemory 4mb (values
 *   beyond RAM, as test_values_beyond_ram): node 2, first replica of a hash
 *   tag's partition, holds COLD_KEYS values of 2 KiB, many on disk only;
 *   frozen, it misses newer states of COLD_NEW of them (the oldest, the
 *   coldest); once back its exchanges repair every one (INFO counts them)
 *   and it reads the newer values alone. Before anti-entropy read cold
 *   values back (as the coordinator does), replica_apply's -EAGAIN on a
 *   cold key dropped its repair, every round: it failed at its deadline.
 * - test_aae_reaped_tombstone_stays_reaped: tombstone-grace 1 s: REAP_KEYS
 *   keys deleted with every node up are reaped by each node (3 reaps a
 *   key), and several anti-entropy rounds later no more: a tombstone that
 *   one node reaped while another still held it is not copied back (a
 *   tombstone past the grace against nothing is in sync), so it is neither
 *   repaired nor reaped again.
 * - test_aae_leaves_evicted_keys_alone: maxmemory 2mb, allkeys-lru: SETs of
 *   EVICT_KEYS values of 2 KiB make every node evict (each its own keys);
 *   several anti-entropy rounds later no key was repaired: a key one node
 *   evicted and another holds is no difference on an evicting node. Before
 *   that, exchanges copied evicted keys back every round.
 * - test_aae_flushall_stays_flushed: node 2, back from a freeze, is being
 *   repaired (FLUSH_KEYS keys it missed) when a FLUSHALL comes: several
 *   rounds later no node holds any of the keys (an exchange under way at
 *   the flush ends; a just-flushed node refuses the peers' repairs for an
 *   aae-interval). Timing-bound: without that, it fails only when a repair
 *   is in flight across the flush.
 * Without anti-entropy (aae-interval 0) the first fails at its deadline:
 * nothing sends node 2 the keys it missed. Every wait is on a condition
 * with a deadline; nodes are stopped by PID (cluster_finish). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "cluster_harness.h"

#define KEYS 60
#define FREEZE_MS 20000 /* failure detection's verdict at most */

static const char *const flags_repair[] = {
    "--request-timeout", "2000", "--aae-interval", "1", "--aae-rebuild-interval", "1", NULL};
static const char *const flags_grace[] = {
    "--request-timeout", "2000", "--aae-interval", "1", "--tombstone-grace", "1", NULL};

/* The reply to a command at node i as text ("+OK", ":1", "$v", "nil",
 * "-ERR ..."); c: a connection (NULL: one of its own). Caller frees. */
static char *ask(int i, redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisContext *own = c ? NULL : cluster_connect(i, 5000);
    redisReply *r = c || own ? redisvCommand(c ? c : own, fmt, ap) : NULL;
    va_end(ap);
    char *text = NULL;
    if (!r)
        text = strdup("(no reply)");
    else if (r->type == REDIS_REPLY_NIL)
        text = strdup("nil");
    else if (r->type == REDIS_REPLY_INTEGER)
        assert_true(asprintf(&text, ":%lld", r->integer) > 0);
    else
        assert_true(asprintf(&text, "%c%.*s",
                             r->type == REDIS_REPLY_ERROR    ? '-'
                             : r->type == REDIS_REPLY_STATUS ? '+'
                                                             : '$',
                             (int)r->len, r->str ? r->str : "") > 0);
    if (r)
        freeReplyObject(r);
    redisFree(own);
    return text;
}

static bool is(char *got, const char *want)
{
    bool ok = strcmp(got, want) == 0;
    free(got);
    return ok;
}

static long long info_stat(int i, const char *name)
{
    return cluster_info_stat(i, "stats", name);
}

struct status_is {
    int viewer, node;
    const char *status;
};

static bool status_is(void *arg)
{
    const struct status_is *x = arg;
    const char *st = cluster_status_of(x->viewer, cluster_node(x->node)->id);
    return st && strcmp(st, x->status) == 0;
}

/* Node `node` as both others see it. */
static void wait_status(int node, const char *status)
{
    for (int viewer = 0; viewer < 3; viewer++) {
        if (viewer == node)
            continue;
        struct status_is x = {viewer, node, status};
        assert_true(cluster_wait(status_is, &x, FREEZE_MS));
    }
}

static bool warm_write(void *arg)
{
    (void)arg;
    return is(ask(0, NULL, "SET warm up"), "+OK");
}

/* Node i's own value of every key (CONSISTENCY R 1: no other replica is
 * asked, nothing merged) is want(k) (NULL: "nil" for every key). */
struct local_check {
    int node;
    int nkeys;
    const char *prefix;
    bool is_deleted;
    const char *value; /* values' prefix; NULL: "v" */
};

static bool local_values(void *arg)
{
    const struct local_check *x = arg;
    redisContext *c = cluster_connect(x->node, 5000);
    if (!c)
        return false;
    bool ok = is(ask(x->node, c, "CONSISTENCY R 1"), "+OK");
    for (int k = 0; ok && k < x->nkeys; k++) {
        char want[64];
        snprintf(want, sizeof want, "$%s%d", x->value ? x->value : "v", k);
        ok = is(ask(x->node, c, "GET %s%d", x->prefix, k), x->is_deleted ? "nil" : want);
    }
    redisFree(c);
    return ok;
}

static long long sum_stat(const char *name)
{
    long long sum = 0;
    for (int i = 0; i < 3; i++) {
        long long v = info_stat(i, name);
        sum += v > 0 ? v : 0;
    }
    return sum;
}

/* The same counter from the admin API (/v1/stats, what /metrics shows). */
static long long sum_admin_stat(const char *key)
{
    long long sum = 0;
    for (int i = 0; i < 3; i++) {
        json_t *st = cluster_get(i, "/v1/stats");
        json_t *v = st ? json_object_get(st, key) : NULL;
        sum += json_is_number(v) ? (long long)json_number_value(v) : 0;
        json_decref(st);
    }
    return sum;
}

/* The formation's partition transfers (shards/transfer.h) are over on every
 * node: what a replica holds from then on comes from writes and repairs. */
static bool transfers_idle(void *arg)
{
    (void)arg;
    return sum_admin_stat("transfer_partitions_pending") == 0 &&
           sum_admin_stat("transfer_partitions_streaming") == 0;
}

static void test_aae_repairs_a_replica_without_reads(void **state)
{
    (void)state;
    assert_int_equal(cluster_start_formed(3, flags_repair), 0);
    assert_true(cluster_wait(warm_write, NULL, 10000));
    assert_true(cluster_wait(transfers_idle, NULL, 30000));
    cluster_signal(2, SIGSTOP);
    wait_status(2, "down");
    for (int k = 0; k < KEYS; k++) /* W = 2 on nodes 0 and 1; node 2 not asked */
        assert_true(is(ask(k % 2, NULL, "SET missed:%d v%d", k, k), "+OK"));
    cluster_signal(2, SIGCONT);
    wait_status(2, "up");
    struct local_check all = {2, KEYS, "missed:", false, NULL};
    assert_true(cluster_wait(local_values, &all, 30000));
    assert_true(sum_stat("ringkv_aae_keys_repaired") >= KEYS);
    assert_true(sum_stat("ringkv_aae_exchanges") > 0);
    assert_true(sum_admin_stat("aae_keys_repaired") >= KEYS);
    assert_true(sum_admin_stat("aae_bytes_sent") > 0);
    assert_int_equal(sum_stat("ringkv_read_repairs"), 0); /* no read did it */
    /* trees rebuilt every second meanwhile, writes and repairs going on: each
     * rebuild found the tree the store's hook kept exact */
    assert_true(sum_stat("ringkv_aae_tree_rebuilds") >= 6);
    assert_int_equal(sum_stat("ringkv_aae_trees_corrected"), 0);
}

/* Every node gives nil for the key by quorum. */
static bool gone_everywhere(void *arg)
{
    const char *key = arg;
    for (int i = 0; i < 3; i++)
        if (!is(ask(i, NULL, "GET %s", key), "nil"))
            return false;
    return true;
}

struct rounds {
    long long at[3];
};

/* Every node ran at least 3 more exchanges since `at`. */
static bool rounds_passed(void *arg)
{
    const struct rounds *r = arg;
    for (int i = 0; i < 3; i++)
        if (info_stat(i, "ringkv_aae_exchanges") < r->at[i] + 3)
            return false;
    return true;
}

static bool reap_deferred(void *arg)
{
    (void)arg;
    return info_stat(0, "ringkv_reaps_deferred") + info_stat(1, "ringkv_reaps_deferred") > 0;
}

static bool reaped(void *arg)
{
    (void)arg;
    return sum_stat("ringkv_tombstones_reaped") >= 3;
}

static void test_aae_delete_stays_deleted(void **state)
{
    (void)state;
    assert_int_equal(cluster_start_formed(3, flags_grace), 0);
    assert_true(cluster_wait(warm_write, NULL, 10000));
    assert_true(cluster_wait(transfers_idle, NULL, 30000));
    assert_true(is(ask(0, NULL, "SET gone:0 v0"), "+OK"));
    struct local_check held = {2, 1, "gone:", false, NULL};
    assert_true(cluster_wait(local_values, &held, 10000)); /* node 2 holds the old value */
    cluster_signal(2, SIGSTOP);
    wait_status(2, "down");
    assert_true(is(ask(0, NULL, "DEL gone:0"), ":1"));
    /* past the grace: the others' reap check found node 2 down */
    assert_true(cluster_wait(reap_deferred, NULL, 10000));
    cluster_signal(2, SIGCONT);
    wait_status(2, "up");
    struct rounds r;
    for (int i = 0; i < 3; i++)
        r.at[i] = info_stat(i, "ringkv_aae_exchanges");
    assert_true(cluster_wait(rounds_passed, &r, 30000));
    for (int i = 0; i < 3; i++) {
        struct local_check none = {i, 1, "gone:", true, NULL};
        assert_true(local_values(&none));
    }
    assert_true(gone_everywhere("gone:0"));
    assert_true(cluster_wait(reaped, NULL, 30000)); /* the tombstone goes, everywhere */
    assert_true(gone_everywhere("gone:0"));
    for (int i = 0; i < 3; i++) {
        struct local_check none = {i, 1, "gone:", true, NULL};
        assert_true(local_values(&none));
    }
}

static const char *const flags_cap[] = {"--request-timeout", "2000", "--aae-interval", "1",
                                        "--aae-max-keys-per-exchange", "2", NULL};

#define CAP_KEYS 24

/* A hash tag "{tN}" whose partition's preference list starts with node i. */
static void tag_first_at(int i, char *tag, size_t size)
{
    json_t *ring = cluster_get(0, "/v1/ring");
    assert_non_null(ring);
    json_int_t q = json_integer_value(json_object_get(ring, "partitions"));
    assert_true(q > 0);
    for (int t = 0; t < 1000; t++) {
        snprintf(tag, size, "{t%d}", t);
        redisReply *slot = cluster_redis_command(0, "CLUSTER KEYSLOT %s", tag);
        assert_non_null(slot);
        assert_int_equal(slot->type, REDIS_REPLY_INTEGER);
        json_t *owners =
            json_array_get(json_object_get(ring, "owners"), (size_t)(slot->integer / (16384 / q)));
        const char *first = json_string_value(json_array_get(owners, 0));
        freeReplyObject(slot);
        if (first && strcmp(first, cluster_node(i)->id) == 0) {
            json_decref(ring);
            return;
        }
    }
    fail_msg("no tag has node %d first", i);
}

static void test_aae_capped_listing_pages_on(void **state)
{
    (void)state;
    assert_int_equal(cluster_start_formed(3, flags_cap), 0);
    assert_true(cluster_wait(warm_write, NULL, 10000));
    assert_true(cluster_wait(transfers_idle, NULL, 30000));
    char tag[16], prefix[32];
    tag_first_at(2, tag, sizeof tag);
    snprintf(prefix, sizeof prefix, "%s:", tag);
    for (int k = 0; k < CAP_KEYS / 2; k++) /* every replica holds old states */
        assert_true(is(ask(0, NULL, "SET %s%d old%d", prefix, k, k), "+OK"));
    struct local_check olds = {2, CAP_KEYS / 2, prefix, false, "old"};
    assert_true(cluster_wait(local_values, &olds, 10000));
    cluster_signal(2, SIGSTOP);
    wait_status(2, "down");
    for (int k = 0; k < CAP_KEYS; k++) /* newer states of the old keys; new keys */
        assert_true(is(ask(k % 2, NULL, "SET %s%d v%d", prefix, k, k), "+OK"));
    cluster_signal(2, SIGCONT);
    wait_status(2, "up");
    struct local_check all = {2, CAP_KEYS, prefix, false, NULL};
    assert_true(cluster_wait(local_values, &all, 40000));
    assert_int_equal(sum_stat("ringkv_read_repairs"), 0); /* no read did it */
}

static const char *const flags_cold[] = {"--request-timeout", "2000", "--aae-interval", "1",
                                         "--storage", "log", "--maxmemory", "4mb", NULL};

#define COLD_KEYS 2500
#define COLD_NEW 400
#define COLD_LEN 2048

/* SETs of keys prefix[from, to) at node i with COLD_LEN bytes of `fill`,
 * pipelined; every one acknowledged. */
static void set_filled(int i, const char *prefix, int from, int to, char fill)
{
    redisContext *c = cluster_redis(i);
    assert_non_null(c);
    char *val = malloc(COLD_LEN);
    assert_non_null(val);
    memset(val, fill, COLD_LEN);
    for (int k = from; k < to; k += 100) {
        int end = k + 100 < to ? k + 100 : to;
        for (int j = k; j < end; j++)
            redisAppendCommand(c, "SET %s%d %b", prefix, j, val, (size_t)COLD_LEN);
        for (int j = k; j < end; j++) {
            redisReply *r = NULL;
            assert_int_equal(redisGetReply(c, (void **)&r), REDIS_OK);
            assert_int_equal(r->type, REDIS_REPLY_STATUS);
            freeReplyObject(r);
        }
    }
    free(val);
    redisFree(c);
}

/* Node 2 alone reads key `key` with value COLD_LEN bytes of `fill`. */
struct filled {
    const char *key;
    char fill;
};

static bool node2_reads(void *arg)
{
    const struct filled *f = arg;
    redisContext *c = cluster_connect(2, 5000);
    if (!c)
        return false;
    bool ok = is(ask(2, c, "CONSISTENCY R 1"), "+OK");
    redisReply *r = ok ? redisCommand(c, "GET %s", f->key) : NULL;
    ok = r && r->type == REDIS_REPLY_STRING && r->len == COLD_LEN && r->str[0] == f->fill &&
         r->str[COLD_LEN - 1] == f->fill;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return ok;
}

static bool node2_cold(void *arg)
{
    (void)arg;
    char *info = cluster_ask(2, "INFO");
    long long v = info ? cluster_info_field(info, "cold_keys") : -1;
    free(info);
    return v > 0;
}

struct repaired_at {
    int node;
    long long want;
};

static bool repaired_at(void *arg)
{
    const struct repaired_at *x = arg;
    return info_stat(x->node, "ringkv_aae_keys_repaired") >= x->want;
}

static void test_aae_repairs_cold_values(void **state)
{
    (void)state;
    assert_int_equal(cluster_start_formed(3, flags_cold), 0);
    assert_true(cluster_wait(warm_write, NULL, 10000));
    assert_true(cluster_wait(transfers_idle, NULL, 30000));
    char tag[16], prefix[32], last[64];
    tag_first_at(2, tag, sizeof tag);
    snprintf(prefix, sizeof prefix, "%s:", tag);
    set_filled(0, prefix, 0, COLD_KEYS, 'o');
    snprintf(last, sizeof last, "%s%d", prefix, COLD_KEYS - 1);
    struct filled last_old = {last, 'o'};
    assert_true(cluster_wait(node2_reads, &last_old, 20000)); /* node 2 has them all */
    assert_true(cluster_wait(node2_cold, NULL, 20000));
    cluster_signal(2, SIGSTOP);
    wait_status(2, "down");
    set_filled(0, prefix, 0, COLD_NEW, 'n'); /* the oldest: the coldest on node 2 */
    struct repaired_at r = {2, info_stat(2, "ringkv_aae_keys_repaired") + COLD_NEW};
    cluster_signal(2, SIGCONT);
    wait_status(2, "up");
    assert_true(cluster_wait(repaired_at, &r, 60000));
    for (int k = 0; k < COLD_NEW; k += 37) {
        char key[64];
        snprintf(key, sizeof key, "%s%d", prefix, k);
        struct filled now = {key, 'n'};
        assert_true(node2_reads(&now));
    }
    assert_int_equal(sum_stat("ringkv_read_repairs"), 0);
}

#define REAP_KEYS 60

struct reaps {
    long long want;
};

static bool reaped_n(void *arg)
{
    const struct reaps *x = arg;
    return sum_stat("ringkv_tombstones_reaped") >= x->want;
}

static void test_aae_reaped_tombstone_stays_reaped(void **state)
{
    (void)state;
    assert_int_equal(cluster_start_formed(3, flags_grace), 0);
    assert_true(cluster_wait(warm_write, NULL, 10000));
    assert_true(cluster_wait(transfers_idle, NULL, 30000));
    for (int k = 0; k < REAP_KEYS; k++)
        assert_true(is(ask(k % 3, NULL, "SET reap:%d v%d", k, k), "+OK"));
    for (int k = 0; k < REAP_KEYS; k++)
        assert_true(is(ask(k % 3, NULL, "DEL reap:%d", k), ":1"));
    struct reaps all = {3 * REAP_KEYS};
    assert_true(cluster_wait(reaped_n, &all, 30000));
    long long repaired = sum_stat("ringkv_aae_keys_repaired");
    struct rounds r;
    for (int i = 0; i < 3; i++)
        r.at[i] = info_stat(i, "ringkv_aae_exchanges");
    assert_true(cluster_wait(rounds_passed, &r, 30000));
    assert_int_equal(sum_stat("ringkv_tombstones_reaped"), 3 * REAP_KEYS);
    assert_int_equal(sum_stat("ringkv_aae_keys_repaired"), repaired);
    for (int i = 0; i < 3; i++) {
        struct local_check none = {i, REAP_KEYS, "reap:", true, NULL};
        assert_true(local_values(&none));
    }
}

static const char *const flags_evict[] = {"--request-timeout", "2000", "--aae-interval", "1",
                                          "--maxmemory", "2mb", "--maxmemory-policy",
                                          "allkeys-lru", NULL};

#define EVICT_KEYS 3000

static bool evicted_everywhere(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        if (info_stat(i, "evicted_keys") <= 0)
            return false;
    return true;
}

static void test_aae_leaves_evicted_keys_alone(void **state)
{
    (void)state;
    assert_int_equal(cluster_start_formed(3, flags_evict), 0);
    assert_true(cluster_wait(warm_write, NULL, 10000));
    assert_true(cluster_wait(transfers_idle, NULL, 30000));
    set_filled(0, "evict:", 0, EVICT_KEYS, 'e');
    assert_true(cluster_wait(evicted_everywhere, NULL, 20000));
    struct rounds r;
    for (int i = 0; i < 3; i++)
        r.at[i] = info_stat(i, "ringkv_aae_exchanges");
    assert_true(cluster_wait(rounds_passed, &r, 30000));
    assert_int_equal(sum_stat("ringkv_aae_keys_repaired"), 0);
}

#define FLUSH_KEYS 400

static bool repairing(void *arg)
{
    (void)arg;
    return sum_stat("ringkv_aae_keys_repaired") > 0;
}

static void test_aae_flushall_stays_flushed(void **state)
{
    (void)state;
    assert_int_equal(cluster_start_formed(3, flags_repair), 0);
    assert_true(cluster_wait(warm_write, NULL, 10000));
    assert_true(cluster_wait(transfers_idle, NULL, 30000));
    cluster_signal(2, SIGSTOP);
    wait_status(2, "down");
    for (int k = 0; k < FLUSH_KEYS; k++)
        assert_true(is(ask(k % 2, NULL, "SET flushed:%d v%d", k, k), "+OK"));
    cluster_signal(2, SIGCONT);
    wait_status(2, "up");
    assert_true(cluster_wait(repairing, NULL, 30000));
    assert_true(is(ask(0, NULL, "FLUSHALL"), "+OK"));
    struct rounds r;
    for (int i = 0; i < 3; i++)
        r.at[i] = info_stat(i, "ringkv_aae_exchanges");
    assert_true(cluster_wait(rounds_passed, &r, 30000));
    for (int i = 0; i < 3; i++) {
        struct local_check none = {i, FLUSH_KEYS, "flushed:", true, NULL};
        assert_true(local_values(&none));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_aae_repairs_a_replica_without_reads, cluster_forget_all),
        cmocka_unit_test_teardown(test_aae_delete_stays_deleted, cluster_forget_all),
        cmocka_unit_test_teardown(test_aae_capped_listing_pages_on, cluster_forget_all),
        cmocka_unit_test_teardown(test_aae_repairs_cold_values, cluster_forget_all),
        cmocka_unit_test_teardown(test_aae_reaped_tombstone_stays_reaped, cluster_forget_all),
        cmocka_unit_test_teardown(test_aae_leaves_evicted_keys_alone, cluster_forget_all),
        cmocka_unit_test_teardown(test_aae_flushall_stays_flushed, cluster_forget_all),
    };
    return cluster_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
