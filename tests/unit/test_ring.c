/* Unit tests for ring: the partition ring's guarantees (determinism, balance,
 * preference lists over distinct nodes and zones, minimum movement), at small
 * sizes and in a bounded simulation of up to 1,000 nodes on Q = 16384 whose
 * figures it prints. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ring.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void) /* xorshift64*: repeatable runs */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static struct ring_member member(uint32_t weight, const char *zone)
{
    struct ring_member m = {.weight = weight};
    snprintf(m.id, sizeof m.id, "%016llx%016llx%08x", (unsigned long long)rng(),
             (unsigned long long)rng(), (unsigned)rng());
    snprintf(m.zone, sizeof m.zone, "%s", zone);
    return m;
}

static struct ring *build(const struct ring_member *m, uint32_t n, uint32_t q, uint32_t n_rep,
                          const struct ring *prev)
{
    struct ring *r = NULL;
    assert_int_equal(ring_build(m, n, q, n_rep, prev, &r), 0);
    return r;
}

static uint32_t owned_by(const struct ring *r, const char *id)
{
    uint32_t i = ring_member_index(r, id);
    return i == RING_NONE ? 0 : r->owned[i];
}

/* The guarantees every ring keeps: each member owns its share within
 * max(1, 10%) (and within two: ring.c uses the slack past one only to spare a
 * move), every preference list names r->n distinct
 * members, from distinct zones when zone_spread, and zone_spread holds when the
 * owners span r->n zones. */
static void check_ring(const struct ring *r)
{
    uint64_t total = 0;
    uint32_t sum = 0;
    for (uint32_t i = 0; i < r->n_members; i++)
        total += r->members[i].weight;
    for (uint32_t i = 0; i < r->n_members; i++) {
        double share = (double)r->q * r->members[i].weight / (double)total;
        double bound = share * 0.1 > 1 ? share * 0.1 : 1;
        if (fabs(r->owned[i] - share) >= 2 || fabs(r->owned[i] - share) > bound)
            fail_msg("member %u owns %u, its share is %.2f", i, r->owned[i], share);
        sum += r->owned[i];
    }
    assert_int_equal(sum, r->q);
    for (uint32_t p = 0; p < r->q; p++) {
        const uint32_t *list = ring_pref(r, p);
        assert_int_equal(list[0], r->owner[p]);
        for (uint32_t a = 0; a < r->n; a++)
            for (uint32_t b = a + 1; b < r->n; b++) {
                if (list[a] == list[b])
                    fail_msg("partition %u: member %u twice in its list", p, list[a]);
                if (r->zone_spread &&
                    strcmp(r->members[list[a]].zone, r->members[list[b]].zone) == 0)
                    fail_msg("partition %u: zone \"%s\" twice in its list", p,
                             r->members[list[a]].zone);
            }
    }
}

static void test_ring_rejects_bad_input(void **state)
{
    struct ring_member m[2] = {member(100, ""), member(100, "")};
    struct ring *r = NULL;
    assert_int_equal(ring_build(m, 2, 0, 3, NULL, &r), -EINVAL);
    assert_int_equal(ring_build(m, 2, 48, 3, NULL, &r), -EINVAL);    /* not a power of two */
    assert_int_equal(ring_build(m, 2, 32768, 3, NULL, &r), -EINVAL); /* more than the slots */
    assert_int_equal(ring_build(m, 2, 64, 0, NULL, &r), -EINVAL);
    assert_int_equal(ring_build(m, 0, 64, 3, NULL, &r), -EINVAL);
    struct ring_member bad[2] = {m[0], m[0]}; /* one id twice */
    assert_int_equal(ring_build(bad, 2, 64, 3, NULL, &r), -EINVAL);
    bad[1] = m[1];
    bad[1].weight = 0;
    assert_int_equal(ring_build(bad, 2, 64, 3, NULL, &r), -EINVAL);
    bad[1] = m[1];
    bad[1].id[3] = 'G';
    assert_int_equal(ring_build(bad, 2, 64, 3, NULL, &r), -EINVAL);
    bad[1] = m[1];
    bad[1].id[39] = '\0'; /* 39 digits */
    assert_int_equal(ring_build(bad, 2, 64, 3, NULL, &r), -EINVAL);
    bad[1] = m[1];
    memset(bad[1].zone, 'z', sizeof bad[1].zone); /* unterminated */
    assert_int_equal(ring_build(bad, 2, 64, 3, NULL, &r), -EINVAL);
    struct ring *prev = build(m, 2, 64, 3, NULL);
    assert_int_equal(ring_build(m, 2, 128, 3, prev, &r), -EINVAL); /* q differs */
    const char *owners[64];
    for (int p = 0; p < 64; p++)
        owners[p] = p == 5 ? "0000000000000000000000000000000000000000" : m[p % 2].id;
    assert_int_equal(ring_from_owners(m, 2, 64, 3, owners, 1, &r), -EINVAL); /* not a member */
    assert_null(r);
    ring_destroy(prev);
}

