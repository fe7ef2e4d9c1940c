/* gossip.c: encoder and pure decoder of the membership frames (gossip.h).
 *
 * The decoder works in two passes over a complete frame: gossip_decode()
 * checks the header (version, known type, reserved byte zero, body length
 * within GOSSIP_BODY_MAX, the whole frame present, else MORE), reads the
 * fixed fields of the type, then walks every update once, checking that each
 * known kind's fields fill its length exactly and are within bounds (strings
 * without NUL, weight > 0, state and health in range) and that the count
 * matches and nothing trails. After that gossip_next_update() can read the
 * updates again without failing. Nothing is allocated; ids are turned from
 * 20 bytes into hex as they are read.
 *
 * RING_REQ and RING carry a ring's epoch and hash, RING also the ring's
 * bytes (a length within the body, checked before it is read), opaque here.
 *
 * The writer appends frames to one buffer (the member module's outbox): the
 * header and the update count are written as placeholders and patched by
 * gossip_end(), so updates can be appended while their number is not known. */
#include "gossip.h"

#include <stdlib.h>
#include <string.h>

#include "nodeid.h"

_Static_assert(GOSSIP_ID_LEN == NODEID_HEX, "a node id is nodeid.h's");

/* ---- bytes ---- */

struct rd {
    const uint8_t *p, *end;
    bool bad;
};

static bool rd_need(struct rd *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return false;
    }
    return true;
}

static uint64_t rd_le(struct rd *r, unsigned n)
{
    uint64_t v = 0;
    if (!rd_need(r, n))
        return 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += n;
    return v;
}

static void rd_id(struct rd *r, char *out)
{
    out[0] = '\0';
    if (!rd_need(r, NODEID_BYTES))
        return;
    nodeid_to_hex(r->p, out);
    r->p += NODEID_BYTES;
}

