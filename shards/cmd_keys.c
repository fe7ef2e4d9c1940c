/* cmd_keys.c: Redis keyspace commands and per-shard halves of all-shard
 * commands, over the shard's store.
 * Runs on the shard thread that owns the key (or, for the *_shard handlers,
 * on every shard in turn). Semantics and the order of checks follow Redis
 * 7.0 (checked against redis-server 7.0.15): EXPIRE and friends parse their
 * options, then the time (with overflow checks on the unit and the base),
 * then look the key up; NX XX GT LT compare with the current expiry, where
 * "no expiry" counts as infinite; a resulting time not in the future
 * deletes the key and still answers :1.
 * KEYS walks this shard's whole table with table_scan (and CLUSTER
 * COUNTKEYSINSLOT/GETKEYSINSLOT, cmd_slot_keys_shard, one partition's keys
 * with table_scan_parts, the same walker); SCAN makes one
 * table_scan call from the position the dispatcher extracted from the
 * node-wide cursor, so the SCAN guarantee (a key present throughout is
 * returned at least once) is the table's. Both skip expired keys without
 * removing them (the table must not change under table_scan); active
 * expiry reclaims them. Keys are written straight into a scratch buffer,
 * then counted into the array header.
 * OBJECT and MEMORY USAGE arrive as RING.KEYINFO key field (cmd_keyinfo;
 * cmd_server.c rewrites them so they route by their key): the key is
 * looked at with store_peek, which leaves its idle time as it was.
 * In a cluster (coord_is_cluster) these handlers give the node-local form
 * (keyspace.h): only keys of partitions this node answers for
 * (coord_answers_for), never tombstones; DBSIZE adds up the store's
 * per-partition counts instead of walking. A cluster of one takes the
 * paths it always took. */
#include "cmd_keys.h"

#include "num.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <mimalloc.h>

#include "cmd_string.h"
#include "coord.h"
#include "glob.h"
#include "keyhash.h"
#include "node.h"
#include "shard.h"
#include "store.h"

#define KEYS_SCAN_CHUNK 1024 /* entries per table_scan call of KEYS */
#define SCAN_DEFAULT_COUNT 10
#define RANDOM_MINE_TRIES 64 /* samples RANDOMKEY takes before walking for a key of its own */
#define RANDOM_MINE_WALK 1024 /* entries RANDOMKEY walks at most (per scan call) after them */

/* In a cluster, the executing shard (its view says which partitions this
 * node answers for); NULL for a cluster of one, where every key counts (and
 * for a store run without a node, as unit tests do). */
static const struct shard *keyspace_filter(const struct cmd_ctx *c)
{
    if (!c->node)
        return NULL;
    const struct shard *sh = c->node->shards[c->shard_id];
    return coord_is_cluster(sh) ? sh : NULL;
}

/* Whether e is in the node-local answer of filter f (keyspace_filter). */
static bool keyspace_counts(const struct shard *f, const struct node *n,
                            const struct table_entry *e)
{
    if (!f)
        return true;
    if (e->meta & TABLE_ENTRY_TOMBSTONE)
        return false;
    const char *key = table_entry_key(e);
    uint64_t hash = n->partition_fn == KEYHASH_FN_XXH3 ? keyhash(key, e->key_len) : 0;
    return coord_answers_for(f, node_partition_of(n, key, e->key_len, hash));
}

static struct table_entry *lookup(struct cmd_ctx *c)
{
    return store_lookup(c->store, c->argv[1].ptr, c->argv[1].len, c->hash);
}

static struct table_entry *lookup_read(struct cmd_ctx *c)
{
    return store_lookup_read(c->store, c->argv[1].ptr, c->argv[1].len, c->hash);
}

void cmd_del(struct cmd_ctx *c)
{
    cmd_reply_int(c, store_delete(c->store, c->argv[1].ptr, c->argv[1].len, c->hash));
}

void cmd_exists(struct cmd_ctx *c)
{
    cmd_reply_int(c, lookup_read(c) != NULL);
}

void cmd_type(struct cmd_ctx *c)
{
    resp_write_simple(c->out, lookup_read(c) ? "string" : "none");
}

/* Redis's encoding of a string value: "int" when it is a canonical 64-bit
 * integer of at most 20 characters, "embstr" up to 44 bytes, else "raw". */
static const char *keyinfo_encoding(const char *v, uint32_t len)
{
    int64_t n;
    char canon[24];
    if (len <= 20 && num_parse_i64(v, len, &n) &&
        snprintf(canon, sizeof canon, "%lld", (long long)n) == (int)len &&
        memcmp(canon, v, len) == 0)
        return "int";
    return len <= 44 ? "embstr" : "raw";
}

