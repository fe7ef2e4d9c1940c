/* transfer.c: partition transfers on join, leave and force-remove (see
 * transfer.h). Runs on each shard thread for the partitions that shard owns
 * (node->partition_shard), both sides: receiver and source.
 *
 * Pull. On its tick a shard compares the ring of the newest snapshot with
 * the last one it saw (a copy kept here), after taking in turn each ring
 * published between the two (snapshot.earlier: none is skipped). A partition whose first N
 * (replicas, capped by the ring) now name this node and did not before is
 * PENDING: this node pulls it. One that named it and no longer does is
 * RELEASING. The first "last ring" is the one the node started with
 * (admin_start_ring: restored at a restart, so nothing moves but what the
 * state file says was moving; this node alone for a new cluster's first
 * node, which holds everything); a joiner starts with a provisional ring
 * (epoch 0), which is no ring: it holds nothing and pulls every partition
 * of its lists. So does a node whose data did not survive (storage =
 * memory, or a data directory that started empty: persist_layout), in
 * whatever ring it comes back. A ring of this node alone (one that left)
 * pulls nothing and asks nobody, but still serves what it was releasing
 * (members that left are asked as sources, dead ones are not); one that
 * was in a ring of several members keeps what it held, and a pull cut
 * short, as RELEASING with its real range, and serves nothing else (only
 * a node that never was in such a ring holds everything when alone). Sources,
 * in order: the old list, the new list, then every other member:
 * a source serves a partition only when it has every write the receiver
 * lacks from the first it lacks on, else says so and the receiver tries
 * the next. What a node has is kept as ring epochs: a receiver that became
 * a replica at epoch E has every write since E (coordinators write to the
 * new list) and, when it came back while still releasing a whole copy that
 * it left with at L, the writes before L: it needs [F, E), F = L or 0, and
 * the request carries F. A node in its current list and not pulling has
 * everything; one releasing since L has [0, L) if it was whole when it
 * left, else [E', L) (it was pulling since E'), and serves a receiver when
 * that range holds F; STREAM_END says how far (its reach). When a walk ends
 * with a reach short of E, the receiver's F becomes that reach and it asks
 * the next source for the rest. So, when changes come faster than
 * transfers, the writes a node took directly while it was in a list still
 * reach the later owners, and a node that comes back completes its old
 * copy. A joiner pulls from the old owners, a leave or a force-remove of a
 * dead node re-replicates from the remaining replicas, and a node never
 * takes a partition as whole from another that is still filling. Not
 * handled: when changes come faster than transfers and a node dies in
 * between, a partition whose writes of some epochs are on no live node
 * stays pending (nothing is dropped: releasing copies wait for a whole
 * list), until the dead node is back.
 *
 * Streams. A STREAM request names a group of partitions (up to
 * TRANSFER_GROUP_MAX, all PENDING from one source at one cursor) and a
 * cursor: a position in hash space (table_scan's). The source walks its
 * table from there (at most TRANSFER_VISIT_MAX entries and about
 * TRANSFER_BATCH_BYTES of states per request), answers one STREAM REPLY
 * per key of the group (its replica_export state: versions, tombstones
 * too) and a STREAM_END with the next cursor and the partitions it served
 * (next cursor 0: the walk is over). The receiver applies each state with
 * replica_apply (idempotent: a state given twice, or older than a write the
 * new replica already took directly, changes nothing) and asks again. Up
 * to handoff-concurrency streams per node (split over its shards) at once,
 * and handoff-max-bytes-per-sec (a token bucket per shard).
 * Cost: one walk of the source's table serves every partition of a group,
 * so a join (which moves about a (K+1)-th of each shard's partitions to
 * the joiner, most of them from one source per shard pair) costs one pass
 * over each source shard's table per group plus the moved bytes. Keys of
 * one partition are not contiguous in the table (its home slot is the
 * key's xxh3, not its slot) and an index per partition would add bytes to
 * every key; the pass visits each entry's key once (CRC16 of the key, no
 * copy) and copies only the moving ones. A lone partition pays a whole
 * pass: the price of adding no byte per key.
 * The cursor is a hash position, the same on every node (keyhash is
 * unseeded) and across resizes and restarts, so a stream resumes at the
 * same place from any source.
 *
 * Resume. The state file <dir>/transfers.<shard> (text: "transfers 2",
 * "epoch E" of the ring it was written for, "in p cursor from epoch
 * cursor-source walk-reach sources...", "out p from epoch" and "drop p from
 * epoch" lines, "end <lines>"; written to a temporary file, fsynced,
 * renamed, the directory fsynced, each step through the ring: tr_save) is
 * written at once when a ring change is taken (so a restart knows what
 * this node does not hold; a restart whose ring is not the file's pulls
 * every partition of its lists). After a batch is applied its cursor is
 * kept in memory and written once the log's durable sequence
 * (persist_durable_seq) reaches the records of that batch, so a crash of
 * the receiver resumes from a cursor whose keys are on disk, and a crash of
 * the source only makes the receiver ask again (late stream: next source).
 * A partition whose walk ended is SETTLING until its records are durable,
 * then DONE. Without a log (storage = memory) cursors are saved at once.
 * A file without its end line (cut short), or unreadable, is no baseline:
 * the node pulls every partition of its lists; a node whose data did not
 * survive removes it. A cursor is kept with the source it was walked on,
 * the least reach of that walk's batches and the from/epoch it was asked
 * for: another source or range starts the walk over, so a partition is
 * whole only as far as one source's whole walk reached. A drop pass under
 * way resumes as one ("drop": DROPPING, served to nobody).
 *
 * Writes during a transfer: coordinators already write to the new list
 * (the ring changed first), so the new replica takes every write directly
 * while it pulls older ones; the old replica that left the list keeps its
 * copy until the list has the partition whole. A coordinator one ring
 * behind that writes to it is refused once this node's view has the new
 * ring (coord.c: no replica here); a write it takes before that moves its
 * fingerprint, so the handoff checks run again; and a DROPPING copy takes
 * no write or hint whatever the view (coord_dropping): the coordinator
 * counts it failed, a hint's stand-in keeps the hint.
 * Settling. A ring reaches the members by gossip, one after another; a
 * coordinator still on the old ring writes to the old lists, which lack the
 * new replica. Had the new replica's walk already passed that key at the
 * source, it would miss the write (a replica that is releasing the
 * partition would then drop its copy: one copy fewer, until anti-entropy).
 * So streams start only once every other live member of the ring says, in
 * its gossip, that it has this ring (snapshot.h ring_settled; Riak's "ring
 * ready"), or TRANSFER_SETTLE_WAIT_MS after the ring came (a member that
 * never says so, say a stopped one not yet down, does not hold transfers
 * up for longer). It narrows the window, it does not close it: a member
 * says so once its admin thread has the ring, a moment before its shards
 * do, and a stopped one runs what it had queued on the old view once it is
 * resumed; anti-entropy mends what is left.
 *
 * Release. A RELEASING partition asks every node of its current list that
 * has not said yes, about once a second (every
 * TRANSFER_RELEASE_EARLY_ASK_MS for the first TRANSFER_RELEASE_EARLY_MS of
 * a ring), RELEASE: "do you hold it whole?" (yes: in its list, not
 * pulling it, durable). The answers so far also steer this node's
 * forwards of the partition's requests to members that said yes, past one
 * still pulling (transfer_whole_replicas). Once all said yes, a handoff
 * check runs with each of them (aae_handoff: an anti-entropy exchange of
 * the partition that sends the peer what it lacks of the copy here;
 * tr_handoff), again until one with each has sent nothing. The epochs above say what a node should
 * have; the check looks at what it has: a replica stopped across two ring
 * changes comes back calling itself whole for epochs whose writes went to
 * stand-ins, serves a joiner that copy and says yes, and a releasing node
 * takes writes from a coordinator one ring behind after its copy was
 * served. Without it the old owners dropped the only copies of such writes
 * (tests/cluster/test_stop_join). Then it is DROPPING: one pass over
 * the table deletes the keys of every partition dropping (store_delete:
 * delete records, not tombstones), in steps: TRANSFER_DROP_TURN_VISITS
 * entries on a loop turn at most every TRANSFER_DROP_TURN_MS while the
 * shard is busy (a step of a thousand deletes held its requests for 1 to 3
 * ms, which showed in the p99 of a join); the tick of a busy shard (loop
 * turns since the last one as many as TRANSFER_DROP_TURN_MS periods in a
 * tick) adds one such step unless a turn's ran just before, that
 * of a quieter one tops the turns' visits since the last tick up to
 * TRANSFER_DROP_VISIT_MAX (all of it on an idle shard); each step takes the
 * newest ring's states first.
 * Those dropping when the pass began are released at its end. A node that
 * left the cluster (a ring of itself) asks nobody and keeps its copy.
 * Orphans: every TRANSFER_ORPHANS_MS a shard looks for partitions whose
 * tree holds keys although no list of its ring names this node and nothing
 * of them moves (writes sent under a ring its shards skipped, a drop's
 * stragglers): RELEASING with an empty range (they serve no pull), so the
 * list gets them by the handoff check before they are dropped.
 *
 * Cost to a cluster of one: the tick returns after reading the snapshot.
 *
 * Left to others: the links (peerlink.h), versions (replica.h), the ring
 * (admin).
 *
 * Failures per key. A batch advances only over keys that were sent and
 * applied: a key whose value is on disk only (values beyond RAM) is read
 * back by the source (tier.h) and counted (cold_skipped), and like an
 * export error or a reply not sent it ends the batch before the walk step
 * that holds it (STREAM_END OVERLOADED when that is the first: "ask again
 * later"); a key the receiver cannot apply (-ENOMEM at maxmemory, -E2BIG)
 * makes it ask the same batch again after TRANSFER_RETRY_MS (its own
 * version of the key on disk only: read back meanwhile). So a
 * partition is never whole with a key missing. */
#include "transfer.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mimalloc.h>

#include "aae.h"
#include "admin.h"
#include "buf.h"
#include "cfg.h"
#include "cmd.h"
#include "coord.h"
#include "keyhash.h"
#include "log.h"
#include "node.h"
#include "peerlink.h"
#include "persist.h"
#include "req.h"
#include "replica.h"
#include "ring.h"
#include "shard.h"
#include "snapshot.h"
#include "store.h"
#include "table.h"
#include "tier.h"

#define TRANSFER_GROUP_MAX 64            /* partitions in one stream */
_Static_assert(TRANSFER_GROUP_MAX <= TABLE_SCAN_PARTS_MAX, "a stream's walk is one table_scan_parts");
#define TRANSFER_STREAMS_MAX 8           /* streams per shard at most */
#define TRANSFER_SOURCES_MAX 16          /* sources tried per partition */
#define TRANSFER_VISIT_MAX 512           /* table entries per request */
#define TRANSFER_DROP_VISIT_MAX 1024     /* table entries a drop pass visits per tick at
                                            most (a quiet shard's tick tops the turns' up) */
#define TRANSFER_DROP_TURN_VISITS 128    /* table entries per drop step on a loop turn */
#define TRANSFER_DROP_TURN_MS 5          /* loop-turn drop steps at most this often */
#define TRANSFER_BATCH_BYTES (8u << 10)  /* states per request, about (each side's work on
                                            a batch is one burst on its loop: kept short;
                                            32 KiB held a joiner's loop for about 0.7 ms
                                            a batch, its forwarded requests with it) */
#define TRANSFER_STREAM_MS 3000          /* a request unanswered this long is given up */
#define TRANSFER_RELEASE_ASK_MS 1000
#define TRANSFER_RELEASE_EARLY_MS 2000   /* for this long after a ring came, asked */
#define TRANSFER_RELEASE_EARLY_ASK_MS 200 /* this often (a member's first "no" is often
                                             only its state file not yet durable; the
                                             yeses steer forwards: transfer_whole_replicas) */
#define TRANSFER_SAVE_MS 200             /* durable cursors are saved this often at most */
#define TRANSFER_SERVED_LEN 10           /* STREAM_END: partition u16, reach u64 */
#define TRANSFER_SCAN_STEP 16            /* table entries per table_scan_parts() call: a
                                            split table's walk meets the streamed
                                            partitions' keys only, so a step is that
                                            many keys, and TRANSFER_BATCH_BYTES, looked
                                            at between steps, holds */
#define TRANSFER_CHUNKS_MAX (TRANSFER_VISIT_MAX / TRANSFER_SCAN_STEP + 1)
#define TRANSFER_RETRY_MS 200            /* a batch that failed is asked again after this */
#define TRANSFER_SETTLE_WAIT_MS 5000     /* pulls wait this long at most for the ring to settle */
#define TRANSFER_ORPHANS_MS 1000         /* partitions held here by no list: looked for this often */

