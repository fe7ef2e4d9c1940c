/* fuzz_wire.c: libFuzzer target for the node-to-node protocol's decoder
 * (wire_decode(), wire_next_msg()) and, behind it, the handshake.
 * Input: one mode byte, then a stream of frames from a peer. Mode bit 0
 * says whether the connection's handshake is over (version 1: batches) or
 * not (version 0: handshake frames); bit 1 narrows the limits, so that the
 * limit checks are reached with small inputs.
 * Each frame is decoded until MORE or BAD, checking the contract: consumed
 * within the input, a BAD has a reason and consumes nothing, a MORE needs
 * more than it was given; every shorter prefix of an OK frame, on an
 * exact-size heap copy so AddressSanitizer sees any read past it, is MORE.
 * An OK frame is written again from what was decoded: handshake frames with
 * wire_put_*(), a batch's messages with the writer (once with the raw
 * values, once with the values as an array); the encoding is canonical, so
 * a batch read to its end comes back byte for byte, and the rewrite decodes
 * to the same messages. Handshake frames also go to a fresh responder and
 * initiator. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "wire.h"

static struct wire_decoder decoder_of(uint8_t mode)
{
    struct wire_decoder d;
    wire_limits_default(&d.lim);
    d.version = mode & 1 ? 1 : 0;
    if (mode & 2) {
        d.lim = (struct wire_limits){.max_frame = 4096,
                                     .max_key = 64,
                                     .max_value = 256,
                                     .max_meta = 64,
                                     .max_values = 4,
                                     .max_command = 512};
    }
    return d;
}

static uint64_t hash_slice(uint64_t h, struct wire_bytes s)
{
    return hash_bytes(hash_u64(h, s.len), s.ptr, s.len);
}

/* Everything a decoded message says. */
static uint64_t hash_msg(const struct wire_msg *m)
{
    uint64_t h = 0xcbf29ce484222325ull;
    h = hash_u64(h, m->kind);
    h = hash_u64(h, m->flags);
    h = hash_u64(h, m->id);
    h = hash_u64(h, m->op);
    h = hash_u64(h, m->deadline_ms);
    h = hash_u64(h, (uint64_t)m->partition << 16 | m->slot);
    h = hash_u64(h, (uint64_t)m->r << 8 | m->w);
    h = hash_u64(h, m->status);
    h = hash_slice(h, m->text);
    h = hash_u64(h, m->expire_at_ms);
    h = hash_slice(h, m->key);
    h = hash_slice(h, m->meta);
    h = hash_u64(h, m->n_values);
    struct wire_value_iter it;
    struct wire_bytes v;
    uint32_t n = 0;
    wire_values_init(&it, m);
    while (wire_values_next(&it, &v)) {
        h = hash_slice(h, v);
        n++;
    }
    CHECK(n == m->n_values);
    return h;
}

/* Every shorter prefix of a complete frame asks for more. */
static void check_prefixes(const struct wire_decoder *d, const uint8_t *frame, size_t len)
{
    size_t cuts[] = {0, 1, 2, 3, WIRE_HEADER_LEN - 1, WIRE_HEADER_LEN, len / 2, len - 1};
    for (unsigned k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        size_t n = cuts[k];
        if (n >= len)
            continue;
        uint8_t *copy = malloc(n ? n : 1);
        CHECK(copy);
        memcpy(copy, frame, n);
        struct wire_frame f;
        size_t used = 1, need = 0;
        const char *err;
        CHECK(wire_decode(d, copy, n, &f, &used, &need, &err) == WIRE_MORE);
        CHECK(used == 0 && need > n && need <= len);
        CHECK(n < WIRE_HEADER_LEN ? need == WIRE_HEADER_LEN : need == len);
        free(copy);
    }
}

/* Decodes one whole frame of bytes (written by us) as OK. */
static void decode_whole(const struct wire_decoder *d, const struct buf *b, struct wire_frame *f)
{
    size_t used, need;
    const char *err;
    CHECK(wire_decode(d, (const uint8_t *)b->data, b->len, f, &used, &need, &err) == WIRE_OK);
    CHECK(used == b->len);
}

/* A handshake frame, written again, is the same bytes; then the state
 * machines take it. */
