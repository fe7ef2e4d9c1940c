/* table.c: the shard's hash table (see table.h).
 * Threads: the owner runs everything except table_find() and the reader calls,
 * which registered readers may run at the same time (SPMC).
 * Parts: everything below is per part (struct table_part): the table is one
 * part (`whole`) until table_split() publishes `tops`, one part per
 * partition, made on its first key and kept. Readers see a part only as its
 * top word (the oldest array holding keys and its log2 size, in one
 * atomic word: no array header to load before the home slot), whole_top or
 * tops[p] (8 bytes a partition: a lookup's metadata stays in cache); the
 * part structs are the owner's. Split copies whole's slots into new parts'
 * arrays before tops is published and retires whole's array (the entries
 * are the same), so a reader still in whole finds every key. A split
 * table's prefetch also writes each hash's part into `memo` (64 words by
 * the hash's low bits: its high bits and the part), which the lookup or
 * write after it tries first instead of the partition function (a write
 * takes it where it finds the key there: an overwrite; a new key asks the
 * function, a key living in one part only). Reclamation, the
 * totals (count, overhead) and the list of resizing parts (`draining`,
 * which table_step() migrates) are the table's. A split table's scan cursor
 * carries the partition in its top 14 bits (see cursor_pack); parts are
 * walked in partition order.
 * Structure (of a part): a chain of slot arrays, oldest first: normally one; during a
 * resize `old` drains into `cur`. Readers start at `top` (the oldest array
 * holding keys) and follow `next`; a drained array keeps its `next` until the
 * epoch frees it, so a reader that started on it still reaches newer arrays.
 * Slots: 0 empty, 1 tombstone, 2 moved (to `next`), else tag << 48 | entry
 * pointer, the tag being hash bits 16..31. A key lives in one array; the owner
 * moves it by storing it in cur, then marking its old slot moved (release
 * stores; readers load with acquire), so a reader that sees "moved" sees the
 * copy too. Invariants:
 *  - a key's probe path (home .. its slot) holds no empty slot while the key
 *    is there: removal leaves a tombstone unless the next slot is empty, and
 *    tombstones are emptied backwards only from an empty slot;
 *  - a draining array only changes entry -> moved and takes no inserts;
 *  - live keys + cur's tombstones <= 70% of cur, so probes end. A new key past
 *    that drains old (a bounded finish), then resizes to put the keys at <= 40%
 *    load: double, same size (tombstones dominated) or smaller. Removes shrink
 *    the table below 10% live.
 * Each write first migrates the old cluster from its key's home slot to the
 * next empty slot (so the key is in cur before it is touched), then at most
 * TABLE_WRITE_MOVES entries / TABLE_WRITE_SLOTS slots of the sequential
 * migration (sparse arrays drain fast); table_step() migrates its budget.
 * Reclamation: retired entries and arrays collect in one vector (a batch);
 * table_step() hands it to ck_epoch_call() as one deferred free and polls
 * with ck_epoch_poll(), so the owner never waits for readers. Entry hashes
 * are recomputed with keyhash() when migrating and scanning. */
#include "table.h"

#include <ck_epoch.h>
#include <errno.h>
#include <mimalloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyhash.h"

#define SLOT_EMPTY 0ull
#define SLOT_TOMB 1ull
#define SLOT_MOVED 2ull
#define SLOT_PTR_BITS 48
#define SLOT_PTR_MASK ((1ull << SLOT_PTR_BITS) - 1)

#define TABLE_MIN_LOG2 4     /* 16 slots */
#define TABLE_WRITE_MOVES 4  /* per write, besides its cluster: entries moved, */
#define TABLE_WRITE_SLOTS 64 /* and old slots looked at (empty ones are cheap) */
#define TABLE_BATCH_MIN 64   /* first capacity of a retire batch */
#define TABLE_NOT_FOUND SIZE_MAX
#define TABLE_MIGRATE_AT_ONCE 256 /* old arrays up to this many slots drain at once */
#define TABLE_MIGRATE_AHEAD 8    /* entries prefetched ahead when draining at once */
#define TABLE_MEMO 64                  /* prefetched hashes whose part is remembered */
#define TABLE_PREFETCH_PATH 8          /* slots of a probe path a prefetch follows */
#define TABLE_MEMO_PART 0x3fffull      /* a memo word's part bits (parts <= 16384) */

struct table_array {
    struct table_array *next; /* the array this one drains into; set once, release */
    size_t mask;              /* slots - 1 */
    unsigned shift;           /* 64 - log2(slots): home slot = hash >> shift */
    uint64_t slots[];
};

/* Pointers (entries, arrays) freed together once no reader can hold them. */
struct table_batch {
    ck_epoch_entry_t epoch_entry;
    struct table *t;
    size_t n;
    size_t cap;
    void *ptrs[];
};

struct table_reader {
    ck_epoch_record_t rec;     /* first: ck_epoch_recycle() hands back &rec */
    struct table_reader *next; /* every reader allocated, freed by table_destroy() */
};

/* One hash table: the whole table's, or (split) one partition's. Owner only;
 * readers see its top word. */
struct table_part {
    uint64_t *top;                     /* its top word (top_pack): whole_top or tops[p] */
    struct table_array *cur;           /* takes inserts; NULL: a partition with no part yet */
    struct table_array *old;           /* draining into cur, or NULL */
    size_t old_pos;                    /* next old slot the sequential migration visits */
    size_t old_live;                   /* entries still in old */
    size_t cur_tombs;                  /* tombstones in cur */
    size_t count;                      /* live keys */
    struct table_part *next_draining;  /* the list of parts table_step() migrates */
    bool in_draining;
};

struct table {
    /* Read by any thread. */
    uint64_t *tops;     /* split: nparts top words (0: no part yet), published
                           (release) once filled; NULL: whole_top */
    uint64_t whole_top; /* whole's top word (stays for readers after the split) */
    size_t count;       /* live keys; relaxed */
    size_t overhead;    /* bytes of every cur + old slot array; relaxed */
    uint32_t nparts;    /* set before tops is published */
    table_part_fn *part_of;
    const void *part_arg;
    uint64_t memo[TABLE_MEMO]; /* split: by hash's low bits, its high bits and the part a
                                  prefetch found (owner writes, anyone reads; relaxed) */
    /* Owner only. */
    struct table_part whole;      /* the one part until split */
    struct table_part *parts;     /* split: nparts parts (cur NULL: not made) */
    struct table_part *draining;  /* parts whose resize may be under way */
    uint32_t *made;               /* split: the partitions with a part, in order made */
    uint32_t n_made;
    size_t part_max;              /* split: >= every part's count (sampling) */
    struct table_batch *batch;    /* retired, not yet handed to the epoch */
    size_t batches_in_flight;     /* handed to the epoch, not yet freed */
    struct table_reader *readers; /* pushed with CAS by reader threads */
    ck_epoch_t epoch;
    ck_epoch_record_t owner_rec; /* the owner's record: call and poll, never begin */
};