/* Where a walk stands: its next cursor, the source that walk is with (an
 * index into ids, plus 1; 0: none yet) and the least reach that source gave
 * for its batches so far, for the writes [from, epoch). A cursor is worth
 * only this: another source, or other from/epoch, starts from 0. */
struct tr_pos {
    uint64_t cursor;
    uint64_t reach;
    uint64_t from, epoch;
    uint32_t src;
};

struct tr_part {
    uint8_t n_src, src_at;
    bool ck_done;              /* the walk ended by the checkpoint's time */
    bool in_sweep;             /* DROPPING since the drop pass began */
    uint16_t src[TRANSFER_SOURCES_MAX]; /* indexes into ids */
    uint64_t cursor;           /* next position to ask (memory) */
    uint64_t walk_reach;       /* least reach of this walk's batches (cursor != 0) */
    uint32_t cur_src;          /* the source of this walk (ids index + 1; 0: none) */
    struct tr_pos ck;          /* the checkpoint's: saved once durable */
    struct tr_pos saved;       /* in the file */
    uint64_t bytes, keys;
    uint64_t ck_bytes, saved_bytes; /* bytes received by the checkpoint's / the file's cursor */
    uint64_t filed_bytes;           /* ... by the cursor of the newest durable file */
    uint32_t release_ok;       /* RELEASING: list positions that said yes */
    uint32_t handoff_ok;       /* ... whose handoff check found nothing to send */
    uint32_t handoff_running;  /* ... whose handoff check is under way */
    uint32_t handoff_gen;      /* the checks' generation (tr->handoff_gen; 0: none yet) */
    uint64_t handoff_print;    /* aae_partition_print when the last check came back clean */
    /* What this node has of the partition, as ring epochs: pulling, every
     * write since `epoch` (it became a replica then) and before `from` (a
     * copy it kept from an earlier stay in the list), so it needs the
     * writes of [from, epoch); RELEASING, every write of [from, epoch)
     * (from 0: it was whole when it left at `epoch`). */
    uint64_t from, epoch;
    int64_t ask_ms;            /* RELEASING: next question */
    int64_t retry_ms;          /* PENDING after a failed batch: not asked before this */
};

struct tr_stream {
    bool busy;
    bool failed;          /* a key of this batch could not be applied: no advance */
    bool end_waits;       /* STREAM_END came while keys were parked (kept below) */
    uint32_t parked;      /* keys of this batch waiting for this node's cold value */
    uint8_t end_status;
    uint64_t end_next;
    uint32_t end_len;
    uint8_t end_served[TRANSFER_SERVED_LEN * TRANSFER_GROUP_MAX];
    uint32_t gen;
    uint64_t from, epoch; /* the writes its partitions need: [from, epoch) */
    uint16_t src;
    char addr[GOSSIP_ADDR_MAX + 1]; /* the source's cluster address */
    uint64_t cursor;
    uint64_t walk_from;   /* where its walk began (hash space) */
    uint64_t walk_keys;   /* keys received in this walk (tr_reserve) */
    int64_t deadline_ms;
    uint32_t nparts;
    uint16_t parts[TRANSFER_GROUP_MAX];
};

struct transfer {
    uint8_t *state;            /* per partition (relaxed atomics: admin reads) */
    struct tr_part *parts;     /* per partition; NULL until the first transfer */
    uint32_t q;
    struct ring *ring;         /* the last ring seen (a copy); NULL: none yet */
    uint64_t snap_version;
    uint64_t ring_seq; /* the snapshot cell's number of the last ring taken (snapshot.earlier) */
    char (*ids)[RING_ID_LEN + 1];
    uint32_t n_ids, cap_ids;
    struct tr_stream streams[TRANSFER_STREAMS_MAX];
    uint32_t next_gen;
    bool dirty;                /* cursors or states changed since the checkpoint */
    bool ck_pending;           /* a checkpoint waits for the log */
    uint64_t ck_seq;
    int64_t saved_ms;
    double tokens;
    int64_t tokens_ms, now_ms;
    int64_t ring_ms;           /* the first tick of this ring here (the settle wait); 0: none yet */
    bool settle_logged;        /* the wait for this ring's settling is over (logged) */
    bool sweeping;             /* a drop pass is under way */
    uint32_t turn_visits;      /* entries loop-turn drop steps visited since the last tick */
    uint32_t turns;            /* loop turns since the last tick (busy or not) */
    /* Per partition, for the coordinators of every shard (relaxed atomics:
     * written by this shard only, read by transfer_whole_replicas): the low
     * 32 bits of the epoch of the ring whose list answered, above the
     * release_ok bits of a RELEASING partition; 0 for any other state. */
    uint64_t *said_whole;
    int64_t drop_turn_ms;      /* when the last loop-turn drop step ran */
    int64_t orphans_ms;        /* the next look for partitions held here by no list */
    bool handoff_kick;         /* a handoff check ended: start the next on the loop turn */
    uint32_t handoff_gen;      /* the last generation given to a partition's checks */
    bool drops;                /* a drop pass resumed from the state file waits */
    bool was_multi;            /* it has been in a ring of several members (then a ring
                                  of itself does not mean it holds everything) */
    uint64_t sweep_cursor;
    uint32_t sweep_part;       /* split table: the partition the pass is in */
    uint64_t rate_bytes;       /* received since the last rate update */
    int64_t rate_ms;
    char path[PATH_MAX];       /* the state file; "" without a log */
    char tmp_path[PATH_MAX + 8];
    struct shard *sh;
    /* The state file's write, through the ring (tr_save): one at a time. */
    struct buf save_buf;       /* the file's text */
    size_t save_done;          /* bytes of it written */
    int save_fd, dir_fd;       /* the temporary file; the directory (-1: none) */
    unsigned save_step;        /* enum tr_save_step; SAVE_IDLE: none in flight */
    bool save_again;           /* the state changed while one was in flight */
    uint8_t *save_state;       /* per partition: the line the file being written has for it
                                  (enum tr_filed) */
    uint8_t *filed_state;      /* ... the newest durable file's (a whole file for file_epoch) */
    uint64_t *save_bytes;      /* per partition: bytes its saved cursor covers, in that file */
    uint64_t save_epoch;       /* the ring epoch of the file being written */
    uint64_t reserved;         /* keys the table was last grown to hold (tr_reserve) */
    uint64_t file_epoch;       /* the ring epoch the newest durable, whole file was written
                                  for (0: none; a restart pulls all) */
    struct transfer_stats st;  /* relaxed atomics */
};

#define ST_ADD(tr, f, v) __atomic_add_fetch(&(tr)->st.f, (v), __ATOMIC_RELAXED)
#define ST_SET(tr, f, v) __atomic_store_n(&(tr)->st.f, (v), __ATOMIC_RELAXED)

static const char *const tr_names[] = {"none",      "pending",  "streaming", "settling",
                                       "done",      "releasing", "dropping"};

const char *transfer_state_name(unsigned state)
{
    return state < sizeof tr_names / sizeof tr_names[0] ? tr_names[state] : "?";
}

static unsigned tr_get(const struct transfer *tr, uint32_t p)
{
    return __atomic_load_n(&tr->state[p], __ATOMIC_RELAXED);
}

static void tr_set(struct transfer *tr, uint32_t p, unsigned s)
{
    __atomic_store_n(&tr->state[p], (uint8_t)s, __ATOMIC_RELAXED);
    tr->dirty = true;
}

/* Still missing keys (a SETTLING one has them all, maybe not durably). */
static bool tr_receiving(unsigned s)
{
    return s == TRANSFER_PENDING || s == TRANSFER_STREAMING;
}

static int tr_parts_alloc(struct transfer *tr)
{
    if (!tr->parts)
        tr->parts = mi_calloc(tr->q, sizeof *tr->parts);
    return tr->parts ? 0 : -ENOMEM;
}

/* Partition p's release_ok, published for the coordinators of every shard
 * with the epoch of the ring it was asked under (a coordinator whose view
 * has another ring takes none of it). */
static void tr_publish_whole(struct transfer *tr, uint32_t p)
{
    uint64_t v = 0;
    if (tr->ring && tr_get(tr, p) == TRANSFER_RELEASING && tr->parts[p].release_ok)
        v = (tr->ring->epoch & 0xFFFFFFFFu) << 32 | tr->parts[p].release_ok;
    __atomic_store_n(&tr->said_whole[p], v, __ATOMIC_RELAXED);
}

/* The index of id in the shard's id table (added when new); -1 when full. */
static int tr_id_index(struct transfer *tr, const char *id)
{
    for (uint32_t i = 0; i < tr->n_ids; i++)
        if (strcmp(tr->ids[i], id) == 0)
            return (int)i;
    if (tr->n_ids == UINT16_MAX)
        return -1;
    if (tr->n_ids == tr->cap_ids) {
        uint32_t cap = tr->cap_ids ? tr->cap_ids * 2 : 16;
        void *ids = mi_realloc(tr->ids, cap * sizeof *tr->ids);
        if (!ids)
            return -1;
        tr->ids = ids;
        tr->cap_ids = cap;
    }
    snprintf(tr->ids[tr->n_ids], sizeof tr->ids[0], "%s", id);
    return (int)tr->n_ids++;
}

/* ---- the state file ---- */

/* The state file is written without blocking the shard (an fsync on this
 * VM's disk took milliseconds, twice per save, every TRANSFER_SAVE_MS while
 * partitions moved: clients of every node waited behind it). Steps, each
 * submitted when the previous completed: write the temporary file, fsync
 * it, rename it over the state file, fsync the directory. Opening and
 * closing the temporary file stay on the loop (metadata, as the segments').
 * A save asked while one is in flight runs once that one ends; a failed
 * one is retried at the next checkpoint. Until a save is durable the
 * memory says more than the disk: a restart trusts only a file written for
 * its ring's epoch (else it pulls every partition of its lists), so a
 * partition is declared held whole to a releasing node only once the newest
 * durable file is of the current ring and does not list it as pulled
 * (filed_state, file_epoch; tr_reach); a drop pass takes only partitions
 * the durable file says are dropping (a restart resumes the pass, never
 * serves a copy half dropped); and resumable_bytes counts what a durable
 * file records. */
enum tr_save_step { SAVE_IDLE, SAVE_WRITE, SAVE_FSYNC, SAVE_RENAME, SAVE_DIR_FSYNC };

/* A partition's line in a state file. */
enum tr_filed { FILED_NONE, FILED_IN, FILED_OUT, FILED_DROP };

/* The line a partition in state s gets ("in", "out", "drop" or none). */
static unsigned tr_filed_of(unsigned s)
{
    return transfer_is_incoming(s)  ? FILED_IN
           : s == TRANSFER_DROPPING  ? FILED_DROP
           : s == TRANSFER_RELEASING ? FILED_OUT
                                     : FILED_NONE;
}

static void tr_save_submit(struct transfer *tr, unsigned step)
{
    struct io_uring_sqe *sqe = shard_sqe(tr->sh);
    switch (step) {
    case SAVE_WRITE:
        io_uring_prep_write(sqe, tr->save_fd, tr->save_buf.data + tr->save_done,
                            (unsigned)(tr->save_buf.len - tr->save_done), tr->save_done);
        break;
    case SAVE_FSYNC:
        io_uring_prep_fsync(sqe, tr->save_fd, 0);
        break;
    case SAVE_RENAME:
        io_uring_prep_renameat(sqe, AT_FDCWD, tr->tmp_path, AT_FDCWD, tr->path, 0);
        break;
    default:
        io_uring_prep_fsync(sqe, tr->dir_fd, 0); /* the rename itself */
        break;
    }
    io_uring_sqe_set_data64(sqe, net_ud(SHARD_OP_TRANSFER_SAVE, step, 0));
    tr->save_step = step;
}

