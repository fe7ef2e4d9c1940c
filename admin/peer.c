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
 * frame that is not ours, or one refused, closes its connection. epoll
 * events carry a connection's id, never its pointer: an event for one closed
 * earlier in the same batch finds nothing. peer_run() reads at most
 * PEER_DGRAMS_PER_RUN datagrams, so that a flood leaves the admin thread
 * its timers and HTTP.
 * Memory: a connection still in its handshake reads one handshake message
 * at a time (PEER_HS_MSG_MAX bytes) and is closed at the first byte that
 * does not start one; an open one buffers at most a frame (PEER_RBUF_MAX),
 * its header checked as soon as it is in (a MAC exactly when we have a
 * secret, the body's length), and all connections together at most
 * PEER_RBUF_TOTAL_MAX: past a cap the connection is closed (read_overflows).
 * Authentication (cluster-secret set) is by sessions between two addresses,
 * made by a challenge-response handshake; no clock is compared and the
 * secret never travels. K, the key below called the secret, is
 * PBKDF2-HMAC-SHA256(secret, salt PEER_KDF_SALT, PEER_KDF_ITERATIONS) (32
 * bytes, once at start-up): a proof or tag seen on the wire still lets
 * anyone test guesses offline, each now costing that much, so the secret
 * must be high-entropy (`openssl rand -hex 32`), not a word.
 * H(k, ...) is HMAC-SHA256; I and R are the
 * initiator's and the responder's addresses as host:port (for a connection,
 * its two ends); T(label) is
 *   label | nonce_a | nonce_b | len(I) u8 | I | len(R) u8 | R.
 *   HELLO     I->R  nonce_a (16 random bytes), 40 zero bytes (so that an
 *                   answer is never larger than what asked for it)
 *   CHALLENGE R->I  nonce_a, nonce_b, time (R's clock, u64 LE): R keeps
 *                   nothing: nonce_b is H(cookie key, T("cookie") with the
 *                   time in nonce_b's place) cut to 16 bytes, the cookie
 *                   key random per process (DTLS's HelloVerify), so a flood
 *                   of spoofed HELLOs costs R an HMAC and a small datagram
 *                   each, and no memory
 *   PROOF     I->R  nonce_a, nonce_b, time, H(secret, T("initiator")): R
 *                   checks the cookie (its own, for this I, at most
 *                   PEER_COOKIE_MS old) and the proof; only then it makes
 *                   the session and answers
 *   ACCEPT    R->I  nonce_a, nonce_b, H(secret, T("responder")): I checks it
 *                   and makes the session
 * Proofs and cookies are compared in constant time (secret_equal()); a
 * wrong one is counted (handshakes_refused) and makes nothing. A session's
 * id is H(secret, T("session id")) cut to 8 bytes, its keys H(secret,
 * T("key i>r")) and H(secret, T("key r>i")), one per direction (a frame
 * reflected to its sender fails). member.c leaves GOSSIP_MAC_LEN zero bytes
 * after each frame; the sender writes there the session id (u64 LE), its
 * next sequence number on the session (u64 LE, from 1) and H(direction key,
 * header | body | id | seq) cut to 16 bytes. The receiver looks the session
 * up (a datagram's must be with its source address; a connection has its
 * own), checks the MAC and then a 64-frame sliding window of sequence
 * numbers (IPsec's): replays, frames too old and frames copied to any other
 * receiver (which has no such session) never reach member_on_message().
 * Datagrams: sessions live in a table of PEER_SESSIONS_MAX (at most
 * PEER_SESSIONS_PER_ADDR per address, the oldest replaced; when full, the
 * least recently heard from evicted; forgotten after PEER_SESSION_IDLE_MS
 * silent); either side sends on the session it last heard from (or made
 * last). Frames for an address without one wait in its handshake's queue
 * (PEER_QUEUE_MAX bytes; at most PEER_HS_MAX handshakes of ours in flight);
 * the HELLO goes again every PEER_HS_RETRY_MS, given up after PEER_HS_TRIES
 * (the frames dropped). A PROOF makes a session once: R remembers the ids
 * it made within the cookie's life, PEER_RECENT of them (so at most that
 * many handshakes per PEER_COOKIE_MS). A datagram on a session the receiver
 * does not hold (it restarted, or the frame was copied) is answered by
 * RESET: the session id, H(secret, T("reset") with the id (u64 LE) in the
 * nonces' place, I the RESET's sender, R its receiver) cut to 16 bytes,
 * sent only to the cluster address of a member of the table and at most
 * PEER_RESETS_PER_S a second to each address (a flood from one, spoofed or
 * not, takes no other's); a valid one makes its receiver forget
 * that session, so that its next frame there starts a handshake.
 * Streams: the connecting side sends HELLO first (one HELLO and one PROOF
 * per connection); frames wait on the connection until ACCEPT, then
 * everything on it is sealed with its own session. A connection still in
 * its handshake after PEER_COOKIE_MS is closed, and of those made to us at
 * most PEER_HALF_OPEN_MAX are kept (the oldest closed for a new one).
 * Handshake messages: magic u8 (PEER_HS_MAGIC), kind u8, body length u16
 * LE, then the body above.
 * Node-to-node connections (net/wire.h, shards/peerlink.c) share the TCP
 * port: an accepted connection whose first byte is WIRE_MAGIC is peeked
 * (never read) until its HELLO's header and to_shard are in, checked, taken
 * out of the epoll set and handed to the wire sink (the shard it names);
 * a header that is not a HELLO's, or one not whole within
 * PEER_WIRE_PEEK_MS, closes it (bad_frames). Such connections count among
 * the half-open ones.
 * A node bound to a wildcard (0.0.0.0, ::) has no address its peers could
 * use (its self address would not be the one they see): it drops whatever
 * arrives on the cluster port and sends nothing, a cluster of one (admin.c
 * refuses seeds with such a bind).
 * Without a secret none of this happens; such a node drops frames that carry
 * a MAC and handshake messages, and a node with one drops frames without,
 * so that a cluster with a secret and a node without stay apart both ways. */
#include "peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "log.h"
#include "net.h"
#include "secret.h"
#include "wire.h"

#define PEER_CONNS_MAX 1024
#define PEER_TAG_UDP 1   /* epoll data of the UDP socket; connections' ids follow */
#define PEER_TAG_LSN 2   /* ... of the listener */
#define PEER_IDLE_MS 10000
#define PEER_SECRET_MAX 256
#define PEER_DGRAM_MAX 65536
#define PEER_FRAME_MAX (GOSSIP_HEADER_LEN + GOSSIP_BODY_MAX + GOSSIP_MAC_LEN)
#define PEER_WBUF_MAX (32u << 20) /* queued bytes per connection at most */
#define PEER_HS_MSG_MAX (PEER_HS_HEADER + 2 * PEER_NONCE_LEN + 8 + PEER_PROOF_LEN) /* a PROOF */
#define PEER_RBUF_MAX (PEER_FRAME_MAX + (64u << 10)) /* read buffer of an open connection */
#define PEER_RBUF_TOTAL_MAX (4u * PEER_RBUF_MAX)     /* all read buffers together */
#define PEER_DGRAMS_PER_RUN 64 /* datagrams read per peer_run(): timers and HTTP go on */
#define PEER_KDF_SALT "ringkv cluster-secret v1"
#define PEER_KDF_ITERATIONS 200000 /* PBKDF2-HMAC-SHA256: about 0.1 s, once at start-up */
#define PEER_KEY_LEN 32
#define PEER_SESSIONS_MAX 1024
#define PEER_SESSIONS_PER_ADDR 4
#define PEER_SESSION_IDLE_MS 120000
#define PEER_HS_MAX 128
#define PEER_HS_RETRY_MS 250
#define PEER_HS_TRIES 5
#define PEER_QUEUE_MAX (64u << 10) /* bytes waiting for a datagram handshake */
#define PEER_HALF_OPEN_MAX 64      /* connections to us still in their handshake */
#define PEER_COOKIE_MS 5000
#define PEER_RECENT 1024
#define PEER_RESETS_PER_S 4 /* per address */
#define PEER_RESET_ADDRS 256 /* addresses whose RESETs are counted this second */
#define PEER_HS_HEADER 4
#define PEER_HELLO_PAD 40
#define PEER_WINDOW 64
#define PEER_WARN_MS 10000 /* refused handshakes logged at most this often */
#define PEER_WIRE_PEEK (WIRE_HEADER_LEN + 8) /* a HELLO up to its to_shard field */
#define PEER_WIRE_PEEK_MS 2000 /* for them to arrive */
#define PEER_WIRE_POLL_MS 10   /* peeked again this often meanwhile */
#define PEER_BAD_ACCEPT "an ACCEPT with a wrong proof (another cluster-secret?)"

_Static_assert(GOSSIP_MAC_LEN == 8 + 8 + PEER_TAG_LEN, "a frame's MAC area: id, seq, tag");

/* One end of a session: the keys, the next sequence number to send and the
 * window of those received. */
struct peer_sess {
    uint64_t id; /* 0: a free slot */
    char addr[GOSSIP_ADDR_MAX + 1]; /* the other end (datagram sessions) */
    uint8_t key_out[PEER_KEY_LEN], key_in[PEER_KEY_LEN];
    uint64_t seq_out;
    uint64_t top;    /* highest sequence number accepted */
    uint64_t window; /* bit k: top - k accepted */
    uint64_t created_ms, heard_ms;
};

/* Frames waiting for a session, each a u32 length then the frame. */
struct peer_queue {
    uint8_t *b;
    size_t len, cap;
};

/* A datagram handshake of ours. */
struct peer_hs {
    char addr[GOSSIP_ADDR_MAX + 1]; /* "": a free slot */
    uint8_t nonce_a[PEER_NONCE_LEN], nonce_b[PEER_NONCE_LEN];
    bool challenged;                /* nonce_b is R's: a PROOF went out */
    uint32_t tries;
    uint64_t retry_ms;
    struct peer_queue q;
};

enum peer_conn_state {
    PEER_C_PLAIN,      /* no secret */
    PEER_C_HELLO_SENT, /* we connected: waiting for CHALLENGE */
    PEER_C_PROOF_SENT, /* ... for ACCEPT */
    PEER_C_WAIT_HELLO, /* it connected to us */
    PEER_C_CHALLENGED, /* ... and had its CHALLENGE: waiting for PROOF */
    PEER_C_OPEN,       /* the session is made */
    PEER_C_WIRE,       /* it sent WIRE_MAGIC: waiting for its HELLO's header, not
                          read but peeked (out of the epoll set meanwhile) */
};

struct peer_conn {
    int fd;
    uint64_t id; /* its epoll data: an event for a connection since closed finds none */
    char addr[GOSSIP_ADDR_MAX + 1];  /* the other end */
    char local[GOSSIP_ADDR_MAX + 1]; /* this end */
    uint8_t *rbuf, *wbuf;
    size_t rlen, rcap, wlen, woff, wcap;
    uint64_t last_ms, created_ms;
    uint32_t events; /* registered epoll events */
    bool broken;     /* a write failed: closed by peer_run()'s sweep */
    enum peer_conn_state state;
    uint8_t nonce_a[PEER_NONCE_LEN], nonce_b[PEER_NONCE_LEN];
    struct peer_sess sess;  /* PEER_C_OPEN */
    struct peer_queue pend; /* frames waiting for PEER_C_OPEN */
    bool sniff;             /* accepted, first byte not looked at yet */
    uint64_t wire_poll_ms;  /* PEER_C_WIRE: peek again then */
};

struct peer_recent {
    uint64_t id, made_ms;
};

/* RESETs sent to one address this second. */
struct peer_reset_count {
    char addr[GOSSIP_ADDR_MAX + 1];
    uint64_t second;
    uint32_t sent;
};

struct peer_net {
    int ep, udp, lsn;
    struct sockaddr_storage local; /* bind address, port 0: outgoing connections */
    socklen_t local_len;
    char self[GOSSIP_ADDR_MAX + 1]; /* bind:cluster-port */
    uint8_t key[PEER_KEY_LEN]; /* derived from the secret (peer_derive()) */
    bool mac;
    bool is_wildcard; /* bound to 0.0.0.0 or ::: a cluster of one, deaf to peers */
    uint8_t cookie_key[PEER_KEY_LEN];
    struct peer_conn *conns[PEER_CONNS_MAX];
    uint32_t n_conns;
    uint64_t next_conn_id;
    uint8_t *dgram;   /* receive buffer */
    uint8_t *scratch; /* a frame being sealed */
    size_t scratch_cap;
    struct peer_sess *sess; /* PEER_SESSIONS_MAX */
    struct peer_hs *hs;     /* PEER_HS_MAX */
    struct peer_recent *recent; /* PEER_RECENT, a ring */
    uint32_t recent_next;
    struct peer_reset_count resets[PEER_RESET_ADDRS];
    uint64_t warned_ms; /* last refused handshake logged */
    peer_wire_sink *wire_sink; /* node-to-node connections go there */
    void *wire_arg;
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

int peer_resolve(const char *addr, char *out, size_t cap, char *err, size_t err_len)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (net_parse_addr(addr, true, &ss, &len) != 0) {
        snprintf(err, err_len, "'%s' is not host:port, or the host does not resolve", addr);
        return -EINVAL;
    }
    peer_format(&ss, out, cap);
    return 0;
}

/* The canonical form of a numeric address (as peer_format() writes a
 * source), so that addresses compare as strings; false if not numeric. */
static bool peer_canon(const char *addr, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (net_parse_addr(addr, false, &ss, &len) != 0)
        return false;
    peer_format(&ss, out, cap);
    return true;
}

/* ---- keyed hashes ---- */

static void put64(uint8_t *b, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)b[i] << (8 * i);
    return v;
}

static void peer_hmac(const uint8_t *key, size_t key_len, const uint8_t *data, size_t len,
                      uint8_t out[EVP_MAX_MD_SIZE])
{
    unsigned out_len = 0;
    HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &out_len);
}

/* H(key, label | a | b | len(I) | I | len(R) | R) (see the top). */
static void peer_transcript(const uint8_t *key, size_t key_len, const char *label,
                            const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len,
                            const char *ai, const char *ar, uint8_t out[EVP_MAX_MD_SIZE])
{
    uint8_t buf[32 + 2 * PEER_NONCE_LEN + 2 * (GOSSIP_ADDR_MAX + 1)];
    size_t n = 0, ll = strlen(label), li = strlen(ai), lr = strlen(ar);
    memcpy(buf + n, label, ll);
    n += ll;
    memcpy(buf + n, a, a_len);
    n += a_len;
    if (b_len)
        memcpy(buf + n, b, b_len);
    n += b_len;
    buf[n++] = (uint8_t)li;
    memcpy(buf + n, ai, li);
    n += li;
    buf[n++] = (uint8_t)lr;
    memcpy(buf + n, ar, lr);
    n += lr;
    peer_hmac(key, key_len, buf, n, out);
}

static void peer_keyed(const struct peer_net *p, const char *label, const uint8_t *nonce_a,
                       const uint8_t *nonce_b, const char *ai, const char *ar,
                       uint8_t out[EVP_MAX_MD_SIZE])
{
    peer_transcript(p->key, sizeof p->key, label, nonce_a, PEER_NONCE_LEN, nonce_b,
                    PEER_NONCE_LEN, ai, ar, out);
}

/* R's nonce_b for a HELLO: its cookie. */
static void peer_cookie(const struct peer_net *p, const uint8_t *nonce_a, uint64_t time_ms,
                        const char *ai, const char *ar, uint8_t out[EVP_MAX_MD_SIZE])
{
    uint8_t t[8];
    put64(t, time_ms);
    peer_transcript(p->cookie_key, sizeof p->cookie_key, "cookie", nonce_a, PEER_NONCE_LEN, t,
                    sizeof t, ai, ar, out);
}

static void peer_reset_tag(const struct peer_net *p, uint64_t id, const char *sender,
                           const char *receiver, uint8_t out[EVP_MAX_MD_SIZE])
{
    uint8_t b[8];
    put64(b, id);
    peer_transcript(p->key, sizeof p->key, "reset", b, sizeof b, NULL, 0, sender, receiver,
                    out);
}

static bool peer_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
    return secret_equal((const char *)a, len, (const char *)b, len);
}

/* ---- sessions ---- */

static void peer_sess_init(const struct peer_net *p, struct peer_sess *s, bool initiator,
                           const uint8_t *nonce_a, const uint8_t *nonce_b, const char *ai,
                           const char *ar, uint64_t now)
{
    uint8_t ir[EVP_MAX_MD_SIZE], ri[EVP_MAX_MD_SIZE], id[EVP_MAX_MD_SIZE];
    peer_keyed(p, "key i>r", nonce_a, nonce_b, ai, ar, ir);
    peer_keyed(p, "key r>i", nonce_a, nonce_b, ai, ar, ri);
    peer_keyed(p, "session id", nonce_a, nonce_b, ai, ar, id);
    memcpy(s->key_out, initiator ? ir : ri, PEER_KEY_LEN);
    memcpy(s->key_in, initiator ? ri : ir, PEER_KEY_LEN);
    s->id = get64(id) ? get64(id) : 1;
    s->seq_out = s->top = s->window = 0;
    s->created_ms = s->heard_ms = now;
    OPENSSL_cleanse(ir, sizeof ir);
    OPENSSL_cleanse(ri, sizeof ri);
}

static uint64_t peer_sess_id(const struct peer_net *p, const uint8_t *nonce_a,
                             const uint8_t *nonce_b, const char *ai, const char *ar)
{
    uint8_t id[EVP_MAX_MD_SIZE];
    peer_keyed(p, "session id", nonce_a, nonce_b, ai, ar, id);
    return get64(id) ? get64(id) : 1;
}

static void peer_sess_free(struct peer_net *p, struct peer_sess *s)
{
    OPENSSL_cleanse(s, sizeof *s);
    p->stats.sessions--;
}

static struct peer_sess *peer_sess_find(struct peer_net *p, uint64_t id)
{
    for (uint32_t i = 0; i < PEER_SESSIONS_MAX; i++)
        if (p->sess[i].id == id)
            return &p->sess[i];
    return NULL;
}

/* The session to send to addr on: the one last heard from. */
static struct peer_sess *peer_sess_for(struct peer_net *p, const char *addr)
{
    struct peer_sess *best = NULL;
    for (uint32_t i = 0; i < PEER_SESSIONS_MAX; i++) {
        struct peer_sess *s = &p->sess[i];
        if (s->id && strcmp(s->addr, addr) == 0 &&
            (!best || s->heard_ms > best->heard_ms ||
             (s->heard_ms == best->heard_ms && s->created_ms > best->created_ms)))
            best = s;
    }
    return best;
}

/* A slot for a new session with addr: a free one unless addr has its
 * share (then its oldest) or the table is full (then the least recently
 * heard from). */
static struct peer_sess *peer_sess_slot(struct peer_net *p, const char *addr)
{
    struct peer_sess *free_slot = NULL, *oldest = NULL, *quiet = NULL;
    uint32_t mine = 0;
    for (uint32_t i = 0; i < PEER_SESSIONS_MAX; i++) {
        struct peer_sess *s = &p->sess[i];
        if (!s->id) {
            free_slot = free_slot ? free_slot : s;
            continue;
        }
        if (strcmp(s->addr, addr) == 0) {
            mine++;
            if (!oldest || s->created_ms < oldest->created_ms)
                oldest = s;
        }
        if (!quiet || s->heard_ms < quiet->heard_ms)
            quiet = s;
    }
    struct peer_sess *s = mine >= PEER_SESSIONS_PER_ADDR ? oldest : free_slot ? free_slot : quiet;
    if (s->id)
        peer_sess_free(p, s);
    p->stats.sessions++;
    return s;
}

/* Fills the MAC area (the last GOSSIP_MAC_LEN bytes) of a frame. */
static void peer_seal(struct peer_sess *s, uint8_t *frame, size_t len)
{
    uint8_t *mac = frame + len - GOSSIP_MAC_LEN;
    put64(mac, s->id);
    put64(mac + 8, ++s->seq_out);
    uint8_t tag[EVP_MAX_MD_SIZE];
    peer_hmac(s->key_out, PEER_KEY_LEN, frame, len - PEER_TAG_LEN, tag);
    memcpy(mac + 16, tag, PEER_TAG_LEN);
}

/* Checks a frame's MAC and sequence number on s; marks the number seen. */
static bool peer_unseal(struct peer_net *p, struct peer_sess *s, const struct gossip_msg *msg,
                        uint64_t now)
{
    uint8_t tag[EVP_MAX_MD_SIZE];
    peer_hmac(s->key_in, PEER_KEY_LEN, msg->signed_bytes, msg->signed_len + 16, tag);
    if (!peer_equal(tag, msg->mac + 16, PEER_TAG_LEN)) {
        p->stats.refused_frames++;
        return false;
    }
    uint64_t seq = get64(msg->mac + 8);
    if (seq == 0 || (seq <= s->top && (s->top - seq >= PEER_WINDOW ||
                                       (s->window >> (s->top - seq) & 1)))) {
        p->stats.replayed_frames++;
        return false;
    }
    if (seq > s->top) {
        uint64_t shift = seq - s->top;
        s->window = shift >= PEER_WINDOW ? 0 : s->window << shift;
        s->top = seq;
    }
    s->window |= 1ull << (s->top - seq);
    s->heard_ms = now;
    return true;
}

/* ---- queues of frames waiting for a session ---- */

static bool peer_queue_push(struct peer_queue *q, const uint8_t *bytes, size_t len, size_t max)
{
    size_t need = q->len + 4 + len;
    if (need > max)
        return false;
    if (need > q->cap) {
        size_t cap = q->cap ? q->cap : 4096;
        while (cap < need)
            cap *= 2;
        uint8_t *b = realloc(q->b, cap);
        if (!b)
            return false;
        q->b = b;
        q->cap = cap;
    }
    uint32_t l = (uint32_t)len;
    memcpy(q->b + q->len, &l, 4);
    memcpy(q->b + q->len + 4, bytes, len);
    q->len = need;
    return true;
}

static uint32_t peer_queue_count(const struct peer_queue *q)
{
    uint32_t n = 0;
    for (size_t off = 0; off < q->len; n++) {
        uint32_t l;
        memcpy(&l, q->b + off, 4);
        off += 4 + l;
    }
    return n;
}

static void peer_queue_free(struct peer_queue *q)
{
    free(q->b);
    memset(q, 0, sizeof *q);
}

/* ---- handshake messages ---- */

static size_t peer_hs_body_len(unsigned kind)
{
    switch (kind) {
    case PEER_HELLO:
        return PEER_NONCE_LEN + PEER_HELLO_PAD;
    case PEER_CHALLENGE:
        return 2 * PEER_NONCE_LEN + 8;
    case PEER_PROOF:
        return 2 * PEER_NONCE_LEN + 8 + PEER_PROOF_LEN;
    case PEER_ACCEPT:
        return 2 * PEER_NONCE_LEN + PEER_PROOF_LEN;
    case PEER_RESET:
        return 8 + PEER_TAG_LEN;
    default:
        return 0;
    }
}

enum gossip_status peer_hs_decode(const uint8_t *data, size_t len, struct peer_hs_msg *m,
                                  size_t *consumed)
{
    *consumed = 0;
    memset(m, 0, sizeof *m);
    if (len >= 1 && data[0] != PEER_HS_MAGIC)
        return GOSSIP_BAD;
    if (len >= 2 && !peer_hs_body_len(data[1]))
        return GOSSIP_BAD;
    if (len < PEER_HS_HEADER)
        return GOSSIP_MORE;
    size_t body = (size_t)data[2] | (size_t)data[3] << 8;
    if (body != peer_hs_body_len(data[1]))
        return GOSSIP_BAD;
    if (len < PEER_HS_HEADER + body)
        return GOSSIP_MORE;
    const uint8_t *b = data + PEER_HS_HEADER;
    m->kind = data[1];
    if (m->kind == PEER_RESET) {
        m->session = get64(b);
        m->tag = b + 8;
    } else {
        m->nonce_a = b;
        if (m->kind != PEER_HELLO)
            m->nonce_b = b + PEER_NONCE_LEN;
        if (m->kind == PEER_CHALLENGE || m->kind == PEER_PROOF)
            m->time_ms = get64(b + 2 * PEER_NONCE_LEN);
        if (m->kind == PEER_PROOF)
            m->proof = b + 2 * PEER_NONCE_LEN + 8;
        if (m->kind == PEER_ACCEPT)
            m->proof = b + 2 * PEER_NONCE_LEN;
    }
    *consumed = PEER_HS_HEADER + body;
    return GOSSIP_OK;
}

/* Writes a handshake message into out (room for PEER_HS_HEADER + 80 bytes);
 * returns its length. Absent parts are NULL. */
static size_t peer_hs_encode(uint8_t *out, enum peer_hs_kind kind, const uint8_t *nonce_a,
                             const uint8_t *nonce_b, uint64_t time_ms, const uint8_t *proof)
{
    size_t body = peer_hs_body_len(kind), n = PEER_HS_HEADER;
    out[0] = PEER_HS_MAGIC;
    out[1] = (uint8_t)kind;
    out[2] = (uint8_t)body;
    out[3] = (uint8_t)(body >> 8);
    memset(out + n, 0, body);
    memcpy(out + n, nonce_a, PEER_NONCE_LEN);
    n += PEER_NONCE_LEN;
    if (nonce_b) {
        memcpy(out + n, nonce_b, PEER_NONCE_LEN);
        n += PEER_NONCE_LEN;
    }
    if (kind == PEER_CHALLENGE || kind == PEER_PROOF) {
        put64(out + n, time_ms);
        n += 8;
    }
    if (proof)
        memcpy(out + n, proof, PEER_PROOF_LEN);
    return PEER_HS_HEADER + body;
}

/* ---- connections ---- */

static void peer_watch(struct peer_net *p, struct peer_conn *c)
{
    uint32_t ev = EPOLLIN | (c->wlen > c->woff ? EPOLLOUT : 0);
    if (ev == c->events)
        return;
    struct epoll_event e = {.events = ev, .data.u64 = c->id};
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
    if (c->state == PEER_C_HELLO_SENT || c->state == PEER_C_PROOF_SENT) {
        p->stats.handshakes_failed++;
        p->stats.queue_drops += peer_queue_count(&c->pend);
    }
    if (c->fd >= 0) /* -1: handed to the wire sink */
        close(c->fd);
    p->stats.read_buffered -= c->rcap;
    free(c->rbuf);
    free(c->wbuf);
    peer_queue_free(&c->pend);
    OPENSSL_cleanse(&c->sess, sizeof c->sess);
    free(c);
}

static struct peer_conn *peer_adopt(struct peer_net *p, int fd, const char *addr,
                                    enum peer_conn_state state, uint64_t now)
{
    struct peer_conn *c = p->n_conns < PEER_CONNS_MAX ? calloc(1, sizeof *c) : NULL;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (!c || getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        free(c);
        close(fd);
        return NULL;
    }
    c->fd = fd;
    c->id = ++p->next_conn_id;
    snprintf(c->addr, sizeof c->addr, "%s", addr);
    peer_format(&ss, c->local, sizeof c->local);
    c->state = state;
    c->last_ms = c->created_ms = now;
    p->conns[p->n_conns++] = c;
    peer_watch(p, c);
    if (!c->events) {
        peer_close(p, c);
        return NULL;
    }
    return c;
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

/* Queues bytes on c and writes what it can; false when they cannot go. */
static bool peer_append(struct peer_net *p, struct peer_conn *c, const uint8_t *bytes,
                        size_t len)
{
    if (c->wlen + len > PEER_WBUF_MAX) {
        p->stats.send_failures++;
        return false;
    }
    if (c->wlen + len > c->wcap) {
        size_t cap = c->wcap ? c->wcap : 4096;
        while (cap < c->wlen + len)
            cap *= 2;
        uint8_t *w = realloc(c->wbuf, cap);
        if (!w) {
            p->stats.send_failures++;
            return false;
        }
        c->wbuf = w;
        c->wcap = cap;
    }
    memcpy(c->wbuf + c->wlen, bytes, len);
    c->wlen += len;
    peer_write(p, c);
    return true;
}

static void peer_send_hello(struct peer_net *p, struct peer_conn *c, const char *addr,
                            const uint8_t *nonce_a);

/* A fresh nonce_a; false (counted) when the RNG fails: no handshake then. */
static bool peer_nonce(struct peer_net *p, uint8_t nonce[PEER_NONCE_LEN])
{
    if (RAND_bytes(nonce, PEER_NONCE_LEN) == 1)
        return true;
    uint64_t n = ++p->stats.rand_failures;
    if ((n & (n - 1)) == 0) /* the 1st, 2nd, 4th, 8th... */
        log_warn("cluster: no random bytes for a handshake's nonce (OpenSSL RAND_bytes "
                 "failed, %llu times so far); the handshake is not started",
                 (unsigned long long)n);
    return false;
}

static struct peer_conn *peer_connect(struct peer_net *p, const char *addr, uint64_t now)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (net_parse_addr(addr, false, &ss, &len) != 0 || ss.ss_family != p->local.ss_family)
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
    char canon[GOSSIP_ADDR_MAX + 1];
    peer_format(&ss, canon, sizeof canon);
    struct peer_conn *c = peer_adopt(p, fd, canon, p->mac ? PEER_C_HELLO_SENT : PEER_C_PLAIN,
                                     now);
    if (c && p->mac) {
        p->stats.handshakes_started++;
        if (!peer_nonce(p, c->nonce_a)) {
            peer_close(p, c); /* counted as a handshake failed */
            return NULL;
        }
        peer_send_hello(p, c, NULL, c->nonce_a);
    }
    return c;
}

/* A copy of a frame to seal (member.c's are read-only); NULL without memory. */
static uint8_t *peer_scratch(struct peer_net *p, const uint8_t *bytes, size_t len)
{
    if (len > p->scratch_cap) {
        uint8_t *s = realloc(p->scratch, len);
        if (!s)
            return NULL;
        p->scratch = s;
        p->scratch_cap = len;
    }
    memcpy(p->scratch, bytes, len);
    return p->scratch;
}

/* Seals each frame of q on s and sends it (on c, or as a datagram to addr). */
static bool peer_sendto(struct peer_net *p, const char *addr, const uint8_t *bytes, size_t len);

static void peer_drain(struct peer_net *p, struct peer_queue *q, struct peer_sess *s,
                       struct peer_conn *c, const char *addr)
{
    for (size_t off = 0; off < q->len;) {
        uint32_t l;
        memcpy(&l, q->b + off, 4);
        uint8_t *frame = q->b + off + 4;
        peer_seal(s, frame, l);
        if (c && peer_append(p, c, frame, l))
            p->stats.stream_frames_out++;
        if (!c)
            peer_sendto(p, addr, frame, l);
        off += 4 + l;
    }
    peer_queue_free(q);
}

static void peer_send_stream(struct peer_net *p, const char *addr, const uint8_t *bytes,
                             size_t len, uint64_t now)
{
    struct peer_conn *c = NULL;
    for (uint32_t i = 0; i < p->n_conns && !c; i++)
        if (!p->conns[i]->broken && p->conns[i]->state != PEER_C_WIRE &&
            strcmp(p->conns[i]->addr, addr) == 0)
            c = p->conns[i];
    if (!c)
        c = peer_connect(p, addr, now);
    if (!c) {
        p->stats.send_failures++;
        return;
    }
    c->last_ms = now;
    if (c->state != PEER_C_PLAIN && c->state != PEER_C_OPEN) {
        if (!peer_queue_push(&c->pend, bytes, len, PEER_WBUF_MAX))
            p->stats.queue_drops++;
        return;
    }
    const uint8_t *frame = bytes;
    if (c->state == PEER_C_OPEN) {
        uint8_t *copy = peer_scratch(p, bytes, len);
        if (!copy) {
            p->stats.send_failures++;
            return;
        }
        peer_seal(&c->sess, copy, len);
        frame = copy;
    }
    if (peer_append(p, c, frame, len))
        p->stats.stream_frames_out++;
}

/* ---- datagrams ---- */

static bool peer_sendto(struct peer_net *p, const char *addr, const uint8_t *bytes, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (net_parse_addr(addr, false, &ss, &sl) != 0 ||
        sendto(p->udp, bytes, len, MSG_DONTWAIT, (struct sockaddr *)&ss, sl) < 0) {
        p->stats.send_failures++;
        return false;
    }
    p->stats.datagrams_out++;
    return true;
}

static struct peer_hs *peer_hs_find(struct peer_net *p, const char *addr)
{
    for (uint32_t i = 0; i < PEER_HS_MAX; i++)
        if (p->hs[i].addr[0] && strcmp(p->hs[i].addr, addr) == 0)
            return &p->hs[i];
    return NULL;
}

static void peer_hs_end(struct peer_net *p, struct peer_hs *hs)
{
    peer_queue_free(&hs->q);
    memset(hs, 0, sizeof *hs);
    p->stats.handshakes_pending--;
}

/* addr's handshake of ours, started now (HELLO sent) if there is none;
 * NULL when PEER_HS_MAX are in flight. */
static struct peer_hs *peer_hs_get(struct peer_net *p, const char *addr, uint64_t now)
{
    struct peer_hs *hs = peer_hs_find(p, addr);
    for (uint32_t i = 0; i < PEER_HS_MAX && !hs; i++)
        if (!p->hs[i].addr[0]) {
            if (!peer_nonce(p, p->hs[i].nonce_a)) {
                p->stats.handshakes_failed++;
                return NULL;
            }
            hs = &p->hs[i];
            snprintf(hs->addr, sizeof hs->addr, "%s", addr);
            hs->tries = 1;
            hs->retry_ms = now + PEER_HS_RETRY_MS;
            p->stats.handshakes_started++;
            p->stats.handshakes_pending++;
            peer_send_hello(p, NULL, addr, hs->nonce_a);
        }
    return hs;
}

static void peer_send_dgram(struct peer_net *p, const char *addr, const uint8_t *bytes,
                            size_t len, uint64_t now)
{
    if (!p->mac) {
        peer_sendto(p, addr, bytes, len);
        return;
    }
    struct peer_sess *s = peer_sess_for(p, addr);
    if (s) {
        uint8_t *frame = peer_scratch(p, bytes, len);
        if (!frame) {
            p->stats.send_failures++;
            return;
        }
        peer_seal(s, frame, len);
        peer_sendto(p, addr, frame, len);
        return;
    }
    struct peer_hs *hs = peer_hs_get(p, addr, now);
    if (!hs || !peer_queue_push(&hs->q, bytes, len, PEER_QUEUE_MAX))
        p->stats.queue_drops++;
}

/* Retries handshakes whose answer is late; gives up after PEER_HS_TRIES. */
static void peer_hs_tick(struct peer_net *p, uint64_t now)
{
    for (uint32_t i = 0; i < PEER_HS_MAX; i++) {
        struct peer_hs *hs = &p->hs[i];
        if (!hs->addr[0] || now < hs->retry_ms)
            continue;
        if (hs->tries >= PEER_HS_TRIES) {
            log_debug("cluster: no handshake with %s after %u tries; its frames dropped",
                      hs->addr, hs->tries);
            p->stats.handshakes_failed++;
            p->stats.queue_drops += peer_queue_count(&hs->q);
            peer_hs_end(p, hs);
            continue;
        }
        hs->tries++;
        hs->retry_ms = now + PEER_HS_RETRY_MS;
        peer_send_hello(p, NULL, hs->addr, hs->nonce_a);
    }
}

uint64_t peer_next_deadline(const struct peer_net *p)
{
    uint64_t due = UINT64_MAX;
    for (uint32_t i = 0; i < PEER_HS_MAX && p->stats.handshakes_pending; i++)
        if (p->hs[i].addr[0] && p->hs[i].retry_ms < due)
            due = p->hs[i].retry_ms;
    for (uint32_t i = 0; i < p->n_conns; i++)
        if (p->conns[i]->state == PEER_C_WIRE && p->conns[i]->wire_poll_ms < due)
            due = p->conns[i]->wire_poll_ms;
    return due;
}

/* ---- the handshake ---- */

/* Sends a handshake message on c, or as a datagram to addr. */
static void peer_hs_out(struct peer_net *p, struct peer_conn *c, const char *addr,
                        const uint8_t *msg, size_t len)
{
    if (c)
        peer_append(p, c, msg, len);
    else
        peer_sendto(p, addr, msg, len);
}

static void peer_send_hello(struct peer_net *p, struct peer_conn *c, const char *addr,
                            const uint8_t *nonce_a)
{
    uint8_t m[PEER_HS_HEADER + 80];
    peer_hs_out(p, c, addr, m, peer_hs_encode(m, PEER_HELLO, nonce_a, NULL, 0, NULL));
}

/* True when addr is the cluster address of a member of t (as peer_format()
 * writes addresses: member.c's come from peer_resolve() and the bind). */
static bool peer_is_member(const struct member_table *t, const char *addr)
{
    for (uint32_t i = 1; i < member_count(t); i++)
        if (strcmp(member_at(t, i)->info.cluster_addr, addr) == 0)
            return true;
    return false;
}

/* True when a RESET may go to addr now: fewer than PEER_RESETS_PER_S went
 * there this second (counted). Another address's flood cannot use its share. */
static bool peer_reset_allowed(struct peer_net *p, const char *addr, uint64_t now)
{
    uint64_t second = now / 1000 + 1; /* 0: a free slot */
    struct peer_reset_count *slot = NULL;
    for (uint32_t i = 0; i < PEER_RESET_ADDRS; i++) {
        struct peer_reset_count *r = &p->resets[i];
        if (r->second && strcmp(r->addr, addr) == 0) {
            slot = r;
            break;
        }
        if (!slot || r->second < slot->second)
            slot = r; /* the stalest, if addr has none */
    }
    if (slot->second != second || strcmp(slot->addr, addr) != 0) {
        snprintf(slot->addr, sizeof slot->addr, "%s", addr);
        slot->second = second;
        slot->sent = 0;
    }
    return slot->sent++ < PEER_RESETS_PER_S;
}

/* Answers a datagram on a session we do not hold, when it came from a
 * member's cluster address (a RESET elsewhere helps nobody and gives an
 * attacker tags to test guesses of the secret against) within its rate. */
static void peer_send_reset(struct peer_net *p, const struct member_table *t, const char *to,
                            uint64_t id, uint64_t now)
{
    if (!peer_is_member(t, to) || !peer_reset_allowed(p, to, now))
        return;
    uint8_t m[PEER_HS_HEADER + 8 + PEER_TAG_LEN], tag[EVP_MAX_MD_SIZE];
    size_t body = peer_hs_body_len(PEER_RESET);
    m[0] = PEER_HS_MAGIC;
    m[1] = PEER_RESET;
    m[2] = (uint8_t)body;
    m[3] = (uint8_t)(body >> 8);
    put64(m + PEER_HS_HEADER, id);
    peer_reset_tag(p, id, p->self, to, tag);
    memcpy(m + PEER_HS_HEADER + 8, tag, PEER_TAG_LEN);
    if (peer_sendto(p, to, m, sizeof m))
        p->stats.resets_out++;
}

/* A wrong proof or cookie: the other side lacks the secret (or lies).
 * Logged at most once per PEER_WARN_MS. */
static bool peer_hs_refuse(struct peer_net *p, const char *from, const char *what, uint64_t now)
{
    p->stats.refused_frames++;
    p->stats.handshakes_refused++;
    if (!p->warned_ms || now - p->warned_ms >= PEER_WARN_MS) {
        p->warned_ms = now ? now : 1;
        log_warn("cluster: %s from %s; refused, nothing it sends is accepted (%llu handshakes "
                 "refused so far)",
                 what, from, (unsigned long long)p->stats.handshakes_refused);
    }
    return false;
}

/* True when PEER_RECENT sessions were made within PEER_COOKIE_MS (no room
 * to remember another), or id is one of them (a PROOF replayed). */
static bool peer_recent_refuses(struct peer_net *p, uint64_t id, uint64_t now)
{
    for (uint32_t i = 0; i < PEER_RECENT; i++) {
        const struct peer_recent *r = &p->recent[i];
        if (r->id == id && r->made_ms && now - r->made_ms <= PEER_COOKIE_MS) {
            p->stats.replayed_frames++;
            return true;
        }
    }
    struct peer_recent *r = &p->recent[p->recent_next];
    if (r->made_ms && now - r->made_ms <= PEER_COOKIE_MS) {
        p->stats.handshakes_failed++;
        return true;
    }
    r->id = id;
    r->made_ms = now ? now : 1;
    p->recent_next = (p->recent_next + 1) % PEER_RECENT;
    return false;
}

/* R's side: HELLO and PROOF. ai is the initiator's address, ar ours.
 * False when c (if any) is to be closed. */
static bool peer_on_responder(struct peer_net *p, struct peer_conn *c, const char *ai,
                              const char *ar, const struct peer_hs_msg *m, uint64_t now)
{
    uint8_t out[PEER_HS_HEADER + 80], cookie[EVP_MAX_MD_SIZE], proof[EVP_MAX_MD_SIZE];
    if (c && c->state != (m->kind == PEER_HELLO ? PEER_C_WAIT_HELLO : PEER_C_CHALLENGED))
        return false; /* one HELLO, then one PROOF, on a connection */
    if (m->kind == PEER_HELLO) {
        if (c)
            c->state = PEER_C_CHALLENGED;
        peer_cookie(p, m->nonce_a, now, ai, ar, cookie);
        peer_hs_out(p, c, ai, out, peer_hs_encode(out, PEER_CHALLENGE, m->nonce_a, cookie, now,
                                                  NULL));
        p->stats.hellos_answered++;
        return true;
    }
    peer_cookie(p, m->nonce_a, m->time_ms, ai, ar, cookie);
    if (m->time_ms > now || now - m->time_ms > PEER_COOKIE_MS ||
        !peer_equal(cookie, m->nonce_b, PEER_NONCE_LEN))
        return peer_hs_refuse(p, ai, "a PROOF with a stale or forged cookie", now);
    peer_keyed(p, "initiator", m->nonce_a, m->nonce_b, ai, ar, proof);
    if (!peer_equal(proof, m->proof, PEER_PROOF_LEN))
        return peer_hs_refuse(p, ai, "a PROOF with a wrong proof (another cluster-secret?)", now);
    uint64_t id = peer_sess_id(p, m->nonce_a, m->nonce_b, ai, ar);
    struct peer_sess *s = c ? NULL : peer_sess_find(p, id);
    if (s && strcmp(s->addr, ai) != 0)
        return true;
    if (!s) {
        if (peer_recent_refuses(p, id, now))
            return !c;
        s = c ? &c->sess : peer_sess_slot(p, ai);
        peer_sess_init(p, s, false, m->nonce_a, m->nonce_b, ai, ar, now);
        snprintf(s->addr, sizeof s->addr, "%s", ai);
        p->stats.handshakes_done++;
    }
    peer_keyed(p, "responder", m->nonce_a, m->nonce_b, ai, ar, proof);
    peer_hs_out(p, c, ai, out, peer_hs_encode(out, PEER_ACCEPT, m->nonce_a, m->nonce_b, 0,
                                              proof));
    if (c) {
        c->state = PEER_C_OPEN;
        peer_drain(p, &c->pend, &c->sess, c, NULL);
    }
    return true;
}

/* I's side on a datagram: CHALLENGE and ACCEPT from `from`. */
static void peer_on_initiator(struct peer_net *p, const char *from, const struct peer_hs_msg *m,
                              uint64_t now)
{
    struct peer_hs *hs = peer_hs_find(p, from);
    if (!hs || memcmp(hs->nonce_a, m->nonce_a, PEER_NONCE_LEN) != 0)
        return; /* late, or not ours */
    uint8_t out[PEER_HS_HEADER + 80], proof[EVP_MAX_MD_SIZE];
    if (m->kind == PEER_CHALLENGE) {
        memcpy(hs->nonce_b, m->nonce_b, PEER_NONCE_LEN);
        hs->challenged = true;
        peer_keyed(p, "initiator", hs->nonce_a, hs->nonce_b, p->self, from, proof);
        peer_sendto(p, from, out, peer_hs_encode(out, PEER_PROOF, hs->nonce_a, hs->nonce_b,
                                                 m->time_ms, proof));
        return;
    }
    if (!hs->challenged || memcmp(hs->nonce_b, m->nonce_b, PEER_NONCE_LEN) != 0)
        return;
    peer_keyed(p, "responder", hs->nonce_a, hs->nonce_b, p->self, from, proof);
    if (!peer_equal(proof, m->proof, PEER_PROOF_LEN)) {
        peer_hs_refuse(p, from, PEER_BAD_ACCEPT, now);
        return; /* the handshake goes on: a forged ACCEPT must not end it */
    }
    struct peer_sess *s = peer_sess_slot(p, from);
    peer_sess_init(p, s, true, hs->nonce_a, hs->nonce_b, p->self, from, now);
    snprintf(s->addr, sizeof s->addr, "%s", from);
    p->stats.handshakes_done++;
    peer_drain(p, &hs->q, s, NULL, from);
    peer_hs_end(p, hs);
}

/* I's side on a connection of ours; false when c is to be closed. */
static bool peer_on_initiator_conn(struct peer_net *p, struct peer_conn *c,
                                   const struct peer_hs_msg *m)
{
    uint8_t out[PEER_HS_HEADER + 80], proof[EVP_MAX_MD_SIZE];
    if (memcmp(c->nonce_a, m->nonce_a, PEER_NONCE_LEN) != 0)
        return false;
    if (m->kind == PEER_CHALLENGE && c->state == PEER_C_HELLO_SENT) {
        memcpy(c->nonce_b, m->nonce_b, PEER_NONCE_LEN);
        c->state = PEER_C_PROOF_SENT;
        peer_keyed(p, "initiator", c->nonce_a, c->nonce_b, c->local, c->addr, proof);
        peer_append(p, c, out, peer_hs_encode(out, PEER_PROOF, c->nonce_a, c->nonce_b,
                                              m->time_ms, proof));
        return true;
    }
    if (m->kind != PEER_ACCEPT || c->state != PEER_C_PROOF_SENT ||
        memcmp(c->nonce_b, m->nonce_b, PEER_NONCE_LEN) != 0)
        return false;
    peer_keyed(p, "responder", c->nonce_a, c->nonce_b, c->local, c->addr, proof);
    if (!peer_equal(proof, m->proof, PEER_PROOF_LEN))
        return peer_hs_refuse(p, c->addr, PEER_BAD_ACCEPT, c->last_ms);
    peer_sess_init(p, &c->sess, true, c->nonce_a, c->nonce_b, c->local, c->addr, c->last_ms);
    c->state = PEER_C_OPEN;
    p->stats.handshakes_done++;
    peer_drain(p, &c->pend, &c->sess, c, NULL);
    return true;
}

/* A valid RESET from `from`: forget the session it names. */
static void peer_on_reset(struct peer_net *p, const char *from, const struct peer_hs_msg *m)
{
    struct peer_sess *s = peer_sess_find(p, m->session);
    uint8_t tag[EVP_MAX_MD_SIZE];
    if (!s || strcmp(s->addr, from) != 0)
        return;
    peer_reset_tag(p, m->session, from, p->self, tag);
    if (!peer_equal(tag, m->tag, PEER_TAG_LEN)) {
        p->stats.refused_frames++;
        return;
    }
    log_debug("cluster: %s does not know our session (it restarted?); a new one follows",
              from);
    peer_sess_free(p, s);
    p->stats.resets_in++;
}

/* Handles one handshake message (c: the connection it came on, or NULL for
 * a datagram from `from`); false when c is to be closed. */
static bool peer_on_hs(struct peer_net *p, struct peer_conn *c, const char *from,
                       const struct peer_hs_msg *m, uint64_t now)
{
    if (m->kind == PEER_HELLO || m->kind == PEER_PROOF)
        return peer_on_responder(p, c, c ? c->addr : from, c ? c->local : p->self, m, now);
    if (c)
        return m->kind != PEER_RESET && peer_on_initiator_conn(p, c, m);
    if (m->kind == PEER_RESET)
        peer_on_reset(p, from, m);
    else
        peer_on_initiator(p, from, m, now);
    return true;
}

/* ---- frames in and out ---- */

void peer_flush(struct peer_net *p, struct member_table *t, uint64_t now_ms)
{
    const struct member_out *out;
    uint32_t n = member_outbox(t, &out);
    for (uint32_t i = 0; i < n; i++) {
        const struct member_out *o = &out[i];
        char to[GOSSIP_ADDR_MAX + 1];
        bool sealable =
            o->len >= GOSSIP_HEADER_LEN + GOSSIP_MAC_LEN && (o->bytes[2] & GOSSIP_F_MAC);
        if (p->is_wildcard || !peer_canon(o->to_addr, to, sizeof to) || (p->mac && !sealable))
            p->stats.send_failures++;
        else if (o->stream)
            peer_send_stream(p, to, o->bytes, o->len, now_ms);
        else
            peer_send_dgram(p, to, o->bytes, o->len, now_ms);
    }
    member_outbox_clear(t);
}

/* True when msg, from `from` (on c, or a datagram), may go to the member
 * table (see the top of the file). */
static bool peer_accept(struct peer_net *p, const struct member_table *t, struct peer_conn *c,
                        const char *from, const struct gossip_msg *msg, uint64_t now)
{
    if (!p->mac || !msg->mac) {
        if (p->mac || msg->mac)
            p->stats.refused_frames++;
        return !p->mac && !msg->mac;
    }
    uint64_t id = get64(msg->mac);
    struct peer_sess *s = NULL;
    if (c)
        s = c->state == PEER_C_OPEN && c->sess.id == id ? &c->sess : NULL;
    else if ((s = peer_sess_find(p, id)) && strcmp(s->addr, from) != 0)
        s = NULL;
    if (!s) {
        p->stats.refused_frames++;
        if (!c)
            peer_send_reset(p, t, from, id, now);
        return false;
    }
    return peer_unseal(p, s, msg, now);
}

/* Hands an authenticated frame from `from` to the table and sends its
 * answers; false when it was refused. */
static bool peer_deliver(struct peer_net *p, struct member_table *t, uint64_t now,
                         struct peer_conn *c, const char *from, struct gossip_msg *msg)
{
    if (!peer_accept(p, t, c, from, msg, now))
        return false;
    if (c)
        msg->flags |= GOSSIP_F_STREAM;
    member_on_message(t, now, from, msg);
    peer_flush(p, t, now);
    return true;
}

/* Reads at most PEER_DGRAMS_PER_RUN datagrams (the socket stays readable
 * for the next turn if more wait). */
static void peer_recv_udp(struct peer_net *p, struct member_table *t, uint64_t now)
{
    for (uint32_t got = 0; got < PEER_DGRAMS_PER_RUN;) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        ssize_t n = recvfrom(p->udp, p->dgram, PEER_DGRAM_MAX, MSG_DONTWAIT,
                             (struct sockaddr *)&ss, &len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return;
        got++;
        p->stats.datagrams_in++;
        if (p->is_wildcard) {
            p->stats.refused_frames++;
            continue;
        }
        char from[GOSSIP_ADDR_MAX + 1];
        peer_format(&ss, from, sizeof from);
        size_t used;
        if (n > 0 && p->dgram[0] == PEER_HS_MAGIC) {
            struct peer_hs_msg m;
            if (!p->mac)
                p->stats.refused_frames++;
            else if (peer_hs_decode(p->dgram, (size_t)n, &m, &used) != GOSSIP_OK ||
                     used != (size_t)n)
                p->stats.bad_frames++;
            else
                peer_on_hs(p, NULL, from, &m, now);
            continue;
        }
        struct gossip_msg msg;
        const char *err;
        if (gossip_decode(p->dgram, (size_t)n, &msg, &used, &err) != GOSSIP_OK ||
            used != (size_t)n) {
            p->stats.bad_frames++;
            continue;
        }
        peer_deliver(p, t, now, NULL, from, &msg);
    }
}

static bool peer_half_open(const struct peer_conn *c)
{
    return c->state == PEER_C_WAIT_HELLO || c->state == PEER_C_CHALLENGED ||
           c->state == PEER_C_WIRE;
}

/* Makes room for one more connection in its handshake: closes the oldest
 * when PEER_HALF_OPEN_MAX are. */
static void peer_trim_half_open(struct peer_net *p)
{
    struct peer_conn *oldest = NULL;
    uint32_t n = 0;
    for (uint32_t i = 0; i < p->n_conns; i++) {
        struct peer_conn *c = p->conns[i];
        if (!peer_half_open(c))
            continue;
        n++;
        if (!oldest || c->created_ms < oldest->created_ms)
            oldest = c;
    }
    if (n >= PEER_HALF_OPEN_MAX)
        peer_close(p, oldest);
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
        if (p->is_wildcard) {
            close(fd);
            continue;
        }
        if (p->mac)
            peer_trim_half_open(p);
        struct peer_conn *c =
            peer_adopt(p, fd, from, p->mac ? PEER_C_WAIT_HELLO : PEER_C_PLAIN, now);
        if (c)
            c->sniff = true;
    }
}

static bool peer_is_open(const struct peer_conn *c)
{
    return c->state == PEER_C_PLAIN || c->state == PEER_C_OPEN;
}

/* Checks what starts at b (len > 0 bytes, perhaps not all of it) before it
 * is waited for: a connection in its handshake takes only handshake
 * messages; a frame's header must carry a MAC exactly when we have a secret
 * (the body's length gossip_decode() checks). False (counted) when not. */
static bool peer_stream_head_ok(struct peer_net *p, const struct peer_conn *c,
                                const uint8_t *b, size_t len)
{
    if (b[0] == PEER_HS_MAGIC)
        return true;
    if (!peer_is_open(c) || (len >= 3 && p->mac != !!(b[2] & GOSSIP_F_MAC))) {
        p->stats.refused_frames++;
        return false;
    }
    return true;
}

/* Handles the whole messages and frames at the head of c's buffer: *off
 * advances past them. False when c is to be closed. */
static bool peer_parse_stream(struct peer_net *p, struct member_table *t, struct peer_conn *c,
                              size_t *off, uint64_t now)
{
    while (*off < c->rlen && !c->broken) {
        const uint8_t *b = c->rbuf + *off;
        size_t len = c->rlen - *off, used;
        if (!peer_stream_head_ok(p, c, b, len))
            return false;
        if (b[0] == PEER_HS_MAGIC) {
            struct peer_hs_msg m;
            enum gossip_status st = p->mac ? peer_hs_decode(b, len, &m, &used) : GOSSIP_BAD;
            if (st == GOSSIP_MORE)
                return true;
            if (st == GOSSIP_BAD) {
                p->stats.refused_frames += !p->mac;
                p->stats.bad_frames += p->mac;
                return false;
            }
            if (!peer_on_hs(p, c, c->addr, &m, now))
                return false;
            *off += used;
            continue;
        }
        struct gossip_msg msg;
        const char *err;
        enum gossip_status st = gossip_decode(b, len, &msg, &used, &err);
        if (st == GOSSIP_MORE)
            return true;
        if (st == GOSSIP_BAD) {
            p->stats.bad_frames++;
            return false;
        }
        p->stats.stream_frames_in++;
        /* member_on_message() may send on this very connection (its answer):
         * that appends to wbuf, never touches rbuf. */
        if (!peer_deliver(p, t, now, c, c->addr, &msg))
            return false;
        *off += used;
    }
    return true;
}

/* How many bytes c may read now (its buffer grown for them): a connection
 * in its handshake one message at most, an open one a whole frame, all
 * connections together PEER_RBUF_TOTAL_MAX. 0 when c may take no more (it
 * is to be closed; counted). */
static size_t peer_rbuf_room(struct peer_net *p, struct peer_conn *c)
{
    size_t limit = peer_is_open(c) ? PEER_RBUF_MAX : PEER_HS_MSG_MAX;
    if (c->rlen < limit && c->rcap - c->rlen < 4096 && c->rcap < limit) {
        size_t cap = c->rcap ? c->rcap * 2 : 65536;
        cap = cap < limit ? cap : limit;
        uint8_t *r = p->stats.read_buffered - c->rcap + cap <= PEER_RBUF_TOTAL_MAX
                         ? realloc(c->rbuf, cap)
                         : NULL;
        if (r) {
            p->stats.read_buffered += cap - c->rcap;
            c->rbuf = r;
            c->rcap = cap;
        }
    }
    size_t end = c->rcap < limit ? c->rcap : limit;
    if (c->rlen >= end)
        p->stats.read_overflows++;
    return c->rlen < end ? end - c->rlen : 0;
}

/* Handles what c's buffer holds and keeps the rest; false when c was closed. */
static bool peer_consume(struct peer_net *p, struct member_table *t, struct peer_conn *c,
                         uint64_t now)
{
    size_t off = 0;
    if (!peer_parse_stream(p, t, c, &off, now)) {
        peer_close(p, c);
        return false;
    }
    if (off) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
    return true;
}

/* Whether the HELLO header bytes at h[0..n) (n >= 1, h[0] WIRE_MAGIC)
 * can start a HELLO. */
static bool peer_wire_head_ok(const uint8_t *h, size_t n)
{
    return (n < 2 || h[1] == WIRE_VERSION_HANDSHAKE) && (n < 3 || h[2] == WIRE_HELLO) &&
           (n < 4 || h[3] == 0) &&
           (n < 8 || ((uint32_t)h[4] | (uint32_t)h[5] << 8 | (uint32_t)h[6] << 16 |
                      (uint32_t)h[7] << 24) == WIRE_HELLO_LEN);
}

/* A connection accepted and not read yet: is it the node-to-node protocol?
 * Peeks (reads nothing): 1 when it is not (read it as a gossip stream), 0
 * while its HELLO's header is not all in (c waits in PEER_C_WIRE, out of
 * the epoll set, peeked again by peer_run()), -1 when c is gone: handed to
 * the wire sink, or closed (not a HELLO, no sink, EOF). */
static int peer_sniff(struct peer_net *p, struct peer_conn *c, uint64_t now)
{
    uint8_t h[PEER_WIRE_PEEK];
    ssize_t n = recv(c->fd, h, sizeof h, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    if (n <= 0) {
        peer_close(p, c);
        return -1;
    }
    if (h[0] != WIRE_MAGIC) {
        c->sniff = false;
        return 1;
    }
    if (!p->wire_sink || !peer_wire_head_ok(h, (size_t)n)) {
        p->stats.bad_frames++;
        peer_close(p, c);
        return -1;
    }
    if (c->events) { /* level-triggered: peeked bytes would wake us forever */
        epoll_ctl(p->ep, EPOLL_CTL_DEL, c->fd, NULL);
        c->events = 0;
    }
    if (n < PEER_WIRE_PEEK) {
        c->state = PEER_C_WIRE;
        c->wire_poll_ms = now + PEER_WIRE_POLL_MS;
        return 0;
    }
    int fd = c->fd;
    c->fd = -1;
    p->stats.wire_handed++;
    peer_close(p, c);
    p->wire_sink(p->wire_arg, (uint32_t)h[WIRE_HEADER_LEN + 6] | (uint32_t)h[WIRE_HEADER_LEN + 7] << 8,
                 fd);
    return -1;
}

/* Reads c and handles what it got, a read at a time (so that a connection
 * in its handshake never holds more than a handshake message); false when
 * c was closed. */
static bool peer_read(struct peer_net *p, struct member_table *t, struct peer_conn *c,
                      uint64_t now)
{
    if (c->sniff) {
        int r = peer_sniff(p, c, now);
        if (r <= 0)
            return r == 0;
    }
    for (;;) {
        size_t room = peer_rbuf_room(p, c);
        if (!room) {
            peer_close(p, c);
            return false;
        }
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, room, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n <= 0) {
            peer_close(p, c);
            return false;
        }
        c->rlen += (size_t)n;
        c->last_ms = now;
        if (!peer_consume(p, t, c, now))
            return false;
        if (c->broken)
            return true; /* a write failed: closed by peer_run()'s sweep */
    }
}

/* Forgets sessions silent for PEER_SESSION_IDLE_MS. */
static void peer_sess_expire(struct peer_net *p, uint64_t now)
{
    for (uint32_t i = 0; i < PEER_SESSIONS_MAX && p->stats.sessions; i++)
        if (p->sess[i].id && now - p->sess[i].heard_ms > PEER_SESSION_IDLE_MS)
            peer_sess_free(p, &p->sess[i]);
}

void peer_run(struct peer_net *p, struct member_table *t, uint64_t now_ms)
{
    struct epoll_event ev[64];
    int n = epoll_wait(p->ep, ev, 64, 0);
    for (int i = 0; i < n; i++) {
        uint64_t tag = ev[i].data.u64;
        if (tag == PEER_TAG_UDP) {
            peer_recv_udp(p, t, now_ms);
            continue;
        }
        if (tag == PEER_TAG_LSN) {
            peer_accept_conns(p, now_ms);
            continue;
        }
        /* by id: the connection may have been closed by an earlier event,
         * and a new one made at the same address or on the same fd */
        struct peer_conn *c = NULL;
        for (uint32_t k = 0; k < p->n_conns && !c; k++)
            c = p->conns[k]->id == tag ? p->conns[k] : NULL;
        if (!c) {
            p->stats.stale_events++;
            continue;
        }
        if (c->broken)
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
        if (c->state == PEER_C_WIRE && now_ms >= c->wire_poll_ms) {
            if (now_ms - c->created_ms > PEER_WIRE_PEEK_MS) {
                p->stats.bad_frames++; /* its HELLO never came whole */
                peer_close(p, c);
                continue;
            }
            if (peer_sniff(p, c, now_ms) < 0)
                continue; /* gone: the last one moved to k */
        }
        bool stuck = !peer_is_open(c) && now_ms - c->created_ms > PEER_COOKIE_MS;
        if (c->broken || stuck || (now_ms - c->last_ms > PEER_IDLE_MS && c->woff == c->wlen))
            peer_close(p, c); /* the last one moved to k */
        else
            k++;
    }
    if (p->mac) {
        peer_hs_tick(p, now_ms);
        peer_sess_expire(p, now_ms);
    }
}

/* ---- life cycle ---- */

static int peer_socket(struct peer_net *p, int type, const struct sockaddr_storage *ss,
                       socklen_t len, uint64_t tag)
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
    struct epoll_event e = {.events = EPOLLIN, .data.u64 = tag};
    if (epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &e) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

/* The key every keyed hash uses: PBKDF2-HMAC-SHA256 of the secret, so that
 * each guess of a secret tested against a tag seen on the wire costs
 * PEER_KDF_ITERATIONS hashes. 0 or -EIO. */
static int peer_derive(const char *secret, size_t len, uint8_t key[PEER_KEY_LEN])
{
    return PKCS5_PBKDF2_HMAC(secret, (int)len, (const unsigned char *)PEER_KDF_SALT,
                             (int)strlen(PEER_KDF_SALT), PEER_KDF_ITERATIONS, EVP_sha256(),
                             PEER_KEY_LEN, key) == 1
               ? 0
               : -EIO;
}

static bool peer_is_wildcard(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
    return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
}

bool peer_bind_is_wildcard(const char *host)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char addr[300];
    snprintf(addr, sizeof addr, strchr(host, ':') ? "[%s]:1" : "%s:1", host);
    return net_parse_addr(addr, false, &ss, &len) == 0 && peer_is_wildcard(&ss);
}