void cmd_keyinfo(struct cmd_ctx *c)
{
    const struct resp_arg *sub = &c->argv[2];
    struct table_entry *e = store_peek(c->store, c->argv[1].ptr, c->argv[1].len, c->hash);
    if (!e) {
        cmd_reply_null(c);
        return;
    }
    if (cmd_arg_is(sub, "encoding")) { /* a bulk string, as Redis */
        const char *enc = keyinfo_encoding(table_entry_val(e), e->val_len);
        cmd_reply_bulk(c, enc, strlen(enc));
    } else if (cmd_arg_is(sub, "refcount"))
        cmd_reply_int(c, 1);
    else if (cmd_arg_is(sub, "idletime"))
        cmd_reply_int(c, store_idle_s(c->store, e));
    else if (cmd_arg_is(sub, "freq")) /* no LFU policy: no frequency kept, as Redis says */
        cmd_reply_error(c, "ERR An LFU maxmemory policy is not selected, access frequency not "
                           "tracked. Please note that when switching between policies at "
                           "runtime LRU and LFU data will take some time to adjust.");
    else if (cmd_arg_is(sub, "usage")) /* the entry and its table slot */
        cmd_reply_int(c, (int64_t)(table_entry_mem(e) + sizeof(uint64_t)));
    else
        cmd_reply_error(c, "ERR unknown RING.KEYINFO field (ENCODING, FREQ, IDLETIME, "
                           "REFCOUNT or USAGE)");
}

/* RENAME, RENAMENX and COPY. */
enum key_copy { KEY_RENAME, KEY_RENAMENX, KEY_COPY };

/* Puts the source's value, expiry and memcached flags under the
 * destination (one shard: cmd_args_ok checked that both keys are of one
 * slot) and, but for COPY, deletes the source. The destination is written
 * first: a crash between the two log records leaves both keys, never
 * neither. Replies as Redis 7 does. Two keys were read: the reply waits
 * for every record of the shard (c->hash 0, cmd.h). */
static void copy_key(struct cmd_ctx *c, enum key_copy kind, bool replace)
{
    const struct resp_arg *src = &c->argv[1], *dst = &c->argv[2];
    bool is_same = resp_arg_equal(src, dst);
    if (kind == KEY_COPY && is_same) { /* Redis checks this before the key */
        cmd_reply_error(c, "ERR source and destination objects are the same");
        return;
    }
    struct table_entry *e = lookup_read(c);
    if (!e) {
        if (kind == KEY_COPY)
            cmd_reply_int(c, 0);
        else
            cmd_reply_error(c, "ERR no such key");
        return;
    }
    if (is_same) {
        if (kind == KEY_RENAMENX)
            cmd_reply_int(c, 0);
        else
            cmd_reply_ok(c);
        return;
    }
    if (table_entry_is_cold(e)) { /* the dispatcher reads it back first: not expected */
        cmd_reply_error(c, "TRYAGAIN the value is on disk only; retry");
        return;
    }
    uint64_t src_hash = c->hash, dst_hash = keyhash(dst->ptr, dst->len);
    c->hash = 0;
    bool dst_exists = store_lookup(c->store, dst->ptr, dst->len, dst_hash) != NULL;
    if (dst_exists && (kind == KEY_RENAMENX || (kind == KEY_COPY && !replace))) {
        cmd_reply_int(c, 0);
        return;
    }
    e = store_lookup(c->store, src->ptr, src->len, src_hash); /* dst's lookup may reclaim */
    if (!e) {
        cmd_reply_error(c, "ERR no such key");
        return;
    }
    size_t vlen = e->val_len;
    int64_t expire_ms = e->expire_ms;
    uint32_t mc_flags = e->mc_flags;
    char *val = mi_malloc(vlen ? vlen : 1); /* store_put makes room: it may evict the source */
    if (!val) {
        cmd_reply_error(c, CMD_ERR_OOM);
        return;
    }
    memcpy(val, table_entry_val(e), vlen);
    int rc = store_put(c->store, dst->ptr, dst->len, dst_hash, val, vlen, expire_ms, mc_flags,
                       NULL);
    mi_free(val);
    if (rc != 0) {
        cmd_reply_store_error(c, rc);
        return;
    }
    if (kind != KEY_COPY)
        store_delete(c->store, src->ptr, src->len, src_hash);
    if (kind == KEY_RENAME)
        cmd_reply_ok(c);
    else
        cmd_reply_int(c, 1);
}

