/* identity.h: this node's id, 40 lowercase hex digits (Redis Cluster's form).
 * Made once from getrandom() and kept in <dir>/node-id, so that a node
 * restarted with its data directory is the same node to the cluster.
 * Threads: start-up, main thread (it does blocking file I/O).
 * Errors: negative errno; the caller logs and decides. */
#ifndef RINGKV_ADMIN_IDENTITY_H
#define RINGKV_ADMIN_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>

#define IDENTITY_LEN 40
#define IDENTITY_FILE "node-id"

/* True when s[0..len) is IDENTITY_LEN lowercase hex digits. */
bool identity_valid(const char *s, size_t len);

/* Fills id (IDENTITY_LEN digits and a NUL) from getrandom(). 0 or -errno. */
int identity_random(char id[IDENTITY_LEN + 1]);

/* Reads dir/node-id into id, or, when there is none, makes a new id and
 * writes it durably (a temporary file, fsync, rename, fsync of dir).
 * *created says which. -EINVAL: the file holds something other than an id
 * (left as it is, for an operator to look at); other -errno from the file
 * system (dir missing or not writable). */
int identity_load(const char *dir, char id[IDENTITY_LEN + 1], bool *created);

#endif