static inline struct table_entry *slot_entry(uint64_t v)
{
    return (struct table_entry *)(uintptr_t)(v & SLOT_PTR_MASK);
}

static inline bool slot_is_entry(uint64_t v)
{
    return v > SLOT_MOVED;
}
static inline bool slot_is_free(uint64_t v)
{
    return v == SLOT_EMPTY || v == SLOT_TOMB;
}
static inline uint64_t hash_tag(uint64_t hash)
{
    return (hash >> 16) & 0xffff;
}

static inline uint64_t slot_make(const struct table_entry *e, uint64_t hash)
{
    return hash_tag(hash) << SLOT_PTR_BITS | (uint64_t)(uintptr_t)e;
}

static inline size_t array_slots(const struct table_array *a)
{
    return a->mask + 1;
}
static inline size_t array_home(const struct table_array *a, uint64_t hash)
{
    return (size_t)(hash >> a->shift);
}

static inline void slot_publish(uint64_t *slot, uint64_t v)
{
    __atomic_store_n(slot, v, __ATOMIC_RELEASE);
}

static inline uint64_t entry_hash(const struct table_entry *e)
{
    return keyhash(e->data, e->key_len);
}

/* The partition of a key in a split table (a bad answer of part_of goes to 0,
 * the same way every time). */
static inline uint32_t part_index(const struct table *t, const void *key, uint32_t key_len,
                                  uint64_t hash)
{
    uint32_t p = t->part_of(t->part_arg, key, key_len, hash);
    return __builtin_expect(p < t->nparts, 1) ? p : 0;
}

/* A top word: the array's address (48 bits) and its log2 size above it. */
static inline uint64_t top_pack(const struct table_array *a)
{
    return (uint64_t)(64 - a->shift) << SLOT_PTR_BITS | (uint64_t)(uintptr_t)a;
}
static inline const struct table_array *top_array(uint64_t w)
{
    return (const struct table_array *)(uintptr_t)(w & SLOT_PTR_MASK);
}
static inline unsigned top_log2(uint64_t w)
{
    return (unsigned)(w >> SLOT_PTR_BITS);
}

/* Owner: the part that holds the key, if made. */
static inline struct table_part *part_of_key(struct table *t, const void *key, uint32_t key_len,
                                             uint64_t hash)
{
    if (__builtin_expect(t->parts == NULL, 1))
        return &t->whole;
    struct table_part *tp = &t->parts[part_index(t, key, key_len, hash)];
    return tp->cur ? tp : NULL;
}

struct table_entry *table_entry_alloc_flags(uint32_t key_len, size_t val_cap, uint32_t flags)
{
    size_t extra = (flags & TABLE_ENTRY_LSN) ? sizeof(uint64_t) : 0;
    if (val_cap > SIZE_MAX - sizeof(struct table_entry) - key_len - extra)
        return NULL;
    struct table_entry *e = mi_malloc(sizeof *e + key_len + val_cap + extra);
    if (!e)
        return NULL;
    /* Slots keep the tag in the top 16 bits: x86-64 user addresses fit in 48
     * bits unless a mapping is asked for above 2^47, which we never do. */
    if ((uintptr_t)e >> SLOT_PTR_BITS) {
        fprintf(stderr, "table: entry address %p does not fit in 48 bits\n", (void *)e);
        abort();
    }
    memset(e, 0, sizeof *e);
    e->key_len = key_len;
    e->meta = flags & ~TABLE_ENTRY_LRU_MASK;
    return e;
}

struct table_entry *table_entry_alloc(uint32_t key_len, size_t val_cap)
{
    return table_entry_alloc_flags(key_len, val_cap, 0);
}

/* The log position lives in the allocation's last 8 bytes (usable sizes are
 * multiples of 8), past any room an in-place append may use. */
static char *entry_lsn_slot(const struct table_entry *e)
{
    return (char *)e + mi_usable_size(e) - sizeof(uint64_t);
}

uint64_t table_entry_lsn(const struct table_entry *e)
{
    uint64_t lsn;
    memcpy(&lsn, entry_lsn_slot(e), sizeof lsn);
    return lsn;
}

void table_entry_set_lsn(struct table_entry *e, uint64_t lsn)
{
    memcpy(entry_lsn_slot(e), &lsn, sizeof lsn);
}

size_t table_entry_val_cap(const struct table_entry *e)
{
    size_t extra = (e->meta & TABLE_ENTRY_LSN) ? sizeof(uint64_t) : 0;
    return mi_usable_size(e) - sizeof *e - e->key_len - extra;
}

size_t table_entry_mem(const struct table_entry *e)
{
    return mi_usable_size(e);
}

void table_entry_free(struct table_entry *e)
{
    mi_free(e);
}

/* Smallest log2 size (at least the minimum) with n * den <= slots * num. */
static unsigned log2_for(size_t n, size_t num, size_t den)
{
    unsigned log2 = TABLE_MIN_LOG2;
    while (n * den > ((size_t)1 << log2) * num)
        log2++;
    return log2;
}

static size_t max_load(const struct table_array *a)
{
    return array_slots(a) * 7 / 10;
}

static struct table_array *array_new(unsigned log2)
{
    size_t n = (size_t)1 << log2;
    struct table_array *a = mi_zalloc(sizeof *a + n * sizeof a->slots[0]);
    if (!a)
        return NULL;
    a->mask = n - 1;
    a->shift = 64 - log2;
    return a;
}

static size_t array_bytes(const struct table_array *a)
{
    return array_slots(a) * sizeof(uint64_t);
}

/* The owner is the only writer of both totals. */
static void overhead_add(struct table *t, ptrdiff_t bytes)
{
    __atomic_store_n(&t->overhead, t->overhead + (size_t)bytes, __ATOMIC_RELAXED);
}

static void count_add(struct table *t, struct table_part *tp, ptrdiff_t n)
{
    tp->count += (size_t)n;
    if (t->parts && tp->count > t->part_max)
        t->part_max = tp->count;
    __atomic_store_n(&t->count, t->count + (size_t)n, __ATOMIC_RELAXED);
}

