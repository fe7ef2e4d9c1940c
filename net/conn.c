/* conn.c: client connections (see conn.h).
 * Input: one multishot receive per connection stays armed in the kernel and
 * fills buffers from the owner's shared pool (a provided-buffer ring), so an
 * idle connection holds no receive buffer and a busy one costs no re-arming.
 * Every whole request in a buffer is parsed and handed to env->on_resp /
 * env->on_mc in place (one direct call per request); only a partial request
 * is copied into `in`. Input stops (input_paused, and the receive is
 * cancelled) while too many replies wait, too much output is queued or too
 * much work is in flight (conn_charge), or, for a client that writes, while
 * the owner holds writers (env->hold_writers); conn_flush() resumes it once
 * that drains.
 * Output: replies are appended to `out`; at the end of the loop turn
 * conn_flush() swaps `out` and `sending` and submits one send of everything
 * gathered, so a pipeline of N requests costs one send.
 * Order: see conn.h (reply slots). A reply known at once behind an
 * outstanding one is written into a ready slot of its own, so order never
 * depends on which reply is filled first.
 * Closing: shutdown() wakes a receive still in the kernel; the owner frees
 * the connection when no receive or send is in flight; slots still
 * outstanding are abandoned (env->abandon) so that nothing fills them later.
 * Runs on the owning thread only. */
#include "conn.h"

#include <errno.h>
#include <mimalloc.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

#define CONN_MAX_PENDING 4096         /* waiting replies before input pauses */
#define CONN_MAX_OUT (16u << 20)      /* queued output before input pauses */
#define CONN_INITIAL_ARGS 16
#define CONN_PREFETCH 16              /* pipelined requests whose keys are peeked at once */

static _Thread_local struct buf conn_discard; /* replies that cannot be queued (OOM) */

/* A counter other threads read: relaxed atomic store by its one writer. */
static inline void conn_count(uint64_t *counter, uint64_t n)
{
    __atomic_store_n(counter, *counter + n, __ATOMIC_RELAXED);
}

void conn_recv_buf_return(struct conn_env *env, unsigned bid)
{
    io_uring_buf_ring_add(env->recv_ring, env->recv_bufs + (size_t)bid * env->recv_buf_size,
                          env->recv_buf_size, (unsigned short)bid,
                          io_uring_buf_ring_mask(env->recv_nbufs), 0);
    io_uring_buf_ring_advance(env->recv_ring, 1);
}

struct conn *conn_create(struct conn_env *env, int fd, enum conn_kind kind, uint32_t slot,
                         uint32_t gen, uint64_t id)
{
    struct conn *c = mi_zalloc(sizeof *c);
    if (!c)
        return NULL;
    c->env = env;
    c->fd = fd;
    c->slot = slot;
    c->gen = gen;
    c->kind = kind;
    c->id = id;
    c->resp_version = 2;
    c->multi_slot = -1;
    buf_init(&c->in);
    buf_init(&c->out);
    buf_init(&c->sending);
    c->argv = mi_malloc(CONN_INITIAL_ARGS * sizeof *c->argv);
    c->argv_cap = CONN_INITIAL_ARGS;
    if (!c->argv) {
        mi_free(c);
        return NULL;
    }
    net_peer_name(fd, c->addr, sizeof c->addr);
    net_local_name(fd, c->laddr, sizeof c->laddr);
    return c;
}

/* A slot leaves its connection: into the owner's pool (LIFO: the next
 * reserve takes it while its memory is still in cache, with its small
 * reply buffer), or freed when the pool is full. */
static void conn_slot_free(struct conn_env *env, struct conn_slot *s)
{
    if (env->slot_pool_len < CONN_SLOT_POOL_MAX) {
        if (s->body.cap > CONN_SLOT_KEEP_BODY)
            buf_fini(&s->body);
        else
            buf_clear(&s->body);
        s->next = env->slot_pool;
        env->slot_pool = s;
        env->slot_pool_len++;
        return;
    }
    buf_fini(&s->body);
    mi_free(s);
}

