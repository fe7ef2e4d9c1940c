/* cmd_stats.h: per-command and per-error counters (INFO commandstats and
 * errorstats, Redis 7's), and CLIENT REPLY's silencing of replies.
 * A command counts at its slot: its row of the command table (row minus
 * table base), or CMD_STATS_SUB_BASE plus the index cmd_server.c gives a
 * subcommand (client|list). Per slot: calls (ran), time spent in its
 * handlers on every shard, rejected_calls (refused before running: arity,
 * NOAUTH, key too large, unknown subcommand arguments...) and failed_calls
 * (ran and replied an error). Errors count by the first word of the error
 * reply the client gets (Redis's rule: up to the first space within 32
 * bytes, else ERR).
 * Hooks, all called by cmd.c on shard threads:
 *   cmd_stats_begin()   a RESP request was looked up (its row, or none);
 *   cmd_stats_admit()   it passed dispatch's checks and is routed;
 *   cmd_stats_end()     its synchronous part is over: the reply, when it is
 *                       complete, is checked here; a reply still to come is
 *                       marked (conn_slot.stats) and checked when combined;
 *   cmd_stats_clock()/cmd_stats_ran()  around every handler run, on any
 *                       shard (the time goes to the slot being served);
 *   cmd_stats_msg_slot(), cmd_stats_enter()/cmd_stats_leave()  carry the slot
 *                       to the shard that runs a sub-request;
 *   cmd_stats_combine_begin()/_end()  around the combining of a pending reply.
 * Threads: each shard writes only its own block (struct cmd_stats_shard, on
 *   its own cache lines) with relaxed atomic stores; INFO on any shard reads
 *   every block with relaxed loads (cmd_stats_sum). Resetting (CONFIG
 *   RESETSTAT) runs on each shard for its own block.
 * Ownership: the node owns the blocks (cmd_stats_create at start-up,
 *   cmd_stats_destroy after the shards stopped). */
#ifndef RINGKV_SHARDS_CMD_STATS_H
#define RINGKV_SHARDS_CMD_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <time.h>

#include "buf.h"

struct conn;
struct conn_slot;
struct node;

#define CMD_STATS_SUB_BASE 96 /* first subcommand slot: the table has fewer rows */
#define CMD_STATS_SLOTS 224   /* 128 subcommands at most */
#define CMD_STATS_ERRORS 32   /* distinct error prefixes kept per shard */
#define CMD_STATS_PREFIX_MAX 32

/* One slot's counters, summed or per shard. */
struct cmd_stat {
    uint64_t calls;
    uint64_t ns; /* time in its handlers (kept in clock ticks, see
                    cmd_stats_clock; cmd_stats_sum gives nanoseconds) */
    uint64_t rejected;
    uint64_t failed;
};

struct cmd_stats_error {
    char prefix[CMD_STATS_PREFIX_MAX]; /* NUL-terminated; immutable once published */
    uint64_t count;
};

/* One shard's counters and the state of the request it dispatches. */
struct cmd_stats_shard {
    struct cmd_stat cmds[CMD_STATS_SLOTS];
    struct cmd_stats_error errors[CMD_STATS_ERRORS];
    uint32_t nerrors; /* published with a release store once the prefix is written */
    /* Owner only: */
    int32_t slot;              /* whose handler runs now (time goes there); -1 none */
    int32_t call_slot;         /* the request being dispatched; -1 unknown */
    bool admitted;             /* it passed the checks */
    bool tracked;              /* a RESP request is being dispatched */
    struct conn_slot *tail;    /* the connection's last reply slot before it */
    const struct conn *conn;   /* its connection, until cmd_stats_end (SLOWLOG's client) */
    size_t out_len;            /* its output length before it */
} __attribute__((aligned(64)));

struct cmd_stats {
    uint32_t nshards;
    uint64_t tick0, ns0; /* the clock and CLOCK_MONOTONIC at start-up: their
                            ratio since turns ticks into nanoseconds */
    struct cmd_stats_shard shard[];
};