/* --- Reclamation ------------------------------------------------------------ */

static void batch_free(ck_epoch_entry_t *ee)
{
    struct table_batch *b = (struct table_batch *)ee;
    b->t->batches_in_flight--;
    for (size_t i = 0; i < b->n; i++)
        mi_free(b->ptrs[i]);
    mi_free(b);
}

/* p is unreachable from top for any reader that starts from now on. */
static void retire_ptr(struct table *t, void *p)
{
    struct table_batch *b = t->batch;
    if (!b || b->n == b->cap) {
        size_t cap = b ? b->cap * 2 : TABLE_BATCH_MIN;
        b = mi_realloc(b, sizeof *b + cap * sizeof b->ptrs[0]);
        if (!b) {
            /* Out of memory: wait for the readers instead (blocks, but only here). */
            ck_epoch_synchronize(&t->owner_rec);
            mi_free(p);
            return;
        }
        if (!t->batch) {
            b->t = t;
            b->n = 0;
        }
        b->cap = cap;
        t->batch = b;
    }
    b->ptrs[b->n++] = p;
}

void table_retire(struct table *t, struct table_entry *e)
{
    if (e)
        retire_ptr(t, e);
}

static void reclaim(struct table *t)
{
    if (t->batch) {
        t->batches_in_flight++;
        ck_epoch_call(&t->owner_rec, &t->batch->epoch_entry, batch_free);
        t->batch = NULL;
    }
    if (t->batches_in_flight)
        ck_epoch_poll(&t->owner_rec);
}

/* --- Lookup ----------------------------------------------------------------- */

/* The key among 2^log2 slots (the array's, its size given, so that the
 * array's header need not be read). */
static struct table_entry *slots_find(const uint64_t *slots, unsigned log2, const void *key,
                                      uint32_t key_len, uint64_t hash)
{
    size_t mask = ((size_t)1 << log2) - 1;
    uint64_t tag = hash_tag(hash);
    for (size_t i = (size_t)(hash >> (64 - log2));; i = (i + 1) & mask) {
        uint64_t v = __atomic_load_n(&slots[i], __ATOMIC_ACQUIRE);
        if (v == SLOT_EMPTY)
            return NULL;
        if ((v >> SLOT_PTR_BITS) == tag && slot_is_entry(v)) {
            struct table_entry *e = slot_entry(v);
            if (e->key_len == key_len && memcmp(e->data, key, key_len) == 0)
                return e;
        }
    }
}

/* The key in the part whose top word is w (0: none). */
static struct table_entry *word_find(uint64_t w, const void *key, uint32_t key_len, uint64_t hash)
{
    if (!w)
        return NULL;
    /* the top array's size is in its word: its header is read only when
     * the key is not there (a resize under way) */
    struct table_entry *e = slots_find(top_array(w)->slots, top_log2(w), key, key_len, hash);
    if (e)
        return e;
    for (const struct table_array *a = __atomic_load_n(&top_array(w)->next, __ATOMIC_ACQUIRE); a;
         a = __atomic_load_n(&a->next, __ATOMIC_ACQUIRE)) {
        e = slots_find(a->slots, 64 - a->shift, key, key_len, hash);
        if (e)
            return e;
    }
    return NULL;
}

/* The part a prefetch named for this hash (the memo), if any: a guess to be
 * checked by finding the key there, UINT32_MAX when there is none. */
static inline uint32_t memo_guess(const struct table *t, uint64_t hash)
{
    uint64_t m = __atomic_load_n(&t->memo[hash & (TABLE_MEMO - 1)], __ATOMIC_RELAXED);
    if (((m ^ hash) & ~TABLE_MEMO_PART) == 0 && (uint32_t)(m & TABLE_MEMO_PART) < t->nparts)
        return (uint32_t)(m & TABLE_MEMO_PART);
    return UINT32_MAX;
}

struct table_entry *table_find(const struct table *t, const void *key, uint32_t key_len,
                               uint64_t hash)
{
    const uint64_t *tops = __atomic_load_n(&t->tops, __ATOMIC_ACQUIRE);
    if (__builtin_expect(tops == NULL, 1))
        return word_find(__atomic_load_n(&t->whole_top, __ATOMIC_ACQUIRE), key, key_len, hash);
    /* A prefetch just named this hash's part (the memo): look there first,
     * sparing the partition function. A key lives in one part only, so
     * finding it there is the answer; not finding it (a memo word of
     * another key with the same hash bits, however unlikely) asks the
     * partition function. */
    uint32_t guess = memo_guess(t, hash);
    if (guess != UINT32_MAX) {
        struct table_entry *e =
            word_find(__atomic_load_n(&tops[guess], __ATOMIC_ACQUIRE), key, key_len, hash);
        if (e)
            return e;
    }
    uint32_t p = part_index(t, key, key_len, hash);
    return p == guess ? NULL
                      : word_find(__atomic_load_n(&tops[p], __ATOMIC_ACQUIRE), key, key_len, hash);
}

void table_prefetch(const struct table *t, const struct table_probe *probes, size_t n)
{
    const uint64_t *home[TABLE_PREFETCH_MAX];
    uint64_t room[TABLE_PREFETCH_MAX]; /* slots from home to the array's end */
    if (n > TABLE_PREFETCH_MAX)
        n = TABLE_PREFETCH_MAX;
    const uint64_t *tops = __atomic_load_n(&t->tops, __ATOMIC_ACQUIRE);
    for (size_t i = 0; i < n; i++) {
        uint64_t w;
        if (tops) { /* the part, named in the memo for the lookup to come */
            uint32_t p = part_index(t, probes[i].key, probes[i].key_len, probes[i].hash);
            w = __atomic_load_n(&tops[p], __ATOMIC_ACQUIRE);
            __atomic_store_n((uint64_t *)&t->memo[probes[i].hash & (TABLE_MEMO - 1)],
                             (probes[i].hash & ~TABLE_MEMO_PART) | p, __ATOMIC_RELAXED);
        } else {
            w = __atomic_load_n(&t->whole_top, __ATOMIC_ACQUIRE);
        }
        home[i] = NULL;
        if (w) {
            uint64_t at = probes[i].hash >> (64 - top_log2(w));
            home[i] = &top_array(w)->slots[at];
            room[i] = ((uint64_t)1 << top_log2(w)) - at;
            __builtin_prefetch(home[i]);
        }
    }
    /* The slots are in (or on their way): the entry of the first slot on
     * the key's probe path whose tag is its hash's. A key is often a slot or
     * two past its home (linear probing at 35 to 70% load), so the path is
     * followed to its end within TABLE_PREFETCH_PATH slots, most often the
     * same cache line. */
    for (size_t i = 0; i < n; i++) {
        if (!home[i])
            continue;
        uint64_t tag = hash_tag(probes[i].hash);
        uint64_t len = room[i] < TABLE_PREFETCH_PATH ? room[i] : TABLE_PREFETCH_PATH;
        for (uint64_t j = 0; j < len; j++) {
            uint64_t v = __atomic_load_n(&home[i][j], __ATOMIC_ACQUIRE);
            if (v == SLOT_EMPTY)
                break;
            if (slot_is_entry(v) && (v >> SLOT_PTR_BITS) == tag) {
                /* an entry is rarely line-aligned (mimalloc blocks of 80,
                 * 96, 112 bytes): its key_len and key may be in its second
                 * line, and a small value's version in its third */
                uintptr_t e = (uintptr_t)slot_entry(v); /* (an address: may pass a small entry) */
                __builtin_prefetch((const void *)e);
                __builtin_prefetch((const void *)(e + 64));
                __builtin_prefetch((const void *)(e + 127));
                break;
            }
        }
    }
}

