/* dvv.c: dotted version vector sets (see dvv.h for the model and contract).
 * Everything is a single pass over sorted entries, like a merge of two
 * sorted lists:
 *   - sync: for an actor on one side only, its entry and values are kept; on
 *     both sides the counter is the greater one, and a value survives when
 *     its dot is above both sides' "floors" (counter - number of values: the
 *     dots a side has seen and superseded). The values kept are a prefix of
 *     the newest list, since values are always an actor's newest dots.
 *     Anonymous values carry no dot: they go when the other clock's history
 *     strictly contains theirs, else both sides' are united (deduplicated,
 *     in canonical order).
 *   - update is sync of the client's context (its values left out) with the
 *     server's clock plus one event: the coordinator's entry gains the next
 *     counter and the new value at the head of its list.
 * The codec is LEB128 varints (minimal only) and little-endian u64 actors.
 * Meta: varint h = nentries << 2 | has_anon << 1 | has_flags; varint nanon
 * when has_anon; per entry actor (8 bytes), varint counter, varint nvalues;
 * per value varint (ts_ms << 1 | tombstone), then unless a tombstone varint
 * len and, when has_flags, varint mc_flags. has_flags is set exactly when
 * some value has client flags (so a meta without any, written before flags
 * were kept, is still the canonical encoding of its clock). Body: the values' bytes in
 * the same order. Context: varint h = nentries << 1 | 0, then per entry actor
 * and varint counter; no entries is the empty string. Decoding accepts only
 * what encoding produces (sorted actors, canonical anonymous order, minimal
 * varints, no trailing bytes), so decode(encode(c)) == c and
 * encode(decode(b)) == b, and replicas' equal clocks have equal bytes. */
#include "dvv.h"

#include <errno.h>
#include <mimalloc.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

_Static_assert(DVV_META_MAX <= UINT16_MAX, "a clock's meta must fit a log record's meta_len");

uint64_t dvv_actor(const void *node_id, size_t len, uint64_t epoch)
{
    return XXH3_64bits_withSeed(node_id, len, epoch);
}

void dvv_init(struct dvv_clock *c, struct dvv_entry *entries, uint32_t cap_entries,
              struct dvv_value *values, uint32_t cap_values)
{
    c->entries = entries;
    c->values = values;
    c->cap_entries = cap_entries;
    c->cap_values = cap_values;
    dvv_clear(c);
}

struct dvv_clock *dvv_create(uint32_t cap_entries, uint32_t cap_values)
{
    size_t size = sizeof(struct dvv_clock) + (size_t)cap_entries * sizeof(struct dvv_entry) +
                  (size_t)cap_values * sizeof(struct dvv_value);
    struct dvv_clock *c = mi_malloc(size);
    if (!c)
        return NULL;
    struct dvv_entry *entries = (struct dvv_entry *)(c + 1);
    dvv_init(c, entries, cap_entries, (struct dvv_value *)(entries + cap_entries), cap_values);
    return c;
}

void dvv_destroy(struct dvv_clock *c)
{
    mi_free(c);
}

static bool value_ok(const struct dvv_value *v)
{
    if (v->ts_ms < 0 || v->ts_ms >= DVV_MAX_TS_MS || (v->flags & ~(uint32_t)DVV_TOMBSTONE))
        return false;
    return !(v->flags & DVV_TOMBSTONE) || (v->len == 0 && v->mc_flags == 0);
}

/* The canonical order of anonymous values: newest first, then flags,
 * client flags, length and bytes. <0, 0 (the same value) or >0. */
static int anon_cmp(const struct dvv_value *x, const struct dvv_value *y)
{
    if (x->ts_ms != y->ts_ms)
        return x->ts_ms > y->ts_ms ? -1 : 1;
    if (x->flags != y->flags)
        return x->flags < y->flags ? -1 : 1;
    if (x->mc_flags != y->mc_flags)
        return x->mc_flags < y->mc_flags ? -1 : 1;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->len ? memcmp(x->data, y->data, x->len) : 0;
}

/* out's entries = c's entries with no values (the version vector). */
static int copy_history(struct dvv_clock *out, const struct dvv_clock *c)
{
    dvv_clear(out);
    if (c->nentries > out->cap_entries)
        return -ENOSPC;
    for (uint32_t i = 0; i < c->nentries; i++) {
        out->entries[i] = c->entries[i];
        out->entries[i].nvalues = 0;
    }
    out->nentries = c->nentries;
    return 0;
}

