/* cluster_harness.h: real ringkv processes ($RINGKV_BIN) forming a cluster,
 * node i on its own loopback address 127.0.0.(i + 2) (Linux answers the whole
 * of 127/8), all on the same ports: client port P, admin port P + 1000,
 * cluster port P + 10000, with P picked free on every address at the first
 * start. Each node runs with storage = memory and its own directory (which
 * keeps its node id, so a restart is the same node), its output in a file
 * that cluster_finish() prints when a test failed. Nodes are stopped by PID
 * (SIGTERM, then SIGKILL past a deadline), die with the test process
 * (PR_SET_PDEATHSIG) and are stopped at exit.
 * The admin API is read with a blocking HTTP/1.0 client with a 2 s timeout.
 * Threads: the cmocka thread only.
 * Errors: functions return NULL / false / a negative errno and print why. */
#ifndef RINGKV_TESTS_CLUSTER_HARNESS_H
#define RINGKV_TESTS_CLUSTER_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#define CLUSTER_NODES_MAX 5

struct cluster_node {
    char host[16]; /* 127.0.0.(index + 2) */
    pid_t pid;     /* 0 when not running */
    char id[41];   /* its node id, once cluster_wait_serving() read it */
};

/* Starts node i (0 .. CLUSTER_NODES_MAX - 1) with the extra flags (NULL-
 * terminated; may be NULL) and waits until its /v1/health answers 200
 * (10 s), filling in its id. 0 or a negative errno. */
int cluster_start(int i, const char *const *flags);
/* SIGTERM, then SIGKILL after 10 s; reaps. Safe on a stopped node. */
void cluster_stop(int i);
/* Sends sig (SIGKILL: also reaps the process). */
void cluster_signal(int i, int sig);
struct cluster_node *cluster_node(int i);

/* "127.0.0.2:<cluster port>": the seed address of node i. */
const char *cluster_seed(int i);

/* GET path from node i's admin API: the parsed JSON body of a 200 answer,
 * or NULL (no answer, another status, not JSON). Free with json_decref. */
json_t *cluster_get(int i, const char *path);

/* Node `viewer`'s status of the node with this id ("up", "down", ...), or
 * NULL when the viewer does not list it or does not answer. Static buffer. */
const char *cluster_status_of(int viewer, const char *id);

/* Polls cond(arg) every 50 ms until true or timeout_ms passed; true if it held. */
bool cluster_wait(bool (*cond)(void *arg), void *arg, int timeout_ms);

int64_t cluster_now_ms(void);

/* Stops every node, prints their logs when failures > 0, removes the scratch
 * directory; returns failures. */
int cluster_finish(int failures);

/* A cluster_wait() condition; arg points to an int n: nodes 0 .. n - 1 each
 * list n members, all up, and report a ring of n members with the same hash. */
bool cluster_formed(void *arg);
/* A cluster_wait() condition; arg points to an int n: the shards of nodes
 * 0 .. n - 1 (CLUSTER INFO) serve with their admin's ring and see n nodes up
 * (views follow the admin thread's ring a loop turn or more later). */
bool cluster_views_agree(void *arg);
/* cluster_wait condition (arg: int *n): none of nodes 0 .. n - 1 pulls a
 * partition any more (GET /v1/ring: none pending or streaming, every shard
 * on the ring's epoch). */
bool cluster_pulls_done(void *arg);
/* Prints what nodes 0 .. n - 1 see (each member's status, the ring's epoch,
 * hash and members), for a test that waited in vain for them to agree. */
void cluster_print_views(int n);

/* The client port (P) every node listens on, once a node was started. */
int cluster_client_port(void);

/* Removes node i's directory (stopped first): its next start is a new node,
 * with a new id and no saved cluster state. 0 or -EIO. */
int cluster_forget(int i);

/* method path (with body, "" for none) to node i's admin API: *status gets
 * the HTTP status (0 when no answer came); returns the parsed JSON body, or
 * NULL. Free with json_decref. */
json_t *cluster_request(int i, const char *method, const char *path, const char *body,
                        int *status);

/* "127.0.0.(i + 2)": node i's address (also when it is not running). */
const char *cluster_host(int i);

/* A cmocka teardown: forgets every node (cluster_forget()), so that the next
 * test starts new nodes, not ones that restore the cluster this test made. */
int cluster_forget_all(void **state);

/* The reply text of a Redis command (CLUSTER INFO, CLUSTER MYID, INFO
 * cluster) on node i's client port, or NULL when it gives none or an error
 * (printed). Caller frees. */
char *cluster_ask(int i, const char *command);
/* The value of "name:" in an INFO-style text, as a number; -1 if absent. */
long long cluster_info_field(const char *text, const char *name);
/* Whether an INFO-style text has this whole line ("cluster_state:ok"). */
bool cluster_info_has(const char *text, const char *line);

