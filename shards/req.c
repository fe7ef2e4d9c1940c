/* req.c: the table of requests answered later (see req.h).
 * Storage: a slot array of request pointers with a generation per slot; an
 * id is (generation << 32 | slot), so an id outlives its request safely:
 * req_find() compares the generation, which is bumped when a request is
 * freed. Each request is one allocation (its sub-results follow it unless
 * there is only one); freed ones of a single sub-result are kept (up to
 * REQ_POOL_MAX) for the next. Slots are reused LIFO from a free list.
 * Deadlines: nearly every request is due request-timeout from when it was
 * made (a coordinator's own operations: that less a margin), so deadlines
 * come in a few interleaved ordered runs: each goes to the first of
 * REQ_DUE_RINGS FIFO rings of (deadline, id) entries whose newest is not
 * later, O(1) in and out; one that no ring takes in order goes to a min-heap
 * of such entries instead. An entry is not removed when its
 * request ends early (that would cost a search, or a heap's log n cache
 * misses per request): req_expire() drops entries whose id no longer finds
 * a request as they reach the front, and a full queue first sheds its stale
 * entries before it grows. The shard loop calls req_expire() every turn; it
 * looks at the rings' fronts and the heap's top only.
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
/* Freed small requests kept for reuse, up to REQ_POOL_MAX; none under
 * AddressSanitizer, which then still catches a request used after it ended. */
#define REQ_POOL_MAX 1024
#if defined(__SANITIZE_ADDRESS__)
#define REQ_POOLING 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REQ_POOLING 0
#endif
#endif
#ifndef REQ_POOLING
#define REQ_POOLING 1
#endif

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
    if (REQ_POOLING && r->is_small && t->npool < REQ_POOL_MAX) {
        r->owner_ptr = t->pool;
        t->pool = r;
        t->npool++;
    } else {
        mi_free(r);
    }
    if (--t->live == 0) { /* every deadline entry left is stale */
        for (int k = 0; k < REQ_DUE_RINGS; k++)
            t->due[k].head = t->due[k].n = 0;
        t->nlate = 0;
    }
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
    for (int k = 0; k < REQ_DUE_RINGS; k++)
        mi_free(t->due[k].v);
    mi_free(t->due_late);
    mi_free(t->held.v);
    while (t->pool) {
        struct req *next = t->pool->owner_ptr;
        mi_free(t->pool);
        t->pool = next;
    }
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
    struct req **heap = mi_realloc(t->held.v, cap * sizeof *heap);
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

/* ---- deadlines: the in-order rings and the out-of-order heap ---- */

/* The entry's request has ended (its id finds none, or finds one with
 * another deadline: a generation that wrapped around in a slot reused 2^32
 * times while the entry waited). */
static inline bool due_is_stale(const struct req_table *t, const struct req_due *d)
{
    const struct req *r = req_find(t, d->id);
    return !r || r->deadline_ms != d->deadline_ms;
}

static inline struct req_due *fifo_at(const struct req_due_fifo *f, uint32_t i)
{
    return &f->v[(f->head + i) & (f->cap - 1)];
}

/* Room for one more entry in the ring: its stale entries go first (kept
 * in order); it doubles only when over half of it is live. */
static int fifo_make_room(struct req_table *t, struct req_due_fifo *f)
{
    if (f->n < f->cap)
        return 0;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < f->n; i++)
        if (!due_is_stale(t, fifo_at(f, i)))
            *fifo_at(f, kept++) = *fifo_at(f, i);
    f->n = kept;
    if (f->cap && kept <= f->cap / 2)
        return 0;
    uint32_t cap = f->cap ? f->cap * 2 : 64;
    struct req_due *v = mi_malloc(cap * sizeof *v);
    if (!v)
        return kept < f->cap ? 0 : -ENOMEM;
    for (uint32_t i = 0; i < f->n; i++)
        v[i] = *fifo_at(f, i);
    mi_free(f->v);
    f->v = v;
    f->cap = cap;
    f->head = 0;
    return 0;
}

static inline bool due_less(const struct req_due *a, const struct req_due *b)
{
    return a->deadline_ms < b->deadline_ms;
}

static void late_down(struct req_table *t, uint32_t i)
{
    struct req_due *h = t->due_late, d = h[i];
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= t->nlate)
            break;
        if (child + 1 < t->nlate && due_less(&h[child + 1], &h[child]))
            child++;
        if (!due_less(&h[child], &d))
            break;
        t->heap_steps++;
        h[i] = h[child];
        i = child;
    }
    h[i] = d;
}

static void late_push(struct req_table *t, struct req_due d)
{
    struct req_due *h = t->due_late;
    uint32_t i = t->nlate++;
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!due_less(&d, &h[parent]))
            break;
        t->heap_steps++;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = d;
}

static void late_pop(struct req_table *t)
{
    t->due_late[0] = t->due_late[--t->nlate];
    if (t->nlate > 0)
        late_down(t, 0);
}

/* Room for one more out-of-order entry: stale ones are shed (the heap
 * rebuilt from the rest) before the array doubles. */
