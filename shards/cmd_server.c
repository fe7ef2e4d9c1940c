/* cmd_server.c: connection and server commands (see cmd_server.h).
 * These run on the shard of the connection that sent them and change only
 * that connection (protocol version, name, authentication, CLIENT REPLY) or
 * read process-wide figures: other shards' counters are read with relaxed
 * atomic loads (shard.h, store.h, cmd_stats.h), never by touching their
 * structures. What needs another shard's connections or counters (CLIENT
 * LIST, CLIENT KILL, CONFIG RESETSTAT) is broadcast: each shard runs a
 * handler over its own, and cmd.c combines the replies. INFO builds its text
 * with buf_printf (a cold path). The container commands (CLIENT, COMMAND,
 * CONFIG) are tables of subcommands with Redis 7's names, arities, ACL
 * categories and HELP lines; each subcommand counts in INFO commandstats
 * under "container|sub"; COMMAND INFO and DOCS list them under their
 * container (element 9, "subcommands") and answer to that name, as Redis 7
 * does (their DOCS words: server_subcommand_docs). What Redis says about a
 * command that ringkv's table does not (ACL categories, key flags) is a
 * small table here (server_redis_meta); COMMAND INFO gives those
 * categories. Error texts are Redis 7's. CLUSTER is a container here too;
 * what its subcommands and INFO's cluster section say about the cluster is
 * cmd_cluster.c's. OBJECT and MEMORY are containers whose keyed
 * subcommands do not run here: cmd_server_keyed_subcommand() turns them
 * into RING.KEYINFO key field, which the dispatcher routes by its key
 * (cmd_keys.c answers it); HELP and their errors run here. */
#include "cmd_server.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <mimalloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "cmd_cluster.h"
#include "cmd_multi.h"
#include "cmd_stats.h"
#include "cmd_string.h"
#include "conn.h"
#include "glob.h"
#include "idset.h"
#include "log.h"
#include "monitor.h"
#include "node.h"
#include "num.h"
#include "persist.h"
#include "secret.h"
#include "slowlog.h"
#include "shard.h"
#include "coord.h"
#include "hints.h"
#include "store.h"
#include "table.h"

#define CMD_SERVER_REDIS_VERSION "7.0.0" /* the Redis command set ringkv follows */
/* What memcached's "version" and "STAT version" say: the memcached release
 * whose text protocol ringkv follows, so that clients which pick their
 * dialect by version see a current server. ringkv's own version is
 * "STAT ringkv_version". */
#define CMD_SERVER_MEMCACHED_VERSION "1.6.21"

static int64_t server_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cmd_ping(struct cmd_ctx *c)
{
    if (c->argc > 2) {
        resp_write_error(c->out, "ERR wrong number of arguments for 'ping' command");
        return;
    }
    if (c->argc == 2)
        resp_write_bulk(c->out, c->argv[1].ptr, c->argv[1].len);
    else
        resp_write_simple(c->out, "PONG");
}

void cmd_echo(struct cmd_ctx *c) { resp_write_bulk(c->out, c->argv[1].ptr, c->argv[1].len); }

void cmd_time(struct cmd_ctx *c)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char sec[24], usec[16];
    int ns = snprintf(sec, sizeof sec, "%lld", (long long)ts.tv_sec);
    int nu = snprintf(usec, sizeof usec, "%ld", ts.tv_nsec / 1000);
    resp_write_array_len(c->out, 2);
    resp_write_bulk(c->out, sec, (size_t)ns);
    resp_write_bulk(c->out, usec, (size_t)nu);
}

void cmd_lastsave(struct cmd_ctx *c)
{
    const struct node *n = c->node;
    int64_t latest = n->start_ms, oldest_unsynced = INT64_MAX;
    for (uint32_t i = 0; n->cfg->storage == CFG_STORAGE_LOG && i < n->nshards; i++) {
        struct persist_stats s;
        persist_read_stats(n->shards[i]->persist, &s);
        int64_t at = s.last_fsync_ms > n->start_ms ? s.last_fsync_ms : n->start_ms;
        if (s.saved_ms > at) /* a SAVE found everything durable then */
            at = s.saved_ms;
        if (at > latest)
            latest = at;
        if (s.unsynced_bytes && at < oldest_unsynced)
            oldest_unsynced = at; /* this shard's writes since are not saved yet */
    }
    cmd_reply_int(c, (oldest_unsynced < INT64_MAX ? oldest_unsynced : latest) / 1000);
}

void cmd_role(struct cmd_ctx *c)
{
    resp_write_array_len(c->out, 3);
    resp_write_bulk_str(c->out, "master");
    resp_write_int(c->out, 0);
    resp_write_array_len(c->out, 0);
}

void cmd_reset(struct cmd_ctx *c)
{
    struct conn *k = c->conn;
    cmd_multi_forget(k);
    monitor_forget(c->node->shards[c->shard_id], k);
    k->reply_flags = 0;
    k->resp_version = 2;
    mi_free(k->name);
    k->name = NULL;
    k->consistency_r = k->consistency_w = CONN_CONSISTENCY_DEFAULT;
    k->authenticated = c->node->cfg->requirepass[0] == '\0';
    c->res->status = REQ_OK;
    resp_write_simple(c->out, "RESET");
}

void cmd_quit(struct cmd_ctx *c)
{
    resp_write_ok(c->out);
    c->conn->close_after_flush = true;
}

/* SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: stops this node as SIGTERM
 * does (node_run's sigwait takes it: the shards stop, the log is synced, a
 * clean exit); the client gets no reply, its connection ends with the node,
 * as Redis's does. NOSAVE, SAVE, NOW and FORCE change nothing here: every
 * acknowledged write is already in the log. ABORT: there is no shutdown in
 * progress to abort (this one is immediate). In a cluster it stops this node
 * only, as Redis's does; the others see it leave as they see a crash
 * (failure detection), since it does not leave the ring. */
void cmd_shutdown(struct cmd_ctx *c)
{
    bool is_abort = false;
    for (uint32_t i = 1; i < c->argc; i++) {
        const struct resp_arg *a = &c->argv[i];
        if (cmd_arg_is(a, "ABORT")) {
            is_abort = true;
        } else if (!cmd_arg_is(a, "NOSAVE") && !cmd_arg_is(a, "SAVE") && !cmd_arg_is(a, "NOW") &&
                   !cmd_arg_is(a, "FORCE")) {
            resp_write_error(c->out, "ERR syntax error");
            return;
        }
    }
    if (is_abort) {
        resp_write_error(c->out, "ERR No shutdown in progress.");
        return;
    }
    log_warn("SHUTDOWN from client %s: stopping", c->conn->addr);
    kill(getpid(), SIGTERM);
}

/* WAIT numreplicas timeout: how many other replicas hold this connection's
 * writes. Every write it was told succeeded had reached W replicas first
 * (its CONSISTENCY W, else write-quorum, capped by N), this node's among
 * them: W - 1 others hold each. That count comes at once, whatever
 * numreplicas and timeout ask: the rest of each write's replicas were sent
 * it already, and waiting would not make them say so (Redis blocks until
 * numreplicas acknowledge or timeout passes). A cluster of one answers 0,
 * as a Redis server without replicas does once its timeout passes. */
void cmd_wait(struct cmd_ctx *c)
{
    int64_t replicas, timeout;
    if (!num_parse_i64(c->argv[1].ptr, c->argv[1].len, &replicas)) {
        resp_write_error(c->out, "ERR value is not an integer or out of range");
        return;
    }
    if (!num_parse_i64(c->argv[2].ptr, c->argv[2].len, &timeout)) {
        resp_write_error(c->out, "ERR timeout is not an integer or out of range");
        return;
    }
    if (timeout < 0) {
        resp_write_error(c->out, "ERR timeout is negative");
        return;
    }
    const struct shard *sh = c->node->shards[c->shard_id];
    resp_write_int(c->out, (int64_t)coord_write_quorum(sh, c->conn->consistency_w) - 1);
}

void cmd_select(struct cmd_ctx *c)
{
    char *end;
    char text[24];
    if (c->argv[1].len == 0 || c->argv[1].len >= sizeof text) {
        resp_write_error(c->out, "ERR value is not an integer or out of range");
        return;
    }
    memcpy(text, c->argv[1].ptr, c->argv[1].len);
    text[c->argv[1].len] = '\0';
    long long db = strtoll(text, &end, 10);
    if (*end) {
        resp_write_error(c->out, "ERR value is not an integer or out of range");
        return;
    }
    if (db != 0) {
        resp_write_error(c->out, "ERR DB index is out of range");
        return;
    }
    resp_write_ok(c->out);
}

/* Checks a password against requirepass; writes the error reply if wrong. */
static bool server_check_password(struct cmd_ctx *c, const struct resp_arg *user,
                                  const struct resp_arg *pass)
{
    const char *want = c->node->cfg->requirepass;
    if (!want[0] && !user) {
        resp_write_error(c->out, "ERR AUTH <password> called without any password configured "
                                 "for the default user. Are you sure your configuration is "
                                 "correct?");
        return false;
    }
    bool user_ok = !user || cmd_arg_is(user, "default");
    bool pass_ok = !want[0] || secret_equal(want, strlen(want), pass->ptr, pass->len);
    if (!user_ok || !pass_ok) {
        resp_write_error(c->out, "WRONGPASS invalid username-password pair or user is disabled.");
        return false;
    }
    c->conn->authenticated = true;
    return true;
}

void cmd_auth(struct cmd_ctx *c)
{
    if (c->argc > 3) {
        resp_write_error(c->out, "ERR syntax error");
        return;
    }
    const struct resp_arg *user = c->argc == 3 ? &c->argv[1] : NULL;
    if (server_check_password(c, user, &c->argv[c->argc - 1]))
        resp_write_ok(c->out);
}

static bool server_name_valid(const struct resp_arg *a)
{
    for (uint32_t i = 0; i < a->len; i++)
        if (a->ptr[i] < '!' || a->ptr[i] > '~')
            return false;
    return true;
}

static void server_set_name(struct conn *conn, const struct resp_arg *a)
{
    mi_free(conn->name);
    conn->name = NULL;
    if (a->len == 0)
        return;
    conn->name = mi_malloc(a->len + 1);
    if (conn->name) {
        memcpy(conn->name, a->ptr, a->len);
        conn->name[a->len] = '\0';
    }
}

void cmd_hello(struct cmd_ctx *c)
{
    struct conn *conn = c->conn;
    int proto = conn->resp_version;
    uint32_t i = 1;
    if (c->argc >= 2) {
        char *end;
        char text[16] = {0};
        memcpy(text, c->argv[1].ptr, c->argv[1].len < 15 ? c->argv[1].len : 15);
        long v = strtol(text, &end, 10);
        if (*end || c->argv[1].len == 0) {
            resp_write_error(c->out, "ERR Protocol version is not an integer or out of range");
            return;
        }
        if (v != 2 && v != 3) {
            resp_write_error(c->out, "NOPROTO unsupported protocol version");
            return;
        }
        proto = (int)v;
        i = 2;
    }
    const struct resp_arg *name = NULL;
    for (; i < c->argc; i++) {
        if (cmd_arg_is(&c->argv[i], "AUTH") && i + 2 < c->argc) {
            if (!server_check_password(c, &c->argv[i + 1], &c->argv[i + 2]))
                return;
            i += 2;
        } else if (cmd_arg_is(&c->argv[i], "SETNAME") && i + 1 < c->argc) {
            name = &c->argv[++i];
            if (!server_name_valid(name)) {
                resp_write_error(c->out, "ERR Client names cannot contain spaces, newlines or "
                                         "special characters.");
                return;
            }
        } else {
            char msg[160];
            snprintf(msg, sizeof msg, "ERR Syntax error in HELLO option '%.*s'",
                     c->argv[i].len > 64 ? 64 : (int)c->argv[i].len, c->argv[i].ptr);
            resp_write_error(c->out, msg);
            return;
        }
    }
    if (!conn->authenticated) {
        resp_write_error(c->out, "NOAUTH HELLO must be called with the client already "
                                 "authenticated, otherwise the HELLO <proto> AUTH <user> <pass> "
                                 "option can be used to authenticate the client and select the "
                                 "RESP protocol version at the same time");
        return;
    }
    if (name)
        server_set_name(conn, name);
    conn->resp_version = proto;
    struct buf *o = c->out;
    resp_write_map_len(o, proto, 7);
    resp_write_bulk_str(o, "server");
    resp_write_bulk_str(o, "redis");
    resp_write_bulk_str(o, "version");
    resp_write_bulk_str(o, CMD_SERVER_REDIS_VERSION);
    resp_write_bulk_str(o, "proto");
    resp_write_int(o, proto);
    resp_write_bulk_str(o, "id");
    resp_write_int(o, (int64_t)conn->id);
    resp_write_bulk_str(o, "mode");
    resp_write_bulk_str(o, "cluster"); /* as cluster_enabled:1 (cmd_cluster.c) */
    resp_write_bulk_str(o, "role");
    resp_write_bulk_str(o, "master");
    resp_write_bulk_str(o, "modules");
    resp_write_array_len(o, 0);
}

/* Redis's reply to a subcommand its container does not have. */
static void server_unknown_subcommand(struct cmd_ctx *c, const char *container)
{
    char msg[200];
    snprintf(msg, sizeof msg, "ERR unknown subcommand '%.*s'. Try %s HELP.",
             c->argv[1].len > 128 ? 128 : (int)c->argv[1].len, c->argv[1].ptr, container);
    resp_write_error(c->out, msg);
}

/* Redis's ACL categories of a command (COMMAND LIST FILTERBY ACLCAT), in
 * Redis's order of names. */
enum {
    SERVER_CAT_KEYSPACE = 1u << 0,
    SERVER_CAT_READ = 1u << 1,
    SERVER_CAT_WRITE = 1u << 2,
    SERVER_CAT_STRING = 1u << 3,
    SERVER_CAT_BITMAP = 1u << 4,
    SERVER_CAT_ADMIN = 1u << 5,
    SERVER_CAT_FAST = 1u << 6,
    SERVER_CAT_SLOW = 1u << 7,
    SERVER_CAT_DANGEROUS = 1u << 8,
    SERVER_CAT_CONNECTION = 1u << 9,
};

/* Their names as COMMAND INFO writes them, bit i's at i. */
static const char *const server_cat_names[] = {"@keyspace", "@read", "@write",     "@string",
                                               "@bitmap",   "@admin", "@fast",     "@slow",
                                               "@dangerous", "@connection"};

/* One subcommand of a container command (CLIENT, COMMAND, CONFIG): its name,
 * Redis's arity counted from the container's name (2 for "CLIENT ID"), its
 * ACL categories, and its lines of HELP (usage first, then indented
 * description). */
