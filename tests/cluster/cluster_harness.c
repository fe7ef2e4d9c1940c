/* cluster_harness.c: see cluster_harness.h. */
#include "cluster_harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

static struct cluster_node nodes[CLUSTER_NODES_MAX];
static int base_port; /* P */
static char scratch[64];

int64_t cluster_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool cluster_wait(bool (*cond)(void *arg), void *arg, int timeout_ms)
{
    int64_t end = cluster_now_ms() + timeout_ms;
    for (;;) {
        if (cond(arg))
            return true;
        if (cluster_now_ms() >= end)
            return false;
        usleep(50 * 1000);
    }
}

struct cluster_node *cluster_node(int i)
{
    return &nodes[i];
}

static void host_of(int i, char out[16], size_t cap)
{
    snprintf(out, cap, "127.0.0.%d", (i & 0xff) + 2);
}

/* True when type/port is free on host (bound, then released). */
static bool port_free(const char *host, int type, int port)
{
    int fd = socket(AF_INET, type, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Picks P with P, P + 1000 and P + 10000 free on every node's address. */
static int pick_ports(void)
{
    unsigned seed;
    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
        seed = (unsigned)getpid() ^ (unsigned)cluster_now_ms();
    srand(seed); /* not the pid and the clock: tests started together drew one port */
    for (int attempt = 0; attempt < 200; attempt++) {
        int p = 20000 + rand() % 20000;
        bool ok = true;
        for (int i = 0; i < CLUSTER_NODES_MAX && ok; i++) {
            char h[16];
            host_of(i, h, sizeof h);
            ok = port_free(h, SOCK_STREAM, p) && port_free(h, SOCK_STREAM, p + 1000) &&
                 port_free(h, SOCK_STREAM, p + 10000) && port_free(h, SOCK_DGRAM, p + 10000);
        }
        if (ok) {
            base_port = p;
            return 0;
        }
    }
    fprintf(stderr, "cluster: no free ports on 127.0.0.2-6\n");
    return -EADDRINUSE;
}

const char *cluster_seed(int i)
{
    static char seed[32];
    snprintf(seed, sizeof seed, "127.0.0.%d:%d", i + 2, base_port + 10000);
    return seed;
}

json_t *cluster_get(int i, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return NULL;
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(base_port + 1000))};
    char host[16];
    host_of(i, host, sizeof host);
    inet_pton(AF_INET, host, &sa.sin_addr);
    char req[256], buf[1 << 16];
    size_t len = 0;
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, host);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || send(fd, req, (size_t)n, 0) != n) {
        close(fd);
        return NULL;
    }
    char *big = NULL; /* /v1/ring is larger than buf */
    size_t cap = sizeof buf;
    char *p = buf;
    for (;;) {
        if (len + 1 >= cap) {
            char *nb = realloc(big, cap * 2);
            if (!nb)
                break;
            if (!big)
                memcpy(nb, buf, len);
            big = p = nb;
            cap *= 2;
        }
        ssize_t r = recv(fd, p + len, cap - len - 1, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    p[len] = '\0';
    json_t *doc = NULL;
    char *body = strstr(p, "\r\n\r\n");
    if (strncmp(p, "HTTP/1.", 7) == 0 && strncmp(p + 8, " 200", 4) == 0 && body)
        doc = json_loads(body + 4, 0, NULL);
    free(big);
    return doc;
}

const char *cluster_status_of(int viewer, const char *id)
{
    static char status[16];
    json_t *doc = cluster_get(viewer, "/v1/nodes");
    json_t *list = json_object_get(doc, "nodes"), *n;
    size_t k;
    const char *found = NULL;
    json_array_foreach(list, k, n) {
        if (strcmp(json_string_value(json_object_get(n, "id")) ?: "", id) == 0) {
            snprintf(status, sizeof status, "%s",
                     json_string_value(json_object_get(n, "status")) ?: "?");
            found = status;
        }
    }
    json_decref(doc);
    return found;
}

static bool health_ok(void *arg)
{
    int i = *(int *)arg;
    int st;
    if (nodes[i].pid && waitpid(nodes[i].pid, &st, WNOHANG) == nodes[i].pid) {
        nodes[i].pid = 0;
        return true; /* died: stop waiting */
    }
    json_t *doc = cluster_get(i, "/v1/health");
    const char *id = json_string_value(json_object_get(doc, "id"));
    if (id)
        snprintf(nodes[i].id, sizeof nodes[i].id, "%s", id);
    json_decref(doc);
    return id != NULL;
}

int cluster_start(int i, const char *const *flags)
{
    if (!scratch[0]) {
        snprintf(scratch, sizeof scratch, "/tmp/ringkv-cluster-XXXXXX");
        if (!mkdtemp(scratch) || pick_ports() != 0)
            return -EIO;
    }
    const char *bin = getenv("RINGKV_BIN");
    if (!bin) {
        fprintf(stderr, "cluster: RINGKV_BIN is not set\n");
        return -EINVAL;
    }
    struct cluster_node *n = &nodes[i];
    host_of(i, n->host, sizeof n->host);
    char dir[128], logf[160], port[16];
    snprintf(dir, sizeof dir, "%s/n%d", scratch, i);
    snprintf(logf, sizeof logf, "%s/n%d.log", scratch, i);
    snprintf(port, sizeof port, "%d", base_port);
    mkdir(dir, 0700);
    const char *argv[40] = {bin, "--bind", n->host, "--port", port, "--memcache-port", "0",
                            "--threads", "1", "--cpu-affinity", "no", "--storage", "memory",
                            "--dir", dir, "--loglevel", "verbose"};
    int argc = 17;
    for (int k = 0; flags && flags[k] && argc < 38; k++)
        argv[argc++] = flags[k];
    argv[argc] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        int fd = open(logf, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    n->pid = pid;
    n->id[0] = '\0';
    cluster_wait(health_ok, &i, 10000);
    if (!n->pid || !n->id[0]) {
        fprintf(stderr, "cluster: node %d (%s) did not start\n", i, n->host);
        return -EIO;
    }
    return 0;
}

/* kill() returns before a busy process has stopped: its threads may still
 * answer a request or two. Waits (up to 5 s) until waitpid reports it
 * stopped, so a test's next request meets a frozen node. */
static void wait_stopped(pid_t pid)
{
    int status;
    int64_t until = cluster_now_ms() + 5000;
    while (cluster_now_ms() < until) {
        pid_t got = waitpid(pid, &status, WUNTRACED | WNOHANG);
        if (got == pid && WIFSTOPPED(status))
            return;
        if (got < 0)
            return;
        usleep(1000);
    }
}

void cluster_signal(int i, int sig)
{
    if (!nodes[i].pid)
        return;
    kill(nodes[i].pid, sig);
    if (sig == SIGKILL) {
        waitpid(nodes[i].pid, NULL, 0);
        nodes[i].pid = 0;
    } else if (sig == SIGSTOP) {
        wait_stopped(nodes[i].pid);
    }
}

void cluster_stop(int i)
{
    pid_t pid = nodes[i].pid;
    if (!pid)
        return;
    kill(pid, SIGCONT);
    kill(pid, SIGTERM);
    int64_t end = cluster_now_ms() + 10000;
    while (waitpid(pid, NULL, WNOHANG) == 0) {
        if (cluster_now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            break;
        }
        usleep(20 * 1000);
    }
    nodes[i].pid = 0;
}

int cluster_finish(int failures)
{
    for (int i = 0; i < CLUSTER_NODES_MAX; i++)
        cluster_stop(i);
    if (!scratch[0])
        return failures;
    for (int i = 0; i < CLUSTER_NODES_MAX; i++) {
        char path[160], line[1024];
        snprintf(path, sizeof path, "%s/n%d.log", scratch, i);
        FILE *f = failures ? fopen(path, "r") : NULL;
        if (f) {
            fprintf(stderr, "---- node %d (127.0.0.%d) ----\n", i, i + 2);
            while (fgets(line, sizeof line, f))
                fputs(line, stderr);
            fclose(f);
        }
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
    if (system(cmd) != 0)
        fprintf(stderr, "cluster: could not remove %s\n", scratch);
    return failures;
}

bool cluster_formed(void *arg)
{
    int n = *(const int *)arg;
    char hash0[32] = "";
    for (int i = 0; i < n; i++) {
        json_t *doc = cluster_get(i, "/v1/nodes");
        json_t *list = json_object_get(doc, "nodes"), *m;
        size_t k, up = 0;
        json_array_foreach(list, k, m)
            up += strcmp(json_string_value(json_object_get(m, "status")) ?: "", "up") == 0;
        bool ok = json_array_size(list) == (size_t)n && up == (size_t)n;
        json_decref(doc);
        doc = cluster_get(i, "/v1/ring");
        const char *hash = json_string_value(json_object_get(doc, "hash"));
        ok = ok && hash && json_array_size(json_object_get(doc, "members")) == (size_t)n &&
             (i == 0 || strcmp(hash, hash0) == 0);
        if (ok && i == 0)
            snprintf(hash0, sizeof hash0, "%s", hash);
        json_decref(doc);
        if (!ok)
            return false;
    }
    return true;
}

void cluster_print_views(int n)
{
    for (int i = 0; i < n; i++) {
        json_t *doc = cluster_get(i, "/v1/nodes");
        json_t *list = json_object_get(doc, "nodes"), *m;
        size_t k;
        fprintf(stderr, "cluster: node %d (%.12s) sees:", i, cluster_node(i)->id);
        json_array_foreach(list, k, m)
            fprintf(stderr, " %.12s %s", json_string_value(json_object_get(m, "id")) ?: "?",
                    json_string_value(json_object_get(m, "status")) ?: "?");
        json_decref(doc);
        doc = cluster_get(i, "/v1/ring");
        fprintf(stderr, "; ring epoch %lld hash %s, %zu members\n",
                (long long)json_integer_value(json_object_get(doc, "epoch")),
                json_string_value(json_object_get(doc, "hash")) ?: "?",
                json_array_size(json_object_get(doc, "members")));
        json_decref(doc);
    }
}

int cluster_moved_to(redisContext *ro, const char *key)
{
    redisReply *r = redisCommand(ro, "GET %s", key);
    if (!r) {
        fprintf(stderr, "cluster: no reply to GET %s: %s\n", key, ro->errstr);
        return -2;
    }
    int to = -1;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "MOVED ", 6) == 0) {
        const char *addr = strchr(r->str + 6, ' ');
        to = -2;
        for (int i = 0; addr && i < CLUSTER_NODES_MAX; i++) {
            size_t n = strlen(cluster_host(i));
            if (strncmp(addr + 1, cluster_host(i), n) == 0 && addr[1 + n] == ':')
                to = i;
        }
        if (to == -2)
            fprintf(stderr, "cluster: GET %s: -%s names no node\n", key, r->str);
    }
    freeReplyObject(r);
    return to;
}

int cluster_client_port(void)
{
    return base_port;
}

int cluster_forget(int i)
{
    cluster_stop(i);
    if (!scratch[0])
        return 0;
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/n%d'", scratch, i);
    if (system(cmd) != 0) {
        fprintf(stderr, "cluster: could not remove %s/n%d\n", scratch, i);
        return -EIO;
    }
    return 0;
}

/* Reads the whole answer on fd into a malloc'd, NUL-terminated string. */
static char *read_answer(int fd)
{
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap);
    while (buf) {
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    if (buf)
        buf[len] = '\0';
    return buf;
}

/* Sends HTTP request req to node i's admin port (2 s timeouts): the
 * connected socket, or -1. */
static int admin_send(int i, const char *req, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)(base_port + 1000))};
    inet_pton(AF_INET, cluster_host(i), &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        send(fd, req, len, 0) != (ssize_t)len) {
        close(fd);
        return -1;
    }
    return fd;
}