/* Members in any order, the same ring; and the same again from that ring. */
static void test_ring_is_independent_of_member_order(void **state)
{
    enum { K = 40 };
    struct ring_member m[K], shuffled[K + 1];
    const char *zones[] = {"a", "b", "c", "d"};
    for (int i = 0; i < K; i++)
        m[i] = member(50 + (uint32_t)(rng() % 200), zones[i % 4]);
    memcpy(shuffled, m, sizeof m);
    for (int i = K - 1; i > 0; i--) {
        int j = (int)(rng() % (uint64_t)(i + 1));
        struct ring_member t = shuffled[i];
        shuffled[i] = shuffled[j];
        shuffled[j] = t;
    }
    struct ring *a = build(m, K, 1024, 3, NULL), *b = build(shuffled, K, 1024, 3, NULL);
    assert_int_equal(a->hash, b->hash);
    assert_memory_equal(a->owner, b->owner, sizeof *a->owner * 1024);
    assert_memory_equal(a->pref, b->pref, sizeof *a->pref * 1024 * 3);
    struct ring *again = build(shuffled, K, 1024, 3, a);
    assert_int_equal(again->hash, a->hash);
    assert_int_equal(again->epoch, a->epoch);
    /* One member more, two orders, with the same previous ring: one result. */
    struct ring_member more[K + 1];
    memcpy(more, m, sizeof m);
    more[K] = member(120, "b");
    shuffled[0] = more[K];
    memcpy(shuffled + 1, m, sizeof m);
    struct ring *c = build(more, K + 1, 1024, 3, a), *d = build(shuffled, K + 1, 1024, 3, b);
    assert_int_equal(c->hash, d->hash);
    assert_int_not_equal(c->hash, a->hash);
    assert_int_equal(c->epoch, a->epoch + 1);
    check_ring(c);
    ring_destroy(a);
    ring_destroy(b);
    ring_destroy(again);
    ring_destroy(c);
    ring_destroy(d);
}

static void test_ring_shares_by_weight(void **state)
{
    struct ring_member m[3] = {member(100, ""), member(100, ""), member(200, "")};
    struct ring *r = build(m, 3, 64, 3, NULL);
    check_ring(r);
    assert_int_equal(owned_by(r, m[0].id), 16);
    assert_int_equal(owned_by(r, m[1].id), 16);
    assert_int_equal(owned_by(r, m[2].id), 32);
    assert_int_equal(r->n, 3);
    ring_destroy(r);
    /* Shares with fractions: 1:2:4 of 64 is 9.14, 18.29, 36.57. */
    struct ring_member w[3] = {member(1, ""), member(2, ""), member(4, "")};
    r = build(w, 3, 64, 2, NULL);
    check_ring(r);
    assert_int_equal(owned_by(r, w[0].id) + owned_by(r, w[1].id) + owned_by(r, w[2].id), 64);
    ring_destroy(r);
}

/* Riak's claim left 4 -> 5 nodes on 64 partitions with one node at 25%. */
static void test_ring_join_4_to_5_on_64_moves_only_to_the_new_node(void **state)
{
    struct ring_member m[5];
    for (int i = 0; i < 5; i++)
        m[i] = member(100, "");
    struct ring *four = build(m, 4, 64, 3, NULL);
    check_ring(four);
    struct ring_balance bal;
    ring_measure(four, &bal);
    assert_int_equal(bal.crowded, 0);
    struct ring *five = build(m, 5, 64, 3, four);
    check_ring(five);
    for (int i = 0; i < 5; i++) /* 64 / 5 = 12.8 */
        assert_in_range(owned_by(five, m[i].id), 12, 13);
    struct ring_move moves[64];
    uint32_t n = ring_plan(four, five, moves);
    assert_int_equal(n, owned_by(five, m[4].id));
    for (uint32_t k = 0; k < n; k++)
        assert_string_equal(five->members[moves[k].to].id, m[4].id);
    ring_measure(five, &bal);
    print_message("4 -> 5 nodes, Q=64, N=3: moved %u (ideal 12.8), owned 12..13, lists per "
                  "owned partition %.2f..%.2f of N, crowded %u\n",
                  n, bal.replica_ratio_min, bal.replica_ratio_max, bal.crowded);
    assert_int_equal(bal.crowded, 0); /* so each node is in 3 lists per partition it owns */
    ring_destroy(four);
    ring_destroy(five);
}

