/* test_bench_run.c: the client threads against a small in-process RESP server.
 * The server (one thread, poll, 127.0.0.1, an ephemeral port) keeps values
 * for keys "k:<n>", answers AUTH (checking a password when given one) and
 * SELECT, records the first two commands of every connection, and can
 * misbehave on request: corrupt every value it returns, or stall once for a
 * while at a given request. So the tests check the generator alone: counts
 * that add up, verification that catches bad values, latency measured from
 * the schedule under a rate limit, a backlog left unsent failing the run,
 * runs bounded by time, AUTH and SELECT sent before the load, the reports
 * built from runs: chosen percentiles, the average of several runs; and
 * --cluster-mode against two of them, the first handing out a slot map that
 * puts every slot on itself and then redirecting (MOVED or ASK) the upper
 * half of the slots to the second. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bench_cluster.h"
#include "bench_opts.h"
#include "bench_report.h"
#include "bench_run.h"

#define FAKE_KEYS 4096
#define FAKE_CLIENTS 32
#define FAKE_BUF 65536
#define FAKE_LOG 64   /* connections whose opening commands are recorded */
#define FAKE_WORDS 64 /* bytes kept of each recorded command */

struct fake_client {
    int fd;
    unsigned commands; /* received on this connection */
    unsigned log;      /* its index in fake_server.opening */
    char buf[FAKE_BUF];
    size_t len;
};

struct fake_server {
    int listen_fd;
    int stop_pipe[2];
    char port[8];
    pthread_t tid;
    /* Set by the test between runs, read by the server thread: atomics. */
    _Atomic bool corrupt;      /* flip a byte in every value returned */
    _Atomic uint64_t stall_at; /* request number (1-based) before which to pause; 0: never */
    _Atomic unsigned stall_ms;
    _Atomic uint64_t requests; /* requests served so far */
    const char *password;      /* set before a run: AUTH must end with it; NULL: any AUTH is fine */
    /* Cluster, set before a run: the CLUSTER SLOTS reply (NULL: cluster
     * support disabled), and "MOVED" or "ASK" to send keys of slots 8192 and
     * up to 127.0.0.1:redirect_port (NULL: serve every key). */
    const char *cluster_slots;
    const char *redirect;
    const char *redirect_port;
    _Atomic unsigned asking; /* ASKING commands received */
    /* The first two commands of each connection, words joined by spaces;
     * written by the server thread, read by the test once bench_run() is back. */
    char opening[FAKE_LOG][2][FAKE_WORDS];
    _Atomic unsigned connections; /* that sent a command: entries of opening in use */
    char *values[FAKE_KEYS];
    size_t lens[FAKE_KEYS];
    struct fake_client clients[FAKE_CLIENTS];
    char out[FAKE_BUF * 2]; /* replies being built (the server thread's) */
};

/* Parses one RESP array of bulk strings; returns its length, 0 if incomplete. */
static size_t fake_parse(const char *p, size_t len, const char **argv, size_t *argl, int *argc)
{
    const char *end = p + len, *q = p;
    if (q >= end || *q != '*')
        return 0;
    char *e;
    long n = strtol(q + 1, &e, 10);
    if (e + 2 > end)
        return 0;
    q = e + 2;
    for (long i = 0; i < n; i++) {
        if (q >= end)
            return 0;
        long l = strtol(q + 1, &e, 10);
        if (e + 2 + l + 2 > end)
            return 0;
        argv[i] = e + 2;
        argl[i] = (size_t)l;
        q = e + 2 + l + 2;
    }
    *argc = (int)n;
    return (size_t)(q - p);
}

