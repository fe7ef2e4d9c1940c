/* conn.h: a client connection: its socket, its parser and its ordered replies.
 * A connection is accepted by one shard and stays there. Its bytes come in
 * through io_uring receives; every whole request in the buffer is parsed
 * (RESP or memcached text) and handed to the environment's request callback
 * (struct conn_env, given by whoever owns the connection); replies go out in
 * request order through one send per loop turn. net/ knows nothing of
 * commands or shards: the environment is all it sees of its owner.
 *
 * Reply order: a reply known at once is written straight into `out` while
 * no reply before it is outstanding (conn_reply_buf). A reply that comes
 * later takes a reply slot (conn_slot_reserve), filled later
 * (conn_slot_ready); replies known at once behind an outstanding one get a
 * ready slot of their own. The ready prefix of the slot FIFO moves into
 * `out` in order, so a pipeline whose replies arrive in any order is
 * answered in request order.
 *
 * Threads: the owning thread only.
 * Ownership: the owner frees a connection (conn_destroy) once conn_is_done;
 *   a slot still outstanding then is given back through env->abandon (the
 *   owner cancels what would have filled it) before its memory goes. */
#ifndef RINGKV_NET_CONN_H
#define RINGKV_NET_CONN_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "mc.h"
#include "resp.h"

struct conn;

/* What the owner of a set of connections gives them: its ring, its receive
 * buffers, its limits and counters, and where parsed requests go. One per
 * owner; connections keep a pointer to it. */
struct conn_env {
    void *owner;
    /* A submission entry of the owner's ring (never NULL: makes room). */
    struct io_uring_sqe *(*get_sqe)(void *owner);
    /* Receive buffers the kernel picks from (a provided-buffer ring). */
    struct io_uring_buf_ring *recv_ring;
    char *recv_bufs;
    uint32_t recv_buf_size;
    uint32_t recv_nbufs;       /* a power of two */
    uint16_t recv_group;
    /* A parsed RESP request (argv valid during the call) or memcached one.
     * One that calls conn_hold_input() stays unread: it is parsed and
     * handed over again once the owner calls conn_release_input(). */
    void (*on_resp)(struct conn *c, struct resp_arg *argv, uint32_t argc);
    void (*on_mc)(struct conn *c, struct mc_request *req);
    /* Optional: the keys (second arguments) of the next few pipelined RESP
     * requests, before any of them is parsed and run, so that the owner can
     * ask for their memory ahead (a hint: they may be cut short, and are
     * parsed and checked as usual afterwards). Valid during the call. */
    void (*prefetch_keys)(void *owner, const struct resp_arg *keys, uint32_t n);
    /* A slot of a connection being freed was still outstanding: `ticket`
     * is what conn_slot_reserve() was given; nothing may fill it any more. */
    void (*abandon)(void *owner, uint64_t ticket);
    struct resp_limits resp_limits;
    struct mc_limits mc_limits;
    uint64_t query_buffer_limit;  /* most unparsed bytes per client */
    uint64_t *input_bytes;        /* counters (relaxed atomic stores) */
    uint64_t *output_bytes;
    uint64_t *examined_bytes;     /* bytes the request parsers looked at */
    const int *hold_writers;      /* atomic, may be NULL: while > 0, input of
                                     connections that have written pauses
                                     (the owner's back-pressure) */
    struct conn *dirty;           /* connections with replies to flush this turn */
    struct conn_slot *slot_pool;  /* reply slots freed, kept for reuse (conn_slot_reserve) */
    uint32_t slot_pool_len;
};

#define CONN_SLOT_POOL_MAX 1024 /* reply slots an owner keeps for reuse */
#define CONN_SLOT_KEEP_BODY 512 /* a pooled slot keeps a reply buffer up to this size */

#define CONN_INLINE_MAX (64 * 1024) /* an inline command's line (Redis's PROTO_INLINE_MAX_SIZE):
                                       resp_limits.max_inline must be this */
#define CONN_MC_LINE_MAX 8192        /* a memcached command line (mc_limits.max_line) */

enum conn_kind { CONN_RESP, CONN_MC };

/* CLIENT REPLY (Redis's flags): OFF drops replies until ON; SKIP drops the
 * reply of the request being served; SKIP_NEXT becomes SKIP for the next. */