static void test_ring_leave_moves_only_the_leavers_partitions(void **state)
{
    struct ring_member m[6];
    for (int i = 0; i < 6; i++)
        m[i] = member(i == 2 ? 200 : 100, "");
    struct ring *before = build(m, 6, 256, 3, NULL);
    check_ring(before);
    struct ring_member rest[5];
    for (int i = 0, k = 0; i < 6; i++)
        if (i != 2)
            rest[k++] = m[i];
    struct ring *after = build(rest, 5, 256, 3, before);
    check_ring(after);
    struct ring_move moves[256];
    uint32_t n = ring_plan(before, after, moves);
    assert_int_equal(n, owned_by(before, m[2].id));
    for (uint32_t k = 0; k < n; k++)
        assert_string_equal(before->members[moves[k].from].id, m[2].id);
    ring_destroy(before);
    ring_destroy(after);
}

/* Many small rings (2 to 40 members, Q 16 to 512, weights 1 to 1000), each
 * through a chain of random joins and leaves: after every change the
 * guarantees hold, a join moves partitions to the new member and a leave the
 * leaver's away. Where shares are a few partitions the bound of one partition
 * can force one move more (two members fall a partition short of their share
 * and one partition is free): counted, and kept rare. */
static void test_ring_small_random_changes_move_the_minimum(void **state)
{
    struct ring_member m[40];
    struct ring_move moves[512];
    uint32_t changes = 0, extra = 0, extra_max = 0;
    for (int trial = 0; trial < 1000; trial++) {
        uint32_t k = 2 + (uint32_t)(rng() % 30), q = 16u << (rng() % 6);
        for (uint32_t i = 0; i < k; i++)
            m[i] = member(1 + (uint32_t)(rng() % 1000), "");
        struct ring *r = build(m, k, q, 3, NULL);
        for (int step = 0; step < 20; step++, changes++) {
            bool join = k < 3 || (k < 40 && rng() % 2);
            if (join) {
                m[k++] = member(1 + (uint32_t)(rng() % 1000), "");
            } else {
                uint32_t gone = (uint32_t)(rng() % k);
                struct ring_member t = m[gone];
                m[gone] = m[k - 1];
                m[k - 1] = t;
                k--;
            }
            struct ring *next = build(m, k, q, 3, r);
            check_ring(next);
            const char *changed = m[join ? k - 1 : k].id;
            uint32_t n = ring_plan(r, next, moves), others = 0;
            for (uint32_t i = 0; i < n; i++)
                others += strcmp(join ? next->members[moves[i].to].id
                                      : r->members[moves[i].from].id,
                                 changed) != 0;
            assert_int_equal(n - others, join ? owned_by(next, changed) : owned_by(r, changed));
            extra += others;
            extra_max = others > extra_max ? others : extra_max;
            ring_destroy(r);
            r = next;
        }
        ring_destroy(r);
    }
    print_message("small rings: %u changes, %u partitions moved past the minimum (at most %u "
                  "in one change)\n",
                  changes, extra, extra_max);
    assert_true(extra_max <= 2 && extra * 200 <= changes);
}

/* Zones: 100:100:200 in three zones; lists span the three zones, before and
 * after a join into one of them and a leave from another. */
