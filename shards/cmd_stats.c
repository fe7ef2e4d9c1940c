/* cmd_stats.c: per-command and per-error counters, and CLIENT REPLY (see
 * cmd_stats.h).
 * Each shard has one block of counters, indexed by slot, that only it
 * writes (relaxed atomic stores: a plain read plus a store is an increment
 * for the only writer); INFO sums the blocks with relaxed loads, as it does
 * shard_stats. The blocks are one allocation, each block 64-byte aligned, so
 * no two shards write the same cache line.
 * Where the reply of a request is: dispatch either wrote it whole into the
 * connection's output (nothing was waiting before it), or it sits in a
 * reply slot that is the connection's new last one (conn.h). The first, and
 * a slot already ready, are checked at cmd_stats_end(); a slot still waiting
 * is marked there (conn_slot.stats) and checked by the combine hooks when
 * its request ends (cmd.c's done callback), which is also
 * where a silenced reply (CLIENT REPLY OFF/SKIP) is dropped: cut off the
 * output after it was counted, as Redis counts errors it does not send.
 * A reply is an error when its first byte is '-'; its prefix is its first
 * word (Redis's afterErrorReply). Error prefixes are a small per-shard
 * table: appended by the owner (prefix written, then the count of entries
 * published with a release store), never removed, so readers need no lock.
 * Time is measured around each handler run (the time-stamp counter on x86,
 * which costs half a clock_gettime; its rate is measured against
 * CLOCK_MONOTONIC over the whole uptime when INFO asks) and added to the slot
 * being served on the shard that runs it; a sub-request carries its slot in
 * its message (cmd_stats_msg_slot). */
#include "cmd_stats.h"

#include <mimalloc.h>
#include <string.h>
#include <time.h>

#include "conn.h"
#include "node.h"

#define STAT_ADD(field, n) __atomic_store_n(&(field), (field) + (n), __ATOMIC_RELAXED)
#define STAT_GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

static uint64_t cmd_stats_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct cmd_stats *cmd_stats_create(uint32_t nshards)
{
    size_t bytes = sizeof(struct cmd_stats) + nshards * sizeof(struct cmd_stats_shard);
    struct cmd_stats *s = mi_zalloc_aligned(bytes, 64);
    if (!s)
        return NULL;
    s->nshards = nshards;
    s->tick0 = cmd_stats_clock();
    s->ns0 = cmd_stats_mono_ns();
    for (uint32_t i = 0; i < nshards; i++)
        s->shard[i].slot = s->shard[i].call_slot = -1;
    return s;
}

void cmd_stats_destroy(struct cmd_stats *s)
{
    mi_free(s);
}

struct cmd_stats_shard *cmd_stats_of(const struct node *n, uint32_t id)
{
    return &n->cmd_stats->shard[id];
}

uint64_t cmd_stats_ran(struct cmd_stats_shard *s, uint64_t t0)
{
    if (s->slot < 0 || !t0)
        return 0;
    uint64_t ticks = cmd_stats_clock() - t0;
    STAT_ADD(s->cmds[s->slot].ns, ticks);
    return ticks;
}

int32_t cmd_stats_enter(struct cmd_stats_shard *s, int32_t slot)
{
    int32_t was = s->slot;
    s->slot = slot;
    return was;
}

void cmd_stats_leave(struct cmd_stats_shard *s, int32_t was)
{
    s->slot = was;
}

/* Counts one error reply by its prefix (text after the '-'). */
static void cmd_stats_error(struct cmd_stats_shard *s, const char *text, size_t n)
{
    size_t window = n < CMD_STATS_PREFIX_MAX ? n : CMD_STATS_PREFIX_MAX;
    const char *space = memchr(text, ' ', window);
    const char *cr = memchr(text, '\r', window);
    if (!space || (cr && cr < space)) { /* one word only, or none: Redis says ERR */
        text = "ERR";
        n = 3;
    } else {
        n = (size_t)(space - text);
    }
    for (uint32_t i = 0; i < s->nerrors; i++) {
        if (strlen(s->errors[i].prefix) == n && memcmp(s->errors[i].prefix, text, n) == 0) {
            STAT_ADD(s->errors[i].count, 1);
            return;
        }
    }
    if (s->nerrors == CMD_STATS_ERRORS)
        return; /* a 33rd distinct prefix is not counted (ringkv writes a handful) */
    struct cmd_stats_error *e = &s->errors[s->nerrors];
    memcpy(e->prefix, text, n);
    e->prefix[n] = '\0';
    STAT_ADD(e->count, 1);
    __atomic_store_n(&s->nerrors, s->nerrors + 1, __ATOMIC_RELEASE);
}

