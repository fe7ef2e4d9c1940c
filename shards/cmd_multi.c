/* cmd_multi.c: MULTI, EXEC, DISCARD, WATCH, UNWATCH (Redis 7's behaviour,
 * with Redis Cluster's one-slot rule).
 * State lives on the connection (net/conn.h multi_* fields), owned by its
 * shard: multi_flags (CMD_MULTI_* below), multi_slot (the hash slot of every
 * key seen, watched or queued; -1 while none), the queue and the watches.
 *
 * Queueing: while in MULTI, the dispatcher (cmd.c) first checks a request as
 * always (unknown command, arity, NOAUTH, key size, MISCONF); a refusal
 * there flags the transaction (cmd_multi_flag), so EXEC answers -EXECABORT.
 * A checked request is queued (+QUEUED) unless it runs at once (EXEC,
 * DISCARD, MULTI: nested error, WATCH: error, QUIT) or may not be in a
 * transaction here: commands that run on every shard (KEYS, SCAN, DBSIZE,
 * RANDOMKEY, FLUSHALL, FLUSHDB) and connection commands other than PING and
 * ECHO (which need no connection and run on the slot's shard) get "Command
 * not allowed inside a transaction"; UNWATCH is queued and answers +OK; a
 * key of another slot than the transaction's gets -CROSSSLOT; past
 * max-request-args commands or client-query-buffer-limit bytes the request
 * is refused. Each refusal flags the transaction. A flagged transaction
 * stores nothing more (its EXEC can only abort).
 * Queue encoding: per command a u32 argc, then per argument a u32 length
 * and its bytes. Watch encoding: per key a u32 length, the key, a u8 kind
 * (enum multi_watch_kind) and what it says: one node's entry cas and
 * expire_ms, or a cluster's replicated state meta (a u32 length and the
 * bytes). Host order: they leave the process only in a FORWARD to a peer
 * of the same build (the cluster's nodes share one byte order).
 *
 * WATCH reads, on the key's shard, what each key is now: absent, or its
 * entry's cas (new on every write) and expiry (EXPIRE and PERSIST keep the
 * cas). EXEC compares on the same shard, in the same message that runs the
 * queue: a key that appeared, vanished (deleted, expired, flushed) or whose
 * cas or expiry moved means "changed", and EXEC answers a null array. A key
 * expired at WATCH counts as absent then (the lookup removes it), so its
 * staying absent is no change, as in Redis. The check costs one lookup per
 * key and no state on the shard; an EXPIRE to the same time is not seen.
 *
 * EXEC: one message to the shard owning the slot (the connection's own shard
 * for a keyless transaction), with the watches and the queue as arguments;
 * that shard runs every command back to back inside one handler, so nothing
 * interleaves, and the reply is the array of their replies (a command's own
 * error is its element, as in Redis). The reply waits, with appendfsync
 * always, for the records it wrote, or for every record of the shard when
 * it only read (the handler reports hash 0). The connection reads nothing
 * more until EXEC (or WATCH) is answered (cmd_send charges it), so its next
 * command sees the transaction's effects.
 * Values beyond RAM (tier.h): the message asks the tier for the value of the
 * transaction's first value-reading key; a value-reading command that meets
 * another cold key is answered -TRYAGAIN (before anything ran: the whole
 * EXEC; later, when the transaction's own writes made room by cooling it:
 * that command), and each such value is read back for the retry.
 *
 * In a cluster (coord.h) EXEC's message (flags CMD_RMW) goes to the slot's
 * first live replica, forwarded from any other node as "EXEC key watches
 * queue" (a form only FORWARD carries, coord.c, which checks it first with
 * cmd_multi_forward_ok: a peer's queue is trusted no more than a client's);
 * its coordinator quorum-reads every key cmd_multi_keys() lists (at most
 * 256: past that it stops listing and refuses), runs cmd_multi_exec_shard
 * there, and versions and replicates every key it changed (coord.c,
 * transactions).
 * WATCH then records each key's replicated state (its meta, replica.h: the
 * causal context, the same bytes on every replica holding the same
 * versions) after a quorum read on this node, so EXEC can compare it on
 * another replica; a key whose versions moved (a write at any node, an
 * expiry change, a merge of a sibling this node had not seen) aborts. WATCH
 * at a node holding no replica of the slot is refused (-MOVED for a
 * cluster-aware client): the state it would record lives elsewhere.
 *
 * Threads: the connection's shard for the connection handlers; the slot's
 * shard for the _shard handlers. */
#include "cmd_multi.h"

#include <errno.h>
#include <mimalloc.h>
#include <stdio.h>
#include <string.h>

#include "cmd_server.h"
#include "cmd_stats.h"
#include "conn.h"
#include "coord.h"
#include "keyhash.h"
#include "node.h"
#include "persist.h"
#include "replica.h"
#include "shard.h"
#include "store.h"
#include "table.h"

#define CMD_MULTI_ON 1u              /* between MULTI and EXEC or DISCARD */
#define CMD_MULTI_DIRTY 2u           /* a request was refused meanwhile: EXECABORT */
#define CMD_MULTI_WATCH_CROSSSLOT 4u /* watched keys of two slots: EXEC answers CROSSSLOT */
#define CMD_MULTI_WRITES 8u          /* a queued command changes data (MISCONF at EXEC) */

