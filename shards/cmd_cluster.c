/* cmd_cluster.c: the ring, told as Redis Cluster tells its slots (see
 * cmd_cluster.h), and the connection's CONSISTENCY.
 * Every answer about the cluster is built from one snapshot (snapshot.h),
 * read inside this shard's ck_epoch section, so it is one consistent view:
 * no lock, no message to the admin thread.
 * The view (struct cluster_view): per partition, the first
 * cluster_list_len() nodes of its preference list (the key's replicas,
 * min(replicas, list length), as the coordinator counts them), reordered
 * so that the first node failure detection does not report down (nor left)
 * comes first: that one is the partition's "master" (the node the
 * coordinator forwards to), the others its replicas, in list order. When every node of a list is down, the owner stays master, so that
 * all 16384 slots are always covered (Redis too keeps a failed master listed
 * while no replica took over). A ring member the member table does not hold
 * (never expected) is left out; a list left empty names this node, which
 * serves any key by forwarding.
 * From the view:
 * - CLUSTER SLOTS: one entry per run of adjacent partitions with the same
 *   list (start, end, master, live replicas; down replicas left out, as
 *   Redis leaves failed ones out). The runs this node is master of come
 *   first (Redis lists by slot; order means nothing to the protocol): a
 *   client that keeps the nodes in the order it met them, and asks them
 *   again in that order when a node fails, asks this one, which answered,
 *   first. redis-py 4.3 (Debian 12's) needs that: its refresh gives up at
 *   the first listed node it cannot reconnect to, so a dead node met first
 *   kept it from ever seeing the new topology. Then come runs whose master
 *   was already named: redis-py also takes a node's role from the entry
 *   it first meets it in, and sends SCAN (as FLUSHALL) to every node it
 *   takes for a primary, over data connections that are not cluster-aware,
 *   each of which answers for the whole cluster (keyspace.h); so each node
 *   met first as a master more returns every key once more. Met first as
 *   replicas where possible, the other nodes leave one primary (this node)
 *   whenever every node shares a list with it or with one met before.
 * - CLUSTER SHARDS: one shard per distinct list (its runs' slot pairs, then
 *   every node of the list with role and health, down ones "fail").
 * - CLUSTER NODES: one line per member not left. A member that is master of
 *   some partition is "master" with those slots; one that is master of none
 *   is "slave" of the master of the first partition whose list holds it (in
 *   ringkv it replicates several masters; clients only read this to find
 *   masters); one in no list is a master without slots. Down members are
 *   "fail" with link "disconnected". The config epoch is the ring's; ping
 *   sent is 0 and pong received is now for live members (failure detection
 *   has heard from them within its timeouts), 0 for down ones.
 * - CLUSTER INFO: ok while every partition's master is live; cluster_size
 *   counts the distinct masters, as Redis counts masters serving slots.
 * An address with a wildcard host (bind 0.0.0.0 or ::) is given as the
 * address the client reached for this node, and as "" (Redis's unknown
 * address; clients then use the host they asked) for others.
 * - CLUSTER COUNTKEYSINSLOT / GETKEYSINSLOT: checked here, answered by the
 *   shard that owns the slot's partition (cmd_keys.h cmd_slot_keys_shard)
 *   from what this node stores.
 * Cold paths: the view is allocated per command (-OOM when it cannot be). */
#include "cmd_cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <mimalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cfg.h"
#include "cmd_keys.h"
#include "cmd_string.h"
#include "conn.h"
#include "keyhash.h"
#include "node.h"
#include "num.h"
#include "peerlink.h"
#include "snapshot.h"

#define CLUSTER_OOM "OOM no memory for the cluster's topology"

/* Preference list nodes CLUSTER answers name: the key's replicas, as the
 * coordinator counts them (coord.h: N_eff = min(replicas, list length)). */
static uint32_t cluster_list_len(const struct cmd_ctx *c, const struct ring *ring)
{
    uint32_t want = (uint32_t)c->node->cfg->replicas;
    return want < ring->n ? want : ring->n;
}

struct cluster_view {
    const struct snapshot *s;
    uint32_t q;            /* partitions */
    uint32_t slots_per;    /* slots per partition */
    uint32_t n;            /* room per list */
    uint32_t *lists;       /* q * n indexes into s->members: master first */
    uint8_t *len;          /* per partition: nodes in its list (1 .. n) */
};

