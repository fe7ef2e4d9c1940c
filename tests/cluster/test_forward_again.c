/* test_forward_again: a forward that gets no answer where it went is not
 * left to request-timeout (shards/coord.c), with real nodes on 127.0.0.x.
 * - test_forward_again_refused_while_the_ring_changes: a read forwarded
 *   and refused because the ring was changing (COORD_VIEW_CHANGING:
 *   nothing of it ran) is sent again by the node that forwarded it, so the
 *   client never sees that refusal (coord_again_queue). Three nodes, one
 *   replica a key (N = 1), one shard each. A is the claimant (the lowest
 *   id: it makes the ring), B and C the others. A key k that C owns is
 *   chosen among those that go to B when C leaves. B is SIGSTOPped, C is
 *   made to leave (DELETE /v1/nodes/{C} at A), and once A's and C's views
 *   send k to B a client at A sends GET k. A forwards it to B, and B is
 *   SIGCONTinued: its shard reads the forward before its admin thread has
 *   heard of the new ring, so in its old view C holds k and it sends the
 *   read on to C, which has left k and refuses it (a second hop). A gets
 *   the refusal and sends the read again, by then to a B that knows the
 *   new ring. The client gets nil (k was never written; before the change:
 *   -TRYAGAIN the cluster view is changing) and INFO ringkv_forwards_resent
 *   at A grows. Now and then B's admin thread has the new ring before its
 *   shard reads the forward; B then answers k itself and nothing is
 *   refused, so the round is run again, up to 4 times, until one had a
 *   refusal; every round must answer nil.
 * - test_forward_again_write_refused_while_the_ring_changes: the same with
 *   INCR k: the refused write is sent again too (to k's first replica in
 *   A's view: its client sent nothing after it), the client gets 1, and
 *   GET k at A reads 1 (applied once).
 * - test_forward_again_link_closed: four nodes, N = 3, request-timeout
 *   4 s. A holds no replica of two keys whose first replica is B (its
 *   -MOVED on a READONLY connection). B is SIGSTOPped; a
 *   client at A sends GET of the first key and SET of the second, both
 *   forwarded to B and waiting there; then B is killed (SIGKILL), which
 *   closes A's link to it. The GET goes to the next replica, which answers
 *   the value (R = 2 of the two left) before the 500 ms after which the
 *   late-read watch would have sent it on; the SET gets -UNAVAILABLE
 *   naming the closed connection, well under the request-timeout
 *   (before: the GET took about 600 ms, and the SET waited the whole 4 s
 *   and said "did not answer within request-timeout"). A SET sent next,
 *   while B is dead but not yet called down, dials B, is refused, and
 *   also answers at once (it waited the 4 s too).
 * - test_forward_again_handshake_refused: the same four nodes; B is killed
 *   and at once started again under another cluster-secret, so A, which
 *   still calls it up, dials it for the next write's forward and B's
 *   handshake refuses A. The write queued for that handshake gets
 *   -UNAVAILABLE naming the closed connection at once (before: it waited
 *   the whole 4 s; the link had been ended by A's side of the handshake,
 *   not by the far side). Writes that find B in its dial's backoff, or
 *   called down, go to the next replica at once; each must answer within
 *   2 s, and one must have met the refused handshake.
 * Every wait is on a condition with a deadline; nodes are stopped by PID
 * (cluster_finish). */
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

#define NODES 3
#define CANDIDATES 64 /* keys C owns, some of which go to B */

/* The node a READONLY connection to node `at` is sent to for key (its
 * -MOVED), or `at` when that node owns it. */
static int owner_seen_by(redisContext *ro, int at, const char *key)
{
    int to = cluster_moved_to(ro, key);
    assert_true(to >= -1);
    return to < 0 ? at : to;
}

struct move {
    redisContext *ro; /* READONLY at a */
    int a, b;
    char keys[CANDIDATES][32];
    int nkeys;
    int chosen; /* index of a key A now sends to B */
};

/* A's view has moved one of C's keys to B. */
static bool moved_to_b(void *arg)
{
    struct move *m = arg;
    for (int k = 0; k < m->nkeys; k++) {
        if (owner_seen_by(m->ro, m->a, m->keys[k]) == m->b) {
            m->chosen = k;
            return true;
        }
    }
    return false;
}

