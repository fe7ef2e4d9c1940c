/* cmd.c: the command table and the routing of requests to shards.
 * cmd_defs[] is every Redis command as data: name, arity (Redis's: negative
 * means "at least"), flags, key positions (for COMMAND), how it routes, and
 * its handler. cmd_init() indexes it by name once; lookups lower-case the name
 * into a small buffer and probe that index, so dispatch is one hash probe,
 * never a strcmp chain.
 *
 * Routes:
 *   CONN     runs here, with the connection (PING, HELLO, INFO, CLIENT...);
 *   KEY      one key at argv[1]: runs inline when this shard owns it, else
 *            crosses one queue to the owner and back (struct cmd_msg);
 *   EACH     several keys (MGET, MSET, DEL, EXISTS): one sub-request per key
 *            (step 1 or 2 arguments), run on each key's owner, joined by a
 *            combiner in request order;
 *   ALL      one sub-request per shard (DBSIZE, FLUSHALL, KEYS, RANDOMKEY);
 *   SCAN     the shard named by the cursor's top byte;
 *   MSETNX   atomic on one shard when all keys live there; otherwise two
 *            phases (EXISTS everywhere, then SET everywhere).
 * Sub-replies are RESP bytes; the combiners below read only what their
 * handlers are known to write. memcached requests route the same way
 * (cmd_dispatch_mc).
 *
 * Threads: cmd_init() on the main thread before shards start; the table is
 * immutable afterwards. Everything else runs on shard threads. */
#include "cmd.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <mimalloc.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_keys.h"
#include "cmd_mc.h"
#include "cmd_server.h"
#include "cmd_stats.h"
#include "cmd_string.h"
#include "conn.h"
#include "keyhash.h"
#include "node.h"
#include "shard.h"
#include "store.h"
#include "tier.h"

#define CMD_INDEX_SIZE 256 /* power of two, > 2x the commands */
#define CMD_NAME_MAX 32

