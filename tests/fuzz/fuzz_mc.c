/* fuzz_mc.c: libFuzzer target for mc_parse().
 * The input is a byte stream from a memcached client. It is parsed request
 * after request until MC_MORE, MC_BAD, MC_BINARY or an error whose consumption runs past
 * the input (a swallowed value), checking the contract on each result: keys
 * and data inside the consumed bytes, keys within memcached's rules, error
 * lines ending in CRLF, *need past the bytes at hand, NEED_KEYS resolved by a
 * bigger array. Then the same stream is fed in chunks of 1..64 bytes (sizes
 * from a generator seeded by the input), one struct mc_state carried across
 * calls as a connection does, each parse on a fresh exact-size heap copy (so
 * the bytes move between calls and AddressSanitizer sees any read past len),
 * swallowing as a connection would; the outcomes must hash the same as the
 * one-shot run, and the parser's work meter must stay linear in the input.
 * Limits are small so every limit check is reachable. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mc.h"
#include "fuzz_util.h"

static const struct mc_limits fuzz_limits = {
    .max_line = 256,
    .max_value = 512,
};

struct outcome {
    enum mc_status st;
    struct mc_request req;
    struct mc_key *keys; /* grows on MC_NEED_KEYS; the caller frees it */
    uint32_t cap;
    size_t consumed;
    size_t need;
    const char *err;
    struct mc_state ms; /* carried across calls until a request ends */
    uint64_t calls;
};

static void check_ok(const struct outcome *o, const char *data, size_t len)
{
    const struct mc_request *r = &o->req;
    CHECK(o->consumed > 0 && o->consumed <= len && o->err == NULL);
    CHECK((unsigned)r->cmd < MC_CMD_COUNT && r->keys == o->keys && r->nkeys <= o->cap);
    for (uint32_t i = 0; i < r->nkeys; i++) {
        const struct mc_key *k = &r->keys[i];
        CHECK(k->len >= 1 && k->len <= MC_MAX_KEY_LEN);
        CHECK(k->ptr >= data && k->ptr + k->len <= data + o->consumed);
        for (uint32_t j = 0; j < k->len; j++)
            CHECK((unsigned char)k->ptr[j] > ' ' && (unsigned char)k->ptr[j] != 0x7f);
    }
    if (r->data) {
        CHECK(r->data_len <= fuzz_limits.max_value);
        CHECK(r->data >= data && r->data + r->data_len + 2 == data + o->consumed);
        CHECK(memcmp(r->data + r->data_len, "\r\n", 2) == 0);
    }
    if (r->stats_arg)
        CHECK(r->stats_arg >= data && r->stats_arg + r->stats_arg_len <= data + o->consumed);
}

/* Parses one request from data[0..len), growing keys on NEED_KEYS, and
 * checks every promise mc.h makes about the result. */
static void parse_one(struct outcome *o, const char *data, size_t len)
{
    o->calls++;
    o->st = mc_parse(&fuzz_limits, &o->ms, data, len, &o->req, o->keys, o->cap, &o->consumed,
                     &o->need, &o->err);
    if (o->st == MC_NEED_KEYS) {
        uint32_t want = o->req.nkeys;
        CHECK(want > o->cap && o->consumed == 0);
        o->keys = realloc(o->keys, want * sizeof *o->keys);
        CHECK(o->keys);
        o->cap = want;
        o->calls++;
        o->st = mc_parse(&fuzz_limits, &o->ms, data, len, &o->req, o->keys, o->cap, &o->consumed,
                         &o->need, &o->err);
        CHECK(o->st != MC_NEED_KEYS && o->st != MC_MORE && o->st != MC_BAD);
    }
    CHECK(o->st == MC_MORE || (o->ms.scan == 0 && o->ms.need == 0)); /* fresh after a request */
    switch (o->st) {
    case MC_OK:
        check_ok(o, data, len);
        break;
    case MC_ERROR: {
        size_t n = strlen(o->err);
        CHECK(n >= 2 && memcmp(o->err + n - 2, "\r\n", 2) == 0);
        CHECK(o->consumed > 0);
        CHECK(o->consumed <= len || strncmp(o->err, "SERVER_ERROR", 12) == 0);
        if (o->req.too_large) { /* a set over the limit names its key, in the line */
            const struct mc_key *k = &o->req.keys[0];
            CHECK(o->req.cmd == MC_SET && o->req.nkeys == 1 && o->req.keys == o->keys);
            CHECK(k->len >= 1 && k->len <= MC_MAX_KEY_LEN);
            CHECK(k->ptr >= data && k->ptr + k->len <= data + len);
        }
        break;
    }
    case MC_MORE:
        CHECK(o->consumed == 0 && o->err == NULL);
        CHECK(o->need == 0 || o->need > len);
        break;
    case MC_BAD:
        CHECK(strcmp(o->err, "CLIENT_ERROR line too long\r\n") == 0);
        CHECK(len >= fuzz_limits.max_line);
        break;
    case MC_BINARY:
        CHECK(len >= MC_BINARY_HEADER_LEN && (uint8_t)data[0] == MC_BINARY_MAGIC);
        CHECK(o->consumed == MC_BINARY_HEADER_LEN && o->err == NULL);
        break;
    case MC_NEED_KEYS:
        CHECK(0);
    }
}

