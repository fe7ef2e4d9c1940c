/* test_seg.c: the segment-record codec and segment files (shards/seg.c).
 * Pure codec: round trips of PUT (meta, key, value, flags, expiry, seq), DEL
 * and FLUSH; the documented byte layout and checksum; LZ4 and zstd
 * compression above compress_min (and not below it, nor for incompressible
 * values); every truncation of a record is SEG_MORE; every single-byte or
 * single-bit change is never SEG_OK (SEG_MORE only where a length field grew
 * the record past the buffer); damaged compressed values make seg_value fail.
 * Every decode runs over an exact-size heap copy, so a read past len is
 * caught under AddressSanitizer.
 * Files: real segment files in a mkdtemp directory under /tmp (removed at
 * the end): full scans, torn tails, corrupt records, truncation, records
 * larger than a read chunk, seg_path, seg_list ordering and seg_check_dir
 * with and without repair. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "buf.h"
#include "seg.h"

#define T_EXPIRE 1700000123456LL
#define COMPRESS_MIN 64

/* ---- helpers ---------------------------------------------------------- */

static uint32_t rd_u32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}
static uint16_t rd_u16(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint16_t)(u[0] | u[1] << 8);
}
static uint64_t rd_u64(const char *p)
{
    return rd_u32(p) | (uint64_t)rd_u32(p + 4) << 32;
}
static void wr_u32(char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (char)(v >> (8 * i));
}
static void wr_u64(char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (char)(v >> (8 * i));
}

/* Recomputes a record's checksum after a deliberate edit. */
static void reseal(char *rec, size_t total)
{
    wr_u64(rec, XXH3_64bits(rec + 8, total - 8));
}

/* The record length its (possibly damaged) header claims. */
static uint64_t claimed_len(const char *rec)
{
    return (uint64_t)SEG_RECORD_HEADER + rd_u16(rec + 14) + rd_u32(rec + 16) + rd_u32(rec + 20);
}

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static void fill_random(char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)(rng() >> 56);
}
/* A value that compresses well: repeated text with a counter in it. */
static char *compressible(size_t n)
{
    char *v = malloc(n ? n : 1);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = "the quick brown fox jumps over the lazy dog "[i % 44];
    return v;
}

/* Decodes over an exact-size heap copy; the record's slices then point into
 * *copy (the caller frees it). */
static enum seg_status decode_copy(const char *data, size_t len, struct seg_record *r,
                                   size_t *consumed, char **copy)
{
    *copy = malloc(len ? len : 1);
    assert_non_null(*copy);
    memcpy(*copy, data, len);
    *consumed = 0;
    enum seg_status st = seg_decode(*copy, len, r, consumed);
    if (st == SEG_OK) {
        assert_true(*consumed >= SEG_RECORD_HEADER && *consumed <= len);
        assert_int_equal(*consumed,
                         (size_t)SEG_RECORD_HEADER + r->meta_len + r->key_len + r->val_len);
        const char *end = *copy + *consumed;
        assert_true(r->meta_len == 0 || (r->meta >= *copy && r->meta + r->meta_len <= end));
        assert_true(r->key_len == 0 || (r->key >= *copy && r->key + r->key_len <= end));
        assert_true(r->val_len == 0 || (r->val >= *copy && r->val + r->val_len <= end));
    }
    return st;
}

static enum seg_status decode_only(const char *data, size_t len)
{
    struct seg_record r;
    size_t used;
    char *copy;
    enum seg_status st = decode_copy(data, len, &r, &used, &copy);
    free(copy);
    return st;
}

static struct seg_record put_rec(const char *key, const char *val, size_t val_len, uint64_t seq)
{
    struct seg_record r = {
        .type = SEG_PUT,
        .key = key,
        .key_len = (uint32_t)strlen(key),
        .val = val,
        .raw_len = (uint32_t)val_len,
        .mc_flags = 0xdeadbeef,
        .expire_ms = T_EXPIRE,
        .seq = seq,
        /* Ignored on input: set to nonsense to show it. */
        .codec = SEG_CODEC_ZSTD,
        .val_len = 12345,
    };
    return r;
}

/* Encodes r, decodes it back and checks every field; returns the stored
 * codec and (through *stored_len) val_len. */
