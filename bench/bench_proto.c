/* bench_proto.c: requests out, replies in (see bench_proto.h).
 * Requests are assembled with memcpy and a hand-rolled decimal writer; a
 * GET costs a few dozen byte copies, a SET the value's length more.
 * The reply parser is stateless: it looks at the bytes from the start of a
 * reply and either finds all of it (DONE), runs out (MORE, consuming
 * nothing, with the total length when a header already told it), or meets
 * something that is not a reply to SET or GET (BAD). Re-reading a short
 * header when more bytes come is cheaper than keeping a state machine, and
 * `need` lets the caller wait until a long value has fully arrived.
 * RESP: + - : $ and RESP3 _ are understood; arrays are not (SET and GET
 * never answer with one). Memcached: one VALUE block then END, a lone END,
 * and every other line as status or error by its first word.
 * Checked values hash the key, the filler and the length with a word-at-a-
 * time multiply-rotate hash of our own; 32 of its bits go into the value. */
#include "bench_proto.h"

#include <string.h>

/* Writes v in decimal at dst; returns the end. */
static char *put_u64(char *dst, uint64_t v)
{
    char tmp[BENCH_PROTO_KEY_DIGITS];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *dst++ = tmp[--n];
    return dst;
}

static char *put(char *dst, const void *src, size_t n)
{
    memcpy(dst, src, n);
    return dst + n;
}

size_t bench_proto_key(char *dst, const char *prefix, size_t prefix_len, uint64_t n)
{
    char *end = put_u64(put(dst, prefix, prefix_len), n);
    return (size_t)(end - dst);
}

/* "$<n>\r\n<data>\r\n" */
static char *put_bulk(char *dst, const char *s, size_t n)
{
    *dst++ = '$';
    dst = put_u64(dst, n);
    dst = put(dst, "\r\n", 2);
    dst = put(dst, s, n);
    return put(dst, "\r\n", 2);
}

char *bench_proto_set(char *dst, enum bench_protocol p, const char *key, size_t klen,
                      const char *val, size_t vlen)
{
    if (p == BENCH_PROTO_REDIS) {
        dst = put(dst, "*3\r\n$3\r\nSET\r\n", 13);
        dst = put_bulk(dst, key, klen);
        return put_bulk(dst, val, vlen);
    }
    dst = put(dst, "set ", 4);
    dst = put(dst, key, klen);
    dst = put(dst, " 0 0 ", 5);
    dst = put_u64(dst, vlen);
    dst = put(dst, "\r\n", 2);
    dst = put(dst, val, vlen);
    return put(dst, "\r\n", 2);
}

char *bench_proto_get(char *dst, enum bench_protocol p, const char *key, size_t klen)
{
    if (p == BENCH_PROTO_REDIS) {
        dst = put(dst, "*2\r\n$3\r\nGET\r\n", 13);
        return put_bulk(dst, key, klen);
    }
    dst = put(dst, "get ", 4);
    dst = put(dst, key, klen);
    return put(dst, "\r\n", 2);
}

/* Finds the CRLF ending the line at buf. 1 with *line_len (without CRLF),
 * 0 when it has not arrived, -1 when the line is too long or has a bare LF. */
static int find_line(const char *buf, size_t len, size_t *line_len)
{
    size_t scan = len < BENCH_PROTO_MAX_LINE ? len : BENCH_PROTO_MAX_LINE;
    const char *lf = memchr(buf, '\n', scan);
    if (!lf)
        return len >= BENCH_PROTO_MAX_LINE ? -1 : 0;
    if (lf == buf || lf[-1] != '\r')
        return -1;
    *line_len = (size_t)(lf - buf) - 1;
    return 1;
}

/* Parses a whole decimal number; -1 on anything else or past max. */
static int parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    if (n == 0 || n > BENCH_PROTO_KEY_DIGITS)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static bool line_is(const char *line, size_t n, const char *word)
{
    size_t w = strlen(word);
    return n == w && memcmp(line, word, w) == 0;
}

