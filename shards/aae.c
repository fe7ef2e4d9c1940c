/* aae.c: active anti-entropy (see aae.h): per-partition tictac trees kept
 * by a store watcher, their background rebuild, and the exchange.
 *
 * Trees: tree(p) for each partition p this shard owns (node->partition_
 * shard), in one block indexed by slot[p]. aae_watch() toggles an entry's
 * digest into its partition's tree for each entry entering or leaving the
 * table (store.h's store_watch), so an update is leaf ^= H(old) ^ H(new);
 * the toggles are queued (AAE_TOGGLES_MAX, their lines prefetched, so that
 * a batch's leaf misses overlap) and applied before anything reads or
 * replaces a tree or moves the rebuild's cursor (aae_apply_toggles).
 * A digest is merkle_digest of the entry's canonical meta (replica.h's
 * export without the values; a plain entry's implicit clock, cold ones too).
 * Plain (unversioned) entries stay in the trees, by decision: in a cluster
 * every write versionizes its key (coord.c's WRITE phase), so a plain
 * entry is one written before the cluster formed (or on a node alone). Its
 * implicit clock names this node's actor (data epoch and cas), and it is
 * exactly the meta replica_export sends: a replica that received it holds
 * a versioned state of equal digest (in sync). Plain entries of one key on
 * two replicas are two writes made apart, never copies of one: they differ,
 * and the repair's merge keeps both as siblings, which is what they are;
 * after it the key is versioned and equal on both. Every in-place change
 * of a plain entry that moves its cas or length shows the watcher
 * (store_append replaces the entry while one is set).
 *
 * Rebuild (at start, when the cluster view first appears, then every
 * aae-rebuild-interval): a second block of trees is filled by a table scan
 * in hash order (table_scan's cursor is a position in hash space, and visits
 * each entry at most once), AAE_REBUILD_PER_TICK entries per tick. While it
 * runs, the watcher toggles a change into the new block too when its key's
 * hash is below the cursor (already scanned); a change above the cursor is
 * seen by the scan itself. When the scan wraps, the new block replaces the
 * live one. Until the first build is done this node answers TREE with
 * UNAVAILABLE and starts no exchange.
 *
 * Exchanges: every aae-interval a round walks this shard's partitions; for
 * each one it runs an exchange with each peer coord_aae_peers names (the
 * first live replica: every other; any other: the next live one in the
 * preference list, so a replica the first cannot reach is still compared
 * with its neighbour), AAE_EXCHANGES_MAX at once, each a
 * small state machine: TREE (the peer's 16 branches) -> SEGMENTS (the
 * leaves of the branches that differ) -> KEYS (keys and digests of up to
 * AAE_LEAVES_PER_KEYS differing leaves, a page at a time) -> REPAIR (keys
 * whose digests differ here and there, or that one side lacks), then KEYS
 * again for the next page, or the next leaves. A key the peer lists is
 * repaired by a GET to the peer, replica_apply here, and a SYNC of the
 * merged state back when the peer's differs (read repair's rule, coord.c);
 * a key only here is SYNCed. A key counts as repaired only when the two
 * states differed. Each exchange walks the differing leaves from another
 * one (first_leaf), so when aae-max-keys-per-exchange ends exchanges early
 * no leaf waits behind the same first ones round after round. Repairs go at most AAE_KEYS_PER_TICK per tick and
 * aae-max-keys-per-exchange per exchange.
 *
 * KEYS pages: a listing is in hash order and may stop anywhere (the
 * aae-max-keys-per-exchange cap, AAE_KEYS_BYTES_MAX of payload, or
 * AAE_SCAN_BUDGET table entries visited); the reply's first value says
 * where (merkle_put_stop: every key of the asked leaves in [from, stop) is
 * listed, none past it; a key that does not fit is never skipped). The
 * requester compares only below the lower of the peer's stop and its own
 * (its scan has the same budget), keeps the keys of lowest hash when more
 * differ than the exchange may still repair, and asks the next page from
 * where that stopped. Keys the peer lists outside the page (another
 * partition, a leaf not asked, out of [from, stop)) are ignored.
 * Cost: the table holds every partition of the shard mixed, in hash order,
 * so the keys of one leaf of one partition are found by visiting the
 * table's entries in that leaf's hash range: 1/256 of the shard's entries
 * per leaf, whatever their partition (a key's hash is computed once per
 * visit, by the table's scan: table_scan_hashed). A page visits at most AAE_SCAN_BUDGET of them on each side, a
 * table chunk (the entries of one home slot) at a time, so one KEYS costs
 * a bounded part of a loop turn; an exchange of d differing leaves visits
 * about d/256 of the shard, in d*entries/256/AAE_SCAN_BUDGET pages. A
 * step not answered within AAE_STEP_MS, or a view change, ends the
 * exchange; the next round tries again. Wire ids of these requests have the
 * top bit set (coord.c's never do), the exchange's serial in bits 32..62 and
 * a key's index in the low 32 bits (for a repair's GET).
 *
 * Cold values (values beyond RAM): a key whose value is on disk only here
 * (replica_export or replica_apply: -EAGAIN) is read back as the
 * coordinator's own keys are (coord_load_value, tier.h), the exchange
 * waiting for it as for a GET, then repaired again (a GET again when the
 * peer holds it); once per key, a value cold again by then waits for the
 * next round. The peer's side parks its GET of a cold key (coord.c).
 *
 * FLUSHALL (the store's watcher sees the table emptied): every exchange
 * ends at once (their late answers find no exchange, so nothing flushed
 * comes back from a peer's listing or GET), and the next round waits one
 * aae-interval, time for the other members' own FLUSHALL (a member-wide
 * write) to land before trees are compared again. For as long (and
 * AAE_STEP_MS more) this shard refuses the peers' anti-entropy requests,
 * TREE to a repair's GET and SYNC (their ids carry the top bit; aae_refuses,
 * coord_on_request): a peer whose FLUSHALL comes a moment later cannot push
 * back, from an exchange it started before, keys flushed here.
 *
 * Handoff (aae_handoff, for transfer.c before a released copy is dropped):
 * the same steps with one peer, one way. Branches and leaves whose value
 * here is zero hold no key here and are not asked; keys only the peer has
 * are not listed; a key both hold differently is fetched (GET) and ours is
 * SYNCed unless the peer's covers it (replica_covers), nothing merged
 * here; cache mode lists keys only here all the same. The exchange notes
 * whether it sent anything and whether a key was left unchecked, and with
 * the partition's fingerprint (aae_print: the XOR of its branches) from
 * its start tells transfer_handoff_done whether it was clean.
 *
 * Eviction: with maxmemory and an evicting policy (allkeys-*, volatile-*)
 * a key one replica lacks may have been evicted there on purpose; copying
 * it back every round would fight eviction (and evict something else). So
 * on such a node (aae_is_cache) an exchange repairs only keys both sides
 * hold with different states; a key on one side only is taken as in sync,
 * both ways. A write that such a replica missed is left to hinted handoff
 * and read repair: eviction makes the cluster a cache, which may lose keys
 * anyway. noeviction (the default) and values beyond RAM (cold values are
 * still held) repair everything.
 *
 * Deletes: a tombstone is a state like any other (its digest differs from
 * the value's), and repair only merges (dvv_sync), so a tombstone whose
 * history covers a stale replica's value replaces it there, never the
 * reverse. A tombstone reaped on one replica but still held by another is
 * not copied back: a KEYS listing gives a tombstone past tombstone-grace
 * the digest AAE_REAPABLE, and an exchange takes such a key on one side and
 * nothing on the other as in sync (reaping is under way; coord_reap's
 * check deletes it where it is left), so a reaped tombstone never bounces
 * between replicas. Against a value on the other side it is repaired as
 * any state (the merge keeps the tombstone where it covers the value). The
 * trees keep differing in its leaf until it is reaped: those rounds go
 * down to KEYS and repair nothing. */
#include "aae.h"