static void tr_save(struct transfer *tr)
{
    if (!tr->path[0])
        return;
    if (tr->save_step != SAVE_IDLE) {
        tr->save_again = true;
        return;
    }
    tr->save_again = false;
    struct buf *f = &tr->save_buf;
    buf_clear(f);
    memset(tr->save_state, FILED_NONE, tr->q);
    memset(tr->save_bytes, 0, tr->q * sizeof tr->save_bytes[0]);
    tr->save_epoch = tr->ring ? tr->ring->epoch : 0;
    buf_printf(f, "transfers 2 %d\nepoch %" PRIu64 "\n", tr->was_multi,
               tr->ring ? tr->ring->epoch : 0);
    uint32_t lines = 0;
    for (uint32_t p = 0; tr->parts && p < tr->q; p++) {
        unsigned s = tr_get(tr, p);
        tr->save_state[p] = (uint8_t)tr_filed_of(s);
        if (transfer_is_incoming(s)) {
            const struct tr_part *tp = &tr->parts[p];
            /* the saved cursor only for the range it was walked for */
            bool same = tp->saved.cursor && tp->saved.src && tp->saved.from == tp->from &&
                        tp->saved.epoch == tp->epoch;
            /* "in p cursor from epoch cursor-source reach sources...", without
             * printf: a joiner writes a line for each of its hundreds of
             * partitions every TRANSFER_SAVE_MS, on the loop */
            buf_append(f, "in ", 3);
            buf_append_u64(f, p);
            buf_append(f, " ", 1);
            buf_append_u64(f, same ? tp->saved.cursor : 0);
            buf_append(f, " ", 1);
            buf_append_u64(f, tp->from);
            buf_append(f, " ", 1);
            buf_append_u64(f, tp->epoch);
            buf_append(f, " ", 1);
            buf_append_str(f, same ? tr->ids[tp->saved.src - 1] : "-");
            buf_append(f, " ", 1);
            buf_append_u64(f, same ? tp->saved.reach : UINT64_MAX);
            for (uint32_t k = 0; k < tr->parts[p].n_src; k++) {
                buf_append(f, " ", 1);
                buf_append_str(f, tr->ids[tr->parts[p].src[k]]);
            }
            buf_append(f, "\n", 1);
            tr->save_bytes[p] = same ? tp->saved_bytes : 0;
            lines++;
        } else if (s == TRANSFER_RELEASING || s == TRANSFER_DROPPING) {
            /* a drop pass under way resumes as one: its copy is no longer whole */
            buf_append_str(f, s == TRANSFER_DROPPING ? "drop " : "out ");
            buf_append_u64(f, p);
            buf_append(f, " ", 1);
            buf_append_u64(f, tr->parts[p].from);
            buf_append(f, " ", 1);
            buf_append_u64(f, tr->parts[p].epoch);
            buf_append(f, "\n", 1);
            lines++;
        }
    }
    buf_printf(f, "end %u\n", lines); /* a file without it is cut short: not trusted */
    if (f->failed) {
        log_warn("out of memory writing %s; tried again later", tr->path);
        tr->dirty = true;
        return;
    }
    if (tr->dir_fd < 0) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", tr->path);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        tr->dir_fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    tr->save_fd = open(tr->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (tr->save_fd < 0 || tr->dir_fd < 0) {
        log_warn("cannot write %s: %s; transfers will restart from scratch after a crash",
                 tr->tmp_path, strerror(errno));
        if (tr->save_fd >= 0)
            close(tr->save_fd);
        tr->save_fd = -1;
        tr->dirty = true; /* again at the next checkpoint */
        return;
    }
    tr->save_done = 0;
    tr_save_submit(tr, SAVE_WRITE);
}

void transfer_on_cqe(struct shard *sh, uint64_t ud, int res)
{
    struct transfer *tr = sh->transfer;
    unsigned step = net_ud_slot(ud);
    if (!tr || step != tr->save_step)
        return;
    if (res < 0 || (step == SAVE_WRITE && res == 0)) {
        log_warn("cannot write %s: %s; tried again later", tr->path,
                 strerror(res < 0 ? -res : EIO));
        if (tr->save_fd >= 0)
            close(tr->save_fd);
        tr->save_fd = -1;
        tr->save_step = SAVE_IDLE;
        tr->dirty = true; /* again at the next checkpoint */
        return;
    }
    switch (step) {
    case SAVE_WRITE:
        tr->save_done += (size_t)res;
        tr_save_submit(tr, tr->save_done < tr->save_buf.len ? SAVE_WRITE : SAVE_FSYNC);
        return;
    case SAVE_FSYNC:
        close(tr->save_fd);
        tr->save_fd = -1;
        tr_save_submit(tr, SAVE_RENAME);
        return;
    case SAVE_RENAME:
        tr_save_submit(tr, SAVE_DIR_FSYNC);
        return;
    default:
        memcpy(tr->filed_state, tr->save_state, tr->q);
        for (uint32_t p = 0; tr->parts && p < tr->q; p++)
            tr->parts[p].filed_bytes = tr->save_bytes[p];
        tr->file_epoch = tr->save_epoch;
        tr->save_step = SAVE_IDLE;
        if (tr->save_again)
            tr_save(tr);
        return;
    }
}

bool transfer_busy(const struct shard *sh)
{
    return sh->transfer && sh->transfer->save_step != SAVE_IDLE;
}

/* Reads the state file: true when it was whole (its header, and its end
 * line counting the lines before it), else nothing of it is kept. */
static bool tr_load_file(struct transfer *tr, uint32_t *n_in, uint32_t *n_out)
{
    FILE *f = tr->path[0] ? fopen(tr->path, "r") : NULL;
    if (!f)
        return false;
    char line[1024];
    bool header = false, end = false;
    uint32_t lines = 0;
    while (!end && fgets(line, sizeof line, f)) {
        if (!strchr(line, '\n'))
            break; /* too long or cut short */
        char *save = NULL;
        char *kind = strtok_r(line, " \n", &save);
        char *ps = strtok_r(NULL, " \n", &save);
        if (!kind || !ps)
            break;
        if (strcmp(kind, "transfers") == 0) {
            char *ms = strtok_r(NULL, " \n", &save);
            header = strcmp(ps, "2") == 0 && ms;
            tr->was_multi = ms && strcmp(ms, "1") == 0;
            continue;
        }
        if (strcmp(kind, "epoch") == 0) {
            tr->file_epoch = strtoull(ps, NULL, 10);
            continue;
        }
        if (strcmp(kind, "end") == 0) {
            end = strtoul(ps, NULL, 10) == lines;
            break;
        }
        if (!header || tr_parts_alloc(tr) != 0)
            break;
        lines++;
        unsigned long p = strtoul(ps, NULL, 10);
        if (p >= tr->q)
            break;
        struct tr_part *tp = &tr->parts[p];
        char *cs = strcmp(kind, "in") == 0 ? strtok_r(NULL, " \n", &save) : NULL;
        char *fs = strtok_r(NULL, " \n", &save), *es = strtok_r(NULL, " \n", &save);
        bool is_out = strcmp(kind, "out") == 0, is_drop = strcmp(kind, "drop") == 0;
        if (!fs || !es || (!cs && !is_out && !is_drop))
            break;
        tp->from = strtoull(fs, NULL, 10);
        tp->epoch = strtoull(es, NULL, 10);
        if (!cs) { /* out: it keeps a copy until the list has it (serving what it has);
                    * drop: a drop pass was under way: it goes on (nothing served) */
            tr_set(tr, (uint32_t)p, is_drop ? TRANSFER_DROPPING : TRANSFER_RELEASING);
            tr->drops |= is_drop;
            (*n_out)++;
            continue;
        }
        char *ss = strtok_r(NULL, " \n", &save), *rs = strtok_r(NULL, " \n", &save);
        if (!ss || !rs)
            break;
        int si = strlen(ss) == RING_ID_LEN ? tr_id_index(tr, ss) : -1;
        tp->cursor = si >= 0 ? strtoull(cs, NULL, 10) : 0;
        tp->cur_src = si >= 0 ? (uint32_t)si + 1 : 0;
        tp->walk_reach = si >= 0 ? strtoull(rs, NULL, 10) : UINT64_MAX;
        tp->saved = (struct tr_pos){tp->cursor, tp->walk_reach, tp->from, tp->epoch, tp->cur_src};
        for (char *id; (id = strtok_r(NULL, " \n", &save)) && tp->n_src < TRANSFER_SOURCES_MAX;) {
            int i = strlen(id) == RING_ID_LEN ? tr_id_index(tr, id) : -1;
            if (i >= 0)
                tp->src[tp->n_src++] = (uint16_t)i;
        }
        tr_set(tr, (uint32_t)p, TRANSFER_PENDING);
        (*n_in)++;
    }
    fclose(f);
    return header && end;
}

static void tr_load(struct transfer *tr)
{
    uint32_t n_in = 0, n_out = 0;
    bool whole = tr_load_file(tr, &n_in, &n_out);
    if (whole) {
        if (n_in || n_out)
            log_info("transfers resumed from %s: %u partitions to pull, %u to release",
                     tr->path, n_in, n_out);
        return;
    }
    if (tr->file_epoch || n_in || n_out)
        log_warn("%s is damaged or cut short: this node pulls every partition of its lists",
                 tr->path);
    tr->file_epoch = 0; /* no baseline: transfer_init() takes no start ring */
    tr->drops = false;
    tr->was_multi = false;
    memset(tr->state, 0, tr->q);
    if (tr->parts)
        memset(tr->parts, 0, tr->q * sizeof *tr->parts);
}

/* ---- set-up ---- */

int transfer_init(struct shard *sh)
{
    struct node *n = sh->node;
    struct transfer *tr = mi_zalloc_aligned(sizeof *tr, 64);
    if (!tr)
        return -ENOMEM;
    tr->q = n->npartitions;
    tr->sh = sh;
    tr->save_fd = tr->dir_fd = -1;
    buf_init(&tr->save_buf);
    sh->transfer = tr;
    tr->state = mi_calloc(tr->q, 1);
    tr->save_state = mi_calloc(tr->q, 1);
    tr->filed_state = mi_calloc(tr->q, 1);
    tr->save_bytes = mi_calloc(tr->q, sizeof tr->save_bytes[0]);
    tr->said_whole = mi_calloc(tr->q, sizeof tr->said_whole[0]);
    if (!tr->state || !tr->save_state || !tr->filed_state || !tr->save_bytes || !tr->said_whole)
        goto fail;
    if (n->cfg->storage == CFG_STORAGE_LOG && n->cfg->dir[0]) {
        snprintf(tr->path, sizeof tr->path, "%s/transfers.%u", n->cfg->dir, sh->id);
        snprintf(tr->tmp_path, sizeof tr->tmp_path, "%s.tmp", tr->path);
    }
    /* data that did not survive (storage = memory, or a log directory that
     * started empty) holds nothing, whatever ring the node comes back in */
    bool data_kept = n->cfg->storage == CFG_STORAGE_LOG && n->layout.old_nshards > 0;
    if (data_kept) {
        tr_load(tr); /* a whole file: file_epoch; else 0 */
        for (uint32_t p = 0; p < tr->q; p++) {
            unsigned st = tr_get(tr, p);
            tr->filed_state[p] = tr_filed_of(st);
            if (tr->parts && transfer_is_incoming(st) && tr->parts[p].saved.cursor)
                tr->parts[p].filed_bytes = tr->parts[p].saved_bytes;
        }
    } else if (tr->path[0]) /* it described data that is gone */
        (void)unlink(tr->path);
    const struct ring *start = n->admin ? admin_start_ring(n->admin) : NULL;
    /* alone, it holds everything there is; else only what its data and its
     * state file say, of the ring the file was written for: a ring change
     * adopted and not recorded here (a crash in between) is no baseline */
    if (start && start->n_members > 1 && (!data_kept || tr->file_epoch != start->epoch))
        start = NULL;
    if (start && start->epoch > 0 && start->q == tr->q && ring_clone(start, &tr->ring) != 0)
        goto fail;
    if (tr->ring) /* GET /v1/ring transfers.ring_epoch: taken, as a change would say */
        ST_SET(tr, ring_epoch, tr->ring->epoch);
    if (start && start->n_members > 1)
        tr->was_multi = true;
    return 0;
fail:
    transfer_fini(sh);
    return -ENOMEM;
}

void transfer_fini(struct shard *sh)
{
    struct transfer *tr = sh->transfer;
    if (!tr)
        return;
    ring_destroy(tr->ring);
    if (tr->save_fd >= 0)
        close(tr->save_fd);
    if (tr->dir_fd >= 0)
        close(tr->dir_fd);
    buf_fini(&tr->save_buf);
    mi_free(tr->save_state);
    mi_free(tr->filed_state);
    mi_free(tr->save_bytes);
    mi_free(tr->parts);
    mi_free(tr->said_whole);
    mi_free(tr->ids);
    mi_free(tr->state);
    mi_free(tr);
    sh->transfer = NULL;
}

/* ---- the ring changed ---- */

static uint32_t tr_n_eff(const struct node *n, const struct ring *ring)
{
    uint32_t want = (uint32_t)n->cfg->replicas;
    return want < ring->n ? want : ring->n;
}

/* True when member `id` is in partition p's first N of ring (a ring of
 * itself alone: every partition, unless this shard has been in a ring of
 * several members, whose copies were kept as RELEASING when it left). */