/* The whole reply r[0..n) of a request at slot (-1: none). */
static void cmd_stats_reply(struct cmd_stats_shard *s, int32_t slot, bool admitted, const char *r,
                            size_t n)
{
    if (n == 0 || r[0] != '-')
        return;
    cmd_stats_error(s, r + 1, n - 1);
    if (admitted && slot >= 0)
        STAT_ADD(s->cmds[slot].failed, 1);
}

void cmd_stats_begin(struct cmd_stats_shard *s, struct conn *c, int32_t row)
{
    s->slot = s->call_slot = row;
    s->admitted = false;
    s->tracked = true;
    s->tail = c->tail;
    s->out_len = c->out.len;
    s->conn = c;
}

void cmd_stats_admit(struct cmd_stats_shard *s)
{
    s->admitted = true;
}

void cmd_stats_subcommand(struct cmd_stats_shard *s, int32_t slot)
{
    if (!s->tracked || slot < 0 || slot >= CMD_STATS_SLOTS)
        return;
    s->slot = s->call_slot = slot;
}

void cmd_stats_reject(struct cmd_stats_shard *s)
{
    s->admitted = false;
    s->slot = -1; /* the time of a refusal is no call's */
}

void cmd_stats_unknown(struct cmd_stats_shard *s)
{
    s->admitted = false;
    s->slot = s->call_slot = -1;
}

/* CLIENT REPLY: whether this request's reply is dropped, and the step to
 * the next request (Redis's resetClient: SKIP lasts one request). */
static bool cmd_stats_silenced(struct conn *c)
{
    bool silent = c->reply_flags & (CONN_REPLY_OFF | CONN_REPLY_SKIP);
    c->reply_flags &= (uint8_t)~CONN_REPLY_SKIP;
    if (c->reply_flags & CONN_REPLY_SKIP_NEXT)
        c->reply_flags = (uint8_t)((c->reply_flags & ~CONN_REPLY_SKIP_NEXT) | CONN_REPLY_SKIP);
    return silent;
}

static void cmd_stats_note_peak(struct conn *c)
{
    if (c->out.len > c->reply_peak)
        c->reply_peak = c->out.len;
}

void cmd_stats_end(struct cmd_stats_shard *s, struct conn *c)
{
    int32_t slot = s->call_slot;
    bool silent = cmd_stats_silenced(c);
    if (!s->tail && !c->head) { /* written whole into the output */
        cmd_stats_reply(s, slot, s->admitted, c->out.data + s->out_len, c->out.len - s->out_len);
        if (silent)
            c->out.len = s->out_len;
    } else {
        /* Every slot the request reserved: a connection command that asks
         * every shard (CLIENT LIST behind a pending reply) has an empty
         * ready one (conn_reply_buf) and then its request's. */
        for (struct conn_slot *p = s->tail ? s->tail->next : c->head; p; p = p->next) {
            if (p->is_ready) { /* answered already, behind one still waiting */
                cmd_stats_reply(s, slot, s->admitted, p->body.data, p->body.len);
                if (silent)
                    buf_clear(&p->body);
            } else {
                p->stats = CMD_STATS_P_TRACKED | (s->admitted ? CMD_STATS_P_ADMITTED : 0) |
                           (silent ? CMD_STATS_P_SILENT : 0) | (uint32_t)(slot + 1);
            }
            if (p == c->tail)
                break;
        }
    }
    if (slot >= 0) {
        if (s->admitted)
            STAT_ADD(s->cmds[slot].calls, 1);
        else
            STAT_ADD(s->cmds[slot].rejected, 1);
    }
    cmd_stats_note_peak(c);
    s->slot = s->call_slot = -1;
    s->tracked = false;
    s->conn = NULL;
}

