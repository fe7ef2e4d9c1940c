/* coord_stubs.c: TEMPORARY weak stand-ins for shards/peerlink.c
 * until that branch is merged (then deleted). */
#include <errno.h>

#include "peerlink.h"

__attribute__((weak)) int peerlink_request(struct shard *sh, const char *node_id,
                                           const char *cluster_addr, const struct wire_msg *m)
{
    (void)sh, (void)node_id, (void)cluster_addr, (void)m;
    return -EAGAIN;
}
__attribute__((weak)) int peerlink_reply(struct shard *sh, uint64_t link, const struct wire_msg *m)
{
    (void)sh, (void)link, (void)m;
    return -ENOENT;
}
