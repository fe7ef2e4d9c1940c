/* bench_run.c: client threads and their connections (see bench_run.h).
 * Each worker thread owns `clients` non-blocking connections, one epoll
 * instance (level-triggered) and its own statistics. A connection keeps up
 * to `pipeline` requests in flight: whenever replies free slots it writes
 * the next requests in one send(), and each reply is matched to the oldest
 * request in its ring (servers answer in order). So a request costs one
 * share of a send(), a recv() and an epoll_wait(), two clock reads and a
 * histogram increment; nothing is allocated after start-up.
 * Latency runs from the request's send time to the arrival of the read that
 * completed its reply. With --rate-limiting, request i of a connection is
 * due at base + i / rate (bases staggered across connections); it is sent
 * once due and a pipeline slot is free, and its latency counts from the due
 * time, so a slow server cannot hide its stalls by slowing the generator
 * (no coordinated omission).
 * A run ends per connection when its request budget is spent and answered,
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
 * connect does.
 * Once a second (and at the deadline) a worker scans its connections; one
 * with requests in flight and no traffic for STALL_NS is given up on. The
 * main thread starts the workers together (a gate: all connected, then go),
 * prints progress from per-worker relaxed atomic counters, joins them and
 * merges their statistics. */
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

#define CONNECT_TIMEOUT_MS 5000
#define STALL_NS (10ull * 1000000000ull)
#define IN_BUF_MIN (64u << 10)
#define MAX_EVENTS 256
#define NS_PER_S 1000000000ull

struct inflight {
    uint64_t start_ns; /* send time, or due time under a rate limit */
    uint64_t key;
    enum bench_op op;
};

struct conn {
    int fd;
    uint32_t index; /* among all connections of the run */
    bool closed;    /* lost; counted in conn_errors */
    bool finished;  /* nothing more to send or receive */
    bool want_write;
    uint64_t last_io_ns; /* last request written or reply read */
    struct bench_rng rng;
    struct bench_keygen set_keys, get_keys;
    uint32_t cycle; /* position in the set:get cycle */
    uint64_t limit; /* requests to send */
    uint64_t sent;
    uint64_t due_base_ns;
    struct inflight *q; /* ring of `pipeline` entries, oldest at q_head */
    uint32_t q_head, q_len;
    char *out;
    size_t out_len, out_off, out_cap;
    char *in;
    size_t in_len, in_cap;
};

/* Counters the main thread reads for progress lines; written by the owner. */
struct progress {
    _Alignas(64) _Atomic uint64_t replies;
    _Atomic uint64_t latency_ns;
    _Atomic uint64_t bytes;
};

struct run;

struct worker {
    struct progress progress;
    pthread_t tid;
    struct run *run;
    uint32_t index;
    struct conn *conns;
    uint32_t nconns;
    uint32_t active; /* connections not finished */
    int epfd;
    bool stopping;   /* deadline passed: send nothing new (rate limit: nothing due after it) */
    bool drain_over; /* rate limit: backlog drained as long as allowed; send nothing */
    uint64_t next_scan_ns;
    uint64_t end_ns; /* when the last connection finished */
    struct bench_stats stats;
    char *filler; /* value bytes when not verifying */
    char *value;  /* scratch for a checked value */
    char *key;    /* scratch for a key */
    size_t prefix_len;
    int setup_rc;    /* worker_setup(): 0 or a negative errno */
    char error[160]; /* first problem met */
};

struct run {
    const struct bench_config *cfg;
    struct sockaddr_storage addr;
    socklen_t addr_len;
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

static void note_error(struct worker *w, const char *what, int err)
{
    if (w->error[0])
        return;
    if (err)
        snprintf(w->error, sizeof w->error, "%s: %s", what, strerror(err));
    else
        snprintf(w->error, sizeof w->error, "%s", what);
}

static void conn_finish(struct worker *w, struct conn *c)
{
    if (c->finished)
        return;
    c->finished = true;
    w->active--;
}

static void conn_fail(struct worker *w, struct conn *c, const char *what, int err)
{
    note_error(w, what, err);
    if (c->closed)
        return;
    close(c->fd);
    c->fd = -1;
    c->closed = true;
    w->stats.conn_errors++;
    conn_finish(w, c);
}

/* When request number `i` of the connection is due under the rate limit. */
static uint64_t due_ns(const struct conn *c, uint64_t rate, uint64_t i)
{
    return c->due_base_ns + (uint64_t)((unsigned __int128)i * NS_PER_S / rate);
}

/* Whether the connection has requests left to send, now or later: budget
 * left and, past the deadline, (rate limit) a backlog of requests due before it. */
static bool conn_has_more(const struct worker *w, const struct conn *c)
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

/* A connection is done when it will send nothing more and awaits nothing. */
static void conn_check_done(struct worker *w, struct conn *c)
{
    if (!c->finished && c->q_len == 0 && !conn_has_more(w, c))
        conn_finish(w, c);
}

static void set_interest(struct worker *w, struct conn *c, bool want_write)
{
    if (c->want_write == want_write)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want_write ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
        conn_fail(w, c, "epoll_ctl", errno);
        return;
    }
    c->want_write = want_write;
}

