/* admin.c: the admin thread (see admin.h).
 * State: the node id, the membership table (member.h), the gossip transport
 * on the cluster port (peer.h), the current ring (ring.h; Q = the partitions
 * setting, N = min(3, members)) with the one it replaced, and the HTTP server
 * (http.h). All of it is created on the main thread before the admin thread
 * starts and, from then on, touched by the admin thread alone, until
 * admin_destroy() has joined it.
 * Loop: poll() on the HTTP server's epoll fd, the transport's epoll fd and
 * an eventfd that admin_destroy() writes to stop the thread, until the
 * earlier of the server's timeout and member_next_deadline(); then the
 * transport reads (frames go to the member table, its answers go out), the
 * table ticks when due, a node with seeds (or restored peers) asks them to
 * join every ADMIN_JOIN_RETRY_MS until another member's whole state has
 * come (member_synced(): a join's answer), the ring follows the
 * membership (admin_reconcile()) and the server runs.
 * The ring (the lead's decisions for issue 10):
 * - Claimant. Exactly one node changes the ring: the member with the lowest
 *   id among members alive (not dead), in the current ring and not leaving
 *   or left. When the desired members (the ring's members not leaving or
 *   left, plus alive admitted joiners; ids, weights, zones) differ from the
 *   ring's, it builds the next ring with ring_build() from the current one
 *   (so a join moves partitions only to the joiner, about Q/(K+1), and a
 *   leave only the leaver's; epoch + 1), adopts it, then sets joiners in it
 *   UP and, once it has stood ADMIN_SETTLE_LEFT_MS, leavers of the ring
 *   before out of it LEFT (member_set_state(), gossiped; every node whose
 *   ring no peer of its ring beats does the same, to the same version, so
 *   that a node gossip missed, or the joiner itself, settles too; never a
 *   node of another cluster). A down member stays in the ring: being down is
 *   not leaving. When every alive ring member is leaving, the lowest-id one
 *   claims and cancels its own leave: the ring is never emptied. Two
 *   claimants (views that differ for a moment) from the same ring and
 *   members build the same ring; otherwise the tie-break below settles it,
 *   and a node UP that the winning ring (from a member of its ring) lacks
 *   lost such a race: it sets itself JOINING again and is added, but only
 *   once ADMIN_REJOIN_GRACE_MS has passed with it still UP: the ring of a
 *   leave can arrive before the gossip that this node is LEAVING (or LEFT),
 *   and joining again at once would undo the leave.
 * - Dissemination. Each node advertises its ring's (epoch, hash) in its
 *   gossip info. A ring beats another with a higher epoch, or the same epoch
 *   and a higher hash. Peers that count: a node in a real ring listens only
 *   to members of its ring (or the one before), JOINING or not; a joiner with
 *   a provisional ring to every peer. A
 *   node that sees an alive peer that counts advertise a ring that
 *   beats its own asks it (RING_REQ over a stream; one request awaited per
 *   peer, again after ADMIN_RING_REQ_MS; when none does, every
 *   ADMIN_RING_REQ_MS the next alive member in turn, which answers only with
 *   a ring that beats the asker's: gossip may miss a node), decodes the RING answer (ring_decode(), which
 *   recomputes the hash), checks it is the one announced, and adopts it if it
 *   is in it, or is joining or leaving and the sender counts (so a node of
 *   another cluster does not take it, nor a node rejoining its own cluster
 *   another cluster's ring).
 * - Joining. A node started with seeds is JOINING with a provisional ring of
 *   itself at epoch 0 (beaten by any real ring) and never claims. It is
 *   admitted (member_admitted(): state_version > 0) at once with auto-join,
 *   else when an operator POSTs its cluster address to any member, which
 *   contacts it (a PUSH_PULL with the join flag) and, once it knows the member
 *   there, sets it JOINING again (version + 1), gossiped: the claimant then
 *   puts it in the ring. A cluster of one admitted so drops its ring and joins.
 *   A node up in a ring of more than itself (the hash it advertises is not
 *   its ring alone's) is refused (409, or logged and listed in GET
 *   /v1/nodes once contacted); admitted anyway, it re-asserts itself UP.
 *   A node that is not in a ring answers POST and DELETE with 409.
 * - Leaving. DELETE /v1/nodes/{id} sets the node LEAVING; the claimant takes
 *   it out and sets it LEFT; POST of a leaving node sets it UP again (one
 *   that took the ring without it while leaving then joins again). A
 *   node that sees itself LEFT forgets its peers (member_forget()) and is a
 *   cluster of one again; the others keep it as left (not probed, not in
 *   the ring). Started again with its directory and seeds, it joins them
 *   as a new join (admin_rejoins()). Data does not move in this issue.
 * - Pending transfers: adopting a ring keeps the one it replaced, and
 *   ring_plan() between them is shown as pending transfers in GET /v1/ring
 *   (ringkv_pending_transfers); a newer ring replaces them. They are this
 *   node's history (the last change it adopted): a node that skipped a ring,
 *   or a joiner, shows others or none for the same ring.
 * admin_adopt_ring() is the one place where the current ring is replaced.
 * Figures (tests/cluster/test_membership, Q = 1024): 4 -> 5 nodes moved 204
 * partitions, all to the new node (ideal 204.8; the chain of members sorted
 * by id this replaces moved about 630 for 5 -> 6 where 170 is the ideal);
 * a leave moved exactly the leaver's 205. The cluster agrees within 0.3 s.
 * Handlers build their answers with view.h from the state above and the
 * node's counters (cmd_server_totals(): relaxed atomic loads, never a lock
 * or a message to a shard), so a slow or busy HTTP client never holds up a
 * shard; ?dry_run on POST and DELETE (http_flag()) passes the real
 * operation's checks, then answers the plan (ring_build() from the current
 * ring and ring_plan()'s moves) and changes nothing.
 * The cluster state (cluster_state.h) is kept in dir under the node id's
 * rule: restored at start-up (admin_restore_state(): a restarted node comes
 * back as the same member without seeds), saved when the ring (admin_adopt_ring()) or
 * the members change (admin_save_state()). */
#include "admin.h"

#include <arpa/inet.h>
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

#include "aae.h"
#include "cfg.h"
#include "cluster_state.h"
#include "cmd_server.h"
#include "hints.h"
#include "http.h"
#include "identity.h"
#include "log.h"
#include "member.h"
#include "node.h"
#include "peer.h"
#include "peerlink.h"
#include "persist.h"
#include "ring.h"
#include "snapshot.h"
#include "transfer.h"
#include "view.h"

#define ADMIN_REPLICAS_MAX 3 /* N until the replication issue brings its setting */
_Static_assert(ADMIN_REPLICAS_MAX <= RING_REPLICAS_MAX, "N within what rings carry");
#define ADMIN_METRICS_MAX 96
#define ADMIN_JOIN_RETRY_MS 2000
#define ADMIN_RING_REQ_MS 2000 /* a ring request unanswered this long is sent again */
#define ADMIN_ADMITS_MAX 16    /* POST /v1/nodes addresses being contacted at once */
#define ADMIN_SEEDS_KEPT 16    /* seeds kept as resolved at start, to join through again */
#define ADMIN_ADMIT_MS 60000   /* how long they are */
#define ADMIN_WARN_MS 10000    /* a repeated warning is logged this often at most */
#define ADMIN_SETTLE_LEFT_MS 2000 /* a ring stands this long before its leavers are left */
/* A node UP beaten by a ring of its cluster without it joins again only this
 * long after it first saw that ring and still UP: longer than the claimant
 * waits to set a leaver LEFT, so that a leaver that gossip has not told yet
 * hears LEAVING or LEFT first (admin_take_ring()). */
#define ADMIN_REJOIN_GRACE_MS 4000
_Static_assert(ADMIN_REJOIN_GRACE_MS > ADMIN_SETTLE_LEFT_MS, "a leaver hears it left first");
#define ADMIN_REJOIN_STALE_MS 30000 /* ... and a wait whose ring stopped coming is over this long
                                      after its end (the ring is asked for every ADMIN_RING_REQ_MS) */
#define ADMIN_UNKNOWN_MS 10000 /* a ring member unknown this long after the ring came is dead
                                  to the claim (the 10 s to see a node down) */

/* An address POST /v1/nodes gave, until the node there is known. */
struct admin_admit {
    char addr[GOSSIP_ADDR_MAX + 1];
    uint64_t next_ms;  /* next contact */
    uint64_t until_ms; /* given up then */
};

