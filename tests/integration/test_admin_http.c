/* test_admin_http.c: the admin HTTP API of one real node (admin/admin.c,
 * admin/http.c), over a plain socket: every endpoint's status and JSON shape
 * (parsed with jansson), its errors (400, 404, 405 with Allow, 409, 501),
 * requirepass (401 with WWW-Authenticate, then Bearer and Basic), /metrics
 * as Prometheus text, and the node id kept across a restart with the same
 * data directory. ringkv only (skipped under the redis target). */
#include "harness.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#define Q 64 /* partitions: owners stay short */

/* One HTTP answer. */
struct http_answer {
    int status;
    char head[4096]; /* status line and headers */
    char *body;      /* NUL-terminated, malloc'd */
};

static int admin_port(const struct harness_server *s)
{
    return s->port + 1000 <= 65535 ? s->port + 1000 : s->port - 1000; /* admin-port -1 */
}

/* Sends one request (Connection: close) and reads the whole answer. */
static void http_at(const char *file, int line, int port, const char *method, const char *path,
                    const char *extra_headers, const char *body, struct http_answer *a)
{
    memset(a, 0, sizeof *a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = HARNESS_TIMEOUT_MS / 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        _fail(file, line);
    char req[8192];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n%s\r\n%s",
                     method, path, body ? strlen(body) : 0, extra_headers ? extra_headers : "",
                     body ? body : "");
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
        _fail(file, line);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (len == cap)
            buf = realloc(buf, (cap *= 2) + 1);
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            print_error("%s %s: no answer: %s\n", method, path, strerror(errno));
            _fail(file, line);
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (!end || sscanf(buf, "HTTP/1.1 %d", &a->status) != 1) {
        print_error("%s %s: not HTTP: %s\n", method, path, buf);
        _fail(file, line);
    }
    size_t head_len = (size_t)(end - buf);
    if (head_len >= sizeof a->head)
        head_len = sizeof a->head - 1;
    memcpy(a->head, buf, head_len);
    a->body = strdup(end + 4);
    free(buf);
}
#define http(port, method, path, headers, body, a)                                                 \
    http_at(__FILE__, __LINE__, (port), (method), (path), (headers), (body), (a))

/* Requests and expects a status and a JSON body; returns the document. */
static json_t *json_at(const char *file, int line, int port, const char *method, const char *path,
                       const char *headers, const char *body, int want_status)
{
    struct http_answer a;
    http_at(file, line, port, method, path, headers, body, &a);
    if (a.status != want_status) {
        print_error("%s %s: wanted HTTP %d, got %d: %s\n", method, path, want_status, a.status,
                    a.body);
        _fail(file, line);
    }
    if (!strstr(a.head, "Content-Type: application/json")) {
        print_error("%s %s: not JSON: %s\n", method, path, a.head);
        _fail(file, line);
    }
    json_error_t err;
    json_t *doc = json_loads(a.body, 0, &err);
    if (!doc) {
        print_error("%s %s: bad JSON (%s): %s\n", method, path, err.text, a.body);
        _fail(file, line);
    }
    free(a.body);
    return doc;
}
#define get_json(port, path, want) json_at(__FILE__, __LINE__, (port), "GET", (path), NULL, NULL, (want))

/* Expects {"error": "..."} with this status. */
static void expect_error_at(const char *file, int line, int port, const char *method,
                            const char *path, const char *headers, const char *body, int status)
{
    json_t *doc = json_at(file, line, port, method, path, headers, body, status);
    if (!json_is_string(json_object_get(doc, "error"))) {
        print_error("%s %s: no error string\n", method, path);
        _fail(file, line);
    }
    json_decref(doc);
}
#define expect_error(port, method, path, headers, body, status)                                     \
    expect_error_at(__FILE__, __LINE__, (port), (method), (path), (headers), (body), (status))

/* True once GET /v1/health answers 200: the RESP port accepts (the harness's
 * sign of a started node) before the shards serve, and health says 503
 * "starting" until then. */
static bool serving(void *arg)
{
    struct http_answer a;
    http(*(int *)arg, "GET", "/v1/health", "Authorization: Bearer s3cret\r\n", NULL, &a);
    free(a.body);
    return a.status == 200;
}

static void start(struct harness_server *s, const char *const *extra)
{
    const char *args[16] = {"--partitions", "64"};
    int n = 2;
    for (; extra && *extra; extra++)
        args[n++] = *extra;
    args[n] = NULL;
    struct harness_opts o = {.threads = 2, .args = args};
    assert_int_equal(harness_start(s, &o), 0);
    int port = admin_port(s);
    assert_true(harness_wait_until(serving, &port, HARNESS_TIMEOUT_MS, 10));
}

