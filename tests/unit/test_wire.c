/* test_wire.c: the node-to-node protocol's codec and handshake (net/wire.c).
 * Round trips of every message and handshake frame, batching (one frame for
 * many messages, split at the peer's frame size), resumable decoding (byte
 * at a time, every prefix, every cut inside a batch, each on an exact-size
 * heap copy so AddressSanitizer sees a read past the end), limits and
 * unknown values refused, and the handshake: success, version negotiation,
 * wrong secrets on either side, replayed proofs and challenges, tampering,
 * self, wrong node and shard. A last case prints encode and decode rates
 * for a PUT of a 32-byte value. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "seg.h"
#include "wire.h"

_Static_assert(WIRE_KEY_MAX == SEG_MAX_KEY, "wire keys as long as the store's");
_Static_assert(WIRE_VALUE_MAX == SEG_MAX_VALUE, "wire values as long as the store's");

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2"
#define ID_C "ccccccccccccccccccccccccccccccccccccccc3"

static struct wire_bytes bs(const char *s)
{
    return (struct wire_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static struct wire_decoder session_decoder(void)
{
    struct wire_decoder d;
    wire_limits_default(&d.lim);
    d.version = 1;
    return d;
}

/* ---- messages used by several cases ---- */

static const struct wire_bytes sibs[3] = {
    {(const uint8_t *)"one", 3}, {(const uint8_t *)"", 0}, {(const uint8_t *)"three\0x", 7}};
