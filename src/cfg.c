/* cfg.c: settings (see cfg.h).
 * cfg_settings[] is the single list of settings: name, type, where it lives
 * in struct cfg, its default (as text, parsed like any other value), bounds
 * and help. Every source (defaults, INI file through inih, --flags) goes
 * through cfg_set_text(), so all values are validated the same way. Sizes
 * accept Redis's units (1k, 1kb, 1m, 1mb, 1g, 1gb; k = 1000, kb = 1024).
 * Runs on the main thread at start-up, but for CONFIG SET: the settings
 * marked live are checked on a copy (cfg_check_live) and stored into the
 * node's struct with a relaxed atomic store (cfg_set_live) from the shard
 * that serves it; their readers load them as they need them, or once a
 * tick (shard.c). */
#include "cfg.h"

#include <errno.h>
#include <ini.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "glob.h"
#include "keyhash.h"
#include "log.h"
#include "seg.h" /* the log's record limits bound the size settings */

/* CFG_SECRET: a string that cfg_get() shows as CFG_HIDDEN when set. */
enum cfg_type { CFG_INT, CFG_SIZE, CFG_BOOL, CFG_STRING, CFG_SECRET, CFG_ENUM };

struct cfg_setting {
    const char *name;
    enum cfg_type type;
    size_t offset;
    size_t size; /* strings: buffer size */
    const char *def;
    int64_t min, max;
    const char *const *choices; /* CFG_ENUM: NULL-terminated, index = value */
    const char *help;
    bool live; /* CONFIG SET changes it (an int64_t field: cfg_set_live) */
};

static const char *const policy_names[] = {"noeviction",     "allkeys-lru",     "volatile-lru",
                                           "allkeys-random", "volatile-random", "volatile-ttl",
                                           NULL};
static const char *const fsync_names[] = {"always", "everysec", "no", NULL};
static const char *const storage_names[] = {"memory", "log", NULL};
static const char *const compression_names[] = {"none", "lz4", "zstd", NULL};
static const char *const loglevel_names[] = {"warning", "notice", "verbose", "debug", NULL};
static const char *const partition_fn_names[] = {"xxh3", "slot", NULL}; /* enum keyhash_fn */
_Static_assert(KEYHASH_FN_XXH3 == 0 && KEYHASH_FN_SLOT == 1, "a choice's index is its value");