#include <errno.h>
#include <inttypes.h>
#include <mimalloc.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "coord.h"
#include "keyhash.h"
#include "log.h"
#include "merkle.h"
#include "node.h"
#include "peerlink.h"
#include "replica.h"
#include "req.h"
#include "shard.h"
#include "store.h"
#include "table.h"
#include "transfer.h"
#include "wire.h"

#define AAE_ID_BIT (UINT64_C(1) << 63)
#define AAE_SERIAL_MASK 0x7fffffffu
#define AAE_STEP_MS 5000              /* a step's answer at most */
#define AAE_PEERS_MAX 16              /* RING_REPLICAS_MAX */
#define AAE_KEYS_BYTES_MAX (1u << 20) /* a KEYS reply's payload at most */
#define AAE_NO_SLOT UINT32_MAX

enum aae_step { X_FREE, X_TREE, X_SEGMENTS, X_KEYS, X_REPAIR };

/* A key to repair (a copy). */
struct aae_key {
    char *key;
    uint32_t klen;
    uint64_t hash;
    bool peer_has;
    bool is_loaded; /* its cold value was read back once */
};

struct aae_hit;

struct aae_exchange {
    uint8_t step;
    uint32_t serial;
    uint32_t p, member;
    uint64_t view;
    int64_t deadline_ms;
    uint32_t branches;                   /* SEGMENTS asked */
    uint8_t todo[MERKLE_LEAFMAP_BYTES];  /* differing leaves not asked yet */
    uint8_t asked[MERKLE_LEAFMAP_BYTES]; /* the KEYS request's */
    uint64_t from;                       /* the KEYS page's start (0: the leaves' start) */
    uint32_t first_leaf;                 /* where the walk over differing leaves starts */
    uint32_t repaired;                   /* keys repaired so far */
    uint32_t sent;                       /* handoff: keys sent */
    uint32_t waiting;                    /* repair GETs unanswered */
    bool differed;
    bool is_handoff;  /* aae_handoff's: keys here to the peer, leaves empty here skipped */
    bool pushed;      /* a SYNC went to the peer */
    bool missed;      /* a key was left neither sent nor found held by the peer */
    uint64_t print;   /* aae_handoff's: the tree's fingerprint when it began */
    bool cut;         /* ended by aae-max-keys-per-exchange, not by its last leaf */
    uint64_t cookie;  /* aae_handoff's, for transfer_handoff_done */
    struct aae_key *keys;
    uint32_t nkeys, keys_cap, at;
};

/* Counters (INFO): written by the owner with relaxed stores. */
struct aae_stats {
    uint64_t exchanges, in_sync, keys_repaired, bytes_out, bytes_in, rebuilds, trees_corrected;
} __attribute__((aligned(64)));

/* A tree change not applied yet (aae_watch): batched so that the leaves'
 * cache misses overlap. */
struct aae_toggle {
    uint64_t digest;
    uint32_t tree;
    uint16_t leaf;
    bool shadow; /* the shadow's too (its key was behind the rebuild's cursor then) */
};
#define AAE_TOGGLES_MAX 32

struct aae {
    uint32_t q, ntrees;
    struct aae_toggle toggles[AAE_TOGGLES_MAX];
    uint32_t ntoggles;
    uint32_t *slot;             /* q: partition -> tree index, AAE_NO_SLOT: not ours */
    struct merkle_tree *live;   /* ntrees; NULL while off */
    struct merkle_tree *shadow; /* a rebuild's, NULL when none runs */
    bool is_on, is_ready;
    uint64_t cursor; /* the rebuild's position in hash space */
    bool rebuild_split; /* whether the table was split when the rebuild's walk began */
    int64_t next_rebuild_ms, next_round_ms;
    int64_t flushed_until_ms; /* peers' exchanges refused until then (FLUSHALL) */
    uint32_t round_p, round_k; /* the round's next partition and peer */
    uint32_t serial;
    uint32_t keys_budget; /* repairs left this tick */
    struct buf scratch;   /* a plain entry's meta */
    struct aae_hit *hits; /* a scan's chunk (aae_scan_page) */
    uint32_t hits_cap;
    struct aae_exchange ex[AAE_EXCHANGES_MAX];
    struct aae_stats stats;
};

#define AAE_STAT_ADD(a, f, n) __atomic_store_n(&(a)->stats.f, (a)->stats.f + (n), __ATOMIC_RELAXED)

/* ---- trees ---- */

/* The digest of stored entry e (hash: keyhash of its key). */
static uint64_t aae_digest(struct aae *a, const struct node *n, const struct table_entry *e,
                           uint64_t hash)
{
    if (e->meta & TABLE_ENTRY_VERSIONED) {
        struct store_version v;
        store_entry_version(e, &v);
        return merkle_digest(hash, v.meta, v.meta_len);
    }
    buf_clear(&a->scratch);
    a->scratch.failed = false;
    if (replica_entry_meta(n, e, &a->scratch) != 0 || a->scratch.failed)
        return hash; /* cannot happen within the codec bounds; still a state */
    return merkle_digest(hash, a->scratch.data, a->scratch.len);
}

/* The digest a KEYS listing gives e: AAE_REAPABLE for a tombstone past
 * tombstone-grace (in sync with nothing on the other side), else its own. */
#define AAE_REAPABLE UINT64_C(0)
static uint64_t aae_list_digest(struct shard *sh, const struct table_entry *e, uint64_t hash)
{
    if (replica_past_grace(sh->node, e, sh->store->now_ms))
        return AAE_REAPABLE;
    uint64_t d = aae_digest(sh->aae, sh->node, e, hash);
    return d == AAE_REAPABLE ? 1 : d;
}

/* Applies the changes aae_watch queued: before anything reads or replaces
 * a tree, or moves the rebuild's cursor. */
static void aae_apply_toggles(struct aae *a)
{
    for (uint32_t i = 0; i < a->ntoggles; i++) {
        const struct aae_toggle *g = &a->toggles[i];
        merkle_toggle(&a->live[g->tree], g->leaf, g->digest);
        if (g->shadow)
            merkle_toggle(&a->shadow[g->tree], g->leaf, g->digest);
    }
    a->ntoggles = 0;
}

static struct merkle_tree *aae_tree(struct aae *a, uint32_t p)
{
    aae_apply_toggles(a);
    if (!a->live || p >= a->q || a->slot[p] == AAE_NO_SLOT)
        return NULL;
    return &a->live[a->slot[p]];
}

/* Partition p's fingerprint here: the XOR of its branches (every key's
 * digest), which any write to it moves but for a 2^-64 chance. */
static uint64_t aae_print(struct aae *a, uint32_t p)
{
    aae_apply_toggles(a);
    const struct merkle_tree *t = aae_tree(a, p);
    uint64_t print = 0;
    for (uint32_t b = 0; t && b < MERKLE_BRANCHES; b++)
        print ^= t->branch[b];
    return print;
}

static void aae_end(struct shard *sh, struct aae_exchange *x, bool is_done);

