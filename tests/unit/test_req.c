/* test_req.c: requests answered later (req.h), with the reply slots of a
 * real connection (conn.h) as their owner, as cmd.c uses them: a request
 * that times out answers its client with a timeout error and drops what
 * comes back later; a request whose client disconnects is cancelled, and
 * what comes back later finds nothing (run under ASan: nothing touched
 * after free, nothing leaked). Also: quorum, holds, phases, deadline order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "conn.h"
#include "req.h"

static struct req_table table;
static struct io_uring uring;
static struct conn_env env;
static int ends[3];    /* REQ_END_* seen */
static uint64_t owner; /* the connection handle a request answers */
static struct conn *the_conn;

/* The owner's side, as cmd.c's: the connection is looked up by handle. */
static struct conn *conn_of(uint64_t handle)
{
    return the_conn && handle == ((uint64_t)the_conn->slot << 32 | the_conn->gen) ? the_conn : NULL;
}

static bool done_into_slot(struct req_table *t, struct req *r, enum req_end how)
{
    ends[how]++;
    struct conn *c = how == REQ_END_DROP ? NULL : conn_of(r->owner);
    if (!c)
        return true;
    struct conn_slot *slot = r->owner_ptr;
    if (how == REQ_END_TIMEOUT) {
        resp_write_error(&slot->body, "TIMEOUT no reply within request-timeout");
    } else {
        int64_t sum = 0;
        for (uint32_t i = 0; i < r->nsub; i++)
            sum += r->subs[i].status == REQ_INT ? r->subs[i].num : 0;
        resp_write_int(&slot->body, sum);
    }
    conn_slot_ready(c, slot);
    return true;
}

static struct io_uring_sqe *get_sqe(void *o)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&uring);
    if (!sqe) {
        io_uring_submit(&uring);
        sqe = io_uring_get_sqe(&uring);
    }
    return sqe;
}

static void abandon(void *o, uint64_t ticket)
{
    req_cancel(&table, ticket);
}

static int setup(void **state)
{
    memset(ends, 0, sizeof ends);
    req_table_init(&table, NULL);
    if (io_uring_queue_init(8, &uring, 0) != 0)
        return -1;
    env = (struct conn_env){.get_sqe = get_sqe, .abandon = abandon};
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return -1;
    the_conn = conn_create(&env, sv[0], CONN_RESP, 7, 3, 1);
    owner = (uint64_t)7 << 32 | 3;
    *state = (void *)(intptr_t)sv[1];
    return the_conn ? 0 : -1;
}

static int teardown(void **state)
{
    if (the_conn)
        conn_destroy(the_conn);
    the_conn = NULL;
    conn_env_fini(&env); /* the reply slots it kept */
    req_table_fini(&table);
    io_uring_queue_exit(&uring);
    close((int)(intptr_t)*state);
    return 0;
}

/* A request of the connection with n sub-results, owning its next slot. */
static struct req *conn_req(uint32_t n, int64_t deadline)
{
    struct req *r = req_new(&table, n, n, done_into_slot, deadline);
    assert_non_null(r);
    struct conn_slot *slot = conn_slot_reserve(the_conn, r->id);
    assert_non_null(slot);
    r->owner = owner;
    r->owner_ptr = slot;
    return r;
}

/* A sub-result coming back (from another shard, or a disk read): found by id. */
static bool sub_comes_back(uint64_t id, uint32_t sub, int64_t n)
{
    struct req *r = req_find(&table, id);
    if (!r)
        return false; /* dropped: its request has ended */
    r->subs[sub].status = REQ_INT;
    r->subs[sub].num = n;
    buf_append_str(&r->subs[sub].body, ":1\r\n");
    req_sub_done(&table, r);
    return true;
}

static void out_is(const char *want)
{
    assert_int_equal(the_conn->out.len, strlen(want));
    assert_memory_equal(the_conn->out.data, want, strlen(want));
}

