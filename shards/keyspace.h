/* keyspace.h: DBSIZE, KEYS, SCAN and RANDOMKEY across a cluster (issue 11).
 * Each partition has one node that answers keyspace commands for it: the
 * first live node of its preference list, the one CLUSTER SLOTS lists as
 * master (coord_answers_for). A node's "node-local form" covers only those
 * partitions (cmd_keys.c's handlers, in a cluster), as a Redis Cluster
 * master answers for its own slots: a cluster-aware connection (net/conn.h
 * cluster_aware: it sent CLUSTER SLOTS/SHARDS/NODES, READONLY or ASKING)
 * gets it, so a Redis Cluster client that fans out to every master and
 * sums counts each key once. Any other connection gets the cluster-wide
 * form: DBSIZE, KEYS and RANDOMKEY go to every live member (cmd.c, as
 * FLUSHALL does; a peer's part is `RING.LOCAL <command>`, served here) and
 * are summed, concatenated, or one member's key picked; SCAN walks the live
 * members in node id order, one at a time. A cluster of one never comes
 * here.
 *
 * SCAN's cluster-wide cursor (64 bits): bits 56-63 the member's rank in
 * node id order, bits 48-55 the shard and bits 0-47 the table position
 * >> 16 of that member's node-wide cursor (cmd.c: shard << 56 | pos >> 8).
 * A table position is a place in hash space, a multiple of 2^(64 - log2
 * slots) (table.h), so nothing is lost below 2^48 slots per shard. At most
 * 256 members are walked.
 *
 * Threads: everything on shard threads, with that shard's view (coord.h).
 * Errors: a peer's refusal is a WIRE_CODE_ERROR reply; a client's RING.LOCAL
 * is answered -ERR. */
#ifndef RINGKV_SHARDS_KEYSPACE_H
#define RINGKV_SHARDS_KEYSPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "req.h"
#include "resp.h"

struct shard;
struct cmd_ctx;
struct wire_msg;

#define KEYSPACE_ARGS_MAX 16 /* arguments of a keyspace command sent to a peer */

/* SCAN's r->aux (cmd.c): the shard (bits 0-7), REMOTE when the reply is a
 * member's whole SCAN reply, and the member's rank + 1 from bit 32 (0: a
 * node-wide cursor, no member). */
#define KEYSPACE_AUX_SHARD 0xFFll
#define KEYSPACE_AUX_REMOTE 0x100ll
#define KEYSPACE_AUX_RANK_SHIFT 32

/* Where a cluster-wide SCAN cursor resumes. */
struct keyspace_scan {
    uint32_t rank;   /* in node id order */
    uint32_t member; /* the view's member index (coord_forward's route) */
    bool is_self;
    uint64_t node; /* that member's node-wide cursor */
    int64_t aux;   /* for r->aux: the rank */
};

/* Decodes cursor: the first live member at its rank or after (a member
 * gone: the next one, from its start). False when none is left. */
bool keyspace_scan_at(const struct shard *sh, uint64_t cursor, struct keyspace_scan *out);
/* The arguments of `RING.LOCAL SCAN <node cursor> <options>` for at, into
 * out (room for argc + 1; argc <= KEYSPACE_ARGS_MAX), the cursor's text in
 * text (24 bytes). Their count. */
uint32_t keyspace_scan_args(const struct keyspace_scan *at, const struct resp_arg *argv,
                            uint32_t argc, struct resp_arg *out, char *text, size_t cap);
/* A member's SCAN reply (sub-result res, an array): its node-wide cursor,
 * and the key array's bytes (borrowed from res). False when malformed. */
bool keyspace_scan_reply(const struct req_result *res, uint64_t *node_cursor, const char **keys,
                         size_t *n);
/* The cluster-wide cursor after a member (aux: its rank) answered
 * node_next: the same member on, else the next live member, else 0. */
uint64_t keyspace_scan_next(const struct shard *sh, int64_t aux, uint64_t node_next);

/* RING.LOCAL from a client: refused (it is for peers). */
void keyspace_refuse(struct cmd_ctx *c);
/* A peer's FORWARD of `RING.LOCAL <command> ...` (argv, argc: the whole
 * command): runs the node-local form on the shards here and replies to
 * the link with its RESP bytes. */
void keyspace_serve(struct shard *sh, uint64_t link, const struct wire_msg *wm,
                    struct resp_arg *argv, uint32_t argc);

#endif