static void aae_watch(void *arg, const struct table_entry *e, uint64_t hash, uint32_t part)
{
    struct shard *sh = arg;
    struct aae *a = sh->aae;
    if (!e) { /* the table was emptied (FLUSHALL): no exchange may copy back what it held */
        a->ntoggles = 0; /* changes of entries gone with it */
        memset(a->live, 0, (size_t)a->ntrees * sizeof *a->live);
        if (a->shadow)
            memset(a->shadow, 0, (size_t)a->ntrees * sizeof *a->shadow);
        for (uint32_t i = 0; i < AAE_EXCHANGES_MAX; i++)
            if (a->ex[i].step != X_FREE)
                aae_end(sh, &a->ex[i], false); /* their late replies find none */
        a->round_p = a->q;
        a->next_round_ms = req_now_ms() + sh->node->cfg->aae_interval_s * 1000;
        a->flushed_until_ms = a->next_round_ms + AAE_STEP_MS;
        return;
    }
    /* the store's hash and partition: the key's CRC16 and hash computed
     * once for the table and this, not once more for each of the two
     * entries of a replacement */
    uint32_t p = part != TABLE_NO_PART
                     ? part
                     : node_partition_of(sh->node, table_entry_key(e), e->key_len, hash);
    if (p >= a->q || a->slot[p] == AAE_NO_SLOT)
        return;
    uint64_t d = aae_digest(a, sh->node, e, hash);
    uint32_t leaf = merkle_leaf_of(hash), tree = a->slot[p];
    /* queued, and its leaf and branch asked for: a tree's leaves are 2 KiB
     * of 1024 partitions' trees, so a write's leaf is a cache miss, which
     * a batch overlaps (it was a tenth of a 3-node SET's CPU) */
    if (a->ntoggles == AAE_TOGGLES_MAX)
        aae_apply_toggles(a);
    a->toggles[a->ntoggles++] = (struct aae_toggle){
        .digest = d,
        .tree = tree,
        .leaf = (uint16_t)leaf,
        /* scanned already: the scan will not see it */
        .shadow = a->shadow && table_scan_passed(sh->store->table, a->cursor, p, hash)};
    __builtin_prefetch(&a->live[tree].leaf[leaf], 1);
    __builtin_prefetch(&a->live[tree].branch[leaf / MERKLE_FANOUT], 1);
}

static void aae_rebuild_fn(struct table_entry *e, uint64_t hash, void *arg)
{
    struct shard *sh = arg;
    struct aae *a = sh->aae;
    const char *key = table_entry_key(e);
    uint32_t p = node_partition_of(sh->node, key, e->key_len, hash);
    if (p < a->q && a->slot[p] != AAE_NO_SLOT)
        merkle_toggle(&a->shadow[a->slot[p]], merkle_leaf_of(hash),
                      aae_digest(a, sh->node, e, hash));
}

static void aae_rebuild_start(struct aae *a)
{
    if (a->shadow)
        return;
    a->shadow = mi_zalloc((size_t)a->ntrees * sizeof *a->shadow);
    if (!a->shadow) {
        log_warn("anti-entropy: no memory to rebuild the trees; trying again later");
        return;
    }
    a->cursor = 0;
}

static void aae_rebuild_step(struct shard *sh, int64_t now_ms)
{
    struct aae *a = sh->aae;
    aae_apply_toggles(a); /* at the cursor they were queued at */
    if (!a->shadow)
        return;
    bool split = table_is_split(sh->store->table);
    if (split != a->rebuild_split) {
        /* split since the walk began: its cursor means another walk, which
         * would meet some keys twice (a wrong shadow). Start again. */
        if (a->cursor != 0)
            memset(a->shadow, 0, (size_t)a->ntrees * sizeof *a->shadow);
        a->cursor = 0;
        a->rebuild_split = split;
    }
    a->cursor =
        table_scan_hashed(sh->store->table, a->cursor, AAE_REBUILD_PER_TICK, aae_rebuild_fn, sh);
    if (a->cursor != 0)
        return;
    if (a->is_ready) { /* live trees are exact: a difference here is a bug, counted */
        uint32_t off = 0;
        for (uint32_t i = 0; i < a->ntrees; i++)
            off += !merkle_equal(&a->live[i], &a->shadow[i]);
        if (off) {
            AAE_STAT_ADD(a, trees_corrected, off);
            log_warn("anti-entropy: the rebuild corrected %u trees of this shard", off);
        }
    }
    mi_free(a->live);
    a->live = a->shadow;
    a->shadow = NULL;
    a->is_ready = true;
    a->next_rebuild_ms = now_ms + sh->node->cfg->aae_rebuild_interval_s * 1000;
    AAE_STAT_ADD(a, rebuilds, 1);
}

/* Trees on (a cluster view appeared): watch the store, build them. */
static void aae_start(struct shard *sh, int64_t now_ms)
{
    struct aae *a = sh->aae;
    struct node *n = sh->node;
    a->q = n->npartitions;
    a->slot = mi_malloc((size_t)a->q * sizeof *a->slot);
    if (!a->slot)
        return;
    a->ntrees = 0;
    for (uint32_t p = 0; p < a->q; p++)
        a->slot[p] = n->partition_shard[p] == sh->id ? a->ntrees++ : AAE_NO_SLOT;
    a->live = mi_zalloc((size_t)(a->ntrees ? a->ntrees : 1) * sizeof *a->live);
    if (!a->live) {
        mi_free(a->slot);
        a->slot = NULL;
        return;
    }
    a->is_on = true;
    a->is_ready = false;
    a->round_p = a->q; /* no round until the trees are built, and one interval after */
    a->next_round_ms = now_ms + sh->node->cfg->aae_interval_s * 1000;
    store_watch(sh->store, aae_watch, sh);
    aae_rebuild_start(a);
}

static void aae_stop(struct shard *sh)
{
    struct aae *a = sh->aae;
    for (uint32_t i = 0; i < AAE_EXCHANGES_MAX; i++)
        if (a->ex[i].step != X_FREE)
            aae_end(sh, &a->ex[i], false);
    if (a->is_on && sh->store)
        store_watch(sh->store, NULL, NULL);
    a->ntoggles = 0; /* their trees go */
    mi_free(a->live);
    mi_free(a->shadow);
    mi_free(a->slot);
    a->live = a->shadow = NULL;
    a->slot = NULL;
    a->is_on = a->is_ready = false;
}

int aae_init(struct shard *sh)
{
    sh->aae = mi_zalloc_aligned(sizeof *sh->aae, 64);
    if (!sh->aae)
        return -ENOMEM;
    buf_init(&sh->aae->scratch);
    return 0;
}

void aae_fini(struct shard *sh)
{
    if (!sh->aae)
        return;
    aae_stop(sh);
    buf_fini(&sh->aae->scratch);
    mi_free(sh->aae->hits);
    mi_free(sh->aae);
    sh->aae = NULL;
}

/* ---- keys of some leaves of a partition, a page at a time ---- */

/* An entry of the partition met by a scan, with its key's hash. */
struct aae_hit {
    const struct table_entry *e;
    uint64_t hash;
};

/* Offered one table chunk's entries of the partition, sorted by hash:
 * returns how many of them (a prefix) it took. */
typedef uint32_t (*aae_take_fn)(void *arg, const struct aae_hit *hits, uint32_t n);

struct aae_chunk {
    struct shard *sh;
    uint32_t p;
    uint64_t lo, hi; /* hash range; hi 0: to the end */
    struct aae_hit *hits;
    uint32_t n, cap, visited;
    bool failed;
    bool filter; /* the table is not split: the scan meets other partitions' keys */
};

static void aae_chunk_fn(struct table_entry *e, uint64_t hash, void *arg)
{
    struct aae_chunk *c = arg;
    const char *key = table_entry_key(e);
    if (hash < c->lo || (c->hi && hash >= c->hi))
        return;
    c->visited++;
    if (c->filter && node_partition_of(c->sh->node, key, e->key_len, hash) != c->p)
        return;
    if (c->n == c->cap) {
        uint32_t cap = c->cap ? 2 * c->cap : 64;
        struct aae_hit *h = mi_realloc(c->hits, (size_t)cap * sizeof *h);
        if (!h) {
            c->failed = true;
            return;
        }
        c->hits = h;
        c->cap = cap;
    }
    c->hits[c->n++] = (struct aae_hit){e, hash};
}

static int aae_hit_cmp(const void *pa, const void *pb)
{
    const struct aae_hit *a = pa, *b = pb;
    return (a->hash > b->hash) - (a->hash < b->hash);
}

/* The smaller of two range ends, 0 standing for the end of hash space. */
static uint64_t aae_end_min(uint64_t a, uint64_t b)
{
    return a == 0 ? b : b == 0 ? a : a < b ? a : b;
}

