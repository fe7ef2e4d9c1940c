/* Unit tests for the cluster state file (admin/cluster_state.c) and its
 * restore into the membership (cluster_state_restore() over
 * member_restore_self/_peer; cluster_state_check()): a round trip keeps
 * every field and rebuilds the same ring (same hash, owners and preference
 * lists); truncated, damaged and hostile documents are refused with a
 * reason and never crash (every prefix, a table of bad fields, random byte
 * flips); a missing file is -ENOENT; a temporary file left by a crash is
 * ignored and replaced; restored members are down (not heard from) and
 * the places a join asks, a few at a time, left ones tombstones kept as
 * left, a node that left gets none back; another node's state or another Q
 * is refused; the saver writes only what changed. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "cluster_state.h"

#define Q 64

static char dir[64];
static struct ring_member members[4];
static struct ring *ring2; /* epoch 2: members 0..2, then 3 joined */

static void make_id(char id[GOSSIP_ID_LEN + 1], unsigned k)
{
    snprintf(id, GOSSIP_ID_LEN + 1, "%08x%08x%08x%08x%08x", k * 2654435761u, k + 7, k * 40503u,
             ~k, k * 97u);
}

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/ringkv-cluster-state-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    static const uint32_t weights[] = {100, 100, 200, 50};
    static const char *const zones[] = {"z1", "z2", "z1", "z2"};
    for (unsigned k = 0; k < 4; k++) {
        memset(&members[k], 0, sizeof members[k]);
        make_id(members[k].id, k + 1);
        members[k].weight = weights[k];
        snprintf(members[k].zone, sizeof members[k].zone, "%s", zones[k]);
    }
    struct ring *ring1;
    if (ring_build(members, 3, Q, 3, NULL, &ring1) != 0)
        return -1;
    int rc = ring_build(members, 4, Q, 3, ring1, &ring2);
    ring_destroy(ring1);
    return rc == 0 && ring2->epoch == 2 ? 0 : -1;
}

