/* cmd_server.h: connection and server commands.
 * PING ECHO QUIT SELECT HELLO AUTH CLIENT COMMAND INFO CONFIG, and the
 * memcached connection commands (stats, version, verbosity, quit, mn).
 * Threads: run on the connection's shard, with ctx->conn set; INFO reads
 *   other shards' counters with relaxed atomic loads; CLIENT LIST, CLIENT
 *   KILL and CONFIG RESETSTAT ask every shard to act on the connections and
 *   counters it owns (cmd_server.c says how). */
#ifndef RINGKV_SHARDS_CMD_SERVER_H
#define RINGKV_SHARDS_CMD_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "cmd.h"

struct node;
struct persist_stats;

/* Node-wide sums of the shards' counters, as INFO shows them. */
struct cmd_server_totals {
    uint64_t clients, connections, rejected, commands, net_in, net_out, cross_shard;
    uint64_t parser_examined;
    uint64_t keys, expires, hits, misses, expired, evicted, used, writes;
    uint64_t cold_keys, cold_bytes, values_cooled, values_loaded; /* values beyond RAM */
    uint64_t sibling_warnings; /* versioned writes past warn-siblings (cmd_ring.c) */
    uint64_t errors; /* error replies (INFO errorstats' sum) */
    uint64_t longest_turn_us, slow_turns; /* the shards' loop turns (shard.h) */
};

/* Sums the shards' counters (relaxed atomic loads): any thread, while the
 * shards exist (INFO on a shard, the admin API on the admin thread). */
void cmd_server_totals(const struct node *n, struct cmd_server_totals *t);
/* Sums the shards' data log figures (persist_read_stats); last_fsync_ms and
 * recovery_ms are the latest over the shards. Any thread, as above. */
void cmd_server_persist_totals(const struct node *n, struct persist_stats *t);
/* The process's resident memory in bytes (/proc/self/statm), 0 if unknown. */
size_t cmd_server_rss_bytes(void);

void cmd_ping(struct cmd_ctx *c);
void cmd_echo(struct cmd_ctx *c);
/* TIME: [unix seconds, microseconds] as bulk strings, as Redis. */
void cmd_time(struct cmd_ctx *c);
/* LASTSAVE: the unix second up to which every write is saved (storage =
 * log): the oldest last save of the shards holding unsynced bytes, else the
 * latest of all, a shard's last save being its last fdatasync or the last
 * SAVE/BGSAVE that found it all durable; the start-up's before the first, or
 * with storage = memory. */
void cmd_lastsave(struct cmd_ctx *c);
/* ROLE: "master", offset 0, no replicas (INFO replication's answer): every
 * ringkv node takes writes; replication is per key (the preference list). */
void cmd_role(struct cmd_ctx *c);
/* RESET: the connection as it was when accepted (Redis 6.2's list): no
 * transaction or watched keys, not a monitor, CLIENT REPLY ON, RESP2, no
 * name, the node's quorums (CONSISTENCY), and unauthenticated where
 * requirepass is set. "+RESET". A client that asked for the topology stays
 * cluster-aware (-MOVED, node-local keyspace commands), as READWRITE leaves
 * it: it still knows the slots. */
void cmd_reset(struct cmd_ctx *c);
/* Whether a request is of an admin command (Redis's @admin: CONFIG, SLOWLOG,
 * MONITOR, SHUTDOWN, CLIENT KILL ...), which MONITOR does not show. */
bool cmd_server_is_admin(const struct cmd_def *d, const struct resp_arg *argv, uint32_t argc);
/* SLOWLOG GET|LEN|RESET|HELP (slowlog.h keeps the entries). */
void cmd_slowlog(struct cmd_ctx *c);
void cmd_latency(struct cmd_ctx *c);
/* OBJECT and MEMORY (containers): HELP and errors; their keyed
 * subcommands go by cmd_server_keyed_subcommand() to cmd_keyinfo. */
void cmd_object(struct cmd_ctx *c);
void cmd_memory(struct cmd_ctx *c);
/* OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key and MEMORY USAGE key [SAMPLES
 * n]: rewrites argv into RING.KEYINFO key sub (argc 3), routed by its key
 * like any keyed read, and returns the subcommand's INFO commandstats slot;
 * -1 (argv untouched) for any other request, or wrong arguments (the
 * container answers those). */
int32_t cmd_server_keyed_subcommand(struct resp_arg *argv, uint32_t *argc);
void cmd_quit(struct cmd_ctx *c);
void cmd_shutdown(struct cmd_ctx *c);
void cmd_wait(struct cmd_ctx *c);
void cmd_select(struct cmd_ctx *c);
void cmd_hello(struct cmd_ctx *c);
void cmd_auth(struct cmd_ctx *c);
void cmd_client(struct cmd_ctx *c);
void cmd_command(struct cmd_ctx *c);
void cmd_info(struct cmd_ctx *c);
void cmd_config(struct cmd_ctx *c);
/* CLUSTER: runs the subcommand argv[1] names (cmd_cluster.h), or HELP. */
void cmd_cluster(struct cmd_ctx *c);
/* memcached stats, version, verbosity, quit and mn (ctx->mc->cmd says which). */
void cmd_mc_conn(struct cmd_ctx *c);
/* CONFIG RESETSTAT's work on one shard (a CMD_BARRIER broadcast handler, also
 * memcached's "stats reset"): zeroes the counters that shard owns. */
void cmd_server_resetstat_shard(struct cmd_ctx *c);
/* MSETNX on the shard that owns every one of its keys (atomic). */
void cmd_msetnx_shard(struct cmd_ctx *c);

#endif