/* One page of a listing: offers take the entries of partition p in the
 * leaves of leafmap whose hash lies in [from, until) (until 0: no bound),
 * in hash order, a table chunk at a time (entries sharing a home slot),
 * until take refuses one or AAE_SCAN_BUDGET entries of those hash ranges
 * (of every partition of the shard: the table mixes them) were visited.
 * Returns where the page stopped: 0 when the range is done, else a hash h
 * such that every entry in [from, h) was taken and none at or past h;
 * the next page starts there. *failed on out of memory. */
static uint64_t aae_scan_page(struct shard *sh, uint32_t p, const uint8_t *leafmap, uint64_t from,
                              uint64_t until, aae_take_fn take, void *arg, bool *failed)
{
    struct aae *a = sh->aae;
    struct aae_chunk c = {.sh = sh,
                          .p = p,
                          .hits = a->hits,
                          .cap = a->hits_cap,
                          .filter = !table_is_split(sh->store->table)};
    uint64_t stop = 0;
    uint32_t visited = 0;
    for (uint32_t l = merkle_leaf_of(from); l < MERKLE_LEAVES && stop == 0 && !c.failed; l++) {
        if (!merkle_leafmap_has(leafmap, l))
            continue;
        uint64_t lo = merkle_leaf_start(l);
        uint64_t hi = aae_end_min(merkle_leaf_start(l + 1), until);
        if (lo < from)
            lo = from;
        if (hi && lo >= hi)
            break; /* until lies before this leaf: so before every later one */
        for (uint64_t cursor = lo; !c.failed;) {
            if (visited >= AAE_SCAN_BUDGET) {
                stop = cursor; /* > from: a chunk was scanned since */
                break;
            }
            c.lo = cursor;
            c.hi = hi;
            c.n = c.visited = 0;
            uint64_t next = table_scan_parts_hashed(sh->store->table, &c.p, 1, cursor, 1,
                                                    aae_chunk_fn, &c);
            visited += c.visited;
            if (c.failed)
                break;
            if (c.n > 1)
                qsort(c.hits, c.n, sizeof *c.hits, aae_hit_cmp);
            uint32_t took = c.n ? take(arg, c.hits, c.n) : 0;
            if (took < c.n) {
                stop = c.hits[took].hash;
                break;
            }
            if (next == 0 || (hi && next >= hi))
                break;
            cursor = next;
        }
    }
    a->hits = c.hits;
    a->hits_cap = c.cap;
    *failed |= c.failed;
    return stop;
}

/* ---- the responder ---- */

static void aae_reply(struct shard *sh, uint64_t link, const struct wire_msg *req, uint8_t status,
                      const char *text, uint16_t n_values, const struct wire_bytes *values)
{
    struct wire_msg rm = {.kind = WIRE_REPLY,
                          .id = req->id,
                          .op = req->op,
                          .status = status,
                          .text = {(const uint8_t *)text, text ? (uint32_t)strlen(text) : 0},
                          .n_values = n_values,
                          .values = values};
    int rc = peerlink_reply(sh, link, &rm);
    if (rc == 0) {
        uint64_t bytes = 0;
        for (uint16_t i = 0; i < n_values; i++)
            bytes += values[i].len;
        AAE_STAT_ADD(sh->aae, bytes_out, bytes);
    } else if (rc != -ENOENT) {
        log_debug("anti-entropy: a %s reply could not be sent (%s)", wire_op_name(req->op),
                  strerror(-rc));
    }
}

struct aae_listing {
    struct shard *sh;
    struct buf out;
    uint32_t *ends; /* each value's end in out */
    uint32_t n, cap;
};

/* Takes keys while they fit the reply (the first one always: progress). */
static uint32_t aae_list_take(void *arg, const struct aae_hit *hits, uint32_t n)
{
    struct aae_listing *ls = arg;
    for (uint32_t i = 0; i < n; i++) {
        const struct table_entry *e = hits[i].e;
        if (ls->n > 0 &&
            (ls->n == ls->cap || ls->out.len + MERKLE_KEY_MIN + e->key_len > AAE_KEYS_BYTES_MAX))
            return i; /* the listing stops before it: the requester asks again from there */
        merkle_put_key(aae_list_digest(ls->sh, e, hits[i].hash), table_entry_key(e), e->key_len,
                       &ls->out);
        ls->ends[ls->n++] = (uint32_t)ls->out.len;
    }
    return n;
}

/* KEYS: the stop (merkle_put_stop), then digest and key of each entry of
 * one page of the asked leaves (aae_scan_page). */
static void aae_on_keys(struct shard *sh, uint64_t link, const struct wire_msg *wm,
                        const struct wire_bytes *arg)
{
    uint8_t leaves[MERKLE_LEAFMAP_BYTES];
    uint64_t from = 0;
    uint32_t nleaves = 0;
    if (merkle_get_keys_request(arg->ptr, arg->len, leaves, &from) == 0)
        for (uint32_t i = 0; i < MERKLE_LEAFMAP_BYTES; i++)
            nleaves += (uint32_t)__builtin_popcount(leaves[i]);
    if (nleaves == 0 || nleaves > AAE_LEAVES_PER_KEYS) {
        aae_reply(sh, link, wm, WIRE_CODE_ERROR, "bad KEYS request", 0, NULL);
        return;
    }
    struct aae_listing ls = {.sh = sh, .cap = (uint32_t)sh->node->cfg->aae_max_keys};
    if (ls.cap > WIRE_VALUES_MAX - 1)
        ls.cap = WIRE_VALUES_MAX - 1;
    buf_init(&ls.out);
    ls.ends = mi_malloc((size_t)ls.cap * sizeof *ls.ends);
    struct wire_bytes *vals = mi_malloc(((size_t)ls.cap + 1) * sizeof *vals);
    bool failed = !ls.ends || !vals;
    uint64_t stop = 0;
    if (!failed)
        stop = aae_scan_page(sh, wm->partition, leaves, from, 0, aae_list_take, &ls, &failed);
    struct buf head;
    buf_init(&head);
    merkle_put_stop(stop, &head);
    if (failed || ls.out.failed || head.failed) {
        aae_reply(sh, link, wm, WIRE_CODE_ERROR, "out of memory", 0, NULL);
    } else {
        vals[0] = (struct wire_bytes){(const uint8_t *)head.data, (uint32_t)head.len};
        for (uint32_t i = 0, start = 0; i < ls.n; start = ls.ends[i++])
            vals[i + 1] =
                (struct wire_bytes){(const uint8_t *)ls.out.data + start, ls.ends[i] - start};
        aae_reply(sh, link, wm, WIRE_CODE_OK, NULL, (uint16_t)(ls.n + 1), vals);
    }
    buf_fini(&head);
    mi_free(vals);
    mi_free(ls.ends);
    buf_fini(&ls.out);
}

/* The request's one value (empty when it has none). */
static struct wire_bytes aae_arg(const struct wire_msg *wm)
{
    struct wire_value_iter it;
    struct wire_bytes v = {0};
    wire_values_init(&it, wm);
    if (wm->n_values != 1 || !wire_values_next(&it, &v))
        v = (struct wire_bytes){0};
    return v;
}

void aae_on_request(struct shard *sh, uint64_t link, const struct wire_msg *wm)
{
    struct aae *a = sh->aae;
    uint32_t p = wm->partition;
    if (p >= sh->node->npartitions || sh->node->partition_shard[p] != sh->id ||
        !coord_holds_partition(sh, p)) {
        aae_reply(sh, link, wm, WIRE_CODE_ERROR, "this node holds no replica of the partition", 0,
                  NULL);
        return;
    }
    const struct merkle_tree *t = a->is_ready ? aae_tree(a, p) : NULL;
    if (aae_refuses(sh, wm)) {
        aae_reply(sh, link, wm, WIRE_CODE_UNAVAILABLE, "anti-entropy paused: just flushed", 0,
                  NULL);
        return;
    }
    if (!t) {
        aae_reply(sh, link, wm, WIRE_CODE_UNAVAILABLE, "anti-entropy trees not built yet", 0, NULL);
        return;
    }
    struct wire_bytes arg = aae_arg(wm);
    AAE_STAT_ADD(a, bytes_in, arg.len);
    struct buf out;
    buf_init(&out);
    uint32_t branches;
    if (wm->op == WIRE_OP_TREE) {
        merkle_put_branches(t, &out);
    } else if (wm->op == WIRE_OP_SEGMENTS) {
        if (merkle_get_branchmap(arg.ptr, arg.len, &branches) == 0)
            merkle_put_segments(t, branches, &out);
    } else {
        aae_on_keys(sh, link, wm, &arg);
        return;
    }
    struct wire_bytes v = {(const uint8_t *)out.data, (uint32_t)out.len};
    if (out.len == 0 || out.failed)
        aae_reply(sh, link, wm, WIRE_CODE_ERROR, out.failed ? "out of memory" : "bad request", 0,
                  NULL);
    else
        aae_reply(sh, link, wm, WIRE_CODE_OK, NULL, 1, &v);
    buf_fini(&out);
}

