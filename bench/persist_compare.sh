#!/usr/bin/env bash
# bench/persist_compare.sh: ringkv's durable storage against redis-server's AOF,
# one run, same machine (issue 3).
#
# Writes: ringkv --threads 1 --storage log and redis-server --appendonly yes,
# each with appendfsync everysec and then always, each alone and pinned to
# SERVER_CPU (default 0), data on the same file system (a temporary folder
# under DATA_ROOT, default /tmp). ringkv-bench, pinned to CLIENT_CPU (default 1),
# sends SETs only: 50 connections, pipeline 1, 32-byte values, random keys over
# 1,000,000, TEST_TIME seconds, REPEATS rounds with the servers alternating.
# Reported: throughput, p99 and the server's CPU per request (user+sys of all
# its threads from /proc/PID/stat), as ringkv / redis.
# Recovery: each server is loaded with KEYS keys (32-byte values, every key
# once) under appendfsync everysec, stopped with SIGTERM, and started again
# on the same data; the time from exec until it answers DBSIZE with every key
# is measured (polling every 10 ms), REPEATS times. ringkv is timed with one
# shard (as redis) and with two (recovery runs in parallel across shards).
#
# Compaction: ringkv (one shard, 8 MiB segments, no compression) is filled
# with GARBAGE_ROUNDS overwrites of 50,000 keys of 1 KiB, then serves a GET
# load (50 connections, pipeline 1, rate-limited to GET_RATE requests/s in
# all, latency from each request's intended send time) for TEST_TIME*2
# seconds, once with compaction running (compaction-threshold 50) and once
# with it off (0); GET p99 and p99.9 of the two are compared.
#
# Values beyond RAM: ringkv (one shard, no compression) holds TIER_KEYS keys of
# 1 KiB (--verify values: each carries its key and a checksum), once with
# maxmemory at half the data (so about half the values live on disk only) and
# once without maxmemory (all in memory); redis-server (no persistence) holds
# the same keys in memory as the reference. A GET load over uniformly random
# keys (50 connections with distinct seeds, pipeline 1, --verify) runs
# TEST_TIME seconds against
# each; throughput, p99, p99.9 and server CPU per request are reported, with
# the share of GETs that read from disk (INFO values_loaded). The segment
# files sit in the page cache here, so a cold read is an io_uring read served
# from memory by the kernel, not by the device.
#
# Output: markdown on stdout and in RESULTS_DIR/persist_compare.md, every run
# in persist_compare-runs.tsv. Exit status 1 when a server could not be
# measured. Settings (environment): QUICK=1, REPEATS (3), TEST_TIME (5),
# KEYS (1000000), TIER_KEYS (100000), ONLY (the parts to run, default
# "tier compaction write recovery"; the report shows what ran), SERVER_CPU, CLIENT_CPU, DATA_ROOT, RESULTS_DIR, RINGKV_BIN,
# RINGKV_BENCH_BIN. Default run: about 3 minutes.
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT=$(bench_root)

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
    REPEATS=${REPEATS:-1}
    TEST_TIME=${TEST_TIME:-2}
    KEYS=${KEYS:-100000}
    RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results/tmp/quick}
fi
REPEATS=${REPEATS:-3}
TEST_TIME=${TEST_TIME:-5}
KEYS=${KEYS:-1000000}
GARBAGE_ROUNDS=${GARBAGE_ROUNDS:-8}
TIER_KEYS=${TIER_KEYS:-100000}
GET_RATE=${GET_RATE:-20000}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results}
DATA_ROOT=${DATA_ROOT:-/tmp}

bench_need redis-server redis-cli taskset awk
BENCH=$(bench_find_bench_bin)
RINGKV=${RINGKV_BIN:-$ROOT/build/ringkv}
[[ -x $RINGKV ]] || bench_die "ringkv not found at $RINGKV (build it or set RINGKV_BIN)"
read -r SCPU CCPU < <(bench_cpus)
mkdir -p "$RESULTS_DIR"
WORK=$(mktemp -d "$DATA_ROOT/ringkv-persist-bench.XXXXXX")
bench_trap
trap 'bench_stop_all; rm -rf "$WORK"' EXIT
TSV=$RESULTS_DIR/persist_compare-runs.tsv
printf 'kind\tserver\tfsync\tround\tops_per_sec\tp99_ms\tcpu_us_per_req\tseconds\n' >"$TSV"

