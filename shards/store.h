/* store.h: one shard's keyspace: keys and values with expiry, memory
 * accounting and eviction, on top of the shard's table (table.h).
 * Time: the store keeps a cached clock, now_ms (absolute unix milliseconds),
 *   set once per loop turn by store_tick(); every expiry decision uses it, so
 *   a whole loop turn sees one instant. An expire_ms of 0 means "no expiry";
 *   an entry with 0 < expire_ms <= now_ms is expired and never returned:
 *   lookups remove it on the spot, store_tick() sweeps them in the background.
 * Memory: used bytes are the mimalloc usable size of every entry plus the
 *   table's slot arrays. With maxmemory set, calls that grow the keyspace
 *   first evict keys by the configured policy (Redis's sampled approximation)
 *   and fail with -ENOMEM when the store stays over the limit.
 * Threads: struct store is owned by one shard thread, which alone calls every
 *   function here, except store_read_stats(), store_used_bytes() and
 *   store_count(), which any thread may call (the counters are written by
 *   the owner with relaxed atomic stores and read with relaxed atomic loads).
 * Entries: a struct table_entry returned by a lookup is borrowed: valid until
 *   the next call that changes the store (a put, delete, expiry change,
 *   eviction, store_tick). Callers read it, never write it; every change goes
 *   through this API so that accounting stays exact.
 * Values beyond RAM (storage = log with maxmemory, store_attach_tier()):
 *   every entry also records where its current record is in the shard's
 *   segment log (table.h, TABLE_ENTRY_LSN). Past maxmemory, making room
 *   first turns the least recently used values that are already written
 *   to the log into cold entries (the key, its metadata and the log
 *   position stay in memory; the value is dropped), and only then applies
 *   maxmemory-policy. While records are still being written, a write
 *   the limit cannot make room for is accepted as long as the overshoot is
 *   no more than the bytes still unwritten (values that will become
 *   coolable), and the tick cools it back under. Recovery (store_put_
 *   recovered) never refuses and never evicts: it cools what it can, and a
 *   keyspace whose index alone exceeds maxmemory is loaded whole; writes then
 *   meet maxmemory-policy, as after Redis loads an AOF.
 *   A cold value is read back by the shard (tier.h) and
 *   put back with store_load_value(). Handlers never see a cold entry
 *   where they need its value: tier.h loads it first. store_pin() keeps the
 *   key a handler is running for from being turned cold under it.
 * Errors: 0 or a negative errno: -ENOMEM (over maxmemory with nothing left to
 *   evict, or an allocation failed; the key is unchanged), -E2BIG (value
 *   longer than max_val_len), -ENAMETOOLONG (key longer than max_key_len). */
#ifndef RINGKV_SHARDS_STORE_H
#define RINGKV_SHARDS_STORE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "dvv.h"
#include "table.h"

/* maxmemory-policy, in the order of Redis's names (and of cfg's enum). */
enum store_policy {
    STORE_NOEVICTION,
    STORE_ALLKEYS_LRU,
    STORE_VOLATILE_LRU,
    STORE_ALLKEYS_RANDOM,
    STORE_VOLATILE_RANDOM,
    STORE_VOLATILE_TTL,
};

#define STORE_DEFAULT_SAMPLES 5
#define STORE_DEFAULT_MAX_VAL_LEN (512ull * 1024 * 1024) /* Redis's proto-max-bulk-len */

struct store_config {
    size_t maxmemory; /* bytes for this shard; 0 = no limit */
    enum store_policy policy;
    unsigned samples;     /* keys sampled per eviction; 0 = STORE_DEFAULT_SAMPLES */
    uint32_t max_key_len; /* 0 or above SEG_MAX_KEY: SEG_MAX_KEY (what a log
                             record holds, seg.h) */
    uint64_t max_val_len; /* 0 = STORE_DEFAULT_MAX_VAL_LEN; above SEG_MAX_VALUE:
                             SEG_MAX_VALUE */
    size_t size_hint;     /* keys expected, for the table's first size */
    uint64_t seed;        /* rng seed for sampling; 0 = derived from the clock */
};

