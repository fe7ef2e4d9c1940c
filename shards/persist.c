/* persist.c: a shard's segment log writer and its start-up recovery (see
 * persist.h).
 * Writer state: `pending` gathers the records of the current loop turn;
 * `inflight` is the batch the kernel is writing at `write_offset` of the
 * current segment (one write at a time, so records land in order). A short
 * write is resubmitted for the rest.
 * everysec, no: what is written stays in `unsynced_data` (the file's bytes
 * [synced_to, write_offset)) until an fdatasync begun after it succeeds.
 * A failed write or fdatasync bumps `sync_gen` (an fdatasync begun before
 * proves nothing), and on the next tick everything since `synced_to` plus
 * the unwritten rest of the batch goes out again as one write, followed at
 * once by an fdatasync (persist_rewrite): the kernel reports a writeback
 * error once and may have dropped those pages.
 * appendfsync always: a batch is a write linked to an fdatasync, and up to
 * PERSIST_BATCHES batches are in flight at once, each at its own offset
 * (`batches`, oldest at `batch_head`): while one batch's fdatasync runs,
 * the next turn's records go out as the next batch. When a batch's write
 * was whole and its fdatasync succeeded it is complete; complete batches at
 * the head make their records durable in order (`durable_seq`), and the
 * shard releases the replies waiting for them. A short write cancels the
 * linked fdatasync and the rest goes out at once with a new one; a failed
 * write or fdatasync sends the batch again on the tick (after a failed
 * fdatasync, the whole batch, and every other batch in flight).
 * Failures: from the first failed write or fdatasync until everything
 * written since is written and synced again (persist_check_recovered), the
 * shard's log is failing (stats.failing, counted in node->log_failing) and
 * the node refuses write commands (persist_refuse_resp/_mc, MISCONF); the
 * retries run on the tick, backing off (100 ms doubling up to 3.2 s), so a
 * failing disk costs no busy loop, and nothing new reaches `pending` but
 * the records of requests already running. Compaction goes on meanwhile
 * (on a full disk it is what frees space), copying nothing: see
 * persist_record_droppable(). Writes are cut to 1 GiB each.
 * Rotation happens between writes and syncs: the full segment stays open
 * (`closing_fd`, with its unsynced bytes) until its fdatasync succeeds,
 * then closes through the ring; a failure writes those bytes again. The next
 * segment is made ahead; rotation waits while one is still closing.
 * Read descriptors for cold values are closed only while no cold read is
 * prepared or in flight (tier_busy), since a read names its descriptor
 * until the kernel issues it.
 * Test builds (ringkv-faults, RINGKV_FAULTS) inject write and fdatasync
 * failures where completions are handled; see persist_fault().
 * Recovery reads with plain blocking I/O on the shard thread before it serves
 * (seg_scan_file), applying puts, deletes and flushes to the store with no
 * journal attached, so nothing is written back. Expired records are skipped;
 * the request limits do not apply (the newest record of a key always wins).
 * The manifest <dir>/ringkv.meta records the shard and partition counts of
 * the data and its partition function, so a restart with another shard count,
 * or a first start after the function changed (xxh3 to Redis Cluster slots),
 * re-lays the keys: every shard reads every old file and keeps its own keys.
 * The manifest also keeps the data epoch (drawn when the directory starts
 * empty; with storage = memory, at every start): the actor of this node's
 * versions is made from it (dvv.h, KV-679), so a node whose data was wiped
 * writes as a new actor.
 * Versioned keys (RING.*): a put record carries the clock's meta in its meta
 * field and the clock's body as its value; recovery decodes it (a meta that
 * does not decode leaves the key out, as a value that does not decompress)
 * and compaction copies records as they are. */
#include "persist.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mimalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conn.h"
#include "dvv.h"
#include "keyhash.h"
#include "log.h"
#include "node.h"
#include "resp.h"
#include "seg.h"
#include "shard.h"
#include "store.h"
#include "tier.h"

#define PERSIST_MANIFEST "ringkv.meta"
#define PERSIST_FSYNC_INTERVAL_MS 1000
#define PERSIST_COMPACT_READ (128u << 10) /* bytes of an old segment read per step */
#define PERSIST_UD_ROTATION 1           /* slot of the fdatasync of a closed segment */
#define PERSIST_UD_UNLINK 2             /* slot of compaction's unlink (SHARD_OP_SEG_READ) */
/* appendfsync always: batches in flight at once. While one batch's
 * fdatasync runs, the records of the next turns go out as the next batch
 * instead of waiting, so the disk always has a flush queued; durability is
 * still declared in order. */
#ifndef PERSIST_BATCHES
#define PERSIST_BATCHES 2
#endif
#define PERSIST_MAX_READ_FDS 64 /* segments kept open for cold value reads */
/* everysec, no: written bytes kept for a rewrite past which an fdatasync is
 * begun at once (bounds the memory they take between two). */
#define PERSIST_MAX_UNSYNCED (64u << 20)
/* Past this many, `unsynced_data` grows to PERSIST_MAX_UNSYNCED at once
 * rather than doubling: each doubling copied the whole buffer and faulted
 * in twice its size in one loop turn (a joiner applying a transfer at
 * tens of MB/s: turns of 3, 6, 10 then 18 ms of CPU, each a stall for its
 * clients). Pages are faulted in as bytes land, a few per write. */
#define PERSIST_UNSYNCED_SMALL (1u << 20)
#define PERSIST_ERROR_LOG_MS 10000 /* a failure that lasts is logged this often */
#define PERSIST_COMPACT_RETRY_MS 1000 /* while failing: a pass that could not finish */
#define PERSIST_STOP_RETRY_MS 5000   /* stopping on a failing disk: tried this long */
#define PERSIST_RETRY_MIN_MS 100      /* a failing disk is tried again after this, */
#define PERSIST_RETRY_MAX_MS 3200     /* doubling up to this */
#define PERSIST_MAX_WRITE (1u << 30)  /* bytes in one write */
/* Back-pressure: past this many bytes not durable yet (appended, being
 * written, kept for a rewrite) in a shard's log, clients that write pause
 * until it is under half of it (node->log_over_cap). */
#define PERSIST_MAX_BUFFERED (128u << 20)

/* appendfsync always: key hash -> sequence of the key's newest record,
 * open addressing (hash 0 is stored as 1; a collision only holds longer). */
struct persist_keyseq {
    uint64_t *hash, *seq;
    uint32_t cap, count;
    uint64_t max_seq;
};

/* A record of the window: its key's hash (0: a flush; a key hashing to 0
 * counts as 1) and the key's version (cas) before it, 0 when the key was
 * absent, UINT64_MAX when unknown. */
struct persist_winrec {
    uint64_t hash;
    uint64_t prev;
};

/* appendfsync always: one batch of records, written at `offset` by a write
 * linked to an fdatasync. */
struct persist_batch {
    struct buf data;
    size_t done;       /* bytes of data written */
    uint64_t offset;   /* file offset of data[0] */
    uint64_t seq;      /* its last record */
    uint64_t end_lsn;  /* log position just past it */
    int ops;           /* its operations in the kernel */
    bool synced;       /* its latest fdatasync succeeded */
    bool poisoned;     /* another batch's fdatasync failed meanwhile: its own
                          success may hide lost pages (the kernel reports a
                          writeback error once), so it is written again */
    bool failed;       /* one of its operations failed: submitted again on the tick */
    bool retrying;     /* failed or poisoned since it was made: the log stays
                          failing (MISCONF) until it completes, even while
                          its retry is in the kernel */
    bool complete;     /* written whole and synced: durable once those before are */
};

struct persist_segment {
    uint64_t number;
    uint64_t bytes;
    uint64_t base_lsn; /* log position of its first record byte */
    int rfd;           /* opened for reading cold values, or -1 */
};

struct persist {
    struct shard *sh;
    struct store *store;
    const struct cfg *cfg;
    uint32_t shard_id;
    int fd;
    uint64_t segment;        /* number of the current segment */
    uint64_t write_offset;   /* where the next batch goes in the current segment */
    struct buf pending;      /* records of this turn */
    struct buf inflight;     /* the batch being written */
    size_t inflight_done;
    bool write_inflight;
    bool fsync_inflight;
    bool unsynced;           /* bytes written since the last fdatasync */
    bool always;             /* appendfsync always */
    /* everysec, no: the bytes [synced_to, write_offset) of the current
     * segment, written since its last good fdatasync, kept until one
     * succeeds: after a failed write or fdatasync the kernel may have dropped
     * them, so they are written again before any later fdatasync counts. */
    struct buf unsynced_data;
    uint64_t synced_to;
    size_t fsync_covers_len; /* bytes of unsynced_data the fdatasync in flight covers */
    uint32_t sync_gen;       /* bumped by every write or sync error */
    uint32_t fsync_gen;      /* sync_gen when the fdatasync in flight began */
    bool rewrite_needed;     /* an error happened: write unsynced_data again */
    bool sync_after_write;   /* a rewrite is on its way: fdatasync right after it */
    uint64_t cur_synced_seq; /* the current segment's records up to here are synced */
    /* The segment closed last: open until its fdatasync succeeds, with its
     * bytes since its last good fdatasync (everysec, no), so that they can
     * be written again if that fails. One at a time: rotation waits. */
    int closing_fd;
    uint64_t closing_number;
    struct buf closing_data;
    uint64_t closing_from;   /* file offset of closing_data[0] */
    uint64_t closing_seq;    /* its last record */
    bool closing_inflight;   /* its write or fdatasync is in the kernel */
    bool closing_failed;     /* the last one failed: again on the tick */
    size_t closing_done;     /* bytes of closing_data rewritten */
    /* MISCONF (stats.failing): a write or fdatasync failed and has not since
     * succeeded; the node refuses writes while any shard's log is failing. */
    bool cur_unverified;     /* the current segment had an error no fdatasync
                                has since covered */
    uint64_t batch_seq;      /* last record of the batch in flight (everysec, no) */
    /* appendfsync always: up to PERSIST_BATCHES batches in flight at once,
     * oldest at batch_head (see persist_flush_always). */
    struct persist_batch batches[PERSIST_BATCHES];
    uint32_t batch_head, nbatches;
    uint64_t durable_seq;    /* every record up to this one is durable */
    /* appendfsync always: the newest record of each key not yet durable, so
     * that a read of a durable key is not held (persist_reply_seq). */
    struct persist_keyseq keyseq[2]; /* [keyseq_cur] takes new records */
    uint32_t keyseq_cur;
    uint64_t flush_seq;      /* the last flush record (every key depends on it) */
    /* The window: one struct persist_winrec per record not known durable,
     * in order, the first for record window_seq (compaction while failing). */
    struct buf window;
    uint64_t window_seq;
    bool compact_failing;       /* this pass began while failing: copies nothing */
    uint64_t compact_from_seq;  /* such a pass: p->seq when it began */
    struct persist_keyseq compact_prev; /* such a pass: key -> its version before
                                           the window, plus 1 (0: not in it) */
    bool unlink_ok;             /* the unlink in flight succeeded */
    bool dir_sync_failed;       /* its directory fsync failed: again on the tick */
    int64_t compact_not_before; /* no pass while failing before this (ms) */
    uint64_t written_seq;    /* every record up to this one is written */
    uint64_t fsync_covers;   /* everysec/no: written_seq when the fdatasync began */
    uint64_t save_seq;       /* SAVE, BGSAVE: records up to here are to be synced
                                now, not at the next second (persist_save); while
                                they are not durable yet, stats.saving is 1 */
    /* The next segment, made ahead through the ring once the current one is
     * three quarters full: created, its header written and synced, and the
     * shard directory synced, so that rotation itself does no disk I/O. */
    enum { NEXT_NONE, NEXT_OPENING, NEXT_SYNCING, NEXT_READY, NEXT_FAILED } next_state;
    int next_fd;
    int next_ops;
    bool next_ok;
    int dir_fd;              /* the shard's directory, for its fsync */
    char next_path[1200];
    struct buf next_header;
    /* Compaction: closed segments (oldest first; the current one is not
     * among them) and the one being rewritten. */
    struct persist_segment *segs;
    size_t nsegs, segs_cap;
    uint64_t closed_bytes;   /* sum of segs[].bytes */
    enum { COMPACT_IDLE, COMPACT_READING, COMPACT_WAITING, COMPACT_UNLINKING } compact_state;
    int unlink_ops;             /* the unlink and the directory fsync linked to it */
    bool compact_broken;        /* a segment could not be read or removed: off */
    bool compact_read_inflight;
    bool unlink_inflight;
    bool unlink_broken;         /* the unlink in flight failed */
    uint64_t compact_backoff_disk; /* no pass until disk use reaches this */
    uint32_t rewrite_left;      /* BGREWRITEAOF: segments still to be compacted,
                                   whatever the live share (persist_rewrite_log);
                                   one less as each pass removes its segment */
    int compact_fd;
    uint64_t compact_read_at;   /* file offset of the next read */
    size_t compact_pos;         /* decoding position in compact_buf */
    struct buf compact_buf;
    uint64_t compact_wait_seq;  /* rewritten records up to here must be durable */
    uint64_t compact_kept_bytes;
    char unlink_path[1200];     /* the unlink in flight names it: lives until its completion */
    /* Read descriptors let go while cold reads were prepared or in flight
     * (they may name them): closed once the shard has none. */
    int *doomed_fds;
    size_t ndoomed, doomed_cap;
    int64_t last_error_log_ms;
    bool over_cap;           /* counted in node->log_over_cap */
    uint64_t releases_seen;  /* node->log_cap_releases when its paused
                                connections were last resumed */
    int64_t retry_at_ms;     /* failing: the next retry, not before */
    int64_t retry_wait_ms;   /* and the wait after it (doubling) */
    /* Log positions (lsn): a shard's records form one byte stream across
     * its segments (file headers not counted); a record's lsn is where it
     * starts in it. Entries remember theirs so that a value that left
     * memory can be read back (values beyond RAM). Renumbered at each
     * start, since only memory holds them. */
    uint64_t append_lsn;     /* lsn of the next byte appended to pending */
    uint64_t batch_end_lsn;  /* end of the batch in flight */
    uint64_t readable_lsn;   /* records starting below it are written */
    uint64_t seg_base_lsn;   /* lsn of the current segment's first record byte */
    int rfd;                 /* the current segment opened for reading, or -1 */
    uint32_t read_fds;       /* segments open for reading (rfd and segs[].rfd) */
    struct store_tier tier;
    uint64_t seq;
    enum seg_codec codec;
    struct store_journal journal;
#ifdef RINGKV_FAULTS
    struct persist_faults *faults; /* test builds: injected storage faults */
#endif
    struct persist_stats stats;
};

