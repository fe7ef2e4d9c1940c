/* ring.h: the partition ring, Dynamo's strategy 3 on Redis Cluster's slots.
 * Q equal partitions (each 16384/Q slots, keyhash_slot_partition) are shared
 * among the members in proportion to their weights; each partition has an
 * owner and a preference list: the owner, then the next distinct nodes met
 * walking the ring forward, from N distinct zones when the owners span at
 * least N zones.
 * ring_build() is a pure, deterministic function of the members (in any
 * order) and of the previous ring: every node that knows the same members
 * and the same previous ring computes the same ring, with the same hash.
 * Guarantees (ring.c says how): each member owns its share Q * weight / total
 * weight within max(1, 10%) and within two (floor or ceil but where rounding
 * would move a partition more); a change moves partitions only to members that
 * gain and only from members that lose (a join moves only to the new member,
 * a leave only the leaving member's partitions; where shares are a few
 * partitions, rounding can force one partition more); every preference list names
 * min(N, owners) distinct nodes, and distinct zones when they span that many.
 * Threads: pure functions, any thread; a built ring is immutable, so it can be
 *   published as a snapshot and read by many threads at once.
 * Ownership: ring_build() allocates the ring (ring_destroy() frees it); the
 *   caller keeps its inputs, which the ring does not reference.
 * Errors: -EINVAL for bad input (the function says which), -ENOMEM. */
#ifndef RINGKV_ADMIN_RING_H
#define RINGKV_ADMIN_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RING_ID_LEN 40       /* a node id: 40 lowercase hex digits (Redis Cluster's) */
#define RING_ZONE_MAX 63     /* longest zone name */
#define RING_Q_MAX 16384u    /* partitions at most: one per slot */
#define RING_MEMBERS_MAX 65535u
#define RING_REPLICAS_MAX 16u /* n (preference list length) at most; the replicas setting's cap */
#define RING_NONE UINT32_MAX /* no member */

/* A member as the caller describes it. */
struct ring_member {
    char id[RING_ID_LEN + 1]; /* NUL-terminated */
    uint32_t weight;          /* > 0: relative capacity */
    char zone[RING_ZONE_MAX + 1]; /* NUL-terminated; "" for none */
};

/* A built ring. Members are sorted by id; member indexes below refer to that
 * order (ring_member_index() finds one). Read-only after ring_build(). */
struct ring {
    uint32_t q;             /* partitions */
    uint32_t n;             /* preference list length: min(N asked, members owning any) */
    uint32_t n_members;
    bool zone_spread;       /* preference lists span n distinct zones */
    uint64_t hash;          /* XXH3 of q, n, the owning members (id, zone) and the owners */
    uint64_t epoch;         /* previous ring's epoch, plus one if the hash changed; 1 if none */
    struct ring_member *members; /* n_members, sorted by id */
    uint32_t *owned;        /* per member: partitions it owns */
    uint32_t *in_lists;     /* per member: preference lists it is in (its replica load) */
    uint32_t *owner;        /* per partition: its owner's member index */
    uint32_t *pref;         /* q * n member indexes: partition p's list at pref[p * n] */
};

/* One partition that changes owner between two rings. */
struct ring_move {
    uint32_t partition;
    uint32_t from; /* member index in the old ring */
    uint32_t to;   /* member index in the new ring */
};

/* Balance figures of a ring (for tests, the admin API and notes). */
struct ring_balance {
    double owned_dev_max;     /* max |owned - share| over members, in partitions */
    double owned_dev_rel_max; /* max |owned - share| / share over members with share >= 1 */
    double replica_ratio_max; /* max over owning members of in_lists / (n * owned): 1 when
                                 every member is in n lists per partition it owns */
    double replica_ratio_min; /* min of the same */
    uint32_t crowded;         /* partitions whose next n owners (itself included) are not
                                 n distinct nodes, or not n distinct zones when zone_spread:
                                 their list had to skip ahead */
};

/* Builds the ring of members[0..n_members) with q partitions (a power of two,
 * 1 to RING_Q_MAX) and preference lists of n_replicas (1 to RING_REPLICAS_MAX)
 * nodes; prev, when
 * not NULL, is the ring before this change (same q) and the new one moves as
 * few partitions from it as the balance allows. -EINVAL: q, n_replicas, no
 * member, more than RING_MEMBERS_MAX, an id not 40 lowercase hex digits, two
 * members with one id, a zero weight, an unterminated zone, prev->q != q.
 * On success *out is the new ring (free with ring_destroy()). */
int ring_build(const struct ring_member *members, uint32_t n_members, uint32_t q,
               uint32_t n_replicas, const struct ring *prev, struct ring **out);

/* Builds the ring whose owners are given (as another node announced it):
 * owner_ids[p] is the id of partition p's owner, one of members. Same checks
 * as ring_build(), plus -EINVAL for an owner that is not a member. The epoch
 * is the one given. */
int ring_from_owners(const struct ring_member *members, uint32_t n_members, uint32_t q,
                     uint32_t n_replicas, const char *const *owner_ids, uint64_t epoch,
                     struct ring **out);

/* Frees a ring from ring_build() or ring_from_owners(); NULL is fine. */
void ring_destroy(struct ring *ring);

/* Index of the member with this id (RING_ID_LEN characters), or RING_NONE. */
uint32_t ring_member_index(const struct ring *ring, const char *id);

/* Partition p's preference list: ring->n member indexes, owner first. */
static inline const uint32_t *ring_pref(const struct ring *ring, uint32_t p)
{
    return ring->pref + (uint64_t)p * ring->n;
}

/* The transfers from one ring to the next (same q): writes to moves (room for
 * from->q entries) each partition whose owner changes, in partition order, and
 * returns how many. Owners are compared by id. */
uint32_t ring_plan(const struct ring *from, const struct ring *to, struct ring_move *moves);

/* Measures a ring's balance (see struct ring_balance). */
void ring_measure(const struct ring *ring, struct ring_balance *out);

/* A deep copy of ring in *out (free with ring_destroy()), for a snapshot
 * that outlives the original. -ENOMEM. */
int ring_clone(const struct ring *ring, struct ring **out);

/* A ring as bytes, to send it to a node or keep it (little-endian):
 *   version u8 (RING_CODEC_VERSION), epoch u64, q u32, n u32, members u32,
 *   per member (in id order): id (40 hex characters), weight u32, zone as
 *   a length u8 and that many bytes; then per partition its owner's member
 *   index u16.
 * ring_encode(): *out gets the bytes (malloc'd: free()), *len their count;
 * -ENOMEM. */
#define RING_CODEC_VERSION 1
int ring_encode(const struct ring *ring, uint8_t **out, size_t *len);
/* Rebuilds a ring from ring_encode()'s bytes, checking every length and
 * bound before it reads or allocates (hostile input is -EINVAL: a wrong
 * version, a truncated or over-long buffer, q not a power of two up to
 * RING_Q_MAX, n not 1 to min(members, RING_REPLICAS_MAX) (or more than the
 * members owning any), a length past what q and the members can fill, a
 * member that ring_build() would refuse, members not in id order, an owner
 * index out of range); its hash is recomputed (ring_from_owners()),
 * so the caller compares it with the one announced. -ENOMEM. */
int ring_decode(const uint8_t *bytes, size_t len, struct ring **out);

#endif
