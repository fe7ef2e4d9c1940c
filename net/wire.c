/* wire.c: the node-to-node protocol's codec and handshake (see wire.h for
 * the byte layout).
 *
 * Decoding is in two steps. wire_decode() looks at one frame: its header
 * bytes are checked as soon as each is present (magic, version, a type the
 * connection's state allows, no flags), then the body length against the
 * type's exact or bounded size, so a peer that sends garbage or an oversize
 * length is refused before anything is buffered for it; an incomplete frame
 * is MORE with the length it needs, which costs O(1) per call however the
 * bytes are split. A complete handshake frame is decoded whole (every field
 * range-checked); a BATCH's body is left to wire_next_msg(), which reads one
 * message per call in a single pass: header, fixed fields, then the payload
 * (key, meta, values), each length checked against the limits and against
 * what is left of the message before it is used, and the message's fields
 * must fill its length exactly. Nothing is copied or allocated: slices
 * point into the input. Because every reserved byte must be zero and every
 * length is exact, an encoding is canonical: re-encoding a decoded frame
 * gives the same bytes (the fuzzer checks this).
 *
 * The writer appends a message straight into the output buffer, opening a
 * BATCH header when none is open and patching its length on flush, so a
 * loop turn's messages for one connection become one frame and one write.
 *
 * The handshake is a small state machine per connection side (wire.h says
 * the exchange); it keeps the HELLO and CHALLENGE bodies as they went over
 * the wire, because the proofs are HMACs over exactly those bytes.
 * Runs on whichever thread owns the connection; no state outside the
 * caller's structs. */
#include "wire.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "nodeid.h"
#include "secret.h"

_Static_assert(WIRE_ID_LEN == NODEID_BYTES && WIRE_ID_HEX == NODEID_HEX, "a node id is nodeid.h's");

#define PROOF_LABEL "ringkv wire proof"
#define PROOF_LABEL_LEN 17

/* ---- names ---- */

/* One case of a name switch; the three lists share the (id, n, name) shape. */
#define NAME_CASE(id, n, name)                                                                     \
    case n:                                                                                        \
        return name;

const char *wire_op_name(unsigned op)
{
    switch (op) {
        WIRE_OPS(NAME_CASE)
    }
    return "?";
}

const char *wire_code_name(unsigned code)
{
    switch (code) {
        WIRE_CODES(NAME_CASE)
    }
    return "?";
}

const char *wire_refusal_text(unsigned reason)
{
    switch (reason) {
        WIRE_REFUSALS(NAME_CASE)
    }
    return "refused";
}

/* Ops of WIRE_OPS (the list has gaps: each feature has its range). */
#define KNOWN_CASE(id, n, name) case n:
static bool op_known(unsigned op)
{
    switch (op) {
        WIRE_OPS(KNOWN_CASE)
        return true;
    }
    return false;
}
#undef KNOWN_CASE

/* ---- bytes ---- */

static inline uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t get64(const uint8_t *p)
{
    return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static inline uint8_t *put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    return p + 2;
}

static inline uint8_t *put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
    return p + 4;
}

static inline uint8_t *put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    return put32(p + 4, (uint32_t)(v >> 32));
}

static bool printable(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] > 0x7e)
            return false;
    return true;
}

void wire_limits_default(struct wire_limits *lim)
{
    lim->max_frame = WIRE_FRAME_MAX;
    lim->max_key = WIRE_KEY_MAX;
    lim->max_value = WIRE_VALUE_MAX;
    lim->max_meta = WIRE_META_MAX;
    lim->max_values = WIRE_VALUES_MAX;
    lim->max_command = WIRE_COMMAND_MAX;
}

/* ---- frames ---- */

#define BAD(why)                                                                                   \
    do {                                                                                           \
        *err = why;                                                                                \
        return WIRE_BAD;                                                                           \
    } while (0)