/* Counters of one store. The owner writes them with relaxed atomic stores
 * (it is their only writer, so a plain read plus a store is an increment);
 * other threads read them through store_read_stats(). They sit on their own
 * cache line so that readers do not slow the owner's other fields. */
struct store_stats {
    uint64_t keyspace_hits;   /* read lookups that found a live key */
    uint64_t keyspace_misses; /* read lookups that did not */
    uint64_t expired_keys;    /* keys removed because their time had come */
    uint64_t evicted_keys;    /* keys removed to stay under maxmemory */
    uint64_t writes;          /* changes made by commands (puts, deletes, expiry changes) */
    uint64_t expires;         /* keys that have an expiry, now */
    uint64_t entry_bytes;     /* usable bytes of every entry, now */
    uint64_t cold_keys;       /* entries whose value is on disk only, now */
    uint64_t cold_bytes;      /* value bytes on disk only, now */
    uint64_t values_cooled;   /* values moved out of memory to make room */
    uint64_t values_loaded;   /* cold values read back into memory */
    uint64_t sibling_warnings; /* versioned writes that left more than
                                  warn-siblings siblings (cmd_ring.c) */
    /* Filled by store_read_stats() only (derived, not kept up to date): */
    uint64_t keys;       /* store_count() */
    uint64_t used_bytes; /* store_used_bytes() */
} __attribute__((aligned(64)));

/* Where changes that must outlive the process go (the shard's segment log,
 * persist.h): every put, delete and flush, in the order they happen.
 * Expiry needs no record (records carry the expiry time). Called on the
 * owner thread, inside the change. */
struct store_journal {
    /* prev: the key's version (cas) before the change, 0 when it had none.
     * put returns the record's position in the log (its lsn). */
    uint64_t (*put)(void *arg, const struct table_entry *e, uint64_t prev);
    void (*del)(void *arg, const void *key, uint32_t klen, uint64_t prev);
    void (*flush)(void *arg);
    void *arg;
};

/* Values beyond RAM: what the store asks of the log. */
struct store_tier {
    /* True when the record at log position lsn is written and can be read
     * back (only such values may leave memory). */
    bool (*readable)(void *arg, uint64_t lsn);
    /* Bytes of records on their way to the file: values that cannot leave
     * memory yet, but will once written. */
    uint64_t (*unwritten_bytes)(void *arg);
    void *arg;
};

/* Called for every entry entering or leaving the table (store_watch), with
 * its key's hash (keyhash) and partition (the table's part_of for it), or
 * TABLE_NO_PART where the store does not know it: computed once per change
 * for the table, the watcher and the partition counts alike. */
typedef void (*store_watch_fn)(void *arg, const struct table_entry *e, uint64_t hash,
                               uint32_t part);
/* A cluster's write of one key as a version, in one store write (replica.h
 * replica_put_begin sets it, around a coordinated command's run): while
 * store->put_hook is set, store_put() calls put() first, which writes the
 * key's new version itself (0 or the store's -errno, as store_put) or
 * returns 1: not taken (another key, say), the plain write goes on. A
 * cluster of one never sets it (one predictable branch per store_put). */
struct store;
struct store_put_hook {
    int (*put)(struct store *s, struct store_put_hook *h, const void *key, uint32_t klen,
               uint64_t hash, const void *val, size_t vlen, int64_t expire_ms, uint32_t mc_flags,
               struct table_entry **out);
};

/* One shard's keyspace. Owner: the shard thread. Place it 64-byte aligned
 * (as a member of an aligned struct, or with mi_malloc_aligned), so that
 * stats has its cache line to itself. */