void cmd_rename(struct cmd_ctx *c)
{
    copy_key(c, KEY_RENAME, false);
}

void cmd_renamenx(struct cmd_ctx *c)
{
    copy_key(c, KEY_RENAMENX, false);
}

void cmd_copy(struct cmd_ctx *c)
{
    bool replace = false;
    for (uint32_t i = 3; i < c->argc; i++) {
        const struct resp_arg *a = &c->argv[i];
        if (a->len == 7 && strncasecmp(a->ptr, "replace", 7) == 0) {
            replace = true;
        } else if (a->len == 2 && strncasecmp(a->ptr, "db", 2) == 0 && i + 1 < c->argc) {
            int64_t db;
            if (!num_parse_i64(c->argv[i + 1].ptr, c->argv[i + 1].len, &db)) {
                cmd_reply_error(c, CMD_ERR_NOT_INT);
                return;
            }
            if (db != 0) { /* one database, as Redis Cluster */
                cmd_reply_error(c, "ERR DB index is out of range");
                return;
            }
            i++;
        } else {
            cmd_reply_error(c, "ERR syntax error");
            return;
        }
    }
    copy_key(c, KEY_COPY, replace);
}

/* "ERR Unsupported option <opt>", with CR and LF turned to spaces as Redis
 * does so that the error stays one line. */
static void reply_unsupported(struct cmd_ctx *c, const struct resp_arg *opt)
{
    struct buf msg;
    buf_init(&msg);
    buf_append_str(&msg, "ERR Unsupported option ");
    size_t at = msg.len;
    buf_append(&msg, opt->ptr, opt->len);
    buf_append(&msg, "", 1);
    if (msg.failed) {
        cmd_reply_error(c, CMD_ERR_OOM);
    } else {
        for (size_t i = at; i + 1 < msg.len; i++)
            if (msg.data[i] == '\r' || msg.data[i] == '\n')
                msg.data[i] = ' ';
        cmd_reply_error(c, msg.data);
    }
    buf_fini(&msg);
}

enum { EXP_NX = 1, EXP_XX = 2, EXP_GT = 4, EXP_LT = 8 };

/* Options of EXPIRE and friends (argv[3..]). Replies and returns false on a
 * bad or incompatible option. */
static bool parse_expire_flags(struct cmd_ctx *c, unsigned *flags)
{
    static const struct {
        const char *name;
        unsigned flag;
    } opts[] = {{"nx", EXP_NX}, {"xx", EXP_XX}, {"gt", EXP_GT}, {"lt", EXP_LT}};
    *flags = 0;
    for (uint32_t j = 3; j < c->argc; j++) {
        size_t k = 0;
        while (k < sizeof opts / sizeof opts[0] && !cmd_arg_is(&c->argv[j], opts[k].name))
            k++;
        if (k == sizeof opts / sizeof opts[0]) {
            reply_unsupported(c, &c->argv[j]);
            return false;
        }
        *flags |= opts[k].flag;
    }
    if ((*flags & EXP_NX) && (*flags & (EXP_XX | EXP_GT | EXP_LT))) {
        cmd_reply_error(c,
                        "ERR NX and XX, GT or LT options at the same time are not compatible");
        return false;
    }
    if ((*flags & EXP_GT) && (*flags & EXP_LT)) {
        cmd_reply_error(c, "ERR GT and LT options at the same time are not compatible");
        return false;
    }
    return true;
}

/* Whether NX XX GT LT let the new expiry `when` replace `cur` (0 = none). */
static bool expire_allowed(unsigned flags, int64_t cur, int64_t when)
{
    if ((flags & EXP_NX) && cur != 0)
        return false;
    if ((flags & EXP_XX) && cur == 0)
        return false;
    if ((flags & EXP_GT) && (cur == 0 || when <= cur))
        return false;
    if ((flags & EXP_LT) && cur != 0 && when >= cur)
        return false;
    return true;
}

/* EXPIRE (unit 1000, base now), PEXPIRE (1, now), EXPIREAT (1000, 0),
 * PEXPIREAT (1, 0). */
