/* coord.c: the coordinator (see coord.h): a key's N replicas, R and W.
 * Runs on shard threads only. Three parts:
 *
 * The view: coord_turn() copies what requests need of the published
 * snapshot (members: id, addresses, down or not; the ring's preference
 * lists as member indexes) into a struct coord_view of this shard, when the
 * snapshot's version changed. Operations in flight keep the view they
 * started with (a reference count), so a refresh never pulls addresses from
 * under them. is_cluster is false for a cluster of one: then cmd.c routes
 * as it always did. For keyspace commands (keyspace.h) the view also says
 * which partitions this node answers for (is_mine: it is their list's first
 * live node) and ranks the members by node id (SCAN's walk); the first
 * cluster view turns on the store's per-partition key counts (DBSIZE).
 *
 * Operations: a coordinated request is one struct req (req.h) of this
 * shard with one sub-result, whose owner_ptr is a struct coord_op. The req
 * gives the deadline, the durability hold and the id that peers' REPLYs
 * name: wire id = the req id with the peer's index in bits 24..31 (the req
 * slot's top byte, so slots stay under 2^24). Phases:
 *   READ   GETs out to the live replicas (a read's command runs here as they
 *          go, on the state whose hash they carry); at R answers (self
 *          included) each state is applied here (replica_apply: the
 *          coordinator is repaired), the command runs again if that or any
 *          other write changed the store meanwhile, and is answered; for a
 *          read-modify-write command the WRITE phase follows instead. A
 *          miss of a replica still pulling the partition (self's too; R = 1
 *          reads stay local) counts toward R but is no proof: the read also
 *          needs an answer from one holding it whole or having the key
 *          (is_sure); with only such misses it asks the pull's source
 *          (coord_ask_source), merged and then dropped from the op;
 *   WRITE  the command ran here (before: replica_export; after:
 *          replica_versionize, or the RING.* write's own version), SYNCs
 *          out with the new state; at W acks (self included) the reply
 *          goes once the local record is durable (req_hold). Sloppy
 *          quorum (hints.h): a replica that is down, cannot be reached, or
 *          has not acked by a quarter of the op's time (coord_late_tick,
 *          on the tick) has its SYNC sent to a stand-in instead, as a HINT
 *          naming it: the first live node past the top N walking the ring
 *          forward from the partition (v->owner), one per replica; the
 *          stand-in's ack counts for that replica (only writes; reads,
 *          read-modify-writes' reads and EXEC stay as they are);
 *   REPAIR the client has its answer; late GET answers are awaited until
 *          all are in or the deadline, then every replica whose state was
 *          missing or differs (replica_same) gets a SYNC of the merged one;
 *   FWD    a FORWARD to a replica; its REPLY's RESP bytes complete the
 *          client's request (sub-result status parsed from the first byte).
 *          A memcached request goes as memcached text (WIRE_MSG_MC: one
 *          request, a get's one key) and its memcached reply bytes come
 *          back; noreply stays at the origin, which relays nothing then.
 *          A keyed read's forward (a read may run twice; a write is
 *          never sent to a second replica for this) still unanswered after 500 ms (or a quarter of its time) goes
 *          to the next live replica too, once; the first answer is relayed
 *          (coord_fwd_watch: a stopped replica costs no request-timeout).
 *          A new read's or plain write's forward skips a first live
 *          replica that has gone silent on this shard's links
 *          (coord_forward_target, peerlink_is_silent), and one of a
 *          partition this node is releasing goes first to a member that
 *          told it it holds the partition whole, past one still pulling
 *          it (a joiner: transfer_whole_replicas). One refused with
 *          COORD_VIEW_CHANGING (nothing of it ran) is sent again to the
 *          replica of this shard's view of then (coord_again_queue; a
 *          write only by its client's node, while that client has sent
 *          nothing after it).
 *          Forwards waiting on a node whose link ended (killed,
 *          restarted, a refused or timed-out handshake) end at once: a
 *          read goes to the next replica, a write gets -UNAVAILABLE
 *          (coord_lost_turn);
 * Too few live replicas: -UNAVAILABLE at once when failure detection
 * already says so, else when the deadline passes.
 *
 * A transaction (EXEC, cmd_multi.h) is one operation over every key it
 * touches, all of one slot: see "transactions" below.
 *
 * The replica side (coord_on_request): GET exports the key's state, SYNC
 * applies one (answered once its record is durable, as a client's write),
 * both only for a partition this node holds a replica of (else ERROR); a
 * HINT is kept in the hint log (hints.h), never in the store, so a
 * stand-in never serves the key (a HINT at a replica is its SYNC);
 * FORWARD runs a client command coordinated here and answers its RESP
 * bytes (WIRE_MSG_MC: one keyed memcached request, run as a local
 * memcached client's, answered with its whole reply whatever its
 * noreply). A FORWARD passes a client's checks first (arity, key sizes,
 * MISCONF for FLUSHALL), and one reaching a node that holds no replica of its key (the
 * sender's view was another) is sent on once to the first live replica
 * (WIRE_MSG_HOPPED; a second hop is refused with TRYAGAIN), so no node
 * outside the preference list stores a key or counts itself toward W/R.
 * RING.LOCAL, a keyspace command's node-local form, goes to keyspace.c.
 * Values beyond RAM: the coordinator reads its key's cold value back before
 * it starts (coord_wait_value), and again if it went cold while the
 * replicas answered a READ (coord_load_again); a GET or SYNC whose key's
 * value is cold here is copied and parked until it is read back
 * (coord_park), then served once more.
 *
 * Reaping (coord_reap, from the shard's tick): a tombstone past
 * tombstone-grace is only a candidate in a cluster (replica_reap_offer). A
 * reap check, an operation of phase REAP, sends GET to every other replica
 * of its partition (all N_eff of the preference list: one that is down, or
 * not in the view, means "not now", and nothing is sent). When every one
 * answered before the deadline with NOT_FOUND or the same state as the
 * tombstone here (replica_same), and the tombstone here is unchanged, it is
 * deleted (store_delete: a delete record in the log). NOT_FOUND is fine: a
 * replica that reaped did so after its own check, and holds nothing that
 * could bring the value back. A replica still pulling the partition that
 * lacks the key does not say NOT_FOUND (the GET carries WIRE_MSG_REAP): the
 * key may be on its way to it with the very value the tombstone deleted
 * (from a source that missed the delete), so it answers UNAVAILABLE, and
 * the check is deferred until its transfer is over. An answer holding
 * anything else (an older value, a newer write) is merged here and the
 * merged state SYNCed to it, as read repair does, and the next pass checks
 * again; no answer: later.
 * So a replica down for longer than tombstone-grace holds every other
 * replica's tombstones of its partitions until it is back (Cassandra's
 * gc_grace, without its caveat: the delete cannot come back from it). At
 * most COORD_REAPS_MAX checks are in flight per shard, one per key.
 *
 * Left to others: the links (peerlink.h), the versions (replica.h), the
 * command handlers and request routing (cmd.c asks coord_route()). */
#include "coord.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <mimalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aae.h"
#include "cmd.h"
#include "cmd_bits.h"
#include "cmd_keys.h"
#include "cmd_lcs.h"
#include "cmd_multi.h"
#include "cmd_ring.h"
#include "conn.h"
#include "hints.h"
#include "keyhash.h"
#include "keyspace.h"
#include "log.h"
#include "mc.h"
#include "node.h"
#include "num.h"
#include "peerlink.h"
#include "persist.h"
#include "replica.h"
#include "ring.h"
#include "shard.h"
#include "snapshot.h"
#include "store.h"
#include "tier.h"
#include "transfer.h"

#define COORD_PEERS_MAX (RING_REPLICAS_MAX - 1)
#define COORD_SLOT_BITS 24
#define COORD_FWD_ARGS 64 /* a forwarded command's arguments parsed without an allocation */
#define COORD_MULTI_CELLS 256 /* a transaction's keys times peers at most (the wire id's byte) */
#define COORD_REAPS_MAX 8 /* reap checks in flight per shard at most */
#define COORD_POOL_MAX 1024       /* operations kept for reuse per shard at most */
#define COORD_POOL_BUF_MAX 4096   /* a kept buffer's capacity at most (larger ones go) */
#define COORD_KEY_SMALL 64        /* a key up to this long is copied into the op itself */

#define COORD_FWD_MC 1       /* a forwarded memcached request (coord_op.fwd_mc) */
#define COORD_FWD_MC_QUIET 2 /* the same with noreply: its reply is not relayed */
#define COORD_PULLING_MISS "pulling" /* a GET NOT_FOUND's text from a replica pulling the partition */

struct coord_member {
    char id[RING_ID_LEN + 1];
    char cluster_addr[GOSSIP_ADDR_MAX + 1];
    char client_addr[GOSSIP_ADDR_MAX + 1];
    bool is_down; /* down or left: not asked */
    bool is_owner; /* owns a partition: met on sloppy quorum's walk of the ring */
    int64_t down_since_ms; /* is_down: since when this shard's views say so (req_now_ms) */
};

struct coord_view {
    uint32_t refs; /* the shard's current pointer, and each operation's */
    uint64_t version;
    bool is_cluster;
    uint32_t q, n, self, n_members;
    struct coord_member *members;
    uint32_t *pref; /* q * n member indexes (RING_NONE: not in the snapshot) */
    uint32_t *owner; /* q member indexes: each partition's owner (sloppy quorum's walk) */
    uint8_t *is_mine;  /* q flags: this node answers the partition's keyspace commands */
    uint32_t *by_id;   /* n_members member indexes in node id order (SCAN's ranks) */
    uint64_t ring_epoch;
};

/* Counters (INFO): written by the owner with relaxed stores. */
struct coord_stats {
    uint64_t reads, writes, forwarded, moved, unavailable, read_repairs, syncs_in, gets_in,
        forwards_in, tombstones_reaped, reaps_deferred, reap_repairs, hinted_writes, gets_same,
        forwards_rerouted, forwards_resent, forwards_to_whole, reads_held_for_whole,
        reads_asked_source;
} __attribute__((aligned(64)));

/* Nodes whose links ended noted per loop turn at most (more wait for their
 * forwards' deadlines, as before). */
#define COORD_LOST_MAX 8

/* Sloppy quorum for late replicas: the writes still waiting for acks, in
 * the order they started (a FIFO of COORD_LATE_MAX; when it is full a write
 * is not watched, and only failure detection sends its SYNCs elsewhere). */
#define COORD_LATE_MAX 8192
struct coord_late {
    uint64_t req_id;
    int64_t at_ms; /* when peers not answered yet get a stand-in */
};

#define COORD_MISCONF_PEERS 8       /* peers remembered as refusing writes */
#define COORD_PEER_MISCONF_MS 2000  /* ... for this long after their last refusal */

struct coord {
    struct coord_view *view; /* NULL until the first snapshot */
    struct coord_op *free_ops; /* the pool: ended operations, for reuse */
    uint32_t nfree;
    struct replica_state before, after; /* coord_write_start's, kept between writes */
    uint32_t nreaps;         /* reap checks in flight: their keys' hashes */
    uint64_t reap_hash[COORD_REAPS_MAX];
    struct coord_late *late; /* COORD_LATE_MAX, made with the first cluster view */
    uint32_t late_head, late_len;
    struct coord_late *fwd_late; /* [fwd_cap] forwards that may go on (coord_fwd_tick) */
    uint32_t fwd_head, fwd_len, fwd_cap;
    struct coord_late *again; /* [COORD_AGAIN_MAX] forwards to send again (coord_again_send) */
    uint32_t again_head, again_len;
    char lost[COORD_LOST_MAX][RING_ID_LEN + 1]; /* nodes whose link ended (coord_lost_turn) */
    uint64_t lost_seq[COORD_LOST_MAX]; /* fwd_seq then: later sends went on new links */
    uint32_t nlost;
    uint64_t fwd_seq; /* forward sends so far (coord_op.fwd_seq) */
    int64_t misconf_until_ms; /* coord_refuses_writes: no write coordinated before */
    /* peers that refused a SYNC with MISCONF lately (coord_note_refusal) */
    struct {
        char id[RING_ID_LEN + 1];
        int64_t until_ms;
    } misconf_peer[COORD_MISCONF_PEERS];
    uint32_t nmisconf_peers;
    struct coord_stats stats;
};

#define COORD_STAT_ADD(sh, f, n)                                                                   \
    __atomic_store_n(&(sh)->coord->stats.f, (sh)->coord->stats.f + (n), __ATOMIC_RELAXED)
#define COORD_STAT(sh, f) COORD_STAT_ADD(sh, f, 1)

enum coord_phase { PH_READ, PH_WRITE, PH_REPAIR, PH_FWD, PH_REAP };
/* P_SAME: a READ's answer "I hold the state whose hash you sent" (no bytes). */
enum coord_peer { P_NONE, P_WAIT, P_OK, P_MISSING, P_FAIL, P_SAME };

struct coord_op {
    /* ---- the fields a peer's answer reads, in the first cache line ---- */
    struct coord_view *view;
    struct cmd_msg *m; /* the request coordinated; NULL once answered */
    uint8_t phase;
    bool is_rmw, is_ring_write;
    bool is_completing; /* its sub-result is in (maybe held for durability): answers
                           only count for repair until the done callback ran */
    bool is_loading;    /* its key's value went back to disk while the replicas
                           answered: progress waits until it is read back */
    bool has_hash;      /* READ: the GETs carried state_hash, this node's state's */
    bool is_reloaded : 1;  /* that happened once already (a second time: an error) */
    bool is_merged : 1;    /* READ: a replica's answer changed this node's state */
    bool is_run_early : 1; /* READ (not RMW): the command ran when the GETs went out */
    bool is_sure : 1;      /* READ: an answer (self's included) from a replica that holds
                              the partition whole, or that found the key: a miss of one
                              still pulling the partition is no proof (coord_lacks_keys) */
    bool asked_source : 1; /* READ, not sure: the GET went to the pull's source too */
    uint8_t st[COORD_PEERS_MAX]; /* enum coord_peer of peer k (P_NONE is 0) */
    uint32_t n_eff, need;
    uint32_t ok;      /* answers counted toward need, self included */
    uint32_t waiting; /* peers not answered yet */
    uint32_t npeers;
    uint32_t nkeys; /* EXEC: keys of one slot (see keys, below) */
    /* ---- the rest ---- */
    uint32_t src_k;        /* READ: the pull's source asked as peer src_k - 1 (0: none);
                              it is no replica: no write or repair goes to it */
    uint64_t state_hash;
    uint64_t early_seq;    /* is_run_early: its reply's durability hold */
    uint64_t early_writes; /* is_run_early: the store's writes then (stats.writes) */
    uint32_t partition, slot;
    uint32_t standin[COORD_PEERS_MAX]; /* is_hinted[k]: the node holding peer k's hint */
    bool is_hinted[COORD_PEERS_MAX];   /* peer k's write went to a stand-in (sloppy quorum) */
    uint8_t path[COORD_PEERS_MAX];     /* WRITE: COORD_PATH_* of peer k (its SYNC, its HINT) */
    uint64_t hold_seq;
    uint64_t parent; /* FWD: the client's request and sub-result */
    uint32_t parent_sub;
    uint8_t fwd_mc; /* FWD: 0 (RESP), COORD_FWD_MC, or COORD_FWD_MC_QUIET (noreply) */
    bool is_fwd_kept;  /* FWD: its command's bytes are in mine.body, its key in key
                          (coord_fwd_keep), for a second send */
    bool is_fwd_retry; /* FWD: may go on to the next live replica once (coord_fwd_tick) */
    bool is_fwd_write; /* FWD: a write (sent twice only after a refusal: unrun) */
    uint8_t fwd_again; /* FWD: times sent again after a view-changing refusal */
    bool is_fwd_again_due; /* FWD: queued to be sent again (coord_again_queue) */
    bool is_fwd_keyed;     /* FWD: one key's, sent to the shard of its partition */
    uint8_t fwd_flags, fwd_r, fwd_w; /* FWD: its message's (for a second send) */
    uint32_t fwd_to; /* FWD: the member it went to */
    uint64_t fwd_seq; /* FWD: coord.fwd_seq at its last send (coord_lost_turn) */
    char *key; /* a copy (repair comes after the message went back) */
    uint32_t klen;
    uint64_t hash;
    /* EXEC (coord_multi_start): nkeys keys of one slot (pointing into m's
     * arguments); st and got then only list the peers, and key i's state at
     * peer k is mst/mgot[i * npeers + k], that index also the wire id's byte. */
    struct resp_arg *keys;
    uint8_t *mst;
    struct replica_state *mgot;
    /* ---- kept by the shard's pool (coord_op_new zeroes only what is above) ---- */
    struct coord_op *next_free;
    uint32_t cap;      /* peers the arrays below hold: the view's other members at most */
    uint32_t ngot;     /* got[0..ngot) are initialised (their buffers kept for the next op) */
    struct replica_state *got; /* [cap] a peer's GET answer (coord_op_got) */
    uint32_t *peer;            /* [cap] the peers' member indexes */
    uint32_t key_cap;  /* bytes at key_heap */
    char *key_heap;    /* a key longer than key_small */
    struct replica_state mine; /* REAP: the tombstone checked */
    char key_small[COORD_KEY_SMALL];
    _Alignas(8) char room[]; /* got, peer */
};
_Static_assert(offsetof(struct coord_op, nkeys) + sizeof(uint32_t) <= 64,
               "what an answer reads fits in the op's first cache line");

/* ---- the view ---- */

static void coord_view_put(struct coord_view *v)
{
    if (!v || --v->refs > 0)
        return;
    mi_free(v->members);
    mi_free(v->pref);
    mi_free(v->owner);
    mi_free(v->is_mine);
    mi_free(v->by_id);
    mi_free(v);
}

static uint32_t coord_n_eff(const struct node *n, const struct coord_view *v);
static bool coord_live(const struct coord_view *v, uint32_t m);

static _Thread_local const struct coord_view *coord_sorting; /* qsort has no argument */

static int coord_by_id_cmp(const void *a, const void *b)
{
    const struct coord_member *ms = coord_sorting->members;
    return strcmp(ms[*(const uint32_t *)a].id, ms[*(const uint32_t *)b].id);
}

/* Keyspace commands (keyspace.h): which partitions this node answers for
 * (the first live node of the list, as CLUSTER SLOTS's master; the first
 * node when none is live), and the members in id order. -ENOMEM. */
static int coord_view_keyspace(const struct node *n, struct coord_view *v)
{
    v->is_mine = mi_calloc(v->q, 1);
    v->by_id = mi_calloc(v->n_members ? v->n_members : 1, sizeof *v->by_id);
    if (!v->is_mine || !v->by_id)
        return -ENOMEM;
    uint32_t n_eff = coord_n_eff(n, v);
    for (uint32_t p = 0; p < v->q; p++) {
        const uint32_t *list = v->pref + (size_t)p * v->n;
        uint32_t first = list[0];
        for (uint32_t k = 0; k < n_eff; k++) {
            if (coord_live(v, list[k])) {
                first = list[k];
                break;
            }
        }
        v->is_mine[p] = first == v->self;
    }
    for (uint32_t i = 0; i < v->n_members; i++)
        v->by_id[i] = i;
    coord_sorting = v;
    qsort(v->by_id, v->n_members, sizeof *v->by_id, coord_by_id_cmp);
    coord_sorting = NULL;
    return 0;
}

/* Since when member cm (down) has been down: the old view's time when it
 * said so too, else now. */
static int64_t coord_down_since(const struct coord_view *old, uint32_t i,
                                const struct coord_member *cm)
{
    for (uint32_t k = 0; old && k < old->n_members; k++) {
        uint32_t j = (i + k) % old->n_members; /* the same index first */
        if (strcmp(old->members[j].id, cm->id) == 0)
            return old->members[j].is_down ? old->members[j].down_since_ms : req_now_ms();
    }
    return req_now_ms();
}

static struct coord_view *coord_view_build(const struct node *n, const struct snapshot *s,
                                           const struct coord_view *old)
{
    const struct ring *ring = s->ring;
    struct coord_view *v = mi_zalloc(sizeof *v);
    if (!v)
        return NULL;
    v->refs = 1;
    v->version = s->version;
    v->q = ring->q;
    v->n = ring->n;
    v->ring_epoch = ring->epoch;
    v->self = s->self;
    v->n_members = s->n_members;
    v->members = mi_calloc(s->n_members, sizeof *v->members);
    v->pref = mi_calloc((size_t)ring->q * ring->n, sizeof *v->pref);
    v->owner = mi_calloc(ring->q, sizeof *v->owner);
    if (!v->members || !v->pref || !v->owner) {
        coord_view_put(v);
        return NULL;
    }
    for (uint32_t i = 0; i < s->n_members; i++) {
        const struct snapshot_member *sm = &s->members[i];
        struct coord_member *cm = &v->members[i];
        memcpy(cm->id, sm->id, sizeof cm->id);
        memcpy(cm->cluster_addr, sm->cluster_addr, sizeof cm->cluster_addr);
        memcpy(cm->client_addr, sm->client_addr, sizeof cm->client_addr);
        cm->is_down = sm->status == MEMBER_S_DOWN || sm->status == MEMBER_S_LEFT;
        if (cm->is_down)
            cm->down_since_ms = coord_down_since(old, i, cm);
    }
    bool alone = true;
    for (uint32_t p = 0; p < ring->q; p++) {
        const uint32_t *list = ring_pref(ring, p);
        for (uint32_t k = 0; k < ring->n; k++) {
            uint32_t m = s->by_ring[list[k]];
            v->pref[(size_t)p * ring->n + k] = m;
            alone &= m == s->self;
        }
        v->owner[p] = ring->owner[p] == RING_NONE ? RING_NONE : s->by_ring[ring->owner[p]];
        if (v->owner[p] != RING_NONE)
            v->members[v->owner[p]].is_owner = true;
    }
    /* Partitions of the node's keys must be the ring's: else stay alone. */
    v->is_cluster = !alone && ring->q == n->npartitions;
    if (coord_view_keyspace(n, v) != 0) {
        coord_view_put(v);
        return NULL;
    }
    if (!alone && ring->q != n->npartitions)
        log_warn("the ring has %u partitions, this node %u: serving its own keys alone", ring->q,
                 n->npartitions);
    return v;
}

static void coord_op_destroy(struct coord_op *op);

int coord_init(struct shard *sh)
{
    sh->coord = mi_zalloc_aligned(sizeof *sh->coord, 64);
    return sh->coord ? 0 : -ENOMEM;
}

