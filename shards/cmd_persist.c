/* cmd_persist.c: SAVE, BGSAVE and BGREWRITEAOF (see cmd_persist.h).
 * Each command is a connection handler that checks its arguments and
 * broadcasts a per-shard handler to every shard of this node. The per-shard
 * handlers ask the shard's log (persist_save: an fdatasync at the end of
 * the loop turn's writes, not at the next second; persist_rewrite_log:
 * compaction passes owed over every closed segment). SAVE's reply waits
 * for durability the way a reply under appendfsync always does: its shard
 * result carries the log sequence it depends on (req_result.hold_seq), and
 * the shard's request table lets it go once the log's durable sequence
 * reaches it (req_durable, every loop turn); a reply from another shard is
 * held on that shard first (cmd_msg_reply). A SAVE that the disk cannot
 * finish ends with the request's deadline, as any request. */
#include "cmd_persist.h"

#include <errno.h>

#include "cmd_string.h"
#include "node.h"
#include "persist.h"
#include "resp.h"
#include "shard.h"

static struct persist *cmd_persist_of(const struct cmd_ctx *c)
{
    return c->node->shards[c->shard_id]->persist;
}

/* persist_save's or persist_rewrite_log's failure as the reply: true when
 * there was one. */
static bool cmd_persist_refused(struct cmd_ctx *c, int rc)
{
    if (rc == -ENOTSUP) {
        cmd_reply_error(c, "ERR this node keeps no data on disk (storage memory): nothing to save");
        return true;
    }
    if (rc == -EBUSY) {
        cmd_reply_error(c, "ERR Background append only file rewriting already in progress");
        return true;
    }
    if (rc < 0) {
        cmd_reply_error(c, "ERR the data log cannot be written now (INFO persistence: "
                           "log_last_error)");
        return true;
    }
    return false;
}

static void cmd_save_shard(struct cmd_ctx *c)
{
    uint64_t seq;
    if (cmd_persist_refused(c, persist_save(cmd_persist_of(c), &seq)))
        return;
    c->res->hold_seq = seq; /* cmd_run keeps the larger of this and its own */
    cmd_reply_ok(c);
}

static void cmd_bgsave_shard(struct cmd_ctx *c)
{
    uint64_t seq;
    if (cmd_persist_refused(c, persist_save(cmd_persist_of(c), &seq)))
        return;
    c->res->status = REQ_OK;
    resp_write_simple(c->out, "Background saving started");
}

static void cmd_bgrewriteaof_shard(struct cmd_ctx *c)
{
    struct persist *p = cmd_persist_of(c);
    uint64_t seq;
    if (cmd_persist_refused(c, persist_rewrite_log(p)) ||
        cmd_persist_refused(c, persist_save(p, &seq)))
        return;
    c->res->status = REQ_OK;
    resp_write_simple(c->out, "Background append only file rewriting started");
}

void cmd_save(struct cmd_ctx *c)
{
    cmd_broadcast(c, cmd_save_shard, CMD_COMBINE_OK);
}

void cmd_bgsave(struct cmd_ctx *c)
{
    if (c->argc > 2 || (c->argc == 2 && !cmd_arg_is(&c->argv[1], "schedule"))) {
        cmd_reply_error(c, "ERR syntax error");
        return;
    }
    cmd_broadcast(c, cmd_bgsave_shard, CMD_COMBINE_SAME);
}

void cmd_bgrewriteaof(struct cmd_ctx *c)
{
    cmd_broadcast(c, cmd_bgrewriteaof_shard, CMD_COMBINE_SAME);
}