# start_ringkv LOG FLAG...: ringkv on 127.0.0.1:PORT with FLAGs (BENCH_PID), its
# admin API off and a free cluster port (bench_ringkv_ports), so that neither
# defaults onto a port that is taken (PORT + 1000, PORT + 10000).
start_ringkv() {
    local log=$1 ports
    shift
    mapfile -t ports < <(bench_ringkv_ports "$RINGKV" "$PORT")
    bench_start "$SCPU" "$log" "$RINGKV" --port "$PORT" --memcache-port 0 --bind 127.0.0.1 \
        "${ports[@]}" "$@"
}

# start_server NAME FSYNC DIR THREADS: starts it (BENCH_PID, PORT) and waits.
start_server() {
    local name=$1 fsync=$2 dir=$3 threads=$4
    PORT=$(bench_free_port "")
    mkdir -p "$dir"
    if [[ $name == ringkv* ]]; then
        start_ringkv "$dir.log" --threads "$threads" --storage log --dir "$dir" \
            --appendfsync "$fsync"
    else
        bench_start "$SCPU" "$dir.log" redis-server --port "$PORT" --bind 127.0.0.1 --save '' \
            --appendonly yes --appendfsync "$fsync" --dir "$dir" --protected-mode no
    fi
}

# dbsize_is PORT N: true when the server answers DBSIZE with N.
dbsize_is() { [[ $(redis-cli -h 127.0.0.1 -p "$1" dbsize 2>/dev/null) == "$2" ]]; }

# ready_after PORT PID N: seconds until DBSIZE answers N (the caller started
# the clock with START_NS just before starting the server).
ready_after() {
    local port=$1 pid=$2 n=$3 deadline=$((SECONDS + 300))
    while ((SECONDS < deadline)); do
        bench_alive "$pid" || return 1
        if dbsize_is "$port" "$n"; then
            awk -v a="$START_NS" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }'
            return 0
        fi
        sleep 0.01
    done
    return 1
}

# write_load NAME FSYNC ROUND: one SET-only load against a fresh server.
write_load() {
    local name=$1 fsync=$2 round=$3 dir=$WORK/$1-$2-$3 t0 t1 out=$WORK/out
    start_server "$name" "$fsync" "$dir" 1
    local pid=$BENCH_PID
    bench_wait_resp "$PORT" "$pid" 20 || bench_die "$name did not start: $(tail -n3 "$dir.log")"
    t0=$(bench_cpu_ticks "$pid")
    taskset -c "$CCPU" "$BENCH" -s 127.0.0.1 -p "$PORT" -t 1 -c 50 --pipeline 1 --ratio 1:0 \
        --key-pattern R:R --key-maximum 999999 -d 32 --test-time "$TEST_TIME" -n 100000000 \
        --hide-histogram --hide-progress --json-out-file "$out.json" >"$out" 2>&1 ||
        bench_die "load on $name failed: $(tail -n2 "$out")"
    t1=$(bench_cpu_ticks "$pid")
    bench_stop "$pid"
    rm -rf "$dir" "$dir.log"
    local ops p99 n cpu
    ops=$(jq '."ALL STATS".Sets."Ops/sec"' "$out.json")
    p99=$(jq '."ALL STATS".Sets."Percentile Latencies"."p99.00"' "$out.json")
    n=$(jq '."ALL STATS".Sets.Count' "$out.json")
    cpu=$(bench_cpu_us_per_req $((t1 - t0)) "$n")
    printf 'write\t%s\t%s\t%s\t%s\t%s\t%s\t\n' "$name" "$fsync" "$round" "$ops" "$p99" "$cpu" >>"$TSV"
    bench_log "$name appendfsync $fsync round $round: $ops SET/s, p99 $p99 ms, $cpu us CPU/req"
}

