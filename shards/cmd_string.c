/* cmd_string.c: Redis string commands over the shard's store.
 * Runs on the shard thread that owns the key. Each handler reads its
 * arguments, acts through store.h and writes one reply; semantics, the order
 * of checks and error texts follow Redis 7.0 (checked against redis-server
 * 7.0.15), for instance: commands flagged denyoom evict (or fail with -OOM)
 * before even parsing; SET parses every option before it validates the
 * expire value; GETEX looks the key up before it validates its expire value.
 * Values are byte strings; INCR-style commands parse them as Redis does
 * (string2ll rules; long double with "%.17Lf" minus trailing zeros for
 * INCRBYFLOAT) and store the decimal text.
 * Entries are immutable once published (table.h), so every command that
 * changes a value builds a new entry and commits it, keeping the old
 * expiry and memcached flags where Redis keeps the TTL; APPEND alone grows
 * the entry in place when its allocation has room (store_append).
 * Hot paths: GET is one lookup and one bulk write; SET without options is
 * one allocation and one table put, with no lookup and no formatting.
 * A lookup's entry is borrowed: any store call that may evict or replace
 * (store_put, cmd_reserve) ends its life, so values are copied into the
 * reply, or their fields into locals, before such calls. */
#include "cmd_string.h"

#include "num.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store.h"

#define ERR_TOO_BIG "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
#define ERR_KEY_TOO_LONG "ERR key exceeds maximum allowed size (max-key-size)"
#define ERR_NOT_FLOAT "ERR value is not a valid float"
#define MAX_LONG_DOUBLE_CHARS 5120 /* Redis's bound on a float's text, both ways */

bool cmd_arg_is(const struct resp_arg *a, const char *word)
{
    size_t n = strlen(word);
    return a->len == n && strncasecmp(a->ptr, word, n) == 0;
}

bool cmd_clamp_range(int64_t *start, int64_t *end, int64_t len)
{
    if (*start < 0)
        *start += len;
    if (*end < 0)
        *end += len;
    if (*start < 0)
        *start = 0;
    if (*end < 0)
        *end = 0;
    if (*end >= len)
        *end = len - 1;
    return *start <= *end;
}

void cmd_reply_store_error(struct cmd_ctx *c, int rc)
{
    switch (rc) {
    case -E2BIG:
        cmd_reply_error(c, ERR_TOO_BIG);
        return;
    case -ENAMETOOLONG:
        cmd_reply_error(c, ERR_KEY_TOO_LONG);
        return;
    default:
        cmd_reply_error(c, CMD_ERR_OOM);
        return;
    }
}

bool cmd_reserve(struct cmd_ctx *c, size_t need)
{
    if (store_ensure_memory(c->store, need) == 0)
        return true;
    cmd_reply_error(c, CMD_ERR_OOM);
    return false;
}

/* Decimal text of v into buf (room for 20 bytes); returns its length. */
static size_t fmt_i64(char *buf, int64_t v)
{
    char tmp[20];
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t len = 0;
    if (v < 0)
        buf[len++] = '-';
    while (n)
        buf[len++] = tmp[--n];
    return len;
}

static struct table_entry *lookup(struct cmd_ctx *c)
{
    return store_lookup(c->store, c->argv[1].ptr, c->argv[1].len, c->hash);
}

static struct table_entry *lookup_read(struct cmd_ctx *c)
{
    return store_lookup_read(c->store, c->argv[1].ptr, c->argv[1].len, c->hash);
}

/* Writes key = val keeping the given expiry and flags; replies on failure. */
static bool put(struct cmd_ctx *c, const void *val, size_t vlen, int64_t expire_ms,
                uint32_t mc_flags)
{
    int rc = store_put(c->store, c->argv[1].ptr, c->argv[1].len, c->hash, val, vlen, expire_ms,
                       mc_flags, NULL);
    if (rc != 0)
        cmd_reply_store_error(c, rc);
    return rc == 0;
}

static void reply_value(struct cmd_ctx *c, const struct table_entry *e)
{
    if (e) {
        cmd_reply_bulk(c, table_entry_val((struct table_entry *)e), e->val_len);
        c->res->version = e->cas;
    } else {
        cmd_reply_null(c);
    }
}

/* "ERR invalid expire time in '<cmd>' command". */
static void reply_bad_expire(struct cmd_ctx *c, const char *cmd)
{
    char msg[64];
    snprintf(msg, sizeof msg, "ERR invalid expire time in '%s' command", cmd);
    cmd_reply_error(c, msg);
}