static const char resp_set[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n";
static const struct wire_bytes resp_cmd[1] = {{(const uint8_t *)resp_set, sizeof resp_set - 1}};
static const char mc_set[] = "set k 0 0 1\r\nv\r\n";
static const struct wire_bytes mc_cmd[1] = {{(const uint8_t *)mc_set, sizeof mc_set - 1}};

/* Every op as a request and every status as a reply; n is how many. */
static unsigned sample_msgs(struct wire_msg *m)
{
    unsigned n = 0;
    m[n++] = (struct wire_msg){.kind = WIRE_REQUEST,
                               .id = 1,
                               .op = WIRE_OP_GET,
                               .deadline_ms = 250,
                               .partition = 17,
                               .slot = 16383,
                               .r = 2,
                               .key = bs("user:1")};
    m[n++] = (struct wire_msg){.kind = WIRE_REQUEST,
                               .id = UINT64_MAX,
                               .op = WIRE_OP_PUT,
                               .partition = 65535,
                               .slot = 5,
                               .w = 3,
                               .expire_at_ms = 1700000000123ull,
                               .key = bs("k"),
                               .meta = bs("ctx"),
                               .n_values = 1,
                               .values = sibs};
    m[n++] = (struct wire_msg){.kind = WIRE_REQUEST,
                               .id = 3,
                               .op = WIRE_OP_DEL,
                               .key = bs("gone"),
                               .meta = bs("\x01\x02")};
    m[n++] = (struct wire_msg){.kind = WIRE_REQUEST,
                               .id = 4,
                               .op = WIRE_OP_SYNC,
                               .key = bs("k"),
                               .meta = bs("dvvset bytes"),
                               .n_values = 3,
                               .values = sibs};
    m[n++] = (struct wire_msg){.kind = WIRE_REQUEST,
                               .flags = WIRE_MSG_RESP3,
                               .id = 5,
                               .op = WIRE_OP_FORWARD,
                               .key = bs("k"),
                               .n_values = 1,
                               .values = resp_cmd};
    m[n++] = (struct wire_msg){.kind = WIRE_REQUEST,
                               .flags = WIRE_MSG_MC,
                               .id = 6,
                               .op = WIRE_OP_FORWARD,
                               .key = bs("k"),
                               .n_values = 1,
                               .values = mc_cmd};
    m[n++] = (struct wire_msg){
        .kind = WIRE_REQUEST, .flags = WIRE_MSG_REAP, .id = 7, .op = WIRE_OP_GET, .key = bs("k")};
    m[n++] = (struct wire_msg){.kind = WIRE_REPLY,
                               .id = 1,
                               .op = WIRE_OP_GET,
                               .status = WIRE_CODE_OK,
                               .expire_at_ms = 9,
                               .key = bs("user:1"),
                               .meta = bs("m"),
                               .n_values = 3,
                               .values = sibs};
    m[n++] = (struct wire_msg){
        .kind = WIRE_REPLY, .id = 2, .op = WIRE_OP_GET, .status = WIRE_CODE_NOT_FOUND};
    m[n++] = (struct wire_msg){.kind = WIRE_REPLY,
                               .id = 3,
                               .op = WIRE_OP_PUT,
                               .status = WIRE_CODE_ERROR,
                               .text = bs("ERR too many siblings")};
    m[n++] = (struct wire_msg){.kind = WIRE_REPLY,
                               .id = 4,
                               .op = WIRE_OP_SYNC,
                               .status = WIRE_CODE_UNAVAILABLE,
                               .text = bs("1 of 2")};
    m[n++] = (struct wire_msg){.kind = WIRE_REPLY,
                               .id = 5,
                               .op = WIRE_OP_FORWARD,
                               .status = WIRE_CODE_OVERLOADED,
                               .n_values = 1,
                               .values = resp_cmd};
    return n;
}

static void assert_bytes_equal(struct wire_bytes a, struct wire_bytes b)
{
    assert_int_equal(a.len, b.len);
    if (a.len)
        assert_memory_equal(a.ptr, b.ptr, a.len);
}

/* got (decoded) carries what want (to encode) said. */
static void assert_msg_equal(const struct wire_msg *got, const struct wire_msg *want)
{
    assert_int_equal(got->kind, want->kind);
    assert_int_equal(got->flags, want->flags);
    assert_true(got->id == want->id);
    assert_int_equal(got->op, want->op);
    assert_true(got->expire_at_ms == want->expire_at_ms);
    assert_bytes_equal(got->key, want->key);
    assert_bytes_equal(got->meta, want->meta);
    if (want->kind == WIRE_REQUEST) {
        assert_int_equal(got->deadline_ms, want->deadline_ms);
        assert_int_equal(got->partition, want->partition);
        assert_int_equal(got->slot, want->slot);
        assert_int_equal(got->r, want->r);
        assert_int_equal(got->w, want->w);
    } else {
        assert_int_equal(got->status, want->status);
        assert_bytes_equal(got->text, want->text);
    }
    assert_int_equal(got->n_values, want->n_values);
    struct wire_value_iter it;
    struct wire_bytes v;
    wire_values_init(&it, got);
    for (unsigned i = 0; i < want->n_values; i++) {
        assert_true(wire_values_next(&it, &v));
        assert_bytes_equal(v, want->values[i]);
    }
    assert_false(wire_values_next(&it, &v));
}

/* Writes msgs[0..n) as batches into out (closed). */
static void write_all(struct buf *out, const struct wire_msg *msgs, unsigned n, uint32_t max_frame)
{
    struct wire_writer w;
    wire_writer_init(&w, out, 1, max_frame);
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(wire_write_msg(&w, &msgs[i]), 0);
    wire_writer_flush(&w);
    assert_false(out->failed);
}

/* Decodes every frame of data[0..len) and checks its messages against
 * want[0..n) in order; returns the number of frames. */
static unsigned read_all(const uint8_t *data, size_t len, const struct wire_msg *want, unsigned n)
{
    struct wire_decoder d = session_decoder();
    size_t off = 0;
    unsigned frames = 0, got = 0;
    while (off < len) {
        struct wire_frame f;
        size_t used, need;
        const char *err;
        assert_int_equal(wire_decode(&d, data + off, len - off, &f, &used, &need, &err), WIRE_OK);
        assert_int_equal(f.type, WIRE_BATCH);
        struct wire_cursor c;
        struct wire_msg m;
        wire_cursor_init(&c, &d, &f);
        enum wire_status st;
        while ((st = wire_next_msg(&c, &m, &err)) == WIRE_OK) {
            assert_true(got < n);
            assert_msg_equal(&m, &want[got++]);
        }
        assert_int_equal(st, WIRE_END);
        off += used;
        frames++;
    }
    assert_int_equal(got, n);
    return frames;
}

static void test_wire_round_trips_every_message(void **state)
{
    struct wire_msg msgs[16];
    unsigned n = sample_msgs(msgs);
    struct buf out;
    buf_init(&out);
    for (unsigned i = 0; i < n; i++) { /* each alone, then all in one batch */
        buf_clear(&out);
        write_all(&out, &msgs[i], 1, WIRE_FRAME_MAX);
        assert_int_equal(out.len, WIRE_HEADER_LEN + wire_msg_size(&msgs[i]));
        assert_int_equal(read_all((const uint8_t *)out.data, out.len, &msgs[i], 1), 1);
    }
    buf_clear(&out);
    write_all(&out, msgs, n, WIRE_FRAME_MAX);
    assert_int_equal(read_all((const uint8_t *)out.data, out.len, msgs, n), 1);

    /* A decoded message written again (raw values, as a relay) is the same bytes. */
    struct wire_decoder d = session_decoder();
    struct wire_frame f;
    size_t used, need;
    const char *err;
    assert_int_equal(wire_decode(&d, (const uint8_t *)out.data, out.len, &f, &used, &need, &err),
                     WIRE_OK);
    struct wire_cursor c;
    struct wire_msg m;
    wire_cursor_init(&c, &d, &f);
    struct buf again;
    buf_init(&again);
    struct wire_writer w;
    wire_writer_init(&w, &again, 1, WIRE_FRAME_MAX);
    while (wire_next_msg(&c, &m, &err) == WIRE_OK)
        assert_int_equal(wire_write_msg(&w, &m), 0);
    wire_writer_flush(&w);
    assert_int_equal(again.len, out.len);
    assert_memory_equal(again.data, out.data, out.len);
    buf_fini(&again);
    buf_fini(&out);
}

static void test_wire_round_trips_handshake_frames(void **state)
{
    struct wire_hello h = {.version_min = 1,
                           .version_max = 3,
                           .from_shard = 2,
                           .shards = 4,
                           .to_shard = 7,
                           .max_frame = WIRE_FRAME_MIN};
    memset(h.node_id, 0xab, sizeof h.node_id);
    memset(h.nonce, 0x5c, sizeof h.nonce);
    struct wire_challenge ch = {.version = 2, .shard = 0, .shards = 1, .max_frame = WIRE_FRAME_MAX};
    memset(ch.node_id, 0x01, sizeof ch.node_id);
    memset(ch.nonce, 0x02, sizeof ch.nonce);
    memset(ch.proof, 0x03, sizeof ch.proof);
    uint8_t proof[WIRE_PROOF_LEN];
    memset(proof, 0xee, sizeof proof);
    struct buf out;
    buf_init(&out);
    wire_put_hello(&out, &h);
    wire_put_challenge(&out, &ch);
    wire_put_proof(&out, proof);
    wire_put_refuse(&out, WIRE_REFUSE_VERSION, 1, 1, "no common\nversion");
    assert_false(out.failed);

    struct wire_decoder d;
    wire_limits_default(&d.lim);
    d.version = 0;
    const uint8_t *p = (const uint8_t *)out.data;
    size_t left = out.len, used, need;
    struct wire_frame f;
    const char *err;
    assert_int_equal(wire_decode(&d, p, left, &f, &used, &need, &err), WIRE_OK);
    assert_int_equal(f.type, WIRE_HELLO);
    assert_memory_equal(&f.u.hello, &h, sizeof h);
    p += used, left -= used;
    memset(&f, 0, sizeof f); /* the structs' padding, compared below */
    assert_int_equal(wire_decode(&d, p, left, &f, &used, &need, &err), WIRE_OK);
    assert_int_equal(f.type, WIRE_CHALLENGE);
    assert_memory_equal(&f.u.challenge, &ch, sizeof ch);
    p += used, left -= used;
    assert_int_equal(wire_decode(&d, p, left, &f, &used, &need, &err), WIRE_OK);
    assert_int_equal(f.type, WIRE_PROOF);
    assert_memory_equal(f.u.proof, proof, sizeof proof);
    p += used, left -= used;
    assert_int_equal(wire_decode(&d, p, left, &f, &used, &need, &err), WIRE_OK);
    assert_int_equal(f.type, WIRE_REFUSE);
    assert_int_equal(f.u.refuse.reason, WIRE_REFUSE_VERSION);
    assert_bytes_equal(f.u.refuse.text, bs("no common?version")); /* kept printable */
    assert_int_equal(used, left);
    /* REFUSE also decodes once the session is open; HELLO does not. */
    d.version = 1;
    assert_int_equal(wire_decode(&d, p, left, &f, &used, &need, &err), WIRE_OK);
    assert_int_equal(wire_decode(&d, (const uint8_t *)out.data, out.len, &f, &used, &need, &err),
                     WIRE_BAD);
    buf_fini(&out);
}

static void test_wire_batches_many_messages_in_one_frame(void **state)
{
    enum { N = 10000 };
    struct wire_msg *msgs = calloc(N, sizeof *msgs);
    char(*keys)[16] = calloc(N, 16);
    assert_non_null(msgs);
    for (unsigned i = 0; i < N; i++) {
        snprintf(keys[i], 16, "key:%u", i);
        msgs[i] = (struct wire_msg){.kind = i % 2 ? WIRE_REPLY : WIRE_REQUEST,
                                    .id = i,
                                    .op = WIRE_OP_PUT,
                                    .slot = (uint16_t)(i % WIRE_SLOTS),
                                    .key = bs(keys[i]),
                                    .n_values = 1,
                                    .values = sibs};
    }
    struct buf out;
    buf_init(&out);
    write_all(&out, msgs, N, WIRE_FRAME_MAX);
    assert_int_equal(read_all((const uint8_t *)out.data, out.len, msgs, N), 1);

    /* A peer that takes 1000-byte bodies gets many frames, none longer. */
    buf_clear(&out);
    write_all(&out, msgs, N, 1000);
    unsigned frames = read_all((const uint8_t *)out.data, out.len, msgs, N);
    assert_true(frames > 100);
    for (size_t off = 0; off < out.len;) {
        uint32_t body = (uint8_t)out.data[off + 4] | (uint8_t)out.data[off + 5] << 8 |
                        (uint32_t)(uint8_t)out.data[off + 6] << 16;
        assert_true(body <= 1000);
        off += WIRE_HEADER_LEN + body;
    }
    buf_fini(&out);
    free(keys);
    free(msgs);
}

/* data[0..len) on an exact-size heap copy, so ASan sees any read past it. */
static enum wire_status decode_copy(const struct wire_decoder *d, const void *data, size_t len,
                                    size_t *used, size_t *need)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, data, len);
    struct wire_frame f;
    const char *err;
    enum wire_status st = wire_decode(d, copy, len, &f, used, need, &err);
    if (st == WIRE_OK && f.type == WIRE_BATCH) {
        struct wire_cursor c;
        struct wire_msg m;
        wire_cursor_init(&c, d, &f);
        while ((st = wire_next_msg(&c, &m, &err)) == WIRE_OK)
            ;
        st = st == WIRE_END ? WIRE_OK : st;
    }
    free(copy);
    return st;
}