static enum seg_codec round_trip(const struct seg_record *in, enum seg_codec codec,
                                 size_t compress_min, uint32_t *stored_len)
{
    struct buf b;
    buf_init(&b);
    seg_encode(&b, in, codec, compress_min);
    assert_false(b.failed);
    struct seg_record out;
    size_t used;
    char *copy;
    assert_int_equal(decode_copy(b.data, b.len, &out, &used, &copy), SEG_OK);
    assert_int_equal(used, b.len);
    assert_int_equal(out.type, in->type);
    assert_int_equal(out.meta_len, in->meta_len);
    if (in->meta_len)
        assert_memory_equal(out.meta, in->meta, in->meta_len);
    assert_int_equal(out.key_len, in->key_len);
    if (in->key_len)
        assert_memory_equal(out.key, in->key, in->key_len);
    assert_int_equal(out.raw_len, in->raw_len);
    assert_int_equal(out.mc_flags, in->mc_flags);
    assert_true(out.expire_ms == in->expire_ms);
    assert_true(out.seq == in->seq);
    if (out.codec == SEG_CODEC_NONE) {
        assert_int_equal(out.val_len, out.raw_len);
        if (out.val_len)
            assert_memory_equal(out.val, in->val, out.val_len);
    }
    struct buf v;
    buf_init(&v);
    assert_int_equal(seg_value(&out, &v), 0);
    assert_int_equal(v.len, in->raw_len);
    if (in->raw_len)
        assert_memory_equal(v.data, in->val, in->raw_len);
    buf_fini(&v);
    enum seg_codec stored = out.codec;
    if (stored_len)
        *stored_len = out.val_len;
    free(copy);
    buf_fini(&b);
    return stored;
}

/* ---- codec ------------------------------------------------------------- */

static void test_seg_put_round_trip(void **state)
{
    static const char meta[] = {1, 0, 2, (char)0xff, 3};
    struct seg_record r = put_rec("user:42", "hello\0world", 11, 0x0123456789abcdefull);
    r.meta = meta;
    r.meta_len = sizeof meta;
    uint32_t vl;
    assert_int_equal(round_trip(&r, SEG_CODEC_NONE, 0, &vl), SEG_CODEC_NONE);
    assert_int_equal(vl, 11);
    /* No meta, no expiry, a negative expiry value, an empty value. */
    r.meta = NULL;
    r.meta_len = 0;
    r.expire_ms = 0;
    round_trip(&r, SEG_CODEC_NONE, 0, NULL);
    r.expire_ms = -5;
    round_trip(&r, SEG_CODEC_LZ4, COMPRESS_MIN, NULL);
    r.val = "";
    r.raw_len = 0;
    assert_int_equal(round_trip(&r, SEG_CODEC_ZSTD, 0, NULL), SEG_CODEC_NONE);
}

static void test_seg_del_and_flush_round_trip(void **state)
{
    struct seg_record d = {.type = SEG_DEL, .key = "gone", .key_len = 4, .seq = 7};
    round_trip(&d, SEG_CODEC_LZ4, 0, NULL);
    struct seg_record f = {.type = SEG_FLUSH, .seq = UINT64_MAX};
    round_trip(&f, SEG_CODEC_ZSTD, 0, NULL);
}

/* The byte layout seg.h documents: little endian, checksum first. */
static void test_seg_record_layout(void **state)
{
    static const char meta[] = {9, 8};
    struct seg_record r = put_rec("k1", "value", 5, 0x1122334455667788ull);
    r.meta = meta;
    r.meta_len = 2;
    struct buf b;
    buf_init(&b);
    buf_append(&b, "prefix", 6); /* encode appends */
    seg_encode(&b, &r, SEG_CODEC_NONE, 0);
    assert_memory_equal(b.data, "prefix", 6);
    const char *p = b.data + 6;
    size_t n = b.len - 6;
    assert_int_equal(n, SEG_RECORD_HEADER + 2 + 2 + 5);
    assert_true(rd_u64(p) == XXH3_64bits(p + 8, n - 8));
    assert_int_equal(rd_u32(p + 8), SEG_RECORD_MAGIC);
    assert_int_equal((unsigned char)p[12], SEG_PUT);
    assert_int_equal((unsigned char)p[13], SEG_CODEC_NONE);
    assert_int_equal(rd_u16(p + 14), 2);
    assert_int_equal(rd_u32(p + 16), 2);
    assert_int_equal(rd_u32(p + 20), 5);
    assert_int_equal(rd_u32(p + 24), 5);
    assert_int_equal(rd_u32(p + 28), 0xdeadbeef);
    assert_true((int64_t)rd_u64(p + 32) == T_EXPIRE);
    assert_true(rd_u64(p + 40) == 0x1122334455667788ull);
    assert_memory_equal(p + 48, "\x09\x08k1value", 9);
    buf_fini(&b);
}

static void test_seg_decodes_a_stream(void **state)
{
    struct buf b;
    buf_init(&b);
    char key[32];
    for (uint64_t i = 0; i < 50; i++) {
        snprintf(key, sizeof key, "key:%" PRIu64, i);
        char *val = compressible(i * 7);
        struct seg_record r = put_rec(key, val, i * 7, i);
        if (i % 5 == 3)
            r.type = SEG_DEL, r.raw_len = 0;
        seg_encode(&b, &r, i % 2 ? SEG_CODEC_LZ4 : SEG_CODEC_ZSTD, 100);
        free(val);
    }
    size_t off = 0;
    for (uint64_t i = 0; i < 50; i++) {
        struct seg_record r;
        size_t used;
        char *copy;
        assert_int_equal(decode_copy(b.data + off, b.len - off, &r, &used, &copy), SEG_OK);
        snprintf(key, sizeof key, "key:%" PRIu64, i);
        assert_int_equal(r.key_len, strlen(key));
        assert_memory_equal(r.key, key, r.key_len);
        assert_true(r.seq == i);
        assert_int_equal(r.type, i % 5 == 3 ? SEG_DEL : SEG_PUT);
        struct buf v;
        buf_init(&v);
        assert_int_equal(seg_value(&r, &v), 0);
        assert_int_equal(v.len, r.raw_len);
        buf_fini(&v);
        free(copy);
        off += used;
    }
    assert_int_equal(off, b.len);
    assert_int_equal(decode_only(b.data + off, 0), SEG_MORE);
    buf_fini(&b);
}