static bool cluster_serves(const struct snapshot *s, uint32_t m)
{
    return s->members[m].status != MEMBER_S_DOWN && s->members[m].status != MEMBER_S_LEFT;
}

static const uint32_t *view_list(const struct cluster_view *v, uint32_t p)
{
    return v->lists + (size_t)p * v->n;
}

/* Fills v from s; -ENOMEM. Free with view_fini(). */
static int view_init(struct cluster_view *v, const struct cmd_ctx *c, const struct snapshot *s)
{
    const struct ring *ring = s->ring;
    *v = (struct cluster_view){.s = s, .q = ring->q, .slots_per = KEYHASH_SLOTS / ring->q};
    uint32_t take = cluster_list_len(c, ring);
    v->n = take ? take : 1; /* a list left empty names this node */
    v->lists = mi_malloc((size_t)v->q * v->n * sizeof *v->lists);
    v->len = mi_malloc(v->q);
    if (!v->lists || !v->len) {
        mi_free(v->lists);
        mi_free(v->len);
        return -ENOMEM;
    }
    for (uint32_t p = 0; p < v->q; p++) {
        const uint32_t *pref = ring_pref(ring, p);
        uint32_t *out = v->lists + (size_t)p * v->n, k = 0, master = UINT32_MAX;
        for (uint32_t i = 0; i < take; i++) {
            uint32_t m = s->by_ring[pref[i]];
            if (m == RING_NONE)
                continue;
            if (master == UINT32_MAX && cluster_serves(s, m))
                master = k;
            out[k++] = m;
        }
        if (k == 0)
            out[k++] = s->self;
        if (master != UINT32_MAX && master > 0) { /* master first, the rest in order */
            uint32_t m = out[master];
            memmove(out + 1, out, master * sizeof *out);
            out[0] = m;
        }
        v->len[p] = (uint8_t)k;
    }
    return 0;
}

static void view_fini(struct cluster_view *v)
{
    mi_free(v->lists);
    mi_free(v->len);
}

static bool view_same(const struct cluster_view *v, uint32_t p, uint32_t r)
{
    return v->len[p] == v->len[r] &&
           memcmp(view_list(v, p), view_list(v, r), v->len[p] * sizeof *v->lists) == 0;
}

/* A run of adjacent partitions [first, last] with one list. */
struct cluster_run {
    uint32_t first, last;
};

/* The runs of adjacent partitions whose lists are equal (whole lists, or
 * only masters when by_master), in *out (mi_free it); their count, or
 * -ENOMEM. */
static int64_t view_runs(const struct cluster_view *v, bool by_master, struct cluster_run **out)
{
    struct cluster_run *runs = mi_malloc((size_t)v->q * sizeof *runs);
    if (!runs)
        return -ENOMEM;
    uint32_t n = 0;
    for (uint32_t p = 0; p < v->q; p++) {
        bool same = p > 0 && (by_master ? view_list(v, p)[0] == view_list(v, p - 1)[0]
                                        : view_same(v, p, p - 1));
        if (same)
            runs[n - 1].last = p;
        else
            runs[n++] = (struct cluster_run){p, p};
    }
    *out = runs;
    return n;
}

/* The snapshot for this shard, or NULL after an error reply. End the read
 * with snapshot_read_end(c->node->snapshots, c->shard_id). */
static const struct snapshot *cluster_read(struct cmd_ctx *c)
{
    const struct snapshot *s = snapshot_read_begin(c->node->snapshots, c->shard_id);
    if (!s) {
        snapshot_read_end(c->node->snapshots, c->shard_id);
        resp_write_error(c->out, "ERR the cluster state is not known yet");
    }
    return s;
}

/* The snapshot and its view, or false after an error reply (nothing to end
 * or free then). On true, end with cluster_view_end(). */
static bool cluster_view_begin(struct cmd_ctx *c, struct cluster_view *v)
{
    const struct snapshot *s = cluster_read(c);
    if (!s)
        return false;
    if (view_init(v, c, s) != 0) {
        snapshot_read_end(c->node->snapshots, c->shard_id);
        resp_write_error(c->out, CLUSTER_OOM);
        return false;
    }
    return true;
}

static void cluster_view_end(struct cmd_ctx *c, struct cluster_view *v)
{
    view_fini(v);
    snapshot_read_end(c->node->snapshots, c->shard_id);
}

/* A member's address for clients: host (without [] for IPv6) and port. */
struct cluster_addr {
    char host[64];
    int port;
};

