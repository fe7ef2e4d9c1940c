/* cmd.h: commands, as data, and the context their handlers run in.
 * Every Redis command is one row of one table (name, arity, flags, how its
 * keys route, handler); dispatch, arity errors and COMMAND output all come
 * from it. A handler runs on the shard that owns its key, writes exactly one
 * reply (one RESP element, or for memcached the reply lines) into ctx->out,
 * and never blocks.
 *
 * Multi-key and all-shard commands are split by the dispatcher into one
 * sub-request per key (or per shard), each run by a single-key handler on
 * the owning shard; a combiner joins the sub-replies in request order.
 * So a handler sees: for single-key commands the whole request; for
 * split commands one key (MGET -> "GET k", MSET -> "SET k v", DEL -> "DEL k").
 * A request that is not answered at once is a struct req (req.h) owning a
 * reply slot of its connection; handlers report what they answered through
 * the cmd_reply_* helpers below (status, number, where the payload starts),
 * so combiners read fields, never protocol text, and every reply's status
 * is known where the handler returns (cmd_run()).
 *
 * Threads: handlers run on the owning shard thread only. */
#ifndef RINGKV_SHARDS_CMD_H
#define RINGKV_SHARDS_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "mc.h"
#include "req.h"
#include "resp.h"

struct store;
struct node;
struct conn;

struct cmd_ctx {
    struct store *store;      /* the executing shard's keyspace */
    const struct node *node;  /* process-wide; its settings change by CONFIG SET only */
    struct buf *out;          /* the reply goes here */
    struct conn *conn;        /* the client's connection when it lives on this
                                 shard (connection commands), else NULL */
    uint32_t shard_id;        /* the executing shard */
    int proto;                /* 2 or 3 */
    uint32_t argc;
    struct resp_arg *argv;    /* argv[0] is the command name as sent */
    uint64_t hash;            /* keyhash of argv[1] when the command has a key; a
                                 handler that read several keys sets it to 0: its
                                 reply then waits for every record of the shard
                                 not durable yet (appendfsync always) */
    const struct mc_request *mc; /* memcached requests: the decoded request,
                                    keys[0] the one key this handler serves */
    struct req_result *res;   /* what the reply is (status, number, payload); its
                                 body is not used: the bytes go to `out` */
};

/* Reply helpers: write the RESP reply into c->out and say what it is. */
static inline void cmd_reply_error(struct cmd_ctx *c, const char *err)
{
    c->res->status = REQ_ERR;
    resp_write_error(c->out, err);
}
static inline void cmd_reply_int(struct cmd_ctx *c, int64_t n)
{
    c->res->status = REQ_INT;
    c->res->num = n;
    resp_write_int(c->out, n);
}
static inline void cmd_reply_ok(struct cmd_ctx *c)
{
    c->res->status = REQ_OK;
    resp_write_ok(c->out);
}
static inline void cmd_reply_null(struct cmd_ctx *c)
{
    c->res->status = REQ_NULL;
    resp_write_null(c->out, c->proto);
}
static inline void cmd_reply_bulk(struct cmd_ctx *c, const void *p, size_t n)
{
    size_t at = c->out->len;
    resp_write_bulk(c->out, p, n);
    c->res->status = REQ_BULK;
    c->res->skip = (uint32_t)(c->out->len - at - n - 2);
}
/* The header of an array of n elements; the elements follow. */
static inline void cmd_reply_array_len(struct cmd_ctx *c, size_t n)
{
    size_t at = c->out->len;
    resp_write_array_len(c->out, n);
    c->res->status = REQ_ARRAY;
    c->res->num = (int64_t)n;
    c->res->skip = (uint32_t)(c->out->len - at);
}

typedef void cmd_handler(struct cmd_ctx *c);

struct shard;

/* How the sub-replies of a split command become one reply. */
enum cmd_combine {
    CMD_COMBINE_ONE,       /* the single sub-reply as it is */
    CMD_COMBINE_ARRAY,     /* *n then every sub-reply (MGET) */
    CMD_COMBINE_SUM,       /* :sum of integer sub-replies (DEL, EXISTS, DBSIZE) */
    CMD_COMBINE_OK,        /* +OK unless a sub-reply is an error (MSET, FLUSHALL) */
    CMD_COMBINE_CONCAT,    /* one array of the elements of array sub-replies (KEYS) */
    CMD_COMBINE_RANDOM,    /* one non-null sub-reply at random (RANDOMKEY) */
    CMD_COMBINE_SCAN,      /* a shard's SCAN reply with the cursor made node-wide */
    CMD_COMBINE_MSETNX,    /* first phase of MSETNX: if no key exists, set them */
    CMD_COMBINE_MSETNX_DONE, /* second phase of MSETNX: :1 unless a SET failed */
    CMD_COMBINE_BULK,      /* one string of the bulk sub-replies' lines (CLIENT LIST):
                              verbatim under RESP3; with client ids given to
                              cmd_broadcast_with(), their lines in that order */
    CMD_COMBINE_KILLED,    /* CLIENT KILL ip:port: +OK when the sum of the integer
                              sub-replies is not 0, else Redis's "No such client" */
    CMD_COMBINE_MC_END,    /* memcached get: every sub-reply, then END */
    CMD_COMBINE_MC_OK,     /* memcached flush_all: OK (unless noreply) */
    CMD_COMBINE_MC_RESET,  /* memcached stats reset: RESET (noreply or not) */
    CMD_COMBINE_WATCH,     /* WATCH: the versions read are kept on the connection,
                              then +OK (cmd_multi.h) */
    CMD_COMBINE_SAME,      /* the first error, else the first sub-reply: every shard
                              answers alike (BGSAVE, BGREWRITEAOF) */
};

