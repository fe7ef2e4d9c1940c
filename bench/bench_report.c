/* bench_report.c: the summary tables and the JSON documents (see bench_report.h).
 * Everything is built from rows: bench_report_row() turns one operation's
 * counters and histogram into rates (per second of the run's duration) and
 * latencies (milliseconds, at the percentiles cfg names); Totals is a merge
 * of the set and get statistics made here. KB/sec counts request and reply
 * bytes. A table (print_table) and a JSON section (json_section) take three
 * rows and the histograms behind them, so a single run, the best and worst
 * of several and their average all print the same way.
 * The average of --run-count keeps a merged copy of every run's statistics
 * (for latencies and counts) and the sum of each run's per-second figures
 * (for the mean rates): the mean of the runs' ops/sec, not the requests of
 * all runs over their summed time, which would weigh slow runs more.
 * The JSON follows memtier_benchmark's layout for the figures it shares with
 * it ("ALL STATS", or BEST / WORST / AGGREGATED AVERAGE sections; percentile
 * keys "p50.00", "p99.90", longer where two decimals would misname one), and
 * adds "counts" (exact integers for checks such as requests sent == replies),
 * "generator_cpu" (this process's CPU time per million requests) and each
 * row's histogram as [upper bound ms, count] pairs, one per non-empty slot. */
#include "bench_report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const double distribution[] = {0,  10, 20, 30, 40,   50,    60,     70,
                                      80, 90, 95, 99, 99.9, 99.99, 99.999, 100};

static const char *const row_names[BENCH_ROW_COUNT] = {"Sets", "Gets", "Totals"};

static const char rule[] = "============================================================="
                           "=============================================================";

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

void bench_report_row(const struct bench_config *cfg, const struct bench_op_stats *s,
                      uint64_t duration_ns, struct bench_row *row)
{
    double secs = duration_ns ? (double)duration_ns / 1e9 : 1.0;
    memset(row, 0, sizeof *row);
    row->count = s->count;
    row->hits = s->hits;
    row->misses = s->misses;
    row->errors = s->errors;
    row->verify_errors = s->verify_errors;
    row->moved = s->moved;
    row->ask = s->ask;
    row->moved_per_s = (double)s->moved / secs;
    row->ask_per_s = (double)s->ask / secs;
    row->ops_per_s = (double)s->count / secs;
    row->hits_per_s = (double)s->hits / secs;
    row->misses_per_s = (double)s->misses / secs;
    row->kb_per_s = (double)(s->bytes_in + s->bytes_out) / 1024.0 / secs;
    if (s->hist.total == 0)
        return;
    row->avg_ms = bench_hist_mean(&s->hist) / 1e6;
    row->min_ms = ms(s->hist.min_ns);
    row->max_ms = ms(s->hist.max_ns);
    for (uint32_t i = 0; i < cfg->npercentiles; i++)
        row->pct_ms[i] = ms(bench_hist_percentile(&s->hist, cfg->percentiles[i]));
}

/* Sets and gets merged; 0 or -ENOMEM. Finish t->hist with bench_hist_fini(). */
static int totals(const struct bench_stats *st, struct bench_op_stats *t)
{
    memset(t, 0, sizeof *t);
    if (bench_hist_init(&t->hist) != 0)
        return -ENOMEM;
    for (int i = 0; i < BENCH_OP_COUNT; i++) {
        const struct bench_op_stats *s = &st->op[i];
        t->count += s->count;
        t->hits += s->hits;
        t->misses += s->misses;
        t->errors += s->errors;
        t->verify_errors += s->verify_errors;
        t->moved += s->moved;
        t->ask += s->ask;
        t->bytes_in += s->bytes_in;
        t->bytes_out += s->bytes_out;
        bench_hist_merge(&t->hist, &s->hist);
    }
    return 0;
}

/* Rows and, in tot, the Totals statistics behind the third (caller finishes tot.hist). */
static int rows_with_totals(const struct bench_config *cfg, const struct bench_result *res,
                            struct bench_row rows[BENCH_ROW_COUNT], struct bench_op_stats *tot)
{
    if (totals(&res->stats, tot) != 0)
        return -ENOMEM;
    bench_report_row(cfg, &res->stats.op[BENCH_OP_SET], res->duration_ns, &rows[BENCH_ROW_SETS]);
    bench_report_row(cfg, &res->stats.op[BENCH_OP_GET], res->duration_ns, &rows[BENCH_ROW_GETS]);
    bench_report_row(cfg, tot, res->duration_ns, &rows[BENCH_ROW_TOTALS]);
    return 0;
}

