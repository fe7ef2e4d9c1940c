/* test_model: a model-based check of the version semantics on a cluster of
 * three real nodes (cluster_harness.h; N=3, R=2, W=2 by default).
 * CLIENTS clients (threads, each with its own connection, spread over the
 * three nodes) run a bounded number of random operations (OPS in all, at
 * most RUN_MS) on KEYS keys: RING.GET (R default, 1, 2 or 3), RING.PUT with
 * the context the client last read of that key (sometimes an empty one), or
 * RING.DEL with it (W default, 1, 2 or 3). Contexts stay opaque: the model
 * knows a write by its value, unique per write ("c<client>-<seq>"), and what
 * the write's context covers by the siblings the RING.GET that gave it
 * answered. Afterwards every key is read with R=3 at node 0, and:
 * - every sibling is a value written to that key;
 * - every acknowledged write is among the siblings, or was seen by the read
 *   behind some write of the key that may have been applied (acknowledged,
 *   or failed in a way that leaves it unknown: -UNAVAILABLE, -TIMEOUT, no
 *   reply), which superseded it;
 * - no value seen by the read behind an acknowledged write is among the
 *   siblings (that write superseded it);
 * - those reads having repaired the replicas, every node holds the merged
 *   siblings of every key itself (RING.GET R 1 with the other two frozen:
 *   cluster_alone), and R=3 reads at nodes 1 and 2 answer the same.
 * Run twice: on a healthy cluster (then at most 5% of the operations may
 * fail), and with a nemesis: the clients of node 2 run a third of their
 * share, then node 2 is frozen (SIGSTOP) while the others run all of
 * theirs, on two nodes (-UNAVAILABLE and -TIMEOUT leave writes unknown),
 * and thawed after them: the final reads must repair it.
 * The seed is printed (RINGKV_MODEL_SEED=n repeats its choices; the threads'
 * interleaving is the system's). A failure prints the key's whole history. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "cluster_harness.h"

#define NODES 3
#define CLIENTS 6
#define KEYS 8
#define OPS 2400
#define RUN_MS 30000
#define REPLY_MS 5000
#define MAX_FAILED_PERCENT 5 /* a healthy cluster answers nearly everything */
#define TIMEOUT_MS 1000      /* the nodes' request-timeout */
#define TIMEOUT_TEXT "1000"
#define REPAIR_MS 10000
#define DOWN_MS 10000 /* failure detection: nodes 0 and 1 count node 2 down */
#define UP_MS 10000

enum op_kind { OP_GET, OP_PUT, OP_DEL };
enum outcome { OUT_OK, OUT_UNKNOWN, OUT_FAILED };

/* One operation a client ran. */
struct op {
    int client, seq, key;
    enum op_kind kind;
    int quorum;               /* R or W given; 0: the default */
    int64_t start_ms, end_ms; /* since the run began */
    enum outcome out;
    char value[24];        /* a PUT's value */
    const struct op *base; /* a write's: the GET whose context it used; NULL: empty */
    char **seen;           /* a GET's answer: the siblings */
    size_t nseen;
    size_t ctx_len;
    char reply[120]; /* what came back, for the history */
};

struct client {
    int index;
    unsigned seed;
    int64_t t0, end_ms;
    redisContext *c;
    struct op ops[OPS / CLIENTS];
    int nops;
    int quota;                       /* operations to run */
    const struct op *last_get[KEYS]; /* whose context the next write uses */
    char *ctx[KEYS];
    size_t ctx_len[KEYS];
};

static struct client clients[CLIENTS];

static bool op_saw(const struct op *get, const char *value)
{
    for (size_t k = 0; get && k < get->nseen; k++)
        if (strcmp(get->seen[k], value) == 0)
            return true;
    return false;
}

/* -UNAVAILABLE and -TIMEOUT say a write may or may not have been applied. */
static enum outcome outcome_of(const redisReply *r)
{
    if (!r)
        return OUT_UNKNOWN;
    if (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0)
        return OUT_OK;
    if (r->type == REDIS_REPLY_ERROR &&
        (strncmp(r->str, "UNAVAILABLE", 11) == 0 || strncmp(r->str, "TIMEOUT", 7) == 0))
        return OUT_UNKNOWN;
    return OUT_FAILED;
}

