/* coord.h: the coordinator: a key's N replicas, R and W (issue 11).
 * Any node accepts any key. The key's partition has a preference list (the
 * ring's, admin/ring.h); its first N_eff = min(replicas, list length) nodes
 * hold the key. A node among them coordinates a request itself, on the
 * shard that owns the partition: a write runs the command on its own store,
 * gives the result a version (replica.h) and sends it (SYNC) to the other
 * live replicas, answering once W have it (itself included, after its log
 * hold); a read asks the other live replicas (GET), merges R answers into
 * its store, runs the command there and answers, then repairs the replicas
 * that were stale; a write's replica that is down or late gets its SYNC at
 * a stand-in past the top N instead (sloppy quorum, hints.h), whose ack
 * counts toward W. Read-modify-write commands run on the first live node of
 * the list, after such a quorum read. A node that holds no replica forwards
 * the command (FORWARD) to the first live node of the list and relays its
 * reply, or answers -MOVED to a cluster-aware client. Too few live replicas:
 * -UNAVAILABLE. While this node's data log cannot persist (MISCONF), and
 * 5 s after, it coordinates no write (nor memcached's gets): it routes one
 * as a node that holds no replica does (forwarded, never -MOVED), to the
 * first live replica but itself.
 * A cluster of one (no snapshot yet, or every partition this node's alone)
 * keeps the path it always had: cmd.c asks coord_route() first, which
 * answers COORD_LOCAL without touching anything but the shard's cached view.
 *
 * The view is this shard's copy of the published snapshot (admin/
 * snapshot.h), refreshed by coord_turn() once per loop turn when the
 * snapshot's version changed: requests never enter a ck_epoch section.
 *
 * Threads: everything on the owning shard's thread; coord_read_stats() any.
 * Ownership: a message given to coord_execute() is the coordinator's until
 *   it goes back through cmd_msg_reply(). */
#ifndef RINGKV_SHARDS_COORD_H
#define RINGKV_SHARDS_COORD_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "req.h"
#include "resp.h"

struct mc_request;
struct shard;
struct conn;
struct cmd_msg;
struct node;
struct wire_msg;

/* Per-shard state: created empty (a cluster of one until the first
 * snapshot). -ENOMEM. */
int coord_init(struct shard *sh);
void coord_fini(struct shard *sh);
/* Once per loop turn: takes the newest snapshot if its version changed. */
void coord_turn(struct shard *sh);
/* Ends the forwards waiting on nodes whose links ended (peerlink.h,
 * coord_note_link_lost): called by the shard loop after a turn's
 * completions, where links end (one that ends elsewhere, a handshake
 * timed out on the tick, is taken up by the next turn's call). */
void coord_lost_turn(struct shard *sh);

enum coord_route_kind {
    COORD_LOCAL,   /* a cluster of one: today's path */
    COORD_HERE,    /* coordinate on this node (the partition's shard) */
    COORD_FORWARD, /* forward to the node `to` */
    COORD_MOVED,   /* answer -MOVED (a cluster-aware client): see error */
    COORD_DOWN,    /* no live node: answer the error */
};

#define COORD_NO_PARTITION UINT32_MAX /* a route to one member, for no key */
/* The refusal of a request that reached a shard whose view of the ring says
 * otherwise than the sender's (views change a loop turn apart, nodes a
 * gossip round apart): nothing of it ran. A forwarder sends it again. */
#define COORD_VIEW_CHANGING "TRYAGAIN the cluster view is changing: retry"

