/* Unit tests for peer (the gossip transport) over real loopback sockets.
 * Transports with a member table each (nodes), on 127.0.0.x, driven by
 * pump() until a condition holds or a deadline passes:
 * - two nodes with the same cluster-secret join over a stream and probe each
 *   other by datagrams, each kind through a handshake;
 * - with another secret (or none) nothing gets through, in both directions,
 *   by datagram and by stream: each side counts the other's refusals;
 * - a raw UDP socket speaks the handshake as peer.c's top comment documents
 *   (so the comment is checked too), seals a PING and gets a sealed ACK back;
 *   the same bytes again are a replay, the same bytes sent to a third node
 *   are refused there (and a RESET comes back), a changed byte is refused,
 *   an older number within the window still passes;
 * - a node destroyed and created again on the same address answers probes
 *   again within 5 s (RESET, then a new session; the time is printed);
 * - thousands of HELLOs and forged PROOFs make no state; a handshake nobody
 *   answers is given up (its frames dropped and counted); connections that
 *   never finish their handshake are capped. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "gossip.h"
#include "member.h"
#include "peer.h"

#define SECRET "the cluster secret"
#define NODES_MAX 4

struct node {
    struct peer_net *peer;
    struct member_table *members;
    struct gossip_info info;
    int port;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A node on ip: a free port (tried at random) unless port is given. */
static void node_open(struct node *n, const char *ip, int port, const char *secret, unsigned idx)
{
    memset(n, 0, sizeof *n);
    for (int attempt = 0; attempt < 50 && !n->peer; attempt++) {
        n->port = port ? port
                       : 30000 + (int)((now_ms() * 7919 + (uint64_t)attempt * 104729 + idx * 31) %
                                       20000);
        if (peer_create(ip, n->port, secret, &n->peer) != 0)
            n->peer = NULL;
    }
    assert_non_null(n->peer);
    struct member_config mc;
    member_config_default(&mc);
    mc.mac = secret != NULL;
    mc.probe_interval_ms = 200;
    mc.probe_timeout_ms = 100;
    mc.seed = idx + 1;
    n->info.weight = 100;
    snprintf(n->info.id, sizeof n->info.id, "%040x", idx + 1);
    snprintf(n->info.cluster_addr, sizeof n->info.cluster_addr, "%s:%d", ip, n->port);
    snprintf(n->info.client_addr, sizeof n->info.client_addr, "%s:%d", ip, n->port - 10000);
    assert_int_equal(member_create(&mc, &n->info, now_ms(), &n->members), 0);
}

static void node_close(struct node *n)
{
    peer_destroy(n->peer);
    member_destroy(n->members);
    n->peer = NULL;
    n->members = NULL;
}

/* Runs the nodes (transport, timers, outbox) until done(arg) or timeout_ms. */
static bool pump(struct node **nodes, int count, bool (*done)(void *), void *arg,
                 uint64_t timeout_ms)
{
    uint64_t end = now_ms() + timeout_ms;
    while (!done(arg)) {
        if (now_ms() > end)
            return false;
        struct pollfd pfd[NODES_MAX];
        for (int i = 0; i < count; i++)
            pfd[i] = (struct pollfd){.fd = peer_fd(nodes[i]->peer), .events = POLLIN};
        poll(pfd, (nfds_t)count, 5);
        for (int i = 0; i < count; i++) {
            struct node *n = nodes[i];
            uint64_t now = now_ms();
            peer_run(n->peer, n->members, now);
            if (now >= member_next_deadline(n->members))
                member_tick(n->members, now);
            peer_flush(n->peer, n->members, now);
            member_events_clear(n->members);
        }
    }
    return true;
}

/* Makes a know b (a push-pull answer from b, handed over directly). */
static void teach(struct node *a, const struct node *b)
{
    struct gossip_writer w;
    gossip_writer_init(&w);
    gossip_begin(&w, GOSSIP_PUSH_PULL, GOSSIP_F_REPLY, 0, b->info.id, NULL, NULL);
    struct gossip_update u = {.kind = GOSSIP_NODE, .incarnation = 1, .info = b->info,
                              .state = MEMBER_UP};
    gossip_add_update(&w, &u);
    gossip_end(&w);
    struct gossip_msg msg;
    size_t used;
    const char *err;
    assert_int_equal(gossip_decode(w.data, w.len, &msg, &used, &err), GOSSIP_OK);
    member_on_message(a->members, now_ms(), b->info.cluster_addr, &msg);
    member_outbox_clear(a->members);
    member_events_clear(a->members);
    gossip_writer_fini(&w);
    assert_non_null(member_find(a->members, b->info.id));
}

