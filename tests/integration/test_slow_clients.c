/* test_slow_clients.c: no client can stall its shard, and idle clients go.
 * - slow_multibulk: on a one-shard node, a raw client sends EXISTS with
 *   100 000 keys a few bytes at a time while a second client keeps sending
 *   PING, each answered before the next piece goes. The node must answer
 *   every PING, then the whole request correctly, and its parsers must have
 *   walked a number of bytes linear in what was sent (INFO's
 *   total_parser_examined_bytes at most 4 times the bytes sent); a node that
 *   parsed a partial request again from its first byte on every receive
 *   would walk billions.
 * - timeout: with --timeout 1, an idle client is closed (the test waits for
 *   EOF with a deadline), while a client that keeps talking is not; CONFIG
 *   GET shows the setting.
 * - idle_gives_back_buffers: a client that sent a 1 MB value and went idle
 *   holds, within a deadline, less than 64 KB of buffers (CLIENT LIST's
 *   tot-mem); connections used to keep them for good.
 * - huge_mset_shares_the_loop: a 65000-key MSET is routed a loop turn's
 *   budget of rows at a time: another client's DBSIZE meanwhile sees part
 *   of it done (all at once, the loop was the MSET's alone, 1.5 s for
 *   300000 keys in a cluster); a GET pipelined after it sees its last key.
 * - huge_mset_of_a_killed_client: that MSET's client killed (CLIENT KILL)
 *   once part of it is done: the rest is written all the same.
 * - huge_msetnx_shares_the_loop: a 65000-key MSETNX over two shards takes
 *   both its phases a turn's budget at a time (1.8 s of one loop for
 *   300000 keys in a cluster before), and still sees every key.
 * - huge_msetnx_of_a_killed_client: that MSETNX's client killed during its
 *   writes: every key is written all the same. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOW_KEYS 100000
#define SLOW_SET 10 /* of those keys, how many exist */
#define PIECES_PER_PING 256

static struct harness_server server;

static int teardown_server(void **state)
{
    return harness_stop(&server) == 0 ? 0 : -1;
}

static int setup_one_shard(void **state)
{
    struct harness_opts o = {.threads = 1};
    return harness_start(&server, &o) == 0 ? 0 : -1;
}

static int setup_timeout(void **state)
{
    static const char *const args[] = {"--timeout", "1", NULL};
    struct harness_opts o = {.threads = 1, .args = args};
    return harness_start(&server, &o) == 0 ? 0 : -1;
}

/* The RESP request cmd "<prefix>:<i>" for nkeys keys, each followed by the
 * value "v" when values is set (MSET); malloc'd, its length in *len. */
static char *keys_request(const char *cmd, const char *prefix, int nkeys, bool values,
                          size_t *len)
{
    size_t cap = 32 + strlen(cmd) + (size_t)nkeys * (40 + strlen(prefix));
    char *req = malloc(cap);
    assert_non_null(req);
    size_t n = (size_t)snprintf(req, cap, "*%d\r\n$%zu\r\n%s\r\n",
                                nkeys * (values ? 2 : 1) + 1, strlen(cmd), cmd);
    for (int i = 0; i < nkeys; i++) {
        char key[64];
        int klen = snprintf(key, sizeof key, "%s:%d", prefix, i);
        n += (size_t)snprintf(req + n, cap - n, "$%d\r\n%s\r\n%s", klen, key,
                              values ? "$1\r\nv\r\n" : "");
    }
    *len = n;
    return req;
}

static void test_slow_clients_multibulk_in_pieces(void **state)
{
    redisContext *pinger = harness_connect(server.port);
    for (int i = 0; i < SLOW_SET; i++)
        harness_expect(pinger, HARNESS_OK, "SET slow:%d v", i * (SLOW_KEYS / SLOW_SET));
    bool has_meter = !harness_target_is_redis();
    double examined_before =
        has_meter ? harness_info_number(pinger, "stats", "total_parser_examined_bytes") : 0;

    size_t len;
    char *req = keys_request("EXISTS", "slow", SLOW_KEYS, false, &len);
    struct harness_raw *slow = harness_raw_open(server.port);
    uint64_t rng = 12345;
    size_t sent = 0, pieces = 0, pongs = 0;
    while (sent < len) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        size_t n = 1 + (size_t)(rng >> 60); /* 1..16 bytes */
        n = n < len - sent ? n : len - sent;
        harness_raw_send(slow, req + sent, n);
        sent += n;
        if (++pieces % PIECES_PER_PING == 0) {
            harness_expect(pinger, HARNESS_STATUS("PONG"), "PING");
            pongs++;
        }
    }
    struct harness_resp *r = harness_raw_reply(slow);
    assert_int_equal(r->type, ':');
    assert_int_equal(r->num, SLOW_SET);
    harness_resp_free(r);
    print_message("%zu bytes in %zu pieces; %zu PINGs answered meanwhile\n", len, pieces, pongs);
    assert_true(pongs >= len / (16 * PIECES_PER_PING));

    if (has_meter) {
        double examined =
            harness_info_number(pinger, "stats", "total_parser_examined_bytes") - examined_before;
        /* Everything sent since the first INFO: the big request, the PINGs
         * ("*1\r\n$4\r\nPING\r\n") and the second INFO. */
        double input = (double)len + 14.0 * (double)pongs + 64.0;
        print_message("parsers walked %.0f bytes for %.0f sent\n", examined, input);
        assert_true(examined <= 4 * input);
    }
    harness_raw_close(slow);
    free(req);
    redisFree(pinger);
}

