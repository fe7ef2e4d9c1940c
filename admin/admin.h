/* admin.h: the admin thread: this node's identity, the membership view, the
 * partition ring agreed with the cluster (admin.c: one claimant changes it,
 * the others fetch it), joins and leaves, and the admin HTTP API.
 * Threads: admin_create(), admin_start() and admin_destroy() on the main
 *   thread (node start-up and teardown); everything else runs on the admin
 *   thread, which alone touches the membership, the ring and the HTTP server.
 *   It reads the shards' counters with relaxed atomic loads (as INFO does)
 *   and the node's settings, which are immutable.
 * Ownership: the node owns the admin (node_destroy() calls admin_destroy()).
 * Errors: -errno, with a one-line reason logged. */
#ifndef RINGKV_ADMIN_ADMIN_H
#define RINGKV_ADMIN_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfg;
struct node;
struct admin;
struct ring;

/* Reads or makes the node id (identity.h; with storage = memory, kept in dir
 * when dir is a writable directory, else new each run), builds the
 * membership and the ring (restoring the saved cluster state, if any:
 * cluster_state.h), and binds the HTTP port unless admin-port is 0.
 * Starts no thread. */
int admin_create(struct node *n, struct admin **out);
/* Starts the admin thread (call with the stop signals blocked, so that it
 * inherits the mask). */
int admin_start(struct admin *a);
/* Stops and joins the thread (if started), closes the HTTP server, frees.
 * NULL is fine. */
void admin_destroy(struct admin *a);
/* Whether dir keeps the node id and cluster state: always with storage =
 * log; with storage = memory, when dir is a writable directory. Any thread. */
bool admin_dir_kept(const struct cfg *cfg);
/* This node's id: 40 lowercase hex digits. Any thread. */
const char *admin_node_id(const struct admin *a);
/* The ring admin_create() started with (restored, provisional at epoch 0,
 * or this node alone): the ring this node's data belongs to at start-up
 * (shards/transfer.c's baseline). Main thread, before admin_start() only;
 * valid until then. */
const struct ring *admin_start_ring(const struct admin *a);
/* The key derived from cluster-secret (peer_secret_key()), for the
 * node-to-node protocol's handshake: *len bytes, valid while a lives; NULL
 * and *len 0 without a secret. Any thread. */
const uint8_t *admin_cluster_key(const struct admin *a, size_t *len);

#endif
