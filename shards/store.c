/* store.c: one shard's keyspace over its table (see store.h).
 * Runs on the owning shard thread only (the read-only accessors store_count,
 * store_used_bytes and store_read_stats excepted). Every change to the
 * table goes through publish() or drop(), which keep two running totals
 * exact: entry_bytes (usable size of every live entry) and expires (entries
 * with an expiry). Entries that leave the table are handed to
 * table_retire(), which frees them once no reader thread can still see them.
 * Expiry is lazy plus active, as Redis: a lookup that meets an expired key
 * removes it; store_tick() samples keys and removes expired ones while the
 * sampled expired share stays above a quarter, within about 1 ms. The table
 * has no separate index of keys with a TTL, so the ratio is taken over the
 * sampled keys that have one.
 * Eviction is Redis's approximation: sample `samples` keys, drop the best
 * victim by policy (longest idle, nearest expiry, or any), repeat until the
 * new data fits. As in Redis, a write is refused only when the store stays
 * over maxmemory after eviction; one under it may overshoot. volatile-*
 * policies only take keys with a TTL; when samples keep missing them, a scan
 * from a remembered cursor finds some, so a few volatile keys among many are
 * still found (at worst one pass over the table).
 * Entries are immutable once published except for what table.h allows: the
 * owner bumps the access clock, and APPEND writes past val_len inside the
 * allocation then store-releases the longer val_len (and a new cas, relaxed).
 * Anything else (an expiry change, SETRANGE, INCR) publishes a new entry.
 * With a journal attached (durable storage), every put, delete, eviction
 * and flush is also reported to it as it happens; expiry is not (records
 * carry their expiry time).
 * Values beyond RAM (a tier attached): entries are made with room for their
 * log position, set from what the journal returns. Making room first cools:
 * it samples keys and replaces the longest idle hot entry whose record is
 * readable (and that is not pinned, and whose cold form is smaller) by a
 * cold entry (key and metadata only), repeating while over the limit; only
 * when nothing can be cooled does the policy evict. Cold entries count in
 * cold_keys/cold_bytes; drop() keeps those exact too.
 * Versioned keys (RING.*, table.h): the entry's value is the picked sibling,
 * followed by the version part (header, meta, body unless it is the picked
 * value; or for the usual key, one dotted value, its packed fields alone),
 * so every plain read works unchanged; lookups for plain commands
 * hide a key whose pick is a tombstone (one flag test); APPEND never grows
 * such an entry in place (its version part follows the value), and an
 * expiry change copies the version part along. Cooled, such an entry keeps
 * its header and meta (or its packed fields) right after the key (the body
 * is the log record's value); read back, the body is decoded with that meta
 * to find the pick. */
#include "store.h"

#include <assert.h>
#include <errno.h>
#include <mimalloc.h>
#include <string.h>
#include <time.h>

#include "dvv.h"
#include "keyhash.h"
#include "seg.h"

#define STORE_MAX_SAMPLES 64     /* as Redis's maxmemory-samples bound */
#define STORE_STEP_BUDGET 1024   /* table slots migrated per tick */
#define STORE_TURN_STEP_BUDGET 64 /* table slots migrated per loop turn */
#define EXPIRE_SAMPLE 20         /* keys sampled per active expiry round */
#define EXPIRE_BUDGET_NS 1000000 /* active expiry work per loop turn */
#define EVICT_SAMPLE_TRIES 4     /* sample rounds before the volatile scan */
#define EVICT_SCAN_CHUNK 64      /* entries per step of the volatile scan */
#define RANDOM_TRIES 100         /* expired keys RANDOMKEY may step over */
#define APPEND_DOUBLE_LIMIT (1024 * 1024)
#define COOL_SAMPLE 16           /* keys sampled per cooling round */
#define COOL_TRIES 16            /* rounds in a row without a candidate before giving up */

/* Counters: the owner is the only writer, so read-modify-store is exact;
 * the relaxed store keeps concurrent readers free of torn values. */
static inline void stat_add(uint64_t *field, uint64_t n)
{
    __atomic_store_n(field, *field + n, __ATOMIC_RELAXED);
}

static inline void stat_sub(uint64_t *field, uint64_t n)
{
    __atomic_store_n(field, *field - n, __ATOMIC_RELAXED);
}

static int64_t realtime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void store_set_clock(struct store *s, int64_t now_ms)
{
    s->now_ms = now_ms;
    s->lru_s = (uint32_t)(now_ms / 1000);
}

int store_init(struct store *s, const struct store_config *cfg)
{
    memset(s, 0, sizeof *s);
    s->table = table_create(cfg->size_hint);
    if (!s->table)
        return -ENOMEM;
    store_set_clock(s, realtime_ms());
    s->maxmemory = cfg->maxmemory;
    s->policy = cfg->policy;
    s->samples = cfg->samples ? cfg->samples : STORE_DEFAULT_SAMPLES;
    if (s->samples > STORE_MAX_SAMPLES)
        s->samples = STORE_MAX_SAMPLES;
    /* Nothing longer than a log record holds is ever accepted (seg.h), so
     * that every acknowledged value can be recovered. */
    s->max_key_len = cfg->max_key_len && cfg->max_key_len < SEG_MAX_KEY ? cfg->max_key_len
                                                                         : SEG_MAX_KEY;
    s->max_val_len = cfg->max_val_len ? cfg->max_val_len : STORE_DEFAULT_MAX_VAL_LEN;
    if (s->max_val_len > SEG_MAX_VALUE)
        s->max_val_len = SEG_MAX_VALUE;
    s->rng = cfg->seed ? cfg->seed : (uint64_t)monotonic_ns() | 1;
    s->next_cas = 1;
    return 0;
}

void store_attach_journal(struct store *s, const struct store_journal *j) { s->journal = j; }

void store_attach_tier(struct store *s, const struct store_tier *t) { s->tier = t; }