static void expire_generic(struct cmd_ctx *c, int64_t unit_ms, int64_t base_ms, const char *cmd)
{
    unsigned flags;
    int64_t when;
    if (!parse_expire_flags(c, &flags))
        return;
    if (!num_parse_i64(c->argv[2].ptr, c->argv[2].len, &when)) {
        cmd_reply_error(c, CMD_ERR_NOT_INT);
        return;
    }
    if (when > INT64_MAX / unit_ms || when < INT64_MIN / unit_ms ||
        when * unit_ms > INT64_MAX - base_ms) {
        char msg[64];
        snprintf(msg, sizeof msg, "ERR invalid expire time in '%s' command", cmd);
        cmd_reply_error(c, msg);
        return;
    }
    when = when * unit_ms + base_ms;
    struct table_entry *e = lookup(c);
    if (!e || !expire_allowed(flags, e->expire_ms, when)) {
        cmd_reply_int(c, 0);
        return;
    }
    if (when <= c->store->now_ms) {
        store_delete(c->store, c->argv[1].ptr, c->argv[1].len, c->hash);
        cmd_reply_int(c, 1);
        return;
    }
    int rc = store_set_expire(c->store, e, c->hash, when, NULL);
    if (rc != 0)
        cmd_reply_store_error(c, rc);
    else
        cmd_reply_int(c, 1);
}

void cmd_expire(struct cmd_ctx *c)
{
    expire_generic(c, 1000, c->store->now_ms, "expire");
}

void cmd_pexpire(struct cmd_ctx *c)
{
    expire_generic(c, 1, c->store->now_ms, "pexpire");
}

void cmd_expireat(struct cmd_ctx *c)
{
    expire_generic(c, 1000, 0, "expireat");
}

void cmd_pexpireat(struct cmd_ctx *c)
{
    expire_generic(c, 1, 0, "pexpireat");
}

/* Unix milliseconds of the key's expiry: -2 without the key, -1 without
 * an expiry. */
static int64_t expire_at_ms(struct cmd_ctx *c)
{
    struct table_entry *e = lookup_read(c);
    return !e ? -2 : e->expire_ms == 0 ? -1 : e->expire_ms;
}

/* Milliseconds to live: -2 without the key, -1 without an expiry. */
static int64_t ttl_ms(struct cmd_ctx *c)
{
    int64_t at = expire_at_ms(c);
    if (at < 0)
        return at;
    int64_t ttl = at - c->store->now_ms;
    return ttl < 0 ? 0 : ttl;
}

void cmd_ttl(struct cmd_ctx *c)
{
    int64_t ttl = ttl_ms(c);
    cmd_reply_int(c, ttl < 0 ? ttl : (ttl + 500) / 1000);
}

void cmd_pttl(struct cmd_ctx *c)
{
    cmd_reply_int(c, ttl_ms(c));
}

void cmd_expiretime(struct cmd_ctx *c)
{
    int64_t at = expire_at_ms(c);
    cmd_reply_int(c, at < 0 ? at : (at + 500) / 1000); /* rounded, as Redis 7 */
}

void cmd_pexpiretime(struct cmd_ctx *c)
{
    cmd_reply_int(c, expire_at_ms(c));
}

void cmd_persist(struct cmd_ctx *c)
{
    struct table_entry *e = lookup(c);
    if (!e || e->expire_ms == 0) {
        cmd_reply_int(c, 0);
        return;
    }
    int rc = store_set_expire(c->store, e, c->hash, 0, NULL);
    if (rc != 0)
        cmd_reply_store_error(c, rc);
    else
        cmd_reply_int(c, 1);
}

void cmd_dbsize_shard(struct cmd_ctx *c)
{
    const struct shard *f = keyspace_filter(c);
    if (!f) {
        cmd_reply_int(c, (int64_t)store_count(c->store));
        return;
    }
    uint64_t total = 0; /* O(partitions), not O(keys) */
    for (uint32_t p = 0; p < c->node->npartitions; p++)
        if (c->node->partition_shard[p] == c->shard_id && coord_answers_for(f, p))
            total += store_partition_count(c->store, p);
    cmd_reply_int(c, (int64_t)total);
}

void cmd_flushall_shard(struct cmd_ctx *c)
{
    if (c->argc > 2 ||
        (c->argc == 2 && !cmd_arg_is(&c->argv[1], "async") && !cmd_arg_is(&c->argv[1], "sync"))) {
        cmd_reply_error(c, CMD_ERR_SYNTAX);
        return;
    }
    store_flush(c->store);
    cmd_reply_ok(c);
}

