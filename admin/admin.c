/* admin.c: the admin thread (see admin.h).
 * State: the node id, the membership table (member.h: this node, up at once,
 * and the peers gossip brings), the gossip transport on the cluster port
 * (peer.h), the ring built from the membership (ring.h; Q = the partitions
 * setting, N = min(3, members)) and the HTTP server (http.h). All of it is
 * created on the main thread before the admin thread starts and, from then
 * on, touched by the admin thread alone, until admin_destroy() has joined it.
 * Loop: poll() on the HTTP server's epoll fd, the transport's epoll fd and
 * an eventfd that admin_destroy() writes to stop the thread, until the
 * earlier of the server's timeout and member_next_deadline(); then the
 * transport reads (frames go to the member table, its answers go out), the
 * table ticks when due, a node with seeds asks them to join every
 * ADMIN_JOIN_RETRY_MS until it has met another member, and the server runs.
 * The ring: after membership events, the ring members (every member not
 * left, down ones included: being down is not leaving) are compared with
 * those of the current ring; when they differ the ring is rebuilt. For all
 * nodes to agree, the ring must be a function of the members alone, not of
 * the order each node happened to learn them in: it is built as a chain,
 * members sorted by id, each ring built from the one of the members before
 * it (ring_build() with prev), so that a member whose id sorts last moves
 * only the minimum to itself, and the epoch counts the chain's changes. A
 * member that sorts earlier rebuilds the chain from there: more moves than
 * the minimum (5 to 6 equal nodes, Q = 1024, random ids: 630 partitions
 * move on average where building from the previous ring moves the ideal
 * 170, and building from nothing 852). An agreed join order carried by the
 * gossip, or rings disseminated with ring_from_owners(), would remove that
 * before data moves with ownership (the replication issue). The
 * node then advertises the ring's epoch and hash (member_set_self()), so
 * that peers and operators can compare them. Handlers build their answers with view.h from
 * the state above and the node's counters (cmd_server_totals(): relaxed
 * atomic loads, never a lock or a message to a shard), so a slow or busy
 * HTTP client never holds up a shard.
 * The cluster state (cluster_state.h) is kept in dir under the node id's
 * rule: restored at start-up (admin_restore_state(): a restarted node comes
 * back as the same member without seeds), saved when the ring or the
 * members change (admin_save_state()).
 * Changes of membership by the API (POST and DELETE /v1/nodes) are not
 * built yet: they answer 501, and with ?dry_run=1 the plan: the ring the
 * change would make (ring_build() from the current ring) and ring_plan()'s
 * moves. */
#include "admin.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <xxhash.h>

#include "cfg.h"
#include "cluster_state.h"
#include "cmd_server.h"
#include "http.h"
#include "identity.h"
#include "log.h"
#include "member.h"
#include "node.h"
#include "peer.h"
#include "persist.h"
#include "ring.h"
#include "snapshot.h"
#include "view.h"

#define ADMIN_REPLICAS_MAX 3 /* N until the replication issue brings its setting */
#define ADMIN_METRICS_MAX 48
#define ADMIN_JOIN_RETRY_MS 2000

struct admin {
    struct node *node;
    char id[IDENTITY_LEN + 1];
    struct member_table *members;
    struct ring *ring;
    struct http_server *http; /* NULL when admin-port is 0 */
    struct peer_net *peer;    /* the cluster port */
    bool join;                /* seeds given and auto-join: ask them until we meet one */
    uint64_t join_at_ms;      /* next join request */
    uint64_t ring_members_hash; /* of the ring's members (admin_members_hash()) */
    struct cluster_state_file state_file; /* where the cluster state is saved (cluster_state.h) */
    int wake_fd;              /* eventfd: admin_destroy() asks the thread to end */
    pthread_t thread;
    bool started;
};