/* Bits of conn_slot.stats: how a reply not ready at dispatch counts. */
#define CMD_STATS_P_TRACKED (1u << 31)
#define CMD_STATS_P_ADMITTED (1u << 30)
#define CMD_STATS_P_SILENT (1u << 29) /* CLIENT REPLY OFF/SKIP: drop it */
#define CMD_STATS_P_SLOT 0xffffu      /* slot + 1; 0 none */

/* Start-up (main thread): zeroed blocks for n shards. NULL on out of memory. */
struct cmd_stats *cmd_stats_create(uint32_t nshards);
void cmd_stats_destroy(struct cmd_stats *s);

/* The block of shard `id`. */
struct cmd_stats_shard *cmd_stats_of(const struct node *n, uint32_t id);

/* ---- hooks (see the top) ---- */
void cmd_stats_begin(struct cmd_stats_shard *s, struct conn *c, int32_t row);
void cmd_stats_admit(struct cmd_stats_shard *s);
void cmd_stats_end(struct cmd_stats_shard *s, struct conn *c);
/* A cheap clock for handler times: the CPU's time-stamp counter on x86
 * (constant rate; half the cost of clock_gettime), else CLOCK_MONOTONIC ns. */
static inline uint64_t cmd_stats_clock(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_ia32_rdtsc();
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}
/* CLOCK_MONOTONIC nanoseconds and clock ticks since start-up: their ratio
 * turns ticks into nanoseconds (INFO commandstats, SLOWLOG). Any thread. */
void cmd_stats_since_start(const struct cmd_stats *all, uint64_t *ns, uint64_t *ticks);
/* Before a handler runs: the clock, or 0 when no command is being counted
 * (memcached requests), which saves the read. */
static inline uint64_t cmd_stats_start(const struct cmd_stats_shard *s)
{
    return s->slot >= 0 ? cmd_stats_clock() : 0;
}
/* After it ran: adds the time since t0 to the slot being served; returns
 * that time (clock ticks; 0 when t0 is). */
uint64_t cmd_stats_ran(struct cmd_stats_shard *s, uint64_t t0);
/* The slot a sub-request made now carries to the shard that runs it. */
static inline int32_t cmd_stats_msg_slot(const struct cmd_stats_shard *s)
{
    return s->slot;
}
/* Runs what follows for `slot` (a sub-request's); returns the slot to restore. */
int32_t cmd_stats_enter(struct cmd_stats_shard *s, int32_t slot);
void cmd_stats_leave(struct cmd_stats_shard *s, int32_t was);
int32_t cmd_stats_combine_begin(struct cmd_stats_shard *s, const struct conn_slot *p);
/* out grew from `at`: count it (when tracked), drop it (when silenced). */
void cmd_stats_combine_end(struct cmd_stats_shard *s, struct conn *c, const struct conn_slot *p,
                           struct buf *out, size_t at, int32_t was);

/* ---- from command handlers (the dispatching shard) ---- */
/* The request is subcommand `slot` of its container. */
void cmd_stats_subcommand(struct cmd_stats_shard *s, int32_t slot);
/* The request was refused before running (at its current slot). */
void cmd_stats_reject(struct cmd_stats_shard *s);
/* The request names no command (an unknown subcommand): no slot counts. */
void cmd_stats_unknown(struct cmd_stats_shard *s);

/* ---- readers and reset ---- */
/* Sums slot `slot` over every shard (relaxed loads). */
void cmd_stats_sum(const struct node *n, uint32_t slot, struct cmd_stat *out);
/* Calls fn for each error prefix with its node-wide count (non-zero only),
 * in order of first appearance on the lowest shard. */
void cmd_stats_errors(const struct node *n,
                      void (*fn)(const char *prefix, uint64_t count, void *arg), void *arg);
/* Zeroes shard's own counters (error prefixes stay, at zero). Owner only. */
void cmd_stats_reset(struct cmd_stats_shard *s);

#endif