/* Keys gathered by a table walk into `keys` (bulk strings), counted in n. */
struct key_walk {
    const struct store *store;
    const struct shard *filter; /* keyspace_filter() */
    const struct node *node;
    const struct resp_arg *pattern; /* NULL: every key */
    bool by_slot;                   /* only keys of `slot`, no tombstone */
    uint32_t slot;
    bool capped;                    /* gather at most max keys */
    size_t max;
    bool count_only;                /* count them, keep no names */
    struct buf keys;
    size_t n;
};

static void key_walk_fn(struct table_entry *e, void *arg)
{
    struct key_walk *w = arg;
    if ((w->capped && w->n >= w->max) || store_is_expired(w->store, e))
        return;
    if (w->filter && !keyspace_counts(w->filter, w->node, e))
        return;
    if (w->by_slot && ((e->meta & TABLE_ENTRY_TOMBSTONE) ||
                       keyhash_slot(table_entry_key(e), e->key_len) != w->slot))
        return;
    if (w->pattern && !glob_match(w->pattern->ptr, w->pattern->len, table_entry_key(e), e->key_len))
        return;
    if (!w->count_only)
        resp_write_bulk(&w->keys, table_entry_key(e), e->key_len);
    w->n++;
}

/* A MATCH pattern that matches every key needs no matching. */
static const struct resp_arg *pattern_or_null(const struct resp_arg *p)
{
    return p->len == 1 && p->ptr[0] == '*' ? NULL : p;
}

/* Writes the walk's keys as one array, or -OOM if gathering them failed. */
static void reply_keys(struct cmd_ctx *c, struct key_walk *w)
{
    if (w->keys.failed) {
        cmd_reply_error(c, CMD_ERR_OOM);
        return;
    }
    cmd_reply_array_len(c, w->n);
    buf_append(c->out, w->keys.data, w->keys.len);
}

void cmd_keys_shard(struct cmd_ctx *c)
{
    struct key_walk w = {.store = c->store,
                         .filter = keyspace_filter(c),
                         .node = c->node,
                         .pattern = pattern_or_null(&c->argv[1])};
    buf_init(&w.keys);
    uint64_t cursor = 0;
    do {
        cursor = table_scan(c->store->table, cursor, KEYS_SCAN_CHUNK, key_walk_fn, &w);
    } while (cursor != 0);
    reply_keys(c, &w);
    buf_fini(&w.keys);
}

/* CLUSTER COUNTKEYSINSLOT slot / GETKEYSINSLOT slot count, on the shard
 * that owns the slot's partition: the live keys this node holds of that
 * slot (whatever the store holds, a replica's copy in a cluster: not only
 * the partitions it answers for, as a Redis node answers for what it
 * stores), tombstones and expired keys left out. Walks the slot's partition
 * only once the table is split (a cluster), the whole shard before (a
 * cluster of one), as KEYS does, in one go. */
void cmd_slot_keys_shard(struct cmd_ctx *c)
{
    int64_t slot = 0, max = 0;
    num_parse_i64(c->argv[2].ptr, c->argv[2].len, &slot); /* checked by the sender */
    bool names = c->argc == 4;
    if (names)
        num_parse_i64(c->argv[3].ptr, c->argv[3].len, &max);
    struct key_walk w = {.store = c->store,
                         .node = c->node,
                         .by_slot = true,
                         .slot = (uint32_t)slot,
                         .capped = names,
                         .max = (size_t)max,
                         .count_only = !names};
    buf_init(&w.keys);
    uint32_t part = node_partition_of_slot(c->node, (uint32_t)slot, 0);
    uint64_t cursor = 0;
    do {
        cursor = table_scan_parts(c->store->table, &part, 1, cursor, KEYS_SCAN_CHUNK,
                                  key_walk_fn, &w);
    } while (cursor != 0 && !(w.capped && w.n >= w.max));
    if (names)
        reply_keys(c, &w);
    else
        cmd_reply_int(c, (int64_t)w.n);
    buf_fini(&w.keys);
}

/* First key of this node's answer in a bounded walk (RANDOMKEY's fallback). */
struct key_first {
    const struct shard *filter;
    const struct node *node;
    const struct store *store;
    struct table_entry *found;
};

static void key_first_fn(struct table_entry *e, void *arg)
{
    struct key_first *k = arg;
    if (!k->found && !store_is_expired(k->store, e) && keyspace_counts(k->filter, k->node, e))
        k->found = e;
}

/* RANDOMKEY in a cluster: a sampled key of a partition this node answers
 * for; when samples keep missing (few such keys here), the first one met by
 * a walk of at most RANDOM_MINE_WALK entries from a random point of hash
 * space (wrapping once at its end). The work per call is bounded, so with
 * very few keys of its own a shard may answer NULL though it has some;
 * RANDOMKEY promises a random key, not a census. NULL when none was met. */