void coord_fini(struct shard *sh)
{
    if (!sh->coord)
        return;
    while (sh->coord->free_ops) {
        struct coord_op *op = sh->coord->free_ops;
        sh->coord->free_ops = op->next_free;
        coord_op_destroy(op);
    }
    replica_state_fini(&sh->coord->before);
    replica_state_fini(&sh->coord->after);
    coord_view_put(sh->coord->view);
    mi_free(sh->coord->late);
    mi_free(sh->coord->fwd_late);
    mi_free(sh->coord->again);
    mi_free(sh->coord);
    sh->coord = NULL;
}

static uint32_t coord_partition_of(const void *arg, const void *key, uint32_t klen)
{
    const struct node *n = arg;
    uint64_t hash = n->partition_fn == KEYHASH_FN_XXH3 ? keyhash(key, klen) : 0;
    return node_partition_of(n, key, klen, hash);
}

/* The table's partition function (table_split): hash is the key's keyhash. */
static uint32_t coord_table_part_of(const void *arg, const void *key, uint32_t klen,
                                    uint64_t hash)
{
    return node_partition_of(arg, key, klen, hash);
}

static void coord_again_send(struct shard *sh, bool is_view_new);

void coord_turn(struct shard *sh)
{
    struct node *n = sh->node;
    if (!sh->coord || !n->snapshots)
        return;
    const struct snapshot *s = snapshot_read_begin(n->snapshots, sh->id);
    struct coord_view *old = sh->coord->view;
    if (s && s->ring && (!old || old->version != s->version)) {
        struct coord_view *v = coord_view_build(n, s, old);
        if (v) {
            sh->coord->view = v;
            /* taken with the ring: never a ring of one taken after a leave
             * with keys served, nor the ring that ended it refused */
            sh->left_cluster = s->left_cluster;
            /* Membership changed (a node back up, or restarted under a new
             * incarnation): the members up may be dialled at once, whatever
             * the backoff of the dials that failed while they were away. */
            for (uint32_t i = 0; i < v->n_members; i++)
                if (i != v->self && !v->members[i].is_down)
                    peerlink_retry_now(sh, v->members[i].id);
            coord_view_put(old);
            /* A cluster's table is split by partition (once): a transfer's
             * or anti-entropy's walk of a partition then costs that
             * partition's keys, not the shard's. */
            if (v->is_cluster && table_split(sh->store->table, n->npartitions,
                                             coord_table_part_of, n) != 0)
                log_warn("no memory to split the table by partition: walks of one "
                         "partition cover the shard's keys");
            if (v->is_cluster && store_track_partitions(sh->store, n->npartitions,
                                                        coord_partition_of, n) != 0)
                log_warn("no memory for per-partition key counts: DBSIZE counts 0 here");
            if (v->is_cluster && !sh->coord->late) /* NULL: late replicas get no stand-in */
                sh->coord->late = mi_calloc(COORD_LATE_MAX, sizeof *sh->coord->late);
            log_debug("cluster view %" PRIu64 ": %u members, preference lists of %u, %s",
                      v->version, v->n_members, v->n,
                      v->is_cluster ? "coordinating" : "serving alone");
            if (sh->coord->again_len) /* refused forwards: this view may know better */
                coord_again_send(sh, true);
        }
    }
    snapshot_read_end(n->snapshots, sh->id);
}

bool coord_is_cluster(const struct shard *sh)
{
    return sh->coord && sh->coord->view && sh->coord->view->is_cluster;
}

bool coord_answers_for(const struct shard *sh, uint32_t partition)
{
    if (!coord_is_cluster(sh))
        return true;
    const struct coord_view *v = sh->coord->view;
    return partition < v->q && v->is_mine[partition];
}

bool coord_rank_member(const struct shard *sh, uint32_t *rank, uint32_t *member, bool *is_self)
{
    if (!coord_is_cluster(sh))
        return false;
    const struct coord_view *v = sh->coord->view;
    for (uint32_t k = *rank; k < v->n_members; k++) {
        uint32_t m = v->by_id[k];
        if (coord_live(v, m)) {
            *rank = k;
            *member = m;
            *is_self = m == v->self;
            return true;
        }
    }
    return false;
}

static uint32_t coord_n_eff(const struct node *n, const struct coord_view *v)
{
    uint32_t want = (uint32_t)n->cfg->replicas;
    return want < v->n ? want : v->n;
}

uint32_t coord_replicas(const struct shard *sh, uint32_t partition)
{
    (void)partition; /* every list has the ring's length */
    if (!coord_is_cluster(sh))
        return 1;
    return coord_n_eff(sh->node, sh->coord->view);
}

static uint32_t coord_quorum(uint8_t asked, int64_t setting, uint32_t n);

uint32_t coord_write_quorum(const struct shard *sh, uint8_t asked)
{
    if (!coord_is_cluster(sh))
        return 1;
    return coord_quorum(asked, sh->node->cfg->write_quorum,
                        coord_n_eff(sh->node, sh->coord->view));
}

static const uint32_t *coord_list(const struct coord_view *v, uint32_t p)
{
    return v->pref + (size_t)p * v->n;
}

/* True while some shard's data log of this node cannot persist (MISCONF). */
static bool coord_log_failing(const struct node *n)
{
    return __atomic_load_n(&n->log_failing, __ATOMIC_RELAXED) > 0;
}

/* Whether this node coordinates no write (nor a read whose reply holds the
 * first replica's own state: memcached's gets) now: its data log cannot
 * persist (MISCONF), or could not within the last COORD_MISCONF_HOLD_MS,
 * so that a disk that fails and recovers by turns (a full one: retries,
 * compaction freeing a little) does not move a slot's read-modify-writes
 * back and forth between two coordinators. One clock read per write only
 * while the hold lasts. */
#define COORD_MISCONF_HOLD_MS 5000
static bool coord_refuses_writes(struct shard *sh)
{
    struct coord *co = sh->coord;
    if (__builtin_expect(coord_log_failing(sh->node), 0)) {
        co->misconf_until_ms = req_now_ms() + COORD_MISCONF_HOLD_MS;
        return true;
    }
    if (__builtin_expect(co->misconf_until_ms == 0, 1))
        return false;
    if (req_now_ms() < co->misconf_until_ms)
        return true;
    co->misconf_until_ms = 0;
    return false;
}

static bool coord_live(const struct coord_view *v, uint32_t m)
{
    return m != RING_NONE && (m == v->self || !v->members[m].is_down);
}

/* Whether this node is among the first n_eff of partition p's list: it
 * holds a replica of p's keys. */
static bool coord_holds(const struct coord_view *v, uint32_t p, uint32_t n_eff)
{
    const uint32_t *list = coord_list(v, p);
    for (uint32_t k = 0; k < n_eff; k++)
        if (list[k] == v->self)
            return true;
    return false;
}

/* R or W asked (net/conn.h CONN_CONSISTENCY_*: the setting, a number,
 * QUORUM, ALL) within 1..n. */
static uint32_t coord_quorum(uint8_t asked, int64_t setting, uint32_t n)
{
    int64_t v = asked == CONN_CONSISTENCY_DEFAULT  ? setting
                : asked == CONN_CONSISTENCY_QUORUM ? n / 2 + 1
                : asked == CONN_CONSISTENCY_ALL    ? n
                                                   : asked;
    return v < 1 ? 1 : v > n ? n : (uint32_t)v;
}

/* ---- routing (the client's shard) ---- */

/* Where a read's or a plain write's forward goes (any replica may
 * coordinate those, as a client connected to it would have it): when this
 * node is releasing the partition, the first live, not silent member that
 * told it it holds the partition whole (transfer_whole_replicas); else the
 * first live replica of the list, unless it has gone silent on this shard's
 * links (peerlink_is_silent: stopped, or cut off, while failure detection
 * still calls it live, which takes seconds, or never comes when only this
 * node is cut off from it; or just slow: no harm then); then the next live
 * replica that has not; the first live one when every one is silent. Only
 * new forwards change course: one already sent is sent again as a write
 * only when refused unrun (coord_again_queue), never on a silence
 * (coord_fwd_watch). Such a request is forwarded only by a node that holds
 * no replica of its key: self is not among the first n_eff. */
static uint32_t coord_forward_target(struct shard *sh, const struct coord_view *v, uint32_t p,
                                     const uint32_t *list, uint32_t n_eff, uint32_t first_live)
{
    int64_t now = req_now_ms();
    /* This node is releasing p (it left p's list): the members that told it
     * they hold p whole come first. The others are still pulling p (a
     * joiner), their loops busy applying the stream, and a read at R = 1
     * there misses what has not arrived yet. */
    uint32_t whole = transfer_whole_replicas(sh->node, p, v->ring_epoch);
    for (uint32_t k = 0; whole && k < n_eff && k < 32; k++) {
        uint32_t m = list[k];
        if (!(whole & 1u << k) || m == v->self || !coord_live(v, m) ||
            peerlink_is_silent(sh, v->members[m].id, now))
            continue;
        if (m != first_live)
            COORD_STAT(sh, forwards_to_whole);
        return m;
    }
    if (!peerlink_is_silent(sh, v->members[first_live].id, now))
        return first_live;
    for (uint32_t k = 0; k < n_eff; k++) {
        uint32_t m = list[k];
        if (m == first_live || m == v->self || !coord_live(v, m))
            continue;
        if (!peerlink_is_silent(sh, v->members[m].id, now)) {
            COORD_STAT(sh, forwards_rerouted);
            return m;
        }
    }
    return first_live;
}

static bool coord_misconf(struct shard *sh, char *why, size_t len);
static bool coord_pulling(struct shard *sh, uint32_t p);
static bool coord_lacks_keys(struct shard *sh, uint32_t p);

void coord_route(struct shard *sh, const struct conn *c, const void *key, uint32_t klen,
                 uint64_t hash, uint32_t flags, struct coord_route *out)
{
    coord_route_slot(sh, c, key, klen, hash, keyhash_slot(key, klen), flags, out);
}

void coord_route_slot(struct shard *sh, const struct conn *c, const void *key, uint32_t klen,
                      uint64_t hash, uint32_t slot, uint32_t flags, struct coord_route *out)
{
    out->kind = COORD_LOCAL;
    out->is_replica = false;
    out->is_hop = (flags & CMD_FORWARDED) != 0;
    out->is_keyed = true;
    /* also for EXEC's MOVED made a FORWARD (cmd.c) */
    out->is_rmw = (flags & (CMD_RMW | CMD_WRITE)) != 0;
    out->error[0] = '\0';
    if (!coord_is_cluster(sh))
        return;
    const struct coord_view *v = sh->coord->view;
    uint32_t p = node_partition_of_slot(sh->node, slot, hash);
    out->partition = p;
    out->slot = slot;
    uint32_t n_eff = coord_n_eff(sh->node, v);
    const uint32_t *list = coord_list(v, p);
    /* A node whose data log cannot persist now (MISCONF) coordinates no
     * write: it routes one as a node that holds no replica does, to the
     * first live replica but itself, whose SYNC to it is refused while the
     * others make W. So one node's full disk stops no write through it. */
    bool self_refuses = (flags & (CMD_RMW | CMD_WRITE | CMD_FIRST_LIVE)) && coord_refuses_writes(sh);
    uint32_t first_live = RING_NONE;
    bool is_replica = false, is_listed = false;
    for (uint32_t k = 0; k < n_eff; k++) {
        bool takes = coord_live(v, list[k]) && !(self_refuses && list[k] == v->self);
        if (first_live == RING_NONE && takes)
            first_live = list[k];
        is_listed |= list[k] == v->self;
    }
    is_replica = is_listed && !self_refuses;
    self_refuses &= is_listed; /* a node that holds no replica routes as always */
    if (first_live == RING_NONE) {
        if (!self_refuses || !coord_misconf(sh, out->error, sizeof out->error))
            snprintf(out->error, sizeof out->error,
                     "UNAVAILABLE 0 of 1 replicas answered (%u in the preference list)", n_eff);
        out->kind = COORD_DOWN;
        COORD_STAT(sh, unavailable);
        return;
    }
    out->is_replica = is_replica;
    /* a peer's request is coordinated at any replica; a node that holds
     * none sends it on (is_hop: once); a client's read-modify-write, and a
     * read whose reply holds the first live replica's own state (gets),
     * goes to that replica */
    bool is_forwarded = (flags & CMD_FORWARDED) != 0;
    if (first_live == v->self ||
        (is_replica && (is_forwarded || !(flags & (CMD_RMW | CMD_FIRST_LIVE))))) {
        out->kind = COORD_HERE;
        return;
    }
    out->to = first_live;
    if (c && c->cluster_aware && !is_forwarded && !self_refuses) {
        snprintf(out->error, sizeof out->error, "MOVED %u %s", slot,
                 v->members[first_live].client_addr);
        out->kind = COORD_MOVED;
        COORD_STAT(sh, moved);
        return;
    }
    /* a read-modify-write stays with the first live replica, silent or not
     * (two coordinators of one would lose an update), and so does a read
     * whose reply holds that replica's own state (memcached's gets: a cas
     * unique is a node's own, and cas goes there) */
    out->to = flags & (CMD_RMW | CMD_FIRST_LIVE)
                  ? first_live
                  : coord_forward_target(sh, v, p, list, n_eff, first_live);
    out->kind = COORD_FORWARD;
}

/* ---- operations ---- */

static bool coord_op_done(struct req_table *t, struct req *r, enum req_end how);

static uint64_t coord_wire_id(uint64_t req_id, uint32_t k)
{
    return req_id | (uint64_t)k << COORD_SLOT_BITS;
}

/* How much earlier than the request it serves an operation ends, so that
 * its -UNAVAILABLE (not the client's -TIMEOUT) is the answer: more than a
 * loop turn of a sleeping shard (its 100 ms tick ends expired requests)
 * plus a hop back, within a quarter of request-timeout. */
#define COORD_MARGIN_MAX_MS 250
static int64_t coord_margin_ms(const struct shard *sh)
{
    int64_t m = sh->request_timeout_ms / 4;
    return m > COORD_MARGIN_MAX_MS ? COORD_MARGIN_MAX_MS : m;
}

/* Operations are pooled per shard (struct coord.free_ops): a new one comes
 * from the pool when it holds one, and only the fields above next_free are
 * zeroed; the peers' answer buffers (got[]), the REAP state and the key's
 * copy keep their allocations from one operation to the next (up to
 * COORD_POOL_BUF_MAX bytes each), so a request allocates nothing here once
 * the pool is warm, and touches got[] only for the peers it has. */
static void coord_state_keep(struct replica_state *st)
{
    if (st->meta.cap > COORD_POOL_BUF_MAX || st->body.cap > COORD_POOL_BUF_MAX) {
        replica_state_fini(st);
        replica_state_init(st);
    } else {
        replica_state_clear(st);
    }
}

static void coord_op_destroy(struct coord_op *op)
{
    for (uint32_t k = 0; k < op->ngot; k++)
        replica_state_fini(&op->got[k]);
    replica_state_fini(&op->mine);
    mi_free(op->key_heap);
    mi_free(op);
}

/* Back to the pool (or freed past COORD_POOL_MAX). */
static void coord_op_release(struct coord *co, struct coord_op *op)
{
    if (co->nfree >= COORD_POOL_MAX) {
        coord_op_destroy(op);
        return;
    }
    for (uint32_t k = 0; k < op->ngot; k++)
        coord_state_keep(&op->got[k]);
    coord_state_keep(&op->mine);
    if (op->key_cap > COORD_POOL_BUF_MAX) {
        mi_free(op->key_heap);
        op->key_heap = NULL;
        op->key_cap = 0;
    }
    op->next_free = co->free_ops;
    co->free_ops = op;
    co->nfree++;
}

/* An operation ending at deadline_ms (0: request-timeout from this turn
 * (shard_turn_ms), less the margin). */
static struct coord_op *coord_op_new(struct shard *sh, int64_t deadline_ms, struct req **r_out)
{
    if (!deadline_ms)
        deadline_ms = shard_deadline(sh) - coord_margin_ms(sh);
    struct coord *co = sh->coord;
    /* peers are other members of the view: the arrays hold that many (3
     * nodes: 2), not COORD_PEERS_MAX */
    uint32_t n_members = sh->coord->view->n_members;
    uint32_t cap = n_members < 1 ? 1 : n_members > COORD_PEERS_MAX ? COORD_PEERS_MAX : n_members;
    struct coord_op *op = co->free_ops;
    if (op) {
        co->free_ops = op->next_free;
        co->nfree--;
        if (co->free_ops) /* the next one, freed a loop turn ago: cold by now */
            __builtin_prefetch(&co->free_ops->next_free, 1);
        if (op->cap < cap) { /* the view grew: a larger one */
            coord_op_destroy(op);
            op = NULL;
        }
    }
    if (!op) {
        op = mi_malloc_aligned(sizeof *op + cap * (sizeof *op->got + sizeof *op->peer), 64);
        if (!op)
            return NULL;
        op->cap = cap;
        op->got = (struct replica_state *)(void *)op->room;
        op->peer = (uint32_t *)(void *)(op->got + cap);
        op->ngot = 0;
        op->key_cap = 0;
        op->key_heap = NULL;
        replica_state_init(&op->mine);
    }
    memset(op, 0, offsetof(struct coord_op, next_free));
    struct req *r = req_new(&sh->reqs, 1, 1, coord_op_done, deadline_ms);
    if (!r || (uint32_t)r->id >= 1u << COORD_SLOT_BITS) {
        if (r)
            req_cancel(&sh->reqs, r->id); /* owner_ptr is still NULL: nothing to free */
        coord_op_release(co, op);
        return NULL;
    }
    op->view = sh->coord->view;
    op->view->refs++;
    r->owner_ptr = op;
    *r_out = r;
    return op;
}

/* The op's copy of its key (repair and reaping come after the message went
 * back): in the op when short, else in a buffer the pool keeps. */
static bool coord_op_set_key(struct coord_op *op, const void *key, uint32_t klen)
{
    if (klen <= COORD_KEY_SMALL) {
        op->key = op->key_small;
    } else {
        if (klen > op->key_cap) {
            char *k = mi_malloc(klen);
            if (!k)
                return false;
            mi_free(op->key_heap);
            op->key_heap = k;
            op->key_cap = klen;
        }
        op->key = op->key_heap;
    }
    memcpy(op->key, key, klen);
    op->klen = klen;
    return true;
}

/* Peer k's answer state, initialised on first use (kept by the pool). */
static struct replica_state *coord_op_got(struct coord_op *op, uint32_t k)
{
    for (; op->ngot <= k; op->ngot++)
        replica_state_init(&op->got[op->ngot]);
    return &op->got[k];
}

static void coord_op_free(struct shard *sh, struct coord_op *op)
{
    for (uint32_t i = 0; op->mgot && i < op->nkeys * (op->npeers ? op->npeers : 1); i++)
        replica_state_fini(&op->mgot[i]);
    mi_free(op->mgot);
    mi_free(op->mst);
    mi_free(op->keys);
    coord_view_put(op->view);
    coord_op_release(sh->coord, op);
}

/* Milliseconds from now_ms to deadline_ms, at least 1 (a wire deadline). */
static int32_t coord_left_from(int64_t now_ms, int64_t deadline_ms)
{
    int64_t left = deadline_ms - now_ms;
    return left < 1 ? 1 : left > INT32_MAX ? INT32_MAX : (int32_t)left;
}

/* The same from now (the clock read). */
static int32_t coord_left(int64_t deadline_ms)
{
    return coord_left_from(req_now_ms(), deadline_ms);
}

/* The time r has left, for a message sent this turn (shard_turn_ms). */
static int32_t coord_deadline_left(const struct shard *sh, const struct req *r)
{
    return coord_left_from(shard_turn_ms(sh), r->deadline_ms);
}

/* Sends a request to member m of the op's view. */
static int coord_send(struct shard *sh, const struct coord_view *v, uint32_t m, struct wire_msg *wm)
{
    return peerlink_request(sh, v->members[m].id, v->members[m].cluster_addr, wm);
}

/* A SYNC of state st for key to member m; id 0 when no answer is awaited
 * (read repair: its REPLY finds no request). */
static int coord_send_state(struct shard *sh, const struct coord_view *v, uint32_t m,
                            uint64_t id, uint8_t wop, const struct coord_op *op,
                            const struct req *r, const struct resp_arg *key,
                            const struct replica_state *st, const struct wire_bytes *hint_for)
{
    struct wire_bytes values[2] = {{(const uint8_t *)st->body.data, (uint32_t)st->body.len}};
    if (hint_for)
        values[1] = *hint_for;
    struct wire_msg wm = {.kind = WIRE_REQUEST,
                          .id = id,
                          .op = wop,
                          .deadline_ms = (uint32_t)coord_deadline_left(sh, r),
                          .partition = (uint16_t)op->partition,
                          .slot = (uint16_t)op->slot,
                          .expire_at_ms = st->expire_at_ms,
                          .key = {(const uint8_t *)key->ptr, key->len},
                          .meta = {(const uint8_t *)st->meta.data, (uint32_t)st->meta.len},
                          .n_values = hint_for ? 2 : 1,
                          .values = values};
    return coord_send(sh, v, m, &wm);
}

static int coord_send_sync(struct shard *sh, const struct coord_view *v, uint32_t m, uint64_t id,
                           const struct coord_op *op, const struct req *r,
                           const struct resp_arg *key, const struct replica_state *st)
{
    return coord_send_state(sh, v, m, id, WIRE_OP_SYNC, op, r, key, st, NULL);
}

/* ---- sloppy quorum (hints.h) ---- */

/* Whether member m cannot stand in: none, this node, not live, among the
 * list's first n_eff or in used[0..nused). */
static bool coord_standin_taken(const struct coord_view *v, const uint32_t *list,
                                uint32_t n_eff, const uint32_t *used, uint32_t nused, uint32_t m)
{
    bool is_taken = m == RING_NONE || m == v->self || !coord_live(v, m);
    for (uint32_t k = 0; k < n_eff && !is_taken; k++)
        is_taken = list[k] == m;
    for (uint32_t k = 0; k < nused && !is_taken; k++)
        is_taken = used[k] == m;
    return is_taken;
}

/* The first live node met walking the ring forward from partition p (the
 * partitions' owners, in order) that is not among p's top n_eff, not this
 * node and not in used[0..nused): a write's stand-in for a preference-list
 * node that is down or late. RING_NONE when there is none.
 * (When no member could stand in, as in a cluster of N nodes or fewer, the
 * members say so first: the walk of every partition is not made for each
 * of a write's late peers, which a huge MSET paid for every key.) */
