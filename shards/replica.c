/* replica.c: a key's replicated state on the shard that holds it (see
 * replica.h), and what every versioned write shares: this node's actor, the
 * implicit clock of a plain entry, the sibling bounds (cmd_ring.c's RING.*
 * use them too). Runs on the owning shard's thread.
 * Clocks: an operation works in three scratch clocks (given or before,
 * stored, result), first small ones on the stack, which hold every key with
 * a few actors and siblings; a clock that does not fit (-ENOSPC from dvv.h)
 * makes the operation start again, once, in clocks of the codec bounds
 * (mi_malloc'd for the call). Nothing is stored before the clocks are
 * computed, so starting again is safe.
 * Actors (replica_write_actor, KV-679 per node and per key): the high 40
 * bits name this node's incarnation (node id, data epoch), the low 24 the
 * key's incarnation here: drawn when the node holds nothing for the key,
 * then kept (of several in the clock, the one with the newest value), so a
 * key stays one clock entry. Its counter is then the highest this node
 * issued (each dot is stored here first; a sync never loses history),
 * unless a lost key came back by a read repair from a replica that missed
 * this node's newest dots of it, which this cannot see.
 * Equality: encodings are canonical (dvv.h), so two states hold the same
 * versions exactly when their metas are equal bytes (a dot names one write,
 * so equal metas mean equal bodies).
 * replica_apply keeps the expiry of the newer state: the given one when it
 * supersedes the stored one, the stored one when it supersedes the given
 * one, and otherwise (equal versions, or siblings from both) the later of
 * the two, no expiry counting as the latest, so that every replica ends with
 * the same expiry whatever order the states arrive in.
 * replica_versionize compares the key's state after the command with
 * `before`: unchanged (a read, SET NX on an existing key) is nothing to
 * replicate; a live entry becomes a new dot of this node's actor whose
 * context is `before` (an expiry change too: the new dot holds the value
 * plain commands see, so siblings are superseded as SET would, and replicas
 * take the new expiry); a removed key becomes a tombstone (no expiry) with
 * that context, unless plain commands could not see it before (absent, or a
 * tombstone as its pick): then `before` is put back as it was.
 * Reaping: replica_reap walks the table with a cursor kept per shard thread
 * (a position in hash space, table_scan: each key is met once per pass,
 * across resizes), looking at a bounded number of entries per call, and
 * deletes versioned entries all of whose values are tombstones whose newest
 * timestamp is older than tombstone-grace; store_delete() journals a delete
 * record, so recovery replays the tombstone and then its removal. A key
 * with a live sibling next to a tombstone is kept whole. While the log
 * refuses writes (MISCONF) or pauses writers, reaping waits too. In a
 * cluster such a tombstone is only a candidate: replica_reap_offer hands it
 * to the coordinator, which deletes it once every replica confirmed
 * (coord.c); both share one pass (reap_pass). */
#include "replica.h"

#include <errno.h>
#include <mimalloc.h>
#include <string.h>

#include "admin.h"
#include "dvv.h"
#include "keyhash.h"
#include "log.h"
#include "node.h"
#include "store.h"

/* Odd, so that distinct cas give distinct actors (replica_entry_clock). */
#define REPLICA_PLAIN_EPOCH_MIX UINT64_C(0x9e3779b97f4a7c15)
/* The low bits of a write actor name one incarnation of one key at this
 * node (replica_write_actor); the rest, the node's incarnation. */
#define REPLICA_KEY_BITS 24
#define REPLICA_KEY_MASK ((UINT64_C(1) << REPLICA_KEY_BITS) - 1)
#define REPLICA_WARN_INTERVAL_MS 1000
#define REPLICA_SMALL 8         /* entries and values of a stack clock */
#define REPLICA_REAP_VISIT 1024 /* entries looked at per replica_reap() call */
#define REPLICA_REAP_BATCH 64   /* tombstones deleted per scan step */

/* ---- scratch clocks ---- */

enum { K_IN, K_STORED, K_OUT, K_COUNT };

struct replica_clocks {
    struct dvv_clock *k[K_COUNT];
    struct dvv_clock *big[K_COUNT];
    struct dvv_clock small[K_COUNT];
    struct dvv_entry entries[K_COUNT][REPLICA_SMALL];
    struct dvv_value values[K_COUNT][REPLICA_SMALL];
};

