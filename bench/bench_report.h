/* bench_report.h: what a run prints and writes.
 * Text in memtier_benchmark's shape (a table of Sets, Gets and Totals with
 * ops/sec, hits/sec, misses/sec, average, p50, p99 and p99.9 latency in
 * milliseconds and KB/sec, then the latency distribution), and a JSON
 * document with the same figures, the exact counts and every non-empty
 * histogram slot.
 * Threads: main thread, after bench_run() has returned.
 * Errors: bench_report_json() returns 0 or a negative errno from the file. */
#ifndef RINGKV_BENCH_REPORT_H
#define RINGKV_BENCH_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "bench_opts.h"
#include "bench_run.h"

/* Figures of one row (Sets, Gets or Totals). */
struct bench_row {
    uint64_t count, hits, misses, errors, verify_errors;
    double ops_per_s, hits_per_s, misses_per_s, kb_per_s;
    double avg_ms, min_ms, max_ms, p50_ms, p99_ms, p999_ms;
};

/* Computes a row from one operation's statistics over duration_ns. */
void bench_report_row(const struct bench_op_stats *s, uint64_t duration_ns, struct bench_row *row);

/* Prints the memtier-style summary (and the distribution unless hidden). */
void bench_report_text(FILE *out, const struct bench_config *cfg, const struct bench_result *res);

/* Writes the JSON document to path. */
int bench_report_json(const char *path, const struct bench_config *cfg,
                      const struct bench_result *res);

/* True when the run counts as a success: no lost connections or replies,
 * no error replies, no verify mismatches, no error message. */
bool bench_report_ok(const struct bench_result *res);

#endif
