/* bench_opts.h: ringkv-bench's settings and command line.
 * Flag names follow memtier_benchmark's (-s -p -t -c --pipeline --ratio ...);
 * bench_opts_usage() lists them all. The defaults are memtier's, except that
 * --key-pattern also takes Z (zipfian), and --verify and --prepopulate are ours.
 * --authenticate and --select-db are redis only: memcached's text protocol has
 * neither, so the parser refuses them with -P memcache_text. --cluster-mode
 * (Redis Cluster: CLUSTER SLOTS, each key to its slot's master) is redis only
 * too, and refuses --select-db, as Redis Cluster has database 0 alone.
 * Threads: parsed once on the main thread; read-only afterwards.
 * Ownership: string settings point into argv, which must outlive the config.
 * Errors: bench_opts_parse() returns -EINVAL and a message in err. */
#ifndef RINGKV_BENCH_OPTS_H
#define RINGKV_BENCH_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bench_keys.h"
#include "bench_proto.h"

#define BENCH_MAX_PREFIX 200
/* Most percentiles --print-percentiles may name. */
#define BENCH_MAX_PERCENTILES 16
/* Longest --authenticate credentials, in bytes. */
#define BENCH_MAX_AUTH 1024

struct bench_config {
    const char *host;
    const char *port; /* a number, kept as text for getaddrinfo */
    enum bench_protocol protocol;
    uint32_t threads;
    uint32_t clients;              /* connections per thread */
    uint32_t pipeline;             /* requests in flight per connection */
    uint32_t ratio_set, ratio_get; /* sets and gets in each cycle */
    uint32_t data_size_min, data_size_max;
    enum bench_key_pattern set_pattern, get_pattern;
    struct bench_key_space keys;
    const char *key_prefix;
    uint64_t test_time_s;      /* 0: bounded by requests */
    uint64_t requests;         /* per connection; 0 with test_time_s */
    bool requests_allkeys;     /* requests = the connection's slice of the range */
    uint64_t rate_limit;       /* requests per second per connection, 0: none */
    uint64_t seed;             /* base seed */
    bool distinct_client_seed; /* client i uses seed + i */
    bool randomize;            /* seed from the clock */
    bool verify;               /* checked values, reads verified */
    bool prepopulate;          /* set every key once before the run */
    bool hide_histogram;
    bool hide_progress;
    const char *json_out; /* NULL: no JSON */
    const char *out_file; /* text results; NULL: stdout */
    const char *auth;     /* --authenticate credentials, PASSWORD or USER:PASSWORD; NULL: none */
    uint32_t select_db;   /* SELECT this database on each connection; 0: send nothing */
    bool cluster_mode;    /* --cluster-mode: the server is a Redis Cluster node */
    uint32_t run_count;   /* whole runs, each reported, then best, worst and average */
    uint32_t npercentiles;
    double percentiles[BENCH_MAX_PERCENTILES]; /* in the table and JSON, in order given */
    bool show_help, show_version;
};

/* Fills cfg with the defaults. */
void bench_opts_defaults(struct bench_config *cfg);

/* Parses argv over the defaults and checks the result. 0, or -EINVAL with a
 * one-line reason in err (errlen bytes). Resets getopt, so it may be called again. */
int bench_opts_parse(struct bench_config *cfg, int argc, char **argv, char *err, size_t errlen);

/* Longest key the settings produce, in bytes. */
size_t bench_opts_max_key_len(const struct bench_config *cfg);

/* The protocol's name as --protocol spells it. */
const char *bench_opts_protocol_name(enum bench_protocol p);

void bench_opts_usage(FILE *out);

#endif
