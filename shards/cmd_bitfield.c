/* cmd_bitfield.c: BITFIELD and BITFIELD_RO (see cmd_bitfield.h).
 * Runs on the shard thread that owns the key, over the store as
 * cmd_bits.c does, with Redis 7.0's semantics, order of checks and error
 * texts (compared with redis-server 7.0.15 by
 * tests/integration/bits_vs_redis.sh):
 *   - every subcommand is parsed before anything is read or written: GET
 *     type offset, SET type offset value, INCRBY type offset increment,
 *     OVERFLOW WRAP|SAT|FAIL (applying to the SET and INCRBY after it);
 *     the first bad one is the only reply;
 *   - a type is i1..i64 or u1..u63 (lower-case letter); an offset is a bit
 *     position, or #n for n times the type's width, within the value's
 *     greatest length in bits;
 *   - with only GETs nothing is written (a missing key reads as zeros);
 *     BITFIELD_RO refuses anything else after parsing. With a SET or
 *     INCRBY the value is grown with zero bytes up to the last bit any of
 *     them touches and written back, even when OVERFLOW FAIL left every
 *     field as it was (Redis creates and grows the key the same way);
 *   - an overflow is judged on the exact sum (a 128-bit integer): WRAP
 *     keeps the low bits (sign-extended for a signed type), SAT clamps to
 *     the type's range, FAIL answers nil and leaves the field.
 * The reply is an array with one element per GET (the field), SET (the
 * old field) and INCRBY (the new field). Entries are immutable once
 * published, so a write builds a new entry from the old bytes and commits
 * it with the old expiry and memcached flags, as SETBIT does. */
#include "cmd_bitfield.h"

#include <mimalloc.h>
#include <stdint.h>
#include <string.h>

#include "cmd_string.h"
#include "num.h"
#include "resp.h"
#include "store.h"

#define ERR_BF_TYPE                                                                                \
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported "        \
    "but i64 is."
#define ERR_BF_OFFSET "ERR bit offset is not an integer or out of range"
#define ERR_BF_OVERFLOW "ERR Invalid OVERFLOW type specified"
#define ERR_BF_RO "ERR BITFIELD_RO only supports the GET subcommand"

enum bf_op { BF_GET, BF_SET, BF_INCRBY };
enum bf_overflow { BF_WRAP, BF_SAT, BF_FAIL };

struct bf_field {
    enum bf_op op;
    enum bf_overflow overflow;
    bool is_signed;
    uint32_t bits;   /* 1..64 */
    uint64_t offset; /* of the field's first (most significant) bit */
    int64_t arg;     /* SET's value, INCRBY's increment */
};

/* A type argument (i1..i64, u1..u63), or false after replying the error. */
static bool bf_type(struct cmd_ctx *c, const struct resp_arg *a, struct bf_field *f)
{
    int64_t bits;
    bool ok = a->len >= 2 && (a->ptr[0] == 'i' || a->ptr[0] == 'u') &&
              num_parse_i64(a->ptr + 1, a->len - 1, &bits) && bits >= 1 &&
              bits <= (a->ptr[0] == 'i' ? 64 : 63);
    if (!ok) {
        cmd_reply_error(c, ERR_BF_TYPE);
        return false;
    }
    f->is_signed = a->ptr[0] == 'i';
    f->bits = (uint32_t)bits;
    return true;
}

/* An offset argument (n, or #n for n fields of this width), or false
 * after replying the error. */
static bool bf_offset(struct cmd_ctx *c, const struct resp_arg *a, struct bf_field *f)
{
    bool in_fields = a->len > 0 && a->ptr[0] == '#';
    int64_t off;
    bool ok = num_parse_i64(a->ptr + in_fields, a->len - in_fields, &off) && off >= 0 &&
              (!in_fields || !__builtin_mul_overflow(off, (int64_t)f->bits, &off)) &&
              (uint64_t)off >> 3 < c->store->max_val_len;
    if (!ok) {
        cmd_reply_error(c, ERR_BF_OFFSET);
        return false;
    }
    f->offset = (uint64_t)off;
    return true;
}

