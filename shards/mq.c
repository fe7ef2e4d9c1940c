/* mq.c: set-up and tear-down of the SPSC queues (see mq.h).
 * The hot calls (send, receive) are inline in mq.h over ck_ring's SPSC
 * functions, which need only a release store by the producer and an acquire
 * load by the consumer; nothing here runs while the threads do. */
#include "mq.h"

#include <errno.h>
#include <mimalloc.h>

int mq_init(struct mq *q, unsigned capacity)
{
    q->slots = mi_calloc(capacity, sizeof *q->slots);
    if (!q->slots)
        return -ENOMEM;
    ck_ring_init(&q->ring, capacity);
    return 0;
}

void mq_fini(struct mq *q)
{
    mi_free(q->slots);
    q->slots = NULL;
}