struct server_subcommand {
    const char *name; /* lower case, as Redis names it in 'client|id' */
    const char *full; /* that whole name: INFO commandstats, CLIENT LIST cmd= */
    int arity;
    uint32_t cats;
    void (*run)(struct cmd_ctx *c); /* NULL: the container's HELP (server_help over the
                                       subcommands before it, the last entry) */
    const char *help[16];
};

/* A container command and its subcommands; subs[i] counts in INFO
 * commandstats at stats slot base + i (cmd_stats.h). */
struct server_container {
    const char *name; /* upper case, as HELP and errors write it */
    const struct server_subcommand *subs;
    size_t n;
    int32_t base;
};

#define SERVER_SUBS_MAX 16 /* stats slots per container */

/* Container var, the k-th: its subcommands count at SERVER_SUBS_MAX stats
 * slots of its own (k * SERVER_SUBS_MAX past CMD_STATS_SUB_BASE), which
 * the compiler checks they fit in, inside the table. */
#define SERVER_CONTAINER(var, name, subs, nsubs, k)                                              \
    _Static_assert((nsubs) <= SERVER_SUBS_MAX &&                                                 \
                       CMD_STATS_SUB_BASE + (k) * SERVER_SUBS_MAX + (nsubs) <= CMD_STATS_SLOTS,  \
                   name "'s subcommands have stats slots");                                      \
    static const struct server_container var = {name, subs, nsubs,                              \
                                                 CMD_STATS_SUB_BASE + (k) * SERVER_SUBS_MAX}

/* The container a command table row is, or NULL (defined at the end). */
static const struct server_container *server_container_of(const char *name);
/* The subcommand named a (its full name, "client|list", any case), or NULL. */
static const struct server_subcommand *server_subcommand_of(const struct resp_arg *a);
/* The full name of a subcommand's stats slot, or NULL. */
static const char *server_subcommand_name(uint32_t slot);

static void server_help(struct cmd_ctx *c, const char *container, const char *const *first,
                        const struct server_subcommand *subs, size_t n);

/* The subcommand of container k that a names (any case), or NULL. */
static const struct server_subcommand *server_sub_named(const struct server_container *k,
                                                        const struct resp_arg *a)
{
    for (size_t i = 0; i < k->n; i++)
        if (cmd_arg_is(a, k->subs[i].name))
            return &k->subs[i];
    return NULL;
}

/* Finds argv[1] among the container's subcommands and runs it, or writes
 * Redis's unknown-subcommand or wrong-number-of-arguments error. Counts it
 * in INFO commandstats under its own name, as Redis does. */
static void server_run_subcommand(struct cmd_ctx *c, const struct server_container *k)
{
    struct cmd_stats_shard *stats = cmd_stats_of(c->node, c->shard_id);
    const struct server_subcommand *sub = server_sub_named(k, &c->argv[1]);
    if (!sub) {
        cmd_stats_unknown(stats);
        server_unknown_subcommand(c, k->name);
        return;
    }
    cmd_stats_subcommand(stats, k->base + (int32_t)(sub - k->subs));
    int arity = sub->arity;
    if ((arity > 0 && c->argc != (uint32_t)arity) || (arity < 0 && c->argc < (uint32_t)-arity)) {
        char msg[96];
        snprintf(msg, sizeof msg, "ERR wrong number of arguments for '%s' command", sub->full);
        resp_write_error(c->out, msg);
        cmd_stats_reject(stats);
        return;
    }
    c->conn->last_cmd = sub->full;
    if (sub->run)
        sub->run(c);
    else
        server_help(c, k->name, NULL, k->subs, k->n - 1);
}

/* HELP as Redis writes it: a title, each subcommand's lines (after `first`,
 * the lines of a pseudo-entry such as COMMAND's "(no subcommand)"), then
 * HELP's own. */
static void server_help(struct cmd_ctx *c, const char *container, const char *const *first,
                        const struct server_subcommand *subs, size_t n)
{
    size_t lines = 1 + 2; /* title, and HELP's two */
    for (const char *const *l = first; l && *l; l++)
        lines++;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < sizeof subs[i].help / sizeof subs[i].help[0] && subs[i].help[j]; j++)
            lines++;
    char title[96];
    snprintf(title, sizeof title,
             "%s <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", container);
    resp_write_array_len(c->out, lines);
    resp_write_simple(c->out, title);
    for (const char *const *l = first; l && *l; l++)
        resp_write_simple(c->out, *l);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < sizeof subs[i].help / sizeof subs[i].help[0] && subs[i].help[j]; j++)
            resp_write_simple(c->out, subs[i].help[j]);
    resp_write_simple(c->out, "HELP");
    resp_write_simple(c->out, "    Prints this help.");
}

/* One CLIENT LIST line for a connection, with Redis 7.0's fields in its
 * order (then 7.2's lib-name and lib-ver, and ringkv's proto). qbuf: bytes
 * received and not yet served (while the connection's own request runs,
 * that request and what follows it, as Redis counts); qbuf-free: room left
 * in its own input buffer. rbs and rbp are Redis's reply buffer: its size
 * and the most reply bytes it gathered at once (ringkv keeps the peak since
 * the connection started; Redis the last 5 seconds'). */
static void server_client_line(struct buf *b, const struct conn *k, int64_t now_ms)
{
    size_t qbuf = k->unparsed ? k->unparsed : k->in.len;
    size_t peak = k->reply_peak > k->out.len ? k->reply_peak : k->out.len;
    buf_printf(b,
               "id=%" PRIu64 " addr=%s laddr=%s fd=%d name=%s age=%lld idle=%lld flags=%s db=0 "
               "sub=0 psub=0 ssub=0 multi=-1 qbuf=%zu qbuf-free=%zu argv-mem=0 multi-mem=0 "
               "rbs=%zu rbp=%zu obl=0 oll=0 omem=%zu tot-mem=%zu events=r cmd=%s user=default "
               "redir=-1 resp=%d lib-name= lib-ver= proto=%s\n",
               k->id, k->addr, k->laddr, k->fd, k->name ? k->name : "",
               (long long)((now_ms - k->created_ms) / 1000),
               (long long)((now_ms - k->last_ms) / 1000), k->is_monitor ? "O" : "N", qbuf,
               k->in.cap - k->in.len, k->out.cap, peak, k->out.len,
               k->in.cap + k->out.cap + k->sending.cap, k->last_cmd ? k->last_cmd : "NULL",
               k->resp_version, k->kind == CONN_RESP ? "resp" : "memcache");
}

/* CLIENT LIST on every shard: the lines of the connections it owns, as a
 * bulk string, filtered as the request asks (TYPE other than normal: none).
 * With ID, server_client_list() on the origin has parsed the ids and sends
 * them sorted, as raw int64s in argv[3]; the shard answers with a record
 * (idset.h) for each connection among them. cmd.c's CMD_COMBINE_BULK joins
 * the answers, in the order of the ids asked, and writes RESP3's verbatim
 * string where it applies. */
static void server_client_list_shard(struct cmd_ctx *c)
{
    const struct shard *sh = c->node->shards[c->shard_id];
    struct buf lines;
    buf_init(&lines);
    int64_t now = server_now_ms();
    bool by_id = c->argc == 4 && cmd_arg_is(&c->argv[2], "ID");
    bool none =
        c->argc == 4 && cmd_arg_is(&c->argv[2], "TYPE") && !cmd_arg_is(&c->argv[3], "normal");
    uint32_t nids = by_id ? c->argv[3].len / sizeof(int64_t) : 0;
    for (uint32_t s = 0; s < sh->conn_cap && !none; s++) {
        const struct conn *k = sh->conns[s];
        if (!k || k->closing)
            continue;
        if (!by_id) {
            server_client_line(&lines, k, now);
        } else if (idset_has(c->argv[3].ptr, nids, (int64_t)k->id)) {
            size_t at = idset_record_begin(&lines, (int64_t)k->id);
            server_client_line(&lines, k, now);
            idset_record_end(&lines, at);
        }
    }
    cmd_reply_bulk(c, lines.data ? lines.data : "", lines.len);
    buf_fini(&lines);
}

/* CLIENT LIST [TYPE normal|master|replica|slave|pubsub] | [ID id [id ...]]:
 * the options as Redis 7.0 parses them. */
static void server_client_list(struct cmd_ctx *c)
{
    bool none = false;
    uint32_t nids = 0;
    if (c->argc == 4 && cmd_arg_is(&c->argv[2], "TYPE")) {
        const struct resp_arg *t = &c->argv[3];
        if (cmd_arg_is(t, "master") || cmd_arg_is(t, "replica") || cmd_arg_is(t, "slave") ||
            cmd_arg_is(t, "pubsub")) {
            none = true;
        } else if (!cmd_arg_is(t, "normal")) {
            char msg[200];
            snprintf(msg, sizeof msg, "ERR Unknown client type '%.*s'",
                     t->len > 128 ? 128 : (int)t->len, t->ptr);
            resp_write_error(c->out, msg);
            return;
        }
    } else if (c->argc > 3 && cmd_arg_is(&c->argv[2], "ID")) {
        nids = c->argc - 3;
        for (uint32_t i = 3; i < c->argc; i++) {
            int64_t id;
            if (!num_parse_i64(c->argv[i].ptr, c->argv[i].len, &id)) {
                resp_write_error(c->out, "ERR Invalid client ID");
                return;
            }
        }
    } else if (c->argc != 2) {
        resp_write_error(c->out, "ERR syntax error");
        return;
    }
    (void)none; /* each shard applies TYPE itself */
    if (nids == 0) {
        cmd_broadcast(c, server_client_list_shard, CMD_COMBINE_BULK);
        return;
    }
    /* The ids as asked (their order is the reply's) for the combiner, and
     * sorted for the shards, parsed once here. */
    int64_t *ids = mi_malloc(2 * (size_t)nids * sizeof *ids);
    if (!ids) {
        resp_write_error(c->out, "OOM out of memory");
        return;
    }
    for (uint32_t i = 0; i < nids; i++)
        num_parse_i64(c->argv[3 + i].ptr, c->argv[3 + i].len, &ids[i]);
    int64_t *sorted = ids + nids;
    memcpy(sorted, ids, nids * sizeof *ids);
    idset_sort(sorted, nids);
    struct resp_arg args[4] = {c->argv[0], c->argv[1], c->argv[2],
                               {(const char *)sorted, (uint32_t)(nids * sizeof *sorted)}};
    struct cmd_ctx all = *c;
    all.argv = args;
    all.argc = 4;
    cmd_broadcast_with(&all, server_client_list_shard, CMD_COMBINE_BULK, ids, nids * sizeof *ids);
    mi_free(ids);
}

static void server_client_id(struct cmd_ctx *c)
{
    resp_write_int(c->out, (int64_t)c->conn->id);
}

static void server_client_getname(struct cmd_ctx *c)
{
    if (c->conn->name)
        resp_write_bulk_str(c->out, c->conn->name);
    else
        resp_write_null(c->out, c->proto);
}

static void server_client_setname(struct cmd_ctx *c)
{
    if (!server_name_valid(&c->argv[2])) {
        resp_write_error(c->out, "ERR Client names cannot contain spaces, newlines or "
                                 "special characters.");
        return;
    }
    server_set_name(c->conn, &c->argv[2]);
    resp_write_ok(c->out);
}

/* CLIENT NO-EVICT ON|OFF: ringkv evicts no client (it has no
 * maxmemory-clients), so either is what the client gets. */
static void server_client_no_evict(struct cmd_ctx *c)
{
    if (cmd_arg_is(&c->argv[2], "on") || cmd_arg_is(&c->argv[2], "off"))
        cmd_reply_ok(c);
    else
        cmd_reply_error(c, "ERR syntax error");
}

static void server_client_setinfo(struct cmd_ctx *c)
{
    resp_write_ok(c->out);
}

static void server_client_info(struct cmd_ctx *c)
{
    struct buf line;
    buf_init(&line);
    server_client_line(&line, c->conn, server_now_ms());
    if (line.failed)
        resp_write_error(c->out, "OOM out of memory");
    else
        resp_write_verbatim(c->out, c->proto, line.data ? line.data : "", line.len);
    buf_fini(&line);
}

/* CLIENT KILL on one shard: closes the connections it owns that match the
 * filters server_client_kill() normalized into argv: [2] the caller's id,
 * [3] "1" to spare the caller (SKIPME), [4] an id (0: any), [5] and [6]
 * "=" and the peer or local address ("": any). The caller itself is closed
 * once its reply is sent, as Redis does. Replies the number killed. */
static void server_client_kill_shard(struct cmd_ctx *c)
{
    struct shard *sh = c->node->shards[c->shard_id];
    int64_t me = 0, id = 0;
    num_parse_i64(c->argv[2].ptr, c->argv[2].len, &me);
    num_parse_i64(c->argv[4].ptr, c->argv[4].len, &id);
    bool skipme = cmd_arg_is(&c->argv[3], "1");
    const struct resp_arg *addr = &c->argv[5], *laddr = &c->argv[6];
    int64_t killed = 0;
    for (uint32_t s = 0; s < sh->conn_cap; s++) {
        struct conn *k = sh->conns[s];
        if (!k || k->closing || (id && (int64_t)k->id != id))
            continue;
        if (addr->len && !(addr->len - 1 == strlen(k->addr) &&
                           memcmp(addr->ptr + 1, k->addr, addr->len - 1) == 0))
            continue;
        if (laddr->len && !(laddr->len - 1 == strlen(k->laddr) &&
                            memcmp(laddr->ptr + 1, k->laddr, laddr->len - 1) == 0))
            continue;
        if ((int64_t)k->id == me) {
            if (skipme)
                continue;
            k->close_after_flush = true;
        } else {
            conn_close(k);
            conn_mark_dirty(k); /* freed at the end of the turn if nothing is in flight */
        }
        killed++;
    }
    cmd_reply_int(c, killed);
}

/* CLIENT KILL ip:port, or CLIENT KILL <option> <value> ... as Redis 7.0
 * parses them (ID, TYPE, ADDR, LADDR, USER, SKIPME), with its errors. Every
 * shard kills its own connections; the combined reply is the count, or for
 * the old form +OK / "No such client". */
