/* replica.h: a key's replicated state, as this shard's store holds it and as
 * the wire carries it (meta: the DVVSet meta encoding, dvv_encode_meta, with
 * each sibling's memcached client flags; body:
 * the values' bytes in clock order, dvv_encode_body; expire_at_ms: absolute
 * unix ms, 0 none). CONTRACT: written by the lead; the "replica" helper
 * implements shards/replica.c and may refine comments, not signatures.
 *
 * Every replication path applies one idempotent operation, replica_apply():
 * dvv_sync of the stored clock and the given one, stored (in memory and in
 * the log record, as store_put_versioned does) only when the result differs.
 * A plain (unversioned) entry reads as its implicit clock (the dot (actor',
 * 1) made of the data epoch and the entry's cas: replica_entry_clock), so
 * keys written before the cluster formed replicate too.
 * replica_versionize() is how a plain Redis write becomes a version on the
 * coordinator: after the command's handler ran on the coordinator's own
 * replica, the key's new state gets one new dot of this node's actor whose
 * context is the clock the key had before (`before`), so a SET supersedes
 * every version its coordinator had seen. A key the command removed (DEL,
 * GETDEL, EXPIRE in the past) becomes a tombstone with that context.
 * Tombstones past tombstone-grace (since the newest of their writes) are
 * reaped from the shard's tick: on a cluster of one by replica_reap(); in a
 * cluster they are only candidates, offered by replica_reap_offer() to the
 * coordinator, which deletes one only once every replica of its partition
 * holds that tombstone or nothing (coord.c, "Reaping").
 *
 * Cold values (values beyond RAM): plain and versioned entries alike may
 * have their value (a versioned entry's body) on disk only. A state needs
 * the values, so replica_export, replica_apply and replica_versionize answer
 * -EAGAIN for such a key: the caller reads it back first (tier.h, as
 * handlers do; coord.c parks a peer's request meanwhile) and calls again.
 * Nothing has changed when -EAGAIN comes back.
 *
 * Threads: the owning shard's thread.
 * Errors: -ENOENT (no entry, not even a tombstone), -EINVAL (bytes that do
 *   not decode), -ENOMEM, -E2BIG (max-siblings, a merged body past the value
 *   limit, a clock past dvv.h's codec bounds), -EOVERFLOW (a counter past
 *   DVV_MAX_COUNTER), -EAGAIN (a cold plain value, above), and the store's
 *   errors (-ENAMETOOLONG). A failed call leaves the key as it was (for
 *   replica_versionize: as the command left it, unversioned). */
#ifndef RINGKV_SHARDS_REPLICA_H
#define RINGKV_SHARDS_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "store.h"

struct store;
struct node;
struct table_entry;
struct dvv_clock;
struct store_version;

/* Tombstones the shard's tick reaps at most. */
#define REPLICA_REAP_PER_TICK 64

/* A key's state exported. replica_state_init() makes an empty one (meta.len
 * 0: no state); the functions that fill one replace what it held. */
struct replica_state {
    struct buf meta;
    struct buf body;
    uint64_t expire_at_ms;
};
void replica_state_init(struct replica_state *st);
void replica_state_fini(struct replica_state *st);
void replica_state_clear(struct replica_state *st);

/* The stored state of key into out (tombstones included, expired keys
 * excluded; a plain entry as its implicit clock). -ENOENT when the store has
 * nothing for it, -EAGAIN for a cold plain value. Counts no hit or miss. */
int replica_export(struct store *s, const struct node *n, const void *key, uint32_t klen,
                   uint64_t hash, struct replica_state *out);

/* The stored state of key as replica_export gives it, borrowed (valid until
 * the store changes): 0 and *v, *expire_at_ms set for a versioned entry;
 * -ENOENT when the store has nothing for it; 1 for a plain entry (its
 * implicit clock) or a cold one (its body on disk): call replica_export.
 * Copies and allocates nothing. */
