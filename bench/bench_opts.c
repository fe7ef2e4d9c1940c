/* bench_opts.c: the command line (see bench_opts.h).
 * One table of long options drives getopt_long; each option's value is
 * parsed strictly (whole string, in range) by a small typed helper, and
 * whatever depends on several options (gaussian defaults, key lengths
 * against the protocol's limit, room for checked values, slices for the P
 * pattern) is settled once in check_config() after all flags are read.
 * Errors never exit here: the caller prints the message and the usage.
 * Percentiles are kept as the user gave them (order and all); --run-count,
 * --out-file, --authenticate, --select-db and --cluster-mode are only stored:
 * bench_main.c repeats the runs and opens the file, bench_run.c sends AUTH
 * and SELECT and reads the cluster's slot map. */
#include "bench_opts.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MC_KEY_MAX 250
#define MAX_THREADS 1024
#define MAX_CONNECTIONS 100000
#define MAX_PIPELINE 65536
#define MAX_RUN_COUNT 10000
#define MAX_SELECT_DB 2147483647u

enum {
    OPT_TEST_TIME = 256,
    OPT_RATIO,
    OPT_PIPELINE,
    OPT_DATA_SIZE_RANGE,
    OPT_KEY_PATTERN,
    OPT_KEY_MINIMUM,
    OPT_KEY_MAXIMUM,
    OPT_KEY_PREFIX,
    OPT_KEY_STDDEV,
    OPT_KEY_MEDIAN,
    OPT_KEY_ZIPF_EXP,
    OPT_RATE_LIMITING,
    OPT_DISTINCT_CLIENT_SEED,
    OPT_RANDOMIZE,
    OPT_SEED,
    OPT_VERIFY,
    OPT_PREPOPULATE,
    OPT_HIDE_HISTOGRAM,
    OPT_HIDE_PROGRESS,
    OPT_JSON_OUT_FILE,
    OPT_PRINT_PERCENTILES,
    OPT_SELECT_DB,
    OPT_CLUSTER_MODE,
};

static const struct option long_options[] = {
    {"server", required_argument, NULL, 's'},
    {"port", required_argument, NULL, 'p'},
    {"protocol", required_argument, NULL, 'P'},
    {"threads", required_argument, NULL, 't'},
    {"clients", required_argument, NULL, 'c'},
    {"requests", required_argument, NULL, 'n'},
    {"test-time", required_argument, NULL, OPT_TEST_TIME},
    {"ratio", required_argument, NULL, OPT_RATIO},
    {"pipeline", required_argument, NULL, OPT_PIPELINE},
    {"data-size", required_argument, NULL, 'd'},
    {"data-size-range", required_argument, NULL, OPT_DATA_SIZE_RANGE},
    {"key-pattern", required_argument, NULL, OPT_KEY_PATTERN},
    {"key-minimum", required_argument, NULL, OPT_KEY_MINIMUM},
    {"key-maximum", required_argument, NULL, OPT_KEY_MAXIMUM},
    {"key-prefix", required_argument, NULL, OPT_KEY_PREFIX},
    {"key-stddev", required_argument, NULL, OPT_KEY_STDDEV},
    {"key-median", required_argument, NULL, OPT_KEY_MEDIAN},
    {"key-zipf-exp", required_argument, NULL, OPT_KEY_ZIPF_EXP},
    {"rate-limiting", required_argument, NULL, OPT_RATE_LIMITING},
    {"distinct-client-seed", no_argument, NULL, OPT_DISTINCT_CLIENT_SEED},
    {"randomize", no_argument, NULL, OPT_RANDOMIZE},
    {"seed", required_argument, NULL, OPT_SEED},
    {"verify", no_argument, NULL, OPT_VERIFY},
    {"data-verify", no_argument, NULL, OPT_VERIFY},
    {"prepopulate", no_argument, NULL, OPT_PREPOPULATE},
    {"hide-histogram", no_argument, NULL, OPT_HIDE_HISTOGRAM},
    {"hide-progress", no_argument, NULL, OPT_HIDE_PROGRESS},
    {"json-out-file", required_argument, NULL, OPT_JSON_OUT_FILE},
    {"print-percentiles", required_argument, NULL, OPT_PRINT_PERCENTILES},
    {"run-count", required_argument, NULL, 'x'},
    {"out-file", required_argument, NULL, 'o'},
    {"authenticate", required_argument, NULL, 'a'},
    {"select-db", required_argument, NULL, OPT_SELECT_DB},
    {"cluster-mode", no_argument, NULL, OPT_CLUSTER_MODE},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'v'},
    {NULL, 0, NULL, 0},
};