static int push_value(struct dvv_clock *out, const struct dvv_value *v)
{
    if (out->nvalues >= out->cap_values)
        return -ENOSPC;
    out->values[out->nvalues++] = *v;
    return 0;
}

int dvv_join(struct dvv_clock *out, const struct dvv_clock *c)
{
    return copy_history(out, c);
}

int dvv_new_with_context(struct dvv_clock *out, const struct dvv_clock *ctx,
                         const struct dvv_value *v)
{
    if (!value_ok(v))
        return -EINVAL;
    int rc = ctx ? copy_history(out, ctx) : (dvv_clear(out), 0);
    if (rc == 0)
        rc = push_value(out, v);
    if (rc != 0) {
        dvv_clear(out);
        return rc;
    }
    out->nanon = 1;
    return 0;
}

int dvv_new(struct dvv_clock *out, const struct dvv_value *v)
{
    return dvv_new_with_context(out, NULL, v);
}

static const struct dvv_clock empty_clock;

/* A read position in one input of a merge: the next entry and where its
 * values start. */
struct cursor {
    const struct dvv_clock *c;
    uint32_t e, v;
};

/* The new value of an update and the actor it is written at. */
struct event {
    const struct dvv_value *value;
    uint64_t actor;
    bool done;
};

/* Appends an entry with the first `keep` values of vals (after the event's
 * value when the entry is the event's actor). */
static int emit(struct dvv_clock *out, uint64_t actor, uint64_t counter,
                const struct dvv_value *vals, uint32_t keep, struct event *ev)
{
    bool is_event = ev && !ev->done && ev->actor == actor;
    if (out->nentries >= out->cap_entries)
        return -ENOSPC;
    if (out->cap_values - out->nvalues < (uint64_t)keep + is_event)
        return -ENOSPC;
    if (is_event) {
        if (counter >= DVV_MAX_COUNTER)
            return -EOVERFLOW;
        counter++;
        out->values[out->nvalues++] = *ev->value;
        ev->done = true;
    }
    if (keep)
        memcpy(out->values + out->nvalues, vals, (size_t)keep * sizeof *vals);
    out->nvalues += keep;
    out->entries[out->nentries++] =
        (struct dvv_entry){.actor = actor, .counter = counter, .nvalues = keep + is_event};
    return 0;
}

/* Emits the event as a new entry when its actor sorts before `next_actor`
 * (UINT64_MAX with `last`: at the end) and it is not written yet. */
static int emit_event_before(struct dvv_clock *out, struct event *ev, uint64_t next_actor,
                             bool last)
{
    if (!ev || ev->done || (!last && ev->actor >= next_actor))
        return 0;
    return emit(out, ev->actor, 0, NULL, 0, ev);
}

/* One entry from one side only. */
static int take_one(struct dvv_clock *out, struct cursor *s, struct event *ev)
{
    const struct dvv_entry *e = &s->c->entries[s->e++];
    const struct dvv_value *vals = e->nvalues ? s->c->values + s->v : NULL;
    int rc = emit(out, e->actor, e->counter, vals, e->nvalues, ev);
    s->v += e->nvalues;
    return rc;
}

/* The same actor on both sides: see the design comment. */
static int take_both(struct dvv_clock *out, struct cursor *a, struct cursor *b, struct event *ev)
{
    const struct dvv_entry *x = &a->c->entries[a->e++], *y = &b->c->entries[b->e++];
    uint64_t floor_x = x->counter - x->nvalues, floor_y = y->counter - y->nvalues;
    uint64_t floor = floor_x > floor_y ? floor_x : floor_y;
    bool from_x = x->counter >= y->counter;
    uint64_t counter = from_x ? x->counter : y->counter;
    uint32_t keep = (uint32_t)(counter - floor);
    const struct dvv_value *vals = !keep    ? NULL
                                   : from_x ? a->c->values + a->v
                                            : b->c->values + b->v;
    a->v += x->nvalues;
    b->v += y->nvalues;
    return emit(out, x->actor, counter, vals, keep, ev);
}