static uint64_t admin_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* host:port, with the host in brackets when it is an IPv6 address. */
static void admin_addr(char *out, size_t cap, const char *host, int port)
{
    snprintf(out, cap, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
}

/* Whether dir keeps the node's id and cluster state: always with storage =
 * log; with storage = memory, when it is a writable directory. */
static bool admin_dir_kept(const struct cfg *cfg)
{
    struct stat st;
    return cfg->storage == CFG_STORAGE_LOG ||
           (stat(cfg->dir, &st) == 0 && S_ISDIR(st.st_mode) && access(cfg->dir, W_OK) == 0);
}

/* The node id: kept in dir with storage = log (a failure stops start-up);
 * with storage = memory, kept in dir when it is a writable directory, else
 * new for this run. */
static int admin_identity(const struct cfg *cfg, char id[IDENTITY_LEN + 1])
{
    bool created = false;
    if (!admin_dir_kept(cfg)) {
        int rc = identity_random(id);
        if (rc == 0)
            log_info("admin: storage = memory and %s is not a writable directory: node id %s "
                     "lasts this run only", cfg->dir, id);
        return rc;
    }
    int rc = identity_load(cfg->dir, id, &created);
    if (rc != 0) {
        log_error("admin: cannot %s node id in %s/%s: %s; exiting",
                  rc == -EINVAL ? "read the" : "keep a", cfg->dir, IDENTITY_FILE,
                  rc == -EINVAL ? "it holds no 40-hex-digit id" : strerror(-rc));
        return rc;
    }
    log_info("admin: node id %s (%s)", id, created ? "new" : "from the data directory");
    return 0;
}

/* The ring of the given members, from prev (NULL: none). */
static int admin_build_ring(const struct ring_member *members, uint32_t count, uint32_t q,
                            const struct ring *prev, struct ring **out)
{
    uint32_t n = count < ADMIN_REPLICAS_MAX ? count : ADMIN_REPLICAS_MAX;
    return ring_build(members, count, q, n, prev, out);
}

/* The ring members of the membership (left members excluded), plus extra
 * when not NULL, less the member whose id is skip when not NULL. Returns the
 * count; members must have room for member_count() + 1. */
static uint32_t admin_ring_members(const struct admin *a, const struct ring_member *extra,
                                   const char *skip, struct ring_member *members)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < member_count(a->members); i++) {
        const struct member *m = member_at(a->members, i);
        if (m->state == MEMBER_LEFT || (skip && strcmp(skip, m->info.id) == 0))
            continue;
        struct ring_member *r = &members[n++];
        memset(r, 0, sizeof *r); /* zeroed whole: admin_update_ring() hashes the bytes */
        memcpy(r->id, m->info.id, sizeof r->id);
        r->weight = m->info.weight;
        snprintf(r->zone, sizeof r->zone, "%s", m->info.zone);
    }
    if (extra)
        members[n++] = *extra;
    return n;
}

/* Adds the seeds (comma-separated host:cluster-port), resolved, less this
 * node's own address. -EINVAL (logged) for one that is not an address. */
static int admin_seeds(struct admin *a, const char *seeds, const char *self_addr)
{
    char list[sizeof a->node->cfg->seeds], *save = NULL;
    snprintf(list, sizeof list, "%s", seeds);
    uint32_t n = 0;
    for (char *s = strtok_r(list, ", ", &save); s; s = strtok_r(NULL, ", ", &save)) {
        char addr[GOSSIP_ADDR_MAX + 1], err[300];
        int rc = peer_resolve(s, addr, sizeof addr, err, sizeof err);
        if (rc == 0 && strcmp(addr, self_addr) != 0 && (rc = member_add_seed(a->members, addr)) == 0)
            n++;
        if (rc != 0) {
            log_error("seeds: %s; exiting", rc == -EINVAL ? err : strerror(-rc));
            return rc;
        }
    }
    a->join = n > 0 && a->node->cfg->auto_join;
    return 0;
}

static int admin_cmp_member(const void *x, const void *y)
{
    return strcmp(((const struct ring_member *)x)->id, ((const struct ring_member *)y)->id);
}

/* The ring of members[0..count) (sorted here, by id) as the chain the top of
 * the file describes. */
static int admin_chain_ring(struct ring_member *members, uint32_t count, uint32_t q,
                            struct ring **out)
{
    qsort(members, count, sizeof *members, admin_cmp_member);
    struct ring *prev = NULL;
    for (uint32_t k = 1; k <= count; k++) {
        struct ring *next;
        int rc = admin_build_ring(members, k, q, prev, &next);
        ring_destroy(prev);
        if (rc != 0)
            return rc;
        prev = next;
    }
    *out = prev;
    return 0;
}

/* ---- the cluster state kept in the data directory (cluster_state.h) ---- */

/* Saves the cluster state when it changed (after the ring or the members
 * changed). A failure is logged once until a save succeeds; the node goes
 * on, and a restart without seeds would come back with the older state. */