struct admin {
    struct node *node;
    char id[IDENTITY_LEN + 1];
    struct member_table *members;
    struct ring *ring;        /* the current ring (epoch 0: provisional, this node alone) */
    struct ring *prev_ring;   /* the one it replaced: pending transfers; NULL for none */
    uint32_t pending;         /* partitions whose owner differs between the two */
    uint8_t *ring_bytes;      /* ring_encode(ring): what RING_REQs get */
    size_t ring_len;
    struct http_server *http; /* NULL when admin-port is 0 */
    struct peer_net *peer;    /* the cluster port */
    bool join;                /* seeds given or peers restored: ask them until one answers */
    uint64_t join_at_ms;      /* next join request */
    char seed_addrs[ADMIN_SEEDS_KEPT][GOSSIP_ADDR_MAX + 1]; /* the seeds as resolved at start */
    uint32_t n_seed_addrs;
    bool rejoin_if_removed;   /* restored as a member and started with seeds, not yet heard
                                 back as one: if its cluster removed it while it was down,
                                 it joins the seeds as a new join (admin_self_state()) */
    char ring_req_id[IDENTITY_LEN + 1]; /* asked for its ring; "" when none */
    uint32_t ring_req_seq;
    uint64_t ring_req_until_ms; /* another request may go then */
    uint64_t ring_req_epoch, ring_req_hash; /* the ring the asked peer advertised then */
    uint32_t ring_sync_next;  /* the member asked next when none advertises better */
    uint64_t ring_sync_at_ms; /* ... then */
    uint64_t rejoin_at_ms;    /* UP, beaten by a ring of ours without this node: joins again
                                 then if still UP (0: not waiting; admin_take_ring()) */
    uint64_t claim_warn_at_ms; /* a failed claim is logged again then */
    uint64_t adopted_ms;       /* when the current ring was adopted */
    struct admin_admit admits[ADMIN_ADMITS_MAX];
    uint32_t n_admits;
    char refused[ADMIN_ADMITS_MAX][GOSSIP_ADDR_MAX + 1]; /* admissions refused, oldest first */
    uint32_t n_refused;
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

bool admin_dir_kept(const struct cfg *cfg)
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

/* m as a ring member (zeroed whole, so that lists compare and hash alike). */
static void admin_ring_member(const struct gossip_info *info, struct ring_member *r)
{
    memset(r, 0, sizeof *r);
    memcpy(r->id, info->id, sizeof r->id);
    r->weight = info->weight;
    snprintf(r->zone, sizeof r->zone, "%s", info->zone);
}

static int admin_cmp_member(const void *x, const void *y)
{
    return strcmp(((const struct ring_member *)x)->id, ((const struct ring_member *)y)->id);
}

/* Whether m, a member of the table, belongs in the next ring: not leaving
 * or left, and not a joiner unless admitted and alive. */
static bool admin_wanted(const struct member *m, bool in_ring)
{
    if (m->state == MEMBER_LEAVING || m->state == MEMBER_LEFT)
        return false;
    return in_ring || (m->state == MEMBER_JOINING && member_admitted(m) &&
                       m->health != MEMBER_DEAD);
}

/* The members the ring should have (the top of the file: "desired"): the
 * current ring's members not leaving or left (with their weight and zone as
 * gossiped now; a member the table does not know keeps its ring record),
 * plus alive admitted joiners; plus extra when not NULL, less the member
 * whose id is skip when not NULL. Sorted by id; returns the count. members
 * must have room for ring->n_members + member_count() + 1. */
static uint32_t admin_desired(const struct admin *a, const struct ring_member *extra,
                              const char *skip, struct ring_member *members)
{
    uint32_t n = 0;
    const struct ring *ring = a->ring;
    bool real = ring->epoch > 0; /* a provisional ring counts for nothing */
    for (uint32_t i = 0; real && i < ring->n_members; i++) {
        const struct member *m = member_find(a->members, ring->members[i].id);
        if (skip && strcmp(skip, ring->members[i].id) == 0)
            continue;
        if (!m)
            members[n++] = ring->members[i];
        else if (admin_wanted(m, true))
            admin_ring_member(&m->info, &members[n++]);
    }
    for (uint32_t i = 0; i < member_count(a->members); i++) {
        const struct member *m = member_at(a->members, i);
        bool in_ring = real && ring_member_index(ring, m->info.id) != RING_NONE;
        if (!in_ring && admin_wanted(m, false) && !(skip && strcmp(skip, m->info.id) == 0))
            admin_ring_member(&m->info, &members[n++]);
    }
    if (extra)
        members[n++] = *extra;
    qsort(members, n, sizeof *members, admin_cmp_member);
    return n;
}

/* Room admin_desired() needs. */
static uint32_t admin_desired_cap(const struct admin *a)
{
    return a->ring->n_members + member_count(a->members) + 1;
}

/* Whether this node is in its current (real) ring. */
static bool admin_in_ring(const struct admin *a)
{
    return a->ring->epoch > 0 && ring_member_index(a->ring, a->id) != RING_NONE;
}

static void admin_save_state(struct admin *a);

/* The one place where the current ring is replaced (hooks that publish or
 * keep the ring go here: the shards' snapshot, the saved cluster state). The ring it replaces stays as prev_ring for the
 * pending transfers, unless it was provisional (epoch 0) or is dropped
 * (drop_prev: this node starts afresh). Advertises next's epoch and hash;
 * takes next in every case. */
/* The shards' copy of the members and the ring (snapshot.h), with whether
 * this node left its cluster: the shards take both at once. */
static void admin_publish(struct admin *a)
{
    snapshot_update(a->node->snapshots, a->members, a->ring,
                    __atomic_load_n(&a->node->left_cluster, __ATOMIC_RELAXED) != 0);
}

static int admin_adopt_ring(struct admin *a, struct ring *next, bool drop_prev, uint64_t now)
{
    uint8_t *bytes;
    size_t len;
    int rc = ring_encode(next, &bytes, &len);
    struct ring_move *moves = rc == 0 ? malloc(sizeof *moves * next->q) : NULL;
    if (rc != 0 || !moves) {
        free(moves);
        if (rc == 0)
            free(bytes);
        ring_destroy(next);
        return -ENOMEM;
    }
    free(a->ring_bytes);
    a->ring_bytes = bytes;
    a->ring_len = len;
    ring_destroy(a->prev_ring);
    a->prev_ring = NULL;
    a->pending = 0;
    if (a->ring && (drop_prev || a->ring->epoch == 0 || a->ring->q != next->q)) {
        ring_destroy(a->ring);
        a->ring = NULL;
    }
    if (a->ring) {
        a->prev_ring = a->ring;
        a->pending = ring_plan(a->prev_ring, next, moves);
    }
    log_info("cluster: ring epoch %" PRIu64 " hash %016" PRIx64 " of %u members, %u "
             "partitions to move (pending transfers)", next->epoch, next->hash, next->n_members,
             a->pending);
    free(moves);
    if (next->n_members > 1 && ring_member_index(next, a->id) != RING_NONE)
        __atomic_store_n(&a->node->left_cluster, 0, __ATOMIC_RELAXED); /* it joined again */
    a->ring = next;
    a->adopted_ms = now;
    a->rejoin_at_ms = 0;
    admin_publish(a); /* the shards' copy */
    struct gossip_info self = member_at(a->members, 0)->info;
    self.ring_epoch = next->epoch;
    self.ring_hash = next->hash;
    rc = member_set_self(a->members, &self, now);
    admin_save_state(a);
    return rc;
}

/* This node's ring alone: epoch 1 (a cluster of one) or, provisional, 0 (a
 * joiner's until it has the cluster's: any real ring beats it). */
static int admin_own_ring(struct admin *a, uint64_t epoch, uint64_t now)
{
    struct ring_member me;
    admin_ring_member(&member_at(a->members, 0)->info, &me);
    struct ring *r;
    int rc = admin_build_ring(&me, 1, a->node->npartitions, NULL, &r);
    if (rc != 0)
        return rc;
    r->epoch = epoch;
    a->ring_req_id[0] = '\0'; /* a request made for the old ring: not worth waiting on */
    return admin_adopt_ring(a, r, true, now);
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
        if (rc == 0 && strcmp(addr, self_addr) != 0 && (rc = member_add_seed(a->members, addr)) == 0) {
            n++;
            if (a->n_seed_addrs < ADMIN_SEEDS_KEPT) /* for a join again (no lookup then) */
                snprintf(a->seed_addrs[a->n_seed_addrs++], sizeof a->seed_addrs[0], "%s", addr);
        }
        if (rc != 0) {
            log_error("seeds: %s; exiting", rc == -EINVAL ? err : strerror(-rc));
            return rc;
        }
    }
    a->join = n > 0;
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

/* Whether a node restored from s (with its saved ring) joins its seeds as a
 * new join: it left a cluster (s.left_cluster: member_forget() since it was
 * last JOINING), is alone in its ring with no member but tombstones, and was
 * started with seeds (admin_seeds() ran). Its old cluster holds it as a left
 * tombstone, which its JOINING (a higher state_version) and ALIVE (the
 * incarnation member_set_self() raises past the saved one) outrank, so it is
 * admitted and given partitions as any joiner. A cluster of one that never
 * left keeps its ring whatever its seeds say (two of them seeding each other
 * would otherwise both wait for a ring forever). */
static bool admin_rejoins(const struct admin *a, const struct cluster_state *s,
                          const struct ring *ring)
{
    if (!s->left_cluster || !a->join || ring->n_members != 1 ||
        ring_member_index(ring, a->id) == RING_NONE)
        return false;
    for (uint32_t i = 0; i < s->n_peers; i++)
        if (s->peers[i].state != MEMBER_LEFT)
            return false;
    return true;
}

/* At start-up, with a saved cluster state, the node comes back as the
 * member it was, seeds or not (they are added), auto-join or not (it is a
 * member already): cluster_state_restore() puts back this node's state,
 * state_version and incarnation and the other members (not heard from:
 * down, suspected, until they or a peer speak); the saved ring becomes the
 * current ring (admin_adopt_ring(): the shards' snapshot too, so CLUSTER
 * INFO answers at once); the members are asked to take this node back, a
 * few at a time until one answers (member_join() every ADMIN_JOIN_RETRY_MS:
 * they answer with the cluster as it is now). Start-up
 * stops (logged) on a file that cannot be read or is damaged, or that
 * cluster_state_check() refuses (another node's; a Q other than the
 * partitions setting while other members share the ring). A node alone
 * takes a new partitions setting, and a node that left starts as a cluster
 * of one, or, with seeds, joins them again (admin_rejoins()): all drop the
 * saved ring. */
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
    bool rejoin = admin_rejoins(a, &s, ring);
    if (s.state == MEMBER_LEFT || ring->q != q || rejoin) {
        log_info("cluster: %s/%s: %s; the saved ring is dropped", cfg->dir, CLUSTER_STATE_FILE,
                 rejoin ? "this node left its cluster and, started with seeds, joins through "
                          "them again (a new join)"
                 : s.state == MEMBER_LEFT ? "this node left its cluster and starts as a cluster "
                                            "of one" : "a node alone takes the new partitions");
        ring_destroy(ring);
        ring = NULL;
    }
    rc = cluster_state_restore(a->members, &s, now);
    if (rc == 0 && ring)
        rc = admin_adopt_ring(a, ring, true, now);
    else
        ring_destroy(ring);
    for (uint32_t i = 0; rc == 0 && a->ring && i < s.n_peers; i++)
        if (s.peers[i].state != MEMBER_LEFT) { /* joins through them until one answers */
            a->join = true;
            a->join_at_ms = now;
        }
    a->rejoin_if_removed = rc == 0 && a->ring && a->join && cfg->seeds[0] != '\0';
    member_events_clear(a->members); /* what was restored is not news */
    if (rc == 0)
        log_info("cluster: restored from %s/%s: incarnation %" PRIu64 ", %s ring, %u other "
                 "member(s)%s", cfg->dir, CLUSTER_STATE_FILE,
                 member_at(a->members, 0)->incarnation, a->ring ? "the saved" : "a new",
                 member_count(a->members) - 1,
                 a->join ? ", asked to take this node back" : "");
    cluster_state_fini(&s);
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
    mc.mac = cfg->cluster_secret[0] != '\0' || cfg->cluster_name[0] != '\0';
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
        rc = admin_seeds(a, cfg->seeds, self.cluster_addr);
    if (rc == 0)
        rc = admin_restore_state(a, now);
    if (rc != 0)
        return rc;
    if (a->ring) /* restored: the member it was, with its saved ring */
        return 0;
    if (!a->join) /* a cluster of one */
        return member_set_state(a->members, a->id, MEMBER_UP, now) ?: admin_own_ring(a, 1, now);
    /* a joiner: admitted at once with auto-join (state_version 1), else when
     * an operator adds it; a provisional ring until it has the cluster's */
    if (cfg->auto_join && (rc = member_set_state(a->members, a->id, MEMBER_JOINING, now)) != 0)
        return rc;
    return admin_own_ring(a, 0, now);
}

