/* shard.c: the shard thread and its loop (see shard.h).
 * The loop:
 *   1. submit what the last turn queued and wait for at least one completion
 *      (at most 1 ms while messages wait for room in a full queue);
 *   2. reap every completion into the stash; take the cluster's newest
 *      view if the admin thread published one (coord_turn: the
 *      coordinator's copy, coord.h), so that what woke a shard idle
 *      meanwhile is served by it; then dispatch on each completion's
 *      user_data (net.h, enum shard_op): accepts, receives, sends, wake-ups
 *      from other shards, the 100 ms tick, the log's and the cold reads' I/O;
 *   3. the store's and the tiers' turn, a small step of a drop pass under
 *      way (transfer_turn), then
 *      drain the inbound queue of every other shard: a message whose origin
 *      is another shard is a request to run here (cmd_msg_execute); one whose
 *      origin is this shard is a reply coming home (cmd_msg_complete);
 *   4. release the requests whose records are now durable and end those
 *      past their deadline (req.h);
 *   5. retry messages held back by full queues, flush connections that
 *      gathered replies (one send each), and wake every shard sent to this
 *      turn with an IORING_OP_MSG_RING on its ring (no syscall of its own:
 *      it rides in the next submit); then the peer links' batches (one
 *      send per link: peerlink.h);
 *   6. on the tick: the store's housekeeping (expiry, reclamation, resize
 *      steps, tombstones past tombstone-grace: coord_reap), the segment
 *      log's fdatasync (everysec), idle clients (idle.h), peer links whose
 *      handshake is late, and the stop flag;
 *   7. the turn's length, from the wait's end (shard_turn_done): the
 *      longest and the slow ones (slow-turn-ms) in INFO, a stall logged.
 * With storage = log, the records a turn wrote go to the kernel as one write
 * at the end of that turn, in the same submit as its replies (persist.h).
 * With appendfsync always, a reply that depends on records not yet durable
 * (persist_reply_seq) is a request held (req_hold) until the fdatasync that
 * covers them; the loop serves on meanwhile. While the log holds too much
 * not yet durable, clients that write pause (persist_release_writers).
 * Progress: shard_sqe() never waits for anyone. When the submission ring is
 * full it submits; when the kernel takes nothing because the completion
 * ring is full, it moves completions to the stash, which the loop
 * dispatches in order. shard_send() never waits for another shard: a full
 * queue keeps the message on a list through the messages themselves.
 * A shard blocks only in io_uring_submit_and_wait. Its ring is created on
 * its own thread (single issuer, deferred task work when the kernel has it);
 * a barrier makes every ring exist before any shard sends a wake-up, and
 * another keeps every ring alive until all shards have left their loops. */
#include "shard.h"

#include <errno.h>
#include <mimalloc.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "aae.h"
#include "cmd.h"
#include "coord.h"
#include "hints.h"
#include "idle.h"
#include "log.h"
#include "net.h"
#include "node.h"
#include "peerlink.h"
#include "persist.h"
#include "replica.h"
#include "store.h"
#include "tier.h"
#include "transfer.h"

#define SHARD_QUEUE_CAPACITY 8192
#define SHARD_BACKLOG_WAIT_NS 1000000L /* a full peer queue: look again after 1 ms */
#define SHARD_STALL_LOG_EVERY_MS 10000  /* stalls (10 x slow-turn-ms) logged this often at most */
#define SHARD_PORT_WAIT_MS 5000 /* a client port in use: asked again this long (a killed
                                   node's listener outlives it for a moment) */

static int64_t shard_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The store lives in this thread's heap, 64-byte aligned (its stats line). */
static int store_create_for_shard(struct shard *sh)
{
    const struct cfg *cfg = sh->node->cfg;
    struct store_config sc = {
        .maxmemory = (size_t)cfg->maxmemory / sh->node->nshards,
        .policy = (enum store_policy)cfg->maxmemory_policy, /* same order as cfg_policy */
        .samples = (unsigned)cfg->maxmemory_samples,
        .max_key_len = (uint32_t)cfg->max_key_size,
        .max_val_len = (uint64_t)cfg->proto_max_bulk_len,
        .seed = 0x9e3779b97f4a7c15ULL * (sh->id + 1),
    };
    struct store *st = mi_malloc_aligned(sizeof *st, 64);
    if (!st)
        return -ENOMEM;
    int rc = store_init(st, &sc);
    if (rc < 0) {
        mi_free(st);
        return rc;
    }
    sh->store = st;
    return 0;
}

static void store_destroy_for_shard(struct shard *sh)
{
    store_fini(sh->store);
    mi_free(sh->store);
    sh->store = NULL;
}