void conn_env_fini(struct conn_env *env)
{
    while (env->slot_pool) {
        struct conn_slot *s = env->slot_pool;
        env->slot_pool = s->next;
        buf_fini(&s->body);
        mi_free(s);
    }
    env->slot_pool_len = 0;
}

void conn_destroy(struct conn *c)
{
    while (c->head) {
        struct conn_slot *s = c->head;
        c->head = s->next;
        if (!s->is_ready)
            c->env->abandon(c->env->owner, s->ticket);
        conn_slot_free(c->env, s);
    }
    if (c->fd >= 0)
        close(c->fd);
    buf_fini(&c->in);
    buf_fini(&c->out);
    buf_fini(&c->sending);
    buf_fini(&c->multi_queue);
    buf_fini(&c->multi_watch);
    mi_free(c->argv);
    mi_free(c->scratch);
    mi_free(c->mc_keys);
    mi_free(c->name);
    mi_free(c->order);
    mi_free(c);
}

void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    shutdown(c->fd, SHUT_RDWR); /* completes a receive still waiting in the kernel */
}

bool conn_is_done(const struct conn *c)
{
    return c->closing && !c->recv_armed && !c->send_inflight;
}

struct conn_slot *conn_slot_reserve(struct conn *c, uint64_t ticket)
{
    struct conn_env *env = c->env;
    struct conn_slot *s = env->slot_pool;
    if (s) { /* its buffer kept, emptied again (no byte of an earlier reply) */
        env->slot_pool = s->next;
        env->slot_pool_len--;
        buf_clear(&s->body);
    } else if ((s = mi_malloc(sizeof *s))) {
        buf_init(&s->body);
    } else {
        return NULL;
    }
    s->next = NULL;
    s->is_ready = false;
    s->stats = 0;
    s->ticket = ticket;
    if (c->tail)
        c->tail->next = s;
    else
        c->head = s;
    c->tail = s;
    c->nslots++;
    return s;
}

struct buf *conn_reply_buf(struct conn *c)
{
    if (!c->head) {
        conn_mark_dirty(c);
        return &c->out;
    }
    struct conn_slot *s = conn_slot_reserve(c, 0);
    if (!s) {
        buf_clear(&conn_discard);
        c->close_after_flush = true;
        return &conn_discard;
    }
    s->is_ready = true;
    return &s->body;
}

void conn_slot_ready(struct conn *c, struct conn_slot *s)
{
    s->is_ready = true;
    while (c->head && c->head->is_ready) {
        struct conn_slot *h = c->head;
        if (c->out.len == 0 && !c->out.failed && h->body.cap > c->out.cap) {
            struct buf t = c->out; /* take the bytes rather than copy them */
            c->out = h->body;
            h->body = t;
        } else {
            buf_append(&c->out, h->body.data, h->body.len);
            c->out.failed |= h->body.failed;
        }
        c->head = h->next;
        if (!c->head)
            c->tail = NULL;
        c->nslots--;
        conn_slot_free(c->env, h);
    }
    conn_mark_dirty(c);
}

static bool conn_should_pause(const struct conn *c)
{
    return c->input_held || c->work >= CONN_MAX_WORK || c->nslots >= CONN_MAX_PENDING ||
           c->out.len >= CONN_MAX_OUT ||
           (c->is_writer && c->env->hold_writers &&
            __atomic_load_n(c->env->hold_writers, __ATOMIC_RELAXED) > 0);
}

void conn_charge(struct conn *c, uint64_t work)
{
    c->work += work;
}

void conn_hold_input(struct conn *c)
{
    c->input_held = true;
}

void conn_release_input(struct conn *c)
{
    if (!c->input_held)
        return;
    c->input_held = false;
    conn_mark_dirty(c); /* conn_flush() reads on */
}

void conn_refund(struct conn *c, uint64_t work)
{
    c->work -= work < c->work ? work : c->work;
    conn_mark_dirty(c); /* conn_flush() resumes the input */
}