static void admin_save_state(struct admin *a)
{
    int was = a->state_file.last_error;
    int rc = cluster_state_save(&a->state_file, a->members, a->ring);
    if (rc < 0 && was == 0)
        log_warn("cluster: cannot save the cluster state in %s/%s: %s; trying again at the "
                 "next change", a->state_file.dir, CLUSTER_STATE_FILE, strerror(-rc));
    else if (rc > 0 && was != 0)
        log_info("cluster: saved the cluster state in %s/%s again", a->state_file.dir,
                 CLUSTER_STATE_FILE);
}

/* True when membership events may change the saved state: any but a
 * change of health (members, their addresses, weights, zones and states). */
static bool admin_state_events(const struct member_event *ev, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (ev[i].kind != MEMBER_EV_HEALTH)
            return true;
    return false;
}

/* Makes the restored ring the current one (taking it) and advertises it. */
static int admin_restore_ring(struct admin *a, struct ring *ring, uint64_t now)
{
    ring_destroy(a->ring);
    a->ring = ring;
    /* what admin_update_ring() compares the membership with: the ring's
     * members, sorted by id and zeroed past their strings (as decoded), as
     * admin_ring_members() makes them */
    a->ring_members_hash = XXH3_64bits(ring->members, sizeof *ring->members * ring->n_members);
    struct gossip_info self = member_at(a->members, 0)->info;
    self.ring_epoch = ring->epoch;
    self.ring_hash = ring->hash;
    return member_set_self(a->members, &self, now);
}

/* At start-up, with a saved cluster state, the node comes back as the
 * member it was, seeds or not (they are added), auto-join or not (it is a
 * member already): cluster_state_restore() puts back this node's state,
 * state_version and incarnation and the other members (also as seeds); the
 * saved ring becomes the current ring; the members are asked to take this
 * node back (a join: they answer with the cluster as it is now). Start-up
 * stops (logged) on a file that cannot be read or is damaged, or that
 * cluster_state_check() refuses (another node's; a Q other than the
 * partitions setting while other members share the ring). A node alone
 * takes a new partitions setting, and a node that left starts as a cluster
 * of one: both drop the saved ring. */
static int admin_restore_state(struct admin *a, uint64_t now)
{
    const struct cfg *cfg = a->node->cfg;
    if (!admin_dir_kept(cfg))
        return 0;
    a->state_file.dir = cfg->dir;
    struct cluster_state s;
    struct ring *ring = NULL;
    char why[320];
    uint32_t q = a->node->npartitions;
    int rc = cluster_state_load(cfg->dir, &s, &ring, why, sizeof why);
    if (rc == -ENOENT)
        return 0;
    if (rc == 0)
        rc = cluster_state_check(&s, ring, a->id, q, why, sizeof why);
    if (rc != 0) {
        log_error("cluster: cannot restore the cluster state in %s/%s: %s; to start as a new "
                  "cluster of one, move that file away; exiting", cfg->dir, CLUSTER_STATE_FILE,
                  why);
        ring_destroy(ring);
        return rc;
    }
    if (s.state == MEMBER_LEFT || ring->q != q) {
        log_info("cluster: %s/%s: %s; the saved ring is dropped", cfg->dir, CLUSTER_STATE_FILE,
                 s.state == MEMBER_LEFT ? "this node left its cluster and starts as a cluster "
                                          "of one" : "a node alone takes the new partitions");
        ring_destroy(ring);
        ring = NULL;
    }
    rc = cluster_state_restore(a->members, &s, now);
    if (rc == 0 && ring)
        rc = admin_restore_ring(a, ring, now);
    else
        ring_destroy(ring);
    if (rc == 0 && member_count(a->members) > 1)
        member_join(a->members, now);
    member_events_clear(a->members); /* what was restored is not news */
    if (rc == 0)
        log_info("cluster: restored from %s/%s: incarnation %" PRIu64 ", %s ring, %u other "
                 "member(s)%s", cfg->dir, CLUSTER_STATE_FILE,
                 member_at(a->members, 0)->incarnation, a->ring ? "the saved" : "a new",
                 member_count(a->members) - 1,
                 member_count(a->members) > 1 ? ", asked to take this node back" : "");
    cluster_state_fini(&s);
    return rc;
}

/* Rebuilds the ring when its members (ids, weights, zones) changed, and
 * advertises its epoch and hash. */