void bench_opts_defaults(struct bench_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->host = "127.0.0.1";
    cfg->port = "6379";
    cfg->protocol = BENCH_PROTO_REDIS;
    cfg->threads = 4;
    cfg->clients = 50;
    cfg->pipeline = 1;
    cfg->ratio_set = 1;
    cfg->ratio_get = 10;
    cfg->data_size_min = 32;
    cfg->data_size_max = 32;
    cfg->set_pattern = BENCH_KEYS_UNIFORM;
    cfg->get_pattern = BENCH_KEYS_UNIFORM;
    cfg->keys.min = 0;
    cfg->keys.max = 10000000;
    cfg->keys.zipf_exp = 1.0;
    cfg->key_prefix = "memtier-";
    cfg->seed = 0x72696e676b76ull; /* "ringkv" */
    cfg->run_count = 1;
    cfg->npercentiles = 3;
    cfg->percentiles[0] = 50.0;
    cfg->percentiles[1] = 99.0;
    cfg->percentiles[2] = 99.9;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int parse_u64_arg(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_u32_arg(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    uint64_t v;
    if (parse_u64_arg(s, lo, hi, &v) != 0)
        return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}

static int parse_double_arg(const char *s, double lo, double hi, double *out)
{
    if (!s || !*s)
        return -EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !(v >= lo && v <= hi))
        return -EINVAL;
    *out = v;
    return 0;
}

/* "a:b" or "a-b" with the given separator. */
static int parse_pair(const char *s, char sep, uint64_t hi, uint64_t *a, uint64_t *b)
{
    const char *mid = s ? strchr(s, sep) : NULL;
    if (!mid || (size_t)(mid - s) >= 24)
        return -EINVAL;
    char first[24];
    memcpy(first, s, (size_t)(mid - s));
    first[mid - s] = '\0';
    if (parse_u64_arg(first, 0, hi, a) != 0 || parse_u64_arg(mid + 1, 0, hi, b) != 0)
        return -EINVAL;
    return 0;
}

/* "50,99,99.9": one to BENCH_MAX_PERCENTILES numbers in [0, 100]. */
static int parse_percentiles(const char *s, double *out, uint32_t *n)
{
    uint32_t count = 0;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[32];
        if (count == BENCH_MAX_PERCENTILES || len == 0 || len >= sizeof item)
            return -EINVAL;
        memcpy(item, p, len);
        item[len] = '\0';
        if (parse_double_arg(item, 0.0, 100.0, &out[count]) != 0)
            return -EINVAL;
        count++;
        if (!comma)
            break;
        p = comma + 1;
    }
    *n = count;
    return 0;
}

static int parse_protocol(const char *s, enum bench_protocol *p)
{
    if (strcmp(s, "redis") == 0 || strcmp(s, "resp2") == 0) {
        *p = BENCH_PROTO_REDIS;
        return 0;
    }
    if (strcmp(s, "memcache_text") == 0) {
        *p = BENCH_PROTO_MEMCACHE_TEXT;
        return 0;
    }
    return -EINVAL;
}

const char *bench_opts_protocol_name(enum bench_protocol p)
{
    return p == BENCH_PROTO_REDIS ? "redis" : "memcache_text";
}

static size_t decimal_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

size_t bench_opts_max_key_len(const struct bench_config *cfg)
{
    return strlen(cfg->key_prefix) + decimal_len(cfg->keys.max);
}

