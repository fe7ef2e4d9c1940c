/* gossip.h: the binary encoding of the membership messages (member.h).
 * A frame is little-endian and length-prefixed:
 *   header (8 bytes): version u8 (GOSSIP_VERSION), type u8, flags u8, 0 u8,
 *                     body length u32 (at most GOSSIP_BODY_MAX)
 *   body:   seq u32, sender id (20 bytes), then per type: PING and IND_ACK a
 *           target id; PING_REQ a target id and the target's address;
 *           RING_REQ and RING a ring epoch u64 and hash u64, RING then a
 *           length u32 and that many bytes (the ring's encoding, opaque
 *           here: ring_encode()); then
 *           an update count u32 and that many updates, each
 *           kind u8, length u16, fields (struct gossip_update says which).
 *   MAC:    GOSSIP_MAC_LEN bytes when flags has GOSSIP_F_MAC (left for peer
 *           authentication: it covers header and body; this module only
 *           carries it).
 * Strings are a u8 length then bytes (no NUL, bounded); a node id travels
 * as 20 bytes and is 40 lowercase hex digits in memory. Updates of an
 * unknown kind are skipped by their length (newer peers may add kinds); any
 * other inconsistency makes the frame BAD.
 * Threads: pure functions, any thread. gossip_decode() neither allocates nor
 *   logs; what it returns points into the caller's bytes.
 * Errors: the decoder returns GOSSIP_OK / GOSSIP_MORE / GOSSIP_BAD plus bytes
 *   consumed; the writer records a failed allocation in w->failed. */
#ifndef RINGKV_ADMIN_GOSSIP_H
#define RINGKV_ADMIN_GOSSIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GOSSIP_VERSION 1
#define GOSSIP_HEADER_LEN 8
#define GOSSIP_ID_LEN 40             /* hex digits; 20 bytes on the wire */
#define GOSSIP_ADDR_MAX 47           /* "[ipv6]:port" at most */
#define GOSSIP_ZONE_MAX 63           /* as RING_ZONE_MAX */
#define GOSSIP_BODY_MAX (16u << 20)  /* a push-pull of ~60,000 members */
#define GOSSIP_UPDATES_MAX 65535u    /* updates in one frame */
#define GOSSIP_UPDATE_MAX 300        /* bytes of the largest encoded update */
#define GOSSIP_MAC_LEN 32

enum gossip_type {
    GOSSIP_PING = 1,      /* probe the target; answered by ACK */
    GOSSIP_ACK = 2,       /* answer to PING (seq echoed) */
    GOSSIP_PING_REQ = 3,  /* ask the receiver to probe target for us */
    GOSSIP_IND_ACK = 4,   /* the target answered a PING_REQ's probe */
    GOSSIP_GOSSIP = 5,    /* updates only */
    GOSSIP_PUSH_PULL = 6, /* full state: NODE updates, one per member */
    GOSSIP_RING_REQ = 7,  /* send me your ring if it beats mine (epoch, hash) */
    GOSSIP_RING = 8,      /* the answer: its epoch, hash and the ring's bytes */
};

enum gossip_flag {
    GOSSIP_F_MAC = 1,   /* a MAC follows the body */
    GOSSIP_F_REPLY = 2, /* PUSH_PULL: the answer to one (do not answer it) */
    GOSSIP_F_JOIN = 4,  /* PUSH_PULL: the sender is joining through us */
    GOSSIP_F_STREAM = 8, /* came over a stream: answer on it */
};

enum gossip_kind {
    GOSSIP_ALIVE = 1,   /* id, incarnation, info */
    GOSSIP_SUSPECT = 2, /* id, incarnation, from (the suspecting member) */
    GOSSIP_DEAD = 3,    /* id, incarnation, from (the member that declared it) */
    GOSSIP_JOIN = 4,    /* ALIVE's fields plus state and state_version (also
                           how a member not left is said alive: member.c) */
    GOSSIP_LEAVE = 5,   /* id, state and state_version */
    GOSSIP_NODE = 6,    /* JOIN's fields plus health: one member in a push-pull */
};

/* What a member says about itself (ALIVE, JOIN and NODE carry it). */
struct gossip_info {
    char id[GOSSIP_ID_LEN + 1];             /* 40 lowercase hex digits */
    char client_addr[GOSSIP_ADDR_MAX + 1];  /* host:port */
    char cluster_addr[GOSSIP_ADDR_MAX + 1]; /* where its frames go */
    char admin_addr[GOSSIP_ADDR_MAX + 1];   /* "" when HTTP is off */
    uint32_t weight;                        /* > 0 */
    char zone[GOSSIP_ZONE_MAX + 1];
    uint64_t ring_epoch;                    /* the ring it has */
    uint64_t ring_hash;
};

