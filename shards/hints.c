/* hints.c: hinted handoff's log and delivery (see hints.h).
 *
 * Taking: hint_take() encodes the record at the end of `pend` and notes the
 * request to answer (link, wire id). hint_flush(), at the end of the loop
 * turn, moves `pend` to `infl` and writes it at the active file's end; the
 * write's completion starts an fdatasync; the fdatasync's completion makes
 * each record of the batch a pending hint in memory (struct hint, on its
 * target's list, in order) and answers its request OK. A failed write or
 * sync answers ERROR to the batch (the coordinator counts that node as not
 * answering) and the next batch is written at the same offset, over it.
 *
 * Delivering: hint_tick() (and every OK ack) walks the targets the view
 * says are up, or that are no longer a replica of their oldest hint's
 * partition, and sends their oldest hints not in flight as SYNC, each one a
 * struct req of this shard (owner_ptr: the hint; the REPLY's id is the
 * req's, plus a sub-result slot): to the target while it is still among
 * the partition's top N, else to the partition's replicas of now (and
 * applied here if this node is one, the req held until that is durable),
 * while the token bucket (hint-max-bytes-per-sec over the shards) and
 * HINT_INFLIGHT_MAX allow. When every sub-result is OK the hint is
 * forgotten (its file's live count drops; a file with none left is
 * deleted, or truncated when it is the one being written); an error or the
 * deadline leaves it, and its target backs off (doubling, up to
 * HINT_BACKOFF_MAX_MS) before anything is sent to it again.
 *
 * Each tick also drops hints older than tombstone-grace or max-hint-window
 * whatever their target's state (as Cassandra's hints live for gc_grace: a
 * delete a hint predates may be reaped by then, and the value would come
 * back), frees target slots that hold nothing, and compacts (hint_compact).
 *
 * Files hold no header: a file is its records. Names are
 * <shard>-<seq>.log, seq a 16-digit hex number growing per shard. */
#include "hints.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <mimalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "coord.h"
#include "keyhash.h"
#include "log.h"
#include "net.h"
#include "node.h"
#include "nodeid.h"
#include "peerlink.h"
#include "req.h"
#include "shard.h"