static int fake_slot(const char *key, size_t len)
{
    if (len < 3 || memcmp(key, "k:", 2) != 0)
        return -1;
    int n = atoi(key + 2);
    return n >= 0 && n < FAKE_KEYS ? n : -1;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static bool word_is(const char *w, size_t len, const char *name)
{
    return len == strlen(name) && memcmp(w, name, len) == 0;
}

/* Notes the connection's first two commands in s->opening. */
static void fake_record(struct fake_server *s, struct fake_client *c, const char **argv,
                        const size_t *argl, int argc)
{
    if (c->commands == 0)
        c->log = atomic_fetch_add(&s->connections, 1);
    if (c->commands < 2 && c->log < FAKE_LOG) {
        char *dst = s->opening[c->log][c->commands];
        size_t n = 0;
        for (int i = 0; i < argc && n + argl[i] + 2 < FAKE_WORDS; i++) {
            n += (size_t)sprintf(dst + n, "%s%.*s", i ? " " : "", (int)argl[i], argv[i]);
        }
        dst[n] = '\0';
    }
    c->commands++;
}

/* AUTH and SELECT; false for anything else. */
static bool fake_setup_command(struct fake_server *s, const char **argv, const size_t *argl,
                               int argc, char *out, size_t *olen)
{
    if (argc >= 2 && word_is(argv[0], argl[0], "AUTH")) {
        bool ok = !s->password || word_is(argv[argc - 1], argl[argc - 1], s->password);
        *olen += (size_t)sprintf(out + *olen, "%s\r\n",
                                 ok ? "+OK" : "-WRONGPASS invalid username-password pair");
        return true;
    }
    if (argc == 2 && word_is(argv[0], argl[0], "SELECT")) {
        *olen += (size_t)sprintf(out + *olen, "+OK\r\n");
        return true;
    }
    return false;
}

/* CLUSTER SLOTS, ASKING and redirections; false for commands the store serves. */
static bool fake_cluster_command(struct fake_server *s, const char **argv, const size_t *argl,
                                 int argc, char *out, size_t *olen)
{
    if (argc == 2 && word_is(argv[0], argl[0], "CLUSTER") && word_is(argv[1], argl[1], "SLOTS")) {
        *olen += (size_t)sprintf(out + *olen, "%s",
                                 s->cluster_slots
                                     ? s->cluster_slots
                                     : "-ERR This instance has cluster support disabled\r\n");
        return true;
    }
    if (argc == 1 && word_is(argv[0], argl[0], "ASKING")) {
        s->asking++;
        *olen += (size_t)sprintf(out + *olen, "+OK\r\n");
        return true;
    }
    if (!s->redirect || argc < 2)
        return false;
    uint32_t slot = bench_cluster_slot(argv[1], argl[1]);
    if (slot < KEYHASH_SLOTS / 2)
        return false;
    *olen += (size_t)sprintf(out + *olen, "-%s %u 127.0.0.1:%s\r\n", s->redirect, slot,
                             s->redirect_port);
    return true;
}

static void fake_serve(struct fake_server *s, struct fake_client *c)
{
    char *out = s->out;
    size_t olen = 0, pos = 0;
    const char *argv[3];
    size_t argl[3];
    int argc;
    size_t used;
    while ((used = fake_parse(c->buf + pos, c->len - pos, argv, argl, &argc)) > 0) {
        pos += used;
        if (++s->requests == s->stall_at) {
            unsigned ms = s->stall_ms;
            struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
            nanosleep(&ts, NULL); /* the server misbehaving on purpose */
        }
        fake_record(s, c, argv, argl, argc);
        if (fake_setup_command(s, argv, argl, argc, out, &olen) ||
            fake_cluster_command(s, argv, argl, argc, out, &olen))
            continue;
        int slot = argc >= 2 ? fake_slot(argv[1], argl[1]) : -1;
        if (argc == 3 && slot >= 0) {
            free(s->values[slot]);
            s->values[slot] = malloc(argl[2]);
            memcpy(s->values[slot], argv[2], argl[2]);
            s->lens[slot] = argl[2];
            olen += (size_t)sprintf(out + olen, "+OK\r\n");
        } else if (argc == 2 && slot >= 0 && s->values[slot]) {
            olen += (size_t)sprintf(out + olen, "$%zu\r\n", s->lens[slot]);
            memcpy(out + olen, s->values[slot], s->lens[slot]);
            if (s->corrupt)
                out[olen + s->lens[slot] - 1] ^= 1;
            olen += s->lens[slot];
            olen += (size_t)sprintf(out + olen, "\r\n");
        } else if (argc == 2) {
            olen += (size_t)sprintf(out + olen, "$-1\r\n");
        } else {
            olen += (size_t)sprintf(out + olen, "-ERR unknown\r\n");
        }
    }
    memmove(c->buf, c->buf + pos, c->len - pos);
    c->len -= pos;
    send_all(c->fd, out, olen);
}

static void *fake_main(void *arg)
{
    struct fake_server *s = arg;
    for (;;) {
        struct pollfd pfd[FAKE_CLIENTS + 2];
        pfd[0] = (struct pollfd){.fd = s->stop_pipe[0], .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
        for (int i = 0; i < FAKE_CLIENTS; i++)
            pfd[i + 2] = (struct pollfd){.fd = s->clients[i].fd, .events = POLLIN};
        if (poll(pfd, FAKE_CLIENTS + 2, -1) < 0)
            continue;
        if (pfd[0].revents)
            return NULL;
        if (pfd[1].revents) {
            int fd = accept(s->listen_fd, NULL, NULL);
            for (int i = 0; fd >= 0 && i < FAKE_CLIENTS; i++) {
                if (s->clients[i].fd < 0) {
                    s->clients[i].fd = fd;
                    s->clients[i].len = 0;
                    s->clients[i].commands = 0;
                    fd = -1;
                }
            }
            if (fd >= 0)
                close(fd);
        }
        for (int i = 0; i < FAKE_CLIENTS; i++) {
            struct fake_client *c = &s->clients[i];
            if (c->fd < 0 || !pfd[i + 2].revents)
                continue;
            ssize_t n = recv(c->fd, c->buf + c->len, FAKE_BUF - c->len, 0);
            if (n <= 0) {
                close(c->fd);
                c->fd = -1;
                continue;
            }
            c->len += (size_t)n;
            fake_serve(s, c);
        }
    }
}

static struct fake_server *fake_start(void)
{
    struct fake_server *s = calloc(1, sizeof *s);
    assert_non_null(s);
    for (int i = 0; i < FAKE_CLIENTS; i++)
        s->clients[i].fd = -1;
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->listen_fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->listen_fd, 64), 0);
    socklen_t alen = sizeof a;
    assert_int_equal(getsockname(s->listen_fd, (struct sockaddr *)&a, &alen), 0);
    snprintf(s->port, sizeof s->port, "%u", ntohs(a.sin_port));
    assert_int_equal(pipe(s->stop_pipe), 0);
    assert_int_equal(pthread_create(&s->tid, NULL, fake_main, s), 0);
    return s;
}

