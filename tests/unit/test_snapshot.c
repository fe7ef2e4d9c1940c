/* Unit tests for snapshot: what a snapshot copies of the member table and
 * the ring (and that it outlives both), that a reader's section keeps the
 * snapshot it read alive across publishes, and reader threads reading every
 * byte of the current snapshot while the publisher swaps in thousands of
 * them. Run under ASan (RINGKV_SANITIZE=ON) the last one shows that no
 * reader touches a freed snapshot, and LSan that every replaced one is
 * freed (also by the cell's destruction); the test itself checks that
 * reclamation keeps up while readers run and ends with nothing pending. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gossip.h"
#include "member.h"
#include "ring.h"
#include "snapshot.h"

#define SELF_ID "1111111111111111111111111111111111111111"
#define OTHER_ID "2222222222222222222222222222222222222222"
#define Q 1024
#define READERS 3
#define PUBLISHES 20000

static struct member_table *self_table(void)
{
    struct member_config cfg;
    member_config_default(&cfg);
    struct gossip_info self = {.weight = 100};
    memcpy(self.id, SELF_ID, sizeof self.id);
    snprintf(self.client_addr, sizeof self.client_addr, "127.0.0.9:6379");
    snprintf(self.cluster_addr, sizeof self.cluster_addr, "127.0.0.9:16379");
    snprintf(self.zone, sizeof self.zone, "zone-a");
    struct member_table *t;
    assert_int_equal(member_create(&cfg, &self, 1000, &t), 0);
    assert_int_equal(member_set_state(t, SELF_ID, MEMBER_UP, 1000), 0);
    return t;
}

/* The ring of self alone, or of self and another node of twice its weight. */
static struct ring *test_ring(bool two)
{
    struct ring_member m[2] = {{.id = SELF_ID, .weight = 100, .zone = "zone-a"},
                               {.id = OTHER_ID, .weight = 200, .zone = "zone-b"}};
    struct ring *r;
    assert_int_equal(ring_build(m, two ? 2 : 1, Q, two ? 2 : 1, NULL, &r), 0);
    return r;
}

static void test_snapshot_copies_members_and_ring(void **state)
{
    (void)state;
    struct member_table *t = self_table();
    struct ring *ring = test_ring(true);
    struct snapshot *s;
    assert_int_equal(snapshot_build(t, ring, &s), 0);
    uint64_t epoch = ring->epoch, hash = ring->hash;
    uint32_t owned_other = ring->owned[1];
    ring_destroy(ring); /* the snapshot references neither */
    member_destroy(t);

    assert_int_equal(s->n_members, 1);
    assert_int_equal(s->self, 0);
    const struct snapshot_member *me = &s->members[0];
    assert_string_equal(me->id, SELF_ID);
    assert_string_equal(me->client_addr, "127.0.0.9:6379");
    assert_string_equal(me->cluster_addr, "127.0.0.9:16379");
    assert_int_equal(me->status, MEMBER_S_UP);
    assert_int_equal(me->weight, 100);
    assert_string_equal(me->zone, "zone-a");
    assert_int_equal(s->counts[MEMBER_S_UP], 1);
    assert_int_equal(s->counts[MEMBER_S_DOWN], 0);
    /* The ring knows a node the table does not (yet): mapped to none. */
    assert_int_equal(s->ring->n_members, 2);
    assert_int_equal(me->ring_index, 0);
    assert_int_equal(s->by_ring[0], 0);
    assert_int_equal(s->by_ring[1], RING_NONE);
    assert_int_equal(s->owning, 2);
    assert_int_equal(s->ring->epoch, epoch);
    assert_int_equal(s->ring->hash, hash);
    assert_int_equal(s->ring->owned[1], owned_other);
    assert_int_equal(s->ring->owned[0] + s->ring->owned[1], Q);
    assert_string_equal(s->ring->members[1].id, OTHER_ID);
    for (uint32_t p = 0; p < Q; p++) {
        const uint32_t *list = ring_pref(s->ring, p);
        assert_int_equal(list[0], s->ring->owner[p]);
        assert_int_not_equal(list[0], list[1]);
    }
    snapshot_free(s);
}