/* Settings that depend on each other, once every flag is in. */
static int check_config(struct bench_config *cfg, bool stddev_set, bool median_set, char *err,
                        size_t errlen)
{
    struct bench_key_space *ks = &cfg->keys;
    if (ks->min > ks->max)
        return fail(err, errlen, "--key-minimum %" PRIu64 " exceeds --key-maximum %" PRIu64,
                    ks->min, ks->max);
    double range = (double)(ks->max - ks->min);
    if (!stddev_set)
        ks->stddev = range / 6.0 > 1.0 ? range / 6.0 : 1.0;
    if (!median_set)
        ks->median = (double)ks->min + range / 2.0;
    if (cfg->ratio_set == 0 && cfg->ratio_get == 0)
        return fail(err, errlen, "--ratio 0:0 sends nothing");
    if ((uint64_t)cfg->threads * cfg->clients > MAX_CONNECTIONS)
        return fail(err, errlen, "threads x clients exceeds %d connections", MAX_CONNECTIONS);
    size_t prefix_len = strlen(cfg->key_prefix);
    if (prefix_len > BENCH_MAX_PREFIX)
        return fail(err, errlen, "--key-prefix is longer than %d bytes", BENCH_MAX_PREFIX);
    size_t key_len = bench_opts_max_key_len(cfg);
    if (cfg->protocol == BENCH_PROTO_MEMCACHE_TEXT) {
        if (key_len > MC_KEY_MAX)
            return fail(err, errlen, "keys of %zu bytes exceed memcached's %d", key_len,
                        MC_KEY_MAX);
        for (size_t i = 0; i < prefix_len; i++)
            if ((unsigned char)cfg->key_prefix[i] <= ' ' || cfg->key_prefix[i] == 0x7f)
                return fail(err, errlen, "memcached keys cannot hold spaces or control bytes");
    }
    if (cfg->verify && cfg->data_size_min < key_len + BENCH_PROTO_CHECK_OVERHEAD)
        return fail(err, errlen, "--verify needs values of at least %zu bytes (key + %d)",
                    key_len + BENCH_PROTO_CHECK_OVERHEAD, BENCH_PROTO_CHECK_OVERHEAD);
    uint64_t conns = (uint64_t)cfg->threads * cfg->clients;
    bool parallel = cfg->set_pattern == BENCH_KEYS_PARALLEL ||
                    cfg->get_pattern == BENCH_KEYS_PARALLEL || cfg->prepopulate;
    if (parallel && ks->max - ks->min + 1 < conns)
        return fail(err, errlen,
                    "key range of %" PRIu64 " keys is smaller than the %" PRIu64
                    " connections sharing it",
                    ks->max - ks->min + 1, conns);
    if (cfg->protocol == BENCH_PROTO_MEMCACHE_TEXT && cfg->auth)
        return fail(err, errlen,
                    "--authenticate needs -P redis: memcached's text protocol has no "
                    "authentication");
    if (cfg->protocol == BENCH_PROTO_MEMCACHE_TEXT && cfg->select_db)
        return fail(err, errlen, "--select-db needs -P redis: memcached has no databases");
    if (cfg->cluster_mode && cfg->protocol != BENCH_PROTO_REDIS)
        return fail(err, errlen, "--cluster-mode needs -P redis (Redis Cluster)");
    if (cfg->cluster_mode && cfg->select_db)
        return fail(err, errlen,
                    "--cluster-mode refuses --select-db: Redis Cluster has database 0 "
                    "alone");
    if (cfg->test_time_s == 0 && cfg->requests == 0 && !cfg->requests_allkeys)
        cfg->requests = 10000;
    return 0;
}

