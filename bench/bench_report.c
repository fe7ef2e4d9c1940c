/* bench_report.c: the summary table and the JSON document (see bench_report.h).
 * Both are built from the same rows: bench_report_row() turns one
 * operation's counters and histogram into rates (per second of the run's
 * duration) and latencies (milliseconds); Totals is a merge of the set and
 * get statistics made here. KB/sec counts request and reply bytes.
 * The JSON follows memtier_benchmark's "ALL STATS" layout for the figures it
 * shares with it, and adds "counts" (exact integers for checks such as
 * requests sent == replies), "generator_cpu" (this process's CPU time per
 * million requests) and each row's histogram as [upper bound ms, count]
 * pairs, one per non-empty slot. */
#include "bench_report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const double percentiles[] = {0,  10, 20, 30, 40,   50,    60,     70,
                                     80, 90, 95, 99, 99.9, 99.99, 99.999, 100};

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

void bench_report_row(const struct bench_op_stats *s, uint64_t duration_ns, struct bench_row *row)
{
    double secs = duration_ns ? (double)duration_ns / 1e9 : 1.0;
    memset(row, 0, sizeof *row);
    row->count = s->count;
    row->hits = s->hits;
    row->misses = s->misses;
    row->errors = s->errors;
    row->verify_errors = s->verify_errors;
    row->ops_per_s = (double)s->count / secs;
    row->hits_per_s = (double)s->hits / secs;
    row->misses_per_s = (double)s->misses / secs;
    row->kb_per_s = (double)(s->bytes_in + s->bytes_out) / 1024.0 / secs;
    if (s->hist.total == 0)
        return;
    row->avg_ms = bench_hist_mean(&s->hist) / 1e6;
    row->min_ms = ms(s->hist.min_ns);
    row->max_ms = ms(s->hist.max_ns);
    row->p50_ms = ms(bench_hist_percentile(&s->hist, 50.0));
    row->p99_ms = ms(bench_hist_percentile(&s->hist, 99.0));
    row->p999_ms = ms(bench_hist_percentile(&s->hist, 99.9));
}

/* Sets and gets merged; 0 or -ENOMEM. */
static int totals(const struct bench_result *res, struct bench_op_stats *t)
{
    memset(t, 0, sizeof *t);
    if (bench_hist_init(&t->hist) != 0)
        return -ENOMEM;
    for (int i = 0; i < BENCH_OP_COUNT; i++) {
        const struct bench_op_stats *s = &res->stats.op[i];
        t->count += s->count;
        t->hits += s->hits;
        t->misses += s->misses;
        t->errors += s->errors;
        t->verify_errors += s->verify_errors;
        t->bytes_in += s->bytes_in;
        t->bytes_out += s->bytes_out;
        bench_hist_merge(&t->hist, &s->hist);
    }
    return 0;
}

static void print_row(FILE *out, const char *name, const struct bench_row *r, bool gets)
{
    if (gets)
        fprintf(out, "%-6s %12.2f %12.2f %12.2f", name, r->ops_per_s, r->hits_per_s,
                r->misses_per_s);
    else
        fprintf(out, "%-6s %12.2f %12s %12s", name, r->ops_per_s, "---", "---");
    fprintf(out, " %15.5f %15.5f %15.5f %15.5f %12.2f\n", r->avg_ms, r->p50_ms, r->p99_ms,
            r->p999_ms, r->kb_per_s);
}

static void print_distribution(FILE *out, const char *name, const struct bench_hist *h)
{
    if (h->total == 0)
        return;
    for (size_t i = 0; i < sizeof percentiles / sizeof percentiles[0]; i++)
        fprintf(out, "%-6s %15.3f %10.3f\n", name, ms(bench_hist_percentile(h, percentiles[i])),
                percentiles[i]);
}

