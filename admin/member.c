/* member.c: the membership table and SWIM failure detection (member.h).
 *
 * Owned by the admin thread; a pure state machine. Time comes in as now_ms,
 * frames come in decoded, frames to send go to the outbox (encoded by
 * gossip.c) and changes to the event list. The RNG lives in the table.
 *
 * Health (SWIM with Lifeguard's suspicion, after memberlist):
 * - Probing. Every probe period one member (not self, not dead, not left) is
 *   taken from a shuffled round-robin order (reshuffled after each pass; a
 *   new member is put at a random place in the rest of the pass) and sent a
 *   PING. No ACK after probe_timeout_ms: PING_REQ to indirect_checks random
 *   alive members, which PING the target and relay its ACK as IND_ACK.
 *   At the same time it is PINGed once more over a stream (memberlist's TCP
 *   fallback), so that lost datagrams alone rarely make a suspicion. No
 *   ack of any kind by the end of the period: we suspect the target.
 * - Suspicion of member m at incarnation i lasts from min = suspicion_mult *
 *   max(1, log10(n)) * period (n: members not dead) to max = min *
 *   suspicion_max_timeout_mult. With k = indirect_checks expected
 *   confirmations (0 when fewer than k + 2 members live; then min), after c
 *   independent ones (distinct members that suspect m too) the timeout is
 *   max(min, max - (max - min) * log(c + 1) / log(k + 1)) from its start.
 *   Each member runs its own timer; at its end it declares m dead.
 * - Precedence, per member, by incarnation: ALIVE(i) replaces what we hold
 *   only if i is greater; SUSPECT(i) replaces ALIVE(j) when i >= j (about a
 *   member already suspect it is a confirmation); DEAD(i) replaces ALIVE or
 *   SUSPECT(j) when i >= j; anything below our incarnation is an old rumour
 *   and is ignored. About ourselves, SUSPECT or DEAD not older than our
 *   incarnation (or an ALIVE newer than it) makes us refute: incarnation =
 *   max(ours, theirs) + 1, gossiped; whoever calls us suspect or dead, even
 *   with an old incarnation, also gets our current ALIVE straight back.
 *   A push-pull's "dead" counts as a suspicion (memberlist's rule), so one
 *   stale peer cannot kill a member at once.
 * - A member we hold suspect or dead that sends us anything is told so
 *   (a GOSSIP frame, at most once a period), so a member that was paused or
 *   restarted refutes within a round trip instead of waiting to hear it.
 * - A tick after a gap longer than a period and a probe timeout (we were
 *   paused: every deadline is at most that far apart) abandons the probe in
 *   flight: no ack could have been read, so nobody is blamed.
 * Ownership state (joining, up, leaving, left) is separate: only
 * member_set_state() changes it, with state_version + 1; (version, state)
 * ordered lexicographically wins everywhere. Being dead is not a state
 * change: dead and left members stay in the table. A joiner at version 0
 * waits for an operator; member_set_state(JOINING) admits it (version 1 or
 * more). A member's ALIVE goes out as a JOIN (the same fields plus its
 * state) unless it left: a member that first hears of it from
 * its health, after the gossip of its admission died out (a node paused or
 * busy while it went round), would otherwise hold it as a joiner at
 * version 0, never admitted, until a push-pull 30 s on; a claimant that
 * did so left the joiner out of the ring. Left members are neither probed
 * nor gossiped to; one that still sends us frames is told it left (as
 * tell_down() tells a suspect), so that it learns it even when the change's
 * gossip has died out, and member_forget()
 * makes such a node a table of one that ignores frames until asked to join,
 * and remembers that it left (member_has_left()) until it is JOINING again.
 * Restored members (member_restore_peer(), after a restart) sit at
 * incarnation 0, below any real one (a table starts its own at 1): not
 * heard from. Such a record is stale, so it is not shown up, not sent in
 * push-pulls (but tombstones, which only tell members that know it that it
 * left), and an update at incarnation 0 never adds a member; the first
 * tick starts a suspicion of each one not left (so a restarted node neither
 * counts a dead peer up nor waits for it forever), and member_join() asks
 * them, a few at a time, until one answers. Left ones are tombstones.
 * Rings: RING_REQ and RING frames (streams) are copied into a short list
 * (member_ring_msgs()) for the admin thread, which owns the ring's encoding;
 * member_request_ring() and member_send_ring() only frame the bytes.
 *
 * Dissemination. Every change we accept from gossip is queued once per
 * (member, kind of change: health or ownership), replacing an older entry
 * for it; entries are kept least-transmitted first (newest first among
 * equals) and piggybacked on every PING, ACK, PING_REQ and IND_ACK up to
 * max_frame_bytes. GOSSIP frames carry them to gossip_nodes random members
 * (dead ones too for gossip_to_the_dead_ms) when the queue is not empty, at
 * most every gossip_interval_ms (the first right away after a quiet spell).
 * An entry is dropped after retransmit_mult * ceil(log10(n + 1)) sends,
 * MEMBER_STATE_RETRANSMIT times that for an ownership state: admissions and
 * leaves are rare, and a node that misses one (at 5 members each relay
 * sends a change 4 times, to random members) knew nothing of a joiner
 * until a push-pull 15 to 45 s on, the claimant among them: a join that
 * stalled (test_membership, a fifth node, once under CI's load). The
 * queue holds queue_max at most. Anti-entropy: a full-state PUSH_PULL with
 * one random member (every push_pull_seed_every-th with a seed), merged
 * quietly (only a refutation of ourselves is queued: the peers that told us
 * the rest spread it already). Joining is a PUSH_PULL with the join flag to
 * MEMBER_JOIN_FANOUT seeds (or restored members) at a time, which announce
 * the joiner; the joiner announces itself too.
 *
 * Figures (tests/unit/test_member.c: simulated time in 5 ms steps, a 5 ms
 * network losing 0% or 5% of datagrams and no stream frames; LAN defaults;
 * "back" is a member paused (or killed and restarted empty) until all saw it
 * dead, then 40 s more, then seen alive by all):
 *   5 members: death seen by all in 6.4 s (7.4 s at 5% loss), back in 0.1 s,
 *     restarted in 0.1 s; 20 members at 5% loss: 6.6 s, 0.2 s, 0.2 s.
 *   1,000 members, 0% or 5% loss: a join known by all in 0.5 s (median
 *     0.12 s); a death seen by all in 15.0 s: suspicion alone lasts at least
 *     4 * log10(1000) = 12 s, so the 10 s needs suspicion_mult 2
 *     (9.0 s); back in 0.3 to 0.5 s, restarted in 0.5 to 0.6 s; no false
 *     suspicion at 5% loss thanks to the stream probe (about 80 in 130 s
 *     without it); 3 to 5 frames, 2.1 to 2.3 KB sent per member per second.
 *   100 members, steady: 2.0 frames, 345 bytes sent per member per second
 *     (push-pulls included); a frame handled (decode, merge 10 updates,
 *     answer) in 1.8 us: about 0.001% of a core per member. */
#include "member.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define NONE UINT32_MAX
#define RELAY_MAX 64
#define CONFIRM_MAX 16

enum { CLASS_HEALTH, CLASS_STATE };

struct suspicion {
    uint32_t member;
    uint32_t k, c;     /* confirmations expected, received */
    uint64_t start_ms, min_ms, max_ms, deadline_ms;
    char from[CONFIRM_MAX + 1][GOSSIP_ID_LEN + 1]; /* the first suspecter, then confirmers */
};