static bool line_starts(const char *line, size_t n, const char *word)
{
    size_t w = strlen(word);
    return n >= w && memcmp(line, word, w) == 0;
}

/* A value of n bytes at buf + data followed by trailer: whole, or how long it will be. */
static enum bench_reply_status finish_value(const char *buf, size_t len, size_t data, size_t n,
                                            const char *trailer, struct bench_reply *r,
                                            size_t *consumed, size_t *need)
{
    size_t tlen = strlen(trailer);
    size_t total = data + n + tlen;
    if (len < total) {
        *need = total;
        return BENCH_REPLY_MORE;
    }
    if (memcmp(buf + data + n, trailer, tlen) != 0)
        return BENCH_REPLY_BAD;
    r->kind = BENCH_REPLY_VALUE;
    r->text = buf + data;
    r->len = n;
    *consumed = total;
    return BENCH_REPLY_DONE;
}

static enum bench_reply_status parse_resp_bulk(const char *buf, size_t len, size_t line_len,
                                               struct bench_reply *r, size_t *consumed,
                                               size_t *need)
{
    if (line_is(buf + 1, line_len - 1, "-1")) {
        r->kind = BENCH_REPLY_NIL;
        *consumed = line_len + 2;
        return BENCH_REPLY_DONE;
    }
    uint64_t n;
    if (parse_u64(buf + 1, line_len - 1, BENCH_PROTO_MAX_VALUE, &n) != 0)
        return BENCH_REPLY_BAD;
    return finish_value(buf, len, line_len + 2, (size_t)n, "\r\n", r, consumed, need);
}

static enum bench_reply_status parse_resp(const char *buf, size_t len, struct bench_reply *r,
                                          size_t *consumed, size_t *need)
{
    size_t line_len;
    int found = find_line(buf, len, &line_len);
    if (found <= 0)
        return found == 0 ? BENCH_REPLY_MORE : BENCH_REPLY_BAD;
    r->text = buf + 1;
    r->len = line_len - 1;
    *consumed = line_len + 2;
    switch (buf[0]) {
    case '+':
        r->kind = BENCH_REPLY_STATUS;
        return BENCH_REPLY_DONE;
    case '-':
        r->kind = BENCH_REPLY_ERROR;
        return BENCH_REPLY_DONE;
    case ':':
        r->kind = BENCH_REPLY_INT;
        return BENCH_REPLY_DONE;
    case '_':
        r->kind = BENCH_REPLY_NIL;
        return line_len == 1 ? BENCH_REPLY_DONE : BENCH_REPLY_BAD;
    case '$':
        return parse_resp_bulk(buf, len, line_len, r, consumed, need);
    }
    return BENCH_REPLY_BAD;
}

/* "VALUE <key> <flags> <bytes>[ <cas>]" then data, CRLF, "END" CRLF. */
static enum bench_reply_status parse_mc_value(const char *buf, size_t len, size_t line_len,
                                              struct bench_reply *r, size_t *consumed, size_t *need)
{
    const char *p = buf + 6, *end = buf + line_len;
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp || sp == p)
        return BENCH_REPLY_BAD;
    r->key = p;
    r->key_len = (size_t)(sp - p);
    p = sp + 1;
    sp = memchr(p, ' ', (size_t)(end - p));
    uint64_t flags, bytes;
    if (!sp || parse_u64(p, (size_t)(sp - p), UINT32_MAX, &flags) != 0)
        return BENCH_REPLY_BAD;
    p = sp + 1;
    sp = memchr(p, ' ', (size_t)(end - p));
    const char *bytes_end = sp ? sp : end;
    if (parse_u64(p, (size_t)(bytes_end - p), BENCH_PROTO_MAX_VALUE, &bytes) != 0)
        return BENCH_REPLY_BAD;
    return finish_value(buf, len, line_len + 2, (size_t)bytes, "\r\nEND\r\n", r, consumed, need);
}