/* The header's checks that need only its first bytes; NULL when they pass. */
static const char *check_head(const struct wire_decoder *dec, const uint8_t *data, size_t len)
{
    if (len >= 1 && data[0] != WIRE_MAGIC)
        return "not a wire frame (bad magic byte)";
    if (len >= 2 && data[1] != WIRE_VERSION_HANDSHAKE && data[1] != dec->version)
        return "unknown protocol version";
    if (len < 3)
        return NULL;
    unsigned type = data[2];
    if (type < WIRE_HELLO || type > WIRE_BATCH)
        return "unknown frame type";
    if (type == WIRE_BATCH && dec->version == 0)
        return "batch before the handshake";
    if (type <= WIRE_PROOF && dec->version != 0)
        return "handshake frame after the handshake";
    if (data[1] != (type == WIRE_BATCH ? dec->version : WIRE_VERSION_HANDSHAKE))
        return "frame version does not match the connection's";
    if (len >= 4 && data[3] != 0)
        return "unknown frame flags";
    return NULL;
}

/* The body length's check, once the header is in. */
static const char *check_length(const struct wire_decoder *dec, unsigned type, uint32_t n)
{
    switch (type) {
    case WIRE_HELLO:
        return n == WIRE_HELLO_LEN ? NULL : "HELLO of the wrong length";
    case WIRE_CHALLENGE:
        return n == WIRE_CHALLENGE_LEN ? NULL : "CHALLENGE of the wrong length";
    case WIRE_PROOF:
        return n == WIRE_PROOF_LEN ? NULL : "PROOF of the wrong length";
    case WIRE_REFUSE:
        return n >= WIRE_REFUSE_MIN && n <= WIRE_REFUSE_MIN + WIRE_REASON_MAX
                   ? NULL
                   : "REFUSE of the wrong length";
    default:
        if (n == 0)
            return "empty batch";
        return n <= dec->lim.max_frame && n <= WIRE_FRAME_MAX ? NULL : "batch too long";
    }
}

static bool frame_size_ok(uint32_t n)
{
    return n >= WIRE_FRAME_MIN && n <= WIRE_FRAME_MAX;
}

static const char *read_hello(const uint8_t *b, struct wire_hello *h)
{
    h->version_min = b[0];
    h->version_max = b[1];
    h->from_shard = get16(b + 2);
    h->shards = get16(b + 4);
    h->to_shard = get16(b + 6);
    h->max_frame = get32(b + 8);
    memcpy(h->node_id, b + 12, WIRE_ID_LEN);
    memcpy(h->nonce, b + 32, WIRE_NONCE_LEN);
    if (h->version_min == 0 || h->version_min > h->version_max)
        return "HELLO with an empty version range";
    if (h->from_shard >= h->shards)
        return "HELLO from a shard out of range";
    return frame_size_ok(h->max_frame) ? NULL : "HELLO with a frame size out of range";
}

static const char *read_challenge(const uint8_t *b, struct wire_challenge *c)
{
    c->version = b[0];
    c->shard = get16(b + 2);
    c->shards = get16(b + 4);
    c->max_frame = get32(b + 8);
    memcpy(c->node_id, b + 12, WIRE_ID_LEN);
    memcpy(c->nonce, b + 32, WIRE_NONCE_LEN);
    memcpy(c->proof, b + 64, WIRE_PROOF_LEN);
    if (c->version == 0 || b[1] != 0 || get16(b + 6) != 0)
        return "CHALLENGE with a zero version or reserved bytes set";
    if (c->shard >= c->shards)
        return "CHALLENGE from a shard out of range";
    return frame_size_ok(c->max_frame) ? NULL : "CHALLENGE with a frame size out of range";
}

static const char *read_refuse(const uint8_t *b, uint32_t n, struct wire_refuse *r)
{
    r->reason = b[0];
    r->version_min = b[1];
    r->version_max = b[2];
    r->text.ptr = b + WIRE_REFUSE_MIN;
    r->text.len = b[3];
    if (r->reason == 0)
        return "REFUSE without a reason";
    if (WIRE_REFUSE_MIN + (uint32_t)b[3] != n)
        return "REFUSE text length does not match the frame";
    return printable(r->text.ptr, r->text.len) ? NULL : "REFUSE text not printable";
}