static void journal_put(struct store *s, struct table_entry *e, uint64_t prev)
{
    if (!s->journal)
        return;
    uint64_t lsn = s->journal->put(s->journal->arg, e, prev);
    if (e->meta & TABLE_ENTRY_LSN)
        table_entry_set_lsn(e, lsn);
}

static void journal_del(struct store *s, const void *key, uint32_t klen, uint64_t prev)
{
    if (s->journal)
        s->journal->del(s->journal->arg, key, klen, prev);
}

void store_fini(struct store *s)
{
    table_destroy(s->table);
    s->table = NULL;
    mi_free(s->part_keys);
    s->part_keys = NULL;
    for (size_t i = 0; i < sizeof s->scratch / sizeof s->scratch[0]; i++)
        buf_fini(&s->scratch[i]);
}

/* Entry e enters (+1) or leaves (-1) the table: its partition's count
 * (part: the key's partition where known, else TABLE_NO_PART). */
static inline void part_tally(struct store *s, const struct table_entry *e, int64_t delta,
                              uint32_t part)
{
    if (__builtin_expect((e->meta & TABLE_ENTRY_TOMBSTONE) != 0, 0)) {
        s->had_tombstone |= delta > 0;
        return;
    }
    if (__builtin_expect(s->part_keys != NULL, 0)) {
        if (part >= s->nparts)
            part = s->part_of(s->part_arg, table_entry_key(e), e->key_len);
        s->part_keys[part] += (uint64_t)delta;
    }
}

/* The same, and the watcher sees it (store_watch; hash: the key's
 * keyhash); delta 0: the watcher alone (a replacement that leaves the
 * count as it was). */
static inline void part_count(struct store *s, const struct table_entry *e, int64_t delta,
                              uint64_t hash, uint32_t part)
{
    if (__builtin_expect(s->watch != NULL, 0))
        s->watch(s->watch_arg, e, hash, part);
    if (delta != 0)
        part_tally(s, e, delta, part);
}

void store_watch(struct store *s, store_watch_fn fn, void *arg)
{
    s->watch = fn;
    s->watch_arg = arg;
}

static void part_count_fn(struct table_entry *e, void *arg)
{
    part_tally(arg, e, 1, TABLE_NO_PART);
}

int store_track_partitions(struct store *s, uint32_t nparts,
                           uint32_t (*part_of)(const void *arg, const void *key, uint32_t klen),
                           const void *arg)
{
    if (s->part_keys)
        return 0;
    s->part_keys = mi_calloc(nparts, sizeof *s->part_keys);
    if (!s->part_keys)
        return -ENOMEM;
    s->nparts = nparts;
    s->part_of = part_of;
    s->part_arg = arg;
    uint64_t cursor = 0;
    do {
        cursor = table_scan(s->table, cursor, 1024, part_count_fn, s);
    } while (cursor != 0);
    return 0;
}

/* Takes e (key hash `hash`, partition `part` or TABLE_NO_PART) out of the
 * accounting and hands it to reclamation; its partition's count too unless
 * `is_counted` is false (publish: a replacement that leaves the count as
 * it was). */
static void drop_counted(struct store *s, struct table_entry *e, bool is_counted, uint64_t hash,
                         uint32_t part)
{
    stat_sub(&s->stats.entry_bytes, table_entry_mem(e));
    if (table_entry_is_cold(e)) {
        stat_sub(&s->stats.cold_keys, 1);
        stat_sub(&s->stats.cold_bytes, e->val_len);
    }
    if (e->expire_ms != 0)
        stat_sub(&s->stats.expires, 1);
    part_count(s, e, is_counted ? -1 : 0, hash, part);
    table_retire(s->table, e);
}

static void drop(struct store *s, struct table_entry *e, uint64_t hash)
{
    drop_counted(s, e, true, hash, TABLE_NO_PART);
}

/* Removes the table's entry for e's key (e itself, for an entry found in
 * the table). hash may be unknown for sampled entries: it is recomputed. */
static void remove_entry(struct store *s, struct table_entry *e)
{
    uint64_t hash = keyhash(table_entry_key(e), e->key_len);
    struct table_entry *old = table_remove(s->table, table_entry_key(e), e->key_len, hash);
    if (old)
        drop(s, old, hash);
}

/* Returns the removed entry's version, 0 when there was none. */
static uint64_t remove_key(struct store *s, const void *key, uint32_t klen, uint64_t hash)
{
    struct table_entry *old = table_remove(s->table, key, klen, hash);
    uint64_t cas = old ? old->cas : 0;
    if (old)
        drop(s, old, hash);
    return cas;
}

/* Puts e (cas already set) in the table, replacing the key's entry. An
 * expiry already past removes the key instead and frees e. */
static int publish(struct store *s, struct table_entry *e, uint64_t hash, struct table_entry **out)
{
    table_entry_set_lru(e, s->lru_s);
    if (store_is_expired(s, e)) {
        uint64_t prev = remove_key(s, table_entry_key(e), e->key_len, hash);
        journal_del(s, table_entry_key(e), e->key_len, prev);
        table_entry_free(e);
        stat_add(&s->stats.expired_keys, 1);
        stat_add(&s->stats.writes, 1);
        if (out)
            *out = NULL;
        return 0;
    }
    struct table_entry *old;
    uint32_t part;
    if (table_put_placed(s->table, e, hash, &old, &part) != 0) {
        table_entry_free(e);
        return -ENOMEM;
    }
    stat_add(&s->stats.entry_bytes, table_entry_mem(e));
    /* a live entry replacing a live one leaves its partition's count as it
     * was: no partition to compute, twice, on every overwrite */
    bool is_counted = !old || ((e->meta | old->meta) & TABLE_ENTRY_TOMBSTONE);
    part_count(s, e, is_counted ? 1 : 0, hash, part);
    if (e->expire_ms != 0)
        stat_add(&s->stats.expires, 1);
    uint64_t prev = old ? old->cas : 0;
    if (old)
        drop_counted(s, old, is_counted, hash, part);
    journal_put(s, e, prev);
    stat_add(&s->stats.writes, 1);
    if (out)
        *out = e;
    return 0;
}