static bool tr_in_list(const struct node *n, const struct ring *ring, const char *id, uint32_t p)
{
    if (!ring || ring->epoch == 0 || p >= ring->q)
        return false;
    const struct shard *sh = n->shards[n->partition_shard[p]];
    if (ring->n_members == 1 && sh && sh->transfer && sh->transfer->was_multi)
        return false;
    uint32_t m = ring_member_index(ring, id);
    if (m == RING_NONE)
        return false;
    const uint32_t *list = ring_pref(ring, p);
    for (uint32_t k = 0; k < tr_n_eff(n, ring); k++)
        if (list[k] == m)
            return true;
    return false;
}

static void tr_add_source(struct transfer *tr, struct tr_part *tp, const char *id, const char *self)
{
    if (strcmp(id, self) == 0 || tp->n_src == TRANSFER_SOURCES_MAX)
        return;
    int i = tr_id_index(tr, id);
    if (i < 0)
        return;
    for (uint32_t k = 0; k < tp->n_src; k++)
        if (tp->src[k] == i)
            return;
    tp->src[tp->n_src++] = (uint16_t)i;
}

static void tr_add_list(struct transfer *tr, struct tr_part *tp, const struct node *n,
                        const struct ring *ring, uint32_t p, const char *self)
{
    if (!ring || ring->epoch == 0)
        return;
    const uint32_t *list = ring_pref(ring, p);
    for (uint32_t k = 0; k < tr_n_eff(n, ring); k++)
        tr_add_source(tr, tp, ring->members[list[k]].id, self);
}

/* Partition p became this node's: pull it, sources as the comment says. */
static void tr_start_pull(struct transfer *tr, const struct node *n, const struct ring *old,
                          const struct ring *ring, uint32_t p, const char *self)
{
    struct tr_part *tp = &tr->parts[p];
    unsigned st = tr_get(tr, p);
    if (!transfer_is_incoming(st)) {
        /* back in the list while releasing a whole copy: it has [0, left) */
        uint64_t have_to = st == TRANSFER_RELEASING && tp->from == 0 ? tp->epoch : 0;
        memset(tp, 0, sizeof *tp);
        tp->walk_reach = UINT64_MAX;
        tp->from = have_to;
        tp->epoch = ring->epoch; /* writes since reach it directly */
        tr_set(tr, p, TRANSFER_PENDING);
    }
    tp->n_src = 0;
    tr_add_list(tr, tp, n, old, p, self);
    tr_add_list(tr, tp, n, ring, p, self);
    for (uint32_t m = 0; m < ring->n_members; m++)
        tr_add_source(tr, tp, ring->members[m].id, self);
}

static void tr_cancel_streams(struct transfer *tr)
{
    for (uint32_t i = 0; i < TRANSFER_STREAMS_MAX; i++)
        tr->streams[i].busy = false;
}

/* Compares ring (the snapshot's, or one published before it) with the
 * last one seen. False: out of memory, nothing taken. */
static bool tr_ring_changed(struct shard *sh, const struct snapshot *s, const struct ring *ring)
{
    struct transfer *tr = sh->transfer;
    const struct node *n = sh->node;
    const char *self = s->members[s->self].id;
    struct ring *old = tr->ring, *copy = NULL;
    if (tr->ring && tr->ring->epoch == ring->epoch && tr->ring->hash == ring->hash)
        return true;
    if (ring->epoch == 0 || ring->q != tr->q) /* a joiner's provisional ring: not a change */
        return true;
    if (tr_parts_alloc(tr) != 0 || ring_clone(ring, &copy) != 0)
        return false; /* tried again at the next tick */
    tr->ring = copy;
    ST_SET(tr, ring_epoch, ring->epoch);
    tr->ring_ms = 0; /* stamped by the next tick (its clock) */
    tr->settle_logged = false;
    tr->dirty = true; /* the state file exists from the first ring on */
    if (ring->n_members == 1) { /* alone (first, or left): pulls nothing, asks nobody; */
        /* what it held or released it still serves, each copy as far as it
         * reaches (a pull cut short: its writes since it began) */
        for (uint32_t p = 0; tr->was_multi && p < tr->q; p++) {
            unsigned st = tr_get(tr, p);
            if (n->partition_shard[p] != sh->id || st == TRANSFER_RELEASING ||
                st == TRANSFER_DROPPING ||
                (!transfer_is_incoming(st) && !tr_in_list(n, old, self, p)))
                continue;
            uint64_t from = tr_receiving(st) ? tr->parts[p].epoch : 0;
            memset(&tr->parts[p], 0, sizeof tr->parts[p]);
            tr->parts[p].from = from;
            tr->parts[p].epoch = ring->epoch;
            tr_set(tr, p, TRANSFER_RELEASING);
        }
        for (uint32_t p = 0; !tr->was_multi && p < tr->q; p++)
            if (transfer_is_incoming(tr_get(tr, p)))
                tr_set(tr, p, TRANSFER_NONE);
        tr_cancel_streams(tr); /* a drop pass under way goes on */
        for (uint32_t p = 0; p < tr->q; p++)
            tr_publish_whole(tr, p);
        ring_destroy(old);
        tr_save(tr);
        return true;
    }
    uint32_t gained = 0, lost = 0;
    for (uint32_t p = 0; p < tr->q; p++) {
        if (n->partition_shard[p] != sh->id)
            continue;
        bool was = tr_in_list(n, old, self, p);
        bool is = tr_in_list(n, ring, self, p);
        unsigned st = tr_get(tr, p);
        if (is && (!was || transfer_is_incoming(st) || st == TRANSFER_RELEASING ||
                   st == TRANSFER_DROPPING)) {
            tr_start_pull(tr, n, old, ring, p, self);
            gained++;
        } else if (!is && (was || transfer_is_incoming(st))) {
            /* whole: it has [0, now); still pulling since E: [E, now) */
            uint64_t from = tr_receiving(st) ? tr->parts[p].epoch : 0;
            memset(&tr->parts[p], 0, sizeof tr->parts[p]);
            tr->parts[p].from = from;
            tr->parts[p].epoch = ring->epoch;
            tr_set(tr, p, TRANSFER_RELEASING);
            lost++;
        } else if (st == TRANSFER_RELEASING) {
            tr->parts[p].release_ok = 0; /* ask the new list, at once */
            tr->parts[p].ask_ms = 0;
            tr->parts[p].handoff_ok = tr->parts[p].handoff_running = 0;
            tr->parts[p].handoff_gen = 0; /* results of the old list's checks are ignored */
        }
    }
    tr->was_multi = true; /* after the loop: a ring of itself before held everything */
    tr_cancel_streams(tr); /* their groups may have changed; replies are dropped */
    for (uint32_t p = 0; p < tr->q; p++)
        if (tr_get(tr, p) == TRANSFER_STREAMING)
            tr_set(tr, p, TRANSFER_PENDING);
    if (gained || lost)
        log_info("ring epoch %" PRIu64 ": this shard pulls %u partitions and releases %u",
                 ring->epoch, gained, lost);
    for (uint32_t p = 0; p < tr->q; p++)
        tr_publish_whole(tr, p); /* the new list is asked afresh */
    ring_destroy(old);
    tr_save(tr); /* at once: a restart must know what it does not hold */
    return true;
}

/* ---- the receiver ---- */

static const struct snapshot_member *tr_member(const struct snapshot *s, const char *id)
{
    for (uint32_t i = 0; i < s->n_members; i++)
        if (strcmp(s->members[i].id, id) == 0)
            return &s->members[i];
    return NULL;
}

/* A source worth asking: not down (one that left may still serve what it
 * released; a dead one costs a request's deadline). */
static bool tr_live(const struct snapshot_member *m)
{
    return m && m->status != MEMBER_S_DOWN;
}

/* The source partition p asks next (its index in ids), or -1: from
 * src_at on, a member first, else one that left (it may be gone). */
static int tr_pick_source(struct transfer *tr, const struct snapshot *s, struct tr_part *tp)
{
    for (int left = 0; left < 2; left++)
        for (uint32_t k = 0; k < tp->n_src; k++) {
            uint32_t at = (tp->src_at + k) % tp->n_src;
            const struct snapshot_member *m = tr_member(s, tr->ids[tp->src[at]]);
            if (tr_live(m) && (m->status == MEMBER_S_LEFT) == left) {
                tp->src_at = (uint8_t)at;
                return tp->src[at];
            }
        }
    return -1;
}

static uint32_t tr_streams_allowed(const struct node *n)
{
    uint32_t c = (uint32_t)n->cfg->handoff_concurrency; /* 0: pulls none */
    uint32_t per = (c + n->nshards - 1) / n->nshards;
    return per < TRANSFER_STREAMS_MAX ? per : TRANSFER_STREAMS_MAX;
}

static void tr_put_cursor(uint8_t out[8], uint64_t c)
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(c >> (8 * i));
}

static uint64_t tr_get_cursor(const struct wire_bytes *b)
{
    uint64_t c = 0;
    for (uint32_t i = 0; i < 8 && i < b->len; i++)
        c |= (uint64_t)b->ptr[i] << (8 * i);
    return c;
}

/* Sends stream slot i's request. */
static int tr_send_stream(struct shard *sh, uint32_t i)
{
    struct transfer *tr = sh->transfer;
    struct tr_stream *st = &tr->streams[i];
    uint8_t cur[8], from[8], list[2 * TRANSFER_GROUP_MAX];
    tr_put_cursor(cur, st->cursor);
    tr_put_cursor(from, st->from);
    for (uint32_t k = 0; k < st->nparts; k++) {
        list[2 * k] = (uint8_t)st->parts[k];
        list[2 * k + 1] = (uint8_t)(st->parts[k] >> 8);
    }
    struct wire_bytes v = {list, 2 * st->nparts};
    struct wire_msg wm = {.kind = WIRE_REQUEST,
                          .id = (uint64_t)st->gen << 8 | i,
                          .op = WIRE_OP_STREAM,
                          .deadline_ms = TRANSFER_STREAM_MS,
                          .partition = st->parts[0],
                          .key = {cur, 8},
                          .meta = {from, 8}, /* STREAM: and from it on */
                          .n_values = 1,
                          .values = &v};
    return peerlink_request(sh, tr->ids[st->src], st->addr, &wm);
}

/* Gives stream i's partitions back to PENDING; next_source: try another. */
static void tr_stream_end(struct transfer *tr, uint32_t i, bool next_source)
{
    struct tr_stream *st = &tr->streams[i];
    for (uint32_t k = 0; k < st->nparts; k++) {
        uint32_t p = st->parts[k];
        if (tr_get(tr, p) != TRANSFER_STREAMING)
            continue;
        tr_set(tr, p, TRANSFER_PENDING);
        if (next_source)
            tr->parts[p].src_at++;
    }
    st->busy = false;
}

/* Partition tp is pulled from source src (an index into ids) next: a walk
 * begun with another source starts over (its reach is that source's). */
static void tr_walk_with(struct tr_part *tp, int src)
{
    if (tp->cur_src != (uint32_t)src + 1 && tp->cursor) {
        tp->cursor = 0;
        tp->walk_reach = UINT64_MAX;
    }
    tp->cur_src = (uint32_t)src + 1;
}

