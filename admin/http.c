/* http.c: the admin HTTP server (see http.h).
 * libmicrohttpd runs in "external epoll" mode: it opens no thread; its
 * sockets sit in one epoll set that the admin thread polls, and MHD_run()
 * does whatever is ready without blocking. We make the listening socket
 * ourselves, so that a port in use is an errno the node can report.
 * A request arrives in several calls of http_access(): the first makes its
 * state (struct http_conn), the next ones hand over pieces of the body
 * (kept up to HTTP_BODY_MAX bytes, the rest dropped and answered 413), the
 * last one (no more body) is where we check the password, route, and call
 * the handler. The state is freed when libmicrohttpd says the request is
 * done (http_completed), whatever happened to it.
 * The route table and auth are plain functions of their inputs. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "secret.h"

#define HTTP_CONN_LIMIT 1024 /* connections at once: a few hundred idle or trickling
                                ones (a health checker's, a slow client's) must not
                                lock the API out (128 did) */
#define HTTP_IDLE_S 10       /* a connection silent this long is closed */

struct http_server {
    struct MHD_Daemon *daemon;
    const char *password;
    http_handler handler;
    void *arg;
};

/* One request's state while its body arrives. */
struct http_conn {
    char *body;
    size_t len;
    bool too_big;
};

enum http_route http_route(const char *path, char id[HTTP_ID_LEN + 1])
{
    static const struct {
        const char *path;
        enum http_route route;
    } fixed[] = {{"/v1/health", HTTP_HEALTH}, {"/v1/nodes", HTTP_NODES}, {"/v1/ring", HTTP_RING},
                 {"/v1/stats", HTTP_STATS},   {"/metrics", HTTP_METRICS}};
    id[0] = '\0';
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') /* a trailing slash names the same resource */
        len--;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strlen(fixed[i].path) == len && memcmp(fixed[i].path, path, len) == 0)
            return fixed[i].route;
    static const char nodes[] = "/v1/nodes/";
    size_t prefix = sizeof nodes - 1;
    if (len <= prefix || len - prefix > HTTP_ID_LEN || memcmp(path, nodes, prefix) != 0 ||
        memchr(path + prefix, '/', len - prefix))
        return HTTP_NOT_FOUND;
    memcpy(id, path + prefix, len - prefix);
    id[len - prefix] = '\0';
    return HTTP_NODE;
}

const char *http_allowed(enum http_route route)
{
    switch (route) {
    case HTTP_NODES:
        return "GET, HEAD, POST";
    case HTTP_NODE:
        return "GET, HEAD, DELETE";
    case HTTP_NOT_FOUND:
        return "";
    default:
        return "GET, HEAD";
    }
}

bool http_method_allowed(enum http_route route, enum http_method method)
{
    if (method == HTTP_GET)
        return route != HTTP_NOT_FOUND;
    if (method == HTTP_POST)
        return route == HTTP_NODES;
    if (method == HTTP_DELETE)
        return route == HTTP_NODE;
    return false;
}

enum http_method http_method_of(const char *method)
{
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
        return HTTP_GET;
    if (strcmp(method, "POST") == 0)
        return HTTP_POST;
    if (strcmp(method, "DELETE") == 0)
        return HTTP_DELETE;
    return HTTP_OTHER;
}

static int http_b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes base64 (padding optional) into out (cap bytes); the length, or -1. */
static long http_b64_decode(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (; *in && *in != '='; in++) {
        int v = http_b64_value(*in);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == cap)
                return -1;
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    return (long)n;
}

bool http_auth_ok(const char *authorization, const char *password)
{
    size_t pass_len = strlen(password);
    if (pass_len == 0)
        return true;
    if (!authorization)
        return false;
    if (strncasecmp(authorization, "Bearer ", 7) == 0) {
        const char *guess = authorization + 7;
        return secret_equal(password, pass_len, guess, strlen(guess));
    }
    if (strncasecmp(authorization, "Basic ", 6) != 0)
        return false;
    char decoded[1024];
    long n = http_b64_decode(authorization + 6, decoded, sizeof decoded);
    const char *colon = n > 0 ? memchr(decoded, ':', (size_t)n) : NULL;
    if (!colon)
        return false;
    const char *guess = colon + 1;
    return secret_equal(password, pass_len, guess, (size_t)(decoded + n - guess));
}

void http_error(struct http_response *res, unsigned status, const char *message)
{
    json_t *o = json_pack("{s:s}", "error", message);
    res->status = status;
    res->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    res->content_type = NULL;
    json_decref(o);
}

int http_flag(const char *value, bool *out)
{
    static const char *const yes[] = {"", "1", "true", "yes"}, *const no[] = {"0", "false", "no"};
    *out = false;
    if (!value)
        return 0;
    for (size_t k = 0; k < sizeof yes / sizeof yes[0]; k++)
        if (strcasecmp(value, yes[k]) == 0)
            return *out = true, 0;
    for (size_t k = 0; k < sizeof no / sizeof no[0]; k++)
        if (strcasecmp(value, no[k]) == 0)
            return 0;
    return -EINVAL;
}

/* ?dry_run's value into req->dry_run: "" when given without a value, NULL
 * when absent; -EINVAL for a value http_flag() does not know. */
