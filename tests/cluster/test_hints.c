/* test_hints: sloppy quorum and durable hinted handoff (shards/hints.h)
 * with real nodes on 127.0.0.x.
 * - test_hints_standin_survives_crash_and_delivers: 4 nodes, N = 3. The keys
 *   of one hash tag have the preference list {C, A, X}; the fourth node S is
 *   their stand-in. X is killed (-9); once C sees it down, SETs at C with
 *   W = 3 (CONSISTENCY) are acknowledged: C, A and S's ack for X. S holds
 *   them as hints only (its store has no key; /metrics shows the backlog
 *   for X). S is killed (-9), a torn record is appended to each of its hint
 *   files, and S is restarted: the hints are recovered from its hint log
 *   (INFO ringkv_hints_pending) and each file is cut back to its size. X is restarted with nothing
 *   stored (storage = memory); it comes to hold every write (read at X with
 *   CONSISTENCY R 1, its own store only), and S's backlog for X goes to 0 in
 *   /metrics and at GET /v1/nodes (before, all three and INFO show it); then
 *   S's hint files are deleted or empty (reclaimed).
 * - test_hints_late_replica_gets_a_standin: a replica SIGSTOPped, not yet
 *   seen down: a W = 3 SET is acknowledged within request-timeout through a
 *   stand-in (its SYNC unanswered for a quarter of the time), and once
 *   thawed the replica gets the write from the stand-in.
 * - test_hints_bounds: with hint-max-bytes below a hint's size the stand-in
 *   refuses it (INFO ringkv_hints_refused): a W = 3 write gets -UNAVAILABLE,
 *   a W = 2 one is acknowledged, and no hint is kept.
 * - test_hints_refused_hint_waits_for_the_late_replica: a late replica's
 *   stand-in refuses the hint at once; the write waits for the replica and
 *   is acknowledged once it is thawed.
 * - test_hints_expire_after_tombstone_grace: a hint older than
 *   tombstone-grace when its owner is back is dropped (INFO
 *   ringkv_hints_expired), and the owner does not get that write from it.
 * - test_hints_expire_while_the_owner_is_down: a hint for an owner that
 *   never comes back expires after tombstone-grace all the same.
 * - test_hints_go_to_the_replicas_of_now: the hint's owner is removed from
 *   the ring while down: the stand-in, a replica of the key now, applies
 *   the hint and sends it to the other replicas, then forgets it.
 * - test_hints_write_failure: a stand-in that cannot write its hint log
 *   answers an error (ringkv_hints_write_errors): a W = 3 write that needs
 *   it gets -UNAVAILABLE.
 * - test_hints_unreadable_file_is_kept: a hint file recovery cannot load
 *   is kept, never deleted as delivered.
 * - test_hints_file_with_unloaded_records_is_kept: records past the 64
 *   target slots are not loaded; their file is kept until a start-up that
 *   loads them.
 * - test_hints_sparse_file_is_compacted: an old hint file holding few live
 *   records is compacted into a new one and deleted.
 * Without sloppy quorum the W = 3 SETs get -UNAVAILABLE (2 of 3 live; in the
 * second test at the deadline, also without the late-replica path); with
 * hints kept only in memory the restart of S loses them and X never gets
 * the writes. Every wait is on a condition with a deadline; nodes are
 * stopped by PID (cluster_finish). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <errno.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "buf.h"
#include "cluster_harness.h"
#include "hints.h"

#define FORM_MS 20000
#define KEYS 50
#define TAG "{hint}"
/* request-timeout: no case measures it (the late-replica case checks only
 * that its write is acknowledged before it), and a stand-in's first hint
 * pays for creating its hint file (two directory fsyncs and an fdatasync),
 * so it is long enough for a machine shared with other tests. */
#define REQUEST_TIMEOUT_MS 8000
#define STR_(x) #x
#define STR(x) STR_(x)

#define CLIENT_TIMEOUT_MS (REQUEST_TIMEOUT_MS + 4000)

static const char *const FLAGS[] = {"--request-timeout", STR(REQUEST_TIMEOUT_MS), NULL};

/* The reply as text: "+status", "-error", "$string"; anything else "?".
 * Caller frees. */
