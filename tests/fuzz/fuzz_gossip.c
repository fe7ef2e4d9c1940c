/* fuzz_gossip.c: libFuzzer target for gossip_decode() and, behind it, the
 * membership state machine (member_on_message()).
 * The input is a stream of frames from a peer. Each is decoded until
 * GOSSIP_MORE or GOSSIP_BAD, checking the contract (consumed within the
 * input, a BAD has a reason, a MORE consumed nothing; every shorter prefix of
 * an OK frame, on an exact-size heap copy so AddressSanitizer sees any read
 * past it, is MORE). An OK frame's updates are read with the iterator and
 * written again with the encoder: when every update is of a known kind the
 * header and body must come back byte for byte, and the rewrite must decode.
 * Then the frame goes to a fresh member table of four members, which is
 * ticked through a few protocol periods: any crash or sanitizer report in
 * the merge, suspicion or refutation paths is found here. A RING frame's
 * bytes also go to ring_decode() (the admin thread decodes them so), whose
 * ring, when it accepts one, must encode back to the same bytes. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gossip.h"
#include "member.h"
#include "ring.h"
#include "fuzz_util.h"

static struct gossip_info info_of(unsigned i)
{
    struct gossip_info in = {.weight = 100, .ring_epoch = 1};
    snprintf(in.id, sizeof in.id, "%040x", i + 1);
    snprintf(in.cluster_addr, sizeof in.cluster_addr, "127.0.0.%u:16379", i + 1);
    snprintf(in.client_addr, sizeof in.client_addr, "127.0.0.%u:6379", i + 1);
    return in;
}

static struct member_table *small_table(void)
{
    struct member_config cfg;
    member_config_default(&cfg);
    struct gossip_info self = info_of(0);
    struct member_table *t = NULL;
    CHECK(member_create(&cfg, &self, 0, &t) == 0);
    struct gossip_writer w;
    gossip_writer_init(&w);
    struct gossip_info peer = info_of(1);
    gossip_begin(&w, GOSSIP_PUSH_PULL, GOSSIP_F_REPLY, 0, peer.id, NULL, NULL);
    for (unsigned i = 0; i < 4; i++) {
        struct gossip_info in = info_of(i);
        struct gossip_update u = {.kind = GOSSIP_NODE, .incarnation = 1, .info = in};
        gossip_add_update(&w, &u);
    }
    gossip_end(&w);
    CHECK(!w.failed);
    struct gossip_msg msg;
    size_t used;
    const char *err;
    CHECK(gossip_decode(w.data, w.len, &msg, &used, &err) == GOSSIP_OK);
    member_on_message(t, 0, peer.cluster_addr, &msg);
    CHECK(member_count(t) == 4);
    gossip_writer_fini(&w);
    member_outbox_clear(t);
    return t;
}

/* Every shorter prefix of a complete frame asks for more. */
static void check_prefixes(const uint8_t *frame, size_t len)
{
    size_t cuts[] = {0, 1, GOSSIP_HEADER_LEN - 1, GOSSIP_HEADER_LEN, len / 2, len - 1};
    for (unsigned k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        size_t n = cuts[k];
        if (n >= len)
            continue;
        uint8_t *copy = malloc(n ? n : 1);
        CHECK(copy);
        memcpy(copy, frame, n);
        struct gossip_msg msg;
        size_t used = 1;
        const char *err;
        CHECK(gossip_decode(copy, n, &msg, &used, &err) == GOSSIP_MORE && used == 0);
        free(copy);
    }
}

/* Writes the frame again from what was decoded. */
static void check_rewrite(const struct gossip_msg *msg)
{
    struct gossip_writer w;
    gossip_writer_init(&w);
    if (msg->type == GOSSIP_RING_REQ || msg->type == GOSSIP_RING)
        gossip_begin_ring(&w, msg->type, msg->flags, msg->seq, msg->from, msg->ring_epoch,
                          msg->ring_hash, msg->blob, msg->blob_len);
    else
        gossip_begin(&w, msg->type, msg->flags, msg->seq, msg->from, msg->target,
                     msg->target_addr);
    struct gossip_iter it;
    struct gossip_update u;
    uint32_t known = 0;
    gossip_iter_init(&it, msg);
    while (gossip_next_update(&it, &u)) {
        gossip_add_update(&w, &u);
        known++;
    }
    gossip_end(&w);
    CHECK(!w.failed);
    if (known == msg->n_updates)
        CHECK(w.len >= msg->signed_len &&
              memcmp(w.data, msg->signed_bytes, msg->signed_len) == 0);
    struct gossip_msg again;
    size_t used;
    const char *err;
    CHECK(gossip_decode(w.data, w.len, &again, &used, &err) == GOSSIP_OK && used == w.len);
    CHECK(again.n_updates == known && again.type == msg->type && again.seq == msg->seq);
    gossip_writer_fini(&w);
}

/* A ring's bytes, as the admin thread decodes a RING answer. */
static void check_ring(const struct gossip_msg *msg)
{
    if (msg->type != GOSSIP_RING)
        return;
    struct ring *r = NULL;
    if (ring_decode(msg->blob, msg->blob_len, &r) != 0)
        return;
    uint8_t *bytes;
    size_t len;
    CHECK(ring_encode(r, &bytes, &len) == 0);
    CHECK(len == msg->blob_len && memcmp(bytes, msg->blob, len) == 0);
    free(bytes);
    ring_destroy(r);
}

static void drive(const struct gossip_msg *msg)
{
    struct member_table *t = small_table();
    member_on_message(t, 10, "127.0.0.2:16379", msg);
    for (uint64_t now = 20; now < 12000; now += 250) {
        member_tick(t, now);
        const struct member_out *out;
        uint32_t n = member_outbox(t, &out);
        for (uint32_t k = 0; k < n; k++) {
            struct gossip_msg m;
            size_t used;
            const char *err;
            CHECK(gossip_decode(out[k].bytes, out[k].len, &m, &used, &err) == GOSSIP_OK);
            CHECK(used == out[k].len);
        }
        member_outbox_clear(t);
        const struct member_ring_msg *rm;
        CHECK(member_ring_msgs(t, &rm) <= MEMBER_RING_MSGS_MAX);
        member_events_clear(t);
    }
    CHECK(member_at(t, 0)->health == MEMBER_ALIVE);
    member_destroy(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    for (unsigned frames = 0; frames < 8; frames++) {
        struct gossip_msg msg;
        size_t used;
        const char *err;
        enum gossip_status st = gossip_decode(data + off, size - off, &msg, &used, &err);
        if (st == GOSSIP_BAD) {
            CHECK(err && err[0] && used == 0);
            return 0;
        }
        if (st == GOSSIP_MORE) {
            CHECK(used == 0);
            return 0;
        }
        CHECK(used >= GOSSIP_HEADER_LEN && used <= size - off);
        CHECK(msg.signed_bytes == data + off && msg.signed_len <= used);
        check_prefixes(data + off, used);
        check_rewrite(&msg);
        check_ring(&msg);
        drive(&msg);
        off += used;
    }
    return 0;
}
