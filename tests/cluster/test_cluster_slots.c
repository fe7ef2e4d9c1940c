/* test_cluster_slots: what Redis Cluster clients read of a ringkv cluster
 * (CLUSTER SLOTS, SHARDS, NODES) and CONSISTENCY, with real ringkv processes
 * on 127.0.0.2 .. 4 (cluster_harness.h).
 * - Alone, a node covers all 16384 slots itself, as master, with its own
 *   address and id, in SLOTS, SHARDS and NODES ("myself,master 0-16383"),
 *   and says cluster_enabled:1 and redis_mode:cluster in INFO.
 * - With three nodes (N = 3), every node's CLUSTER SLOTS covers 0 .. 16383
 *   exactly once; each range lists three distinct nodes, master first, each
 *   with the address and id CLUSTER NODES gives it; a range's master is a
 *   "master" in CLUSTER NODES whose slots hold the range; CLUSTER SHARDS
 *   gives every slot the same master and the same nodes as CLUSTER SLOTS.
 * - With the replicas setting at 2, each range lists two nodes.
 * - Node 2 frozen (SIGSTOP): once failure detection marks it down, it is
 *   nobody's master and no replica in the others' CLUSTER SLOTS (all slots
 *   still covered), "fail" in CLUSTER NODES, health "fail" in SHARDS;
 *   thawed (SIGCONT), it is a master again.
 * - WAIT on three nodes: W - 1 at once (1, 2 under W ALL, 0 under ONE).
 * - CONSISTENCY: R and W set together or apart, ONE / QUORUM / ALL /
 *   DEFAULT, read back in words CONSISTENCY takes again; 0, 17, a missing
 *   value or a stray word are errors that change nothing.
 * Every wait is on a condition with a deadline. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "cluster_harness.h"

#define SLOTS 16384
#define FORM_MS 15000
#define DOWN_MS 20000
#define NODES_MAX 8

/* A slot as CLUSTER SLOTS (or SHARDS) places it. */
struct slot_place {
    int ranges;                /* ranges that cover it: must be 1 */
    int n;                     /* nodes listed */
    char ids[NODES_MAX][41];   /* master first */
    char addrs[NODES_MAX][64]; /* "ip:port" */
};

/* A line of CLUSTER NODES. */
struct nodes_line {
    char id[41], addr[64], flags[64], master[41];
    int lo[4096], hi[4096], n_slots;
};

struct topology {
    struct slot_place slot[SLOTS];
    struct nodes_line nodes[NODES_MAX];
    int n_nodes;
};

static const struct nodes_line *line_of(const struct topology *t, const char *id)
{
    for (int i = 0; i < t->n_nodes; i++)
        if (strcmp(t->nodes[i].id, id) == 0)
            return &t->nodes[i];
    return NULL;
}

static bool has_flag(const struct nodes_line *l, const char *flag)
{
    char flags[64];
    snprintf(flags, sizeof flags, "%s", l->flags);
    for (char *save, *f = strtok_r(flags, ",", &save); f; f = strtok_r(NULL, ",", &save))
        if (strcmp(f, flag) == 0)
            return true;
    return false;
}

/* CLUSTER NODES of node i into t->nodes; false when it does not parse. */
static bool read_nodes(int i, struct topology *t)
{
    redisReply *r = cluster_redis_command(i, "CLUSTER NODES");
    bool ok = r && r->type == REDIS_REPLY_STRING;
    t->n_nodes = 0;
    char *text = ok ? strndup(r->str, r->len) : NULL;
    freeReplyObject(r);
    for (char *save, *line = text ? strtok_r(text, "\n", &save) : NULL; ok && line;
         line = strtok_r(NULL, "\n", &save)) {
        if (t->n_nodes == NODES_MAX)
            return free(text), false;
        struct nodes_line *l = &t->nodes[t->n_nodes++];
        char ping[32], pong[32], epoch[32], link[32];
        int used = 0;
        ok = sscanf(line, "%40s %63s %63s %40s %31s %31s %31s %31s%n", l->id, l->addr, l->flags,
                    l->master, ping, pong, epoch, link, &used) == 8;
        l->n_slots = 0;
        for (char *s2, *w = strtok_r(line + used, " ", &s2); ok && w; w = strtok_r(NULL, " ", &s2)) {
            int lo, hi;
            if (sscanf(w, "%d-%d", &lo, &hi) != 2)
                hi = lo = atoi(w);
            ok = l->n_slots < 4096;
            if (ok) {
                l->lo[l->n_slots] = lo;
                l->hi[l->n_slots++] = hi;
            }
        }
    }
    free(text);
    return ok;
}