static bool is_id(const char *s)
{
    if (!s || strlen(s) != 40)
        return false;
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s) || isupper((unsigned char)*s))
            return false;
    return true;
}

static const char *str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static json_int_t num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static void check_node(json_t *node, const struct harness_server *s)
{
    char addr[64];
    assert_true(is_id(str(node, "id")));
    snprintf(addr, sizeof addr, "127.0.0.1:%d", s->port);
    assert_string_equal(str(node, "address"), addr);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", admin_port(s));
    assert_string_equal(str(node, "admin_address"), addr);
    assert_true(strncmp(str(node, "cluster_address"), "127.0.0.1:", 10) == 0);
    assert_string_equal(str(node, "status"), "up");
    assert_int_equal(num(node, "weight"), 100);
    assert_string_equal(str(node, "zone"), "");
    assert_int_equal(num(node, "partitions"), Q);
}

static void test_admin_http_endpoints_answer_with_their_shape(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    start(&s, NULL);
    int port = admin_port(&s);

    json_t *health = get_json(port, "/v1/health", 200);
    assert_string_equal(str(health, "status"), "ok");
    char id[41];
    snprintf(id, sizeof id, "%s", str(health, "id"));
    assert_true(is_id(id));

    json_t *nodes = get_json(port, "/v1/nodes", 200);
    assert_int_equal(num(nodes, "epoch"), 1);
    json_t *list = json_object_get(nodes, "nodes");
    assert_int_equal(json_array_size(list), 1);
    check_node(json_array_get(list, 0), &s);
    assert_string_equal(str(json_array_get(list, 0), "id"), id);

    char path[128];
    snprintf(path, sizeof path, "/v1/nodes/%s", id);
    json_t *node = get_json(port, path, 200);
    check_node(node, &s);

    json_t *ring = get_json(port, "/v1/ring", 200);
    assert_int_equal(num(ring, "epoch"), 1);
    assert_int_equal(strlen(str(ring, "hash")), 16);
    assert_int_equal(num(ring, "partitions"), Q);
    assert_int_equal(num(ring, "replicas"), 1);
    json_t *owners = json_object_get(ring, "owners");
    assert_int_equal(json_array_size(owners), Q);
    for (size_t p = 0; p < Q; p++) {
        json_t *pref = json_array_get(owners, p);
        assert_int_equal(json_array_size(pref), 1);
        assert_string_equal(json_string_value(json_array_get(pref, 0)), id);
    }
    assert_true(json_is_array(json_object_get(ring, "pending_transfers")));
    assert_int_equal(json_array_size(json_object_get(ring, "pending_transfers")), 0);
    assert_true(json_is_object(json_object_get(ring, "balance")));

    redisContext *c = harness_connect(s.port);
    harness_expect(c, HARNESS_OK, "SET k v");
    json_t *stats = get_json(port, "/v1/stats", 200);
    assert_string_equal(str(stats, "id"), id);
    assert_true(num(stats, "total_commands_processed") >= 1);
    assert_int_equal(num(stats, "keys"), 1);
    assert_int_equal(num(stats, "connected_clients"), 1);
    assert_int_equal(num(stats, "nodes_up"), 1);
    assert_int_equal(num(stats, "partitions_owned"), Q);
    redisFree(c);

    json_decref(health);
    json_decref(nodes);
    json_decref(node);
    json_decref(ring);
    json_decref(stats);
    assert_int_equal(harness_stop(&s), 0);
}