static char *run(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    char *text = NULL;
    int kind = !r                               ? '?'
               : r->type == REDIS_REPLY_STATUS ? '+'
               : r->type == REDIS_REPLY_ERROR  ? '-'
               : r->type == REDIS_REPLY_STRING ? '$'
                                               : '?';
    assert_true(asprintf(&text, "%c%.*s", kind, kind == '?' ? 0 : (int)r->len,
                         kind == '?' ? "" : r->str) > 0);
    freeReplyObject(r);
    return text;
}

/* Starts n nodes with FLAGS and, when name is not NULL, `name value`. */
static void start_cluster(int n, const char *name, const char *value)
{
    const char *flags[] = {FLAGS[0], FLAGS[1], name, value, NULL};
    assert_int_equal(cluster_start(0, flags), 0);
    const char *seeded[] = {FLAGS[0], FLAGS[1], "--seeds", cluster_seed(0), name, value, NULL};
    for (int i = 1; i < n; i++)
        assert_int_equal(cluster_start(i, seeded), 0);
    assert_true(cluster_wait(cluster_formed, &n, FORM_MS));
}

/* Restarts node i (same directory: the same node) seeded at node via. */
static void restart(int i, int via)
{
    const char *seeded[] = {FLAGS[0], FLAGS[1], "--seeds", cluster_seed(via), NULL};
    assert_int_equal(cluster_start(i, seeded), 0);
}

static int node_of(const char *id, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(cluster_node(i)->id, id) == 0)
            return i;
    fail_msg("no node has id %s", id);
    return -1;
}

/* The preference list of TAG's partition as node indexes; *standin: the
 * node of the 4 outside it. */
static void tag_list(int list[3], int *standin)
{
    redisReply *slot = cluster_redis_command(0, "CLUSTER KEYSLOT %s", TAG);
    assert_non_null(slot);
    assert_int_equal(slot->type, REDIS_REPLY_INTEGER);
    json_t *ring = cluster_get(0, "/v1/ring");
    assert_non_null(ring);
    json_int_t q = json_integer_value(json_object_get(ring, "partitions"));
    assert_true(q > 0);
    json_t *owners = json_array_get(json_object_get(ring, "owners"), (size_t)(slot->integer /
                                                                              (16384 / q)));
    assert_int_equal(json_array_size(owners), 3);
    bool in[4] = {false};
    for (int k = 0; k < 3; k++) {
        list[k] = node_of(json_string_value(json_array_get(owners, (size_t)k)), 4);
        in[list[k]] = true;
    }
    for (int i = 0; i < 4; i++)
        if (!in[i])
            *standin = i;
    freeReplyObject(slot);
    json_decref(ring);
}

struct seen_down {
    int viewer, node;
};

static bool sees_down(void *arg)
{
    const struct seen_down *x = arg;
    const char *st = cluster_status_of(x->viewer, cluster_node(x->node)->id);
    return st && strcmp(st, "down") == 0;
}

static bool sees_up(void *arg)
{
    const struct seen_down *x = arg;
    const char *st = cluster_status_of(x->viewer, cluster_node(x->node)->id);
    return st && strcmp(st, "up") == 0;
}

struct write_at {
    redisContext *c;
    const char *key, *value;
};

static bool write_acked(void *arg)
{
    const struct write_at *w = arg;
    char *got = run(w->c, "SET %s %s", w->key, w->value);
    bool ok = strcmp(got, "+OK") == 0;
    if (!ok)
        print_message("SET %s: %s\n", w->key, got);
    free(got);
    return ok;
}

/* node i's hint backlog for the node `target` in /metrics (-1: no answer).
 * A target whose backlog reached 0 has its sample printed until the
 * stand-in's next tick frees its slot, then none: both read as 0. */
static double backlog(int i, int target, const char *family)
{
    char *text = cluster_get_text(i, "/metrics");
    if (!text)
        return -1;
    char sample[128];
    snprintf(sample, sizeof sample, "%s{target=\"%s\"}", family, cluster_node(target)->id);
    double v = cluster_metric(text, sample);
    free(text);
    return v < 0 ? 0 : v;
}

struct owner_holds {
    int node;
};

/* Every key reads back at the node from its own store (R 1). */
static bool owner_holds_all(void *arg)
{
    const struct owner_holds *x = arg;
    redisContext *c = cluster_connect(x->node, 2000);
    if (!c)
        return false;
    char *got = run(c, "CONSISTENCY R 1");
    bool ok = strcmp(got, "+OK") == 0;
    free(got);
    for (int k = 0; ok && k < KEYS; k++) {
        char want[32];
        snprintf(want, sizeof want, "$v%d", k);
        got = run(c, "GET " TAG "k%d", k);
        ok = strcmp(got, want) == 0;
        free(got);
    }
    redisFree(c);
    return ok;
}