static const struct peer_stats *stats(const struct node *n)
{
    return peer_get_stats(n->peer);
}

/* Probes sent minus probes failed (acked, or the one in flight). */
static uint64_t probes_acked(const struct node *n)
{
    const struct member_stats *s = member_get_stats(n->members);
    return s->probes - s->probe_failures;
}

/* ---- two nodes with one secret ---- */

struct pair {
    struct node *a, *b;
};

/* a on 127.0.0.1 with secret_a, b on 127.0.0.2 with secret_b. */
static void pair_open(struct node *a, struct node *b, const char *secret_a, const char *secret_b)
{
    node_open(a, "127.0.0.1", 0, secret_a, 0);
    node_open(b, "127.0.0.2", 0, secret_b, 1);
}

static bool joined(void *arg)
{
    struct pair *p = arg;
    return member_count(p->a->members) == 2 && member_count(p->b->members) == 2;
}

static bool probing(void *arg)
{
    struct pair *p = arg;
    return probes_acked(p->a) >= 4 && probes_acked(p->b) >= 4;
}

static void test_peer_same_secret_exchanges_frames(void **state)
{
    (void)state;
    struct node a, b;
    pair_open(&a, &b, SECRET, SECRET);
    struct node *all[] = {&a, &b};
    struct pair p = {&a, &b};
    assert_int_equal(member_add_seed(a.members, b.info.cluster_addr), 0);
    member_join(a.members, now_ms());
    assert_true(pump(all, 2, joined, &p, 3000)); /* a push-pull each way, on a stream */
    assert_true(stats(&b)->stream_frames_in >= 1 && stats(&a)->stream_frames_in >= 1);
    assert_true(pump(all, 2, probing, &p, 5000)); /* PING and ACK, datagrams */
    for (int i = 0; i < 2; i++) {
        const struct peer_stats *s = stats(all[i]);
        assert_int_equal(s->refused_frames, 0);
        assert_int_equal(s->replayed_frames, 0);
        assert_int_equal(s->queue_drops, 0);
        assert_true(s->handshakes_done >= 2); /* the connection and a datagram session */
        assert_true(s->datagrams_in >= 4);
    }
    node_close(&a);
    node_close(&b);
}

/* ---- other secrets ---- */

static bool both_refused(void *arg)
{
    struct pair *p = arg;
    return stats(p->a)->refused_frames >= 2 && stats(p->b)->refused_frames >= 2 &&
           member_get_stats(p->a->members)->probes >= 3 &&
           member_get_stats(p->b->members)->probes >= 3;
}

/* a and b know each other (taught, not by the network) and probe each other
 * by datagrams; each also asks to join the other over a stream. Nothing
 * either sends may reach the other's member table. */
static void refuse_each_other(const char *secret_a, const char *secret_b)
{
    struct node a, b;
    pair_open(&a, &b, secret_a, secret_b);
    struct node *all[] = {&a, &b};
    struct pair p = {&a, &b};
    teach(&a, &b);
    teach(&b, &a);
    uint64_t in_a = member_get_stats(a.members)->frames_in; /* the lessons */
    uint64_t in_b = member_get_stats(b.members)->frames_in;
    assert_int_equal(member_add_seed(b.members, a.info.cluster_addr), 0);
    assert_int_equal(member_add_seed(a.members, b.info.cluster_addr), 0);
    member_join(b.members, now_ms());
    member_join(a.members, now_ms());
    assert_true(pump(all, 2, both_refused, &p, 5000));
    assert_true(stats(&a)->connections_in >= 1 && stats(&b)->connections_in >= 1);
    assert_int_equal(member_get_stats(a.members)->frames_in, in_a);
    assert_int_equal(member_get_stats(b.members)->frames_in, in_b);
    assert_true(member_get_stats(a.members)->probe_failures >= 2);
    assert_true(member_get_stats(b.members)->probe_failures >= 2);
    node_close(&a);
    node_close(&b);
}