json_t *cluster_request(int i, const char *method, const char *path, const char *body,
                        int *status)
{
    *status = 0;
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.0\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, cluster_host(i), strlen(body), body);
    int fd = n < 0 || n >= (int)sizeof req ? -1 : admin_send(i, req, (size_t)n);
    if (fd < 0)
        return NULL;
    char *answer = read_answer(fd);
    close(fd);
    json_t *doc = NULL;
    char *start = answer ? strstr(answer, "\r\n\r\n") : NULL;
    if (answer && sscanf(answer, "HTTP/1.%*d %d", status) == 1 && start)
        doc = json_loads(start + 4, 0, NULL);
    free(answer);
    return doc;
}

const char *cluster_host(int i)
{
    static char host[16];
    host_of(i, host, sizeof host);
    return host;
}

int cluster_forget_all(void **state)
{
    (void)state;
    int rc = 0;
    for (int i = 0; i < CLUSTER_NODES_MAX; i++)
        rc = cluster_forget(i) ?: rc;
    return rc;
}

char *cluster_ask(int i, const char *command)
{
    struct timeval tv = {.tv_sec = 2};
    redisContext *c = redisConnectWithTimeout(cluster_node(i)->host, cluster_client_port(), tv);
    if (!c || c->err) {
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    redisReply *r = redisCommand(c, command);
    char *text = NULL;
    if (r && r->type == REDIS_REPLY_STRING)
        text = strndup(r->str, r->len);
    else if (r && r->type == REDIS_REPLY_ERROR)
        fprintf(stderr, "node %d: %s: %s\n", i, command, r->str);
    freeReplyObject(r);
    redisFree(c);
    return text;
}

long long cluster_info_field(const char *text, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, "%s:", name);
    size_t len = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, key, len) == 0)
            return strtoll(p + len, NULL, 10);
    return -1;
}