/* The table hears OTHER_ID, up, say (gossip NODE) that it has the ring
 * (epoch, hash). */
static void hear_other(struct member_table *t, uint64_t incarnation, uint64_t epoch, uint64_t hash)
{
    struct gossip_update u = {.kind = GOSSIP_NODE,
                              .incarnation = incarnation,
                              .state = MEMBER_UP,
                              .state_version = 1,
                              .health = MEMBER_ALIVE};
    memcpy(u.info.id, OTHER_ID, sizeof u.info.id);
    snprintf(u.info.client_addr, sizeof u.info.client_addr, "127.0.0.8:6379");
    snprintf(u.info.cluster_addr, sizeof u.info.cluster_addr, "127.0.0.8:16379");
    snprintf(u.info.zone, sizeof u.info.zone, "zone-b");
    u.info.weight = 200;
    u.info.ring_epoch = epoch;
    u.info.ring_hash = hash;
    struct gossip_writer w;
    gossip_writer_init(&w);
    gossip_begin(&w, GOSSIP_PING, 0, 1, OTHER_ID, SELF_ID, "");
    gossip_add_update(&w, &u);
    gossip_end(&w);
    assert_false(w.failed);
    struct gossip_msg msg;
    size_t used;
    const char *err;
    assert_int_equal(gossip_decode(w.data, w.len, &msg, &used, &err), GOSSIP_OK);
    member_on_message(t, 1000 + incarnation, "127.0.0.8:16379", &msg);
    gossip_writer_fini(&w);
}

/* ring_settled: every other live ring member says it has this very ring. */
static void test_snapshot_ring_settled(void **state)
{
    (void)state;
    struct member_table *t = self_table();
    struct ring *ring = test_ring(true);
    struct snapshot *s;
    /* OTHER_ID not in the table yet: its ring is unknown */
    assert_int_equal(snapshot_build(t, ring, &s), 0);
    assert_false(s->ring_settled);
    snapshot_free(s);
    /* it is up with an older ring: a coordinator on the old lists */
    hear_other(t, 1, ring->epoch - 1, ring->hash ^ 1);
    assert_int_equal(snapshot_build(t, ring, &s), 0);
    assert_int_equal(s->n_members, 2);
    assert_int_equal(s->members[1].status, MEMBER_S_UP);
    assert_false(s->ring_settled);
    snapshot_free(s);
    /* the same epoch with another hash is another ring */
    hear_other(t, 2, ring->epoch, ring->hash ^ 1);
    assert_int_equal(snapshot_build(t, ring, &s), 0);
    assert_false(s->ring_settled);
    snapshot_free(s);
    /* now it has this one */
    hear_other(t, 3, ring->epoch, ring->hash);
    assert_int_equal(snapshot_build(t, ring, &s), 0);
    assert_true(s->ring_settled);
    snapshot_free(s);
    /* a ring of self alone: nobody else */
    struct ring *alone = test_ring(false);
    assert_int_equal(snapshot_build(t, alone, &s), 0);
    assert_true(s->ring_settled);
    snapshot_free(s);
    ring_destroy(alone);
    ring_destroy(ring);
    member_destroy(t);
}

static void test_snapshot_nothing_before_the_first_publish(void **state)
{
    (void)state;
    struct snapshot_cell *cell;
    assert_int_equal(snapshot_cell_create(1, &cell), 0);
    snapshot_reader_register(cell, 0);
    assert_null(snapshot_read_begin(cell, 0));
    snapshot_read_end(cell, 0);
    assert_int_equal(snapshot_reclaim(cell), 0);
    snapshot_cell_destroy(cell);
}

/* One thread, two records: a reader inside its section pins what it read,
 * however many publishes and polls follow; once it ends, polls free it. */
