/* table.h: a shard's hash table of keys.
 * Open addressing with linear probing over 8-byte slots; each slot holds a
 * pointer to an immutable struct table_entry with a 16-bit hash tag packed
 * into the pointer's unused top bits, so most misses never touch the entry.
 * The home slot of a key is the high bits of its hash (so a scan cursor is a
 * position in hash space, see table_scan). Growth is incremental, as Redis's
 * dict: a bigger array is allocated, and each write (and table_step()) moves a
 * bounded number of slots from the old array to the new one, so the loop never
 * stalls on a resize.
 * Split by partition: a cluster's table is split once (table_split) into
 * one such hash table per partition, made when its first key comes, so
 * that walking one partition (a transfer's stream, an anti-entropy
 * exchange, counting its keys) costs in proportion to that partition, not
 * to the whole table, and each part resizes on its own (a smaller pause).
 * The partition of a key is the caller's function (part_of); a table that
 * is not split (a node alone) is one part and never calls it.
 *
 * Threads (SPMC): one owner thread (the shard) inserts, replaces, removes and
 *   migrates. Any number of reader threads may look up and iterate at the same
 *   time without locks, inside table_read_begin()/table_read_end(): slots are
 *   published with release stores and read with acquire loads; entries and old
 *   arrays that readers might still see are freed only after an epoch
 *   (ck_epoch) in which no reader was active; the owner never waits for
 *   readers. The owner itself reads without begin/end.
 *   Reader guarantee: a lookup finds every key whose insertion happened
 *   before its table_read_begin() and that is not removed before the lookup
 *   returns, through any number of resizes; it returns either the entry before
 *   or the entry after a concurrent replace, never a freed one. Entries are
 *   published by a release store after they are written, so a reader sees
 *   them whole.
 * Ownership: an entry handed to table_put() belongs to the table. Entries that
 *   leave the table (replaced, removed) are returned to the owner, who passes
 *   them to table_retire() once it no longer needs them; the table frees them
 *   when no reader can hold them. Entries come from table_entry_alloc().
 * Errors: -ENOMEM from calls that allocate; the table is unchanged then. */
