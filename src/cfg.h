/* cfg.h: the node's settings.
 * One table (name, type, default, bounds, help) drives the INI file (inih),
 * the `--name value` flags, `--help`, the README's settings list and
 * CONFIG GET, as Redis's static_configs[] does. Order: defaults, then the
 * file, then flags; validated once; afterwards only the live settings
 * change (CONFIG SET: cfg_check_live, cfg_set_live).
 * Threads: cfg_load() on the main thread before any other starts; afterwards
 *   any thread may read struct cfg; a live setting (an int64_t) is stored
 *   with a relaxed atomic store and read as it is needed (or on a shard's
 *   tick, for the copies shards keep).
 * Errors: cfg_load() returns 0 or -EINVAL with a one-line reason in err. */
#ifndef RINGKV_SRC_CFG_H
#define RINGKV_SRC_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "buf.h"
#include "log.h"

/* Most shard threads: SCAN's cursor holds the shard in its top 8 bits
 * (shards/cmd.c), so a shard past 255 could never be scanned. */
#define CFG_MAX_THREADS 256

enum cfg_policy {
    CFG_POLICY_NOEVICTION,
    CFG_POLICY_ALLKEYS_LRU,
    CFG_POLICY_VOLATILE_LRU,
    CFG_POLICY_ALLKEYS_RANDOM,
    CFG_POLICY_VOLATILE_RANDOM,
    CFG_POLICY_VOLATILE_TTL,
};

enum cfg_fsync { CFG_FSYNC_ALWAYS, CFG_FSYNC_EVERYSEC, CFG_FSYNC_NO };
enum cfg_storage { CFG_STORAGE_MEMORY, CFG_STORAGE_LOG };
enum cfg_compression { CFG_COMPRESSION_NONE, CFG_COMPRESSION_LZ4, CFG_COMPRESSION_ZSTD };
enum cfg_loglevel { CFG_LOG_WARNING, CFG_LOG_NOTICE, CFG_LOG_VERBOSE, CFG_LOG_DEBUG };

struct cfg {
    char bind[256];
    int64_t port;
    int64_t memcache_port;
    int64_t threads;            /* 0 = one per CPU */
    bool cpu_affinity;          /* pin shard i to CPU i */
    char requirepass[256];
    int64_t maxmemory;          /* bytes; 0 = no limit */
    int64_t maxmemory_policy;   /* enum cfg_policy */
    int64_t maxmemory_samples;
    int64_t maxclients;
    int64_t timeout;            /* seconds a client may stay idle; 0 = no limit */
    char dir[1024];
    int64_t appendfsync;        /* enum cfg_fsync */
    int64_t storage;            /* enum cfg_storage */
    int64_t segment_size;       /* bytes after which a segment file is closed */
    int64_t compression;        /* enum cfg_compression, for stored values */
    int64_t compress_min_size;  /* values at least this long are compressed */
    int64_t compaction_threshold; /* % live under which old segments are rewritten */
    int64_t partitions;         /* Q, a power of two */
    int64_t admin_port;         /* HTTP admin API; -1 = port + 1000, 0 = off (cfg_admin_port) */
    int64_t cluster_port;       /* peers; 0 = port + 10000 (cfg_cluster_port) */
    char seeds[1024];           /* host:cluster-port,... to join; "" = none */
    bool auto_join;             /* join the seeds at start */
    char cluster_secret[256];   /* key of the peer frames' MAC; "" = none */
    char cluster_name[64];      /* peers of another name are refused; "" = none */
    int64_t weight;             /* relative capacity in the partition ring */
    char zone[64];              /* failure zone; "" for none */
    int64_t partition_function; /* enum keyhash_fn: slot; xxh3 for upgrade tests only */
    int64_t proto_max_bulk_len; /* largest argument / value */
    int64_t max_key_size;
    int64_t max_siblings;       /* RING.PUT refuses to leave more siblings */
    int64_t warn_siblings;      /* more siblings than this are logged and counted */
    int64_t replicas;           /* N: nodes keeping each key (coordinator, shards/coord.h) */
    int64_t read_quorum;        /* R */
    int64_t write_quorum;       /* W */
    int64_t tombstone_grace_s;  /* replication: deletes are kept this long, then reaped */
    int64_t max_hint_window_s;  /* hinted handoff (shards/hints.h): no hints for an owner
                                   down longer than this */
    int64_t hint_max_bytes;     /* ... pending hints per target node at most */
    int64_t hint_max_bytes_per_sec; /* ... delivery rate at most */
    int64_t aae_interval_s;     /* anti-entropy: seconds between exchanges (0: off) */
    int64_t aae_rebuild_interval_s; /* anti-entropy: seconds between tree rebuilds */
    int64_t aae_max_keys;       /* anti-entropy: keys repaired per exchange at most */
    int64_t handoff_concurrency;       /* partition streams a node pulls at once */
    int64_t handoff_max_bytes_per_sec; /* partition streams' bytes per second; 0 = no limit */
    int64_t max_request_args;
    int64_t client_query_buffer_limit;
    int64_t request_timeout_ms; /* a request not answered by then gets an error */
    int64_t slow_turn_ms;       /* a shard loop turn this long counts as slow */
    int64_t slowlog_log_slower_than_us; /* SLOWLOG: runs this long are kept; < 0: none */
    int64_t slowlog_max_len;            /* SLOWLOG: entries kept */
    int64_t tcp_backlog;
    int64_t uring_entries;
    int64_t loglevel;           /* enum cfg_loglevel */
    char logfile[1024];
};