static void fake_stop(struct fake_server *s)
{
    assert_int_equal(write(s->stop_pipe[1], "x", 1), 1);
    pthread_join(s->tid, NULL);
    for (int i = 0; i < FAKE_CLIENTS; i++)
        if (s->clients[i].fd >= 0)
            close(s->clients[i].fd);
    for (int i = 0; i < FAKE_KEYS; i++)
        free(s->values[i]);
    close(s->listen_fd);
    close(s->stop_pipe[0]);
    close(s->stop_pipe[1]);
    free(s);
}

static void config_for(struct bench_config *cfg, const struct fake_server *s)
{
    bench_opts_defaults(cfg);
    cfg->port = s->port;
    cfg->key_prefix = "k:";
    cfg->keys.min = 0;
    cfg->keys.max = FAKE_KEYS - 1;
    cfg->keys.median = FAKE_KEYS / 2.0;
    cfg->keys.stddev = FAKE_KEYS / 6.0;
    cfg->threads = 2;
    cfg->clients = 3;
    cfg->hide_histogram = true;
}

/* Runs cfg into a fresh result, which the caller finishes. */
static void run_into(const struct bench_config *cfg, struct bench_result *res)
{
    assert_int_equal(bench_result_init(res), 0);
    assert_int_equal(bench_run(cfg, "test", NULL, res), 0);
}

/* Gets only, each connection `requests` of them, every hit checked. */
static void verifying_reads(struct bench_config *cfg, const struct fake_server *s,
                            uint64_t requests)
{
    config_for(cfg, s);
    cfg->ratio_set = 0;
    cfg->ratio_get = 1;
    cfg->requests = requests;
    cfg->verify = true;
}

/* Sets and gets at sets:gets, `requests` per connection, pipeline 4, every
 * hit checked, each connection with its own seed. */
static void checked_mix(struct bench_config *cfg, const struct fake_server *s, uint32_t sets,
                        uint32_t gets, uint64_t requests)
{
    config_for(cfg, s);
    cfg->pipeline = 4;
    cfg->ratio_set = sets;
    cfg->ratio_get = gets;
    cfg->requests = requests;
    cfg->verify = true;
    cfg->distinct_client_seed = true;
}

