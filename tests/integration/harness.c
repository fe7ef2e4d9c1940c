/* harness.c: the integration tests' node launcher and client helpers.
 * A registry (one slot per started node, at most HARNESS_MAX_SERVERS per test
 * program) keeps each node's scratch directory, PIDs and output files, so
 * that harness_finish() can print the output after a failure and the atexit
 * hook can kill what a crashed or aborted test left running. A node runs in its
 * own mkdtemp directory (anything it writes stays there; removed at exit), or
 * in the test's own directory (harness_opts.dir, kept), with stdin from
 * /dev/null and stdout+stderr to <dir>/<name>.log; PR_SET_PDEATHSIG kills it
 * if the test process dies without running atexit.
 * Readiness is a condition with a deadline: every 10 ms the harness checks the
 * child is alive (waitpid WNOHANG) and tries to connect to each port. Ports
 * come from binding port 0; a node that exits before accepting (its port was
 * taken in between) is started again on new ports, up to three times.
 * Stopping is by PID only: SIGTERM, poll waitpid until the deadline, SIGKILL.
 * A node that died before it was asked to stop, or exited badly, makes
 * harness_stop() fail, so a test whose node crashed can never pass.
 * Client helpers run on the cmocka thread and report failures with
 * print_error() and _fail() at the caller's file and line. Raw sockets are
 * non-blocking; every wait is a poll() bounded by a deadline. The RESP reader
 * here is a small independent parser (RESP2 and RESP3) used only to check what
 * the server sent; it shares nothing with net/resp.c on purpose. */
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HARNESS_MAX_SERVERS 32
#define HARNESS_MAX_ARGV 64
#define HARNESS_START_ATTEMPTS 3
#define HARNESS_POLL_MS 10
#define HARNESS_LOG_TAIL 32768 /* bytes of a node's output printed after a failure */
#define HARNESS_DESCRIBE_MAX 512
#define HARNESS_ESC_MAX 200 /* escaped text quoted inside a description */

struct harness_proc {
    pid_t pid;   /* 0 when never started or already reaped */
    bool exited; /* reaped: status says how it ended */
    int status;  /* waitpid status once exited */
    char name[32];
    char log_path[HARNESS_PATH_MAX];
};

struct harness_entry {
    bool used;
    bool own_dir; /* dir is the harness's scratch directory (removed at exit) */
    char dir[HARNESS_PATH_MAX - 32];
    struct harness_proc main;
    struct harness_proc mc;
};

/* Test-process state: the cmocka thread alone touches it. */
static struct harness_entry registry[HARNESS_MAX_SERVERS];
static bool atexit_registered;
/* Starts that failed and stops that found a dead or misbehaving node: cmocka
 * does not count failed group fixtures, so harness_finish() adds these. */
static int node_failures;

/* Flags only ringkv knows, dropped (with their value) under the redis target. */
static const char *const ringkv_only_flags[] = {"--threads", "--memcache-port", "--storage",
                                                "--slow-turn-ms", "--request-timeout", NULL};

bool harness_target_is_redis(void)
{
    const char *t = getenv("RINGKV_TEST_TARGET");
    return t != NULL && strcmp(t, "redis") == 0;
}

int64_t harness_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void harness_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

bool harness_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms, int poll_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        if (cond(arg))
            return true;
        if (harness_now_ms() >= deadline)
            return false;
        harness_sleep_ms(poll_ms);
    }
}

/* ---- processes ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

void harness_noise(uint32_t seed, char *out, size_t len)
{
    uint32_t x = seed * 2654435761u + 7;
    for (size_t k = 0; k < len; k++) {
        x = x * 1103515245u + 12345u;
        out[k] = (char)('!' + (x >> 16) % 90);
    }
}

int harness_temp_dir(char *dir, size_t cap, const char *prefix)
{
    if (snprintf(dir, cap, "/tmp/%s-XXXXXX", prefix) >= (int)cap)
        return -ENAMETOOLONG;
    return mkdtemp(dir) ? 0 : -errno;
}

static int rm_counting(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path) == 0 ? 0 : 1;
}

int harness_remove_dir(const char *dir)
{
    return nftw(dir, rm_counting, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

void harness_shard0_segment(const char *data_dir, bool newest, char *name, size_t cap)
{
    char shard_dir[512];
    snprintf(shard_dir, sizeof shard_dir, "%s/shard-000", data_dir);
    name[0] = '\0';
    DIR *d = opendir(shard_dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        int order = name[0] ? strcmp(de->d_name, name) : 0;
        if (strstr(de->d_name, ".seg") && (!name[0] || (newest ? order > 0 : order < 0)))
            snprintf(name, cap, "%.200s", de->d_name);
    }
    closedir(d);
}

static void harness_print_log(const struct harness_proc *p)
{
    if (p->log_path[0] == '\0')
        return;
    FILE *f = fopen(p->log_path, "r");
    if (f == NULL)
        return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long from = size > HARNESS_LOG_TAIL ? size - HARNESS_LOG_TAIL : 0;
    fseek(f, from, SEEK_SET);
    fprintf(stderr, "---- %s output (%s%s) ----\n", p->name, p->log_path, from > 0 ? ", tail" : "");
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, n, stderr);
    fprintf(stderr, "---- end of %s output ----\n", p->name);
    fclose(f);
}

static bool harness_log_mentions(const struct harness_proc *p, const char *needle)
{
    FILE *f = fopen(p->log_path, "r");
    if (f == NULL)
        return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* Non-blocking reap: true when the process has exited (status recorded). */
