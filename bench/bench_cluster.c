/* bench_cluster.c: the slot map from CLUSTER SLOTS, MOVED and ASK (see bench_cluster.h).
 * The CLUSTER SLOTS reader walks the reply once with a cursor over the
 * caller's bytes, as the rest of the bench's reply parsing does: each step
 * either finds a whole element, runs out of bytes (MORE: nothing is kept,
 * the caller reads more and starts over; the reply is read once per run, so
 * starting over costs nothing that matters) or meets something a master
 * list cannot hold (BAD, with a reason naming the range). Fields the map
 * does not need (node ids, Redis 7's metadata, replicas) are skipped as
 * whole RESP values, nested at most BENCH_CLUSTER_MAX_DEPTH deep. Slots are
 * marked as ranges arrive, so a slot listed twice is caught at once and
 * slots left over are found at the end. */
#include "bench_cluster.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define NO_NODE UINT16_MAX
/* Longest RESP header line ("*<count>", "$<len>", ":<n>") worth reading. */
#define MAX_HEADER 32

struct cursor {
    const char *buf;
    size_t len, pos;
    char *why;
    size_t whylen;
};

enum step { STEP_OK, STEP_MORE, STEP_BAD };

static enum step refuse(struct cursor *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, c->whylen, fmt, ap);
    va_end(ap);
    return STEP_BAD;
}

/* The header line at the cursor: its type byte and the text after it. */
static enum step read_line(struct cursor *c, char *type, const char **text, size_t *n)
{
    const char *p = c->buf + c->pos;
    size_t left = c->len - c->pos;
    const char *lf = memchr(p, '\n', left);
    if (!lf)
        return left > BENCH_CLUSTER_MAX_REPLY ? refuse(c, "a line without an end") : STEP_MORE;
    if (lf == p || lf[-1] != '\r')
        return refuse(c, "a line not ended by CRLF");
    *type = p[0];
    *text = p + 1;
    *n = (size_t)(lf - p) - 2;
    c->pos += (size_t)(lf - p) + 1;
    return STEP_OK;
}