/* An expire argument of SET, SETEX, PSETEX or GETEX: a positive count of
 * unit_ms milliseconds after base_ms (now for EX/PX, 0 for EXAT/PXAT), made
 * absolute. Replies and returns false when invalid or overflowing. */
static bool set_expire_arg(struct cmd_ctx *c, const struct resp_arg *a, int64_t unit_ms,
                           int64_t base_ms, const char *cmd, int64_t *out)
{
    int64_t v;
    if (!num_parse_i64(a->ptr, a->len, &v)) {
        cmd_reply_error(c, CMD_ERR_NOT_INT);
        return false;
    }
    if (v <= 0 || v > INT64_MAX / unit_ms || v * unit_ms > INT64_MAX - base_ms) {
        reply_bad_expire(c, cmd);
        return false;
    }
    *out = v * unit_ms + base_ms;
    return true;
}

/* Options of SET and GETEX. */
enum {
    OPT_NX = 1 << 0,
    OPT_XX = 1 << 1,
    OPT_GET = 1 << 2,
    OPT_KEEPTTL = 1 << 3,
    OPT_PERSIST = 1 << 4,
    OPT_EX = 1 << 5,
    OPT_PX = 1 << 6,
    OPT_EXAT = 1 << 7,
    OPT_PXAT = 1 << 8,
};
#define OPT_EXPIRY (OPT_EX | OPT_PX | OPT_EXAT | OPT_PXAT)
#define OPT_SET_ALLOWED (OPT_NX | OPT_XX | OPT_GET | OPT_KEEPTTL | OPT_EXPIRY)
#define OPT_GETEX_ALLOWED (OPT_PERSIST | OPT_EXPIRY)

/* Each option, the options it cannot follow (Redis accepts repeats of the
 * same one), and for expiry options the unit and whether it is relative. */
static const struct set_option {
    const char *name;
    unsigned flag;
    unsigned excludes;
    int64_t unit_ms;
    bool is_relative;
} set_options[] = {
    {"nx", OPT_NX, OPT_XX, 0, false},
    {"xx", OPT_XX, OPT_NX, 0, false},
    {"get", OPT_GET, 0, 0, false},
    {"keepttl", OPT_KEEPTTL, OPT_PERSIST | OPT_EXPIRY, 0, false},
    {"persist", OPT_PERSIST, OPT_KEEPTTL | OPT_EXPIRY, 0, false},
    {"ex", OPT_EX, OPT_KEEPTTL | OPT_PERSIST | (OPT_EXPIRY & ~OPT_EX), 1000, true},
    {"px", OPT_PX, OPT_KEEPTTL | OPT_PERSIST | (OPT_EXPIRY & ~OPT_PX), 1, true},
    {"exat", OPT_EXAT, OPT_KEEPTTL | OPT_PERSIST | (OPT_EXPIRY & ~OPT_EXAT), 1000, false},
    {"pxat", OPT_PXAT, OPT_KEEPTTL | OPT_PERSIST | (OPT_EXPIRY & ~OPT_PXAT), 1, false},
};

struct set_opts {
    unsigned flags;
    const struct set_option *expiry; /* the expiry option given, or NULL */
    const struct resp_arg *expire;   /* its argument */
};

/* Parses options argv[first..] among `allowed`. Replies "ERR syntax error"
 * and returns false on anything else. */
static bool parse_set_options(struct cmd_ctx *c, uint32_t first, unsigned allowed,
                              struct set_opts *o)
{
    memset(o, 0, sizeof *o);
    for (uint32_t j = first; j < c->argc; j++) {
        const struct set_option *opt = NULL;
        for (size_t k = 0; k < sizeof set_options / sizeof set_options[0]; k++) {
            if (cmd_arg_is(&c->argv[j], set_options[k].name)) {
                opt = &set_options[k];
                break;
            }
        }
        bool takes_arg = opt && (opt->flag & OPT_EXPIRY);
        if (!opt || !(opt->flag & allowed) || (o->flags & opt->excludes) ||
            (takes_arg && j + 1 >= c->argc)) {
            cmd_reply_error(c, CMD_ERR_SYNTAX);
            return false;
        }
        o->flags |= opt->flag;
        if (takes_arg) {
            o->expiry = opt;
            o->expire = &c->argv[++j];
        }
    }
    return true;
}

