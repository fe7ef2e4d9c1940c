/* ring.c: the partition ring as a pure function of the members and the ring before.
 *
 * Targets. Member i's share is s_i = Q * w_i / W. It gets floor(s_i), and the
 * Q - sum floor(s_i) partitions left go one each to members with a fractional
 * share, chosen so that as few partitions as possible move: first members that
 * hold more than floor(s_i) now (a +1 spares them giving one away), then members
 * that receive anyway (below floor, or holding nothing: a joining member), then
 * the rest; within a class by larger fraction, then id. Rounding can still ask
 * an old member to take one partition in a join, or a member to give one in a
 * leave; then, where the bound max(1, 10%) has room, a donor keeps one
 * more (or a joiner takes one more) instead, never past floor - 1 or ceil + 1
 * (spare_rounding_moves). So every member owns its share within max(1, 10%)
 * and within two; a join moves partitions only to the new member, a leave only
 * the leaver's, except where shares are a few partitions and the bound leaves
 * no room (two members fall short and one partition is free): then one
 * partition more moves. The next change starts from floor/ceil again, so no
 * slack accumulates (unlike Riak's claim, which could leave 4 -> 5 nodes on
 * 64 partitions with one node at 25%: here 13/13/13/13/12, moving 12).
 *
 * Placement. With no previous ring (or none of its owners left) the layout is
 * built by stride scheduling, nested: the zones' totals are interleaved first
 * (copy k of zone z at ideal position (k + 1/2) / T_z, merged by that key),
 * then, inside each zone's positions, its members the same way; each member's
 * partitions end up evenly spaced, and zones alternate. Otherwise partitions
 * move from members over target (and from members that left) to members under
 * target, nothing else: a receiver's ideal points are spread over the largest
 * gaps between the partitions it holds (evenly from a point hashed from its id
 * when it holds none); receivers take turns, one point each, and each takes the
 * free partition (a departed member's, or a donor's while it is over target)
 * nearest that point with no conflict: no partition of its own, and no member
 * of its zone when zones count, within n - 1 on either side; failing that the
 * one with the fewest conflicts nearby. A repair pass then lowers conflicts
 * without moving more: two receivers trade moved partitions, or a donor gives
 * another of its partitions instead. Avoiding conflicts keeps any n
 * consecutive partitions on n distinct nodes (zones), so that preference lists
 * are the next n owners and each member is in n times as many lists as it owns.
 * Minimum movement wins over spreading: when a join makes a zone larger, its
 * new partitions must sit near others of its zone (no free place is far from
 * them), and those lists reach further (the figures below).
 *
 * Preference lists. Owner first, then walking forward, each node not yet taken
 * (whose zone is not yet taken, when the owners span >= n zones). One backward
 * sweep over 2Q positions keeps the first n distinct keys (nodes or zones) ahead
 * of the current one, so all lists cost O(Q * n).
 *
 * Figures (test_ring on a shared 2-core machine; Q=16384, N=3, weights random
 * in [10, 1000]; 100 nodes grown to 1,000 by 1,338 joins and 449 leaves):
 *   ownership: every member within max(1, 10%) of its share after every
 *     change, max 1.03 partitions; 1 of the 1,787 rings used the slack past one;
 *   movement: moved / ideal 0.991 overall (ideal: Q * w / (W + w) for a join,
 *     the leaver's partitions for a leave), 0.969 mean and 1.10 max per join,
 *     0 partitions moved to or from any other member; in 20,000 random changes
 *     of small rings (2 to 40 members, Q 16 to 512) 21 partitions moved past
 *     the minimum, at most 1 per change;
 *   replica load (lists a member is in / (N * partitions it owns)): 0.998 to
 *     1.002; at most 2 partitions whose next 3 owners are not 3 nodes;
 *   with 4 zones (random zone per join, 100 to 400 nodes): lists always span 3
 *     zones, but zones grow and shrink without re-layout: up to 1,527
 *     partitions whose next 3 owners are not 3 zones, replica load 0.33 (a
 *     member owning a few partitions) to 1.33; 4 equal zones grown 8 -> 12
 *     nodes at once: none, 1.000;
 *   time: a change at 1,000 members under 10 ms, a fresh ring 7 ms, 500 of
 *     1,000 leaving at once 70 ms.
 *
 * The codec (ring_encode(), ring_decode()) carries a ring between nodes: its
 * members and owners, nothing derived; the decoder bounds every count by the
 * bytes left before it allocates, and rebuilds the rest with
 * ring_from_owners(), so the hash a peer announced can be checked.
 *
 * Pure functions, any thread; a ring is immutable once built. Scratch memory
 * is allocated per build (a few arrays of Q or members entries) and freed
 * before it returns. */
#include "ring.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "keyhash.h"

#define CONFLICT_NODE (1u << 16) /* a node conflict outweighs any number of zone conflicts */
#define REPAIR_TRIES 512u        /* other moves a conflicting move may trade places with */

static int cmp_member_id(const void *a, const void *b)
{
    return strcmp(((const struct ring_member *)a)->id, ((const struct ring_member *)b)->id);
}

