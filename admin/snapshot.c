/* snapshot.c: publishing the cluster's state to the shards (see snapshot.h).
 * The cell holds one pointer, `current`, to an immutable snapshot: the
 * publisher (admin thread) swaps it with an atomic exchange (release: the
 * snapshot's bytes are visible before the pointer), readers load it with
 * acquire inside a ck_epoch section. Reclamation is ck_epoch's deferred
 * mode: the replaced snapshot goes on the publisher's record with
 * ck_epoch_call(), and ck_epoch_poll() (non-blocking) frees it once no
 * section begun before the exchange can still be open: at once when no
 * reader is in a section, else once the global epoch has moved on twice.
 * Each publish polls, so replaced snapshots wait only while readers were
 * inside sections, until a later publish; snapshot_cell_destroy() frees the
 * rest with ck_epoch_barrier() (no reader runs by then). ck_epoch_synchronize
 * is never used: it would spin on the admin thread while a shard that was
 * preempted inside its section sleeps.
 * Each reader has its own ck_epoch record on its own cache line (a section
 * writes to it), registered by the reader's thread before it first reads.
 * A snapshot is one allocation for itself, its members and the ring-to-
 * member map, plus the ring's deep copy (ring_clone()), so the admin thread
 * may replace or free its own ring whenever it likes. */
#include "snapshot.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct snapshot_reader {
    ck_epoch_record_t rec; /* written by the reader's sections; read by the publisher's polls */
} __attribute__((aligned(64)));

struct snapshot_cell {
    ck_epoch_t epoch;
    ck_epoch_record_t publisher; /* call and poll, never begin */
    struct snapshot *current;    /* atomic: exchanged by the publisher, loaded by readers */
    uint64_t published;          /* publisher: snapshots published so far */
    uint32_t pending;            /* publisher: replaced, not yet freed */
    uint32_t n_readers;
    struct snapshot_reader *readers;
    /* publisher: copies of the last distinct rings published, oldest
     * first, the newest (the current snapshot's) last; ring_seq counts them
     * all */
    struct ring *recent[SNAPSHOT_EARLIER_MAX + 1];
    uint32_t n_recent;
    uint64_t ring_seq;
};

int snapshot_cell_create(uint32_t n_readers, struct snapshot_cell **out)
{
    struct snapshot_cell *cell = calloc(1, sizeof *cell);
    if (!cell)
        return -ENOMEM;
    size_t bytes = sizeof *cell->readers * (n_readers ? n_readers : 1);
    cell->readers = aligned_alloc(_Alignof(struct snapshot_reader), bytes);
    if (!cell->readers) {
        free(cell);
        return -ENOMEM;
    }
    memset(cell->readers, 0, bytes);
    cell->n_readers = n_readers;
    ck_epoch_init(&cell->epoch);
    ck_epoch_register(&cell->epoch, &cell->publisher, NULL);
    *out = cell;
    return 0;
}

void snapshot_free(struct snapshot *s)
{
    if (!s)
        return;
    ring_destroy(s->ring);
    for (uint32_t i = 0; i < s->n_earlier; i++)
        ring_destroy(s->earlier[i]);
    free(s);
}

static void snapshot_free_deferred(ck_epoch_entry_t *e)
{
    struct snapshot *s = (struct snapshot *)((char *)e - offsetof(struct snapshot, epoch_entry));
    s->cell->pending--;
    snapshot_free(s);
}

void snapshot_cell_destroy(struct snapshot_cell *cell)
{
    if (!cell)
        return;
    snapshot_free(cell->current);
    ck_epoch_barrier(&cell->publisher); /* no reader is active: dispatches every deferred free */
    for (uint32_t i = 0; i < cell->n_recent; i++)
        ring_destroy(cell->recent[i]);
    free(cell->readers);
    free(cell);
}

/* Fills s's members from t and maps them to and from the ring. */
static void snapshot_fill(struct snapshot *s, const struct member_table *t)
{
    uint32_t unsettled = 0;
    for (uint32_t r = 0; r < s->ring->n_members; r++)
        s->by_ring[r] = RING_NONE;
    for (uint32_t i = 0; i < s->n_members; i++) {
        const struct member *m = member_at(t, i);
        struct snapshot_member *sm = &s->members[i];
        memcpy(sm->id, m->info.id, sizeof sm->id);
        memcpy(sm->client_addr, m->info.client_addr, sizeof sm->client_addr);
        memcpy(sm->cluster_addr, m->info.cluster_addr, sizeof sm->cluster_addr);
        sm->status = member_status(m);
        sm->weight = m->info.weight;
        snprintf(sm->zone, sizeof sm->zone, "%s", m->info.zone);
        sm->ring_index = ring_member_index(s->ring, sm->id);
        if (sm->ring_index != RING_NONE)
            s->by_ring[sm->ring_index] = i;
        s->counts[sm->status]++;
        bool is_live = sm->status != MEMBER_S_DOWN && sm->status != MEMBER_S_LEFT;
        bool coordinates = sm->ring_index != RING_NONE || sm->status == MEMBER_S_LEAVING;
        if (i != s->self && coordinates && is_live &&
            (m->info.ring_epoch != s->ring->epoch || m->info.ring_hash != s->ring->hash))
            unsettled++;
    }
    for (uint32_t r = 0; r < s->ring->n_members; r++)
        unsettled += s->by_ring[r] == RING_NONE; /* not heard of yet: its ring is unknown */
    s->ring_settled = unsettled == 0;
    for (uint32_t r = 0; r < s->ring->n_members; r++)
        s->owning += s->ring->owned[r] > 0;
}