# recovery NAME THREADS: loads KEYS keys, restarts REPEATS times, timing each.
recovery() {
    local name=$1 threads=$2 dir=$WORK/recovery-$1 round s
    start_server "$name" everysec "$dir" "$threads"
    local pid=$BENCH_PID
    bench_wait_resp "$PORT" "$pid" 20 || bench_die "$name did not start: $(tail -n3 "$dir.log")"
    taskset -c "$CCPU" "$BENCH" -s 127.0.0.1 -p "$PORT" -t 1 -c 50 --pipeline 64 --ratio 1:0 \
        --key-pattern P:P -n allkeys --key-minimum 0 --key-maximum $((KEYS - 1)) \
        --key-prefix key: -d 32 --hide-histogram --hide-progress >"$WORK/load.out" 2>&1 ||
        bench_die "loading $name failed: $(tail -n1 "$WORK/load.out")"
    dbsize_is "$PORT" "$KEYS" || bench_die "$name does not hold $KEYS keys after loading"
    bench_stop "$pid"
    bench_log "$name: $KEYS keys written, $(du -sh "$dir" | cut -f1) on disk"
    for ((round = 1; round <= REPEATS; round++)); do
        START_NS=$(date +%s%N)
        start_server "$name" everysec "$dir" "$threads"
        pid=$BENCH_PID
        s=$(ready_after "$PORT" "$pid" "$KEYS") || bench_die "$name did not recover: $(tail -n3 "$dir.log")"
        bench_stop "$pid"
        printf 'recovery\t%s\teverysec\t%s\t\t\t\t%s\n' "$name" "$round" "$s" >>"$TSV"
        bench_log "$name recovered $KEYS keys in $s s"
    done
    rm -rf "$dir" "$dir.log"
}

# info_field PORT NAME: a number from INFO persistence.
info_field() {
    redis-cli -h 127.0.0.1 -p "$1" info persistence 2>/dev/null | tr -d '\r' |
        awk -F: -v n="$2" '$1 == n { print $2 }'
}

# compaction_latency THRESHOLD ROUND: GET latency on a garbage-filled log.
compaction_latency() {
    local threshold=$1 round=$2 dir=$WORK/compaction-$1-$2 out=$WORK/out pid c0 c1
    PORT=$(bench_free_port "")
    mkdir -p "$dir"
    start_ringkv "$dir.log" --threads 1 --storage log --dir "$dir" --appendfsync everysec \
        --segment-size 8mb --compression none --compaction-threshold "$threshold"
    pid=$BENCH_PID
    bench_wait_resp "$PORT" "$pid" 20 || bench_die "ringkv did not start: $(tail -n3 "$dir.log")"
    taskset -c "$CCPU" "$BENCH" -s 127.0.0.1 -p "$PORT" -t 1 -c 50 --pipeline 16 --ratio 1:0 \
        --key-pattern P:P -n $((50000 * GARBAGE_ROUNDS / 50)) --key-minimum 0 \
        --key-maximum 49999 -d 1024 --hide-histogram --hide-progress >"$out" 2>&1 ||
        bench_die "filling ringkv failed: $(tail -n2 "$out")"
    c0=$(info_field "$PORT" compactions)
    taskset -c "$CCPU" "$BENCH" -s 127.0.0.1 -p "$PORT" -t 1 -c 50 --pipeline 1 --ratio 0:1 \
        --key-pattern R:R --key-minimum 0 --key-maximum 49999 -d 1024 \
        --rate-limiting $((GET_RATE / 50)) --test-time $((TEST_TIME * 2)) -n 100000000 \
        --hide-histogram --hide-progress --json-out-file "$out.json" >"$out" 2>&1 ||
        bench_die "GET load failed: $(tail -n2 "$out")"
    c1=$(info_field "$PORT" compactions)
    bench_stop "$pid"
    rm -rf "$dir" "$dir.log"
    local p99 p999 ops
    ops=$(jq '."ALL STATS".Gets."Ops/sec"' "$out.json")
    p99=$(jq '."ALL STATS".Gets."Percentile Latencies"."p99.00"' "$out.json")
    p999=$(jq '."ALL STATS".Gets."Percentile Latencies"."p99.90"' "$out.json")
    printf 'compaction\tthreshold-%s\teverysec\t%s\t%s\t%s\t%s\t%s\n' "$threshold" "$round" \
        "$ops" "$p99" "$p999" "$((c1 - c0))" >>"$TSV"
    bench_log "compaction-threshold $threshold: $ops GET/s, p99 $p99 ms, p99.9 $p999 ms, $((c1 - c0)) segments compacted meanwhile"
}