static void clocks_init(struct replica_clocks *w)
{
    for (int i = 0; i < K_COUNT; i++) {
        dvv_init(&w->small[i], w->entries[i], REPLICA_SMALL, w->values[i], REPLICA_SMALL);
        w->k[i] = &w->small[i];
        w->big[i] = NULL;
    }
}

static void clocks_fini(struct replica_clocks *w)
{
    for (int i = 0; i < K_COUNT; i++)
        dvv_destroy(w->big[i]);
}

/* Moves to clocks of the codec bounds. 0 or -ENOMEM; -ENOSPC when they
 * are already those (the clock is past the bounds). */
static int clocks_grow(struct replica_clocks *w)
{
    if (w->big[0])
        return -ENOSPC;
    for (int i = 0; i < K_COUNT; i++) {
        w->big[i] = dvv_create(DVV_MAX_ENTRIES, DVV_MAX_VALUES);
        if (!w->big[i])
            return -ENOMEM;
        w->k[i] = w->big[i];
    }
    return 0;
}

/* ---- shared with cmd_ring.c ---- */

uint64_t replica_actor_of(const struct node *n, uint64_t epoch)
{
    const char *id = admin_node_id(n->admin);
    return dvv_actor(id, strlen(id), epoch);
}

/* splitmix64's finaliser: spreads a key incarnation's inputs over 64 bits. */
static uint64_t mix64(uint64_t x)
{
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

uint64_t replica_write_actor(const struct store *s, const struct node *n, uint64_t hash,
                             const struct dvv_clock *held)
{
    uint64_t node = replica_actor_of(n, n->layout.data_epoch) & ~REPLICA_KEY_MASK;
    uint64_t mine = 0;
    int64_t mine_ts = -1; /* its newest value's timestamp; -1: it has none */
    bool found = false;
    for (uint32_t i = 0, v = 0; held && i < held->nentries; v += held->entries[i++].nvalues) {
        const struct dvv_entry *e = &held->entries[i];
        if ((e->actor & ~REPLICA_KEY_MASK) != node)
            continue;
        int64_t ts = e->nvalues ? held->values[v].ts_ms : -1;
        if (!found || ts > mine_ts || (ts == mine_ts && e->actor > mine)) {
            mine = e->actor;
            mine_ts = ts;
        }
        found = true;
    }
    if (found)
        return mine;
    uint64_t key = mix64(hash ^ mix64(s->next_cas ^ ((uint64_t)s->now_ms << 24)));
    return node | (key & REPLICA_KEY_MASK);
}

/* The implicit clock of plain entry e whose value bytes are `data`. */
static int plain_clock(const struct node *n, const struct table_entry *e, const char *data,
                       struct dvv_clock *out)
{
    struct dvv_entry one_entry;
    struct dvv_value one_value;
    struct dvv_clock plain;
    dvv_init(&plain, &one_entry, 1, &one_value, 1);
    struct dvv_value v = {.data = data, .len = e->val_len, .mc_flags = e->mc_flags};
    int rc = dvv_new(&plain, &v);
    if (rc != 0)
        return rc;
    uint64_t epoch = n->layout.data_epoch + e->cas * REPLICA_PLAIN_EPOCH_MIX;
    return dvv_update(out, &plain, NULL, replica_actor_of(n, epoch));
}

int replica_entry_clock(const struct node *n, const struct table_entry *e, struct dvv_clock *out)
{
    if (table_entry_is_cold(e))
        return -EAGAIN; /* its value (a versioned entry's body) is on disk only */
    if (e->meta & TABLE_ENTRY_VERSIONED) {
        struct dvv_single d;
        if (store_entry_single(e, &d)) /* the usual key: no meta to make and decode */
            return dvv_from_single(&d, table_entry_key(e) + e->key_len, out);
        struct store_version v;
        store_entry_version(e, &v);
        return dvv_decode(v.meta, v.meta_len, v.body, v.body_len, out);
    }
    return plain_clock(n, e, table_entry_key(e) + e->key_len, out);
}

int replica_entry_meta(const struct node *n, const struct table_entry *e, struct buf *out)
{
    if (e->meta & TABLE_ENTRY_VERSIONED) {
        struct store_version v;
        store_entry_version(e, &v);
        buf_append(out, v.meta, v.meta_len);
        return out->failed ? -ENOMEM : 0;
    }
    struct dvv_entry one_entry;
    struct dvv_value one_value;
    struct dvv_clock c;
    dvv_init(&c, &one_entry, 1, &one_value, 1);
    /* the meta holds the value's length, never its bytes: a cold entry's
     * (on disk only) clock is given the key's as stand-ins, never read */
    int rc = plain_clock(n, e, table_entry_key(e), &c);
    return rc != 0 ? rc : dvv_encode_meta(&c, out);
}

int replica_check_siblings(struct store *s, const struct node *n, const void *key, uint32_t klen,
                           uint32_t count)
{
    static __thread int64_t last_warn_ms; /* this shard's last such log line */
    const struct cfg *cfg = n->cfg;
    if (count > (uint64_t)cfg->max_siblings)
        return -E2BIG;
    if (count <= (uint64_t)cfg->warn_siblings)
        return 0;
    store_note_sibling_warning(s);
    if (s->now_ms - last_warn_ms < REPLICA_WARN_INTERVAL_MS)
        return 0;
    last_warn_ms = s->now_ms;
    log_warn("key '%.*s' now has %u siblings (warn-siblings %lld): its writers do not pass "
             "back the contexts they read; a RING.PUT with the joined context resolves them",
             (int)(klen > 64 ? 64 : klen), (const char *)key, count, (long long)cfg->warn_siblings);
    return 0;
}

/* ---- states ---- */

void replica_state_init(struct replica_state *st)
{
    buf_init(&st->meta);
    buf_init(&st->body);
    st->expire_at_ms = 0;
}

void replica_state_fini(struct replica_state *st)
{
    buf_fini(&st->meta);
    buf_fini(&st->body);
}

void replica_state_clear(struct replica_state *st)
{
    buf_clear(&st->meta);
    buf_clear(&st->body);
    st->expire_at_ms = 0;
}

uint64_t replica_state_hash(const void *meta, size_t meta_len, uint64_t expire_at_ms)
{
    return keyhash(meta, meta_len) ^ mix64(expire_at_ms + REPLICA_PLAIN_EPOCH_MIX);
}

bool replica_same(const struct replica_state *a, const void *meta, size_t meta_len)
{
    return a->meta.len == meta_len && (meta_len == 0 || memcmp(a->meta.data, meta, meta_len) == 0);
}

int replica_covers(const void *meta, size_t meta_len, const void *body, size_t body_len,
                   const struct replica_state *mine)
{
    if (replica_same(mine, meta, meta_len))
        return 1;
    struct replica_clocks w;
    clocks_init(&w);
    int rc;
    do {
        rc = dvv_decode(meta, meta_len, body, body_len, w.k[K_IN]);
        if (rc == 0)
            rc = dvv_decode(mine->meta.data, mine->meta.len, mine->body.data, mine->body.len,
                            w.k[K_STORED]);
        if (rc == 0)
            rc = dvv_sync(w.k[K_OUT], w.k[K_IN], w.k[K_STORED]);
    } while (rc == -ENOSPC && clocks_grow(&w) == 0);
    struct buf merged;
    buf_init(&merged);
    if (rc == 0)
        rc = dvv_encode_meta(w.k[K_OUT], &merged);
    int covers = rc == 0 && !merged.failed && merged.len == meta_len &&
                 (meta_len == 0 || memcmp(merged.data, meta, meta_len) == 0);
    buf_fini(&merged);
    clocks_fini(&w);
    return rc < 0 ? rc : covers;
}

/* The key's entry unless it has expired (left for the store to remove). */
static struct table_entry *replica_find(struct store *s, const void *key, uint32_t klen,
                                        uint64_t hash)
{
    struct table_entry *e = table_find(s->table, key, klen, hash);
    return e && !store_is_expired(s, e) ? e : NULL;
}

static int state_done(struct replica_state *out)
{
    return out->meta.failed || out->body.failed ? -ENOMEM : 0;
}

/* out = clock c with expiry expire_ms. */
static int state_of_clock(const struct dvv_clock *c, int64_t expire_ms, struct replica_state *out)
{
    replica_state_clear(out);
    int rc = dvv_encode_meta(c, &out->meta);
    if (rc == 0)
        rc = dvv_encode_body(c, &out->body);
    out->expire_at_ms = (uint64_t)expire_ms;
    return rc != 0 ? rc : state_done(out);
}

/* out = the state of stored entry e; w's K_STORED is used for a plain one. */
static int state_of_entry(const struct node *n, const struct table_entry *e,
                          struct replica_clocks *w, struct replica_state *out)
{
    if (!(e->meta & TABLE_ENTRY_VERSIONED) || table_entry_is_cold(e)) {
        int rc = replica_entry_clock(n, e, w->k[K_STORED]);
        return rc != 0 ? rc : state_of_clock(w->k[K_STORED], e->expire_ms, out);
    }
    struct store_version v;
    store_entry_version(e, &v);
    replica_state_clear(out);
    buf_append(&out->meta, v.meta, v.meta_len);
    buf_append(&out->body, v.body, v.body_len);
    out->expire_at_ms = (uint64_t)e->expire_ms;
    return state_done(out);
}

/* The key's versioned entry (in memory) when it holds exactly this state's
 * versions (equal meta: the encoding is canonical), else NULL; *v is its
 * stored version then. Encodes no clock. */
static const struct table_entry *entry_holding(struct store *s, const void *key, uint32_t klen,
                                               uint64_t hash, const void *meta, size_t meta_len,
                                               struct store_version *v)
{
    const struct table_entry *e = replica_find(s, key, klen, hash);
    if (!e || !(e->meta & TABLE_ENTRY_VERSIONED) || table_entry_is_cold(e))
        return NULL;
    store_entry_version(e, v);
    return v->meta_len == meta_len && memcmp(v->meta, meta, meta_len) == 0 ? e : NULL;
}

bool replica_holds(struct store *s, const void *key, uint32_t klen, uint64_t hash, const void *meta,
                   size_t meta_len)
{
    struct store_version v;
    return entry_holding(s, key, klen, hash, meta, meta_len, &v) != NULL;
}

int replica_peek(struct store *s, const void *key, uint32_t klen, uint64_t hash,
                 struct store_version *v, uint64_t *expire_at_ms)
{
    const struct table_entry *e = replica_find(s, key, klen, hash);
    if (!e)
        return -ENOENT;
    if (!(e->meta & TABLE_ENTRY_VERSIONED) || table_entry_is_cold(e))
        return 1;
    store_entry_version(e, v);
    *expire_at_ms = (uint64_t)e->expire_ms;
    return 0;
}

int replica_export(struct store *s, const struct node *n, const void *key, uint32_t klen,
                   uint64_t hash, struct replica_state *out)
{
    struct table_entry *e = replica_find(s, key, klen, hash);
    if (!e)
        return -ENOENT;
    struct replica_clocks w;
    clocks_init(&w); /* a plain entry's clock has one entry and one value */
    return state_of_entry(n, e, &w, out);
}

/* ---- apply ---- */

/* What replica_apply decided, once the clocks are computed. */
struct apply_plan {
    struct table_entry *e;   /* the stored entry, NULL when none */
    struct buf *stored_meta; /* e's state, encoded, for a plain e (the store's scratch) */
    const char *stored;      /* e's meta: a versioned e's (in stored_version), else
                                stored_meta's */
    size_t stored_len;
    struct store_version stored_version; /* a versioned e's, when in memory */
    struct buf *merged_meta; /* K_OUT, encoded (the store's scratch) */
    int64_t expire_ms;
};

/* The later of two expiries, none (0) counting as the latest. */
static int64_t later_expiry(int64_t a, int64_t b)
{
    return a == 0 || b == 0 ? 0 : (a > b ? a : b);
}

static bool meta_equal(const struct buf *b, const void *meta, size_t len)
{
    return b->len == len && (len == 0 || memcmp(b->data, meta, len) == 0);
}

/* K_IN = the given clock, K_STORED = the stored one, K_OUT = their sync. */
static int apply_merge(struct store *s, const struct node *n, const void *key, uint32_t klen,
                       uint64_t hash, const void *meta, size_t meta_len, const void *body,
                       size_t body_len, struct replica_clocks *w, struct apply_plan *p)
{
    int rc = dvv_decode(meta, meta_len, body, body_len, w->k[K_IN]);
    if (rc != 0)
        return rc == -ENOSPC ? rc : -EINVAL;
    if (dvv_size(w->k[K_IN]) == 0)
        return -EINVAL; /* a history without a value is no state to store */
    p->e = replica_find(s, key, klen, hash);
    if (!p->e)
        return dvv_sync(w->k[K_OUT], w->k[K_IN], w->k[K_IN]);
    rc = replica_entry_clock(n, p->e, w->k[K_STORED]);
    if (rc == 0)
        rc = dvv_sync(w->k[K_OUT], w->k[K_STORED], w->k[K_IN]);
    return rc;
}

/* p->stored = K_STORED's meta: a versioned entry in memory gives its
 * canonical encoding (store_entry_version: its bytes, or made from its
 * packed fields: the bytes replica_export gives); others are encoded. */
static int stored_meta_of(const struct replica_clocks *w, struct apply_plan *p)
{
    if ((p->e->meta & TABLE_ENTRY_VERSIONED) && !table_entry_is_cold(p->e)) {
        store_entry_version(p->e, &p->stored_version);
        p->stored = p->stored_version.meta;
        p->stored_len = p->stored_version.meta_len;
        return 0;
    }
    int rc = dvv_encode_meta(w->k[K_STORED], p->stored_meta);
    if (rc == 0 && p->stored_meta->failed)
        rc = -ENOMEM;
    p->stored = p->stored_meta->data;
    p->stored_len = p->stored_meta->len;
    return rc;
}

/* Encodes the metas and picks the expiry (see the design comment). */
static int apply_decide(const struct replica_clocks *w, const void *meta, size_t meta_len,
                        uint64_t expire_at_ms, struct apply_plan *p)
{
    int rc = dvv_encode_meta(w->k[K_OUT], p->merged_meta);
    if (rc != 0 || !p->e) {
        p->expire_ms = (int64_t)expire_at_ms;
        return rc;
    }
    rc = stored_meta_of(w, p);
    if (rc != 0)
        return rc;
    if (p->merged_meta->failed)
        return -ENOMEM;
    bool is_stored = meta_equal(p->merged_meta, p->stored, p->stored_len);
    bool is_given = meta_equal(p->merged_meta, meta, meta_len);
    if (is_stored && !is_given)
        p->expire_ms = p->e->expire_ms;
    else if (is_given && !is_stored)
        p->expire_ms = (int64_t)expire_at_ms;
    else
        p->expire_ms = later_expiry(p->e->expire_ms, (int64_t)expire_at_ms);
    return 0;
}

int replica_apply(struct store *s, const struct node *n, const void *key, uint32_t klen,
                  uint64_t hash, const void *meta, size_t meta_len, const void *body,
                  size_t body_len, uint64_t expire_at_ms)
{
    if (expire_at_ms > INT64_MAX)
        return -EINVAL;
    struct store_version v;
    const struct table_entry *held = entry_holding(s, key, klen, hash, meta, meta_len, &v);
    if (held && (uint64_t)held->expire_ms == expire_at_ms) {
        if (v.body_len == body_len && (body_len == 0 || memcmp(v.body, body, body_len) == 0))
            return 0; /* this very state is stored: the sync would change nothing */
    }
    struct replica_clocks w;
    clocks_init(&w);
    struct apply_plan p = {0};
    p.stored_meta = &s->scratch[2];
    p.merged_meta = &s->scratch[3];
    int rc = apply_merge(s, n, key, klen, hash, meta, meta_len, body, body_len, &w, &p);
    if (rc == -ENOSPC && (rc = clocks_grow(&w)) == 0)
        rc = apply_merge(s, n, key, klen, hash, meta, meta_len, body, body_len, &w, &p);
    if (rc == 0)
        rc = apply_decide(&w, meta, meta_len, expire_at_ms, &p);
    bool same = rc == 0 && p.e && meta_equal(p.merged_meta, p.stored, p.stored_len);
    bool gone = p.expire_ms != 0 && p.expire_ms <= s->now_ms;
    if (rc == 0 && ((same && p.expire_ms == p.e->expire_ms) || (!p.e && gone))) {
        rc = 0; /* it held everything given (or nothing that is still live) */
    } else if (rc == 0 && same) {
        rc = store_set_expire(s, p.e, hash, p.expire_ms, NULL);
        rc = rc == 0 ? 1 : rc;
    } else if (rc == 0) {
        rc = replica_check_siblings(s, n, key, klen, dvv_size(w.k[K_OUT]));
        if (rc == 0)
            rc = p.merged_meta->failed
                     ? -ENOMEM
                     : store_put_versioned_meta(s, key, klen, hash, w.k[K_OUT],
                                                p.merged_meta->data, p.merged_meta->len,
                                                p.expire_ms, NULL);
        rc = rc == 0 ? 1 : rc;
    }
    store_scratch_done(p.stored_meta);
    store_scratch_done(p.merged_meta);
    clocks_fini(&w);
    return rc == -ENOSPC ? -E2BIG : rc; /* past the codec bounds even in big clocks */
}

/* ---- versionize ---- */

/* True when plain commands see a value in clock c (its pick is live). */
static bool clock_is_visible(const struct dvv_clock *c)
{
    int pick = dvv_pick(c);
    return pick >= 0 && !(c->values[pick].flags & DVV_TOMBSTONE);
}

/* K_OUT = the new version of entry e (NULL: the key was removed, a
 * tombstone) over K_IN, `before`'s clock. */
static int versionize_clock(struct store *s, const struct node *n, uint64_t hash,
                            const struct table_entry *e, const struct replica_state *before,
                            struct replica_clocks *w)
{
    dvv_clear(w->k[K_IN]);
    if (before && before->meta.len) {
        int rc = dvv_decode(before->meta.data, before->meta.len, before->body.data,
                            before->body.len, w->k[K_IN]);
        if (rc != 0)
            return rc == -ENOSPC ? rc : -EINVAL;
    }
    struct dvv_value v = {.flags = DVV_TOMBSTONE, .ts_ms = s->now_ms};
    if (e && !(e->meta & TABLE_ENTRY_TOMBSTONE)) {
        v.data = table_entry_key(e) + e->key_len;
        v.len = e->val_len;
        v.flags = 0;
        v.mc_flags = e->mc_flags; /* memcached's set: the new sibling's */
    }
    int rc = dvv_new_with_context(w->k[K_STORED], w->k[K_IN], &v);
    if (rc == 0)
        rc = dvv_update(w->k[K_OUT], w->k[K_STORED], w->k[K_IN],
                        replica_write_actor(s, n, hash, w->k[K_IN]));
    return rc;
}

static bool state_equal(const struct replica_state *a, const struct replica_state *b)
{
    return a->expire_at_ms == b->expire_at_ms && meta_equal(&a->meta, b->meta.data, b->meta.len) &&
           meta_equal(&a->body, b->body.data, b->body.len);
}

/* Puts `before` back (a removal plain commands could not see); after = it. */
static int versionize_restore(struct store *s, const void *key, uint32_t klen, uint64_t hash,
                              const struct replica_state *before, struct replica_clocks *w,
                              struct replica_state *after)
{
    replica_state_clear(after);
    if (!before || before->meta.len == 0)
        return 0;
    int rc =
        store_put_versioned(s, key, klen, hash, w->k[K_IN], (int64_t)before->expire_at_ms, NULL);
    if (rc != 0)
        return rc;
    buf_append(&after->meta, before->meta.data, before->meta.len);
    buf_append(&after->body, before->body.data, before->body.len);
    after->expire_at_ms = before->expire_at_ms;
    return state_done(after);
}

int replica_versionize(struct store *s, const struct node *n, const void *key, uint32_t klen,
                       uint64_t hash, const struct replica_state *before,
                       struct replica_state *after, bool *changed)
{
    *changed = false;
    struct replica_clocks w;
    clocks_init(&w);
    struct table_entry *e = replica_find(s, key, klen, hash);
    int rc = 0;
    if (e) {
        rc = state_of_entry(n, e, &w, after);
        if (rc != 0 || (before && state_equal(after, before)))
            goto out; /* failed, or the command left the key as it was */
    } else if (!before || before->meta.len == 0) {
        replica_state_clear(after);
        goto out; /* absent before and after */
    }
    rc = versionize_clock(s, n, hash, e, before, &w);
    if (rc == -ENOSPC && (rc = clocks_grow(&w)) == 0)
        rc = versionize_clock(s, n, hash, e, before, &w);
    if (rc != 0)
        goto out;
    if (!e && !clock_is_visible(w.k[K_IN])) {
        rc = versionize_restore(s, key, klen, hash, before, &w, after);
        goto out;
    }
    struct table_entry *ne = NULL;
    rc = store_put_versioned(s, key, klen, hash, w.k[K_OUT], e ? e->expire_ms : 0, &ne);
    if (rc == 0)
        rc = ne ? state_of_entry(n, ne, &w, after) : state_of_clock(w.k[K_OUT], 0, after);
    *changed = rc == 0;
out:
    clocks_fini(&w);
    return rc == -ENOSPC ? -E2BIG : rc; /* past the codec bounds even in big clocks */
}

/* ---- a put versioned at once ---- */

/* K_OUT = a new dot with value v over K_IN, the key's clock now (e's; none:
 * empty), as versionize_clock makes it for a put. */
static int put_clock(struct store *s, const struct node *n, uint64_t hash,
                     const struct table_entry *e, const struct dvv_value *v,
                     struct replica_clocks *w)
{
    dvv_clear(w->k[K_IN]);
    int rc = e ? replica_entry_clock(n, e, w->k[K_IN]) : 0;
    if (rc == 0)
        rc = dvv_new_with_context(w->k[K_STORED], w->k[K_IN], v);
    if (rc == 0)
        rc = dvv_update(w->k[K_OUT], w->k[K_STORED], w->k[K_IN],
                        replica_write_actor(s, n, hash, w->k[K_IN]));
    return rc;
}

static int replica_put_hook(struct store *s, struct store_put_hook *h, const void *key,
                            uint32_t klen, uint64_t hash, const void *val, size_t vlen,
                            int64_t expire_ms, uint32_t mc_flags, struct table_entry **out)
{
    struct replica_put *p = (struct replica_put *)h;
    if (hash != p->hash || klen != p->klen || memcmp(key, p->key, klen) != 0 ||
        (expire_ms != 0 && expire_ms <= s->now_ms) || vlen > UINT32_MAX)
        return 1; /* another key, or a put that removes it: plain, then versionize */
    const struct table_entry *e = replica_find(s, key, klen, hash);
    if (e && table_entry_is_cold(e))
        return 1;
    struct dvv_value v = {
        .data = val, .len = (uint32_t)vlen, .mc_flags = mc_flags, .ts_ms = s->now_ms};
    struct replica_clocks w;
    clocks_init(&w);
    int rc = put_clock(s, p->n, hash, e, &v, &w);
    if (rc == -ENOSPC && (rc = clocks_grow(&w)) == 0)
        rc = put_clock(s, p->n, hash, e, &v, &w);
    if (rc == 0) {
        s->put_hook = NULL; /* store_put_versioned puts no plain entry; no recursion anyway */
        rc = store_put_versioned(s, key, klen, hash, w.k[K_OUT], expire_ms, out);
        s->put_hook = h;
    }
    clocks_fini(&w);
    p->done |= rc == 0;
    return rc == -ENOSPC ? -E2BIG : rc;
}

void replica_put_begin(struct replica_put *p, struct store *s, const struct node *n,
                       const void *key, uint32_t klen, uint64_t hash)
{
    p->hook.put = replica_put_hook;
    p->n = n;
    p->key = key;
    p->klen = klen;
    p->hash = hash;
    p->done = false;
    s->put_hook = &p->hook;
}

void replica_put_end(struct replica_put *p, struct store *s)
{
    (void)p;
    s->put_hook = NULL;
}

/* ---- reaping ---- */

struct reap_scan {
    const struct store *s;
    int64_t before_ms; /* tombstones whose newest timestamp is older go */
    struct replica_clocks *w;
    struct table_entry *found[REPLICA_REAP_BATCH];
    uint32_t nfound, cap, visited;
    bool full;
};

/* True when every value of e is a tombstone written before `before_ms`. */
static bool reapable(const struct table_entry *e, int64_t before_ms, struct replica_clocks *w)
{
    if ((e->meta & (TABLE_ENTRY_VERSIONED | TABLE_ENTRY_TOMBSTONE | TABLE_ENTRY_COLD)) !=
        (TABLE_ENTRY_VERSIONED | TABLE_ENTRY_TOMBSTONE))
        return false; /* a cold entry has bytes: some value is live */
    struct store_version v;
    store_entry_version(e, &v);
    int rc = dvv_decode(v.meta, v.meta_len, v.body, v.body_len, w->k[K_STORED]);
    if (rc == -ENOSPC && clocks_grow(w) == 0)
        rc = dvv_decode(v.meta, v.meta_len, v.body, v.body_len, w->k[K_STORED]);
    const struct dvv_clock *k = w->k[K_STORED];
    if (rc != 0 || dvv_size(k) == 0)
        return false;
    for (uint32_t i = 0; i < dvv_size(k); i++)
        if (!(k->values[i].flags & DVV_TOMBSTONE) || k->values[i].ts_ms >= before_ms)
            return false;
    return true;
}

bool replica_past_grace(const struct node *n, const struct table_entry *e, int64_t now_unix_ms)
{
    if ((e->meta & (TABLE_ENTRY_VERSIONED | TABLE_ENTRY_TOMBSTONE)) !=
        (TABLE_ENTRY_VERSIONED | TABLE_ENTRY_TOMBSTONE))
        return false; /* the common case: no clock decoded */
    struct replica_clocks w;
    clocks_init(&w);
    bool past = reapable(e, now_unix_ms - n->cfg->tombstone_grace_s * 1000, &w);
    clocks_fini(&w);
    return past;
}

static void reap_visit(struct table_entry *e, void *arg)
{
    struct reap_scan *r = arg;
    r->visited++;
    if (r->full || store_is_expired(r->s, e) || !reapable(e, r->before_ms, r->w))
        return;
    if (r->nfound == r->cap) {
        r->full = true; /* this chunk is looked at again */
        return;
    }
    r->found[r->nfound++] = e;
}

/* One pass step of replica_reap and replica_reap_offer: each tombstone past
 * the grace is deleted (offer NULL) or offered; an offer refused stops the
 * pass where it is (the chunk is looked at again on a later call). */
static uint32_t reap_pass(struct store *s, const struct node *n, int64_t now_unix_ms,
                          uint32_t budget, replica_reap_fn offer, void *arg)
{
    /* Where this shard's pass over its table is (the owner's thread). */
    static __thread uint64_t cursor;
    if (budget == 0 || store_count(s) == 0 || !s->had_tombstone)
        return 0; /* a store that never held a tombstone is not walked */
    /* A log that cannot take records now (MISCONF) or holds too many not
     * durable yet would keep the delete records in memory: later. */
    if (__atomic_load_n(&n->log_failing, __ATOMIC_RELAXED) > 0 ||
        __atomic_load_n(&n->log_over_cap, __ATOMIC_RELAXED) > 0)
        return 0;
    struct replica_clocks w;
    clocks_init(&w);
    struct reap_scan r = {
        .s = s, .w = &w, .before_ms = now_unix_ms - n->cfg->tombstone_grace_s * 1000};
    uint32_t reaped = 0;
    bool refused = false;
    while (!refused && reaped < budget && r.visited < REPLICA_REAP_VISIT) {
        r.nfound = 0;
        r.full = false;
        r.cap = budget - reaped < REPLICA_REAP_BATCH ? budget - reaped : REPLICA_REAP_BATCH;
        uint64_t next = table_scan(s->table, cursor, 1, reap_visit, &r);
        for (uint32_t i = 0; i < r.nfound && !refused; i++) {
            const struct table_entry *e = r.found[i];
            const char *key = table_entry_key(e);
            uint64_t hash = keyhash(key, e->key_len);
            if (!offer)
                store_delete(s, key, e->key_len, hash); /* logs a delete */
            else if (!offer(arg, key, e->key_len, hash))
                refused = true;
            else
                reaped++;
        }
        reaped += offer ? 0 : r.nfound;
        if (r.full || refused)
            continue; /* the rest of this chunk next */
        cursor = next;
        if (cursor == 0)
            break; /* a whole pass: the next one on a later tick */
    }
    clocks_fini(&w);
    return reaped;
}

uint32_t replica_reap(struct store *s, const struct node *n, int64_t now_unix_ms, uint32_t budget)
{
    return reap_pass(s, n, now_unix_ms, budget, NULL, NULL);
}

uint32_t replica_reap_offer(struct store *s, const struct node *n, int64_t now_unix_ms,
                            uint32_t budget, replica_reap_fn offer, void *arg)
{
    return reap_pass(s, n, now_unix_ms, budget, offer, arg);
}