/* Removes e's key because its time came. */
static void expire_entry(struct store *s, struct table_entry *e)
{
    remove_entry(s, e);
    stat_add(&s->stats.expired_keys, 1);
}

/* Drops repeated pointers from a sample (n is small). Returns the new count. */
static size_t dedupe(struct table_entry **v, size_t n)
{
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < out && v[j] != v[i])
            j++;
        if (j == out)
            v[out++] = v[i];
    }
    return out;
}

/* One round of active expiry. Returns true when another round should run. */
static bool expire_round(struct store *s)
{
    struct table_entry *cand[EXPIRE_SAMPLE];
    size_t n = dedupe(cand, table_sample(s->table, &s->rng, cand, EXPIRE_SAMPLE));
    size_t with_ttl = 0, expired = 0;
    for (size_t i = 0; i < n; i++) {
        if (cand[i]->expire_ms == 0)
            continue;
        with_ttl++;
        if (store_is_expired(s, cand[i])) {
            expire_entry(s, cand[i]);
            expired++;
        }
    }
    return with_ttl != 0 && expired * 4 > with_ttl;
}

void store_turn(struct store *s, int64_t now_ms)
{
    store_set_clock(s, now_ms);
    if (__builtin_expect(s->flush_at_ms != 0, 0) && monotonic_ns() / 1000000 >= s->flush_at_ms)
        store_flush(s);
    table_step(s->table, STORE_TURN_STEP_BUDGET);
}

static void cool(struct store *s, size_t need);

void store_tick(struct store *s, int64_t now_ms)
{
    store_set_clock(s, now_ms);
    table_step(s->table, STORE_STEP_BUDGET);
    if (s->tier && s->maxmemory && store_used_bytes(s) > s->maxmemory)
        cool(s, 0); /* what was let in while the log was writing */
    if (s->stats.expires == 0)
        return;
    int64_t start = monotonic_ns();
    while (s->stats.expires != 0 && expire_round(s)) {
        if (monotonic_ns() - start > EXPIRE_BUDGET_NS)
            break;
    }
}

static inline void touch(struct store *s, struct table_entry *e)
{
    if (table_entry_lru(e) != (s->lru_s & TABLE_ENTRY_LRU_MASK))
        table_entry_set_lru(e, s->lru_s);
}

/* The key's live entry (expired ones are removed on the spot), tombstones
 * included. */
static inline struct table_entry *find_live(struct store *s, const void *key, uint32_t klen,
                                            uint64_t hash)
{
    struct table_entry *e = table_find(s->table, key, klen, hash);
    if (!e)
        return NULL;
    if (store_is_expired(s, e)) {
        remove_key(s, key, klen, hash);
        stat_add(&s->stats.expired_keys, 1);
        return NULL;
    }
    touch(s, e);
    return e;
}

struct table_entry *store_lookup(struct store *s, const void *key, uint32_t klen, uint64_t hash)
{
    struct table_entry *e = find_live(s, key, klen, hash);
    if (e && __builtin_expect((e->meta & TABLE_ENTRY_TOMBSTONE) != 0, 0))
        return NULL; /* a delete among versions: no key for plain commands */
    return e;
}

struct table_entry *store_lookup_versions(struct store *s, const void *key, uint32_t klen,
                                          uint64_t hash)
{
    struct table_entry *e = find_live(s, key, klen, hash);
    stat_add(e ? &s->stats.keyspace_hits : &s->stats.keyspace_misses, 1);
    return e;
}

struct table_entry *store_lookup_read(struct store *s, const void *key, uint32_t klen,
                                      uint64_t hash)
{
    struct table_entry *e = store_lookup(s, key, klen, hash);
    stat_add(e ? &s->stats.keyspace_hits : &s->stats.keyspace_misses, 1);
    return e;
}

struct table_entry *store_peek(struct store *s, const void *key, uint32_t klen, uint64_t hash)
{
    struct table_entry *e = table_find(s->table, key, klen, hash);
    if (!e || store_is_expired(s, e) || (e->meta & TABLE_ENTRY_TOMBSTONE))
        return NULL;
    return e;
}

static bool is_volatile_policy(enum store_policy p)
{
    return p == STORE_VOLATILE_LRU || p == STORE_VOLATILE_RANDOM || p == STORE_VOLATILE_TTL;
}

/* Seconds since e was last used (the clock wraps at 24 bits, as Redis's). */
static inline uint32_t idle_of(const struct store *s, const struct table_entry *e)
{
    return (s->lru_s - table_entry_lru(e)) & TABLE_ENTRY_LRU_MASK;
}

uint32_t store_idle_s(const struct store *s, const struct table_entry *e) { return idle_of(s, e); }

/* True when a is a better eviction victim than b (both eligible). */
static bool better_victim(const struct store *s, const struct table_entry *a,
                          const struct table_entry *b)
{
    switch (s->policy) {
    case STORE_ALLKEYS_LRU:
    case STORE_VOLATILE_LRU:
        return idle_of(s, a) > idle_of(s, b);
    case STORE_VOLATILE_TTL:
        return a->expire_ms < b->expire_ms;
    default:
        return false; /* random policies: the sample was random, take the first */
    }
}

/* Folds e into the best victim so far: an expired key beats everything. */
static void consider(const struct store *s, struct table_entry *e, struct table_entry **best)
{
    if (is_volatile_policy(s->policy) && e->expire_ms == 0)
        return;
    if (*best && store_is_expired(s, *best))
        return;
    if (!*best || store_is_expired(s, e) || better_victim(s, e, *best))
        *best = e;
}

struct volatile_scan {
    const struct store *s;
    struct table_entry *best;
    unsigned seen;
};

static void volatile_scan_fn(struct table_entry *e, void *arg)
{
    struct volatile_scan *v = arg;
    if (e->expire_ms == 0)
        return;
    v->seen++;
    consider(v->s, e, &v->best);
}