enum wire_status wire_decode(const struct wire_decoder *dec, const uint8_t *data, size_t len,
                             struct wire_frame *f, size_t *consumed, size_t *need, const char **err)
{
    *consumed = 0;
    *need = 0;
    *err = NULL;
    const char *why = check_head(dec, data, len);
    if (why)
        BAD(why);
    if (len < WIRE_HEADER_LEN) {
        *need = WIRE_HEADER_LEN;
        return WIRE_MORE;
    }
    unsigned type = data[2];
    uint32_t body_len = get32(data + 4);
    if ((why = check_length(dec, type, body_len)))
        BAD(why);
    size_t total = WIRE_HEADER_LEN + (size_t)body_len;
    if (len < total) {
        *need = total;
        return WIRE_MORE;
    }
    f->type = (enum wire_type)type;
    f->version = data[1];
    f->body_len = body_len;
    f->body = data + WIRE_HEADER_LEN;
    switch (type) {
    case WIRE_HELLO:
        why = read_hello(f->body, &f->u.hello);
        break;
    case WIRE_CHALLENGE:
        why = read_challenge(f->body, &f->u.challenge);
        break;
    case WIRE_PROOF:
        memcpy(f->u.proof, f->body, WIRE_PROOF_LEN);
        break;
    case WIRE_REFUSE:
        why = read_refuse(f->body, body_len, &f->u.refuse);
        break;
    }
    if (why)
        BAD(why);
    *consumed = total;
    return WIRE_OK;
}

/* ---- messages ---- */

void wire_cursor_init(struct wire_cursor *c, const struct wire_decoder *dec,
                      const struct wire_frame *f)
{
    c->p = f->body;
    c->end = f->type == WIRE_BATCH ? f->body + f->body_len : f->body;
    c->lim = &dec->lim;
}

/* A u32 length and that many bytes at *p, within end and max. */
static bool read_slice(const uint8_t **p, const uint8_t *end, uint32_t max, struct wire_bytes *s)
{
    if (end - *p < 4)
        return false;
    uint32_t n = get32(*p);
    if (n > max || (size_t)(end - *p - 4) < n)
        return false;
    s->ptr = *p + 4;
    s->len = n;
    *p += 4 + (size_t)n;
    return true;
}

/* key, meta, values: from p to exactly end. */
static const char *read_payload(const uint8_t *p, const uint8_t *end, const struct wire_limits *lim,
                                struct wire_msg *m)
{
    if (!read_slice(&p, end, lim->max_key, &m->key))
        return "key too long or truncated";
    if (!read_slice(&p, end, lim->max_meta, &m->meta))
        return "version metadata too long or truncated";
    if (end - p < 2)
        return "value count truncated";
    m->n_values = get16(p);
    p += 2;
    if (m->n_values > lim->max_values)
        return "too many values";
    uint32_t max = m->op == WIRE_OP_FORWARD ? lim->max_command : lim->max_value;
    m->raw_values.ptr = p;
    for (uint32_t i = 0; i < m->n_values; i++) {
        struct wire_bytes v;
        if (!read_slice(&p, end, max, &v))
            return "value too long or truncated";
    }
    m->raw_values.len = (uint32_t)(p - m->raw_values.ptr);
    return p == end ? NULL : "bytes after the last value";
}

/* WIRE_MSG_MC: on FORWARD only, and not with WIRE_MSG_RESP3;
 * WIRE_MSG_REAP: on GET only. */
static bool request_flags_fit(unsigned op, unsigned flags)
{
    if ((flags & WIRE_MSG_REAP) && op != WIRE_OP_GET)
        return false;
    return !(flags & WIRE_MSG_MC) || (op == WIRE_OP_FORWARD && !(flags & WIRE_MSG_RESP3));
}

static const char *read_request(const uint8_t *b, const uint8_t *end, const struct wire_limits *lim,
                                struct wire_msg *m)
{
    if (m->flags & ~WIRE_MSG_REQUEST_FLAGS)
        return "unknown request flags";
    if (end - b < WIRE_REQUEST_FIXED)
        return "request shorter than its fixed fields";
    m->id = get64(b);
    m->deadline_ms = get32(b + 8);
    m->partition = get16(b + 12);
    m->slot = get16(b + 14);
    m->op = b[16];
    m->r = b[17];
    m->w = b[18];
    m->expire_at_ms = get64(b + 20);
    if (!op_known(m->op))
        return "unknown request op";
    if (m->slot >= WIRE_SLOTS)
        return "slot out of range";
    if (b[19] != 0)
        return "reserved request byte set";
    if (!request_flags_fit(m->op, m->flags))
        return (m->flags & WIRE_MSG_REAP) && m->op != WIRE_OP_GET
                   ? "reap flag on a request other than GET"
                   : "memcached flag on a request other than a RESP2 FORWARD";
    return read_payload(b + WIRE_REQUEST_FIXED, end, lim, m);
}