struct bcast {
    uint32_t member;
    uint8_t class;
    uint16_t len;
    uint32_t transmits;
    uint64_t order; /* larger: newer */
    uint8_t bytes[GOSSIP_UPDATE_MAX];
};

/* A PING we send for another member's PING_REQ. */
struct relay {
    bool used;
    uint32_t my_seq, their_seq;
    uint64_t expires_ms;
    char requester_addr[GOSSIP_ADDR_MAX + 1];
    char target[GOSSIP_ID_LEN + 1];
};

struct probe {
    bool active, acked, indirect_sent;
    uint32_t member, seq;
    uint64_t start_ms;
};

struct member_table {
    struct member_config cfg;
    struct member *members; /* [0] is self */
    uint32_t n, cap;
    uint32_t *index;        /* open addressing on the id: member index + 1, 0 empty */
    uint32_t index_cap;     /* power of two, > 2n */
    uint32_t *order;        /* probe order: member indexes but self */
    uint32_t order_pos;
    uint32_t n_alive;
    struct suspicion *susp;
    uint32_t n_susp, cap_susp;
    struct bcast *queue;
    uint32_t n_queue, cap_queue;
    uint64_t queue_order;
    bool quiet;             /* merging a push-pull: queue only changes about self */
    bool accused;           /* the frame being read calls us suspect or dead */
    struct relay relays[RELAY_MAX];
    uint32_t relay_next;
    struct probe probe;
    uint32_t seq;
    uint64_t next_probe_ms, next_gossip_ms, next_push_pull_ms, last_tick_ms;
    uint32_t push_pull_count;
    char (*seeds)[GOSSIP_ADDR_MAX + 1];
    uint32_t n_seeds;
    uint64_t rng;
    struct gossip_writer w;
    struct member_out *out;
    size_t *out_off;
    uint32_t n_out, cap_out, cap_off;
    struct member_event *ev;
    uint32_t n_ev, cap_ev;
    struct member_ring_msg rings[MEMBER_RING_MSGS_MAX];
    uint32_t n_rings;
    bool forgotten;         /* member_forget(): ignore frames until asked to join */
    bool left;              /* member_forget() since self last was JOINING: member_has_left() */
    bool restored;          /* member_restore_peer(): suspicions to start at the next tick */
    uint32_t join_next;     /* member_join(): a cursor into its targets (0: not started) */
    bool synced;            /* a member's whole state (a PUSH_PULL) merged: member_synced() */
    struct member_stats stats;
};

/* ---- small helpers ---- */