/* Finds a victim with a TTL by scanning on from evict_cursor until
 * `samples` of them were seen or the whole table was passed. */
static struct table_entry *scan_for_volatile(struct store *s)
{
    struct volatile_scan v = {.s = s};
    unsigned wraps = 0;
    while (v.seen < s->samples) {
        s->evict_cursor =
            table_scan(s->table, s->evict_cursor, EVICT_SCAN_CHUNK, volatile_scan_fn, &v);
        if (s->evict_cursor == 0 && ++wraps == 2)
            break;
    }
    return v.best;
}

static struct table_entry *pick_victim(struct store *s)
{
    struct table_entry *cand[STORE_MAX_SAMPLES];
    for (int attempt = 0; attempt < EVICT_SAMPLE_TRIES; attempt++) {
        size_t n = table_sample(s->table, &s->rng, cand, s->samples);
        if (n == 0)
            return NULL;
        struct table_entry *best = NULL;
        for (size_t i = 0; i < n; i++)
            consider(s, cand[i], &best);
        if (best)
            return best;
    }
    if (s->stats.expires == 0)
        return NULL;
    return scan_for_volatile(s);
}

/* Evicts until need more bytes fit, or no candidate is left. */
static void evict(struct store *s, size_t need)
{
    if (s->policy == STORE_NOEVICTION)
        return;
    while (store_used_bytes(s) + need > s->maxmemory) {
        if (is_volatile_policy(s->policy) && s->stats.expires == 0)
            return;
        struct table_entry *e = pick_victim(s);
        if (!e)
            return;
        if (store_is_expired(s, e)) {
            expire_entry(s, e);
        } else {
            journal_del(s, table_entry_key(e), e->key_len, e->cas);
            remove_entry(s, e);
            stat_add(&s->stats.evicted_keys, 1);
        }
    }
}

/* A versioned entry's version header (table.h), in memory only (the
 * log's records carry meta and body), unaligned, little-endian. A flags
 * byte, then:
 * - with VHDR_SINGLE (always with VHDR_SHARED): the clock is one dotted
 *   value (dvv_single) whose length is the entry's val_len; its packed
 *   fields (dvv_single_pack: actor, counter, timestamp) follow, and
 *   store_entry_version() makes its meta when asked. 1 + 15 bytes for the
 *   usual key, against 3 + 18 as a header and meta: a 32-byte value under a
 *   12 to 16-byte key fits a 96-byte block, not a 112-byte one;
 * - else meta_len as u16 and, unless VHDR_SHARED (the body is the picked
 *   value itself), body_len as u32: 3 bytes for a one-sibling key, 7
 *   otherwise (a cold entry's always: its body is on disk); the meta
 *   follows. */
#define VHDR_SHARED 1u
#define VHDR_SINGLE 2u
#define VHDR_SHORT 3u /* flags, meta_len */
#define VHDR_LONG 7u  /* flags, meta_len, body_len */

static size_t vhdr_put(char *p, uint32_t meta_len, uint32_t body_len, bool shared)
{
    p[0] = (char)(shared ? VHDR_SHARED : 0);
    p[1] = (char)(meta_len & 0xff);
    p[2] = (char)(meta_len >> 8);
    if (shared)
        return VHDR_SHORT;
    for (int i = 0; i < 4; i++)
        p[3 + i] = (char)(body_len >> (8 * i));
    return VHDR_LONG;
}

/* Reads the header at p: its length; *body_len stays as given when shared. */
static size_t vhdr_get(const char *p, uint32_t *meta_len, uint32_t *body_len, bool *shared)
{
    const uint8_t *u = (const uint8_t *)p;
    *shared = (u[0] & VHDR_SHARED) != 0;
    *meta_len = (uint32_t)u[1] | (uint32_t)u[2] << 8;
    if (*shared)
        return VHDR_SHORT;
    *body_len = (uint32_t)u[3] | (uint32_t)u[4] << 8 | (uint32_t)u[5] << 16 | (uint32_t)u[6] << 24;
    return VHDR_LONG;
}

/* Where a versioned entry's version header starts: after the value, or
 * after the key for a cold entry (its value is on disk). */
static const char *version_part(const struct table_entry *e)
{
    const char *val = e->data + e->key_len;
    return table_entry_is_cold(e) ? val : val + e->val_len;
}

static bool version_is_single(const struct table_entry *e)
{
    return (*(const uint8_t *)version_part(e) & VHDR_SINGLE) != 0;
}

/* Bytes of a single's header and packed fields. */
static size_t single_part_bytes(const struct table_entry *e)
{
    struct dvv_single d;
    return 1 + dvv_single_unpack((const uint8_t *)version_part(e) + 1, &d);
}

/* Bytes a cold entry keeps after its key: a versioned entry's version
 * header and meta, or a single's packed fields (its body is the record's
 * value, on disk). */
static size_t cold_part_bytes(const struct table_entry *e)
{
    if (!(e->meta & TABLE_ENTRY_VERSIONED))
        return 0;
    if (version_is_single(e))
        return single_part_bytes(e);
    struct store_version v;
    store_entry_version(e, &v);
    return VHDR_LONG + v.meta_len;
}

/* A hot entry whose value may leave memory, and saves memory by it. */
static bool coolable(const struct store *s, const struct table_entry *e)
{
    return !(e->meta & TABLE_ENTRY_COLD) && (e->meta & TABLE_ENTRY_LSN) && e != s->pinned &&
           !store_is_expired(s, e) &&
           mi_good_size(sizeof *e + e->key_len + cold_part_bytes(e) + sizeof(uint64_t)) <
               table_entry_mem(e) &&
           s->tier->readable(s->tier->arg, table_entry_lsn(e));
}

