/* ringkv_admin.c: ringkv-admin, the admin API's command line (as nodetool
 * and riak-admin are theirs).
 *   ringkv-admin [--host HOST:PORT] [--password PASS] [--json] COMMAND
 *   status                  the members, one line each (GET /v1/nodes); a joiner
 *                           that waits for an operator (auto-join no) is WAITING
 *   ring                    the ring's epoch, hash, balance and shares (GET /v1/ring)
 *   transfers               this node's partition transfers: partitions by
 *                           state, bytes, rate, ETA, then each move of the last
 *                           ring change with its state here (GET /v1/ring)
 *   join ADDR [--dry-run]   (POST /v1/nodes) adds the node at cluster address
 *                           ADDR (202: it is contacted, admitted, then put in
 *                           the ring; its weight and zone are its own settings)
 *   leave ID [--dry-run]    (DELETE /v1/nodes/ID) decommissions node ID (40
 *                           lowercase hex digits, checked before asking)
 * It speaks HTTP/1.1 over a plain socket (one request, Connection: close)
 * and reads JSON with jansson. --json prints the server's answer as it is.
 * Exit: 0 when the server answered 2xx; 1 otherwise, with its JSON error on
 * standard error; 2 for a usage mistake. */
#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <jansson.h>

#define CLI_TIMEOUT_S 10
#define CLI_REPLY_MAX (64 << 20) /* the largest answer read: a ring of 16384 partitions
                                  with its transfers is a few MiB */

struct cli {
    const char *host; /* host:port */
    const char *password;
    bool json;
    bool dry_run;
};

struct cli_reply {
    int status;
    char *body; /* NUL-terminated, malloc'd */
};

static int cli_usage(void)
{
    fprintf(stderr,
            "usage: ringkv-admin [--host HOST:PORT] [--password PASS] [--json] COMMAND\n"
            "  status                  members and their state\n"
            "  ring                    the partition ring: epoch, hash, balance, shares\n"
            "  transfers               partitions moving to and from this node: progress\n"
            "  join ADDR [--dry-run]   add the node at ADDR (host:cluster-port); its weight\n"
            "                          and zone are its own settings\n"
            "  leave ID [--dry-run]    decommission node ID (40 lowercase hex digits)\n"
            "HOST:PORT is the node's admin address (default 127.0.0.1:7379).\n");
    return 2;
}

/* Connects to host:port (the last colon splits; [v6]:port is accepted). */
static int cli_connect(const char *hostport)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (!colon || (size_t)(colon - hostport) >= sizeof host) {
        fprintf(stderr, "ringkv-admin: --host must be host:port, got '%s'\n", hostport);
        return -1;
    }
    const char *h = hostport;
    size_t len = (size_t)(colon - hostport);
    if (len >= 2 && h[0] == '[' && h[len - 1] == ']') {
        h++;
        len -= 2;
    }
    memcpy(host, h, len);
    host[len] = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "ringkv-admin: %s: %s\n", hostport, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        struct timeval tv = {.tv_sec = CLI_TIMEOUT_S};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        fprintf(stderr, "ringkv-admin: cannot connect to %s: %s\n", hostport, strerror(errno));
    return fd;
}

static int cli_send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads the whole answer (the server closes after it), at most
 * CLI_REPLY_MAX bytes. */
static char *cli_read_all(int fd, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        if (n == cap && cap >= CLI_REPLY_MAX) {
            fprintf(stderr, "ringkv-admin: the answer passes %d MiB; not an admin API?\n",
                    CLI_REPLY_MAX >> 20);
            break;
        }
        if (n == cap) {
            char *grown = realloc(buf, cap * 2 + 1);
            if (!grown)
                break;
            buf = grown;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + n, cap - n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "ringkv-admin: reading the answer: %s\n", strerror(errno));
            break;
        }
        if (r == 0) {
            buf[n] = '\0';
            *len = n;
            return buf;
        }
        n += (size_t)r;
    }
    free(buf);
    return NULL;
}