static void test_wire_decodes_byte_at_a_time(void **state)
{
    struct wire_msg msgs[16];
    unsigned n = sample_msgs(msgs);
    struct buf out;
    buf_init(&out);
    write_all(&out, msgs, 4, 200); /* a few frames */
    write_all(&out, msgs + 4, n - 4, WIRE_FRAME_MAX);
    struct wire_decoder d = session_decoder();
    size_t start = 0, frames = 0;
    /* The stream arrives one byte per read; the decoder is called on each. */
    for (size_t have = 1; have <= out.len; have++) {
        size_t used, need;
        enum wire_status st = decode_copy(&d, out.data + start, have - start, &used, &need);
        if (st == WIRE_MORE) {
            assert_true(need > have - start);
            assert_int_equal(used, 0);
            continue;
        }
        assert_int_equal(st, WIRE_OK);
        assert_int_equal(used, have - start);
        start = have;
        frames++;
    }
    assert_int_equal(start, out.len);
    assert_true(frames >= 3);
    buf_fini(&out);
}

static void test_wire_every_truncation_point_is_more(void **state)
{
    struct wire_msg msgs[16];
    unsigned n = sample_msgs(msgs);
    struct buf out;
    buf_init(&out);
    write_all(&out, msgs, n, WIRE_FRAME_MAX);
    struct wire_decoder d = session_decoder();
    for (size_t cut = 0; cut < out.len; cut++) {
        size_t used = 1, need = 0;
        assert_int_equal(decode_copy(&d, out.data, cut, &used, &need), WIRE_MORE);
        assert_int_equal(used, 0);
        assert_int_equal(need, cut < WIRE_HEADER_LEN ? WIRE_HEADER_LEN : out.len);
    }
    size_t used, need;
    assert_int_equal(decode_copy(&d, out.data, out.len, &used, &need), WIRE_OK);
    assert_int_equal(used, out.len);
    buf_fini(&out);
}

/* A batch whose length says it ends inside a message: the messages before
 * the cut decode, the cut one is BAD (or END exactly at a boundary). */
static void test_wire_cut_inside_a_batch_is_bad(void **state)
{
    struct wire_msg msgs[16];
    unsigned n = sample_msgs(msgs);
    struct buf out;
    buf_init(&out);
    write_all(&out, msgs, n, WIRE_FRAME_MAX);
    size_t body = out.len - WIRE_HEADER_LEN;
    size_t bounds[17], nb = 0, at = 0;
    for (unsigned i = 0; i < n; i++)
        bounds[nb++] = (at += wire_msg_size(&msgs[i]));
    struct wire_decoder d = session_decoder();
    for (size_t cut = 1; cut < body; cut++) {
        uint8_t *copy = malloc(WIRE_HEADER_LEN + cut);
        memcpy(copy, out.data, WIRE_HEADER_LEN + cut);
        copy[4] = (uint8_t)cut, copy[5] = (uint8_t)(cut >> 8), copy[6] = 0, copy[7] = 0;
        struct wire_frame f;
        size_t used, need;
        const char *err;
        assert_int_equal(wire_decode(&d, copy, WIRE_HEADER_LEN + cut, &f, &used, &need, &err),
                         WIRE_OK);
        struct wire_cursor c;
        struct wire_msg m;
        wire_cursor_init(&c, &d, &f);
        unsigned whole = 0;
        enum wire_status st;
        while ((st = wire_next_msg(&c, &m, &err)) == WIRE_OK)
            assert_msg_equal(&m, &msgs[whole++]);
        bool boundary = false;
        for (size_t b = 0; b < nb; b++)
            boundary |= bounds[b] == cut;
        assert_int_equal(st, boundary ? WIRE_END : WIRE_BAD);
        if (!boundary)
            assert_non_null(err);
        free(copy);
    }
    buf_fini(&out);
}