int bench_report_rows(const struct bench_config *cfg, const struct bench_result *res,
                      struct bench_row rows[BENCH_ROW_COUNT])
{
    struct bench_op_stats tot;
    int rc = rows_with_totals(cfg, res, rows, &tot);
    if (rc == 0)
        bench_hist_fini(&tot.hist);
    return rc;
}

/* "p99.9 Latency": the column heading of a percentile. */
static void pct_heading(char *buf, size_t len, double p)
{
    snprintf(buf, len, "p%g Latency", p);
}

/* "p99.90": memtier's JSON key, two decimals unless they would name another number. */
static void pct_key(char *buf, size_t len, double p)
{
    snprintf(buf, len, "p%.2f", p);
    if (strtod(buf + 1, NULL) != p)
        snprintf(buf, len, "p%.10g", p);
}

static int pct_width(double p)
{
    char h[48];
    pct_heading(h, sizeof h, p);
    return strlen(h) < 15 ? 15 : (int)strlen(h);
}

static void print_row(FILE *out, const struct bench_config *cfg, const char *name,
                      const struct bench_row *r, bool gets)
{
    if (gets)
        fprintf(out, "%-6s %12.2f %12.2f %12.2f", name, r->ops_per_s, r->hits_per_s,
                r->misses_per_s);
    else
        fprintf(out, "%-6s %12.2f %12s %12s", name, r->ops_per_s, "---", "---");
    if (cfg->cluster_mode)
        fprintf(out, " %12.2f %12.2f", r->moved_per_s, r->ask_per_s);
    fprintf(out, " %15.5f", r->avg_ms);
    for (uint32_t i = 0; i < cfg->npercentiles; i++)
        fprintf(out, " %*.5f", pct_width(cfg->percentiles[i]), r->pct_ms[i]);
    fprintf(out, " %12.2f\n", r->kb_per_s);
}

static void print_table(FILE *out, const struct bench_config *cfg, const char *title,
                        const struct bench_row rows[BENCH_ROW_COUNT])
{
    fprintf(out, "\n%s\n%s\n", title, rule);
    fprintf(out, "%-6s %12s %12s %12s", "Type", "Ops/sec", "Hits/sec", "Misses/sec");
    if (cfg->cluster_mode)
        fprintf(out, " %12s %12s", "MOVED/sec", "ASK/sec");
    fprintf(out, " %15s", "Avg. Latency");
    for (uint32_t i = 0; i < cfg->npercentiles; i++) {
        char h[48];
        pct_heading(h, sizeof h, cfg->percentiles[i]);
        fprintf(out, " %*s", pct_width(cfg->percentiles[i]), h);
    }
    fprintf(out, " %12s\n%s\n", "KB/sec", rule);
    for (int i = 0; i < BENCH_ROW_COUNT; i++)
        print_row(out, cfg, row_names[i], &rows[i], i != BENCH_ROW_SETS);
}

/* The exact counts, the unsent warning and the generator's CPU. */
static void print_counts(FILE *out, const struct bench_config *cfg, const struct bench_result *res,
                         const struct bench_row *all)
{
    fprintf(out,
            "\nrequests %" PRIu64 ", replies %" PRIu64 ", errors %" PRIu64
            ", verify errors %" PRIu64 ", lost connections %" PRIu64 ", %.3f s\n",
            res->stats.sent, res->stats.replies, all->errors, all->verify_errors,
            res->stats.conn_errors, (double)res->duration_ns / 1e9);
    if (cfg->cluster_mode)
        fprintf(out, "cluster: %" PRIu64 " MOVED and %" PRIu64 " ASK replies followed\n",
                all->moved, all->ask);
    if (res->stats.unsent)
        fprintf(out,
                "WARNING: %" PRIu64 " requests due under --rate-limiting were never sent: the "
                "server fell behind the schedule by more than --test-time, so the figures above "
                "leave them out and the run counts as failed\n",
                res->stats.unsent);
    double mreq = (double)res->stats.replies / 1e6;
    fprintf(out, "generator CPU: %.3f s user, %.3f s sys, %.3f s per million requests\n",
            res->cpu_user_s, res->cpu_sys_s,
            mreq > 0 ? (res->cpu_user_s + res->cpu_sys_s) / mreq : 0.0);
}