static void test_peer_wrong_secret_never_gets_a_frame_through(void **state)
{
    (void)state;
    refuse_each_other(SECRET, "another secret");
}

static void test_peer_no_secret_and_a_secret_stay_apart(void **state)
{
    (void)state;
    refuse_each_other(SECRET, NULL);
    refuse_each_other(NULL, SECRET);
}

/* ---- the handshake spoken by hand ---- */

struct raw {
    int fd;
    char addr[GOSSIP_ADDR_MAX + 1];
    uint8_t key_out[32], key_in[32];
    uint64_t id;
};

static void raw_open(struct raw *r, const char *ip)
{
    memset(r, 0, sizeof *r);
    r->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, ip, &sa.sin_addr);
    assert_int_equal(bind(r->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    getsockname(r->fd, (struct sockaddr *)&sa, &len);
    snprintf(r->addr, sizeof r->addr, "%s:%d", ip, ntohs(sa.sin_port));
}

static void raw_send(const struct raw *r, const struct node *to, const uint8_t *b, size_t len)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)to->port)};
    char ip[32];
    snprintf(ip, sizeof ip, "%.*s", (int)(strchr(to->info.cluster_addr, ':') -
                                          to->info.cluster_addr), to->info.cluster_addr);
    inet_pton(AF_INET, ip, &sa.sin_addr);
    assert_int_equal(sendto(r->fd, b, len, 0, (struct sockaddr *)&sa, sizeof sa), (ssize_t)len);
}

/* Runs n until a datagram comes back to r (true, in buf) or 300 ms pass. */
static bool raw_answer(struct raw *r, struct node *n, uint8_t *buf, size_t cap, ssize_t *len)
{
    uint64_t end = now_ms() + 300;
    while (now_ms() < end) {
        struct pollfd pfd[2] = {{.fd = r->fd, .events = POLLIN},
                                {.fd = peer_fd(n->peer), .events = POLLIN}};
        poll(pfd, 2, 5);
        uint64_t now = now_ms();
        peer_run(n->peer, n->members, now);
        peer_flush(n->peer, n->members, now);
        *len = recv(r->fd, buf, cap, MSG_DONTWAIT);
        if (*len > 0)
            return true;
    }
    return false;
}

/* HMAC-SHA256(key, label | a | b | len(I) I | len(R) R), as peer.c says. */
static void transcript(const void *key, size_t key_len, const char *label, const uint8_t *a,
                       const uint8_t *b, const char *ai, const char *ar, uint8_t *out)
{
    uint8_t buf[512];
    size_t n = 0;
    memcpy(buf, label, strlen(label));
    n += strlen(label);
    memcpy(buf + n, a, 16);
    memcpy(buf + n + 16, b, 16);
    n += 32;
    buf[n++] = (uint8_t)strlen(ai);
    memcpy(buf + n, ai, strlen(ai));
    n += strlen(ai);
    buf[n++] = (uint8_t)strlen(ar);
    memcpy(buf + n, ar, strlen(ar));
    n += strlen(ar);
    unsigned len = 0;
    HMAC(EVP_sha256(), key, (int)key_len, buf, n, out, &len);
}

static void hs_header(uint8_t *m, enum peer_hs_kind kind, size_t body)
{
    m[0] = PEER_HS_MAGIC;
    m[1] = (uint8_t)kind;
    m[2] = (uint8_t)body;
    m[3] = 0;
}