static void conn_flush(struct worker *w, struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_interest(w, c, true);
            return;
        }
        conn_fail(w, c, "send", n < 0 ? errno : EPIPE);
        return;
    }
    c->out_off = c->out_len = 0;
    set_interest(w, c, false);
}

/* Appends the connection's next request to its output. */
static void conn_add_request(struct worker *w, struct conn *c, uint64_t start_ns)
{
    const struct bench_config *cfg = w->run->cfg;
    bool is_set = c->cycle < cfg->ratio_set;
    if (++c->cycle == cfg->ratio_set + cfg->ratio_get)
        c->cycle = 0;
    uint64_t key = bench_keys_next(is_set ? &c->set_keys : &c->get_keys, &c->rng);
    size_t klen = bench_proto_key(w->key, cfg->key_prefix, w->prefix_len, key);
    char *dst = c->out + c->out_len, *end;
    enum bench_op op = is_set ? BENCH_OP_SET : BENCH_OP_GET;
    if (is_set) {
        uint32_t vlen = cfg->data_size_min;
        if (cfg->data_size_max > vlen)
            vlen += (uint32_t)bench_rng_below(&c->rng, cfg->data_size_max - vlen + 1);
        const char *val = w->filler;
        if (cfg->verify) {
            bench_proto_value_fill(w->value, vlen, w->key, klen);
            val = w->value;
        }
        end = bench_proto_set(dst, cfg->protocol, w->key, klen, val, vlen);
    } else {
        end = bench_proto_get(dst, cfg->protocol, w->key, klen);
    }
    c->out_len += (size_t)(end - dst);
    w->stats.op[op].bytes_out += (uint64_t)(end - dst);
    uint32_t slot = (c->q_head + c->q_len) % cfg->pipeline;
    c->q[slot] = (struct inflight){.start_ns = start_ns, .key = key, .op = op};
    c->q_len++;
    c->sent++;
    w->stats.sent++;
}

/* Sends what the pipeline, the budget and the rate limit allow. */
static void conn_pump(struct worker *w, struct conn *c, uint64_t now)
{
    const struct bench_config *cfg = w->run->cfg;
    if (c->finished || c->out_off < c->out_len)
        return;
    c->out_off = c->out_len = 0;
    while (c->q_len < cfg->pipeline && conn_has_more(w, c)) {
        uint64_t start = now;
        if (cfg->rate_limit) {
            start = due_ns(c, cfg->rate_limit, c->sent);
            if (start > now)
                break;
        }
        conn_add_request(w, c, start);
    }
    if (c->out_len) {
        c->last_io_ns = now;
        conn_flush(w, c);
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

static void handle_reply(struct worker *w, struct conn *c, const struct bench_reply *r,
                         size_t consumed, uint64_t now)
{
    const struct bench_config *cfg = w->run->cfg;
    struct inflight *f = &c->q[c->q_head];
    c->q_head = (c->q_head + 1) % cfg->pipeline;
    c->q_len--;
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

static int grow_input(struct conn *c, size_t need)
{
    size_t cap = c->in_cap * 2 > need ? c->in_cap * 2 : need;
    char *p = realloc(c->in, cap);
    if (!p)
        return -ENOMEM;
    c->in = p;
    c->in_cap = cap;
    return 0;
}

/* Parses every whole reply in the input buffer; keeps a partial one. */
static void conn_parse(struct worker *w, struct conn *c, uint64_t now)
{
    const struct bench_config *cfg = w->run->cfg;
    size_t pos = 0;
    while (pos < c->in_len) {
        if (c->q_len == 0) {
            conn_fail(w, c, "reply without a request", 0);
            return;
        }
        struct bench_reply r;
        size_t consumed = 0, need = 0;
        enum bench_reply_status st =
            bench_proto_parse(cfg->protocol, c->in + pos, c->in_len - pos, &r, &consumed, &need);
        if (st == BENCH_REPLY_MORE) {
            if (need > c->in_cap && grow_input(c, need) != 0)
                conn_fail(w, c, "reply buffer", ENOMEM);
            break;
        }
        if (st == BENCH_REPLY_BAD) {
            conn_fail(w, c, "unparsable reply from server", 0);
            return;
        }
        handle_reply(w, c, &r, consumed, now);
        pos += consumed;
    }
    if (pos) {
        memmove(c->in, c->in + pos, c->in_len - pos);
        c->in_len -= pos;
    }
}

/* Reads once and handles the replies; returns the time the bytes arrived. */
static uint64_t conn_read(struct worker *w, struct conn *c)
{
    if (c->in_len == c->in_cap && grow_input(c, c->in_cap + 1) != 0) {
        conn_fail(w, c, "reply buffer", ENOMEM);
        return now_ns();
    }
    ssize_t n;
    do {
        n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    } while (n < 0 && errno == EINTR);
    uint64_t now = now_ns();
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return now;
    if (n <= 0) {
        conn_fail(w, c, n == 0 ? "server closed the connection" : "recv", n == 0 ? 0 : errno);
        return now;
    }
    c->in_len += (size_t)n;
    c->last_io_ns = now;
    conn_parse(w, c, now);
    return now;
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
        for (uint32_t i = 0; i < w->nconns; i++) {
            struct conn *c = &w->conns[i];
            if (c->finished || c->q_len >= cfg->pipeline || !conn_has_more(w, c))
                continue;
            uint64_t due = due_ns(c, cfg->rate_limit, c->sent);
            if (due < wake)
                wake = due;
        }
    }
    return wake > now ? wake - now : 0;
}

/* After each loop turn: rate-limited sends; at the deadline, at the end of
 * the drain and once a second, a scan for stalled and finished connections. */
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
    for (uint32_t i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];
        if (c->finished)
            continue;
        if (scan && c->q_len > 0 && now - c->last_io_ns >= STALL_NS) {
            conn_fail(w, c, "no reply from the server for 10 s", 0);
            continue;
        }
        if (cfg->rate_limit)
            conn_pump(w, c, now);
        conn_check_done(w, c);
    }
}