/* Decodes one message written with w's buffer; returns the status of the
 * message read and *err. */
static enum wire_status decode_one(const struct wire_decoder *d, const struct buf *b,
                                   const char **err)
{
    struct wire_frame f;
    size_t used, need;
    enum wire_status st = wire_decode(d, (const uint8_t *)b->data, b->len, &f, &used, &need, err);
    if (st != WIRE_OK)
        return st;
    struct wire_cursor c;
    struct wire_msg m;
    wire_cursor_init(&c, d, &f);
    return wire_next_msg(&c, &m, err);
}

static void test_wire_refuses_oversize_lengths(void **state)
{
    struct wire_decoder d = session_decoder();
    d.lim.max_frame = 4096;
    d.lim.max_key = 8;
    d.lim.max_value = 16;
    d.lim.max_meta = 4;
    d.lim.max_values = 2;
    d.lim.max_command = 64;
    const char *err;
    size_t used, need;
    struct wire_frame f;
    /* A batch longer than max_frame: refused from the header alone. */
    uint8_t head[8] = {WIRE_MAGIC, 1, WIRE_BATCH, 0, 0x01, 0x10, 0, 0}; /* 4097 */
    assert_int_equal(wire_decode(&d, head, 8, &f, &used, &need, &err), WIRE_BAD);
    assert_string_equal(err, "batch too long");
    head[4] = 0; /* 4096: waits for its body */
    assert_int_equal(wire_decode(&d, head, 8, &f, &used, &need, &err), WIRE_MORE);
    assert_int_equal(need, 8 + 4096);
    uint8_t huge[8] = {WIRE_MAGIC, 1, WIRE_BATCH, 0, 0xff, 0xff, 0xff, 0xff};
    d.lim.max_frame = UINT32_MAX; /* the ceiling holds whatever the setting */
    assert_int_equal(wire_decode(&d, huge, 8, &f, &used, &need, &err), WIRE_BAD);
    d.lim.max_frame = 4096;

    struct {
        struct wire_msg m;
        const char *why;
    } cases[] = {
        {{.kind = WIRE_REQUEST, .op = WIRE_OP_GET, .key = bs("123456789")}, "key too long"},
        {{.kind = WIRE_REQUEST, .op = WIRE_OP_PUT, .meta = bs("12345")}, "version metadata"},
        {{.kind = WIRE_REQUEST, .op = WIRE_OP_SYNC, .n_values = 3, .values = sibs},
         "too many values"},
        {{.kind = WIRE_REPLY,
          .op = WIRE_OP_GET,
          .n_values = 1,
          .values = (struct wire_bytes[]){bs("0123456789abcdefg")}},
         "value too long"},
        {{.kind = WIRE_REQUEST,
          .op = WIRE_OP_FORWARD,
          .n_values = 1,
          .values = (struct wire_bytes[]){bs("0123456789012345678901234567890123456789"
                                             "01234567890123456789012345")}},
         "value too long"},
    };
    struct buf b;
    buf_init(&b);
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buf_clear(&b);
        write_all(&b, &cases[i].m, 1, WIRE_FRAME_MAX);
        assert_int_equal(decode_one(&d, &b, &err), WIRE_BAD);
        assert_non_null(strstr(err, cases[i].why));
    }
    /* A forwarded command may be longer than a value (max_command). */
    buf_clear(&b);
    struct wire_msg fwd = {
        .kind = WIRE_REQUEST, .op = WIRE_OP_FORWARD, .n_values = 1, .values = resp_cmd};
    write_all(&b, &fwd, 1, WIRE_FRAME_MAX);
    assert_int_equal(decode_one(&d, &b, &err), WIRE_OK);

    /* Reply text past WIRE_TEXT_MAX: the writer refuses it, the decoder too. */
    static char text[WIRE_TEXT_MAX + 2];
    memset(text, 'x', WIRE_TEXT_MAX + 1);
    struct wire_msg r = {
        .kind = WIRE_REPLY, .op = WIRE_OP_PUT, .status = WIRE_CODE_ERROR, .text = bs(text)};
    struct wire_writer w;
    buf_clear(&b);
    wire_writer_init(&w, &b, 1, WIRE_FRAME_MAX);
    assert_int_equal(wire_write_msg(&w, &r), -EINVAL);
    assert_int_equal(b.len, 0);
    r.text.len = WIRE_TEXT_MAX;
    assert_int_equal(wire_write_msg(&w, &r), 0);
    wire_writer_flush(&w);
    b.data[WIRE_HEADER_LEN + WIRE_MSG_HEADER_LEN + 10] = (char)0x01; /* length 1025 */
    b.data[WIRE_HEADER_LEN + WIRE_MSG_HEADER_LEN + 11] = (char)0x04;
    d.lim.max_frame = WIRE_FRAME_MAX;
    assert_int_equal(decode_one(&d, &b, &err), WIRE_BAD);

    /* The writer refuses what the peer would not take. */
    buf_clear(&b);
    wire_writer_init(&w, &b, 1, 100);
    struct wire_msg big = {.kind = WIRE_REQUEST,
                           .op = WIRE_OP_PUT,
                           .n_values = 1,
                           .values = (struct wire_bytes[]){{(const uint8_t *)text, 200}}};
    assert_int_equal(wire_write_msg(&w, &big), -EMSGSIZE);
    struct wire_msg bad_slot = {.kind = WIRE_REQUEST, .op = WIRE_OP_GET, .slot = WIRE_SLOTS};
    assert_int_equal(wire_write_msg(&w, &bad_slot), -EINVAL);
    struct wire_msg bad_op = {.kind = WIRE_REQUEST, .op = 99}; /* no feature's range */
    assert_int_equal(wire_write_msg(&w, &bad_op), -EINVAL);
    assert_int_equal(b.len, 0);
    buf_fini(&b);
}

/* Patches byte `at` of one encoded message (offset in the message body) and
 * expects BAD with `why` in the reason. */