struct store {
    struct table *table;
    int64_t now_ms; /* cached clock, unix ms (store_tick) */
    uint32_t lru_s; /* coarse clock for entries' lru_s: now_ms / 1000 */
    uint64_t rng;   /* xorshift64 state for sampling */
    size_t maxmemory;
    enum store_policy policy;
    unsigned samples;
    uint32_t max_key_len;
    uint64_t max_val_len;
    uint64_t next_cas;     /* the next cas unique to hand out */
    uint64_t evict_cursor; /* where the volatile-* fallback scan resumes */
    int64_t flush_at_ms;   /* a delayed flush (memcached flush_all N), CLOCK_MONOTONIC; 0 = none */
    const struct store_journal *journal; /* NULL: a pure in-memory store */
    const struct store_tier *tier;       /* NULL: every value stays in memory */
    const struct table_entry *pinned;    /* never turned cold (store_pin) */
    /* Keys per partition (store_track_partitions); NULL: not kept. */
    uint64_t *part_keys;
    uint32_t nparts;
    uint32_t (*part_of)(const void *arg, const void *key, uint32_t klen);
    const void *part_arg;
    bool had_tombstone; /* a tombstone entered once: reaping has work (replica.h) */
    store_watch_fn watch; /* store_watch(); NULL: none */
    void *watch_arg;
    struct store_put_hook *put_hook; /* NULL but around a coordinated write (above) */
    /* Encoding scratch, kept between calls (store_scratch_done): [0], [1]
     * store_put_versioned's meta and body; [2], [3] replica_apply's. */
    struct buf scratch[4];
    struct store_stats stats;
};

/* Sets up an empty store and reads the real clock. 0, or -ENOMEM. */
int store_init(struct store *s, const struct store_config *cfg);
/* From now on, every change is also sent to j (NULL: none). */
void store_attach_journal(struct store *s, const struct store_journal *j);
/* From now on, entries carry their log position and values may leave
 * memory past maxmemory (see above). Before any entry is made. */
void store_attach_tier(struct store *s, const struct store_tier *t);
/* Keeps e's value in memory until the next store_pin() (NULL: none). */
static inline void store_pin(struct store *s, const struct table_entry *e) { s->pinned = e; }
/* Frees the table and every entry. */
void store_fini(struct store *s);

/* Sets the cached clock (and lets the table reclaim and migrate a little).
 * Once per loop turn, before serving requests. */
void store_turn(struct store *s, int64_t now_ms);

/* On the loop's tick (10 times a second): sets the clock, advances the table's incremental work,
 * and runs active expiry: while keys with a TTL exist, samples up to 20 keys,
 * removes the expired ones, and repeats while more than a quarter of the
 * sampled keys with a TTL had expired, for at most about 1 ms. */
void store_tick(struct store *s, int64_t now_ms);

/* True when e has an expiry that has come (by the cached clock). */
static inline bool store_is_expired(const struct store *s, const struct table_entry *e)
{
    return e->expire_ms != 0 && e->expire_ms <= s->now_ms;
}

/* A prefetch hint for a batch of lookups to come (table_prefetch). */
static inline void store_prefetch(const struct store *s, const struct table_probe *probes,
                                  size_t n)
{
    table_prefetch(s->table, probes, n);
}

/* Finds a live key for a write or an existence check: NULL when absent or
 * expired (an expired key is removed on the spot), or versioned with a
 * tombstone as its pick. Updates the entry's LRU
 * clock; counts no hit or miss. hash is keyhash(key, klen). */
struct table_entry *store_lookup(struct store *s, const void *key, uint32_t klen, uint64_t hash);
/* The same for reads: also counts a keyspace hit or miss. */
struct table_entry *store_lookup_read(struct store *s, const void *key, uint32_t klen,
                                      uint64_t hash);

/* Finds a live key without using it (OBJECT, MEMORY USAGE): its access
 * clock stays, no hit or miss is counted, an expired key is not removed
 * (NULL). NULL too for a tombstone. */
struct table_entry *store_peek(struct store *s, const void *key, uint32_t klen, uint64_t hash);
/* Seconds since e was last used (OBJECT IDLETIME; the clock wraps at 24
 * bits, about 194 days, as Redis's). */