static void test_bench_run_counts_add_up(void **state)
{
    struct fake_server *s = fake_start();
    struct bench_config cfg;
    checked_mix(&cfg, s, 1, 3, 500);
    struct bench_result res;
    run_into(&cfg, &res);
    const struct bench_op_stats *sets = &res.stats.op[BENCH_OP_SET];
    const struct bench_op_stats *gets = &res.stats.op[BENCH_OP_GET];
    assert_int_equal(res.stats.sent, 3000);
    assert_int_equal(res.stats.replies, 3000);
    assert_int_equal(sets->count, 750); /* 125 sets in each connection's 500 */
    assert_int_equal(gets->count, 2250);
    assert_int_equal(gets->hits + gets->misses, gets->count);
    assert_true(gets->hits > 0);
    assert_int_equal(sets->errors + gets->errors + gets->verify_errors, 0);
    assert_int_equal(sets->hist.total, 750);
    assert_int_equal(gets->hist.total, 2250);
    assert_true(res.duration_ns > 0);
    assert_true(bench_report_ok(&res));
    bench_result_fini(&res);
    fake_stop(s);
}

/* Every key set once (as --prepopulate does), then read back. */
static void fill_all_keys(struct fake_server *s, bool verify)
{
    struct bench_config cfg;
    config_for(&cfg, s);
    cfg.ratio_set = 1;
    cfg.ratio_get = 0;
    cfg.set_pattern = BENCH_KEYS_PARALLEL;
    cfg.requests = 0;
    cfg.requests_allkeys = true;
    cfg.pipeline = 32;
    cfg.verify = verify;
    struct bench_result res;
    run_into(&cfg, &res);
    assert_int_equal(res.stats.replies, FAKE_KEYS);
    assert_true(bench_report_ok(&res));
    bench_result_fini(&res);
}

static void test_bench_run_verifies_values(void **state)
{
    struct fake_server *s = fake_start();
    fill_all_keys(s, true);
    struct bench_config cfg;
    verifying_reads(&cfg, s, 300);
    struct bench_result res;
    run_into(&cfg, &res);
    assert_int_equal(res.stats.op[BENCH_OP_GET].hits, 1800);
    assert_int_equal(res.stats.op[BENCH_OP_GET].verify_errors, 0);
    assert_true(bench_report_ok(&res));
    bench_result_fini(&res);

    s->corrupt = true;
    run_into(&cfg, &res);
    assert_int_equal(res.stats.op[BENCH_OP_GET].hits, 1800);
    assert_int_equal(res.stats.op[BENCH_OP_GET].verify_errors, 1800);
    assert_false(bench_report_ok(&res));
    bench_result_fini(&res);
    fake_stop(s);
}

/* Values written without --verify are not checked values: a verifying run
 * must flag them rather than trust them. */
static void test_bench_run_flags_unchecked_values(void **state)
{
    struct fake_server *s = fake_start();
    fill_all_keys(s, false);
    struct bench_config cfg;
    verifying_reads(&cfg, s, 50);
    struct bench_result res;
    run_into(&cfg, &res);
    assert_int_equal(res.stats.op[BENCH_OP_GET].verify_errors, 300);
    bench_result_fini(&res);
    fake_stop(s);
}

/* One connection at 2000 requests/s; the server stalls 300 ms before the
 * 100th request. Requests due during the stall wait for it, and their
 * latency counts from when they were due: some 400 of the 1000 exceed
 * 100 ms. Measured from the actual send, only one would. */
static void test_bench_run_rate_limit_has_no_coordinated_omission(void **state)
{
    struct fake_server *s = fake_start();
    s->stall_at = 100;
    s->stall_ms = 300;
    struct bench_config cfg;
    config_for(&cfg, s);
    cfg.threads = 1;
    cfg.clients = 1;
    cfg.ratio_set = 0;
    cfg.ratio_get = 1;
    cfg.requests = 1000;
    cfg.rate_limit = 2000;
    struct bench_result res;
    run_into(&cfg, &res);
    const struct bench_hist *h = &res.stats.op[BENCH_OP_GET].hist;
    assert_int_equal(h->total, 1000);
    assert_true(res.duration_ns >= 490000000ull); /* 1000 at 2000/s: half a second */
    assert_true(bench_hist_percentile(h, 70.0) >= 100000000ull);
    assert_true(h->max_ns >= 290000000ull);
    bench_result_fini(&res);

    /* Without the schedule the stall hides in one request. */
    s->stall_at = s->requests + 100;
    cfg.rate_limit = 0;
    run_into(&cfg, &res);
    h = &res.stats.op[BENCH_OP_GET].hist;
    assert_true(h->max_ns >= 290000000ull);
    assert_true(bench_hist_percentile(h, 90.0) < 100000000ull);
    bench_result_fini(&res);
    fake_stop(s);
}

