/* transfer.h: partition transfers when the ring changes (handoff).
 * A node that became a replica of a partition pulls the partition's key
 * states from a node that holds it whole (STREAM over the peer links,
 * net/wire.h), applies them with replica_apply() and keeps a resume cursor
 * per partition in <dir>/transfers.<shard>; a node that left a partition's
 * preference list drops its copy once every node of the list says it holds
 * the partition whole (RELEASE). transfer.c's design comment says how.
 * Wire (net/wire.h ops 11..13, REQUEST and REPLY layouts as there):
 *   STREAM request: partition = the group's first (routes it to the source's
 *     shard), key = the cursor (u64 LE, a hash position; 0 = from the start),
 *     meta = u64 LE `from` (the receiver has the writes before ring epoch
 *     `from` and since it became a replica), one value = the group's
 *     partitions (u16 LE each, at most 64).
 *   STREAM reply: one per key, status OK, key, meta and one value (body) and
 *     expire_at_ms: the key's replica state (replica.h), tombstones too.
 *   STREAM_END reply: status OK with key = the next cursor (0: the walk is
 *     over) and one value = the partitions served, each u16 LE and its reach
 *     u64 LE (the epoch up to which this source has every write from `from`
 *     on; UINT64_MAX: all); or
 *     UNAVAILABLE when none was (the receiver asks another source).
 *   RELEASE request: partition; reply OK when this node holds it whole and
 *     durably (in its list, not pulling it), else UNAVAILABLE.
 *
 * Threads: everything on the owning shard's thread, except
 *   transfer_node_stats() and transfer_state(), which any thread may call
 *   (relaxed atomic loads: the admin thread's GET /v1/ring and /metrics).
 * Ownership: struct transfer is the shard's (shard_create/shard_destroy);
 *   messages given to the handlers are borrowed for the call.
 * Errors: transfer_init() returns 0 or -ENOMEM; the rest log and go on. */
#ifndef RINGKV_SHARDS_TRANSFER_H
#define RINGKV_SHARDS_TRANSFER_H

#include <stdbool.h>
#include <stdint.h>

#include "wire.h"

struct shard;
struct node;

/* A partition's transfer state on this node, as the admin thread reads it. */
enum transfer_state {
    TRANSFER_NONE = 0,      /* nothing moves */
    TRANSFER_PENDING = 1,   /* this node became a replica; not streaming yet */
    TRANSFER_STREAMING = 2, /* being pulled from a source */
    TRANSFER_SETTLING = 3,  /* all received; waiting for the log to make it durable */
    TRANSFER_DONE = 4,      /* held whole and durably */
    TRANSFER_RELEASING = 5, /* this node left the list: asking the list whether to drop */
    TRANSFER_DROPPING = 6,  /* dropping its copy (store deletes) */
};

/* True for the states of a partition this node pulls (not yet durable). */
static inline bool transfer_is_incoming(unsigned state)
{
    return state == TRANSFER_PENDING || state == TRANSFER_STREAMING ||
           state == TRANSFER_SETTLING;
}

/* True while this node may still lack keys of the partition (pending or
 * streaming; settling has them all): a read's miss here proves nothing. */
static inline bool transfer_lacks_keys(unsigned state)
{
    return state == TRANSFER_PENDING || state == TRANSFER_STREAMING;
}

/* Names for the API: "none", "pending", "streaming", "settling", "done",
 * "releasing", "dropping". */
const char *transfer_state_name(unsigned state);

/* A node's figures (sums over its shards). Incoming partitions count since
 * start-up; rate is bytes received per second (smoothed over a few
 * seconds); remaining_bytes an estimate from the streams' positions (0 when
 * nothing is left); eta_s = remaining_bytes / rate (-1 unknown). */