/* Starts streams while the limits allow. */
static void tr_start_streams(struct shard *sh, const struct snapshot *s, int64_t now_ms)
{
    struct transfer *tr = sh->transfer;
    if (!tr->ring_ms)
        tr->ring_ms = now_ms;
    if (!tr->settle_logged) { /* see "Settling" above */
        bool waited_out = now_ms - tr->ring_ms >= TRANSFER_SETTLE_WAIT_MS;
        if (!s->ring_settled && !waited_out)
            return;
        bool pulls = false;
        for (uint32_t p = 0; p < tr->q && !pulls; p++)
            pulls = tr_get(tr, p) == TRANSFER_PENDING;
        if (pulls && !s->ring_settled)
            log_info("ring epoch %" PRIu64 " has not reached every live member after %d ms: "
                     "pulls start anyway (anti-entropy mends what they miss)",
                     s->ring->epoch, TRANSFER_SETTLE_WAIT_MS);
        else if (pulls)
            log_info("ring epoch %" PRIu64 " reached every live member in %" PRId64
                     " ms: pulls start", s->ring->epoch, now_ms - tr->ring_ms);
        tr->settle_logged = true;
    }
    uint32_t busy = 0;
    for (uint32_t i = 0; i < TRANSFER_STREAMS_MAX; i++)
        busy += tr->streams[i].busy;
    for (uint32_t p = 0; p < tr->q && busy < tr_streams_allowed(sh->node) && tr->tokens > 0; p++) {
        if (tr_get(tr, p) != TRANSFER_PENDING || now_ms < tr->parts[p].retry_ms)
            continue;
        int src = tr_pick_source(tr, s, &tr->parts[p]);
        if (src < 0)
            continue;
        tr_walk_with(&tr->parts[p], src);
        uint32_t i = 0;
        while (tr->streams[i].busy)
            i++;
        struct tr_stream *st = &tr->streams[i];
        *st = (struct tr_stream){.busy = true,
                                 .gen = ++tr->next_gen,
                                 .src = (uint16_t)src,
                                 .cursor = tr->parts[p].cursor,
                                 .walk_from = tr->parts[p].cursor,
                                 .from = tr->parts[p].from,
                                 .epoch = tr->parts[p].epoch,
                                 .deadline_ms = now_ms + TRANSFER_STREAM_MS};
        snprintf(st->addr, sizeof st->addr, "%s", tr_member(s, tr->ids[src])->cluster_addr);
        for (uint32_t q = p; q < tr->q && st->nparts < TRANSFER_GROUP_MAX; q++) {
            struct tr_part *tq = &tr->parts[q];
            if (tr_get(tr, q) != TRANSFER_PENDING || now_ms < tq->retry_ms ||
                tq->epoch != st->epoch || tq->from != st->from ||
                tr_pick_source(tr, s, tq) != src)
                continue;
            tr_walk_with(tq, src);
            if (tq->cursor != st->cursor)
                continue;
            st->parts[st->nparts++] = (uint16_t)q;
            tr_set(tr, q, TRANSFER_STREAMING);
        }
        if (tr_send_stream(sh, i) != 0)
            tr_stream_end(tr, i, true);
        else
            busy++;
    }
}

static struct tr_stream *tr_stream_of(struct transfer *tr, uint64_t id)
{
    uint32_t i = (uint32_t)(id & 0xFF);
    if (i >= TRANSFER_STREAMS_MAX || !tr->streams[i].busy || tr->streams[i].gen != (id >> 8))
        return NULL;
    return &tr->streams[i];
}

static bool tr_in_group(const struct tr_stream *st, uint32_t p)
{
    for (uint32_t k = 0; k < st->nparts; k++)
        if (st->parts[k] == p)
            return true;
    return false;
}

/* A streamed key whose version here is on disk only, waiting for it. */
struct tr_parked {
    uint64_t stream_id;
    uint64_t expire_at_ms;
    uint32_t klen, mlen, vlen;
    char data[]; /* key, meta, value */
};

static void tr_on_end_now(struct shard *sh, uint32_t i);
static int tr_apply(struct shard *sh, struct tr_stream *st, uint64_t park_id, const char *key,
                    uint32_t klen, uint64_t hash, const uint8_t *meta, uint32_t mlen,
                    const uint8_t *val, uint32_t vlen, uint64_t expire_at_ms);
static struct tr_stream *tr_stream_of(struct transfer *tr, uint64_t id);

static bool tr_loaded(struct req_table *t, struct req *r, enum req_end how)
{
    struct shard *sh = t->ctx;
    struct tr_parked *pk = r->owner_ptr;
    if (!pk)
        return true; /* the source's: the receiver asks again */
    struct tr_stream *st = sh->transfer ? tr_stream_of(sh->transfer, pk->stream_id) : NULL;
    if (st) {
        const char *key = pk->data;
        const uint8_t *meta = (const uint8_t *)pk->data + pk->klen;
        if (how == REQ_END_DONE)
            (void)tr_apply(sh, st, 0, key, pk->klen, keyhash(key, pk->klen), meta, pk->mlen,
                           meta + pk->mlen, pk->vlen, pk->expire_at_ms);
        else
            st->failed = true;
        if (--st->parked == 0 && st->end_waits)
            tr_on_end_now(sh, (uint32_t)(pk->stream_id & 0xFF));
    }
    mi_free(pk);
    return true;
}

/* Values beyond RAM: starts reading key's value back from the log (a no-op
 * message waiting in tier.h: coord_load_value). The source's
 * (owner NULL): the batch asked again finds it in memory; the receiver's:
 * the parked key is applied then (tr_loaded). False when it is in memory
 * already or the read cannot start. */
static bool tr_load_cold(struct shard *sh, const char *key, uint32_t klen, uint64_t hash,
                         struct tr_parked *owner)
{
    if (!sh->tier)
        return false;
    if (tier_may_run(sh, CMD_READS_VALUE, hash, key, klen)) {
        store_pin(sh->store, NULL); /* in memory already */
        return false;
    }
    return coord_load_value(sh, key, klen, hash, tr_loaded, owner, shard_deadline(sh)) != NULL;
}

/* Parks a streamed key until this node's cold version of it is read back
 * (then applied; tr_loaded). False when it cannot be. */
static bool tr_park(struct shard *sh, struct tr_stream *st, uint64_t stream_id, const char *key,
                    uint32_t klen, uint64_t hash, const uint8_t *meta, uint32_t mlen,
                    const uint8_t *val, uint32_t vlen, uint64_t expire_at_ms)
{
    struct tr_parked *pk = mi_malloc(sizeof *pk + (size_t)klen + mlen + vlen + 1);
    if (!pk)
        return false;
    *pk = (struct tr_parked){stream_id, expire_at_ms, klen, mlen, vlen};
    memcpy(pk->data, key, klen);
    memcpy(pk->data + klen, meta, mlen);
    memcpy(pk->data + klen + mlen, val, vlen);
    if (!tr_load_cold(sh, key, klen, hash, pk)) {
        mi_free(pk);
        return false;
    }
    st->parked++;
    return true;
}

/* Applies one streamed key's state; a failure fails the batch (st). With
 * park_id (the stream's request id), a key whose version here is on disk
 * only waits for it (tr_park) and is applied then. */
static int tr_apply(struct shard *sh, struct tr_stream *st, uint64_t park_id, const char *key,
                    uint32_t klen, uint64_t hash, const uint8_t *meta, uint32_t mlen,
                    const uint8_t *val, uint32_t vlen, uint64_t expire_at_ms)
{
    struct transfer *tr = sh->transfer;
    uint32_t p = node_partition_of(sh->node, key, klen, hash);
    int rc = replica_apply(sh->store, sh->node, key, klen, hash, meta, mlen, val, vlen,
                           expire_at_ms);
    if (rc == -EAGAIN && park_id &&
        tr_park(sh, st, park_id, key, klen, hash, meta, mlen, val, vlen, expire_at_ms))
        return 0;
    if (rc < 0) { /* the batch does not count: asked again (a retry applies it or fails again) */
        if (!st->failed)
            log_warn("partition %u: a streamed key could not be applied (%s); the batch is asked "
                     "again",
                     p, strerror(-rc));
        st->failed = true;
        return rc;
    }
    uint64_t bytes = (uint64_t)klen + mlen + vlen;
    tr->parts[p].bytes += bytes;
    tr->parts[p].keys++;
    tr->rate_bytes += bytes;
    tr->tokens -= (double)bytes;
    ST_ADD(tr, bytes, bytes);
    ST_ADD(tr, keys, 1);
    return 0;
}

/* One key's state from a source. */
static void tr_on_item(struct shard *sh, struct tr_stream *st, const struct wire_msg *m)
{
    struct transfer *tr = sh->transfer;
    const char *key = (const char *)m->key.ptr;
    uint64_t hash = keyhash(key, m->key.len);
    uint32_t p = node_partition_of(sh->node, key, m->key.len, hash);
    if (!tr_in_group(st, p) || tr_get(tr, p) != TRANSFER_STREAMING)
        return;
    struct wire_value_iter it;
    struct wire_bytes v = {0};
    wire_values_init(&it, m);
    wire_values_next(&it, &v);
    uint64_t id = (uint64_t)st->gen << 8 | (uint64_t)(st - tr->streams);
    st->walk_keys++;
    (void)tr_apply(sh, st, id, key, m->key.len, hash, m->meta.ptr, m->meta.len, v.ptr, v.len,
                   m->expire_at_ms);
}

/* Keys arrive in hash order (a source walks its table by hash, and the
 * table's home slots follow the hash too), so a table sized for the keys
 * it holds so far would hold them all in its first slots: one probe
 * cluster that every new key crosses (100,000 keys put in hash order took
 * 0.75 s, up to 20 ms for one, against 0.02 s in any other order; it was
 * most of a joiner's CPU and of the clients' p99 while a join began). So
 * after each batch the table grows ahead to what the walks under way
 * project: the keys held plus, per walk, its keys so far times the share
 * of hash space still to go over the share gone over. A split table (one
 * part per partition) grows each streamed partition's part instead: its
 * keys plus its share (by keys held) of its walk's projection. */
static void tr_reserve(struct shard *sh)
{
    struct transfer *tr = sh->transfer;
    const double space = 18446744073709551616.0;
    struct table *t = sh->store->table;
    if (table_is_split(t)) {
        double budget = (double)(1u << 26); /* projections gone wild stay bounded, all told */
        for (uint32_t i = 0; i < TRANSFER_STREAMS_MAX && budget > 0; i++) {
            const struct tr_stream *st = &tr->streams[i];
            if (!st->busy || st->walk_keys < 64 || st->cursor <= st->walk_from)
                continue;
            double gone = (double)(st->cursor - st->walk_from) / space;
            double left = (double)(UINT64_MAX - st->cursor) / space;
            if (gone < 1.0 / 1024)
                continue;
            double more = (double)st->walk_keys * left / gone, held = 0;
            if (more > budget)
                more = budget;
            budget -= more;
            for (uint32_t k = 0; k < st->nparts; k++)
                held += (double)table_part_count(t, st->parts[k]);
            for (uint32_t k = 0; held > 0 && k < st->nparts; k++) {
                double keys = (double)table_part_count(t, st->parts[k]);
                (void)table_reserve(t, st->parts[k], (size_t)(keys + more * keys / held));
            }
        }
        return;
    }
    double more = 0;
    for (uint32_t i = 0; i < TRANSFER_STREAMS_MAX; i++) {
        const struct tr_stream *st = &tr->streams[i];
        if (!st->busy || st->walk_keys < 64 || st->cursor <= st->walk_from)
            continue;
        double gone = (double)(st->cursor - st->walk_from) / space;
        double left = (double)(UINT64_MAX - st->cursor) / space;
        if (gone >= 1.0 / 1024)
            more += (double)st->walk_keys * left / gone;
    }
    if (more > (double)(1u << 26))
        more = (double)(1u << 26); /* a projection gone wild stays bounded */
    uint64_t want = (uint64_t)store_count(sh->store) + (uint64_t)more;
    if (want <= tr->reserved + tr->reserved / 4)
        return;
    if (table_reserve(t, 0, want) == 0)
        tr->reserved = want;
}

/* The end of a batch: the next cursor and the partitions served. Those
 * served and not finished are asked for again at once from the same source
 * while the byte budget allows (so a stream runs at the links' pace, not the
 * tick's); those not served go to their next source. */
static void tr_on_end_now(struct shard *sh, uint32_t i)
{
    struct transfer *tr = sh->transfer;
    struct tr_stream *st = &tr->streams[i];
    st->end_waits = false;
    if (st->failed || st->end_status == WIRE_CODE_OVERLOADED) {
        /* a key of the batch was not applied here, or not sent (a cold
         * value the source reads back meanwhile): the same batch again,
         * from the same source, a little later; the cursor stays */
        for (uint32_t k = 0; k < st->nparts; k++)
            tr->parts[st->parts[k]].retry_ms = tr->now_ms + TRANSFER_RETRY_MS;
        tr_stream_end(tr, i, false);
        return;
    }
    if (st->end_status != WIRE_CODE_OK) {
        tr_stream_end(tr, i, true);
        return;
    }
    struct wire_bytes v = {st->end_served, st->end_len};
    uint64_t next = st->end_next;
    uint16_t again[TRANSFER_GROUP_MAX];
    uint32_t n_again = 0;
    for (uint32_t k = 0; k < v.len / TRANSFER_SERVED_LEN; k++) {
        const uint8_t *e = v.ptr + TRANSFER_SERVED_LEN * k;
        uint32_t p = e[0] | (uint32_t)e[1] << 8;
        struct wire_bytes rb = {e + 2, 8};
        uint64_t reach = tr_get_cursor(&rb);
        if (p >= tr->q || !tr_in_group(st, p) || tr_get(tr, p) != TRANSFER_STREAMING)
            continue;
        struct tr_part *tp = &tr->parts[p];
        if (tp->cursor == 0)
            tp->walk_reach = UINT64_MAX; /* a new walk */
        if (reach < tp->walk_reach)
            tp->walk_reach = reach; /* the walk reaches as far as its shortest batch */
        reach = tp->walk_reach;
        tp->cursor = next;
        if (next != 0) {
            again[n_again++] = (uint16_t)p;
            tr_set(tr, p, TRANSFER_PENDING);
        } else if (reach >= tp->epoch) {
            tp->walk_reach = UINT64_MAX;
            tr_set(tr, p, TRANSFER_SETTLING); /* every write it lacked */
        } else { /* the writes up to `reach`: the rest from another source */
            tp->walk_reach = UINT64_MAX;
            tp->from = reach;
            tp->src_at++;
            tr_set(tr, p, TRANSFER_PENDING);
        }
    }
    tr_stream_end(tr, i, true);
    if (!n_again || tr->tokens <= 0)
        return;
    st->busy = true;
    st->failed = false;
    st->parked = 0;
    st->gen = ++tr->next_gen;
    st->cursor = next;
    st->deadline_ms = tr->now_ms + TRANSFER_STREAM_MS;
    st->nparts = n_again;
    memcpy(st->parts, again, n_again * sizeof again[0]);
    for (uint32_t k = 0; k < n_again; k++)
        tr_set(tr, again[k], TRANSFER_STREAMING);
    tr_reserve(sh); /* the walk goes on: room for what it will bring */
    if (tr_send_stream(sh, i) != 0)
        tr_stream_end(tr, i, false);
}

