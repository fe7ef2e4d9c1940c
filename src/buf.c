/* buf.c: growable byte buffers (see buf.h).
 * Growth doubles capacity (at least 64 bytes, at least what is asked) using
 * the calling thread's mimalloc heap. An allocation failure leaves the bytes
 * as they were and raises the sticky `failed` flag instead of returning an
 * error through every append; buf_clear() lowers it. */
#include "buf.h"

#include <errno.h>
#include <inttypes.h>
#include <mimalloc.h>
#include <stdarg.h>
#include <stdio.h>

void buf_init(struct buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = false;
}

void buf_fini(struct buf *b)
{
    mi_free(b->data);
    buf_init(b);
}

int buf_reserve_slow(struct buf *b, size_t extra)
{
    size_t want = b->len + extra;
    if (want < b->len) { /* overflow */
        b->failed = true;
        return -ENOMEM;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < want)
        cap = cap * 2 > cap ? cap * 2 : want;
    char *p = mi_realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return -ENOMEM;
    }
    b->data = p;
    b->cap = mi_usable_size(p);
    return 0;
}

void buf_append_i64(struct buf *b, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    buf_append(b, tmp, (size_t)n);
}

void buf_append_u64(struct buf *b, uint64_t v)
{
    char tmp[20]; /* UINT64_MAX has 20 digits */
    char *p = tmp + sizeof tmp;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    buf_append(b, p, (size_t)(tmp + sizeof tmp - p));
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        buf_append(b, small, (size_t)n);
        return;
    }
    if (buf_reserve(b, (size_t)n + 1) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}
