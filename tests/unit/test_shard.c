/* test_shard.c: the shard loop never waits for anyone (issue 9, item 7).
 * shard_sqe() on a tiny ring whose completion ring fills up keeps making
 * progress (it moves completions to the stash rather than spinning on a
 * submit the kernel refuses); shard_send() to a full queue keeps the
 * messages, in order, without allocating and without waiting for the
 * receiver, and retrying the backlog never touches a message once the
 * queue has taken it (the receiver may already be linking it into its own
 * backlog to send it back). A watchdog turns a spin into a failure instead
 * of a hang.
 * shard_submit() is replaced here by one that refuses, as older kernels do,
 * while the completion ring is full. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <mimalloc.h>

#include "cmd.h"
#include "node.h"
#include "shard.h"

/* As kernels 5.5 to 5.18 do: no submission while the completion ring is
 * full and completions overflow (-EBUSY), until the application reaps. */
int shard_submit(struct io_uring *uring)
{
    if (io_uring_cq_ready(uring) >= *uring->cq.kring_entries)
        return -EBUSY;
    return io_uring_submit(uring);
}

static void watchdog(int sig)
{
    static const char msg[] = "test_shard: a call did not return (spinning)\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(1);
}

static void arm_watchdog(unsigned seconds)
{
    signal(SIGALRM, watchdog);
    alarm(seconds);
}

static void test_shard_sqe_progresses_with_a_full_completion_ring(void **state)
{
    struct shard *sh = mi_zalloc(sizeof *sh);
    struct io_uring_params p = {.flags = IORING_SETUP_CQSIZE, .cq_entries = 8};
    assert_int_equal(io_uring_queue_init_params(4, &sh->uring, &p), 0);
    enum { N = 4000 };
    arm_watchdog(20);
    for (int i = 0; i < N; i++) {
        struct io_uring_sqe *sqe = shard_sqe(sh);
        assert_non_null(sqe);
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data64(sqe, (uint64_t)i);
    }
    io_uring_submit(&sh->uring);
    /* Every completion arrives once, in submission order for NOPs. */
    uint32_t seen = 0;
    for (uint32_t i = 0; i < sh->nstash; i++)
        assert_int_equal(sh->stash[i].ud, seen++);
    while (seen < N) {
        struct io_uring_cqe *cqe;
        assert_int_equal(io_uring_wait_cqe(&sh->uring, &cqe), 0);
        assert_int_equal(io_uring_cqe_get_data64(cqe), seen++);
        io_uring_cqe_seen(&sh->uring, cqe);
    }
    alarm(0);
    io_uring_queue_exit(&sh->uring);
    mi_free(sh->stash);
    mi_free(sh);
}

/* Two bare shards whose queues to each other hold 3 messages. */
static void two_shards_new(struct node *n)
{
    for (uint32_t i = 0; i < 2; i++) {
        struct shard *sh = n->shards[i] = mi_zalloc(sizeof *sh);
        sh->id = i;
        sh->node = n;
        sh->inbox = mi_calloc(2, sizeof(struct mq));
        sh->wake = mi_calloc(2, sizeof(bool));
        sh->backlog = mi_calloc(2, sizeof(struct shard_backlog));
        assert_int_equal(mq_init(&sh->inbox[1 - i], 4), 0);
    }
}

static void two_shards_free(struct node *n)
{
    for (uint32_t i = 0; i < 2; i++) {
        struct shard *sh = n->shards[i];
        mq_fini(&sh->inbox[1 - i]);
        mi_free(sh->inbox);
        mi_free(sh->wake);
        mi_free(sh->backlog);
        mi_free(sh);
    }
}

static void test_shard_send_to_a_full_queue_never_waits(void **state)
{
    struct shard *shards[2];
    struct node n = {.nshards = 2, .shards = shards};
    two_shards_new(&n);
    enum { N = 1000 };
    struct cmd_msg *msgs = mi_calloc(N, sizeof *msgs);
    arm_watchdog(20);
    for (int i = 0; i < N; i++) {
        msgs[i].sub = (uint32_t)i;
        shard_send(shards[0], 1, &msgs[i]); /* shard 1 never drains meanwhile */
    }
    alarm(0);
    assert_true(shards[0]->wake[1]);
    /* The queue took what fits; the rest waits in order on the backlog. */
    struct cmd_msg *m;
    uint32_t next = 0;
    while ((m = mq_recv(&shards[1]->inbox[0])))
        assert_int_equal(m->sub, next++);
    assert_int_equal(next, 3);
    assert_int_equal(shards[0]->backlog[1].len, N - 3);
    for (m = shards[0]->backlog[1].head; m; m = m->next)
        assert_int_equal(m->sub, next++);
    assert_int_equal(next, N);
    mi_free(msgs);
    two_shards_free(&n);
}

/* The receiving side of test_shard_retry_backlogs_never_reads_a_sent_message:
 * takes each message as soon as it arrives and, as a shard answering it
 * through its own full queue would, links it (m->next) at once. */
struct receiver {
    struct mq *q;
    uint32_t n, got;
    bool in_order;
};

#define RECEIVER_LINKED ((struct cmd_msg *)(uintptr_t)0x10)

static void *receiver_main(void *arg)
{
    struct receiver *rx = arg;
    rx->in_order = true;
    while (rx->got < rx->n) {
        struct cmd_msg *m = mq_recv(rx->q);
        if (!m)
            continue;
        if (m->sub != rx->got)
            rx->in_order = false;
        rx->got++;
        m->next = RECEIVER_LINKED;
    }
    return NULL;
}

static void test_shard_retry_backlogs_never_reads_a_sent_message(void **state)
{
    struct shard *shards[2];
    struct node n = {.nshards = 2, .shards = shards};
    two_shards_new(&n);
    enum { N = 2000000 };
    struct cmd_msg *msgs = mi_calloc(N, sizeof *msgs);
    assert_non_null(msgs);
    for (uint32_t i = 0; i < N; i++) {
        msgs[i].sub = i;
        shard_send(shards[0], 1, &msgs[i]); /* the receiver is not running yet */
    }
    struct receiver rx = {.q = &shards[1]->inbox[0], .n = N};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, receiver_main, &rx), 0);
    arm_watchdog(60);
    while (shard_retry_backlogs(shards[0]))
        ; /* each call moves what fits; the receiver drains meanwhile */
    assert_int_equal(pthread_join(t, NULL), 0);
    alarm(0);
    assert_int_equal(rx.got, N);
    assert_true(rx.in_order);
    assert_int_equal(shards[0]->backlog[1].len, 0);
    assert_null(shards[0]->backlog[1].head);
    mi_free(msgs);
    two_shards_free(&n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shard_sqe_progresses_with_a_full_completion_ring),
        cmocka_unit_test(test_shard_send_to_a_full_queue_never_waits),
        cmocka_unit_test(test_shard_retry_backlogs_never_reads_a_sent_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
