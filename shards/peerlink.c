/* peerlink.c: a shard's connections to other nodes' shards (see peerlink.h).
 * Runs on the owning shard's thread, except peerlink_adopt() (admin thread).
 *
 * Links: every connection is a struct link in the shard's slot table,
 * named by (slot << 32 | generation) in user_data and in the handles the
 * coordinator keeps, so a completion or a late reply for a link that has
 * gone finds nothing. A link is CONNECTING (dialer: an io_uring connect in
 * flight), HANDSHAKE (wire.h's exchange; its decoder takes handshake frames
 * only) or OPEN. Closing shuts the socket down, which completes what is in
 * the kernel; the link is freed by peerlink_flush() once no connect,
 * receive or send is in flight, and only there, so no callback ever sees a
 * link freed under it.
 *
 * Dialling: a destination (struct dest, one per peer node id, in a small
 * hash table) has one target per peer shard: the link to it, and its
 * backoff. Requests go to shard (partition mod the peer's shards); until a
 * CHALLENGE has told the peer's shard count, to its shard 0. A request for
 * a target without a link dials it (socket bound to the node's own
 * address, io_uring connect) unless its backoff has not passed: then
 * -EAGAIN at once. Until the handshake is done, messages are encoded into
 * the link's `pending` batches (bounded); when it is, they are decoded and
 * written again for the version and frame size the peer chose, each to
 * the shard it belongs to (now that the count is known). A dial or
 * handshake that fails backs the target off, 100 ms doubling to 5 s; a
 * link that was open and breaks is dialled again by the next request.
 *
 * Input: one multishot receive per link on the shard's provided-buffer
 * ring; whole frames are decoded in place, a partial one is kept in `in`;
 * a batch's messages are read 32 at a time (link_read_ahead: each decoded
 * once, its key hashed once, the keys' table slots prefetched together),
 * then each goes to the coordinator (coord_on_request() with the link's
 * handle and the key's hash, coord_on_reply()), which may write to any
 * link meanwhile.
 * Output: messages are appended to `out` through a wire_writer (one batch
 * per turn and link); peerlink_flush() closes the batch and hands `out` to
 * the kernel in one send, continued when the kernel takes part of it. A
 * link whose unsent output reaches PEERLINK_IN_PAUSE stops reading (its
 * receive is cancelled, so TCP flow control slows a peer that sends
 * requests without reading the replies) until the output drains; the
 * check is made before each message, so a batch is left part-way (kept
 * whole in `in`, with the offset of its next message) and its replies
 * pass the mark by one message's at most. A
 * link whose unsent output passes PEERLINK_OUT_MAX takes no more requests
 * (-EAGAIN, as a link that is down) until it drains. A peer that stops
 * reading altogether is cut off by the kernel (TCP_USER_TIMEOUT also
 * bounds a zero window), and the requests on its link time out at their
 * coordinators.
 *
 * Membership: a peer that names itself (its HELLO to us, its CHALLENGE
 * when we dial) with an id that is neither a member of the current
 * snapshot nor in its ring, or one that left and is not in the ring, is
 * refused (REFUSE, closed, counted as a failed
 * handshake) before anything is served. Without a cluster secret the id
 * is taken as claimed: only the secret makes it a proof.
 *
 * Adoption: the admin thread queues accepted sockets under `adopt_lock`
 * and writes the shard's eventfd, on which a read is kept in the shard's
 * ring; its completion takes the queue. At most PEERLINK_HALF_OPEN_MAX
 * adopted links may be in their handshake (each has PEERLINK_HANDSHAKE_MS):
 * more are closed at once, so a flood of connections that never prove
 * anything costs bounded memory. */
#include "peerlink.h"

#include <errno.h>
#include <mimalloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <xxhash.h>

#include "admin.h"
#include "keyhash.h"
#include "log.h"
#include "net.h"
#include "node.h"
#include "req.h"
#include "shard.h"
#include "snapshot.h"
#include "store.h"

#define PEERLINK_PENDING_MSGS 65536         /* messages waiting for a handshake */
#define PEERLINK_PENDING_BYTES (64u << 20)  /* ... and their bytes */
#define PEERLINK_OUT_MAX (256u << 20)       /* unsent output that refuses more requests */
#define PEERLINK_IN_PAUSE (64u << 20)       /* unsent output at which a link stops reading */
#define PEERLINK_BACKOFF_MIN_MS 100
#define PEERLINK_BACKOFF_MAX_MS 5000
#define PEERLINK_HANDSHAKE_MS 5000 /* connect and handshake must be done by then */
#define PEERLINK_ADOPT_MAX 256     /* sockets waiting to be adopted */
#define PEERLINK_HALF_OPEN_MAX 256 /* adopted links still in their handshake */
#define PEERLINK_WARN_MS 10000     /* repeated warnings at most this often */
#define PEERLINK_PREFETCH 32       /* a batch's keys looked up ahead at a time */
#define PEERLINK_KEEP_BUF (1u << 20) /* larger idle buffers are freed */
#define PEERLINK_KEY_MAX 64
#define PEERLINK_KEEPIDLE_S 10      /* an idle link is probed after this */
#define PEERLINK_KEEPINTVL_S 5      /* ... every this */
#define PEERLINK_KEEPCNT 3          /* ... and dropped after this many unanswered */
#define PEERLINK_USER_TIMEOUT_MS 30000 /* sent bytes unacknowledged (or a zero window)
                                          this long: dropped */

enum link_state { LINK_CONNECTING, LINK_HANDSHAKE, LINK_OPEN };

struct dest;

struct link {
    uint32_t slot, gen;
    int fd;
    uint8_t state; /* enum link_state */
    bool is_dialer;
    bool closing;           /* shut down; freed once nothing is in flight */
    bool lost_noted;        /* its requests were said lost (link_note_lost) */
    bool close_after_flush; /* a REFUSE is queued: close once it is sent */
    bool recv_armed, send_inflight, connect_inflight;
    bool recv_cancelling; /* the receive was asked to stop (input paused) */
    bool input_paused;    /* too much output waits: input is left in the kernel */
    bool is_dirty;
    bool is_half_open; /* adopted, handshake not done: counted in half_open */
    struct link *next_dirty;
    struct dest *dest;   /* dialer: where it goes */
    uint16_t peer_shard; /* dialer: the shard dialled */
    int64_t deadline_ms; /* the handshake must be done by then */
    struct sockaddr_storage sa; /* dialer: the address (read by the kernel's connect) */
    socklen_t sa_len;
    struct wire_hs hs;
    struct wire_decoder dec;
    size_t need;      /* bytes the frame at in[0] takes (0: unknown) */
    size_t resume_at; /* the batch at in[0] was left here (its body's offset) */
    struct buf in, out, sending;
    size_t sent;
    struct wire_writer w;  /* on `out`, once OPEN */
    struct buf pending;    /* dialer before OPEN: messages, as batches */
    struct wire_writer pw; /* on `pending` */
    uint32_t npending;
};

