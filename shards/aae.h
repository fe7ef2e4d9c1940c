/* aae.h: active anti-entropy: each shard keeps a Merkle tree (merkle.h) of
 * every partition it owns, and replicas of a partition compare theirs and
 * repair the keys that differ, so that replicas converge without any read
 * (what read repair, and later hints, miss).
 *
 * Trees exist in a cluster only (coord.h's view, and aae-interval > 0): the
 * shard then watches its store (store_watch: every entry entering or leaving
 * the table toggles its digest in its partition's tree) and builds the trees
 * from the table in the background, a few thousand entries per tick; again
 * every aae-rebuild-interval. A cluster of one pays one test per store
 * change.
 *
 * Every aae-interval (the first one interval after the cluster view
 * appears) each partition's first live replica runs an exchange
 * with each other live replica, and each other replica one with the next
 * live replica after it (one-way cuts: coord_aae_peers) (TREE: branches; SEGMENTS: leaves of the
 * differing branches; KEYS: keys and digests of the differing leaves, a few
 * leaves at a time, in pages of at most AAE_SCAN_BUDGET table entries
 * visited, each reply saying where its listing stopped) and repairs each differing key with the version sync
 * (GET the peer's state, replica_apply it here, SYNC the merged state back
 * where the peer's differs; a key only here is SYNCed). At most
 * aae-max-keys-per-exchange keys per exchange and AAE_KEYS_PER_TICK per
 * shard tick, so repair never takes more than a small share of a loop turn.
 *
 * Threads: the owning shard's thread; aae_info() any.
 * Errors: aae_init() -ENOMEM; the rest logs and retries on the next round. */
#ifndef RINGKV_SHARDS_AAE_H
#define RINGKV_SHARDS_AAE_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"

struct shard;
struct node;
struct wire_msg;

#define AAE_KEYS_PER_TICK 64      /* keys repaired per shard tick at most */
#define AAE_REBUILD_PER_TICK 8192 /* entries hashed per tick by a rebuild */
#define AAE_EXCHANGES_MAX 16      /* exchanges in flight per shard */
#define AAE_LEAVES_PER_KEYS 8     /* leaves one KEYS request asks at most */
#define AAE_SCAN_BUDGET 4096      /* table entries one KEYS page visits at most, each side */

int aae_init(struct shard *sh);
void aae_fini(struct shard *sh);

/* On the shard's tick (now: req_now_ms()): starts or stops the trees with
 * the cluster view, steps a rebuild, starts the round's exchanges, ends late
 * ones and repairs a few keys. */
void aae_tick(struct shard *sh, int64_t now_ms);

/* TREE, SEGMENTS, KEYS (net/wire.h). */
bool aae_is_op(uint8_t op);
/* Whether a REPLY answers one of anti-entropy's requests (its id's top
 * bit), a GET of a repair among them. */
bool aae_is_reply(const struct wire_msg *m);
/* Whether a request of a peer's anti-entropy (its id's top bit: a repair's
 * GET or SYNC) is to be refused (UNAVAILABLE) because this shard was
 * flushed less than an aae-interval ago. */
bool aae_refuses(const struct shard *sh, const struct wire_msg *m);
/* A peer's TREE, SEGMENTS or KEYS request (coord_on_request hands it over). */
void aae_on_request(struct shard *sh, uint64_t link, const struct wire_msg *m);
/* A reply for which aae_is_reply() holds (coord_on_reply hands it over). */
void aae_on_reply(struct shard *sh, const struct wire_msg *m);

/* Handoff (transfer.c, before a partition's copy here is dropped): an
 * exchange of partition p with member `id` that sends the peer every key
 * here that it lacks or holds older (the repair's merge: a GET of the
 * peer's state, merged here, SYNCed back where it differs) and takes
 * nothing else from it; leaves empty here are skipped, so a copy of a few
 * keys costs a few leaves. Its end calls transfer_handoff_done(sh, p,
 * cookie, clean, keys_sent): clean when it ran to its last leaf, sent
 * nothing, left no key unchecked (a GET unanswered, a cold value not read
 * back, a send that failed) and the partition's fingerprint here did not
 * move meanwhile: the peer held every key here as it is here, or newer.
 * A key the peer holds newer is not merged here (the copy is on its way
 * out). Cache mode (evicting maxmemory) sends keys only here all the same.
 * Handoffs are not counted in the INFO figures below (transfer.c counts
 * them). 0: started; 1:
 * nothing to check with (anti-entropy off: no trees); -EAGAIN: not now (the
 * trees not built yet, no free exchange, the member unknown or down). */
int aae_handoff(struct shard *sh, uint32_t p, const char *id, uint64_t cookie);

/* Partition p's fingerprint here (0 while the trees are off or not built):
 * any write to it moves it, but for a 2^-64 chance. */
uint64_t aae_partition_print(const struct shard *sh, uint32_t p);

/* Whether this shard's tree of partition p holds any key (false while the
 * trees are off or not built). */
bool aae_partition_holds(const struct shard *sh, uint32_t p);

/* Every shard's counters summed (relaxed loads; any thread). */
struct aae_totals {
    uint64_t exchanges, in_sync, keys_repaired, bytes_out, bytes_in, rebuilds;
    uint64_t trees_corrected; /* trees a rebuild found off (a bug; logged) */
};
void aae_totals(const struct node *n, struct aae_totals *out);

/* INFO: every shard's counters summed, "name:value\r\n" lines (exchanges
 * run, of them in sync, keys repaired, payload bytes sent and received,
 * tree rebuilds done, trees a rebuild found different from the kept ones:
 * 0 unless the store's hook missed a change). */
void aae_info(const struct node *n, struct buf *out);

#endif
