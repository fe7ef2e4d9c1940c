/* keyhash.h: the one hash of a key, and what is derived from it; key slots.
 * Every key is hashed once with xxh3_64; the same 64 bits pick the partition
 * (low bits), the slot in a shard's table (high bits) and the table's tag.
 * Slots are Redis Cluster's: CRC16 (XMODEM) of the key, or of its {hash tag},
 * modulo 16384, so that cluster-aware Redis clients compute the same slot;
 * Q partitions (a power of two, at most 16384) each own 16384/Q consecutive
 * slots (keyhash_slot_partition).
 * Threads: pure functions, any thread. */
#ifndef RINGKV_SRC_KEYHASH_H
#define RINGKV_SRC_KEYHASH_H

#include <stddef.h>
#include <stdint.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

static inline uint64_t keyhash(const void *key, size_t len) { return XXH3_64bits(key, len); }

/* Partition of a hash among q partitions; q is a power of two. */
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

#endif