#define F(field) offsetof(struct cfg, field), sizeof(((struct cfg *)0)->field)
static const struct cfg_setting cfg_settings[] = {
    {"bind", CFG_STRING, F(bind), "127.0.0.1", 0, 0, NULL,
     "Address to listen on (one IPv4 or IPv6 address).", false},
    {"port", CFG_INT, F(port), "6379", 1, 65535, NULL, "RESP (Redis protocol) port.", false},
    {"memcache-port", CFG_INT, F(memcache_port), "11211", 0, 65535, NULL,
     "memcached text protocol port; 0 turns it off.", false},
    {"threads", CFG_INT, F(threads), "0", 0, CFG_MAX_THREADS, NULL,
     "Shard threads; 0 means one per CPU. At most 256 (SCAN's cursor names the shard in 8 "
     "bits).", false},
    {"cpu-affinity", CFG_BOOL, F(cpu_affinity), "yes", 0, 1, NULL,
     "Pin shard thread i to CPU i (modulo the CPUs this process may use).", false},
    {"requirepass", CFG_STRING, F(requirepass), "", 0, 0, NULL,
     "Password clients must give with AUTH (RESP) and to the admin API; empty means none. "
     "The memcached text protocol has no password (as memcached's): with one set, turn "
     "memcache-port off (0) or keep that port unreachable from untrusted clients.", false},
    {"maxmemory", CFG_SIZE, F(maxmemory), "0", 0, INT64_MAX, NULL,
     "Memory limit for data (bytes, or 100mb, 2gb...); 0 means no limit. Split evenly "
     "between shards. With storage = log, values past it stay on disk only.", false},
    {"maxmemory-policy", CFG_ENUM, F(maxmemory_policy), "noeviction", 0, 0, policy_names,
     "What to do at maxmemory: noeviction (writes get -OOM), allkeys-lru, volatile-lru, "
     "allkeys-random, volatile-random, volatile-ttl.", false},
    {"maxmemory-samples", CFG_INT, F(maxmemory_samples), "5", 1, 64, NULL,
     "Keys sampled per eviction (approximate LRU/TTL, as Redis).", false},
    {"maxclients", CFG_INT, F(maxclients), "10000", 1, 1000000, NULL,
     "Most client connections at once (all shards together).", true},
    {"timeout", CFG_INT, F(timeout), "0", 0, INT32_MAX, NULL,
     "Close a client idle this many seconds (nothing received or sent, no request "
     "waiting); 0 means never.", true},
    {"dir", CFG_STRING, F(dir), "ringkv-data", 0, 0, NULL,
     "Data directory of durable storage (made with its parents if missing; relative paths start "
     "from the working directory).", false},
    {"appendfsync", CFG_ENUM, F(appendfsync), "everysec", 0, 0, fsync_names,
     "fsync policy of durable storage: always, everysec, no.", false},
    {"storage", CFG_ENUM, F(storage), "log", 0, 0, storage_names,
     "log (every change appended to per-shard segment files under dir, recovered at "
     "start-up) or memory (a pure in-memory store, for caches).", false},
    {"segment-size", CFG_SIZE, F(segment_size), "64mb", 1 << 20, 1LL << 40, NULL,
     "Size after which a segment file is closed and a new one begun.", false},
    {"compression", CFG_ENUM, F(compression), "lz4", 0, 0, compression_names,
     "Codec for stored values: none, lz4 or zstd.", false},
    {"compress-min-size", CFG_SIZE, F(compress_min_size), "1kb", 1, INT64_MAX, NULL,
     "Values at least this long are stored compressed (when that makes them smaller).", false},
    {"compaction-threshold", CFG_INT, F(compaction_threshold), "50", 0, 99, NULL,
     "Rewrite a shard's oldest segments while live data is under this percent of its disk "
     "use; 0 turns compaction off.", false},
    {"partitions", CFG_INT, F(partitions), "1024", 1, KEYHASH_SLOTS, NULL,
     "Partitions (vnodes) the key space is cut into; a power of two, at most 16384 (each "
     "owns 16384/partitions consecutive Redis Cluster slots).", false},
    {"partition-function", CFG_ENUM, F(partition_function), "slot", 0, 0, partition_fn_names,
     "For upgrade tests only: xxh3 places keys as releases before slots did (data written "
     "so is re-laid by the next start with slot, the only supported value).", false},
    {"admin-port", CFG_INT, F(admin_port), "-1", -1, 65535, NULL,
     "Admin HTTP API port (JSON and Prometheus /metrics, on bind); -1 means port + 1000 "
     "(port - 1000 when that passes 65535), 0 turns it off.", false},
    {"cluster-port", CFG_INT, F(cluster_port), "0", 0, 65535, NULL,
     "Peer protocol port (gossip: UDP and TCP, on bind); 0 means port + 10000 (port - 10000 "
     "when that passes 65535).", false},
    {"seeds", CFG_STRING, F(seeds), "", 0, 0, NULL,
     "Comma-separated host:cluster-port of nodes of the cluster to join; empty: a cluster "
     "of one (until others join through it), or, restarted with its dir, the cluster it "
     "was in.", false},
    {"auto-join", CFG_BOOL, F(auto_join), "yes", 0, 1, NULL,
     "With seeds: join at start and be admitted at once (no: introduce itself to the seeds "
     "and get no partitions until an operator adds it with POST /v1/nodes).", false},
    {"cluster-secret", CFG_SECRET, F(cluster_secret), "", 0, 0, NULL,
     "Shared secret of the cluster: two peers first prove to each other that they know it "
     "(a challenge-response handshake with HMAC-SHA256; the secret never travels). Gossip "
     "sessions then carry a MAC under their session's key and a sequence number on every "
     "frame (frames without a valid one, or replayed, are dropped); the data links "
     "(replica requests, forwarded commands) authenticate their handshake only, not each "
     "frame after it. Keys come from the secret through PBKDF2, yet a tag seen on the wire "
     "lets anyone test guesses offline: use a high-entropy secret (`openssl rand -hex 32`). "
     "CONFIG GET shows it as " CFG_HIDDEN ". **Empty: peers are not authenticated, and the "
     "cluster port serves any connection that names a member's node id** (reads, writes, "
     "FLUSHALL): use one outside a trusted network.", false},
    {"cluster-name", CFG_STRING, F(cluster_name), "", 0, 0, NULL,
     "Name of the cluster, the same on all its nodes: peers of another name fail the "
     "handshake of the gossip and the data links (the name, with cluster-secret if set, is "
     "what their keys come from), so that two clusters whose nodes meet (a seed of the other "
     "by mistake) neither merge their members nor admit each other's nodes. It is no "
     "secret: with it alone, frames carry a MAC but are not authenticated against anyone who "
     "knows the name. Empty: none (nodes of clusters without a name, or without a "
     "cluster-secret, that meet merge their members).", false},
    {"weight", CFG_INT, F(weight), "100", 1, 1000000, NULL,
     "This node's relative capacity: the partition ring gives it partitions in proportion.", false},
    {"zone", CFG_STRING, F(zone), "", 0, 0, NULL,
     "Failure zone (rack, availability zone): at most 63 letters, digits, '.', '_', '-' or "
     "':'; empty for none.", false},
    {"proto-max-bulk-len", CFG_SIZE, F(proto_max_bulk_len), "512mb", 1024, SEG_MAX_VALUE, NULL,
     "Largest argument or value, in bytes; at most 1gb, the largest value a log record "
     "holds.", false},
    {"max-key-size", CFG_SIZE, F(max_key_size), "64kb", 1, SEG_MAX_KEY, NULL,
     "Largest key, in bytes; at most 512mb, the largest key a log record holds.", false},
    {"max-siblings", CFG_INT, F(max_siblings), "100", 1, 1000, NULL,
     "Most versions (siblings) one key may hold: a RING.PUT or RING.DEL that would leave more "
     "gets an error and changes nothing.", false},
    {"warn-siblings", CFG_INT, F(warn_siblings), "25", 1, 1000, NULL,
     "A versioned write that leaves more siblings than this is logged (at most once a "
     "second per shard) and counted (INFO sibling_warnings).", false},
    {"replicas", CFG_INT, F(replicas), "3", 1, 16, NULL,
     "N: how many nodes keep each key (the first N of its partition's preference list); "
     "capped by the preference lists' length (the cluster's size, at most 3 today).", false},
    {"read-quorum", CFG_INT, F(read_quorum), "2", 1, 16, NULL,
     "R: replicas whose answers a read waits for (capped by N); CONSISTENCY and RING.GET's "
     "R choose per connection and per request.", false},
    {"write-quorum", CFG_INT, F(write_quorum), "2", 1, 16, NULL,
     "W: replicas that must have a write before it is acknowledged (capped by N); "
     "CONSISTENCY and RING.PUT/RING.DEL's W choose per connection and per request.", false},
    {"tombstone-grace", CFG_INT, F(tombstone_grace_s), "86400", 1, INT64_MAX / 1000, NULL,
     "Seconds a delete is kept as a tombstone (so that replicas that missed it learn it "
     "instead of bringing the value back) before it is reaped.", false},
    {"max-hint-window", CFG_INT, F(max_hint_window_s), "10800", 0, INT64_MAX / 1000, NULL,
     "Seconds a write's preference-list node may have been down (as this coordinator's failure "
     "detection saw it) and still get a hint: the write goes to a stand-in past the top N, "
     "which keeps it for that node and delivers it once it is up. Longer: no hint, "
     "anti-entropy repairs it (0: never hint).", false},
    {"hint-max-bytes", CFG_SIZE, F(hint_max_bytes), "128mb", 0, INT64_MAX, NULL,
     "Bytes of hints a node keeps for one target node at most (on disk, and in memory "
     "until delivered; shared among the shards); past it a write is not hinted.", false},
    {"hint-max-bytes-per-sec", CFG_SIZE, F(hint_max_bytes_per_sec), "16mb", 1024, INT64_MAX,
     NULL, "Bytes per second of hints a node delivers at most, all targets together.", false},
    {"aae-interval", CFG_INT, F(aae_interval_s), "60", 0, 86400, NULL,
     "Seconds between anti-entropy rounds: each partition's first live replica compares its "
     "Merkle tree with every other live replica's, and each other replica with the next live "
     "one, and repairs the keys that differ; 0 turns anti-entropy (and its trees) off.", false},
    {"aae-rebuild-interval", CFG_INT, F(aae_rebuild_interval_s), "3600", 1, 86400 * 30, NULL,
     "Seconds between rebuilds of the anti-entropy trees from the keys held (a few thousand "
     "keys per tick, in the background; writes keep the trees up to date in between).", false},
    {"aae-max-keys-per-exchange", CFG_INT, F(aae_max_keys), "1000", 1, 1000000, NULL,
     "Most keys one anti-entropy exchange (one partition, one peer) repairs, and most keys "
     "one listing of keys holds (a longer one goes on in pages); the rest waits for the next "
     "round.", false},
    {"handoff-concurrency", CFG_INT, F(handoff_concurrency), "2", 0, 64, NULL,
     "Partition transfers (streams of up to 64 partitions from one source) a node pulls at "
     "once when the ring changes, shared among its shards (at least one each); 0: it pulls "
     "none (its new partitions fill by read repair only).", false},
    {"handoff-max-bytes-per-sec", CFG_SIZE, F(handoff_max_bytes_per_sec), "64mb", 0, INT64_MAX,
     NULL, "Most bytes per second a node pulls in partition transfers (0: no limit), so that "
     "a join or leave leaves room for clients.", false},
    {"max-request-args", CFG_INT, F(max_request_args), "1048576", 1, 1 << 30, NULL,
     "Most arguments in one request.", false},
    {"client-query-buffer-limit", CFG_SIZE, F(client_query_buffer_limit), "1gb", 1 << 20,
     INT64_MAX, NULL, "Most unparsed bytes buffered for one client.", false},
    {"request-timeout", CFG_INT, F(request_timeout_ms), "5000", 1, 86400000, NULL,
     "Milliseconds a request may wait (for other shards, a value read from disk, the "
     "log's fsync) before its client gets an error instead (-TIMEOUT; memcached "
     "SERVER_ERROR).", true},
    {"slow-turn-ms", CFG_INT, F(slow_turn_ms), "10", 1, 86400000, NULL,
     "A shard's loop turn (its work between two waits) this many milliseconds or longer is "
     "counted as slow (INFO ringkv_slow_turns; ringkv_longest_turn_us is the longest): "
     "everything that shard serves waited that long. One ten times as long is logged (at "
     "most once per 10 s per shard).", true},
    {"slowlog-log-slower-than", CFG_INT, F(slowlog_log_slower_than_us), "10000", -1,
     INT64_MAX / 1000, NULL,
     "Microseconds a command's run (on the shard that holds its keys, not counting waits for "
     "other shards, replicas or the disk) must take to be kept in the SLOWLOG (0: every "
     "command; -1: none).", true},
    {"slowlog-max-len", CFG_INT, F(slowlog_max_len), "128", 0, 100000, NULL,
     "Entries the SLOWLOG keeps, the newest (each shard keeps as many of its own).", true},
    {"tcp-backlog", CFG_INT, F(tcp_backlog), "511", 1, 65535, NULL, "listen() backlog.", false},
    {"uring-entries", CFG_INT, F(uring_entries), "4096", 64, 32768, NULL,
     "Submission queue entries of each shard's io_uring.", false},
    {"loglevel", CFG_ENUM, F(loglevel), "notice", 0, 0, loglevel_names,
     "warning, notice, verbose or debug.", true},
    {"logfile", CFG_STRING, F(logfile), "", 0, 0, NULL,
     "Log file; empty means standard error.", false},
};
#undef F
#define CFG_COUNT (sizeof cfg_settings / sizeof cfg_settings[0])