static int admin_update_ring(struct admin *a, uint64_t now)
{
    uint32_t cap = member_count(a->members);
    struct ring_member *members = malloc(sizeof *members * cap);
    if (!members)
        return -ENOMEM;
    uint32_t count = admin_ring_members(a, NULL, NULL, members);
    qsort(members, count, sizeof *members, admin_cmp_member);
    uint64_t h = XXH3_64bits(members, sizeof *members * count);
    int rc = 0;
    struct ring *next = NULL;
    if (a->ring && h == a->ring_members_hash)
        goto out;
    if ((rc = admin_chain_ring(members, count, a->node->npartitions, &next)) != 0)
        goto out;
    if (a->ring)
        log_info("cluster: ring epoch %" PRIu64 " hash %016" PRIx64 " of %u members",
                 next->epoch, next->hash, count);
    ring_destroy(a->ring);
    a->ring = next;
    a->ring_members_hash = h;
    snapshot_update(a->node->snapshots, a->members, a->ring); /* the shards' copy */
    struct gossip_info self = member_at(a->members, 0)->info;
    self.ring_epoch = next->epoch;
    self.ring_hash = next->hash;
    rc = member_set_self(a->members, &self, now);
    admin_save_state(a);
out:
    free(members);
    return rc;
}

static int admin_membership(struct admin *a)
{
    const struct cfg *cfg = a->node->cfg;
    struct gossip_info self = {0};
    memcpy(self.id, a->id, sizeof self.id);
    admin_addr(self.client_addr, sizeof self.client_addr, cfg->bind, (int)cfg->port);
    admin_addr(self.cluster_addr, sizeof self.cluster_addr, cfg->bind, cfg_cluster_port(cfg));
    if (cfg_admin_port(cfg))
        admin_addr(self.admin_addr, sizeof self.admin_addr, cfg->bind, cfg_admin_port(cfg));
    self.weight = (uint32_t)cfg->weight;
    snprintf(self.zone, sizeof self.zone, "%s", cfg->zone);
    struct member_config mc;
    member_config_default(&mc);
    mc.mac = cfg->cluster_secret[0] != '\0';
    /* The "seen down within 10 s": a death is declared at the first
     * suspicion plus its timeout, and the first suspicion can come 6 s after
     * the death (shuffled round-robin probing leaves up to 2n - 2 periods
     * between two probes of one member by one prober, and takes a period
     * more to suspect). memberlist's LAN suspicion (4 * max(1, log10 n)
     * periods, up to 6 times that unconfirmed) made tests/cluster measure
     * 5.5 to 10 s at 5 nodes; 2 periods (member.c: what 1,000 members need
     * too), up to 3 times that unconfirmed, leaves the margin. */
    mc.suspicion_mult = 2;
    mc.suspicion_max_timeout_mult = 3;
    mc.seed = XXH3_64bits(a->id, IDENTITY_LEN) ^ (uint64_t)getpid();
    uint64_t now = admin_now_ms();
    int rc = member_create(&mc, &self, now, &a->members);
    if (rc == 0)
        rc = member_set_state(a->members, a->id, MEMBER_UP, now);
    if (rc == 0)
        rc = admin_seeds(a, cfg->seeds, self.cluster_addr);
    if (rc == 0)
        rc = admin_restore_state(a, now);
    if (rc != 0)
        return rc;
    return admin_update_ring(a, now);
}

/* ---- answers ---- */

static void admin_json(struct http_response *res, unsigned status, json_t *body)
{
    if (!body) {
        http_error(res, 500, "out of memory");
        return;
    }
    res->status = status;
    res->body = json_dumps(body, JSON_COMPACT);
    json_decref(body);
}

static void admin_health(struct admin *a, struct http_response *res)
{
    const struct node *n = a->node;
    bool stopping = __atomic_load_n(&n->stop_flag, __ATOMIC_RELAXED);
    bool serving = __atomic_load_n(&n->is_serving, __ATOMIC_ACQUIRE);
    const char *status = stopping ? "stopping" : serving ? "ok" : "starting";
    bool log_ok = __atomic_load_n(&n->log_failing, __ATOMIC_RELAXED) == 0;
    admin_json(res, serving && !stopping ? 200 : 503,
               json_pack("{s:s, s:s, s:I, s:s, s:I}", "status", status, "id", a->id, "epoch",
                         (json_int_t)a->ring->epoch, "log_write", log_ok ? "ok" : "failing",
                         "uptime_seconds",
                         (json_int_t)((int64_t)time(NULL) - n->start_ms / 1000)));
}