int snapshot_build(const struct member_table *t, const struct ring *ring, struct snapshot **out)
{
    uint32_t n = member_count(t);
    if (n == 0)
        return -EINVAL;
    size_t members_at = sizeof(struct snapshot);
    size_t by_ring_at = members_at + sizeof(struct snapshot_member) * n;
    struct snapshot *s = calloc(1, by_ring_at + sizeof(uint32_t) * ring->n_members);
    if (!s)
        return -ENOMEM;
    if (ring_clone(ring, &s->ring) != 0) {
        free(s);
        return -ENOMEM;
    }
    s->n_members = n;
    s->self = 0;
    s->members = (struct snapshot_member *)((char *)s + members_at);
    s->by_ring = (uint32_t *)((char *)s + by_ring_at);
    snapshot_fill(s, t);
    *out = s;
    return 0;
}

uint32_t snapshot_reclaim(struct snapshot_cell *cell)
{
    if (cell->pending)
        ck_epoch_poll(&cell->publisher);
    return cell->pending;
}

void snapshot_publish(struct snapshot_cell *cell, struct snapshot *s)
{
    s->version = ++cell->published;
    s->cell = cell;
    struct snapshot *old = __atomic_exchange_n(&cell->current, s, __ATOMIC_ACQ_REL);
    if (old) {
        cell->pending++;
        ck_epoch_call(&cell->publisher, &old->epoch_entry, snapshot_free_deferred);
    }
    snapshot_reclaim(cell);
}

/* Adds ring to the cell's recent rings unless it is the newest already.
 * -ENOMEM. */
static int snapshot_remember(struct snapshot_cell *cell, const struct ring *ring)
{
    const struct ring *last = cell->n_recent ? cell->recent[cell->n_recent - 1] : NULL;
    if (last && last->epoch == ring->epoch && last->hash == ring->hash)
        return 0;
    struct ring *copy;
    if (ring_clone(ring, &copy) != 0)
        return -ENOMEM;
    if (cell->n_recent == SNAPSHOT_EARLIER_MAX + 1) {
        ring_destroy(cell->recent[0]);
        memmove(cell->recent, cell->recent + 1, sizeof cell->recent[0] * SNAPSHOT_EARLIER_MAX);
        cell->n_recent--;
    }
    cell->recent[cell->n_recent++] = copy;
    cell->ring_seq++;
    return 0;
}

/* Gives s copies of the rings published before its own. -ENOMEM. */
static int snapshot_add_earlier(struct snapshot_cell *cell, struct snapshot *s)
{
    s->ring_seq = cell->ring_seq;
    for (uint32_t i = 0; i + 1 < cell->n_recent; i++) {
        if (ring_clone(cell->recent[i], &s->earlier[s->n_earlier]) != 0)
            return -ENOMEM;
        s->n_earlier++;
    }
    return 0;
}

int snapshot_update(struct snapshot_cell *cell, const struct member_table *t,
                    const struct ring *ring, bool left_cluster)
{
    struct snapshot *s = NULL;
    int rc = snapshot_remember(cell, ring);
    if (rc == 0)
        rc = snapshot_build(t, ring, &s);
    if (rc == 0 && (rc = snapshot_add_earlier(cell, s)) != 0)
        snapshot_free(s);
    if (rc == 0)
        s->left_cluster = left_cluster;
    if (rc != 0) {
        log_warn("cluster: cannot build the shards' snapshot (%s); they keep the previous one",
                 strerror(-rc));
        return rc;
    }
    snapshot_publish(cell, s);
    return 0;
}

void snapshot_reader_register(struct snapshot_cell *cell, uint32_t i)
{
    ck_epoch_register(&cell->epoch, &cell->readers[i].rec, NULL);
}

const struct snapshot *snapshot_read_begin(struct snapshot_cell *cell, uint32_t i)
{
    ck_epoch_begin(&cell->readers[i].rec, NULL);
    return __atomic_load_n(&cell->current, __ATOMIC_ACQUIRE);
}

void snapshot_read_end(struct snapshot_cell *cell, uint32_t i)
{
    ck_epoch_end(&cell->readers[i].rec, NULL);
}