/* HELLO, CHALLENGE, PROOF, ACCEPT between r (as I) and n (as R). */
static void raw_handshake(struct raw *r, struct node *n, const char *secret)
{
    uint8_t m[128], in[256], na[16], proof[64];
    ssize_t len;
    struct peer_hs_msg hm;
    size_t used;
    for (int i = 0; i < 16; i++)
        na[i] = (uint8_t)(now_ms() + (uint64_t)i * 17);
    memset(m, 0, sizeof m);
    hs_header(m, PEER_HELLO, 56);
    memcpy(m + 4, na, 16);
    raw_send(r, n, m, 60);
    assert_true(raw_answer(r, n, in, sizeof in, &len));
    assert_true(len <= 60); /* never more than asked for */
    assert_int_equal(peer_hs_decode(in, (size_t)len, &hm, &used), GOSSIP_OK);
    assert_int_equal(hm.kind, PEER_CHALLENGE);
    assert_memory_equal(hm.nonce_a, na, 16);
    uint8_t nb[16];
    memcpy(nb, hm.nonce_b, 16);
    hs_header(m, PEER_PROOF, 72);
    memcpy(m + 4, na, 16);
    memcpy(m + 20, nb, 16);
    memcpy(m + 36, in + 36, 8); /* the time, echoed */
    transcript(secret, strlen(secret), "initiator", na, nb, r->addr, n->info.cluster_addr, proof);
    memcpy(m + 44, proof, 32);
    raw_send(r, n, m, 76);
    bool answered = raw_answer(r, n, in, sizeof in, &len);
    if (strcmp(secret, SECRET) != 0) {
        assert_false(answered);
        return;
    }
    assert_true(answered);
    assert_int_equal(peer_hs_decode(in, (size_t)len, &hm, &used), GOSSIP_OK);
    assert_int_equal(hm.kind, PEER_ACCEPT);
    transcript(secret, strlen(secret), "responder", na, nb, r->addr, n->info.cluster_addr, proof);
    assert_memory_equal(hm.proof, proof, 32);
    transcript(secret, strlen(secret), "key i>r", na, nb, r->addr, n->info.cluster_addr,
               r->key_out);
    transcript(secret, strlen(secret), "key r>i", na, nb, r->addr, n->info.cluster_addr,
               r->key_in);
    transcript(secret, strlen(secret), "session id", na, nb, r->addr, n->info.cluster_addr,
               proof);
    r->id = 0;
    for (int i = 0; i < 8; i++)
        r->id |= (uint64_t)proof[i] << (8 * i);
}

