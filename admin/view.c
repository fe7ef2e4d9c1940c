/* view.c: JSON and Prometheus renderings for the admin API (see view.h).
 * Field names follow the API (/v1/nodes, /v1/ring); ring hashes are
 * 16 hex digits, so that JSON readers with doubles lose no bits; counters
 * are JSON integers. The Prometheus text is built in a memstream. */
#include "view.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transfer.h"

const char *view_status_name(enum member_status s)
{
    switch (s) {
    case MEMBER_S_JOINING:
        return "joining";
    case MEMBER_S_UP:
        return "up";
    case MEMBER_S_LEAVING:
        return "leaving";
    case MEMBER_S_LEFT:
        return "left";
    default:
        return "down";
    }
}

static json_t *view_hash(uint64_t hash)
{
    char hex[17];
    snprintf(hex, sizeof hex, "%016" PRIx64, hash);
    return json_string(hex);
}

json_t *view_node(const struct member *m, const struct ring *ring)
{
    uint32_t idx = ring ? ring_member_index(ring, m->info.id) : RING_NONE;
    const struct gossip_info *i = &m->info;
    return json_pack("{s:s, s:s, s:s, s:o, s:s, s:b, s:I, s:s, s:I, s:I}", "id", i->id,
                     "address", i->client_addr, "cluster_address", i->cluster_addr,
                     "admin_address", i->admin_addr[0] ? json_string(i->admin_addr) : json_null(),
                     "status", view_status_name(member_status(m)), "admitted",
                     member_admitted(m), "weight", (json_int_t)i->weight, "zone", i->zone,
                     "partitions", (json_int_t)(idx == RING_NONE ? 0 : ring->owned[idx]),
                     "incarnation", (json_int_t)m->incarnation);
}

json_t *view_nodes(const struct member_table *t, const struct ring *ring)
{
    json_t *nodes = json_array();
    for (uint32_t i = 0; nodes && i < member_count(t); i++)
        if (json_array_append_new(nodes, view_node(member_at(t, i), ring)) != 0) {
            json_decref(nodes);
            return NULL;
        }
    return json_pack("{s:I, s:o*}", "epoch", (json_int_t)(ring ? ring->epoch : 0), "nodes",
                     nodes);
}

json_t *view_balance(const struct ring *ring)
{
    struct ring_balance b;
    ring_measure(ring, &b);
    return json_pack("{s:f, s:f, s:f, s:f, s:I, s:b}", "owned_dev_max", b.owned_dev_max,
                     "owned_dev_rel_max", b.owned_dev_rel_max, "replica_ratio_max",
                     b.replica_ratio_max, "replica_ratio_min", b.replica_ratio_min, "crowded",
                     (json_int_t)b.crowded, "zone_spread", ring->zone_spread);
}

static json_t *view_members(const struct ring *ring)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a && i < ring->n_members; i++) {
        const struct ring_member *m = &ring->members[i];
        json_array_append_new(a, json_pack("{s:s, s:I, s:s, s:I, s:I}", "id", m->id, "weight",
                                           (json_int_t)m->weight, "zone", m->zone, "owned",
                                           (json_int_t)ring->owned[i], "in_lists",
                                           (json_int_t)ring->in_lists[i]));
    }
    return a;
}

static json_t *view_owners(const struct ring *ring)
{
    json_t *owners = json_array();
    for (uint32_t p = 0; owners && p < ring->q; p++) {
        json_t *list = json_array();
        const uint32_t *pref = ring_pref(ring, p);
        for (uint32_t k = 0; list && k < ring->n; k++)
            json_array_append_new(list, json_string(ring->members[pref[k]].id));
        if (!list || json_array_append_new(owners, list) != 0) {
            json_decref(owners);
            return NULL;
        }
    }
    return owners;
}

/* [{"partition", "from", "to"(, "state")}] of the moves from `from` to `to`;
 * *count gets how many. */
