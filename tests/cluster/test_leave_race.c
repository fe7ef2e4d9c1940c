/* test_leave_race: what a node UP does with a ring of its cluster that lacks
 * it (admin.c, admin_take_ring() and admin_rejoin()), against a real node
 * (node 0 of cluster_harness.h) and a member played by this process: F, on
 * 127.0.0.7, speaking the gossip protocol itself (gossip.h frames over UDP
 * and streams, no cluster-secret). F joins node 0 (a push-pull with the join
 * flag, admitted), node 0 (the claimant: F's id is the highest) puts it in
 * a ring of the two and sets it up; then F advertises a ring of itself alone
 * (a higher epoch) and answers node 0's RING_REQs with it: the ring of a
 * leave (or of a claimant race node 0 lost) that reached node 0 before any
 * gossip about node 0's state.
 * - The leave: node 0 must not announce itself JOINING (it did at once when
 *   the ring of a DELETE came before the gossip of its LEAVING state); once F
 *   gossips that node 0 is LEAVING (F holds the ring back until node 0 says
 *   so), node 0 takes the ring, sets itself LEFT and is a cluster of one.
 * - The lost race (no LEAVING comes): node 0 joins again, but only after
 *   the grace (ADMIN_REJOIN_GRACE_MS, 4 s; at least 3 s measured here).
 * - A cancelled leave: node 0, LEAVING, takes the ring, then is set UP again
 *   (a POST): it joins again by itself.
 * Every wait is on a condition with a deadline. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "cluster_harness.h"
#include "gossip.h"
#include "member.h"
#include "ring.h"

#define Q 1024             /* the partitions setting's default */
#define F_HOST "127.0.0.7" /* outside the harness's 127.0.0.2 .. 127.0.0.6 */
#define F_CONNS 8
#define STEP_MS 20000      /* the deadline of each step */
#define GRACE_MIN_MS 3000  /* ADMIN_REJOIN_GRACE_MS is 4000 */

static const char F_ID[] = "ffffffffffffffffffffffffffffffffffffffff";

/* The fake member: its sockets, what it heard of node 0. */
struct fake {
    int udp, lsn, conns[F_CONNS];
    uint8_t *rbuf[F_CONNS];
    size_t rlen[F_CONNS];
    char addr[GOSSIP_ADDR_MAX + 1];
    char x_id[GOSSIP_ID_LEN + 1];
    char x_addr[GOSSIP_ADDR_MAX + 1];
    uint64_t x_version;            /* node 0's state version, from its push-pull answer */
    bool f_up;                     /* node 0 said F is UP */
    enum member_state x_state;     /* node 0's latest state about itself */
    uint64_t x_ring_epoch;         /* the ring node 0 advertises */
    uint64_t x_state_version;
    bool x_joining;                /* node 0 announced itself JOINING at a version above x_version */
    int64_t x_joining_ms;
    int ring_reqs;                 /* RING_REQs answered or seen */
    int req_conn;                  /* where the last unanswered RING_REQ came from, or -1 */
    uint32_t req_seq;
    bool answer;                   /* answer RING_REQs with the ring ... */
    int answers_left;              /* ... this many more times (-1: always) */
    int64_t ring_sent_ms;          /* the first answer */
    uint8_t *ring_bytes;
    size_t ring_len;
    uint64_t ring_epoch, ring_hash;
};