static bool valid_member(const struct ring_member *m)
{
    for (int i = 0; i < RING_ID_LEN; i++) {
        char c = m->id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return m->id[RING_ID_LEN] == '\0' && m->weight > 0 &&
           memchr(m->zone, '\0', sizeof m->zone) != NULL;
}

/* Allocates the ring with its members copied and sorted; checks them. */
static int ring_alloc(const struct ring_member *members, uint32_t n_members, uint32_t q,
                      uint32_t n_replicas, struct ring **out)
{
    if (q == 0 || q > RING_Q_MAX || (q & (q - 1)) || n_replicas == 0 ||
        n_replicas > RING_REPLICAS_MAX || n_members == 0 ||
        n_members > RING_MEMBERS_MAX)
        return -EINVAL;
    for (uint32_t i = 0; i < n_members; i++)
        if (!valid_member(&members[i]))
            return -EINVAL;
    struct ring *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->q = q;
    r->n = n_replicas;
    r->n_members = n_members;
    r->members = malloc(sizeof *r->members * n_members);
    r->owned = calloc(n_members, sizeof *r->owned);
    r->in_lists = calloc(n_members, sizeof *r->in_lists);
    r->owner = malloc(sizeof *r->owner * q);
    if (!r->members || !r->owned || !r->in_lists || !r->owner) {
        ring_destroy(r);
        return -ENOMEM;
    }
    memcpy(r->members, members, sizeof *r->members * n_members);
    qsort(r->members, n_members, sizeof *r->members, cmp_member_id);
    for (uint32_t i = 1; i < n_members; i++)
        if (strcmp(r->members[i - 1].id, r->members[i].id) == 0) {
            ring_destroy(r);
            return -EINVAL;
        }
    *out = r;
    return 0;
}

void ring_destroy(struct ring *ring)
{
    if (!ring)
        return;
    free(ring->members);
    free(ring->owned);
    free(ring->in_lists);
    free(ring->owner);
    free(ring->pref);
    free(ring);
}

uint32_t ring_member_index(const struct ring *ring, const char *id)
{
    uint32_t lo = 0, hi = ring->n_members;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = strncmp(ring->members[mid].id, id, RING_ID_LEN);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return RING_NONE;
}

static int cmp_member_zone(const void *a, const void *b, void *members)
{
    const struct ring_member *m = members;
    return strcmp(m[*(const uint32_t *)a].zone, m[*(const uint32_t *)b].zone);
}

/* zone[i] = index of member i's zone among the distinct zone names, sorted. */
static int zones_index(const struct ring *r, uint32_t *zone, uint32_t *n_zones)
{
    uint32_t *order = malloc(sizeof *order * r->n_members);
    if (!order)
        return -ENOMEM;
    for (uint32_t i = 0; i < r->n_members; i++)
        order[i] = i;
    qsort_r(order, r->n_members, sizeof *order, cmp_member_zone, r->members);
    uint32_t z = 0;
    for (uint32_t k = 0; k < r->n_members; k++) {
        if (k > 0 && strcmp(r->members[order[k]].zone, r->members[order[k - 1]].zone) != 0)
            z++;
        zone[order[k]] = z;
    }
    *n_zones = z + 1;
    free(order);
    return 0;
}

/* Sets r->n to min(n_replicas, members holding partitions) and r->zone_spread
 * to whether those members span at least r->n zones; holds[i] is member i's
 * partitions (its target while building). */
static int settle_n(struct ring *r, const uint32_t *zone, uint32_t n_zones, uint32_t n_replicas,
                    const uint32_t *holds)
{
    bool *seen = calloc(n_zones, sizeof *seen);
    if (!seen)
        return -ENOMEM;
    uint32_t holders = 0, zones = 0;
    for (uint32_t i = 0; i < r->n_members; i++) {
        if (!holds[i])
            continue;
        holders++;
        zones += !seen[zone[i]];
        seen[zone[i]] = true;
    }
    free(seen);
    r->n = n_replicas < holders ? n_replicas : holders;
    r->zone_spread = zones >= r->n;
    return 0;
}

struct target_cand {
    uint32_t member;
    uint32_t cls;  /* 0: holds more than floor; 1: receives anyway; 2: the rest */
    uint64_t frac; /* numerator of the fractional share, over the total weight */
};

static int cmp_target_cand(const void *a, const void *b)
{
    const struct target_cand *x = a, *y = b;
    if (x->cls != y->cls)
        return x->cls < y->cls ? -1 : 1;
    if (x->frac != y->frac)
        return x->frac > y->frac ? -1 : 1;
    return x->member < y->member ? -1 : x->member > y->member;
}

/* Whether member i may own t partitions when rounding would move one more:
 * |t - share| <= max(1, share / 10), the bound, and t at most one
 * from floor or ceil, so that the slack never piles up over changes. In
 * integers (times 10 * total weight) so that every machine agrees. */
static bool within_bound(const struct ring *r, uint32_t i, uint32_t t, uint64_t total)
{
    uint64_t scaled64 = (uint64_t)r->q * r->members[i].weight;
    uint64_t floor_i = scaled64 / total, ceil_i = floor_i + (scaled64 % total != 0);
    if (t + 1 < floor_i || t > ceil_i + 1)
        return false;
    unsigned __int128 scaled = scaled64;
    unsigned __int128 want = 10 * scaled, have = (unsigned __int128)10 * t * total;
    unsigned __int128 slack = scaled > 10 * (unsigned __int128)total ? scaled : 10 * total;
    return have <= want + slack && have + slack >= want;
}

/* First member other than not that can own one partition more within its
 * bound, donors (which then give one fewer) before members that receive
 * anyway (joining, or below floor); RING_NONE if none. A member that cannot cannot later either (targets
 * only grow here), so cursor[pass] skips the leading ones that could not. */
static uint32_t spare_taker(const struct ring *r, const uint32_t *count, const uint32_t *target,
                            uint64_t total, uint32_t not, uint32_t cursor[2])
{
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t b = cursor[pass]; b < r->n_members; b++) {
            uint64_t floor_b = (uint64_t)r->q * r->members[b].weight / total;
            bool fits = pass == 0 ? count[b] > target[b]
                                  : target[b] > count[b] && (!count[b] || count[b] < floor_b);
            bool can = fits && within_bound(r, b, target[b] + 1, total);
            if (can && b != not)
                return b;
            if (!can && b == cursor[pass])
                cursor[pass]++;
        }
    return RING_NONE;
}