/* The samples of /v1/stats and /metrics. Returns how many. */
static size_t admin_metrics(const struct admin *a, struct view_metric *m)
{
    const struct node *n = a->node;
    struct cmd_server_totals t;
    struct persist_stats p;
    cmd_server_totals(n, &t);
    cmd_server_persist_totals(n, &p);
    size_t k = 0;
#define METRIC(key_, name_, type_, help_, value_)                                                  \
    m[k++] = (struct view_metric){key_, "ringkv_" name_, type_, help_, NULL, (double)(value_)}
    METRIC("uptime_in_seconds", "uptime_seconds", "gauge", "Seconds since the node started.",
           (int64_t)time(NULL) - n->start_ms / 1000);
    METRIC("shards", "shards", "gauge", "Shard threads.", n->nshards);
    METRIC("total_commands_processed", "commands_processed_total", "counter",
           "Commands processed, all shards.", t.commands);
    METRIC("total_error_replies", "error_replies_total", "counter", "Error replies sent.",
           t.errors);
    METRIC("connected_clients", "connected_clients", "gauge", "Client connections open.",
           t.clients);
    METRIC("total_connections_received", "connections_received_total", "counter",
           "Client connections accepted.", t.connections);
    METRIC("rejected_connections", "rejected_connections_total", "counter",
           "Connections refused at maxclients.", t.rejected);
    METRIC("total_net_input_bytes", "net_input_bytes_total", "counter", "Bytes read from clients.",
           t.net_in);
    METRIC("total_net_output_bytes", "net_output_bytes_total", "counter",
           "Bytes written to clients.", t.net_out);
    METRIC("used_memory", "used_memory_bytes", "gauge", "Bytes of data held in memory.", t.used);
    METRIC("used_memory_rss", "resident_memory_bytes", "gauge", "Resident memory of the process.",
           cmd_server_rss_bytes());
    METRIC("maxmemory", "maxmemory_bytes", "gauge", "The maxmemory setting (0: no limit).",
           n->cfg->maxmemory);
    METRIC("keys", "keys", "gauge", "Keys stored.", t.keys);
    METRIC("expires", "keys_with_expiry", "gauge", "Keys with a time to live.", t.expires);
    METRIC("keyspace_hits", "keyspace_hits_total", "counter", "Reads that found their key.",
           t.hits);
    METRIC("keyspace_misses", "keyspace_misses_total", "counter", "Reads that missed.", t.misses);
    METRIC("expired_keys", "expired_keys_total", "counter", "Keys removed at expiry.", t.expired);
    METRIC("evicted_keys", "evicted_keys_total", "counter", "Keys evicted at maxmemory.",
           t.evicted);
    METRIC("storage_log", "storage_log", "gauge",
           "1 when data is kept in the durable log (storage = log).",
           n->cfg->storage == CFG_STORAGE_LOG);
    METRIC("log_write_ok", "log_write_ok", "gauge",
           "1 while every shard's data log persists (0: writes refused, MISCONF).",
           __atomic_load_n(&n->log_failing, __ATOMIC_RELAXED) == 0);
    METRIC("segments", "log_segments", "gauge", "Data log segment files.", p.segments);
    METRIC("disk_bytes_written", "log_written_bytes_total", "counter",
           "Bytes written to the data log.", p.disk_bytes);
    METRIC("fsyncs", "log_fsyncs_total", "counter", "fsyncs of the data log.", p.fsyncs);
    METRIC("write_errors", "log_write_errors_total", "counter", "Failed data log writes.",
           p.write_errors);
    static const char *const status_label[] = {"status=\"joining\"", "status=\"up\"",
                                               "status=\"leaving\"", "status=\"left\"",
                                               "status=\"down\""};
    static const char *const status_key[] = {"nodes_joining", "nodes_up", "nodes_leaving",
                                             "nodes_left", "nodes_down"};
    for (int s = MEMBER_S_JOINING; s <= MEMBER_S_DOWN; s++) {
        uint32_t count = 0;
        for (uint32_t i = 0; i < member_count(a->members); i++)
            count += member_status(member_at(a->members, i)) == (enum member_status)s;
        m[k++] = (struct view_metric){status_key[s], "ringkv_nodes", "gauge",
                                      "Cluster members by status, as this node sees them.",
                                      status_label[s], count};
    }
    uint32_t self = ring_member_index(a->ring, a->id);
    METRIC("ring_epoch", "ring_epoch", "gauge", "Epoch of the partition ring.", a->ring->epoch);
    METRIC("ring_partitions", "ring_partitions", "gauge", "Partitions in the ring (Q).",
           a->ring->q);
    METRIC("partitions_owned", "partitions_owned", "gauge", "Partitions this node owns.",
           self == RING_NONE ? 0 : a->ring->owned[self]);
    const struct member_stats *ms = member_get_stats(a->members);
    const struct peer_stats *ps = peer_get_stats(a->peer);
    METRIC("gossip_rounds", "gossip_rounds_total", "counter", "Gossip frames sent.",
           ms->gossip_rounds);
    METRIC("probes", "probes_total", "counter", "Direct probes sent.", ms->probes);
    METRIC("probe_failures", "probe_failures_total", "counter",
           "Probes with no direct ack in time.", ms->probe_failures);
    METRIC("suspicions", "suspicions_total", "counter", "Members this node began to suspect.",
           ms->suspicions);
    METRIC("peer_frames_refused", "peer_frames_refused_total", "counter",
           "Peer frames dropped for a missing or wrong MAC or an unknown session (cluster-secret).",
           ps->refused_frames);
    METRIC("peer_frames_replayed", "peer_frames_replayed_total", "counter",
           "Peer frames dropped as replays (a sequence number seen on its session).",
           ps->replayed_frames);
    METRIC("peer_handshakes_refused", "peer_handshakes_refused_total", "counter",
           "Peer handshakes with a wrong proof: the other side lacks the cluster-secret.",
           ps->handshakes_refused);
    METRIC("peer_handshakes_failed", "peer_handshakes_failed_total", "counter",
           "Peer handshakes of this node given up (no answer), their frames dropped.",
           ps->handshakes_failed);
#undef METRIC
    return k;
}