static bool harness_reap(struct harness_proc *p)
{
    if (p->exited)
        return true;
    int status;
    pid_t r = waitpid(p->pid, &status, WNOHANG);
    if (r == p->pid || (r < 0 && errno == ECHILD)) {
        p->exited = true;
        p->status = r == p->pid ? status : 0;
        return true;
    }
    return false;
}

/* SIGKILLs p if it still runs; its output stays. */
static void harness_kill_proc(struct harness_proc *p)
{
    if (p->pid > 0 && !harness_reap(p)) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, &p->status, 0);
        p->exited = true;
    }
    p->pid = 0;
}

void harness_crash_all(void)
{
    for (int i = 0; i < HARNESS_MAX_SERVERS; i++) {
        harness_kill_proc(&registry[i].main);
        harness_kill_proc(&registry[i].mc);
    }
}

static void harness_kill_all(void)
{
    for (int i = 0; i < HARNESS_MAX_SERVERS; i++) {
        struct harness_entry *e = &registry[i];
        harness_kill_proc(&e->main);
        harness_kill_proc(&e->mc);
        if (e->used && e->own_dir && e->dir[0] != '\0')
            nftw(e->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        e->used = false;
    }
}

static void harness_describe_status(int status, char *out, size_t cap)
{
    if (WIFEXITED(status))
        snprintf(out, cap, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, cap, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(out, cap, "stopped with wait status 0x%x", status);
}

static int harness_spawn(struct harness_entry *e, struct harness_proc *p, const char *name,
                         char *const argv[])
{
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->log_path, sizeof(p->log_path), "%s/%s.log", e->dir, name);
    p->exited = false;
    p->status = 0;
    int log_fd = open(p->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log_fd < 0) {
        int err = errno;
        fprintf(stderr, "harness: cannot create %s: %s\n", p->log_path, strerror(err));
        return -err;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(log_fd);
        fprintf(stderr, "harness: fork: %s\n", strerror(err));
        return -err;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int null_fd = open("/dev/null", O_RDONLY);
        if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0 ||
            chdir(e->dir) != 0)
            _exit(127);
        signal(SIGPIPE, SIG_DFL);
        execvp(argv[0], argv);
        dprintf(2, "harness: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(log_fd);
    p->pid = pid;
    return 0;
}

int harness_free_ports(int *a, int *b)
{
    int fds[2] = {-1, -1};
    int ports[2] = {0, 0};
    int rc = 0;
    for (int i = 0; i < 2; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t sl = sizeof(sa);
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&sa, &sl) != 0) {
            rc = -errno;
            break;
        }
        ports[i] = ntohs(sa.sin_port);
    }
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    *a = ports[0];
    *b = ports[1];
    return rc;
}

static bool harness_port_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/* Waits until the process accepts on port; -ECHILD if it exits, -ETIMEDOUT. */
static int harness_wait_ready(struct harness_proc *p, int port)
{
    int64_t deadline = harness_now_ms() + HARNESS_TIMEOUT_MS;
    for (;;) {
        if (harness_reap(p)) {
            char why[128];
            harness_describe_status(p->status, why, sizeof(why));
            fprintf(stderr, "harness: %s %s before accepting on port %d\n", p->name, why, port);
            return -ECHILD;
        }
        if (harness_port_accepts(port))
            return 0;
        if (harness_now_ms() >= deadline) {
            fprintf(stderr, "harness: %s not accepting on port %d after %d ms\n", p->name, port,
                    HARNESS_TIMEOUT_MS);
            return -ETIMEDOUT;
        }
        harness_sleep_ms(HARNESS_POLL_MS);
    }
}

static bool harness_is_ringkv_only(const char *flag)
{
    for (int i = 0; ringkv_only_flags[i] != NULL; i++)
        if (strcmp(flag, ringkv_only_flags[i]) == 0)
            return true;
    return false;
}