/* Parses argv[2..] into fields (at most (argc - 2) / 3 + 1 of them): their
 * count, or -1 after replying the first error. *writes says whether any
 * is a SET or INCRBY, *last_bit the last bit those touch. */
static int bf_parse(struct cmd_ctx *c, struct bf_field *fields, bool *writes, uint64_t *last_bit)
{
    enum bf_overflow overflow = BF_WRAP;
    int n = 0;
    *writes = false;
    *last_bit = 0;
    for (uint32_t j = 2; j < c->argc;) {
        const struct resp_arg *sub = &c->argv[j];
        uint32_t left = c->argc - j - 1;
        struct bf_field f = {.overflow = overflow};
        if (cmd_arg_is(sub, "overflow") && left >= 1) {
            const struct resp_arg *how = &c->argv[j + 1];
            if (cmd_arg_is(how, "wrap"))
                overflow = BF_WRAP;
            else if (cmd_arg_is(how, "sat"))
                overflow = BF_SAT;
            else if (cmd_arg_is(how, "fail"))
                overflow = BF_FAIL;
            else {
                cmd_reply_error(c, ERR_BF_OVERFLOW);
                return -1;
            }
            j += 2;
            continue;
        }
        if (cmd_arg_is(sub, "get") && left >= 2)
            f.op = BF_GET;
        else if (cmd_arg_is(sub, "set") && left >= 3)
            f.op = BF_SET;
        else if (cmd_arg_is(sub, "incrby") && left >= 3)
            f.op = BF_INCRBY;
        else {
            cmd_reply_error(c, CMD_ERR_SYNTAX);
            return -1;
        }
        if (!bf_type(c, &c->argv[j + 1], &f) || !bf_offset(c, &c->argv[j + 2], &f))
            return -1;
        if (f.op != BF_GET) {
            if (!num_parse_i64(c->argv[j + 3].ptr, c->argv[j + 3].len, &f.arg)) {
                cmd_reply_error(c, CMD_ERR_NOT_INT);
                return -1;
            }
            *writes = true;
            if (f.offset + f.bits - 1 > *last_bit)
                *last_bit = f.offset + f.bits - 1;
        }
        fields[n++] = f;
        j += f.op == BF_GET ? 3 : 4;
    }
    return n;
}

/* The field's bits of p (len bytes; bits past it read 0), sign-extended
 * for a signed type. */
static int64_t bf_read(const uint8_t *p, size_t len, const struct bf_field *f)
{
    uint64_t v = 0;
    for (uint32_t i = 0; i < f->bits; i++) {
        uint64_t pos = f->offset + i, byte = pos >> 3;
        uint64_t bit = byte < len ? (uint64_t)(p[byte] >> (7 - (pos & 7)) & 1) : 0;
        v = v << 1 | bit;
    }
    if (f->is_signed && f->bits < 64 && (v >> (f->bits - 1) & 1))
        v |= UINT64_MAX << f->bits;
    return (int64_t)v;
}

/* Writes the low bits of v into the field (inside p). */
static void bf_write(uint8_t *p, const struct bf_field *f, uint64_t v)
{
    for (uint32_t i = 0; i < f->bits; i++) {
        uint64_t pos = f->offset + i;
        uint8_t mask = (uint8_t)(0x80u >> (pos & 7));
        if (v >> (f->bits - 1 - i) & 1)
            p[pos >> 3] |= mask;
        else
            p[pos >> 3] &= (uint8_t)~mask;
    }
}

/* want (the exact new field) fitted to the type under the field's
 * OVERFLOW rule into *out; false when FAIL leaves the field as it is. */
static bool bf_fit(const struct bf_field *f, __int128 want, int64_t *out)
{
    __int128 min = f->is_signed ? -((__int128)1 << (f->bits - 1)) : 0;
    __int128 max = f->is_signed ? ((__int128)1 << (f->bits - 1)) - 1 : ((__int128)1 << f->bits) - 1;
    if (want >= min && want <= max) {
        *out = (int64_t)want;
        return true;
    }
    if (f->overflow == BF_FAIL)
        return false;
    if (f->overflow == BF_SAT) {
        *out = (int64_t)(want < min ? min : max);
        return true;
    }
    uint64_t low = (uint64_t)want; /* WRAP: the low bits, as the type reads them */
    if (f->bits < 64) {
        low &= ~(UINT64_MAX << f->bits);
        if (f->is_signed && (low >> (f->bits - 1) & 1))
            low |= UINT64_MAX << f->bits;
    }
    *out = (int64_t)low;
    return true;
}

