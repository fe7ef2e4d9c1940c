/* req.c: the table of requests answered later (see req.h).
 * Storage: a slot array of request pointers with a generation per slot; an
 * id is (generation << 32 | slot), so an id outlives its request safely:
 * req_find() compares the generation, which is bumped when a request is
 * freed. Each request is one allocation (its sub-results follow it unless
 * there is only one). Slots are reused LIFO from a free list.
 * Deadlines: a binary min-heap of requests by deadline_ms (each request
 * knows its index, so an early end removes it in O(log n)); the shard loop
 * calls req_expire() every turn, which looks at the heap's top only.
 * Holds: a request whose quorum is in but whose hold_seq is not durable yet
 * waits in a second min-heap, by hold_seq; req_durable() pops its top while
 * that is durable, so releasing k of n held requests costs O(k log n) and a
 * cancelled or expired one leaves in O(log n) (appendfsync always can hold
 * every pipelined write of hundreds of clients at once).
 * Completion: done() runs once; when it returns true the request leaves the
 * heap and its slot, and its sub-result bodies are freed. A request is only
 * completed once armed (req_arm), so a sub-result that comes in while the
 * owner is still routing the others cannot end it under the owner's feet.
 * Runs on the owning shard thread only; nothing here allocates on a path
 * that does not create a request. */
#include "req.h"

#include <errno.h>
#include <mimalloc.h>
#include <string.h>
#include <time.h>

#define REQ_NO_HEAP UINT32_MAX

int64_t req_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void req_table_init(struct req_table *t, void *ctx)
{
    memset(t, 0, sizeof *t);
    t->ctx = ctx;
    t->deadlines.key = REQ_BY_DEADLINE;
    t->held.key = REQ_BY_HOLD;
}

static void req_free(struct req_table *t, struct req *r)
{
    uint32_t slot = (uint32_t)r->id;
    for (uint32_t i = 0; i < r->nsub; i++)
        buf_fini(&r->subs[i].body);
    buf_fini(&r->one.body);
    buf_fini(&r->extra);
    t->slots[slot] = NULL;
    t->gen[slot]++;
    t->free_slots[t->nfree++] = slot;
    mi_free(r);
}

void req_table_fini(struct req_table *t)
{
    for (uint32_t s = 0; s < t->cap; s++) {
        struct req *r = t->slots[s];
        if (r) {
            r->done(t, r, REQ_END_DROP);
            req_free(t, r);
        }
    }
    mi_free(t->slots);
    mi_free(t->gen);
    mi_free(t->free_slots);
    mi_free(t->deadlines.v);
    mi_free(t->held.v);
    memset(t, 0, sizeof *t);
}

static int req_grow(struct req_table *t)
{
    uint32_t cap = t->cap ? t->cap * 2 : 64;
    struct req **slots = mi_realloc(t->slots, cap * sizeof *slots);
    if (!slots)
        return -ENOMEM;
    t->slots = slots;
    uint32_t *gen = mi_realloc(t->gen, cap * sizeof *gen);
    if (!gen)
        return -ENOMEM;
    t->gen = gen;
    uint32_t *free_slots = mi_realloc(t->free_slots, cap * sizeof *free_slots);
    if (!free_slots)
        return -ENOMEM;
    t->free_slots = free_slots;
    struct req **heap = mi_realloc(t->deadlines.v, cap * sizeof *heap);
    if (!heap)
        return -ENOMEM;
    t->deadlines.v = heap;
    heap = mi_realloc(t->held.v, cap * sizeof *heap);
    if (!heap)
        return -ENOMEM;
    t->held.v = heap;
    for (uint32_t s = cap; s > t->cap; s--) {
        slots[s - 1] = NULL;
        gen[s - 1] = 1;
        free_slots[t->nfree++] = s - 1;
    }
    t->cap = cap;
    return 0;
}

/* ---- the heaps (by deadline, by hold) ---- */

static inline bool heap_less(const struct req_heap *h, const struct req *a, const struct req *b)
{
    return h->key == REQ_BY_DEADLINE ? a->deadline_ms < b->deadline_ms : a->hold_seq < b->hold_seq;
}

static void heap_set(struct req_heap *h, uint32_t i, struct req *r)
{
    h->v[i] = r;
    r->at[h->key] = i;
}

static void heap_up(struct req_table *t, struct req_heap *h, uint32_t i)
{
    struct req *r = h->v[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!heap_less(h, r, h->v[parent]))
            break;
        t->heap_steps++;
        heap_set(h, i, h->v[parent]);
        i = parent;
    }
    heap_set(h, i, r);
}

static void heap_down(struct req_table *t, struct req_heap *h, uint32_t i)
{
    struct req *r = h->v[i];
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= h->n)
            break;
        if (child + 1 < h->n && heap_less(h, h->v[child + 1], h->v[child]))
            child++;
        if (!heap_less(h, h->v[child], r))
            break;
        t->heap_steps++;
        heap_set(h, i, h->v[child]);
        i = child;
    }
    heap_set(h, i, r);
}