/* Owner: the key's slot in a, or TABLE_NOT_FOUND with *free_slot set to the
 * first tombstone on its probe path, else the empty slot that ended it. */
static size_t array_probe(const struct table_array *a, const void *key, uint32_t key_len,
                          uint64_t hash, size_t *free_slot)
{
    uint64_t tag = hash_tag(hash);
    size_t i = array_home(a, hash);
    size_t tomb = TABLE_NOT_FOUND;
    for (;; i = (i + 1) & a->mask) {
        uint64_t v = a->slots[i];
        if (v == SLOT_EMPTY)
            break;
        if (v == SLOT_TOMB) {
            if (tomb == TABLE_NOT_FOUND)
                tomb = i;
            continue;
        }
        struct table_entry *e = slot_entry(v);
        if ((v >> SLOT_PTR_BITS) == tag && e->key_len == key_len &&
            memcmp(e->data, key, key_len) == 0)
            return i;
    }
    *free_slot = tomb != TABLE_NOT_FOUND ? tomb : i;
    return TABLE_NOT_FOUND;
}

/* --- Resize ----------------------------------------------------------------- */

/* Stores v in cur's free slot i. */
static void cur_fill(struct table_part *tp, size_t i, uint64_t v)
{
    if (tp->cur->slots[i] == SLOT_TOMB)
        tp->cur_tombs--;
    slot_publish(&tp->cur->slots[i], v);
}

static void resize_finish(struct table *t, struct table_part *tp)
{
    __atomic_store_n(tp->top, top_pack(tp->cur), __ATOMIC_RELEASE);
    overhead_add(t, -(ptrdiff_t)array_bytes(tp->old));
    retire_ptr(t, tp->old);
    tp->old = NULL;
}

/* Moves old slot i's entry, if any, to cur: published there before it is
 * marked moved here, so a reader never misses it. May finish the resize. */
static void migrate_slot(struct table *t, struct table_part *tp, size_t i)
{
    uint64_t v = tp->old->slots[i];
    if (!slot_is_entry(v))
        return;
    uint64_t hash = entry_hash(slot_entry(v));
    const struct table_array *cur = tp->cur;
    size_t j = array_home(cur, hash);
    while (!slot_is_free(cur->slots[j]))
        j = (j + 1) & cur->mask;
    cur_fill(tp, j, v);
    slot_publish(&tp->old->slots[i], SLOT_MOVED);
    if (--tp->old_live == 0)
        resize_finish(t, tp);
}

/* Sequential migration: stops after `slots` old slots or `moves` entries,
 * or at the resize's end. Returns the old slots it looked at. */
static size_t migrate_some(struct table *t, struct table_part *tp, size_t slots, size_t moves)
{
    size_t seen = 0;
    while (seen < slots && moves > 0 && tp->old) {
        moves -= slot_is_entry(tp->old->slots[tp->old_pos]);
        seen++;
        migrate_slot(t, tp, tp->old_pos++);
    }
    return seen;
}

/* Before a write of `hash`: its old cluster (home to the next empty slot)
 * moves, so the key is in cur if anywhere, then a few slots more. */
static void migrate_for_write(struct table *t, struct table_part *tp, uint64_t hash)
{
    const struct table_array *old = tp->old;
    size_t i = array_home(old, hash);
    while (tp->old && old->slots[i] != SLOT_EMPTY) {
        migrate_slot(t, tp, i);
        i = (i + 1) & old->mask;
    }
    migrate_some(t, tp, TABLE_WRITE_SLOTS, TABLE_WRITE_MOVES);
}

/* Starts moving every key of tp into a new array of 2^log2 slots. Needs
 * old == NULL. 0 or -ENOMEM (nothing changed). */
static int resize_start(struct table *t, struct table_part *tp, unsigned log2)
{
    struct table_array *a = array_new(log2);
    if (!a)
        return -ENOMEM;
    tp->old = tp->cur;
    tp->old_pos = 0;
    tp->old_live = tp->count;
    tp->cur = a;
    tp->cur_tombs = 0;
    __atomic_store_n(&tp->old->next, a, __ATOMIC_RELEASE);
    overhead_add(t, (ptrdiff_t)array_bytes(a));
    if (tp->old_live == 0) {
        resize_finish(t, tp);
    } else if (!tp->in_draining) {
        tp->in_draining = true;
        tp->next_draining = t->draining;
        t->draining = tp;
    }
    return 0;
}

/* Moves every key left in old, prefetching entries a few slots ahead
 * (each move reads its entry's key to hash it). */
static void migrate_rest(struct table *t, struct table_part *tp)
{
    const struct table_array *old = tp->old;
    size_t n = old ? array_slots(old) : 0;
    for (size_t i = tp->old_pos; i < n && i < tp->old_pos + TABLE_MIGRATE_AHEAD; i++)
        if (slot_is_entry(old->slots[i]))
            __builtin_prefetch(slot_entry(old->slots[i]));
    while (tp->old) { /* ends at the last entry: old_live counts them */
        size_t ahead = tp->old_pos + TABLE_MIGRATE_AHEAD;
        if (ahead < n && slot_is_entry(old->slots[ahead]))
            __builtin_prefetch(slot_entry(old->slots[ahead]));
        migrate_slot(t, tp, tp->old_pos++);
    }
}

