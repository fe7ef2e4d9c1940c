/* bench_main.c: ringkv-bench, a memtier_benchmark-style load generator.
 * Parses the command line, optionally prepopulates the key range (every key
 * set once, P pattern over all connections, not measured), runs the measured
 * load --run-count times, prints each run's summary to stdout or --out-file
 * (progress and problems to stderr), then with several runs the best, the
 * worst (by Totals ops/sec) and their average, and writes the JSON file.
 * Only the best and worst results are kept besides the running average, so
 * memory does not grow with the run count. It is a plain client: of ringkv's
 * own code it links only the key slot function (src/keyhash.c).
 * Exit status: 0 when every request of every run got a proper reply; 1 when a
 * run could not start (connect, AUTH, SELECT), lost connections or replies,
 * got error replies, found a value that failed verification or left requests
 * due under --rate-limiting unsent; 2 on bad usage. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_opts.h"
#include "bench_report.h"
#include "bench_run.h"

#ifndef RINGKV_VERSION
#define RINGKV_VERSION "dev"
#endif

/* Many connections need many descriptors: take the hard limit. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void print_header(FILE *out, const struct bench_config *cfg)
{
    fprintf(out, "ringkv-bench %s: %s:%s, protocol %s\n", RINGKV_VERSION, cfg->host, cfg->port,
            bench_opts_protocol_name(cfg->protocol));
    fprintf(out, "%-10u Threads\n%-10u Connections per thread\n", cfg->threads, cfg->clients);
    if (cfg->test_time_s)
        fprintf(out, "%-10" PRIu64 " Seconds\n", cfg->test_time_s);
    if (cfg->requests_allkeys)
        fprintf(out, "%-10s Requests per connection\n", "allkeys");
    else if (cfg->requests)
        fprintf(out, "%-10" PRIu64 " Requests per connection\n", cfg->requests);
    fprintf(out,
            "pipeline %u, ratio %u:%u, values %u-%u bytes, keys %c:%c over [%" PRIu64 ", %" PRIu64
            "]%s%s\n",
            cfg->pipeline, cfg->ratio_set, cfg->ratio_get, cfg->data_size_min, cfg->data_size_max,
            (char)cfg->set_pattern, (char)cfg->get_pattern, cfg->keys.min, cfg->keys.max,
            cfg->rate_limit ? ", rate limited" : "", cfg->verify ? ", verifying" : "");
    if (cfg->run_count > 1)
        fprintf(out, "%-10u Runs\n", cfg->run_count);
    if (cfg->auth)
        fprintf(out, "each connection first sends AUTH\n");
    if (cfg->select_db)
        fprintf(out, "each connection first sends SELECT %u\n", cfg->select_db);
    if (cfg->cluster_mode)
        fprintf(out, "cluster mode: slot map from CLUSTER SLOTS, a connection per master\n");
}

/* Sets every key of the range once; 0 on success. */
static int prepopulate(const struct bench_config *cfg)
{
    struct bench_config pre = *cfg;
    pre.ratio_set = 1;
    pre.ratio_get = 0;
    pre.set_pattern = BENCH_KEYS_PARALLEL;
    pre.requests_allkeys = true;
    pre.requests = 0;
    pre.test_time_s = 0;
    pre.rate_limit = 0;
    if (pre.pipeline < 32)
        pre.pipeline = 32;
    struct bench_result res;
    if (bench_result_init(&res) != 0) {
        fprintf(stderr, "ringkv-bench: out of memory\n");
        return -1;
    }
    int rc = bench_run(&pre, "PREPOPULATE", cfg->hide_progress ? NULL : stderr, &res);
    bool ok = rc == 0 && bench_report_ok(&res);
    if (ok)
        fprintf(stderr, "prepopulated %" PRIu64 " keys in %.3f s\n", res.stats.replies,
                (double)res.duration_ns / 1e9);
    else
        fprintf(stderr, "ringkv-bench: prepopulation failed: %s\n",
                res.error[0] ? res.error : "error replies or lost replies");
    bench_result_fini(&res);
    return ok ? 0 : -1;
}

static double ops_per_s(const struct bench_result *res)
{
    return res->duration_ns ? (double)res->stats.replies * 1e9 / (double)res->duration_ns : 0.0;
}

/* Frees a result unless it is still the best or the worst. */
static void release(struct bench_result *res, const struct bench_result *best,
                    const struct bench_result *worst)
{
    if (!res || res == best || res == worst)
        return;
    bench_result_fini(res);
    free(res);
}

/* The best and worst runs so far, and the running average. */
struct runs {
    struct bench_result *best, *worst;
    struct bench_average avg;
};

/* Keeps res as best and/or worst, or frees it; the average has it already. */
static void keep_extremes(struct runs *r, struct bench_result *res)
{
    bool is_best = !r->best || ops_per_s(res) > ops_per_s(r->best);
    bool is_worst = !r->worst || ops_per_s(res) < ops_per_s(r->worst);
    if (is_best) {
        struct bench_result *old = r->best;
        r->best = res;
        release(old, r->best, r->worst);
    }
    if (is_worst) {
        struct bench_result *old = r->worst;
        r->worst = res;
        release(old, r->best, r->worst);
    }
    if (!is_best && !is_worst)
        release(res, r->best, r->worst);
}

