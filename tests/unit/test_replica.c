/* test_replica.c: a key's replicated state (shards/replica.h) over real
 * stores: export and apply, siblings from concurrent coordinators, plain
 * writes made versions (replica_versionize), tombstones and their reaping,
 * the sibling bounds, and KV-679 (a node whose data was wiped writes as a
 * new actor). Each "node" is a struct node with its own settings, data
 * epoch and store; with a log, a real shard log (persist.h) in a mkdtemp
 * directory, stopped and started again to recover.
 * The node id comes from admin_node_id(), replaced at link time
 * (-Wl,--wrap=admin_node_id): a node's admin pointer is its id string. */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <mimalloc.h>

#include "cfg.h"
#include "dvv.h"
#include "keyhash.h"
#include "node.h"
#include "persist.h"
#include "replica.h"
#include "shard.h"
#include "store.h"

const char *__wrap_admin_node_id(const struct admin *a);
const char *__wrap_admin_node_id(const struct admin *a)
{
    return (const char *)a;
}

#define NODES 12

struct tnode {
    struct store store; /* first: 64-byte aligned like the array */
    struct cfg cfg;
    struct node node;
    struct shard *sh; /* with a log only */
    char id[41];
    char dir[128]; /* "" without a log */
};

static struct tnode nodes[NODES] __attribute__((aligned(64)));
static char tmpdir[64];
#define STATES 5
static struct replica_state sts[STATES]; /* each test's states */
static struct dvv_clock *scratch;   /* for decoding them */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    memset(nodes, 0, sizeof nodes);
    for (int i = 0; i < STATES; i++)
        replica_state_init(&sts[i]);
    scratch = dvv_create(DVV_MAX_ENTRIES, DVV_MAX_VALUES);
    strcpy(tmpdir, "/tmp/ringkv-test-replica.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static void node_stop(struct tnode *t);

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NODES; i++)
        if (nodes[i].node.cfg)
            node_stop(&nodes[i]);
    for (int i = 0; i < STATES; i++)
        replica_state_fini(&sts[i]);
    dvv_destroy(scratch);
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Settings: storage and dir, then `extra` (NULL-terminated flag pairs). */
static void load_cfg(struct tnode *t, const char *const *extra)
{
    const char *argv[32] = {"ringkv", "--storage", t->dir[0] ? "log" : "memory", "--dir",
                            t->dir[0] ? t->dir : tmpdir};
    int argc = 5;
    for (; extra && *extra && argc < 30; extra++)
        argv[argc++] = *extra;
    bool exit_now = false;
    char err[256];
    assert_int_equal(cfg_load(&t->cfg, argc, (char **)argv, &exit_now, err, sizeof err), 0);
}

/* Starts node t: id (40 hex digits made of c), dir_name NULL for memory.
 * With a log, recovers what the directory holds. */
static void node_start(struct tnode *t, char c, const char *dir_name, const char *const *extra)
{
    memset(t->id, c, 40);
    t->id[40] = '\0';
    t->dir[0] = '\0';
    if (dir_name)
        snprintf(t->dir, sizeof t->dir, "%s/%s", tmpdir, dir_name);
    load_cfg(t, extra);
    struct node *n = &t->node;
    memset(n, 0, sizeof *n);
    n->cfg = &t->cfg;
    n->admin = (struct admin *)t->id;
    n->nshards = 1;
    n->npartitions = (uint32_t)t->cfg.partitions;
    n->slot_shift = keyhash_slot_shift(n->npartitions);
    n->partition_fn = (uint32_t)t->cfg.partition_function;
    n->partition_shard = mi_zalloc(n->npartitions * sizeof *n->partition_shard);
    assert_non_null(n->partition_shard);
    struct store_config sc = {0};
    assert_int_equal(store_init(&t->store, &sc), 0);
    if (dir_name)
        assert_int_equal(persist_mkdir(t->dir), 0);
    assert_int_equal(persist_prepare_dir(n, &n->layout), 0);
    if (!dir_name)
        return;
    t->sh = mi_zalloc(sizeof *t->sh);
    assert_non_null(t->sh);
    t->sh->node = n;
    t->sh->store = &t->store;
    assert_int_equal(io_uring_queue_init(16, &t->sh->uring, 0), 0);
    assert_int_equal(persist_start(t->sh, &n->layout, &t->sh->persist), 0);
    assert_int_equal(persist_finish_start(n, &n->layout), 0);
}

/* Stops t: with a log, everything written reaches the files first. */
static void node_stop(struct tnode *t)
{
    if (t->sh) {
        assert_int_equal(persist_finish(t->sh->persist), 0);
        persist_stop(t->sh->persist);
        io_uring_queue_exit(&t->sh->uring);
        mi_free(t->sh);
        t->sh = NULL;
    }
    store_fini(&t->store);
    mi_free(t->node.partition_shard);
    t->node.cfg = NULL;
}

static void node_restart(struct tnode *t, const char *dir_name)
{
    char c = t->id[0];
    node_stop(t);
    node_start(t, c, dir_name, NULL);
}

static uint64_t h(const char *key)
{
    return keyhash(key, strlen(key));
}

/* ---- what plain commands do (as the handlers in cmd_string.c) ---- */

static void export_or_empty(struct tnode *t, const char *key, struct replica_state *st)
{
    int rc = replica_export(&t->store, &t->node, key, (uint32_t)strlen(key), h(key), st);
    if (rc == -ENOENT)
        replica_state_clear(st);
    else
        assert_int_equal(rc, 0);
}

static void versionize(struct tnode *t, const char *key, const struct replica_state *before,
                       struct replica_state *after, bool want_changed)
{
    bool changed = !want_changed;
    assert_int_equal(replica_versionize(&t->store, &t->node, key, (uint32_t)strlen(key), h(key),
                                        before, after, &changed),
                     0);
    assert_int_equal(changed, want_changed);
}

/* memcached's `set key flags 0 len` on t as its coordinator: after = what
 * the replicas apply. */
static void mc_set(struct tnode *t, const char *key, const char *val, uint32_t mc_flags,
                   struct replica_state *after)
{
    struct replica_state before;
    replica_state_init(&before);
    export_or_empty(t, key, &before);
    assert_int_equal(store_put(&t->store, key, (uint32_t)strlen(key), h(key), val, strlen(val), 0,
                               mc_flags, NULL),
                     0);
    versionize(t, key, &before, after, true);
    replica_state_fini(&before);
}