static int late_make_room(struct req_table *t)
{
    if (t->nlate < t->late_cap)
        return 0;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < t->nlate; i++)
        if (!due_is_stale(t, &t->due_late[i]))
            t->due_late[kept++] = t->due_late[i];
    t->nlate = kept;
    for (uint32_t i = kept / 2; i-- > 0;)
        late_down(t, i);
    if (t->late_cap && kept <= t->late_cap / 2)
        return 0;
    uint32_t cap = t->late_cap ? t->late_cap * 2 : 16;
    struct req_due *v = mi_realloc(t->due_late, cap * sizeof *v);
    if (!v)
        return kept < t->late_cap ? 0 : -ENOMEM;
    t->due_late = v;
    t->late_cap = cap;
    return 0;
}

/* Files r's deadline: in the first ring whose newest deadline is not later
 * (room for it was made by req_new), else in the heap. */
static void due_add(struct req_table *t, const struct req *r)
{
    struct req_due d = {.deadline_ms = r->deadline_ms, .id = r->id};
    for (int k = 0; k < REQ_DUE_RINGS; k++) {
        struct req_due_fifo *f = &t->due[k];
        if (f->n == 0 || fifo_at(f, f->n - 1)->deadline_ms <= d.deadline_ms) {
            *fifo_at(f, f->n) = d;
            f->n++;
            return;
        }
    }
    late_push(t, d);
}

/* ---- the held heap (by hold_seq) ---- */

static void heap_set(struct req_heap *h, uint32_t i, struct req *r)
{
    h->v[i] = r;
    r->held_at = i;
}

static void heap_up(struct req_table *t, struct req_heap *h, uint32_t i)
{
    struct req *r = h->v[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (r->hold_seq >= h->v[parent]->hold_seq)
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
        if (child + 1 < h->n && h->v[child + 1]->hold_seq < h->v[child]->hold_seq)
            child++;
        if (h->v[child]->hold_seq >= r->hold_seq)
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
    uint32_t i = r->held_at;
    if (i == REQ_NO_HEAP)
        return;
    r->held_at = REQ_NO_HEAP;
    struct req *last = h->v[--h->n];
    if (last == r)
        return;
    heap_set(h, i, last);
    heap_up(t, h, i);
    heap_down(t, h, last->held_at);
}

/* ---- life of a request ---- */

struct req *req_new(struct req_table *t, uint32_t nsub, uint32_t quorum, req_done_fn *done,
                    int64_t deadline_ms)
{
    if (t->nfree == 0 && req_grow(t) != 0)
        return NULL;
    for (int k = 0; k < REQ_DUE_RINGS; k++)
        if (fifo_make_room(t, &t->due[k]) != 0)
            return NULL;
    if (late_make_room(t) != 0)
        return NULL;
    size_t extra = nsub > 1 ? nsub * sizeof(struct req_result) : 0;
    struct req *r;
    if (!extra && t->pool) {
        r = t->pool;
        t->pool = r->owner_ptr;
        t->npool--;
        if (t->pool) /* the next one, freed a loop turn ago: cold by now */
            __builtin_prefetch(t->pool, 1);
    } else if (!(r = mi_malloc(sizeof *r + extra))) {
        return NULL;
    }
    uint32_t slot = t->free_slots[--t->nfree];
    memset(r, 0, sizeof *r);
    r->is_small = !extra;
    r->id = (uint64_t)t->gen[slot] << 32 | slot;
    r->done = done;
    r->nsub = nsub;
    r->quorum = quorum;
    r->deadline_ms = deadline_ms;
    r->subs = nsub > 1 ? (struct req_result *)(r + 1) : &r->one;
    if (nsub > 1)
        memset(r->subs, 0, extra);
    t->slots[slot] = r;
    t->live++;
    r->held_at = REQ_NO_HEAP;
    due_add(t, r);
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
    if (r->held_at == REQ_NO_HEAP)
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

/* Drops the front entry of ring f. */
static void fifo_pop(struct req_due_fifo *f)
{
    f->head = (f->head + 1) & (f->cap - 1);
    f->n--;
}

void req_expire(struct req_table *t, int64_t now_ms)
{
    for (;;) {
        /* the soonest front, stale fronts dropped on the way, due or not */
        const struct req_due *soonest = NULL;
        int from = -1; /* ring index, or -1: the heap */
        for (int k = 0; k < REQ_DUE_RINGS; k++) {
            struct req_due_fifo *f = &t->due[k];
            while (f->n > 0 && due_is_stale(t, fifo_at(f, 0)))
                fifo_pop(f);
            if (f->n > 0 && (!soonest || due_less(fifo_at(f, 0), soonest))) {
                soonest = fifo_at(f, 0);
                from = k;
            }
        }
        while (t->nlate > 0 && due_is_stale(t, &t->due_late[0]))
            late_pop(t);
        if (t->nlate > 0 && (!soonest || due_less(&t->due_late[0], soonest))) {
            soonest = &t->due_late[0];
            from = -1;
        }
        if (!soonest || soonest->deadline_ms > now_ms)
            return;
        struct req *r = req_find(t, soonest->id);
        if (from >= 0)
            fifo_pop(&t->due[from]);
        else
            late_pop(t);
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
    heap_remove(t, &t->held, r);
    r->done(t, r, REQ_END_DROP);
    req_free(t, r);
}

uint32_t req_count(const struct req_table *t)
{
    return t->live;
}