/* Replaces hot entry e by its cold form. False on out of memory. */
static bool cool_entry(struct store *s, struct table_entry *e)
{
    size_t part = cold_part_bytes(e);
    uint32_t kept = e->meta & (TABLE_ENTRY_VERSIONED | TABLE_ENTRY_TOMBSTONE);
    struct table_entry *c =
        table_entry_alloc_flags(e->key_len, part, TABLE_ENTRY_LSN | TABLE_ENTRY_COLD | kept);
    if (!c)
        return false;
    memcpy(c->data, table_entry_key(e), e->key_len);
    if (part && version_is_single(e)) { /* the packed fields, right after the key */
        memcpy(c->data + e->key_len, version_part(e), part);
    } else if (part) { /* the version header and meta, right after the key */
        struct store_version v;
        store_entry_version(e, &v);
        size_t h = vhdr_put(c->data + e->key_len, v.meta_len, v.body_len, false);
        memcpy(c->data + e->key_len + h, v.meta, v.meta_len);
    }
    c->expire_ms = e->expire_ms;
    c->cas = e->cas;
    c->val_len = e->val_len;
    c->mc_flags = e->mc_flags;
    c->meta |= table_entry_lru(e);
    table_entry_set_lsn(c, table_entry_lsn(e));
    uint64_t hash = keyhash(table_entry_key(e), e->key_len);
    struct table_entry *old;
    uint32_t key_part;
    if (table_put_placed(s->table, c, hash, &old, &key_part) != 0) {
        table_entry_free(c);
        return false;
    }
    stat_add(&s->stats.entry_bytes, table_entry_mem(c));
    part_count(s, c, 1, hash, key_part);
    if (c->expire_ms != 0)
        stat_add(&s->stats.expires, 1);
    stat_add(&s->stats.cold_keys, 1);
    stat_add(&s->stats.cold_bytes, c->val_len);
    stat_add(&s->stats.values_cooled, 1);
    if (old)
        drop_counted(s, old, true, hash, key_part);
    return true;
}

/* Moves values out of memory, least recently used first (sampled), until
 * need more bytes fit or nothing more can go. */
static void cool(struct store *s, size_t need)
{
    struct table_entry *cand[COOL_SAMPLE];
    int misses = 0;
    while (store_used_bytes(s) + need > s->maxmemory && misses < COOL_TRIES) {
        size_t n = table_sample(s->table, &s->rng, cand, COOL_SAMPLE);
        struct table_entry *best = NULL;
        for (size_t i = 0; i < n; i++)
            if (coolable(s, cand[i]) && (!best || idle_of(s, cand[i]) > idle_of(s, best)))
                best = cand[i];
        if (!best) {
            misses++;
            continue;
        }
        if (!cool_entry(s, best))
            return;
        misses = 0;
    }
}

int store_make_room(struct store *s, size_t need)
{
    if (store_used_bytes(s) + need <= s->maxmemory)
        return 0;
    if (s->tier) {
        cool(s, need);
        if (store_used_bytes(s) + need <= s->maxmemory + s->tier->unwritten_bytes(s->tier->arg))
            return 0; /* in flight values become coolable once written */
    }
    evict(s, need);
    return store_used_bytes(s) <= s->maxmemory ? 0 : -ENOMEM;
}

struct table_entry *store_entry_new(struct store *s, const void *key, uint32_t klen, size_t val_cap)
{
    struct table_entry *e = table_entry_alloc_flags(klen, val_cap, s->tier ? TABLE_ENTRY_LSN : 0);
    if (e)
        memcpy(e->data, key, klen);
    return e;
}

int store_commit(struct store *s, struct table_entry *e, uint64_t hash)
{
    e->cas = s->next_cas++;
    return publish(s, e, hash, NULL);
}

/* A new unpublished entry holding key = val after the checks and eviction
 * of a put (with `recovering`: cooling only, never a refusal); *out
 * receives it. 0, -E2BIG, -ENAMETOOLONG, -ENOMEM. */
static int put_prepare(struct store *s, const void *key, uint32_t klen, const void *val,
                       size_t vlen, int64_t expire_ms, uint32_t mc_flags, bool recovering,
                       struct table_entry **out)
{
    /* Recovery loads what the log holds whatever today's limits say: a
     * record skipped for them would leave the key's older version served
     * (and compaction would then drop the newer record for good). */
    int rc = recovering ? 0 : store_check_len(s, klen, vlen);
    if (rc != 0)
        return rc;
    size_t need = store_need(klen, vlen);
    if (!recovering)
        rc = store_ensure_memory(s, need);
    else if (s->tier && s->maxmemory && store_used_bytes(s) + need > s->maxmemory)
        cool(s, need);
    if (rc != 0)
        return rc;
    struct table_entry *e = store_entry_new(s, key, klen, vlen);
    if (!e)
        return -ENOMEM;
    memcpy(table_entry_val(e), val, vlen);
    e->val_len = (uint32_t)vlen;
    e->expire_ms = expire_ms;
    e->mc_flags = mc_flags;
    *out = e;
    return 0;
}

/* publish() without a journal record: the change is on disk already. */
static int publish_unlogged(struct store *s, struct table_entry *e, uint64_t hash,
                            struct table_entry **out)
{
    const struct store_journal *j = s->journal;
    s->journal = NULL;
    int rc = publish(s, e, hash, out);
    s->journal = j;
    return rc;
}

int store_put(struct store *s, const void *key, uint32_t klen, uint64_t hash, const void *val,
              size_t vlen, int64_t expire_ms, uint32_t mc_flags, struct table_entry **out)
{
    struct table_entry *e;
    if (__builtin_expect(s->put_hook != NULL, 0)) {
        int taken = s->put_hook->put(s, s->put_hook, key, klen, hash, val, vlen, expire_ms,
                                     mc_flags, out);
        if (taken != 1)
            return taken;
    }
    int rc = put_prepare(s, key, klen, val, vlen, expire_ms, mc_flags, false, &e);
    if (rc != 0)
        return rc;
    e->cas = s->next_cas++;
    return publish(s, e, hash, out);
}

