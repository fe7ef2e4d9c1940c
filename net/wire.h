/* wire.h: the node-to-node protocol's codec (replica requests and replies
 * between shards of different nodes, over TCP to the cluster port).
 * This module is the bytes only: frame encoder, pure frame decoder and the
 * handshake's state machine. Sockets, io_uring, reconnects and what a
 * request means belong to the shard that owns the connection.
 *
 * Every integer is little-endian. A frame is an 8-byte header and a body:
 *
 *   off size field
 *     0    1 magic WIRE_MAGIC (0xC7: not a gossip frame's version byte 1,
 *            not RESP or memcached text, so the cluster port's acceptor
 *            tells a wire connection from a gossip stream by its first byte)
 *     1    1 version: WIRE_VERSION_HANDSHAKE for HELLO, CHALLENGE, PROOF and
 *            REFUSE (their layout never changes); the negotiated version
 *            for BATCH
 *     2    1 type (enum wire_type)
 *     3    1 flags: none defined; any bit set is refused
 *     4    4 body length (HELLO, CHALLENGE, PROOF exact; REFUSE 4..259;
 *            BATCH 1..the receiver's max_frame, at most WIRE_FRAME_MAX)
 *
 * Handshake bodies (ids are 20 bytes: a node id's 40 hex digits):
 *   HELLO (64)     0 version_min u8, 1 version_max u8, 2 from_shard u16,
 *                  4 shards u16 (from_shard < shards), 6 to_shard u16,
 *                  8 max_frame u32 (WIRE_FRAME_MIN..WIRE_FRAME_MAX: the
 *                  largest body the sender accepts), 12 node id (20),
 *                  32 nonce (32)
 *   CHALLENGE (96) 0 version u8 (chosen), 1 zero u8, 2 shard u16,
 *                  4 shards u16, 6 zero u16, 8 max_frame u32, 12 node id (20),
 *                  32 nonce (32), 64 proof (32)
 *   PROOF (32)     0 proof (32)
 *   REFUSE (4+n)   0 reason u8 (non-zero, enum wire_refusal), 1 version_min
 *                  u8, 2 version_max u8 (the refuser's range), 3 n u8, 4 text
 *                  (n bytes of printable ASCII: it ends up in logs)
 *
 * The initiator (the connecting shard) sends HELLO; the responder answers
 * CHALLENGE with the highest version both ranges hold, or REFUSE; the
 * initiator checks the responder's proof and sends PROOF (or REFUSE); the
 * responder checks it. Proofs are HMAC-SHA256 under the cluster secret of
 *   "ringkv wire proof" (17 bytes) || role ('R' in CHALLENGE, 'I' in PROOF)
 *   || HELLO body (64) || CHALLENGE body up to the proof (64)
 * so both nonces, both node ids, both shards, both version ranges' outcome
 * and the announced frame sizes are bound: a proof replayed on a connection
 * with other nonces, reflected to its sender, or relayed to another node
 * fails, a tampered HELLO (a downgrade) fails, and the secret never travels.
 * Proofs are compared in constant time (secret.h). Without a cluster secret
 * the key is empty: the exchange still catches a misdirected connection but
 * authenticates nothing. After the handshake frames are not authenticated
 * one by one (no per-frame MAC, no TLS): the handshake proves who opened
 * the connection, not that nobody injects into it later.
 *
 * BATCH body: one or more messages, each
 *     0 kind u8 (enum wire_kind), 1 flags u8, 2 length u32, 6 body
 *   REQUEST body: 0 id u64, 8 deadline_ms u32 (left when sent; 0: none),
 *     12 partition u16, 14 slot u16 (< 16384), 16 op u8 (enum wire_op),
 *     17 r u8, 18 w u8 (0: the receiver's default), 19 zero u8,
 *     20 expire_at_ms u64 (absolute unix ms; 0: no expiry), 28 payload
 *     flags: WIRE_MSG_RESP3 (FORWARD: reply in RESP3), WIRE_MSG_HOPPED
 *     (FORWARD: sent on by a node that holds no replica; not sent again),
 *     WIRE_MSG_MC (FORWARD only, never with RESP3: the value is one
 *     memcached text request, its line and data block, and the reply's
 *     value is memcached reply bytes), WIRE_MSG_REAP (GET only: a
 *     tombstone's reap check; a replica still pulling the partition that
 *     lacks the key says UNAVAILABLE, not NOT_FOUND); any other bit is
 *     refused
 *   REPLY body: 0 id u64 (the request's), 8 status u8 (enum wire_status_code),
 *     9 op u8 (the request's), 10 text length u16 (<= WIRE_TEXT_MAX),
 *     12 expire_at_ms u64, 20 text (printable ASCII: an error's message),
 *     then the payload; flags: none
 *   payload: key length u32, key, meta length u32, meta (opaque version
 *     metadata: the DVVSet encoding), value count u16, then per value its
 *     length u32 and bytes (siblings; FORWARD: one value, the client's
 *     command as RESP bytes, or memcached text with WIRE_MSG_MC, and in the
 *     reply the reply's bytes in the same protocol)
 *   A message's fields fill its length exactly; every length is checked
 *   against the decoder's limits (struct wire_limits) and the frame.
 * A batch is one write: a loop turn appends every message for one peer
 * connection to one writer and flushes once (struct wire_writer).
 *
 * Threads: pure functions over caller memory, any thread; a struct
 *   wire_hs or wire_writer belongs to the thread using it.
 * Ownership: decoded slices (struct wire_bytes, raw values) point into the
 *   caller's input and live as long as those bytes do. Encoders append to a
 *   struct buf (buf.h).
 * Errors: the decoder returns WIRE_OK / WIRE_MORE / WIRE_BAD (plus WIRE_END
 *   when a batch's messages are all read); BAD means the stream is lost:
 *   send REFUSE (WIRE_REFUSE_PROTOCOL, the reason) if possible, then close.
 *   Writers return 0 or -errno; handshake steps return enum wire_hs_status. */
