/* bench_report.h: what a run prints and writes.
 * Text in memtier_benchmark's shape (a table of Sets, Gets and Totals with
 * ops/sec, hits/sec, misses/sec, average latency, one column per
 * --print-percentiles value (default p50, p99, p99.9) in milliseconds and
 * KB/sec, then the latency distribution; with --cluster-mode also MOVED/sec
 * and ASK/sec after Misses/sec, as memtier prints them), and a JSON document with the same
 * figures, the exact counts and every non-empty histogram slot.
 * --run-count: each run is printed as "RUN #i RESULTS"; then the best and
 * worst runs (by Totals ops/sec) and a bench_average of all of them, whose
 * per-second figures are the mean of the runs' and whose latencies come from
 * the runs' histograms merged, so every request weighs the same.
 * Threads: main thread, after bench_run() has returned.
 * Ownership: a bench_average holds its own copy of the counts and histograms;
 *   free it with bench_average_fini().
 * Errors: bench_report_json*() and bench_average_init() return 0 or a
 *   negative errno (from the file, or -ENOMEM). */
#ifndef RINGKV_BENCH_REPORT_H
#define RINGKV_BENCH_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "bench_opts.h"
#include "bench_run.h"

/* Figures of one row (Sets, Gets or Totals). */
struct bench_row {
    uint64_t count, hits, misses, errors, verify_errors, moved, ask;
    double ops_per_s, hits_per_s, misses_per_s, kb_per_s;
    double moved_per_s, ask_per_s; /* --cluster-mode */
    double avg_ms, min_ms, max_ms;
    double pct_ms[BENCH_MAX_PERCENTILES]; /* at cfg->percentiles[i] */
};

enum bench_row_kind { BENCH_ROW_SETS, BENCH_ROW_GETS, BENCH_ROW_TOTALS, BENCH_ROW_COUNT };

/* The mean of several runs (--run-count), built one run at a time. */
struct bench_average {
    struct bench_result sum; /* every run's counts and histograms added, durations and CPU summed */
    double ops_per_s[BENCH_ROW_COUNT], hits_per_s[BENCH_ROW_COUNT];
    double misses_per_s[BENCH_ROW_COUNT], kb_per_s[BENCH_ROW_COUNT]; /* summed over runs */
    double moved_per_s[BENCH_ROW_COUNT], ask_per_s[BENCH_ROW_COUNT];
    uint32_t runs;
};

/* Computes a row from one operation's statistics over duration_ns, with the
 * percentiles cfg asks for. */
void bench_report_row(const struct bench_config *cfg, const struct bench_op_stats *s,
                      uint64_t duration_ns, struct bench_row *row);

/* The Sets, Gets and Totals rows of a run. 0 or -ENOMEM. */
int bench_report_rows(const struct bench_config *cfg, const struct bench_result *res,
                      struct bench_row rows[BENCH_ROW_COUNT]);

/* Prints one run's memtier-style table under title ("ALL STATS", "RUN #2
 * RESULTS", ...), its counts, and the distribution unless hidden. */
void bench_report_text(FILE *out, const struct bench_config *cfg, const char *title,
                       const struct bench_result *res);

/* Writes the JSON document of a single run to path ("ALL STATS"). */
int bench_report_json(const char *path, const struct bench_config *cfg,
                      const struct bench_result *res);

int bench_average_init(struct bench_average *avg);
void bench_average_fini(struct bench_average *avg);

/* Adds one finished run. 0 or -ENOMEM. */
int bench_average_add(struct bench_average *avg, const struct bench_config *cfg,
                      const struct bench_result *res);

/* The averaged rows: mean per-second figures, latencies of the merged histograms. */
int bench_average_rows(const struct bench_config *cfg, const struct bench_average *avg,
                       struct bench_row rows[BENCH_ROW_COUNT]);

/* Prints "AGGREGATED AVERAGE RESULTS (N runs)": the averaged table, the counts
 * of all runs together and their merged distribution. */
void bench_report_average_text(FILE *out, const struct bench_config *cfg,
                               const struct bench_average *avg);

/* Writes the JSON document of several runs to path, in memtier's layout:
 * "BEST RUN RESULTS", "WORST RUN RESULTS", "AGGREGATED AVERAGE RESULTS (N
 * runs)"; "counts" and "ok" cover all runs together. */
int bench_report_json_runs(const char *path, const struct bench_config *cfg,
                           const struct bench_result *best, const struct bench_result *worst,
                           const struct bench_average *avg);

/* True when the run counts as a success: no lost connections or replies, no
 * error replies, no verify mismatches, no request a rate limit left unsent
 * (the server fell behind the schedule for longer than the drain allows), no
 * error message. */
bool bench_report_ok(const struct bench_result *res);

/* Why bench_report_ok() is false, in one line (to buf, len bytes); "" when it is true. */
void bench_report_why(const struct bench_result *res, char *buf, size_t len);

#endif
