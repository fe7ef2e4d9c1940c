/* Unit tests for peer (the gossip transport) over real loopback sockets: a
 * member table behind a peer with a cluster-secret, and frames sent to its
 * UDP port from a raw socket, signed here as peer.c documents (8-byte
 * little-endian wall-clock ms, then HMAC-SHA256(secret, frame, time) cut to
 * 24 bytes). A correctly signed PING is answered (an ACK comes back); the
 * same bytes again (a replay), a frame signed with another secret, one
 * signed 60 s ago, one with its MAC zeroed and one with no MAC at all are
 * dropped before the member table sees them, each counted. */
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

static const char self_id[] = "00112233445566778899aabbccddeeff00112233";
static const char other_id[] = "ffeeddccbbaa99887766554433221100ffeeddcc";

struct fixture {
    struct peer_net *peer;
    struct member_table *members;
    int port;
    int raw; /* the sender's UDP socket */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof f);
    /* A free UDP+TCP port on 127.0.0.1: try a few. */
    for (int attempt = 0; attempt < 50 && !f.peer; attempt++) {
        f.port = 30000 + (int)((now_ms() * 7919 + (uint64_t)attempt * 104729) % 20000);
        if (peer_create("127.0.0.1", f.port, SECRET, &f.peer) != 0)
            f.peer = NULL;
    }
    assert_non_null(f.peer);
    struct member_config mc;
    member_config_default(&mc);
    mc.mac = true;
    struct gossip_info self = {.weight = 100};
    memcpy(self.id, self_id, sizeof self.id);
    snprintf(self.cluster_addr, sizeof self.cluster_addr, "127.0.0.1:%d", f.port);
    snprintf(self.client_addr, sizeof self.client_addr, "127.0.0.1:%d", f.port - 10000);
    assert_int_equal(member_create(&mc, &self, now_ms(), &f.members), 0);
    f.raw = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(bind(f.raw, (struct sockaddr *)&sa, sizeof sa), 0);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    peer_destroy(f->peer);
    member_destroy(f->members);
    close(f->raw);
    return 0;
}

/* A PING from other_id to self with a MAC area; returns its length. */
static size_t ping(uint8_t flags, uint32_t seq, uint8_t *out)
{
    struct gossip_writer w;
    gossip_writer_init(&w);
    gossip_begin(&w, GOSSIP_PING, flags, seq, other_id, self_id, NULL);
    size_t off = gossip_end(&w);
    size_t len = w.len - off;
    memcpy(out, w.data + off, len);
    gossip_writer_fini(&w);
    return len;
}

static void sign(uint8_t *frame, size_t len, const char *secret, uint64_t wall_ms)
{
    uint8_t *mac = frame + len - GOSSIP_MAC_LEN;
    for (int i = 0; i < 8; i++)
        mac[i] = (uint8_t)(wall_ms >> (8 * i));
    uint8_t tag[EVP_MAX_MD_SIZE];
    unsigned tag_len = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), frame, len - 24, tag, &tag_len);
    memcpy(mac + 8, tag, 24);
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Sends frame to the peer, lets it run until it has read it, and reports
 * whether an answer came back to the raw socket within 300 ms. */
static bool exchange(struct fixture *f, const uint8_t *frame, size_t len)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    assert_int_equal(sendto(f->raw, frame, len, 0, (struct sockaddr *)&to, sizeof to),
                     (ssize_t)len);
    const struct peer_stats *s = peer_get_stats(f->peer);
    uint64_t before = s->datagrams_in;
    struct pollfd pfd = {.fd = peer_fd(f->peer), .events = POLLIN};
    for (int i = 0; i < 100 && s->datagrams_in == before; i++) {
        poll(&pfd, 1, 20);
        peer_run(f->peer, f->members, now_ms());
    }
    assert_int_equal(s->datagrams_in, before + 1);
    struct pollfd rp = {.fd = f->raw, .events = POLLIN};
    if (poll(&rp, 1, 300) != 1)
        return false;
    uint8_t buf[2048];
    ssize_t n = recv(f->raw, buf, sizeof buf, 0);
    struct gossip_msg msg;
    size_t used;
    const char *err;
    assert_true(n > 0);
    assert_int_equal(gossip_decode(buf, (size_t)n, &msg, &used, &err), GOSSIP_OK);
    assert_int_equal(msg.type, GOSSIP_ACK);
    assert_non_null(msg.mac); /* answers are signed too */
    return true;
}

static void test_peer_signed_frames_pass_and_others_are_dropped(void **state)
{
    struct fixture *f = *state;
    const struct peer_stats *s = peer_get_stats(f->peer);
    uint8_t frame[512], copy[512];
    size_t len = ping(GOSSIP_F_MAC, 1, frame);

    /* MAC area left zero: refused. */
    assert_false(exchange(f, frame, len));
    assert_int_equal(s->refused_frames, 1);

    /* Signed with another secret: refused. */
    sign(frame, len, "another secret", wall_ms());
    assert_false(exchange(f, frame, len));
    assert_int_equal(s->refused_frames, 2);

    /* Signed right: answered. */
    sign(frame, len, SECRET, wall_ms());
    memcpy(copy, frame, len);
    assert_true(exchange(f, frame, len));
    assert_int_equal(s->refused_frames, 2);
    assert_int_equal(s->replayed_frames, 0);

    /* The same bytes again: a replay. */
    assert_false(exchange(f, copy, len));
    assert_int_equal(s->replayed_frames, 1);

    /* Signed right but 60 s ago: out of the window. */
    len = ping(GOSSIP_F_MAC, 2, frame);
    sign(frame, len, SECRET, wall_ms() - 60000);
    assert_false(exchange(f, frame, len));
    assert_int_equal(s->replayed_frames, 2);

    /* No MAC at all: refused. */
    len = ping(0, 3, frame);
    assert_false(exchange(f, frame, len));
    assert_int_equal(s->refused_frames, 3);

    /* A fresh, signed frame still passes. */
    len = ping(GOSSIP_F_MAC, 4, frame);
    sign(frame, len, SECRET, wall_ms());
    assert_true(exchange(f, frame, len));
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
        cmocka_unit_test_setup_teardown(test_peer_signed_frames_pass_and_others_are_dropped,
                                        setup, teardown),
        cmocka_unit_test(test_peer_resolve_gives_numeric_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