static void test_ring_spreads_lists_over_zones(void **state)
{
    struct ring_member m[7] = {member(100, "z1"), member(100, "z1"), member(100, "z2"),
                               member(100, "z2"), member(200, "z3"), member(200, "z3"),
                               member(100, "z1")};
    struct ring *a = build(m, 6, 256, 3, NULL);
    assert_true(a->zone_spread);
    check_ring(a);
    struct ring_balance bal;
    ring_measure(a, &bal);
    print_message("zones 100+100 : 100+100 : 200+200, Q=256, N=3: crowded %u, lists per owned "
                  "partition %.2f..%.2f of N\n",
                  bal.crowded, bal.replica_ratio_min, bal.replica_ratio_max);
    struct ring *b = build(m, 7, 256, 3, a); /* join into z1 */
    check_ring(b);
    struct ring_move moves[256];
    uint32_t n = ring_plan(a, b, moves);
    assert_int_equal(n, owned_by(b, m[6].id));
    struct ring_member rest[6] = {m[0], m[1], m[3], m[4], m[5], m[6]}; /* leave from z2 */
    struct ring *c = build(rest, 6, 256, 3, b);
    check_ring(c);
    assert_int_equal(ring_plan(b, c, moves), owned_by(b, m[2].id));
    ring_measure(c, &bal);
    print_message("after a join into z1 and a leave from z2: crowded %u, lists per owned "
                  "partition %.2f..%.2f of N\n",
                  bal.crowded, bal.replica_ratio_min, bal.replica_ratio_max);
    ring_destroy(a);
    ring_destroy(b);
    ring_destroy(c);
}

/* Equal zones whose totals fit (each at most Q / N): a fresh ring needs no
 * list to skip, and a join that keeps the zones equal keeps them nearly so. */
static void test_ring_equal_zones_give_exact_replica_load(void **state)
{
    struct ring_member m[12];
    const char *zones[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 12; i++)
        m[i] = member(100, zones[i % 4]);
    struct ring *a = build(m, 8, 1024, 3, NULL);
    struct ring_balance bal;
    ring_measure(a, &bal);
    assert_int_equal(bal.crowded, 0);
    assert_true(bal.replica_ratio_max == 1.0 && bal.replica_ratio_min == 1.0);
    struct ring *b = build(m, 12, 1024, 3, a); /* one node more in every zone */
    check_ring(b);
    ring_measure(b, &bal);
    print_message("4 equal zones, 8 -> 12 nodes, Q=1024, N=3: crowded %u, lists per owned "
                  "partition %.3f..%.3f of N\n",
                  bal.crowded, bal.replica_ratio_min, bal.replica_ratio_max);
    ring_destroy(a);
    ring_destroy(b);
}

static void test_ring_fewer_zones_than_n_still_gives_distinct_nodes(void **state)
{
    struct ring_member m[4] = {member(100, "a"), member(100, "a"), member(100, "b"),
                               member(300, "b")};
    struct ring *r = build(m, 4, 128, 3, NULL);
    assert_false(r->zone_spread);
    assert_int_equal(r->n, 3);
    check_ring(r);
    ring_destroy(r);
}

static void test_ring_caps_lists_at_the_owners(void **state)
{
    struct ring_member m[8];
    for (int i = 0; i < 8; i++)
        m[i] = member(100, "");
    struct ring *two = build(m, 2, 64, 3, NULL);
    assert_int_equal(two->n, 2);
    check_ring(two);
    struct ring *one = build(m, 1, 64, 3, NULL);
    assert_int_equal(one->n, 1);
    check_ring(one);
    struct ring *many = build(m, 8, 4, 3, NULL); /* more members than partitions */
    check_ring(many);
    assert_int_equal(many->n, 3);
    ring_destroy(two);
    ring_destroy(one);
    ring_destroy(many);
}

static void test_ring_from_owners_gives_the_same_ring(void **state)
{
    struct ring_member m[5];
    for (int i = 0; i < 5; i++)
        m[i] = member(100 + 20 * (uint32_t)i, i < 3 ? "x" : "y");
    struct ring *a = build(m, 5, 512, 2, NULL);
    const char *owners[512];
    for (uint32_t p = 0; p < 512; p++)
        owners[p] = a->members[a->owner[p]].id;
    struct ring *b = NULL;
    assert_int_equal(ring_from_owners(m, 5, 512, 2, owners, 7, &b), 0);
    assert_int_equal(b->hash, a->hash);
    assert_int_equal(b->epoch, 7);
    assert_memory_equal(b->pref, a->pref, sizeof *a->pref * 512 * 2);
    struct ring_move moves[512];
    assert_int_equal(ring_plan(a, b, moves), 0);
    ring_destroy(a);
    ring_destroy(b);
}