static const char *read_reply(const uint8_t *b, const uint8_t *end, const struct wire_limits *lim,
                              struct wire_msg *m)
{
    if (m->flags != 0)
        return "unknown reply flags";
    if (end - b < WIRE_REPLY_FIXED)
        return "reply shorter than its fixed fields";
    m->id = get64(b);
    m->status = b[8];
    m->op = b[9];
    m->text.len = get16(b + 10);
    m->expire_at_ms = get64(b + 12);
    m->text.ptr = b + WIRE_REPLY_FIXED;
    if (m->status > WIRE_CODE_OVERLOADED)
        return "unknown reply status";
    if (!op_known(m->op))
        return "unknown reply op";
    if (m->text.len > WIRE_TEXT_MAX || end - m->text.ptr < m->text.len)
        return "reply text too long or truncated";
    if (!printable(m->text.ptr, m->text.len))
        return "reply text not printable";
    return read_payload(m->text.ptr + m->text.len, end, lim, m);
}

enum wire_status wire_next_msg(struct wire_cursor *c, struct wire_msg *m, const char **err)
{
    *err = NULL;
    if (c->p == c->end)
        return WIRE_END;
    if (c->end - c->p < WIRE_MSG_HEADER_LEN)
        BAD("message header truncated");
    uint32_t n = get32(c->p + 2);
    if ((size_t)(c->end - c->p - WIRE_MSG_HEADER_LEN) < n)
        BAD("message longer than its batch");
    const uint8_t *b = c->p + WIRE_MSG_HEADER_LEN;
    memset(m, 0, sizeof *m);
    m->kind = (enum wire_kind)c->p[0];
    m->flags = c->p[1];
    const char *why;
    if (m->kind == WIRE_REQUEST)
        why = read_request(b, b + n, c->lim, m);
    else if (m->kind == WIRE_REPLY)
        why = read_reply(b, b + n, c->lim, m);
    else
        why = "unknown message kind";
    if (why)
        BAD(why);
    c->p = b + n;
    return WIRE_OK;
}

void wire_values_init(struct wire_value_iter *it, const struct wire_msg *m)
{
    it->p = m->raw_values.ptr;
    it->end = m->raw_values.ptr + m->raw_values.len;
}

bool wire_values_next(struct wire_value_iter *it, struct wire_bytes *v)
{
    if (it->end - it->p < 4)
        return false;
    v->len = get32(it->p);
    v->ptr = it->p + 4;
    it->p += 4 + (size_t)v->len;
    return true;
}

/* ---- writing ---- */

static uint8_t *put_header(uint8_t *p, unsigned version, unsigned type, uint32_t body_len)
{
    p[0] = WIRE_MAGIC;
    p[1] = (uint8_t)version;
    p[2] = (uint8_t)type;
    p[3] = 0;
    return put32(p + 4, body_len);
}

/* Room for a whole frame of body n; NULL (out->failed) when none. */
static uint8_t *frame_room(struct buf *out, unsigned type, uint32_t n)
{
    if (buf_reserve(out, WIRE_HEADER_LEN + (size_t)n) != 0)
        return NULL;
    uint8_t *p = (uint8_t *)out->data + out->len;
    out->len += WIRE_HEADER_LEN + (size_t)n;
    return put_header(p, WIRE_VERSION_HANDSHAKE, type, n);
}

static void hello_body(const struct wire_hello *h, uint8_t *b)
{
    b[0] = h->version_min;
    b[1] = h->version_max;
    put16(b + 2, h->from_shard);
    put16(b + 4, h->shards);
    put16(b + 6, h->to_shard);
    put32(b + 8, h->max_frame);
    memcpy(b + 12, h->node_id, WIRE_ID_LEN);
    memcpy(b + 32, h->nonce, WIRE_NONCE_LEN);
}