struct shard *shard_create(struct node *n, uint32_t id)
{
    const struct cfg *cfg = n->cfg;
    struct shard *sh = mi_zalloc_aligned(sizeof *sh, 64);
    if (!sh)
        return NULL;
    sh->id = id;
    sh->node = n;
    sh->listen_resp_fd = -1;
    sh->listen_mc_fd = -1;
    req_table_init(&sh->reqs, sh);
    sh->stall_logged_ms = INT64_MIN / 2; /* the first stall is logged */
    sh->turn_ms = req_now_ms();
    if (slowlog_init(&sh->slowlog, cfg, n->cmd_stats) != 0)
        goto fail;
    shard_refresh_settings(sh); /* request-timeout, slow-turn-ms: its copies */
    if (coord_init(sh) != 0 || aae_init(sh) != 0 || transfer_init(sh) != 0)
        goto fail;
    sh->inbox = mi_calloc(n->nshards, sizeof *sh->inbox);
    sh->wake = mi_calloc(n->nshards, sizeof *sh->wake);
    sh->backlog = mi_calloc(n->nshards, sizeof *sh->backlog);
    if (!sh->inbox || !sh->wake || !sh->backlog)
        goto fail;
    for (uint32_t i = 0; i < n->nshards; i++)
        if (i != id && mq_init(&sh->inbox[i], SHARD_QUEUE_CAPACITY) != 0)
            goto fail;
    if (peerlink_init(sh) != 0)
        goto fail;
    /* the first shard: no other process may hold the ports (SO_REUSEPORT
     * would share them with it) */
    int in_use = id == 0 ? net_port_free_wait(cfg->bind, (int)cfg->port, SHARD_PORT_WAIT_MS) : 0;
    if (in_use == 0 && id == 0 && cfg->memcache_port &&
        (in_use = net_port_free_wait(cfg->bind, (int)cfg->memcache_port, SHARD_PORT_WAIT_MS)) != 0) {
        log_error("cannot listen on %s:%lld: %s", cfg->bind, (long long)cfg->memcache_port,
                  strerror(-in_use));
        goto fail;
    }
    sh->listen_resp_fd = in_use ? in_use
                                : net_listen(cfg->bind, (int)cfg->port, (int)cfg->tcp_backlog);
    if (sh->listen_resp_fd < 0) {
        log_error("cannot listen on %s:%lld: %s", cfg->bind, (long long)cfg->port,
                  strerror(-sh->listen_resp_fd));
        goto fail;
    }
    if (cfg->memcache_port) {
        sh->listen_mc_fd = net_listen(cfg->bind, (int)cfg->memcache_port, (int)cfg->tcp_backlog);
        if (sh->listen_mc_fd < 0) {
            log_error("cannot listen on %s:%lld: %s", cfg->bind, (long long)cfg->memcache_port,
                      strerror(-sh->listen_mc_fd));
            goto fail;
        }
    }
    return sh;
fail:
    shard_destroy(sh);
    return NULL;
}

void shard_destroy(struct shard *sh)
{
    if (!sh)
        return;
    for (uint32_t s = 0; s < sh->conn_cap; s++)
        if (sh->conns[s])
            conn_destroy(sh->conns[s]); /* cancels their requests */
    cmd_rest_fini(sh);
    if (sh->listen_resp_fd >= 0)
        close(sh->listen_resp_fd);
    if (sh->listen_mc_fd >= 0)
        close(sh->listen_mc_fd);
    for (uint32_t i = 0; sh->inbox && i < sh->node->nshards; i++) {
        if (i == sh->id)
            continue;
        struct cmd_msg *m;
        while (sh->inbox[i].slots && (m = mq_recv(&sh->inbox[i])))
            cmd_msg_free(m);
        mq_fini(&sh->inbox[i]);
    }
    for (uint32_t i = 0; sh->backlog && i < sh->node->nshards; i++) {
        struct cmd_msg *m;
        while ((m = sh->backlog[i].head)) {
            sh->backlog[i].head = m->next;
            cmd_msg_free(m);
        }
    }
    if (sh->ring_ready)
        io_uring_queue_exit(&sh->uring);
    peerlink_fini(sh); /* after the ring: nothing of its links is in flight */
    req_table_fini(&sh->reqs); /* messages parked here go with their requests */
    aae_fini(sh);   /* before the store it watches */
    coord_fini(sh); /* after the requests, which hold its views */
    hint_fini(sh);  /* after the requests: deliveries point at hints */
    transfer_fini(sh);
    tier_destroy(sh->tier); /* after the ring: no read lands in its buffers */
    persist_stop(sh->persist); /* after the ring, before the store it journals */
    if (sh->store)
        store_destroy_for_shard(sh);
    conn_env_fini(&sh->env); /* after its connections */
    slowlog_fini(&sh->slowlog);
    monitor_fini(&sh->monitors);
    mi_free(sh->recv_ring);
    mi_free(sh->recv_bufs);
    mi_free(sh->stash);
    mi_free(sh->inbox);
    mi_free(sh->wake);
    mi_free(sh->backlog);
    mi_free(sh->conns);
    mi_free(sh->conn_gen);
    mi_free(sh->free_slots);
    mi_free(sh);
}

