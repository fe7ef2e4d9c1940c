/* peer.c: the gossip transport (see peer.h).
 * Sockets: one UDP socket and one TCP listener, both bound to
 * bind:cluster-port, and up to PEER_CONNS_MAX stream connections, all
 * non-blocking in one epoll fd. Datagrams go out of the UDP socket itself,
 * so that their source is the node's cluster address (replies to it reach
 * the node); connections to peers bind the node's address before connecting.
 * A stream frame goes on any open connection whose peer has the frame's
 * address (so the answer to a frame that came over a connection, addressed
 * by member.c to where it came from, goes back on it), else on a new
 * connection to that address. A connection idle PEER_IDLE_MS is closed; a
 * frame that is not ours closes its connection (the stream is lost).
 * Authentication (cluster-secret set): member.c leaves GOSSIP_MAC_LEN zero
 * bytes after each frame; the sender writes there its wall-clock time in ms
 * (8 bytes, little-endian) and then HMAC-SHA256(secret, header, body, time)
 * cut to its first 24 bytes (OpenSSL's HMAC()). The receiver drops, before
 * member_on_message() sees it, a frame without the MAC flag, with a wrong
 * MAC, with a time more than PEER_WINDOW_MS from its own clock, or with a
 * MAC it accepted before within that window (a replay cache of
 * PEER_REPLAY_SLOTS entries keyed by the MAC's first 8 bytes; when a probe
 * run of it is full of fresh entries the oldest is forgotten, so a replay
 * passes only after thousands of frames in the window). The secret never
 * travels. This needs the nodes' clocks within PEER_WINDOW_MS of each other
 * (NTP); a per-peer challenge-response handshake would not, and would also
 * bind a frame to its receiver (today a frame copied to another member of
 * the same cluster within the window is accepted there once).
 * A node without a secret drops frames that carry a MAC, so that a cluster
 * with a secret and a node without one stay apart both ways. */
#include "peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "log.h"

#define PEER_CONNS_MAX 1024
#define PEER_IDLE_MS 10000
#define PEER_WINDOW_MS 30000
#define PEER_REPLAY_SLOTS 16384 /* a power of two */
#define PEER_REPLAY_PROBE 8
#define PEER_TAG_LEN 24         /* HMAC bytes kept after the 8-byte time */
#define PEER_SECRET_MAX 256
#define PEER_DGRAM_MAX 65536
#define PEER_FRAME_MAX (GOSSIP_HEADER_LEN + GOSSIP_BODY_MAX + GOSSIP_MAC_LEN)
#define PEER_WBUF_MAX (32u << 20) /* queued bytes per connection at most */

struct peer_conn {
    int fd;
    char addr[GOSSIP_ADDR_MAX + 1];
    uint8_t *rbuf, *wbuf;
    size_t rlen, rcap, wlen, woff, wcap;
    uint64_t last_ms;
    uint32_t events; /* registered epoll events */
    bool broken;     /* a write failed: closed by peer_run()'s sweep */
};

struct peer_replay {
    uint64_t key;
    uint64_t time_ms;
};

struct peer_net {
    int ep, udp, lsn;
    struct sockaddr_storage local; /* bind address, port 0: outgoing connections */
    socklen_t local_len;
    uint8_t secret[PEER_SECRET_MAX];
    size_t secret_len;
    bool mac;
    struct peer_conn *conns[PEER_CONNS_MAX];
    uint32_t n_conns;
    uint8_t *dgram;   /* receive buffer */
    uint8_t *scratch; /* a frame being signed */
    size_t scratch_cap;
    struct peer_replay *replay;
    struct peer_stats stats;
};

/* ---- addresses ---- */

static void peer_format(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
        port = ntohs(s6->sin6_port);
        snprintf(out, cap, "[%s]:%d", host, port);
        return;
    }
    const struct sockaddr_in *s4 = (const void *)ss;
    inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
    snprintf(out, cap, "%s:%d", host, ntohs(s4->sin_port));
}