/* Rounding can make a member that already holds its floor receive one when no
 * member left (a join would then move a partition to an old member), or make a
 * member that holds at most its ceil give one although partitions of departed
 * members wait for owners (a leave would move another member's partition).
 * Where the slack of max(1, 10%) allows, the extra partition goes to a donor
 * that keeps it, or to a member that receives anyway (a joiner), instead; in
 * the second case a receiver takes one fewer. Linear: each scan resumes where
 * the last left off. */
static void spare_rounding_moves(const struct ring *r, const uint32_t *count, uint32_t *target,
                                 uint64_t total, bool orphans)
{
    uint32_t cursor[2] = {0, 0};
    for (uint32_t a = 0; !orphans && a < r->n_members; a++) {
        uint64_t floor_a = (uint64_t)r->q * r->members[a].weight / total;
        while (target[a] > count[a] && count[a] && count[a] >= floor_a) {
            uint32_t b = spare_taker(r, count, target, total, a, cursor);
            if (b == RING_NONE)
                break;
            target[a]--;
            target[b]++;
        }
    }
    uint32_t a = 0; /* receivers before a cannot take one fewer: their targets only shrink */
    for (uint32_t b = 0; orphans && b < r->n_members; b++) {
        uint64_t scaled = (uint64_t)r->q * r->members[b].weight;
        uint64_t ceil_b = scaled / total + (scaled % total != 0);
        while (count[b] > target[b] && count[b] <= ceil_b && a < r->n_members) {
            if (target[a] > count[a] && within_bound(r, a, target[a] - 1, total)) {
                target[a]--;
                target[b]++;
            } else {
                a++;
            }
        }
    }
}

/* target[i] = floor or ceil of member i's share, the ceils chosen to move the
 * fewest partitions from what count[] says each member holds now; then
 * spare_rounding_moves(). */
static int compute_targets(const struct ring *r, const uint32_t *count, bool orphans,
                           uint32_t *target)
{
    struct target_cand *cand = malloc(sizeof *cand * r->n_members);
    if (!cand)
        return -ENOMEM;
    uint64_t total = 0;
    for (uint32_t i = 0; i < r->n_members; i++)
        total += r->members[i].weight;
    uint32_t given = 0, n_cand = 0;
    for (uint32_t i = 0; i < r->n_members; i++) {
        uint64_t scaled = (uint64_t)r->q * r->members[i].weight;
        target[i] = (uint32_t)(scaled / total);
        given += target[i];
        if (scaled % total == 0)
            continue;
        uint32_t cls = count[i] > target[i] ? 0 : (count[i] < target[i] || !count[i]) ? 1 : 2;
        cand[n_cand++] = (struct target_cand){i, cls, scaled % total};
    }
    qsort(cand, n_cand, sizeof *cand, cmp_target_cand);
    for (uint32_t k = 0; given + k < r->q; k++) /* fewer than n_cand: fractions sum below it */
        target[cand[k].member]++;
    free(cand);
    spare_rounding_moves(r, count, target, total, orphans);
    return 0;
}

struct stride_key {
    double at; /* ideal position of this copy, as a fraction of the sequence */
    uint32_t item;
};

static int cmp_stride_key(const void *a, const void *b)
{
    const struct stride_key *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return x->item < y->item ? -1 : x->item > y->item;
}

/* Stride scheduling: seq gets counts[items[j]] copies of each items[j], copy k
 * at its ideal position (k + 1/2) / count, ties by item; keys has room for
 * them all. The positions are exact rationals with small terms, so equal ones
 * are equal doubles and distinct ones distinct: the order is the same on every
 * machine. Returns the length of seq. */
static uint32_t stride(const uint32_t *counts, const uint32_t *items, uint32_t n_items,
                       uint32_t *seq, struct stride_key *keys)
{
    uint32_t len = 0;
    for (uint32_t j = 0; j < n_items; j++)
        for (uint32_t k = 0; k < counts[items[j]]; k++)
            keys[len++] = (struct stride_key){(2.0 * k + 1) / (2.0 * counts[items[j]]), items[j]};
    qsort(keys, len, sizeof *keys, cmp_stride_key);
    for (uint32_t i = 0; i < len; i++)
        seq[i] = keys[i].item;
    return len;
}

/* A fresh layout: zones interleaved by stride, then each zone's members over
 * the zone's positions by stride. */