bool cluster_info_has(const char *text, const char *line)
{
    size_t len = strlen(line);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, line, len) == 0 && (p[len] == '\r' || p[len] == '\n' || !p[len]))
            return true;
    return false;
}

struct redisContext *cluster_redis(int i)
{
    struct timeval tv = {.tv_sec = 10};
    redisContext *c = redisConnectWithTimeout(cluster_host(i), cluster_client_port(), tv);
    if (!c || c->err) {
        fprintf(stderr, "cluster: cannot connect to node %d: %s\n", i, c ? c->errstr : "no memory");
        abort();
    }
    redisSetTimeout(c, tv);
    return c;
}

struct redisReply *cluster_redis_command(int i, const char *format, ...)
{
    struct timeval tv = {.tv_sec = 2};
    redisContext *c = redisConnectWithTimeout(cluster_node(i)->host, cluster_client_port(), tv);
    redisReply *r = NULL;
    if (c && !c->err) {
        redisSetTimeout(c, tv);
        va_list ap;
        va_start(ap, format);
        r = redisvCommand(c, format, ap);
        va_end(ap);
    }
    if (!r)
        fprintf(stderr, "node %d: %s: no reply (%s)\n", i, format, c ? c->errstr : "no memory");
    redisFree(c);
    return r;
}