/* Splits "host:port" / "[host]:port" and resolves it (numeric only unless
 * names is set). 0 or -EINVAL. */
static int peer_parse(const char *addr, bool names, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || !colon[1] || (size_t)(colon - addr) >= sizeof host)
        return -EINVAL;
    size_t hl = (size_t)(colon - addr);
    const char *h = addr;
    if (addr[0] == '[' && colon[-1] == ']') {
        h++;
        hl -= 2;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_DGRAM,
                             .ai_flags = AI_NUMERICSERV | (names ? 0 : AI_NUMERICHOST)};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || !res)
        return -EINVAL;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int peer_resolve(const char *addr, char *out, size_t cap, char *err, size_t err_len)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (peer_parse(addr, true, &ss, &len) != 0) {
        snprintf(err, err_len, "'%s' is not host:port, or the host does not resolve", addr);
        return -EINVAL;
    }
    peer_format(&ss, out, cap);
    return 0;
}

/* ---- connections ---- */

static void peer_watch(struct peer_net *p, struct peer_conn *c)
{
    uint32_t ev = EPOLLIN | (c->wlen > c->woff ? EPOLLOUT : 0);
    if (ev == c->events)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(p->ep, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e) == 0)
        c->events = ev;
}

static void peer_close(struct peer_net *p, struct peer_conn *c)
{
    for (uint32_t i = 0; i < p->n_conns; i++)
        if (p->conns[i] == c) {
            p->conns[i] = p->conns[--p->n_conns];
            break;
        }
    close(c->fd);
    free(c->rbuf);
    free(c->wbuf);
    free(c);
}

static struct peer_conn *peer_adopt(struct peer_net *p, int fd, const char *addr, uint64_t now)
{
    struct peer_conn *c = p->n_conns < PEER_CONNS_MAX ? calloc(1, sizeof *c) : NULL;
    if (!c) {
        close(fd);
        return NULL;
    }
    c->fd = fd;
    snprintf(c->addr, sizeof c->addr, "%s", addr);
    c->last_ms = now;
    p->conns[p->n_conns++] = c;
    peer_watch(p, c);
    if (!c->events) {
        peer_close(p, c);
        return NULL;
    }
    return c;
}

static struct peer_conn *peer_connect(struct peer_net *p, const char *addr, uint64_t now)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (peer_parse(addr, false, &ss, &len) != 0 || ss.ss_family != p->local.ss_family)
        return NULL;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    if (bind(fd, (struct sockaddr *)&p->local, p->local_len) != 0 ||
        (connect(fd, (struct sockaddr *)&ss, len) != 0 && errno != EINPROGRESS)) {
        close(fd);
        return NULL;
    }
    p->stats.connections_out++;
    return peer_adopt(p, fd, addr, now);
}

/* Writes what c has queued; false when the connection failed (closed). */
static bool peer_write(struct peer_net *p, struct peer_conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN))
            break;
        if (n <= 0) {
            p->stats.send_failures++;
            c->broken = true; /* closed later: a caller may be reading c */
            return false;
        }
        c->woff += (size_t)n;
    }
    if (c->woff == c->wlen)
        c->woff = c->wlen = 0;
    peer_watch(p, c);
    return true;
}

static void peer_send_stream(struct peer_net *p, const char *addr, const uint8_t *bytes,
                             size_t len, uint64_t now)
{
    struct peer_conn *c = NULL;
    for (uint32_t i = 0; i < p->n_conns && !c; i++)
        if (!p->conns[i]->broken && strcmp(p->conns[i]->addr, addr) == 0)
            c = p->conns[i];
    if (!c)
        c = peer_connect(p, addr, now);
    if (!c || c->wlen + len > PEER_WBUF_MAX) {
        p->stats.send_failures++;
        return;
    }
    if (c->wlen + len > c->wcap) {
        size_t cap = c->wcap ? c->wcap : 4096;
        while (cap < c->wlen + len)
            cap *= 2;
        uint8_t *w = realloc(c->wbuf, cap);
        if (!w) {
            p->stats.send_failures++;
            return;
        }
        c->wbuf = w;
        c->wcap = cap;
    }
    memcpy(c->wbuf + c->wlen, bytes, len);
    c->wlen += len;
    c->last_ms = now;
    p->stats.stream_frames_out++;
    peer_write(p, c);
}