/* SET key val on t as its coordinator. */
static void set(struct tnode *t, const char *key, const char *val, struct replica_state *after)
{
    mc_set(t, key, val, 0, after);
}

/* DEL key on t as its coordinator; returns DEL's answer. */
static bool del(struct tnode *t, const char *key, struct replica_state *after, bool want_changed)
{
    struct replica_state before;
    replica_state_init(&before);
    export_or_empty(t, key, &before);
    bool deleted = store_delete(&t->store, key, (uint32_t)strlen(key), h(key));
    versionize(t, key, &before, after, want_changed);
    replica_state_fini(&before);
    return deleted;
}

static int apply(struct tnode *t, const char *key, const struct replica_state *st)
{
    return replica_apply(&t->store, &t->node, key, (uint32_t)strlen(key), h(key), st->meta.data,
                         st->meta.len, st->body.data, st->body.len, st->expire_at_ms);
}

/* The client flags a memcached get of key on t answers (the key exists). */
static uint32_t flags_of(struct tnode *t, const char *key)
{
    struct table_entry *e = store_lookup(&t->store, key, (uint32_t)strlen(key), h(key));
    assert_non_null(e);
    return e->mc_flags;
}

/* What a plain GET answers: NULL for no key. Borrowed until the next change. */
static const char *get(struct tnode *t, const char *key, uint32_t *len)
{
    struct table_entry *e = store_lookup(&t->store, key, (uint32_t)strlen(key), h(key));
    if (!e)
        return NULL;
    *len = e->val_len;
    return table_entry_val(e);
}

static void assert_get(struct tnode *t, const char *key, const char *want)
{
    uint32_t len = 0;
    const char *v = get(t, key, &len);
    if (!want) {
        assert_null(v);
        return;
    }
    assert_non_null(v);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(v, want, len);
}

/* The siblings of key on t (tombstones included), decoded. */
static uint32_t siblings(struct tnode *t, const char *key, struct replica_state *st,
                         struct dvv_clock *k)
{
    assert_int_equal(replica_export(&t->store, &t->node, key, (uint32_t)strlen(key), h(key), st),
                     0);
    assert_int_equal(dvv_decode(st->meta.data, st->meta.len, st->body.data, st->body.len, k), 0);
    return dvv_size(k);
}

static bool has_value(const struct dvv_clock *k, const char *val)
{
    for (uint32_t i = 0; i < dvv_size(k); i++)
        if (!(k->values[i].flags & DVV_TOMBSTONE) && k->values[i].len == strlen(val) &&
            memcmp(k->values[i].data, val, strlen(val)) == 0)
            return true;
    return false;
}

static void assert_same_state(struct tnode *a, struct tnode *b, const char *key)
{
    struct replica_state sa, sb;
    replica_state_init(&sa);
    replica_state_init(&sb);
    export_or_empty(a, key, &sa);
    export_or_empty(b, key, &sb);
    assert_true(replica_same(&sa, sb.meta.data, sb.meta.len));
    assert_int_equal(sa.body.len, sb.body.len);
    if (sa.body.len)
        assert_memory_equal(sa.body.data, sb.body.data, sa.body.len);
    assert_int_equal(sa.expire_at_ms, sb.expire_at_ms);
    replica_state_fini(&sa);
    replica_state_fini(&sb);
}

/* ---- tests ---- */

static void test_replica_export_apply_round_trip(void **state)
{
    struct tnode *a = &nodes[0], *b = &nodes[1];
    node_start(a, 'a', NULL, NULL);
    node_start(b, 'b', NULL, NULL);
    struct replica_state *st = &sts[0];
    set(a, "k", "v1", st);
    assert_int_equal(apply(b, "k", st), 1);
    assert_same_state(a, b, "k");
    assert_get(b, "k", "v1");
    /* replica_peek: the export's bytes, borrowed. */
    struct store_version v;
    uint64_t at = 1;
    assert_int_equal(replica_peek(&b->store, "k", 1, h("k"), &v, &at), 0);
    assert_int_equal(v.meta_len, st->meta.len);
    assert_memory_equal(v.meta, st->meta.data, v.meta_len);
    assert_int_equal(v.body_len, st->body.len);
    assert_memory_equal(v.body, st->body.data, v.body_len);
    assert_int_equal(at, st->expire_at_ms);
    assert_int_equal(replica_peek(&b->store, "none", 4, h("none"), &v, &at), -ENOENT);
    /* A missing key; a plain entry exports as its implicit clock, which
     * another replica takes as it is. */
    assert_int_equal(replica_export(&a->store, &a->node, "none", 4, h("none"), st), -ENOENT);
    assert_int_equal(store_put(&a->store, "p", 1, h("p"), "plain", 5, 0, 0, NULL), 0);
    assert_int_equal(replica_peek(&a->store, "p", 1, h("p"), &v, &at), 1); /* export it */
    struct dvv_clock *k = scratch;
    assert_int_equal(siblings(a, "p", st, k), 1);
    assert_int_equal(k->values[0].ts_ms, 0);
    assert_int_equal(apply(b, "p", st), 1);
    assert_get(b, "p", "plain");
    assert_same_state(a, b, "p");
    /* Bytes that do not decode change nothing. */
    assert_int_equal(replica_apply(&b->store, &b->node, "p", 1, h("p"), "xx", 2, "", 0, 0),
                     -EINVAL);
    assert_get(b, "p", "plain");
}

static void test_replica_apply_is_idempotent(void **state)
{
    struct tnode *a = &nodes[0], *b = &nodes[1];
    node_start(a, 'a', NULL, NULL);
    node_start(b, 'b', NULL, NULL);
    struct replica_state *st = &sts[0];
    set(a, "k", "v1", st);
    assert_int_equal(apply(a, "k", st), 0); /* the coordinator holds it already */
    assert_int_equal(apply(b, "k", st), 1);
    uint64_t writes = b->store.stats.writes;
    assert_int_equal(apply(b, "k", st), 0);
    assert_int_equal(b->store.stats.writes, writes); /* nothing stored again */
    /* replica_holds: the same answer as replica_same against an export. */
    assert_true(replica_holds(&b->store, "k", 1, h("k"), st->meta.data, st->meta.len));
    assert_false(replica_holds(&b->store, "none", 4, h("none"), st->meta.data, st->meta.len));
    struct replica_state *st2 = &sts[1];
    set(a, "k", "v2", st2);
    assert_false(replica_holds(&b->store, "k", 1, h("k"), st2->meta.data, st2->meta.len));
    assert_true(replica_holds(&a->store, "k", 1, h("k"), st2->meta.data, st2->meta.len));
}

