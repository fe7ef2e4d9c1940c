/* hints.h: hinted handoff (sloppy quorum, issue 12): a shard's durable log
 * of writes it keeps, as a stand-in past a key's top N, for a preference-list
 * node that was down or late (its intended owner), and their delivery to
 * that owner once failure detection sees it up again.
 *
 * The stand-in never serves a hinted key as a replica: a hint lives in the
 * hint log and in this module's memory only, never in the store, so reads
 * (which ask the top N alone) cannot see it. Delivery is the version sync
 * of the replication issue (a SYNC: an idempotent replica_apply at the
 * owner, acknowledged once durable there), so a hint delivered twice (after
 * a crash of the stand-in, before it learnt of the ack) changes nothing.
 *
 * The log: <dir>/hints/<shard>-<seq>.log, append-only files of checksummed
 * records (layout below), written through the shard's io_uring (a write,
 * then an fdatasync) in group commit: every hint a loop turn takes goes in
 * one write, and each HINT request is acknowledged only once its record is
 * durable. A file rolls over past HINT_FILE_MAX; a file whose hints were all
 * delivered is deleted (the one being written is truncated to nothing). At
 * start-up each shard scans the files of its own shard number (and those of
 * shard numbers it no longer has, modulo the shard count): records that
 * fail their checksum or length are skipped (the scan resyncs at the next
 * valid record: those after a bad one are kept), and a torn tail (nothing
 * valid after the last valid record) is cut off; a record already too old to
 * deliver (see below) is counted as expired and not loaded. Pending hints are held in memory as well (their encoded
 * records), which hint-max-bytes bounds: per target node, over the node's
 * shards (each shard takes its share). A delivered hint is forgotten in
 * memory at once; what a crash forgets of deliveries is delivered again.
 *
 * Record (every integer little-endian):
 *   off size
 *     0    8 checksum: XXH3-64 of every byte after this field
 *     8    4 body length L (HINT_BODY_FIXED .. HINT_BODY_MAX)
 *    12    1 version (1)
 *    13    1 zero
 *    14    2 partition
 *    16   20 target node id (its 40 hex digits as bytes)
 *    36    8 time: unix ms the hint was taken
 *    44    8 expire_at_ms (absolute unix ms; 0 none)
 *    52    4 key length, 56 meta length, 60 body length (the version state
 *            as SYNC carries it: replica.h's meta and body)
 *    64      key, meta, body: exactly L - HINT_BODY_FIXED bytes
 *
 * A hint older than tombstone-grace or max-hint-window is dropped, not
 * delivered (a delete it predates may have been reaped by then; past the
 * window anti-entropy repairs), whether its target is up or not. A target's
 * slot is freed once it holds nothing.
 *
 * Before a hint is sent its target is checked against the view: when it is
 * no longer among its partition's top N (a ring change, or it left), the
 * state goes as a SYNC to the partition's replicas of now instead (applied
 * here if this node is one), and the hint is forgotten once they all
 * acknowledged. A delivery that fails makes its target back off
 * (HINT_BACKOFF_*_MS, doubling). Files whose
 * live records are sparse are compacted (their pending hints copied into
 * the active file, then the file deleted), so the disk holds the pending
 * hints plus about two files.
 *
 * Bounds (past them a write is not hinted: the stand-in refuses it, the
 * coordinator counts that node as not answering; anti-entropy repairs):
 * max-hint-window (the coordinator hints for an owner down at most that
 * long, as its own failure detection saw it), hint-max-bytes (per target),
 * HINT_TARGETS_MAX targets per shard.
 *
 * Threads: the codec (hint_encode, hint_decode, hint_scan) is pure, any
 *   thread; hint_pending() any thread (relaxed atomics); everything else on
 *   the owning shard's thread.
 * Errors: -errno (-EINVAL bad input, -ENOMEM, -ENOSPC over a bound, -EIO
 *   the log cannot be written, -ENOENT no directory to keep hints in). */
#ifndef RINGKV_SHARDS_HINTS_H
#define RINGKV_SHARDS_HINTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "wire.h"

struct shard;
struct node;

#define HINT_HEADER_LEN 12
#define HINT_BODY_FIXED 52
#define HINT_VERSION 1
/* A body at most: a largest key, meta and value, and the fixed fields. */
#define HINT_BODY_MAX ((uint64_t)HINT_BODY_FIXED + WIRE_KEY_MAX + WIRE_META_MAX + WIRE_VALUE_MAX)
#define HINT_FILE_MAX (16u << 20) /* a hint file rolls over past this */
#define HINT_TARGETS_MAX 64       /* target nodes per shard */
/* A file past this at start-up is not one this code wrote (a batch past
 * HINT_FILE_MAX is bounded by hint-max-bytes): kept, not read. */