/* A peer shard as a dialling target. */
struct target {
    uint64_t link;        /* its link's handle; 0: none */
    int64_t retry_at_ms;  /* no dial before (req_now_ms()); 0: any time */
    uint32_t backoff_ms;  /* the last wait; 0 after a success */
    bool is_down;         /* logged as unreachable (once per outage) */
};

struct dest {
    char id[WIRE_ID_HEX + 1];
    char addr[64];       /* its cluster address, host:port */
    int64_t waiting_since_ms; /* the first request sent since the peer's last
                                 bytes came in (req_now_ms); 0: none waits */
    uint16_t shards;     /* its shard count, 0 until a CHALLENGE said */
    uint32_t ntargets;
    struct target *targets;
};

struct peerlink {
    struct shard *sh;
    char self_id[WIRE_ID_HEX + 1];
    uint8_t key[PEERLINK_KEY_MAX]; /* the cluster key (admin_cluster_key()) */
    size_t key_len;
    uint32_t max_frame; /* announced: the largest batch we take */
    struct wire_limits lim;
    struct sockaddr_storage local; /* the node's bind address, port 0 */
    socklen_t local_len;           /* 0: do not bind (wildcard or unparsable) */

    struct link **links; /* slot -> link, NULL when free */
    uint32_t *gens;
    uint32_t *free_slots;
    uint32_t cap, nfree, nlinks;
    struct link *dirty;

    struct dest **dests; /* open addressing by the id's hash; never removed */
    uint32_t dests_cap, ndests;

    int wake_fd;          /* eventfd: adopted sockets wait */
    uint64_t wake_value;  /* the armed read's buffer */
    bool wake_armed;
    pthread_mutex_t adopt_lock; /* guards adopted[] and nadopted (admin and owner) */
    int adopted[PEERLINK_ADOPT_MAX];
    uint32_t nadopted;

    uint32_t half_open; /* adopted links in their handshake (PEERLINK_HALF_OPEN_MAX) */
    int64_t warned_ms;
    struct peerlink_stats stats; /* owner writes (relaxed stores), anyone reads */
};

#define LINK_STAT_ADD(pl, field, n)                                                                \
    __atomic_store_n(&(pl)->stats.field, (pl)->stats.field + (n), __ATOMIC_RELAXED)

static uint64_t link_handle(const struct link *l)
{
    return (uint64_t)l->slot << 32 | l->gen;
}

static struct link *link_of(struct peerlink *pl, uint64_t handle)
{
    uint32_t slot = (uint32_t)(handle >> 32);
    if (handle == 0 || slot >= pl->cap || !pl->links[slot] || pl->gens[slot] != (uint32_t)handle)
        return NULL;
    return pl->links[slot];
}

/* A warning at most every PEERLINK_WARN_MS per shard (others at debug). */
static bool link_may_warn(struct peerlink *pl)
{
    int64_t now = req_now_ms();
    if (pl->warned_ms && now - pl->warned_ms < PEERLINK_WARN_MS)
        return false;
    pl->warned_ms = now;
    return true;
}

static void link_mark_dirty(struct peerlink *pl, struct link *l)
{
    if (l->is_dirty)
        return;
    l->is_dirty = true;
    l->next_dirty = pl->dirty;
    pl->dirty = l;
}

/* ---- destinations ---- */

static uint32_t dest_hash(const char *id)
{
    return (uint32_t)XXH3_64bits(id, WIRE_ID_HEX);
}

static int dest_grow(struct peerlink *pl)
{
    uint32_t cap = pl->dests_cap ? pl->dests_cap * 2 : 16;
    struct dest **t = mi_calloc(cap, sizeof *t);
    if (!t)
        return -ENOMEM;
    for (uint32_t i = 0; i < pl->dests_cap; i++) {
        struct dest *d = pl->dests[i];
        if (!d)
            continue;
        uint32_t h = dest_hash(d->id) & (cap - 1);
        while (t[h])
            h = (h + 1) & (cap - 1);
        t[h] = d;
    }
    mi_free(pl->dests);
    pl->dests = t;
    pl->dests_cap = cap;
    return 0;
}

/* Makes t[0 .. n) exist. */
static int dest_targets(struct dest *d, uint32_t n)
{
    if (n <= d->ntargets)
        return 0;
    struct target *t = mi_realloc(d->targets, n * sizeof *t);
    if (!t)
        return -ENOMEM;
    memset(t + d->ntargets, 0, (n - d->ntargets) * sizeof *t);
    d->targets = t;
    d->ntargets = n;
    return 0;
}

/* The destination with this id, NULL when none was made. */
static struct dest *dest_find(struct peerlink *pl, const char *id)
{
    if (!pl || !pl->dests_cap || strnlen(id, WIRE_ID_HEX + 1) != WIRE_ID_HEX)
        return NULL;
    uint32_t h = dest_hash(id) & (pl->dests_cap - 1);
    for (struct dest *d; (d = pl->dests[h]); h = (h + 1) & (pl->dests_cap - 1))
        if (memcmp(d->id, id, WIRE_ID_HEX) == 0)
            return d;
    return NULL;
}

/* The destination with this id (made on first use); its address follows
 * the caller's. -EINVAL for an id that is not 40 hex digits. */
static int dest_get(struct peerlink *pl, const char *id, const char *addr, struct dest **out)
{
    if (strnlen(id, WIRE_ID_HEX + 1) != WIRE_ID_HEX)
        return -EINVAL;
    struct dest *d = dest_find(pl, id);
    if (d) {
        if (strcmp(d->addr, addr) != 0)
            snprintf(d->addr, sizeof d->addr, "%s", addr);
        *out = d;
        return 0;
    }
    if ((pl->ndests + 1) * 2 > pl->dests_cap && dest_grow(pl) != 0)
        return -ENOMEM;
    d = mi_zalloc(sizeof *d);
    if (!d || dest_targets(d, 1) != 0) {
        mi_free(d);
        return -ENOMEM;
    }
    memcpy(d->id, id, WIRE_ID_HEX);
    snprintf(d->addr, sizeof d->addr, "%s", addr);
    uint32_t h = dest_hash(id) & (pl->dests_cap - 1);
    while (pl->dests[h])
        h = (h + 1) & (pl->dests_cap - 1);
    pl->dests[h] = d;
    pl->ndests++;
    *out = d;
    return 0;
}

/* ---- links: allocation ---- */