/* Which side's history has something the other lacks. */
struct order {
    bool a_ahead, b_ahead;
};

static int merge_entries(struct dvv_clock *out, struct cursor *a, struct cursor *b,
                         struct event *ev, struct order *ord)
{
    int rc = 0;
    while (rc == 0 && (a->e < a->c->nentries || b->e < b->c->nentries)) {
        const struct dvv_entry *x = a->e < a->c->nentries ? &a->c->entries[a->e] : NULL;
        const struct dvv_entry *y = b->e < b->c->nentries ? &b->c->entries[b->e] : NULL;
        uint64_t next = !y || (x && x->actor < y->actor) ? x->actor : y->actor;
        rc = emit_event_before(out, ev, next, false);
        if (rc != 0)
            break;
        if (x && (!y || x->actor < y->actor)) {
            ord->a_ahead = true;
            rc = take_one(out, a, ev);
        } else if (!x || y->actor < x->actor) {
            ord->b_ahead = true;
            rc = take_one(out, b, ev);
        } else {
            ord->a_ahead |= x->counter > y->counter;
            ord->b_ahead |= y->counter > x->counter;
            rc = take_both(out, a, b, ev);
        }
    }
    return rc ? rc : emit_event_before(out, ev, UINT64_MAX, true);
}

/* Both sides' anonymous values, deduplicated, in canonical order. */
static int unite_anon(struct dvv_clock *out, const struct dvv_clock *a, const struct dvv_clock *b)
{
    uint32_t i = a->nvalues - a->nanon, j = b->nvalues - b->nanon;
    uint32_t start = out->nvalues;
    int rc = 0;
    while (rc == 0 && (i < a->nvalues || j < b->nvalues)) {
        int cmp = i == a->nvalues   ? 1
                  : j == b->nvalues ? -1
                                    : anon_cmp(&a->values[i], &b->values[j]);
        rc = push_value(out, cmp <= 0 ? &a->values[i] : &b->values[j]);
        i += cmp <= 0;
        j += cmp >= 0;
    }
    out->nanon = out->nvalues - start;
    return rc;
}

static int merge(struct dvv_clock *out, const struct dvv_clock *a, const struct dvv_clock *b,
                 struct event *ev)
{
    struct cursor ca = {.c = a}, cb = {.c = b};
    struct order ord = {0};
    dvv_clear(out);
    int rc = merge_entries(out, &ca, &cb, ev, &ord);
    if (rc == 0) {
        /* a < b: b's history contains a's, so a's anonymous values go. */
        bool a_less = ord.b_ahead && !ord.a_ahead, b_less = ord.a_ahead && !ord.b_ahead;
        rc = unite_anon(out, a_less ? &empty_clock : a, b_less ? &empty_clock : b);
    }
    if (rc != 0)
        dvv_clear(out);
    return rc;
}

int dvv_sync(struct dvv_clock *out, const struct dvv_clock *a, const struct dvv_clock *b)
{
    return merge(out, a, b, NULL);
}

int dvv_update(struct dvv_clock *out, const struct dvv_clock *client,
               const struct dvv_clock *server, uint64_t actor)
{
    if (client->nanon != 1 || client->nvalues != 1)
        return -EINVAL;
    /* The client's history without its value, then the value as the event. */
    struct dvv_clock ctx = *client;
    ctx.nvalues = ctx.nanon = 0;
    struct event ev = {.value = &client->values[0], .actor = actor};
    return merge(out, &ctx, server ? server : &empty_clock, &ev);
}

bool dvv_less(const struct dvv_clock *a, const struct dvv_clock *b)
{
    bool strict = false;
    uint32_t i = 0, j = 0;
    for (; i < a->nentries; i++) {
        while (j < b->nentries && b->entries[j].actor < a->entries[i].actor) {
            j++;
            strict = true;
        }
        if (j == b->nentries || b->entries[j].actor != a->entries[i].actor ||
            b->entries[j].counter < a->entries[i].counter)
            return false;
        strict |= b->entries[j].counter > a->entries[i].counter;
        j++;
    }
    return strict || j < b->nentries;
}