/* Builds the node's argv into argv (HARNESS_MAX_ARGV), numbers into nums. */
static int harness_build_argv(const struct harness_server *s, const struct harness_opts *o,
                              const char **argv, char nums[3][16])
{
    int n = 0;
    snprintf(nums[0], 16, "%d", s->port);
    snprintf(nums[1], 16, "%d", s->mc_port);
    snprintf(nums[2], 16, "%d", o->threads > 0 ? o->threads : 2);
    bool redis = harness_target_is_redis();
    if (redis) {
        const char *base[] = {"redis-server", "--port",      nums[0], "--bind",
                              "127.0.0.1",    "--save",      "",      "--appendonly",
                              "no",           "--databases", "1"};
        for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
            argv[n++] = base[i];
    } else {
        const char *bin = getenv("RINGKV_BIN");
        if (bin == NULL || bin[0] == '\0') {
            fprintf(stderr, "harness: RINGKV_BIN is not set (ctest sets it; or run with "
                            "RINGKV_TEST_TARGET=redis)\n");
            return -EINVAL;
        }
        const char *base[] = {bin,         "--port", nums[0],  "--memcache-port", nums[1],
                              "--threads", nums[2],  "--bind", "127.0.0.1"};
        for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
            argv[n++] = base[i];
    }
    for (int i = 0; o->args != NULL && o->args[i] != NULL; i++) {
        if (n >= HARNESS_MAX_ARGV - 2)
            return -E2BIG;
        if (redis && harness_is_ringkv_only(o->args[i])) {
            if (o->args[i + 1] != NULL)
                i++;
            continue;
        }
        argv[n++] = o->args[i];
    }
    argv[n] = NULL;
    return 0;
}

static int harness_start_memcached(struct harness_entry *e, const struct harness_server *s)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", s->mc_port);
    const char *argv[] = {"memcached", "-p", port, "-l",
                          "127.0.0.1", "-U", "0",  getuid() == 0 ? "-u" : NULL,
                          "root",      NULL};
    int rc = harness_spawn(e, &e->mc, "memcached", (char *const *)argv);
    if (rc == 0)
        rc = harness_wait_ready(&e->mc, s->mc_port);
    return rc;
}

static struct harness_entry *harness_new_entry(int *slot)
{
    for (int i = 0; i < HARNESS_MAX_SERVERS; i++) {
        if (!registry[i].used) {
            memset(&registry[i], 0, sizeof(registry[i]));
            registry[i].used = true;
            *slot = i;
            return &registry[i];
        }
    }
    return NULL;
}

/* Kills a process the harness gave up on, without judging how it ended. */
static void harness_discard(struct harness_proc *p)
{
    if (p->pid > 0 && !harness_reap(p)) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
    }
    p->pid = 0;
}

/* One attempt: fresh ports, spawn, wait for the ports. */
static int harness_launch(struct harness_entry *e, struct harness_server *s,
                          const struct harness_opts *o)
{
    const char *argv[HARNESS_MAX_ARGV];
    char nums[3][16];
    bool redis = harness_target_is_redis();
    int rc = harness_free_ports(&s->port, &s->mc_port);
    if (rc == 0)
        rc = harness_build_argv(s, o, argv, nums);
    if (rc == 0)
        rc = harness_spawn(e, &e->main, redis ? "redis-server" : "ringkv", (char *const *)argv);
    s->pid = e->main.pid;
    if (rc == 0)
        rc = harness_wait_ready(&e->main, s->port);
    if (rc == 0 && o->memcache && !redis)
        rc = harness_wait_ready(&e->main, s->mc_port);
    if (rc == 0 && o->memcache && redis) {
        rc = harness_start_memcached(e, s);
        s->mc_pid = e->mc.pid;
    }
    if (!o->memcache)
        s->mc_port = 0;
    return rc;
}

int harness_start(struct harness_server *s, const struct harness_opts *opts)
{
    static const struct harness_opts defaults = {0};
    const struct harness_opts *o = opts != NULL ? opts : &defaults;
    memset(s, 0, sizeof(*s));
    signal(SIGPIPE, SIG_IGN);
    if (!atexit_registered) {
        atexit(harness_kill_all);
        atexit_registered = true;
    }
    struct harness_entry *e = harness_new_entry(&s->slot);
    if (e == NULL) {
        fprintf(stderr, "harness: more than %d servers in one test program\n", HARNESS_MAX_SERVERS);
        node_failures++;
        return -ENOSPC;
    }
    if (o->dir != NULL) {
        snprintf(e->dir, sizeof(e->dir), "%s", o->dir);
    } else if (snprintf(e->dir, sizeof(e->dir), "/tmp/ringkv-it-XXXXXX") > 0 &&
               mkdtemp(e->dir) != NULL) {
        e->own_dir = true;
    } else {
        int err = errno;
        e->dir[0] = '\0';
        fprintf(stderr, "harness: mkdtemp: %s\n", strerror(err));
        node_failures++;
        return -err;
    }
    int rc = -ECHILD;
    /* Another program may take a free port before the node binds it: a node
     * that exits before accepting is retried on new ports. */
    for (int attempt = 0; attempt < HARNESS_START_ATTEMPTS && rc == -ECHILD; attempt++) {
        rc = harness_launch(e, s, o);
        if (rc == 0)
            return 0;
        harness_print_log(&e->main);
        harness_print_log(&e->mc);
        if (!harness_target_is_redis() && e->main.exited &&
            harness_log_mentions(&e->main, "io_uring")) {
            fprintf(stderr, "harness: ringkv cannot use io_uring here; skipping\n");
            exit(77);
        }
        harness_discard(&e->main);
        harness_discard(&e->mc);
    }
    s->pid = 0;
    s->mc_pid = 0;
    node_failures++;
    return rc;
}