static uint32_t coord_standin(const struct coord_view *v, uint32_t p, uint32_t n_eff,
                              const uint32_t *used, uint32_t nused)
{
    const uint32_t *list = coord_list(v, p);
    bool any = false;
    for (uint32_t m = 0; m < v->n_members && !any; m++)
        any = v->members[m].is_owner && !coord_standin_taken(v, list, n_eff, used, nused, m);
    for (uint32_t i = 1; any && i <= v->q; i++) {
        uint32_t m = v->owner[(p + i) % v->q];
        if (!coord_standin_taken(v, list, n_eff, used, nused, m))
            return m;
    }
    return RING_NONE;
}

/* Whether a hint for member m may be taken: max-hint-window is not 0 and m
 * has not been down longer than it (a live but late m: yes). How long is
 * this node's own count (coord_down_since): it starts again when this node
 * restarts, since neither the views nor gossip (member.h's health_since_ms
 * is local too) keep when a member went down across a restart; so a
 * long-dead member gets hints for up to max-hint-window after each restart
 * of a coordinator. They are bounded all the same: each expires
 * max-hint-window after it was taken (hints.h), and those of a member that
 * was removed go to its partitions' replicas of now. */
static bool coord_hint_window(const struct shard *sh, const struct coord_view *v, uint32_t m)
{
    int64_t window_s = sh->node->cfg->max_hint_window_s;
    if (window_s <= 0 || m == RING_NONE)
        return false;
    const struct coord_member *cm = &v->members[m];
    return !cm->is_down || req_now_ms() - cm->down_since_ms <= window_s * 1000;
}

/* How many of the op's down peers a write can give to stand-ins now (each
 * its own): what sloppy quorum adds to the live replicas. */
static uint32_t coord_hintable(const struct shard *sh, const struct coord_view *v,
                               const struct coord_op *op)
{
    uint32_t used[COORD_PEERS_MAX], nused = 0;
    for (uint32_t k = 0; k < op->npeers; k++) {
        if (op->st[k] != P_NONE || !coord_hint_window(sh, v, op->peer[k]))
            continue;
        uint32_t m = coord_standin(v, op->partition, op->n_eff, used, nused);
        if (m == RING_NONE)
            break;
        used[nused++] = m;
    }
    return nused;
}

/* Whether a replica's refusal is MISCONF's (coord_misconf's text). */
static bool coord_is_misconf(const struct wire_bytes *text)
{
    return text->len >= 9 && memcmp(text->ptr, "MISCONF ", 8) == 0;
}

/* coord_note_refusal (peerlink.h): a SYNC refused with MISCONF marks its
 * peer for COORD_PEER_MISCONF_MS (see coord_peer_misconf). */
void coord_note_refusal(struct shard *sh, const char *peer_id, const struct wire_msg *wm)
{
    if (wm->op != WIRE_OP_SYNC || !coord_is_misconf(&wm->text) || !peer_id[0])
        return;
    struct coord *co = sh->coord;
    int64_t until = req_now_ms() + COORD_PEER_MISCONF_MS;
    uint32_t i = 0, oldest = 0;
    for (; i < co->nmisconf_peers && strcmp(co->misconf_peer[i].id, peer_id) != 0; i++)
        if (co->misconf_peer[i].until_ms < co->misconf_peer[oldest].until_ms)
            oldest = i;
    if (i == co->nmisconf_peers) { /* a new one, in a free place or the oldest's */
        i = co->nmisconf_peers < COORD_MISCONF_PEERS ? co->nmisconf_peers++ : oldest;
        snprintf(co->misconf_peer[i].id, sizeof co->misconf_peer[i].id, "%s", peer_id);
    }
    co->misconf_peer[i].until_ms = until;
}

/* Whether member m refused a SYNC with MISCONF lately: a write sends its
 * SYNC and, at once, a HINT for it to a stand-in, whose delivery brings
 * the write once m's log takes writes again (a refusal that comes after
 * the write was answered finds no operation to give it a stand-in). */
static bool coord_peer_misconf(struct shard *sh, const struct coord_view *v, uint32_t m)
{
    struct coord *co = sh->coord;
    if (__builtin_expect(co->nmisconf_peers == 0, 1))
        return false;
    int64_t now = req_now_ms();
    for (uint32_t i = 0; i < co->nmisconf_peers; i++) {
        if (co->misconf_peer[i].until_ms <= now) { /* expired: forgotten */
            co->misconf_peer[i] = co->misconf_peer[--co->nmisconf_peers];
            i--;
            continue;
        }
        if (strcmp(co->misconf_peer[i].id, v->members[m].id) == 0)
            return true;
    }
    return false;
}

/* A late peer's SYNC and its stand-in's HINT are two paths to one answer:
 * the HINT has its own wire slot (k + COORD_PEERS_MAX), the first OK of
 * either counts for peer k, and peer k fails only once every path that
 * went out failed. */
#define COORD_PATH_SYNCED 1u /* peer k's own SYNC went out */
#define COORD_FAIL_SYNC 2u
#define COORD_FAIL_HINT 4u

/* Peer k's path that answered (is_hint: the stand-in's) failed: true when
 * the other path may still answer (peer k is not decided yet). */
static bool coord_other_path_waits(struct coord_op *op, uint32_t k, bool is_hint)
{
    op->path[k] |= is_hint ? COORD_FAIL_HINT : COORD_FAIL_SYNC;
    return is_hint ? (op->path[k] & COORD_PATH_SYNCED) && !(op->path[k] & COORD_FAIL_SYNC)
                   : op->is_hinted[k] && !(op->path[k] & COORD_FAIL_HINT);
}

/* Sends peer k's SYNC of state st to a stand-in instead, as a HINT naming
 * peer k (see wire.h); its ack counts for peer k. 0, or -EAGAIN (no
 * stand-in, past max-hint-window, no link). */
static int coord_send_hint(struct shard *sh, struct coord_op *op, const struct req *r,
                           uint32_t k, const struct resp_arg *key, const struct replica_state *st)
{
    const struct coord_view *v = op->view;
    if (!coord_hint_window(sh, v, op->peer[k]))
        return -EAGAIN;
    uint32_t used[COORD_PEERS_MAX], nused = 0;
    for (uint32_t j = 0; j < op->npeers; j++)
        if (op->is_hinted[j])
            used[nused++] = op->standin[j];
    uint32_t m = coord_standin(v, op->partition, op->n_eff, used, nused);
    if (m == RING_NONE)
        return -EAGAIN;
    struct wire_bytes owner = {(const uint8_t *)v->members[op->peer[k]].id, RING_ID_LEN};
    int rc = coord_send_state(sh, v, m, coord_wire_id(r->id, k + COORD_PEERS_MAX), WIRE_OP_HINT,
                              op, r, key, st, &owner);
    if (rc == 0) {
        op->is_hinted[k] = true;
        op->standin[k] = m;
        COORD_STAT(sh, hinted_writes);
    }
    return rc;
}

/* A write waiting for acks: its state (*after, taken) is kept with the op
 * and, if peers still have not answered by a quarter of its time, they get
 * stand-ins (coord_late_tick). */
static void coord_late_watch(struct shard *sh, const struct req *r, struct coord_op *op,
                             struct replica_state *after)
{
    struct coord *c = sh->coord;
    if (!c->late || c->late_len == COORD_LATE_MAX || op->nkeys)
        return;
    struct replica_state swap = op->mine; /* empty for a write */
    op->mine = *after;
    *after = swap;
    int64_t now = shard_turn_ms(sh);
    c->late[(c->late_head + c->late_len++) % COORD_LATE_MAX] =
        (struct coord_late){r->id, now + (r->deadline_ms - now) / 4};
}

/* On the tick: writes whose peers are late send to stand-ins for them
 * (each peer still waited for and not yet hinted), as for a down peer; the
 * first of the two acks counts. */
static void coord_late_tick(struct shard *sh)
{
    struct coord *c = sh->coord;
    int64_t now = req_now_ms();
    while (c->late_len > 0) {
        const struct coord_late *l = &c->late[c->late_head];
        struct req *r = req_find(&sh->reqs, l->req_id);
        struct coord_op *op = r && r->done == coord_op_done ? r->owner_ptr : NULL;
        bool is_waiting = op && op->phase == PH_WRITE && !op->is_completing && op->m &&
                          op->ok < op->need && op->mine.meta.len > 0;
        if (is_waiting && l->at_ms > now)
            return; /* the FIFO is in start order: the rest are later */
        c->late_head = (c->late_head + 1) % COORD_LATE_MAX;
        c->late_len--;
        if (!is_waiting)
            continue;
        struct resp_arg key = {op->key, op->klen};
        for (uint32_t k = 0; k < op->npeers; k++)
            if (op->st[k] == P_WAIT && !op->is_hinted[k])
                coord_send_hint(sh, op, r, k, &key, &op->mine);
    }
}

bool coord_member_up(const struct shard *sh, const char *id, const char **cluster_addr)
{
    uint32_t i = coord_live_member(sh, id);
    if (i == UINT32_MAX)
        return false;
    *cluster_addr = sh->coord->view->members[i].cluster_addr;
    return true;
}

uint32_t coord_live_member(const struct shard *sh, const char *id)
{
    if (!coord_is_cluster(sh))
        return UINT32_MAX;
    const struct coord_view *v = sh->coord->view;
    for (uint32_t i = 0; i < v->n_members; i++)
        if (strcmp(v->members[i].id, id) == 0)
            return i == v->self || v->members[i].is_down ? UINT32_MAX : i;
    return UINT32_MAX;
}

uint64_t coord_reply_req(uint64_t wire_id, uint32_t *sub)
{
    *sub = (uint32_t)(wire_id >> COORD_SLOT_BITS) & 0xFF;
    return wire_id & ~((uint64_t)0xFF << COORD_SLOT_BITS);
}

uint64_t coord_wire_sub(uint64_t req_id, uint32_t sub) { return coord_wire_id(req_id, sub); }

int coord_hint_replicas(const struct shard *sh, uint32_t p, const char *id, uint32_t *members,
                        uint32_t cap, uint32_t *n, bool *is_self)
{
    *n = 0;
    *is_self = false;
    const struct coord_view *v = sh->coord ? sh->coord->view : NULL;
    if (!v || v->version == 0 || !v->is_cluster || p >= v->q)
        return -1;
    const uint32_t *list = coord_list(v, p);
    uint32_t n_eff = coord_n_eff(sh->node, v);
    for (uint32_t k = 0; k < n_eff; k++)
        if (list[k] != RING_NONE && strcmp(v->members[list[k]].id, id) == 0)
            return 1;
    for (uint32_t k = 0; k < n_eff; k++) {
        if (list[k] == v->self)
            *is_self = true;
        else if (coord_live(v, list[k]) && *n < cap)
            members[(*n)++] = list[k];
    }
    return 0;
}

/* The reply when too few replicas answered. */
static void coord_unavailable(struct shard *sh, struct coord_op *op)
{
    char msg[200];
    int n = op->phase == PH_READ && !op->is_sure && op->ok >= op->need
                ? snprintf(msg, sizeof msg,
                           "UNAVAILABLE no replica holding the partition whole answered (%u in "
                           "the preference list): those that did still pull it (a join or "
                           "leave)", op->n_eff)
                : snprintf(msg, sizeof msg,
                           "UNAVAILABLE %u of %u replicas answered (%u in the preference list)",
                           op->ok, op->need, op->n_eff);
    if (op->phase == PH_WRITE && n > 0)
        snprintf(msg + n, sizeof msg - (size_t)n,
                 "; the write stays on the %u that did and may spread from there", op->ok);
    cmd_msg_error(op->m, msg);
    op->m->res.hold_seq = 0;
    COORD_STAT(sh, unavailable);
}

/* Answers the client (the message goes back to its origin). */
static void coord_answer(struct shard *sh, struct coord_op *op)
{
    struct cmd_msg *m = op->m;
    op->m = NULL;
    m->res.hold_seq = 0; /* the op's hold covered it */
    cmd_msg_reply(sh, m);
}

static void coord_repair(struct shard *sh, struct req *r, struct coord_op *op);

/* Reads with a state hash: a coordinator's GET to the replicas carries the
 * hash of its own state (replica_state_hash, 8 bytes little-endian in the
 * GET's meta) when that state is a versioned entry in memory; a replica
 * whose state hashes the same answers OK with no meta and no value ("same":
 * no bytes copied or sent). The coordinator counts it toward R and has
 * nothing to merge from it; read repair then sends the merged state to it
 * when the merge changed the coordinator's state (coord_repair). A peer that predates this
 * ignores the GET's meta and answers its state, as before; a coordinator
 * that sends no hash never gets "same". */
#define COORD_HASH_LEN 8

/* The hash of this node's state of key into *h: true for a versioned entry
 * in memory (replica_peek), else false (no cheap hash; reads go without). */
static bool coord_own_hash(struct shard *sh, const void *key, uint32_t klen, uint64_t hash,
                           uint64_t *h)
{
    struct store_version v;
    uint64_t expire_at_ms;
    if (replica_peek(sh->store, key, klen, hash, &v, &expire_at_ms) != 0)
        return false;
    *h = replica_state_hash(v.meta, v.meta_len, expire_at_ms);
    return true;
}

static uint64_t coord_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static void coord_fwd_fail(struct shard *sh, uint64_t parent, uint32_t sub, uint8_t fwd_mc,
                           const char *code, const char *text);
static void coord_reap_end(struct shard *sh, struct req *r, struct coord_op *op,
                           enum req_end how);

static bool coord_op_done(struct req_table *t, struct req *r, enum req_end how)
{
    struct shard *sh = t->ctx;
    struct coord_op *op = r->owner_ptr;
    if (!op)
        return true;
    if (how == REQ_END_DROP) {
        if (op->m)
            cmd_msg_free(op->m);
        coord_op_free(sh, op);
        return true;
    }
    if (op->phase == PH_FWD) {
        if (how == REQ_END_TIMEOUT && req_find(&sh->reqs, op->parent) && op->is_fwd_again_due) {
            /* refused unrun, and out of time before its next send */
            coord_fwd_fail(sh, op->parent, op->parent_sub, op->fwd_mc, "", COORD_VIEW_CHANGING);
        } else if (how == REQ_END_TIMEOUT && req_find(&sh->reqs, op->parent)) {
            coord_fwd_fail(sh, op->parent, op->parent_sub, op->fwd_mc, "UNAVAILABLE",
                           "the replica forwarded to did not answer within request-timeout");
            COORD_STAT(sh, unavailable);
        }
        coord_op_free(sh, op);
        return true;
    }
    if (op->phase == PH_REAP) {
        coord_reap_end(sh, r, op, how);
        coord_op_free(sh, op);
        return true;
    }
    if (op->m) {
        if (how == REQ_END_TIMEOUT)
            coord_unavailable(sh, op);
        coord_answer(sh, op);
    }
    if (op->phase == PH_REPAIR && how == REQ_END_DONE && op->waiting > 0) {
        req_rearm(r, 1); /* late answers still count for repair */
        op->is_completing = false;
        return false;
    }
    if (op->phase == PH_REPAIR)
        coord_repair(sh, r, op);
    coord_op_free(sh, op);
    return true;
}

/* Completes the op's one sub-result: the done callback answers. */
static void coord_complete(struct shard *sh, struct req *r, uint64_t hold_seq)
{
    struct coord_op *op = r->owner_ptr;
    op->is_completing = true;
    req_hold(r, hold_seq);
    r->subs[0].status = REQ_OK;
    req_sub_done(&sh->reqs, r);
}

static bool coord_is_ring_write(const struct cmd_msg *m)
{
    return m->handler == cmd_ring_put || m->handler == cmd_ring_del;
}

/* RING.GET's R, RING.PUT's and RING.DEL's W (0 when not given). */
static uint8_t coord_ring_option(const struct cmd_msg *m, bool is_write)
{
    uint32_t first = m->handler == cmd_ring_put ? 4 : is_write ? 3 : 2;
    const char *want = is_write ? "w" : "r";
    for (uint32_t i = first; i + 1 < m->argc; i += 2) {
        if (m->argv[i].len == 1 && (m->argv[i].ptr[0] | 0x20) == want[0]) {
            int64_t v; /* a bad one: the handler answers the error */
            bool is_num = num_parse_i64(m->argv[i + 1].ptr, m->argv[i + 1].len, &v);
            return is_num && v >= 1 && v <= RING_REPLICAS_MAX ? (uint8_t)v : 0;
        }
    }
    return 0;
}

/* The write ran here but its new version cannot be made (-ENOMEM: the
 * versioned entry, larger than the plain one, does not fit in maxmemory;
 * -E2BIG): the client gets an error instead of the handler's reply and no
 * peer is asked. The plain value stays here as a local write (the client
 * was told it failed; a later read repair or sync may replace it). */
static void coord_version_failed(struct cmd_msg *m, const struct resp_arg *key, int rc)
{
    int shown = (int)(key->len > 64 ? 64 : key->len);
    if (rc == -ENOMEM) { /* expected at maxmemory (noeviction), as a plain write's -OOM */
        log_debug("key '%.*s': its new version does not fit; answered -OOM", shown, key->ptr);
        cmd_msg_error(m, "OOM the write's new version does not fit in maxmemory; not replicated");
        return;
    }
    log_warn("key '%.*s': its new version cannot be made (%s); answered as failed", shown,
             key->ptr, strerror(-rc));
    cmd_msg_fail(m, "the write's new version cannot be made; not replicated");
}

/* WRITE: runs the command here, versions its result and sends it out. */
static void coord_write_start(struct shard *sh, struct req *r, struct coord_op *op)
{
    struct cmd_msg *m = op->m;
    const struct resp_arg key_arg = cmd_msg_key(m), *key = &key_arg;
    struct replica_state *before = &sh->coord->before, *after = &sh->coord->after;
    bool has_before = replica_export(sh->store, sh->node, key->ptr, key->len, m->hash, before) == 0;
    uint64_t seq0 = persist_last_seq(sh->persist);
    struct replica_put put; /* a put of the key is its new version at once */
    if (!op->is_ring_write)
        replica_put_begin(&put, sh->store, sh->node, key->ptr, key->len, m->hash);
    cmd_msg_run(sh, m);
    if (!op->is_ring_write)
        replica_put_end(&put, sh->store);
    op->phase = PH_WRITE;
    COORD_STAT(sh, writes);
    bool changed = false;
    int rc = 0;
    if (m->res.status != REQ_ERR) {
        if (op->is_ring_write || put.done) {
            rc = replica_export(sh->store, sh->node, key->ptr, key->len, m->hash, after);
            changed = rc == 0;
        } else {
            rc = replica_versionize(sh->store, sh->node, key->ptr, key->len, m->hash,
                                    has_before ? before : NULL, after, &changed);
        }
        if (rc < 0 && rc != -ENOENT)
            coord_version_failed(m, key, rc);
    }
    uint64_t seq = persist_reply_seq(sh->persist, seq0, m->hash, m->res.status == REQ_ERR);
    if (m->res.status != REQ_ERR && !changed)
        log_debug("key '%.*s': the write changed nothing to replicate",
                  (int)(key->len > 64 ? 64 : key->len), key->ptr);
    if (m->res.status == REQ_ERR || !changed || rc < 0) {
        coord_state_keep(before);
        coord_state_keep(after);
        coord_complete(sh, r, seq);
        return;
    }
    op->hold_seq = seq;
    op->ok = 1;
    op->waiting = 0;
    uint64_t id_base = r->id;
    for (uint32_t k = 0; k < op->npeers; k++) {
        bool is_sent = op->st[k] != P_NONE && /* down: to a stand-in (sloppy quorum) */
                       coord_send_sync(sh, op->view, op->peer[k], coord_wire_id(id_base, k), op,
                                       r, key, after) == 0;
        op->path[k] = is_sent ? COORD_PATH_SYNCED : 0;
        is_sent = is_sent || coord_send_hint(sh, op, r, k, key, after) == 0;
        op->st[k] = is_sent ? P_WAIT : P_FAIL;
        op->waiting += is_sent;
    }
    /* then, stand-ins the down peers left, for peers refusing writes lately
     * (both paths: see coord_peer_misconf) */
    for (uint32_t k = 0; __builtin_expect(sh->coord->nmisconf_peers > 0, 0) && k < op->npeers; k++)
        if ((op->path[k] & COORD_PATH_SYNCED) && !op->is_hinted[k] &&
            coord_peer_misconf(sh, op->view, op->peer[k]))
            coord_send_hint(sh, op, r, k, key, after);
    if (op->ok < op->need && op->ok + op->waiting >= op->need)
        coord_late_watch(sh, r, op, after);
    coord_state_keep(before);
    coord_state_keep(after);
    if (op->ok >= op->need)
        coord_complete(sh, r, op->hold_seq);
    else if (op->ok + op->waiting < op->need)
        coord_unavailable(sh, op), coord_complete(sh, r, 0);
}

static bool coord_load_again(struct shard *sh, struct req *r, struct coord_op *op,
                             const struct resp_arg *key);

/* READ has its quorum: merge the answers here, then run or write. */
static void coord_read_quorum(struct shard *sh, struct req *r, struct coord_op *op)
{
    struct cmd_msg *m = op->m;
    const struct resp_arg key_arg = cmd_msg_key(m), *key = &key_arg;
    if (coord_load_again(sh, r, op, key))
        return; /* progress again once the value is back in memory */
    for (uint32_t k = 0; k < op->npeers; k++) {
        if (op->st[k] != P_OK)
            continue;
        const struct replica_state *g = &op->got[k];
        int rc = replica_apply(sh->store, sh->node, key->ptr, key->len, m->hash, g->meta.data,
                               g->meta.len, g->body.data, g->body.len, g->expire_at_ms);
        op->is_merged |= rc == 1;
        if (rc < 0)
            log_debug("key '%.*s': a replica's state cannot be merged (%s)",
                      (int)(key->len > 64 ? 64 : key->len), key->ptr, strerror(-rc));
    }
    if (op->src_k) /* merged: the source (the last peer) gets no write or repair */
        op->npeers = op->src_k - 1;
    if (op->is_rmw) {
        op->need = coord_quorum(m->w, sh->node->cfg->write_quorum, op->n_eff);
        for (uint32_t k = 0; k < op->npeers; k++)
            if (op->st[k] != P_NONE)
                op->st[k] = P_WAIT; /* contacted again by the write; late GETs are dropped */
        coord_write_start(sh, r, op);
        return;
    }
    /* The early reply stands when nothing was written here since (no
     * lookup: the store's count of writes; a pure read load keeps it) and
     * no answer changed the key: this node's state is what R replicas
     * confirmed. */
    uint64_t seq = op->early_seq;
    if (!op->is_run_early || op->is_merged || sh->store->stats.writes != op->early_writes) {
        uint64_t seq0 = persist_last_seq(sh->persist);
        cmd_msg_run(sh, m);
        seq = persist_reply_seq(sh->persist, seq0, m->hash, false);
    }
    COORD_STAT(sh, reads);
    op->phase = PH_REPAIR;
    coord_complete(sh, r, seq);
    if (sh->tier)
        store_pin(sh->store, NULL);
}

