/* shard.c: the shard thread and its loop (see shard.h).
 * The loop:
 *   1. submit what the last turn queued and wait for at least one completion
 *      (or none, if messages wait for room in a full queue);
 *   2. reap every completion and dispatch on its user_data (net.h): accepts,
 *      receives, sends, wake-ups from other shards, the 100 ms tick;
 *   3. drain the inbound queue of every other shard: a message whose origin
 *      is another shard is a request to run here (cmd_msg_execute); one whose
 *      origin is this shard is a reply coming home (cmd_msg_complete);
 *   4. retry messages held back by full queues, flush connections that
 *      gathered replies (one send each), and wake every shard sent to this
 *      turn with an IORING_OP_MSG_RING on its ring (no syscall of its own:
 *      it rides in the next submit);
 *   5. on the tick: the store's housekeeping (expiry, reclamation, resize
 *      steps), the segment log's fdatasync (everysec), idle clients
 *      (idle.h) and the stop flag.
 * With storage = log, the records a turn wrote go to the kernel as one write
 * at the end of that turn, in the same submit as its replies (persist.h).
 * With appendfsync always, replies computed while records are not yet
 * durable wait, parked, for the fdatasync that covers them (connections
 * here, replies to other shards in `held`); the loop serves on meanwhile.
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

#include "cmd.h"
#include "conn.h"
#include "idle.h"
#include "log.h"
#include "net.h"
#include "node.h"
#include "persist.h"
#include "store.h"
#include "tier.h"

#define SHARD_QUEUE_CAPACITY 8192
#define SHARD_TICK_MS 100

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
    sh->inbox = mi_calloc(n->nshards, sizeof *sh->inbox);
    sh->wake = mi_calloc(n->nshards, sizeof *sh->wake);
    sh->backlog = mi_calloc(n->nshards, sizeof *sh->backlog);
    if (!sh->inbox || !sh->wake || !sh->backlog)
        goto fail;
    for (uint32_t i = 0; i < n->nshards; i++)
        if (i != id && mq_init(&sh->inbox[i], SHARD_QUEUE_CAPACITY) != 0)
            goto fail;
    sh->listen_resp_fd = net_listen(cfg->bind, (int)cfg->port, (int)cfg->tcp_backlog);
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
            conn_destroy(sh->conns[s]);
    if (sh->listen_resp_fd >= 0)
        close(sh->listen_resp_fd);
    if (sh->listen_mc_fd >= 0)
        close(sh->listen_mc_fd);
    for (uint32_t i = 0; sh->inbox && i < sh->node->nshards; i++) {
        if (i == sh->id)
            continue;
        struct cmd_msg *m;
        while (sh->inbox[i].slots && (m = mq_recv(&sh->inbox[i]))) {
            buf_fini(&m->reply);
            mi_free(m);
        }
        mq_fini(&sh->inbox[i]);
    }
    for (uint32_t i = 0; sh->backlog && i < sh->node->nshards; i++)
        shard_backlog_free(&sh->backlog[i]);
    if (sh->ring_ready)
        io_uring_queue_exit(&sh->uring);
    tier_destroy(sh->tier); /* after the ring: no read lands in its buffers */
    persist_stop(sh->persist); /* after the ring, before the store it journals */
    if (sh->store)
        store_destroy_for_shard(sh);
    mi_free(sh->recv_ring);
    mi_free(sh->recv_bufs);
    shard_backlog_free(&sh->held);
    shard_backlog_free(&sh->local);
    mi_free(sh->inbox);
    mi_free(sh->wake);
    mi_free(sh->backlog);
    mi_free(sh->conns);
    mi_free(sh->conn_gen);
    mi_free(sh->free_slots);
    mi_free(sh);
}

struct io_uring_sqe *shard_sqe(struct shard *sh)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&sh->uring);
    while (!sqe) {
        io_uring_submit(&sh->uring);
        sqe = io_uring_get_sqe(&sh->uring);
    }
    return sqe;
}

void shard_mark_dirty(struct shard *sh, struct conn *c)
{
    if (c->is_dirty)
        return;
    c->is_dirty = true;
    c->next_dirty = sh->dirty;
    sh->dirty = c;
}

