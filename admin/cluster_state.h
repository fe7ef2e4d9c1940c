/* cluster_state.h: the node's cluster state, kept in its data directory
 * (<dir>/cluster-state.json) so that a node restarted with its directory
 * comes back as the same member of the same cluster without seeds, as Redis
 * Cluster's nodes.conf does. The state: this node's id, ownership state,
 * state_version and incarnation; the current ring (q, n, epoch, hash,
 * members, owners); every other member, with its addresses, weight, zone
 * and ownership state (left ones as tombstones). A node whose own state is
 * LEFT keeps no peers.
 * Threads: pure functions plus blocking file I/O; any thread (the admin
 *   thread saves, start-up loads).
 * Ownership: a struct cluster_state filled by cluster_state_of(),
 *   cluster_state_decode() or cluster_state_load() owns its peers array
 *   (cluster_state_fini() frees it); a ring they return is the caller's
 *   (ring_destroy()). Returned text is malloc'd (free).
 * Errors: negative errno. Loading never trusts the file: anything but a
 *   whole, consistent state written by this format version is -EINVAL with
 *   a one-line reason in why; a missing file is -ENOENT (nothing to restore). */
#ifndef RINGKV_ADMIN_CLUSTER_STATE_H
#define RINGKV_ADMIN_CLUSTER_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gossip.h"
#include "member.h"
#include "ring.h"

#define CLUSTER_STATE_FILE "cluster-state.json"
#define CLUSTER_STATE_VERSION 1
#define CLUSTER_STATE_MAX_BYTES (64u << 20) /* 65,535 members with long addresses fit */

/* Another member as this node last knew it. */
struct cluster_state_peer {
    struct gossip_info info; /* ring_epoch and ring_hash are not kept (0) */
    enum member_state state; /* MEMBER_LEFT: a tombstone */
    uint64_t state_version;
};

struct cluster_state {
    char id[GOSSIP_ID_LEN + 1]; /* this node */
    enum member_state state;
    uint64_t state_version;
    uint64_t incarnation;
    bool left_cluster; /* it left a cluster and is alone since (member_has_left()) */
    struct cluster_state_peer *peers;
    uint32_t n_peers;
};

/* This node's state as the table holds it: member_at(0) and every other
 * member, left ones included (none when member_at(0) is left). -ENOMEM. */
int cluster_state_of(const struct member_table *t, struct cluster_state *out);

/* The document of s and ring (JSON text with a trailing newline), or NULL
 * when out of memory. */
char *cluster_state_encode(const struct cluster_state *s, const struct ring *ring);

/* Parses and checks a document: on success fills out and *ring (a ring
 * rebuilt with ring_from_owners() whose hash must match the saved one).
 * -EINVAL with why filled (a damaged, truncated, hostile or newer-format
 * document), -ENOMEM. */
int cluster_state_decode(const char *text, size_t len, struct cluster_state *out,
                         struct ring **ring, char *why, size_t why_cap);

/* Writes text as dir/cluster-state.json durably and atomically: a
 * temporary file (dir/cluster-state.json.tmp, replacing any left by a
 * crash) written and fsynced, renamed over the file, then dir fsynced; a
 * crash leaves the old document or the new one. -errno. */
int cluster_state_write(const char *dir, const char *text);

/* Reads and decodes dir/cluster-state.json (a temporary file beside it is
 * ignored). -ENOENT: no file; -EINVAL: refused (why says why; larger than
 * CLUSTER_STATE_MAX_BYTES included); other -errno from the file system
 * (why says which call). */
int cluster_state_load(const char *dir, struct cluster_state *out, struct ring **ring, char *why,
                       size_t why_cap);

/* Whether a loaded state (with its ring) fits this node (id) and its
 * partitions setting (q): -EINVAL with why when it is another node's, or
 * when its ring has another Q while other members share it (a cluster keeps
 * the Q it was made with, as Redis Cluster its slots; a node alone, or one
 * that left, may take a new Q and drops the saved ring). 0 when it fits. */
int cluster_state_check(const struct cluster_state *s, const struct ring *ring, const char *id,
                        uint32_t q, char *why, size_t why_cap);

/* Puts a checked state back into a table just made (member_create(),
 * nothing handled yet): this node's state, state_version and incarnation
 * (member_restore_self()), and each other member (member_restore_peer():
 * not heard from, the places member_join() asks; left ones as tombstones,
 * never seeds: a restarted node keeps them only until it hears). A node
 * that left gets no members back and is up at the next state_version, so
 * that a later join outranks its leave; it and one saved with left_cluster
 * are marked so (member_restore_left()). The ring is the caller's to make
 * current. -errno from member.h. */
int cluster_state_restore(struct member_table *t, const struct cluster_state *s, uint64_t now_ms);

/* Frees what the struct owns; the struct may be filled again. */
void cluster_state_fini(struct cluster_state *s);

/* Where the admin thread saves, and what it saved last. */
struct cluster_state_file {
    const char *dir;     /* NULL: the state is not kept (identity's rule for the node id) */
    uint64_t saved_hash; /* XXH3 of the document last written; 0: none yet */
    int last_error;      /* 0, or the -errno the last save failed with */
};

/* Saves t's state (cluster_state_of()) with ring in f->dir, unless f->dir
 * is NULL or the document is the one last written: call it after any
 * change. 1: written; 0: nothing to write; -errno (kept in f->last_error;
 * the next call tries again). */
int cluster_state_save(struct cluster_state_file *f, const struct member_table *t,
                       const struct ring *ring);

#endif