static void challenge_body(const struct wire_challenge *c, uint8_t *b)
{
    b[0] = c->version;
    b[1] = 0;
    put16(b + 2, c->shard);
    put16(b + 4, c->shards);
    put16(b + 6, 0);
    put32(b + 8, c->max_frame);
    memcpy(b + 12, c->node_id, WIRE_ID_LEN);
    memcpy(b + 32, c->nonce, WIRE_NONCE_LEN);
    memcpy(b + 64, c->proof, WIRE_PROOF_LEN);
}

void wire_put_hello(struct buf *out, const struct wire_hello *h)
{
    uint8_t *b = frame_room(out, WIRE_HELLO, WIRE_HELLO_LEN);
    if (b)
        hello_body(h, b);
}

void wire_put_challenge(struct buf *out, const struct wire_challenge *c)
{
    uint8_t *b = frame_room(out, WIRE_CHALLENGE, WIRE_CHALLENGE_LEN);
    if (b)
        challenge_body(c, b);
}

void wire_put_proof(struct buf *out, const uint8_t proof[WIRE_PROOF_LEN])
{
    uint8_t *b = frame_room(out, WIRE_PROOF, WIRE_PROOF_LEN);
    if (b)
        memcpy(b, proof, WIRE_PROOF_LEN);
}

void wire_put_refuse(struct buf *out, uint8_t reason, uint8_t version_min, uint8_t version_max,
                     const char *text)
{
    size_t n = strlen(text);
    if (n > WIRE_REASON_MAX)
        n = WIRE_REASON_MAX;
    uint8_t *b = frame_room(out, WIRE_REFUSE, WIRE_REFUSE_MIN + (uint32_t)n);
    if (!b)
        return;
    b[0] = reason;
    b[1] = version_min;
    b[2] = version_max;
    b[3] = (uint8_t)n;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = (uint8_t)text[i];
        b[WIRE_REFUSE_MIN + i] = ch >= 0x20 && ch <= 0x7e ? ch : '?';
    }
}

/* Bytes the values take on the wire, or 0 with *ok false when one is over max. */
static uint64_t values_size(const struct wire_msg *m, uint32_t max, bool *ok)
{
    if (!m->values)
        return m->n_values ? m->raw_values.len : 0;
    uint64_t n = 0;
    for (uint32_t i = 0; i < m->n_values; i++) {
        if (m->values[i].len > max)
            *ok = false;
        n += 4 + (uint64_t)m->values[i].len;
    }
    return n;
}

uint64_t wire_msg_size(const struct wire_msg *m)
{
    bool ok = op_known(m->op) && m->key.len <= WIRE_KEY_MAX && m->meta.len <= WIRE_META_MAX;
    uint64_t n = WIRE_MSG_HEADER_LEN + 4 + (uint64_t)m->key.len + 4 + m->meta.len + 2;
    if (m->kind == WIRE_REQUEST) {
        ok = ok && !(m->flags & ~WIRE_MSG_REQUEST_FLAGS) && request_flags_fit(m->op, m->flags) &&
             m->slot < WIRE_SLOTS;
        n += WIRE_REQUEST_FIXED;
    } else if (m->kind == WIRE_REPLY) {
        ok = ok && m->flags == 0 && m->status <= WIRE_CODE_OVERLOADED &&
             m->text.len <= WIRE_TEXT_MAX && printable(m->text.ptr, m->text.len);
        n += WIRE_REPLY_FIXED + (uint64_t)m->text.len;
    } else {
        return 0;
    }
    n += values_size(m, m->op == WIRE_OP_FORWARD ? WIRE_COMMAND_MAX : WIRE_VALUE_MAX, &ok);
    return ok ? n : 0;
}

static uint8_t *put_slice(uint8_t *p, struct wire_bytes s)
{
    p = put32(p, s.len);
    if (s.len)
        memcpy(p, s.ptr, s.len);
    return p + s.len;
}