/* Rate-limited and bounded by time, with the server stalling 400 ms at the
 * 800th of 1000 scheduled requests (due at 0.8 s of 1 s): the requests due
 * during the stall are still sent after the deadline and timed from their due
 * times, so the whole schedule is answered and the last fifth of it is slow. */
static void test_bench_run_rate_limit_drains_backlog_at_deadline(void **state)
{
    struct fake_server *s = fake_start();
    s->stall_at = 800;
    s->stall_ms = 400;
    struct bench_config cfg;
    config_for(&cfg, s);
    cfg.threads = 1;
    cfg.clients = 1;
    cfg.ratio_set = 0;
    cfg.ratio_get = 1;
    cfg.requests = 0;
    cfg.test_time_s = 1;
    cfg.rate_limit = 1000;
    struct bench_result res;
    run_into(&cfg, &res);
    const struct bench_hist *h = &res.stats.op[BENCH_OP_GET].hist;
    assert_int_equal(res.stats.sent, 1000);
    assert_int_equal(res.stats.replies, 1000);
    assert_int_equal(res.stats.unsent, 0);
    assert_true(res.duration_ns >= 1100000000ull);
    assert_true(bench_hist_percentile(h, 85.0) >= 150000000ull);
    assert_true(bench_report_ok(&res));
    bench_result_fini(&res);
    fake_stop(s);
}

/* Text printed to memory: memtext_open() gives the stream to print into,
 * memtext_close() closes it and returns the text, which the caller frees.
 * The caller's struct holds the pointer open_memstream() updates, so the
 * text never hangs on a helper's stack frame. */
struct memtext {
    FILE *f;
    char *text;
    size_t len;
};

static FILE *memtext_open(struct memtext *m)
{
    m->text = NULL;
    m->len = 0;
    m->f = open_memstream(&m->text, &m->len);
    assert_non_null(m->f);
    return m->f;
}

static char *memtext_close(struct memtext *m)
{
    assert_int_equal(fclose(m->f), 0);
    return m->text;
}

/* Creates an empty file from a mkstemp() template, which it fills in. */
static void make_temp(char *path)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
}

/* Whole contents of a file; the caller frees it. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *text = NULL;
    size_t cap = 0;
    assert_true(getdelim(&text, &cap, '\0', f) > 0);
    fclose(f);
    return text;
}

/* The backlog is drained for at most another --test-time: a server that
 * stalls 2.5 s at the 500th request of a 1 s run leaves the rest of the
 * schedule unsent, and the run says how much instead of dropping it quietly:
 * a warning under the table, and a run that does not count as a success. */
static void test_bench_run_rate_limit_counts_unsent_backlog(void **state)
{
    struct fake_server *s = fake_start();
    s->stall_at = 500;
    s->stall_ms = 2500;
    struct bench_config cfg;
    config_for(&cfg, s);
    cfg.threads = 1;
    cfg.clients = 1;
    cfg.ratio_set = 0;
    cfg.ratio_get = 1;
    cfg.requests = 0;
    cfg.test_time_s = 1;
    cfg.rate_limit = 1000;
    struct bench_result res;
    run_into(&cfg, &res);
    assert_int_equal(res.stats.sent, res.stats.replies);
    assert_int_equal(res.stats.sent + res.stats.unsent, 1000);
    assert_true(res.stats.unsent >= 400);
    assert_true(res.duration_ns < 4000000000ull);
    assert_false(bench_report_ok(&res));
    char why[512];
    bench_report_why(&res, why, sizeof why);
    assert_non_null(strstr(why, "never sent"));
    struct memtext m;
    bench_report_text(memtext_open(&m), &cfg, "ALL STATS", &res);
    char *text = memtext_close(&m);
    assert_non_null(strstr(text, "WARNING"));
    assert_non_null(strstr(text, "never sent"));
    free(text);
    bench_result_fini(&res);
    fake_stop(s);
}