static void expect_patched_bad(const struct wire_msg *m, size_t at, uint8_t v, const char *why)
{
    struct buf b;
    buf_init(&b);
    write_all(&b, m, 1, WIRE_FRAME_MAX);
    b.data[WIRE_HEADER_LEN + at] = (char)v;
    struct wire_decoder d = session_decoder();
    const char *err = NULL;
    assert_int_equal(decode_one(&d, &b, &err), WIRE_BAD);
    assert_non_null(strstr(err, why));
    buf_fini(&b);
}

static void test_wire_refuses_unknown_types_and_flags(void **state)
{
    struct wire_decoder d = session_decoder();
    struct wire_frame f;
    size_t used, need;
    const char *err;
    /* Header bytes are judged as they arrive: one bad byte is enough. */
    assert_int_equal(wire_decode(&d, (const uint8_t *)"*", 1, &f, &used, &need, &err), WIRE_BAD);
    assert_int_equal(wire_decode(&d, (const uint8_t *)"\x01", 1, &f, &used, &need, &err),
                     WIRE_BAD); /* a gossip frame */
    uint8_t h[8] = {WIRE_MAGIC, 9};
    assert_int_equal(wire_decode(&d, h, 2, &f, &used, &need, &err), WIRE_BAD);
    uint8_t t[8] = {WIRE_MAGIC, 1, 6};
    assert_int_equal(wire_decode(&d, t, 3, &f, &used, &need, &err), WIRE_BAD);
    assert_string_equal(err, "unknown frame type");
    uint8_t fl[8] = {WIRE_MAGIC, 1, WIRE_BATCH, 0x80};
    assert_int_equal(wire_decode(&d, fl, 4, &f, &used, &need, &err), WIRE_BAD);
    assert_string_equal(err, "unknown frame flags");
    uint8_t empty[8] = {WIRE_MAGIC, 1, WIRE_BATCH, 0, 0, 0, 0, 0};
    assert_int_equal(wire_decode(&d, empty, 8, &f, &used, &need, &err), WIRE_BAD);
    uint8_t hello[8] = {WIRE_MAGIC, 1, WIRE_HELLO, 0, WIRE_HELLO_LEN};
    assert_int_equal(wire_decode(&d, hello, 3, &f, &used, &need, &err), WIRE_BAD);
    assert_string_equal(err, "handshake frame after the handshake");
    d.version = 0;
    assert_int_equal(wire_decode(&d, hello, 8, &f, &used, &need, &err), WIRE_MORE);
    assert_int_equal(need, 8 + WIRE_HELLO_LEN);
    hello[4] = WIRE_HELLO_LEN + 1;
    assert_int_equal(wire_decode(&d, hello, 8, &f, &used, &need, &err), WIRE_BAD);
    assert_int_equal(wire_decode(&d, empty, 3, &f, &used, &need, &err), WIRE_BAD);
    assert_string_equal(err, "batch before the handshake");

    struct wire_msg rq = {
        .kind = WIRE_REQUEST, .op = WIRE_OP_PUT, .key = bs("k"), .n_values = 1, .values = sibs};
    struct wire_msg rp = {.kind = WIRE_REPLY, .op = WIRE_OP_PUT, .key = bs("k")};
    expect_patched_bad(&rq, 0, 3, "unknown message kind");
    expect_patched_bad(&rq, 1, 16, "unknown request flags");
    /* WIRE_MSG_REAP: on a GET only. */
    expect_patched_bad(&rq, 1, WIRE_MSG_REAP, "reap flag on a request other than GET");
    /* WIRE_MSG_MC: on a FORWARD only, and never with RESP3. */
    expect_patched_bad(&rq, 1, WIRE_MSG_MC, "memcached flag on a request other than");
    struct wire_msg fw = {.kind = WIRE_REQUEST,
                          .flags = WIRE_MSG_MC,
                          .op = WIRE_OP_FORWARD,
                          .key = bs("k"),
                          .n_values = 1,
                          .values = mc_cmd};
    expect_patched_bad(&fw, 1, WIRE_MSG_MC | WIRE_MSG_RESP3, "memcached flag on a request");
    fw.flags = WIRE_MSG_MC | WIRE_MSG_RESP3;
    assert_int_equal(wire_msg_size(&fw), 0);
    fw.flags = WIRE_MSG_MC;
    fw.op = WIRE_OP_GET;
    assert_int_equal(wire_msg_size(&fw), 0);
    expect_patched_bad(&rp, 1, 1, "unknown reply flags");
    expect_patched_bad(&rq, 6 + 16, 0, "unknown request op");
    expect_patched_bad(&rq, 6 + 16, 255, "unknown request op");
    expect_patched_bad(&rq, 6 + 15, 0x40, "slot out of range");
    expect_patched_bad(&rq, 6 + 19, 1, "reserved request byte");
    expect_patched_bad(&rp, 6 + 8, 5, "unknown reply status");
    expect_patched_bad(&rp, 6 + 9, 0, "unknown reply op");
    /* The message claims one more byte than its fields fill. */
    struct buf b;
    buf_init(&b);
    write_all(&b, &rq, 1, WIRE_FRAME_MAX);
    buf_append(&b, "x", 1);
    b.data[4]++;
    b.data[WIRE_HEADER_LEN + 2]++;
    assert_int_equal(decode_one(&d, &b, &err), WIRE_BAD);
    d.version = 1;
    assert_int_equal(decode_one(&d, &b, &err), WIRE_BAD);
    assert_string_equal(err, "bytes after the last value");
    buf_fini(&b);
    assert_string_equal(wire_op_name(WIRE_OP_SYNC), "SYNC");
    assert_string_equal(wire_code_name(WIRE_CODE_UNAVAILABLE), "UNAVAILABLE");
    assert_string_equal(wire_refusal_text(200), "refused");
}

/* ---- handshake ---- */

struct side {
    struct wire_hs hs;
    struct wire_decoder dec;
    enum wire_hs_status st;
};

static struct wire_hs_config hs_config(const char *id, const char *secret, uint8_t nonce_byte)
{
    struct wire_hs_config c = {
        .node_id = id,
        .shards = 4,
        .version_min = WIRE_VERSION_MIN,
        .version_max = WIRE_VERSION,
        .max_frame = 1u << 20,
        .secret = secret,
        .secret_len = secret ? strlen(secret) : 0,
    };
    memset(c.nonce, nonce_byte, sizeof c.nonce);
    return c;
}

static void side_init(struct side *s, enum wire_role role, const struct wire_hs_config *c)
{
    assert_int_equal(wire_hs_init(&s->hs, role, c), 0);
    wire_limits_default(&s->dec.lim);
    s->dec.version = 0;
    s->st = WIRE_HS_AGAIN;
}