/* ---- authentication ---- */

static uint64_t peer_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The tag of bytes[0..len) (header, body and the time). */
static void peer_tag(const struct peer_net *p, const uint8_t *bytes, size_t len,
                     uint8_t tag[EVP_MAX_MD_SIZE])
{
    unsigned tag_len = 0;
    HMAC(EVP_sha256(), p->secret, (int)p->secret_len, bytes, len, tag, &tag_len);
}

/* Fills the MAC of a frame whose last GOSSIP_MAC_LEN bytes are for it. */
static void peer_sign(const struct peer_net *p, uint8_t *frame, size_t len)
{
    uint8_t *mac = frame + len - GOSSIP_MAC_LEN;
    uint64_t now = peer_wall_ms();
    for (int i = 0; i < 8; i++)
        mac[i] = (uint8_t)(now >> (8 * i));
    uint8_t tag[EVP_MAX_MD_SIZE];
    peer_tag(p, frame, len - PEER_TAG_LEN, tag);
    memcpy(mac + 8, tag, PEER_TAG_LEN);
}

/* True when msg may go to the member table (see the top of the file). */
static bool peer_accept(struct peer_net *p, const struct gossip_msg *msg)
{
    if (!p->mac || !msg->mac) {
        if (p->mac || msg->mac)
            p->stats.refused_frames++;
        return !p->mac && !msg->mac;
    }
    uint8_t tag[EVP_MAX_MD_SIZE];
    peer_tag(p, msg->signed_bytes, msg->signed_len + 8, tag);
    if (CRYPTO_memcmp(tag, msg->mac + 8, PEER_TAG_LEN) != 0) {
        p->stats.refused_frames++;
        return false;
    }
    uint64_t sent = 0, now = peer_wall_ms(), key = 0;
    for (int i = 0; i < 8; i++) {
        sent |= (uint64_t)msg->mac[i] << (8 * i);
        key |= (uint64_t)msg->mac[8 + i] << (8 * i);
    }
    if ((sent > now ? sent - now : now - sent) > PEER_WINDOW_MS) {
        p->stats.replayed_frames++;
        return false;
    }
    struct peer_replay *slot = NULL; /* where this MAC goes: a stale slot, else the oldest */
    bool slot_fresh = true;
    for (uint32_t k = 0; k < PEER_REPLAY_PROBE; k++) {
        struct peer_replay *r = &p->replay[(key + k) & (PEER_REPLAY_SLOTS - 1)];
        bool fresh = r->time_ms && now - r->time_ms <= PEER_WINDOW_MS + 1000;
        if (fresh && r->key == key) {
            p->stats.replayed_frames++;
            return false;
        }
        if (!slot || (slot_fresh && (!fresh || r->time_ms < slot->time_ms))) {
            slot = r;
            slot_fresh = fresh;
        }
    }
    slot->key = key;
    slot->time_ms = now;
    return true;
}

/* ---- frames in and out ---- */