bool aae_refuses(const struct shard *sh, const struct wire_msg *m)
{
    return (m->id & AAE_ID_BIT) && sh->aae && req_now_ms() < sh->aae->flushed_until_ms;
}

bool aae_is_op(uint8_t op)
{
    return op == WIRE_OP_TREE || op == WIRE_OP_SEGMENTS || op == WIRE_OP_KEYS;
}

bool aae_is_reply(const struct wire_msg *m)
{
    return (m->id & AAE_ID_BIT) != 0;
}

/* ---- the requester ---- */

static uint64_t aae_id(const struct aae_exchange *x, uint32_t index)
{
    return AAE_ID_BIT | (uint64_t)(x->serial & AAE_SERIAL_MASK) << 32 | index;
}

/* Sends request op for x's partition with one value (NULL: none). */
static int aae_send(struct shard *sh, struct aae_exchange *x, uint8_t op, const void *arg,
                    size_t len)
{
    struct wire_bytes v = {arg, (uint32_t)len};
    struct wire_msg wm = {.kind = WIRE_REQUEST,
                          .id = aae_id(x, 0),
                          .op = op,
                          .deadline_ms = AAE_STEP_MS,
                          .partition = (uint16_t)x->p,
                          .n_values = arg ? 1 : 0,
                          .values = arg ? &v : NULL};
    int rc = coord_send_member(sh, x->member, &wm);
    if (rc == 0) {
        x->step = op == WIRE_OP_TREE ? X_TREE : op == WIRE_OP_SEGMENTS ? X_SEGMENTS : X_KEYS;
        x->deadline_ms = req_now_ms() + AAE_STEP_MS;
        AAE_STAT_ADD(sh->aae, bytes_out, len);
    }
    return rc;
}

static void aae_free_keys(struct aae_exchange *x)
{
    for (uint32_t i = 0; i < x->nkeys; i++)
        mi_free(x->keys[i].key);
    mi_free(x->keys);
    x->keys = NULL;
    x->nkeys = x->keys_cap = x->at = 0;
}

static void aae_fill(struct shard *sh);

/* is_done: the exchange ran to its end (counted), else it was cut short. */
static void aae_end(struct shard *sh, struct aae_exchange *x, bool is_done)
{
    struct aae *a = sh->aae;
    aae_free_keys(x);
    if (is_done && !x->is_handoff) { /* handoffs: transfer.c counts them */
        AAE_STAT_ADD(a, exchanges, 1);
        if (!x->differed)
            AAE_STAT_ADD(a, in_sync, 1);
    }
    x->step = X_FREE;
    if (x->is_handoff) /* clean: nothing sent or missed, and no write here meanwhile */
        transfer_handoff_done(sh, x->p, x->cookie,
                              is_done && !x->cut && !x->pushed && !x->missed &&
                                  aae_print(a, x->p) == x->print,
                              x->sent);
}

/* KEYS for the next page of the asked leaves, else for the next differing
 * leaves, or the end. */
static void aae_ask_keys(struct shard *sh, struct aae_exchange *x)
{
    aae_free_keys(x);
    if (x->repaired >= (uint64_t)sh->node->cfg->aae_max_keys) {
        x->cut = true;
        aae_end(sh, x, true); /* the rest in a later round */
        return;
    }
    if (x->from == 0) {
        memset(x->asked, 0, sizeof x->asked);
        uint32_t n = 0;
        for (uint32_t j = 0; j < MERKLE_LEAVES && n < AAE_LEAVES_PER_KEYS; j++) {
            uint32_t l = (x->first_leaf + j) % MERKLE_LEAVES;
            if (merkle_leafmap_has(x->todo, l)) {
                merkle_leafmap_set(x->asked, l);
                x->todo[l / 8] &= (uint8_t) ~(1u << (l % 8));
                n++;
            }
        }
        if (n == 0) {
            aae_end(sh, x, true);
            return;
        }
    }
    struct buf req;
    buf_init(&req);
    merkle_put_keys_request(x->asked, x->from, &req);
    if (req.failed || aae_send(sh, x, WIRE_OP_KEYS, req.data, req.len) != 0)
        aae_end(sh, x, false);
    buf_fini(&req);
}

/* The peer's listing, sorted by key for lookups. */
struct aae_peer_key {
    const uint8_t *key;
    uint32_t klen;
    uint64_t hash, digest;
    bool matched;
};

static int aae_key_cmp(const void *pa, const void *pb)
{
    const struct aae_peer_key *a = pa, *b = pb;
    uint32_t n = a->klen < b->klen ? a->klen : b->klen;
    int c = memcmp(a->key, b->key, n);
    return c ? c : (a->klen > b->klen) - (a->klen < b->klen);
}

static int aae_key_hash_cmp(const void *pa, const void *pb)
{
    const struct aae_key *a = pa, *b = pb;
    return (a->hash > b->hash) - (a->hash < b->hash);
}

struct aae_compare {
    struct shard *sh;
    struct aae_exchange *x;
    struct aae_peer_key *peer;
    uint32_t npeer;
    bool is_cache; /* aae_is_cache(): a key one side lacks is no difference */
    bool failed;
};

/* Whether this node evicts (maxmemory and a policy other than noeviction):
 * a key one side lacks may have been evicted there, so copying it back
 * would fight eviction (see the top comment). */
static bool aae_is_cache(const struct shard *sh)
{
    return sh->store->maxmemory > 0 && sh->store->policy != STORE_NOEVICTION;
}

static void aae_add_key(struct aae_compare *cmp, const void *key, uint32_t klen, uint64_t hash,
                        bool peer_has)
{
    struct aae_exchange *x = cmp->x;
    if (x->nkeys == x->keys_cap) {
        uint32_t cap = x->keys_cap ? 2 * x->keys_cap : 64;
        struct aae_key *keys = mi_realloc(x->keys, (size_t)cap * sizeof *keys);
        if (!keys) {
            cmp->failed = true;
            return;
        }
        x->keys = keys;
        x->keys_cap = cap;
    }
    char *copy = mi_malloc(klen ? klen : 1);
    if (!copy) {
        cmp->failed = true;
        return;
    }
    memcpy(copy, key, klen);
    x->keys[x->nkeys++] = (struct aae_key){copy, klen, hash, peer_has, false};
}

/* This side's entries of the page: each one the peer lacks or holds with
 * another digest is a key to repair. */
static uint32_t aae_compare_take(void *arg, const struct aae_hit *hits, uint32_t n)
{
    struct aae_compare *cmp = arg;
    for (uint32_t i = 0; i < n; i++) {
        const struct table_entry *e = hits[i].e;
        struct aae_peer_key want = {.key = (const uint8_t *)table_entry_key(e),
                                    .klen = e->key_len};
        struct aae_peer_key *got =
            cmp->npeer ? bsearch(&want, cmp->peer, cmp->npeer, sizeof want, aae_key_cmp) : NULL;
        if (got)
            got->matched = true;
        uint64_t d = aae_list_digest(cmp->sh, e, hits[i].hash);
        if (got ? got->digest != d
                : d != AAE_REAPABLE && (!cmp->is_cache || cmp->x->is_handoff)) /* reapable ~ nothing */
            aae_add_key(cmp, want.key, want.klen, hits[i].hash, got != NULL);
    }
    return n;
}