/* A sub-request crossing from the shard of a connection (the origin) to
 * the shard that owns a key (the target), and back with its result; also
 * the unit of work a target parks (tier.h) when it has to wait.
 * Ownership: allocated and freed by the origin. The target reads the request
 * fields and writes `res` (memory from the target's heap, released by the
 * origin with mi_free: mimalloc frees across threads by design), then sends
 * the message back. It names the origin's request by id only: when that
 * request has ended meanwhile (deadline, client gone), the origin drops the
 * message. */
struct cmd_msg {
    struct cmd_msg *next;  /* the sender's backlog (shard.h) */
    cmd_handler *handler;
    uint64_t req;          /* the origin's request (req.h id) */
    uint32_t sub;          /* which of its sub-results this is */
    uint32_t origin;       /* origin shard id */
    uint32_t target;
    uint32_t flags;        /* the handler's CMD_READS_VALUE / CMD_BARRIER, as
                              they apply to this request */
    int proto;
    uint64_t hash;
    uint32_t argc;
    int32_t stat_slot;     /* the command whose time its run adds to (cmd_stats.h) */
    uint32_t slot1;        /* CMD_COORD: the key's slot + 1 as coord_route() found it
                              (0: not known), so the coordinator computes it no more */
    uint8_t r, w;          /* CMD_COORD: R and W asked (net/conn.h consistency_r/_w;
                              0: the node's settings) */
    int64_t deadline_ms;   /* its request's deadline (req_now_ms clock), so a
                              coordinator (CMD_COORD, or cmd_msg_adopt) answers before
                              it; 0: request-timeout */
    struct resp_arg *argv; /* into payload */
    bool is_mc;
    struct mc_request mc;  /* memcached: keys -> &mc_key, data into payload */
    struct mc_key mc_key;
    struct req_result res; /* written by the target */
    char payload[];
};

/* Command flags: columns of the command tables. COMMAND shows the first
 * five; dispatch uses NOAUTH; the rest say how a request meets values that
 * are on disk only (tier.h). */
/* Keys of more than one hash slot in a command that must stay on one
 * (RENAME, COPY, a transaction's), as Redis Cluster says it. */
#define CMD_ERR_CROSSSLOT "CROSSSLOT Keys in request don't hash to the same slot"

#define CMD_WRITE (1u << 0)
#define CMD_READONLY (1u << 1)
#define CMD_DENYOOM (1u << 2)
#define CMD_FAST (1u << 3)
#define CMD_NOAUTH (1u << 4)
#define CMD_READS_VALUE (1u << 5) /* needs the value of an existing key (a cold
                                     one is read back first) */
#define CMD_BARRIER (1u << 6)     /* shard-wide: waits for every read in flight,
                                     and nothing overtakes it */
#define CMD_NOKEY (1u << 7)       /* takes no key */
#define CMD_GET_OPTION (1u << 8)  /* CMD_READS_VALUE only with a GET option (SET) */
#define CMD_NODATA (1u << 9)      /* connection or server state only: its reply,
                                     also from every shard, waits for no log
                                     record (appendfsync always) */
/* Per request, never in the table (coord.h): */
#define CMD_COORD (1u << 10)      /* a message to coordinate on its key's shard */
#define CMD_FORWARDED (1u << 11)  /* came from a peer: coordinate here, never forward */
#define CMD_RMW (1u << 12)        /* a write that reads the value first (INCR, APPEND,
                                     SET ... GET): the first live replica coordinates */
#define CMD_LOADED (1u << 13)     /* the coordinator had its cold value read back once */
#define CMD_FIRST_LIVE (1u << 14) /* a read forwarded to the first live replica, as a
                                     read-modify-write is: its reply holds that replica's
                                     own state (memcached's gets: the cas unique that a
                                     later cas, a read-modify-write, is checked against) */

