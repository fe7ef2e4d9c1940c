/* member.h: the membership table and SWIM-style failure detection, as a pure
 * state machine (member.c explains the protocol, its timers and precedence).
 * It reads no clock, opens no socket and starts no thread: the caller passes
 * the current time in ms to every call, hands it decoded frames
 * (gossip_decode()) with the address they came from, calls member_tick() by
 * member_next_deadline(), and after each call sends what member_outbox()
 * holds and reads what member_events() reports. Given the same seed, calls
 * and times it behaves the same, so tests replay.
 * Two views of each member: its health as failure detection sees it (alive,
 * suspect, dead; ordered by incarnation) and its ownership state (joining,
 * up, leaving, left), which only explicit admin calls change
 * (member_set_state()); a dead member stays in the table and in the ring.
 * Rings travel as opaque bytes: RING_REQ and RING frames received are
 * listed by member_ring_msgs() for the caller to answer or decode.
 * Threads: one owner (the admin thread); no locks inside. A snapshot for
 *   other threads is the caller's to build from member_at().
 * Ownership: member_create() allocates (member_destroy() frees). Pointers
 *   returned (records, outbox, events) are borrowed: valid until the next
 *   call that takes a time (tick, message, set_*, join) or clears them.
 * Errors: negative errno: -EINVAL for bad arguments, -ENOMEM, -ENOENT for an
 *   unknown member. Out of memory while running (or past MEMBER_MAX
 *   members), a frame or change is dropped; push-pull repairs it later. */
#ifndef RINGKV_ADMIN_MEMBER_H
#define RINGKV_ADMIN_MEMBER_H

#include <stdbool.h>
#include <stdint.h>

#include "gossip.h"

#define MEMBER_MAX 65535u /* as RING_MEMBERS_MAX */
#define MEMBER_JOIN_FANOUT 3 /* places member_join() asks at once */

/* Every knob, with memberlist's LAN defaults (member_config_default()). */
struct member_config {
    /* Probe one member per period, in a shuffled round-robin order. A
     * faster period detects sooner at the cost of more probe traffic. */
    uint32_t probe_interval_ms;   /* 1000 */
    /* Wait this long for a direct ack before asking others to probe; keep it
     * above the network's 99th percentile round trip. */
    uint32_t probe_timeout_ms;    /* 500 */
    /* Members asked to probe indirectly (PING_REQ) when the direct ack is
     * late; also the independent confirmations that shrink a suspicion to
     * its minimum. */
    uint32_t indirect_checks;     /* 3 */
    /* Suspicion lasts at least suspicion_mult * max(1, log10(n)) probe
     * periods (n: members not dead), so that the suspect has time to hear
     * of it and refute, and larger clusters (slower dissemination) wait
     * longer. */
    uint32_t suspicion_mult;      /* 4 */
    /* ... and at most this many times the minimum, when no other member
     * confirms the suspicion. */
    uint32_t suspicion_max_timeout_mult; /* 6 */
    /* Each change is piggybacked retransmit_mult * ceil(log10(n + 1))
     * times, enough for it to reach every member with high probability
     * (an ownership state three times that: member.c). */
    uint32_t retransmit_mult;     /* 4 */
    /* Every gossip_interval_ms, queued changes go to gossip_nodes random
     * members (nothing is sent when the queue is empty). */
    uint32_t gossip_interval_ms;  /* 200 */
    uint32_t gossip_nodes;        /* 3 */
    /* Dead members still get gossip this long, so that one wrongly declared
     * dead learns it and refutes. */
    uint32_t gossip_to_the_dead_ms; /* 30000 */
    /* Full state exchange with one random member this often (times
     * ceil(log2(n) - 5) + 1 above 32 members, as memberlist scales it), the
     * anti-entropy that repairs what gossip missed; 0 turns it off. */
    uint32_t push_pull_interval_ms; /* 30000 */
    /* Every push_pull_seed_every-th exchange goes to a seed address instead,
     * so that seeds keep the cluster from splitting; 0: never. */
    uint32_t push_pull_seed_every;  /* 4 */
    /* At the probe timeout, also PING the target over a stream (the caller
     * sends frames marked stream on a connection), as memberlist's TCP
     * fallback: a lossy network then rarely makes a suspicion. */
    bool stream_probe;            /* true */
    /* Largest datagram: probes and gossip carry updates up to this size. */
    uint32_t max_frame_bytes;     /* 1400 */
    /* Queued changes at most; past it the most retransmitted is dropped
     * (push-pull repairs what that loses). */
    uint32_t queue_max;           /* 4096 */
    /* Reserve GOSSIP_MAC_LEN bytes in each frame for peer authentication. */
    bool mac;                     /* false */
    /* Seed of the RNG (probe order, gossip targets, start-up jitter). */
    uint64_t seed;
};