static int link_grow_slots(struct peerlink *pl)
{
    uint32_t cap = pl->cap ? pl->cap * 2 : 16;
    if (cap > (1u << 24)) /* net_ud() keeps 24 bits of slot */
        return -ENOMEM;
    struct link **links = mi_realloc(pl->links, cap * sizeof *links);
    if (!links)
        return -ENOMEM;
    pl->links = links;
    uint32_t *gens = mi_realloc(pl->gens, cap * sizeof *gens);
    if (!gens)
        return -ENOMEM;
    pl->gens = gens;
    uint32_t *free_slots = mi_realloc(pl->free_slots, cap * sizeof *free_slots);
    if (!free_slots)
        return -ENOMEM;
    pl->free_slots = free_slots;
    for (uint32_t s = cap; s > pl->cap; s--) {
        links[s - 1] = NULL;
        gens[s - 1] = 1; /* handles are never 0 */
        free_slots[pl->nfree++] = s - 1;
    }
    pl->cap = cap;
    return 0;
}

static struct link *link_new(struct peerlink *pl, int fd)
{
    if (pl->nfree == 0 && link_grow_slots(pl) != 0)
        return NULL;
    struct link *l = mi_zalloc(sizeof *l);
    if (!l)
        return NULL;
    l->slot = pl->free_slots[--pl->nfree];
    l->gen = pl->gens[l->slot];
    l->fd = fd;
    l->dec.lim = pl->lim;
    buf_init(&l->in);
    buf_init(&l->out);
    buf_init(&l->sending);
    buf_init(&l->pending);
    l->deadline_ms = req_now_ms() + PEERLINK_HANDSHAKE_MS;
    pl->links[l->slot] = l;
    pl->nlinks++;
    return l;
}

static void link_free(struct peerlink *pl, struct link *l)
{
    pl->links[l->slot] = NULL;
    pl->gens[l->slot]++;
    if (pl->gens[l->slot] == 0)
        pl->gens[l->slot] = 1;
    pl->free_slots[pl->nfree++] = l->slot;
    pl->nlinks--;
    if (l->fd >= 0)
        close(l->fd);
    buf_fini(&l->in);
    buf_fini(&l->out);
    buf_fini(&l->sending);
    buf_fini(&l->pending);
    mi_free(l);
}

/* An adopted link's handshake ended (done, or the link closes). */
static void link_end_half_open(struct peerlink *pl, struct link *l)
{
    if (!l->is_half_open)
        return;
    l->is_half_open = false;
    pl->half_open--;
}

static bool link_is_done(const struct link *l)
{
    return l->closing && !l->recv_armed && !l->send_inflight && !l->connect_inflight;
}

/* Target `shard` of d lost its link (or never got one): it forgets it
 * and, unless it had been open, backs off. A failure at a shard other than
 * 0 makes the peer's shard count unknown again (it may have restarted with
 * fewer shards). */
static void target_release(struct dest *d, uint16_t shard, bool was_open, const char *why)
{
    struct target *t = &d->targets[shard];
    t->link = 0;
    if (was_open) {
        t->backoff_ms = 0;
        t->retry_at_ms = 0;
        return;
    }
    t->backoff_ms = t->backoff_ms ? t->backoff_ms * 2 : PEERLINK_BACKOFF_MIN_MS;
    if (t->backoff_ms > PEERLINK_BACKOFF_MAX_MS)
        t->backoff_ms = PEERLINK_BACKOFF_MAX_MS;
    t->retry_at_ms = req_now_ms() + t->backoff_ms;
    if (shard != 0)
        d->shards = 0;
    if (!t->is_down) {
        t->is_down = true;
        log_warn("peer %.12s (%s) shard %u unreachable: %s; retrying with backoff up to %u ms",
                 d->id, d->addr, shard, why, PEERLINK_BACKOFF_MAX_MS);
    }
}

/* A dialer's link failed or ended: its target lets it go (once). */
static void link_release_target(struct link *l, bool was_open, const char *why)
{
    if (l->is_dialer && l->dest->targets[l->peer_shard].link == link_handle(l))
        target_release(l->dest, l->peer_shard, was_open, why);
}

/* A link this shard dialled is ending and its requests will get no reply
 * (coord_note_link_lost ends the forwards waiting on that node), once per
 * link: one that was open and ended from the far side (end of stream,
 * reset, a REFUSE), or one whose requests still wait for its connect or
 * handshake when the connect fails or the handshake is refused, fails or
 * times out (they never left). Called before its target is released, so
 * that a later dial's requests are not taken for its own. A close of our
 * own on an open link (out of memory, the peer broke the protocol) says
 * nothing: requests on the node's other links may well be answered, and
 * these wait for their deadline. */
static void link_note_lost(struct peerlink *pl, struct link *l)
{
    if (!l->is_dialer || l->closing || l->lost_noted ||
        !(l->state == LINK_OPEN || l->npending > 0))
        return;
    l->lost_noted = true;
    coord_note_link_lost(pl->sh, l->dest->id);
}

/* Starts closing l: the socket is shut down (a connect in flight is
 * cancelled), queued messages are dropped, and peerlink_flush() frees it
 * once the kernel holds nothing of it. */
static void link_close(struct peerlink *pl, struct link *l, const char *why)
{
    if (l->closing)
        return;
    bool was_open = l->state == LINK_OPEN;
    l->closing = true;
    link_end_half_open(pl, l);
    if (l->state == LINK_HANDSHAKE) /* connected, never proved: refused, timed out, cut */
        LINK_STAT_ADD(pl, handshake_failures, 1);
    if (was_open)
        LINK_STAT_ADD(pl, links_up, (uint64_t)-1);
    link_release_target(l, was_open, why);
    if (was_open)
        log_info("peer link %s %.12s shard %u closed: %s", l->is_dialer ? "to" : "from",
                 l->hs.peer_id, l->hs.peer_shard, why);
    buf_fini(&l->pending);
    l->npending = 0;
    if (l->connect_inflight) {
        struct io_uring_sqe *sqe = shard_sqe(pl->sh);
        io_uring_prep_cancel64(sqe, net_ud(SHARD_OP_LINK_CONNECT, l->slot, l->gen), 0);
        io_uring_sqe_set_data64(sqe, net_ud(NET_OP_IGNORE, 0, 0));
        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    } else if (l->fd >= 0) {
        shutdown(l->fd, SHUT_RDWR); /* completes a receive or send in the kernel */
    }
    link_mark_dirty(pl, l);
}

/* The peer broke the protocol, or the handshake failed on our side: a
 * REFUSE goes out when one can, then the link closes. */
