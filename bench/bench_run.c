/* bench_run.c: client threads and their connections (see bench_run.h).
 * Each worker thread owns `clients` clients, one epoll instance
 * (level-triggered) and its own statistics. A client draws the requests
 * (its key generators, set:get cycle, budget and rate schedule); a link is
 * one connection: its socket, buffers and a ring of up to `pipeline`
 * requests in flight. Without --cluster-mode a client has exactly one link:
 * whenever replies free slots it writes the next requests in one send(), and
 * each reply is matched to the oldest request in its ring (servers answer in
 * order). So a request costs one share of a send(), a recv() and an
 * epoll_wait(), two clock reads and a histogram increment; nothing is
 * allocated after start-up.
 * --cluster-mode (memtier's): before the workers start, CLUSTER SLOTS from
 * the given server gives the slot map (bench_cluster.h); each worker keeps
 * its own copy and each client opens a link to every master. A request goes
 * to the link of its key's slot's master; when that link's pipeline is full
 * it waits, in order, in that link's backlog, and the client goes on drawing
 * for its other links until `pipeline` requests wait in all its backlogs
 * together (as memtier keeps a queue of keys per connection: each link
 * sends as many requests at once as replies freed, and memory stays
 * bounded). A -MOVED reply is counted, moves the slot to the node it names
 * in the worker's map (a new node gets links as clients first need it) and
 * the request goes back to the client's redirect queue, to be routed again;
 * -ASK is counted and the request goes once to the named node after
 * ASKING, whose +OK is swallowed.
 * A request redirected more than MAX_REDIRECTS times counts as an error. A
 * redirected request is still one request: sent and replies count it once,
 * and its latency runs from its first send to its final reply.
 * Latency runs from the request's send time to the arrival of the read that
 * completed its reply. With --rate-limiting, request i of a client is
 * due at base + i / rate (bases staggered across clients); it is sent
 * once due and a pipeline slot is free, and its latency counts from the due
 * time, so a slow server cannot hide its stalls by slowing the generator
 * (no coordinated omission).
 * A run ends per client when its request budget is spent and answered,
 * or at the deadline of --test-time, after in-flight replies are drained.
 * Under a rate limit the deadline ends the schedule, not the backlog: every
 * request due before it is still sent (late, timed from its due time) and
 * answered, so a stall at the end of a run shows too. The backlog is drained
 * for at most another --test-time; what is still unsent then is counted as
 * `unsent` and reported, never silently dropped.
 * With --authenticate or --select-db, each connection sends AUTH and SELECT
 * right after connecting and waits for their +OK (blocking, with the connect
 * timeout) while its worker sets up, before the gate opens: neither is timed
 * or counted, and a refusal stops the run before it starts, as a failed
 * connect does. (A link a MOVED makes a worker open mid-run connects the
 * same way, blocking its worker for that moment.)
 * Once a second (and at the deadline) a worker scans its links; one with
 * requests in flight and no traffic for STALL_NS is given up on, and with it
 * its client. The main thread starts the workers together (a gate: all
 * connected, then go), prints progress from per-worker relaxed atomic
 * counters, joins them and merges their statistics. */
#include "bench_run.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_cluster.h"

#define CONNECT_TIMEOUT_MS 5000
#define STALL_NS (10ull * 1000000000ull)
#define IN_BUF_MIN (64u << 10)
#define MAX_EVENTS 256
#define NS_PER_S 1000000000ull
/* Redirections (MOVED, ASK) one request follows before it counts as an error. */
#define MAX_REDIRECTS 16
/* "ASKING" in RESP, sent before a request an -ASK redirected. */
static const char asking_request[] = "*1\r\n$6\r\nASKING\r\n";
#define ASKING_LEN (sizeof asking_request - 1)

struct inflight {
    uint64_t start_ns; /* send time, or due time under a rate limit */
    uint64_t key;
    uint32_t vlen;     /* SET: value bytes, so that a redirected SET is sent again alike */
    uint16_t ask_node; /* waiting after -ASK: the node to ask */
    uint8_t op;        /* enum bench_op */
    uint8_t redirects : 7;
    /* waiting: send ASKING to ask_node first; in flight: ASKING's reply comes first */
    uint8_t asking : 1;
};

/* A growable ring of requests, oldest at head. */
struct fifo {
    struct inflight *q;
    uint32_t head, len, cap;
};

struct client;

/* One connection. */
struct link {
    int fd;
    bool closed; /* lost; counted in conn_errors */
    bool want_write;
    uint16_t node; /* cluster: the master, in the worker's map */
    struct client *client;
    uint64_t last_io_ns; /* last request written or reply read */
    struct inflight *q;  /* ring of `pipeline` entries, oldest at q_head */
    uint32_t q_head, q_len;
    struct fifo backlog; /* cluster: drawn for this link while its pipeline was full */
    char *out;
    size_t out_len, out_off, out_cap;
    char *in;
    size_t in_len, in_cap;
};

/* One simulated client: what it sends and over which links. */
struct client {
    uint32_t index; /* among all clients of the run */
    bool finished;  /* nothing more to send or receive (or a link was lost) */
    struct bench_rng rng;
    struct bench_keygen set_keys, get_keys;
    uint32_t cycle; /* position in the set:get cycle */
    uint64_t limit; /* requests to send */
    uint64_t sent;
    uint64_t pending; /* cluster: sent, final reply not yet in (in a ring, backlog or queue) */
    uint64_t due_base_ns;
    /* one link; cluster: one per node of the worker's map, NULL until opened */
    struct link **links;
    /* cluster: links with output not yet sent in this pump */
    struct link **dirty;
    uint32_t ndirty;
    /* cluster: requests a redirection sent back, to be routed again */
    struct fifo redirected;
    uint32_t backlog; /* cluster: requests in all its links' backlogs */
};

/* Counters the main thread reads for progress lines; written by the owner. */
struct progress {
    _Alignas(64) _Atomic uint64_t replies;
    _Atomic uint64_t latency_ns;
    _Atomic uint64_t bytes;
};

/* A node's resolved address (cluster: per worker, filled when first needed). */
struct node_addr {
    struct sockaddr_storage addr;
    socklen_t len;
};

struct run;

struct worker {
    struct progress progress;
    pthread_t tid;
    struct run *run;
    uint32_t index;
    struct client *clients;
    uint32_t nclients;
    uint32_t active; /* clients not finished */
    int epfd;
    bool stopping;   /* deadline passed: send nothing new (rate limit: nothing due after it) */
    bool drain_over; /* rate limit: backlog drained as long as allowed; send nothing */
    uint64_t next_scan_ns;
    uint64_t end_ns; /* when the last client finished */
    struct bench_stats stats;
    char *filler; /* value bytes when not verifying */
    char *value;  /* scratch for a checked value */
    char *key;    /* scratch for a key */
    size_t prefix_len;
    bool running; /* past the gate: a link opened now is opened mid-run */
    /* cluster: this thread's slot map (MOVED corrects it) and node addresses */
    struct bench_cluster_map *map;
    struct node_addr *addrs; /* BENCH_CLUSTER_MAX_NODES entries; len 0: not resolved */
    int setup_rc;            /* worker_setup(): 0 or a negative errno */
    char error[160];         /* first problem met */
    char error_reply[160];   /* the first error reply and how long it took */
};