/* EXEC's message carries the queue as one argument (32-bit lengths). */
#define MULTI_MAX_BYTES (UINT32_MAX / 2)

static const char multi_crossslot[] = CMD_ERR_CROSSSLOT;
static const char multi_tryagain[] =
    "TRYAGAIN a value the transaction reads is on disk only; retry the transaction";

/* ---- encoding ---- */

static void multi_put_u32(struct buf *b, uint32_t v)
{
    buf_append(b, &v, sizeof v);
}

/* A cursor over an encoded queue or watch list. */
struct multi_cursor {
    const char *p, *end;
};

static bool multi_get(struct multi_cursor *cur, void *out, size_t n)
{
    if ((size_t)(cur->end - cur->p) < n)
        return false;
    memcpy(out, cur->p, n);
    cur->p += n;
    return true;
}

/* The next length-prefixed string, pointing into the encoding. */
static bool multi_get_str(struct multi_cursor *cur, struct resp_arg *a)
{
    uint32_t len;
    if (!multi_get(cur, &len, sizeof len) || (size_t)(cur->end - cur->p) < len)
        return false;
    a->ptr = cur->p;
    a->len = len;
    cur->p += len;
    return true;
}

/* The next queued command: its arguments into argv (at most cap; more
 * make it false, as does the end of the queue). */
static bool multi_next_cmd(struct multi_cursor *cur, struct resp_arg *argv, uint32_t cap,
                           uint32_t *argc)
{
    if (!multi_get(cur, argc, sizeof *argc) || *argc == 0 || *argc > cap)
        return false;
    for (uint32_t i = 0; i < *argc; i++)
        if (!multi_get_str(cur, &argv[i]))
            return false;
    return true;
}

/* The next queued command's name and first argument (empty when it has
 * none) and its argument count, skipping the rest. False at the end. */
static bool multi_next_head(struct multi_cursor *cur, struct resp_arg head[2], uint32_t *argc)
{
    struct resp_arg a;
    head[1] = (struct resp_arg){"", 0};
    if (!multi_get(cur, argc, sizeof *argc) || *argc == 0)
        return false;
    for (uint32_t i = 0; i < *argc; i++) {
        if (!multi_get_str(cur, &a))
            return false;
        if (i < 2)
            head[i] = a;
    }
    return true;
}

/* Watch entry kinds (the u8 after the key). */
enum multi_watch_kind {
    MULTI_W_ABSENT,  /* one node: the key was absent */
    MULTI_W_ENTRY,   /* one node: u64 cas, i64 expire_ms follow */
    MULTI_W_NOSTATE, /* a cluster: the replica held no state for it */
    MULTI_W_STATE,   /* a cluster: u32 length and the state's meta follow */
};

/* One watch entry as WATCH saw it. */
struct multi_watch_entry {
    struct resp_arg key;
    uint8_t kind;
    uint64_t cas;
    int64_t expire_ms;
    struct resp_arg meta;
};

/* The next watch entry; false at the end (or on bytes we did not encode). */
static bool multi_next_watch(struct multi_cursor *cur, struct multi_watch_entry *e)
{
    if (!multi_get_str(cur, &e->key) || !multi_get(cur, &e->kind, sizeof e->kind))
        return false;
    if (e->kind == MULTI_W_ENTRY)
        return multi_get(cur, &e->cas, sizeof e->cas) &&
               multi_get(cur, &e->expire_ms, sizeof e->expire_ms);
    if (e->kind == MULTI_W_STATE)
        return multi_get_str(cur, &e->meta);
    return e->kind == MULTI_W_ABSENT || e->kind == MULTI_W_NOSTATE;
}

/* ---- connection state ---- */

static void multi_unwatch(struct conn *c)
{
    buf_fini(&c->multi_watch);
    c->multi_flags &= (uint8_t)~CMD_MULTI_WATCH_CROSSSLOT;
    if (!(c->multi_flags & CMD_MULTI_ON))
        c->multi_slot = -1;
}

/* Leaves MULTI and forgets the watches (EXEC, DISCARD). */
static void multi_reset(struct conn *c)
{
    buf_fini(&c->multi_queue);
    buf_fini(&c->multi_watch);
    c->multi_flags = 0;
    c->multi_slot = -1;
    c->multi_count = 0;
}

void cmd_multi_forget(struct conn *c) { multi_reset(c); }

void cmd_multi_flag(struct conn *c)
{
    if (c->multi_flags & CMD_MULTI_ON)
        c->multi_flags |= CMD_MULTI_DIRTY;
}

/* The slot of every key of a request of row d (-1: it has none), or -2
 * when its keys span several slots. */
static int32_t multi_slot_of(const struct cmd_def *d, const struct resp_arg *argv, uint32_t argc)
{
    int32_t slot = -1;
    if (d->first_key <= 0)
        return slot;
    int last = d->last_key < 0 ? (int)argc + d->last_key : d->last_key;
    for (int i = d->first_key; i <= last && i < (int)argc; i += d->key_step) {
        int32_t s = (int32_t)keyhash_slot(argv[i].ptr, argv[i].len);
        if (slot >= 0 && s != slot)
            return -2;
        slot = s;
    }
    return slot;
}

