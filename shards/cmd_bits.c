/* cmd_bits.c: SETBIT, GETBIT, BITCOUNT, BITPOS and BITOP (see cmd_bits.h).
 * Runs on the shard thread that owns the key, over the store as
 * cmd_string.c does. Semantics and the order of checks follow Redis 7.0
 * (compared with redis-server 7.0.15):
 *   - an offset is a whole decimal in [0, 8 * proto-max-bulk-len), else
 *     "bit offset is not an integer or out of range", checked before the key
 *     is looked up;
 *   - BITCOUNT looks the key up first (a missing key counts 0 whatever its
 *     other arguments), BITPOS parses its bit first and then looks the key
 *     up (a missing key is all zero bits: 0 for a clear bit, -1 for a set
 *     one), and only then do both parse their range;
 *   - a range is start and end in bytes, or in bits with BIT; negative ones
 *     count from the end; both are clamped into the value as GETRANGE's are
 *     (bitmap_range) and become one inclusive range of bit positions.
 * BITPOS for a clear bit, with no end given, finds the first bit past the
 * value when every bit in range is set (the value reads as if padded with
 * zeros); with an end given it answers -1 then.
 * BITOP's keys are of one slot, so of this shard (dispatch checks); a
 * result of no bytes (every source missing or empty) deletes the
 * destination, any other replaces it without an expiry, as Redis.
 * Entries are immutable once published, so SETBIT builds a new entry (the
 * old bytes, zeros up to the offset's byte, the bit) and commits it with the
 * old expiry and memcached flags; setting a bit to what it already is, inside
 * the value, writes nothing. Its cost is the value's length, as SETRANGE's.
 * Like every denyoom command it makes room (cmd_reserve) before parsing;
 * one that grows the value makes room for the grown value too (evicting
 * for it as a SET of that size would; as in Redis, a store still under
 * maxmemory takes it even where it overshoots). */
#include "cmd_bits.h"

#include <mimalloc.h>
#include <stdint.h>
#include <string.h>

#include "cmd_string.h"
#include "keyhash.h"
#include "num.h"
#include "store.h"

#define ERR_BIT_OFFSET "ERR bit offset is not an integer or out of range"
#define ERR_BIT_VALUE "ERR bit is not an integer or out of range"
#define ERR_BITPOS_BIT "ERR The bit argument must be 1 or 0."

/* The bit offset in a, or false after replying the offset error: a whole
 * decimal whose byte is within proto-max-bulk-len. */
static bool bit_offset(struct cmd_ctx *c, const struct resp_arg *a, uint64_t *out)
{
    int64_t off;
    if (!num_parse_i64(a->ptr, a->len, &off) || off < 0 ||
        (uint64_t)off >> 3 >= c->store->max_val_len) {
        cmd_reply_error(c, ERR_BIT_OFFSET);
        return false;
    }
    *out = (uint64_t)off;
    return true;
}

static int bit_at(const uint8_t *p, uint64_t pos)
{
    return p[pos >> 3] >> (7 - (pos & 7)) & 1;
}

/* The bits of a byte at positions from & 7 onwards (the first byte of a
 * range) and up to to & 7 (its last). */
static uint8_t mask_from(uint64_t from)
{
    return (uint8_t)(0xffu >> (from & 7));
}

static uint8_t mask_to(uint64_t to)
{
    return (uint8_t)(0xffu << (7 - (to & 7)));
}