static json_t *view_moves(const struct ring *from, const struct ring *to, const char *state,
                          uint32_t *count)
{
    struct ring_move *moves = malloc(sizeof *moves * from->q);
    json_t *list = json_array();
    if (!moves || !list) {
        free(moves);
        json_decref(list);
        return NULL;
    }
    uint32_t n = ring_plan(from, to, moves);
    for (uint32_t i = 0; i < n; i++) {
        json_t *mv = json_pack("{s:I, s:s, s:s}", "partition", (json_int_t)moves[i].partition,
                               "from", from->members[moves[i].from].id, "to",
                               to->members[moves[i].to].id);
        if (mv && state)
            json_object_set_new(mv, "state", json_string(state));
        json_array_append_new(list, mv);
    }
    free(moves);
    *count = n;
    return list;
}

json_t *view_ring(const struct ring *ring, const struct ring *prev)
{
    uint32_t n = 0;
    json_t *pending = prev ? view_moves(prev, ring, "pending", &n) : json_array();
    return json_pack("{s:I, s:o, s:I, s:I, s:o*, s:o*, s:o*, s:o*}", "epoch",
                     (json_int_t)ring->epoch, "hash", view_hash(ring->hash), "partitions",
                     (json_int_t)ring->q, "replicas", (json_int_t)ring->n, "owners",
                     view_owners(ring), "pending_transfers", pending, "balance",
                     view_balance(ring), "members", view_members(ring));
}

json_t *view_transfers(const struct transfer_stats *t)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
                     "s:I, s:I, s:I, s:I}",
                     "partitions_pending", (json_int_t)t->pending, "partitions_streaming",
                     (json_int_t)(t->streaming + t->settling), "partitions_done",
                     (json_int_t)t->done, "partitions_releasing",
                     (json_int_t)(t->releasing + t->dropping), "partitions_released",
                     (json_int_t)t->released, "bytes", (json_int_t)t->bytes, "keys",
                     (json_int_t)t->keys, "bytes_sent", (json_int_t)t->bytes_sent, "keys_sent",
                     (json_int_t)t->keys_sent, "keys_walked", (json_int_t)t->keys_walked,
                     "keys_dropped", (json_int_t)t->keys_dropped,
                     "cold_skipped", (json_int_t)t->cold_skipped, "handoff_checks",
                     (json_int_t)t->handoff_checks, "handoff_keys_sent",
                     (json_int_t)t->handoff_keys_sent, "resumable_bytes",
                     (json_int_t)t->resumable_bytes, "rate_bytes_per_sec",
                     (json_int_t)t->rate, "remaining_bytes", (json_int_t)t->remaining_bytes,
                     "eta_seconds", (json_int_t)t->eta_s, "ring_epoch",
                     (json_int_t)t->ring_epoch);
}

json_t *view_plan(const char *action, const char *id, const struct ring *from,
                  const struct ring *to)
{
    uint32_t n = 0;
    json_t *list = view_moves(from, to, NULL, &n);
    json_t *owned = json_object();
    if (!list || !owned) {
        json_decref(list);
        json_decref(owned);
        return NULL;
    }
    for (uint32_t i = 0; i < to->n_members; i++)
        json_object_set_new(owned, to->members[i].id, json_integer(to->owned[i]));
    return json_pack("{s:b, s:s, s:s, s:I, s:o, s:o, s:I, s:o, s:o*}", "dry_run", 1, "action",
                     action, "node", id, "epoch", (json_int_t)to->epoch, "hash",
                     view_hash(to->hash), "moves", list, "moved", (json_int_t)n, "owned", owned,
                     "balance", view_balance(to));
}

static json_t *view_number(double v)
{
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        return json_integer((json_int_t)v);
    return json_real(v);
}

json_t *view_stats(const struct view_metric *m, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < n; i++)
        if (json_object_set_new(o, m[i].key, view_number(m[i].value)) != 0) {
            json_decref(o);
            return NULL;
        }
    return o;
}

char *view_prometheus(const struct view_metric *m, size_t n)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(m[i].name, m[i - 1].name) != 0)
            fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", m[i].name, m[i].help, m[i].name,
                    m[i].type);
        if (m[i].label)
            fprintf(f, "%s{%s} %.17g\n", m[i].name, m[i].label, m[i].value);
        else
            fprintf(f, "%s %.17g\n", m[i].name, m[i].value);
    }
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}