static void note_reply(struct op *op, const redisReply *r, const redisContext *c)
{
    if (!r)
        snprintf(op->reply, sizeof op->reply, "no reply: %.100s", c->errstr);
    else if (r->type == REDIS_REPLY_ERROR)
        snprintf(op->reply, sizeof op->reply, "-%s", r->str);
    else if (r->type == REDIS_REPLY_STATUS)
        snprintf(op->reply, sizeof op->reply, "+%s", r->str);
}

/* Sends one write of op's kind with the client's context of the key. */
static redisReply *send_write(struct client *cl, struct op *op, const char *key, bool empty)
{
    const char *ctx = empty ? "" : cl->ctx[op->key] ? cl->ctx[op->key] : "";
    size_t len = empty || !cl->ctx[op->key] ? 0 : cl->ctx_len[op->key];
    op->base = empty ? NULL : cl->last_get[op->key];
    op->ctx_len = len;
    if (op->kind == OP_PUT && op->quorum)
        return redisCommand(cl->c, "RING.PUT %s %b %s W %d", key, ctx, len, op->value, op->quorum);
    if (op->kind == OP_PUT)
        return redisCommand(cl->c, "RING.PUT %s %b %s", key, ctx, len, op->value);
    if (op->quorum)
        return redisCommand(cl->c, "RING.DEL %s %b W %d", key, ctx, len, op->quorum);
    return redisCommand(cl->c, "RING.DEL %s %b", key, ctx, len);
}

static const char *kind_name(enum op_kind k)
{
    return k == OP_GET ? "GET" : k == OP_PUT ? "PUT" : "DEL";
}

/* The client's view of key after RING.GET answered v (outcome OK). */
static void keep_context(struct client *cl, struct op *op, const struct cluster_versions *v)
{
    op->nseen = v->nvalues;
    op->seen = calloc(v->nvalues + 1, sizeof *op->seen);
    for (size_t k = 0; op->seen && k < v->nvalues; k++)
        op->seen[k] = strndup(v->values[k]->str, v->values[k]->len);
    op->ctx_len = v->ctx_len;
    char *ctx = realloc(cl->ctx[op->key], v->ctx_len + 1);
    if (!ctx || !op->seen)
        return;
    memcpy(ctx, v->ctx, v->ctx_len);
    cl->ctx[op->key] = ctx;
    cl->ctx_len[op->key] = v->ctx_len;
    cl->last_get[op->key] = op;
}

static void run_get(struct client *cl, struct op *op, const char *key)
{
    struct cluster_versions v;
    int rc = cluster_ring_get(cl->c, key, op->quorum, &v);
    if (rc == 0) {
        op->out = OUT_OK;
        keep_context(cl, op, &v);
        snprintf(op->reply, sizeof op->reply, "%zu sibling(s), context of %zu bytes", v.nvalues,
                 v.ctx_len);
    } else {
        op->out = rc == -EIO ? OUT_UNKNOWN : outcome_of(v.reply);
        note_reply(op, v.reply, cl->c);
        if (op->out == OUT_OK) /* +OK to a RING.GET: not its shape */
            op->out = OUT_FAILED;
    }
    cluster_versions_free(&v);
}

/* A new connection after one that gave no reply (hiredis cannot go on). */
static void reconnect(struct client *cl)
{
    char host[16];
    snprintf(host, sizeof host, "127.0.0.%d", cl->index % NODES + 2);
    struct timeval tv = {.tv_sec = REPLY_MS / 1000};
    redisFree(cl->c);
    cl->c = redisConnectWithTimeout(host, cluster_client_port(), tv);
    if (cl->c && !cl->c->err)
        redisSetTimeout(cl->c, tv);
}

/* One random operation: a GET when the client has no context of the key
 * more often than not; a write's context is sometimes left empty. */