/* One request; 0 with the reply, or -1 (said why). */
static int cli_request(const struct cli *cli, const char *method, const char *path,
                       const char *body, struct cli_reply *reply)
{
    int fd = cli_connect(cli->host);
    if (fd < 0)
        return -1;
    char head[2048];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
                     "Accept: application/json\r\nContent-Length: %zu\r\n%s%s%s%s\r\n",
                     method, path, cli->host, body ? strlen(body) : 0,
                     body ? "Content-Type: application/json\r\n" : "",
                     cli->password ? "Authorization: Bearer " : "",
                     cli->password ? cli->password : "", cli->password ? "\r\n" : "");
    size_t len = 0;
    char *raw = NULL;
    if (n > 0 && (size_t)n < sizeof head && cli_send_all(fd, head, (size_t)n) == 0 &&
        (!body || cli_send_all(fd, body, strlen(body)) == 0))
        raw = cli_read_all(fd, &len);
    close(fd);
    char *end = raw ? strstr(raw, "\r\n\r\n") : NULL;
    if (!raw || !end || sscanf(raw, "HTTP/1.%*d %d", &reply->status) != 1) {
        fprintf(stderr, "ringkv-admin: no HTTP answer from %s\n", cli->host);
        free(raw);
        return -1;
    }
    reply->body = strdup(end + 4);
    free(raw);
    return reply->body ? 0 : -1;
}

/* Prints a failed answer's error; returns 1. */
static int cli_fail(const struct cli_reply *r)
{
    fprintf(stderr, "ringkv-admin: HTTP %d: %s", r->status, r->body);
    if (!*r->body || r->body[strlen(r->body) - 1] != '\n')
        fputc('\n', stderr);
    return 1;
}

static const char *cli_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s && *s ? s : "-";
}

static void cli_print_status(json_t *doc)
{
    json_t *nodes = json_object_get(doc, "nodes");
    double total = 0;
    size_t i;
    json_t *node;
    json_array_foreach(nodes, i, node) total += (double)json_integer_value(json_object_get(node, "partitions"));
    printf("Ring epoch %lld, %zu node(s)\n", (long long)json_integer_value(json_object_get(doc, "epoch")),
           json_array_size(nodes));
    printf("%-8s %-22s %-40s %7s %-12s %10s %7s\n", "Status", "Address", "ID", "Weight", "Zone",
           "Partitions", "Owns");
    bool waiting = false;
    json_array_foreach(nodes, i, node)
    {
        char status[16];
        /* a joiner that waits for an operator (auto-join no) is WAITING */
        bool admitted = !json_is_false(json_object_get(node, "admitted"));
        snprintf(status, sizeof status, "%s", admitted ? cli_str(node, "status") : "waiting");
        waiting |= !admitted;
        for (char *c = status; *c; c++)
            *c = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
        json_int_t parts = json_integer_value(json_object_get(node, "partitions"));
        printf("%-8s %-22s %-40s %7lld %-12s %10lld %6.1f%%\n", status, cli_str(node, "address"),
               cli_str(node, "id"), (long long)json_integer_value(json_object_get(node, "weight")),
               cli_str(node, "zone"), (long long)parts, total ? 100.0 * (double)parts / total : 0.0);
    }
    if (waiting)
        printf("WAITING: joining, not admitted: `ringkv-admin join <its cluster address>` adds "
               "it\n");
}

/* The answer to a join or leave carried out (202): what happens now. */
static void cli_print_change(json_t *doc)
{
    const char *id = cli_str(doc, "id"), *status = cli_str(doc, "status");
    if (json_object_get(doc, "address"))
        printf("Node %s%s%s: %s (it gets its partitions once in the ring: see `status`)\n",
               cli_str(doc, "address"), strcmp(id, "-") ? " " : "", strcmp(id, "-") ? id : "",
               status);
    else
        printf("Node %s: %s (its partitions move to the others; then it is left)\n", id,
               status);
}