static void check_compresses(enum seg_codec codec)
{
    char *val = compressible(4096);
    struct seg_record r = put_rec("big", val, 4096, 1);
    uint32_t vl;
    assert_int_equal(round_trip(&r, codec, COMPRESS_MIN, &vl), codec);
    assert_true(vl < 4096);
    /* Exactly compress_min still compresses (raw_len >= compress_min). */
    r.raw_len = COMPRESS_MIN * 4;
    assert_int_equal(round_trip(&r, codec, COMPRESS_MIN * 4, &vl), codec);
    assert_true(vl < COMPRESS_MIN * 4);
    /* Just below compress_min: stored as is. */
    assert_int_equal(round_trip(&r, codec, COMPRESS_MIN * 4 + 1, &vl), SEG_CODEC_NONE);
    assert_int_equal(vl, COMPRESS_MIN * 4);
    /* Far below. */
    r.raw_len = 1000;
    assert_int_equal(round_trip(&r, codec, 4096, &vl), SEG_CODEC_NONE);
    assert_int_equal(vl, 1000);
    free(val);
}

static void test_seg_lz4_compresses(void **state)
{
    check_compresses(SEG_CODEC_LZ4);
}
static void test_seg_zstd_compresses(void **state)
{
    check_compresses(SEG_CODEC_ZSTD);
}

static void test_seg_codec_none_never_compresses(void **state)
{
    char *val = compressible(4096);
    struct seg_record r = put_rec("big", val, 4096, 1);
    uint32_t vl;
    assert_int_equal(round_trip(&r, SEG_CODEC_NONE, 0, &vl), SEG_CODEC_NONE);
    assert_int_equal(vl, 4096);
    free(val);
}

static void test_seg_incompressible_stored_raw(void **state)
{
    size_t sizes[] = {COMPRESS_MIN, 300, 4096, 70000};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        char *val = malloc(sizes[i]);
        assert_non_null(val);
        fill_random(val, sizes[i]);
        struct seg_record r = put_rec("rnd", val, sizes[i], i);
        uint32_t vl;
        assert_int_equal(round_trip(&r, SEG_CODEC_LZ4, COMPRESS_MIN, &vl), SEG_CODEC_NONE);
        assert_int_equal(vl, sizes[i]);
        assert_int_equal(round_trip(&r, SEG_CODEC_ZSTD, COMPRESS_MIN, &vl), SEG_CODEC_NONE);
        assert_int_equal(vl, sizes[i]);
        free(val);
    }
}

/* A few records to damage: plain with meta, LZ4, zstd, DEL, FLUSH. */
static void sample_records(struct buf out[5])
{
    static const char meta[] = {1, 2, 3, 4};
    char *big = compressible(600);
    struct seg_record r = put_rec("alpha", "some value", 10, 11);
    r.meta = meta;
    r.meta_len = sizeof meta;
    for (int i = 0; i < 5; i++)
        buf_init(&out[i]);
    seg_encode(&out[0], &r, SEG_CODEC_NONE, 0);
    r = put_rec("beta", big, 600, 12);
    seg_encode(&out[1], &r, SEG_CODEC_LZ4, COMPRESS_MIN);
    seg_encode(&out[2], &r, SEG_CODEC_ZSTD, COMPRESS_MIN);
    struct seg_record d = {.type = SEG_DEL, .key = "gamma", .key_len = 5, .seq = 13};
    seg_encode(&out[3], &d, SEG_CODEC_NONE, 0);
    struct seg_record f = {.type = SEG_FLUSH, .seq = 14};
    seg_encode(&out[4], &f, SEG_CODEC_NONE, 0);
    assert_int_equal((unsigned char)out[1].data[13], SEG_CODEC_LZ4);
    assert_int_equal((unsigned char)out[2].data[13], SEG_CODEC_ZSTD);
    free(big);
}

static void test_seg_every_prefix_is_more(void **state)
{
    struct buf recs[5];
    sample_records(recs);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(decode_only(recs[i].data, recs[i].len), SEG_OK);
        for (size_t n = 0; n < recs[i].len; n++)
            assert_int_equal(decode_only(recs[i].data, n), SEG_MORE);
        buf_fini(&recs[i]);
    }
}

/* A damaged record must never decode. SEG_MORE is right only when a length
 * field (meta_len, key_len, val_len: bytes 14..23) now claims more bytes than
 * the buffer holds; everything else is SEG_CORRUPT. */