static void test_replica_concurrent_writes_become_siblings(void **state)
{
    struct tnode *a = &nodes[0], *b = &nodes[1];
    node_start(a, 'a', NULL, NULL);
    node_start(b, 'b', NULL, NULL);
    struct replica_state *sa = &sts[0], *sb = &sts[1], *merged = &sts[2];
    set(a, "k", "from-a", sa); /* two coordinators, neither saw the other */
    set(b, "k", "from-b", sb);
    assert_int_equal(apply(a, "k", sb), 1);
    assert_int_equal(apply(b, "k", sa), 1);
    assert_same_state(a, b, "k");
    struct dvv_clock *k = scratch;
    assert_int_equal(siblings(a, "k", merged, k), 2);
    assert_true(has_value(k, "from-a") && has_value(k, "from-b"));
    /* GET picks one, the same on both replicas. */
    uint32_t la = 0, lb = 0;
    const char *ga = get(a, "k", &la);
    char picked[16] = {0};
    memcpy(picked, ga, la);
    const char *gb = get(b, "k", &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(picked, gb, la);
    /* A write with the merged context (a SET at a) resolves them. */
    struct replica_state *resolved = &sts[3];
    set(a, "k", "joined", resolved);
    assert_int_equal(apply(b, "k", resolved), 1);
    assert_int_equal(siblings(b, "k", merged, k), 1);
    assert_true(has_value(k, "joined"));
    assert_same_state(a, b, "k");
    /* The older versions arriving late change nothing. */
    assert_int_equal(apply(b, "k", sa), 0);
    assert_int_equal(apply(b, "k", sb), 0);
    assert_get(b, "k", "joined");
}

/* replica_covers (a handoff check's test, aae.c): a peer's state covers
 * mine when their merge is the peer's: equal, or newer; not when either
 * holds a version the other lacks. */
static void test_replica_covers(void **state)
{
    (void)state;
    struct tnode *a = &nodes[0], *b = &nodes[1];
    node_start(a, 'a', NULL, NULL);
    node_start(b, 'b', NULL, NULL);
    struct replica_state *v1 = &sts[0], *v2 = &sts[1], *other = &sts[2];
    set(a, "k", "one", v1);
    assert_int_equal(apply(b, "k", v1), 1);
    set(b, "k", "two", v2); /* b saw v1: v2 supersedes it */
    set(a, "j", "elsewhere", other);
#define COVERS(peer, mine)                                                                     \
    replica_covers((peer)->meta.data, (peer)->meta.len, (peer)->body.data, (peer)->body.len,   \
                   (mine))
    assert_int_equal(COVERS(v1, v1), 1); /* the same */
    assert_int_equal(COVERS(v2, v1), 1); /* the peer's is newer: nothing to send */
    assert_int_equal(COVERS(v1, v2), 0); /* mine is newer: send it */
    struct replica_state *c1 = &sts[3], *c2 = &sts[4];
    set(a, "c", "from-a", c1); /* concurrent: each lacks the other's */
    set(b, "c", "from-b", c2);
    assert_int_equal(COVERS(c1, c2), 0);
    assert_int_equal(COVERS(c2, c1), 0);
    assert_int_equal(COVERS(other, v1), 0); /* another history altogether */
    assert_true(replica_covers("xx", 2, "", 0, v1) < 0); /* a malformed state */
#undef COVERS
}

static void test_replica_set_supersedes_siblings(void **state)
{
    struct tnode *a = &nodes[0], *b = &nodes[1], *c = &nodes[2];
    node_start(a, 'a', NULL, NULL);
    node_start(b, 'b', NULL, NULL);
    node_start(c, 'c', NULL, NULL);
    struct replica_state *sb = &sts[0], *sc = &sts[1], *after = &sts[2];
    set(b, "k", "from-b", sb);
    set(c, "k", "from-c", sc);
    assert_int_equal(apply(a, "k", sb), 1);
    assert_int_equal(apply(a, "k", sc), 1);
    struct dvv_clock *k = scratch;
    assert_int_equal(siblings(a, "k", after, k), 2);
    /* A plain SET at a supersedes both, on every replica it reaches. */
    set(a, "k", "set", after);
    assert_int_equal(siblings(a, "k", after, k), 1);
    assert_get(a, "k", "set");
    assert_int_equal(apply(b, "k", after), 1);
    assert_int_equal(apply(c, "k", after), 1);
    assert_int_equal(siblings(b, "k", sb, k), 1);
    assert_get(b, "k", "set");
    assert_same_state(a, c, "k");
}

static void test_replica_del_is_a_tombstone(void **state)
{
    struct tnode *a = &nodes[0], *b = &nodes[1];
    node_start(a, 'a', NULL, NULL);
    node_start(b, 'b', NULL, NULL);
    struct replica_state *s1 = &sts[0], *s2 = &sts[1], *st = &sts[2];
    set(a, "k", "v1", s1);
    assert_int_equal(apply(b, "k", s1), 1);
    assert_true(del(a, "k", s2, true));
    struct dvv_clock *k = scratch;
    assert_int_equal(siblings(a, "k", st, k), 1);
    assert_true(k->values[0].flags & DVV_TOMBSTONE);
    assert_get(a, "k", NULL);
    /* The older version arriving again keeps it deleted. */
    assert_int_equal(apply(a, "k", s1), 0);
    assert_get(a, "k", NULL);
    assert_int_equal(apply(b, "k", s2), 1);
    assert_get(b, "k", NULL);
    assert_int_equal(apply(b, "k", s1), 0);
    assert_get(b, "k", NULL);
    assert_same_state(a, b, "k");
    /* A DEL of the deleted key answers 0 and changes nothing: the
     * tombstone stays. */
    assert_false(del(a, "k", st, false));
    assert_same_state(a, b, "k");
    /* A new key's state arriving only as a tombstone is kept as one. */
    assert_int_equal(apply(a, "fresh", s2), 1);
    assert_get(a, "fresh", NULL);
    assert_int_equal(siblings(a, "fresh", st, k), 1);
}

static void test_replica_versionize_unchanged_and_expiry(void **state)
{
    struct tnode *a = &nodes[0], *b = &nodes[1];
    node_start(a, 'a', NULL, NULL);
    node_start(b, 'b', NULL, NULL);
    struct replica_state *s1 = &sts[0], *before = &sts[1], *after = &sts[2];
    set(a, "k", "v1", s1);
    assert_int_equal(apply(b, "k", s1), 1);
    /* A read, or a SET NX that found the key: nothing to replicate. */
    export_or_empty(a, "k", before);
    assert_get(a, "k", "v1");
    versionize(a, "k", before, after, false);
    assert_true(replica_same(after, s1->meta.data, s1->meta.len));
    /* Nothing before and after either. */
    replica_state_clear(before);
    versionize(a, "none", before, after, false);
    versionize(a, "none", NULL, after, false);
    /* EXPIRE: a new dot, the new expiry; replicas take it. */
    int64_t at = a->store.now_ms + 60000;
    export_or_empty(a, "k", before);
    struct table_entry *e = store_lookup(&a->store, "k", 1, h("k"));
    assert_int_equal(store_set_expire(&a->store, e, h("k"), at, NULL), 0);
    versionize(a, "k", before, after, true);
    assert_int_equal(after->expire_at_ms, at);
    assert_int_equal(apply(b, "k", after), 1);
    assert_same_state(a, b, "k");
    assert_int_equal(store_lookup(&b->store, "k", 1, h("k"))->expire_ms, at);
    /* PERSIST: the same, back to no expiry. */
    export_or_empty(a, "k", before);
    e = store_lookup(&a->store, "k", 1, h("k"));
    assert_int_equal(store_set_expire(&a->store, e, h("k"), 0, NULL), 0);
    versionize(a, "k", before, after, true);
    assert_int_equal(after->expire_at_ms, 0);
    assert_int_equal(apply(b, "k", after), 1);
    assert_int_equal(store_lookup(&b->store, "k", 1, h("k"))->expire_ms, 0);
    assert_get(b, "k", "v1");
    /* The older state with its expiry does not bring the expiry back. */
    assert_int_equal(apply(b, "k", s1), 0);
    assert_int_equal(store_lookup(&b->store, "k", 1, h("k"))->expire_ms, 0);
}

static void test_replica_apply_expiry_of_equal_versions(void **state)
{
    struct tnode *a = &nodes[0], *b = &nodes[1];
    node_start(a, 'a', NULL, NULL);
    node_start(b, 'b', NULL, NULL);
    struct replica_state *s1 = &sts[0];
    set(a, "k", "v1", s1);
    int64_t t1 = a->store.now_ms + 60000, t2 = t1 + 60000;
    s1->expire_at_ms = (uint64_t)t1;
    assert_int_equal(apply(b, "k", s1), 1);
    /* Equal versions: the later expiry wins, whichever arrives first. */
    s1->expire_at_ms = (uint64_t)t2;
    assert_int_equal(apply(b, "k", s1), 1);
    assert_int_equal(store_lookup(&b->store, "k", 1, h("k"))->expire_ms, t2);
    s1->expire_at_ms = (uint64_t)t1;
    assert_int_equal(apply(b, "k", s1), 0);
    assert_int_equal(store_lookup(&b->store, "k", 1, h("k"))->expire_ms, t2);
    /* No expiry counts as the latest. */
    s1->expire_at_ms = 0;
    assert_int_equal(apply(b, "k", s1), 1);
    assert_int_equal(store_lookup(&b->store, "k", 1, h("k"))->expire_ms, 0);
    /* A state already expired, for a key not held, is nothing to store. */
    s1->expire_at_ms = (uint64_t)(a->store.now_ms - 1);
    assert_int_equal(apply(b, "gone", s1), 0);
    assert_int_equal(replica_export(&b->store, &b->node, "gone", 4, h("gone"), s1), -ENOENT);
}

static void test_replica_sibling_bounds(void **state)
{
    static const char *const bounds[] = {"--max-siblings", "2", "--warn-siblings", "1", NULL};
    struct tnode *a = &nodes[0];
    node_start(a, 'a', NULL, bounds);
    struct replica_state *s = &sts[0], *held = &sts[3]; /* s: three states */
    for (int i = 0; i < 3; i++) {
        node_start(&nodes[1 + i], (char)('b' + i), NULL, NULL);
        set(&nodes[1 + i], "k", "v", &s[i]);
    }
    assert_int_equal(apply(a, "k", &s[0]), 1);
    assert_int_equal(a->store.stats.sibling_warnings, 0);
    assert_int_equal(apply(a, "k", &s[1]), 1);
    assert_int_equal(a->store.stats.sibling_warnings, 1);
    export_or_empty(a, "k", held);
    assert_int_equal(apply(a, "k", &s[2]), -E2BIG); /* and nothing changed: */
    export_or_empty(a, "k", &s[2]);
    assert_true(replica_same(&s[2], held->meta.data, held->meta.len));
}

/* More actors than the small scratch clocks hold: the big ones take over. */
static void test_replica_many_actors(void **state)
{
    struct tnode *a = &nodes[0];
    node_start(a, '0', NULL, NULL);
    struct replica_state *st = &sts[0];
    for (int i = 1; i < NODES; i++) {
        node_start(&nodes[i], (char)('a' + i), NULL, NULL);
        char val[8];
        snprintf(val, sizeof val, "v%d", i);
        set(&nodes[i], "k", val, st);
        assert_int_equal(apply(a, "k", st), 1);
        assert_int_equal(apply(a, "k", st), 0);
    }
    struct dvv_clock *k = scratch;
    assert_int_equal(siblings(a, "k", st, k), NODES - 1);
    set(a, "k", "one", st); /* versionize over eleven siblings */
    assert_int_equal(siblings(a, "k", st, k), 1);
    assert_true(del(a, "k", st, true));
    assert_int_equal(siblings(a, "k", st, k), 1);
}

static void test_replica_reap_after_grace(void **state)
{
    static const char *const grace[] = {"--tombstone-grace", "10", NULL};
    struct tnode *a = &nodes[0], *b = &nodes[1];
    node_start(a, 'a', NULL, grace);
    node_start(b, 'b', NULL, NULL);
    struct replica_state *st = &sts[0], *sb = &sts[1];
    set(a, "dead", "v", st);
    assert_true(del(a, "dead", st, true));
    set(a, "live", "v", st);
    /* A tombstone next to a concurrent live value is kept whole. */
    set(a, "mixed", "v", st);
    set(b, "mixed", "other", sb);
    assert_true(del(a, "mixed", st, true));
    assert_int_equal(apply(a, "mixed", sb), 1);
    int64_t now = a->store.now_ms;
    assert_int_equal(replica_reap(&a->store, &a->node, now + 9000, 100), 0);
    a->node.log_failing = 1; /* MISCONF: no delete records now */
    assert_int_equal(replica_reap(&a->store, &a->node, now + 10001, 100), 0);
    a->node.log_failing = 0;
    assert_int_equal(replica_reap(&a->store, &a->node, now + 10001, 100), 1);
    assert_int_equal(replica_export(&a->store, &a->node, "dead", 4, h("dead"), st), -ENOENT);
    assert_int_equal(replica_export(&a->store, &a->node, "mixed", 5, h("mixed"), st), 0);
    assert_get(a, "live", "v");
    /* The budget bounds a call; later calls go on. */
    char key[16];
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "d%d", i);
        set(a, key, "v", st);
        assert_true(del(a, key, st, true));
    }
    uint32_t total = 0;
    for (int i = 0; i < 10 && total < 10; i++) {
        uint32_t got = replica_reap(&a->store, &a->node, now + 10001, 3);
        assert_true(got <= 3);
        total += got;
    }
    assert_int_equal(total, 10);
    assert_int_equal(store_count(&a->store), 2); /* live, mixed */
}

