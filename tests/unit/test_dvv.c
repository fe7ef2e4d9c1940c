/* Unit tests for dvv: dotted version vector sets.
 * The classic scenarios of the paper and of Riak's dvvset (concurrent
 * writes with one context give siblings, a write with the joined context
 * resolves them, a replayed replication is no new sibling, replicas
 * converge in any sync order), the KV-679 actor contract, a model-based
 * property test over thousands of random histories of three replicas and
 * four clients, the codec on good and hostile bytes, and the cost of the
 * hot operations (printed, not asserted). */
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

#include "dvv.h"

#define A 0x1000u
#define B 0x2000u
#define C 0x3000u

static struct dvv_value val(const char *s, int64_t ts)
{
    return (struct dvv_value){.data = s, .len = (uint32_t)strlen(s), .ts_ms = ts};
}

static struct dvv_clock *mk(void)
{
    struct dvv_clock *c = dvv_create(DVV_MAX_ENTRIES, DVV_MAX_VALUES);
    assert_non_null(c);
    return c;
}

/* The values of c as "s1,s2,..." in clock order. */
static const char *names(const struct dvv_clock *c)
{
    static char out[4096];
    size_t n = 0;
    out[0] = 0;
    for (uint32_t i = 0; i < dvv_size(c); i++)
        n += (size_t)snprintf(out + n, sizeof out - n, "%s%.*s", i ? "," : "",
                              (int)c->values[i].len, c->values[i].data);
    return out;
}

static void assert_entry(const struct dvv_clock *c, uint32_t i, uint64_t actor, uint64_t counter,
                         uint32_t nvalues)
{
    assert_true(i < c->nentries);
    assert_int_equal(c->entries[i].actor, actor);
    assert_int_equal(c->entries[i].counter, counter);
    assert_int_equal(c->entries[i].nvalues, nvalues);
}

/* The client's write of v with the context of `seen` (NULL: none) at actor,
 * against the server clock `server` (replaced by the result). */
static void put(struct dvv_clock **server, const struct dvv_clock *seen, struct dvv_value v,
                uint64_t actor)
{
    struct dvv_clock *client = mk(), *ctx = mk(), *out = mk();
    if (seen)
        assert_int_equal(dvv_join(ctx, seen), 0);
    assert_int_equal(dvv_new_with_context(client, ctx, &v), 0);
    assert_int_equal(dvv_update(out, client, *server, actor), 0);
    dvv_destroy(*server);
    *server = out;
    dvv_destroy(client);
    dvv_destroy(ctx);
}

static void sync_into(struct dvv_clock **dst, const struct dvv_clock *src)
{
    struct dvv_clock *out = mk();
    assert_int_equal(dvv_sync(out, *dst, src), 0);
    dvv_destroy(*dst);
    *dst = out;
}

static struct dvv_clock *copy_of(const struct dvv_clock *c)
{
    struct dvv_clock *empty = mk(), *out = mk();
    assert_int_equal(dvv_sync(out, c, empty), 0);
    dvv_destroy(empty);
    return out;
}

/* meta + body of c, as one comparable byte string: meta length first. */
static void encode(const struct dvv_clock *c, struct buf *out)
{
    struct buf meta;
    buf_init(&meta);
    assert_int_equal(dvv_encode_meta(c, &meta), 0);
    buf_clear(out);
    uint16_t n = (uint16_t)meta.len;
    buf_append(out, &n, sizeof n);
    buf_append(out, meta.data, meta.len);
    assert_int_equal(dvv_encode_body(c, out), 0);
    buf_fini(&meta);
}

static void assert_same(const struct dvv_clock *x, const struct dvv_clock *y)
{
    struct buf bx, by;
    buf_init(&bx);
    buf_init(&by);
    encode(x, &bx);
    encode(y, &by);
    assert_int_equal(bx.len, by.len);
    assert_memory_equal(bx.data, by.data, bx.len);
    buf_fini(&bx);
    buf_fini(&by);
}

/* Riak's update scenario: a history written at a, then at b with older and
 * newer contexts. */
static void test_dvv_update_follows_the_context(void **state)
{
    struct dvv_clock *a0 = mk();
    put(&a0, NULL, val("v1", 1), A);
    assert_entry(a0, 0, A, 1, 1);
    struct dvv_clock *a1 = copy_of(a0);
    put(&a1, a0, val("v2", 2), A); /* read v1, write v2: v1 superseded */
    assert_int_equal(a1->nentries, 1);
    assert_entry(a1, 0, A, 2, 1);
    assert_string_equal(names(a1), "v2");

    struct dvv_clock *a2 = copy_of(a1);
    put(&a2, a1, val("v3", 3), B); /* with the newest context at b */
    assert_entry(a2, 0, A, 2, 0);
    assert_entry(a2, 1, B, 1, 1);
    assert_string_equal(names(a2), "v3");

    struct dvv_clock *a3 = copy_of(a1);
    put(&a3, a0, val("v4", 4), B); /* a stale context at b: v2 stays */
    assert_entry(a3, 0, A, 2, 1);
    assert_entry(a3, 1, B, 1, 1);
    assert_string_equal(names(a3), "v2,v4");

    struct dvv_clock *a4 = copy_of(a1);
    put(&a4, a0, val("v5", 5), A); /* a stale context at a: siblings in one entry */
    assert_entry(a4, 0, A, 3, 2);
    assert_string_equal(names(a4), "v5,v2");
    uint64_t actor, counter;
    assert_true(dvv_value_dot(a4, 1, &actor, &counter));
    assert_int_equal(actor, A);
    assert_int_equal(counter, 2);
    dvv_destroy(a0);
    dvv_destroy(a1);
    dvv_destroy(a2);
    dvv_destroy(a3);
    dvv_destroy(a4);
}

/* Two clients read the same version and write concurrently (at two
 * coordinators, or twice at one): two siblings; a write with the context
 * of both resolves them to one value. */
