/* coord_stubs.c: TEMPORARY weak stand-ins for shards/peerlink.c and
 * shards/replica.c until those branches are merged (then deleted). */
#include <errno.h>

#include "peerlink.h"
#include "replica.h"

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
__attribute__((weak)) void replica_state_init(struct replica_state *st)
{
    buf_init(&st->meta);
    buf_init(&st->body);
    st->expire_at_ms = 0;
}
__attribute__((weak)) void replica_state_fini(struct replica_state *st)
{
    buf_fini(&st->meta);
    buf_fini(&st->body);
}
__attribute__((weak)) void replica_state_clear(struct replica_state *st)
{
    buf_clear(&st->meta);
    buf_clear(&st->body);
    st->expire_at_ms = 0;
}
__attribute__((weak)) int replica_export(struct store *s, const struct node *n, const void *key,
                                         uint32_t klen, uint64_t hash, struct replica_state *out)
{
    (void)s, (void)n, (void)key, (void)klen, (void)hash, (void)out;
    return -ENOENT;
}
__attribute__((weak)) int replica_apply(struct store *s, const struct node *n, const void *key,
                                        uint32_t klen, uint64_t hash, const void *meta,
                                        size_t meta_len, const void *body, size_t body_len,
                                        uint64_t expire_at_ms)
{
    (void)s, (void)n, (void)key, (void)klen, (void)hash, (void)meta, (void)meta_len, (void)body,
        (void)body_len, (void)expire_at_ms;
    return 0;
}
__attribute__((weak)) bool replica_same(const struct replica_state *a, const void *meta,
                                        size_t meta_len)
{
    (void)a, (void)meta, (void)meta_len;
    return true;
}
__attribute__((weak)) int replica_versionize(struct store *s, const struct node *n,
                                             const void *key, uint32_t klen, uint64_t hash,
                                             const struct replica_state *before,
                                             struct replica_state *after, bool *changed)
{
    (void)s, (void)n, (void)key, (void)klen, (void)hash, (void)before, (void)after;
    *changed = false;
    return 0;
}