static int64_t persist_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define STAT_SET(p, field, v) __atomic_store_n(&(p)->stats.field, (v), __ATOMIC_RELAXED)
#define STAT_ADD(p, field, n) STAT_SET(p, field, (p)->stats.field + (n))

/* ---- journal: the store reports changes here ---- */

/* Out of memory for the log's own buffers: a change that cannot be logged
 * (or written again after a failure) must not be acknowledged, and later
 * records must not land after a hole: stop, as Redis does when its AOF
 * cannot be written. The log holds every acknowledged write. */
static void persist_need_memory(const struct buf *b)
{
    if (!b->failed)
        return;
    log_error("out of memory while logging a change; stopping the node");
    abort();
}

/* Appends a record to this turn's batch. Returns its lsn. */
static uint64_t persist_encode(struct persist *p, struct seg_record *r)
{
    ++p->seq; /* this record's place in the durability order (not on disk) */
    size_t before = p->pending.len;
    uint64_t lsn = p->append_lsn;
    seg_encode(&p->pending, r, p->codec, (size_t)p->cfg->compress_min_size);
    persist_need_memory(&p->pending);
    if (r->type == SEG_PUT && p->pending.len > before) {
        STAT_ADD(p, value_raw_bytes, r->raw_len);
        STAT_ADD(p, value_stored_bytes,
                 p->pending.len - before - SEG_RECORD_HEADER - r->meta_len - r->key_len);
    }
    p->append_lsn += p->pending.len - before;
    return lsn;
}

/* ---- what a reply waits for (appendfsync always) ----
 * A reply must not leave before the records it depends on are durable: a
 * write's, its own records; a read's, the newest record of its key (a put or
 * a delete) or the last flush, whichever is newer. Every record a client
 * change makes notes its key here; two generations, the older dropped once
 * it is all durable, keep the map to what is not durable yet (bounded by
 * the unsynced-bytes cap). Out of memory, a record counts as a flush. */

static bool persist_keyseq_put(struct persist_keyseq *m, uint64_t hash, uint64_t seq)
{
    if ((m->count + 1) * 2 > m->cap) {
        uint32_t cap = m->cap ? m->cap * 2 : 1024;
        uint64_t *h = mi_zalloc(cap * sizeof *h), *q = mi_malloc(cap * sizeof *q);
        if (!h || !q) {
            mi_free(h);
            mi_free(q);
            return false;
        }
        for (uint32_t i = 0; i < m->cap; i++) {
            if (!m->hash[i])
                continue;
            uint32_t j = (uint32_t)m->hash[i] & (cap - 1);
            while (h[j])
                j = (j + 1) & (cap - 1);
            h[j] = m->hash[i];
            q[j] = m->seq[i];
        }
        mi_free(m->hash);
        mi_free(m->seq);
        m->hash = h;
        m->seq = q;
        m->cap = cap;
    }
    hash = hash ? hash : 1;
    uint32_t j = (uint32_t)hash & (m->cap - 1);
    while (m->hash[j] && m->hash[j] != hash)
        j = (j + 1) & (m->cap - 1);
    m->count += m->hash[j] == 0;
    m->hash[j] = hash;
    m->seq[j] = seq;
    m->max_seq = seq;
    return true;
}

static uint64_t persist_keyseq_get(const struct persist_keyseq *m, uint64_t hash)
{
    if (m->count == 0)
        return 0;
    hash = hash ? hash : 1;
    for (uint32_t j = (uint32_t)hash & (m->cap - 1); m->hash[j]; j = (j + 1) & (m->cap - 1))
        if (m->hash[j] == hash)
            return m->seq[j];
    return 0;
}

/* The log became durable further: the older generation goes once all of it
 * is durable, and the newer one becomes the older. */
static void persist_keyseq_trim(struct persist *p)
{
    struct persist_keyseq *old = &p->keyseq[p->keyseq_cur ^ 1];
    if (old->max_seq > p->durable_seq || p->keyseq[p->keyseq_cur].count == 0)
        return;
    if (old->count)
        memset(old->hash, 0, old->cap * sizeof *old->hash);
    old->count = 0;
    old->max_seq = 0;
    p->keyseq_cur ^= 1;
}

/* The record just made (p->seq) is the window's next: hash 0 for a flush. */
static void persist_window_note(struct persist *p, uint64_t hash, uint64_t prev)
{
    struct persist_winrec w = {hash, prev};
    buf_append(&p->window, &w, sizeof w);
    persist_need_memory(&p->window);
}

/* Drops the records now durable from the window. */
static void persist_window_trim(struct persist *p)
{
    if (p->durable_seq < p->window_seq)
        return;
    buf_consume(&p->window, (size_t)(p->durable_seq - p->window_seq + 1) * sizeof(struct persist_winrec));
    p->window_seq = p->durable_seq + 1;
}

/* The record just encoded (p->seq) changes this key, whose version was prev. */
static void persist_note_key(struct persist *p, const void *key, uint32_t klen, uint64_t prev)
{
    uint64_t hash = keyhash(key, klen);
    hash = hash ? hash : 1;
    persist_window_note(p, hash, prev);
    if (p->always && !persist_keyseq_put(&p->keyseq[p->keyseq_cur], hash, p->seq))
        p->flush_seq = p->seq;
}

uint64_t persist_reply_seq(const struct persist *p, uint64_t before, uint64_t hash, bool failed)
{
    if (!p || !p->always || p->seq <= p->durable_seq)
        return 0;
    if (p->seq > before) /* its own records */
        return p->seq;
    if (failed)
        return 0;
    if (hash == 0) /* shard-wide: every record */
        return p->seq;
    uint64_t seq = p->flush_seq;
    for (int g = 0; g < 2; g++) {
        uint64_t k = persist_keyseq_get(&p->keyseq[g], hash);
        if (k > seq)
            seq = k;
    }
    return seq > p->durable_seq ? seq : 0;
}

/* The put record of entry e: a versioned entry's meta and body, else its
 * value. The record may point into v (the caller's: store_version). */
static struct seg_record persist_entry_record(const struct table_entry *e,
                                              struct store_version *v)
{
    struct seg_record r = {.type = SEG_PUT,
                           .key = table_entry_key(e),
                           .key_len = e->key_len,
                           .val = table_entry_key(e) + e->key_len,
                           .raw_len = e->val_len,
                           .mc_flags = e->mc_flags,
                           .expire_ms = e->expire_ms,
                           .seq = e->cas};
    if (e->meta & TABLE_ENTRY_VERSIONED) {
        store_entry_version(e, v);
        r.meta = v->meta;
        r.meta_len = (uint16_t)v->meta_len;
        r.val = v->body;
        r.raw_len = v->body_len;
    }
    return r;
}

static uint64_t persist_journal_put(void *arg, const struct table_entry *e, uint64_t prev)
{
    struct store_version v;
    struct seg_record r = persist_entry_record(e, &v);
    uint64_t lsn = persist_encode(arg, &r);
    persist_note_key(arg, r.key, r.key_len, prev);
    return lsn;
}

static void persist_journal_del(void *arg, const void *key, uint32_t klen, uint64_t prev)
{
    struct seg_record r = {.type = SEG_DEL, .key = key, .key_len = klen};
    persist_encode(arg, &r);
    persist_note_key(arg, key, klen, prev);
}

static void persist_journal_flush(void *arg)
{
    struct persist *p = arg;
    struct seg_record r = {.type = SEG_FLUSH};
    persist_encode(p, &r);
    persist_window_note(p, 0, 0);
    p->flush_seq = p->seq;
}

/* ---- files ---- */

static int persist_sync_path(const char *path);

/* The directory that holds path, in out ("." for a bare name). */
static void persist_parent(const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "%s", path);
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
    char *slash = strrchr(out, '/');
    if (!slash)
        snprintf(out, cap, ".");
    else if (slash == out)
        out[1] = '\0';
    else
        *slash = '\0';
}

/* mkdir -p (persist.h): the parent of each directory made is fsynced, so
 * that its name survives a crash. */
int persist_mkdir(const char *path)
{
    char parent[1200];
    persist_parent(path, parent, sizeof parent);
    if (mkdir(path, 0755) != 0) {
        int err = errno;
        if (err == EEXIST)
            return 0;
        if (err != ENOENT || strcmp(parent, path) == 0)
            return -err;
        int rc = persist_mkdir(parent);
        if (rc < 0)
            return rc;
        if (mkdir(path, 0755) != 0)
            return errno == EEXIST ? 0 : -errno;
    }
    return persist_sync_path(parent);
}

/* fsyncs a shard's directory, so that a file just created there stays. */
static int persist_sync_dir(const char *dir, uint32_t shard_id)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/shard-%03u", dir, shard_id);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* Creates segment `number` of the shard with its header; returns the fd. */
static int persist_create_segment(const struct node *n, uint32_t shard_id, uint64_t number)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/shard-%03u", n->cfg->dir, shard_id);
    int rc = 0;
    if (mkdir(path, 0755) == 0)
        rc = persist_sync_path(n->cfg->dir); /* the new directory's name too */
    else if (errno != EEXIST)
        rc = -errno;
    if (rc < 0)
        return rc;
    seg_path(path, sizeof path, n->cfg->dir, shard_id, number);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    struct buf header;
    buf_init(&header);
    struct seg_file_header h = {SEG_FILE_VERSION, shard_id, n->nshards, n->npartitions,
                                n->partition_fn};
    seg_encode_file_header(&header, &h);
    ssize_t w = pwrite(fd, header.data, header.len, 0);
    /* a short write is a full disk: say so (ENOSPC), as a failed one's errno */
    rc = w == (ssize_t)header.len ? 0 : w < 0 ? -errno : -ENOSPC;
    buf_fini(&header);
    if (rc == 0) /* the new name must survive a power cut too */
        rc = persist_sync_dir(n->cfg->dir, shard_id);
    if (rc < 0) {
        close(fd);
        (void)unlink(path); /* no headerless segment left for the next start to skip */
        return rc;
    }
    return fd;
}

/* ---- writing ---- */

/* One write's length: at most 1 GiB (the rest goes out as after a short
 * write), so that no length is cut to its low 32 bits. */
static unsigned persist_write_len(size_t n)
{
    return n > PERSIST_MAX_WRITE ? PERSIST_MAX_WRITE : (unsigned)n;
}

/* Makes room for n linked entries in the submission queue, so that no
 * submit can happen between them (that would cut the chain). */
static void persist_reserve_sqes(struct persist *p, unsigned n)
{
    if (io_uring_sq_space_left(&p->sh->uring) < n)
        io_uring_submit(&p->sh->uring);
}

static struct io_uring_sqe *persist_submit_write(struct persist *p)
{
    struct io_uring_sqe *sqe = shard_sqe(p->sh);
    io_uring_prep_write(sqe, p->fd, p->inflight.data + p->inflight_done,
                        persist_write_len(p->inflight.len - p->inflight_done),
                        p->write_offset);
    io_uring_sqe_set_data64(sqe, net_ud(SHARD_OP_SEG_WRITE, 0, 0));
    p->write_inflight = true;
    return sqe;
}

/* Adds a closed segment to the list compaction works from. */
static void persist_remember_segment(struct persist *p, uint64_t number, uint64_t bytes,
                                     uint64_t base_lsn, int rfd)
{
    if (p->nsegs == p->segs_cap) {
        size_t cap = p->segs_cap ? p->segs_cap * 2 : 16;
        struct persist_segment *segs = mi_realloc(p->segs, cap * sizeof *segs);
        if (!segs) {
            p->compact_broken = true; /* a gap in the list would break the order */
            if (rfd >= 0)
                close(rfd);
            return;
        }
        p->segs = segs;
        p->segs_cap = cap;
    }
    p->segs[p->nsegs++] = (struct persist_segment){number, bytes, base_lsn, rfd};
    p->closed_bytes += bytes;
}

/* Starts making segment+1 through the ring: openat, then a write of its
 * header linked to its fdatasync and the directory's fsync. */
static void persist_prepare_next(struct persist *p)
{
    if (p->next_state != NEXT_NONE || p->dir_fd < 0 ||
        p->write_offset < (uint64_t)p->cfg->segment_size / 4 * 3)
        return;
    seg_path(p->next_path, sizeof p->next_path, p->cfg->dir, p->shard_id, p->segment + 1);
    struct io_uring_sqe *sqe = shard_sqe(p->sh);
    io_uring_prep_openat(sqe, AT_FDCWD, p->next_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                         0644);
    io_uring_sqe_set_data64(sqe, net_ud(SHARD_OP_SEG_PREPARE, 0, 0));
    p->next_state = NEXT_OPENING;
    p->next_ops = 1;
}

static void persist_on_prepare_cqe(struct persist *p, uint32_t step, int res)
{
    p->next_ops--;
    if (step == 0) { /* openat */
        if (res < 0) {
            log_warn("cannot make segment %llu ahead: %s; it will be made at rotation",
                     (unsigned long long)p->segment + 1, strerror(-res));
            p->next_state = NEXT_FAILED;
            return;
        }
        p->next_fd = res;
        buf_clear(&p->next_header);
        struct seg_file_header h = {SEG_FILE_VERSION, p->shard_id, p->sh->node->nshards,
                                    p->sh->node->npartitions, p->sh->node->partition_fn};
        seg_encode_file_header(&p->next_header, &h);
        persist_reserve_sqes(p, 3);
        struct io_uring_sqe *sqe = shard_sqe(p->sh);
        io_uring_prep_write(sqe, p->next_fd, p->next_header.data, (unsigned)p->next_header.len, 0);
        io_uring_sqe_set_data64(sqe, net_ud(SHARD_OP_SEG_PREPARE, 1, 0));
        sqe->flags |= IOSQE_IO_LINK;
        sqe = shard_sqe(p->sh);
        io_uring_prep_fsync(sqe, p->next_fd, IORING_FSYNC_DATASYNC);
        io_uring_sqe_set_data64(sqe, net_ud(SHARD_OP_SEG_PREPARE, 2, 0));
        sqe->flags |= IOSQE_IO_LINK;
        sqe = shard_sqe(p->sh);
        io_uring_prep_fsync(sqe, p->dir_fd, 0);
        io_uring_sqe_set_data64(sqe, net_ud(SHARD_OP_SEG_PREPARE, 3, 0));
        p->next_ops = 3;
        p->next_ok = true;
        p->next_state = NEXT_SYNCING;
        return;
    }
    if (res < 0 || (step == 1 && (size_t)res != p->next_header.len))
        p->next_ok = false;
    if (p->next_ops > 0)
        return;
    if (p->next_ok) {
        p->next_state = NEXT_READY;
        return;
    }
    log_warn("cannot make segment %llu ahead; it will be made at rotation",
             (unsigned long long)p->segment + 1);
    close(p->next_fd);
    unlink(p->next_path); /* rare; the file is empty */
    p->next_fd = -1;
    p->next_state = NEXT_FAILED;
}