static void test_req_times_out_and_drops_late_result(void **state)
{
    int64_t now = 1000;
    struct req *r = conn_req(2, now + 50);
    uint64_t id = r->id;
    /* a reply known at once, behind it, waits for it */
    buf_append_str(conn_reply_buf(the_conn), "+PONG\r\n");
    req_arm(&table, r);
    assert_true(sub_comes_back(id, 0, 1));
    req_expire(&table, now + 49);
    assert_int_equal(ends[REQ_END_TIMEOUT], 0);
    assert_int_equal(the_conn->out.len, 0); /* nothing may overtake it */
    req_expire(&table, now + 50);
    assert_int_equal(ends[REQ_END_TIMEOUT], 1);
    out_is("-TIMEOUT no reply within request-timeout\r\n+PONG\r\n");
    /* the other shard answers late: dropped, nothing else written */
    assert_false(sub_comes_back(id, 1, 1));
    assert_int_equal(ends[REQ_END_DONE], 0);
    assert_int_equal(req_count(&table), 0);
    assert_int_equal(table.expired, 1);
}

static void test_req_client_gone_while_parked(void **state)
{
    struct req *a = conn_req(3, 5000);
    struct req *b = conn_req(1, 5000);
    uint64_t ida = a->id, idb = b->id;
    req_arm(&table, a);
    req_arm(&table, b);
    assert_true(sub_comes_back(ida, 0, 1));
    conn_close(the_conn);
    conn_destroy(the_conn); /* abandons both slots: the requests are cancelled */
    the_conn = NULL;
    assert_int_equal(ends[REQ_END_DROP], 2);
    assert_int_equal(req_count(&table), 0);
    /* their messages come back from other shards: nothing to touch */
    assert_false(sub_comes_back(ida, 1, 1));
    assert_false(sub_comes_back(idb, 0, 1));
    /* a slot reused since is another request: old ids never match it */
    struct req *c = req_new(&table, 1, 1, done_into_slot, 5000);
    assert_non_null(c);
    assert_null(req_find(&table, ida));
    assert_null(req_find(&table, idb));
    req_cancel(&table, c->id);
    req_expire(&table, 10000);
    assert_int_equal(ends[REQ_END_TIMEOUT], 0);
}

static void test_req_quorum_completes_early(void **state)
{
    struct req *r = req_new(&table, 3, 2, done_into_slot, 5000);
    r->owner = owner;
    r->owner_ptr = conn_slot_reserve(the_conn, r->id);
    uint64_t id = r->id;
    req_arm(&table, r);
    assert_true(sub_comes_back(id, 2, 4));
    assert_true(sub_comes_back(id, 0, 5));
    assert_int_equal(ends[REQ_END_DONE], 1);
    out_is(":9\r\n");
    assert_false(sub_comes_back(id, 1, 6)); /* the third replica, late */
}

static void test_req_hold_waits_for_durability(void **state)
{
    struct req *r = conn_req(1, 5000);
    uint64_t id = r->id;
    req_hold(r, 10);
    req_arm(&table, r);
    assert_true(sub_comes_back(id, 0, 1));
    req_durable(&table, 9);
    assert_int_equal(ends[REQ_END_DONE], 0);
    assert_int_equal(the_conn->out.len, 0);
    req_durable(&table, 10);
    out_is(":1\r\n");
    /* a hold whose deadline passes first: the error, never the reply */
    r = conn_req(1, 100);
    id = r->id;
    req_hold(r, 20);
    req_arm(&table, r);
    assert_true(sub_comes_back(id, 0, 1));
    req_expire(&table, 100);
    out_is(":1\r\n-TIMEOUT no reply within request-timeout\r\n");
    req_durable(&table, 20);
    assert_int_equal(ends[REQ_END_DONE], 1);
}

static int phases;

static bool two_phases(struct req_table *t, struct req *r, enum req_end how)
{
    if (how == REQ_END_DONE && phases++ == 0) {
        req_rearm(r, r->nsub);
        return false; /* the second phase's sub-results are routed later */
    }
    return done_into_slot(t, r, how);
}