static void cli_print_balance(json_t *b)
{
    printf("Balance: max deviation %.2f partitions (%.1f%%), replica load %.3f to %.3f, "
           "%lld partition(s) whose next owners repeat a node or zone (lists reach further)\n",
           json_real_value(json_object_get(b, "owned_dev_max")),
           100.0 * json_real_value(json_object_get(b, "owned_dev_rel_max")),
           json_real_value(json_object_get(b, "replica_ratio_min")),
           json_real_value(json_object_get(b, "replica_ratio_max")),
           (long long)json_integer_value(json_object_get(b, "crowded")));
}

static void cli_print_ring(json_t *doc)
{
    printf("Ring epoch %lld, hash %s, %lld partitions, %lld replica(s), %zu pending transfer(s)\n",
           (long long)json_integer_value(json_object_get(doc, "epoch")), cli_str(doc, "hash"),
           (long long)json_integer_value(json_object_get(doc, "partitions")),
           (long long)json_integer_value(json_object_get(doc, "replicas")),
           json_array_size(json_object_get(doc, "pending_transfers")));
    cli_print_balance(json_object_get(doc, "balance"));
    printf("%-40s %7s %-12s %8s %8s\n", "ID", "Weight", "Zone", "Owned", "InLists");
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(doc, "members"), i, m)
    {
        printf("%-40s %7lld %-12s %8lld %8lld\n", cli_str(m, "id"),
               (long long)json_integer_value(json_object_get(m, "weight")), cli_str(m, "zone"),
               (long long)json_integer_value(json_object_get(m, "owned")),
               (long long)json_integer_value(json_object_get(m, "in_lists")));
    }
}

