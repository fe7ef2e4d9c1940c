/* resp.h: the Redis protocol (RESP2, RESP3 replies, inline commands).
 * Parsing is pure: bytes in; a status, bytes consumed and argument slices out.
 * No I/O, no allocation, no logging, so unit tests and fuzzers drive it alone.
 * Writing appends replies to a struct buf in RESP2 or RESP3 form.
 * Threads: any; nothing here is shared.
 * Ownership: argument slices point into the caller's input (or, for inline
 *   commands with quotes, into the caller's scratch area) and live as long
 *   as those bytes do. */
#ifndef RINGKV_NET_RESP_H
#define RINGKV_NET_RESP_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum resp_status {
    RESP_OK,        /* one whole request parsed: argv/argc/consumed set */
    RESP_MORE,      /* need more bytes; *need is the total length the request
                       needs when known (a big bulk), else 0 */
    RESP_NEED_ARGS, /* argv is too small: *argc is the count needed; grow and call again */
    RESP_BAD,       /* framing lost: *err is the Redis error text (without '-'
                       and CRLF); reply with it, then close the connection */
};

struct resp_arg {
    const char *ptr;
    uint32_t len;
};

struct resp_limits {
    uint32_t max_args;        /* most arguments in one request */
    uint64_t max_bulk;        /* longest single argument ("proto-max-bulk-len") */
    uint64_t max_inline;      /* longest inline command line */
};

/* Parses one request from data[0..len).
 * argv has room for argv_cap slices. scratch (scratch_cap bytes, at least
 * max_inline) receives unescaped inline arguments that contain quotes.
 * An empty inline line (just CRLF) is consumed and reported as RESP_OK with
 * argc 0; callers skip it, as Redis does. */
enum resp_status resp_parse(const struct resp_limits *lim, const char *data, size_t len,
                            struct resp_arg *argv, uint32_t argv_cap, uint32_t *argc,
                            char *scratch, size_t scratch_cap, size_t *consumed, size_t *need,
                            const char **err);

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
void resp_write_double(struct buf *b, int proto, double v);    /* ,v | $ bulk, Redis's
                                                                  %.17g form */
void resp_write_verbatim(struct buf *b, int proto, const char *s, size_t n); /* =n txt:.. | $ */
void resp_write_ok(struct buf *b);                              /* +OK */

#endif
