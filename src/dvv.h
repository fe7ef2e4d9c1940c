/* dvv.h: versions of a key: dotted version vector sets (DVVSet).
 * A clock holds every concurrent value of a key (its siblings) with the
 * causal history that produced them (Preguiça, Baquero, Almeida, Fonte,
 * Gonçalves, "Dotted Version Vectors"; Riak's dvvset). It is a list of
 * entries sorted by actor, each (actor, counter, values): the actor's
 * history is the dots (actor, 1..counter), and its values are the siblings
 * written at its newest dots, newest first (value i has the dot
 * (actor, counter - i)). Values with no dot (dvv_new: written with no
 * history) are "anonymous". A client's view of a key is its context: the
 * clock's version vector (dvv_join), with no values. A context can name
 * dots only, so anonymous values (as in Riak) survive every write and go
 * only when a clock whose history strictly contains theirs, and that lacks
 * them, is synced in. Stored clocks should therefore hold dotted values
 * only: every write goes through dvv_update, and a value from before
 * versions is best given a dot once (dvv_update at the node holding it).
 *
 * Actors (the KV-679 contract): an actor is a u64 that names one node's
 * incarnation, dvv_actor(node id, epoch), where the epoch is drawn anew
 * whenever a node starts with an empty data directory (kept in the data
 * directory otherwise). An actor must never issue a dot twice; a node whose
 * data is gone cannot know which counters it issued, so it must write as a
 * new actor. Were it to reuse its old actor, its counters would start again
 * at 1 and every replica that saw the old dots would drop its new writes as
 * already seen (Riak's KV-679; tests/unit/test_dvv.c shows both cases).
 *
 * Representation: struct dvv_clock is a working form over arrays the
 * caller owns (dvv_init, e.g. per-shard scratch clocks) or one mi_malloc
 * block (dvv_create). A clock's values borrow their bytes: dvv_decode points
 * them into the body it was given, dvv_new into the caller's value, and
 * dvv_sync/dvv_update into their inputs' values; the caller keeps those bytes
 * alive as long as the clock is used. Stored and sent, a clock is its
 * encoding: the meta (dvv_encode_meta: actors, counters, and per value its
 * timestamp, tombstone bit, length and, when any value has some, memcached
 * client flags; 19-20 bytes for one actor with one value without flags)
 * and the body (the values' bytes, concatenated in clock order), so
 * the log keeps the meta in the record's metadata and the body as its value.
 * Every clock made by these functions is canonical (entries sorted by
 * actor, anonymous values in one fixed order, minimal varints), so equal
 * histories with equal values encode to equal bytes on every replica.
 *
 * The context travels as a bulk string of raw bytes (dvv_context_encode:
 * binary safe in RESP, not base64; the empty string for a key never
 * written); clients treat it as opaque and hand it back unchanged.
 *
 * Threads: pure functions over the caller's memory; any thread.
 * Errors: negative errno: -EINVAL (bad input: decoders never trust bytes),
 *   -ENOSPC (the result needs more room than the output clock has),
 *   -E2BIG (more entries or values than the codec bounds), -EOVERFLOW
 *   (a counter past DVV_MAX_COUNTER). Output clocks may not alias inputs. */
#ifndef RINGKV_SRC_DVV_H
#define RINGKV_SRC_DVV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define DVV_MAX_ENTRIES 1024u /* actors in one clock (codec bound) */
#define DVV_MAX_VALUES 1024u  /* siblings in one clock (codec bound) */
#define DVV_MAX_COUNTER (UINT64_C(1) << 62)
#define DVV_MAX_TS_MS (INT64_C(1) << 62)
/* The longest meta a clock within the bounds encodes to (a record's u16
 * meta_len holds it): header, per entry actor, counter and value count, per
 * value timestamp, length and client flags. */