static const struct cmd_def cmd_defs[] = {
    /* name, arity, flags, first, last, step, route, step-args, handler, combine, group, summary */
    {"get", 2, CMD_READONLY | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_get, 0, "string",
     "Returns the string value of a key."},
    {"set", -3, CMD_WRITE | CMD_DENYOOM, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_set, 0, "string",
     "Sets the string value of a key, ignoring its type."},
    {"setex", 4, CMD_WRITE | CMD_DENYOOM, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_setex, 0, "string",
     "Sets the value and expiration time of a key."},
    {"psetex", 4, CMD_WRITE | CMD_DENYOOM, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_psetex, 0, "string",
     "Sets both string value and expiration time in milliseconds of a key."},
    {"setnx", 3, CMD_WRITE | CMD_DENYOOM | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_setnx, 0,
     "string", "Set the string value of a key only when the key doesn't exist."},
    {"getset", 3, CMD_WRITE | CMD_DENYOOM | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_getset, 0,
     "string", "Returns the previous string value of a key after setting it to a new value."},
    {"getdel", 2, CMD_WRITE | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_getdel, 0, "string",
     "Returns the string value of a key after deleting the key."},
    {"getex", -2, CMD_WRITE | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_getex, 0, "string",
     "Returns the string value of a key after setting its expiration time."},
    {"mget", -2, CMD_READONLY | CMD_FAST, 1, -1, 1, CMD_ROUTE_EACH, 1, cmd_get,
     CMD_COMBINE_ARRAY, "string", "Atomically returns the string values of one or more keys."},
    {"mset", -3, CMD_WRITE | CMD_DENYOOM, 1, -1, 2, CMD_ROUTE_EACH, 2, cmd_set, CMD_COMBINE_OK,
     "string", "Atomically creates or modifies the string values of one or more keys."},
    {"msetnx", -3, CMD_WRITE | CMD_DENYOOM, 1, -1, 2, CMD_ROUTE_MSETNX, 2, cmd_exists,
     CMD_COMBINE_MSETNX, "string",
     "Atomically modifies the string values of one or more keys only when all keys don't "
     "exist."},
    {"append", 3, CMD_WRITE | CMD_DENYOOM | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_append, 0,
     "string", "Appends a string to the value of a key. Creates the key if it doesn't exist."},
    {"strlen", 2, CMD_READONLY | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_strlen, 0, "string",
     "Returns the length of a string value."},
    {"getrange", 4, CMD_READONLY, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_getrange, 0, "string",
     "Returns a substring of the string stored at a key."},
    {"setrange", 4, CMD_WRITE | CMD_DENYOOM, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_setrange, 0, "string",
     "Overwrites a part of a string value with another by an offset."},
    {"incr", 2, CMD_WRITE | CMD_DENYOOM | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_incr, 0,
     "string", "Increments the integer value of a key by one."},
    {"decr", 2, CMD_WRITE | CMD_DENYOOM | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_decr, 0,
     "string", "Decrements the integer value of a key by one."},
    {"incrby", 3, CMD_WRITE | CMD_DENYOOM | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_incrby, 0,
     "string", "Increments the integer value of a key by a number."},
    {"decrby", 3, CMD_WRITE | CMD_DENYOOM | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_decrby, 0,
     "string", "Decrements a number from the integer value of a key."},
    {"incrbyfloat", 3, CMD_WRITE | CMD_DENYOOM | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0,
     cmd_incrbyfloat, 0, "string", "Increment the floating point value of a key by a number."},
    {"del", -2, CMD_WRITE, 1, -1, 1, CMD_ROUTE_EACH, 1, cmd_del, CMD_COMBINE_SUM, "generic",
     "Deletes one or more keys."},
    {"unlink", -2, CMD_WRITE | CMD_FAST, 1, -1, 1, CMD_ROUTE_EACH, 1, cmd_del, CMD_COMBINE_SUM,
     "generic", "Asynchronously deletes one or more keys."},
    {"exists", -2, CMD_READONLY | CMD_FAST, 1, -1, 1, CMD_ROUTE_EACH, 1, cmd_exists,
     CMD_COMBINE_SUM, "generic", "Determines whether one or more keys exist."},
    {"type", 2, CMD_READONLY | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_type, 0, "generic",
     "Determines the type of value stored at a key."},
    {"expire", -3, CMD_WRITE | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_expire, 0, "generic",
     "Sets the expiration time of a key in seconds."},
    {"pexpire", -3, CMD_WRITE | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_pexpire, 0, "generic",
     "Sets the expiration time of a key in milliseconds."},
    {"expireat", -3, CMD_WRITE | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_expireat, 0, "generic",
     "Sets the expiration time of a key to a Unix timestamp."},
    {"pexpireat", -3, CMD_WRITE | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_pexpireat, 0,
     "generic", "Sets the expiration time of a key to a Unix milliseconds timestamp."},
    {"ttl", 2, CMD_READONLY | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_ttl, 0, "generic",
     "Returns the expiration time in seconds of a key."},
    {"pttl", 2, CMD_READONLY | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_pttl, 0, "generic",
     "Returns the expiration time in milliseconds of a key."},
    {"persist", 2, CMD_WRITE | CMD_FAST, 1, 1, 1, CMD_ROUTE_KEY, 0, cmd_persist, 0, "generic",
     "Removes the expiration time of a key."},
    {"scan", -2, CMD_READONLY, 0, 0, 0, CMD_ROUTE_SCAN, 0, cmd_scan_shard, CMD_COMBINE_SCAN,
     "generic", "Iterates over the key names in the database."},
    {"keys", 2, CMD_READONLY, 0, 0, 0, CMD_ROUTE_ALL, 0, cmd_keys_shard, CMD_COMBINE_CONCAT,
     "generic", "Returns all key names that match a pattern."},
    {"randomkey", 1, CMD_READONLY, 0, 0, 0, CMD_ROUTE_ALL, 0, cmd_randomkey_shard,
     CMD_COMBINE_RANDOM, "generic", "Returns a random key name from the database."},
    {"dbsize", 1, CMD_READONLY | CMD_FAST, 0, 0, 0, CMD_ROUTE_ALL, 0, cmd_dbsize_shard,
     CMD_COMBINE_SUM, "server", "Returns the number of keys in the database."},
    {"flushall", -1, CMD_WRITE, 0, 0, 0, CMD_ROUTE_ALL, 0, cmd_flushall_shard, CMD_COMBINE_OK,
     "server", "Removes all keys from all databases."},
    {"flushdb", -1, CMD_WRITE, 0, 0, 0, CMD_ROUTE_ALL, 0, cmd_flushall_shard, CMD_COMBINE_OK,
     "server", "Remove all keys from the current database."},
    {"ping", -1, CMD_FAST, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_ping, 0, "connection",
     "Returns the server's liveliness response."},
    {"echo", 2, CMD_FAST, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_echo, 0, "connection",
     "Returns the given string."},
    {"quit", -1, CMD_NOAUTH | CMD_FAST, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_quit, 0, "connection",
     "Closes the connection."},
    {"select", 2, CMD_FAST, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_select, 0, "connection",
     "Changes the selected database."},
    {"hello", -1, CMD_NOAUTH | CMD_FAST, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_hello, 0, "connection",
     "Handshakes with the Redis server."},
    {"auth", -2, CMD_NOAUTH | CMD_FAST, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_auth, 0, "connection",
     "Authenticates the connection."},
    {"client", -2, 0, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_client, 0, "connection",
     "A container for client connection commands."},
    {"command", -1, 0, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_command, 0, "server",
     "Returns detailed information about all commands."},
    {"info", -1, 0, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_info, 0, "server",
     "Returns information and statistics about the server."},
    {"config", -2, 0, 0, 0, 0, CMD_ROUTE_CONN, 0, cmd_config, 0, "server",
     "A container for server configuration commands."},
};
#define CMD_COUNT (sizeof cmd_defs / sizeof cmd_defs[0])
_Static_assert(CMD_COUNT <= CMD_STATS_SUB_BASE, "a command's stats slot is its row");
_Static_assert(offsetof(struct cmd_msg, payload) % _Alignof(struct resp_arg) == 0,
               "a message's argv lives at the start of its payload");

static const struct cmd_def *cmd_index[CMD_INDEX_SIZE];

static uint32_t cmd_name_hash(const char *s, size_t n)
{
    return (uint32_t)keyhash(s, n);
}

void cmd_init(void)
{
    for (size_t i = 0; i < CMD_COUNT; i++) {
        uint32_t h = cmd_name_hash(cmd_defs[i].name, strlen(cmd_defs[i].name));
        while (cmd_index[h & (CMD_INDEX_SIZE - 1)])
            h++;
        cmd_index[h & (CMD_INDEX_SIZE - 1)] = &cmd_defs[i];
    }
}

const struct cmd_def *cmd_table(size_t *count)
{
    *count = CMD_COUNT;
    return cmd_defs;
}