static void conn_protocol_error(struct conn *c, const char *err)
{
    struct buf *out = conn_reply_buf(c);
    if (c->kind == CONN_RESP)
        resp_write_error(out, err);
    else
        buf_append_str(out, err);
    c->close_after_flush = true;
}

/* Parses and dispatches one RESP request at data[0..len). Returns bytes
 * consumed, 0 when the request is not whole yet. */
static size_t conn_next_resp(struct conn *c, const char *data, size_t len)
{
    const struct resp_limits *lim = &c->env->resp_limits;
    if (data[0] != '*' && !c->scratch && !(c->scratch = mi_malloc(CONN_INLINE_MAX))) {
        conn_protocol_error(c, "OOM out of memory");
        return len;
    }
    for (;;) {
        uint32_t argc = 0;
        size_t consumed = 0, need = 0;
        const char *err = NULL;
        enum resp_status st =
            resp_parse(lim, &c->parse.resp, data, len, c->argv, c->argv_cap, &argc, c->scratch,
                       c->scratch ? CONN_INLINE_MAX : 0, &consumed, &need, &err);
        uint64_t examined = c->parse.resp.examined;
        c->parse.resp.examined = 0;
        if (st != RESP_OK)
            conn_count(c->env->examined_bytes, examined);
        switch (st) {
        case RESP_OK:
            if (argc > 0)
                c->env->on_resp(c, c->argv, argc);
            if (c->input_held) /* read again later, and counted then */
                return 0;
            conn_count(c->env->examined_bytes, examined);
            return consumed;
        case RESP_MORE:
            return 0;
        case RESP_NEED_ARGS: {
            struct resp_arg *grown = mi_realloc(c->argv, (size_t)argc * sizeof *grown);
            if (!grown) {
                conn_protocol_error(c, "OOM out of memory");
                return len;
            }
            c->argv = grown;
            c->argv_cap = argc;
            continue;
        }
        case RESP_BAD:
            conn_protocol_error(c, err);
            return len;
        }
    }
}

static size_t conn_next_mc(struct conn *c, const char *data, size_t len)
{
    const struct mc_limits *lim = &c->env->mc_limits;
    if (!c->mc_keys) {
        c->mc_keys = mi_malloc(CONN_INITIAL_ARGS * sizeof *c->mc_keys);
        if (!c->mc_keys) {
            conn_protocol_error(c, "SERVER_ERROR out of memory\r\n");
            return len;
        }
        c->mc_keys_cap = CONN_INITIAL_ARGS;
    }
    for (;;) {
        struct mc_request req = {.noreply = false};
        size_t consumed = 0, need = 0;
        const char *err = NULL;
        enum mc_status st = mc_parse(lim, &c->parse.mc, data, len, &req, c->mc_keys,
                                     c->mc_keys_cap, &consumed, &need, &err);
        uint64_t examined = c->parse.mc.examined;
        c->parse.mc.examined = 0;
        if (st != MC_OK)
            conn_count(c->env->examined_bytes, examined);
        switch (st) {
        case MC_OK:
            c->env->on_mc(c, &req);
            if (c->input_held) /* read again later, and counted then */
                return 0;
            conn_count(c->env->examined_bytes, examined);
            return consumed;
        case MC_MORE:
            return 0;
        case MC_NEED_KEYS: {
            struct mc_key *grown = mi_realloc(c->mc_keys, (size_t)req.nkeys * sizeof *grown);
            if (!grown) {
                conn_protocol_error(c, "SERVER_ERROR out of memory\r\n");
                return len;
            }
            c->mc_keys = grown;
            c->mc_keys_cap = req.nkeys;
            continue;
        }
        case MC_ERROR:
            if (req.too_large) { /* the owner drops the key's value and answers */
                c->env->on_mc(c, &req);
                if (c->input_held)
                    return 0; /* read again later, data block and all */
            } else if (!req.noreply) { /* memcached says nothing of a noreply one's error */
                buf_append_str(conn_reply_buf(c), err);
            }
            if (consumed > len) {
                c->swallow = consumed - len;
                return len;
            }
            return consumed;
        case MC_BAD:
            conn_protocol_error(c, err);
            return len;
        case MC_BINARY:
            mc_write_binary_refusal(conn_reply_buf(c), data);
            c->close_after_flush = true;
            return len;
        }
    }
}

