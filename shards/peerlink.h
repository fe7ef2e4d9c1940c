/* peerlink.h: a shard's connections to the shards of other nodes (the
 * node-to-node protocol of net/wire.h over TCP to their cluster ports),
 * driven by the shard's own io_uring. CONTRACT: written by the lead; the
 * "link" helper implements shards/peerlink.c and may refine comments, not
 * signatures, without telling the lead.
 *
 * Connections have a direction: the shard that dials sends REQUESTs on it,
 * the shard that accepted sends the REPLYs back on the same connection. So
 * a pair of shards that both coordinate keys of each other has two. Shard s
 * of this node dials shard (partition mod shards-of-that-node) of a peer,
 * lazily, on the first message for it; the peer's shard count is learnt from
 * its first CHALLENGE (dial its shard 0 first). Messages wait, bounded, while
 * a connection is being made; a connection that fails is retried with
 * exponential backoff (100 ms doubling to 5 s) and, while it is down,
 * peerlink_request() fails at once with -EAGAIN (the coordinator counts that
 * replica as not answering).
 *
 * The cluster port's TCP acceptor (admin/peer.c, admin thread) tells a wire
 * connection from a gossip stream by its first byte (WIRE_MAGIC) and hands
 * the socket to the shard its HELLO names: peerlink_adopt() (any thread)
 * queues it, the shard takes it on its next turn and runs the responder's
 * side of the handshake. The handshake proves the cluster secret with the
 * key admin/peer.c derives from it (never the raw secret).
 *
 * Every message for one connection in a loop turn goes into one batch
 * (wire_writer) and one send, flushed by peerlink_flush() at the end of the
 * turn. Received frames are decoded with the node's limits (max key, value,
 * request sizes from the settings); a connection that breaks framing or
 * fails the handshake is closed (REFUSE first when it can). A connection
 * whose unsent output reaches 64 MiB stops reading until it drains; one
 * past 256 MiB takes no more requests (-EAGAIN) until it drains; one whose
 * peer stopped reading for 30 s is closed (TCP_USER_TIMEOUT).
 *
 * Threads: everything on the owning shard's thread except peerlink_adopt().
 * Ownership: messages given to peerlink_request()/peerlink_reply() are
 *   encoded (copied) before the call returns.
 * Errors: -EAGAIN (peer unreachable now, or its queue full), -ENOMEM,
 *   -EINVAL (a message wire_msg_size() refuses, or one larger than the
 *   peer's max_frame). */
#ifndef RINGKV_SHARDS_PEERLINK_H
#define RINGKV_SHARDS_PEERLINK_H

#include <stdbool.h>
#include <stdint.h>

#include "wire.h"

struct shard;
struct node;

/* Per-shard state, created by shard_create() and freed by shard_destroy().
 * -ENOMEM. */
int peerlink_init(struct shard *sh);
void peerlink_fini(struct shard *sh);

/* Sends REQUEST m (m->kind == WIRE_REQUEST; m->partition says which of the
 * peer's shards) to the node with this id (40 hex digits) at cluster_addr
 * ("host:port", the snapshot's). */
int peerlink_request(struct shard *sh, const char *node_id, const char *cluster_addr,
                     const struct wire_msg *m);
/* The shard's view changed and says the node with this id is up: its
 * shards may be dialled at once, whatever the backoff of failed dials
 * before (a node restarted quickly is otherwise unreachable from here for
 * up to the backoff's 5 s while every other node already counts it up). A
 * dial that fails again backs off from where it was. */
void peerlink_retry_now(struct shard *sh, const char *node_id);
/* Whether the node with this id has sent this shard nothing for at least
 * PEERLINK_SILENT_MS while a request of this shard waited for it: the
 * first request sent to it since its last bytes came in (on any of this
 * shard's connections to it) is that old. A stopped process, or one the
 * network cut off, is silent long before failure detection calls it down
 * (seconds); a busy one answers something. Only its next bytes clear it
 * (a connection that fails or times out is no answer). A slow answer looks
 * the same: a FORWARD's reply waits for the whole operation it asked for.
 * So the coordinator sends only forwards any replica may coordinate (reads
 * and plain writes) to another live replica while it holds. */