/* Whether a key the peer listed belongs to the page asked (the partition,
 * an asked leaf, [from, stop)): anything else is ignored. */
static bool aae_key_asked(struct shard *sh, const struct aae_exchange *x, const void *key,
                          uint32_t klen, uint64_t hash, uint64_t stop)
{
    return merkle_leafmap_has(x->asked, merkle_leaf_of(hash)) && hash >= x->from &&
           (stop == 0 || hash < stop) && node_partition_of(sh->node, key, klen, hash) == x->p;
}

/* The peer's page: compared with this side's entries below where both
 * listings stopped; at most what the exchange may still repair, the keys
 * of lowest hash (the rest from where they start, in the next page). */
static void aae_on_keys_reply(struct shard *sh, struct aae_exchange *x, const struct wire_msg *wm)
{
    struct aae_compare cmp = {.sh = sh, .x = x, .is_cache = aae_is_cache(sh)};
    cmp.peer = mi_malloc(((size_t)wm->n_values + 1) * sizeof *cmp.peer);
    if (!cmp.peer) {
        aae_end(sh, x, false);
        return;
    }
    struct wire_value_iter it;
    struct wire_bytes v;
    wire_values_init(&it, wm);
    uint64_t stop = 0;
    if (!wire_values_next(&it, &v) || merkle_get_stop(v.ptr, v.len, &stop) != 0 ||
        (stop != 0 && stop <= x->from)) {
        mi_free(cmp.peer);
        aae_end(sh, x, false); /* malformed, or no progress */
        return;
    }
    while (wire_values_next(&it, &v)) {
        struct aae_peer_key *pk = &cmp.peer[cmp.npeer];
        const void *key;
        AAE_STAT_ADD(sh->aae, bytes_in, v.len);
        if (merkle_get_key(v.ptr, v.len, &pk->digest, &key, &pk->klen) != 0)
            continue; /* malformed: ignored (the peer's listing is advice only) */
        pk->key = key;
        pk->hash = keyhash(key, pk->klen);
        pk->matched = false;
        if (aae_key_asked(sh, x, key, pk->klen, pk->hash, stop))
            cmp.npeer++;
    }
    qsort(cmp.peer, cmp.npeer, sizeof *cmp.peer, aae_key_cmp);
    uint64_t mine =
        aae_scan_page(sh, x->p, x->asked, x->from, stop, aae_compare_take, &cmp, &cmp.failed);
    stop = aae_end_min(stop, mine);
    for (uint32_t i = 0; i < cmp.npeer; i++)
        if (!cmp.peer[i].matched && cmp.peer[i].digest != AAE_REAPABLE && !cmp.is_cache &&
            !x->is_handoff && (stop == 0 || cmp.peer[i].hash < stop))
            aae_add_key(&cmp, cmp.peer[i].key, cmp.peer[i].klen, cmp.peer[i].hash, true);
    mi_free(cmp.peer);
    if (cmp.failed) {
        aae_end(sh, x, false);
        return;
    }
    uint64_t cap = (uint64_t)sh->node->cfg->aae_max_keys - x->repaired;
    if (x->nkeys > cap) { /* the lowest hashes now; the page after them later */
        qsort(x->keys, x->nkeys, sizeof *x->keys, aae_key_hash_cmp);
        uint32_t keep = (uint32_t)cap;
        uint64_t cut = x->keys[keep].hash;
        while (keep > 0 && x->keys[keep - 1].hash == cut)
            keep--;
        if (keep > 0) {
            for (uint32_t i = keep; i < x->nkeys; i++)
                mi_free(x->keys[i].key);
            x->nkeys = keep;
            stop = cut;
        }
    }
    x->from = stop;
    x->differed |= x->nkeys > 0;
    x->at = 0;
    x->waiting = 0;
    x->step = X_REPAIR;
    x->deadline_ms = req_now_ms() + AAE_STEP_MS;
    if (x->nkeys == 0)
        aae_ask_keys(sh, x);
}

/* A SYNC of key's state here to x's peer (its answer is not awaited). */
static bool aae_sync(struct shard *sh, struct aae_exchange *x, const struct aae_key *k,
                     const struct replica_state *st)
{
    struct wire_bytes body = {(const uint8_t *)st->body.data, (uint32_t)st->body.len};
    struct wire_msg wm = {.kind = WIRE_REQUEST,
                          .id = aae_id(x, 0), /* its answer is ignored (aae_on_reply) */
                          .op = WIRE_OP_SYNC,
                          .deadline_ms = AAE_STEP_MS,
                          .partition = (uint16_t)x->p,
                          .slot = keyhash_slot(k->key, k->klen),
                          .expire_at_ms = st->expire_at_ms,
                          .key = {(const uint8_t *)k->key, k->klen},
                          .meta = {(const uint8_t *)st->meta.data, (uint32_t)st->meta.len},
                          .n_values = 1,
                          .values = &body};
    if (coord_send_member(sh, x->member, &wm) != 0)
        return false;
    x->pushed = true;
    AAE_STAT_ADD(sh->aae, bytes_out, st->meta.len + st->body.len);
    return true;
}

/* Sends the state here of key k to the peer unless the peer holds it
 * (peer_meta: its state's meta; NULL: none). 1 when one was sent, 0 when
 * none was, -EAGAIN when the value here is on disk only. */
static int aae_push(struct shard *sh, struct aae_exchange *x, const struct aae_key *k,
                    const void *peer_meta, size_t peer_meta_len)
{
    struct replica_state mine;
    replica_state_init(&mine);
    int sent = 0;
    int rc = replica_export(sh->store, sh->node, k->key, k->klen, k->hash, &mine);
    if (rc == 0 && !mine.meta.failed && !mine.body.failed) {
        if (!peer_meta || !replica_same(&mine, peer_meta, peer_meta_len)) {
            sent = aae_sync(sh, x, k, &mine) ? 1 : 0;
            x->missed |= !sent;
        }
    } else if (rc != -EAGAIN && rc != -ENOENT) {
        x->missed = true;
    }
    replica_state_fini(&mine);
    return rc == -EAGAIN ? -EAGAIN : sent;
}

static struct aae_exchange *aae_find(struct aae *a, uint64_t id)
{
    uint32_t serial = (uint32_t)(id >> 32) & AAE_SERIAL_MASK;
    for (uint32_t i = 0; i < AAE_EXCHANGES_MAX; i++)
        if (a->ex[i].step != X_FREE && (a->ex[i].serial & AAE_SERIAL_MASK) == serial)
            return &a->ex[i];
    return NULL;
}

static void aae_repair_key(struct shard *sh, struct aae_exchange *x, uint32_t i);

static void aae_count_repair(struct shard *sh, struct aae_exchange *x)
{
    x->repaired++;
    if (x->is_handoff)
        x->sent++;
    else
        AAE_STAT_ADD(sh->aae, keys_repaired, 1);
}

/* The next page once every key of this one is done. */
static void aae_key_done(struct shard *sh, struct aae_exchange *x)
{
    if (x->step == X_REPAIR && x->at == x->nkeys && x->waiting == 0)
        aae_ask_keys(sh, x);
}

/* Key i's value was read back from disk (or not): its repair once more. */
static bool aae_loaded(struct req_table *t, struct req *r, enum req_end how)
{
    struct shard *sh = t->ctx;
    uint64_t id = (uint64_t)(uintptr_t)r->owner_ptr; /* aae_id(x, i) */
    struct aae_exchange *x = sh->aae ? aae_find(sh->aae, id) : NULL;
    uint32_t i = (uint32_t)id;
    if (!x || x->step != X_REPAIR || i >= x->nkeys || x->waiting == 0 || how == REQ_END_DROP)
        return true; /* the exchange ended meanwhile */
    x->waiting--;
    if (how == REQ_END_DONE)
        aae_repair_key(sh, x, i);
    else
        x->missed = true;
    aae_key_done(sh, x);
    if (x->step == X_FREE)
        aae_fill(sh);
    return true;
}