static void test_ring_codec_round_trips(void **state)
{
    struct ring_member m[6];
    for (int i = 0; i < 6; i++)
        m[i] = member(50 + 30 * (uint32_t)i, i % 2 ? "zone-a" : "");
    struct ring *a = build(m, 6, 1024, 3, NULL);
    uint8_t *bytes;
    size_t len;
    assert_int_equal(ring_encode(a, &bytes, &len), 0);
    struct ring *b = NULL;
    assert_int_equal(ring_decode(bytes, len, &b), 0);
    assert_int_equal(b->hash, a->hash);
    assert_int_equal(b->epoch, a->epoch);
    assert_int_equal(b->n, a->n);
    assert_int_equal(b->n_members, a->n_members);
    for (uint32_t i = 0; i < a->n_members; i++) {
        assert_string_equal(b->members[i].id, a->members[i].id);
        assert_int_equal(b->members[i].weight, a->members[i].weight);
        assert_string_equal(b->members[i].zone, a->members[i].zone);
    }
    assert_memory_equal(b->owner, a->owner, sizeof *a->owner * 1024);
    assert_memory_equal(b->pref, a->pref, sizeof *a->pref * 1024 * a->n);
    free(bytes);
    ring_destroy(b);
    /* a ring after a change keeps its epoch */
    struct ring *c = build(m, 5, 1024, 3, a);
    assert_int_equal(ring_encode(c, &bytes, &len), 0);
    assert_int_equal(ring_decode(bytes, len, &b), 0);
    assert_true(b->epoch == 2 && b->hash == c->hash);
    free(bytes);
    ring_destroy(b);
    ring_destroy(c);
    ring_destroy(a);
}

/* Decodes a copy of exactly len bytes (so that ASan sees any read past it). */
static int decode_copy(const uint8_t *bytes, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, bytes, len);
    struct ring *r = NULL;
    int rc = ring_decode(copy, len, &r);
    free(copy);
    ring_destroy(r);
    return rc;
}

static void test_ring_codec_refuses_hostile_bytes(void **state)
{
    struct ring_member m[3];
    for (int i = 0; i < 3; i++)
        m[i] = member(100, "z");
    struct ring *a = build(m, 3, 64, 2, NULL);
    uint8_t *bytes;
    size_t len;
    assert_int_equal(ring_encode(a, &bytes, &len), 0);
    assert_int_equal(decode_copy(bytes, len), 0);
    for (size_t cut = 0; cut < len; cut++) /* every truncation */
        assert_int_equal(decode_copy(bytes, cut), -EINVAL);
    uint8_t *b = malloc(len + 1);
    memcpy(b, bytes, len);
    b[len] = 0;
    assert_int_equal(decode_copy(b, len + 1), -EINVAL); /* a trailing byte */
    size_t q_at = 9, n_at = 13, count_at = 17, m0 = 21, owners = len - 2 * 64;
    struct { size_t at; uint8_t v; } bad[] = {
        {0, 2},                  /* version */
        {q_at, 63},              /* q not a power of two */
        {q_at + 2, 1},           /* q past RING_Q_MAX */
        {n_at, 0},               /* n = 0 */
        {n_at, 4},               /* n > members */
        {count_at, 0},           /* no member */
        {count_at, 200},         /* more members than bytes */
        {count_at + 3, 0x80},    /* a huge member count */
        {m0, 'X'},               /* an id that is not lowercase hex */
        {m0 + 40, 0},            /* weight 0 (with the next three bytes) */
        {m0 + 44, 64},           /* a zone longer than RING_ZONE_MAX */
        {m0 + 44, 9},            /* a zone running into the next member */
        {m0 + 45, 0},            /* a NUL in a zone */
        {owners, 3},             /* an owner index out of range */
        {owners + 1, 0xff},      /* ... far out */
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        memcpy(b, bytes, len);
        b[bad[k].at] = bad[k].v;
        if (bad[k].at == m0 + 40)
            memset(b + m0 + 40, 0, 4);
        assert_int_equal(decode_copy(b, len), -EINVAL);
    }
    /* n = 2 but one member owns every partition: not what ring_encode() writes */
    memcpy(b, bytes, len);
    memset(b + owners, 0, 2 * 64);
    assert_int_equal(decode_copy(b, len), -EINVAL);
    /* members out of id order (or twice): owner indexes would not mean the same */
    memcpy(b, bytes, len);
    memcpy(b + m0 + 46, b + m0, 40); /* member 1's id := member 0's (zones are 1 byte) */
    assert_int_equal(decode_copy(b, len), -EINVAL);
    free(b);
    free(bytes);
    ring_destroy(a);
}