static void check_damaged(const char *rec, size_t len, size_t pad)
{
    size_t total = len + pad;
    char *m = calloc(1, total ? total : 1);
    assert_non_null(m);
    memcpy(m, rec, len);
    for (size_t i = 0; i < len; i++) {
        for (int k = 0; k < 9; k++) {
            unsigned char x = k < 8 ? (unsigned char)(1u << k) : 0xff;
            m[i] ^= (char)x;
            enum seg_status st = decode_only(m, total);
            if (st != SEG_CORRUPT) {
                bool in_lengths = i >= 14 && i < 24;
                if (st != SEG_MORE || !in_lengths || claimed_len(m) <= total)
                    fail_msg("byte %zu ^ 0x%02x of a %zu-byte record (+%zu): status %d", i, x, len,
                             pad, st);
            }
            m[i] ^= (char)x;
        }
    }
    assert_int_equal(decode_only(m, total), SEG_OK);
    free(m);
}

static void test_seg_every_flip_is_caught(void **state)
{
    struct buf recs[5];
    sample_records(recs);
    for (int i = 0; i < 5; i++) {
        check_damaged(recs[i].data, recs[i].len, 0);
        /* With bytes after the record, a grown length can fit: CORRUPT. */
        check_damaged(recs[i].data, recs[i].len, 300);
        buf_fini(&recs[i]);
    }
}

static void test_seg_bad_type_codec_magic(void **state)
{
    struct buf recs[5];
    sample_records(recs);
    char *m = recs[0].data;
    size_t n = recs[0].len;
    static const unsigned char bad_types[] = {0, 4, 0xff};
    for (size_t i = 0; i < sizeof bad_types; i++) {
        m[12] = (char)bad_types[i];
        reseal(m, n);
        assert_int_equal(decode_only(m, n), SEG_CORRUPT);
    }
    m[12] = SEG_PUT;
    m[13] = 3;
    reseal(m, n);
    assert_int_equal(decode_only(m, n), SEG_CORRUPT);
    m[13] = SEG_CODEC_NONE;
    wr_u32(m + 8, SEG_RECORD_MAGIC ^ 1);
    reseal(m, n);
    assert_int_equal(decode_only(m, n), SEG_CORRUPT);
    wr_u32(m + 8, SEG_RECORD_MAGIC);
    reseal(m, n);
    assert_int_equal(decode_only(m, n), SEG_OK);
    for (int i = 0; i < 5; i++)
        buf_fini(&recs[i]);
}

/* A compressed value that does not decompress to raw_len bytes, behind a
 * valid checksum: decode may accept the record, seg_value must refuse it. */
static void check_bad_value(char *rec, size_t len)
{
    struct seg_record r;
    size_t used;
    char *copy;
    enum seg_status st = decode_copy(rec, len, &r, &used, &copy);
    assert_int_not_equal(st, SEG_MORE);
    if (st == SEG_OK) {
        struct buf v;
        buf_init(&v);
        assert_int_equal(seg_value(&r, &v), -EINVAL);
        buf_fini(&v);
    }
    free(copy);
}

static void test_seg_value_rejects_bad_compressed(void **state)
{
    struct buf recs[5];
    sample_records(recs);
    for (int i = 1; i <= 2; i++) {
        char *m = recs[i].data;
        size_t n = recs[i].len;
        uint32_t raw = rd_u32(m + 24), vl = rd_u32(m + 20);
        /* raw_len one more and one less than the data gives. */
        wr_u32(m + 24, raw + 1);
        reseal(m, n);
        check_bad_value(m, n);
        wr_u32(m + 24, raw - 1);
        reseal(m, n);
        check_bad_value(m, n);
        wr_u32(m + 24, raw);
        /* The compressed stream cut short by one byte. */
        wr_u32(m + 20, vl - 1);
        reseal(m, n - 1);
        check_bad_value(m, n - 1);
        /* Not compressed data at all. */
        wr_u32(m + 20, vl);
        memset(m + n - vl, 0xff, vl);
        reseal(m, n);
        check_bad_value(m, n);
        buf_fini(&recs[i]);
    }
    buf_fini(&recs[0]);
    buf_fini(&recs[3]);
    buf_fini(&recs[4]);
}

