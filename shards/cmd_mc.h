/* cmd_mc.h: memcached text-protocol commands over the shard's store.
 * get gets gat gats (one key per call: ctx->mc->keys[0]; a VALUE block or
 * nothing, the dispatcher writes the final END), set add replace append
 * prepend cas, delete, touch, incr decr, and flush_all's per-shard half.
 * Replies are memcached 1.6's lines (STORED, NOT_STORED, EXISTS, NOT_FOUND,
 * DELETED, TOUCHED, the number, CLIENT_ERROR/SERVER_ERROR); with noreply
 * nothing at all is written, errors included, as memcached does.
 * Keys and values are shared with the Redis commands: a key written by Redis
 * has flags 0; memcached's client flags live in the entry's mc_flags.
 * exptime: 0 none; negative: expired at once; up to 30 days: seconds from
 * now; larger: absolute unix seconds.
 * Threads: the shard thread that owns the key (ctx->hash is its keyhash). */
#ifndef RINGKV_SHARDS_CMD_MC_H
#define RINGKV_SHARDS_CMD_MC_H

#include <stdint.h>

#include "cmd.h"

#define MC_RELATIVE_EXPTIME_MAX 2592000 /* 30 days: larger exptimes are unix times */

void cmd_mc_get(struct cmd_ctx *c);
void cmd_mc_gets(struct cmd_ctx *c);
void cmd_mc_gat(struct cmd_ctx *c);
void cmd_mc_gats(struct cmd_ctx *c);
void cmd_mc_set(struct cmd_ctx *c);
void cmd_mc_add(struct cmd_ctx *c);
void cmd_mc_replace(struct cmd_ctx *c);
void cmd_mc_append(struct cmd_ctx *c);
void cmd_mc_prepend(struct cmd_ctx *c);
void cmd_mc_cas(struct cmd_ctx *c);
void cmd_mc_delete(struct cmd_ctx *c);
void cmd_mc_touch(struct cmd_ctx *c);
void cmd_mc_incr(struct cmd_ctx *c);
void cmd_mc_decr(struct cmd_ctx *c);
/* Removes every key of this shard; writes nothing (the dispatcher says OK). */
void cmd_mc_flush_all_shard(struct cmd_ctx *c);

/* Absolute unix ms for a memcached exptime at now_ms; 0 for none. An
 * exptime meaning "already expired" gives a time in the past (1). */
int64_t cmd_mc_expire_ms(int64_t exptime, int64_t now_ms);

#endif