#define CONN_REPLY_OFF 1u
#define CONN_REPLY_SKIP 2u
#define CONN_REPLY_SKIP_NEXT 4u

/* CONSISTENCY's values of conn.consistency_r and consistency_w (issue 11). */
#define CONN_CONSISTENCY_DEFAULT 0    /* the node's read-quorum / write-quorum */
#define CONN_CONSISTENCY_MAX 16       /* 1 .. this: that many replicas */
#define CONN_CONSISTENCY_QUORUM 0xFE  /* a majority of the N replicas: N / 2 + 1 */
#define CONN_CONSISTENCY_ALL 0xFF     /* all N replicas */

/* A place in the reply order, filled later. */
struct conn_slot {
    struct conn_slot *next;
    bool is_ready;
    uint32_t stats;   /* how the reply counts in INFO, and whether CLIENT
                         REPLY drops it (shards/cmd_stats.h); 0 = neither */
    uint64_t ticket;  /* the owner's name for what fills it (conn_env.abandon) */
    struct buf body;
};

struct conn {
    struct conn_env *env;
    int fd;
    uint32_t slot;           /* the owner's handle: slot and generation */
    uint32_t gen;
    enum conn_kind kind;
    uint64_t id;
    int resp_version;        /* 2 or 3 */
    bool authenticated;
    bool recv_armed;         /* a multishot receive is in the kernel */
    bool recv_cancelling;    /* asked the kernel to stop it (input paused) */
    bool send_inflight;
    bool closing;            /* no more requests; close once nothing is in flight */
    bool close_after_flush;  /* QUIT, protocol error: close once `out` is sent */
    bool input_paused;       /* too much waiting; parse again when it drains */
    bool input_held;         /* the owner holds the next request unread (conn_hold_input) */
    uint64_t work;           /* charged by the owner for requests in flight (conn_charge) */
    bool is_dirty;
    bool was_active;         /* bytes came in or went out since conn_idle_ms() */
    bool is_writer;          /* has sent a command that changes data (set by
                                the dispatcher; env->hold_writers pauses it) */
    char *name;              /* CLIENT SETNAME, mi_malloc'd, or NULL */
    char addr[64];
    char laddr[64];          /* the local end, read once at accept (CLIENT LIST, KILL LADDR) */
    int64_t created_ms;
    int64_t last_ms;
    const char *last_cmd;    /* static command name */
    uint8_t reply_flags;     /* CONN_REPLY_* */
    size_t unparsed;         /* while a request is served: received bytes from
                                its start on (CLIENT LIST qbuf); else 0 */
    size_t reply_peak;       /* most reply bytes gathered at once (CLIENT LIST rbp) */
    /* Redis Cluster clients and CONSISTENCY (shards/cmd_cluster.c, issue 11).
     * consistency_r, consistency_w: this connection's read and write quorums
     * (CONN_CONSISTENCY_*), which the coordinator caps by the cluster's size.
     * cluster_aware: the client asked for the topology (CLUSTER SLOTS, SHARDS,
     * NODES) or sent READONLY or ASKING, so it follows -MOVED itself. */
    uint8_t consistency_r, consistency_w;
    bool cluster_aware;
    bool is_monitor; /* MONITOR (shards/monitor.c): gets every request's line, no replies */
    /* Pipeline order in a cluster (shards/cmd_order.c): this connection's
     * requests in flight that later ones may have to wait for, with their
     * slots; mi_malloc'd on first use, net/ only frees it. */
    struct conn_order *order;

    struct buf in;
    union {                  /* progress through the partial request at in[0] */
        struct resp_state resp;
        struct mc_state mc;
    } parse;
    uint64_t swallow;        /* memcached: bytes of a refused value still to drop */
    struct buf out;          /* replies being gathered */
    struct buf sending;      /* replies handed to the kernel */
    size_t sent;

    struct conn_slot *head, *tail; /* replies not yet in `out`, in order */
    uint32_t nslots;