static void test_req_second_phase_keeps_id_and_deadline(void **state)
{
    phases = 0;
    struct req *r = req_new(&table, 2, 2, two_phases, 700);
    r->owner = owner;
    r->owner_ptr = conn_slot_reserve(the_conn, r->id);
    uint64_t id = r->id;
    req_arm(&table, r);
    assert_true(sub_comes_back(id, 0, 1));
    assert_true(sub_comes_back(id, 1, 1));
    assert_int_equal(phases, 1);
    assert_int_equal(the_conn->out.len, 0);
    assert_true(sub_comes_back(id, 0, 2));
    assert_true(sub_comes_back(id, 1, 3));
    out_is(":5\r\n");
}

static void test_req_deadlines_in_order(void **state)
{
    int64_t deadlines[] = {50, 10, 40, 20, 30, 60, 5};
    for (size_t i = 0; i < sizeof deadlines / sizeof deadlines[0]; i++)
        req_arm(&table, conn_req(1, deadlines[i]));
    req_expire(&table, 25); /* 5, 10, 20 */
    assert_int_equal(ends[REQ_END_TIMEOUT], 3);
    assert_int_equal(req_count(&table), 4);
    /* timeouts answer their slots; the ones before them are still waiting */
    assert_int_equal(the_conn->out.len, 0);
    req_expire(&table, 60);
    assert_int_equal(ends[REQ_END_TIMEOUT], 7);
    assert_int_equal(the_conn->nslots, 0);
}

static bool done_count(struct req_table *t, struct req *r, enum req_end how)
{
    ends[how]++;
    return true;
}

/* n requests with their sub-results in, each held on its own log sequence
 * (base+1..base+n, in arrival order, as appendfsync always makes them). */
static void hold_many(uint32_t n, uint64_t base, uint64_t *ids, int64_t deadline)
{
    int done = ends[REQ_END_DONE];
    for (uint32_t i = 0; i < n; i++) {
        struct req *r = req_new(&table, 1, 1, done_count, deadline);
        assert_non_null(r);
        ids[i] = r->id;
        req_hold(r, base + i + 1);
        req_arm(&table, r);
        req_sub_done(&table, r);
    }
    assert_int_equal(req_count(&table), n);
    assert_int_equal(ends[REQ_END_DONE], done);
}

/* Holds are released, cancelled and expired in O(log n) steps each, never
 * by a search or a shift of the held set: 100k held requests cost a bounded
 * number of heap steps per request however they leave (issue 9: 200 clients
 * pipelining SETs with appendfsync always stalled a shard for seconds). */
static void test_req_many_holds_cost_log_steps_each(void **state)
{
    enum { N = 100000, STEPS_EACH = 2 * 17 + 4 }; /* 2 log2(N) + a few */
    uint64_t *ids = test_malloc(N * sizeof *ids);
    /* one fdatasync releases all of them, oldest first */
    hold_many(N, 0, ids, 1000);
    table.heap_steps = 0;
    req_durable(&table, N);
    assert_int_equal(ends[REQ_END_DONE], N);
    assert_int_equal(req_count(&table), 0);
    assert_true(table.heap_steps <= (uint64_t)N * STEPS_EACH);
    /* clients that leave, newest first and oldest first */
    hold_many(N, N, ids, 1000);
    table.heap_steps = 0;
    for (uint32_t i = 0; i < N / 2; i++)
        req_cancel(&table, ids[N - 1 - i]);
    for (uint32_t i = 0; i < N / 2; i++)
        req_cancel(&table, ids[i]);
    assert_int_equal(ends[REQ_END_DROP], N);
    assert_int_equal(req_count(&table), 0);
    assert_true(table.heap_steps <= (uint64_t)N * STEPS_EACH);
    /* deadlines that pass while all are held */
    hold_many(N, N, ids, 1000 + N);
    table.heap_steps = 0;
    req_expire(&table, 1000 + N);
    assert_int_equal(ends[REQ_END_TIMEOUT], N);
    assert_int_equal(req_count(&table), 0);
    assert_true(table.heap_steps <= (uint64_t)N * STEPS_EACH);
    /* what is released is exactly what is durable */
    hold_many(3, N, ids, 1000);
    req_durable(&table, N + 2);
    assert_int_equal(ends[REQ_END_DONE], N + 2);
    req_durable(&table, N + 3);
    assert_int_equal(ends[REQ_END_DONE], N + 3);
    test_free(ids);
}