struct run {
    const struct bench_config *cfg;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    struct bench_cluster_map *map; /* cluster: read before the workers start; else NULL */
    /* lock guards the gate and the counts below; cond wakes the main thread,
     * go_cond the workers. start_ns, end_ns and abort are written before go
     * is raised and only read after, so workers read them without the lock. */
    pthread_mutex_t lock;
    pthread_cond_t cond, go_cond;
    uint32_t ready;    /* workers set up (or failed to) */
    uint32_t finished; /* workers done */
    bool go;
    bool abort;
    uint64_t start_ns;
    uint64_t end_ns;       /* --test-time deadline, 0 if none */
    uint64_t drain_end_ns; /* rate limit: end of the backlog's drain, 0 if none */
    struct worker *workers;
    uint32_t nworkers; /* threads started */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static uint64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int bench_stats_init(struct bench_stats *s)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < BENCH_OP_COUNT; i++) {
        if (bench_hist_init(&s->op[i].hist) != 0) {
            bench_stats_fini(s);
            return -ENOMEM;
        }
    }
    return 0;
}

void bench_stats_fini(struct bench_stats *s)
{
    for (int i = 0; i < BENCH_OP_COUNT; i++)
        bench_hist_fini(&s->op[i].hist);
}

void bench_stats_merge(struct bench_stats *dst, const struct bench_stats *src)
{
    for (int i = 0; i < BENCH_OP_COUNT; i++) {
        struct bench_op_stats *d = &dst->op[i];
        const struct bench_op_stats *s = &src->op[i];
        d->count += s->count;
        d->hits += s->hits;
        d->misses += s->misses;
        d->errors += s->errors;
        d->verify_errors += s->verify_errors;
        d->moved += s->moved;
        d->ask += s->ask;
        d->bytes_out += s->bytes_out;
        d->bytes_in += s->bytes_in;
        bench_hist_merge(&d->hist, &s->hist);
    }
    dst->sent += src->sent;
    dst->replies += src->replies;
    dst->conn_errors += src->conn_errors;
    dst->unsent += src->unsent;
}

int bench_result_init(struct bench_result *r)
{
    memset(r, 0, sizeof *r);
    return bench_stats_init(&r->stats);
}

void bench_result_fini(struct bench_result *r)
{
    bench_stats_fini(&r->stats);
}

/* Writes "what: reason" to buf unless it holds an error already. */
static void error_note(char *buf, size_t len, const char *what, int err)
{
    if (buf[0])
        return;
    if (err)
        snprintf(buf, len, "%s: %s", what, strerror(err));
    else
        snprintf(buf, len, "%s", what);
}

static void note_error(struct worker *w, const char *what, int err)
{
    error_note(w->error, sizeof w->error, what, err);
}

static void client_finish(struct worker *w, struct client *c)
{
    if (c->finished)
        return;
    c->finished = true;
    w->active--;
}

/* A lost link ends its client: its requests in flight stay unanswered. */
static void link_fail(struct worker *w, struct link *l, const char *what, int err)
{
    note_error(w, what, err);
    if (l->closed)
        return;
    close(l->fd);
    l->fd = -1;
    l->closed = true;
    w->stats.conn_errors++;
    client_finish(w, l->client);
}

/* When request number `i` of the client is due under the rate limit. */
static uint64_t due_ns(const struct client *c, uint64_t rate, uint64_t i)
{
    return c->due_base_ns + (uint64_t)((unsigned __int128)i * NS_PER_S / rate);
}

/* Whether the client has requests left to send, now or later: budget
 * left and, past the deadline, (rate limit) a backlog of requests due before it. */
static bool conn_has_more(const struct worker *w, const struct client *c)
{
    const struct bench_config *cfg = w->run->cfg;
    if (c->sent >= c->limit)
        return false;
    if (!cfg->rate_limit)
        return !w->stopping;
    if (w->drain_over)
        return false;
    return !w->run->end_ns || due_ns(c, cfg->rate_limit, c->sent) < w->run->end_ns;
}

/* A client is done when it will send nothing more and awaits nothing (its
 * one link's ring is empty; cluster: nothing pending anywhere). */
static void conn_check_done(struct worker *w, struct client *c)
{
    uint64_t pending = w->map ? c->pending : c->links[0]->q_len;
    if (!c->finished && pending == 0 && !conn_has_more(w, c))
        client_finish(w, c);
}

/* Whether the client can send nothing new now: its pipeline is full, or
 * (cluster) its backlogs are. */
static bool client_blocked(const struct worker *w, const struct client *c)
{
    if (w->map)
        return c->backlog >= w->run->cfg->pipeline;
    return c->links[0]->q_len >= w->run->cfg->pipeline;
}

static void set_interest(struct worker *w, struct link *l, bool want_write)
{
    if (l->want_write == want_write)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want_write ? EPOLLOUT : 0), .data.ptr = l};
    if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, l->fd, &ev) != 0) {
        link_fail(w, l, "epoll_ctl", errno);
        return;
    }
    l->want_write = want_write;
}

static void conn_flush(struct worker *w, struct link *l)
{
    while (l->out_off < l->out_len) {
        ssize_t n = send(l->fd, l->out + l->out_off, l->out_len - l->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            l->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_interest(w, l, true);
            return;
        }
        link_fail(w, l, "send", n < 0 ? errno : EPIPE);
        return;
    }
    l->out_off = l->out_len = 0;
    set_interest(w, l, false);
}

/* Draws the client's next request into f and its key into w->key; returns
 * the key's length. The request counts as sent from here on. */
static size_t client_next(struct worker *w, struct client *c, uint64_t start_ns, struct inflight *f)
{
    const struct bench_config *cfg = w->run->cfg;
    bool is_set = c->cycle < cfg->ratio_set;
    if (++c->cycle == cfg->ratio_set + cfg->ratio_get)
        c->cycle = 0;
    uint64_t key = bench_keys_next(is_set ? &c->set_keys : &c->get_keys, &c->rng);
    size_t klen = bench_proto_key(w->key, cfg->key_prefix, w->prefix_len, key);
    uint32_t vlen = 0;
    if (is_set) {
        vlen = cfg->data_size_min;
        if (cfg->data_size_max > vlen)
            vlen += (uint32_t)bench_rng_below(&c->rng, cfg->data_size_max - vlen + 1);
    }
    *f = (struct inflight){
        .start_ns = start_ns, .key = key, .vlen = vlen, .op = is_set ? BENCH_OP_SET : BENCH_OP_GET};
    c->sent++;
    w->stats.sent++;
    return klen;
}

/* Appends request f, whose key (klen bytes) is in w->key, to l's output
 * (after ASKING when f asks) and to its ring. */
static void link_add(struct worker *w, struct link *l, const struct inflight *f, size_t klen)
{
    const struct bench_config *cfg = w->run->cfg;
    char *start = l->out + l->out_len, *dst = start, *end;
    if (f->asking) {
        memcpy(dst, asking_request, ASKING_LEN);
        dst += ASKING_LEN;
    }
    if (f->op == BENCH_OP_SET) {
        const char *val = w->filler;
        if (cfg->verify) {
            bench_proto_value_fill(w->value, f->vlen, w->key, klen);
            val = w->value;
        }
        end = bench_proto_set(dst, cfg->protocol, w->key, klen, val, f->vlen);
    } else {
        end = bench_proto_get(dst, cfg->protocol, w->key, klen);
    }
    l->out_len += (size_t)(end - start);
    w->stats.op[f->op].bytes_out += (uint64_t)(end - start);
    uint32_t slot = (l->q_head + l->q_len) % cfg->pipeline;
    l->q[slot] = *f;
    l->q_len++;
}