/* Moves every completion on the ring to the stash. 0, or -ENOMEM when the
 * stash cannot grow (what is on the ring stays there). */
static int shard_reap(struct shard *sh)
{
    unsigned ready = io_uring_cq_ready(&sh->uring);
    if (sh->nstash + ready > sh->stash_cap) {
        uint32_t cap = sh->stash_cap ? sh->stash_cap : 256;
        while (cap < sh->nstash + ready)
            cap *= 2;
        struct shard_cqe *stash = mi_realloc(sh->stash, cap * sizeof *stash);
        if (!stash)
            return -ENOMEM;
        sh->stash = stash;
        sh->stash_cap = cap;
    }
    struct io_uring_cqe *cqe;
    unsigned head, count = 0;
    io_uring_for_each_cqe(&sh->uring, head, cqe)
    {
        sh->stash[sh->nstash++] = (struct shard_cqe){io_uring_cqe_get_data64(cqe), cqe->res,
                                                     cqe->flags};
        count++;
    }
    io_uring_cq_advance(&sh->uring, count);
    return 0;
}

__attribute__((weak)) int shard_submit(struct io_uring *uring) { return io_uring_submit(uring); }

struct io_uring_sqe *shard_sqe(struct shard *sh)
{
    struct io_uring_sqe *sqe;
    while (!(sqe = io_uring_get_sqe(&sh->uring))) {
        int rc = shard_submit(&sh->uring);
        if (rc > 0)
            continue;
        /* The kernel took nothing: its completion ring is full (-EBUSY), or
         * it wants us to reap first. Make room there, and let it post what
         * it holds back (a zero-wait enter flushes overflowed completions). */
        if (shard_reap(sh) != 0)
            log_warn("out of memory for completions; waiting for the kernel");
        io_uring_get_events(&sh->uring);
        shard_reap(sh);
    }
    return sqe;
}

/* Appends m to a backlog (the list runs through the messages). */
static void shard_backlog_push(struct shard_backlog *b, struct cmd_msg *m)
{
    m->next = NULL;
    if (b->tail)
        b->tail->next = m;
    else
        b->head = m;
    b->tail = m;
    b->len++;
}

void shard_send(struct shard *sh, uint32_t to, struct cmd_msg *m)
{
    struct mq *q = &sh->node->shards[to]->inbox[sh->id];
    struct shard_backlog *b = &sh->backlog[to];
    sh->wake[to] = true;
    if (b->len == 0 && mq_send(q, m) == 0)
        return;
    shard_backlog_push(b, m);
}

bool shard_retry_backlogs(struct shard *sh)
{
    bool left = false;
    for (uint32_t to = 0; to < sh->node->nshards; to++) {
        struct shard_backlog *b = &sh->backlog[to];
        struct mq *q = b->len ? &sh->node->shards[to]->inbox[sh->id] : NULL;
        while (b->len) {
            /* Once queued, a message is the receiver's: it may already be
             * running it or linking it into its own backlog. Read first. */
            struct cmd_msg *m = b->head, *next = m->next;
            if (mq_send(q, m) != 0)
                break;
            b->head = next;
            if (!next)
                b->tail = NULL;
            b->len--;
            sh->wake[to] = true;
        }
        left |= b->len != 0;
    }
    return left;
}

struct conn *shard_conn_of(struct shard *sh, uint64_t handle)
{
    uint32_t slot = (uint32_t)(handle >> 32);
    if (slot >= sh->conn_cap || !sh->conns[slot] || sh->conn_gen[slot] != (uint32_t)handle)
        return NULL;
    return sh->conns[slot];
}

static void shard_arm_accept(struct shard *sh, int fd, unsigned op)
{
    struct io_uring_sqe *sqe = shard_sqe(sh);
    io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, net_ud(op, 0, 0));
}

static void shard_arm_tick(struct shard *sh, struct __kernel_timespec *ts)
{
    struct io_uring_sqe *sqe = shard_sqe(sh);
    io_uring_prep_timeout(sqe, ts, 0, 0);
    io_uring_sqe_set_data64(sqe, net_ud(SHARD_OP_TICK, 0, 0));
}