static const struct cfg_setting *cfg_find(const char *name)
{
    for (size_t i = 0; i < CFG_COUNT; i++)
        if (strcasecmp(cfg_settings[i].name, name) == 0)
            return &cfg_settings[i];
    return NULL;
}

/* Parses "100", "100k", "2mb", "1gb" as Redis's memtoll() does. */
static int cfg_parse_size(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0)
        return -EINVAL;
    static const struct {
        const char *unit;
        int64_t mul;
    } units[] = {{"", 1},          {"b", 1},          {"k", 1000},       {"kb", 1024},
                 {"m", 1000000},   {"mb", 1 << 20},   {"g", 1000000000}, {"gb", 1 << 30}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(end, units[i].unit) == 0) {
            if (v > INT64_MAX / units[i].mul)
                return -EINVAL;
            *out = v * units[i].mul;
            return 0;
        }
    }
    return -EINVAL;
}

static int cfg_set_text(struct cfg *c, const struct cfg_setting *s, const char *text, char *err,
                        size_t err_len)
{
    void *field = (char *)c + s->offset;
    int64_t v = 0;
    char *end;
    switch (s->type) {
    case CFG_STRING:
    case CFG_SECRET:
        if (strlen(text) >= s->size) {
            snprintf(err, err_len, "%s: value too long", s->name);
            return -EINVAL;
        }
        strcpy(field, text);
        return 0;
    case CFG_BOOL:
        if (!strcasecmp(text, "yes") || !strcasecmp(text, "true") || !strcmp(text, "1"))
            *(bool *)field = true;
        else if (!strcasecmp(text, "no") || !strcasecmp(text, "false") || !strcmp(text, "0"))
            *(bool *)field = false;
        else {
            snprintf(err, err_len, "%s: expected yes or no, got '%s'", s->name, text);
            return -EINVAL;
        }
        return 0;
    case CFG_ENUM:
        for (int i = 0; s->choices[i]; i++) {
            if (strcasecmp(text, s->choices[i]) == 0) {
                *(int64_t *)field = i;
                return 0;
            }
        }
        snprintf(err, err_len, "%s: '%s' is not one of the choices (see --help)", s->name, text);
        return -EINVAL;
    case CFG_INT:
        errno = 0;
        v = strtoll(text, &end, 10);
        if (errno || end == text || *end) {
            snprintf(err, err_len, "%s: '%s' is not an integer", s->name, text);
            return -EINVAL;
        }
        break;
    case CFG_SIZE:
        if (cfg_parse_size(text, &v) != 0) {
            snprintf(err, err_len, "%s: '%s' is not a size (e.g. 1024, 64kb, 2gb)", s->name,
                     text);
            return -EINVAL;
        }
        break;
    }
    if (v < s->min || v > s->max) {
        bool log_bound = v > s->max && (s->max == SEG_MAX_VALUE || s->max == SEG_MAX_KEY);
        snprintf(err, err_len, "%s: %lld is out of range [%lld, %lld]%s", s->name, (long long)v,
                 (long long)s->min, (long long)s->max,
                 log_bound ? " (the most one data log record holds)" : "");
        return -EINVAL;
    }
    *(int64_t *)field = v;
    return 0;
}