/* Whether the transaction may take keys of `slot` (-1: no key): yes when
 * it has none yet or the same; the first one fixes it. */
static bool multi_take_slot(struct conn *c, int32_t slot)
{
    if (slot == -2)
        return false;
    if (slot >= 0 && c->multi_slot >= 0 && slot != c->multi_slot)
        return false;
    if (slot >= 0)
        c->multi_slot = slot;
    return true;
}

/* Commands that run at once even in MULTI (Redis's list). */
static bool multi_runs_now(const struct cmd_def *d)
{
    return d->handler == cmd_exec || d->handler == cmd_discard || d->handler == cmd_multi ||
           d->handler == cmd_watch || d->handler == cmd_quit || d->handler == cmd_reset;
}

/* Commands a transaction may hold here: one-slot key commands, and the
 * keyless ones that need neither the connection nor every shard. */
static bool multi_may_queue(const struct cmd_def *d)
{
    switch (d->route) {
    case CMD_ROUTE_KEY:
    case CMD_ROUTE_EACH:
    case CMD_ROUTE_MSETNX:
        return true;
    case CMD_ROUTE_CONN:
        return d->handler == cmd_ping || d->handler == cmd_echo || d->handler == cmd_unwatch;
    case CMD_ROUTE_ALL:
    case CMD_ROUTE_SCAN:
        return false;
    }
    return false;
}

/* Why a request of row d (argc arguments) may never be queued, or NULL. */
static const char *multi_unqueueable(const struct cmd_def *d, uint32_t argc)
{
    if (!multi_may_queue(d) || multi_runs_now(d))
        return "ERR Command not allowed inside a transaction";
    if (d->route == CMD_ROUTE_MSETNX && argc % 2 == 0)
        return "ERR wrong number of arguments for 'msetnx' command";
    return NULL;
}

/* Why a checked request cannot join c's transaction, or NULL. */
static const char *multi_refusal(struct shard *sh, struct conn *c, const struct cmd_def *d,
                                 const struct resp_arg *argv, uint32_t argc, size_t bytes)
{
    const char *why = multi_unqueueable(d, argc);
    if (why)
        return why;
    if (!multi_take_slot(c, multi_slot_of(d, argv, argc)))
        return multi_crossslot;
    const struct cfg *cfg = sh->node->cfg;
    size_t total = c->multi_queue.len + bytes;
    if ((int64_t)c->multi_count >= cfg->max_request_args ||
        (int64_t)total > cfg->client_query_buffer_limit || total > MULTI_MAX_BYTES)
        return "ERR transaction too large (see max-request-args and client-query-buffer-limit)";
    return NULL;
}

bool cmd_multi_queued(struct shard *sh, struct conn *c, const struct cmd_def *d,
                      struct resp_arg *argv, uint32_t argc)
{
    if (!(c->multi_flags & CMD_MULTI_ON) || multi_runs_now(d))
        return false;
    size_t bytes = sizeof(uint32_t) * (1 + (size_t)argc);
    for (uint32_t i = 0; i < argc; i++)
        bytes += argv[i].len;
    struct buf *out = conn_reply_buf(c);
    const char *why = multi_refusal(sh, c, d, argv, argc, bytes);
    if (why) {
        resp_write_error(out, why);
        c->multi_flags |= CMD_MULTI_DIRTY;
        return true;
    }
    /* It counts as a call of its command now (commandstats); its run's time
     * goes to EXEC's. */
    cmd_stats_admit(cmd_stats_of(sh->node, sh->id));
    if (c->multi_flags & CMD_MULTI_DIRTY) { /* EXEC can only abort: keep nothing */
        resp_write_simple(out, "QUEUED");
        return true;
    }
    struct buf *q = &c->multi_queue;
    size_t at = q->len;
    multi_put_u32(q, argc);
    for (uint32_t i = 0; i < argc; i++) {
        multi_put_u32(q, argv[i].len);
        buf_append(q, argv[i].ptr, argv[i].len);
    }
    if (q->failed) {
        q->len = at;
        q->failed = false;
        c->multi_flags |= CMD_MULTI_DIRTY;
        resp_write_error(out, "OOM out of memory");
        return true;
    }
    c->multi_count++;
    if (d->flags & CMD_WRITE)
        c->multi_flags |= CMD_MULTI_WRITES;
    resp_write_simple(out, "QUEUED");
    return true;
}

/* ---- connection handlers ---- */

void cmd_multi(struct cmd_ctx *c)
{
    if (c->conn->multi_flags & CMD_MULTI_ON) {
        cmd_reply_error(c, "ERR MULTI calls can not be nested");
        return;
    }
    c->conn->multi_flags |= CMD_MULTI_ON;
    cmd_reply_ok(c);
}

void cmd_discard(struct cmd_ctx *c)
{
    if (!(c->conn->multi_flags & CMD_MULTI_ON)) {
        cmd_reply_error(c, "ERR DISCARD without MULTI");
        return;
    }
    multi_reset(c->conn);
    cmd_reply_ok(c);
}

void cmd_unwatch(struct cmd_ctx *c)
{
    multi_unwatch(c->conn);
    cmd_reply_ok(c);
}