/* Splits "host:port" or "[v6]:port"; a wildcard host becomes the host of
 * `reached` ("ip:port", the address the client connected to) for this
 * node, else "". */
static void cluster_addr_of(const char *addr, bool is_self, const char *reached,
                            struct cluster_addr *a)
{
    const char *colon = strrchr(addr, ':');
    size_t hl = colon ? (size_t)(colon - addr) : strlen(addr);
    int64_t port = 0;
    if (colon && !num_parse_i64(colon + 1, strlen(colon + 1), &port))
        port = 0;
    if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') {
        addr++;
        hl -= 2;
    }
    a->port = (int)port;
    snprintf(a->host, sizeof a->host, "%.*s", (int)hl, addr);
    if (strcmp(a->host, "0.0.0.0") != 0 && strcmp(a->host, "::") != 0 && a->host[0])
        return;
    a->host[0] = '\0';
    if (is_self && reached) {
        struct cluster_addr r;
        cluster_addr_of(reached, false, NULL, &r);
        memcpy(a->host, r.host, sizeof a->host);
    }
}

/* What the topology commands share: marks the connection cluster-aware,
 * reads the snapshot, builds its view and its runs (view_runs()). Their
 * count, or -1 after an error reply; on success end with
 * cluster_topology_end(). */
static int64_t cluster_topology_begin(struct cmd_ctx *c, bool by_master, struct cluster_view *v,
                                      struct cluster_run **runs)
{
    if (c->conn)
        c->conn->cluster_aware = true;
    if (!cluster_view_begin(c, v))
        return -1;
    int64_t n = view_runs(v, by_master, runs);
    if (n < 0) {
        cluster_view_end(c, v);
        resp_write_error(c->out, CLUSTER_OOM);
    }
    return n;
}

static void cluster_topology_end(struct cmd_ctx *c, struct cluster_view *v,
                                 struct cluster_run *runs)
{
    mi_free(runs);
    cluster_view_end(c, v);
}

static void cluster_member_addr(const struct cmd_ctx *c, const struct snapshot *s, uint32_t m,
                                struct cluster_addr *a)
{
    cluster_addr_of(s->members[m].client_addr, m == s->self, c->conn ? c->conn->laddr : NULL, a);
}

/* CLUSTER SLOTS: a node as [ip, port, id, {}] (the last: Redis 7's map of
 * other endpoints, empty). */
static void slots_node(struct cmd_ctx *c, const struct snapshot *s, uint32_t m)
{
    struct cluster_addr a;
    cluster_member_addr(c, s, m, &a);
    resp_write_array_len(c->out, 4);
    resp_write_bulk_str(c->out, a.host);
    resp_write_int(c->out, a.port);
    resp_write_bulk_str(c->out, s->members[m].id);
    resp_write_map_len(c->out, c->proto, 0);
}

/* One CLUSTER SLOTS entry: the run's slot range, its master, its live
 * replicas. */
static void slots_run(struct cmd_ctx *c, const struct cluster_view *v, const struct cluster_run *run)
{
    const uint32_t *list = view_list(v, run->first);
    uint32_t len = v->len[run->first], live = 1;
    for (uint32_t k = 1; k < len; k++)
        live += cluster_serves(v->s, list[k]);
    resp_write_array_len(c->out, 2 + live);
    resp_write_int(c->out, (int64_t)run->first * v->slots_per);
    resp_write_int(c->out, (int64_t)(run->last + 1) * v->slots_per - 1);
    for (uint32_t k = 0; k < len; k++)
        if (k == 0 || cluster_serves(v->s, list[k]))
            slots_node(c, v->s, list[k]);
}

/* Writes run i's entry and marks it done and its nodes named (down
 * replicas too: harmless). */
static void slots_emit(struct cmd_ctx *c, const struct cluster_view *v,
                       const struct cluster_run *runs, size_t i, uint8_t *seen, uint8_t *done)
{
    const uint32_t *list = view_list(v, runs[i].first);
    slots_run(c, v, &runs[i]);
    for (uint32_t k = 0; k < v->len[runs[i].first]; k++)
        seen[list[k]] = 1;
    done[i] = 1;
}

/* CLUSTER SLOTS's order (see the top): this node's runs first, then, as
 * long as there are some, runs whose master was already named (in any
 * role), each time round; when none is left of those, the next run in
 * slot order. seen (a flag per member) and done (per run) start zeroed. */