/* Writes the message (size n, checked) at p. */
static void put_msg(uint8_t *p, const struct wire_msg *m, uint64_t n)
{
    p[0] = (uint8_t)m->kind;
    p[1] = m->flags;
    p = put32(p + 2, (uint32_t)(n - WIRE_MSG_HEADER_LEN));
    p = put64(p, m->id);
    if (m->kind == WIRE_REQUEST) {
        p = put32(p, m->deadline_ms);
        p = put16(p, m->partition);
        p = put16(p, m->slot);
        p[0] = m->op;
        p[1] = m->r;
        p[2] = m->w;
        p[3] = 0;
        p = put64(p + 4, m->expire_at_ms);
    } else {
        p[0] = m->status;
        p[1] = m->op;
        p = put16(p + 2, (uint16_t)m->text.len);
        p = put64(p, m->expire_at_ms);
        if (m->text.len)
            memcpy(p, m->text.ptr, m->text.len);
        p += m->text.len;
    }
    p = put_slice(p, m->key);
    p = put_slice(p, m->meta);
    p = put16(p, m->n_values);
    if (!m->values) {
        if (m->n_values && m->raw_values.len)
            memcpy(p, m->raw_values.ptr, m->raw_values.len);
        return;
    }
    for (uint32_t i = 0; i < m->n_values; i++)
        p = put_slice(p, m->values[i]);
}

void wire_writer_init(struct wire_writer *w, struct buf *out, uint8_t version, uint32_t max_frame)
{
    w->out = out;
    w->frame_start = 0;
    w->max_frame = max_frame < WIRE_FRAME_MAX ? max_frame : WIRE_FRAME_MAX;
    w->version = version;
    w->open = false;
}

int wire_write_msg(struct wire_writer *w, const struct wire_msg *m)
{
    uint64_t n = wire_msg_size(m);
    if (n == 0)
        return -EINVAL;
    if (n > w->max_frame)
        return -EMSGSIZE;
    if (w->open && w->out->len - w->frame_start - WIRE_HEADER_LEN + n > w->max_frame)
        wire_writer_flush(w);
    size_t head = w->open ? 0 : WIRE_HEADER_LEN;
    if (buf_reserve(w->out, head + (size_t)n) != 0)
        return -ENOMEM;
    uint8_t *p = (uint8_t *)w->out->data + w->out->len;
    if (!w->open) {
        w->frame_start = w->out->len;
        w->open = true;
        p = put_header(p, w->version, WIRE_BATCH, 0);
    }
    put_msg(p, m, n);
    w->out->len += head + (size_t)n;
    return 0;
}

void wire_writer_flush(struct wire_writer *w)
{
    if (!w->open)
        return;
    uint8_t *h = (uint8_t *)w->out->data + w->frame_start;
    put32(h + 4, (uint32_t)(w->out->len - w->frame_start - WIRE_HEADER_LEN));
    w->open = false;
}

/* ---- handshake ---- */

enum { HS_WAIT_HELLO, HS_SEND_HELLO, HS_WAIT_CHALLENGE, HS_WAIT_PROOF, HS_DONE, HS_FAILED };

int wire_hs_init(struct wire_hs *hs, enum wire_role role, const struct wire_hs_config *cfg)
{
    memset(hs, 0, sizeof *hs);
    if (!cfg->node_id || !nodeid_from_hex(cfg->node_id, hs->self_id))
        return -EINVAL;
    hs->want_any = !cfg->peer_id;
    if (cfg->peer_id && !nodeid_from_hex(cfg->peer_id, hs->want_id))
        return -EINVAL;
    if (cfg->version_min == 0 || cfg->version_min > cfg->version_max || cfg->shard >= cfg->shards ||
        !frame_size_ok(cfg->max_frame))
        return -EINVAL;
    hs->role = role;
    hs->shard = cfg->shard;
    hs->shards = cfg->shards;
    hs->peer_shard_wanted = cfg->peer_shard;
    hs->version_min = cfg->version_min;
    hs->version_max = cfg->version_max;
    hs->max_frame = cfg->max_frame;
    hs->secret = cfg->secret;
    hs->secret_len = cfg->secret ? cfg->secret_len : 0;
    memcpy(hs->nonce, cfg->nonce, WIRE_NONCE_LEN);
    hs->state = role == WIRE_INITIATOR ? HS_SEND_HELLO : HS_WAIT_HELLO;
    return 0;
}

