/* bench_run.h: one measured run of the load generator.
 * bench_run() opens threads x clients connections, drives them for the
 * configured number of requests or seconds, and returns merged statistics.
 * Each thread owns its connections and statistics (an epoll loop, no locks
 * on the request path); the calling thread only prints progress from
 * per-thread counters and merges the results once the threads are joined.
 * With --cluster-mode the slot map comes from CLUSTER SLOTS before the
 * threads start; each thread corrects its own copy on -MOVED.
 * Ownership: the caller initialises a bench_result with bench_result_init()
 *   and frees it with bench_result_fini().
 * Errors: bench_run() returns 0 when the run took place (connection losses,
 *   error replies and verify mismatches are counted, not returned), or a
 *   negative errno when it could not start (resolve, connect, memory), with
 *   the reason in result->error. */
#ifndef RINGKV_BENCH_RUN_H
#define RINGKV_BENCH_RUN_H

#include <stdint.h>
#include <stdio.h>

#include "bench_hist.h"
#include "bench_opts.h"

enum bench_op { BENCH_OP_SET, BENCH_OP_GET, BENCH_OP_COUNT };

struct bench_op_stats {
    uint64_t count;         /* replies received */
    uint64_t hits, misses;  /* gets only */
    uint64_t errors;        /* error replies, and replies of the wrong kind */
    uint64_t verify_errors; /* hits whose value failed bench_proto_value_check() */
    uint64_t moved, ask;    /* --cluster-mode: -MOVED and -ASK replies followed */
    uint64_t bytes_out;     /* request bytes */
    uint64_t bytes_in;      /* reply bytes */
    struct bench_hist hist; /* latency of every reply, nanoseconds */
};

struct bench_stats {
    struct bench_op_stats op[BENCH_OP_COUNT];
    uint64_t sent;        /* requests written */
    uint64_t replies;     /* replies received, all kinds */
    uint64_t conn_errors; /* connections lost during the run */
    uint64_t unsent;      /* rate limit: due before the deadline, never sent (server behind) */
};

struct bench_result {
    struct bench_stats stats;
    uint64_t duration_ns; /* first request to last reply */
    uint64_t start_unix_ms, end_unix_ms;
    double cpu_user_s, cpu_sys_s; /* this process, all threads, during the run */
    char error[256];              /* why the run failed or was cut short; "" if not */
};

/* 0 or -ENOMEM. */
int bench_stats_init(struct bench_stats *s);
void bench_stats_fini(struct bench_stats *s);
void bench_stats_merge(struct bench_stats *dst, const struct bench_stats *src);

int bench_result_init(struct bench_result *r);
void bench_result_fini(struct bench_result *r);

/* Runs the load cfg describes. label names the run in progress lines;
 * progress (stderr, or NULL for none) gets one line a second. */
int bench_run(const struct bench_config *cfg, const char *label, FILE *progress,
              struct bench_result *result);

#endif