/* INFO's log_unsynced_bytes: what is appended and not yet known durable. */
static void persist_note_unsynced(struct persist *p)
{
    uint64_t n = p->pending.len + (p->inflight.len - p->inflight_done) + p->unsynced_data.len +
                 p->closing_data.len;
    for (uint32_t k = 0; k < p->nbatches; k++)
        n += p->batches[(p->batch_head + k) % PERSIST_BATCHES].data.len;
    STAT_SET(p, unsynced_bytes, n);
    bool over = n >= (p->over_cap ? PERSIST_MAX_BUFFERED / 2 : PERSIST_MAX_BUFFERED);
    if (over != p->over_cap) {
        p->over_cap = over;
        if (!over)
            __atomic_add_fetch(&p->sh->node->log_cap_releases, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&p->sh->node->log_over_cap, over ? 1 : -1, __ATOMIC_RELAXED);
    }
}

void persist_release_writers(struct shard *sh)
{
    struct persist *p = sh->persist;
    if (!p)
        return;
    /* A connection paused when some log was over the cap is resumed after
     * a later release, once no log is over it. */
    uint64_t releases = __atomic_load_n(&sh->node->log_cap_releases, __ATOMIC_RELAXED);
    if (releases == p->releases_seen ||
        __atomic_load_n(&sh->node->log_over_cap, __ATOMIC_RELAXED) > 0)
        return;
    p->releases_seen = releases;
    for (uint32_t i = 0; i < sh->conn_cap; i++)
        if (sh->conns[i] && sh->conns[i]->input_paused)
            conn_flush(sh->conns[i]); /* takes input again, unless paused for its own reasons */
}

/* ---- failures (MISCONF) ---- */

/* A write or fdatasync failed (err: negative errno): until one succeeds
 * again the log cannot persist, and the node refuses writes. Everything
 * written since the last good fdatasync is written again (the caller marks
 * what), on the tick, so a full disk costs no busy loop. */
static void persist_fail(struct persist *p, const char *what, uint64_t segment, int err,
                         int64_t now)
{
    STAT_ADD(p, write_errors, 1);
    STAT_SET(p, last_error, -err);
    p->sync_gen++; /* an fdatasync begun before this proves nothing */
    if (!p->stats.failing) {
        STAT_SET(p, failing, 1);
        __atomic_add_fetch(&p->sh->node->log_failing, 1, __ATOMIC_RELAXED);
        log_error("%s of segment %llu failed: %s; write commands are refused (MISCONF) until "
                  "the log is written and synced again, retried with back-off",
                  what, (unsigned long long)segment, strerror(-err));
        p->last_error_log_ms = now;
    } else if (now - p->last_error_log_ms > PERSIST_ERROR_LOG_MS) {
        log_error("%s of segment %llu still fails: %s; retrying", what,
                  (unsigned long long)segment, strerror(-err));
        p->last_error_log_ms = now;
    }
}

/* After a success: once nothing failed is left unwritten or unsynced, the
 * log takes writes again. */
static void persist_check_recovered(struct persist *p)
{
    if (!p->stats.failing || p->rewrite_needed || p->sync_after_write || p->cur_unverified ||
        p->closing_fd >= 0)
        return;
    for (uint32_t k = 0; k < p->nbatches; k++)
        if (p->batches[(p->batch_head + k) % PERSIST_BATCHES].retrying)
            return;
    STAT_SET(p, failing, 0);
    __atomic_sub_fetch(&p->sh->node->log_failing, 1, __ATOMIC_RELAXED);
    p->retry_wait_ms = 0;
    p->retry_at_ms = 0;
    log_info("the data log of this shard is written and synced again; write commands are "
             "taken again");
}

#ifdef RINGKV_FAULTS
/* Storage fault injection, compiled only into the ringkv-faults test binary
 * (CMakeLists.txt): RINGKV_FAULTS names a control file; the tick reads it
 * ("write N", "fsync N", "rotation N": fail the next N writes, fdatasyncs of
 * the current segment, fdatasyncs of a closed segment; "slow N": the next
 * N good fdatasyncs of the current segment complete a second late;
 * "vanish N": the next N segments compaction opens are removed just before,
 * as if another process had; "clear 0": none more), then removes it. A
 * failure is injected where the completion is handled (io_uring bypasses
 * LD_PRELOAD), in place of a success. An injected fdatasync failure also
 * does what a kernel may do after a writeback error: the file's bytes past
 * its last good fdatasync are lost (zeroed here). */
enum persist_fault_point {
    PERSIST_FAULT_WRITE,
    PERSIST_FAULT_FSYNC,
    PERSIST_FAULT_ROTATION,
    PERSIST_FAULT_SLOW, /* "slow N": the next N good fdatasyncs of the current
                           segment complete a second late */
    PERSIST_FAULT_VANISH, /* "vanish N": see persist_fault_vanish() */
    PERSIST_FAULT_POINTS
};

struct persist_faults {
    unsigned left[PERSIST_FAULT_POINTS];
    unsigned delayed;  /* completions put off, in the kernel as timeouts */
    struct __kernel_timespec slow_ts;
    struct {
        int fd;
        off_t synced; /* file size at its last good fdatasync */
    } files[4];
};

static void persist_fault_poll(struct persist *p)
{
    const char *path = getenv("RINGKV_FAULTS");
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f)
        return;
    static const char *const names[PERSIST_FAULT_POINTS] = {"write", "fsync", "rotation",
                                                            "slow", "vanish"};
    char name[16];
    unsigned n;
    while (fscanf(f, "%15s %u", name, &n) == 2) {
        if (!strcmp(name, "clear")) /* "clear 0": no more failures */
            memset(p->faults->left, 0, sizeof p->faults->left);
        for (int i = 0; i < PERSIST_FAULT_POINTS; i++)
            if (!strcmp(name, names[i]))
                p->faults->left[i] += n;
    }
    fclose(f);
    unlink(path);
    log_warn("storage faults armed: write %u, fsync %u, rotation %u, slow %u, vanish %u",
             p->faults->left[0], p->faults->left[1], p->faults->left[2], p->faults->left[3],
             p->faults->left[4]);
}

/* "slow": puts a good fdatasync's completion off by a second (an io_uring
 * timeout under the same user data brings it back as -ETIME, read as the
 * success it was). True when this completion is put off. */
static bool persist_fault_slow(struct persist *p, uint64_t ud, int *res)
{
    if (!p->faults || net_ud_op(ud) != SHARD_OP_SEG_FSYNC ||
        net_ud_slot(ud) == PERSIST_UD_ROTATION)
        return false;
    if (*res == -ETIME && p->faults->delayed > 0) {
        p->faults->delayed--;
        *res = 0;
        return false;
    }
    if (*res < 0 || p->faults->left[PERSIST_FAULT_SLOW] == 0)
        return false;
    p->faults->left[PERSIST_FAULT_SLOW]--;
    p->faults->delayed++;
    p->faults->slow_ts = (struct __kernel_timespec){.tv_sec = 1};
    struct io_uring_sqe *sqe = shard_sqe(p->sh);
    io_uring_prep_timeout(sqe, &p->faults->slow_ts, 0, 0);
    io_uring_sqe_set_data64(sqe, ud);
    return true;
}

/* The slot of fd in faults->files (taking the slot of a file gone), or -1. */
static int persist_fault_file(struct persist *p, int fd)
{
    struct persist_faults *f = p->faults;
    for (int i = 0; i < 4; i++)
        if (f->files[i].fd == fd)
            return i;
    for (int i = 0; i < 4; i++)
        if (f->files[i].fd < 0 || (f->files[i].fd != p->fd && f->files[i].fd != p->closing_fd)) {
            f->files[i].fd = fd;
            f->files[i].synced = SEG_FILE_HEADER;
            return i;
        }
    return -1;
}

static int persist_fault(struct persist *p, enum persist_fault_point point, int fd, int res)
{
    if (!p->faults || res < 0)
        return res;
    int i = point == PERSIST_FAULT_WRITE ? -1 : persist_fault_file(p, fd);
    struct stat st;
    if (p->faults->left[point] == 0) {
        if (i >= 0 && fstat(fd, &st) == 0)
            p->faults->files[i].synced = st.st_size;
        if (i >= 0 && point == PERSIST_FAULT_ROTATION)
            p->faults->files[i].fd = -1; /* it closes now: its number may come back */
        return res;
    }
    p->faults->left[point]--;
    if (i >= 0 && fstat(fd, &st) == 0 && st.st_size > p->faults->files[i].synced) {
        off_t from = p->faults->files[i].synced;
        size_t n = (size_t)(st.st_size - from);
        char *zeros = calloc(1, n);
        if (zeros && pwrite(fd, zeros, n, from) != (ssize_t)n)
            log_warn("storage fault: cannot zero the unsynced bytes");
        free(zeros);
    }
    return -EIO;
}

/* "vanish N": removes the segment at path, which compaction is about to
 * open, as another process removing it would. */
static void persist_fault_vanish(struct persist *p, const char *path)
{
    if (!p->faults || p->faults->left[PERSIST_FAULT_VANISH] == 0)
        return;
    p->faults->left[PERSIST_FAULT_VANISH]--;
    if (unlink(path) != 0)
        log_warn("storage fault: cannot remove %s: %s", path, strerror(errno));
}
#else
#define persist_fault_poll(p) ((void)0)
#define persist_fault_vanish(p, path) ((void)0)
#define persist_fault_slow(p, ud, res) false
#define persist_fault(p, point, fd, res) (res)
#endif

/* ---- rotation ---- */

/* Submits what the closed segment still needs: its bytes since its last
 * good fdatasync written again (after a failure), then an fdatasync. */
static void persist_submit_closing(struct persist *p)
{
    struct io_uring_sqe *sqe = shard_sqe(p->sh);
    if (p->closing_failed && p->closing_done < p->closing_data.len) {
        io_uring_prep_write(sqe, p->closing_fd, p->closing_data.data + p->closing_done,
                            persist_write_len(p->closing_data.len - p->closing_done),
                            p->closing_from + p->closing_done);
        io_uring_sqe_set_data64(sqe, net_ud(SHARD_OP_SEG_WRITE, PERSIST_UD_ROTATION, 0));
    } else {
        io_uring_prep_fsync(sqe, p->closing_fd, IORING_FSYNC_DATASYNC);
        io_uring_sqe_set_data64(sqe, net_ud(SHARD_OP_SEG_FSYNC, PERSIST_UD_ROTATION, 0));
    }
    p->closing_inflight = true;
}

/* Starts the next segment; the full one stays open until its fdatasync
 * succeeds (persist_on_closing_cqe). If the new file cannot be made, writing
 * goes on in the current one. Only between writes and syncs, and while no
 * earlier segment is still closing. */
static void persist_rotate(struct persist *p)
{
    if (p->next_state == NEXT_OPENING || p->next_state == NEXT_SYNCING)
        return; /* rotate once it is ready; the segment runs a little long */
    int fd;
    if (p->next_state == NEXT_READY) {
        fd = p->next_fd;
        p->next_fd = -1;
    } else { /* making it ahead failed: make it here (rare) */
        fd = persist_create_segment(p->sh->node, p->shard_id, p->segment + 1);
    }
    p->next_state = NEXT_NONE;
    if (fd < 0) {
        log_error("cannot create segment %llu: %s; writing on in segment %llu",
                  (unsigned long long)p->segment + 1, strerror(-fd),
                  (unsigned long long)p->segment);
        return;
    }
    persist_remember_segment(p, p->segment, p->write_offset, p->seg_base_lsn, p->rfd);
    p->rfd = -1;
    p->seg_base_lsn = p->readable_lsn; /* rotation comes between batches */
    p->closing_fd = p->fd;
    p->closing_number = p->segment;
    struct buf t = p->closing_data; /* its unsynced bytes go with it */
    p->closing_data = p->unsynced_data;
    p->unsynced_data = t;
    buf_clear(&p->unsynced_data);
    p->closing_from = p->synced_to;
    p->closing_done = 0;
    p->closing_seq = p->written_seq;
    p->closing_failed = false;
    persist_submit_closing(p);
    p->fd = fd;
    p->segment++;
    p->write_offset = p->synced_to = SEG_FILE_HEADER;
    p->cur_synced_seq = 0;
    p->unsynced = false;
    STAT_ADD(p, segments, 1);
}

static void persist_maybe_rotate(struct persist *p)
{
    if (p->write_offset < (uint64_t)p->cfg->segment_size || p->closing_fd >= 0 ||
        p->stats.failing)
        return;
    if (p->always ? p->nbatches > 0
                  : p->write_inflight || p->fsync_inflight || p->rewrite_needed)
        return;
    persist_rotate(p);
}

/* A completion of the closed segment's rewrite or fdatasync. */
static void persist_on_closing_cqe(struct persist *p, unsigned op, int res, int64_t now)
{
    p->closing_inflight = false;
    if (op == SHARD_OP_SEG_WRITE) {
        if (res <= 0) {
            persist_fail(p, "rewrite", p->closing_number, res ? res : -EIO, now);
            return; /* closing_failed stays: the tick tries again */
        }
        p->closing_done += (size_t)res;
        persist_submit_closing(p); /* the rest, or the fdatasync */
        return;
    }
    res = persist_fault(p, PERSIST_FAULT_ROTATION, p->closing_fd, res);
    if (res < 0) {
        persist_fail(p, "fdatasync", p->closing_number, res, now);
        p->closing_failed = true; /* its unsynced bytes are written again */
        p->closing_done = 0;
        return;
    }
    struct io_uring_sqe *sqe = shard_sqe(p->sh);
    io_uring_prep_close(sqe, p->closing_fd);
    io_uring_sqe_set_data64(sqe, net_ud(NET_OP_IGNORE, 0, 0));
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    p->closing_fd = -1;
    p->closing_failed = false;
    buf_clear(&p->closing_data);
    /* Every earlier segment is synced: what the current one has synced
     * since counts too. */
    uint64_t durable = p->closing_seq > p->cur_synced_seq ? p->closing_seq : p->cur_synced_seq;
    if (durable > p->durable_seq)
        p->durable_seq = durable;
    persist_check_recovered(p);
    persist_maybe_rotate(p);
}

