/* nodeid.h: a node id's two forms: 40 lowercase hex digits (Redis Cluster's
 * form, as identity.c makes them, in the API and the logs) and the 20 bytes
 * the gossip and wire protocols carry.
 * Threads: pure functions, any thread. */
#ifndef RINGKV_SRC_NODEID_H
#define RINGKV_SRC_NODEID_H

#include <stdbool.h>
#include <stdint.h>

#define NODEID_HEX 40  /* hex digits */
#define NODEID_BYTES 20

/* hex: NODEID_HEX lowercase hex digits followed by a NUL. Writes the
 * NODEID_BYTES bytes to out; false (out partly written) if hex is not that. */
bool nodeid_from_hex(const char *hex, uint8_t out[NODEID_BYTES]);

/* Writes the NODEID_HEX digits of id and a NUL to out. */
void nodeid_to_hex(const uint8_t id[NODEID_BYTES], char out[NODEID_HEX + 1]);

#endif