static void fake_send_stream(int fd, const struct gossip_writer *w)
{
    size_t off = 0;
    while (off < w->len) {
        ssize_t n = send(fd, w->data + off, w->len - off, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        off += (size_t)n;
    }
}

static void fake_send_udp(struct fake *f, const char *to, const struct gossip_writer *w)
{
    char host[64];
    snprintf(host, sizeof host, "%s", to);
    char *colon = strrchr(host, ':');
    assert_non_null(colon);
    *colon = '\0';
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    inet_pton(AF_INET, host, &sa.sin_addr);
    sendto(f->udp, w->data, w->len, 0, (struct sockaddr *)&sa, sizeof sa);
}

/* F's own update: NODE (a push-pull) or ALIVE at incarnation inc. */
static void fake_self(const struct fake *f, enum gossip_kind kind, uint64_t inc,
                      struct gossip_update *u)
{
    memset(u, 0, sizeof *u);
    u->kind = kind;
    snprintf(u->info.id, sizeof u->info.id, "%s", F_ID);
    snprintf(u->info.client_addr, sizeof u->info.client_addr, "%s:1", F_HOST);
    snprintf(u->info.cluster_addr, sizeof u->info.cluster_addr, "%s", f->addr);
    u->info.weight = 1;
    u->info.ring_epoch = kind == GOSSIP_NODE ? 0 : f->ring_epoch;
    u->info.ring_hash = kind == GOSSIP_NODE ? 0 : f->ring_hash;
    u->incarnation = inc;
    u->state = MEMBER_JOINING;
    u->state_version = 1; /* admitted (auto-join) */
    u->health = MEMBER_ALIVE;
}

/* What node 0 tells about itself and F. */
static void fake_note(struct fake *f, const struct gossip_msg *msg)
{
    struct gossip_iter it;
    struct gossip_update u;
    gossip_iter_init(&it, msg);
    while (gossip_next_update(&it, &u)) {
        if (strcmp(u.info.id, f->x_id) == 0 && u.kind != GOSSIP_SUSPECT &&
            u.kind != GOSSIP_DEAD && u.kind != GOSSIP_LEAVE)
            f->x_ring_epoch = u.info.ring_epoch;
        bool stateful = u.kind == GOSSIP_JOIN || u.kind == GOSSIP_LEAVE || u.kind == GOSSIP_NODE;
        if (!stateful)
            continue;
        if (strcmp(u.info.id, F_ID) == 0 && u.state == MEMBER_UP)
            f->f_up = true;
        if (strcmp(u.info.id, f->x_id) != 0)
            continue;
        if (msg->type == GOSSIP_PUSH_PULL && (msg->flags & GOSSIP_F_REPLY) && !f->x_version)
            f->x_version = u.state_version;
        if (u.state_version > f->x_state_version ||
            (u.state_version == f->x_state_version && u.state > f->x_state)) {
            f->x_state = u.state;
            f->x_state_version = u.state_version;
        }
        if (u.state == MEMBER_JOINING && f->x_version && u.state_version > f->x_version &&
            !f->x_joining) {
            f->x_joining = true;
            f->x_joining_ms = cluster_now_ms();
        }
    }
}

static void fake_answer_ring(struct fake *f, int conn, uint32_t seq)
{
    struct gossip_writer w;
    gossip_writer_init(&w);
    gossip_begin_ring(&w, GOSSIP_RING, 0, seq, F_ID, f->ring_epoch, f->ring_hash, f->ring_bytes,
                      (uint32_t)f->ring_len);
    gossip_end(&w);
    fake_send_stream(f->conns[conn], &w);
    gossip_writer_fini(&w);
    if (!f->ring_sent_ms)
        f->ring_sent_ms = cluster_now_ms();
}

/* One frame from a stream (conn >= 0) or a datagram from `from`. */
static void fake_frame(struct fake *f, const struct gossip_msg *msg, int conn,
                       const struct sockaddr_in *from)
{
    fake_note(f, msg);
    if (msg->type == GOSSIP_PING && strcmp(msg->target, F_ID) == 0) {
        struct gossip_writer w;
        gossip_writer_init(&w);
        gossip_begin(&w, GOSSIP_ACK, 0, msg->seq, F_ID, NULL, NULL);
        gossip_end(&w);
        if (conn >= 0)
            fake_send_stream(f->conns[conn], &w);
        else
            sendto(f->udp, w.data, w.len, 0, (const struct sockaddr *)from, sizeof *from);
        gossip_writer_fini(&w);
    } else if (msg->type == GOSSIP_RING_REQ && conn >= 0 && f->ring_bytes) {
        f->ring_reqs++;
        f->req_conn = conn;
        f->req_seq = msg->seq;
        if (f->answer && f->answers_left != 0) {
            fake_answer_ring(f, conn, msg->seq);
            f->req_conn = -1;
            f->answers_left -= f->answers_left > 0;
        }
    }
}

/* Reads what is there for up to wait_ms: datagrams, new connections, stream
 * frames. */
static void fake_poll(struct fake *f, int wait_ms)
{
    struct pollfd p[2 + F_CONNS];
    p[0] = (struct pollfd){.fd = f->udp, .events = POLLIN};
    p[1] = (struct pollfd){.fd = f->lsn, .events = POLLIN};
    for (int i = 0; i < F_CONNS; i++)
        p[2 + i] = (struct pollfd){.fd = f->conns[i], .events = POLLIN};
    if (poll(p, 2 + F_CONNS, wait_ms) <= 0)
        return;
    if (p[0].revents & POLLIN) {
        uint8_t buf[65536];
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(f->udp, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        struct gossip_msg msg;
        size_t used;
        const char *err;
        if (n > 0 && gossip_decode(buf, (size_t)n, &msg, &used, &err) == GOSSIP_OK)
            fake_frame(f, &msg, -1, &from);
    }
    if (p[1].revents & POLLIN) {
        int fd = accept(f->lsn, NULL, NULL);
        for (int i = 0; fd >= 0 && i < F_CONNS; i++)
            if (f->conns[i] < 0) {
                f->conns[i] = fd;
                fd = -1;
            }
        if (fd >= 0)
            close(fd);
    }
    for (int i = 0; i < F_CONNS; i++) {
        if (f->conns[i] < 0 || !(p[2 + i].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        uint8_t buf[65536];
        ssize_t n = recv(f->conns[i], buf, sizeof buf, 0);
        if (n <= 0) {
            close(f->conns[i]);
            f->conns[i] = -1;
            f->rlen[i] = 0;
            continue;
        }
        f->rbuf[i] = realloc(f->rbuf[i], f->rlen[i] + (size_t)n);
        assert_non_null(f->rbuf[i]);
        memcpy(f->rbuf[i] + f->rlen[i], buf, (size_t)n);
        f->rlen[i] += (size_t)n;
        size_t off = 0, used;
        struct gossip_msg msg;
        const char *err;
        enum gossip_status st;
        while ((st = gossip_decode(f->rbuf[i] + off, f->rlen[i] - off, &msg, &used, &err)) ==
               GOSSIP_OK) {
            fake_frame(f, &msg, i, NULL);
            off += used;
        }
        if (st == GOSSIP_BAD)
            fail_msg("fake member: a bad frame from node 0: %s", err);
        memmove(f->rbuf[i], f->rbuf[i] + off, f->rlen[i] - off);
        f->rlen[i] -= off;
    }
}

/* Polls until cond(f) or STEP_MS; false when the deadline passed. */
static bool fake_until(struct fake *f, bool (*cond)(const struct fake *f))
{
    int64_t end = cluster_now_ms() + STEP_MS;
    while (!cond(f)) {
        if (cluster_now_ms() >= end)
            return false;
        fake_poll(f, 50);
    }
    return true;
}

static bool f_is_up(const struct fake *f) { return f->f_up && f->x_version; }
static bool x_joins_or_asks_again(const struct fake *f)
{
    return f->x_joining || f->ring_reqs >= 2;
}
static bool x_joins(const struct fake *f) { return f->x_joining; }
static bool x_took_ring(const struct fake *f) { return f->x_ring_epoch == f->ring_epoch; }
static bool x_is_leaving(const struct fake *f)
{
    return f->x_state == MEMBER_LEAVING || f->x_state == MEMBER_LEFT;
}

/* Node 0 started alone; F listening, joined to it and set UP in a ring of
 * the two; F's ring of itself alone (epoch 100) ready to advertise. */
static void fake_start(struct fake *f)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < F_CONNS; i++)
        f->conns[i] = -1;
    f->req_conn = -1;
    assert_int_equal(cluster_start(0, NULL), 0);
    snprintf(f->x_id, sizeof f->x_id, "%s", cluster_node(0)->id);
    snprintf(f->x_addr, sizeof f->x_addr, "%s", cluster_seed(0));
    assert_true(strcmp(f->x_id, F_ID) < 0); /* node 0 is the claimant */

    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, F_HOST, &sa.sin_addr);
    f->udp = socket(AF_INET, SOCK_DGRAM, 0);
    f->lsn = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->udp >= 0 && f->lsn >= 0);
    assert_int_equal(bind(f->udp, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(f->udp, (struct sockaddr *)&sa, &sl), 0);
    int one = 1;
    setsockopt(f->lsn, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    assert_int_equal(bind(f->lsn, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(f->lsn, 8), 0);
    snprintf(f->addr, sizeof f->addr, "%s:%d", F_HOST, ntohs(sa.sin_port));

    /* F's ring: itself alone, a higher epoch than node 0 will have */
    struct ring_member me = {.weight = 1};
    snprintf(me.id, sizeof me.id, "%s", F_ID);
    const char *owners[Q];
    for (int p = 0; p < Q; p++)
        owners[p] = F_ID;
    struct ring *r;
    assert_int_equal(ring_from_owners(&me, 1, Q, 1, owners, 100, &r), 0);
    assert_int_equal(ring_encode(r, &f->ring_bytes, &f->ring_len), 0);
    f->ring_epoch = r->epoch;
    f->ring_hash = r->hash;
    ring_destroy(r);

    /* the join: a push-pull with the join flag over a stream */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in xa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)(cluster_client_port() + 10000))};
    inet_pton(AF_INET, cluster_host(0), &xa.sin_addr);
    struct sockaddr_in mine = {.sin_family = AF_INET};
    inet_pton(AF_INET, F_HOST, &mine.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&mine, sizeof mine), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&xa, sizeof xa), 0);
    f->conns[0] = fd;
    struct gossip_writer w;
    struct gossip_update u;
    gossip_writer_init(&w);
    gossip_begin(&w, GOSSIP_PUSH_PULL, GOSSIP_F_JOIN, 1, F_ID, NULL, NULL);
    fake_self(f, GOSSIP_NODE, 1, &u);
    gossip_add_update(&w, &u);
    gossip_end(&w);
    assert_false(w.failed);
    fake_send_stream(fd, &w);
    gossip_writer_fini(&w);
    if (!fake_until(f, f_is_up))
        fail_msg("node 0 did not put the fake member up in its ring (version %llu, up %d)",
                 (unsigned long long)f->x_version, f->f_up);
    printf("leave_race: node 0 (state version %llu) has the fake member up\n",
           (unsigned long long)f->x_version);
}

