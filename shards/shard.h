/* shard.h: one shard thread and its loop.
 * A shard owns, and alone touches: its io_uring, its listeners, its client
 * connections, its keyspace (struct store) and its end of every queue.
 * Every loop turn has one shape: reap completions (accepts, receives, sends,
 * wake-ups, the tick), drain the inbound queues (requests from other shards
 * to run here, replies to requests this shard sent), flush replies and
 * wake the shards it sent to, submit, and wait.
 *
 * Threads: shard_* functions run on the shard's own thread, except
 *   shard_create()/shard_destroy() (main thread, before start / after join)
 *   and the stats, which other threads read with relaxed atomic loads.
 * Ownership: messages a shard sends stay the sender's; the receiver answers
 *   by sending the same message back (see cmd.h, struct cmd_msg). */
#ifndef RINGKV_SHARDS_SHARD_H
#define RINGKV_SHARDS_SHARD_H

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "mq.h"

struct node;
struct store;
struct conn;
struct cmd_msg;
struct tier;

/* Counters other threads read (INFO): written by the owner only with relaxed
 * atomic stores, read with relaxed atomic loads; on their own cache line. */
struct shard_stats {
    uint64_t connected_clients;
    uint64_t total_connections_received;
    uint64_t rejected_connections;
    uint64_t total_commands_processed;
    uint64_t net_input_bytes;
    uint64_t net_output_bytes;
    uint64_t parser_examined_bytes; /* bytes the request parsers looked at */
    uint64_t cross_shard_requests;
} __attribute__((aligned(64)));

/* Messages in order: a growable ring (messages waiting for room in a full
 * queue, replies held for durability, requests waiting behind a read).
 * Owner thread only. */
struct shard_backlog {
    struct cmd_msg **msgs;
    uint32_t head, len, cap;
};

/* Appends m. 0, or -ENOMEM (b is unchanged). */
int shard_backlog_push(struct shard_backlog *b, struct cmd_msg *m);
/* Takes the oldest message out; b must not be empty. */
struct cmd_msg *shard_backlog_pop(struct shard_backlog *b);
/* Stopping: frees every message in b (nothing answers them any more) and
 * the ring. */
void shard_backlog_free(struct shard_backlog *b);

struct shard {
    uint32_t id;
    struct node *node;
    pthread_t thread;
    struct io_uring uring;
    int listen_resp_fd;
    int listen_mc_fd; /* -1 when memcache-port is 0 */
    struct store *store;
    struct persist *persist;      /* the segment log; NULL with storage = memory */
    struct tier *tier;            /* cold value reads; NULL unless values may
                                     leave memory (storage = log, maxmemory) */
    int start_rc;                 /* 0, or why the ring or store could not start */
    bool ring_ready;

    /* Receive buffers the kernel picks from (a provided-buffer ring), shared
     * by every connection of the shard: an idle connection holds none. */
    struct io_uring_buf_ring *recv_ring;
    char *recv_bufs;
    bool recv_ring_registered;

    struct mq *inbox;             /* inbox[from]: the queue from shard `from` (SPSC) */
    bool *wake;                   /* wake[to]: sent to `to` this turn; wake it */
    struct shard_backlog *backlog; /* backlog[to]: messages for a full queue */
    struct shard_backlog held;    /* replies to other shards waiting for this
                                     turn's records to be durable (always) */
    struct shard_backlog local;   /* replies to requests of this shard's own
                                     connections that waited (tier.h) */

    struct conn **conns;          /* slot -> connection, NULL when free */
    uint32_t *conn_gen;           /* slot -> generation, bumped on reuse */
    uint32_t conn_cap;
    uint32_t *free_slots;
    uint32_t nfree;
    struct conn *dirty;           /* connections with replies to flush this turn */
    struct conn *parked;          /* connections whose replies wait for the log's
                                     fdatasync (appendfsync always) */
    uint64_t next_client_seq;
    bool accept_paused;

    struct shard_stats stats;
};

/* Builds shard `id` of node n: its ring, listeners, store. NULL on failure
 * (logged). */
struct shard *shard_create(struct node *n, uint32_t id);
void shard_destroy(struct shard *sh);
/* The thread body. */
void *shard_main(void *arg);

/* appendfsync always: true (and the connection is parked until the log is
 * durable) when its output may depend on records not yet durable; its
 * replies must not be sent now. Owner thread only. */
bool shard_park(struct shard *sh, struct conn *c);

/* Sends a message to shard `to` (queued in order if its queue is full) and
 * arranges its wake-up at the end of this turn. Owner thread only. */
void shard_send(struct shard *sh, uint32_t to, struct cmd_msg *m);

#define SHARD_RECV_GROUP 0        /* buffer group id of the receive buffers */
#define SHARD_RECV_BUFS 512        /* a power of two */
#define SHARD_RECV_BUF_SIZE 16384

/* The receive buffer with id bid, and its return to the kernel once read. */
static inline char *shard_recv_buf(struct shard *sh, unsigned bid)
{
    return sh->recv_bufs + (size_t)bid * SHARD_RECV_BUF_SIZE;
}
void shard_recv_buf_return(struct shard *sh, unsigned bid);

/* A submission entry of the shard's ring (submits to make room if full). */
struct io_uring_sqe *shard_sqe(struct shard *sh);

/* Sends a reply message back to its origin: at once, or with appendfsync
 * always once this turn's records are durable. */
void shard_reply(struct shard *sh, struct cmd_msg *m);

/* Marks a connection as having replies to flush at the end of this turn. */
void shard_mark_dirty(struct shard *sh, struct conn *c);

/* Relaxed-atomic counter helpers for struct shard_stats. */
#define SHARD_STAT_ADD(sh, field, n)                                                               \
    __atomic_store_n(&(sh)->stats.field, (sh)->stats.field + (n), __ATOMIC_RELAXED)
#define SHARD_STAT_GET(sh, field) __atomic_load_n(&(sh)->stats.field, __ATOMIC_RELAXED)

#endif