/* ---- the codec ---- */

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p) { return get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

int hint_encode(struct buf *out, const struct hint_record *r)
{
    uint8_t id[NODEID_BYTES];
    if (!nodeid_from_hex(r->target, id) || r->key.len > WIRE_KEY_MAX ||
        r->meta.len > WIRE_META_MAX || r->body.len > WIRE_VALUE_MAX)
        return -EINVAL;
    uint64_t body = (uint64_t)HINT_BODY_FIXED + r->key.len + r->meta.len + r->body.len;
    if (buf_reserve(out, HINT_HEADER_LEN + body) != 0)
        return -ENOMEM;
    uint8_t *p = (uint8_t *)out->data + out->len;
    put_u32(p + 8, (uint32_t)body);
    p[12] = HINT_VERSION;
    p[13] = 0;
    put_u16(p + 14, r->partition);
    memcpy(p + 16, id, NODEID_BYTES);
    put_u64(p + 36, r->time_ms);
    put_u64(p + 44, r->expire_at_ms);
    put_u32(p + 52, r->key.len);
    put_u32(p + 56, r->meta.len);
    put_u32(p + 60, r->body.len);
    uint8_t *q = p + HINT_HEADER_LEN + HINT_BODY_FIXED;
    if (r->key.len)
        memcpy(q, r->key.ptr, r->key.len);
    if (r->meta.len)
        memcpy(q + r->key.len, r->meta.ptr, r->meta.len);
    if (r->body.len)
        memcpy(q + r->key.len + r->meta.len, r->body.ptr, r->body.len);
    put_u64(p, XXH3_64bits(p + 8, (size_t)(HINT_HEADER_LEN - 8 + body)));
    out->len += HINT_HEADER_LEN + body;
    return 0;
}

enum hint_status hint_decode(const uint8_t *p, size_t len, struct hint_record *r,
                             size_t *consumed)
{
    *consumed = 0;
    if (len < HINT_HEADER_LEN)
        return HINT_MORE;
    uint64_t body = get_u32(p + 8);
    if (body < HINT_BODY_FIXED || body > HINT_BODY_MAX)
        return HINT_BAD;
    if (len - HINT_HEADER_LEN < body)
        return HINT_MORE;
    /* the fields before the checksum: cheap, and most bytes that are not a
     * record fail them (hint_scan tries every offset after a bad record) */
    const uint8_t *b = p + HINT_HEADER_LEN;
    uint32_t klen = get_u32(b + 40), mlen = get_u32(b + 44), vlen = get_u32(b + 48);
    if (b[0] != HINT_VERSION || b[1] != 0 || klen > WIRE_KEY_MAX || mlen > WIRE_META_MAX ||
        vlen > WIRE_VALUE_MAX || (uint64_t)HINT_BODY_FIXED + klen + mlen + vlen != body)
        return HINT_BAD;
    if (get_u64(p) != XXH3_64bits(p + 8, (size_t)(HINT_HEADER_LEN - 8 + body)))
        return HINT_BAD;
    r->partition = get_u16(b + 2);
    nodeid_to_hex(b + 4, r->target);
    r->time_ms = get_u64(b + 24);
    r->expire_at_ms = get_u64(b + 32);
    const uint8_t *q = b + HINT_BODY_FIXED;
    r->key = (struct wire_bytes){q, klen};
    r->meta = (struct wire_bytes){q + klen, mlen};
    r->body = (struct wire_bytes){q + klen + mlen, vlen};
    *consumed = HINT_HEADER_LEN + (size_t)body;
    return HINT_OK;
}

size_t hint_scan(const uint8_t *p, size_t len, hint_scan_fn fn, void *arg, size_t *skipped)
{
    size_t off = 0, end = 0, used, lost = 0;
    struct hint_record r;
    while (off < len) {
        if (hint_decode(p + off, len - off, &r, &used) == HINT_OK) {
            if (fn)
                fn(arg, &r, off, used);
            off = end = off + used;
            continue;
        }
        /* not a record here (bad, or a length that runs past the end):
         * resync at the next offset where a whole valid record starts */
        size_t next = off + 1;
        while (next < len && hint_decode(p + next, len - next, &r, &used) != HINT_OK)
            next++;
        if (next >= len)
            break; /* nothing valid after: a torn tail */
        lost += next - off;
        off = next;
    }
    if (skipped)
        *skipped = lost;
    return end;
}

/* ---- state ---- */

struct hint {
    struct hint *prev, *next; /* its target's list, oldest first */
    uint32_t file;            /* index in files */
    uint32_t target;          /* index in targets */
    uint64_t req_id;          /* its delivery in flight; 0 none */
    uint32_t len;
    bool moving; /* compaction is writing it into the active file: neither
                    sent nor forgotten until that batch ends */
    bool failed; /* its delivery in flight got an error from some replica */
    uint8_t rec[]; /* the encoded record */
};

/* A target node; id[0] == 0: a free slot. A slot is freed once it holds
 * nothing (no hint pending, taken or in flight) and reused for another id.
 * Other threads read slots below ntargets (acquire) through
 * hint_target_read(): gen is odd while the owner rewrites id (a seqlock). */
struct hint_target {
    uint32_t gen;
    char id[WIRE_ID_HEX + 1];
    int64_t retry_at_ms; /* after a failed delivery: no send before (monotonic) */
    int64_t backoff_ms;  /* the next failure's wait (doubles, HINT_BACKOFF_MAX_MS) */
    struct hint *head, *tail;
    uint64_t bytes, count; /* pending, taken ones not yet durable included */
    uint32_t inflight;
    /* this round of deliveries (logged once the backlog is empty) */
    int64_t round_start_ms; /* its first send; 0 none */
    uint64_t round_hints, round_bytes;
};

struct hint_file {
    uint32_t shard_of_name;
    uint64_t seq;
    uint32_t live;       /* pending hints in it */
    uint64_t live_bytes; /* their records' bytes */
    uint64_t size;       /* its length on disk */
    bool gone;
    /* it holds hints not in memory (recovery could not read it, or dropped
     * some of its records): never deleted by this run; the next start-up
     * reads it again */
    bool pinned;
};

/* A record in a batch not yet durable: a hint taken (the request to
 * answer), or, with move, a pending hint compaction copies to the active
 * file. */
struct hint_pending {
    uint64_t link, id;
    uint32_t target, len;
    struct hint *move;
};

struct hint_stats {
    uint64_t taken, delivered, refused, recovered, write_errors, expired;
    uint64_t unloaded;      /* records or files recovery could not hold in memory */
    uint64_t skipped_bytes; /* recovery: bytes between valid records that are none */
    uint64_t redirected;    /* sent to a partition's replicas of now, not the
                               target (no longer one of them) */
    uint64_t compacted;     /* files emptied by compaction */
};

struct hints {
    struct shard *sh;
    char dir[1100];
    int fd; /* the active file; -1 none yet */
    uint32_t active;
    uint64_t offset; /* the active file's durable end (and the next write's offset) */
    uint64_t next_seq;
    struct buf pend, infl;
    struct hint_pending *pp, *ip;
    uint32_t npend, pcap, ninfl, icap;
    size_t infl_done;
    bool writing, syncing;
    bool dir_synced; /* the hints directory's entry is durable */
    struct hint_file *files;
    uint32_t nfiles, fcap;
    struct hint_target targets[HINT_TARGETS_MAX];
    uint32_t ntargets;
    uint32_t inflight;
    uint32_t moving; /* hints compaction is moving */
    double tokens;
    int64_t tokens_ms;
    struct hint_stats stats;
};

#define HINT_STAT_ADD(h, f, n) __atomic_store_n(&(h)->stats.f, (h)->stats.f + (n), __ATOMIC_RELAXED)
#define HINT_SET(p, v) __atomic_store_n(&(p), (v), __ATOMIC_RELAXED)

static struct hints *hints_of(const struct shard *sh) { return sh->hints; }

static int64_t hint_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The owner rewrites slot t's id (id NULL: frees it) under its seqlock. */
static void hint_target_set_id(struct hint_target *t, const char *id)
{
    __atomic_store_n(&t->gen, t->gen + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    for (size_t i = 0; i <= WIRE_ID_HEX; i++)
        __atomic_store_n(&t->id[i], id ? id[i] : 0, __ATOMIC_RELAXED);
    __atomic_store_n(&t->gen, t->gen + 1, __ATOMIC_RELEASE);
}

/* Another thread's copy of slot t: false when it is free or was rewritten
 * meanwhile. */
static bool hint_target_read(const struct hint_target *t, char *id, uint64_t *bytes,
                             uint64_t *count)
{
    uint32_t g = __atomic_load_n(&t->gen, __ATOMIC_ACQUIRE);
    if (g & 1)
        return false;
    for (size_t i = 0; i <= WIRE_ID_HEX; i++)
        id[i] = __atomic_load_n(&t->id[i], __ATOMIC_RELAXED);
    *bytes = __atomic_load_n(&t->bytes, __ATOMIC_RELAXED);
    *count = __atomic_load_n(&t->count, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return __atomic_load_n(&t->gen, __ATOMIC_RELAXED) == g && id[0] && !id[WIRE_ID_HEX];
}

static uint32_t hint_target_find(struct hints *h, const char *id, bool create)
{
    uint32_t free_slot = UINT32_MAX;
    for (uint32_t i = 0; i < h->ntargets; i++) {
        if (!h->targets[i].id[0] && free_slot == UINT32_MAX)
            free_slot = i;
        else if (strcmp(h->targets[i].id, id) == 0)
            return i;
    }
    if (!create || (free_slot == UINT32_MAX && h->ntargets == HINT_TARGETS_MAX))
        return UINT32_MAX;
    uint32_t i = free_slot != UINT32_MAX ? free_slot : h->ntargets;
    struct hint_target *t = &h->targets[i];
    t->head = t->tail = NULL;
    t->inflight = 0;
    t->retry_at_ms = t->backoff_ms = 0;
    t->round_start_ms = 0;
    t->round_hints = t->round_bytes = 0;
    HINT_SET(t->bytes, 0);
    HINT_SET(t->count, 0);
    hint_target_set_id(t, id);
    if (i == h->ntargets)
        __atomic_store_n(&h->ntargets, h->ntargets + 1, __ATOMIC_RELEASE);
    return i;
}

/* Room for one more of n elements of size in *arr (capacity *cap). */
static int hint_grow(void **arr, uint32_t n, uint32_t *cap, size_t size)
{
    if (n < *cap)
        return 0;
    uint32_t want = *cap ? *cap * 2 : 16;
    void *p = mi_realloc(*arr, want * size);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = want;
    return 0;
}

static int hint_file_add(struct hints *h, uint32_t shard_of_name, uint64_t seq)
{
    if (hint_grow((void **)&h->files, h->nfiles, &h->fcap, sizeof *h->files) != 0)
        return -ENOMEM;
    h->files[h->nfiles] = (struct hint_file){.shard_of_name = shard_of_name, .seq = seq};
    return (int)h->nfiles++;
}

static void hint_file_path(const struct hints *h, uint32_t f, char *out, size_t len)
{
    snprintf(out, len, "%s/%u-%016" PRIx64 ".log", h->dir, h->files[f].shard_of_name,
             h->files[f].seq);
}

/* A durable record becomes a pending hint at its target's tail. */
static int hint_add(struct hints *h, uint32_t target, uint32_t file, const uint8_t *rec,
                    uint32_t len)
{
    struct hint *x = mi_malloc(sizeof *x + len);
    if (!x)
        return -ENOMEM;
    struct hint_target *t = &h->targets[target];
    x->prev = t->tail;
    x->next = NULL;
    x->file = file;
    x->target = target;
    x->req_id = 0;
    x->len = len;
    x->moving = x->failed = false;
    memcpy(x->rec, rec, len);
    if (t->tail)
        t->tail->next = x;
    else
        t->head = x;
    t->tail = x;
    h->files[file].live++;
    h->files[file].live_bytes += len;
    return 0;
}

static void hint_forget(struct hints *h, struct hint *x)
{
    struct hint_target *t = &h->targets[x->target];
    if (x->prev)
        x->prev->next = x->next;
    else
        t->head = x->next;
    if (x->next)
        x->next->prev = x->prev;
    else
        t->tail = x->prev;
    HINT_SET(t->bytes, t->bytes - x->len);
    HINT_SET(t->count, t->count - 1);
    h->files[x->file].live--;
    h->files[x->file].live_bytes -= x->len;
    mi_free(x);
}

/* A hint delivered: counted in its target's round, logged when that
 * emptied the backlog (bench/hint_delivery.sh reads these lines). */
static void hint_delivered(struct hints *h, struct hint *x)
{
    struct hint_target *t = &h->targets[x->target];
    t->round_hints++;
    t->round_bytes += x->len;
    hint_forget(h, x);
    HINT_STAT_ADD(h, delivered, 1);
    if (t->count > 0)
        return;
    log_info("hints: delivered %" PRIu64 " hints (%" PRIu64 " bytes) to %s in %" PRId64 " ms",
             t->round_hints, t->round_bytes, t->id, req_now_ms() - t->round_start_ms);
    t->round_start_ms = 0;
    t->round_hints = t->round_bytes = 0;
}

/* When a hint is too old to deliver: taken longer ago than tombstone-grace
 * (a delete it predates may be reaped) or max-hint-window (anti-entropy
 * repairs what is older), whatever its target's state. */
static int64_t hint_max_age_ms(const struct shard *sh)
{
    const struct cfg *c = sh->node->cfg;
    int64_t age = c->tombstone_grace_s * 1000;
    if (c->max_hint_window_s > 0 && c->max_hint_window_s * 1000 < age)
        age = c->max_hint_window_s * 1000;
    return age;
}

/* ---- recovery ---- */

struct hint_recovery {
    struct hints *h;
    uint32_t file;
};

static void hint_recovered(void *arg, const struct hint_record *r, size_t off, size_t len)
{
    (void)off;
    struct hint_recovery *rc = arg;
    struct hints *h = rc->h;
    if (hint_unix_ms() - (int64_t)r->time_ms > hint_max_age_ms(h->sh)) {
        HINT_STAT_ADD(h, expired, 1); /* too old to deliver: takes no slot */
        return;
    }
    uint32_t t = hint_target_find(h, r->target, true);
    const uint8_t *rec = r->key.ptr - HINT_HEADER_LEN - HINT_BODY_FIXED;
    if (t == UINT32_MAX || hint_add(h, t, rc->file, rec, (uint32_t)len) != 0) {
        log_warn("hints: a recovered hint for %s is not loaded (too many targets or no "
                 "memory); its file is kept",
                 r->target);
        h->files[rc->file].pinned = true;
        HINT_STAT_ADD(h, unloaded, 1);
        return;
    }
    HINT_SET(h->targets[t].bytes, h->targets[t].bytes + len);
    HINT_SET(h->targets[t].count, h->targets[t].count + 1);
    HINT_STAT_ADD(h, recovered, 1);
}

static int hint_seq_cmp(const void *a, const void *b)
{
    const struct hint_file *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return x->shard_of_name < y->shard_of_name ? -1 : x->shard_of_name > y->shard_of_name;
}

/* Reads file f (synchronously: start-up), takes its good records, cuts the
 * rest. */
static void hint_recover_file(struct hints *h, uint32_t f)
{
    char path[1200];
    hint_file_path(h, f, path, sizeof path);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        log_warn("hints: cannot open %s: %s; kept as it is", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        h->files[f].pinned = true;
        HINT_STAT_ADD(h, unloaded, 1);
        return;
    }
    if ((uint64_t)st.st_size > HINT_RECOVER_MAX) {
        log_warn("hints: %s is larger than a hint file can grow (%" PRIu64
                 " bytes); kept as it is, not read",
                 path, (uint64_t)st.st_size);
        close(fd);
        h->files[f].pinned = true;
        HINT_STAT_ADD(h, unloaded, 1);
        return;
    }
    uint8_t *data = mi_malloc(st.st_size ? (size_t)st.st_size : 1);
    size_t got = 0;
    while (data && got < (size_t)st.st_size) {
        ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (!data || got != (size_t)st.st_size) {
        log_warn("hints: cannot read %s; kept as it is", path);
        mi_free(data);
        close(fd);
        h->files[f].pinned = true;
        HINT_STAT_ADD(h, unloaded, 1);
        return;
    }
    size_t skipped = 0;
    struct hint_recovery rc = {h, f};
    size_t good = hint_scan(data, got, hint_recovered, &rc, &skipped);
    if (skipped) {
        log_warn("hints: %s: %zu bytes that are no record skipped between valid ones", path,
                 skipped);
        HINT_STAT_ADD(h, skipped_bytes, skipped);
    }
    if (good < got) {
        log_warn("hints: %s: a torn tail after %zu bytes; cut there (%zu bytes dropped)", path,
                 good, got - good);
        if (ftruncate(fd, (off_t)good) != 0 || fdatasync(fd) != 0)
            log_warn("hints: cannot truncate %s: %s", path, strerror(errno));
    }
    h->files[f].size = good;
    mi_free(data);
    close(fd);
}

static void hint_recover(struct hints *h)
{
    DIR *d = opendir(h->dir);
    if (!d)
        return; /* no hints yet */
    uint32_t nshards = h->sh->node->nshards;
    struct dirent *e;
    while ((e = readdir(d))) {
        unsigned shard;
        uint64_t seq;
        char tail[8];
        if (sscanf(e->d_name, "%u-%16" SCNx64 ".%7s", &shard, &seq, tail) != 3 ||
            strcmp(tail, "log") != 0 || shard % nshards != h->sh->id)
            continue;
        if (hint_file_add(h, shard, seq) < 0)
            break;
        if (shard == h->sh->id && seq >= h->next_seq)
            h->next_seq = seq + 1;
    }
    closedir(d);
    qsort(h->files, h->nfiles, sizeof *h->files, hint_seq_cmp);
    for (uint32_t f = 0; f < h->nfiles; f++)
        hint_recover_file(h, f);
    if (h->stats.recovered)
        log_info("hints: shard %u recovered %" PRIu64 " pending hints from %u files",
                   h->sh->id, h->stats.recovered, h->nfiles);
}

int hint_init(struct shard *sh)
{
    struct hints *h = mi_zalloc(sizeof *h);
    if (!h)
        return -ENOMEM;
    h->sh = sh;
    h->fd = -1;
    h->active = UINT32_MAX;
    buf_init(&h->pend);
    buf_init(&h->infl);
    const char *dir = sh->node->cfg->dir;
    if (dir[0])
        snprintf(h->dir, sizeof h->dir, "%s/hints", dir);
    if (h->dir[0])
        hint_recover(h);
    __atomic_store_n(&sh->hints, h, __ATOMIC_RELEASE); /* other threads read it (INFO) */
    return 0;
}

void hint_fini(struct shard *sh)
{
    struct hints *h = hints_of(sh);
    if (!h)
        return;
    __atomic_store_n(&sh->hints, NULL, __ATOMIC_RELEASE); /* no reader finds it from now */
    for (uint32_t t = 0; t < h->ntargets; t++) {
        struct hint *x = h->targets[t].head;
        while (x) {
            struct hint *next = x->next;
            mi_free(x);
            x = next;
        }
    }
    if (h->fd >= 0)
        close(h->fd);
    buf_fini(&h->pend);
    if (h->writing) /* past shard_drain_log's deadline the kernel may still read it: kept */
        log_warn("hints: shard %u stops with a hint write in flight (%zu bytes); its hints "
                 "were not acknowledged",
                 sh->id, h->infl.len);
    else
        buf_fini(&h->infl);
    mi_free(h->pp);
    mi_free(h->ip);
    mi_free(h->files);
    mi_free(h);
}

/* ---- taking ---- */

static int hint_budget_left(const struct hints *h, const struct hint_target *t, uint64_t len)
{
    const struct node *n = h->sh->node;
    uint64_t share = (uint64_t)n->cfg->hint_max_bytes / n->nshards;
    return t->bytes + len <= share ? 0 : -ENOSPC;
}

int hint_take(struct shard *sh, uint64_t link, const struct wire_msg *wm, const char *target)
{
    struct hints *h = hints_of(sh);
    if (!h || !h->dir[0])
        return -ENOENT;
    struct wire_value_iter it;
    struct hint_record r = {.partition = wm->partition,
                            .time_ms = (uint64_t)hint_unix_ms(),
                            .expire_at_ms = wm->expire_at_ms,
                            .key = wm->key,
                            .meta = wm->meta};
    uint8_t raw[NODEID_BYTES];
    wire_values_init(&it, wm);
    if (!wire_values_next(&it, &r.body) || !nodeid_from_hex(target, raw))
        return -EINVAL; /* before a target slot is taken for it */
    memcpy(r.target, target, WIRE_ID_HEX + 1);
    uint32_t t = hint_target_find(h, target, true);
    if (t == UINT32_MAX) {
        HINT_STAT_ADD(h, refused, 1);
        return -ENOSPC;
    }
    uint64_t len = HINT_HEADER_LEN + (uint64_t)HINT_BODY_FIXED + r.key.len + r.meta.len +
                   r.body.len;
    if (hint_budget_left(h, &h->targets[t], len) != 0) {
        HINT_STAT_ADD(h, refused, 1);
        return -ENOSPC;
    }
    if (hint_grow((void **)&h->pp, h->npend, &h->pcap, sizeof *h->pp) != 0)
        return -ENOMEM;
    size_t at = h->pend.len;
    int rc = hint_encode(&h->pend, &r);
    if (rc < 0) {
        h->pend.len = at;
        h->pend.failed = false;
        return rc;
    }
    h->pp[h->npend++] = (struct hint_pending){link, wm->id, t, (uint32_t)len, NULL};
    struct hint_target *tg = &h->targets[t];
    HINT_SET(tg->bytes, tg->bytes + len);
    HINT_SET(tg->count, tg->count + 1);
    HINT_STAT_ADD(h, taken, 1);
    return 0;
}

static void hint_answer(struct shard *sh, const struct hint_pending *p, bool ok)
{
    static const char why[] = "the stand-in's hint log cannot be written";
    struct wire_msg rm = {.kind = WIRE_REPLY,
                          .id = p->id,
                          .op = WIRE_OP_HINT,
                          .status = ok ? WIRE_CODE_OK : WIRE_CODE_ERROR,
                          .text = {(const uint8_t *)why, ok ? 0 : (uint32_t)sizeof why - 1}};
    int rc = peerlink_reply(sh, p->link, &rm);
    if (rc != 0 && rc != -ENOENT)
        log_debug("hints: a HINT reply could not be sent (%s)", strerror(-rc));
}

/* fsync of directory path: its entries (a new name) survive a crash. */
static int hint_fsync_dir(const char *path)
{
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    int rc = fsync(dfd) == 0 ? 0 : -errno;
    close(dfd);
    return rc;
}

/* Opens a new active file (synchronously: once per HINT_FILE_MAX): the
 * hints directory made and its entry synced in the data directory, the
 * file made new (O_EXCL: an existing one is never cut; its name skipped)
 * and its entry synced. A failure is a write error of the batch. */
static int hint_open_active(struct hints *h)
{
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
    if (mkdir(h->dir, 0755) != 0 && errno != EEXIST)
        return -errno;
    if (!h->dir_synced) {
        int rc = hint_fsync_dir(h->sh->node->cfg->dir);
        if (rc < 0)
            return rc;
        h->dir_synced = true;
    }
    char path[1200];
    int f = -1;
    for (int tries = 0; h->fd < 0; tries++) {
        if ((f = hint_file_add(h, h->sh->id, h->next_seq++)) < 0)
            return f;
        hint_file_path(h, (uint32_t)f, path, sizeof path);
        h->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (h->fd < 0) {
            int err = errno;
            h->files[f].gone = true; /* not ours to delete */
            if (err != EEXIST || tries == 8)
                return -err;
        }
    }
    int rc = hint_fsync_dir(h->dir);
    if (rc < 0) {
        close(h->fd);
        h->fd = -1;
        unlink(path);
        h->files[f].gone = true;
        return rc;
    }
    h->active = (uint32_t)f;
    h->offset = 0;
    return 0;
}

static void hint_submit_write(struct hints *h)
{
    struct io_uring_sqe *sqe = shard_sqe(h->sh);
    io_uring_prep_write(sqe, h->fd, h->infl.data + h->infl_done,
                        (unsigned)(h->infl.len - h->infl_done), h->offset + h->infl_done);
    io_uring_sqe_set_data64(sqe, net_ud(SHARD_OP_HINT_WRITE, 0, 0));
}

/* A taken hint that will not be kept: out of its target's counts. */
static void hint_unpend(struct hints *h, const struct hint_pending *hp)
{
    struct hint_target *t = &h->targets[hp->target];
    HINT_SET(t->bytes, t->bytes - hp->len);
    HINT_SET(t->count, t->count - 1);
}

/* The batch in flight failed: its requests get an error, nothing is kept. */
static void hint_batch_failed(struct hints *h, int err)
{
    log_warn("hints: shard %u cannot write its hint log: %s", h->sh->id, strerror(-err));
    HINT_STAT_ADD(h, write_errors, 1);
    for (uint32_t i = 0; i < h->ninfl; i++) {
        if (h->ip[i].move) { /* stays where it was */
            h->ip[i].move->moving = false;
            h->moving--;
            continue;
        }
        hint_unpend(h, &h->ip[i]);
        hint_answer(h->sh, &h->ip[i], false);
    }
    h->ninfl = 0;
    buf_clear(&h->infl);
    h->writing = h->syncing = false;
}

/* x's copy in the active file is durable: it lives there now. */
static void hint_moved(struct hints *h, struct hint *x)
{
    struct hint_file *from = &h->files[x->file], *to = &h->files[h->active];
    from->live--;
    from->live_bytes -= x->len;
    to->live++;
    to->live_bytes += x->len;
    x->file = h->active;
    x->moving = false;
    h->moving--;
    if (from->live == 0)
        HINT_STAT_ADD(h, compacted, 1);
}

static void hint_batch_durable(struct hints *h)
{
    const uint8_t *p = (const uint8_t *)h->infl.data;
    for (uint32_t i = 0; i < h->ninfl; i++) {
        const struct hint_pending *hp = &h->ip[i];
        if (hp->move) {
            hint_moved(h, hp->move);
        } else if (hint_add(h, hp->target, h->active, p, hp->len) != 0) {
            hint_unpend(h, hp);
            hint_answer(h->sh, hp, false); /* no memory: the coordinator looks elsewhere */
        } else {
            hint_answer(h->sh, hp, true);
        }
        p += hp->len;
    }
    h->offset += h->infl.len;
    h->files[h->active].size = h->offset;
    h->ninfl = 0;
    buf_clear(&h->infl);
    h->writing = h->syncing = false;
}

/* The hints taken since the last batch become the batch in flight. */
static void hint_swap(struct hints *h)
{
    struct buf swap = h->infl;
    h->infl = h->pend;
    h->pend = swap;
    buf_clear(&h->pend);
    struct hint_pending *sp = h->ip;
    uint32_t scap = h->icap;
    h->ip = h->pp, h->icap = h->pcap, h->ninfl = h->npend;
    h->pp = sp, h->pcap = scap, h->npend = 0;
    h->infl_done = 0;
}

void hint_flush(struct shard *sh)
{
    struct hints *h = hints_of(sh);
    if (!h || h->writing || h->npend == 0)
        return;
    int rc = h->fd < 0 || h->offset >= HINT_FILE_MAX ? hint_open_active(h) : 0;
    hint_swap(h);
    if (rc < 0) {
        hint_batch_failed(h, rc);
        return;
    }
    h->writing = true;
    hint_submit_write(h);
}

void hint_on_cqe(struct shard *sh, uint64_t ud, int32_t res)
{
    struct hints *h = hints_of(sh);
    if (!h || !h->writing)
        return;
    if (net_ud_op(ud) == SHARD_OP_HINT_WRITE) {
        if (res <= 0) {
            hint_batch_failed(h, res < 0 ? res : -EIO);
            return;
        }
        h->infl_done += (size_t)res;
        if (h->infl_done < h->infl.len) {
            hint_submit_write(h); /* a short write: the rest */
            return;
        }
        h->syncing = true;
        struct io_uring_sqe *sqe = shard_sqe(sh);
        io_uring_prep_fsync(sqe, h->fd, IORING_FSYNC_DATASYNC);
        io_uring_sqe_set_data64(sqe, net_ud(SHARD_OP_HINT_FSYNC, 0, 0));
        return;
    }
    if (res < 0)
        hint_batch_failed(h, res);
    else
        hint_batch_durable(h);
    hint_flush(sh); /* what came meanwhile */
}

bool hint_busy(const struct shard *sh)
{
    const struct hints *h = hints_of(sh);
    return h && h->writing;
}

/* ---- delivering ---- */

static uint64_t hint_time_ms(const struct hint *x) { return get_u64(x->rec + 36); }
static uint16_t hint_partition(const struct hint *x) { return get_u16(x->rec + 14); }

/* A target's delivery failed (an error, or no answer in time): no send to
 * it before a wait that doubles with each failure in a row. */
static void hint_back_off(struct hint_target *tg)
{
    tg->backoff_ms = tg->backoff_ms ? tg->backoff_ms * 2 : HINT_BACKOFF_MIN_MS;
    if (tg->backoff_ms > HINT_BACKOFF_MAX_MS)
        tg->backoff_ms = HINT_BACKOFF_MAX_MS;
    tg->retry_at_ms = req_now_ms() + tg->backoff_ms;
}

/* A delivery ended: every replica it went to acknowledged (durably; the
 * local apply's log record too): the hint is forgotten; otherwise it stays
 * for a later pass, after the target's back-off. */
static bool hint_sent_done(struct req_table *t, struct req *r, enum req_end how)
{
    struct shard *sh = t->ctx;
    struct hints *h = hints_of(sh);
    struct hint *x = r->owner_ptr;
    if (!x)
        return true;
    struct hint_target *tg = &h->targets[x->target];
    x->req_id = 0;
    tg->inflight--;
    h->inflight--;
    if (how == REQ_END_DONE && !x->failed) {
        tg->backoff_ms = 0;
        hint_delivered(h, x);
        return true;
    }
    x->failed = false;
    hint_back_off(tg);
    return true;
}

/* Deletes files whose hints were all delivered (the active one is cut to
 * nothing when idle). */
static void hint_reclaim(struct hints *h)
{
    for (uint32_t f = 0; f < h->nfiles; f++) {
        struct hint_file *hf = &h->files[f];
        if (hf->gone || hf->live > 0 || hf->pinned)
            continue;
        char path[1200];
        hint_file_path(h, f, path, sizeof path);
        if (f == h->active) {
            if (h->writing || h->npend || h->offset == 0)
                continue;
            if (ftruncate(h->fd, 0) == 0)
                h->offset = hf->size = 0;
            continue;
        }
        if (unlink(path) != 0 && errno != ENOENT)
            log_warn("hints: cannot delete %s: %s", path, strerror(errno));
        hf->gone = true;
    }
}

/* Sends x's state as a SYNC: to its target (addr) when that is still a
 * replica of its partition; otherwise (a ring change moved the partition,
 * or the target left) to the partition's replicas of now, and applied here
 * when this node is one. The hint is forgotten once every one of them
 * acknowledged (hint_sent_done). -ETIME: too old, dropped; -EAGAIN: not now
 * (the target is down and still a replica, no replica is reachable, no
 * view); -ENOMEM, peerlink's errors. */
static int hint_send(struct shard *sh, struct hints *h, struct hint *x, const char *addr)
{
    struct hint_record r;
    size_t used;
    if (hint_decode(x->rec, x->len, &r, &used) != HINT_OK)
        return -EINVAL; /* cannot be: it was checked when taken or read */
    if (hint_unix_ms() - (int64_t)r.time_ms > hint_max_age_ms(sh))
        return -ETIME; /* its write's deletes may be reaped by now: not delivered */
    uint32_t members[HINT_REPLICAS_MAX], n = 0;
    bool is_self = false;
    int at_target = coord_hint_replicas(sh, r.partition, r.target, members, HINT_REPLICAS_MAX, &n,
                                        &is_self);
    if (at_target < 0 || (at_target == 1 && !addr) || (at_target == 0 && n == 0 && !is_self))
        return -EAGAIN;
    uint32_t nsub = at_target == 1 ? 1 : n;
    struct req *rq = req_new(&sh->reqs, nsub, nsub, hint_sent_done, shard_deadline(sh));
    if (!rq)
        return -ENOMEM;
    struct wire_msg wm = {.kind = WIRE_REQUEST,
                          .id = rq->id,
                          .op = WIRE_OP_SYNC,
                          .deadline_ms = (uint32_t)sh->request_timeout_ms,
                          .partition = r.partition,
                          .slot = (uint16_t)keyhash_slot(r.key.ptr, r.key.len),
                          .expire_at_ms = r.expire_at_ms,
                          .key = r.key,
                          .meta = r.meta,
                          .n_values = 1,
                          .values = &r.body};
    int rc = 0;
    uint64_t seq = 0;
    if (at_target == 1) {
        rc = peerlink_request(sh, r.target, addr, &wm);
    } else {
        if (is_self)
            rc = coord_hint_apply(sh, &wm, &seq);
        for (uint32_t k = 0; k < n && rc == 0; k++) {
            wm.id = coord_wire_sub(rq->id, k);
            rc = coord_send_member(sh, members[k], &wm);
        }
        if (rc == 0)
            HINT_STAT_ADD(h, redirected, 1);
    }
    if (rc != 0) { /* what went already is answered to no request: harmless */
        req_cancel(&sh->reqs, rq->id);
        return rc;
    }
    rq->owner_ptr = x;
    x->req_id = rq->id;
    x->failed = false;
    h->targets[x->target].inflight++;
    h->inflight++;
    if (seq)
        req_hold(rq, seq); /* done only once the local apply is durable too */
    req_arm(&sh->reqs, rq);
    return 0;
}

static void hint_deliver(struct shard *sh, struct hints *h)
{
    int64_t now = req_now_ms();
    for (uint32_t t = 0; t < h->ntargets; t++) {
        struct hint_target *tg = &h->targets[t];
        const char *addr = NULL;
        if (!tg->head || now < tg->retry_at_ms)
            continue;
        /* a target that is down waits while it is still a replica of its
         * oldest hint's partition; once it is not (it left, was removed, or
         * the ring changed), its hints go to their partitions' replicas */
        uint32_t none, n;
        bool is_self;
        if (!coord_member_up(sh, tg->id, &addr) &&
            coord_hint_replicas(sh, hint_partition(tg->head), tg->id, &none, 0, &n, &is_self) != 0)
            continue;
        uint32_t waiting = 0;
        for (struct hint *x = tg->head, *next; x && h->tokens > 0; x = next) {
            next = x->next;
            if (h->inflight >= HINT_INFLIGHT_MAX)
                return;
            if (x->req_id || x->moving)
                continue;
            uint32_t len = x->len; /* a local apply alone may end it at once */
            int rc = hint_send(sh, h, x, addr);
            if (rc == -ETIME) {
                hint_forget(h, x);
                HINT_STAT_ADD(h, expired, 1);
                continue;
            }
            if (rc == -EAGAIN && ++waiting < HINT_WAITING_MAX)
                continue; /* this one's replicas are not reachable now */
            if (rc == -EAGAIN)
                break; /* the rest next tick: a pass decodes a bounded number */
            if (rc != 0) {
                hint_back_off(tg);
                break; /* no link now: later */
            }
            h->tokens -= len;
            if (!tg->round_start_ms)
                tg->round_start_ms = now;
        }
    }
}

/* Refills the token bucket: hint-max-bytes-per-sec over the shards, at
 * most a tenth of a second's worth banked. */
static void hint_refill(struct shard *sh, struct hints *h, int64_t now_ms)
{
    const struct node *n = sh->node;
    double rate = (double)n->cfg->hint_max_bytes_per_sec / n->nshards;
    double cap = rate / 10 < 65536 ? 65536 : rate / 10;
    if (h->tokens_ms)
        h->tokens += rate * (double)(now_ms - h->tokens_ms) / 1000.0;
    h->tokens_ms = now_ms;
    if (h->tokens > cap)
        h->tokens = cap;
}

/* Expiry (whatever the target's state), and free slots. */
static void hint_expire(struct shard *sh, struct hints *h)
{
    int64_t now_unix = hint_unix_ms(), max_age = hint_max_age_ms(sh);
    for (uint32_t t = 0; t < h->ntargets; t++) {
        struct hint_target *tg = &h->targets[t];
        if (!tg->id[0])
            continue;
        for (struct hint *x = tg->head, *next; x; x = next) {
            next = x->next;
            if (x->req_id || x->moving)
                continue;
            if (now_unix - (int64_t)hint_time_ms(x) > max_age) {
                hint_forget(h, x);
                HINT_STAT_ADD(h, expired, 1);
            } else {
                break; /* oldest first: the rest are younger */
            }
        }
        if (!tg->head && tg->count == 0 && tg->inflight == 0)
            hint_target_set_id(tg, NULL); /* free for another id */
    }
}

/* Compaction: while the files other than the active one hold more than
 * HINT_FILE_MAX bytes beyond their live records, the one with the most dead
 * bytes has its pending hints (those not in flight) copied into the active
 * file, in the next batch; once durable they live there and the emptied
 * file is deleted. Disk stays within the live hints plus about two files.
 * One file at a time. */
static void hint_compact(struct hints *h)
{
    if (h->moving || h->writing)
        return;
    uint64_t disk = 0, live = 0, most = 0;
    uint32_t pick = UINT32_MAX;
    for (uint32_t f = 0; f < h->nfiles; f++) {
        const struct hint_file *hf = &h->files[f];
        if (hf->gone || hf->pinned || f == h->active || hf->live == 0)
            continue;
        disk += hf->size;
        live += hf->live_bytes;
        if (hf->size - hf->live_bytes > most)
            most = hf->size - hf->live_bytes, pick = f;
    }
    if (pick == UINT32_MAX || disk <= live + HINT_FILE_MAX)
        return;
    for (uint32_t t = 0; t < h->ntargets; t++) {
        for (struct hint *x = h->targets[t].head; x; x = x->next) {
            if (x->file != pick || x->req_id)
                continue;
            if (hint_grow((void **)&h->pp, h->npend, &h->pcap, sizeof *h->pp) != 0 ||
                buf_reserve(&h->pend, x->len) != 0) {
                h->pend.failed = false;
                return; /* no memory: what is queued goes, the rest later */
            }
            buf_append(&h->pend, x->rec, x->len);
            h->pp[h->npend++] = (struct hint_pending){0, 0, t, x->len, x};
            x->moving = true;
            h->moving++;
        }
    }
}

void hint_tick(struct shard *sh, int64_t now_ms)
{
    struct hints *h = hints_of(sh);
    if (!h || (h->ntargets == 0 && h->nfiles == 0))
        return; /* never hinted: a cluster of one pays nothing */
    hint_expire(sh, h);
    hint_refill(sh, h, now_ms);
    hint_deliver(sh, h);
    hint_compact(h);
    hint_reclaim(h);
}

bool hint_on_reply(struct shard *sh, const struct wire_msg *wm)
{
    struct hints *h = hints_of(sh);
    if (!h || h->inflight == 0)
        return false;
    uint32_t sub;
    struct req *r = req_find(&sh->reqs, coord_reply_req(wm->id, &sub));
    if (!r || r->done != hint_sent_done)
        return false;
    struct hint *x = r->owner_ptr;
    bool ok = wm->status == WIRE_CODE_OK;
    if (x && !ok)
        x->failed = true; /* kept; its target backs off (hint_sent_done) */
    req_sub_done(&sh->reqs, r); /* the last one ends it (hint_sent_done) */
    if (ok) { /* more may go now; after an error nothing is resent at once */
        hint_refill(sh, h, req_now_ms());
        hint_deliver(sh, h);
    }
    return true;
}

/* ---- what others read ---- */

/* Shard s's hints from another thread: NULL until hint_init() published them. */
static const struct hints *hints_read(const struct node *n, uint32_t s)
{
    const struct shard *sh = n->shards ? n->shards[s] : NULL;
    return sh ? __atomic_load_n(&sh->hints, __ATOMIC_ACQUIRE) : NULL;
}

uint64_t hint_pending(const struct node *n, const char *target, uint64_t *count)
{
    uint64_t bytes = 0, c = 0;
    for (uint32_t s = 0; s < n->nshards; s++) {
        const struct hints *h = hints_read(n, s);
        if (!h)
            continue;
        uint32_t nt = __atomic_load_n(&h->ntargets, __ATOMIC_ACQUIRE);
        for (uint32_t t = 0; t < nt; t++) {
            char id[WIRE_ID_HEX + 1];
            uint64_t b, k;
            if (!hint_target_read(&h->targets[t], id, &b, &k) || strcmp(id, target) != 0)
                continue;
            bytes += b;
            c += k;
        }
    }
    if (count)
        *count = c;
    return bytes;
}

void hint_each_target(const struct node *n, hint_target_fn fn, void *arg)
{
    for (uint32_t s = 0; s < n->nshards; s++) {
        const struct hints *h = hints_read(n, s);
        uint32_t nt = h ? __atomic_load_n(&h->ntargets, __ATOMIC_ACQUIRE) : 0;
        for (uint32_t t = 0; t < nt; t++) {
            char id[WIRE_ID_HEX + 1], other[WIRE_ID_HEX + 1];
            uint64_t b, k;
            if (!hint_target_read(&h->targets[t], id, &b, &k))
                continue;
            bool seen = false; /* listed by an earlier shard */
            for (uint32_t s2 = 0; s2 < s && !seen; s2++) {
                const struct hints *h2 = hints_read(n, s2);
                uint32_t nt2 = h2 ? __atomic_load_n(&h2->ntargets, __ATOMIC_ACQUIRE) : 0;
                for (uint32_t j = 0; j < nt2 && !seen; j++)
                    seen = hint_target_read(&h2->targets[j], other, &b, &k) &&
                           strcmp(other, id) == 0;
            }
            if (!seen) {
                uint64_t count, bytes = hint_pending(n, id, &count);
                fn(arg, id, bytes, count);
            }
        }
    }
}

struct hint_info_line {
    struct buf *out;
    uint32_t k;
};

static void hint_info_target(void *arg, const char *id, uint64_t bytes, uint64_t count)
{
    struct hint_info_line *l = arg;
    buf_printf(l->out, "ringkv_hints_target%u:id=%s,hints=%" PRIu64 ",bytes=%" PRIu64 "\r\n",
               l->k++, id, count, bytes);
}

void hint_info(const struct node *n, struct buf *out)
{
    struct hint_stats sum = {0};
    uint64_t bytes = 0, count = 0;
    for (uint32_t s = 0; s < n->nshards; s++) {
        const struct hints *h = hints_read(n, s);
        if (!h)
            continue;
#define HINT_SUM(f) sum.f += __atomic_load_n(&h->stats.f, __ATOMIC_RELAXED)
        HINT_SUM(taken);
        HINT_SUM(delivered);
        HINT_SUM(refused);
        HINT_SUM(recovered);
        HINT_SUM(write_errors);
        HINT_SUM(expired);
        HINT_SUM(unloaded);
        HINT_SUM(skipped_bytes);
        HINT_SUM(redirected);
        HINT_SUM(compacted);
#undef HINT_SUM
        uint32_t nt = __atomic_load_n(&h->ntargets, __ATOMIC_ACQUIRE);
        for (uint32_t t = 0; t < nt; t++) {
            char id[WIRE_ID_HEX + 1];
            uint64_t b, k;
            if (hint_target_read(&h->targets[t], id, &b, &k))
                bytes += b, count += k;
        }
    }
    buf_printf(out,
               "ringkv_hints_pending:%" PRIu64 "\r\nringkv_hints_pending_bytes:%" PRIu64
               "\r\nringkv_hints_taken:%" PRIu64 "\r\nringkv_hints_delivered:%" PRIu64
               "\r\nringkv_hints_refused:%" PRIu64 "\r\nringkv_hints_recovered:%" PRIu64
               "\r\nringkv_hints_write_errors:%" PRIu64 "\r\nringkv_hints_expired:%" PRIu64
               "\r\nringkv_hints_unloaded:%" PRIu64 "\r\nringkv_hints_skipped_bytes:%" PRIu64
               "\r\nringkv_hints_redirected:%" PRIu64 "\r\nringkv_hints_compacted:%" PRIu64
               "\r\n",
               count, bytes, sum.taken, sum.delivered, sum.refused, sum.recovered,
               sum.write_errors, sum.expired, sum.unloaded, sum.skipped_bytes, sum.redirected,
               sum.compacted);
    struct hint_info_line l = {out, 0};
    hint_each_target(n, hint_info_target, &l);
}
