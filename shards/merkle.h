/* merkle.h: a tictac Merkle tree (XOR-combinable, as Riak 3's next-generation
 * anti-entropy and leveled_tictac): the summary of one partition's keys as
 * this replica holds them, kept up to date on every change without a
 * rebuild, and the codec of what two replicas exchange to compare theirs
 * (shards/aae.h does the exchange).
 *
 * A key's state contributes its digest H = merkle_digest(key, meta): XXH3 of
 * the canonical meta of its DVVSet (dvv.h; replica.h's export, tombstones
 * included) seeded with keyhash(key). The meta names every sibling by its dot
 * and holds its timestamp, tombstone bit, length and client flags, so two
 * replicas holding the same versions give the same H, and H changes with
 * every write. An absent key contributes nothing. The key's leaf is the top 8
 * bits of keyhash(key) (MERKLE_LEAVES = 256), and a leaf is the XOR of the
 * digests of its keys; a branch is the XOR of MERKLE_FANOUT = 16 consecutive
 * leaves (MERKLE_BRANCHES = 16). A change of a key from state a to state b
 * is leaf ^= H(a) ^ H(b) (and the same on its branch): XOR is its own
 * inverse, so an entry entering the store and one leaving it are the same
 * update, in any order.
 *
 * Sizes: the ring already cuts the keyspace in Q partitions (1024 by
 * default), so a tree is per partition and small: 256 leaves of 8 bytes (2
 * KiB plus 128 bytes of branches); a node holding every partition of the
 * default ring keeps 2.1 MiB of trees. At a million keys a node that is ~4
 * keys a leaf, so one differing key costs a comparison of 16 branches, 16
 * leaves and the ~4 keys of one leaf. The leaf being the key hash's top bits,
 * the keys of one leaf are one range of the store's table scan (table.h,
 * hash order): listing them costs 1/256 of the shard's table, not all of it.
 *
 * Payloads (little-endian; each message is net/wire.h's, these are its one
 * value):
 *   TREE reply      16 u64: the branches
 *   SEGMENTS req    u16: bitmap of branches wanted (bit b: branch b)
 *   SEGMENTS reply  16 u64 per branch of the bitmap, lowest branch first
 *   KEYS req        32 bytes: bitmap of leaves wanted (bit l of byte l/8)
 *   KEYS reply      one value per key: u64 digest, then the key's bytes
 * The decoders below never trust their input: exact lengths, no bitmap bit
 * out of range.
 *
 * Threads: pure functions over caller memory, any thread. */
#ifndef RINGKV_SHARDS_MERKLE_H
#define RINGKV_SHARDS_MERKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define MERKLE_LEAVES 256u
#define MERKLE_FANOUT 16u
#define MERKLE_BRANCHES (MERKLE_LEAVES / MERKLE_FANOUT)
#define MERKLE_LEAF_SHIFT 56 /* leaf = keyhash >> 56 */
#define MERKLE_TREE_BYTES (MERKLE_BRANCHES * 8u)
#define MERKLE_LEAFMAP_BYTES (MERKLE_LEAVES / 8u)
#define MERKLE_KEY_MIN 8u /* a KEYS reply value: the digest */

struct merkle_tree {
    uint64_t branch[MERKLE_BRANCHES];
    uint64_t leaf[MERKLE_LEAVES];
};

/* A key's leaf, from keyhash(key). */
static inline uint32_t merkle_leaf_of(uint64_t keyhash)
{
    return (uint32_t)(keyhash >> MERKLE_LEAF_SHIFT);
}
/* The range of keyhash values of leaf l: [merkle_leaf_start(l),
 * merkle_leaf_start(l + 1)), the second 0 for the last leaf (the end of the
 * hash space, as table_scan's cursor). */
static inline uint64_t merkle_leaf_start(uint32_t leaf)
{
    return leaf >= MERKLE_LEAVES ? 0 : (uint64_t)leaf << MERKLE_LEAF_SHIFT;
}

/* H(key, state): meta is the canonical meta of the key's DVVSet; hash is
 * keyhash(key). */
