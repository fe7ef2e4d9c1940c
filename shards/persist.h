/* persist.h: a shard's durable storage: the writer of its segment log and
 * the recovery that rebuilds its keyspace at start-up (storage = log).
 * Writing: the store reports every change (store.h, struct store_journal);
 * each is encoded as a segment record (seg.h) into a buffer, and at the end
 * of every loop turn the buffer goes to the kernel as one io_uring write at
 * the end of the current segment file, so the loop never waits for the disk.
 * appendfsync: always submits the turn's records as one write linked to an
 * fdatasync (group commit: one fdatasync for every client's writes of the
 * turn) and holds each reply that depends on a record not durable yet (its
 * own, or the newest of the key it read: persist_reply_seq) until an
 * fdatasync covers it (persist_durable_seq); the loop goes on serving while the disk
 * works, and the records of later turns form the next batch. everysec
 * submits an fdatasync at most once a second; no leaves it to the kernel
 * (but syncs every 64 MiB written). everysec and no keep what they wrote
 * since the last good fdatasync. A segment past its size limit is closed
 * once an fdatasync of it succeeds, and a new one begun.
 * Failures (a full or failing disk: ENOSPC, EIO): a failed write or
 * fdatasync makes the shard write everything since its last good
 * fdatasync again, retried on the tick with back-off, and until that is
 * written and synced the node refuses write commands (Redis's MISCONF;
 * reads go on): nothing is acknowledged that the log did not take, and the
 * records already taken stay in memory until they are on disk. Compaction
 * goes on meanwhile, removing only segments whose every record may go
 * without a copy (what frees a disk the log filled).
 * Compaction: while the estimated live share of the shard's segment files is
 * under compaction-threshold, the oldest closed segment is read through the
 * ring 128 KiB per step, its still-current records are appended again,
 * and once those are durable the file is unlinked (persist.c explains why
 * dropping its deletes is safe).
 * Recovery: before the shard serves, its segments are read in order and
 * applied to the store; a torn or corrupt tail is truncated and logged. When
 * the node restarts with another number of shards, or the data was laid out
 * by another partition function (xxh3, before Redis Cluster slots), each
 * shard reads every old shard's segments, keeps the keys of its own
 * partitions, and writes them as a fresh segment; node start-up then removes
 * the old files (a re-lay).
 * Threads: everything on the owning shard thread, except persist_mkdir() and
 * persist_prepare_dir(), which run on the main thread before the shards
 * start, and persist_finish_start(), after they have all recovered.
 * Errors: negative errno, logged with what the node does next. */
#ifndef RINGKV_SHARDS_PERSIST_H
#define RINGKV_SHARDS_PERSIST_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "cfg.h"
#include "mc.h"
#include "net.h"

struct shard;
struct store;
struct node;

/* Start-up facts shared by every shard, found on the main thread. */
struct persist_layout {
    uint32_t old_nshards;     /* shards that wrote the existing data; 0 = none */
    uint32_t old_partition_fn; /* enum keyhash_fn the existing data is laid out by */
    bool relay;               /* shard count or partition function changed: every
                                 shard reads every old file and keeps its own keys */
    uint64_t old_max_segment; /* highest segment number on disk */
    uint64_t first_segment;   /* segments below it belong to no layout */
    uint64_t data_epoch;      /* this incarnation of the data: kept in the manifest,
                                 drawn anew when the directory starts empty (and at
                                 every start with storage = memory); the versions'
                                 actor is made from it (dvv.h, KV-679) */
};

/* mkdir -p, durably: makes path and whatever of its parents is missing.
 * 0 (also when it exists) or -errno. Main thread, at start-up. */
int persist_mkdir(const char *path);
/* Main thread, before shards start, once node_create() has made dir and
 * locked it: reads its manifest, checks that the partition count matches.
 * 0 or -errno (logged). */
int persist_prepare_dir(const struct node *n, struct persist_layout *layout);
/* Main thread, after every shard recovered: removes segments made obsolete
 * by a change of shard count and writes the manifest. 0 or -errno. */
int persist_finish_start(const struct node *n, const struct persist_layout *layout);

/* What INFO persistence shows; written by the owner, read by any thread with
 * relaxed atomic loads. */
struct persist_stats {
    uint64_t segments;
    uint64_t disk_bytes;
    uint64_t fsyncs;
    int64_t last_fsync_ms;
    uint64_t write_errors;
    uint64_t recovered_keys;
    uint64_t recovered_records;
    uint64_t recovery_ms;
    uint64_t damaged_files;
    uint64_t value_raw_bytes;    /* values written, before compression */
    uint64_t value_stored_bytes; /* the same values as stored */
    uint64_t live_bytes;         /* estimated live record bytes (compaction) */
    uint64_t segment_bytes;      /* bytes in the shard's segment files */
    uint64_t compactions;        /* segments rewritten and removed */
    uint64_t compaction_reclaimed_bytes;
    uint64_t unsynced_bytes;     /* appended, not yet known durable */
    uint32_t failing;            /* 1 while the log cannot persist (MISCONF) */
    uint32_t rewriting;          /* 1 while BGREWRITEAOF's passes are owed or running */
    uint32_t saving;             /* 1 while a SAVE's or BGSAVE's records are not durable */
    int64_t saved_ms;            /* when a SAVE found every record durable already */
    int32_t last_error;          /* errno of the last write or sync failure; 0 none */
} __attribute__((aligned(64)));