/* The merged state to every replica that answered with less (or nothing). */
static void coord_repair(struct shard *sh, struct req *r, struct coord_op *op)
{
    /* a replica that answered "same" held what this node held when the
     * GETs went: stale when this read's merge changed that (no lookup; a
     * write that reached this node meanwhile is left to its own SYNCs and
     * later reads) */
    bool is_changed = op->is_merged;
    bool is_any_stale = false;
    for (uint32_t k = 0; k < op->npeers && !is_any_stale; k++)
        is_any_stale =
            op->st[k] == P_MISSING || (op->st[k] == P_SAME && is_changed) ||
            (op->st[k] == P_OK && !replica_holds(sh->store, op->key, op->klen, op->hash,
                                                 op->got[k].meta.data, op->got[k].meta.len));
    if (!is_any_stale)
        return; /* the common case: no export of the merged state */
    struct replica_state merged;
    replica_state_init(&merged);
    struct resp_arg key = {op->key, op->klen};
    if (replica_export(sh->store, sh->node, op->key, op->klen, op->hash, &merged) == 0) {
        for (uint32_t k = 0; k < op->npeers; k++) {
            bool is_stale = op->st[k] == P_MISSING || (op->st[k] == P_SAME && is_changed) ||
                            (op->st[k] == P_OK &&
                             !replica_same(&merged, op->got[k].meta.data, op->got[k].meta.len));
            if (is_stale &&
                coord_send_sync(sh, op->view, op->peer[k], 0, op, r, &key, &merged) == 0)
                COORD_STAT(sh, read_repairs);
        }
    }
    replica_state_fini(&merged);
}

/* A read whose answers so far are all misses of replicas still pulling
 * the partition (a join or leave: the key may be on its way) asks the node
 * this shard pulls the partition from, which holds it whole, as one more
 * peer (the arrays hold a peer per other member: it is not among them).
 * Its answer makes the read sure; none, and the read is unavailable. */
static void coord_ask_source(struct shard *sh, struct req *r, struct coord_op *op)
{
    op->asked_source = true;
    const struct coord_view *v = op->view;
    const char *id = transfer_pull_source(sh, op->partition);
    if (!id || op->npeers >= op->cap)
        return;
    uint32_t m = RING_NONE;
    for (uint32_t i = 0; i < v->n_members && m == RING_NONE; i++)
        if (i != v->self && strcmp(v->members[i].id, id) == 0)
            m = i;
    for (uint32_t k = 0; m != RING_NONE && k < op->npeers; k++)
        if (op->peer[k] == m)
            return; /* asked already (its answer was a miss too) */
    if (m == RING_NONE || v->members[m].is_down)
        return;
    uint32_t k = op->npeers;
    struct wire_msg wm = {.kind = WIRE_REQUEST,
                          .op = WIRE_OP_GET,
                          .id = coord_wire_id(r->id, k),
                          .deadline_ms = (uint32_t)coord_deadline_left(sh, r),
                          .partition = (uint16_t)op->partition,
                          .slot = (uint16_t)op->slot,
                          .key = {(const uint8_t *)op->key, op->klen}};
    if (coord_send(sh, v, m, &wm) != 0)
        return;
    op->peer[k] = m;
    op->st[k] = P_WAIT;
    op->npeers++;
    op->waiting++;
    op->src_k = k + 1;
    COORD_STAT(sh, reads_asked_source);
}

static void coord_op_progress(struct shard *sh, struct req *r, struct coord_op *op)
{
    if (op->is_completing || op->is_loading)
        return; /* the done callback comes (after the log's fdatasync), or the load's */
    if (op->phase == PH_READ) {
        if (!op->is_sure && op->waiting == 0 && !op->asked_source)
            coord_ask_source(sh, r, op); /* the misses were of replicas still pulling */
        if (op->ok >= op->need && op->is_sure)
            coord_read_quorum(sh, r, op);
        else if (op->ok + op->waiting < op->need || (op->waiting == 0 && !op->is_sure))
            coord_unavailable(sh, op), coord_complete(sh, r, 0);
        return;
    }
    if (op->phase == PH_WRITE) {
        if (op->ok >= op->need)
            coord_complete(sh, r, op->hold_seq);
        else if (op->ok + op->waiting < op->need)
            coord_unavailable(sh, op), coord_complete(sh, r, 0);
        return;
    }
    if ((op->phase == PH_REPAIR || op->phase == PH_REAP) && op->waiting == 0)
        req_sub_done(&sh->reqs, r);
}

/* ---- the coordinator (the shard owning the key's partition) ---- */

/* Runs m here as a cluster of one would, and answers it. */
static void coord_run_alone(struct shard *sh, struct cmd_msg *m)
{
    cmd_msg_run(sh, m);
    cmd_msg_reply(sh, m);
}

/* Values beyond RAM: a request whose key's value is on disk only waits
 * for it as a no-op message of its own (tier.h), then is coordinated. */
static void coord_noop(struct cmd_ctx *c)
{
    c->res->status = REQ_OK;
}

static bool coord_loaded(struct req_table *t, struct req *r, enum req_end how)
{
    struct shard *sh = t->ctx;
    struct cmd_msg *m = r->owner_ptr;
    if (!m)
        return true;
    if (how == REQ_END_DROP) {
        cmd_msg_free(m);
        return true;
    }
    if (how == REQ_END_TIMEOUT) {
        cmd_msg_timeout(m, sh->request_timeout_ms);
        cmd_msg_reply(sh, m);
        return true;
    }
    m->flags |= CMD_LOADED; /* once: if it went cold again meanwhile, it runs as is */
    coord_execute(sh, m);
    return true;
}

/* Reads key's value back (a no-op message waiting in tier.h); done then
 * ends the request returned, of this shard, whose owner_ptr is owner
 * (REQ_END_OK once loaded). NULL when that cannot start (out of memory). */
static struct req *coord_load(struct shard *sh, const struct resp_arg *key, uint64_t hash,
                              req_done_fn *done, void *owner, int64_t deadline_ms)
{
    struct resp_arg argv[2] = {{"LOAD", 4}, *key}; /* what tier.h reads: the key */
    struct req *r = req_new(&sh->reqs, 1, 1, done, deadline_ms);
    struct cmd_msg *load =
        r ? cmd_msg_for(sh, r->id, 0, sh->id, coord_noop, CMD_READS_VALUE, 2, argv, 2, hash) : NULL;
    if (!load) {
        if (r)
            req_cancel(&sh->reqs, r->id);
        return NULL;
    }
    r->owner_ptr = owner;
    tier_wait(sh, load);
    req_arm(&sh->reqs, r);
    return r;
}

/* True when m waits for its key's value (it comes back through
 * coord_execute()). Else the key's entry is pinned (tier.h) until the
 * caller unpins it. */
static bool coord_wait_value(struct shard *sh, struct cmd_msg *m, const struct resp_arg *key)
{
    if (!sh->tier)
        return false;
    if (tier_may_run(sh, m->flags | CMD_READS_VALUE, m->hash, key->ptr, key->len) ||
        (m->flags & CMD_LOADED))
        return false;
    /* NULL: runs on what memory holds */
    return coord_load(sh, key, m->hash, coord_loaded, m, shard_deadline(sh)) != NULL;
}

static bool coord_quorum_loaded(struct req_table *t, struct req *lr, enum req_end how)
{
    struct shard *sh = t->ctx;
    struct req *r = req_find(&sh->reqs, (uint64_t)lr->aux);
    struct coord_op *op = r ? r->owner_ptr : NULL;
    if (!op || how != REQ_END_DONE)
        return true; /* the request ended meanwhile, or ends by its own deadline */
    op->is_loading = false;
    coord_op_progress(sh, r, op);
    return true;
}

/* Values beyond RAM: true when the key's value went back to disk while the
 * replicas answered (the handler would find it cold): it is read back,
 * and the operation progresses again then (coord_quorum_loaded). Else the
 * key's entry is pinned (tier.h) until the caller unpins it. */
static bool coord_load_again(struct shard *sh, struct req *r, struct coord_op *op,
                             const struct resp_arg *key)
{
    struct cmd_msg *m = op->m;
    if (!sh->tier || tier_may_run(sh, m->flags | CMD_READS_VALUE, m->hash, key->ptr, key->len))
        return false;
    struct req *lr = op->is_reloaded
                         ? NULL
                         : coord_load(sh, key, m->hash, coord_quorum_loaded, NULL, r->deadline_ms);
    if (!lr) {
        cmd_msg_fail(m, op->is_reloaded ? "the value cannot be read back from disk now"
                                        : "out of memory");
        m->res.hold_seq = 0;
        coord_complete(sh, r, 0);
        return true;
    }
    lr->aux = (int64_t)r->id;
    op->is_loading = op->is_reloaded = true;
    return true;
}

static void coord_start(struct shard *sh, struct cmd_msg *m, const struct resp_arg *key);
static void coord_multi_start(struct shard *sh, struct cmd_msg *m);

/* RENAME, RENAMENX, COPY: a write of two keys of one slot, coordinated as
 * a transaction of one command (see "transactions" below). */
static bool coord_is_key_pair(const struct cmd_msg *m)
{
    return !m->is_mc &&
           (m->handler == cmd_rename || m->handler == cmd_renamenx || m->handler == cmd_copy);
}

/* The same for BITOP (as RING.BITOP: destination, sources, op): it reads
 * every source and writes the destination. */
static bool coord_is_keys_write(const struct cmd_msg *m)
{
    return coord_is_key_pair(m) || (!m->is_mc && m->handler == cmd_bitop);
}

/* LCS: a read of two keys of one slot, coordinated as WATCH is (a quorum
 * read of both, then the command here; no write phase). */
static bool coord_is_keys_read(const struct cmd_msg *m)
{
    return !m->is_mc && m->handler == cmd_lcs;
}

/* A transaction-like message that only reads its keys (WATCH, LCS): it
 * runs after the quorum read, with no write phase (coord_multi_read_run). */
static bool coord_multi_reads_only(const struct cmd_msg *m)
{
    return m->handler == cmd_multi_watch_shard || coord_is_keys_read(m);
}

void coord_execute(struct shard *sh, struct cmd_msg *m)
{
    const struct resp_arg key = cmd_msg_key(m);
    if (!coord_is_cluster(sh) || (m->flags & CMD_NOKEY)) {
        coord_run_alone(sh, m);
        return;
    }
    if (coord_wait_value(sh, m, &key))
        return;
    if (m->handler == cmd_multi_exec_shard || m->handler == cmd_multi_watch_shard ||
        coord_is_keys_write(m) || coord_is_keys_read(m))
        coord_multi_start(sh, m);
    else
        coord_start(sh, m, &key);
    if (sh->tier)
        store_pin(sh->store, NULL); /* what ran now ran with the value in memory */
}

/* Lists the op's peers (partition p's replicas but this node: live ones
 * P_WAIT, down ones P_NONE); returns the live replicas, self included. */
static uint32_t coord_op_peers(const struct coord_view *v, uint32_t p, struct coord_op *op)
{
    const uint32_t *list = coord_list(v, p);
    uint32_t alive = 1;
    for (uint32_t k = 0; k < op->n_eff; k++) {
        if (list[k] == v->self || list[k] == RING_NONE)
            continue;
        op->peer[op->npeers] = list[k];
        op->st[op->npeers] = coord_live(v, list[k]) ? P_WAIT : P_NONE;
        alive += op->st[op->npeers] == P_WAIT;
        op->npeers++;
    }
    return alive;
}

/* Starts coordinating m (its key's value in memory). */
static void coord_start(struct shard *sh, struct cmd_msg *m, const struct resp_arg *key)
{
    const struct coord_view *v = sh->coord->view;
    bool is_write = (m->flags & CMD_WRITE) != 0;
    uint32_t slot = m->slot1 ? m->slot1 - 1 : keyhash_slot(key->ptr, key->len);
    uint32_t p = node_partition_of_slot(sh->node, slot, m->hash);
    uint32_t n_eff = coord_n_eff(sh->node, v);
    const struct cfg *cfg = sh->node->cfg;
    bool is_ring = !m->is_mc && (m->handler == cmd_ring_get || coord_is_ring_write(m));
    uint8_t asked = is_ring ? coord_ring_option(m, is_write) : 0;
    uint8_t r_asked = !is_write && asked ? asked : m->r, w_asked = is_write && asked ? asked : m->w;
    uint32_t need_r = coord_quorum(r_asked, cfg->read_quorum, n_eff);
    uint32_t need_w = coord_quorum(w_asked, cfg->write_quorum, n_eff);
    bool is_rmw = (m->flags & CMD_RMW) != 0;
    /* R = 1 reads this replica alone, pulling or not: holding it to the
     * pulling rule (is_sure) made a thawed node's local reads ask others
     * (test_coord), not understood yet */
    bool reads_first = !is_write || (is_rmw && need_r > 1);
    if ((m->flags & CMD_FORWARDED) && !coord_holds(v, p, n_eff)) {
        cmd_msg_error(m, COORD_VIEW_CHANGING); /* this shard's view holds no replica */
        cmd_msg_reply(sh, m);
        return;
    }
    if (!is_write && need_r == 1) { /* R = 1: this replica's answer is the read */
        COORD_STAT(sh, reads);
        coord_run_alone(sh, m);
        return;
    }
    struct req *r;
    int64_t deadline = m->deadline_ms ? m->deadline_ms - coord_margin_ms(sh) : 0;
    struct coord_op *op = coord_op_new(sh, deadline, &r);
    if (!op || !coord_op_set_key(op, key->ptr, key->len)) {
        if (op)
            req_cancel(&sh->reqs, r->id); /* its done callback frees op */
        cmd_msg_error(m, "OOM out of memory");
        cmd_msg_reply(sh, m);
        return;
    }
    op->hash = m->hash;
    op->m = m;
    op->is_rmw = is_rmw;
    op->is_ring_write = coord_is_ring_write(m);
    op->partition = p;
    op->slot = slot;
    op->n_eff = n_eff;
    op->need = reads_first ? need_r : need_w;
    op->ok = 1;
    uint32_t alive = coord_op_peers(v, p, op);
    if (!reads_first && alive < op->need) /* sloppy quorum: stand-ins for the down ones */
        alive += coord_hintable(sh, v, op);
    uint32_t need_most = is_rmw ? (need_r > need_w ? need_r : need_w) : op->need;
    if (alive < need_most) { /* failure detection already says so: not even tried */
        op->phase = PH_READ; /* nothing was written */
        op->ok = alive;
        op->need = need_most;
        coord_unavailable(sh, op);
        coord_complete(sh, r, 0);
        req_arm(&sh->reqs, r);
        return;
    }
    if (!reads_first) {
        coord_write_start(sh, r, op);
        req_arm(&sh->reqs, r);
        return;
    }
    op->phase = PH_READ;
    uint8_t hash_le[COORD_HASH_LEN];
    op->has_hash = coord_own_hash(sh, key->ptr, key->len, m->hash, &op->state_hash);
    op->is_sure = op->has_hash || !coord_lacks_keys(sh, p);
    if (!op->is_sure)
        COORD_STAT(sh, reads_held_for_whole); /* its own miss while pulling: no answer */
    if (!is_rmw) { /* its reply, unless the replicas' answers change the key here */
        uint64_t seq0 = persist_last_seq(sh->persist);
        cmd_msg_run(sh, m);
        op->early_seq = persist_reply_seq(sh->persist, seq0, m->hash, false);
        op->early_writes = sh->store->stats.writes;
        op->is_run_early = true;
    }
    for (int i = 0; i < COORD_HASH_LEN; i++)
        hash_le[i] = (uint8_t)(op->state_hash >> (8 * i));
    struct wire_msg wm = {.kind = WIRE_REQUEST,
                          .op = WIRE_OP_GET,
                          .deadline_ms = (uint32_t)coord_deadline_left(sh, r),
                          .partition = (uint16_t)p,
                          .slot = (uint16_t)op->slot,
                          .key = {(const uint8_t *)key->ptr, key->len},
                          .meta = {hash_le, op->has_hash ? COORD_HASH_LEN : 0}};
    for (uint32_t k = 0; k < op->npeers; k++) {
        if (op->st[k] != P_WAIT)
            continue;
        wm.id = coord_wire_id(r->id, k);
        if (coord_send(sh, v, op->peer[k], &wm) == 0)
            op->waiting++;
        else
            op->st[k] = P_FAIL;
    }
    coord_op_progress(sh, r, op);
    req_arm(&sh->reqs, r);
}

/* ---- transactions (EXEC, cmd_multi.h): several keys of one slot ----
 * One operation covers every key the transaction touches (watched and
 * queued): READ sends a GET per key to each live replica and waits until
 * every key has R answers (self included); the states are merged here, the
 * queue runs (cmd_multi_exec_shard: WATCH's check, then the commands back to
 * back); WRITE versions each key the run changed and SYNCs it, and the
 * reply goes once every changed key has W acknowledgements. A key's peer
 * state sits at i * npeers + k, which is also its wire id's byte, so a
 * transaction touches at most 256 / npeers keys. WATCH in a cluster is the
 * READ part alone over its keys, then records what the store holds. */

/* How far every key got: 1 when each has its quorum, -1 when one can no
 * longer reach it, else 0. op->ok becomes the fewest answers of a key. */
static int coord_multi_quorum(struct coord_op *op)
{
    uint32_t fewest = UINT32_MAX;
    bool is_lost = false;
    for (uint32_t i = 0; i < op->nkeys; i++) {
        uint32_t ok = 1, waiting = 0;
        for (uint32_t k = 0; k < op->npeers; k++) {
            uint8_t st = op->mst[i * op->npeers + k];
            ok += st == P_OK || st == P_MISSING;
            waiting += st == P_WAIT;
        }
        fewest = ok < fewest ? ok : fewest;
        is_lost |= ok + waiting < op->need;
    }
    op->ok = fewest;
    return fewest >= op->need ? 1 : is_lost ? -1 : 0;
}

/* The replicas' states of every key merged into this store. */
static void coord_multi_merge(struct shard *sh, struct coord_op *op)
{
    for (uint32_t at = 0; at < op->nkeys * op->npeers; at++) {
        const struct resp_arg *key = &op->keys[at / op->npeers];
        const struct replica_state *g = &op->mgot[at];
        if (op->mst[at] != P_OK)
            continue;
        int rc =
            replica_apply(sh->store, sh->node, key->ptr, key->len, keyhash(key->ptr, key->len),
                          g->meta.data, g->meta.len, g->body.data, g->body.len, g->expire_at_ms);
        if (rc < 0)
            log_debug("key '%.*s': a replica's state cannot be merged (%s)",
                      (int)(key->len > 64 ? 64 : key->len), key->ptr, strerror(-rc));
    }
}

static void coord_multi_progress(struct shard *sh, struct req *r, struct coord_op *op);
static void coord_take_state(uint8_t *st, struct replica_state *g, const struct wire_msg *wm);

/* Key i's new version after the run to every live peer (or, unchanged,
 * nothing to wait for). */
static void coord_multi_sync_key(struct shard *sh, struct req *r, struct coord_op *op, uint32_t i,
                                 const struct replica_state *before)
{
    const struct resp_arg *key = &op->keys[i];
    struct replica_state after;
    replica_state_init(&after);
    bool changed = false;
    int rc = replica_versionize(sh->store, sh->node, key->ptr, key->len,
                                keyhash(key->ptr, key->len), before, &after, &changed);
    if (rc < 0 && rc != -ENOENT)
        log_warn("key '%.*s': its new version cannot be made (%s); not replicated",
                 (int)(key->len > 64 ? 64 : key->len), key->ptr, strerror(-rc));
    for (uint32_t k = 0; k < op->npeers; k++) {
        uint32_t at = i * op->npeers + k;
        if (op->mst[at] == P_NONE)
            continue; /* down */
        if (!changed || rc < 0)
            op->mst[at] = P_OK;
        else if (coord_send_sync(sh, op->view, op->peer[k], coord_wire_id(r->id, at), op, r, key,
                                 &after) == 0)
            op->mst[at] = P_WAIT;
        else
            op->mst[at] = P_FAIL;
    }
    replica_state_fini(&after);
}

/* A read back whose only purpose was to bring the value into memory. */
static bool coord_load_dropped(struct req_table *t, struct req *r, enum req_end how)
{
    (void)t, (void)r, (void)how;
    return true;
}

/* WRITE: runs the transaction here, then versions and sends what changed.
 * Values beyond RAM: a key whose value is on disk only has no state to
 * give the new version's context, so the transaction gets -TRYAGAIN and
 * the value is read back for the retry. */
static void coord_multi_write(struct shard *sh, struct req *r, struct coord_op *op)
{
    struct cmd_msg *m = op->m;
    struct replica_state *before = mi_calloc(op->nkeys, sizeof *before);
    if (!before) {
        cmd_msg_error(m, "OOM out of memory");
        coord_complete(sh, r, 0);
        return;
    }
    uint32_t cold = 0;
    for (uint32_t i = 0; i < op->nkeys; i++) {
        const struct resp_arg *key = &op->keys[i];
        uint64_t hash = keyhash(key->ptr, key->len);
        replica_state_init(&before[i]);
        int rc = replica_export(sh->store, sh->node, key->ptr, key->len, hash, &before[i]);
        if (rc == -EAGAIN) /* its versions are needed: read back for the retry */
            cold += coord_load(sh, key, hash, coord_load_dropped, NULL, shard_deadline(sh)) != NULL;
        if (rc != 0)
            replica_state_clear(&before[i]); /* none: the key had no version */
    }
    if (cold) { /* versioned without its versions, a write would be a sibling */
        for (uint32_t i = 0; i < op->nkeys; i++)
            replica_state_fini(&before[i]);
        mi_free(before);
        cmd_msg_error(m, "TRYAGAIN a value of the transaction's keys was on disk only; it is "
                         "being read back (nothing ran)");
        coord_complete(sh, r, 0);
        return;
    }
    uint64_t seq0 = persist_last_seq(sh->persist);
    cmd_msg_run(sh, m);
    op->phase = PH_WRITE;
    op->need = coord_quorum(m->w, sh->node->cfg->write_quorum, op->n_eff);
    COORD_STAT(sh, writes);
    bool is_err = m->res.status == REQ_ERR; /* nothing ran */
    for (uint32_t i = 0; i < op->nkeys; i++) {
        if (!is_err)
            coord_multi_sync_key(sh, r, op, i, &before[i]);
        replica_state_fini(&before[i]);
    }
    mi_free(before);
    op->hold_seq = persist_reply_seq(sh->persist, seq0, 0, is_err);
    if (is_err)
        coord_complete(sh, r, op->hold_seq);
    else
        coord_multi_progress(sh, r, op);
}