uint64_t merkle_digest(uint64_t hash, const void *meta, size_t meta_len);

static inline void merkle_clear(struct merkle_tree *t)
{
    for (uint32_t i = 0; i < MERKLE_LEAVES; i++)
        t->leaf[i] = 0;
    for (uint32_t i = 0; i < MERKLE_BRANCHES; i++)
        t->branch[i] = 0;
}

/* A digest enters or leaves leaf `leaf` (the same thing: XOR). */
static inline void merkle_toggle(struct merkle_tree *t, uint32_t leaf, uint64_t digest)
{
    t->leaf[leaf] ^= digest;
    t->branch[leaf / MERKLE_FANOUT] ^= digest;
}

/* True when two trees hold the same leaves. */
bool merkle_equal(const struct merkle_tree *a, const struct merkle_tree *b);

/* ---- payloads ---- */

/* TREE reply: appends the 16 branches. */
void merkle_put_branches(const struct merkle_tree *t, struct buf *out);
/* Bitmap of the branches where the peer's (payload p, len) differ from t's.
 * -EINVAL unless len is MERKLE_TREE_BYTES. */
int merkle_diff_branches(const struct merkle_tree *t, const void *p, size_t len, uint32_t *bitmap);

/* SEGMENTS request: the bitmap (u16). */
void merkle_put_branchmap(uint32_t bitmap, struct buf *out);
/* -EINVAL unless len is 2 and some bit is set. */
int merkle_get_branchmap(const void *p, size_t len, uint32_t *bitmap);
/* SEGMENTS reply: the leaves of every branch of the bitmap. */
void merkle_put_segments(const struct merkle_tree *t, uint32_t bitmap, struct buf *out);
/* The leaves (a bitmap, MERKLE_LEAFMAP_BYTES bytes, cleared first) where the
 * peer's SEGMENTS reply (p, len) to request `bitmap` differs from t's; the
 * number of such leaves, or -EINVAL when len is not 16 u64 per branch. */
int merkle_diff_segments(const struct merkle_tree *t, uint32_t bitmap, const void *p, size_t len,
                         uint8_t leafmap[MERKLE_LEAFMAP_BYTES]);

static inline bool merkle_leafmap_has(const uint8_t *map, uint32_t leaf)
{
    return (map[leaf / 8] >> (leaf % 8)) & 1;
}
static inline void merkle_leafmap_set(uint8_t *map, uint32_t leaf)
{
    map[leaf / 8] |= (uint8_t)(1u << (leaf % 8));
}
/* KEYS request: -EINVAL unless len is MERKLE_LEAFMAP_BYTES and a bit is set. */
int merkle_get_leafmap(const void *p, size_t len, uint8_t leafmap[MERKLE_LEAFMAP_BYTES]);

/* KEYS request: the leafmap, then the hash from which the listing goes on
 * (u64; 0: from each leaf's start). -EINVAL unless len is
 * MERKLE_KEYS_REQ_BYTES and some leaf is set. */
#define MERKLE_KEYS_REQ_BYTES (MERKLE_LEAFMAP_BYTES + 8u)
void merkle_put_keys_request(const uint8_t leafmap[MERKLE_LEAFMAP_BYTES], uint64_t from,
                             struct buf *out);
int merkle_get_keys_request(const void *p, size_t len, uint8_t leafmap[MERKLE_LEAFMAP_BYTES],
                            uint64_t *from);
/* KEYS reply's first value: the hash where the listing stopped (u64; 0: it
 * is complete). Every key of the asked leaves with a hash in [from, stop)
 * is listed, none at or past stop. -EINVAL unless len is 8. */
void merkle_put_stop(uint64_t stop, struct buf *out);
int merkle_get_stop(const void *p, size_t len, uint64_t *stop);

/* KEYS reply value: appends digest then key (a whole value). */
void merkle_put_key(uint64_t digest, const void *key, uint32_t klen, struct buf *out);
/* Reads one: -EINVAL when shorter than the digest. *key points into p. */
int merkle_get_key(const void *p, size_t len, uint64_t *digest, const void **key, uint32_t *klen);

#endif