static int http_dry_run(struct MHD_Connection *conn, struct http_request *req)
{
    const char *value = NULL;
    size_t len = 0;
    if (MHD_lookup_connection_value_n(conn, MHD_GET_ARGUMENT_KIND, "dry_run", sizeof "dry_run" - 1,
                                      &value, &len) == MHD_YES && !value)
        value = "";
    return http_flag(value, &req->dry_run);
}

static enum MHD_Result http_send(struct MHD_Connection *conn, struct http_response *res,
                                 enum http_route route)
{
    static const char oom[] = "{\"error\":\"out of memory\"}";
    struct MHD_Response *r =
        res->body ? MHD_create_response_from_buffer(strlen(res->body), res->body,
                                                    MHD_RESPMEM_MUST_FREE)
                  : MHD_create_response_from_buffer(sizeof oom - 1, (void *)oom,
                                                    MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(res->body);
        return MHD_NO;
    }
    unsigned status = res->body ? res->status : 500;
    MHD_add_response_header(r, "Content-Type",
                            res->content_type ? res->content_type : "application/json");
    if (status == 405)
        MHD_add_response_header(r, "Allow", http_allowed(route));
    if (status == 401)
        MHD_add_response_header(r, "WWW-Authenticate", "Basic realm=\"ringkv\", Bearer realm=\"ringkv\"");
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

/* The last call of a request: auth, routing, the handler. */
static enum MHD_Result http_finish(struct http_server *s, struct MHD_Connection *conn,
                                   const char *url, const char *method, struct http_conn *hc)
{
    struct http_request req = {.body = hc->body ? hc->body : "", .body_len = hc->len};
    struct http_response res = {0};
    req.route = http_route(url, req.id);
    req.method = http_method_of(method);
    int flag_rc = http_dry_run(conn, &req);
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!http_auth_ok(auth, s->password))
        http_error(&res, 401, "authentication required (Authorization: Bearer <requirepass>)");
    else if (req.route == HTTP_NOT_FOUND)
        http_error(&res, 404, "no such endpoint");
    else if (!http_method_allowed(req.route, req.method))
        http_error(&res, 405, "method not allowed");
    else if (hc->too_big)
        http_error(&res, 413, "request body too large");
    else if (flag_rc != 0)
        http_error(&res, 400, "dry_run must be given alone or as 1, true, yes, 0, false or no");
    else
        s->handler(s->arg, &req, &res);
    return http_send(conn, &res, req.route);
}

static enum MHD_Result http_access(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version,
                                   const char *upload_data, size_t *upload_data_size,
                                   void **con_cls)
{
    struct http_conn *hc = *con_cls;
    if (!hc) {
        hc = calloc(1, sizeof *hc);
        if (!hc)
            return MHD_NO;
        *con_cls = hc;
        /* A body declared past the limit is answered now, before the client
         * sends it (libmicrohttpd then closes the connection unread). */
        const char *declared =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (declared && strtoull(declared, NULL, 10) > HTTP_BODY_MAX) {
            hc->too_big = true;
            return http_finish(cls, conn, url, method, hc);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (hc->too_big || hc->len + n > HTTP_BODY_MAX) {
            hc->too_big = true;
            return MHD_YES;
        }
        char *grown = realloc(hc->body, hc->len + n + 1);
        if (!grown)
            return MHD_NO;
        memcpy(grown + hc->len, upload_data, n);
        hc->body = grown;
        hc->len += n;
        hc->body[hc->len] = '\0';
        return MHD_YES;
    }
    return http_finish(cls, conn, url, method, hc);
}

static void http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    struct http_conn *hc = *con_cls;
    if (hc) {
        free(hc->body);
        free(hc);
        *con_cls = NULL;
    }
}

/* A listening TCP socket on addr:port, or -errno. */
static int http_listen(const char *addr, int port)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        len = sizeof *v4;
    } else if (inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        len = sizeof *v6;
    } else {
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 128) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int http_create(const char *addr, int port, const char *password, http_handler handler,
                void *arg, struct http_server **out)
{
    struct http_server *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->password = password;
    s->handler = handler;
    s->arg = arg;
    int fd = http_listen(addr, port);
    if (fd < 0) {
        free(s);
        return fd;
    }
    s->daemon = MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL, http_access, s,
                                 MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED,
                                 http_completed, s, MHD_OPTION_CONNECTION_LIMIT,
                                 (unsigned)HTTP_CONN_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
                                 (unsigned)HTTP_IDLE_S, MHD_OPTION_END);
    if (!s->daemon) {
        close(fd);
        free(s);
        return -ENOMEM;
    }
    *out = s;
    return 0;
}

void http_destroy(struct http_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->daemon); /* closes the listening socket too */
    free(s);
}

int http_poll_fd(const struct http_server *s)
{
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    return info ? info->epoll_fd : -1;
}

int http_timeout_ms(const struct http_server *s)
{
    MHD_UNSIGNED_LONG_LONG t;
    if (MHD_get_timeout(s->daemon, &t) != MHD_YES)
        return -1;
    return t > 60000 ? 60000 : (int)t;
}

void http_run(struct http_server *s)
{
    MHD_run(s->daemon);
}