/* Makes room for one more key: finishes a resize in progress, then resizes to
 * put the keys at <= 40% load. A split table's small part moves its keys at
 * once: a few microseconds, where draining them write by write would hold
 * both arrays for most of the part's next growth (a cluster's parts are a
 * few hundred slots each, and all grow at about the same time). */
static int make_room(struct table *t, struct table_part *tp)
{
    migrate_rest(t, tp);
    int rc = resize_start(t, tp, log2_for(tp->count + 1, 2, 5));
    if (rc == 0 && tp != &t->whole && tp->old && array_slots(tp->old) <= TABLE_MIGRATE_AT_ONCE)
        migrate_rest(t, tp);
    return rc;
}

static void maybe_shrink(struct table *t, struct table_part *tp)
{
    size_t slots = array_slots(tp->cur);
    if (tp->old || slots <= ((size_t)1 << TABLE_MIN_LOG2) || tp->count >= slots / 10)
        return;
    /* Out of memory only keeps the bigger array. */
    (void)resize_start(t, tp, log2_for(tp->count, 2, 5));
}

/* --- Parts ------------------------------------------------------------------ */

/* Gives tp (its top word at top) an empty array of 2^log2 slots, published. */
static int part_init(struct table *t, struct table_part *tp, uint64_t *top, unsigned log2)
{
    tp->cur = array_new(log2);
    if (!tp->cur)
        return -ENOMEM;
    tp->top = top;
    overhead_add(t, (ptrdiff_t)array_bytes(tp->cur));
    __atomic_store_n(top, top_pack(tp->cur), __ATOMIC_RELEASE);
    return 0;
}

/* Owner: partition p's part, made (empty) when it has none. NULL on out of memory. */
static struct table_part *part_at(struct table *t, uint32_t p)
{
    struct table_part *tp = &t->parts[p];
    if (tp->cur)
        return tp;
    if (part_init(t, tp, &t->tops[p], TABLE_MIN_LOG2) != 0)
        return NULL;
    t->made[t->n_made++] = p;
    return tp;
}

static void array_free_entries(struct table_array *a)
{
    for (size_t i = 0; i <= a->mask; i++)
        if (slot_is_entry(a->slots[i]))
            mi_free(slot_entry(a->slots[i]));
}

/* Frees a part's arrays and entries (table_destroy: no reader is active). */
static void part_free_all(struct table_part *tp)
{
    if (tp->old) {
        array_free_entries(tp->old);
        mi_free(tp->old);
    }
    if (tp->cur) {
        array_free_entries(tp->cur);
        mi_free(tp->cur);
    }
}

/* Frees what table_split() had made when it could not finish. */
static void split_undo(struct table_part *parts, uint64_t *tops, uint32_t nparts)
{
    for (uint32_t p = 0; parts && p < nparts; p++)
        mi_free(parts[p].cur);
    mi_free(parts);
    mi_free(tops);
}

int table_split(struct table *t, uint32_t nparts, table_part_fn *part_of, const void *arg)
{
    if (t->parts)
        return 0;
    if (nparts == 0 || !part_of)
        return -EINVAL;
    struct table_part *w = &t->whole;
    migrate_some(t, w, SIZE_MAX, SIZE_MAX); /* one array left: cur */
    const struct table_array *a = w->cur;
    size_t slots = array_slots(a);
    size_t *counts = mi_zalloc((size_t)nparts * sizeof *counts);
    struct table_part *parts = mi_zalloc((size_t)nparts * sizeof *parts);
    uint64_t *tops = mi_zalloc((size_t)nparts * sizeof *tops);
    uint32_t *made = mi_malloc((size_t)nparts * sizeof *made);
    uint32_t n_made = 0;
    size_t bytes = 0, part_max = 0;
    int rc = (counts && parts && tops && made) ? 0 : -ENOMEM;
    /* Two passes (asking part_of twice a key): sizes first, so that no part
     * resizes while it is filled */
    for (size_t i = 0; rc == 0 && i < slots; i++) {
        if (!slot_is_entry(a->slots[i]))
            continue;
        const struct table_entry *e = slot_entry(a->slots[i]);
        uint32_t p = part_of(arg, e->data, e->key_len, entry_hash(e));
        counts[p < nparts ? p : 0]++;
    }
    for (uint32_t p = 0; rc == 0 && p < nparts; p++) {
        struct table_part *tp = &parts[p];
        tp->top = &tops[p];
        if (!counts[p])
            continue;
        tp->cur = array_new(log2_for(counts[p], 2, 5));
        if (!tp->cur) {
            rc = -ENOMEM;
            break;
        }
        tops[p] = top_pack(tp->cur);
        tp->count = counts[p];
        made[n_made++] = p;
        bytes += array_bytes(tp->cur);
        if (counts[p] > part_max)
            part_max = counts[p];
    }
    if (rc != 0) {
        split_undo(parts, tops, nparts);
        mi_free(made);
        mi_free(counts);
        return rc;
    }
    /* Nobody sees the parts yet: plain stores, published by tops' release. */
    for (size_t i = 0; i < slots; i++) {
        uint64_t v = a->slots[i];
        if (!slot_is_entry(v))
            continue;
        const struct table_entry *e = slot_entry(v);
        uint64_t hash = entry_hash(e);
        uint32_t p = part_of(arg, e->data, e->key_len, hash);
        struct table_array *to = parts[p < nparts ? p : 0].cur;
        size_t j = array_home(to, hash);
        while (to->slots[j] != SLOT_EMPTY)
            j = (j + 1) & to->mask;
        to->slots[j] = v;
    }
    mi_free(counts);
    t->nparts = nparts;
    t->part_of = part_of;
    t->part_arg = arg;
    t->parts = parts;
    t->made = made;
    t->n_made = n_made;
    t->part_max = part_max;
    __atomic_store_n(&t->overhead, bytes, __ATOMIC_RELAXED);
    __atomic_store_n(&t->tops, tops, __ATOMIC_RELEASE);
    /* A reader that loaded no tops before may still be in whole's array
     * (whole_top stays): it goes once no reader can be there. The entries
     * stay. */
    retire_ptr(t, w->cur);
    w->cur = NULL;
    w->count = 0;
    return 0;
}

bool table_is_split(const struct table *t)
{
    return __atomic_load_n(&t->tops, __ATOMIC_ACQUIRE) != NULL;
}

