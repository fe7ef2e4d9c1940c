/* fuzz_hint.c: libFuzzer target for the hint log's record codec
 * (hint_decode, hint_encode) and its recovery scan (hint_scan), the code
 * that reads a hint file back after a crash (shards/hints.h).
 * The input is read as a hint file: records from offset 0, each decoded on
 * an exact-size copy and advanced by consumed.
 * For each OK record: consumed covers exactly the header, the fixed fields,
 * key, meta and body; the slices lie inside the consumed bytes; every
 * shorter prefix is HINT_MORE; encoding the decoded fields gives the same
 * bytes back. hint_scan over the same bytes must report what a decode loop
 * that resyncs after a bad spot at the next valid record finds (records,
 * their offsets, where the last ends, the bytes skipped).
 * Mutations rarely keep a checksum right, so everything runs a second time
 * on a copy whose record checksums are recomputed (hints.h's layout), which
 * lets mutated lengths and fields reach the checks behind the checksum. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "buf.h"
#include "hints.h"
#include "fuzz_util.h"

#define MAX_RECORDS 4096

struct seen {
    size_t n;
    size_t offs[MAX_RECORDS];
};

static void scanned(void *arg, const struct hint_record *r, size_t off, size_t len)
{
    (void)r, (void)len;
    struct seen *s = arg;
    if (s->n < MAX_RECORDS)
        s->offs[s->n] = off;
    s->n++;
}

static enum hint_status decode_exact(const uint8_t *p, size_t len, struct hint_record *r,
                                     size_t *used)
{
    uint8_t *copy = malloc(len ? len : 1);
    CHECK(copy);
    memcpy(copy, p, len);
    enum hint_status st = hint_decode(copy, len, r, used);
    free(copy); /* slices are not used after this on the copy */
    return st;
}

static void check_record(const uint8_t *p, size_t used)
{
    struct hint_record r;
    size_t again;
    CHECK(hint_decode(p, used, &r, &again) == HINT_OK && again == used);
    CHECK(used == HINT_HEADER_LEN + HINT_BODY_FIXED + (size_t)r.key.len + r.meta.len +
                      r.body.len);
    CHECK(r.key.ptr >= p && r.body.ptr + r.body.len <= p + used);
    for (size_t n = 0; n < used; n += 1 + n / 8) {
        struct hint_record x;
        size_t u;
        CHECK(decode_exact(p, n, &x, &u) == HINT_MORE && u == 0);
    }
    struct buf b;
    buf_init(&b);
    CHECK(hint_encode(&b, &r) == 0);
    CHECK(b.len == used && memcmp(b.data, p, used) == 0);
    buf_fini(&b);
}

static void run(const uint8_t *data, size_t size)
{
    size_t off = 0, end = 0, used, n = 0, skipped = 0;
    struct hint_record r;
    struct seen s = {0};
    while (off < size) {
        if (decode_exact(data + off, size - off, &r, &used) == HINT_OK) {
            check_record(data + off, used);
            if (n < MAX_RECORDS)
                s.offs[n] = off;
            n++;
            off = end = off + used;
            continue;
        }
        size_t next = off + 1; /* the scan resyncs at the next valid record */
        while (next < size && decode_exact(data + next, size - next, &r, &used) != HINT_OK)
            next++;
        if (next >= size)
            break;
        skipped += next - off;
        off = next;
    }
    struct seen got = {0};
    size_t got_skipped = 0;
    CHECK(hint_scan(data, size, scanned, &got, &got_skipped) == end);
    CHECK(got.n == n);
    CHECK(got_skipped == skipped);
    for (size_t i = 0; i < n && i < MAX_RECORDS; i++)
        CHECK(got.offs[i] == s.offs[i]);
}

/* The same bytes with each record's checksum made right, as far as the
 * length fields lead. */
static void fix_checksums(uint8_t *p, size_t size)
{
    size_t off = 0;
    while (size - off >= HINT_HEADER_LEN) {
        uint64_t body = (uint64_t)p[off + 8] | (uint64_t)p[off + 9] << 8 |
                        (uint64_t)p[off + 10] << 16 | (uint64_t)p[off + 11] << 24;
        if (body > size - off - HINT_HEADER_LEN)
            return;
        uint64_t sum = XXH3_64bits(p + off + 8, (size_t)(HINT_HEADER_LEN - 8 + body));
        for (int i = 0; i < 8; i++)
            p[off + (size_t)i] = (uint8_t)(sum >> (8 * i));
        off += HINT_HEADER_LEN + (size_t)body;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run(data, size);
    uint8_t *copy = malloc(size ? size : 1);
    CHECK(copy);
    memcpy(copy, data, size);
    fix_checksums(copy, size);
    run(copy, size);
    free(copy);
    return 0;
}