int shard_backlog_push(struct shard_backlog *b, struct cmd_msg *m)
{
    if (b->len == b->cap) {
        uint32_t cap = b->cap ? b->cap * 2 : 64;
        struct cmd_msg **msgs = mi_malloc(cap * sizeof *msgs);
        if (!msgs)
            return -ENOMEM;
        for (uint32_t k = 0; k < b->len; k++)
            msgs[k] = b->msgs[(b->head + k) % b->cap];
        mi_free(b->msgs);
        b->msgs = msgs;
        b->head = 0;
        b->cap = cap;
    }
    b->msgs[(b->head + b->len) % b->cap] = m;
    b->len++;
    return 0;
}

struct cmd_msg *shard_backlog_pop(struct shard_backlog *b)
{
    struct cmd_msg *m = b->msgs[b->head];
    b->head = (b->head + 1) % b->cap;
    b->len--;
    return m;
}

void shard_backlog_free(struct shard_backlog *b)
{
    while (b->len) {
        struct cmd_msg *m = shard_backlog_pop(b);
        buf_fini(&m->reply);
        mi_free(m);
    }
    mi_free(b->msgs);
    b->msgs = NULL;
    b->cap = 0;
}

static void shard_complete_local(struct shard *sh, struct cmd_msg *m);
static void shard_release_if_done(struct shard *sh, struct conn *c);

void shard_send(struct shard *sh, uint32_t to, struct cmd_msg *m)
{
    if (to == sh->id) { /* a reply to one of this shard's connections */
        if (shard_backlog_push(&sh->local, m) != 0)
            shard_complete_local(sh, m);
        return;
    }
    struct mq *q = &sh->node->shards[to]->inbox[sh->id];
    struct shard_backlog *b = &sh->backlog[to];
    sh->wake[to] = true;
    if (b->len == 0 && mq_send(q, m) == 0)
        return;
    if (shard_backlog_push(b, m) != 0) {
        /* Out of memory with the queue full: wait for room rather than lose it. */
        while (mq_send(q, m) != 0)
            sched_yield();
    }
}

void shard_reply(struct shard *sh, struct cmd_msg *m)
{
    if (!persist_holds_replies(sh->persist)) {
        shard_send(sh, m->origin, m);
        return;
    }
    m->durable_wait = persist_last_seq(sh->persist);
    if (m->durable_wait <= persist_durable_seq(sh->persist) ||
        shard_backlog_push(&sh->held, m) != 0)
        shard_send(sh, m->origin, m);
}

/* Sends the replies held for durability whose records are now durable (the
 * queue is in record order). */
static void shard_release_held(struct shard *sh)
{
    struct shard_backlog *b = &sh->held;
    uint64_t durable = persist_durable_seq(sh->persist);
    for (; b->len && b->msgs[b->head]->durable_wait <= durable;
         b->len--, b->head = (b->head + 1) % b->cap)
        shard_send(sh, b->msgs[b->head]->origin, b->msgs[b->head]);
}

/* Moves held-back messages into queues that have room. True if any remain. */
static bool shard_retry_backlogs(struct shard *sh)
{
    bool left = false;
    for (uint32_t to = 0; to < sh->node->nshards; to++) {
        struct shard_backlog *b = &sh->backlog[to];
        struct mq *q = b->len ? &sh->node->shards[to]->inbox[sh->id] : NULL;
        while (b->len && mq_send(q, b->msgs[b->head]) == 0) {
            b->head = (b->head + 1) % b->cap;
            b->len--;
            sh->wake[to] = true;
        }
        left |= b->len != 0;
    }
    return left;
}

static void shard_arm_accept(struct shard *sh, int fd, enum net_op op)
{
    struct io_uring_sqe *sqe = shard_sqe(sh);
    io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, net_ud(op, 0, 0));
}