/* In a cluster WATCH reads the key's state at this node, which must hold a
 * replica of its slot (a quorum read runs first): true when it does, else
 * the error is answered (-MOVED for a cluster-aware client). */
static bool multi_watch_here(struct cmd_ctx *c)
{
    struct shard *sh = c->conn->env->owner;
    if (!coord_is_cluster(sh))
        return true;
    const struct resp_arg *k = &c->argv[1];
    struct coord_route rt;
    coord_route(sh, c->conn, k->ptr, k->len, keyhash(k->ptr, k->len), 0, &rt);
    if (rt.kind == COORD_MOVED || rt.kind == COORD_DOWN) {
        cmd_reply_error(c, rt.error);
        return false;
    }
    if (rt.kind == COORD_FORWARD) {
        cmd_reply_error(c, "ERR WATCH needs a connection to a node holding a replica of the "
                           "key's slot (CLUSTER SLOTS names them); MULTI/EXEC without WATCH "
                           "works at any node");
        return false;
    }
    return true;
}

void cmd_watch(struct cmd_ctx *c)
{
    struct conn *conn = c->conn;
    if (conn->multi_flags & CMD_MULTI_ON) {
        cmd_reply_error(c, "ERR WATCH inside MULTI is not allowed");
        return;
    }
    struct cmd_def watch = {.first_key = 1, .last_key = -1, .key_step = 1};
    int32_t slot = multi_slot_of(&watch, c->argv, c->argc);
    if (slot == -2) {
        cmd_reply_error(c, multi_crossslot);
        return;
    }
    if (!multi_watch_here(c))
        return;
    if ((conn->multi_flags & CMD_MULTI_WATCH_CROSSSLOT) || !multi_take_slot(conn, slot)) {
        conn->multi_flags |= CMD_MULTI_WATCH_CROSSSLOT; /* EXEC will say so */
        cmd_reply_ok(c);
        return;
    }
    size_t bytes = 0;
    for (uint32_t i = 1; i < c->argc; i++)
        bytes += c->argv[i].len + sizeof(uint32_t) + 1 + 2 * sizeof(uint64_t);
    size_t total = conn->multi_watch.len + bytes;
    if ((int64_t)total > c->node->cfg->client_query_buffer_limit || total > MULTI_MAX_BYTES) {
        cmd_reply_error(c, "ERR too many keys watched (see client-query-buffer-limit)");
        return;
    }
    uint64_t hash = keyhash(c->argv[1].ptr, c->argv[1].len);
    uint32_t target = node_shard_of(c->node, c->argv[1].ptr, c->argv[1].len, hash);
    cmd_send(c, target, cmd_multi_watch_shard, CMD_NODATA, c->argv, c->argc, hash,
             CMD_COMBINE_WATCH);
}

void cmd_multi_watched(struct conn *c, const struct req_result *res, struct buf *out)
{
    if (res->status == REQ_ERR) {
        buf_append(out, res->body.data, res->body.len);
        return;
    }
    size_t at = c->multi_watch.len;
    buf_append(&c->multi_watch, res->body.data, res->body.len);
    if (c->multi_watch.failed || res->body.failed) {
        c->multi_watch.len = at;
        c->multi_watch.failed = false;
        resp_write_error(out, "OOM out of memory");
        return;
    }
    resp_write_ok(out);
}

/* Whether queued command argv (row d) reads a value (cold ones need the
 * tier first). SET counts only with GET, but the row says so per request:
 * the queue keeps no flags, so SET with any option is taken as reading. */
static bool multi_reads_value(const struct cmd_def *d, uint32_t argc)
{
    return (d->flags & CMD_READS_VALUE) || ((d->flags & CMD_GET_OPTION) && argc > 3);
}

/* The key EXEC's message names (for the tier and for routing): the first
 * key a value-reading command reads, else the first key queued or
 * watched. False for a transaction with no key at all. */
static bool multi_msg_key(const struct conn *c, struct resp_arg *key, bool *reads)
{
    struct multi_cursor cur = {c->multi_queue.data, c->multi_queue.data + c->multi_queue.len};
    struct resp_arg head[2];
    uint32_t argc;
    bool found = false;
    while (multi_next_head(&cur, head, &argc)) {
        const struct cmd_def *d = cmd_lookup(head[0].ptr, head[0].len);
        if (!d || d->first_key <= 0 || argc < 2)
            continue;
        *reads = multi_reads_value(d, argc);
        if (*reads || !found)
            *key = head[1];
        found = true;
        if (*reads)
            return true;
    }
    if (!found && c->multi_watch.len > 0) {
        struct multi_cursor w = {c->multi_watch.data, c->multi_watch.data + c->multi_watch.len};
        struct multi_watch_entry e;
        found = multi_next_watch(&w, &e);
        if (found)
            *key = e.key;
    }
    return found;
}

/* MISCONF since the writes were queued: the transaction is discarded with
 * the reason (Redis's form), true. */
