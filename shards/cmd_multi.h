/* cmd_multi.h: transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
 * A connection in MULTI queues its commands (+QUEUED) on itself (net/conn.h
 * multi_* fields); EXEC sends the whole queue, with the versions its WATCH
 * saw, as one message to the shard that owns the transaction's hash slot,
 * which runs every command back to back (nothing interleaves) and answers
 * the array of their replies, or a null array when a watched key changed.
 * Every key of a transaction, watched or queued, must be of one hash slot
 * (Redis Cluster's rule): a queued command with a key of another slot gets
 * -CROSSSLOT and makes EXEC answer -EXECABORT; watched keys of another slot
 * make EXEC answer -CROSSSLOT.
 * In a cluster (coord.h) EXEC is coordinated like a read-modify-write
 * command, by the slot's first live replica (forwarded there from any
 * node): quorum read of every key, the queue run there, every changed key
 * versioned and sent to the replicas, answered at W acknowledgements.
 * WATCH then records each key's replicated state (its causal context) and
 * needs a connection to a node holding a replica of the slot.
 *
 * Threads: the connection handlers (cmd_multi, cmd_exec, cmd_discard,
 *   cmd_watch, cmd_unwatch, and cmd_multi_flag, cmd_multi_queued,
 *   cmd_multi_watched from cmd.c) on the connection's shard; the _shard
 *   handlers on the shard that owns the slot.
 * Errors: a client's mistake is its reply (Redis 7's texts); out of memory
 *   while queueing is -OOM, and the transaction is aborted. */
#ifndef RINGKV_SHARDS_CMD_MULTI_H
#define RINGKV_SHARDS_CMD_MULTI_H

#include <stdbool.h>
#include <stdint.h>

#include "cmd.h"

struct conn;
struct node;
struct shard;

/* Connection handlers (CMD_ROUTE_CONN rows). */
void cmd_multi(struct cmd_ctx *c);
void cmd_exec(struct cmd_ctx *c);
void cmd_discard(struct cmd_ctx *c);
void cmd_watch(struct cmd_ctx *c);
void cmd_unwatch(struct cmd_ctx *c);
/* RESET: leaves MULTI (its queue dropped) and forgets the watched keys. */
void cmd_multi_forget(struct conn *c);

/* Target side: EXEC's queue run on the slot's shard; WATCH's versions read
 * there (raw records for cmd_multi_watched, not a client reply). */
void cmd_multi_exec_shard(struct cmd_ctx *c);
void cmd_multi_watch_shard(struct cmd_ctx *c);

/* The distinct keys EXEC's message (its argv, argc) touches, watched and
 * queued, into *keys (pointing into argv's bytes; free the array with
 * mi_free) and *n: what a cluster's coordinator quorum-reads and replicates
 * (coord.c). 0, -ENOMEM, or -E2BIG past 256 distinct keys, more than a
 * cluster's transaction may touch (nothing returned). */
int cmd_multi_keys(const struct resp_arg *argv, uint32_t argc, struct resp_arg **keys, uint32_t *n);

/* Whether EXEC's message argv, argc, forwarded by a peer, is one a client's
 * EXEC could have made: every queued command one a transaction may hold,
 * of its arity and key sizes, every key (queued or watched) of argv[1]'s
 * slot, the watches well formed. No MISCONF check: a node whose log is
 * failing sends a transaction on (coord.h). False with the error line (no
 * '-' or CRLF) in why[0..len). */
bool cmd_multi_forward_ok(const struct node *n, const struct resp_arg *argv, uint32_t argc,
                          char *why, size_t len);

/* Whether c is between MULTI and EXEC (its commands are queued). */
bool cmd_multi_is_open(const struct conn *c);
/* A request of c was refused before running (unknown command, arity,
 * NOAUTH, key too large, MISCONF): in MULTI, EXEC will answer -EXECABORT. */
void cmd_multi_flag(struct conn *c);
/* In MULTI, takes the request (row d, checked by the dispatcher) instead of
 * running it: queues it and answers +QUEUED, or refuses it (a command not
 * allowed in a transaction, a key of another slot, past the limits) and
 * flags the transaction. False when c is not in MULTI or d runs at once
 * there (EXEC, DISCARD, MULTI, WATCH, QUIT): dispatch goes on. */
bool cmd_multi_queued(struct shard *sh, struct conn *c, const struct cmd_def *d,
                      struct resp_arg *argv, uint32_t argc);
/* CMD_COMBINE_WATCH: WATCH's result from the slot's shard is in: keeps the
 * versions on c and writes +OK (or the error) into out. */
void cmd_multi_watched(struct conn *c, const struct req_result *res, struct buf *out);

#endif