size_t table_part_count(const struct table *t, uint32_t p)
{
    if (!t->parts)
        return p == 0 ? t->whole.count : 0;
    return p < t->nparts ? t->parts[p].count : 0;
}

size_t table_part_bytes(const struct table *t, uint32_t p)
{
    const struct table_part *tp = t->parts ? (p < t->nparts ? &t->parts[p] : NULL)
                                           : (p == 0 ? &t->whole : NULL);
    if (!tp || !tp->cur)
        return 0;
    return array_bytes(tp->cur) + (tp->old ? array_bytes(tp->old) : 0);
}

/* --- Owner API -------------------------------------------------------------- */

struct table *table_create(size_t hint)
{
    struct table *t = mi_zalloc_aligned(sizeof *t, _Alignof(struct table));
    if (!t)
        return NULL;
    if (part_init(t, &t->whole, &t->whole_top, log2_for(hint, 7, 10)) != 0) {
        mi_free(t);
        return NULL;
    }
    ck_epoch_init(&t->epoch);
    ck_epoch_register(&t->epoch, &t->owner_rec, NULL);
    return t;
}

void table_destroy(struct table *t)
{
    if (!t)
        return;
    if (t->parts) {
        for (uint32_t k = 0; k < t->n_made; k++)
            part_free_all(&t->parts[t->made[k]]);
        mi_free(t->parts);
        mi_free(t->tops);
        mi_free(t->made);
    } else {
        part_free_all(&t->whole);
    }
    reclaim(t);
    ck_epoch_barrier(&t->owner_rec); /* no reader is active: frees every batch now */
    for (struct table_reader *r = t->readers, *next; r; r = next) {
        next = r->next;
        mi_free(r);
    }
    mi_free(t);
}

int table_reserve(struct table *t, uint32_t part, size_t keys)
{
    struct table_part *tp = t->parts ? (part < t->nparts ? part_at(t, part) : NULL) : &t->whole;
    if (!tp)
        return t->parts && part < t->nparts ? -ENOMEM : -EINVAL;
    unsigned log2 = log2_for(keys, 2, 5);
    if (((size_t)1 << log2) <= array_slots(tp->cur))
        return 0;
    migrate_some(t, tp, SIZE_MAX, SIZE_MAX); /* a resize under way ends first */
    if (tp->old)
        return -EBUSY;
    return resize_start(t, tp, log2);
}

int table_put(struct table *t, struct table_entry *e, uint64_t hash, struct table_entry **old)
{
    uint32_t part;
    return table_put_placed(t, e, hash, old, &part);
}

int table_put_placed(struct table *t, struct table_entry *e, uint64_t hash,
                     struct table_entry **old, uint32_t *part)
{
    *old = NULL;
    *part = TABLE_NO_PART;
    struct table_part *tp = &t->whole;
    size_t free_slot = 0, i = TABLE_NOT_FOUND;
    if (t->parts) {
        /* An overwrite of a key a prefetch named (every batch of requests
         * and of peer messages is prefetched) finds it in the memo's part:
         * a key lives in one part only, so that is its part, and the
         * partition function (a CRC16 of the key) is spared. */
        uint32_t guess = memo_guess(t, hash), probed = UINT32_MAX;
        if (guess != UINT32_MAX && t->parts[guess].cur) {
            tp = &t->parts[guess];
            if (tp->old)
                migrate_for_write(t, tp, hash);
            i = array_probe(tp->cur, e->data, e->key_len, hash, &free_slot);
            probed = guess;
        }
        uint32_t p = i != TABLE_NOT_FOUND ? guess : part_index(t, e->data, e->key_len, hash);
        if (p != probed) {
            tp = part_at(t, p);
            if (!tp)
                return -ENOMEM;
            if (tp->old)
                migrate_for_write(t, tp, hash);
            i = array_probe(tp->cur, e->data, e->key_len, hash, &free_slot);
        }
        *part = p;
    } else {
        if (tp->old)
            migrate_for_write(t, tp, hash);
        i = array_probe(tp->cur, e->data, e->key_len, hash, &free_slot);
    }
    if (i != TABLE_NOT_FOUND) {
        *old = slot_entry(tp->cur->slots[i]);
        slot_publish(&tp->cur->slots[i], slot_make(e, hash));
        return 0;
    }
    if (tp->cur->slots[free_slot] == SLOT_EMPTY &&
        tp->count + tp->cur_tombs + 1 > max_load(tp->cur)) {
        int rc = make_room(t, tp);
        if (rc < 0)
            return rc;
        (void)array_probe(tp->cur, e->data, e->key_len, hash, &free_slot);
    }
    cur_fill(tp, free_slot, slot_make(e, hash));
    count_add(t, tp, 1);
    return 0;
}

/* Empties cur's slot i: a tombstone, unless no probe path can pass through it
 * (the next slot is empty); then the tombstones just before it go too. */
static void cur_vacate(struct table_part *tp, size_t i)
{
    struct table_array *a = tp->cur;
    if (a->slots[(i + 1) & a->mask] != SLOT_EMPTY) {
        slot_publish(&a->slots[i], SLOT_TOMB);
        tp->cur_tombs++;
        return;
    }
    slot_publish(&a->slots[i], SLOT_EMPTY);
    for (i = (i - 1) & a->mask; a->slots[i] == SLOT_TOMB; i = (i - 1) & a->mask) {
        slot_publish(&a->slots[i], SLOT_EMPTY);
        tp->cur_tombs--;
    }
}

struct table_entry *table_remove(struct table *t, const void *key, uint32_t key_len, uint64_t hash)
{
    struct table_part *tp = part_of_key(t, key, key_len, hash);
    if (!tp)
        return NULL;
    if (tp->old)
        migrate_for_write(t, tp, hash);
    size_t free_slot = 0;
    size_t i = array_probe(tp->cur, key, key_len, hash, &free_slot);
    if (i == TABLE_NOT_FOUND)
        return NULL;
    struct table_entry *e = slot_entry(tp->cur->slots[i]);
    cur_vacate(tp, i);
    count_add(t, tp, -1);
    maybe_shrink(t, tp);
    return e;
}

bool table_step(struct table *t, unsigned budget)
{
    /* The parts still resizing share the budget, first come first; finished
     * ones leave. A split table's parts are small (a few hundred slots
     * each), so one part alone would leave most of it unused, and many old
     * arrays held long after their resize. */
    struct table_part **link = &t->draining;
    size_t left = budget;
    while (*link) {
        struct table_part *tp = *link;
        if (tp->old && left > 0)
            left -= migrate_some(t, tp, left, left);
        if (tp->old)
            break;
        tp->in_draining = false;
        *link = tp->next_draining;
    }
    reclaim(t);
    return t->draining || t->batches_in_flight;
}