static bool nodes_master_has(const struct nodes_line *l, int slot)
{
    for (int k = 0; k < l->n_slots; k++)
        if (slot >= l->lo[k] && slot <= l->hi[k])
            return true;
    return false;
}

static void place_node(struct slot_place *p, const redisReply *node)
{
    if (p->n == NODES_MAX)
        return;
    snprintf(p->ids[p->n], sizeof p->ids[p->n], "%s", node->element[2]->str);
    snprintf(p->addrs[p->n], sizeof p->addrs[p->n], "%s:%lld", node->element[0]->str,
             node->element[1]->integer);
    p->n++;
}

/* CLUSTER SLOTS of node i into t->slot; false when malformed. */
static bool read_slots(int i, struct topology *t)
{
    memset(t->slot, 0, sizeof t->slot);
    redisReply *r = cluster_redis_command(i, "CLUSTER SLOTS");
    bool ok = r && r->type == REDIS_REPLY_ARRAY;
    for (size_t k = 0; ok && k < r->elements; k++) {
        const redisReply *e = r->element[k];
        ok = e->type == REDIS_REPLY_ARRAY && e->elements >= 3 &&
             e->element[0]->type == REDIS_REPLY_INTEGER &&
             e->element[1]->type == REDIS_REPLY_INTEGER;
        for (size_t j = 2; ok && j < e->elements; j++) {
            const redisReply *n = e->element[j];
            ok = n->type == REDIS_REPLY_ARRAY && n->elements == 4 &&
                 n->element[0]->type == REDIS_REPLY_STRING &&
                 n->element[1]->type == REDIS_REPLY_INTEGER &&
                 n->element[2]->type == REDIS_REPLY_STRING && n->element[2]->len == 40 &&
                 n->element[3]->type == REDIS_REPLY_ARRAY && n->element[3]->elements == 0;
        }
        long long lo = ok ? e->element[0]->integer : 0, hi = ok ? e->element[1]->integer : -1;
        ok = ok && lo >= 0 && lo <= hi && hi < SLOTS;
        for (long long s = lo; ok && s <= hi; s++) {
            struct slot_place *p = &t->slot[s];
            if (p->ranges++ == 0)
                for (size_t j = 2; j < e->elements; j++)
                    place_node(p, e->element[j]);
        }
    }
    freeReplyObject(r);
    return ok;
}

static const redisReply *map_get(const redisReply *map, const char *key)
{
    for (size_t k = 0; map->type == REDIS_REPLY_ARRAY && k + 1 < map->elements; k += 2)
        if (map->element[k]->type == REDIS_REPLY_STRING && strcmp(map->element[k]->str, key) == 0)
            return map->element[k + 1];
    return NULL;
}

/* CLUSTER SHARDS of node i against t (from SLOTS): every slot in one shard,
 * whose nodes are the slot's (master first, role "master"), plus any down
 * node, health "fail", named in `down` (or NULL). */