#define HINT_RECOVER_MAX (1ull << 30)
#define HINT_INFLIGHT_MAX 256     /* deliveries awaiting their ack, per shard */
#define HINT_REPLICAS_MAX 16 /* a redirected hint's replicas at most */
#define HINT_WAITING_MAX 64  /* hints a delivery pass passes over per target */
/* A target whose delivery failed waits this long, doubled per failure in a
 * row, up to the most. */
#define HINT_BACKOFF_MIN_MS 100
#define HINT_BACKOFF_MAX_MS 30000

/* One hint as the codec sees it; slices borrow the decoded bytes. */
struct hint_record {
    uint16_t partition;
    char target[WIRE_ID_HEX + 1]; /* 40 lowercase hex digits */
    uint64_t time_ms;
    uint64_t expire_at_ms;
    struct wire_bytes key, meta, body;
};

enum hint_status {
    HINT_OK,   /* a whole, valid record */
    HINT_MORE, /* the bytes end inside a record (a torn tail) */
    HINT_BAD,  /* a checksum, length or field is wrong */
};

/* Appends r's record to out. -EINVAL (a target that is not 40 lowercase hex
 * digits, a length past its bound); -ENOMEM (out->failed). */
int hint_encode(struct buf *out, const struct hint_record *r);
/* The record at p[0..len): OK with *r (borrowing p) and *consumed its length;
 * MORE when the bytes end first; BAD otherwise. */
enum hint_status hint_decode(const uint8_t *p, size_t len, struct hint_record *r,
                             size_t *consumed);

/* A file's records from its start: fn(arg, record, offset, length) for each
 * whole valid one, in order. Where bytes are not a valid record (a bad
 * checksum, a corrupt length) the scan resyncs: it goes on at the next
 * offset where a whole valid record starts, and adds the bytes passed over
 * to *skipped (may be NULL). Returns where the last valid record ends: what
 * follows holds nothing valid (a torn tail, cut by recovery). */
typedef void (*hint_scan_fn)(void *arg, const struct hint_record *r, size_t off, size_t len);
size_t hint_scan(const uint8_t *p, size_t len, hint_scan_fn fn, void *arg, size_t *skipped);

/* Per-shard state (sh->hints), recovered from the shard's files on its own
 * thread at start-up (none made until the first hint). -ENOMEM; a file that
 * cannot be read (or whose records cannot all be held: too many targets, no
 * memory) is logged, counted (INFO ringkv_hints_unloaded) and pinned: never
 * deleted while this process runs, read again at the next start-up. */
int hint_init(struct shard *sh);
void hint_fini(struct shard *sh);

/* The stand-in's side of a HINT request (wm: its SYNC fields; target: the
 * owner's id). 0: taken, and its REPLY (op HINT, OK or ERROR) goes on link
 * once the record is durable, or the write failed. -ENOSPC (over
 * hint-max-bytes for that target, or too many targets), -EINVAL, -ENOENT
 * (no data directory), -ENOMEM: the caller answers the error now. */
int hint_take(struct shard *sh, uint64_t link, const struct wire_msg *wm, const char *target);

/* Loop hooks (shard.c): hint_flush() once per turn (the turn's hints in one
 * write), hint_on_cqe() for SHARD_OP_HINT_* completions, hint_tick() on the
 * shard's tick (deliveries to owners that are up, throttled by
 * hint-max-bytes-per-sec; deletes delivered files). hint_busy(): a write or
 * fdatasync is in the kernel (stopping waits for it). */
void hint_flush(struct shard *sh);
void hint_on_cqe(struct shard *sh, uint64_t user_data, int32_t res);
void hint_tick(struct shard *sh, int64_t now_ms);
bool hint_busy(const struct shard *sh);

/* A peer's REPLY that answers one of this shard's deliveries: handled
 * (true), or not one (false: the coordinator's). */
bool hint_on_reply(struct shard *sh, const struct wire_msg *wm);

/* Any thread: bytes and hints pending for the node with this id, over every
 * shard. */
uint64_t hint_pending(const struct node *n, const char *target, uint64_t *count);

/* Every target with hints pending on any shard: fn(arg, id, bytes, count)
 * once per distinct id. Any thread. */
typedef void (*hint_target_fn)(void *arg, const char *id, uint64_t bytes, uint64_t count);
void hint_each_target(const struct node *n, hint_target_fn fn, void *arg);

/* INFO: "ringkv_hints_...:value\r\n" lines, every shard summed, then one
 * "ringkv_hints_target<k>:id=<id>,hints=<n>,bytes=<b>" line per target. */
void hint_info(const struct node *n, struct buf *out);

#endif
