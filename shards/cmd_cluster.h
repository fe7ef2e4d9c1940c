/* cmd_cluster.h: what a node tells Redis Cluster clients, and CONSISTENCY.
 * CLUSTER's subcommands (SLOTS, SHARDS, NODES, INFO, KEYSLOT, MYID,
 * COUNTKEYSINSLOT, GETKEYSINSLOT; the
 * CLUSTER container itself, its HELP and its dispatch live in cmd_server.c
 * with the other containers), READONLY, READWRITE, ASKING, INFO's cluster
 * section, and the per-connection quorums of CONSISTENCY.
 * Topology answers describe the ring as a Redis Cluster of Q partitions:
 * each partition's slots list its preference list, the first node failure
 * detection does not report down as "master", the others as replicas
 * (cmd_cluster.c says how ranges merge and how roles are named).
 * Threads: run on the connection's shard with ctx->conn set; they read the
 *   admin thread's snapshot (snapshot.h) as reader ctx->shard_id, inside
 *   one short read section, and change only the connection;
 *   COUNTKEYSINSLOT and GETKEYSINSLOT read no snapshot: they send the
 *   walk to the shard that owns the slot's partition (cmd_send) and the
 *   connection waits for its answer.
 * Errors: replies in RESP: a snapshot not published yet, out of memory
 *   (-OOM), a bad CONSISTENCY argument. */
#ifndef RINGKV_SHARDS_CMD_CLUSTER_H
#define RINGKV_SHARDS_CMD_CLUSTER_H

#include "buf.h"
#include "cmd.h"

/* CLUSTER subcommands (argv[1] says which; cmd_server.c checked arity). */
void cmd_cluster_slots(struct cmd_ctx *c);
void cmd_cluster_shards(struct cmd_ctx *c);
void cmd_cluster_nodes(struct cmd_ctx *c);
void cmd_cluster_info(struct cmd_ctx *c);
void cmd_cluster_keyslot(struct cmd_ctx *c);
/* COUNTKEYSINSLOT slot, GETKEYSINSLOT slot count: the keys of a slot this
 * node holds (a replica's copy), from the shard that owns its partition. */
void cmd_cluster_countkeysinslot(struct cmd_ctx *c);
void cmd_cluster_getkeysinslot(struct cmd_ctx *c);
void cmd_cluster_myid(struct cmd_ctx *c);

/* READONLY, READWRITE, ASKING: +OK (every node serves every slot); READONLY
 * and ASKING mark the connection cluster-aware. */
void cmd_readonly(struct cmd_ctx *c);
void cmd_readwrite(struct cmd_ctx *c);
void cmd_asking(struct cmd_ctx *c);

/* CONSISTENCY [R r] [W w] | ONE | QUORUM | ALL | DEFAULT: sets the
 * connection's read and write quorums; with no argument, reads them back as
 * ["R", r, "W", w] (a map under RESP3), each "default", "quorum", "all" or
 * a number, words that CONSISTENCY R .. W .. takes back. */
void cmd_consistency(struct cmd_ctx *c);

/* INFO's "# Cluster" section into b: cluster_enabled:1, then ringkv's
 * lines from the snapshot (none while it is not published yet). */
void cmd_cluster_info_section(struct cmd_ctx *c, struct buf *b);

#endif