static void test_bench_run_stops_at_test_time(void **state)
{
    struct fake_server *s = fake_start();
    struct bench_config cfg;
    config_for(&cfg, s);
    cfg.requests = 0;
    cfg.test_time_s = 1;
    cfg.pipeline = 2;
    struct bench_result res;
    run_into(&cfg, &res);
    assert_true(res.duration_ns >= 1000000000ull);
    assert_true(res.duration_ns < 5000000000ull);
    assert_true(res.stats.replies > 0);
    assert_int_equal(res.stats.sent, res.stats.replies);
    assert_true(bench_report_ok(&res));
    bench_result_fini(&res);
    fake_stop(s);
}

static void test_bench_run_reports_refused_connection(void **state)
{
    struct fake_server *s = fake_start();
    char port[sizeof s->port];
    memcpy(port, s->port, sizeof port);
    struct bench_config cfg;
    config_for(&cfg, s);
    cfg.port = port;
    fake_stop(s); /* nothing listens on that port any more */
    struct bench_result res;
    assert_int_equal(bench_result_init(&res), 0);
    assert_true(bench_run(&cfg, "refused", NULL, &res) < 0);
    assert_non_null(strstr(res.error, "connect"));
    bench_result_fini(&res);
}

/* --authenticate and --select-db: every connection opens with AUTH, then
 * SELECT, before any load; neither is counted as a request of the run. */
static void test_bench_run_sends_auth_and_select_first(void **state)
{
    struct fake_server *s = fake_start();
    s->password = "secret";
    struct bench_config cfg;
    config_for(&cfg, s);
    cfg.requests = 100;
    cfg.auth = "secret";
    cfg.select_db = 3;
    struct bench_result res;
    run_into(&cfg, &res);
    assert_true(bench_report_ok(&res));
    assert_int_equal(res.stats.sent, 600);
    assert_int_equal(s->requests, 600 + 2 * 6);
    assert_int_equal(s->connections, 6);
    for (unsigned i = 0; i < 6; i++) {
        assert_string_equal(s->opening[i][0], "AUTH secret");
        assert_string_equal(s->opening[i][1], "SELECT 3");
    }
    bench_result_fini(&res);
    fake_stop(s);
}

/* memtier's credentials: USER:PASSWORD is AUTH with two arguments, and a
 * leading ':' keeps a password with colons whole. No SELECT unless asked. */
static void test_bench_run_auth_takes_user_and_password(void **state)
{
    static const char *const creds[][2] = {
        {"admin:pw", "AUTH admin pw"}, {":pass:word", "AUTH pass:word"}, {"plain", "AUTH plain"}};
    for (size_t k = 0; k < sizeof creds / sizeof creds[0]; k++) {
        struct fake_server *s = fake_start();
        struct bench_config cfg;
        config_for(&cfg, s);
        cfg.threads = 1;
        cfg.clients = 2;
        cfg.requests = 10;
        cfg.ratio_set = 0;
        cfg.ratio_get = 1;
        cfg.auth = creds[k][0];
        struct bench_result res;
        run_into(&cfg, &res);
        assert_true(bench_report_ok(&res));
        assert_int_equal(s->connections, 2);
        for (unsigned i = 0; i < 2; i++) {
            assert_string_equal(s->opening[i][0], creds[k][1]);
            assert_non_null(strstr(s->opening[i][1], "GET k:"));
        }
        bench_result_fini(&res);
        fake_stop(s);
    }
}

/* A refused AUTH stops the run before it starts, saying what the server said. */
static void test_bench_run_rejected_auth_stops_run(void **state)
{
    struct fake_server *s = fake_start();
    s->password = "secret";
    struct bench_config cfg;
    config_for(&cfg, s);
    cfg.auth = "guess";
    struct bench_result res;
    assert_int_equal(bench_result_init(&res), 0);
    assert_true(bench_run(&cfg, "auth", NULL, &res) < 0);
    assert_non_null(strstr(res.error, "AUTH"));
    assert_non_null(strstr(res.error, "WRONGPASS"));
    assert_int_equal(res.stats.sent, 0);
    bench_result_fini(&res);
    fake_stop(s);
}

/* --print-percentiles: the table has a column and the JSON a key for each
 * percentile asked for, and none for the defaults left out. */