static void print_distribution(FILE *out, const char *name, const struct bench_hist *h)
{
    if (h->total == 0)
        return;
    for (size_t i = 0; i < sizeof distribution / sizeof distribution[0]; i++)
        fprintf(out, "%-6s %15.3f %10.3f\n", name, ms(bench_hist_percentile(h, distribution[i])),
                distribution[i]);
}

/* Table, counts and distribution of a result whose rows are already made. */
static void print_result(FILE *out, const struct bench_config *cfg, const char *title,
                         const struct bench_result *res,
                         const struct bench_row rows[BENCH_ROW_COUNT])
{
    print_table(out, cfg, title, rows);
    print_counts(out, cfg, res, &rows[BENCH_ROW_TOTALS]);
    if (cfg->hide_histogram)
        return;
    fprintf(out, "\nRequest Latency Distribution\n%-6s %15s %10s\n%s\n", "Type", "<= msec",
            "Percent", rule);
    print_distribution(out, "SET", &res->stats.op[BENCH_OP_SET].hist);
    fprintf(out, "---\n");
    print_distribution(out, "GET", &res->stats.op[BENCH_OP_GET].hist);
    fprintf(out, "---\n");
}

void bench_report_text(FILE *out, const struct bench_config *cfg, const char *title,
                       const struct bench_result *res)
{
    struct bench_row rows[BENCH_ROW_COUNT];
    if (bench_report_rows(cfg, res, rows) != 0) {
        fprintf(out, "out of memory while reporting\n");
        return;
    }
    print_result(out, cfg, title, res, rows);
}

int bench_average_init(struct bench_average *avg)
{
    memset(avg, 0, sizeof *avg);
    return bench_result_init(&avg->sum);
}

void bench_average_fini(struct bench_average *avg)
{
    bench_result_fini(&avg->sum);
}

int bench_average_add(struct bench_average *avg, const struct bench_config *cfg,
                      const struct bench_result *res)
{
    struct bench_row rows[BENCH_ROW_COUNT];
    if (bench_report_rows(cfg, res, rows) != 0)
        return -ENOMEM;
    struct bench_result *sum = &avg->sum;
    bench_stats_merge(&sum->stats, &res->stats);
    sum->duration_ns += res->duration_ns;
    sum->cpu_user_s += res->cpu_user_s;
    sum->cpu_sys_s += res->cpu_sys_s;
    if (avg->runs == 0)
        sum->start_unix_ms = res->start_unix_ms;
    sum->end_unix_ms = res->end_unix_ms;
    if (!sum->error[0] && res->error[0] && cfg->run_count > 1)
        snprintf(sum->error, sizeof sum->error, "run %u: %.200s", avg->runs + 1, res->error);
    else if (!sum->error[0] && res->error[0])
        snprintf(sum->error, sizeof sum->error, "%s", res->error);
    for (int i = 0; i < BENCH_ROW_COUNT; i++) {
        avg->ops_per_s[i] += rows[i].ops_per_s;
        avg->hits_per_s[i] += rows[i].hits_per_s;
        avg->misses_per_s[i] += rows[i].misses_per_s;
        avg->kb_per_s[i] += rows[i].kb_per_s;
        avg->moved_per_s[i] += rows[i].moved_per_s;
        avg->ask_per_s[i] += rows[i].ask_per_s;
    }
    avg->runs++;
    return 0;
}

/* Replaces the rows' rates (made from the summed counts) by the runs' mean. */
static void mean_rates(const struct bench_average *avg, struct bench_row rows[BENCH_ROW_COUNT])
{
    double n = avg->runs ? (double)avg->runs : 1.0;
    for (int i = 0; i < BENCH_ROW_COUNT; i++) {
        rows[i].ops_per_s = avg->ops_per_s[i] / n;
        rows[i].hits_per_s = avg->hits_per_s[i] / n;
        rows[i].misses_per_s = avg->misses_per_s[i] / n;
        rows[i].kb_per_s = avg->kb_per_s[i] / n;
        rows[i].moved_per_s = avg->moved_per_s[i] / n;
        rows[i].ask_per_s = avg->ask_per_s[i] / n;
    }
}

int bench_average_rows(const struct bench_config *cfg, const struct bench_average *avg,
                       struct bench_row rows[BENCH_ROW_COUNT])
{
    int rc = bench_report_rows(cfg, &avg->sum, rows);
    if (rc == 0)
        mean_rates(avg, rows);
    return rc;
}