static int parse_one(struct bench_config *cfg, int opt, const char *arg, bool *stddev_set,
                     bool *median_set, char *err, size_t errlen)
{
    uint64_t a, b;
    switch (opt) {
    case 's':
        cfg->host = arg;
        return 0;
    case 'p':
        if (parse_u64_arg(arg, 1, 65535, &a) != 0)
            return fail(err, errlen, "--port wants 1..65535, not '%s'", arg);
        cfg->port = arg;
        return 0;
    case 'P':
        if (parse_protocol(arg, &cfg->protocol) != 0)
            return fail(err, errlen, "--protocol wants redis or memcache_text, not '%s'", arg);
        return 0;
    case 't':
        if (parse_u32_arg(arg, 1, MAX_THREADS, &cfg->threads) != 0)
            return fail(err, errlen, "--threads wants 1..%d, not '%s'", MAX_THREADS, arg);
        return 0;
    case 'c':
        if (parse_u32_arg(arg, 1, MAX_CONNECTIONS, &cfg->clients) != 0)
            return fail(err, errlen, "--clients wants 1..%d, not '%s'", MAX_CONNECTIONS, arg);
        return 0;
    case 'n':
        if (strcmp(arg, "allkeys") == 0) {
            cfg->requests_allkeys = true;
            cfg->requests = 0;
            return 0;
        }
        if (parse_u64_arg(arg, 1, UINT64_MAX / 2, &cfg->requests) != 0)
            return fail(err, errlen, "--requests wants a count or allkeys, not '%s'", arg);
        cfg->requests_allkeys = false;
        return 0;
    case OPT_TEST_TIME:
        if (parse_u64_arg(arg, 1, 86400 * 365, &cfg->test_time_s) != 0)
            return fail(err, errlen, "--test-time wants seconds, not '%s'", arg);
        return 0;
    case OPT_RATIO:
        if (parse_pair(arg, ':', UINT32_MAX / 2, &a, &b) != 0)
            return fail(err, errlen, "--ratio wants SETS:GETS, not '%s'", arg);
        cfg->ratio_set = (uint32_t)a;
        cfg->ratio_get = (uint32_t)b;
        return 0;
    case OPT_PIPELINE:
        if (parse_u32_arg(arg, 1, MAX_PIPELINE, &cfg->pipeline) != 0)
            return fail(err, errlen, "--pipeline wants 1..%d, not '%s'", MAX_PIPELINE, arg);
        return 0;
    case 'd':
        if (parse_u32_arg(arg, 1, BENCH_PROTO_MAX_VALUE, &cfg->data_size_min) != 0)
            return fail(err, errlen, "--data-size wants 1..%u bytes, not '%s'",
                        BENCH_PROTO_MAX_VALUE, arg);
        cfg->data_size_max = cfg->data_size_min;
        return 0;
    case OPT_DATA_SIZE_RANGE:
        if (parse_pair(arg, '-', BENCH_PROTO_MAX_VALUE, &a, &b) != 0 || a == 0 || a > b)
            return fail(err, errlen, "--data-size-range wants MIN-MAX bytes, not '%s'", arg);
        cfg->data_size_min = (uint32_t)a;
        cfg->data_size_max = (uint32_t)b;
        return 0;
    case OPT_KEY_PATTERN:
        if (bench_keys_parse_pattern(arg, &cfg->set_pattern, &cfg->get_pattern) != 0)
            return fail(err, errlen, "--key-pattern wants SET:GET from S P R G Z, not '%s'", arg);
        return 0;
    case OPT_KEY_MINIMUM:
    case OPT_KEY_MAXIMUM:
        if (parse_u64_arg(arg, 0, UINT64_MAX - 1, &a) != 0)
            return fail(err, errlen, "key bounds want a number below 2^64 - 1, not '%s'", arg);
        *(opt == OPT_KEY_MINIMUM ? &cfg->keys.min : &cfg->keys.max) = a;
        return 0;
    case OPT_KEY_PREFIX:
        cfg->key_prefix = arg;
        return 0;
    case OPT_KEY_STDDEV:
        if (parse_double_arg(arg, 1e-9, 1e300, &cfg->keys.stddev) != 0)
            return fail(err, errlen, "--key-stddev wants a positive number, not '%s'", arg);
        *stddev_set = true;
        return 0;
    case OPT_KEY_MEDIAN:
        if (parse_double_arg(arg, 0.0, 1e300, &cfg->keys.median) != 0)
            return fail(err, errlen, "--key-median wants a number, not '%s'", arg);
        *median_set = true;
        return 0;
    case OPT_KEY_ZIPF_EXP:
        if (parse_double_arg(arg, 1e-6, 10.0, &cfg->keys.zipf_exp) != 0)
            return fail(err, errlen, "--key-zipf-exp wants (0, 10], not '%s'", arg);
        return 0;
    case OPT_RATE_LIMITING:
        if (parse_u64_arg(arg, 1, 1000000000, &cfg->rate_limit) != 0)
            return fail(err, errlen, "--rate-limiting wants requests per second, not '%s'", arg);
        return 0;
    case OPT_DISTINCT_CLIENT_SEED:
        cfg->distinct_client_seed = true;
        return 0;
    case OPT_RANDOMIZE:
        cfg->randomize = true;
        return 0;
    case OPT_SEED:
        if (parse_u64_arg(arg, 0, UINT64_MAX, &cfg->seed) != 0)
            return fail(err, errlen, "--seed wants a number, not '%s'", arg);
        return 0;
    case OPT_VERIFY:
        cfg->verify = true;
        return 0;
    case OPT_PREPOPULATE:
        cfg->prepopulate = true;
        return 0;
    case OPT_HIDE_HISTOGRAM:
        cfg->hide_histogram = true;
        return 0;
    case OPT_HIDE_PROGRESS:
        cfg->hide_progress = true;
        return 0;
    case OPT_JSON_OUT_FILE:
        cfg->json_out = arg;
        return 0;
    case OPT_PRINT_PERCENTILES:
        if (parse_percentiles(arg, cfg->percentiles, &cfg->npercentiles) != 0)
            return fail(err, errlen,
                        "--print-percentiles wants 1..%d numbers in [0, 100] separated by "
                        "commas, not '%s'",
                        BENCH_MAX_PERCENTILES, arg);
        return 0;
    case 'x':
        if (parse_u32_arg(arg, 1, MAX_RUN_COUNT, &cfg->run_count) != 0)
            return fail(err, errlen, "--run-count wants 1..%d, not '%s'", MAX_RUN_COUNT, arg);
        return 0;
    case 'o':
        if (!*arg)
            return fail(err, errlen, "--out-file wants a file name");
        cfg->out_file = arg;
        return 0;
    case 'a':
        if (!*arg || strlen(arg) > BENCH_MAX_AUTH)
            return fail(err, errlen, "--authenticate wants 1..%d bytes of credentials",
                        BENCH_MAX_AUTH);
        cfg->auth = arg;
        return 0;
    case OPT_SELECT_DB:
        if (parse_u32_arg(arg, 0, MAX_SELECT_DB, &cfg->select_db) != 0)
            return fail(err, errlen, "--select-db wants a database number, not '%s'", arg);
        return 0;
    case OPT_CLUSTER_MODE:
        cfg->cluster_mode = true;
        return 0;
    case 'h':
        cfg->show_help = true;
        return 0;
    case 'v':
        cfg->show_version = true;
        return 0;
    }
    return fail(err, errlen, "unknown option (see --help)");
}