static void run_one(struct client *cl, struct op *op)
{
    op->key = rand_r(&cl->seed) % KEYS;
    int dice = rand_r(&cl->seed) % 100;
    if (!cl->ctx[op->key])
        op->kind = dice < 60 ? OP_GET : dice < 95 ? OP_PUT : OP_DEL;
    else
        op->kind = dice < 35 ? OP_GET : dice < 88 ? OP_PUT : OP_DEL;
    bool empty = rand_r(&cl->seed) % 20 == 0;
    op->quorum = rand_r(&cl->seed) % 4;
    char key[8];
    snprintf(key, sizeof key, "m%d", op->key);
    snprintf(op->value, sizeof op->value, "c%d-%d", op->client, op->seq);
    op->start_ms = cluster_now_ms() - cl->t0;
    bool lost = false;
    if (op->kind == OP_GET) {
        run_get(cl, op, key);
        lost = op->out == OUT_UNKNOWN && cl->c->err;
    } else {
        redisReply *r = send_write(cl, op, key, empty);
        op->out = outcome_of(r);
        note_reply(op, r, cl->c);
        lost = !r;
        freeReplyObject(r);
    }
    op->end_ms = cluster_now_ms() - cl->t0;
    if (lost)
        reconnect(cl);
}

static void *client_run(void *arg)
{
    struct client *cl = arg;
    while (cl->nops < cl->quota && cluster_now_ms() < cl->end_ms && cl->c && !cl->c->err) {
        struct op *op = &cl->ops[cl->nops];
        op->client = cl->index;
        op->seq = cl->nops++;
        run_one(cl, op);
    }
    return NULL;
}

/* ---- the check ---- */

static int by_start(const void *a, const void *b)
{
    const struct op *x = *(const struct op *const *)a, *y = *(const struct op *const *)b;
    return x->start_ms < y->start_ms ? -1 : x->start_ms > y->start_ms;
}

static void print_seen(const struct op *get)
{
    printf("[");
    for (size_t k = 0; get && k < get->nseen; k++)
        printf("%s%s", k ? ", " : "", get->seen[k]);
    printf("]");
}

static void print_history(int key, const struct op **ops, size_t n, const char *final)
{
    printf("model: history of m%d (%zu operations; final R=3 answer %s):\n", key, n, final);
    for (size_t k = 0; k < n; k++) {
        const struct op *op = ops[k];
        printf("  %6lld..%6lld ms  c%d#%-3d node %d  %s", (long long)op->start_ms,
               (long long)op->end_ms, op->client, op->seq, op->client % NODES, kind_name(op->kind));
        if (op->kind == OP_PUT)
            printf(" %s", op->value);
        if (op->quorum)
            printf(" %c %d", op->kind == OP_GET ? 'R' : 'W', op->quorum);
        if (op->kind == OP_GET && op->out == OUT_OK) {
            printf(" -> ");
            print_seen(op);
        } else if (op->kind != OP_GET) {
            if (op->base) {
                printf(" context of c%d#%d (saw ", op->base->client, op->base->seq);
                print_seen(op->base);
                printf(")");
            } else {
                printf(" empty context");
            }
        }
        printf("  %s\n", op->reply);
    }
}

static bool final_has(const struct cluster_versions *v, const char *value)
{
    return cluster_versions_has(v, value);
}

/* The problems of one key's final state against its history; 0 when none. */
static int check_key(const struct op **ops, size_t n, const struct cluster_versions *fin)
{
    int problems = 0;
    for (size_t k = 0; k < fin->nvalues; k++) {
        bool written = false;
        for (size_t j = 0; j < n && !written; j++)
            written = ops[j]->kind == OP_PUT && ops[j]->out != OUT_FAILED &&
                      fin->values[k]->len == strlen(ops[j]->value) &&
                      memcmp(fin->values[k]->str, ops[j]->value, fin->values[k]->len) == 0;
        if (!written && ++problems)
            printf("model: sibling '%.*s' is no write of this key that may have been applied\n",
                   (int)fin->values[k]->len, fin->values[k]->str);
    }
    for (size_t j = 0; j < n; j++) {
        const struct op *w = ops[j];
        if (w->kind != OP_PUT || w->out != OUT_OK || final_has(fin, w->value))
            continue;
        bool superseded = false;
        for (size_t k = 0; k < n && !superseded; k++)
            superseded = ops[k]->kind != OP_GET && ops[k]->out != OUT_FAILED &&
                         op_saw(ops[k]->base, w->value);
        if (!superseded && ++problems)
            printf("model: acknowledged write %s (c%d#%d) is lost: not among the siblings, "
                   "and no write's context saw it\n",
                   w->value, w->client, w->seq);
    }
    for (size_t j = 0; j < n; j++) {
        const struct op *w = ops[j];
        if (w->kind == OP_GET || w->out != OUT_OK || !w->base)
            continue;
        for (size_t k = 0; k < w->base->nseen; k++)
            if (final_has(fin, w->base->seen[k]) && ++problems)
                printf("model: %s survives, though acknowledged %s c%d#%d's context saw it\n",
                       w->base->seen[k], kind_name(w->kind), w->client, w->seq);
    }
    return problems;
}