static void slots_in_order(struct cmd_ctx *c, const struct cluster_view *v,
                           const struct cluster_run *runs, size_t n, uint8_t *seen, uint8_t *done)
{
    size_t left = n;
    for (bool self_pass = true; left > 0; self_pass = false) {
        size_t before = left;
        for (size_t i = 0; i < n; i++) {
            uint32_t master = view_list(v, runs[i].first)[0];
            if (!done[i] && (self_pass ? master == v->s->self : seen[master])) {
                slots_emit(c, v, runs, i, seen, done);
                left--;
            }
        }
        if (left == before && !self_pass) { /* a master not named yet: the first such run */
            size_t i = 0;
            while (done[i])
                i++;
            slots_emit(c, v, runs, i, seen, done);
            left--;
        }
    }
}

/* A node that left its cluster serves no slot (cmd.c): true, with an
 * empty map written, for CLUSTER SLOTS and SHARDS. */
static bool cluster_left_maps_nothing(struct cmd_ctx *c)
{
    if (!cmd_node_left(c->node))
        return false;
    resp_write_array_len(c->out, 0);
    return true;
}

void cmd_cluster_slots(struct cmd_ctx *c)
{
    if (cluster_left_maps_nothing(c))
        return;
    struct cluster_view v;
    struct cluster_run *runs;
    int64_t n = cluster_topology_begin(c, false, &v, &runs);
    if (n < 0)
        return;
    uint8_t *seen = mi_calloc(v.s->n_members ? v.s->n_members : 1, 1);
    uint8_t *done = mi_calloc(n ? (size_t)n : 1, 1);
    if (!seen || !done) {
        resp_write_error(c->out, CLUSTER_OOM);
    } else {
        resp_write_array_len(c->out, (size_t)n);
        slots_in_order(c, &v, runs, (size_t)n, seen, done);
    }
    mi_free(seen);
    mi_free(done);
    cluster_topology_end(c, &v, runs);
}

/* qsort_r order of runs: by their lists, then by place. */
static int shards_cmp(const void *a, const void *b, void *arg)
{
    const struct cluster_run *x = a, *y = b;
    const struct cluster_view *v = arg;
    uint32_t lx = v->len[x->first], ly = v->len[y->first];
    if (lx != ly)
        return lx < ly ? -1 : 1;
    int d = memcmp(view_list(v, x->first), view_list(v, y->first), lx * sizeof *v->lists);
    if (d)
        return d;
    return x->first < y->first ? -1 : x->first > y->first;
}

/* CLUSTER SHARDS: a node's map, as Redis 7.0 writes it. */
static void shards_node(struct cmd_ctx *c, const struct snapshot *s, uint32_t m, bool is_master)
{
    struct cluster_addr a;
    cluster_member_addr(c, s, m, &a);
    resp_write_map_len(c->out, c->proto, 7);
    resp_write_bulk_str(c->out, "id");
    resp_write_bulk_str(c->out, s->members[m].id);
    resp_write_bulk_str(c->out, "port");
    resp_write_int(c->out, a.port);
    resp_write_bulk_str(c->out, "ip");
    resp_write_bulk_str(c->out, a.host);
    resp_write_bulk_str(c->out, "endpoint");
    resp_write_bulk_str(c->out, a.host);
    resp_write_bulk_str(c->out, "role");
    resp_write_bulk_str(c->out, is_master ? "master" : "replica");
    resp_write_bulk_str(c->out, "replication-offset");
    resp_write_int(c->out, 0);
    resp_write_bulk_str(c->out, "health");
    resp_write_bulk_str(c->out, cluster_serves(s, m) ? "online" : "fail");
}

/* One shard: runs[0 .. n) share a list. */
static void shards_one(struct cmd_ctx *c, const struct cluster_view *v,
                       const struct cluster_run *runs, size_t n)
{
    resp_write_map_len(c->out, c->proto, 2);
    resp_write_bulk_str(c->out, "slots");
    resp_write_array_len(c->out, 2 * n);
    for (size_t i = 0; i < n; i++) {
        resp_write_int(c->out, (int64_t)runs[i].first * v->slots_per);
        resp_write_int(c->out, (int64_t)(runs[i].last + 1) * v->slots_per - 1);
    }
    const uint32_t *list = view_list(v, runs[0].first);
    uint32_t len = v->len[runs[0].first];
    resp_write_bulk_str(c->out, "nodes");
    resp_write_array_len(c->out, len);
    for (uint32_t k = 0; k < len; k++)
        shards_node(c, v->s, list[k], k == 0);
}