static void heap_insert(struct req_table *t, struct req_heap *h, struct req *r)
{
    heap_set(h, h->n++, r);
    heap_up(t, h, h->n - 1);
}

static void heap_remove(struct req_table *t, struct req_heap *h, struct req *r)
{
    uint32_t i = r->at[h->key];
    if (i == REQ_NO_HEAP)
        return;
    r->at[h->key] = REQ_NO_HEAP;
    struct req *last = h->v[--h->n];
    if (last == r)
        return;
    heap_set(h, i, last);
    heap_up(t, h, i);
    heap_down(t, h, last->at[h->key]);
}

/* ---- life of a request ---- */

struct req *req_new(struct req_table *t, uint32_t nsub, uint32_t quorum, req_done_fn *done,
                    int64_t deadline_ms)
{
    if (t->nfree == 0 && req_grow(t) != 0)
        return NULL;
    size_t extra = nsub > 1 ? nsub * sizeof(struct req_result) : 0;
    struct req *r = mi_malloc(sizeof *r + extra);
    if (!r)
        return NULL;
    uint32_t slot = t->free_slots[--t->nfree];
    memset(r, 0, sizeof *r);
    r->id = (uint64_t)t->gen[slot] << 32 | slot;
    r->done = done;
    r->nsub = nsub;
    r->quorum = quorum;
    r->deadline_ms = deadline_ms;
    r->subs = nsub > 1 ? (struct req_result *)(r + 1) : &r->one;
    if (nsub > 1)
        memset(r->subs, 0, extra);
    t->slots[slot] = r;
    r->at[REQ_BY_HOLD] = REQ_NO_HEAP;
    heap_insert(t, &t->deadlines, r);
    return r;
}

struct req *req_find(const struct req_table *t, uint64_t id)
{
    uint32_t slot = (uint32_t)id;
    if (slot >= t->cap || t->gen[slot] != (uint32_t)(id >> 32))
        return NULL;
    return t->slots[slot];
}

static void req_try(struct req_table *t, struct req *r);

/* Calls done(how); frees the request unless it was re-armed. */
static void req_end(struct req_table *t, struct req *r, enum req_end how)
{
    heap_remove(t, &t->held, r);
    if (!r->done(t, r, how)) { /* another phase, routed by done: arm it now */
        r->is_armed = true;
        req_try(t, r);
        return;
    }
    heap_remove(t, &t->deadlines, r);
    req_free(t, r);
}

/* Completes r if it may; otherwise, with its quorum in, holds it. */
static void req_try(struct req_table *t, struct req *r)
{
    if (!r->is_armed || r->ndone < r->quorum)
        return;
    if (r->hold_seq <= t->durable_seq) {
        req_end(t, r, REQ_END_DONE);
        return;
    }
    if (r->at[REQ_BY_HOLD] == REQ_NO_HEAP)
        heap_insert(t, &t->held, r);
}

void req_arm(struct req_table *t, struct req *r)
{
    r->is_armed = true;
    req_try(t, r);
}

void req_sub_done(struct req_table *t, struct req *r)
{
    r->ndone++;
    req_try(t, r);
}

void req_hold(struct req *r, uint64_t seq)
{
    if (seq > r->hold_seq)
        r->hold_seq = seq;
}

void req_rearm(struct req *r, uint32_t nsub)
{
    for (uint32_t i = 0; i < r->nsub; i++) {
        buf_fini(&r->subs[i].body);
        memset(&r->subs[i], 0, sizeof r->subs[i]);
    }
    r->nsub = nsub;
    r->quorum = nsub;
    r->ndone = 0;
    r->is_armed = false;
}

void req_durable(struct req_table *t, uint64_t seq)
{
    if (seq <= t->durable_seq)
        return;
    t->durable_seq = seq;
    /* The top afresh each time: a done callback may end other requests. */
    while (t->held.n > 0 && t->held.v[0]->hold_seq <= seq)
        req_end(t, t->held.v[0], REQ_END_DONE); /* takes it off the heap */
}

void req_expire(struct req_table *t, int64_t now_ms)
{
    while (t->deadlines.n > 0 && t->deadlines.v[0]->deadline_ms <= now_ms) {
        struct req *r = t->deadlines.v[0];
        heap_remove(t, &t->deadlines, r);
        t->expired++;
        heap_remove(t, &t->held, r);
        r->done(t, r, REQ_END_TIMEOUT);
        req_free(t, r);
    }
}

void req_cancel(struct req_table *t, uint64_t id)
{
    struct req *r = req_find(t, id);
    if (!r)
        return;
    heap_remove(t, &t->deadlines, r);
    heap_remove(t, &t->held, r);
    r->done(t, r, REQ_END_DROP);
    req_free(t, r);
}

uint32_t req_count(const struct req_table *t)
{
    return t->deadlines.n;
}