static char final_text[KEYS][4096]; /* each key's merged siblings (canonical) */

static int by_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* v's siblings sorted and joined by ", ": comparable as a set. */
static void canonical(const struct cluster_versions *v, char *out, size_t cap)
{
    out[0] = '\0';
    char **vals = calloc(v->nvalues + 1, sizeof *vals);
    if (!vals)
        return;
    for (size_t k = 0; k < v->nvalues; k++)
        vals[k] = strndup(v->values[k]->str, v->values[k]->len);
    qsort(vals, v->nvalues, sizeof *vals, by_text);
    size_t len = 0;
    for (size_t k = 0; k < v->nvalues; k++) {
        if (vals[k] && len < cap)
            len += (size_t)snprintf(out + len, cap - len, "%s%s", k ? ", " : "", vals[k]);
        free(vals[k]);
    }
    free(vals);
}

/* Reads key with R=3 at node 0 and checks it against the history. */
static int check_final(int key, redisContext *reader)
{
    const struct op *ops[OPS];
    size_t n = 0;
    for (int c = 0; c < CLIENTS; c++)
        for (int k = 0; k < clients[c].nops; k++)
            if (clients[c].ops[k].key == key)
                ops[n++] = &clients[c].ops[k];
    qsort(ops, n, sizeof *ops, by_start);
    char name[8];
    snprintf(name, sizeof name, "m%d", key);
    struct cluster_versions fin;
    int problems = 0;
    if (cluster_ring_get(reader, name, 3, &fin) != 0 && ++problems)
        printf("model: RING.GET %s R 3 at node 0 answered %s\n", name, cluster_versions_text(&fin));
    if (!problems)
        problems = check_key(ops, n, &fin);
    if (!problems)
        canonical(&fin, final_text[key], sizeof final_text[key]);
    printf("model: %s: %zu operations, %zu final sibling(s)\n", name, n, fin.nvalues);
    if (problems)
        print_history(key, ops, n, cluster_versions_text(&fin));
    cluster_versions_free(&fin);
    return problems;
}

/* RING.GET R 3 at nodes 1 and 2 answers what it answered at node 0. */
static int check_same_answers(redisContext **readers)
{
    int differ = 0;
    for (int i = 1; i < NODES; i++)
        for (int key = 0; key < KEYS; key++) {
            char name[8], got[4096];
            snprintf(name, sizeof name, "m%d", key);
            struct cluster_versions v;
            int64_t t0 = cluster_now_ms(), end = t0 + UP_MS;
            int rc;
            /* an error (-UNAVAILABLE while a link redials) is tried again */
            while ((rc = cluster_ring_get(readers[i], name, 3, &v)) == -EPROTO &&
                   cluster_now_ms() < end) {
                cluster_versions_free(&v);
                usleep(100 * 1000);
            }
            if (rc == 0)
                canonical(&v, got, sizeof got);
            else
                snprintf(got, sizeof got, "(%s)", cluster_versions_text(&v));
            cluster_versions_free(&v);
            if (cluster_now_ms() - t0 > 500)
                printf("model: RING.GET %s R 3 at node %d answered after %lld ms\n", name, i,
                       (long long)(cluster_now_ms() - t0));
            if (strcmp(got, final_text[key]) != 0 && ++differ)
                printf("model: RING.GET %s R 3 at node %d answered [%s], at node 0 [%s]\n", name, i,
                       got, final_text[key]);
        }
    return differ;
}