/* Little-endian v into p (the codec's byte order). */
static uint8_t *put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int k = 0; k < bytes; k++)
        *p++ = (uint8_t)(v >> (8 * k));
    return p;
}

/* A RING blob of count members (weight 1, no zone, in id order) owning Q =
 * 16384 partitions in turn, announcing n replicas: about 750 KB for 16000
 * members. The reviewer's hostile blob had n = members, which made
 * ring_decode() allocate q * n preference list entries (1 GB) on the admin
 * thread. Caller frees. */
static uint8_t *many_members_blob(uint32_t count, uint32_t n, size_t *len)
{
    const uint32_t q = 16384;
    *len = 21 + (size_t)count * 45 + 2 * q;
    uint8_t *b = malloc(*len), *p = b;
    assert_non_null(b);
    *p++ = RING_CODEC_VERSION;
    p = put_le(p, 1, 8);
    p = put_le(p, q, 4);
    p = put_le(p, n, 4);
    p = put_le(p, count, 4);
    for (uint32_t i = 0; i < count; i++) {
        char id[RING_ID_LEN + 1];
        snprintf(id, sizeof id, "%040x", i);
        memcpy(p, id, RING_ID_LEN);
        p = put_le(p + RING_ID_LEN, 1, 4);
        *p++ = 0; /* no zone */
    }
    for (uint32_t k = 0; k < q; k++)
        p = put_le(p, k % count, 2);
    return b;
}

static void test_ring_codec_refuses_many_replicas_fast(void **state)
{
    size_t len;
    uint8_t *b = many_members_blob(16000, 16000, &len);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(decode_copy(b, len), -EINVAL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf("ring: a %zu-byte blob announcing 16000 replicas refused in %.2f ms\n", len, ms);
    assert_true(ms < 50); /* refused before any allocation (it took 1.3 s, 1 GB) */
    free(b);
    b = many_members_blob(16000, RING_REPLICAS_MAX + 1, &len);
    assert_int_equal(decode_copy(b, len), -EINVAL);
    free(b);
    b = many_members_blob(16000, RING_REPLICAS_MAX, &len);
    assert_int_equal(decode_copy(b, len), 0); /* the cap itself is fine */
    free(b);
    /* a length past what the members and Q can fill is refused up front */
    b = many_members_blob(3, 3, &len);
    uint8_t *longer = calloc(1, len + 3 * RING_ZONE_MAX + 1);
    memcpy(longer, b, len);
    assert_int_equal(decode_copy(longer, len + 3 * RING_ZONE_MAX + 1), -EINVAL);
    free(longer);
    free(b);
    /* ring_build() takes no more replicas than the codec */
    struct ring_member m[20] = {{.weight = 0}};
    for (int i = 0; i < 20; i++) { /* not member(): the simulations' random ids stay theirs */
        snprintf(m[i].id, sizeof m[i].id, "%040x", i);
        m[i].weight = 100;
    }
    struct ring *r = NULL;
    assert_int_equal(ring_build(m, 20, 64, RING_REPLICAS_MAX + 1, NULL, &r), -EINVAL);
    assert_null(r);
}

/* The simulation: random weights, joins and leaves, up to max_nodes members
 * on Q = 16384; after each step the guarantees, and the movement against the
 * ideal (a join of weight w into W: Q * w / (W + w); a leave: the leaver's). */
struct sim {
    struct ring_member *m;
    uint32_t n;
    struct ring *ring;
    double worst_dev, worst_rel_dev, worst_replica, worst_replica_min;
    double join_ratio_max, join_ratio_sum, moved_sum, ideal_sum;
    uint32_t joins, leaves, crowded_max, stray_moves, steps_past_one;
    double seconds_max;
};

static void sim_step(struct sim *s, uint32_t n_rep, const char *joined, const char *left,
                     double ideal)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct ring *next = build(s->m, s->n, 16384, n_rep, s->ring);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double sec = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    s->seconds_max = sec > s->seconds_max ? sec : s->seconds_max;
    check_ring(next);
    static struct ring_move moves[16384];
    uint32_t n = ring_plan(s->ring, next, moves);
    for (uint32_t k = 0; k < n; k++) {
        if (joined && strcmp(next->members[moves[k].to].id, joined) != 0)
            s->stray_moves++;
        if (left && strcmp(s->ring->members[moves[k].from].id, left) != 0)
            s->stray_moves++;
    }
    s->moved_sum += n;
    s->ideal_sum += ideal;
    if (joined && ideal >= 1) {
        s->join_ratio_max = n / ideal > s->join_ratio_max ? n / ideal : s->join_ratio_max;
        s->join_ratio_sum += n / ideal;
        s->joins++;
    }
    s->leaves += left != NULL;
    struct ring_balance bal;
    ring_measure(next, &bal);
    s->worst_dev = bal.owned_dev_max > s->worst_dev ? bal.owned_dev_max : s->worst_dev;
    s->steps_past_one += bal.owned_dev_max >= 1;
    s->worst_rel_dev =
        bal.owned_dev_rel_max > s->worst_rel_dev ? bal.owned_dev_rel_max : s->worst_rel_dev;
    s->worst_replica =
        bal.replica_ratio_max > s->worst_replica ? bal.replica_ratio_max : s->worst_replica;
    s->worst_replica_min =
        bal.replica_ratio_min < s->worst_replica_min ? bal.replica_ratio_min : s->worst_replica_min;
    s->crowded_max = bal.crowded > s->crowded_max ? bal.crowded : s->crowded_max;
    ring_destroy(s->ring);
    s->ring = next;
}

