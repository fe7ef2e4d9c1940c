/* cmd_server.h: connection and server commands.
 * PING ECHO QUIT SELECT HELLO AUTH CLIENT COMMAND INFO CONFIG, and the
 * memcached connection commands (stats, version, verbosity, quit, mn).
 * Threads: run on the connection's shard, with ctx->conn set; INFO reads
 *   other shards' counters with relaxed atomic loads; CLIENT LIST, CLIENT
 *   KILL and CONFIG RESETSTAT ask every shard to act on the connections and
 *   counters it owns (cmd_server.c says how). */
#ifndef RINGKV_SHARDS_CMD_SERVER_H
#define RINGKV_SHARDS_CMD_SERVER_H

#include "cmd.h"

void cmd_ping(struct cmd_ctx *c);
void cmd_echo(struct cmd_ctx *c);
void cmd_quit(struct cmd_ctx *c);
void cmd_select(struct cmd_ctx *c);
void cmd_hello(struct cmd_ctx *c);
void cmd_auth(struct cmd_ctx *c);
void cmd_client(struct cmd_ctx *c);
void cmd_command(struct cmd_ctx *c);
void cmd_info(struct cmd_ctx *c);
void cmd_config(struct cmd_ctx *c);
/* CLUSTER KEYSLOT (and HELP): the key slots cluster-aware clients compute. */
void cmd_cluster(struct cmd_ctx *c);
/* memcached stats, version, verbosity, quit and mn (ctx->mc->cmd says which). */
void cmd_mc_conn(struct cmd_ctx *c);
/* MSETNX on the shard that owns every one of its keys (atomic). */
void cmd_msetnx_shard(struct cmd_ctx *c);

#endif