static int harness_stop_proc(struct harness_proc *p)
{
    if (p->pid <= 0)
        return 0;
    char why[128];
    int rc = 0;
    if (harness_reap(p)) {
        harness_describe_status(p->status, why, sizeof(why));
        fprintf(stderr, "harness: %s (pid %d) had died before it was stopped: %s\n", p->name,
                (int)p->pid, why);
        p->pid = 0;
        return -ECHILD;
    }
    kill(p->pid, SIGTERM);
    int64_t deadline = harness_now_ms() + HARNESS_TIMEOUT_MS;
    while (!harness_reap(p) && harness_now_ms() < deadline)
        harness_sleep_ms(HARNESS_POLL_MS);
    if (!p->exited) {
        fprintf(stderr, "harness: %s (pid %d) still alive %d ms after SIGTERM; SIGKILL\n", p->name,
                (int)p->pid, HARNESS_TIMEOUT_MS);
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        rc = -ECHILD;
    } else if (!(WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0) &&
               !(WIFSIGNALED(p->status) && WTERMSIG(p->status) == SIGTERM)) {
        harness_describe_status(p->status, why, sizeof(why));
        fprintf(stderr, "harness: %s (pid %d) %s after SIGTERM\n", p->name, (int)p->pid, why);
        rc = -ECHILD;
    }
    p->pid = 0;
    return rc;
}

int harness_wait_exit(struct harness_server *s, int timeout_ms)
{
    if (s->slot < 0 || s->slot >= HARNESS_MAX_SERVERS || !registry[s->slot].used)
        return -ECHILD;
    struct harness_proc *p = &registry[s->slot].main;
    if (p->pid <= 0)
        return -ECHILD;
    int64_t deadline = harness_now_ms() + timeout_ms;
    while (!harness_reap(p) && harness_now_ms() < deadline)
        harness_sleep_ms(HARNESS_POLL_MS);
    int rc = !p->exited                 ? -ETIMEDOUT
             : WIFEXITED(p->status) ? WEXITSTATUS(p->status)
                                    : -ECHILD;
    if (!p->exited) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
    }
    p->pid = 0;
    s->pid = 0;
    harness_stop_proc(&registry[s->slot].mc);
    s->mc_pid = 0;
    return rc;
}

int harness_stop_exit(struct harness_server *s, int timeout_ms)
{
    if (s->slot < 0 || s->slot >= HARNESS_MAX_SERVERS || !registry[s->slot].used)
        return -ECHILD;
    struct harness_proc *p = &registry[s->slot].main;
    if (p->pid <= 0 || harness_reap(p))
        return -ECHILD;
    kill(p->pid, SIGTERM);
    int rc = harness_wait_exit(s, timeout_ms);
    return rc == -ETIMEDOUT ? -ECHILD : rc;
}

int harness_stop(struct harness_server *s)
{
    if (s->slot < 0 || s->slot >= HARNESS_MAX_SERVERS || !registry[s->slot].used)
        return 0;
    struct harness_entry *e = &registry[s->slot];
    int rc = harness_stop_proc(&e->main);
    int rc_mc = harness_stop_proc(&e->mc);
    if (rc != 0)
        harness_print_log(&e->main);
    if (rc_mc != 0)
        harness_print_log(&e->mc);
    s->pid = 0;
    s->mc_pid = 0;
    if (rc != 0 || rc_mc != 0)
        node_failures++;
    return rc != 0 ? rc : rc_mc;
}

int harness_crash(struct harness_server *s)
{
    if (s->slot < 0 || s->slot >= HARNESS_MAX_SERVERS || !registry[s->slot].used)
        return 0;
    struct harness_proc *p = &registry[s->slot].main;
    if (p->pid <= 0)
        return 0;
    if (harness_reap(p)) {
        fprintf(stderr, "harness: %s (pid %d) had died before it was crashed\n", p->name,
                (int)p->pid);
        harness_print_log(p);
        p->pid = 0;
        s->pid = 0;
        node_failures++;
        return -ECHILD;
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &p->status, 0);
    p->exited = true;
    p->pid = 0;
    s->pid = 0;
    return 0;
}

bool harness_output_mentions(const struct harness_server *s, const char *needle)
{
    if (s->slot < 0 || s->slot >= HARNESS_MAX_SERVERS || !registry[s->slot].used)
        return false;
    return harness_log_mentions(&registry[s->slot].main, needle);
}

void harness_start_refused_at(const char *file, int line, int port, const char *flags,
                              const char *log, const char *needle)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "timeout 30 '%s' --port %d --memcache-port 0 %s > '%s' 2>&1",
             getenv("RINGKV_BIN"), port, flags, log);
    int status = system(cmd);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 1) {
        print_error("ringkv %s was not refused with status 1 (wait status %d); see %s\n", flags,
                    status, log);
        _fail(file, line);
    }
    snprintf(cmd, sizeof cmd, "grep -qF -- '%s' '%s'", needle, log);
    if (system(cmd) != 0) {
        print_error("%s does not mention \"%s\"\n", log, needle);
        _fail(file, line);
    }
}