static enum bench_reply_status parse_mc(const char *buf, size_t len, struct bench_reply *r,
                                        size_t *consumed, size_t *need)
{
    size_t line_len;
    int found = find_line(buf, len, &line_len);
    if (found <= 0)
        return found == 0 ? BENCH_REPLY_MORE : BENCH_REPLY_BAD;
    if (line_starts(buf, line_len, "VALUE "))
        return parse_mc_value(buf, len, line_len, r, consumed, need);
    r->text = buf;
    r->len = line_len;
    *consumed = line_len + 2;
    if (line_is(buf, line_len, "END"))
        r->kind = BENCH_REPLY_NIL;
    else if (line_is(buf, line_len, "ERROR") || line_starts(buf, line_len, "CLIENT_ERROR") ||
             line_starts(buf, line_len, "SERVER_ERROR"))
        r->kind = BENCH_REPLY_ERROR;
    else if (line_len == 0)
        return BENCH_REPLY_BAD;
    else
        r->kind = BENCH_REPLY_STATUS;
    return BENCH_REPLY_DONE;
}

enum bench_reply_status bench_proto_parse(enum bench_protocol p, const char *buf, size_t len,
                                          struct bench_reply *reply, size_t *consumed, size_t *need)
{
    *need = 0;
    reply->key = NULL;
    reply->key_len = 0;
    if (len == 0)
        return BENCH_REPLY_MORE;
    if (p == BENCH_PROTO_REDIS)
        return parse_resp(buf, len, reply, consumed, need);
    return parse_mc(buf, len, reply, consumed, need);
}

static const char filler_chars[32] = "abcdefghijklmnopqrstuvwxyz012345";

void bench_proto_filler(char *dst, size_t len, uint64_t seed)
{
    uint64_t x = seed | 1;
    size_t i = 0;
    while (i < len) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t bits = x;
        for (int j = 0; j < 12 && i < len; j++, bits >>= 5)
            dst[i++] = filler_chars[bits & 31];
    }
}

static uint64_t rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* A word-at-a-time hash: enough to catch corruption, not meant for tables. */
static uint64_t check_hash(uint64_t h, const char *p, size_t n)
{
    const uint64_t k = 0x9fb21c651e98df25ull;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = rotl64((h ^ w) * k, 31);
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = rotl64((h ^ w ^ ((uint64_t)n << 56)) * k, 31);
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

static uint32_t value_checksum(const char *filler, size_t flen, const char *key, size_t klen,
                               size_t vlen)
{
    uint64_t h = check_hash(0x5eed ^ (uint64_t)vlen, key, klen);
    return (uint32_t)check_hash(h, filler, flen);
}

static const char hex_digits[16] = "0123456789abcdef";

void bench_proto_value_fill(char *dst, size_t vlen, const char *key, size_t klen)
{
    size_t head = klen + BENCH_PROTO_CHECK_OVERHEAD;
    char *filler = dst + head;
    size_t flen = vlen - head;
    bench_proto_filler(filler, flen, check_hash(0xf111, key, klen));
    uint32_t sum = value_checksum(filler, flen, key, klen, vlen);
    memcpy(dst, key, klen);
    dst[klen] = ':';
    for (int i = 0; i < 8; i++)
        dst[klen + 1 + i] = hex_digits[(sum >> (28 - 4 * i)) & 15];
    dst[klen + 9] = ':';
}

bool bench_proto_value_check(const char *val, size_t vlen, const char *key, size_t klen)
{
    size_t head = klen + BENCH_PROTO_CHECK_OVERHEAD;
    if (vlen < head || memcmp(val, key, klen) != 0 || val[klen] != ':' || val[klen + 9] != ':')
        return false;
    uint32_t sum = 0;
    for (int i = 0; i < 8; i++) {
        const char *d = memchr(hex_digits, val[klen + 1 + i], sizeof hex_digits);
        if (!d)
            return false;
        sum = sum << 4 | (uint32_t)(d - hex_digits);
    }
    return sum == value_checksum(val + head, vlen - head, key, klen, vlen);
}