static bool opts_expire_ms(struct cmd_ctx *c, const struct set_opts *o, const char *cmd,
                           int64_t *out)
{
    int64_t base = o->expiry->is_relative ? c->store->now_ms : 0;
    return set_expire_arg(c, o->expire, o->expiry->unit_ms, base, cmd, out);
}

/* SET's work once options are known: NX/XX conditions, GET's reply, KEEPTTL. */
static void set_generic(struct cmd_ctx *c, const struct resp_arg *val, unsigned flags,
                        int64_t expire_ms)
{
    size_t mark = c->out->len;
    if (flags & (OPT_NX | OPT_XX | OPT_GET | OPT_KEEPTTL)) {
        struct table_entry *old = (flags & OPT_GET) ? lookup_read(c) : lookup(c);
        if (flags & OPT_GET)
            reply_value(c, old);
        if (((flags & OPT_NX) && old) || ((flags & OPT_XX) && !old)) {
            if (!(flags & OPT_GET))
                cmd_reply_null(c);
            return;
        }
        if ((flags & OPT_KEEPTTL) && old)
            expire_ms = old->expire_ms;
    }
    int rc = store_put(c->store, c->argv[1].ptr, c->argv[1].len, c->hash, val->ptr, val->len,
                       expire_ms, 0, NULL);
    if (rc != 0) {
        c->out->len = mark; /* the error replaces GET's value */
        cmd_reply_store_error(c, rc);
        return;
    }
    if (!(flags & OPT_GET))
        cmd_reply_ok(c);
}

void cmd_get(struct cmd_ctx *c)
{
    reply_value(c, lookup_read(c));
}

void cmd_set(struct cmd_ctx *c)
{
    const struct resp_arg *val = &c->argv[2];
    if (!cmd_reserve(c, store_need(c->argv[1].len, val->len)))
        return;
    if (c->argc == 3) {
        if (put(c, val->ptr, val->len, 0, 0))
            cmd_reply_ok(c);
        return;
    }
    struct set_opts o;
    int64_t expire_ms = 0;
    if (!parse_set_options(c, 3, OPT_SET_ALLOWED, &o))
        return;
    if (o.expiry && !opts_expire_ms(c, &o, "set", &expire_ms))
        return;
    set_generic(c, val, o.flags, expire_ms);
}

static void setex_generic(struct cmd_ctx *c, int64_t unit_ms, const char *cmd)
{
    int64_t expire_ms;
    if (!cmd_reserve(c, store_need(c->argv[1].len, c->argv[3].len)))
        return;
    if (!set_expire_arg(c, &c->argv[2], unit_ms, c->store->now_ms, cmd, &expire_ms))
        return;
    if (put(c, c->argv[3].ptr, c->argv[3].len, expire_ms, 0))
        cmd_reply_ok(c);
}

void cmd_setex(struct cmd_ctx *c)
{
    setex_generic(c, 1000, "setex");
}

void cmd_psetex(struct cmd_ctx *c)
{
    setex_generic(c, 1, "psetex");
}

void cmd_setnx(struct cmd_ctx *c)
{
    if (!cmd_reserve(c, store_need(c->argv[1].len, c->argv[2].len)))
        return;
    if (lookup(c)) {
        cmd_reply_int(c, 0);
        return;
    }
    if (put(c, c->argv[2].ptr, c->argv[2].len, 0, 0))
        cmd_reply_int(c, 1);
}

void cmd_getset(struct cmd_ctx *c)
{
    if (!cmd_reserve(c, store_need(c->argv[1].len, c->argv[2].len)))
        return;
    set_generic(c, &c->argv[2], OPT_GET, 0);
}

void cmd_getdel(struct cmd_ctx *c)
{
    struct table_entry *e = lookup_read(c);
    reply_value(c, e);
    if (e)
        store_delete(c->store, c->argv[1].ptr, c->argv[1].len, c->hash);
}

void cmd_getex(struct cmd_ctx *c)
{
    struct set_opts o;
    if (!parse_set_options(c, 2, OPT_GETEX_ALLOWED, &o))
        return;
    struct table_entry *e = lookup_read(c);
    if (!e) {
        cmd_reply_null(c);
        return;
    }
    int64_t expire_ms = 0;
    if (o.expiry && !opts_expire_ms(c, &o, "getex", &expire_ms))
        return;
    size_t mark = c->out->len;
    reply_value(c, e);
    if (!o.expiry && !(o.flags & OPT_PERSIST))
        return;
    int rc = store_set_expire(c->store, e, c->hash, expire_ms, NULL);
    if (rc != 0) {
        c->out->len = mark;
        cmd_reply_store_error(c, rc);
    }
}