/* Runs a message that only reads its keys (coord_multi_reads_only) once
 * they are read: WATCH records their merged states, LCS answers from
 * them; nothing is written. */
static void coord_multi_read_run(struct shard *sh, struct req *r, struct coord_op *op)
{
    uint64_t seq0 = persist_last_seq(sh->persist);
    cmd_msg_run(sh, op->m);
    COORD_STAT(sh, reads);
    coord_complete(sh, r, persist_reply_seq(sh->persist, seq0, 0, false));
}

static void coord_multi_progress(struct shard *sh, struct req *r, struct coord_op *op)
{
    if (op->is_completing)
        return;
    int q = coord_multi_quorum(op);
    if (q < 0) {
        coord_unavailable(sh, op);
        coord_complete(sh, r, 0);
    } else if (q > 0 && op->phase == PH_WRITE) {
        coord_complete(sh, r, op->hold_seq);
    } else if (q > 0 && coord_multi_reads_only(op->m)) {
        coord_multi_merge(sh, op);
        coord_multi_read_run(sh, r, op);
    } else if (q > 0) {
        coord_multi_merge(sh, op);
        coord_multi_write(sh, r, op);
    }
}

static void coord_multi_on_reply(struct shard *sh, struct req *r, struct coord_op *op, uint32_t at,
                                 const struct wire_msg *wm)
{
    if (at >= op->nkeys * op->npeers || op->mst[at] != P_WAIT)
        return;
    if ((op->phase == PH_WRITE) != (wm->op == WIRE_OP_SYNC))
        return; /* a GET answered after the write started */
    if (op->phase == PH_WRITE)
        op->mst[at] = wm->status == WIRE_CODE_OK ? P_OK : P_FAIL;
    else
        coord_take_state(&op->mst[at], &op->mgot[at], wm);
    coord_multi_progress(sh, r, op);
}

static const char COORD_MULTI_TOO_MANY[] = "ERR a transaction touches too many keys for a cluster";

/* The op's per-key arrays for keys (taken: freed with the op). -ENOMEM, or
 * -E2BIG past the wire id's byte. */
static int coord_multi_prepare(struct coord_op *op, struct resp_arg *keys, uint32_t nkeys)
{
    op->keys = keys;
    op->nkeys = nkeys;
    uint32_t cells = nkeys * (op->npeers ? op->npeers : 1);
    if (cells > COORD_MULTI_CELLS)
        return -E2BIG;
    op->mgot = mi_calloc(cells, sizeof *op->mgot);
    for (uint32_t at = 0; op->mgot && at < cells; at++)
        replica_state_init(&op->mgot[at]); /* coord_op_free finis them */
    op->mst = mi_malloc(cells);
    if (!op->mst || !op->mgot)
        return -ENOMEM;
    for (uint32_t at = 0; at < nkeys * op->npeers; at++)
        op->mst[at] = op->st[at % op->npeers];
    return 0;
}

/* READ: a GET of every key to every live peer. */
static void coord_multi_read(struct shard *sh, struct req *r, struct coord_op *op)
{
    op->phase = PH_READ;
    struct wire_msg wm = {.kind = WIRE_REQUEST,
                          .op = WIRE_OP_GET,
                          .deadline_ms = (uint32_t)coord_deadline_left(sh, r),
                          .partition = (uint16_t)op->partition,
                          .slot = (uint16_t)op->slot};
    for (uint32_t at = 0; at < op->nkeys * op->npeers; at++) {
        if (op->mst[at] != P_WAIT)
            continue;
        const struct resp_arg *key = &op->keys[at / op->npeers];
        wm.id = coord_wire_id(r->id, at);
        wm.key = (struct wire_bytes){(const uint8_t *)key->ptr, key->len};
        if (coord_send(sh, op->view, op->peer[at % op->npeers], &wm) != 0)
            op->mst[at] = P_FAIL;
    }
    coord_multi_progress(sh, r, op);
}

/* The keys a transaction's message touches (WATCH's: its arguments; a
 * key pair's and LCS's: its two; BITOP's: its destination and sources). */
static int coord_multi_keys(const struct cmd_msg *m, struct resp_arg **keys, uint32_t *n)
{
    if (m->handler == cmd_multi_exec_shard)
        return cmd_multi_keys(m->argv, m->argc, keys, n);
    if (coord_is_key_pair(m) || coord_is_keys_read(m)) { /* a destination first: its SYNC first */
        *n = resp_arg_equal(&m->argv[1], &m->argv[2]) ? 1 : 2;
        *keys = mi_malloc(2 * sizeof **keys);
        if (!*keys)
            return -ENOMEM;
        (*keys)[0] = m->argv[2];
        (*keys)[1] = m->argv[1];
        return 0;
    }
    if (coord_is_keys_write(m)) { /* RING.BITOP: the destination, then each source once */
        if (m->argc - 2 > COORD_MULTI_CELLS)
            return -E2BIG; /* refused below anyway: not worth the quadratic dedup */
        *keys = mi_malloc((m->argc - 2) * sizeof **keys);
        if (!*keys)
            return -ENOMEM;
        *n = 0;
        for (uint32_t i = 1; i + 1 < m->argc; i++) {
            uint32_t k = 0;
            while (k < *n && !resp_arg_equal(&(*keys)[k], &m->argv[i]))
                k++;
            if (k == *n)
                (*keys)[(*n)++] = m->argv[i];
        }
        return 0;
    }
    *n = m->argc - 1;
    *keys = mi_malloc((m->argc > 1 ? *n : 1) * sizeof **keys);
    if (!*keys)
        return -ENOMEM;
    memcpy(*keys, m->argv + 1, *n * sizeof **keys);
    return 0;
}

static void coord_multi_start(struct shard *sh, struct cmd_msg *m)
{
    struct resp_arg *keys;
    uint32_t nkeys;
    int krc = coord_multi_keys(m, &keys, &nkeys);
    if (krc < 0) {
        cmd_msg_error(m, krc == -E2BIG ? COORD_MULTI_TOO_MANY : "OOM out of memory");
        cmd_msg_reply(sh, m);
        return;
    }
    if (nkeys == 0) { /* keyless: nothing to replicate */
        coord_run_alone(sh, m);
        return;
    }
    const struct coord_view *v = sh->coord->view;
    uint32_t p0 =
        node_partition_of(sh->node, keys[0].ptr, keys[0].len, keyhash(keys[0].ptr, keys[0].len));
    if ((m->flags & CMD_FORWARDED) && !coord_holds(v, p0, coord_n_eff(sh->node, v))) {
        mi_free(keys); /* as coord_start: this shard's view holds no replica (nothing ran) */
        cmd_msg_error(m, COORD_VIEW_CHANGING);
        cmd_msg_reply(sh, m);
        return;
    }
    const struct cfg *cfg = sh->node->cfg;
    struct req *r;
    int64_t deadline = m->deadline_ms ? m->deadline_ms - coord_margin_ms(sh) : 0;
    struct coord_op *op = coord_op_new(sh, deadline, &r);
    if (!op) {
        mi_free(keys);
        cmd_msg_error(m, "OOM out of memory");
        cmd_msg_reply(sh, m);
        return;
    }
    op->m = m;
    op->partition = p0;
    op->slot = keyhash_slot(keys[0].ptr, keys[0].len);
    op->n_eff = coord_n_eff(sh->node, v);
    uint32_t alive = coord_op_peers(v, op->partition, op);
    uint32_t need_r = coord_quorum(m->r, cfg->read_quorum, op->n_eff);
    bool reads_only = coord_multi_reads_only(m);
    uint32_t need_w = reads_only ? 1 : coord_quorum(m->w, cfg->write_quorum, op->n_eff);
    int rc = coord_multi_prepare(op, keys, nkeys);
    if (rc < 0) {
        cmd_msg_error(m, rc == -E2BIG ? COORD_MULTI_TOO_MANY : "OOM out of memory");
        coord_complete(sh, r, 0);
    } else if (alive < (need_r > need_w ? need_r : need_w)) { /* nothing tried */
        op->phase = PH_READ;
        op->ok = alive;
        op->need = need_r > need_w ? need_r : need_w;
        coord_unavailable(sh, op);
        coord_complete(sh, r, 0);
    } else if (need_r == 1 && reads_only) {
        coord_multi_read_run(sh, r, op);
    } else if (need_r == 1) {
        coord_multi_write(sh, r, op);
    } else {
        op->need = need_r;
        coord_multi_read(sh, r, op);
    }
    req_arm(&sh->reqs, r);
}

/* ---- forwarding (a node holding no replica) ---- */

/* A relayed memcached reply's status: an error line, or a reply as a
 * local memcached request's (REQ_NONE). */
static enum req_status coord_mc_status(const char *p, size_t n)
{
    static const char *const errors[] = {"ERROR\r\n", "CLIENT_ERROR ", "SERVER_ERROR "};
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
        if (n >= strlen(errors[i]) && memcmp(p, errors[i], strlen(errors[i])) == 0)
            return REQ_ERR;
    return REQ_NONE;
}

/* Fills sub-result `sub` of this shard's request `parent` with a relayed
 * reply (fwd_mc: coord_op's; a quiet one relays nothing) and completes it. */
static void coord_fill_parent(struct shard *sh, uint64_t parent, uint32_t sub, uint8_t fwd_mc,
                              const char *p, size_t n)
{
    struct req *pr = req_find(&sh->reqs, parent);
    if (!pr || sub >= pr->nsub)
        return;
    struct req_result *res = &pr->subs[sub];
    buf_clear(&res->body);
    res->status = REQ_NONE;
    res->skip = 0;
    res->num = 0;
    if (fwd_mc) {
        res->status = coord_mc_status(p, n);
        if (fwd_mc != COORD_FWD_MC_QUIET)
            buf_append(&res->body, p, n);
        req_sub_done(&sh->reqs, pr);
        return;
    }
    buf_append(&res->body, p, n);
    const char *nl = n ? memchr(p, '\n', n) : NULL;
    uint32_t head = nl ? (uint32_t)(nl - p + 1) : 0;
    switch (n ? p[0] : 0) {
    case '+':
        res->status = REQ_OK;
        break;
    case '-':
        res->status = REQ_ERR;
        break;
    case ':':
        res->status = REQ_INT;
        res->num = strtoll(p + 1, NULL, 10);
        break;
    case '_':
        res->status = REQ_NULL;
        break;
    case '$':
        res->status = n > 1 && p[1] == '-' ? REQ_NULL : REQ_BULK;
        res->skip = head;
        break;
    case '*':
        res->status = n > 1 && p[1] == '-' ? REQ_NULL : REQ_ARRAY;
        res->num = strtoll(p + 1, NULL, 10);
        res->skip = head;
        break;
    }
    req_sub_done(&sh->reqs, pr);
}

/* Completes a forwarded request's parent with an error in its client's
 * protocol: "-<code> <text>", memcached "SERVER_ERROR [<code> ]<text>" (no
 * code for ERR); code "": the text starts with its own. */
static void coord_fwd_fail(struct shard *sh, uint64_t parent, uint32_t sub, uint8_t fwd_mc,
                           const char *code, const char *text)
{
    char err[WIRE_TEXT_MAX + 64];
    int n;
    if (!fwd_mc)
        n = snprintf(err, sizeof err, "-%s%s%s\r\n", code, *code ? " " : "", text);
    else if (!*code || strcmp(code, "ERR") == 0)
        n = snprintf(err, sizeof err, "SERVER_ERROR %s\r\n", text);
    else
        n = snprintf(err, sizeof err, "SERVER_ERROR %s %s\r\n", code, text);
    coord_fill_parent(sh, parent, sub, fwd_mc, err, n < (int)sizeof err ? (size_t)n : strlen(err));
}

/* Sends wm to the next live node of partition p's preference list after
 * member `after`, round to the list's start (not this node, not `after`);
 * *to: the one it went to. */
static int coord_send_next(struct shard *sh, const struct coord_view *v, uint32_t p,
                           uint32_t after, struct wire_msg *wm, uint32_t *to)
{
    const uint32_t *list = coord_list(v, p);
    uint32_t n_eff = coord_n_eff(sh->node, v), at = 0;
    while (at < n_eff && list[at] != after)
        at++;
    int rc = -EAGAIN;
    /* those after it in the list, then those before it: a forward sent past
     * the first live member (to one holding the partition whole:
     * coord_forward_target) falls back to that one */
    for (uint32_t i = 1; at < n_eff && rc != 0 && i < n_eff; i++) {
        uint32_t k = (at + i) % n_eff;
        if (list[k] != v->self && coord_live(v, list[k])) {
            rc = coord_send(sh, v, list[k], wm);
            *to = list[k];
        }
    }
    return rc;
}

static void coord_encode_command(struct buf *out, const struct resp_arg *argv, uint32_t argc)
{
    resp_write_array_len(out, argc);
    for (uint32_t i = 0; i < argc; i++)
        resp_write_bulk(out, argv[i].ptr, argv[i].len);
}

/* A forward to a replica that does not answer (SIGSTOPped, cut off) while
 * failure detection still calls it live would hold its client for the
 * whole request-timeout. So a forward that may run twice (a read: no write
 * at all; a write run by a second coordinator would get a second dot, which
 * a later context that covered the first does not cover, so an overwritten
 * value could come back as a sibling) and has no answer after
 * COORD_FWD_LATE_MS, or a quarter of its time when that is
 * shorter, goes to the next live replica of the key's list too, once; the
 * first answer of the two is relayed and the other finds no request. A
 * healthy forward answers within a hop and a replica's round (well under
 * a millisecond here, milliseconds under load or appendfsync always), so
 * 500 ms (checked on the 100 ms tick: 600 at most) is far past a slow
 * answer yet caps a client's stall during a fault at about a tenth of the
 * default request-timeout; the quarter leaves the next replica most of a
 * short request-timeout. A write (SET, RING.PUT, INCR, EXEC...) keeps
 * waiting for the replica it went to; sloppy quorum serves writes that
 * reach a coordinator of the key's list. */
#define COORD_FWD_LATE_MS 500
/* Forwards watched per shard at most (those of the last 500 ms or so: the
 * FIFO grows to this, 1 MiB); past it a forward only waits, as an RMW. */
#define COORD_FWD_WATCH_MAX 65536

/* Room for one more watched forward: the FIFO doubles when full (its
 * entries copied in order). False at COORD_FWD_WATCH_MAX or out of memory. */
static bool coord_fwd_room(struct coord *c)
{
    if (c->fwd_len < c->fwd_cap)
        return true;
    uint32_t cap = c->fwd_cap ? c->fwd_cap * 2 : 1024;
    struct coord_late *fifo = cap <= COORD_FWD_WATCH_MAX ? mi_malloc(cap * sizeof *fifo) : NULL;
    if (!fifo)
        return false;
    for (uint32_t i = 0; i < c->fwd_len; i++)
        fifo[i] = c->fwd_late[(c->fwd_head + i) % c->fwd_cap];
    mi_free(c->fwd_late);
    c->fwd_late = fifo;
    c->fwd_head = 0;
    c->fwd_cap = cap;
    return true;
}

/* Keeps a forwarded message (wm, its command's bytes cmd) with op, for a
 * second send (coord_again_send; a read's also coord_fwd_tick and
 * coord_fwd_lost). False: out of memory, or a command longer than
 * COORD_FWD_KEEP_MAX, a write's than COORD_FWD_KEEP_WRITE_MAX (a large
 * value is not copied for a refusal that seldom comes: that one reaches the
 * client). */
#define COORD_FWD_KEEP_MAX (1u << 20)
#define COORD_FWD_KEEP_WRITE_MAX (64u << 10) /* a write's: kept only for a refusal */
static bool coord_fwd_keep(struct coord_op *op, const struct wire_msg *wm, const struct buf *cmd,
                           bool is_write)
{
    if (cmd->len > (is_write ? COORD_FWD_KEEP_WRITE_MAX : COORD_FWD_KEEP_MAX) ||
        !coord_op_set_key(op, wm->key.ptr, wm->key.len))
        return false;
    buf_clear(&op->mine.body);
    buf_append(&op->mine.body, cmd->data, cmd->len);
    if (op->mine.body.failed)
        return false;
    op->fwd_flags = wm->flags;
    op->fwd_r = wm->r;
    op->fwd_w = wm->w;
    op->slot = wm->slot;
    op->is_fwd_kept = true;
    return true;
}

/* Watches a kept forward: when due (and unanswered) it goes to the next
 * live replica too. False: it will not go on (no room). */
static bool coord_fwd_watch(struct shard *sh, struct coord_op *op, const struct req *r)
{
    struct coord *c = sh->coord;
    if (!coord_fwd_room(c))
        return false;
    op->is_fwd_retry = true;
    int64_t now = req_now_ms(), wait = (r->deadline_ms - now) / 4;
    c->fwd_late[(c->fwd_head + c->fwd_len++) % c->fwd_cap] =
        (struct coord_late){r->id, now + (wait < COORD_FWD_LATE_MS ? wait : COORD_FWD_LATE_MS)};
    return true;
}

/* A kept forward's message again (its command's bytes, its key's), with a
 * new wire id slot k and the deadline left. */
static struct wire_msg coord_fwd_msg(struct shard *sh, const struct coord_op *op,
                                     const struct req *r, uint32_t k, struct wire_bytes *value)
{
    *value = (struct wire_bytes){(const uint8_t *)op->mine.body.data, (uint32_t)op->mine.body.len};
    return (struct wire_msg){
        .kind = WIRE_REQUEST,
        .flags = op->fwd_flags,
        .id = coord_wire_id(r->id, k),
        .op = WIRE_OP_FORWARD,
        .deadline_ms = (uint32_t)coord_left(r->deadline_ms + 1 - coord_margin_ms(sh)),
        .partition = (uint16_t)op->partition,
        .slot = (uint16_t)op->slot,
        .r = op->fwd_r,
        .w = op->fwd_w,
        .key = {(const uint8_t *)op->key, op->klen},
        .n_values = 1,
        .values = value};
}

/* On the tick: forwards due and still unanswered go to the next live
 * replica after the one they went to (coord_fwd_watch). */
static void coord_fwd_tick(struct shard *sh)
{
    struct coord *c = sh->coord;
    int64_t now = req_now_ms();
    while (c->fwd_len > 0) {
        const struct coord_late *l = &c->fwd_late[c->fwd_head];
        struct req *r = req_find(&sh->reqs, l->req_id);
        struct coord_op *op = r && r->done == coord_op_done ? r->owner_ptr : NULL;
        bool is_waiting = op && op->phase == PH_FWD && op->parent && op->is_fwd_retry;
        if (is_waiting && l->at_ms > now)
            return; /* the FIFO is in start order: the rest are later (or about) */
        c->fwd_head = (c->fwd_head + 1) % c->fwd_cap;
        c->fwd_len--;
        if (!is_waiting)
            continue;
        op->is_fwd_retry = false;
        struct wire_bytes value;
        struct wire_msg wm = coord_fwd_msg(sh, op, r, 1, &value);
        uint32_t to;
        if (coord_send_next(sh, op->view, op->partition, op->fwd_to, &wm, &to) == 0) {
            op->fwd_to = to; /* the one waited for now (coord_lost_turn) */
            op->fwd_seq = ++sh->coord->fwd_seq;
            COORD_STAT(sh, forwarded);
        }
    }
}

/* ---- forwards refused while the ring changes ----
 * A forward refused with COORD_VIEW_CHANGING did not run: the node it
 * reached (or the one that sent it on) saw the key's preference list
 * otherwise than this shard, as happens for a moment while a ring change
 * spreads (gossip, then each shard's next loop turn). Rather than hand the
 * client that refusal, the forward goes again, with the same bytes, to the
 * key's replica in this shard's view of then: at once when this shard's
 * view changes, else on the first tick COORD_AGAIN_AFTER_MS after the
 * refusal, up to COORD_AGAIN_TRIES times while the receiver would still
 * have COORD_AGAIN_MIN_LEFT_MS after the margins (coord_again_time_left);
 * then the client gets the refusal. A node sending a forward on (a hop)
 * does the same before it relays a refusal.
 * Writes too, where it was refused (nothing of it ran), but only by the
 * client's own node and only while no later command of that client
 * connection has begun (cmd_req_is_conn_last: a single-key command whose
 * reply slot is its connection's last). A pipelined SET k then DEL k whose
 * SET was refused and DEL ran on the new view would otherwise end with the
 * SET sent again after the acknowledged DEL; a hop (a node that sent a
 * forward on) relays the refusal, as it cannot see its client's order, and
 * so does the client's node when its own view now makes it the key's
 * first replica (coord_again_target: the client gets -TRYAGAIN). One sent
 * again may
 * reach a coordinator still on the old ring, which writes to the old list:
 * the new replica still gets it, as partition pulls start only once the
 * ring has reached every live member (transfer.c "Settling"), so the write
 * is in the old replicas' tables when the new one's walk begins, and a
 * copy on its way out that takes it keeps it until a handoff check hands
 * it to the new list (transfer.c "Release": the write moves that copy's
 * fingerprint, so its checks run again). Before those checks, writes sent
 * again lost a joiner's copies once in about a dozen runs of the join test
 * under load, and were taken back. */
#define COORD_AGAIN_MAX 4096 /* forwards queued per shard at most (64 KiB) */
#define COORD_AGAIN_TRIES 8
#define COORD_AGAIN_AFTER_MS 50
#define COORD_AGAIN_WAIT_MAX_MS (COORD_AGAIN_AFTER_MS + 100) /* and a 100 ms tick */
#define COORD_AGAIN_MIN_LEFT_MS 150

/* Whether a FORWARD's answer is the view-changing refusal: the node's own
 * (an ERROR) or a coordinator's reply in the client's protocol. */
