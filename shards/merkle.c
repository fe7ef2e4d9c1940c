/* merkle.c: tictac Merkle trees and the payloads of their exchange (see
 * merkle.h). Every integer little-endian, read byte by byte (no alignment
 * assumed of a received payload). */
#include "merkle.h"

#include <errno.h>
#include <string.h>

#include <xxhash.h>

uint64_t merkle_digest(uint64_t hash, const void *meta, size_t meta_len)
{
    return XXH3_64bits_withSeed(meta, meta_len, hash);
}

bool merkle_equal(const struct merkle_tree *a, const struct merkle_tree *b)
{
    return memcmp(a->leaf, b->leaf, sizeof a->leaf) == 0;
}

static void put_u64(struct buf *out, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    buf_append(out, b, sizeof b);
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

void merkle_put_branches(const struct merkle_tree *t, struct buf *out)
{
    for (uint32_t b = 0; b < MERKLE_BRANCHES; b++)
        put_u64(out, t->branch[b]);
}

int merkle_diff_branches(const struct merkle_tree *t, const void *p, size_t len, uint32_t *bitmap)
{
    if (len != MERKLE_TREE_BYTES)
        return -EINVAL;
    uint32_t map = 0;
    for (uint32_t b = 0; b < MERKLE_BRANCHES; b++)
        if (get_u64((const uint8_t *)p + 8 * b) != t->branch[b])
            map |= 1u << b;
    *bitmap = map;
    return 0;
}

void merkle_put_branchmap(uint32_t bitmap, struct buf *out)
{
    uint8_t b[2] = {(uint8_t)bitmap, (uint8_t)(bitmap >> 8)};
    buf_append(out, b, sizeof b);
}

int merkle_get_branchmap(const void *p, size_t len, uint32_t *bitmap)
{
    if (len != 2)
        return -EINVAL;
    const uint8_t *b = p;
    *bitmap = (uint32_t)b[0] | (uint32_t)b[1] << 8;
    return *bitmap ? 0 : -EINVAL;
}

void merkle_put_segments(const struct merkle_tree *t, uint32_t bitmap, struct buf *out)
{
    for (uint32_t b = 0; b < MERKLE_BRANCHES; b++)
        if (bitmap >> b & 1)
            for (uint32_t l = b * MERKLE_FANOUT; l < (b + 1) * MERKLE_FANOUT; l++)
                put_u64(out, t->leaf[l]);
}

int merkle_diff_segments(const struct merkle_tree *t, uint32_t bitmap, const void *p, size_t len,
                         uint8_t leafmap[MERKLE_LEAFMAP_BYTES])
{
    memset(leafmap, 0, MERKLE_LEAFMAP_BYTES);
    bitmap &= (1u << MERKLE_BRANCHES) - 1;
    if (len != (size_t)__builtin_popcount(bitmap) * MERKLE_FANOUT * 8)
        return -EINVAL;
    const uint8_t *q = p;
    int n = 0;
    for (uint32_t b = 0; b < MERKLE_BRANCHES; b++) {
        if (!(bitmap >> b & 1))
            continue;
        for (uint32_t l = b * MERKLE_FANOUT; l < (b + 1) * MERKLE_FANOUT; l++, q += 8) {
            if (get_u64(q) != t->leaf[l]) {
                merkle_leafmap_set(leafmap, l);
                n++;
            }
        }
    }
    return n;
}

int merkle_get_leafmap(const void *p, size_t len, uint8_t leafmap[MERKLE_LEAFMAP_BYTES])
{
    if (len != MERKLE_LEAFMAP_BYTES)
        return -EINVAL;
    memcpy(leafmap, p, MERKLE_LEAFMAP_BYTES);
    for (uint32_t i = 0; i < MERKLE_LEAFMAP_BYTES; i++)
        if (leafmap[i])
            return 0;
    return -EINVAL;
}

void merkle_put_keys_request(const uint8_t leafmap[MERKLE_LEAFMAP_BYTES], uint64_t from,
                             struct buf *out)
{
    buf_append(out, leafmap, MERKLE_LEAFMAP_BYTES);
    put_u64(out, from);
}

int merkle_get_keys_request(const void *p, size_t len, uint8_t leafmap[MERKLE_LEAFMAP_BYTES],
                            uint64_t *from)
{
    if (len != MERKLE_KEYS_REQ_BYTES || merkle_get_leafmap(p, MERKLE_LEAFMAP_BYTES, leafmap) != 0)
        return -EINVAL;
    *from = get_u64((const uint8_t *)p + MERKLE_LEAFMAP_BYTES);
    return 0;
}

void merkle_put_stop(uint64_t stop, struct buf *out)
{
    put_u64(out, stop);
}

int merkle_get_stop(const void *p, size_t len, uint64_t *stop)
{
    if (len != 8)
        return -EINVAL;
    *stop = get_u64(p);
    return 0;
}

void merkle_put_key(uint64_t digest, const void *key, uint32_t klen, struct buf *out)
{
    put_u64(out, digest);
    buf_append(out, key, klen);
}

int merkle_get_key(const void *p, size_t len, uint64_t *digest, const void **key, uint32_t *klen)
{
    if (len < MERKLE_KEY_MIN || len - MERKLE_KEY_MIN > UINT32_MAX)
        return -EINVAL;
    *digest = get_u64(p);
    *key = (const uint8_t *)p + MERKLE_KEY_MIN;
    *klen = (uint32_t)(len - MERKLE_KEY_MIN);
    return 0;
}
