/* seg.h: the on-disk log of a shard: segment files of checksummed records.
 * Bitcask-like: each shard appends records to its current segment file
 * <dir>/shard-<NNN>/<SSSSSSSSSSSSSSSS>.seg (16 hex digits, increasing); a
 * segment past its size limit is closed and a new one started. A record
 * describes one change to one key (a put with its value and expiry, or a
 * delete) and carries room for the version metadata (vector clocks) of the
 * cluster layer. Values above a threshold are stored compressed (LZ4 or
 * zstd).
 *
 * Record layout (little endian), fixed header then variable parts:
 *   u64 checksum   XXH3-64 of every byte after this field
 *   u32 magic      SEG_RECORD_MAGIC
 *   u8  type       enum seg_type
 *   u8  codec      enum seg_codec of the value bytes
 *   u16 meta_len   version metadata bytes (0 today)
 *   u32 key_len
 *   u32 val_len    stored (possibly compressed) value bytes
 *   u32 raw_len    value bytes once decompressed
 *   u32 mc_flags
 *   i64 expire_ms  absolute unix ms, 0 = none
 *   u64 seq        the key's version (its cas: new with every change of the
 *                  value; an expiry change keeps it), 0 for deletes/flushes
 *   then meta, key, value.
 * Limits: keys up to SEG_MAX_KEY (512 MiB) and values up to SEG_MAX_VALUE
 * (1 GiB); a longer length field decodes as corrupt. The node's settings
 * (max-key-size, proto-max-bulk-len) and the store derive their bounds from
 * these two, so nothing acknowledged is beyond what a record holds.
 * A segment file starts with a header: SEG_FILE_MAGIC, version, shard id,
 * shard count, partition count and partition function (enum keyhash_fn; the
 * u32 was zero, xxh3, before slots) at creation.
 *
 * Encoding and decoding are pure (no I/O, no allocation beyond the caller's
 * buffers), so unit tests and fuzzers drive them. Scanning and checking read
 * files with plain blocking reads: they run at start-up (recovery) and in the
 * offline checker, never inside a serving loop.
 * Threads: any; nothing is shared.
 * Errors: negative errno; decoding returns an enum. */
#ifndef RINGKV_SHARDS_SEG_H
#define RINGKV_SHARDS_SEG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "buf.h"

#define SEG_RECORD_MAGIC 0x52435231u /* "1RCR" */
#define SEG_FILE_MAGIC 0x474b5652u   /* "RVKG" */
#define SEG_FILE_VERSION 1
#define SEG_RECORD_HEADER 48         /* bytes before meta, key and value */
#define SEG_FILE_HEADER 32
#define SEG_MAX_KEY (512u << 20)     /* longest key a record holds */
#define SEG_MAX_VALUE (1u << 30)     /* longest value (raw or stored) a record holds */

enum seg_type {
    SEG_PUT = 1,   /* key = value (with expiry and flags) */
    SEG_DEL = 2,   /* key deleted */
    SEG_FLUSH = 3, /* every key of the shard deleted (FLUSHALL); key_len 0 */
};
enum seg_codec { SEG_CODEC_NONE = 0, SEG_CODEC_LZ4 = 1, SEG_CODEC_ZSTD = 2 };

struct seg_record {
    enum seg_type type;
    enum seg_codec codec;    /* of val as stored */
    const char *meta;
    uint16_t meta_len;
    const char *key;
    uint32_t key_len;
    const char *val;         /* stored bytes (compressed when codec != NONE) */
    uint32_t val_len;
    uint32_t raw_len;        /* decompressed length */
    uint32_t mc_flags;
    int64_t expire_ms;
    uint64_t seq;
    uint64_t file_offset;    /* seg_scan_file: where the record starts in its file */
};

struct seg_file_header {
    uint32_t version;
    uint32_t shard_id;
    uint32_t nshards;
    uint32_t npartitions;
    uint32_t partition_fn; /* enum keyhash_fn; 0 (xxh3) in files written before slots */
};

/* Appends the encoding of a record to out. The value is given raw; it is
 * compressed with `codec` when raw_len >= compress_min and compression makes
 * it smaller (else stored as is). r->codec/val_len are ignored on input. */
void seg_encode(struct buf *out, const struct seg_record *r, enum seg_codec codec,
                size_t compress_min);

/* Appends a segment file header to out. */
void seg_encode_file_header(struct buf *out, const struct seg_file_header *h);

enum seg_status {
    SEG_OK,      /* one record decoded; *consumed set */
    SEG_MORE,    /* data ends inside a record (a torn tail if at end of file) */
    SEG_CORRUPT, /* checksum, magic or lengths are wrong */
};

/* Decodes one record at data[0..len). Slices point into data. */
enum seg_status seg_decode(const char *data, size_t len, struct seg_record *r, size_t *consumed);
/* Decodes a file header. SEG_OK, SEG_MORE or SEG_CORRUPT. */
enum seg_status seg_decode_file_header(const char *data, size_t len, struct seg_file_header *h);

/* The most bytes a put record of this key and raw value length takes
 * (values are stored compressed only when that is smaller). */
static inline size_t seg_put_record_max(uint32_t key_len, uint32_t raw_len, uint16_t meta_len)
{
    return (size_t)SEG_RECORD_HEADER + meta_len + key_len + raw_len;
}

/* Decompresses r's value into out (raw_len bytes). 0, -EINVAL (corrupt),
 * -ENOMEM. Values stored uncompressed are copied. */
int seg_value(const struct seg_record *r, struct buf *out);

/* What a scan of one file found. */
struct seg_scan_report {
    uint64_t records;
    uint64_t bytes_good;     /* offset just past the last good record */
    uint64_t file_size;
    bool torn_tail;          /* ended inside a record */
    bool corrupt;            /* a bad record (checksum) before the end */
};

/* Reads a segment file sequentially and calls fn for every good record, in
 * order, stopping at the first bad or torn one. When `truncate` is true the
 * file is cut at report->bytes_good if anything bad followed. The record
 * passed to fn is valid during the call only. 0 or -errno (the file could
 * not be read; a bad header is -EINVAL). fn returns 0 to go on, else the
 * scan stops with that value. */
int seg_scan_file(const char *path, bool truncate, struct seg_file_header *header,
                  int (*fn)(const struct seg_record *r, void *arg), void *arg,
                  struct seg_scan_report *report);

/* Paths of a shard's segment files under dir, oldest first, in *paths
 * (an array of mi_malloc'd strings; free with seg_free_paths). 0 or -errno;
 * a missing shard directory is 0 files. */
int seg_list(const char *dir, uint32_t shard_id, char ***paths, size_t *count);
void seg_free_paths(char **paths, size_t count);

/* The path of segment number `number` of a shard (into out, len bytes). */
void seg_path(char *out, size_t len, const char *dir, uint32_t shard_id, uint64_t number);

/* `ringkv --check-data DIR`: verifies every segment of every shard under dir
 * and writes what it found to f (per file: records, good bytes, damage).
 * With repair, torn or corrupt tails are truncated. Returns 0 when all is
 * well, 1 when damage was found (repaired or not), -errno when dir cannot be
 * read. */
int seg_check_dir(const char *dir, bool repair, FILE *f);

#endif
