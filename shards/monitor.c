/* monitor.c: MONITOR (see monitor.h): the shard's list of monitoring
 * connections, the line a request makes, and its delivery to every shard
 * that has monitors. Delivery to another shard is a message like any
 * cross-shard request's (cmd_msg_for with monitor_deliver as its handler)
 * whose request id matches no request, so its return is only freed; it is
 * not timed (no commandstats, no SLOWLOG). */
#include "monitor.h"

#include <inttypes.h>
#include <mimalloc.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "cmd.h"
#include "conn.h"
#include "log.h"
#include "node.h"
#include "resp.h"
#include "shard.h"
#include "slowlog.h"

#define MONITOR_NO_REQUEST UINT64_MAX /* a request id that is never live */

static struct shard *monitor_shard(const struct cmd_ctx *c)
{
    return c->node->shards[c->shard_id];
}

void cmd_monitor(struct cmd_ctx *c)
{
    struct conn *conn = c->conn;
    struct shard *sh = monitor_shard(c);
    if (conn->is_monitor) {
        resp_write_ok(c->out);
        return;
    }
    struct monitor_list *l = &sh->monitors;
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 4;
        struct conn **conns = mi_realloc(l->conns, cap * sizeof *conns);
        if (!conns) {
            cmd_reply_error(c, "OOM out of memory");
            return;
        }
        l->conns = conns;
        l->cap = cap;
    }
    l->conns[l->n++] = conn;
    conn->is_monitor = true;
    __atomic_store_n(&l->here, (int)l->n, __ATOMIC_RELAXED);
    __atomic_add_fetch(&sh->node->monitors, 1, __ATOMIC_RELAXED);
    resp_write_ok(c->out);
}

void monitor_forget(struct shard *sh, struct conn *c)
{
    if (!c->is_monitor)
        return;
    struct monitor_list *l = &sh->monitors;
    for (uint32_t i = 0; i < l->n; i++) {
        if (l->conns[i] == c) {
            l->conns[i] = l->conns[--l->n];
            break;
        }
    }
    c->is_monitor = false;
    __atomic_store_n(&l->here, (int)l->n, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&sh->node->monitors, 1, __ATOMIC_RELAXED);
}

void monitor_fini(struct monitor_list *l)
{
    mi_free(l->conns);
    l->conns = NULL;
    l->n = l->cap = 0;
}

static const char monitor_escaped[] = "\\\"\n\r\t\a\b"; /* each written as a backslash and */
static const char monitor_escapes[] = "\\\"nrtab";         /* the letter at its place here */

/* One argument as Redis quotes it (sdscatrepr): "...", with \\ \" \n \r \t
 * \a \b and \xHH for other bytes that do not print. */

static void monitor_quote(struct buf *b, const char *p, size_t n)
{
    buf_append(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        const char *k = ch ? strchr(monitor_escaped, ch) : NULL;
        if (k) {
            char esc[2] = {'\\', monitor_escapes[k - monitor_escaped]};
            buf_append(b, esc, 2);
        } else if (ch >= 0x20 && ch < 0x7f) {
            buf_append(b, (const char *)&ch, 1);
        } else {
            char hex[5];
            snprintf(hex, sizeof hex, "\\x%02x", ch);
            buf_append(b, hex, 4);
        }
    }
    buf_append(b, "\"", 1);
}

/* Appends a line to each of this shard's monitors; closes one that holds
 * too much unsent. Behind a reply still outstanding, lines gather in one
 * ready slot at the end (not one slot each). */
static void monitor_send_here(struct shard *sh, const char *line, size_t n)
{
    struct monitor_list *l = &sh->monitors;
    for (uint32_t i = 0; i < l->n; i++) {
        struct conn *c = l->conns[i];
        if (c->closing || c->close_after_flush)
            continue;
        bool at_tail = c->tail && c->tail->is_ready;
        size_t unsent = c->out.len + (c->sending.len - c->sent) + (at_tail ? c->tail->body.len : 0);
        if (unsent + n > MONITOR_OUT_MAX) {
            log_warn("MONITOR client %s: %zu bytes unsent, more than %u; closing it", c->addr,
                     unsent, MONITOR_OUT_MAX);
            conn_close(c);
            conn_mark_dirty(c); /* the end-of-turn flush frees it once done */
            continue;
        }
        struct buf *out = at_tail ? &c->tail->body : conn_reply_buf(c);
        buf_append(out, line, n);
        conn_mark_dirty(c);
    }
}

void monitor_deliver(struct cmd_ctx *c)
{
    if (c->argc >= 1)
        monitor_send_here(monitor_shard(c), c->argv[0].ptr, c->argv[0].len);
    c->res->status = REQ_OK;
}

void monitor_returned(struct shard *sh, const struct cmd_msg *m)
{
    sh->monitors.in_flight -= m->argc >= 1 ? m->argv[0].len : 0;
}

/* One argument of a line: quoted, cut at MONITOR_ARG_MAX bytes (saying how
 * many more). */
static void monitor_put_arg(struct buf *line, const struct resp_arg *a)
{
    size_t len = a->len > MONITOR_ARG_MAX ? MONITOR_ARG_MAX : a->len;
    monitor_quote(line, a->ptr, len);
    if (len < a->len)
        buf_printf(line, "... (%zu more bytes)", (size_t)a->len - len);
}

void monitor_feed(struct shard *sh, const struct conn *c, const struct resp_arg *argv,
                  uint32_t argc)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct buf line;
    buf_init(&line);
    buf_printf(&line, "+%lld.%06ld [0 %s]", (long long)ts.tv_sec, ts.tv_nsec / 1000, c->addr);
    static const struct resp_arg redacted = {"(redacted)", 10};
    for (uint32_t i = 0; i < argc; i++) {
        if (line.len > MONITOR_LINE_MAX) {
            buf_printf(&line, " ... (%" PRIu32 " more arguments)", argc - i);
            break;
        }
        buf_append(&line, " ", 1);
        monitor_put_arg(&line, slowlog_is_secret(argv, i) ? &redacted : &argv[i]);
    }
    buf_append(&line, "\r\n", 2);
    if (line.failed) {
        buf_fini(&line);
        return;
    }
    const struct node *n = sh->node;
    for (uint32_t i = 0; i < n->nshards; i++) {
        if (!__atomic_load_n(&n->shards[i]->monitors.here, __ATOMIC_RELAXED))
            continue;
        if (i == sh->id) {
            monitor_send_here(sh, line.data, line.len);
            continue;
        }
        if (sh->monitors.in_flight + line.len > MONITOR_OUT_MAX)
            continue; /* the shards with monitors are that far behind: they miss it */
        struct resp_arg args[1] = {{line.data, (uint32_t)line.len}}; /* no key: no lookup */
        struct cmd_msg *m = cmd_msg_for(sh, MONITOR_NO_REQUEST, 0, i, monitor_deliver,
                                        CMD_NOKEY | CMD_NODATA, 2, args, 1, 0);
        if (!m)
            continue; /* out of memory: that shard's monitors miss the line */
        m->stat_slot = -1; /* not a command of its own: not timed or logged */
        sh->monitors.in_flight += line.len;
        shard_send(sh, i, m);
    }
    buf_fini(&line);
}