struct forwarded {
    int a;
    long long before;
};

static bool forward_sent(void *arg)
{
    const struct forwarded *f = arg;
    return cluster_info_stat(f->a, "stats", "ringkv_forwarded") > f->before;
}

/* One round: a fresh cluster, C's leave, the GET (or INCR) at A. Returns
 * how many forwards A sent again (0 when B's shard heard of the new ring
 * first and nothing was refused). */
static long long command_while_the_ring_changes(bool is_write)
{
    const char *flags[] = {"--replicas", "1", "--threads", "1", NULL};
    assert_int_equal(cluster_start_formed(NODES, flags), 0);
    /* A: the lowest id (the claimant, which makes the ring without B) */
    int a = 0;
    for (int i = 1; i < NODES; i++)
        if (strcmp(cluster_node(i)->id, cluster_node(a)->id) < 0)
            a = i;
    int b = (a + 1) % NODES, c = (a + 2) % NODES;

    struct move m = {.a = a, .b = b, .chosen = -1};
    m.ro = cluster_connect(a, 10000);
    assert_non_null(m.ro);
    freeReplyObject(redisCommand(m.ro, "READONLY"));
    for (int k = 0; k < 5000 && m.nkeys < CANDIDATES; k++) {
        char name[32];
        snprintf(name, sizeof name, "again:%d", k);
        if (owner_seen_by(m.ro, a, name) == c)
            memcpy(m.keys[m.nkeys++], name, sizeof name);
    }
    assert_int_equal(m.nkeys, CANDIDATES);
    long long resent_before = cluster_info_stat(a, "stats", "ringkv_forwards_resent");

    cluster_signal(b, SIGSTOP);
    char path[128];
    snprintf(path, sizeof path, "/v1/nodes/%s", cluster_node(c)->id);
    int status = 0;
    json_decref(cluster_request(a, "DELETE", path, "", &status));
    assert_int_equal(status, 202);
    if (!cluster_wait(moved_to_b, &m, 2000)) {
        cluster_signal(b, SIGCONT);
        fail_msg("node %d (A) did not move any of node %d's keys to node %d within 2 s", a, c,
                 b);
    }
    const char *key = m.keys[m.chosen];
    redisFree(m.ro);
    /* C has taken the new ring too: it would refuse k, not coordinate it */
    struct move at_c = {.a = c, .b = b, .chosen = -1, .nkeys = 1};
    memcpy(at_c.keys[0], key, sizeof at_c.keys[0]);
    at_c.ro = cluster_connect(c, 10000);
    assert_non_null(at_c.ro);
    freeReplyObject(redisCommand(at_c.ro, "READONLY"));
    bool c_knows = cluster_wait(moved_to_b, &at_c, 2000);
    redisFree(at_c.ro);
    if (!c_knows) {
        cluster_signal(b, SIGCONT);
        fail_msg("node %d (C) did not send %s to node %d within 2 s", c, key, b);
    }

    /* GET (INCR) k at A goes to B, which is stopped: it waits there */
    redisContext *wc = cluster_connect(a, 10000);
    assert_non_null(wc);
    struct forwarded f = {a, cluster_info_stat(a, "stats", "ringkv_forwarded")};
    if (is_write)
        assert_int_equal(redisAppendCommand(wc, "INCR %s", key), REDIS_OK);
    else
        assert_int_equal(redisAppendCommand(wc, "GET %s", key), REDIS_OK);
    for (int done = 0; !done;)
        assert_int_equal(redisBufferWrite(wc, &done), REDIS_OK);
    bool sent = cluster_wait(forward_sent, &f, 2000);
    cluster_signal(b, SIGCONT);
    assert_true(sent);
    redisReply *r = NULL;
    assert_int_equal(redisGetReply(wc, (void **)&r), REDIS_OK);
    assert_non_null(r);
    long long resent = cluster_info_stat(a, "stats", "ringkv_forwards_resent") - resent_before;
    print_message("%s %s at node %d while node %d (stopped) took it from node %d: %s %s; "
                  "forwards sent again: %lld\n",
                  is_write ? "INCR" : "GET", key, a, b, c,
                  r->type == REDIS_REPLY_NIL ? "nil" : "", r->str ? r->str : "", resent);
    if (is_write) { /* applied once: 1, and 1 where reads look (B) */
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        assert_int_equal(r->integer, 1);
        freeReplyObject(r);
        r = redisCommand(wc, "GET %s", key);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        assert_string_equal(r->str, "1");
    } else {
        assert_int_equal(r->type, REDIS_REPLY_NIL);
    }
    freeReplyObject(r);
    redisFree(wc);
    return resent;
}