struct local_is {
    int node;
    const char *key, *want;
};

/* node's own store (R 1) answers GET key with want. */
static bool local_is(void *arg)
{
    const struct local_is *x = arg;
    redisContext *c = cluster_connect(x->node, 2000);
    if (!c)
        return false;
    char *a = run(c, "CONSISTENCY R 1"), *b = run(c, "GET %s", x->key);
    bool ok = strcmp(a, "+OK") == 0 && strcmp(b, x->want) == 0;
    free(a);
    free(b);
    redisFree(c);
    return ok;
}

struct backlog_is {
    int node, target;
    double want;
};

static bool backlog_is(void *arg)
{
    const struct backlog_is *x = arg;
    return backlog(x->node, x->target, "ringkv_hints_pending_bytes") == x->want &&
           backlog(x->node, x->target, "ringkv_hints_pending") == x->want;
}

/* A field of node i's INFO; asks again (for up to 10 s) while the node does
 * not answer, so that a slow answer is not read as a value; -1 when it never
 * answers or has no such field. */
static long long info_field(int i, const char *name)
{
    char *info = NULL;
    for (int64_t until = cluster_now_ms() + 10000; !info && cluster_now_ms() < until;)
        if (!(info = cluster_ask(i, "INFO")))
            usleep(50 * 1000);
    long long v = info ? cluster_info_field(info, name) : -1;
    free(info);
    return v;
}

/* GET /v1/nodes at node i: the hints_pending of the node `target`. */
static long long nodes_hints(int i, int target)
{
    json_t *o = cluster_get(i, "/v1/nodes");
    json_t *list = json_object_get(o, "nodes");
    long long v = -1;
    for (size_t k = 0; k < json_array_size(list); k++) {
        json_t *nd = json_array_get(list, k);
        if (strcmp(json_string_value(json_object_get(nd, "id")), cluster_node(target)->id) == 0)
            v = json_integer_value(json_object_get(nd, "hints_pending"));
    }
    json_decref(o);
    return v;
}

/* Whether node i's hint files hold nothing (each gone or of length 0). */
static bool hint_files_empty(void *arg)
{
    char dir[256], path[600];
    snprintf(dir, sizeof dir, "%s/hints", cluster_dir(*(const int *)arg));
    DIR *d = opendir(dir);
    if (!d)
        return true;
    bool empty = true;
    struct dirent *e;
    struct stat st;
    while (empty && (e = readdir(d))) {
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        empty = e->d_name[0] == '.' || (stat(path, &st) == 0 && st.st_size == 0);
    }
    closedir(d);
    return empty;
}

/* Whether node c's shards see a node down (CLUSTER INFO answers from a
 * shard's view, which follows the admin thread's). */
static bool shard_sees_one_down(void *arg)
{
    char *info = cluster_ask(*(const int *)arg, "CLUSTER INFO");
    long long down = info ? cluster_info_field(info, "ringkv_nodes_down") : -1;
    free(info);
    return down >= 1;
}

/* Kills node x (-9) and waits until node c, and its shards, see it down. */
static void kill_and_see_down(int c, int x)
{
    cluster_signal(x, SIGKILL);
    struct seen_down down = {c, x};
    assert_true(cluster_wait(sees_down, &down, 20000));
    assert_true(cluster_wait(shard_sees_one_down, &c, 20000));
}

/* 4 nodes formed (with `name value`, see start_cluster); TAG's coordinator (the first of its list), the replica
 * the test takes away (the last) and the stand-in. */
static void four_nodes(int *c, int *x, int *s, const char *name, const char *value)
{
    start_cluster(4, name, value);
    int list[3];
    tag_list(list, s);
    *c = list[0];
    *x = list[2];
    print_message("coordinator %d, replica taken away %d, other replica %d, stand-in %d\n", *c,
                  *x, list[1], *s);
}

/* Node i's hint files and their sizes. */
struct hint_files {
    int n;
    char path[8][512];
    long long size[8];
};

/* Lists node i's hint files into f and appends a torn record (the first
 * 30 bytes of a record that claims 200) to each. */
