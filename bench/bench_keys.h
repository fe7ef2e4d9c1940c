/* bench_keys.h: which key number each request uses.
 * Patterns, in memtier_benchmark's letters (--key-pattern SET:GET):
 *   S  sequential: each client walks the whole range [min, max] one by one,
 *      starting at its own offset (client i of n at min + i * range / n), wrapping;
 *   P  parallel sequential: the range is cut into n disjoint slices, client i
 *      walks slice i, wrapping; together the clients cover every key once per lap;
 *   R  uniform random over the range;
 *   G  gaussian: mean `median`, deviation `stddev`, redrawn when outside the range;
 *   Z  zipfian: rank k (1 = most popular) drawn with weight k^-zipf_exp,
 *      key = min + k - 1 (rejection-inversion sampling: O(1) per key, no tables).
 * Threads: a generator belongs to one client; none is shared.
 * Errors: bench_keys_init() and bench_keys_parse_pattern() return -EINVAL. */
#ifndef RINGKV_BENCH_KEYS_H
#define RINGKV_BENCH_KEYS_H

#include <stdint.h>

#include "bench_rng.h"

enum bench_key_pattern {
    BENCH_KEYS_SEQUENTIAL = 'S',
    BENCH_KEYS_PARALLEL = 'P',
    BENCH_KEYS_UNIFORM = 'R',
    BENCH_KEYS_GAUSSIAN = 'G',
    BENCH_KEYS_ZIPFIAN = 'Z',
};

/* The key space the command line describes. */
struct bench_key_space {
    uint64_t min, max; /* inclusive */
    double median;     /* gaussian mean */
    double stddev;     /* gaussian deviation, > 0 */
    double zipf_exp;   /* zipfian exponent, > 0 */
};

/* Constants of the rejection-inversion zipf sampler. */
struct bench_zipf {
    double n;       /* number of ranks */
    double s;       /* exponent */
    double h_x1;    /* H(1.5) - 1 */
    double h_n;     /* H(n + 0.5) */
    double squeeze; /* k - x below this is accepted at once */
};

struct bench_keygen {
    enum bench_key_pattern pattern;
    uint64_t lo, hi; /* this generator's range (a slice for P) */
    uint64_t next;   /* S and P: the next key */
    double median, stddev;
    struct bench_zipf zipf;
};

/* Parses "S:R" style patterns into the set and get patterns. 0 or -EINVAL. */
int bench_keys_parse_pattern(const char *s, enum bench_key_pattern *set,
                             enum bench_key_pattern *get);

/* Sets up the generator of client `client` of `nclients`. -EINVAL when the
 * space is empty, ends at UINT64_MAX, or (for P) has fewer keys than nclients,
 * or when a gaussian deviation or zipf exponent is not positive. */
int bench_keys_init(struct bench_keygen *g, enum bench_key_pattern pattern,
                    const struct bench_key_space *ks, uint32_t client, uint32_t nclients);

/* Number of keys the client walks in one lap: its slice for P, else the range. */
uint64_t bench_keys_lap(const struct bench_keygen *g);

/* Next key number. */
uint64_t bench_keys_next(struct bench_keygen *g, struct bench_rng *rng);

/* Zipfian sampler on its own, for tests: sets up ranks 1..n with exponent s. */
void bench_zipf_init(struct bench_zipf *z, uint64_t n, double s);
uint64_t bench_zipf_next(const struct bench_zipf *z, struct bench_rng *rng);

#endif