static void average_title(char *buf, size_t len, const struct bench_average *avg)
{
    snprintf(buf, len, "AGGREGATED AVERAGE RESULTS (%u runs)", avg->runs);
}

void bench_report_average_text(FILE *out, const struct bench_config *cfg,
                               const struct bench_average *avg)
{
    struct bench_row rows[BENCH_ROW_COUNT];
    if (bench_average_rows(cfg, avg, rows) != 0) {
        fprintf(out, "out of memory while reporting\n");
        return;
    }
    char title[64];
    average_title(title, sizeof title, avg);
    print_result(out, cfg, title, &avg->sum, rows);
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void json_row(FILE *f, const struct bench_config *cfg, const char *name,
                     const struct bench_row *r, const struct bench_hist *h)
{
    fprintf(f, "    \"%s\": {\n", name);
    fprintf(f, "      \"Count\": %" PRIu64 ",\n", r->count);
    fprintf(f, "      \"Ops/sec\": %.2f,\n", r->ops_per_s);
    fprintf(f, "      \"Hits/sec\": %.2f,\n", r->hits_per_s);
    fprintf(f, "      \"Misses/sec\": %.2f,\n", r->misses_per_s);
    if (cfg->cluster_mode) {
        fprintf(f, "      \"MOVED/sec\": %.2f,\n", r->moved_per_s);
        fprintf(f, "      \"ASK/sec\": %.2f,\n", r->ask_per_s);
    }
    fprintf(f, "      \"Errors\": %" PRIu64 ",\n", r->errors);
    fprintf(f, "      \"Verify Errors\": %" PRIu64 ",\n", r->verify_errors);
    fprintf(f, "      \"Average Latency\": %.6f,\n", r->avg_ms);
    fprintf(f, "      \"Min Latency\": %.6f,\n", r->min_ms);
    fprintf(f, "      \"Max Latency\": %.6f,\n", r->max_ms);
    fprintf(f, "      \"Percentile Latencies\": {");
    for (uint32_t i = 0; i < cfg->npercentiles; i++) {
        char key[40];
        pct_key(key, sizeof key, cfg->percentiles[i]);
        fprintf(f, "%s\"%s\": %.6f", i ? ", " : "", key, r->pct_ms[i]);
    }
    fprintf(f, "},\n");
    fprintf(f, "      \"KB/sec\": %.2f,\n", r->kb_per_s);
    fprintf(f, "      \"Histogram\": [");
    uint32_t cursor = 0;
    struct bench_hist_slot slot;
    bool first = true;
    while (bench_hist_next(h, &cursor, &slot)) {
        fprintf(f, "%s[%.6f, %" PRIu64 "]", first ? "" : ", ", ms(slot.high_ns), slot.count);
        first = false;
    }
    fprintf(f, "]\n    },\n");
}

/* One section ("ALL STATS", "BEST RUN RESULTS", ...): the rows, their
 * histograms (Totals from tot) and the runtime of res. */
static void json_section(FILE *f, const struct bench_config *cfg, const char *title,
                         const struct bench_result *res,
                         const struct bench_row rows[BENCH_ROW_COUNT],
                         const struct bench_op_stats *tot)
{
    const struct bench_hist *hists[BENCH_ROW_COUNT] = {
        &res->stats.op[BENCH_OP_SET].hist, &res->stats.op[BENCH_OP_GET].hist, &tot->hist};
    fprintf(f, "  ");
    json_string(f, title);
    fprintf(f, ": {\n");
    for (int i = 0; i < BENCH_ROW_COUNT; i++)
        json_row(f, cfg, row_names[i], &rows[i], hists[i]);
    fprintf(f,
            "    \"Runtime\": {\"Start time\": %" PRIu64 ", \"Finish time\": %" PRIu64
            ", \"Total duration\": %.3f}\n  },\n",
            res->start_unix_ms, res->end_unix_ms, ms(res->duration_ns));
}

/* A section for one run's result. 0 or -ENOMEM. */
static int json_result(FILE *f, const struct bench_config *cfg, const char *title,
                       const struct bench_result *res)
{
    struct bench_row rows[BENCH_ROW_COUNT];
    struct bench_op_stats tot;
    if (rows_with_totals(cfg, res, rows, &tot) != 0)
        return -ENOMEM;
    json_section(f, cfg, title, res, rows, &tot);
    bench_hist_fini(&tot.hist);
    return 0;
}

static void json_config(FILE *f, const struct bench_config *cfg)
{
    fprintf(f, "  \"configuration\": {\n    \"server\": ");
    json_string(f, cfg->host);
    /* as a number: "--port 080" is a valid port but 080 is not valid JSON */
    fprintf(f, ",\n    \"port\": %lu,\n    \"protocol\": \"%s\",\n", strtoul(cfg->port, NULL, 10),
            bench_opts_protocol_name(cfg->protocol));
    fprintf(f, "    \"threads\": %u,\n    \"clients\": %u,\n    \"pipeline\": %u,\n", cfg->threads,
            cfg->clients, cfg->pipeline);
    fprintf(f, "    \"ratio\": \"%u:%u\",\n", cfg->ratio_set, cfg->ratio_get);
    fprintf(f, "    \"data_size_min\": %u,\n    \"data_size_max\": %u,\n", cfg->data_size_min,
            cfg->data_size_max);
    fprintf(f, "    \"key_pattern\": \"%c:%c\",\n", (char)cfg->set_pattern, (char)cfg->get_pattern);
    fprintf(f, "    \"key_minimum\": %" PRIu64 ",\n    \"key_maximum\": %" PRIu64 ",\n",
            cfg->keys.min, cfg->keys.max);
    fprintf(f, "    \"key_prefix\": ");
    json_string(f, cfg->key_prefix);
    fprintf(f, ",\n    \"test_time\": %" PRIu64 ",\n", cfg->test_time_s);
    if (cfg->requests_allkeys)
        fprintf(f, "    \"requests\": \"allkeys\",\n");
    else
        fprintf(f, "    \"requests\": %" PRIu64 ",\n", cfg->requests);
    fprintf(f, "    \"rate_limiting\": %" PRIu64 ",\n", cfg->rate_limit);
    fprintf(f, "    \"run_count\": %u,\n", cfg->run_count);
    /* whether credentials were sent, never the credentials themselves */
    fprintf(f, "    \"authenticate\": %s,\n", cfg->auth ? "true" : "false");
    fprintf(f, "    \"select_db\": %u,\n", cfg->select_db);
    fprintf(f, "    \"cluster_mode\": %s,\n", cfg->cluster_mode ? "true" : "false");
    fprintf(f, "    \"seed\": %" PRIu64 ",\n", cfg->seed);
    fprintf(f, "    \"distinct_client_seed\": %s,\n", cfg->distinct_client_seed ? "true" : "false");
    fprintf(f, "    \"verify\": %s\n  },\n", cfg->verify ? "true" : "false");
}

/* "counts", "generator_cpu", "ok" and "error": the end of every document. */
static int json_tail(FILE *f, const struct bench_result *res)
{
    struct bench_op_stats t;
    if (totals(&res->stats, &t) != 0)
        return -ENOMEM;
    const struct bench_op_stats *sets = &res->stats.op[BENCH_OP_SET];
    const struct bench_op_stats *gets = &res->stats.op[BENCH_OP_GET];
    fprintf(f, "  \"counts\": {\n");
    fprintf(f, "    \"requests_sent\": %" PRIu64 ",\n", res->stats.sent);
    fprintf(f, "    \"replies\": %" PRIu64 ",\n", res->stats.replies);
    fprintf(f, "    \"sets\": %" PRIu64 ",\n", sets->count);
    fprintf(f, "    \"gets\": %" PRIu64 ",\n", gets->count);
    fprintf(f, "    \"hits\": %" PRIu64 ",\n", gets->hits);
    fprintf(f, "    \"misses\": %" PRIu64 ",\n", gets->misses);
    fprintf(f, "    \"set_errors\": %" PRIu64 ",\n", sets->errors);
    fprintf(f, "    \"get_errors\": %" PRIu64 ",\n", gets->errors);
    fprintf(f, "    \"errors\": %" PRIu64 ",\n", t.errors);
    fprintf(f, "    \"verify_errors\": %" PRIu64 ",\n", t.verify_errors);
    fprintf(f, "    \"moved\": %" PRIu64 ",\n", t.moved);
    fprintf(f, "    \"ask\": %" PRIu64 ",\n", t.ask);
    fprintf(f, "    \"connection_errors\": %" PRIu64 ",\n", res->stats.conn_errors);
    fprintf(f, "    \"requests_due_unsent\": %" PRIu64 ",\n", res->stats.unsent);
    fprintf(f, "    \"histogram_clamped\": %" PRIu64 "\n  },\n", t.hist.clamped);
    bench_hist_fini(&t.hist);
    double mreq = (double)res->stats.replies / 1e6;
    fprintf(f,
            "  \"generator_cpu\": {\"user_s\": %.6f, \"sys_s\": %.6f, "
            "\"cpu_s_per_million_requests\": %.6f},\n",
            res->cpu_user_s, res->cpu_sys_s,
            mreq > 0 ? (res->cpu_user_s + res->cpu_sys_s) / mreq : 0.0);
    fprintf(f, "  \"ok\": %s,\n  \"error\": ", bench_report_ok(res) ? "true" : "false");
    json_string(f, res->error);
    fprintf(f, "\n}\n");
    return 0;
}

/* Closes f; rc, or the first write error. */
static int json_close(FILE *f, int rc)
{
    if (rc == 0 && ferror(f))
        rc = -EIO;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

static FILE *json_open(const char *path, const struct bench_config *cfg, int *rc)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        *rc = -errno;
        return NULL;
    }
    *rc = 0;
    fprintf(f, "{\n");
    json_config(f, cfg);
    return f;
}