static void server_client_kill(struct cmd_ctx *c)
{
    bool old_form = c->argc == 3, skipme = !old_form, none = false;
    int64_t id = 0;
    const struct resp_arg *addr = old_form ? &c->argv[2] : NULL, *laddr = NULL;
    if (!old_form && c->argc % 2 != 0) {
        resp_write_error(c->out, "ERR syntax error");
        return;
    }
    for (uint32_t i = 2; !old_form && i < c->argc; i += 2) {
        const struct resp_arg *opt = &c->argv[i], *v = &c->argv[i + 1];
        char msg[200];
        if (cmd_arg_is(opt, "id")) {
            if (!num_parse_i64(v->ptr, v->len, &id) || id < 1) {
                resp_write_error(c->out, "ERR client-id should be greater than 0");
                return;
            }
        } else if (cmd_arg_is(opt, "type")) {
            if (cmd_arg_is(v, "master") || cmd_arg_is(v, "replica") || cmd_arg_is(v, "slave") ||
                cmd_arg_is(v, "pubsub")) {
                none = true; /* ringkv has only normal clients */
            } else if (!cmd_arg_is(v, "normal")) {
                snprintf(msg, sizeof msg, "ERR Unknown client type '%.*s'",
                         v->len > 128 ? 128 : (int)v->len, v->ptr);
                resp_write_error(c->out, msg);
                return;
            }
        } else if (cmd_arg_is(opt, "addr")) {
            addr = v;
        } else if (cmd_arg_is(opt, "laddr")) {
            laddr = v;
        } else if (cmd_arg_is(opt, "user")) {
            if (!cmd_arg_is(v, "default")) { /* the only user; every client is it */
                snprintf(msg, sizeof msg, "ERR No such user '%.*s'",
                         v->len > 128 ? 128 : (int)v->len, v->ptr);
                resp_write_error(c->out, msg);
                return;
            }
        } else if (cmd_arg_is(opt, "skipme") && (cmd_arg_is(v, "yes") || cmd_arg_is(v, "no"))) {
            skipme = cmd_arg_is(v, "yes");
        } else {
            resp_write_error(c->out, "ERR syntax error");
            return;
        }
    }
    if (none) {
        resp_write_int(c->out, 0);
        return;
    }
    char me[24], wanted[24], a[160], la[160];
    snprintf(me, sizeof me, "%" PRIu64, c->conn->id);
    snprintf(wanted, sizeof wanted, "%" PRId64, id);
    int an = addr ? snprintf(a, sizeof a, "=%.*s", addr->len > 150 ? 150 : (int)addr->len,
                             addr->ptr)
                  : 0;
    int lan = laddr ? snprintf(la, sizeof la, "=%.*s", laddr->len > 150 ? 150 : (int)laddr->len,
                               laddr->ptr)
                    : 0;
    struct resp_arg argv[7] = {
        c->argv[0], c->argv[1], {me, (uint32_t)strlen(me)}, {skipme ? "1" : "0", 1},
        {wanted, (uint32_t)strlen(wanted)}, {a, (uint32_t)an}, {la, (uint32_t)lan}};
    struct cmd_ctx all = *c;
    all.argv = argv;
    all.argc = 7;
    cmd_broadcast(&all, server_client_kill_shard, old_form ? CMD_COMBINE_KILLED : CMD_COMBINE_SUM);
}

/* CLIENT REPLY ON|OFF|SKIP (cmd_stats.c drops the replies). */
static void server_client_reply(struct cmd_ctx *c)
{
    struct conn *k = c->conn;
    if (cmd_arg_is(&c->argv[2], "on")) {
        k->reply_flags = 0;
        resp_write_ok(c->out);
    } else if (cmd_arg_is(&c->argv[2], "off")) {
        k->reply_flags |= CONN_REPLY_OFF;
    } else if (cmd_arg_is(&c->argv[2], "skip")) {
        if (!(k->reply_flags & CONN_REPLY_OFF))
            k->reply_flags |= CONN_REPLY_SKIP_NEXT;
    } else {
        resp_write_error(c->out, "ERR syntax error");
    }
}

#define SERVER_CONN_CATS (SERVER_CAT_SLOW | SERVER_CAT_CONNECTION)
#define SERVER_ADMIN_CATS (SERVER_CAT_ADMIN | SERVER_CAT_SLOW | SERVER_CAT_DANGEROUS)

/* In Redis's HELP order; arities and ACL categories as Redis 7 has them
 * (SETINFO is 7.2's). */
static const struct server_subcommand server_client_subs[] = {
    {"getname", "client|getname", 2, SERVER_CONN_CATS, server_client_getname,
     {"GETNAME", "    Return the name of the current connection."}},
    {"id", "client|id", 2, SERVER_CONN_CATS, server_client_id,
     {"ID", "    Return the ID of the current connection."}},
    {"info", "client|info", 2, SERVER_CONN_CATS, server_client_info,
     {"INFO", "    Return information about the current client connection."}},
    {"kill", "client|kill", -3, SERVER_ADMIN_CATS | SERVER_CAT_CONNECTION, server_client_kill,
     {"KILL <ip:port>", "    Kill connection made from <ip:port>.",
      "KILL <option> <value> [<option> <value> [...]]", "    Kill connections. Options are:",
      "    * ADDR (<ip:port>|<unixsocket>:0)",
      "      Kill connections made from the specified address",
      "    * LADDR (<ip:port>|<unixsocket>:0)",
      "      Kill connections made to specified local address",
      "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)", "      Kill connections by type.",
      "    * USER <username>", "      Kill connections authenticated by <username>.",
      "    * SKIPME (YES|NO)", "      Skip killing current connection (default: yes)."}},
    {"list", "client|list", -2, SERVER_ADMIN_CATS | SERVER_CAT_CONNECTION, server_client_list,
     {"LIST [options ...]", "    Return information about client connections. Options:",
      "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)", "      Return clients of specified type."}},
    {"reply", "client|reply", 3, SERVER_CONN_CATS, server_client_reply,
     {"REPLY (ON|OFF|SKIP)", "    Control the replies sent to the current connection."}},
    {"setname", "client|setname", 3, SERVER_CONN_CATS, server_client_setname,
     {"SETNAME <name>", "    Assign the name <name> to the current connection."}},
    {"setinfo", "client|setinfo", 4, SERVER_CONN_CATS, server_client_setinfo,
     {"SETINFO <option> <value>", "    Set client meta attr. Options are:",
      "    * LIB-NAME: the client lib name.", "    * LIB-VER: the client lib version."}},
    {"no-evict", "client|no-evict", 3, SERVER_ADMIN_CATS | SERVER_CAT_CONNECTION,
     server_client_no_evict,
     {"NO-EVICT (ON|OFF)", "    Protect current client connection from eviction."}},
    {"help", "client|help", 2, SERVER_CONN_CATS, NULL, {NULL}},
};
#define SERVER_CLIENT_SUBS (sizeof server_client_subs / sizeof server_client_subs[0])
SERVER_CONTAINER(server_client, "CLIENT", server_client_subs, SERVER_CLIENT_SUBS, 0);

void cmd_client(struct cmd_ctx *c) { server_run_subcommand(c, &server_client); }

static void server_command_flags(struct buf *o, int proto, uint32_t flags)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } names[] = {{CMD_WRITE, "write"},
                 {CMD_READONLY, "readonly"},
                 {CMD_DENYOOM, "denyoom"},
                 {CMD_FAST, "fast"},
                 {CMD_NOAUTH, "no_auth"}};
    size_t n = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        n += (flags & names[i].bit) != 0;
    resp_write_set_len(o, proto, n);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (flags & names[i].bit)
            resp_write_simple(o, names[i].name);
}

static uint32_t server_command_cats(const struct cmd_def *d);

/* ACL categories as COMMAND INFO writes them: "@read", in Redis's order. */
static void server_write_cats(struct buf *o, int proto, uint32_t cats)
{
    resp_write_set_len(o, proto, (size_t)__builtin_popcount(cats));
    for (size_t i = 0; i < sizeof server_cat_names / sizeof server_cat_names[0]; i++)
        if (cats & (1u << i))
            resp_write_simple(o, server_cat_names[i]);
}

static void server_keyed_syntax(struct cmd_ctx *c);

/* Whether sub names a key, its third argument (OBJECT ENCODING key, MEMORY
 * USAGE key): the subcommands that run on the key's shard, whose handler
 * here only writes their syntax errors. */
static bool server_subcommand_keyed(const struct server_subcommand *sub)
{
    return sub->run == server_keyed_syntax;
}

/* A subcommand's COMMAND INFO entry, as Redis 7 writes it: a keyed one
 * read-only with its key at 2 (cluster clients route MEMORY USAGE by it),
 * the others keyless; the only other flag in ringkv's vocabulary is admin
 * (with the @admin category). */
static void server_subcommand_info(struct buf *o, int proto, const struct server_subcommand *sub)
{
    bool admin = (sub->cats & SERVER_CAT_ADMIN) != 0;
    int key = server_subcommand_keyed(sub) ? 2 : 0;
    resp_write_array_len(o, 10);
    resp_write_bulk_str(o, sub->full);
    resp_write_int(o, sub->arity);
    resp_write_set_len(o, proto, admin + (key != 0));
    if (admin)
        resp_write_simple(o, "admin");
    if (key)
        resp_write_simple(o, "readonly");
    resp_write_int(o, key);
    resp_write_int(o, key);
    resp_write_int(o, key ? 1 : 0);
    server_write_cats(o, proto, sub->cats);
    resp_write_set_len(o, proto, 0);
    resp_write_array_len(o, 0);
    resp_write_array_len(o, 0);
}

static void server_command_info(struct buf *o, int proto, const struct cmd_def *d)
{
    const struct server_container *k = server_container_of(d->name);
    resp_write_array_len(o, 10);
    resp_write_bulk_str(o, d->name);
    resp_write_int(o, d->arity);
    server_command_flags(o, proto, d->flags);
    resp_write_int(o, d->first_key);
    resp_write_int(o, d->last_key);
    resp_write_int(o, d->key_step);
    server_write_cats(o, proto, server_command_cats(d));
    resp_write_set_len(o, proto, 0);
    resp_write_array_len(o, 0);
    resp_write_array_len(o, k ? k->n : 0); /* a container's subcommands, in its order */
    for (size_t i = 0; k && i < k->n; i++)
        server_subcommand_info(o, proto, &k->subs[i]);
}

/* What Redis 7 says of each subcommand in COMMAND DOCS (client|setinfo:
 * Redis 7.2's words; memory|doctor, memory|stats and latency's: ringkv's
 * words for them). Its group is its container's. */
static const struct {
    const char *full, *summary, *since, *complexity;
} server_subcommand_docs[] = {
    {"client|getname", "Get the current connection name", "2.6.9", "O(1)"},
    {"client|id", "Returns the client ID for the current connection", "5.0.0", "O(1)"},
    {"client|info", "Returns information about the current client connection.", "6.2.0", "O(1)"},
    {"client|kill", "Kill the connection of a client", "2.4.0",
     "O(N) where N is the number of client connections"},
    {"client|list", "Get the list of client connections", "2.4.0",
     "O(N) where N is the number of client connections"},
    {"client|reply", "Instruct the server whether to reply to commands", "3.2.0", "O(1)"},
    {"client|setname", "Set the current connection name", "2.6.9", "O(1)"},
    {"client|setinfo", "Set client or connection specific info", "7.2.0", "O(1)"},
    {"client|no-evict", "Set client eviction mode for the current connection", "7.0.0", "O(1)"},
    {"client|help", "Show helpful text about the different subcommands", "5.0.0", "O(1)"},
    {"command|count", "Get total number of Redis commands", "2.8.13", "O(1)"},
    {"command|list", "Get an array of Redis command names", "7.0.0",
     "O(N) where N is the total number of Redis commands"},
    {"command|info",
     "Get array of specific Redis command details, or all when no argument is given.", "2.8.13",
     "O(N) where N is the number of commands to look up"},
    {"command|docs", "Get array of specific Redis command documentation", "7.0.0",
     "O(N) where N is the number of commands to look up"},
    {"command|getkeys", "Extract keys given a full Redis command", "2.8.13",
     "O(N) where N is the number of arguments to the command"},
    {"command|getkeysandflags", "Extract keys and access flags given a full Redis command", "7.0.0",
     "O(N) where N is the number of arguments to the command"},
    {"command|help", "Show helpful text about the different subcommands", "5.0.0", "O(1)"},
    {"config|get", "Get the values of configuration parameters", "2.0.0",
     "O(N) when N is the number of configuration parameters provided"},
    {"config|set", "Set configuration parameters to the given values", "2.0.0",
     "O(N) when N is the number of configuration parameters provided"},
    {"config|resetstat", "Reset the stats returned by INFO", "2.0.0", "O(1)"},
    {"config|help", "Show helpful text about the different subcommands", "5.0.0", "O(1)"},
    {"cluster|info", "Provides info about Redis Cluster node state", "3.0.0", "O(1)"},
    {"cluster|keyslot", "Returns the hash slot of the specified key", "3.0.0",
     "O(N) where N is the number of bytes in the key"},
    {"cluster|myid", "Return the node id", "3.0.0", "O(1)"},
    {"cluster|countkeysinslot", "Return the number of local keys in the specified hash slot",
     "3.0.0", "O(N) where N is the number of keys in the slot's partition"},
    {"cluster|getkeysinslot", "Return local key names in the specified hash slot", "3.0.0",
     "O(N) where N is the number of keys in the slot's partition"},
    {"cluster|nodes", "Get Cluster config for the node", "3.0.0",
     "O(N) where N is the total number of Cluster nodes"},
    {"cluster|slots", "Get array of Cluster slot to node mappings", "3.0.0",
     "O(N) where N is the total number of Cluster nodes"},
    {"cluster|shards", "Get array of cluster slots to node mappings", "7.0.0",
     "O(N) where N is the total number of cluster nodes"},
    {"cluster|help", "Show helpful text about the different subcommands", "5.0.0", "O(1)"},
    {"object|encoding", "Inspect the internal encoding of a Redis object", "2.2.3", "O(1)"},
    {"object|freq", "Get the logarithmic access frequency counter of a Redis object", "4.0.0",
     "O(1)"},
    {"object|idletime", "Get the time since a Redis object was last accessed", "2.2.3", "O(1)"},
    {"object|refcount", "Get the number of references to the value of the key", "2.2.3", "O(1)"},
    {"object|help", "Show helpful text about the different subcommands", "6.2.0", "O(1)"},
    {"memory|doctor", "Report memory problems found in the node's figures", "4.0.0", "O(1)"},
    {"memory|stats", "Report the node's memory figures", "4.0.0", "O(1)"},
    {"memory|usage", "Estimate the memory usage of a key", "4.0.0",
     "O(N) where N is the number of samples."},
    {"memory|help", "Show helpful text about the different subcommands", "4.0.0", "O(1)"},
    {"slowlog|get", "Get the slow log's entries", "2.2.12",
     "O(N) where N is the number of entries returned"},
    {"slowlog|len", "Get the slow log's length", "2.2.12", "O(1)"},
    {"slowlog|reset", "Clear all entries from the slow log", "2.2.12",
     "O(N) where N is the number of entries in the slowlog"},
    {"slowlog|help", "Show helpful text about the different subcommands", "6.2.0", "O(1)"},
    {"latency|doctor", "Report on latency, in words", "2.8.13", "O(1)"},
    {"latency|graph", "Draw a graph of an event's latency samples", "2.8.13", "O(1)"},
    {"latency|histogram", "Return the cumulative latency histograms of commands", "7.0.0",
     "O(N) where N is the number of commands with latency information being retrieved."},
    {"latency|history", "Return an event's latency samples", "2.8.13", "O(1)"},
    {"latency|latest", "Return the latest latency sample of every event", "2.8.13", "O(1)"},
    {"latency|reset", "Clear the latency samples of some or all events", "2.8.13", "O(1)"},
    {"latency|help", "Show helpful text about the different subcommands", "2.8.13", "O(1)"},
};

