/* cmd_ring.c: RING.GET, RING.PUT and RING.DEL on the shard that owns the key
 * (see cmd_ring.h), on the coordinator's own replica (coord.c replicates).
 * A write is dvvset's update at the coordinator: the client's context and
 * new value (dvv_new_with_context), the stored clock, and this node's actor
 * give the new clock (dvv_update), stored whole (store_put_versioned: meta
 * and body, in memory and in the log record). The actor is
 * replica_write_actor(): this node's incarnation (node id and data epoch,
 * drawn whenever the data directory starts empty: persist.h) and the key's
 * incarnation here (new whenever the node holds nothing for the key), so a
 * node whose data, or only this key, was lost never issues a dot it issued
 * before (KV-679).
 * A key last written by a plain command has no clock: it reads as its
 * implicit clock (replica.h, replica_entry_clock), one sibling at the dot
 * (actor', 1), actor' made of the data epoch and the entry's cas. A context
 * taken from it covers exactly that value; one taken before the plain write
 * does not name actor', so a RING.PUT with it keeps the plain value as a
 * sibling (SET superseded what it saw, not what came after it).
 * Sibling bounds (replica_check_siblings): a write that would leave more
 * than max-siblings answers an error and changes nothing; more than
 * warn-siblings is counted (INFO sibling_warnings) and logged at most once
 * a second per shard.
 * Clocks are worked on in three mi_malloc'd scratch clocks sized for the
 * codec bounds, made per request (RING.* is not the plain GET/SET path).
 * Tombstones (RING.DEL) stay until a plain write or delete replaces them
 * or replica_reap() removes them after tombstone-grace. */
#include "cmd_ring.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cmd_string.h"
#include "coord.h"
#include "dvv.h"
#include "node.h"
#include "num.h"
#include "replica.h"
#include "store.h"

/* The most replicas a request can be answered by: the key's N_eff
 * (coord.h: the replicas setting within its preference list). */
static int64_t ring_quorum_cap(const struct cmd_ctx *c)
{
    const struct shard *sh = c->node->shards[c->shard_id];
    return coord_replicas(sh, node_partition_of(c->node, c->argv[1].ptr, c->argv[1].len, c->hash));
}

struct ring_clocks {
    struct dvv_clock *a, *b, *server;
};

static void ring_clocks_free(struct ring_clocks *k)
{
    dvv_destroy(k->a);
    dvv_destroy(k->b);
    dvv_destroy(k->server);
}

/* False (after replying -OOM) when they cannot be made. */
static bool ring_clocks_make(struct cmd_ctx *c, struct ring_clocks *k)
{
    k->a = dvv_create(DVV_MAX_ENTRIES, DVV_MAX_VALUES);
    k->b = dvv_create(DVV_MAX_ENTRIES, DVV_MAX_VALUES);
    k->server = dvv_create(DVV_MAX_ENTRIES, DVV_MAX_VALUES);
    if (k->a && k->b && k->server)
        return true;
    ring_clocks_free(k);
    cmd_reply_error(c, CMD_ERR_OOM);
    return false;
}

/* Parses `R r` / `W w` (word is "R" or "W") at argv[i]; replies and returns
 * false when the number is not one this node can honour. */
static bool ring_quorum_arg(struct cmd_ctx *c, uint32_t i, const char *word)
{
    int64_t v;
    if (!num_parse_i64(c->argv[i].ptr, c->argv[i].len, &v)) {
        cmd_reply_error(c, CMD_ERR_NOT_INT);
        return false;
    }
    int64_t cap = ring_quorum_cap(c);
    if (v < 1 || v > cap) {
        char msg[128];
        snprintf(msg, sizeof msg,
                 "ERR %s must be from 1 to %lld: the cluster's size (%lld) caps it", word,
                 (long long)cap, (long long)cap);
        cmd_reply_error(c, msg);
        return false;
    }
    return true;
}

/* Writes the reply [context, [values that are not tombstones]] of clock k. */
static void ring_reply_clock(struct cmd_ctx *c, const struct dvv_clock *k)
{
    struct buf ctx;
    buf_init(&ctx);
    if (dvv_context_encode(k, &ctx) != 0 || ctx.failed) {
        buf_fini(&ctx);
        cmd_reply_error(c, CMD_ERR_OOM);
        return;
    }
    uint32_t live = 0;
    for (uint32_t i = 0; i < dvv_size(k); i++)
        live += !(k->values[i].flags & DVV_TOMBSTONE);
    cmd_reply_array_len(c, 2);
    resp_write_bulk(c->out, ctx.data ? ctx.data : "", ctx.len);
    resp_write_array_len(c->out, live);
    for (uint32_t i = 0; i < dvv_size(k); i++)
        if (!(k->values[i].flags & DVV_TOMBSTONE))
            resp_write_bulk(c->out, k->values[i].data ? k->values[i].data : "",
                            k->values[i].len);
    buf_fini(&ctx);
}