#define PEERLINK_SILENT_MS 500
bool peerlink_is_silent(struct shard *sh, const char *node_id, int64_t now_ms);
/* Sends REPLY m on the connection `link` a request came in on (the handle
 * coord_on_request() was given: slot << 32 | generation, so a handle
 * outliving its connection finds nothing). -ENOENT when that connection
 * has closed or is closing. */
int peerlink_reply(struct shard *sh, uint64_t link, const struct wire_msg *m);

/* Loop hooks (shard.c): peerlink_on_cqe() for a completion of one of its
 * io_uring operations (user_data kinds SHARD_OP_LINK_*; the eventfd read
 * among them takes the adopted sockets); peerlink_turn() on the shard's
 * tick (now_ms: req_now_ms()): closes links whose connect or handshake
 * is late (dials whose backoff passed are made again by the next
 * peerlink_request(), lazily); peerlink_flush() once per turn before
 * submitting, and once before the loop's first wait (it arms the eventfd
 * read, so that sockets adopted as the node starts are taken at once):
 * closes each link's batch and sends it, frees closed links. */
void peerlink_on_cqe(struct shard *sh, uint64_t user_data, int32_t res, uint32_t flags);
void peerlink_turn(struct shard *sh, int64_t now_ms);
void peerlink_flush(struct shard *sh);

/* Any thread: hands an accepted cluster-port socket whose first byte is
 * WIRE_MAGIC to shard to_shard of node n (the HELLO's to_shard; out of range:
 * closed). Takes fd. */
void peerlink_adopt(struct node *n, uint32_t to_shard, int fd);

/* Implemented by the coordinator (shards/coord.c), called by the link for
 * every message received: a REQUEST from a peer's coordinator (answer it
 * with peerlink_reply(sh, link, ...), now or later), and a REPLY to one of
 * this shard's requests (m->id names the req.h request; it may have ended).
 * m's slices are valid during the call only. A request comes with its
 * key's keyhash (computed once, for the batch's prefetch). */
void coord_on_request(struct shard *sh, uint64_t link, const struct wire_msg *m, uint64_t hash);
void coord_on_reply(struct shard *sh, const struct wire_msg *m);
/* Before coord_on_reply, for a REPLY that is not OK: the peer that sent
 * it (its node id), whatever became of the request. */
void coord_note_refusal(struct shard *sh, const char *peer_id, const struct wire_msg *m);
/* A hint for the REPLYs of a batch to come (their ids, n <= 64): the
 * coordinator prefetches what coord_on_reply() will read of each. */
void coord_prefetch_replies(struct shard *sh, const uint64_t *ids, uint32_t n);
/* An open link this shard dialled to node_id ended from the far side (end
 * of stream, reset, a REFUSE), or one with requests queued for its connect
 * or handshake failed there (the connect or the handshake refused, the
 * handshake timed out): the requests it carried will never be answered
 * (replies come back on the link a request went out on). Only noted here:
 * the coordinator acts on it between events (coord_lost_turn, after the
 * loop turn's completions), never inside the caller's send. */
void coord_note_link_lost(struct shard *sh, const char *node_id);

/* Counters for INFO (relaxed atomics, any thread reads; one shard's, INFO
 * sums them): connections up, dials, failed handshakes (connections that
 * closed after connecting and before their handshake was done: refused
 * either way, timed out, cut; and adopted ones closed over the cap),
 * messages and bytes each way. */
struct peerlink_stats {
    uint64_t links_up, dials, handshake_failures, msgs_out, msgs_in, bytes_out, bytes_in;
};
void peerlink_read_stats(const struct shard *sh, struct peerlink_stats *out);

#endif
