/* test_conn.c: a connection's input budget (conn.h, conn_charge). Work its
 * requests leave in flight (their sub-requests on the shards) counts toward
 * pausing its input, not just their number: a client pipelining huge MGETs
 * gets one past the budget served and the rest wait, unparsed, until work
 * is refunded (issue 9: ten 1M-key MGETs queued ten million messages). And
 * a request charged the whole budget (a two-phase MSETNX) is served alone:
 * nothing after it is parsed until it ends. Counted, not timed.
 * Also: the keys of pipelined requests reach the owner's prefetch hook
 * before those requests are served, CONN_PREFETCH-odd at a time; a reply
 * slot that has gone out is kept by the owner and given to the next
 * reserve (the last freed first, empty; a large buffer freed),
 * CONN_SLOT_POOL_MAX at most. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "conn.h"

enum { NBUFS = 4, BUF_SIZE = 4096, COST = CONN_MAX_WORK / 2 + 1 };

static struct io_uring uring;
static struct conn_env env;
static struct conn *conn;
static int peer;
static uint32_t served;
static uint32_t cost; /* what each request is charged */
static uint64_t counters[3];

static struct io_uring_sqe *get_sqe(void *o)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&uring);
    if (!sqe) {
        io_uring_submit(&uring);
        sqe = io_uring_get_sqe(&uring);
    }
    return sqe;
}

static void abandon(void *o, uint64_t ticket) {}

static void on_resp(struct conn *c, struct resp_arg *argv, uint32_t argc)
{
    served++;
    conn_charge(c, cost);
}

static char peeked[64][8]; /* keys handed to prefetch_keys, in order */
static uint32_t npeeked, peek_calls, served_at_peek[8];

static void prefetch_keys(void *owner, const struct resp_arg *keys, uint32_t n)
{
    served_at_peek[peek_calls++ & 7] = served;
    for (uint32_t i = 0; i < n && npeeked < 64; i++)
        snprintf(peeked[npeeked++], sizeof peeked[0], "%.*s", (int)keys[i].len, keys[i].ptr);
}