static bool multi_refused(struct cmd_ctx *c)
{
    struct buf why;
    buf_init(&why);
    if (!persist_refuse_resp(c->node, &why))
        return false;
    struct buf err;
    buf_init(&err);
    buf_append_str(&err, "EXECABORT Transaction discarded because of: ");
    if (why.len > 3) /* "-MISCONF ...\r\n" */
        buf_append(&err, why.data + 1, why.len - 3);
    buf_append(&err, "", 1);
    cmd_reply_error(c, err.failed ? "OOM out of memory" : err.data);
    buf_fini(&err);
    buf_fini(&why);
    multi_reset(c->conn);
    return true;
}

bool cmd_multi_is_open(const struct conn *c)
{
    return (c->multi_flags & CMD_MULTI_ON) != 0;
}

void cmd_exec(struct cmd_ctx *c)
{
    struct conn *conn = c->conn;
    if (!(conn->multi_flags & CMD_MULTI_ON)) {
        cmd_reply_error(c, "ERR EXEC without MULTI");
        return;
    }
    if (conn->multi_flags & (CMD_MULTI_DIRTY | CMD_MULTI_WATCH_CROSSSLOT)) {
        cmd_reply_error(c, conn->multi_flags & CMD_MULTI_DIRTY
                               ? "EXECABORT Transaction discarded because of previous errors."
                               : multi_crossslot);
        multi_reset(conn);
        return;
    }
    struct resp_arg argv[4] = {{"EXEC", 4}, {"", 0}, {"", 0}, {"", 0}};
    bool reads = false;
    bool has_key = multi_msg_key(conn, &argv[1], &reads);
    if (has_key && cmd_serves_no_key(conn->env->owner)) { /* served elsewhere now (cmd.h) */
        cmd_reply_error(c, "EXECABORT Transaction discarded because of: " CMD_ERR_LEFT);
        multi_reset(conn);
        return;
    }
    /* in a cluster a node whose log is failing sends it on (coord.h) */
    if ((conn->multi_flags & CMD_MULTI_WRITES) &&
        !(has_key && coord_is_cluster(conn->env->owner)) && multi_refused(c))
        return;
    argv[2].ptr = conn->multi_watch.data ? conn->multi_watch.data : "";
    argv[2].len = (uint32_t)conn->multi_watch.len;
    argv[3].ptr = conn->multi_queue.data ? conn->multi_queue.data : "";
    argv[3].len = (uint32_t)conn->multi_queue.len;
    uint64_t hash = has_key ? keyhash(argv[1].ptr, argv[1].len) : 0;
    uint32_t target =
        has_key ? node_shard_of(c->node, argv[1].ptr, argv[1].len, hash) : c->shard_id;
    uint32_t flags = has_key ? (reads ? CMD_READS_VALUE : 0) : CMD_NOKEY;
    if (has_key && coord_is_cluster(conn->env->owner))
        flags |= CMD_RMW; /* coordinated at the slot's first live replica (coord.h) */
    cmd_send(c, target, cmd_multi_exec_shard, flags, argv, 4, hash, CMD_COMBINE_ONE);
    multi_reset(conn); /* the message holds its own copy */
}

/* ---- on the slot's shard ---- */

/* The most distinct keys cmd_multi_keys() lists before it gives up: a
 * list can only be refused past it, and each key is compared with every
 * earlier one, so a bound keeps a 40k-key MSET from stalling the shard. */
#define MULTI_MAX_KEYS 256u

/* Adds key k to the list (*keys, *n of cap) unless it is there. -ENOMEM,
 * or -E2BIG when the list would pass MULTI_MAX_KEYS. */
static int multi_add_key(struct resp_arg **keys, uint32_t *n, uint32_t *cap,
                         const struct resp_arg *k)
{
    for (uint32_t i = 0; i < *n; i++)
        if (resp_arg_equal(&(*keys)[i], k))
            return 0;
    if (*n == MULTI_MAX_KEYS)
        return -E2BIG;
    if (*n == *cap) {
        uint32_t want = *cap ? *cap * 2 : 8;
        struct resp_arg *more = mi_realloc(*keys, want * sizeof *more);
        if (!more)
            return -ENOMEM;
        *keys = more;
        *cap = want;
    }
    (*keys)[(*n)++] = *k;
    return 0;
}

/* The keys of the queued command at cur (its argument count read, name
 * given), added to the list; false on bytes we did not encode. */
static bool multi_cmd_keys(struct multi_cursor *cur, uint32_t argc, const struct resp_arg *name,
                           struct resp_arg **keys, uint32_t *n, uint32_t *cap, int *rc)
{
    const struct cmd_def *d = cmd_lookup(name->ptr, name->len);
    int first = d ? d->first_key : 0;
    int last = d && d->last_key < 0 ? (int)argc + d->last_key : d ? d->last_key : 0;
    struct resp_arg a;
    for (uint32_t i = 1; i < argc; i++) {
        if (!multi_get_str(cur, &a))
            return false;
        bool is_key =
            first > 0 && (int)i >= first && (int)i <= last && ((int)i - first) % d->key_step == 0;
        if (is_key && *rc == 0)
            *rc = multi_add_key(keys, n, cap, &a);
    }
    return true;
}