static void hint_files_tear(int i, struct hint_files *f)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s/hints", cluster_dir(i));
    DIR *d = opendir(dir);
    assert_non_null(d);
    f->n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && f->n < 8) {
        if (!strstr(e->d_name, ".log"))
            continue;
        snprintf(f->path[f->n], sizeof f->path[f->n], "%s/%s", dir, e->d_name);
        struct stat st;
        assert_int_equal(stat(f->path[f->n], &st), 0);
        f->size[f->n] = st.st_size;
        FILE *out = fopen(f->path[f->n], "ab");
        assert_non_null(out);
        unsigned char torn[30] = {1, 2, 3, 4, 5, 6, 7, 8, 200};
        assert_int_equal(fwrite(torn, 1, sizeof torn, out), sizeof torn);
        fclose(out);
        f->n++;
    }
    closedir(d);
    assert_true(f->n > 0);
}

/* Each file is back to its size before the tear. */
static void hint_files_check(int i, const struct hint_files *f)
{
    (void)i;
    for (int k = 0; k < f->n; k++) {
        struct stat st;
        assert_int_equal(stat(f->path[k], &st), 0);
        assert_int_equal(st.st_size, f->size[k]);
    }
}

static void test_hints_standin_survives_crash_and_delivers(void **state)
{
    (void)state;
    int c, x, s;
    four_nodes(&c, &x, &s, NULL, NULL);

    kill_and_see_down(c, x);

    redisContext *cc = cluster_connect(c, CLIENT_TIMEOUT_MS);
    assert_non_null(cc);
    char *got = run(cc, "CONSISTENCY W 3");
    assert_string_equal(got, "+OK");
    free(got);
    struct write_at first = {cc, TAG "k0", "v0"};
    assert_true(cluster_wait(write_acked, &first, 3 * REQUEST_TIMEOUT_MS)); /* C's shards see X down */
    for (int k = 1; k < KEYS; k++) {
        got = run(cc, "SET " TAG "k%d v%d", k, k);
        if (strcmp(got, "+OK") != 0)
            fail_msg("SET k%d with W 3 and X down: %s", k, got);
        free(got);
    }
    redisFree(cc);

    /* S keeps them as hints only, not in its store. A first SET that timed
     * out at C and was tried again left S a hint all the same: count what S
     * took. */
    long long taken = info_field(s, "ringkv_hints_taken");
    assert_true(taken >= KEYS);
    assert_int_equal(info_field(s, "ringkv_hints_pending"), taken);
    assert_true(backlog(s, x, "ringkv_hints_pending_bytes") > 0);
    assert_int_equal(nodes_hints(s, x), taken);
    char *info = cluster_ask(s, "INFO"), want[96];
    snprintf(want, sizeof want, ":id=%s,hints=%lld,", cluster_node(x)->id, taken);
    assert_non_null(info);
    assert_non_null(strstr(info, want)); /* INFO's line for that target */
    free(info);
    json_t *stats = cluster_get(s, "/v1/stats");
    assert_int_equal(json_integer_value(json_object_get(stats, "keys")), 0);
    json_decref(stats);

    /* kill -9 the stand-in: its hints come back from its hint log, and a
     * torn record at a file's end (a write cut short) is cut off */
    cluster_signal(s, SIGKILL);
    struct hint_files before;
    hint_files_tear(s, &before);
    restart(s, c);
    assert_int_equal(info_field(s, "ringkv_hints_recovered"), taken);
    assert_int_equal(info_field(s, "ringkv_hints_pending"), taken);
    hint_files_check(s, &before);

    /* the owner comes back with nothing stored; the hints fill it */
    restart(x, c);
    struct seen_down up = {s, x};
    assert_true(cluster_wait(sees_up, &up, 20000));
    struct owner_holds holds = {x};
    assert_true(cluster_wait(owner_holds_all, &holds, 30000));
    struct backlog_is empty = {s, x, 0};
    assert_true(cluster_wait(backlog_is, &empty, 10000));
    assert_int_equal(nodes_hints(s, x), 0);
    assert_int_equal(info_field(s, "ringkv_hints_delivered"), taken);
    assert_true(cluster_wait(hint_files_empty, &s, 5000)); /* delivered files reclaimed */
}

