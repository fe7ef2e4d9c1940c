/* slowlog.c: SLOWLOG (see slowlog.h): each shard's ring of slow commands
 * and the three subcommands that read or empty them.
 * An entry is one allocation: its figures, then its strings (the kept
 * arguments, the client's address and name) back to back, each with its
 * length, so that SLOWLOG GET writes them without parsing. The ring holds
 * pointers; an entry pushed out by a newer one, or emptied by RESET, is
 * freed by whoever removed it. The threshold is kept in clock ticks so
 * that the request path compares two integers (slowlog_is_slow); the rate
 * of ticks is measured on the shard's tick against CLOCK_MONOTONIC since
 * start-up, as INFO commandstats converts its times. */
#include "slowlog.h"

#include <errno.h>
#include <inttypes.h>
#include <mimalloc.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cfg.h"
#include "cmd.h"
#include "cmd_stats.h"
#include "cmd_string.h"
#include "conn.h"
#include "node.h"
#include "num.h"
#include "resp.h"
#include "shard.h"

struct slowlog_str {
    uint32_t len;
    char bytes[]; /* then the next string, 4-byte aligned */
};

struct slowlog_entry {
    uint64_t id;
    int64_t unix_s;
    uint64_t us;
    uint32_t nargs;  /* argument strings, then the address, then the name */
    uint32_t nbytes; /* of data */
    char data[];     /* struct slowlog_str, one after another */
};

static uint64_t slowlog_ids; /* entries made so far (atomic): the next id (one node a process) */

static size_t slowlog_str_size(size_t len)
{
    return (sizeof(struct slowlog_str) + len + 3) & ~(size_t)3;
}

/* Appends one string at *at (advanced). */
static void slowlog_put(char **at, const char *p, size_t len, const char *more)
{
    struct slowlog_str *s = (struct slowlog_str *)*at;
    memcpy(s->bytes, p, len);
    size_t n = len;
    if (more) {
        size_t m = strlen(more);
        memcpy(s->bytes + n, more, m);
        n += m;
    }
    s->len = (uint32_t)n;
    *at += slowlog_str_size(n);
}

static void slowlog_refresh_rate(struct slowlog *l, const struct cfg *cfg,
                                 const struct cmd_stats *stats)
{
    uint64_t ns, ticks;
    cmd_stats_since_start(stats, &ns, &ticks);
    if (ns >= 1000000 && ticks) /* a millisecond of history at least: else the last rate */
        l->ns_per_tick = (double)ns / (double)ticks;
    int64_t us = __atomic_load_n(&cfg->slowlog_log_slower_than_us, __ATOMIC_RELAXED);
    if (us < 0 || l->cap == 0) {
        l->threshold_ticks = UINT64_MAX;
        return;
    }
    double t = (double)us * 1000.0 / l->ns_per_tick;
    l->threshold_ticks = t >= 1.8e19 ? UINT64_MAX : (uint64_t)t;
}

int slowlog_init(struct slowlog *l, const struct cfg *cfg, const struct cmd_stats *stats)
{
    if (cfg->slowlog_max_len &&
        !(l->ring = mi_calloc((size_t)cfg->slowlog_max_len, sizeof *l->ring)))
        return -ENOMEM;
    l->cap = (uint32_t)cfg->slowlog_max_len;
#if defined(__x86_64__) || defined(__i386__)
    l->ns_per_tick = 0.5; /* until measured: a 2 GHz counter (a threshold of 10 ms is then
                             20 million ticks; the first tick puts the real rate) */
#else
    l->ns_per_tick = 1.0; /* the clock is nanoseconds */
#endif
    slowlog_refresh_rate(l, cfg, stats);
    return 0;
}

void slowlog_fini(struct slowlog *l)
{
    for (uint32_t i = 0; i < l->cap; i++)
        mi_free(l->ring[i]);
    mi_free(l->ring);
    l->ring = NULL;
    l->cap = 0;
}

/* Where the i-th newest entry of ring l is (i < l->len); under its lock. */
static uint32_t slowlog_nth_newest(const struct slowlog *l, uint32_t i)
{
    return (l->head + l->cap - 1 - i) % l->cap;
}

/* slowlog-max-len changed (CONFIG SET): a ring of the new size with the
 * newest entries that fit, oldest first. Out of memory: the old size. */