/* Stops taking input: too many replies wait or too much output is queued.
 * The multishot receive is cancelled so that the kernel holds further bytes
 * (TCP flow control reaches the client); conn_flush() resumes. */
static void conn_pause(struct conn *c)
{
    c->input_paused = true;
    if (!c->recv_armed || c->recv_cancelling)
        return;
    struct io_uring_sqe *sqe = c->env->get_sqe(c->env->owner);
    io_uring_prep_cancel64(sqe, net_ud(NET_OP_RECV, c->slot, c->gen), 0);
    io_uring_sqe_set_data64(sqe, net_ud(NET_OP_IGNORE, 0, 0));
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    c->recv_cancelling = true;
}

/* Hands the keys of up to CONN_PREFETCH pipelined RESP requests at
 * data[0..len) to env->prefetch_keys (resp_peek_keys: a hint, parsed for
 * real afterwards). */
static void conn_prefetch_resp(struct conn *c, const char *data, size_t len)
{
    struct resp_arg keys[CONN_PREFETCH];
    uint32_t n = resp_peek_keys(data, len, keys, CONN_PREFETCH);
    if (n > 1)
        c->env->prefetch_keys(c->env->owner, keys, n);
}

/* Serves every whole request in data[0..len), as far as the limits allow.
 * Returns the bytes consumed. */
static size_t conn_serve(struct conn *c, const char *data, size_t len)
{
    size_t off = 0;
    bool peek = c->kind == CONN_RESP && c->env->prefetch_keys;
    for (uint32_t served = 0; off < len && !c->closing && !c->close_after_flush; served++) {
        if (peek && served % CONN_PREFETCH == 0 && !c->swallow)
            conn_prefetch_resp(c, data + off, len - off);
        if (conn_should_pause(c)) {
            conn_pause(c);
            break;
        }
        if (c->swallow) {
            size_t n = len - off < c->swallow ? len - off : c->swallow;
            c->swallow -= n;
            off += n;
            continue;
        }
        c->unparsed = len - off;
        size_t used = c->kind == CONN_RESP ? conn_next_resp(c, data + off, len - off)
                                           : conn_next_mc(c, data + off, len - off);
        if (used == 0) {
            if (c->input_held)
                conn_pause(c);
            break;
        }
        off += used;
    }
    c->unparsed = 0;
    return off;
}

static void conn_process_input(struct conn *c)
{
    buf_consume(&c->in, conn_serve(c, c->in.data, c->in.len));
}

static void conn_arm_recv(struct conn *c)
{
    if (c->recv_armed || c->closing || c->input_paused || c->close_after_flush)
        return;
    struct io_uring_sqe *sqe = c->env->get_sqe(c->env->owner);
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = c->env->recv_group;
    io_uring_sqe_set_data64(sqe, net_ud(NET_OP_RECV, c->slot, c->gen));
    c->recv_armed = true;
}

void conn_start(struct conn *c) { conn_arm_recv(c); }

/* Bytes arrived in a shared receive buffer. They are served straight from it
 * when nothing is left over from before; only a partial request is copied
 * into `in`. The buffer goes back to the kernel before this returns. */
static void conn_take_bytes(struct conn *c, const char *data, size_t len)
{
    conn_count(c->env->input_bytes, len);
    c->was_active = true;
    if (c->in.len == 0 && !c->input_paused) {
        size_t used = conn_serve(c, data, len);
        buf_append(&c->in, data + used, len - used);
    } else {
        buf_append(&c->in, data, len);
        if (!c->input_paused)
            conn_process_input(c);
    }
    if (c->in.failed) {
        conn_close(c);
    } else if (c->in.len > c->env->query_buffer_limit) {
        buf_clear(&c->in);
        memset(&c->parse, 0, sizeof c->parse); /* its partial request is gone */
        conn_protocol_error(c, c->kind == CONN_RESP ? "ERR client query buffer limit reached"
                                                    : "SERVER_ERROR query too large\r\n");
    }
}