int bench_opts_parse(struct bench_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    bool stddev_set = false, median_set = false;
    optind = 0; /* glibc: start over, so tests may parse many command lines */
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "s:p:P:t:c:n:d:x:o:a:hv", long_options, NULL)) != -1) {
        if (opt == '?' || opt == ':')
            return fail(err, errlen, "bad option or missing value: '%s' (see --help)",
                        argv[optind - 1]);
        int rc = parse_one(cfg, opt, optarg, &stddev_set, &median_set, err, errlen);
        if (rc != 0)
            return rc;
    }
    if (optind < argc)
        return fail(err, errlen, "unexpected argument '%s'", argv[optind]);
    if (cfg->show_help || cfg->show_version)
        return 0;
    return check_config(cfg, stddev_set, median_set, err, errlen);
}

void bench_opts_usage(FILE *out)
{
    fputs("Usage: ringkv-bench [options]\n"
          "A memtier_benchmark-style load generator for RESP and memcached servers.\n"
          "\n"
          "Connection:\n"
          "  -s, --server=HOST          server address (default 127.0.0.1)\n"
          "  -p, --port=PORT            server port (default 6379)\n"
          "  -P, --protocol=PROTO       redis (RESP2) or memcache_text (default redis)\n"
          "  -a, --authenticate=CREDS   redis: AUTH on each connection before the load;\n"
          "                             PASSWORD, or USER:PASSWORD (AUTH USER PASSWORD);\n"
          "                             a leading ':' keeps the rest whole (:pass:word)\n"
          "      --select-db=N          redis: SELECT N on each connection before the load\n"
          "                             (default 0: none sent)\n"
          "      --cluster-mode         Redis Cluster: slot map from CLUSTER SLOTS, each\n"
          "                             connection opens one per master, each key goes to\n"
          "                             its slot's master; MOVED and ASK are followed\n"
          "                             and counted\n"
          "Load:\n"
          "  -t, --threads=N            client threads (default 4)\n"
          "  -c, --clients=N            connections per thread (default 50)\n"
          "      --pipeline=N           requests in flight per connection (default 1)\n"
          "      --ratio=S:G            sets to gets in each cycle (default 1:10)\n"
          "  -d, --data-size=BYTES      value size (default 32)\n"
          "      --data-size-range=A-B  value size uniform in [A, B]\n"
          "      --rate-limiting=N      at most N requests/s per connection; latency is\n"
          "                             measured from each request's scheduled send time\n"
          "Keys:\n"
          "      --key-pattern=S:G      set and get patterns, each one of\n"
          "                             S sequential, P parallel slices, R uniform random,\n"
          "                             G gaussian, Z zipfian (default R:R)\n"
          "      --key-minimum=N        lowest key number (default 0)\n"
          "      --key-maximum=N        highest key number (default 10000000)\n"
          "      --key-prefix=TEXT      key prefix (default memtier-)\n"
          "      --key-stddev=X         gaussian deviation (default range/6)\n"
          "      --key-median=X         gaussian mean (default middle of the range)\n"
          "      --key-zipf-exp=X       zipfian exponent in (0, 10] (default 1)\n"
          "Length of the run:\n"
          "  -n, --requests=N|allkeys   requests per connection (default 10000); allkeys:\n"
          "                             the connection's share of the key range\n"
          "      --test-time=SECS       run for SECS seconds (with -n: whichever ends first)\n"
          "  -x, --run-count=N          run the whole test N times; print each run, then the\n"
          "                             best and worst (by Totals ops/sec) and the average\n"
          "                             (default 1)\n"
          "      --prepopulate          first set every key of the range once (P pattern,\n"
          "                             not measured)\n"
          "Randomness:\n"
          "      --seed=N               base seed (default fixed, so runs repeat)\n"
          "      --distinct-client-seed each connection gets its own seed (seed + index)\n"
          "      --randomize            base seed from the clock\n"
          "Checking and output:\n"
          "  -o, --out-file=FILE        text results to FILE instead of stdout\n"
          "      --print-percentiles=P,...\n"
          "                             latency percentiles in the table and JSON\n"
          "                             (default 50,99,99.9; at most 16, each in [0, 100])\n"
          "      --verify               values carry key and checksum; every hit is checked;\n"
          "                             mismatches make the exit status 1 (alias --data-verify)\n"
          "      --json-out-file=FILE   write results, counts and histograms as JSON\n"
          "      --hide-histogram       leave the latency distribution out of stdout\n"
          "      --hide-progress        no progress line on stderr\n"
          "  -h, --help                 this text\n"
          "  -v, --version              version\n"
          "\n"
          "Exit status: 0 on success; 1 on connection failure, a rejected AUTH or SELECT,\n"
          "error replies, lost replies, verify mismatches or requests a rate limit left\n"
          "unsent; 2 on bad usage.\n",
          out);
}