struct coord_route {
    enum coord_route_kind kind;
    uint32_t partition; /* COORD_NO_PARTITION: that member only (FLUSHALL, RING.LOCAL) */
    uint32_t slot;      /* a keyed route in a cluster: the key's slot (keyhash_slot) */
    uint32_t to;     /* COORD_FORWARD: the view's member index */
    bool is_replica; /* this node holds a replica (an RMW may still go to `to`) */
    bool is_hop;     /* COORD_FORWARD of a forwarded request: sent on once only */
    bool is_keyed;   /* a key's route: a FORWARD that finds no link to `to` goes to
                        the next live replica (a member-wide one, FLUSHALL, does not) */
    bool is_rmw;     /* a write (CMD_WRITE, CMD_RMW): a FORWARD of it is sent once
                        (run by a second coordinator, a write gets a second dot that
                        a later context covering the first does not cover); reads go
                        to the next live replica too when `to` is late */
    char error[256]; /* COORD_MOVED / COORD_DOWN: the RESP error text (MISCONF's too) */
};

/* How a keyed request (key, flags: cmd.h CMD_*) from connection c (NULL for
 * a forwarded one) is served. */
void coord_route(struct shard *sh, const struct conn *c, const void *key, uint32_t klen,
                 uint64_t hash, uint32_t flags, struct coord_route *out);
/* The same for a key whose slot (keyhash_slot) the caller computed already. */
void coord_route_slot(struct shard *sh, const struct conn *c, const void *key, uint32_t klen,
                      uint64_t hash, uint32_t slot, uint32_t flags, struct coord_route *out);
/* True while the shard's view is a cluster of more than this node. */
bool coord_is_cluster(const struct shard *sh);

/* Sends the command argv to route->to as a FORWARD for sub-result `sub` of
 * request req_id (this shard's); the relayed reply completes it. proto: the
 * client's. The sub-result is completed with an error at once when no node
 * takes it. A keyless command (argc 1: FLUSHALL) runs on every shard there. */
void coord_forward(struct shard *sh, uint64_t req_id, uint32_t sub, int proto, uint8_t r, uint8_t w,
                   const struct resp_arg *argv, uint32_t argc, const struct coord_route *route);

/* The same for one keyed memcached request (a get family's one key): its
 * text goes with WIRE_MSG_MC and the reply's memcached bytes come back;
 * is_noreply: the client asked for silence, so nothing is relayed (the
 * receiver still answers, so the sub-result completes). */
void coord_forward_mc(struct shard *sh, uint64_t req_id, uint32_t sub, uint8_t r, uint8_t w,
                      const struct mc_request *mc, bool is_noreply,
                      const struct coord_route *route);

/* The view's members other than this node that are not down (FLUSHALL
 * goes to each), as member indexes for coord_forward(); at most cap. */
uint32_t coord_peers(const struct shard *sh, uint32_t *out, uint32_t cap);

/* Coordinates message m (flags CMD_COORD) on the shard owning its key. */
void coord_execute(struct shard *sh, struct cmd_msg *m);

/* Keyspace commands (keyspace.h): true when this node answers for the
 * partition (its list's first live node, CLUSTER SLOTS's master), or the
 * node is a cluster of one. This shard's view. */
bool coord_answers_for(const struct shard *sh, uint32_t partition);
/* SCAN's walk over the members in node id order: the first live member at
 * rank *rank or after: *rank, its member index (for coord_forward's route)
 * and whether it is this node. False when none is left (or no cluster). */
bool coord_rank_member(const struct shard *sh, uint32_t *rank, uint32_t *member, bool *is_self);

/* The replicas a key of this partition has (N_eff), at least 1. For
 * RING.*'s R/W caps. */
uint32_t coord_replicas(const struct shard *sh, uint32_t partition);

/* The acknowledgements a plain write of a connection whose CONSISTENCY W
 * is `asked` (conn.h CONN_CONSISTENCY_*) needs, this node's included: the
 * setting or the connection's, capped by N_eff; 1 for a cluster of one
 * (WAIT's answer is one less). */
uint32_t coord_write_quorum(const struct shard *sh, uint8_t asked);