/* What replica_reap_offer hands over: keys offered, counted by a test. */
struct offers {
    uint32_t n, take; /* offers seen; refused once n reaches take */
    char last[16];
};

static bool take_offer(void *arg, const void *key, uint32_t klen, uint64_t hash)
{
    struct offers *o = arg;
    assert_int_equal(hash, keyhash(key, klen));
    if (o->n >= o->take)
        return false;
    snprintf(o->last, sizeof o->last, "%.*s", (int)klen, (const char *)key);
    o->n++;
    return true;
}

/* In a cluster candidates are offered, never deleted here; a refused offer
 * stops the pass, and the next call offers that key again. */
static void test_replica_reap_offer_deletes_nothing(void **state)
{
    static const char *const grace[] = {"--tombstone-grace", "10", NULL};
    struct tnode *a = &nodes[0];
    node_start(a, 'a', NULL, grace);
    struct replica_state *st = &sts[0];
    set(a, "dead", "v", st);
    assert_true(del(a, "dead", st, true));
    set(a, "live", "v", st);
    int64_t now = a->store.now_ms;
    struct offers o = {.take = 1};
    assert_int_equal(replica_reap_offer(&a->store, &a->node, now + 9000, 100, take_offer, &o), 0);
    assert_int_equal(o.n, 0);
    o.take = 0; /* refused: nothing taken, nothing deleted */
    assert_int_equal(replica_reap_offer(&a->store, &a->node, now + 10001, 100, take_offer, &o), 0);
    o.take = 1;
    assert_int_equal(replica_reap_offer(&a->store, &a->node, now + 10001, 100, take_offer, &o), 1);
    assert_string_equal(o.last, "dead");
    assert_int_equal(store_count(&a->store), 2);
    assert_int_equal(replica_export(&a->store, &a->node, "dead", 4, h("dead"), st), 0);
}