enum cmd_route {
    CMD_ROUTE_CONN,   /* runs on the connection's shard, with the connection */
    CMD_ROUTE_KEY,    /* one key at argv[1]: runs on its owner */
    CMD_ROUTE_EACH,   /* one sub-request per key (split_step arguments each) */
    CMD_ROUTE_ALL,    /* one sub-request per shard */
    CMD_ROUTE_SCAN,   /* the shard named by the cursor */
    CMD_ROUTE_MSETNX, /* see cmd.c */
};

/* One row of the command table. */
struct cmd_def {
    const char *name; /* lower case */
    int arity;        /* Redis's: n exactly, -n at least n */
    uint32_t flags;
    int first_key, last_key, key_step; /* as COMMAND reports them */
    enum cmd_route route;
    uint32_t split_step;      /* CMD_ROUTE_EACH / MSETNX: arguments per sub-request */
    cmd_handler *handler;     /* for split routes: the per-key or per-shard handler */
    enum cmd_combine combine; /* for split routes */
    const char *group;
    const char *summary;
};

/* A memcached command's columns (cmd_mc_def()). */
struct cmd_mc_def {
    cmd_handler *handler; /* per key, or per shard for CMD_BARRIER ones */
    uint32_t flags;
};
/* The row of memcached command `cmd` (enum mc_cmd). */
const struct cmd_mc_def *cmd_mc_def(int cmd);
/* The row's flags for this request, plus CMD_RMW for a read-modify-write
 * one (incr, append, add, cas...). */
uint32_t cmd_mc_flags(const struct mc_request *req);

/* The whole table (COMMAND). */
const struct cmd_def *cmd_table(size_t *count);
/* The row for a command name in any case, or NULL. */
const struct cmd_def *cmd_lookup(const char *name, size_t len);

/* From a connection command: runs h on every shard with ctx's arguments
 * (h is shard-wide: CMD_BARRIER) and queues the combined reply after
 * whatever the connection is waiting for. */
void cmd_broadcast(struct cmd_ctx *ctx, cmd_handler *h, enum cmd_combine combine);
/* The same, keeping n bytes of `extra` for the combiner (CMD_COMBINE_BULK:
 * an array of int64_t client ids). */
void cmd_broadcast_with(struct cmd_ctx *ctx, cmd_handler *h, enum cmd_combine combine,
                        const void *extra, size_t n);

/* From a connection command: runs h once on shard `target` with argv
 * (hash: argv[1]'s keyhash, or 0 for none; flags: a row's columns as they
 * apply) and queues the reply, combined by `combine`, after whatever the
 * connection is waiting for. The connection reads no further request until
 * that reply is in, so its next command sees what h did (EXEC, WATCH). */
void cmd_send(struct cmd_ctx *ctx, uint32_t target, cmd_handler *h, uint32_t flags,
              struct resp_arg *argv, uint32_t argc, uint64_t hash, enum cmd_combine combine);

/* Builds the command table. Main thread, once, before shards start. */
void cmd_init(void);

/* Runs one parsed RESP request from connection c (its env's on_resp). */
void cmd_dispatch_resp(struct conn *c, struct resp_arg *argv, uint32_t argc);
/* Routes the next rows of split commands (MSET, MGET, DEL..., MSETNX's
 * phases) too large for one loop turn (cmd.c's cmd_route_each,
 * cmd_route_msetnx), within one turn's budget, round
 * robin: every loop turn while sh->rest is not NULL. cmd_rest_conn_gone():
 * connection c is about to be freed: the rest of its writes is routed now,
 * of its reads dropped. cmd_rest_fini() frees what is left when the shard
 * stops. */
void cmd_route_rest(struct shard *sh);
void cmd_rest_conn_gone(struct shard *sh, struct conn *c);
void cmd_rest_fini(struct shard *sh);
/* conn_env.prefetch_keys: asks for the table slots, then the entries, of
 * the keys of pipelined requests this shard will look up itself (owner is
 * the shard), so their cache misses overlap. */
void cmd_prefetch_keys(void *owner, const struct resp_arg *keys, uint32_t n);
/* Runs one parsed memcached request (its env's on_mc). */
void cmd_dispatch_mc(struct conn *c, struct mc_request *req);

/* The row's flags as they apply to this request (SET's GET option), plus
 * CMD_RMW for a read-modify-write command. */
uint32_t cmd_flags_for(const struct cmd_def *d, const struct resp_arg *argv, uint32_t argc);
/* Whether this node has left its cluster of several and serves no key
 * (node.h left_cluster): what the cluster commands answer (CLUSTER SLOTS
 * empty...). */
bool cmd_node_left(const struct node *n);
/* The same as the shard's view of the ring says it (shard.h left_cluster,
 * taken with the ring): key commands get CMD_ERR_LEFT. */