const struct cmd_def *cmd_lookup(const char *name, size_t len)
{
    char lower[CMD_NAME_MAX];
    if (len == 0 || len >= CMD_NAME_MAX)
        return NULL;
    for (size_t i = 0; i < len; i++)
        lower[i] = (char)tolower((unsigned char)name[i]);
    for (uint32_t h = cmd_name_hash(lower, len);; h++) {
        const struct cmd_def *d = cmd_index[h & (CMD_INDEX_SIZE - 1)];
        if (!d)
            return NULL;
        if (strlen(d->name) == len && memcmp(d->name, lower, len) == 0)
            return d;
    }
}

static bool cmd_is_error(const struct buf *b);
static int64_t cmd_int_of(const struct buf *b);

/* Runs another handler for one key inside a handler, on the same shard. */
static void cmd_run_here_ctx(const struct cmd_ctx *c, cmd_handler *h, struct resp_arg *argv,
                             uint32_t argc, struct buf *out)
{
    struct cmd_ctx sub = *c;
    sub.argv = argv;
    sub.argc = argc;
    sub.hash = keyhash(argv[1].ptr, argv[1].len);
    sub.out = out;
    h(&sub);
}

/* Runs a handler on this shard, replying into out. */
static void cmd_run_here(struct shard *sh, struct conn *c, cmd_handler *h, int proto,
                         struct resp_arg *argv, uint32_t argc, uint64_t hash,
                         const struct mc_request *mc, struct buf *out)
{
    struct cmd_ctx ctx = {.store = sh->store, .node = sh->node, .out = out, .conn = c,
                          .shard_id = sh->id, .proto = proto, .argc = argc, .argv = argv,
                          .hash = hash, .mc = mc};
    struct cmd_stats_shard *stats = cmd_stats_of(sh->node, sh->id);
    uint64_t t0 = cmd_stats_start(stats);
    h(&ctx);
    cmd_stats_ran(stats, t0);
}

/* Copies a request into a message for another shard. NULL on out of memory. */
static struct cmd_msg *cmd_msg_new(struct shard *sh, struct conn *c, struct conn_pending *p,
                                   uint32_t sub, cmd_handler *h, struct resp_arg *argv,
                                   uint32_t argc, uint64_t hash, const struct mc_request *mc,
                                   bool keyless)
{
    size_t bytes = argc * sizeof(struct resp_arg);
    for (uint32_t i = 0; i < argc; i++)
        bytes += argv[i].len;
    uint32_t mc_key_len = mc && mc->nkeys ? mc->keys[0].len : 0;
    if (mc)
        bytes += mc_key_len + mc->data_len;
    struct cmd_msg *m = mi_malloc(sizeof *m + bytes);
    if (!m)
        return NULL;
    m->handler = h;
    m->conn = c;
    m->pending = p;
    m->sub = sub;
    m->origin = sh->id;
    m->proto = c->resp_version;
    m->hash = hash;
    m->argc = argc;
    m->argv = (struct resp_arg *)m->payload;
    char *data = m->payload + argc * sizeof(struct resp_arg);
    for (uint32_t i = 0; i < argc; i++) {
        memcpy(data, argv[i].ptr, argv[i].len);
        m->argv[i].ptr = data;
        m->argv[i].len = argv[i].len;
        data += argv[i].len;
    }
    m->is_mc = mc != NULL;
    m->keyless = keyless;
    m->stat_slot = cmd_stats_msg_slot(cmd_stats_of(sh->node, sh->id));
    if (mc) {
        m->mc = *mc;
        if (mc_key_len)
            memcpy(data, mc->keys[0].ptr, mc_key_len);
        m->mc_key.ptr = data;
        m->mc_key.len = mc_key_len;
        data += mc_key_len;
        m->mc.keys = &m->mc_key;
        m->mc.nkeys = mc->nkeys ? 1 : 0;
        if (mc->data_len)
            memcpy(data, mc->data, mc->data_len);
        m->mc.data = data;
        m->mc.stats_arg = NULL;
    }
    buf_init(&m->reply);
    return m;
}

/* Values beyond RAM: whether a request on this shard may run now, or must
 * wait for a value read back from disk (tier.h). Pins its key meanwhile. */
static bool cmd_may_run_here(struct shard *sh, cmd_handler *h, struct resp_arg *argv,
                             uint32_t argc, uint64_t hash, const struct mc_request *mc,
                             bool keyless)
{
    if (!sh->tier)
        return true;
    const char *key = "";
    uint32_t klen = 0;
    if (mc && mc->nkeys) {
        key = mc->keys[0].ptr;
        klen = mc->keys[0].len;
    } else if (!mc && argc > 1) {
        key = argv[1].ptr;
        klen = argv[1].len;
    }
    return tier_may_run(sh, h, hash, key, klen, keyless, argv, argc);
}

static void cmd_unpin(struct shard *sh)
{
    if (sh->tier)
        store_pin(sh->store, NULL);
}

/* Runs sub-request `sub` of p on the shard owning `hash` (or on shard
 * `target` for all-shard commands, `keyless`): inline when that is this
 * shard, unless it must wait for a value on disk. */
static void cmd_route_sub(struct shard *sh, struct conn *c, struct conn_pending *p, uint32_t sub,
                          uint32_t target, cmd_handler *h, struct resp_arg *argv, uint32_t argc,
                          uint64_t hash, const struct mc_request *mc, bool keyless)
{
    bool here = target == sh->id;
    if (here && cmd_may_run_here(sh, h, argv, argc, hash, mc, keyless)) {
        cmd_run_here(sh, NULL, h, c->resp_version, argv, argc, hash, mc, &p->subs[sub]);
        cmd_unpin(sh);
        p->ndone++;
        return;
    }
    struct cmd_msg *m = cmd_msg_new(sh, c, p, sub, h, argv, argc, hash, mc, keyless);
    if (!m) {
        resp_write_error(&p->subs[sub], "OOM out of memory");
        p->ndone++;
        return;
    }
    c->inflight++;
    if (here) { /* comes back through shard_reply(), to this shard */
        m->target = sh->id;
        tier_wait(sh, m);
        return;
    }
    SHARD_STAT_ADD(sh, cross_shard_requests, 1);
    shard_send(sh, target, m);
}