/* ---- appendfsync always: batches ---- */

/* appendfsync always: submits what is left of batch i as a write linked
 * to an fdatasync. The batch index rides in user_data's generation field. */
static void persist_submit_batch(struct persist *p, uint32_t i)
{
    struct persist_batch *b = &p->batches[i];
    b->ops = 2;
    b->synced = false;
    b->poisoned = false;
    b->failed = false;
    persist_reserve_sqes(p, 2);
    struct io_uring_sqe *sqe = shard_sqe(p->sh);
    io_uring_prep_write(sqe, p->fd, b->data.data + b->done, persist_write_len(b->data.len - b->done),
                        b->offset + b->done);
    io_uring_sqe_set_data64(sqe, net_ud(SHARD_OP_SEG_WRITE, 0, i));
    sqe->flags |= IOSQE_IO_LINK;
    sqe = shard_sqe(p->sh);
    io_uring_prep_fsync(sqe, p->fd, IORING_FSYNC_DATASYNC);
    io_uring_sqe_set_data64(sqe, net_ud(SHARD_OP_SEG_FSYNC, 0, i));
}

/* Moves the records gathered so far into batch (an empty buffer, whose
 * memory pending reuses). */
static void persist_take_pending(struct persist *p, struct buf *batch)
{
    struct buf t = *batch;
    *batch = p->pending;
    p->pending = t;
    buf_clear(&p->pending);
}

/* appendfsync always: this turn's records become the next batch, at the
 * end of what earlier batches write, unless PERSIST_BATCHES are in flight
 * or the segment is full (rotation waits until every batch is done). */
static void persist_flush_always(struct persist *p)
{
    if (p->nbatches == PERSIST_BATCHES ||
        (p->nbatches > 0 && p->write_offset >= (uint64_t)p->cfg->segment_size))
        return;
    uint32_t i = (p->batch_head + p->nbatches) % PERSIST_BATCHES;
    struct persist_batch *b = &p->batches[i];
    persist_take_pending(p, &b->data);
    b->done = 0;
    b->offset = p->write_offset;
    b->seq = p->seq;
    b->end_lsn = p->append_lsn;
    b->complete = false;
    b->retrying = false;
    p->write_offset += b->data.len;
    p->nbatches++;
    persist_submit_batch(p, i);
}

bool persist_holds_replies(const struct persist *p) { return p && p->always; }

static void persist_submit_fsync(struct persist *p);

/* A SAVE waits (stats.saving): once save_seq is durable, that is over; until
 * then (everysec, no) the fdatasync goes as soon as every record up to
 * save_seq is written and none is in flight, even with a later batch being
 * written (other clients' writes would otherwise keep it waiting for the
 * tick's); records still to be written are synced by the turn after their
 * write completes. A closed segment's records become durable with its own
 * fdatasync (persist_on_closing_cqe). always: its batches sync them. */
static void persist_save_step(struct persist *p)
{
    if (p->durable_seq >= p->save_seq) {
        STAT_SET(p, saving, 0);
        return;
    }
    if (p->always || p->stats.failing || p->fsync_inflight || p->rewrite_needed ||
        !p->unsynced || p->written_seq < p->save_seq)
        return;
    persist_submit_fsync(p);
}

void persist_flush(struct persist *p)
{
    if (!p)
        return;
    if (p->pending.len > 0) {
        persist_prepare_next(p);
        if (p->always) {
            persist_flush_always(p);
        } else if (!p->write_inflight && !p->rewrite_needed) {
            persist_take_pending(p, &p->inflight);
            p->inflight_done = 0;
            p->batch_seq = p->seq;
            p->batch_end_lsn = p->append_lsn;
            persist_submit_write(p);
        }
        persist_note_unsynced(p);
    }
    if (__builtin_expect(p->stats.saving, 0)) /* the owner's own field: a plain read */
        persist_save_step(p);
}

int persist_save(struct persist *p, uint64_t *wait_seq)
{
    *wait_seq = 0;
    if (!p)
        return -ENOTSUP;
    if (p->stats.failing)
        return -EIO;
    if (p->seq <= p->durable_seq) {
        STAT_SET(p, saved_ms, persist_now_ms()); /* all saved as of now: LASTSAVE */
        return 0;
    }
    *wait_seq = p->seq;
    if (p->seq > p->save_seq)
        p->save_seq = p->seq;
    STAT_SET(p, saving, 1);
    return 0;
}

int persist_rewrite_log(struct persist *p)
{
    if (!p)
        return -ENOTSUP;
    if (p->compact_broken || p->dir_fd < 0 || p->stats.failing)
        return -EIO;
    if (p->rewrite_left > 0)
        return -EBUSY;
    /* every closed segment, once (one under way counts: its pass removes it) */
    p->rewrite_left = p->nsegs;
    STAT_SET(p, rewriting, p->rewrite_left > 0);
    return 0;
}

uint64_t persist_last_seq(const struct persist *p) { return p ? p->seq : 0; }

bool persist_busy(const struct persist *p)
{
    return p && (p->write_inflight || p->nbatches > 0 || p->fsync_inflight ||
                 p->closing_inflight || p->compact_read_inflight || p->unlink_inflight ||
                 p->next_ops > 0);
}

uint64_t persist_durable_seq(const struct persist *p) { return p ? p->durable_seq : 0; }

static void persist_submit_fsync(struct persist *p)
{
    struct io_uring_sqe *sqe = shard_sqe(p->sh);
    io_uring_prep_fsync(sqe, p->fd, IORING_FSYNC_DATASYNC);
    io_uring_sqe_set_data64(sqe, net_ud(SHARD_OP_SEG_FSYNC, 0, 0));
    p->fsync_inflight = true;
    p->unsynced = false;
    p->sync_after_write = false;
    p->fsync_covers = p->written_seq;
    p->fsync_covers_len = p->unsynced_data.len;
    p->fsync_gen = p->sync_gen;
}

/* everysec, no, after an error: the bytes since the last good fdatasync,
 * then whatever of the batch was not written, go out again as one write
 * from where that fdatasync left the file, followed by an fdatasync. */
static void persist_rewrite(struct persist *p)
{
    if (p->inflight.len == 0) { /* the error was an fdatasync's */
        p->batch_seq = p->written_seq;
        p->batch_end_lsn = p->readable_lsn;
    }
    buf_append(&p->unsynced_data, p->inflight.data + p->inflight_done,
               p->inflight.len - p->inflight_done);
    persist_need_memory(&p->unsynced_data);
    struct buf t = p->inflight;
    p->inflight = p->unsynced_data;
    p->unsynced_data = t;
    buf_clear(&p->unsynced_data);
    p->inflight_done = 0;
    p->write_offset = p->synced_to;
    p->rewrite_needed = false;
    if (p->inflight.len == 0) {
        persist_submit_fsync(p);
        return;
    }
    p->sync_after_write = true;
    persist_submit_write(p);
}

/* The tick: what failed is tried again (always: batches; everysec, no: the
 * rewrite; a closed segment's rewrite and fdatasync). */
static void persist_retry(struct persist *p)
{
    for (uint32_t k = 0; k < p->nbatches; k++) {
        uint32_t j = (p->batch_head + k) % PERSIST_BATCHES;
        if (p->batches[j].failed && p->batches[j].ops == 0)
            persist_submit_batch(p, j);
    }
    if (p->rewrite_needed && !p->write_inflight && !p->fsync_inflight)
        persist_rewrite(p);
    else if (!p->always && p->cur_unverified && !p->rewrite_needed && !p->write_inflight &&
             !p->fsync_inflight)
        persist_submit_fsync(p); /* the rewrite is written: its fdatasync */
    if (p->closing_failed && !p->closing_inflight)
        persist_submit_closing(p);
}

static void persist_compact_step(struct persist *p);
static void persist_trim_read_fds(struct persist *p, const int *keep);

void persist_tick(struct persist *p, int64_t now_ms)
{
    if (!p)
        return;
    persist_fault_poll(p);
    persist_trim_read_fds(p, NULL);
    if (p->compact_broken || p->nsegs == 0)
        p->rewrite_left = 0; /* BGREWRITEAOF's passes cannot run, or are done */
    STAT_SET(p, rewriting, p->rewrite_left > 0);
    if (p->stats.failing) {
        /* A disk that keeps failing is not rewritten every tick. */
        if (now_ms >= p->retry_at_ms) {
            persist_retry(p);
            p->retry_wait_ms = p->retry_wait_ms ? p->retry_wait_ms * 2 : PERSIST_RETRY_MIN_MS;
            if (p->retry_wait_ms > PERSIST_RETRY_MAX_MS)
                p->retry_wait_ms = PERSIST_RETRY_MAX_MS;
            p->retry_at_ms = now_ms + p->retry_wait_ms;
        }
        persist_compact_step(p); /* what frees space on a full disk */
        return;
    }
    persist_window_trim(p);
    persist_prepare_next(p);
    persist_maybe_rotate(p); /* the next file became ready after the last write */
    persist_compact_step(p);
    if (!p->unsynced || p->fsync_inflight || p->cfg->appendfsync != CFG_FSYNC_EVERYSEC ||
        now_ms - p->stats.last_fsync_ms < PERSIST_FSYNC_INTERVAL_MS)
        return;
    persist_submit_fsync(p);
}

/* appendfsync always: one operation of batch i completed. A batch is
 * complete once its write was whole and its fdatasync succeeded; complete
 * batches at the head become durable, in order. */
static void persist_on_batch_cqe(struct persist *p, uint32_t i, unsigned op, int res,
                                 int64_t now)
{
    struct persist_batch *b = &p->batches[i % PERSIST_BATCHES];
    if (op == SHARD_OP_SEG_WRITE) {
        res = persist_fault(p, PERSIST_FAULT_WRITE, p->fd, res);
        if (res > 0) {
            b->done += (size_t)res;
            STAT_ADD(p, disk_bytes, (uint64_t)res);
        } else if (res == 0) {
            res = -EIO; /* no progress: a failure */
        }
    } else {
        res = persist_fault(p, PERSIST_FAULT_FSYNC, p->fd, res);
        b->synced = res >= 0;
        if (res < 0 && res != -ECANCELED) /* the others' pages may be lost too */
            for (uint32_t k = 0; k < p->nbatches; k++) {
                struct persist_batch *o = &p->batches[(p->batch_head + k) % PERSIST_BATCHES];
                if (o != b)
                    o->poisoned = o->retrying = true;
            }
    }
    if (res < 0 && res != -ECANCELED) {
        b->failed = b->retrying = true;
        persist_fail(p, op == SHARD_OP_SEG_WRITE ? "write" : "fdatasync", p->segment, res, now);
    }
    if (--b->ops > 0)
        return;
    if (b->poisoned)
        b->synced = false;
    if (!b->synced && b->done == b->data.len) {
        /* After a failed fdatasync the kernel may have dropped the dirty
         * pages: write the whole batch again before syncing again. */
        b->done = 0;
    }
    if (b->done < b->data.len || !b->synced) {
        if (!b->failed) /* a short write: the rest at once; a failure: on the tick */
            persist_submit_batch(p, i % PERSIST_BATCHES);
        return;
    }
    b->complete = true;
    b->retrying = false;
    for (uint32_t k = 0; k < p->nbatches; k++) {
        /* A batch that completed before another's fdatasync failed. */
        uint32_t j = (p->batch_head + k) % PERSIST_BATCHES;
        struct persist_batch *o = &p->batches[j];
        if (o->complete && o->poisoned && o->ops == 0) {
            o->complete = false;
            o->retrying = true;
            o->done = 0;
            persist_submit_batch(p, j);
        }
    }
    while (p->nbatches > 0 && p->batches[p->batch_head].complete) {
        struct persist_batch *h = &p->batches[p->batch_head];
        p->written_seq = p->durable_seq = h->seq;
        p->readable_lsn = h->end_lsn;
        h->complete = false;
        buf_clear(&h->data);
        p->batch_head = (p->batch_head + 1) % PERSIST_BATCHES;
        p->nbatches--;
        STAT_ADD(p, fsyncs, 1);
        STAT_SET(p, last_fsync_ms, now);
    }
    persist_keyseq_trim(p);
    persist_check_recovered(p);
    persist_maybe_rotate(p);
    persist_flush(p);
}

/* Appends n written bytes to `unsynced_data` (PERSIST_UNSYNCED_SMALL). */
static void persist_keep_unsynced(struct persist *p, const char *data, size_t n)
{
    struct buf *b = &p->unsynced_data;
    size_t want = b->len + n;
    if (want > b->cap && want > PERSIST_UNSYNCED_SMALL && want < PERSIST_MAX_UNSYNCED)
        if (buf_reserve(b, PERSIST_MAX_UNSYNCED - b->len) != 0)
            b->failed = false; /* no room for that much: growing as needed may still be */
    buf_append(b, data, n);
    persist_need_memory(b);
}

/* everysec, no: a write of the batch in flight completed. What it wrote is
 * kept until an fdatasync covers it. */
static void persist_on_write_cqe(struct persist *p, int res, int64_t now)
{
    p->write_inflight = false;
    res = persist_fault(p, PERSIST_FAULT_WRITE, p->fd, res);
    if (res <= 0) {
        persist_fail(p, "write", p->segment, res ? res : -EIO, now);
        p->rewrite_needed = true;
        p->cur_unverified = true;
        return;
    }
    persist_keep_unsynced(p, p->inflight.data + p->inflight_done, (size_t)res);
    p->inflight_done += (size_t)res;
    p->write_offset += (uint64_t)res;
    p->unsynced = true;
    STAT_ADD(p, disk_bytes, (uint64_t)res);
    if (p->inflight_done < p->inflight.len) {
        persist_submit_write(p);
        return;
    }
    buf_clear(&p->inflight);
    p->inflight_done = 0;
    p->written_seq = p->batch_seq;
    p->readable_lsn = p->batch_end_lsn;
    if (!p->fsync_inflight && !p->rewrite_needed && /* after an error: the rewrite first */
        (p->sync_after_write || p->unsynced_data.len >= PERSIST_MAX_UNSYNCED))
        persist_submit_fsync(p);
    persist_maybe_rotate(p);
    persist_flush(p);
}

