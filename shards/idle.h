/* idle.h: idle client connections: closing them after `timeout` seconds
 * (Redis's setting and meaning; 0 = never) and giving back the buffers they
 * do not need.
 * Threads: a shard's own thread, from its loop's tick.
 * Ownership: the shard's connections stay the shard's; a closed one is freed
 *   by the shard once nothing of it is in flight. */
#ifndef RINGKV_SHARDS_IDLE_H
#define RINGKV_SHARDS_IDLE_H

#include <stdint.h>

struct shard;

/* At most once a second (earlier calls return at once): asks each of the
 * shard's connections how long it has been idle; shrinks the idle ones and,
 * with `timeout` set, closes those idle longer than that. */
void idle_scan(struct shard *sh, int64_t now_ms);

#endif