/* ---- the ring agreed: claimant, dissemination, joins and leaves ---- */

/* Whether ring (epoch, hash) beats ring (epoch_b, hash_b): a higher epoch,
 * or the same and a higher hash. */
static bool admin_beats(uint64_t epoch, uint64_t hash, uint64_t epoch_b, uint64_t hash_b)
{
    return epoch > epoch_b || (epoch == epoch_b && hash > hash_b);
}

/* Whether a ring member (m: its record; NULL when the table does not know
 * it, which counts as alive while unknown_alive) may claim: alive, not
 * left, and not leaving unless every ring member is (keeping). */
static bool admin_may_claim(const struct member *m, bool keeping, bool unknown_alive)
{
    if (!m)
        return unknown_alive;
    if (m->health == MEMBER_DEAD || m->state == MEMBER_LEFT)
        return false;
    return keeping || m->state != MEMBER_LEAVING;
}

/* The claimant is the member with the lowest id among those alive, in the
 * current ring and not leaving or left; when every alive ring member is
 * leaving (two DELETEs at once, each accepted where the other was not yet
 * known), the lowest-id alive one, which cancels its own leave
 * (admin_claim()): a ring is never emptied. True when it is this node. */
static bool admin_is_claimant(const struct admin *a, uint64_t now)
{
    if (!admin_in_ring(a))
        return false;
    /* a ring member the table does not know may be one gossip has not
     * brought yet; unknown ADMIN_UNKNOWN_MS after the ring came, it is gone
     * (or never answers) and must not keep everyone from claiming */
    bool unknown_alive = now < a->adopted_ms + ADMIN_UNKNOWN_MS, keeping = true;
    for (uint32_t i = 0; keeping && i < a->ring->n_members; i++)
        keeping = !admin_may_claim(member_find(a->members, a->ring->members[i].id), false,
                                   unknown_alive);
    for (uint32_t i = 0; i < a->ring->n_members; i++) { /* sorted by id */
        const char *id = a->ring->members[i].id;
        if (admin_may_claim(member_find(a->members, id), keeping, unknown_alive))
            return strcmp(id, a->id) == 0;
    }
    return false;
}

/* Whether node id's ring counts for this node: a node in a real ring listens
 * only to members of that ring or the one before, JOINING or not (a node of
 * another cluster, met through a POST of one of its members, advertises a
 * ring we are not in and must not stop our claimant, settle our members, or
 * be taken by a member of ours that joins again); a joiner with a
 * provisional ring (epoch 0) listens to every peer, to learn its cluster's
 * ring. */
static bool admin_counts_id(const struct admin *a, const char *id)
{
    return a->ring->epoch == 0 || ring_member_index(a->ring, id) != RING_NONE ||
           (a->prev_ring && ring_member_index(a->prev_ring, id) != RING_NONE);
}

/* The alive member (admin_counts_id()) whose advertised ring beats ours the
 * most, or NULL. */
static const struct member *admin_best_ring_peer(const struct admin *a)
{
    const struct member *best = NULL;
    uint64_t epoch = a->ring->epoch, hash = a->ring->hash;
    for (uint32_t i = 1; i < member_count(a->members); i++) {
        const struct member *m = member_at(a->members, i);
        const struct gossip_info *in = &m->info;
        if (m->health != MEMBER_ALIVE || m->state == MEMBER_LEFT ||
            !admin_counts_id(a, m->info.id))
            continue;
        if (admin_beats(in->ring_epoch, in->ring_hash, epoch, hash)) {
            best = m;
            epoch = in->ring_epoch;
            hash = in->ring_hash;
        }
    }
    return best;
}

/* The states a ring implies: joiners in it are up, leavers out of it that
 * were in the ring before it have left. The claimant sets them after its
 * change; every node that has the newest ring it knows of sets them too
 * (the same change to the same version everywhere, so they agree), so a
 * node that gossip failed to tell still settles, a joiner sees itself up
 * (and a node of a multi-node ring that another cluster admitted re-asserts
 * itself up, a version higher). Nothing with a provisional ring or while a
 * member of our ring advertises a newer one; never a node that was in
 * neither ring (one of another cluster, met through POST /v1/nodes). A
 * leaver is left only once the ring has stood ADMIN_SETTLE_LEFT_MS: two
 * claimants at once (DELETE of each node of a 2-node cluster at the other:
 * each removes the other) would otherwise each set the other left, and the
 * ring would be emptied; in that time the losing ring's node sees the
 * winner's and takes it, and the winner, every member of its ring leaving,
 * keeps itself (admin_is_claimant()). */
