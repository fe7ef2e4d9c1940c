/* shard.h: one shard thread and its loop.
 * A shard owns, and alone touches: its io_uring, its listeners, its client
 * connections, its keyspace (struct store) and its end of every queue.
 * Every loop turn has one shape: reap completions (accepts, receives, sends,
 * wake-ups, the tick), drain the inbound queues (requests from other shards
 * to run here, replies to requests this shard sent), end requests past
 * their deadline, flush replies and wake the shards it sent to, submit, and
 * wait. Requests answered later are parked in the shard's request table
 * (req.h); its connections see the shard only through their environment
 * (conn.h, struct conn_env).
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

#include "conn.h"
#include "mq.h"
#include "net.h"
#include "req.h"
#include "monitor.h"
#include "slowlog.h"

struct node;
struct store;
struct cmd_msg;
struct cmd_rest;
struct tier;
struct peerlink;
struct coord;
struct hints;
struct aae;

#define SHARD_TICK_MS 100 /* the loop's periodic timer (SHARD_OP_TICK) */

/* The shard's own io_uring operations (user_data kinds, after net/'s). */
enum shard_op {
    SHARD_OP_WAKE = NET_OP_OWNER, /* a MSG_RING from another shard: its queue has messages */
    SHARD_OP_TICK,        /* the loop's periodic timer */
    SHARD_OP_SEG_WRITE,   /* an append to the shard's segment file */
    SHARD_OP_SEG_FSYNC,   /* an fdatasync of the shard's segment file */
    SHARD_OP_SEG_READ,    /* compaction reading an old segment */
    SHARD_OP_SEG_PREPARE, /* creating the next segment ahead of rotation */
    SHARD_OP_TIER_READ,   /* reading a cold value back (values beyond RAM) */
    SHARD_OP_LINK_CONNECT, /* peer links (peerlink.h): a dial */
    SHARD_OP_LINK_RECV,    /* ... a link's multishot receive */
    SHARD_OP_LINK_SEND,    /* ... a link's send */
    SHARD_OP_LINK_WAKE,    /* ... the read of the eventfd the admin thread writes to
                              when it hands the shard an accepted peer socket */
    SHARD_OP_HINT_WRITE,   /* hinted handoff (hints.h): an append to the hint log */
    SHARD_OP_HINT_FSYNC,   /* ... its fdatasync */
    SHARD_OP_TRANSFER_SAVE, /* transfers (transfer.h): a step of writing the state file */
};

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
    uint64_t longest_turn_us; /* the longest loop turn (wall time, not its wait) */
    uint64_t slow_turns;      /* loop turns of slow-turn-ms or more */
} __attribute__((aligned(64)));

/* Messages waiting for room in a full queue, in order: a list through the
 * messages themselves (cmd_msg.next), so holding one back never allocates
 * and never fails. Owner thread only. */
struct shard_backlog {
    struct cmd_msg *head, *tail;
    uint32_t len;
};

/* A completion taken off the ring, dispatched from the shard's stash. */
struct shard_cqe {
    uint64_t ud;
    int32_t res;
    uint32_t flags;
};

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
    struct peerlink *link;        /* connections to other nodes' shards (peerlink.h) */
    int start_rc;                 /* 0, or why the ring or store could not start */
    bool ring_ready;
    bool left_cluster;            /* the view it serves by says this node left its
                                     cluster (coord_turn): its key commands get
                                     CLUSTERDOWN (cmd.h cmd_serves_no_key) */

    /* Receive buffers the kernel picks from (a provided-buffer ring), shared
     * by every connection of the shard: an idle connection holds none. */
    struct io_uring_buf_ring *recv_ring;
    char *recv_bufs;
    bool recv_ring_registered;

    /* Completions taken off the ring and not yet dispatched: the loop reaps
     * into it, and shard_sqe() does when the rings are full (so the kernel
     * can always post more); dispatched in order. */
    struct shard_cqe *stash;
    uint32_t nstash, stash_cap;

    struct mq *inbox;             /* inbox[from]: the queue from shard `from` (SPSC) */
    bool *wake;                   /* wake[to]: sent to `to` this turn; wake it */
    struct shard_backlog *backlog; /* backlog[to]: messages for a full queue */

    struct req_table reqs;        /* requests answered later (req.h) */
    struct cmd_rest *rest, *rest_tail; /* split commands' rows for later turns (cmd.h) */
    int64_t request_timeout_ms;   /* request-timeout */
    int64_t turn_ms;              /* shard_turn_ms(): req_now_ms() as this turn began serving */
    int64_t slow_turn_us;         /* slow-turn-ms, in microseconds */
    int64_t stall_logged_ms;      /* when a long loop turn was last logged (shard_turn_done) */
    struct slowlog slowlog;       /* this shard's slow commands (SLOWLOG) */
    struct monitor_list monitors; /* this shard's MONITOR clients */
    uint64_t settings_gen;        /* node.settings_gen when it last took the live settings */
    struct conn_env env;          /* what the shard's connections see of it */

    struct conn **conns;          /* slot -> connection, NULL when free */
    uint32_t *conn_gen;           /* slot -> generation, bumped on reuse */
    uint32_t conn_cap;
    uint32_t *free_slots;
    uint32_t nfree;
    uint64_t next_client_seq;
    bool accept_paused;
    uint8_t accept_unarmed;       /* listeners whose accept waits for the next tick
                                   (out of descriptors: bit 0 RESP, bit 1 memcached) */
    int64_t accept_logged_ms;     /* when a failed accept was last logged */

    struct coord *coord;          /* the coordinator's state (coord.h) */
    struct hints *hints;          /* hints kept for other nodes (hints.h) */
    struct aae *aae;              /* anti-entropy's trees and exchanges (aae.h) */
    struct transfer *transfer;    /* partition transfers (transfer.h) */

    struct shard_stats stats;
};

