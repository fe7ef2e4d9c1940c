/* Unit tests for mq: the SPSC queues between shards. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mq.h"

static void test_mq_keeps_order_and_reports_full(void **state)
{
    struct mq q;
    assert_int_equal(mq_init(&q, 8), 0);
    assert_null(mq_recv(&q));
    uintptr_t sent = 1;
    while (mq_send(&q, (void *)sent) == 0)
        sent++;
    assert_int_equal(sent - 1, 7); /* capacity - 1 */
    assert_int_equal(mq_send(&q, (void *)sent), -EAGAIN);
    for (uintptr_t want = 1; want < sent; want++)
        assert_ptr_equal(mq_recv(&q), (void *)want);
    assert_null(mq_recv(&q));
    mq_fini(&q);
}

#define MQ_MESSAGES 2000000u

static void *mq_producer(void *arg)
{
    struct mq *q = arg;
    for (uintptr_t i = 1; i <= MQ_MESSAGES; i++)
        while (mq_send(q, (void *)i) != 0)
            ;
    return NULL;
}

static void test_mq_transfers_across_threads_in_order(void **state)
{
    struct mq q;
    assert_int_equal(mq_init(&q, 1024), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, mq_producer, &q), 0);
    uintptr_t want = 1;
    while (want <= MQ_MESSAGES) {
        void *m = mq_recv(&q);
        if (!m)
            continue;
        assert_ptr_equal(m, (void *)want);
        want++;
    }
    pthread_join(t, NULL);
    assert_null(mq_recv(&q));
    mq_fini(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mq_keeps_order_and_reports_full),
        cmocka_unit_test(test_mq_transfers_across_threads_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