static int layout_fresh(struct ring *r, const uint32_t *zone, uint32_t n_zones,
                        const uint32_t *target)
{
    uint32_t q = r->q, nm = r->n_members;
    uint32_t *ztotal = calloc(n_zones, sizeof *ztotal);
    uint32_t *zoff = calloc(n_zones + 1, sizeof *zoff);
    uint32_t *cursor = malloc(sizeof *cursor * n_zones);
    uint32_t *zitems = calloc(n_zones, sizeof *zitems);
    uint32_t *byzone = malloc(sizeof *byzone * nm);
    uint32_t *zseq = malloc(sizeof *zseq * q);
    uint32_t *mseq = malloc(sizeof *mseq * q);
    struct stride_key *keys = malloc(sizeof *keys * q);
    int rc = -ENOMEM;
    if (!ztotal || !zoff || !cursor || !zitems || !byzone || !zseq || !mseq || !keys)
        goto out;
    /* byzone: the members holding partitions grouped by zone, zone z's from zoff[z]. */
    for (uint32_t i = 0; i < nm; i++)
        if (target[i]) {
            ztotal[zone[i]] += target[i];
            zoff[zone[i] + 1]++;
        }
    uint32_t n_zitems = 0;
    for (uint32_t z = 0; z < n_zones; z++) {
        zoff[z + 1] += zoff[z];
        cursor[z] = zoff[z];
        if (ztotal[z])
            zitems[n_zitems++] = z;
    }
    for (uint32_t i = 0; i < nm; i++)
        if (target[i])
            byzone[cursor[zone[i]]++] = i;
    stride(ztotal, zitems, n_zitems, zseq, keys);
    /* Each zone's member sequence, laid end to end in mseq; cursor[z] walks zone z's. */
    uint32_t at = 0;
    for (uint32_t z = 0; z < n_zones; z++) {
        cursor[z] = at;
        at += stride(target, byzone + zoff[z], zoff[z + 1] - zoff[z], mseq + at, keys);
    }
    for (uint32_t p = 0; p < q; p++)
        r->owner[p] = mseq[cursor[zseq[p]]++];
    rc = 0;
out:
    free(ztotal);
    free(zoff);
    free(cursor);
    free(zitems);
    free(byzone);
    free(zseq);
    free(mseq);
    free(keys);
    return rc;
}

/* State of an incremental change: partitions move from members over target
 * (excess) and from departed members (owner RING_NONE) to members under it. */
struct mover {
    struct ring *r;
    const uint32_t *zone;
    uint32_t *count;  /* per member: partitions held now */
    uint32_t *excess; /* per member: partitions it must still give */
    uint32_t window;  /* n - 1 */
};

/* Conflicts of giving partition p to member m: its own partitions within the
 * window on either side (heavy), and its zone's when zones count. */
static uint32_t conflicts(const struct mover *mv, uint32_t m, uint32_t p)
{
    const uint32_t *owner = mv->r->owner;
    uint32_t mask = mv->r->q - 1, score = 0;
    for (uint32_t d = 1; d <= mv->window; d++) {
        uint32_t side[2] = {owner[(p + d) & mask], owner[(p - d) & mask]};
        for (int s = 0; s < 2; s++) {
            if (side[s] == m)
                score += CONFLICT_NODE;
            else if (mv->r->zone_spread && side[s] != RING_NONE &&
                     mv->zone[side[s]] == mv->zone[m])
                score++;
        }
    }
    return score;
}

/* Gives member m the free partition nearest x without conflicts, or, when none
 * lies within radius, the one with the fewest conflicts seen by then; returns
 * which, and in *from its owner before (RING_NONE: a departed member's). */
static uint32_t take_near(struct mover *mv, uint32_t m, uint32_t x, uint32_t radius,
                          uint32_t *from)
{
    uint32_t *owner = mv->r->owner;
    uint32_t q = mv->r->q, mask = q - 1;
    uint32_t best = RING_NONE, best_score = UINT32_MAX;
    for (uint32_t d = 0; d <= q / 2 && best_score; d++) {
        if (best != RING_NONE && d > radius)
            break;
        for (int s = 0; s < 2 && best_score; s++) {
            if (s == 1 && (d == 0 || 2 * d == q))
                continue;
            uint32_t p = s ? (x - d) & mask : (x + d) & mask;
            uint32_t o = owner[p];
            if (o == m || (o != RING_NONE && !mv->excess[o]))
                continue;
            uint32_t score = conflicts(mv, m, p);
            if (score < best_score) {
                best = p;
                best_score = score;
            }
        }
    }
    /* Free partitions exist while m is under target: the needs equal the
     * departed members' partitions plus the excesses. */
    assert(best != RING_NONE);
    uint32_t o = *from = owner[best];
    if (o != RING_NONE) {
        mv->excess[o]--;
        mv->count[o]--;
    }
    owner[best] = m;
    mv->count[m]++;
    return best;
}

/* Conflicts of owners a at p and b at p2 together, as if so. */
static uint32_t pair_conflicts(struct mover *mv, uint32_t a, uint32_t p, uint32_t b, uint32_t p2)
{
    uint32_t *owner = mv->r->owner, was_p = owner[p], was_p2 = owner[p2];
    owner[p] = a;
    owner[p2] = b;
    uint32_t score = conflicts(mv, a, p) + conflicts(mv, b, p2);
    owner[p] = was_p;
    owner[p2] = was_p2;
    return score;
}