/* Feeds every frame in *in to s (which appends answers to *out); in is emptied. */
static void deliver(struct side *s, struct buf *in, struct buf *out)
{
    size_t off = 0;
    while (off < in->len && s->st == WIRE_HS_AGAIN) {
        struct wire_frame f;
        size_t used, need;
        const char *err;
        enum wire_status st = wire_decode(&s->dec, (const uint8_t *)in->data + off, in->len - off,
                                          &f, &used, &need, &err);
        assert_int_equal(st, WIRE_OK);
        s->st = wire_hs_on_frame(&s->hs, &f, out);
        off += used;
    }
    buf_clear(in);
}

/* Runs a handshake to its end; tap_a/tap_b (may be NULL) get a copy of
 * what each side sent. */
static void handshake(struct side *a, struct side *b, struct buf *tap_a, struct buf *tap_b)
{
    struct buf ab, ba;
    buf_init(&ab);
    buf_init(&ba);
    wire_hs_start(&a->hs, &ab);
    for (int round = 0; round < 4 && (ab.len || ba.len); round++) {
        if (tap_a)
            buf_append(tap_a, ab.data, ab.len);
        deliver(b, &ab, &ba);
        if (tap_b)
            buf_append(tap_b, ba.data, ba.len);
        deliver(a, &ba, &ab);
    }
    buf_fini(&ab);
    buf_fini(&ba);
}

/* Sets up both sides and a's HELLO in ab, for a test to pass frames by hand. */
static void start_by_hand(struct side *a, struct side *b, const struct wire_hs_config *ca,
                          const struct wire_hs_config *cb, struct buf *ab, struct buf *ba)
{
    side_init(a, WIRE_INITIATOR, ca);
    side_init(b, WIRE_RESPONDER, cb);
    buf_init(ab);
    buf_init(ba);
    wire_hs_start(&a->hs, ab);
}

static void test_wire_handshake_succeeds(void **state)
{
    struct side a, b;
    struct wire_hs_config ca = hs_config(ID_A, "s3cret", 1);
    ca.shard = 1;
    ca.peer_id = ID_B;
    ca.peer_shard = 3;
    ca.version_max = 3; /* ranges 1..3 and 1..2: version 2 is chosen */
    struct wire_hs_config cb = hs_config(ID_B, "s3cret", 2);
    cb.shard = 3;
    cb.version_max = 2;
    cb.max_frame = 5u << 20;
    side_init(&a, WIRE_INITIATOR, &ca);
    side_init(&b, WIRE_RESPONDER, &cb);
    handshake(&a, &b, NULL, NULL);
    assert_int_equal(a.st, WIRE_HS_DONE);
    assert_int_equal(b.st, WIRE_HS_DONE);
    assert_int_equal(a.hs.version, 2);
    assert_int_equal(b.hs.version, 2);
    assert_string_equal(a.hs.peer_id, ID_B);
    assert_string_equal(b.hs.peer_id, ID_A);
    assert_int_equal(a.hs.peer_shard, 3);
    assert_int_equal(b.hs.peer_shard, 1);
    assert_int_equal(a.hs.peer_max_frame, 5u << 20);
    assert_int_equal(b.hs.peer_max_frame, 1u << 20);

    /* The initiator's first batch may come in the same read as its PROOF:
     * the responder switches its decoder once DONE and reads it. */
    ca = hs_config(ID_A, "s3cret", 5);
    cb = hs_config(ID_B, "s3cret", 6);
    struct buf ab, ba;
    start_by_hand(&a, &b, &ca, &cb, &ab, &ba);
    deliver(&b, &ab, &ba);
    deliver(&a, &ba, &ab);
    assert_int_equal(a.st, WIRE_HS_DONE);
    struct wire_msg msgs[16];
    unsigned n = sample_msgs(msgs);
    write_all(&ab, msgs, n, a.hs.peer_max_frame);
    size_t used, need;
    const char *err;
    struct wire_frame f;
    assert_int_equal(wire_decode(&b.dec, (const uint8_t *)ab.data, ab.len, &f, &used, &need, &err),
                     WIRE_OK);
    assert_int_equal(wire_hs_on_frame(&b.hs, &f, &ba), WIRE_HS_DONE);
    assert_int_equal(ba.len, 0);
    assert_int_equal(
        wire_decode(&b.dec, (const uint8_t *)ab.data + used, ab.len - used, &f, &used, &need, &err),
        WIRE_BAD); /* not yet switched */
    b.dec.version = b.hs.version;
    size_t proof_len = WIRE_HEADER_LEN + WIRE_PROOF_LEN;
    assert_int_equal(read_all((const uint8_t *)ab.data + proof_len, ab.len - proof_len, msgs, n),
                     1);
    buf_fini(&ab);
    buf_fini(&ba);

    /* Without a secret on either side it works too (nothing authenticated). */
    ca = hs_config(ID_A, NULL, 3);
    cb = hs_config(ID_B, NULL, 4);
    side_init(&a, WIRE_INITIATOR, &ca);
    side_init(&b, WIRE_RESPONDER, &cb);
    handshake(&a, &b, NULL, NULL);
    assert_int_equal(a.st, WIRE_HS_DONE);
    assert_int_equal(b.st, WIRE_HS_DONE);
}

/* a dials b; both end FAILED; a refused with `reason`, b was refused. */
static void expect_refused_by_initiator(const char *secret_a, const char *secret_b, uint8_t reason)
{
    struct side a, b;
    struct wire_hs_config ca = hs_config(ID_A, secret_a, 1);
    struct wire_hs_config cb = hs_config(ID_B, secret_b, 2);
    side_init(&a, WIRE_INITIATOR, &ca);
    side_init(&b, WIRE_RESPONDER, &cb);
    handshake(&a, &b, NULL, NULL);
    assert_int_equal(a.st, WIRE_HS_FAILED);
    assert_false(a.hs.refused_by_peer);
    assert_int_equal(a.hs.reason, reason);
    assert_int_equal(b.st, WIRE_HS_FAILED);
    assert_true(b.hs.refused_by_peer);
    assert_int_equal(b.hs.reason, reason);
    assert_string_equal(b.hs.why, a.hs.why);
}