/* Whether the client's next request may go now; *start_ns is when it counts
 * from (now, or its due time under a rate limit). */
static bool next_due(const struct worker *w, const struct client *c, uint64_t now,
                     uint64_t *start_ns)
{
    uint64_t rate = w->run->cfg->rate_limit;
    *start_ns = rate ? due_ns(c, rate, c->sent) : now;
    return *start_ns <= now;
}

/* Sends what the pipeline, the budget and the rate limit allow (one link). */
static void conn_pump(struct worker *w, struct client *c, uint64_t now)
{
    const struct bench_config *cfg = w->run->cfg;
    struct link *l = c->links[0];
    if (c->finished || l->out_off < l->out_len)
        return;
    l->out_off = l->out_len = 0;
    while (l->q_len < cfg->pipeline && conn_has_more(w, c)) {
        uint64_t start;
        if (!next_due(w, c, now, &start))
            break;
        struct inflight f;
        size_t klen = client_next(w, c, start, &f);
        link_add(w, l, &f, klen);
    }
    if (l->out_len) {
        l->last_io_ns = now;
        conn_flush(w, l);
    }
}

static bool reply_is_ok(enum bench_protocol p, const struct bench_reply *r)
{
    if (r->kind != BENCH_REPLY_STATUS)
        return false;
    if (p == BENCH_PROTO_REDIS)
        return r->len == 2 && memcmp(r->text, "OK", 2) == 0;
    return r->len == 6 && memcmp(r->text, "STORED", 6) == 0;
}

/* The final reply to the oldest request of l: recorded and judged (the
 * first error reply's text, and how long that request took from its send,
 * or its due time under a rate limit, is kept: a run with error replies
 * and no other problem names it). */
static void handle_reply(struct worker *w, struct link *l, const struct bench_reply *r,
                         size_t consumed, uint64_t now)
{
    const struct bench_config *cfg = w->run->cfg;
    if (r->kind == BENCH_REPLY_ERROR && !w->error_reply[0]) {
        const struct inflight *e = &l->q[l->q_head];
        snprintf(w->error_reply, sizeof w->error_reply, "error reply after %.1f ms: %.*s",
                 now > e->start_ns ? (double)(now - e->start_ns) / 1e6 : 0.0,
                 (int)(r->len < 100 ? r->len : 100), r->text);
    }
    struct inflight *f = &l->q[l->q_head];
    l->q_head = (l->q_head + 1) % cfg->pipeline;
    l->q_len--;
    struct bench_op_stats *s = &w->stats.op[f->op];
    bench_hist_record(&s->hist, now > f->start_ns ? now - f->start_ns : 0);
    s->count++;
    s->bytes_in += consumed;
    w->stats.replies++;
    if (f->op == BENCH_OP_SET) {
        if (!reply_is_ok(cfg->protocol, r))
            s->errors++;
        return;
    }
    if (r->kind == BENCH_REPLY_NIL) {
        s->misses++;
        return;
    }
    if (r->kind != BENCH_REPLY_VALUE) {
        s->errors++;
        return;
    }
    s->hits++;
    if (cfg->verify) {
        size_t klen = bench_proto_key(w->key, cfg->key_prefix, w->prefix_len, f->key);
        bool key_ok = !r->key || (r->key_len == klen && memcmp(r->key, w->key, klen) == 0);
        if (!key_ok || !bench_proto_value_check(r->text, r->len, w->key, klen))
            s->verify_errors++;
    }
}

static struct link *link_open(struct worker *w, struct client *c, uint32_t node);

/* Appends e to the ring, growing it when full (rings hold at most a
 * client's requests in flight plus its backlog, so growth stops). */
static int fifo_push(struct fifo *f, const struct inflight *e)
{
    if (f->len == f->cap) {
        uint32_t cap = f->cap ? f->cap * 2 : 16;
        struct inflight *q = malloc(sizeof *q * cap);
        if (!q)
            return -ENOMEM;
        for (uint32_t i = 0; i < f->len; i++)
            q[i] = f->q[(f->head + i) % f->cap];
        free(f->q);
        f->q = q;
        f->cap = cap;
        f->head = 0;
    }
    f->q[(f->head + f->len) % f->cap] = *e;
    f->len++;
    return 0;
}

static struct inflight fifo_pop(struct fifo *f)
{
    struct inflight e = f->q[f->head];
    f->head = (f->head + 1) % f->cap;
    f->len--;
    return e;
}

/* The link f goes to: the ASK target, else its key's slot's master (the key
 * is in w->key, klen bytes). NULL when it cannot be opened (the client is
 * then finished). */
static struct link *route(struct worker *w, struct client *c, const struct inflight *f, size_t klen)
{
    uint32_t node = f->asking ? f->ask_node : w->map->slot_node[bench_cluster_slot(w->key, klen)];
    struct link *l = c->links[node];
    return l ? l : link_open(w, c, node);
}

/* Whether l takes another request now: pipeline room and no output stuck. */
static bool link_has_room(const struct worker *w, const struct link *l)
{
    return !l->closed && !l->want_write && l->q_len < w->run->cfg->pipeline;
}

/* Writes f (key in w->key) to l, noting l for the flush at the end of the pump. */
static void cluster_send(struct worker *w, struct client *c, struct link *l,
                         const struct inflight *f, size_t klen)
{
    if (l->out_len == 0)
        c->dirty[c->ndirty++] = l;
    link_add(w, l, f, klen);
}

/* Puts f on its link, or at the end of that link's backlog when the link is
 * full or has a backlog already; false when the client cannot go on. */
static bool cluster_place(struct worker *w, struct client *c, const struct inflight *f, size_t klen)
{
    struct link *l = route(w, c, f, klen);
    if (!l)
        return false;
    if (l->backlog.len == 0 && link_has_room(w, l)) {
        cluster_send(w, c, l, f, klen);
        return true;
    }
    if (fifo_push(&l->backlog, f) != 0) {
        note_error(w, "request backlog", ENOMEM);
        client_finish(w, c);
        return false;
    }
    c->backlog++;
    return true;
}

/* Sends from every link's backlog what its pipeline takes. */
static void drain_backlogs(struct worker *w, struct client *c)
{
    const struct bench_config *cfg = w->run->cfg;
    for (uint32_t j = 0; c->backlog > 0 && j < w->map->nnodes; j++) {
        struct link *l = c->links[j];
        while (l && l->backlog.len > 0 && link_has_room(w, l)) {
            struct inflight f = fifo_pop(&l->backlog);
            c->backlog--;
            cluster_send(w, c, l, &f,
                         bench_proto_key(w->key, cfg->key_prefix, w->prefix_len, f.key));
        }
    }
}

/* Cluster: backlogs first, then redirected requests, then new ones while
 * fewer than `pipeline` wait in backlogs; flushes every link written to. */