/* STREAM_END: handled once the batch's parked keys are applied. */
static void tr_on_end(struct shard *sh, uint32_t i, const struct wire_msg *m)
{
    struct tr_stream *st = &sh->transfer->streams[i];
    struct wire_value_iter it;
    struct wire_bytes v = {0};
    wire_values_init(&it, m);
    wire_values_next(&it, &v);
    st->end_status = m->status;
    st->end_next = tr_get_cursor(&m->key);
    st->end_len = v.len < sizeof st->end_served ? v.len : sizeof st->end_served;
    if (st->end_len)
        memcpy(st->end_served, v.ptr, st->end_len);
    if (st->parked)
        st->end_waits = true;
    else
        tr_on_end_now(sh, i);
}

void transfer_on_reply(struct shard *sh, const struct wire_msg *m)
{
    struct transfer *tr = sh->transfer;
    if (!tr)
        return;
    if (m->op == WIRE_OP_RELEASE) {
        uint32_t p = (uint32_t)(m->id >> 8) & 0xFFFF, k = (uint32_t)(m->id & 0xFF);
        if (p < tr->q && tr->parts && tr_get(tr, p) == TRANSFER_RELEASING &&
            (m->id >> 24) == (tr->ring ? (tr->ring->epoch & 0xFFFFFFFFFF) : 0) &&
            m->status == WIRE_CODE_OK && k < 32) {
            tr->parts[p].release_ok |= 1u << k;
            tr_publish_whole(tr, p);
        }
        return;
    }
    struct tr_stream *st = tr_stream_of(tr, m->id);
    if (!st)
        return; /* given up, or from before a ring change */
    if (m->op == WIRE_OP_STREAM)
        tr_on_item(sh, st, m);
    else if (m->op == WIRE_OP_STREAM_END)
        tr_on_end(sh, (uint32_t)(m->id & 0xFF), m);
}

/* ---- the source ---- */

/* How far this node's copy of partition p reaches for a receiver that has
 * the writes before ring epoch `from`: the epoch up to which it has every
 * write from `from` on (UINT64_MAX: all of them, when it is in its current
 * list and not pulling it, received whole durably or not; a releasing one's
 * [from', left) when from' <= from < left), or 0 when it cannot help. With
 * durably (RELEASE: may the asker drop it?): in the list, whole, durable. */
static uint64_t tr_reach(struct shard *sh, const struct snapshot *s, uint32_t p, uint64_t from,
                         bool durably)
{
    struct transfer *tr = sh->transfer;
    unsigned st = tr_get(tr, p);
    const struct tr_part *tp = &tr->parts[p];
    if (st == TRANSFER_RELEASING)
        return !durably && tp->from <= from && tp->epoch > from ? tp->epoch : 0;
    if (tr_receiving(st) || st == TRANSFER_DROPPING || (st == TRANSFER_SETTLING && durably))
        return 0;
    if (durably && tr->path[0] &&
        (tr->file_epoch != (tr->ring ? tr->ring->epoch : 0) || tr->filed_state[p] == FILED_IN))
        return 0; /* whole, but a restart would not know it: the durable file says otherwise */
    bool in = s && s->ring && tr_in_list(sh->node, s->ring, s->members[s->self].id, p);
    return in ? UINT64_MAX : 0;
}

struct tr_walk {
    const struct node *n;
    const uint8_t *want; /* per partition: 1 to stream */
    bool filter;         /* the table is not split: the walk meets other partitions' keys */
    struct buf keys;     /* chunk u32, klen u32, key: those to export */
    uint32_t chunk;      /* the table_scan() call under way */
    uint32_t count;
    uint64_t bytes; /* their keys and values, about */
    uint64_t walked; /* entries met */
};

static void tr_walk_fn(struct table_entry *e, void *arg)
{
    struct tr_walk *w = arg;
    const char *key = table_entry_key(e);
    w->walked++;
    if (w->filter) {
        uint64_t hash = w->n->partition_fn == KEYHASH_FN_XXH3 ? keyhash(key, e->key_len) : 0;
        if (!w->want[node_partition_of(w->n, key, e->key_len, hash)])
            return;
    }
    buf_append(&w->keys, &w->chunk, sizeof w->chunk);
    buf_append(&w->keys, &e->key_len, sizeof e->key_len);
    buf_append(&w->keys, key, e->key_len);
    w->count++;
    w->bytes += e->key_len + (uint64_t)table_entry_val_len(e);
}

static void tr_reply(struct shard *sh, uint64_t link, const struct wire_msg *rq, uint8_t op,
                     uint8_t status, const struct wire_bytes *key, const struct wire_bytes *value)
{
    struct wire_msg rm = {.kind = WIRE_REPLY,
                          .id = rq->id,
                          .op = op,
                          .status = status,
                          .n_values = value ? 1 : 0,
                          .values = value};
    if (key)
        rm.key = *key;
    int rc = peerlink_reply(sh, link, &rm);
    if (rc != 0 && rc != -ENOENT)
        log_debug("a %s reply could not be sent (%s)", wire_op_name(op), strerror(-rc));
}

/* Exports and sends the walked keys' states. Returns the chunk (the walk's
 * table_scan() call) of the first key that could not be sent (its value
 * is on disk only: read back meanwhile; an export error; a reply not
 * sent), or -1 when all were: the batch may advance only up to that
 * chunk's start. */
static int tr_send_states(struct shard *sh, uint64_t link, const struct wire_msg *rq,
                          const struct tr_walk *w)
{
    struct transfer *tr = sh->transfer;
    struct replica_state rs;
    replica_state_init(&rs);
    uint64_t bytes = 0;
    int failed = -1;
    for (size_t off = 0; off + 8 <= w->keys.len;) {
        uint32_t chunk, klen;
        memcpy(&chunk, w->keys.data + off, 4);
        memcpy(&klen, w->keys.data + off + 4, 4);
        const char *key = w->keys.data + off + 8;
        off += 8 + (size_t)klen;
        if (failed >= 0 && chunk != (uint32_t)failed)
            break; /* the batch ends before the failed key's chunk: the rest waits */
        uint64_t hash = keyhash(key, klen);
        int rc = replica_export(sh->store, sh->node, key, klen, hash, &rs);
        if (rc == -ENOENT)
            continue; /* gone since the walk (expired): nothing to give */
        if (rc != 0 || failed >= 0) { /* that chunk's cold values are read back, not sent */
            if (rc == 0)
                continue;
            if (rc == -EAGAIN) {
                ST_ADD(tr, cold_skipped, 1);
                (void)tr_load_cold(sh, key, klen, hash, NULL);
            } else {
                log_warn("a key of a streamed partition could not be exported (%s)",
                         strerror(-rc));
            }
            if (failed < 0)
                failed = (int)chunk;
            continue;
        }
        struct wire_bytes body = {(const uint8_t *)rs.body.data, (uint32_t)rs.body.len};
        struct wire_msg rm = {.kind = WIRE_REPLY,
                              .id = rq->id,
                              .op = WIRE_OP_STREAM,
                              .status = WIRE_CODE_OK,
                              .expire_at_ms = rs.expire_at_ms,
                              .key = {(const uint8_t *)key, klen},
                              .meta = {(const uint8_t *)rs.meta.data, (uint32_t)rs.meta.len},
                              .n_values = 1,
                              .values = &body};
        if (peerlink_reply(sh, link, &rm) != 0) {
            failed = (int)chunk;
            continue;
        }
        bytes += (uint64_t)klen + rs.meta.len + rs.body.len;
        ST_ADD(tr, keys_sent, 1);
    }
    replica_state_fini(&rs);
    ST_ADD(tr, bytes_sent, bytes);
    return failed;
}

static void tr_on_stream(struct shard *sh, uint64_t link, const struct wire_msg *m,
                         const struct snapshot *s)
{
    struct transfer *tr = sh->transfer;
    struct wire_value_iter it;
    struct wire_bytes v = {0};
    wire_values_init(&it, m);
    wire_values_next(&it, &v);
    uint8_t *want = mi_calloc(tr->q, 1);
    uint8_t served[TRANSFER_SERVED_LEN * TRANSFER_GROUP_MAX];
    uint32_t served_parts[TRANSFER_GROUP_MAX];
    uint32_t n_served = 0;
    uint64_t from = tr_get_cursor(&m->meta);
    for (uint32_t k = 0; want && k < v.len / 2 && n_served < TRANSFER_GROUP_MAX; k++) {
        uint32_t p = v.ptr[2 * k] | (uint32_t)v.ptr[2 * k + 1] << 8;
        uint64_t reach = p < tr->q && sh->node->partition_shard[p] == sh->id && !want[p]
                             ? tr_reach(sh, s, p, from, false)
                             : 0;
        if (!reach)
            continue;
        want[p] = 1;
        served_parts[n_served] = p;
        uint8_t *e = served + TRANSFER_SERVED_LEN * n_served++;
        e[0] = (uint8_t)p;
        e[1] = (uint8_t)(p >> 8);
        tr_put_cursor(e + 2, reach);
    }
    if (!n_served) {
        mi_free(want);
        tr_reply(sh, link, m, WIRE_OP_STREAM_END, WIRE_CODE_UNAVAILABLE, NULL, NULL);
        return;
    }
    /* The walk: the served partitions' parts only (a table not split walks
     * every key and filters) */
    struct tr_walk w = {.n = sh->node, .want = want, .filter = !table_is_split(sh->store->table)};
    buf_init(&w.keys);
    uint64_t cursor = tr_get_cursor(&m->key), starts[TRANSFER_CHUNKS_MAX];
    uint32_t visits = 0;
    do {
        starts[w.chunk] = cursor;
        cursor = table_scan_parts(sh->store->table, served_parts, n_served, cursor,
                                  TRANSFER_SCAN_STEP, tr_walk_fn, &w);
        visits += TRANSFER_SCAN_STEP;
        w.chunk++;
    } while (cursor != 0 && visits < TRANSFER_VISIT_MAX && w.bytes < TRANSFER_BATCH_BYTES);
    ST_ADD(sh->transfer, keys_walked, w.walked);
    int failed = tr_send_states(sh, link, m, &w);
    buf_fini(&w.keys);
    mi_free(want);
    if (failed == 0) { /* nothing to advance over: the receiver asks again later */
        tr_reply(sh, link, m, WIRE_OP_STREAM_END, WIRE_CODE_OVERLOADED, NULL, NULL);
        return;
    }
    if (failed > 0) /* up to the chunk of the first key not sent */
        cursor = starts[failed];
    uint8_t cur[8];
    tr_put_cursor(cur, cursor);
    struct wire_bytes ck = {cur, 8}, sv = {served, TRANSFER_SERVED_LEN * n_served};
    tr_reply(sh, link, m, WIRE_OP_STREAM_END, WIRE_CODE_OK, &ck, &sv);
}

/* Takes the snapshot's ring if it is not the last one seen (the tick would,
 * up to 100 ms later), and before it, in order, every ring published since
 * the last one taken (snapshot.earlier): two rings published within one
 * tick are both taken, as if the tick had come between them. A shard that
 * skipped a ring would neither claim the writes it took as a replica of
 * that ring's lists nor pull what it lacked of them, and a receiver
 * pulling those epochs from it found no source (a forming node's shard,
 * alone owner of its partitions at ring 2, took ring 3 only: its pulls of
 * ring 3 stalled). */
