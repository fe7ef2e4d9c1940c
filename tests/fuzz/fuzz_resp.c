/* fuzz_resp.c: libFuzzer target for resp_parse().
 * The input is a byte stream from a client. It is parsed request after
 * request until RESP_MORE or RESP_BAD, checking the contract on each result
 * (consumed within the input, argument slices inside the input or scratch,
 * *need past the bytes at hand, NEED_ARGS resolved by a bigger argv, error
 * texts in Redis's form). Each OK request is also written back with the
 * reply writers as a multibulk and parsed again: the arguments must survive,
 * and a multibulk input must equal its re-encoding byte for byte.
 * Then the same stream is fed in chunks of 1..64 bytes (sizes drawn from a
 * generator seeded by the input, so each mutation splits differently), one
 * struct resp_state carried across calls as a connection does: each parse
 * runs on a fresh exact-size heap copy, so the bytes move between calls (the
 * state must hold offsets) and AddressSanitizer sees any read past len. The
 * outcomes must hash the same as the one-shot run (resumption changes
 * nothing), the state must be fresh after every whole request or error, and
 * the parser's work meter must stay linear in the input.
 * Last, resp_peek_keys() looks ahead over the same bytes: at most its max
 * keys, each a slice inside the input.
 * Limits are small so the fuzzer reaches every limit check. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"
#include "fuzz_util.h"

#define FUZZ_ARGV 4
#define FUZZ_SCRATCH 512

static const struct resp_limits fuzz_limits = {
    .max_args = 64,
    .max_bulk = 512,
    .max_inline = FUZZ_SCRATCH,
};

struct outcome {
    enum resp_status st;
    struct resp_arg *argv; /* grows on RESP_NEED_ARGS; the caller frees it */
    uint32_t cap;
    uint32_t argc;
    size_t consumed;
    size_t need;
    const char *err;
    struct resp_state rs; /* carried across calls until a request ends */
    uint64_t calls;
    char scratch[FUZZ_SCRATCH];
};

static bool state_is_fresh(const struct resp_state *rs)
{
    struct resp_state fresh = {.examined = rs->examined};
    return memcmp(rs, &fresh, sizeof fresh) == 0;
}

/* Parses one request from data[0..len), growing argv on NEED_ARGS, and
 * checks every promise resp.h makes about the result. */
static void parse_one(struct outcome *o, const char *data, size_t len)
{
    o->calls++;
    o->st = resp_parse(&fuzz_limits, &o->rs, data, len, o->argv, o->cap, &o->argc, o->scratch,
                       sizeof o->scratch, &o->consumed, &o->need, &o->err);
    if (o->st == RESP_NEED_ARGS) {
        CHECK(o->argc > o->cap && o->consumed == 0);
        uint32_t want = o->argc;
        o->argv = realloc(o->argv, want * sizeof *o->argv);
        CHECK(o->argv);
        o->cap = want;
        o->calls++;
        o->st = resp_parse(&fuzz_limits, &o->rs, data, len, o->argv, o->cap, &o->argc, o->scratch,
                           sizeof o->scratch, &o->consumed, &o->need, &o->err);
        CHECK(o->st == RESP_OK && o->argc == want);
    }
    CHECK(o->st == RESP_MORE || state_is_fresh(&o->rs));
    switch (o->st) {
    case RESP_OK:
        CHECK(o->consumed > 0 && o->consumed <= len);
        CHECK(o->argc <= o->cap && o->need == 0 && o->err == NULL);
        for (uint32_t i = 0; i < o->argc; i++) {
            const char *a = o->argv[i].ptr;
            size_t n = o->argv[i].len;
            int in_input = a >= data && a + n <= data + o->consumed;
            int in_scratch = a >= o->scratch && a + n <= o->scratch + sizeof o->scratch;
            CHECK(in_input || in_scratch);
        }
        break;
    case RESP_MORE:
        CHECK(o->consumed == 0 && o->err == NULL);
        CHECK(o->need == 0 || o->need > len);
        break;
    case RESP_BAD:
        CHECK(o->err != NULL && strncmp(o->err, "ERR Protocol error: ", 20) == 0);
        CHECK(o->err[20] != '\0');
        break;
    case RESP_NEED_ARGS:
        CHECK(0);
    }
}