bool cmd_serves_no_key(const struct shard *sh);
#define CMD_ERR_LEFT                                                                          \
    "CLUSTERDOWN this node has left its cluster and serves no key (add it again with POST " \
    "/v1/nodes at a member, or restart it with seeds, to join)"

/* The shape checks every request passes, a client's or a peer's FORWARD:
 * arity (split routes: whole groups) and key sizes (max-key-size). False
 * with the RESP error line (code first, no '-' or CRLF) in err[0..len). */
bool cmd_args_ok(const struct node *n, const struct cmd_def *d, const struct resp_arg *argv,
                 uint32_t argc, char *err, size_t len);

/* A message for sub-result `sub` of request req_id of shard sh, to run h
 * on shard `target` (arguments copied). r and w are 0. NULL on out of
 * memory. */
struct cmd_msg *cmd_msg_for(struct shard *sh, uint64_t req_id, uint32_t sub, uint32_t target,
                            cmd_handler *h, uint32_t flags, int proto, struct resp_arg *argv,
                            uint32_t argc, uint64_t hash);
/* The same for the keyed memcached request mc (key and data copied; its
 * row's handler and cmd_mc_flags() plus `flags`). */
struct cmd_msg *cmd_msg_for_mc(struct shard *sh, uint64_t req_id, uint32_t sub, uint32_t target,
                               const struct mc_request *mc, uint32_t flags, uint64_t hash);
/* SCAN's node-wide cursor a (decimal text): *cursor, the shard it names
 * and that shard's table position; a cursor naming no shard starts over,
 * and a position 0 moves on to the first shard holding keys. False when a
 * is not a cursor. Any shard thread. */
bool cmd_scan_cursor(const struct node *n, const struct resp_arg *a, uint64_t *cursor,
                     uint32_t *shard, uint64_t *pos);
/* The reply of a complete keyspace request r of sh (r->kind: SUM, CONCAT,
 * RANDOM or SCAN, r->aux as SCAN's routing set it) in protocol `proto`,
 * appended to out: for a peer's RING.LOCAL (keyspace.h) as for a client. */
void cmd_combine_keyspace(struct shard *sh, const struct req *r, int proto, struct buf *out);

/* The one key a message serves ({"", 0} for a keyless one). */
static inline struct resp_arg cmd_msg_key(const struct cmd_msg *m)
{
    if (m->is_mc)
        return m->mc.nkeys ? (struct resp_arg){m->mc.keys[0].ptr, m->mc.keys[0].len}
                           : (struct resp_arg){"", 0};
    return m->argc > 1 ? m->argv[1] : (struct resp_arg){"", 0};
}

/* Target side: m's result is the error `err` (RESP text with its prefix,
 * "UNAVAILABLE ..."; memcached: SERVER_ERROR and the same text). */
void cmd_msg_error(struct cmd_msg *m, const char *err);

/* Target side: run a message's handler here and send it back (or, when it
 * needs a value that is on disk only, once that is read: tier.h). */
void cmd_msg_execute(struct shard *sh, struct cmd_msg *m);
/* Target side: run it now (its key pinned by the caller), without replying. */
void cmd_msg_run(struct shard *sh, struct cmd_msg *m);
/* Target side: m's result is in: send it back to its origin; with
 * appendfsync always, once the records it may depend on are durable (the
 * message parks as a request of this shard until then). */
void cmd_msg_reply(struct shard *sh, struct cmd_msg *m);
/* Target side: m's result is an error `why` (e.g. a read that failed), in
 * its protocol's form. */
void cmd_msg_fail(struct cmd_msg *m, const char *why);

/* Whether r is a client connection's request of one sub-result whose reply
 * slot is the last its connection holds: no later command of that client
 * has begun (a forwarded write refused unrun may go again only then:
 * coord.c). False for any other request (a peer's forward, a message). */
bool cmd_req_is_conn_last(const struct req *r);
/* Target side: m waited past its deadline: its result is the timeout error. */
void cmd_msg_timeout(struct cmd_msg *m, int64_t timeout_ms);
/* Origin side: a message came back with its result (or, from this shard,
 * is done): it completes its request's sub-result, or is dropped when the
 * request has ended. Frees m. */
void cmd_msg_complete(struct shard *sh, struct cmd_msg *m);
/* Frees a message that will never be answered (stopping). */
void cmd_msg_free(struct cmd_msg *m);
/* Values beyond RAM (tier.h): starts reading key's value back from disk
 * for a handler that met it on disk only and answers -TRYAGAIN (a
 * key other than the one read back before it ran), so that the client's
 * retry finds it in memory. Nothing when the shard has no tier or the read
 * cannot start. */
void cmd_read_back(const struct cmd_ctx *c, const struct resp_arg *key, uint64_t hash);

#endif