/* Nodes 0 .. n - 1 each serve, on their shard, the ring their admin API
 * reports, with n members up: the coordinator's view, which a shard takes
 * from a snapshot published a moment after /v1/ring changed. */
bool cluster_views_agree(void *arg)
{
    int n = *(const int *)arg;
    for (int i = 0; i < n; i++) {
        json_t *ring = cluster_get(i, "/v1/ring");
        char line[64];
        snprintf(line, sizeof line, "ringkv_ring_hash:%s",
                 json_string_value(json_object_get(ring, "hash")) ?: "?");
        json_decref(ring);
        char *info = cluster_ask(i, "CLUSTER INFO");
        bool ok = info && cluster_info_has(info, line) &&
                  cluster_info_field(info, "ringkv_nodes_up") == n;
        free(info);
        if (!ok)
            return false;
    }
    return true;
}

/* A cluster_wait() condition; arg points to an int n: no node 0 .. n - 1
 * pulls a partition any more (GET /v1/ring: none pending or streaming). A
 * node that joined pulls every partition of its lists, empty or not; a
 * write made meanwhile may reach it through that pull as well as through
 * replication, which tests of replication alone must not see. */
bool cluster_pulls_done(void *arg)
{
    int n = *(const int *)arg;
    for (int i = 0; i < n; i++) {
        json_t *ring = cluster_get(i, "/v1/ring");
        json_t *t = ring ? json_object_get(ring, "transfers") : NULL;
        /* every shard has taken the ring (else nothing is pending yet) */
        bool taken = t && json_integer_value(json_object_get(t, "ring_epoch")) ==
                              json_integer_value(json_object_get(ring, "epoch"));
        bool idle = taken && json_integer_value(json_object_get(t, "partitions_pending")) == 0 &&
                    json_integer_value(json_object_get(t, "partitions_streaming")) == 0 &&
                    json_is_integer(json_object_get(t, "partitions_pending"));
        json_decref(ring);
        if (!idle)
            return false;
    }
    return true;
}

int cluster_start_formed_mc(int n, const char *const *flags, int *mc_port)
{
    static char port[16]; /* the argv of every node's start */
    *mc_port = cluster_free_port(n);
    if (*mc_port < 0)
        return -EADDRINUSE;
    snprintf(port, sizeof port, "%d", *mc_port);
    const char *all[19] = {"--memcache-port", port};
    int k = 2;
    for (; flags && flags[k - 2] && k < 18; k++)
        all[k] = flags[k - 2];
    all[k] = NULL;
    return cluster_start_formed(n, all);
}