/* F advertises its ring (ALIVE at incarnation 2) and answers RING_REQs
 * with it. */
static void fake_advertise(struct fake *f)
{
    struct gossip_writer w;
    struct gossip_update u;
    gossip_writer_init(&w);
    gossip_begin(&w, GOSSIP_GOSSIP, 0, 2, F_ID, NULL, NULL);
    fake_self(f, GOSSIP_ALIVE, 2, &u);
    gossip_add_update(&w, &u);
    gossip_end(&w);
    fake_send_udp(f, f->x_addr, &w);
    gossip_writer_fini(&w);
    f->answer = true;
    f->answers_left = -1;
}

/* F gossips node 0's state at version. */
static void fake_set_x(struct fake *f, enum member_state state, uint64_t version)
{
    struct gossip_writer w;
    struct gossip_update u = {.kind = GOSSIP_LEAVE, .state = (uint8_t)state,
                              .state_version = version};
    snprintf(u.info.id, sizeof u.info.id, "%s", f->x_id);
    gossip_writer_init(&w);
    gossip_begin(&w, GOSSIP_GOSSIP, 0, 3, F_ID, NULL, NULL);
    gossip_add_update(&w, &u);
    gossip_end(&w);
    assert_false(w.failed);
    fake_send_udp(f, f->x_addr, &w);
    gossip_writer_fini(&w);
}