enum member_health { MEMBER_ALIVE = 0, MEMBER_SUSPECT = 1, MEMBER_DEAD = 2 };

/* Ownership state; only member_set_state() changes it (anywhere in the
 * cluster), ordered by state_version then by this order. */
enum member_state { MEMBER_JOINING = 0, MEMBER_UP = 1, MEMBER_LEAVING = 2, MEMBER_LEFT = 3 };

/* The status operators see: "down" when dead or not heard from since a
 * restart (member_restore_peer()), else the state's name. */
enum member_status { MEMBER_S_JOINING, MEMBER_S_UP, MEMBER_S_LEAVING, MEMBER_S_LEFT,
                     MEMBER_S_DOWN };

struct member {
    struct gossip_info info;
    uint64_t incarnation;
    enum member_health health;
    enum member_state state;
    uint64_t state_version;
    uint64_t health_since_ms; /* when health last changed here */
    /* internal */
    uint32_t suspicion;       /* index + 1 in the suspicions, 0 if none */
    uint64_t told_ms;         /* last time we told it that we think it down */
    uint64_t told_of_ms;      /* last time we told a peer that it left (tell_of_left) */
};

enum member_event_kind {
    MEMBER_EV_NEW,    /* a member entered the table */
    MEMBER_EV_HEALTH, /* its health changed */
    MEMBER_EV_STATE,  /* its ownership state changed */
    MEMBER_EV_INFO,   /* its addresses, weight, zone or ring changed; for self, also
                       * its incarnation (a refutation: worth saving) */
};

struct member_event {
    enum member_event_kind kind;
    uint32_t index; /* member_at(index) */
};

/* A frame to send. Reply-type frames go to the address the request came
 * from (member_on_message()'s from_addr); others to the member's
 * cluster_addr. Frames marked stream go over a connection (PUSH_PULL, which
 * may exceed max_frame_bytes, and the stream probe with its ACK, whose
 * request came with GOSSIP_F_STREAM); the rest fit a datagram. With
 * cfg.mac each frame ends in GOSSIP_MAC_LEN zero bytes for the sender to
 * fill in its own copy. */
struct member_out {
    char to_addr[GOSSIP_ADDR_MAX + 1];
    enum gossip_type type;
    bool stream;
    const uint8_t *bytes;
    uint32_t len;
};

struct member_stats {
    uint64_t probes;           /* direct probes sent */
    uint64_t probe_failures;   /* probes with no direct ack in time */
    uint64_t indirect_probes;  /* PING_REQs sent */
    uint64_t suspicions;       /* members we started to suspect */
    uint64_t deaths;           /* members we saw become dead */
    uint64_t refutations;      /* times we raised our incarnation */
    uint64_t gossip_rounds;    /* GOSSIP frames sent */
    uint64_t push_pulls;       /* PUSH_PULL frames sent */
    uint64_t frames_out, bytes_out, frames_in, bytes_in;
    uint64_t frames_ignored;   /* not for us, stale, or from ourselves */
};

/* A ring frame received (member.c keeps the ring's bytes opaque: the
 * caller decodes them). Listed by member_ring_msgs() until
 * member_events_clear(). */
struct member_ring_msg {
    enum gossip_type type;                 /* GOSSIP_RING_REQ or GOSSIP_RING */
    char from[GOSSIP_ID_LEN + 1];          /* the sender's id */
    char from_addr[GOSSIP_ADDR_MAX + 1];   /* where to answer a RING_REQ */
    uint32_t seq;
    uint64_t epoch, hash;                  /* the asker's ring (RING_REQ), or the one carried */
    uint8_t *blob;                         /* RING: the ring's bytes (owned by the table) */
    uint32_t blob_len;
};