/* Local repair of the moves just made, without moving more: a moved partition
 * with conflicts trades places with another receiver's moved partition (one
 * of the next REPAIR_TRIES moves, to bound the work), or
 * goes back to its donor, which gives another of its partitions instead,
 * whenever that lowers the conflicts of the two. moved[k] went from from[k]
 * (RING_NONE: a departed member) to its present owner; held[] lists each
 * member's partitions before the moves, from held_off[member]. */
static void repair_moves(struct mover *mv, uint32_t *moved, const uint32_t *from, uint32_t n_moved,
                         const uint32_t *held, const uint32_t *held_off)
{
    uint32_t *owner = mv->r->owner;
    for (uint32_t k = 0; k < n_moved; k++) {
        uint32_t p = moved[k], a = owner[p];
        uint32_t tries = n_moved < REPAIR_TRIES ? n_moved : REPAIR_TRIES;
        for (uint32_t t = 1; t < tries && owner[p] == a && conflicts(mv, a, p); t++) {
            uint32_t p2 = moved[(k + t) % n_moved], b = owner[p2];
            if (b != a && pair_conflicts(mv, b, p, a, p2) <
                              conflicts(mv, a, p) + conflicts(mv, b, p2)) {
                owner[p] = b;
                owner[p2] = a;
            }
        }
        uint32_t d = from[k];
        if (d == RING_NONE || owner[p] != a)
            continue;
        for (uint32_t h = held_off[d]; h < held_off[d + 1] && conflicts(mv, a, p); h++) {
            uint32_t p2 = held[h];
            if (owner[p2] == d && pair_conflicts(mv, d, p, a, p2) <
                                      conflicts(mv, a, p) + conflicts(mv, d, p2)) {
                owner[p] = d;
                owner[p2] = a;
                moved[k] = p = p2;
            }
        }
    }
}

struct gap {
    uint64_t frac; /* remainder of the proportional share of points */
    uint32_t at, len, points;
};

static int cmp_gap_frac(const void *a, const void *b)
{
    const struct gap *x = a, *y = b;
    if (x->frac != y->frac)
        return x->frac > y->frac ? -1 : 1;
    return x->at < y->at ? -1 : x->at > y->at;
}

/* Where member m, holding held[0..n_held) (ascending), would best receive k
 * more partitions: k points shared among the gaps between its partitions in
 * proportion to their lengths, evenly inside each; evenly round the ring
 * from a point hashed from its id when it holds none. gaps has room for n_held. */
static void ideal_points(const struct ring *r, uint32_t m, const uint32_t *held, uint32_t n_held,
                         uint32_t k, struct gap *gaps, uint32_t *points)
{
    uint32_t q = r->q, mask = q - 1;
    if (!n_held) {
        uint32_t start = (uint32_t)keyhash(r->members[m].id, RING_ID_LEN) & mask;
        for (uint32_t j = 0; j < k; j++)
            points[j] = (start + (uint32_t)((uint64_t)j * q / k)) & mask;
        return;
    }
    uint32_t given = 0;
    for (uint32_t i = 0; i < n_held; i++) {
        uint32_t len = i + 1 < n_held ? held[i + 1] - held[i] : held[0] + q - held[i];
        uint64_t scaled = (uint64_t)k * len;
        gaps[i] = (struct gap){scaled % q, held[i], len, (uint32_t)(scaled / q)};
        given += gaps[i].points;
    }
    qsort(gaps, n_held, sizeof *gaps, cmp_gap_frac);
    for (uint32_t i = 0; given < k; i++, given++) /* fewer than n_held: fractions sum below it */
        gaps[i].points++;
    uint32_t n = 0;
    for (uint32_t i = 0; i < n_held; i++)
        for (uint32_t j = 0; j < gaps[i].points; j++)
            points[n++] = (gaps[i].at + (uint32_t)((uint64_t)gaps[i].len * (j + 1) /
                                                    (gaps[i].points + 1))) & mask;
}

/* Moves partitions to the members under target, one point per receiver per
 * round, so that no receiver takes all the good places first. */
static int layout_moves(struct mover *mv, const uint32_t *target)
{
    struct ring *r = mv->r;
    uint32_t q = r->q, nm = r->n_members;
    uint32_t *held_off = calloc(nm + 1, sizeof *held_off);
    uint32_t *need_off = calloc(nm + 1, sizeof *need_off);
    uint32_t *cursor = malloc(sizeof *cursor * nm);
    uint32_t *held = malloc(sizeof *held * q);
    uint32_t *points = malloc(sizeof *points * q);
    uint32_t *moved = malloc(sizeof *moved * q);
    uint32_t *from = malloc(sizeof *from * q);
    struct gap *gaps = malloc(sizeof *gaps * q);
    int rc = -ENOMEM;
    if (!held_off || !need_off || !cursor || !held || !points || !moved || !from || !gaps)
        goto out;
    uint32_t rounds = 0;
    for (uint32_t i = 0; i < nm; i++) {
        uint32_t need = target[i] > mv->count[i] ? target[i] - mv->count[i] : 0;
        mv->excess[i] = mv->count[i] > target[i] ? mv->count[i] - target[i] : 0;
        need_off[i + 1] = need_off[i] + need;
        held_off[i + 1] = held_off[i] + mv->count[i];
        cursor[i] = held_off[i];
        rounds = need > rounds ? need : rounds;
    }
    for (uint32_t p = 0; p < q; p++) /* each member's partitions, ascending */
        if (r->owner[p] != RING_NONE)
            held[cursor[r->owner[p]]++] = p;
    for (uint32_t i = 0; i < nm; i++)
        if (need_off[i + 1] > need_off[i])
            ideal_points(r, i, held + held_off[i], held_off[i + 1] - held_off[i],
                         need_off[i + 1] - need_off[i], gaps, points + need_off[i]);
    uint32_t n_moved = 0;
    for (uint32_t round = 0; round < rounds; round++)
        for (uint32_t i = 0; i < nm; i++) {
            if (need_off[i] + round >= need_off[i + 1])
                continue;
            uint32_t radius = 4 * (q / target[i]);
            moved[n_moved] = take_near(mv, i, points[need_off[i] + round],
                                       radius < 64 ? 64 : radius, &from[n_moved]);
            n_moved++;
        }
    repair_moves(mv, moved, from, n_moved, held, held_off);
    rc = 0;
out:
    free(held_off);
    free(need_off);
    free(cursor);
    free(held);
    free(points);
    free(moved);
    free(from);
    free(gaps);
    return rc;
}