static bool shards_agree(int i, const struct topology *t, const char *down)
{
    static int seen[SLOTS];
    memset(seen, 0, sizeof seen);
    redisReply *r = cluster_redis_command(i, "CLUSTER SHARDS");
    bool ok = r && r->type == REDIS_REPLY_ARRAY;
    for (size_t k = 0; ok && k < r->elements; k++) {
        const redisReply *slots = map_get(r->element[k], "slots");
        const redisReply *nodes = map_get(r->element[k], "nodes");
        ok = slots && nodes && slots->elements % 2 == 0 && nodes->elements >= 1;
        for (size_t j = 0; ok && j < slots->elements; j += 2) {
            long long lo = slots->element[j]->integer, hi = slots->element[j + 1]->integer;
            ok = lo >= 0 && lo <= hi && hi < SLOTS;
            for (long long s = lo; ok && s <= hi; s++) {
                const struct slot_place *p = &t->slot[s];
                seen[s]++;
                int live = 0;
                for (size_t n = 0; ok && n < nodes->elements; n++) {
                    const redisReply *id = map_get(nodes->element[n], "id");
                    const redisReply *role = map_get(nodes->element[n], "role");
                    const redisReply *health = map_get(nodes->element[n], "health");
                    ok = id && role && health;
                    if (!ok)
                        break;
                    bool is_down = down && strcmp(id->str, down) == 0;
                    ok = strcmp(role->str, n == 0 ? "master" : "replica") == 0 &&
                         strcmp(health->str, is_down ? "fail" : "online") == 0;
                    if (ok && !is_down)
                        ok = live < p->n && strcmp(id->str, p->ids[live++]) == 0;
                }
                ok = ok && live == p->n;
            }
        }
    }
    freeReplyObject(r);
    for (int s = 0; ok && s < SLOTS; s++)
        ok = seen[s] == 1;
    return ok;
}

/* Everything the header promises of node i's answers, with `nodes` nodes
 * listed per slot (min(3, cluster size) while none is down) and `down` (or
 * NULL) nobody's master, in no slot's list, "fail" in CLUSTER NODES. */
struct expect {
    int node;
    int per_slot;
    const char *down;
};

static bool topology_holds(void *arg)
{
    const struct expect *x = arg;
    static struct topology t;
    if (!read_slots(x->node, &t) || !read_nodes(x->node, &t))
        return false;
    for (int s = 0; s < SLOTS; s++) {
        const struct slot_place *p = &t.slot[s];
        if (p->ranges != 1 || p->n != x->per_slot)
            return false;
        for (int k = 0; k < p->n; k++) {
            const struct nodes_line *l = line_of(&t, p->ids[k]);
            if (!l || strncmp(l->addr, p->addrs[k], strlen(p->addrs[k])) != 0 ||
                l->addr[strlen(p->addrs[k])] != '@' || (x->down && !strcmp(p->ids[k], x->down)))
                return false;
            for (int j = 0; j < k; j++)
                if (strcmp(p->ids[j], p->ids[k]) == 0)
                    return false;
        }
        const struct nodes_line *m = line_of(&t, p->ids[0]);
        if (!has_flag(m, "master") || strcmp(m->master, "-") != 0 || !nodes_master_has(m, s))
            return false;
    }
    for (int k = 0; k < t.n_nodes; k++) {
        bool is_down = x->down && strcmp(t.nodes[k].id, x->down) == 0;
        if (has_flag(&t.nodes[k], "fail") != is_down || (is_down && t.nodes[k].n_slots))
            return false;
    }
    return shards_agree(x->node, &t, x->down);
}

static void expect_topology(struct expect *x, int limit_ms, const char *what)
{
    if (cluster_wait(topology_holds, x, limit_ms))
        return;
    redisReply *r = cluster_redis_command(x->node, "CLUSTER NODES");
    fprintf(stderr, "node %d's CLUSTER NODES:\n%s\n", x->node, r && r->str ? r->str : "-");
    freeReplyObject(r);
    fail_msg("%s: node %d's topology is not as expected within %d ms", what, x->node, limit_ms);
}

