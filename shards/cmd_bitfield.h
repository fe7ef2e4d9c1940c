/* cmd_bitfield.h: Redis's BITFIELD and BITFIELD_RO over string values.
 * Integer fields of 1 to 64 bits (signed) or 1 to 63 (unsigned) at any bit
 * offset of a string read as a bitmap (bit 0 the most significant bit of
 * the first byte, as cmd_bits.h), read, set and incremented with Redis
 * 7.0's semantics, overflow rules and error texts. Handlers are called as
 * cmd_string.h's are: on the shard thread that owns argv[1], one reply
 * each. */
#ifndef RINGKV_SHARDS_CMD_BITFIELD_H
#define RINGKV_SHARDS_CMD_BITFIELD_H

#include "cmd.h"

void cmd_bitfield(struct cmd_ctx *c);
void cmd_bitfield_ro(struct cmd_ctx *c);

#endif