static int shard_grow_slots(struct shard *sh)
{
    uint32_t cap = sh->conn_cap ? sh->conn_cap * 2 : 256;
    struct conn **conns = mi_realloc(sh->conns, cap * sizeof *conns);
    if (!conns)
        return -ENOMEM;
    sh->conns = conns;
    uint32_t *gen = mi_realloc(sh->conn_gen, cap * sizeof *gen);
    if (!gen)
        return -ENOMEM;
    sh->conn_gen = gen;
    uint32_t *free_slots = mi_realloc(sh->free_slots, cap * sizeof *free_slots);
    if (!free_slots)
        return -ENOMEM;
    sh->free_slots = free_slots;
    for (uint32_t s = cap; s > sh->conn_cap; s--) {
        conns[s - 1] = NULL;
        gen[s - 1] = 0;
        free_slots[sh->nfree++] = s - 1;
    }
    sh->conn_cap = cap;
    return 0;
}

static void shard_reject(int fd, unsigned op, const char *why)
{
    char line[128];
    int n = snprintf(line, sizeof line, op == NET_OP_ACCEPT_RESP ? "-ERR %s\r\n"
                                                                : "SERVER_ERROR %s\r\n", why);
    ssize_t w = send(fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)w;
    close(fd);
}

/* Out of descriptors or memory: the connection waits in the backlog, and
 * an accept armed again at once fails again at once (a busy loop, and a
 * log line each time). */
static bool shard_accept_starved(int res)
{
    return res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM;
}

static void shard_on_accept(struct shard *sh, unsigned op, int res, unsigned flags)
{
    uint8_t bit = op == NET_OP_ACCEPT_RESP ? 1 : 2;
    if (!(flags & IORING_CQE_F_MORE) && !sh->accept_paused) {
        if (shard_accept_starved(res))
            sh->accept_unarmed |= bit; /* armed again at the next tick (100 ms) */
        else
            shard_arm_accept(sh, bit == 1 ? sh->listen_resp_fd : sh->listen_mc_fd, op);
    }
    if (res < 0) {
        int64_t now = shard_now_ms();
        if (res != -ECANCELED && now - sh->accept_logged_ms >= 10000) {
            sh->accept_logged_ms = now;
            log_warn("accept failed: %s; %s", strerror(-res),
                     shard_accept_starved(res)
                         ? "accepting again in 100 ms (raise ulimit -n, or lower maxclients; "
                           "logged at most every 10 s)"
                         : "still accepting");
        }
        return;
    }
    const struct cfg *cfg = sh->node->cfg;
    int64_t clients = __atomic_add_fetch(&sh->node->clients, 1, __ATOMIC_RELAXED);
    if (clients > __atomic_load_n(&cfg->maxclients, __ATOMIC_RELAXED)) {
        __atomic_sub_fetch(&sh->node->clients, 1, __ATOMIC_RELAXED);
        SHARD_STAT_ADD(sh, rejected_connections, 1);
        shard_reject(res, op, "max number of clients reached");
        return;
    }
    if (sh->nfree == 0 && shard_grow_slots(sh) != 0) {
        __atomic_sub_fetch(&sh->node->clients, 1, __ATOMIC_RELAXED);
        shard_reject(res, op, "out of memory");
        return;
    }
    uint32_t slot = sh->free_slots[--sh->nfree];
    net_tune_client(res);
    uint64_t id = sh->next_client_seq++ * sh->node->nshards + sh->id + 1;
    struct conn *c = conn_create(&sh->env, res, op == NET_OP_ACCEPT_RESP ? CONN_RESP : CONN_MC,
                                 slot, sh->conn_gen[slot], id);
    if (!c) {
        sh->free_slots[sh->nfree++] = slot;
        __atomic_sub_fetch(&sh->node->clients, 1, __ATOMIC_RELAXED);
        shard_reject(res, op, "out of memory");
        return;
    }
    c->authenticated = cfg->requirepass[0] == '\0';
    c->created_ms = c->last_ms = shard_now_ms();
    sh->conns[slot] = c;
    SHARD_STAT_ADD(sh, connected_clients, 1);
    SHARD_STAT_ADD(sh, total_connections_received, 1);
    conn_start(c);
}

static void shard_release_if_done(struct shard *sh, struct conn *c)
{
    if (!conn_is_done(c))
        return;
    if (sh->rest)
        cmd_rest_conn_gone(sh, c); /* while its handle still finds it */
    sh->conns[c->slot] = NULL;
    sh->conn_gen[c->slot]++;
    sh->free_slots[sh->nfree++] = c->slot;
    if (c->is_dirty) { /* unlink from this turn's flush list */
        struct conn **pp = &sh->env.dirty;
        while (*pp != c)
            pp = &(*pp)->next_dirty;
        *pp = c->next_dirty;
    }
    monitor_forget(sh, c);
    conn_destroy(c); /* cancels its requests still parked (shard_abandon) */
    __atomic_sub_fetch(&sh->node->clients, 1, __ATOMIC_RELAXED);
    SHARD_STAT_ADD(sh, connected_clients, (uint64_t)-1);
}