static void test_slow_clients_timeout_closes_idle(void **state)
{
    redisContext *active = harness_connect(server.port);
    redisReply *cfg = harness_cmd(active, "CONFIG GET timeout");
    const char *const want[] = {"timeout", "1"};
    harness_check_bulks(cfg, want, 2, "CONFIG GET timeout");
    freeReplyObject(cfg);

    struct harness_raw *idle = harness_raw_open(server.port);
    harness_raw_send_str(idle, "PING\r\n");
    harness_raw_expect(idle, "+PONG\r\n");
    /* The idle client must be closed; meanwhile the active one talks every
     * 200 ms (well inside the 1 s timeout) and must keep being answered. */
    int64_t deadline = harness_now_ms() + HARNESS_TIMEOUT_MS;
    int64_t next_ping = 0;
    while (!idle->eof && harness_now_ms() < deadline) {
        if (harness_now_ms() >= next_ping) {
            harness_expect(active, HARNESS_STATUS("PONG"), "PING");
            next_ping = harness_now_ms() + 200;
        }
        harness_raw_fill(idle, idle->len + 1, 50);
    }
    assert_true(idle->eof);
    assert_int_equal(idle->len, 0); /* closed without a word, as Redis */
    /* The active client was served throughout and still is. */
    harness_expect(active, HARNESS_STATUS("PONG"), "PING");
    harness_raw_close(idle);
    redisFree(active);
}

/* tot-mem of client `id` in CLIENT LIST; -1 when it is not listed. */
static long long client_tot_mem(redisContext *c, long long id)
{
    redisReply *r = harness_cmd(c, "CLIENT LIST ID %lld", id);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    const char *field = strstr(r->str, " tot-mem=");
    long long mem = field ? strtoll(field + 9, NULL, 10) : -1;
    freeReplyObject(r);
    return mem;
}

struct watched {
    redisContext *watcher;
    long long id;
    long long mem;
};

static bool buffers_given_back(void *arg)
{
    struct watched *w = arg;
    w->mem = client_tot_mem(w->watcher, w->id);
    return w->mem >= 0 && w->mem < 64 * 1024;
}

static void test_slow_clients_idle_gives_back_buffers(void **state)
{
    harness_skip_unless_ringkv(); /* Redis shrinks query buffers on its own terms */
    redisContext *big = harness_connect(server.port);
    redisContext *watcher = harness_connect(server.port);
    long long id = harness_integer(big, "CLIENT ID");
    size_t len = 1 << 20;
    char *value = malloc(len);
    assert_non_null(value);
    memset(value, 'v', len);
    harness_expect(big, HARNESS_OK, "SET big %b", value, len);
    harness_expect(big, HARNESS_INT((long long)len), "STRLEN big");
    struct watched w = {.watcher = watcher, .id = id};
    print_message("tot-mem right after a 1 MB SET: %lld\n", client_tot_mem(watcher, id));
    bool given_back = harness_wait_until(buffers_given_back, &w, HARNESS_TIMEOUT_MS, 100);
    print_message("tot-mem once idle: %lld\n", w.mem);
    assert_true(given_back);
    /* Still a working connection. */
    harness_expect(big, HARNESS_INT((long long)len), "STRLEN big");
    free(value);
    redisFree(watcher);
    redisFree(big);
}

#define HUGE_KEYS 65000 /* rows: 63 loop turns' worth, under CONN_MAX_WORK */

/* Polls DBSIZE at c, while a command takes it from `before` to `after`,
 * until it reaches `after` (or HARNESS_TIMEOUT_MS passes); adds to *partial
 * the answers that saw the command part done. Returns the last answer. */