static bool coord_is_view_changing(const struct wire_msg *wm)
{
    static const char resp[] = "-" COORD_VIEW_CHANGING;
    static const char mc[] = "SERVER_ERROR " COORD_VIEW_CHANGING;
    struct wire_value_iter it;
    struct wire_bytes v = {0};
    if (wm->status == WIRE_CODE_ERROR)
        return wm->text.len >= sizeof resp - 2 &&
               memcmp(wm->text.ptr, COORD_VIEW_CHANGING, sizeof resp - 2) == 0;
    if (wm->status != WIRE_CODE_OK)
        return false;
    wire_values_init(&it, wm);
    if (!wire_values_next(&it, &v))
        return false;
    return (v.len >= sizeof resp - 1 && memcmp(v.ptr, resp, sizeof resp - 1) == 0) ||
           (v.len >= sizeof mc - 1 && memcmp(v.ptr, mc, sizeof mc - 1) == 0);
}

/* Whether a forward of request r sent at now + wait_ms leaves the node that
 * takes it COORD_AGAIN_MIN_LEFT_MS: the wire deadline is the time left less
 * this node's margin, and the receiver (and a hop after it) subtract theirs
 * again. */
static bool coord_again_time_left(const struct shard *sh, const struct req *r, int64_t wait_ms)
{
    int64_t left = r->deadline_ms - req_now_ms() - wait_ms - 3 * coord_margin_ms(sh);
    return left >= COORD_AGAIN_MIN_LEFT_MS;
}

/* Queues a refused forward to go again. False: it will not (never kept,
 * tried enough, too little time left, or no room): the refusal stands. */
static bool coord_again_queue(struct shard *sh, const struct req *r, struct coord_op *op)
{
    struct coord *c = sh->coord;
    int64_t now = req_now_ms();
    if (!op->is_fwd_kept || op->fwd_again >= COORD_AGAIN_TRIES ||
        !coord_again_time_left(sh, r, COORD_AGAIN_WAIT_MAX_MS) ||
        c->again_len == COORD_AGAIN_MAX)
        return false;
    if (op->is_fwd_write) { /* only where no later command of its client has begun */
        const struct req *parent = req_find(&sh->reqs, op->parent);
        if (!parent || !cmd_req_is_conn_last(parent))
            return false;
    }
    if (!c->again && !(c->again = mi_malloc(COORD_AGAIN_MAX * sizeof *c->again)))
        return false;
    c->again[(c->again_head + c->again_len++) % COORD_AGAIN_MAX] =
        (struct coord_late){r->id, now + COORD_AGAIN_AFTER_MS};
    op->fwd_again++;
    op->is_fwd_again_due = true;
    op->is_fwd_retry = false; /* the late watch starts again with the next send */
    return true;
}

/* Where a forward goes again in view v: a write to the first live replica
 * of partition p's list (read-modify-writes meet there; RING_NONE when that
 * is this node, which took the forward before its view changed and is no
 * coordinator of it: the refusal goes back, and the node before it, or the
 * client, sends it here again), a read from the first live replica other
 * than this node to the one coord_forward_target picks; RING_NONE when
 * there is none. */
static uint32_t coord_again_target(struct shard *sh, const struct coord_view *v, uint32_t p,
                                   bool is_write)
{
    const uint32_t *list = coord_list(v, p);
    uint32_t n_eff = coord_n_eff(sh->node, v);
    for (uint32_t k = 0; k < n_eff; k++) {
        if (!coord_live(v, list[k]))
            continue;
        if (is_write && list[k] == v->self && coord_refuses_writes(sh))
            continue; /* sent on, as coord_route_slot does */
        if (is_write)
            return list[k] == v->self ? RING_NONE : list[k];
        if (list[k] != v->self)
            return coord_forward_target(sh, v, p, list, n_eff, list[k]);
    }
    return RING_NONE;
}

/* Sends queued forward op (of request r) again, in this shard's view, or
 * completes it with the refusal when no replica takes it. */
static void coord_again_one(struct shard *sh, struct req *r, struct coord_op *op)
{
    struct coord_view *v = sh->coord->view;
    uint32_t p = coord_partition_of(sh->node, op->key, op->klen);
    bool is_routable = v->is_cluster && p < v->q && coord_again_time_left(sh, r, 0);
    uint32_t to = is_routable ? coord_again_target(sh, v, p, op->is_fwd_write) : RING_NONE;
    struct wire_bytes value;
    struct wire_msg wm = coord_fwd_msg(sh, op, r, 2, &value);
    wm.partition = (uint16_t)p;
    int rc = to == RING_NONE ? -EAGAIN : coord_send(sh, v, to, &wm);
    if (rc == -EAGAIN && to != RING_NONE && !op->is_fwd_write) /* no link to it now: */
        rc = coord_send_next(sh, v, p, to, &wm, &to);           /* the next live replica */
    if (rc != 0) {
        coord_fwd_fail(sh, op->parent, op->parent_sub, op->fwd_mc, "", COORD_VIEW_CHANGING);
        op->parent = 0;
        req_sub_done(&sh->reqs, r);
        return;
    }
    COORD_STAT(sh, forwards_resent);
    v->refs++; /* the op's view is the one its member indexes are of */
    coord_view_put(op->view);
    op->view = v;
    op->fwd_to = to;
    op->fwd_seq = ++sh->coord->fwd_seq;
    op->partition = p;
    if (!op->is_fwd_write)
        coord_fwd_watch(sh, op, r);
}

/* Sends the refused forwards queued (coord_again_queue) that are due, or
 * all of them when this shard's view has just changed. */
static void coord_again_send(struct shard *sh, bool is_view_new)
{
    struct coord *c = sh->coord;
    int64_t now = req_now_ms();
    while (c->again_len > 0) {
        const struct coord_late *l = &c->again[c->again_head];
        if (!is_view_new && l->at_ms > now)
            return; /* queued in time order: the rest are later */
        uint64_t id = l->req_id;
        c->again_head = (c->again_head + 1) % COORD_AGAIN_MAX;
        c->again_len--;
        struct req *r = req_find(&sh->reqs, id);
        struct coord_op *op = r && r->done == coord_op_done ? r->owner_ptr : NULL;
        if (!op || op->phase != PH_FWD || !op->parent || !op->is_fwd_again_due)
            continue; /* answered meanwhile (a read sent on), or ended */
        op->is_fwd_again_due = false;
        coord_again_one(sh, r, op);
    }
}

/* ---- forwards whose link ended ----
 * A reply comes back on the link its request went out on, so when an open
 * link this shard dialled ends from the far side (the peer was killed or
 * restarted), or one with requests queued for its connect or handshake
 * fails there (the connect or the handshake refused, the handshake timed
 * out: peerlink.c, link_note_lost), the forwards waiting on that node will
 * never be answered; they would hold their clients until request-timeout.
 * peerlink notes the node (coord_note_link_lost); between events
 * (coord_lost_turn: after a loop turn's completions, never inside a
 * send) each keyed forward waiting on it is ended: a read
 * goes at once to the next live replica of its list (any may answer it),
 * or gets -UNAVAILABLE when there is none; a write gets -UNAVAILABLE at
 * once, as the timeout would have said (it may or may not have been
 * applied: it is not sent again; only a refusal, where nothing ran, is). A peer that died closes all its links,
 * so the node, not the link, is matched, and only forwards sent before
 * the note (coord.fwd_seq): a later one dialled a new link. Keyspace
 * commands sent to a member wait for their deadline as before. */
void coord_note_link_lost(struct shard *sh, const char *node_id)
{
    struct coord *c = sh->coord;
    if (!c || !coord_is_cluster(sh))
        return;
    for (uint32_t i = 0; i < c->nlost; i++) {
        if (strcmp(c->lost[i], node_id) == 0) {
            c->lost_seq[i] = c->fwd_seq;
            return;
        }
    }
    if (c->nlost < COORD_LOST_MAX) {
        c->lost_seq[c->nlost] = c->fwd_seq;
        snprintf(c->lost[c->nlost++], sizeof c->lost[0], "%s", node_id);
    }
}

static void coord_fwd_lost(struct shard *sh, struct req *r, struct coord_op *op)
{
    if (op->is_fwd_kept && !op->is_fwd_write) {
        struct wire_bytes value;
        struct wire_msg wm = coord_fwd_msg(sh, op, r, 3, &value);
        uint32_t to;
        if (coord_send_next(sh, op->view, op->partition, op->fwd_to, &wm, &to) == 0) {
            op->fwd_to = to;
            op->fwd_seq = ++sh->coord->fwd_seq;
            op->is_fwd_retry = false; /* this was its second send */
            COORD_STAT(sh, forwarded);
            return;
        }
    }
    char text[200];
    snprintf(text, sizeof text,
             "0 of 1 replicas answered: the connection to %s closed before it answered%s",
             op->view->members[op->fwd_to].client_addr,
             op->is_fwd_write ? " (the write may or may not have been applied)" : "");
    COORD_STAT(sh, unavailable);
    coord_fwd_fail(sh, op->parent, op->parent_sub, op->fwd_mc, "UNAVAILABLE", text);
    op->parent = 0;
    req_sub_done(&sh->reqs, r);
}

void coord_lost_turn(struct shard *sh)
{
    struct coord *c = sh->coord;
    if (!c || c->nlost == 0)
        return;
    char lost[COORD_LOST_MAX][RING_ID_LEN + 1];
    uint64_t lost_seq[COORD_LOST_MAX];
    uint32_t nlost = c->nlost;
    memcpy(lost, c->lost, sizeof lost);
    memcpy(lost_seq, c->lost_seq, sizeof lost_seq);
    c->nlost = 0;
    struct req_table *t = &sh->reqs;
    for (uint32_t slot = 0; slot < t->cap; slot++) {
        struct req *r = t->slots[slot];
        struct coord_op *op = r && r->done == coord_op_done ? r->owner_ptr : NULL;
        if (!op || op->phase != PH_FWD || !op->parent || !op->is_fwd_keyed ||
            op->is_fwd_again_due)
            continue;
        for (uint32_t i = 0; i < nlost; i++) {
            /* sent before the link ended (a later send dialled anew) */
            if (op->fwd_seq <= lost_seq[i] &&
                strcmp(op->view->members[op->fwd_to].id, lost[i]) == 0) {
                coord_fwd_lost(sh, r, op);
                break;
            }
        }
    }
}

/* Sends the command's bytes (cmd; wm: the message but its id and deadline)
 * as a FORWARD for sub-result `sub` of request req_id, or completes that
 * with an error in the client's protocol (fwd_mc) when no node takes it. */
static void coord_forward_send(struct shard *sh, uint64_t req_id, uint32_t sub, uint8_t fwd_mc,
                               struct wire_msg *wm, const struct buf *cmd,
                               const struct coord_route *route)
{
    struct req *r;
    const struct req *pr = req_find(&sh->reqs, req_id);
    int64_t until = pr ? pr->deadline_ms : shard_deadline(sh);
    struct coord_op *op = cmd->failed ? NULL : coord_op_new(sh, until - 1, &r);
    if (!op) {
        coord_fwd_fail(sh, req_id, sub, fwd_mc, "OOM", "out of memory");
        return;
    }
    op->phase = PH_FWD;
    op->parent = req_id;
    op->parent_sub = sub;
    op->fwd_mc = fwd_mc;
    struct wire_bytes value = {(const uint8_t *)cmd->data, (uint32_t)cmd->len};
    wm->kind = WIRE_REQUEST;
    wm->id = coord_wire_id(r->id, 0);
    wm->op = WIRE_OP_FORWARD;
    wm->deadline_ms = (uint32_t)coord_left(until - coord_margin_ms(sh));
    wm->partition = (uint16_t)route->partition;
    wm->n_values = 1;
    wm->values = &value;
    if (route->is_hop)
        wm->flags |= WIRE_MSG_HOPPED;
    op->fwd_to = route->to;
    op->fwd_seq = ++sh->coord->fwd_seq;
    int rc = coord_send(sh, op->view, route->to, wm);
    bool is_keyed = route->is_keyed && route->partition != COORD_NO_PARTITION;
    if (rc == -EAGAIN && is_keyed) /* no link to it now: the next live replica takes it */
        rc = coord_send_next(sh, op->view, route->partition, route->to, wm, &op->fwd_to);
    COORD_STAT(sh, forwarded);
    if (rc != 0) {
        char text[160];
        snprintf(text, sizeof text, "0 of 1 replicas answered: %s cannot be reached now",
                 op->view->members[route->to].client_addr);
        COORD_STAT(sh, unavailable);
        coord_fwd_fail(sh, req_id, sub, fwd_mc, "UNAVAILABLE", text);
        coord_complete(sh, r, 0); /* not armed yet: ends at req_arm */
    } else if (is_keyed) {
        op->partition = route->partition;
        op->is_fwd_keyed = true;
        op->is_fwd_write = route->is_rmw; /* any write (coord_route's is_rmw) */
        if (coord_fwd_keep(op, wm, cmd, route->is_rmw) && !route->is_rmw)
            coord_fwd_watch(sh, op, r);
    }
    req_arm(&sh->reqs, r);
}

void coord_forward(struct shard *sh, uint64_t req_id, uint32_t sub, int proto, uint8_t rq,
                   uint8_t wq, const struct resp_arg *argv, uint32_t argc,
                   const struct coord_route *route)
{
    struct buf cmd;
    buf_init(&cmd);
    coord_encode_command(&cmd, argv, argc);
    struct wire_msg wm = {
        .flags = proto == 3 ? WIRE_MSG_RESP3 : 0,
        .slot = argc > 1 ? (uint16_t)keyhash_slot(argv[1].ptr, argv[1].len) : 0,
        .r = rq,
        .w = wq,
        .key = {argc > 1 ? (const uint8_t *)argv[1].ptr : NULL, argc > 1 ? argv[1].len : 0}};
    coord_forward_send(sh, req_id, sub, 0, &wm, &cmd, route);
    buf_fini(&cmd);
}

/* One keyed memcached request as text: its line (without noreply: the
 * origin keeps that) and, for storage commands, its data block. */
static void coord_encode_mc(struct buf *out, const struct mc_request *mc)
{
    const char *name = mc_cmd_name(mc->cmd);
    int klen = (int)mc->keys[0].len;
    const char *key = mc->keys[0].ptr;
    switch (mc->cmd) {
    case MC_GAT:
    case MC_GATS:
        buf_printf(out, "%s %" PRId64 " %.*s\r\n", name, mc->exptime, klen, key);
        return;
    case MC_SET:
    case MC_ADD:
    case MC_REPLACE:
    case MC_APPEND:
    case MC_PREPEND:
    case MC_CAS:
        buf_printf(out, "%s %.*s %" PRIu32 " %" PRId64 " %" PRIu32, name, klen, key, mc->flags,
                   mc->exptime, mc->data_len);
        if (mc->cmd == MC_CAS)
            buf_printf(out, " %" PRIu64, mc->cas);
        buf_append_str(out, "\r\n");
        buf_append(out, mc->data, mc->data_len);
        buf_append_str(out, "\r\n");
        return;
    case MC_TOUCH:
        buf_printf(out, "%s %.*s %" PRId64 "\r\n", name, klen, key, mc->exptime);
        return;
    case MC_INCR:
    case MC_DECR:
        buf_printf(out, "%s %.*s %" PRIu64 "\r\n", name, klen, key, mc->delta);
        return;
    default: /* get, gets, delete */
        buf_printf(out, "%s %.*s\r\n", name, klen, key);
        return;
    }
}

void coord_forward_mc(struct shard *sh, uint64_t req_id, uint32_t sub, uint8_t rq, uint8_t wq,
                      const struct mc_request *mc, bool is_noreply, const struct coord_route *route)
{
    struct buf cmd;
    buf_init(&cmd);
    coord_encode_mc(&cmd, mc);
    struct wire_msg wm = {.flags = WIRE_MSG_MC,
                          .slot = (uint16_t)keyhash_slot(mc->keys[0].ptr, mc->keys[0].len),
                          .r = rq,
                          .w = wq,
                          .key = {(const uint8_t *)mc->keys[0].ptr, mc->keys[0].len}};
    coord_forward_send(sh, req_id, sub, is_noreply ? COORD_FWD_MC_QUIET : COORD_FWD_MC, &wm, &cmd,
                       route);
    buf_fini(&cmd);
}

/* ---- replies from peers ---- */

/* Whether an error text starts with its RESP code (an upper-case word and
 * a space: "ERR ...", "MISCONF ..."), as a replica's refusal of a FORWARD
 * does; others ("out of memory" from older builds) get "ERR". */
static bool coord_has_code(const struct wire_bytes *text)
{
    uint32_t i = 0;
    while (i < text->len && text->ptr[i] >= 'A' && text->ptr[i] <= 'Z')
        i++;
    return i > 0 && i < text->len && text->ptr[i] == ' ';
}

static void coord_on_fwd_reply(struct shard *sh, struct req *r, struct coord_op *op,
                               const struct wire_msg *wm)
{
    /* refused: it goes again (queued now, or already: a read sent on to a
     * second replica may be refused twice) */
    if (coord_is_view_changing(wm) && (op->is_fwd_again_due || coord_again_queue(sh, r, op)))
        return;
    struct wire_value_iter it;
    struct wire_bytes v = {0};
    wire_values_init(&it, wm);
    if (wm->status == WIRE_CODE_OK && wire_values_next(&it, &v)) {
        coord_fill_parent(sh, op->parent, op->parent_sub, op->fwd_mc, (const char *)v.ptr, v.len);
    } else {
        char text[WIRE_TEXT_MAX + 1];
        snprintf(text, sizeof text, "%.*s", (int)wm->text.len, (const char *)wm->text.ptr);
        const char *code = wm->status == WIRE_CODE_UNAVAILABLE ? "UNAVAILABLE"
                           : coord_has_code(&wm->text)         ? ""
                                                               : "ERR";
        coord_fwd_fail(sh, op->parent, op->parent_sub, op->fwd_mc, code, text);
    }
    op->parent = 0;
    req_sub_done(&sh->reqs, r);
}

/* A GET's NOT_FOUND from a replica still pulling the key's partition
 * (coord_on_get): the key may be on its way there. */
static bool coord_is_pulling_miss(const struct wire_msg *wm)
{
    return wm->status == WIRE_CODE_NOT_FOUND && wm->text.len == sizeof COORD_PULLING_MISS - 1 &&
           memcmp(wm->text.ptr, COORD_PULLING_MISS, sizeof COORD_PULLING_MISS - 1) == 0;
}

/* A GET answer: the replica's state, or none. */
static void coord_take_state(uint8_t *st, struct replica_state *g, const struct wire_msg *wm)
{
    if (wm->status == WIRE_CODE_NOT_FOUND) {
        *st = P_MISSING;
        return;
    }
    if (wm->status != WIRE_CODE_OK) {
        *st = P_FAIL;
        return;
    }
    struct wire_value_iter it;
    struct wire_bytes v = {0};
    wire_values_init(&it, wm);
    wire_values_next(&it, &v);
    replica_state_clear(g);
    buf_append(&g->meta, wm->meta.ptr, wm->meta.len);
    buf_append(&g->body, v.ptr, v.len);
    g->expire_at_ms = wm->expire_at_ms;
    *st = g->meta.failed || g->body.failed ? P_FAIL : P_OK;
}

void coord_prefetch_replies(struct shard *sh, const uint64_t *ids, uint32_t n)
{
    struct req *rs[64];
    if (n > 64)
        n = 64;
    for (uint32_t i = 0; i < n; i++) { /* the requests (their slots are dense) */
        uint32_t sub;
        rs[i] = req_find(&sh->reqs, coord_reply_req(ids[i], &sub));
        if (rs[i])
            __builtin_prefetch(rs[i]);
    }
    for (uint32_t i = 0; i < n; i++) /* then their operations' first line */
        if (rs[i] && rs[i]->done == coord_op_done && rs[i]->owner_ptr)
            __builtin_prefetch(rs[i]->owner_ptr);
}

void coord_on_reply(struct shard *sh, const struct wire_msg *wm)
{
    if (wm->op == WIRE_OP_SYNC && hint_on_reply(sh, wm))
        return; /* a hint delivered */
    if (aae_is_reply(wm)) {
        aae_on_reply(sh, wm);
        return;
    }
    if (transfer_is_op(wm->op)) {
        transfer_on_reply(sh, wm);
        return;
    }
    uint32_t k = (uint32_t)(wm->id >> COORD_SLOT_BITS) & 0xFF;
    uint64_t id = wm->id & ~((uint64_t)0xFF << COORD_SLOT_BITS);
    struct req *r = req_find(&sh->reqs, id);
    if (!r || r->done != coord_op_done || !r->owner_ptr)
        return; /* ended (deadline, answered), or a repair's ack */
    struct coord_op *op = r->owner_ptr;
    if (op->phase == PH_FWD) {
        if (op->parent)
            coord_on_fwd_reply(sh, r, op, wm);
        return;
    }
    if (op->nkeys) {
        coord_multi_on_reply(sh, r, op, k, wm);
        return;
    }
    bool is_hint = wm->op == WIRE_OP_HINT && k >= COORD_PEERS_MAX;
    if (is_hint)
        k -= COORD_PEERS_MAX; /* a stand-in's answer for peer k */
    if (k >= op->npeers || op->st[k] != P_WAIT)
        return;
    if ((op->phase == PH_WRITE) != (wm->op == WIRE_OP_SYNC || wm->op == WIRE_OP_HINT))
        return; /* a GET answered after an RMW's write started */
    if (op->phase == PH_WRITE && wm->status != WIRE_CODE_OK && !is_hint &&
        coord_is_misconf(&wm->text) && !op->is_hinted[k] && op->mine.meta.len > 0) {
        /* a live replica whose log cannot persist refused it: a stand-in
         * keeps it for that replica, as for a late one, and its hint is
         * delivered once the replica's log takes writes again */
        struct resp_arg key = {op->key, op->klen};
        coord_send_hint(sh, op, r, k, &key, &op->mine);
    }
    if (op->phase == PH_WRITE && wm->status != WIRE_CODE_OK &&
        coord_other_path_waits(op, k, is_hint))
        return; /* the peer or its stand-in may still acknowledge */
    op->waiting--;
    if (op->phase == PH_WRITE) {
        op->st[k] = wm->status == WIRE_CODE_OK ? P_OK : P_FAIL;
    } else if (op->has_hash && wm->status == WIRE_CODE_OK && wm->n_values == 0 &&
               wm->meta.len == 0) {
        op->st[k] = P_SAME; /* it holds the state whose hash the GET carried */
    } else {
        coord_take_state(&op->st[k], coord_op_got(op, k), wm);
    }
    op->ok += op->phase != PH_REPAIR &&
              (op->st[k] == P_OK || op->st[k] == P_MISSING || op->st[k] == P_SAME);
    op->is_sure |= op->st[k] == P_OK || op->st[k] == P_SAME ||
                   (op->st[k] == P_MISSING && !coord_is_pulling_miss(wm));
    coord_op_progress(sh, r, op);
}

