/* peer.h: the gossip transport over the cluster port: a UDP socket and a TCP
 * listener on bind:cluster-port, connections to and from peers, and the
 * frames' authentication under cluster-secret (peer.c explains the MAC, its
 * timestamp and the replay cache). It carries member.h's frames: what
 * arrives, decoded and (with a secret) authenticated, goes to
 * member_on_message(); peer_send() sends one member_outbox() frame, as a
 * datagram or, when marked stream, over a connection.
 * Outgoing sockets are bound to the node's own address, so that a peer sees
 * the frames come from it.
 * Threads: one owner (the admin thread); nothing blocks: every socket is
 *   non-blocking and registered in the transport's own epoll fd, which the
 *   owner polls (peer_fd()) and then runs (peer_run()).
 * Ownership: peer_create() allocates, peer_destroy() closes and frees.
 * Errors: -errno from peer_create() (a reason logged); frames that cannot be
 *   sent or that arrive bad are counted (peer_stats) and dropped: gossip
 *   repairs what is lost. */
#ifndef RINGKV_ADMIN_PEER_H
#define RINGKV_ADMIN_PEER_H

#include <stdint.h>

#include "member.h"

struct peer_net;

struct peer_stats {
    uint64_t datagrams_in, datagrams_out;
    uint64_t stream_frames_in, stream_frames_out;
    uint64_t connections_in, connections_out;
    uint64_t bad_frames;      /* not a frame of our version: dropped (a stream closed) */
    uint64_t refused_frames;  /* no MAC or a wrong one (cluster-secret) */
    uint64_t replayed_frames; /* a valid MAC seen before, or a timestamp out of the window */
    uint64_t send_failures;   /* unreachable address, full buffer, socket error */
};

/* Binds UDP and TCP on host:port (host numeric, as the bind setting).
 * secret: the cluster secret ("" or NULL: frames are neither signed nor
 * checked). The frames of the member table must then be made with
 * member_config.mac set exactly when a secret is given. */
int peer_create(const char *host, int port, const char *secret, struct peer_net **out);
void peer_destroy(struct peer_net *p);

/* The fd to poll for input (POLLIN): the transport's epoll fd. */
int peer_fd(const struct peer_net *p);

/* Reads what is ready, hands each accepted frame to member_on_message() and
 * sends what that puts in the outbox (then clears it); writes what
 * connections have queued; closes connections idle for a while. */
void peer_run(struct peer_net *p, struct member_table *t, uint64_t now_ms);

/* Sends every frame in t's outbox and clears it. */
void peer_flush(struct peer_net *p, struct member_table *t, uint64_t now_ms);

/* Resolves "host:port" (a name or a numeric address; "[v6]:port") into the
 * numeric form member.h's addresses use; for seeds. 0, or -EINVAL with a
 * reason in err. Blocks on DNS: call at start-up. */
int peer_resolve(const char *addr, char *out, size_t cap, char *err, size_t err_len);

const struct peer_stats *peer_get_stats(const struct peer_net *p);

#endif