/* A replica frozen (SIGSTOP) and not yet seen down: a W = 3 write gets a
 * stand-in for it once a quarter of its time passed without its ack, and
 * is acknowledged before request-timeout; thawed, the replica gets the
 * write from the stand-in. */
/* four_nodes(), then a connection to c at W = 3 that has written once
 * (every link made). */
static redisContext *w3_warm(int *c, int *x, int *s, const char *name, const char *value)
{
    four_nodes(c, x, s, name, value);
    redisContext *cc = cluster_connect(*c, CLIENT_TIMEOUT_MS);
    assert_non_null(cc);
    char *got = run(cc, "CONSISTENCY W 3");
    assert_string_equal(got, "+OK");
    free(got);
    struct write_at warm = {cc, TAG "warm", "w"};
    assert_true(cluster_wait(write_acked, &warm, 3 * REQUEST_TIMEOUT_MS));
    return cc;
}

static bool refused_one(void *arg)
{
    return info_field(*(const int *)arg, "ringkv_hints_refused") >= 1;
}

static void test_hints_late_replica_gets_a_standin(void **state)
{
    (void)state;
    int c, x, s;
    redisContext *cc = w3_warm(&c, &x, &s, NULL, NULL);
    char *got;

    cluster_signal(x, SIGSTOP);
    int64_t t0 = cluster_now_ms();
    got = run(cc, "SET " TAG "late v-late");
    int64_t ms = cluster_now_ms() - t0;
    const char *st = cluster_status_of(c, cluster_node(x)->id);
    print_message("W 3 with a frozen replica: %s in %lld ms (it is %s at the coordinator)\n",
                  got, (long long)ms, st ? st : "?");
    assert_string_equal(got, "+OK");
    assert_true(ms < REQUEST_TIMEOUT_MS);
    free(got);
    redisFree(cc);
    assert_true(info_field(s, "ringkv_hints_taken") >= 1);

    cluster_signal(x, SIGCONT);
    struct backlog_is empty = {s, x, 0};
    assert_true(cluster_wait(backlog_is, &empty, 20000));
    struct local_is held = {x, TAG "late", "$v-late"};
    assert_true(cluster_wait(local_is, &held, 5000));
}

/* A late replica whose stand-in refuses the hint at once (hint-max-bytes
 * 1): the write waits for the replica, which answers once thawed within
 * request-timeout, and is acknowledged. (When the HINT's answer took the
 * replica's wire slot, the refusal failed the write at a quarter of the
 * time.) */
static void test_hints_refused_hint_waits_for_the_late_replica(void **state)
{
    (void)state;
    int c, x, s;
    redisContext *cc = w3_warm(&c, &x, &s, "--hint-max-bytes", "1");

    cluster_signal(x, SIGSTOP);
    assert_int_equal(redisAppendCommand(cc, "SET " TAG "late v-late"), REDIS_OK);
    assert_int_equal(redisBufferWrite(cc, &(int){0}), REDIS_OK);
    /* the stand-in is asked at a quarter of request-timeout (2 s) and
     * refuses: wait for that, then thaw the replica */
    long long refused = 0;
    assert_true(cluster_wait(refused_one, &s, REQUEST_TIMEOUT_MS / 2));
    refused = info_field(s, "ringkv_hints_refused");
    cluster_signal(x, SIGCONT);
    redisReply *r = NULL;
    assert_int_equal(redisGetReply(cc, (void **)&r), REDIS_OK);
    assert_non_null(r);
    print_message("W 3, replica late, stand-in refusing (%lld): %.*s\n", refused,
                  (int)r->len, r->str);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    assert_string_equal(r->str, "OK");
    freeReplyObject(r);
    redisFree(cc);
}

/* The bounds: a stand-in whose hint-max-bytes is smaller than a hint
 * refuses it, so a write that needs it gets -UNAVAILABLE (and a write that
 * does not is acknowledged without a hint kept). */
static void test_hints_bounds(void **state)
{
    (void)state;
    int c, x, s;
    four_nodes(&c, &x, &s, "--hint-max-bytes", "1");
    kill_and_see_down(c, x);
    redisContext *cc = cluster_connect(c, CLIENT_TIMEOUT_MS);
    assert_non_null(cc);
    char *got = run(cc, "SET " TAG "w2 v");
    assert_string_equal(got, "+OK"); /* W = 2: C and A */
    free(got);
    got = run(cc, "CONSISTENCY W 3");
    free(got);
    got = run(cc, "SET " TAG "w3 v");
    assert_true(strncmp(got, "-UNAVAILABLE", 12) == 0);
    free(got);
    redisFree(cc);
    assert_true(info_field(s, "ringkv_hints_refused") >= 2);
    assert_int_equal(info_field(s, "ringkv_hints_pending"), 0);
}