static void admin_stats(struct admin *a, struct http_response *res)
{
    struct view_metric m[ADMIN_METRICS_MAX];
    size_t k = admin_metrics(a, m);
    json_t *o = view_stats(m, k);
    if (o)
        json_object_set_new(o, "id", json_string(a->id));
    admin_json(res, 200, o);
}

static void admin_prometheus(struct admin *a, struct http_response *res)
{
    struct view_metric m[ADMIN_METRICS_MAX];
    size_t k = admin_metrics(a, m);
    res->body = view_prometheus(m, k);
    res->status = 200;
    res->content_type = "text/plain; version=0.0.4; charset=utf-8";
    if (!res->body)
        http_error(res, 500, "out of memory");
}

/* The plan of a change of membership: the ring of members[0..count), from
 * the current one. */
static void admin_plan(struct admin *a, struct http_response *res, const char *action,
                       const char *id, const struct ring_member *members, uint32_t count)
{
    struct ring *next;
    int rc = admin_build_ring(members, count, a->ring->q, a->ring, &next);
    if (rc != 0) {
        http_error(res, rc == -ENOMEM ? 500 : 400, "cannot build the ring of that membership");
        return;
    }
    admin_json(res, 200, view_plan(action, id, a->ring, next));
    ring_destroy(next);
}

/* A node id for a node not yet met, as its address: a placeholder for the plan. */
static void admin_provisional_id(const char *address, char id[IDENTITY_LEN + 1])
{
    XXH128_hash_t h = XXH3_128bits(address, strlen(address));
    uint32_t tail = (uint32_t)XXH3_64bits_withSeed(address, strlen(address), 1);
    snprintf(id, IDENTITY_LEN + 1, "%016" PRIx64 "%016" PRIx64 "%08" PRIx32, h.high64, h.low64,
             tail);
}

/* Checks a join request's fields into m; NULL, or what is wrong. */
static const char *admin_join_fields(json_t *body, struct ring_member *m, const char **address)
{
    const char *addr = NULL, *id = NULL, *zone = "";
    json_int_t weight = 100;
    json_error_t err;
    if (!json_is_object(body))
        return "the body must be a JSON object";
    if (json_unpack_ex(body, &err, JSON_STRICT, "{s:s, s?s, s?I, s?s}", "address", &addr, "id",
                       &id, "weight", &weight, "zone", &zone) != 0)
        return "expected {\"address\": \"host:cluster-port\"} with optional \"id\" (40 hex "
               "digits), \"weight\" (integer) and \"zone\" (string), and nothing else";
    const char *colon = strrchr(addr, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || colon == addr || strlen(addr) > GOSSIP_ADDR_MAX || !colon[1] || *end ||
        port < 1 || port > 65535)
        return "address must be host:port";
    if (weight < 1 || weight > 1000000)
        return "weight must be 1 to 1000000";
    if (strlen(zone) > RING_ZONE_MAX)
        return "zone is longer than 63 characters";
    if (id && !identity_valid(id, strlen(id)))
        return "id must be 40 lowercase hex digits";
    memset(m, 0, sizeof *m);
    if (id)
        memcpy(m->id, id, IDENTITY_LEN);
    else
        admin_provisional_id(addr, m->id);
    m->weight = (uint32_t)weight;
    snprintf(m->zone, sizeof m->zone, "%s", zone);
    *address = addr;
    return NULL;
}