void conn_on_recv(struct conn *c, int res, unsigned flags)
{
    if (!(flags & IORING_CQE_F_MORE)) {
        c->recv_armed = false;
        c->recv_cancelling = false;
        conn_mark_dirty(c); /* conn_flush() re-arms it if input goes on */
    }
    if (flags & IORING_CQE_F_BUFFER) {
        unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
        if (res > 0 && !c->closing)
            conn_take_bytes(c, c->env->recv_bufs + (size_t)bid * c->env->recv_buf_size,
                            (size_t)res);
        conn_recv_buf_return(c->env, bid);
        return;
    }
    if (res == -ENOBUFS || res == -ECANCELED)
        return; /* out of shared buffers this turn, or paused: re-armed later */
    if (res <= 0)
        conn_close(c);
}

static void conn_submit_send(struct conn *c)
{
    struct io_uring_sqe *sqe = c->env->get_sqe(c->env->owner);
    io_uring_prep_send(sqe, c->fd, c->sending.data + c->sent, c->sending.len - c->sent,
                       MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, net_ud(NET_OP_SEND, c->slot, c->gen));
    c->send_inflight = true;
}

void conn_on_send(struct conn *c, int res)
{
    c->send_inflight = false;
    if (res < 0) {
        conn_close(c);
        return;
    }
    conn_count(c->env->output_bytes, (uint64_t)res);
    c->was_active = true;
    c->sent += (size_t)res;
    if (c->sent < c->sending.len && !c->closing) {
        conn_submit_send(c);
        return;
    }
    c->sent = 0;
    if (c->sending.cap > CONN_MAX_OUT)
        buf_fini(&c->sending);
    else
        buf_clear(&c->sending);
    conn_mark_dirty(c);
}

void conn_flush(struct conn *c)
{
    if (c->closing)
        return;
    if (c->input_paused && !conn_should_pause(c)) {
        c->input_paused = false;
        conn_process_input(c);
    }
    conn_arm_recv(c);
    if (c->send_inflight)
        return;
    if (c->out.len > 0) {
        if (c->out.failed) { /* a reply ran out of memory half-way: framing is lost */
            conn_close(c);
            return;
        }
        struct buf t = c->sending;
        c->sending = c->out;
        c->out = t;
        c->sent = 0;
        conn_submit_send(c);
        return;
    }
    if (c->close_after_flush && c->nslots == 0)
        conn_close(c);
}

int64_t conn_idle_ms(struct conn *c, int64_t now_ms)
{
    bool is_waiting = c->nslots > 0 || c->send_inflight || c->input_paused || c->out.len > 0;
    if (c->was_active || is_waiting) {
        c->was_active = false;
        c->last_ms = now_ms;
        return 0;
    }
    return now_ms - c->last_ms;
}

/* Frees an empty buffer; one holding bytes (a partial request) is kept. */
static void conn_free_if_empty(struct buf *b)
{
    if (b->len == 0)
        buf_fini(b);
}

void conn_shrink_idle(struct conn *c)
{
    conn_free_if_empty(&c->in);
    conn_free_if_empty(&c->out);
    conn_free_if_empty(&c->sending);
    mi_free(c->scratch); /* allocated again by the next inline command */
    c->scratch = NULL;
    if (c->in.len == 0 && c->argv_cap > CONN_INITIAL_ARGS) {
        struct resp_arg *small = mi_realloc(c->argv, CONN_INITIAL_ARGS * sizeof *small);
        if (small) {
            c->argv = small;
            c->argv_cap = CONN_INITIAL_ARGS;
        }
    }
    if (c->mc_keys_cap > CONN_INITIAL_ARGS) {
        mi_free(c->mc_keys); /* allocated again by the next memcached request */
        c->mc_keys = NULL;
        c->mc_keys_cap = 0;
    }
}
