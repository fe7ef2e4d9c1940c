/* net.c: listening sockets and socket options (see net.h).
 * Every shard opens its own listener on the same address and port with
 * SO_REUSEPORT; the kernel then balances new connections over the shards
 * and a connection stays on the shard that accepted it. IPv4 and IPv6
 * literal addresses are accepted (getaddrinfo with AI_NUMERICHOST is not
 * needed for names: bind takes addresses). */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int net_listen(const char *addr, int port, int backlog)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(addr, service, &hints, &res);
    if (rc != 0)
        return -EADDRNOTAVAIL;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        goto fail;
    }
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
        rc = -errno;
        close(fd);
        goto fail;
    }
    freeaddrinfo(res);
    return fd;
fail:
    freeaddrinfo(res);
    return rc;
}

/* Whether /proc/net/<file> lists a listening socket (state 0A) on port
 * whose local address is want (hex as the file writes it: an IPv4 address
 * as one little-endian word, IPv6 as four) or the wildcard (all zeros). */
static bool net_listed_listening(const char *file, const char *want, int port)
{
    FILE *f = fopen(file, "re");
    if (!f)
        return false;
    char line[512], local[64], state[8];
    bool found = false;
    unsigned lport;
    if (!fgets(line, sizeof line, f)) { /* the header */
        fclose(f);
        return false;
    }
    while (!found && fgets(line, sizeof line, f)) {
        if (sscanf(line, " %*[^:]: %63[0-9A-Fa-f]:%x %*s %7s", local, &lport, state) != 3 ||
            (int)lport != port || strcmp(state, "0A") != 0)
            continue;
        found = strcasecmp(local, want) == 0 || strspn(local, "0") == strlen(local);
    }
    fclose(f);
    return found;
}

int net_port_free(const char *addr, int port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    if (getaddrinfo(addr, service, &hints, &res) != 0)
        return -EADDRNOTAVAIL;
    /* Only a listener counts (connections of a process killed a moment ago
     * keep the port without taking it, and a bind fails on some of them). */
    char want[33];
    bool in_use;
    if (res->ai_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)(const void *)res->ai_addr;
        snprintf(want, sizeof want, "%08X", (unsigned)v4->sin_addr.s_addr); /* as the kernel
                                                                                 prints it */
        in_use = net_listed_listening("/proc/net/tcp", want, port) ||
                 net_listed_listening("/proc/net/tcp6", "00000000000000000000000000000000", port);
    } else {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)(const void *)res->ai_addr;
        const uint32_t *w = (const uint32_t *)(const void *)v6->sin6_addr.s6_addr;
        snprintf(want, sizeof want, "%08X%08X%08X%08X", (unsigned)w[0], (unsigned)w[1],
                 (unsigned)w[2], (unsigned)w[3]);
        in_use = net_listed_listening("/proc/net/tcp6", want, port);
    }
    freeaddrinfo(res);
    return in_use ? -EADDRINUSE : 0;
}

int net_port_free_wait(const char *addr, int port, int wait_ms)
{
    int rc;
    for (int waited = 0; (rc = net_port_free(addr, port)) == -EADDRINUSE && waited < wait_ms;
         waited += 50)
        usleep(50 * 1000);
    return rc;
}

int net_parse_addr(const char *addr, bool names, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || !colon[1] || (size_t)(colon - addr) >= sizeof host)
        return -EINVAL;
    size_t hl = (size_t)(colon - addr);
    const char *h = addr;
    if (addr[0] == '[' && colon[-1] == ']') {
        h++;
        hl -= 2;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_DGRAM,
                             .ai_flags = AI_NUMERICSERV | (names ? 0 : AI_NUMERICHOST)};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || !res)
        return -EINVAL;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

void net_tune_client(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void net_peer_name(int fd, char *out, unsigned len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
            port = ntohs(in->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
            port = ntohs(in6->sin6_port);
        }
    }
    snprintf(out, len, "%s:%d", host, port);
}

/* The local end of a socket as Redis writes it: "ip:port", "[ip6]:port",
 * "path:0" for a Unix socket, "?:0" when the kernel cannot say. */
void net_local_name(int fd, char *out, unsigned n)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char host[INET6_ADDRSTRLEN];
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
            if (inet_ntop(AF_INET, &in->sin_addr, host, sizeof host)) {
                snprintf(out, n, "%s:%d", host, ntohs(in->sin_port));
                return;
            }
        } else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
            if (inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host)) {
                snprintf(out, n, "[%s]:%d", host, ntohs(in6->sin6_port));
                return;
            }
        } else if (ss.ss_family == AF_UNIX) {
            const struct sockaddr_un *un = (const struct sockaddr_un *)&ss;
            snprintf(out, n, "%.*s:0", (int)sizeof un->sun_path, un->sun_path);
            return;
        }
    }
    snprintf(out, n, "?:0");
}