/* A hiredis connection to node i's client port with a 10 s timeout (the
 * test fails when it cannot connect). Free with redisFree. */
struct redisContext;
struct redisContext *cluster_redis(int i);

/* A Redis command (hiredis's redisCommand format) on node i's client port,
 * on a connection of its own (2 s timeout): the reply, any type (free with
 * freeReplyObject), or NULL when none came (printed). */
struct redisReply;
struct redisReply *cluster_redis_command(int i, const char *format, ...);

/* ---- Replicated keys (issue 11: test_versions, test_model) ---- */

/* The node a cluster-aware connection (one that sent READONLY) is sent to
 * for key by its -MOVED (a GET); -1 when its node serves the key; -2 when
 * no reply came or the MOVED names no node of the harness (printed). */
int cluster_moved_to(struct redisContext *ro, const char *key);

/* Starts nodes 0 .. n - 1 (1 .. n - 1 seeded at node 0), each with the extra
 * flags (NULL-terminated; may be NULL), and waits until they form one
 * cluster (15 s), each one's shard serves that ring with n members up
 * (CLUSTER INFO, 5 s), and none pulls a partition any more (20 s: the
 * joiners' pulls of the empty partitions would also carry the test's
 * first writes). 0, or a negative errno (printed). */
int cluster_start_formed(int n, const char *const *flags);
/* cluster_start_formed() with every node's memcache port on too, at a port
 * free on each node's address (cluster_free_port), given in *mc_port, then
 * flags (at most 16). 0, or a negative errno (printed). */
int cluster_start_formed_mc(int n, const char *const *flags, int *mc_port);

/* A hiredis client of node i's client port whose replies are awaited at most
 * timeout_ms; NULL (printed) when it cannot connect. Free with redisFree. */
struct redisContext *cluster_connect(int i, int timeout_ms);

/* Node i stopped, its stored data removed (the shard-* directories and the
 * ringkv.meta manifest) but its identity (node-id) and saved cluster state
 * kept: its next start is the same node with nothing stored, Riak's KV-679
 * case. 0 or -EIO. */
int cluster_wipe_data(int i);

/* Node i on its own: every other running node frozen (SIGSTOP), fn(arg)
 * run (it asks node i with R 1, which then only i can answer), and the
 * others thawed only once hold_ms (a request-timeout and a margin) passed
 * since the freeze, so that their answers to requests node i made meanwhile
 * come after those requests ended and cannot repair it. Returns once no
 * node counts more nodes down than before (CLUSTER INFO ringkv_nodes_down:
 * a frozen node, thawed, may suspect others for a while), 10 s at most. */
void cluster_alone(int i, int hold_ms, void (*fn)(void *arg), void *arg);

/* One RING.GET answer: the causal context (opaque bytes) and the siblings.
 * Every pointer borrows from reply, which the struct owns. */
struct cluster_versions {
    struct redisReply *reply;
    const char *ctx; /* NULL unless the answer had that shape */
    size_t ctx_len;
    struct redisReply **values; /* bulk strings */
    size_t nvalues;
};

/* RING.GET key, with `R r` when r > 0, on client c (any thread with a
 * client of its own: this and the two functions after it keep no state).
 * 0: *out holds the answer; -EPROTO: any other reply (an error, another
 * shape), kept in out->reply; -EIO: no reply (c->errstr says why;
 * out->reply NULL). Call cluster_versions_free() in every case. */
int cluster_ring_get(struct redisContext *c, const char *key, int r, struct cluster_versions *out);
void cluster_versions_free(struct cluster_versions *v);
/* Whether value is one of v's siblings. */
bool cluster_versions_has(const struct cluster_versions *v, const char *value);
/* "[a, b] (context of N bytes)", or the error text: for messages. Static buffer. */
const char *cluster_versions_text(const struct cluster_versions *v);

/* A TCP port free on the addresses of nodes 0 .. n - 1 (for a second
 * listener, e.g. --memcache-port), or -1 (printed). */
int cluster_free_port(int n);

/* One memcached text request to node i's memcache port `port` and its reply
 * up to `until` ("\r\n", "END\r\n"), read with a 10 s timeout; NULL when
 * it cannot connect (printed). Caller frees. */
char *cluster_mc_ask(int i, int port, const char *req, const char *until);

/* GET path from node i's admin API as text (/metrics): the body of a 200
 * answer, or NULL. Caller frees. */
char *cluster_get_text(int i, const char *path);
/* The value of the Prometheus sample `sample` (name and labels, as written:
 * ringkv_hints_pending{target="..."}) in text; -1 when absent. */
double cluster_metric(const char *text, const char *sample);

/* Node i's data directory (it need not be running). Static buffer. */
const char *cluster_dir(int i);
/* The value of "name:" in node i's INFO section (e.g. "stats"), as a
 * number; -1 when it does not answer or has no such field. */
long long cluster_info_stat(int i, const char *section, const char *name);

#endif