/* ---- the replica side ---- */

#define COORD_TOO_LARGE "ERR value exceeds the peer's frame (its max_frame)"

static void coord_reply(struct shard *sh, uint64_t link, uint64_t id, uint8_t op, uint8_t status,
                        const char *text, const struct replica_state *st, uint16_t n_values,
                        const struct wire_bytes *values)
{
    struct wire_msg rm = {.kind = WIRE_REPLY,
                          .id = id,
                          .op = op,
                          .status = status,
                          .text = {(const uint8_t *)text, text ? (uint32_t)strlen(text) : 0},
                          .n_values = n_values,
                          .values = values};
    if (st) {
        rm.meta = (struct wire_bytes){(const uint8_t *)st->meta.data, (uint32_t)st->meta.len};
        rm.expire_at_ms = st->expire_at_ms;
    }
    int rc = peerlink_reply(sh, link, &rm);
    if (rc == -EINVAL && status != WIRE_CODE_ERROR) { /* larger than the peer's frame: say so,
                                                         so it does not wait for its deadline */
        struct wire_msg em = {
            .kind = WIRE_REPLY,
            .id = id,
            .op = op,
            .status = WIRE_CODE_ERROR,
            .text = {(const uint8_t *)COORD_TOO_LARGE, sizeof COORD_TOO_LARGE - 1}};
        rc = peerlink_reply(sh, link, &em);
    }
    if (rc != 0 && rc != -ENOENT)
        log_debug("a %s reply could not be sent (%s)", wire_op_name(op), strerror(-rc));
}

/* A SYNC's or a forwarded command's answer held until its record is
 * durable (or its deadline): owner = the link, aux = the wire id, kind =
 * the wire op. */
static bool coord_held_done(struct req_table *t, struct req *r, enum req_end how)
{
    struct shard *sh = t->ctx;
    if (how == REQ_END_DROP)
        return true;
    if (how == REQ_END_TIMEOUT) {
        coord_reply(sh, r->owner, (uint64_t)r->aux, (uint8_t)r->kind, WIRE_CODE_UNAVAILABLE,
                    "no answer within request-timeout", NULL, 0, NULL);
        return true;
    }
    if (r->kind == WIRE_OP_FORWARD) {
        const struct req_result *res = &r->subs[0]; /* one key's reply */
        static const struct req_result ok = {.status = REQ_OK,
                                             .body = {.data = "+OK\r\n", .len = 5}};
        for (uint32_t i = 0; r->nsub > 1 && i < r->nsub; i++) /* every shard's (FLUSHALL) */
            if (r->subs[i].status == REQ_ERR)
                res = &r->subs[i];
        if (r->nsub > 1 && res->status != REQ_ERR)
            res = &ok;
        struct wire_bytes v = {(const uint8_t *)res->body.data, (uint32_t)res->body.len};
        coord_reply(sh, r->owner, (uint64_t)r->aux, WIRE_OP_FORWARD, WIRE_CODE_OK, NULL, NULL, 1,
                    &v);
        return true;
    }
    coord_reply(sh, r->owner, (uint64_t)r->aux, (uint8_t)r->kind, WIRE_CODE_OK, NULL, NULL, 0,
                NULL);
    return true;
}

static struct req *coord_held_new(struct shard *sh, uint64_t link, const struct wire_msg *wm)
{
    int64_t deadline = shard_deadline_in(sh, wm->deadline_ms);
    struct req *r = req_new(&sh->reqs, 1, 1, coord_held_done, deadline);
    if (!r)
        return NULL;
    r->owner = link;
    r->aux = (int64_t)wm->id;
    r->kind = wm->op;
    return r;
}

/* A GET's answer straight from a versioned entry's bytes (replica_peek). */
static void coord_reply_version(struct shard *sh, uint64_t link, uint64_t id,
                                const struct store_version *v, uint64_t expire_at_ms)
{
    struct wire_bytes body = {(const uint8_t *)v->body, v->body_len};
    struct wire_msg rm = {.kind = WIRE_REPLY,
                          .id = id,
                          .op = WIRE_OP_GET,
                          .status = WIRE_CODE_OK,
                          .meta = {(const uint8_t *)v->meta, v->meta_len},
                          .expire_at_ms = expire_at_ms,
                          .n_values = 1,
                          .values = &body};
    int rc = peerlink_reply(sh, link, &rm);
    if (rc == -EINVAL) /* larger than the peer's frame: coord_reply's error */
        coord_reply(sh, link, id, WIRE_OP_GET, WIRE_CODE_ERROR, COORD_TOO_LARGE, NULL, 0, NULL);
    else if (rc != 0 && rc != -ENOENT)
        log_debug("a GET reply could not be sent (%s)", strerror(-rc));
}

static bool coord_park(struct shard *sh, uint64_t link, const struct wire_msg *wm, uint64_t hash);

/* True while this node may still lack keys of p (pending or streaming: a
 * read's miss here is no answer), as of the newest ring. */
static bool coord_lacks_keys(struct shard *sh, uint32_t p)
{
    transfer_catch_up(sh);
    return transfer_lacks_keys(transfer_state(sh->node, p));
}

/* True while this node pulls partition p (a transfer not yet durable), as
 * of the newest ring (the view may be a tick ahead of the transfer states). */
static bool coord_pulling(struct shard *sh, uint32_t p)
{
    transfer_catch_up(sh);
    return transfer_is_incoming(transfer_state(sh->node, p));
}

static void coord_on_get(struct shard *sh, uint64_t link, const struct wire_msg *wm, uint64_t hash,
                         bool is_loaded)
{
    struct store_version v;
    uint64_t expire_at_ms;
    int rc = replica_peek(sh->store, wm->key.ptr, wm->key.len, hash, &v, &expire_at_ms);
    if (rc == 0) { /* the common case (never cold): no copy of the state */
        COORD_STAT(sh, gets_in);
        if (wm->meta.len == COORD_HASH_LEN &&
            replica_state_hash(v.meta, v.meta_len, expire_at_ms) == coord_le64(wm->meta.ptr)) {
            COORD_STAT(sh, gets_same); /* "same": the coordinator holds this state */
            coord_reply(sh, link, wm->id, WIRE_OP_GET, WIRE_CODE_OK, NULL, NULL, 0, NULL);
            return;
        }
        coord_reply_version(sh, link, wm->id, &v, expire_at_ms);
        return;
    }
    struct replica_state st;
    replica_state_init(&st);
    rc = rc < 0 ? rc : replica_export(sh->store, sh->node, wm->key.ptr, wm->key.len, hash, &st);
    if (rc == -EAGAIN && !is_loaded && coord_park(sh, link, wm, hash)) {
        replica_state_fini(&st);
        return; /* served once its value is back in memory */
    }
    COORD_STAT(sh, gets_in);
    if (rc == -ENOENT && (wm->flags & WIRE_MSG_REAP) && coord_pulling(sh, wm->partition)) {
        /* a reap check: the key may be on its way here with the value the
         * tombstone deleted; NOT_FOUND would let the tombstone go */
        coord_reply(sh, link, wm->id, WIRE_OP_GET, WIRE_CODE_UNAVAILABLE,
                    "pulling the partition: not yet known whether the key is held", NULL, 0,
                    NULL);
    } else if (rc == -ENOENT) {
        /* pulling the partition, the key may be on its way: said so, the
         * coordinator waits for a replica that holds the partition whole */
        coord_reply(sh, link, wm->id, WIRE_OP_GET, WIRE_CODE_NOT_FOUND,
                    coord_lacks_keys(sh, wm->partition) ? COORD_PULLING_MISS : NULL, NULL, 0,
                    NULL);
    } else if (rc < 0 || st.meta.failed || st.body.failed) {
        coord_reply(sh, link, wm->id, WIRE_OP_GET, WIRE_CODE_ERROR,
                    rc < 0 ? strerror(-rc) : "out of memory", NULL, 0, NULL);
    } else {
        struct wire_bytes body = {(const uint8_t *)st.body.data, (uint32_t)st.body.len};
        coord_reply(sh, link, wm->id, WIRE_OP_GET, WIRE_CODE_OK, NULL, &st, 1, &body);
    }
    replica_state_fini(&st);
}

/* True while this node's copy of partition p is being dropped (its handoff
 * checks are over: a write taken now would go with it). Such a write is
 * refused whatever this shard's view says (it may lag a ring change by a
 * loop turn): its coordinator counts this replica as failed, so the write
 * is acknowledged only where it stays (or gets -UNAVAILABLE, short of W),
 * and a hint's stand-in keeps it and tries again. The transfer state may
 * lag the view by a tick, so a DROPPING one is caught up first (a ring
 * that gave the partition back makes it a pull). */
static bool coord_dropping(struct shard *sh, uint32_t p)
{
    if (__builtin_expect(transfer_state(sh->node, p) != TRANSFER_DROPPING, 1))
        return false;
    transfer_catch_up(sh);
    return transfer_state(sh->node, p) == TRANSFER_DROPPING;
}

/* MISCONF (persist.h): true, with the refusal's RESP error line in
 * why[0..len), while this node refuses writes because its log cannot
 * persist. */
static bool coord_misconf(struct shard *sh, char *why, size_t len)
{
    struct buf refusal;
    buf_init(&refusal);
    bool refused = persist_refuse_resp(sh->node, &refusal);
    if (refused) /* "-MISCONF ...\r\n": the line without its framing */
        snprintf(why, len, "%.*s", refusal.len > 3 ? (int)refusal.len - 3 : 0, refusal.data + 1);
    buf_fini(&refusal);
    return refused;
}

static void coord_on_sync(struct shard *sh, uint64_t link, const struct wire_msg *wm, uint64_t hash,
                          bool is_loaded)
{
    char why[WIRE_TEXT_MAX];
    if (coord_misconf(sh, why, sizeof why)) { /* refused at once, as a client's write */
        if (wm->id)
            coord_reply(sh, link, wm->id, WIRE_OP_SYNC, WIRE_CODE_ERROR, why, NULL, 0, NULL);
        return;
    }
    struct wire_value_iter it;
    struct wire_bytes body = {0};
    wire_values_init(&it, wm);
    wire_values_next(&it, &body);
    uint64_t seq0 = persist_last_seq(sh->persist);
    int rc = replica_apply(sh->store, sh->node, wm->key.ptr, wm->key.len, hash, wm->meta.ptr,
                           wm->meta.len, body.ptr, body.len, wm->expire_at_ms);
    if (rc == -EAGAIN && !is_loaded && coord_park(sh, link, wm, hash))
        return; /* applied once the stored value is back in memory */
    COORD_STAT(sh, syncs_in);
    if (rc < 0) {
        coord_reply(sh, link, wm->id, WIRE_OP_SYNC, WIRE_CODE_ERROR, strerror(-rc), NULL, 0, NULL);
        return;
    }
    uint64_t seq = persist_reply_seq(sh->persist, seq0, hash, false);
    struct req *r = seq && wm->id ? coord_held_new(sh, link, wm) : NULL;
    if (!r) {
        if (wm->id) /* a repair's (id 0) awaits no answer */
            coord_reply(sh, link, wm->id, WIRE_OP_SYNC, WIRE_CODE_OK, NULL, NULL, 0, NULL);
        return;
    }
    req_hold(r, seq);
    req_sub_done(&sh->reqs, r);
    req_arm(&sh->reqs, r);
}

int coord_hint_apply(struct shard *sh, const struct wire_msg *wm, uint64_t *seq)
{
    *seq = 0;
    char why[WIRE_TEXT_MAX];
    if (wm->partition >= sh->node->npartitions ||
        sh->node->partition_shard[wm->partition] != sh->id)
        return -EXDEV;
    if (coord_misconf(sh, why, sizeof why))
        return -EROFS;
    struct wire_bytes body = wm->n_values ? wm->values[0] : (struct wire_bytes){0};
    uint64_t hash = keyhash(wm->key.ptr, wm->key.len);
    uint64_t seq0 = persist_last_seq(sh->persist);
    int rc = replica_apply(sh->store, sh->node, wm->key.ptr, wm->key.len, hash, wm->meta.ptr,
                           wm->meta.len, body.ptr, body.len, wm->expire_at_ms);
    if (rc < 0)
        return rc;
    *seq = persist_reply_seq(sh->persist, seq0, hash, false);
    return 0;
}

/* A shard-wide write (FLUSHALL, FLUSHDB) a peer sends to every member: run
 * on every shard here, never sent on. */
static void coord_forwarded_all(struct shard *sh, uint64_t link, const struct wire_msg *wm,
                                const struct cmd_def *d, struct resp_arg *argv, uint32_t argc)
{
    uint32_t nshards = sh->node->nshards;
    int64_t deadline = shard_deadline_in(sh, wm->deadline_ms);
    struct req *r = req_new(&sh->reqs, nshards, nshards, coord_held_done, deadline);
    if (!r) {
        coord_reply(sh, link, wm->id, WIRE_OP_FORWARD, WIRE_CODE_ERROR, "out of memory", NULL, 0,
                    NULL);
        return;
    }
    r->owner = link;
    r->aux = (int64_t)wm->id;
    r->kind = WIRE_OP_FORWARD;
    for (uint32_t s = 0; s < nshards; s++) {
        struct cmd_msg *m = cmd_msg_for(sh, r->id, s, s, d->handler,
                                        d->flags | CMD_BARRIER | CMD_NOKEY, 2, argv, argc, 0);
        if (!m) {
            r->subs[s].status = REQ_ERR;
            resp_write_error(&r->subs[s].body, "OOM out of memory");
            req_sub_done(&sh->reqs, r);
        } else if (s == sh->id) {
            cmd_msg_execute(sh, m);
        } else {
            shard_send(sh, s, m);
        }
    }
    req_arm(&sh->reqs, r);
}

uint32_t coord_peers(const struct shard *sh, uint32_t *out, uint32_t cap)
{
    if (!coord_is_cluster(sh))
        return 0;
    const struct coord_view *v = sh->coord->view;
    uint32_t n = 0;
    for (uint32_t i = 0; i < v->n_members && n < cap; i++)
        if (i != v->self && !v->members[i].is_down)
            out[n++] = i;
    return n;
}

/* The row of a forwarded command, or NULL with why[0..len) its RESP error
 * line: the payload is one RESP command (an array; nothing after it), of a
 * kind a peer forwards (one key's command, or a write to every shard:
 * FLUSHALL), and it passes a client's checks (arity, key sizes, MISCONF
 * for a write). A peer's bytes are trusted no more than a client's. */
static const struct cmd_def *coord_forward_checked(struct shard *sh, const struct wire_bytes *cmd,
                                                   enum resp_status ps, size_t consumed,
                                                   struct resp_arg *argv, uint32_t argc, char *why,
                                                   size_t len)
{
    if (ps != RESP_OK || cmd->len == 0 || cmd->ptr[0] != '*' || consumed != cmd->len || argc == 0) {
        snprintf(why, len, "ERR a forwarded command must be one RESP array and nothing else");
        return NULL;
    }
    const struct cmd_def *d = cmd_lookup(argv[0].ptr, argv[0].len);
    bool is_forwardable =
        d && ((d->route == CMD_ROUTE_ALL && (d->flags & CMD_WRITE)) ||
              (argc >= 2 && (d->route == CMD_ROUTE_KEY ||
                             (d->route == CMD_ROUTE_EACH && argc == 1 + d->split_step))));
    if (!is_forwardable) {
        snprintf(why, len, "ERR not a single-key command");
        return NULL;
    }
    if (!cmd_args_ok(sh->node, d, argv, argc, why, len))
        return NULL;
    /* a keyed write is sent on to another replica while this node's log
     * is failing (coord_route_slot); FLUSHALL is refused */
    return d->route == CMD_ROUTE_ALL && (d->flags & CMD_WRITE) && coord_misconf(sh, why, len) ? NULL
                                                                                              : d;
}

/* Why a forwarded request routed as rt is refused here, or NULL: every
 * replica is down, or it would be sent on a second time. */
static const char *coord_forward_refusal(const struct coord_route *rt, const struct wire_msg *wm)
{
    if (rt->kind == COORD_DOWN)
        return rt->error;
    if (rt->kind == COORD_FORWARD && (wm->flags & WIRE_MSG_HOPPED))
        return COORD_VIEW_CHANGING;
    return NULL;
}

/* Runs forwarded request r's message m on its shard, with the R, W and
 * deadline the peer asked for (RESP and memcached forwards alike). */
static void coord_forwarded_run(struct shard *sh, struct req *r, struct cmd_msg *m,
                                uint32_t target, const struct wire_msg *wm)
{
    m->r = wm->r;
    m->w = wm->w;
    m->deadline_ms = r->deadline_ms;
    if (target == sh->id)
        cmd_msg_execute(sh, m);
    else
        shard_send(sh, target, m);
    req_arm(&sh->reqs, r);
}

static void coord_on_forward_parsed(struct shard *sh, uint64_t link, const struct wire_msg *wm,
                                    const struct wire_bytes *cmd, enum resp_status ps,
                                    size_t consumed, struct resp_arg *argv, uint32_t argc);

/* A client's command for this node to coordinate; its reply's RESP bytes
 * go back. Only single-key commands come (the sender split the rest), but
 * one key's may have many arguments (BITFIELD's subcommands, BITOP's
 * sources): past COORD_FWD_ARGS they are parsed into a heap array, as
 * many as a client's request may hold. */
static void coord_on_forward(struct shard *sh, uint64_t link, const struct wire_msg *wm)
{
    struct wire_value_iter it;
    struct wire_bytes cmd = {0};
    wire_values_init(&it, wm);
    wire_values_next(&it, &cmd);
    struct resp_arg stack_argv[COORD_FWD_ARGS], *argv = stack_argv;
    struct resp_state rs;
    memset(&rs, 0, sizeof rs);
    uint32_t argc = 0;
    size_t consumed = 0, need = 0;
    const char *err = NULL;
    char scratch[8];
    COORD_STAT(sh, forwards_in);
    enum resp_status ps =
        resp_parse(&sh->env.resp_limits, &rs, (const char *)cmd.ptr, cmd.len, argv, COORD_FWD_ARGS,
                   &argc, scratch, sizeof scratch, &consumed, &need, &err);
    if (ps == RESP_NEED_ARGS && (argv = mi_malloc((size_t)argc * sizeof *argv)) != NULL)
        ps = resp_parse(&sh->env.resp_limits, &rs, (const char *)cmd.ptr, cmd.len, argv, argc,
                        &argc, scratch, sizeof scratch, &consumed, &need, &err);
    coord_on_forward_parsed(sh, link, wm, &cmd, ps, consumed, argv ? argv : stack_argv,
                            argv ? argc : 0);
    if (argv != stack_argv)
        mi_free(argv);
}

static void coord_on_forward_parsed(struct shard *sh, uint64_t link, const struct wire_msg *wm,
                                    const struct wire_bytes *cmdp, enum resp_status ps,
                                    size_t consumed, struct resp_arg *argv, uint32_t argc)
{
    const struct wire_bytes cmd = *cmdp;
    char why[WIRE_TEXT_MAX];
    const struct cmd_def *d =
        ps == RESP_OK && argc >= 1 && consumed == cmd.len ? cmd_lookup(argv[0].ptr, argv[0].len)
                                                           : NULL;
    if (d && d->handler == keyspace_refuse) { /* RING.LOCAL: a keyspace command's node-local form */
        keyspace_serve(sh, link, wm, argv, argc);
        return;
    }
    /* A transaction (cmd_multi.h): EXEC with its key, watches and queue,
     * checked as a client's EXEC would have been (MISCONF: coord_route_slot
     * sends it on from a node whose log is failing). */
    bool is_exec = d && d->handler == cmd_exec && argc == 4;
    if (!is_exec)
        d = coord_forward_checked(sh, &cmd, ps, consumed, argv, argc, why, sizeof why);
    else if (!cmd_multi_forward_ok(sh->node, argv, argc, why, sizeof why))
        d = NULL;
    if (!d) {
        coord_reply(sh, link, wm->id, WIRE_OP_FORWARD, WIRE_CODE_ERROR, why, NULL, 0, NULL);
        return;
    }
    if (d->route == CMD_ROUTE_ALL) {
        coord_forwarded_all(sh, link, wm, d, argv, argc);
        return;
    }
    uint64_t hash = keyhash(argv[1].ptr, argv[1].len);
    uint32_t flags = (is_exec ? CMD_RMW : cmd_flags_for(d, argv, argc)) | CMD_COORD | CMD_FORWARDED;
    int proto = wm->flags & WIRE_MSG_RESP3 ? 3 : 2;
    struct coord_route rt; /* a node that holds no replica sends it on, once */
    coord_route(sh, NULL, argv[1].ptr, argv[1].len, hash, flags, &rt);
    const char *refusal = coord_forward_refusal(&rt, wm);
    struct req *r = refusal ? NULL : coord_held_new(sh, link, wm);
    if (!r) {
        coord_reply(sh, link, wm->id, WIRE_OP_FORWARD, WIRE_CODE_ERROR,
                    refusal ? refusal : "OOM out of memory", NULL, 0, NULL);
        return;
    }
    if (rt.kind == COORD_FORWARD) {
        coord_forward(sh, r->id, 0, proto, wm->r, wm->w, argv, argc, &rt);
        req_arm(&sh->reqs, r);
        return;
    }
    uint32_t target = node_shard_of(sh->node, argv[1].ptr, argv[1].len, hash);
    cmd_handler *h = is_exec ? cmd_multi_exec_shard : d->handler;
    struct cmd_msg *m = cmd_msg_for(sh, r->id, 0, target, h, flags, proto, argv, argc, hash);
    if (!m) {
        req_cancel(&sh->reqs, r->id);
        coord_reply(sh, link, wm->id, WIRE_OP_FORWARD, WIRE_CODE_ERROR, "OOM out of memory", NULL,
                    0, NULL);
        return;
    }
    coord_forwarded_run(sh, r, m, target, wm);
}

/* A forwarded memcached request (WIRE_MSG_MC): exactly one keyed request,
 * run coordinated here as a local memcached client's is (CMD_FORWARDED),
 * or sent on once when this node holds no replica (as coord_on_forward
 * does). Its whole reply goes back: noreply is the origin's to honour, so
 * it is cleared here. */