int32_t cmd_stats_combine_begin(struct cmd_stats_shard *s, const struct conn_slot *p)
{
    int32_t slot = (int32_t)(p->stats & CMD_STATS_P_SLOT) - 1;
    return cmd_stats_enter(s, p->stats ? slot : -1);
}

void cmd_stats_combine_end(struct cmd_stats_shard *s, struct conn *c, const struct conn_slot *p,
                           struct buf *out, size_t at, int32_t was)
{
    cmd_stats_leave(s, was);
    if (!(p->stats & CMD_STATS_P_TRACKED) || out->len == at)
        return; /* not a RESP request, or nothing written yet (a first phase) */
    cmd_stats_reply(s, (int32_t)(p->stats & CMD_STATS_P_SLOT) - 1, p->stats & CMD_STATS_P_ADMITTED,
                    out->data + at, out->len - at);
    if (p->stats & CMD_STATS_P_SILENT)
        out->len = at;
    cmd_stats_note_peak(c);
}

void cmd_stats_since_start(const struct cmd_stats *all, uint64_t *ns, uint64_t *ticks)
{
    *ticks = cmd_stats_clock() - all->tick0;
    *ns = cmd_stats_mono_ns() - all->ns0;
}

void cmd_stats_sum(const struct node *n, uint32_t slot, struct cmd_stat *out)
{
    uint64_t ticks, ns;
    cmd_stats_since_start(n->cmd_stats, &ns, &ticks);
    double ns_per_tick = ticks && ns ? (double)ns / (double)ticks : 1.0;
    memset(out, 0, sizeof *out);
    for (uint32_t i = 0; i < n->cmd_stats->nshards; i++) {
        const struct cmd_stat *k = &n->cmd_stats->shard[i].cmds[slot];
        out->calls += STAT_GET(k->calls);
        out->ns += STAT_GET(k->ns);
        out->rejected += STAT_GET(k->rejected);
        out->failed += STAT_GET(k->failed);
    }
    out->ns = (uint64_t)((double)out->ns * ns_per_tick);
}

void cmd_stats_errors(const struct node *n,
                      void (*fn)(const char *prefix, uint64_t count, void *arg), void *arg)
{
    const struct cmd_stats *all = n->cmd_stats;
    for (uint32_t i = 0; i < all->nshards; i++) {
        const struct cmd_stats_shard *s = &all->shard[i];
        uint32_t ne = __atomic_load_n(&s->nerrors, __ATOMIC_ACQUIRE);
        for (uint32_t e = 0; e < ne; e++) {
            const char *prefix = s->errors[e].prefix;
            bool seen = false; /* listed already, from a lower shard */
            for (uint32_t j = 0; j < i && !seen; j++) {
                const struct cmd_stats_shard *o = &all->shard[j];
                uint32_t no = __atomic_load_n(&o->nerrors, __ATOMIC_ACQUIRE);
                for (uint32_t k = 0; k < no && !seen; k++)
                    seen = strcmp(o->errors[k].prefix, prefix) == 0;
            }
            if (seen)
                continue;
            uint64_t total = 0;
            for (uint32_t j = i; j < all->nshards; j++) {
                const struct cmd_stats_shard *o = &all->shard[j];
                uint32_t no = __atomic_load_n(&o->nerrors, __ATOMIC_ACQUIRE);
                for (uint32_t k = 0; k < no; k++)
                    if (strcmp(o->errors[k].prefix, prefix) == 0)
                        total += STAT_GET(o->errors[k].count);
            }
            if (total)
                fn(prefix, total, arg);
        }
    }
}

void cmd_stats_reset(struct cmd_stats_shard *s)
{
    for (uint32_t i = 0; i < CMD_STATS_SLOTS; i++) {
        __atomic_store_n(&s->cmds[i].calls, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&s->cmds[i].ns, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&s->cmds[i].rejected, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&s->cmds[i].failed, 0, __ATOMIC_RELAXED);
    }
    for (uint32_t i = 0; i < s->nerrors; i++)
        __atomic_store_n(&s->errors[i].count, 0, __ATOMIC_RELAXED);
}