int harness_finish(int failures)
{
    failures += node_failures;
    for (int i = 0; failures > 0 && i < HARNESS_MAX_SERVERS; i++) {
        if (registry[i].used) {
            harness_print_log(&registry[i].main);
            harness_print_log(&registry[i].mc);
        }
    }
    harness_kill_all();
    return failures;
}

/* ---- formatting ---- */

void harness_escape(const char *p, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    if (cap == 0)
        return;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        char tmp[8];
        if (ch == '\r')
            snprintf(tmp, sizeof(tmp), "\\r");
        else if (ch == '\n')
            snprintf(tmp, sizeof(tmp), "\\n");
        else if (ch == '\\' || ch == '"')
            snprintf(tmp, sizeof(tmp), "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            snprintf(tmp, sizeof(tmp), "\\x%02x", ch);
        else
            snprintf(tmp, sizeof(tmp), "%c", ch);
        size_t t = strlen(tmp);
        if (o + t + 4 >= cap) {
            snprintf(out + o, cap - o, "...");
            return;
        }
        memcpy(out + o, tmp, t);
        o += t;
    }
    out[o] = '\0';
}

static void harness_describe(const redisReply *r, char *out, size_t cap)
{
    char esc[HARNESS_ESC_MAX];
    if (r == NULL) {
        snprintf(out, cap, "no reply");
        return;
    }
    switch (r->type) {
    case REDIS_REPLY_STATUS:
        harness_escape(r->str, r->len, esc, sizeof(esc));
        snprintf(out, cap, "status \"%s\"", esc);
        break;
    case REDIS_REPLY_ERROR:
        harness_escape(r->str, r->len, esc, sizeof(esc));
        snprintf(out, cap, "error \"%s\"", esc);
        break;
    case REDIS_REPLY_STRING:
        harness_escape(r->str, r->len, esc, sizeof(esc));
        snprintf(out, cap, "bulk(%zu) \"%s\"", (size_t)r->len, esc);
        break;
    case REDIS_REPLY_INTEGER:
        snprintf(out, cap, "integer %lld", r->integer);
        break;
    case REDIS_REPLY_NIL:
        snprintf(out, cap, "nil");
        break;
    case REDIS_REPLY_ARRAY:
        snprintf(out, cap, "array of %zu", r->elements);
        if (r->elements > 0) {
            char first[HARNESS_ESC_MAX + 32];
            harness_describe(r->element[0], first, sizeof(first));
            size_t l = strlen(out);
            snprintf(out + l, cap - l, ", first: %s", first);
        }
        break;
    default:
        snprintf(out, cap, "reply of type %d", r->type);
    }
}

static void harness_describe_want(struct harness_want w, char *out, size_t cap)
{
    char esc[HARNESS_ESC_MAX] = "";
    if (w.str != NULL)
        harness_escape(w.str, w.len, esc, sizeof(esc));
    switch (w.kind) {
    case HARNESS_WANT_STATUS:
        snprintf(out, cap, "status \"%s\"", esc);
        break;
    case HARNESS_WANT_ERROR:
        snprintf(out, cap, "error \"%s\"", esc);
        break;
    case HARNESS_WANT_INT:
        snprintf(out, cap, "integer %lld", w.num);
        break;
    case HARNESS_WANT_BULK:
        snprintf(out, cap, "bulk(%zu) \"%s\"", w.len, esc);
        break;
    case HARNESS_WANT_NIL:
        snprintf(out, cap, "nil");
        break;
    case HARNESS_WANT_ARRAY_LEN:
        snprintf(out, cap, "array of %lld", w.num);
        break;
    }
}

/* Renders a RESP-encoded command ("*2\r\n$3\r\nGET...") as "GET k". */
static void harness_render_command(const char *cmd, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    const char *p = cmd, *end = cmd + len;
    out[0] = '\0';
    p = memchr(p, '\n', len);
    while (p != NULL && ++p < end && *p == '$') {
        long n = strtol(p + 1, NULL, 10);
        p = memchr(p, '\n', (size_t)(end - p));
        if (p == NULL || n < 0 || p + 1 + n > end)
            break;
        char esc[HARNESS_DESCRIBE_MAX];
        harness_escape(p + 1, (size_t)n, esc, sizeof(esc));
        int w = snprintf(out + o, cap - o, "%s%s", o > 0 ? " " : "", esc);
        if (w < 0 || (size_t)w >= cap - o)
            break;
        o += (size_t)w;
        p = p + 1 + n + 1;
    }
}

/* ---- hiredis clients ---- */