bool dvv_value_dot(const struct dvv_clock *c, uint32_t i, uint64_t *actor, uint64_t *counter)
{
    for (uint32_t e = 0, first = 0; e < c->nentries; first += c->entries[e++].nvalues) {
        if (i < first + c->entries[e].nvalues) {
            *actor = c->entries[e].actor;
            *counter = c->entries[e].counter - (i - first);
            return true;
        }
    }
    return false;
}

int dvv_pick(const struct dvv_clock *c)
{
    if (c->nvalues == 0)
        return -ENOENT;
    int best = -1;
    uint32_t best_entry = 0, i = 0;
    for (uint32_t e = 0; e < c->nentries; e++) {
        for (uint32_t k = 0; k < c->entries[e].nvalues; k++, i++) {
            /* On a tie a later entry has the greater actor, and within an
             * entry the value seen first has the greater counter. */
            const struct dvv_value *v = &c->values[i];
            if (best < 0 || v->ts_ms > c->values[best].ts_ms ||
                (v->ts_ms == c->values[best].ts_ms && e != best_entry)) {
                best = (int)i;
                best_entry = e;
            }
        }
    }
    /* Anonymous values are newest first; they win only on a newer timestamp. */
    if (c->nanon && (best < 0 || c->values[i].ts_ms > c->values[best].ts_ms))
        best = (int)i;
    return best;
}

/* Encoding. */

/* Writers into the caller's bytes (room: 10 for a varint, 8 for a u64). */
static size_t put_varint_at(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static size_t put_u64_at(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return 8;
}

static void put_varint(struct buf *out, uint64_t v)
{
    uint8_t tmp[10];
    buf_append(out, tmp, put_varint_at(tmp, v));
}

static void put_u64(struct buf *out, uint64_t v)
{
    uint8_t tmp[8];
    buf_append(out, tmp, put_u64_at(tmp, v));
}

static int finish(struct buf *out, size_t start)
{
    if (!out->failed)
        return 0;
    out->len = start;
    return -ENOMEM;
}

int dvv_encode_meta(const struct dvv_clock *c, struct buf *out)
{
    if (c->nentries > DVV_MAX_ENTRIES || c->nvalues > DVV_MAX_VALUES)
        return -E2BIG;
    bool has_flags = false;
    for (uint32_t i = 0; i < c->nvalues; i++) {
        if (!value_ok(&c->values[i]))
            return -EINVAL;
        has_flags |= c->values[i].mc_flags != 0;
    }
    size_t start = out->len;
    put_varint(out, (uint64_t)c->nentries << 2 | (c->nanon ? 2 : 0) | has_flags);
    if (c->nanon)
        put_varint(out, c->nanon);
    for (uint32_t i = 0; i < c->nentries; i++) {
        put_u64(out, c->entries[i].actor);
        put_varint(out, c->entries[i].counter);
        put_varint(out, c->entries[i].nvalues);
    }
    for (uint32_t i = 0; i < c->nvalues; i++) {
        const struct dvv_value *v = &c->values[i];
        bool is_tomb = v->flags & DVV_TOMBSTONE;
        put_varint(out, (uint64_t)v->ts_ms << 1 | is_tomb);
        if (!is_tomb)
            put_varint(out, v->len);
        if (!is_tomb && has_flags)
            put_varint(out, v->mc_flags);
    }
    return finish(out, start);
}

int dvv_encode_body(const struct dvv_clock *c, struct buf *out)
{
    size_t start = out->len;
    for (uint32_t i = 0; i < c->nvalues; i++)
        buf_append(out, c->values[i].data, c->values[i].len);
    return finish(out, start);
}

int dvv_context_encode(const struct dvv_clock *c, struct buf *out)
{
    if (c->nentries > DVV_MAX_ENTRIES)
        return -E2BIG;
    if (c->nentries == 0)
        return 0;
    size_t start = out->len;
    put_varint(out, (uint64_t)c->nentries << 1);
    for (uint32_t i = 0; i < c->nentries; i++) {
        put_u64(out, c->entries[i].actor);
        put_varint(out, c->entries[i].counter);
    }
    return finish(out, start);
}

/* ---- a clock of one dotted value (dvv.h: struct dvv_single) ---- */

bool dvv_single_of(const struct dvv_clock *c, struct dvv_single *s)
{
    if (c->nentries != 1 || c->nvalues != 1 || c->nanon != 0 || c->entries[0].nvalues != 1)
        return false;
    const struct dvv_entry *e = &c->entries[0];
    const struct dvv_value *v = &c->values[0];
    if (!value_ok(v) || v->mc_flags != 0 || e->counter == 0 || e->counter > DVV_MAX_COUNTER)
        return false;
    s->actor = e->actor;
    s->counter = e->counter;
    s->ts_ms = v->ts_ms;
    s->tombstone = (v->flags & DVV_TOMBSTONE) != 0;
    s->len = s->tombstone ? 0 : v->len;
    return true;
}

/* The same bytes as dvv_encode_meta's for a clock of one entry holding one
 * value, no anonymous ones and no client flags. */
size_t dvv_single_meta(const struct dvv_single *s, uint8_t out[DVV_SINGLE_META_MAX])
{
    size_t n = 0;
    out[n++] = 1u << 2; /* header: one entry, no anonymous values, no flags */
    n += put_u64_at(out + n, s->actor);
    n += put_varint_at(out + n, s->counter);
    out[n++] = 1; /* the entry's value count */
    n += put_varint_at(out + n, (uint64_t)s->ts_ms << 1 | s->tombstone);
    if (!s->tombstone)
        n += put_varint_at(out + n, s->len);
    return n;
}

int dvv_from_single(const struct dvv_single *s, const char *data, struct dvv_clock *out)
{
    if (out->cap_entries < 1 || out->cap_values < 1)
        return -ENOSPC;
    out->entries[0] = (struct dvv_entry){.actor = s->actor, .counter = s->counter, .nvalues = 1};
    out->values[0] = (struct dvv_value){.data = s->tombstone ? "" : data,
                                        .len = s->tombstone ? 0 : s->len,
                                        .flags = s->tombstone ? DVV_TOMBSTONE : 0,
                                        .ts_ms = s->ts_ms};
    out->nentries = out->nvalues = 1;
    out->nanon = 0;
    return 0;
}

size_t dvv_single_pack(const struct dvv_single *s, uint8_t out[DVV_SINGLE_PACK_MAX])
{
    size_t n = put_u64_at(out, s->actor);
    n += put_varint_at(out + n, s->counter);
    n += put_varint_at(out + n, (uint64_t)s->ts_ms << 1 | s->tombstone);
    return n;
}

static size_t get_varint_trusted(const uint8_t *p, uint64_t *v)
{
    size_t n = 0;
    *v = 0;
    for (unsigned shift = 0;; shift += 7) {
        uint8_t b = p[n++];
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80) || shift >= 63)
            return n;
    }
}