uint32_t store_idle_s(const struct store *s, const struct table_entry *e);

/* Makes room for a write of about `need` bytes: evicts keys, as the policy
 * allows, until need more bytes fit under maxmemory. As Redis, the write is
 * refused (-ENOMEM) only when the store is still over maxmemory once nothing
 * more can go; a store under the limit accepts it, even if it then
 * overshoots (and the next write evicts or is refused). 0 at once without
 * maxmemory. Entries looked up before this call may be gone after it: call
 * it first, then look up. store_make_room() is its slow path. */
int store_make_room(struct store *s, size_t need);
static inline int store_ensure_memory(struct store *s, size_t need)
{
    return s->maxmemory == 0 ? 0 : store_make_room(s, need);
}

/* Bytes a put of this key and value will roughly need, for store_ensure_memory(). */
static inline size_t store_need(size_t klen, size_t vlen)
{
    return sizeof(struct table_entry) + klen + vlen;
}

/* 0 when a key of klen bytes and a value of vlen bytes are within the
 * limits, else -ENAMETOOLONG (the key) or -E2BIG (the value). */
static inline int store_check_len(const struct store *s, size_t klen, uint64_t vlen)
{
    if (klen > s->max_key_len)
        return -ENAMETOOLONG;
    return vlen > s->max_val_len ? -E2BIG : 0;
}

/* Writes key = val with an absolute expiry (0 none) and memcached flags,
 * replacing any previous value (and its expiry). Makes room first (as
 * store_ensure_memory(), so earlier lookups are void). Gives the entry a
 * new cas. An expiry already past leaves the key absent.
 * *out (may be NULL) receives the new entry, or NULL if it expired at once.
 * 0, -ENOMEM, -E2BIG, -ENAMETOOLONG. */
int store_put(struct store *s, const void *key, uint32_t klen, uint64_t hash, const void *val,
              size_t vlen, int64_t expire_ms, uint32_t mc_flags, struct table_entry **out);

/* Recovery: as store_put, with the version (cas) and log position the
 * record has on disk; nothing is journaled, nothing is refused for the
 * length limits (the log's newest record of a key always wins, even after a
 * restart with lower limits), and nothing is refused or evicted for
 * maxmemory (values are cooled where a tier allows). 0 or -ENOMEM. */
int store_put_recovered(struct store *s, const void *key, uint32_t klen, uint64_t hash,
                        const void *val, size_t vlen, int64_t expire_ms, uint32_t mc_flags,
                        uint64_t cas, uint64_t lsn);

/* Puts back the value of the cold entry `cold` (still the key's entry),
 * read from the log (the record's value: a versioned entry's body): a hot
 * entry with the same metadata replaces it.
 * Makes room first. *out (may be NULL) receives the new entry.
 * 0, -ENOMEM (the entry stays cold), -EINVAL (vlen is not the value's). */
int store_load_value(struct store *s, struct table_entry *cold, uint64_t hash, const void *val,
                     size_t vlen, struct table_entry **out);

/* ---- versioned keys (RING.*; table.h, TABLE_ENTRY_VERSIONED) ----
 * A versioned entry stores its clock encoded (dvv.h): the meta and the
 * body. Its value (and its mc_flags: the sibling's dvv_value.mc_flags),
 * for every plain command, is the sibling dvv_pick() chooses; a key whose
 * pick is a tombstone is absent for them (lookups return NULL,
 * store_delete() reports no key). Plain writes replace it with
 * a plain entry; an expiry change keeps its versions. Past maxmemory a
 * versioned entry is cooled as a plain one: its meta stays in memory, its
 * body (the log record's value) goes. Tombstones stay until a plain write or
 * delete replaces them, or replica_reap() (replica.h) after tombstone-grace. */