static void test_snapshot_section_pins_what_it_read(void **state)
{
    (void)state;
    struct member_table *t = self_table();
    struct ring *ring = test_ring(false);
    struct snapshot_cell *cell;
    assert_int_equal(snapshot_cell_create(1, &cell), 0);
    snapshot_reader_register(cell, 0);
    assert_int_equal(snapshot_update(cell, t, ring, false), 0);

    const struct snapshot *held = snapshot_read_begin(cell, 0);
    assert_non_null(held);
    assert_int_equal(held->version, 1);
    for (int i = 0; i < 10; i++)
        assert_int_equal(snapshot_update(cell, t, ring, false), 0);
    for (int i = 0; i < 10; i++)
        snapshot_reclaim(cell);
    assert_int_equal(snapshot_reclaim(cell), 10);               /* the first is held: none can go */
    assert_string_equal(held->members[held->self].id, SELF_ID); /* ASan: still there */
    assert_int_equal(held->ring->owned[0], Q);
    snapshot_read_end(cell, 0);

    const struct snapshot *now = snapshot_read_begin(cell, 0);
    assert_int_equal(now->version, 11);
    snapshot_read_end(cell, 0);
    uint32_t pending = 10;
    for (int i = 0; i < 10 && pending; i++)
        pending = snapshot_reclaim(cell);
    assert_int_equal(pending, 0);
    snapshot_cell_destroy(cell);
    ring_destroy(ring);
    member_destroy(t);
}

/* Snapshots replaced while a reader was in its section wait for a poll
 * after it ends; destroying the cell frees them without one, and the
 * current snapshot too (LSan would name a leak). */
static void test_snapshot_destroy_frees_what_waits(void **state)
{
    (void)state;
    struct member_table *t = self_table();
    struct ring *ring = test_ring(true);
    struct snapshot_cell *cell;
    assert_int_equal(snapshot_cell_create(2, &cell), 0);
    snapshot_reader_register(cell, 1);
    assert_null(snapshot_read_begin(cell, 1));
    for (int i = 0; i < 5; i++)
        assert_int_equal(snapshot_update(cell, t, ring, false), 0);
    snapshot_read_end(cell, 1);
    snapshot_cell_destroy(cell);
    ring_destroy(ring);
    member_destroy(t);
}

/* Each snapshot carries the rings published before its own, oldest first,
 * up to SNAPSHOT_EARLIER_MAX, numbered by ring_seq: a shard that missed a
 * publish takes every ring in turn. Republishing the same ring (a
 * membership change) adds none. */
static void test_snapshot_carries_earlier_rings(void **state)
{
    (void)state;
    struct member_table *t = self_table();
    struct snapshot_cell *cell;
    assert_int_equal(snapshot_cell_create(1, &cell), 0);
    snapshot_reader_register(cell, 0);
    struct ring *ring = test_ring(false);
    for (uint64_t e = 1; e <= 7; e++) {
        ring->epoch = e;
        ring->hash = 1000 + e;
        assert_int_equal(snapshot_update(cell, t, ring, false), 0);
        assert_int_equal(snapshot_update(cell, t, ring, false), 0); /* the same ring: no new number */
        const struct snapshot *s = snapshot_read_begin(cell, 0);
        assert_int_equal(s->ring_seq, e);
        uint32_t want = e - 1 < SNAPSHOT_EARLIER_MAX ? (uint32_t)(e - 1) : SNAPSHOT_EARLIER_MAX;
        assert_int_equal(s->n_earlier, want);
        for (uint32_t i = 0; i < s->n_earlier; i++) {
            uint64_t seq = s->ring_seq - s->n_earlier + i;
            assert_int_equal(s->earlier[i]->epoch, seq);
            assert_int_equal(s->earlier[i]->hash, 1000 + seq);
            assert_int_equal(s->earlier[i]->owned[0], Q); /* a deep copy */
        }
        snapshot_read_end(cell, 0);
    }
    ring_destroy(ring); /* the cell keeps copies of its own */
    struct snapshot *plain;
    struct ring *other = test_ring(true);
    assert_int_equal(snapshot_build(t, other, &plain), 0);
    assert_int_equal(plain->ring_seq, 0);
    assert_int_equal(plain->n_earlier, 0);
    snapshot_free(plain);
    ring_destroy(other);
    snapshot_cell_destroy(cell); /* LSan: the cell's copies and the snapshots' */
    member_destroy(t);
}

struct hammer {
    struct snapshot_cell *cell;
    uint32_t reader;
    int stop;         /* atomic */
    uint64_t reads;   /* this reader's sections */
    uint64_t changes; /* versions newer than the one before */
    bool bad;         /* a snapshot that was not whole */
};

