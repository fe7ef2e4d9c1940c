/* cmd_order.c: a client's pipeline keeps its order in a cluster (see
 * cmd_order.h). The notes of a connection are a small unordered array,
 * grown by doubling (every note in it is of a request ahead of the one
 * looked at: a held request is read only once it may run); a request's
 * note is found by its id when it ends (a pipeline's depth: a few entries
 * to look at). The notes are counted by kind, so a request looks at them
 * only while one of a kind it waits for is in flight. */
#include "cmd_order.h"

#include <mimalloc.h>

#include "cmd_multi.h"
#include "cmd_server.h"
#include "keyhash.h"

#define CMD_ORDER_FIRST_CAP 8
#define CMD_ORDER_KEEP_CAP 64 /* a drained array larger than this is freed */

/* What a request waits for: is_write (any write), is_rmw (a
 * read-modify-write, or a request of unknown kind: waits for every note). */
struct order_want {
    bool is_write, is_rmw;
};

/* Whether a note of o meets a request of `slot` (either may be
 * CMD_ORDER_ANY) that wants w (see cmd_order.h). */
static bool order_meets(const struct conn_order *o, uint32_t slot, struct order_want w)
{
    uint32_t waited = o->count[CMD_ORDER_LATE] + (w.is_write ? o->count[CMD_ORDER_READ] : 0) +
                      (w.is_rmw ? o->count[CMD_ORDER_PLAIN] : 0);
    if (waited == 0)
        return false;
    for (uint32_t i = 0; i < o->n; i++) {
        const struct conn_order_note *e = &o->e[i];
        bool waits = e->kind == CMD_ORDER_LATE || (w.is_write && e->kind == CMD_ORDER_READ) ||
                     (w.is_rmw && e->kind == CMD_ORDER_PLAIN);
        if (waits && (e->slot == slot || e->slot == CMD_ORDER_ANY || slot == CMD_ORDER_ANY))
            return true;
    }
    return false;
}

/* Holds c's input when a note meets `slot`. */
static bool order_hold_if(struct conn *c, uint32_t slot, struct order_want w)
{
    if (!order_meets(c->order, slot, w))
        return false;
    conn_hold_input(c);
    return true;
}

static const struct order_want order_every = {true, true};

bool cmd_order_holds_resp(struct conn *c, const struct cmd_def *d, const struct resp_arg *argv,
                          uint32_t argc)
{
    if (!d)
        return false;
    if (cmd_multi_is_open(c)) /* queued, run at EXEC; EXEC waits for every note */
        return d->handler == cmd_exec && order_hold_if(c, CMD_ORDER_ANY, order_every);
    struct order_want w = {(d->flags & CMD_WRITE) != 0, false};
    if (w.is_write)
        w.is_rmw = (cmd_flags_for(d, argv, argc) & CMD_RMW) != 0;
    if ((d->handler == cmd_object || d->handler == cmd_memory) && argc > 2)
        /* OBJECT and MEMORY subcommands of a key: read as RING.KEYINFO key */
        return order_hold_if(c, keyhash_slot(argv[2].ptr, argv[2].len), w);
    if (d->first_key <= 0) /* connection commands see no key; keyspace-wide ones
                              (FLUSHALL, DBSIZE...) go to other shards and
                              members on links of their own: they wait for all */
        return d->route != CMD_ROUTE_CONN && order_hold_if(c, CMD_ORDER_ANY, order_every);
    int last = d->last_key < 0 ? (int)argc + d->last_key : d->last_key;
    int step = d->key_step > 0 ? d->key_step : 1;
    uint32_t looked = 0;
    for (int i = d->first_key; i <= last && i < (int)argc; i += step) {
        if (++looked > CMD_ORDER_KEYS)
            return order_hold_if(c, CMD_ORDER_ANY, w);
        if (order_hold_if(c, keyhash_slot(argv[i].ptr, argv[i].len), w))
            return true;
    }
    return false;
}

bool cmd_order_holds_mc(struct conn *c, const struct mc_request *req)
{
    const struct cmd_mc_def *d = cmd_mc_def(req->cmd);
    if (!d || (d->flags & CMD_NOKEY) || req->nkeys == 0)
        return req->cmd == MC_FLUSH_ALL && order_hold_if(c, CMD_ORDER_ANY, order_every);
    uint32_t flags = cmd_mc_flags(req);
    /* gets goes to the first live replica as a read-modify-write does: on
     * another link than a plain write's SYNCs, so it waits for them too */
    struct order_want w = {(flags & CMD_WRITE) != 0, (flags & (CMD_RMW | CMD_FIRST_LIVE)) != 0};
    if (req->nkeys > CMD_ORDER_KEYS)
        return order_hold_if(c, CMD_ORDER_ANY, w);
    for (uint32_t i = 0; i < req->nkeys; i++)
        if (order_hold_if(c, keyhash_slot(req->keys[i].ptr, req->keys[i].len), w))
            return true;
    return false;
}

void cmd_order_note(struct conn *c, uint64_t req_id, uint32_t slot, enum cmd_order_kind kind)
{
    struct conn_order *o = c->order;
    for (uint32_t i = o ? o->n : 0; i-- > 0;) {
        struct conn_order_note *e = &o->e[i];
        if (e->req_id != req_id)
            continue;
        if (e->slot != slot)
            e->slot = CMD_ORDER_ANY;
        if (kind > e->kind) {
            o->count[e->kind]--;
            o->count[kind]++;
            e->kind = kind;
        }
        return;
    }
    if (!o || o->n == o->cap) {
        uint32_t cap = o ? o->cap * 2 : CMD_ORDER_FIRST_CAP;
        struct conn_order *grown = mi_realloc(o, sizeof *o + (size_t)cap * sizeof o->e[0]);
        if (!grown)
            return;
        if (!o)
            *grown = (struct conn_order){0};
        grown->cap = cap;
        c->order = o = grown;
    }
    o->e[o->n++] = (struct conn_order_note){req_id, slot, kind};
    o->count[kind]++;
}

void cmd_order_note_route(struct conn *c, uint64_t req_id, uint32_t slot, uint32_t flags,
                          enum coord_route_kind kind)
{
    bool is_write = (flags & (CMD_WRITE | CMD_RMW)) != 0;
    bool is_late = (flags & CMD_RMW) || (is_write && kind == COORD_FORWARD);
    /* a gets forwarded to the first live replica is a read: later writes
     * wait for it, reads need not */
    cmd_order_note(c, req_id, slot,
                   is_late ? CMD_ORDER_LATE : is_write ? CMD_ORDER_PLAIN : CMD_ORDER_READ);
}

void cmd_order_end(struct conn *c, uint64_t req_id)
{
    struct conn_order *o = c->order;
    if (!o)
        return;
    for (uint32_t i = 0; i < o->n; i++) {
        if (o->e[i].req_id != req_id)
            continue;
        o->count[o->e[i].kind]--;
        o->e[i] = o->e[--o->n]; /* the notes' order does not matter */
        if (o->n == 0 && o->cap > CMD_ORDER_KEEP_CAP) { /* a deep pipeline's array, drained */
            mi_free(o);
            c->order = NULL;
        }
        conn_release_input(c); /* the held request is looked at again */
        return;
    }
}