/* The stored clock of a versioned entry: meta and body, borrowed from e;
 * body is NULL for a cold entry (on disk only, body_len bytes). An entry
 * holding one dotted value (dvv_single, the usual key) keeps its fields
 * packed, and its meta is made in single_meta: so the pointers are valid
 * as long as e and this struct both are (do not copy it to keep them). */
struct store_version {
    const char *meta;
    uint32_t meta_len;
    const char *body;
    uint32_t body_len;
    char single_meta[DVV_SINGLE_META_MAX];
};
void store_entry_version(const struct table_entry *e, struct store_version *v);
/* True, with *d set, when versioned entry e holds one dotted value kept
 * packed (the usual key): its clock without a meta to decode. */
bool store_entry_single(const struct table_entry *e, struct dvv_single *d);

/* The value bytes a log record of e holds: the body of a versioned entry
 * (its meta goes in the record's meta), else the value. */
uint32_t store_versioned_record_len(const struct table_entry *e);
static inline uint32_t store_entry_record_len(const struct table_entry *e)
{
    if (__builtin_expect(!(e->meta & TABLE_ENTRY_VERSIONED), 1))
        return e->val_len;
    return store_versioned_record_len(e);
}

/* Finds a live key for RING.*: as store_lookup_read, but a versioned key
 * whose pick is a tombstone is returned too (and counts as a hit). */
struct table_entry *store_lookup_versions(struct store *s, const void *key, uint32_t klen,
                                          uint64_t hash);

/* Writes key = clock c (a versioned entry, made canonical by dvv.h) with an
 * absolute expiry (0 none), replacing the key's entry, with a new cas.
 * Makes room first. The clock's value bytes are copied before anything is
 * evicted, so they may point into an entry of this store (the key's own,
 * decoded). *out (may be NULL)
 * receives the entry. 0, -ENOMEM, -E2BIG (body or meta past the limits),
 * -ENAMETOOLONG, -EINVAL (an empty clock). */
int store_put_versioned(struct store *s, const void *key, uint32_t klen, uint64_t hash,
                        const struct dvv_clock *c, int64_t expire_ms, struct table_entry **out);
/* The same with c's meta already encoded (dvv_encode_meta's bytes; not
 * in an entry of this store, which making room may evict). */
int store_put_versioned_meta(struct store *s, const void *key, uint32_t klen, uint64_t hash,
                             const struct dvv_clock *c, const void *meta, size_t meta_len,
                             int64_t expire_ms, struct table_entry **out);

/* Recovery: as store_put_recovered, for a record with version meta. c is
 * the clock decoded from meta and body (its values point into body). */
int store_put_versioned_recovered(struct store *s, const void *key, uint32_t klen, uint64_t hash,
                                  const struct store_version *v, const struct dvv_clock *c,
                                  int64_t expire_ms, uint64_t cas, uint64_t lsn);

/* Done with a scratch buffer of the store: emptied, its allocation kept
 * unless past STORE_SCRATCH_KEEP bytes. */
#define STORE_SCRATCH_KEEP (64u << 10)
static inline void store_scratch_done(struct buf *b)
{
    if (b->cap > STORE_SCRATCH_KEEP) {
        buf_fini(b);
        buf_init(b);
    } else {
        buf_clear(b);
    }
}

/* Counts a write that left more siblings than warn-siblings. */
void store_note_sibling_warning(struct store *s);

/* Two-step write, for values built in place (SETRANGE, INCR, PREPEND...):
 * store_entry_new() allocates an unpublished entry holding the key, with
 * room for val_cap value bytes; the caller writes the value, sets val_len,
 * expire_ms and mc_flags, then store_commit() publishes it with a new cas,
 * replacing the key's previous entry. Neither evicts (call
 * store_ensure_memory() first) nor checks the limits (call store_check_len()
 * first). store_entry_new() returns NULL on out of memory. store_commit()
 * returns 0 or -ENOMEM (e is freed then); an expiry already past removes the
 * key instead. */
struct table_entry *store_entry_new(struct store *s, const void *key, uint32_t klen,
                                    size_t val_cap);