static void slowlog_resize(struct slowlog *l, uint32_t cap)
{
    struct slowlog_entry **ring = cap ? mi_calloc(cap, sizeof *ring) : NULL;
    if (cap && !ring)
        return;
    pthread_mutex_lock(&l->lock);
    uint32_t keep = l->len < cap ? l->len : cap;
    for (uint32_t i = 0; i < l->len; i++) {
        struct slowlog_entry **at = &l->ring[slowlog_nth_newest(l, i)];
        if (i < keep)
            ring[keep - 1 - i] = *at;
        else
            mi_free(*at);
    }
    mi_free(l->ring);
    l->ring = ring;
    l->cap = cap;
    l->len = keep;
    l->head = cap ? keep % cap : 0;
    pthread_mutex_unlock(&l->lock);
}

void slowlog_refresh(struct slowlog *l, const struct cfg *cfg, const struct cmd_stats *stats)
{
    int64_t cap = __atomic_load_n(&cfg->slowlog_max_len, __ATOMIC_RELAXED);
    if ((uint32_t)cap != l->cap)
        slowlog_resize(l, (uint32_t)cap);
    slowlog_refresh_rate(l, cfg, stats);
}

bool slowlog_is_secret(const struct resp_arg *argv, uint32_t i)
{
    if (i == 0)
        return false;
    if (cmd_arg_is(&argv[0], "auth"))
        return true;
    if (!cmd_arg_is(&argv[0], "hello"))
        return false;
    for (uint32_t k = 1; k < i; k++)
        if (cmd_arg_is(&argv[k], "auth") && i - k <= 2)
            return true;
    return false;
}

void slowlog_add(struct slowlog *l, const struct resp_arg *argv, uint32_t argc, uint64_t ticks,
                 const struct conn *c)
{
    if (!l->cap || argc == 0)
        return;
    /* Redis's shape: at most 32 arguments, the last of them then "... (N more
     * arguments)"; each at most 128 bytes, then "... (N more bytes)". */
    uint32_t kept = argc > SLOWLOG_MAX_ARGS ? SLOWLOG_MAX_ARGS : argc;
    char more_args[64] = "", more_bytes[SLOWLOG_MAX_ARGS][40];
    if (argc > SLOWLOG_MAX_ARGS)
        snprintf(more_args, sizeof more_args, "... (%" PRIu32 " more arguments)",
                 argc - SLOWLOG_MAX_ARGS + 1);
    static const struct resp_arg redacted = {"(redacted)", 10};
    const struct resp_arg *shown[SLOWLOG_MAX_ARGS];
    size_t lens[SLOWLOG_MAX_ARGS]; /* bytes of each kept */
    size_t bytes = 0;
    for (uint32_t i = 0; i < kept; i++) {
        if (i == SLOWLOG_MAX_ARGS - 1 && more_args[0]) {
            bytes += slowlog_str_size(strlen(more_args));
            continue;
        }
        shown[i] = slowlog_is_secret(argv, i) ? &redacted : &argv[i];
        lens[i] = shown[i]->len;
        more_bytes[i][0] = '\0';
        if (lens[i] > SLOWLOG_MAX_ARG_LEN) {
            snprintf(more_bytes[i], sizeof more_bytes[i], "... (%zu more bytes)",
                     lens[i] - SLOWLOG_MAX_ARG_LEN);
            lens[i] = SLOWLOG_MAX_ARG_LEN;
        }
        bytes += slowlog_str_size(lens[i] + strlen(more_bytes[i]));
    }
    const char *addr = c ? c->addr : "", *name = c && c->name ? c->name : "";
    size_t addr_len = strlen(addr), name_len = strlen(name);
    bytes += slowlog_str_size(addr_len) + slowlog_str_size(name_len);
    struct slowlog_entry *e = mi_malloc(sizeof *e + bytes);
    if (!e)
        return;
    e->id = __atomic_fetch_add(&slowlog_ids, 1, __ATOMIC_RELAXED);
    e->unix_s = (int64_t)time(NULL);
    e->us = (uint64_t)((double)ticks * l->ns_per_tick / 1000.0);
    e->nargs = kept;
    e->nbytes = (uint32_t)bytes;
    char *at = e->data;
    for (uint32_t i = 0; i < kept; i++) {
        if (i == SLOWLOG_MAX_ARGS - 1 && more_args[0]) {
            slowlog_put(&at, more_args, strlen(more_args), NULL);
            continue;
        }
        slowlog_put(&at, shown[i]->ptr, lens[i], more_bytes[i][0] ? more_bytes[i] : NULL);
    }
    slowlog_put(&at, addr, addr_len, NULL);
    slowlog_put(&at, name, name_len, NULL);
    pthread_mutex_lock(&l->lock);
    struct slowlog_entry *old = l->ring[l->head];
    l->ring[l->head] = e;
    l->head = (l->head + 1) % l->cap;
    if (l->len < l->cap)
        l->len++;
    pthread_mutex_unlock(&l->lock);
    mi_free(old);
}

