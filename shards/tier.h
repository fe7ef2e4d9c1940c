/* tier.h: values beyond RAM: reading cold values back from the shard's log.
 * With storage = log and maxmemory set, the store turns the least recently
 * used values cold once they are on disk (store.h); every key, with its
 * metadata and log position, stays in memory. A request whose handler needs
 * the value of a cold key waits here while the shard reads the key's record
 * through its io_uring (one read per key, however many requests wait for
 * it); the value goes back into memory and the waiting requests run in the
 * order they came. The loop never blocks: other keys are served meanwhile.
 *
 * Order: a request for a key with a read in flight waits behind it, so each
 * key sees its requests in arrival order. A request with CMD_BARRIER (cmd.h:
 * FLUSHALL, DBSIZE, KEYS, SCAN, RANDOMKEY, flush_all, an MSETNX whose keys
 * all live here) that comes while reads are in flight waits until they
 * have ended, and every request after it waits behind it; so nothing
 * overtakes it and it overtakes nothing. Requests without CMD_READS_VALUE
 * (SET without GET, DEL, EXISTS, TTL, STRLEN...) run at once on a cold key.
 * A waiting message is a request of the shard (req.h) with its deadline:
 * if that passes first, its origin gets a timeout error and the message
 * runs no more.
 *
 * Threads: everything on the owning shard thread.
 * Ownership: a waiting message (cmd.h, struct cmd_msg) stays its origin's;
 *   once run, it goes back through cmd_msg_reply(), to this very shard when
 *   the request came from one of its own connections.
 * Errors: a value that cannot be read back (I/O error, damaged record) fails
 *   the requests waiting for it with an error reply (-ERR / SERVER_ERROR),
 *   logged; the key stays cold and later requests try again. */
#ifndef RINGKV_SHARDS_TIER_H
#define RINGKV_SHARDS_TIER_H

#include <stdbool.h>
#include <stdint.h>

#include "cmd.h"

struct shard;
struct tier;

/* Creates the shard's tier. NULL on out of memory. */
struct tier *tier_create(struct shard *sh);
/* Frees it, and answers nothing: call once the ring is gone (no read can
 * complete any more); waiting messages are the shard's requests, freed
 * with its request table. */
void tier_destroy(struct tier *t);

/* Whether a request with these flags (cmd.h: CMD_READS_VALUE, CMD_BARRIER)
 * may run now. When it may, the key's entry is pinned in the store (its
 * value cannot leave memory while the handler runs). key and klen: the
 * request's key (ignored for a barrier). */
bool tier_may_run(struct shard *sh, uint32_t flags, uint64_t hash, const char *key,
                  uint32_t klen);

/* Takes a request that may not run now (tier_may_run() said so just
 * before, or its key's value is on disk only: cmd_read_back): it runs, and
 * its reply goes back, once what it waits for is done. Unpins the store's
 * pinned entry. */
void tier_wait(struct shard *sh, struct cmd_msg *m);

/* A completion of one of the tier's reads (user_data ud). */
void tier_on_cqe(struct shard *sh, uint64_t ud, int res);

/* Once per loop turn: submits reads whose records have since been written. */
void tier_turn(struct shard *sh);

/* Reads in flight now (stopping waits for them: their buffers must outlive
 * them). t may be NULL. */
uint32_t tier_busy(const struct tier *t);
/* Stopping: a read completed; nothing more is done with it. */
void tier_forget_cqe(struct tier *t);

#endif