static void test_seg_file_header(void **state)
{
    struct seg_file_header h = {
        .version = SEG_FILE_VERSION, .shard_id = 5, .nshards = 16, .npartitions = 4096,
        .partition_fn = 1};
    struct buf b;
    buf_init(&b);
    seg_encode_file_header(&b, &h);
    assert_int_equal(b.len, SEG_FILE_HEADER);
    char *copy = malloc(SEG_FILE_HEADER);
    assert_non_null(copy);
    memcpy(copy, b.data, SEG_FILE_HEADER);
    struct seg_file_header g;
    memset(&g, 0xa5, sizeof g);
    assert_int_equal(seg_decode_file_header(copy, SEG_FILE_HEADER, &g), SEG_OK);
    assert_int_equal(g.version, SEG_FILE_VERSION);
    assert_int_equal(g.shard_id, 5);
    assert_int_equal(g.nshards, 16);
    assert_int_equal(g.npartitions, 4096);
    assert_int_equal(g.partition_fn, 1);
    for (size_t n = 0; n < SEG_FILE_HEADER; n++)
        assert_int_equal(seg_decode_file_header(copy, n, &g), SEG_MORE);
    /* The magic is in there, little endian; any change to it is CORRUPT. */
    char magic[4];
    wr_u32(magic, SEG_FILE_MAGIC);
    char *at = memmem(copy, SEG_FILE_HEADER, magic, 4);
    assert_non_null(at);
    for (int i = 0; i < 4; i++) {
        for (int k = 0; k < 8; k++) {
            at[i] ^= (char)(1 << k);
            assert_int_equal(seg_decode_file_header(copy, SEG_FILE_HEADER, &g), SEG_CORRUPT);
            at[i] ^= (char)(1 << k);
        }
    }
    /* A damaged header is never SEG_MORE: its size is fixed. */
    for (size_t i = 0; i < SEG_FILE_HEADER; i++) {
        copy[i] ^= 0x40;
        assert_int_not_equal(seg_decode_file_header(copy, SEG_FILE_HEADER, &g), SEG_MORE);
        copy[i] ^= 0x40;
    }
    /* Record bytes are not a file header. */
    struct buf recs[5];
    sample_records(recs);
    assert_int_equal(seg_decode_file_header(recs[0].data, recs[0].len, &g), SEG_CORRUPT);
    for (int i = 0; i < 5; i++)
        buf_fini(&recs[i]);
    free(copy);
    buf_fini(&b);
}

/* ---- files ------------------------------------------------------------- */

static char tmpdir[64];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int files_setup(void **state)
{
    strcpy(tmpdir, "/tmp/ringkv-test-seg.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int files_teardown(void **state)
{
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void flip_byte(const char *path, off_t at)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, at), 1);
    c ^= 0x20;
    assert_int_equal(pwrite(fd, &c, 1, at), 1);
    close(fd);
}

/* A segment: header, then n records; offs[i] is where record i starts and
 * offs[n] the end. Values vary in size and codec. */
static void build_segment(struct buf *b, uint32_t shard, uint64_t first_seq, size_t n,
                          size_t val_size, uint64_t *offs)
{
    struct seg_file_header h = {
        .version = SEG_FILE_VERSION, .shard_id = shard, .nshards = 4, .npartitions = 64};
    buf_init(b);
    seg_encode_file_header(b, &h);
    char key[48];
    for (size_t i = 0; i < n; i++) {
        if (offs)
            offs[i] = b->len;
        snprintf(key, sizeof key, "key:%" PRIu64, first_seq + i);
        size_t vs = val_size + (i * 37) % 101;
        char *val = malloc(vs);
        assert_non_null(val);
        if (i % 3 == 0)
            fill_random(val, vs);
        else
            for (size_t j = 0; j < vs; j++)
                val[j] = (char)('a' + (first_seq + i + j / 16) % 26);
        struct seg_record r = put_rec(key, val, vs, first_seq + i);
        if (i % 7 == 6)
            r.type = SEG_DEL, r.raw_len = 0;
        seg_encode(b, &r, i % 2 ? SEG_CODEC_LZ4 : SEG_CODEC_ZSTD, COMPRESS_MIN);
        free(val);
    }
    if (offs)
        offs[n] = b->len;
    assert_false(b->failed);
}

struct seen {
    uint64_t n;
    uint64_t next_seq;
    uint64_t stop_at; /* fn returns 7 on this record (1-based); 0 never */
};

static int on_record(const struct seg_record *r, void *arg)
{
    struct seen *s = arg;
    char key[48];
    snprintf(key, sizeof key, "key:%" PRIu64, s->next_seq);
    assert_true(r->seq == s->next_seq);
    assert_int_equal(r->key_len, strlen(key));
    assert_memory_equal(r->key, key, r->key_len);
    struct buf v;
    buf_init(&v);
    assert_int_equal(seg_value(r, &v), 0);
    assert_int_equal(v.len, r->raw_len);
    buf_fini(&v);
    s->next_seq++;
    s->n++;
    return s->stop_at && s->n == s->stop_at ? 7 : 0;
}

static void scan(const char *path, bool truncate, uint64_t first_seq, int want_rc,
                 struct seg_scan_report *rep, struct seen *s)
{
    struct seg_file_header h;
    memset(&h, 0, sizeof h);
    s->n = 0;
    s->next_seq = first_seq;
    assert_int_equal(seg_scan_file(path, truncate, &h, on_record, s, rep), want_rc);
    if (want_rc == 0) {
        assert_int_equal(h.version, SEG_FILE_VERSION);
        assert_int_equal(h.nshards, 4);
        assert_int_equal(h.npartitions, 64);
        assert_int_equal(rep->records, s->n);
    }
}

#define NREC 40

