/* node.c: the process (see node.h).
 * node_create() checks that io_uring is usable (and says how to fix it when
 * it is not), locks the data directory when the node keeps anything there
 * (before anything in it is read or written: a second process on the same
 * directory, which would re-lay or remove the first one's files, stops
 * there, naming the holder's pid; the lock lasts until node_destroy()),
 * builds the partition map, the cell where the admin thread publishes the
 * cluster's snapshots (snapshot.h) and the shards (queues, listeners);
 * node_run() starts one thread per shard behind a launch gate (a thread that
 * cannot be created makes the others return before they touch anything, and
 * they are joined before the node is freed), waits until every shard has made
 * its ring and store, then waits for SIGTERM or SIGINT with sigwait() on the
 * main thread (the signals are blocked in every thread, so no handler runs
 * anywhere), raises the stop flag, and joins the shards, which notice it on
 * their next tick. Teardown happens on the main thread after the joins. */
#include "node.h"

#include <errno.h>
#include <liburing.h>
#include <mimalloc.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "cmd.h"
#include "cmd_stats.h"
#include "dirlock.h"
#include "log.h"
#include "shard.h"
#include "snapshot.h"

/* maxclients past the open-files limit: connections past the limit wait in
 * the backlog (accepts pause a tick at a time); said once, at start. */
static void node_warn_fd_limit(const struct cfg *cfg)
{
    struct rlimit rl;
    int64_t clients = __atomic_load_n(&cfg->maxclients, __ATOMIC_RELAXED);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (int64_t)rl.rlim_cur < clients + 128)
        log_warn("maxclients %lld is more than the open-files limit (ulimit -n %llu) allows "
                 "(the node keeps some files open too): connections past it wait until others "
                 "close; raise the limit",
                 (long long)clients, (unsigned long long)rl.rlim_cur);
}

/* One line saying why io_uring is refused and what to change. */
static int node_check_uring(void)
{
    struct io_uring ring;
    int rc = io_uring_queue_init(8, &ring, 0);
    if (rc == -ENOSYS) {
        log_error("io_uring is not available (ENOSYS): ringkv needs Linux 6.0 or newer with "
                  "CONFIG_IO_URING; exiting");
        return rc;
    }
    if (rc == -EPERM) {
        log_error("io_uring is refused (EPERM): set sysctl kernel.io_uring_disabled=0, or run the "
                  "container with a seccomp profile that allows io_uring_setup/enter/register "
                  "(docker: --security-opt seccomp=unconfined); exiting");
        return rc;
    }
    if (rc == -ENOMEM) {
        log_error("io_uring could not lock memory (ENOMEM): raise the memlock limit "
                  "(ulimit -l unlimited, or LimitMEMLOCK=infinity in systemd); exiting");
        return rc;
    }
    if (rc < 0) {
        log_error("io_uring_queue_init failed: %s; exiting", strerror(-rc));
        return rc;
    }
    struct io_uring_probe *probe = io_uring_get_probe_ring(&ring);
    bool ok = probe && io_uring_opcode_supported(probe, IORING_OP_MSG_RING) &&
              io_uring_opcode_supported(probe, IORING_OP_ACCEPT) &&
              io_uring_opcode_supported(probe, IORING_OP_SEND);
    io_uring_free_probe(probe);
    io_uring_queue_exit(&ring);
    if (!ok) {
        log_error("this kernel's io_uring lacks MSG_RING or ACCEPT: ringkv needs Linux 6.0 or "
                  "newer; exiting");
        return -ENOSYS;
    }
    return 0;
}

static uint32_t node_cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return (uint32_t)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (uint32_t)n : 1;
}

/* Locks cfg->dir for this process (dirlock.h) when the node keeps anything
 * there: always with storage = log (making the directory first), with
 * storage = memory when it keeps the node id and cluster state
 * (admin_dir_kept()). 0, or -errno (logged: another ringkv holds it, or
 * the directory or its lock file cannot be made). */