static bool time_passed(void *arg)
{
    return cluster_now_ms() >= *(const int64_t *)arg;
}

static bool expired_one(void *arg)
{
    int s = *(const int *)arg;
    return info_field(s, "ringkv_hints_expired") == 1 && info_field(s, "ringkv_hints_pending") == 0;
}

/* 4 nodes (with tombstone-grace `grace` s unless NULL); the replica x
 * killed; `set` at W = 3 through coordinator c is acknowledged: stand-in s
 * holds one hint for x. */
static void one_hint_for_a_dead_owner(int *c, int *x, int *s, const char *grace, const char *set)
{
    four_nodes(c, x, s, grace ? "--tombstone-grace" : NULL, grace);
    kill_and_see_down(*c, *x);
    redisContext *cc = cluster_connect(*c, CLIENT_TIMEOUT_MS);
    assert_non_null(cc);
    char *got = run(cc, "CONSISTENCY W 3");
    free(got);
    got = run(cc, set);
    assert_string_equal(got, "+OK");
    free(got);
    redisFree(cc);
}

/* A hint older than tombstone-grace (1 s here) when its owner is back is
 * dropped, not delivered: the owner never gets that write from it. */
static void test_hints_expire_after_tombstone_grace(void **state)
{
    (void)state;
    int c, x, s;
    one_hint_for_a_dead_owner(&c, &x, &s, "1", "SET " TAG "old v-old");
    int64_t later = cluster_now_ms() + 1500; /* past the grace */
    assert_true(cluster_wait(time_passed, &later, 3000));
    restart(x, c);
    assert_true(cluster_wait(expired_one, &s, 20000));
    assert_int_equal(info_field(s, "ringkv_hints_delivered"), 0);
    struct local_is gone = {x, TAG "old", "?"}; /* nil: never delivered */
    assert_true(local_is(&gone));
}

struct redirected {
    int s;
    struct local_is at_s;
};

static bool hint_redirected(void *arg)
{
    const struct redirected *r = arg;
    return info_field(r->s, "ringkv_hints_redirected") >= 1 &&
           info_field(r->s, "ringkv_hints_pending") == 0 && local_is((void *)&r->at_s);
}

/* The owner of a hint is removed from the ring while down (DELETE
 * /v1/nodes/{id}): it will never be a replica of the key again, so the
 * stand-in, now one of the key's 3 replicas itself, applies the hint's
 * state and sends it to the others as a SYNC, then forgets it. */
static void test_hints_go_to_the_replicas_of_now(void **state)
{
    (void)state;
    int c, x, s;
    one_hint_for_a_dead_owner(&c, &x, &s, NULL, "SET " TAG "moved v-moved");
    assert_int_equal(info_field(s, "ringkv_hints_pending"), 1);
    char path[128];
    snprintf(path, sizeof path, "/v1/nodes/%s", cluster_node(x)->id);
    int status = 0;
    json_t *o = cluster_request(c, "DELETE", path, "", &status);
    json_decref(o);
    assert_int_equal(status, 202);
    struct redirected r = {s, {s, TAG "moved", "$v-moved"}};
    assert_true(cluster_wait(hint_redirected, &r, 20000));
}

/* The stand-in cannot write its hint log (<dir>/hints is a regular file):
 * it answers the HINT with an error, counted in ringkv_hints_write_errors,
 * and a W = 3 write that needs it gets -UNAVAILABLE. */
static void test_hints_write_failure(void **state)
{
    (void)state;
    int c, x, s;
    four_nodes(&c, &x, &s, NULL, NULL);
    cluster_stop(s);
    char path[256];
    snprintf(path, sizeof path, "%s/hints", cluster_dir(s));
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    restart(s, c);
    struct seen_down back = {c, s};
    assert_true(cluster_wait(sees_up, &back, 20000));
    kill_and_see_down(c, x);
    redisContext *cc = cluster_connect(c, CLIENT_TIMEOUT_MS);
    assert_non_null(cc);
    char *got = run(cc, "CONSISTENCY W 3");
    free(got);
    got = run(cc, "SET " TAG "nowhere v");
    print_message("W 3 with the stand-in's hint log unwritable: %s\n", got);
    assert_true(strncmp(got, "-UNAVAILABLE", 12) == 0);
    free(got);
    redisFree(cc);
    assert_true(info_field(s, "ringkv_hints_write_errors") > 0);
    assert_int_equal(info_field(s, "ringkv_hints_pending"), 0);
}