int cluster_start_formed(int n, const char *const *flags)
{
    for (int i = 0; i < n; i++) {
        const char *argv[24];
        int argc = 0;
        for (; flags && flags[argc] && argc < 20; argc++)
            argv[argc] = flags[argc];
        if (i > 0) {
            argv[argc++] = "--seeds";
            argv[argc++] = cluster_seed(0);
        }
        argv[argc] = NULL;
        int rc = cluster_start(i, argv);
        if (rc < 0)
            return rc;
    }
    if (!cluster_wait(cluster_formed, &n, 15000) || !cluster_wait(cluster_views_agree, &n, 5000)) {
        fprintf(stderr, "cluster: %d nodes did not form one cluster within 20 s\n", n);
        cluster_print_views(n);
        return -ETIMEDOUT;
    }
    int64_t t0 = cluster_now_ms();
    if (!cluster_wait(cluster_pulls_done, &n, 20000)) {
        fprintf(stderr, "cluster: %d nodes still pulling partitions 20 s after forming\n", n);
        return -ETIMEDOUT;
    }
    if (cluster_now_ms() - t0 > 1000)
        fprintf(stderr, "cluster: %d nodes pulled their partitions %lld ms after forming\n", n,
                (long long)(cluster_now_ms() - t0));
    return 0;
}

redisContext *cluster_connect(int i, int timeout_ms)
{
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = timeout_ms % 1000 * 1000};
    redisContext *c = redisConnectWithTimeout(cluster_host(i), cluster_client_port(), tv);
    if (!c || c->err) {
        fprintf(stderr, "cluster: cannot connect to node %d: %s\n", i, c ? c->errstr : "?");
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

int cluster_wipe_data(int i)
{
    cluster_stop(i);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/n%d'/shard-* '%s/n%d/ringkv.meta'", scratch, i, scratch,
             i);
    if (!scratch[0] || system(cmd) != 0) {
        fprintf(stderr, "cluster: could not wipe the data of node %d\n", i);
        return -EIO;
    }
    return 0;
}

/* Node i's count of nodes down (CLUSTER INFO: its shard's view); -1 when
 * it does not answer. */
static long long nodes_down(int i)
{
    char *info = cluster_ask(i, "CLUSTER INFO");
    long long down = cluster_info_field(info, "ringkv_nodes_down");
    free(info);
    return down;
}

struct down_counts {
    long long before[CLUSTER_NODES_MAX];
};

static bool down_counts_back(void *arg)
{
    const struct down_counts *d = arg;
    for (int j = 0; j < CLUSTER_NODES_MAX; j++)
        if (nodes[j].pid && nodes_down(j) > d->before[j])
            return false;
    return true;
}

void cluster_alone(int i, int hold_ms, void (*fn)(void *arg), void *arg)
{
    struct down_counts d;
    for (int j = 0; j < CLUSTER_NODES_MAX; j++)
        d.before[j] = nodes[j].pid ? nodes_down(j) : 0;
    for (int j = 0; j < CLUSTER_NODES_MAX; j++)
        if (j != i)
            cluster_signal(j, SIGSTOP);
    int64_t until = cluster_now_ms() + hold_ms;
    fn(arg);
    while (cluster_now_ms() < until)
        usleep(20 * 1000);
    for (int j = 0; j < CLUSTER_NODES_MAX; j++)
        if (j != i)
            cluster_signal(j, SIGCONT);
    if (!cluster_wait(down_counts_back, &d, 10000))
        fprintf(stderr, "cluster: nodes still count more nodes down 10 s after a freeze\n");
}

int cluster_ring_get(redisContext *c, const char *key, int r, struct cluster_versions *out)
{
    memset(out, 0, sizeof *out);
    redisReply *rep =
        r > 0 ? redisCommand(c, "RING.GET %s R %d", key, r) : redisCommand(c, "RING.GET %s", key);
    out->reply = rep;
    if (!rep)
        return -EIO;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING || rep->element[1]->type != REDIS_REPLY_ARRAY)
        return -EPROTO;
    for (size_t k = 0; k < rep->element[1]->elements; k++)
        if (rep->element[1]->element[k]->type != REDIS_REPLY_STRING)
            return -EPROTO;
    out->ctx = rep->element[0]->str;
    out->ctx_len = rep->element[0]->len;
    out->values = rep->element[1]->element;
    out->nvalues = rep->element[1]->elements;
    return 0;
}

