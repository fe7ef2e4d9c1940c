/* monitor.h: MONITOR, every request a node receives streamed to the
 * clients that asked, as Redis writes it:
 *   +1765432100.123456 [0 127.0.0.1:50312] "set" "k" "v"
 * (the unix time with microseconds, the database, the client's address,
 * each argument quoted with C escapes; AUTH's arguments and HELLO's
 * password as "(redacted)").
 * - A RESP request naming a known command but an admin one (CONFIG,
 *   SLOWLOG, MONITOR, CLIENT KILL ...: Redis's @admin, as Redis hides them)
 *   is fed on the shard that received it, as it is dispatched (before it
 *   runs: one refused for its arguments is shown too; Redis 7 shows only
 *   what ran), when any client of the node monitors (one relaxed load of a
 *   node-wide count per request otherwise). An argument is shown up to
 *   64 KiB, a line up to about 1 MiB of arguments, each saying how much
 *   more there was. The line is made once; the shard's own monitors
 *   get it at once, every other shard that has monitors gets one message
 *   with it (shard_send), so lines from one shard keep their order;
 *   lines from two shards interleave as they arrive.
 * - A monitoring connection may still send connection commands (PING,
 *   QUIT ...), answered in the stream; a keyspace command gets Redis's
 *   "-ERR Replica can't interact with the keyspace". One whose unsent
 *   output passes MONITOR_OUT_MAX is closed (a client too slow to read the
 *   stream); idle, it is never closed by `timeout`. A shard whose lines to
 *   other shards' monitors (messages back and forth) pass MONITOR_OUT_MAX
 *   drops them until they come back.
 * - Memcached requests are not shown, nor forwards and replication
 *   between nodes (each node shows what its own clients send).
 * Threads: a shard's list of its monitoring connections is its own; the
 * node's count and each shard's are relaxed atomics other shards read. */
#ifndef RINGKV_SHARDS_MONITOR_H
#define RINGKV_SHARDS_MONITOR_H

#include <stdbool.h>
#include <stdint.h>

struct cmd_ctx;
struct conn;
struct node;
struct resp_arg;
struct shard;

#define MONITOR_OUT_MAX (64u << 20)  /* unsent bytes a monitoring client may hold, and
                                        line bytes a shard may have on their way to
                                        other shards' monitors */
#define MONITOR_ARG_MAX (64u << 10)  /* bytes of one argument a line shows */
#define MONITOR_LINE_MAX (1u << 20)  /* past this, a line names how many arguments more */

/* A shard's monitoring connections. */
struct monitor_list {
    struct conn **conns;
    uint32_t n, cap;
    int here; /* atomic: n, for other shards (whether to send them lines) */
    uint64_t in_flight; /* line bytes this shard sent to others, not yet back */
};

/* MONITOR (a connection command). */
void cmd_monitor(struct cmd_ctx *c);
/* Any client of node n monitors: feed it (monitor_feed). */
static inline bool monitor_any(const int *node_monitors)
{
    return __atomic_load_n(node_monitors, __ATOMIC_RELAXED) > 0;
}
/* A request client c sent, being dispatched on shard sh. */
void monitor_feed(struct shard *sh, const struct conn *c, const struct resp_arg *argv,
                  uint32_t argc);
/* The handler a line from another shard runs with on the monitors' shard
 * (argv[0]: the line, the message's only argument). */
void monitor_deliver(struct cmd_ctx *c);
/* A line this shard sent to another came back (cmd_msg_complete). */
struct cmd_msg;
void monitor_returned(struct shard *sh, const struct cmd_msg *m);
/* Connection c (monitoring or not) is going away. */
void monitor_forget(struct shard *sh, struct conn *c);
/* Shard shut-down. */
void monitor_fini(struct monitor_list *l);

#endif