/* Rounds until one had a refusal to send again (most do: B's shard reads
 * the forward before its admin thread has the new ring), at most ROUNDS;
 * each must answer as the command's only run would (GET nil, INCR 1). */
#define ROUNDS 4
static void refused_while_the_ring_changes(void **state, bool is_write)
{
    long long resent = 0;
    for (int round = 0; round < ROUNDS && resent == 0; round++) {
        resent = command_while_the_ring_changes(is_write);
        assert_int_equal(cluster_forget_all(state), 0);
    }
    if (resent == 0)
        fail_msg("no round of %d refused the forward: the test did not test", ROUNDS);
}

static void test_forward_again_refused_while_the_ring_changes(void **state)
{
    refused_while_the_ring_changes(state, false);
}

/* The same with INCR k: a write refused unrun is sent again too, to the
 * key's first replica in A's view (B), applied once (1, and GET reads 1;
 * before: the client got -TRYAGAIN the cluster view is changing). */
static void test_forward_again_write_refused_while_the_ring_changes(void **state)
{
    refused_while_the_ring_changes(state, true);
}

/* ---- a link that closes ---- */

#define LOST_NODES 4 /* N = 3: a quarter of the keys have no replica at node 0 */
/* The answers after the kill come within these: a write's before its
 * request-timeout (4 s), a read's before the 500 ms after which a late read
 * goes to the next replica anyway. */
#define LOST_WRITE_MS 2000
#define LOST_READ_MS 450

struct lost_sent {
    int a;
    long long want;
};

static bool lost_forwards_sent(void *arg)
{
    const struct lost_sent *f = arg;
    return cluster_info_stat(f->a, "stats", "ringkv_forwarded") >= f->want;
}

/* LOST_NODES nodes (request-timeout 4 s, one shard each), and two keys
 * node a holds no replica of, with the same first replica: that node's
 * index. */
static int start_with_two_forwarded_keys(int a, char read_key[32], char write_key[32])
{
    const char *flags[] = {"--request-timeout", "4000", "--threads", "1", NULL};
    assert_int_equal(cluster_start_formed(LOST_NODES, flags), 0);
    redisContext *ro = cluster_connect(a, 10000);
    assert_non_null(ro);
    freeReplyObject(redisCommand(ro, "READONLY"));
    read_key[0] = write_key[0] = '\0';
    int b = -1;
    for (int k = 0; k < 2000 && !write_key[0]; k++) {
        char name[32];
        snprintf(name, sizeof name, "lost:%d", k);
        int to = owner_seen_by(ro, a, name);
        if (to == a || (b >= 0 && to != b))
            continue;
        b = to;
        memcpy(read_key[0] ? write_key : read_key, name, 32);
    }
    redisFree(ro);
    assert_true(b >= 0 && write_key[0]);
    return b;
}