static int node_lock_dir(struct node *n)
{
    const struct cfg *cfg = n->cfg;
    if (cfg->storage == CFG_STORAGE_LOG) {
        int rc = persist_mkdir(cfg->dir);
        if (rc < 0) {
            log_error("cannot create data directory %s: %s; exiting", cfg->dir, strerror(-rc));
            return rc;
        }
    } else if (!admin_dir_kept(cfg)) {
        return 0;
    }
    pid_t holder;
    int rc = dirlock_take(cfg->dir, &n->dir_lock_fd, &holder);
    if (rc == -EWOULDBLOCK) {
        char pid[24] = "unknown"; /* the holder is between its flock and its write */
        if (holder > 0)
            snprintf(pid, sizeof pid, "%ld", (long)holder);
        log_error("another ringkv (pid %s) uses %s; stop it, or start this one with another "
                  "--dir; exiting",
                  pid, cfg->dir);
    } else if (rc < 0) {
        log_error("cannot lock data directory %s (%s/%s): %s; exiting", cfg->dir, cfg->dir,
                  DIRLOCK_FILE, strerror(-rc));
    }
    return rc;
}

struct node *node_create(const struct cfg *cfg)
{
    if (node_check_uring() != 0)
        return NULL;
    struct node *n = mi_zalloc(sizeof *n);
    if (!n)
        return NULL;
    n->cfg = cfg;
    n->dir_lock_fd = -1;
    n->nshards = cfg->threads ? (uint32_t)cfg->threads : node_cpu_count();
    if (n->nshards > CFG_MAX_THREADS) {
        log_info("%u CPUs: starting %u shards, the most SCAN's cursor can name", n->nshards,
                 CFG_MAX_THREADS);
        n->nshards = CFG_MAX_THREADS;
    }
    n->npartitions = (uint32_t)cfg->partitions;
    if (n->nshards > n->npartitions) {
        log_error("threads (%u) exceeds partitions (%u); exiting", n->nshards, n->npartitions);
        goto fail;
    }
    n->slot_shift = keyhash_slot_shift(n->npartitions);
    n->partition_fn = (uint32_t)cfg->partition_function;
    n->partition_shard = mi_malloc(n->npartitions * sizeof *n->partition_shard);
    n->shards = mi_calloc(n->nshards, sizeof *n->shards);
    n->cmd_stats = cmd_stats_create(n->nshards);
    if (!n->partition_shard || !n->shards || !n->cmd_stats)
        goto fail;
    for (uint32_t p = 0; p < n->npartitions; p++)
        n->partition_shard[p] = (uint16_t)(p % n->nshards);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    n->start_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    unsigned char rnd[20];
    if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd)
        memset(rnd, 0x5a, sizeof rnd);
    for (int i = 0; i < 20; i++)
        snprintf(n->run_id + 2 * i, 3, "%02x", rnd[i]);
    cmd_init();
    if (snapshot_cell_create(n->nshards, &n->snapshots) != 0)
        goto fail;
    if (node_lock_dir(n) != 0 || persist_prepare_dir(n, &n->layout) != 0 ||
        admin_create(n, &n->admin) != 0)
        goto fail;
    for (uint32_t i = 0; i < n->nshards; i++)
        if (!(n->shards[i] = shard_create(n, i)))
            goto fail;
    return n;
fail:
    node_destroy(n);
    return NULL;
}

void node_destroy(struct node *n)
{
    if (!n)
        return;
    admin_destroy(n->admin); /* joins the admin thread, which reads the shards' counters */
    for (uint32_t i = 0; n->shards && i < n->nshards; i++)
        shard_destroy(n->shards[i]);
    mi_free(n->shards);
    mi_free(n->partition_shard);
    cmd_stats_destroy(n->cmd_stats);
    snapshot_cell_destroy(n->snapshots); /* admin and the shards have stopped */
    if (n->dir_lock_fd >= 0)
        close(n->dir_lock_fd); /* last: nothing writes in dir any more */
    mi_free(n);
}

/* Every shard thread starts here and waits at the launch gate (n->launch,
 * held by main while it creates the threads) until all of them exist. Only
 * then may a shard touch its ring and store and reach the barriers, which
 * count every shard: one started alone would wait there forever, while main
 * freed the node under it. Before anything, the thread registers as reader
 * sh->id of the cluster snapshots (a record in the cell, no wait). */