static void check_handshake_frame(const struct wire_decoder *d, const struct wire_frame *f,
                                  const uint8_t *bytes, size_t len)
{
    struct buf b;
    buf_init(&b);
    if (f->type == WIRE_HELLO)
        wire_put_hello(&b, &f->u.hello);
    else if (f->type == WIRE_CHALLENGE)
        wire_put_challenge(&b, &f->u.challenge);
    else if (f->type == WIRE_PROOF)
        wire_put_proof(&b, f->u.proof);
    else {
        char text[WIRE_REASON_MAX + 1];
        memcpy(text, f->u.refuse.text.ptr, f->u.refuse.text.len);
        text[f->u.refuse.text.len] = '\0';
        wire_put_refuse(&b, f->u.refuse.reason, f->u.refuse.version_min,
                        f->u.refuse.version_max, text);
    }
    CHECK(!b.failed && b.len == len && memcmp(b.data, bytes, len) == 0);
    struct wire_frame again;
    decode_whole(d, &b, &again);
    CHECK(again.type == f->type && again.body_len == f->body_len);

    struct wire_hs_config cfg = {.node_id = "0123456789abcdef0123456789abcdef01234567",
                                 .shards = 2,
                                 .version_min = 1,
                                 .version_max = 2,
                                 .max_frame = WIRE_FRAME_MIN,
                                 .secret = "s",
                                 .secret_len = 1};
    struct wire_hs hs;
    buf_clear(&b);
    for (int role = WIRE_INITIATOR; role <= WIRE_RESPONDER; role++) {
        CHECK(wire_hs_init(&hs, (enum wire_role)role, &cfg) == 0);
        if (role == WIRE_INITIATOR)
            wire_hs_start(&hs, &b);
        enum wire_hs_status st = wire_hs_on_frame(&hs, f, &b);
        CHECK(st == WIRE_HS_AGAIN || st == WIRE_HS_FAILED);
        CHECK(st != WIRE_HS_FAILED || hs.reason != 0);
    }
    buf_fini(&b);
}

/* The batch's messages written again: with raw values and with an array. */
static void check_batch(const struct wire_decoder *d, const struct wire_frame *f,
                        const uint8_t *bytes, size_t len)
{
    struct buf raw, arr;
    buf_init(&raw);
    buf_init(&arr);
    struct wire_writer wr, wa;
    wire_writer_init(&wr, &raw, d->version, WIRE_FRAME_MAX);
    wire_writer_init(&wa, &arr, d->version, WIRE_FRAME_MAX);
    struct wire_cursor c;
    struct wire_msg m;
    const char *err;
    uint64_t hashes[256];
    unsigned n = 0;
    enum wire_status st;
    wire_cursor_init(&c, d, f);
    while ((st = wire_next_msg(&c, &m, &err)) == WIRE_OK && n < 256) {
        hashes[n++] = hash_msg(&m);
        CHECK(wire_write_msg(&wr, &m) == 0);
        struct wire_bytes *vals = malloc(sizeof *vals * (m.n_values ? m.n_values : 1));
        CHECK(vals);
        struct wire_value_iter it;
        wire_values_init(&it, &m);
        for (uint32_t i = 0; i < m.n_values; i++)
            CHECK(wire_values_next(&it, &vals[i]));
        m.values = vals;
        CHECK(wire_write_msg(&wa, &m) == 0);
        free(vals);
    }
    CHECK(st != WIRE_BAD || (err && err[0]));
    wire_writer_flush(&wr);
    wire_writer_flush(&wa);
    CHECK(!raw.failed && !arr.failed);
    CHECK(raw.len == arr.len && memcmp(raw.data, arr.data, raw.len) == 0);
    if (st == WIRE_END)
        CHECK(raw.len == len && memcmp(raw.data, bytes, len) == 0);
    if (n > 0) {
        struct wire_frame again;
        decode_whole(d, &raw, &again);
        wire_cursor_init(&c, d, &again);
        for (unsigned i = 0; i < n; i++) {
            CHECK(wire_next_msg(&c, &m, &err) == WIRE_OK);
            CHECK(hash_msg(&m) == hashes[i]);
        }
        CHECK(wire_next_msg(&c, &m, &err) == WIRE_END);
    }
    buf_fini(&raw);
    buf_fini(&arr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct wire_decoder d = decoder_of(data[0]);
    size_t off = 1;
    for (unsigned frames = 0; frames < 8; frames++) {
        struct wire_frame f;
        size_t used, need;
        const char *err;
        enum wire_status st = wire_decode(&d, data + off, size - off, &f, &used, &need, &err);
        if (st == WIRE_BAD) {
            CHECK(err && err[0] && used == 0 && need == 0);
            return 0;
        }
        if (st == WIRE_MORE) {
            CHECK(used == 0 && need > size - off);
            return 0;
        }
        CHECK(st == WIRE_OK && used >= WIRE_HEADER_LEN && used <= size - off);
        CHECK(f.body == data + off + WIRE_HEADER_LEN && f.body_len == used - WIRE_HEADER_LEN);
        check_prefixes(&d, data + off, used);
        if (f.type == WIRE_BATCH)
            check_batch(&d, &f, data + off, used);
        else
            check_handshake_frame(&d, &f, data + off, used);
        off += used;
    }
    return 0;
}