static void admin_join(struct admin *a, const struct http_request *req, struct http_response *res)
{
    json_error_t err;
    json_t *body = json_loadb(req->body, req->body_len, 0, &err);
    if (!body) {
        char msg[256];
        snprintf(msg, sizeof msg, "bad JSON: %s", err.text);
        http_error(res, 400, msg);
        return;
    }
    struct ring_member joiner;
    const char *address = NULL;
    const char *why = admin_join_fields(body, &joiner, &address);
    if (why) {
        http_error(res, 400, why);
    } else if (member_find(a->members, joiner.id)) {
        http_error(res, 409, "that node is already a member");
    } else if (!req->dry_run) {
        http_error(res, 501, "joining a node by the API is not built yet (a node started "
                             "with seeds joins them); ?dry_run=1 shows the plan");
    } else {
        uint32_t cap = member_count(a->members) + 1;
        struct ring_member *members = malloc(sizeof *members * cap);
        if (!members) {
            http_error(res, 500, "out of memory");
        } else {
            uint32_t count = admin_ring_members(a, &joiner, NULL, members);
            admin_plan(a, res, "join", joiner.id, members, count);
            free(members);
        }
    }
    json_decref(body);
}

/* GET and DELETE /v1/nodes/{id}. */
static void admin_node(struct admin *a, const struct http_request *req, struct http_response *res)
{
    if (!identity_valid(req->id, strlen(req->id))) {
        http_error(res, 400, "a node id is 40 lowercase hex digits");
        return;
    }
    const struct member *m = member_find(a->members, req->id);
    if (!m) {
        http_error(res, 404, "no such node");
        return;
    }
    if (req->method == HTTP_GET) {
        admin_json(res, 200, view_node(m, a->ring));
        return;
    }
    uint32_t count = member_count(a->members);
    struct ring_member *members = malloc(sizeof *members * count);
    uint32_t left = members ? admin_ring_members(a, NULL, req->id, members) : 0;
    if (!members)
        http_error(res, 500, "out of memory");
    else if (left == 0)
        http_error(res, 409, "the last node of a cluster cannot leave it");
    else if (!req->dry_run)
        http_error(res, 501, "removing a node by the API is not built yet; ?dry_run=1 "
                             "shows the plan");
    else
        admin_plan(a, res, "leave", req->id, members, left);
    free(members);
}

static void admin_handle(void *arg, const struct http_request *req, struct http_response *res)
{
    struct admin *a = arg;
    switch (req->route) {
    case HTTP_HEALTH:
        admin_health(a, res);
        break;
    case HTTP_NODES:
        if (req->method == HTTP_POST)
            admin_join(a, req, res);
        else
            admin_json(res, 200, view_nodes(a->members, a->ring));
        break;
    case HTTP_NODE:
        admin_node(a, req, res);
        break;
    case HTTP_RING:
        admin_json(res, 200, view_ring(a->ring));
        break;
    case HTTP_STATS:
        admin_stats(a, res);
        break;
    case HTTP_METRICS:
        admin_prometheus(a, res);
        break;
    default:
        http_error(res, 404, "no such endpoint");
    }
}

/* ---- the thread ---- */

/* Logs what membership events say and rebuilds the ring when they may
 * have changed its members. */
static void admin_events(struct admin *a, uint64_t now)
{
    const struct member_event *ev;
    uint32_t n = member_events(a->members, &ev);
    bool ring = false, save = admin_state_events(ev, n);
    for (uint32_t i = 0; i < n; i++) {
        const struct member *m = member_at(a->members, ev[i].index);
        static const char *const health[] = {"alive", "suspect", "dead (down)"};
        if (ev[i].kind == MEMBER_EV_NEW || ev[i].kind == MEMBER_EV_HEALTH)
            log_info("cluster: node %s at %s is %s", m->info.id, m->info.cluster_addr,
                     health[m->health]);
        ring |= ev[i].kind != MEMBER_EV_HEALTH && ev[i].index != 0;
    }
    member_events_clear(a->members);
    if (ring && admin_update_ring(a, now) != 0)
        log_warn("cluster: cannot rebuild the ring (out of memory); kept the previous one");
    if (save)
        admin_save_state(a);
    if (n > 0) /* statuses, addresses: the shards' copy (snapshot.h) */
        snapshot_update(a->node->snapshots, a->members, a->ring);
    peer_flush(a->peer, a->members, now);
}