static struct table_entry *random_mine(struct cmd_ctx *c, const struct shard *f)
{
    for (int i = 0; i < RANDOM_MINE_TRIES; i++) {
        struct table_entry *e = store_random(c->store);
        if (!e)
            return NULL;
        if (keyspace_counts(f, c->node, e))
            return e;
    }
    /* The sampler's xorshift state: fresh random bits after the samples. */
    uint64_t start = table_scan_random_cursor(c->store->table, c->store->rng);
    struct key_first k = {.filter = f, .node = c->node, .store = c->store};
    uint64_t cursor = table_scan(c->store->table, start, RANDOM_MINE_WALK, key_first_fn, &k);
    if (!k.found && cursor == 0 && start != 0)
        table_scan(c->store->table, 0, RANDOM_MINE_WALK, key_first_fn, &k);
    return k.found;
}

void cmd_randomkey_shard(struct cmd_ctx *c)
{
    const struct shard *f = keyspace_filter(c);
    struct table_entry *e = f ? random_mine(c, f) : store_random(c->store);
    if (e)
        cmd_reply_bulk(c, table_entry_key(e), e->key_len);
    else
        cmd_reply_null(c);
}

/* An unsigned decimal cursor: digits only, within 64 bits. */
static bool parse_cursor(const struct resp_arg *a, uint64_t *out)
{
    uint64_t v = 0;
    if (a->len == 0)
        return false;
    for (uint32_t i = 0; i < a->len; i++) {
        if (a->ptr[i] < '0' || a->ptr[i] > '9')
            return false;
        uint64_t d = (uint64_t)(a->ptr[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

struct scan_opts {
    int64_t count;
    const struct resp_arg *pattern; /* NULL: every key */
    bool is_type_string;            /* no TYPE, or TYPE string */
};

/* SCAN's options (argv[2..]). Replies and returns false when invalid. */
static bool parse_scan_options(struct cmd_ctx *c, struct scan_opts *o)
{
    o->count = SCAN_DEFAULT_COUNT;
    o->pattern = NULL;
    o->is_type_string = true;
    for (uint32_t i = 2; i < c->argc; i += 2) {
        const struct resp_arg *opt = &c->argv[i];
        const struct resp_arg *val = i + 1 < c->argc ? &c->argv[i + 1] : NULL;
        if (val && cmd_arg_is(opt, "count")) {
            if (!num_parse_i64(val->ptr, val->len, &o->count)) {
                cmd_reply_error(c, CMD_ERR_NOT_INT);
                return false;
            }
            if (o->count < 1) {
                cmd_reply_error(c, CMD_ERR_SYNTAX);
                return false;
            }
        } else if (val && cmd_arg_is(opt, "match")) {
            o->pattern = pattern_or_null(val);
        } else if (val && cmd_arg_is(opt, "type")) {
            o->is_type_string = cmd_arg_is(val, "string");
        } else {
            cmd_reply_error(c, CMD_ERR_SYNTAX);
            return false;
        }
    }
    return true;
}

static void scan_skip_fn(struct table_entry *e, void *arg) {}

void cmd_scan_shard(struct cmd_ctx *c)
{
    uint64_t cursor;
    struct scan_opts o;
    if (!parse_cursor(&c->argv[1], &cursor)) {
        cmd_reply_error(c, "ERR invalid cursor");
        return;
    }
    if (!parse_scan_options(c, &o))
        return;
    struct key_walk w = {
        .store = c->store, .filter = keyspace_filter(c), .node = c->node, .pattern = o.pattern};
    buf_init(&w.keys);
    cursor = table_scan(c->store->table, cursor, (size_t)o.count,
                        o.is_type_string ? key_walk_fn : scan_skip_fn, &w);
    if (w.keys.failed) {
        cmd_reply_error(c, CMD_ERR_OOM);
    } else {
        char text[24];
        int n = snprintf(text, sizeof text, "%llu", (unsigned long long)cursor);
        size_t at = c->out->len;
        resp_write_array_len(c->out, 2);
        resp_write_bulk(c->out, text, (size_t)n);
        uint32_t head = (uint32_t)(c->out->len - at);
        reply_keys(c, &w);
        /* For the dispatcher: the next cursor, and where the key array starts. */
        c->res->num = (int64_t)cursor;
        c->res->skip = head;
    }
    buf_fini(&w.keys);
}
