/* keyspace.c: keyspace commands across a cluster (see keyspace.h).
 * Two halves. The client's node (cmd.c routes, these helpers encode): SCAN's
 * cluster-wide cursor is decoded into a member and its node-wide cursor;
 * that member's answer (run here, or forwarded as RING.LOCAL SCAN) gives
 * the next cursor: the same member while its cursor is not 0, then the next
 * live member in node id order, then 0. Each member is visited once, and
 * each partition is answered by one member (its first live node), so a
 * key is returned once while the ring and the live set do not change.
 * A key present throughout is returned at least once under the same
 * condition; when the ring or the live set changes mid-scan, a partition
 * may move between a member already visited and one not yet visited, so
 * its keys may be missed or returned twice (Redis Cluster's SCAN is per
 * node and has the same caveat across a resharding).
 * The peer's node (keyspace_serve): RING.LOCAL runs a keyspace command's
 * node-local form on every shard here (SCAN: on the cursor's shard), as a
 * request of this shard whose done callback combines the results with the
 * client's combiner (cmd_combine_keyspace) and replies to the link.
 * RANDOMKEY's combiner picks uniformly among the answers that name a key
 * (members, and shards within each), not weighted by how many keys each
 * answers for: a key of a member with few keys comes up more often than
 * one of a member with many. Each shard's answer costs bounded work
 * (cmd_keys.c, random_mine) and may be nil when its own keys are rare.
 * Runs on shard threads. */
#include "keyspace.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "coord.h"
#include "node.h"
#include "peerlink.h"
#include "shard.h"
#include "wire.h"

#define KEYSPACE_POS_MASK ((1ULL << 48) - 1)

/* ---- SCAN's cluster-wide cursor ---- */

bool keyspace_scan_at(const struct shard *sh, uint64_t cursor, struct keyspace_scan *out)
{
    uint32_t asked = (uint32_t)(cursor >> 56);
    out->rank = asked;
    if (!coord_rank_member(sh, &out->rank, &out->member, &out->is_self))
        return false;
    out->node =
        out->rank == asked ? ((cursor >> 48) & 0xFF) << 56 | (cursor & KEYSPACE_POS_MASK) << 8 : 0;
    out->aux = (int64_t)(out->rank + 1) << KEYSPACE_AUX_RANK_SHIFT;
    return true;
}

uint32_t keyspace_scan_args(const struct keyspace_scan *at, const struct resp_arg *argv,
                            uint32_t argc, struct resp_arg *out, char *text, size_t cap)
{
    out[0] = (struct resp_arg){"RING.LOCAL", 10};
    out[1] = argv[0];
    out[2] = (struct resp_arg){text, (uint32_t)snprintf(text, cap, "%" PRIu64, at->node)};
    for (uint32_t i = 2; i < argc; i++)
        out[i + 1] = argv[i];
    return argc + 1;
}

bool keyspace_scan_reply(const struct req_result *res, uint64_t *node_cursor, const char **keys,
                         size_t *n)
{
    const char *p = res->body.data + res->skip, *end = res->body.data + res->body.len;
    if (res->skip >= res->body.len || p[0] != '$')
        return false;
    char *after;
    unsigned long len = strtoul(p + 1, &after, 10);
    if (after + 2 > end || after[0] != '\r' || len >= 24 || (size_t)(end - after) < 2 + len + 2)
        return false;
    char digits[24];
    memcpy(digits, after + 2, len);
    digits[len] = '\0';
    *node_cursor = strtoull(digits, NULL, 10);
    *keys = after + 2 + len + 2;
    *n = (size_t)(end - *keys);
    return true;
}

uint64_t keyspace_scan_next(const struct shard *sh, int64_t aux, uint64_t node_next)
{
    uint32_t rank = (uint32_t)(aux >> KEYSPACE_AUX_RANK_SHIFT) - 1, member;
    bool is_self;
    if (node_next != 0)
        return (uint64_t)rank << 56 | (node_next >> 56) << 48 |
               ((node_next & ((1ULL << 56) - 1)) >> 8);
    rank++;
    if (rank > 0xFF || !coord_rank_member(sh, &rank, &member, &is_self) || rank > 0xFF)
        return 0;
    return (uint64_t)rank << 56;
}

/* ---- RING.LOCAL ---- */

void keyspace_refuse(struct cmd_ctx *c)
{
    cmd_reply_error(c, "ERR RING.LOCAL is sent by cluster peers only");
}

/* The request's extra bytes: the peer's wire id, then the protocol. */
struct keyspace_peer {
    uint64_t wire_id;
    int proto;
};