void cmd_setbit(struct cmd_ctx *c)
{
    const struct resp_arg *key = &c->argv[1];
    if (!cmd_reserve(c, store_need(key->len, 1)))
        return;
    uint64_t off;
    if (!bit_offset(c, &c->argv[2], &off))
        return;
    int64_t on;
    if (!num_parse_i64(c->argv[3].ptr, c->argv[3].len, &on) || (on & ~1)) {
        cmd_reply_error(c, ERR_BIT_VALUE);
        return;
    }
    uint64_t byte = off >> 3;
    int rc = store_check_len(c->store, key->len, byte + 1);
    if (rc != 0) {
        cmd_reply_store_error(c, rc);
        return;
    }
    struct table_entry *e;
    if (!cmd_lookup_to_grow(c, byte + 1, &e))
        return;
    size_t olen = e ? e->val_len : 0;
    int old = byte < olen ? bit_at((const uint8_t *)table_entry_val(e), off) : 0;
    if (byte < olen && old == on) {
        cmd_reply_int(c, old);
        return;
    }
    struct table_entry *ne = cmd_entry_grown(c, e, byte < olen ? olen : (size_t)byte + 1);
    if (!ne)
        return;
    uint8_t *val = (uint8_t *)table_entry_val(ne);
    uint8_t bit = (uint8_t)(0x80u >> (off & 7));
    val[byte] = on ? (uint8_t)(val[byte] | bit) : (uint8_t)(val[byte] & ~bit);
    rc = store_commit(c->store, ne, c->hash);
    if (rc != 0)
        cmd_reply_store_error(c, rc);
    else
        cmd_reply_int(c, old);
}

void cmd_getbit(struct cmd_ctx *c)
{
    uint64_t off;
    if (!bit_offset(c, &c->argv[2], &off))
        return;
    struct table_entry *e =
        store_lookup_read(c->store, c->argv[1].ptr, c->argv[1].len, c->hash);
    bool inside = e && (off >> 3) < e->val_len;
    cmd_reply_int(c, inside ? bit_at((const uint8_t *)table_entry_val(e), off) : 0);
}

/* Start and end (in bytes, or bits when in_bits) over a value of len bytes,
 * clamped as GETRANGE's (cmd_clamp_range): false when that leaves nothing,
 * else the inclusive bit positions [*from, *to]. */
static bool bitmap_range(int64_t start, int64_t end, bool in_bits, uint64_t len, uint64_t *from,
                         uint64_t *to)
{
    int64_t total = (int64_t)len * (in_bits ? 8 : 1); /* len is at most 1 GiB */
    if (!cmd_clamp_range(&start, &end, total))
        return false;
    *from = in_bits ? (uint64_t)start : (uint64_t)start * 8;
    *to = in_bits ? (uint64_t)end : (uint64_t)end * 8 + 7;
    return true;
}

/* The set bits of p in positions [from, to]. */
static uint64_t count_ones(const uint8_t *p, uint64_t from, uint64_t to)
{
    uint64_t first = from >> 3, last = to >> 3;
    if (first == last)
        return (uint64_t)__builtin_popcount(p[first] & mask_from(from) & mask_to(to));
    uint64_t n = (uint64_t)__builtin_popcount(p[first] & mask_from(from)) +
                 (uint64_t)__builtin_popcount(p[last] & mask_to(to));
    const uint8_t *q = p + first + 1, *end = p + last;
    for (; end - q >= 8; q += 8) {
        uint64_t w;
        memcpy(&w, q, sizeof w);
        n += (uint64_t)__builtin_popcountll(w);
    }
    for (; q < end; q++)
        n += (uint64_t)__builtin_popcount(*q);
    return n;
}

/* The first position in [from, to] whose bit is `bit`, or -1. */
static int64_t first_bit(const uint8_t *p, uint64_t from, uint64_t to, int bit)
{
    uint64_t first = from >> 3, last = to >> 3;
    uint64_t skip = bit ? 0 : UINT64_MAX; /* whole words holding no such bit */
    for (uint64_t b = first; b <= last; b++) {
        if (b != first && last - b >= 8) { /* a middle word at a time */
            uint64_t w;
            memcpy(&w, p + b, sizeof w);
            if (w == skip) {
                b += 7;
                continue;
            }
        }
        uint8_t v = bit ? p[b] : (uint8_t)~p[b]; /* the wanted bits, as ones */
        if (b == first)
            v &= mask_from(from);
        if (b == last)
            v &= mask_to(to);
        if (v)
            return (int64_t)(b * 8 + (uint64_t)__builtin_clz(v) - 24);
    }
    return -1;
}

