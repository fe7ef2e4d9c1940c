/* peer.h: the gossip transport over the cluster port: a UDP socket and a TCP
 * listener on bind:cluster-port, connections to and from peers, and the
 * frames' authentication under cluster-secret (peer.c explains the
 * handshake, the sessions and their replay windows). It carries member.h's
 * frames: what arrives, decoded and (with a secret) authenticated, goes to
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

#include <stdbool.h>
#include <stdint.h>

#include "member.h"

struct peer_net;

struct peer_stats {
    uint64_t datagrams_in, datagrams_out;
    uint64_t stream_frames_in, stream_frames_out;
    uint64_t connections_in, connections_out;
    uint64_t bad_frames;      /* not a frame of our version: dropped (a stream closed) */
    /* cluster-secret: a frame or handshake message without a MAC, with a
     * wrong one, on a session we do not hold, or one with a MAC when we
     * have no secret (and a handshake message then) */
    uint64_t refused_frames;
    uint64_t replayed_frames; /* its sequence number seen (or too old) on its session;
                                 a PROOF of a session already made */
    uint64_t send_failures;   /* unreachable address, full buffer, socket error */
    /* The handshake (cluster-secret only; see peer.c). */
    uint64_t handshakes_started; /* HELLOs of ours (a datagram peer or a new connection) */
    uint64_t handshakes_done;    /* sessions made, either side */
    uint64_t handshakes_refused; /* a wrong proof or cookie: the other side lacks the secret */
    uint64_t handshakes_failed;  /* ours given up (no answer, the connection closed or
                                    stuck); theirs when too many came at once */
    uint64_t hellos_answered;    /* CHALLENGEs sent (statelessly) */
    uint64_t queue_drops;        /* frames dropped while waiting for a session */
    uint64_t resets_out, resets_in; /* "unknown session" answers sent, and taken */
    uint64_t sessions;           /* datagram sessions held now */
    uint64_t handshakes_pending; /* datagram handshakes of ours in flight now */
    uint64_t rand_failures;      /* no random nonce (RAND_bytes failed): handshakes not
                                    started (also in handshakes_failed) */
    uint64_t read_buffered;      /* bytes of connections' receive buffers now */
    uint64_t read_overflows;     /* connections closed for buffering too much: more than
                                    a handshake message before the handshake, a frame
                                    after it, or all together past a process-wide cap */
    uint64_t stale_events;       /* events for a connection closed in the same batch */
    uint64_t wire_handed;        /* connections of the node-to-node protocol (first byte
                                    WIRE_MAGIC) handed to a shard (peer_set_wire_sink) */
};

/* Binds UDP and TCP on host:port (host numeric, as the bind setting).
 * secret: the cluster secret ("" or NULL: frames are neither signed nor
 * checked); the keys are derived from it by a deliberately slow KDF (about
 * 0.1 s of CPU here, once). The frames of the member table must then be made with
 * member_config.mac set exactly when a secret is given. */
int peer_create(const char *host, int port, const char *secret, struct peer_net **out);
void peer_destroy(struct peer_net *p);

/* Whether host (numeric, as the bind setting) is 0.0.0.0 or ::. A node bound
 * there has no address its peers can reach it at: peer_create() then makes a
 * transport that drops whatever peers send (and the caller should refuse
 * seeds). */
bool peer_bind_is_wildcard(const char *host);

/* Where accepted connections of the node-to-node protocol go (net/wire.h:
 * their first byte is WIRE_MAGIC): once the HELLO's header and to_shard
 * field are in (peeked, not read, within PEER_WIRE_PEEK_MS), the socket is
 * taken out of the transport and given to sink(arg, to_shard, fd), which
 * owns it from then on (the admin thread calls it). Without a sink, or
 * with a header that is not a HELLO's, the connection is closed. Call
 * before the admin thread runs. */
typedef void peer_wire_sink(void *arg, uint32_t to_shard, int fd);
void peer_set_wire_sink(struct peer_net *p, peer_wire_sink *sink, void *arg);

/* The key derived from cluster-secret (the KDF above), which the
 * node-to-node protocol's handshake proves too: *len bytes, valid while p
 * lives; NULL and *len 0 without a secret. Any thread once peer_create()
 * returned (it never changes). */
const uint8_t *peer_secret_key(const struct peer_net *p, size_t *len);

/* The fd to poll for input (POLLIN): the transport's epoll fd. */
int peer_fd(const struct peer_net *p);

/* Reads what is ready, hands each accepted frame to member_on_message() and
 * sends what that puts in the outbox (then clears it); writes what
 * connections have queued; closes connections idle for a while. */
void peer_run(struct peer_net *p, struct member_table *t, uint64_t now_ms);

/* Sends every frame in t's outbox and clears it. */
void peer_flush(struct peer_net *p, struct member_table *t, uint64_t now_ms);

/* When peer_run() next has a timer to run (a handshake to retry);
 * UINT64_MAX when none. */
uint64_t peer_next_deadline(const struct peer_net *p);

/* Resolves "host:port" (a name or a numeric address; "[v6]:port") into the
 * numeric form member.h's addresses use; for seeds. 0, or -EINVAL with a
 * reason in err. Blocks on DNS: call at start-up. */
int peer_resolve(const char *addr, char *out, size_t cap, char *err, size_t err_len);

const struct peer_stats *peer_get_stats(const struct peer_net *p);

/* A handshake message (cluster-secret; peer.c gives the layout). Pointers
 * point into the bytes given to peer_hs_decode(); fields a kind lacks are
 * NULL / 0. */
#define PEER_HS_MAGIC 0xa5 /* first byte; a gossip frame starts with GOSSIP_VERSION */
#define PEER_NONCE_LEN 16
#define PEER_PROOF_LEN 32
#define PEER_TAG_LEN 16

enum peer_hs_kind { PEER_HELLO = 1, PEER_CHALLENGE = 2, PEER_PROOF = 3, PEER_ACCEPT = 4,
                    PEER_RESET = 5 };

struct peer_hs_msg {
    enum peer_hs_kind kind;
    const uint8_t *nonce_a, *nonce_b; /* PEER_NONCE_LEN bytes each */
    uint64_t time_ms;                 /* CHALLENGE, PROOF: the responder's clock */
    const uint8_t *proof;             /* PROOF, ACCEPT: PEER_PROOF_LEN bytes */
    uint64_t session;                 /* RESET */
    const uint8_t *tag;               /* RESET: PEER_TAG_LEN bytes */
};

/* Decodes one handshake message from data[0..len): GOSSIP_OK with *consumed
 * its length, GOSSIP_MORE (nothing consumed), or GOSSIP_BAD (not one: wrong
 * magic, unknown kind or a length not the kind's). Pure: any thread. */
enum gossip_status peer_hs_decode(const uint8_t *data, size_t len, struct peer_hs_msg *m,
                                  size_t *consumed);

#endif