/* Reads every owner and preference list of the current snapshot and checks
 * that they agree with its counts (a freed or half-built snapshot would not,
 * and ASan names the access). */
static bool snapshot_whole(const struct snapshot *s)
{
    const struct ring *r = s->ring;
    uint32_t owned[2] = {0, 0};
    for (uint32_t p = 0; p < r->q; p++) {
        if (r->owner[p] >= r->n_members || ring_pref(r, p)[0] != r->owner[p])
            return false;
        owned[r->owner[p]]++;
    }
    for (uint32_t m = 0; m < r->n_members; m++)
        if (owned[m] != r->owned[m])
            return false;
    return r->q == Q && s->n_members == 1 && strcmp(s->members[s->self].id, SELF_ID) == 0 &&
           s->owning == r->n_members;
}

static void *hammer_reader(void *arg)
{
    struct hammer *h = arg;
    snapshot_reader_register(h->cell, h->reader);
    uint64_t last = 0;
    while (!__atomic_load_n(&h->stop, __ATOMIC_ACQUIRE)) {
        const struct snapshot *s = snapshot_read_begin(h->cell, h->reader);
        if (s) {
            if (!snapshot_whole(s) || s->version < last)
                h->bad = true;
            h->changes += s->version > last;
            last = s->version;
        }
        snapshot_read_end(h->cell, h->reader);
        h->reads++;
    }
    return NULL;
}

static void test_snapshot_readers_race_thousands_of_publishes(void **state)
{
    (void)state;
    struct member_table *t = self_table();
    struct ring *rings[2] = {test_ring(false), test_ring(true)};
    struct snapshot_cell *cell;
    assert_int_equal(snapshot_cell_create(READERS, &cell), 0);
    struct hammer h[READERS];
    pthread_t th[READERS];
    for (uint32_t i = 0; i < READERS; i++) {
        h[i] = (struct hammer){.cell = cell, .reader = i};
        assert_int_equal(pthread_create(&th[i], NULL, hammer_reader, &h[i]), 0);
    }
    uint32_t pending_max = 0;
    for (uint32_t k = 0; k < PUBLISHES; k++) {
        assert_int_equal(snapshot_update(cell, t, rings[k & 1], false), 0);
        uint32_t pending = snapshot_reclaim(cell);
        if (pending > pending_max)
            pending_max = pending;
    }
    uint32_t pending_at_end = snapshot_reclaim(cell);
    uint64_t reads = 0, changes = 0;
    for (uint32_t i = 0; i < READERS; i++) {
        __atomic_store_n(&h[i].stop, 1, __ATOMIC_RELEASE);
        pthread_join(th[i], NULL);
        assert_false(h[i].bad);
        reads += h[i].reads;
        changes += h[i].changes;
    }
    printf("%u publishes, %u readers: %llu reads saw %llu new versions; at most %u replaced "
           "snapshots waited for readers, %u at the end\n",
           PUBLISHES, READERS, (unsigned long long)reads, (unsigned long long)changes, pending_max,
           pending_at_end);
    /* Reclamation kept up while the readers ran... */
    assert_true(pending_at_end < PUBLISHES / 2);
    /* ... and with them gone, polls alone free the rest (LSan: nothing left). */
    uint32_t pending = pending_at_end;
    for (int i = 0; i < 100 && pending; i++)
        pending = snapshot_reclaim(cell);
    assert_int_equal(pending, 0);
    snapshot_cell_destroy(cell);
    ring_destroy(rings[0]);
    ring_destroy(rings[1]);
    member_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_copies_members_and_ring),
        cmocka_unit_test(test_snapshot_ring_settled),
        cmocka_unit_test(test_snapshot_nothing_before_the_first_publish),
        cmocka_unit_test(test_snapshot_section_pins_what_it_read),
        cmocka_unit_test(test_snapshot_destroy_frees_what_waits),
        cmocka_unit_test(test_snapshot_carries_earlier_rings),
        cmocka_unit_test(test_snapshot_readers_race_thousands_of_publishes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