#ifndef RINGKV_NET_WIRE_H
#define RINGKV_NET_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define WIRE_MAGIC 0xC7
#define WIRE_VERSION_HANDSHAKE 1 /* header version of handshake frames */
#define WIRE_VERSION_MIN 1       /* oldest batch version this build speaks */
#define WIRE_VERSION 1           /* newest */
#define WIRE_HEADER_LEN 8
#define WIRE_ID_LEN 20 /* bytes; 40 hex digits in memory */
#define WIRE_ID_HEX 40
#define WIRE_NONCE_LEN 32
#define WIRE_PROOF_LEN 32
#define WIRE_HELLO_LEN 64
#define WIRE_CHALLENGE_LEN 96
#define WIRE_REFUSE_MIN 4
#define WIRE_REASON_MAX 255 /* REFUSE text */
#define WIRE_TEXT_MAX 1024  /* REPLY text */
#define WIRE_MSG_HEADER_LEN 6
#define WIRE_REQUEST_FIXED 28
#define WIRE_REPLY_FIXED 20
#define WIRE_SLOTS 16384

/* Ceilings. Keys and values match the store's (shards/seg.h SEG_MAX_KEY and
 * SEG_MAX_VALUE, which net/ does not include: a static assertion in the
 * tests keeps them equal); the node narrows them from its settings. */
#define WIRE_KEY_MAX (512u << 20)
#define WIRE_VALUE_MAX (1u << 30)
#define WIRE_META_MAX (1u << 20)
#define WIRE_VALUES_MAX 65535u
#define WIRE_COMMAND_MAX                                                                           \
    (1600u << 20)                  /* a forwarded command or its reply: a                          \
                                      largest key and value, and framing */
#define WIRE_FRAME_MIN (64u << 10) /* smallest max_frame one may announce */
#define WIRE_FRAME_MAX (2u << 30)  /* a batch body; holds any one message */

enum wire_type {
    WIRE_HELLO = 1,
    WIRE_CHALLENGE = 2,
    WIRE_PROOF = 3,
    WIRE_REFUSE = 4,
    WIRE_BATCH = 5,
};

enum wire_kind {
    WIRE_REQUEST = 1,
    WIRE_REPLY = 2,
};

#define WIRE_MSG_RESP3 1  /* REQUEST flag */
#define WIRE_MSG_HOPPED 2 /* REQUEST flag */
#define WIRE_MSG_MC 4     /* REQUEST flag */
#define WIRE_MSG_REAP 8   /* REQUEST flag */
#define WIRE_MSG_REQUEST_FLAGS (WIRE_MSG_RESP3 | WIRE_MSG_HOPPED | WIRE_MSG_MC | WIRE_MSG_REAP)