size_t dvv_single_unpack(const uint8_t *p, struct dvv_single *s)
{
    s->actor = 0;
    for (int i = 0; i < 8; i++)
        s->actor |= (uint64_t)p[i] << (8 * i);
    size_t n = 8;
    uint64_t ts;
    n += get_varint_trusted(p + n, &s->counter);
    n += get_varint_trusted(p + n, &ts);
    s->ts_ms = (int64_t)(ts >> 1);
    s->tombstone = ts & 1;
    return n;
}

/* Decoding: a reader that fails (and stays failed) on anything short,
 * overlong or out of bounds. */
struct reader {
    const uint8_t *p, *end;
    bool bad;
};

static uint64_t get_varint(struct reader *r, uint64_t max)
{
    uint64_t v = 0;
    for (unsigned shift = 0; !r->bad && r->p < r->end && shift < 64; shift += 7) {
        uint8_t b = *r->p++;
        /* The tenth byte holds bit 63 only; a zero last byte is overlong. */
        if ((shift == 63 && b > 1) || (shift > 0 && b == 0))
            break;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v <= max ? v : (r->bad = true, 0);
    }
    r->bad = true;
    return 0;
}

static uint64_t get_u64(struct reader *r)
{
    if (r->bad || r->end - r->p < 8) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += 8;
    return v;
}

/* Entry i: actor above the previous one's, counter in range. */
static void get_entry(struct reader *r, struct dvv_clock *out, uint32_t i)
{
    struct dvv_entry *e = &out->entries[i];
    e->actor = get_u64(r);
    e->counter = get_varint(r, DVV_MAX_COUNTER);
    e->nvalues = 0;
    if (e->counter == 0 || (i > 0 && e->actor <= out->entries[i - 1].actor))
        r->bad = true;
}