static void admin_settle_states(struct admin *a, uint64_t now)
{
    if (a->ring->epoch == 0 || admin_best_ring_peer(a))
        return;
    for (uint32_t i = 0; i < member_count(a->members); i++) {
        const struct member *m = member_at(a->members, i);
        bool in_ring = ring_member_index(a->ring, m->info.id) != RING_NONE;
        bool was_in = a->prev_ring && ring_member_index(a->prev_ring, m->info.id) != RING_NONE;
        enum member_state to = m->state;
        if (m->state == MEMBER_JOINING && in_ring)
            to = MEMBER_UP;
        else if (m->state == MEMBER_LEAVING && !in_ring && was_in &&
                 now >= a->adopted_ms + ADMIN_SETTLE_LEFT_MS)
            to = MEMBER_LEFT;
        if (to != m->state) {
            log_info("cluster: node %s is %s", m->info.id, to == MEMBER_UP ? "up (in the ring)"
                                                                           : "left");
            member_set_state(a->members, m->info.id, to, now);
        }
    }
}

/* Whether two sorted member lists are the same (ids, weights, zones). */
static bool admin_same_members(const struct ring_member *x, uint32_t nx,
                               const struct ring_member *y, uint32_t ny)
{
    if (nx != ny)
        return false;
    for (uint32_t i = 0; i < nx; i++)
        if (strcmp(x[i].id, y[i].id) != 0 || x[i].weight != y[i].weight ||
            strcmp(x[i].zone, y[i].zone) != 0)
            return false;
    return true;
}

/* The claimant's new ring, sent at once to every alive member (a RING frame
 * with seq 0: asked by nobody). Each takes it by admin_take_ring()'s rules,
 * as an answer to its own request: without it a member hears of the ring
 * from gossip, then asks, 50 ms to 2 s later, and a joiner meanwhile
 * refuses the hints and forwards that the claimant's side already sends it
 * under the new ring. Gossip and RING_REQ still bring it to any member the
 * push missed. */
static void admin_push_ring(struct admin *a)
{
    for (uint32_t i = 1; i < member_count(a->members); i++) {
        const struct member *m = member_at(a->members, i);
        if (m->health == MEMBER_ALIVE && m->state != MEMBER_LEFT)
            member_send_ring(a->members, m->info.cluster_addr, 0, a->ring->epoch, a->ring->hash,
                             a->ring_bytes, (uint32_t)a->ring_len);
    }
}

/* The claimant's turn: when the desired members differ from the ring's,
 * builds the next ring from the current one and adopts it. */
static void admin_claim(struct admin *a, uint64_t now)
{
    /* a claimant whose ring is beaten fetches the newer one first (and a
     * cluster of one learning of another cluster never claims its joiners) */
    if (!admin_is_claimant(a, now) || admin_best_ring_peer(a))
        return;
    if (member_at(a->members, 0)->state == MEMBER_LEAVING) {
        log_warn("cluster: every member of the ring is leaving; this node (the lowest id "
                 "alive) cancels its own leave and stays, so that the ring is never empty");
        member_set_state(a->members, a->id, MEMBER_UP, now);
    }
    struct ring_member *desired = malloc(sizeof *desired * admin_desired_cap(a));
    if (!desired)
        return;
    uint32_t n = admin_desired(a, NULL, NULL, desired);
    struct ring *next = NULL;
    if (n > 0 && !admin_same_members(desired, n, a->ring->members, a->ring->n_members)) {
        int rc = admin_build_ring(desired, n, a->ring->q, a->ring, &next);
        if (rc == 0) {
            log_info("cluster: this node (the claimant) changes the ring: %u members", n);
            rc = admin_adopt_ring(a, next, false, now);
            if (rc == 0)
                admin_push_ring(a);
        }
        if (rc != 0 && now >= a->claim_warn_at_ms) {
            log_warn("cluster: cannot build the next ring: %s; kept the current one, trying "
                     "again (this is logged every %d s)", strerror(-rc), ADMIN_WARN_MS / 1000);
            a->claim_warn_at_ms = now + ADMIN_WARN_MS;
        }
    }
    free(desired);
}

/* Asks a peer for its ring: the alive member whose advertised ring beats
 * ours the most, at once unless it was asked already while it advertised
 * that ring (then again after ADMIN_RING_REQ_MS); else, every ADMIN_RING_REQ_MS, the next alive member
 * in turn, so that a ring whose advertisement gossip failed to bring (a
 * joiner learns its peers' info once, from a push-pull) still arrives; a
 * cluster of one asks every peer in turn (a cluster that admitted it may
 * have set it UP in the new ring before it heard it was JOINING: it takes
 * that ring, which has it, and no other: admin_take_ring()). A
 * RING_REQ carries our ring's epoch and hash: only a peer whose ring beats it
 * answers. One request is awaited at a time (a newer one replaces it). */
static void admin_fetch_ring(struct admin *a, uint64_t now)
{
    const struct member *peer = admin_best_ring_peer(a);
    bool waiting = a->ring_req_id[0] && now < a->ring_req_until_ms;
    /* asked already, for the ring it advertises now (a request sent before
     * it advertised a newer one, say the periodic one that a peer without
     * a better ring does not answer, must not hold the new one up) */
    if (peer && waiting && strcmp(peer->info.id, a->ring_req_id) == 0 &&
        !admin_beats(peer->info.ring_epoch, peer->info.ring_hash, a->ring_req_epoch,
                     a->ring_req_hash))
        return;
    if (!peer && (waiting || now < a->ring_sync_at_ms))
        return;
    for (uint32_t k = 1; !peer && k < member_count(a->members); k++) {
        const struct member *m = member_at(a->members, 1 + a->ring_sync_next++ %
                                                               (member_count(a->members) - 1));
        if (m->health == MEMBER_ALIVE && m->state != MEMBER_LEFT &&
            (admin_counts_id(a, m->info.id) || a->ring->n_members == 1))
            peer = m;
    }
    a->ring_req_id[0] = '\0';
    a->ring_sync_at_ms = now + ADMIN_RING_REQ_MS;
    if (!peer)
        return;
    memcpy(a->ring_req_id, peer->info.id, sizeof a->ring_req_id);
    a->ring_req_until_ms = now + ADMIN_RING_REQ_MS;
    a->ring_req_epoch = peer->info.ring_epoch;
    a->ring_req_hash = peer->info.ring_hash;
    if (++a->ring_req_seq == 0) /* 0 is a pushed ring's (admin_push_ring) */
        a->ring_req_seq = 1;
    member_request_ring(a->members, peer->info.id, a->ring_req_seq, a->ring->epoch,
                        a->ring->hash, now);
}

/* A ring answered by msg's sender was not taken: the request stays as if
 * still awaited for ADMIN_RING_REQ_MS, so admin_fetch_ring() asks that
 * sender for the same ring again only then (before, it asked again on the
 * next loop turn, and the sender answered each time with the whole ring). */
static void admin_hold_request(struct admin *a, const struct member_ring_msg *msg, uint64_t now)
{
    snprintf(a->ring_req_id, sizeof a->ring_req_id, "%s", msg->from);
    a->ring_req_epoch = msg->epoch;
    a->ring_req_hash = msg->hash;
    a->ring_req_until_ms = now + ADMIN_RING_REQ_MS;
}

/* This node is UP in a real ring and a member of it sent a ring that beats
 * it and lacks this node: either this node lost a race between two
 * claimants (views that differed: each built the next epoch with another
 * joiner, and this node was the loser's joiner), or it is being taken out
 * for leaving and the ring came before the gossip of its LEAVING state
 * (both travel separately; under load either may come first). Joining
 * again at once would undo a leave (JOINING a version higher beats the
 * DELETE's LEAVING), so it waits ADMIN_REJOIN_GRACE_MS from the first such
 * ring: a leaver hears LEAVING (and takes the ring then) or LEFT by then,
 * as the claimant sets it LEFT before the grace ends. True when the grace
 * is over and this node, still UP, sets itself JOINING again (admitted, a
 * version higher) to take the ring, so that the claimant adds it; until
 * then the ring is not taken, and the sender is asked again after
 * ADMIN_RING_REQ_MS (or when the grace ends, if sooner). */
