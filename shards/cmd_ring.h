/* cmd_ring.h: the Dynamo-native commands, over versioned keys (dvv.h).
 *   RING.GET key [R r]            -> [context, [sibling values...]]
 *   RING.PUT key context value [W w] [EX s|PX ms] -> +OK
 *   RING.DEL key context [W w]    -> +OK (writes a tombstone)
 * The context is opaque raw bytes (dvv_context_encode), empty for a key
 * never written; a write supersedes the siblings its context covers, an
 * empty context adds a sibling. R and W go from 1 to the key's replicas
 * (N_eff, coord.h: 1 on a cluster of one); anything else gets an error
 * naming the cap. The coordinator (coord.c) reads them to wait for that
 * many replicas; the handlers run on the coordinator's own replica. A key written by plain commands reads as one sibling (given a dot of
 * its own, see cmd_ring.c); plain commands read a versioned key as
 * dvv_pick()'s value (store.h).
 * Threads: the shard thread that owns the key (the store's owner). */
#ifndef RINGKV_SHARDS_CMD_RING_H
#define RINGKV_SHARDS_CMD_RING_H

#include "cmd.h"

void cmd_ring_get(struct cmd_ctx *c);
void cmd_ring_put(struct cmd_ctx *c);
void cmd_ring_del(struct cmd_ctx *c);

#endif