/* A subcommand's COMMAND DOCS entry: its name, then its map. */
static void server_subcommand_doc(struct buf *o, int proto, const struct server_subcommand *sub,
                                  const char *group)
{
    const char *summary = "", *since = "", *complexity = "";
    for (size_t i = 0; i < sizeof server_subcommand_docs / sizeof server_subcommand_docs[0]; i++)
        if (strcmp(server_subcommand_docs[i].full, sub->full) == 0) {
            summary = server_subcommand_docs[i].summary;
            since = server_subcommand_docs[i].since;
            complexity = server_subcommand_docs[i].complexity;
        }
    resp_write_bulk_str(o, sub->full);
    resp_write_map_len(o, proto, 4);
    resp_write_bulk_str(o, "summary");
    resp_write_bulk_str(o, summary);
    resp_write_bulk_str(o, "since");
    resp_write_bulk_str(o, since);
    resp_write_bulk_str(o, "group");
    resp_write_bulk_str(o, group);
    resp_write_bulk_str(o, "complexity");
    resp_write_bulk_str(o, complexity);
}

/* A command's COMMAND DOCS entry; a container's lists its subcommands'. */
static void server_command_doc(struct buf *o, int proto, const struct cmd_def *d)
{
    const struct server_container *k = server_container_of(d->name);
    resp_write_bulk_str(o, d->name);
    resp_write_map_len(o, proto, k ? 4 : 3);
    resp_write_bulk_str(o, "summary");
    resp_write_bulk_str(o, d->summary);
    resp_write_bulk_str(o, "since");
    resp_write_bulk_str(o, "1.0.0");
    resp_write_bulk_str(o, "group");
    resp_write_bulk_str(o, d->group);
    if (!k)
        return;
    resp_write_bulk_str(o, "subcommands");
    resp_write_map_len(o, proto, k->n);
    for (size_t i = 0; i < k->n; i++)
        server_subcommand_doc(o, proto, &k->subs[i], d->group);
}

static void server_command_all(struct cmd_ctx *c)
{
    size_t n;
    const struct cmd_def *defs = cmd_table(&n);
    resp_write_array_len(c->out, n);
    for (size_t i = 0; i < n; i++)
        server_command_info(c->out, c->proto, &defs[i]);
}

static void server_command_count(struct cmd_ctx *c)
{
    size_t n;
    cmd_table(&n);
    resp_write_int(c->out, (int64_t)n);
}

/* What Redis 7.0 says about a command that ringkv's table does not: its
 * ACL categories beyond those its flags give (read, write, fast, slow), and
 * its keys' flags (COMMAND GETKEYSANDFLAGS; the first key's apart where
 * they differ, as BITOP's destination). A command without a row here
 * gets categories from its flags only and, for its keys, "RO access" when
 * read-only, else "RW access update". */
enum {
    SERVER_KEY_RW = 1u << 0,
    SERVER_KEY_RO = 1u << 1,
    SERVER_KEY_OW = 1u << 2,
    SERVER_KEY_RM = 1u << 3,
    SERVER_KEY_ACCESS = 1u << 4,
    SERVER_KEY_UPDATE = 1u << 5,
    SERVER_KEY_INSERT = 1u << 6,
    SERVER_KEY_DELETE = 1u << 7,
};

struct server_redis_meta {
    const char *name;
    uint32_t cats;
    uint32_t keys;
    uint32_t first_key; /* the first key's flags where they differ (BITOP's destination) */
};

#define S_STR SERVER_CAT_STRING
#define S_KS SERVER_CAT_KEYSPACE
#define S_BIT SERVER_CAT_BITMAP
#define K_RO_ACCESS (SERVER_KEY_RO | SERVER_KEY_ACCESS)
#define K_OW_UPDATE (SERVER_KEY_OW | SERVER_KEY_UPDATE)
#define K_OW_INSERT (SERVER_KEY_OW | SERVER_KEY_INSERT)
#define K_RW_ACCESS_UPDATE (SERVER_KEY_RW | SERVER_KEY_ACCESS | SERVER_KEY_UPDATE)
#define K_RW_UPDATE (SERVER_KEY_RW | SERVER_KEY_UPDATE)
static const struct server_redis_meta server_redis_meta[] = {
    {"get", S_STR, K_RO_ACCESS, 0},
    {"set", S_STR, K_OW_UPDATE, 0},
    {"setex", S_STR, K_OW_UPDATE, 0},
    {"psetex", S_STR, K_OW_UPDATE, 0},
    {"setnx", S_STR, K_OW_INSERT, 0},
    {"getset", S_STR, K_RW_ACCESS_UPDATE, 0},
    {"getdel", S_STR, SERVER_KEY_RW | SERVER_KEY_ACCESS | SERVER_KEY_DELETE, 0},
    {"getex", S_STR, K_RW_ACCESS_UPDATE, 0},
    {"mget", S_STR, K_RO_ACCESS, 0},
    {"mset", S_STR, K_OW_UPDATE, 0},
    {"msetnx", S_STR, K_OW_INSERT, 0},
    {"append", S_STR, SERVER_KEY_RW | SERVER_KEY_INSERT, 0},
    {"strlen", S_STR, SERVER_KEY_RO, 0},
    {"getrange", S_STR, K_RO_ACCESS, 0},
    {"setrange", S_STR, K_RW_UPDATE, 0},
    {"substr", S_STR, K_RO_ACCESS, 0},
    {"lcs", S_STR, K_RO_ACCESS, 0},
    {"setbit", S_BIT, K_RW_ACCESS_UPDATE, 0},
    {"bitfield", S_BIT, K_RW_ACCESS_UPDATE, 0},
    {"bitop", S_BIT, K_RO_ACCESS, K_OW_UPDATE},
    {"ring.bitop", S_BIT, K_RO_ACCESS, K_OW_UPDATE},
    {"bitfield_ro", S_BIT, K_RO_ACCESS, 0},
    {"getbit", S_BIT, K_RO_ACCESS, 0},
    {"bitcount", S_BIT, K_RO_ACCESS, 0},
    {"bitpos", S_BIT, K_RO_ACCESS, 0},
    {"incr", S_STR, K_RW_ACCESS_UPDATE, 0},
    {"decr", S_STR, K_RW_ACCESS_UPDATE, 0},
    {"incrby", S_STR, K_RW_ACCESS_UPDATE, 0},
    {"decrby", S_STR, K_RW_ACCESS_UPDATE, 0},
    {"incrbyfloat", S_STR, K_RW_ACCESS_UPDATE, 0},
    {"del", S_KS, SERVER_KEY_RM | SERVER_KEY_DELETE, 0},
    {"unlink", S_KS, SERVER_KEY_RM | SERVER_KEY_DELETE, 0},
    {"exists", S_KS, SERVER_KEY_RO, 0},
    {"type", S_KS, SERVER_KEY_RO, 0},
    {"expire", S_KS, K_RW_UPDATE, 0},
    {"pexpire", S_KS, K_RW_UPDATE, 0},
    {"expireat", S_KS, K_RW_UPDATE, 0},
    {"pexpireat", S_KS, K_RW_UPDATE, 0},
    {"ttl", S_KS, K_RO_ACCESS, 0},
    {"pttl", S_KS, K_RO_ACCESS, 0},
    {"persist", S_KS, K_RW_UPDATE, 0},
    {"expiretime", S_KS, K_RO_ACCESS, 0},
    {"pexpiretime", S_KS, K_RO_ACCESS, 0},
    {"touch", S_KS, SERVER_KEY_RO, 0},
    {"scan", S_KS, 0, 0},
    {"keys", S_KS | SERVER_CAT_DANGEROUS, 0, 0},
    {"randomkey", S_KS, 0, 0},
    {"dbsize", S_KS, 0, 0},
    {"flushall", S_KS | SERVER_CAT_DANGEROUS, 0, 0},
    {"flushdb", S_KS | SERVER_CAT_DANGEROUS, 0, 0},
    {"ping", SERVER_CAT_CONNECTION, 0, 0},
    {"echo", SERVER_CAT_CONNECTION, 0, 0},
    {"time", 0, 0, 0},
    {"lastsave", SERVER_CAT_ADMIN | SERVER_CAT_DANGEROUS, 0, 0},
    {"object", 0, 0, 0},
    {"memory", 0, 0, 0},
    {"slowlog", 0, 0, 0},
    {"latency", 0, 0, 0},
    {"monitor", SERVER_CAT_ADMIN | SERVER_CAT_SLOW | SERVER_CAT_DANGEROUS, 0, 0},
    {"ring.keyinfo", S_KS, K_RO_ACCESS, 0},
    {"role", SERVER_CAT_ADMIN | SERVER_CAT_DANGEROUS, 0, 0},
    {"quit", SERVER_CAT_CONNECTION, 0, 0},
    {"reset", SERVER_CAT_CONNECTION, 0, 0},
    {"save", SERVER_CAT_ADMIN | SERVER_CAT_DANGEROUS, 0, 0},
    {"bgsave", SERVER_CAT_ADMIN | SERVER_CAT_DANGEROUS, 0, 0},
    {"bgrewriteaof", SERVER_CAT_ADMIN | SERVER_CAT_DANGEROUS, 0, 0},
    {"shutdown", SERVER_CAT_ADMIN | SERVER_CAT_DANGEROUS, 0, 0},
    {"wait", SERVER_CAT_CONNECTION, 0, 0},
    {"select", SERVER_CAT_CONNECTION, 0, 0},
    {"hello", SERVER_CAT_CONNECTION, 0, 0},
    {"auth", SERVER_CAT_CONNECTION, 0, 0},
    {"client", 0, 0, 0},
    {"command", SERVER_CAT_CONNECTION, 0, 0},
    {"info", SERVER_CAT_DANGEROUS, 0, 0},
    {"config", 0, 0, 0},
    {"cluster", 0, 0, 0},
    {"readonly", SERVER_CAT_CONNECTION, 0, 0},
    {"readwrite", SERVER_CAT_CONNECTION, 0, 0},
    {"asking", SERVER_CAT_CONNECTION, 0, 0},
    {"consistency", SERVER_CAT_CONNECTION, 0, 0},
};
#undef S_STR
#undef S_KS
#undef S_BIT

static const struct server_redis_meta *server_meta_of(const char *name)
{
    for (size_t i = 0; i < sizeof server_redis_meta / sizeof server_redis_meta[0]; i++)
        if (strcmp(server_redis_meta[i].name, name) == 0)
            return &server_redis_meta[i];
    return NULL;
}

static uint32_t server_command_cats(const struct cmd_def *d)
{
    const struct server_redis_meta *m = server_meta_of(d->name);
    uint32_t cats = m ? m->cats : 0;
    cats |= d->flags & CMD_FAST ? SERVER_CAT_FAST : SERVER_CAT_SLOW;
    if (d->flags & CMD_READONLY)
        cats |= SERVER_CAT_READ;
    if (d->flags & CMD_WRITE)
        cats |= SERVER_CAT_WRITE;
    return cats;
}

/* The flags of d's key at argument i (m: d's row here, or NULL). */
static uint32_t server_key_flags(const struct cmd_def *d, const struct server_redis_meta *m, int i)
{
    if (m && m->first_key && i == d->first_key)
        return m->first_key;
    if (m && m->keys)
        return m->keys;
    return d->flags & CMD_READONLY ? K_RO_ACCESS : K_RW_ACCESS_UPDATE;
}

/* A category's bit by its name (any case), 0 when Redis has none such. */
static uint32_t server_cat_by_name(const struct resp_arg *a)
{
    for (size_t i = 0; i < sizeof server_cat_names / sizeof server_cat_names[0]; i++)
        if (cmd_arg_is(a, server_cat_names[i] + 1)) /* without its '@' */
            return 1u << i;
    return 0;
}

/* Whether COMMAND LIST's filter keeps a command (full name, categories). */
struct server_list_filter {
    int kind; /* 0 none, 1 module, 2 aclcat, 3 pattern */
    const struct resp_arg *arg;
    uint32_t cat;
};

static bool server_list_keeps(const struct server_list_filter *f, const char *name, uint32_t cats)
{
    switch (f->kind) {
    case 1:
        return false; /* ringkv has no modules */
    case 2:
        return (cats & f->cat) != 0;
    case 3: {
        char pattern[256], lower[64];
        size_t pn = f->arg->len < sizeof pattern ? f->arg->len : sizeof pattern - 1;
        for (size_t i = 0; i < pn; i++) /* command names are lower case */
            pattern[i] = (char)tolower((unsigned char)f->arg->ptr[i]);
        snprintf(lower, sizeof lower, "%s", name);
        return glob_match(pattern, pn, lower, strlen(lower));
    }
    default:
        return true;
    }
}

/* COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]:
 * every command, each container followed by its subcommands (as Redis
 * lists them), that the filter keeps; an unknown category keeps none. */
static void server_command_list(struct cmd_ctx *c)
{
    struct server_list_filter f = {0};
    if (c->argc != 2) {
        const struct resp_arg *by = &c->argv[3];
        if (c->argc != 5 || !cmd_arg_is(&c->argv[2], "filterby")) {
            resp_write_error(c->out, "ERR syntax error");
            return;
        }
        f.kind = cmd_arg_is(by, "module")    ? 1
                 : cmd_arg_is(by, "aclcat")  ? 2
                 : cmd_arg_is(by, "pattern") ? 3
                                             : 0;
        if (!f.kind) {
            resp_write_error(c->out, "ERR syntax error");
            return;
        }
        f.arg = &c->argv[4];
        f.cat = server_cat_by_name(f.arg);
    }
    size_t n, count = 0;
    const struct cmd_def *defs = cmd_table(&n);
    struct buf names;
    buf_init(&names);
    for (size_t i = 0; i < n; i++) {
        if (server_list_keeps(&f, defs[i].name, server_command_cats(&defs[i]))) {
            resp_write_bulk_str(&names, defs[i].name);
            count++;
        }
        const struct server_container *k = server_container_of(defs[i].name);
        for (size_t j = 0; k && j < k->n; j++) {
            if (server_list_keeps(&f, k->subs[j].full, k->subs[j].cats)) {
                resp_write_bulk_str(&names, k->subs[j].full);
                count++;
            }
        }
    }
    resp_write_array_len(c->out, count);
    buf_append(c->out, names.data, names.len);
    buf_fini(&names);
}