static bool admin_rejoin(struct admin *a, const struct member_ring_msg *msg, uint64_t now)
{
    /* a wait that no such ring renewed long after its end (its sender gone,
     * no other had the ring) is over: a later one has its own grace */
    if (a->rejoin_at_ms == 0 || now >= a->rejoin_at_ms + ADMIN_REJOIN_STALE_MS) {
        a->rejoin_at_ms = now + ADMIN_REJOIN_GRACE_MS;
        log_info("cluster: ring epoch %" PRIu64 " of node %s, a member of ours, beats ours and "
                 "lacks this node: unless the membership says within %d s that this node is "
                 "leaving, it joins again", msg->epoch, msg->from, ADMIN_REJOIN_GRACE_MS / 1000);
    }
    if (now < a->rejoin_at_ms) {
        admin_hold_request(a, msg, now);
        if (a->rejoin_at_ms < a->ring_req_until_ms) /* asked again when the grace ends */
            a->ring_req_until_ms = a->rejoin_at_ms;
        return false;
    }
    log_warn("cluster: ring epoch %" PRIu64 " of node %s, a member of ours, beats ours and "
             "lacks this node, still up after %d s (another claimant's change won): this node "
             "joins again", msg->epoch, msg->from, ADMIN_REJOIN_GRACE_MS / 1000);
    member_set_state(a->members, a->id, MEMBER_JOINING, now);
    return true;
}

/* A RING answer to our request (asked of a peer admin_counts_id() lets
 * count, or, by a cluster of one, of any), or a claimant's push
 * (admin_push_ring: seq 0, taken from the same peers): adopted when it decodes, its
 * hash is the one it carries, it beats ours, and this node is in it, or is
 * joining or leaving and the sender counts (with a real ring, only a member
 * of it or of the one before: a node of ours that joins again never takes
 * another cluster's ring), or is UP and admin_rejoin() says it joins
 * again. */
static void admin_take_ring(struct admin *a, const struct member_ring_msg *msg, uint64_t now)
{
    bool is_pushed = msg->seq == 0; /* a claimant's (admin_push_ring); requests count from 1 */
    if (!is_pushed && (strcmp(msg->from, a->ring_req_id) != 0 || msg->seq != a->ring_req_seq))
        return; /* not asked for, or an old answer */
    if (is_pushed && !admin_counts_id(a, msg->from) && a->ring->n_members != 1)
        return; /* pushed by a node whose ring does not count for us (as we would not ask it) */
    if (!is_pushed)
        a->ring_req_id[0] = '\0';
    if (!admin_beats(msg->epoch, msg->hash, a->ring->epoch, a->ring->hash))
        return;
    struct ring *r;
    int rc = ring_decode(msg->blob, msg->blob_len, &r);
    if (rc != 0 || r->hash != msg->hash || r->epoch != msg->epoch || r->q != a->ring->q) {
        log_warn("cluster: node %s sent a ring that %s; ignored", msg->from,
                 rc != 0 ? "does not decode" : r->q != a->ring->q ? "has another partition count"
                                                                  : "is not the one it announced");
        if (rc == 0)
            ring_destroy(r);
        if (!is_pushed)
            admin_hold_request(a, msg, now);
        return;
    }
    enum member_state state = member_at(a->members, 0)->state;
    bool take = ring_member_index(r, a->id) != RING_NONE;
    if (!take && state == MEMBER_UP)
        take = admin_in_ring(a) && ring_member_index(a->ring, msg->from) != RING_NONE &&
               admin_rejoin(a, msg, now);
    else if (!take)
        take = state != MEMBER_LEFT && admin_counts_id(a, msg->from);
    if (!take) {
        ring_destroy(r);
        if (!is_pushed && !a->ring_req_id[0]) /* (admin_rejoin() set its own wait) */
            admin_hold_request(a, msg, now);
        return;
    }
    if (admin_adopt_ring(a, r, false, now) != 0)
        log_warn("cluster: cannot adopt the ring of node %s (out of memory)", msg->from);
}

/* Answers RING_REQs with our ring's bytes when it beats the asker's, and
 * takes RING answers. */
static void admin_ring_msgs(struct admin *a, uint64_t now)
{
    const struct member_ring_msg *msgs;
    uint32_t n = member_ring_msgs(a->members, &msgs);
    for (uint32_t i = 0; i < n; i++) {
        if (msgs[i].type == GOSSIP_RING_REQ && admin_beats(a->ring->epoch, a->ring->hash,
                                                           msgs[i].epoch, msgs[i].hash))
            member_send_ring(a->members, msgs[i].from_addr, msgs[i].seq, a->ring->epoch,
                             a->ring->hash, a->ring_bytes, (uint32_t)a->ring_len);
        else if (msgs[i].type == GOSSIP_RING)
            admin_take_ring(a, &msgs[i], now);
    }
}

/* Restarted with its directory and seeds, the node hears that its cluster
 * removed it while it was down (DELETE /v1/nodes/{id} of a dead node): as a
 * node that left and is started with seeds (admin_rejoins()), it forgets its
 * peers and joins through its seeds as a new join (with auto-join no, it
 * introduces itself and waits for POST /v1/nodes). Its old data is dropped
 * as any joiner's is once its new partitions come by transfer; until a ring
 * of several holds it, it serves no key (its copy is stale). */
static void admin_rejoin_after_removal(struct admin *a, uint64_t now)
{
    const struct cfg *cfg = a->node->cfg;
    log_info("cluster: this node was removed from its cluster while it was down; started "
             "with seeds, it joins through them again (a new join)");
    a->rejoin_if_removed = false;
    member_forget(a->members, now);
    a->n_admits = 0;
    a->ring_req_id[0] = '\0';
    /* its old data is stale: no key served until a ring of several holds
     * it (admin_adopt_ring() clears the flag) */
    __atomic_store_n(&a->node->left_cluster, 1, __ATOMIC_RELAXED);
    a->join = false;
    for (uint32_t i = 0; i < a->n_seed_addrs; i++) /* as resolved at start: no lookup here */
        a->join |= member_add_seed(a->members, a->seed_addrs[i]) == 0;
    if (!a->join) {
        log_warn("cluster: cannot add the seeds again (out of memory): this node stays a "
                 "cluster of one that serves no key");
        if (admin_own_ring(a, 1, now) != 0)
            log_warn("cluster: cannot build the ring of this node alone (out of memory)");
        return;
    }
    a->join_at_ms = now;
    if (cfg->auto_join && member_set_state(a->members, a->id, MEMBER_JOINING, now) != 0)
        log_warn("cluster: cannot announce this node's join (out of memory)");
    if (admin_own_ring(a, 0, now) != 0)
        log_warn("cluster: cannot drop this node's ring (out of memory)");
}

/* This node's own state, as the cluster decided it: seen left, it becomes a
 * cluster of one again; admitted into a cluster while it is a cluster of
 * one, it drops its ring and joins; up again (a POST cancelled its leave)
 * but out of the ring it took while leaving, it joins again. */
static void admin_self_state(struct admin *a, uint64_t now)
{
    const struct member *self = member_at(a->members, 0);
    if (self->state == MEMBER_LEFT && a->rejoin_if_removed) {
        admin_rejoin_after_removal(a, now);
    } else if (self->state == MEMBER_LEFT) {
        log_info("cluster: this node has left its cluster: it forgets its peers, is a "
                 "cluster of one and serves no key (CLUSTERDOWN) until it joins a cluster "
                 "again (POST /v1/nodes at a member, or a restart with seeds) or is "
                 "restarted alone");
        member_forget(a->members, now);
        a->join = false;
        a->n_admits = 0;
        a->ring_req_id[0] = '\0';
        /* its clients (a Redis Cluster client's map names it) would write
         * where the cluster never reads: they get CLUSTERDOWN and look again;
         * the shards take it with the ring of one (admin_publish()) */
        __atomic_store_n(&a->node->left_cluster, 1, __ATOMIC_RELAXED);
        if (admin_own_ring(a, 1, now) != 0)
            log_warn("cluster: cannot build the ring of this node alone (out of memory)");
    } else if (self->state == MEMBER_JOINING && member_admitted(self) && a->ring->epoch > 0 &&
               a->ring->n_members == 1 && admin_in_ring(a)) {
        log_info("cluster: this node, a cluster of one, was added to another cluster: it "
                 "drops its ring and joins");
        if (admin_own_ring(a, 0, now) != 0)
            log_warn("cluster: cannot drop this node's ring (out of memory)");
    } else if (self->state == MEMBER_UP && a->ring->epoch > 0 && !admin_in_ring(a) &&
               a->prev_ring && ring_member_index(a->prev_ring, a->id) != RING_NONE &&
               !admin_best_ring_peer(a)) {
        /* it took the ring of its leave while leaving, then a POST cancelled
         * the leave: no ring will beat this one to make it join again
         * (admin_take_ring()), and the claimant adds joiners only */
        log_warn("cluster: this node is up (its leave cancelled) but out of the ring it took "
                 "while leaving: it joins again");
        member_set_state(a->members, a->id, MEMBER_JOINING, now);
    }
    if (a->rejoin_if_removed && member_synced(a->members) && self->state != MEMBER_LEFT)
        a->rejoin_if_removed = false; /* its cluster holds it as a member */
}

