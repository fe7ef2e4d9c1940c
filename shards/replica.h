/* replica.h: a key's replicated state, as this shard's store holds it and as
 * the wire carries it (meta: the DVVSet meta encoding, dvv_encode_meta; body:
 * the values' bytes in clock order, dvv_encode_body; expire_at_ms: absolute
 * unix ms, 0 none). CONTRACT: written by the lead; the "replica" helper
 * implements shards/replica.c and may refine comments, not signatures.
 *
 * Every replication path applies one idempotent operation, replica_apply():
 * dvv_sync of the stored clock and the given one, stored (in memory and in
 * the log record, as store_put_versioned does) only when the result differs.
 * A plain (unversioned) entry reads as its implicit clock (cmd_ring.c: the
 * dot (actor', 1) made of the data epoch and the entry's cas), so keys
 * written before the cluster formed replicate too.
 * replica_versionize() is how a plain Redis write becomes a version on the
 * coordinator: after the command's handler ran on the coordinator's own
 * replica, the key's new state gets one new dot of this node's actor whose
 * context is the clock the key had before (`before`), so a SET supersedes
 * every version its coordinator had seen. A key the command removed (DEL,
 * GETDEL, expired) becomes a tombstone with that context.
 * Tombstones are reaped by replica_reap() (called from the shard's tick)
 * once tombstone-grace has passed since they were written.
 *
 * Threads: the owning shard's thread.
 * Errors: -ENOENT (no entry, not even a tombstone), -EINVAL (bytes that do
 *   not decode), -ENOMEM, -E2BIG (max-siblings), and the store's errors
 *   (-ENOSPC / -EIO: the log refuses writes; the coordinator reports them). */
#ifndef RINGKV_SHARDS_REPLICA_H
#define RINGKV_SHARDS_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct store;
struct node;

/* A key's state exported: meta and body appended to the caller's bufs. */
struct replica_state {
    struct buf meta;
    struct buf body;
    uint64_t expire_at_ms;
};
void replica_state_init(struct replica_state *st);
void replica_state_fini(struct replica_state *st);
void replica_state_clear(struct replica_state *st);

/* The stored state of key (tombstones included, expired keys excluded).
 * -ENOENT when the store has nothing for it. */
int replica_export(struct store *s, const struct node *n, const void *key, uint32_t klen,
                   uint64_t hash, struct replica_state *out);

/* Merges a received state into the store (dvv_sync). Returns 1 when the
 * store changed, 0 when it already held everything given. */
int replica_apply(struct store *s, const struct node *n, const void *key, uint32_t klen,
                  uint64_t hash, const void *meta, size_t meta_len, const void *body,
                  size_t body_len, uint64_t expire_at_ms);

/* True when two exported states hold the same versions (equal meta: the
 * encoding is canonical). A read repairs the replicas for which it is false
 * against the merged state. */
bool replica_same(const struct replica_state *a, const void *meta, size_t meta_len);

/* Gives the key's state after a plain write command one new dot covering
 * `before` (the export taken before the command ran; NULL or an empty meta:
 * the key had none). *changed is false when the command left the key as it
 * was (nothing to replicate). The new state is written to `after`. */
int replica_versionize(struct store *s, const struct node *n, const void *key, uint32_t klen,
                       uint64_t hash, const struct replica_state *before,
                       struct replica_state *after, bool *changed);

/* Deletes tombstones older than tombstone-grace (at most `budget` per call,
 * so a tick stays short); returns how many. */
uint32_t replica_reap(struct store *s, const struct node *n, int64_t now_unix_ms, uint32_t budget);

#endif