static int setup(void **state)
{
    served = 0;
    npeeked = peek_calls = 0;
    if (io_uring_queue_init(8, &uring, 0) != 0)
        return -1;
    env = (struct conn_env){.get_sqe = get_sqe, .abandon = abandon, .on_resp = on_resp,
                            .recv_buf_size = BUF_SIZE, .recv_nbufs = NBUFS,
                            .query_buffer_limit = 1 << 20, .input_bytes = &counters[0],
                            .output_bytes = &counters[1], .examined_bytes = &counters[2]};
    env.resp_limits = (struct resp_limits){.max_args = 1024, .max_bulk = 1 << 20,
                                           .max_inline = CONN_INLINE_MAX};
    env.recv_bufs = malloc(NBUFS * BUF_SIZE);
    env.recv_ring = aligned_alloc(4096, 4096);
    io_uring_buf_ring_init(env.recv_ring);
    int sv[2];
    if (!env.recv_bufs || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return -1;
    peer = sv[1];
    conn = conn_create(&env, sv[0], CONN_RESP, 1, 1, 1);
    return conn ? 0 : -1;
}

static int teardown(void **state)
{
    conn_destroy(conn);
    conn_env_fini(&env); /* the reply slots it kept */
    io_uring_queue_exit(&uring);
    free(env.recv_bufs);
    free(env.recv_ring);
    close(peer);
    return 0;
}

/* The kernel filled buffer 0 with s. */
static void receive(const char *s)
{
    size_t n = strlen(s);
    assert_true(n <= BUF_SIZE);
    memcpy(env.recv_bufs, s, n);
    conn_on_recv(conn, (int)n, IORING_CQE_F_BUFFER | IORING_CQE_F_MORE);
}

#define FIVE_REQUESTS                                                                              \
    "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n"            \
    "*1\r\n$4\r\nPING\r\n"

static void test_conn_work_in_flight_pauses_input(void **state)
{
    cost = COST; /* two requests reach the budget */
    receive(FIVE_REQUESTS);
    assert_int_equal(served, 2);
    assert_true(conn->input_paused);
    conn_flush(conn); /* nothing refunded: still paused */
    assert_int_equal(served, 2);
    conn_refund(conn, COST);
    conn_flush(conn);
    assert_int_equal(served, 3);
    conn_refund(conn, 2 * COST);
    conn_flush(conn);
    assert_int_equal(served, 5);
    assert_false(conn->input_paused);
}

static void test_conn_whole_budget_serves_alone(void **state)
{
    cost = 1;
    receive("*1\r\n$4\r\nPING\r\n");
    assert_int_equal(served, 1);
    conn_charge(conn, CONN_MAX_WORK); /* the request being served is a barrier */
    receive(FIVE_REQUESTS);
    assert_int_equal(served, 1);
    conn_refund(conn, CONN_MAX_WORK);
    conn_flush(conn);
    assert_int_equal(served, 6);
}

/* 20 pipelined GETs in one read: the first 16 keys are handed over before
 * any is served, the last 4 once 16 were; a lone request is not (nothing to
 * overlap). */
static void test_conn_prefetch_sees_keys_before_serving(void **state)
{
    cost = 1;
    env.prefetch_keys = prefetch_keys;
    char text[BUF_SIZE] = "";
    for (int i = 0; i < 20; i++) {
        char key[8], req[64];
        snprintf(key, sizeof key, "k%d", i);
        snprintf(req, sizeof req, "*2\r\n$3\r\nGET\r\n$%zu\r\n%s\r\n", strlen(key), key);
        strcat(text, req);
    }
    receive(text);
    conn_refund(conn, 20);
    assert_int_equal(served, 20);
    assert_int_equal(peek_calls, 2);
    assert_int_equal(served_at_peek[0], 0);
    assert_int_equal(served_at_peek[1], 16);
    assert_int_equal(npeeked, 20);
    for (int i = 0; i < 20; i++) {
        char key[8];
        snprintf(key, sizeof key, "k%d", i);
        assert_string_equal(peeked[i], key);
    }
    receive("*2\r\n$3\r\nGET\r\n$1\r\nz\r\n");
    assert_int_equal(served, 21);
    assert_int_equal(peek_calls, 2);
    env.prefetch_keys = NULL;
}

static void test_conn_reply_slots_reused(void **state)
{
    (void)state;
    buf_append(&conn->out, "+", 1); /* so that the slots' replies are copied, not swapped in */
    struct conn_slot *a = conn_slot_reserve(conn, 1), *b = conn_slot_reserve(conn, 2);
    assert_non_null(a);
    assert_non_null(b);
    buf_append(&a->body, "+A\r\n", 4);
    const char *a_data = a->body.data;
    size_t a_cap = a->body.cap;
    a->stats = 7;
    a->body.failed = true;
    for (int i = 0; i < 2 * CONN_SLOT_KEEP_BODY; i++)
        buf_append(&b->body, "x", 1);
    conn_slot_ready(conn, a); /* copied into the output: a goes to the pool */
    conn_slot_ready(conn, b); /* then b, whose large buffer is freed */
    assert_int_equal(env.slot_pool_len, 2);
    struct conn_slot *again = conn_slot_reserve(conn, 3);
    assert_ptr_equal(again, b); /* the last freed first */
    assert_int_equal(again->body.len, 0);
    assert_null(again->body.data);
    assert_false(again->is_ready);
    struct conn_slot *next = conn_slot_reserve(conn, 4);
    assert_ptr_equal(next, a);
    assert_ptr_equal(next->body.data, a_data); /* its small buffer kept, */
    assert_int_equal(next->body.cap, a_cap);
    assert_int_equal(next->body.len, 0); /* empty, */
    assert_false(next->body.failed);     /* and the rest as new */
    assert_int_equal(next->stats, 0);
    assert_int_equal(next->ticket, 4);
    assert_int_equal(env.slot_pool_len, 0);
    conn_slot_ready(conn, again);
    conn_slot_ready(conn, next);
    /* the pool is bounded */
    enum { MANY = CONN_SLOT_POOL_MAX + 100 };
    static struct conn_slot *many[MANY];
    for (int i = 0; i < MANY; i++)
        assert_non_null(many[i] = conn_slot_reserve(conn, 10 + (uint64_t)i));
    for (int i = 0; i < MANY; i++)
        conn_slot_ready(conn, many[i]);
    assert_int_equal(env.slot_pool_len, CONN_SLOT_POOL_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_conn_work_in_flight_pauses_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conn_whole_budget_serves_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conn_reply_slots_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conn_prefetch_sees_keys_before_serving, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
