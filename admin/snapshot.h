/* snapshot.h: the cluster as the admin thread last saw it (the membership and
 * the partition ring), published for the shards to read without locks.
 * After every change of the ring or of the membership the admin thread builds
 * an immutable struct snapshot (snapshot_build()) and publishes it
 * (snapshot_publish()): one atomic pointer exchange in the node's struct
 * snapshot_cell. A reader (each shard thread, with its own reader number)
 * brackets its use between snapshot_read_begin() and snapshot_read_end(), a
 * ck_epoch section: a store and a fence, no lock, no message, never a wait.
 * A replaced snapshot goes to ck_epoch_call() and is freed by the publisher's
 * ck_epoch_poll() once every section that could have seen it has ended, so
 * the publisher never waits for readers either. Nothing here runs per
 * request: only commands that answer about the cluster read a snapshot.
 *
 * Threads: snapshot_cell_create() and snapshot_cell_destroy() on the main
 *   thread (destroy once the readers and the publisher have stopped);
 *   snapshot_build(), snapshot_publish(), snapshot_update() and
 *   snapshot_reclaim() on one publisher thread at a time (the admin thread;
 *   the main thread before it starts); snapshot_reader_register(), snapshot_read_begin() and
 *   snapshot_read_end() with reader number i on one thread only, its own.
 * Ownership: snapshot_build()'s result is the caller's until it is published
 *   (snapshot_free() if it never is); then the cell's. A snapshot from
 *   snapshot_read_begin() is borrowed until the matching snapshot_read_end().
 *   The snapshot copies what it holds: it references neither the member table
 *   nor the ring it was built from.
 * Errors: -ENOMEM, -EINVAL, as each call says. */
#ifndef RINGKV_ADMIN_SNAPSHOT_H
#define RINGKV_ADMIN_SNAPSHOT_H

#include <ck_epoch.h>
#include <stdint.h>

#include "gossip.h"
#include "member.h"
#include "ring.h"

#define SNAPSHOT_EARLIER_MAX 4 /* earlier rings a snapshot carries */

/* One member as the snapshot was taken. */
struct snapshot_member {
    char id[RING_ID_LEN + 1];               /* 40 lowercase hex digits */
    char client_addr[GOSSIP_ADDR_MAX + 1];  /* host:port for clients */
    char cluster_addr[GOSSIP_ADDR_MAX + 1]; /* host:cluster-port for peers */
    enum member_status status;              /* up, down, joining, leaving, left */
    uint32_t weight;
    char zone[RING_ZONE_MAX + 1]; /* "" for none */
    uint32_t ring_index;          /* its index in ring->members, or RING_NONE */
};

/* Immutable once built. */
struct snapshot {
    uint64_t version; /* 1 for the cell's first publish, then one more each */
    bool left_cluster; /* this node left its cluster and serves no key (snapshot_update()) */
    uint32_t self;    /* this node's index in members */
    uint32_t n_members;
    struct snapshot_member *members;    /* member table order: members[0] is this node */
    struct ring *ring;                  /* the ring's own copy (epoch, hash, owners, lists) */
    uint32_t *by_ring;                  /* ring member index -> index in members */
    uint32_t counts[MEMBER_S_DOWN + 1]; /* members by status */
    uint32_t owning;                    /* ring members that own partitions */
    /* Every other ring member (or leaver: it still takes clients'
     * requests) that is not down or left says (gossip) it has this very
     * ring (epoch and hash): no live node coordinates with an older one,
     * so a transfer that starts now misses no write of a coordinator still
     * on the old lists (transfer.c waits for it). A ring member the member
     * table does not know yet counts as not having it. */
    bool ring_settled;
    /* The rings published through the cell before this one (distinct
     * epoch and hash), oldest first, up to SNAPSHOT_EARLIER_MAX: a shard
     * that reads snapshots less often than rings change takes each in turn
     * (transfer.c), as if it had seen every one. ring_seq counts the
     * distinct rings published so far, this one's included: earlier[i] is
     * ring number ring_seq - n_earlier + i. Both 0 for snapshot_build's. */
    uint64_t ring_seq;
    uint32_t n_earlier;
    struct ring *earlier[SNAPSHOT_EARLIER_MAX];
    /* internal: reclamation */
    ck_epoch_entry_t epoch_entry;
    struct snapshot_cell *cell;
};

struct snapshot_cell;

/* The cell for readers numbered 0 .. n_readers - 1, empty. -ENOMEM. */
int snapshot_cell_create(uint32_t n_readers, struct snapshot_cell **out);
/* Frees the current snapshot and every replaced one. NULL is fine. */
void snapshot_cell_destroy(struct snapshot_cell *cell);

/* The snapshot of the member table t and ring (t's member 0 is this node).
 * -EINVAL: an empty table; -ENOMEM. On success *out is the caller's. */
int snapshot_build(const struct member_table *t, const struct ring *ring, struct snapshot **out);
/* Frees a snapshot that was never published; NULL is fine. */
void snapshot_free(struct snapshot *s);

/* Makes s the current snapshot (the cell owns it from now on) and hands the
 * one it replaces to ck_epoch, then reclaims (snapshot_reclaim()). */
void snapshot_publish(struct snapshot_cell *cell, struct snapshot *s);
/* Builds the snapshot of t and ring and publishes it, with the rings
 * published before it (snapshot.earlier; the cell keeps copies of the last
 * few) and left_cluster (node.h: this node left its cluster and serves no
 * key; given with the ring, so that a shard never serves keys by a ring of
 * one it took after the leave, nor refuses them by the ring that ended it). On failure (-ENOMEM, logged) the previous one stays current. */
int snapshot_update(struct snapshot_cell *cell, const struct member_table *t,
                    const struct ring *ring, bool left_cluster);
/* Frees the replaced snapshots that no reader can hold any more; never
 * waits. Returns how many still wait for readers. */
uint32_t snapshot_reclaim(struct snapshot_cell *cell);

/* Registers reader i's ck_epoch record; once, on reader i's thread, before
 * its first snapshot_read_begin(). */
void snapshot_reader_register(struct snapshot_cell *cell, uint32_t i);
/* The current snapshot (NULL when none was published yet), valid until
 * snapshot_read_end(i). Keep the section short: it delays reclamation. */
const struct snapshot *snapshot_read_begin(struct snapshot_cell *cell, uint32_t i);
void snapshot_read_end(struct snapshot_cell *cell, uint32_t i);

#endif