/* Builds shard `id` of node n: its ring, listeners, store. NULL on failure
 * (logged). */
struct shard *shard_create(struct node *n, uint32_t id);
void shard_destroy(struct shard *sh);
/* The thread body. */
void *shard_main(void *arg);

/* Sends a message to shard `to` (queued in order, without allocating, if its
 * queue is full) and arranges its wake-up at the end of this turn. Never
 * waits for the other shard. Owner thread only. */
/* The live settings (CONFIG SET) this shard keeps a copy of, taken again:
 * request-timeout, slow-turn-ms, the SLOWLOG's. On its tick, on a turn
 * that finds node.settings_gen changed, and by CONFIG SET on its own shard
 * (so that a request behind it in the same batch has them too). */
void shard_refresh_settings(struct shard *sh);
void shard_send(struct shard *sh, uint32_t to, struct cmd_msg *m);
/* Moves held-back messages into queues that now have room (once per loop
 * turn). True if any remain. Owner thread only. */
bool shard_retry_backlogs(struct shard *sh);

/* The connection with this handle (slot << 32 | generation), or NULL when
 * it has gone. */
struct conn *shard_conn_of(struct shard *sh, uint64_t handle);
static inline uint64_t shard_conn_handle(const struct conn *c)
{
    return (uint64_t)c->slot << 32 | c->gen;
}

#define SHARD_RECV_GROUP 0        /* buffer group id of the receive buffers */
#define SHARD_RECV_BUFS 512        /* a power of two */
#define SHARD_RECV_BUF_SIZE 16384

/* The receive buffer with id bid. */
static inline char *shard_recv_buf(struct shard *sh, unsigned bid)
{
    return sh->recv_bufs + (size_t)bid * SHARD_RECV_BUF_SIZE;
}

/* A submission entry of the shard's ring. When the ring is full it submits;
 * when the kernel cannot take more because the completion ring is full, it
 * moves completions to the stash (dispatched later this turn), so it always
 * makes progress. */
struct io_uring_sqe *shard_sqe(struct shard *sh);
/* The submit shard_sqe() makes room with: io_uring_submit(). A test may
 * define its own (a weak symbol) to act as kernels that refuse submissions
 * while completions overflow (5.5 to 5.18 answer -EBUSY). */
int shard_submit(struct io_uring *uring);

/* The monotonic clock (req_now_ms) as this loop turn began to serve its
 * completions (read again for the tick's work): what the request path
 * reads for deadlines, one clock read per turn rather than one or more per
 * request and per message sent. A deadline from it is early, and the time
 * left it tells a replica long, by the part of the turn already gone: a
 * turn's work is bounded (input budgets) and is typically well under a
 * millisecond, against a request-timeout of seconds (a long one is counted
 * in INFO ringkv_slow_turns). Forwards, with their margins, read the clock. */
static inline int64_t shard_turn_ms(const struct shard *sh)
{
    return sh->turn_ms;
}

/* The deadline of a request parked now (request-timeout from this turn). */
static inline int64_t shard_deadline(const struct shard *sh)
{
    return shard_turn_ms(sh) + sh->request_timeout_ms;
}

/* The deadline of a peer's request that has left_ms to go (its message's
 * deadline_ms; 0: request-timeout, as shard_deadline). */
static inline int64_t shard_deadline_in(const struct shard *sh, uint32_t left_ms)
{
    return left_ms ? shard_turn_ms(sh) + left_ms : shard_deadline(sh);
}

/* Relaxed-atomic counter helpers for struct shard_stats. */
#define SHARD_STAT_ADD(sh, field, n)                                                               \
    __atomic_store_n(&(sh)->stats.field, (sh)->stats.field + (n), __ATOMIC_RELAXED)
#define SHARD_STAT_GET(sh, field) __atomic_load_n(&(sh)->stats.field, __ATOMIC_RELAXED)

#endif