static void test_admin_http_errors_have_their_status(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    start(&s, NULL);
    int port = admin_port(&s);
    json_t *health = get_json(port, "/v1/health", 200);
    char self[128];
    snprintf(self, sizeof self, "/v1/nodes/%s", str(health, "id"));

    expect_error(port, "GET", "/v1/nope", NULL, NULL, 404);
    expect_error(port, "POST", "/v1/nodes", NULL, "{\"address\": ", 400);       /* bad JSON */
    expect_error(port, "POST", "/v1/nodes", NULL, "[1, 2]", 400);               /* not an object */
    expect_error(port, "POST", "/v1/nodes", NULL, "{\"address\": 5}", 400);     /* wrong type */
    expect_error(port, "POST", "/v1/nodes", NULL, "{\"address\": \"nohost\"}", 400);
    expect_error(port, "POST", "/v1/nodes", NULL, "{\"address\": \"h:1\", \"x\": 1}", 400);
    expect_error(port, "GET", "/v1/nodes/0123456789abcdef0123456789abcdef01234567", NULL, NULL,
                 404);
    expect_error(port, "DELETE", "/v1/nodes/0123456789abcdef0123456789abcdef01234567", NULL,
                 NULL, 404);
    expect_error(port, "DELETE", "/v1/nodes/not-an-id", NULL, NULL, 400);
    expect_error(port, "DELETE", self, NULL, NULL, 409);            /* the last node */
    expect_error(port, "POST", "/v1/nodes", NULL, "{\"address\": \"name.example:16379\"}",
                 400); /* no DNS lookup on the admin thread */
    /* Adding a node: accepted (202); the node is contacted in the background. */
    json_t *added = json_at(__FILE__, __LINE__, port, "POST", "/v1/nodes", NULL,
                            "{\"address\": \"127.0.0.2:16379\"}", 202);
    assert_string_equal(str(added, "address"), "127.0.0.2:16379");
    assert_string_equal(str(added, "status"), "joining");
    json_decref(added);

    /* A body past the limit is refused when it is declared: the answer
     * comes without the client sending it (it used to wait for all of it). */
    {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct timeval tv = {.tv_sec = HARNESS_TIMEOUT_MS / 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        static const char head[] = "POST /v1/nodes HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                   "Content-Length: 100000000\r\n\r\n{";
        assert_int_equal(send(fd, head, sizeof head - 1, MSG_NOSIGNAL), sizeof head - 1);
        char got[4096];
        size_t len = 0;
        while (len < sizeof got - 1 && !memmem(got, len, "\r\n\r\n", 4)) {
            ssize_t r = recv(fd, got + len, sizeof got - 1 - len, 0);
            assert_true(r > 0); /* no answer within the timeout: it waited for the body */
            len += (size_t)r;
        }
        got[len] = '\0';
        assert_non_null(strstr(got, "HTTP/1.1 413"));
        assert_non_null(strstr(got, "Content-Type: application/json"));
        close(fd);
    }

    struct http_answer a;
    http(port, "PUT", "/v1/ring", NULL, NULL, &a);
    assert_int_equal(a.status, 405);
    assert_non_null(strstr(a.head, "\r\nAllow: GET"));
    free(a.body);
    http(port, "DELETE", "/v1/nodes", NULL, NULL, &a);
    assert_int_equal(a.status, 405);
    assert_non_null(strstr(a.head, "\r\nAllow: GET, HEAD, POST"));
    free(a.body);

    /* The plan of a join of a node not met yet (the default weight 100: its
     * own setting decides once contacted): it takes half the partitions, all
     * from this node, and nothing changes. A weight is the node's own
     * setting: a body that gives one is refused. */
    expect_error(port, "POST", "/v1/nodes?dry_run=1", NULL,
                 "{\"address\": \"127.0.0.2:16379\", \"weight\": 300}", 400);
    expect_error(port, "POST", "/v1/nodes?dry_run=maybe", NULL,
                 "{\"address\": \"127.0.0.2:16379\"}", 400);
    json_t *plan = json_at(__FILE__, __LINE__, port, "POST", "/v1/nodes?dry_run=1", NULL,
                           "{\"address\": \"127.0.0.2:16379\"}", 200);
    assert_true(json_is_true(json_object_get(plan, "dry_run")));
    assert_string_equal(str(plan, "action"), "join");
    assert_int_equal(num(plan, "moved"), Q / 2);
    json_t *moves = json_object_get(plan, "moves");
    assert_int_equal(json_array_size(moves), Q / 2);
    assert_string_equal(str(json_array_get(moves, 0), "from"), str(health, "id"));
    assert_string_equal(str(json_array_get(moves, 0), "to"), str(plan, "node"));
    assert_int_equal(num(plan, "epoch"), 2);
    json_t *ring = get_json(port, "/v1/ring", 200);
    assert_int_equal(num(ring, "epoch"), 1);
    json_decref(ring);
    json_decref(plan);
    json_decref(health);
    assert_int_equal(harness_stop(&s), 0);
}

/* Connections that send a byte of a request and wait (idle, or a slow
 * client's trickle) do not lock the API out: 300 of them, then a health
 * check answers at once. Before, the 129th connection waited for one of
 * them to close (idle timeout 30 s). */
static void test_admin_http_idle_connections_do_not_lock_it_out(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    start(&s, NULL);
    int port = admin_port(&s);
    enum { IDLE = 300 };
    int fds[IDLE];
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int i = 0; i < IDLE; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fds[i] >= 0);
        assert_int_equal(connect(fds[i], (struct sockaddr *)&sa, sizeof sa), 0);
        assert_int_equal(send(fds[i], "G", 1, MSG_NOSIGNAL), 1);
    }
    json_decref(get_json(port, "/v1/health", 200));
    for (int i = 0; i < IDLE; i++)
        close(fds[i]);
    assert_int_equal(harness_stop(&s), 0);
}