/* Fills c from defaults, then an INI file (argv[1] if it does not start with
 * "--", or --config FILE), then --name value flags. Sets *exit_now and
 * returns 0 after printing --help or --version. */
int cfg_load(struct cfg *c, int argc, char **argv, bool *exit_now, char *err, size_t err_len);

/* What cfg_get() gives for a secret setting that is set (cluster-secret):
 * the secret never leaves the process; empty still reads as unset. */
#define CFG_HIDDEN "(hidden)"

/* Calls emit(name, value) for every setting whose name matches the glob
 * pattern, lower case (CONFIG GET); a secret that is set as CFG_HIDDEN.
 * Returns how many matched. */
size_t cfg_get(const struct cfg *c, const char *pattern,
               void (*emit)(const char *name, const char *value, void *arg), void *arg);

/* The admin HTTP port in effect: admin-port, or port + 1000 for -1 (port -
 * 1000 when that would pass 65535); 0 when the API is off. */
int cfg_admin_port(const struct cfg *c);
/* The cluster port in effect: cluster-port, or port + 10000 for 0 (port -
 * 10000 when that would pass 65535). */
int cfg_cluster_port(const struct cfg *c);

/* Writes the settings documentation (markdown table) to f: the README's list. */
void cfg_write_markdown(FILE *f);

/* CONFIG SET, in two steps so that several settings change all or none:
 * cfg_check_live parses value for setting `name` (any case) as start-up
 * does, into *out; 0, -ENOENT (no such setting), -EPERM (fixed at
 * start-up) or -EINVAL (err says why). cfg_set_live stores a checked value
 * (a relaxed atomic store; loglevel also sets the log's level). Any
 * thread; readers of a live setting load it when they need it. */
int cfg_check_live(const struct cfg *c, const char *name, const char *value, int64_t *out,
                   char *err, size_t err_len);
/* Whether setting `name` (any case) may change: 0, -ENOENT or -EPERM. */
int cfg_is_live(const char *name);
void cfg_set_live(struct cfg *c, const char *name, int64_t value);
/* The log level of a loglevel setting's value (enum cfg_loglevel). */
enum log_level cfg_log_level(int64_t loglevel);

#endif