int cmd_multi_keys(const struct resp_arg *argv, uint32_t argc, struct resp_arg **keys, uint32_t *n)
{
    uint32_t cap = 0;
    int rc = 0;
    *keys = NULL;
    *n = 0;
    if (argc != 4)
        return 0;
    struct multi_cursor w = {argv[2].ptr, argv[2].ptr + argv[2].len};
    struct multi_watch_entry e;
    while (rc == 0 && multi_next_watch(&w, &e))
        rc = multi_add_key(keys, n, &cap, &e.key);
    struct multi_cursor q = {argv[3].ptr, argv[3].ptr + argv[3].len};
    uint32_t cargc;
    struct resp_arg name;
    while (rc == 0 && multi_get(&q, &cargc, sizeof cargc) && cargc > 0 &&
           multi_get_str(&q, &name) && multi_cmd_keys(&q, cargc, &name, keys, n, &cap, &rc)) {
    }
    if (rc < 0) {
        mi_free(*keys);
        *keys = NULL;
        *n = 0;
    }
    return rc;
}

static bool multi_in_cluster(const struct cmd_ctx *c)
{
    return coord_is_cluster(c->node->shards[c->shard_id]);
}

/* Key k's watch entry into out: in a cluster its replicated state's meta
 * (its causal context: comparable on every replica, and a quorum read ran
 * first), else its entry's cas and expiry. */
static void multi_watch_put(const struct cmd_ctx *c, const struct resp_arg *k, bool is_cluster,
                            struct buf *out)
{
    uint64_t hash = keyhash(k->ptr, k->len);
    multi_put_u32(out, k->len);
    buf_append(out, k->ptr, k->len);
    if (is_cluster) {
        struct replica_state st;
        replica_state_init(&st);
        int rc = replica_export(c->store, c->node, k->ptr, k->len, hash, &st);
        uint8_t kind = rc == 0 ? MULTI_W_STATE : MULTI_W_NOSTATE; /* -EAGAIN: EXEC aborts */
        buf_append(out, &kind, sizeof kind);
        if (rc == 0) {
            multi_put_u32(out, (uint32_t)st.meta.len);
            buf_append(out, st.meta.data, st.meta.len);
        }
        replica_state_fini(&st);
        return;
    }
    const struct table_entry *e = store_lookup(c->store, k->ptr, k->len, hash);
    uint8_t kind = e ? MULTI_W_ENTRY : MULTI_W_ABSENT;
    buf_append(out, &kind, sizeof kind);
    if (e) {
        buf_append(out, &e->cas, sizeof e->cas);
        buf_append(out, &e->expire_ms, sizeof e->expire_ms);
    }
}

void cmd_multi_watch_shard(struct cmd_ctx *c)
{
    bool is_cluster = multi_in_cluster(c);
    for (uint32_t i = 1; i < c->argc; i++)
        multi_watch_put(c, &c->argv[i], is_cluster, c->out);
    c->res->status = c->out->failed ? REQ_ERR : REQ_OK;
}

/* Whether watched key w is not what WATCH saw. */
static bool multi_watch_entry_changed(const struct cmd_ctx *c, const struct multi_watch_entry *w)
{
    uint64_t hash = keyhash(w->key.ptr, w->key.len);
    if (w->kind == MULTI_W_ABSENT || w->kind == MULTI_W_ENTRY) {
        const struct table_entry *e = store_lookup(c->store, w->key.ptr, w->key.len, hash);
        return (e != NULL) != (w->kind == MULTI_W_ENTRY) ||
               (e && (e->cas != w->cas || e->expire_ms != w->expire_ms));
    }
    struct replica_state st;
    replica_state_init(&st);
    int rc = replica_export(c->store, c->node, w->key.ptr, w->key.len, hash, &st);
    bool changed = rc == -ENOENT ? w->kind != MULTI_W_NOSTATE
                   : rc < 0
                       ? true /* cannot tell (a cold value): fail safe */
                       : w->kind != MULTI_W_STATE || !replica_same(&st, w->meta.ptr, w->meta.len);
    replica_state_fini(&st);
    return changed;
}

/* Whether a watched key is not what WATCH saw. */
static bool multi_watch_changed(const struct cmd_ctx *c, const struct resp_arg *blob)
{
    struct multi_cursor cur = {blob->ptr, blob->ptr + blob->len};
    struct multi_watch_entry w;
    while (cur.p < cur.end) {
        if (!multi_next_watch(&cur, &w) || multi_watch_entry_changed(c, &w))
            return true; /* bytes we did not encode: fail safe */
    }
    return false;
}

/* Whether queued command argv (row d) reads the value of a key that is on
 * disk only now; each such value is read back for the retry. */
static bool multi_meets_cold(const struct cmd_ctx *c, const struct cmd_def *d,
                             const struct resp_arg *argv, uint32_t argc)
{
    if (!c->node->shards[c->shard_id]->tier || !multi_reads_value(d, argc) || d->first_key <= 0)
        return false;
    bool cold = false;
    int last = d->last_key < 0 ? (int)argc + d->last_key : d->last_key;
    for (int i = d->first_key; i <= last && i < (int)argc; i += d->key_step) {
        uint64_t hash = keyhash(argv[i].ptr, argv[i].len);
        const struct table_entry *e = table_find(c->store->table, argv[i].ptr, argv[i].len, hash);
        if (e && table_entry_is_cold(e) && !store_is_expired(c->store, e)) {
            cmd_read_back(c, &argv[i], hash);
            cold = true;
        }
    }
    return cold;
}