static void link_refuse(struct peerlink *pl, struct link *l, uint8_t reason, const char *why)
{
    if (link_may_warn(pl))
        log_warn("peer link %s %s: %s; closing it", l->is_dialer ? "to" : "from",
                 l->hs.peer_id[0] ? l->hs.peer_id : "(not yet known)", why);
    if (l->state == LINK_OPEN)
        wire_writer_flush(&l->w);
    buf_clear(&l->out); /* replies not sent yet go: the link ends with the REFUSE */
    wire_put_refuse(&l->out, reason, WIRE_VERSION_MIN, WIRE_VERSION, why);
    if (l->state != LINK_OPEN) {
        link_note_lost(pl, l);
        link_release_target(l, false, why);
    }
    l->close_after_flush = true;
    link_mark_dirty(pl, l);
}

/* ---- output ---- */

static size_t link_queued(const struct link *l)
{
    return l->out.len + (l->sending.len - l->sent);
}

/* Encodes m on l: into its batch when open, else into its pending queue. */
static int link_write(struct peerlink *pl, struct link *l, const struct wire_msg *m)
{
    if (l->closing || l->close_after_flush)
        return -EAGAIN;
    if (l->state != LINK_OPEN) {
        if (l->npending >= PEERLINK_PENDING_MSGS || l->pending.len >= PEERLINK_PENDING_BYTES)
            return -EAGAIN;
        int rc = wire_write_msg(&l->pw, m);
        if (rc == 0)
            l->npending++;
        return rc == -EMSGSIZE ? -EINVAL : rc;
    }
    if (m->kind == WIRE_REQUEST && link_queued(l) > PEERLINK_OUT_MAX)
        return -EAGAIN; /* replies are bounded by the input pause instead */
    int rc = wire_write_msg(&l->w, m);
    if (rc == -ENOMEM) {
        link_close(pl, l, "out of memory for its output");
        return -ENOMEM;
    }
    if (rc != 0)
        return rc == -EMSGSIZE ? -EINVAL : rc;
    LINK_STAT_ADD(pl, msgs_out, 1);
    link_mark_dirty(pl, l);
    return 0;
}

static void link_submit_send(struct peerlink *pl, struct link *l)
{
    struct io_uring_sqe *sqe = shard_sqe(pl->sh);
    io_uring_prep_send(sqe, l->fd, l->sending.data + l->sent, l->sending.len - l->sent,
                       MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, net_ud(SHARD_OP_LINK_SEND, l->slot, l->gen));
    l->send_inflight = true;
}