#ifndef RINGKV_SHARDS_TABLE_H
#define RINGKV_SHARDS_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A stored key and value. Immutable once published, except:
 *  - the access clock in `meta`: the owner writes it on access (relaxed;
 *    readers may see either);
 *  - appending in place: the owner may write bytes past val_len inside the
 *    allocation's usable size and then store-release the larger val_len, so
 *    a reader sees the old value or the new one, never a torn one;
 *  - the log position (TABLE_ENTRY_LSN): owner only, read by no other thread.
 * Flags (meta's top 8 bits) are fixed when the entry is made:
 *  - TABLE_ENTRY_LSN: the last 8 bytes of the allocation hold the position of
 *    the key's current record in the shard's segment log (durable storage);
 *  - TABLE_ENTRY_COLD: the value is on disk only (values beyond RAM): data
 *    holds the key alone (a versioned entry's: then its
 *    version part without the body, which is on disk), val_len is the
 *    value's real length, and the value is read back through the log
 *    position (shards/tier.h);
 *  - TABLE_ENTRY_VERSIONED: the key carries versions (a DVVSet clock, dvv.h,
 *    written by RING.PUT/RING.DEL). The value bytes [0, val_len) are the
 *    sibling a plain GET returns (dvv_pick()), so plain reads need no
 *    branch; after them, in the same allocation, the version part: a
 *    version header (below), the clock's meta, and its body unless the
 *    body is exactly the picked value's bytes (one sibling: no copy); for
 *    a clock of one dotted value (the usual key), a flags byte and the
 *    value's packed fields alone (store.c). Such entries are never
 *    appended to in place (store.c);
 *  - TABLE_ENTRY_TOMBSTONE (with VERSIONED): the picked sibling is a delete,
 *    so plain commands see no key (store_lookup() returns NULL). */
struct table_entry {
    int64_t expire_ms; /* absolute unix ms; 0 = no expiry */
    uint64_t cas;      /* memcached cas unique; changes on every write */
    uint32_t key_len;
    uint32_t val_len;  /* read with table_entry_val_len() from non-owner threads */
    uint32_t mc_flags; /* memcached client flags */
    uint32_t meta;     /* bits 0-23: coarse clock (seconds, wrapping) of the last
                          access, for eviction; bits 24-31: TABLE_ENTRY_* flags */
    char data[];       /* key bytes, then value bytes */
};

#define TABLE_ENTRY_LSN (1u << 24)
#define TABLE_ENTRY_COLD (1u << 25)
#define TABLE_ENTRY_VERSIONED (1u << 26)
#define TABLE_ENTRY_TOMBSTONE (1u << 27)
#define TABLE_ENTRY_LRU_MASK 0xffffffu

/* A versioned entry's version part starts with a flags byte: then its
 * packed fields (one dotted value), or meta_len, and body_len unless the
 * body is the picked value itself (store.c, vhdr_put), unaligned. */

static inline const char *table_entry_key(const struct table_entry *e) { return e->data; }
static inline char *table_entry_val(struct table_entry *e) { return e->data + e->key_len; }
static inline uint32_t table_entry_val_len(const struct table_entry *e)
{
    return __atomic_load_n(&e->val_len, __ATOMIC_ACQUIRE);
}
static inline bool table_entry_is_cold(const struct table_entry *e)
{
    return (e->meta & TABLE_ENTRY_COLD) != 0;
}
static inline uint32_t table_entry_lru(const struct table_entry *e)
{
    return __atomic_load_n(&e->meta, __ATOMIC_RELAXED) & TABLE_ENTRY_LRU_MASK;
}
/* Sets the access clock (owner only; flags are kept). */
static inline void table_entry_set_lru(struct table_entry *e, uint32_t lru_s)
{
    __atomic_store_n(&e->meta, (e->meta & ~TABLE_ENTRY_LRU_MASK) | (lru_s & TABLE_ENTRY_LRU_MASK),
                     __ATOMIC_RELAXED);
}

/* Allocates an entry for key_len + val_cap bytes of data, fields zeroed
 * except key_len (set) and val_len (0). NULL on out of memory. Owner only. */
struct table_entry *table_entry_alloc(uint32_t key_len, size_t val_cap);
/* The same with TABLE_ENTRY_* flags (TABLE_ENTRY_LSN adds room for the log
 * position after the value). */
struct table_entry *table_entry_alloc_flags(uint32_t key_len, size_t val_cap, uint32_t flags);
/* Bytes the entry may hold for its value without moving (usable size). */
size_t table_entry_val_cap(const struct table_entry *e);
/* Bytes of memory the entry occupies (mimalloc's usable size). */
size_t table_entry_mem(const struct table_entry *e);
/* The log position of an entry with TABLE_ENTRY_LSN, and setting it (owner only). */
uint64_t table_entry_lsn(const struct table_entry *e);
void table_entry_set_lsn(struct table_entry *e, uint64_t lsn);
/* Frees an entry that was never published. Owner only. */
void table_entry_free(struct table_entry *e);

struct table;
struct table_reader;

/* The partition of a key (hash: keyhash(key, key_len)), < the table's
 * nparts. Called from the owner and from readers: it must be thread-safe. */
typedef uint32_t table_part_fn(const void *arg, const void *key, uint32_t key_len,
                               uint64_t hash);

/* One lookup to come, for table_prefetch(). */
struct table_probe {
    const void *key;
    uint32_t key_len;
    uint64_t hash;
};
#define TABLE_PREFETCH_MAX 64   /* probes one table_prefetch() looks at */
#define TABLE_SCAN_PARTS_MAX 64 /* parts one table_scan_parts() walks */

/* Creates a table sized for `hint` keys. NULL on out of memory. The calling
 * thread becomes the owner. */
struct table *table_create(size_t hint);
/* Frees the table and every entry in it. No reader may be active. Owner only. */
void table_destroy(struct table *t);

/* Finds a key. hash is keyhash(key, key_len) here and in every call below
 * (the table recomputes it with keyhash() when it moves or scans entries).
 * Returns NULL when absent.
 * Owner: the entry stays valid until the owner changes the table.
 * Reader: valid until table_read_end(). */
struct table_entry *table_find(const struct table *t, const void *key, uint32_t key_len,
                               uint64_t hash);

/* A hint for a batch of n lookups to come (up to TABLE_PREFETCH_MAX), so
 * that their cache misses overlap instead of coming one after another:
 * every key's home slot is asked for first, then the entry each slot holds
 * where its tag matches. Changes nothing; reads the slots. Owner only. */
void table_prefetch(const struct table *t, const struct table_probe *probes, size_t n);

/* Inserts e (for key hash `hash`), replacing the entry with the same key.
 * *old receives the replaced entry or NULL; the caller retires it.
 * 0 or -ENOMEM. Owner only. */
int table_put(struct table *t, struct table_entry *e, uint64_t hash, struct table_entry **old);
/* The same, and *part receives the key's partition (the table's part_of
 * for it; TABLE_NO_PART when the table is not split), so that the caller
 * need not compute it again. */
#define TABLE_NO_PART UINT32_MAX
int table_put_placed(struct table *t, struct table_entry *e, uint64_t hash,
                     struct table_entry **old, uint32_t *part);

/* Grows partition `part`'s part (the whole table when not split) now to
 * hold `keys` at its usual load (never shrinks it). For a writer that knows
 * more keys are coming in hash order: sized only for the keys it holds so
 * far, they would all sit in its first slots, one probe cluster. 0,
 * -ENOMEM, -EINVAL (no such partition) or -EBUSY (nothing changed). */
int table_reserve(struct table *t, uint32_t part, size_t keys);

/* Splits the table into nparts parts, one per partition (part_of, with
 * arg, names a key's; both must outlive the table), moving every key to
 * its part: O(keys), once. Readers may be inside: they find every key
 * throughout. A second call does nothing. 0, -EINVAL or -ENOMEM (then the
 * table is unchanged). Owner only. */
int table_split(struct table *t, uint32_t nparts, table_part_fn *part_of, const void *arg);
/* Whether table_split() was done. Any thread. */
bool table_is_split(const struct table *t);
/* Keys of partition p (split; not split: all keys for p 0, else 0). Owner only. */
size_t table_part_count(const struct table *t, uint32_t p);
/* Bytes of partition p's slot arrays (two while it resizes), as
 * table_part_count. Owner only. */
size_t table_part_bytes(const struct table *t, uint32_t p);

/* Removes a key. Returns the removed entry (caller retires it) or NULL. Owner only. */
struct table_entry *table_remove(struct table *t, const void *key, uint32_t key_len,
                                 uint64_t hash);

/* Hands an entry that left the table to deferred reclamation (NULL is
 * ignored). The entry is freed by a later table_step(). Owner only. */
void table_retire(struct table *t, struct table_entry *e);

/* Once per loop turn: frees what no reader can still see and moves up to
 * `budget` slots of an incremental resize. Owner only. Returns true while
 * work remains (a resize in progress or entries waiting for reclamation). */
bool table_step(struct table *t, unsigned budget);

/* Number of keys. Any thread (a relaxed atomic load). */
size_t table_count(const struct table *t);
/* Bytes used by the slot arrays (entries not counted). Any thread. */
size_t table_overhead_bytes(const struct table *t);

/* Calls fn for every entry whose hash lies in [cursor, end), in hash order
 * chunks, until at least `want` entries were visited or the table ends.
 * Returns the next cursor, 0 when the whole hash space is done. Start at 0.
 * Guarantee (SCAN's): an entry present from the first call to the last is
 * visited at least once, across resizes (and, the cursor being a position in
 * hash space, at most once). fn must not change the table. Owner only. */
uint64_t table_scan(const struct table *t, uint64_t cursor, size_t want,
                    void (*fn)(struct table_entry *e, void *arg), void *arg);

/* The same, fn given each entry's key hash (the one the scan computes to
 * place it in hash order: the caller need not hash the key again). */
typedef void table_scan_hash_fn(struct table_entry *e, uint64_t hash, void *arg);
uint64_t table_scan_hashed(const struct table *t, uint64_t cursor, size_t want,
                           table_scan_hash_fn *fn, void *arg);
/* (A split table's cursor also names the partition under way, in its low
 * bits; either way it is opaque to callers.) */

/* A cursor from which a walk by table_scan() starts at a place picked by
 * the random bits r (RANDOMKEY's fallback), in any partition. Owner only. */
uint64_t table_scan_random_cursor(const struct table *t, uint64_t r);

/* Whether a walk by table_scan()/table_scan_hashed() that has returned
 * `cursor` (0: just begun) has visited the place of a key of partition
 * `part` (the table's part_of for it; any when not split) and hash `hash`:
 * a key put there now would not be met by the rest of the walk. Any thread. */
bool table_scan_passed(const struct table *t, uint64_t cursor, uint32_t part, uint64_t hash);

/* As table_scan, over the keys of n partitions only (at most
 * TABLE_SCAN_PARTS_MAX), all with one cursor in hash space: cost in
 * proportion to those partitions. On a table that is not split it walks
 * every key: the caller filters. */
uint64_t table_scan_parts(const struct table *t, const uint32_t *parts, size_t n,
                          uint64_t cursor, size_t want,
                          void (*fn)(struct table_entry *e, void *arg), void *arg);
uint64_t table_scan_parts_hashed(const struct table *t, const uint32_t *parts, size_t n,
                                 uint64_t cursor, size_t want, table_scan_hash_fn *fn,
                                 void *arg);

/* Up to n entries picked at random (eviction sampling, RANDOMKEY, expiry
 * sweep). rng is the caller's xorshift state. Returns how many were found
 * (0 only when the table is empty). Owner only. */
size_t table_sample(const struct table *t, uint64_t *rng, struct table_entry **out, size_t n);

/* Removes and retires every entry. Owner only. */
void table_clear(struct table *t);

/* Readers: register once per thread per table (NULL on out of memory), then
 * bracket each read; sections should be short, since nothing retired while
 * one is open can be freed. Unregister before the thread exits; the record is
 * reused by a later registration and freed by table_destroy(). */
struct table_reader *table_reader_register(struct table *t);
void table_reader_unregister(struct table *t, struct table_reader *r);
void table_read_begin(struct table_reader *r);
void table_read_end(struct table_reader *r);

#endif