int store_put_recovered(struct store *s, const void *key, uint32_t klen, uint64_t hash,
                        const void *val, size_t vlen, int64_t expire_ms, uint32_t mc_flags,
                        uint64_t cas, uint64_t lsn)
{
    struct table_entry *e;
    int rc = put_prepare(s, key, klen, val, vlen, expire_ms, mc_flags, true, &e);
    if (rc != 0)
        return rc;
    e->cas = cas;
    if (e->meta & TABLE_ENTRY_LSN)
        table_entry_set_lsn(e, lsn);
    return publish_unlogged(s, e, hash, NULL);
}

static int versioned_entry_new(struct store *s, const void *key, uint32_t klen,
                               const struct store_version *v, const struct dvv_clock *c,
                               struct table_entry **out);

/* An unpublished hot entry for cold entry `cold`, whose record's value is
 * val: a plain value, or a versioned entry's body (its meta is the cold
 * entry's). 0, -EINVAL (a body that does not decode with the meta), -ENOMEM. */
static int loaded_entry_new(struct store *s, const struct table_entry *cold, const void *val,
                            size_t vlen, struct table_entry **out)
{
    const char *key = table_entry_key(cold);
    if (!(cold->meta & TABLE_ENTRY_VERSIONED)) {
        struct table_entry *e = store_entry_new(s, key, cold->key_len, vlen);
        if (!e)
            return -ENOMEM;
        memcpy(table_entry_val(e), val, vlen);
        e->val_len = (uint32_t)vlen;
        e->mc_flags = cold->mc_flags;
        *out = e;
        return 0;
    }
    struct store_version v;
    store_entry_version(cold, &v);
    v.body = vlen ? val : "";
    struct dvv_entry entries[4];
    struct dvv_value values[4];
    struct dvv_clock small, *big = NULL, *c = &small;
    dvv_init(&small, entries, 4, values, 4);
    int rc = dvv_decode(v.meta, v.meta_len, v.body, v.body_len, c);
    if (rc == -ENOSPC) { /* more actors or siblings than the stack holds */
        c = big = dvv_create(DVV_MAX_ENTRIES, DVV_MAX_VALUES);
        rc = big ? dvv_decode(v.meta, v.meta_len, v.body, v.body_len, c) : -ENOMEM;
    }
    if (rc == 0)
        rc = versioned_entry_new(s, key, cold->key_len, &v, c, out);
    dvv_destroy(big);
    return rc == -ENOMEM ? rc : rc != 0 ? -EINVAL : 0;
}

int store_load_value(struct store *s, struct table_entry *cold, uint64_t hash, const void *val,
                     size_t vlen, struct table_entry **out)
{
    if (!table_entry_is_cold(cold) || vlen != store_entry_record_len(cold))
        return -EINVAL;
    int rc = store_ensure_memory(s, store_need(cold->key_len, vlen + cold_part_bytes(cold)));
    if (rc != 0)
        return rc;
    if (table_find(s->table, table_entry_key(cold), cold->key_len, hash) != cold)
        return -EINVAL; /* eviction took the key meanwhile */
    struct table_entry *e = NULL;
    rc = loaded_entry_new(s, cold, val, vlen, &e);
    if (rc != 0)
        return rc;
    e->expire_ms = cold->expire_ms;
    e->cas = cold->cas;
    table_entry_set_lsn(e, table_entry_lsn(cold));
    rc = publish_unlogged(s, e, hash, out); /* the value is on disk already */
    if (rc == 0) {
        stat_sub(&s->stats.writes, 1); /* not a change */
        stat_add(&s->stats.values_loaded, 1);
    }
    return rc;
}

/* ---- versioned keys ---- */

void store_entry_version(const struct table_entry *e, struct store_version *v)
{
    const char *val = e->data + e->key_len;
    bool is_cold = table_entry_is_cold(e); /* no value: the version part follows the key */
    v->body_len = e->val_len; /* a shared body's (a packed one's is always) */
    struct dvv_single d;
    if (store_entry_single(e, &d)) {
        v->meta_len = (uint32_t)dvv_single_meta(&d, (uint8_t *)v->single_meta);
        v->meta = v->single_meta;
        v->body = is_cold ? NULL : val;
        return;
    }
    bool shared;
    const char *part = version_part(e);
    v->meta = part + vhdr_get(part, &v->meta_len, &v->body_len, &shared);
    v->body = is_cold ? NULL : shared ? val : v->meta + v->meta_len;
}

uint32_t store_versioned_record_len(const struct table_entry *e)
{
    if (version_is_single(e))
        return e->val_len; /* the body is the value */
    struct store_version v;
    store_entry_version(e, &v);
    return v.body_len;
}

bool store_entry_single(const struct table_entry *e, struct dvv_single *d)
{
    if (!(e->meta & TABLE_ENTRY_VERSIONED) || !version_is_single(e))
        return false;
    dvv_single_unpack((const uint8_t *)version_part(e) + 1, d);
    d->len = e->val_len; /* the value is the body (a tombstone's: 0) */
    return true;
}

/* Bytes of e's value area in use: the value, and a versioned entry's
 * version part. */
static size_t entry_val_bytes(const struct table_entry *e)
{
    if (!(e->meta & TABLE_ENTRY_VERSIONED))
        return e->val_len;
    if (version_is_single(e))
        return e->val_len + single_part_bytes(e);
    struct store_version v;
    store_entry_version(e, &v);
    bool shared = v.body == table_entry_key(e) + e->key_len;
    return e->val_len + (shared ? VHDR_SHORT : VHDR_LONG) + v.meta_len + (shared ? 0 : v.body_len);
}

/* When clock c (encoded as v, its one value being v's whole body) is one
 * dotted value: the packed fields into out, and their length; else 0 (the
 * meta is kept). v's meta is c's canonical encoding (dvv_encode_meta's, or
 * bytes dvv_decode took, which takes canonical ones only), which the packed
 * fields give back byte for byte (tests/unit/test_dvv.c). */