#define DVV_META_MAX (4 + DVV_MAX_ENTRIES * (8 + 9 + 2) + DVV_MAX_VALUES * (9 + 5 + 5))
/* The longest context: header, per entry actor and counter. */
#define DVV_CONTEXT_MAX (2 + DVV_MAX_ENTRIES * (8 + 9))

#define DVV_TOMBSTONE 0x1 /* dvv_value.flags: a delete; carries no bytes */

/* One sibling. `data` is borrowed (see the representation above). */
struct dvv_value {
    const char *data;
    uint32_t len;
    uint32_t flags;    /* DVV_TOMBSTONE */
    int64_t ts_ms;     /* wall clock of the write: the plain GET's pick, reaping */
    uint32_t mc_flags; /* the write's memcached client flags (0 for a tombstone
                          and for Redis writes); kept per sibling */
};

struct dvv_entry {
    uint64_t actor;
    uint64_t counter; /* dots (actor, 1..counter) seen; >= 1 */
    uint32_t nvalues; /* values at dots counter, counter-1, ...; <= counter */
};

/* values[] holds entry 0's values, then entry 1's, ..., then the nanon
 * anonymous values last. */
struct dvv_clock {
    struct dvv_entry *entries;
    struct dvv_value *values;
    uint32_t nentries, nvalues, nanon;
    uint32_t cap_entries, cap_values;
};

/* The actor of a node incarnation: a hash of the node id and its epoch. */
uint64_t dvv_actor(const void *node_id, size_t len, uint64_t epoch);

/* An empty clock over the caller's arrays. */
void dvv_init(struct dvv_clock *c, struct dvv_entry *entries, uint32_t cap_entries,
              struct dvv_value *values, uint32_t cap_values);
/* An empty clock in one mi_malloc'd block (arrays included); NULL when out
 * of memory. Free with dvv_destroy (NULL is fine). */
struct dvv_clock *dvv_create(uint32_t cap_entries, uint32_t cap_values);
void dvv_destroy(struct dvv_clock *c);
static inline void dvv_clear(struct dvv_clock *c)
{
    c->nentries = c->nvalues = c->nanon = 0;
}

/* out = a clock with no history and v as its one anonymous value (dvvset's
 * new/1). -EINVAL when v is malformed (a tombstone with bytes, a timestamp
 * outside [0, DVV_MAX_TS_MS)), -ENOSPC. */
int dvv_new(struct dvv_clock *out, const struct dvv_value *v);
/* out = the client's write: the history of ctx (its entries; its values are
 * ignored) and v as the one anonymous value (dvvset's new/2). */
int dvv_new_with_context(struct dvv_clock *out, const struct dvv_clock *ctx,
                         const struct dvv_value *v);

/* out = a and b merged: both histories, and every value that neither side's
 * history has superseded. Idempotent, commutative and associative (equal
 * bytes once encoded). This is what a replica applies for replication,
 * read repair, hints and anti-entropy. -ENOSPC. */
int dvv_sync(struct dvv_clock *out, const struct dvv_clock *a, const struct dvv_clock *b);

/* out = the context of c (its version vector: entries, no values). */
int dvv_join(struct dvv_clock *out, const struct dvv_clock *c);

/* The coordinator's write: client is dvv_new or dvv_new_with_context (one
 * anonymous value, no other values), server is the replica's current clock
 * (NULL or empty for a new key), actor the coordinator's. out = server's
 * values not covered by the client's context, plus the new value at the
 * next dot of actor. -EINVAL (client is not a write), -ENOSPC, -EOVERFLOW. */
int dvv_update(struct dvv_clock *out, const struct dvv_clock *client,
               const struct dvv_clock *server, uint64_t actor);

/* Number of siblings (values, anonymous ones included): c->values[0 ..
 * dvv_size(c)), each entry's newest first, anonymous ones last. */
static inline uint32_t dvv_size(const struct dvv_clock *c)
{
    return c->nvalues;
}

/* True when a's history is strictly contained in b's: every value of a is
 * outdated by b. */