void wire_hs_start(struct wire_hs *hs, struct buf *out)
{
    struct wire_hello h = {
        .version_min = hs->version_min,
        .version_max = hs->version_max,
        .from_shard = hs->shard,
        .shards = hs->shards,
        .to_shard = hs->peer_shard_wanted,
        .max_frame = hs->max_frame,
    };
    memcpy(h.node_id, hs->self_id, WIRE_ID_LEN);
    memcpy(h.nonce, hs->nonce, WIRE_NONCE_LEN);
    hello_body(&h, hs->hello);
    wire_put_hello(out, &h);
    hs->state = HS_WAIT_CHALLENGE;
}

/* The proof of `role` over the kept HELLO and CHALLENGE (up to its proof).
 * False when OpenSSL fails (then nothing may be accepted). */
static bool hs_proof(const struct wire_hs *hs, char role, uint8_t out[WIRE_PROOF_LEN])
{
    uint8_t msg[PROOF_LABEL_LEN + 1 + WIRE_HELLO_LEN + WIRE_CHALLENGE_LEN - WIRE_PROOF_LEN];
    memcpy(msg, PROOF_LABEL, PROOF_LABEL_LEN);
    msg[PROOF_LABEL_LEN] = (uint8_t)role;
    memcpy(msg + PROOF_LABEL_LEN + 1, hs->hello, WIRE_HELLO_LEN);
    memcpy(msg + PROOF_LABEL_LEN + 1 + WIRE_HELLO_LEN, hs->challenge,
           WIRE_CHALLENGE_LEN - WIRE_PROOF_LEN);
    static const uint8_t no_key[1];
    const void *key = hs->secret_len ? hs->secret : no_key;
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    if (!HMAC(EVP_sha256(), key, (int)hs->secret_len, msg, sizeof msg, md, &md_len) ||
        md_len < WIRE_PROOF_LEN)
        return false;
    memcpy(out, md, WIRE_PROOF_LEN);
    return true;
}

/* True when `proof` is role's proof (compared in constant time). */
static bool hs_proof_ok(const struct wire_hs *hs, char role, const uint8_t *proof)
{
    uint8_t want[WIRE_PROOF_LEN];
    return hs_proof(hs, role, want) &&
           secret_equal((const char *)want, WIRE_PROOF_LEN, (const char *)proof, WIRE_PROOF_LEN);
}