#define MEMBER_RING_MSGS_MAX 8 /* held at once; more are dropped (the asker retries) */

struct member_table;

/* Fills c with the defaults above (seed 1). */
void member_config_default(struct member_config *c);

/* Creates the table holding only self (alive, incarnation 1, JOINING,
 * state_version 0). -EINVAL: a config value out of range (zero periods,
 * probe_timeout_ms >= probe_interval_ms, max_frame_bytes under 512), or self
 * not a valid info (id not 40 lowercase hex digits, zero weight). */
int member_create(const struct member_config *cfg, const struct gossip_info *self,
                  uint64_t now_ms, struct member_table **out);
void member_destroy(struct member_table *t);

/* Adds a seed's cluster address (for joining and the seed push-pulls);
 * -EINVAL if too long, -ENOMEM. */
int member_add_seed(struct member_table *t, const char *cluster_addr);

/* Asks to join: a PUSH_PULL with the join flag to MEMBER_JOIN_FANOUT of
 * the places to join through: the seeds, then the restored members not heard
 * from (member_restore_peer()) and, until member_synced(), those heard from
 * and alive, from a random one on, the next ones at the
 * next call, so that calls go round them all. Call again (say every few
 * seconds) until member_synced(). */
void member_join(struct member_table *t, uint64_t now_ms);
/* Whether a member's whole state (a PUSH_PULL: a join's answer, or a
 * peer's anti-entropy; not another joiner's request) was merged since this
 * table was made or member_forget(). Hearing from a
 * member is not enough to stop joining: a restarted node that a peer's
 * gossip reached first learnt that peer alive, and nothing of a member
 * that left while it was down (the leave's gossip long over) until the
 * next anti-entropy round, 15 to 45 s on. */
bool member_synced(const struct member_table *t);
/* Whether any other member was heard from (its incarnation is above 0: it
 * or a peer spoke of it since this node started). */
bool member_heard(const struct member_table *t);

/* Asks the member at cluster_addr to take us in: a PUSH_PULL with the join
 * flag (POST /v1/nodes: an operator adds a node). -EINVAL: too long. */
int member_contact(struct member_table *t, const char *cluster_addr, uint64_t now_ms);

/* Forgets every other member and the seeds (this node left its cluster):
 * the table holds self alone, UP (state_version + 1), at a new incarnation;
 * until a PUSH_PULL with the join flag arrives (an operator adds it again)
 * or member_join()/member_contact() is called, frames are ignored, so that
 * ones still on their way from the old cluster do not bring it back.
 * Pending events and ring frames are dropped. */
void member_forget(struct member_table *t, uint64_t now_ms);
/* Whether this node left a cluster and has not been JOINING since: set by
 * member_forget() (and member_restore_left()), cleared when this node's own
 * state becomes JOINING. Kept in the saved cluster state, so that a node that
 * left and is started again with seeds joins them again (admin.c). */
bool member_has_left(const struct member_table *t);

/* Sends member id a RING_REQ over a stream, with (epoch, hash) of the ring
 * we have (the caller's protocol: admin.c answers only with a ring that beats
 * it). -ENOENT: no such member. */
int member_request_ring(struct member_table *t, const char *id, uint32_t seq, uint64_t epoch,
                        uint64_t hash, uint64_t now_ms);
/* Answers a RING_REQ (seq echoed) with a RING frame carrying blob_len bytes
 * of blob, to to_addr over a stream. */
void member_send_ring(struct member_table *t, const char *to_addr, uint32_t seq, uint64_t epoch,
                      uint64_t hash, const uint8_t *blob, uint32_t blob_len);
/* RING_REQ and RING frames received since member_events_clear(). */
uint32_t member_ring_msgs(const struct member_table *t, const struct member_ring_msg **out);

/* Changes a member's ownership state (an admin decision) and gossips it.
 * -ENOENT: no such member. */
int member_set_state(struct member_table *t, const char *id, enum member_state state,
                     uint64_t now_ms);

/* Changes what this node advertises (weight, zone, addresses, ring): raises
 * its incarnation and gossips the new ALIVE (a JOIN with our state).
 * -EINVAL: not a valid info, or another id. */