/* Applied versions and tombstones go through the log; a reaped tombstone
 * does not come back from it. */
static void test_replica_reaped_key_stays_gone_after_restart(void **state)
{
    struct tnode *a = &nodes[0], *b = &nodes[1];
    node_start(a, 'a', "a", NULL);
    node_start(b, 'b', NULL, NULL);
    struct replica_state *s1 = &sts[0], *s2 = &sts[1], *st = &sts[2];
    set(b, "kept", "v", s1);
    assert_int_equal(apply(a, "kept", s1), 1);
    set(b, "reaped", "v", s1);
    assert_int_equal(apply(a, "reaped", s1), 1);
    assert_true(del(b, "reaped", s2, true));
    assert_int_equal(apply(a, "reaped", s2), 1);
    store_turn(&b->store, b->store.now_ms + 5000); /* "tomb" is deleted 5 s later */
    set(b, "tomb", "v", st);
    assert_true(del(b, "tomb", st, true));
    assert_int_equal(apply(a, "tomb", st), 1);
    node_restart(a, "a");
    assert_same_state(a, b, "kept");
    assert_same_state(a, b, "reaped"); /* the tombstones came back from the log */
    assert_same_state(a, b, "tomb");
    /* Past the grace of "reaped" only. */
    struct dvv_clock *k = scratch;
    assert_int_equal(siblings(a, "reaped", st, k), 1);
    int64_t at = k->values[0].ts_ms + a->cfg.tombstone_grace_s * 1000 + 1;
    assert_int_equal(replica_reap(&a->store, &a->node, at, 100), 1);
    assert_int_equal(replica_export(&a->store, &a->node, "reaped", 6, h("reaped"), st), -ENOENT);
    node_restart(a, "a");
    assert_int_equal(replica_export(&a->store, &a->node, "reaped", 6, h("reaped"), st), -ENOENT);
    assert_get(a, "reaped", NULL);
    assert_same_state(a, b, "kept");
    assert_same_state(a, b, "tomb"); /* within its grace */
}

/* memcached client flags are kept per sibling: on the coordinator's
 * version, at the replicas that apply it, across a restart (the log
 * record's meta), and for a plain entry's implicit clock; GET answers the
 * picked sibling's. */