/* We refuse: REFUSE goes to out, the hs records why. */
static enum wire_hs_status hs_refuse(struct wire_hs *hs, struct buf *out, uint8_t reason,
                                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum wire_hs_status hs_refuse(struct wire_hs *hs, struct buf *out, uint8_t reason,
                                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(hs->why, sizeof hs->why, fmt, ap);
    va_end(ap);
    hs->reason = reason;
    hs->refused_by_peer = false;
    hs->state = HS_FAILED;
    wire_put_refuse(out, reason, hs->version_min, hs->version_max, hs->why);
    return WIRE_HS_FAILED;
}

static enum wire_hs_status hs_peer_refused(struct wire_hs *hs, const struct wire_refuse *r)
{
    hs->reason = r->reason;
    hs->refused_by_peer = true;
    hs->state = HS_FAILED;
    snprintf(hs->why, sizeof hs->why, "%.*s", (int)r->text.len, (const char *)r->text.ptr);
    return WIRE_HS_FAILED;
}

static void hs_peer(struct wire_hs *hs, const uint8_t *id, uint16_t shard, uint16_t shards,
                    uint32_t max_frame)
{
    nodeid_to_hex(id, hs->peer_id);
    hs->peer_shard = shard;
    hs->peer_shards = shards;
    hs->peer_max_frame = max_frame;
}

/* Responder: HELLO in, CHALLENGE (or REFUSE) out. */
static enum wire_hs_status hs_on_hello(struct wire_hs *hs, const struct wire_frame *f,
                                       struct buf *out)
{
    const struct wire_hello *h = &f->u.hello;
    unsigned lo = h->version_min > hs->version_min ? h->version_min : hs->version_min;
    unsigned hi = h->version_max < hs->version_max ? h->version_max : hs->version_max;
    if (hi < lo)
        return hs_refuse(hs, out, WIRE_REFUSE_VERSION,
                         "no common protocol version: ours %u..%u, yours %u..%u", hs->version_min,
                         hs->version_max, h->version_min, h->version_max);
    if (memcmp(h->node_id, hs->self_id, WIRE_ID_LEN) == 0)
        return hs_refuse(hs, out, WIRE_REFUSE_SELF, "connected to itself");
    if (h->to_shard != hs->shard)
        return hs_refuse(hs, out, WIRE_REFUSE_WRONG_SHARD,
                         "connection for shard %u reached shard %u of %u", h->to_shard, hs->shard,
                         hs->shards);
    memcpy(hs->hello, f->body, WIRE_HELLO_LEN);
    struct wire_challenge c = {
        .version = (uint8_t)hi,
        .shard = hs->shard,
        .shards = hs->shards,
        .max_frame = hs->max_frame,
    };
    memcpy(c.node_id, hs->self_id, WIRE_ID_LEN);
    memcpy(c.nonce, hs->nonce, WIRE_NONCE_LEN);
    challenge_body(&c, hs->challenge);
    if (!hs_proof(hs, 'R', c.proof))
        return hs_refuse(hs, out, WIRE_REFUSE_PROTOCOL, "cannot compute a proof");
    wire_put_challenge(out, &c);
    hs->version = c.version;
    hs_peer(hs, h->node_id, h->from_shard, h->shards, h->max_frame);
    hs->state = HS_WAIT_PROOF;
    return WIRE_HS_AGAIN;
}

/* Initiator: CHALLENGE in, PROOF (or REFUSE) out. */
static enum wire_hs_status hs_on_challenge(struct wire_hs *hs, const struct wire_frame *f,
                                           struct buf *out)
{
    const struct wire_challenge *c = &f->u.challenge;
    if (c->version < hs->version_min || c->version > hs->version_max)
        return hs_refuse(hs, out, WIRE_REFUSE_VERSION, "version %u chosen, outside ours %u..%u",
                         c->version, hs->version_min, hs->version_max);
    if (memcmp(c->node_id, hs->self_id, WIRE_ID_LEN) == 0)
        return hs_refuse(hs, out, WIRE_REFUSE_SELF, "connected to itself");
    if (!hs->want_any && memcmp(c->node_id, hs->want_id, WIRE_ID_LEN) != 0)
        return hs_refuse(hs, out, WIRE_REFUSE_WRONG_NODE, "answered by another node");
    if (c->shard != hs->peer_shard_wanted)
        return hs_refuse(hs, out, WIRE_REFUSE_WRONG_SHARD, "answered by shard %u, not %u", c->shard,
                         hs->peer_shard_wanted);
    memcpy(hs->challenge, f->body, WIRE_CHALLENGE_LEN);
    uint8_t proof[WIRE_PROOF_LEN];
    if (!hs_proof_ok(hs, 'R', c->proof) || !hs_proof(hs, 'I', proof))
        return hs_refuse(hs, out, WIRE_REFUSE_AUTH,
                         "the peer's proof does not match: another cluster-secret?");
    wire_put_proof(out, proof);
    hs->version = c->version;
    hs_peer(hs, c->node_id, c->shard, c->shards, c->max_frame);
    hs->state = HS_DONE;
    return WIRE_HS_DONE;
}

enum wire_hs_status wire_hs_on_frame(struct wire_hs *hs, const struct wire_frame *f,
                                     struct buf *out)
{
    if (hs->state == HS_FAILED)
        return WIRE_HS_FAILED;
    if (f->type == WIRE_REFUSE)
        return hs_peer_refused(hs, &f->u.refuse);
    if (f->type == WIRE_HELLO && hs->state == HS_WAIT_HELLO)
        return hs_on_hello(hs, f, out);
    if (f->type == WIRE_CHALLENGE && hs->state == HS_WAIT_CHALLENGE)
        return hs_on_challenge(hs, f, out);
    if (f->type == WIRE_PROOF && hs->state == HS_WAIT_PROOF) {
        if (!hs_proof_ok(hs, 'I', f->u.proof))
            return hs_refuse(hs, out, WIRE_REFUSE_AUTH,
                             "the peer's proof does not match: another cluster-secret?");
        hs->state = HS_DONE;
        return WIRE_HS_DONE;
    }
    return hs_refuse(hs, out, WIRE_REFUSE_PROTOCOL, "unexpected frame type %u in the handshake",
                     (unsigned)f->type);
}
