/* net.h: socket plumbing for the shard loops.
 * Listening sockets (one per shard and port, SO_REUSEPORT, so the kernel
 * spreads connections over shards) and the packing of io_uring user_data:
 * an operation kind, a connection slot and its generation, never a pointer
 * that may die before its completion arrives.
 * Threads: any; nothing here keeps state.
 * Errors: negative errno. */
#ifndef RINGKV_NET_NET_H
#define RINGKV_NET_NET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* Operations net/ submits itself. An owner of a ring (the shard) numbers its
 * own from NET_OP_OWNER up; the kind has 8 bits. */
enum net_op {
    NET_OP_ACCEPT_RESP = 1,
    NET_OP_ACCEPT_MC,
    NET_OP_RECV,
    NET_OP_SEND,
    NET_OP_IGNORE, /* nothing to do when it completes */
    NET_OP_OWNER = 32,
};

/* A non-blocking TCP listener on addr:port with SO_REUSEPORT. fd or -errno. */
int net_listen(const char *addr, int port, int backlog);
/* 0 when no socket listens on addr:port (or on the wildcard address),
 * else -EADDRINUSE: /proc/net/tcp and tcp6 read. net_listen()'s SO_REUSEPORT
 * would let a second process share a port another one holds (the kernel
 * then spreads connections over both), so the first shard asks this before
 * any listener of this process exists. */
int net_port_free(const char *addr, int port);
/* The same, asked again for up to wait_ms while the port is in use: the
 * listener of a process killed a moment ago outlives it until its io_uring
 * is torn down (the kernel does that after the process is gone). */
int net_port_free_wait(const char *addr, int port, int wait_ms);

/* "host:port" or "[v6]:port" into *ss. The host must be numeric unless
 * names is set (then it may block on DNS: start-up only). 0 or -EINVAL. */
int net_parse_addr(const char *addr, bool names, struct sockaddr_storage *ss, socklen_t *len);

/* Sets TCP_NODELAY and the like on an accepted socket. */
void net_tune_client(int fd);

/* The peer's "ip:port" into out (at least 64 bytes). */
void net_peer_name(int fd, char *out, unsigned len);
/* The local end as Redis writes it: "ip:port", "[ip6]:port", "path:0" for a
 * Unix socket, "?:0" when the kernel cannot say (truncated to len). */
void net_local_name(int fd, char *out, unsigned len);

static inline uint64_t net_ud(unsigned op, uint32_t slot, uint32_t gen)
{
    return ((uint64_t)op << 56) | ((uint64_t)(slot & 0xffffff) << 32) | gen;
}
static inline unsigned net_ud_op(uint64_t ud) { return (unsigned)(ud >> 56); }
static inline uint32_t net_ud_slot(uint64_t ud) { return (uint32_t)(ud >> 32) & 0xffffff; }
static inline uint32_t net_ud_gen(uint64_t ud) { return (uint32_t)ud; }

#endif