int member_set_self(struct member_table *t, const struct gossip_info *self, uint64_t now_ms);

/* Handles one decoded frame received from from_addr (a MAC, if any, is the
 * caller's to check first). Frames from ourselves, probes meant for another
 * id and acks of nothing we sent are counted in frames_ignored; rumours
 * older than what we hold change nothing. */
void member_on_message(struct member_table *t, uint64_t now_ms, const char *from_addr,
                       const struct gossip_msg *msg);

/* Runs what is due at now_ms: probes, their timeouts, suspicion timeouts,
 * gossip, push-pull. A gap since the previous tick longer than a probe
 * period plus a probe timeout (the process was paused) abandons the probe
 * in flight rather than blaming its target. */
void member_tick(struct member_table *t, uint64_t now_ms);

/* The earliest time member_tick() has something to do. */
uint64_t member_next_deadline(const struct member_table *t);

/* Frames to send since the last member_outbox_clear(): *out gets the array,
 * the return value its length. */
uint32_t member_outbox(struct member_table *t, const struct member_out **out);
void member_outbox_clear(struct member_table *t);

/* Changes since the last member_events_clear() (the list grows until then);
 * clearing also drops the ring frames held. */
uint32_t member_events(const struct member_table *t, const struct member_event **out);
void member_events_clear(struct member_table *t);

/* The table: member_at(0) is self; others in the order they were learnt. */
uint32_t member_count(const struct member_table *t);
const struct member *member_at(const struct member_table *t, uint32_t index);
/* The member with this id, or NULL. */
const struct member *member_find(const struct member_table *t, const char *id);
enum member_status member_status(const struct member *m);
/* Whether a member may own partitions: not JOINING at state_version 0 (a
 * node that waits for an operator, auto-join no). A joiner is admitted by
 * member_set_state(id, MEMBER_JOINING), which raises its version. */
bool member_admitted(const struct member *m);
/* Members not dead and not left, self included. */
uint32_t member_alive_count(const struct member_table *t);
const struct member_stats *member_get_stats(const struct member_table *t);
/* Current minimum suspicion timeout in ms (for tests and the API). */
uint64_t member_suspicion_min_ms(const struct member_table *t);
/* Changes queued for gossip (for tests). */
uint32_t member_queue_len(const struct member_table *t);

/* Restoring a saved state (admin/cluster_state.h), at start-up, before any
 * frame is handled. member_restore_self() gives this node back its
 * ownership state and version as saved, and its incarnation when the saved
 * one is greater, and gossips the state; call member_set_self() next, which
 * raises the incarnation past the saved one, so that our ALIVE overrides
 * what peers held of us before the restart. The saved incarnation is the
 * last one this node announced (member_set_self() and refutations raise
 * MEMBER_EV_INFO, on which the caller saves); if peers hold us suspect or
 * dead at a higher one all the same (a save that failed), the join's answer
 * says so and we refute it (member.c), a round trip later. -EINVAL: not a
 * state. */
int member_restore_self(struct member_table *t, enum member_state state, uint64_t state_version,
                        uint64_t incarnation);
/* Adds a member known before the restart, with its saved ownership state,
 * at incarnation 0 (real ones start at 1), which marks it not heard from:
 * anything it or a peer says of it at a real incarnation overrides it, and
 * until then it is "down" (member_status()), left out of push-pulls (but
 * when left), never added by a receiver that does not know it, and a place
 * member_join() asks.
 * One not left is suspect, its suspicion (this node's, timed as any) started
 * at the next member_tick(): dead at its end unless heard from, so that a
 * member really gone is not waited for. One left is a tombstone: neither
 * probed nor asked, it keeps an older record of it (a peer that was down
 * meanwhile) from bringing it back. -EINVAL: not a valid info or state;
 * -EEXIST: already in the table (self included); -ENOMEM. */
int member_restore_peer(struct member_table *t, const struct gossip_info *info,
                        enum member_state state, uint64_t state_version, uint64_t now_ms);
/* Marks that this node left a cluster (the saved state said so): see
 * member_has_left(). */
void member_restore_left(struct member_table *t);

#endif