void peer_flush(struct peer_net *p, struct member_table *t, uint64_t now_ms)
{
    const struct member_out *out;
    uint32_t n = member_outbox(t, &out);
    for (uint32_t i = 0; i < n; i++) {
        const struct member_out *o = &out[i];
        const uint8_t *bytes = o->bytes;
        if (p->mac) {
            if (o->len > p->scratch_cap) {
                uint8_t *s = realloc(p->scratch, o->len);
                if (!s) {
                    p->stats.send_failures++;
                    continue;
                }
                p->scratch = s;
                p->scratch_cap = o->len;
            }
            memcpy(p->scratch, o->bytes, o->len);
            peer_sign(p, p->scratch, o->len);
            bytes = p->scratch;
        }
        if (o->stream) {
            peer_send_stream(p, o->to_addr, bytes, o->len, now_ms);
            continue;
        }
        struct sockaddr_storage ss;
        socklen_t len;
        if (peer_parse(o->to_addr, false, &ss, &len) != 0 ||
            sendto(p->udp, bytes, o->len, MSG_DONTWAIT, (struct sockaddr *)&ss, len) < 0)
            p->stats.send_failures++;
        else
            p->stats.datagrams_out++;
    }
    member_outbox_clear(t);
}

/* Hands an authenticated frame from `from` to the table and sends its answers. */
static void peer_deliver(struct peer_net *p, struct member_table *t, uint64_t now,
                         const char *from, struct gossip_msg *msg, bool stream)
{
    if (!peer_accept(p, msg))
        return;
    if (stream)
        msg->flags |= GOSSIP_F_STREAM;
    member_on_message(t, now, from, msg);
    peer_flush(p, t, now);
}

static void peer_recv_udp(struct peer_net *p, struct member_table *t, uint64_t now)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        ssize_t n = recvfrom(p->udp, p->dgram, PEER_DGRAM_MAX, MSG_DONTWAIT,
                             (struct sockaddr *)&ss, &len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return;
        p->stats.datagrams_in++;
        char from[GOSSIP_ADDR_MAX + 1];
        peer_format(&ss, from, sizeof from);
        struct gossip_msg msg;
        size_t used;
        const char *err;
        if (gossip_decode(p->dgram, (size_t)n, &msg, &used, &err) != GOSSIP_OK ||
            used != (size_t)n) {
            p->stats.bad_frames++;
            continue;
        }
        peer_deliver(p, t, now, from, &msg, false);
    }
}

static void peer_accept_conns(struct peer_net *p, uint64_t now)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(p->lsn, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        char from[GOSSIP_ADDR_MAX + 1];
        peer_format(&ss, from, sizeof from);
        p->stats.connections_in++;
        peer_adopt(p, fd, from, now);
    }
}

/* Reads c and delivers its whole frames; false when c was closed. */
static bool peer_read(struct peer_net *p, struct member_table *t, struct peer_conn *c,
                      uint64_t now)
{
    for (;;) {
        if (c->rcap - c->rlen < 4096) {
            size_t cap = c->rcap ? c->rcap * 2 : 65536;
            uint8_t *r = cap <= 2 * (size_t)PEER_FRAME_MAX ? realloc(c->rbuf, cap) : NULL;
            if (!r) {
                peer_close(p, c);
                return false;
            }
            c->rbuf = r;
            c->rcap = cap;
        }
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            peer_close(p, c);
            return false;
        }
        c->rlen += (size_t)n;
        c->last_ms = now;
    }
    size_t off = 0;
    for (;;) {
        struct gossip_msg msg;
        size_t used;
        const char *err;
        enum gossip_status st = gossip_decode(c->rbuf + off, c->rlen - off, &msg, &used, &err);
        if (st == GOSSIP_MORE)
            break;
        if (st == GOSSIP_BAD) {
            p->stats.bad_frames++;
            peer_close(p, c);
            return false;
        }
        p->stats.stream_frames_in++;
        /* member_on_message() may send on this very connection (its answer):
         * that appends to wbuf, never touches rbuf. */
        peer_deliver(p, t, now, c->addr, &msg, true);
        off += used;
        if (c->broken)
            break;
    }
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
    return true;
}

