/* http.h: the admin HTTP server (libmicrohttpd), its routes and its auth.
 * The server runs no thread of its own: the admin thread polls
 * http_poll_fd() and calls http_run() when it is readable or
 * http_timeout_ms() has passed, so every request is handled on the admin
 * thread, which owns what the handler reads.
 * Routes and auth are pure functions (http_route(), http_auth_ok()) that unit
 * tests drive; http.c only glues them to libmicrohttpd: it collects a
 * request's body (at most HTTP_BODY_MAX bytes, else 413), checks the
 * password (401 with WWW-Authenticate), routes (404, 405 with Allow), and
 * hands a parsed request to the handler, whose response it sends.
 * Threads: http_create() and http_destroy() on any one thread at a time
 *   (start-up, shutdown); http_run() and the handler on the admin thread.
 * Errors: http_create() returns -errno (-EADDRINUSE when the port is taken,
 *   -EINVAL for a bind address that is not an IP). */
#ifndef RINGKV_ADMIN_HTTP_H
#define RINGKV_ADMIN_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_BODY_MAX 65536
#define HTTP_ID_LEN 40

enum http_route {
    HTTP_HEALTH,    /* /v1/health */
    HTTP_NODES,     /* /v1/nodes */
    HTTP_NODE,      /* /v1/nodes/{id} */
    HTTP_RING,      /* /v1/ring */
    HTTP_STATS,     /* /v1/stats */
    HTTP_METRICS,   /* /metrics */
    HTTP_NOT_FOUND, /* anything else */
};

enum http_method { HTTP_GET, HTTP_POST, HTTP_DELETE, HTTP_OTHER };

/* A request as the handler sees it; pointers are valid during the call. */
struct http_request {
    enum http_route route;
    enum http_method method;
    char id[HTTP_ID_LEN + 1]; /* HTTP_NODE: the path's id, as sent (may be invalid) */
    bool dry_run;             /* ?dry_run, =1, =true, =yes (http_flag()) */
    const char *body;         /* NUL-terminated; "" when none */
    size_t body_len;
};

/* What the handler answers: status, and a body it allocated with malloc()
 * (the server frees it), JSON unless content_type says otherwise. */
struct http_response {
    unsigned status;
    char *body;
    const char *content_type; /* NULL: application/json */
};

typedef void (*http_handler)(void *arg, const struct http_request *req,
                             struct http_response *res);

/* The route of a path (no query string); for /v1/nodes/{id} copies up to
 * HTTP_ID_LEN characters of the id into id (a longer one is HTTP_NOT_FOUND). */
enum http_route http_route(const char *path, char id[HTTP_ID_LEN + 1]);
/* The methods a route takes, as an Allow header ("GET", "GET, POST"). */
const char *http_allowed(enum http_route route);
/* True when the route takes this method. */
bool http_method_allowed(enum http_route route, enum http_method method);
enum http_method http_method_of(const char *method);

/* A yes/no query parameter: value is NULL when the parameter is absent
 * (no), "" when present without a value ("?dry_run": yes), else 1, true,
 * yes or 0, false, no (any case). 0 with *out set, or -EINVAL for any other
 * value (the server answers 400: a value it does not know must not be taken
 * for "no", which would do for real what was meant as a dry run). */
int http_flag(const char *value, bool *out);

/* True when the Authorization header value proves the password: "Bearer
 * <password>" or "Basic base64(<any user>:<password>)", compared in
 * constant time (secret_equal). An empty password lets every request in. */
bool http_auth_ok(const char *authorization, const char *password);

/* A {"error": message} body (malloc'd) for res, with status. */
void http_error(struct http_response *res, unsigned status, const char *message);

struct http_server;

/* Binds addr:port (an IPv4 or IPv6 address) and listens; handler gets every
 * request that passes auth and routing. password: "" for none; kept by
 * pointer, so it must outlive the server (the node's settings do). */
int http_create(const char *addr, int port, const char *password, http_handler handler,
                void *arg, struct http_server **out);
/* Closes every connection and the listener. NULL is fine. */
void http_destroy(struct http_server *s);
/* The fd to poll for reading (an epoll set of every socket the server has). */
int http_poll_fd(const struct http_server *s);
/* Milliseconds until the server has timed work (idle connections), or -1. */
int http_timeout_ms(const struct http_server *s);
/* Does what is ready: accepts, reads, handles, writes. Never blocks. */
void http_run(struct http_server *s);

#endif
