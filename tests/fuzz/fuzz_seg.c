/* fuzz_seg.c: libFuzzer target for the segment codec (seg_decode,
 * seg_decode_file_header, seg_value, seg_encode) and seg_scan_file.
 * The input is read two ways. As a stream of records from offset 0: each is
 * decoded with seg_decode, advancing by consumed until SEG_MORE or
 * SEG_CORRUPT, checking the contract on each SEG_OK record (consumed covers
 * exactly header + meta + key + value, slices inside the consumed bytes,
 * type and codec known, every shorter prefix on an exact-size copy is
 * SEG_MORE) and decompressing it with seg_value, whose output on success is
 * exactly raw_len bytes. A record that decompresses is encoded again
 * (uncompressed, and with its codec) and must decode to the same fields and
 * value; an uncompressed one must re-encode byte for byte.
 * As a segment file: seg_decode_file_header on the start (a 32-byte header
 * never asks for more; an OK one re-encodes to the same fields), then the
 * records after it, and the same bytes written to a memfd and read by
 * seg_scan_file: the scan must report what the in-memory decode found
 * (records, bytes_good, torn tail or corrupt) and hand the callback the same
 * records; with truncate the file is cut to bytes_good and scans clean.
 * Mutations rarely keep a checksum right, so both views run a second time
 * on a copy whose record checksums are recomputed (the layout is seg.h's):
 * that lets mutated lengths, codecs and compressed bytes reach the length
 * checks and the decompressors behind the checksum. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "buf.h"
#include "seg.h"
#include "fuzz_util.h"

/* Everything a decoded record says, as one number. */
static uint64_t hash_record(uint64_t h, const struct seg_record *r)
{
    h = hash_u64(h, (uint64_t)r->type);
    h = hash_u64(h, (uint64_t)r->codec);
    h = hash_u64(h, r->meta_len);
    h = hash_bytes(h, r->meta, r->meta_len);
    h = hash_u64(h, r->key_len);
    h = hash_bytes(h, r->key, r->key_len);
    h = hash_u64(h, r->val_len);
    h = hash_bytes(h, r->val, r->val_len);
    h = hash_u64(h, r->raw_len);
    h = hash_u64(h, r->mc_flags);
    h = hash_u64(h, (uint64_t)r->expire_ms);
    return hash_u64(h, r->seq);
}

/* seg_decode on an exact-size heap copy of data[0..len). */
static enum seg_status decode_exact(const char *data, size_t len)
{
    char *copy = malloc(len ? len : 1);
    CHECK(copy);
    memcpy(copy, data, len);
    struct seg_record r;
    size_t used = 0;
    enum seg_status st = seg_decode(copy, len, &r, &used);
    free(copy);
    return st;
}

/* Encodes r (value given raw) and checks it decodes to the same record. */
static void check_reencode(const struct seg_record *r, const char *raw, enum seg_codec codec,
                           const char *orig, size_t orig_len)
{
    struct seg_record in = *r;
    in.val = raw;
    struct buf b;
    buf_init(&b);
    seg_encode(&b, &in, codec, 0);
    if (b.failed) {
        buf_fini(&b);
        return;
    }
    if (orig)
        CHECK(b.len == orig_len && memcmp(b.data, orig, orig_len) == 0);
    struct seg_record out;
    size_t used = 0;
    CHECK(seg_decode(b.data, b.len, &out, &used) == SEG_OK);
    CHECK(used == b.len);
    CHECK(out.type == r->type && out.raw_len == r->raw_len && out.seq == r->seq);
    CHECK(out.mc_flags == r->mc_flags && out.expire_ms == r->expire_ms);
    CHECK(out.meta_len == r->meta_len && memcmp(out.meta, r->meta, r->meta_len) == 0);
    CHECK(out.key_len == r->key_len && memcmp(out.key, r->key, r->key_len) == 0);
    CHECK(out.codec == SEG_CODEC_NONE || out.codec == codec);
    struct buf v;
    buf_init(&v);
    int rc = seg_value(&out, &v);
    CHECK(rc == 0 || rc == -ENOMEM);
    if (rc == 0)
        CHECK(v.len == r->raw_len && memcmp(v.data, raw, v.len) == 0);
    buf_fini(&v);
    buf_fini(&b);
}

/* The contract on one SEG_OK record at data[0..len). */
static void check_record(const char *data, size_t len, const struct seg_record *r, size_t used)
{
    CHECK(used >= SEG_RECORD_HEADER && used <= len);
    CHECK(used == (size_t)SEG_RECORD_HEADER + r->meta_len + r->key_len + r->val_len);
    CHECK(r->type == SEG_PUT || r->type == SEG_DEL || r->type == SEG_FLUSH);
    CHECK(r->codec == SEG_CODEC_NONE || r->codec == SEG_CODEC_LZ4 || r->codec == SEG_CODEC_ZSTD);
    const char *end = data + used;
    CHECK(r->meta_len == 0 || (r->meta >= data && r->meta + r->meta_len <= end));
    CHECK(r->key_len == 0 || (r->key >= data && r->key + r->key_len <= end));
    CHECK(r->val_len == 0 || (r->val >= data && r->val + r->val_len <= end));
    /* Every prefix is incomplete; checking them all is quadratic, so the
     * ends of the header and of the record, and a few between. */
    size_t cuts[] = {0, SEG_RECORD_HEADER - 1, SEG_RECORD_HEADER, used / 2, used - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++)
        if (cuts[i] < used)
            CHECK(decode_exact(data, cuts[i]) == SEG_MORE);

    struct buf v;
    buf_init(&v);
    int rc = seg_value(r, &v);
    CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
    if (rc == 0) {
        CHECK(v.len == r->raw_len);
        if (r->codec == SEG_CODEC_NONE)
            CHECK(r->val_len == r->raw_len && memcmp(v.data, r->val, v.len) == 0);
        /* Uncompressed, the encoding is the input itself. */
        check_reencode(r, v.data, SEG_CODEC_NONE, r->codec == SEG_CODEC_NONE ? data : NULL, used);
        if (r->codec != SEG_CODEC_NONE)
            check_reencode(r, v.data, r->codec, NULL, 0);
    }
    buf_fini(&v);
}

