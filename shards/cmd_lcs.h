/* cmd_lcs.h: Redis 7.0's LCS, the longest common subsequence of the string
 * values of two keys of one hash slot: the subsequence, its length (LEN)
 * or its matching ranges (IDX, MINMATCHLEN, WITHMATCHLEN), with Redis's
 * replies and error texts. Called as cmd_string.h's handlers are: on the
 * shard thread that owns argv[1], one reply. */
#ifndef RINGKV_SHARDS_CMD_LCS_H
#define RINGKV_SHARDS_CMD_LCS_H

#include "cmd.h"

void cmd_lcs(struct cmd_ctx *c);

#endif