/* A decimal at most max; -1 (RESP's null length) as *neg. */
static bool parse_int(const char *s, size_t n, uint64_t max, uint64_t *out, bool *neg)
{
    *neg = n == 2 && s[0] == '-' && s[1] == '1';
    if (*neg)
        return true;
    if (n == 0 || n > 19)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

/* A header of type want (':' integer, '*' array) holding a number in
 * [0, max]; kind names what it must be in the reason. An error reply is
 * refused with its text. */
static enum step read_number(struct cursor *c, char want, uint64_t max, uint64_t *v,
                             const char *what, const char *kind)
{
    char type = 0;
    const char *t = NULL;
    size_t n = 0; /* read_line() sets all three on STEP_OK (GCC -O3 cannot see it) */
    bool neg;
    enum step st = read_line(c, &type, &t, &n);
    if (st != STEP_OK)
        return st;
    if (type == '-')
        return refuse(c, "the server answered '-%.*s'", (int)(n < 120 ? n : 120), t);
    if (type != want || !parse_int(t, n, max, v, &neg) || neg)
        return refuse(c, "%s is not %s of at most %llu", what, kind, (unsigned long long)max);
    return STEP_OK;
}

static enum step read_array(struct cursor *c, uint64_t max, uint64_t *count, const char *what)
{
    return read_number(c, '*', max, count, what, "an array of a length");
}

static enum step read_int(struct cursor *c, uint64_t max, uint64_t *v, const char *what)
{
    return read_number(c, ':', max, v, what, "an integer");
}

/* A bulk string; *null for $-1. */
static enum step read_bulk(struct cursor *c, const char **s, size_t *slen, bool *null,
                           const char *what)
{
    char type = 0;
    const char *t = NULL;
    size_t n = 0; /* read_line() sets all three on STEP_OK (GCC -O3 cannot see it) */
    uint64_t blen = 0;
    enum step st = read_line(c, &type, &t, &n);
    if (st != STEP_OK)
        return st;
    if (type != '$' || !parse_int(t, n, BENCH_CLUSTER_MAX_REPLY, &blen, null))
        return refuse(c, "%s is not a bulk string", what);
    if (*null)
        return STEP_OK;
    if (c->len - c->pos < blen + 2)
        return STEP_MORE;
    if (memcmp(c->buf + c->pos + blen, "\r\n", 2) != 0)
        return refuse(c, "%s does not end with CRLF", what);
    *s = c->buf + c->pos;
    *slen = (size_t)blen;
    c->pos += (size_t)blen + 2;
    return STEP_OK;
}

/* Skips one RESP2 value of any type, arrays at most depth deep. */
static enum step skip_value(struct cursor *c, int depth)
{
    size_t start = c->pos;
    char type = 0;
    const char *t = NULL;
    size_t n = 0; /* read_line() sets all three on STEP_OK (GCC -O3 cannot see it) */
    enum step st = read_line(c, &type, &t, &n);
    if (st != STEP_OK)
        return st;
    uint64_t count = 0;
    bool neg;
    switch (type) {
    case '+':
    case '-':
    case ':':
        return STEP_OK;
    case '$':
        c->pos = start;
        return read_bulk(c, &t, &n, &neg, "a field");
    case '*':
        if (depth >= BENCH_CLUSTER_MAX_DEPTH)
            return refuse(c, "arrays nested deeper than %d", BENCH_CLUSTER_MAX_DEPTH);
        if (!parse_int(t, n, BENCH_CLUSTER_MAX_REPLY / 4, &count, &neg))
            return refuse(c, "an array of a bad length");
        for (uint64_t i = 0; !neg && i < count; i++)
            if ((st = skip_value(c, depth + 1)) != STEP_OK)
                return st;
        return STEP_OK;
    }
    return refuse(c, "an element of unknown type '%c'", type);
}

/* One node entry [endpoint, port, ...]: its index in map, or BAD. */
static enum step read_node(struct cursor *c, const char *seed_host, struct bench_cluster_map *map,
                           int depth, int *node)
{
    uint64_t fields, port;
    const char *host;
    size_t hlen = 0;
    bool null;
    enum step st = read_array(c, 64, &fields, "a node");
    if (st == STEP_OK && fields < 2)
        return refuse(c, "a node has %llu fields, not endpoint and port",
                      (unsigned long long)fields);
    if (st == STEP_OK)
        st = read_bulk(c, &host, &hlen, &null, "a node's endpoint");
    if (st == STEP_OK)
        st = read_int(c, 65535, &port, "a node's port");
    for (uint64_t i = 2; st == STEP_OK && i < fields; i++)
        st = skip_value(c, depth + 1);
    if (st != STEP_OK)
        return st;
    if (port == 0)
        return refuse(c, "a node's port is 0");
    if (null || hlen == 0) {
        host = seed_host;
        hlen = strlen(seed_host);
    }
    if (hlen == 1 && host[0] == '?')
        return refuse(c, "a master's endpoint is unknown ('?': cluster-preferred-endpoint-type "
                         "hostname without a hostname)");
    for (size_t i = 0; i < hlen; i++)
        if ((unsigned char)host[i] <= ' ' || host[i] == 0x7f)
            return refuse(c, "a master's endpoint holds spaces or control bytes");
    int rc = bench_cluster_node(map, host, hlen, (uint16_t)port);
    if (rc == -ENOSPC)
        return refuse(c, "more than %d masters", BENCH_CLUSTER_MAX_NODES);
    if (rc < 0)
        return refuse(c, "a master's endpoint is longer than %d bytes", BENCH_CLUSTER_MAX_HOST);
    *node = rc;
    return STEP_OK;
}

/* One range [first, last, master, replicas...]. */
static enum step read_range(struct cursor *c, const char *seed_host, struct bench_cluster_map *map)
{
    uint64_t fields, first, last;
    enum step st = read_array(c, 1u << 16, &fields, "a slot range");
    if (st == STEP_OK && fields < 3)
        return refuse(c, "a slot range has %llu fields, not first, last and master",
                      (unsigned long long)fields);
    if (st == STEP_OK)
        st = read_int(c, KEYHASH_SLOTS - 1, &first, "a range's first slot");
    if (st == STEP_OK)
        st = read_int(c, KEYHASH_SLOTS - 1, &last, "a range's last slot");
    int node = 0;
    if (st == STEP_OK)
        st = read_node(c, seed_host, map, 2, &node);
    for (uint64_t i = 3; st == STEP_OK && i < fields; i++)
        st = skip_value(c, 1);
    if (st != STEP_OK)
        return st;
    if (first > last)
        return refuse(c, "range %llu-%llu ends before it starts", (unsigned long long)first,
                      (unsigned long long)last);
    for (uint64_t s = first; s <= last; s++) {
        if (map->slot_node[s] != NO_NODE)
            return refuse(c, "slot %llu is listed twice", (unsigned long long)s);
        map->slot_node[s] = (uint16_t)node;
    }
    return STEP_OK;
}

/* Every slot must have a master. */
static enum step check_covered(struct cursor *c, const struct bench_cluster_map *map)
{
    for (uint32_t s = 0; s < KEYHASH_SLOTS; s++) {
        if (map->slot_node[s] != NO_NODE)
            continue;
        uint32_t e = s;
        while (e + 1 < KEYHASH_SLOTS && map->slot_node[e + 1] == NO_NODE)
            e++;
        return refuse(c, "slots %u-%u have no master (is cluster_state ok?)", s, e);
    }
    return STEP_OK;
}

enum bench_cluster_status bench_cluster_parse_slots(const char *buf, size_t len,
                                                    const char *seed_host,
                                                    struct bench_cluster_map *map, size_t *consumed,
                                                    char *why, size_t whylen)
{
    struct cursor c = {.buf = buf, .len = len, .why = why, .whylen = whylen};
    why[0] = '\0';
    memset(map->slot_node, 0xff, sizeof map->slot_node);
    map->nnodes = 0;
    uint64_t ranges;
    enum step st = read_array(&c, KEYHASH_SLOTS, &ranges, "the reply");
    if (st == STEP_OK && ranges == 0)
        st = refuse(&c, "no slot has a master (an empty reply)");
    for (uint64_t i = 0; st == STEP_OK && i < ranges; i++)
        st = read_range(&c, seed_host, map);
    if (st == STEP_OK)
        st = check_covered(&c, map);
    if (st == STEP_MORE)
        return len > BENCH_CLUSTER_MAX_REPLY
                   ? (refuse(&c, "longer than %u bytes", BENCH_CLUSTER_MAX_REPLY),
                      BENCH_CLUSTER_BAD)
                   : BENCH_CLUSTER_MORE;
    if (st == STEP_BAD)
        return BENCH_CLUSTER_BAD;
    *consumed = c.pos;
    return BENCH_CLUSTER_OK;
}

/* "MOVED 3999 127.0.0.1:6381", "ASK 3999 :6381" (host left out: the same node's). */
enum bench_redirect_kind bench_cluster_parse_redirect(const char *text, size_t len,
                                                      struct bench_redirect *r)
{
    enum bench_redirect_kind kind;
    size_t skip;
    if (len >= 6 && memcmp(text, "MOVED ", 6) == 0) {
        kind = BENCH_REDIRECT_MOVED;
        skip = 6;
    } else if (len >= 4 && memcmp(text, "ASK ", 4) == 0) {
        kind = BENCH_REDIRECT_ASK;
        skip = 4;
    } else {
        return BENCH_REDIRECT_NONE;
    }
    const char *p = text + skip, *end = text + len;
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    uint64_t slot, port;
    bool neg;
    if (!sp || !parse_int(p, (size_t)(sp - p), KEYHASH_SLOTS - 1, &slot, &neg) || neg)
        return BENCH_REDIRECT_BAD;
    p = sp + 1;
    const char *colon = NULL; /* the last ':' (IPv6 addresses hold several) */
    for (const char *q = p; q < end; q++)
        if (*q == ':')
            colon = q;
    if (!colon || !parse_int(colon + 1, (size_t)(end - colon - 1), 65535, &port, &neg) || neg ||
        port == 0 || (size_t)(colon - p) > BENCH_CLUSTER_MAX_HOST)
        return BENCH_REDIRECT_BAD;
    for (const char *q = p; q < colon; q++)
        if ((unsigned char)*q <= ' ' || *q == 0x7f)
            return BENCH_REDIRECT_BAD;
    r->slot = (uint32_t)slot;
    r->host = p;
    r->host_len = (size_t)(colon - p);
    r->port = (uint16_t)port;
    return kind;
}

int bench_cluster_node(struct bench_cluster_map *map, const char *host, size_t host_len,
                       uint16_t port)
{
    if (host_len == 0 || host_len > BENCH_CLUSTER_MAX_HOST)
        return -EINVAL;
    for (uint32_t i = 0; i < map->nnodes; i++) {
        const struct bench_cluster_node *n = &map->nodes[i];
        if (n->port == port && strlen(n->host) == host_len && memcmp(n->host, host, host_len) == 0)
            return (int)i;
    }
    if (map->nnodes == BENCH_CLUSTER_MAX_NODES)
        return -ENOSPC;
    struct bench_cluster_node *n = &map->nodes[map->nnodes];
    memcpy(n->host, host, host_len);
    n->host[host_len] = '\0';
    n->port = port;
    return (int)map->nnodes++;
}