void cmd_cluster_shards(struct cmd_ctx *c)
{
    if (cluster_left_maps_nothing(c))
        return;
    struct cluster_view v;
    struct cluster_run *runs;
    int64_t n = cluster_topology_begin(c, false, &v, &runs);
    if (n < 0)
        return;
    qsort_r(runs, (size_t)n, sizeof *runs, shards_cmp, &v);
    size_t shards = 0;
    for (int64_t i = 0; i < n; i++)
        shards += i == 0 || !view_same(&v, runs[i].first, runs[i - 1].first);
    resp_write_array_len(c->out, shards);
    for (int64_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && view_same(&v, runs[j].first, runs[i].first); j++)
            ;
        shards_one(c, &v, runs + i, (size_t)(j - i));
    }
    cluster_topology_end(c, &v, runs);
}

/* CLUSTER NODES: what each member is. */
struct nodes_role {
    uint32_t *first_master; /* per member: index of its first run as master, or UINT32_MAX */
    uint32_t *replica_of;   /* per member: the master of the first list holding it, or
                               UINT32_MAX */
};

static void nodes_line(struct cmd_ctx *c, struct buf *b, const struct cluster_view *v,
                       uint32_t m, const struct cluster_run *runs, size_t n_runs,
                       const struct nodes_role *r, int64_t now_ms)
{
    const struct snapshot *s = v->s;
    const struct snapshot_member *sm = &s->members[m];
    struct cluster_addr a, bus;
    cluster_member_addr(c, s, m, &a);
    cluster_addr_of(sm->cluster_addr, false, NULL, &bus);
    bool live = cluster_serves(s, m);
    bool is_master = r->first_master[m] != UINT32_MAX || r->replica_of[m] == UINT32_MAX;
    buf_printf(b, "%s %s:%d@%d %s%s%s ", sm->id, a.host, a.port, bus.port,
               m == s->self ? "myself," : "", is_master ? "master" : "slave",
               live ? "" : ",fail");
    if (is_master)
        buf_append_str(b, "-");
    else
        buf_append_str(b, s->members[r->replica_of[m]].id);
    buf_printf(b, " 0 %" PRId64 " %" PRIu64 " %s", live ? now_ms : 0, s->ring->epoch,
               live ? "connected" : "disconnected");
    for (size_t i = r->first_master[m]; i < n_runs && r->first_master[m] != UINT32_MAX; i++) {
        if (view_list(v, runs[i].first)[0] != m)
            continue;
        uint32_t lo = runs[i].first * v->slots_per, hi = (runs[i].last + 1) * v->slots_per - 1;
        if (lo == hi)
            buf_printf(b, " %u", lo);
        else
            buf_printf(b, " %u-%u", lo, hi);
    }
    buf_append_str(b, "\n");
}

static int64_t cluster_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Fills r for v's members from the runs by master; -ENOMEM. */
static int nodes_roles(const struct cluster_view *v, const struct cluster_run *runs,
                       size_t n_runs, struct nodes_role *r)
{
    uint32_t members = v->s->n_members;
    r->first_master = mi_malloc(members * sizeof *r->first_master);
    r->replica_of = mi_malloc(members * sizeof *r->replica_of);
    if (!r->first_master || !r->replica_of) {
        mi_free(r->first_master);
        mi_free(r->replica_of);
        return -ENOMEM;
    }
    memset(r->first_master, 0xff, members * sizeof *r->first_master);
    memset(r->replica_of, 0xff, members * sizeof *r->replica_of);
    for (size_t i = n_runs; i-- > 0;)
        r->first_master[view_list(v, runs[i].first)[0]] = (uint32_t)i;
    for (uint32_t p = v->q; p-- > 0;) {
        const uint32_t *list = view_list(v, p);
        for (uint32_t k = 1; k < v->len[p]; k++)
            r->replica_of[list[k]] = list[0];
    }
    return 0;
}