/* Preference lists: owner first, then the owners of the first n - 1 keys
 * (members, or zones when zone_spread) met walking forward that differ from
 * the owner's and from each other. Walking backwards over two turns, first[]
 * holds the first n distinct keys ahead of the current position, nearest
 * first, with where each is first met. */
static int compute_prefs(struct ring *r, const uint32_t *zone)
{
    uint32_t q = r->q, n = r->n, mask = q - 1;
    struct {
        uint32_t key, at;
    } *first = malloc(sizeof *first * n);
    r->pref = malloc(sizeof *r->pref * q * n);
    if (!first || !r->pref) {
        free(first);
        return -ENOMEM;
    }
    uint32_t len = 0;
    for (uint32_t i = 2 * q; i-- > 0;) {
        uint32_t p = i & mask, o = r->owner[p];
        uint32_t key = r->zone_spread ? zone[o] : o;
        if (i < q) {
            uint32_t *list = r->pref + (uint64_t)p * n, k = 1;
            list[0] = o;
            for (uint32_t j = 0; j < len && k < n; j++)
                if (first[j].key != key)
                    list[k++] = r->owner[first[j].at];
            assert(k == n); /* n <= distinct keys: settle_n */
        }
        uint32_t j = 0;
        while (j < len && first[j].key != key)
            j++;
        if (j == len && len < n)
            len++;
        if (j == len) /* not among the first n: the last one drops off */
            j = len - 1;
        memmove(first + 1, first, sizeof *first * j);
        first[0].key = key;
        first[0].at = p;
    }
    free(first);
    for (uint64_t k = 0; k < (uint64_t)q * n; k++)
        r->in_lists[r->pref[k]]++;
    return 0;
}

static void hash_u32(XXH3_state_t *st, uint32_t v)
{
    unsigned char le[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 24)};
    XXH3_64bits_update(st, le, sizeof le);
}

/* The ring's hash: q, n, the owning members (id and zone) in id order, and
 * each partition's owner as its rank among them. Members that own nothing do
 * not count: two nodes agree on the hash when they agree on the assignment. */
static int compute_hash(struct ring *r)
{
    uint32_t *rank = malloc(sizeof *rank * r->n_members);
    if (!rank)
        return -ENOMEM;
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    hash_u32(&st, r->q);
    hash_u32(&st, r->n);
    uint32_t owners = 0;
    for (uint32_t i = 0; i < r->n_members; i++) {
        if (!r->owned[i])
            continue;
        rank[i] = owners++;
        XXH3_64bits_update(&st, r->members[i].id, RING_ID_LEN);
        uint32_t zlen = (uint32_t)strlen(r->members[i].zone);
        hash_u32(&st, zlen);
        XXH3_64bits_update(&st, r->members[i].zone, zlen);
    }
    for (uint32_t p = 0; p < r->q; p++)
        hash_u32(&st, rank[r->owner[p]]);
    r->hash = XXH3_64bits_digest(&st);
    free(rank);
    return 0;
}

/* Counts, preference lists and hash of a ring whose owners are all set. */
static int finish(struct ring *r, const uint32_t *zone)
{
    for (uint32_t p = 0; p < r->q; p++)
        r->owned[r->owner[p]]++;
    int rc = compute_prefs(r, zone);
    return rc ? rc : compute_hash(r);
}

/* Owners and counts carried over from prev; the partitions of members that
 * left get RING_NONE. Returns how many partitions kept an owner, or -ENOMEM. */
static int64_t carry_over(struct ring *r, const struct ring *prev, uint32_t *count)
{
    for (uint32_t p = 0; p < r->q; p++)
        r->owner[p] = RING_NONE;
    if (!prev)
        return 0;
    uint32_t *map = malloc(sizeof *map * prev->n_members);
    if (!map)
        return -ENOMEM;
    for (uint32_t j = 0; j < prev->n_members; j++)
        map[j] = ring_member_index(r, prev->members[j].id);
    int64_t kept = 0;
    for (uint32_t p = 0; p < r->q; p++) {
        uint32_t o = map[prev->owner[p]];
        r->owner[p] = o;
        if (o != RING_NONE) {
            count[o]++;
            kept++;
        }
    }
    free(map);
    return kept;
}