struct persist;

/* Recovers the shard's keyspace into s, then opens a new segment for
 * writing and attaches the journal to s. Shard thread, before serving.
 * *out is NULL when storage is memory. 0 or -errno (logged). */
int persist_start(struct shard *sh, const struct persist_layout *layout, struct persist **out);
/* Stopping, on the shard thread after the ring drained: writes and syncs,
 * with blocking calls, everything not known durable; a failing disk is
 * tried again for a few seconds. Returns the number of records that could
 * not be made durable (0: all are on disk; logged). p may be NULL. */
uint64_t persist_finish(struct persist *p);
/* Frees the persist; writes nothing (persist_finish() did). */
void persist_stop(struct persist *p);

/* End of a loop turn, before replies leave: hands the records gathered so
 * far to the kernel (with appendfsync always, linked to an fdatasync, unless
 * a batch is still in flight: then they wait for the next). */
void persist_flush(struct persist *p);
/* SAVE, BGSAVE: every record made so far is to be durable now (everysec,
 * no: an fdatasync at the end of this loop turn's writes rather than at the
 * next second, or never; always: its batches sync anyway). *wait_seq: the
 * sequence a reply waits for (req_hold; the shard releases it through
 * req_durable), 0 when they are durable already. -ENOTSUP with storage =
 * memory (p NULL), -EIO while the log is failing (MISCONF). */
int persist_save(struct persist *p, uint64_t *wait_seq);
/* BGREWRITEAOF: compaction rewrites every closed segment once, whatever its
 * live share (the open one stays the tail), one pass at a time on the tick.
 * -ENOTSUP with storage = memory, -EIO when compaction is off after a
 * failure or while the log is failing, -EBUSY while an earlier one's
 * passes are still owed. */
int persist_rewrite_log(struct persist *p);
/* True when replies computed on this shard must wait until the records
 * before them are durable (appendfsync always), including replies to other
 * shards' requests. p may be NULL. */
bool persist_holds_replies(const struct persist *p);
/* Sequence number of the last record produced, and of the last one known
 * durable (appendfsync always). A reply computed when the former was X may
 * leave once the latter reaches X. */
uint64_t persist_last_seq(const struct persist *p);
uint64_t persist_durable_seq(const struct persist *p);
/* appendfsync always: the log sequence a reply must wait for, asked right
 * after its handler ran (before: persist_last_seq() before it ran; hash: its
 * key's, 0 for a shard-wide handler; failed: it answered an error). A
 * handler that logged records waits for them; an error that logged nothing
 * waits for nothing; a read waits for the newest record of its key (put or
 * delete) or flush not durable yet, a shard-wide read for every record.
 * 0: the reply may go at once (always, for everysec and no). p may be NULL. */
uint64_t persist_reply_seq(const struct persist *p, uint64_t before, uint64_t hash, bool failed);
/* Back-pressure: while some shard's log holds too many bytes not durable
 * yet (a slow or failing disk), clients that write pause their input
 * (conn_env.hold_writers = &node->log_over_cap); called every loop turn,
 * this resumes the shard's paused connections once that is over. */
void persist_release_writers(struct shard *sh);
/* True while the log has operations in the kernel (stopping waits). */
bool persist_busy(const struct persist *p);
/* The tick: fdatasync for everysec; retries after a failure. */
void persist_tick(struct persist *p, int64_t now_ms);
/* A completion of one of the persist's operations. */
void persist_on_cqe(struct persist *p, uint64_t ud, int res);

/* Values beyond RAM: where the record at log position lsn is, as a file
 * descriptor opened for reading (the persist's; do not close it) and an
 * offset. 0, -ENOENT (no such position), or -errno of opening the file. */
int persist_locate(struct persist *p, uint64_t lsn, int *fd, uint64_t *offset);
/* Records starting below this log position are written and can be read. */
uint64_t persist_readable_lsn(const struct persist *p);

/* A copy of the counters (relaxed loads). Any thread; p may be NULL. */
void persist_read_stats(const struct persist *p, struct persist_stats *out);

/* MISCONF, checked at dispatch (any shard thread; one relaxed load while
 * all is well). For a RESP command that writes: true, after writing
 * "-MISCONF Errors writing to the data log: <reason> ..." to out, while some
 * shard's log cannot persist. For a memcached request: the same for
 * commands that change data, with "SERVER_ERROR ..." (nothing with
 * noreply); reads pass. */
bool persist_refuse_resp(const struct node *n, struct buf *out);
/* True for a memcached request that changes data. */
bool persist_mc_writes(const struct mc_request *req);
bool persist_refuse_mc(const struct node *n, const struct mc_request *req, struct buf *out);

/* INFO persistence's lines on the log's state: log_write_status (ok or
 * err), log_last_error (the last failure's text, even once recovered, as
 * Redis's aof_last_write_status keeps its errno), log_unsynced_bytes. */
void persist_write_info(struct buf *b, const struct node *n);

#endif