redisContext *harness_connect_at(const char *file, int line, int port)
{
    struct timeval tv = {.tv_sec = HARNESS_TIMEOUT_MS / 1000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c == NULL || c->err) {
        print_error("connect to 127.0.0.1:%d failed: %s\n", port, c ? c->errstr : "no memory");
        if (c != NULL)
            redisFree(c);
        _fail(file, line);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

static redisReply *harness_vcmd(const char *file, int line, redisContext *c, char *rendered,
                                size_t rcap, const char *fmt, va_list ap)
{
    char *cmd = NULL;
    int len = redisvFormatCommand(&cmd, fmt, ap);
    if (len < 0) {
        print_error("bad hiredis format \"%s\"\n", fmt);
        _fail(file, line);
        return NULL;
    }
    harness_render_command(cmd, (size_t)len, rendered, rcap);
    void *reply = NULL;
    if (redisAppendFormattedCommand(c, cmd, (size_t)len) != REDIS_OK ||
        redisGetReply(c, &reply) != REDIS_OK || reply == NULL) {
        redisFreeCommand(cmd);
        print_error("%s: no reply (%s)\n", rendered, c->errstr[0] ? c->errstr : "closed");
        _fail(file, line);
        return NULL;
    }
    redisFreeCommand(cmd);
    return reply;
}

redisReply *harness_cmd_at(const char *file, int line, redisContext *c, const char *fmt, ...)
{
    char rendered[HARNESS_DESCRIBE_MAX];
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = harness_vcmd(file, line, c, rendered, sizeof(rendered), fmt, ap);
    va_end(ap);
    return r;
}

long long harness_integer_at(const char *file, int line, redisContext *c, const char *fmt, ...)
{
    char rendered[HARNESS_DESCRIBE_MAX];
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = harness_vcmd(file, line, c, rendered, sizeof(rendered), fmt, ap);
    va_end(ap);
    if (r->type != REDIS_REPLY_INTEGER) {
        print_error("%s: wanted an integer, got reply type %d\n", rendered, r->type);
        freeReplyObject(r);
        _fail(file, line);
        return 0;
    }
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

double harness_info_number_at(const char *file, int line, redisContext *c, const char *section,
                              const char *name)
{
    redisReply *r = harness_cmd_at(file, line, c, "INFO %s", section);
    char needle[128];
    snprintf(needle, sizeof needle, "\r\n%s:", name);
    const char *at = r->type == REDIS_REPLY_STRING ? strstr(r->str, needle) : NULL;
    if (!at) {
        print_error("INFO %s has no field %s\n", section, name);
        freeReplyObject(r);
        _fail(file, line);
        return 0;
    }
    double v = strtod(at + strlen(needle), NULL);
    freeReplyObject(r);
    return v;
}

redisReply *harness_next_reply_at(const char *file, int line, redisContext *c)
{
    void *reply = NULL;
    if (redisGetReply(c, &reply) != REDIS_OK || reply == NULL) {
        print_error("pipelined reply missing (%s)\n", c->errstr[0] ? c->errstr : "closed");
        _fail(file, line);
        return NULL;
    }
    return reply;
}

bool harness_reply_matches(const redisReply *r, struct harness_want w, char *why, size_t cap)
{
    bool ok = false;
    if (r != NULL) {
        switch (w.kind) {
        case HARNESS_WANT_STATUS:
        case HARNESS_WANT_ERROR:
        case HARNESS_WANT_BULK: {
            int type = w.kind == HARNESS_WANT_STATUS  ? REDIS_REPLY_STATUS
                       : w.kind == HARNESS_WANT_ERROR ? REDIS_REPLY_ERROR
                                                      : REDIS_REPLY_STRING;
            ok = r->type == type && (size_t)r->len == w.len && memcmp(r->str, w.str, w.len) == 0;
            break;
        }
        case HARNESS_WANT_INT:
            ok = r->type == REDIS_REPLY_INTEGER && r->integer == w.num;
            break;
        case HARNESS_WANT_NIL:
            ok = r->type == REDIS_REPLY_NIL;
            break;
        case HARNESS_WANT_ARRAY_LEN:
            ok = r->type == REDIS_REPLY_ARRAY && (long long)r->elements == w.num;
            break;
        }
    }
    if (!ok && why != NULL) {
        char want[HARNESS_DESCRIBE_MAX], got[HARNESS_DESCRIBE_MAX];
        harness_describe_want(w, want, sizeof(want));
        harness_describe(r, got, sizeof(got));
        snprintf(why, cap, "want %s, got %s", want, got);
    }
    return ok;
}

void harness_check_at(const char *file, int line, const redisReply *r, struct harness_want want,
                      const char *what)
{
    char why[2 * HARNESS_DESCRIBE_MAX + 32];
    if (!harness_reply_matches(r, want, why, sizeof(why))) {
        print_error("%s: %s\n", what, why);
        _fail(file, line);
    }
}

void harness_check_noise_keys_at(const char *file, int line, redisContext *c, int n, size_t len)
{
    char *want = malloc(len ? len : 1);
    for (int i = 0; i < n; i++)
        redisAppendCommand(c, "GET key:%d", i);
    for (int i = 0; i < n; i++) {
        redisReply *r = harness_next_reply_at(file, line, c);
        harness_noise((uint32_t)i, want, len);
        harness_check_at(file, line, r, HARNESS_BULK_LEN(want, len), "GET of an acknowledged key");
        freeReplyObject(r);
    }
    free(want);
}

void harness_expect_at(const char *file, int line, redisContext *c, struct harness_want want,
                       const char *fmt, ...)
{
    char rendered[HARNESS_DESCRIBE_MAX];
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = harness_vcmd(file, line, c, rendered, sizeof(rendered), fmt, ap);
    va_end(ap);
    char why[2 * HARNESS_DESCRIBE_MAX + 32];
    if (!harness_reply_matches(r, want, why, sizeof(why))) {
        print_error("%s: %s\n", rendered, why);
        freeReplyObject(r);
        _fail(file, line);
        return;
    }
    freeReplyObject(r);
}

void harness_check_bulks_at(const char *file, int line, const redisReply *r,
                            const char *const *want, size_t n, const char *what)
{
    char why[2 * HARNESS_DESCRIBE_MAX + 32];
    if (!harness_reply_matches(r, HARNESS_ARRAY((long long)n), why, sizeof(why))) {
        print_error("%s: %s\n", what, why);
        _fail(file, line);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct harness_want w = want[i] != NULL ? HARNESS_BULK(want[i]) : HARNESS_NIL;
        if (!harness_reply_matches(r->element[i], w, why, sizeof(why))) {
            print_error("%s, element %zu: %s\n", what, i, why);
            _fail(file, line);
            return;
        }
    }
}

/* ---- raw sockets ---- */

struct harness_raw *harness_raw_open_at(const char *file, int line, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        print_error("raw connect to 127.0.0.1:%d failed: %s\n", port, strerror(errno));
        if (fd >= 0)
            close(fd);
        _fail(file, line);
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct harness_raw *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->fd = fd;
    return r;
}

void harness_raw_close(struct harness_raw *r)
{
    if (r == NULL)
        return;
    close(r->fd);
    free(r->buf);
    free(r);
}

void harness_raw_send_at(const char *file, int line, struct harness_raw *r, const void *p, size_t n)
{
    const char *s = p;
    int64_t deadline = harness_now_ms() + HARNESS_TIMEOUT_MS;
    while (n > 0) {
        ssize_t w = send(r->fd, s, n, MSG_NOSIGNAL);
        if (w > 0) {
            s += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && (errno == EPIPE || errno == ECONNRESET))
            return;
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            print_error("raw send: %s\n", strerror(errno));
            _fail(file, line);
            return;
        }
        int64_t left = deadline - harness_now_ms();
        if (left <= 0) {
            print_error("raw send: server stopped reading (%zu bytes unsent after %d ms)\n", n,
                        HARNESS_TIMEOUT_MS);
            _fail(file, line);
            return;
        }
        struct pollfd pfd = {.fd = r->fd, .events = POLLOUT};
        poll(&pfd, 1, (int)left);
    }
}

/* Reads what is available, waiting at most until deadline for the first byte.
 * True when bytes arrived. */
static bool harness_raw_read_some(struct harness_raw *r, int64_t deadline)
{
    while (!r->eof) {
        if (r->cap - r->len < 4096) {
            size_t cap = r->cap < 65536 ? 65536 : r->cap * 2;
            char *nb = realloc(r->buf, cap);
            assert_non_null(nb);
            r->buf = nb;
            r->cap = cap;
        }
        ssize_t n = recv(r->fd, r->buf + r->len, r->cap - r->len, 0);
        if (n > 0) {
            r->len += (size_t)n;
            return true;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            r->eof = true;
            return false;
        }
        int64_t left = deadline - harness_now_ms();
        if (left <= 0)
            return false;
        struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
        poll(&pfd, 1, (int)left);
    }
    return false;
}

static void harness_raw_consume(struct harness_raw *r, size_t n)
{
    memmove(r->buf, r->buf + n, r->len - n);
    r->len -= n;
}

size_t harness_raw_fill(struct harness_raw *r, size_t n, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    while (r->len < n && harness_raw_read_some(r, deadline))
        ;
    return r->len;
}

void harness_raw_expect_at(const char *file, int line, struct harness_raw *r, const char *want,
                           size_t n)
{
    int64_t deadline = harness_now_ms() + HARNESS_TIMEOUT_MS;
    while (r->len < n && (r->len == 0 || memcmp(r->buf, want, r->len) == 0) &&
           harness_raw_read_some(r, deadline))
        ;
    if (r->len >= n && memcmp(r->buf, want, n) == 0) {
        harness_raw_consume(r, n);
        return;
    }
    char w[HARNESS_DESCRIBE_MAX], g[HARNESS_DESCRIBE_MAX];
    harness_escape(want, n, w, sizeof(w));
    harness_escape(r->buf, r->len, g, sizeof(g));
    print_error("raw: want \"%s\", got \"%s\"%s\n", w, g,
                r->eof ? " (then closed)" : (r->len < n ? " (then timeout)" : ""));
    _fail(file, line);
}

char *harness_raw_line(struct harness_raw *r, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        char *nl = r->len > 0 ? memmem(r->buf, r->len, "\r\n", 2) : NULL;
        if (nl != NULL) {
            size_t n = (size_t)(nl - r->buf);
            char *line = malloc(n + 1);
            assert_non_null(line);
            memcpy(line, r->buf, n);
            line[n] = '\0';
            harness_raw_consume(r, n + 2);
            return line;
        }
        if (!harness_raw_read_some(r, deadline))
            return NULL;
    }
}

void harness_raw_expect_closed_at(const char *file, int line, struct harness_raw *r)
{
    int64_t deadline = harness_now_ms() + HARNESS_TIMEOUT_MS;
    while (!r->eof && harness_now_ms() < deadline)
        harness_raw_read_some(r, deadline);
    if (r->len > 0) {
        char g[HARNESS_DESCRIBE_MAX];
        harness_escape(r->buf, r->len, g, sizeof(g));
        print_error("raw: want the connection closed, got more bytes \"%s\"\n", g);
        _fail(file, line);
        return;
    }
    if (!r->eof) {
        print_error("raw: connection still open %d ms after it should have closed\n",
                    HARNESS_TIMEOUT_MS);
        _fail(file, line);
    }
}

void harness_resp_free(struct harness_resp *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->n; i++)
        harness_resp_free(v->elem[i]);
    free(v->elem);
    free(v->str);
    free(v);
}

