/* fuzz_dvv.c: libFuzzer target for the version codec (dvv_decode,
 * dvv_context_decode) and, behind it, the merge (dvv_sync, dvv_update).
 * The input is two clocks, each a u16 (little endian) meta length, the
 * meta, a u16 body length and the body (lengths cut to what is there).
 * Each part is decoded from an exact-size heap copy, so AddressSanitizer
 * sees any read past it. A clock that decodes must encode to the same
 * bytes (the codec takes canonical input only) and decode again; so must
 * the context of the whole input. Two clocks that decode are synced both
 * ways (the same entries either way; values at the same dot may differ in
 * hostile input, so only their count is compared), with themselves (no
 * change), and the result must encode and decode; a write of the second's
 * context at an actor from the input is applied over the first. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dvv.h"
#include "fuzz_util.h"

#define CAP (2 * DVV_MAX_ENTRIES + 1)

static const uint8_t *take(const uint8_t **p, size_t *n, size_t *len)
{
    size_t want = *n >= 2 ? (size_t)((*p)[0] | (*p)[1] << 8) : 0;
    size_t skip = *n >= 2 ? 2 : *n;
    *p += skip;
    *n -= skip;
    *len = want < *n ? want : *n;
    const uint8_t *part = *p;
    *p += *len;
    *n -= *len;
    return part;
}

static void *copy_exact(const void *p, size_t n)
{
    void *c = malloc(n ? n : 1);
    CHECK(c);
    if (n)
        memcpy(c, p, n);
    return c;
}

static void encode(const struct dvv_clock *c, struct buf *meta, struct buf *body)
{
    buf_clear(meta);
    buf_clear(body);
    CHECK(dvv_encode_meta(c, meta) == 0);
    CHECK(dvv_encode_body(c, body) == 0);
}

/* The clock encodes and decodes back to the same bytes. */
static void check_round_trip(const struct dvv_clock *c, const void *meta, size_t meta_len,
                             const void *body, size_t body_len)
{
    struct buf m, b, m2, b2;
    buf_init(&m);
    buf_init(&b);
    buf_init(&m2);
    buf_init(&b2);
    encode(c, &m, &b);
    if (meta)
        CHECK(m.len == meta_len && memcmp(m.data, meta, meta_len) == 0);
    if (body)
        CHECK(b.len == body_len && (!body_len || memcmp(b.data, body, body_len) == 0));
    struct dvv_clock *again = dvv_create(CAP, CAP);
    CHECK(again);
    CHECK(dvv_decode(m.data, m.len, b.data, b.len, again) == 0);
    encode(again, &m2, &b2);
    CHECK(m2.len == m.len && memcmp(m2.data, m.data, m.len) == 0);
    CHECK(b2.len == b.len && (!b.len || memcmp(b2.data, b.data, b.len) == 0));
    dvv_destroy(again);
    buf_fini(&m);
    buf_fini(&b);
    buf_fini(&m2);
    buf_fini(&b2);
}

/* Decodes one clock part; true when it decoded (checked) into c. */
static bool decode_part(const uint8_t **p, size_t *n, struct dvv_clock *c, void **body_copy)
{
    size_t meta_len, body_len;
    const uint8_t *meta = take(p, n, &meta_len);
    const uint8_t *body = take(p, n, &body_len);
    void *m = copy_exact(meta, meta_len);
    *body_copy = copy_exact(body, body_len); /* c's values point into it */
    int rc = dvv_decode(m, meta_len, *body_copy, body_len, c);
    CHECK(rc == 0 || rc == -EINVAL);
    if (rc == 0)
        check_round_trip(c, meta, meta_len, body, body_len);
    else
        CHECK(c->nentries == 0 && c->nvalues == 0);
    free(m);
    return rc == 0;
}

static void check_context(const uint8_t *data, size_t size, struct dvv_clock *c)
{
    void *copy = copy_exact(data, size);
    int rc = dvv_context_decode(copy, size, c);
    CHECK(rc == 0 || rc == -EINVAL);
    if (rc == 0) {
        struct buf out;
        buf_init(&out);
        CHECK(dvv_context_encode(c, &out) == 0);
        CHECK(out.len == size && (!size || memcmp(out.data, data, size) == 0));
        buf_fini(&out);
    }
    free(copy);
}

static bool same_entries(const struct dvv_clock *x, const struct dvv_clock *y)
{
    if (x->nentries != y->nentries || x->nvalues != y->nvalues || x->nanon != y->nanon)
        return false;
    for (uint32_t i = 0; i < x->nentries; i++)
        if (x->entries[i].actor != y->entries[i].actor ||
            x->entries[i].counter != y->entries[i].counter ||
            x->entries[i].nvalues != y->entries[i].nvalues)
            return false;
    return true;
}

static void check_merges(const struct dvv_clock *a, const struct dvv_clock *b, uint64_t actor)
{
    struct dvv_clock *ab = dvv_create(CAP, CAP), *ba = dvv_create(CAP, CAP);
    struct dvv_clock *client = dvv_create(CAP, CAP);
    CHECK(ab && ba && client);
    CHECK(!(dvv_less(a, b) && dvv_less(b, a)));
    CHECK(dvv_sync(ab, a, b) == 0 && dvv_sync(ba, b, a) == 0);
    CHECK(same_entries(ab, ba));
    if (dvv_size(ab) <= DVV_MAX_VALUES && ab->nentries <= DVV_MAX_ENTRIES)
        check_round_trip(ab, NULL, 0, NULL, 0);
    CHECK(dvv_sync(ba, a, a) == 0 && same_entries(ba, a));
    if (dvv_size(ab))
        CHECK(dvv_pick(ab) >= 0 && (uint32_t)dvv_pick(ab) < dvv_size(ab));
    struct dvv_value v = {.data = "v", .len = 1, .ts_ms = 1};
    CHECK(dvv_new_with_context(client, b, &v) == 0);
    int rc = dvv_update(ab, client, a, actor);
    CHECK(rc == 0 || rc == -EOVERFLOW);
    if (rc == 0)
        CHECK(dvv_less(a, ab) && dvv_less(b, ab) && dvv_size(ab) >= 1);
    dvv_destroy(ab);
    dvv_destroy(ba);
    dvv_destroy(client);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dvv_clock *a = dvv_create(CAP, CAP), *b = dvv_create(CAP, CAP);
    CHECK(a && b);
    check_context(data, size, a);
    const uint8_t *p = data;
    size_t n = size;
    void *body_a = NULL, *body_b = NULL;
    bool ok_a = decode_part(&p, &n, a, &body_a);
    bool ok_b = decode_part(&p, &n, b, &body_b);
    if (ok_a && ok_b) { /* the coordinator: one of a's actors or a new one */
        uint64_t actor = size ? data[0] % 4 : 0;
        check_merges(a, b, a->nentries ? a->entries[0].actor + actor : actor);
    }
    free(body_a);
    free(body_b);
    dvv_destroy(a);
    dvv_destroy(b);
    return 0;
}
