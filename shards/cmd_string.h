/* cmd_string.h: the Redis string commands, and argument helpers shared by
 * the keyspace command modules.
 * GET SET SETEX PSETEX SETNX GETSET GETDEL GETEX APPEND STRLEN GETRANGE
 * (SUBSTR) SETRANGE INCR DECR INCRBY DECRBY INCRBYFLOAT, with Redis 7.0's semantics
 * and error texts. MGET and MSET reach GET and SET one key at a time.
 * Each handler acts on ctx->store for the key argv[1] (ctx->hash is its
 * keyhash), after the dispatcher checked arity and authentication, and writes
 * exactly one RESP reply, in ctx->proto, to ctx->out.
 * Threads: the shard thread that owns the key (the store's owner). */
#ifndef RINGKV_SHARDS_CMD_STRING_H
#define RINGKV_SHARDS_CMD_STRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmd.h"

void cmd_get(struct cmd_ctx *c);
void cmd_set(struct cmd_ctx *c);
void cmd_setex(struct cmd_ctx *c);
void cmd_psetex(struct cmd_ctx *c);
void cmd_setnx(struct cmd_ctx *c);
void cmd_getset(struct cmd_ctx *c);
void cmd_getdel(struct cmd_ctx *c);
void cmd_getex(struct cmd_ctx *c);
void cmd_append(struct cmd_ctx *c);
void cmd_strlen(struct cmd_ctx *c);
void cmd_getrange(struct cmd_ctx *c);
void cmd_setrange(struct cmd_ctx *c);
void cmd_incr(struct cmd_ctx *c);
void cmd_decr(struct cmd_ctx *c);
void cmd_incrby(struct cmd_ctx *c);
void cmd_decrby(struct cmd_ctx *c);
void cmd_incrbyfloat(struct cmd_ctx *c);

/* Helpers for handlers. */

#define CMD_ERR_SYNTAX "ERR syntax error"
#define CMD_ERR_NOT_INT "ERR value is not an integer or out of range"
#define CMD_ERR_OOM "OOM command not allowed when used memory > 'maxmemory'."

/* True when the argument equals word, ignoring ASCII case. */
bool cmd_arg_is(const struct resp_arg *a, const char *word);

/* GETRANGE's range, also BITCOUNT's and BITPOS's: start and end over len
 * units, negatives counting from the end, clamped into [0, len). False
 * when that leaves nothing (len 0 included), else [*start, *end] is it. */
bool cmd_clamp_range(int64_t *start, int64_t *end, int64_t len);
/* Replies to a failed store call: -OOM for -ENOMEM, the size errors for
 * -E2BIG and -ENAMETOOLONG. */
void cmd_reply_store_error(struct cmd_ctx *c, int rc);
/* Evicts, as a command flagged "denyoom" must before it runs, for a write of
 * about `need` bytes. False (after replying -OOM) when it cannot. */
bool cmd_reserve(struct cmd_ctx *c, size_t need);
/* A new entry for argv[1] of `total` bytes (at least old's length): old's
 * bytes (none when old is NULL), zeros after them, old's expiry and
 * memcached flags; store_commit() publishes it. NULL after replying -OOM. */
struct table_entry *cmd_entry_grown(struct cmd_ctx *c, const struct table_entry *old,
                                    size_t total);
/* argv[1]'s entry (NULL: none) into *out, for a write that leaves its value
 * at least `need` bytes long: when that grows it, room for the whole value
 * is made first (cmd_reserve) and the key looked up again. False after
 * replying -OOM. */
bool cmd_lookup_to_grow(struct cmd_ctx *c, size_t need, struct table_entry **out);

#endif