int bench_report_json(const char *path, const struct bench_config *cfg,
                      const struct bench_result *res)
{
    int rc;
    FILE *f = json_open(path, cfg, &rc);
    if (!f)
        return rc;
    rc = json_result(f, cfg, "ALL STATS", res);
    if (rc == 0)
        rc = json_tail(f, res);
    return json_close(f, rc);
}

int bench_report_json_runs(const char *path, const struct bench_config *cfg,
                           const struct bench_result *best, const struct bench_result *worst,
                           const struct bench_average *avg)
{
    int rc;
    FILE *f = json_open(path, cfg, &rc);
    if (!f)
        return rc;
    rc = json_result(f, cfg, "BEST RUN RESULTS", best);
    if (rc == 0)
        rc = json_result(f, cfg, "WORST RUN RESULTS", worst);
    struct bench_row rows[BENCH_ROW_COUNT];
    struct bench_op_stats tot;
    if (rc == 0)
        rc = rows_with_totals(cfg, &avg->sum, rows, &tot);
    if (rc == 0) {
        char title[64];
        average_title(title, sizeof title, avg);
        mean_rates(avg, rows);
        json_section(f, cfg, title, &avg->sum, rows, &tot);
        bench_hist_fini(&tot.hist);
        rc = json_tail(f, &avg->sum);
    }
    return json_close(f, rc);
}

