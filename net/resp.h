/* resp.h: the Redis protocol (RESP2, RESP3 replies, inline commands).
 * Parsing is pure: bytes and the caller's resumption state in; a status, bytes
 * consumed and argument slices out. No I/O, no allocation, no logging, so
 * unit tests and fuzzers drive it alone.
 * Writing appends replies to a struct buf in RESP2 or RESP3 form.
 * Threads: any; nothing here is shared.
 * Ownership: argument slices point into the caller's input (or, for inline
 *   commands with quotes, into the caller's scratch area) and live as long
 *   as those bytes do.
 * Errors: parse outcomes are enum resp_status; writers never fail loudly (an
 *   out-of-memory append sets the buf's `failed` flag, see buf.h). */
#ifndef RINGKV_NET_RESP_H
#define RINGKV_NET_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"

enum resp_status {
    RESP_OK,        /* one whole request parsed: argv/argc/consumed set */
    RESP_MORE,      /* need more bytes; *need, when not 0, is a length the
                       request is known to reach (the end of the bulk being
                       read): calling again with fewer bytes returns RESP_MORE */
    RESP_NEED_ARGS, /* argv is too small: *argc is the count needed; grow and
                       call again (only reported once the whole request is in,
                       so a "*1000000" header alone never makes argv grow) */
    RESP_BAD,       /* framing lost: *err is the Redis error text (without '-'
                       and CRLF); reply with it, then close the connection */
};

struct resp_arg {
    const char *ptr;
    uint32_t len;
};

/* Whether two arguments are the same bytes. */
static inline bool resp_arg_equal(const struct resp_arg *a, const struct resp_arg *b)
{
    return a->len == b->len && memcmp(a->ptr, b->ptr, a->len) == 0;
}

struct resp_limits {
    uint32_t max_args;        /* most arguments in one request (a larger "*N" is
                                 "invalid multibulk length") */
    uint64_t max_bulk;        /* longest single argument ("proto-max-bulk-len");
                                 capped at UINT32_MAX */
    uint64_t max_inline;      /* an inline line's "\n" must come within this many
                                 bytes; capped at UINT32_MAX */
};

/* Progress through one request, kept by the caller between calls so that no
 * byte is parsed again: each call resumes where the last one stopped (which
 * argument, which phase, how far the current line was searched), so a
 * request costs work linear in its size however its bytes were split into
 * reads. Offsets only, counted from the request's first byte: the caller may
 * move its buffer between calls, but each call must see the same request
 * start with the same bytes (and maybe more of them).
 * A zeroed struct is a fresh request; resp_parse() returns the state there
 * after RESP_OK and RESP_BAD. A caller that drops a partial request's bytes
 * some other way calls resp_state_reset(). Fields other than `examined` are
 * the parser's. */
struct resp_state {
    uint64_t examined; /* bytes the parser walked over (searched, decoded, or
                          skipped as a bulk), summed over calls and never
                          cleared by it: a work meter (tests, INFO); the
                          caller may read and zero it */
    size_t pos;        /* next "$len" line or bulk; inline: the "\n" once found */
    size_t scan;       /* the current line was searched for its end up to here */
    uint64_t bulk_len; /* length of the bulk at pos, once its "$len" was read */
    uint32_t count;    /* arguments announced by "*N" */
    uint32_t done;     /* arguments read whole */
    uint8_t phase;     /* resp.c: line, header, data, whole */
};

/* Back to a fresh request; `examined` is kept. */
void resp_state_reset(struct resp_state *st);

/* Parses one request from data[0..len), resuming from *state; never reads
 * past len. argv has room for argv_cap slices. scratch (scratch_cap bytes, at
 * least max_inline) receives unescaped inline arguments that contain quotes.
 * On RESP_OK: *argc slices in argv, *consumed bytes to drop. An empty inline
 * line (just CRLF) and "*0" / "*-1" are consumed and reported as RESP_OK with
 * argc 0; callers skip them, as Redis does.
 * On RESP_NEED_ARGS: grow argv to *argc and call again with the same bytes.
 * On RESP_BAD: *err is static text.
 * *consumed is 0 unless RESP_OK, *need 0 unless RESP_MORE. */
enum resp_status resp_parse(const struct resp_limits *lim, struct resp_state *state,
                            const char *data, size_t len, struct resp_arg *argv, uint32_t argv_cap,
                            uint32_t *argc, char *scratch, size_t scratch_cap, size_t *consumed,
                            size_t *need, const char **err);

/* Looks ahead at up to max pipelined requests in data[0..len) without
 * parsing them: the second argument (the key, for keyed commands) of each
 * multibulk request, as slices of data, in keys. A hint for prefetching,
 * never a parse: it stops at the first thing that is not a plain array of
 * at most RESP_PEEK_ARGS bulk strings, or that is cut short (a key whose
 * request is not whole yet may be among those returned), and never reads
 * outside data[0..len). Returns how many keys it filled. */
#define RESP_PEEK_ARGS 64
uint32_t resp_peek_keys(const char *data, size_t len, struct resp_arg *keys, uint32_t max);

/* Reply writers. proto is 2 or 3 (HELLO). */
void resp_write_simple(struct buf *b, const char *s);          /* +s */
void resp_write_error(struct buf *b, const char *msg);         /* -msg; msg carries its
                                                                  prefix: "ERR ..." */
void resp_write_int(struct buf *b, int64_t v);                 /* :v */
void resp_write_bulk(struct buf *b, const void *p, size_t n);  /* $n data */
void resp_write_bulk_str(struct buf *b, const char *s);
void resp_write_bulk_i64(struct buf *b, int64_t v);            /* $len digits */
void resp_write_null(struct buf *b, int proto);                /* $-1 | _ */
void resp_write_null_array(struct buf *b, int proto);          /* *-1 | _ */
void resp_write_array_len(struct buf *b, size_t n);            /* *n */
void resp_write_map_len(struct buf *b, int proto, size_t n);   /* %n | *2n */
void resp_write_set_len(struct buf *b, int proto, size_t n);   /* ~n | *n */
void resp_write_double(struct buf *b, int proto, double v);    /* ,v | $ bulk: "%.17g",
                                                                  "inf", "-inf", "nan" */
void resp_write_verbatim(struct buf *b, int proto, const char *s, size_t n); /* =n txt:.. | $ */
void resp_write_ok(struct buf *b);                              /* +OK */

#endif