static void test_wire_handshake_wrong_secret_on_either_side(void **state)
{
    expect_refused_by_initiator("wrong", "s3cret", WIRE_REFUSE_AUTH);
    expect_refused_by_initiator("s3cret", "wrong", WIRE_REFUSE_AUTH);
    expect_refused_by_initiator("s3cret", NULL, WIRE_REFUSE_AUTH);
    expect_refused_by_initiator(NULL, "s3cret", WIRE_REFUSE_AUTH);

    /* The responder checks the initiator's proof: any other bytes fail. */
    struct side b;
    struct wire_hs_config cb = hs_config(ID_B, "s3cret", 2);
    side_init(&b, WIRE_RESPONDER, &cb);
    struct buf in, out;
    buf_init(&in);
    buf_init(&out);
    struct wire_hello h = {.version_min = 1, .version_max = 1, .shards = 1, .max_frame = 1u << 20};
    memset(h.node_id, 0xaa, sizeof h.node_id);
    wire_put_hello(&in, &h);
    uint8_t guess[WIRE_PROOF_LEN] = {0};
    wire_put_proof(&in, guess);
    deliver(&b, &in, &out);
    assert_int_equal(b.st, WIRE_HS_FAILED);
    assert_int_equal(b.hs.reason, WIRE_REFUSE_AUTH);
    assert_false(b.hs.refused_by_peer);
    buf_fini(&in);
    buf_fini(&out);
}

static void test_wire_handshake_refuses_replayed_proofs(void **state)
{
    /* Session 1, recorded. */
    struct side a, b;
    struct wire_hs_config ca = hs_config(ID_A, "s3cret", 1);
    struct wire_hs_config cb = hs_config(ID_B, "s3cret", 2);
    side_init(&a, WIRE_INITIATOR, &ca);
    side_init(&b, WIRE_RESPONDER, &cb);
    struct buf from_a, from_b, out;
    buf_init(&from_a);
    buf_init(&from_b);
    buf_init(&out);
    handshake(&a, &b, &from_a, &from_b);
    assert_int_equal(b.st, WIRE_HS_DONE);

    /* An attacker replays A's HELLO and PROOF to B, whose nonce is new. */
    cb = hs_config(ID_B, "s3cret", 7);
    side_init(&b, WIRE_RESPONDER, &cb);
    struct buf replay;
    buf_init(&replay);
    buf_append(&replay, from_a.data, from_a.len);
    deliver(&b, &replay, &out);
    assert_int_equal(b.st, WIRE_HS_FAILED);
    assert_int_equal(b.hs.reason, WIRE_REFUSE_AUTH);

    /* ... or B's CHALLENGE to A, whose nonce is new. */
    ca = hs_config(ID_A, "s3cret", 8);
    side_init(&a, WIRE_INITIATOR, &ca);
    buf_clear(&out);
    wire_hs_start(&a.hs, &out);
    buf_append(&replay, from_b.data, from_b.len);
    deliver(&a, &replay, &out);
    assert_int_equal(a.st, WIRE_HS_FAILED);
    assert_int_equal(a.hs.reason, WIRE_REFUSE_AUTH);

    /* ... or B's old CHALLENGE with A's new nonce put in, the proof kept. */
    side_init(&a, WIRE_INITIATOR, &ca);
    buf_clear(&out);
    wire_hs_start(&a.hs, &out);
    struct wire_decoder d = {.version = 0};
    wire_limits_default(&d.lim);
    struct wire_frame f;
    size_t used, need;
    const char *err;
    assert_int_equal(
        wire_decode(&d, (const uint8_t *)from_b.data, from_b.len, &f, &used, &need, &err), WIRE_OK);
    struct wire_challenge ch = f.u.challenge;
    memset(ch.nonce, 8, sizeof ch.nonce);
    buf_clear(&replay);
    wire_put_challenge(&replay, &ch);
    deliver(&a, &replay, &out);
    assert_int_equal(a.st, WIRE_HS_FAILED);
    assert_int_equal(a.hs.reason, WIRE_REFUSE_AUTH);

    /* ... or reflects B's own proof back to B as the initiator's: the role
     * in the proof tells them apart. */
    cb = hs_config(ID_B, "s3cret", 9);
    side_init(&b, WIRE_RESPONDER, &cb);
    buf_clear(&replay);
    buf_clear(&out);
    struct wire_hello h = {.version_min = 1, .version_max = 1, .shards = 1, .max_frame = 1u << 20};
    memset(h.node_id, 0xaa, sizeof h.node_id);
    wire_put_hello(&replay, &h);
    deliver(&b, &replay, &out);
    assert_int_equal(b.st, WIRE_HS_AGAIN);
    assert_int_equal(wire_decode(&d, (const uint8_t *)out.data, out.len, &f, &used, &need, &err),
                     WIRE_OK);
    wire_put_proof(&replay, f.u.challenge.proof);
    deliver(&b, &replay, &out);
    assert_int_equal(b.st, WIRE_HS_FAILED);
    assert_int_equal(b.hs.reason, WIRE_REFUSE_AUTH);

    buf_fini(&replay);
    buf_fini(&from_a);
    buf_fini(&from_b);
    buf_fini(&out);
}

static void test_wire_handshake_refuses_a_tampered_hello(void **state)
{
    /* A man in the middle lowers A's version_max: B's proof covers the HELLO
     * B saw, so A refuses (no silent downgrade). */
    struct side a, b;
    struct wire_hs_config ca = hs_config(ID_A, "s3cret", 1);
    ca.version_max = 2;
    struct wire_hs_config cb = hs_config(ID_B, "s3cret", 2);
    cb.version_max = 2;
    struct buf ab, ba;
    start_by_hand(&a, &b, &ca, &cb, &ab, &ba);
    ab.data[WIRE_HEADER_LEN + 1] = 1;
    deliver(&b, &ab, &ba);
    assert_int_equal(b.st, WIRE_HS_AGAIN);
    assert_int_equal(b.hs.version, 1);
    deliver(&a, &ba, &ab);
    assert_int_equal(a.st, WIRE_HS_FAILED);
    assert_int_equal(a.hs.reason, WIRE_REFUSE_AUTH);
    buf_fini(&ab);
    buf_fini(&ba);
}