bool dvv_less(const struct dvv_clock *a, const struct dvv_clock *b);

/* The dot of value i: true and *actor, *counter set, or false for an
 * anonymous value. i < dvv_size(c). */
bool dvv_value_dot(const struct dvv_clock *c, uint32_t i, uint64_t *actor, uint64_t *counter);

/* The value a plain GET returns among siblings: the newest timestamp, then
 * the greater actor (which stands for the node), then the greater counter;
 * anonymous values lose ties to dotted ones and among themselves keep their
 * canonical order. The same on every replica holding the same clock. Its
 * index, or -ENOENT for an empty clock. Tombstones take part (a GET that
 * picks one answers nil). */
int dvv_pick(const struct dvv_clock *c);

/* Appends c's meta to out. -E2BIG past the codec bounds, -ENOMEM. */
int dvv_encode_meta(const struct dvv_clock *c, struct buf *out);
/* Appends c's body (every value's bytes, in clock order) to out. -ENOMEM. */
int dvv_encode_body(const struct dvv_clock *c, struct buf *out);
/* out = the clock encoded as meta and body; its values point into body.
 * Anything but a canonical encoding within the bounds whose lengths add up
 * to body_len exactly is -EINVAL; -ENOSPC when out is too small. */
int dvv_decode(const void *meta, size_t meta_len, const void *body, size_t body_len,
               struct dvv_clock *out);

/* Appends the context of c (its version vector) to out; nothing for a
 * clock with no history. -E2BIG, -ENOMEM. */
int dvv_context_encode(const struct dvv_clock *c, struct buf *out);
/* out = the entries of an encoded context (no values); the empty string is
 * the empty context. -EINVAL for anything else than a canonical context,
 * -ENOSPC. */
int dvv_context_decode(const void *p, size_t len, struct dvv_clock *out);

/* A clock of one dotted value and nothing else (one actor, its one value
 * at its newest dot, no anonymous values, no memcached client flags): the
 * usual key, written once or always through the same coordinator. Its meta
 * is a function of these fields, so a store may keep the fields alone and
 * make the meta when asked (shards/store.c keeps them packed: the actor,
 * the counter and the timestamp, the length being the value's). */
struct dvv_single {
    uint64_t actor;
    uint64_t counter;
    int64_t ts_ms;
    uint32_t len; /* 0 for a tombstone */
    bool tombstone;
};
/* The longest meta of such a clock: header, actor, counter, value count,
 * timestamp, length. */
#define DVV_SINGLE_META_MAX (1 + 8 + 9 + 1 + 9 + 5)
/* The longest packed form: actor, counter, timestamp with the tombstone bit. */
#define DVV_SINGLE_PACK_MAX (8 + 9 + 9)

/* True, with *s set, when c is a clock of one dotted value (above). */
bool dvv_single_of(const struct dvv_clock *c, struct dvv_single *s);
/* Writes the meta of the clock s stands for to out (the bytes
 * dvv_encode_meta gives for it); returns its length. */
size_t dvv_single_meta(const struct dvv_single *s, uint8_t out[DVV_SINGLE_META_MAX]);
/* The packed form of s without its length: actor (8 bytes), counter and
 * timestamp << 1 | tombstone (varints). Returns its length. */
size_t dvv_single_pack(const struct dvv_single *s, uint8_t out[DVV_SINGLE_PACK_MAX]);
/* out = the clock s stands for, its one value's bytes at data (borrowed):
 * what dvv_decode gives for its meta and body, without the bytes. -ENOSPC. */
int dvv_from_single(const struct dvv_single *s, const char *data, struct dvv_clock *out);
/* Reads a packed form made by dvv_single_pack (trusted bytes: a store's
 * own memory) into *s, whose len the caller sets; returns its length. */
size_t dvv_single_unpack(const uint8_t *p, struct dvv_single *s);

#endif