static size_t single_packed(const struct dvv_clock *c, const struct store_version *v,
                            uint8_t out[DVV_SINGLE_PACK_MAX])
{
    struct dvv_single d;
    if (!dvv_single_of(c, &d) || d.len != v->body_len)
        return 0;
#ifndef NDEBUG
    uint8_t meta[DVV_SINGLE_META_MAX];
    size_t n = dvv_single_meta(&d, meta);
    assert(n == v->meta_len && memcmp(meta, v->meta, n) == 0);
#endif
    return dvv_single_pack(&d, out);
}

/* An unpublished versioned entry for the encoded clock v, whose decoded
 * form is c (the same values, in the same order). 0, -EINVAL (no value to
 * pick), -ENOMEM. */
static int versioned_entry_new(struct store *s, const void *key, uint32_t klen,
                               const struct store_version *v, const struct dvv_clock *c,
                               struct table_entry **out)
{
    int pick = dvv_pick(c);
    if (pick < 0)
        return -EINVAL;
    size_t off = 0; /* the picked value's place in the body (values in clock order) */
    for (int i = 0; i < pick; i++)
        off += c->values[i].len;
    const struct dvv_value *pv = &c->values[pick];
    if (off + pv->len > v->body_len)
        return -EINVAL;
    bool shared = off == 0 && pv->len == v->body_len;
    uint8_t packed[DVV_SINGLE_PACK_MAX];
    size_t packed_len = shared ? single_packed(c, v, packed) : 0;
    size_t hlen = packed_len ? 1 + packed_len : shared ? VHDR_SHORT : VHDR_LONG;
    size_t cap = pv->len + hlen + (packed_len ? 0 : v->meta_len) + (shared ? 0 : v->body_len);
    struct table_entry *e = store_entry_new(s, key, klen, cap);
    if (!e)
        return -ENOMEM;
    char *val = table_entry_val(e);
    if (pv->len)
        memcpy(val, v->body + off, pv->len);
    if (packed_len) {
        val[pv->len] = (char)(VHDR_SHARED | VHDR_SINGLE);
        memcpy(val + pv->len + 1, packed, packed_len);
    } else {
        vhdr_put(val + pv->len, v->meta_len, v->body_len, shared);
        memcpy(val + pv->len + hlen, v->meta, v->meta_len);
    }
    if (!shared && v->body_len)
        memcpy(val + pv->len + hlen + v->meta_len, v->body, v->body_len);
    e->val_len = pv->len;
    e->mc_flags = pv->mc_flags; /* what plain reads of the pick answer */
    e->meta |= TABLE_ENTRY_VERSIONED | ((pv->flags & DVV_TOMBSTONE) ? TABLE_ENTRY_TOMBSTONE : 0);
    *out = e;
    return 0;
}

int store_put_versioned(struct store *s, const void *key, uint32_t klen, uint64_t hash,
                        const struct dvv_clock *c, int64_t expire_ms, struct table_entry **out)
{
    return store_put_versioned_meta(s, key, klen, hash, c, NULL, 0, expire_ms, out);
}

int store_put_versioned_meta(struct store *s, const void *key, uint32_t klen, uint64_t hash,
                             const struct dvv_clock *c, const void *given_meta,
                             size_t given_meta_len, int64_t expire_ms, struct table_entry **out)
{
    struct buf *meta = &s->scratch[0], *body = &s->scratch[1]; /* empty between calls */
    int rc = given_meta ? 0 : dvv_encode_meta(c, meta);
    if (rc == 0)
        rc = dvv_encode_body(c, body); /* a copy: the values may be in an entry evicted below */
    if (rc == 0 && (meta->failed || body->failed))
        rc = -ENOMEM;
    const char *meta_bytes = given_meta ? given_meta : meta->data;
    size_t meta_len = given_meta ? given_meta_len : meta->len;
    if (rc == 0 && meta_len > UINT16_MAX) /* a record's meta_len (seg.h) */
        rc = -E2BIG;
    if (rc == 0)
        rc = store_check_len(s, klen, body->len);
    if (rc == 0)
        rc = store_ensure_memory(s, store_need(klen, meta_len + body->len));
    struct table_entry *e = NULL;
    struct store_version v = {.meta = meta_bytes,
                              .meta_len = (uint32_t)meta_len,
                              .body = body->data,
                              .body_len = (uint32_t)body->len};
    if (rc == 0)
        rc = versioned_entry_new(s, key, klen, &v, c, &e);
    if (rc == 0) {
        e->expire_ms = expire_ms;
        e->cas = s->next_cas++;
        rc = publish(s, e, hash, out);
    }
    store_scratch_done(meta);
    store_scratch_done(body);
    return rc;
}

int store_put_versioned_recovered(struct store *s, const void *key, uint32_t klen, uint64_t hash,
                                  const struct store_version *v, const struct dvv_clock *c,
                                  int64_t expire_ms, uint64_t cas, uint64_t lsn)
{
    size_t need = store_need(klen, v->meta_len + v->body_len);
    if (s->tier && s->maxmemory && store_used_bytes(s) + need > s->maxmemory)
        cool(s, need);
    struct table_entry *e;
    int rc = versioned_entry_new(s, key, klen, v, c, &e);
    if (rc != 0)
        return rc;
    e->expire_ms = expire_ms;
    e->cas = cas;
    if (e->meta & TABLE_ENTRY_LSN)
        table_entry_set_lsn(e, lsn);
    return publish_unlogged(s, e, hash, NULL);
}

void store_note_sibling_warning(struct store *s) { stat_add(&s->stats.sibling_warnings, 1); }