static void test_admin_http_requirepass_guards_every_request(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    const char *args[] = {"--requirepass", "s3cret", NULL};
    start(&s, args);
    int port = admin_port(&s);
    static const char *const paths[] = {"/v1/health", "/v1/nodes", "/v1/ring", "/v1/stats",
                                        "/metrics", "/v1/nope"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct http_answer a;
        http(port, "GET", paths[i], NULL, NULL, &a);
        assert_int_equal(a.status, 401);
        assert_non_null(strstr(a.head, "\r\nWWW-Authenticate: Basic"));
        free(a.body);
    }
    expect_error(port, "GET", "/v1/health", "Authorization: Bearer wrong\r\n", NULL, 401);
    expect_error(port, "GET", "/v1/health", "Authorization: Bearer s3cre\r\n", NULL, 401);
    /* Basic base64("any:wrong") */
    expect_error(port, "GET", "/v1/health", "Authorization: Basic YW55Ondyb25n\r\n", NULL, 401);
    json_decref(json_at(__FILE__, __LINE__, port, "GET", "/v1/health",
                        "Authorization: Bearer s3cret\r\n", NULL, 200));
    /* Basic base64("any:s3cret") */
    json_decref(json_at(__FILE__, __LINE__, port, "GET", "/v1/ring",
                        "Authorization: Basic YW55OnMzY3JldA==\r\n", NULL, 200));
    assert_int_equal(harness_stop(&s), 0);
}

/* Every line of a Prometheus text exposition (0.0.4) is a HELP, a TYPE or a
 * sample "name{labels} value"; every sample's name has HELP and TYPE first. */
static void test_admin_http_metrics_parse_as_prometheus_text(void **state)
{
    harness_skip_unless_ringkv();
    struct harness_server s;
    start(&s, NULL);
    redisContext *c = harness_connect(s.port);
    harness_expect(c, HARNESS_OK, "SET k v");
    struct http_answer a;
    http(admin_port(&s), "GET", "/metrics", NULL, NULL, &a);
    assert_int_equal(a.status, 200);
    assert_non_null(strstr(a.head, "Content-Type: text/plain; version=0.0.4"));
    regex_t sample, help, type;
    assert_int_equal(regcomp(&sample,
                             "^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"[^\"]*\""
                             "(,[a-zA-Z_][a-zA-Z0-9_]*=\"[^\"]*\")*\\})? "
                             "(-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?|NaN|[-+]Inf)$",
                             REG_EXTENDED),
                     0);
    assert_int_equal(regcomp(&help, "^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$", REG_EXTENDED), 0);
    assert_int_equal(
        regcomp(&type, "^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|untyped)$", REG_EXTENDED),
        0);
    char helped[128] = "", typed[128] = "";
    int samples = 0;
    bool commands = false, nodes_up = false, epoch = false, owned = false;
    for (char *line = strtok(a.body, "\n"); line; line = strtok(NULL, "\n")) {
        regmatch_t m[2];
        if (regexec(&help, line, 2, m, 0) == 0) {
            snprintf(helped, sizeof helped, "%.*s", (int)(m[1].rm_eo - m[1].rm_so),
                     line + m[1].rm_so);
            continue;
        }
        if (regexec(&type, line, 2, m, 0) == 0) {
            snprintf(typed, sizeof typed, "%.*s", (int)(m[1].rm_eo - m[1].rm_so),
                     line + m[1].rm_so);
            assert_string_equal(typed, helped);
            continue;
        }
        if (regexec(&sample, line, 2, m, 0) != 0) {
            print_error("not a Prometheus line: '%s'\n", line);
            fail();
        }
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(m[1].rm_eo - m[1].rm_so), line + m[1].rm_so);
        assert_string_equal(name, typed);
        assert_true(strncmp(name, "ringkv_", 7) == 0);
        samples++;
        commands |= strncmp(line, "ringkv_commands_processed_total ", 32) == 0 &&
                    atof(line + 32) >= 1;
        nodes_up |= strcmp(line, "ringkv_nodes{status=\"up\"} 1") == 0;
        epoch |= strcmp(line, "ringkv_ring_epoch 1") == 0;
        owned |= strcmp(line, "ringkv_partitions_owned 64") == 0;
    }
    assert_true(samples >= 20);
    assert_true(commands);
    assert_true(nodes_up);
    assert_true(epoch);
    assert_true(owned);
    regfree(&sample);
    regfree(&help);
    regfree(&type);
    free(a.body);
    redisFree(c);
    assert_int_equal(harness_stop(&s), 0);
}