static void keyspace_reply(struct shard *sh, uint64_t link, uint64_t id, uint8_t status,
                           const char *text, const struct buf *body)
{
    struct wire_bytes v = {body ? (const uint8_t *)body->data : NULL,
                           body ? (uint32_t)body->len : 0};
    struct wire_msg rm = {.kind = WIRE_REPLY,
                          .id = id,
                          .op = WIRE_OP_FORWARD,
                          .status = status,
                          .text = {(const uint8_t *)text, text ? (uint32_t)strlen(text) : 0},
                          .n_values = body ? 1 : 0,
                          .values = body ? &v : NULL};
    peerlink_reply(sh, link, &rm); /* a link gone: the asker's deadline answers */
}

static bool keyspace_done(struct req_table *t, struct req *r, enum req_end how)
{
    struct shard *sh = t->ctx;
    struct keyspace_peer peer;
    memcpy(&peer, r->extra.data, sizeof peer);
    if (how == REQ_END_DROP)
        return true;
    if (how == REQ_END_TIMEOUT) {
        keyspace_reply(sh, r->owner, peer.wire_id, WIRE_CODE_UNAVAILABLE,
                       "no answer within request-timeout", NULL);
        return true;
    }
    struct buf out;
    buf_init(&out);
    cmd_combine_keyspace(sh, r, peer.proto, &out);
    if (out.failed)
        keyspace_reply(sh, r->owner, peer.wire_id, WIRE_CODE_ERROR, "out of memory", NULL);
    else
        keyspace_reply(sh, r->owner, peer.wire_id, WIRE_CODE_OK, NULL, &out);
    buf_fini(&out);
    return true;
}

/* Sub-result `sub` of r: d's handler on shard s. */
static void keyspace_run(struct shard *sh, struct req *r, uint32_t sub, uint32_t s,
                         const struct cmd_def *d, int proto, struct resp_arg *argv, uint32_t argc)
{
    struct cmd_msg *m = cmd_msg_for(sh, r->id, sub, s, d->handler,
                                    d->flags | CMD_BARRIER | CMD_NOKEY, proto, argv, argc, 0);
    if (!m) {
        r->subs[sub].status = REQ_ERR;
        resp_write_error(&r->subs[sub].body, "OOM out of memory");
        req_sub_done(&sh->reqs, r);
    } else if (s == sh->id) {
        cmd_msg_execute(sh, m);
    } else {
        shard_send(sh, s, m);
    }
}

/* The command RING.LOCAL carries, when it is a keyspace read with a valid
 * arity; else NULL. */
static const struct cmd_def *keyspace_command(const struct resp_arg *argv, uint32_t argc)
{
    const struct cmd_def *d = cmd_lookup(argv[0].ptr, argv[0].len);
    if (!d || (d->flags & CMD_WRITE) || (d->route != CMD_ROUTE_ALL && d->route != CMD_ROUTE_SCAN))
        return NULL;
    if ((d->arity > 0 && argc != (uint32_t)d->arity) ||
        (d->arity < 0 && argc < (uint32_t)-d->arity))
        return NULL;
    return d;
}

void keyspace_serve(struct shard *sh, uint64_t link, const struct wire_msg *wm,
                    struct resp_arg *argv, uint32_t argc)
{
    argv++;
    argc--;
    const struct cmd_def *d = argc >= 1 ? keyspace_command(argv, argc) : NULL;
    uint64_t cursor, pos;
    uint32_t shard = 0;
    if (!d || (d->route == CMD_ROUTE_SCAN &&
               !cmd_scan_cursor(sh->node, &argv[1], &cursor, &shard, &pos))) {
        keyspace_reply(sh, link, wm->id, WIRE_CODE_ERROR, "not a keyspace command", NULL);
        return;
    }
    uint32_t nsub = d->route == CMD_ROUTE_SCAN ? 1 : sh->node->nshards;
    int64_t deadline = shard_deadline_in(sh, wm->deadline_ms);
    struct req *r = req_new(&sh->reqs, nsub, nsub, keyspace_done, deadline);
    struct keyspace_peer peer = {wm->id, wm->flags & WIRE_MSG_RESP3 ? 3 : 2};
    if (r)
        buf_append(&r->extra, &peer, sizeof peer);
    if (!r || r->extra.failed) {
        if (r)
            req_cancel(&sh->reqs, r->id);
        keyspace_reply(sh, link, wm->id, WIRE_CODE_ERROR, "out of memory", NULL);
        return;
    }
    r->owner = link;
    r->kind = d->combine;
    if (d->route == CMD_ROUTE_SCAN) {
        char text[24];
        argv[1] = (struct resp_arg){text, (uint32_t)snprintf(text, sizeof text, "%" PRIu64, pos)};
        r->aux = shard;
        keyspace_run(sh, r, 0, shard, d, peer.proto, argv, argc);
    } else {
        for (uint32_t s = 0; s < nsub; s++)
            keyspace_run(sh, r, s, s, d, peer.proto, argv, argc);
    }
    req_arm(&sh->reqs, r);
}