/* COMMAND INFO [name ...]: a null element for a name that is no command. */
static void server_command_infos(struct cmd_ctx *c)
{
    if (c->argc == 2) {
        server_command_all(c);
        return;
    }
    resp_write_array_len(c->out, c->argc - 2);
    for (uint32_t i = 2; i < c->argc; i++) {
        const struct cmd_def *d = cmd_lookup(c->argv[i].ptr, c->argv[i].len);
        const struct server_subcommand *sub = d ? NULL : server_subcommand_of(&c->argv[i]);
        if (d)
            server_command_info(c->out, c->proto, d);
        else if (sub)
            server_subcommand_info(c->out, c->proto, sub);
        else
            resp_write_null(c->out, c->proto);
    }
}

static void server_command_docs(struct cmd_ctx *c)
{
    size_t n;
    const struct cmd_def *defs = cmd_table(&n);
    struct buf *o = c->out;
    if (c->argc == 2) {
        resp_write_map_len(o, c->proto, n);
        for (size_t i = 0; i < n; i++)
            server_command_doc(o, c->proto, &defs[i]);
        return;
    }
    size_t found = 0;
    for (uint32_t i = 2; i < c->argc; i++)
        found += cmd_lookup(c->argv[i].ptr, c->argv[i].len) != NULL ||
                 server_subcommand_of(&c->argv[i]) != NULL;
    resp_write_map_len(o, c->proto, found);
    for (uint32_t i = 2; i < c->argc; i++) {
        const struct cmd_def *d = cmd_lookup(c->argv[i].ptr, c->argv[i].len);
        const struct server_subcommand *sub = d ? NULL : server_subcommand_of(&c->argv[i]);
        if (d) {
            server_command_doc(o, c->proto, d);
        } else if (sub) {
            char name[32]; /* the container's name, lower case, as the table has it */
            size_t n = strcspn(sub->full, "|");
            snprintf(name, sizeof name, "%.*s", (int)n, sub->full);
            const struct cmd_def *parent = cmd_lookup(name, n);
            server_subcommand_doc(o, c->proto, sub, parent ? parent->group : "");
        }
    }
}

static void server_write_key_flags(struct buf *o, int proto, uint32_t flags)
{
    static const char *const names[] = {"RW",     "RO",     "OW",     "RM",
                                        "access", "update", "insert", "delete"};
    size_t n = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        n += (flags >> i) & 1;
    resp_write_set_len(o, proto, n);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if ((flags >> i) & 1)
            resp_write_simple(o, names[i]);
}

/* COMMAND GETKEYS cmd arg... (and GETKEYSANDFLAGS, with_flags): the
 * arguments at the table's key positions (first, last, step; a negative
 * last counts from the end), with Redis's errors for an unknown command, a
 * keyless one and a wrong arity. As in Redis, positions past the end of a
 * variadic command's arguments are skipped ("MSET a 1 b" gives a and b).
 * With flags, each key is [key, flags] (Redis 7's key-spec flags). */
static void server_command_keys(struct cmd_ctx *c, bool with_flags)
{
    const struct cmd_def *d = cmd_lookup(c->argv[2].ptr, c->argv[2].len);
    int argc = (int)c->argc - 2;
    if (!d) {
        resp_write_error(c->out, "ERR Invalid command specified");
        return;
    }
    /* a container's keys are its subcommand's (OBJECT's table entry names
     * its key for routing; COMMAND INFO shows it as the subcommands') */
    const struct server_container *k = argc >= 2 ? server_container_of(d->name) : NULL;
    const struct server_subcommand *sub = k ? server_sub_named(k, &c->argv[3]) : NULL;
    if (k && !sub) {
        resp_write_error(c->out, "ERR Invalid command specified");
        return;
    }
    if (sub && !server_subcommand_keyed(sub)) {
        resp_write_error(c->out, "ERR The command has no key arguments");
        return;
    }
    if (sub) {
        if ((sub->arity > 0 && sub->arity != argc) || argc < -sub->arity) {
            resp_write_error(c->out, "ERR Invalid number of arguments specified for command");
            return;
        }
        resp_write_array_len(c->out, 1);
        if (with_flags)
            resp_write_array_len(c->out, 2);
        resp_write_bulk(c->out, c->argv[4].ptr, c->argv[4].len);
        if (with_flags)
            server_write_key_flags(c->out, c->proto, 1u << 1); /* RO */
        return;
    }
    if (d->first_key == 0) {
        resp_write_error(c->out, "ERR The command has no key arguments");
        return;
    }
    if ((d->arity > 0 && d->arity != argc) || argc < -d->arity) {
        resp_write_error(c->out, "ERR Invalid number of arguments specified for command");
        return;
    }
    int last = d->last_key < 0 ? argc + d->last_key : d->last_key;
    int step = d->key_step > 0 ? d->key_step : 1;
    size_t nkeys = 0;
    for (int i = d->first_key; i <= last; i += step)
        nkeys += i < argc;
    resp_write_array_len(c->out, nkeys);
    const struct server_redis_meta *m = server_meta_of(d->name);
    for (int i = d->first_key; i <= last && i < argc; i += step) {
        if (with_flags)
            resp_write_array_len(c->out, 2);
        resp_write_bulk(c->out, c->argv[2 + i].ptr, c->argv[2 + i].len);
        if (with_flags)
            server_write_key_flags(c->out, c->proto, server_key_flags(d, m, i));
    }
}

static void server_command_getkeys(struct cmd_ctx *c) { server_command_keys(c, false); }

static void server_command_getkeysandflags(struct cmd_ctx *c) { server_command_keys(c, true); }

static void server_command_help(struct cmd_ctx *c);

/* In Redis's HELP order, with Redis 7's arities. */
static const struct server_subcommand server_command_subs[] = {
    {"count", "command|count", 2, SERVER_CONN_CATS, server_command_count,
     {"COUNT", "    Return the total number of commands in this Redis server."}},
    {"list", "command|list", -2, SERVER_CONN_CATS, server_command_list,
     {"LIST", "    Return a list of all commands in this Redis server."}},
    {"info", "command|info", -2, SERVER_CONN_CATS, server_command_infos,
     {"INFO [<command-name> ...]", "    Return details about multiple Redis commands.",
      "    If no command names are given, documentation details for all",
      "    commands are returned."}},
    {"docs", "command|docs", -2, SERVER_CONN_CATS, server_command_docs,
     {"DOCS [<command-name> ...]",
      "    Return documentation details about multiple Redis commands.",
      "    If no command names are given, documentation details for all",
      "    commands are returned."}},
    {"getkeys", "command|getkeys", -4, SERVER_CONN_CATS, server_command_getkeys,
     {"GETKEYS <full-command>", "    Return the keys from a full Redis command."}},
    {"getkeysandflags", "command|getkeysandflags", -4, SERVER_CONN_CATS,
     server_command_getkeysandflags,
     {"GETKEYSANDFLAGS <full-command>",
      "    Return the keys and the access flags from a full Redis command."}},
    {"help", "command|help", 2, SERVER_CONN_CATS, server_command_help, {NULL}},
};
#define SERVER_COMMAND_SUBS (sizeof server_command_subs / sizeof server_command_subs[0])
SERVER_CONTAINER(server_command, "COMMAND", server_command_subs, SERVER_COMMAND_SUBS, 1);

static void server_command_help(struct cmd_ctx *c)
{
    static const char *const bare[] = {"(no subcommand)",
                                       "    Return details about all Redis commands.", NULL};
    server_help(c, "COMMAND", bare, server_command_subs, SERVER_COMMAND_SUBS - 1);
}

void cmd_command(struct cmd_ctx *c)
{
    if (c->argc == 1)
        server_command_all(c);
    else
        server_run_subcommand(c, &server_command);
}

/* CONFIG GET's reply being built: each setting once, however many
 * patterns match it (names are few; a linear look-up is enough). */
struct server_config_reply {
    struct buf pairs;
    size_t count;
    const char *names[128];
};

static void server_config_emit(const char *name, const char *value, void *arg)
{
    struct server_config_reply *r = arg;
    for (size_t i = 0; i < r->count && i < sizeof r->names / sizeof r->names[0]; i++)
        if (strcmp(r->names[i], name) == 0)
            return;
    if (r->count < sizeof r->names / sizeof r->names[0])
        r->names[r->count] = name;
    resp_write_bulk_str(&r->pairs, name);
    resp_write_bulk_str(&r->pairs, value);
    r->count++;
}

/* CONFIG SET and CONFIG GET take turns (one CONFIG SET is all or none for
 * every reader of CONFIG GET, and two never mix their values). */
static pthread_mutex_t server_config_lock = PTHREAD_MUTEX_INITIALIZER;

/* CONFIG GET pattern [pattern ...]: the settings table's (cfg.h), plus the
 * Redis settings tools ask for that have fixed values here. */
static void server_config_get(struct cmd_ctx *c)
{
    struct server_config_reply r = {.count = 0};
    buf_init(&r.pairs);
    pthread_mutex_lock(&server_config_lock); /* all patterns see one CONFIG SET or none */
    for (uint32_t i = 2; i < c->argc; i++) {
        char pattern[128];
        snprintf(pattern, sizeof pattern, "%.*s",
                 c->argv[i].len > 127 ? 127 : (int)c->argv[i].len, c->argv[i].ptr);
        for (char *ch = pattern; *ch; ch++) /* setting names are lower case */
            *ch = (char)tolower((unsigned char)*ch);
        cfg_get(c->node->cfg, pattern, server_config_emit, &r);
        if (glob_match(pattern, strlen(pattern), "save", 4))
            server_config_emit("save", "", &r);
        if (glob_match(pattern, strlen(pattern), "appendonly", 10)) /* INFO's aof_enabled */
            server_config_emit("appendonly", c->node->cfg->storage == CFG_STORAGE_LOG ? "yes" : "no",
                               &r);
        if (glob_match(pattern, strlen(pattern), "databases", 9)) /* SELECT takes 0 only */
            server_config_emit("databases", "1", &r);
    }
    pthread_mutex_unlock(&server_config_lock);
    resp_write_map_len(c->out, c->proto, r.count);
    buf_append(c->out, r.pairs.data, r.pairs.len);
    buf_fini(&r.pairs);
}

#define SERVER_CONFIG_SET_MAX 32 /* settings one CONFIG SET changes at most */

/* What CONFIG SET says about Redis's persistence settings, which CONFIG GET
 * answers for ringkv (no snapshots; appendonly is storage = log): setting
 * what already holds is accepted and changes nothing; NULL then, else why
 * not. */
static const char *server_config_redis_only(const struct cmd_ctx *c, const char *name,
                                            const char *value)
{
    if (strcasecmp(name, "save") == 0)
        return value[0] ? "ringkv makes no snapshots (its data log is its persistence)" : NULL;
    bool is_log = c->node->cfg->storage == CFG_STORAGE_LOG;
    if ((is_log && strcasecmp(value, "yes") == 0) || (!is_log && strcasecmp(value, "no") == 0))
        return NULL;
    return "storage is fixed at start-up (storage = log is appendonly yes)";
}

/* CONFIG SET's error about setting `name` (as sent) and why. */
static void server_config_set_error(struct cmd_ctx *c, const struct resp_arg *name,
                                    const char *why)
{
    char msg[512];
    snprintf(msg, sizeof msg,
             "ERR CONFIG SET failed (possibly related to argument '%.*s') - %.255s",
             name->len > 64 ? 64 : (int)name->len, name->ptr, why);
    resp_write_error(c->out, msg);
}

/* CONFIG SET name value [name value ...]: the live settings (cfg.h), all
 * or none, Redis's errors: every name is checked first (unknown, fixed at
 * start-up, given twice), then every value. Every shard has them before
 * its next loop turn serves anything (node.settings_gen), this one at
 * once. */
static void server_config_set(struct cmd_ctx *c)
{
    if ((c->argc - 2) % 2) {
        resp_write_error(c->out, "ERR syntax error"); /* 5, 7 ...: 3 fails the arity */
        return;
    }
    uint32_t n = (c->argc - 2) / 2;
    if (n > SERVER_CONFIG_SET_MAX) {
        resp_write_error(c->out, "ERR CONFIG SET takes at most 32 settings at once");
        return;
    }
    char names[SERVER_CONFIG_SET_MAX][64]; /* as sent: settings are found in any case */
    int64_t values[SERVER_CONFIG_SET_MAX];
    bool is_redis_only[SERVER_CONFIG_SET_MAX];
    for (uint32_t i = 0; i < n; i++) {
        const struct resp_arg *name = &c->argv[2 + 2 * i];
        snprintf(names[i], sizeof names[i], "%.*s", name->len > 63 ? 63 : (int)name->len,
                 name->ptr);
        is_redis_only[i] = cmd_arg_is(name, "save") || cmd_arg_is(name, "appendonly");
        int rc = is_redis_only[i] ? 0 : cfg_is_live(names[i]);
        if (name->len > 63 || memchr(name->ptr, '\0', name->len) || rc == -ENOENT) {
            char msg[160];
            snprintf(msg, sizeof msg,
                     "ERR Unknown option or number of arguments for CONFIG SET - '%.*s'",
                     name->len > 64 ? 64 : (int)name->len, name->ptr);
            resp_write_error(c->out, msg);
            return;
        }
        if (rc == -EPERM) {
            server_config_set_error(c, name, "can't set immutable config");
            return;
        }
        for (uint32_t k = 0; k < i; k++) {
            if (strcasecmp(names[k], names[i]) == 0) {
                server_config_set_error(c, name, "duplicate parameter");
                return;
            }
        }
    }
    pthread_mutex_lock(&server_config_lock);
    for (uint32_t i = 0; i < n; i++) {
        const struct resp_arg *name = &c->argv[2 + 2 * i], *value = &c->argv[3 + 2 * i];
        char text[1024], err[256] = "";
        snprintf(text, sizeof text, "%.*s", value->len > 1023 ? 1023 : (int)value->len,
                 value->ptr);
        int rc = 0;
        if (value->len > 1023 || memchr(value->ptr, '\0', value->len)) {
            snprintf(err, sizeof err, "argument is too long or holds a NUL byte");
            rc = -EINVAL;
        } else if (is_redis_only[i]) {
            const char *why = server_config_redis_only(c, names[i], text);
            if (why) {
                snprintf(err, sizeof err, "%s", why);
                rc = -EINVAL;
            }
        } else {
            rc = cfg_check_live(c->node->cfg, names[i], text, &values[i], err, sizeof err);
        }
        if (rc != 0) {
            pthread_mutex_unlock(&server_config_lock);
            server_config_set_error(c, name, err);
            return;
        }
    }
    struct cfg *live = (struct cfg *)c->node->cfg; /* the live settings only (cfg_set_live) */
    for (uint32_t i = 0; i < n; i++)
        if (!is_redis_only[i])
            cfg_set_live(live, names[i], values[i]);
    struct shard *sh = c->node->shards[c->shard_id];
    __atomic_add_fetch(&sh->node->settings_gen, 1, __ATOMIC_RELEASE); /* sh->node: not const */
    pthread_mutex_unlock(&server_config_lock);
    shard_refresh_settings(sh);
    resp_write_ok(c->out);
}