static void rd_str(struct rd *r, char *out, size_t max)
{
    out[0] = '\0';
    size_t n = rd_le(r, 1);
    if (r->bad || n > max || !rd_need(r, n) || memchr(r->p, 0, n)) {
        r->bad = true;
        return;
    }
    memcpy(out, r->p, n);
    out[n] = '\0';
    r->p += n;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- updates ---- */

static bool kind_has_info(unsigned kind)
{
    return kind == GOSSIP_ALIVE || kind == GOSSIP_JOIN || kind == GOSSIP_NODE;
}

static bool kind_has_state(unsigned kind)
{
    return kind == GOSSIP_JOIN || kind == GOSSIP_LEAVE || kind == GOSSIP_NODE;
}

/* Reads the fields of a known kind; r->bad on any bound broken. */
static void read_fields(struct rd *r, unsigned kind, struct gossip_update *u)
{
    memset(u, 0, sizeof *u);
    u->kind = (enum gossip_kind)kind;
    rd_id(r, u->info.id);
    if (kind != GOSSIP_LEAVE)
        u->incarnation = rd_le(r, 8);
    if (kind == GOSSIP_SUSPECT || kind == GOSSIP_DEAD)
        rd_id(r, u->from);
    if (kind_has_info(kind)) {
        rd_str(r, u->info.client_addr, GOSSIP_ADDR_MAX);
        rd_str(r, u->info.cluster_addr, GOSSIP_ADDR_MAX);
        rd_str(r, u->info.admin_addr, GOSSIP_ADDR_MAX);
        u->info.weight = (uint32_t)rd_le(r, 4);
        rd_str(r, u->info.zone, GOSSIP_ZONE_MAX);
        u->info.ring_epoch = rd_le(r, 8);
        u->info.ring_hash = rd_le(r, 8);
        if (u->info.weight == 0)
            r->bad = true;
    }
    if (kind_has_state(kind)) {
        u->state = (uint8_t)rd_le(r, 1);
        u->state_version = rd_le(r, 8);
        if (u->state > 3)
            r->bad = true;
    }
    if (kind == GOSSIP_NODE) {
        u->health = (uint8_t)rd_le(r, 1);
        if (u->health > 2)
            r->bad = true;
    }
}

static bool kind_known(unsigned kind) { return kind >= GOSSIP_ALIVE && kind <= GOSSIP_NODE; }

/* Reads one update's envelope; *known says whether u was filled. */
static void read_update(struct rd *r, struct gossip_update *u, bool *known)
{
    unsigned kind = (unsigned)rd_le(r, 1);
    size_t n = rd_le(r, 2);
    *known = false;
    if (!rd_need(r, n))
        return;
    struct rd body = {r->p, r->p + n, false};
    r->p += n;
    if (!kind_known(kind))
        return;
    read_fields(&body, kind, u);
    if (body.bad || body.p != body.end)
        r->bad = true;
    *known = !r->bad;
}

static uint8_t *put_str(uint8_t *p, const char *s, size_t max, bool *ok)
{
    size_t n = strlen(s);
    if (n > max) {
        *ok = false;
        return p;
    }
    *p++ = (uint8_t)n;
    memcpy(p, s, n);
    return p + n;
}

size_t gossip_encode_update(const struct gossip_update *u, uint8_t *out)
{
    unsigned kind = u->kind;
    bool ok = kind_known(kind) && nodeid_from_hex(u->info.id, out + 3);
    uint8_t *p = out + 3 + GOSSIP_ID_LEN / 2;
    if (kind != GOSSIP_LEAVE) {
        put_le(p, u->incarnation, 8);
        p += 8;
    }
    if (kind == GOSSIP_SUSPECT || kind == GOSSIP_DEAD) {
        ok = ok && nodeid_from_hex(u->from, p);
        p += GOSSIP_ID_LEN / 2;
    }
    if (kind_has_info(kind)) {
        p = put_str(p, u->info.client_addr, GOSSIP_ADDR_MAX, &ok);
        p = put_str(p, u->info.cluster_addr, GOSSIP_ADDR_MAX, &ok);
        p = put_str(p, u->info.admin_addr, GOSSIP_ADDR_MAX, &ok);
        put_le(p, u->info.weight, 4);
        p = put_str(p + 4, u->info.zone, GOSSIP_ZONE_MAX, &ok);
        put_le(p, u->info.ring_epoch, 8);
        put_le(p + 8, u->info.ring_hash, 8);
        p += 16;
        ok = ok && u->info.weight > 0;
    }
    if (kind_has_state(kind)) {
        *p = u->state;
        put_le(p + 1, u->state_version, 8);
        p += 9;
        ok = ok && u->state <= 3;
    }
    if (kind == GOSSIP_NODE) {
        *p++ = u->health;
        ok = ok && u->health <= 2;
    }
    if (!ok)
        return 0;
    out[0] = (uint8_t)kind;
    put_le(out + 1, (uint64_t)(p - out - 3), 2);
    return (size_t)(p - out);
}

/* ---- frames ---- */

static bool type_has_target(unsigned type)
{
    return type == GOSSIP_PING || type == GOSSIP_PING_REQ || type == GOSSIP_IND_ACK;
}

static bool type_has_ring(unsigned type)
{
    return type == GOSSIP_RING_REQ || type == GOSSIP_RING;
}

#define BAD(why)                                                                                   \
    do {                                                                                           \
        *err = why;                                                                                \
        return GOSSIP_BAD;                                                                         \
    } while (0)

enum gossip_status gossip_decode(const uint8_t *data, size_t len, struct gossip_msg *msg,
                                 size_t *consumed, const char **err)
{
    *consumed = 0;
    *err = NULL;
    if (len >= 1 && data[0] != GOSSIP_VERSION)
        BAD("unknown version");
    if (len >= 2 && (data[1] < GOSSIP_PING || data[1] > GOSSIP_RING))
        BAD("unknown frame type");
    if (len >= 3 && (data[2] & ~(GOSSIP_F_MAC | GOSSIP_F_REPLY | GOSSIP_F_JOIN | GOSSIP_F_STREAM)))
        BAD("unknown flags");
    if (len >= 4 && data[3] != 0)
        BAD("reserved byte not zero");
    if (len < GOSSIP_HEADER_LEN)
        return GOSSIP_MORE;
    struct rd h = {data + 4, data + 8, false};
    size_t body_len = rd_le(&h, 4);
    if (body_len > GOSSIP_BODY_MAX)
        BAD("frame too long");
    size_t mac_len = data[2] & GOSSIP_F_MAC ? GOSSIP_MAC_LEN : 0;
    size_t total = GOSSIP_HEADER_LEN + body_len + mac_len;
    if (len < total)
        return GOSSIP_MORE;

    memset(msg, 0, sizeof *msg);
    msg->type = (enum gossip_type)data[1];
    msg->flags = data[2];
    struct rd r = {data + GOSSIP_HEADER_LEN, data + GOSSIP_HEADER_LEN + body_len, false};
    msg->seq = (uint32_t)rd_le(&r, 4);
    rd_id(&r, msg->from);
    if (type_has_target(msg->type))
        rd_id(&r, msg->target);
    if (msg->type == GOSSIP_PING_REQ)
        rd_str(&r, msg->target_addr, GOSSIP_ADDR_MAX);
    if (type_has_ring(msg->type)) {
        msg->ring_epoch = rd_le(&r, 8);
        msg->ring_hash = rd_le(&r, 8);
    }
    if (msg->type == GOSSIP_RING) {
        msg->blob_len = (uint32_t)rd_le(&r, 4);
        if (rd_need(&r, msg->blob_len)) {
            msg->blob = r.p;
            r.p += msg->blob_len;
        }
    }
    msg->n_updates = (uint32_t)rd_le(&r, 4);
    if (r.bad)
        BAD("truncated or malformed frame fields");
    if (msg->n_updates > GOSSIP_UPDATES_MAX)
        BAD("too many updates");
    msg->updates = r.p;
    for (uint32_t i = 0; i < msg->n_updates && !r.bad; i++) {
        struct gossip_update u;
        bool known;
        read_update(&r, &u, &known);
        if (!r.bad && msg->type == GOSSIP_PUSH_PULL && known && u.kind != GOSSIP_NODE)
            BAD("push-pull carries a non-node update");
    }
    if (r.bad)
        BAD("malformed update");
    if (r.p != r.end)
        BAD("bytes after the last update");
    msg->updates_len = (size_t)(r.p - msg->updates);
    msg->signed_bytes = data;
    msg->signed_len = GOSSIP_HEADER_LEN + body_len;
    msg->mac = mac_len ? data + GOSSIP_HEADER_LEN + body_len : NULL;
    *consumed = total;
    return GOSSIP_OK;
}

void gossip_iter_init(struct gossip_iter *it, const struct gossip_msg *msg)
{
    it->p = msg->updates;
    it->end = msg->updates + msg->updates_len;
}

bool gossip_next_update(struct gossip_iter *it, struct gossip_update *u)
{
    while (it->p < it->end) {
        struct rd r = {it->p, it->end, false};
        bool known;
        read_update(&r, u, &known);
        it->p = r.bad ? it->end : r.p;
        if (known)
            return true;
    }
    return false;
}

/* ---- writer ---- */

void gossip_writer_init(struct gossip_writer *w) { memset(w, 0, sizeof *w); }

void gossip_writer_fini(struct gossip_writer *w)
{
    free(w->data);
    memset(w, 0, sizeof *w);
}

void gossip_writer_reset(struct gossip_writer *w)
{
    w->len = 0;
    w->failed = false;
}

static uint8_t *w_room(struct gossip_writer *w, size_t n)
{
    if (w->failed)
        return NULL;
    if (w->cap - w->len < n) {
        size_t cap = w->cap ? w->cap : 1024;
        while (cap - w->len < n)
            cap *= 2;
        uint8_t *d = realloc(w->data, cap);
        if (!d) {
            w->failed = true;
            return NULL;
        }
        w->data = d;
        w->cap = cap;
    }
    uint8_t *p = w->data + w->len;
    w->len += n;
    return p;
}

static void w_id(struct gossip_writer *w, const char *id)
{
    uint8_t *p = w_room(w, GOSSIP_ID_LEN / 2);
    if (!p)
        return;
    if (!id)
        memset(p, 0, GOSSIP_ID_LEN / 2);
    else if (!nodeid_from_hex(id, p))
        w->failed = true;
}

/* The header and the fields every frame has. */
static void begin_frame(struct gossip_writer *w, enum gossip_type type, uint8_t flags,
                        uint32_t seq, const char *from)
{
    w->frame_start = w->len;
    w->count = 0;
    uint8_t *p = w_room(w, GOSSIP_HEADER_LEN + 4);
    if (p) {
        p[0] = GOSSIP_VERSION;
        p[1] = (uint8_t)type;
        p[2] = flags;
        p[3] = 0;
        put_le(p + GOSSIP_HEADER_LEN, seq, 4);
    }
    w_id(w, from);
}

/* The update count's placeholder (gossip_end() writes it). */
static void begin_updates(struct gossip_writer *w)
{
    w->count_at = w->len;
    w_room(w, 4);
}

void gossip_begin(struct gossip_writer *w, enum gossip_type type, uint8_t flags, uint32_t seq,
                  const char *from, const char *target, const char *target_addr)
{
    begin_frame(w, type, flags, seq, from);
    if (type_has_target(type))
        w_id(w, target);
    if (type == GOSSIP_PING_REQ) {
        size_t n = target_addr ? strlen(target_addr) : 0;
        uint8_t *s = n <= GOSSIP_ADDR_MAX ? w_room(w, 1 + n) : NULL;
        if (s) {
            s[0] = (uint8_t)n;
            memcpy(s + 1, target_addr, n);
        } else {
            w->failed = true;
        }
    }
    begin_updates(w);
}

void gossip_begin_ring(struct gossip_writer *w, enum gossip_type type, uint8_t flags,
                       uint32_t seq, const char *from, uint64_t epoch, uint64_t hash,
                       const uint8_t *blob, uint32_t blob_len)
{
    begin_frame(w, type, flags, seq, from);
    if (!type_has_ring(type))
        w->failed = true;
    uint8_t *p = w_room(w, 16 + (type == GOSSIP_RING ? 4 + (size_t)blob_len : 0));
    if (p) {
        put_le(p, epoch, 8);
        put_le(p + 8, hash, 8);
        if (type == GOSSIP_RING) {
            put_le(p + 16, blob_len, 4);
            if (blob_len)
                memcpy(p + 20, blob, blob_len);
        }
    }
    begin_updates(w);
}

void gossip_add_raw(struct gossip_writer *w, const uint8_t *update, size_t len)
{
    uint8_t *p = w_room(w, len);
    if (p) {
        memcpy(p, update, len);
        w->count++;
    }
}

void gossip_add_update(struct gossip_writer *w, const struct gossip_update *u)
{
    uint8_t tmp[GOSSIP_UPDATE_MAX];
    size_t n = gossip_encode_update(u, tmp);
    if (n == 0)
        w->failed = true;
    else
        gossip_add_raw(w, tmp, n);
}

size_t gossip_frame_len(const struct gossip_writer *w) { return w->len - w->frame_start; }

size_t gossip_end(struct gossip_writer *w)
{
    size_t start = w->frame_start;
    if (w->failed)
        return start;
    size_t body = w->len - start - GOSSIP_HEADER_LEN;
    if (w->count > GOSSIP_UPDATES_MAX || body > GOSSIP_BODY_MAX) {
        w->failed = true;
        return start;
    }
    bool mac = w->data[start + 2] & GOSSIP_F_MAC;
    put_le(w->data + w->count_at, w->count, 4);
    put_le(w->data + start + 4, body, 4);
    if (mac) {
        uint8_t *p = w_room(w, GOSSIP_MAC_LEN);
        if (p)
            memset(p, 0, GOSSIP_MAC_LEN);
    }
    return start;
}