/* One update. Fields a kind does not carry are zero / empty after decoding
 * and ignored by the encoder; info.id is always there. */
struct gossip_update {
    enum gossip_kind kind;
    struct gossip_info info;
    uint64_t incarnation;
    char from[GOSSIP_ID_LEN + 1];
    /* JOIN, LEAVE, NODE */
    uint8_t state; /* enum member_state, at most 3 */
    uint64_t state_version;
    /* NODE */
    uint8_t health; /* enum member_health, at most 2 */
};

/* A decoded frame. Pointers point into the bytes given to gossip_decode(). */
struct gossip_msg {
    enum gossip_type type;
    uint8_t flags;
    uint32_t seq;
    char from[GOSSIP_ID_LEN + 1];
    char target[GOSSIP_ID_LEN + 1];              /* PING, PING_REQ, IND_ACK */
    char target_addr[GOSSIP_ADDR_MAX + 1];       /* PING_REQ */
    uint64_t ring_epoch, ring_hash;              /* RING_REQ, RING */
    const uint8_t *blob;                         /* RING: the ring's bytes */
    uint32_t blob_len;
    uint32_t n_updates;                          /* unknown kinds included */
    const uint8_t *updates;                      /* validated; read with gossip_iter */
    size_t updates_len;
    const uint8_t *mac;                          /* GOSSIP_MAC_LEN bytes, or NULL */
    const uint8_t *signed_bytes;                 /* what the MAC covers: header + body */
    size_t signed_len;
};

enum gossip_status { GOSSIP_OK, GOSSIP_MORE, GOSSIP_BAD };

/* Decodes one frame from data[0..len). OK: *msg is filled and *consumed is
 * the frame's length. MORE: the frame is not complete (nothing consumed).
 * BAD: the bytes are not a frame of this version (the stream is lost); *err
 * says why (a static string). */
enum gossip_status gossip_decode(const uint8_t *data, size_t len, struct gossip_msg *msg,
                                 size_t *consumed, const char **err);

/* Walks the updates of a decoded frame; unknown kinds are skipped. */
struct gossip_iter {
    const uint8_t *p, *end;
};
void gossip_iter_init(struct gossip_iter *it, const struct gossip_msg *msg);
/* Fills *u with the next update; false when there is none left. */
bool gossip_next_update(struct gossip_iter *it, struct gossip_update *u);

/* Encodes one update into out (room for GOSSIP_UPDATE_MAX bytes); returns
 * its length, or 0 when a field is out of bounds (an id that is not 40 hex
 * digits, a string too long, a zero weight, an unknown kind). */
size_t gossip_encode_update(const struct gossip_update *u, uint8_t *out);

/* Appends frames to a growing buffer. Usage: gossip_begin(), any number of
 * gossip_add_update()/gossip_add_raw(), gossip_end(); then the next frame. */
struct gossip_writer {
    uint8_t *data;
    size_t len, cap;
    size_t frame_start;
    size_t count_at;
    uint32_t count;
    bool failed; /* an allocation failed or a field was out of bounds */
};

void gossip_writer_init(struct gossip_writer *w);
void gossip_writer_fini(struct gossip_writer *w);
/* Drops every frame written (keeps the memory). */
void gossip_writer_reset(struct gossip_writer *w);
/* Starts a frame. target may be NULL (a zero id) except for PING, PING_REQ
 * and IND_ACK; target_addr is used by PING_REQ only. */
void gossip_begin(struct gossip_writer *w, enum gossip_type type, uint8_t flags, uint32_t seq,
                  const char *from, const char *target, const char *target_addr);
/* Starts a RING_REQ (blob NULL, blob_len 0) or a RING frame carrying
 * blob_len bytes of blob. */
void gossip_begin_ring(struct gossip_writer *w, enum gossip_type type, uint8_t flags,
                       uint32_t seq, const char *from, uint64_t epoch, uint64_t hash,
                       const uint8_t *blob, uint32_t blob_len);
void gossip_add_update(struct gossip_writer *w, const struct gossip_update *u);
/* Appends an update already encoded by gossip_encode_update(). */
void gossip_add_raw(struct gossip_writer *w, const uint8_t *update, size_t len);
/* Bytes the frame begun last has so far (header included). */
size_t gossip_frame_len(const struct gossip_writer *w);
/* Ends the frame: writes its count and length. With GOSSIP_F_MAC in the
 * flags given to gossip_begin(), GOSSIP_MAC_LEN zero bytes are appended for
 * the caller to fill. Returns the frame's offset in w->data. */
size_t gossip_end(struct gossip_writer *w);

#endif