/* A range's unit: BYTE, BIT, or false after replying a syntax error. */
static bool range_unit(struct cmd_ctx *c, const struct resp_arg *a, bool *in_bits)
{
    if (cmd_arg_is(a, "bit") || cmd_arg_is(a, "byte")) {
        *in_bits = cmd_arg_is(a, "bit");
        return true;
    }
    cmd_reply_error(c, CMD_ERR_SYNTAX);
    return false;
}

/* The integer in a, or false after replying Redis's not-an-integer error. */
static bool int_arg_or_reply(struct cmd_ctx *c, const struct resp_arg *a, int64_t *out)
{
    if (num_parse_i64(a->ptr, a->len, out))
        return true;
    cmd_reply_error(c, CMD_ERR_NOT_INT);
    return false;
}

/* BITCOUNT key [start end [BYTE|BIT]] */
void cmd_bitcount(struct cmd_ctx *c)
{
    struct table_entry *e =
        store_lookup_read(c->store, c->argv[1].ptr, c->argv[1].len, c->hash);
    if (!e) {
        cmd_reply_int(c, 0);
        return;
    }
    int64_t start = 0, end = -1;
    bool in_bits = false;
    if (c->argc == 4 || c->argc == 5) {
        if (!int_arg_or_reply(c, &c->argv[2], &start) || !int_arg_or_reply(c, &c->argv[3], &end))
            return;
        if (start < 0 && end < 0 && start > end) { /* before the unit, as Redis 7.0 */
            cmd_reply_int(c, 0);
            return;
        }
        if (c->argc == 5 && !range_unit(c, &c->argv[4], &in_bits))
            return;
    } else if (c->argc != 2) {
        cmd_reply_error(c, CMD_ERR_SYNTAX);
        return;
    }
    uint64_t from, to;
    if (!bitmap_range(start, end, in_bits, e->val_len, &from, &to)) {
        cmd_reply_int(c, 0);
        return;
    }
    cmd_reply_int(c, (int64_t)count_ones((const uint8_t *)table_entry_val(e), from, to));
}

/* BITPOS key bit [start [end [BYTE|BIT]]] */
void cmd_bitpos(struct cmd_ctx *c)
{
    int64_t bit;
    if (!int_arg_or_reply(c, &c->argv[2], &bit))
        return;
    if (bit != 0 && bit != 1) {
        cmd_reply_error(c, ERR_BITPOS_BIT);
        return;
    }
    struct table_entry *e =
        store_lookup_read(c->store, c->argv[1].ptr, c->argv[1].len, c->hash);
    if (!e) {
        cmd_reply_int(c, bit ? -1 : 0);
        return;
    }
    int64_t start = 0, end = -1;
    bool in_bits = false, end_given = c->argc >= 5;
    if (c->argc > 6) {
        cmd_reply_error(c, CMD_ERR_SYNTAX);
        return;
    }
    if (c->argc >= 4 && !int_arg_or_reply(c, &c->argv[3], &start))
        return;
    if (c->argc == 6 && !range_unit(c, &c->argv[5], &in_bits))
        return;
    if (end_given && !int_arg_or_reply(c, &c->argv[4], &end))
        return;
    uint64_t from, to;
    if (!bitmap_range(start, end, in_bits, e->val_len, &from, &to)) {
        cmd_reply_int(c, -1);
        return;
    }
    int64_t pos = first_bit((const uint8_t *)table_entry_val(e), from, to, (int)bit);
    if (pos < 0 && bit == 0 && !end_given)
        pos = (int64_t)to + 1; /* past the value: its zero padding */
    cmd_reply_int(c, pos);
}

/* BITOP AND|OR|XOR|NOT destkey key [key ...], run in the form dispatch
 * gives it, RING.BITOP destkey key [key ...] op (cmd_bits.h). The sources
 * are read into one new value (as long as the longest, shorter ones read
 * as zero bytes past their end) before the destination is written: writing
 * may make room by evicting a source. */