/* CONFIG RESETSTAT (and memcached's stats reset) on one shard, for its own
 * counters: commands and errors (INFO commandstats, errorstats), the Stats
 * section's counters, the keyspace's hits, misses, expired and evicted keys,
 * as Redis resets them, and the writes memcached's cmd_set shows. Gauges
 * (connected clients, keys, memory) stay. */
void cmd_server_resetstat_shard(struct cmd_ctx *c)
{
    struct shard *sh = c->node->shards[c->shard_id];
    cmd_stats_reset(cmd_stats_of(c->node, c->shard_id));
    static const size_t counters[] = {
        offsetof(struct shard_stats, total_connections_received),
        offsetof(struct shard_stats, rejected_connections),
        offsetof(struct shard_stats, total_commands_processed),
        offsetof(struct shard_stats, net_input_bytes),
        offsetof(struct shard_stats, net_output_bytes),
        offsetof(struct shard_stats, cross_shard_requests),
        offsetof(struct shard_stats, longest_turn_us),
        offsetof(struct shard_stats, slow_turns)};
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++)
        __atomic_store_n((uint64_t *)((char *)&sh->stats + counters[i]), 0, __ATOMIC_RELAXED);
    struct store_stats *st = &sh->store->stats; /* store.h: the owner writes them */
    __atomic_store_n(&st->keyspace_hits, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&st->keyspace_misses, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&st->expired_keys, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&st->evicted_keys, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&st->writes, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&st->sibling_warnings, 0, __ATOMIC_RELAXED);
    cmd_reply_ok(c);
}

static uint64_t server_used_peak;

static void server_config_resetstat(struct cmd_ctx *c)
{
    __atomic_store_n(&server_used_peak, 0, __ATOMIC_RELAXED);
    cmd_broadcast(c, cmd_server_resetstat_shard, CMD_COMBINE_OK);
}

#define SERVER_CONFIG_CATS (SERVER_CAT_ADMIN | SERVER_CAT_SLOW | SERVER_CAT_DANGEROUS)

/* In Redis's HELP order, with Redis 7's arities (REWRITE is not here:
 * settings come from flags and a file ringkv never writes). */
static const struct server_subcommand server_config_subs[] = {
    {"get", "config|get", -3, SERVER_CONFIG_CATS, server_config_get,
     {"GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values."}},
    {"set", "config|set", -4, SERVER_CONFIG_CATS, server_config_set,
     {"SET <directive> <value>", "    Set the configuration <directive> to <value>."}},
    {"resetstat", "config|resetstat", 2, SERVER_CONFIG_CATS, server_config_resetstat,
     {"RESETSTAT", "    Reset statistics reported by the INFO command."}},
    {"help", "config|help", 2, SERVER_CAT_SLOW, NULL, {NULL}},
};
#define SERVER_CONFIG_SUBS (sizeof server_config_subs / sizeof server_config_subs[0])
SERVER_CONTAINER(server_config, "CONFIG", server_config_subs, SERVER_CONFIG_SUBS, 2);

void cmd_config(struct cmd_ctx *c) { server_run_subcommand(c, &server_config); }

/* CLUSTER: its subcommands are cmd_cluster.c's (Redis's HELP lines). */
static const struct server_subcommand server_cluster_subs[] = {
    {"countkeysinslot", "cluster|countkeysinslot", 3, SERVER_CAT_SLOW, cmd_cluster_countkeysinslot,
     {"COUNTKEYSINSLOT <slot>", "    Return the number of keys in <slot>."}},
    {"getkeysinslot", "cluster|getkeysinslot", 4, SERVER_CAT_SLOW, cmd_cluster_getkeysinslot,
     {"GETKEYSINSLOT <slot> <count>", "    Return key names stored by current node in a slot."}},
    {"info", "cluster|info", 2, SERVER_CAT_SLOW, cmd_cluster_info,
     {"INFO", "    Return information about the cluster."}},
    {"keyslot", "cluster|keyslot", 3, SERVER_CAT_SLOW, cmd_cluster_keyslot,
     {"KEYSLOT <key>", "    Return the hash slot for <key>."}},
    {"myid", "cluster|myid", 2, SERVER_CAT_SLOW, cmd_cluster_myid,
     {"MYID", "    Return the node id."}},
    {"nodes", "cluster|nodes", 2, SERVER_CAT_SLOW, cmd_cluster_nodes,
     {"NODES", "    Return cluster configuration seen by node. Output format:",
      "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ..."}},
    {"slots", "cluster|slots", 2, SERVER_CAT_SLOW, cmd_cluster_slots,
     {"SLOTS", "    Return information about slots range mappings. Each range is made of:",
      "    start, end, master and replicas IP addresses, ports and ids"}},
    {"shards", "cluster|shards", 2, SERVER_CAT_SLOW, cmd_cluster_shards,
     {"SHARDS",
      "    Return information about slot range mappings and the nodes associated with them."}},
    {"help", "cluster|help", 2, SERVER_CAT_SLOW, NULL, {NULL}},
};
#define SERVER_CLUSTER_SUBS (sizeof server_cluster_subs / sizeof server_cluster_subs[0])
SERVER_CONTAINER(server_cluster, "CLUSTER", server_cluster_subs, SERVER_CLUSTER_SUBS, 3);

void cmd_cluster(struct cmd_ctx *c) { server_run_subcommand(c, &server_cluster); }

/* OBJECT and MEMORY. Their keyed subcommands never run here: the
 * dispatcher sends them, as RING.KEYINFO key sub, to the key's shard and,
 * in a cluster, its replicas (cmd_server_keyed_subcommand); what reaches
 * these is HELP, a wrong number of arguments or an unknown subcommand. */

/* A keyed subcommand that reached the container: only MEMORY USAGE with
 * arguments that are not [SAMPLES count] does (the others' arity is exact):
 * Redis's errors. */
static void server_keyed_syntax(struct cmd_ctx *c)
{
    int64_t n;
    if (c->argc == 5 && cmd_arg_is(&c->argv[3], "samples") &&
        !num_parse_i64(c->argv[4].ptr, c->argv[4].len, &n))
        resp_write_error(c->out, CMD_ERR_NOT_INT);
    else
        resp_write_error(c->out, "ERR syntax error");
}

#define SERVER_KEY_CATS (SERVER_CAT_KEYSPACE | SERVER_CAT_READ | SERVER_CAT_SLOW)
static const struct server_subcommand server_object_subs[] = {
    {"encoding", "object|encoding", 3, SERVER_KEY_CATS, server_keyed_syntax,
     {"ENCODING <key>", "    Return the kind of internal representation used in order to store "
                        "the value", "    associated with a <key>."}},
    {"freq", "object|freq", 3, SERVER_KEY_CATS, server_keyed_syntax,
     {"FREQ <key>", "    Return the access frequency index of the <key>. The returned integer "
                    "is", "    proportional to the logarithm of the recent access frequency of "
                    "the key."}},
    {"idletime", "object|idletime", 3, SERVER_KEY_CATS, server_keyed_syntax,
     {"IDLETIME <key>", "    Return the idle time of the <key>, that is the approximated "
                        "number of", "    seconds elapsed since the last access to the key."}},
    {"refcount", "object|refcount", 3, SERVER_KEY_CATS, server_keyed_syntax,
     {"REFCOUNT <key>", "    Return the number of references of the value associated with the "
                        "specified", "    <key>."}},
    {"help", "object|help", 2, SERVER_CAT_KEYSPACE | SERVER_CAT_SLOW, NULL, {NULL}},
};
#define SERVER_OBJECT_SUBS (sizeof server_object_subs / sizeof server_object_subs[0])
SERVER_CONTAINER(server_object, "OBJECT", server_object_subs, SERVER_OBJECT_SUBS, 4);

static void server_memory_stats(struct cmd_ctx *c);
static void server_memory_doctor(struct cmd_ctx *c);
static const struct server_subcommand server_memory_subs[] = {
    {"doctor", "memory|doctor", 2, SERVER_CAT_SLOW, server_memory_doctor,
     {"DOCTOR", "    Return memory problems reports."}},
    {"stats", "memory|stats", 2, SERVER_CAT_SLOW, server_memory_stats,
     {"STATS", "    Return information about the memory usage of the server."}},
    {"usage", "memory|usage", -3, SERVER_KEY_CATS, server_keyed_syntax,
     {"USAGE <key> [SAMPLES <count>]", "    Return memory in bytes used by <key> and its "
                                       "value. Nested values are", "    sampled up to <count> "
                                       "times (default: 5, 0 means sample all)."}},
    {"help", "memory|help", 2, SERVER_CAT_SLOW, NULL, {NULL}},
};
#define SERVER_MEMORY_SUBS (sizeof server_memory_subs / sizeof server_memory_subs[0])
SERVER_CONTAINER(server_memory, "MEMORY", server_memory_subs, SERVER_MEMORY_SUBS, 5);

/* SLOWLOG: slowlog.c keeps the entries and answers. */
#define SERVER_SLOWLOG_CATS (SERVER_CAT_ADMIN | SERVER_CAT_SLOW | SERVER_CAT_DANGEROUS)
static const struct server_subcommand server_slowlog_subs[] = {
    {"get", "slowlog|get", -2, SERVER_SLOWLOG_CATS, cmd_slowlog_get,
     {"GET [<count>]",
      "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
      "    Entries are made of:",
      "    id, timestamp, time in microseconds, arguments array, client IP and port,",
      "    client name"}},
    {"len", "slowlog|len", 2, SERVER_SLOWLOG_CATS, cmd_slowlog_len,
     {"LEN", "    Return the length of the slowlog."}},
    {"reset", "slowlog|reset", 2, SERVER_SLOWLOG_CATS, cmd_slowlog_reset,
     {"RESET", "    Reset the slowlog."}},
    {"help", "slowlog|help", 2, SERVER_CAT_SLOW, NULL, {NULL}},
};
#define SERVER_SLOWLOG_SUBS (sizeof server_slowlog_subs / sizeof server_slowlog_subs[0])
SERVER_CONTAINER(server_slowlog, "SLOWLOG", server_slowlog_subs, SERVER_SLOWLOG_SUBS, 6);

/* LATENCY: ringkv keeps no latency event series, so it answers as Redis
 * does with its latency monitor off (latency-monitor-threshold 0, Redis's
 * default): no events, nothing to reset, no samples to graph; DOCTOR says
 * where ringkv's own stall figures are. Monitoring tools (redis_exporter
 * asks LATENCY LATEST) get empty answers, not errors. */
static void server_latency_none(struct cmd_ctx *c) { resp_write_array_len(c->out, 0); }
static void server_latency_reset(struct cmd_ctx *c) { resp_write_int(c->out, 0); }
static void server_latency_histogram(struct cmd_ctx *c) { resp_write_map_len(c->out, c->proto, 0); }

static void server_latency_graph(struct cmd_ctx *c)
{
    char msg[160];
    int n = c->argv[2].len > 64 ? 64 : (int)c->argv[2].len;
    snprintf(msg, sizeof msg, "ERR No samples available for event '%.*s'", n, c->argv[2].ptr);
    resp_write_error(c->out, msg);
}

static void server_latency_doctor(struct cmd_ctx *c)
{
    static const char text[] =
        "ringkv keeps no latency event series: LATENCY answers as Redis does with its latency "
        "monitor off.\nWhere to look instead: INFO stats ringkv_longest_turn_us (the longest "
        "loop turn of any shard, in microseconds) and ringkv_slow_turns (turns of slow-turn-ms "
        "or more), SLOWLOG GET (commands over slowlog-log-slower-than), and INFO commandstats "
        "(usec_per_call of each command).\n";
    resp_write_verbatim(c->out, c->proto, text, sizeof text - 1);
}

static const struct server_subcommand server_latency_subs[] = {
    {"doctor", "latency|doctor", 2, SERVER_ADMIN_CATS, server_latency_doctor,
     {"DOCTOR", "    Return a human readable latency analysis report."}},
    {"graph", "latency|graph", 3, SERVER_ADMIN_CATS, server_latency_graph,
     {"GRAPH <event>", "    Return an ASCII latency graph for the <event> class."}},
    {"histogram", "latency|histogram", -2, SERVER_ADMIN_CATS, server_latency_histogram,
     {"HISTOGRAM [<command> ...]", "    Return the cumulative latency histograms of the given "
                                   "commands (none are kept:", "    an empty map)."}},
    {"history", "latency|history", 3, SERVER_ADMIN_CATS, server_latency_none,
     {"HISTORY <event>", "    Return time-latency samples for the <event> class."}},
    {"latest", "latency|latest", 2, SERVER_ADMIN_CATS, server_latency_none,
     {"LATEST", "    Return the latest latency samples for all events."}},
    {"reset", "latency|reset", -2, SERVER_ADMIN_CATS, server_latency_reset,
     {"RESET [<event> ...]", "    Reset latency data of one or more <event> classes.",
      "    (default: reset all data for all event classes)"}},
    {"help", "latency|help", 2, SERVER_CAT_SLOW, NULL, {NULL}},
};
#define SERVER_LATENCY_SUBS (sizeof server_latency_subs / sizeof server_latency_subs[0])
SERVER_CONTAINER(server_latency, "LATENCY", server_latency_subs, SERVER_LATENCY_SUBS, 7);

void cmd_latency(struct cmd_ctx *c) { server_run_subcommand(c, &server_latency); }

void cmd_slowlog(struct cmd_ctx *c) { server_run_subcommand(c, &server_slowlog); }
void cmd_object(struct cmd_ctx *c) { server_run_subcommand(c, &server_object); }
void cmd_memory(struct cmd_ctx *c) { server_run_subcommand(c, &server_memory); }