void cmd_cluster_nodes(struct cmd_ctx *c)
{
    struct cluster_view v;
    struct cluster_run *runs;
    struct nodes_role r;
    int64_t n = cluster_topology_begin(c, true, &v, &runs);
    if (n < 0)
        return;
    if (nodes_roles(&v, runs, (size_t)n, &r) != 0) {
        cluster_topology_end(c, &v, runs);
        resp_write_error(c->out, CLUSTER_OOM);
        return;
    }
    struct buf b;
    buf_init(&b);
    int64_t now_ms = cluster_now_ms();
    if (cmd_node_left(c->node)) /* it serves no slot (cmd.c): itself, with none */
        nodes_line(c, &b, &v, v.s->self, runs, 0, &r, now_ms);
    else
        for (uint32_t m = 0; m < v.s->n_members; m++)
            if (v.s->members[m].status != MEMBER_S_LEFT)
                nodes_line(c, &b, &v, m, runs, (size_t)n, &r, now_ms);
    mi_free(r.first_master);
    mi_free(r.replica_of);
    cluster_topology_end(c, &v, runs);
    resp_write_verbatim(c->out, c->proto, b.data ? b.data : "", b.len);
    buf_fini(&b);
}

/* What CLUSTER INFO and INFO's cluster section say, from one view. */
struct cluster_figures {
    uint32_t slots_ok;   /* slots whose master is live */
    uint32_t masters;    /* distinct masters */
    uint32_t known;      /* members not left */
    uint32_t self_owned; /* partitions this node owns (ring owner) */
};

/* Fills f from v; -ENOMEM. */
static int cluster_figures(const struct cluster_view *v, struct cluster_figures *f)
{
    const struct snapshot *s = v->s;
    *f = (struct cluster_figures){0};
    bool *is_master = mi_zalloc(s->n_members * sizeof *is_master);
    if (!is_master)
        return -ENOMEM;
    for (uint32_t p = 0; p < v->q; p++) {
        uint32_t master = view_list(v, p)[0];
        f->slots_ok += cluster_serves(s, master) ? v->slots_per : 0;
        f->masters += !is_master[master];
        is_master[master] = true;
    }
    mi_free(is_master);
    f->known = s->n_members - s->counts[MEMBER_S_LEFT];
    uint32_t self = s->members[s->self].ring_index;
    f->self_owned = self == RING_NONE ? 0 : s->ring->owned[self];
    return 0;
}

/* Redis Cluster's fields in its order: every slot is assigned (the ring has
 * an owner for each partition); a slot is ok while its master is live (a
 * node of its list is not down); cluster_size counts the masters; both
 * epochs are the ring's, which every node agrees on. The message counters
 * Redis ends with live on the admin thread (GET /v1/stats); ringkv's own
 * lines follow. */
void cmd_cluster_info(struct cmd_ctx *c)
{
    struct cluster_view v;
    if (!cluster_view_begin(c, &v))
        return;
    struct cluster_figures f;
    if (cluster_figures(&v, &f) != 0) {
        cluster_view_end(c, &v);
        resp_write_error(c->out, CLUSTER_OOM);
        return;
    }
    const struct snapshot *s = v.s;
    const struct ring *ring = s->ring;
    bool is_left = cmd_node_left(c->node); /* it serves no slot, as CLUSTER SLOTS says */
    struct buf b;
    buf_init(&b);
    buf_printf(&b,
               "cluster_state:%s\r\ncluster_slots_assigned:%u\r\ncluster_slots_ok:%u\r\n"
               "cluster_slots_pfail:0\r\ncluster_slots_fail:%u\r\ncluster_known_nodes:%u\r\n"
               "cluster_size:%u\r\ncluster_current_epoch:%" PRIu64 "\r\n"
               "cluster_my_epoch:%" PRIu64 "\r\nringkv_ring_hash:%016" PRIx64 "\r\n"
               "ringkv_partitions:%u\r\nringkv_replicas:%u\r\nringkv_partitions_owned:%u\r\n"
               "ringkv_nodes_up:%u\r\nringkv_nodes_down:%u\r\nringkv_nodes_joining:%u\r\n"
               "ringkv_nodes_leaving:%u\r\n",
               f.slots_ok == KEYHASH_SLOTS && !is_left ? "ok" : "fail",
               is_left ? 0 : KEYHASH_SLOTS, is_left ? 0 : f.slots_ok,
               is_left ? 0 : KEYHASH_SLOTS - f.slots_ok, f.known, is_left ? 0 : f.masters,
               ring->epoch, ring->epoch,
               ring->hash, ring->q, ring->n, f.self_owned, s->counts[MEMBER_S_UP],
               s->counts[MEMBER_S_DOWN], s->counts[MEMBER_S_JOINING],
               s->counts[MEMBER_S_LEAVING]);
    cluster_view_end(c, &v);
    resp_write_verbatim(c->out, c->proto, b.data ? b.data : "", b.len);
    buf_fini(&b);
}