static uint64_t rnd(struct member_table *t) /* splitmix64 */
{
    uint64_t z = (t->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t rnd_below(struct member_table *t, uint32_t n) { return (uint32_t)(rnd(t) % n); }

static int grow(void **p, uint32_t *cap, uint32_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    uint32_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, (size_t)c * size);
    if (!q)
        return -ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

static bool valid_id(const char *id)
{
    for (unsigned i = 0; i < GOSSIP_ID_LEN; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return id[GOSSIP_ID_LEN] == '\0';
}

static bool valid_info(const struct gossip_info *in)
{
    return valid_id(in->id) && in->weight > 0 &&
           memchr(in->client_addr, 0, sizeof in->client_addr) &&
           memchr(in->cluster_addr, 0, sizeof in->cluster_addr) &&
           memchr(in->admin_addr, 0, sizeof in->admin_addr) && memchr(in->zone, 0, sizeof in->zone);
}

static bool counts_alive(const struct member *m)
{
    return m->health != MEMBER_DEAD && m->state != MEMBER_LEFT;
}

static void event(struct member_table *t, enum member_event_kind kind, uint32_t i)
{
    if (grow((void **)&t->ev, &t->cap_ev, t->n_ev + 1, sizeof *t->ev) == 0)
        t->ev[t->n_ev++] = (struct member_event){kind, i};
}

/* ---- the id index ---- */

static uint32_t slot_of(const struct member_table *t, const char *id)
{
    return (uint32_t)XXH3_64bits(id, GOSSIP_ID_LEN) & (t->index_cap - 1);
}

static uint32_t find(const struct member_table *t, const char *id)
{
    for (uint32_t s = slot_of(t, id);; s = (s + 1) & (t->index_cap - 1)) {
        uint32_t v = t->index[s];
        if (v == 0)
            return NONE;
        if (memcmp(t->members[v - 1].info.id, id, GOSSIP_ID_LEN) == 0)
            return v - 1;
    }
}

static void index_put(struct member_table *t, uint32_t i)
{
    uint32_t s = slot_of(t, t->members[i].info.id);
    while (t->index[s])
        s = (s + 1) & (t->index_cap - 1);
    t->index[s] = i + 1;
}

static int index_grow(struct member_table *t, uint32_t need)
{
    if (need * 2 < t->index_cap)
        return 0;
    uint32_t cap = t->index_cap ? t->index_cap : 64;
    while (need * 2 >= cap)
        cap *= 2;
    uint32_t *idx = calloc(cap, sizeof *idx);
    if (!idx)
        return -ENOMEM;
    free(t->index);
    t->index = idx;
    t->index_cap = cap;
    for (uint32_t i = 0; i < t->n; i++)
        index_put(t, i);
    return 0;
}

/* ---- the outbox ---- */

/* A new outbox entry to addr (its bytes to be written next); NULL when out
 * of memory. */
static struct member_out *out_slot(struct member_table *t, const char *addr,
                                   enum gossip_type type)
{
    if (grow((void **)&t->out, &t->cap_out, t->n_out + 1, sizeof *t->out) ||
        grow((void **)&t->out_off, &t->cap_off, t->n_out + 1, sizeof *t->out_off))
        return NULL;
    struct member_out *o = &t->out[t->n_out];
    memset(o, 0, sizeof *o);
    snprintf(o->to_addr, sizeof o->to_addr, "%s", addr);
    o->type = type;
    return o;
}

static uint8_t mac_flag(const struct member_table *t)
{
    return t->cfg.mac ? GOSSIP_F_MAC : 0;
}

/* Starts a frame to addr; false when out of memory. */
static bool send_begin(struct member_table *t, const char *addr, enum gossip_type type,
                       uint8_t flags, uint32_t seq, const char *target, const char *target_addr)
{
    struct member_out *o = out_slot(t, addr, type);
    if (!o)
        return false;
    o->stream = type == GOSSIP_PUSH_PULL || (flags & GOSSIP_F_STREAM);
    gossip_begin(&t->w, type, flags | mac_flag(t), seq, t->members[0].info.id, target,
                 target_addr);
    return !t->w.failed;
}

static void send_end(struct member_table *t)
{
    size_t start = gossip_end(&t->w);
    if (t->w.failed) {
        t->w.len = start;
        t->w.failed = false;
        return;
    }
    t->out_off[t->n_out] = start;
    t->out[t->n_out].len = (uint32_t)(t->w.len - start);
    t->stats.frames_out++;
    t->stats.bytes_out += t->w.len - start;
    t->n_out++;
}

/* ---- the broadcast queue ---- */

static uint32_t retransmit_limit(const struct member_table *t)
{
    return t->cfg.retransmit_mult * (uint32_t)ceil(log10((double)t->n_alive + 1));
}

/* How many more sends an ownership state gets than a health change (the top
 * of the file). */
#define MEMBER_STATE_RETRANSMIT 3

static bool bcast_before(const struct bcast *a, const struct bcast *b)
{
    return a->transmits < b->transmits || (a->transmits == b->transmits && a->order > b->order);
}

static void queue_sort(struct member_table *t) /* insertion sort: nearly sorted */
{
    for (uint32_t i = 1; i < t->n_queue; i++) {
        if (!bcast_before(&t->queue[i], &t->queue[i - 1]))
            continue;
        struct bcast b = t->queue[i];
        uint32_t j = i;
        for (; j > 0 && bcast_before(&b, &t->queue[j - 1]); j--)
            t->queue[j] = t->queue[j - 1];
        t->queue[j] = b;
    }
}

static void queue_remove(struct member_table *t, uint32_t pos)
{
    memmove(&t->queue[pos], &t->queue[pos + 1], (t->n_queue - pos - 1) * sizeof *t->queue);
    t->n_queue--;
}

static void enqueue(struct member_table *t, uint32_t member, uint8_t class,
                    const struct gossip_update *u)
{
    if (t->quiet && member != 0)
        return;
    for (uint32_t i = 0; i < t->n_queue; i++)
        if (t->queue[i].member == member && t->queue[i].class == class) {
            queue_remove(t, i);
            break;
        }
    if (t->n_queue >= t->cfg.queue_max)
        t->n_queue--; /* sorted: the last is the most transmitted */
    if (grow((void **)&t->queue, &t->cap_queue, t->n_queue + 1, sizeof *t->queue))
        return;
    struct bcast b = {.member = member, .class = class, .order = ++t->queue_order};
    b.len = (uint16_t)gossip_encode_update(u, b.bytes);
    if (b.len == 0)
        return;
    memmove(&t->queue[1], &t->queue[0], t->n_queue * sizeof *t->queue);
    t->queue[0] = b;
    t->n_queue++;
}

/* Appends queued updates that fit the frame being written. */
static void piggyback(struct member_table *t)
{
    size_t limit = t->cfg.max_frame_bytes - (t->cfg.mac ? GOSSIP_MAC_LEN : 0);
    uint32_t max_tx = retransmit_limit(t);
    bool sent = false;
    for (uint32_t i = 0; i < t->n_queue; i++) {
        struct bcast *b = &t->queue[i];
        if (gossip_frame_len(&t->w) + b->len > limit)
            continue;
        gossip_add_raw(&t->w, b->bytes, b->len);
        b->transmits++;
        sent = true;
    }
    if (!sent)
        return;
    for (uint32_t i = t->n_queue; i-- > 0;)
        if (t->queue[i].transmits >=
            (t->queue[i].class == CLASS_STATE ? MEMBER_STATE_RETRANSMIT * max_tx : max_tx))
            queue_remove(t, i);
    queue_sort(t);
}

/* ---- updates from the table ---- */

static bool info_equal(const struct gossip_info *a, const struct gossip_info *b)
{
    return strcmp(a->client_addr, b->client_addr) == 0 &&
           strcmp(a->cluster_addr, b->cluster_addr) == 0 &&
           strcmp(a->admin_addr, b->admin_addr) == 0 && a->weight == b->weight &&
           strcmp(a->zone, b->zone) == 0 && a->ring_epoch == b->ring_epoch &&
           a->ring_hash == b->ring_hash;
}

/* The update describing member i: its health (ALIVE/SUSPECT/DEAD, from =
 * `from`), its state (JOIN/LEAVE) or everything (NODE). */
static void make_update(const struct member_table *t, uint32_t i, enum gossip_kind kind,
                        const char *from, struct gossip_update *u)
{
    const struct member *m = &t->members[i];
    memset(u, 0, sizeof *u);
    u->kind = kind;
    u->info = m->info;
    u->incarnation = m->incarnation;
    snprintf(u->from, sizeof u->from, "%s", from ? from : m->info.id);
    u->state = (uint8_t)m->state;
    u->state_version = m->state_version;
    u->health = (uint8_t)m->health;
}

/* The kind that says member m is alive: JOIN (ALIVE's fields plus the
 * ownership state), so that a member first heard of through its health is
 * known in its state (admitted, leaving), not as a joiner at version 0;
 * ALIVE for a left one, which nobody should learn of as a member. */
static enum gossip_kind alive_kind(const struct member *m)
{
    return m->state != MEMBER_LEFT ? GOSSIP_JOIN : GOSSIP_ALIVE;
}

static void queue_health(struct member_table *t, uint32_t i, const char *from)
{
    const struct member *m = &t->members[i];
    enum gossip_kind kind = m->health == MEMBER_ALIVE    ? alive_kind(m)
                            : m->health == MEMBER_SUSPECT ? GOSSIP_SUSPECT
                                                          : GOSSIP_DEAD;
    struct gossip_update u;
    make_update(t, i, kind, from, &u);
    enqueue(t, i, CLASS_HEALTH, &u);
}

static void queue_state(struct member_table *t, uint32_t i)
{
    struct gossip_update u;
    make_update(t, i, t->members[i].state <= MEMBER_UP ? GOSSIP_JOIN : GOSSIP_LEAVE, NULL, &u);
    enqueue(t, i, CLASS_STATE, &u);
}

/* ---- suspicion ---- */

uint64_t member_suspicion_min_ms(const struct member_table *t)
{
    double n = t->n_alive > 1 ? (double)t->n_alive : 1.0;
    double scale = fmax(1.0, log10(n));
    return (uint64_t)(t->cfg.suspicion_mult * scale * t->cfg.probe_interval_ms);
}

static void suspicion_deadline(struct suspicion *s)
{
    if (s->k == 0) {
        s->deadline_ms = s->start_ms + s->min_ms;
        return;
    }
    double frac = log((double)s->c + 1) / log((double)s->k + 1);
    double ms = (double)s->max_ms - frac * (double)(s->max_ms - s->min_ms);
    s->deadline_ms = s->start_ms + (uint64_t)fmax((double)s->min_ms, floor(ms));
}

static void suspicion_start(struct member_table *t, uint32_t i, const char *from, uint64_t now)
{
    if (grow((void **)&t->susp, &t->cap_susp, t->n_susp + 1, sizeof *t->susp))
        return; /* without a timer the member stays suspect until refuted */
    struct suspicion *s = &t->susp[t->n_susp];
    memset(s, 0, sizeof *s);
    s->member = i;
    s->k = t->cfg.indirect_checks < CONFIRM_MAX ? t->cfg.indirect_checks : CONFIRM_MAX;
    if (t->n_alive < s->k + 2)
        s->k = 0;
    s->start_ms = now;
    s->min_ms = member_suspicion_min_ms(t);
    s->max_ms = s->min_ms * t->cfg.suspicion_max_timeout_mult;
    snprintf(s->from[0], sizeof s->from[0], "%s", from);
    suspicion_deadline(s);
    t->members[i].suspicion = ++t->n_susp;
}

/* Counts a confirmation from `from`; true when it is a new, independent one. */
static bool suspicion_confirm(struct member_table *t, uint32_t i, const char *from)
{
    if (!t->members[i].suspicion)
        return false;
    struct suspicion *s = &t->susp[t->members[i].suspicion - 1];
    if (s->c >= s->k)
        return false;
    for (uint32_t j = 0; j <= s->c; j++)
        if (strcmp(s->from[j], from) == 0)
            return false;
    snprintf(s->from[++s->c], sizeof s->from[0], "%s", from);
    suspicion_deadline(s);
    return true;
}

static void suspicion_stop(struct member_table *t, uint32_t i)
{
    uint32_t k = t->members[i].suspicion;
    if (!k)
        return;
    t->members[i].suspicion = 0;
    t->susp[k - 1] = t->susp[--t->n_susp];
    if (k - 1 < t->n_susp)
        t->members[t->susp[k - 1].member].suspicion = k;
}

/* ---- changes to the table ---- */

static void set_health(struct member_table *t, uint32_t i, enum member_health h, uint64_t now)
{
    struct member *m = &t->members[i];
    if (m->health == h)
        return;
    bool was = counts_alive(m);
    m->health = h;
    m->health_since_ms = now;
    t->n_alive += (uint32_t)counts_alive(m) - (uint32_t)was;
    if (h != MEMBER_SUSPECT)
        suspicion_stop(t, i);
    if (h == MEMBER_DEAD)
        t->stats.deaths++;
    event(t, MEMBER_EV_HEALTH, i);
}

static void set_state(struct member_table *t, uint32_t i, enum member_state st, uint64_t version)
{
    struct member *m = &t->members[i];
    bool was = counts_alive(m);
    m->state = st;
    m->state_version = version;
    t->n_alive += (uint32_t)counts_alive(m) - (uint32_t)was;
    if (i == 0 && st == MEMBER_JOINING)
        t->left = false; /* joining a cluster again */
    event(t, MEMBER_EV_STATE, i);
}

static uint32_t add_member(struct member_table *t, const struct gossip_info *info, uint64_t inc,
                           uint64_t now)
{
    if (t->n >= MEMBER_MAX || index_grow(t, t->n + 1) ||
        grow((void **)&t->members, &t->cap, t->n + 1, sizeof *t->members))
        return NONE;
    uint32_t order_cap = t->cap; /* order has room for cap - 1 entries */
    uint32_t *order = realloc(t->order, order_cap * sizeof *order);
    if (!order)
        return NONE;
    t->order = order;
    uint32_t i = t->n++;
    struct member *m = &t->members[i];
    memset(m, 0, sizeof *m);
    m->info = *info;
    m->incarnation = inc;
    m->health = MEMBER_ALIVE;
    m->state = MEMBER_JOINING;
    m->health_since_ms = now;
    index_put(t, i);
    t->n_alive++;
    if (i > 0) { /* into the rest of the current pass, at a random place */
        uint32_t len = i - 1, pos = t->order_pos + rnd_below(t, len - t->order_pos + 1);
        t->order[len] = t->order[pos];
        t->order[pos] = i;
    }
    event(t, MEMBER_EV_NEW, i);
    return i;
}

static void refute(struct member_table *t, uint64_t inc)
{
    struct member *self = &t->members[0];
    self->incarnation = (inc > self->incarnation ? inc : self->incarnation) + 1;
    t->stats.refutations++;
    event(t, MEMBER_EV_INFO, 0); /* the caller saves the incarnation */
    queue_health(t, 0, NULL);
}

/* Someone says we are suspect or dead at incarnation inc: refute it when it
 * is not older than ours; either way its sender gets our ALIVE at once
 * (member_on_message), since it may hold an old rumour nobody corrects. */
static void accuse_self(struct member_table *t, uint64_t inc)
{
    t->accused = true;
    if (inc >= t->members[0].incarnation)
        refute(t, inc);
}

static void on_state(struct member_table *t, uint32_t i, uint8_t state, uint64_t version)
{
    if (i == NONE)
        return;
    const struct member *m = &t->members[i];
    if (version < m->state_version || (version == m->state_version && state <= m->state))
        return;
    set_state(t, i, (enum member_state)state, version);
    queue_state(t, i);
}

/* ALIVE (also the health part of JOIN and NODE; their state is merged
 * first, so that the health entry queued, a JOIN, carries it). Returns the
 * member index. */
static uint32_t on_alive(struct member_table *t, const struct gossip_update *u, uint64_t now)
{
    bool has_state = u->kind == GOSSIP_JOIN || u->kind == GOSSIP_NODE;
    uint32_t i = find(t, u->info.id);
    if (i == 0) {
        if (u->incarnation > t->members[0].incarnation)
            refute(t, u->incarnation);
        return i;
    }
    const struct gossip_info info = u->info;
    if (i == NONE) {
        if (u->incarnation == 0)
            return NONE; /* a restored record nobody heard from: no news of a member */
        i = add_member(t, &info, u->incarnation, now);
        if (i != NONE && has_state)
            on_state(t, i, u->state, u->state_version);
        if (i != NONE)
            queue_health(t, i, NULL);
        return i;
    }
    struct member *m = &t->members[i];
    if (u->incarnation <= m->incarnation)
        return i; /* not newer than what we hold */
    m->incarnation = u->incarnation;
    if (!info_equal(&m->info, &info)) {
        m->info = info;
        event(t, MEMBER_EV_INFO, i);
    }
    set_health(t, i, MEMBER_ALIVE, now);
    if (has_state)
        on_state(t, i, u->state, u->state_version);
    queue_health(t, i, NULL);
    return i;
}

static void on_suspect(struct member_table *t, const char *id, uint64_t inc, const char *from,
                       uint64_t now)
{
    uint32_t i = find(t, id);
    if (i == 0) {
        accuse_self(t, inc);
        return;
    }
    if (i == NONE || inc < t->members[i].incarnation)
        return;
    struct member *m = &t->members[i];
    if (m->health == MEMBER_DEAD)
        return;
    if (m->health == MEMBER_SUSPECT) {
        if (suspicion_confirm(t, i, from))
            queue_health(t, i, from);
        return;
    }
    m->incarnation = inc;
    set_health(t, i, MEMBER_SUSPECT, now);
    suspicion_start(t, i, from, now);
    t->stats.suspicions++;
    queue_health(t, i, from);
}

static void on_dead(struct member_table *t, const char *id, uint64_t inc, const char *from,
                    uint64_t now)
{
    uint32_t i = find(t, id);
    if (i == 0) {
        accuse_self(t, inc);
        return;
    }
    if (i == NONE || inc < t->members[i].incarnation || t->members[i].health == MEMBER_DEAD)
        return;
    t->members[i].incarnation = inc;
    set_health(t, i, MEMBER_DEAD, now);
    queue_health(t, i, from);
}

/* A NODE record of a push-pull from `sender`. */
static void on_node(struct member_table *t, const struct gossip_update *u, const char *sender,
                    uint64_t now)
{
    uint32_t i = find(t, u->info.id);
    if (i == NONE) {
        /* learn it as alive (with its state), then apply what the peer says
         * of its health */
        struct gossip_update a = *u;
        a.kind = GOSSIP_JOIN;
        i = on_alive(t, &a, now);
        if (i != NONE && u->health != MEMBER_ALIVE)
            on_suspect(t, u->info.id, u->incarnation, sender, now);
    } else if (u->health == MEMBER_ALIVE) {
        on_alive(t, u, now);
    } else {
        on_suspect(t, u->info.id, u->incarnation, sender, now);
    }
    on_state(t, i, u->state, u->state_version);
}

/* Sends addr what we hold of member i, which is suspect, dead or left (its
 * SUSPECT, DEAD or LEAVE), at most once a probe period by the clock *told. */
static void tell_what_we_hold(struct member_table *t, uint32_t i, const char *addr, uint64_t now,
                              uint64_t *told)
{
    struct member *m = &t->members[i];
    if (*told && now - *told < t->cfg.probe_interval_ms)
        return;
    *told = now;
    enum gossip_kind kind = m->state == MEMBER_LEFT    ? GOSSIP_LEAVE
                            : m->health == MEMBER_DEAD ? GOSSIP_DEAD
                                                       : GOSSIP_SUSPECT;
    struct gossip_update u;
    make_update(t, i, kind, t->members[0].info.id, &u);
    if (!send_begin(t, addr, GOSSIP_GOSSIP, 0, 0, NULL, NULL))
        return;
    gossip_add_update(&t->w, &u);
    send_end(t);
}

/* Whether an update shows its sender holding the member a member, not
 * left: a suspicion or a death, or a state that is not LEFT (an ALIVE goes
 * out for a left member only: alive_kind()). */
static bool speaks_of_a_member(const struct gossip_update *u)
{
    switch (u->kind) {
    case GOSSIP_SUSPECT:
    case GOSSIP_DEAD:
        return true;
    case GOSSIP_JOIN:
    case GOSSIP_NODE:
        return u->state != MEMBER_LEFT;
    default:
        return false;
    }
}

/* A sender that speaks of a member we hold left (a node that was down
 * while it left, its gossip over) is told that it left, at once, once a
 * probe period at most per member (on a clock of its own: the member
 * itself is still told at once, tell_down()): it would hear it at its next
 * anti-entropy round only, 15 to 45 s on, listing the member down
 * meanwhile. A state newer than our LEFT (it joined again) replaced it
 * before this check. */
static void tell_of_left(struct member_table *t, const struct gossip_msg *msg,
                         const struct gossip_update *u, uint64_t now)
{
    uint32_t i = find(t, u->info.id), from = find(t, msg->from);
    if (i == NONE || i == 0 || i == from || from == NONE || from == 0 ||
        t->members[i].state != MEMBER_LEFT || !speaks_of_a_member(u))
        return;
    tell_what_we_hold(t, i, t->members[from].info.cluster_addr, now, &t->members[i].told_of_ms);
}

static void apply_updates(struct member_table *t, const struct gossip_msg *msg, uint64_t now)
{
    struct gossip_iter it;
    struct gossip_update u;
    gossip_iter_init(&it, msg);
    while (gossip_next_update(&it, &u)) {
        switch (u.kind) {
        case GOSSIP_ALIVE:
            on_alive(t, &u, now);
            break;
        case GOSSIP_SUSPECT:
            on_suspect(t, u.info.id, u.incarnation, u.from, now);
            break;
        case GOSSIP_DEAD:
            on_dead(t, u.info.id, u.incarnation, u.from, now);
            break;
        case GOSSIP_JOIN:
            on_state(t, on_alive(t, &u, now), u.state, u.state_version);
            break;
        case GOSSIP_LEAVE:
            on_state(t, find(t, u.info.id), u.state, u.state_version);
            break;
        case GOSSIP_NODE:
            on_node(t, &u, msg->from, now);
            break;
        }
        tell_of_left(t, msg, &u, now);
    }
}

/* ---- sending ---- */

static void send_small(struct member_table *t, const char *addr, enum gossip_type type,
                       uint8_t flags, uint32_t seq, const char *target, const char *target_addr)
{
    if (!send_begin(t, addr, type, flags, seq, target, target_addr))
        return;
    piggyback(t);
    send_end(t);
}

static void send_state(struct member_table *t, const char *addr, uint8_t flags)
{
    if (!send_begin(t, addr, GOSSIP_PUSH_PULL, flags, 0, NULL, NULL))
        return;
    for (uint32_t i = 0; i < t->n; i++) {
        if (t->members[i].incarnation == 0 && t->members[i].state != MEMBER_LEFT)
            continue; /* restored, not heard from: stale (a tombstone adds nobody) */
        struct gossip_update u;
        make_update(t, i, GOSSIP_NODE, NULL, &u);
        gossip_add_update(&t->w, &u);
    }
    send_end(t);
    t->stats.push_pulls++;
}

/* A RING_REQ or RING frame to addr, over a stream (no updates: they are
 * not worth a connection's bytes, and RING may be large). */
static void send_ring_frame(struct member_table *t, const char *addr,
                                   enum gossip_type type, uint32_t seq, uint64_t epoch,
                                   uint64_t hash, const uint8_t *blob, uint32_t blob_len)
{
    struct member_out *o = out_slot(t, addr, type);
    if (!o)
        return;
    o->stream = true;
    gossip_begin_ring(&t->w, type, mac_flag(t), seq, t->members[0].info.id, epoch, hash, blob,
                      blob_len);
    send_end(t);
}

/* Tells member i, which we hold suspect, dead or left, what we think of it
 * (a member that left learns it so even when nobody gossips to it). */
static void tell_down(struct member_table *t, uint32_t i, const char *addr, uint64_t now)
{
    struct member *m = &t->members[i];
    if (m->health != MEMBER_ALIVE || m->state == MEMBER_LEFT)
        tell_what_we_hold(t, i, addr, now, &m->told_ms);
}

/* Our current ALIVE, straight to a member that holds an old view of us. */
static void answer_accuser(struct member_table *t, const char *addr)
{
    struct gossip_update u;
    make_update(t, 0, alive_kind(&t->members[0]), NULL, &u);
    if (!send_begin(t, addr, GOSSIP_GOSSIP, 0, 0, NULL, NULL))
        return;
    gossip_add_update(&t->w, &u);
    send_end(t);
}

/* Up to `want` random members for which ok() holds, none repeated. */
static uint32_t pick_random(struct member_table *t, uint32_t want, uint32_t *out,
                            bool (*ok)(const struct member_table *, uint32_t, uint64_t, uint32_t),
                            uint64_t now, uint32_t exclude)
{
    uint32_t got = 0;
    for (uint32_t tries = 0; got < want && t->n > 1 && tries < 3 * t->n; tries++) {
        uint32_t i = 1 + rnd_below(t, t->n - 1);
        bool dup = i == exclude || !ok(t, i, now, exclude);
        for (uint32_t j = 0; j < got && !dup; j++)
            dup = out[j] == i;
        if (!dup)
            out[got++] = i;
    }
    return got;
}

static bool ok_alive(const struct member_table *t, uint32_t i, uint64_t now, uint32_t exclude)
{
    const struct member *m = &t->members[i];
    return m->health == MEMBER_ALIVE && m->state != MEMBER_LEFT;
}

static bool ok_gossip(const struct member_table *t, uint32_t i, uint64_t now, uint32_t exclude)
{
    const struct member *m = &t->members[i];
    if (m->state == MEMBER_LEFT)
        return false;
    return m->health != MEMBER_DEAD || now - m->health_since_ms < t->cfg.gossip_to_the_dead_ms;
}

/* ---- receiving ---- */

static void on_ack(struct member_table *t, const struct gossip_msg *msg)
{
    struct probe *p = &t->probe;
    if (p->active && msg->seq == p->seq &&
        strcmp(msg->from, t->members[p->member].info.id) == 0) {
        p->acked = true;
        return;
    }
    for (uint32_t r = 0; r < RELAY_MAX; r++) {
        struct relay *rl = &t->relays[r];
        if (rl->used && rl->my_seq == msg->seq && strcmp(rl->target, msg->from) == 0) {
            rl->used = false;
            send_small(t, rl->requester_addr, GOSSIP_IND_ACK, 0, rl->their_seq, rl->target, NULL);
            return;
        }
    }
    t->stats.frames_ignored++;
}

static void on_ping_req(struct member_table *t, uint64_t now, const char *from_addr,
                        const struct gossip_msg *msg)
{
    if (strcmp(msg->target, t->members[0].info.id) == 0)
        return;
    struct relay *rl = &t->relays[t->relay_next++ % RELAY_MAX];
    rl->used = true;
    rl->my_seq = ++t->seq;
    rl->their_seq = msg->seq;
    rl->expires_ms = now + t->cfg.probe_timeout_ms;
    snprintf(rl->requester_addr, sizeof rl->requester_addr, "%s", from_addr);
    memcpy(rl->target, msg->target, sizeof rl->target);
    send_small(t, msg->target_addr, GOSSIP_PING, 0, rl->my_seq, msg->target, NULL);
}

/* Anti-entropy merges quietly (the peers that told us already spread it);
 * a joiner is announced by the member it joins through. */
static void on_push_pull(struct member_table *t, const char *from_addr,
                         const struct gossip_msg *msg)
{
    uint32_t i = find(t, msg->from);
    if (!(msg->flags & GOSSIP_F_JOIN))
        t->synced = true; /* a joiner's view may be as stale as ours */
    if ((msg->flags & GOSSIP_F_JOIN) && i != NONE && i != 0 &&
        t->members[i].health == MEMBER_ALIVE) {
        queue_health(t, i, NULL);
        queue_state(t, i);
    }
    if (!(msg->flags & GOSSIP_F_REPLY))
        send_state(t, from_addr, GOSSIP_F_REPLY);
}

/* Holds a RING_REQ or RING for the caller (the bytes copied: the frame's
 * buffer is the transport's). */
static void keep_ring_msg(struct member_table *t, const char *from_addr,
                          const struct gossip_msg *msg)
{
    if (t->n_rings >= MEMBER_RING_MSGS_MAX) {
        t->stats.frames_ignored++;
        return;
    }
    struct member_ring_msg *r = &t->rings[t->n_rings];
    memset(r, 0, sizeof *r);
    if (msg->blob_len && !(r->blob = malloc(msg->blob_len))) {
        t->stats.frames_ignored++; /* out of memory: dropped as when the queue is full */
        return;
    }
    if (msg->blob_len)
        memcpy(r->blob, msg->blob, msg->blob_len);
    r->blob_len = msg->blob_len;
    r->type = msg->type;
    memcpy(r->from, msg->from, sizeof r->from);
    snprintf(r->from_addr, sizeof r->from_addr, "%s", from_addr);
    r->seq = msg->seq;
    r->epoch = msg->ring_epoch;
    r->hash = msg->ring_hash;
    t->n_rings++;
}

void member_on_message(struct member_table *t, uint64_t now_ms, const char *from_addr,
                       const struct gossip_msg *msg)
{
    t->stats.frames_in++;
    t->stats.bytes_in += msg->signed_len + (msg->mac ? GOSSIP_MAC_LEN : 0);
    const char *self = t->members[0].info.id;
    bool join = msg->type == GOSSIP_PUSH_PULL && (msg->flags & GOSSIP_F_JOIN);
    if (strcmp(msg->from, self) == 0 ||
        (msg->type == GOSSIP_PING && strcmp(msg->target, self) != 0) ||
        (t->forgotten && !join)) {
        t->stats.frames_ignored++;
        return;
    }
    t->forgotten = false;
    t->quiet = msg->type == GOSSIP_PUSH_PULL;
    t->accused = false;
    apply_updates(t, msg, now_ms);
    t->quiet = false;
    if (t->accused && msg->type != GOSSIP_PUSH_PULL)
        answer_accuser(t, from_addr);
    switch (msg->type) {
    case GOSSIP_PING:
        send_small(t, from_addr, GOSSIP_ACK, msg->flags & GOSSIP_F_STREAM, msg->seq, NULL, NULL);
        break;
    case GOSSIP_ACK:
        on_ack(t, msg);
        break;
    case GOSSIP_PING_REQ:
        on_ping_req(t, now_ms, from_addr, msg);
        break;
    case GOSSIP_IND_ACK:
        if (t->probe.active && msg->seq == t->probe.seq &&
            strcmp(msg->target, t->members[t->probe.member].info.id) == 0)
            t->probe.acked = true;
        break;
    case GOSSIP_GOSSIP:
        break;
    case GOSSIP_PUSH_PULL:
        on_push_pull(t, from_addr, msg);
        break;
    case GOSSIP_RING_REQ:
    case GOSSIP_RING:
        keep_ring_msg(t, from_addr, msg);
        break;
    }
    uint32_t i = find(t, msg->from);
    if (i != NONE && i != 0)
        tell_down(t, i, t->members[i].info.cluster_addr, now_ms);
}

/* ---- timers ---- */

static uint32_t next_probe_target(struct member_table *t)
{
    uint32_t len = t->n - 1;
    for (uint32_t seen = 0; seen < 2 * len + 1; seen++) {
        if (t->order_pos >= len) {
            for (uint32_t k = len; k > 1; k--) { /* Fisher-Yates */
                uint32_t j = rnd_below(t, k), tmp = t->order[k - 1];
                t->order[k - 1] = t->order[j];
                t->order[j] = tmp;
            }
            t->order_pos = 0;
            if (len == 0)
                return NONE;
        }
        uint32_t i = t->order[t->order_pos++];
        const struct member *m = &t->members[i];
        if (m->health != MEMBER_DEAD && m->state != MEMBER_LEFT)
            return i;
    }
    return NONE;
}

static void probe_start(struct member_table *t, uint64_t now)
{
    uint32_t i = next_probe_target(t);
    if (i == NONE)
        return;
    t->probe = (struct probe){.active = true, .member = i, .seq = ++t->seq, .start_ms = now};
    t->stats.probes++;
    const struct member *m = &t->members[i];
    send_small(t, m->info.cluster_addr, GOSSIP_PING, 0, t->seq, m->info.id, NULL);
}

static void probe_indirect(struct member_table *t)
{
    struct probe *p = &t->probe;
    uint32_t picked[CONFIRM_MAX];
    uint32_t want = t->cfg.indirect_checks < CONFIRM_MAX ? t->cfg.indirect_checks : CONFIRM_MAX;
    uint32_t got = pick_random(t, want, picked, ok_alive, 0, p->member);
    const struct member *target = &t->members[p->member];
    p->indirect_sent = true;
    t->stats.probe_failures++;
    if (t->cfg.stream_probe)
        send_small(t, target->info.cluster_addr, GOSSIP_PING, GOSSIP_F_STREAM, p->seq,
                   target->info.id, NULL);
    for (uint32_t k = 0; k < got; k++) {
        send_small(t, t->members[picked[k]].info.cluster_addr, GOSSIP_PING_REQ, 0, p->seq,
                   target->info.id, target->info.cluster_addr);
        t->stats.indirect_probes++;
    }
}

static void probe_timers(struct member_table *t, uint64_t now)
{
    struct probe *p = &t->probe;
    if (p->active && !p->acked && !p->indirect_sent && now >= p->start_ms + t->cfg.probe_timeout_ms)
        probe_indirect(t);
    if (p->active && now >= p->start_ms + t->cfg.probe_interval_ms) {
        p->active = false;
        const struct member *m = &t->members[p->member];
        if (!p->acked)
            on_suspect(t, m->info.id, m->incarnation, t->members[0].info.id, now);
    }
    if (now >= t->next_probe_ms) {
        t->next_probe_ms += t->cfg.probe_interval_ms;
        if (t->next_probe_ms <= now)
            t->next_probe_ms = now + t->cfg.probe_interval_ms;
        probe_start(t, now);
    }
}

static void suspicion_timers(struct member_table *t, uint64_t now)
{
    for (uint32_t k = 0; k < t->n_susp;) {
        const struct suspicion *s = &t->susp[k];
        if (now < s->deadline_ms) {
            k++;
            continue;
        }
        uint32_t i = s->member;
        const struct member *m = &t->members[i];
        on_dead(t, m->info.id, m->incarnation, t->members[0].info.id, now); /* removes s */
        if (k < t->n_susp && t->susp[k].member == i)
            k++;
    }
}

static void gossip_timer(struct member_table *t, uint64_t now)
{
    if (now < t->next_gossip_ms)
        return;
    t->next_gossip_ms += t->cfg.gossip_interval_ms;
    if (t->next_gossip_ms <= now)
        t->next_gossip_ms = now + t->cfg.gossip_interval_ms;
    if (t->n_queue == 0)
        return;
    uint32_t picked[64];
    uint32_t want = t->cfg.gossip_nodes < 64 ? t->cfg.gossip_nodes : 64;
    uint32_t got = pick_random(t, want, picked, ok_gossip, now, NONE);
    for (uint32_t k = 0; k < got && t->n_queue; k++) {
        send_small(t, t->members[picked[k]].info.cluster_addr, GOSSIP_GOSSIP, 0, 0, NULL,
                   NULL);
        t->stats.gossip_rounds++;
    }
}

static uint64_t push_pull_period(const struct member_table *t)
{
    uint64_t ms = t->cfg.push_pull_interval_ms;
    if (t->n_alive <= 32)
        return ms;
    return ms * (uint64_t)(ceil(log2((double)t->n_alive) - 5.0) + 1);
}

static void push_pull_timer(struct member_table *t, uint64_t now)
{
    if (!t->cfg.push_pull_interval_ms || now < t->next_push_pull_ms)
        return;
    t->next_push_pull_ms = now + push_pull_period(t);
    t->push_pull_count++;
    const char *addr = NULL;
    uint32_t every = t->cfg.push_pull_seed_every;
    if (t->n_seeds && every && t->push_pull_count % every == 0)
        addr = t->seeds[rnd_below(t, t->n_seeds)];
    uint32_t peer;
    if (!addr && pick_random(t, 1, &peer, ok_alive, now, NONE) == 1)
        addr = t->members[peer].info.cluster_addr;
    if (addr && strcmp(addr, t->members[0].info.cluster_addr) != 0)
        send_state(t, addr, 0);
}

/* The first tick after restoring: a suspicion for each restored member not
 * heard from yet, timed for the whole table (n), started by this node. */
static void restored_timers(struct member_table *t, uint64_t now)
{
    t->restored = false;
    for (uint32_t i = 1; i < t->n; i++) {
        const struct member *m = &t->members[i];
        if (m->incarnation == 0 && m->health == MEMBER_SUSPECT && !m->suspicion) {
            suspicion_start(t, i, t->members[0].info.id, now);
            t->stats.suspicions++;
        }
    }
}

void member_tick(struct member_table *t, uint64_t now_ms)
{
    uint64_t pause_ms = t->cfg.probe_interval_ms + t->cfg.probe_timeout_ms;
    if (t->last_tick_ms && now_ms - t->last_tick_ms > pause_ms) {
        t->probe.active = false; /* we were paused: nobody to blame */
        t->next_probe_ms = now_ms;
    }
    t->last_tick_ms = now_ms;
    if (t->restored)
        restored_timers(t, now_ms);
    for (uint32_t r = 0; r < RELAY_MAX; r++)
        if (t->relays[r].used && now_ms >= t->relays[r].expires_ms)
            t->relays[r].used = false;
    probe_timers(t, now_ms);
    suspicion_timers(t, now_ms);
    gossip_timer(t, now_ms);
    push_pull_timer(t, now_ms);
}

uint64_t member_next_deadline(const struct member_table *t)
{
    if (t->restored)
        return 0;
    uint64_t d = t->next_probe_ms;
    const struct probe *p = &t->probe;
    if (p->active) {
        uint64_t at = p->acked || p->indirect_sent ? p->start_ms + t->cfg.probe_interval_ms
                                                   : p->start_ms + t->cfg.probe_timeout_ms;
        d = at < d ? at : d;
    }
    for (uint32_t k = 0; k < t->n_susp; k++)
        d = t->susp[k].deadline_ms < d ? t->susp[k].deadline_ms : d;
    if (t->n_queue && t->next_gossip_ms < d)
        d = t->next_gossip_ms;
    if (t->cfg.push_pull_interval_ms && t->next_push_pull_ms < d)
        d = t->next_push_pull_ms;
    return d;
}

/* ---- the API ---- */

void member_config_default(struct member_config *c)
{
    *c = (struct member_config){
        .probe_interval_ms = 1000,
        .probe_timeout_ms = 500,
        .indirect_checks = 3,
        .suspicion_mult = 4,
        .suspicion_max_timeout_mult = 6,
        .retransmit_mult = 4,
        .gossip_interval_ms = 200,
        .gossip_nodes = 3,
        .gossip_to_the_dead_ms = 30000,
        .push_pull_interval_ms = 30000,
        .push_pull_seed_every = 4,
        .stream_probe = true,
        .max_frame_bytes = 1400,
        .queue_max = 4096,
        .mac = false,
        .seed = 1,
    };
}

int member_create(const struct member_config *cfg, const struct gossip_info *self,
                  uint64_t now_ms, struct member_table **out)
{
    if (!cfg->probe_interval_ms || !cfg->probe_timeout_ms ||
        cfg->probe_timeout_ms >= cfg->probe_interval_ms || !cfg->suspicion_mult ||
        !cfg->suspicion_max_timeout_mult || !cfg->retransmit_mult || !cfg->gossip_interval_ms ||
        cfg->max_frame_bytes < 512 || !cfg->queue_max || !valid_info(self))
        return -EINVAL;
    struct member_table *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->cfg = *cfg;
    t->rng = cfg->seed;
    gossip_writer_init(&t->w);
    if (add_member(t, self, 1, now_ms) != 0) {
        member_destroy(t);
        return -ENOMEM;
    }
    t->n_ev = 0;
    t->next_probe_ms = now_ms + rnd_below(t, cfg->probe_interval_ms);
    t->next_gossip_ms = now_ms + rnd_below(t, cfg->gossip_interval_ms);
    t->next_push_pull_ms = now_ms + (cfg->push_pull_interval_ms
                                         ? rnd_below(t, cfg->push_pull_interval_ms) +
                                               cfg->push_pull_interval_ms / 2
                                         : 0);
    *out = t;
    return 0;
}

void member_destroy(struct member_table *t)
{
    if (!t)
        return;
    gossip_writer_fini(&t->w);
    free(t->members);
    free(t->index);
    free(t->order);
    free(t->susp);
    free(t->queue);
    free(t->seeds);
    free(t->out);
    free(t->out_off);
    free(t->ev);
    for (uint32_t k = 0; k < t->n_rings; k++)
        free(t->rings[k].blob);
    free(t);
}

int member_add_seed(struct member_table *t, const char *cluster_addr)
{
    if (strlen(cluster_addr) > GOSSIP_ADDR_MAX)
        return -EINVAL;
    uint32_t cap = t->n_seeds;
    char(*s)[GOSSIP_ADDR_MAX + 1] = realloc(t->seeds, (cap + 1) * sizeof *s);
    if (!s)
        return -ENOMEM;
    t->seeds = s;
    snprintf(s[t->n_seeds++], sizeof s[0], "%s", cluster_addr);
    return 0;
}

/* A member to join through: one not left, not heard from (restored,
 * incarnation 0) or, until a whole state came, heard from and alive (its
 * gossip may have reached us before any answer to a join did). */
static bool is_join_target(const struct member_table *t, const struct member *m)
{
    return m->state != MEMBER_LEFT &&
           (m->incarnation == 0 || (!t->synced && m->health == MEMBER_ALIVE));
}

/* The j-th place to join through: the seeds, then the members above; NULL
 * past the last. */
static const char *join_target(const struct member_table *t, uint32_t j)
{
    if (j < t->n_seeds)
        return t->seeds[j];
    j -= t->n_seeds;
    for (uint32_t i = 1; i < t->n; i++)
        if (is_join_target(t, &t->members[i]) && j-- == 0)
            return t->members[i].info.cluster_addr;
    return NULL;
}

void member_join(struct member_table *t, uint64_t now_ms)
{
    t->forgotten = false;
    queue_health(t, 0, NULL); /* announce ourselves to the members the seeds tell us of */
    uint32_t n = t->n_seeds; /* join_target()'s count, in one pass */
    for (uint32_t i = 1; i < t->n; i++)
        n += is_join_target(t, &t->members[i]);
    if (n == 0)
        return;
    if (t->join_next == 0)
        t->join_next = 1 + rnd_below(t, n); /* a random start, then in turn */
    uint32_t want = n < MEMBER_JOIN_FANOUT ? n : MEMBER_JOIN_FANOUT;
    for (uint32_t k = 0; k < want; k++) {
        const char *addr = join_target(t, t->join_next++ % n);
        if (strcmp(addr, t->members[0].info.cluster_addr) != 0)
            send_state(t, addr, GOSSIP_F_JOIN);
    }
    (void)now_ms;
}

bool member_synced(const struct member_table *t) { return t->synced; }

bool member_heard(const struct member_table *t)
{
    for (uint32_t i = 1; i < t->n; i++)
        if (t->members[i].incarnation > 0)
            return true;
    return false;
}

int member_set_state(struct member_table *t, const char *id, enum member_state state,
                     uint64_t now_ms)
{
    uint32_t i = find(t, id);
    if (i == NONE)
        return -ENOENT;
    if (state > MEMBER_LEFT)
        return -EINVAL;
    set_state(t, i, state, t->members[i].state_version + 1);
    queue_state(t, i);
    return 0;
}

int member_contact(struct member_table *t, const char *cluster_addr, uint64_t now_ms)
{
    if (strlen(cluster_addr) > GOSSIP_ADDR_MAX)
        return -EINVAL;
    t->forgotten = false;
    send_state(t, cluster_addr, GOSSIP_F_JOIN);
    return 0;
}

void member_forget(struct member_table *t, uint64_t now_ms)
{
    memset(t->index, 0, sizeof *t->index * t->index_cap);
    t->n = 1;
    index_put(t, 0);
    t->order_pos = 0;
    t->n_susp = 0;
    t->n_queue = 0;
    memset(t->relays, 0, sizeof t->relays);
    t->probe.active = false;
    t->n_seeds = 0;
    t->forgotten = true;
    t->left = true;
    t->restored = false;
    t->join_next = 0;
    t->synced = false;
    member_events_clear(t);
    struct member *self = &t->members[0];
    self->suspicion = 0;
    self->incarnation++;
    t->n_alive = counts_alive(self);
    set_state(t, 0, MEMBER_UP, self->state_version + 1);
    queue_health(t, 0, NULL);
    (void)now_ms;
}

int member_request_ring(struct member_table *t, const char *id, uint32_t seq, uint64_t epoch,
                        uint64_t hash, uint64_t now_ms)
{
    (void)now_ms;
    const struct member *m = member_find(t, id);
    if (!m)
        return -ENOENT;
    send_ring_frame(t, m->info.cluster_addr, GOSSIP_RING_REQ, seq, epoch, hash, NULL, 0);
    return 0;
}

void member_send_ring(struct member_table *t, const char *to_addr, uint32_t seq, uint64_t epoch,
                      uint64_t hash, const uint8_t *blob, uint32_t blob_len)
{
    send_ring_frame(t, to_addr, GOSSIP_RING, seq, epoch, hash, blob, blob_len);
}

uint32_t member_ring_msgs(const struct member_table *t, const struct member_ring_msg **out)
{
    *out = t->rings;
    return t->n_rings;
}

int member_set_self(struct member_table *t, const struct gossip_info *self, uint64_t now_ms)
{
    if (!valid_info(self) || strcmp(self->id, t->members[0].info.id) != 0)
        return -EINVAL;
    t->members[0].info = *self;
    t->members[0].incarnation++;
    event(t, MEMBER_EV_INFO, 0);
    queue_health(t, 0, NULL);
    return 0;
}

uint32_t member_outbox(struct member_table *t, const struct member_out **out)
{
    for (uint32_t k = 0; k < t->n_out; k++)
        t->out[k].bytes = t->w.data + t->out_off[k];
    *out = t->out;
    return t->n_out;
}

void member_outbox_clear(struct member_table *t)
{
    t->n_out = 0;
    gossip_writer_reset(&t->w);
}

uint32_t member_events(const struct member_table *t, const struct member_event **out)
{
    *out = t->ev;
    return t->n_ev;
}

void member_events_clear(struct member_table *t)
{
    t->n_ev = 0;
    for (uint32_t k = 0; k < t->n_rings; k++)
        free(t->rings[k].blob);
    t->n_rings = 0;
}

uint32_t member_count(const struct member_table *t) { return t->n; }

const struct member *member_at(const struct member_table *t, uint32_t index)
{
    return index < t->n ? &t->members[index] : NULL;
}

const struct member *member_find(const struct member_table *t, const char *id)
{
    if (!valid_id(id))
        return NULL;
    uint32_t i = find(t, id);
    return i == NONE ? NULL : &t->members[i];
}

enum member_status member_status(const struct member *m)
{
    if ((m->health == MEMBER_DEAD || m->incarnation == 0) && m->state != MEMBER_LEFT)
        return MEMBER_S_DOWN; /* incarnation 0: restored, not heard from (never self) */
    return (enum member_status)m->state;
}

bool member_has_left(const struct member_table *t) { return t->left; }

bool member_admitted(const struct member *m)
{
    return m->state != MEMBER_JOINING || m->state_version > 0;
}

uint32_t member_alive_count(const struct member_table *t) { return t->n_alive; }

const struct member_stats *member_get_stats(const struct member_table *t) { return &t->stats; }

uint32_t member_queue_len(const struct member_table *t) { return t->n_queue; }

/* ---- restoring a saved state (admin/cluster_state.h) ---- */

int member_restore_self(struct member_table *t, enum member_state state, uint64_t state_version,
                        uint64_t incarnation)
{
    if (state > MEMBER_LEFT)
        return -EINVAL;
    if (incarnation > t->members[0].incarnation)
        t->members[0].incarnation = incarnation;
    set_state(t, 0, state, state_version);
    queue_state(t, 0);
    return 0;
}

void member_restore_left(struct member_table *t) { t->left = true; }

int member_restore_peer(struct member_table *t, const struct gossip_info *info,
                        enum member_state state, uint64_t state_version, uint64_t now_ms)
{
    if (!valid_info(info) || state > MEMBER_LEFT)
        return -EINVAL;
    if (find(t, info->id) != NONE)
        return -EEXIST;
    uint32_t i = add_member(t, info, 0, now_ms);
    if (i == NONE)
        return -ENOMEM;
    set_state(t, i, state, state_version);
    if (state != MEMBER_LEFT) {
        set_health(t, i, MEMBER_SUSPECT, now_ms);
        t->restored = true; /* its suspicion starts at the next tick */
    }
    return 0;
}