/* The header's entry count: bounds (-EINVAL) before room (-ENOSPC). */
static int check_count(uint64_t n, uint64_t max, uint32_t cap)
{
    return n > max ? -EINVAL : n > cap ? -ENOSPC : 0;
}

static int decode_entries(struct reader *r, struct dvv_clock *out, bool with_values)
{
    uint64_t h = get_varint(r, UINT32_MAX);
    uint64_t nanon = with_values && (h & 2) ? get_varint(r, DVV_MAX_VALUES) : 0;
    uint64_t n = h >> (with_values ? 2 : 1);
    /* A meta's bit 0 is has_flags (decode_values checks it); a context's is 0. */
    if (r->bad || (!with_values && (h & 1)) || (with_values && (h & 2) && nanon == 0) ||
        (!with_values && n == 0))
        return -EINVAL;
    int rc = check_count(n, DVV_MAX_ENTRIES, out->cap_entries);
    uint64_t nvalues = nanon;
    for (uint32_t i = 0; rc == 0 && i < n && !r->bad; i++) {
        get_entry(r, out, i);
        uint64_t max =
            out->entries[i].counter < DVV_MAX_VALUES ? out->entries[i].counter : DVV_MAX_VALUES;
        if (with_values)
            out->entries[i].nvalues = (uint32_t)get_varint(r, max);
        nvalues += out->entries[i].nvalues;
        if (nvalues > DVV_MAX_VALUES)
            r->bad = true;
    }
    if (rc != 0)
        return rc;
    if (r->bad)
        return -EINVAL;
    out->nentries = (uint32_t)n;
    out->nanon = (uint32_t)nanon;
    out->nvalues = (uint32_t)nvalues;
    return out->nvalues > out->cap_values ? -ENOSPC : 0;
}

/* The values' stamps, lengths and client flags (has_flags: the meta has
 * them), their bytes in body. */
static int decode_values(struct reader *r, bool has_flags, const char *body, size_t body_len,
                         struct dvv_clock *out)
{
    size_t off = 0;
    bool any_flags = false;
    for (uint32_t i = 0; i < out->nvalues && !r->bad; i++) {
        struct dvv_value *v = &out->values[i];
        uint64_t stamp = get_varint(r, ((uint64_t)DVV_MAX_TS_MS << 1) - 1);
        v->ts_ms = (int64_t)(stamp >> 1);
        v->flags = stamp & 1 ? DVV_TOMBSTONE : 0;
        v->len = v->flags ? 0 : (uint32_t)get_varint(r, UINT32_MAX);
        v->mc_flags = !v->flags && has_flags ? (uint32_t)get_varint(r, UINT32_MAX) : 0;
        any_flags |= v->mc_flags != 0;
        if (v->len > body_len - off) {
            r->bad = true;
            break;
        }
        v->data = body_len ? body + off : "";
        off += v->len;
        uint32_t first_anon = out->nvalues - out->nanon;
        if (i > first_anon && anon_cmp(&out->values[i - 1], v) >= 0)
            r->bad = true;
    }
    if (has_flags && !any_flags)
        r->bad = true; /* not canonical: the bit is set only when some value has flags */
    return r->bad || r->p != r->end || off != body_len ? -EINVAL : 0;
}

int dvv_decode(const void *meta, size_t meta_len, const void *body, size_t body_len,
               struct dvv_clock *out)
{
    dvv_clear(out);
    if (meta_len == 0)
        return -EINVAL;
    struct reader r = {.p = meta, .end = (const uint8_t *)meta + meta_len};
    bool has_flags = (r.p[0] & 1) != 0; /* h's low bit: the first byte's */
    int rc = decode_entries(&r, out, true);
    if (rc == 0)
        rc = decode_values(&r, has_flags, body, body_len, out);
    if (rc != 0)
        dvv_clear(out);
    return rc;
}

int dvv_context_decode(const void *p, size_t len, struct dvv_clock *out)
{
    dvv_clear(out);
    if (len == 0)
        return 0;
    struct reader r = {.p = p, .end = (const uint8_t *)p + len};
    int rc = decode_entries(&r, out, false);
    if (rc == 0 && r.p != r.end)
        rc = -EINVAL;
    if (rc != 0)
        dvv_clear(out);
    return rc;
}
