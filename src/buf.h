/* buf.h: growable byte buffers for replies and messages.
 * Threads: a buf belongs to the thread that uses it; memory comes from the
 *   calling thread's mimalloc heap (mimalloc's thread-local default heap, which
 *   is the shard's heap on a shard thread).
 * Ownership: buf_fini() frees the bytes; buf_take() hands them to the caller
 *   (free with mi_free).
 * Errors: appends never fail loudly. On out of memory the buf keeps what it
 *   had and sets `failed`; the writer of a reply checks it once at the end
 *   (an -OOM reply replaces the partial one), so every append stays one line. */
#ifndef RINGKV_SRC_BUF_H
#define RINGKV_SRC_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
    bool failed; /* an append ran out of memory; contents are incomplete */
};

void buf_init(struct buf *b);
void buf_fini(struct buf *b);

/* Makes room for `extra` more bytes. 0, or -ENOMEM (and sets failed). */
int buf_reserve_slow(struct buf *b, size_t extra);

static inline int buf_reserve(struct buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    return buf_reserve_slow(b, extra);
}

static inline void buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0 || buf_reserve(b, n) != 0)
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static inline void buf_append_str(struct buf *b, const char *s) { buf_append(b, s, strlen(s)); }

/* Appends the decimal form of v. */
void buf_append_i64(struct buf *b, int64_t v);
void buf_append_u64(struct buf *b, uint64_t v);

/* printf-style append, for rare and cold replies (INFO, CLIENT LIST). */
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Drops the first n bytes (n <= len), keeping the rest at the front. */
void buf_consume(struct buf *b, size_t n);

/* Empties the buffer but keeps its memory. */
static inline void buf_clear(struct buf *b)
{
    b->len = 0;
    b->failed = false;
}

#endif