static void test_replica_mc_flags_are_kept(void **state)
{
    struct tnode *a = &nodes[0], *b = &nodes[1], *c = &nodes[2];
    node_start(a, 'a', NULL, NULL);
    node_start(b, 'b', "b", NULL);
    node_start(c, 'c', NULL, NULL);
    struct replica_state *sa = &sts[0], *sc = &sts[1], *st = &sts[2];
    mc_set(a, "k", "v", 5, sa);
    assert_int_equal(flags_of(a, "k"), 5);
    assert_int_equal(apply(b, "k", sa), 1);
    assert_int_equal(flags_of(b, "k"), 5);
    node_restart(b, "b");
    assert_int_equal(flags_of(b, "k"), 5);
    assert_same_state(a, b, "k");
    /* A concurrent write with other flags: each sibling keeps its own. */
    store_turn(&c->store, a->store.now_ms + 1000); /* c's write is newer: the pick */
    mc_set(c, "k", "w", 7, sc);
    assert_int_equal(apply(b, "k", sc), 1);
    struct dvv_clock *k = scratch;
    assert_int_equal(siblings(b, "k", st, k), 2);
    for (uint32_t i = 0; i < 2; i++)
        assert_int_equal(k->values[i].mc_flags, k->values[i].data[0] == 'v' ? 5 : 7);
    assert_get(b, "k", "w");
    assert_int_equal(flags_of(b, "k"), 7);
    node_restart(b, "b");
    assert_int_equal(flags_of(b, "k"), 7);
    /* A plain entry (written before the cluster) replicates its flags. */
    assert_int_equal(store_put(&a->store, "p", 1, h("p"), "plain", 5, 0, 9, NULL), 0);
    export_or_empty(a, "p", st);
    assert_int_equal(apply(c, "p", st), 1);
    assert_int_equal(flags_of(c, "p"), 9);
}

static bool always_readable(void *arg, uint64_t lsn)
{
    (void)arg, (void)lsn;
    return true;
}

static uint64_t nothing_unwritten(void *arg)
{
    (void)arg;
    return 0;
}

/* A plain value on disk only: its implicit clock needs it, so the caller
 * is told to read it back first, and nothing changes. */
static void test_replica_cold_plain_value_is_eagain(void **state)
{
    static const struct store_tier tier = {always_readable, nothing_unwritten, NULL};
    struct tnode *a = &nodes[0], *b = &nodes[1];
    node_start(a, 'a', NULL, NULL);
    node_start(b, 'b', NULL, NULL);
    store_fini(&a->store);
    struct store_config sc = {.maxmemory = 1};
    assert_int_equal(store_init(&a->store, &sc), 0);
    store_attach_tier(&a->store, &tier);
    a->store.maxmemory = store_used_bytes(&a->store) + 64; /* under it until the put */
    char big[4096];
    memset(big, 'x', sizeof big);
    assert_int_equal(store_put(&a->store, "k", 1, h("k"), big, sizeof big, 0, 0, NULL), 0);
    store_tick(&a->store, a->store.now_ms);
    struct table_entry *e = store_lookup(&a->store, "k", 1, h("k"));
    assert_non_null(e);
    assert_true(table_entry_is_cold(e));
    struct replica_state *st = &sts[0], *after = &sts[1];
    assert_int_equal(replica_export(&a->store, &a->node, "k", 1, h("k"), st), -EAGAIN);
    set(b, "k", "v", st);
    assert_int_equal(apply(a, "k", st), -EAGAIN);
    bool changed = true;
    assert_int_equal(replica_versionize(&a->store, &a->node, "k", 1, h("k"), NULL, after, &changed),
                     -EAGAIN);
    assert_false(changed);
    assert_true(table_entry_is_cold(store_lookup(&a->store, "k", 1, h("k"))));
}

/* Values beyond RAM: a versioned value goes cold as a plain one does (its
 * meta stays in memory, with its flags and length); its state is -EAGAIN
 * until the body is read back (store_load_value), which gives back the
 * very same state. */
static void test_replica_cold_versioned_value(void **state)
{
    static const struct store_tier tier = {always_readable, nothing_unwritten, NULL};
    struct tnode *a = &nodes[0];
    node_start(a, 'a', NULL, NULL);
    store_fini(&a->store);
    struct store_config sc = {0};
    assert_int_equal(store_init(&a->store, &sc), 0);
    store_attach_tier(&a->store, &tier);
    char big[4096];
    memset(big, 'x', sizeof big);
    big[sizeof big - 1] = '\0';
    struct replica_state *orig = &sts[0], *st = &sts[1];
    mc_set(a, "k", big, 5, orig);
    a->store.maxmemory = store_used_bytes(&a->store) - 1024; /* the tick cools it */
    store_tick(&a->store, a->store.now_ms);
    struct table_entry *e = store_lookup(&a->store, "k", 1, h("k"));
    assert_non_null(e);
    assert_true(table_entry_is_cold(e));
    assert_true(e->meta & TABLE_ENTRY_VERSIONED);
    assert_int_equal(e->mc_flags, 5);
    assert_int_equal(e->val_len, strlen(big)); /* STRLEN needs no read back */
    assert_int_equal(store_entry_record_len(e), orig->body.len);
    assert_int_equal(a->store.stats.cold_keys, 1);
    assert_int_equal(replica_export(&a->store, &a->node, "k", 1, h("k"), st), -EAGAIN);
    assert_int_equal(apply(a, "k", orig), -EAGAIN);
    /* Read back: a body of another length is refused, the right one taken. */
    a->store.maxmemory = 0;
    assert_int_equal(store_load_value(&a->store, e, h("k"), "xx", 2, NULL), -EINVAL);
    assert_int_equal(store_load_value(&a->store, e, h("k"), orig->body.data, orig->body.len, &e),
                     0);
    assert_false(table_entry_is_cold(e));
    assert_int_equal(a->store.stats.cold_keys, 0);
    export_or_empty(a, "k", st);
    assert_true(replica_same(st, orig->meta.data, orig->meta.len));
    assert_int_equal(st->body.len, orig->body.len);
    assert_memory_equal(st->body.data, orig->body.data, st->body.len);
    assert_int_equal(flags_of(a, "k"), 5);
    assert_get(a, "k", big);

    /* without client flags the version is packed (one dot): cold and back */
    struct replica_state *po = &sts[2];
    set(a, "p", big, po);
    a->store.maxmemory = store_used_bytes(&a->store) - 6000; /* both go cold */
    store_tick(&a->store, a->store.now_ms);
    e = store_lookup(&a->store, "p", 1, h("p"));
    assert_non_null(e);
    assert_true(table_entry_is_cold(e));
    assert_int_equal(store_entry_record_len(e), po->body.len);
    struct store_version v;
    store_entry_version(e, &v);
    assert_null(v.body);
    assert_int_equal(v.meta_len, po->meta.len);
    assert_memory_equal(v.meta, po->meta.data, v.meta_len);
    assert_true(table_entry_mem(e) < 96);
    a->store.maxmemory = 0;
    assert_int_equal(store_load_value(&a->store, e, h("p"), po->body.data, po->body.len, &e), 0);
    assert_false(table_entry_is_cold(e));
    export_or_empty(a, "p", st);
    assert_true(replica_same(st, po->meta.data, po->meta.len));
    assert_get(a, "p", big);
}