/* X-macros: one list gives each enum and its names. */
/* clang-format off */
#define WIRE_OPS(X)                                                                                \
    X(GET, 1, "GET") X(PUT, 2, "PUT") X(DEL, 3, "DEL") X(SYNC, 4, "SYNC") X(FORWARD, 5, "FORWARD") \
    X(HINT, 6, "HINT") X(TREE, 8, "TREE") X(SEGMENTS, 9, "SEGMENTS") X(KEYS, 10, "KEYS")              \
    X(STREAM, 11, "STREAM") X(STREAM_END, 12, "STREAM_END") X(RELEASE, 13, "RELEASE")
#define WIRE_CODES(X)                                                                              \
    X(OK, 0, "OK") X(NOT_FOUND, 1, "NOT_FOUND") X(ERROR, 2, "ERROR")                               \
    X(UNAVAILABLE, 3, "UNAVAILABLE") X(OVERLOADED, 4, "OVERLOADED")
#define WIRE_REFUSALS(X)                                                                           \
    X(VERSION, 1, "no common protocol version") X(AUTH, 2, "authentication failed")                \
    X(SELF, 3, "connected to itself") X(WRONG_NODE, 4, "not the node dialled")                     \
    X(WRONG_SHARD, 5, "no such shard") X(PROTOCOL, 6, "protocol error")                            \
    X(SHUTDOWN, 7, "shutting down")
/* clang-format on */

/* GET: read. PUT: write a value under a context (meta). DEL: write a
 * tombstone. SYNC: apply a version as it is (replication, read repair,
 * hints, anti-entropy). FORWARD: a client command for a node that holds a
 * replica to coordinate. HINT: a SYNC for a stand-in past the top N to keep
 * for the intended owner (sloppy quorum, shards/hints.h): its values are the
 * SYNC's one, then the owner's node id (40 hex digits). TREE, SEGMENTS,
 * KEYS: anti-entropy's comparison of a partition's Merkle trees (no key;
 * the one value's payload is shards/merkle.h's: the branches, the leaves of
 * some branches, the keys and digests of some leaves).
 * Partition transfers (shards/transfer.h says what each field holds):
 * STREAM: a request for the states of some partitions' keys from a hash
 * position on (a REQUEST; its answer is STREAM REPLYs, one per key state,
 * then one STREAM_END REPLY with the next position); RELEASE: "do you hold
 * this partition whole?", asked by a node that left its preference list. */
enum wire_op {
#define WIRE_OP_ENUM(id, n, name) WIRE_OP_##id = n,
    WIRE_OPS(WIRE_OP_ENUM)
#undef WIRE_OP_ENUM
};

enum wire_status_code {
#define WIRE_CODE_ENUM(id, n, name) WIRE_CODE_##id = n,
    WIRE_CODES(WIRE_CODE_ENUM)
#undef WIRE_CODE_ENUM
};

/* Reasons in REFUSE. Unknown non-zero reasons decode (a newer peer may
 * have more) and read as "refused". */
enum wire_refusal {
#define WIRE_REFUSAL_ENUM(id, n, name) WIRE_REFUSE_##id = n,
    WIRE_REFUSALS(WIRE_REFUSAL_ENUM)
#undef WIRE_REFUSAL_ENUM
};

/* Names for logs: "PUT", "NOT_FOUND", "authentication failed"; "?" for
 * values outside the lists. */
const char *wire_op_name(unsigned op);
const char *wire_code_name(unsigned code);
const char *wire_refusal_text(unsigned reason);

enum wire_status {
    WIRE_OK,   /* a frame (or message) decoded */
    WIRE_MORE, /* the frame is not all there; *need says how long it is */
    WIRE_BAD,  /* not a valid frame or message: *err says why; close */
    WIRE_END,  /* wire_next_msg(): the batch has no more messages */
};

struct wire_bytes {
    const uint8_t *ptr;
    uint32_t len;
};

/* What a decoder accepts; each at most its ceiling above. */
struct wire_limits {
    uint32_t max_frame; /* BATCH body */
    uint32_t max_key;
    uint32_t max_value; /* each value but FORWARD's */
    uint32_t max_meta;
    uint32_t max_values;  /* values in one message */
    uint32_t max_command; /* FORWARD's value, in a request or a reply */
};

/* Every limit at its ceiling. */
void wire_limits_default(struct wire_limits *lim);

/* One connection's decoding state: its limits and whether the handshake is
 * over. version 0: only handshake frames and REFUSE decode (so a peer that
 * has proved nothing cannot make us buffer more than a handshake frame);
 * once the handshake is done the owner sets the negotiated version, and
 * then only BATCH of that version and REFUSE do. */