/* A hint whose owner never comes back expires all the same once older than
 * tombstone-grace (1 s here): the backlog empties while the owner is down,
 * and the stand-in's hint files are gone or empty. */
static void test_hints_expire_while_the_owner_is_down(void **state)
{
    (void)state;
    int c, x, s;
    one_hint_for_a_dead_owner(&c, &x, &s, "1", "SET " TAG "never v-never");
    assert_int_equal(info_field(s, "ringkv_hints_taken"), 1);
    assert_true(cluster_wait(expired_one, &s, 10000));
    assert_int_equal(nodes_hints(s, x), 0);
    assert_true(cluster_wait(hint_files_empty, &s, 5000));
}

/* Node 0 made (started with flags and stopped) and its hints directory:
 * path gets the name of its shard 0's first hint file, for the test to
 * write before node 0 starts again. */
static void first_hint_file(const char *const *flags, char *path, size_t len)
{
    assert_int_equal(cluster_start(0, flags), 0);
    cluster_stop(0);
    snprintf(path, len, "%s/hints", cluster_dir(0));
    assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
    snprintf(path, len, "%s/hints/0-0000000000000001.log", cluster_dir(0));
}

struct file_gone {
    char path[256];
};

static bool file_gone(void *arg)
{
    struct stat st;
    return stat(((const struct file_gone *)arg)->path, &st) != 0;
}

/* A hint file that recovery cannot load (here: too large to be one:
 * a sparse 2 GiB file) holds hints this run does not know of: it is
 * kept (INFO ringkv_hints_unloaded), not deleted as "all delivered". */
