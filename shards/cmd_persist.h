/* cmd_persist.h: SAVE, BGSAVE and BGREWRITEAOF on the segment log.
 * ringkv keeps no snapshot file: every write is a record in its shard's log
 * (persist.h), synced every second by default (appendfsync everysec). These
 * commands give Redis's meaning to that log, for this node only (as each
 * Redis Cluster node saves its own data):
 *   SAVE          every shard syncs now; +OK once every write acknowledged
 *                 before it is durable (Redis: the snapshot is on disk);
 *   BGSAVE [SCHEDULE]  the same syncs asked, answered at once with Redis's
 *                 "Background saving started";
 *   BGREWRITEAOF  compaction rewrites every closed segment once, so that
 *                 the log holds little more than the live keys, as an AOF
 *                 rewrite leaves it; answered at once.
 * With storage = memory there is nothing to write: -ERR says so. While a
 * shard's log is failing (MISCONF) SAVE and BGSAVE answer -ERR at once.
 * LASTSAVE (cmd_server.h) reads the syncs' time.
 *
 * Threads: the connection handlers on the client's shard; each broadcasts
 *   a per-shard handler to every shard of the node (cmd_broadcast). */
#ifndef RINGKV_SHARDS_CMD_PERSIST_H
#define RINGKV_SHARDS_CMD_PERSIST_H

#include "cmd.h"

void cmd_save(struct cmd_ctx *c);
void cmd_bgsave(struct cmd_ctx *c);
void cmd_bgrewriteaof(struct cmd_ctx *c);

#endif