/* The member at this cluster address, or NULL. */
static const struct member *admin_member_at_addr(const struct admin *a, const char *addr)
{
    for (uint32_t i = 1; i < member_count(a->members); i++)
        if (strcmp(member_at(a->members, i)->info.cluster_addr, addr) == 0)
            return member_at(a->members, i);
    return NULL;
}

/* Whether m is up in a ring of more than itself that is not ours: the
 * ring hash it advertises is not the one of its ring alone (a ring's hash
 * is a function of its members and layout, not of its epoch: a cluster of
 * one, of any epoch, advertises the hash this computes from m's own
 * record). Such a node cannot be added: it would have to leave that
 * cluster first (and it would re-assert itself up: admin_settle_states()). */
static bool admin_in_other_ring(const struct admin *a, const struct member *m)
{
    if (m->state != MEMBER_UP || m->info.ring_epoch == 0 ||
        ring_member_index(a->ring, m->info.id) != RING_NONE)
        return false;
    struct ring_member alone;
    admin_ring_member(&m->info, &alone);
    struct ring *r;
    if (admin_build_ring(&alone, 1, a->ring->q, NULL, &r) != 0)
        return false; /* out of memory: the target refuses the admission itself */
    bool other = r->hash != m->info.ring_hash;
    ring_destroy(r);
    return other;
}

/* Keeps addr in the refused admissions GET /v1/nodes lists (the oldest
 * makes room). */
static void admin_refused(struct admin *a, const char *addr)
{
    uint32_t k = 0;
    while (k < a->n_refused && strcmp(a->refused[k], addr) != 0)
        k++;
    if (k == ADMIN_ADMITS_MAX) {
        memmove(a->refused[0], a->refused[1], sizeof a->refused[0] * (ADMIN_ADMITS_MAX - 1));
        k--;
    }
    if (k == a->n_refused)
        a->n_refused++;
    snprintf(a->refused[k], sizeof a->refused[k], "%s", addr);
}

/* Admits m (a node an operator adds) unless it is in the ring or admitted:
 * 0; -EEXIST (logged, listed) when it is up in another cluster's ring. */
static int admin_admit(struct admin *a, const struct member *m, uint64_t now)
{
    if (ring_member_index(a->ring, m->info.id) != RING_NONE ||
        (m->state == MEMBER_JOINING && member_admitted(m)))
        return 0;
    if (admin_in_other_ring(a, m)) {
        log_warn("cluster: node %s at %s is up in another cluster's ring: not admitted (POST "
                 "/v1/nodes); remove it from that cluster first", m->info.id,
                 m->info.cluster_addr);
        admin_refused(a, m->info.cluster_addr);
        return -EEXIST;
    }
    log_info("cluster: node %s at %s admitted (POST /v1/nodes)", m->info.id,
             m->info.cluster_addr);
    member_set_state(a->members, m->info.id, MEMBER_JOINING, now);
    return 0;
}

/* The addresses POST /v1/nodes gave: contacted every ADMIN_JOIN_RETRY_MS
 * until the member there is known (and not as left: its own record must
 * have come), then admitted (admin_admit(): or refused); forgotten after
 * ADMIN_ADMIT_MS. */
static void admin_admissions(struct admin *a, uint64_t now)
{
    for (uint32_t k = 0; k < a->n_admits;) {
        struct admin_admit *ad = &a->admits[k];
        const struct member *m = admin_member_at_addr(a, ad->addr);
        bool done = m && m->state != MEMBER_LEFT;
        if (done)
            (void)admin_admit(a, m, now);
        else if (now >= ad->until_ms)
            log_warn("cluster: no node answered at %s (POST /v1/nodes); gave up", ad->addr);
        if (done || now >= ad->until_ms) {
            *ad = a->admits[--a->n_admits];
            continue;
        }
        if (now >= ad->next_ms) {
            member_contact(a->members, ad->addr, now);
            ad->next_ms = now + ADMIN_JOIN_RETRY_MS;
        }
        k++;
    }
}

/* Everything the ring follows, once per loop turn (cheap: passes over the
 * members and the ring's members). */