/* A single-key request: inline on the owner, or one message to it. */
static void cmd_route_key(struct shard *sh, struct conn *c, cmd_handler *h, struct resp_arg *argv,
                          uint32_t argc, uint64_t hash, const struct mc_request *mc)
{
    uint32_t owner = node_shard_of(sh->node, hash);
    if (owner == sh->id && cmd_may_run_here(sh, h, argv, argc, hash, mc, false)) {
        cmd_run_here(sh, NULL, h, c->resp_version, argv, argc, hash, mc, conn_reply_buf(c));
        cmd_unpin(sh);
        return;
    }
    struct conn_pending *p = conn_pending_add(c, 1, CMD_COMBINE_ONE);
    if (!p) {
        resp_write_error(conn_reply_buf(c), "OOM out of memory");
        return;
    }
    cmd_route_sub(sh, c, p, 0, owner, h, argv, argc, hash, mc, false);
}

/* Splits argv[1..] into groups of `step` arguments, one sub-request each. */
static void cmd_route_each(struct shard *sh, struct conn *c, const struct cmd_def *d,
                           struct conn_pending *p, cmd_handler *h, struct resp_arg *argv,
                           uint32_t argc)
{
    uint32_t step = d->split_step;
    for (uint32_t i = 1, sub = 0; i + step - 1 < argc; i += step, sub++) {
        struct resp_arg one[3] = {argv[0], argv[i], step == 2 ? argv[i + 1] : argv[0]};
        uint64_t hash = keyhash(argv[i].ptr, argv[i].len);
        cmd_route_sub(sh, c, p, sub, node_shard_of(sh->node, hash), h, one, 1 + step, hash, NULL,
                      false);
    }
}

void cmd_broadcast(struct cmd_ctx *ctx, cmd_handler *h, enum cmd_combine combine)
{
    cmd_broadcast_with(ctx, h, combine, NULL, 0);
}

void cmd_broadcast_with(struct cmd_ctx *ctx, cmd_handler *h, enum cmd_combine combine,
                        const void *extra, size_t n)
{
    struct conn *c = ctx->conn;
    struct shard *sh = c->shard;
    /* The extra bytes ride as one more sub-reply, ready from the start. */
    uint32_t nshards = sh->node->nshards;
    struct conn_pending *p = conn_pending_add(c, nshards + (n ? 1 : 0), combine);
    if (!p) {
        resp_write_error(conn_reply_buf(c), "OOM out of memory");
        return;
    }
    if (n) {
        buf_append(&p->subs[nshards], extra, n);
        p->ndone = 1;
        p->aux = 1;
    }
    for (uint32_t s = 0; s < sh->node->nshards; s++)
        cmd_route_sub(sh, c, p, s, s, h, ctx->argv, ctx->argc, 0, NULL, true);
    conn_pending_advance(c);
}

/* The first shard from `from` on that holds keys (nshards if none). A shard
 * that is empty now holds no key that is present throughout a SCAN, so
 * skipping it keeps SCAN's guarantee. Reads other shards' counts (relaxed
 * atomic loads, store.h). */
static uint32_t cmd_scan_next_shard(const struct node *n, uint32_t from)
{
    while (from < n->nshards && store_count(n->shards[from]->store) == 0)
        from++;
    return from;
}

/* SCAN: the cursor's top byte names the shard, the rest is that shard's
 * table cursor shifted right by 8 (table cursors are multiples of 256). */
static void cmd_route_scan(struct shard *sh, struct conn *c, struct resp_arg *argv, uint32_t argc)
{
    char text[24];
    uint64_t cursor = 0;
    if (argv[1].len == 0 || argv[1].len >= sizeof text) {
        resp_write_error(conn_reply_buf(c), "ERR invalid cursor");
        return;
    }
    memcpy(text, argv[1].ptr, argv[1].len);
    text[argv[1].len] = '\0';
    char *end;
    errno = 0;
    cursor = strtoull(text, &end, 10);
    if (errno || *end || text[0] == '-') {
        resp_write_error(conn_reply_buf(c), "ERR invalid cursor");
        return;
    }
    uint32_t shard = (uint32_t)(cursor >> 56);
    uint64_t pos = (cursor & ((1ULL << 56) - 1)) << 8;
    if (shard >= sh->node->nshards) {
        shard = 0;
        pos = 0;
    }
    if (pos == 0)
        shard = cmd_scan_next_shard(sh->node, shard);
    if (shard >= sh->node->nshards)
        shard = 0; /* every shard is empty: shard 0 still checks the options */
    char pos_text[24];
    int n = snprintf(pos_text, sizeof pos_text, "%" PRIu64, pos);
    struct resp_arg saved = argv[1];
    argv[1].ptr = pos_text;
    argv[1].len = (uint32_t)n;
    struct conn_pending *p = conn_pending_add(c, 1, CMD_COMBINE_SCAN);
    if (!p) {
        argv[1] = saved;
        resp_write_error(conn_reply_buf(c), "OOM out of memory");
        return;
    }
    p->aux = shard;
    cmd_route_sub(sh, c, p, 0, shard, cmd_scan_shard, argv, argc, 0, NULL, true);
    argv[1] = saved;
    conn_pending_advance(c);
}