/* Parses one RESP value at p[0..len). 1: done, *used set; 0: need more; -1: malformed. */
static int harness_resp_parse(const char *p, size_t len, size_t *used, struct harness_resp **out,
                              int depth)
{
    const char *nl = len > 0 ? memmem(p, len, "\r\n", 2) : NULL;
    if (nl == NULL)
        return 0;
    if (depth > 32)
        return -1;
    size_t hdr = (size_t)(nl - p) + 2;
    struct harness_resp *v = calloc(1, sizeof(*v));
    assert_non_null(v);
    v->type = p[0];
    size_t pos = hdr;
    int rc = 1;
    char *end = NULL;
    switch (v->type) {
    case '+':
    case '-':
    case ',':
    case '(':
    case '_':
    case '#':
        v->len = hdr - 3;
        v->str = strndup(p + 1, v->len);
        v->num = v->type == '#' ? (p[1] == 't') : 0;
        break;
    case ':':
        v->num = strtoll(p + 1, &end, 10);
        rc = end == nl ? 1 : -1;
        break;
    case '$':
    case '=':
    case '!':
        v->num = strtoll(p + 1, &end, 10);
        if (end != nl || v->num < -1) {
            rc = -1;
        } else if (v->num >= 0) {
            size_t n = (size_t)v->num;
            if (len < hdr + n + 2) {
                rc = 0;
            } else if (memcmp(p + hdr + n, "\r\n", 2) != 0) {
                rc = -1;
            } else {
                v->len = n;
                v->str = malloc(n + 1);
                assert_non_null(v->str);
                memcpy(v->str, p + hdr, n);
                v->str[n] = '\0';
                pos = hdr + n + 2;
            }
        }
        break;
    case '*':
    case '%':
    case '~':
    case '>':
    case '|':
        v->num = strtoll(p + 1, &end, 10);
        if (end != nl || v->num < -1) {
            rc = -1;
            break;
        }
        size_t count = v->num < 0 ? 0 : (size_t)v->num * (v->type == '%' || v->type == '|' ? 2 : 1);
        v->elem = count > 0 ? calloc(count, sizeof(*v->elem)) : NULL;
        for (size_t i = 0; i < count && rc == 1; i++) {
            size_t u = 0;
            rc = harness_resp_parse(p + pos, len - pos, &u, &v->elem[i], depth + 1);
            if (rc == 1) {
                v->n++;
                pos += u;
            }
        }
        break;
    default:
        rc = -1;
    }
    if (rc != 1) {
        harness_resp_free(v);
        return rc;
    }
    *used = pos;
    *out = v;
    return 1;
}