int32_t cmd_server_keyed_subcommand(struct resp_arg *argv, uint32_t *argc)
{
    if (*argc < 3)
        return -1;
    const struct server_container *k = cmd_arg_is(&argv[0], "object")   ? &server_object
                                        : cmd_arg_is(&argv[0], "memory") ? &server_memory
                                                                     : NULL;
    if (!k)
        return -1;
    const struct server_subcommand *sub = server_sub_named(k, &argv[1]);
    if (!sub || !server_subcommand_keyed(sub))
        return -1;
    bool is_usage = k == &server_memory;
    int64_t samples;
    if (*argc != 3 && !(is_usage && *argc == 5 && cmd_arg_is(&argv[3], "samples") &&
                        num_parse_i64(argv[4].ptr, argv[4].len, &samples) && samples >= 0))
        return -1; /* the container answers: arity, or MEMORY USAGE's syntax */
    struct resp_arg name = argv[1];
    argv[0] = (struct resp_arg){"ring.keyinfo", 12};
    argv[1] = argv[2];
    argv[2] = name;
    *argc = 3;
    return k->base + (int32_t)(sub - k->subs);
}

static const struct server_container *const server_containers[] = {
    &server_client, &server_command, &server_config, &server_cluster, &server_object,
    &server_memory, &server_slowlog, &server_latency};

static const struct server_container *server_container_of(const char *name)
{
    for (size_t i = 0; i < sizeof server_containers / sizeof server_containers[0]; i++)
        if (strcasecmp(server_containers[i]->name, name) == 0)
            return server_containers[i];
    return NULL;
}

static const struct server_subcommand *server_subcommand_of(const struct resp_arg *a)
{
    for (size_t i = 0; i < sizeof server_containers / sizeof server_containers[0]; i++) {
        const struct server_container *k = server_containers[i];
        for (size_t j = 0; j < k->n; j++)
            if (cmd_arg_is(a, k->subs[j].full))
                return &k->subs[j];
    }
    return NULL;
}

static const char *server_subcommand_name(uint32_t slot)
{
    for (size_t i = 0; i < sizeof server_containers / sizeof server_containers[0]; i++) {
        const struct server_container *k = server_containers[i];
        if (slot >= (uint32_t)k->base && slot < (uint32_t)k->base + k->n)
            return k->subs[slot - (uint32_t)k->base].full;
    }
    return NULL;
}

static void server_error_total(const char *prefix, uint64_t count, void *arg)
{
    (void)prefix;
    *(uint64_t *)arg += count;
}

void cmd_server_totals(const struct node *n, struct cmd_server_totals *t)
{
    memset(t, 0, sizeof *t);
    for (uint32_t i = 0; i < n->nshards; i++) {
        const struct shard *sh = n->shards[i];
        t->clients += SHARD_STAT_GET(sh, connected_clients);
        t->connections += SHARD_STAT_GET(sh, total_connections_received);
        t->rejected += SHARD_STAT_GET(sh, rejected_connections);
        t->commands += SHARD_STAT_GET(sh, total_commands_processed);
        t->net_in += SHARD_STAT_GET(sh, net_input_bytes);
        t->net_out += SHARD_STAT_GET(sh, net_output_bytes);
        t->cross_shard += SHARD_STAT_GET(sh, cross_shard_requests);
        t->parser_examined += SHARD_STAT_GET(sh, parser_examined_bytes);
        uint64_t longest = SHARD_STAT_GET(sh, longest_turn_us);
        t->longest_turn_us = longest > t->longest_turn_us ? longest : t->longest_turn_us;
        t->slow_turns += SHARD_STAT_GET(sh, slow_turns);
        struct store_stats s;
        store_read_stats(sh->store, &s);
        t->keys += s.keys;
        t->expires += s.expires;
        t->hits += s.keyspace_hits;
        t->misses += s.keyspace_misses;
        t->expired += s.expired_keys;
        t->evicted += s.evicted_keys;
        t->used += s.used_bytes;
        t->writes += s.writes;
        t->cold_keys += s.cold_keys;
        t->cold_bytes += s.cold_bytes;
        t->values_cooled += s.values_cooled;
        t->values_loaded += s.values_loaded;
        t->sibling_warnings += s.sibling_warnings;
    }
    cmd_stats_errors(n, server_error_total, &t->errors);
}

size_t cmd_server_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (size_t)sysconf(_SC_PAGESIZE);
}

static void server_human(char *out, size_t n, double bytes)
{
    const char *units = "BKMGTP";
    int u = 0;
    while (bytes >= 1024 && u < 5) {
        bytes /= 1024;
        u++;
    }
    snprintf(out, n, u ? "%.2f%c" : "%.0f%c", bytes, units[u]);
}

void cmd_server_persist_totals(const struct node *n, struct persist_stats *t)
{
    memset(t, 0, sizeof *t);
    for (uint32_t i = 0; i < n->nshards; i++) {
        struct persist_stats s;
        persist_read_stats(n->shards[i]->persist, &s);
        t->segments += s.segments;
        t->disk_bytes += s.disk_bytes;
        t->fsyncs += s.fsyncs;
        t->write_errors += s.write_errors;
        t->recovered_keys += s.recovered_keys;
        t->recovered_records += s.recovered_records;
        t->damaged_files += s.damaged_files;
        t->value_raw_bytes += s.value_raw_bytes;
        t->value_stored_bytes += s.value_stored_bytes;
        t->live_bytes += s.live_bytes;
        t->segment_bytes += s.segment_bytes;
        t->compactions += s.compactions;
        t->compaction_reclaimed_bytes += s.compaction_reclaimed_bytes;
        t->rewriting |= s.rewriting;
        t->saving |= s.saving;
        if (s.recovery_ms > t->recovery_ms)
            t->recovery_ms = s.recovery_ms; /* shards recover in parallel */
        if (s.last_fsync_ms > t->last_fsync_ms)
            t->last_fsync_ms = s.last_fsync_ms;
    }
}

static void server_info_persistence(struct buf *b, const struct node *n,
                                    const struct cmd_server_totals *totals)
{
    static const char *const fsync_names[] = {"always", "everysec", "no"};
    struct persist_stats t;
    cmd_server_persist_totals(n, &t);
    int64_t last_fsync_ms = t.last_fsync_ms;
    bool durable = n->cfg->storage == CFG_STORAGE_LOG;
    buf_printf(b,
               "# Persistence\r\nloading:0\r\nstorage:%s\r\naof_enabled:%d\r\n"
               "appendfsync:%s\r\nsegments:%" PRIu64 "\r\ndisk_bytes_written:%" PRIu64
               "\r\nfsyncs:%" PRIu64 "\r\nlast_fsync_time:%lld\r\nwrite_errors:%" PRIu64
               "\r\nrecovery_time_ms:%" PRIu64 "\r\nrecovered_keys:%" PRIu64
               "\r\nrecovered_records:%" PRIu64 "\r\nrecovery_keys_per_sec:%.0f\r\n"
               "damaged_segments:%" PRIu64 "\r\nvalue_bytes_raw:%" PRIu64
               "\r\nvalue_bytes_stored:%" PRIu64 "\r\ncompression_ratio:%.2f\r\n"
               "segment_bytes:%" PRIu64 "\r\nlive_bytes:%" PRIu64 "\r\nlive_ratio:%.2f\r\n"
               "compactions:%" PRIu64 "\r\ncompaction_reclaimed_bytes:%" PRIu64 "\r\n"
               "cold_keys:%" PRIu64 "\r\ncold_value_bytes:%" PRIu64 "\r\nvalues_cooled:%" PRIu64
               "\r\nvalues_loaded:%" PRIu64 "\r\n",
               durable ? "log" : "memory", durable, fsync_names[n->cfg->appendfsync],
               t.segments, t.disk_bytes, t.fsyncs, (long long)(last_fsync_ms / 1000),
               t.write_errors, t.recovery_ms, t.recovered_keys, t.recovered_records,
               t.recovery_ms ? (double)t.recovered_keys * 1000.0 / (double)t.recovery_ms : 0.0,
               t.damaged_files, t.value_raw_bytes, t.value_stored_bytes,
               t.value_stored_bytes ? (double)t.value_raw_bytes / (double)t.value_stored_bytes
                                    : 1.0,
               t.segment_bytes, t.live_bytes,
               t.segment_bytes ? (double)t.live_bytes / (double)t.segment_bytes : 1.0,
               t.compactions, t.compaction_reclaimed_bytes, totals->cold_keys,
               totals->cold_bytes, totals->values_cooled, totals->values_loaded);
    /* Redis's fields that scripts poll after BGSAVE and BGREWRITEAOF
     * (cmd_persist.h): a BGSAVE's is 1 until its records are durable */
    buf_printf(b, "rdb_bgsave_in_progress:%u\r\naof_rewrite_in_progress:%u\r\n", t.saving,
               t.rewriting);
    persist_write_info(b, n);
    buf_append_str(b, "\r\n");
}

/* used_memory_peak (server_used_peak, above): the largest used_memory any
 * INFO or MEMORY STATS/DOCTOR has computed since start-up or CONFIG
 * RESETSTAT. Redis also samples it in its cron; here nothing runs between
 * those calls, so a peak that came and went between two of them is missed.
 * Atomic: they run on every shard. */

