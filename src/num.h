/* num.h: parsing numbers from request bytes.
 * Threads: pure functions, any thread. */
#ifndef RINGKV_SRC_NUM_H
#define RINGKV_SRC_NUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parses p[0..n) as a whole decimal int64 by Redis's string2ll rules: an
 * optional '-', no '+', no leading zeros, no spaces, no overflow. True and
 * *out set on success; false (and *out untouched) otherwise. */
bool num_parse_i64(const char *p, size_t n, int64_t *out);

#endif