void cmd_bitop(struct cmd_ctx *c)
{
    const struct resp_arg *dst = &c->argv[1], *opname = &c->argv[c->argc - 1];
    const struct resp_arg *src = &c->argv[2];
    uint32_t nsrc = c->argc - 3;
    if (!cmd_reserve(c, store_need(dst->len, 1)))
        return;
    enum { OP_AND, OP_OR, OP_XOR, OP_NOT } op;
    if (cmd_arg_is(opname, "and"))
        op = OP_AND;
    else if (cmd_arg_is(opname, "or"))
        op = OP_OR;
    else if (cmd_arg_is(opname, "xor"))
        op = OP_XOR;
    else if (cmd_arg_is(opname, "not"))
        op = OP_NOT;
    else {
        cmd_reply_error(c, CMD_ERR_SYNTAX);
        return;
    }
    if (op == OP_NOT && nsrc != 1) {
        cmd_reply_error(c, "ERR BITOP NOT must be called with a single source key.");
        return;
    }
    size_t maxlen = 0;
    uint32_t cold = 0;
    for (uint32_t i = 0; i < nsrc; i++) {
        uint64_t hash = keyhash(src[i].ptr, src[i].len);
        struct table_entry *e = store_lookup_read(c->store, src[i].ptr, src[i].len, hash);
        if (e && table_entry_is_cold(e)) { /* read back for the retry */
            cmd_read_back(c, &src[i], hash);
            cold++;
        }
        if (e && e->val_len > maxlen)
            maxlen = e->val_len;
    }
    if (cold) {
        cmd_reply_error(c, "TRYAGAIN a source value was on disk only; it is being read back");
        return;
    }
    uint64_t dst_hash = c->hash;
    c->hash = 0;       /* several keys read: the reply waits for the shard's records */
    if (maxlen == 0) { /* every source missing or empty: no destination */
        store_delete(c->store, dst->ptr, dst->len, dst_hash);
        cmd_reply_int(c, 0);
        return;
    }
    int rc = store_check_len(c->store, dst->len, maxlen);
    if (rc != 0) {
        cmd_reply_store_error(c, rc);
        return;
    }
    uint8_t *res = mi_zalloc(maxlen);
    if (!res) {
        cmd_reply_error(c, CMD_ERR_OOM);
        return;
    }
    for (uint32_t i = 0; i < nsrc; i++) { /* read above: a hit or miss counted there */
        const struct table_entry *e =
            store_lookup(c->store, src[i].ptr, src[i].len, keyhash(src[i].ptr, src[i].len));
        const uint8_t *p = e ? (const uint8_t *)e->data + e->key_len : NULL;
        size_t len = e ? e->val_len : 0;
        if (op == OP_NOT) {
            for (size_t j = 0; j < maxlen; j++)
                res[j] = (uint8_t)~p[j];
        } else if (i == 0) {
            if (len)
                memcpy(res, p, len); /* zeros past its end, from mi_zalloc */
        } else if (op == OP_AND) {
            for (size_t j = 0; j < maxlen; j++)
                res[j] &= j < len ? p[j] : 0;
        } else {
            for (size_t j = 0; j < len; j++)
                res[j] = op == OP_OR ? (uint8_t)(res[j] | p[j]) : (uint8_t)(res[j] ^ p[j]);
        }
    }
    rc = store_put(c->store, dst->ptr, dst->len, dst_hash, res, maxlen, 0, 0, NULL);
    mi_free(res);
    if (rc != 0)
        cmd_reply_store_error(c, rc);
    else
        cmd_reply_int(c, (int64_t)maxlen);
}

/* BITOP's own row: dispatch runs its RING.BITOP form instead, so this
 * answers only a BITOP that skipped dispatch (a peer's malformed forward):
 * its arguments are not in the order cmd_bitop reads. */
void cmd_bitop_client(struct cmd_ctx *c)
{
    cmd_reply_error(c, "ERR BITOP is run as RING.BITOP destkey key [key ...] op");
}