static void admin_reconcile(struct admin *a, uint64_t now)
{
    admin_self_state(a, now);
    admin_admissions(a, now);
    admin_claim(a, now);
    admin_settle_states(a, now);
    admin_fetch_ring(a, now);
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

/* GET /v1/ring: view_ring() with each pending transfer's state as this node
 * sees it (moves to it: its pull's state, "done" when it was a replica
 * already; moves from it: "releasing", "dropping" or "done"; "remote" for
 * moves between others) and the node's transfer figures (transfer.h). */
static json_t *admin_ring_view(const struct admin *a)
{
    json_t *v = view_ring(a->ring, a->prev_ring);
    json_t *moves = json_object_get(v, "pending_transfers");
    size_t i;
    json_t *mv;
    json_array_foreach(moves, i, mv) {
        uint32_t p = (uint32_t)json_integer_value(json_object_get(mv, "partition"));
        unsigned st = transfer_state(a->node, p);
        const char *name = "remote";
        if (strcmp(json_string_value(json_object_get(mv, "to")), a->id) == 0)
            name = st == TRANSFER_NONE ? "done" : transfer_state_name(st); /* none: was a replica */
        else if (strcmp(json_string_value(json_object_get(mv, "from")), a->id) == 0)
            name = st == TRANSFER_RELEASING || st == TRANSFER_DROPPING ? transfer_state_name(st)
                                                                       : "done";
        json_object_set_new(mv, "state", json_string(name));
    }
    struct transfer_stats t;
    transfer_node_stats(a->node, &t);
    json_object_set_new(v, "transfers", view_transfers(&t));
    return v;
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
    METRIC("pending_transfers", "pending_transfers", "gauge",
           "Partitions whose owner changed with the last ring change.", a->pending);
    struct aae_totals aae;
    aae_totals(n, &aae);
    METRIC("aae_exchanges", "aae_exchanges_total", "counter",
           "Anti-entropy exchanges run to their end (one partition, one peer).", aae.exchanges);
    METRIC("aae_keys_repaired", "aae_keys_repaired_total", "counter",
           "Keys anti-entropy repaired (here or at a peer).", aae.keys_repaired);
    METRIC("aae_bytes_sent", "aae_sent_bytes_total", "counter",
           "Anti-entropy payload bytes sent (trees, keys, repaired states).", aae.bytes_out);
    METRIC("aae_bytes_received", "aae_received_bytes_total", "counter",
           "Anti-entropy payload bytes received.", aae.bytes_in);
    METRIC("aae_tree_rebuilds", "aae_tree_rebuilds_total", "counter",
           "Rebuilds of a shard's anti-entropy trees.", aae.rebuilds);
    METRIC("aae_trees_corrected", "aae_trees_corrected_total", "counter",
           "Trees a rebuild found off from the kept ones (0 unless a change was missed).",
           aae.trees_corrected);
    struct transfer_stats tx;
    transfer_node_stats(n, &tx);
    METRIC("transfer_partitions_pending", "transfer_partitions_pending", "gauge",
           "Partitions this node must pull, not streaming yet.", tx.pending);
    METRIC("transfer_partitions_streaming", "transfer_partitions_streaming", "gauge",
           "Partitions this node is pulling now (or whose last keys wait for the log).",
           tx.streaming + tx.settling);
    METRIC("transfer_partitions_done", "transfer_partitions_done", "gauge",
           "Partitions pulled whole and durably since start-up.", tx.done);
    METRIC("transfer_partitions_releasing", "transfer_partitions_releasing", "gauge",
           "Partitions this node left and still holds (until their new list has them).",
           tx.releasing + tx.dropping);
    METRIC("transfer_bytes", "transfer_received_bytes_total", "counter",
           "Bytes of key states pulled in partition transfers.", tx.bytes);
    METRIC("transfer_keys", "transfer_received_keys_total", "counter",
           "Key states pulled in partition transfers.", tx.keys);
    METRIC("transfer_bytes_sent", "transfer_sent_bytes_total", "counter",
           "Bytes of key states served to nodes pulling partitions.", tx.bytes_sent);
    METRIC("transfer_keys_walked", "transfer_walked_keys_total", "counter",
           "Table entries met by the walks serving partition transfers.", tx.keys_walked);
    METRIC("transfer_keys_dropped", "transfer_dropped_keys_total", "counter",
           "Keys deleted here once their partition's new list held it.", tx.keys_dropped);
    METRIC("transfer_handoff_checks", "transfer_handoff_checks_total", "counter",
           "Handoff checks of released copies against their new list, ended.",
           tx.handoff_checks);
    METRIC("transfer_handoff_keys_sent", "transfer_handoff_sent_keys_total", "counter",
           "Keys handoff checks sent to a list that lacked them before a copy was dropped.",
           tx.handoff_keys_sent);
    METRIC("transfer_rate", "transfer_rate_bytes", "gauge",
           "Bytes per second pulled now (smoothed).", tx.rate);
    METRIC("transfer_eta_seconds", "transfer_eta_seconds", "gauge",
           "Estimated seconds until this node's pulls are done (-1: unknown).", tx.eta_s);
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

/* Hinted handoff's backlog per target node (hints.h), as Prometheus lines
 * with a target label: one family each for bytes and hints. */
struct admin_hint_lines {
    FILE *bytes, *count;
};

static void admin_hint_line(void *arg, const char *id, uint64_t bytes, uint64_t count)
{
    struct admin_hint_lines *l = arg;
    fprintf(l->bytes, "ringkv_hints_pending_bytes{target=\"%s\"} %" PRIu64 "\n", id, bytes);
    fprintf(l->count, "ringkv_hints_pending{target=\"%s\"} %" PRIu64 "\n", id, count);
}

/* text (malloc'd, taken) followed by the hint families; NULL: no memory. */
static char *admin_hint_metrics(const struct admin *a, char *text)
{
    char *b = NULL, *c = NULL, *out = NULL;
    size_t blen = 0, clen = 0;
    struct admin_hint_lines l = {open_memstream(&b, &blen), open_memstream(&c, &clen)};
    if (l.bytes && l.count)
        hint_each_target(a->node, admin_hint_line, &l);
    bool ok = l.bytes && l.count;
    ok &= (l.bytes ? fclose(l.bytes) : EOF) == 0;
    ok &= (l.count ? fclose(l.count) : EOF) == 0;
    if (ok && text &&
        asprintf(&out,
                 "%s# HELP ringkv_hints_pending_bytes Bytes of hints this node keeps for the "
                 "target node (hinted handoff), not yet delivered.\n# TYPE "
                 "ringkv_hints_pending_bytes gauge\n%s# HELP ringkv_hints_pending Hints this "
                 "node keeps for the target node, not yet delivered.\n# TYPE "
                 "ringkv_hints_pending gauge\n%s",
                 text, b, c) < 0)
        out = NULL;
    free(b);
    free(c);
    free(text);
    return out;
}

/* Adds the hint backlog this node keeps for the node described by o (its
 * "id"): "hints_pending_bytes" and "hints_pending". */
static void admin_node_hints(const struct admin *a, json_t *o)
{
    const char *id = json_string_value(json_object_get(o, "id"));
    if (!id)
        return;
    uint64_t count, bytes = hint_pending(a->node, id, &count);
    json_object_set_new(o, "hints_pending_bytes", json_integer((json_int_t)bytes));
    json_object_set_new(o, "hints_pending", json_integer((json_int_t)count));
}

static void admin_prometheus(struct admin *a, struct http_response *res)
{
    struct view_metric m[ADMIN_METRICS_MAX];
    size_t k = admin_metrics(a, m);
    res->body = admin_hint_metrics(a, view_prometheus(m, k));
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

/* The plan of the desired members plus extra (admin_desired(); a record of
 * extra already there, an admitted joiner, gives way). */
static void admin_plan_join(struct admin *a, struct http_response *res, const char *id,
                            const struct ring_member *extra)
{
    struct ring_member *members = malloc(sizeof *members * admin_desired_cap(a));
    if (!members) {
        http_error(res, 500, "out of memory");
        return;
    }
    admin_plan(a, res, "join", id, members, admin_desired(a, extra, extra->id, members));
    free(members);
}

/* A node id for a node not yet met, as its address: a placeholder for the plan. */
static void admin_provisional_id(const char *address, char id[IDENTITY_LEN + 1])
{
    XXH128_hash_t h = XXH3_128bits(address, strlen(address));
    uint32_t tail = (uint32_t)XXH3_64bits_withSeed(address, strlen(address), 1);
    snprintf(id, IDENTITY_LEN + 1, "%016" PRIx64 "%016" PRIx64 "%08" PRIx32, h.high64, h.low64,
             tail);
}

/* Checks a join request's body: {"address": "host:port"} and nothing else
 * (a node's weight and zone are its own settings, gossiped; its id is its
 * own). *address points into body. NULL, or what is wrong. */
static const char *admin_join_fields(json_t *body, const char **address)
{
    const char *addr = NULL;
    json_error_t err;
    if (!json_is_object(body))
        return "the body must be a JSON object";
    if (json_unpack_ex(body, &err, JSON_STRICT, "{s:s}", "address", &addr) != 0)
        return "expected {\"address\": \"host:cluster-port\"} and nothing else (a node's weight "
               "and zone are its own settings)";
    const char *colon = strrchr(addr, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || colon == addr || strlen(addr) > GOSSIP_ADDR_MAX || !colon[1] || *end ||
        port < 1 || port > 65535)
        return "address must be host:port";
    *address = addr;
    return NULL;
}

/* "host:port" or "[v6]:port" with a numeric host, as member.h writes
 * addresses, into out; -EINVAL when it is not one (names are not resolved:
 * DNS would block the admin thread). */
static int admin_numeric_addr(const char *in, char *out, size_t cap)
{
    char host[GOSSIP_ADDR_MAX + 1];
    const char *colon = strrchr(in, ':');
    size_t hlen = colon ? (size_t)(colon - in) : 0;
    if (!colon || hlen == 0 || hlen >= sizeof host)
        return -EINVAL;
    memcpy(host, in, hlen);
    host[hlen] = '\0';
    if (host[0] == '[' && host[hlen - 1] == ']') {
        memmove(host, host + 1, hlen - 2);
        host[hlen - 2] = '\0';
    }
    unsigned char bin[16];
    char text[INET6_ADDRSTRLEN];
    int af = strchr(host, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(af, host, bin) != 1 || !inet_ntop(af, bin, text, sizeof text))
        return -EINVAL;
    admin_addr(out, cap, text, atoi(colon + 1));
    return 0;
}

/* What POST /v1/nodes does with the node at an address. */
enum admin_join_kind {
    ADMIN_JOIN_NEW,   /* not met (or left): contact it, then admit it */
    ADMIN_JOIN_KNOWN, /* a member not in the ring: admit it */
    ADMIN_JOIN_STAY,  /* leaving: cancel its leave */
};

/* The checks of POST /v1/nodes, the same for a dry run and the real one:
 * *m gets the member at addr (numeric; NULL when not met), *kind what the
 * POST does. NULL, or why it is refused (409). A leaving node stays (up
 * again, a version higher than its leave): still in the ring, nothing
 * changes; already out of it (not yet left), it sees a ring without itself
 * from a member of its ring while up, and joins again (admin_take_ring(),
 * after admin_rejoin()'s grace). */
static const char *admin_join_check(const struct admin *a, const char *addr,
                                    const struct member **m, enum admin_join_kind *kind)
{
    const struct member *x = *m = admin_member_at_addr(a, addr);
    bool in_ring = x && ring_member_index(a->ring, x->info.id) != RING_NONE;
    if (!admin_in_ring(a))
        return "this node is not in a ring yet: ask a member of the cluster";
    if (x && x->state == MEMBER_LEAVING) { /* out of the ring already, it joins again */
        *kind = ADMIN_JOIN_STAY;
        return NULL;
    }
    if (strcmp(addr, member_at(a->members, 0)->info.cluster_addr) == 0 || in_ring)
        return "that node is already a member of the ring";
    if (x && admin_in_other_ring(a, x))
        return "that node is up in another cluster's ring: remove it from that cluster first";
    *kind = x && x->state != MEMBER_LEFT ? ADMIN_JOIN_KNOWN : ADMIN_JOIN_NEW;
    return NULL;
}

/* POST /v1/nodes (not a dry run) of the node at addr (admin_join_check()
 * passed): admits it, contacting it first when it is not known
 * (admin_admissions()), or cancels its leave. 202 with its id when known. */
static void admin_add_node(struct admin *a, const char *addr, const struct member *m,
                           enum admin_join_kind kind, struct http_response *res, uint64_t now)
{
    const char *status = "joining";
    if (kind == ADMIN_JOIN_STAY) {
        log_info("cluster: node %s stays (POST /v1/nodes): its leave is cancelled", m->info.id);
        member_set_state(a->members, m->info.id, MEMBER_UP, now);
        status = "up";
    } else if (kind == ADMIN_JOIN_KNOWN) {
        (void)admin_admit(a, m, now);
    } else {
        uint32_t k = 0;
        while (k < a->n_admits && strcmp(a->admits[k].addr, addr) != 0)
            k++;
        if (k == ADMIN_ADMITS_MAX) {
            http_error(res, 409, "too many nodes being added at once; try again later");
            return;
        }
        if (k == a->n_admits)
            a->n_admits++;
        struct admin_admit *ad = &a->admits[k];
        snprintf(ad->addr, sizeof ad->addr, "%s", addr);
        ad->until_ms = now + ADMIN_ADMIT_MS;
        ad->next_ms = now;
        admin_admissions(a, now);
    }
    json_t *o = json_pack("{s:s, s:s}", "address", addr, "status", status);
    if (o && m)
        json_object_set_new(o, "id", json_string(m->info.id));
    admin_json(res, 202, o);
}

/* POST /v1/nodes: one set of checks (admin_join_check()); a dry run plans
 * the member at that address with its real id, weight and zone, or, for a
 * node not met yet, under a provisional id with the default weight 100 and
 * no zone (its own settings decide once it is contacted). */
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
    const char *address = NULL, *why = admin_join_fields(body, &address);
    char addr[GOSSIP_ADDR_MAX + 1];
    const struct member *m = NULL;
    enum admin_join_kind kind = ADMIN_JOIN_NEW;
    if (why)
        http_error(res, 400, why);
    else if (admin_numeric_addr(address, addr, sizeof addr) != 0)
        http_error(res, 400, "address must be a numeric IP and port (no DNS lookups here)");
    else if ((why = admin_join_check(a, addr, &m, &kind)) != NULL)
        http_error(res, 409, why);
    else if (!req->dry_run)
        admin_add_node(a, addr, m, kind, res, admin_now_ms());
    json_decref(body);
    if (why || !req->dry_run || res->status)
        return;
    struct ring_member joiner = {.weight = 100};
    if (m)
        admin_ring_member(&m->info, &joiner);
    else
        admin_provisional_id(addr, joiner.id);
    admin_plan_join(a, res, joiner.id, &joiner);
}

/* DELETE /v1/nodes/{id} of m, dry run or not, with the same checks: the
 * plan, or m marked leaving (the claimant takes it out of the ring and
 * marks it left). */
static void admin_remove_node(struct admin *a, const struct member *m, bool dry_run,
                              struct http_response *res)
{
    struct ring_member *members = malloc(sizeof *members * admin_desired_cap(a));
    uint32_t rest = members ? admin_desired(a, NULL, m->info.id, members) : 0;
    if (!members)
        http_error(res, 500, "out of memory");
    else if (m->state == MEMBER_LEAVING || m->state == MEMBER_LEFT)
        http_error(res, 409, "that node is already leaving or has left");
    else if (ring_member_index(a->ring, m->info.id) == RING_NONE)
        http_error(res, 409, "that node is not in the ring (a joiner not placed yet)");
    else if (rest == 0)
        http_error(res, 409, "the last node of a cluster cannot leave it");
    else if (dry_run)
        admin_plan(a, res, "leave", m->info.id, members, rest);
    else if (member_set_state(a->members, m->info.id, MEMBER_LEAVING, admin_now_ms()) != 0)
        http_error(res, 500, "cannot change the node's state");
    else
        admin_json(res, 202, json_pack("{s:s, s:s}", "id", m->info.id, "status", "leaving"));
    free(members);
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
        json_t *o = view_node(m, a->ring);
        if (o)
            admin_node_hints(a, o);
        admin_json(res, 200, o);
    }
    else if (!admin_in_ring(a))
        http_error(res, 409, "this node is not in a ring yet: ask a member of the cluster");
    else
        admin_remove_node(a, m, req->dry_run, res);
}

/* GET /v1/nodes: the members (view_nodes()) and the addresses whose
 * admission this node refused (a node up in another cluster's ring). */
static void admin_nodes(struct admin *a, struct http_response *res)
{
    json_t *o = view_nodes(a->members, a->ring), *refused = json_array();
    json_t *list = json_object_get(o, "nodes");
    for (size_t i = 0; i < json_array_size(list); i++)
        admin_node_hints(a, json_array_get(list, i));
    for (uint32_t k = 0; refused && k < a->n_refused; k++)
        json_array_append_new(refused, json_string(a->refused[k]));
    if (o && refused)
        json_object_set_new(o, "refused_admissions", refused);
    else
        json_decref(refused);
    admin_json(res, 200, o);
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
            admin_nodes(a, res);
        break;
    case HTTP_NODE:
        admin_node(a, req, res);
        break;
    case HTTP_RING:
        admin_json(res, 200, admin_ring_view(a));
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


/* Logs what membership events say, answers and takes rings, and lets the
 * ring follow the membership (admin_reconcile()). */
static void admin_events(struct admin *a, uint64_t now)
{
    const struct member_event *ev;
    uint32_t n = member_events(a->members, &ev);
    bool save = admin_state_events(ev, n);
    for (uint32_t i = 0; i < n; i++) {
        const struct member *m = member_at(a->members, ev[i].index);
        static const char *const health[] = {"alive", "suspect", "dead (down)"};
        if (ev[i].kind == MEMBER_EV_NEW || ev[i].kind == MEMBER_EV_HEALTH)
            log_info("cluster: node %s at %s is %s", m->info.id, m->info.cluster_addr,
                     health[m->health]);
    }
    admin_ring_msgs(a, now);
    member_events_clear(a->members);
    admin_reconcile(a, now);
    if (save)
        admin_save_state(a);
    if (n > 0) /* statuses, addresses: the shards' copy (snapshot.h) */
        admin_publish(a);
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
        if (a->join && member_synced(a->members))
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

/* A cluster-port connection of the node-to-node protocol: to its shard. */
static void admin_wire_sink(void *arg, uint32_t to_shard, int fd)
{
    peerlink_adopt(arg, to_shard, fd);
}

/* What the peer keys come from (peer_create()): cluster-secret alone, or,
 * with a cluster-name, the name (its length first, so that no other name and
 * secret read the same) then the secret: a node of another name fails the
 * handshake, so its frames never reach the membership table and its data
 * links are refused. "" (no name, no secret): frames are not keyed. */
static void admin_key_text(const struct cfg *cfg, char *out, size_t cap)
{
    if (!cfg->cluster_name[0])
        snprintf(out, cap, "%s", cfg->cluster_secret);
    else
        snprintf(out, cap, "cluster-name:%zu:%s%s", strlen(cfg->cluster_name), cfg->cluster_name,
                 cfg->cluster_secret);
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
    if (cfg->seeds[0] && peer_bind_is_wildcard(cfg->bind)) {
        log_error("bind %s is a wildcard address, which peers cannot reach: a node with seeds "
                  "must bind the specific address its peers reach it at; exiting",
                  cfg->bind);
        rc = -EINVAL;
        goto fail;
    }
    if ((rc = admin_membership(a)) != 0) {
        log_error("admin: cannot set up the membership and ring: %s; exiting", strerror(-rc));
        goto fail;
    }
    char key_text[512];
    admin_key_text(cfg, key_text, sizeof key_text);
    rc = peer_create(cfg->bind, cfg_cluster_port(cfg), key_text, &a->peer);
    explicit_bzero(key_text, sizeof key_text);
    if (rc != 0)
        goto fail;
    peer_set_wire_sink(a->peer, admin_wire_sink, n);
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
             cfg->cluster_secret[0] ? ", frames authenticated"
             : cfg->cluster_name[0] ? ", frames keyed by the cluster name" : "",
             !a->join ? "" : cfg->seeds[0] ? ", joining through the seeds"
                                           : ", asking its saved members to take it back");
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
    ring_destroy(a->prev_ring);
    free(a->ring_bytes);
    if (a->members)
        member_destroy(a->members);
    free(a);
}

const char *admin_node_id(const struct admin *a)
{
    return a->id;
}

const struct ring *admin_start_ring(const struct admin *a)
{
    return a->ring;
}

const uint8_t *admin_cluster_key(const struct admin *a, size_t *len)
{
    return peer_secret_key(a->peer, len);
}
