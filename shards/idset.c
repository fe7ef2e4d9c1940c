/* idset.c: sets of client ids (see idset.h).
 * Sorting is the C library's qsort; the searches are plain lower-bound
 * binary searches that count their comparisons in idset_steps. Ids asked
 * travel to the shards as one argument of raw int64s, so they are read with
 * memcpy (any alignment). */
#include "idset.h"

#include <stdlib.h>
#include <string.h>

_Thread_local uint64_t idset_steps;

static int idset_cmp_id(const void *a, const void *b)
{
    int64_t x, y;
    memcpy(&x, a, sizeof x);
    memcpy(&y, b, sizeof y);
    idset_steps++;
    return (x > y) - (x < y);
}

void idset_sort(int64_t *ids, uint32_t n)
{
    if (n > 1)
        qsort(ids, n, sizeof *ids, idset_cmp_id);
}

bool idset_has(const void *sorted, uint32_t n, int64_t id)
{
    const char *v = sorted;
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int64_t x;
        memcpy(&x, v + (size_t)mid * sizeof x, sizeof x);
        idset_steps++;
        if (x < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == n)
        return false;
    int64_t x;
    memcpy(&x, v + (size_t)lo * sizeof x, sizeof x);
    return x == id;
}

size_t idset_record_begin(struct buf *b, int64_t id)
{
    size_t at = b->len;
    uint32_t len = 0;
    buf_append(b, &id, sizeof id);
    buf_append(b, &len, sizeof len);
    return at;
}

void idset_record_end(struct buf *b, size_t at)
{
    if (b->failed || at + IDSET_RECORD_HEAD > b->len)
        return;
    uint32_t len = (uint32_t)(b->len - at - IDSET_RECORD_HEAD);
    memcpy(b->data + at + sizeof(int64_t), &len, sizeof len);
}

uint32_t idset_index(const char *p, size_t n, struct idset_line *out, uint32_t cap)
{
    uint32_t k = 0;
    size_t at = 0;
    while (k < cap && n - at >= IDSET_RECORD_HEAD) {
        uint32_t len;
        memcpy(&out[k].id, p + at, sizeof out[k].id);
        memcpy(&len, p + at + sizeof(int64_t), sizeof len);
        at += IDSET_RECORD_HEAD;
        if (len > n - at)
            break;
        out[k].p = p + at;
        out[k].n = len;
        at += len;
        k++;
    }
    return k;
}

static int idset_cmp_line(const void *a, const void *b)
{
    const struct idset_line *x = a, *y = b;
    idset_steps++;
    return (x->id > y->id) - (x->id < y->id);
}

void idset_lines_sort(struct idset_line *v, uint32_t n)
{
    if (n > 1)
        qsort(v, n, sizeof *v, idset_cmp_line);
}

const struct idset_line *idset_lines_find(const struct idset_line *v, uint32_t n, int64_t id)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        idset_steps++;
        if (v[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo].id == id ? &v[lo] : NULL;
}