size_t table_count(const struct table *t)
{
    return __atomic_load_n(&t->count, __ATOMIC_RELAXED);
}

size_t table_overhead_bytes(const struct table *t)
{
    return __atomic_load_n(&t->overhead, __ATOMIC_RELAXED);
}

static void part_clear(struct table *t, struct table_part *tp)
{
    if (tp->old) {
        /* Only readers already inside a section can reach old (top moves on
         * below); it is retired with its entries, and freed after them. */
        for (size_t i = 0; i <= tp->old->mask; i++)
            if (slot_is_entry(tp->old->slots[i]))
                retire_ptr(t, slot_entry(tp->old->slots[i]));
        resize_finish(t, tp);
    }
    struct table_array *a = tp->cur;
    for (size_t i = 0; i <= a->mask; i++) {
        uint64_t v = a->slots[i];
        if (!slot_is_entry(v))
            continue;
        slot_publish(&a->slots[i], SLOT_TOMB);
        tp->cur_tombs++;
        retire_ptr(t, slot_entry(v));
    }
    count_add(t, tp, -(ptrdiff_t)tp->count);
    maybe_shrink(t, tp);
}

void table_clear(struct table *t)
{
    if (!t->parts) {
        part_clear(t, &t->whole);
        return;
    }
    for (uint32_t k = 0; k < t->n_made; k++)
        part_clear(t, &t->parts[t->made[k]]);
    t->part_max = 0;
}

/* --- Scan and sample -------------------------------------------------------- */

/* Visits a's entries whose hash is in [lo, hi) (hi 0: to the end of hash
 * space). They sit from the home slot of lo through the cluster that holds
 * the home slot of hi - 1, wrapping at the end of the array. */
/* fn (hfn: with the hash, when not NULL) for each entry in [lo, hi). */
static size_t array_scan(const struct table_array *a, uint64_t lo, uint64_t hi,
                         void (*fn)(struct table_entry *e, void *arg), table_scan_hash_fn *hfn,
                         void *arg)
{
    size_t first = array_home(a, lo);
    size_t span = array_home(a, hi - 1) - first;
    size_t seen = 0;
    for (size_t k = 0; k <= a->mask; k++) {
        uint64_t v = a->slots[(first + k) & a->mask];
        if (v == SLOT_EMPTY && k > span)
            break;
        if (!slot_is_entry(v))
            continue;
        struct table_entry *e = slot_entry(v);
        uint64_t h = entry_hash(e);
        if (h >= lo && (hi == 0 || h < hi)) {
            if (hfn)
                hfn(e, h, arg);
            else
                fn(e, arg);
            seen++;
        }
    }
    return seen;
}

/* A walk over some parts with one cursor in hash space. */
struct scan {
    const struct table_part *const *parts;
    size_t n;
    void (*fn)(struct table_entry *e, void *arg);
    table_scan_hash_fn *hfn;
    void *arg;
};

/* Visits the parts' entries from cursor in chunks until `want` were seen or
 * hash space ends (returns 0); *seen gets the count. A chunk is one home
 * slot of the largest array, so a call meets about `want` keys however
 * small the other arrays are (a smaller array's part of a chunk is a piece
 * of one of its home slots: array_scan walks that slot's cluster and keeps
 * the hashes in range). */
static uint64_t scan_chunks(const struct scan *sc, uint64_t cursor, size_t want, size_t *seen)
{
    unsigned shift = 64;
    for (size_t k = 0; k < sc->n; k++) {
        const struct table_part *tp = sc->parts[k];
        if (!tp->count)
            continue; /* nothing to visit: its size does not matter */
        if (tp->cur->shift < shift)
            shift = tp->cur->shift;
        if (tp->old && tp->old->shift < shift)
            shift = tp->old->shift;
    }
    if (shift == 64)
        return 0; /* no keys in any of them */
    do {
        uint64_t end = ((cursor >> shift) + 1) << shift;
        for (size_t k = 0; k < sc->n; k++) {
            const struct table_part *tp = sc->parts[k];
            if (!tp->count)
                continue;
            *seen += array_scan(tp->cur, cursor, end, sc->fn, sc->hfn, sc->arg);
            if (tp->old)
                *seen += array_scan(tp->old, cursor, end, sc->fn, sc->hfn, sc->arg);
        }
        cursor = end;
    } while (cursor != 0 && *seen < want);
    return cursor;
}

/* A whole-table walk's cursor: the partition in the top 14 bits (0 when
 * the table is not split, so that a walk begun before the split goes on
 * from there: the rest of partition 0, then the others), then the position
 * in that part's hash space, a chunk boundary (its low 30 bits are 0 while
 * an array has at most 2^34 slots), shifted right by 14. So its low 16
 * bits are 0 (SCAN's cursors drop them, cmd.c and keyspace.c). */
#define TABLE_CURSOR_PART_SHIFT 50
#define TABLE_CURSOR_POS_MASK ((1ull << TABLE_CURSOR_PART_SHIFT) - 1)
_Static_assert(KEYHASH_SLOTS <= 1u << (64 - TABLE_CURSOR_PART_SHIFT), "a partition fits");

static inline uint64_t cursor_pack(uint32_t p, uint64_t at)
{
    return (uint64_t)p << TABLE_CURSOR_PART_SHIFT | at >> (64 - TABLE_CURSOR_PART_SHIFT);
}
static inline uint32_t cursor_part(uint64_t cursor)
{
    return (uint32_t)(cursor >> TABLE_CURSOR_PART_SHIFT);
}
static inline uint64_t cursor_at(uint64_t cursor)
{
    return (cursor & TABLE_CURSOR_POS_MASK) << (64 - TABLE_CURSOR_PART_SHIFT);
}

static uint64_t scan_all(const struct table *t, uint64_t cursor, size_t want,
                         void (*fn)(struct table_entry *e, void *arg), table_scan_hash_fn *hfn,
                         void *arg)
{
    size_t seen = 0;
    if (!t->parts) { /* the same form as partition 0's: a walk that spans the split goes on */
        const struct table_part *whole = &t->whole;
        struct scan sc = {&whole, 1, fn, hfn, arg};
        return cursor_pack(0, scan_chunks(&sc, cursor_at(cursor), want, &seen));
    }
    uint32_t p = cursor_part(cursor);
    uint64_t at = cursor_at(cursor);
    for (; p < t->nparts; p++, at = 0) {
        const struct table_part *tp = &t->parts[p];
        if (!tp->cur || !tp->count)
            continue;
        if (seen >= want)
            return cursor_pack(p, 0); /* the start of the next part with keys (p > 0) */
        struct scan sc = {&tp, 1, fn, hfn, arg};
        at = scan_chunks(&sc, at, want, &seen);
        if (at != 0)
            return cursor_pack(p, at);
    }
    return 0;
}

