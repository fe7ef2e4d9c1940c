/* test_peerlink: the node-to-node protocol on a node's cluster port, with
 * this test as the peer (net/wire.c's codec and handshake on a blocking
 * socket), while the port keeps serving gossip.
 * - A connection that starts with WIRE_MAGIC is handed to the shard its
 *   HELLO names: the handshake completes (with and without cluster-secret,
 *   the test deriving the key as admin/peer.c does), a REQUEST gets a
 *   REPLY with its id on each of two shards, and INFO's cluster section
 *   counts the link and the messages; a HELLO whose header comes in two
 *   parts is handed over once it is whole.
 * - The handshake proves the key derived from the secret: a PROOF under
 *   another secret, or under the raw secret itself, is refused (REFUSE
 *   "authentication failed", then closed) and counted as a failed
 *   handshake.
 * - Refusals: a HELLO with the node's own id (a self-connection), one with
 *   no common version, one for a shard the node lacks (closed).
 * - Garbage after 0xC7 (a header that is not a HELLO's, or a HELLO body
 *   that does not decode) closes the connection; the node still answers
 *   clients, and a second node still joins it through the same port.
 * - 1000 REQUESTs in one batch and a frame of 200 kB sent in pieces (the
 *   first bytes 7 at a time): every REPLY comes back once.
 * - A HELLO and then silence: closed after the handshake deadline (5 s);
 *   300 connections in their handshake at once: those past the shard's cap
 *   (256) closed at once, and once all went a peer gets through again.
 * - A peer that sends requests without reading the replies: the node stops
 *   reading it while 64 MiB wait, then every reply comes, in order.
 * - The dialling side: two nodes (2 and 3 shards, a secret) write at one
 *   and read at the other (W = N = 2: every SET crossed a link node 0 or 1
 *   dialled), a 3 MB value included; node 1 restarted: node 0 dials again.
 * - Only members are served: the test speaks as a node that joined
 *   (MEMBER); an id the cluster lacks, or one that left, is refused.
 * - Hostile peers: a FORWARD is checked as a client's command.
 * Without shards/peerlink.c and the hand-off in admin/peer.c, a connection
 * starting with 0xC7 is read as a gossip stream and closed at once (every
 * handshake here fails), and no write reaches the other node's replica.
 * Every read has a deadline (SO_RCVTIMEO); waits are on conditions. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "buf.h"
#include "cluster_harness.h"
#include "keyhash.h"
#include "wire.h"

#define SECRET "peer link test secret"
#define TEST_ID "7e57000000000000000000000000000000000001" /* a member of no cluster */
#define READ_TIMEOUT_S 5
#define FORM_MS 15000
#define IN_CAP (256u << 10) /* a wpeer's input buffer, unless it asks for more */

/* The key admin/peer.c derives from a cluster secret (PBKDF2-HMAC-SHA256,
 * its salt and iterations). */
static void derive_key(const char *secret, uint8_t key[32])
{
    static const char salt[] = "ringkv cluster-secret v1";
    assert_int_equal(PKCS5_PBKDF2_HMAC(secret, (int)strlen(secret), (const uint8_t *)salt,
                                       (int)strlen(salt), 200000, EVP_sha256(), 32, key),
                     1);
}

/* This test as a wire peer: a socket, its handshake and decoder, and the
 * bytes read but not yet consumed. */
struct wpeer {
    int fd;
    struct wire_hs hs;
    struct wire_decoder dec;
    uint8_t *in;      /* cap bytes */
    size_t cap;
    size_t len, used; /* in[0..used) is the frame handed out last */
    uint32_t max_frame; /* announced in the HELLO; 0: WIRE_FRAME_MIN */
    struct buf out;
    size_t split; /* wp_hello() sends this many bytes, pauses, then the rest */
};

/* Connects to node's cluster port, with an input buffer of cap bytes (the
 * largest frame it can take). */
static void wp_open_cap(struct wpeer *w, int node, size_t cap)
{
    memset(w, 0, sizeof *w);
    w->cap = cap;
    w->in = malloc(cap);
    assert_non_null(w->in);
    wire_limits_default(&w->dec.lim);
    buf_init(&w->out);
    w->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(w->fd >= 0);
    struct timeval tv = {.tv_sec = READ_TIMEOUT_S};
    setsockopt(w->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)(cluster_client_port() + 10000))};
    inet_pton(AF_INET, cluster_host(node), &sa.sin_addr);
    assert_int_equal(connect(w->fd, (struct sockaddr *)&sa, sizeof sa), 0);
}

static void wp_open(struct wpeer *w, int node)
{
    wp_open_cap(w, node, IN_CAP);
}

static void wp_close(struct wpeer *w)
{
    close(w->fd);
    buf_fini(&w->out);
    free(w->in);
}