static void coord_on_forward_mc(struct shard *sh, uint64_t link, const struct wire_msg *wm)
{
    struct wire_value_iter it;
    struct wire_bytes cmd = {0};
    wire_values_init(&it, wm);
    wire_values_next(&it, &cmd);
    struct mc_state ps = {0};
    struct mc_request req;
    struct mc_key key;
    size_t consumed = 0, need = 0;
    const char *err = NULL;
    COORD_STAT(sh, forwards_in);
    bool ok = mc_parse(&sh->env.mc_limits, &ps, (const char *)cmd.ptr, cmd.len, &req, &key, 1,
                       &consumed, &need, &err) == MC_OK &&
              consumed == cmd.len && req.nkeys == 1 && !(cmd_mc_def(req.cmd)->flags & CMD_NOKEY);
    uint64_t hash = ok ? keyhash(key.ptr, key.len) : 0;
    uint32_t flags = ok ? cmd_mc_flags(&req) | CMD_COORD | CMD_FORWARDED : 0;
    struct coord_route rt = {.kind = COORD_LOCAL}; /* no replica here: sent on, once */
    if (ok)
        coord_route(sh, NULL, key.ptr, key.len, hash, flags, &rt);
    const char *refusal = !ok ? "not one keyed memcached request" : coord_forward_refusal(&rt, wm);
    struct req *r = refusal ? NULL : coord_held_new(sh, link, wm);
    req.noreply = false;
    if (r && rt.kind == COORD_FORWARD) {
        coord_forward_mc(sh, r->id, 0, wm->r, wm->w, &req, false, &rt);
        req_arm(&sh->reqs, r);
        return;
    }
    uint32_t target = r ? node_shard_of(sh->node, key.ptr, key.len, hash) : 0;
    struct cmd_msg *m = r ? cmd_msg_for_mc(sh, r->id, 0, target, &req, flags, hash) : NULL;
    if (!m) {
        if (r)
            req_cancel(&sh->reqs, r->id);
        coord_reply(sh, link, wm->id, WIRE_OP_FORWARD, WIRE_CODE_ERROR,
                    refusal ? refusal : "out of memory", NULL, 0, NULL);
        return;
    }
    coord_forwarded_run(sh, r, m, target, wm);
}

/* Values beyond RAM, the replica side: a peer's GET or SYNC of a key whose
 * value is on disk only (replica.h: -EAGAIN) is copied and waits for the
 * value (coord_load), then is served again, once. */
struct coord_parked {
    uint64_t link;
    struct wire_msg wm; /* key, meta and raw_values point into data */
    char data[];
};

static void coord_serve(struct shard *sh, uint64_t link, const struct wire_msg *wm, uint64_t hash,
                        bool is_loaded);
static bool coord_misconf(struct shard *sh, char *why, size_t len);

static bool coord_unparked(struct req_table *t, struct req *r, enum req_end how)
{
    struct shard *sh = t->ctx;
    struct coord_parked *pk = r->owner_ptr;
    if (how == REQ_END_TIMEOUT && pk->wm.id) /* a repair's (id 0) awaits no answer */
        coord_reply(sh, pk->link, pk->wm.id, pk->wm.op, WIRE_CODE_UNAVAILABLE,
                    "the value was not read back from disk within request-timeout", NULL, 0, NULL);
    else if (how != REQ_END_DROP)
        coord_serve(sh, pk->link, &pk->wm, keyhash(pk->wm.key.ptr, pk->wm.key.len), true);
    mi_free(pk);
    return true;
}

/* Parks wm until its key's value is in memory. False when it cannot be
 * (no tier, out of memory): the caller answers the error. */
static bool coord_park(struct shard *sh, uint64_t link, const struct wire_msg *wm, uint64_t hash)
{
    if (!sh->tier)
        return false;
    size_t klen = wm->key.len, mlen = wm->meta.len, vlen = wm->raw_values.len;
    struct coord_parked *pk = mi_malloc(sizeof *pk + klen + mlen + vlen + 1);
    if (!pk)
        return false;
    pk->link = link;
    pk->wm = *wm;
    pk->wm.values = NULL;
    memcpy(pk->data, wm->key.ptr, klen);
    memcpy(pk->data + klen, wm->meta.ptr, mlen);
    memcpy(pk->data + klen + mlen, wm->raw_values.ptr, vlen);
    pk->wm.key.ptr = (const uint8_t *)pk->data;
    pk->wm.meta.ptr = (const uint8_t *)pk->data + klen;
    pk->wm.raw_values.ptr = (const uint8_t *)pk->data + klen + mlen;
    struct resp_arg key = {pk->data, klen};
    int64_t deadline = shard_deadline_in(sh, wm->deadline_ms);
    if (coord_load(sh, &key, hash, coord_unparked, pk, deadline))
        return true;
    mi_free(pk);
    return false;
}

/* A stand-in's side of sloppy quorum: a HINT for a node of the key's
 * preference list is kept in the hint log (hints.h), never in the store, and
 * acknowledged once durable. A node that holds a replica of the key by now
 * (its view changed) applies it as the SYNC it carries. */
static void coord_on_hint(struct shard *sh, uint64_t link, const struct wire_msg *wm,
                          uint64_t hash)
{
    if (coord_is_cluster(sh) &&
        coord_holds(sh->coord->view, wm->partition, coord_n_eff(sh->node, sh->coord->view))) {
        if (coord_dropping(sh, wm->partition)) /* the stand-in keeps it, tries again */
            coord_reply(sh, link, wm->id, WIRE_OP_HINT, WIRE_CODE_ERROR,
                        "this node is dropping its copy of the key's partition", NULL, 0, NULL);
        else
            coord_serve(sh, link, wm, hash, false);
        return;
    }
    struct wire_value_iter it;
    struct wire_bytes body, target = {0};
    char id[RING_ID_LEN + 1] = "";
    wire_values_init(&it, wm);
    if (wire_values_next(&it, &body) && wire_values_next(&it, &target) &&
        target.len == RING_ID_LEN) {
        memcpy(id, target.ptr, RING_ID_LEN);
        id[RING_ID_LEN] = '\0';
    }
    char why[WIRE_TEXT_MAX];
    bool is_self = coord_is_cluster(sh) &&
                   strcmp(id, sh->coord->view->members[sh->coord->view->self].id) == 0;
    int rc = !coord_is_cluster(sh) || is_self ? -EINVAL
             : coord_misconf(sh, why, sizeof why) ? -EIO
                                                  : hint_take(sh, link, wm, id);
    if (rc == 0)
        return; /* answered once durable */
    const char *text = rc == -ENOSPC   ? "hint budget full (hint-max-bytes)"
                       : rc == -EIO    ? why
                       : rc == -ENOENT ? "no data directory to keep hints in"
                       : rc == -EINVAL ? "not a valid hint"
                                       : "out of memory";
    coord_reply(sh, link, wm->id, WIRE_OP_HINT, WIRE_CODE_ERROR, text, NULL, 0, NULL);
}

void coord_on_request(struct shard *sh, uint64_t link, const struct wire_msg *wm, uint64_t hash)
{
    if (aae_is_op(wm->op)) { /* anti-entropy's own: a partition's tree, no key */
        aae_on_request(sh, link, wm);
        return;
    }
    if (aae_refuses(sh, wm)) { /* a repair's GET or SYNC just after a FLUSHALL here */
        coord_reply(sh, link, wm->id, wm->op, WIRE_CODE_UNAVAILABLE,
                    "anti-entropy paused: this node was just flushed", NULL, 0, NULL);
        return;
    }
    if (transfer_is_op(wm->op)) {
        transfer_on_request(sh, link, wm);
        return;
    }
    if (wm->op == WIRE_OP_FORWARD && (wm->flags & WIRE_MSG_MC)) {
        coord_on_forward_mc(sh, link, wm);
        return;
    }
    if (wm->op == WIRE_OP_FORWARD) {
        coord_on_forward(sh, link, wm);
        return;
    }
    if (wm->partition >= sh->node->npartitions ||
        sh->node->partition_shard[wm->partition] != sh->id ||
        node_partition_of(sh->node, wm->key.ptr, wm->key.len, hash) != wm->partition) {
        coord_reply(sh, link, wm->id, wm->op, WIRE_CODE_ERROR, "the partition is not on this shard",
                    NULL, 0, NULL);
        return;
    }
    if (wm->op == WIRE_OP_HINT) {
        coord_on_hint(sh, link, wm, hash);
        return;
    }
    /* GET and SYNC serve replicas only (a stand-in takes a HINT instead);
     * a copy being dropped takes no write (coord_dropping) */
    /* ... and a GET asks a node still releasing the partition too: it holds
     * it whole until its new replicas have it (coord_ask_source) */
    if (coord_is_cluster(sh) &&
        (!coord_holds(sh->coord->view, wm->partition, coord_n_eff(sh->node, sh->coord->view)) ||
         (wm->op != WIRE_OP_GET && coord_dropping(sh, wm->partition))) &&
        !(wm->op == WIRE_OP_GET &&
          transfer_state(sh->node, wm->partition) == TRANSFER_RELEASING)) {
        coord_reply(sh, link, wm->id, wm->op, WIRE_CODE_ERROR,
                    "this node holds no replica of the key's partition", NULL, 0, NULL);
        return;
    }
    coord_serve(sh, link, wm, hash, false);
}

/* GET and SYNC; is_loaded: a parked one, served again (no more parking). */
static void coord_serve(struct shard *sh, uint64_t link, const struct wire_msg *wm, uint64_t hash,
                        bool is_loaded)
{
    switch (wm->op) {
    case WIRE_OP_GET:
        coord_on_get(sh, link, wm, hash, is_loaded);
        return;
    case WIRE_OP_SYNC:
    case WIRE_OP_HINT: /* at a replica of its key: its SYNC */
        coord_on_sync(sh, link, wm, hash, is_loaded);
        return;
    default:
        coord_reply(sh, link, wm->id, wm->op, WIRE_CODE_ERROR, "operation not served", NULL, 0,
                    NULL);
        return;
    }
}

/* ---- reaping (see the design comment) ---- */

/* True when the node's log takes delete records now (replica_reap's test). */
static bool coord_log_takes(const struct node *n)
{
    return !coord_log_failing(n) && __atomic_load_n(&n->log_over_cap, __ATOMIC_RELAXED) == 0;
}

/* Deletes the key's tombstone here if it is still the one checked. */
static void coord_reap_delete(struct shard *sh, const struct coord_op *op)
{
    struct replica_state cur;
    replica_state_init(&cur);
    int rc = replica_export(sh->store, sh->node, op->key, op->klen, op->hash, &cur);
    if (rc == 0 && replica_same(&cur, op->mine.meta.data, op->mine.meta.len) &&
        coord_log_takes(sh->node)) {
        store_delete(sh->store, op->key, op->klen, op->hash); /* logs a delete */
        COORD_STAT(sh, tombstones_reaped);
    }
    replica_state_fini(&cur);
}

/* Some replica holds more than the tombstone: merge its state here and
 * send the merged one back (it gets the tombstone); checked again later. */
static void coord_reap_repair(struct shard *sh, struct req *r, struct coord_op *op)
{
    for (uint32_t k = 0; k < op->npeers; k++) {
        const struct replica_state *g = &op->got[k];
        if (op->st[k] == P_OK && !replica_same(&op->mine, g->meta.data, g->meta.len))
            replica_apply(sh->store, sh->node, op->key, op->klen, op->hash, g->meta.data,
                          g->meta.len, g->body.data, g->body.len, g->expire_at_ms);
    }
    struct replica_state merged;
    replica_state_init(&merged);
    struct resp_arg key = {op->key, op->klen};
    if (replica_export(sh->store, sh->node, op->key, op->klen, op->hash, &merged) == 0) {
        bool changed = !replica_same(&merged, op->mine.meta.data, op->mine.meta.len);
        for (uint32_t k = 0; k < op->npeers; k++) {
            const struct replica_state *g = &op->got[k];
            bool is_stale = (op->st[k] == P_MISSING && changed) ||
                            (op->st[k] == P_OK && !replica_same(&merged, g->meta.data, g->meta.len));
            if (is_stale &&
                coord_send_sync(sh, op->view, op->peer[k], 0, op, r, &key, &merged) == 0)
                COORD_STAT(sh, reap_repairs);
        }
    }
    replica_state_fini(&merged);
}

/* The check ended: reap, repair, or leave the tombstone for a later pass. */
static void coord_reap_end(struct shard *sh, struct req *r, struct coord_op *op,
                           enum req_end how)
{
    struct coord *c = sh->coord;
    for (uint32_t i = 0; c && i < c->nreaps; i++) {
        if (c->reap_hash[i] == op->hash) {
            c->reap_hash[i] = c->reap_hash[--c->nreaps];
            break;
        }
    }
    bool all_in = how == REQ_END_DONE, is_stale = false;
    for (uint32_t k = 0; k < op->npeers; k++) {
        const struct replica_state *g = &op->got[k];
        all_in &= op->st[k] == P_OK || op->st[k] == P_MISSING;
        is_stale |= op->st[k] == P_OK && !replica_same(&op->mine, g->meta.data, g->meta.len);
    }
    if (is_stale)
        coord_reap_repair(sh, r, op);
    else if (all_in)
        coord_reap_delete(sh, op);
    if (is_stale || !all_in)
        COORD_STAT(sh, reaps_deferred);
}

/* Starts the check of one candidate (see the design comment); false when
 * no more can start now. */
static bool coord_reap_offer(void *arg, const void *key, uint32_t klen, uint64_t hash)
{
    struct shard *sh = arg;
    struct coord *c = sh->coord;
    if (c->nreaps >= COORD_REAPS_MAX)
        return false;
    for (uint32_t i = 0; i < c->nreaps; i++)
        if (c->reap_hash[i] == hash)
            return true; /* checked now */
    const struct coord_view *v = c->view;
    uint32_t p = node_partition_of(sh->node, key, klen, hash);
    unsigned ts = transfer_state(sh->node, p);
    if (ts != TRANSFER_NONE && ts != TRANSFER_DONE) {
        /* pulling p (a key it has not received yet may still hold the value
         * the tombstone deleted somewhere) or releasing it: not now */
        COORD_STAT(sh, reaps_deferred);
        return true;
    }
    const uint32_t *list = coord_list(v, p);
    uint32_t n_eff = coord_n_eff(sh->node, v), peers[COORD_PEERS_MAX], npeers = 0;
    for (uint32_t k = 0; k < n_eff; k++) {
        if (list[k] == v->self)
            continue;
        if (!coord_live(v, list[k]) || npeers == COORD_PEERS_MAX) {
            COORD_STAT(sh, reaps_deferred); /* a replica down: not now */
            return true;
        }
        peers[npeers++] = list[k];
    }
    struct req *r;
    struct coord_op *op = coord_op_new(sh, 0, &r);
    if (!op)
        return false;
    op->phase = PH_REAP;
    int rc = coord_op_set_key(op, key, klen)
                 ? replica_export(sh->store, sh->node, key, klen, hash, &op->mine)
                 : -ENOMEM;
    if (rc != 0 || op->mine.meta.failed || op->mine.body.failed) {
        req_cancel(&sh->reqs, r->id); /* REQ_END_DROP frees the op */
        return rc != -ENOMEM;
    }
    op->hash = hash;
    op->partition = p;
    op->slot = keyhash_slot(key, klen);
    op->n_eff = n_eff;
    c->reap_hash[c->nreaps++] = hash;
    struct wire_msg wm = {.kind = WIRE_REQUEST,
                          .op = WIRE_OP_GET,
                          .flags = WIRE_MSG_REAP,
                          .deadline_ms = (uint32_t)coord_deadline_left(sh, r),
                          .partition = (uint16_t)p,
                          .slot = (uint16_t)op->slot,
                          .key = {(const uint8_t *)key, klen}};
    op->npeers = npeers;
    for (uint32_t k = 0; k < npeers; k++) {
        op->peer[k] = peers[k];
        wm.id = coord_wire_id(r->id, k);
        op->st[k] = coord_send(sh, v, peers[k], &wm) == 0 ? P_WAIT : P_FAIL;
        op->waiting += op->st[k] == P_WAIT;
    }
    coord_op_progress(sh, r, op);
    req_arm(&sh->reqs, r); /* every send failed (or none): ends here */
    return true;
}

void coord_reap(struct shard *sh, int64_t now_unix_ms)
{
    struct node *n = sh->node;
    if (sh->coord && sh->coord->late_len)
        coord_late_tick(sh); /* sloppy quorum for late replicas */
    if (sh->coord && sh->coord->fwd_len)
        coord_fwd_tick(sh); /* forwards whose replica is late go on to the next */
    if (sh->coord && sh->coord->again_len)
        coord_again_send(sh, false); /* forwards refused while a view changed */
    if (!coord_is_cluster(sh)) {
        uint32_t reaped = replica_reap(sh->store, n, now_unix_ms, REPLICA_REAP_PER_TICK);
        if (reaped && sh->coord)
            COORD_STAT_ADD(sh, tombstones_reaped, reaped);
        return;
    }
    if (sh->coord->nreaps < COORD_REAPS_MAX) {
        transfer_catch_up(sh); /* the offers read the partitions' transfer states */
        replica_reap_offer(sh->store, n, now_unix_ms, REPLICA_REAP_PER_TICK, coord_reap_offer, sh);
    }
}

/* ---- anti-entropy (aae.h) ---- */

uint64_t coord_view_version(const struct shard *sh)
{
    return sh->coord && sh->coord->view ? sh->coord->view->version : 0;
}

bool coord_aae_peers(const struct shard *sh, uint32_t p, uint32_t *peers, uint32_t cap,
                     uint32_t *npeers)
{
    *npeers = 0;
    if (!coord_is_cluster(sh) || p >= sh->coord->view->q)
        return false;
    const struct coord_view *v = sh->coord->view;
    const uint32_t *list = coord_list(v, p);
    uint32_t n_eff = coord_n_eff(sh->node, v);
    uint32_t live[RING_REPLICAS_MAX], nlive = 0, self = UINT32_MAX;
    for (uint32_t k = 0; k < n_eff && nlive < RING_REPLICAS_MAX; k++) {
        if (!coord_live(v, list[k]))
            continue;
        if (list[k] == v->self)
            self = nlive;
        live[nlive++] = list[k];
    }
    if (self == 0) { /* the first: every other */
        for (uint32_t k = 1; k < nlive && *npeers < cap; k++)
            peers[(*npeers)++] = live[k];
    } else if (self != UINT32_MAX && self + 1 < nlive && cap > 0) {
        peers[(*npeers)++] = live[self + 1]; /* the next (the first has the last already) */
    }
    return *npeers > 0;
}

bool coord_holds_partition(const struct shard *sh, uint32_t p)
{
    if (!coord_is_cluster(sh) || p >= sh->coord->view->q)
        return false;
    return coord_holds(sh->coord->view, p, coord_n_eff(sh->node, sh->coord->view));
}

struct req *coord_load_value(struct shard *sh, const void *key, uint32_t klen, uint64_t hash,
                             req_done_fn *done, void *owner, int64_t deadline_ms)
{
    struct resp_arg k = {key, klen};
    return sh->tier ? coord_load(sh, &k, hash, done ? done : coord_load_dropped, owner, deadline_ms)
                    : NULL;
}

int coord_send_member(struct shard *sh, uint32_t member, const struct wire_msg *m)
{
    const struct coord_view *v = sh->coord ? sh->coord->view : NULL;
    if (!v || member >= v->n_members || member == v->self)
        return -ENOENT;
    return peerlink_request(sh, v->members[member].id, v->members[member].cluster_addr, m);
}

/* ---- INFO ---- */

void coord_info(const struct node *n, struct buf *out)
{
    struct coord_stats sum = {0};
    for (uint32_t i = 0; i < n->nshards; i++) {
        const struct coord *c = n->shards[i]->coord;
        if (!c)
            continue;
#define COORD_SUM(f) sum.f += __atomic_load_n(&c->stats.f, __ATOMIC_RELAXED)
        COORD_SUM(reads);
        COORD_SUM(writes);
        COORD_SUM(forwarded);
        COORD_SUM(moved);
        COORD_SUM(unavailable);
        COORD_SUM(read_repairs);
        COORD_SUM(syncs_in);
        COORD_SUM(gets_in);
        COORD_SUM(forwards_in);
        COORD_SUM(tombstones_reaped);
        COORD_SUM(reaps_deferred);
        COORD_SUM(reap_repairs);
        COORD_SUM(hinted_writes);
        COORD_SUM(gets_same);
        COORD_SUM(forwards_rerouted);
        COORD_SUM(forwards_resent);
        COORD_SUM(forwards_to_whole);
        COORD_SUM(reads_held_for_whole);
        COORD_SUM(reads_asked_source);
#undef COORD_SUM
    }
    buf_printf(out,
               "ringkv_coordinated_reads:%" PRIu64 "\r\nringkv_coordinated_writes:%" PRIu64
               "\r\nringkv_forwarded:%" PRIu64 "\r\nringkv_moved:%" PRIu64
               "\r\nringkv_unavailable:%" PRIu64 "\r\nringkv_read_repairs:%" PRIu64
               "\r\nringkv_replica_syncs:%" PRIu64 "\r\nringkv_replica_gets:%" PRIu64
               "\r\nringkv_forwards_served:%" PRIu64 "\r\nringkv_tombstones_reaped:%" PRIu64
               "\r\nringkv_reaps_deferred:%" PRIu64 "\r\nringkv_reap_repairs:%" PRIu64
               "\r\nringkv_hinted_writes:%" PRIu64 "\r\n",
               sum.reads, sum.writes, sum.forwarded, sum.moved, sum.unavailable, sum.read_repairs,
               sum.syncs_in, sum.gets_in, sum.forwards_in, sum.tombstones_reaped,
               sum.reaps_deferred, sum.reap_repairs, sum.hinted_writes);
    aae_info(n, out);
    buf_printf(out,
               "ringkv_replica_gets_same:%" PRIu64 "\r\nringkv_forwards_rerouted:%" PRIu64
               "\r\nringkv_forwards_resent:%" PRIu64 "\r\nringkv_forwards_to_whole:%" PRIu64
               "\r\nringkv_reads_held_for_whole:%" PRIu64 "\r\nringkv_reads_asked_source:%" PRIu64
               "\r\n",
               sum.gets_same, sum.forwards_rerouted, sum.forwards_resent, sum.forwards_to_whole,
               sum.reads_held_for_whole, sum.reads_asked_source);
}