struct stream {
    uint64_t records;
    size_t end;           /* offset past the last good record */
    enum seg_status last; /* the status that stopped the decode */
    uint64_t hash;        /* of the records, in order */
};

/* Decodes records from data[off..size) until one is not SEG_OK. */
static void decode_stream(const char *data, size_t size, size_t off, struct stream *s)
{
    s->records = 0;
    s->hash = 0xcbf29ce484222325ull;
    for (;;) {
        struct seg_record r;
        size_t used = 0;
        s->end = off;
        s->last = seg_decode(data + off, size - off, &r, &used);
        CHECK(s->last == SEG_OK || s->last == SEG_MORE || s->last == SEG_CORRUPT);
        if (s->last != SEG_OK)
            return;
        check_record(data + off, size - off, &r, used);
        s->hash = hash_record(s->hash, &r);
        s->records++;
        off += used;
    }
}

static int on_record(const struct seg_record *r, void *arg)
{
    uint64_t *h = arg;
    *h = hash_record(*h, r);
    return 0;
}

/* The file view: header, records, and seg_scan_file over a memfd. */
static void check_file(const char *data, size_t size)
{
    struct seg_file_header h;
    enum seg_status hst = seg_decode_file_header(data, size, &h);
    CHECK(hst == SEG_OK || hst == SEG_MORE || hst == SEG_CORRUPT);
    if (size >= SEG_FILE_HEADER)
        CHECK(hst != SEG_MORE);
    struct stream s = {0};
    if (hst == SEG_OK) {
        struct buf b;
        buf_init(&b);
        seg_encode_file_header(&b, &h);
        CHECK(b.len == SEG_FILE_HEADER);
        struct seg_file_header g;
        CHECK(seg_decode_file_header(b.data, b.len, &g) == SEG_OK);
        CHECK(g.version == h.version && g.shard_id == h.shard_id && g.nshards == h.nshards &&
              g.npartitions == h.npartitions && g.partition_fn == h.partition_fn);
        buf_fini(&b);
        decode_stream(data, size, SEG_FILE_HEADER, &s);
    }

    int fd = memfd_create("fuzz_seg", MFD_CLOEXEC);
    if (fd < 0)
        return;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        CHECK(n > 0);
        done += (size_t)n;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    for (int pass = 0; pass < 3; pass++) {
        /* Pass 0 reads, pass 1 repairs, pass 2 reads the repaired file. */
        bool truncate = pass == 1;
        struct seg_file_header g;
        struct seg_scan_report rep;
        uint64_t hash = 0xcbf29ce484222325ull;
        int rc = seg_scan_file(path, truncate, &g, on_record, &hash, &rep);
        if (hst != SEG_OK) {
            CHECK(rc == -EINVAL);
            break;
        }
        CHECK(rc == 0);
        CHECK(g.version == h.version && g.shard_id == h.shard_id && g.nshards == h.nshards &&
              g.npartitions == h.npartitions && g.partition_fn == h.partition_fn);
        CHECK(rep.records == s.records && rep.bytes_good == s.end && hash == s.hash);
        bool damaged = pass < 2 && s.end < size;
        CHECK(rep.file_size == (pass < 2 ? size : s.end));
        CHECK(rep.corrupt == (damaged && s.last == SEG_CORRUPT));
        CHECK(rep.torn_tail == (damaged && s.last == SEG_MORE));
        struct stat st;
        CHECK(fstat(fd, &st) == 0);
        CHECK((uint64_t)st.st_size == (pass == 0 ? size : s.end));
    }
    close(fd);
}

static uint32_t rd_u32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

/* Rewrites the checksum of every record from off on whose lengths fit in
 * the buffer, walking by the lengths each header claims. */
static void reseal(char *p, size_t size, size_t off)
{
    while (size - off >= SEG_RECORD_HEADER) {
        const unsigned char *u = (const unsigned char *)p + off;
        uint64_t total = (uint64_t)SEG_RECORD_HEADER + (uint16_t)(u[14] | u[15] << 8) +
                         rd_u32(p + off + 16) + rd_u32(p + off + 20);
        if (total > size - off)
            return;
        uint64_t sum = XXH3_64bits(p + off + 8, (size_t)total - 8);
        for (int i = 0; i < 8; i++)
            p[off + i] = (char)(sum >> (8 * i));
        off += (size_t)total;
    }
}

/* An exact-size copy of the input with its record checksums made right. */
static char *resealed(const uint8_t *data, size_t size, size_t off)
{
    char *copy = malloc(size ? size : 1);
    CHECK(copy);
    memcpy(copy, data, size);
    if (off <= size)
        reseal(copy, size, off);
    return copy;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct stream s;
    decode_stream((const char *)data, size, 0, &s);
    check_file((const char *)data, size);

    char *copy = resealed(data, size, 0);
    decode_stream(copy, size, 0, &s);
    free(copy);
    struct seg_file_header h;
    if (seg_decode_file_header((const char *)data, size, &h) == SEG_OK) {
        copy = resealed(data, size, SEG_FILE_HEADER);
        check_file(copy, size);
        free(copy);
    }
    return 0;
}