void bench_report_text(FILE *out, const struct bench_config *cfg, const struct bench_result *res)
{
    struct bench_op_stats tot;
    if (totals(res, &tot) != 0) {
        fprintf(out, "out of memory while reporting\n");
        return;
    }
    struct bench_row sets, gets, all;
    bench_report_row(&res->stats.op[BENCH_OP_SET], res->duration_ns, &sets);
    bench_report_row(&res->stats.op[BENCH_OP_GET], res->duration_ns, &gets);
    bench_report_row(&tot, res->duration_ns, &all);
    static const char rule[] = "============================================================="
                               "=============================================================";
    fprintf(out, "\nALL STATS\n%s\n", rule);
    fprintf(out, "%-6s %12s %12s %12s %15s %15s %15s %15s %12s\n", "Type", "Ops/sec", "Hits/sec",
            "Misses/sec", "Avg. Latency", "p50 Latency", "p99 Latency", "p99.9 Latency", "KB/sec");
    fprintf(out, "%s\n", rule);
    print_row(out, "Sets", &sets, false);
    print_row(out, "Gets", &gets, true);
    print_row(out, "Totals", &all, true);
    fprintf(out,
            "\nrequests %" PRIu64 ", replies %" PRIu64 ", errors %" PRIu64
            ", verify errors %" PRIu64 ", lost connections %" PRIu64 ", %.3f s\n",
            res->stats.sent, res->stats.replies, all.errors, all.verify_errors,
            res->stats.conn_errors, (double)res->duration_ns / 1e9);
    if (res->stats.unsent)
        fprintf(out,
                "WARNING: %" PRIu64 " requests due under --rate-limiting were never sent: the "
                "server fell behind the schedule by more than --test-time, so the latencies "
                "above leave them out\n",
                res->stats.unsent);
    double mreq = (double)res->stats.replies / 1e6;
    fprintf(out, "generator CPU: %.3f s user, %.3f s sys, %.3f s per million requests\n",
            res->cpu_user_s, res->cpu_sys_s,
            mreq > 0 ? (res->cpu_user_s + res->cpu_sys_s) / mreq : 0.0);
    if (!cfg->hide_histogram) {
        fprintf(out, "\nRequest Latency Distribution\n%-6s %15s %10s\n%s\n", "Type", "<= msec",
                "Percent", rule);
        print_distribution(out, "SET", &res->stats.op[BENCH_OP_SET].hist);
        fprintf(out, "---\n");
        print_distribution(out, "GET", &res->stats.op[BENCH_OP_GET].hist);
        fprintf(out, "---\n");
    }
    bench_hist_fini(&tot.hist);
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

static void json_row(FILE *f, const char *name, const struct bench_op_stats *s,
                     uint64_t duration_ns, bool last)
{
    struct bench_row r;
    bench_report_row(s, duration_ns, &r);
    fprintf(f, "    \"%s\": {\n", name);
    fprintf(f, "      \"Count\": %" PRIu64 ",\n", r.count);
    fprintf(f, "      \"Ops/sec\": %.2f,\n", r.ops_per_s);
    fprintf(f, "      \"Hits/sec\": %.2f,\n", r.hits_per_s);
    fprintf(f, "      \"Misses/sec\": %.2f,\n", r.misses_per_s);
    fprintf(f, "      \"Errors\": %" PRIu64 ",\n", r.errors);
    fprintf(f, "      \"Verify Errors\": %" PRIu64 ",\n", r.verify_errors);
    fprintf(f, "      \"Average Latency\": %.6f,\n", r.avg_ms);
    fprintf(f, "      \"Min Latency\": %.6f,\n", r.min_ms);
    fprintf(f, "      \"Max Latency\": %.6f,\n", r.max_ms);
    fprintf(f,
            "      \"Percentile Latencies\": {\"p50.00\": %.6f, \"p99.00\": %.6f, "
            "\"p99.90\": %.6f},\n",
            r.p50_ms, r.p99_ms, r.p999_ms);
    fprintf(f, "      \"KB/sec\": %.2f,\n", r.kb_per_s);
    fprintf(f, "      \"Histogram\": [");
    uint32_t cursor = 0;
    struct bench_hist_slot slot;
    bool first = true;
    while (bench_hist_next(&s->hist, &cursor, &slot)) {
        fprintf(f, "%s[%.6f, %" PRIu64 "]", first ? "" : ", ", ms(slot.high_ns), slot.count);
        first = false;
    }
    fprintf(f, "]\n    }%s\n", last ? "" : ",");
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
    fprintf(f, "    \"seed\": %" PRIu64 ",\n", cfg->seed);
    fprintf(f, "    \"distinct_client_seed\": %s,\n", cfg->distinct_client_seed ? "true" : "false");
    fprintf(f, "    \"verify\": %s\n  },\n", cfg->verify ? "true" : "false");
}

static void json_counts(FILE *f, const struct bench_result *res, const struct bench_op_stats *t)
{
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
    fprintf(f, "    \"errors\": %" PRIu64 ",\n", t->errors);
    fprintf(f, "    \"verify_errors\": %" PRIu64 ",\n", t->verify_errors);
    fprintf(f, "    \"connection_errors\": %" PRIu64 ",\n", res->stats.conn_errors);
    fprintf(f, "    \"requests_due_unsent\": %" PRIu64 ",\n", res->stats.unsent);
    fprintf(f, "    \"histogram_clamped\": %" PRIu64 "\n  },\n", t->hist.clamped);
    double mreq = (double)res->stats.replies / 1e6;
    fprintf(f,
            "  \"generator_cpu\": {\"user_s\": %.6f, \"sys_s\": %.6f, "
            "\"cpu_s_per_million_requests\": %.6f},\n",
            res->cpu_user_s, res->cpu_sys_s,
            mreq > 0 ? (res->cpu_user_s + res->cpu_sys_s) / mreq : 0.0);
}

int bench_report_json(const char *path, const struct bench_config *cfg,
                      const struct bench_result *res)
{
    struct bench_op_stats tot;
    if (totals(res, &tot) != 0)
        return -ENOMEM;
    FILE *f = fopen(path, "w");
    if (!f) {
        int err = errno;
        bench_hist_fini(&tot.hist);
        return -err;
    }
    fprintf(f, "{\n");
    json_config(f, cfg);
    fprintf(f, "  \"ALL STATS\": {\n");
    json_row(f, "Sets", &res->stats.op[BENCH_OP_SET], res->duration_ns, false);
    json_row(f, "Gets", &res->stats.op[BENCH_OP_GET], res->duration_ns, false);
    json_row(f, "Totals", &tot, res->duration_ns, false);
    fprintf(f,
            "    \"Runtime\": {\"Start time\": %" PRIu64 ", \"Finish time\": %" PRIu64
            ", \"Total duration\": %.3f}\n  },\n",
            res->start_unix_ms, res->end_unix_ms, ms(res->duration_ns));
    json_counts(f, res, &tot);
    fprintf(f, "  \"ok\": %s,\n  \"error\": ", bench_report_ok(res) ? "true" : "false");
    json_string(f, res->error);
    fprintf(f, "\n}\n");
    bench_hist_fini(&tot.hist);
    int rc = ferror(f) ? -EIO : 0;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

bool bench_report_ok(const struct bench_result *res)
{
    const struct bench_stats *s = &res->stats;
    uint64_t errors = 0, verify = 0;
    for (int i = 0; i < BENCH_OP_COUNT; i++) {
        errors += s->op[i].errors;
        verify += s->op[i].verify_errors;
    }
    return !res->error[0] && s->conn_errors == 0 && s->sent == s->replies && errors == 0 &&
           verify == 0;
}