static void shard_arm_tick(struct shard *sh, struct __kernel_timespec *ts)
{
    struct io_uring_sqe *sqe = shard_sqe(sh);
    io_uring_prep_timeout(sqe, ts, 0, 0);
    io_uring_sqe_set_data64(sqe, net_ud(NET_OP_TICK, 0, 0));
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

static void shard_reject(int fd, enum net_op op, const char *why)
{
    char line[128];
    int n = snprintf(line, sizeof line, op == NET_OP_ACCEPT_RESP ? "-ERR %s\r\n"
                                                                : "SERVER_ERROR %s\r\n", why);
    ssize_t w = send(fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)w;
    close(fd);
}

static void shard_on_accept(struct shard *sh, enum net_op op, int res, unsigned flags)
{
    if (!(flags & IORING_CQE_F_MORE) && !sh->accept_paused)
        shard_arm_accept(sh, op == NET_OP_ACCEPT_RESP ? sh->listen_resp_fd : sh->listen_mc_fd, op);
    if (res < 0) {
        if (res != -ECANCELED)
            log_warn("accept failed: %s; still accepting", strerror(-res));
        return;
    }
    const struct cfg *cfg = sh->node->cfg;
    int64_t clients = __atomic_add_fetch(&sh->node->clients, 1, __ATOMIC_RELAXED);
    if (clients > cfg->maxclients) {
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
    struct conn *c = conn_create(sh, res, op == NET_OP_ACCEPT_RESP ? CONN_RESP : CONN_MC, slot,
                                 sh->conn_gen[slot]);
    if (!c) {
        sh->free_slots[sh->nfree++] = slot;
        __atomic_sub_fetch(&sh->node->clients, 1, __ATOMIC_RELAXED);
        shard_reject(res, op, "out of memory");
        return;
    }
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
    sh->conns[c->slot] = NULL;
    sh->conn_gen[c->slot]++;
    sh->free_slots[sh->nfree++] = c->slot;
    if (c->is_dirty) { /* unlink from this turn's flush list */
        struct conn **pp = &sh->dirty;
        while (*pp != c)
            pp = &(*pp)->next_dirty;
        *pp = c->next_dirty;
    }
    if (c->is_parked) {
        struct conn **pp = &sh->parked;
        while (*pp != c)
            pp = &(*pp)->next_parked;
        *pp = c->next_parked;
    }
    conn_destroy(c);
    __atomic_sub_fetch(&sh->node->clients, 1, __ATOMIC_RELAXED);
    SHARD_STAT_ADD(sh, connected_clients, (uint64_t)-1);
}

static struct conn *shard_conn(struct shard *sh, uint64_t ud)
{
    uint32_t slot = net_ud_slot(ud);
    if (slot >= sh->conn_cap || !sh->conns[slot] || sh->conn_gen[slot] != net_ud_gen(ud))
        return NULL;
    return sh->conns[slot];
}

static void shard_on_cqe(struct shard *sh, struct io_uring_cqe *cqe, bool *tick)
{
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    enum net_op op = net_ud_op(ud);
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
            shard_recv_buf_return(sh, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        }
        break;
    case NET_OP_SEND:
        if ((c = shard_conn(sh, ud))) {
            conn_on_send(c, cqe->res);
            shard_release_if_done(sh, c);
        }
        break;
    case NET_OP_TICK:
        *tick = true;
        break;
    case NET_OP_SEG_WRITE:
    case NET_OP_SEG_FSYNC:
    case NET_OP_SEG_READ:
    case NET_OP_SEG_PREPARE:
        persist_on_cqe(sh->persist, ud, cqe->res);
        break;
    case NET_OP_TIER_READ:
        if (sh->tier)
            tier_on_cqe(sh, ud, cqe->res);
        break;
    default: /* wake-ups need no action: the queues are drained every turn */
        break;
    }
}

static void shard_complete_local(struct shard *sh, struct cmd_msg *m)
{
    struct conn *c = m->conn;
    cmd_msg_complete(sh, m);
    if (c->closing)
        shard_release_if_done(sh, c);
}

/* Replies to this shard's own requests that waited for a value on disk. */
static void shard_drain_local(struct shard *sh)
{
    while (sh->local.len)
        shard_complete_local(sh, shard_backlog_pop(&sh->local));
}

static void shard_drain_inboxes(struct shard *sh)
{
    shard_drain_local(sh);
    for (uint32_t from = 0; from < sh->node->nshards; from++) {
        if (from == sh->id)
            continue;
        struct cmd_msg *m;
        while ((m = mq_recv(&sh->inbox[from]))) {
            if (m->origin == sh->id) {
                struct conn *c = m->conn;
                cmd_msg_complete(sh, m);
                if (c->closing)
                    shard_release_if_done(sh, c);
            } else {
                cmd_msg_execute(sh, m);
            }
        }
    }
}

/* appendfsync always: a connection whose replies were computed after
 * records that are not durable yet waits (parked) until they are; every
 * later reply queues behind in its output, so order holds. */
bool shard_park(struct shard *sh, struct conn *c)
{
    if (!persist_holds_replies(sh->persist))
        return false;
    uint64_t last = persist_last_seq(sh->persist);
    if (last <= persist_durable_seq(sh->persist))
        return false;
    c->durable_wait = last;
    if (!c->is_parked) {
        c->is_parked = true;
        c->next_parked = sh->parked;
        sh->parked = c;
    }
    return true;
}

/* Flushes the parked connections whose wait is over. */
static void shard_unpark(struct shard *sh)
{
    uint64_t durable = persist_durable_seq(sh->persist);
    struct conn **pp = &sh->parked;
    while (*pp) {
        struct conn *c = *pp;
        if (c->durable_wait > durable) {
            pp = &c->next_parked;
            continue;
        }
        *pp = c->next_parked;
        c->is_parked = false;
        conn_flush(c);
        shard_release_if_done(sh, c);
    }
}

static void shard_flush(struct shard *sh)
{
    struct conn *c;
    while ((c = sh->dirty)) {
        sh->dirty = c->next_dirty;
        c->is_dirty = false;
        if (shard_park(sh, c))
            continue;
        conn_flush(c);
        shard_release_if_done(sh, c);
    }
    if (sh->parked)
        shard_unpark(sh);
    for (uint32_t to = 0; to < sh->node->nshards; to++) {
        if (!sh->wake[to])
            continue;
        sh->wake[to] = false;
        struct io_uring_sqe *sqe = shard_sqe(sh);
        io_uring_prep_msg_ring(sqe, sh->node->shards[to]->uring.ring_fd, 0,
                               net_ud(NET_OP_WAKE, 0, 0), 0);
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

void shard_recv_buf_return(struct shard *sh, unsigned bid)
{
    io_uring_buf_ring_add(sh->recv_ring, shard_recv_buf(sh, bid), SHARD_RECV_BUF_SIZE, bid,
                          io_uring_buf_ring_mask(SHARD_RECV_BUFS), 0);
    io_uring_buf_ring_advance(sh->recv_ring, 1);
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
    while ((persist_busy(sh->persist) || tier_busy(sh->tier)) && shard_now_ms() < deadline) {
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000000L};
        struct io_uring_cqe *cqe;
        io_uring_submit_and_wait_timeout(&sh->uring, &cqe, 1, &ts, NULL);
        unsigned head, count = 0;
        io_uring_for_each_cqe(&sh->uring, head, cqe)
        {
            uint64_t ud = io_uring_cqe_get_data64(cqe);
            enum net_op op = net_ud_op(ud);
            if (op == NET_OP_SEG_WRITE || op == NET_OP_SEG_FSYNC || op == NET_OP_SEG_READ ||
                op == NET_OP_SEG_PREPARE)
                persist_on_cqe(sh->persist, ud, cqe->res);
            else if (op == NET_OP_TIER_READ)
                tier_forget_cqe(sh->tier); /* its buffer may go now */
            count++;
        }
        io_uring_cq_advance(&sh->uring, count);
        persist_flush(sh->persist);
    }
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
    store_tick(sh->store, shard_now_ms());
    bool backlog = false;
    while (!__atomic_load_n(&n->stop_flag, __ATOMIC_ACQUIRE)) {
        int rc = io_uring_submit_and_wait(&sh->uring, backlog ? 0 : 1);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY && rc != -ETIME)
            log_warn("io_uring_submit_and_wait: %s; retrying", strerror(-rc));
        struct io_uring_cqe *cqe;
        unsigned head, count = 0;
        bool tick = false;
        io_uring_for_each_cqe(&sh->uring, head, cqe)
        {
            shard_on_cqe(sh, cqe, &tick);
            count++;
        }
        io_uring_cq_advance(&sh->uring, count);
        store_turn(sh->store, shard_now_ms());
        tier_turn(sh);
        shard_drain_inboxes(sh);
        backlog = shard_retry_backlogs(sh);
        persist_flush(sh->persist);
        shard_release_held(sh);
        shard_drain_local(sh);
        shard_flush(sh);
        /* Input resumed while flushing may have made records: hand them to
         * the kernel now, not at the next wake-up (their replies are parked). */
        persist_flush(sh->persist);
        if (tick) {
            int64_t now = shard_now_ms();
            store_tick(sh->store, now);
            persist_tick(sh->persist, now);
            idle_scan(sh, now);
            shard_arm_tick(sh, &tick_ts);
        }
    }
    io_uring_submit(&sh->uring);
    shard_drain_log(sh);
    pthread_barrier_wait(&n->stopped); /* no shard wakes a ring that is gone */
    return NULL;
}