static void test_dvv_concurrent_writes_become_siblings_and_resolve(void **state)
{
    struct dvv_clock *r1 = mk();
    put(&r1, NULL, val("base", 1), A);
    struct dvv_clock *r2 = copy_of(r1), *read = copy_of(r1);
    put(&r1, read, val("x", 2), A); /* client 1 at coordinator a */
    put(&r2, read, val("y", 3), B); /* client 2 at coordinator b */
    sync_into(&r1, r2);
    sync_into(&r2, r1);
    assert_same(r1, r2);
    assert_string_equal(names(r1), "x,y");

    struct dvv_clock *once = copy_of(r1);
    put(&once, read, val("z", 4), A); /* the same stale context at one coordinator */
    assert_string_equal(names(once), "z,x,y");

    put(&r1, r2, val("merged", 5), B); /* a write with the joined context */
    assert_string_equal(names(r1), "merged");
    sync_into(&r2, r1);
    sync_into(&once, r1);
    assert_string_equal(names(r2), "merged");
    assert_string_equal(names(once), "z,merged"); /* z was never read */
    dvv_destroy(r1);
    dvv_destroy(r2);
    dvv_destroy(read);
    dvv_destroy(once);
}

/* A replicated write delivered twice (a retry after a lost ack) or late
 * (after a newer one) brings its dot again: no false sibling. */
static void test_dvv_replayed_write_is_no_new_sibling(void **state)
{
    struct dvv_clock *coord = mk(), *replica = mk();
    put(&coord, NULL, val("v1", 1), A);
    struct dvv_clock *first = copy_of(coord);
    sync_into(&replica, first);
    sync_into(&replica, first);
    assert_same(replica, coord);
    put(&coord, coord, val("v2", 2), A);
    sync_into(&replica, coord);
    sync_into(&replica, first); /* the old one again, after the newer */
    sync_into(&replica, coord);
    assert_same(replica, coord);
    assert_string_equal(names(replica), "v2");
    dvv_destroy(coord);
    dvv_destroy(replica);
    dvv_destroy(first);
}

/* Riak's sync cases: a superseded dot goes; one-sided entries stay. */
static void test_dvv_sync_drops_values_both_sides_superseded(void **state)
{
    struct dvv_entry we[1] = {{A, 1, 0}}, ze[1] = {{A, 2, 2}};
    struct dvv_value zv[2] = {val("v2", 2), val("v1", 1)};
    struct dvv_clock w, z;
    dvv_init(&w, we, 1, NULL, 0);
    w.nentries = 1;
    dvv_init(&z, ze, 1, zv, 2);
    z.nentries = 1;
    z.nvalues = 2;
    struct dvv_clock *out = mk(), *out2 = mk();
    assert_int_equal(dvv_sync(out, &w, &z), 0);
    assert_entry(out, 0, A, 2, 1);
    assert_string_equal(names(out), "v2");
    assert_int_equal(dvv_sync(out2, &z, &w), 0);
    assert_same(out, out2);
    assert_true(dvv_less(&w, &z));
    assert_false(dvv_less(&z, &w));
    assert_false(dvv_less(&z, &z));

    /* {x:1} and {a:1 [v1]}: both entries, v1 kept. */
    struct dvv_entry xe[1] = {{C, 1, 0}};
    struct dvv_clock x;
    dvv_init(&x, xe, 1, NULL, 0);
    x.nentries = 1;
    struct dvv_clock *a = mk();
    put(&a, NULL, val("v1", 1), A);
    assert_int_equal(dvv_sync(out, &x, a), 0);
    assert_entry(out, 0, A, 1, 1);
    assert_entry(out, 1, C, 1, 0);
    assert_string_equal(names(out), "v1");
    assert_false(dvv_less(&x, a));
    assert_false(dvv_less(a, &x));
    assert_true(dvv_less(a, out));  /* out has an entry more, after a's */
    assert_true(dvv_less(&x, out)); /* and one before x's */
    assert_false(dvv_less(out, a));
    dvv_destroy(a);
    dvv_destroy(out);
    dvv_destroy(out2);
}

/* Three replicas with their own writes converge to one clock whatever the
 * order of syncs. */