static uint64_t sim_total(const struct sim *s)
{
    uint64_t w = 0;
    for (uint32_t i = 0; i < s->n; i++)
        w += s->m[i].weight;
    return w;
}

/* replica_spread: the bound on replica load (lists / (N * owned)) to assert,
 * as 1 +- replica_spread; 0 for none. */
static void simulate(const char *what, uint32_t start, uint32_t max_nodes, uint32_t n_zones,
                     uint32_t n_rep, double replica_spread)
{
    struct sim s = {.worst_replica_min = 1e300};
    s.m = calloc(max_nodes, sizeof *s.m);
    assert_non_null(s.m);
    char zone[8];
    for (s.n = 0; s.n < start; s.n++) {
        snprintf(zone, sizeof zone, n_zones ? "z%u" : "", (unsigned)(s.n % (n_zones + !n_zones)));
        s.m[s.n] = member(10 + (uint32_t)(rng() % 991), zone);
    }
    s.ring = build(s.m, s.n, 16384, n_rep, NULL);
    check_ring(s.ring);
    for (uint32_t step = 1; s.n < max_nodes; step++) {
        if (step % 4 == 0) { /* a leave */
            uint32_t i = (uint32_t)(rng() % s.n);
            struct ring_member gone = s.m[i];
            double ideal = owned_by(s.ring, gone.id);
            s.m[i] = s.m[--s.n];
            sim_step(&s, n_rep, NULL, gone.id, ideal);
            continue;
        }
        snprintf(zone, sizeof zone, n_zones ? "z%u" : "", (unsigned)(rng() % (n_zones + !n_zones)));
        s.m[s.n] = member(10 + (uint32_t)(rng() % 991), zone);
        double w = s.m[s.n].weight, total = (double)sim_total(&s);
        s.n++;
        sim_step(&s, n_rep, s.m[s.n - 1].id, NULL, 16384.0 * w / (total + w));
    }
    print_message("%s: %u joins, %u leaves, %u -> %u nodes, Q=16384, N=%u\n"
                  "  ownership: max |owned - share| %.4f partitions (%.1f%% of a share >= 1); "
                  "rings with a member one or more off: %u\n"
                  "  movement: moved / ideal %.4f overall, per join mean %.3f max %.3f; "
                  "moves to or from another node: %u\n"
                  "  replica load (lists / (N * owned)): %.3f .. %.3f; crowded partitions max %u\n"
                  "  slowest build %.1f ms\n",
                  what, s.joins, s.leaves, start, s.n, n_rep, s.worst_dev, 100 * s.worst_rel_dev,
                  s.steps_past_one,
                  s.moved_sum / s.ideal_sum, s.join_ratio_sum / s.joins, s.join_ratio_max,
                  s.stray_moves, s.worst_replica_min, s.worst_replica, s.crowded_max,
                  s.seconds_max * 1e3);
    assert_int_equal(s.stray_moves, 0);
    assert_true(s.seconds_max < 1);
    if (replica_spread > 0)
        assert_true(s.worst_replica <= 1 + replica_spread &&
                    s.worst_replica_min >= 1 - replica_spread);
    ring_destroy(s.ring);
    free(s.m);
}