/* everysec, no: the fdatasync of the current segment completed. A success
 * makes durable what was written before it began, unless an error came
 * since (those bytes are being written again). */
static void persist_on_fsync_cqe(struct persist *p, int res, int64_t now)
{
    p->fsync_inflight = false;
    res = persist_fault(p, PERSIST_FAULT_FSYNC, p->fd, res);
    if (res < 0) {
        persist_fail(p, "fdatasync", p->segment, res, now);
        p->rewrite_needed = true;
        p->cur_unverified = true;
        return;
    }
    if (p->fsync_gen != p->sync_gen) {
        p->unsynced = true; /* proves nothing: sync again */
        if (p->sync_after_write && !p->write_inflight && !p->rewrite_needed)
            persist_submit_fsync(p);
        return;
    }
    buf_consume(&p->unsynced_data, p->fsync_covers_len);
    p->synced_to += p->fsync_covers_len;
    p->cur_synced_seq = p->fsync_covers;
    p->cur_unverified = false;
    if (p->closing_fd < 0 && p->fsync_covers > p->durable_seq)
        p->durable_seq = p->fsync_covers; /* earlier segments are synced */
    STAT_ADD(p, fsyncs, 1);
    STAT_SET(p, last_fsync_ms, now);
    if (p->sync_after_write && !p->write_inflight && !p->rewrite_needed)
        persist_submit_fsync(p);
    persist_check_recovered(p);
    persist_maybe_rotate(p);
}

/* ---- read descriptors (values beyond RAM) ---- */

/* A cold read names its segment's descriptor from when it is prepared until
 * it completes (a descriptor is looked up when the kernel issues the read,
 * possibly later than the submit), so a descriptor is closed only while the
 * shard has no cold read prepared or in flight; until then it waits here. */
static void persist_let_go_fd(struct persist *p, int fd)
{
    if (tier_busy(p->sh->tier) == 0) {
        close(fd);
        return;
    }
    if (p->ndoomed == p->doomed_cap) {
        size_t cap = p->doomed_cap ? p->doomed_cap * 2 : 16;
        int *fds = mi_realloc(p->doomed_fds, cap * sizeof *fds);
        if (!fds) {
            log_warn("out of memory: a segment descriptor stays open until restart");
            return;
        }
        p->doomed_fds = fds;
        p->doomed_cap = cap;
    }
    p->doomed_fds[p->ndoomed++] = fd;
}

/* Closes the descriptors let go, and past PERSIST_MAX_READ_FDS those of the
 * closed segments (all but *keep), once no cold read can name them. */
static void persist_trim_read_fds(struct persist *p, const int *keep)
{
    if (tier_busy(p->sh->tier) > 0)
        return; /* later: meanwhile the limit may be passed */
    for (size_t i = 0; i < p->ndoomed; i++)
        close(p->doomed_fds[i]);
    p->ndoomed = 0;
    if (p->read_fds < PERSIST_MAX_READ_FDS)
        return;
    for (size_t i = 0; i < p->nsegs; i++)
        if (p->segs[i].rfd >= 0 && &p->segs[i].rfd != keep) {
            close(p->segs[i].rfd);
            p->segs[i].rfd = -1;
        }
    p->read_fds = p->rfd >= 0 ? 1 : 0;
}

/* ---- compaction ----
 * A shard's segments form a FIFO log: while the estimated live share of its
 * disk use is under compaction-threshold, the oldest closed segment is read
 * (128 KiB io_uring reads, one per loop turn at most, so serving never
 * stalls), every record in it that is still its key's current version is
 * appended again at the tail (through the journal, as a write would be), and
 * once those copies are durable the old file is unlinked through the ring.
 * Because the oldest segment goes first, nothing older can exist: deletes,
 * flushes, overwritten and expired values in it are simply dropped.
 * Live bytes are estimated from the store (entry bytes plus the record
 * header per key, scaled by the compression seen so far). */

/* Live bytes on disk, estimated. */
static uint64_t persist_live_estimate(const struct persist *p)
{
    struct store_stats st;
    store_read_stats(p->store, &st);
    double bytes = (double)st.entry_bytes + (double)st.cold_bytes +
                   (double)st.keys * (SEG_RECORD_HEADER - 32);
    uint64_t raw = p->stats.value_raw_bytes, stored = p->stats.value_stored_bytes;
    if (raw > 0 && stored < raw)
        bytes *= (double)stored / (double)raw;
    return (uint64_t)bytes;
}

/* Ends the pass over segs[0] without removing it. With `broken`, compaction
 * stays off until restart: a segment it cannot read, or whose removal
 * failed, must not be skipped (dropping deletes relies on order). One that
 * vanished (ENOENT at open) is not skipped but gone: it leaves the list and
 * compaction goes on (persist_compact_step). */
static void persist_compact_forget_prev(struct persist *p)
{
    mi_free(p->compact_prev.hash);
    mi_free(p->compact_prev.seq);
    memset(&p->compact_prev, 0, sizeof p->compact_prev);
}

static void persist_compact_abandon(struct persist *p, bool broken)
{
    persist_compact_forget_prev(p);
    if (p->compact_fd >= 0)
        close(p->compact_fd);
    p->compact_fd = -1;
    buf_clear(&p->compact_buf);
    p->compact_state = COMPACT_IDLE;
    if (broken) {
        p->compact_broken = true;
        log_error("compaction is off until restart; the segment files are kept as they are");
    }
}

static void persist_compact_read(struct persist *p)
{
    if (buf_reserve(&p->compact_buf, PERSIST_COMPACT_READ) != 0) {
        log_warn("compaction of segment %llu put off: out of memory",
                 (unsigned long long)p->segs[0].number);
        persist_compact_abandon(p, false); /* tried again from the start */
        return;
    }
    struct io_uring_sqe *sqe = shard_sqe(p->sh);
    io_uring_prep_read(sqe, p->compact_fd, p->compact_buf.data + p->compact_buf.len,
                       PERSIST_COMPACT_READ, p->compact_read_at);
    io_uring_sqe_set_data64(sqe, net_ud(SHARD_OP_SEG_READ, 0, 0));
    p->compact_read_inflight = true;
}

/* True when r is the key's current version: the entry's cas (which changes
 * with every change of the value, and which recovery restores), expiry and
 * flags (an expiry change keeps the cas) are the record's. */
static bool persist_record_is_live(struct persist *p, const struct seg_record *r,
                                   struct table_entry **live)
{
    if (r->type != SEG_PUT)
        return false;
    uint64_t hash = keyhash(r->key, r->key_len);
    struct table_entry *e = table_find(p->store->table, r->key, r->key_len, hash);
    if (!e || store_is_expired(p->store, e) || e->cas != r->seq ||
        store_entry_record_len(e) != r->raw_len || e->expire_ms != r->expire_ms ||
        e->mc_flags != r->mc_flags || (r->meta_len != 0) != !!(e->meta & TABLE_ENTRY_VERSIONED))
        return false;
    *live = e;
    return true;
}

/* A pass while the log is failing copies nothing (nothing new can be made
 * durable): it removes the oldest segment only if every record in it can go
 * now. A record superseded only by records not durable yet cannot: a crash
 * would lose both. The window tells each key's version before the records
 * not durable (compact_prev, made at the pass's start); a record goes when
 * it is a delete or flush (nothing older exists), expired, or older than a
 * version whose record is durable (or than the key's absence then). */
static bool persist_record_droppable(struct persist *p, const struct seg_record *r)
{
    struct table_entry *e;
    if (r->type != SEG_PUT || (r->expire_ms != 0 && r->expire_ms <= p->store->now_ms))
        return true;
    if (persist_record_is_live(p, r, &e))
        return false; /* would need a copy */
    uint64_t hash = keyhash(r->key, r->key_len);
    uint64_t v = persist_keyseq_get(&p->compact_prev, hash ? hash : 1);
    if (v == 0)
        return true; /* the key's state is durable, and R is not it */
    if (v == UINT64_MAX)
        return false;
    return v - 1 == 0 || r->seq < v - 1;
}

/* The window's keys with their versions before it; false when that cannot
 * be known (a flush in it, out of memory): no pass then. */
static bool persist_compact_note_prev(struct persist *p)
{
    persist_window_trim(p);
    const struct persist_winrec *w = (const void *)p->window.data;
    size_t n = p->window.len / sizeof *w;
    for (size_t i = 0; i < n; i++) {
        if (w[i].hash == 0)
            return false;
        if (persist_keyseq_get(&p->compact_prev, w[i].hash) != 0)
            continue; /* the first record of the key in the window tells */
        uint64_t v = w[i].prev == UINT64_MAX ? UINT64_MAX : w[i].prev + 1;
        if (!persist_keyseq_put(&p->compact_prev, w[i].hash, v))
            return false;
    }
    return true;
}

static void persist_compact_on_read(struct persist *p, int res)
{
    p->compact_read_inflight = false;
    if (p->compact_state != COMPACT_READING)
        return;
    if (res < 0) {
        log_error("compaction cannot read segment %llu: %s",
                  (unsigned long long)p->segs[0].number, strerror(-res));
        persist_compact_abandon(p, true);
        return;
    }
    p->compact_buf.len += (size_t)res;
    p->compact_read_at += (uint64_t)res;
    bool at_end = res == 0 || p->compact_read_at >= p->segs[0].bytes;
    for (;;) {
        struct seg_record r;
        size_t used;
        enum seg_status st = seg_decode(p->compact_buf.data + p->compact_pos,
                                        p->compact_buf.len - p->compact_pos, &r, &used);
        if (st == SEG_CORRUPT || (st == SEG_MORE && at_end &&
                                  p->compact_pos < p->compact_buf.len)) {
            log_error("compaction found a damaged record in segment %llu at byte %llu",
                      (unsigned long long)p->segs[0].number,
                      (unsigned long long)(p->compact_read_at - p->compact_buf.len +
                                           p->compact_pos));
            persist_compact_abandon(p, true);
            return;
        }
        if (st != SEG_OK)
            break;
        struct table_entry *e;
        if (p->compact_failing) {
            /* A record made since the pass began (a request already
             * running) would not be in compact_prev: start again later. */
            if (p->seq != p->compact_from_seq || !persist_record_droppable(p, &r)) {
                p->compact_not_before = persist_now_ms() + PERSIST_COMPACT_RETRY_MS;
                persist_compact_abandon(p, false); /* once the log recovers */
                return;
            }
        } else if (persist_record_is_live(p, &r, &e)) {
            /* The record's bytes are valid anywhere (the checksum covers no
             * position): appended as they are, nothing is recompressed, and
             * a cold value needs no reading back. */
            uint64_t lsn = p->append_lsn;
            buf_append(&p->pending, p->compact_buf.data + p->compact_pos, used);
            persist_need_memory(&p->pending);
            ++p->seq;
            uint64_t hash = keyhash(r.key, r.key_len);
            persist_window_note(p, hash ? hash : 1, e->cas); /* the same version again */
            p->append_lsn += used;
            if (e->meta & TABLE_ENTRY_LSN)
                table_entry_set_lsn(e, lsn);
            p->compact_kept_bytes += used;
        }
        p->compact_pos += used;
    }
    buf_consume(&p->compact_buf, p->compact_pos);
    p->compact_pos = 0;
    if (!at_end) {
        persist_compact_read(p);
        return;
    }
    close(p->compact_fd);
    p->compact_fd = -1;
    buf_clear(&p->compact_buf);
    p->compact_state = COMPACT_WAITING;
    /* The copies made, and every record that superseded what was dropped,
     * are durable before the unlink; a pass while failing dropped only what
     * durable records supersede. */
    p->compact_wait_seq = p->compact_failing ? 0 : p->seq;
    persist_compact_forget_prev(p);
}

/* Takes segs[0], whose file is gone, off the list; returns it. */
static struct persist_segment persist_forget_oldest(struct persist *p)
{
    struct persist_segment gone = p->segs[0];
    if (gone.rfd >= 0) { /* no entry points into it any more */
        persist_let_go_fd(p, gone.rfd);
        p->read_fds--;
    }
    memmove(p->segs, p->segs + 1, (p->nsegs - 1) * sizeof *p->segs);
    p->nsegs--;
    p->closed_bytes -= gone.bytes;
    STAT_SET(p, segments, p->nsegs + 1);
    return gone;
}

/* The unlink (step 0) and the directory fsync linked to it (step 1)
 * completed: the next pass may rely on the removal only once the fsync made
 * it durable (removals persisting out of order could bring back keys whose
 * deletes went with a later segment). */
static void persist_compact_on_unlink(struct persist *p, uint32_t step, int res)
{
    if (step == 0)
        p->unlink_ok = res >= 0 || res == -ENOENT;
    if (step == 0 && !p->unlink_ok) {
        log_error("compaction cannot remove segment %llu: %s",
                  (unsigned long long)p->segs[0].number, strerror(-res));
        p->unlink_broken = true;
    }
    if (step == 1 && res < 0 && p->unlink_ok) {
        if (res != -ECANCELED)
            log_warn("fsync of the directory of shard %u failed: %s; retrying",
                     p->shard_id, strerror(-res));
        p->dir_sync_failed = true;
    }
    if (--p->unlink_ops > 0)
        return;
    p->unlink_inflight = false;
    if (p->unlink_broken) {
        p->unlink_broken = false;
        persist_compact_abandon(p, true);
        return;
    }
    if (p->dir_sync_failed)
        return; /* the tick syncs the directory again (persist_compact_step) */
    struct persist_segment gone = persist_forget_oldest(p);
    if (p->rewrite_left > 0)
        p->rewrite_left--; /* BGREWRITEAOF's, or one it would have made */
    STAT_ADD(p, compactions, 1);
    STAT_ADD(p, compaction_reclaimed_bytes, gone.bytes - p->compact_kept_bytes);
    /* A segment nearly all live was rewritten for little: wait until the
     * log has grown by a segment before the next pass. */
    if (p->compact_kept_bytes * 10 > gone.bytes * 9)
        p->compact_backoff_disk = p->closed_bytes + p->write_offset + (uint64_t)p->cfg->segment_size;
    p->compact_state = COMPACT_IDLE;
}

/* Removes segs[0] through the ring: its unlink linked to an fsync of the
 * shard directory. The path lives in p until the completion: the kernel
 * may read it whenever it takes the request, up to then. */