static struct conn *shard_conn(struct shard *sh, uint64_t ud)
{
    return shard_conn_of(sh, (uint64_t)net_ud_slot(ud) << 32 | net_ud_gen(ud));
}

static void shard_on_cqe(struct shard *sh, const struct shard_cqe *cqe, bool *tick)
{
    uint64_t ud = cqe->ud;
    unsigned op = net_ud_op(ud);
    struct conn *c;
    switch (op) {
    case NET_OP_ACCEPT_RESP:
    case NET_OP_ACCEPT_MC:
        shard_on_accept(sh, op, cqe->res, cqe->flags);
        break;
    case NET_OP_RECV:
        if ((c = shard_conn(sh, ud))) {
            conn_on_recv(c, cqe->res, cqe->flags);
            shard_release_if_done(sh, c);
        } else if (cqe->flags & IORING_CQE_F_BUFFER) {
            conn_recv_buf_return(&sh->env, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        }
        break;
    case NET_OP_SEND:
        if ((c = shard_conn(sh, ud))) {
            conn_on_send(c, cqe->res);
            shard_release_if_done(sh, c);
        }
        break;
    case SHARD_OP_TICK:
        *tick = true;
        break;
    case SHARD_OP_SEG_WRITE:
    case SHARD_OP_SEG_FSYNC:
    case SHARD_OP_SEG_READ:
    case SHARD_OP_SEG_PREPARE:
        persist_on_cqe(sh->persist, ud, cqe->res);
        break;
    case SHARD_OP_TIER_READ:
        if (sh->tier)
            tier_on_cqe(sh, ud, cqe->res);
        break;
    case SHARD_OP_LINK_CONNECT:
    case SHARD_OP_LINK_RECV:
    case SHARD_OP_LINK_SEND:
    case SHARD_OP_LINK_WAKE:
        peerlink_on_cqe(sh, ud, cqe->res, cqe->flags);
        break;
    case SHARD_OP_HINT_WRITE:
    case SHARD_OP_HINT_FSYNC:
        hint_on_cqe(sh, ud, cqe->res);
        break;
    case SHARD_OP_TRANSFER_SAVE:
        transfer_on_cqe(sh, ud, cqe->res);
        break;
    default: /* wake-ups need no action: the queues are drained every turn */
        break;
    }
}

static void shard_drain_inboxes(struct shard *sh)
{
    for (uint32_t from = 0; from < sh->node->nshards; from++) {
        if (from == sh->id)
            continue;
        struct cmd_msg *m;
        while ((m = mq_recv(&sh->inbox[from]))) {
            if (m->origin == sh->id)
                cmd_msg_complete(sh, m);
            else
                cmd_msg_execute(sh, m);
        }
    }
}

static void shard_flush(struct shard *sh)
{
    struct conn *c;
    while ((c = sh->env.dirty)) {
        sh->env.dirty = c->next_dirty;
        c->is_dirty = false;
        conn_flush(c);
        shard_release_if_done(sh, c);
    }
    for (uint32_t to = 0; to < sh->node->nshards; to++) {
        if (!sh->wake[to])
            continue;
        sh->wake[to] = false;
        struct io_uring_sqe *sqe = shard_sqe(sh);
        io_uring_prep_msg_ring(sqe, sh->node->shards[to]->uring.ring_fd, 0,
                               net_ud(SHARD_OP_WAKE, 0, 0), 0);
        io_uring_sqe_set_data64(sqe, net_ud(NET_OP_IGNORE, 0, 0));
        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    }
}

static void shard_pin(struct shard *sh)
{
    cpu_set_t allowed;
    if (!sh->node->cfg->cpu_affinity || sched_getaffinity(0, sizeof allowed, &allowed) != 0)
        return;
    int ncpu = CPU_COUNT(&allowed);
    if (ncpu <= 0)
        return;
    int want = (int)(sh->id % (uint32_t)ncpu), seen = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &allowed))
            continue;
        if (seen++ == want) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            sched_setaffinity(0, sizeof one, &one);
            return;
        }
    }
}

/* Creates the ring on this thread: single issuer with deferred task work
 * where the kernel has them (6.1+), plain otherwise. */
static int shard_ring_init(struct shard *sh)
{
    unsigned entries = (unsigned)sh->node->cfg->uring_entries;
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                                         IORING_SETUP_TASKRUN_FLAG |
                                         IORING_SETUP_SUBMIT_ALL};
    p.cq_entries = entries * 4;
    p.flags |= IORING_SETUP_CQSIZE;
    int rc = io_uring_queue_init_params(entries, &sh->uring, &p);
    if (rc == -EINVAL) {
        memset(&p, 0, sizeof p);
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = entries * 4;
        rc = io_uring_queue_init_params(entries, &sh->uring, &p);
    }
    return rc;
}