/* INFO's lines of the peer links (peerlink.h), summed over the shards. */
static void cluster_peer_links(struct cmd_ctx *c, struct buf *b)
{
    struct peerlink_stats t = {0};
    for (uint32_t i = 0; i < c->node->nshards; i++) {
        struct peerlink_stats one;
        peerlink_read_stats(c->node->shards[i], &one);
        t.links_up += one.links_up;
        t.dials += one.dials;
        t.handshake_failures += one.handshake_failures;
        t.msgs_out += one.msgs_out;
        t.msgs_in += one.msgs_in;
        t.bytes_out += one.bytes_out;
        t.bytes_in += one.bytes_in;
    }
    buf_printf(b,
               "peer_links_up:%" PRIu64 "\r\npeer_links_dials:%" PRIu64
               "\r\npeer_links_handshake_failures:%" PRIu64 "\r\npeer_links_msgs_out:%" PRIu64
               "\r\npeer_links_msgs_in:%" PRIu64 "\r\npeer_links_bytes_out:%" PRIu64
               "\r\npeer_links_bytes_in:%" PRIu64 "\r\n",
               t.links_up, t.dials, t.handshake_failures, t.msgs_out, t.msgs_in, t.bytes_out,
               t.bytes_in);
}

/* INFO's cluster section: cluster_enabled:1 always, a cluster of one
 * included, so that Redis Cluster clients work against any node; then
 * ringkv's lines from the snapshot. */
void cmd_cluster_info_section(struct cmd_ctx *c, struct buf *b)
{
    buf_printf(b, "# Cluster\r\ncluster_enabled:1\r\n");
    const struct snapshot *s = snapshot_read_begin(c->node->snapshots, c->shard_id);
    struct cluster_view v;
    struct cluster_figures f;
    if (s && view_init(&v, c, s) == 0) {
        if (cluster_figures(&v, &f) == 0)
            buf_printf(b,
                       "ringkv_node_id:%s\r\nringkv_known_nodes:%u\r\nringkv_ring_epoch:%" PRIu64
                       "\r\nringkv_ring_hash:%016" PRIx64 "\r\nringkv_partitions_owned:%u\r\n",
                       s->members[s->self].id, f.known, s->ring->epoch, s->ring->hash,
                       f.self_owned);
        view_fini(&v);
    }
    snapshot_read_end(c->node->snapshots, c->shard_id);
    cluster_peer_links(c, b);
    buf_printf(b, "\r\n");
}

/* KEYSLOT answers the slot that places the key on this node too
 * (node_partition_of), so a client can check that it and ringkv agree. */
void cmd_cluster_keyslot(struct cmd_ctx *c)
{
    resp_write_int(c->out, keyhash_slot(c->argv[2].ptr, c->argv[2].len));
}

/* COUNTKEYSINSLOT slot and GETKEYSINSLOT slot count: checked here (Redis's
 * errors), counted by the shard that owns the slot's partition
 * (cmd_slot_keys_shard): the keys this node holds, as a Redis node counts
 * its own. */
static void cluster_slot_keys(struct cmd_ctx *c, bool names)
{
    if (cmd_node_left(c->node)) {
        resp_write_error(c->out, CMD_ERR_LEFT);
        return;
    }
    int64_t slot, count = 0;
    if (!num_parse_i64(c->argv[2].ptr, c->argv[2].len, &slot) ||
        (names && !num_parse_i64(c->argv[3].ptr, c->argv[3].len, &count))) {
        resp_write_error(c->out, CMD_ERR_NOT_INT);
        return;
    }
    if (slot < 0 || slot >= KEYHASH_SLOTS || count < 0) {
        resp_write_error(c->out, names ? "ERR Invalid slot or number of keys" : "ERR Invalid slot");
        return;
    }
    if (c->node->partition_fn != KEYHASH_FN_SLOT) {
        resp_write_error(c->out, "ERR keys are placed by partition-function xxh3, not by slot");
        return;
    }
    uint32_t shard = c->node->partition_shard[node_partition_of_slot(c->node, (uint32_t)slot, 0)];
    cmd_send(c, shard, cmd_slot_keys_shard, CMD_BARRIER | CMD_NOKEY, c->argv, c->argc, 0,
             CMD_COMBINE_ONE); /* a barrier, as KEYS: after the reads in flight */
}