static void test_cluster_slots_one_node_serves_every_slot(void **state)
{
    (void)state;
    assert_int_equal(cluster_start(0, NULL), 0);
    struct expect alone = {.node = 0, .per_slot = 1};
    expect_topology(&alone, 5000, "one node");
    static struct topology t;
    assert_true(read_slots(0, &t) && read_nodes(0, &t));
    char addr[64];
    snprintf(addr, sizeof addr, "%s:%d", cluster_host(0), cluster_client_port());
    assert_string_equal(t.slot[0].ids[0], cluster_node(0)->id);
    assert_string_equal(t.slot[0].addrs[0], addr);
    assert_int_equal(t.n_nodes, 1);
    assert_string_equal(t.nodes[0].flags, "myself,master");
    assert_int_equal(t.nodes[0].n_slots, 1);
    assert_int_equal(t.nodes[0].lo[0], 0);
    assert_int_equal(t.nodes[0].hi[0], SLOTS - 1);
    char *info = cluster_ask(0, "INFO cluster");
    assert_non_null(info);
    assert_true(cluster_info_has(info, "cluster_enabled:1"));
    free(info);
    info = cluster_ask(0, "INFO server");
    assert_non_null(info);
    assert_true(cluster_info_has(info, "redis_mode:cluster"));
    free(info);
}

static void test_cluster_slots_three_nodes_and_one_frozen(void **state)
{
    (void)state;
    assert_int_equal(cluster_start(0, NULL), 0);
    const char *seeded[] = {"--seeds", cluster_seed(0), NULL};
    assert_int_equal(cluster_start(1, seeded), 0);
    assert_int_equal(cluster_start(2, seeded), 0);
    int three = 3;
    assert_true(cluster_wait(cluster_formed, &three, FORM_MS));
    for (int i = 0; i < 3; i++) {
        struct expect all = {.node = i, .per_slot = 3};
        expect_topology(&all, 5000, "three nodes");
    }

    cluster_signal(2, SIGSTOP);
    for (int i = 0; i < 2; i++) {
        struct expect frozen = {.node = i, .per_slot = 2, .down = cluster_node(2)->id};
        expect_topology(&frozen, DOWN_MS, "node 2 frozen");
    }
    cluster_signal(2, SIGCONT);
    struct expect back = {.node = 0, .per_slot = 3};
    expect_topology(&back, DOWN_MS, "node 2 thawed");
}

/* With replicas 2, each slot lists two of the three nodes. */
static void test_cluster_slots_follow_the_replicas_setting(void **state)
{
    (void)state;
    const char *two[] = {"--replicas", "2", NULL};
    const char *seeded[] = {"--replicas", "2", "--seeds", cluster_seed(0), NULL};
    assert_int_equal(cluster_start(0, two), 0);
    assert_int_equal(cluster_start(1, seeded), 0);
    assert_int_equal(cluster_start(2, seeded), 0);
    int three = 3;
    assert_true(cluster_wait(cluster_formed, &three, FORM_MS));
    struct expect pairs = {.node = 1, .per_slot = 2};
    expect_topology(&pairs, 5000, "replicas 2");
}

/* CONSISTENCY's read back, as "R r W w". */
static void expect_consistency(redisContext *c, const char *want)
{
    redisReply *r = redisCommand(c, "CONSISTENCY");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 4);
    char got[64];
    snprintf(got, sizeof got, "%s %s %s %s", r->element[0]->str, r->element[1]->str,
             r->element[2]->str, r->element[3]->str);
    assert_string_equal(got, want);
    freeReplyObject(r);
}

static void expect_reply(redisContext *c, const char *want, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    redisReply *r = redisvCommand(c, format, ap);
    va_end(ap);
    assert_non_null(r);
    if (strcmp(want, "OK") == 0) {
        assert_int_equal(r->type, REDIS_REPLY_STATUS);
        assert_string_equal(r->str, "OK");
    } else {
        assert_int_equal(r->type, REDIS_REPLY_ERROR);
        assert_non_null(strstr(r->str, want));
    }
    freeReplyObject(r);
}