/* RING.GET key [R r] */
void cmd_ring_get(struct cmd_ctx *c)
{
    if (c->argc != 2 && c->argc != 4) {
        cmd_reply_error(c, CMD_ERR_SYNTAX);
        return;
    }
    if (c->argc == 4 && !cmd_arg_is(&c->argv[2], "r")) {
        cmd_reply_error(c, CMD_ERR_SYNTAX);
        return;
    }
    if (c->argc == 4 && !ring_quorum_arg(c, 3, "R"))
        return;
    struct table_entry *e =
        store_lookup_versions(c->store, c->argv[1].ptr, c->argv[1].len, c->hash);
    if (!e) {
        cmd_reply_array_len(c, 2);
        resp_write_bulk(c->out, "", 0);
        resp_write_array_len(c->out, 0);
        return;
    }
    struct ring_clocks k;
    if (!ring_clocks_make(c, &k))
        return;
    if (replica_entry_clock(c->node, e, k.server) != 0)
        cmd_reply_error(c, "ERR the key's stored versions cannot be read");
    else
        ring_reply_clock(c, k.server);
    ring_clocks_free(&k);
}

/* Options after a write's fixed arguments: W w, and for RING.PUT EX s or
 * PX ms. Replies and returns false on a bad one. */
static bool ring_write_options(struct cmd_ctx *c, uint32_t first, bool with_expiry,
                               int64_t *expire_ms)
{
    *expire_ms = 0;
    bool seen_w = false, seen_exp = false;
    for (uint32_t i = first; i < c->argc; i += 2) {
        const struct resp_arg *opt = &c->argv[i];
        bool is_w = cmd_arg_is(opt, "w");
        bool is_ex = with_expiry && cmd_arg_is(opt, "ex");
        bool is_px = with_expiry && cmd_arg_is(opt, "px");
        if (i + 1 >= c->argc || !(is_w || is_ex || is_px) || (is_w && seen_w) ||
            (!is_w && seen_exp)) {
            cmd_reply_error(c, CMD_ERR_SYNTAX);
            return false;
        }
        if (is_w) {
            seen_w = true;
            if (!ring_quorum_arg(c, i + 1, "W"))
                return false;
            continue;
        }
        seen_exp = true;
        int64_t v, unit = is_ex ? 1000 : 1;
        if (!num_parse_i64(c->argv[i + 1].ptr, c->argv[i + 1].len, &v)) {
            cmd_reply_error(c, CMD_ERR_NOT_INT);
            return false;
        }
        if (v <= 0 || v > (INT64_MAX - c->store->now_ms) / unit) {
            cmd_reply_error(c, "ERR invalid expire time in 'ring.put' command");
            return false;
        }
        *expire_ms = c->store->now_ms + v * unit;
    }
    return true;
}

/* The new clock, in k->a, of writing v over the key with the client's
 * context (argv[2]). Replies and returns false on failure. */
static bool ring_update(struct cmd_ctx *c, struct ring_clocks *k, const struct dvv_value *v)
{
    if (dvv_context_decode(c->argv[2].ptr, c->argv[2].len, k->a) != 0) {
        cmd_reply_error(c, "ERR invalid context: pass back the context RING.GET returned");
        return false;
    }
    struct table_entry *e =
        store_lookup_versions(c->store, c->argv[1].ptr, c->argv[1].len, c->hash);
    if (e && replica_entry_clock(c->node, e, k->server) != 0) {
        cmd_reply_error(c, "ERR the key's stored versions cannot be read");
        return false;
    }
    int rc = dvv_new_with_context(k->b, k->a, v);
    if (rc == 0)
        rc = dvv_update(k->a, k->b, e ? k->server : NULL,
                        replica_write_actor(c->store, c->node, c->hash, e ? k->server : NULL));
    if (rc != 0) {
        cmd_reply_error(c, rc == -EOVERFLOW ? "ERR version counter overflow"
                                            : "ERR too many versions for one key");
        return false;
    }
    return true;
}

/* RING.PUT and RING.DEL: value NULL writes a tombstone. Options from argv[first]. */
static void ring_write(struct cmd_ctx *c, const struct resp_arg *value, uint32_t first)
{
    int64_t expire_ms;
    if (!ring_write_options(c, first, value != NULL, &expire_ms))
        return;
    int rc = store_check_len(c->store, c->argv[1].len, value ? value->len : 0);
    if (rc != 0) {
        cmd_reply_store_error(c, rc);
        return;
    }
    struct ring_clocks k;
    if (!ring_clocks_make(c, &k))
        return;
    struct dvv_value v = {.data = value ? value->ptr : NULL,
                          .len = value ? (uint32_t)value->len : 0,
                          .flags = value ? 0 : DVV_TOMBSTONE,
                          .ts_ms = c->store->now_ms};
    if (ring_update(c, &k, &v)) {
        uint32_t n = dvv_size(k.a);
        if (replica_check_siblings(c->store, c->node, c->argv[1].ptr, (uint32_t)c->argv[1].len,
                                   n) != 0) {
            char msg[160];
            snprintf(msg, sizeof msg,
                     "ERR too many siblings: the write would leave %u, max-siblings is %lld; "
                     "write with the context of a RING.GET to resolve them",
                     n, (long long)c->node->cfg->max_siblings);
            cmd_reply_error(c, msg);
        } else {
            rc = store_put_versioned(c->store, c->argv[1].ptr, c->argv[1].len, c->hash, k.a,
                                     expire_ms, NULL);
            if (rc == 0)
                cmd_reply_ok(c);
            else
                cmd_reply_store_error(c, rc);
        }
    }
    ring_clocks_free(&k);
}

/* RING.PUT key context value [W w] [EX s|PX ms] */
void cmd_ring_put(struct cmd_ctx *c) { ring_write(c, &c->argv[3], 4); }

/* RING.DEL key context [W w] */
void cmd_ring_del(struct cmd_ctx *c) { ring_write(c, NULL, 3); }