static void persist_compact_unlink(struct persist *p)
{
    persist_reserve_sqes(p, 2);
    struct io_uring_sqe *sqe;
    if (!p->dir_sync_failed) {
        seg_path(p->unlink_path, sizeof p->unlink_path, p->cfg->dir, p->shard_id,
                 p->segs[0].number);
        sqe = shard_sqe(p->sh);
        io_uring_prep_unlinkat(sqe, AT_FDCWD, p->unlink_path, 0);
        io_uring_sqe_set_data64(sqe, net_ud(SHARD_OP_SEG_READ, PERSIST_UD_UNLINK, 0));
        sqe->flags |= IOSQE_IO_LINK;
        p->unlink_ops++;
    }
    p->dir_sync_failed = false;
    p->unlink_ok = true;
    sqe = shard_sqe(p->sh);
    io_uring_prep_fsync(sqe, p->dir_fd, 0);
    io_uring_sqe_set_data64(sqe, net_ud(SHARD_OP_SEG_READ, PERSIST_UD_UNLINK, 1));
    p->unlink_ops++;
    p->unlink_inflight = true;
    p->compact_state = COMPACT_UNLINKING;
}

/* The tick's share of compaction: start on the oldest segment, or remove
 * one whose copies have become durable. While the log is failing (a full
 * disk: removing dead segments is what frees space), a pass copies nothing
 * and removes the segment only if all of it may go now. */
static void persist_compact_step(struct persist *p)
{
    if (p->compact_state == COMPACT_READING || p->compact_broken || p->dir_fd < 0)
        return;
    if (p->compact_state == COMPACT_UNLINKING) {
        if (p->dir_sync_failed && !p->unlink_inflight)
            persist_compact_unlink(p); /* the directory fsync again */
        return;
    }
    bool failing = p->stats.failing;
    if (p->compact_state == COMPACT_WAITING) {
        if (p->durable_seq < p->compact_wait_seq && failing) {
            /* Its copies cannot become durable now: the segment stays, and
             * a pass that copies nothing may remove it instead. The copies
             * made are harmless (the same versions again). */
            p->compact_state = COMPACT_IDLE;
            return;
        }
        if (p->durable_seq < p->compact_wait_seq) {
            if (!p->always && !p->fsync_inflight &&
                p->written_seq >= p->compact_wait_seq)
                persist_submit_fsync(p);
            return;
        }
        persist_compact_unlink(p);
        return;
    }
    uint64_t disk = p->closed_bytes + p->write_offset;
    uint64_t live = persist_live_estimate(p);
    STAT_SET(p, live_bytes, live < disk ? live : disk);
    STAT_SET(p, segment_bytes, disk);
    if (p->nsegs == 0)
        return;
    if (p->rewrite_left == 0 &&
        (p->cfg->compaction_threshold == 0 || disk < p->compact_backoff_disk ||
         p->stats.live_bytes * 100 >= disk * (uint64_t)p->cfg->compaction_threshold))
        return;
    if (failing && (persist_now_ms() < p->compact_not_before ||
                    (p->closing_fd >= 0 && p->closing_number == p->segs[0].number)))
        return;
    p->compact_failing = failing;
    p->compact_from_seq = p->seq;
    if (failing && !persist_compact_note_prev(p)) {
        persist_compact_forget_prev(p);
        p->compact_not_before = persist_now_ms() + PERSIST_COMPACT_RETRY_MS;
        return;
    }
    char path[1200];
    seg_path(path, sizeof path, p->cfg->dir, p->shard_id, p->segs[0].number);
    persist_fault_vanish(p, path);
    p->compact_fd = open(path, O_RDONLY | O_CLOEXEC);
    int err = p->compact_fd < 0 ? errno : 0;
    if (err == ENOENT) {
        /* Removed behind our back (by hand, or by another process on the
         * same directory): its records are gone for good, which is what
         * compacting it would have achieved, so the order the next passes
         * rely on (nothing older than segs[0] exists) holds. */
        log_warn("segment %llu vanished from %s; compaction goes on with the next one",
                 (unsigned long long)p->segs[0].number, path);
        persist_compact_forget_prev(p);
        persist_forget_oldest(p);
        return;
    }
    if (err != 0) {
        log_error("compaction cannot open %s: %s", path, strerror(err));
        persist_compact_abandon(p, err != EMFILE && err != ENFILE && err != ENOMEM);
        return;
    }
    p->compact_state = COMPACT_READING;
    p->compact_read_at = SEG_FILE_HEADER;
    p->compact_pos = 0;
    p->compact_kept_bytes = 0;
    buf_clear(&p->compact_buf);
    persist_compact_read(p);
}

void persist_on_cqe(struct persist *p, uint64_t ud, int res)
{
    if (persist_fault_slow(p, ud, &res))
        return;
    unsigned op = net_ud_op(ud);
    int64_t now = persist_now_ms();
    if (op == SHARD_OP_SEG_PREPARE) {
        persist_on_prepare_cqe(p, net_ud_slot(ud), res);
        return;
    }
    if (op == SHARD_OP_SEG_READ) {
        if (net_ud_slot(ud) == PERSIST_UD_UNLINK)
            persist_compact_on_unlink(p, net_ud_gen(ud), res);
        else
            persist_compact_on_read(p, res);
        return;
    }
    if (net_ud_slot(ud) == PERSIST_UD_ROTATION)
        persist_on_closing_cqe(p, op, res, now);
    else if (p->always)
        persist_on_batch_cqe(p, net_ud_gen(ud), op, res, now);
    else if (op == SHARD_OP_SEG_FSYNC)
        persist_on_fsync_cqe(p, res, now);
    else
        persist_on_write_cqe(p, res, now);
    persist_note_unsynced(p);
}

void persist_read_stats(const struct persist *p, struct persist_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!p)
        return;
    out->segments = __atomic_load_n(&p->stats.segments, __ATOMIC_RELAXED);
    out->disk_bytes = __atomic_load_n(&p->stats.disk_bytes, __ATOMIC_RELAXED);
    out->fsyncs = __atomic_load_n(&p->stats.fsyncs, __ATOMIC_RELAXED);
    out->rewriting = __atomic_load_n(&p->stats.rewriting, __ATOMIC_RELAXED);
    out->saving = __atomic_load_n(&p->stats.saving, __ATOMIC_RELAXED);
    out->saved_ms = __atomic_load_n(&p->stats.saved_ms, __ATOMIC_RELAXED);
    out->last_fsync_ms = __atomic_load_n(&p->stats.last_fsync_ms, __ATOMIC_RELAXED);
    out->write_errors = __atomic_load_n(&p->stats.write_errors, __ATOMIC_RELAXED);
    out->recovered_keys = __atomic_load_n(&p->stats.recovered_keys, __ATOMIC_RELAXED);
    out->recovered_records = __atomic_load_n(&p->stats.recovered_records, __ATOMIC_RELAXED);
    out->recovery_ms = __atomic_load_n(&p->stats.recovery_ms, __ATOMIC_RELAXED);
    out->damaged_files = __atomic_load_n(&p->stats.damaged_files, __ATOMIC_RELAXED);
    out->value_raw_bytes = __atomic_load_n(&p->stats.value_raw_bytes, __ATOMIC_RELAXED);
    out->value_stored_bytes = __atomic_load_n(&p->stats.value_stored_bytes, __ATOMIC_RELAXED);
    out->live_bytes = __atomic_load_n(&p->stats.live_bytes, __ATOMIC_RELAXED);
    out->segment_bytes = __atomic_load_n(&p->stats.segment_bytes, __ATOMIC_RELAXED);
    out->compactions = __atomic_load_n(&p->stats.compactions, __ATOMIC_RELAXED);
    out->compaction_reclaimed_bytes =
        __atomic_load_n(&p->stats.compaction_reclaimed_bytes, __ATOMIC_RELAXED);
    out->unsynced_bytes = __atomic_load_n(&p->stats.unsynced_bytes, __ATOMIC_RELAXED);
    out->failing = __atomic_load_n(&p->stats.failing, __ATOMIC_RELAXED);
    out->last_error = __atomic_load_n(&p->stats.last_error, __ATOMIC_RELAXED);
}

/* ---- MISCONF and INFO ---- */

/* The errno of a failing shard's log (or the last failure of any), 0 none. */
static int persist_node_error(const struct node *n, bool *failing)
{
    int err = 0;
    *failing = false;
    for (uint32_t i = 0; i < n->nshards; i++) {
        struct persist_stats st;
        persist_read_stats(n->shards[i]->persist, &st);
        if (st.failing && !*failing) {
            *failing = true;
            err = st.last_error;
        } else if (!*failing && st.last_error) {
            err = st.last_error;
        }
    }
    return err;
}

static bool persist_refusing(const struct node *n, char *why, size_t len)
{
    if (__atomic_load_n(&n->log_failing, __ATOMIC_RELAXED) == 0)
        return false;
    bool failing;
    int err = persist_node_error(n, &failing);
    snprintf(why, len, "Errors writing to the data log: %s", strerror(err ? err : EIO));
    return true;
}

bool persist_refuse_resp(const struct node *n, struct buf *out)
{
    char why[160], line[400];
    if (!persist_refusing(n, why, sizeof why))
        return false;
    snprintf(line, sizeof line,
             "MISCONF %s. Commands that change data are refused until the log is written and "
             "synced again (the node retries by itself; see INFO persistence).",
             why);
    resp_write_error(out, line);
    return true;
}

bool persist_mc_writes(const struct mc_request *req)
{
    switch (req->cmd) {
    case MC_SET: case MC_ADD: case MC_REPLACE: case MC_APPEND: case MC_PREPEND: case MC_CAS:
    case MC_DELETE: case MC_TOUCH: case MC_INCR: case MC_DECR: case MC_GAT: case MC_GATS:
    case MC_FLUSH_ALL:
        return true;
    default:
        return false; /* reads and connection commands */
    }
}

bool persist_refuse_mc(const struct node *n, const struct mc_request *req, struct buf *out)
{
    if (!persist_mc_writes(req))
        return false; /* reads and connection commands go on */
    char why[160], line[200];
    if (!persist_refusing(n, why, sizeof why))
        return false;
    if (!req->noreply) {
        snprintf(line, sizeof line, "SERVER_ERROR %s", why);
        mc_write_line(out, line);
    }
    return true;
}

void persist_write_info(struct buf *b, const struct node *n)
{
    uint64_t unsynced = 0;
    for (uint32_t i = 0; i < n->nshards; i++) {
        struct persist_stats st;
        persist_read_stats(n->shards[i]->persist, &st);
        unsynced += st.unsynced_bytes;
    }
    bool failing;
    int err = persist_node_error(n, &failing);
    buf_printf(b, "log_write_status:%s\r\nlog_last_error:%s\r\nlog_unsynced_bytes:%llu\r\n",
               failing ? "err" : "ok", err ? strerror(err) : "", (unsigned long long)unsynced);
}

/* ---- recovery ---- */

struct persist_recovery {
    struct persist *p;
    const struct node *node;
    bool filter;             /* keep only keys this shard owns (re-lay) */
    uint32_t from_shard;     /* the old shard whose files are being read */
    uint32_t old_nshards;
    uint32_t old_partition_fn; /* enum keyhash_fn the old files were laid out by */
    uint64_t max_segment;    /* segments above this are new ones: not read */
    uint64_t max_cas;        /* highest version read */
    uint64_t file_base;      /* lsn of the first record byte of the file being read */
    struct buf value;
    struct dvv_clock *clock; /* versioned records, decoded (made at the first) */
    uint64_t records;
};

struct persist_doomed {
    struct table_entry **keys;
    size_t len, cap;
    uint32_t old_shard, old_nshards, npartitions, old_partition_fn;
};

static void persist_collect_old_shard(struct table_entry *e, void *arg)
{
    struct persist_doomed *d = arg;
    const char *key = table_entry_key(e);
    uint64_t hash = keyhash(key, e->key_len);
    if (keyhash_partition_by(d->old_partition_fn, key, e->key_len, hash, d->npartitions) %
            d->old_nshards !=
        d->old_shard)
        return;
    if (d->len == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 256;
        struct table_entry **keys = mi_realloc(d->keys, cap * sizeof *keys);
        if (!keys)
            return;
        d->keys = keys;
        d->cap = cap;
    }
    d->keys[d->len++] = e;
}

/* A FLUSH record of old shard X while redistributing: deletes the keys that
 * lived on X (partitions p with p mod old_nshards == X, under the old
 * partition function). */
static void persist_flush_old_shard(struct persist_recovery *rc)
{
    struct persist_doomed d = {.old_shard = rc->from_shard, .old_nshards = rc->old_nshards,
                               .npartitions = rc->node->npartitions,
                               .old_partition_fn = rc->old_partition_fn};
    uint64_t cursor = 0;
    do {
        cursor = table_scan(rc->p->store->table, cursor, 1024, persist_collect_old_shard, &d);
    } while (cursor != 0);
    for (size_t i = 0; i < d.len; i++) {
        const struct table_entry *e = d.keys[i];
        store_delete(rc->p->store, table_entry_key(e), e->key_len,
                     keyhash(table_entry_key(e), e->key_len));
    }
    mi_free(d.keys);
}

/* A versioned put record, its value in rc->value. */
static int persist_apply_versioned(struct persist_recovery *rc, const struct seg_record *r,
                                   uint64_t hash, uint64_t lsn)
{
    struct store *s = rc->p->store;
    if (!rc->clock && !(rc->clock = dvv_create(DVV_MAX_ENTRIES, DVV_MAX_VALUES)))
        return -ENOMEM;
    struct store_version v = {.meta = r->meta,
                              .meta_len = r->meta_len,
                              .body = rc->value.data ? rc->value.data : "",
                              .body_len = (uint32_t)rc->value.len};
    int err = dvv_decode(v.meta, v.meta_len, v.body, v.body_len, rc->clock);
    if (err == 0)
        err = store_put_versioned_recovered(s, r->key, r->key_len, hash, &v, rc->clock,
                                            r->expire_ms, r->seq, rc->filter ? UINT64_MAX : lsn);
    if (err == -EINVAL || err == -ENOSPC) {
        log_error("a record of key '%.*s' has versions that do not decode; the key is left out",
                  (int)(r->key_len > 64 ? 64 : r->key_len), r->key);
        STAT_ADD(rc->p, damaged_files, 1);
        store_delete(s, r->key, r->key_len, hash);
        return 0;
    }
    if (err < 0)
        log_error("cannot load key '%.*s': %s; the node cannot start with this data",
                  (int)(r->key_len > 64 ? 64 : r->key_len), r->key, strerror(-err));
    return err;
}

