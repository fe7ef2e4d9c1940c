/* cmd_mc.c: memcached text-protocol commands over the shard's store.
 * Runs on the shard thread that owns the key; the request arrives decoded
 * (struct mc_request, ctx->mc) with keys[0] the one key of this call.
 * Behaviour follows memcached 1.6 (checked against memcached 1.6.18):
 *  - noreply silences every reply line, errors included;
 *  - append/prepend keep the item's flags and exptime (the ones sent are
 *    ignored); touch and gat change the exptime but not the cas unique;
 *  - incr/decr read the value as strtoull does (leading space, an optional
 *    sign, digits, then the end or a space), wrap at 2^64 (incr) or stop at
 *    0 (decr), and, as memcached's in-place update, pad a result shorter
 *    than the old value with spaces to the old length;
 *  - a storage command that fails for memory leaves a "set" key deleted,
 *    so a stale value does not linger.
 * A lookup's entry is borrowed: store calls that may evict or replace end
 * its life, so its fields are copied out (or written to the reply) first.
 * Eviction runs before the lookup (store_ensure_memory), as the Redis side
 * does for commands flagged denyoom. */
#include "cmd_mc.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "store.h"

#define MC_ERR_OOM "SERVER_ERROR out of memory storing object"
#define MC_ERR_KEY "CLIENT_ERROR bad command line format"
#define MC_ERR_NON_NUMERIC "CLIENT_ERROR cannot increment or decrement non-numeric value"
#define MC_COUNTER_DIGITS 20 /* digits of 2^64 - 1 */

int64_t cmd_mc_expire_ms(int64_t exptime, int64_t now_ms)
{
    if (exptime == 0)
        return 0;
    if (exptime < 0)
        return 1;
    if (exptime > MC_RELATIVE_EXPTIME_MAX)
        return exptime > INT64_MAX / 1000 ? INT64_MAX : exptime * 1000;
    return now_ms + exptime * 1000;
}

static const struct mc_key *key(const struct cmd_ctx *c)
{
    return &c->mc->keys[0];
}

static struct table_entry *lookup(struct cmd_ctx *c)
{
    return store_lookup(c->store, key(c)->ptr, key(c)->len, c->hash);
}

static struct table_entry *lookup_read(struct cmd_ctx *c)
{
    return store_lookup_read(c->store, key(c)->ptr, key(c)->len, c->hash);
}

static int64_t expire_ms(const struct cmd_ctx *c)
{
    return cmd_mc_expire_ms(c->mc->exptime, c->store->now_ms);
}

/* One reply line, unless the client asked for none. */
static void reply(struct cmd_ctx *c, const char *line)
{
    if (!c->mc->noreply)
        mc_write_line(c->out, line);
}

static void reply_store_error(struct cmd_ctx *c, int rc)
{
    switch (rc) {
    case -E2BIG:
        reply(c, MC_ERR_TOO_LARGE);
        return;
    case -ENAMETOOLONG:
        reply(c, MC_ERR_KEY);
        return;
    default:
        reply(c, MC_ERR_OOM);
        return;
    }
}

static void write_value(struct cmd_ctx *c, struct table_entry *e, bool with_cas)
{
    mc_write_value(c->out, table_entry_key(e), e->key_len, e->mc_flags, table_entry_val(e),
                   e->val_len, with_cas ? &e->cas : NULL);
}

/* Frees room for the data block before the key is looked up. */
static bool reserve(struct cmd_ctx *c, size_t vlen)
{
    if (store_ensure_memory(c->store, store_need(key(c)->len, vlen)) == 0)
        return true;
    reply(c, MC_ERR_OOM);
    return false;
}

static void get_common(struct cmd_ctx *c, bool with_cas)
{
    struct table_entry *e = lookup_read(c);
    if (e)
        write_value(c, e, with_cas);
}

void cmd_mc_get(struct cmd_ctx *c)
{
    get_common(c, false);
}

void cmd_mc_gets(struct cmd_ctx *c)
{
    get_common(c, true);
}

static void gat_common(struct cmd_ctx *c, bool with_cas)
{
    struct table_entry *e = lookup_read(c);
    if (!e)
        return;
    int64_t when = expire_ms(c);
    if (when != 0 && when <= c->store->now_ms) {
        write_value(c, e, with_cas); /* served once, then gone */
        store_delete(c->store, key(c)->ptr, key(c)->len, c->hash);
        return;
    }
    if (store_set_expire(c->store, e, c->hash, when, &e) != 0) {
        mc_write_line(c->out, "SERVER_ERROR out of memory");
        return;
    }
    write_value(c, e, with_cas);
}

void cmd_mc_gat(struct cmd_ctx *c)
{
    gat_common(c, false);
}

void cmd_mc_gats(struct cmd_ctx *c)
{
    gat_common(c, true);
}

/* Stores the request's data block under its flags and exptime. */
static bool put(struct cmd_ctx *c)
{
    int rc = store_put(c->store, key(c)->ptr, key(c)->len, c->hash, c->mc->data, c->mc->data_len,
                       expire_ms(c), c->mc->flags, NULL);
    if (rc != 0) {
        reply_store_error(c, rc);
        return false;
    }
    reply(c, "STORED");
    return true;
}

void cmd_mc_set(struct cmd_ctx *c)
{
    if (reserve(c, c->mc->data_len) && put(c))
        return;
    store_delete(c->store, key(c)->ptr, key(c)->len, c->hash);
}

void cmd_mc_add(struct cmd_ctx *c)
{
    if (!reserve(c, c->mc->data_len))
        return;
    if (lookup(c))
        reply(c, "NOT_STORED");
    else
        put(c);
}