static void link_arm_recv(struct peerlink *pl, struct link *l)
{
    if (l->recv_armed || l->closing || l->close_after_flush || l->input_paused ||
        l->state == LINK_CONNECTING)
        return;
    struct io_uring_sqe *sqe = shard_sqe(pl->sh);
    io_uring_prep_recv_multishot(sqe, l->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = SHARD_RECV_GROUP;
    io_uring_sqe_set_data64(sqe, net_ud(SHARD_OP_LINK_RECV, l->slot, l->gen));
    l->recv_armed = true;
}

static bool link_should_pause(const struct link *l)
{
    return link_queued(l) >= PEERLINK_IN_PAUSE;
}

/* Stops reading l: its output waits for the peer. The multishot receive is
 * cancelled; what was read stays in `in` until link_resume(). */
static void link_pause(struct peerlink *pl, struct link *l)
{
    log_debug("peer link %s %.12s shard %u: %zu bytes of output wait; not reading it meanwhile",
              l->is_dialer ? "to" : "from", l->hs.peer_id, l->hs.peer_shard, link_queued(l));
    l->input_paused = true;
    if (!l->recv_armed || l->recv_cancelling)
        return;
    struct io_uring_sqe *sqe = shard_sqe(pl->sh);
    io_uring_prep_cancel64(sqe, net_ud(SHARD_OP_LINK_RECV, l->slot, l->gen), 0);
    io_uring_sqe_set_data64(sqe, net_ud(NET_OP_IGNORE, 0, 0));
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    l->recv_cancelling = true;
}

static size_t link_parse(struct peerlink *pl, struct link *l, const uint8_t *data, size_t len);

/* The output of a paused link drained (a send completed): what waited in
 * `in` is handled (which may pause it again), and the flush arms the
 * receive again. Called while completions are dispatched, so what the
 * coordinator answers goes out with this turn's flushes. */
static void link_resume(struct peerlink *pl, struct link *l)
{
    l->input_paused = false;
    if (l->in.len >= l->need)
        buf_consume(&l->in, link_parse(pl, l, (const uint8_t *)l->in.data, l->in.len));
}

/* End of turn for one link: the receive armed, the batch closed, `out`
 * handed to the kernel when nothing is being sent. */
static void link_flush_one(struct peerlink *pl, struct link *l)
{
    link_arm_recv(pl, l);
    if (l->state == LINK_OPEN)
        wire_writer_flush(&l->w);
    if (l->send_inflight || l->state == LINK_CONNECTING)
        return;
    if (l->out.len > 0) {
        if (l->out.failed) {
            link_close(pl, l, "out of memory for its output");
            return;
        }
        struct buf t = l->sending;
        l->sending = l->out;
        l->out = t;
        l->sent = 0;
        link_submit_send(pl, l);
        return;
    }
    if (l->close_after_flush)
        link_close(pl, l, "refused");
}

/* ---- dialling ---- */

/* Socket options of every link: no Nagle delay (a batch is one send
 * already), and a peer host that vanished without a FIN or RST (a crash, a
 * partition) breaks the link within about 30 s instead of never: keepalive
 * probes while idle, a user timeout while bytes wait for their ACK. A peer
 * process that is only stopped keeps its kernel answering, and its link. */
static void link_tune(int fd)
{
    int one = 1, idle = PEERLINK_KEEPIDLE_S, intvl = PEERLINK_KEEPINTVL_S,
        cnt = PEERLINK_KEEPCNT;
    unsigned user_timeout = PEERLINK_USER_TIMEOUT_MS;
    net_tune_client(fd);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
}

static void link_hs_config(const struct peerlink *pl, struct wire_hs_config *c)
{
    *c = (struct wire_hs_config){
        .node_id = pl->self_id,
        .shard = (uint16_t)pl->sh->id,
        .shards = (uint16_t)pl->sh->node->nshards,
        .version_min = WIRE_VERSION_MIN,
        .version_max = WIRE_VERSION,
        .max_frame = pl->max_frame,
        .secret = pl->key_len ? pl->key : NULL,
        .secret_len = pl->key_len,
    };
}

/* A new link to shard `shard` of d: socket bound to our address, connect
 * submitted. 0, or -errno (nothing made). */
static int link_dial(struct peerlink *pl, struct dest *d, uint16_t shard, struct link **out)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (net_parse_addr(d->addr, false, &ss, &len) != 0)
        return -EINVAL;
    struct wire_hs_config hc;
    link_hs_config(pl, &hc);
    hc.peer_id = d->id;
    hc.peer_shard = shard;
    if (getrandom(hc.nonce, sizeof hc.nonce, 0) != (ssize_t)sizeof hc.nonce)
        return -EIO;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (pl->local_len && pl->local.ss_family == ss.ss_family &&
        bind(fd, (const struct sockaddr *)&pl->local, pl->local_len) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    link_tune(fd);
    struct link *l = link_new(pl, fd);
    if (!l) {
        close(fd);
        return -ENOMEM;
    }
    l->is_dialer = true;
    l->dest = d;
    l->peer_shard = shard;
    l->state = LINK_CONNECTING;
    l->sa = ss;
    l->sa_len = len;
    if (wire_hs_init(&l->hs, WIRE_INITIATOR, &hc) != 0) {
        link_free(pl, l);
        return -EINVAL;
    }
    wire_writer_init(&l->pw, &l->pending, WIRE_VERSION, WIRE_FRAME_MAX);
    struct io_uring_sqe *sqe = shard_sqe(pl->sh);
    io_uring_prep_connect(sqe, fd, (const struct sockaddr *)&l->sa, l->sa_len);
    io_uring_sqe_set_data64(sqe, net_ud(SHARD_OP_LINK_CONNECT, l->slot, l->gen));
    l->connect_inflight = true;
    d->targets[shard].link = link_handle(l);
    LINK_STAT_ADD(pl, dials, 1);
    *out = l;
    return 0;
}

/* Sends m to shard `shard` of d, dialling it when it has no link. */
static int target_send(struct peerlink *pl, struct dest *d, uint16_t shard,
                       const struct wire_msg *m)
{
    if (dest_targets(d, (uint32_t)shard + 1) != 0)
        return -ENOMEM;
    struct target *t = &d->targets[shard];
    struct link *l = link_of(pl, t->link);
    if (!l) {
        if (t->retry_at_ms && req_now_ms() < t->retry_at_ms)
            return -EAGAIN;
        int rc = link_dial(pl, d, shard, &l);
        if (rc != 0) {
            target_release(d, shard, false, strerror(-rc));
            return rc == -ENOMEM ? -ENOMEM : -EAGAIN;
        }
    }
    return link_write(pl, l, m);
}

/* The handshake of a dialer's link is done: the peer's shard count is
 * known, and the messages that waited go out, each to its shard. */
static void link_replay(struct peerlink *pl, struct link *l)
{
    struct dest *d = l->dest;
    if (d->shards != l->hs.peer_shards && dest_targets(d, l->hs.peer_shards) == 0)
        d->shards = l->hs.peer_shards;
    d->targets[l->peer_shard].backoff_ms = 0;
    d->targets[l->peer_shard].retry_at_ms = 0;
    if (d->targets[l->peer_shard].is_down) {
        d->targets[l->peer_shard].is_down = false;
        log_info("peer %.12s (%s) shard %u reachable again", d->id, d->addr, l->peer_shard);
    }
    wire_writer_flush(&l->pw);
    struct buf pending = l->pending;
    buf_init(&l->pending);
    l->npending = 0;
    struct wire_decoder dec = {.version = WIRE_VERSION};
    wire_limits_default(&dec.lim);
    for (size_t off = 0; off < pending.len;) {
        struct wire_frame f;
        size_t used, need;
        const char *err;
        if (wire_decode(&dec, (const uint8_t *)pending.data + off, pending.len - off, &f, &used,
                        &need, &err) != WIRE_OK)
            break; /* our own encoding: cannot happen */
        struct wire_cursor c;
        struct wire_msg m;
        wire_cursor_init(&c, &dec, &f);
        while (wire_next_msg(&c, &m, &err) == WIRE_OK) {
            uint16_t shard = d->shards ? (uint16_t)(m.partition % d->shards) : 0;
            if (shard == l->peer_shard)
                link_write(pl, l, &m);
            else
                target_send(pl, d, shard, &m); /* a failure: the request times out */
        }
        off += used;
    }
    buf_fini(&pending);
}

/* ---- input ---- */

/* Whether node `id` is a member of the cluster as the current snapshot has
 * it, and has not left (a joining one is: it is admitted before it dials),
 * or is in the snapshot's ring: the claimant sends a new ring to every
 * member at once, so a joiner may coordinate with it, and dial us, before
 * gossip has told this node of it (about 100 ms under load; its requests
 * failed meanwhile). Without a snapshot (no membership yet) nobody is. */
static bool link_is_member(struct peerlink *pl, const char *id)
{
    struct node *n = pl->sh->node;
    if (!n->snapshots)
        return false;
    bool is_member = false, is_self = false;
    const struct snapshot *s = snapshot_read_begin(n->snapshots, pl->sh->id);
    for (uint32_t i = 0; s && i < s->n_members && !is_member && !is_self; i++) {
        bool is_it = memcmp(s->members[i].id, id, WIRE_ID_HEX) == 0;
        is_self = is_it && i == s->self;
        is_member = is_it && i != s->self && s->members[i].status != MEMBER_S_LEFT;
    }
    /* (one that left and joined again is in the ring before gossip says so) */
    if (s && !is_member && !is_self && s->ring && s->ring->epoch > 0) {
        char want[RING_ID_LEN + 1];
        memcpy(want, id, RING_ID_LEN);
        want[RING_ID_LEN] = '\0';
        is_member = ring_member_index(s->ring, want) != RING_NONE;
    }
    snapshot_read_end(n->snapshots, pl->sh->id);
    return is_member;
}

static void link_on_handshake(struct peerlink *pl, struct link *l, const struct wire_frame *f)
{
    enum wire_hs_status st = wire_hs_on_frame(&l->hs, f, &l->out);
    link_mark_dirty(pl, l);
    if (l->out.failed) {
        link_close(pl, l, "out of memory in the handshake");
        return;
    }
    /* The peer named itself (its HELLO, or its CHALLENGE): only members are
     * served. Without a cluster secret this trusts the id it claims. */
    if (st != WIRE_HS_FAILED && l->hs.peer_id[0] && !link_is_member(pl, l->hs.peer_id)) {
        char why[WIRE_ID_HEX + 48];
        snprintf(why, sizeof why, "node %s is not a member of this cluster", l->hs.peer_id);
        link_refuse(pl, l, WIRE_REFUSE_AUTH, why); /* our CHALLENGE or PROOF is not sent */
        return;
    }
    if (st == WIRE_HS_AGAIN)
        return;
    if (st == WIRE_HS_FAILED) {
        if (link_may_warn(pl))
            log_warn("peer link %s %s: handshake failed (%s%s: %s); closing it",
                     l->is_dialer ? "to" : "from",
                     l->is_dialer ? l->dest->id : l->hs.peer_id[0] ? l->hs.peer_id : "?",
                     l->hs.refused_by_peer ? "refused by the peer, " : "",
                     wire_refusal_text(l->hs.reason), l->hs.why);
        link_note_lost(pl, l);
        link_release_target(l, false, wire_refusal_text(l->hs.reason));
        if (l->hs.refused_by_peer)
            link_close(pl, l, "refused by the peer");
        else
            l->close_after_flush = true; /* our REFUSE goes first */
        return;
    }
    l->dec.version = l->hs.version;
    l->state = LINK_OPEN;
    link_end_half_open(pl, l);
    wire_writer_init(&l->w, &l->out, l->hs.version, l->hs.peer_max_frame);
    LINK_STAT_ADD(pl, links_up, 1);
    char addr[64];
    net_peer_name(l->fd, addr, sizeof addr);
    log_debug("peer link %s %s (%s) shard %u open (version %u)", l->is_dialer ? "to" : "from",
              l->hs.peer_id, addr, l->hs.peer_shard, l->hs.version);
    if (l->is_dialer)
        link_replay(pl, l);
}

/* The next PEERLINK_PREFETCH messages of a batch (or fewer, to its end or
 * to a message that breaks the protocol), each decoded once, with its
 * key's hash for a request (coord_on_request takes it) and where it
 * starts (a pause before it resumes there). */
struct link_ahead {
    struct wire_msg msg[PEERLINK_PREFETCH];
    uint64_t hash[PEERLINK_PREFETCH];
    const uint8_t *at[PEERLINK_PREFETCH];
    uint32_t n;
    enum wire_status st; /* what ended the read: OK (the array is full), END or BAD */
    const char *err;     /* BAD: why */
};

/* Reads the next messages into a, and overlaps the cache misses of their
 * requests' key lookups (replica GETs and SYNCs of keys this shard holds):
 * their home slots are asked for together, then the entries those hold,
 * so the batch waits for memory about once instead of twice per key; and
 * likewise the requests and operations the REPLYs name
 * (coord_prefetch_replies). Prefetches only where more than one follows
 * (alone, there is nothing to overlap). */
static void link_read_ahead(struct peerlink *pl, struct wire_cursor *c, struct link_ahead *a)
{
    struct table_probe probes[PEERLINK_PREFETCH];
    uint64_t replies[PEERLINK_PREFETCH];
    uint32_t nprobes = 0, nreplies = 0;
    a->n = 0;
    a->st = WIRE_OK;
    while (a->n < PEERLINK_PREFETCH) {
        const uint8_t *at = c->p;
        struct wire_msg *m = &a->msg[a->n];
        a->st = wire_next_msg(c, m, &a->err);
        if (a->st != WIRE_OK)
            break;
        a->at[a->n] = at;
        if (m->kind == WIRE_REQUEST) {
            a->hash[a->n] = keyhash(m->key.ptr, m->key.len);
            if (m->key.len > 0)
                probes[nprobes++] = (struct table_probe){m->key.ptr, m->key.len, a->hash[a->n]};
        } else if (m->kind == WIRE_REPLY) {
            replies[nreplies++] = m->id;
        }
        a->n++;
    }
    if (nprobes > 1)
        store_prefetch(pl->sh->store, probes, nprobes);
    if (nreplies > 1)
        coord_prefetch_replies(pl->sh, replies, nreplies);
}

/* Hands a batch's messages to the coordinator, from l->resume_at on (a
 * batch left part-way). False when the output reached PEERLINK_IN_PAUSE
 * before the batch ended: the rest waits (l->resume_at says where), so
 * one frame of small requests for large values cannot make its replies
 * grow without bound. */
static bool link_on_batch(struct peerlink *pl, struct link *l, const struct wire_frame *f)
{
    struct wire_cursor c;
    struct link_ahead ahead;
    wire_cursor_init(&c, &l->dec, f);
    c.p += l->resume_at;
    l->resume_at = 0;
    uint64_t handle = link_handle(l);
    for (;;) {
        link_read_ahead(pl, &c, &ahead);
        for (uint32_t i = 0; i < ahead.n; i++) {
            if (link_should_pause(l)) {
                l->resume_at = (size_t)(ahead.at[i] - f->body);
                return false;
            }
            LINK_STAT_ADD(pl, msgs_in, 1);
            if (ahead.msg[i].kind == WIRE_REQUEST)
                coord_on_request(pl->sh, handle, &ahead.msg[i], ahead.hash[i]);
            else {
                if (__builtin_expect(ahead.msg[i].status != WIRE_CODE_OK, 0))
                    coord_note_refusal(pl->sh, l->is_dialer ? l->dest->id : l->hs.peer_id,
                                       &ahead.msg[i]);
                coord_on_reply(pl->sh, &ahead.msg[i]);
            }
            if (l->closing || l->close_after_flush)
                return true;
        }
        if (ahead.st == WIRE_END)
            return true;
        if (ahead.st != WIRE_OK) {
            link_refuse(pl, l, WIRE_REFUSE_PROTOCOL, ahead.err);
            return true;
        }
    }
}

/* Handles the whole frames at data[0..len); returns the bytes used. */
static size_t link_parse(struct peerlink *pl, struct link *l, const uint8_t *data, size_t len)
{
    size_t off = 0;
    while (off < len && !l->closing && !l->close_after_flush) {
        if (link_should_pause(l)) {
            link_pause(pl, l);
            break;
        }
        struct wire_frame f;
        size_t used, need;
        const char *err;
        enum wire_status st = wire_decode(&l->dec, data + off, len - off, &f, &used, &need, &err);
        if (st == WIRE_MORE) {
            l->need = need;
            break;
        }
        if (st != WIRE_OK) {
            link_refuse(pl, l, WIRE_REFUSE_PROTOCOL, err);
            return len;
        }
        l->need = 0;
        if (f.type == WIRE_REFUSE && l->dec.version != 0) {
            link_note_lost(pl, l);
            link_close(pl, l, "refused by the peer");
        } else if (l->dec.version == 0) {
            link_on_handshake(pl, l, &f);
        } else if (!link_on_batch(pl, l, &f)) {
            link_pause(pl, l);
            break; /* the frame stays whole: decoded again on resume */
        }
        off += used;
    }
    return off;
}

static void link_take(struct peerlink *pl, struct link *l, const uint8_t *data, size_t len)
{
    LINK_STAT_ADD(pl, bytes_in, len);
    if (l->is_dialer)
        l->dest->waiting_since_ms = 0; /* the peer answers (peerlink_is_silent) */
    if (l->in.len == 0 && !l->input_paused) {
        size_t used = link_parse(pl, l, data, len);
        if (used < len && !l->closing && !l->close_after_flush)
            buf_append(&l->in, data + used, len - used);
    } else {
        buf_append(&l->in, data, len);
        if (l->in.len >= l->need && !l->in.failed && !l->input_paused)
            buf_consume(&l->in, link_parse(pl, l, (const uint8_t *)l->in.data, l->in.len));
    }
    if (l->in.failed)
        link_close(pl, l, "out of memory for its input");
    else if (l->in.len == 0 && l->in.cap > PEERLINK_KEEP_BUF)
        buf_fini(&l->in);
}

/* ---- completions ---- */

static void link_on_recv(struct peerlink *pl, struct link *l, int32_t res, uint32_t flags)
{
    if (!(flags & IORING_CQE_F_MORE)) {
        l->recv_armed = false;
        l->recv_cancelling = false;
        link_mark_dirty(pl, l); /* re-armed by the flush if the link goes on */
    }
    if (flags & IORING_CQE_F_BUFFER) {
        unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
        if (res > 0 && !l->closing && !l->close_after_flush)
            link_take(pl, l, (const uint8_t *)shard_recv_buf(pl->sh, bid), (size_t)res);
        conn_recv_buf_return(&pl->sh->env, bid);
        return;
    }
    if (res == -ENOBUFS || res == -ECANCELED)
        return; /* out of shared buffers this turn, or paused: re-armed by the flush */
    if (res <= 0) {
        link_note_lost(pl, l);
        link_close(pl, l, res == 0 ? "closed by the peer" : strerror(-res));
    }
}

static void link_on_send(struct peerlink *pl, struct link *l, int32_t res)
{
    l->send_inflight = false;
    if (res < 0) {
        link_note_lost(pl, l);
        link_close(pl, l, strerror(-res));
        return;
    }
    LINK_STAT_ADD(pl, bytes_out, (uint64_t)res);
    l->sent += (size_t)res;
    if (l->input_paused && !l->closing && !link_should_pause(l))
        link_resume(pl, l);
    if (l->sent < l->sending.len && !l->closing) {
        link_submit_send(pl, l); /* the kernel took part of it */
        return;
    }
    l->sent = 0;
    if (l->sending.cap > PEERLINK_KEEP_BUF)
        buf_fini(&l->sending);
    else
        buf_clear(&l->sending);
    link_mark_dirty(pl, l);
}

static void link_on_connect(struct peerlink *pl, struct link *l, int32_t res)
{
    l->connect_inflight = false;
    if (l->closing)
        return;
    if (res < 0) {
        link_note_lost(pl, l);
        link_close(pl, l, strerror(-res));
        return;
    }
    l->state = LINK_HANDSHAKE;
    wire_hs_start(&l->hs, &l->out);
    link_mark_dirty(pl, l);
}

/* A socket the admin thread handed over: the responder's handshake. */
static void link_accept(struct peerlink *pl, int fd)
{
    if (pl->half_open >= PEERLINK_HALF_OPEN_MAX) {
        LINK_STAT_ADD(pl, handshake_failures, 1);
        if (link_may_warn(pl))
            log_warn("peer links: %u connections in their handshake already; closing a new one",
                     pl->half_open);
        close(fd);
        return;
    }
    struct wire_hs_config hc;
    link_hs_config(pl, &hc);
    struct link *l = NULL;
    if (getrandom(hc.nonce, sizeof hc.nonce, 0) != (ssize_t)sizeof hc.nonce ||
        !(l = link_new(pl, fd))) {
        close(fd);
        return;
    }
    link_tune(fd);
    l->state = LINK_HANDSHAKE;
    if (wire_hs_init(&l->hs, WIRE_RESPONDER, &hc) != 0) {
        link_free(pl, l);
        return;
    }
    l->is_half_open = true;
    pl->half_open++;
    link_mark_dirty(pl, l);
}

static void link_take_adopted(struct peerlink *pl)
{
    int fds[PEERLINK_ADOPT_MAX];
    pthread_mutex_lock(&pl->adopt_lock);
    uint32_t n = pl->nadopted;
    memcpy(fds, pl->adopted, n * sizeof *fds);
    pl->nadopted = 0;
    pthread_mutex_unlock(&pl->adopt_lock);
    for (uint32_t i = 0; i < n; i++)
        link_accept(pl, fds[i]);
}

static void link_arm_wake(struct peerlink *pl)
{
    struct io_uring_sqe *sqe = shard_sqe(pl->sh);
    io_uring_prep_read(sqe, pl->wake_fd, &pl->wake_value, sizeof pl->wake_value, 0);
    io_uring_sqe_set_data64(sqe, net_ud(SHARD_OP_LINK_WAKE, 0, 0));
    pl->wake_armed = true;
}

void peerlink_on_cqe(struct shard *sh, uint64_t user_data, int32_t res, uint32_t flags)
{
    struct peerlink *pl = sh->link;
    unsigned op = net_ud_op(user_data);
    if (op == SHARD_OP_LINK_WAKE) {
        pl->wake_armed = false;
        link_take_adopted(pl);
        return;
    }
    struct link *l = link_of(pl, (uint64_t)net_ud_slot(user_data) << 32 | net_ud_gen(user_data));
    if (!l) {
        if (op == SHARD_OP_LINK_RECV && (flags & IORING_CQE_F_BUFFER))
            conn_recv_buf_return(&sh->env, flags >> IORING_CQE_BUFFER_SHIFT);
        return;
    }
    if (op == SHARD_OP_LINK_RECV)
        link_on_recv(pl, l, res, flags);
    else if (op == SHARD_OP_LINK_SEND)
        link_on_send(pl, l, res);
    else if (op == SHARD_OP_LINK_CONNECT)
        link_on_connect(pl, l, res);
    if (l->closing)
        link_mark_dirty(pl, l); /* freed by the flush once done */
}

/* ---- the contract ---- */

int peerlink_request(struct shard *sh, const char *node_id, const char *cluster_addr,
                     const struct wire_msg *m)
{
    struct peerlink *pl = sh->link;
    if (m->kind != WIRE_REQUEST || wire_msg_size(m) == 0 || !node_id || !cluster_addr)
        return -EINVAL;
    struct dest *d;
    int rc = dest_get(pl, node_id, cluster_addr, &d);
    if (rc != 0)
        return rc;
    uint16_t shard = d->shards ? (uint16_t)(m->partition % d->shards) : 0;
    rc = target_send(pl, d, shard, m);
    if (rc == 0 && !d->waiting_since_ms)
        d->waiting_since_ms = req_now_ms();
    return rc;
}

void peerlink_retry_now(struct shard *sh, const char *node_id)
{
    struct dest *d = dest_find(sh->link, node_id);
    if (!d)
        return;
    for (uint32_t k = 0; k < d->ntargets; k++)
        d->targets[k].retry_at_ms = 0;
}

bool peerlink_is_silent(struct shard *sh, const char *node_id, int64_t now_ms)
{
    const struct dest *d = dest_find(sh->link, node_id);
    return d && d->waiting_since_ms && now_ms - d->waiting_since_ms >= PEERLINK_SILENT_MS;
}

int peerlink_reply(struct shard *sh, uint64_t link, const struct wire_msg *m)
{
    struct peerlink *pl = sh->link;
    if (m->kind != WIRE_REPLY)
        return -EINVAL;
    struct link *l = link_of(pl, link);
    if (!l || l->closing || l->close_after_flush || l->state != LINK_OPEN)
        return -ENOENT;
    return link_write(pl, l, m);
}

void peerlink_turn(struct shard *sh, int64_t now_ms)
{
    struct peerlink *pl = sh->link;
    for (uint32_t s = 0; s < pl->cap; s++) {
        struct link *l = pl->links[s];
        if (l && !l->closing && l->state != LINK_OPEN && now_ms > l->deadline_ms) {
            link_note_lost(pl, l);
            link_release_target(l, false, "no handshake in time");
            if (!l->is_dialer && link_may_warn(pl))
                log_warn("peer link from %s: no handshake within %d ms; closing it",
                         l->hs.peer_id[0] ? l->hs.peer_id : "?", PEERLINK_HANDSHAKE_MS);
            link_close(pl, l, "no handshake in time");
        }
    }
}

void peerlink_flush(struct shard *sh)
{
    struct peerlink *pl = sh->link;
    if (!pl->wake_armed)
        link_arm_wake(pl);
    struct link *l;
    while ((l = pl->dirty)) {
        pl->dirty = l->next_dirty;
        l->is_dirty = false;
        if (l->closing) {
            if (link_is_done(l))
                link_free(pl, l);
            continue;
        }
        link_flush_one(pl, l);
    }
}

void peerlink_adopt(struct node *n, uint32_t to_shard, int fd)
{
    struct peerlink *pl = to_shard < n->nshards && n->shards[to_shard] ? n->shards[to_shard]->link
                                                                       : NULL;
    bool taken = false;
    if (pl) {
        pthread_mutex_lock(&pl->adopt_lock);
        if (pl->nadopted < PEERLINK_ADOPT_MAX) {
            pl->adopted[pl->nadopted++] = fd;
            taken = true;
        }
        pthread_mutex_unlock(&pl->adopt_lock);
    }
    if (!taken) {
        close(fd);
        return;
    }
    uint64_t one = 1;
    if (write(pl->wake_fd, &one, sizeof one) != sizeof one)
        log_debug("peer link: cannot wake shard %u: %s", to_shard, strerror(errno));
}

void peerlink_read_stats(const struct shard *sh, struct peerlink_stats *out)
{
    const struct peerlink_stats *s = &sh->link->stats;
    out->links_up = __atomic_load_n(&s->links_up, __ATOMIC_RELAXED);
    out->dials = __atomic_load_n(&s->dials, __ATOMIC_RELAXED);
    out->handshake_failures = __atomic_load_n(&s->handshake_failures, __ATOMIC_RELAXED);
    out->msgs_out = __atomic_load_n(&s->msgs_out, __ATOMIC_RELAXED);
    out->msgs_in = __atomic_load_n(&s->msgs_in, __ATOMIC_RELAXED);
    out->bytes_out = __atomic_load_n(&s->bytes_out, __ATOMIC_RELAXED);
    out->bytes_in = __atomic_load_n(&s->bytes_in, __ATOMIC_RELAXED);
}

/* ---- life cycle ---- */

/* The node's bind address with port 0, for dialling sockets to bind (so a
 * peer sees our own address); none for a wildcard. */
static void link_local_addr(struct peerlink *pl, const char *bind_host)
{
    char addr[300];
    snprintf(addr, sizeof addr, strchr(bind_host, ':') ? "[%s]:0" : "%s:0", bind_host);
    if (net_parse_addr(addr, false, &pl->local, &pl->local_len) != 0) {
        pl->local_len = 0;
        return;
    }
    bool wildcard = pl->local.ss_family == AF_INET6
                        ? IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&pl->local)->sin6_addr)
                        : ((struct sockaddr_in *)&pl->local)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (wildcard)
        pl->local_len = 0;
}