void cluster_versions_free(struct cluster_versions *v)
{
    freeReplyObject(v->reply);
    memset(v, 0, sizeof *v);
}

bool cluster_versions_has(const struct cluster_versions *v, const char *value)
{
    for (size_t k = 0; k < v->nvalues; k++)
        if (v->values[k]->len == strlen(value) &&
            memcmp(v->values[k]->str, value, v->values[k]->len) == 0)
            return true;
    return false;
}

const char *cluster_versions_text(const struct cluster_versions *v)
{
    static char text[1024];
    const redisReply *r = v->reply;
    if (!r)
        return "(no reply)";
    if (!v->ctx && r->type == REDIS_REPLY_ERROR) {
        snprintf(text, sizeof text, "-%s", r->str);
        return text;
    }
    if (!v->ctx) {
        snprintf(text, sizeof text, "(a reply of type %d, not [context, [siblings]])", r->type);
        return text;
    }
    size_t len = (size_t)snprintf(text, sizeof text, "[");
    for (size_t k = 0; k < v->nvalues && len < sizeof text - 64; k++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%s%.*s", k ? ", " : "",
                                (int)v->values[k]->len, v->values[k]->str);
    snprintf(text + len, sizeof text - len, "] (context of %zu bytes)", v->ctx_len);
    return text;
}

/* Binds a socket to node i's address at port (0: any); the bound port, or
 * -1. *fd receives the socket (-1 on failure). */
static int bind_on(int i, int port, int *fd)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    socklen_t len = sizeof a;
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    if (*fd < 0 || inet_pton(AF_INET, cluster_host(i), &a.sin_addr) != 1 ||
        bind(*fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(*fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    return ntohs(a.sin_port);
}

int cluster_free_port(int n)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        int fds[CLUSTER_NODES_MAX] = {-1, -1, -1, -1, -1};
        int port = bind_on(0, 0, &fds[0]), bound = port > 0;
        while (bound && bound < n && bind_on(bound, port, &fds[bound]) == port)
            bound++;
        for (int i = 0; i < CLUSTER_NODES_MAX; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        if (bound == n)
            return port;
    }
    fprintf(stderr, "cluster: no port free on the addresses of %d nodes\n", n);
    return -1;
}

char *cluster_mc_ask(int i, int port, const char *req, const char *until)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, cluster_host(i), &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {.tv_sec = 10};
    size_t cap = 4096, n = 0, want = strlen(req);
    char *out = calloc(1, cap);
    if (fd < 0 || !out || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        write(fd, req, want) != (ssize_t)want) {
        fprintf(stderr, "node %d: memcache port %d: %s\n", i, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        free(out);
        return NULL;
    }
    ssize_t got = 1;
    while (got > 0 && n < cap - 1 && !strstr(out, until)) {
        got = read(fd, out + n, cap - 1 - n);
        n += got > 0 ? (size_t)got : 0;
    }
    close(fd);
    return out;
}

char *cluster_get_text(int i, const char *path)
{
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path,
                     cluster_host(i));
    int fd = n < 0 || n >= (int)sizeof req ? -1 : admin_send(i, req, (size_t)n);
    if (fd < 0)
        return NULL;
    char *answer = read_answer(fd);
    close(fd);
    int status = 0;
    char *start = answer ? strstr(answer, "\r\n\r\n") : NULL;
    char *body = NULL;
    if (answer && sscanf(answer, "HTTP/1.%*d %d", &status) == 1 && status == 200 && start)
        body = strdup(start + 4);
    free(answer);
    return body;
}

double cluster_metric(const char *text, const char *sample)
{
    size_t len = strlen(sample);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, sample, len) == 0 && p[len] == ' ')
            return strtod(p + len + 1, NULL);
    return -1;
}

const char *cluster_dir(int i)
{
    static char dir[160];
    snprintf(dir, sizeof dir, "%s/n%d", scratch, i);
    return dir;
}

long long cluster_info_stat(int i, const char *section, const char *name)
{
    char command[64];
    snprintf(command, sizeof command, "INFO %s", section);
    char *info = cluster_ask(i, command);
    long long v = info ? cluster_info_field(info, name) : -1;
    free(info);
    return v;
}