static void test_hints_unreadable_file_is_kept(void **state)
{
    (void)state;
    struct file_gone f;
    first_hint_file(FLAGS, f.path, sizeof f.path);
    FILE *fp = fopen(f.path, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(truncate(f.path, (off_t)1 << 31), 0);
    assert_int_equal(cluster_start(0, FLAGS), 0);
    assert_int_equal(info_field(0, "ringkv_hints_unloaded"), 1);
    /* many ticks (100 ms each) and reclaim passes: the file stays */
    assert_false(cluster_wait(file_gone, &f, 1500));
    unlink(f.path);
}

static bool expired_64(void *arg)
{
    int i = *(const int *)arg;
    return info_field(i, "ringkv_hints_expired") == 64 && info_field(i, "ringkv_hints_pending") == 0;
}

/* A hint file with records for 65 targets (one more than a shard's slots),
 * 2 s old: with tombstone-grace 10 s recovery loads 64 and counts one as
 * not loaded (ringkv_hints_unloaded). Once the 64 expire, the file is
 * still kept: it holds the 65th. At a start-up with tombstone-grace 1 s
 * every record is too old: none is loaded, and the file goes. */
static void test_hints_file_with_unloaded_records_is_kept(void **state)
{
    (void)state;
    const char *const grace[] = {"--tombstone-grace", "10", NULL};
    const char *const short_grace[] = {"--tombstone-grace", "1", NULL};
    struct file_gone f;
    first_hint_file(grace, f.path, sizeof f.path);
    struct buf b;
    buf_init(&b);
    for (int t = 0; t < HINT_TARGETS_MAX + 1; t++) {
        struct hint_record r = {.partition = 1,
                                .time_ms = (uint64_t)time(NULL) * 1000 - 2000, /* 2 s */
                                .key = {(const uint8_t *)"k", 1},
                                .body = {(const uint8_t *)"v", 1}};
        snprintf(r.target, sizeof r.target, "%040x", t + 1);
        assert_int_equal(hint_encode(&b, &r), 0);
    }
    FILE *fp = fopen(f.path, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(b.data, 1, b.len, fp), b.len);
    fclose(fp);
    buf_fini(&b);
    assert_int_equal(cluster_start(0, grace), 0);
    assert_int_equal(info_field(0, "ringkv_hints_recovered"), HINT_TARGETS_MAX);
    assert_int_equal(info_field(0, "ringkv_hints_unloaded"), 1);
    int node = 0;
    assert_true(cluster_wait(expired_64, &node, 20000));
    assert_false(cluster_wait(file_gone, &f, 500)); /* five reclaim passes */
    cluster_stop(0);
    assert_int_equal(cluster_start(0, short_grace), 0);
    assert_int_equal(info_field(0, "ringkv_hints_unloaded"), 0);
    assert_int_equal(info_field(0, "ringkv_hints_expired"), HINT_TARGETS_MAX + 1);
    assert_true(cluster_wait(file_gone, &f, 5000));
}

/* Bytes of node i's hint files. */
static long long hint_files_bytes(int i)
{
    char dir[256], path[600];
    snprintf(dir, sizeof dir, "%s/hints", cluster_dir(i));
    DIR *d = opendir(dir);
    long long total = 0;
    struct dirent *e;
    struct stat st;
    while (d && (e = readdir(d))) {
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (e->d_name[0] != '.' && stat(path, &st) == 0)
            total += st.st_size;
    }
    if (d)
        closedir(d);
    return total;
}

struct compacted {
    int node;
    struct file_gone old;
};

static bool compacted_one(void *arg)
{
    const struct compacted *c = arg;
    return info_field(c->node, "ringkv_hints_compacted") == 1 && file_gone((void *)&c->old);
}

/* A sparse old hint file (two hints 17 MiB apart, what lies between not
 * records) is compacted: its hints are copied into a new file and it is
 * deleted, so the disk holds about what is pending. */
static void test_hints_sparse_file_is_compacted(void **state)
{
    (void)state;
    struct compacted c = {0};
    first_hint_file(FLAGS, c.old.path, sizeof c.old.path);
    struct buf b;
    buf_init(&b);
    struct hint_record r = {.partition = 1,
                            .time_ms = (uint64_t)time(NULL) * 1000,
                            .key = {(const uint8_t *)"k", 1},
                            .meta = {(const uint8_t *)"m", 1},
                            .body = {(const uint8_t *)"v", 1}};
    memcpy(r.target, "00112233445566778899aabbccddeeff00112233", WIRE_ID_HEX + 1);
    assert_int_equal(hint_encode(&b, &r), 0);
    size_t one = b.len;
    FILE *fp = fopen(c.old.path, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(b.data, 1, one, fp), one);
    assert_int_equal(fseek(fp, (long)(17u << 20), SEEK_CUR), 0); /* zeros: no record */
    assert_int_equal(fwrite(b.data, 1, one, fp), one);
    fclose(fp);
    buf_fini(&b);
    assert_int_equal(cluster_start(0, FLAGS), 0);
    assert_int_equal(info_field(0, "ringkv_hints_recovered"), 2);
    assert_true(cluster_wait(compacted_one, &c, 5000));
    assert_int_equal(info_field(0, "ringkv_hints_pending"), 2);
    assert_true(hint_files_bytes(0) == (long long)(2 * one));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_hints_standin_survives_crash_and_delivers,
                                  cluster_forget_all),
        cmocka_unit_test_teardown(test_hints_late_replica_gets_a_standin, cluster_forget_all),
        cmocka_unit_test_teardown(test_hints_bounds, cluster_forget_all),
        cmocka_unit_test_teardown(test_hints_refused_hint_waits_for_the_late_replica,
                                  cluster_forget_all),
        cmocka_unit_test_teardown(test_hints_expire_after_tombstone_grace, cluster_forget_all),
        cmocka_unit_test_teardown(test_hints_expire_while_the_owner_is_down,
                                  cluster_forget_all),
        cmocka_unit_test_teardown(test_hints_go_to_the_replicas_of_now, cluster_forget_all),
        cmocka_unit_test_teardown(test_hints_write_failure, cluster_forget_all),
        cmocka_unit_test_teardown(test_hints_unreadable_file_is_kept, cluster_forget_all),
        cmocka_unit_test_teardown(test_hints_sparse_file_is_compacted, cluster_forget_all),
        cmocka_unit_test_teardown(test_hints_file_with_unloaded_records_is_kept,
                                  cluster_forget_all),
    };
    if (getenv("HINTS_ONLY")) /* a pattern: run only the tests it names */
        cmocka_set_test_filter(getenv("HINTS_ONLY"));
    return cluster_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