/* Applies a SET or INCRBY to p (which holds the field) and writes its
 * reply element. */
static void bf_apply(struct cmd_ctx *c, uint8_t *p, size_t len, const struct bf_field *f)
{
    int64_t old = bf_read(p, len, f), now;
    /* an unsigned SET takes its value's 64 bits as unsigned, as Redis */
    __int128 want = f->op == BF_INCRBY ? (__int128)old + f->arg
                    : f->is_signed     ? (__int128)f->arg
                                       : (__int128)(uint64_t)f->arg;
    if (!bf_fit(f, want, &now)) {
        resp_write_null(c->out, c->proto);
        return;
    }
    bf_write(p, f, (uint64_t)now);
    resp_write_int(c->out, f->op == BF_INCRBY ? now : old);
}

static void bf_run(struct cmd_ctx *c, bool read_only)
{
    const struct resp_arg *key = &c->argv[1];
    if (!read_only && !cmd_reserve(c, store_need(key->len, 1)))
        return;
    uint32_t most = (c->argc - 2) / 3 + 1;
    struct bf_field stack_fields[16];
    struct bf_field *fields = most <= 16 ? stack_fields : mi_malloc(most * sizeof *fields);
    if (!fields) {
        cmd_reply_error(c, CMD_ERR_OOM);
        return;
    }
    bool writes;
    uint64_t last_bit;
    int n = bf_parse(c, fields, &writes, &last_bit);
    if (n < 0)
        goto done;
    if (writes && read_only) {
        cmd_reply_error(c, ERR_BF_RO);
        goto done;
    }
    if (!writes) {
        struct table_entry *e = store_lookup_read(c->store, key->ptr, key->len, c->hash);
        const uint8_t *p = e ? (const uint8_t *)table_entry_val(e) : NULL;
        size_t len = e ? e->val_len : 0;
        cmd_reply_array_len(c, (size_t)n);
        for (int i = 0; i < n; i++)
            resp_write_int(c->out, bf_read(p, len, &fields[i]));
        goto done;
    }
    uint64_t need = (last_bit >> 3) + 1;
    int rc = store_check_len(c->store, key->len, need);
    if (rc != 0) {
        cmd_reply_store_error(c, rc);
        goto done;
    }
    struct table_entry *e;
    if (!cmd_lookup_to_grow(c, need, &e))
        goto done;
    size_t olen = e ? e->val_len : 0;
    size_t total = need > olen ? (size_t)need : olen;
    struct table_entry *ne = cmd_entry_grown(c, e, total);
    if (!ne)
        goto done;
    uint8_t *val = (uint8_t *)table_entry_val(ne);
    /* a failed commit takes the elements back and answers its error alone */
    struct buf *out = c->out;
    size_t at = out->len;
    cmd_reply_array_len(c, (size_t)n);
    for (int i = 0; i < n; i++) {
        if (fields[i].op == BF_GET)
            resp_write_int(out, bf_read(val, total, &fields[i]));
        else
            bf_apply(c, val, total, &fields[i]);
    }
    rc = store_commit(c->store, ne, c->hash);
    if (rc != 0) {
        out->len = at;
        cmd_reply_store_error(c, rc);
    }
done:
    if (fields != stack_fields)
        mi_free(fields);
}

/* BITFIELD key [GET type offset | [OVERFLOW WRAP|SAT|FAIL] SET type offset
 * value | INCRBY type offset increment] ... */
void cmd_bitfield(struct cmd_ctx *c)
{
    bf_run(c, false);
}

/* BITFIELD_RO key [GET type offset] ... */
void cmd_bitfield_ro(struct cmd_ctx *c)
{
    bf_run(c, true);
}