/* MSETNX: atomic where every key lives on one shard; else two phases. */
static void cmd_route_msetnx(struct shard *sh, struct conn *c, struct resp_arg *argv,
                             uint32_t argc)
{
    if (argc % 2 == 0) {
        resp_write_error(conn_reply_buf(c), "ERR wrong number of arguments for 'msetnx' command");
        return;
    }
    uint32_t first = node_shard_of(sh->node, keyhash(argv[1].ptr, argv[1].len));
    bool one_shard = true;
    for (uint32_t i = 3; i < argc && one_shard; i += 2)
        one_shard = node_shard_of(sh->node, keyhash(argv[i].ptr, argv[i].len)) == first;
    if (one_shard) {
        uint64_t hash = keyhash(argv[1].ptr, argv[1].len);
        cmd_route_key(sh, c, cmd_msetnx_shard, argv, argc, hash, NULL);
        return;
    }
    uint32_t nkeys = (argc - 1) / 2;
    struct conn_pending *p = conn_pending_add(c, nkeys, CMD_COMBINE_MSETNX);
    if (!p) {
        resp_write_error(conn_reply_buf(c), "OOM out of memory");
        return;
    }
    /* Keep the arguments for the second phase in p->one (unused when nsub > 1). */
    for (uint32_t i = 0; i < argc; i++) {
        uint32_t len = argv[i].len;
        buf_append(&p->one, &len, sizeof len);
        buf_append(&p->one, argv[i].ptr, len);
    }
    for (uint32_t i = 1, sub = 0; i < argc; i += 2, sub++) {
        struct resp_arg one[2] = {argv[0], argv[i]};
        uint64_t hash = keyhash(argv[i].ptr, argv[i].len);
        cmd_route_sub(sh, c, p, sub, node_shard_of(sh->node, hash), cmd_exists, one, 2, hash,
                      NULL, false);
    }
    conn_pending_advance(c);
}

static bool cmd_key_too_large(struct shard *sh, struct conn *c, const struct cmd_def *d,
                              struct resp_arg *argv, uint32_t argc)
{
    if (d->first_key <= 0)
        return false;
    int64_t max = sh->node->cfg->max_key_size;
    int last = d->last_key < 0 ? (int)argc + d->last_key : d->last_key;
    for (int i = d->first_key; i <= last && i < (int)argc; i += d->key_step) {
        if (argv[i].len > max) {
            resp_write_error(conn_reply_buf(c), "ERR key too large (see max-key-size)");
            return true;
        }
    }
    return false;
}

static void cmd_unknown(struct conn *c, struct resp_arg *argv, uint32_t argc)
{
    struct buf *out = conn_reply_buf(c);
    char msg[512];
    int n = snprintf(msg, sizeof msg, "ERR unknown command '%.*s', with args beginning with: ",
                     argv[0].len > 128 ? 128 : (int)argv[0].len, argv[0].ptr);
    for (uint32_t i = 1; i < argc && n < (int)sizeof msg - 140; i++)
        n += snprintf(msg + n, sizeof msg - (size_t)n, "'%.*s' ",
                      argv[i].len > 128 ? 128 : (int)argv[i].len, argv[i].ptr);
    for (char *p = msg; *p; p++) /* an error line must stay one line */
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    resp_write_error(out, msg);
}

static void cmd_dispatch_def(struct shard *sh, struct conn *c, const struct cmd_def *d,
                             struct resp_arg *argv, uint32_t argc)
{
    if (!d) {
        cmd_unknown(c, argv, argc);
        return;
    }
    if (!c->authenticated && !(d->flags & CMD_NOAUTH)) {
        resp_write_error(conn_reply_buf(c), "NOAUTH Authentication required.");
        return;
    }
    if ((d->arity > 0 && argc != (uint32_t)d->arity) ||
        (d->arity < 0 && argc < (uint32_t)-d->arity)) {
        char msg[96];
        snprintf(msg, sizeof msg, "ERR wrong number of arguments for '%s' command", d->name);
        resp_write_error(conn_reply_buf(c), msg);
        return;
    }
    c->last_cmd = d->name;
    if (cmd_key_too_large(sh, c, d, argv, argc))
        return;
    if ((d->flags & CMD_WRITE) && persist_refuse_resp(sh->node, conn_reply_buf(c)))
        return; /* MISCONF: the data log cannot persist */
    cmd_stats_admit(cmd_stats_of(sh->node, sh->id));
    struct conn_pending *p;
    switch (d->route) {
    case CMD_ROUTE_CONN:
        cmd_run_here(sh, c, d->handler, c->resp_version, argv, argc, 0, NULL, conn_reply_buf(c));
        return;
    case CMD_ROUTE_KEY:
        cmd_route_key(sh, c, d->handler, argv, argc, keyhash(argv[1].ptr, argv[1].len), NULL);
        return;
    case CMD_ROUTE_EACH:
        if ((argc - 1) % d->split_step != 0) {
            char msg[96];
            snprintf(msg, sizeof msg, "ERR wrong number of arguments for '%s' command", d->name);
            resp_write_error(conn_reply_buf(c), msg);
            return;
        }
        p = conn_pending_add(c, (argc - 1) / d->split_step, d->combine);
        if (!p) {
            resp_write_error(conn_reply_buf(c), "OOM out of memory");
            return;
        }
        cmd_route_each(sh, c, d, p, d->handler, argv, argc);
        conn_pending_advance(c);
        return;
    case CMD_ROUTE_ALL: {
        struct cmd_ctx ctx = {.conn = c, .argv = argv, .argc = argc, .out = NULL};
        cmd_broadcast(&ctx, d->handler, d->combine);
        return;
    }
    case CMD_ROUTE_SCAN:
        cmd_route_scan(sh, c, argv, argc);
        return;
    case CMD_ROUTE_MSETNX:
        cmd_route_msetnx(sh, c, argv, argc);
        return;
    }
}