static long long cli_int(json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

static void cli_print_transfers(json_t *doc)
{
    json_t *t = json_object_get(doc, "transfers");
    long long eta = cli_int(t, "eta_seconds");
    printf("Ring epoch %lld. Pulling: %lld pending, %lld streaming, %lld done; %lld bytes "
           "(%lld keys) received, %lld bytes/s, ",
           cli_int(doc, "epoch"), cli_int(t, "partitions_pending"),
           cli_int(t, "partitions_streaming"), cli_int(t, "partitions_done"), cli_int(t, "bytes"),
           cli_int(t, "keys"), cli_int(t, "rate_bytes_per_sec"));
    if (eta < 0)
        printf("ETA unknown\n");
    else
        printf("ETA %lld s (%lld bytes left)\n", eta, cli_int(t, "remaining_bytes"));
    printf("Releasing: %lld partitions, %lld released, %lld keys dropped; %lld bytes (%lld keys) "
           "served\n",
           cli_int(t, "partitions_releasing"), cli_int(t, "partitions_released"),
           cli_int(t, "keys_dropped"), cli_int(t, "bytes_sent"), cli_int(t, "keys_sent"));
    printf("Handoff checks: %lld ended, %lld keys sent to the lists\n",
           cli_int(t, "handoff_checks"), cli_int(t, "handoff_keys_sent"));
    json_t *moves = json_object_get(doc, "pending_transfers");
    printf("%zu move(s) in the last ring change:\n", json_array_size(moves));
    printf("%9s %-40s %-40s %s\n", "Partition", "From", "To", "State");
    size_t i;
    json_t *mv;
    json_array_foreach(moves, i, mv)
    {
        printf("%9lld %-40s %-40s %s\n", cli_int(mv, "partition"), cli_str(mv, "from"),
               cli_str(mv, "to"), cli_str(mv, "state"));
    }
}

static void cli_print_plan(json_t *doc)
{
    printf("Plan (dry run): %s of %s -> ring epoch %lld, hash %s; %lld partition(s) move\n",
           cli_str(doc, "action"), cli_str(doc, "node"),
           (long long)json_integer_value(json_object_get(doc, "epoch")), cli_str(doc, "hash"),
           (long long)json_integer_value(json_object_get(doc, "moved")));
    const char *id;
    json_t *count;
    json_object_foreach(json_object_get(doc, "owned"), id, count)
    {
        long long out = 0, in = 0;
        size_t i;
        json_t *mv;
        json_array_foreach(json_object_get(doc, "moves"), i, mv)
        {
            out += strcmp(cli_str(mv, "from"), id) == 0;
            in += strcmp(cli_str(mv, "to"), id) == 0;
        }
        printf("  %s owns %lld after (+%lld -%lld)\n", id, (long long)json_integer_value(count),
               in, out);
    }
    cli_print_balance(json_object_get(doc, "balance"));
}

/* Runs a request and prints its answer with print (or as JSON). */
static int cli_run(const struct cli *cli, const char *method, const char *path, const char *body,
                   void (*print)(json_t *))
{
    struct cli_reply r = {0};
    if (cli_request(cli, method, path, body, &r) != 0)
        return 1;
    int rc = 0;
    if (r.status < 200 || r.status > 299) {
        rc = cli_fail(&r);
    } else if (cli->json) {
        fputs(r.body, stdout);
        fputc('\n', stdout);
    } else {
        json_t *doc = json_loads(r.body, 0, NULL);
        if (!doc) {
            fprintf(stderr, "ringkv-admin: the answer is not JSON\n");
            rc = 1;
        } else {
            print(doc);
            json_decref(doc);
        }
    }
    free(r.body);
    return rc;
}

static int cli_join(const struct cli *cli, int argc, char **argv)
{
    if (argc != 1)
        return cli_usage();
    json_t *body = json_pack("{s:s}", "address", argv[0]);
    if (!body)
        return 1;
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    int rc = cli_run(cli, "POST", cli->dry_run ? "/v1/nodes?dry_run=1" : "/v1/nodes", text,
                     cli->dry_run ? cli_print_plan : cli_print_change);
    free(text);
    return rc;
}

int main(int argc, char **argv)
{
    struct cli cli = {.host = "127.0.0.1:7379"};
    char *rest[16];
    int nrest = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            cli.json = true;
        else if (!strcmp(argv[i], "--dry-run"))
            cli.dry_run = true;
        else if (!strcmp(argv[i], "--host") && i + 1 < argc)
            cli.host = argv[++i];
        else if (!strcmp(argv[i], "--password") && i + 1 < argc)
            cli.password = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return cli_usage() - 2;
        else if (nrest < 16)
            rest[nrest++] = argv[i];
        else
            return cli_usage();
    }
    if (nrest == 0)
        return cli_usage();
    const char *colon = cli.host ? strrchr(cli.host, ':') : NULL;
    if (!colon || colon == cli.host || !colon[1]) { /* a usage mistake: exit 2 */
        fprintf(stderr, "ringkv-admin: --host must be host:port, got '%s'\n",
                cli.host ? cli.host : "");
        return 2;
    }
    if (!strcmp(rest[0], "status") && nrest == 1)
        return cli_run(&cli, "GET", "/v1/nodes", NULL, cli_print_status);
    if (!strcmp(rest[0], "ring") && nrest == 1)
        return cli_run(&cli, "GET", "/v1/ring", NULL, cli_print_ring);
    if (!strcmp(rest[0], "transfers") && nrest == 1)
        return cli_run(&cli, "GET", "/v1/ring", NULL, cli_print_transfers);
    if (!strcmp(rest[0], "join"))
        return cli_join(&cli, nrest - 1, rest + 1);
    if (!strcmp(rest[0], "leave") && nrest == 2) {
        if (strlen(rest[1]) != 40 || strspn(rest[1], "0123456789abcdef") != 40) {
            fprintf(stderr, "ringkv-admin: a node id is 40 lowercase hex digits, not %s\n",
                    rest[1]);
            return 2;
        }
        char path[256];
        snprintf(path, sizeof path, "/v1/nodes/%s%s", rest[1], cli.dry_run ? "?dry_run=1" : "");
        return cli_run(&cli, "DELETE", path, NULL, cli.dry_run ? cli_print_plan : cli_print_change);
    }
    return cli_usage();
}