/* Runs the measured load once and prints it; 0, or -1 after saying why. */
static int run_once(const struct bench_config *cfg, uint32_t i, FILE *out, struct runs *r)
{
    struct bench_result *res = malloc(sizeof *res);
    if (!res || bench_result_init(res) != 0) {
        free(res);
        fprintf(stderr, "ringkv-bench: out of memory\n");
        return -1;
    }
    char label[32], title[48];
    snprintf(label, sizeof label, "RUN #%u", i);
    if (bench_run(cfg, label, cfg->hide_progress ? NULL : stderr, res) != 0) {
        fprintf(stderr, "ringkv-bench: %s\n", res->error);
        release(res, NULL, NULL);
        return -1;
    }
    if (cfg->run_count == 1)
        snprintf(title, sizeof title, "ALL STATS");
    else
        snprintf(title, sizeof title, "RUN #%u RESULTS", i);
    bench_report_text(out, cfg, title, res);
    fflush(out);
    if (bench_average_add(&r->avg, cfg, res) != 0) {
        fprintf(stderr, "ringkv-bench: out of memory\n");
        release(res, NULL, NULL);
        return -1;
    }
    keep_extremes(r, res);
    return 0;
}

/* After the last run: the summary of several, the JSON file, the verdict. */
static int report_runs(const struct bench_config *cfg, FILE *out, struct runs *r)
{
    int status = 0;
    if (cfg->run_count > 1) {
        bench_report_text(out, cfg, "BEST RUN RESULTS", r->best);
        bench_report_text(out, cfg, "WORST RUN RESULTS", r->worst);
        bench_report_average_text(out, cfg, &r->avg);
    }
    if (cfg->json_out) {
        int jrc = cfg->run_count == 1
                      ? bench_report_json(cfg->json_out, cfg, r->best)
                      : bench_report_json_runs(cfg->json_out, cfg, r->best, r->worst, &r->avg);
        if (jrc != 0) {
            fprintf(stderr, "ringkv-bench: cannot write %s: %s\n", cfg->json_out, strerror(-jrc));
            status = 1;
        }
    }
    if (!bench_report_ok(&r->avg.sum)) {
        char why[512];
        bench_report_why(&r->avg.sum, why, sizeof why);
        fprintf(stderr, "ringkv-bench: run not clean: %s\n", why);
        status = 1;
    }
    return status;
}

/* All --run-count runs; the exit status. */
static int run_all(const struct bench_config *cfg, FILE *out)
{
    struct runs r = {0};
    if (bench_average_init(&r.avg) != 0) {
        fprintf(stderr, "ringkv-bench: out of memory\n");
        return 1;
    }
    int status = 0;
    for (uint32_t i = 1; i <= cfg->run_count && status == 0; i++)
        status = run_once(cfg, i, out, &r) == 0 ? 0 : 1;
    if (status == 0)
        status = report_runs(cfg, out, &r);
    struct bench_result *best = r.best;
    release(r.worst, best, NULL);
    release(best, NULL, NULL);
    bench_average_fini(&r.avg);
    return status;
}

/* Where the text results go: stdout, or --out-file (NULL if it cannot be opened). */
static FILE *open_out(const struct bench_config *cfg)
{
    if (!cfg->out_file)
        return stdout;
    FILE *out = fopen(cfg->out_file, "w");
    if (!out)
        fprintf(stderr, "ringkv-bench: cannot open --out-file %s: %s\n", cfg->out_file,
                strerror(errno));
    else
        fprintf(stderr, "Writing results to %s...\n", cfg->out_file);
    return out;
}

int main(int argc, char **argv)
{
    struct bench_config cfg;
    bench_opts_defaults(&cfg);
    char err[256];
    if (bench_opts_parse(&cfg, argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "ringkv-bench: %s\n", err);
        return 2;
    }
    if (cfg.show_help) {
        bench_opts_usage(stdout);
        return 0;
    }
    if (cfg.show_version) {
        printf("ringkv-bench %s\n", RINGKV_VERSION);
        return 0;
    }
    if (cfg.randomize) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        cfg.seed = ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) ^
                   ((uint64_t)getpid() << 32);
    }
    FILE *out = open_out(&cfg);
    if (!out)
        return 1;
    raise_fd_limit();
    print_header(out, &cfg);
    fflush(out);
    int status = cfg.prepopulate && prepopulate(&cfg) != 0 ? 1 : run_all(&cfg, out);
    if (out != stdout && fclose(out) != 0) {
        fprintf(stderr, "ringkv-bench: cannot write %s: %s\n", cfg.out_file, strerror(errno));
        status = 1;
    }
    return status;
}