static void test_seg_scan_clean(void **state)
{
    char path[256];
    snprintf(path, sizeof path, "%s/clean.seg", tmpdir);
    uint64_t offs[NREC + 1];
    struct buf b;
    build_segment(&b, 2, 100, NREC, 200, offs);
    write_file(path, b.data, b.len);
    struct seg_scan_report rep;
    struct seen s = {0};
    scan(path, false, 100, 0, &rep, &s);
    assert_int_equal(rep.records, NREC);
    assert_int_equal(rep.bytes_good, b.len);
    assert_int_equal(rep.file_size, b.len);
    assert_false(rep.torn_tail);
    assert_false(rep.corrupt);
    /* truncate on a clean file changes nothing. */
    scan(path, true, 100, 0, &rep, &s);
    assert_int_equal(rep.records, NREC);
    assert_int_equal(file_size(path), (off_t)b.len);
    /* A header alone: no records, clean. */
    write_file(path, b.data, SEG_FILE_HEADER);
    scan(path, false, 100, 0, &rep, &s);
    assert_int_equal(rep.records, 0);
    assert_int_equal(rep.bytes_good, SEG_FILE_HEADER);
    assert_false(rep.torn_tail || rep.corrupt);
    /* The callback stops the scan with its value. */
    write_file(path, b.data, b.len);
    s.stop_at = 3;
    scan(path, false, 100, 7, &rep, &s);
    assert_int_equal(s.n, 3);
    s.stop_at = 0;
    /* No callback: still counts. */
    struct seg_file_header h;
    assert_int_equal(seg_scan_file(path, false, &h, NULL, NULL, &rep), 0);
    assert_int_equal(rep.records, NREC);
    unlink(path);
    buf_fini(&b);
}

static void test_seg_scan_bad_header_and_missing(void **state)
{
    char path[256];
    snprintf(path, sizeof path, "%s/badhdr.seg", tmpdir);
    struct buf b;
    build_segment(&b, 0, 0, 3, 50, NULL);
    char magic[4];
    wr_u32(magic, SEG_FILE_MAGIC);
    char *at = memmem(b.data, SEG_FILE_HEADER, magic, 4);
    assert_non_null(at);
    at[0] ^= 1;
    write_file(path, b.data, b.len);
    struct seg_file_header h;
    struct seg_scan_report rep;
    assert_int_equal(seg_scan_file(path, false, &h, NULL, NULL, &rep), -EINVAL);
    assert_int_equal(seg_scan_file(path, true, &h, NULL, NULL, &rep), -EINVAL);
    assert_int_equal(file_size(path), (off_t)b.len); /* not cut on a bad header */
    unlink(path);
    assert_int_equal(seg_scan_file(path, false, &h, NULL, NULL, &rep), -ENOENT);
    buf_fini(&b);
}

static void check_torn_at(const struct buf *b, const uint64_t *offs, size_t cut)
{
    char path[256];
    snprintf(path, sizeof path, "%s/torn.seg", tmpdir);
    write_file(path, b->data, cut);
    struct seg_scan_report rep;
    struct seen s = {0};
    scan(path, false, 100, 0, &rep, &s);
    assert_true(rep.torn_tail);
    assert_false(rep.corrupt);
    assert_int_equal(rep.records, NREC - 1);
    assert_int_equal(rep.bytes_good, offs[NREC - 1]);
    assert_int_equal(rep.file_size, cut);
    assert_int_equal(file_size(path), (off_t)cut); /* not cut without truncate */
    scan(path, true, 100, 0, &rep, &s);
    assert_true(rep.torn_tail);
    assert_int_equal(rep.records, NREC - 1);
    assert_int_equal(file_size(path), (off_t)offs[NREC - 1]);
    /* Now clean. */
    scan(path, false, 100, 0, &rep, &s);
    assert_false(rep.torn_tail || rep.corrupt);
    assert_int_equal(rep.records, NREC - 1);
    assert_int_equal(rep.bytes_good, offs[NREC - 1]);
    unlink(path);
}

static void test_seg_scan_torn_tail(void **state)
{
    uint64_t offs[NREC + 1];
    struct buf b;
    build_segment(&b, 1, 100, NREC, 300, offs);
    uint64_t last = offs[NREC - 1];
    /* Inside the last record's header, inside its body, one byte short. */
    size_t cuts[] = {last + 1, last + SEG_RECORD_HEADER - 1, last + SEG_RECORD_HEADER,
                     (last + offs[NREC]) / 2, offs[NREC] - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++)
        check_torn_at(&b, offs, cuts[i]);
    buf_fini(&b);
}