uint64_t table_scan_random_cursor(const struct table *t, uint64_t r)
{
    uint32_t p = t->parts ? (uint32_t)((r >> 40) % t->nparts) : 0;
    return cursor_pack(p, r << 30); /* a chunk boundary: any position, low bits 0 */
}

bool table_scan_passed(const struct table *t, uint64_t cursor, uint32_t part, uint64_t hash)
{
    if (!__atomic_load_n(&t->tops, __ATOMIC_ACQUIRE))
        return hash < cursor_at(cursor);
    uint32_t at = cursor_part(cursor);
    return part < at || (part == at && hash < cursor_at(cursor));
}

uint64_t table_scan(const struct table *t, uint64_t cursor, size_t want,
                    void (*fn)(struct table_entry *e, void *arg), void *arg)
{
    return scan_all(t, cursor, want, fn, NULL, arg);
}

uint64_t table_scan_hashed(const struct table *t, uint64_t cursor, size_t want,
                           table_scan_hash_fn *fn, void *arg)
{
    return scan_all(t, cursor, want, NULL, fn, arg);
}

static uint64_t scan_some(const struct table *t, const uint32_t *parts, size_t n,
                          uint64_t cursor, size_t want,
                          void (*fn)(struct table_entry *e, void *arg), table_scan_hash_fn *hfn,
                          void *arg)
{
    const struct table_part *got[TABLE_SCAN_PARTS_MAX];
    const struct table_part *whole = &t->whole;
    struct scan sc = {&whole, 1, fn, hfn, arg};
    if (t->parts) {
        size_t k = 0;
        for (size_t i = 0; i < n && k < TABLE_SCAN_PARTS_MAX; i++)
            if (parts[i] < t->nparts && t->parts[parts[i]].cur)
                got[k++] = &t->parts[parts[i]];
        sc.parts = got;
        sc.n = k;
    }
    size_t seen = 0;
    return scan_chunks(&sc, cursor, want, &seen);
}

uint64_t table_scan_parts(const struct table *t, const uint32_t *parts, size_t n,
                          uint64_t cursor, size_t want,
                          void (*fn)(struct table_entry *e, void *arg), void *arg)
{
    return scan_some(t, parts, n, cursor, want, fn, NULL, arg);
}

uint64_t table_scan_parts_hashed(const struct table *t, const uint32_t *parts, size_t n,
                                 uint64_t cursor, size_t want, table_scan_hash_fn *fn, void *arg)
{
    return scan_some(t, parts, n, cursor, want, NULL, fn, arg);
}

static uint64_t rng_next(uint64_t *rng)
{
    uint64_t x = *rng ? *rng : 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *rng = x;
    return x;
}

/* Collects up to n entries of a, walking from a random slot. */
static size_t array_sample(const struct table_array *a, uint64_t *rng, struct table_entry **out,
                           size_t n)
{
    size_t got = 0;
    size_t start = (size_t)rng_next(rng) & a->mask;
    for (size_t k = 0; k <= a->mask && got < n; k++) {
        uint64_t v = a->slots[(start + k) & a->mask];
        if (slot_is_entry(v))
            out[got++] = slot_entry(v);
    }
    return got;
}

static size_t part_sample(const struct table_part *tp, uint64_t *rng, struct table_entry **out,
                          size_t n)
{
    const struct table_array *first = tp->cur, *second = tp->old;
    if (second && rng_next(rng) % tp->count < tp->old_live) {
        first = tp->old;
        second = tp->cur;
    }
    size_t got = array_sample(first, rng, out, n);
    if (got < n && second)
        got += array_sample(second, rng, out + got, n - got);
    return got;
}

/* A split table's part picked with probability in proportion to its keys:
 * a part drawn at random is kept with probability count / part_max; after
 * a few misses, part_max is made exact and a part is drawn by walking the
 * counts. */
static const struct table_part *sample_part(struct table *t, uint64_t *rng)
{
    for (int tries = 0; tries < 8; tries++) {
        const struct table_part *tp = &t->parts[t->made[rng_next(rng) % t->n_made]];
        if (tp->count && rng_next(rng) % t->part_max < tp->count)
            return tp;
    }
    size_t max = 0;
    for (uint32_t k = 0; k < t->n_made; k++)
        if (t->parts[t->made[k]].count > max)
            max = t->parts[t->made[k]].count;
    t->part_max = max;
    size_t r = rng_next(rng) % t->count;
    for (uint32_t k = 0; k < t->n_made; k++) {
        const struct table_part *tp = &t->parts[t->made[k]];
        if (r < tp->count)
            return tp;
        r -= tp->count;
    }
    return NULL;
}

size_t table_sample(const struct table *t, uint64_t *rng, struct table_entry **out, size_t n)
{
    if (n == 0 || t->count == 0)
        return 0;
    if (!t->parts)
        return part_sample(&t->whole, rng, out, n);
    /* part_max is the owner's bookkeeping, not the table's contents */
    const struct table_part *tp = sample_part((struct table *)t, rng);
    return tp ? part_sample(tp, rng, out, n) : 0;
}

/* --- Readers ---------------------------------------------------------------- */

struct table_reader *table_reader_register(struct table *t)
{
    ck_epoch_record_t *rec = ck_epoch_recycle(&t->epoch, NULL);
    if (rec)
        return (struct table_reader *)rec;
    struct table_reader *r = mi_zalloc_aligned(sizeof *r, _Alignof(struct table_reader));
    if (!r)
        return NULL;
    ck_epoch_register(&t->epoch, &r->rec, NULL);
    r->next = __atomic_load_n(&t->readers, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(&t->readers, &r->next, r, true, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED))
        ;
    return r;
}

void table_reader_unregister(struct table *t, struct table_reader *r)
{
    ck_epoch_unregister(&r->rec);
}

void table_read_begin(struct table_reader *r)
{
    ck_epoch_begin(&r->rec, NULL);
}

void table_read_end(struct table_reader *r)
{
    ck_epoch_end(&r->rec, NULL);
}