static void test_bench_run_reports_chosen_percentiles(void **state)
{
    struct fake_server *s = fake_start();
    struct bench_config cfg;
    config_for(&cfg, s);
    cfg.requests = 200;
    cfg.npercentiles = 3;
    cfg.percentiles[0] = 90.0;
    cfg.percentiles[1] = 99.999;
    cfg.percentiles[2] = 25.0;
    struct bench_result res;
    run_into(&cfg, &res);
    struct memtext m;
    bench_report_text(memtext_open(&m), &cfg, "ALL STATS", &res);
    char *text = memtext_close(&m);
    const char *p90 = strstr(text, "p90 Latency");
    const char *p99999 = strstr(text, "p99.999 Latency");
    const char *p25 = strstr(text, "p25 Latency");
    assert_true(p90 && p99999 && p25 && p90 < p99999 && p99999 < p25);
    assert_null(strstr(text, "p50 Latency"));
    free(text);
    char path[] = "/tmp/test_bench_run_XXXXXX";
    make_temp(path);
    assert_int_equal(bench_report_json(path, &cfg, &res), 0);
    char *json = slurp(path);
    assert_non_null(strstr(json, "\"p90.00\": "));
    assert_non_null(strstr(json, "\"p99.999\": "));
    assert_non_null(strstr(json, "\"p25.00\": "));
    assert_null(strstr(json, "\"p50.00\""));
    free(json);
    unlink(path);
    bench_result_fini(&res);
    fake_stop(s);
}

/* --run-count: the average's rates are the mean of the runs' rates, its
 * counts and histograms those of all runs together; the JSON of several runs
 * has memtier's best, worst and aggregated sections and no "ALL STATS". */
static void test_bench_run_averages_runs(void **state)
{
    struct fake_server *s = fake_start();
    struct bench_config cfg;
    config_for(&cfg, s);
    cfg.requests = 300;
    cfg.run_count = 2;
    struct bench_average avg;
    assert_int_equal(bench_average_init(&avg), 0);
    struct bench_result res[2];
    struct bench_row rows[2][BENCH_ROW_COUNT];
    for (int i = 0; i < 2; i++) {
        run_into(&cfg, &res[i]);
        assert_int_equal(bench_report_rows(&cfg, &res[i], rows[i]), 0);
        assert_int_equal(bench_average_add(&avg, &cfg, &res[i]), 0);
    }
    struct bench_row mean[BENCH_ROW_COUNT];
    assert_int_equal(bench_average_rows(&cfg, &avg, mean), 0);
    for (int r = 0; r < BENCH_ROW_COUNT; r++) {
        double want = (rows[0][r].ops_per_s + rows[1][r].ops_per_s) / 2;
        assert_true(mean[r].ops_per_s > want * 0.999999 && mean[r].ops_per_s < want * 1.000001);
        assert_int_equal(mean[r].count, rows[0][r].count + rows[1][r].count);
    }
    assert_int_equal(avg.sum.stats.replies, 3600);
    assert_int_equal(avg.sum.stats.op[BENCH_OP_GET].hist.total +
                         avg.sum.stats.op[BENCH_OP_SET].hist.total,
                     3600);
    assert_true(bench_report_ok(&avg.sum));

    struct memtext m;
    bench_report_average_text(memtext_open(&m), &cfg, &avg);
    char *text = memtext_close(&m);
    assert_non_null(strstr(text, "AGGREGATED AVERAGE RESULTS (2 runs)"));
    assert_non_null(strstr(text, "requests 3600, replies 3600"));
    free(text);

    char path[] = "/tmp/test_bench_run_XXXXXX";
    make_temp(path);
    assert_int_equal(bench_report_json_runs(path, &cfg, &res[0], &res[1], &avg), 0);
    char *json = slurp(path);
    assert_non_null(strstr(json, "\"BEST RUN RESULTS\""));
    assert_non_null(strstr(json, "\"WORST RUN RESULTS\""));
    assert_non_null(strstr(json, "\"AGGREGATED AVERAGE RESULTS (2 runs)\""));
    assert_null(strstr(json, "\"ALL STATS\""));
    assert_non_null(strstr(json, "\"requests_sent\": 3600"));
    free(json);
    unlink(path);
    for (int i = 0; i < 2; i++)
        bench_result_fini(&res[i]);
    bench_average_fini(&avg);
    fake_stop(s);
}