int store_append(struct store *s, struct table_entry *e, uint64_t hash, const void *data, size_t n,
                 struct table_entry **out)
{
    if (table_entry_is_cold(e))
        return -EIO; /* tier.h loads the value before a handler needs it */
    size_t len = e->val_len;
    size_t total = len + n;
    if (total > s->max_val_len)
        return -E2BIG;
    /* in place only unwatched: the change of cas and length is a new digest
     * (store_watch), which the replacement below shows the watcher */
    if (!s->watch && !(e->meta & TABLE_ENTRY_VERSIONED) && table_entry_val_cap(e) - len >= n) {
        memcpy(table_entry_val(e) + len, data, n);
        __atomic_store_n(&e->val_len, (uint32_t)total, __ATOMIC_RELEASE);
        uint64_t prev = e->cas;
        __atomic_store_n(&e->cas, s->next_cas++, __ATOMIC_RELAXED);
        touch(s, e);
        journal_put(s, e, prev);
        stat_add(&s->stats.writes, 1);
        if (out)
            *out = e;
        return 0;
    }
    size_t cap = total < APPEND_DOUBLE_LIMIT ? total * 2 : total + APPEND_DOUBLE_LIMIT;
    if (cap > s->max_val_len)
        cap = s->max_val_len;
    struct table_entry *ne = store_entry_new(s, table_entry_key(e), e->key_len, cap);
    if (!ne)
        return -ENOMEM;
    memcpy(table_entry_val(ne), table_entry_val(e), len);
    memcpy(table_entry_val(ne) + len, data, n);
    ne->val_len = (uint32_t)total;
    ne->expire_ms = e->expire_ms;
    ne->mc_flags = e->mc_flags;
    ne->cas = s->next_cas++;
    return publish(s, ne, hash, out);
}

int store_set_expire(struct store *s, struct table_entry *e, uint64_t hash, int64_t expire_ms,
                     struct table_entry **out)
{
    if (table_entry_is_cold(e))
        return -EIO; /* tier.h loads the value before a handler needs it */
    if (expire_ms == e->expire_ms) {
        if (out)
            *out = e;
        return 0;
    }
    if (expire_ms != 0 && expire_ms <= s->now_ms) {
        journal_del(s, table_entry_key(e), e->key_len, e->cas);
        remove_key(s, table_entry_key(e), e->key_len, hash);
        stat_add(&s->stats.writes, 1);
        if (out)
            *out = NULL;
        return 0;
    }
    size_t bytes = entry_val_bytes(e); /* a versioned entry keeps its versions */
    struct table_entry *ne = store_entry_new(s, table_entry_key(e), e->key_len, bytes);
    if (!ne)
        return -ENOMEM;
    memcpy(table_entry_val(ne), table_entry_val(e), bytes);
    ne->meta |= e->meta & (TABLE_ENTRY_VERSIONED | TABLE_ENTRY_TOMBSTONE);
    ne->val_len = e->val_len;
    ne->mc_flags = e->mc_flags;
    ne->cas = e->cas;
    ne->expire_ms = expire_ms;
    return publish(s, ne, hash, out);
}

bool store_delete(struct store *s, const void *key, uint32_t klen, uint64_t hash)
{
    struct table_entry *e = table_remove(s->table, key, klen, hash);
    if (!e)
        return false;
    bool live = !store_is_expired(s, e);
    bool visible = live && !(e->meta & TABLE_ENTRY_TOMBSTONE);
    if (live)
        journal_del(s, key, klen, e->cas);
    drop(s, e, hash);
    stat_add(live ? &s->stats.writes : &s->stats.expired_keys, 1);
    return visible;
}

struct table_entry *store_random(struct store *s)
{
    for (int i = 0; i < RANDOM_TRIES; i++) {
        struct table_entry *e;
        if (table_sample(s->table, &s->rng, &e, 1) == 0)
            return NULL;
        if (!store_is_expired(s, e))
            return e;
        expire_entry(s, e);
    }
    return NULL;
}

void store_flush_after(struct store *s, int64_t delay_ms)
{
    int64_t now = monotonic_ns() / 1000000;
    s->flush_at_ms = delay_ms < INT64_MAX - now ? now + delay_ms : INT64_MAX;
}

void store_flush(struct store *s)
{
    s->flush_at_ms = 0;
    if (s->journal)
        s->journal->flush(s->journal->arg);
    table_clear(s->table);
    if (s->watch)
        s->watch(s->watch_arg, NULL, 0, TABLE_NO_PART);
    if (s->part_keys)
        memset(s->part_keys, 0, s->nparts * sizeof *s->part_keys);
    __atomic_store_n(&s->stats.entry_bytes, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->stats.expires, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->stats.cold_keys, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&s->stats.cold_bytes, 0, __ATOMIC_RELAXED);
}

size_t store_count(const struct store *s)
{
    return table_count(s->table);
}

size_t store_used_bytes(const struct store *s)
{
    return __atomic_load_n(&s->stats.entry_bytes, __ATOMIC_RELAXED) +
           table_overhead_bytes(s->table);
}

void store_read_stats(const struct store *s, struct store_stats *out)
{
    const struct store_stats *st = &s->stats;
    memset(out, 0, sizeof *out);
    out->keyspace_hits = __atomic_load_n(&st->keyspace_hits, __ATOMIC_RELAXED);
    out->keyspace_misses = __atomic_load_n(&st->keyspace_misses, __ATOMIC_RELAXED);
    out->expired_keys = __atomic_load_n(&st->expired_keys, __ATOMIC_RELAXED);
    out->evicted_keys = __atomic_load_n(&st->evicted_keys, __ATOMIC_RELAXED);
    out->writes = __atomic_load_n(&st->writes, __ATOMIC_RELAXED);
    out->expires = __atomic_load_n(&st->expires, __ATOMIC_RELAXED);
    out->entry_bytes = __atomic_load_n(&st->entry_bytes, __ATOMIC_RELAXED);
    out->cold_keys = __atomic_load_n(&st->cold_keys, __ATOMIC_RELAXED);
    out->cold_bytes = __atomic_load_n(&st->cold_bytes, __ATOMIC_RELAXED);
    out->values_cooled = __atomic_load_n(&st->values_cooled, __ATOMIC_RELAXED);
    out->values_loaded = __atomic_load_n(&st->values_loaded, __ATOMIC_RELAXED);
    out->sibling_warnings = __atomic_load_n(&st->sibling_warnings, __ATOMIC_RELAXED);
    out->keys = store_count(s);
    out->used_bytes = store_used_bytes(s);
}