int store_commit(struct store *s, struct table_entry *e, uint64_t hash);

/* Appends n bytes to the live entry e (from a lookup) of key hash `hash`,
 * keeping its expiry and flags, with a new cas. In place when the entry's
 * allocation has room; else the value moves to a new entry with spare room
 * for further appends (doubling up to 1 MiB, then 1 MiB more). Does not
 * evict. *out (may be NULL) receives the entry now holding the key.
 * 0, -ENOMEM, -E2BIG (the result would exceed max_val_len). */
int store_append(struct store *s, struct table_entry *e, uint64_t hash, const void *data, size_t n,
                 struct table_entry **out);

/* Sets the absolute expiry (0 = none) of the live entry e, keeping value,
 * flags and cas (as memcached's touch). Entries are immutable once
 * published, so this republishes a copy. A time already past deletes the
 * key. *out (may be NULL) receives the new entry, or NULL if deleted.
 * 0 or -ENOMEM (the key is unchanged then). */
int store_set_expire(struct store *s, struct table_entry *e, uint64_t hash, int64_t expire_ms,
                     struct table_entry **out);

/* Deletes a key. True when a live key was deleted; false when it was absent
 * or had expired (then it is removed and counted as expired). */
bool store_delete(struct store *s, const void *key, uint32_t klen, uint64_t hash);

/* A random live key, or NULL when the store has none (expired keys met on
 * the way are removed). */
struct table_entry *store_random(struct store *s);

/* Removes every key (and forgets a delayed flush). */
void store_flush(struct store *s);
/* Removes every key once delay_ms have passed (checked every loop turn, on
 * the monotonic clock: a step of the wall clock neither hastens nor delays
 * it), as memcached's flush_all with a delay; a later call replaces it. Not
 * durable: a restart before then forgets it. */
void store_flush_after(struct store *s, int64_t delay_ms);

/* Number of keys, including expired ones not yet removed (as Redis's
 * DBSIZE). Any thread. */
size_t store_count(const struct store *s);

/* Keys per partition, for a cluster's DBSIZE (keyspace.h). Off by default:
 * a cluster of one pays nothing. store_track_partitions() counts every
 * entry once (O(keys)), then each entry made or dropped updates its
 * partition's count (part_of(arg, key, klen) < nparts; arg must outlive
 * the store; where the table is split too, part_of must name the same
 * partitions as the split's, whose answer a write reuses). An expired key not yet reclaimed counts (as in
 * store_count()); a tombstone does not. Owner thread only. 0 or -ENOMEM;
 * a second call does nothing. */
int store_track_partitions(struct store *s, uint32_t nparts,
                           uint32_t (*part_of)(const void *arg, const void *key, uint32_t klen),
                           const void *arg);
/* Entries of partition p; 0 when counts are not kept. Owner thread only. */
static inline uint64_t store_partition_count(const struct store *s, uint32_t p)
{
    return s->part_keys && p < s->nparts ? s->part_keys[p] : 0;
}

/* Anti-entropy's hook (shards/aae.h): from now on fn(arg, e, hash, part) is called
 * for every entry that enters the table and for every one that leaves it
 * (replaced by a write, an apply, a cooled or loaded copy; deleted, expired,
 * evicted, reaped), inside the change, and fn(arg, NULL, 0, TABLE_NO_PART) when the table is
 * emptied (store_flush). Every change of a key is one leaving and one
 * entering, so an XOR summary of what fn saw stays exact. fn must not change
 * the store. Off by default: a cluster of one pays one test per change.
 * NULL turns it off. Owner thread only. */
void store_watch(struct store *s, store_watch_fn fn, void *arg);

/* Bytes used: entries plus the table's slot arrays. Any thread. */
size_t store_used_bytes(const struct store *s);

/* A copy of the counters, each read atomically (not one snapshot of all),
 * plus keys and used_bytes. Any thread. */
void store_read_stats(const struct store *s, struct store_stats *out);

#endif