/* Registers the receive buffers with the ring. 0 or -errno. */
static int shard_recv_ring_init(struct shard *sh)
{
    size_t ring_bytes = SHARD_RECV_BUFS * sizeof(struct io_uring_buf);
    sh->recv_ring = mi_malloc_aligned(ring_bytes, 4096);
    sh->recv_bufs = mi_malloc_aligned((size_t)SHARD_RECV_BUFS * SHARD_RECV_BUF_SIZE, 4096);
    if (!sh->recv_ring || !sh->recv_bufs)
        return -ENOMEM;
    struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)sh->recv_ring,
                                   .ring_entries = SHARD_RECV_BUFS,
                                   .bgid = SHARD_RECV_GROUP};
    int rc = io_uring_register_buf_ring(&sh->uring, &reg, 0);
    if (rc < 0)
        return rc;
    sh->recv_ring_registered = true;
    io_uring_buf_ring_init(sh->recv_ring);
    for (unsigned bid = 0; bid < SHARD_RECV_BUFS; bid++)
        io_uring_buf_ring_add(sh->recv_ring, shard_recv_buf(sh, bid), SHARD_RECV_BUF_SIZE, bid,
                              io_uring_buf_ring_mask(SHARD_RECV_BUFS), (int)bid);
    io_uring_buf_ring_advance(sh->recv_ring, SHARD_RECV_BUFS);
    return 0;
}

static struct io_uring_sqe *shard_env_sqe(void *owner) { return shard_sqe(owner); }

/* A connection going away had requests parked: they end without a reply. */
static void shard_abandon(void *owner, uint64_t req)
{
    struct shard *sh = owner;
    req_cancel(&sh->reqs, req);
}

/* What the shard's connections see of it (conn.h). */
static void shard_env_init(struct shard *sh)
{
    const struct cfg *cfg = sh->node->cfg;
    sh->env = (struct conn_env){
        .owner = sh,
        .get_sqe = shard_env_sqe,
        .recv_ring = sh->recv_ring,
        .recv_bufs = sh->recv_bufs,
        .recv_buf_size = SHARD_RECV_BUF_SIZE,
        .recv_nbufs = SHARD_RECV_BUFS,
        .recv_group = SHARD_RECV_GROUP,
        .on_resp = cmd_dispatch_resp,
        .on_mc = cmd_dispatch_mc,
        .prefetch_keys = cmd_prefetch_keys,
        .abandon = shard_abandon,
        .resp_limits = {(uint32_t)cfg->max_request_args, (uint64_t)cfg->proto_max_bulk_len,
                        CONN_INLINE_MAX},
        .mc_limits = {CONN_MC_LINE_MAX, (uint64_t)cfg->proto_max_bulk_len},
        .query_buffer_limit = (uint64_t)cfg->client_query_buffer_limit,
        .input_bytes = &sh->stats.net_input_bytes,
        .output_bytes = &sh->stats.net_output_bytes,
        .examined_bytes = &sh->stats.parser_examined_bytes,
        .hold_writers = &sh->node->log_over_cap, /* persist.h: back-pressure */
    };
}

/* What must exist on the shard's own thread: its ring and its store (their
 * memory comes from this thread's heap). 0 or -errno, logged. */
static int shard_start(struct shard *sh)
{
    int rc = shard_ring_init(sh);
    if (rc < 0) {
        log_error("io_uring_queue_init: %s", strerror(-rc));
        return rc;
    }
    sh->ring_ready = true;
    rc = shard_recv_ring_init(sh);
    if (rc < 0) {
        log_error("cannot register receive buffers with io_uring: %s", strerror(-rc));
        return rc;
    }
    shard_env_init(sh);
    rc = store_create_for_shard(sh);
    if (rc < 0) {
        log_error("cannot create the store: %s", strerror(-rc));
        return rc;
    }
    rc = persist_start(sh, &sh->node->layout, &sh->persist);
    if (rc == 0 && sh->store->tier && !(sh->tier = tier_create(sh))) {
        log_error("cannot create the cold value reader: out of memory");
        return -ENOMEM;
    }
    if (rc == 0)
        rc = hint_init(sh); /* the hints kept for other nodes (hints.h) */
    return rc;
}

/* Stopping: lets the log's writes and fdatasyncs and the cold value reads
 * in the kernel finish (the ring cannot wait for them once it is torn down,
 * and their buffers are freed after), handing it the rest of what it
 * gathered; at most 10 s. */