static long long dbsize_poll(redisContext *c, long long before, long long after,
                             long long *partial)
{
    long long seen = before;
    int64_t deadline = harness_now_ms() + HARNESS_TIMEOUT_MS;
    while (seen < after && harness_now_ms() < deadline) {
        redisReply *r = harness_cmd(c, "DBSIZE");
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        seen = r->integer;
        *partial += seen > before && seen < after;
        freeReplyObject(r);
    }
    return seen;
}

/* A huge MSET does not take its shard's loop for itself: its rows are
 * routed a loop turn's budget at a time, so another client's DBSIZE, sent
 * as the MSET's last byte went, sees some of its keys set and not others;
 * the command pipelined after it on its own connection still sees all of
 * it. Redis (atomic MSET) shows only none or all: the first part is
 * ringkv's. */
static void test_slow_clients_huge_mset_shares_the_loop(void **state)
{
    redisContext *other = harness_connect(server.port);
    size_t len;
    char *req = keys_request("MSET", "big", HUGE_KEYS, true, &len);
    struct harness_raw *big = harness_raw_open(server.port);
    harness_raw_send(big, req, len - 1); /* all but its last byte: not parsed yet */
    harness_expect(other, HARNESS_INT(0), "DBSIZE");
    static const char tail[] = "\nGET big:64999\r\n";
    harness_raw_send(big, tail, sizeof tail - 1);
    long long partial = 0;
    assert_int_equal(dbsize_poll(other, 0, HUGE_KEYS, &partial), HUGE_KEYS);
    struct harness_resp *ok = harness_raw_reply(big);
    assert_int_equal(ok->type, '+');
    harness_resp_free(ok);
    struct harness_resp *last = harness_raw_reply(big);
    assert_int_equal(last->type, '$');
    assert_int_equal(last->len, 1);
    assert_memory_equal(last->str, "v", 1);
    harness_resp_free(last);
    print_message("%lld DBSIZE answers saw the MSET part done\n", partial);
    if (!harness_target_is_redis())
        assert_true(partial > 0);
    harness_raw_close(big);
    free(req);
    redisFree(other);
}

/* A DBSIZE that is to reach `want`. */
struct dbsize_goal {
    redisContext *c;
    long long want;
};

static bool dbsize_reached(void *arg)
{
    const struct dbsize_goal *g = arg;
    redisReply *r = harness_cmd(g->c, "DBSIZE");
    bool done = r->type == REDIS_REPLY_INTEGER && r->integer == g->want;
    freeReplyObject(r);
    return done;
}

/* Sends a HUGE_KEYS-key cmd (MSET, MSETNX) of new keys "big:<i>" on a
 * client of its own, kills that client (CLIENT KILL) once another client's
 * DBSIZE has moved past `before` (part of it written), and checks that every
 * key is written all the same. A command done before it could be killed
 * leaves nothing to check (said). */
static void huge_write_of_a_killed_client(const char *cmd, long long before)
{
    redisContext *other = harness_connect(server.port);
    size_t len;
    char *req = keys_request(cmd, "big", HUGE_KEYS, true, &len);
    struct harness_raw *big = harness_raw_open(server.port);
    harness_raw_send_str(big, "CLIENT ID\r\n");
    struct harness_resp *id = harness_raw_reply(big);
    assert_int_equal(id->type, ':');
    long long big_id = id->num;
    harness_resp_free(id);
    harness_raw_send(big, req, len);
    long long seen = before;
    int64_t deadline = harness_now_ms() + HARNESS_TIMEOUT_MS;
    while (seen == before && harness_now_ms() < deadline) {
        redisReply *r = harness_cmd(other, "DBSIZE");
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        seen = r->integer;
        freeReplyObject(r);
    }
    if (seen == before + HUGE_KEYS) {
        print_message("the %s was done before it could be killed: nothing to check\n", cmd);
    } else {
        assert_true(seen > before);
        harness_expect(other, HARNESS_INT(1), "CLIENT KILL ID %lld", big_id);
        print_message("killed after %lld of %d keys\n", seen - before, HUGE_KEYS);
    }
    struct dbsize_goal all = {other, before + HUGE_KEYS};
    assert_true(harness_wait_until(dbsize_reached, &all, HARNESS_TIMEOUT_MS, 10));
    harness_raw_close(big);
    free(req);
    redisFree(other);
}

/* The client of a huge MSET killed while its rows are being routed: the
 * rest of them is still written (as when every row went at once, and as
 * Redis does), not dropped with the request. */
static void test_slow_clients_huge_mset_of_a_killed_client(void **state)
{
    huge_write_of_a_killed_client("MSET", 0);
}