static void cfg_format(const struct cfg *c, const struct cfg_setting *s, char *out, size_t n)
{
    const void *field = (const char *)c + s->offset;
    switch (s->type) {
    case CFG_STRING:
    case CFG_SECRET:
        snprintf(out, n, "%s", (const char *)field);
        break;
    case CFG_BOOL:
        snprintf(out, n, "%s", *(const bool *)field ? "yes" : "no");
        break;
    case CFG_ENUM: /* a live one may change meanwhile (CONFIG SET) */
        snprintf(out, n, "%s",
                 s->choices[__atomic_load_n((const int64_t *)field, __ATOMIC_RELAXED)]);
        break;
    default:
        snprintf(out, n, "%lld",
                 (long long)__atomic_load_n((const int64_t *)field, __ATOMIC_RELAXED));
    }
}

struct cfg_ini_state {
    struct cfg *c;
    char *err;
    size_t err_len;
    int failed;
};

static int cfg_ini_handler(void *user, const char *section, const char *name, const char *value)
{
    struct cfg_ini_state *st = user;
    const struct cfg_setting *s = cfg_find(name);
    if (!s) {
        snprintf(st->err, st->err_len, "unknown setting '%s' in config file", name);
        st->failed = 1;
        return 0;
    }
    if (cfg_set_text(st->c, s, value, st->err, st->err_len) != 0) {
        st->failed = 1;
        return 0;
    }
    return 1;
}