int peerlink_init(struct shard *sh)
{
    const struct node *n = sh->node;
    const struct cfg *cfg = n->cfg;
    struct peerlink *pl = mi_zalloc_aligned(sizeof *pl, 64);
    if (!pl)
        return -ENOMEM;
    pl->sh = sh;
    pl->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (pl->wake_fd < 0) {
        int rc = -errno;
        mi_free(pl);
        return rc;
    }
    pthread_mutex_init(&pl->adopt_lock, NULL);
    const char *id = n->admin ? admin_node_id(n->admin) : NULL;
    snprintf(pl->self_id, sizeof pl->self_id, "%s",
             id ? id : "0000000000000000000000000000000000000000");
    size_t key_len = 0;
    const uint8_t *key = n->admin ? admin_cluster_key(n->admin, &key_len) : NULL;
    if (key && key_len <= sizeof pl->key) {
        memcpy(pl->key, key, key_len);
        pl->key_len = key_len;
    }
    wire_limits_default(&pl->lim);
    pl->lim.max_key = (uint32_t)cfg->max_key_size;
    pl->lim.max_value = (uint32_t)cfg->proto_max_bulk_len;
    pl->max_frame = pl->lim.max_frame;
    link_local_addr(pl, cfg->bind);
    sh->link = pl;
    return 0;
}

void peerlink_fini(struct shard *sh)
{
    struct peerlink *pl = sh->link;
    if (!pl)
        return;
    for (uint32_t s = 0; s < pl->cap; s++)
        if (pl->links[s])
            link_free(pl, pl->links[s]); /* the ring is gone: nothing is in flight */
    for (uint32_t i = 0; i < pl->nadopted; i++)
        close(pl->adopted[i]);
    for (uint32_t i = 0; i < pl->dests_cap; i++)
        if (pl->dests[i]) {
            mi_free(pl->dests[i]->targets);
            mi_free(pl->dests[i]);
        }
    mi_free(pl->dests);
    mi_free(pl->links);
    mi_free(pl->gens);
    mi_free(pl->free_slots);
    pthread_mutex_destroy(&pl->adopt_lock);
    close(pl->wake_fd);
    memset(pl->key, 0, sizeof pl->key);
    mi_free(pl);
    sh->link = NULL;
}