static void test_cluster_slots_consistency_round_trips(void **state)
{
    (void)state;
    assert_int_equal(cluster_start(0, NULL), 0);
    redisContext *c = redisConnect(cluster_host(0), cluster_client_port());
    assert_true(c && !c->err);
    /* Each command, its reply (OK or the start of an error), then what the
     * connection reads back: errors change nothing, not even a half that
     * was right. */
    static const struct {
        const char *command, *reply, *now;
    } steps[] = {
        {"CONSISTENCY R 2 W 3", "OK", "R 2 W 3"},
        {"CONSISTENCY w quorum", "OK", "R 2 W quorum"},
        {"CONSISTENCY R all W 16", "OK", "R all W 16"},
        {"CONSISTENCY one", "OK", "R 1 W 1"},
        {"CONSISTENCY QUORUM", "OK", "R quorum W quorum"},
        {"CONSISTENCY ALL", "OK", "R all W all"},
        {"CONSISTENCY R 0", "ERR CONSISTENCY values", "R all W all"},
        {"CONSISTENCY R 2 W 17", "ERR CONSISTENCY values", "R all W all"},
        {"CONSISTENCY W -1", "ERR CONSISTENCY values", "R all W all"},
        {"CONSISTENCY R two", "ERR CONSISTENCY values", "R all W all"},
        {"CONSISTENCY R 2 W", "ERR syntax error", "R all W all"},
        {"CONSISTENCY R 2 X 2", "ERR syntax error", "R all W all"},
        {"CONSISTENCY 2", "ERR CONSISTENCY takes", "R all W all"},
        {"CONSISTENCY MOST", "ERR CONSISTENCY takes", "R all W all"},
    };
    expect_consistency(c, "R default W default");
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        expect_reply(c, steps[i].reply, steps[i].command);
        expect_consistency(c, steps[i].now);
    }
    expect_reply(c, "OK", "CONSISTENCY DEFAULT");
    expect_consistency(c, "R default W default");
    /* Per connection: another one starts at the node's settings. */
    expect_reply(c, "OK", "CONSISTENCY R 1");
    redisContext *other = redisConnect(cluster_host(0), cluster_client_port());
    assert_true(other && !other->err);
    expect_consistency(other, "R default W default");
    expect_consistency(c, "R 1 W default");
    expect_reply(c, "OK", "READONLY");
    expect_reply(c, "OK", "READWRITE");
    expect_reply(c, "OK", "ASKING");
    redisFree(other);
    redisFree(c);
}

static void expect_int(redisContext *c, long long want, const char *command)
{
    redisReply *r = redisCommand(c, command);
    assert_non_null(r);
    if (r->type != REDIS_REPLY_INTEGER)
        fprintf(stderr, "%s: %s\n", command, r->type == REDIS_REPLY_ERROR ? r->str : "?");
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, want);
    freeReplyObject(r);
}

/* WAIT counts the other replicas each acknowledged write reached (W - 1),
 * at once: 1 with the default W = 2 of N = 3, the connection's CONSISTENCY
 * W otherwise (ALL: 2, ONE: 0), whatever numreplicas and timeout ask. */
static void test_cluster_slots_wait_counts_write_replicas(void **state)
{
    (void)state;
    assert_int_equal(cluster_start_formed(3, NULL), 0);
    redisContext *c = redisConnect(cluster_host(0), cluster_client_port());
    assert_true(c && !c->err);
    expect_reply(c, "OK", "SET waited value");
    expect_int(c, 1, "WAIT 1 0");
    expect_int(c, 1, "WAIT 2 100");
    expect_reply(c, "OK", "CONSISTENCY W ALL");
    expect_int(c, 2, "WAIT 2 0");
    expect_reply(c, "OK", "CONSISTENCY ONE");
    expect_int(c, 0, "WAIT 1 0");
    expect_reply(c, "ERR timeout is negative", "WAIT 1 -1");
    expect_reply(c, "ERR value is not an integer", "WAIT x 0");
    redisFree(c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_cluster_slots_one_node_serves_every_slot,
                                  cluster_forget_all),
        cmocka_unit_test_teardown(test_cluster_slots_three_nodes_and_one_frozen,
                                  cluster_forget_all),
        cmocka_unit_test_teardown(test_cluster_slots_follow_the_replicas_setting,
                                  cluster_forget_all),
        cmocka_unit_test_teardown(test_cluster_slots_consistency_round_trips, cluster_forget_all),
        cmocka_unit_test_teardown(test_cluster_slots_wait_counts_write_replicas,
                                  cluster_forget_all),
    };
    return cluster_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