int replica_peek(struct store *s, const void *key, uint32_t klen, uint64_t hash,
                 struct store_version *v, uint64_t *expire_at_ms);

/* Merges a received state into the store (dvv_sync). Returns 1 when the
 * store changed, 0 when it already held everything given (so a second apply
 * of the same state returns 0). The expiry kept is the newer state's: the
 * given one when it supersedes the stored one, the stored one when it
 * supersedes the given one, else (equal versions, or siblings of both) the
 * later of the two, no expiry being the latest. A result whose values are
 * all tombstones stays a tombstone (until reaped). More siblings than
 * max-siblings: -E2BIG and nothing changes; more than warn-siblings: counted
 * and logged (replica_check_siblings). A given state with no value: -EINVAL. */
int replica_apply(struct store *s, const struct node *n, const void *key, uint32_t klen,
                  uint64_t hash, const void *meta, size_t meta_len, const void *body,
                  size_t body_len, uint64_t expire_at_ms);

/* A hash of a state (its meta and expiry; equal metas hold equal bodies):
 * a coordinator's read sends its own so that a replica holding the same
 * answers "same" without its bytes (coord.c). 64 bits: two different
 * states hash apart but for a chance of 2^-64 per read. */
uint64_t replica_state_hash(const void *meta, size_t meta_len, uint64_t expire_at_ms);

/* True when two exported states hold the same versions (equal meta: the
 * encoding is canonical). A read repairs the replicas for which it is false
 * against the merged state. */
bool replica_same(const struct replica_state *a, const void *meta, size_t meta_len);

/* Whether a state (meta and body, a peer's) covers `mine` (an export): their
 * merge is that state, so sending mine to its holder would change nothing
 * there (equal, or every version of mine superseded or held). 1 or 0;
 * -EINVAL for a malformed state, -ENOSPC, -ENOMEM. */
int replica_covers(const void *meta, size_t meta_len, const void *body, size_t body_len,
                   const struct replica_state *mine);

/* True when the store holds exactly the versions of this meta for key (as
 * replica_same against its export, without exporting): a versioned entry in
 * memory only; false for a plain or cold one, which needs an export. */
bool replica_holds(struct store *s, const void *key, uint32_t klen, uint64_t hash, const void *meta,
                   size_t meta_len);

/* Gives the key's state after a plain write command one new dot covering
 * `before` (the export taken before the command ran; NULL or an empty meta:
 * the key had none). *changed is false when the command left the key as it
 * was (nothing to replicate; also a DEL of a key plain commands did not
 * see: its tombstone is put back). An expiry change (EXPIRE, PERSIST) is a
 * change: the new dot holds the value plain commands see, with the new
 * expiry, superseding the siblings as a SET would. A removed key becomes a
 * tombstone (no expiry). The key's state afterwards is written to `after`
 * (what the replicas apply). The dot's timestamp is the store's clock. */
int replica_versionize(struct store *s, const struct node *n, const void *key, uint32_t klen,
                       uint64_t hash, const struct replica_state *before,
                       struct replica_state *after, bool *changed);

/* A plain write command's store_put of key, made a version at once (one
 * entry, one log record; replica_versionize's result for it, without the
 * plain entry first): between replica_put_begin() and replica_put_end(),
 * the store's put of that key (store.h, struct store_put_hook) writes a new
 * dot of this node's actor whose context is the clock the key holds then
 * (a plain entry's implicit one), with the value, its memcached flags and
 * expiry as given. A put of another key, with an expiry already past, or
 * over a cold value stays plain (replica_versionize then). `done` says the
 * key was written so; its state is then replica_export's. Nested use is
 * not supported (one per store at a time). */
struct replica_put {
    struct store_put_hook hook;
    const struct node *n;
    const void *key;
    uint32_t klen;
    uint64_t hash;
    bool done;
};
void replica_put_begin(struct replica_put *p, struct store *s, const struct node *n,
                       const void *key, uint32_t klen, uint64_t hash);