static uint64_t hash_outcome(uint64_t h, const struct outcome *o)
{
    h = hash_u64(h, (uint64_t)o->st);
    if (o->st == RESP_BAD)
        return hash_bytes(h, o->err, strlen(o->err));
    if (o->st != RESP_OK)
        return h;
    h = hash_u64(h, o->consumed);
    h = hash_u64(h, o->argc);
    for (uint32_t i = 0; i < o->argc; i++) {
        h = hash_u64(h, o->argv[i].len);
        h = hash_bytes(h, o->argv[i].ptr, o->argv[i].len);
    }
    return h;
}

/* Writes the request back as a multibulk and checks it parses to the same
 * arguments. The parser accepts only canonical lengths, so a multibulk input
 * must also be byte for byte what the writers produce. */
static void check_round_trip(const struct outcome *o, const char *input)
{
    if (o->argc == 0 || o->argc > fuzz_limits.max_args)
        return;
    struct buf b;
    buf_init(&b);
    resp_write_array_len(&b, o->argc);
    for (uint32_t i = 0; i < o->argc; i++)
        resp_write_bulk(&b, o->argv[i].ptr, o->argv[i].len);
    CHECK(!b.failed);
    if (input[0] == '*')
        CHECK(b.len == o->consumed && memcmp(b.data, input, b.len) == 0);
    struct outcome *again = calloc(1, sizeof *again);
    CHECK(again);
    parse_one(again, b.data, b.len);
    CHECK(again->st == RESP_OK && again->consumed == b.len && again->argc == o->argc);
    for (uint32_t i = 0; i < o->argc; i++) {
        CHECK(again->argv[i].len == o->argv[i].len);
        CHECK(memcmp(again->argv[i].ptr, o->argv[i].ptr, o->argv[i].len) == 0);
    }
    free(again->argv);
    free(again);
    buf_fini(&b);
}

/* Parses the whole stream at once; returns the transcript's hash. */
static uint64_t run_whole(const char *data, size_t size, struct outcome *o)
{
    uint64_t h = 0xcbf29ce484222325ull;
    size_t off = 0;
    for (;;) {
        parse_one(o, data + off, size - off);
        h = hash_outcome(h, o);
        if (o->st != RESP_OK)
            return h;
        check_round_trip(o, data + off);
        off += o->consumed;
    }
}

/* Feeds the stream in chunks of 1..64 bytes, as reads would deliver it. */
static uint64_t run_chunked(const char *data, size_t size, struct outcome *o)
{
    uint64_t h = 0xcbf29ce484222325ull;
    uint64_t rng = hash_bytes(size, data, size);
    o->rs = (struct resp_state){0};
    o->calls = 0;
    size_t start = 0, avail = 0;
    for (;;) {
        size_t n = avail - start;
        char *copy = malloc(n ? n : 1);
        CHECK(copy);
        memcpy(copy, data + start, n);
        parse_one(o, copy, n);
        bool more = o->st == RESP_MORE && avail < size;
        if (o->st == RESP_OK || !more)
            h = hash_outcome(h, o);
        free(copy);
        if (o->st == RESP_OK) {
            start += o->consumed;
        } else if (more) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t step = 1 + (size_t)(rng >> 58);
            avail = avail + step < size ? avail + step : size;
        } else {
            /* Each byte searched once, each line decoded at most three times
             * (read, refilled, NEED_ARGS), plus a byte or two per call. */
            CHECK(o->rs.examined <= 4 * (uint64_t)size + 2 * o->calls);
            return h;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outcome *o = calloc(1, sizeof *o);
    CHECK(o);
    o->cap = FUZZ_ARGV;
    o->argv = malloc(o->cap * sizeof *o->argv);
    CHECK(o->argv);
    uint64_t whole = run_whole((const char *)data, size, o);
    uint64_t chunked = run_chunked((const char *)data, size, o);
    CHECK(whole == chunked);
    struct resp_arg keys[16];
    uint32_t n = resp_peek_keys((const char *)data, size, keys, 16);
    CHECK(n <= 16);
    for (uint32_t i = 0; i < n; i++)
        CHECK(keys[i].ptr >= (const char *)data &&
              keys[i].ptr + keys[i].len <= (const char *)data + size);
    free(o->argv);
    free(o);
    return 0;
}