void cmd_dispatch_resp(struct shard *sh, struct conn *c, struct resp_arg *argv, uint32_t argc)
{
    SHARD_STAT_ADD(sh, total_commands_processed, 1);
    const struct cmd_def *d = cmd_lookup(argv[0].ptr, argv[0].len);
    struct cmd_stats_shard *stats = cmd_stats_of(sh->node, sh->id);
    cmd_stats_begin(stats, c, d ? (int32_t)(d - cmd_defs) : -1);
    cmd_dispatch_def(sh, c, d, argv, argc);
    cmd_stats_end(stats, c);
}

/* MSETNX when every key lives on this shard: atomic, as in Redis. */
void cmd_msetnx_shard(struct cmd_ctx *c)
{
    struct buf scratch;
    buf_init(&scratch);
    struct resp_arg exists[2] = {{"EXISTS", 6}, {0}};
    for (uint32_t i = 1; i < c->argc; i += 2) {
        exists[1] = c->argv[i];
        buf_clear(&scratch);
        cmd_run_here_ctx(c, cmd_exists, exists, 2, &scratch);
        if (cmd_int_of(&scratch) > 0) {
            buf_fini(&scratch);
            resp_write_int(c->out, 0);
            return;
        }
    }
    for (uint32_t i = 1; i < c->argc; i += 2) {
        struct resp_arg set[3] = {{"SET", 3}, c->argv[i], c->argv[i + 1]};
        buf_clear(&scratch);
        cmd_run_here_ctx(c, cmd_set, set, 3, &scratch);
        if (cmd_is_error(&scratch)) {
            buf_append(c->out, scratch.data, scratch.len);
            buf_fini(&scratch);
            return;
        }
    }
    buf_fini(&scratch);
    resp_write_int(c->out, 1);
}

/* ---- memcached ---- */

static cmd_handler *const cmd_mc_handlers[MC_CMD_COUNT] = {
    [MC_GET] = cmd_mc_get,         [MC_GETS] = cmd_mc_gets,     [MC_GAT] = cmd_mc_gat,
    [MC_GATS] = cmd_mc_gats,       [MC_SET] = cmd_mc_set,       [MC_ADD] = cmd_mc_add,
    [MC_REPLACE] = cmd_mc_replace, [MC_APPEND] = cmd_mc_append, [MC_PREPEND] = cmd_mc_prepend,
    [MC_CAS] = cmd_mc_cas,         [MC_DELETE] = cmd_mc_delete, [MC_TOUCH] = cmd_mc_touch,
    [MC_INCR] = cmd_mc_incr,       [MC_DECR] = cmd_mc_decr,
};

void cmd_dispatch_mc(struct shard *sh, struct conn *c, struct mc_request *req)
{
    SHARD_STAT_ADD(sh, total_commands_processed, 1);
    c->last_cmd = mc_cmd_name(req->cmd);
    if (persist_refuse_mc(sh->node, req, conn_reply_buf(c)))
        return; /* the data log cannot persist */
    struct conn_pending *p;
    switch (req->cmd) {
    case MC_GET:
    case MC_GETS:
    case MC_GAT:
    case MC_GATS:
        p = conn_pending_add(c, req->nkeys, CMD_COMBINE_MC_END);
        if (!p) {
            buf_append_str(conn_reply_buf(c), "SERVER_ERROR out of memory\r\n");
            return;
        }
        for (uint32_t i = 0; i < req->nkeys; i++) {
            struct mc_request one = *req;
            one.keys = &req->keys[i];
            one.nkeys = 1;
            uint64_t hash = keyhash(one.keys[0].ptr, one.keys[0].len);
            cmd_route_sub(sh, c, p, i, node_shard_of(sh->node, hash), cmd_mc_handlers[req->cmd],
                          NULL, 0, hash, &one, false);
        }
        conn_pending_advance(c);
        return;
    case MC_FLUSH_ALL: {
        p = conn_pending_add(c, sh->node->nshards, CMD_COMBINE_MC_OK);
        if (!p) {
            buf_append_str(conn_reply_buf(c), "SERVER_ERROR out of memory\r\n");
            return;
        }
        p->aux = req->noreply;
        for (uint32_t s = 0; s < sh->node->nshards; s++)
            cmd_route_sub(sh, c, p, s, s, cmd_mc_flush_all_shard, NULL, 0, 0, req, true);
        conn_pending_advance(c);
        return;
    }
    case MC_STATS:
    case MC_VERSION:
    case MC_VERBOSITY:
    case MC_QUIT:
    case MC_MN:
        cmd_run_here(sh, c, cmd_mc_conn, 2, NULL, 0, 0, req, conn_reply_buf(c));
        return;
    default:
        cmd_route_key(sh, c, cmd_mc_handlers[req->cmd], NULL, 0,
                      keyhash(req->keys[0].ptr, req->keys[0].len), req);
        return;
    }
}

/* ---- messages ---- */