int ring_build(const struct ring_member *members, uint32_t n_members, uint32_t q,
               uint32_t n_replicas, const struct ring *prev, struct ring **out)
{
    if (prev && prev->q != q)
        return -EINVAL;
    struct ring *r;
    int rc = ring_alloc(members, n_members, q, n_replicas, &r);
    if (rc)
        return rc;
    uint32_t *zone = malloc(sizeof *zone * n_members);
    uint32_t *target = malloc(sizeof *target * n_members);
    uint32_t *count = calloc(n_members, sizeof *count);
    uint32_t *excess = calloc(n_members, sizeof *excess);
    uint32_t n_zones;
    rc = -ENOMEM;
    if (!zone || !target || !count || !excess || zones_index(r, zone, &n_zones))
        goto fail;
    int64_t kept = carry_over(r, prev, count);
    if (kept < 0 || compute_targets(r, count, kept < q, target) ||
        settle_n(r, zone, n_zones, n_replicas, target))
        goto fail;
    if (kept == 0) {
        rc = layout_fresh(r, zone, n_zones, target);
    } else {
        struct mover mv = {r, zone, count, excess, r->n - 1};
        rc = layout_moves(&mv, target);
    }
    if (rc || (rc = finish(r, zone)))
        goto fail;
    r->epoch = !prev ? 1 : prev->hash == r->hash ? prev->epoch : prev->epoch + 1;
    free(zone);
    free(target);
    free(count);
    free(excess);
    *out = r;
    return 0;
fail:
    free(zone);
    free(target);
    free(count);
    free(excess);
    ring_destroy(r);
    return rc;
}

int ring_from_owners(const struct ring_member *members, uint32_t n_members, uint32_t q,
                     uint32_t n_replicas, const char *const *owner_ids, uint64_t epoch,
                     struct ring **out)
{
    struct ring *r;
    int rc = ring_alloc(members, n_members, q, n_replicas, &r);
    if (rc)
        return rc;
    uint32_t *zone = malloc(sizeof *zone * n_members);
    uint32_t *holds = calloc(n_members, sizeof *holds);
    uint32_t n_zones;
    rc = -ENOMEM;
    if (!zone || !holds || zones_index(r, zone, &n_zones))
        goto done;
    rc = -EINVAL;
    for (uint32_t p = 0; p < q; p++) {
        r->owner[p] = ring_member_index(r, owner_ids[p]);
        if (r->owner[p] == RING_NONE)
            goto done;
        holds[r->owner[p]]++;
    }
    if ((rc = settle_n(r, zone, n_zones, n_replicas, holds)) || (rc = finish(r, zone)))
        goto done;
    r->epoch = epoch;
done:
    free(zone);
    free(holds);
    if (rc)
        ring_destroy(r);
    else
        *out = r;
    return rc;
}

uint32_t ring_plan(const struct ring *from, const struct ring *to, struct ring_move *moves)
{
    uint32_t n = 0;
    for (uint32_t p = 0; p < from->q && p < to->q; p++) {
        uint32_t a = from->owner[p], b = to->owner[p];
        if (strcmp(from->members[a].id, to->members[b].id) != 0)
            moves[n++] = (struct ring_move){p, a, b};
    }
    return n;
}

/* Whether the n owners from partition p on are n distinct members (zones). */
static bool spread_from(const struct ring *r, uint32_t p)
{
    uint32_t mask = r->q - 1;
    for (uint32_t a = 0; a < r->n; a++)
        for (uint32_t b = a + 1; b < r->n; b++) {
            const struct ring_member *x = &r->members[r->owner[(p + a) & mask]];
            const struct ring_member *y = &r->members[r->owner[(p + b) & mask]];
            if (x == y || (r->zone_spread && strcmp(x->zone, y->zone) == 0))
                return false;
        }
    return true;
}

void ring_measure(const struct ring *ring, struct ring_balance *out)
{
    *out = (struct ring_balance){.replica_ratio_min = 1e300};
    uint64_t total = 0;
    for (uint32_t i = 0; i < ring->n_members; i++)
        total += ring->members[i].weight;
    for (uint32_t i = 0; i < ring->n_members; i++) {
        double share = (double)ring->q * ring->members[i].weight / (double)total;
        double dev = ring->owned[i] > share ? ring->owned[i] - share : share - ring->owned[i];
        if (dev > out->owned_dev_max)
            out->owned_dev_max = dev;
        if (share >= 1 && dev / share > out->owned_dev_rel_max)
            out->owned_dev_rel_max = dev / share;
        if (!ring->owned[i])
            continue;
        double ratio = ring->in_lists[i] / ((double)ring->n * ring->owned[i]);
        if (ratio > out->replica_ratio_max)
            out->replica_ratio_max = ratio;
        if (ratio < out->replica_ratio_min)
            out->replica_ratio_min = ratio;
    }
    for (uint32_t p = 0; p < ring->q; p++)
        out->crowded += !spread_from(ring, p);
}

/* A copy of len bytes, or NULL. */
static void *ring_dup(const void *p, size_t len)
{
    void *d = malloc(len ? len : 1);
    if (d && len)
        memcpy(d, p, len);
    return d;
}

int ring_clone(const struct ring *ring, struct ring **out)
{
    struct ring *r = malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    *r = *ring;
    r->members = ring_dup(ring->members, sizeof *r->members * ring->n_members);
    r->owned = ring_dup(ring->owned, sizeof *r->owned * ring->n_members);
    r->in_lists = ring_dup(ring->in_lists, sizeof *r->in_lists * ring->n_members);
    r->owner = ring_dup(ring->owner, sizeof *r->owner * ring->q);
    r->pref = ring_dup(ring->pref, sizeof *r->pref * (size_t)ring->q * ring->n);
    if (!r->members || !r->owned || !r->in_lists || !r->owner || !r->pref) {
        ring_destroy(r);
        return -ENOMEM;
    }
    *out = r;
    return 0;
}