struct transfer_stats {
    uint64_t pending, streaming, settling, done; /* incoming partitions by state */
    uint64_t releasing, dropping, released;      /* outgoing ones; released: dropped */
    uint64_t bytes, keys;                        /* received and applied */
    uint64_t bytes_sent, keys_sent;              /* served to other nodes */
    uint64_t keys_walked;                        /* table entries the walks serving them met
                                                    (a split table: the streamed partitions'
                                                    keys only, about keys_sent) */
    uint64_t keys_dropped;                       /* deleted by releases */
    uint64_t cold_skipped;                       /* served: keys whose value was on disk */
    uint64_t handoff_checks;                     /* handoff checks of released copies ended */
    uint64_t handoff_keys_sent;                  /* keys those checks sent to the list */
    uint64_t resumable_bytes;                    /* received and recorded durably (partitions
                                                    done, and those pulling up to their saved
                                                    cursors): not pulled again after a crash */
    uint64_t rate;                               /* bytes/s */
    uint64_t remaining_bytes;
    int64_t eta_s;
    /* not summed (transfer_node_stats: the least of the shards') */
    uint64_t ring_epoch; /* the ring the transfers follow (0: none yet) */
};

/* Per-shard state: created by shard_create() (-ENOMEM), freed by
 * shard_destroy(). Reads <dir>/transfers.<shard> when it exists. */
int transfer_init(struct shard *sh);
void transfer_fini(struct shard *sh);

/* The shard's tick: notices a new ring (partitions gained: pending; left:
 * releasing), starts streams within handoff-concurrency and
 * handoff-max-bytes-per-sec, expires late ones, saves cursors the log has
 * made durable, asks about and drops released partitions. */
void transfer_tick(struct shard *sh, int64_t now_ms);

/* anti-entropy's handoff check (aae_handoff) of partition p ended; clean:
 * the peer the cookie names held every key here; keys_sent: the keys it
 * sent that peer. */
void transfer_handoff_done(struct shard *sh, uint32_t p, uint64_t cookie, bool clean,
                           uint32_t keys_sent);


/* The shard's loop turn: while a drop pass is under way, a step of 128
 * table entries at most every 5 ms, so that a busy shard deletes released
 * keys in bursts too short to show in its requests' latency (a tick tops
 * the turns' visits since the last one up to 1024: all of it on an idle
 * shard). */
void transfer_turn(struct shard *sh, int64_t now_ms);

/* True for the ops this module serves (coord_on_request/coord_on_reply
 * hand them over). */
static inline bool transfer_is_op(unsigned op)
{
    return op == WIRE_OP_STREAM || op == WIRE_OP_STREAM_END || op == WIRE_OP_RELEASE;
}
void transfer_on_request(struct shard *sh, uint64_t link, const struct wire_msg *m);
/* A step of the state file's write (SHARD_OP_TRANSFER_SAVE) completed.
 * transfer_busy(): one is in the kernel (the shard waits for it when it
 * stops: its buffer is freed after). */
void transfer_on_cqe(struct shard *sh, uint64_t ud, int res);
bool transfer_busy(const struct shard *sh);
void transfer_on_reply(struct shard *sh, const struct wire_msg *m);

/* Brings the partitions' states up to the newest ring now (the tick does it
 * every 100 ms; the coordinator's view may already be newer): before a
 * state is read for a decision that cannot wait, as a reap check's. */
void transfer_catch_up(struct shard *sh);

/* For a partition this shard pulls (its owner shard): the node id of the
 * source it pulls from, or would ask first (a member of its old list), a
 * node holding it whole; NULL when it pulls none or knows no source. A
 * read that found only misses of replicas still pulling p asks it
 * (coord.c). */
const char *transfer_pull_source(const struct shard *sh, uint32_t p);

/* Any thread. */
void transfer_node_stats(const struct node *n, struct transfer_stats *out);
/* Partition p's state on this node (enum transfer_state). */
unsigned transfer_state(const struct node *n, uint32_t p);
/* For a partition this node is releasing (RELEASING: not yet dropping):
 * the positions (bit k: the k-th of the preference list of the ring of
 * `epoch`) of the list members that told it they hold p whole (not pulling
 * it). 0: none yet, or this node is not releasing p under that ring. A
 * coordinator forwards to one of them before a member still filling (a
 * joiner busy applying its streams). Any thread. */
uint32_t transfer_whole_replicas(const struct node *n, uint32_t p, uint64_t epoch);

#endif
