/* node.c: the process (see node.h).
 * node_create() checks that io_uring is usable (and says how to fix it when
 * it is not), builds the partition map and the shards (queues, listeners);
 * node_run() starts one thread per shard, waits until every shard has made
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
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "cmd_stats.h"
#include "log.h"
#include "shard.h"

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

struct node *node_create(const struct cfg *cfg)
{
    if (node_check_uring() != 0)
        return NULL;
    struct node *n = mi_zalloc(sizeof *n);
    if (!n)
        return NULL;
    n->cfg = cfg;
    n->nshards = cfg->threads ? (uint32_t)cfg->threads : node_cpu_count();
    n->npartitions = (uint32_t)cfg->partitions;
    if (n->nshards > n->npartitions) {
        log_error("threads (%u) exceeds partitions (%u); exiting", n->nshards, n->npartitions);
        goto fail;
    }
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
    if (persist_prepare_dir(n, &n->layout) != 0)
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
    for (uint32_t i = 0; n->shards && i < n->nshards; i++)
        shard_destroy(n->shards[i]);
    mi_free(n->shards);
    mi_free(n->partition_shard);
    cmd_stats_destroy(n->cmd_stats);
    mi_free(n);
}

int node_run(struct node *n)
{
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    pthread_barrier_init(&n->ready, NULL, n->nshards + 1);
    pthread_barrier_init(&n->serving, NULL, n->nshards + 1);
    pthread_barrier_init(&n->stopped, NULL, n->nshards);
    uint32_t started = 0;
    for (; started < n->nshards; started++) {
        int rc = pthread_create(&n->shards[started]->thread, NULL, shard_main, n->shards[started]);
        if (rc != 0) {
            log_error("cannot start shard thread %u: %s; exiting", started, strerror(rc));
            return -rc; /* the process exits: threads already started end with it */
        }
    }
    pthread_barrier_wait(&n->ready);
    int result = 0;
    for (uint32_t i = 0; i < n->nshards; i++)
        if (n->shards[i]->start_rc != 0)
            result = n->shards[i]->start_rc;
    if (result == 0 && (result = persist_finish_start(n, &n->layout)) != 0)
        __atomic_store_n(&n->stop_flag, 1, __ATOMIC_RELEASE);
    pthread_barrier_wait(&n->serving); /* shards serve only after the manifest */
    if (result == 0) {
        const struct cfg *cfg = n->cfg;
        log_info("ringkv %s ready: %u shards, %u partitions, RESP on %s:%lld%s%.0lld", RINGKV_VERSION,
                 n->nshards, n->npartitions, cfg->bind, (long long)cfg->port,
                 cfg->memcache_port ? ", memcached on port " : "",
                 (long long)cfg->memcache_port);
        int sig = 0;
        sigwait(&stop_signals, &sig);
        log_info("got %s, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
        __atomic_store_n(&n->stop_flag, 1, __ATOMIC_RELEASE);
    }
    for (uint32_t i = 0; i < n->nshards; i++)
        pthread_join(n->shards[i]->thread, NULL);
    pthread_barrier_destroy(&n->ready);
    pthread_barrier_destroy(&n->serving);
    pthread_barrier_destroy(&n->stopped);
    if (result == 0)
        log_info("stopped cleanly");
    return result;
}
