/* bench_main.c: ringkv-bench, a memtier_benchmark-style load generator.
 * Parses the command line, optionally prepopulates the key range (every key
 * set once, P pattern over all connections, not measured), runs the measured
 * load, prints the summary to stdout (progress to stderr) and writes the
 * JSON file. It is a plain client: it links nothing of ringkv's own code.
 * Exit status: 0 when every request got a proper reply; 1 when the run could
 * not start, lost connections or replies, got error replies or found a value
 * that failed verification; 2 on bad usage. */
#include <inttypes.h>
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
    raise_fd_limit();
    print_header(stdout, &cfg);
    fflush(stdout);
    if (cfg.prepopulate && prepopulate(&cfg) != 0)
        return 1;
    struct bench_result res;
    if (bench_result_init(&res) != 0) {
        fprintf(stderr, "ringkv-bench: out of memory\n");
        return 1;
    }
    int rc = bench_run(&cfg, "RUN #1", cfg.hide_progress ? NULL : stderr, &res);
    if (rc != 0) {
        fprintf(stderr, "ringkv-bench: %s\n", res.error);
        bench_result_fini(&res);
        return 1;
    }
    bench_report_text(stdout, &cfg, &res);
    int status = 0;
    if (cfg.json_out) {
        int jrc = bench_report_json(cfg.json_out, &cfg, &res);
        if (jrc != 0) {
            fprintf(stderr, "ringkv-bench: cannot write %s: %s\n", cfg.json_out, strerror(-jrc));
            status = 1;
        }
    }
    if (!bench_report_ok(&res)) {
        fprintf(stderr, "ringkv-bench: run not clean: %s\n",
                res.error[0] ? res.error : "error replies, lost replies or verify mismatches");
        status = 1;
    }
    bench_result_fini(&res);
    return status;
}