/* Key i's value is on disk only here: read it back (tier.h, as the
 * coordinator does), then repair the key again; once per key. */
static bool aae_load(struct shard *sh, struct aae_exchange *x, uint32_t i)
{
    struct aae_key *k = &x->keys[i];
    if (k->is_loaded)
        return false; /* cold again already: the next round */
    k->is_loaded = true;
    x->waiting++; /* before: the load may end at once */
    x->deadline_ms = req_now_ms() + AAE_STEP_MS;
    void *owner = (void *)(uintptr_t)aae_id(x, i);
    if (coord_load_value(sh, k->key, k->klen, k->hash, aae_loaded, owner, x->deadline_ms))
        return true;
    x->waiting--;
    return false;
}

/* Pushes key i's state here (peer_meta as aae_push), counted when sent,
 * read back first when cold. */
static void aae_push_key(struct shard *sh, struct aae_exchange *x, uint32_t i,
                         const void *peer_meta, size_t peer_meta_len, bool is_repaired)
{
    int rc = aae_push(sh, x, &x->keys[i], peer_meta, peer_meta_len);
    if (rc == -EAGAIN && aae_load(sh, x, i))
        return; /* counted once repaired */
    x->missed |= rc == -EAGAIN;
    if (rc == 1 || is_repaired)
        aae_count_repair(sh, x);
}

/* Key i: a GET of the peer's state when it has one, else a push of ours. */
static void aae_repair_key(struct shard *sh, struct aae_exchange *x, uint32_t i)
{
    const struct aae_key *k = &x->keys[i];
    if (!k->peer_has) {
        aae_push_key(sh, x, i, NULL, 0, false);
        return;
    }
    struct wire_msg wm = {.kind = WIRE_REQUEST,
                          .id = aae_id(x, i),
                          .op = WIRE_OP_GET,
                          .deadline_ms = AAE_STEP_MS,
                          .partition = (uint16_t)x->p,
                          .slot = keyhash_slot(k->key, k->klen),
                          .key = {(const uint8_t *)k->key, k->klen}};
    if (coord_send_member(sh, x->member, &wm) == 0) {
        x->waiting++;
        x->deadline_ms = req_now_ms() + AAE_STEP_MS;
    } else {
        x->missed = true;
    }
}

/* Repairs up to the tick's budget of x's keys. */
static void aae_repair_some(struct shard *sh, struct aae_exchange *x)
{
    struct aae *a = sh->aae;
    while (x->at < x->nkeys && a->keys_budget > 0 && x->step == X_REPAIR) {
        a->keys_budget--;
        aae_repair_key(sh, x, x->at++);
    }
    aae_key_done(sh, x);
}

/* A handoff's GET answer for key i: the state here is sent unless the
 * peer's covers it (their merge is the peer's); nothing is merged here (the
 * copy is on its way out). */
static void aae_handoff_key(struct shard *sh, struct aae_exchange *x, uint32_t i,
                            const struct wire_msg *wm)
{
    const struct aae_key *k = &x->keys[i];
    if (wm->status == WIRE_CODE_NOT_FOUND) {
        aae_push_key(sh, x, i, NULL, 0, false);
        return;
    }
    if (wm->status != WIRE_CODE_OK) {
        x->missed = true;
        return;
    }
    struct wire_value_iter it;
    struct wire_bytes body = {0};
    wire_values_init(&it, wm);
    wire_values_next(&it, &body);
    AAE_STAT_ADD(sh->aae, bytes_in, wm->meta.len + body.len);
    struct replica_state mine;
    replica_state_init(&mine);
    int rc = replica_export(sh->store, sh->node, k->key, k->klen, k->hash, &mine);
    int covers = rc == 0 && !mine.meta.failed && !mine.body.failed
                     ? replica_covers(wm->meta.ptr, wm->meta.len, body.ptr, body.len, &mine)
                     : 0;
    replica_state_fini(&mine);
    if (rc == -ENOENT || covers == 1)
        return; /* gone here meanwhile (the print tells), or the peer's is newer */
    if (rc == -EAGAIN && aae_load(sh, x, i))
        return; /* cold here: read back, then asked again */
    if (rc != 0) {
        x->missed = true;
        return;
    }
    aae_push_key(sh, x, i, NULL, 0, false); /* the peer merges it (dvv_sync) */
}

/* A repair GET's answer: merge the peer's state here, send back the merge. */
static void aae_on_get_reply(struct shard *sh, struct aae_exchange *x, const struct wire_msg *wm)
{
    uint32_t i = (uint32_t)wm->id;
    if (i >= x->nkeys || x->waiting == 0)
        return;
    x->waiting--;
    const struct aae_key *k = &x->keys[i];
    if (x->is_handoff) {
        aae_handoff_key(sh, x, i, wm);
    } else if (wm->status == WIRE_CODE_OK) {
        struct wire_value_iter it;
        struct wire_bytes body = {0};
        wire_values_init(&it, wm);
        wire_values_next(&it, &body);
        AAE_STAT_ADD(sh->aae, bytes_in, wm->meta.len + body.len);
        int rc = replica_apply(sh->store, sh->node, k->key, k->klen, k->hash, wm->meta.ptr,
                               wm->meta.len, body.ptr, body.len, wm->expire_at_ms);
        if (rc == -EAGAIN && aae_load(sh, x, i)) {
            /* cold here: read back, then asked again */
        } else if (rc < 0) {
            if (rc != -EAGAIN)
                log_debug("anti-entropy: key '%.*s': the peer's state cannot be merged (%s)",
                          (int)(k->klen > 64 ? 64 : k->klen), k->key, strerror(-rc));
        } else {
            aae_push_key(sh, x, i, wm->meta.ptr, wm->meta.len, rc == 1);
        }
    } else if (wm->status == WIRE_CODE_NOT_FOUND) {
        aae_push_key(sh, x, i, NULL, 0, false);
    } else {
        x->missed = true;
    }
    aae_key_done(sh, x);
}

/* Handoff: the branches of t that hold something (a bitmap; a branch of
 * zero holds no key: digests XOR to zero only by a 2^-64 chance). */
static uint32_t aae_branches_held(const struct merkle_tree *t)
{
    uint32_t held = 0;
    for (uint32_t b = 0; b < MERKLE_BRANCHES; b++)
        if (t->branch[b])
            held |= 1u << b;
    return held;
}

/* Handoff: clears the leaves of todo that hold nothing in t; how many are left. */
static int aae_leaves_held(const struct merkle_tree *t, uint8_t todo[MERKLE_LEAFMAP_BYTES])
{
    int n = 0;
    for (uint32_t l = 0; l < MERKLE_LEAVES; l++) {
        if (!merkle_leafmap_has(todo, l))
            continue;
        if (t->leaf[l])
            n++;
        else
            todo[l / 8] &= (uint8_t) ~(1u << (l % 8));
    }
    return n;
}