/* KV-679: a node whose data directory was wiped draws a new data epoch,
 * so its writes are dots no replica has seen, even once read repair gave
 * it back an older state of the key; were it to write under its old
 * actor, its counters would follow that older state, and a replica that
 * saw its newer dots would drop the write as already seen. */
static void test_replica_kv679_wiped_node_writes_are_kept(void **state)
{
    struct tnode *a = &nodes[0], *b = &nodes[1], *c = &nodes[2], *old = &nodes[3];
    node_start(a, 'a', "a", NULL);
    node_start(b, 'b', NULL, NULL);
    node_start(c, 'c', NULL, NULL);
    struct replica_state *s1 = &sts[0], *s2 = &sts[1], *st = &sts[2];
    set(a, "k", "v1", s1);
    assert_int_equal(apply(b, "k", s1), 1);
    assert_int_equal(apply(c, "k", s1), 1);
    set(a, "k", "v2", s2); /* c misses it */
    assert_int_equal(apply(b, "k", s2), 1);
    uint64_t old_epoch = a->node.layout.data_epoch;
    node_restart(a, "a"); /* a restart keeps the epoch and the data */
    assert_int_equal(a->node.layout.data_epoch, old_epoch);
    assert_same_state(a, b, "k");
    node_stop(a);
    char path[128];
    snprintf(path, sizeof path, "%s/a", tmpdir);
    assert_int_equal(nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
    node_start(a, 'a', "a", NULL); /* the same node id, its data gone */
    assert_int_not_equal(a->node.layout.data_epoch, old_epoch);
    export_or_empty(c, "k", s1); /* read repair from c: v1 only */
    assert_int_equal(apply(a, "k", s1), 1);
    set(a, "k", "after-wipe", st);
    assert_int_equal(apply(b, "k", st), 1);
    struct dvv_clock *k = scratch;
    assert_int_equal(siblings(b, "k", s2, k), 2); /* v2 was not in a's context */
    assert_true(has_value(k, "after-wipe") && has_value(k, "v2"));
    /* The failure the epoch prevents: the same repair, then a write under
     * the old actor continues its counter after v1, which b has seen. */
    node_start(old, 'a', NULL, NULL);
    old->node.layout.data_epoch = old_epoch;
    assert_int_equal(apply(old, "k", s1), 1);
    set(old, "k", "reused", st);
    assert_int_equal(apply(b, "k", st), 0);
    assert_int_equal(siblings(b, "k", s2, k), 2);
    assert_false(has_value(k, "reused"));
}

/* KV-679 for one key: a node that no longer holds a key (reaped here;
 * evicted or expired alike) writes it as a new key incarnation, so a
 * replica that still holds the key's older dots keeps the write; while the
 * node holds the key, its writes stay one actor (one clock entry). */
static void test_replica_kv679_lost_key_writes_are_kept(void **state)
{
    struct tnode *a = &nodes[0], *b = &nodes[1];
    node_start(a, 'a', NULL, NULL);
    node_start(b, 'b', NULL, NULL);
    struct replica_state *s1 = &sts[0], *st = &sts[1];
    struct dvv_clock *k = scratch;
    set(a, "k", "v1", s1);
    set(a, "k", "v2", s1);
    assert_true(del(a, "k", s1, true));
    assert_int_equal(siblings(a, "k", st, k), 1);
    assert_int_equal(k->nentries, 1);
    assert_int_equal(apply(b, "k", s1), 1);
    int64_t later = a->store.now_ms + a->cfg.tombstone_grace_s * 1000 + 1;
    assert_int_equal(replica_reap(&a->store, &a->node, later, 10), 1); /* b has not yet */
    store_turn(&a->store, later);
    set(a, "k", "again", st);
    assert_int_equal(apply(b, "k", st), 1);
    assert_get(b, "k", "again");
    /* The same after the key left a's store as an eviction takes it. */
    set(b, "e", "old", st);
    assert_int_equal(apply(a, "e", st), 1);
    set(a, "e", "a1", s1);
    assert_int_equal(apply(b, "e", s1), 1);
    assert_true(store_delete(&a->store, "e", 1, h("e")));
    store_turn(&a->store, later + 1000);
    set(a, "e", "a2", st);
    assert_int_equal(apply(b, "e", st), 1);
    assert_int_equal(siblings(b, "e", s1, k), 2); /* a1 and a2: a forgot a1 */
    assert_get(b, "e", "a2");
    /* a learns a1 back: two incarnations of its actor in the clock; its
     * next writes go on with one of them, and the clock does not grow. */
    assert_int_equal(apply(a, "e", s1), 1);
    set(a, "e", "a3", st);
    assert_int_equal(siblings(a, "e", s1, k), 1);
    uint32_t entries = k->nentries;
    for (int i = 0; i < 3; i++)
        set(a, "e", "a4", st);
    assert_int_equal(siblings(a, "e", s1, k), 1);
    assert_int_equal(k->nentries, entries);
}

/* Journal records counted (a put hook's write: one record). */
static uint32_t journal_puts;
static uint64_t count_put(void *arg, const struct table_entry *e, uint64_t prev)
{
    (void)arg, (void)e, (void)prev;
    return ++journal_puts;
}
static void count_del(void *arg, const void *key, uint32_t klen, uint64_t prev)
{
    (void)arg, (void)key, (void)klen, (void)prev;
}
static void count_flush(void *arg)
{
    (void)arg;
}

/* SET as the coordinator runs it with replica_put_begin: the store's put of
 * the key is its new version at once (one entry, one record), superseding
 * the siblings it held, as replica_versionize after a plain put would; a put
 * of another key, or with an expiry already past, stays plain. */
static void test_replica_put_is_one_versioned_write(void **state)
{
    (void)state;
    struct tnode *a = &nodes[0], *b = &nodes[1], *c = &nodes[2];
    node_start(a, 'a', NULL, NULL);
    node_start(b, 'b', NULL, NULL);
    node_start(c, 'c', NULL, NULL);
    struct replica_state *sb = &sts[0], *sc = &sts[1], *after = &sts[2];
    set(b, "k", "from-b", sb);
    set(c, "k", "from-c", sc);
    assert_int_equal(apply(a, "k", sb), 1);
    assert_int_equal(apply(a, "k", sc), 1);
    struct store_journal j = {count_put, count_del, count_flush, NULL};
    a->store.journal = &j;
    journal_puts = 0;
    /* The old way takes two records (the plain entry, then the version). */
    set(a, "old", "v", after);
    assert_int_equal(journal_puts, 2);
    journal_puts = 0;
    struct replica_put put;
    replica_put_begin(&put, &a->store, &a->node, "k", 1, h("k"));
    struct table_entry *e = NULL;
    assert_int_equal(store_put(&a->store, "k", 1, h("k"), "new", 3, 0, 7, &e), 0);
    assert_true(put.done);
    assert_int_equal(journal_puts, 1);
    assert_non_null(e);
    assert_true(e->meta & TABLE_ENTRY_VERSIONED);
    assert_int_equal(e->mc_flags, 7);
    /* another key, and a put that removes the key: plain */
    assert_int_equal(store_put(&a->store, "other", 5, h("other"), "x", 1, 0, 0, &e), 0);
    assert_false(e->meta & TABLE_ENTRY_VERSIONED);
    replica_put_end(&put, &a->store);
    assert_null(a->store.put_hook);
    a->store.journal = NULL;
    assert_get(a, "k", "new");
    assert_int_equal(flags_of(a, "k"), 7);
    struct dvv_clock *k = scratch;
    assert_int_equal(siblings(a, "k", after, k), 1);
    /* it supersedes both siblings wherever it goes */
    assert_int_equal(apply(b, "k", sc), 1);
    assert_int_equal(apply(b, "k", after), 1);
    assert_int_equal(siblings(b, "k", sb, k), 1);
    assert_get(b, "k", "new");
    assert_same_state(a, b, "k");
    /* an expiry already past: the plain put (removal) goes on */
    replica_put_begin(&put, &a->store, &a->node, "k", 1, h("k"));
    assert_int_equal(store_put(&a->store, "k", 1, h("k"), "gone", 4, 1, 0, NULL), 0);
    assert_false(put.done);
    replica_put_end(&put, &a->store);
    assert_get(a, "k", NULL);
}

/* A versioned entry holding one dotted value (the usual cluster key) keeps
 * that value's packed fields in memory (store.c: a flags byte, the actor,
 * the counter and the timestamp; 5 bytes fewer than a version header and
 * the meta), and still gives the canonical meta: the bytes the decoded
 * clock encodes to, which replicas compare and hash. The value is sized so
 * that the entry fills an 80-byte allocation exactly: a header and meta
 * would take the next size class. A tombstone of one dot (DEL) is packed
 * too. */
static void test_replica_one_dot_version_is_packed(void **state)
{
    (void)state;
    struct tnode *a = &nodes[0];
    node_start(a, 'a', NULL, NULL);
    struct replica_state *st = &sts[0];
    set(a, "k", "first", st);
    const struct table_entry *e = table_find(a->store.table, "k", 1, h("k"));
    assert_non_null(e);
    struct store_version v;
    store_entry_version(e, &v);
    /* meta: header, actor, counter, value count, timestamp, length (1 byte
     * here); packed: flags byte, actor, counter, timestamp */
    size_t packed = 1 + v.meta_len - 3;
    size_t fixed = sizeof(struct table_entry) + 1 + packed;
    char val[80] = {0};
    memset(val, 'v', 80 - fixed);
    set(a, "k", val, st);
    e = table_find(a->store.table, "k", 1, h("k"));
    store_entry_version(e, &v);
    assert_int_equal(fixed + e->val_len, 80);
    assert_true(sizeof(struct table_entry) + 1 + e->val_len + 3 + v.meta_len > 80);
    assert_int_equal(table_entry_mem(e), 80);
    assert_ptr_equal(v.body, table_entry_key(e) + 1); /* one sibling: the body is the value */
    assert_int_equal(v.body_len, e->val_len);
    assert_int_equal(v.meta_len, st->meta.len); /* what the write's state encoded */
    assert_memory_equal(v.meta, st->meta.data, v.meta_len);
    struct dvv_clock *c = dvv_create(4, 4);
    struct buf again;
    buf_init(&again);
    assert_int_equal(dvv_decode(v.meta, v.meta_len, v.body, v.body_len, c), 0);
    assert_int_equal(dvv_encode_meta(c, &again), 0);
    assert_int_equal(again.len, v.meta_len);
    assert_memory_equal(again.data, v.meta, v.meta_len);
    buf_fini(&again);
    dvv_destroy(c);
    assert_get(a, "k", val);
    /* a replica applying the state holds the same bytes: "same" is seen */
    struct tnode *b = &nodes[1];
    node_start(b, 'b', NULL, NULL);
    assert_int_equal(apply(b, "k", st), 1);
    assert_true(replica_holds(&b->store, "k", 1, h("k"), st->meta.data, st->meta.len));
    assert_int_equal(apply(b, "k", st), 0); /* nothing to change */
    /* a tombstone packs too; plain reads see no key */
    assert_true(del(a, "k", st, true));
    e = table_find(a->store.table, "k", 1, h("k"));
    assert_non_null(e);
    assert_true(e->meta & TABLE_ENTRY_TOMBSTONE);
    store_entry_version(e, &v);
    assert_memory_equal(v.meta, st->meta.data, v.meta_len);
    assert_get(a, "k", NULL);
    assert_int_equal(apply(b, "k", st), 1);
    assert_get(b, "k", NULL);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_replica_export_apply_round_trip),
        T(test_replica_apply_is_idempotent),
        T(test_replica_concurrent_writes_become_siblings),
        T(test_replica_covers),
        T(test_replica_set_supersedes_siblings),
        T(test_replica_del_is_a_tombstone),
        T(test_replica_versionize_unchanged_and_expiry),
        T(test_replica_apply_expiry_of_equal_versions),
        T(test_replica_sibling_bounds),
        T(test_replica_many_actors),
        T(test_replica_reap_after_grace),
        T(test_replica_reap_offer_deletes_nothing),
        T(test_replica_reaped_key_stays_gone_after_restart),
        T(test_replica_cold_plain_value_is_eagain),
        T(test_replica_mc_flags_are_kept),
        T(test_replica_cold_versioned_value),
        T(test_replica_kv679_wiped_node_writes_are_kept),
        T(test_replica_kv679_lost_key_writes_are_kept),
        T(test_replica_put_is_one_versioned_write),
        T(test_replica_one_dot_version_is_packed),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
