/* seg.c: the segment record codec and the blocking file scans (see seg.h).
 * Encoding writes a fixed 48-byte little-endian header, then meta, key and
 * value; the checksum (XXH3-64 over everything after it) is filled in last.
 * A value of at least compress_min bytes is compressed into the output
 * buffer directly (LZ4 or zstd); if that does not make it smaller the raw
 * bytes are stored instead, so decoding never grows data it need not.
 * Decoding checks, in order: enough bytes for the header (else MORE), the
 * magic, type and codec (else CORRUPT), enough bytes for the lengths the
 * header gives (else MORE), then the checksum (else CORRUPT). A torn tail is
 * therefore MORE at end of file and a damaged record CORRUPT.
 * Scans read a file in large sequential chunks, hand each good record to the
 * caller and stop at the first bad one; with truncate they cut the file
 * there (ftruncate + fsync) so that appends resume after good data only. */
#include "seg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4.h>
#include <mimalloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "keyhash.h"

#define SEG_SCAN_CHUNK (4u << 20)
#define SEG_ZSTD_LEVEL 1

static void put_u16(char *p, uint16_t v)
{
    for (int i = 0; i < 2; i++)
        p[i] = (char)(v >> (8 * i));
}
static void put_u32(char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (char)(v >> (8 * i));
}
static void put_u64(char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (char)(v >> (8 * i));
}
static uint16_t get_u16(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint16_t)(u[0] | u[1] << 8);
}
static uint32_t get_u32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}
static uint64_t get_u64(const char *p) { return get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

/* Compresses src into dst (cap bytes); the compressed length, or 0 when it
 * failed or would not fit. */
static size_t compress_into(enum seg_codec codec, const char *src, size_t len, char *dst, size_t cap)
{
    if (codec == SEG_CODEC_LZ4) {
        int n = LZ4_compress_default(src, dst, (int)len, (int)cap);
        return n > 0 ? (size_t)n : 0;
    }
    if (codec == SEG_CODEC_ZSTD) {
        size_t n = ZSTD_compress(dst, cap, src, len, SEG_ZSTD_LEVEL);
        return ZSTD_isError(n) ? 0 : n;
    }
    return 0;
}

void seg_encode(struct buf *out, const struct seg_record *r, enum seg_codec codec,
                size_t compress_min)
{
    size_t fixed = SEG_RECORD_HEADER + r->meta_len + r->key_len;
    size_t raw = r->raw_len;
    bool try_compress = codec != SEG_CODEC_NONE && raw >= compress_min && raw > 0 &&
                        raw <= SEG_MAX_VALUE && r->type == SEG_PUT;
    /* Room for the raw value: a compressed one is only kept when smaller. */
    if (buf_reserve(out, fixed + raw) != 0)
        return;
    char *rec = out->data + out->len;
    char *val = rec + fixed;
    enum seg_codec stored = SEG_CODEC_NONE;
    size_t stored_len = raw;
    if (try_compress) {
        size_t n = compress_into(codec, r->val, raw, val, raw - 1);
        if (n > 0 && n < raw) {
            stored = codec;
            stored_len = n;
        }
    }
    if (stored == SEG_CODEC_NONE && raw > 0)
        memcpy(val, r->val, raw);
    put_u32(rec + 8, SEG_RECORD_MAGIC);
    rec[12] = (char)r->type;
    rec[13] = (char)stored;
    put_u16(rec + 14, r->meta_len);
    put_u32(rec + 16, r->key_len);
    put_u32(rec + 20, (uint32_t)stored_len);
    put_u32(rec + 24, (uint32_t)raw);
    put_u32(rec + 28, r->mc_flags);
    put_u64(rec + 32, (uint64_t)r->expire_ms);
    put_u64(rec + 40, r->seq);
    if (r->meta_len > 0)
        memcpy(rec + SEG_RECORD_HEADER, r->meta, r->meta_len);
    if (r->key_len > 0)
        memcpy(rec + SEG_RECORD_HEADER + r->meta_len, r->key, r->key_len);
    size_t total = fixed + stored_len;
    put_u64(rec, XXH3_64bits(rec + 8, total - 8));
    out->len += total;
}

void seg_encode_file_header(struct buf *out, const struct seg_file_header *h)
{
    char hdr[SEG_FILE_HEADER] = {0};
    put_u32(hdr + 8, SEG_FILE_MAGIC);
    put_u32(hdr + 12, h->version);
    put_u32(hdr + 16, h->shard_id);
    put_u32(hdr + 20, h->nshards);
    put_u32(hdr + 24, h->npartitions);
    put_u32(hdr + 28, h->partition_fn);
    put_u64(hdr, XXH3_64bits(hdr + 8, SEG_FILE_HEADER - 8));
    buf_append(out, hdr, sizeof hdr);
}

enum seg_status seg_decode_file_header(const char *data, size_t len, struct seg_file_header *h)
{
    if (len < SEG_FILE_HEADER)
        return SEG_MORE;
    if (get_u32(data + 8) != SEG_FILE_MAGIC ||
        get_u64(data) != XXH3_64bits(data + 8, SEG_FILE_HEADER - 8))
        return SEG_CORRUPT;
    h->version = get_u32(data + 12);
    h->shard_id = get_u32(data + 16);
    h->nshards = get_u32(data + 20);
    h->npartitions = get_u32(data + 24);
    h->partition_fn = get_u32(data + 28);
    if (h->version != SEG_FILE_VERSION)
        return SEG_CORRUPT;
    return SEG_OK;
}

enum seg_status seg_decode(const char *data, size_t len, struct seg_record *r, size_t *consumed)
{
    if (len < SEG_RECORD_HEADER)
        return SEG_MORE;
    unsigned type = (unsigned char)data[12];
    unsigned codec = (unsigned char)data[13];
    uint16_t meta_len = get_u16(data + 14);
    uint32_t key_len = get_u32(data + 16);
    uint32_t val_len = get_u32(data + 20);
    uint32_t raw_len = get_u32(data + 24);
    if (get_u32(data + 8) != SEG_RECORD_MAGIC || type < SEG_PUT || type > SEG_FLUSH ||
        codec > SEG_CODEC_ZSTD || key_len > SEG_MAX_KEY || val_len > SEG_MAX_VALUE ||
        raw_len > SEG_MAX_VALUE || (codec == SEG_CODEC_NONE && val_len != raw_len))
        return SEG_CORRUPT;
    size_t total = (size_t)SEG_RECORD_HEADER + meta_len + key_len + val_len;
    if (len < total)
        return SEG_MORE;
    if (get_u64(data) != XXH3_64bits(data + 8, total - 8))
        return SEG_CORRUPT;
    r->type = (enum seg_type)type;
    r->codec = (enum seg_codec)codec;
    r->meta_len = meta_len;
    r->meta = data + SEG_RECORD_HEADER;
    r->key_len = key_len;
    r->key = r->meta + meta_len;
    r->val_len = val_len;
    r->val = r->key + key_len;
    r->raw_len = raw_len;
    r->mc_flags = get_u32(data + 28);
    r->expire_ms = (int64_t)get_u64(data + 32);
    r->seq = get_u64(data + 40);
    *consumed = total;
    return SEG_OK;
}

int seg_value(const struct seg_record *r, struct buf *out)
{
    if (buf_reserve(out, r->raw_len) != 0)
        return -ENOMEM;
    char *dst = out->data + out->len;
    switch (r->codec) {
    case SEG_CODEC_NONE:
        if (r->val_len != r->raw_len)
            return -EINVAL;
        if (r->raw_len > 0)
            memcpy(dst, r->val, r->raw_len);
        break;
    case SEG_CODEC_LZ4: {
        int n = LZ4_decompress_safe(r->val, dst, (int)r->val_len, (int)r->raw_len);
        if (n < 0 || (uint32_t)n != r->raw_len)
            return -EINVAL;
        break;
    }
    case SEG_CODEC_ZSTD: {
        size_t n = ZSTD_decompress(dst, r->raw_len, r->val, r->val_len);
        if (ZSTD_isError(n) || n != r->raw_len)
            return -EINVAL;
        break;
    }
    default:
        return -EINVAL;
    }
    out->len += r->raw_len;
    return 0;
}

/* Reads into b until it holds at least `want` bytes or the file ends. */
static int fill(int fd, struct buf *b, size_t want)
{
    while (b->len < want) {
        size_t room = want - b->len < SEG_SCAN_CHUNK ? SEG_SCAN_CHUNK : want - b->len;
        if (buf_reserve(b, room) != 0)
            return -ENOMEM;
        ssize_t n = read(fd, b->data + b->len, room);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return 0;
        b->len += (size_t)n;
    }
    return 0;
}

int seg_scan_file(const char *path, bool truncate, struct seg_file_header *header,
                  int (*fn)(const struct seg_record *r, void *arg), void *arg,
                  struct seg_scan_report *report)
{
    memset(report, 0, sizeof *report);
    int fd = open(path, (truncate ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    report->file_size = (uint64_t)st.st_size;
    struct buf b;
    buf_init(&b);
    int err = fill(fd, &b, SEG_FILE_HEADER);
    if (err == 0 && seg_decode_file_header(b.data, b.len, header) != SEG_OK)
        err = -EINVAL;
    size_t pos = SEG_FILE_HEADER; /* into b */
    uint64_t file_pos = SEG_FILE_HEADER;
    report->bytes_good = file_pos;
    while (err == 0) {
        struct seg_record r;
        size_t used = 0;
        enum seg_status st2 = seg_decode(b.data + pos, b.len - pos, &r, &used);
        if (st2 == SEG_MORE) {
            /* Keep the partial record and read on; its header says how long
             * it is, and a record longer than the rest of the file is torn. */
            buf_consume(&b, pos);
            pos = 0;
            uint64_t left = report->file_size - file_pos;
            size_t want = SEG_RECORD_HEADER;
            if (b.len >= SEG_RECORD_HEADER)
                want = (size_t)SEG_RECORD_HEADER + get_u16(b.data + 14) + get_u32(b.data + 16) +
                       get_u32(b.data + 20);
            if (left == 0)
                break;
            if (want > left) {
                report->torn_tail = true;
                break;
            }
            err = fill(fd, &b, want > b.len + SEG_SCAN_CHUNK ? want : b.len + SEG_SCAN_CHUNK);
            if (err == 0 && b.len < want) {
                report->torn_tail = true; /* the file shrank under us */
                break;
            }
            continue;
        }
        if (st2 == SEG_CORRUPT) {
            report->corrupt = true;
            break;
        }
        r.file_offset = file_pos;
        int stop = fn ? fn(&r, arg) : 0;
        if (stop != 0) {
            err = stop;
            break;
        }
        pos += used;
        file_pos += used;
        report->records++;
        report->bytes_good = file_pos;
    }
    buf_fini(&b);
    if (err == 0 && truncate && report->bytes_good < report->file_size) {
        if (ftruncate(fd, (off_t)report->bytes_good) != 0 || fdatasync(fd) != 0)
            err = -errno;
    }
    close(fd);
    return err;
}

void seg_path(char *out, size_t len, const char *dir, uint32_t shard_id, uint64_t number)
{
    snprintf(out, len, "%s/shard-%03u/%016" PRIx64 ".seg", dir, shard_id, number);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A segment file name: 16 hex digits then ".seg". */
static bool is_segment_name(const char *name)
{
    if (strlen(name) != 20 || strcmp(name + 16, ".seg") != 0)
        return false;
    for (int i = 0; i < 16; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return false;
    return true;
}

int seg_list(const char *dir, uint32_t shard_id, char ***paths, size_t *count)
{
    *paths = NULL;
    *count = 0;
    char sdir[4096];
    snprintf(sdir, sizeof sdir, "%s/shard-%03u", dir, shard_id);
    DIR *d = opendir(sdir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    char **list = NULL;
    size_t n = 0, cap = 0;
    int err = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!is_segment_name(de->d_name))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **grown = mi_realloc(list, ncap * sizeof *grown);
            if (!grown) {
                err = -ENOMEM;
                break;
            }
            list = grown;
            cap = ncap;
        }
        size_t plen = strlen(sdir) + 1 + strlen(de->d_name) + 1;
        list[n] = mi_malloc(plen);
        if (!list[n]) {
            err = -ENOMEM;
            break;
        }
        snprintf(list[n], plen, "%s/%s", sdir, de->d_name);
        n++;
    }
    closedir(d);
    if (err != 0) {
        seg_free_paths(list, n);
        return err;
    }
    /* Fixed-width hex names: text order is number order. */
    if (n > 1)
        qsort(list, n, sizeof *list, cmp_str);
    *paths = list;
    *count = n;
    return 0;
}

void seg_free_paths(char **paths, size_t count)
{
    for (size_t i = 0; i < count; i++)
        mi_free(paths[i]);
    mi_free(paths);
}

/* One past the highest shard-NNN directory under dir. */
static int max_shard_dir(const char *dir, uint32_t *max_plus_one)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    uint32_t top = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (strncmp(name, "shard-", 6) != 0 || strlen(name) < 9 ||
            strspn(name + 6, "0123456789") != strlen(name + 6))
            continue;
        unsigned long id = strtoul(name + 6, NULL, 10);
        if (id < UINT32_MAX && id + 1 > top)
            top = (uint32_t)id + 1;
    }
    closedir(d);
    *max_plus_one = top;
    return 0;
}

int seg_check_dir(const char *dir, bool repair, FILE *f)
{
    uint32_t nshard_dirs = 0;
    int err = max_shard_dir(dir, &nshard_dirs);
    if (err < 0) {
        fprintf(f, "%s: cannot read: %s\n", dir, strerror(-err));
        return err;
    }
    bool damage = false;
    uint64_t files = 0, records = 0, bytes = 0;
    for (uint32_t s = 0; s < nshard_dirs; s++) {
        char **paths;
        size_t count;
        if ((err = seg_list(dir, s, &paths, &count)) < 0) {
            fprintf(f, "shard %u: cannot list segments: %s\n", s, strerror(-err));
            damage = true;
            continue;
        }
        for (size_t i = 0; i < count; i++) {
            struct seg_file_header h;
            struct seg_scan_report rep;
            err = seg_scan_file(paths[i], repair, &h, NULL, NULL, &rep);
            files++;
            if (err < 0) {
                fprintf(f, "%s: %s\n", paths[i],
                        err == -EINVAL ? "bad segment header" : strerror(-err));
                damage = true;
                continue;
            }
            records += rep.records;
            bytes += rep.file_size;
            bool bad = rep.torn_tail || rep.corrupt;
            fprintf(f, "%s: %" PRIu64 " records, %" PRIu64 " of %" PRIu64 " bytes good%s%s%s\n",
                    paths[i], rep.records, rep.bytes_good, rep.file_size,
                    rep.torn_tail ? ", torn record at end" : "",
                    rep.corrupt ? ", corrupt record (checksum) before end" : "",
                    bad ? (repair ? "; truncated to the good part" : "; not repaired") : "");
            damage |= bad;
        }
        seg_free_paths(paths, count);
    }
    fprintf(f, "%" PRIu64 " segment files, %" PRIu64 " records, %" PRIu64 " bytes: %s\n", files,
            records, bytes, damage ? "DAMAGE FOUND" : "all good");
    return damage ? 1 : 0;
}
