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

#endif