static void shard_drain_log(struct shard *sh)
{
    int64_t deadline = shard_now_ms() + 10000;
    persist_flush(sh->persist);
    while ((persist_busy(sh->persist) || tier_busy(sh->tier) || hint_busy(sh) ||
            transfer_busy(sh)) &&
           shard_now_ms() < deadline) {
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000000L};
        struct io_uring_cqe *cqe;
        io_uring_submit_and_wait_timeout(&sh->uring, &cqe, 1, &ts, NULL);
        shard_reap(sh);
        /* persist_on_cqe() may stash more (shard_sqe): index afresh. */
        for (uint32_t i = 0; i < sh->nstash; i++) {
            struct shard_cqe c = sh->stash[i];
            unsigned op = net_ud_op(c.ud);
            if (op == SHARD_OP_SEG_WRITE || op == SHARD_OP_SEG_FSYNC || op == SHARD_OP_SEG_READ ||
                op == SHARD_OP_SEG_PREPARE)
                persist_on_cqe(sh->persist, c.ud, c.res);
            else if (op == SHARD_OP_TIER_READ)
                tier_forget_cqe(sh->tier); /* its buffer may go now */
            else if (op == SHARD_OP_HINT_WRITE || op == SHARD_OP_HINT_FSYNC)
                hint_on_cqe(sh, c.ud, c.res);
            else if (op == SHARD_OP_TRANSFER_SAVE)
                transfer_on_cqe(sh, c.ud, c.res);
        }
        sh->nstash = 0;
        persist_flush(sh->persist);
    }
}

static int64_t shard_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void shard_refresh_settings(struct shard *sh)
{
    const struct cfg *cfg = sh->node->cfg;
    sh->settings_gen = __atomic_load_n(&sh->node->settings_gen, __ATOMIC_ACQUIRE);
    sh->request_timeout_ms = __atomic_load_n(&cfg->request_timeout_ms, __ATOMIC_RELAXED);
    sh->slow_turn_us = __atomic_load_n(&cfg->slow_turn_ms, __ATOMIC_RELAXED) * 1000;
    slowlog_refresh(&sh->slowlog, cfg, sh->node->cmd_stats);
}

/* The end of a loop turn that began (its wait over) at start_us with
 * `completions` completions to dispatch: every request of the turn, and
 * every one that came meanwhile, waited this long at least. The longest
 * and the count of slow ones (slow-turn-ms) go to INFO; one ten times as
 * long is logged. */
static void shard_turn_done(struct shard *sh, int64_t start_us, uint32_t completions)
{
    int64_t us = shard_now_us() - start_us;
    if ((uint64_t)us > sh->stats.longest_turn_us)
        __atomic_store_n(&sh->stats.longest_turn_us, (uint64_t)us, __ATOMIC_RELAXED);
    if (__builtin_expect(us < sh->slow_turn_us, 1))
        return;
    SHARD_STAT_ADD(sh, slow_turns, 1);
    int64_t now_ms = (start_us + us) / 1000;
    if (us >= 10 * sh->slow_turn_us && now_ms - sh->stall_logged_ms >= SHARD_STALL_LOG_EVERY_MS) {
        sh->stall_logged_ms = now_ms;
        log_warn("a loop turn took %lld ms (%u completions): this shard's clients and peers "
                 "waited that long (INFO ringkv_slow_turns, ringkv_longest_turn_us)",
                 (long long)(us / 1000), completions);
    }
}

/* Step 1 of the loop: submits and waits for a completion, or only submits
 * when stashed ones wait. While messages wait for room in a peer's queue
 * (which drains without waking this shard), waits at most
 * SHARD_BACKLOG_WAIT_NS rather than spinning. */
static int shard_wait(struct shard *sh, bool backlog)
{
    bool busy = sh->nstash || sh->rest; /* work for this turn already: no waiting */
    if (busy || !backlog)
        return io_uring_submit_and_wait(&sh->uring, busy ? 0 : 1);
    struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = SHARD_BACKLOG_WAIT_NS};
    struct io_uring_cqe *cqe;
    return io_uring_submit_and_wait_timeout(&sh->uring, &cqe, 1, &ts, NULL);
}