static void wp_send_raw(struct wpeer *w, const void *p, size_t n)
{
    assert_int_equal(send(w->fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Sends what out gathered and empties it. */
static void wp_send(struct wpeer *w)
{
    assert_false(w->out.failed);
    if (w->out.len)
        wp_send_raw(w, w->out.data, w->out.len);
    buf_clear(&w->out);
}

/* The next frame from the node: 1 with *f (valid until the next call), 0 at
 * EOF or a reset (the node closed), -1 when nothing came in time. */
static int wp_frame(struct wpeer *w, struct wire_frame *f)
{
    memmove(w->in, w->in + w->used, w->len - w->used);
    w->len -= w->used;
    w->used = 0;
    for (;;) {
        size_t used = 0, need = 0;
        const char *err = NULL;
        if (w->len) {
            enum wire_status st = wire_decode(&w->dec, w->in, w->len, f, &used, &need, &err);
            if (st == WIRE_OK) {
                w->used = used;
                return 1;
            }
            if (st == WIRE_BAD)
                fail_msg("the node sent a bad frame: %s", err);
            assert_true(need <= w->cap);
        }
        ssize_t n = recv(w->fd, w->in + w->len, w->cap - w->len, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return 0;
        if (n < 0)
            return -1;
        w->len += (size_t)n;
    }
}

/* Sends a HELLO (our shard 0 of 1) for the node's shard to_shard, under
 * key, for versions vmin..vmax; w->hs is the initiator's side. */
static void wp_hello(struct wpeer *w, const char *self_id, const char *node_id, uint16_t to_shard,
                     const void *key, size_t key_len, uint8_t vmin, uint8_t vmax)
{
    struct wire_hs_config hc = {
        .node_id = self_id,
        .peer_id = node_id,
        .shard = 0,
        .shards = 1,
        .peer_shard = to_shard,
        .version_min = vmin,
        .version_max = vmax,
        .max_frame = w->max_frame ? w->max_frame : WIRE_FRAME_MIN,
        .secret = key,
        .secret_len = key_len,
    };
    assert_int_equal(getrandom(hc.nonce, sizeof hc.nonce, 0), (ssize_t)sizeof hc.nonce);
    assert_int_equal(wire_hs_init(&w->hs, WIRE_INITIATOR, &hc), 0);
    wire_hs_start(&w->hs, &w->out);
    if (w->split) {
        /* the pause is the stimulus (the node sees a partial header first),
         * not a wait for an outcome */
        wp_send_raw(w, w->out.data, w->split);
        nanosleep(&(struct timespec){.tv_nsec = 50 * 1000000L}, NULL);
        buf_consume(&w->out, w->split);
    }
    wp_send(w);
}

/* Runs the initiator's side until the handshake ends; returns how. When
 * it fails on our side, the connection is left as it is (no REFUSE sent). */
static enum wire_hs_status wp_handshake(struct wpeer *w, const char *self_id, const char *node_id,
                                        uint16_t to_shard, const void *key, size_t key_len,
                                        uint8_t vmin, uint8_t vmax)
{
    wp_hello(w, self_id, node_id, to_shard, key, key_len, vmin, vmax);
    for (;;) {
        struct wire_frame f;
        int got = wp_frame(w, &f);
        if (got <= 0)
            fail_msg("the node %s during the handshake", got ? "went silent" : "closed");
        enum wire_hs_status st = wire_hs_on_frame(&w->hs, &f, &w->out);
        if (st == WIRE_HS_FAILED)
            buf_clear(&w->out); /* our REFUSE is not sent: the caller goes on */
        wp_send(w);
        if (st == WIRE_HS_DONE)
            w->dec.version = w->hs.version;
        if (st != WIRE_HS_AGAIN)
            return st;
    }
}

/* Whether the node closes the connection (after any frames) in time. */
static bool wp_closed(struct wpeer *w)
{
    struct wire_frame f;
    int got;
    while ((got = wp_frame(w, &f)) == 1)
        ;
    return got == 0;
}

/* The node's next frame is a REFUSE for `reason`, then it closes; w is
 * closed too. */
static void expect_refused_and_closed(struct wpeer *w, uint8_t reason)
{
    struct wire_frame f;
    assert_int_equal(wp_frame(w, &f), 1);
    assert_int_equal(f.type, WIRE_REFUSE);
    assert_int_equal(f.u.refuse.reason, reason);
    assert_true(wp_closed(w));
    wp_close(w);
}

/* A GET REQUEST of key "foo" with this id, appended to wr. */
static void put_get(struct wire_writer *wr, uint64_t id)
{
    struct wire_msg m = {.kind = WIRE_REQUEST,
                         .id = id,
                         .op = WIRE_OP_GET,
                         .slot = 12182,
                         .key = {(const uint8_t *)"foo", 3}};
    assert_int_equal(wire_write_msg(wr, &m), 0);
}

/* The node's next frame holds the REPLY to request id first: *r (valid
 * until the next read). */
static void wp_reply(struct wpeer *w, uint64_t id, struct wire_msg *r)
{
    struct wire_frame f;
    int got = wp_frame(w, &f);
    if (got != 1)
        fail_msg("request %llu: the node %s", (unsigned long long)id,
                 got ? "went silent" : "closed");
    assert_int_equal(f.type, WIRE_BATCH);
    struct wire_cursor c;
    wire_cursor_init(&c, &w->dec, &f);
    const char *err;
    assert_int_equal(wire_next_msg(&c, r, &err), WIRE_OK);
    assert_int_equal(r->kind, WIRE_REPLY);
    assert_int_equal(r->id, id);
}

/* Sends one GET REQUEST with this id and waits for its REPLY. */
static void wp_round_trip(struct wpeer *w, uint64_t id)
{
    struct wire_writer wr;
    wire_writer_init(&wr, &w->out, w->hs.version, w->hs.peer_max_frame);
    put_get(&wr, id);
    wire_writer_flush(&wr);
    wp_send(w);
    struct wire_msg r;
    wp_reply(w, id, &r);
    assert_int_equal(r.op, WIRE_OP_GET);
    printf("peerlink: REPLY to %llu: %s \"%.*s\"\n", (unsigned long long)id,
           wire_code_name(r.status), (int)r.text.len, (const char *)r.text.ptr);
}

static long long info_field(int node, const char *name)
{
    char *info = cluster_ask(node, "INFO cluster");
    long long v = info ? cluster_info_field(info, name) : -1;
    free(info);
    return v;
}

struct field_at_least {
    int node;
    const char *name;
    long long min;
};

static bool field_reaches(void *arg)
{
    const struct field_at_least *x = arg;
    return info_field(x->node, x->name) >= x->min;
}

static void expect_field(int node, const char *name, long long min)
{
    struct field_at_least x = {node, name, min};
    if (!cluster_wait(field_reaches, &x, 5000))
        fail_msg("node %d: INFO %s is %lld, wanted at least %lld", node, name,
                 info_field(node, name), min);
}

static bool no_links_up(void *arg)
{
    return info_field(0, "peer_links_up") == 0;
}

/* A node alone: no peer is a member of its cluster. */
static void start_alone(int i, const char *secret, const char *threads)
{
    const char *flags[8] = {"--threads", threads, NULL};
    int k = 2;
    if (secret) {
        flags[k++] = "--cluster-secret";
        flags[k++] = secret;
    }
    assert_int_equal(cluster_start(i, flags), 0);
}

#define MEMBER 4 /* the node whose id the test speaks with */
static char member_id[41];

static bool member_is_up(void *arg)
{
    const char *st = cluster_status_of(0, member_id);
    return st && strcmp(st, "up") == 0;
}

/* Node i (0), and node MEMBER joined to it: the test speaks as MEMBER
 * (member_id), since a node serves members of its cluster only. The real
 * MEMBER sends nothing on links unless it coordinates a request (it pulls
 * no partition: handoff-concurrency 0). */
static void start_node(int i, const char *secret, const char *threads)
{
    start_alone(i, secret, threads);
    const char *flags[10] = {"--threads", "1", "--handoff-concurrency", "0",
                             "--seeds", cluster_seed(i), NULL};
    if (secret) {
        flags[6] = "--cluster-secret";
        flags[7] = secret;
    }
    assert_int_equal(cluster_start(MEMBER, flags), 0);
    snprintf(member_id, sizeof member_id, "%s", cluster_node(MEMBER)->id);
    assert_true(cluster_wait(member_is_up, NULL, FORM_MS));
}

static void test_peerlink_request_reply_without_secret(void **state)
{
    start_node(0, NULL, "2");
    assert_int_equal(info_field(0, "peer_links_up"), 0);
    struct wpeer a, b;
    wp_open(&a, 0);
    assert_int_equal(wp_handshake(&a, member_id, cluster_node(0)->id, 0, NULL, 0, WIRE_VERSION_MIN,
                                  WIRE_VERSION),
                     WIRE_HS_DONE);
    assert_int_equal(a.hs.peer_shards, 2);
    assert_int_equal(a.hs.peer_shard, 0);
    wp_round_trip(&a, 7);
    wp_round_trip(&a, 8);
    wp_open(&b, 0);
    assert_int_equal(wp_handshake(&b, member_id, cluster_node(0)->id, 1, NULL, 0, WIRE_VERSION_MIN,
                                  WIRE_VERSION),
                     WIRE_HS_DONE);
    assert_int_equal(b.hs.peer_shard, 1);
    wp_round_trip(&b, 0xfedcba9876543210ull);
    struct wpeer c; /* a HELLO whose header arrives in two parts */
    wp_open(&c, 0);
    c.split = 5;
    assert_int_equal(wp_handshake(&c, member_id, cluster_node(0)->id, 1, NULL, 0, WIRE_VERSION_MIN,
                                  WIRE_VERSION),
                     WIRE_HS_DONE);
    wp_round_trip(&c, 9);
    wp_close(&c);
    expect_field(0, "peer_links_up", 2);
    expect_field(0, "peer_links_msgs_in", 3);
    expect_field(0, "peer_links_msgs_out", 3);
    assert_int_equal(info_field(0, "peer_links_handshake_failures"), 0);
    wp_close(&a);
    wp_close(&b);
    assert_true(cluster_wait(no_links_up, NULL, 5000));
    cluster_stop(0);
}

/* Sends a PROOF made with `key` after the node's CHALLENGE (the test's own
 * check of the node's proof fails first when the key is not the node's). */
static void proof_under(struct wpeer *w, const uint8_t *key, size_t key_len)
{
    uint8_t msg[17 + 1 + WIRE_HELLO_LEN + WIRE_CHALLENGE_LEN - WIRE_PROOF_LEN];
    memcpy(msg, "ringkv wire proof", 17);
    msg[17] = 'I';
    memcpy(msg + 18, w->hs.hello, WIRE_HELLO_LEN);
    memcpy(msg + 18 + WIRE_HELLO_LEN, w->hs.challenge, WIRE_CHALLENGE_LEN - WIRE_PROOF_LEN);
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    assert_non_null(HMAC(EVP_sha256(), key, (int)key_len, msg, sizeof msg, md, &md_len));
    buf_clear(&w->out);
    wire_put_proof(&w->out, md);
    wp_send(w);
}

/* A handshake under `key` that the node must refuse as unauthenticated. */
static void expect_auth_refused(const uint8_t *key, size_t key_len)
{
    struct wpeer w;
    wp_open(&w, 0);
    assert_int_equal(wp_handshake(&w, member_id, cluster_node(0)->id, 0, key, key_len,
                                  WIRE_VERSION_MIN, WIRE_VERSION),
                     WIRE_HS_FAILED);
    assert_int_equal(w.hs.reason, WIRE_REFUSE_AUTH); /* the node's proof is not ours */
    proof_under(&w, key, key_len);
    expect_refused_and_closed(&w, WIRE_REFUSE_AUTH);
}

/* A peer with this 32-byte key completes the handshake with node 0's shard
 * 0 and gets a REPLY. */
static void expect_gets_through(const uint8_t *key)
{
    struct wpeer w;
    wp_open(&w, 0);
    assert_int_equal(wp_handshake(&w, member_id, cluster_node(0)->id, 0, key, 32, WIRE_VERSION_MIN,
                                  WIRE_VERSION),
                     WIRE_HS_DONE);
    wp_round_trip(&w, 1);
    wp_close(&w);
}

static void test_peerlink_proves_the_derived_key(void **state)
{
    start_node(0, SECRET, "1");
    uint8_t key[32];
    derive_key(SECRET, key);
    expect_gets_through(key);

    uint8_t other[32];
    derive_key("another secret", other);
    expect_auth_refused(other, sizeof other);
    expect_auth_refused((const uint8_t *)SECRET, strlen(SECRET)); /* the raw secret is not it */
    expect_auth_refused(NULL, 0);
    expect_field(0, "peer_links_handshake_failures", 3);
    cluster_stop(0);
}

static void expect_refusal(const char *self_id, uint16_t to_shard, uint8_t vmin, uint8_t vmax,
                           uint8_t reason)
{
    struct wpeer w;
    wp_open(&w, 0);
    assert_int_equal(wp_handshake(&w, self_id, cluster_node(0)->id, to_shard, NULL, 0, vmin, vmax),
                     WIRE_HS_FAILED);
    assert_true(w.hs.refused_by_peer);
    assert_int_equal(w.hs.reason, reason);
    printf("peerlink: refused: %s\n", w.hs.why);
    assert_true(wp_closed(&w));
    wp_close(&w);
}

static void test_peerlink_refusals(void **state)
{
    start_alone(0, NULL, "1");
    expect_refusal(cluster_node(0)->id, 0, WIRE_VERSION_MIN, WIRE_VERSION, WIRE_REFUSE_SELF);
    expect_refusal(TEST_ID, 0, WIRE_VERSION + 1, WIRE_VERSION + 2, WIRE_REFUSE_VERSION);
    /* a shard the node does not have: closed without a word */
    struct wpeer w;
    wp_open(&w, 0);
    wp_hello(&w, TEST_ID, NULL, 5, NULL, 0, WIRE_VERSION_MIN, WIRE_VERSION);
    assert_true(wp_closed(&w));
    wp_close(&w);
    expect_field(0, "peer_links_handshake_failures", 2);
    cluster_stop(0);
}

static void expect_garbage_closed(const void *bytes, size_t n)
{
    struct wpeer w;
    wp_open(&w, 0);
    wp_send_raw(&w, bytes, n);
    assert_true(wp_closed(&w));
    wp_close(&w);
}

static void test_peerlink_garbage_keeps_node_and_gossip(void **state)
{
    start_alone(0, SECRET, "1");
    /* not a HELLO's header: the cluster port's acceptor closes it */
    static const uint8_t junk[] = "\xC7\x09garbage that is no frame at all";
    expect_garbage_closed(junk, sizeof junk - 1);
    static const uint8_t batch_first[16] = {WIRE_MAGIC, 1, WIRE_BATCH, 0, 8, 0, 0, 0};
    expect_garbage_closed(batch_first, sizeof batch_first);
    /* a HELLO header whose body does not decode (empty version range): the
     * shard refuses it */
    uint8_t hello[WIRE_HEADER_LEN + WIRE_HELLO_LEN] = {WIRE_MAGIC, WIRE_VERSION_HANDSHAKE,
                                                       WIRE_HELLO, 0, WIRE_HELLO_LEN};
    struct wpeer w;
    wp_open(&w, 0);
    wp_send_raw(&w, hello, sizeof hello);
    expect_refused_and_closed(&w, WIRE_REFUSE_PROTOCOL);
    /* one byte of magic, then silence: closed once the acceptor gives up */
    expect_garbage_closed("\xC7", 1);

    char *echo = cluster_ask(0, "ECHO alive");
    assert_non_null(echo);
    assert_string_equal(echo, "alive");
    free(echo);
    const char *flags[] = {"--threads", "1", "--cluster-secret", SECRET, "--seeds",
                           cluster_seed(0), NULL};
    assert_int_equal(cluster_start(1, flags), 0);
    int two = 2;
    assert_true(cluster_wait(cluster_formed, &two, FORM_MS));
    expect_field(0, "peer_links_handshake_failures", 1);
    cluster_stop(1);
    cluster_stop(0);
}

/* Node 0 started with its member, a link to its shard 0 as the member
 * (handshake done), a writer of batches for it, and GETs of ids 1..n
 * written (not flushed). */
static void wp_open_with_gets(struct wpeer *w, struct wire_writer *wr, uint64_t n)
{
    start_node(0, NULL, "1");
    wp_open(w, 0);
    assert_int_equal(wp_handshake(w, member_id, cluster_node(0)->id, 0, NULL, 0, WIRE_VERSION_MIN,
                                  WIRE_VERSION),
                     WIRE_HS_DONE);
    wire_writer_init(wr, &w->out, w->hs.version, w->hs.peer_max_frame);
    for (uint64_t id = 1; id <= n; id++)
        put_get(wr, id);
}

/* Requests in one batch, and one several times the receive buffer (16 KiB)
 * and split over many small writes: every REPLY comes back, each id once. */
static void test_peerlink_batches_and_split_frames(void **state)
{
    enum { N = 1000 };
    struct wpeer w;
    struct wire_writer wr;
    wp_open_with_gets(&w, &wr, N);
    wire_writer_flush(&wr);
    /* a PUT whose value spans many receive buffers, sent a few bytes at a time
     * at first, so the node sees its frame arrive in pieces */
    static uint8_t big[200000];
    memset(big, 'v', sizeof big);
    struct wire_bytes v = {big, sizeof big};
    struct wire_msg put = {.kind = WIRE_REQUEST,
                           .id = N + 1,
                           .op = WIRE_OP_PUT,
                           .slot = 12182,
                           .key = {(const uint8_t *)"foo", 3},
                           .n_values = 1,
                           .values = &v};
    assert_int_equal(wire_write_msg(&wr, &put), 0);
    wire_writer_flush(&wr);
    size_t first = 3000;
    for (size_t off = 0; off < first; off += 7)
        wp_send_raw(&w, w.out.data + off, off + 7 <= first ? 7 : first - off);
    wp_send_raw(&w, w.out.data + first, w.out.len - first);
    buf_clear(&w.out);
    static bool seen[N + 2];
    uint32_t replies = 0;
    while (replies < N + 1) {
        struct wire_frame f;
        assert_int_equal(wp_frame(&w, &f), 1);
        assert_int_equal(f.type, WIRE_BATCH);
        struct wire_cursor c;
        wire_cursor_init(&c, &w.dec, &f);
        struct wire_msg r;
        const char *err;
        enum wire_status st;
        while ((st = wire_next_msg(&c, &r, &err)) == WIRE_OK) {
            assert_int_equal(r.kind, WIRE_REPLY);
            assert_true(r.id >= 1 && r.id <= N + 1);
            assert_false(seen[r.id]);
            seen[r.id] = true;
            replies++;
        }
        assert_int_equal(st, WIRE_END);
    }
    wp_close(&w);
    expect_field(0, "peer_links_msgs_in", N + 1);
    cluster_stop(0);
}

/* A batch of 40 GETs (more than a read-ahead of 32) whose 41st message
 * breaks the protocol (an unknown kind): the 40 are each handled (counted
 * in), then the node refuses the link (PROTOCOL) and closes it. Their
 * replies go with the link: the peer that broke the protocol sees its
 * link end, as its requests' senders do for any lost link. */
static void test_peerlink_bad_message_after_good_ones(void **state)
{
    enum { N = 40 };
    struct wpeer w;
    struct wire_writer wr;
    wp_open_with_gets(&w, &wr, N);
    size_t bad_at = w.out.len; /* the next message's first byte: its kind */
    put_get(&wr, N + 1);
    wire_writer_flush(&wr);
    w.out.data[bad_at] = 0xEE;
    wp_send(&w);
    expect_refused_and_closed(&w, WIRE_REFUSE_PROTOCOL);
    expect_field(0, "peer_links_msgs_in", N);
    cluster_stop(0);
}

/* A GET REQUEST of key (on its partition's shard) with this id. */
static void put_get_key(struct wire_writer *wr, uint64_t id, const char *key)
{
    uint16_t slot = keyhash_slot(key, strlen(key));
    struct wire_msg m = {.kind = WIRE_REQUEST,
                         .id = id,
                         .op = WIRE_OP_GET,
                         .slot = slot,
                         .partition = slot >> 4, /* 1024 partitions */
                         .key = {(const uint8_t *)key, (uint32_t)strlen(key)}};
    assert_int_equal(wire_write_msg(wr, &m), 0);
}

/* Sends a GET of key with this id and waits for its REPLY (*m, valid until
 * the next read). */
static void wp_get(struct wpeer *w, uint64_t id, const char *key, struct wire_msg *m)
{
    struct wire_writer wr;
    wire_writer_init(&wr, &w->out, w->hs.version, w->hs.peer_max_frame);
    put_get_key(&wr, id, key);
    wire_writer_flush(&wr);
    wp_send(w);
    wp_reply(w, id, m);
}

/* REPLYs to requests 1 .. n arrive in order, each OK with a value of len
 * bytes. */
static void expect_values_in_order(struct wpeer *w, uint64_t n, uint32_t len)
{
    uint64_t next = 1;
    while (next <= n) {
        struct wire_frame f;
        assert_int_equal(wp_frame(w, &f), 1);
        struct wire_cursor c;
        wire_cursor_init(&c, &w->dec, &f);
        struct wire_msg m;
        const char *err;
        while (wire_next_msg(&c, &m, &err) == WIRE_OK) {
            assert_int_equal(m.id, next);
            assert_int_equal(m.status, WIRE_CODE_OK);
            struct wire_value_iter it;
            struct wire_bytes v;
            wire_values_init(&it, &m);
            assert_true(wire_values_next(&it, &v));
            assert_int_equal(v.len, len);
            next++;
        }
    }
}

/* A peer that sends requests faster than it reads the replies: the node
 * stops reading it while 64 MiB of replies wait (rather than buffering
 * without end), then goes on; every reply comes, in order. */
static void test_peerlink_pauses_a_peer_that_does_not_read(void **state)
{
    enum { N = 150, VALUE = 1 << 20 };
    start_node(0, NULL, "1");
    redisContext *rc = cluster_redis(0);
    char *value = malloc(VALUE);
    assert_non_null(value);
    memset(value, 'x', VALUE);
    redisReply *r = redisCommand(rc, "SET big %b", value, (size_t)VALUE);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(rc);
    free(value);
    struct wpeer w;
    wp_open_cap(&w, 0, 16u << 20);
    w.max_frame = 8u << 20;
    assert_int_equal(wp_handshake(&w, member_id, cluster_node(0)->id, 0, NULL, 0, WIRE_VERSION_MIN,
                                  WIRE_VERSION),
                     WIRE_HS_DONE);
    for (uint64_t id = 1; id <= N; id++) { /* one frame each: the node may stop between */
        struct wire_writer wr;
        wire_writer_init(&wr, &w.out, w.hs.version, w.hs.peer_max_frame);
        put_get_key(&wr, id, "big");
        wire_writer_flush(&wr);
    }
    wp_send(&w);
    expect_values_in_order(&w, N, VALUE);
    expect_field(0, "peer_links_up", 1); /* still open */
    wp_close(&w);
    cluster_stop(0);
}

/* More connections in their handshake at once than a shard keeps (256):
 * the ones past the cap are closed at once; once they all went, the count
 * is back to zero and a peer gets through. */
static void test_peerlink_caps_handshakes_in_progress(void **state)
{
    enum { N = 300 };
    start_node(0, SECRET, "1");
    uint8_t key[32];
    derive_key(SECRET, key);
    static struct wpeer w[N];
    int challenged = 0, closed = 0;
    for (int i = 0; i < N; i++) {
        wp_open_cap(&w[i], 0, 4096);
        wp_hello(&w[i], member_id, NULL, 0, key, sizeof key, WIRE_VERSION_MIN, WIRE_VERSION);
    }
    for (int i = 0; i < N; i++) {
        struct wire_frame f;
        int got = wp_frame(&w[i], &f);
        assert_true(got >= 0);
        challenged += got == 1 && f.type == WIRE_CHALLENGE;
        closed += got == 0;
    }
    printf("peerlink: %d connections in their handshake at once: %d challenged, %d closed\n", N,
           challenged, closed);
    /* the cluster port's acceptor may close some of them too (its own cap on
     * connections not yet classified) */
    assert_true(challenged <= 256 && closed >= N - 256);
    assert_int_equal(challenged + closed, N);
    for (int i = 0; i < N; i++)
        wp_close(&w[i]);
    expect_field(0, "peer_links_handshake_failures", challenged); /* and those closed at once */
    expect_gets_through(key);
    cluster_stop(0);
}

/* A HELLO and then silence: the shard gives up on the handshake. */
static void test_peerlink_silent_handshake_is_closed(void **state)
{
    start_node(0, SECRET, "1");
    struct wpeer w;
    wp_open(&w, 0);
    struct timeval tv = {.tv_sec = 15};
    setsockopt(w.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    wp_hello(&w, member_id, NULL, 0, NULL, 0, WIRE_VERSION_MIN, WIRE_VERSION);
    int64_t t0 = cluster_now_ms();
    struct wire_frame f;
    assert_int_equal(wp_frame(&w, &f), 1);
    assert_int_equal(f.type, WIRE_CHALLENGE);
    assert_true(wp_closed(&w));
    printf("peerlink: a handshake left half-way closed after %lld ms\n",
           (long long)(cluster_now_ms() - t0));
    wp_close(&w);
    expect_field(0, "peer_links_handshake_failures", 1);
    cluster_stop(0);
}

struct set_try {
    int node;
    const char *key;
    const uint8_t *value;
    size_t len;
};

/* SET at the node is acknowledged (with W = 2 of 2 nodes, the peer's
 * replica answered over a link). */
static bool set_acknowledged(void *arg)
{
    const struct set_try *x = arg;
    redisContext *c = cluster_redis(x->node);
    redisReply *r = redisCommand(c, "SET %s %b", x->key, x->value, x->len);
    bool ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0;
    if (!ok)
        fprintf(stderr, "node %d: SET %s: %s\n", x->node, x->key, r && r->str ? r->str : "?");
    freeReplyObject(r);
    redisFree(c);
    return ok;
}

/* GET at the node answers exactly the value. */
static bool get_reads(void *arg)
{
    const struct set_try *x = arg;
    redisContext *c = cluster_redis(x->node);
    redisReply *r = redisCommand(c, "GET %s", x->key);
    bool ok = r && r->type == REDIS_REPLY_STRING && r->len == x->len &&
              memcmp(r->str, x->value, x->len) == 0;
    freeReplyObject(r);
    redisFree(c);
    return ok;
}

static void write_at_read_at(int writer, int reader, const char *key, const uint8_t *value,
                             size_t len)
{
    struct set_try w = {writer, key, value, len}, r = {reader, key, value, len};
    assert_true(cluster_wait(set_acknowledged, &w, 10000));
    assert_true(cluster_wait(get_reads, &r, 5000));
}

static const char *const two_flags[][12] = {
    {"--threads", "2", "--cluster-secret", SECRET, "--request-timeout", "2000", NULL},
    {"--threads", "3", "--cluster-secret", SECRET, "--request-timeout", "2000", "--seeds", NULL,
     NULL},
};

static void start_second(void)
{
    const char *flags[12];
    memcpy(flags, two_flags[1], sizeof flags);
    flags[7] = cluster_seed(0);
    assert_int_equal(cluster_start(1, flags), 0);
}

/* Two nodes (2 and 3 shards) with a secret: writes at one read at the
 * other (every SET waits for both replicas: W = N = 2), a value of 3 MB
 * among them (a frame far larger than a receive buffer, sent in parts),
 * in both directions; node 1 restarted: node 0's links to it break and are
 * dialled again. */
static void test_peerlink_two_nodes_over_their_links(void **state)
{
    assert_int_equal(cluster_start(0, two_flags[0]), 0);
    start_second();
    int two = 2;
    assert_true(cluster_wait(cluster_formed, &two, FORM_MS));
    static const uint8_t small[] = "over the link";
    write_at_read_at(0, 1, "k0", small, sizeof small - 1);
    write_at_read_at(1, 0, "k1", small, sizeof small - 1);
    size_t big_len = 3u << 20;
    uint8_t *big = malloc(big_len);
    assert_non_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (uint8_t)(i * 131 + 7);
    write_at_read_at(0, 1, "big", big, big_len);
    char key[32];
    for (int i = 0; i < 40; i++) { /* keys of many partitions: links to every shard */
        snprintf(key, sizeof key, "key:%d", i);
        write_at_read_at(i % 2, (i + 1) % 2, key, small, sizeof small - 1);
    }
    long long dials = info_field(0, "peer_links_dials");
    printf("peerlink: node 0 dialled %lld links, node 1 %lld\n", dials,
           info_field(1, "peer_links_dials"));
    /* each shard of node 0 dials each shard of node 1 once at most */
    assert_true(dials >= 1 && dials <= 2 * 3);
    expect_field(0, "peer_links_up", 2);
    assert_int_equal(info_field(0, "peer_links_handshake_failures"), 0);
    assert_int_equal(info_field(1, "peer_links_handshake_failures"), 0);

    cluster_stop(1);
    start_second();
    assert_true(cluster_wait(cluster_formed, &two, FORM_MS));
    write_at_read_at(0, 1, "after", small, sizeof small - 1);
    write_at_read_at(0, 1, "big", big, big_len / 2);
    assert_true(info_field(0, "peer_links_dials") > dials);
    free(big);
    cluster_stop(1);
    cluster_stop(0);
}

/* Only members are served: a HELLO from an id the cluster does not have
 * is refused (REFUSE "authentication failed", closed, counted as a failed
 * handshake); a member's goes through; once that member has left, its id
 * is refused too. */
static bool member_left(void *arg)
{
    const char *st = cluster_status_of(0, member_id);
    return !st || strcmp(st, "left") == 0;
}

static void test_peerlink_refuses_non_members(void **state)
{
    start_node(0, NULL, "1");
    expect_refusal(TEST_ID, 0, WIRE_VERSION_MIN, WIRE_VERSION, WIRE_REFUSE_AUTH);
    expect_field(0, "peer_links_handshake_failures", 1);
    struct wpeer w;
    wp_open(&w, 0);
    assert_int_equal(wp_handshake(&w, member_id, cluster_node(0)->id, 0, NULL, 0,
                                  WIRE_VERSION_MIN, WIRE_VERSION),
                     WIRE_HS_DONE);
    wp_round_trip(&w, 1);
    wp_close(&w);
    char path[80];
    snprintf(path, sizeof path, "/v1/nodes/%s", member_id);
    int status = 0;
    json_decref(cluster_request(0, "DELETE", path, "", &status));
    assert_int_equal(status, 202);
    assert_true(cluster_wait(member_left, NULL, 30000));
    expect_refusal(member_id, 0, WIRE_VERSION_MIN, WIRE_VERSION, WIRE_REFUSE_AUTH);
    expect_field(0, "peer_links_handshake_failures", 2);
    cluster_stop(0);
}

/* Key "big" holds len bytes, written at node 0 (acknowledged). */
static void set_big_at_0(size_t len)
{
    uint8_t *value = malloc(len);
    assert_non_null(value);
    memset(value, 'a', len);
    struct set_try set = {0, "big", value, len};
    assert_true(cluster_wait(set_acknowledged, &set, 10000));
    free(value);
}

/* The resident memory of node i, in MiB (/proc/<pid>/status). */
static long rss_mib(int i)
{
    char path[64], line[128];
    snprintf(path, sizeof path, "/proc/%d/status", (int)cluster_node(i)->pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long kb = -1;
    while (kb < 0 && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) != 1)
            kb = -1;
    fclose(f);
    return kb / 1024;
}

static bool msgs_in_grew(void *arg)
{
    return info_field(0, "peer_links_msgs_in") > *(long long *)arg;
}

/* One small frame of GETs for a large value (the review's 14 KB frame of
 * 300 GETs of a 10 MiB key grew a node to 2.1 GB): the node stops taking
 * the frame's messages once 64 MiB of replies wait, and goes on from the
 * next one as they drain; every reply comes, in order, on the same link. */
static void test_peerlink_pauses_within_a_frame(void **state)
{
    enum { N = 600, VALUE = 1 << 20 };
    start_node(0, NULL, "1");
    set_big_at_0(VALUE);
    long rss0 = rss_mib(0);
    long long in0 = info_field(0, "peer_links_msgs_in");
    struct wpeer w;
    wp_open_cap(&w, 0, 16u << 20);
    w.max_frame = 8u << 20;
    assert_int_equal(wp_handshake(&w, member_id, cluster_node(0)->id, 0, NULL, 0,
                                  WIRE_VERSION_MIN, WIRE_VERSION),
                     WIRE_HS_DONE);
    struct wire_writer wr;
    wire_writer_init(&wr, &w.out, w.hs.version, w.hs.peer_max_frame);
    for (uint64_t id = 1; id <= N; id++)
        put_get_key(&wr, id, "big");
    wire_writer_flush(&wr);
    printf("peerlink: one frame of %u bytes: %d GETs of a %d-byte value\n", (unsigned)w.out.len,
           N, VALUE);
    wp_send(&w);
    /* INFO runs on the link's shard, after the turn that took the frame */
    assert_true(cluster_wait(msgs_in_grew, &in0, 5000));
    long long taken = info_field(0, "peer_links_msgs_in") - in0;
    long grown = rss_mib(0) - rss0;
    printf("peerlink: the node took %lld of %d requests; its RSS grew %ld MiB\n", taken, N, grown);
    assert_true(taken < N / 2);
    assert_true(grown < 300);
    expect_values_in_order(&w, N, VALUE);
    expect_field(0, "peer_links_up", 1); /* still open */
    wp_close(&w);
    cluster_stop(0);
}

/* ---- hostile peers (issue 11 review): a peer's bytes are trusted no more
 * than a client's ---- */

/* Nodes 0 and 1 form a cluster (node 0 with these flags); the test speaks
 * as node 1 (a member) on a link to node 0's shard 0. */
static void hostile_open(struct wpeer *w, const char *bin0, const char *const *flags0)
{
    char bin[512];
    snprintf(bin, sizeof bin, "%s", getenv("RINGKV_BIN"));
    if (bin0) /* node 0 runs another build */
        setenv("RINGKV_BIN", bin0, 1);
    int rc = cluster_start(0, flags0);
    setenv("RINGKV_BIN", bin, 1);
    assert_int_equal(rc, 0);
    const char *flags1[] = {"--threads", "1", "--seeds", cluster_seed(0), NULL};
    assert_int_equal(cluster_start(1, flags1), 0);
    int two = 2;
    assert_true(cluster_wait(cluster_formed, &two, FORM_MS));
    wp_open(w, 0);
    assert_int_equal(wp_handshake(w, cluster_node(1)->id, cluster_node(0)->id, 0, NULL, 0,
                                  WIRE_VERSION_MIN, WIRE_VERSION),
                     WIRE_HS_DONE);
}

struct wreply {
    uint8_t status;
    char text[WIRE_TEXT_MAX + 1];
    char value[256]; /* the first value, cut */
};

/* Sends a FORWARD with this payload (and request flags) and waits for its
 * REPLY. */
static void wp_forward_flags(struct wpeer *w, uint64_t id, uint8_t flags, const char *payload,
                             size_t len, struct wreply *out)
{
    struct wire_writer wr;
    wire_writer_init(&wr, &w->out, w->hs.version, w->hs.peer_max_frame);
    struct wire_bytes v = {(const uint8_t *)payload, (uint32_t)len};
    struct wire_msg m = {.kind = WIRE_REQUEST,
                         .flags = flags,
                         .id = id,
                         .op = WIRE_OP_FORWARD,
                         .deadline_ms = 2000,
                         .n_values = 1,
                         .values = &v};
    assert_int_equal(wire_write_msg(&wr, &m), 0);
    wire_writer_flush(&wr);
    wp_send(w);
    struct wire_msg r;
    wp_reply(w, id, &r);
    out->status = r.status;
    snprintf(out->text, sizeof out->text, "%.*s", (int)r.text.len, (const char *)r.text.ptr);
    struct wire_value_iter it;
    struct wire_bytes val = {0};
    wire_values_init(&it, &r);
    wire_values_next(&it, &val);
    snprintf(out->value, sizeof out->value, "%.*s", (int)val.len, (const char *)val.ptr);
    printf("peerlink: FORWARD %llu: %s \"%s\"\n", (unsigned long long)id,
           wire_code_name(r.status), out->text);
}

static void wp_forward(struct wpeer *w, uint64_t id, const char *payload, size_t len,
                       struct wreply *out)
{
    wp_forward_flags(w, id, 0, payload, len, out);
}

#define FWD(w, id, lit, out) wp_forward(w, id, lit, sizeof lit - 1, out)

static void expect_forward_error(struct wpeer *w, uint64_t id, const char *payload, size_t len,
                                 const char *text)
{
    struct wreply r;
    wp_forward(w, id, payload, len, &r);
    assert_int_equal(r.status, WIRE_CODE_ERROR);
    if (strncmp(r.text, text, strlen(text)) != 0)
        fail_msg("FORWARD %llu: want an error starting \"%s\", got \"%s\"",
                 (unsigned long long)id, text, r.text);
}

#define FWD_ERROR(w, id, lit, text) expect_forward_error(w, id, lit, sizeof lit - 1, text)

/* A FORWARD is checked as a client's command is: a GETRANGE without its
 * range (which read past its arguments and crashed the node), a key over
 * max-key-size, an unknown or keyless command, and a payload that is not
 * exactly one RESP array (a pipeline, an inline command, trailing bytes)
 * are answered ERROR with the reason; a good one still runs, and the node
 * lives on. */
static void test_peerlink_forward_checked_as_a_client(void **state)
{
    const char *flags0[] = {"--threads", "1", "--max-key-size", "16", NULL};
    struct wpeer w;
    hostile_open(&w, NULL, flags0);
    FWD_ERROR(&w, 1, "*2\r\n$8\r\nGETRANGE\r\n$3\r\nhk1\r\n",
              "ERR wrong number of arguments for 'getrange' command");
    FWD_ERROR(&w, 2, "*2\r\n$3\r\nSET\r\n$3\r\nhk1\r\n", "ERR wrong number of arguments");
    FWD_ERROR(&w, 3, "*2\r\n$3\r\nGET\r\n$17\r\nkkkkkkkkkkkkkkkkk\r\n", "ERR key too large");
    FWD_ERROR(&w, 4, "*2\r\n$3\r\nGET\r\n$3\r\nhk1\r\n*2\r\n$3\r\nGET\r\n$3\r\nhk1\r\n",
              "ERR a forwarded command must be one RESP array");
    FWD_ERROR(&w, 5, "GET hk1\r\n", "ERR a forwarded command must be one RESP array");
    FWD_ERROR(&w, 6, "*2\r\n$3\r\nGET\r\n$3\r\nhk1\r\nxyz",
              "ERR a forwarded command must be one RESP array");
    FWD_ERROR(&w, 7, "*2\r\n$3\r\nGET\r\n$3\r\nhk", "ERR a forwarded command must be one");
    FWD_ERROR(&w, 8, "*1\r\n$4\r\nPING\r\n", "ERR not a single-key command");
    FWD_ERROR(&w, 9, "*2\r\n$4\r\nNOPE\r\n$3\r\nhk1\r\n", "ERR not a single-key command");
    struct wreply r;
    FWD(&w, 10, "*3\r\n$3\r\nSET\r\n$3\r\nhk1\r\n$5\r\nhello\r\n", &r);
    assert_int_equal(r.status, WIRE_CODE_OK);
    assert_string_equal(r.value, "+OK\r\n");
    FWD(&w, 11, "*4\r\n$8\r\nGETRANGE\r\n$3\r\nhk1\r\n$1\r\n1\r\n$1\r\n3\r\n", &r);
    assert_int_equal(r.status, WIRE_CODE_OK);
    assert_string_equal(r.value, "$3\r\nell\r\n");
    wp_close(&w);
    char *echo = cluster_ask(0, "ECHO alive");
    assert_non_null(echo);
    assert_string_equal(echo, "alive");
    free(echo);
    /* a client's GETRANGE without its range is refused at node 1 (forwarded
     * or not) the same way */
    redisReply *e = cluster_redis_command(1, "GETRANGE hk1");
    assert_non_null(e);
    assert_int_equal(e->type, REDIS_REPLY_ERROR);
    freeReplyObject(e);
    cluster_stop(1);
    cluster_stop(0);
}

/* A counter of node i's INFO (all sections). */
static long long info_all(int i, const char *name)
{
    char *info = cluster_ask(i, "INFO");
    long long v = info ? cluster_info_field(info, name) : -1;
    free(info);
    return v;
}

/* The node (0 .. 2) that CLUSTER SLOTS at node 0 does not list for slot. */
static int non_replica_of(uint16_t slot)
{
    redisReply *r = cluster_redis_command(0, "CLUSTER SLOTS");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    bool listed[3] = {false, false, false};
    for (size_t j = 0; j < r->elements; j++) {
        redisReply *range = r->element[j];
        if (slot < range->element[0]->integer || slot > range->element[1]->integer)
            continue;
        for (size_t k = 2; k < range->elements; k++)
            for (int i = 0; i < 3; i++)
                listed[i] |= strcmp(range->element[k]->element[0]->str, cluster_host(i)) == 0;
    }
    freeReplyObject(r);
    for (int i = 0; i < 3; i++)
        if (!listed[i])
            return i;
    fail_msg("slot %u: every node is listed", slot);
    return -1;
}

/* Three nodes, replicas 2: a FORWARD reaching the node that holds no
 * replica of its key (the sender's view was another) is sent on once to a
 * replica, which coordinates it: the node neither stores the key nor
 * counts itself toward W; one already sent on (WIRE_MSG_HOPPED) is refused
 * with TRYAGAIN; a GET or SYNC there is refused too (once it released what
 * the formation moved: a node releasing a partition answers its GETs). */
/* Node *arg releases no partition any more (a node releasing one holds it
 * whole until its new replicas have it, and answers GETs of it). */
static bool releases_none(void *arg)
{
    json_t *st = cluster_get(*(int *)arg, "/v1/stats");
    json_t *v = st ? json_object_get(st, "transfer_partitions_releasing") : NULL;
    bool none = json_is_integer(v) && json_integer_value(v) == 0;
    json_decref(st);
    return none;
}

static void test_peerlink_forward_at_a_non_replica(void **state)
{
    for (int i = 0; i < 3; i++) {
        const char *flags[] = {"--threads", "1", "--replicas", "2",
                               i ? "--seeds" : NULL, cluster_seed(0), NULL};
        assert_int_equal(cluster_start(i, flags), 0);
    }
    int three = 3;
    assert_true(cluster_wait(cluster_formed, &three, FORM_MS));
    assert_true(cluster_wait(cluster_views_agree, &three, FORM_MS));
    static const char key[] = "nonreplica";
    uint16_t slot = keyhash_slot(key, sizeof key - 1);
    int x = non_replica_of(slot), as = (x + 1) % 3;
    printf("peerlink: node %d holds no replica of slot %u\n", x, slot);
    assert_true(cluster_wait(releases_none, &x, FORM_MS)); /* the formation's moves */
    struct wpeer w;
    wp_open(&w, x);
    assert_int_equal(wp_handshake(&w, cluster_node(as)->id, cluster_node(x)->id, 0, NULL, 0,
                                  WIRE_VERSION_MIN, WIRE_VERSION),
                     WIRE_HS_DONE);
    long long writes0 = info_all(x, "ringkv_coordinated_writes");
    long long fwd0 = info_all(x, "ringkv_forwarded");
    struct wreply r;
    FWD(&w, 1, "*3\r\n$3\r\nSET\r\n$10\r\nnonreplica\r\n$5\r\nthere\r\n", &r);
    assert_int_equal(r.status, WIRE_CODE_OK);
    assert_string_equal(r.value, "+OK\r\n");
    assert_int_equal(info_all(x, "ringkv_coordinated_writes"), writes0);
    assert_int_equal(info_all(x, "ringkv_forwarded"), fwd0 + 1);
    static const char payload[] = "*2\r\n$3\r\nGET\r\n$10\r\nnonreplica\r\n";
    wp_forward_flags(&w, 2, WIRE_MSG_HOPPED, payload, sizeof payload - 1, &r);
    assert_int_equal(r.status, WIRE_CODE_ERROR);
    assert_true(strncmp(r.text, "TRYAGAIN", 8) == 0);
    /* a replica's GET for the key: this node holds none */
    struct wire_msg m;
    wp_get(&w, 3, key, &m);
    printf("peerlink: GET at the non-replica: %s \"%.*s\"\n", wire_code_name(m.status),
           (int)m.text.len, (const char *)m.text.ptr);
    assert_int_equal(m.status, WIRE_CODE_ERROR);
    wp_close(&w);
    static const uint8_t there[] = "there";
    for (int i = 0; i < 3; i++) {
        struct set_try read = {i, key, there, sizeof there - 1};
        assert_true(cluster_wait(get_reads, &read, 5000));
    }
}

/* A reply larger than the frame the peer announced (here the smallest,
 * 64 KiB) cannot be sent: the peer gets ERROR at once, for a GET and for
 * a FORWARD, instead of waiting for its deadline. */
static void test_peerlink_reply_over_the_peer_frame(void **state)
{
    enum { VALUE = 100000 };
    start_node(0, NULL, "1");
    set_big_at_0(VALUE);
    struct wpeer w;
    wp_open(&w, 0);
    assert_int_equal(wp_handshake(&w, member_id, cluster_node(0)->id, 0, NULL, 0,
                                  WIRE_VERSION_MIN, WIRE_VERSION),
                     WIRE_HS_DONE);
    struct wire_msg m;
    wp_get(&w, 1, "big", &m);
    assert_int_equal(m.status, WIRE_CODE_ERROR);
    printf("peerlink: GET of a value over the frame: \"%.*s\"\n", (int)m.text.len,
           (const char *)m.text.ptr);
    FWD_ERROR(&w, 2, "*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n", "ERR value exceeds the peer's frame");
    wp_close(&w);
    cluster_stop(0);
}

static char faults_control[96];

static bool faults_read(void *arg)
{
    return access(faults_control, F_OK) != 0;
}

/* Forwards EXEC of key with raw watches (wlen bytes) and the queue `cmds`
 * (commands split by '|', words by ' '), encoded as cmd_exec does; its
 * REPLY into out. */
static void fwd_exec(struct wpeer *w, uint64_t id, const char *key, const char *watches,
                     size_t wlen, const char *cmds, struct wreply *out)
{
    char queue[512], payload[1024], words[256];
    size_t q = 0;
    snprintf(words, sizeof words, "%s", cmds);
    for (char *save = NULL, *cmd = strtok_r(words, "|", &save); cmd;
         cmd = strtok_r(NULL, "|", &save)) {
        size_t at = q;
        uint32_t argc = 0;
        q += 4;
        for (char *s2 = NULL, *word = strtok_r(cmd, " ", &s2); word;
             word = strtok_r(NULL, " ", &s2), argc++) {
            uint32_t len = (uint32_t)strlen(word);
            memcpy(queue + q, &len, 4);
            memcpy(queue + q + 4, word, len);
            q += 4 + len;
        }
        memcpy(queue + at, &argc, 4);
    }
    size_t n = (size_t)snprintf(payload, sizeof payload, "*4\r\n$4\r\nEXEC\r\n$%zu\r\n%s\r\n$%zu\r\n",
                                strlen(key), key, wlen);
    memcpy(payload + n, watches, wlen);
    n += wlen;
    n += (size_t)snprintf(payload + n, sizeof payload - n, "\r\n$%zu\r\n", q);
    memcpy(payload + n, queue, q);
    memcpy(payload + n + q, "\r\n", 2);
    wp_forward(w, id, payload, n + q + 2, out);
}

/* MISCONF: while node 0's log cannot persist (ringkv-faults failing its
 * writes), a SYNC is refused at once with the MISCONF text, rather than
 * applied in memory and acknowledged (or held until the deadline); a
 * forwarded write and a forwarded transaction are not coordinated there
 * but sent on to the other replica, node 1 (coord.h), whose write needs
 * node 0's copy (N = W = 2 on two nodes): -UNAVAILABLE at once, and a
 * transaction that writes nothing answers its replies. */
static void test_peerlink_misconf_refuses_syncs(void **state)
{
    const char *faults = getenv("RINGKV_FAULTS_BIN");
    char work[64] = "/tmp/ringkv-misconf-XXXXXX";
    if (!faults || !faults[0] || !mkdtemp(work))
        skip();
    snprintf(faults_control, sizeof faults_control, "%s/faults", work);
    setenv("RINGKV_FAULTS", faults_control, 1);
    const char *flags0[] = {"--threads", "1", "--storage", "log", NULL};
    struct wpeer w;
    hostile_open(&w, faults, flags0);
    static const uint8_t v[] = "v";
    struct set_try set = {0, "k", v, 1};
    assert_true(cluster_wait(set_acknowledged, &set, 10000));
    /* a version to SYNC: k's, as node 0 exports it */
    struct wire_msg m;
    wp_get(&w, 1, "k", &m);
    assert_int_equal(m.status, WIRE_CODE_OK);
    uint8_t meta[256];
    assert_true(m.meta.len <= sizeof meta);
    uint32_t meta_len = m.meta.len;
    memcpy(meta, m.meta.ptr, meta_len);

    FILE *f = fopen(faults_control, "w");
    assert_non_null(f);
    fprintf(f, "write 100\n");
    assert_int_equal(fclose(f), 0);
    assert_true(cluster_wait(faults_read, NULL, 5000));
    bool refused = false;
    int64_t deadline = cluster_now_ms() + 10000;
    while (!refused && cluster_now_ms() < deadline) {
        freeReplyObject(cluster_redis_command(0, "SET fill %s", "x")); /* sent on, refused */
        char *info = cluster_ask(0, "INFO persistence");
        refused = info && cluster_info_has(info, "log_write_status:err");
        free(info);
    }
    assert_true(refused);
    uint16_t slot2 = keyhash_slot("fresh", 5);
    struct wire_bytes body = {v, 1};
    struct wire_msg sync = {.kind = WIRE_REQUEST,
                            .id = 2,
                            .op = WIRE_OP_SYNC,
                            .deadline_ms = 3000,
                            .slot = slot2,
                            .partition = slot2 >> 4,
                            .key = {(const uint8_t *)"fresh", 5},
                            .meta = {meta, meta_len},
                            .n_values = 1,
                            .values = &body};
    struct wire_writer wr;
    wire_writer_init(&wr, &w.out, w.hs.version, w.hs.peer_max_frame);
    assert_int_equal(wire_write_msg(&wr, &sync), 0);
    wire_writer_flush(&wr);
    int64_t t0 = cluster_now_ms();
    wp_send(&w);
    wp_reply(&w, 2, &m);
    printf("peerlink: SYNC under MISCONF: %s after %lld ms: \"%.*s\"\n", wire_code_name(m.status),
           (long long)(cluster_now_ms() - t0), (int)m.text.len, (const char *)m.text.ptr);
    assert_int_equal(m.status, WIRE_CODE_ERROR);
    assert_true(m.text.len > 7 && memcmp(m.text.ptr, "MISCONF", 7) == 0);
    static const char fwd_set[] = "*3\r\n$3\r\nSET\r\n$5\r\nfresh\r\n$1\r\nv\r\n";
    struct wreply r;
    wp_forward(&w, 3, fwd_set, sizeof fwd_set - 1, &r);
    printf("peerlink: forwarded SET under MISCONF: %s \"%s\" \"%s\"\n", wire_code_name(r.status),
           r.text, r.value);
    assert_int_equal(r.status, WIRE_CODE_OK); /* node 1's reply, relayed */
    assert_true(strncmp(r.value, "-UNAVAILABLE 1 of 2", 19) == 0);
    /* a transaction too (SET XX of an absent key writes nothing) */
    fwd_exec(&w, 4, "txfresh", "", 0, "SET txfresh v XX", &r);
    assert_int_equal(r.status, WIRE_CODE_OK);
    assert_string_equal(r.value, "*1\r\n$-1\r\n");
    wp_close(&w);
    unsetenv("RINGKV_FAULTS");
    cluster_stop(1);
    cluster_stop(0);
    unlink(faults_control);
    rmdir(work);
}

/* The nodes (0 .. 2) of slot's preference list at node 0, in order. */
static void pref_of(uint16_t slot, int out[3])
{
    redisReply *r = cluster_redis_command(0, "CLUSTER SLOTS");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    int n = 0;
    for (size_t j = 0; j < r->elements; j++) {
        redisReply *range = r->element[j];
        if (slot < range->element[0]->integer || slot > range->element[1]->integer)
            continue;
        for (size_t k = 2; k < range->elements && n < 3; k++)
            for (int i = 0; i < 3; i++)
                if (strcmp(range->element[k]->element[0]->str, cluster_host(i)) == 0)
                    out[n++] = i;
    }
    freeReplyObject(r);
    assert_int_equal(n, 3);
}

/* FLUSHALL ASYNC (a member-wide write, no key) to a member whose link
 * cannot be made now (killed, not yet seen down): it is not sent to a
 * "next replica" of partition 0 instead (which acknowledged it for the
 * member that never flushed); the client hears that the member cannot be
 * reached. */
static void test_peerlink_flushall_no_keyed_fallback(void **state)
{
    for (int i = 0; i < 3; i++) {
        const char *flags[] = {"--request-timeout", "1000", i ? "--seeds" : NULL,
                               cluster_seed(0), NULL};
        assert_int_equal(cluster_start(i, flags), 0);
    }
    int three = 3;
    assert_true(cluster_wait(cluster_formed, &three, FORM_MS));
    int list[3];
    pref_of(0, list); /* partition 0: the fallback went down its list */
    int gone = list[0], at = list[2];
    printf("peerlink: partition 0 list %d %d %d: FLUSHALL at %d, node %d killed\n", list[0],
           list[1], list[2], at, gone);
    redisReply *r = cluster_redis_command(at, "FLUSHALL ASYNC");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS); /* links made */
    freeReplyObject(r);
    char gone_id[41];
    snprintf(gone_id, sizeof gone_id, "%s", cluster_node(gone)->id);
    cluster_signal(gone, SIGKILL);
    /* one FLUSHALL every 25 ms for a second, each on its own connection:
     * some find the link's dial failing, some its backoff (the spacing is
     * the stimulus, not a wait for an outcome) */
    enum { N = 40 };
    redisContext *c[N];
    for (int k = 0; k < N; k++) {
        c[k] = cluster_redis(at);
        redisAppendCommand(c[k], "FLUSHALL ASYNC");
        int done = 0;
        while (!done)
            assert_int_equal(redisBufferWrite(c[k], &done), REDIS_OK);
        nanosleep(&(struct timespec){.tv_nsec = 25 * 1000000L}, NULL);
    }
    int errors = 0, acks = 0;
    for (int k = 0; k < N; k++) {
        void *reply = NULL;
        assert_int_equal(redisGetReply(c[k], &reply), REDIS_OK);
        redisReply *rk = reply;
        if (rk->type == REDIS_REPLY_ERROR && errors++ == 0)
            printf("peerlink: FLUSHALL: %s\n", rk->str);
        acks += rk->type == REDIS_REPLY_STATUS;
        freeReplyObject(rk);
        redisFree(c[k]);
    }
    const char *st = cluster_status_of(at, gone_id);
    printf("peerlink: %d FLUSHALLs acknowledged, %d errors; node %d is %s at node %d\n", acks,
           errors, gone, st ? st : "?", at);
    if (st && (strcmp(st, "up") == 0 || strcmp(st, "suspect") == 0))
        assert_int_equal(acks, 0); /* not seen down: nobody may acknowledge for it */
    assert_true(errors > 0);
}

/* A forwarded EXEC is checked as a client's transaction is, before any of
 * it runs: a queued MULTI (which crashed the node: no connection), a
 * GETRANGE without its range (read past its arguments), a key of another
 * slot, a key over max-key-size, malformed watches or queue bytes are
 * answered ERROR; a good one still runs, and the node lives on. */
static void test_peerlink_exec_checked_as_a_client(void **state)
{
    const char *flags0[] = {"--threads", "1", "--max-key-size", "16", NULL};
    struct wpeer w;
    hostile_open(&w, NULL, flags0);
    assert_true(keyhash_slot("hk1", 3) != keyhash_slot("other", 5));
    static const char watch_cut[] = "\x03\0\0\0hk1\x01\0\0"; /* an entry missing its cas */
    static const char watch_far[] = "\x05\0\0\0other\x00";  /* absent, of another slot */
    struct {
        const char *watches;
        size_t wlen;
        const char *cmds, *want;
    } bad[] = {
        {"", 0, "MULTI hk1", "ERR Command not allowed inside a transaction"},
        {"", 0, "SET hk1 v|EXEC hk1", "ERR Command not allowed inside a transaction"},
        {"", 0, "WATCH hk1", "ERR Command not allowed inside a transaction"},
        {"", 0, "FLUSHALL hk1", "ERR Command not allowed inside a transaction"},
        {"", 0, "GETRANGE hk1", "ERR wrong number of arguments"},
        {"", 0, "SET hk1 v|SET other v", "CROSSSLOT"},
        {"", 0, "GET {hk1}kkkkkkkkkkkkkkk", "ERR key too large"},
        {"", 0, "NOPE hk1", "ERR unknown command"},
        {watch_cut, sizeof watch_cut - 1, "GET hk1", "ERR a forwarded EXEC's watches"},
        {watch_far, sizeof watch_far - 1, "GET hk1", "CROSSSLOT"},
    };
    struct wreply r;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fwd_exec(&w, 1 + i, "hk1", bad[i].watches, bad[i].wlen, bad[i].cmds, &r);
        assert_int_equal(r.status, WIRE_CODE_ERROR);
        if (strncmp(r.text, bad[i].want, strlen(bad[i].want)) != 0)
            fail_msg("EXEC [%s]: want \"%s\", got \"%s\"", bad[i].cmds, bad[i].want, r.text);
    }
    /* a queue whose last command is cut short */
    static const char cut[] = "*4\r\n$4\r\nEXEC\r\n$3\r\nhk1\r\n$0\r\n\r\n$9\r\n"
                              "\x01\0\0\0\x03\0\0\0G\r\n";
    FWD_ERROR(&w, 20, cut, "ERR a forwarded EXEC's queue is malformed");
    fwd_exec(&w, 21, "hk1", "", 0, "SET hk1 5|INCR hk1|PING", &r);
    assert_int_equal(r.status, WIRE_CODE_OK);
    assert_string_equal(r.value, "*3\r\n+OK\r\n:6\r\n+PONG\r\n");
    wp_close(&w);
    redisReply *echo = cluster_redis_command(0, "ECHO alive");
    assert_true(echo && echo->type == REDIS_REPLY_STRING && strcmp(echo->str, "alive") == 0);
    freeReplyObject(echo);
    cluster_stop(1);
    cluster_stop(0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (getenv("TEST_FILTER"))
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_peerlink_request_reply_without_secret, cluster_forget_all),
        cmocka_unit_test_teardown(test_peerlink_proves_the_derived_key, cluster_forget_all),
        cmocka_unit_test_teardown(test_peerlink_refusals, cluster_forget_all),
        cmocka_unit_test_teardown(test_peerlink_garbage_keeps_node_and_gossip,
                                  cluster_forget_all),
        cmocka_unit_test_teardown(test_peerlink_batches_and_split_frames, cluster_forget_all),
        cmocka_unit_test_teardown(test_peerlink_pauses_a_peer_that_does_not_read,
                                  cluster_forget_all),
        cmocka_unit_test_teardown(test_peerlink_silent_handshake_is_closed, cluster_forget_all),
        cmocka_unit_test_teardown(test_peerlink_caps_handshakes_in_progress, cluster_forget_all),
        cmocka_unit_test_teardown(test_peerlink_two_nodes_over_their_links, cluster_forget_all),
        cmocka_unit_test_teardown(test_peerlink_forward_checked_as_a_client, cluster_forget_all),
        cmocka_unit_test_teardown(test_peerlink_refuses_non_members, cluster_forget_all),
        cmocka_unit_test_teardown(test_peerlink_pauses_within_a_frame, cluster_forget_all),
        cmocka_unit_test_teardown(test_peerlink_bad_message_after_good_ones, cluster_forget_all),
        cmocka_unit_test_teardown(test_peerlink_forward_at_a_non_replica, cluster_forget_all),
        cmocka_unit_test_teardown(test_peerlink_reply_over_the_peer_frame, cluster_forget_all),
        cmocka_unit_test_teardown(test_peerlink_misconf_refuses_syncs, cluster_forget_all),
        cmocka_unit_test_teardown(test_peerlink_flushall_no_keyed_fallback, cluster_forget_all),
        cmocka_unit_test_teardown(test_peerlink_exec_checked_as_a_client, cluster_forget_all),
    };
    return cluster_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
