/* cmd_keys.h: Redis keyspace commands, and the per-shard halves of the
 * commands that span every shard.
 * DEL (also UNLINK) and EXISTS for one key (the dispatcher splits and sums),
 * TYPE, EXPIRE PEXPIRE EXPIREAT PEXPIREAT (with NX XX GT LT), TTL PTTL
 * PERSIST, RENAME RENAMENX COPY; then, run once on every shard and combined by the dispatcher:
 * DBSIZE, FLUSHALL/FLUSHDB, KEYS, RANDOMKEY, and SCAN (on the shard its
 * cursor names). Semantics and error texts are Redis 7.0's; an expired key
 * is never returned.
 * Each handler acts on ctx->store (for key commands, the key argv[1] with
 * ctx->hash its keyhash) and writes exactly one RESP reply to ctx->out.
 * Threads: the shard thread that owns the key, or each shard in turn. */
#ifndef RINGKV_SHARDS_CMD_KEYS_H
#define RINGKV_SHARDS_CMD_KEYS_H

#include "cmd.h"

void cmd_del(struct cmd_ctx *c);    /* DEL k: :1 or :0 */
void cmd_exists(struct cmd_ctx *c); /* EXISTS k: :1 or :0 */
void cmd_type(struct cmd_ctx *c);
/* RING.KEYINFO key sub (OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT, MEMORY
 * USAGE, rewritten by cmd_server_keyed_subcommand): as Redis 7 answers
 * them for a string; nil for a missing key. The key is looked at, not
 * used (its idle time stays). */
void cmd_keyinfo(struct cmd_ctx *c);
void cmd_expire(struct cmd_ctx *c);
void cmd_pexpire(struct cmd_ctx *c);
void cmd_expireat(struct cmd_ctx *c);
void cmd_pexpireat(struct cmd_ctx *c);
void cmd_ttl(struct cmd_ctx *c);
void cmd_pttl(struct cmd_ctx *c);
void cmd_expiretime(struct cmd_ctx *c);
void cmd_pexpiretime(struct cmd_ctx *c);
void cmd_persist(struct cmd_ctx *c);
/* RENAME src dst (+OK; -ERR no such key), RENAMENX (:1, or :0 when dst
 * exists), COPY src dst [DB 0] [REPLACE] (:1 or :0): both keys of one slot
 * (the dispatcher's -CROSSSLOT otherwise); the value, its expiry and its
 * memcached flags go along. */
void cmd_rename(struct cmd_ctx *c);
void cmd_renamenx(struct cmd_ctx *c);
void cmd_copy(struct cmd_ctx *c);

/* ":n", the keys of this shard. */
void cmd_dbsize_shard(struct cmd_ctx *c);
/* "+OK" after removing every key of this shard. */
void cmd_flushall_shard(struct cmd_ctx *c);
/* argv "KEYS pattern": an array of this shard's live keys that match. */
void cmd_keys_shard(struct cmd_ctx *c);
/* argv "CLUSTER COUNTKEYSINSLOT slot" (":n") or "CLUSTER GETKEYSINSLOT slot
 * count" (an array of at most count names), valid (the sender checked): the
 * live keys of that slot this node holds, run on the shard that owns the
 * slot's partition (partition-function slot). */
void cmd_slot_keys_shard(struct cmd_ctx *c);
/* A random live key of this shard as a bulk string, or null. */
void cmd_randomkey_shard(struct cmd_ctx *c);
/* argv "SCAN <pos> [MATCH p] [COUNT n] [TYPE t]", where <pos> is this
 * shard's table cursor in unsigned decimal (a table_scan position). Replies
 * [bulk next position (0 when this shard is done), array of keys]. */
void cmd_scan_shard(struct cmd_ctx *c);

#endif