static void tr_catch_up(struct shard *sh, const struct snapshot *s)
{
    struct transfer *tr = sh->transfer;
    if (!s || !s->ring || (tr->ring && tr->snap_version == s->version))
        return;
    for (uint32_t i = 0; i < s->n_earlier; i++) {
        uint64_t seq = s->ring_seq - s->n_earlier + i;
        if (seq <= tr->ring_seq) /* (at start: the cell's first ring is the start ring) */
            continue;
        if (s->earlier[i]->epoch && (!tr->ring || tr->ring->hash != s->earlier[i]->hash))
            log_info("ring epoch %" PRIu64 ": taken in turn, before epoch %" PRIu64
                     " (both came since this shard's last look)",
                     s->earlier[i]->epoch, s->ring->epoch);
        if (!tr_ring_changed(sh, s, s->earlier[i]))
            return; /* out of memory: the next tick tries again */
        tr->ring_seq = seq;
    }
    if (!tr_ring_changed(sh, s, s->ring))
        return;
    tr->ring_seq = s->ring_seq;
    tr->snap_version = s->version;
}

void transfer_catch_up(struct shard *sh)
{
    struct node *n = sh->node;
    if (!sh->transfer || !n->snapshots)
        return;
    const struct snapshot *s = snapshot_read_begin(n->snapshots, sh->id);
    tr_catch_up(sh, s);
    snapshot_read_end(n->snapshots, sh->id);
}

void transfer_on_request(struct shard *sh, uint64_t link, const struct wire_msg *m)
{
    struct transfer *tr = sh->transfer;
    struct node *n = sh->node;
    const struct snapshot *s = snapshot_read_begin(n->snapshots, sh->id);
    tr_catch_up(sh, s); /* answer with the newest view */
    if (m->op == WIRE_OP_STREAM && m->key.len == 8) {
        tr_on_stream(sh, link, m, s);
    } else if (m->op == WIRE_OP_RELEASE && m->partition < tr->q &&
               n->partition_shard[m->partition] == sh->id) {
        bool holds = tr_reach(sh, s, m->partition, 0, true) != 0;
        tr_reply(sh, link, m, WIRE_OP_RELEASE, holds ? WIRE_CODE_OK : WIRE_CODE_UNAVAILABLE, NULL,
                 NULL);
    } else {
        tr_reply(sh, link, m, m->op, WIRE_CODE_ERROR, NULL, NULL);
    }
    snapshot_read_end(n->snapshots, sh->id);
}

/* ---- release ---- */

/* List position(s) `bit` of partition p need no more check: as of the copy
 * here now (its fingerprint; the earlier ones saw another copy: again). */
static void tr_handoff_ok(struct shard *sh, uint32_t p, uint32_t bit)
{
    struct tr_part *tp = &sh->transfer->parts[p];
    uint64_t print = aae_partition_print(sh, p);
    if (tp->handoff_ok && print != tp->handoff_print)
        tp->handoff_ok = 0;
    tp->handoff_print = print;
    tp->handoff_ok |= bit;
}

/* The list holds partition p whole: before the copy here goes, a handoff
 * check with each list member (aae_handoff) sends what it lacks of it, and
 * the copy is dropped only once a check with each found nothing to send, and
 * nothing was written here since (see "Release" above). */
static void tr_handoff(struct shard *sh, const struct snapshot *s, uint32_t p, uint32_t n_eff,
                       int64_t now_ms)
{
    struct transfer *tr = sh->transfer;
    struct tr_part *tp = &tr->parts[p];
    const struct ring *ring = s->ring;
    const uint32_t *list = ring_pref(ring, p);
    if (now_ms < tp->retry_ms)
        return;
    if (!tp->handoff_gen) {
        tp->handoff_gen = ++tr->handoff_gen ? tr->handoff_gen : ++tr->handoff_gen;
        tp->handoff_running = 0; /* a new generation: earlier checks' ends are ignored */
    }
    for (uint32_t k = 0; k < n_eff && k < 32; k++) {
        uint32_t bit = 1u << k;
        if ((tp->handoff_ok | tp->handoff_running) & bit)
            continue;
        uint64_t cookie = (uint64_t)tp->handoff_gen << 32 | (uint64_t)p << 8 | k;
        const char *id = ring->members[list[k]].id;
        int rc = aae_handoff(sh, p, id, cookie);
        if (rc == 1 || strcmp(id, s->members[s->self].id) == 0)
            tr_handoff_ok(sh, p, bit); /* no trees to check with; this node itself */
        else if (rc == 0)
            tp->handoff_running |= bit;
    }
}

void transfer_handoff_done(struct shard *sh, uint32_t p, uint64_t cookie, bool clean,
                           uint32_t keys_sent)
{
    struct transfer *tr = sh->transfer;
    uint32_t k = (uint32_t)(cookie & 0xFF);
    if (!tr)
        return;
    ST_ADD(tr, handoff_checks, 1);
    ST_ADD(tr, handoff_keys_sent, keys_sent);
    if (!tr->parts || p >= tr->q || tr_get(tr, p) != TRANSFER_RELEASING ||
        tr->parts[p].handoff_gen != (uint32_t)(cookie >> 32) || ((cookie >> 8) & 0xFFFF) != p ||
        k >= 32)
        return; /* from before a ring change, or an earlier stay in RELEASING */
    struct tr_part *tp = &tr->parts[p];
    tp->handoff_running &= ~(1u << k);
    tr->handoff_kick = true;
    if (!clean) {
        tp->retry_ms = tr->now_ms + TRANSFER_RETRY_MS; /* again: what it sent is there now */
        return;
    }
    tr_handoff_ok(sh, p, 1u << k);
}

/* Partitions whose keys are here although this node is in none of their
 * lists and has nothing of them under way (writes a coordinator sent it
 * under a ring this shard never took, a stand-in's, a drop pass's
 * stragglers): released like any other copy, so that a handoff check sends
 * the list what it lacks before they go. Their range is empty: they serve
 * no pull. */
static void tr_find_orphans(struct shard *sh, const struct snapshot *s)
{
    struct transfer *tr = sh->transfer;
    const struct node *n = sh->node;
    const char *self = s->members[s->self].id;
    uint32_t found = 0;
    if (!tr->ring || tr->ring->n_members < 2)
        return;
    for (uint32_t p = 0; p < tr->q; p++) {
        if (n->partition_shard[p] != sh->id || tr_get(tr, p) != TRANSFER_NONE ||
            tr_in_list(n, tr->ring, self, p) || !aae_partition_holds(sh, p))
            continue;
        memset(&tr->parts[p], 0, sizeof tr->parts[p]);
        tr_set(tr, p, TRANSFER_RELEASING);
        tr_publish_whole(tr, p); /* nobody asked yet */
        found++;
    }
    if (found) {
        log_info("ring epoch %" PRIu64 ": %u partitions hold keys here that no list of this "
                 "node names: handed off to their lists, then dropped", tr->ring->epoch, found);
        tr_save(tr);
    }
}

static void tr_ask_release(struct shard *sh, const struct snapshot *s, uint32_t p, int64_t now_ms)
{
    struct transfer *tr = sh->transfer;
    struct tr_part *tp = &tr->parts[p];
    const struct ring *ring = s->ring;
    if (ring->n_members == 1)
        return; /* it left the cluster: its copy stays (the operator's to wipe) */
    const uint32_t *list = ring_pref(ring, p);
    uint32_t n_eff = tr_n_eff(sh->node, ring), all = 0;
    for (uint32_t k = 0; k < n_eff && k < 32; k++)
        all |= 1u << k;
    if ((tp->release_ok & all) == all) {
        if ((tp->handoff_ok & all) && aae_partition_print(sh, p) != tp->handoff_print)
            tp->handoff_ok = 0; /* written here since: every member is checked again */
        if ((tp->handoff_ok & all) == all) {
            tr_set(tr, p, TRANSFER_DROPPING);
            tr_save(tr); /* the drop pass waits for a durable file saying so */
        } else {
            tr_handoff(sh, s, p, n_eff, now_ms);
        }
        return;
    }
    if (now_ms < tp->ask_ms)
        return;
    bool early = tr->ring_ms && now_ms - tr->ring_ms < TRANSFER_RELEASE_EARLY_MS;
    tp->ask_ms = now_ms + (early ? TRANSFER_RELEASE_EARLY_ASK_MS : TRANSFER_RELEASE_ASK_MS);
    for (uint32_t k = 0; k < n_eff && k < 32; k++) {
        if (tp->release_ok & (1u << k))
            continue;
        const struct snapshot_member *m = tr_member(s, ring->members[list[k]].id);
        if (!tr_live(m))
            continue;
        struct wire_msg wm = {.kind = WIRE_REQUEST,
                              .id = (ring->epoch & 0xFFFFFFFFFF) << 24 | (uint64_t)p << 8 | k,
                              .op = WIRE_OP_RELEASE,
                              .deadline_ms = TRANSFER_RELEASE_ASK_MS,
                              .partition = (uint16_t)p};
        (void)peerlink_request(sh, m->id, m->cluster_addr, &wm);
    }
}

struct tr_drop {
    const struct node *n;
    const uint8_t *state;
    const struct tr_part *parts;
    struct buf keys;
    size_t visited;
    bool filter; /* an unsplit table's walk meets every partition: test each key's */
};

static void tr_drop_fn(struct table_entry *e, void *arg)
{
    struct tr_drop *d = arg;
    const char *key = table_entry_key(e);
    d->visited++;
    if (d->filter) { /* the pass's own partitions only (their "drop" line is durable) */
        uint64_t hash = d->n->partition_fn == KEYHASH_FN_XXH3 ? keyhash(key, e->key_len) : 0;
        uint32_t p = node_partition_of(d->n, key, e->key_len, hash);
        if (!d->parts[p].in_sweep ||
            __atomic_load_n(&d->state[p], __ATOMIC_RELAXED) != TRANSFER_DROPPING)
            return;
    }
    buf_append(&d->keys, &e->key_len, sizeof e->key_len);
    buf_append(&d->keys, key, e->key_len);
}

/* One step of the drop pass, visiting about `visits` table entries: deletes
 * the keys of every DROPPING partition met; those DROPPING when the pass
 * began are released at its end (the pass covered all their keys), the
 * others at the end of the next. */
static void tr_drop_step(struct shard *sh, size_t visits)
{
    struct transfer *tr = sh->transfer;
    if (!tr->sweeping) {
        bool any = false;
        for (uint32_t p = 0; p < tr->q; p++) {
            /* only once a durable state file says so: a restart then goes on
             * dropping, and never serves the copy as whole */
            tr->parts[p].in_sweep = tr_get(tr, p) == TRANSFER_DROPPING &&
                                    (!tr->path[0] || tr->filed_state[p] == FILED_DROP);
            any |= tr->parts[p].in_sweep;
        }
        tr->drops = false;
        if (!any)
            return;
        tr->sweeping = true;
        tr->sweep_cursor = 0;
        tr->sweep_part = 0;
    }
    struct table *t = sh->store->table;
    struct tr_drop d = {
        .n = sh->node, .state = tr->state, .parts = tr->parts, .filter = !table_is_split(t)};
    buf_init(&d.keys);
    bool pass_done;
    if (d.filter) {
        tr->sweep_cursor = table_scan(t, tr->sweep_cursor, visits, tr_drop_fn, &d);
        pass_done = tr->sweep_cursor == 0;
    } else { /* the pass's partitions one after another, each its own part only,
              * whose state is tested once a step instead of once a key */
        size_t budget = visits;
        while (budget > 0 && tr->sweep_part < tr->q) {
            uint32_t p = tr->sweep_part;
            if (!tr->parts[p].in_sweep || tr_get(tr, p) != TRANSFER_DROPPING) {
                tr->sweep_part++; /* (one pulled back meanwhile keeps its keys) */
                tr->sweep_cursor = 0;
                continue;
            }
            size_t before = d.visited;
            tr->sweep_cursor =
                table_scan_parts(t, &p, 1, tr->sweep_cursor, budget, tr_drop_fn, &d);
            size_t cost = d.visited - before + 1; /* a partition costs one too */
            budget = cost > budget ? 0 : budget - cost;
            if (tr->sweep_cursor == 0)
                tr->sweep_part++; /* the next one starts at its beginning */
        }
        pass_done = tr->sweep_part >= tr->q;
    }
    uint64_t dropped = 0;
    for (size_t off = 0; off + 4 <= d.keys.len;) {
        uint32_t klen;
        memcpy(&klen, d.keys.data + off, 4);
        const char *key = d.keys.data + off + 4;
        off += 4 + (size_t)klen;
        (void)store_delete(sh->store, key, klen, keyhash(key, klen));
        dropped++;
    }
    buf_fini(&d.keys);
    ST_ADD(tr, keys_dropped, dropped);
    if (!pass_done)
        return;
    tr->sweeping = false;
    uint32_t released = 0;
    for (uint32_t p = 0; p < tr->q; p++)
        if (tr_get(tr, p) == TRANSFER_DROPPING && tr->parts[p].in_sweep) {
            tr_set(tr, p, TRANSFER_NONE); /* those that came during the pass wait for the next */
            released++;
        }
    ST_ADD(tr, released, released);
    log_info("released %u partitions: their keys here are deleted", released);
}