/* admin-port 0 turns the API off: the node serves RESP and says nothing
 * about HTTP. */
static void test_admin_http_port_zero_turns_it_off(void **state)
{
    harness_skip_unless_ringkv();
    const char *args[] = {"--admin-port", "0", NULL};
    struct harness_opts o = {.threads = 1, .args = args};
    struct harness_server s;
    assert_int_equal(harness_start(&s, &o), 0);
    redisContext *c = harness_connect(s.port);
    harness_expect(c, HARNESS_STATUS("PONG"), "PING");
    redisFree(c);
    assert_true(harness_output_mentions(&s, "admin: node id"));
    assert_false(harness_output_mentions(&s, "HTTP API on"));
    assert_int_equal(harness_stop(&s), 0);
}

static char data_dir[64];

static int make_dir(void **state)
{
    return harness_temp_dir(data_dir, sizeof data_dir, "ringkv-admin");
}

static int remove_dir(void **state)
{
    return harness_remove_dir(data_dir);
}

/* The id is made once and kept in <dir>/node-id: a restart with the same
 * directory is the same node, with either storage. */
static void check_id_kept(const char *storage)
{
    const char *args[] = {"--dir", data_dir, "--storage", storage, NULL};
    struct harness_server s;
    char id[41];
    start(&s, args);
    json_t *health = get_json(admin_port(&s), "/v1/health", 200);
    snprintf(id, sizeof id, "%s", str(health, "id"));
    json_decref(health);
    assert_int_equal(harness_stop(&s), 0);

    char path[128], kept[64] = "";
    snprintf(path, sizeof path, "%s/node-id", data_dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(kept, sizeof kept, f));
    fclose(f);
    assert_string_equal(kept, strcat(strcpy((char[64]){0}, id), "\n"));

    start(&s, args);
    health = get_json(admin_port(&s), "/v1/health", 200);
    assert_string_equal(str(health, "id"), id);
    json_decref(health);
    assert_int_equal(harness_stop(&s), 0);
}

static void test_admin_http_node_id_survives_restart(void **state)
{
    harness_skip_unless_ringkv();
    check_id_kept("log");
}

static void test_admin_http_node_id_survives_restart_in_memory_mode(void **state)
{
    harness_skip_unless_ringkv();
    check_id_kept("memory");
}

/* A node-id file that holds no id stops start-up (a new id would make the
 * node a stranger to its cluster) with a line saying so. */
static void test_admin_http_damaged_node_id_stops_start(void **state)
{
    harness_skip_unless_ringkv();
    char path[128];
    snprintf(path, sizeof path, "%s/node-id", data_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("not an id\n", f);
    fclose(f);
    int port, spare;
    assert_int_equal(harness_free_ports(&port, &spare), 0);
    char cmd[512]; /* timeout(1) bounds a node that would start anyway: the test fails */
    snprintf(cmd, sizeof cmd,
             "timeout -s KILL 10 %s --port %d --memcache-port 0 --admin-port 0 --dir %s 2>&1",
             getenv("RINGKV_BIN"), port, data_dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[4096] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    assert_non_null(strstr(out, "node-id"));
    assert_non_null(strstr(out, "40-hex-digit"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_admin_http_endpoints_answer_with_their_shape),
        cmocka_unit_test(test_admin_http_errors_have_their_status),
        cmocka_unit_test(test_admin_http_idle_connections_do_not_lock_it_out),
        cmocka_unit_test(test_admin_http_requirepass_guards_every_request),
        cmocka_unit_test(test_admin_http_metrics_parse_as_prometheus_text),
        cmocka_unit_test(test_admin_http_port_zero_turns_it_off),
        cmocka_unit_test_setup_teardown(test_admin_http_node_id_survives_restart, make_dir,
                                        remove_dir),
        cmocka_unit_test_setup_teardown(test_admin_http_node_id_survives_restart_in_memory_mode,
                                        make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_admin_http_damaged_node_id_stops_start, make_dir,
                                        remove_dir),
    };
    return harness_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