static void test_forward_again_link_closed(void **state)
{
    (void)state;
    const int a = 0;
    char read_key[32], write_key[32];
    int b = start_with_two_forwarded_keys(a, read_key, write_key);
    redisContext *wc = cluster_connect(a, 10000);
    assert_non_null(wc);
    redisReply *r = redisCommand(wc, "SET %s kept", read_key); /* W = 2: on b and the other */
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);

    cluster_signal(b, SIGSTOP);
    struct lost_sent f = {a, cluster_info_stat(a, "stats", "ringkv_forwarded") + 2};
    assert_int_equal(redisAppendCommand(wc, "GET %s", read_key), REDIS_OK);
    assert_int_equal(redisAppendCommand(wc, "SET %s lost", write_key), REDIS_OK);
    for (int done = 0; !done;)
        assert_int_equal(redisBufferWrite(wc, &done), REDIS_OK);
    bool sent = cluster_wait(lost_forwards_sent, &f, 2000);
    int64_t t0 = cluster_now_ms();
    cluster_signal(b, SIGKILL);
    assert_true(sent);
    r = NULL;
    assert_int_equal(redisGetReply(wc, (void **)&r), REDIS_OK);
    int64_t read_ms = cluster_now_ms() - t0;
    print_message("GET with node %d killed: %s after %lld ms\n", b,
                  r->str ? r->str : "(no text)", (long long)read_ms);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "kept");
    freeReplyObject(r);
    r = NULL;
    assert_int_equal(redisGetReply(wc, (void **)&r), REDIS_OK);
    int64_t write_ms = cluster_now_ms() - t0;
    print_message("SET with node %d killed: %s after %lld ms\n", b, r->str ? r->str : "?",
                  (long long)write_ms);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "UNAVAILABLE"));
    assert_non_null(strstr(r->str, "closed before it answered"));
    freeReplyObject(r);
    assert_true(read_ms < LOST_READ_MS);
    assert_true(write_ms < LOST_WRITE_MS);

    /* b is dead, not yet down: a new write dials it, the connect is
     * refused, and it ends as well (or goes to the next replica at once) */
    t0 = cluster_now_ms();
    r = redisCommand(wc, "SET %s again", write_key);
    int64_t again_ms = cluster_now_ms() - t0;
    assert_non_null(r);
    print_message("SET after node %d was killed: %s after %lld ms\n", b, r->str ? r->str : "?",
                  (long long)again_ms);
    assert_null(r->str ? strstr(r->str, "within request-timeout") : NULL);
    freeReplyObject(r);
    assert_true(again_ms < LOST_WRITE_MS);
    redisFree(wc);
}

/* B restarts at once (killed, so it does not leave) under another
 * cluster-secret: A still calls it up (failure detection needs seconds)
 * and dials it for the next forward, and B's handshake refuses A. The
 * forward queued for that handshake ends at once: the write goes to the
 * next replica or gets -UNAVAILABLE (before: it waited its 4 s). Each
 * write is sent on its own connection, and A may call B down at any time
 * (then writes go to the next replica at once), so every write must
 * answer within LOST_WRITE_MS; at least one must have met the refused
 * handshake, which INFO's failed handshakes at A shows. */
static void test_forward_again_handshake_refused(void **state)
{
    (void)state;
    const int a = 0;
    char read_key[32], write_key[32];
    int b = start_with_two_forwarded_keys(a, read_key, write_key);
    redisReply *r = cluster_redis_command(a, "SET %s before", write_key);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS); /* A's link to B is open */
    freeReplyObject(r);
    long long failed0 = cluster_info_stat(a, "cluster", "peer_links_handshake_failures");
    cluster_signal(b, SIGKILL);
    const char *other[] = {"--request-timeout", "4000", "--threads",       "1",
                           "--cluster-secret",  "not the cluster's secret", NULL};
    assert_int_equal(cluster_start(b, other), 0);
    int writes = 0;
    bool refused = false;
    for (int64_t until = cluster_now_ms() + 3000; !refused && cluster_now_ms() < until; writes++) {
        redisContext *wc = cluster_connect(a, 10000);
        assert_non_null(wc);
        int64_t t0 = cluster_now_ms();
        r = redisCommand(wc, "SET %s again", write_key);
        int64_t ms = cluster_now_ms() - t0;
        assert_non_null(r);
        print_message("SET with node %d refusing the handshake: %s after %lld ms\n", b,
                      r->str ? r->str : "?", (long long)ms);
        assert_null(r->str ? strstr(r->str, "within request-timeout") : NULL);
        assert_true(ms < LOST_WRITE_MS);
        refused = r->str && strstr(r->str, "closed before it answered");
        freeReplyObject(r);
        redisFree(wc);
    }
    long long failed = cluster_info_stat(a, "cluster", "peer_links_handshake_failures");
    print_message("%d writes; failed handshakes at node %d: %lld -> %lld\n", writes, a, failed0,
                  failed);
    assert_true(refused);
    assert_true(failed > failed0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_forward_again_refused_while_the_ring_changes,
                                  cluster_forget_all),
        cmocka_unit_test_teardown(test_forward_again_write_refused_while_the_ring_changes,
                                  cluster_forget_all),
        cmocka_unit_test_teardown(test_forward_again_link_closed, cluster_forget_all),
        cmocka_unit_test_teardown(test_forward_again_handshake_refused, cluster_forget_all),
    };
    return cluster_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