static void fake_stop(struct fake *f)
{
    close(f->udp);
    close(f->lsn);
    for (int i = 0; i < F_CONNS; i++) {
        if (f->conns[i] >= 0)
            close(f->conns[i]);
        free(f->rbuf[i]);
    }
    free(f->ring_bytes);
}

/* Node 0 is a cluster of one again: a ring of itself alone, itself up. */
static bool x_alone(void *arg)
{
    (void)arg;
    json_t *ring = cluster_get(0, "/v1/ring");
    json_t *members = json_object_get(ring, "members");
    json_t *m0 = json_array_get(members, 0);
    const char *id = json_is_string(m0) ? json_string_value(m0)
                                        : json_string_value(json_object_get(m0, "id"));
    bool one = json_array_size(members) == 1 && id && strcmp(id, cluster_node(0)->id) == 0;
    json_decref(ring);
    const char *st = cluster_status_of(0, cluster_node(0)->id);
    return one && st && strcmp(st, "up") == 0;
}

/* The ring of a leave comes before the gossip that node 0 is leaving: node
 * 0 must wait (it asks F again), not announce itself JOINING; told it is
 * LEAVING, it takes the ring, settles itself LEFT and is a cluster of one. */
static void test_leave_race_ring_before_leaving(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f);
    fake_advertise(&f);
    f.answers_left = 1; /* later asks wait for the LEAVING below, however slow node 0 is */
    if (!fake_until(&f, x_joins_or_asks_again))
        fail_msg("node 0 neither took the ring nor asked for it again");
    if (f.x_joining)
        fail_msg("node 0 announced itself JOINING %lld ms after a ring of its cluster without "
                 "it, before any gossip that it leaves: it would join again in the middle of "
                 "its own leave",
                 (long long)(f.x_joining_ms - f.ring_sent_ms));
    /* it asked again: the DELETE's LEAVING arrives now; the ring is held back
     * until node 0 says it is leaving, so only that can make it take it */
    fake_set_x(&f, MEMBER_LEAVING, f.x_version + 1);
    if (!fake_until(&f, x_is_leaving))
        fail_msg("node 0 did not take the LEAVING state");
    if (f.req_conn >= 0) {
        fake_answer_ring(&f, f.req_conn, f.req_seq);
        f.req_conn = -1;
    }
    f.answers_left = -1;
    int64_t end = cluster_now_ms() + STEP_MS;
    while (!x_alone(NULL) && cluster_now_ms() < end)
        fake_poll(&f, 100);
    bool alone = x_alone(NULL);
    fake_stop(&f);
    if (f.x_joining)
        fail_msg("node 0 announced itself JOINING while leaving");
    if (!alone)
        fail_msg("node 0 did not leave (a cluster of one again) within %d ms", STEP_MS);
}

