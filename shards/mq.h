/* mq.h: messages between threads.
 * One single-producer single-consumer queue per ordered pair of threads
 * (ck_ring in SPSC mode underneath); a queue carries pointers.
 * Threads: mq_send() on the sending thread only, mq_recv() on the receiving
 *   thread only; mq_init()/mq_fini() before the threads start / after they end.
 * Ownership: a sent message is the receiver's until it comes back on the
 *   reverse queue; the thread that allocated it frees it.
 * Wake-ups are not this module's: after sending, the sender wakes a sleeping
 *   receiver (the shard loop sends an io_uring MSG_RING).
 * Errors: mq_send() returns -EAGAIN when the queue is full; the caller keeps
 *   the message and retries later. */
#ifndef RINGKV_SHARDS_MQ_H
#define RINGKV_SHARDS_MQ_H

#include <ck_ring.h>
#include <errno.h>

struct mq {
    ck_ring_t ring; /* head and tail on their own cache lines (ck's layout) */
    ck_ring_buffer_t *slots;
};

/* capacity: a power of two; the queue holds capacity - 1 messages.
 * 0 or -ENOMEM. */
int mq_init(struct mq *q, unsigned capacity);
void mq_fini(struct mq *q);

static inline int mq_send(struct mq *q, void *msg)
{
    return ck_ring_enqueue_spsc(&q->ring, q->slots, msg) ? 0 : -EAGAIN;
}

/* The oldest message, or NULL when the queue is empty. */
static inline void *mq_recv(struct mq *q)
{
    void *msg;
    return ck_ring_dequeue_spsc(&q->ring, q->slots, &msg) ? msg : NULL;
}

#endif
