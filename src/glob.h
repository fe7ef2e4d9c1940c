/* glob.h: Redis-style glob patterns, as KEYS and SCAN MATCH use them.
 * Syntax: '*' any run of bytes (also none), '?' one byte, '[abc]' one byte
 * of the set, '[^abc]' one byte not in it, '[a-z]' a range (reversed ends
 * are swapped), '\x' the byte x literally (inside or outside brackets). An
 * unclosed '[' ends at the end of the pattern; a trailing '\' is literal.
 * Matching is byte-wise and case-sensitive, in O(pattern * string) time at
 * worst (no exponential backtracking), so a hostile pattern cannot stall a
 * shard.
 * Threads: pure functions, any thread. Nothing is allocated. */
#ifndef RINGKV_SRC_GLOB_H
#define RINGKV_SRC_GLOB_H

#include <stdbool.h>
#include <stddef.h>

/* True when str[0..slen) matches pat[0..plen). Both may hold any bytes. */
bool glob_match(const char *pat, size_t plen, const char *str, size_t slen);

#endif