/* --cluster-mode against a stale map: every slot said to be on a, which
 * sends slots 8192 and up to b with `redirect`. Sets and gets, checked
 * values, every request answered; the result's redirection counts. */
static void cluster_run(struct fake_server *a, struct fake_server *b, const char *redirect,
                        uint64_t *moved, uint64_t *ask)
{
    char slots[128];
    snprintf(slots, sizeof slots, "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:%s\r\n",
             a->port);
    a->cluster_slots = slots;
    a->redirect = redirect;
    a->redirect_port = b->port;
    struct bench_config cfg;
    checked_mix(&cfg, a, 1, 1, 400);
    cfg.cluster_mode = true;
    struct bench_result res;
    run_into(&cfg, &res);
    if (!bench_report_ok(&res)) {
        char why[512];
        bench_report_why(&res, why, sizeof why);
        fail_msg("cluster run not clean: %s", why);
    }
    assert_int_equal(res.stats.sent, 2 * 3 * 400);
    assert_int_equal(res.stats.replies, 2 * 3 * 400);
    assert_true(res.stats.op[BENCH_OP_GET].hits > 0);
    *moved = res.stats.op[BENCH_OP_SET].moved + res.stats.op[BENCH_OP_GET].moved;
    *ask = res.stats.op[BENCH_OP_SET].ask + res.stats.op[BENCH_OP_GET].ask;
    bench_result_fini(&res);
    a->cluster_slots = a->redirect = NULL;
}

static void test_bench_run_cluster_follows_moved(void **state)
{
    struct fake_server *a = fake_start(), *b = fake_start();
    uint64_t moved, ask;
    cluster_run(a, b, "MOVED", &moved, &ask);
    /* b served the upper half once told; each thread learns each slot once,
     * so far fewer MOVED than the half of 2400 requests b served */
    assert_true(moved > 0);
    assert_true(moved < 2 * 3 * 400 / 2);
    assert_int_equal(ask, 0);
    assert_true(b->requests > moved);
    assert_int_equal(b->asking, 0);
    fake_stop(b);
    fake_stop(a);
}

static void test_bench_run_cluster_follows_ask_once(void **state)
{
    struct fake_server *a = fake_start(), *b = fake_start();
    uint64_t moved, ask;
    cluster_run(a, b, "ASK", &moved, &ask);
    /* ASK moves nothing: every request for the upper half is asked again,
     * each preceded by ASKING on b */
    assert_int_equal(moved, 0);
    assert_true(ask > 2 * 3 * 400 / 4);
    assert_int_equal(b->asking, ask);
    fake_stop(b);
    fake_stop(a);
}

static void test_bench_run_cluster_refuses_non_cluster_server(void **state)
{
    struct fake_server *s = fake_start();
    struct bench_config cfg;
    config_for(&cfg, s);
    cfg.cluster_mode = true;
    struct bench_result res;
    assert_int_equal(bench_result_init(&res), 0);
    assert_true(bench_run(&cfg, "test", NULL, &res) < 0);
    assert_non_null(strstr(res.error, "cluster support disabled"));
    bench_result_fini(&res);
    fake_stop(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bench_run_counts_add_up),
        cmocka_unit_test(test_bench_run_verifies_values),
        cmocka_unit_test(test_bench_run_flags_unchecked_values),
        cmocka_unit_test(test_bench_run_rate_limit_has_no_coordinated_omission),
        cmocka_unit_test(test_bench_run_rate_limit_drains_backlog_at_deadline),
        cmocka_unit_test(test_bench_run_rate_limit_counts_unsent_backlog),
        cmocka_unit_test(test_bench_run_stops_at_test_time),
        cmocka_unit_test(test_bench_run_reports_refused_connection),
        cmocka_unit_test(test_bench_run_sends_auth_and_select_first),
        cmocka_unit_test(test_bench_run_auth_takes_user_and_password),
        cmocka_unit_test(test_bench_run_rejected_auth_stops_run),
        cmocka_unit_test(test_bench_run_reports_chosen_percentiles),
        cmocka_unit_test(test_bench_run_averages_runs),
        cmocka_unit_test(test_bench_run_cluster_follows_moved),
        cmocka_unit_test(test_bench_run_cluster_follows_ask_once),
        cmocka_unit_test(test_bench_run_cluster_refuses_non_cluster_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