void cmd_msg_run(struct shard *sh, struct cmd_msg *m)
{
    struct cmd_stats_shard *stats = cmd_stats_of(sh->node, sh->id);
    int32_t was = cmd_stats_enter(stats, m->stat_slot);
    cmd_run_here(sh, NULL, m->handler, m->proto, m->argv, m->argc, m->hash,
                 m->is_mc ? &m->mc : NULL, &m->reply);
    cmd_stats_leave(stats, was);
    shard_reply(sh, m);
}

void cmd_msg_execute(struct shard *sh, struct cmd_msg *m)
{
    if (cmd_may_run_here(sh, m->handler, m->argv, m->argc, m->hash, m->is_mc ? &m->mc : NULL,
                         m->keyless)) {
        cmd_msg_run(sh, m);
        cmd_unpin(sh);
        return;
    }
    tier_wait(sh, m);
}

void cmd_msg_complete(struct shard *sh, struct cmd_msg *m)
{
    struct conn *c = m->conn;
    struct conn_pending *p = m->pending;
    p->subs[m->sub] = m->reply; /* the reply's memory moves to the pending item */
    p->ndone++;
    c->inflight--;
    mi_free(m);
    conn_pending_advance(c);
}

/* ---- combiners ---- */

static bool cmd_is_error(const struct buf *b) { return b->len > 0 && b->data[0] == '-'; }

static bool cmd_is_null(const struct buf *b)
{
    return b->len == 0 || (b->len >= 3 && (b->data[0] == '_' || memcmp(b->data, "$-1", 3) == 0));
}

/* The integer of a ":n\r\n" reply. */
static int64_t cmd_int_of(const struct buf *b)
{
    return b->len > 1 && b->data[0] == ':' ? strtoll(b->data + 1, NULL, 10) : 0;
}

/* Where the body after a header line ("*n\r\n", "$n\r\n") starts, and the
 * header's number. */
static size_t cmd_header_of(const struct buf *b, int64_t *count)
{
    const char *nl = b->len ? memchr(b->data, '\n', b->len) : NULL;
    if (!nl) {
        *count = 0;
        return b->len;
    }
    *count = strtoll(b->data + 1, NULL, 10);
    return (size_t)(nl - b->data) + 1;
}

static const struct buf *cmd_first_error(const struct conn_pending *p)
{
    for (uint32_t i = 0; i < p->nsub; i++)
        if (cmd_is_error(&p->subs[i]))
            return &p->subs[i];
    return NULL;
}

static uint64_t cmd_rng_state = 0x9e3779b97f4a7c15ULL;
static _Thread_local uint64_t cmd_rng = 0;

static uint64_t cmd_random(void)
{
    if (!cmd_rng)
        cmd_rng = cmd_rng_state ^ (uint64_t)(uintptr_t)&cmd_rng;
    cmd_rng ^= cmd_rng << 13;
    cmd_rng ^= cmd_rng >> 7;
    cmd_rng ^= cmd_rng << 17;
    return cmd_rng;
}

static void cmd_combine_scan(struct conn *c, struct conn_pending *p, struct buf *out,
                             uint32_t nshards)
{
    const struct buf *b = &p->subs[0];
    /* "*2\r\n$n\r\n<cursor>\r\n*k\r\n..." */
    const char *s = b->data, *end = b->data + b->len;
    const char *l1 = memchr(s, '\n', b->len);
    const char *l2 = l1 ? memchr(l1 + 1, '\n', (size_t)(end - l1 - 1)) : NULL;
    const char *l3 = l2 ? memchr(l2 + 1, '\n', (size_t)(end - l2 - 1)) : NULL;
    if (!l3) {
        buf_append(out, b->data, b->len);
        return;
    }
    uint64_t next = strtoull(l2 + 1, NULL, 10);
    uint64_t shard = (uint64_t)p->aux, cursor;
    if (next != 0) {
        cursor = (shard << 56) | (next >> 8);
    } else {
        uint64_t following = cmd_scan_next_shard(c->shard->node, (uint32_t)shard + 1);
        cursor = following < nshards ? following << 56 : 0;
    }
    char text[24];
    int n = snprintf(text, sizeof text, "%" PRIu64, cursor);
    resp_write_array_len(out, 2);
    resp_write_bulk(out, text, (size_t)n);
    buf_append(out, l3 + 1, (size_t)(end - l3 - 1));
}

/* CLIENT LIST: every shard's lines ("id=N ...\n") as one string, or with
 * ids (the extra sub-reply, p->aux set) the lines of those ids in that
 * order, as Redis gives them. */
static void cmd_combine_lines(struct conn *c, struct conn_pending *p, struct buf *out)
{
    uint32_t nparts = p->aux ? p->nsub - 1 : p->nsub;
    struct buf all;
    buf_init(&all);
    int64_t count;
    if (!p->aux) {
        for (uint32_t i = 0; i < nparts; i++) {
            size_t at = cmd_header_of(&p->subs[i], &count); /* "$n\r\n" header */
            buf_append(&all, p->subs[i].data + at, p->subs[i].len - at - 2);
        }
    } else {
        const struct buf *ids = &p->subs[nparts];
        for (size_t k = 0; k + sizeof(int64_t) <= ids->len; k += sizeof(int64_t)) {
            int64_t id;
            memcpy(&id, ids->data + k, sizeof id);
            char want[32];
            int wn = snprintf(want, sizeof want, "id=%" PRId64 " ", id);
            for (uint32_t i = 0; i < nparts; i++) {
                size_t at = cmd_header_of(&p->subs[i], &count);
                const char *s = p->subs[i].data + at, *end = p->subs[i].data + p->subs[i].len - 2;
                while (s < end) {
                    const char *nl = memchr(s, '\n', (size_t)(end - s));
                    const char *stop = nl ? nl + 1 : end;
                    if (stop - s > wn && memcmp(s, want, (size_t)wn) == 0) {
                        buf_append(&all, s, (size_t)(stop - s));
                        i = nparts; /* one line per id asked */
                        break;
                    }
                    s = stop;
                }
            }
        }
    }
    resp_write_verbatim(out, c->resp_version, all.data ? all.data : "", all.len);
    buf_fini(&all);
}

