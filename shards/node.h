/* node.h: the process: its settings, its shards and where partitions live.
 * A node runs S shard threads. A key's slot (Redis Cluster's, keyhash.h)
 * falls in one of Q partitions, each 16384/Q consecutive slots; the
 * partition map says which shard owns each partition, so the partition ring
 * of the cluster layer can reassign partitions without touching the request
 * path. Today the map is fixed at start-up (partition p on shard p mod S).
 * Keys with the same {hash tag} share a slot, hence a shard.
 *
 * Threads: node_create() and node_run() on the main thread. After start-up
 *   struct node is immutable and every thread reads it freely; the fields that
 *   change (stop flag, client count) are atomics, named as such. What the
 *   admin thread learns of the cluster reaches the shards as snapshots in
 *   `snapshots` (snapshot.h: shard i reads as reader i, without locks).
 * Errors: node_create() returns NULL with a one-line reason logged; the
 *   caller exits non-zero. */
#ifndef RINGKV_SHARDS_NODE_H
#define RINGKV_SHARDS_NODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cfg.h"
#include "keyhash.h"
#include "persist.h"

struct shard;
struct cmd_stats;
struct admin;
struct snapshot_cell;

struct node {
    const struct cfg *cfg;       /* the live settings change (CONFIG SET, cfg.h) */
    uint32_t nshards;
    struct shard **shards;
    uint32_t npartitions;        /* Q, a power of two, at most KEYHASH_SLOTS */
    uint32_t slot_shift;         /* a slot's partition is slot >> slot_shift */
    uint32_t partition_fn;       /* enum keyhash_fn: slot (xxh3 in upgrade tests only) */
    uint16_t *partition_shard;   /* partition -> owning shard */
    int left_cluster;            /* atomic: 1 once this node has left a cluster
                                    of several (DELETE /v1/nodes) until it joins
                                    one again: it serves no key (cmd.h
                                    cmd_node_left; the shards take it with the
                                    ring they serve by: shard.h left_cluster) */
    int64_t start_ms;            /* unix ms at start-up */
    struct persist_layout layout; /* what the data directory held at start-up */
    int dir_lock_fd;             /* <dir>/LOCK, flock()ed while the node lives
                                    (dirlock.h); -1 when dir keeps nothing */
    char run_id[41];
    pthread_mutex_t launch;      /* held by main while it creates the shard threads;
                                    each waits for it before doing anything */
    bool launch_failed;          /* under launch: a thread could not be created,
                                    the others return at once */
    pthread_barrier_t ready;     /* shards and main: every ring and store exists */
    pthread_barrier_t serving;   /* shards and main: the data directory's manifest
                                    is durable; shards may serve */
    pthread_barrier_t stopped;   /* shards: every loop has ended */
    int stop_flag;               /* atomic: set by the signal watcher, read by shards */
    int64_t clients;             /* atomic: connected clients, all shards (maxclients) */
    int log_failing;             /* atomic: shards whose data log cannot persist now;
                                    writes are refused while > 0 (persist.h) */
    int log_over_cap;            /* atomic: shards whose log holds more than
                                    PERSIST_MAX_BUFFERED bytes not durable yet:
                                    clients that write pause (persist.h) */
    uint64_t log_cap_releases;   /* atomic: times a shard's log got back under
                                    it (paused writers are looked at then) */
    uint64_t log_unwritten;      /* atomic: records the shards could not make
                                    durable when stopping (persist_finish) */
    struct cmd_stats *cmd_stats; /* per-shard command and error counters (cmd_stats.h) */
    struct admin *admin;         /* the admin thread's state (admin.h) */
    struct snapshot_cell *snapshots; /* the cluster as admin last published it, for the
                                        shards (snapshot.h; reader i = shard i) */
    int is_serving;              /* atomic: 1 once the shards serve (admin's health) */
    int monitors;                /* atomic: MONITOR clients of all shards (monitor.h) */
    uint64_t settings_gen;       /* atomic: CONFIG SETs so far (shard_refresh_settings) */
};

/* Builds the node and its shards (rings, listeners). NULL on failure. */
struct node *node_create(const struct cfg *cfg);
/* Runs the shards until SIGTERM or SIGINT, then stops them and returns 0.
 * A negative errno when the node could not start (logged); every shard
 * thread has ended by then, so node_destroy() may follow either way. */
int node_run(struct node *n);
void node_destroy(struct node *n);

/* The partition of a key of slot `slot` (keyhash_slot) and hash `hash`
 * (keyhash(key, len), read only under the xxh3 function of upgrade tests).
 * Any thread. */
static inline uint32_t node_partition_of_slot(const struct node *n, uint32_t slot, uint64_t hash)
{
    if (__builtin_expect(n->partition_fn == KEYHASH_FN_XXH3, 0))
        return keyhash_partition(hash, n->npartitions);
    return slot >> n->slot_shift;
}

/* The partition of a key: that of its slot (hash as above). Any thread. */
static inline uint32_t node_partition_of(const struct node *n, const void *key, size_t len,
                                         uint64_t hash)
{
    if (__builtin_expect(n->partition_fn == KEYHASH_FN_XXH3, 0))
        return keyhash_partition(hash, n->npartitions);
    return keyhash_slot(key, len) >> n->slot_shift;
}

/* The shard that owns a key (hash as above). Any thread. */
static inline uint32_t node_shard_of(const struct node *n, const void *key, size_t len,
                                     uint64_t hash)
{
    return n->partition_shard[node_partition_of(n, key, len, hash)];
}

#endif