static void cluster_pump(struct worker *w, struct client *c, uint64_t now)
{
    const struct bench_config *cfg = w->run->cfg;
    if (c->finished)
        return;
    drain_backlogs(w, c);
    bool ok = true;
    while (ok && c->redirected.len > 0) {
        struct inflight f = fifo_pop(&c->redirected);
        ok =
            cluster_place(w, c, &f, bench_proto_key(w->key, cfg->key_prefix, w->prefix_len, f.key));
    }
    while (ok && c->backlog < cfg->pipeline && conn_has_more(w, c)) {
        uint64_t start;
        if (!next_due(w, c, now, &start))
            break;
        struct inflight f;
        size_t klen = client_next(w, c, start, &f);
        c->pending++;
        ok = cluster_place(w, c, &f, klen);
    }
    for (uint32_t i = 0; i < c->ndirty; i++) {
        struct link *l = c->dirty[i];
        if (l->closed)
            continue;
        l->last_io_ns = now;
        conn_flush(w, l);
    }
    c->ndirty = 0;
}

/* Pops the oldest request of l into *f (its reply was a redirection). */
static void link_pop(struct worker *w, struct link *l, struct inflight *f)
{
    *f = l->q[l->q_head];
    l->q_head = (l->q_head + 1) % w->run->cfg->pipeline;
    l->q_len--;
}

/* A final reply to a redirection that cannot be followed: an error reply. */
static void redirect_failed(struct worker *w, struct link *l, const struct inflight *f,
                            size_t consumed, uint64_t now)
{
    struct bench_op_stats *s = &w->stats.op[f->op];
    bench_hist_record(&s->hist, now > f->start_ns ? now - f->start_ns : 0);
    s->count++;
    s->errors++;
    s->bytes_in += consumed;
    w->stats.replies++;
    l->client->pending--;
}

/* Follows -MOVED or -ASK: the request waits to go to the node named. */
static void follow_redirect(struct worker *w, struct link *l, enum bench_redirect_kind kind,
                            const struct bench_redirect *rd, size_t consumed, uint64_t now)
{
    struct inflight f;
    link_pop(w, l, &f);
    struct bench_op_stats *s = &w->stats.op[f.op];
    if (kind == BENCH_REDIRECT_MOVED)
        s->moved++;
    else
        s->ask++;
    const char *host = rd->host;
    size_t hlen = rd->host_len;
    if (hlen == 0) { /* ":port": the host of the node that answered */
        host = w->map->nodes[l->node].host;
        hlen = strlen(host);
    }
    int node = bench_cluster_node(w->map, host, hlen, rd->port);
    if (node < 0 || ++f.redirects > MAX_REDIRECTS) {
        note_error(w,
                   node < 0 ? "a redirection to more masters than ringkv-bench keeps"
                            : "a request redirected more than 16 times",
                   0);
        redirect_failed(w, l, &f, consumed, now);
        return;
    }
    s->bytes_in += consumed;
    f.asking = kind == BENCH_REDIRECT_ASK;
    f.ask_node = (uint16_t)node;
    if (kind == BENCH_REDIRECT_MOVED)
        w->map->slot_node[rd->slot] = (uint16_t)node;
    if (fifo_push(&l->client->redirected, &f) != 0) {
        note_error(w, "redirect queue", ENOMEM);
        client_finish(w, l->client);
    }
}

/* Cluster: ASKING's +OK is swallowed, MOVED and ASK followed, the rest judged. */
static void cluster_reply(struct worker *w, struct link *l, const struct bench_reply *r,
                          size_t consumed, uint64_t now)
{
    struct inflight *f = &l->q[l->q_head];
    if (f->asking) {
        f->asking = 0;
        w->stats.op[f->op].bytes_in += consumed;
        if (!reply_is_ok(BENCH_PROTO_REDIS, r))
            note_error(w, "ASKING was refused", 0);
        return;
    }
    if (r->kind == BENCH_REPLY_ERROR) {
        struct bench_redirect rd;
        enum bench_redirect_kind kind = bench_cluster_parse_redirect(r->text, r->len, &rd);
        if (kind == BENCH_REDIRECT_MOVED || kind == BENCH_REDIRECT_ASK) {
            follow_redirect(w, l, kind, &rd, consumed, now);
            return;
        }
    }
    handle_reply(w, l, r, consumed, now);
    l->client->pending--;
}

static int grow_input(struct link *l, size_t need)
{
    size_t cap = l->in_cap * 2 > need ? l->in_cap * 2 : need;
    char *p = realloc(l->in, cap);
    if (!p)
        return -ENOMEM;
    l->in = p;
    l->in_cap = cap;
    return 0;
}

/* Parses every whole reply in the input buffer; keeps a partial one. */
static void conn_parse(struct worker *w, struct link *l, uint64_t now)
{
    const struct bench_config *cfg = w->run->cfg;
    size_t pos = 0;
    while (pos < l->in_len) {
        if (l->q_len == 0) {
            link_fail(w, l, "reply without a request", 0);
            return;
        }
        struct bench_reply r;
        size_t consumed = 0, need = 0;
        enum bench_reply_status st =
            bench_proto_parse(cfg->protocol, l->in + pos, l->in_len - pos, &r, &consumed, &need);
        if (st == BENCH_REPLY_MORE) {
            if (need > l->in_cap && grow_input(l, need) != 0)
                link_fail(w, l, "reply buffer", ENOMEM);
            break;
        }
        if (st == BENCH_REPLY_BAD) {
            link_fail(w, l, "unparsable reply from server", 0);
            return;
        }
        if (w->map)
            cluster_reply(w, l, &r, consumed, now);
        else
            handle_reply(w, l, &r, consumed, now);
        pos += consumed;
    }
    if (pos) {
        memmove(l->in, l->in + pos, l->in_len - pos);
        l->in_len -= pos;
    }
}

/* Reads once and handles the replies; returns the time the bytes arrived. */
static uint64_t conn_read(struct worker *w, struct link *l)
{
    if (l->in_len == l->in_cap && grow_input(l, l->in_cap + 1) != 0) {
        link_fail(w, l, "reply buffer", ENOMEM);
        return now_ns();
    }
    ssize_t n;
    do {
        n = recv(l->fd, l->in + l->in_len, l->in_cap - l->in_len, 0);
    } while (n < 0 && errno == EINTR);
    uint64_t now = now_ns();
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return now;
    if (n <= 0) {
        link_fail(w, l, n == 0 ? "server closed the connection" : "recv", n == 0 ? 0 : errno);
        return now;
    }
    l->in_len += (size_t)n;
    l->last_io_ns = now;
    conn_parse(w, l, now);
    return now;
}

static void client_pump(struct worker *w, struct client *c, uint64_t now)
{
    if (w->map)
        cluster_pump(w, c, now);
    else
        conn_pump(w, c, now);
}

static void publish_progress(struct worker *w)
{
    uint64_t lat = 0, bytes = 0;
    for (int i = 0; i < BENCH_OP_COUNT; i++) {
        lat += w->stats.op[i].hist.sum_ns;
        bytes += w->stats.op[i].bytes_in + w->stats.op[i].bytes_out;
    }
    atomic_store_explicit(&w->progress.replies, w->stats.replies, memory_order_relaxed);
    atomic_store_explicit(&w->progress.latency_ns, lat, memory_order_relaxed);
    atomic_store_explicit(&w->progress.bytes, bytes, memory_order_relaxed);
}