/* Counts the outcomes; prints the first failed ones. */
static void count_outcomes(int *acked, int *unknown, int *failed, int *total)
{
    *acked = *unknown = *failed = *total = 0;
    int concurrent = 0; /* reads that saw siblings: the run made concurrent writes */
    for (int c = 0; c < CLIENTS; c++)
        for (int k = 0; k < clients[c].nops; k++) {
            const struct op *op = &clients[c].ops[k];
            ++*total;
            *acked += op->out == OUT_OK;
            *unknown += op->out == OUT_UNKNOWN;
            *failed += op->out == OUT_FAILED;
            concurrent += op->kind == OP_GET && op->nseen > 1;
            if (op->out != OUT_OK && *unknown + *failed <= 20)
                printf("model: c%d#%d %s m%d (%c %d; 0: the default): %s\n", c, op->seq,
                       kind_name(op->kind), op->key, op->kind == OP_GET ? 'R' : 'W', op->quorum,
                       op->reply);
        }
    printf("model: %d reads saw more than one sibling\n", concurrent);
}

static void free_clients(void)
{
    for (int c = 0; c < CLIENTS; c++) {
        struct client *cl = &clients[c];
        for (int k = 0; k < cl->nops; k++) {
            for (size_t j = 0; j < cl->ops[k].nseen; j++)
                free(cl->ops[k].seen[j]);
            free(cl->ops[k].seen);
        }
        for (int k = 0; k < KEYS; k++)
            free(cl->ctx[k]);
        redisFree(cl->c);
        memset(cl, 0, sizeof *cl);
    }
}

static unsigned pick_seed(void)
{
    const char *env = getenv("RINGKV_MODEL_SEED");
    unsigned seed = env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)cluster_now_ms();
    printf("model: seed %u (RINGKV_MODEL_SEED=%u repeats the choices)\n", seed, seed);
    return seed;
}

/* Nodes 0 and 1 count node 2 down (their coordinators skip it). */
static bool node_2_counted_down(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2; i++) {
        char *info = cluster_ask(i, "CLUSTER INFO");
        long long down = cluster_info_field(info, "ringkv_nodes_down");
        free(info);
        if (down < 1)
            return false;
    }
    return true;
}

/* The nemesis: once the clients of node 2 ran their (smaller) share, node 2
 * is frozen (SIGSTOP) while the clients of the other two run theirs, first
 * with node 2 silent, then counted down; it is thawed after them, so the
 * final reads must repair it. */
static void nemesis(pthread_t *threads)
{
    for (int c = 2; c < CLIENTS; c += NODES)
        pthread_join(threads[c], NULL);
    cluster_signal(2, SIGSTOP);
    int64_t t = cluster_now_ms();
    printf("model: node 2 frozen\n");
    if (cluster_wait(node_2_counted_down, NULL, DOWN_MS))
        printf("model: node 2 counted down %lld ms later\n", (long long)(cluster_now_ms() - t));
    else
        printf("model: node 2 is not counted down within %d ms\n", DOWN_MS);
    for (int c = 0; c < CLIENTS; c++)
        if (c % NODES != 2)
            pthread_join(threads[c], NULL);
    cluster_signal(2, SIGCONT);
    printf("model: node 2 thawed\n");
}

/* R=3 reads at every node can count node 2 again (after the nemesis). */
static bool all_counted_up(void *arg)
{
    (void)arg;
    int n = NODES;
    for (int i = 0; i < NODES; i++) {
        char *info = cluster_ask(i, "CLUSTER INFO");
        long long down = cluster_info_field(info, "ringkv_nodes_down");
        free(info);
        if (down != 0)
            return false;
    }
    return cluster_formed(&n);
}

struct alone {
    int node;
    redisContext *c;
    bool verbose;
    int differ; /* keys whose state at node differs from the merged one */
};

/* Node a->node's own state of every key (R 1 with the others frozen)
 * against the merged answer of the final reads. */
static void check_alone(void *arg)
{
    struct alone *a = arg;
    for (int key = 0; key < KEYS; key++) {
        char name[8], own[4096];
        snprintf(name, sizeof name, "m%d", key);
        struct cluster_versions v;
        if (cluster_ring_get(a->c, name, 1, &v) == 0)
            canonical(&v, own, sizeof own);
        else
            snprintf(own, sizeof own, "(%s)", cluster_versions_text(&v));
        cluster_versions_free(&v);
        if (strcmp(own, final_text[key]) != 0 && ++a->differ && a->verbose)
            printf("model: node %d holds %s as [%s]; the final reads merged [%s]\n", a->node, name,
                   own, final_text[key]);
    }
}