/* ---- SLOWLOG ---- */

static struct slowlog *slowlog_of(const struct node *n, uint32_t i)
{
    return &n->shards[i]->slowlog;
}

static void slowlog_write_entry(struct buf *out, const struct slowlog_entry *e)
{
    resp_write_array_len(out, 6);
    resp_write_int(out, (int64_t)e->id);
    resp_write_int(out, e->unix_s);
    resp_write_int(out, (int64_t)e->us);
    const char *at = e->data;
    resp_write_array_len(out, e->nargs);
    for (uint32_t i = 0; i < e->nargs + 2; i++) { /* the arguments, the address, the name */
        const struct slowlog_str *s = (const struct slowlog_str *)at;
        resp_write_bulk(out, s->bytes, s->len);
        at += slowlog_str_size(s->len);
    }
}

/* The node's newest entries, at most `want` and at most slowlog-max-len:
 * every ring locked, merged newest first by id. */
void cmd_slowlog_get(struct cmd_ctx *c)
{
    int64_t want = 10;
    if (c->argc > 3) { /* Redis's text, the subcommand as sent */
        char msg[160];
        snprintf(msg, sizeof msg,
                 "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try SLOWLOG "
                 "HELP.",
                 c->argv[1].len > 32 ? 32 : (int)c->argv[1].len, c->argv[1].ptr);
        resp_write_error(c->out, msg);
        return;
    }
    if (c->argc == 3) {
        /* Redis gives this one text for a count that is no integer too */
        if (!num_parse_i64(c->argv[2].ptr, c->argv[2].len, &want) || want < -1) {
            resp_write_error(c->out, "ERR count should be greater than or equal to -1");
            return;
        }
    }
    const struct node *n = c->node;
    uint64_t most = (uint64_t)__atomic_load_n(&n->cfg->slowlog_max_len, __ATOMIC_RELAXED);
    if (want >= 0 && (uint64_t)want < most)
        most = (uint64_t)want;
    uint32_t *next = mi_calloc(n->nshards, sizeof *next); /* each ring's next newest */
    if (!next) {
        resp_write_error(c->out, "OOM out of memory");
        return;
    }
    for (uint32_t i = 0; i < n->nshards; i++)
        pthread_mutex_lock(&slowlog_of(n, i)->lock);
    uint64_t total = 0;
    for (uint32_t i = 0; i < n->nshards; i++)
        total += slowlog_of(n, i)->len;
    uint64_t count = total < most ? total : most;
    resp_write_array_len(c->out, count);
    for (uint64_t k = 0; k < count; k++) {
        const struct slowlog_entry *best = NULL;
        uint32_t from = 0;
        for (uint32_t i = 0; i < n->nshards; i++) {
            const struct slowlog *l = slowlog_of(n, i);
            if (next[i] >= l->len)
                continue;
            const struct slowlog_entry *e = l->ring[slowlog_nth_newest(l, next[i])];
            if (!best || e->id > best->id) {
                best = e;
                from = i;
            }
        }
        next[from]++;
        slowlog_write_entry(c->out, best);
    }
    for (uint32_t i = n->nshards; i-- > 0;)
        pthread_mutex_unlock(&slowlog_of(n, i)->lock);
    mi_free(next);
}

void cmd_slowlog_len(struct cmd_ctx *c)
{
    const struct node *n = c->node;
    uint64_t total = 0;
    for (uint32_t i = 0; i < n->nshards; i++) {
        struct slowlog *l = slowlog_of(n, i);
        pthread_mutex_lock(&l->lock);
        total += l->len;
        pthread_mutex_unlock(&l->lock);
    }
    uint64_t most = (uint64_t)__atomic_load_n(&n->cfg->slowlog_max_len, __ATOMIC_RELAXED);
    resp_write_int(c->out, (int64_t)(total < most ? total : most));
}

void cmd_slowlog_reset(struct cmd_ctx *c)
{
    const struct node *n = c->node;
    for (uint32_t i = 0; i < n->nshards; i++) {
        struct slowlog *l = slowlog_of(n, i);
        pthread_mutex_lock(&l->lock);
        for (uint32_t k = 0; k < l->cap; k++) {
            mi_free(l->ring[k]);
            l->ring[k] = NULL;
        }
        l->head = l->len = 0;
        pthread_mutex_unlock(&l->lock);
    }
    resp_write_ok(c->out);
}