void cmd_append(struct cmd_ctx *c)
{
    const struct resp_arg *v = &c->argv[2];
    if (!cmd_reserve(c, store_need(c->argv[1].len, v->len)))
        return;
    struct table_entry *e = lookup(c);
    if (!e) {
        if (put(c, v->ptr, v->len, 0, 0))
            cmd_reply_int(c, v->len);
        return;
    }
    uint64_t total = (uint64_t)e->val_len + v->len;
    int rc = store_append(c->store, e, c->hash, v->ptr, v->len, NULL);
    if (rc != 0)
        cmd_reply_store_error(c, rc);
    else
        cmd_reply_int(c, (int64_t)total);
}

void cmd_strlen(struct cmd_ctx *c)
{
    struct table_entry *e = lookup_read(c);
    cmd_reply_int(c, e ? e->val_len : 0);
}

void cmd_getrange(struct cmd_ctx *c)
{
    int64_t start, end;
    if (!num_parse_i64(c->argv[2].ptr, c->argv[2].len, &start) ||
        !num_parse_i64(c->argv[3].ptr, c->argv[3].len, &end)) {
        cmd_reply_error(c, CMD_ERR_NOT_INT);
        return;
    }
    struct table_entry *e = lookup_read(c);
    if ((start < 0 && end < 0 && start > end) || !cmd_clamp_range(&start, &end, e ? e->val_len : 0)) {
        cmd_reply_bulk(c, "", 0);
        return;
    }
    cmd_reply_bulk(c, table_entry_val(e) + start, (size_t)(end - start + 1));
}

struct table_entry *cmd_entry_grown(struct cmd_ctx *c, const struct table_entry *old, size_t total)
{
    struct table_entry *ne = store_entry_new(c->store, c->argv[1].ptr, c->argv[1].len, total);
    if (!ne) {
        cmd_reply_error(c, CMD_ERR_OOM);
        return NULL;
    }
    char *val = table_entry_val(ne);
    size_t olen = old ? old->val_len : 0;
    if (old) {
        memcpy(val, old->data + old->key_len, olen);
        ne->expire_ms = old->expire_ms;
        ne->mc_flags = old->mc_flags;
    }
    memset(val + olen, 0, total - olen);
    ne->val_len = (uint32_t)total;
    return ne;
}

bool cmd_lookup_to_grow(struct cmd_ctx *c, size_t need, struct table_entry **out)
{
    const struct resp_arg *key = &c->argv[1];
    struct table_entry *e = store_lookup(c->store, key->ptr, key->len, c->hash);
    if (need > (e ? e->val_len : 0)) {
        if (!cmd_reserve(c, store_need(key->len, need)))
            return false;
        e = store_lookup(c->store, key->ptr, key->len, c->hash);
    }
    *out = e;
    return true;
}

void cmd_setrange(struct cmd_ctx *c)
{
    const struct resp_arg *v = &c->argv[3];
    if (!cmd_reserve(c, store_need(c->argv[1].len, v->len)))
        return;
    int64_t offset;
    if (!num_parse_i64(c->argv[2].ptr, c->argv[2].len, &offset)) {
        cmd_reply_error(c, CMD_ERR_NOT_INT);
        return;
    }
    if (offset < 0) {
        cmd_reply_error(c, "ERR offset is out of range");
        return;
    }
    struct table_entry *e = lookup(c);
    size_t olen = e ? e->val_len : 0;
    if (v->len == 0) {
        cmd_reply_int(c, (int64_t)olen);
        return;
    }
    uint64_t end = (uint64_t)offset + v->len; /* no overflow: offset < 2^63 */
    int rc = store_check_len(c->store, c->argv[1].len, end);
    if (rc != 0) {
        cmd_reply_store_error(c, rc);
        return;
    }
    struct table_entry *ne = cmd_entry_grown(c, e, end > olen ? end : olen);
    if (!ne)
        return;
    memcpy(table_entry_val(ne) + offset, v->ptr, v->len);
    size_t total = ne->val_len;
    rc = store_commit(c->store, ne, c->hash);
    if (rc != 0)
        cmd_reply_store_error(c, rc);
    else
        cmd_reply_int(c, (int64_t)total);
}

