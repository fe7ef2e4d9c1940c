/* bench_cluster.h: Redis Cluster's topology as ringkv-bench --cluster-mode sees it.
 * A slot map (each of the 16384 slots to one master, masters as host and
 * port) filled from a CLUSTER SLOTS reply, the -MOVED and -ASK redirections
 * that correct it, and the slot of a key (keyhash_slot, ringkv's own).
 * CLUSTER SLOTS is read as Redis 3 to 7 answer it: per range the first and
 * last slot, the master [endpoint, port, node id, metadata...], then
 * replicas, which are ignored; fields after the port are skipped whatever
 * they hold. A NULL or empty endpoint means the host the reply came from; "?"
 * (an unknown endpoint) and anything malformed is refused with a reason, as
 * are overlapping ranges and slots that no master serves.
 * Parsers are pure: bytes in; status, bytes consumed and results out; no I/O,
 * allocation or logging.
 * Threads: any; a map belongs to its caller (each client thread keeps its own).
 * Ownership: struct bench_redirect's host points into the caller's input. */
#ifndef RINGKV_BENCH_CLUSTER_H
#define RINGKV_BENCH_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "keyhash.h"

/* Most masters a map holds; the slot map stores node numbers in 16 bits. */
#define BENCH_CLUSTER_MAX_NODES 1024
/* Longest host name or address accepted, in bytes. */
#define BENCH_CLUSTER_MAX_HOST 255
/* Longest CLUSTER SLOTS reply read (16384 one-slot ranges with replicas fit). */
#define BENCH_CLUSTER_MAX_REPLY (16u << 20)
/* Deepest nesting of arrays accepted in a CLUSTER SLOTS reply. */
#define BENCH_CLUSTER_MAX_DEPTH 8

struct bench_cluster_node {
    char host[BENCH_CLUSTER_MAX_HOST + 1];
    uint16_t port;
};

struct bench_cluster_map {
    uint16_t slot_node[KEYHASH_SLOTS]; /* index into nodes */
    uint32_t nnodes;
    struct bench_cluster_node nodes[BENCH_CLUSTER_MAX_NODES];
};

enum bench_cluster_status {
    BENCH_CLUSTER_OK,   /* parsed: results set, *consumed bytes used */
    BENCH_CLUSTER_MORE, /* incomplete: call again with more bytes from the same start */
    BENCH_CLUSTER_BAD,  /* refused: the reason is in why */
};

/* Fills map from one CLUSTER SLOTS reply at buf[0..len); seed_host stands
 * for NULL and empty endpoints. On BAD, why (whylen bytes) says what was wrong. */
enum bench_cluster_status bench_cluster_parse_slots(const char *buf, size_t len,
                                                    const char *seed_host,
                                                    struct bench_cluster_map *map, size_t *consumed,
                                                    char *why, size_t whylen);

enum bench_redirect_kind {
    BENCH_REDIRECT_NONE,  /* another error */
    BENCH_REDIRECT_MOVED, /* MOVED slot host:port: the slot lives there now */
    BENCH_REDIRECT_ASK,   /* ASK slot host:port: this request only, after ASKING */
    BENCH_REDIRECT_BAD,   /* MOVED or ASK, but not in that shape */
};

struct bench_redirect {
    uint32_t slot;
    const char *host; /* empty (host_len 0): the node that answered */
    size_t host_len;
    uint16_t port;
};

/* Reads an error reply's text (without '-' and CRLF). */
enum bench_redirect_kind bench_cluster_parse_redirect(const char *text, size_t len,
                                                      struct bench_redirect *r);

/* The node numbered for host:port in map, added when new. The index, or
 * -ENOSPC when the map is full, -EINVAL for an empty or too long host. */
int bench_cluster_node(struct bench_cluster_map *map, const char *host, size_t host_len,
                       uint16_t port);

/* Redis Cluster's slot of a key (its {hash tag}'s when it has one). */
static inline uint32_t bench_cluster_slot(const char *key, size_t len)
{
    return keyhash_slot(key, len);
}

#endif
