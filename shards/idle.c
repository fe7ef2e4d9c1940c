/* idle.c: the shard's scan of its idle client connections (see idle.h).
 * Runs on the shard thread, from the loop's 100 ms tick, but does its walk
 * over the shard's connection table at most once a second (the time of the
 * next walk is thread-local: one per shard thread). conn_idle_ms() says how
 * long a connection has done nothing; a connection with a request waiting
 * (on other shards, the log, a cold read) or output in flight is never idle,
 * so, as in Redis, a client is not timed out in the middle of a command.
 * An idle connection gives back its empty buffers (conn_shrink_idle), so an
 * idle client costs its struct conn and a small argument array, whatever it
 * once sent or received (the freed memory goes back to the shard's heap for
 * other connections and data; the allocator returns pages to the kernel in
 * its own time). With `timeout` > 0 one idle longer is closed without
 * a reply, as Redis does; the shard frees it once nothing is in flight. */
#include "idle.h"

#include "cfg.h"
#include "conn.h"
#include "node.h"
#include "shard.h"

#define IDLE_SCAN_MS 1000

static _Thread_local int64_t idle_next_scan_ms;

void idle_scan(struct shard *sh, int64_t now_ms)
{
    if (now_ms < idle_next_scan_ms)
        return;
    idle_next_scan_ms = now_ms + IDLE_SCAN_MS;
    int64_t timeout_ms = __atomic_load_n(&sh->node->cfg->timeout, __ATOMIC_RELAXED) * 1000;
    for (uint32_t slot = 0; slot < sh->conn_cap; slot++) {
        struct conn *c = sh->conns[slot];
        if (!c || c->closing)
            continue;
        int64_t idle_ms = conn_idle_ms(c, now_ms);
        if (idle_ms == 0)
            continue;
        conn_shrink_idle(c);
        if (timeout_ms > 0 && idle_ms >= timeout_ms && !c->is_monitor) { /* as Redis */
            conn_close(c);
            conn_mark_dirty(c); /* the end-of-turn flush frees it once done */
        }
    }
}