# beyond_ram NAME ROUND: GET load on TIER_KEYS 1 KiB keys; NAME is tiered
# (maxmemory half the data), inmemory (no maxmemory) or redis.
beyond_ram() {
    local name=$1 round=$2 dir=$WORK/tier-$1-$2 out=$WORK/out pid t0 t1 l0 l1
    PORT=$(bench_free_port "")
    mkdir -p "$dir"
    local half=$((TIER_KEYS * 1024 / 2))
    if [[ $name == redis ]]; then
        bench_start "$SCPU" "$dir.log" redis-server --port "$PORT" --bind 127.0.0.1 --save '' \
            --appendonly no --dir "$dir" --protected-mode no
    else
        start_ringkv "$dir.log" --threads 1 --storage log --dir "$dir" --appendfsync everysec \
            --compression none --maxmemory "$([[ $name == tiered ]] && echo "$half" || echo 0)"
    fi
    pid=$BENCH_PID
    bench_wait_resp "$PORT" "$pid" 20 || bench_die "$name did not start: $(tail -n3 "$dir.log")"
    taskset -c "$CCPU" "$BENCH" -s 127.0.0.1 -p "$PORT" -t 1 -c 50 --pipeline 16 --ratio 1:0 \
        --key-pattern P:P -n allkeys --key-minimum 0 --key-maximum $((TIER_KEYS - 1)) -d 1024 \
        --verify --hide-histogram --hide-progress >"$out" 2>&1 ||
        bench_die "filling $name failed: $(tail -n2 "$out")"
    dbsize_is "$PORT" "$TIER_KEYS" || bench_die "$name does not hold $TIER_KEYS keys"
    sleep 1 # the tick brings memory under maxmemory after the burst
    l0=$(info_field "$PORT" values_loaded)
    t0=$(bench_cpu_ticks "$pid")
    taskset -c "$CCPU" "$BENCH" -s 127.0.0.1 -p "$PORT" -t 1 -c 50 --pipeline 1 --ratio 0:1 \
        --key-pattern R:R --key-minimum 0 --key-maximum $((TIER_KEYS - 1)) -d 1024 --verify \
        --distinct-client-seed \
        --test-time "$TEST_TIME" -n 100000000 --hide-histogram --hide-progress \
        --json-out-file "$out.json" >"$out" 2>&1 || bench_die "GET load on $name failed: $(tail -n2 "$out")"
    t1=$(bench_cpu_ticks "$pid")
    l1=$(info_field "$PORT" values_loaded)
    bench_stop "$pid"
    rm -rf "$dir" "$dir.log"
    local ops p99 p999 n cpu disk
    ops=$(jq '."ALL STATS".Gets."Ops/sec"' "$out.json")
    p99=$(jq '."ALL STATS".Gets."Percentile Latencies"."p99.00"' "$out.json")
    p999=$(jq '."ALL STATS".Gets."Percentile Latencies"."p99.90"' "$out.json")
    n=$(jq '."ALL STATS".Gets.Count' "$out.json")
    cpu=$(bench_cpu_us_per_req $((t1 - t0)) "$n")
    disk=$(awk -v a="${l0:-0}" -v b="${l1:-0}" -v n="$n" 'BEGIN { printf "%.2f", (n > 0 ? (b - a) / n : 0) }')
    printf 'tier\t%s\teverysec\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$ops" "$p99" "$cpu" \
        "$p999" "$disk" >>"$TSV"
    bench_log "$name: $ops GET/s, p99 $p99 ms, p99.9 $p999 ms, $cpu us CPU/req, $disk of GETs from disk"
}

ONLY=${ONLY:-tier compaction write recovery}
wants() { [[ " $ONLY " == *" $1 "* ]]; }

if wants tier; then
    for ((round = 1; round <= REPEATS; round++)); do
        beyond_ram tiered "$round"
        beyond_ram inmemory "$round"
        beyond_ram redis "$round"
    done
fi

if wants compaction; then
    for ((round = 1; round <= REPEATS; round++)); do
        compaction_latency 50 "$round"
        compaction_latency 0 "$round"
    done
fi

if wants write; then
    for fsync in everysec always; do
        for ((round = 1; round <= REPEATS; round++)); do
            write_load ringkv "$fsync" "$round"
            write_load redis "$fsync" "$round"
        done
    done
fi
if wants recovery; then
    recovery ringkv 1
    recovery ringkv-2shards 2
    recovery redis 1
fi

# med KIND SERVER FSYNC COLUMN: the median of a column over the rounds.
med() {
    awk -F'\t' -v k="$1" -v s="$2" -v f="$3" -v c="$4" \
        'NR > 1 && $1 == k && $2 == s && $3 == f { print $c }' "$TSV" | bench_median
}

