/* slowlog.h: SLOWLOG, the commands whose run took slowlog-log-slower-than
 * microseconds or more, as Redis keeps them.
 * - Each shard keeps its own newest slowlog-max-len entries (a ring), so a
 *   shard that ran a slow command never waits for another; SLOWLOG GET
 *   merges every shard's by id (one counter per node: ids grow in the order
 *   the entries were made) and gives the node's newest, at most
 *   slowlog-max-len; LEN counts those; RESET empties every ring.
 * - What is timed is a handler's run on the shard that holds its keys (the
 *   time Redis's call() measures: not the wait for other shards, replicas,
 *   a value on disk or the log's fsync), with the time-stamp counter that
 *   INFO commandstats already reads (cmd_stats.h): one compare per command
 *   on the request path. A command run in parts (KEYS, MGET of keys on
 *   several shards) is one entry per part that was slow. Memcached
 *   requests are not timed, so not logged.
 * - An entry is what Redis 7 shows: id, unix time, microseconds, the
 *   arguments (at most 32: the last then says how many more; each at most
 *   128 bytes: then how many more), the client's address and name. The
 *   client is known when the run happened while its request was being
 *   dispatched (on its connection's shard, at once); a part run on another
 *   shard or later (a value read from disk, replicas' answers) shows an
 *   empty address and name. AUTH's
 *   arguments and HELLO's password are kept as "(redacted)".
 * Threads: the owner shard appends under its ring's mutex (only for a slow
 * command); SLOWLOG on any shard reads or empties every ring under theirs.
 * The threshold in ticks is the owner's (slowlog_refresh on its tick). */
#ifndef RINGKV_SHARDS_SLOWLOG_H
#define RINGKV_SHARDS_SLOWLOG_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct cfg;
struct cmd_ctx;
struct cmd_stats;
struct conn;
struct node;
struct resp_arg;
struct slowlog_entry;

#define SLOWLOG_MAX_ARGS 32     /* arguments kept per entry (Redis's) */
#define SLOWLOG_MAX_ARG_LEN 128 /* bytes kept per argument (Redis's) */

struct slowlog {
    pthread_mutex_t lock;        /* a zeroed one is PTHREAD_MUTEX_INITIALIZER (glibc) */
    struct slowlog_entry **ring; /* [cap]; NULL while slowlog-max-len is 0 */
    uint32_t cap, head, len;     /* head: where the next entry goes */
    /* owner only: */
    uint64_t threshold_ticks; /* a run this long is logged; UINT64_MAX: off */
    double ns_per_tick;       /* the clock's rate, measured on the tick */
};

/* Shard start-up, on a zeroed struct: an empty ring of slowlog-max-len.
 * -ENOMEM. slowlog_fini is safe after a failed or no init. */
int slowlog_init(struct slowlog *l, const struct cfg *cfg, const struct cmd_stats *stats);
void slowlog_fini(struct slowlog *l);
/* The owner, on its tick: the threshold in clock ticks from the clock's
 * measured rate (cmd_stats.h's tick0 and ns0) and the settings as they
 * are now (CONFIG SET): a new slowlog-max-len resizes the ring, keeping
 * the newest entries. */
void slowlog_refresh(struct slowlog *l, const struct cfg *cfg, const struct cmd_stats *stats);
/* After a handler ran for `ticks` (cmd_stats_clock units): whether to log it. */
static inline bool slowlog_is_slow(const struct slowlog *l, uint64_t ticks)
{
    return ticks >= l->threshold_ticks;
}
/* The owner logs a slow run (argv[0] the command name; c its client when
 * known, else NULL). Out of memory: the entry is not kept. */
void slowlog_add(struct slowlog *l, const struct resp_arg *argv, uint32_t argc, uint64_t ticks,
                 const struct conn *c);

/* Whether argument i of a request is a secret, shown as "(redacted)" as
 * Redis does (also by MONITOR): all of AUTH's; HELLO's two after AUTH. */
bool slowlog_is_secret(const struct resp_arg *argv, uint32_t i);

/* SLOWLOG's subcommands (cmd_server.c's container): GET [count], LEN, RESET. */
void cmd_slowlog_get(struct cmd_ctx *c);
void cmd_slowlog_len(struct cmd_ctx *c);
void cmd_slowlog_reset(struct cmd_ctx *c);

#endif
