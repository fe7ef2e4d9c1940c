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
 *
 * Threads: handlers run on the owning shard thread only. */
#ifndef RINGKV_SHARDS_CMD_H
#define RINGKV_SHARDS_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "mc.h"
#include "resp.h"

struct store;
struct node;
struct conn;

struct cmd_ctx {
    struct store *store;      /* the executing shard's keyspace */
    const struct node *node;  /* process-wide, immutable after start-up */
    struct buf *out;          /* the reply goes here */
    struct conn *conn;        /* the client's connection when it lives on this
                                 shard (connection commands), else NULL */
    uint32_t shard_id;        /* the executing shard */
    int proto;                /* 2 or 3 */
    uint32_t argc;
    struct resp_arg *argv;    /* argv[0] is the command name as sent */
    uint64_t hash;            /* keyhash of argv[1] when the command has a key */
    const struct mc_request *mc; /* memcached requests: the decoded request,
                                    keys[0] the one key this handler serves */
};

typedef void cmd_handler(struct cmd_ctx *c);

struct shard;
struct conn_pending;

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
};

/* A request crossing from the shard of a connection (the origin) to the
 * shard that owns a key (the target), and back with the reply.
 * Ownership: allocated and freed by the origin. The target reads the request
 * fields and writes `reply` (memory from the target's heap, released by the
 * origin with mi_free: mimalloc frees across threads by design), then sends
 * the message back. The target never touches `conn` or `pending`. */
struct cmd_msg {
    cmd_handler *handler;
    struct conn *conn;
    struct conn_pending *pending;
    uint32_t sub;          /* which sub-reply of pending this is */
    uint32_t origin;       /* origin shard id */
    uint32_t target;
    int proto;
    uint64_t hash;
    uint32_t argc;
    int32_t stat_slot;     /* the command whose time its run adds to (cmd_stats.h) */
    struct resp_arg *argv; /* into payload */
    bool is_mc;
    bool keyless;          /* a shard-wide request (FLUSHALL, DBSIZE, SCAN...) */
    struct mc_request mc;  /* memcached: keys -> &mc_key, data into payload */
    struct mc_key mc_key;
    struct buf reply;      /* written by the target */
    uint64_t durable_wait; /* appendfsync always: the target's record sequence
                              that must be durable before the reply leaves */
    char payload[];
};

/* Command flags (COMMAND shows them; dispatch uses NOAUTH). */
#define CMD_WRITE (1u << 0)
#define CMD_READONLY (1u << 1)
#define CMD_DENYOOM (1u << 2)
#define CMD_FAST (1u << 3)
#define CMD_NOAUTH (1u << 4)

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

/* The whole table (COMMAND). */
const struct cmd_def *cmd_table(size_t *count);
/* The row for a command name in any case, or NULL. */
const struct cmd_def *cmd_lookup(const char *name, size_t len);

/* From a connection command: runs h on every shard with ctx's arguments and
 * queues the combined reply after whatever the connection is waiting for. */
void cmd_broadcast(struct cmd_ctx *ctx, cmd_handler *h, enum cmd_combine combine);
/* The same, keeping n bytes of `extra` for the combiner (CMD_COMBINE_BULK:
 * an array of int64_t client ids). */
void cmd_broadcast_with(struct cmd_ctx *ctx, cmd_handler *h, enum cmd_combine combine,
                        const void *extra, size_t n);

/* Builds the command table. Main thread, once, before shards start. */
void cmd_init(void);

/* Runs one parsed RESP request from connection c on shard sh. */
void cmd_dispatch_resp(struct shard *sh, struct conn *c, struct resp_arg *argv, uint32_t argc);
/* Runs one parsed memcached request. */
void cmd_dispatch_mc(struct shard *sh, struct conn *c, struct mc_request *req);

/* Target side: run a message's handler here and send it back (or, when it
 * needs a value that is on disk only, once that is read: tier.h). */
void cmd_msg_execute(struct shard *sh, struct cmd_msg *m);
/* Target side: run it now and send it back. */
void cmd_msg_run(struct shard *sh, struct cmd_msg *m);
/* Origin side: a message came back with its reply. */
void cmd_msg_complete(struct shard *sh, struct cmd_msg *m);

/* Writes the combined reply of a complete pending item into out. */
void cmd_combine(struct conn *c, struct conn_pending *p, struct buf *out);

#endif