static int persist_apply(const struct seg_record *r, void *arg)
{
    struct persist_recovery *rc = arg;
    struct store *s = rc->p->store;
    rc->records++;
    if (r->type == SEG_PUT && rc->max_cas < r->seq)
        rc->max_cas = r->seq;
    if (r->type == SEG_FLUSH) {
        if (rc->filter)
            persist_flush_old_shard(rc);
        else
            store_flush(s);
        return 0;
    }
    uint64_t hash = keyhash(r->key, r->key_len);
    if (rc->filter && node_shard_of(rc->node, r->key, r->key_len, hash) != rc->p->shard_id)
        return 0;
    if (r->type == SEG_DEL || (r->expire_ms != 0 && r->expire_ms <= s->now_ms)) {
        store_delete(s, r->key, r->key_len, hash);
        return 0;
    }
    /* Records before this one are on disk: their values may leave memory. */
    uint64_t lsn = rc->file_base + (r->file_offset - SEG_FILE_HEADER);
    if (!rc->filter)
        rc->p->readable_lsn = lsn;
    buf_clear(&rc->value);
    int err = seg_value(r, &rc->value);
    if (err == -EINVAL) {
        /* Never serve the key's older version in its place: it goes. */
        log_error("a record of key '%.*s' has a value that does not decompress; the key is "
                  "left out",
                  (int)(r->key_len > 64 ? 64 : r->key_len), r->key);
        STAT_ADD(rc->p, damaged_files, 1);
        store_delete(s, r->key, r->key_len, hash);
        return 0;
    }
    /* The version stays what the log says (compaction relies on it). */
    if (err == 0 && r->meta_len != 0)
        return persist_apply_versioned(rc, r, hash, lsn);
    if (err == 0)
        err = store_put_recovered(s, r->key, r->key_len, hash,
                                  rc->value.data ? rc->value.data : "", rc->value.len,
                                  r->expire_ms, r->mc_flags, r->seq,
                                  rc->filter ? UINT64_MAX : lsn);
    if (err < 0) { /* out of memory: serving part of the log would serve stale values */
        log_error("cannot load key '%.*s': %s; the node cannot start with this data",
                  (int)(r->key_len > 64 ? 64 : r->key_len), r->key, strerror(-err));
        return err;
    }
    return 0;
}

/* The number in a segment file's name. */
static uint64_t persist_segment_number(const char *path)
{
    const char *base = strrchr(path, '/');
    return strtoull(base ? base + 1 : path, NULL, 16);
}

/* A file of the shard was read: the log positions of the next one follow
 * its records, and compaction will work from it (same shard count only;
 * after a reshard the old files go). */
static void persist_recovered_file(struct persist_recovery *rc, uint64_t number,
                                   const char *path)
{
    struct stat st;
    if (rc->filter)
        return;
    if (stat(path, &st) != 0) {
        rc->p->compact_broken = true; /* as a gap in the list would be */
        return;
    }
    uint64_t bytes = (uint64_t)st.st_size;
    persist_remember_segment(rc->p, number, bytes, rc->file_base, -1);
    if (bytes > SEG_FILE_HEADER)
        rc->file_base += bytes - SEG_FILE_HEADER;
}

/* Reads every segment of old shard `from` into the store. */
static int persist_recover_shard_dir(struct persist_recovery *rc, uint32_t from)
{
    char **paths;
    size_t count;
    int err = seg_list(rc->p->cfg->dir, from, &paths, &count);
    if (err < 0)
        return err;
    rc->from_shard = from;
    size_t newest = count; /* the last segment with records from before this start */
    for (size_t i = 0; i < count; i++) {
        struct stat st;
        if (persist_segment_number(paths[i]) <= rc->max_segment && stat(paths[i], &st) == 0 &&
            st.st_size > SEG_FILE_HEADER)
            newest = i;
    }
    for (size_t i = 0; i < count && err == 0; i++) {
        struct seg_file_header h;
        struct seg_scan_report rep;
        uint64_t number = persist_segment_number(paths[i]);
        if (number > rc->max_segment)
            continue; /* another shard's new segment, being written now */
        err = seg_scan_file(paths[i], false, &h, persist_apply, rc, &rep);
        if (err == -EINVAL) {
            log_warn("segment %s has no valid header; skipping it", paths[i]);
            STAT_ADD(rc->p, damaged_files, 1);
            err = 0;
            persist_recovered_file(rc, number, paths[i]);
            continue;
        }
        if (err < 0) {
            log_error("cannot read segment %s: %s", paths[i], strerror(-err));
            break;
        }
        if (!rep.torn_tail && !rep.corrupt) {
            persist_recovered_file(rc, number, paths[i]);
            continue;
        }
        /* A torn tail is a write that never finished: it is cut. A bad
         * record is cut only at the end of the newest segment (a torn write
         * of garbage); elsewhere the rest is skipped and the file kept for
         * inspection (--check-data). While redistributing, every shard reads
         * the old files at once: none cuts them (they go once all have read
         * them). */
        bool cut = !rc->filter && (rep.torn_tail || i == newest);
        if (cut && truncate(paths[i], (off_t)rep.bytes_good) != 0) {
            log_warn("cannot truncate %s: %s", paths[i], strerror(errno));
            cut = false;
        }
        STAT_ADD(rc->p, damaged_files, 1);
        log_warn("segment %s: %s at byte %llu of %llu; %s, %llu records before it kept",
                 paths[i], rep.corrupt ? "corrupt record" : "torn record",
                 (unsigned long long)rep.bytes_good, (unsigned long long)rep.file_size,
                 cut ? "truncated there" : "the rest skipped, the file kept",
                 (unsigned long long)rep.records);
        persist_recovered_file(rc, number, paths[i]);
    }
    seg_free_paths(paths, count);
    return err;
}

struct persist_snapshot {
    struct persist *p;
    struct buf out;
    int fd;
    uint64_t offset;
    int err;
};

static void persist_snapshot_entry(struct table_entry *e, void *arg)
{
    struct persist_snapshot *sn = arg;
    if (e->meta & TABLE_ENTRY_LSN)
        table_entry_set_lsn(e, sn->p->seg_base_lsn + sn->offset + sn->out.len - SEG_FILE_HEADER);
    struct store_version v;
    struct seg_record r = persist_entry_record(e, &v);
    seg_encode(&sn->out, &r, sn->p->codec, (size_t)sn->p->cfg->compress_min_size);
    if (sn->out.len < (1u << 20) || sn->err)
        return;
    if (pwrite(sn->fd, sn->out.data, sn->out.len, (off_t)sn->offset) != (ssize_t)sn->out.len)
        sn->err = -EIO;
    sn->offset += sn->out.len;
    buf_clear(&sn->out);
}

/* After a change of shard count: writes the shard's whole keyspace into its
 * first new segment (start-up only, blocking), durable before old files go. */
static int persist_write_snapshot(struct persist *p)
{
    struct persist_snapshot sn = {.p = p, .fd = p->fd, .offset = SEG_FILE_HEADER};
    buf_init(&sn.out);
    uint64_t cursor = 0;
    do {
        cursor = table_scan(p->store->table, cursor, 4096, persist_snapshot_entry, &sn);
    } while (cursor != 0 && sn.err == 0);
    if (sn.out.len && sn.err == 0 &&
        pwrite(sn.fd, sn.out.data, sn.out.len, (off_t)sn.offset) != (ssize_t)sn.out.len)
        sn.err = -EIO;
    sn.offset += sn.out.len;
    buf_fini(&sn.out);
    if (sn.err == 0 && fdatasync(sn.fd) != 0)
        sn.err = -errno;
    p->write_offset = sn.offset;
    STAT_ADD(p, disk_bytes, sn.offset);
    return sn.err;
}

/* Values beyond RAM: the store may drop a value from memory once its
 * record is written. */
static bool persist_lsn_readable(void *arg, uint64_t lsn)
{
    const struct persist *p = arg;
    return lsn < p->readable_lsn;
}

static uint64_t persist_unwritten_bytes(void *arg)
{
    const struct persist *p = arg;
    return p->append_lsn - p->readable_lsn;
}

int persist_locate(struct persist *p, uint64_t lsn, int *fd, uint64_t *offset)
{
    uint64_t number, base;
    int *rfd;
    if (lsn >= p->seg_base_lsn) {
        number = p->segment;
        base = p->seg_base_lsn;
        rfd = &p->rfd;
    } else {
        size_t lo = 0, hi = p->nsegs; /* the last segment whose base is <= lsn */
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (p->segs[mid].base_lsn <= lsn)
                lo = mid;
            else
                hi = mid;
        }
        if (p->nsegs == 0 || p->segs[lo].base_lsn > lsn)
            return -ENOENT;
        number = p->segs[lo].number;
        base = p->segs[lo].base_lsn;
        rfd = &p->segs[lo].rfd;
    }
    if (*rfd < 0) {
        /* Opened once per segment and kept: a metadata lookup of a file
         * this shard made, not a read of data. Past PERSIST_MAX_READ_FDS
         * the closed segments' descriptors are let go, once no cold read
         * names them (persist_trim_read_fds). */
        persist_trim_read_fds(p, rfd);
        char path[1200];
        seg_path(path, sizeof path, p->cfg->dir, p->shard_id, number);
        *rfd = open(path, O_RDONLY | O_CLOEXEC);
        if (*rfd < 0)
            return -errno;
        p->read_fds++;
    }
    *fd = *rfd;
    *offset = SEG_FILE_HEADER + (lsn - base);
    return 0;
}

uint64_t persist_readable_lsn(const struct persist *p) { return p ? p->readable_lsn : 0; }

int persist_start(struct shard *sh, const struct persist_layout *layout, struct persist **out)
{
    const struct node *n = sh->node;
    *out = NULL;
    if (n->cfg->storage != CFG_STORAGE_LOG)
        return 0;
    struct persist *p = mi_zalloc_aligned(sizeof *p, 64);
    if (!p)
        return -ENOMEM;
    p->sh = sh;
    p->store = sh->store;
    p->cfg = n->cfg;
    p->shard_id = sh->id;
    p->fd = -1;
    p->compact_fd = -1;
    p->next_fd = -1;
    p->dir_fd = -1;
    p->rfd = -1;
    p->closing_fd = -1;
    buf_init(&p->unsynced_data);
    buf_init(&p->closing_data);
    buf_init(&p->next_header);
    buf_init(&p->compact_buf);
    p->always = n->cfg->appendfsync == CFG_FSYNC_ALWAYS;
    p->codec = n->cfg->compression == CFG_COMPRESSION_ZSTD  ? SEG_CODEC_ZSTD
               : n->cfg->compression == CFG_COMPRESSION_LZ4 ? SEG_CODEC_LZ4
                                                            : SEG_CODEC_NONE;
    buf_init(&p->pending);
    buf_init(&p->inflight);
    buf_init(&p->window);
    int64_t t0 = persist_now_ms();
    struct persist_recovery rc = {.p = p, .node = n, .old_nshards = layout->old_nshards,
                                  .old_partition_fn = layout->old_partition_fn,
                                  .max_segment = layout->old_max_segment,
                                  .filter = layout->old_nshards != n->nshards || layout->relay};
    buf_init(&rc.value);
    int err = 0;
    size_t maxmemory = p->store->maxmemory;
    if (maxmemory > 0) { /* values beyond RAM */
        p->tier = (struct store_tier){persist_lsn_readable, persist_unwritten_bytes, p};
        store_attach_tier(p->store, &p->tier);
        /* While redistributing, records come from other shards' files, which
         * go once all have read them: values stay in memory until they are
         * written again here (persist_write_snapshot), then leave as needed. */
        if (rc.filter)
            p->store->maxmemory = 0;
    }
    if (layout->old_nshards == n->nshards && !layout->relay) {
        err = persist_recover_shard_dir(&rc, sh->id);
    } else {
        for (uint32_t from = 0; from < layout->old_nshards && err == 0; from++)
            err = persist_recover_shard_dir(&rc, from);
    }
    buf_fini(&rc.value);
    dvv_destroy(rc.clock);
    if (p->store->next_cas <= rc.max_cas)
        p->store->next_cas = rc.max_cas + 1; /* new versions stay unique */
    if (err < 0)
        goto fail;
    p->segment = layout->old_max_segment + 1;
    p->fd = persist_create_segment(n, sh->id, p->segment);
    if (p->fd < 0) {
        err = p->fd;
        log_error("cannot create segment %llu in %s: %s", (unsigned long long)p->segment,
                  n->cfg->dir, strerror(-err));
        goto fail;
    }
    p->write_offset = SEG_FILE_HEADER;
    p->seg_base_lsn = rc.file_base;
    char sdir[1200];
    snprintf(sdir, sizeof sdir, "%s/shard-%03u", n->cfg->dir, sh->id);
    p->dir_fd = open(sdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* -1: rotation makes files */
    if (layout->relay && (err = persist_write_snapshot(p)) < 0) {
        log_error("cannot write the redistributed keys: %s", strerror(-err));
        goto fail;
    }
    p->append_lsn = p->batch_end_lsn = p->readable_lsn =
        p->seg_base_lsn + (p->write_offset - SEG_FILE_HEADER);
    p->synced_to = p->write_offset; /* the header and a snapshot are synced */
    if (rc.filter && maxmemory > 0) {
        p->store->maxmemory = maxmemory;
        store_make_room(p->store, 0); /* what does not fit now leaves memory */
    }
    if (maxmemory > 0 && store_used_bytes(p->store) > maxmemory)
        log_warn("the recovered keyspace takes %zu bytes, over this shard's maxmemory of %zu "
                 "even with values on disk; writes meet maxmemory-policy",
                 store_used_bytes(p->store), maxmemory);
    int64_t ms = persist_now_ms() - t0;
    size_t keys = store_count(p->store);
    STAT_SET(p, segments, p->nsegs + 1);
    STAT_SET(p, recovered_keys, keys);
    p->written_seq = p->durable_seq = p->seq; /* what was read back is on disk */
    p->window_seq = p->seq + 1;
    STAT_SET(p, recovered_records, rc.records);
    STAT_SET(p, recovery_ms, (uint64_t)ms);
    STAT_SET(p, last_fsync_ms, persist_now_ms());
    if (rc.records)
        log_info("recovered %zu keys from %llu records in %lld ms (%.0f keys/s)", keys,
                 (unsigned long long)rc.records, (long long)ms,
                 ms ? (double)keys * 1000.0 / (double)ms : (double)keys * 1000.0);
    p->journal = (struct store_journal){persist_journal_put, persist_journal_del,
                                        persist_journal_flush, p};
    store_attach_journal(p->store, &p->journal);
#ifdef RINGKV_FAULTS
    p->faults = mi_zalloc(sizeof *p->faults);
    if (p->faults)
        for (int i = 0; i < 4; i++)
            p->faults->files[i].fd = -1;
#endif
    *out = p;
    return 0;
fail:
    persist_stop(p);
    return err;
}

/* pwrite of all n bytes (looping on short writes); 0 or -1 with errno. */
static int persist_pwrite_all(int fd, const char *data, size_t n, uint64_t offset)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, data, n, (off_t)offset);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        data += w;
        n -= (size_t)w;
        offset += (uint64_t)w;
    }
    return 0;
}