/* Why queued command argv (row d) cannot run here before anything runs,
 * or NULL: a key another shard owns (one slot is one shard, but for the
 * xxh3 partition function of upgrade tests), or a cold value. */
static const char *multi_cannot_run(const struct cmd_ctx *c, const struct cmd_def *d,
                                    const struct resp_arg *argv, uint32_t argc)
{
    int last = d->last_key < 0 ? (int)argc + d->last_key : d->last_key;
    for (int i = d->first_key; i >= 1 && i <= last && i < (int)argc; i += d->key_step) {
        uint64_t hash = keyhash(argv[i].ptr, argv[i].len);
        if (node_shard_of(c->node, argv[i].ptr, argv[i].len, hash) != c->shard_id)
            return multi_crossslot;
    }
    return multi_meets_cold(c, d, argv, argc) ? multi_tryagain : NULL;
}

/* A split command (MGET, MSET, DEL, UNLINK, EXISTS) on this shard: its
 * per-key handler for each key, joined as its combiner would. */
static void multi_run_each(struct cmd_ctx *sub, const struct cmd_def *d, struct resp_arg *argv,
                           uint32_t argc)
{
    struct buf *out = sub->out;
    uint32_t step = d->split_step;
    bool is_array = d->combine == CMD_COMBINE_ARRAY;
    struct buf scratch, err;
    buf_init(&scratch);
    buf_init(&err);
    struct req_result res;
    int64_t sum = 0;
    if (is_array)
        resp_write_array_len(out, (argc - 1) / step);
    for (uint32_t i = 1; i + step - 1 < argc; i += step) {
        struct resp_arg one[3] = {argv[0], argv[i], step == 2 ? argv[i + 1] : argv[0]};
        buf_clear(&scratch);
        res.status = REQ_NONE;
        sub->argv = one;
        sub->argc = 1 + step;
        sub->hash = keyhash(argv[i].ptr, argv[i].len);
        sub->out = is_array ? out : &scratch;
        sub->res = &res;
        d->handler(sub);
        if (res.status == REQ_ERR && err.len == 0)
            buf_append(&err, scratch.data, scratch.len);
        if (res.status == REQ_INT)
            sum += res.num;
    }
    if (err.len > 0 && !is_array)
        buf_append(out, err.data, err.len);
    else if (d->combine == CMD_COMBINE_SUM)
        resp_write_int(out, sum);
    else if (d->combine == CMD_COMBINE_OK)
        resp_write_ok(out);
    buf_fini(&scratch);
    buf_fini(&err);
}

/* Whether argc arguments fit row d's arity (Redis's: n exactly, -n at
 * least n). */
static bool multi_arity_ok(const struct cmd_def *d, uint32_t argc)
{
    return d->arity >= 0 ? argc == (uint32_t)d->arity : argc >= (uint32_t)-d->arity;
}

/* Runs one queued command here, its reply appended to c->out. */
static void multi_run_one(const struct cmd_ctx *c, struct resp_arg *argv, uint32_t argc)
{
    const struct cmd_def *d = cmd_lookup(argv[0].ptr, argv[0].len);
    struct req_result res = {.status = REQ_NONE};
    struct cmd_ctx sub = *c;
    sub.conn = NULL;
    sub.argv = argv;
    sub.argc = argc;
    sub.res = &res;
    sub.hash = argc > 1 ? keyhash(argv[1].ptr, argv[1].len) : 0;
    if (!d) { /* it was found when queued: the table does not change */
        resp_write_error(c->out, "ERR unknown command");
        return;
    }
    /* checked when queued (or forwarded, cmd_multi_forward_ok); a handler
     * trusts its row's arity and a connection's presence, so again here */
    const char *why = multi_unqueueable(d, argc);
    if (why || !multi_arity_ok(d, argc)) {
        resp_write_error(c->out, why ? why : "ERR wrong number of arguments");
        return;
    }
    if (multi_meets_cold(c, d, argv, argc)) {
        resp_write_error(c->out, multi_tryagain);
        return;
    }
    switch (d->route) {
    case CMD_ROUTE_KEY:
        d->handler(&sub);
        return;
    case CMD_ROUTE_MSETNX:
        cmd_msetnx_shard(&sub);
        return;
    case CMD_ROUTE_EACH:
        multi_run_each(&sub, d, argv, argc);
        return;
    case CMD_ROUTE_CONN:
        if (d->handler == cmd_unwatch) /* EXEC has unwatched everything already */
            resp_write_ok(c->out);
        else
            d->handler(&sub); /* PING, ECHO: no connection needed */
        return;
    case CMD_ROUTE_ALL:
    case CMD_ROUTE_SCAN: /* never queued */
        resp_write_error(c->out, "ERR Command not allowed inside a transaction");
        return;
    }
}

/* The most arguments one queued command may have: max-request-args, which
 * the parser enforced when it came. */
static uint32_t multi_max_args(const struct node *node)
{
    int64_t n = node->cfg->max_request_args;
    return n > 0 && n < UINT32_MAX ? (uint32_t)n : UINT32_MAX;
}