/* How long epoll may sleep: until the deadline, the next due request or scan. */
static uint64_t next_wakeup(struct worker *w, uint64_t now)
{
    const struct bench_config *cfg = w->run->cfg;
    const struct run *run = w->run;
    uint64_t wake = w->next_scan_ns;
    if (!w->stopping && run->end_ns && run->end_ns < wake)
        wake = run->end_ns;
    if (cfg->rate_limit && w->stopping && !w->drain_over && run->drain_end_ns < wake)
        wake = run->drain_end_ns;
    if (cfg->rate_limit && !w->drain_over) {
        for (uint32_t i = 0; i < w->nclients; i++) {
            struct client *c = &w->clients[i];
            if (c->finished || client_blocked(w, c) || !conn_has_more(w, c))
                continue;
            uint64_t due = due_ns(c, cfg->rate_limit, c->sent);
            if (due < wake)
                wake = due;
        }
    }
    return wake > now ? wake - now : 0;
}

/* Links a client has: one, or (cluster) one per node of the worker's map. */
static uint32_t client_nlinks(const struct worker *w)
{
    return w->map ? w->map->nnodes : 1;
}

/* Gives up on a client whose link has had requests in flight and no traffic for STALL_NS. */
static void scan_stalled(struct worker *w, struct client *c, uint64_t now)
{
    for (uint32_t j = 0; j < client_nlinks(w) && !c->finished; j++) {
        struct link *l = c->links[j];
        if (l && !l->closed && l->q_len > 0 && now - l->last_io_ns >= STALL_NS)
            link_fail(w, l, "no reply from the server for 10 s", 0);
    }
}

/* After each loop turn: rate-limited sends; at the deadline, at the end of
 * the drain and once a second, a scan for stalled and finished clients. */
static void worker_tick(struct worker *w, uint64_t now)
{
    const struct bench_config *cfg = w->run->cfg;
    bool scan = false;
    if (!w->stopping && w->run->end_ns && now >= w->run->end_ns) {
        w->stopping = true;
        scan = true;
    }
    if (cfg->rate_limit && w->stopping && !w->drain_over && now >= w->run->drain_end_ns) {
        w->drain_over = true;
        scan = true;
    }
    if (now >= w->next_scan_ns) {
        w->next_scan_ns = now + NS_PER_S;
        scan = true;
    }
    if (!scan && !cfg->rate_limit)
        return;
    for (uint32_t i = 0; i < w->nclients; i++) {
        struct client *c = &w->clients[i];
        if (c->finished)
            continue;
        if (scan)
            scan_stalled(w, c, now);
        if (c->finished)
            continue;
        if (cfg->rate_limit)
            client_pump(w, c, now);
        conn_check_done(w, c);
    }
}

/* Rate limit: requests due before the deadline that were never sent. */
static uint64_t conn_unsent(const struct worker *w, const struct client *c)
{
    const struct bench_config *cfg = w->run->cfg;
    uint64_t end = w->run->end_ns;
    if (!cfg->rate_limit || !end || c->sent >= c->limit || end <= c->due_base_ns)
        return 0;
    /* first request number due at or after the deadline */
    uint64_t n = (uint64_t)((unsigned __int128)(end - c->due_base_ns) * cfg->rate_limit / NS_PER_S);
    while (n > 0 && due_ns(c, cfg->rate_limit, n - 1) >= end)
        n--;
    while (due_ns(c, cfg->rate_limit, n) < end)
        n++;
    if (n > c->limit)
        n = c->limit;
    return n > c->sent ? n - c->sent : 0;
}

static void worker_loop(struct worker *w)
{
    const struct bench_config *cfg = w->run->cfg;
    struct epoll_event events[MAX_EVENTS];
    uint64_t now = now_ns();
    uint64_t nclients = (uint64_t)cfg->threads * cfg->clients;
    w->next_scan_ns = now + NS_PER_S;
    for (uint32_t i = 0; i < w->nclients; i++) {
        struct client *c = &w->clients[i];
        for (uint32_t j = 0; j < client_nlinks(w); j++)
            if (c->links[j])
                c->links[j]->last_io_ns = now;
        if (cfg->rate_limit) /* stagger the clients over one period */
            c->due_base_ns = w->run->start_ns + (uint64_t)((unsigned __int128)NS_PER_S * c->index /
                                                           (cfg->rate_limit * nclients));
        client_pump(w, c, now);
        conn_check_done(w, c);
    }
    while (w->active > 0) {
        uint64_t wait = next_wakeup(w, now);
        struct timespec ts = {.tv_sec = (time_t)(wait / NS_PER_S),
                              .tv_nsec = (long)(wait % NS_PER_S)};
        int n = epoll_pwait2(w->epfd, events, MAX_EVENTS, &ts, NULL);
        if (n < 0 && errno != EINTR) {
            note_error(w, "epoll_pwait2", errno);
            break;
        }
        for (int i = 0; i < n; i++) {
            struct link *l = events[i].data.ptr;
            if (l->closed)
                continue;
            uint64_t t = 0;
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                t = conn_read(w, l);
            if (!l->closed && (events[i].events & EPOLLOUT))
                conn_flush(w, l);
            struct client *c = l->client;
            if (!c->finished) {
                client_pump(w, c, t ? t : now_ns());
                conn_check_done(w, c);
            }
        }
        now = now_ns();
        worker_tick(w, now);
        publish_progress(w);
    }
    w->end_ns = now_ns();
    for (uint32_t i = 0; i < w->nclients; i++)
        w->stats.unsent += conn_unsent(w, &w->clients[i]);
    publish_progress(w);
}

static int connect_one(const struct sockaddr_storage *addr, socklen_t addr_len, int *fd_out)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = 0;
    if (connect(fd, (const struct sockaddr *)addr, addr_len) != 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
            goto fail;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int n;
        do {
            n = poll(&pfd, 1, CONNECT_TIMEOUT_MS);
        } while (n < 0 && errno == EINTR);
        if (n <= 0) {
            rc = n == 0 ? -ETIMEDOUT : -errno;
            goto fail;
        }
        int soerr = 0;
        socklen_t len = sizeof soerr;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
        if (soerr) {
            rc = -soerr;
            goto fail;
        }
    }
    *fd_out = fd;
    return 0;
fail:
    close(fd);
    return rc;
}

/* Requests client `index` sends: its share of the range for allkeys. */
static uint64_t conn_limit(const struct bench_config *cfg, uint32_t index, uint32_t nclients)
{
    if (cfg->requests_allkeys) {
        struct bench_keygen slice;
        bench_keys_init(&slice, BENCH_KEYS_PARALLEL, &cfg->keys, index, nclients);
        return bench_keys_lap(&slice);
    }
    return cfg->requests ? cfg->requests : UINT64_MAX;
}

/* Appends a RESP array of argc bulk strings at dst; returns its end. */
static char *resp_command(char *dst, int argc, const char *const *argv, const size_t *lens)
{
    dst += sprintf(dst, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) {
        dst += sprintf(dst, "$%zu\r\n", lens[i]);
        memcpy(dst, argv[i], lens[i]);
        dst += lens[i];
        *dst++ = '\r';
        *dst++ = '\n';
    }
    return dst;
}

/* AUTH as memtier sends it: "USER:PASSWORD" is AUTH USER PASSWORD, "PASSWORD"
 * (no colon) AUTH PASSWORD, and ":PASSWORD" AUTH PASSWORD with any colons in it. */