static void put64(uint8_t *b, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

/* A PING from r to n's id, sealed with sequence number seq; its length. */
static size_t raw_ping(const struct raw *r, const struct node *n, uint64_t seq, uint8_t *out)
{
    static const char other_id[] = "ffeeddccbbaa99887766554433221100ffeeddcc";
    struct gossip_writer w;
    gossip_writer_init(&w);
    gossip_begin(&w, GOSSIP_PING, GOSSIP_F_MAC, (uint32_t)seq, other_id, n->info.id, NULL);
    size_t off = gossip_end(&w);
    size_t len = w.len - off;
    memcpy(out, w.data + off, len);
    gossip_writer_fini(&w);
    uint8_t *mac = out + len - GOSSIP_MAC_LEN, tag[64];
    put64(mac, r->id);
    put64(mac + 8, seq);
    unsigned tl = 0;
    HMAC(EVP_sha256(), r->key_out, 32, out, len - 16, tag, &tl);
    memcpy(mac + 16, tag, 16);
    return len;
}

/* Sends a frame from r; true when n answered with an ACK sealed on r's session. */
static bool raw_pinged(struct raw *r, struct node *n, const uint8_t *frame, size_t len)
{
    uint8_t in[2048], tag[64];
    ssize_t got;
    raw_send(r, n, frame, len);
    if (!raw_answer(r, n, in, sizeof in, &got))
        return false;
    struct gossip_msg msg;
    size_t used;
    const char *err;
    if (gossip_decode(in, (size_t)got, &msg, &used, &err) != GOSSIP_OK)
        return false; /* a RESET */
    assert_int_equal(msg.type, GOSSIP_ACK);
    assert_non_null(msg.mac);
    unsigned tl = 0;
    HMAC(EVP_sha256(), r->key_in, 32, in, msg.signed_len + 16, tag, &tl);
    assert_memory_equal(msg.mac + 16, tag, 16);
    return true;
}

static void test_peer_replayed_or_copied_datagrams_are_refused(void **state)
{
    (void)state;
    struct node b, c;
    node_open(&b, "127.0.0.2", 0, SECRET, 1);
    node_open(&c, "127.0.0.3", 0, SECRET, 2);
    struct raw r;
    raw_open(&r, "127.0.0.4");
    raw_handshake(&r, &b, SECRET);
    assert_int_equal(stats(&b)->sessions, 1);

    uint8_t f1[512], f2[512], f3[512];
    size_t len = raw_ping(&r, &b, 1, f1);
    assert_true(raw_pinged(&r, &b, f1, len));
    assert_int_equal(stats(&b)->replayed_frames, 0);

    /* The same bytes again: a replay. */
    assert_false(raw_pinged(&r, &b, f1, len));
    assert_int_equal(stats(&b)->replayed_frames, 1);

    /* Out of order within the window: 3 then 2 both pass; 2 again does not. */
    raw_ping(&r, &b, 3, f3);
    raw_ping(&r, &b, 2, f2);
    assert_true(raw_pinged(&r, &b, f3, len));
    assert_true(raw_pinged(&r, &b, f2, len));
    assert_false(raw_pinged(&r, &b, f2, len));
    assert_int_equal(stats(&b)->replayed_frames, 2);

    /* A changed byte: refused. */
    uint64_t refused = stats(&b)->refused_frames;
    len = raw_ping(&r, &b, 4, f1);
    f1[GOSSIP_HEADER_LEN + 1] ^= 1;
    assert_false(raw_pinged(&r, &b, f1, len));
    assert_int_equal(stats(&b)->refused_frames, refused + 1);

    /* A frame for b copied to c (same secret): c holds no such session. */
    len = raw_ping(&r, &b, 5, f1);
    uint8_t in[256];
    ssize_t got;
    raw_send(&r, &c, f1, len);
    assert_true(raw_answer(&r, &c, in, sizeof in, &got)); /* the RESET */
    struct peer_hs_msg hm;
    size_t used;
    assert_int_equal(peer_hs_decode(in, (size_t)got, &hm, &used), GOSSIP_OK);
    assert_int_equal(hm.kind, PEER_RESET);
    assert_true(hm.session == r.id);
    assert_int_equal(stats(&c)->refused_frames, 1);
    assert_int_equal(member_get_stats(c.members)->frames_in, 0);
    /* ... and it still passes at b, once. */
    assert_true(raw_pinged(&r, &b, f1, len));

    /* A handshake with another secret makes no session. */
    struct raw wrong;
    raw_open(&wrong, "127.0.0.5");
    raw_handshake(&wrong, &c, "another secret");
    assert_int_equal(stats(&c)->handshakes_refused, 1);
    assert_int_equal(stats(&c)->sessions, 0);

    close(r.fd);
    close(wrong.fd);
    node_close(&b);
    node_close(&c);
}

/* ---- a restarted peer ---- */

struct restart {
    struct node *a;
    uint64_t acked;
};

static bool acked_again(void *arg)
{
    struct restart *r = arg;
    return probes_acked(r->a) >= r->acked + 4;
}

static void test_peer_restarted_peer_talks_again_promptly(void **state)
{
    (void)state;
    struct node a, b;
    pair_open(&a, &b, SECRET, SECRET);
    struct node *all[] = {&a, &b};
    struct pair p = {&a, &b};
    teach(&a, &b);
    teach(&b, &a);
    assert_true(pump(all, 2, probing, &p, 5000));

    /* b restarts on its address, its sessions lost; it knows nobody and
     * only answers. a must notice (RESET) and make a new session. */
    int port = b.port;
    node_close(&b);
    node_open(&b, "127.0.0.2", port, SECRET, 1);
    struct restart r = {&a, probes_acked(&a) + 1};
    uint64_t start = now_ms();
    assert_true(pump(all, 2, acked_again, &r, 5000)); /* the bound for "up again" */
    printf("peer: the restarted peer answered probes again after %llu ms\n",
           (unsigned long long)(now_ms() - start));
    assert_int_equal(member_find(a.members, b.info.id)->health, MEMBER_ALIVE);
    assert_true(stats(&a)->resets_in >= 1);
    assert_true(stats(&b)->resets_out >= 1);
    node_close(&a);
    node_close(&b);
}

/* ---- floods ---- */

struct flood {
    struct node *n;
    uint64_t want;
};

static bool answered(void *arg)
{
    struct flood *f = arg;
    return stats(f->n)->hellos_answered + stats(f->n)->handshakes_refused >= f->want;
}

static void test_peer_hello_flood_makes_no_state(void **state)
{
    (void)state;
    struct node b;
    node_open(&b, "127.0.0.2", 0, SECRET, 1);
    struct node *all[] = {&b};
    struct raw r[4];
    for (int i = 0; i < 4; i++)
        raw_open(&r[i], "127.0.0.6");
    struct flood f = {&b, 0};
    uint8_t m[128];
    memset(m, 0, sizeof m);
    for (uint32_t round = 0; round < 40; round++) {
        for (uint32_t k = 0; k < 100; k++) {
            uint32_t i = round * 100 + k;
            hs_header(m, PEER_HELLO, 56);
            memcpy(m + 4, &i, sizeof i);
            raw_send(&r[i % 4], &b, m, 60);
            /* and a PROOF with a made-up cookie and proof */
            hs_header(m, PEER_PROOF, 72);
            raw_send(&r[(i + 1) % 4], &b, m, 76);
        }
        f.want += 200;
        assert_true(pump(all, 1, answered, &f, 3000));
    }
    const struct peer_stats *s = stats(&b);
    assert_int_equal(s->hellos_answered, 4000);
    assert_int_equal(s->handshakes_refused, 4000);
    assert_int_equal(s->sessions, 0);
    assert_int_equal(s->handshakes_pending, 0);
    assert_int_equal(s->handshakes_done, 0);
    for (int i = 0; i < 4; i++)
        close(r[i].fd);
    node_close(&b);
}

static bool gave_up(void *arg)
{
    struct node *n = arg;
    return stats(n)->handshakes_failed >= 2 && stats(n)->handshakes_pending == 0;
}

/* Probes to an address where nothing answers wait for a handshake that is
 * retried and then given up: the frames are dropped and counted, nothing
 * stays. */
static void test_peer_unanswered_handshake_is_given_up(void **state)
{
    (void)state;
    struct node a, ghost;
    pair_open(&a, &ghost, SECRET, SECRET);
    teach(&a, &ghost);
    node_close(&ghost); /* its address now answers nothing */
    struct node *all[] = {&a};
    assert_true(pump(all, 1, gave_up, &a, 8000));
    assert_true(stats(&a)->queue_drops >= 2);
    assert_true(stats(&a)->handshakes_started >= stats(&a)->handshakes_failed);
    assert_int_equal(stats(&a)->sessions, 0);
    node_close(&a);
}

struct conns {
    struct node *n;
    uint64_t want;
};

static bool accepted(void *arg)
{
    struct conns *c = arg;
    return stats(c->n)->connections_in >= c->want;
}

/* Connections that never finish their handshake: the node keeps at most
 * PEER_HALF_OPEN_MAX (64) of them, closing the oldest. */
static void test_peer_half_open_connections_are_capped(void **state)
{
    (void)state;
    struct node b;
    node_open(&b, "127.0.0.2", 0, SECRET, 1);
    struct node *all[] = {&b};
    enum { N = 100 };
    int fd[N];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)b.port)};
    inet_pton(AF_INET, "127.0.0.2", &sa.sin_addr);
    for (int i = 0; i < N; i++) {
        fd[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(connect(fd[i], (struct sockaddr *)&sa, sizeof sa), 0);
        struct conns c = {&b, (uint64_t)i + 1};
        assert_true(pump(all, 1, accepted, &c, 2000));
    }
    int closed = 0;
    for (int i = 0; i < N; i++) {
        char byte;
        if (recv(fd[i], &byte, 1, MSG_DONTWAIT) == 0)
            closed++;
        close(fd[i]);
    }
    assert_int_equal(closed, N - 64);
    node_close(&b);
}

static void test_peer_resolve_gives_numeric_addresses(void **state)
{
    (void)state;
    char out[GOSSIP_ADDR_MAX + 1], err[200];
    assert_int_equal(peer_resolve("127.0.0.5:17000", out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "127.0.0.5:17000");
    assert_int_equal(peer_resolve("[::1]:17000", out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "[::1]:17000");
    assert_int_equal(peer_resolve("localhost", out, sizeof out, err, sizeof err), -EINVAL);
    assert_int_equal(peer_resolve("127.0.0.1:", out, sizeof out, err, sizeof err), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_same_secret_exchanges_frames),
        cmocka_unit_test(test_peer_wrong_secret_never_gets_a_frame_through),
        cmocka_unit_test(test_peer_no_secret_and_a_secret_stay_apart),
        cmocka_unit_test(test_peer_replayed_or_copied_datagrams_are_refused),
        cmocka_unit_test(test_peer_restarted_peer_talks_again_promptly),
        cmocka_unit_test(test_peer_hello_flood_makes_no_state),
        cmocka_unit_test(test_peer_unanswered_handshake_is_given_up),
        cmocka_unit_test(test_peer_half_open_connections_are_capped),
        cmocka_unit_test(test_peer_resolve_gives_numeric_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