void cmd_mc_replace(struct cmd_ctx *c)
{
    if (!reserve(c, c->mc->data_len))
        return;
    if (!lookup(c))
        reply(c, "NOT_STORED");
    else
        put(c);
}

void cmd_mc_cas(struct cmd_ctx *c)
{
    if (!reserve(c, c->mc->data_len))
        return;
    struct table_entry *e = lookup(c);
    if (!e)
        reply(c, "NOT_FOUND");
    else if (e->cas != c->mc->cas)
        reply(c, "EXISTS");
    else
        put(c);
}

void cmd_mc_append(struct cmd_ctx *c)
{
    if (!reserve(c, c->mc->data_len))
        return;
    struct table_entry *e = lookup(c);
    if (!e) {
        reply(c, "NOT_STORED");
        return;
    }
    int rc = store_append(c->store, e, c->hash, c->mc->data, c->mc->data_len, NULL);
    if (rc != 0)
        reply_store_error(c, rc);
    else
        reply(c, "STORED");
}

void cmd_mc_prepend(struct cmd_ctx *c)
{
    if (!reserve(c, c->mc->data_len))
        return;
    struct table_entry *e = lookup(c);
    if (!e) {
        reply(c, "NOT_STORED");
        return;
    }
    size_t n = c->mc->data_len, olen = e->val_len;
    int rc = store_check_len(c->store, key(c)->len, olen + n);
    if (rc != 0) {
        reply_store_error(c, rc);
        return;
    }
    struct table_entry *ne = store_entry_new(c->store, key(c)->ptr, key(c)->len, olen + n);
    if (!ne) {
        reply(c, MC_ERR_OOM);
        return;
    }
    memcpy(table_entry_val(ne), c->mc->data, n);
    memcpy(table_entry_val(ne) + n, table_entry_val(e), olen);
    ne->val_len = (uint32_t)(olen + n);
    ne->expire_ms = e->expire_ms;
    ne->mc_flags = e->mc_flags;
    rc = store_commit(c->store, ne, c->hash);
    if (rc != 0)
        reply_store_error(c, rc);
    else
        reply(c, "STORED");
}

void cmd_mc_delete(struct cmd_ctx *c)
{
    bool deleted = store_delete(c->store, key(c)->ptr, key(c)->len, c->hash);
    reply(c, deleted ? "DELETED" : "NOT_FOUND");
}

void cmd_mc_touch(struct cmd_ctx *c)
{
    struct table_entry *e = lookup(c);
    if (!e) {
        reply(c, "NOT_FOUND");
        return;
    }
    if (store_set_expire(c->store, e, c->hash, expire_ms(c), NULL) != 0)
        reply(c, "SERVER_ERROR out of memory");
    else
        reply(c, "TOUCHED");
}

/* A counter as memcached reads one (strtoull in base 10): optional leading
 * space and sign, at least one digit, then the end or a space; out of range
 * fails; a '-' is accepted only when the wrapped result is still below 2^63. */
static bool parse_counter(const char *p, size_t n, uint64_t *out)
{
    size_t i = 0;
    while (i < n && isspace((unsigned char)p[i]))
        i++;
    bool negative = false;
    if (i < n && (p[i] == '+' || p[i] == '-'))
        negative = p[i++] == '-';
    size_t digits = i;
    uint64_t v = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (i == digits || (i < n && !isspace((unsigned char)p[i])))
        return false;
    if (negative)
        v = 0 - v;
    if (negative && (int64_t)v < 0)
        return false;
    *out = v;
    return true;
}

/* Decimal text of v into buf (room for 20 bytes); returns its length. */
static size_t fmt_u64(char *buf, uint64_t v)
{
    char tmp[MC_COUNTER_DIGITS];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

static void arith(struct cmd_ctx *c, bool is_incr)
{
    if (!reserve(c, MC_COUNTER_DIGITS))
        return;
    struct table_entry *e = lookup(c);
    if (!e) {
        reply(c, "NOT_FOUND");
        return;
    }
    uint64_t v;
    if (!parse_counter(table_entry_val(e), e->val_len, &v)) {
        reply(c, MC_ERR_NON_NUMERIC);
        return;
    }
    uint64_t delta = c->mc->delta;
    if (is_incr)
        v += delta;
    else
        v = delta > v ? 0 : v - delta;
    char digits[MC_COUNTER_DIGITS + 1];
    size_t n = fmt_u64(digits, v);
    size_t vlen = n < e->val_len ? e->val_len : n;
    struct table_entry *ne = store_entry_new(c->store, key(c)->ptr, key(c)->len, vlen);
    if (!ne) {
        reply(c, MC_ERR_OOM);
        return;
    }
    memcpy(table_entry_val(ne), digits, n);
    memset(table_entry_val(ne) + n, ' ', vlen - n);
    ne->val_len = (uint32_t)vlen;
    ne->expire_ms = e->expire_ms;
    ne->mc_flags = e->mc_flags;
    if (store_commit(c->store, ne, c->hash) != 0) {
        reply(c, MC_ERR_OOM);
        return;
    }
    digits[n] = '\0';
    reply(c, digits);
}

void cmd_mc_incr(struct cmd_ctx *c)
{
    arith(c, true);
}

void cmd_mc_decr(struct cmd_ctx *c)
{
    arith(c, false);
}

/* flush_all [delay]: at once, or once the delay (memcached's exptime
 * rules: seconds, or a unix time past 30 days) has passed. */
void cmd_mc_flush_all_shard(struct cmd_ctx *c)
{
    int64_t at = c->mc->number > 0 ? cmd_mc_expire_ms(c->mc->number, c->store->now_ms) : 0;
    if (at > c->store->now_ms)
        store_flush_after(c->store, at - c->store->now_ms);
    else
        store_flush(c->store);
}