/* No LEAVING comes (node 0 lost a race between two claimants): node 0 joins
 * again, once the grace has passed. */
static void test_leave_race_lost_race_rejoins_after_grace(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f);
    fake_advertise(&f);
    bool joined = fake_until(&f, x_joins);
    fake_stop(&f);
    if (!joined)
        fail_msg("node 0, beaten by a ring without it and not leaving, did not join again");
    long long after = (long long)(f.x_joining_ms - f.ring_sent_ms);
    printf("leave_race: node 0 joined again %lld ms after the ring\n", after);
    if (after < GRACE_MIN_MS)
        fail_msg("node 0 joined again %lld ms after the ring, before the grace (%d ms)", after,
                 GRACE_MIN_MS);
}

/* Node 0 took the ring of its leave while leaving, then a POST cancelled
 * the leave (UP a version higher): no ring beats the one it has, so it must
 * join again by itself (the claimant adds joiners only), not stay up out of
 * the ring for good (test_membership's post_cancels_a_leave under load). */
static void test_leave_race_cancelled_after_taking_the_ring(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f);
    fake_set_x(&f, MEMBER_LEAVING, f.x_version + 1);
    if (!fake_until(&f, x_is_leaving))
        fail_msg("node 0 did not take the LEAVING state");
    fake_advertise(&f);
    if (!fake_until(&f, x_took_ring))
        fail_msg("node 0, leaving, did not take the ring without it");
    /* the POST's cancel; node 0 itself would settle LEFT only 2 s after
     * taking the ring (ADMIN_SETTLE_LEFT_MS) */
    fake_set_x(&f, MEMBER_UP, f.x_version + 2);
    bool joined = fake_until(&f, x_joins);
    enum member_state st = f.x_state;
    fake_stop(&f);
    if (!joined)
        fail_msg("node 0, up again out of the ring it took while leaving (state %d), did not "
                 "join again within %d ms",
                 (int)st, STEP_MS);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_leave_race_ring_before_leaving, cluster_forget_all),
        cmocka_unit_test_teardown(test_leave_race_lost_race_rejoins_after_grace,
                                  cluster_forget_all),
        cmocka_unit_test_teardown(test_leave_race_cancelled_after_taking_the_ring,
                                  cluster_forget_all),
    };
    return cluster_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