struct wire_decoder {
    struct wire_limits lim;
    uint8_t version;
};

struct wire_hello {
    uint8_t version_min, version_max;
    uint16_t from_shard, shards, to_shard;
    uint32_t max_frame;
    uint8_t node_id[WIRE_ID_LEN];
    uint8_t nonce[WIRE_NONCE_LEN];
};

struct wire_challenge {
    uint8_t version;
    uint16_t shard, shards;
    uint32_t max_frame;
    uint8_t node_id[WIRE_ID_LEN];
    uint8_t nonce[WIRE_NONCE_LEN];
    uint8_t proof[WIRE_PROOF_LEN];
};

struct wire_refuse {
    uint8_t reason;
    uint8_t version_min, version_max;
    struct wire_bytes text;
};

/* A decoded frame. body points into the input; for handshake frames the
 * member of the type is filled too. */
struct wire_frame {
    enum wire_type type;
    uint8_t version;
    uint32_t body_len;
    const uint8_t *body;
    union {
        struct wire_hello hello;
        struct wire_challenge challenge;
        uint8_t proof[WIRE_PROOF_LEN];
        struct wire_refuse refuse;
    } u;
};

/* One message. Decoded: slices point into the input and raw_values holds
 * the n_values encoded values (read them with wire_values_next()); values
 * is NULL. To encode: fill values[0..n_values), or leave values NULL and
 * give raw_values (values copied from a decoded message, as a relay does).
 * Fields a kind does not carry are zero after decoding and ignored by the
 * encoder. */
struct wire_msg {
    enum wire_kind kind;
    uint8_t flags;
    uint64_t id;
    uint8_t op; /* enum wire_op */
    /* REQUEST */
    uint32_t deadline_ms;
    uint16_t partition, slot;
    uint8_t r, w;
    /* REPLY */
    uint8_t status; /* enum wire_status_code */
    struct wire_bytes text;
    /* both */
    uint64_t expire_at_ms;
    struct wire_bytes key, meta;
    uint16_t n_values;
    const struct wire_bytes *values;
    struct wire_bytes raw_values;
};

/* Decodes the frame at data[0..len). OK: *f filled, *consumed its length.
 * MORE: *need is how many bytes from data[0] the frame takes (the header's
 * 8 while it is incomplete), always more than len; call again once there
 * are that many. BAD: *err (static text) says why. Header bytes are checked
 * as they arrive, so garbage is refused at its first byte, and an oversize
 * length as soon as the header is in, before anything is buffered for it.
 * A BATCH's messages are read afterwards with wire_next_msg(). *consumed is
 * 0 unless OK, *need 0 unless MORE. */
enum wire_status wire_decode(const struct wire_decoder *dec, const uint8_t *data, size_t len,
                             struct wire_frame *f, size_t *consumed, size_t *need,
                             const char **err);

/* Reads a BATCH's messages in order, each checked as it is read. */
struct wire_cursor {
    const uint8_t *p, *end;
    const struct wire_limits *lim; /* borrowed from the decoder */
};
void wire_cursor_init(struct wire_cursor *c, const struct wire_decoder *dec,
                      const struct wire_frame *f);
/* OK: *m is the next message. END: none left. BAD: *err says why (the
 * messages before it were whole; the stream is lost). */
enum wire_status wire_next_msg(struct wire_cursor *c, struct wire_msg *m, const char **err);

/* Walks a decoded message's values. */
struct wire_value_iter {
    const uint8_t *p, *end;
};
void wire_values_init(struct wire_value_iter *it, const struct wire_msg *m);
/* True and *v set for the next value; false at the end. */
bool wire_values_next(struct wire_value_iter *it, struct wire_bytes *v);

/* Handshake frames, appended whole to out (an allocation failure sets
 * out->failed). A REFUSE text longer than WIRE_REASON_MAX is cut, and bytes
 * outside printable ASCII become '?'. */
void wire_put_hello(struct buf *out, const struct wire_hello *h);
void wire_put_challenge(struct buf *out, const struct wire_challenge *c);
void wire_put_proof(struct buf *out, const uint8_t proof[WIRE_PROOF_LEN]);
void wire_put_refuse(struct buf *out, uint8_t reason, uint8_t version_min, uint8_t version_max,
                     const char *text);

/* Bytes a message takes in a batch (header included), or 0 when a field is
 * out of range (unknown kind, op or status, slot >= WIRE_SLOTS, a length over
 * its ceiling, undefined flags, text not printable). */
