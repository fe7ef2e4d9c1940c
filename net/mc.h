/* mc.h: the memcached text protocol.
 * Parsing is pure: bytes in; a status, bytes consumed and a decoded request
 * out. No I/O, no allocation, no logging, so unit tests and fuzzers drive it.
 * Threads: any; nothing here is shared.
 * Ownership: keys and data in struct mc_request point into the caller's input
 *   and live as long as those bytes do.
 * Errors: parse outcomes are enum mc_status with memcached's own reply lines
 *   in *err; writers never fail loudly (see buf.h). */
#ifndef RINGKV_NET_MC_H
#define RINGKV_NET_MC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define MC_MAX_KEY_LEN 250 /* memcached's KEY_MAX_LENGTH */

/* X-macro: one list gives the enum and the name table. */
#define MC_COMMANDS(X)                                                                             \
    X(GET, "get") X(GETS, "gets") X(GAT, "gat") X(GATS, "gats") X(SET, "set") X(ADD, "add")      \
    X(REPLACE, "replace") X(APPEND, "append") X(PREPEND, "prepend") X(CAS, "cas")                 \
    X(DELETE, "delete") X(TOUCH, "touch") X(INCR, "incr") X(DECR, "decr")                        \
    X(FLUSH_ALL, "flush_all") X(STATS, "stats") X(VERSION, "version")                             \
    X(VERBOSITY, "verbosity") X(QUIT, "quit") X(MN, "mn")

enum mc_cmd {
#define MC_ENUM(id, name) MC_##id,
    MC_COMMANDS(MC_ENUM)
#undef MC_ENUM
    MC_CMD_COUNT
};

/* Name of a command, as the protocol spells it. */
const char *mc_cmd_name(enum mc_cmd cmd);

enum mc_status {
    MC_OK,        /* one whole request parsed */
    MC_MORE,      /* need more bytes; *need is the total length needed when known */
    MC_NEED_KEYS, /* keys array too small: req->nkeys holds the count needed */
    MC_ERROR,     /* a request the client got wrong: reply *err (a whole line
                     with CRLF, "ERROR\r\n" or "CLIENT_ERROR ...\r\n"), skip
                     *consumed bytes (which may exceed len: the caller then
                     discards the rest as it arrives, as memcached's swallow),
                     and go on. When req->noreply is set, send nothing: the
                     client asked for silence and memcached keeps it for
                     errors too (the other fields of req are unspecified) */
    MC_BAD,       /* framing lost (a line longer than the limit): reply *err, close */
    MC_BINARY,    /* a connection's first request is of memcached's binary
                     protocol (its first byte is MC_BINARY_MAGIC; memcached too
                     picks the protocol once, there), which ringkv does not speak: reply
                     mc_write_binary_refusal() for its header (data[0..24),
                     *consumed bytes), close */
};

/* memcached's binary protocol: a request's first byte, its header's length. */
#define MC_BINARY_MAGIC 0x80
#define MC_BINARY_HEADER_LEN 24

struct mc_key {
    const char *ptr;
    uint32_t len;
};

struct mc_request {
    enum mc_cmd cmd;
    struct mc_key *keys; /* caller's array; get/gets/gat/gats may carry many */
    uint32_t nkeys;
    uint32_t flags;      /* client flags of storage commands */
    int64_t exptime;     /* as sent: 0 none, <= 30 days relative seconds, else unix time;
                            negative means already expired */
    uint64_t cas;        /* cas unique of "cas" */
    uint64_t delta;      /* incr/decr amount */
    int64_t number;      /* flush_all delay (0 when absent), verbosity level */
    const char *data;    /* storage commands: the data block, without its CRLF */
    uint32_t data_len;
    const char *stats_arg; /* "stats <args>": the rest of the line, trimmed
                              ("items", "cachedump 1 0"); NULL when absent */
    uint32_t stats_arg_len;
    bool noreply;
    bool too_large;      /* with MC_ERROR, a set whose data block is over max_value
                            (swallowed): its key (keys[0]) is to lose its old value,
                            as memcached unlinks it, and the error is the reply */
};

/* The reply to a value over mc_limits.max_value (without its CRLF): the
 * parser's, and the node's when a write would grow one past it. */
#define MC_ERR_TOO_LARGE "SERVER_ERROR object too large for cache"

struct mc_limits {
    uint32_t max_line;   /* longest command line, CRLF included; a get with
                            many keys must fit in it too (memcached: 2048, but
                            unbounded for get) */
    uint64_t max_value;  /* largest data block; larger gets "SERVER_ERROR object
                            too large for cache" and its data is swallowed */
};

/* Progress through one request, kept by the caller between calls so that
 * bytes already searched are not searched again (a long get line, or a value
 * arriving in small pieces, costs work linear in its size). Offsets only,
 * from the request's first byte: the caller may move its buffer between
 * calls, but each call must see the same request start and bytes.
 * A zeroed struct is a fresh request; mc_parse() returns the state there
 * after MC_OK, MC_ERROR and MC_BAD. A caller that drops a partial request's
 * bytes some other way calls mc_state_reset(). */
struct mc_state {
    uint64_t examined; /* bytes the parser looked at, summed over calls and never
                          cleared by it: a work meter (tests, INFO) */
    size_t scan;       /* the command line was searched for its "\n" up to here */
    size_t need;       /* once a storage command's line is in: its total length */
    bool spoke_text;   /* a text request (or error) was parsed: the protocol is
                          chosen, and a first byte 0x80 (a value's, after a
                          refused line) is no longer taken for a binary request */
};

/* Back to a fresh request; `examined` and `spoke_text` are kept. */
void mc_state_reset(struct mc_state *st);

/* Parses one request from data[0..len), resuming from *state; keys has room
 * for keys_cap keys.
 * Never reads past len. On MC_OK, req is filled and *consumed bytes (line
 * plus data block) are done with; keyed commands carry their key in keys[0],
 * get-family commands all their keys (gat/gats may carry none: reply "END").
 * *need is set only with MC_MORE, for a storage command whose line is in:
 * the request's total length. */
enum mc_status mc_parse(const struct mc_limits *lim, struct mc_state *state, const char *data,
                        size_t len, struct mc_request *req, struct mc_key *keys, uint32_t keys_cap,
                        size_t *consumed, size_t *need, const char **err);

/* Reply writers. */
/* A binary-protocol response to the request whose 24-byte header is at
 * header: status 0x0083 "Not supported", its opcode and opaque echoed, and
 * a message saying to use the text protocol, so that a binary client fails
 * at once, in its own protocol, instead of waiting for a text line. */
void mc_write_binary_refusal(struct buf *b, const void *header);
void mc_write_value(struct buf *b, const void *key, size_t klen, uint32_t flags, const void *val,
                    size_t vlen, const uint64_t *cas); /* "VALUE k f n [cas]\r\ndata\r\n";
                                                          cas NULL for get/gat */
void mc_write_line(struct buf *b, const char *line); /* appends line and CRLF */

#endif