/* Errors and verify mismatches of both operations. */
static void error_counts(const struct bench_stats *s, uint64_t *errors, uint64_t *verify)
{
    *errors = *verify = 0;
    for (int i = 0; i < BENCH_OP_COUNT; i++) {
        *errors += s->op[i].errors;
        *verify += s->op[i].verify_errors;
    }
}

bool bench_report_ok(const struct bench_result *res)
{
    const struct bench_stats *s = &res->stats;
    uint64_t errors, verify;
    error_counts(s, &errors, &verify);
    return !res->error[0] && s->conn_errors == 0 && s->sent == s->replies && errors == 0 &&
           verify == 0 && s->unsent == 0;
}

/* Appends "; " (unless first) and one formatted reason to buf. */
static void why_add(char *buf, size_t len, const char *fmt, ...)
{
    size_t n = strlen(buf);
    if (n && n + 2 < len) {
        memcpy(buf + n, "; ", 3);
        n += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, len - n, fmt, ap);
    va_end(ap);
}

void bench_report_why(const struct bench_result *res, char *buf, size_t len)
{
    const struct bench_stats *s = &res->stats;
    uint64_t errors, verify;
    error_counts(s, &errors, &verify);
    buf[0] = '\0';
    if (res->error[0])
        why_add(buf, len, "%s", res->error);
    if (errors)
        why_add(buf, len, "%" PRIu64 " error replies", errors);
    if (verify)
        why_add(buf, len, "%" PRIu64 " values failed verification", verify);
    if (s->conn_errors)
        why_add(buf, len, "%" PRIu64 " connections lost", s->conn_errors);
    if (s->sent > s->replies)
        why_add(buf, len, "%" PRIu64 " requests unanswered", s->sent - s->replies);
    if (s->unsent)
        why_add(buf, len,
                "%" PRIu64 " requests due under --rate-limiting never sent (the server fell "
                "behind the schedule for longer than the drain allows)",
                s->unsent);
}