static uint64_t hash_outcome(uint64_t h, const struct outcome *o)
{
    const struct mc_request *r = &o->req;
    h = hash_u64(h, (uint64_t)o->st);
    if (o->st == MC_ERROR || o->st == MC_BAD)
        return hash_bytes(hash_u64(h, o->consumed), o->err, strlen(o->err));
    if (o->st != MC_OK)
        return h;
    h = hash_u64(h, o->consumed);
    h = hash_u64(h, r->cmd);
    h = hash_u64(h, r->flags);
    h = hash_u64(h, (uint64_t)r->exptime);
    h = hash_u64(h, r->cas);
    h = hash_u64(h, r->delta);
    h = hash_u64(h, (uint64_t)r->number);
    h = hash_u64(h, r->noreply);
    h = hash_u64(h, r->nkeys);
    for (uint32_t i = 0; i < r->nkeys; i++)
        h = hash_bytes(hash_u64(h, r->keys[i].len), r->keys[i].ptr, r->keys[i].len);
    if (r->data)
        h = hash_bytes(hash_u64(h, r->data_len), r->data, r->data_len);
    if (r->stats_arg)
        h = hash_bytes(hash_u64(h, r->stats_arg_len), r->stats_arg, r->stats_arg_len);
    return h;
}

/* Parses the whole stream at once; returns the transcript's hash. */
static uint64_t run_whole(const char *data, size_t size, struct outcome *o)
{
    uint64_t h = 0xcbf29ce484222325ull;
    size_t off = 0;
    for (;;) {
        parse_one(o, data + off, size - off);
        h = hash_outcome(h, o);
        if (o->st != MC_OK && o->st != MC_ERROR)
            return h;
        if (o->consumed >= size - off)
            return h; /* the rest is swallowed or there is none */
        off += o->consumed;
    }
}

/* Feeds the stream in chunks of 1..64 bytes, as reads would deliver it. */
static uint64_t run_chunked(const char *data, size_t size, struct outcome *o)
{
    uint64_t h = 0xcbf29ce484222325ull;
    uint64_t rng = hash_bytes(size, data, size);
    o->ms = (struct mc_state){0};
    o->calls = 0;
    size_t start = 0, avail = 0;
    for (;;) {
        size_t n = avail - start;
        char *copy = malloc(n ? n : 1);
        CHECK(copy);
        memcpy(copy, data + start, n);
        parse_one(o, copy, n);
        bool more = o->st == MC_MORE && avail < size;
        if (!more)
            h = hash_outcome(h, o);
        free(copy);
        if ((o->st == MC_OK || o->st == MC_ERROR) && o->consumed < size - start) {
            start += o->consumed;
            if (avail < start)
                avail = start; /* swallowed bytes count as read */
        } else if (more) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t step = 1 + (size_t)(rng >> 58);
            avail = avail + step < size ? avail + step : size;
        } else {
            /* Each byte searched once, each line decoded (tokens, then keys)
             * at most twice, plus a byte per call. */
            CHECK(o->ms.examined <= 5 * (uint64_t)size + 2 * o->calls);
            return h;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outcome *o = calloc(1, sizeof *o);
    CHECK(o);
    o->cap = 2;
    o->keys = malloc(o->cap * sizeof *o->keys);
    CHECK(o->keys);
    uint64_t whole = run_whole((const char *)data, size, o);
    uint64_t chunked = run_chunked((const char *)data, size, o);
    CHECK(whole == chunked);
    free(o->keys);
    free(o);
    return 0;
}