/* Deadlines in order go through the ring and leave it in O(1); requests
 * that end early leave stale entries that never expire anything (a slot
 * reused by a newer request is told apart by its generation), and a ring
 * held open by one long request sheds them instead of growing with every
 * request made meanwhile. Sooner deadlines mixed in still expire first. */
static void test_req_deadline_queue_sheds_ended_requests(void **state)
{
    enum { N = 200000 };
    /* one request due late holds the ring's front */
    struct req *old = req_new(&table, 1, 1, done_count, 1000000);
    assert_non_null(old);
    uint64_t old_id = old->id;
    req_arm(&table, old);
    /* N short requests made and answered one after another */
    for (uint32_t i = 0; i < N; i++) {
        struct req *r = req_new(&table, 1, 1, done_count, 1000000 + i);
        assert_non_null(r);
        req_arm(&table, r);
        req_sub_done(&table, r);
    }
    assert_int_equal(ends[REQ_END_DONE], N);
    assert_int_equal(req_count(&table), 1);
    assert_true(table.due[0].cap <= 256); /* not N entries */
    /* their stale entries expire nothing, however late the clock */
    struct req *late = req_new(&table, 1, 1, done_count, 5000000);
    req_arm(&table, late);
    uint64_t late_id = late->id;
    /* a sooner deadline mixed in goes first */
    struct req *soon = req_new(&table, 1, 1, done_count, 500);
    req_arm(&table, soon);
    uint64_t soon_id = soon->id;
    req_expire(&table, 600);
    assert_int_equal(ends[REQ_END_TIMEOUT], 1);
    assert_null(req_find(&table, soon_id));
    assert_non_null(req_find(&table, old_id));
    req_expire(&table, 1000000 + N);
    assert_int_equal(ends[REQ_END_TIMEOUT], 2);
    assert_null(req_find(&table, old_id));
    assert_non_null(req_find(&table, late_id));
    assert_int_equal(req_count(&table), 1);
    req_expire(&table, 5000000);
    assert_int_equal(ends[REQ_END_TIMEOUT], 3);
    assert_int_equal(req_count(&table), 0);
    assert_int_equal(ends[REQ_END_DONE], N);
}

/* Deadlines falling with every request (each sooner than all before it):
 * the first REQ_DUE_RINGS take a ring each, the rest go to the heap; they
 * still expire one by one, soonest first. */
static void test_req_deadlines_out_of_order_expire_soonest_first(void **state)
{
    enum { N = 2 * REQ_DUE_RINGS + 3 };
    uint64_t ids[N];
    for (int i = 0; i < N; i++) {
        struct req *r = req_new(&table, 1, 1, done_count, 1000 - 10 * i);
        assert_non_null(r);
        ids[i] = r->id;
        req_arm(&table, r);
    }
    assert_int_equal(table.nlate, N - REQ_DUE_RINGS);
    for (int i = N - 1; i >= 0; i--) {
        req_expire(&table, 1000 - 10 * i);
        assert_null(req_find(&table, ids[i]));
        if (i > 0)
            assert_non_null(req_find(&table, ids[i - 1]));
        assert_int_equal(req_count(&table), (uint32_t)i);
    }
    assert_int_equal(ends[REQ_END_TIMEOUT], N);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_req_times_out_and_drops_late_result, setup, teardown),
        cmocka_unit_test_setup_teardown(test_req_client_gone_while_parked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_req_quorum_completes_early, setup, teardown),
        cmocka_unit_test_setup_teardown(test_req_hold_waits_for_durability, setup, teardown),
        cmocka_unit_test_setup_teardown(test_req_second_phase_keeps_id_and_deadline, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_req_deadlines_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_req_many_holds_cost_log_steps_each, setup, teardown),
        cmocka_unit_test_setup_teardown(test_req_deadline_queue_sheds_ended_requests, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_req_deadlines_out_of_order_expire_soonest_first,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