/* Second phase of a cross-shard MSETNX: set every key. */
static void cmd_msetnx_phase2(struct conn *c, struct conn_pending *p)
{
    struct shard *sh = c->shard;
    uint32_t argc = 0;
    struct resp_arg argv[3];
    struct resp_arg name = {"SET", 3};
    const char *s = p->one.data, *end = p->one.data + p->one.len;
    /* skip the command name, then walk key/value pairs */
    uint32_t len;
    memcpy(&len, s, sizeof len);
    s += sizeof len + len;
    for (uint32_t sub = 0; s < end; sub++) {
        for (argc = 1; argc < 3; argc++) {
            memcpy(&len, s, sizeof len);
            argv[argc].ptr = s + sizeof len;
            argv[argc].len = len;
            s += sizeof len + len;
        }
        argv[0] = name;
        buf_clear(&p->subs[sub]);
        uint64_t hash = keyhash(argv[1].ptr, argv[1].len);
        cmd_route_sub(sh, c, p, sub, node_shard_of(sh->node, hash), cmd_set, argv, 3, hash, NULL,
                      false);
    }
}

static void cmd_combine_into(struct conn *c, struct conn_pending *p, struct buf *out)
{
    const struct buf *err = cmd_first_error(p);
    int64_t count = 0, total = 0;
    switch (p->combine) {
    case CMD_COMBINE_ONE:
        buf_append(out, p->subs[0].data, p->subs[0].len);
        return;
    case CMD_COMBINE_ARRAY:
        resp_write_array_len(out, p->nsub);
        for (uint32_t i = 0; i < p->nsub; i++)
            buf_append(out, p->subs[i].data, p->subs[i].len);
        return;
    case CMD_COMBINE_SUM:
        if (err) {
            buf_append(out, err->data, err->len);
            return;
        }
        for (uint32_t i = 0; i < p->nsub; i++)
            total += cmd_int_of(&p->subs[i]);
        resp_write_int(out, total);
        return;
    case CMD_COMBINE_OK:
        if (err)
            buf_append(out, err->data, err->len);
        else
            resp_write_ok(out);
        return;
    case CMD_COMBINE_CONCAT:
        if (err) {
            buf_append(out, err->data, err->len);
            return;
        }
        for (uint32_t i = 0; i < p->nsub; i++) {
            cmd_header_of(&p->subs[i], &count);
            total += count;
        }
        resp_write_array_len(out, (size_t)total);
        for (uint32_t i = 0; i < p->nsub; i++) {
            size_t at = cmd_header_of(&p->subs[i], &count);
            buf_append(out, p->subs[i].data + at, p->subs[i].len - at);
        }
        return;
    case CMD_COMBINE_RANDOM: {
        uint32_t live = 0, pick;
        for (uint32_t i = 0; i < p->nsub; i++)
            live += !cmd_is_null(&p->subs[i]);
        if (live == 0) {
            resp_write_null(out, c->resp_version);
            return;
        }
        pick = (uint32_t)(cmd_random() % live);
        for (uint32_t i = 0; i < p->nsub; i++)
            if (!cmd_is_null(&p->subs[i]) && pick-- == 0)
                buf_append(out, p->subs[i].data, p->subs[i].len);
        return;
    }
    case CMD_COMBINE_SCAN:
        cmd_combine_scan(c, p, out, c->shard->node->nshards);
        return;
    case CMD_COMBINE_MSETNX:
        if (err) {
            buf_append(out, err->data, err->len);
            return;
        }
        for (uint32_t i = 0; i < p->nsub; i++)
            total += cmd_int_of(&p->subs[i]);
        if (total > 0) {
            resp_write_int(out, 0);
            return;
        }
        p->combine = CMD_COMBINE_MSETNX_DONE;
        p->ndone = 0;
        cmd_msetnx_phase2(c, p);
        return;
    case CMD_COMBINE_MSETNX_DONE:
        if (err)
            buf_append(out, err->data, err->len);
        else
            resp_write_int(out, 1);
        return;
    case CMD_COMBINE_BULK:
        cmd_combine_lines(c, p, out);
        return;
    case CMD_COMBINE_KILLED:
        for (uint32_t i = 0; i < p->nsub; i++)
            total += cmd_int_of(&p->subs[i]);
        if (err)
            buf_append(out, err->data, err->len);
        else if (total)
            resp_write_ok(out);
        else
            resp_write_error(out, "ERR No such client");
        return;
    case CMD_COMBINE_MC_END:
        for (uint32_t i = 0; i < p->nsub; i++)
            buf_append(out, p->subs[i].data, p->subs[i].len);
        buf_append_str(out, "END\r\n");
        return;
    case CMD_COMBINE_MC_OK:
        if (!p->aux)
            buf_append_str(out, "OK\r\n");
        return;
    }
}

void cmd_combine(struct conn *c, struct conn_pending *p, struct buf *out)
{
    struct cmd_stats_shard *stats = cmd_stats_of(c->shard->node, c->shard->id);
    size_t at = out->len;
    int32_t was = cmd_stats_combine_begin(stats, p);
    cmd_combine_into(c, p, out);
    cmd_stats_combine_end(stats, c, p, out, at, was);
}