    struct resp_arg *argv;
    uint32_t argv_cap;
    char *scratch;           /* inline-command scratch, allocated on first use */
    struct mc_key *mc_keys;
    uint32_t mc_keys_cap;
    struct conn *next_dirty;
    /* MULTI/EXEC/WATCH (shards/cmd_multi.c, issue 11): the transaction being
     * queued and the keys watched, in cmd_multi.c's encoding; net/ only
     * frees the buffers. multi_flags: cmd_multi.c's CMD_MULTI_* bits;
     * multi_slot: the hash slot of every key so far, -1 while none. */
    uint8_t multi_flags;
    int32_t multi_slot;
    uint32_t multi_count;    /* commands queued */
    struct buf multi_queue;
    struct buf multi_watch;
};

/* The owner's connections are all gone: frees its pooled reply slots. */
void conn_env_fini(struct conn_env *env);

/* Creates a connection for an accepted socket, known to its owner as
 * (slot, gen) and to clients as `id`. NULL on out of memory. */
struct conn *conn_create(struct conn_env *env, int fd, enum conn_kind kind, uint32_t slot,
                         uint32_t gen, uint64_t id);
/* Frees a connection (outstanding slots are abandoned first). */
void conn_destroy(struct conn *c);

/* Starts reading from a new connection. */
void conn_start(struct conn *c);
/* A receive completed with res (bytes, 0 for EOF, or -errno) and the
 * completion's flags (which receive buffer; whether the receive stays armed). */
void conn_on_recv(struct conn *c, int res, unsigned flags);
/* A send completed with res. */
void conn_on_send(struct conn *c, int res);
/* End of turn: hand `out` to the kernel if nothing is being sent. */
void conn_flush(struct conn *c);
/* Starts closing: no more input; freed when nothing is in flight. */
void conn_close(struct conn *c);
/* True when a closing connection may be freed. */
bool conn_is_done(const struct conn *c);
/* For the shard's idle scan (`timeout`): how long the connection has done
 * nothing: no bytes in or out since the last call, no reply waiting (on
 * other shards, the log, a cold read), no output in flight. 0 while busy,
 * which also moves last_ms (CLIENT LIST's idle) to now_ms. */
int64_t conn_idle_ms(struct conn *c, int64_t now_ms);
/* Gives back what an idle connection does not need: empty buffers, the
 * inline scratch, argument arrays grown past their first size. */
void conn_shrink_idle(struct conn *c);
/* Gives a receive buffer (from a completion's flags) back to the kernel. */
void conn_recv_buf_return(struct conn_env *env, unsigned bid);

/* Marks the connection as having replies to flush at the end of the turn
 * (env->dirty). */
static inline void conn_mark_dirty(struct conn *c)
{
    if (c->is_dirty)
        return;
    c->is_dirty = true;
    c->next_dirty = c->env->dirty;
    c->env->dirty = c;
}

/* Where the reply to the request being handled goes, keeping order.
 * Never NULL (out of memory: the reply is dropped and the connection closes
 * after what it has). */
struct buf *conn_reply_buf(struct conn *c);
/* A slot for a reply that comes later, after every reply before it.
 * NULL on out of memory. */
struct conn_slot *conn_slot_reserve(struct conn *c, uint64_t ticket);
/* s->body holds its reply now: moves the ready prefix into `out`. */
void conn_slot_ready(struct conn *c, struct conn_slot *s);
/* The input budget: the owner charges the work a request leaves in flight
 * (its sub-requests out on shards) and refunds it when the request ends.
 * Input pauses while the connection's work is at or above CONN_MAX_WORK
 * (as while too many replies wait), so one client cannot make its shard
 * queue unbounded work; the request that crosses the line is still served
 * whole. A request whose effects the client's next command must see (a
 * two-phase MSETNX) is charged CONN_MAX_WORK: nothing after it is read
 * until it ends. */
#define CONN_MAX_WORK 65536u
void conn_charge(struct conn *c, uint64_t work);
void conn_refund(struct conn *c, uint64_t work);
/* Called by on_resp / on_mc: the request being handed over is not taken
 * now; it stays unread, and input pauses, until conn_release_input(). */
void conn_hold_input(struct conn *c);
/* Input held by conn_hold_input() goes on (at the end of the loop turn, in
 * conn_flush(): the held request is handed over again). */
void conn_release_input(struct conn *c);

#endif