/* ---- checkpoints and figures ---- */

static void tr_checkpoint(struct shard *sh, int64_t now_ms)
{
    struct transfer *tr = sh->transfer;
    uint64_t durable = sh->persist ? persist_durable_seq(sh->persist) : UINT64_MAX;
    if (tr->ck_pending && durable >= tr->ck_seq) {
        for (uint32_t p = 0; p < tr->q; p++) {
            struct tr_part *tp = &tr->parts[p];
            tp->saved = tp->ck;
            tp->saved_bytes = tp->ck_bytes;
            if (tp->ck_done && tr_get(tr, p) == TRANSFER_SETTLING) {
                tr_set(tr, p, TRANSFER_DONE);
                log_debug("partition %u held whole: %" PRIu64 " keys, %" PRIu64 " bytes", p,
                          tp->keys, tp->bytes);
            }
            tp->ck_done = false;
        }
        tr->ck_pending = false;
        tr_save(tr);
        tr->saved_ms = now_ms;
    }
    if (tr->ck_pending || !tr->dirty || now_ms - tr->saved_ms < TRANSFER_SAVE_MS)
        return;
    tr->dirty = false;
    tr->ck_pending = true;
    tr->ck_seq = sh->persist ? persist_last_seq(sh->persist) : 0;
    for (uint32_t p = 0; p < tr->q; p++) {
        unsigned s = tr_get(tr, p);
        struct tr_part *tp = &tr->parts[p];
        tp->ck = transfer_is_incoming(s)
                     ? (struct tr_pos){tp->cursor, tp->walk_reach, tp->from, tp->epoch, tp->cur_src}
                     : (struct tr_pos){0};
        tr->parts[p].ck_bytes = transfer_is_incoming(s) ? tr->parts[p].bytes : 0;
        tr->parts[p].ck_done = s == TRANSFER_SETTLING;
    }
}

static void tr_figures(struct transfer *tr, int64_t now_ms)
{
    uint64_t by[TRANSFER_DROPPING + 1] = {0}, resumable = 0;
    double remaining = 0, done_bytes = 0;
    uint64_t done_parts = 0;
    for (uint32_t p = 0; p < tr->q; p++) {
        unsigned s = tr_get(tr, p);
        by[s]++;
        const struct tr_part *tp = &tr->parts[p];
        resumable += s == TRANSFER_DONE                           ? tp->bytes
                     : transfer_is_incoming(s) ? tp->filed_bytes /* a durable file's cursor */
                                      : 0;
        if (s == TRANSFER_DONE) {
            done_bytes += (double)tp->bytes;
            done_parts++;
        } else if (transfer_is_incoming(s) && tp->cursor) {
            double frac = (double)tp->cursor / 18446744073709551616.0;
            remaining += (double)tp->bytes * (1 - frac) / frac;
        }
    }
    for (uint32_t p = 0; p < tr->q; p++)
        if (transfer_is_incoming(tr_get(tr, p)) && !tr->parts[p].cursor && done_parts)
            remaining += done_bytes / (double)done_parts;
    ST_SET(tr, pending, by[TRANSFER_PENDING]);
    ST_SET(tr, streaming, by[TRANSFER_STREAMING]);
    ST_SET(tr, settling, by[TRANSFER_SETTLING]);
    ST_SET(tr, done, by[TRANSFER_DONE]);
    ST_SET(tr, releasing, by[TRANSFER_RELEASING]);
    ST_SET(tr, dropping, by[TRANSFER_DROPPING]);
    ST_SET(tr, remaining_bytes, (uint64_t)remaining);
    ST_SET(tr, resumable_bytes, resumable);
    if (now_ms - tr->rate_ms >= 1000) {
        double inst = (double)tr->rate_bytes * 1000.0 / (double)(now_ms - tr->rate_ms);
        double old = (double)__atomic_load_n(&tr->st.rate, __ATOMIC_RELAXED);
        ST_SET(tr, rate, (uint64_t)(old * 0.5 + inst * 0.5));
        tr->rate_bytes = 0;
        tr->rate_ms = now_ms;
    }
}

static void tr_refill(struct shard *sh, int64_t now_ms)
{
    struct transfer *tr = sh->transfer;
    int64_t limit = sh->node->cfg->handoff_max_bytes_per_sec;
    if (limit <= 0) {
        tr->tokens = 1e18;
        return;
    }
    double per = (double)limit / sh->node->nshards;
    if (tr->tokens_ms)
        tr->tokens += per * (double)(now_ms - tr->tokens_ms) / 1000.0;
    if (tr->tokens > per)
        tr->tokens = per;
    tr->tokens_ms = now_ms;
}

void transfer_tick(struct shard *sh, int64_t now_ms)
{
    struct transfer *tr = sh->transfer;
    struct node *n = sh->node;
    if (!tr || !n->snapshots)
        return;
    tr->now_ms = now_ms;
    const struct snapshot *s = snapshot_read_begin(n->snapshots, sh->id);
    tr_catch_up(sh, s);
    bool alone = s && s->ring && s->ring->n_members == 1 && !tr->dirty && !tr->ck_pending &&
                 !tr->sweeping && !tr->drops; /* a drop pass under way ends */
    if (!tr->parts || !s || !s->ring || alone) { /* a cluster of one moves nothing */
        snapshot_read_end(n->snapshots, sh->id);
        return;
    }
    for (uint32_t i = 0; i < TRANSFER_STREAMS_MAX; i++)
        if (tr->streams[i].busy && now_ms > tr->streams[i].deadline_ms)
            tr_stream_end(tr, i, true);
    tr_refill(sh, now_ms);
    tr_start_streams(sh, s, now_ms);
    if (now_ms >= tr->orphans_ms && tr->settle_logged) {
        tr->orphans_ms = now_ms + TRANSFER_ORPHANS_MS;
        tr_find_orphans(sh, s);
    }
    tr->handoff_kick = false; /* the pass below does what a kick would */
    for (uint32_t p = 0; p < tr->q; p++)
        if (tr_get(tr, p) == TRANSFER_RELEASING)
            tr_ask_release(sh, s, p, now_ms);
    snapshot_read_end(n->snapshots, sh->id);
    /* A pass begins here. On a busy shard (a loop turn every
     * TRANSFER_DROP_TURN_MS or more often since the last tick) the turns
     * carry it on in small steps (transfer_turn), and the tick's step is one
     * of theirs: a thousand deletes at once held that shard's requests for 1
     * to 3 ms, at every new pass of a join's release (bench/
     * join_under_load.sh). A quieter shard's tick tops the turns' visits
     * since the last tick up to TRANSFER_DROP_VISIT_MAX (an idle one: all of
     * it), so a pass always advances. */
    bool busy = tr->turns >= SHARD_TICK_MS / TRANSFER_DROP_TURN_MS;
    uint32_t step;
    if (!tr->sweeping) /* a pass begins */
        step = busy ? TRANSFER_DROP_TURN_VISITS : TRANSFER_DROP_VISIT_MAX;
    else if (tr->turn_visits >= TRANSFER_DROP_VISIT_MAX) /* the turns did the tick's share */
        step = 0;
    else if (!busy)
        step = TRANSFER_DROP_VISIT_MAX - tr->turn_visits;
    else /* one turn's step, unless a turn's ran just before (this one's, maybe) */
        step = now_ms - tr->drop_turn_ms < TRANSFER_DROP_TURN_MS ? 0 : TRANSFER_DROP_TURN_VISITS;
    if (step)
        tr_drop_step(sh, step);
    tr->turn_visits = 0;
    tr->turns = 0;
    tr_checkpoint(sh, now_ms);
    tr_figures(tr, now_ms);
}

/* A handoff check ended: the next ones start now, not at the next tick
 * (checks run AAE_EXCHANGES_MAX at a time; a join releases hundreds). */
static void tr_handoff_more(struct shard *sh, int64_t now_ms)
{
    struct transfer *tr = sh->transfer;
    struct node *n = sh->node;
    tr->handoff_kick = false;
    const struct snapshot *s = snapshot_read_begin(n->snapshots, sh->id);
    tr_catch_up(sh, s);
    for (uint32_t p = 0; tr->parts && s && s->ring && p < tr->q; p++)
        if (tr_get(tr, p) == TRANSFER_RELEASING && tr->parts[p].release_ok)
            tr_ask_release(sh, s, p, now_ms);
    snapshot_read_end(n->snapshots, sh->id);
}

void transfer_turn(struct shard *sh, int64_t now_ms)
{
    struct transfer *tr = sh->transfer;
    if (__builtin_expect(!tr, 0))
        return;
    tr->turns++;
    if (__builtin_expect(!tr->sweeping && !tr->handoff_kick, 1))
        return;
    if (tr->handoff_kick) {
        tr->now_ms = now_ms; /* retry_ms of checks ending now counts from it */
        tr_handoff_more(sh, now_ms);
    }
    if (!tr->sweeping || now_ms - tr->drop_turn_ms < TRANSFER_DROP_TURN_MS)
        return;
    tr->drop_turn_ms = now_ms;
    tr->turn_visits += TRANSFER_DROP_TURN_VISITS;
    /* the states of the newest ring first, as the tick's step has them: a
     * partition the ring gave back (pulled again) keeps the writes that
     * coordinators already send it */
    transfer_catch_up(sh);
    if (tr->sweeping)
        tr_drop_step(sh, TRANSFER_DROP_TURN_VISITS);
}

/* ---- any thread ---- */

void transfer_node_stats(const struct node *n, struct transfer_stats *out)
{
    memset(out, 0, sizeof *out);
    for (uint32_t i = 0; i < n->nshards; i++) {
        const struct transfer *tr = n->shards[i] ? n->shards[i]->transfer : NULL;
        uint64_t epoch = tr ? __atomic_load_n(&tr->st.ring_epoch, __ATOMIC_RELAXED) : 0;
        out->ring_epoch = i == 0 || epoch < out->ring_epoch ? epoch : out->ring_epoch;
        if (!tr)
            continue;
        const uint64_t *f = (const uint64_t *)&tr->st;
        uint64_t *o = (uint64_t *)out;
        for (size_t k = 0; k < offsetof(struct transfer_stats, eta_s) / sizeof(uint64_t); k++)
            o[k] += __atomic_load_n(&f[k], __ATOMIC_RELAXED);
    }
    out->eta_s = out->remaining_bytes == 0 ? 0
                 : out->rate ? (int64_t)(out->remaining_bytes / out->rate)
                             : -1;
}

/* The transfers of the shard that owns partition p; NULL when none. */
static const struct transfer *tr_of_partition(const struct node *n, uint32_t p)
{
    if (p >= n->npartitions)
        return NULL;
    const struct shard *sh = n->shards[n->partition_shard[p]];
    return sh ? sh->transfer : NULL;
}

uint32_t transfer_whole_replicas(const struct node *n, uint32_t p, uint64_t epoch)
{
    const struct transfer *tr = tr_of_partition(n, p);
    if (!tr || tr_get(tr, p) != TRANSFER_RELEASING)
        return 0;
    uint64_t v = __atomic_load_n(&tr->said_whole[p], __ATOMIC_RELAXED);
    return v >> 32 == (epoch & 0xFFFFFFFFu) ? (uint32_t)v : 0;
}

const char *transfer_pull_source(const struct shard *sh, uint32_t p)
{
    const struct transfer *tr = sh->transfer;
    if (!tr || !tr->parts || p >= tr->q || !transfer_is_incoming(tr_get(tr, p)))
        return NULL;
    const struct tr_part *tp = &tr->parts[p];
    if (tp->cur_src)
        return tr->ids[tp->cur_src - 1];
    return tp->n_src ? tr->ids[tp->src[tp->src_at % tp->n_src]] : NULL;
}

unsigned transfer_state(const struct node *n, uint32_t p)
{
    const struct transfer *tr = tr_of_partition(n, p);
    return tr ? tr_get(tr, p) : TRANSFER_NONE;
}
