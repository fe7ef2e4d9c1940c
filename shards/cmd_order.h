/* cmd_order.h: a client's pipeline keeps its order in a cluster.
 * On a node alone a connection's requests run one after another, so a GET
 * pipelined behind an INCR of its key sees the INCR, and a GET ahead of a
 * DEL does not see the DEL. In a cluster a request is an operation in
 * flight, and two of one connection could cross: a read-modify-write
 * (INCR, APPEND, SET ... GET, EXEC, memcached's incr, cas, add...) reads a
 * quorum first, a forwarded write is coordinated by another node, and a
 * read runs its command again when the copy here changed before its
 * quorum came, so a GET saw the DEL sent after it, or missed the INCR sent
 * before it, both already acknowledged in the reply order.
 * So in a cluster each keyed request is noted on its connection
 * (conn.order) until its reply is ready, with its key's slot and what it
 * is: a read, a plain write (SET, DEL...), or a late write (one that
 * lands later or elsewhere: a read-modify-write, a write sent on to
 * another node, a write to every member). A later request of that
 * connection waits, held unread (conn_hold_input), while a note of a slot
 * it touches says so:
 *   - a late write: every request waits for it;
 *   - a read: writes wait for it (the read must not see them);
 *   - a plain write: read-modify-writes wait for it (their quorum read may
 *     be coordinated elsewhere, on a link its SYNCs do not share).
 * A read does not wait for a plain write: the copy here took it at once
 * and each peer's link carries its SYNC ahead of the read's request. Nor
 * do reads wait for reads, nor requests for other slots, so a pipeline of
 * GETs and SETs, or of INCRs over many keys, keeps its depth. A request
 * whose slots are not known cheaply (keyless ones but connection commands,
 * more than CMD_ORDER_KEYS keys) counts as touching every slot, as does a
 * note of a request of several slots; a keyspace-wide one (FLUSHALL,
 * DBSIZE...) waits for every note. A memcached gets goes to the slot's first
 * live replica, so it waits for plain writes as a read-modify-write does.
 * A note ends with its request's reply, also a -TIMEOUT: a write that timed
 * out may still land after the requests that waited for it (as on any
 * client's retry after a timeout, its outcome is unknown).
 *
 * Threads: the connection's shard. Cost: a node alone notes nothing; in a
 * cluster a request adds and removes one note and looks at the notes in
 * flight on its connection (a read only while a late write is among
 * them). */
#ifndef RINGKV_SHARDS_CMD_ORDER_H
#define RINGKV_SHARDS_CMD_ORDER_H

#include <stdbool.h>
#include <stdint.h>

#include "cmd.h"
#include "conn.h"
#include "coord.h"

#define CMD_ORDER_ANY UINT32_MAX /* a note of several slots: it meets every request */
#define CMD_ORDER_KEYS 16        /* keys of a request looked at; past that: every slot */

enum cmd_order_kind { CMD_ORDER_READ, CMD_ORDER_PLAIN, CMD_ORDER_LATE };

struct conn_order_note {
    uint64_t req_id;
    uint32_t slot; /* or CMD_ORDER_ANY */
    enum cmd_order_kind kind;
};

struct conn_order {
    uint32_t n, cap;
    uint32_t count[3]; /* notes of each kind */
    struct conn_order_note e[];
};

/* Whether c has requests noted: the test dispatch makes before the others. */
static inline bool cmd_order_any(const struct conn *c)
{
    return c->order && c->order->n > 0;
}

/* Whether the RESP request (d: its row, NULL when unknown) must wait for a
 * noted one; if so its input is held (conn_hold_input) and the caller
 * returns without running it. Called only while cmd_order_any(c), the
 * dispatcher's test of every request. */
bool cmd_order_holds_resp(struct conn *c, const struct cmd_def *d, const struct resp_arg *argv,
                          uint32_t argc);
/* The same for a memcached request. */
bool cmd_order_holds_mc(struct conn *c, const struct mc_request *req);

/* Notes request req_id of c, of `slot` (CMD_ORDER_ANY: several), until
 * cmd_order_end. A request noted already keeps one note, of CMD_ORDER_ANY
 * once its slots differ, of the latest kind of its parts. Out of memory
 * notes nothing. */
void cmd_order_note(struct conn *c, uint64_t req_id, uint32_t slot, enum cmd_order_kind kind);
/* Notes a keyed part of request req_id routed as `kind` with `flags` (cmd.h
 * CMD_*): a read, a plain write coordinated here, or a late write (a
 * read-modify-write, or a write sent on). */
void cmd_order_note_route(struct conn *c, uint64_t req_id, uint32_t slot, uint32_t flags,
                          enum coord_route_kind kind);
/* Request req_id of c ended: its note goes, and held input goes on. */
void cmd_order_end(struct conn *c, uint64_t req_id);

#endif