static void cfg_print_help(FILE *f)
{
    fprintf(f, "Usage: ringkv [config.ini] [--config FILE] [--name value ...]\n"
               "       ringkv --help | --version | --settings-markdown\n\n"
               "ringkv: a sharded, Redis- and memcached-compatible key-value node.\n"
               "Settings (defaults in brackets), as INI keys or --flags:\n");
    for (size_t i = 0; i < CFG_COUNT; i++)
        fprintf(f, "  --%-28s %s [%s]\n", cfg_settings[i].name, cfg_settings[i].help,
                cfg_settings[i].def);
}

void cfg_write_markdown(FILE *f)
{
    fprintf(f, "| setting | default | meaning |\n|---|---|---|\n");
    for (size_t i = 0; i < CFG_COUNT; i++)
        fprintf(f, "| `%s` | `%s` | %s%s |\n", cfg_settings[i].name,
                cfg_settings[i].def[0] ? cfg_settings[i].def : "\"\"", cfg_settings[i].help,
                cfg_settings[i].live ? " CONFIG SET changes it." : "");
}

int cfg_is_live(const char *name)
{
    const struct cfg_setting *s = cfg_find(name);
    return !s ? -ENOENT : !s->live ? -EPERM : 0;
}

int cfg_check_live(const struct cfg *c, const char *name, const char *value, int64_t *out,
                   char *err, size_t err_len)
{
    const struct cfg_setting *s = cfg_find(name);
    if (!s)
        return -ENOENT;
    if (!s->live)
        return -EPERM;
    struct cfg scratch = *c;
    int rc = cfg_set_text(&scratch, s, value, err, err_len);
    if (rc == 0)
        *out = *(const int64_t *)((const char *)&scratch + s->offset);
    return rc;
}

