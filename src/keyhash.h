/* keyhash.h: the one hash of a key, and what is derived from it.
 * Every key is hashed once with xxh3_64; the same 64 bits pick the partition
 * (low bits), the slot in a shard's table (high bits) and the table's tag.
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

#endif