void peer_run(struct peer_net *p, struct member_table *t, uint64_t now_ms)
{
    struct epoll_event ev[64];
    int n = epoll_wait(p->ep, ev, 64, 0);
    for (int i = 0; i < n; i++) {
        void *tag = ev[i].data.ptr;
        if (tag == &p->udp) {
            peer_recv_udp(p, t, now_ms);
            continue;
        }
        if (tag == &p->lsn) {
            peer_accept_conns(p, now_ms);
            continue;
        }
        struct peer_conn *c = tag;
        bool open = false; /* c may have been closed by an earlier event */
        for (uint32_t k = 0; k < p->n_conns && !open; k++)
            open = p->conns[k] == c;
        if (!open || c->broken)
            continue;
        if ((ev[i].events & (EPOLLERR | EPOLLHUP)) && !(ev[i].events & EPOLLIN)) {
            peer_close(p, c);
            continue;
        }
        if ((ev[i].events & EPOLLOUT) && !peer_write(p, c))
            continue;
        if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
            peer_read(p, t, c, now_ms);
    }
    for (uint32_t k = 0; k < p->n_conns;) {
        struct peer_conn *c = p->conns[k];
        if (c->broken || (now_ms - c->last_ms > PEER_IDLE_MS && c->woff == c->wlen))
            peer_close(p, c); /* the last one moved to k */
        else
            k++;
    }
}

/* ---- life cycle ---- */

static int peer_socket(struct peer_net *p, int type, const struct sockaddr_storage *ss,
                       socklen_t len, void *tag)
{
    int fd = socket(ss->ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0)
        return -errno;
    if ((type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) ||
        bind(fd, (const struct sockaddr *)ss, len) != 0 ||
        (type == SOCK_STREAM && listen(fd, 128) != 0)) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = tag};
    if (epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &e) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

int peer_create(const char *host, int port, const char *secret, struct peer_net **out)
{
    char addr[300];
    snprintf(addr, sizeof addr, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    struct sockaddr_storage ss;
    socklen_t len;
    if (peer_parse(addr, false, &ss, &len) != 0) {
        log_error("cluster: bind %s is not a numeric address", host);
        return -EINVAL;
    }
    size_t slen = secret ? strlen(secret) : 0;
    if (slen > PEER_SECRET_MAX)
        return -EINVAL;
    struct peer_net *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->udp = p->lsn = -1;
    p->ep = epoll_create1(EPOLL_CLOEXEC);
    p->dgram = malloc(PEER_DGRAM_MAX);
    p->replay = calloc(PEER_REPLAY_SLOTS, sizeof *p->replay);
    int rc = p->ep < 0 ? -errno : !p->dgram || !p->replay ? -ENOMEM : 0;
    if (rc == 0 && (p->udp = peer_socket(p, SOCK_DGRAM, &ss, len, &p->udp)) < 0)
        rc = p->udp;
    if (rc == 0 && (p->lsn = peer_socket(p, SOCK_STREAM, &ss, len, &p->lsn)) < 0)
        rc = p->lsn;
    if (rc != 0) {
        log_error("cluster: cannot listen on %s (cluster-port, UDP and TCP): %s", addr,
                  strerror(-rc));
        peer_destroy(p);
        return rc;
    }
    p->local = ss;
    p->local_len = len;
    if (ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&p->local)->sin6_port = 0;
    else
        ((struct sockaddr_in *)&p->local)->sin_port = 0;
    memcpy(p->secret, secret ? secret : "", slen);
    p->secret_len = slen;
    p->mac = slen > 0;
    *out = p;
    return 0;
}

void peer_destroy(struct peer_net *p)
{
    if (!p)
        return;
    while (p->n_conns)
        peer_close(p, p->conns[0]);
    if (p->udp >= 0)
        close(p->udp);
    if (p->lsn >= 0)
        close(p->lsn);
    if (p->ep >= 0)
        close(p->ep);
    OPENSSL_cleanse(p->secret, sizeof p->secret);
    free(p->dgram);
    free(p->scratch);
    free(p->replay);
    free(p);
}

int peer_fd(const struct peer_net *p)
{
    return p->ep;
}

const struct peer_stats *peer_get_stats(const struct peer_net *p)
{
    return &p->stats;
}
