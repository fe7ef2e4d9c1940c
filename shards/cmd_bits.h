/* cmd_bits.h: Redis's bitmap commands over string values.
 * SETBIT GETBIT BITCOUNT BITPOS BITOP, with Redis 7.0's semantics, order of checks
 * and error texts. A string is a bitmap whose bit 0 is the most significant
 * bit of its first byte; bits past its end read as 0, and SETBIT past its end
 * grows it with zero bytes. Handlers are called as cmd_string.h's are: on
 * the shard thread that owns argv[1], one reply each. */
#ifndef RINGKV_SHARDS_CMD_BITS_H
#define RINGKV_SHARDS_CMD_BITS_H

#include "cmd.h"

void cmd_setbit(struct cmd_ctx *c);
void cmd_getbit(struct cmd_ctx *c);
void cmd_bitcount(struct cmd_ctx *c);
void cmd_bitpos(struct cmd_ctx *c);
/* BITOP op destkey key [key ...] reaches it as RING.BITOP destkey key
 * [key ...] op (cmd_dispatch_resp turns one into the other): its keys then
 * start at argv[1], as every keyed route and the coordinator take them,
 * the destination first. */
void cmd_bitop(struct cmd_ctx *c);
/* BITOP's row (the form clients send, whose arguments dispatch reorders):
 * an error if it is ever run as it is. */
void cmd_bitop_client(struct cmd_ctx *c);

#endif