static void *admin_thread(void *arg)
{
    struct admin *a = arg;
    log_set_thread("admin");
    struct pollfd fds[3] = {{.fd = a->wake_fd, .events = POLLIN},
                            {.fd = peer_fd(a->peer), .events = POLLIN},
                            {.fd = a->http ? http_poll_fd(a->http) : -1, .events = POLLIN}};
    for (;;) {
        uint64_t now = admin_now_ms();
        uint64_t due = member_next_deadline(a->members);
        if (peer_next_deadline(a->peer) < due)
            due = peer_next_deadline(a->peer);
        if (a->join && a->join_at_ms < due)
            due = a->join_at_ms;
        int timeout = due > now ? (int)(due - now < 60000 ? due - now : 60000) : 0;
        int http_timeout = a->http ? http_timeout_ms(a->http) : -1;
        if (http_timeout >= 0 && http_timeout < timeout)
            timeout = http_timeout;
        if (poll(fds, 3, timeout) < 0 && errno != EINTR) {
            log_error("admin: poll failed: %s; the admin API and gossip stop", strerror(errno));
            return NULL;
        }
        if (fds[0].revents)
            return NULL;
        now = admin_now_ms();
        peer_run(a->peer, a->members, now);
        if (now >= member_next_deadline(a->members))
            member_tick(a->members, now);
        if (a->join && member_count(a->members) > 1)
            a->join = false;
        if (a->join && now >= a->join_at_ms) {
            member_join(a->members, now);
            a->join_at_ms = now + ADMIN_JOIN_RETRY_MS;
        }
        admin_events(a, now);
        if (a->http)
            http_run(a->http);
    }
}

int admin_create(struct node *n, struct admin **out)
{
    const struct cfg *cfg = n->cfg;
    if (n->npartitions > RING_Q_MAX) {
        log_error("partitions %u: the ring has at most %u (one per hash slot); exiting",
                  n->npartitions, RING_Q_MAX);
        return -EINVAL;
    }
    struct admin *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    a->node = n;
    a->wake_fd = -1;
    int rc = admin_identity(cfg, a->id);
    if (rc != 0)
        goto fail;
    if ((rc = admin_membership(a)) != 0) {
        log_error("admin: cannot set up the membership and ring: %s; exiting", strerror(-rc));
        goto fail;
    }
    if ((rc = peer_create(cfg->bind, cfg_cluster_port(cfg), cfg->cluster_secret, &a->peer)) != 0)
        goto fail;
    a->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (a->wake_fd < 0) {
        rc = -errno;
        log_error("admin: eventfd: %s; exiting", strerror(-rc));
        goto fail;
    }
    int port = cfg_admin_port(cfg);
    if (port && (rc = http_create(cfg->bind, port, cfg->requirepass, admin_handle, a,
                                  &a->http)) != 0) {
        log_error("admin: cannot listen on %s port %d (admin-port): %s; exiting", cfg->bind, port,
                  strerror(-rc));
        goto fail;
    }
    *out = a;
    return 0;
fail:
    admin_destroy(a);
    return rc;
}

int admin_start(struct admin *a)
{
    int rc = pthread_create(&a->thread, NULL, admin_thread, a);
    if (rc != 0) {
        log_error("admin: cannot start the admin thread: %s; exiting", strerror(rc));
        return -rc;
    }
    a->started = true;
    const struct cfg *cfg = a->node->cfg;
    if (a->http)
        log_info("admin: HTTP API on %s port %d; node %s", cfg->bind, cfg_admin_port(cfg), a->id);
    log_info("cluster: gossip on %s port %d (UDP and TCP)%s%s", cfg->bind, cfg_cluster_port(cfg),
             cfg->cluster_secret[0] ? ", frames authenticated" : "",
             a->join ? ", joining through the seeds" : "");
    return 0;
}

void admin_destroy(struct admin *a)
{
    if (!a)
        return;
    if (a->started) {
        uint64_t one = 1;
        if (write(a->wake_fd, &one, sizeof one) != sizeof one)
            log_warn("admin: cannot wake the admin thread: %s", strerror(errno));
        pthread_join(a->thread, NULL);
    }
    http_destroy(a->http);
    peer_destroy(a->peer);
    if (a->wake_fd >= 0)
        close(a->wake_fd);
    ring_destroy(a->ring);
    if (a->members)
        member_destroy(a->members);
    free(a);
}

const char *admin_node_id(const struct admin *a)
{
    return a->id;
}