{
    printf '# ringkv durable storage vs redis-server AOF (issue 3)\n\n'
    # shellcheck disable=SC2016 # backquotes are markdown
    printf 'Generated %s by `bench/persist_compare.sh` on %s.\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(bench_machine)"
    if wants write; then
    printf 'ringkv --threads 1 --storage log against redis-server %s --appendonly yes, each alone on CPU %s, data in %s; ' "$(redis_version)" "$SCPU" "$DATA_ROOT"
    printf 'ringkv-bench on CPU %s: SET only, 50 connections, pipeline 1, 32-byte values, random keys over 1,000,000, %s s per run, median of %s runs.\n\n' "$CCPU" "$TEST_TIME" "$REPEATS"
    printf '| appendfsync | ringkv SET/s | redis SET/s | **SET/s ringkv/redis** | ringkv p99 ms | redis p99 ms | ringkv CPU us/req | redis CPU us/req | CPU/req ringkv/redis |\n'
    printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|\n'
    for fsync in everysec always; do
        ro=$(med write ringkv $fsync 5) xo=$(med write redis $fsync 5)
        rp=$(med write ringkv $fsync 6) xp=$(med write redis $fsync 6)
        rc=$(med write ringkv $fsync 7) xc=$(med write redis $fsync 7)
        printf '| %s | %.0f | %.0f | **%s** | %s | %s | %s | %s | %s |\n' "$fsync" "$ro" "$xo" \
            "$(bench_ratio "$ro" "$xo")" "$rp" "$xp" "$rc" "$xc" "$(bench_ratio "$rc" "$xc")"
    done
    fi
    if wants recovery; then
    printf '\nRecovery of %s keys (32-byte values, written once with appendfsync everysec): seconds from exec until DBSIZE answers %s, median of %s restarts.\n\n' "$KEYS" "$KEYS" "$REPEATS"
    printf '| server | seconds | keys/s | **time vs redis** |\n|---|---:|---:|---:|\n'
    xr=$(med recovery redis everysec 8)
    for s in ringkv ringkv-2shards redis; do
        t=$(med recovery "$s" everysec 8)
        printf '| %s | %s | %.0f | **%s** |\n' "$s" "$t" "$(awk -v n="$KEYS" -v t="$t" 'BEGIN { print (t > 0 ? n / t : 0) }')" "$(bench_ratio "$t" "$xr")"
    done
    fi
    if wants compaction; then
    printf '\nGET latency while compaction runs: one shard holding 50,000 keys of 1 KiB written %s times over (8 MiB segments, no compression); GETs at %s/s from 50 connections, pipeline 1, for %s s, latency from each request'"'"'s intended send time; median of %s runs.\n\n' "$GARBAGE_ROUNDS" "$GET_RATE" $((TEST_TIME * 2)) "$REPEATS"
    printf '| compaction | GET/s | p99 ms | p99.9 ms | segments compacted during the load |\n|---|---:|---:|---:|---:|\n'
    for t in 50 0; do
        printf '| %s | %.0f | %s | %s | %s |\n' "$([[ $t == 0 ]] && echo off || echo "on (threshold $t)")" \
            "$(med compaction "threshold-$t" everysec 5)" "$(med compaction "threshold-$t" everysec 6)" \
            "$(med compaction "threshold-$t" everysec 7)" "$(med compaction "threshold-$t" everysec 8)"
    done
    fi
    if wants tier; then
    printf '\nValues beyond RAM: %s keys of 1 KiB on one shard, GETs of uniformly random keys from 50 connections, pipeline 1, values verified, %s s per run, median of %s runs. "tiered" has maxmemory at half the data; "in memory" has no maxmemory; redis-server (no persistence) holds all in memory. The segment files are in the page cache.\n\n' "$TIER_KEYS" "$TEST_TIME" "$REPEATS"
    printf '| server | GET/s | p99 ms | p99.9 ms | CPU us/req | GETs read from disk | **GET/s vs redis** | **CPU/req vs redis** |\n|---|---:|---:|---:|---:|---:|---:|---:|\n'
    xo=$(med tier redis everysec 5) xc=$(med tier redis everysec 7)
    for s in tiered inmemory redis; do
        o=$(med tier "$s" everysec 5) c=$(med tier "$s" everysec 7)
        printf '| %s | %.0f | %s | %s | %s | %s | **%s** | **%s** |\n' \
            "$([[ $s == tiered ]] && echo "ringkv, maxmemory = data/2" || { [[ $s == inmemory ]] && echo "ringkv, in memory" || echo redis; })" \
            "$o" "$(med tier "$s" everysec 6)" "$(med tier "$s" everysec 8)" "$c" \
            "$(med tier "$s" everysec 9)" "$(bench_ratio "$o" "$xo")" "$(bench_ratio "$c" "$xc")"
    done
    fi
    printf '\nEvery run: [persist_compare-runs.tsv](persist_compare-runs.tsv).\n'
} | tee "$RESULTS_DIR/persist_compare.md"