void aae_on_reply(struct shard *sh, const struct wire_msg *wm)
{
    struct aae *a = sh->aae;
    struct aae_exchange *x = aae_find(a, wm->id);
    if (!x)
        return; /* ended meanwhile */
    if (coord_view_version(sh) != x->view || !a->is_ready) {
        aae_end(sh, x, false);
        aae_fill(sh);
        return;
    }
    if (wm->op == WIRE_OP_GET && x->step == X_REPAIR) {
        aae_on_get_reply(sh, x, wm);
    } else if (wm->op == WIRE_OP_SYNC) {
        return; /* none is awaited (id 0) */
    } else if (wm->status != WIRE_CODE_OK) {
        log_debug("anti-entropy: partition %u: the peer answered %s with %s", x->p,
                  wire_op_name(wm->op), wire_code_name(wm->status));
        aae_end(sh, x, false);
    } else if (wm->op == WIRE_OP_TREE && x->step == X_TREE) {
        struct wire_bytes v = aae_arg(wm);
        AAE_STAT_ADD(a, bytes_in, v.len);
        uint32_t branches = 0;
        int rc = merkle_diff_branches(aae_tree(a, x->p), v.ptr, v.len, &branches);
        if (rc == 0 && x->is_handoff)
            branches &= aae_branches_held(aae_tree(a, x->p));
        if (rc != 0 || branches == 0) {
            aae_end(sh, x, rc == 0); /* in sync; or a malformed answer: cut short */
        } else {
            uint8_t map[2];
            map[0] = (uint8_t)branches;
            map[1] = (uint8_t)(branches >> 8);
            x->branches = branches;
            x->differed = true;
            if (aae_send(sh, x, WIRE_OP_SEGMENTS, map, sizeof map) != 0)
                aae_end(sh, x, false);
        }
    } else if (wm->op == WIRE_OP_SEGMENTS && x->step == X_SEGMENTS) {
        struct wire_bytes v = aae_arg(wm);
        AAE_STAT_ADD(a, bytes_in, v.len);
        int n = merkle_diff_segments(aae_tree(a, x->p), x->branches, v.ptr, v.len, x->todo);
        if (n > 0 && x->is_handoff)
            n = aae_leaves_held(aae_tree(a, x->p), x->todo);
        if (n <= 0)
            aae_end(sh, x, n == 0);
        else
            aae_ask_keys(sh, x);
    } else if (wm->op == WIRE_OP_KEYS && x->step == X_KEYS) {
        aae_on_keys_reply(sh, x, wm);
        if (x->step == X_REPAIR)
            aae_repair_some(sh, x); /* what this tick's budget still allows */
    }
    if (x->step == X_FREE)
        aae_fill(sh);
}

/* Starts exchanges of the round while slots are free. */
static void aae_fill(struct shard *sh)
{
    struct aae *a = sh->aae;
    uint32_t slot = 0;
    while (a->round_p < a->q) {
        while (slot < AAE_EXCHANGES_MAX && a->ex[slot].step != X_FREE)
            slot++;
        if (slot == AAE_EXCHANGES_MAX)
            return;
        uint32_t peers[AAE_PEERS_MAX], npeers = 0;
        bool is_starter = aae_tree(a, a->round_p) &&
                          coord_aae_peers(sh, a->round_p, peers, AAE_PEERS_MAX, &npeers);
        if (!is_starter || a->round_k >= npeers) {
            a->round_p++;
            a->round_k = 0;
            continue;
        }
        struct aae_exchange *x = &a->ex[slot];
        memset(x, 0, sizeof *x);
        x->serial = ++a->serial;
        x->p = a->round_p;
        x->member = peers[a->round_k++];
        /* each exchange walks the leaves from another one: when the cap
         * ends exchanges early, later leaves get their turn too */
        x->first_leaf = (x->serial * 97u) % MERKLE_LEAVES;
        x->view = coord_view_version(sh);
        if (aae_send(sh, x, WIRE_OP_TREE, NULL, 0) != 0)
            x->step = X_FREE; /* no link now: the next round */
    }
}

int aae_handoff(struct shard *sh, uint32_t p, const char *id, uint64_t cookie)
{
    struct aae *a = sh->aae;
    if (!a->is_on)
        return 1; /* no trees: nothing to check with */
    uint32_t member = coord_live_member(sh, id);
    if (!a->is_ready || !aae_tree(a, p) || member == UINT32_MAX)
        return -EAGAIN;
    for (uint32_t i = 0; i < AAE_EXCHANGES_MAX; i++) {
        struct aae_exchange *x = &a->ex[i];
        if (x->step != X_FREE)
            continue;
        memset(x, 0, sizeof *x);
        x->serial = ++a->serial;
        x->p = p;
        x->member = member;
        x->first_leaf = (x->serial * 97u) % MERKLE_LEAVES;
        x->view = coord_view_version(sh);
        x->is_handoff = true;
        x->cookie = cookie;
        x->print = aae_print(a, p);
        if (aae_send(sh, x, WIRE_OP_TREE, NULL, 0) != 0) {
            x->step = X_FREE;
            return -EAGAIN;
        }
        return 0;
    }
    return -EAGAIN;
}

uint64_t aae_partition_print(const struct shard *sh, uint32_t p)
{
    struct aae *a = sh->aae;
    return a && a->is_on && a->is_ready ? aae_print(a, p) : 0;
}

bool aae_partition_holds(const struct shard *sh, uint32_t p)
{
    struct aae *a = sh->aae;
    if (!a || !a->is_on || !a->is_ready)
        return false;
    aae_apply_toggles(a);
    const struct merkle_tree *t = aae_tree(a, p);
    return t && aae_branches_held(t) != 0;
}

void aae_tick(struct shard *sh, int64_t now_ms)
{
    struct aae *a = sh->aae;
    const struct cfg *cfg = sh->node->cfg;
    bool want = cfg->aae_interval_s > 0 && coord_is_cluster(sh);
    if (want != a->is_on) {
        if (want)
            aae_start(sh, now_ms);
        else
            aae_stop(sh);
        if (!a->is_on)
            return;
    }
    if (!a->is_on)
        return;
    if (!a->shadow && a->is_ready && now_ms >= a->next_rebuild_ms)
        aae_rebuild_start(a);
    aae_rebuild_step(sh, now_ms);
    if (!a->is_ready)
        return;
    a->keys_budget = AAE_KEYS_PER_TICK;
    for (uint32_t i = 0; i < AAE_EXCHANGES_MAX; i++) {
        struct aae_exchange *x = &a->ex[i];
        if (x->step == X_FREE)
            continue;
        /* a peer's answer is late; repairs waiting for the tick's budget are not */
        bool is_awaiting = x->step != X_REPAIR || x->waiting > 0;
        if ((is_awaiting && now_ms > x->deadline_ms) || coord_view_version(sh) != x->view)
            aae_end(sh, x, false);
        else if (x->step == X_REPAIR)
            aae_repair_some(sh, x);
    }
    if (a->round_p >= a->q && now_ms >= a->next_round_ms) {
        a->round_p = a->round_k = 0;
        a->next_round_ms = now_ms + cfg->aae_interval_s * 1000;
    }
    aae_fill(sh);
}

/* ---- INFO ---- */

void aae_totals(const struct node *n, struct aae_totals *out)
{
    memset(out, 0, sizeof *out);
    for (uint32_t i = 0; i < n->nshards; i++) {
        const struct aae *a = n->shards[i] ? n->shards[i]->aae : NULL;
        if (!a)
            continue;
#define AAE_SUM(f) out->f += __atomic_load_n(&a->stats.f, __ATOMIC_RELAXED)
        AAE_SUM(exchanges);
        AAE_SUM(in_sync);
        AAE_SUM(keys_repaired);
        AAE_SUM(bytes_out);
        AAE_SUM(bytes_in);
        AAE_SUM(rebuilds);
        AAE_SUM(trees_corrected);
#undef AAE_SUM
    }
}

void aae_info(const struct node *n, struct buf *out)
{
    struct aae_totals sum;
    aae_totals(n, &sum);
    buf_printf(out,
               "ringkv_aae_exchanges:%" PRIu64 "\r\nringkv_aae_exchanges_in_sync:%" PRIu64
               "\r\nringkv_aae_keys_repaired:%" PRIu64 "\r\nringkv_aae_bytes_sent:%" PRIu64
               "\r\nringkv_aae_bytes_received:%" PRIu64 "\r\nringkv_aae_tree_rebuilds:%" PRIu64
               "\r\nringkv_aae_trees_corrected:%" PRIu64 "\r\n",
               sum.exchanges, sum.in_sync, sum.keys_repaired, sum.bytes_out, sum.bytes_in,
               sum.rebuilds, sum.trees_corrected);
}