uint64_t wire_msg_size(const struct wire_msg *m);

/* Appends messages to batches in out: a batch is opened by the first
 * message and closed by wire_writer_flush(), or when the next message
 * would make it longer than max_frame (the peer's, from the handshake),
 * so that every batch fits what the peer accepts. While a batch is open
 * nothing else may be appended to out (its length is patched on close);
 * out may be sent and emptied only after a flush. */
struct wire_writer {
    struct buf *out;
    size_t frame_start; /* offset of the open batch's header in out */
    uint32_t max_frame;
    uint8_t version;
    bool open;
};

void wire_writer_init(struct wire_writer *w, struct buf *out, uint8_t version, uint32_t max_frame);
/* 0; -EINVAL for a field out of range (see wire_msg_size); -EMSGSIZE for a
 * message larger than max_frame; -ENOMEM (out->failed: the caller drops
 * the connection's output). Nothing is appended on failure. */
int wire_write_msg(struct wire_writer *w, const struct wire_msg *m);
/* Closes the open batch, if any: out then holds whole frames only. */
void wire_writer_flush(struct wire_writer *w);

/* ---- handshake ---- */

enum wire_role { WIRE_INITIATOR, WIRE_RESPONDER };

enum wire_hs_status {
    WIRE_HS_AGAIN,  /* send what was appended to out (if anything), wait for
                       the next frame */
    WIRE_HS_DONE,   /* send out; the connection is open: results in the hs */
    WIRE_HS_FAILED, /* send out (a REFUSE when we refused), then close:
                       reason and why in the hs */
};

struct wire_hs_config {
    const char *node_id; /* ours: 40 hex digits (copied) */
    const char *peer_id; /* initiator: the node it dials, or NULL for any */
    uint16_t shard, shards;
    uint16_t peer_shard;              /* initiator: the shard it wants there */
    uint8_t version_min, version_max; /* WIRE_VERSION_MIN, WIRE_VERSION: this
                                         build codes batches of version 1 only;
                                         wider ranges test the negotiation */
    uint32_t max_frame;               /* the largest batch body we accept (announced) */
    const void *secret;               /* borrowed for the handshake's life; may be NULL */
    size_t secret_len;
    uint8_t nonce[WIRE_NONCE_LEN]; /* fresh random bytes (getrandom) */
};

/* One side of one connection's handshake. Fields after `state` are the
 * outcome: the peer's when DONE, the refusal when FAILED. */
struct wire_hs {
    enum wire_role role;
    uint16_t shard, shards, peer_shard_wanted;
    uint8_t version_min, version_max;
    uint32_t max_frame;
    const void *secret;
    size_t secret_len;
    uint8_t self_id[WIRE_ID_LEN];
    uint8_t want_id[WIRE_ID_LEN];
    bool want_any;
    uint8_t nonce[WIRE_NONCE_LEN];
    uint8_t hello[WIRE_HELLO_LEN];         /* as sent or received */
    uint8_t challenge[WIRE_CHALLENGE_LEN]; /* likewise */
    uint8_t state;                         /* wire.c */
    /* DONE */
    uint8_t version;
    char peer_id[WIRE_ID_HEX + 1];
    uint16_t peer_shard, peer_shards;
    uint32_t peer_max_frame;
    /* FAILED */
    uint8_t reason;       /* enum wire_refusal (or a newer peer's) */
    bool refused_by_peer; /* the peer sent REFUSE; else we refused */
    char why[WIRE_REASON_MAX + 1];
};

/* Sets up one side. 0, or -EINVAL (an id that is not 40 hex digits, an
 * empty or reversed version range, shard >= shards, max_frame outside
 * WIRE_FRAME_MIN..WIRE_FRAME_MAX). */
int wire_hs_init(struct wire_hs *hs, enum wire_role role, const struct wire_hs_config *cfg);
/* Initiator: appends HELLO to out. */
void wire_hs_start(struct wire_hs *hs, struct buf *out);
/* Takes the next frame decoded from the peer (by a decoder of version 0);
 * appends any answer to out. Check out->failed after (out of memory:
 * close). Hand frames over one at a time and, once DONE, set the
 * decoder's version to hs->version before decoding the next: the
 * initiator may send batches right behind its PROOF, in the same read. */
enum wire_hs_status wire_hs_on_frame(struct wire_hs *hs, const struct wire_frame *f,
                                     struct buf *out);

#endif
