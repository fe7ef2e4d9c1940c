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
# Output: markdown on stdout and in RESULTS_DIR/persist_compare.md, every run
# in persist_compare-runs.tsv. Exit status 1 when a server could not be
# measured. Settings (environment): QUICK=1, REPEATS (3), TEST_TIME (5),
# KEYS (1000000), SERVER_CPU, CLIENT_CPU, DATA_ROOT, RESULTS_DIR, RINGKV_BIN,
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

# start_server NAME FSYNC DIR THREADS: starts it (BENCH_PID, PORT) and waits.
start_server() {
    local name=$1 fsync=$2 dir=$3 threads=$4
    PORT=$(bench_free_port "")
    mkdir -p "$dir"
    if [[ $name == ringkv* ]]; then
        bench_start "$SCPU" "$dir.log" "$RINGKV" --port "$PORT" --memcache-port 0 \
            --threads "$threads" --bind 127.0.0.1 --storage log --dir "$dir" --appendfsync "$fsync"
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
    bench_start "$SCPU" "$dir.log" "$RINGKV" --port "$PORT" --memcache-port 0 --threads 1 \
        --bind 127.0.0.1 --storage log --dir "$dir" --appendfsync everysec --segment-size 8mb \
        --compression none --compaction-threshold "$threshold"
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

for ((round = 1; round <= REPEATS; round++)); do
    compaction_latency 50 "$round"
    compaction_latency 0 "$round"
done

for fsync in everysec always; do
    for ((round = 1; round <= REPEATS; round++)); do
        write_load ringkv "$fsync" "$round"
        write_load redis "$fsync" "$round"
    done
done
recovery ringkv 1
recovery ringkv-2shards 2
recovery redis 1

# med KIND SERVER FSYNC COLUMN: the median of a column over the rounds.
med() {
    awk -F'\t' -v k="$1" -v s="$2" -v f="$3" -v c="$4" \
        'NR > 1 && $1 == k && $2 == s && $3 == f { print $c }' "$TSV" | bench_median
}

{
    printf '# ringkv durable storage vs redis-server AOF (issue 3)\n\n'
    # shellcheck disable=SC2016 # backquotes are markdown
    printf 'Generated %s by `bench/persist_compare.sh` on %s.\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(bench_machine)"
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
    printf '\nRecovery of %s keys (32-byte values, written once with appendfsync everysec): seconds from exec until DBSIZE answers %s, median of %s restarts.\n\n' "$KEYS" "$KEYS" "$REPEATS"
    printf '| server | seconds | keys/s | **time vs redis** |\n|---|---:|---:|---:|\n'
    xr=$(med recovery redis everysec 8)
    for s in ringkv ringkv-2shards redis; do
        t=$(med recovery "$s" everysec 8)
        printf '| %s | %s | %.0f | **%s** |\n' "$s" "$t" "$(awk -v n="$KEYS" -v t="$t" 'BEGIN { print (t > 0 ? n / t : 0) }')" "$(bench_ratio "$t" "$xr")"
    done
    printf '\nGET latency while compaction runs: one shard holding 50,000 keys of 1 KiB written %s times over (8 MiB segments, no compression); GETs at %s/s from 50 connections, pipeline 1, for %s s, latency from each request'"'"'s intended send time; median of %s runs.\n\n' "$GARBAGE_ROUNDS" "$GET_RATE" $((TEST_TIME * 2)) "$REPEATS"
    printf '| compaction | GET/s | p99 ms | p99.9 ms | segments compacted during the load |\n|---|---:|---:|---:|---:|\n'
    for t in 50 0; do
        printf '| %s | %.0f | %s | %s | %s |\n' "$([[ $t == 0 ]] && echo off || echo "on (threshold $t)")" \
            "$(med compaction "threshold-$t" everysec 5)" "$(med compaction "threshold-$t" everysec 6)" \
            "$(med compaction "threshold-$t" everysec 7)" "$(med compaction "threshold-$t" everysec 8)"
    done
    printf '\nEvery run: [persist_compare-runs.tsv](persist_compare-runs.tsv).\n'
} | tee "$RESULTS_DIR/persist_compare.md"