void replica_put_end(struct replica_put *p, struct store *s);

/* Deletes keys whose values are all tombstones and whose newest timestamp
 * is older than now_unix_ms - tombstone-grace (at most `budget` per call, and
 * about a thousand entries looked at, so a tick stays short: a pass over
 * the table spans many calls). Each deletion is a delete record in the log,
 * so a reaped key stays gone after a restart; none while the node's log
 * refuses writes or pauses writers (persist.h). Returns how many. */
uint32_t replica_reap(struct store *s, const struct node *n, int64_t now_unix_ms, uint32_t budget);

/* Whether e is all tombstones written before now_unix_ms - tombstone-grace
 * (what replica_reap deletes): anti-entropy takes such a key as in sync
 * with a replica that holds nothing. */
bool replica_past_grace(const struct node *n, const struct table_entry *e, int64_t now_unix_ms);

/* A tombstone past its grace, offered instead of deleted (key borrowed for
 * the call only). Returns false when the caller takes no more now: the pass
 * stops there and offers it again on a later call. */
typedef bool (*replica_reap_fn)(void *arg, const void *key, uint32_t klen, uint64_t hash);

/* replica_reap's pass, but each candidate goes to offer(arg, ...) and
 * nothing is deleted here (the caller deletes with store_delete once it
 * is sure). At most `budget` offers per call. Returns how many were taken. */
uint32_t replica_reap_offer(struct store *s, const struct node *n, int64_t now_unix_ms,
                            uint32_t budget, replica_reap_fn offer, void *arg);

/* ---- what every versioned write shares (cmd_ring.c too) ---- */

/* The actor of this node's incarnation `epoch` (dvv_actor of the node id). */
uint64_t replica_actor_of(const struct node *n, uint64_t epoch);

/* The actor of this node's next write to the key of hash `hash`, whose
 * clock here is `held` (NULL: the store holds nothing for it). Actors are
 * per node incarnation and per key incarnation (KV-679, both ways): the high
 * bits are replica_actor_of(n, data epoch), so a node whose data was wiped
 * writes as a new actor; the low 24 bits name the key's incarnation at this
 * node, kept while the node holds the key (this node's actor in `held`; of
 * several, the one with the newest value) and drawn anew when it holds none
 * (never written, evicted, expired, reaped, flushed). A node that lost a key
 * cannot know which counters it issued for it, and replicas that still hold
 * them would drop its next write as already seen; a new key incarnation's
 * dots are new.
 * (Not seen: a lost key given back by a stale read repair; see replica.c.) */
uint64_t replica_write_actor(const struct store *s, const struct node *n, uint64_t hash,
                             const struct dvv_clock *held);

/* The clock of stored entry e into out, its values borrowing e's bytes
 * (valid as long as e): a versioned entry's own; a plain entry's implicit
 * one, its value as one sibling at the dot (actor', 1), actor' made of the
 * data epoch and the entry's cas (unique to that write on this data), with
 * timestamp 0 (a plain GET prefers any versioned write to it). -EAGAIN for
 * a cold plain value, dvv.h's errors otherwise. */
int replica_entry_clock(const struct node *n, const struct table_entry *e, struct dvv_clock *out);

/* The meta of e's state (as replica_export's, without the values) appended
 * to out; for a cold entry too (the meta holds lengths, not bytes). For
 * anti-entropy's digests (merkle.h). -ENOMEM, dvv.h's errors. */
int replica_entry_meta(const struct node *n, const struct table_entry *e, struct buf *out);

/* The sibling bounds of a write that would leave `count` siblings on key:
 * -E2BIG past max-siblings (the caller changes nothing); past warn-siblings
 * counts it (INFO sibling_warnings) and logs at most once a second per
 * shard; else 0. */
int replica_check_siblings(struct store *s, const struct node *n, const void *key, uint32_t klen,
                           uint32_t count);

#endif
