/* bench_proto.h: the two wire protocols as a client sees them.
 * Writing: SET and GET requests in RESP (Redis) or memcached text, written
 * straight into the caller's buffer (no allocation).
 * Reading: bench_proto_parse() is pure (bytes in; status, bytes consumed and
 * a reply out; no I/O, allocation or logging). On BENCH_REPLY_MORE nothing is
 * consumed: the caller appends what arrives next and calls again with the
 * same start, so a reply may be cut anywhere.
 * Checked values (--verify): a value reads "<key>:<8 hex>:<filler>", the hex
 * being a checksum of the key, the filler and the length, so a read can tell
 * whether it got its own key's value, whole and unaltered.
 * Threads: any; nothing here is shared.
 * Ownership: slices in struct bench_reply point into the caller's input. */
#ifndef RINGKV_BENCH_PROTO_H
#define RINGKV_BENCH_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum bench_protocol {
    BENCH_PROTO_REDIS,         /* RESP2 */
    BENCH_PROTO_MEMCACHE_TEXT, /* memcached text protocol */
};

/* Bytes a request adds around its key and value, an upper bound. */
#define BENCH_PROTO_OVERHEAD 80
/* Longest key bench_proto_key() may write beyond the prefix (uint64 digits). */
#define BENCH_PROTO_KEY_DIGITS 20
/* Bytes a checked value needs beyond its key: ':' 8 hex digits ':'. */
#define BENCH_PROTO_CHECK_OVERHEAD 10
/* A reply line (status, error, header) longer than this loses framing. */
#define BENCH_PROTO_MAX_LINE 65536
/* Largest value accepted in a reply. */
#define BENCH_PROTO_MAX_VALUE (512u << 20)

enum bench_reply_status {
    BENCH_REPLY_DONE, /* one whole reply: *reply and *consumed are set */
    BENCH_REPLY_MORE, /* incomplete; *need is the total length needed when known, else 0 */
    BENCH_REPLY_BAD,  /* not a reply we understand: framing is lost */
};

enum bench_reply_kind {
    BENCH_REPLY_STATUS, /* +OK; STORED, NOT_STORED and other status lines */
    BENCH_REPLY_ERROR,  /* -ERR ...; ERROR, CLIENT_ERROR ..., SERVER_ERROR ... */
    BENCH_REPLY_VALUE,  /* a bulk string or memcached VALUE block */
    BENCH_REPLY_NIL,    /* a miss: $-1, RESP3 _, memcached END alone */
    BENCH_REPLY_INT,    /* :n */
};

struct bench_reply {
    enum bench_reply_kind kind;
    const char *text; /* the value's data, or the line without its type byte or CRLF */
    size_t len;
    const char *key; /* memcached VALUE: the key the server named; else NULL */
    size_t key_len;
};

/* Writes prefix and the decimal n to dst (room for prefix_len +
 * BENCH_PROTO_KEY_DIGITS); returns the key's length. */
size_t bench_proto_key(char *dst, const char *prefix, size_t prefix_len, uint64_t n);

/* Write a request at dst (room for klen + vlen + BENCH_PROTO_OVERHEAD);
 * return the end of what was written. */
char *bench_proto_set(char *dst, enum bench_protocol p, const char *key, size_t klen,
                      const char *val, size_t vlen);
char *bench_proto_get(char *dst, enum bench_protocol p, const char *key, size_t klen);

/* Parses one reply from buf[0..len). */
enum bench_reply_status bench_proto_parse(enum bench_protocol p, const char *buf, size_t len,
                                          struct bench_reply *reply, size_t *consumed,
                                          size_t *need);

/* Fills dst[0..len) with letters and digits drawn from seed. */
void bench_proto_filler(char *dst, size_t len, uint64_t seed);

/* Writes the checked value of a key: vlen >= klen + BENCH_PROTO_CHECK_OVERHEAD. */
void bench_proto_value_fill(char *dst, size_t vlen, const char *key, size_t klen);

/* True when val is an intact checked value of this key. */
bool bench_proto_value_check(const char *val, size_t vlen, const char *key, size_t klen);

#endif