static void test_wire_handshake_version_mismatch(void **state)
{
    struct side a, b;
    struct wire_hs_config ca = hs_config(ID_A, "s3cret", 1);
    ca.version_min = 2;
    ca.version_max = 3;
    struct wire_hs_config cb = hs_config(ID_B, "s3cret", 2);
    side_init(&a, WIRE_INITIATOR, &ca);
    side_init(&b, WIRE_RESPONDER, &cb);
    handshake(&a, &b, NULL, NULL);
    assert_int_equal(b.st, WIRE_HS_FAILED);
    assert_int_equal(b.hs.reason, WIRE_REFUSE_VERSION);
    assert_false(b.hs.refused_by_peer);
    assert_int_equal(a.st, WIRE_HS_FAILED);
    assert_true(a.hs.refused_by_peer);
    assert_int_equal(a.hs.reason, WIRE_REFUSE_VERSION);
    assert_string_equal(a.hs.why, "no common protocol version: ours 1..1, yours 2..3");
}

static void test_wire_handshake_refuses_wrong_peers(void **state)
{
    struct side a, b;
    /* Connected to itself. */
    struct wire_hs_config ca = hs_config(ID_A, "s", 1);
    struct wire_hs_config cb = hs_config(ID_A, "s", 2);
    side_init(&a, WIRE_INITIATOR, &ca);
    side_init(&b, WIRE_RESPONDER, &cb);
    handshake(&a, &b, NULL, NULL);
    assert_int_equal(b.hs.reason, WIRE_REFUSE_SELF);
    assert_int_equal(a.st, WIRE_HS_FAILED);
    /* Dialled C, reached B (an address that changed hands). */
    ca.peer_id = ID_C;
    cb = hs_config(ID_B, "s", 2);
    side_init(&a, WIRE_INITIATOR, &ca);
    side_init(&b, WIRE_RESPONDER, &cb);
    handshake(&a, &b, NULL, NULL);
    assert_int_equal(a.hs.reason, WIRE_REFUSE_WRONG_NODE);
    assert_true(b.hs.refused_by_peer);
    /* A connection for shard 2 handed to shard 0. */
    ca.peer_id = ID_B;
    ca.peer_shard = 2;
    side_init(&a, WIRE_INITIATOR, &ca);
    side_init(&b, WIRE_RESPONDER, &cb);
    handshake(&a, &b, NULL, NULL);
    assert_int_equal(b.hs.reason, WIRE_REFUSE_WRONG_SHARD);
    assert_int_equal(a.hs.reason, WIRE_REFUSE_WRONG_SHARD);
    /* Bad configurations. */
    struct wire_hs hs;
    ca = hs_config("not-hex", "s", 1);
    assert_int_equal(wire_hs_init(&hs, WIRE_INITIATOR, &ca), -EINVAL);
    ca = hs_config(ID_A, "s", 1);
    ca.shard = 4;
    assert_int_equal(wire_hs_init(&hs, WIRE_INITIATOR, &ca), -EINVAL);
    ca.shard = 0;
    ca.max_frame = 10;
    assert_int_equal(wire_hs_init(&hs, WIRE_INITIATOR, &ca), -EINVAL);
}

/* ---- speed ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_wire_throughput(void **state)
{
    enum { N = 200000, ROUNDS = 5 };
    static const char value[33] = "0123456789abcdef0123456789abcdef";
    struct wire_bytes v = {(const uint8_t *)value, 32};
    struct wire_msg m = {.kind = WIRE_REQUEST,
                         .op = WIRE_OP_PUT,
                         .deadline_ms = 1000,
                         .partition = 12,
                         .slot = 12345,
                         .key = bs("memtier-1234567"),
                         .meta = bs("0123456789abcdefghijklmnopqrst"),
                         .n_values = 1,
                         .values = &v};
    struct buf out;
    buf_init(&out);
    double best_enc = 1e9, best_dec = 1e9;
    uint64_t seen = 0;
    for (int r = 0; r < ROUNDS; r++) {
        buf_clear(&out);
        struct wire_writer w;
        wire_writer_init(&w, &out, 1, 1u << 20);
        double t0 = now_s();
        for (uint32_t i = 0; i < N; i++) {
            m.id = i;
            wire_write_msg(&w, &m);
        }
        wire_writer_flush(&w);
        double t1 = now_s();
        struct wire_decoder d = session_decoder();
        size_t off = 0;
        while (off < out.len) {
            struct wire_frame f;
            size_t used, need;
            const char *err;
            wire_decode(&d, (const uint8_t *)out.data + off, out.len - off, &f, &used, &need, &err);
            struct wire_cursor c;
            struct wire_msg got;
            wire_cursor_init(&c, &d, &f);
            while (wire_next_msg(&c, &got, &err) == WIRE_OK)
                seen += got.id + got.key.len;
            off += used;
        }
        double t2 = now_s();
        best_enc = t1 - t0 < best_enc ? t1 - t0 : best_enc;
        best_dec = t2 - t1 < best_dec ? t2 - t1 : best_dec;
    }
    assert_true(seen > 0);
    printf("wire: PUT of a 32-byte value (%zu bytes a message, 1 MiB batches): "
           "encode %.1f M msg/s, decode %.1f M msg/s (best of %d x %d)\n",
           out.len / N, N / best_enc / 1e6, N / best_dec / 1e6, ROUNDS, N);
    buf_fini(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_round_trips_every_message),
        cmocka_unit_test(test_wire_round_trips_handshake_frames),
        cmocka_unit_test(test_wire_batches_many_messages_in_one_frame),
        cmocka_unit_test(test_wire_decodes_byte_at_a_time),
        cmocka_unit_test(test_wire_every_truncation_point_is_more),
        cmocka_unit_test(test_wire_cut_inside_a_batch_is_bad),
        cmocka_unit_test(test_wire_refuses_oversize_lengths),
        cmocka_unit_test(test_wire_refuses_unknown_types_and_flags),
        cmocka_unit_test(test_wire_handshake_succeeds),
        cmocka_unit_test(test_wire_handshake_wrong_secret_on_either_side),
        cmocka_unit_test(test_wire_handshake_refuses_replayed_proofs),
        cmocka_unit_test(test_wire_handshake_refuses_a_tampered_hello),
        cmocka_unit_test(test_wire_handshake_version_mismatch),
        cmocka_unit_test(test_wire_handshake_refuses_wrong_peers),
        cmocka_unit_test(test_wire_throughput),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