/* Records used and returns the peak so far. */
static uint64_t server_note_used(uint64_t used)
{
    uint64_t peak = __atomic_load_n(&server_used_peak, __ATOMIC_RELAXED);
    while (used > peak && !__atomic_compare_exchange_n(&server_used_peak, &peak, used, true,
                                                       __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    return used > peak ? used : peak;
}

/* The node's memory figures, which INFO memory and MEMORY STATS give (the
 * read notes the peak, as INFO's always did). */
struct server_memory {
    uint64_t used, peak, overhead, keys;
    size_t rss, allocator_active, allocator_resident, allocator_peak;
};

/* used_memory_dataset, MEMORY STATS' dataset.bytes: what keys and values
 * take, without the tables' slot arrays. */
static uint64_t server_dataset(const struct server_memory *m)
{
    return m->used > m->overhead ? m->used - m->overhead : 0;
}

/* The figures, from the shards' totals t (cmd_server_totals). */
static void server_memory_read(const struct node *n, const struct cmd_server_totals *t,
                               struct server_memory *m)
{
    m->used = t->used;
    m->keys = t->keys;
    m->peak = server_note_used(t->used);
    m->overhead = 0; /* the tables' slot arrays (used counts them too) */
    for (uint32_t i = 0; i < n->nshards; i++)
        m->overhead += table_overhead_bytes(n->shards[i]->store->table);
    size_t elapsed, user, sys, peak_rss, faults;
    mi_process_info(&elapsed, &user, &sys, &m->allocator_resident, &peak_rss,
                    &m->allocator_active, &m->allocator_peak, &faults);
    m->rss = cmd_server_rss_bytes();
}

/* The figures now (MEMORY STATS and DOCTOR; INFO has its totals read). */
static void server_memory_now(const struct node *n, struct server_memory *m)
{
    struct cmd_server_totals t;
    cmd_server_totals(n, &t);
    server_memory_read(n, &t, m);
}

/* MEMORY STATS: the node's figures under Redis's names, those ringkv has
 * (no replication backlog, AOF buffer or Lua caches to report). */
static void server_memory_stats(struct cmd_ctx *c)
{
    struct server_memory m;
    server_memory_now(c->node, &m);
    uint64_t dataset = server_dataset(&m);
    resp_write_map_len(c->out, c->proto, 11);
    resp_write_bulk_str(c->out, "peak.allocated");
    resp_write_int(c->out, (int64_t)m.peak);
    resp_write_bulk_str(c->out, "total.allocated");
    resp_write_int(c->out, (int64_t)m.used);
    resp_write_bulk_str(c->out, "overhead.total");
    resp_write_int(c->out, (int64_t)m.overhead);
    resp_write_bulk_str(c->out, "keys.count");
    resp_write_int(c->out, (int64_t)m.keys);
    resp_write_bulk_str(c->out, "keys.bytes-per-key");
    resp_write_int(c->out, m.keys ? (int64_t)(m.used / m.keys) : 0);
    resp_write_bulk_str(c->out, "dataset.bytes");
    resp_write_int(c->out, (int64_t)dataset);
    resp_write_bulk_str(c->out, "dataset.percentage");
    resp_write_double(c->out, c->proto, m.used ? (double)dataset * 100.0 / (double)m.used : 0.0);
    resp_write_bulk_str(c->out, "peak.percentage");
    resp_write_double(c->out, c->proto, m.peak ? (double)m.used * 100.0 / (double)m.peak : 100.0);
    resp_write_bulk_str(c->out, "allocator.active");
    resp_write_int(c->out, (int64_t)m.allocator_active);
    resp_write_bulk_str(c->out, "allocator.resident");
    resp_write_int(c->out, (int64_t)m.allocator_resident);
    resp_write_bulk_str(c->out, "fragmentation");
    resp_write_double(c->out, c->proto, m.used ? (double)m.rss / (double)m.used : 0.0);
}

/* MEMORY DOCTOR: a few checks of those figures, in words. */
static void server_memory_doctor(struct cmd_ctx *c)
{
    struct server_memory m;
    server_memory_now(c->node, &m);
    struct buf b;
    buf_init(&b);
    size_t found = 0;
    if (m.used < (64u << 20)) {
        buf_printf(&b, "This node holds %" PRIu64 " bytes of data and tables: too little for "
                       "memory figures to say much.\n", m.used);
    } else {
        if (m.rss > m.used + m.used / 2) {
            found++;
            buf_printf(&b, "The process's RSS (%zu bytes) is %.2f times what keys, values and "
                           "tables take (%" PRIu64 " bytes): memory freed by deletes and "
                           "overwrites is held by the allocator for reuse, or the process "
                           "holds buffers (clients' output, the data log).\n",
                       m.rss, (double)m.rss / (double)m.used, m.used);
        }
        if (m.peak > m.used * 2) {
            found++;
            buf_printf(&b, "The peak of used memory (%" PRIu64 " bytes) is over twice what is "
                           "used now (%" PRIu64 " bytes): the RSS may stay near the peak.\n",
                       m.peak, m.used);
        }
        if (!found)
            buf_append_str(&b, "No memory problem found: RSS and the peak are in proportion "
                               "to what is used.\n");
    }
    resp_write_verbatim(c->out, c->proto, b.data ? b.data : "", b.len);
    buf_fini(&b);
}

/* instantaneous_ops_per_sec. Redis averages 16 samples taken every 100 ms by
 * its cron; ringkv has no such tick here, so the sample is taken by INFO:
 * the rate is total_commands_processed's growth over the interval since the
 * last sample, when that interval is at least 100 ms; a call sooner than that
 * reports the last rate again. A client polling INFO every second thus sees
 * the last second's rate; after a long quiet spell the first figure is the
 * average over the whole spell.
 * Threads: INFO on any shard. The one that wins `claim` (an atomic exchange,
 * never waited on) reads and replaces the sample; the rate is read and
 * written atomically, so a call that loses the claim reports the last one. */
static struct {
    uint32_t claim;    /* 1 while a caller updates the sample */
    int64_t at_ms;     /* monotonic time of the sample, 0 before the first */
    uint64_t commands; /* total_commands_processed then */
    uint64_t rate;     /* ops per second over the last interval (atomic) */
} server_ops;

#define SERVER_OPS_MIN_INTERVAL_MS 100

static uint64_t server_ops_per_sec(uint64_t commands)
{
    if (__atomic_exchange_n(&server_ops.claim, 1, __ATOMIC_ACQUIRE) == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        int64_t span = now - server_ops.at_ms;
        if (server_ops.at_ms == 0 || span >= SERVER_OPS_MIN_INTERVAL_MS) {
            if (server_ops.at_ms != 0) {
                uint64_t done = commands > server_ops.commands ? commands - server_ops.commands : 0;
                __atomic_store_n(&server_ops.rate, done * 1000 / (uint64_t)span, __ATOMIC_RELAXED);
            }
            server_ops.at_ms = now;
            server_ops.commands = commands;
        }
        __atomic_store_n(&server_ops.claim, 0, __ATOMIC_RELEASE);
    }
    return __atomic_load_n(&server_ops.rate, __ATOMIC_RELAXED);
}

/* INFO commandstats: Redis 7's line for each command (then each
 * subcommand, as container|sub) that ran or was refused. */
static void server_info_commandstats(struct buf *b, const struct node *n)
{
    buf_printf(b, "# Commandstats\r\n");
    size_t count;
    const struct cmd_def *defs = cmd_table(&count);
    for (uint32_t slot = 0; slot < CMD_STATS_SLOTS; slot++) {
        const char *name = slot < count ? defs[slot].name : server_subcommand_name(slot);
        if (!name)
            continue;
        struct cmd_stat t;
        cmd_stats_sum(n, slot, &t);
        if (!t.calls && !t.rejected && !t.failed)
            continue;
        uint64_t usec = t.ns / 1000;
        buf_printf(b,
                   "cmdstat_%s:calls=%" PRIu64 ",usec=%" PRIu64 ",usec_per_call=%.2f"
                   ",rejected_calls=%" PRIu64 ",failed_calls=%" PRIu64 "\r\n",
                   name, t.calls, usec, t.calls ? (double)t.ns / 1000.0 / (double)t.calls : 0.0,
                   t.rejected, t.failed);
    }
    buf_printf(b, "\r\n");
}

static void server_errorstat_line(const char *prefix, uint64_t count, void *arg)
{
    buf_printf(arg, "errorstat_%s:count=%" PRIu64 "\r\n", prefix, count);
}

static bool server_section_wanted(const struct cmd_ctx *c, const char *name, bool in_default)
{
    if (c->argc == 1)
        return in_default;
    for (uint32_t i = 1; i < c->argc; i++) {
        if (cmd_arg_is(&c->argv[i], name) || cmd_arg_is(&c->argv[i], "all") ||
            cmd_arg_is(&c->argv[i], "everything"))
            return true;
        if (cmd_arg_is(&c->argv[i], "default") && in_default)
            return true;
    }
    return false;
}

void cmd_info(struct cmd_ctx *c)
{
    const struct node *n = c->node;
    const struct cfg *cfg = n->cfg;
    struct cmd_server_totals t;
    cmd_server_totals(n, &t);
    struct buf b;
    buf_init(&b);
    int64_t uptime_s = (server_now_ms() - n->start_ms) / 1000;
    if (server_section_wanted(c, "server", true)) {
        struct utsname u;
        uname(&u);
        buf_printf(&b,
                   "# Server\r\nredis_version:%s\r\nringkv_version:%s\r\nredis_mode:cluster\r\n"
                   "os:%s %s %s\r\narch_bits:64\r\nmultiplexing_api:io_uring\r\n"
                   "process_id:%d\r\nrun_id:%s\r\ntcp_port:%lld\r\nmemcache_port:%lld\r\n"
                   "uptime_in_seconds:%lld\r\nuptime_in_days:%lld\r\nhz:10\r\nshards:%u\r\n"
                   "partitions:%u\r\n\r\n",
                   CMD_SERVER_REDIS_VERSION, RINGKV_VERSION, u.sysname, u.release, u.machine,
                   (int)getpid(), n->run_id, (long long)cfg->port, (long long)cfg->memcache_port,
                   (long long)uptime_s, (long long)uptime_s / 86400, n->nshards, n->npartitions);
    }
    if (server_section_wanted(c, "clients", true))
        buf_printf(&b, "# Clients\r\nconnected_clients:%" PRIu64 "\r\nmaxclients:%lld\r\n"
                       "blocked_clients:0\r\n\r\n",
                   t.clients, (long long)__atomic_load_n(&cfg->maxclients, __ATOMIC_RELAXED));
    if (server_section_wanted(c, "memory", true)) {
        struct server_memory m;
        server_memory_read(n, &t, &m); /* the totals INFO read above */
        size_t rss_now = m.rss, rss = m.allocator_resident, commit = m.allocator_active;
        char h_used[32], h_rss[32], h_max[32], h_peak[32];
        uint64_t peak = m.peak;
        server_human(h_rss, sizeof h_rss, (double)rss_now);
        server_human(h_max, sizeof h_max, (double)cfg->maxmemory);
        server_human(h_peak, sizeof h_peak, (double)peak);
        static const char *const policies[] = {"noeviction",     "allkeys-lru",
                                               "volatile-lru",   "allkeys-random",
                                               "volatile-random", "volatile-ttl"};
        /* used_memory is what maxmemory is compared with (keys, values and
         * tables of every shard), as in Redis, and used_memory_peak its
         * largest value; the allocator's own figures (mimalloc committed,
         * its peak, and resident) and the process RSS stand beside. */
        server_human(h_used, sizeof h_used, (double)m.used);
        buf_printf(&b,
                   "# Memory\r\nused_memory:%" PRIu64 "\r\nused_memory_human:%s\r\n"
                   "used_memory_rss:%zu\r\nused_memory_rss_human:%s\r\n"
                   "used_memory_peak:%" PRIu64 "\r\nused_memory_peak_human:%s\r\n"
                   "used_memory_peak_perc:%.2f%%\r\n"
                   "used_memory_dataset:%" PRIu64 "\r\nallocator_active:%zu\r\n"
                   "allocator_peak:%zu\r\nallocator_resident:%zu\r\nmaxmemory:%lld\r\n"
                   "maxmemory_human:%s\r\nmaxmemory_policy:%s\r\nmem_fragmentation_ratio:%.2f\r\n"
                   "mem_allocator:mimalloc-%d\r\n\r\n",
                   m.used, h_used, rss_now, h_rss, peak, h_peak,
                   peak ? (double)m.used * 100.0 / (double)peak : 100.0, server_dataset(&m),
                   commit, m.allocator_peak, rss, (long long)cfg->maxmemory, h_max,
                   policies[cfg->maxmemory_policy],
                   m.used ? (double)rss_now / (double)m.used : 0.0, mi_version());
    }
    if (server_section_wanted(c, "persistence", true))
        server_info_persistence(&b, n, &t);
    if (server_section_wanted(c, "stats", true)) {
        buf_printf(&b,
                   "# Stats\r\ntotal_connections_received:%" PRIu64
                   "\r\ntotal_commands_processed:%" PRIu64 "\r\ninstantaneous_ops_per_sec:%" PRIu64
                   "\r\ntotal_net_input_bytes:%" PRIu64 "\r\ntotal_net_output_bytes:%" PRIu64
                   "\r\nrejected_connections:%" PRIu64 "\r\nexpired_keys:%" PRIu64
                   "\r\nevicted_keys:%" PRIu64 "\r\nkeyspace_hits:%" PRIu64
                   "\r\nkeyspace_misses:%" PRIu64 "\r\ntotal_error_replies:%" PRIu64
                   "\r\ncross_shard_requests:%" PRIu64
                   "\r\ntotal_parser_examined_bytes:%" PRIu64 "\r\nsibling_warnings:%" PRIu64
                   "\r\nringkv_longest_turn_us:%" PRIu64 "\r\nringkv_slow_turns:%" PRIu64 "\r\n",
                   t.connections, t.commands, server_ops_per_sec(t.commands), t.net_in, t.net_out,
                   t.rejected, t.expired, t.evicted, t.hits, t.misses, t.errors, t.cross_shard,
                   t.parser_examined, t.sibling_warnings, t.longest_turn_us, t.slow_turns);
        coord_info(n, &b); /* the coordinator's counters (coord.h) */
        hint_info(n, &b);  /* hinted handoff's (hints.h) */
        buf_printf(&b, "\r\n");
    }
    if (server_section_wanted(c, "replication", true)) /* a master without replicas */
        buf_printf(&b,
                   "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n"
                   "master_failover_state:no-failover\r\nmaster_replid:%s\r\n"
                   "master_replid2:0000000000000000000000000000000000000000\r\n"
                   "master_repl_offset:0\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\n"
                   "repl_backlog_size:0\r\nrepl_backlog_first_byte_offset:0\r\n"
                   "repl_backlog_histlen:0\r\n\r\n",
                   n->run_id);
    if (server_section_wanted(c, "cpu", true)) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        buf_printf(&b, "# CPU\r\nused_cpu_sys:%ld.%06ld\r\nused_cpu_user:%ld.%06ld\r\n\r\n",
                   (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec,
                   (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec);
    }
    if (server_section_wanted(c, "commandstats", false))
        server_info_commandstats(&b, n);
    if (server_section_wanted(c, "errorstats", true)) {
        buf_printf(&b, "# Errorstats\r\n");
        cmd_stats_errors(n, server_errorstat_line, &b);
        buf_printf(&b, "\r\n");
    }
    if (server_section_wanted(c, "cluster", true))
        cmd_cluster_info_section(c, &b);
    if (server_section_wanted(c, "keyspace", true)) {
        buf_printf(&b, "# Keyspace\r\n");
        if (t.keys)
            buf_printf(&b, "db0:keys=%" PRIu64 ",expires=%" PRIu64 ",avg_ttl=0\r\n", t.keys,
                       t.expires);
    }
    if (b.len >= 2 && b.data[b.len - 1] == '\n' && b.data[b.len - 3] == '\n')
        b.len -= 2; /* no blank line after the last section */
    resp_write_verbatim(c->out, c->proto, b.data ? b.data : "", b.len);
    buf_fini(&b);
}

static void server_mc_stats(struct cmd_ctx *c)
{
    struct cmd_server_totals t;
    cmd_server_totals(c->node, &t);
    int64_t now = server_now_ms();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    buf_printf(c->out,
               "STAT pid %d\r\nSTAT uptime %lld\r\nSTAT time %lld\r\nSTAT version %s\r\n"
               "STAT ringkv_version %s\r\n"
               "STAT pointer_size 64\r\nSTAT rusage_user %ld.%06ld\r\nSTAT rusage_system "
               "%ld.%06ld\r\nSTAT max_connections %lld\r\nSTAT curr_connections %" PRIu64
               "\r\nSTAT total_connections %" PRIu64 "\r\nSTAT rejected_connections %" PRIu64
               "\r\nSTAT cmd_get %" PRIu64 "\r\nSTAT cmd_set %" PRIu64
               "\r\nSTAT get_hits %" PRIu64 "\r\nSTAT get_misses %" PRIu64
               "\r\nSTAT get_expired %" PRIu64 "\r\nSTAT bytes_read %" PRIu64
               "\r\nSTAT bytes_written %" PRIu64 "\r\nSTAT limit_maxbytes %lld\r\nSTAT threads "
               "%u\r\nSTAT bytes %" PRIu64 "\r\nSTAT curr_items %" PRIu64
               "\r\nSTAT evictions %" PRIu64 "\r\nEND\r\n",
               (int)getpid(), (long long)(now - c->node->start_ms) / 1000, (long long)now / 1000,
               CMD_SERVER_MEMCACHED_VERSION, RINGKV_VERSION, (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec,
               (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec,
               (long long)__atomic_load_n(&c->node->cfg->maxclients, __ATOMIC_RELAXED), t.clients,
               t.connections, t.rejected,
               t.hits + t.misses, t.writes, t.hits,
               t.misses, t.expired, t.net_in, t.net_out, (long long)c->node->cfg->maxmemory,
               c->node->nshards, t.used, t.keys, t.evicted);
}

/* Whether "stats <arg>" names a group memcached 1.6 lists (items, slabs,
 * settings...): its first word. Any other argument is an ERROR there. */
static bool server_mc_stats_group(const char *arg, uint32_t len)
{
    static const char *const groups[] = {"items", "slabs",    "sizes",     "settings",
                                         "conns", "extstore", "cachedump", "detail"};
    const char *space = memchr(arg, ' ', len);
    size_t word = space ? (size_t)(space - arg) : len;
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        if (word == strlen(groups[i]) && memcmp(arg, groups[i], word) == 0)
            return true;
    return false;
}

void cmd_mc_conn(struct cmd_ctx *c)
{
    switch (c->mc->cmd) {
    case MC_STATS:
        if (!c->mc->stats_arg)
            server_mc_stats(c);
        else if (server_mc_stats_group(c->mc->stats_arg, c->mc->stats_arg_len))
            buf_append_str(c->out, "END\r\n"); /* no item, slab or setting detail here */
        else
            buf_append_str(c->out, "ERROR\r\n"); /* "stats noreply" too, as memcached */
        return;
    case MC_VERSION:
        buf_append_str(c->out, "VERSION " CMD_SERVER_MEMCACHED_VERSION "\r\n");
        return;
    case MC_MN: /* the meta no-op: memcached flushes and answers MN */
        buf_append_str(c->out, "MN\r\n");
        return;
    case MC_VERBOSITY:
        if (!c->mc->noreply)
            buf_append_str(c->out, "OK\r\n");
        return;
    default: /* quit */
        c->conn->close_after_flush = true;
        return;
    }
}

bool cmd_server_is_admin(const struct cmd_def *d, const struct resp_arg *argv, uint32_t argc)
{
    const struct server_container *k = server_container_of(d->name);
    if (k && argc >= 2) {
        for (size_t i = 0; i < k->n; i++)
            if (cmd_arg_is(&argv[1], k->subs[i].name))
                return (k->subs[i].cats & SERVER_CAT_ADMIN) != 0;
        return false;
    }
    return (server_command_cats(d) & SERVER_CAT_ADMIN) != 0;
}