void cfg_set_live(struct cfg *c, const char *name, int64_t value)
{
    const struct cfg_setting *s = cfg_find(name);
    if (!s || !s->live)
        return;
    __atomic_store_n((int64_t *)((char *)c + s->offset), value, __ATOMIC_RELAXED);
    if (s->offset == offsetof(struct cfg, loglevel))
        log_set_level(cfg_log_level(value));
}

enum log_level cfg_log_level(int64_t loglevel)
{
    switch (loglevel) {
    case CFG_LOG_WARNING:
        return LOG_WARN;
    case CFG_LOG_NOTICE:
        return LOG_INFO;
    default:
        return LOG_DEBUG;
    }
}

static int cfg_validate(const struct cfg *c, char *err, size_t err_len)
{
    if (c->partitions & (c->partitions - 1)) {
        snprintf(err, err_len, "partitions: %lld is not a power of two",
                 (long long)c->partitions);
        return -EINVAL;
    }
    if (c->memcache_port == c->port) {
        snprintf(err, err_len, "memcache-port and port must differ");
        return -EINVAL;
    }
    int admin = cfg_admin_port(c);
    if (admin && (admin == c->port || admin == c->memcache_port)) {
        snprintf(err, err_len, "admin-port %d must differ from port and memcache-port", admin);
        return -EINVAL;
    }
    if (strspn(c->zone, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:") !=
        strlen(c->zone)) {
        snprintf(err, err_len, "zone: '%s' has a character other than letters, digits, '.', "
                 "'_', '-' or ':'", c->zone);
        return -EINVAL;
    }
    return 0;
}

/* port + offset, or port - offset when the sum would not be a port. */
static int cfg_port_offset(int64_t port, int offset)
{
    return (int)(port + offset <= 65535 ? port + offset : port - offset);
}

int cfg_admin_port(const struct cfg *c)
{
    return c->admin_port < 0 ? cfg_port_offset(c->port, 1000) : (int)c->admin_port;
}

int cfg_cluster_port(const struct cfg *c)
{
    return c->cluster_port ? (int)c->cluster_port : cfg_port_offset(c->port, 10000);
}

static int cfg_load_file(struct cfg *c, const char *path, char *err, size_t err_len)
{
    struct cfg_ini_state st = {c, err, err_len, 0};
    int rc = ini_parse(path, cfg_ini_handler, &st);
    if (rc < 0) {
        snprintf(err, err_len, "cannot open config file %s", path);
        return -EINVAL;
    }
    if (st.failed)
        return -EINVAL;
    if (rc > 0) {
        snprintf(err, err_len, "%s:%d: syntax error", path, rc);
        return -EINVAL;
    }
    return 0;
}

int cfg_load(struct cfg *c, int argc, char **argv, bool *exit_now, char *err, size_t err_len)
{
    memset(c, 0, sizeof *c);
    *exit_now = false;
    for (size_t i = 0; i < CFG_COUNT; i++)
        if (cfg_set_text(c, &cfg_settings[i], cfg_settings[i].def, err, err_len) != 0)
            return -EINVAL;
    int i = 1;
    if (argc > 1 && strncmp(argv[1], "--", 2) != 0) {
        if (cfg_load_file(c, argv[1], err, err_len) != 0)
            return -EINVAL;
        i = 2;
    }
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            cfg_print_help(stdout);
            *exit_now = true;
            return 0;
        }
        if (!strcmp(a, "--settings-markdown")) { /* the README's table */
            cfg_write_markdown(stdout);
            *exit_now = true;
            return 0;
        }
        if (!strcmp(a, "--version") || !strcmp(a, "-v")) {
            printf("ringkv %s\n", RINGKV_VERSION);
            *exit_now = true;
            return 0;
        }
        if (strncmp(a, "--", 2) != 0 || i + 1 >= argc) {
            snprintf(err, err_len, "expected --name value, got '%s' (see --help)", a);
            return -EINVAL;
        }
        const char *value = argv[++i];
        if (!strcmp(a + 2, "config")) {
            if (cfg_load_file(c, value, err, err_len) != 0)
                return -EINVAL;
            continue;
        }
        const struct cfg_setting *s = cfg_find(a + 2);
        if (!s) {
            snprintf(err, err_len, "unknown setting '%s' (see --help)", a);
            return -EINVAL;
        }
        if (cfg_set_text(c, s, value, err, err_len) != 0)
            return -EINVAL;
    }
    return cfg_validate(c, err, err_len);
}

size_t cfg_get(const struct cfg *c, const char *pattern,
               void (*emit)(const char *name, const char *value, void *arg), void *arg)
{
    size_t n = 0;
    char value[1100];
    for (size_t i = 0; i < CFG_COUNT; i++) {
        const char *name = cfg_settings[i].name;
        if (!glob_match(pattern, strlen(pattern), name, strlen(name)))
            continue;
        cfg_format(c, &cfg_settings[i], value, sizeof value);
        emit(name, cfg_settings[i].type == CFG_SECRET && value[0] ? CFG_HIDDEN : value, arg);
        n++;
    }
    return n;
}