static void test_ring_simulation_without_zones(void **state)
{
    simulate("no zones", 100, 1000, 0, 3, 0.01);
}

static void test_ring_simulation_with_zones(void **state)
{
    simulate("4 zones", 100, 400, 4, 3, 0);
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* 1,000 members on Q = 16384 from nothing, then half of them leaving at once,
 * then 500 others joining at once: each well under a second. */
static void test_ring_builds_1000_members_fast(void **state)
{
    enum { K = 1000 };
    struct ring_member *m = calloc(K + K / 2, sizeof *m);
    assert_non_null(m);
    for (int i = 0; i < K + K / 2; i++)
        m[i] = member(10 + (uint32_t)(rng() % 991), i % 3 == 0 ? "a" : i % 3 == 1 ? "b" : "c");
    struct timespec t0;
    double took[3];
    struct ring *ring[3];
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ring[0] = build(m, K, 16384, 3, NULL);
    took[0] = seconds_since(&t0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ring[1] = build(m, K / 2, 16384, 3, ring[0]); /* m[500..999] leave */
    took[1] = seconds_since(&t0);
    memcpy(m + K / 2, m + K, sizeof *m * (K / 2));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ring[2] = build(m, K, 16384, 3, ring[1]); /* m[1000..1499] join */
    took[2] = seconds_since(&t0);
    struct ring_balance bal[3];
    struct ring_move *moves = calloc(16384, sizeof *moves);
    assert_non_null(moves);
    for (int i = 0; i < 3; i++) {
        check_ring(ring[i]);
        ring_measure(ring[i], &bal[i]);
    }
    uint32_t left = ring_plan(ring[0], ring[1], moves), leavers = 0;
    for (uint32_t k = 0; k < left; k++) /* only the leavers' partitions move */
        assert_int_equal(ring_member_index(ring[1], ring[0]->members[moves[k].from].id), RING_NONE);
    for (uint32_t i = 0; i < ring[0]->n_members; i++)
        if (ring_member_index(ring[1], ring[0]->members[i].id) == RING_NONE)
            leavers += ring[0]->owned[i];
    assert_int_equal(left, leavers);
    uint32_t joined = ring_plan(ring[1], ring[2], moves);
    for (uint32_t k = 0; k < joined; k++) /* only to the new members */
        assert_int_equal(ring_member_index(ring[1], ring[2]->members[moves[k].to].id), RING_NONE);
    print_message("1,000 members, Q=16384, N=3, 3 zones: fresh %.1f ms (crowded %u), "
                  "500 leave at once %.1f ms (moved %u, crowded %u), 500 join at once %.1f ms "
                  "(moved %u, crowded %u)\n",
                  took[0] * 1e3, bal[0].crowded, took[1] * 1e3, left, bal[1].crowded,
                  took[2] * 1e3, joined, bal[2].crowded);
    assert_true(took[0] < 1 && took[1] < 1 && took[2] < 1);
    for (int i = 0; i < 3; i++)
        ring_destroy(ring[i]);
    free(moves);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_rejects_bad_input),
        cmocka_unit_test(test_ring_is_independent_of_member_order),
        cmocka_unit_test(test_ring_shares_by_weight),
        cmocka_unit_test(test_ring_join_4_to_5_on_64_moves_only_to_the_new_node),
        cmocka_unit_test(test_ring_leave_moves_only_the_leavers_partitions),
        cmocka_unit_test(test_ring_small_random_changes_move_the_minimum),
        cmocka_unit_test(test_ring_spreads_lists_over_zones),
        cmocka_unit_test(test_ring_equal_zones_give_exact_replica_load),
        cmocka_unit_test(test_ring_fewer_zones_than_n_still_gives_distinct_nodes),
        cmocka_unit_test(test_ring_caps_lists_at_the_owners),
        cmocka_unit_test(test_ring_from_owners_gives_the_same_ring),
        cmocka_unit_test(test_ring_codec_round_trips),
        cmocka_unit_test(test_ring_codec_refuses_hostile_bytes),
        cmocka_unit_test(test_ring_codec_refuses_many_replicas_fast),
        cmocka_unit_test(test_ring_builds_1000_members_fast),
        cmocka_unit_test(test_ring_simulation_without_zones),
        cmocka_unit_test(test_ring_simulation_with_zones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