/* How many (node, key) states differ from the merged ones. */
static int replicas_differ(redisContext **readers, bool verbose)
{
    int differ = 0;
    for (int i = 0; i < NODES; i++) {
        struct alone a = {i, readers[i], verbose, 0};
        cluster_alone(i, TIMEOUT_MS + 300, check_alone, &a);
        differ += a.differ;
    }
    return differ;
}

/* The final reads (R=3 at node 0) repaired every replica: each node holds
 * the merged siblings of every key itself. */
static void expect_converged(redisContext **readers, unsigned seed)
{
    int64_t end = cluster_now_ms() + REPAIR_MS;
    while (replicas_differ(readers, false) && cluster_now_ms() < end)
        continue;
    if (replicas_differ(readers, true))
        fail_msg("read repair left replicas behind the merged state (seed %u)", seed);
}

static void run_model(bool with_nemesis)
{
    const char *const flags[] = {"--request-timeout", TIMEOUT_TEXT, NULL};
    if (cluster_start_formed(NODES, flags) != 0)
        fail_msg("three nodes did not start and form a cluster");
    unsigned seed = pick_seed();
    int64_t t0 = cluster_now_ms();
    pthread_t threads[CLIENTS];
    int quotas = 0;
    for (int c = 0; c < CLIENTS; c++) {
        int quota = with_nemesis && c % NODES == 2 ? OPS / CLIENTS / 3 : OPS / CLIENTS;
        quotas += quota;
        clients[c] = (struct client){.index = c,
                                     .seed = seed * 31u + (unsigned)c,
                                     .t0 = t0,
                                     .end_ms = t0 + RUN_MS,
                                     .quota = quota};
        clients[c].c = cluster_connect(c % NODES, REPLY_MS);
        if (!clients[c].c)
            fail_msg("client %d cannot connect to node %d", c, c % NODES);
    }
    for (int c = 0; c < CLIENTS; c++)
        assert_int_equal(pthread_create(&threads[c], NULL, client_run, &clients[c]), 0);
    if (with_nemesis)
        nemesis(threads);
    else
        for (int c = 0; c < CLIENTS; c++)
            pthread_join(threads[c], NULL);
    int acked, unknown, failed, total;
    count_outcomes(&acked, &unknown, &failed, &total);
    printf("model: %d operations in %lld ms: %d acknowledged, %d unknown, %d failed\n", total,
           (long long)(cluster_now_ms() - t0), acked, unknown, failed);
    if (!cluster_wait(all_counted_up, NULL, UP_MS))
        fail_msg("the three nodes do not count each other up %d ms after the run", UP_MS);

    redisContext *readers[NODES];
    for (int i = 0; i < NODES; i++)
        readers[i] = cluster_connect(i, REPLY_MS);
    int problems = 0;
    for (int key = 0; key < KEYS; key++)
        problems += readers[0] && readers[1] && readers[2] ? check_final(key, readers[0]) : 1;
    free_clients();
    if (problems)
        fail_msg("%d problem(s) against the model (seed %u); histories above", problems, seed);
    expect_converged(readers, seed);
    if (!cluster_wait(all_counted_up, NULL, UP_MS))
        fail_msg("the three nodes do not count each other up after the convergence check");
    if (check_same_answers(readers))
        fail_msg("R=3 reads at different nodes answer different siblings (seed %u)", seed);
    for (int i = 0; i < NODES; i++)
        redisFree(readers[i]);
    if (!with_nemesis && (unknown + failed) * 100 > total * MAX_FAILED_PERCENT)
        fail_msg("%d of %d operations failed on a healthy cluster (seed %u)", unknown + failed,
                 total, seed);
    if (failed * 100 > total * MAX_FAILED_PERCENT || acked * 2 < total)
        fail_msg("%d of %d operations failed, %d unknown (seed %u)", failed, total, unknown, seed);
    if (total < quotas)
        fail_msg("only %d of %d operations within %d ms", total, quotas, RUN_MS);
}

static void test_model_versions_random_clients(void **state)
{
    (void)state;
    run_model(false);
}

static void test_model_versions_random_clients_node_frozen(void **state)
{
    (void)state;
    run_model(true);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_model_versions_random_clients, cluster_forget_all),
        cmocka_unit_test_teardown(test_model_versions_random_clients_node_frozen,
                                  cluster_forget_all),
    };
    return cluster_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
