/* conn.h: a client connection on a shard.
 * A connection is accepted by one shard and stays there. Its bytes come in
 * through io_uring receives into `in`; every whole request in the buffer is
 * parsed (RESP or memcached text) and dispatched (cmd.h); replies go out in
 * request order through one send per loop turn.
 *
 * Reply order: a request answered on this shard writes straight into `out`
 * while nothing is waiting before it. A request that needs other shards (or
 * a local reply behind such a one) gets a struct conn_pending in a FIFO; as
 * sub-replies arrive the FIFO's ready prefix is combined into `out`. So a
 * pipeline that touches every shard is answered in order.
 *
 * Threads: the owning shard only.
 * Ownership: the shard owns its connections; a connection with requests
 *   still out on other shards is kept (closing) until they come back. */
#ifndef RINGKV_NET_CONN_H
#define RINGKV_NET_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "mc.h"
#include "resp.h"

struct shard;

enum conn_kind { CONN_RESP, CONN_MC };

/* CLIENT REPLY (Redis's flags): OFF drops replies until ON; SKIP drops the
 * reply of the request being served; SKIP_NEXT becomes SKIP for the next. */
#define CONN_REPLY_OFF 1u
#define CONN_REPLY_SKIP 2u
#define CONN_REPLY_SKIP_NEXT 4u

/* A reply not ready yet: nsub sub-replies to combine (cmd.c says how). */
struct conn_pending {
    struct conn_pending *next;
    uint32_t nsub;
    uint32_t ndone;
    uint32_t combine;   /* enum cmd_combine */
    int64_t aux;        /* combiner's datum (e.g. the shard of a SCAN) */
    uint32_t stats;     /* how the reply counts in INFO, and whether CLIENT
                           REPLY drops it (shards/cmd_stats.h); 0 = neither */
    struct buf *subs;   /* nsub replies; == &one when nsub is 1 */
    struct buf one;
};

struct conn {
    struct shard *shard;
    int fd;
    uint32_t slot;
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
    bool is_dirty;
    bool is_parked;          /* replies wait for durability (appendfsync always) */
    bool was_active;         /* bytes came in or went out since conn_idle_ms() */
    char *name;              /* CLIENT SETNAME, mi_malloc'd, or NULL */
    char addr[64];
    int64_t created_ms;
    int64_t last_ms;
    const char *last_cmd;    /* static command name */
    uint8_t reply_flags;     /* CONN_REPLY_* */
    size_t unparsed;         /* while a request is served: received bytes from
                                its start on (CLIENT LIST qbuf); else 0 */
    size_t reply_peak;       /* most reply bytes gathered at once (CLIENT LIST rbp) */

    struct buf in;
    union {                  /* progress through the partial request at in[0] */
        struct resp_state resp;
        struct mc_state mc;
    } parse;
    uint64_t swallow;        /* memcached: bytes of a refused value still to drop */
    struct buf out;          /* replies being gathered */
    struct buf sending;      /* replies handed to the kernel */
    size_t sent;

    struct conn_pending *head, *tail;
    uint32_t npending;
    uint32_t inflight;       /* messages out on other shards */

    struct resp_arg *argv;
    uint32_t argv_cap;
    char *scratch;           /* inline-command scratch, allocated on first use */
    struct mc_key *mc_keys;
    uint32_t mc_keys_cap;
    struct conn *next_dirty;
    struct conn *next_parked;
    uint64_t durable_wait;   /* parked until the log is durable up to here */
};

/* Creates a connection for an accepted socket. NULL on out of memory. */
struct conn *conn_create(struct shard *sh, int fd, enum conn_kind kind, uint32_t slot,
                         uint32_t gen);
/* Frees a connection with nothing in flight. */
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
 * nothing: no bytes in or out since the last call, no request waiting (on
 * other shards, the log, a cold read), no output in flight. 0 while busy,
 * which also moves last_ms (CLIENT LIST's idle) to now_ms. */
int64_t conn_idle_ms(struct conn *c, int64_t now_ms);
/* Gives back what an idle connection does not need: empty buffers, the
 * inline scratch, argument arrays grown past their first size. */
void conn_shrink_idle(struct conn *c);

/* Where the reply to the request being dispatched goes, keeping order. */
struct buf *conn_reply_buf(struct conn *c);
/* Queues a reply made of nsub sub-replies, combined by `combine` when all
 * have arrived. NULL on out of memory. */
struct conn_pending *conn_pending_add(struct conn *c, uint32_t nsub, uint32_t combine);
/* A sub-reply of p is ready (p->ndone was incremented): combine and queue
 * every reply that is now ready at the head. */
void conn_pending_advance(struct conn *c);

#endif