static void incr_generic(struct cmd_ctx *c, int64_t delta)
{
    struct table_entry *e = lookup(c);
    int64_t old = 0, expire_ms = 0;
    uint32_t flags = 0;
    if (e) {
        if (!num_parse_i64(table_entry_val(e), e->val_len, &old)) {
            cmd_reply_error(c, CMD_ERR_NOT_INT);
            return;
        }
        expire_ms = e->expire_ms;
        flags = e->mc_flags;
    }
    if ((delta < 0 && old < 0 && delta < INT64_MIN - old) ||
        (delta > 0 && old > 0 && delta > INT64_MAX - old)) {
        cmd_reply_error(c, "ERR increment or decrement would overflow");
        return;
    }
    int64_t v = old + delta;
    char digits[20];
    if (put(c, digits, fmt_i64(digits, v), expire_ms, flags))
        cmd_reply_int(c, v);
}

/* The denyoom reserve for INCR and friends: the key plus 20 digits. */
static bool incr_reserve(struct cmd_ctx *c)
{
    return cmd_reserve(c, store_need(c->argv[1].len, 20));
}

void cmd_incr(struct cmd_ctx *c)
{
    if (incr_reserve(c))
        incr_generic(c, 1);
}

void cmd_decr(struct cmd_ctx *c)
{
    if (incr_reserve(c))
        incr_generic(c, -1);
}

void cmd_incrby(struct cmd_ctx *c)
{
    int64_t delta;
    if (!incr_reserve(c))
        return;
    if (!num_parse_i64(c->argv[2].ptr, c->argv[2].len, &delta)) {
        cmd_reply_error(c, CMD_ERR_NOT_INT);
        return;
    }
    incr_generic(c, delta);
}

void cmd_decrby(struct cmd_ctx *c)
{
    int64_t delta;
    if (!incr_reserve(c))
        return;
    if (!num_parse_i64(c->argv[2].ptr, c->argv[2].len, &delta)) {
        cmd_reply_error(c, CMD_ERR_NOT_INT);
        return;
    }
    if (delta == INT64_MIN) {
        cmd_reply_error(c, "ERR decrement would overflow");
        return;
    }
    incr_generic(c, -delta);
}

/* Parses a long double as Redis's string2ld: strtold's syntax over the whole
 * text, no leading space, no NaN, no overflow or underflow to zero. */
static bool parse_long_double(const char *p, size_t n, long double *out)
{
    char buf[MAX_LONG_DOUBLE_CHARS];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, p, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    long double v = strtold(buf, &end);
    if (isspace((unsigned char)buf[0]) || end != buf + n || isnan(v))
        return false;
    if (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || v == 0))
        return false;
    *out = v;
    return true;
}

/* Redis's "human" form of a long double: "%.17Lf" without trailing zeros
 * (nor a trailing point), and "-0" as "0". Returns the length. */
static size_t fmt_long_double(char *buf, size_t cap, long double v)
{
    int n = snprintf(buf, cap, "%.17Lf", v);
    if (n < 0 || (size_t)n >= cap)
        return 0;
    size_t len = (size_t)n;
    if (memchr(buf, '.', len)) {
        while (buf[len - 1] == '0')
            len--;
        if (buf[len - 1] == '.')
            len--;
    }
    if (len == 2 && buf[0] == '-' && buf[1] == '0') {
        buf[0] = '0';
        len = 1;
    }
    return len;
}

void cmd_incrbyfloat(struct cmd_ctx *c)
{
    if (!cmd_reserve(c, store_need(c->argv[1].len, c->argv[2].len)))
        return;
    struct table_entry *e = lookup(c);
    long double cur = 0, incr;
    int64_t expire_ms = 0;
    uint32_t flags = 0;
    if ((e && !parse_long_double(table_entry_val(e), e->val_len, &cur)) ||
        !parse_long_double(c->argv[2].ptr, c->argv[2].len, &incr)) {
        cmd_reply_error(c, ERR_NOT_FLOAT);
        return;
    }
    if (e) {
        expire_ms = e->expire_ms;
        flags = e->mc_flags;
    }
    long double v = cur + incr;
    if (isnan(v) || isinf(v)) {
        cmd_reply_error(c, "ERR increment would produce NaN or Infinity");
        return;
    }
    char text[MAX_LONG_DOUBLE_CHARS];
    size_t n = fmt_long_double(text, sizeof text, v);
    if (put(c, text, n, expire_ms, flags))
        cmd_reply_bulk(c, text, n);
}
