/* view.h: what the admin API shows, as JSON (jansson) and Prometheus text.
 * Pure functions of the membership table, the ring and counters gathered by
 * the caller: no I/O and no clock, so unit tests build them from fixtures.
 * Threads: any; the inputs must not change during the call (the admin thread
 *   owns them).
 * Ownership: returned json_t are new references (json_decref); returned
 *   text is malloc'd (free). NULL means out of memory. */
#ifndef RINGKV_ADMIN_VIEW_H
#define RINGKV_ADMIN_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "member.h"
#include "ring.h"

/* One sample: a JSON field (key) and a Prometheus series (name{label}). Samples
 * of one name are consecutive; HELP and TYPE come from the first of them. */
struct view_metric {
    const char *key;   /* JSON field in /v1/stats */
    const char *name;  /* Prometheus name: ringkv_... */
    const char *type;  /* "counter" or "gauge" */
    const char *help;
    const char *label; /* NULL, or one label pair as Prometheus writes it: status="up" */
    double value;
};

/* "up", "down", "joining", "leaving", "left". */
const char *view_status_name(enum member_status s);

/* One member as GET /v1/nodes lists it ("admitted": member_admitted());
 * partitions from ring (0 if absent). */
json_t *view_node(const struct member *m, const struct ring *ring);
/* {"epoch", "nodes": [view_node...]}. */
json_t *view_nodes(const struct member_table *t, const struct ring *ring);
/* {"owned_dev_max", ...}: ring_measure()'s figures. */
json_t *view_balance(const struct ring *ring);
/* {"epoch", "hash", "partitions", "replicas", "owners", "pending_transfers",
 * "balance", "members"}; pending_transfers: the moves from prev (the ring
 * this one replaced; NULL: none) as {"partition", "from", "to", "state":
 * "pending"} with node ids. */
json_t *view_ring(const struct ring *ring, const struct ring *prev);
struct transfer_stats;
/* {"partitions_pending", "partitions_streaming", "partitions_done",
 * "partitions_releasing", "partitions_released", "bytes", "keys",
 * "bytes_sent", "keys_sent", "keys_dropped", "cold_skipped",
 * "handoff_checks", "handoff_keys_sent",
 * "resumable_bytes", "rate_bytes_per_sec", "remaining_bytes", "eta_seconds",
 * "ring_epoch"}: a node's transfer figures (shards/transfer.h; streaming
 * counts settling ones, releasing dropping ones; ring_epoch is the oldest
 * ring a shard of the node serves by). */
json_t *view_transfers(const struct transfer_stats *t);
/* The plan of a change (a join or a leave, named by action, of the member
 * whose id is given): {"dry_run": true, "action", "node", "epoch", "hash",
 * "moves": [{"partition", "from", "to"}], "moved", "owned": {id: count},
 * "balance"}. */
json_t *view_plan(const char *action, const char *id, const struct ring *from,
                  const struct ring *to);
/* {key: value...} of the samples, integers where the value is one. */
json_t *view_stats(const struct view_metric *m, size_t n);
/* Prometheus text format 0.0.4: HELP and TYPE per name, one line per sample. */
char *view_prometheus(const struct view_metric *m, size_t n);

#endif