static void test_dvv_sync_converges_in_any_order(void **state)
{
    struct dvv_clock *r[3] = {mk(), mk(), mk()};
    put(&r[0], NULL, val("a1", 10), A);
    put(&r[0], r[0], val("a2", 11), A);
    sync_into(&r[1], r[0]);
    put(&r[1], r[1], val("b1", 12), B);
    put(&r[2], NULL, val("c1", 13), C);
    put(&r[0], NULL, val("a3", 14), A);
    static const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                    {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    struct dvv_clock *first = NULL;
    for (int p = 0; p < 6; p++) {
        struct dvv_clock *acc = mk();
        for (int k = 0; k < 3; k++)
            sync_into(&acc, r[perms[p][k]]);
        struct dvv_clock *other = mk(); /* pairwise, the other way round */
        sync_into(&other, r[perms[p][2]]);
        struct dvv_clock *tail = copy_of(r[perms[p][1]]);
        sync_into(&tail, r[perms[p][0]]);
        sync_into(&other, tail);
        assert_same(acc, other);
        if (first)
            assert_same(first, acc);
        else
            first = copy_of(acc);
        dvv_destroy(acc);
        dvv_destroy(other);
        dvv_destroy(tail);
    }
    assert_string_equal(names(first), "a3,b1,c1"); /* b1 saw a2 */
    for (int i = 0; i < 3; i++)
        dvv_destroy(r[i]);
    dvv_destroy(first);
}

/* Anonymous values (no history: data written before versions): united
 * without duplicates in one order, kept by writes (a context cannot name
 * them), dropped only by a clock whose history strictly contains theirs
 * and that does not carry them, as in Riak's dvvset. */
static void test_dvv_anonymous_values(void **state)
{
    struct dvv_value p = val("p", 5), q = val("q", 7);
    struct dvv_clock *x = mk(), *y = mk(), *xy = mk(), *yx = mk();
    assert_int_equal(dvv_new(x, &p), 0);
    assert_int_equal(dvv_new(y, &q), 0);
    assert_int_equal(dvv_sync(xy, x, y), 0);
    assert_int_equal(dvv_sync(yx, y, x), 0);
    assert_same(xy, yx);
    assert_string_equal(names(xy), "q,p");
    assert_int_equal(xy->nanon, 2);
    sync_into(&xy, x);
    assert_string_equal(names(xy), "q,p");

    /* The coordinator gives the anonymous write a dot; other anonymous
     * values stay until a context covers them. */
    struct dvv_clock *server = copy_of(xy);
    assert_int_equal(dvv_update(yx, x, server, A), 0);
    assert_string_equal(names(yx), "p,q,p");
    assert_int_equal(yx->nanon, 2);
    sync_into(&server, yx);
    assert_string_equal(names(server), "p,q,p");
    struct dvv_clock *elsewhere = mk(); /* a replica that never had them */
    put(&elsewhere, server, val("s", 9), C);
    put(&server, server, val("r", 8), B);
    assert_string_equal(names(server), "r,q,p");
    sync_into(&server, xy); /* xy's history is contained: its values go */
    assert_string_equal(names(server), "r,q,p");
    sync_into(&server, elsewhere); /* neither contains the other */
    assert_string_equal(names(server), "r,s,q,p");
    put(&elsewhere, server, val("t", 10), C); /* strictly newer, without them */
    sync_into(&server, elsewhere);
    assert_string_equal(names(server), "t");
    dvv_destroy(elsewhere);

    /* Strictly newer by a counter alone, either way round. */
    struct dvv_value p2 = val("p2", 1), q2 = val("q2", 1);
    struct dvv_clock *s2 = mk(), *t2 = mk(), *st = mk(), *ts = mk();
    assert_int_equal(dvv_new(s2, &q2), 0);
    put(&s2, NULL, p2, A);
    assert_string_equal(names(s2), "p2,q2");
    put(&t2, s2, val("r2", 2), A);
    assert_string_equal(names(t2), "r2");
    assert_int_equal(dvv_sync(st, s2, t2), 0);
    assert_int_equal(dvv_sync(ts, t2, s2), 0);
    assert_string_equal(names(st), "r2");
    assert_string_equal(names(ts), "r2");
    dvv_destroy(s2);
    dvv_destroy(t2);
    dvv_destroy(st);
    dvv_destroy(ts);

    struct dvv_clock *bad = mk();
    struct dvv_value tomb_with_bytes = {.data = "x", .len = 1, .flags = DVV_TOMBSTONE};
    struct dvv_value negative = val("n", -1);
    assert_int_equal(dvv_new(bad, &tomb_with_bytes), -EINVAL);
    assert_int_equal(dvv_new(bad, &negative), -EINVAL);
    assert_int_equal(dvv_update(bad, server, NULL, A), -EINVAL); /* not a write */
    dvv_destroy(x);
    dvv_destroy(y);
    dvv_destroy(xy);
    dvv_destroy(yx);
    dvv_destroy(server);
    dvv_destroy(bad);
}

/* GET's pick: newest timestamp, then greater actor, then greater counter;
 * anonymous values win only when newer. Deletes are tombstones. */
static void test_dvv_pick_is_newest_then_actor(void **state)
{
    struct dvv_clock *c = mk(), *empty = mk();
    assert_int_equal(dvv_pick(empty), -ENOENT);
    put(&c, NULL, val("a-old", 100), A);
    put(&c, NULL, val("c-new", 200), C);
    put(&c, NULL, val("b-new", 200), B);
    assert_string_equal(names(c), "a-old,b-new,c-new");
    assert_int_equal(dvv_pick(c), 2); /* tie at 200: C > B */
    put(&c, NULL, val("a-new", 200), A);
    assert_int_equal(dvv_pick(c), 3); /* still c-new: A < C */
    put(&c, NULL, val("c-newer", 200), C);
    assert_string_equal(&c->values[dvv_pick(c)].data[0], "c-newer"); /* counter 2 > 1 */

    struct dvv_value tomb = {.flags = DVV_TOMBSTONE, .ts_ms = 300};
    struct dvv_clock *client = mk(), *ctx = mk(), *out = mk();
    assert_int_equal(dvv_join(ctx, c), 0);
    assert_int_equal(dvv_new_with_context(client, ctx, &tomb), 0);
    assert_int_equal(dvv_update(out, client, c, B), 0);
    assert_int_equal(dvv_size(out), 1);
    assert_true(out->values[dvv_pick(out)].flags & DVV_TOMBSTONE);

    /* An anonymous value next to a dotted one: it wins only when newer. */
    struct dvv_value anon = val("anon", 250);
    struct dvv_clock *an = mk();
    assert_int_equal(dvv_new(an, &anon), 0);
    put(&an, NULL, val("dotted", 250), A);
    assert_string_equal(names(an), "dotted,anon");
    assert_int_equal(dvv_pick(an), 0);
    put(&an, NULL, val("dotted-old", 240), B);
    an->values[an->nvalues - 1].ts_ms = 260;
    assert_int_equal(dvv_pick(an), 2);
    dvv_destroy(c);
    dvv_destroy(empty);
    dvv_destroy(client);
    dvv_destroy(ctx);
    dvv_destroy(out);
    dvv_destroy(an);
}

/* KV-679: node a wrote v1 and v2 (dots a:1, a:2), replicated to b, then
 * lost its data. A new write at a with no context must survive replication
 * to b. With a new actor (new epoch) it does; reusing the old actor, its
 * counter starts at 1 again and b drops it as already seen. */
static void test_dvv_kv679_wiped_node_needs_a_new_actor(void **state)
{
    const char *node = "node-a";
    uint64_t old_actor = dvv_actor(node, strlen(node), 1);
    uint64_t new_actor = dvv_actor(node, strlen(node), 2);
    assert_int_not_equal(old_actor, new_actor);
    assert_int_equal(old_actor, dvv_actor(node, strlen(node), 1));

    struct dvv_clock *a = mk(), *b = mk();
    put(&a, NULL, val("v1", 1), old_actor);
    put(&a, a, val("v2", 2), old_actor);
    sync_into(&b, a);

    struct dvv_clock *wiped_guarded = mk(), *wiped_reused = mk();
    put(&wiped_guarded, NULL, val("v3", 3), new_actor);
    put(&wiped_reused, NULL, val("v3", 3), old_actor);

    struct dvv_clock *b_guarded = copy_of(b), *b_reused = copy_of(b);
    sync_into(&b_guarded, wiped_guarded);
    sync_into(&b_reused, wiped_reused);
    assert_int_equal(dvv_size(b_guarded), 2); /* v3 is a sibling: kept */
    assert_true(strstr(names(b_guarded), "v3"));
    assert_string_equal(names(b_reused), "v2"); /* v3 (dot a:1) lost */
    sync_into(&wiped_reused, b);
    assert_string_equal(names(wiped_reused), "v2"); /* and on a too, once repaired */
    dvv_destroy(a);
    dvv_destroy(b);
    dvv_destroy(wiped_guarded);
    dvv_destroy(wiped_reused);
    dvv_destroy(b_guarded);
    dvv_destroy(b_reused);
}

/* Model-based: random histories of writes, reads and syncs over three
 * replicas (actors A, B, C) and four clients. The model keeps, per
 * replica, the set of writes in its history and, per write, the set its
 * context saw. Every replica's siblings must be exactly the writes it has
 * seen that no write it has seen superseded: no acknowledged write is lost
 * unless a later write's context covered it, and no false sibling. */
struct model {
    struct dvv_clock *replica[3];
    uint64_t seen[3]; /* bit w: write w is in the replica's history */
    struct dvv_clock *ctx[4];
    uint64_t ctx_seen[4];
    uint64_t covers[64]; /* bit v of covers[w]: w's context saw v */
    char names[64][8];
    unsigned nwrites;
};

/* What the random histories went through, to show they are not vacuous. */
static struct {
    unsigned long checks, superseded, laws, writes;
    uint32_t max_siblings;
} model_stats;

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* GET's pick as dvv.h defines it, for clocks of dotted values: the
 * greatest (timestamp, actor, counter). */
static int pick_by_definition(const struct dvv_clock *c)
{
    int best = -ENOENT;
    uint64_t best_actor = 0, best_counter = 0;
    for (uint32_t i = 0; i < dvv_size(c); i++) {
        uint64_t actor, counter;
        assert_true(dvv_value_dot(c, i, &actor, &counter));
        int64_t ts = c->values[i].ts_ms, best_ts = best < 0 ? -1 : c->values[best].ts_ms;
        if (ts > best_ts || (ts == best_ts && (actor > best_actor ||
                                               (actor == best_actor && counter > best_counter)))) {
            best = (int)i;
            best_actor = actor;
            best_counter = counter;
        }
    }
    return best;
}

static void model_check(const struct model *m, int r)
{
    uint64_t superseded = 0;
    for (unsigned w = 0; w < m->nwrites; w++)
        if (m->seen[r] >> w & 1)
            superseded |= m->covers[w];
    uint64_t want = m->seen[r] & ~superseded, got = 0;
    model_stats.checks++;
    model_stats.superseded += (unsigned)__builtin_popcountll(m->seen[r] & superseded);
    if (dvv_size(m->replica[r]) > model_stats.max_siblings)
        model_stats.max_siblings = dvv_size(m->replica[r]);
    const struct dvv_clock *c = m->replica[r];
    for (uint32_t i = 0; i < dvv_size(c); i++) {
        unsigned w = (unsigned)atoi(c->values[i].data + 1);
        assert_false(got >> w & 1); /* one value per write */
        got |= UINT64_C(1) << w;
    }
    assert_int_equal(got, want);
    assert_int_equal(dvv_pick(c), pick_by_definition(c));
}

static void check_laws(const struct dvv_clock *x, const struct dvv_clock *y,
                       const struct dvv_clock *z)
{
    struct dvv_clock *xy = mk(), *yx = mk(), *xx = mk(), *l = mk(), *r = mk(), *t = mk();
    assert_int_equal(dvv_sync(xy, x, y), 0);
    assert_int_equal(dvv_sync(yx, y, x), 0);
    assert_same(xy, yx);
    assert_int_equal(dvv_sync(xx, x, x), 0);
    assert_same(xx, x);
    assert_int_equal(dvv_sync(l, xy, z), 0); /* (x y) z */
    assert_int_equal(dvv_sync(t, y, z), 0);
    assert_int_equal(dvv_sync(r, x, t), 0); /* x (y z) */
    assert_same(l, r);
    if (dvv_less(x, y))
        assert_same(xy, y);
    /* The codec round trip is the identity. */
    struct buf meta, body;
    buf_init(&meta);
    buf_init(&body);
    assert_int_equal(dvv_encode_meta(x, &meta), 0);
    assert_int_equal(dvv_encode_body(x, &body), 0);
    assert_int_equal(dvv_decode(meta.data, meta.len, body.data, body.len, t), 0);
    assert_same(t, x);
    buf_fini(&meta);
    buf_fini(&body);
    dvv_destroy(xy);
    dvv_destroy(yx);
    dvv_destroy(xx);
    dvv_destroy(l);
    dvv_destroy(r);
    dvv_destroy(t);
}

static void model_step(struct model *m, uint64_t *rng)
{
    static const uint64_t actors[3] = {A, B, C};
    uint64_t x = rng_next(rng);
    int r = (int)(x % 3), r2 = (int)((x >> 8) % 3), cl = (int)((x >> 16) % 4);
    switch ((x >> 24) % 8) {
    case 0:
    case 1: /* a client reads a replica */
        assert_int_equal(dvv_join(m->ctx[cl], m->replica[r]), 0);
        m->ctx_seen[cl] = m->seen[r];
        break;
    case 2: /* a client writes with no context */
        dvv_clear(m->ctx[cl]);
        m->ctx_seen[cl] = 0;
        /* fall through */
    case 3:
    case 4: { /* a client writes at a coordinator with what it read */
        unsigned w = m->nwrites++;
        snprintf(m->names[w], sizeof m->names[w], "w%u", w);
        struct dvv_value v = val(m->names[w], (int64_t)(rng_next(rng) % 1000));
        if (x >> 40 & 1)
            v = (struct dvv_value){.data = m->names[w], .flags = DVV_TOMBSTONE, .ts_ms = v.ts_ms};
        struct dvv_clock *client = mk(), *out = mk();
        assert_int_equal(dvv_new_with_context(client, m->ctx[cl], &v), 0);
        assert_int_equal(dvv_update(out, client, m->replica[r], actors[r]), 0);
        dvv_destroy(m->replica[r]);
        m->replica[r] = out;
        dvv_destroy(client);
        m->covers[w] = m->ctx_seen[cl];
        m->seen[r] |= m->ctx_seen[cl] | UINT64_C(1) << w;
        break;
    }
    default: /* replication, read repair or anti-entropy from r to r2 */
        /* A history is a set of writes: less is strict inclusion. */
        assert_int_equal(dvv_less(m->replica[r], m->replica[r2]),
                         (m->seen[r] & ~m->seen[r2]) == 0 && m->seen[r] != m->seen[r2]);
        if ((x >> 32) % 16 == 0 && ++model_stats.laws)
            check_laws(m->replica[r], m->replica[r2], m->replica[(r2 + 1) % 3]);
        sync_into(&m->replica[r2], m->replica[r]);
        m->seen[r2] |= m->seen[r];
        break;
    }
    for (int k = 0; k < 3; k++)
        model_check(m, k);
}

static void test_dvv_random_histories_match_the_model(void **state)
{
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    for (int history = 0; history < 3000; history++) {
        struct model m = {0};
        for (int i = 0; i < 3; i++)
            m.replica[i] = mk();
        for (int i = 0; i < 4; i++)
            m.ctx[i] = mk();
        for (int step = 0; step < 80 && m.nwrites < 60; step++)
            model_step(&m, &rng);
        for (int i = 1; i < 3; i++) /* full anti-entropy */
            sync_into(&m.replica[0], m.replica[i]);
        m.seen[0] = m.seen[1] = m.seen[2] = (m.nwrites == 64 ? 0 : (UINT64_C(1) << m.nwrites)) - 1;
        model_check(&m, 0);
        model_stats.writes += m.nwrites;
        for (int i = 0; i < 3; i++)
            dvv_destroy(m.replica[i]);
        for (int i = 0; i < 4; i++)
            dvv_destroy(m.ctx[i]);
    }
    print_message("dvv: 3000 histories, %lu writes, %lu replica checks (%lu superseded writes "
                  "seen), %lu law checks, up to %u siblings\n",
                  model_stats.writes, model_stats.checks, model_stats.superseded, model_stats.laws,
                  model_stats.max_siblings);
    assert_true(model_stats.superseded > 0 && model_stats.max_siblings > 3);
}

/* Hand-built encodings. */
static size_t vput(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static size_t aput(uint8_t *p, uint64_t actor)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(actor >> (8 * i));
    return 8;
}

/* Decodes meta/body from exact-size heap copies (so ASan sees any read
 * past them); when it decodes, the encoding must come back byte for byte. */
static int decode_exact(const uint8_t *meta, size_t meta_len, const char *body, size_t body_len)
{
    uint8_t *m = malloc(meta_len ? meta_len : 1);
    char *b = malloc(body_len ? body_len : 1);
    assert_non_null(m);
    assert_non_null(b);
    memcpy(m, meta, meta_len);
    memcpy(b, body, body_len);
    struct dvv_clock *c = mk();
    int rc = dvv_decode(m, meta_len, b, body_len, c);
    if (rc == 0) {
        struct buf again, again_body;
        buf_init(&again);
        buf_init(&again_body);
        assert_int_equal(dvv_encode_meta(c, &again), 0);
        assert_int_equal(dvv_encode_body(c, &again_body), 0);
        assert_int_equal(again.len, meta_len);
        assert_memory_equal(again.data, meta, meta_len);
        assert_int_equal(again_body.len, body_len);
        for (uint32_t i = 0; i < dvv_size(c); i++) /* values point into body */
            assert_true(c->values[i].data >= b && c->values[i].data <= b + body_len);
        buf_fini(&again);
        buf_fini(&again_body);
    } else {
        assert_int_equal(dvv_size(c), 0);
        assert_int_equal(c->nentries, 0);
    }
    dvv_destroy(c);
    free(m);
    free(b);
    return rc;
}

/* One actor with one value: the meta is 19-20 bytes; the context 10-12. */
static void test_dvv_encoding_is_small_and_round_trips(void **state)
{
    struct dvv_clock *c = mk();
    uint64_t actor = dvv_actor("node-1", 6, 0x1234);
    put(&c, NULL, val("0123456789abcdef0123456789abcdef", 1764900000000), actor);
    for (int i = 0; i < 200; i++) /* counter 201: two varint bytes */
        put(&c, c, val("0123456789abcdef0123456789abcdef", 1764900000000 + i), actor);
    struct buf meta, body, ctx;
    buf_init(&meta);
    buf_init(&body);
    buf_init(&ctx);
    assert_int_equal(dvv_encode_meta(c, &meta), 0);
    assert_int_equal(dvv_encode_body(c, &body), 0);
    assert_int_equal(dvv_context_encode(c, &ctx), 0);
    print_message("dvv: 1 actor, 1 value (32 bytes, counter 201): meta %zu bytes, context %zu "
                  "bytes\n",
                  meta.len, ctx.len);
    assert_true(meta.len <= 20);
    assert_int_equal(ctx.len, 11);
    assert_int_equal(body.len, 32);
    assert_int_equal(decode_exact((uint8_t *)meta.data, meta.len, body.data, body.len), 0);

    struct dvv_clock *back = mk();
    assert_int_equal(dvv_context_decode(ctx.data, ctx.len, back), 0);
    assert_int_equal(back->nentries, 1);
    assert_int_equal(dvv_size(back), 0);
    assert_entry(back, 0, actor, 201, 0);

    /* A clock with no history: empty context; the empty clock's meta. */
    struct dvv_clock *empty = mk();
    buf_clear(&ctx);
    assert_int_equal(dvv_context_encode(empty, &ctx), 0);
    assert_int_equal(ctx.len, 0);
    assert_int_equal(dvv_context_decode("", 0, back), 0);
    assert_int_equal(back->nentries, 0);
    assert_int_equal(decode_exact((const uint8_t *)"\x00", 1, "", 0), 0);

    /* Tombstones and anonymous values round trip too. */
    struct dvv_clock *x = mk(), *y = mk();
    struct dvv_value tomb = {.flags = DVV_TOMBSTONE, .ts_ms = 5};
    struct dvv_value p = val("p", 3), q = val("", 3);
    assert_int_equal(dvv_new(x, &p), 0);
    assert_int_equal(dvv_new(y, &q), 0);
    sync_into(&x, y);
    put(&x, NULL, tomb, A);
    put(&x, NULL, val("b", 4), B);
    buf_clear(&meta);
    buf_clear(&body);
    assert_int_equal(dvv_encode_meta(x, &meta), 0);
    assert_int_equal(dvv_encode_body(x, &body), 0);
    assert_int_equal(decode_exact((uint8_t *)meta.data, meta.len, body.data, body.len), 0);
    buf_fini(&meta);
    buf_fini(&body);
    buf_fini(&ctx);
    dvv_destroy(c);
    dvv_destroy(back);
    dvv_destroy(empty);
    dvv_destroy(x);
    dvv_destroy(y);
}

/* Every prefix of a good encoding, every one-byte change, and hand-built
 * hostile headers: -EINVAL or a canonical clock, never an over-read. */
static void test_dvv_decode_rejects_hostile_bytes(void **state)
{
    struct dvv_clock *x = mk(), *y = mk();
    struct dvv_value p = val("pp", 3), q = val("q", 3);
    assert_int_equal(dvv_new(x, &p), 0);
    assert_int_equal(dvv_new(y, &q), 0);
    sync_into(&x, y); /* two anonymous values: decoding compares their bytes */
    dvv_destroy(y);
    put(&x, NULL, val("aaa", 4), A);
    put(&x, NULL, val("bb", 9), B);
    put(&x, x, val("b2", 10), B);
    put(&x, NULL, (struct dvv_value){.flags = DVV_TOMBSTONE, .ts_ms = 8}, C);
    struct buf meta, body;
    buf_init(&meta);
    buf_init(&body);
    assert_int_equal(dvv_encode_meta(x, &meta), 0);
    assert_int_equal(dvv_encode_body(x, &body), 0);
    const uint8_t *mb = (const uint8_t *)meta.data;
    for (size_t n = 0; n < meta.len; n++)
        assert_int_equal(decode_exact(mb, n, body.data, body.len), -EINVAL);
    for (size_t n = 0; n < body.len; n++)
        assert_int_equal(decode_exact(mb, meta.len, body.data, n), -EINVAL);
    uint8_t mut[256];
    memcpy(mut, mb, meta.len);
    for (size_t i = 0; i < meta.len; i++)
        for (int b = 0; b < 256; b++) {
            mut[i] = (uint8_t)b;
            decode_exact(mut, meta.len, body.data, body.len);
            mut[i] = mb[i];
        }

    uint8_t h[64];
    size_t n = 0;
    /* Format bit set. */
    assert_int_equal(decode_exact((const uint8_t *)"\x01", 1, "", 0), -EINVAL);
    /* Overlong varint for the header (0 as two bytes). */
    assert_int_equal(decode_exact((const uint8_t *)"\x80\x00", 2, "", 0), -EINVAL);
    /* A varint past 64 bits. */
    assert_int_equal(
        decode_exact((const uint8_t *)"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 10, "", 0),
        -EINVAL);
    /* Entries past the bound, with almost no bytes behind them. */
    n = vput(h, (uint64_t)(DVV_MAX_ENTRIES + 1) << 2);
    assert_int_equal(decode_exact(h, n, "", 0), -EINVAL);
    /* An entry with counter 0; one with more values than its counter. */
    n = vput(h, 1 << 2);
    n += aput(h + n, A);
    size_t at = n;
    n += vput(h + n, 0);
    n += vput(h + n, 0);
    assert_int_equal(decode_exact(h, n, "", 0), -EINVAL);
    n = at + vput(h + at, 1);
    n += vput(h + n, 2);
    assert_int_equal(decode_exact(h, n, "", 0), -EINVAL);
    /* A value count that wraps a u32: 2^32 + 1 values at counter 2^33. */
    n = at + vput(h + at, UINT64_C(1) << 33);
    n += vput(h + n, (UINT64_C(1) << 32) + 1);
    n += vput(h + n, 2);
    n += vput(h + n, 1);
    assert_int_equal(decode_exact(h, n, "x", 1), -EINVAL);
    /* Actors out of order. */
    n = vput(h, 2 << 2);
    n += aput(h + n, B);
    n += vput(h + n, 1);
    n += vput(h + n, 0);
    n += aput(h + n, A);
    n += vput(h + n, 1);
    n += vput(h + n, 0);
    assert_int_equal(decode_exact(h, n, "", 0), -EINVAL);
    /* Anonymous values out of canonical order, and twice the same. */
    n = vput(h, 2);
    n += vput(h + n, 2);
    size_t vals = n;
    n += vput(h + n, 3 << 1);
    n += vput(h + n, 1);
    n += vput(h + n, 4 << 1);
    n += vput(h + n, 1);
    assert_int_equal(decode_exact(h, n, "ab", 2), -EINVAL);
    n = vals + vput(h + vals, 3 << 1);
    n += vput(h + n, 1);
    n += vput(h + n, 3 << 1);
    n += vput(h + n, 1);
    assert_int_equal(decode_exact(h, n, "aa", 2), -EINVAL);
    assert_int_equal(decode_exact(h, n, "ba", 2), -EINVAL);
    assert_int_equal(decode_exact(h, n, "ab", 2), 0);
    /* A length past the body; trailing meta bytes. */
    n = vput(h, 2);
    n += vput(h + n, 1);
    n += vput(h + n, 3 << 1);
    n += vput(h + n, UINT32_MAX);
    assert_int_equal(decode_exact(h, n, "abc", 3), -EINVAL);
    n = vput(h, 0);
    h[n++] = 0;
    assert_int_equal(decode_exact(h, n, "", 0), -EINVAL);

    /* Contexts: every prefix and hostile forms. */
    struct buf ctx;
    buf_init(&ctx);
    assert_int_equal(dvv_context_encode(x, &ctx), 0);
    struct dvv_clock *c = mk();
    for (size_t k = 1; k < ctx.len; k++) {
        char *copy = malloc(k);
        memcpy(copy, ctx.data, k);
        assert_int_equal(dvv_context_decode(copy, k, c), -EINVAL);
        free(copy);
    }
    assert_int_equal(dvv_context_decode(ctx.data, ctx.len, c), 0);
    assert_int_equal(c->nentries, 3);
    assert_int_equal(dvv_context_decode("\x00", 1, c), -EINVAL); /* empty is "" */
    assert_int_equal(dvv_context_decode("\x03", 1, c), -EINVAL);
    assert_int_equal(c->nentries, 0);

    /* Room: a clock too small for what decodes or merges. */
    struct dvv_entry e1[1];
    struct dvv_value v1[1];
    struct dvv_clock small;
    dvv_init(&small, e1, 1, v1, 1);
    assert_int_equal(dvv_decode(meta.data, meta.len, body.data, body.len, &small), -ENOSPC);
    assert_int_equal(dvv_context_decode(ctx.data, ctx.len, &small), -ENOSPC);
    assert_int_equal(dvv_sync(&small, x, x), -ENOSPC);
    assert_int_equal(small.nentries + small.nvalues, 0);
    buf_fini(&ctx);
    buf_fini(&meta);
    buf_fini(&body);
    dvv_destroy(x);
    dvv_destroy(c);
}

/* A counter at DVV_MAX_COUNTER cannot grow: -EOVERFLOW, never a wrap. */
static void test_dvv_update_refuses_counter_overflow(void **state)
{
    struct dvv_entry e[1] = {{A, DVV_MAX_COUNTER, 0}};
    struct dvv_clock ctx;
    dvv_init(&ctx, e, 1, NULL, 0);
    ctx.nentries = 1;
    struct dvv_clock *client = mk(), *out = mk();
    struct dvv_value v = val("v", 1);
    assert_int_equal(dvv_new_with_context(client, &ctx, &v), 0);
    assert_int_equal(dvv_update(out, client, NULL, A), -EOVERFLOW);
    assert_int_equal(dvv_update(out, client, NULL, B), 0);
    dvv_destroy(client);
    dvv_destroy(out);
}

/* memcached client flags are kept per sibling, in the meta only when some
 * value has them: a meta without flags keeps its bytes (as written before
 * flags were kept), and a flags bit with no flags in it is not canonical. */
static void test_dvv_client_flags_round_trip(void **state)
{
    struct dvv_clock *c = NULL, *plain = NULL, *back = mk();
    struct dvv_value v = val("v", 1), w = val("w", 2), tomb = {.flags = DVV_TOMBSTONE, .ts_ms = 3};
    put(&plain, NULL, v, A);
    v.mc_flags = 5;
    put(&c, NULL, v, A);
    w.mc_flags = 0xffffffffu;
    put(&c, NULL, w, B); /* siblings: (A,1) flags 5, (B,1) flags 0xffffffff */
    put(&c, NULL, tomb, C);
    struct buf m, b, pm;
    buf_init(&m);
    buf_init(&b);
    buf_init(&pm);
    assert_int_equal(dvv_encode_meta(plain, &pm), 0);
    assert_int_equal(((const uint8_t *)pm.data)[0] & 1, 0); /* no flags: as before */
    assert_int_equal(dvv_encode_meta(c, &m), 0);
    assert_int_equal(dvv_encode_body(c, &b), 0);
    assert_int_equal(((const uint8_t *)m.data)[0] & 1, 1);
    assert_int_equal(dvv_decode(m.data, m.len, b.data, b.len, back), 0);
    assert_int_equal(dvv_size(back), 3);
    assert_int_equal(back->values[0].mc_flags, 5);
    assert_int_equal(back->values[1].mc_flags, 0xffffffffu);
    assert_int_equal(back->values[2].mc_flags, 0);
    /* The flags bit over values that have none: not canonical. */
    char *bad = malloc(pm.len);
    assert_non_null(bad);
    memcpy(bad, pm.data, pm.len);
    bad[0] |= 1;
    assert_int_equal(dvv_decode(bad, pm.len, "v", 1, back), -EINVAL);
    /* A tombstone carries no flags. */
    tomb.mc_flags = 1;
    assert_int_equal(dvv_new(back, &tomb), -EINVAL);
    free(bad);
    buf_fini(&m);
    buf_fini(&b);
    buf_fini(&pm);
    dvv_destroy(c);
    dvv_destroy(plain);
    dvv_destroy(back);
}

/* A clock of one dotted value (dvv_single): its meta, made from the fields
 * alone, is dvv_encode_meta's byte for byte, at every varint length; the
 * packed fields round-trip; any other clock is not one. */
static void test_dvv_single_meta_is_the_encoding(void **state)
{
    (void)state;
    static const uint64_t counters[] = {1, 127, 128, 16383, 16384, UINT64_C(1) << 35,
                                        DVV_MAX_COUNTER};
    static const int64_t stamps[] = {0, 1, 63, 64, INT64_C(1780000000000), DVV_MAX_TS_MS - 1};
    static const uint32_t lens[] = {0, 1, 127, 128, 70000};
    static char bytes[70000];
    uint64_t actor = 0x0123456789abcdefull;
    unsigned checked = 0;
    for (size_t ci = 0; ci < sizeof counters / sizeof *counters; ci++)
        for (size_t ti = 0; ti < sizeof stamps / sizeof *stamps; ti++)
            for (size_t li = 0; li <= sizeof lens / sizeof *lens; li++) {
                bool tomb = li == sizeof lens / sizeof *lens;
                struct dvv_entry e = {.actor = actor, .counter = counters[ci], .nvalues = 1};
                struct dvv_value v = {.data = bytes, .len = tomb ? 0 : lens[li],
                                      .flags = tomb ? DVV_TOMBSTONE : 0, .ts_ms = stamps[ti]};
                struct dvv_clock c;
                dvv_init(&c, &e, 1, &v, 1);
                c.nentries = c.nvalues = 1;
                struct dvv_single d;
                assert_true(dvv_single_of(&c, &d));
                uint8_t meta[DVV_SINGLE_META_MAX], packed[DVV_SINGLE_PACK_MAX];
                size_t n = dvv_single_meta(&d, meta);
                struct buf want;
                buf_init(&want);
                assert_int_equal(dvv_encode_meta(&c, &want), 0);
                assert_int_equal(n, want.len);
                assert_memory_equal(meta, want.data, n);
                buf_fini(&want);
                struct dvv_single back;
                size_t plen = dvv_single_pack(&d, packed);
                assert_int_equal(dvv_single_unpack(packed, &back), plen);
                assert_true(back.actor == d.actor && back.counter == d.counter &&
                            back.ts_ms == d.ts_ms && back.tombstone == d.tombstone);
                actor = actor * 6364136223846793005ull + 1;
                checked++;
            }
    assert_int_equal(checked, 7 * 6 * 6);
    /* not one dotted value: client flags, two values, an anonymous value */
    struct dvv_entry e2[2] = {{.actor = 1, .counter = 2, .nvalues = 2}, {.actor = 2, .counter = 1}};
    struct dvv_value v2[2] = {{.data = "a", .len = 1, .ts_ms = 5}, {.data = "b", .len = 1}};
    struct dvv_clock c;
    struct dvv_single d;
    dvv_init(&c, e2, 2, v2, 2);
    c.nentries = 1, c.nvalues = 2;
    assert_false(dvv_single_of(&c, &d));
    e2[0].nvalues = 1, c.nvalues = 1;
    assert_true(dvv_single_of(&c, &d));
    v2[0].mc_flags = 7;
    assert_false(dvv_single_of(&c, &d));
    v2[0].mc_flags = 0;
    c.nentries = 2;
    assert_false(dvv_single_of(&c, &d));
    c.nentries = 0, c.nanon = 1;
    assert_false(dvv_single_of(&c, &d));
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* The replica's and the coordinator's hot paths for one actor with one
 * value, in ns per call (printed; the figures are for the README). */
static void test_dvv_cost_of_hot_operations(void **state)
{
    enum { ROUNDS = 200000 };
    struct dvv_entry e[4][4];
    struct dvv_value v[4][4];
    struct dvv_clock cur, next, client, out;
    dvv_init(&cur, e[0], 4, v[0], 4);
    dvv_init(&next, e[1], 4, v[1], 4);
    dvv_init(&client, e[2], 4, v[2], 4);
    dvv_init(&out, e[3], 4, v[3], 4);
    struct dvv_value x = val("0123456789abcdef0123456789abcdef", 1764900000000);
    assert_int_equal(dvv_new(&client, &x), 0);
    assert_int_equal(dvv_update(&cur, &client, NULL, A), 0);
    assert_int_equal(dvv_new_with_context(&client, &cur, &x), 0);
    assert_int_equal(dvv_update(&next, &client, &cur, A), 0);

    volatile uint32_t sink = 0;
    double t0 = now_ns();
    for (int i = 0; i < ROUNDS; i++) {
        dvv_sync(&out, &cur, &next);
        sink += out.nvalues;
    }
    double sync_ns = (now_ns() - t0) / ROUNDS;
    t0 = now_ns();
    for (int i = 0; i < ROUNDS; i++) {
        dvv_update(&out, &client, &cur, A);
        sink += out.nvalues;
    }
    double update_ns = (now_ns() - t0) / ROUNDS;

    /* A replica applying a replicated write: decode both, sync, encode. */
    struct buf meta, body, in_meta, in_body, enc;
    buf_init(&meta);
    buf_init(&body);
    buf_init(&in_meta);
    buf_init(&in_body);
    buf_init(&enc);
    dvv_encode_meta(&cur, &meta);
    dvv_encode_body(&cur, &body);
    dvv_encode_meta(&next, &in_meta);
    dvv_encode_body(&next, &in_body);
    t0 = now_ns();
    for (int i = 0; i < ROUNDS; i++) {
        dvv_decode(meta.data, meta.len, body.data, body.len, &cur);
        dvv_decode(in_meta.data, in_meta.len, in_body.data, in_body.len, &next);
        dvv_sync(&out, &cur, &next);
        buf_clear(&enc);
        dvv_encode_meta(&out, &enc);
        sink += (uint32_t)enc.len;
    }
    double apply_ns = (now_ns() - t0) / ROUNDS;
    print_message("dvv: sync %.0f ns, update %.0f ns, replica apply (2 decodes, sync, encode) "
                  "%.0f ns (1 actor, 1 value)\n",
                  sync_ns, update_ns, apply_ns);
    assert_true(sink > 0);
    buf_fini(&meta);
    buf_fini(&body);
    buf_fini(&in_meta);
    buf_fini(&in_body);
    buf_fini(&enc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dvv_update_follows_the_context),
        cmocka_unit_test(test_dvv_concurrent_writes_become_siblings_and_resolve),
        cmocka_unit_test(test_dvv_replayed_write_is_no_new_sibling),
        cmocka_unit_test(test_dvv_sync_drops_values_both_sides_superseded),
        cmocka_unit_test(test_dvv_sync_converges_in_any_order),
        cmocka_unit_test(test_dvv_anonymous_values),
        cmocka_unit_test(test_dvv_pick_is_newest_then_actor),
        cmocka_unit_test(test_dvv_kv679_wiped_node_needs_a_new_actor),
        cmocka_unit_test(test_dvv_random_histories_match_the_model),
        cmocka_unit_test(test_dvv_encoding_is_small_and_round_trips),
        cmocka_unit_test(test_dvv_decode_rejects_hostile_bytes),
        cmocka_unit_test(test_dvv_update_refuses_counter_overflow),
        cmocka_unit_test(test_dvv_client_flags_round_trip),
        cmocka_unit_test(test_dvv_single_meta_is_the_encoding),
        cmocka_unit_test(test_dvv_cost_of_hot_operations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