int peer_create(const char *host, int port, const char *secret, struct peer_net **out)
{
    char addr[300];
    snprintf(addr, sizeof addr, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    struct sockaddr_storage ss;
    socklen_t len;
    if (net_parse_addr(addr, false, &ss, &len) != 0) {
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
    p->next_conn_id = PEER_TAG_LSN;
    p->ep = epoll_create1(EPOLL_CLOEXEC);
    p->dgram = malloc(PEER_DGRAM_MAX);
    p->sess = calloc(PEER_SESSIONS_MAX, sizeof *p->sess);
    p->hs = calloc(PEER_HS_MAX, sizeof *p->hs);
    p->recent = calloc(PEER_RECENT, sizeof *p->recent);
    int rc = p->ep < 0 ? -errno : !p->dgram || !p->sess || !p->hs || !p->recent ? -ENOMEM : 0;
    if (rc == 0 && RAND_bytes(p->cookie_key, sizeof p->cookie_key) != 1)
        rc = -EIO;
    if (rc == 0 && slen && peer_derive(secret, slen, p->key) != 0)
        rc = -EIO;
    if (rc == 0 && (p->udp = peer_socket(p, SOCK_DGRAM, &ss, len, PEER_TAG_UDP)) < 0)
        rc = p->udp;
    if (rc == 0 && (p->lsn = peer_socket(p, SOCK_STREAM, &ss, len, PEER_TAG_LSN)) < 0)
        rc = p->lsn;
    if (rc != 0) {
        log_error("cluster: cannot listen on %s (cluster-port, UDP and TCP): %s", addr,
                  strerror(-rc));
        peer_destroy(p);
        return rc;
    }
    peer_format(&ss, p->self, sizeof p->self);
    p->local = ss;
    p->local_len = len;
    if (ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&p->local)->sin6_port = 0;
    else
        ((struct sockaddr_in *)&p->local)->sin_port = 0;
    p->mac = slen > 0;
    p->is_wildcard = peer_is_wildcard(&ss);
    if (p->is_wildcard)
        log_warn("cluster: bind %s is a wildcard address, which peers cannot reach as ours: "
                 "this node is a cluster of one and its cluster-port takes no peers (bind a "
                 "specific address to form a cluster)",
                 host);
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
    OPENSSL_cleanse(p->key, sizeof p->key);
    OPENSSL_cleanse(p->cookie_key, sizeof p->cookie_key);
    for (uint32_t i = 0; p->hs && i < PEER_HS_MAX; i++)
        peer_queue_free(&p->hs[i].q);
    if (p->sess)
        OPENSSL_cleanse(p->sess, PEER_SESSIONS_MAX * sizeof *p->sess);
    free(p->dgram);
    free(p->scratch);
    free(p->sess);
    free(p->hs);
    free(p->recent);
    free(p);
}

void peer_set_wire_sink(struct peer_net *p, peer_wire_sink *sink, void *arg)
{
    p->wire_sink = sink;
    p->wire_arg = arg;
}

const uint8_t *peer_secret_key(const struct peer_net *p, size_t *len)
{
    *len = p->mac ? sizeof p->key : 0;
    return p->mac ? p->key : NULL;
}

int peer_fd(const struct peer_net *p)
{
    return p->ep;
}

const struct peer_stats *peer_get_stats(const struct peer_net *p)
{
    return &p->stats;
}