static char *auth_command(char *dst, const char *creds)
{
    const char *colon = creds[0] == ':' ? NULL : strchr(creds, ':');
    if (creds[0] == ':')
        creds++;
    if (!colon) {
        const char *argv[] = {"AUTH", creds};
        const size_t lens[] = {4, strlen(creds)};
        return resp_command(dst, 2, argv, lens);
    }
    const char *argv[] = {"AUTH", creds, colon + 1};
    const size_t lens[] = {4, (size_t)(colon - creds), strlen(colon + 1)};
    return resp_command(dst, 3, argv, lens);
}

/* Waits until fd is ready for events or the deadline passes; 0 or a negative errno. */
static int wait_fd(int fd, short events, uint64_t deadline_ns)
{
    for (;;) {
        uint64_t now = now_ns();
        if (now >= deadline_ns)
            return -ETIMEDOUT;
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, (int)((deadline_ns - now + 999999) / 1000000));
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

static int send_blocking(int fd, const char *p, size_t len, uint64_t deadline_ns)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = wait_fd(fd, POLLOUT, deadline_ns);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Receives more bytes into l->in (room for them required), waiting until
 * the deadline; 0 or a negative errno. */
static int recv_some(struct link *l, uint64_t deadline_ns)
{
    for (;;) {
        ssize_t n = recv(l->fd, l->in + l->in_len, l->in_cap - l->in_len, 0);
        if (n > 0) {
            l->in_len += (size_t)n;
            return 0;
        }
        if (n == 0)
            return -ECONNRESET;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = wait_fd(l->fd, POLLIN, deadline_ns);
        if (rc != 0)
            return rc;
    }
}

/* Reads one reply into l->in; 0 with *reply set (valid until l->in changes), or
 * a negative errno. The caller has sent nothing else, so nothing may follow it. */
static int recv_reply(struct link *l, struct bench_reply *reply, uint64_t deadline_ns)
{
    for (;;) {
        size_t consumed = 0, need = 0;
        enum bench_reply_status st =
            bench_proto_parse(BENCH_PROTO_REDIS, l->in, l->in_len, reply, &consumed, &need);
        if (st == BENCH_REPLY_BAD)
            return -EPROTO;
        if (st == BENCH_REPLY_DONE)
            return consumed == l->in_len ? 0 : -EPROTO;
        if (l->in_len == l->in_cap)
            return -EMSGSIZE;
        int rc = recv_some(l, deadline_ns);
        if (rc != 0)
            return rc;
    }
}

/* Sends one set-up command and checks that the server answers +OK; a
 * problem is described in err (errlen bytes). */
static int setup_command(struct link *l, const char *req, size_t len, const char *what, char *err,
                         size_t errlen)
{
    uint64_t deadline = now_ns() + CONNECT_TIMEOUT_MS * 1000000ull;
    struct bench_reply r;
    int rc = send_blocking(l->fd, req, len, deadline);
    if (rc == 0)
        rc = recv_reply(l, &r, deadline);
    if (rc != 0) {
        error_note(err, errlen, what, -rc);
        return rc;
    }
    bool ok = r.kind == BENCH_REPLY_STATUS && r.len == 2 && memcmp(r.text, "OK", 2) == 0;
    l->in_len = 0;
    if (ok)
        return 0;
    char msg[128];
    snprintf(msg, sizeof msg, "%s: the server answered '%.*s'", what,
             (int)(r.len < 80 ? r.len : 80), r.text);
    error_note(err, errlen, msg, 0);
    return r.kind == BENCH_REPLY_ERROR ? -EACCES : -EPROTO;
}

/* --authenticate and --select-db: AUTH, then SELECT, before any load. */
static int conn_handshake(const struct bench_config *cfg, struct link *l, char *err, size_t errlen)
{
    if (cfg->auth) {
        char *req = malloc(2 * strlen(cfg->auth) + 64);
        if (!req) {
            error_note(err, errlen, "AUTH request", ENOMEM);
            return -ENOMEM;
        }
        int rc = setup_command(l, req, (size_t)(auth_command(req, cfg->auth) - req),
                               "AUTH (--authenticate)", err, errlen);
        free(req);
        if (rc != 0)
            return rc;
    }
    if (cfg->select_db) {
        char db[16], req[64], what[48];
        int dlen = snprintf(db, sizeof db, "%u", cfg->select_db);
        const char *argv[] = {"SELECT", db};
        const size_t lens[] = {6, (size_t)dlen};
        snprintf(what, sizeof what, "SELECT %u (--select-db)", cfg->select_db);
        return setup_command(l, req, (size_t)(resp_command(req, 2, argv, lens) - req), what, err,
                             errlen);
    }
    return 0;
}

/* A link's buffers; 0 or -ENOMEM. */
static int link_init(const struct bench_config *cfg, struct link *l, struct client *c)
{
    l->fd = -1;
    l->client = c;
    size_t req = bench_opts_max_key_len(cfg) + cfg->data_size_max + BENCH_PROTO_OVERHEAD;
    if (cfg->cluster_mode)
        req += ASKING_LEN;
    l->out_cap = req * cfg->pipeline;
    l->out = malloc(l->out_cap);
    l->in_cap = IN_BUF_MIN;
    l->in = malloc(l->in_cap);
    l->q = calloc(cfg->pipeline, sizeof *l->q);
    return l->out && l->in && l->q ? 0 : -ENOMEM;
}

static void link_free(struct link *l)
{
    if (!l)
        return;
    if (l->fd >= 0)
        close(l->fd);
    free(l->out);
    free(l->in);
    free(l->q);
    free(l->backlog.q);
    free(l);
}

/* Resolves host:port into *a; 0, or -EINVAL with the reason in err. */
static int resolve_addr(const char *host, const char *port, struct node_addr *a, char *err,
                        size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s:%s: %s", host, port, gai_strerror(rc));
        return -EINVAL;
    }
    memcpy(&a->addr, ai->ai_addr, ai->ai_addrlen);
    a->len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

/* Creates, connects and registers a link to addr (name for messages). */
static struct link *link_connect(struct worker *w, struct client *c, const struct node_addr *a,
                                 const char *name)
{
    const struct bench_config *cfg = w->run->cfg;
    struct link *l = calloc(1, sizeof *l);
    if (!l || link_init(cfg, l, c) != 0) {
        note_error(w, "connection buffers", ENOMEM);
        link_free(l);
        return NULL;
    }
    int rc = connect_one(&a->addr, a->len, &l->fd);
    if (rc != 0) {
        char what[96];
        snprintf(what, sizeof what, "connect to %.80s", name);
        note_error(w, what, -rc);
    }
    if (rc == 0)
        rc = conn_handshake(cfg, l, w->error, sizeof w->error);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
    if (rc == 0 && epoll_ctl(w->epfd, EPOLL_CTL_ADD, l->fd, &ev) != 0) {
        note_error(w, "epoll_ctl", errno);
        rc = -1;
    }
    if (rc != 0) {
        link_free(l);
        return NULL;
    }
    return l;
}

/* Cluster: opens the client's link to a node of the worker's map; NULL (the
 * client finished, counted as a lost connection mid-run) when it cannot. */
static struct link *link_open(struct worker *w, struct client *c, uint32_t node)
{
    const struct bench_cluster_node *n = &w->map->nodes[node];
    char port[8], name[BENCH_CLUSTER_MAX_HOST + 16];
    snprintf(port, sizeof port, "%u", n->port);
    snprintf(name, sizeof name, "%s:%s", n->host, port);
    struct node_addr *a = &w->addrs[node];
    struct link *l = NULL;
    char err[320] = "";
    if (a->len || resolve_addr(n->host, port, a, err, sizeof err) == 0)
        l = link_connect(w, c, a, name);
    if (!l) {
        note_error(w, err, 0);
        if (w->running) /* mid-run: the client's requests stay unanswered */
            w->stats.conn_errors++;
        client_finish(w, c);
        return NULL;
    }
    l->node = (uint16_t)node;
    c->links[node] = l;
    return l;
}

static int client_setup(struct worker *w, struct client *c, uint32_t index)
{
    const struct bench_config *cfg = w->run->cfg;
    uint32_t nclients = cfg->threads * cfg->clients;
    c->index = index;
    bench_rng_seed(&c->rng, cfg->seed + (cfg->distinct_client_seed ? index : 0));
    if (bench_keys_init(&c->set_keys, cfg->set_pattern, &cfg->keys, index, nclients) != 0 ||
        bench_keys_init(&c->get_keys, cfg->get_pattern, &cfg->keys, index, nclients) != 0) {
        note_error(w, "key pattern does not fit the key range", 0);
        return -EINVAL;
    }
    c->limit = conn_limit(cfg, index, nclients);
    uint32_t nlinks = w->map ? BENCH_CLUSTER_MAX_NODES : 1;
    c->links = calloc(nlinks, sizeof *c->links);
    c->dirty = w->map ? calloc(nlinks, sizeof *c->dirty) : NULL;
    if (!c->links || (w->map && !c->dirty)) {
        note_error(w, "client buffers", ENOMEM);
        return -ENOMEM;
    }
    if (!w->map) {
        char name[320];
        snprintf(name, sizeof name, "%s:%s", cfg->host, cfg->port);
        struct node_addr a = {.addr = w->run->addr, .len = w->run->addr_len};
        c->links[0] = link_connect(w, c, &a, name);
        return c->links[0] ? 0 : -ECONNREFUSED;
    }
    for (uint32_t node = 0; node < w->map->nnodes; node++)
        if (!link_open(w, c, node))
            return -ECONNREFUSED;
    return 0;
}

static int worker_setup(struct worker *w)
{
    const struct bench_config *cfg = w->run->cfg;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0) {
        note_error(w, "epoll_create1", errno);
        return -errno;
    }
    w->prefix_len = strlen(cfg->key_prefix);
    w->key = malloc(w->prefix_len + BENCH_PROTO_KEY_DIGITS + 1);
    w->filler = malloc(cfg->data_size_max);
    w->value = malloc(cfg->data_size_max);
    w->clients = calloc(cfg->clients, sizeof *w->clients);
    if (w->run->map) {
        w->map = malloc(sizeof *w->map);
        w->addrs = calloc(BENCH_CLUSTER_MAX_NODES, sizeof *w->addrs);
        if (w->map)
            memcpy(w->map, w->run->map, sizeof *w->map);
    }
    if (!w->key || !w->filler || !w->value || !w->clients ||
        (w->run->map && (!w->map || !w->addrs))) {
        note_error(w, "worker buffers", ENOMEM);
        return -ENOMEM;
    }
    bench_proto_filler(w->filler, cfg->data_size_max, cfg->seed ^ w->index);
    for (uint32_t i = 0; i < cfg->clients; i++) {
        w->nclients++;
        w->active++;
        int rc = client_setup(w, &w->clients[i], w->index * cfg->clients + i);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void worker_teardown(struct worker *w)
{
    for (uint32_t i = 0; i < w->nclients; i++) {
        struct client *c = &w->clients[i];
        for (uint32_t j = 0; c->links && j < (w->map ? BENCH_CLUSTER_MAX_NODES : 1); j++)
            link_free(c->links[j]);
        free(c->links);
        free(c->dirty);
        free(c->redirected.q);
    }
    free(w->clients);
    free(w->key);
    free(w->filler);
    free(w->value);
    free(w->map);
    free(w->addrs);
    if (w->epfd >= 0)
        close(w->epfd);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct run *run = w->run;
    w->setup_rc = worker_setup(w);
    pthread_mutex_lock(&run->lock);
    run->ready++;
    pthread_cond_signal(&run->cond);
    while (!run->go)
        pthread_cond_wait(&run->go_cond, &run->lock);
    pthread_mutex_unlock(&run->lock);
    w->running = true;
    if (!run->abort)
        worker_loop(w);
    worker_teardown(w);
    pthread_mutex_lock(&run->lock);
    run->finished++;
    pthread_cond_signal(&run->cond);
    pthread_mutex_unlock(&run->lock);
    return NULL;
}

static int resolve(struct run *run, struct bench_result *res)
{
    struct node_addr a;
    int rc = resolve_addr(run->cfg->host, run->cfg->port, &a, res->error, sizeof res->error);
    if (rc != 0)
        return rc;
    run->addr = a.addr;
    run->addr_len = a.len;
    return 0;
}

/* Reads the CLUSTER SLOTS reply on l into run->map; 0 or a negative errno. */
static int read_slots(struct run *run, struct link *l, char *err, size_t errlen)
{
    uint64_t deadline = now_ns() + CONNECT_TIMEOUT_MS * 1000000ull;
    for (;;) {
        size_t consumed;
        char why[200];
        enum bench_cluster_status st = bench_cluster_parse_slots(
            l->in, l->in_len, run->cfg->host, run->map, &consumed, why, sizeof why);
        if (st == BENCH_CLUSTER_OK)
            return 0;
        if (st == BENCH_CLUSTER_BAD) {
            snprintf(err, errlen, "CLUSTER SLOTS from %s:%s refused: %s", run->cfg->host,
                     run->cfg->port, why);
            return -EPROTO;
        }
        if (l->in_len == l->in_cap && grow_input(l, l->in_cap * 2) != 0)
            return -ENOMEM;
        int rc = recv_some(l, deadline);
        if (rc != 0)
            return rc;
    }
}

/* --cluster-mode: the slot map from CLUSTER SLOTS of the given server (after
 * AUTH when configured); 0, or a negative errno with res->error set. */
static int fetch_slots(struct run *run, struct bench_result *res)
{
    static const char req[] = "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";
    struct link l = {.fd = -1};
    run->map = malloc(sizeof *run->map);
    int rc = run->map && link_init(run->cfg, &l, NULL) == 0 ? 0 : -ENOMEM;
    if (rc == 0)
        rc = connect_one(&run->addr, run->addr_len, &l.fd);
    if (rc == 0)
        rc = conn_handshake(run->cfg, &l, res->error, sizeof res->error);
    if (rc == 0)
        rc = send_blocking(l.fd, req, sizeof req - 1, now_ns() + CONNECT_TIMEOUT_MS * 1000000ull);
    if (rc == 0)
        rc = read_slots(run, &l, res->error, sizeof res->error);
    if (rc != 0 && !res->error[0])
        snprintf(res->error, sizeof res->error, "CLUSTER SLOTS from %s:%s: %s", run->cfg->host,
                 run->cfg->port, strerror(-rc));
    if (l.fd >= 0)
        close(l.fd);
    free(l.out);
    free(l.in);
    free(l.q);
    return rc;
}

static void print_progress(const struct run *run, const char *label, FILE *out, uint64_t now,
                           uint64_t *last_replies, uint64_t *last_lat, uint64_t *last_ns)
{
    const struct bench_config *cfg = run->cfg;
    uint64_t replies = 0, lat = 0, bytes = 0;
    for (uint32_t i = 0; i < run->nworkers; i++) {
        const struct progress *p = &run->workers[i].progress;
        replies += atomic_load_explicit(&p->replies, memory_order_relaxed);
        lat += atomic_load_explicit(&p->latency_ns, memory_order_relaxed);
        bytes += atomic_load_explicit(&p->bytes, memory_order_relaxed);
    }
    double elapsed = (double)(now - run->start_ns) / 1e9;
    double interval = (double)(now - *last_ns) / 1e9;
    double done;
    if (cfg->test_time_s)
        done = elapsed / (double)cfg->test_time_s;
    else
        done = (double)replies / ((double)cfg->threads * cfg->clients *
                                  (cfg->requests ? (double)cfg->requests : 1.0));
    if (cfg->requests_allkeys)
        done = (double)replies / (double)(cfg->keys.max - cfg->keys.min + 1);
    uint64_t d_replies = replies - *last_replies;
    double lat_ms = d_replies ? (double)(lat - *last_lat) / (double)d_replies / 1e6 : 0.0;
    double avg_ms = replies ? (double)lat / (double)replies / 1e6 : 0.0;
    fprintf(out,
            "[%s %3.0f%%, %4.0f secs] %2u threads: %11llu ops, %8.0f (avg: %8.0f) ops/sec, "
            "%.2fMB/sec (avg), %.3f (avg: %.3f) msec latency\n",
            label, done > 1.0 ? 100.0 : done * 100.0, elapsed, cfg->threads,
            (unsigned long long)replies, interval > 0 ? (double)d_replies / interval : 0.0,
            elapsed > 0 ? (double)replies / elapsed : 0.0,
            elapsed > 0 ? (double)bytes / elapsed / 1048576.0 : 0.0, lat_ms, avg_ms);
    fflush(out);
    *last_replies = replies;
    *last_lat = lat;
    *last_ns = now;
}

/* Waits for every worker, printing progress once a second. */
static void watch(struct run *run, const char *label, FILE *progress)
{
    uint64_t last_replies = 0, last_lat = 0, last_ns = run->start_ns;
    pthread_mutex_lock(&run->lock);
    while (run->finished < run->nworkers) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += 1;
        int rc = pthread_cond_timedwait(&run->cond, &run->lock, &ts);
        if (rc == ETIMEDOUT && progress && run->finished < run->nworkers) {
            pthread_mutex_unlock(&run->lock);
            print_progress(run, label, progress, now_ns(), &last_replies, &last_lat, &last_ns);
            pthread_mutex_lock(&run->lock);
        }
    }
    pthread_mutex_unlock(&run->lock);
}

static int run_init(struct run *run, const struct bench_config *cfg)
{
    memset(run, 0, sizeof *run);
    run->cfg = cfg;
    run->workers = aligned_alloc(64, sizeof *run->workers * cfg->threads);
    if (!run->workers)
        return -ENOMEM;
    memset(run->workers, 0, sizeof *run->workers * cfg->threads);
    for (uint32_t i = 0; i < cfg->threads; i++) {
        struct worker *w = &run->workers[i];
        w->run = run;
        w->index = i;
        w->epfd = -1;
        if (bench_stats_init(&w->stats) != 0) {
            while (i--)
                bench_stats_fini(&run->workers[i].stats);
            free(run->workers);
            return -ENOMEM;
        }
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&run->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&run->go_cond, NULL);
    pthread_mutex_init(&run->lock, NULL);
    return 0;
}

static void run_fini(struct run *run)
{
    free(run->map);
    for (uint32_t i = 0; i < run->cfg->threads; i++)
        bench_stats_fini(&run->workers[i].stats);
    free(run->workers);
    pthread_cond_destroy(&run->go_cond);
    pthread_cond_destroy(&run->cond);
    pthread_mutex_destroy(&run->lock);
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* After the workers are joined: merge, time and say what went wrong. */
static void collect(struct run *run, struct bench_result *res, const struct rusage *before)
{
    struct rusage after;
    getrusage(RUSAGE_SELF, &after);
    res->cpu_user_s = tv_s(after.ru_utime) - tv_s(before->ru_utime);
    res->cpu_sys_s = tv_s(after.ru_stime) - tv_s(before->ru_stime);
    res->end_unix_ms = unix_ms();
    uint64_t end = run->start_ns;
    for (uint32_t i = 0; i < run->nworkers; i++) {
        struct worker *w = &run->workers[i];
        bench_stats_merge(&res->stats, &w->stats);
        if (w->end_ns > end)
            end = w->end_ns;
        if (!res->error[0] && w->error[0])
            snprintf(res->error, sizeof res->error, "thread %u: %s", i, w->error);
    }
    for (uint32_t i = 0; i < run->nworkers && !res->error[0]; i++)
        if (run->workers[i].error_reply[0])
            snprintf(res->error, sizeof res->error, "thread %u: %s", i,
                     run->workers[i].error_reply);
    res->duration_ns = end - run->start_ns;
}

/* Starts the workers; 0, or a negative errno with res->error set. */
static int start_workers(struct run *run, struct bench_result *res)
{
    int rc = resolve(run, res);
    if (rc == 0 && run->cfg->cluster_mode)
        rc = fetch_slots(run, res);
    for (uint32_t i = 0; rc == 0 && i < run->cfg->threads; i++) {
        int err = pthread_create(&run->workers[i].tid, NULL, worker_main, &run->workers[i]);
        if (err) {
            snprintf(res->error, sizeof res->error, "pthread_create: %s", strerror(err));
            rc = -err;
            break;
        }
        run->nworkers++;
    }
    return rc;
}

int bench_run(const struct bench_config *cfg, const char *label, FILE *progress,
              struct bench_result *res)
{
    struct run run;
    if (run_init(&run, cfg) != 0) {
        snprintf(res->error, sizeof res->error, "out of memory");
        return -ENOMEM;
    }
    int rc = start_workers(&run, res);
    struct rusage before;
    pthread_mutex_lock(&run.lock);
    while (run.ready < run.nworkers)
        pthread_cond_wait(&run.cond, &run.lock);
    for (uint32_t i = 0; rc == 0 && i < run.nworkers; i++) {
        if (run.workers[i].setup_rc != 0 || run.workers[i].error[0]) {
            snprintf(res->error, sizeof res->error, "%s", run.workers[i].error);
            rc = run.workers[i].setup_rc ? run.workers[i].setup_rc : -ECONNREFUSED;
        }
    }
    run.abort = rc != 0;
    getrusage(RUSAGE_SELF, &before);
    res->start_unix_ms = unix_ms();
    run.start_ns = now_ns();
    run.end_ns = cfg->test_time_s ? run.start_ns + cfg->test_time_s * NS_PER_S : 0;
    run.drain_end_ns = run.end_ns ? run.end_ns + cfg->test_time_s * NS_PER_S : 0;
    run.go = true;
    pthread_cond_broadcast(&run.go_cond);
    pthread_mutex_unlock(&run.lock);
    watch(&run, label, run.abort ? NULL : progress);
    for (uint32_t i = 0; i < run.nworkers; i++)
        pthread_join(run.workers[i].tid, NULL);
    if (rc == 0)
        collect(&run, res, &before);
    run_fini(&run);
    return rc;
}