static void check_corrupt_record(const struct buf *b, const uint64_t *offs, size_t k, off_t at)
{
    char path[256];
    snprintf(path, sizeof path, "%s/corrupt.seg", tmpdir);
    write_file(path, b->data, b->len);
    flip_byte(path, at);
    struct seg_scan_report rep;
    struct seen s = {0};
    scan(path, false, 100, 0, &rep, &s);
    assert_true(rep.corrupt);
    assert_false(rep.torn_tail);
    assert_int_equal(rep.records, k);
    assert_int_equal(rep.bytes_good, offs[k]);
    assert_int_equal(rep.file_size, b->len);
    assert_int_equal(file_size(path), (off_t)b->len);
    scan(path, true, 100, 0, &rep, &s);
    assert_true(rep.corrupt);
    assert_int_equal(file_size(path), (off_t)offs[k]);
    scan(path, false, 100, 0, &rep, &s);
    assert_false(rep.torn_tail || rep.corrupt);
    assert_int_equal(rep.records, k);
    unlink(path);
}

static void test_seg_scan_corrupt_record(void **state)
{
    uint64_t offs[NREC + 1];
    struct buf b;
    build_segment(&b, 1, 100, NREC, 300, offs);
    size_t ks[] = {0, 1, 17, NREC - 2};
    for (size_t i = 0; i < sizeof ks / sizeof *ks; i++) {
        size_t k = ks[i];
        check_corrupt_record(&b, offs, k, (off_t)offs[k] + 3);     /* checksum */
        check_corrupt_record(&b, offs, k, (off_t)offs[k] + 9);     /* magic */
        check_corrupt_record(&b, offs, k, (off_t)offs[k] + 30);    /* mc_flags */
        check_corrupt_record(&b, offs, k, (off_t)offs[k + 1] - 1); /* value */
    }
    buf_fini(&b);
}

/* Records bigger than any sensible read chunk, and many records, so the
 * scan has to refill across record boundaries. */
static void test_seg_scan_large(void **state)
{
    char path[256];
    snprintf(path, sizeof path, "%s/large.seg", tmpdir);
    struct seg_file_header h = {
        .version = SEG_FILE_VERSION, .shard_id = 3, .nshards = 4, .npartitions = 64};
    struct buf b;
    buf_init(&b);
    seg_encode_file_header(&b, &h);
    size_t big = 9u << 20;
    char *val = malloc(big);
    assert_non_null(val);
    fill_random(val, big);
    char key[48];
    uint64_t n = 0;
    while (b.len < (24u << 20)) {
        snprintf(key, sizeof key, "key:%" PRIu64, n);
        size_t vs = n % 500 == 7 ? big - n : 1000 + (size_t)(n * 131) % 9000;
        struct seg_record r = put_rec(key, val + (n % 64), vs, n);
        seg_encode(&b, &r, SEG_CODEC_LZ4, COMPRESS_MIN);
        n++;
    }
    assert_false(b.failed);
    write_file(path, b.data, b.len);
    struct seg_scan_report rep;
    struct seen s = {0};
    scan(path, false, 0, 0, &rep, &s);
    assert_int_equal(rep.records, n);
    assert_int_equal(rep.bytes_good, b.len);
    assert_false(rep.torn_tail || rep.corrupt);
    scan(path, true, 0, 0, &rep, &s); /* clean: a no-op */
    assert_int_equal(file_size(path), (off_t)b.len);
    /* Torn one byte short of the end. */
    size_t cut = b.len - 1;
    assert_int_equal(truncate(path, (off_t)cut), 0);
    scan(path, false, 0, 0, &rep, &s);
    assert_true(rep.torn_tail);
    assert_int_equal(rep.records, n - 1);
    unlink(path);
    free(val);
    buf_fini(&b);
}

static void test_seg_path(void **state)
{
    char out[256];
    seg_path(out, sizeof out, "/var/lib/ringkv", 7, 0xff);
    assert_string_equal(out, "/var/lib/ringkv/shard-007/00000000000000ff.seg");
    seg_path(out, sizeof out, "d", 0, 0);
    assert_string_equal(out, "d/shard-000/0000000000000000.seg");
    seg_path(out, sizeof out, "d", 1234, UINT64_MAX);
    assert_string_equal(out, "d/shard-1234/ffffffffffffffff.seg");
    seg_path(out, sizeof out, "d", 12, 0x123456789abcdefull);
    assert_string_equal(out, "d/shard-012/0123456789abcdef.seg");
}

static void make_shard_dir(const char *dir, uint32_t shard)
{
    char p[512];
    snprintf(p, sizeof p, "%s/shard-%03u", dir, shard);
    assert_int_equal(mkdir(p, 0755), 0);
}

static void write_segment(const char *dir, uint32_t shard, uint64_t number, size_t nrec)
{
    char p[512];
    seg_path(p, sizeof p, dir, shard, number);
    struct buf b;
    build_segment(&b, shard, number * 1000, nrec, 100, NULL);
    write_file(p, b.data, b.len);
    buf_fini(&b);
}