void *shard_main(void *arg)
{
    struct shard *sh = arg;
    struct node *n = sh->node;
    char name[24];
    snprintf(name, sizeof name, "shard %u", sh->id);
    log_set_thread(name);
    shard_pin(sh);
    sh->start_rc = shard_start(sh);
    pthread_barrier_wait(&n->ready); /* every ring exists */
    pthread_barrier_wait(&n->serving); /* the data directory is consistent */
    for (uint32_t i = 0; i < n->nshards; i++)
        if (n->shards[i]->start_rc != 0)
            __atomic_store_n(&n->stop_flag, 1, __ATOMIC_RELEASE);
    shard_arm_accept(sh, sh->listen_resp_fd, NET_OP_ACCEPT_RESP);
    if (sh->listen_mc_fd >= 0)
        shard_arm_accept(sh, sh->listen_mc_fd, NET_OP_ACCEPT_MC);
    struct __kernel_timespec tick_ts = {.tv_sec = 0, .tv_nsec = SHARD_TICK_MS * 1000000L};
    shard_arm_tick(sh, &tick_ts);
    /* the peer links' wake read, armed before the first wait: a peer that
     * dials this node as it starts (a joiner: every node of the ring at
     * once) is adopted then, not on the first tick, 100 ms later, with every
     * request its coordinator sent it waiting that long */
    peerlink_flush(sh);
    store_tick(sh->store, shard_now_ms());
    sh->turn_ms = req_now_ms(); /* start-up may have taken a while */
    bool backlog = false;
    while (!__atomic_load_n(&n->stop_flag, __ATOMIC_ACQUIRE)) {
        int rc = shard_wait(sh, backlog);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY && rc != -ETIME)
            log_warn("io_uring_submit_and_wait: %s; retrying", strerror(-rc));
        bool tick = false;
        int64_t turn_start_us = shard_now_us();
        shard_reap(sh);
        uint32_t completions = sh->nstash;
        /* the cluster's newest view, when it changed, before what woke the
         * shard is served: a shard idle while the ring or a node's health
         * changed routes its first request by the new view, not the last */
        coord_turn(sh);
        /* a CONFIG SET on any shard: its live settings before this turn's
         * requests (the client's next one comes after its +OK) */
        if (__builtin_expect(__atomic_load_n(&n->settings_gen, __ATOMIC_ACQUIRE) !=
                                 sh->settings_gen, 0))
            shard_refresh_settings(sh);
        /* the turn's clock after the view (its first split of the table
         * walks every key), before anything is served */
        sh->turn_ms = req_now_ms();
        /* Dispatch from the stash; what shard_sqe() stashes meanwhile joins
         * the end (the array may move: index it afresh each time). */
        for (uint32_t i = 0; i < sh->nstash; i++) {
            struct shard_cqe cqe = sh->stash[i];
            shard_on_cqe(sh, &cqe, &tick);
        }
        sh->nstash = 0;
        if (__builtin_expect(sh->rest != NULL, 0))
            cmd_route_rest(sh); /* a huge MSET's, MGET's, DEL's or MSETNX's next rows */
        coord_lost_turn(sh); /* forwards whose link ended in these completions */
        int64_t turn_ms = shard_now_ms();
        store_turn(sh->store, turn_ms);
        transfer_turn(sh, turn_ms); /* a drop pass under way: a small step */
        tier_turn(sh);
        shard_drain_inboxes(sh);
        persist_flush(sh->persist);
        if (sh->persist) /* appendfsync always's replies; SAVE's under any */
            req_durable(&sh->reqs, persist_durable_seq(sh->persist));
        if (req_count(&sh->reqs) > 0) /* no clock read while nothing waits */
            req_expire(&sh->reqs, req_now_ms());
        backlog = shard_retry_backlogs(sh);
        persist_release_writers(sh); /* the log drained: paused writers go on */
        shard_flush(sh);
        peerlink_flush(sh); /* one batch and one send per peer link */
        /* Input resumed while flushing may have made records: hand them to
         * the kernel now, not at the next wake-up (their replies are held). */
        persist_flush(sh->persist);
        hint_flush(sh); /* the turn's hints: one write, then an fdatasync */
        if (tick) {
            sh->turn_ms = req_now_ms(); /* the tick's sends and reaps: after the turn's work */
            int64_t now = shard_now_ms();
            store_tick(sh->store, now);
            shard_refresh_settings(sh);
            coord_reap(sh, now); /* tombstones past tombstone-grace, confirmed in a cluster */
            aae_tick(sh, req_now_ms()); /* Merkle trees: rebuild steps, exchanges, repairs */
            transfer_tick(sh, now); /* partitions moving on join and leave */
            persist_tick(sh->persist, now);
            idle_scan(sh, now);
            peerlink_turn(sh, req_now_ms());
            hint_tick(sh, req_now_ms()); /* deliveries to owners that are up */
            if (sh->accept_unarmed && !sh->accept_paused) { /* out of descriptors a tick ago */
                if (sh->accept_unarmed & 1)
                    shard_arm_accept(sh, sh->listen_resp_fd, NET_OP_ACCEPT_RESP);
                if (sh->accept_unarmed & 2)
                    shard_arm_accept(sh, sh->listen_mc_fd, NET_OP_ACCEPT_MC);
                sh->accept_unarmed = 0;
            }
            shard_arm_tick(sh, &tick_ts);
        }
        shard_turn_done(sh, turn_start_us, completions);
    }
    io_uring_submit(&sh->uring);
    shard_drain_log(sh);
    uint64_t unwritten = persist_finish(sh->persist); /* what the ring did not make durable */
    __atomic_add_fetch(&n->log_unwritten, unwritten, __ATOMIC_RELAXED);
    pthread_barrier_wait(&n->stopped); /* no shard wakes a ring that is gone */
    return NULL;
}