static int setup_two_shards(void **state)
{
    /* both of MSETNX's phases run under one deadline: a slow sanitizer
     * build on a busy machine must not turn the test into a timeout's */
    static const char *const args[] = {"--request-timeout", "60000", NULL};
    struct harness_opts o = {.threads = 2, .args = args};
    return harness_start(&server, &o) == 0 ? 0 : -1;
}

/* A 65000-key MSETNX over two shards takes its two phases (EXISTS of every
 * key, then SET of every key) a loop turn's budget of rows at a time: one
 * whose last key exists sets nothing (the first phase saw every row); one
 * of new keys is seen part done by another client's DBSIZE (in one of up
 * to three rounds), answers :1 and a GET pipelined after it sees its last
 * key. */
static void test_slow_clients_huge_msetnx_shares_the_loop(void **state)
{
    redisContext *other = harness_connect(server.port);
    harness_expect(other, HARNESS_OK, "SET nx:%d taken", HUGE_KEYS - 1);
    size_t len;
    char *req = keys_request("MSETNX", "nx", HUGE_KEYS, true, &len);
    struct harness_raw *big = harness_raw_open(server.port);
    harness_raw_send(big, req, len);
    struct harness_resp *no = harness_raw_reply(big);
    assert_int_equal(no->type, ':');
    assert_int_equal(no->num, 0);
    harness_resp_free(no);
    harness_expect(other, HARNESS_INT(1), "DBSIZE");
    free(req);

    /* Up to three rounds, each of new keys: a paced MSETNX leaves whole
     * loop turns between its parts, but a DBSIZE poller descheduled for
     * the few dozen milliseconds they take (a busy CI machine) sees none;
     * all at once, no round could see any. */
    long long partial = 0, before = 1;
    for (int round = 0; round < 3 && partial == 0; round++) {
        char prefix[16], tail[64];
        snprintf(prefix, sizeof prefix, "big%d", round);
        req = keys_request("MSETNX", prefix, HUGE_KEYS, true, &len);
        harness_raw_send(big, req, len - 1); /* all but its last byte: not parsed yet */
        int tlen = snprintf(tail, sizeof tail, "\nGET %s:%d\r\n", prefix, HUGE_KEYS - 1);
        harness_raw_send(big, tail, (size_t)tlen);
        long long after = before + HUGE_KEYS;
        assert_int_equal(dbsize_poll(other, before, after, &partial), after);
        struct harness_resp *yes = harness_raw_reply(big);
        assert_int_equal(yes->type, ':');
        assert_int_equal(yes->num, 1);
        harness_resp_free(yes);
        struct harness_resp *last = harness_raw_reply(big);
        assert_int_equal(last->type, '$');
        assert_int_equal(last->len, 1);
        harness_resp_free(last);
        print_message("round %d: %lld DBSIZE answers saw the MSETNX part done\n", round, partial);
        free(req);
        before = after;
        if (harness_target_is_redis())
            break;
    }
    if (!harness_target_is_redis())
        assert_true(partial > 0);
    harness_raw_close(big);
    redisFree(other);
}

/* The client of a huge MSETNX over two shards killed while its writes are
 * being routed (its second phase): every key is still written, as for
 * MSET. */
static void test_slow_clients_huge_msetnx_of_a_killed_client(void **state)
{
    redisContext *c = harness_connect(server.port);
    harness_expect(c, HARNESS_OK, "SET unrelated v"); /* DBSIZE 1 before the MSETNX */
    redisFree(c);
    huge_write_of_a_killed_client("MSETNX", 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_slow_clients_multibulk_in_pieces, setup_one_shard,
                                        teardown_server),
        cmocka_unit_test_setup_teardown(test_slow_clients_timeout_closes_idle, setup_timeout,
                                        teardown_server),
        cmocka_unit_test_setup_teardown(test_slow_clients_idle_gives_back_buffers, setup_one_shard,
                                        teardown_server),
        cmocka_unit_test_setup_teardown(test_slow_clients_huge_mset_shares_the_loop,
                                        setup_one_shard, teardown_server),
        cmocka_unit_test_setup_teardown(test_slow_clients_huge_mset_of_a_killed_client,
                                        setup_one_shard, teardown_server),
        cmocka_unit_test_setup_teardown(test_slow_clients_huge_msetnx_shares_the_loop,
                                        setup_two_shards, teardown_server),
        cmocka_unit_test_setup_teardown(test_slow_clients_huge_msetnx_of_a_killed_client,
                                        setup_two_shards, teardown_server),
    };
    return harness_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