/* Once per shard tick: writes whose replicas are late get stand-ins (see
 * coord.c, WRITE); then tombstones past tombstone-grace. A cluster of one
 * deletes them (replica_reap); a cluster deletes one only once every other
 * replica of its partition answered that it holds the same tombstone or
 * nothing, and otherwise repairs the replica that holds more, or waits for
 * the one that is down (coord.c, "Reaping"). INFO counts tombstones_reaped,
 * reaps_deferred (a check that could not reap now) and reap_repairs. */
void coord_reap(struct shard *sh, int64_t now_unix_ms);

/* Hinted handoff (hints.h): true, with the member's "host:cluster-port"
 * (borrowed until the next loop turn), when this shard's view lists the
 * node with this id and it is up (not this node). */
bool coord_member_up(const struct shard *sh, const char *id, const char **cluster_addr);
/* A hint's delivery: 1 when the node with this id is still among partition
 * p's top N in this shard's view; 0 when it is not (moved by a ring change,
 * or gone), with the replicas that are now: the live ones but this node in
 * members[0..*n) (at most cap) and *is_self; -1 no view (or no cluster). */
int coord_hint_replicas(const struct shard *sh, uint32_t p, const char *id, uint32_t *members,
                        uint32_t cap, uint32_t *n, bool *is_self);
/* A hint's state (wm as built to send: values[0] the body, not a decoded
 * message) applied at this node, now a replica of its partition (the
 * version sync's idempotent merge): 0 with *seq the log sequence to wait on
 * for durability (0 none); -EXDEV (the partition is on another shard),
 * -EROFS (MISCONF), replica_apply's errors (-EAGAIN: not in memory). */
int coord_hint_apply(struct shard *sh, const struct wire_msg *wm, uint64_t *seq);
/* Wire ids of a request with several sub-results, as the coordinator's:
 * coord_wire_sub() the id for sub-result sub; coord_reply_req() a REPLY's
 * request id and *sub. */
uint64_t coord_wire_sub(uint64_t req_id, uint32_t sub);
uint64_t coord_reply_req(uint64_t wire_id, uint32_t *sub);
/* ---- anti-entropy (shards/aae.h) ---- */

/* The view's index of member `id`, or UINT32_MAX when it is unknown, down
 * or this node. */
uint32_t coord_live_member(const struct shard *sh, const char *id);

/* The version of this shard's view (0: none yet); an exchange started under
 * one version ends when it changes. */
uint64_t coord_view_version(const struct shard *sh);
/* The live replicas of partition p this node starts exchanges with
 * (member indexes of the view, at most cap): every other one when this
 * node is p's first live replica (in preference-list order), else the
 * next live one after it, unless it is the last (the first covers that
 * pair). So each pair of neighbours is compared even when the first
 * cannot reach some replica (a one-way or partial cut), and a partition
 * costs at most 2(N-1) exchanges a round. False when there is none (or no
 * cluster). */
bool coord_aae_peers(const struct shard *sh, uint32_t p, uint32_t *peers, uint32_t cap,
                     uint32_t *npeers);
/* True when this node holds a replica of p in the shard's view. */
bool coord_holds_partition(const struct shard *sh, uint32_t p);
/* Reads key's value back from disk (values beyond RAM, tier.h), as the
 * coordinator does for its own requests: then ends a request of this shard
 * (returned; owner in its owner_ptr) with done, REQ_END_DONE once the value
 * is in memory (done NULL: nothing is told). NULL when that cannot start
 * (no tier, out of memory). */
struct req *coord_load_value(struct shard *sh, const void *key, uint32_t klen, uint64_t hash,
                             req_done_fn *done, void *owner, int64_t deadline_ms);
/* Sends request m to member `member` of the shard's view (peerlink.h's
 * errors; -ENOENT when the view has no such member). */
int coord_send_member(struct shard *sh, uint32_t member, const struct wire_msg *m);

/* INFO: every shard's coordinator counters summed, as "name:value\r\n"
 * lines appended to out. */
void coord_info(const struct node *n, struct buf *out);

#endif