static void test_seg_list(void **state)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s/list", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    char **paths = NULL;
    size_t count = 99;
    /* No shard directory: no files. */
    assert_int_equal(seg_list(dir, 3, &paths, &count), 0);
    assert_int_equal(count, 0);
    seg_free_paths(paths, count);
    make_shard_dir(dir, 3);
    assert_int_equal(seg_list(dir, 3, &paths, &count), 0);
    assert_int_equal(count, 0);
    seg_free_paths(paths, count);
    /* Created out of order; numbers whose decimal and hex orders differ. */
    uint64_t nums[] = {0x10, 0x2, 0xa, 0x100000000ull, 0x9};
    for (size_t i = 0; i < 5; i++)
        write_segment(dir, 3, nums[i], 1);
    char junk[512];
    snprintf(junk, sizeof junk, "%s/shard-003/notes.txt", dir);
    write_file(junk, "x", 1);
    assert_int_equal(seg_list(dir, 3, &paths, &count), 0);
    assert_int_equal(count, 5);
    uint64_t sorted[] = {0x2, 0x9, 0xa, 0x10, 0x100000000ull};
    for (size_t i = 0; i < 5; i++) {
        char want[512];
        seg_path(want, sizeof want, dir, 3, sorted[i]);
        assert_string_equal(paths[i], want);
    }
    seg_free_paths(paths, count);
    /* Another shard sees none of them. */
    assert_int_equal(seg_list(dir, 4, &paths, &count), 0);
    assert_int_equal(count, 0);
    seg_free_paths(paths, count);
}

static int check(const char *dir, bool repair)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    int rc = seg_check_dir(dir, repair, f);
    fclose(f);
    assert_true(len > 0); /* it reports what it found */
    free(text);
    return rc;
}

static void test_seg_check_dir(void **state)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s/check", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(check(dir, false), 0); /* empty */
    for (uint32_t s = 0; s < 3; s++) {
        make_shard_dir(dir, s);
        for (uint64_t n = 1; n <= 2; n++)
            write_segment(dir, s, n, 10);
    }
    assert_int_equal(check(dir, false), 0);
    assert_int_equal(check(dir, true), 0);

    /* A torn tail in shard 1, a corrupt record in shard 2. */
    char torn[512], bad[512];
    seg_path(torn, sizeof torn, dir, 1, 2);
    seg_path(bad, sizeof bad, dir, 2, 1);
    off_t torn_size = file_size(torn) - 5;
    assert_int_equal(truncate(torn, torn_size), 0);
    off_t bad_size = file_size(bad);
    flip_byte(bad, bad_size / 2);
    assert_int_equal(check(dir, false), 1);
    assert_int_equal(check(dir, false), 1); /* nothing repaired */
    assert_int_equal(file_size(torn), torn_size);
    assert_int_equal(file_size(bad), bad_size);
    assert_int_equal(check(dir, true), 1); /* damage found, and repaired */
    assert_true(file_size(torn) < torn_size);
    assert_true(file_size(bad) < bad_size);
    assert_int_equal(check(dir, false), 0);
    /* The repaired files scan clean. */
    struct seg_file_header h;
    struct seg_scan_report rep;
    assert_int_equal(seg_scan_file(torn, false, &h, NULL, NULL, &rep), 0);
    assert_int_equal(rep.records, 9);
    assert_false(rep.torn_tail || rep.corrupt);
    assert_int_equal(seg_scan_file(bad, false, &h, NULL, NULL, &rep), 0);
    assert_false(rep.torn_tail || rep.corrupt);

    /* A directory that cannot be read. */
    char missing[512];
    snprintf(missing, sizeof missing, "%s/nope", tmpdir);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(seg_check_dir(missing, false, f), -ENOENT);
    fclose(f);
    free(text);
}

int main(void)
{
    const struct CMUnitTest codec_tests[] = {
        cmocka_unit_test(test_seg_put_round_trip),
        cmocka_unit_test(test_seg_del_and_flush_round_trip),
        cmocka_unit_test(test_seg_record_layout),
        cmocka_unit_test(test_seg_decodes_a_stream),
        cmocka_unit_test(test_seg_lz4_compresses),
        cmocka_unit_test(test_seg_zstd_compresses),
        cmocka_unit_test(test_seg_codec_none_never_compresses),
        cmocka_unit_test(test_seg_incompressible_stored_raw),
        cmocka_unit_test(test_seg_every_prefix_is_more),
        cmocka_unit_test(test_seg_every_flip_is_caught),
        cmocka_unit_test(test_seg_bad_type_codec_magic),
        cmocka_unit_test(test_seg_value_rejects_bad_compressed),
        cmocka_unit_test(test_seg_file_header),
    };
    const struct CMUnitTest file_tests[] = {
        cmocka_unit_test(test_seg_scan_clean),
        cmocka_unit_test(test_seg_scan_bad_header_and_missing),
        cmocka_unit_test(test_seg_scan_torn_tail),
        cmocka_unit_test(test_seg_scan_corrupt_record),
        cmocka_unit_test(test_seg_scan_large),
        cmocka_unit_test(test_seg_path),
        cmocka_unit_test(test_seg_list),
        cmocka_unit_test(test_seg_check_dir),
    };
    int failed = cmocka_run_group_tests(codec_tests, NULL, NULL);
    failed += cmocka_run_group_tests(file_tests, files_setup, files_teardown);
    return failed;
}
