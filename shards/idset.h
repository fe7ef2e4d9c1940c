/* idset.h: sets of client ids, for CLIENT LIST ID across shards.
 * The origin parses the ids asked once and sorts a copy (idset_sort); each
 * shard asks idset_has() per connection, a binary search, so one request
 * costs O(connections x log ids) there instead of connections x ids. A
 * shard answers with records, each the connection's id and its line
 * (idset_record_begin/end), and the combiner indexes every shard's records
 * by id (idset_index, idset_lines_sort) so that each id asked is found in
 * O(log lines) (idset_lines_find), without reading the lines' text.
 * Record layout (within one process): 8-byte id, 4-byte length, the line;
 * host byte order, no alignment.
 * idset_steps counts the comparisons made by this thread (tests bound the
 * work with it).
 * Threads: any; nothing shared. */
#ifndef RINGKV_SHARDS_IDSET_H
#define RINGKV_SHARDS_IDSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define IDSET_RECORD_HEAD 12 /* id and length before each line */

extern _Thread_local uint64_t idset_steps;

/* Sorts ids ascending, in place. */
void idset_sort(int64_t *ids, uint32_t n);
/* Whether id is among the n sorted ids at `sorted` (any alignment). */
bool idset_has(const void *sorted, uint32_t n, int64_t id);

/* Starts the record of connection `id` in b; the line is appended next.
 * Returns where the record starts, for idset_record_end(). */
size_t idset_record_begin(struct buf *b, int64_t id);
/* The line appended since idset_record_begin() ends the record. */
void idset_record_end(struct buf *b, size_t at);

/* One record found in a shard's answer. */
struct idset_line {
    int64_t id;
    const char *p;
    uint32_t n;
};
/* Reads the records of p[0..n) into out (at most cap of them); a truncated
 * record ends the reading. Returns how many were read. Lines point into p. */
uint32_t idset_index(const char *p, size_t n, struct idset_line *out, uint32_t cap);
void idset_lines_sort(struct idset_line *v, uint32_t n);
/* The line of id in the n sorted lines, or NULL. */
const struct idset_line *idset_lines_find(const struct idset_line *v, uint32_t n, int64_t id);

#endif
