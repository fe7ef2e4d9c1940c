/* pieces.h: what the parser tests share to deliver a stream a few bytes at a
 * time, as a connection's reads would: each step appends the next 1..16
 * input bytes (sizes from a fixed generator) to a buffer that moves as it
 * grows, so a parser state that kept pointers instead of offsets would be
 * caught. Header-only; unit tests only. */
#ifndef RINGKV_TESTS_UNIT_PIECES_H
#define RINGKV_TESTS_UNIT_PIECES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct pieces {
    const char *in;  /* the whole stream */
    size_t len;
    char *data;      /* what has "arrived": data[0..avail) */
    size_t avail;
    size_t cap;
    uint64_t rng;
};

/* Appends the next piece; false when the whole stream has arrived already
 * or memory ran out. Free p->data when done. */
static inline bool pieces_next(struct pieces *p)
{
    if (p->avail >= p->len)
        return false;
    p->rng = p->rng * 6364136223846793005ull + 1442695040888963407ull;
    size_t n = 1 + (size_t)(p->rng >> 60);
    n = n < p->len - p->avail ? n : p->len - p->avail;
    if (p->avail + n > p->cap) {
        char *grown = realloc(p->data, (p->avail + n) * 2); /* usually moves */
        if (!grown)
            return false;
        p->data = grown;
        p->cap = (p->avail + n) * 2;
    }
    memcpy(p->data + p->avail, p->in + p->avail, n);
    p->avail += n;
    return true;
}

#endif