/* The most arguments a command of queue q has (0: an empty queue), or
 * UINT32_MAX when one has more than max-request-args. */
static uint32_t multi_most_args(const struct node *node, const struct resp_arg *q, uint32_t *n)
{
    struct multi_cursor cur = {q->ptr, q->ptr + q->len};
    struct resp_arg head[2];
    uint32_t most = 0, argc;
    for (*n = 0; multi_next_head(&cur, head, &argc); (*n)++)
        most = argc > most ? argc : most;
    return most > multi_max_args(node) ? UINT32_MAX : most;
}

/* Whether queued command argv (argc) could be in a client's transaction
 * of slot; false with why. */
static bool multi_forward_cmd_ok(const struct node *n, const struct resp_arg *argv, uint32_t argc,
                                 uint32_t slot, char *why, size_t len)
{
    const struct cmd_def *d = cmd_lookup(argv[0].ptr, argv[0].len);
    const char *refusal = d ? multi_unqueueable(d, argc) : "ERR unknown command";
    if (refusal) {
        snprintf(why, len, "%s", refusal);
        return false;
    }
    if (!cmd_args_ok(n, d, argv, argc, why, len))
        return false;
    int32_t s = multi_slot_of(d, argv, argc);
    if (s == -2 || (s >= 0 && (uint32_t)s != slot)) {
        snprintf(why, len, "%s", multi_crossslot);
        return false;
    }
    return true;
}

/* Whether watch list w is well formed, every key of slot; false with why. */
static bool multi_forward_watches_ok(const struct resp_arg *w, uint32_t slot, char *why, size_t len)
{
    struct multi_cursor cur = {w->ptr, w->ptr + w->len};
    struct multi_watch_entry e;
    while (cur.p < cur.end) {
        if (!multi_next_watch(&cur, &e)) {
            snprintf(why, len, "ERR a forwarded EXEC's watches are malformed");
            return false;
        }
        if (keyhash_slot(e.key.ptr, e.key.len) != slot) {
            snprintf(why, len, "%s", multi_crossslot);
            return false;
        }
    }
    return true;
}

bool cmd_multi_forward_ok(const struct node *n, const struct resp_arg *argv, uint32_t argc,
                          char *why, size_t len)
{
    if (argc != 4) {
        snprintf(why, len, "ERR wrong number of arguments for 'exec' command");
        return false;
    }
    uint32_t slot = keyhash_slot(argv[1].ptr, argv[1].len);
    if (!multi_forward_watches_ok(&argv[2], slot, why, len))
        return false;
    uint32_t ncmds, most = multi_most_args(n, &argv[3], &ncmds);
    if (most == UINT32_MAX) {
        snprintf(why, len, "ERR transaction too large (see max-request-args)");
        return false;
    }
    struct resp_arg *cargv = most ? mi_malloc(most * sizeof *cargv) : NULL;
    if (most && !cargv) {
        snprintf(why, len, "OOM out of memory");
        return false;
    }
    struct multi_cursor cur = {argv[3].ptr, argv[3].ptr + argv[3].len};
    uint32_t cargc, i = 0;
    bool ok = true;
    for (; ok && i < ncmds && multi_next_cmd(&cur, cargv, most, &cargc); i++)
        ok = multi_forward_cmd_ok(n, cargv, cargc, slot, why, len);
    mi_free(cargv);
    if (ok && (i < ncmds || cur.p != cur.end)) {
        snprintf(why, len, "ERR a forwarded EXEC's queue is malformed");
        ok = false;
    }
    return ok;
}

void cmd_multi_exec_shard(struct cmd_ctx *c)
{
    c->hash = 0; /* the reply depends on every key it read (cmd.h) */
    if (multi_watch_changed(c, &c->argv[2])) {
        c->res->status = REQ_NULL;
        resp_write_null_array(c->out, c->proto);
        return;
    }
    struct multi_cursor cur = {c->argv[3].ptr, c->argv[3].ptr + c->argv[3].len};
    uint32_t n, argc, most = multi_most_args(c->node, &c->argv[3], &n);
    if (most == UINT32_MAX) {
        cmd_reply_error(c, "ERR transaction too large (see max-request-args)");
        return;
    }
    struct resp_arg *argv = most ? mi_malloc(most * sizeof *argv) : NULL;
    if (most && !argv) {
        cmd_reply_error(c, "OOM out of memory");
        return;
    }
    const char *why = NULL; /* nothing has run yet */
    for (struct multi_cursor pre = cur; multi_next_cmd(&pre, argv, most, &argc);) {
        const struct cmd_def *d = cmd_lookup(argv[0].ptr, argv[0].len);
        const char *cannot = d ? multi_cannot_run(c, d, argv, argc) : NULL;
        why = cannot ? cannot : why;
        if (cannot && cannot != multi_tryagain)
            break; /* past a cold value: every one is read back for the retry */
    }
    if (why) {
        mi_free(argv);
        cmd_reply_error(c, why);
        return;
    }
    struct cmd_ctx run = *c;
    cmd_reply_array_len(c, n);
    for (uint32_t i = 0; i < n && multi_next_cmd(&cur, argv, most, &argc); i++)
        multi_run_one(&run, argv, argc);
    mi_free(argv);
}