static void *node_shard_thread(void *arg)
{
    struct shard *sh = arg;
    struct node *n = sh->node;
    snapshot_reader_register(n->snapshots, sh->id);
    pthread_mutex_lock(&n->launch);
    bool go = !n->launch_failed;
    pthread_mutex_unlock(&n->launch);
    return go ? shard_main(sh) : NULL;
}

/* pthread_create for shard i. With RINGKV_TEST_HOOKS, fails with EAGAIN (as
 * a thread limit would) when the environment's RINGKV_TEST_FAIL_THREAD names
 * i, so that a test can reach the start-up failure path. */
static int node_create_thread(struct node *n, uint32_t i)
{
#ifdef RINGKV_TEST_HOOKS
    const char *fail = getenv("RINGKV_TEST_FAIL_THREAD");
    if (fail && *fail && strtoul(fail, NULL, 10) == i)
        return EAGAIN;
#endif
    return pthread_create(&n->shards[i]->thread, NULL, node_shard_thread, n->shards[i]);
}

/* Creates every shard thread behind the launch gate. 0; or, when one cannot
 * be created, -errno (logged) once the threads already created have been
 * let through the gate with launch_failed set, have returned untouched and
 * have been joined, so that the caller may free the node. */
static int node_start_threads(struct node *n)
{
    int rc = 0;
    uint32_t started = 0;
    pthread_mutex_lock(&n->launch);
    for (; started < n->nshards; started++)
        if ((rc = node_create_thread(n, started)) != 0)
            break;
    if (rc != 0) {
        log_error("cannot start shard thread %u of %u: %s; stopping the %u already running; "
                  "exiting",
                  started, n->nshards, strerror(rc), started);
        n->launch_failed = true;
    }
    pthread_mutex_unlock(&n->launch);
    for (uint32_t i = 0; rc != 0 && i < started; i++)
        pthread_join(n->shards[i]->thread, NULL);
    return -rc;
}

int node_run(struct node *n)
{
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    pthread_mutex_init(&n->launch, NULL);
    pthread_barrier_init(&n->ready, NULL, n->nshards + 1);
    pthread_barrier_init(&n->serving, NULL, n->nshards + 1);
    pthread_barrier_init(&n->stopped, NULL, n->nshards);
    int result = admin_start(n->admin);
    if (result == 0)
        result = node_start_threads(n);
    if (result != 0)
        goto out;
    pthread_barrier_wait(&n->ready);
    for (uint32_t i = 0; i < n->nshards; i++)
        if (n->shards[i]->start_rc != 0)
            result = n->shards[i]->start_rc;
    if (result == 0 && (result = persist_finish_start(n, &n->layout)) != 0)
        __atomic_store_n(&n->stop_flag, 1, __ATOMIC_RELEASE);
    pthread_barrier_wait(&n->serving); /* shards serve only after the manifest */
    if (result == 0) {
        __atomic_store_n(&n->is_serving, 1, __ATOMIC_RELEASE);
        const struct cfg *cfg = n->cfg;
        log_info("ringkv %s ready: %u shards, %u partitions, RESP on %s:%lld%s%.0lld", RINGKV_VERSION,
                 n->nshards, n->npartitions, cfg->bind, (long long)cfg->port,
                 cfg->memcache_port ? ", memcached on port " : "",
                 (long long)cfg->memcache_port);
        node_warn_fd_limit(cfg);
        int sig = 0;
        sigwait(&stop_signals, &sig);
        log_info("got %s, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
        __atomic_store_n(&n->stop_flag, 1, __ATOMIC_RELEASE);
    }
    for (uint32_t i = 0; i < n->nshards; i++)
        pthread_join(n->shards[i]->thread, NULL);
out:
    pthread_mutex_destroy(&n->launch);
    pthread_barrier_destroy(&n->ready);
    pthread_barrier_destroy(&n->serving);
    pthread_barrier_destroy(&n->stopped);
    uint64_t unwritten = __atomic_load_n(&n->log_unwritten, __ATOMIC_RELAXED);
    if (result == 0 && unwritten) {
        log_error("stopped with %llu records of the data log not on disk: writes acknowledged "
                  "since the disk failed may be lost", (unsigned long long)unwritten);
        result = -EIO;
    }
    if (result == 0)
        log_info("stopped cleanly");
    return result;
}