/* ---- the codec ---- */

#define CODEC_HEAD (1 + 8 + 4 + 4 + 4)
#define CODEC_MEMBER_MIN (RING_ID_LEN + 4 + 1)

static uint8_t *put_uint(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return p + n;
}

static uint64_t get_uint(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int ring_encode(const struct ring *ring, uint8_t **out, size_t *len)
{
    size_t cap = CODEC_HEAD + (size_t)ring->q * 2;
    for (uint32_t i = 0; i < ring->n_members; i++)
        cap += CODEC_MEMBER_MIN + strlen(ring->members[i].zone);
    uint8_t *buf = malloc(cap), *p = buf;
    if (!buf)
        return -ENOMEM;
    *p++ = RING_CODEC_VERSION;
    p = put_uint(p, ring->epoch, 8);
    p = put_uint(p, ring->q, 4);
    p = put_uint(p, ring->n, 4);
    p = put_uint(p, ring->n_members, 4);
    for (uint32_t i = 0; i < ring->n_members; i++) {
        const struct ring_member *m = &ring->members[i];
        size_t zlen = strlen(m->zone);
        memcpy(p, m->id, RING_ID_LEN);
        p = put_uint(p + RING_ID_LEN, m->weight, 4);
        *p++ = (uint8_t)zlen;
        memcpy(p, m->zone, zlen);
        p += zlen;
    }
    for (uint32_t k = 0; k < ring->q; k++)
        p = put_uint(p, ring->owner[k], 2);
    *out = buf;
    *len = (size_t)(p - buf);
    return 0;
}

/* Reads the members of an encoding into members (n of them, zeroed);
 * *at moves past them. -EINVAL when they do not fit before end. */
static int decode_members(const uint8_t **at, const uint8_t *end, struct ring_member *members,
                          uint32_t n)
{
    const uint8_t *p = *at;
    for (uint32_t i = 0; i < n; i++) {
        if ((size_t)(end - p) < CODEC_MEMBER_MIN)
            return -EINVAL;
        memcpy(members[i].id, p, RING_ID_LEN);
        members[i].weight = (uint32_t)get_uint(p + RING_ID_LEN, 4);
        size_t zlen = p[RING_ID_LEN + 4];
        p += CODEC_MEMBER_MIN;
        if (zlen > RING_ZONE_MAX || (size_t)(end - p) < zlen || memchr(p, 0, zlen))
            return -EINVAL;
        memcpy(members[i].zone, p, zlen);
        p += zlen;
    }
    *at = p;
    return 0;
}

int ring_decode(const uint8_t *bytes, size_t len, struct ring **out)
{
    if (len < CODEC_HEAD || bytes[0] != RING_CODEC_VERSION)
        return -EINVAL;
    uint64_t epoch = get_uint(bytes + 1, 8);
    uint32_t q = (uint32_t)get_uint(bytes + 9, 4), n = (uint32_t)get_uint(bytes + 13, 4);
    uint32_t count = (uint32_t)get_uint(bytes + 17, 4);
    const uint8_t *p = bytes + CODEC_HEAD, *end = bytes + len;
    /* every bound before any allocation: members and owners must fit, and
     * nothing more (n bounds the preference lists: q * n indexes) */
    if (q == 0 || q > RING_Q_MAX || (q & (q - 1)) || count == 0 || count > RING_MEMBERS_MAX ||
        n == 0 || n > count || n > RING_REPLICAS_MAX ||
        (size_t)(end - p) < (size_t)count * CODEC_MEMBER_MIN + 2 * q ||
        (size_t)(end - p) > (size_t)count * (CODEC_MEMBER_MIN + RING_ZONE_MAX) + 2 * q)
        return -EINVAL;
    struct ring_member *members = calloc(count, sizeof *members);
    const char **owner_ids = malloc(sizeof *owner_ids * q);
    int rc = -ENOMEM;
    if (!members || !owner_ids)
        goto done;
    rc = decode_members(&p, end, members, count);
    if (rc == 0 && (size_t)(end - p) != 2 * (size_t)q)
        rc = -EINVAL;
    for (uint32_t k = 0; rc == 0 && k < q; k++) {
        uint32_t o = (uint32_t)get_uint(p + 2 * k, 2);
        if (o >= count)
            rc = -EINVAL;
        else
            owner_ids[k] = members[o].id;
    }
    /* the members must arrive in id order, as ring_encode() writes them: owner
     * indexes refer to that order (ring_from_owners() sorts its own copy) */
    for (uint32_t i = 1; rc == 0 && i < count; i++)
        if (strcmp(members[i - 1].id, members[i].id) >= 0)
            rc = -EINVAL;
    struct ring *r = NULL;
    if (rc == 0)
        rc = ring_from_owners(members, count, q, n, owner_ids, epoch, &r);
    if (rc == 0 && r->n != n) { /* n past the owners: not what ring_encode() writes */
        ring_destroy(r);
        rc = -EINVAL;
    }
    if (rc == 0)
        *out = r;
done:
    free(members);
    free(owner_ids);
    return rc;
}
