/* keyhash.h: the hash of a key for the tables, and the key's slot.
 * A shard's table hashes every key once with xxh3_64 (keyhash): the high
 * bits pick its bucket, the rest its tag. Where a key lives is its slot,
 * Redis Cluster's: CRC16 (XMODEM) of the key, or of its {hash tag}, modulo
 * 16384, so that cluster-aware Redis clients compute the same slot; Q
 * partitions (a power of two, at most 16384) each own 16384/Q consecutive
 * slots (keyhash_slot_partition). Data written before slots (a manifest
 * without a partition function) was partitioned by the xxh3 hash's low bits
 * (keyhash_partition), which start-up still computes to re-lay it.
 * Threads: pure functions, any thread. */
#ifndef RINGKV_SRC_KEYHASH_H
#define RINGKV_SRC_KEYHASH_H

#include <stddef.h>
#include <stdint.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

static inline uint64_t keyhash(const void *key, size_t len) { return XXH3_64bits(key, len); }

/* How keys map to partitions: the value is stored in segment headers (0 in
 * files written before slots) and named in the manifest. */
enum keyhash_fn {
    KEYHASH_FN_XXH3 = 0, /* low bits of keyhash(): data written before slots */
    KEYHASH_FN_SLOT = 1, /* Redis Cluster's slot (keyhash_slot_partition) */
};

/* Partition of a hash among q partitions (KEYHASH_FN_XXH3); q is a power of two. */
static inline uint32_t keyhash_partition(uint64_t hash, uint32_t q)
{
    return (uint32_t)(hash & (q - 1));
}

#define KEYHASH_SLOTS 16384u

/* CRC16 (XMODEM: polynomial 0x1021, initial value 0, no reflection) of len bytes. */
uint16_t keyhash_crc16(const void *buf, size_t len);

/* Redis Cluster's slot of a key, in [0, KEYHASH_SLOTS): the CRC16 of its hash
 * tag (the bytes between its first '{' and the first '}' after it) when that
 * tag is non-empty, else of the whole key. */
uint32_t keyhash_slot(const void *key, size_t len);

/* Partition of a slot among q partitions (a power of two, 1 to KEYHASH_SLOTS):
 * partition p owns slots [p * KEYHASH_SLOTS / q, (p + 1) * KEYHASH_SLOTS / q). */
static inline uint32_t keyhash_slot_partition(uint32_t slot, uint32_t q)
{
    return slot / (KEYHASH_SLOTS / q);
}

/* The shift that takes a slot to its partition among q partitions (a power
 * of two, 1 to KEYHASH_SLOTS): slot >> shift == keyhash_slot_partition(slot, q). */
static inline uint32_t keyhash_slot_shift(uint32_t q)
{
    return (uint32_t)__builtin_ctz(KEYHASH_SLOTS / q);
}

/* Partition of a key among q partitions under partition function fn; hash
 * is keyhash(key, len). For paths off the request path (the request path
 * uses node_partition_of, which shifts instead of dividing). */
static inline uint32_t keyhash_partition_by(enum keyhash_fn fn, const void *key, size_t len,
                                            uint64_t hash, uint32_t q)
{
    return fn == KEYHASH_FN_XXH3 ? keyhash_partition(hash, q)
                                 : keyhash_slot_partition(keyhash_slot(key, len), q);
}

#endif