/* One try at writing, with blocking calls, everything not known durable,
 * each at its place, then fdatasync: 0 or -errno. */
static int persist_write_rest(struct persist *p)
{
    if (p->closing_fd >= 0) { /* a closed segment whose fdatasync did not succeed */
        if (persist_pwrite_all(p->closing_fd, p->closing_data.data, p->closing_data.len,
                               p->closing_from) != 0)
            return -errno;
        int rc = persist_fault(p, PERSIST_FAULT_ROTATION, p->closing_fd,
                               fdatasync(p->closing_fd) == 0 ? 0 : -errno);
        if (rc < 0)
            return rc;
        close(p->closing_fd);
        p->closing_fd = -1;
        buf_clear(&p->closing_data);
    }
    if (p->fd < 0)
        return 0;
    uint64_t at = p->write_offset;
    for (uint32_t k = 0; k < p->nbatches; k++) { /* appendfsync always: whole batches */
        struct persist_batch *b = &p->batches[(p->batch_head + k) % PERSIST_BATCHES];
        if (persist_pwrite_all(p->fd, b->data.data, b->data.len, b->offset) != 0)
            return -errno;
    }
    if (!p->always) { /* since the last good fdatasync, then the batch's rest */
        size_t left = p->inflight.len - p->inflight_done;
        if (persist_pwrite_all(p->fd, p->unsynced_data.data, p->unsynced_data.len,
                               p->synced_to) != 0 ||
            persist_pwrite_all(p->fd, p->inflight.data + p->inflight_done, left,
                               p->synced_to + p->unsynced_data.len) != 0)
            return -errno;
        at = p->synced_to + p->unsynced_data.len + left;
    }
    if (persist_pwrite_all(p->fd, p->pending.data, p->pending.len, at) != 0)
        return -errno;
    return persist_fault(p, PERSIST_FAULT_FSYNC, p->fd, fdatasync(p->fd) == 0 ? 0 : -errno);
}

uint64_t persist_finish(struct persist *p)
{
    if (!p)
        return 0;
    store_attach_journal(p->store, NULL);
    persist_fault_poll(p);
    /* Whatever the ring did not make durable (the shard drained it first)
     * is written now: stopping is not serving, so blocking calls are fine.
     * Rewriting bytes a write still in the kernel may also write, at the
     * same offset, is harmless. A failing disk is tried again, backing off,
     * until PERSIST_STOP_RETRY_MS has passed. */
    int64_t deadline = persist_now_ms() + PERSIST_STOP_RETRY_MS;
    int64_t wait_ms = PERSIST_RETRY_MIN_MS;
    for (;;) {
        int rc = persist_write_rest(p);
        if (rc == 0) {
            p->durable_seq = p->seq;
            return 0;
        }
        if (persist_now_ms() + wait_ms > deadline) {
            uint64_t lost = p->seq - p->durable_seq;
            log_error("stopping: cannot write the data log: %s; %llu records not known to be "
                      "on disk",
                      strerror(-rc), (unsigned long long)lost);
            return lost ? lost : 1;
        }
        log_warn("stopping: cannot write the data log: %s; trying again in %lld ms",
                 strerror(-rc), (long long)wait_ms);
        struct timespec ts = {wait_ms / 1000, (wait_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        wait_ms = wait_ms * 2 > PERSIST_RETRY_MAX_MS ? PERSIST_RETRY_MAX_MS : wait_ms * 2;
    }
}

void persist_stop(struct persist *p)
{
    if (!p)
        return;
    if (p->store)
        store_attach_journal(p->store, NULL);
    if (p->fd >= 0)
        close(p->fd);
    if (p->closing_fd >= 0)
        close(p->closing_fd);
    for (size_t i = 0; i < p->ndoomed; i++)
        close(p->doomed_fds[i]);
    mi_free(p->doomed_fds);
    if (p->stats.failing)
        __atomic_sub_fetch(&p->sh->node->log_failing, 1, __ATOMIC_RELAXED);
    if (p->over_cap)
        __atomic_sub_fetch(&p->sh->node->log_over_cap, 1, __ATOMIC_RELAXED);
    buf_fini(&p->unsynced_data);
    buf_fini(&p->closing_data);
#ifdef RINGKV_FAULTS
    mi_free(p->faults);
#endif
    if (p->compact_fd >= 0)
        close(p->compact_fd);
    if (p->rfd >= 0)
        close(p->rfd);
    for (size_t i = 0; i < p->nsegs; i++)
        if (p->segs[i].rfd >= 0)
            close(p->segs[i].rfd);
    if (p->next_fd >= 0)
        close(p->next_fd); /* an empty segment stays: it reads as no records */
    if (p->dir_fd >= 0)
        close(p->dir_fd);
    buf_fini(&p->next_header);
    buf_fini(&p->compact_buf);
    mi_free(p->segs);
    buf_fini(&p->pending);
    buf_fini(&p->inflight);
    buf_fini(&p->window);
    for (uint32_t k = 0; k < PERSIST_BATCHES; k++)
        buf_fini(&p->batches[k].data);
    for (int g = 0; g < 2; g++) {
        mi_free(p->keyseq[g].hash);
        mi_free(p->keyseq[g].seq);
    }
    mi_free(p);
}

/* ---- the data directory ---- */

/* The manifest <dir>/ringkv.meta: the shard and partition counts the data
 * was written with, the first segment number of that layout (segments below
 * it are leftovers of an earlier one) and, from format 2 on, the partition
 * function (`partition-function crc16-slot`). Format 1, written before
 * slots, has no such line: its data is laid out by xxh3. A node that runs
 * the xxh3 function (upgrade tests) writes format 1, as those releases did;
 * a release before slots refuses format 2 (it reads "ringkv-data 1" only).
 * A last line `data-epoch <16 hex digits>` (read by nothing older, which
 * stops before it) keeps the data epoch. */
struct persist_manifest {
    uint32_t nshards, npartitions;
    uint64_t first_segment;
    uint32_t partition_fn; /* enum keyhash_fn */
    uint64_t data_epoch;   /* `data-epoch <hex>`; 0 when absent (before versions) */
};

static const char *const persist_fn_names[] = {[KEYHASH_FN_XXH3] = "xxh3",
                                               [KEYHASH_FN_SLOT] = "crc16-slot"};

static int persist_read_manifest(const char *dir, struct persist_manifest *m)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, PERSIST_MANIFEST);
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : -errno;
    unsigned version = 0, s = 0, q = 0;
    unsigned long long first = 0;
    char fn[32] = "";
    int got = fscanf(f, "ringkv-data %u\nshards %u\npartitions %u\nfirst_segment %llu\n",
                     &version, &s, &q, &first);
    if (version == 2 && got == 4 && fscanf(f, "partition-function %31s\n", fn) != 1)
        got = 0;
    unsigned long long epoch = 0;
    if (got == 4 && fscanf(f, "data-epoch %llx\n", &epoch) != 1)
        epoch = 0;
    fclose(f);
    if (got < 3 || version < 1 || version > 2)
        return -EINVAL;
    *m = (struct persist_manifest){s, q, first, KEYHASH_FN_XXH3, epoch};
    if (version == 2) {
        if (strcmp(fn, persist_fn_names[KEYHASH_FN_SLOT]) != 0)
            return -EINVAL;
        m->partition_fn = KEYHASH_FN_SLOT;
    }
    return 1;
}

/* fsyncs a directory, so that names created or removed in it stay so. */
static int persist_sync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

static int persist_write_manifest(const struct node *n, uint64_t first_segment)
{
    char path[1200], tmp[1210];
    snprintf(path, sizeof path, "%s/%s", n->cfg->dir, PERSIST_MANIFEST);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    bool slots = n->partition_fn == KEYHASH_FN_SLOT;
    fprintf(f, "ringkv-data %d\nshards %u\npartitions %u\nfirst_segment %llu\n", slots ? 2 : 1,
            n->nshards, n->npartitions, (unsigned long long)first_segment);
    if (slots)
        fprintf(f, "partition-function %s\n", persist_fn_names[KEYHASH_FN_SLOT]);
    fprintf(f, "data-epoch %016llx\n", (unsigned long long)n->layout.data_epoch);
    int rc = fflush(f) == 0 && fdatasync(fileno(f)) == 0 ? 0 : -EIO;
    fclose(f);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc == 0)
        rc = persist_sync_path(n->cfg->dir);
    return rc;
}

/* One past the highest shard-NNN directory under dir. */
static uint32_t persist_shard_dirs(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    uint32_t top = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        unsigned id;
        int end = 0;
        if (sscanf(de->d_name, "shard-%u%n", &id, &end) == 1 && de->d_name[end] == '\0' &&
            id + 1 > top)
            top = id + 1;
    }
    closedir(d);
    return top;
}

/* Removes what no layout owns: segments below the manifest's first segment
 * (left by a finished reshard that stopped before removing them), segments
 * written for another shard count (a reshard that stopped before its
 * manifest: nothing in them was acknowledged, as shards serve only after
 * the manifest), and shard directories left empty past the shard count.
 * Returns the highest segment number that stays. */
static uint64_t persist_tidy_dir(const char *dir, const struct persist_manifest *m)
{
    uint64_t max = 0;
    uint32_t ndirs = persist_shard_dirs(dir);
    for (uint32_t s = 0; s < ndirs; s++) {
        char **paths;
        size_t count;
        if (seg_list(dir, s, &paths, &count) < 0)
            continue;
        for (size_t i = 0; i < count; i++) {
            uint64_t number = persist_segment_number(paths[i]);
            char head[SEG_FILE_HEADER];
            struct seg_file_header h;
            int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
            bool foreign = false;
            if (fd >= 0) {
                foreign = pread(fd, head, sizeof head, 0) == (ssize_t)sizeof head &&
                          seg_decode_file_header(head, sizeof head, &h) == SEG_OK &&
                          (h.nshards != m->nshards || h.partition_fn != m->partition_fn);
                close(fd);
            }
            if (number < m->first_segment || foreign) {
                log_info("removing %s (%s)", paths[i],
                         number < m->first_segment
                             ? "left by an earlier layout"
                             : "written for another layout by a re-lay that did not finish");
                unlink(paths[i]);
                continue;
            }
            if (number > max)
                max = number;
        }
        seg_free_paths(paths, count);
        if (s >= m->nshards) {
            char path[1200];
            snprintf(path, sizeof path, "%s/shard-%03u", dir, s);
            rmdir(path); /* fails, harmlessly, unless empty */
        }
    }
    persist_sync_path(dir);
    return max;
}

/* A new data epoch: random, never 0 (0 reads as "none" in a manifest). */
static uint64_t persist_new_epoch(void)
{
    uint64_t e = 0;
    if (getrandom(&e, sizeof e, 0) != (ssize_t)sizeof e) {
        struct timespec ts; /* no entropy source: the clock, still new per start */
        clock_gettime(CLOCK_REALTIME, &ts);
        e = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        e ^= (uint64_t)getpid() << 40;
    }
    return e ? e : 1;
}

int persist_prepare_dir(const struct node *n, struct persist_layout *layout)
{
    memset(layout, 0, sizeof *layout);
    layout->data_epoch = persist_new_epoch(); /* kept unless the manifest has one */
    if (n->cfg->storage != CFG_STORAGE_LOG)
        return 0;
    struct persist_manifest m = {0};
    int rc = persist_read_manifest(n->cfg->dir, &m);
    if (rc < 0) {
        log_error("%s/%s is unreadable or damaged: %s; exiting", n->cfg->dir, PERSIST_MANIFEST,
                  strerror(-rc));
        return rc;
    }
    if (rc == 0)
        return 0; /* a new data directory: a new epoch */
    if (m.data_epoch != 0)
        layout->data_epoch = m.data_epoch; /* (a manifest from before versions: a new one) */
    if (m.npartitions != n->npartitions) {
        log_error("the data in %s was written with %u partitions: start with --partitions %u; "
                  "exiting",
                  n->cfg->dir, m.npartitions, m.npartitions);
        return -EINVAL;
    }
    layout->old_nshards = m.nshards;
    layout->old_partition_fn = m.partition_fn;
    layout->relay = m.nshards != n->nshards || m.partition_fn != n->partition_fn;
    layout->first_segment = m.first_segment;
    layout->old_max_segment = persist_tidy_dir(n->cfg->dir, &m);
    if (m.nshards != n->nshards)
        log_info("data in %s was written by %u shards; redistributing it over %u", n->cfg->dir,
                 m.nshards, n->nshards);
    if (m.partition_fn != n->partition_fn)
        log_info("data in %s was placed by %s partitioning; re-laying it by %s", n->cfg->dir,
                 persist_fn_names[m.partition_fn], persist_fn_names[n->partition_fn]);
    return 0;
}

int persist_finish_start(const struct node *n, const struct persist_layout *layout)
{
    if (n->cfg->storage != CFG_STORAGE_LOG)
        return 0;
    bool reshard = layout->relay;
    /* The new layout is durable before the old files go: a crash in between
     * leaves files that the next start removes (persist_tidy_dir). */
    uint64_t first = reshard ? layout->old_max_segment + 1 : layout->first_segment;
    int rc = persist_write_manifest(n, first);
    if (rc < 0) {
        log_error("cannot write %s/%s: %s; exiting", n->cfg->dir, PERSIST_MANIFEST,
                  strerror(-rc));
        return rc;
    }
    if (reshard) {
        struct persist_manifest m = {n->nshards, n->npartitions, first, n->partition_fn,
                                     n->layout.data_epoch};
        persist_tidy_dir(n->cfg->dir, &m);
    }
    return 0;
}