/* Rate limit: requests due before the deadline that were never sent. */
static uint64_t conn_unsent(const struct worker *w, const struct conn *c)
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
    uint64_t nconns = (uint64_t)cfg->threads * cfg->clients;
    w->next_scan_ns = now + NS_PER_S;
    for (uint32_t i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];
        c->last_io_ns = now;
        if (cfg->rate_limit) /* stagger the connections over one period */
            c->due_base_ns = w->run->start_ns + (uint64_t)((unsigned __int128)NS_PER_S * c->index /
                                                           (cfg->rate_limit * nconns));
        conn_pump(w, c, now);
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
            struct conn *c = events[i].data.ptr;
            if (c->closed)
                continue;
            uint64_t t = 0;
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                t = conn_read(w, c);
            if (!c->closed && (events[i].events & EPOLLOUT))
                conn_flush(w, c);
            if (!c->closed) {
                conn_pump(w, c, t ? t : now_ns());
                conn_check_done(w, c);
            }
        }
        now = now_ns();
        worker_tick(w, now);
        publish_progress(w);
    }
    w->end_ns = now_ns();
    for (uint32_t i = 0; i < w->nconns; i++)
        w->stats.unsent += conn_unsent(w, &w->conns[i]);
    publish_progress(w);
}

static int connect_one(const struct run *run, int *fd_out)
{
    int fd = socket(run->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = 0;
    if (connect(fd, (const struct sockaddr *)&run->addr, run->addr_len) != 0) {
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

/* Requests connection `index` sends: its share of the range for allkeys. */
static uint64_t conn_limit(const struct bench_config *cfg, uint32_t index, uint32_t nconns)
{
    if (cfg->requests_allkeys) {
        struct bench_keygen slice;
        bench_keys_init(&slice, BENCH_KEYS_PARALLEL, &cfg->keys, index, nconns);
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

/* Reads one reply into c->in; 0 with *reply set (valid until c->in changes), or
 * a negative errno. The caller has sent nothing else, so nothing may follow it. */
static int recv_reply(struct conn *c, struct bench_reply *reply, uint64_t deadline_ns)
{
    for (;;) {
        size_t consumed = 0, need = 0;
        enum bench_reply_status st =
            bench_proto_parse(BENCH_PROTO_REDIS, c->in, c->in_len, reply, &consumed, &need);
        if (st == BENCH_REPLY_BAD)
            return -EPROTO;
        if (st == BENCH_REPLY_DONE)
            return consumed == c->in_len ? 0 : -EPROTO;
        if (c->in_len == c->in_cap)
            return -EMSGSIZE;
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            continue;
        }
        if (n == 0)
            return -ECONNRESET;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = wait_fd(c->fd, POLLIN, deadline_ns);
        if (rc != 0)
            return rc;
    }
}

/* Sends one set-up command and checks that the server answers +OK. */
static int setup_command(struct worker *w, struct conn *c, const char *req, size_t len,
                         const char *what)
{
    uint64_t deadline = now_ns() + CONNECT_TIMEOUT_MS * 1000000ull;
    struct bench_reply r;
    int rc = send_blocking(c->fd, req, len, deadline);
    if (rc == 0)
        rc = recv_reply(c, &r, deadline);
    if (rc != 0) {
        note_error(w, what, -rc);
        return rc;
    }
    bool ok = r.kind == BENCH_REPLY_STATUS && r.len == 2 && memcmp(r.text, "OK", 2) == 0;
    c->in_len = 0;
    if (ok)
        return 0;
    char msg[128];
    snprintf(msg, sizeof msg, "%s: the server answered '%.*s'", what,
             (int)(r.len < 80 ? r.len : 80), r.text);
    note_error(w, msg, 0);
    return r.kind == BENCH_REPLY_ERROR ? -EACCES : -EPROTO;
}

/* --authenticate and --select-db: AUTH, then SELECT, before any load. */
static int conn_handshake(struct worker *w, struct conn *c)
{
    const struct bench_config *cfg = w->run->cfg;
    if (cfg->auth) {
        char *req = malloc(2 * strlen(cfg->auth) + 64);
        if (!req) {
            note_error(w, "AUTH request", ENOMEM);
            return -ENOMEM;
        }
        int rc = setup_command(w, c, req, (size_t)(auth_command(req, cfg->auth) - req),
                               "AUTH (--authenticate)");
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
        return setup_command(w, c, req, (size_t)(resp_command(req, 2, argv, lens) - req), what);
    }
    return 0;
}

static int conn_setup(struct worker *w, struct conn *c, uint32_t index)
{
    const struct bench_config *cfg = w->run->cfg;
    uint32_t nconns = cfg->threads * cfg->clients;
    c->fd = -1;
    c->index = index;
    bench_rng_seed(&c->rng, cfg->seed + (cfg->distinct_client_seed ? index : 0));
    if (bench_keys_init(&c->set_keys, cfg->set_pattern, &cfg->keys, index, nconns) != 0 ||
        bench_keys_init(&c->get_keys, cfg->get_pattern, &cfg->keys, index, nconns) != 0) {
        note_error(w, "key pattern does not fit the key range", 0);
        return -EINVAL;
    }
    c->limit = conn_limit(cfg, index, nconns);
    size_t req = bench_opts_max_key_len(cfg) + cfg->data_size_max + BENCH_PROTO_OVERHEAD;
    c->out_cap = req * cfg->pipeline;
    c->out = malloc(c->out_cap);
    c->in_cap = IN_BUF_MIN;
    c->in = malloc(c->in_cap);
    c->q = calloc(cfg->pipeline, sizeof *c->q);
    if (!c->out || !c->in || !c->q) {
        note_error(w, "connection buffers", ENOMEM);
        return -ENOMEM;
    }
    int rc = connect_one(w->run, &c->fd);
    if (rc != 0) {
        char what[96];
        snprintf(what, sizeof what, "connect to %s:%s", cfg->host, cfg->port);
        note_error(w, what, -rc);
        return rc;
    }
    rc = conn_handshake(w, c);
    if (rc != 0)
        return rc;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        note_error(w, "epoll_ctl", errno);
        return -errno;
    }
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
    w->conns = calloc(cfg->clients, sizeof *w->conns);
    if (!w->key || !w->filler || !w->value || !w->conns) {
        note_error(w, "worker buffers", ENOMEM);
        return -ENOMEM;
    }
    bench_proto_filler(w->filler, cfg->data_size_max, cfg->seed ^ w->index);
    for (uint32_t i = 0; i < cfg->clients; i++) {
        w->nconns++;
        int rc = conn_setup(w, &w->conns[i], w->index * cfg->clients + i);
        if (rc != 0)
            return rc;
    }
    w->active = w->nconns;
    return 0;
}

static void worker_teardown(struct worker *w)
{
    for (uint32_t i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];
        if (c->fd >= 0)
            close(c->fd);
        free(c->out);
        free(c->in);
        free(c->q);
    }
    free(w->conns);
    free(w->key);
    free(w->filler);
    free(w->value);
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
    const struct bench_config *cfg = run->cfg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(cfg->host, cfg->port, &hints, &ai);
    if (rc != 0) {
        snprintf(res->error, sizeof res->error, "cannot resolve %s:%s: %s", cfg->host, cfg->port,
                 gai_strerror(rc));
        return -EINVAL;
    }
    memcpy(&run->addr, ai->ai_addr, ai->ai_addrlen);
    run->addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
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
    res->duration_ns = end - run->start_ns;
}

/* Starts the workers; 0, or a negative errno with res->error set. */
static int start_workers(struct run *run, struct bench_result *res)
{
    int rc = resolve(run, res);
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