struct harness_resp *harness_raw_reply_at(const char *file, int line, struct harness_raw *r)
{
    int64_t deadline = harness_now_ms() + HARNESS_TIMEOUT_MS;
    for (;;) {
        size_t used = 0;
        struct harness_resp *v = NULL;
        int rc = harness_resp_parse(r->buf, r->len, &used, &v, 0);
        if (rc == 1) {
            harness_raw_consume(r, used);
            return v;
        }
        if (rc < 0 || !harness_raw_read_some(r, deadline)) {
            char g[HARNESS_DESCRIBE_MAX];
            harness_escape(r->buf, r->len, g, sizeof(g));
            print_error("raw: want a RESP reply, got \"%s\"%s\n", g,
                        rc < 0 ? " (malformed)" : (r->eof ? " (then closed)" : " (timeout)"));
            _fail(file, line);
            return NULL;
        }
    }
}

const struct harness_resp *harness_resp_map_get(const struct harness_resp *m, const char *key)
{
    if (m == NULL)
        return NULL;
    size_t klen = strlen(key);
    for (size_t i = 0; i + 1 < m->n; i += 2) {
        const struct harness_resp *k = m->elem[i];
        if (k->str != NULL && k->len == klen && memcmp(k->str, key, klen) == 0)
            return m->elem[i + 1];
    }
    return NULL;
}
