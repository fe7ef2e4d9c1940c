/* fuzz_merkle.c: libFuzzer target for anti-entropy's payload decoders
 * (shards/merkle.h): what a peer sends in TREE, SEGMENTS and KEYS.
 * Input: one mode byte (its low 2 bits pick the decoder; the leafmap mode
 * also tries a KEYS request, leafmap and start, and a KEYS reply's stop),
 * then the payload
 * (for SEGMENTS, a u16 branch bitmap, then the leaves). Checked: each
 * decoder accepts exactly the lengths the format allows, reports only
 * branches and leaves that exist (and, for SEGMENTS, only leaves of the
 * branches asked), and what it accepted encodes back to the same bytes;
 * a heap copy of the exact size lets AddressSanitizer see any read past
 * the payload. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz_util.h"
#include "merkle.h"

static void fuzz_branches(const struct merkle_tree *t, const uint8_t *p, size_t n)
{
    uint32_t map = 0;
    int rc = merkle_diff_branches(t, p, n, &map);
    CHECK((rc == 0) == (n == MERKLE_TREE_BYTES));
    if (rc != 0)
        return;
    CHECK(map < (1u << MERKLE_BRANCHES));
    struct merkle_tree same = *t; /* the payload's branches as a tree's: no difference */
    for (uint32_t b = 0; b < MERKLE_BRANCHES; b++) {
        uint64_t v = 0;
        for (int i = 7; i >= 0; i--)
            v = v << 8 | p[8 * b + (uint32_t)i];
        same.branch[b] = v;
    }
    CHECK(merkle_diff_branches(&same, p, n, &map) == 0 && map == 0);
    struct buf out;
    buf_init(&out);
    merkle_put_branches(&same, &out);
    CHECK(out.len == n && memcmp(out.data, p, n) == 0);
    buf_fini(&out);
}

static void fuzz_segments(const struct merkle_tree *t, const uint8_t *p, size_t n)
{
    uint32_t map = 0;
    int rc = merkle_get_branchmap(p, n < 2 ? n : 2, &map);
    if (rc != 0) {
        CHECK(n < 2 || (p[0] == 0 && p[1] == 0));
        return;
    }
    uint8_t leaves[MERKLE_LEAFMAP_BYTES];
    int count = merkle_diff_segments(t, map, p + 2, n - 2, leaves);
    size_t want = (size_t)__builtin_popcount(map) * MERKLE_FANOUT * 8;
    CHECK((count >= 0) == (n - 2 == want));
    if (count < 0)
        return;
    int seen = 0;
    for (uint32_t l = 0; l < MERKLE_LEAVES; l++) {
        if (!merkle_leafmap_has(leaves, l))
            continue;
        CHECK(map >> (l / MERKLE_FANOUT) & 1);
        seen++;
    }
    CHECK(seen == count);
}

static void fuzz_leafmap(const uint8_t *p, size_t n)
{
    uint8_t leaves[MERKLE_LEAFMAP_BYTES];
    int rc = merkle_get_leafmap(p, n, leaves);
    bool any = false;
    for (size_t i = 0; i < n; i++)
        any |= p[i] != 0;
    CHECK((rc == 0) == (n == MERKLE_LEAFMAP_BYTES && any));
    if (rc == 0)
        CHECK(memcmp(leaves, p, n) == 0);
    uint64_t from = 0;
    rc = merkle_get_keys_request(p, n, leaves, &from);
    bool any_map = false;
    for (size_t i = 0; i < n && i < MERKLE_LEAFMAP_BYTES; i++)
        any_map |= p[i] != 0;
    CHECK((rc == 0) == (n == MERKLE_KEYS_REQ_BYTES && any_map));
    if (rc == 0) { /* encodes back to the same bytes */
        struct buf out;
        buf_init(&out);
        merkle_put_keys_request(leaves, from, &out);
        CHECK(out.len == n && memcmp(out.data, p, n) == 0);
        buf_fini(&out);
    }
    CHECK((merkle_get_stop(p, n, &from) == 0) == (n == 8));
}

static void fuzz_key(const uint8_t *p, size_t n)
{
    uint64_t digest;
    const void *key;
    uint32_t klen;
    int rc = merkle_get_key(p, n, &digest, &key, &klen);
    CHECK((rc == 0) == (n >= MERKLE_KEY_MIN));
    if (rc != 0)
        return;
    CHECK((const uint8_t *)key >= p && (const uint8_t *)key + klen == p + n);
    struct buf out;
    buf_init(&out);
    merkle_put_key(digest, key, klen, &out);
    CHECK(out.len == n && memcmp(out.data, p, n) == 0);
    buf_fini(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    static struct merkle_tree t; /* some tree: leaf l holds l's own digest */
    static bool ready;
    if (!ready) {
        merkle_clear(&t);
        for (uint32_t l = 0; l < MERKLE_LEAVES; l++)
            merkle_toggle(&t, l, 0x9e3779b97f4a7c15ull * (l + 1));
        ready = true;
    }
    size_t n = size - 1;
    uint8_t *p = malloc(n ? n : 1); /* exact size: reads past it are caught */
    CHECK(p != NULL);
    memcpy(p, data + 1, n);
    switch (data[0] & 3) {
    case 0:
        fuzz_branches(&t, p, n);
        break;
    case 1:
        fuzz_segments(&t, p, n);
        break;
    case 2:
        fuzz_leafmap(p, n);
        break;
    default:
        fuzz_key(p, n);
        break;
    }
    free(p);
    return 0;
}