static int teardown(void **state)
{
    ring_destroy(ring2);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

static void peer_info(struct gossip_info *i, unsigned k)
{
    memset(i, 0, sizeof *i);
    memcpy(i->id, members[k].id, sizeof i->id);
    snprintf(i->client_addr, sizeof i->client_addr, "127.0.0.%u:6379", k + 2);
    snprintf(i->cluster_addr, sizeof i->cluster_addr, "127.0.0.%u:16379", k + 2);
    if (k != 2) /* one with HTTP off */
        snprintf(i->admin_addr, sizeof i->admin_addr, "127.0.0.%u:7379", k + 2);
    i->weight = members[k].weight;
    snprintf(i->zone, sizeof i->zone, "%s", members[k].zone);
}

/* Node 0's state: up at state_version 2, incarnation 9; peers 1..3, peer 3 leaving. */
static void fixture(struct cluster_state *s, struct cluster_state_peer peers[3])
{
    memset(s, 0, sizeof *s);
    memcpy(s->id, members[0].id, sizeof s->id);
    s->state = MEMBER_UP;
    s->state_version = 2;
    s->incarnation = 9;
    for (unsigned k = 1; k <= 3; k++) {
        peer_info(&peers[k - 1].info, k);
        peers[k - 1].state = k == 3 ? MEMBER_LEAVING : MEMBER_UP;
        peers[k - 1].state_version = k == 3 ? 3 : 1;
    }
    s->peers = peers;
    s->n_peers = 3;
}

static char *fixture_text(void)
{
    struct cluster_state s;
    struct cluster_state_peer peers[3];
    fixture(&s, peers);
    char *text = cluster_state_encode(&s, ring2);
    assert_non_null(text);
    return text;
}

static void assert_same_ring(const struct ring *a, const struct ring *b)
{
    assert_int_equal(a->q, b->q);
    assert_int_equal(a->n, b->n);
    assert_int_equal(a->epoch, b->epoch);
    assert_int_equal(a->hash, b->hash);
    assert_int_equal(a->n_members, b->n_members);
    assert_int_equal(a->zone_spread, b->zone_spread);
    for (uint32_t i = 0; i < a->n_members; i++) {
        assert_string_equal(a->members[i].id, b->members[i].id);
        assert_int_equal(a->members[i].weight, b->members[i].weight);
        assert_string_equal(a->members[i].zone, b->members[i].zone);
        assert_int_equal(a->owned[i], b->owned[i]);
    }
    assert_memory_equal(a->owner, b->owner, sizeof *a->owner * a->q);
    assert_memory_equal(a->pref, b->pref, sizeof *a->pref * a->q * a->n);
}

static void test_cluster_state_round_trip_keeps_everything(void **state)
{
    struct cluster_state s, back;
    struct cluster_state_peer peers[3];
    fixture(&s, peers);
    char *text = cluster_state_encode(&s, ring2);
    assert_non_null(text);
    assert_int_equal(text[strlen(text) - 1], '\n');
    assert_int_equal(cluster_state_write(dir, text), 0);
    free(text);
    struct ring *ring = NULL;
    char why[256] = "";
    assert_int_equal(cluster_state_load(dir, &back, &ring, why, sizeof why), 0);
    assert_string_equal(back.id, s.id);
    assert_int_equal(back.state, MEMBER_UP);
    assert_int_equal(back.state_version, 2);
    assert_int_equal(back.incarnation, 9);
    assert_int_equal(back.n_peers, 3);
    for (unsigned k = 0; k < 3; k++) { /* sorted by id on load: find each */
        const struct cluster_state_peer *p = NULL;
        for (unsigned j = 0; j < 3; j++)
            if (strcmp(back.peers[j].info.id, peers[k].info.id) == 0)
                p = &back.peers[j];
        assert_non_null(p);
        assert_memory_equal(&p->info, &peers[k].info, sizeof p->info);
        assert_int_equal(p->state, peers[k].state);
        assert_int_equal(p->state_version, peers[k].state_version);
    }
    assert_same_ring(ring, ring2);
    cluster_state_fini(&back);
    ring_destroy(ring);
}

static void test_cluster_state_missing_file_is_enoent(void **state)
{
    char sub[128], why[256];
    snprintf(sub, sizeof sub, "%s/empty", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    struct cluster_state s;
    struct ring *ring;
    assert_int_equal(cluster_state_load(sub, &s, &ring, why, sizeof why), -ENOENT);
    assert_null(ring);
    assert_int_equal(cluster_state_load("/nonexistent/ringkv", &s, &ring, why, sizeof why),
                     -ENOENT);
    rmdir(sub);
}

/* Decoding text must fail with -EINVAL and a reason containing want (NULL: any). */
static void expect_refused(const char *text, size_t len, const char *want)
{
    struct cluster_state s;
    struct ring *ring = (struct ring *)&s; /* must come back NULL */
    char why[256] = "";
    int rc = cluster_state_decode(text, len, &s, &ring, why, sizeof why);
    if (rc != -EINVAL || (want && !strstr(why, want)))
        fail_msg("decode gave %d (%s), wanted -EINVAL with \"%s\", for:\n%.*s", rc, why,
                 want ? want : "", (int)(len < 600 ? len : 600), text);
    assert_true(why[0] != '\0');
    assert_null(ring);
    assert_null(s.peers);
}

static void test_cluster_state_refuses_every_truncation(void **state)
{
    char *text = fixture_text();
    size_t len = strlen(text);
    for (size_t cut = 0; cut + 1 < len; cut++) /* all but the newline: a JSON document lost its end */
        expect_refused(text, cut, NULL);
    free(text);
}

/* One text mutation: the first `from` becomes `to`. */
static char *replace(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    if (!at)
        fail_msg("fixture lacks %s", from);
    size_t head = (size_t)(at - text), len = strlen(text) - strlen(from) + strlen(to);
    char *out = malloc(len + 1);
    assert_non_null(out);
    memcpy(out, text, head);
    sprintf(out + head, "%s%s", to, at + strlen(from));
    return out;
}

static void test_cluster_state_refuses_bad_text(void **state)
{
    char *text = fixture_text();
    char id0[64], id1[64];
    snprintf(id0, sizeof id0, "\"id\":\"%s\"", members[0].id);
    snprintf(id1, sizeof id1, "\"id\":\"%s\",\"address\"", members[1].id);
    char self_as_peer[128];
    snprintf(self_as_peer, sizeof self_as_peer, "\"id\":\"%s\",\"address\"", members[0].id);
    const struct {
        const char *from, *to, *want;
    } cases[] = {
        {"\"version\":1", "\"version\":2", "format version 2"},
        {"ringkv-cluster-state", "redis-nodes-conf", "not a ringkv cluster state"},
        {"\"incarnation\":9", "\"incarnation\":-1", "negative"},
        {"\"incarnation\":9", "\"incarnation\":9.5", NULL},
        {"\"incarnation\":9", "\"incarnation\":99999999999999999999999", "not JSON"},
        {"\"state\":\"up\"", "\"state\":\"dancing\"", "dancing"},
        {"\"leaving\"", "\"gone\"", "is not joining, up, leaving or left"},
        {"\"partitions\":64", "\"partitions\":48", "power of two"},
        {"\"partitions\":64", "\"partitions\":32", "one member index per partition"},
        {"\"epoch\":2", "\"epoch\":0", "epoch"},
        {"\"replicas\":3", "\"replicas\":5", "replicas"},
        {"\"hash\":\"", "\"hash\":\"0", "hash is not 16"},
        {"\"owners\":[", "\"owners\":[9,", "one member index per partition"},
        {"{\"format\"", "{\"extra\":1,\"format\"", NULL},
        {id0, "\"id\":\"x\",\"id\":\"y\"", "not JSON"}, /* a key twice */
        {id0, "\"id\":\"ABCDEF\"", "40 lowercase hex"},
        {"\"zone\":\"z1\"", "\"zone\":\"z\\u00001\"", "NUL"},
        {"\"weight\":100", "\"weight\":0", "weight"},
        {"\"weight\":100", "\"weight\":4294967296", "weight"},
        {id1, self_as_peer, "is this node"},
        {"\"cluster_address\":\"127.0.0.3:16379\"", "\"cluster_address\":\"\"", "address"},
        {"\"ring\":{", "\"ring\":{\"x\":1,", "ring:"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *bad = replace(text, cases[c].from, cases[c].to);
        expect_refused(bad, strlen(bad), cases[c].want);
        free(bad);
    }
    const char *junk[] = {"", "null", "[]", "{}", "\xff\xfe{", "{\"format\":\"ringkv-cluster-state\"}"};
    for (size_t c = 0; c < sizeof junk / sizeof junk[0]; c++)
        expect_refused(junk[c], strlen(junk[c]), NULL);
    size_t deep = 100000; /* nesting beyond the parser's depth limit */
    char *nest = malloc(2 * deep + 1);
    memset(nest, '[', deep);
    memset(nest + deep, ']', deep);
    nest[2 * deep] = '\0';
    expect_refused(nest, 2 * deep, "not JSON");
    free(nest);
    free(text);
}

/* Semantic damage the text table cannot reach simply, on the parsed document. */
static void refused_after(void (*edit)(json_t *doc), const char *want)
{
    char *text = fixture_text();
    json_t *doc = json_loads(text, 0, NULL);
    assert_non_null(doc);
    edit(doc);
    char *bad = json_dumps(doc, JSON_COMPACT);
    expect_refused(bad, strlen(bad), want);
    free(bad);
    json_decref(doc);
    free(text);
}

static json_t *ring_field(json_t *doc, const char *key)
{
    return json_object_get(json_object_get(doc, "ring"), key);
}

static void owner_out_of_range(json_t *doc)
{
    json_array_set_new(ring_field(doc, "owners"), 0, json_integer(4));
}

static void owner_not_integer(json_t *doc)
{
    json_array_set_new(ring_field(doc, "owners"), 3, json_string("0"));
}

static void owner_changed(json_t *doc) /* a valid index, but not what was hashed */
{
    json_t *owners = ring_field(doc, "owners");
    json_int_t first = json_integer_value(json_array_get(owners, 0));
    json_array_set_new(owners, 0, json_integer((first + 1) % 4));
}

static void member_twice(json_t *doc)
{
    json_t *m = ring_field(doc, "members");
    json_array_set(m, 1, json_array_get(m, 0));
}

static void peer_twice(json_t *doc)
{
    json_t *p = json_object_get(doc, "peers");
    json_array_set(p, 1, json_array_get(p, 0));
}

static void peers_not_array(json_t *doc)
{
    json_object_set_new(doc, "peers", json_object());
}

static void no_members(json_t *doc)
{
    json_array_clear(ring_field(doc, "members"));
}

static void test_cluster_state_refuses_inconsistent_documents(void **state)
{
    refused_after(owner_out_of_range, "not a member index");
    refused_after(owner_not_integer, "owner of partition 3");
    refused_after(owner_changed, "hash to");
    refused_after(member_twice, "cannot form a ring");
    refused_after(peer_twice, "listed twice");
    refused_after(no_members, "members must be");
    refused_after(peers_not_array, "peers must be");
}

/* Random damage: 1 to 4 bytes changed, thousands of times; decoding gives a
 * state or a refusal, never a crash (ASan builds check the memory). */
static void test_cluster_state_random_damage_never_crashes(void **state)
{
    char *text = fixture_text();
    size_t len = strlen(text);
    char *bad = malloc(len);
    uint64_t x = 0x243f6a8885a308d3ull;
    int accepted = 0;
    for (int round = 0; round < 4000; round++) {
        memcpy(bad, text, len);
        int flips = 1 + round % 4;
        for (int f = 0; f < flips; f++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            bad[(x >> 8) % len] = (char)(x & 0xff);
        }
        struct cluster_state s;
        struct ring *ring;
        char why[256];
        int rc = cluster_state_decode(bad, len, &s, &ring, why, sizeof why);
        assert_true(rc == 0 || rc == -EINVAL);
        if (rc == 0) {
            accepted++;
            assert_non_null(ring);
            cluster_state_fini(&s);
            ring_destroy(ring);
        }
    }
    printf("cluster_state: %d of 4000 damaged documents still decoded (a digit of a number, "
           "a letter of an address)\n", accepted);
    free(bad);
    free(text);
}

static void write_file(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_cluster_state_refuses_odd_files(void **state)
{
    char sub[128], path[160], why[256];
    struct cluster_state s;
    struct ring *ring;
    snprintf(sub, sizeof sub, "%s/odd", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(path, sizeof path, "%s/" CLUSTER_STATE_FILE, sub);
    assert_int_equal(mkdir(path, 0700), 0); /* a directory where the file should be */
    assert_int_equal(cluster_state_load(sub, &s, &ring, why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "not a regular file"));
    rmdir(path);
    int fd = open(path, O_WRONLY | O_CREAT, 0600); /* too large (sparse) */
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)CLUSTER_STATE_MAX_BYTES + 1), 0);
    close(fd);
    assert_int_equal(cluster_state_load(sub, &s, &ring, why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "more than"));
    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT, 0600); /* empty: a crash before any write */
    close(fd);
    assert_int_equal(cluster_state_load(sub, &s, &ring, why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "not JSON"));
    unlink(path);
    rmdir(sub);
}

static void test_cluster_state_replaces_atomically(void **state)
{
    char *a = fixture_text();
    assert_int_equal(cluster_state_write(dir, a), 0);
    /* a crash in the middle of the next write left a half temporary file */
    write_file(CLUSTER_STATE_FILE ".tmp", "{\"format\":\"ringkv-clu");
    struct cluster_state s;
    struct ring *ring;
    char why[256];
    assert_int_equal(cluster_state_load(dir, &s, &ring, why, sizeof why), 0);
    assert_int_equal(s.incarnation, 9);
    cluster_state_fini(&s);
    ring_destroy(ring);
    char *b = replace(a, "\"incarnation\":9", "\"incarnation\":10");
    assert_int_equal(cluster_state_write(dir, b), 0);
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s/" CLUSTER_STATE_FILE ".tmp", dir);
    assert_int_not_equal(access(tmp, F_OK), 0); /* renamed into place */
    assert_int_equal(cluster_state_load(dir, &s, &ring, why, sizeof why), 0);
    assert_int_equal(s.incarnation, 10);
    cluster_state_fini(&s);
    ring_destroy(ring);
    assert_int_equal(cluster_state_write("/nonexistent/ringkv", b), -ENOENT);
    free(a);
    free(b);
}

static struct member_table *table_of_node0(void)
{
    struct member_config mc;
    member_config_default(&mc);
    struct gossip_info self;
    peer_info(&self, 0);
    struct member_table *t;
    assert_int_equal(member_create(&mc, &self, 1000, &t), 0);
    assert_int_equal(member_set_state(t, self.id, MEMBER_UP, 1000), 0);
    return t;
}

/* What a restarted node does with a loaded state: the table comes back with
 * the same self and peers, and cluster_state_of() gives the same state. */
static void test_cluster_state_restores_into_the_membership(void **state)
{
    struct cluster_state s;
    struct cluster_state_peer peers[3];
    fixture(&s, peers);
    struct member_table *t = table_of_node0();
    assert_int_equal(cluster_state_restore(t, &s, 1000), 0);
    assert_int_equal(member_restore_peer(t, &peers[0].info, MEMBER_UP, 1, 1000), -EEXIST);
    struct gossip_info self_again = member_at(t, 0)->info;
    assert_int_equal(member_restore_peer(t, &self_again, MEMBER_UP, 1, 1000), -EEXIST);
    assert_int_equal(member_count(t), 4);
    const struct member *m = member_find(t, peers[2].info.id);
    assert_int_equal(m->incarnation, 0); /* anything real overrides it */
    assert_int_equal(m->state, MEMBER_LEAVING);
    assert_int_equal(member_status(m), MEMBER_S_DOWN); /* not heard from since */
    assert_int_equal(m->health, MEMBER_SUSPECT);
    assert_int_equal(member_at(t, 0)->incarnation, 9);
    assert_int_equal(member_set_self(t, &self_again, 1000), 0);
    assert_int_equal(member_at(t, 0)->incarnation, 10); /* past what peers held of us */
    /* a join asks the restored members (3: all of them) */
    const struct member_out *out;
    member_outbox_clear(t);
    member_join(t, 1000);
    uint32_t n_out = member_outbox(t, &out);
    assert_int_equal(n_out, 3);
    bool asked[3] = {false};
    for (uint32_t k = 0; k < n_out; k++) {
        assert_int_equal(out[k].type, GOSSIP_PUSH_PULL);
        for (int j = 0; j < 3; j++)
            asked[j] |= strcmp(out[k].to_addr, peers[j].info.cluster_addr) == 0;
    }
    assert_true(asked[0] && asked[1] && asked[2]);

    struct cluster_state again;
    assert_int_equal(cluster_state_of(t, &again), 0);
    assert_int_equal(again.state, MEMBER_UP);
    assert_int_equal(again.state_version, 2);
    assert_int_equal(again.incarnation, 10);
    assert_int_equal(again.n_peers, 3);
    assert_memory_equal(&again.peers[2].info, &peers[2].info, sizeof peers[2].info);
    cluster_state_fini(&again);

    /* A left peer is kept as a tombstone; a node that left keeps no peer at all. */
    assert_int_equal(member_set_state(t, peers[0].info.id, MEMBER_LEFT, 1000), 0);
    assert_int_equal(cluster_state_of(t, &again), 0);
    assert_int_equal(again.n_peers, 3);
    assert_int_equal(again.peers[0].state, MEMBER_LEFT);
    assert_int_equal(again.peers[0].state_version, 2);
    cluster_state_fini(&again);
    assert_int_equal(member_set_state(t, s.id, MEMBER_LEFT, 1000), 0);
    assert_int_equal(cluster_state_of(t, &again), 0);
    assert_int_equal(again.state, MEMBER_LEFT);
    assert_int_equal(again.n_peers, 0);
    cluster_state_fini(&again);
    member_destroy(t);
}

/* A node that left comes back alone, up at the next state_version. */
static void test_cluster_state_left_node_forgets_its_peers(void **state)
{
    struct cluster_state s;
    struct cluster_state_peer peers[3];
    fixture(&s, peers);
    s.state = MEMBER_LEFT;
    s.state_version = 4;
    struct member_table *t = table_of_node0();
    assert_int_equal(cluster_state_restore(t, &s, 1000), 0);
    assert_int_equal(member_count(t), 1);
    assert_int_equal(member_at(t, 0)->state, MEMBER_UP);
    assert_int_equal(member_at(t, 0)->state_version, 5);
    assert_int_equal(member_at(t, 0)->incarnation, 9);
    member_destroy(t);
}

/* A node that left and forgot its peers is saved with "left_cluster": true
 * (admin.c: started again with seeds, it joins them again), which a restore
 * keeps and being JOINING again clears; a document without it reads as
 * before, and one with it not a boolean is refused. */
static void test_cluster_state_keeps_that_the_node_left(void **state)
{
    struct cluster_state s, again;
    struct cluster_state_peer peers[3];
    struct ring *r = NULL;
    char why[256] = "";
    fixture(&s, peers);
    struct member_table *t = table_of_node0();
    assert_int_equal(cluster_state_restore(t, &s, 1000), 0);
    assert_false(member_has_left(t));
    member_forget(t, 1000);
    assert_true(member_has_left(t));
    assert_int_equal(cluster_state_of(t, &again), 0);
    assert_true(again.left_cluster);
    assert_int_equal(again.state, MEMBER_UP);
    assert_int_equal(again.n_peers, 0);
    char *text = cluster_state_encode(&again, ring2);
    assert_non_null(strstr(text, "\"left_cluster\":true"));
    cluster_state_fini(&again);
    assert_int_equal(cluster_state_decode(text, strlen(text), &again, &r, why, sizeof why), 0);
    assert_true(again.left_cluster);
    ring_destroy(r);
    struct member_table *t2 = table_of_node0();
    assert_int_equal(cluster_state_restore(t2, &again, 2000), 0);
    assert_true(member_has_left(t2));
    cluster_state_fini(&again);
    char *bad = replace(text, "\"left_cluster\":true", "\"left_cluster\":1");
    expect_refused(bad, strlen(bad), "true or false");
    free(bad);
    free(text);
    assert_int_equal(member_set_state(t2, s.id, MEMBER_JOINING, 2000), 0); /* joins again */
    assert_false(member_has_left(t2));
    assert_int_equal(cluster_state_of(t2, &again), 0);
    assert_false(again.left_cluster);
    text = cluster_state_encode(&again, ring2);
    assert_null(strstr(text, "left_cluster"));
    free(text);
    cluster_state_fini(&again);
    text = fixture_text(); /* written before the field: not left */
    assert_int_equal(cluster_state_decode(text, strlen(text), &again, &r, why, sizeof why), 0);
    assert_false(again.left_cluster);
    ring_destroy(r);
    cluster_state_fini(&again);
    free(text);
    member_destroy(t2);
    member_destroy(t);
}

static void test_cluster_state_check_refuses_another_node_or_q(void **state)
{
    struct cluster_state s;
    struct cluster_state_peer peers[3];
    fixture(&s, peers);
    char why[256] = "";
    assert_int_equal(cluster_state_check(&s, ring2, members[0].id, Q, why, sizeof why), 0);
    assert_int_equal(cluster_state_check(&s, ring2, members[1].id, Q, why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "this node is"));
    assert_int_equal(cluster_state_check(&s, ring2, members[0].id, Q * 2, why, sizeof why),
                     -EINVAL);
    assert_non_null(strstr(why, "set partitions 64"));
    s.n_peers = 0; /* alone: may take another Q */
    assert_int_equal(cluster_state_check(&s, ring2, members[0].id, Q * 2, why, sizeof why), 0);
    s.n_peers = 3;
    s.state = MEMBER_LEFT; /* left: its old cluster's Q no longer binds it */
    assert_int_equal(cluster_state_check(&s, ring2, members[0].id, Q * 2, why, sizeof why), 0);
}

static void test_cluster_state_save_writes_changes_only(void **state)
{
    char sub[128];
    snprintf(sub, sizeof sub, "%s/save", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    struct member_table *t = table_of_node0();
    struct gossip_info p;
    peer_info(&p, 1);
    assert_int_equal(member_restore_peer(t, &p, MEMBER_UP, 1, 1000), 0);
    struct cluster_state_file off = {0};
    assert_int_equal(cluster_state_save(&off, t, ring2), 0); /* not kept: nothing written */
    struct cluster_state_file f = {.dir = sub};
    assert_int_equal(cluster_state_save(&f, t, ring2), 1);
    assert_int_equal(cluster_state_save(&f, t, ring2), 0);
    assert_int_equal(member_set_state(t, p.id, MEMBER_LEAVING, 1000), 0);
    assert_int_equal(cluster_state_save(&f, t, ring2), 1);
    struct cluster_state s;
    struct ring *ring;
    char why[256];
    assert_int_equal(cluster_state_load(sub, &s, &ring, why, sizeof why), 0);
    assert_int_equal(s.n_peers, 1);
    assert_int_equal(s.peers[0].state, MEMBER_LEAVING);
    assert_int_equal(ring->hash, ring2->hash);
    cluster_state_fini(&s);
    ring_destroy(ring);
    struct cluster_state_file gone = {.dir = "/nonexistent/ringkv"};
    assert_int_equal(cluster_state_save(&gone, t, ring2), -ENOENT);
    assert_int_equal(gone.last_error, -ENOENT);
    assert_int_equal(cluster_state_save(&gone, t, ring2), -ENOENT); /* tried again */
    member_destroy(t);
    char path[160];
    snprintf(path, sizeof path, "%s/" CLUSTER_STATE_FILE, sub);
    unlink(path);
    rmdir(sub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cluster_state_round_trip_keeps_everything),
        cmocka_unit_test(test_cluster_state_missing_file_is_enoent),
        cmocka_unit_test(test_cluster_state_refuses_every_truncation),
        cmocka_unit_test(test_cluster_state_refuses_bad_text),
        cmocka_unit_test(test_cluster_state_refuses_inconsistent_documents),
        cmocka_unit_test(test_cluster_state_random_damage_never_crashes),
        cmocka_unit_test(test_cluster_state_refuses_odd_files),
        cmocka_unit_test(test_cluster_state_replaces_atomically),
        cmocka_unit_test(test_cluster_state_restores_into_the_membership),
        cmocka_unit_test(test_cluster_state_keeps_that_the_node_left),
        cmocka_unit_test(test_cluster_state_left_node_forgets_its_peers),
        cmocka_unit_test(test_cluster_state_check_refuses_another_node_or_q),
        cmocka_unit_test(test_cluster_state_save_writes_changes_only),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
