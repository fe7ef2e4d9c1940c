/* table.c: the shard's hash table (see table.h).
 * Threads: the owner runs everything except table_find() and the reader calls,
 * which registered readers may run at the same time (SPMC).
 * Structure: a chain of slot arrays, oldest first: normally one; during a
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

struct table {
    /* Read by any thread. */
    struct table_array *top; /* oldest array holding keys; acquire/release */
    size_t count;            /* live keys; relaxed */
    size_t overhead;         /* bytes of cur + old slots; relaxed */
    /* Owner only. */
    struct table_array *cur;      /* takes inserts */
    struct table_array *old;      /* draining into cur, or NULL */
    size_t old_pos;               /* next old slot the sequential migration visits */
    size_t old_live;              /* entries still in old */
    size_t cur_tombs;             /* tombstones in cur */
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

static void overhead_update(struct table *t)
{
    size_t slots = array_slots(t->cur) + (t->old ? array_slots(t->old) : 0);
    __atomic_store_n(&t->overhead, slots * sizeof(uint64_t), __ATOMIC_RELAXED);
}

static void count_set(struct table *t, size_t n)
{
    __atomic_store_n(&t->count, n, __ATOMIC_RELAXED);
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

static struct table_entry *array_find(const struct table_array *a, const void *key,
                                      uint32_t key_len, uint64_t hash)
{
    uint64_t tag = hash_tag(hash);
    size_t i = array_home(a, hash);
    for (;;) {
        uint64_t v = __atomic_load_n(&a->slots[i], __ATOMIC_ACQUIRE);
        if (v == SLOT_EMPTY)
            return NULL;
        if ((v >> SLOT_PTR_BITS) == tag && slot_is_entry(v)) {
            struct table_entry *e = slot_entry(v);
            if (e->key_len == key_len && memcmp(e->data, key, key_len) == 0)
                return e;
        }
        i = (i + 1) & a->mask;
    }
}

struct table_entry *table_find(const struct table *t, const void *key, uint32_t key_len,
                               uint64_t hash)
{
    const struct table_array *a = __atomic_load_n(&t->top, __ATOMIC_ACQUIRE);
    do {
        struct table_entry *e = array_find(a, key, key_len, hash);
        if (e)
            return e;
        a = __atomic_load_n(&a->next, __ATOMIC_ACQUIRE);
    } while (a);
    return NULL;
}

void table_prefetch(const struct table *t, const uint64_t *hashes, size_t n)
{
    const struct table_array *a = __atomic_load_n(&t->top, __ATOMIC_ACQUIRE);
    for (size_t i = 0; i < n; i++)
        __builtin_prefetch(&a->slots[array_home(a, hashes[i])]);
    for (size_t i = 0; i < n; i++) { /* the slots are in (or on their way) */
        uint64_t v = __atomic_load_n(&a->slots[array_home(a, hashes[i])], __ATOMIC_ACQUIRE);
        if (slot_is_entry(v) && (v >> SLOT_PTR_BITS) == hash_tag(hashes[i]))
            __builtin_prefetch(slot_entry(v));
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
static void cur_fill(struct table *t, size_t i, uint64_t v)
{
    if (t->cur->slots[i] == SLOT_TOMB)
        t->cur_tombs--;
    slot_publish(&t->cur->slots[i], v);
}

static void resize_finish(struct table *t)
{
    __atomic_store_n(&t->top, t->cur, __ATOMIC_RELEASE);
    retire_ptr(t, t->old);
    t->old = NULL;
    overhead_update(t);
}

/* Moves old slot i's entry, if any, to cur: published there before it is
 * marked moved here, so a reader never misses it. May finish the resize. */
static void migrate_slot(struct table *t, size_t i)
{
    uint64_t v = t->old->slots[i];
    if (!slot_is_entry(v))
        return;
    uint64_t hash = entry_hash(slot_entry(v));
    const struct table_array *cur = t->cur;
    size_t j = array_home(cur, hash);
    while (!slot_is_free(cur->slots[j]))
        j = (j + 1) & cur->mask;
    cur_fill(t, j, v);
    slot_publish(&t->old->slots[i], SLOT_MOVED);
    if (--t->old_live == 0)
        resize_finish(t);
}

/* Sequential migration: stops after `slots` old slots or `moves` entries. */
static void migrate_some(struct table *t, size_t slots, size_t moves)
{
    while (slots > 0 && moves > 0 && t->old) {
        moves -= slot_is_entry(t->old->slots[t->old_pos]);
        slots--;
        migrate_slot(t, t->old_pos++);
    }
}

/* Before a write of `hash`: its old cluster (home to the next empty slot)
 * moves, so the key is in cur if anywhere, then a few slots more. */
static void migrate_for_write(struct table *t, uint64_t hash)
{
    const struct table_array *old = t->old;
    size_t i = array_home(old, hash);
    while (t->old && old->slots[i] != SLOT_EMPTY) {
        migrate_slot(t, i);
        i = (i + 1) & old->mask;
    }
    migrate_some(t, TABLE_WRITE_SLOTS, TABLE_WRITE_MOVES);
}

/* Starts moving every key into a new array of 2^log2 slots. Needs old == NULL.
 * 0 or -ENOMEM (nothing changed). */
static int resize_start(struct table *t, unsigned log2)
{
    struct table_array *a = array_new(log2);
    if (!a)
        return -ENOMEM;
    t->old = t->cur;
    t->old_pos = 0;
    t->old_live = t->count;
    t->cur = a;
    t->cur_tombs = 0;
    __atomic_store_n(&t->old->next, a, __ATOMIC_RELEASE);
    overhead_update(t);
    if (t->old_live == 0)
        resize_finish(t);
    return 0;
}

/* Makes room for one more key: finishes a resize in progress, then resizes to
 * put the keys at <= 40% load. */
static int make_room(struct table *t)
{
    migrate_some(t, SIZE_MAX, SIZE_MAX);
    return resize_start(t, log2_for(t->count + 1, 2, 5));
}

int table_reserve(struct table *t, size_t keys)
{
    unsigned log2 = log2_for(keys, 2, 5);
    if (((size_t)1 << log2) <= array_slots(t->cur))
        return 0;
    migrate_some(t, SIZE_MAX, SIZE_MAX); /* a resize under way ends first */
    if (t->old)
        return -EBUSY;
    return resize_start(t, log2);
}

static void maybe_shrink(struct table *t)
{
    size_t slots = array_slots(t->cur);
    if (t->old || slots <= ((size_t)1 << TABLE_MIN_LOG2) || t->count >= slots / 10)
        return;
    /* Out of memory only keeps the bigger array. */
    (void)resize_start(t, log2_for(t->count, 2, 5));
}

/* --- Owner API -------------------------------------------------------------- */

struct table *table_create(size_t hint)
{
    struct table *t = mi_zalloc_aligned(sizeof *t, _Alignof(struct table));
    if (!t)
        return NULL;
    t->cur = array_new(log2_for(hint, 7, 10));
    if (!t->cur) {
        mi_free(t);
        return NULL;
    }
    t->top = t->cur;
    overhead_update(t);
    ck_epoch_init(&t->epoch);
    ck_epoch_register(&t->epoch, &t->owner_rec, NULL);
    return t;
}

static void array_free_entries(struct table_array *a)
{
    for (size_t i = 0; i <= a->mask; i++)
        if (slot_is_entry(a->slots[i]))
            mi_free(slot_entry(a->slots[i]));
}

void table_destroy(struct table *t)
{
    if (!t)
        return;
    if (t->old) {
        array_free_entries(t->old);
        mi_free(t->old);
    }
    array_free_entries(t->cur);
    mi_free(t->cur);
    reclaim(t);
    ck_epoch_barrier(&t->owner_rec); /* no reader is active: frees every batch now */
    for (struct table_reader *r = t->readers, *next; r; r = next) {
        next = r->next;
        mi_free(r);
    }
    mi_free(t);
}

int table_put(struct table *t, struct table_entry *e, uint64_t hash, struct table_entry **old)
{
    *old = NULL;
    if (t->old)
        migrate_for_write(t, hash);
    size_t free_slot = 0;
    size_t i = array_probe(t->cur, e->data, e->key_len, hash, &free_slot);
    if (i != TABLE_NOT_FOUND) {
        *old = slot_entry(t->cur->slots[i]);
        slot_publish(&t->cur->slots[i], slot_make(e, hash));
        return 0;
    }
    if (t->cur->slots[free_slot] == SLOT_EMPTY && t->count + t->cur_tombs + 1 > max_load(t->cur)) {
        int rc = make_room(t);
        if (rc < 0)
            return rc;
        (void)array_probe(t->cur, e->data, e->key_len, hash, &free_slot);
    }
    cur_fill(t, free_slot, slot_make(e, hash));
    count_set(t, t->count + 1);
    return 0;
}

/* Empties cur's slot i: a tombstone, unless no probe path can pass through it
 * (the next slot is empty); then the tombstones just before it go too. */
static void cur_vacate(struct table *t, size_t i)
{
    struct table_array *a = t->cur;
    if (a->slots[(i + 1) & a->mask] != SLOT_EMPTY) {
        slot_publish(&a->slots[i], SLOT_TOMB);
        t->cur_tombs++;
        return;
    }
    slot_publish(&a->slots[i], SLOT_EMPTY);
    for (i = (i - 1) & a->mask; a->slots[i] == SLOT_TOMB; i = (i - 1) & a->mask) {
        slot_publish(&a->slots[i], SLOT_EMPTY);
        t->cur_tombs--;
    }
}

struct table_entry *table_remove(struct table *t, const void *key, uint32_t key_len, uint64_t hash)
{
    if (t->old)
        migrate_for_write(t, hash);
    size_t free_slot = 0;
    size_t i = array_probe(t->cur, key, key_len, hash, &free_slot);
    if (i == TABLE_NOT_FOUND)
        return NULL;
    struct table_entry *e = slot_entry(t->cur->slots[i]);
    cur_vacate(t, i);
    count_set(t, t->count - 1);
    maybe_shrink(t);
    return e;
}

bool table_step(struct table *t, unsigned budget)
{
    if (t->old)
        migrate_some(t, budget, budget);
    reclaim(t);
    return t->old || t->batches_in_flight;
}

size_t table_count(const struct table *t)
{
    return __atomic_load_n(&t->count, __ATOMIC_RELAXED);
}

size_t table_overhead_bytes(const struct table *t)
{
    return __atomic_load_n(&t->overhead, __ATOMIC_RELAXED);
}

void table_clear(struct table *t)
{
    if (t->old) {
        /* Only readers already inside a section can reach old (top moves on
         * below); it is retired with its entries, and freed after them. */
        for (size_t i = 0; i <= t->old->mask; i++)
            if (slot_is_entry(t->old->slots[i]))
                retire_ptr(t, slot_entry(t->old->slots[i]));
        resize_finish(t);
    }
    struct table_array *a = t->cur;
    for (size_t i = 0; i <= a->mask; i++) {
        uint64_t v = a->slots[i];
        if (!slot_is_entry(v))
            continue;
        slot_publish(&a->slots[i], SLOT_TOMB);
        t->cur_tombs++;
        retire_ptr(t, slot_entry(v));
    }
    count_set(t, 0);
    maybe_shrink(t);
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

static uint64_t scan_chunks(const struct table *t, uint64_t cursor, size_t want,
                            void (*fn)(struct table_entry *e, void *arg), table_scan_hash_fn *hfn,
                            void *arg)
{
    /* Chunks are the home slots of the smaller array: whole in both arrays. */
    unsigned shift = t->cur->shift;
    if (t->old && t->old->shift > shift)
        shift = t->old->shift;
    size_t seen = 0;
    do {
        uint64_t end = ((cursor >> shift) + 1) << shift;
        seen += array_scan(t->cur, cursor, end, fn, hfn, arg);
        if (t->old)
            seen += array_scan(t->old, cursor, end, fn, hfn, arg);
        cursor = end;
    } while (cursor != 0 && seen < want);
    return cursor;
}

uint64_t table_scan(const struct table *t, uint64_t cursor, size_t want,
                    void (*fn)(struct table_entry *e, void *arg), void *arg)
{
    return scan_chunks(t, cursor, want, fn, NULL, arg);
}

uint64_t table_scan_hashed(const struct table *t, uint64_t cursor, size_t want,
                           table_scan_hash_fn *fn, void *arg)
{
    return scan_chunks(t, cursor, want, NULL, fn, arg);
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

size_t table_sample(const struct table *t, uint64_t *rng, struct table_entry **out, size_t n)
{
    if (n == 0 || t->count == 0)
        return 0;
    const struct table_array *first = t->cur, *second = t->old;
    if (second && rng_next(rng) % t->count < t->old_live) {
        first = t->old;
        second = t->cur;
    }
    size_t got = array_sample(first, rng, out, n);
    if (got < n && second)
        got += array_sample(second, rng, out + got, n - got);
    return got;
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