void cmd_cluster_countkeysinslot(struct cmd_ctx *c) { cluster_slot_keys(c, false); }

void cmd_cluster_getkeysinslot(struct cmd_ctx *c) { cluster_slot_keys(c, true); }

void cmd_cluster_myid(struct cmd_ctx *c)
{
    const struct snapshot *s = cluster_read(c);
    if (!s)
        return;
    resp_write_bulk_str(c->out, s->members[s->self].id);
    snapshot_read_end(c->node->snapshots, c->shard_id);
}

void cmd_readonly(struct cmd_ctx *c)
{
    c->conn->cluster_aware = true;
    cmd_reply_ok(c);
}

void cmd_readwrite(struct cmd_ctx *c) { cmd_reply_ok(c); }

void cmd_asking(struct cmd_ctx *c)
{
    c->conn->cluster_aware = true;
    cmd_reply_ok(c);
}

static bool arg_is(const struct resp_arg *a, const char *s)
{
    return a->len == strlen(s) && strncasecmp(a->ptr, s, a->len) == 0;
}

/* A CONSISTENCY word: ONE, QUORUM, ALL or DEFAULT. */
static bool consistency_word(const struct resp_arg *a, uint8_t *out)
{
    static const struct {
        const char *word;
        uint8_t value;
    } words[] = {{"one", 1},
                 {"quorum", CONN_CONSISTENCY_QUORUM},
                 {"all", CONN_CONSISTENCY_ALL},
                 {"default", CONN_CONSISTENCY_DEFAULT}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (arg_is(a, words[i].word)) {
            *out = words[i].value;
            return true;
        }
    return false;
}

/* A value after R or W: a word, or 1 .. CONN_CONSISTENCY_MAX (0 is not). */
static bool consistency_parse(const struct resp_arg *a, uint8_t *out)
{
    int64_t n;
    if (consistency_word(a, out))
        return true;
    if (!num_parse_i64(a->ptr, a->len, &n) || n < 1 || n > CONN_CONSISTENCY_MAX)
        return false;
    *out = (uint8_t)n;
    return true;
}

static void consistency_write(struct cmd_ctx *c, uint8_t v)
{
    if (v == CONN_CONSISTENCY_DEFAULT)
        resp_write_bulk_str(c->out, "default");
    else if (v == CONN_CONSISTENCY_QUORUM)
        resp_write_bulk_str(c->out, "quorum");
    else if (v == CONN_CONSISTENCY_ALL)
        resp_write_bulk_str(c->out, "all");
    else
        resp_write_bulk_i64(c->out, v);
}

#define CONSISTENCY_VALUE_ERR                                                                    \
    "ERR CONSISTENCY values are 1 to 16, ONE, QUORUM, ALL or DEFAULT"

/* Both set at once, or neither: every argument is checked first. */
void cmd_consistency(struct cmd_ctx *c)
{
    struct conn *k = c->conn;
    uint8_t r = k->consistency_r, w = k->consistency_w;
    if (c->argc == 1) {
        resp_write_map_len(c->out, c->proto, 2);
        resp_write_bulk_str(c->out, "R");
        consistency_write(c, r);
        resp_write_bulk_str(c->out, "W");
        consistency_write(c, w);
        return;
    }
    if (c->argc == 2) {
        if (!consistency_word(&c->argv[1], &r)) {
            resp_write_error(c->out, "ERR CONSISTENCY takes ONE, QUORUM, ALL, DEFAULT, "
                                     "or R r and W w");
            return;
        }
        w = r;
    } else {
        if (c->argc % 2 == 0) {
            resp_write_error(c->out, "ERR syntax error");
            return;
        }
        for (uint32_t i = 1; i < c->argc; i += 2) {
            bool is_r = arg_is(&c->argv[i], "r");
            if (!is_r && !arg_is(&c->argv[i], "w")) {
                resp_write_error(c->out, "ERR syntax error");
                return;
            }
            if (!consistency_parse(&c->argv[i + 1], is_r ? &r : &w)) {
                resp_write_error(c->out, CONSISTENCY_VALUE_ERR);
                return;
            }
        }
    }
    k->consistency_r = r;
    k->consistency_w = w;
    cmd_reply_ok(c);
}
