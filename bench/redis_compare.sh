#!/usr/bin/env bash
# bench/redis_compare.sh: ringkv (--threads 1) against redis-server, one run.
#
# Both servers run at once, each pinned to SERVER_CPU (default 0; only the one
# under load is busy); redis-benchmark runs pinned to CLIENT_CPU (default 1):
# GET and SET, 50 clients, pipeline 1 and 16, random keys over 1,000,000
# (-r 1000000), 32-byte values (-d 32), the servers alternating in each of
# REPEATS rounds. The figure that counts is each server's CPU time per request
# (user+sys of all its threads from /proc/PID/stat before and after each load),
# printed as ringkv / redis-server beside throughput and p99.
# Memory: right after start, each server is loaded with exactly KEYS keys of
# 32-byte values (ringkv-bench, P:P pattern, every key once, pipelined) and its
# RSS growth per key is reported.
#
# Output: a markdown table on stdout and in RESULTS_DIR/redis_compare.md, every
# run in redis_compare-runs.tsv. Exit status 1 when ringkv could not be measured.
#
# Settings (environment): QUICK=1, REPEATS (3), REQUESTS_P1 (200000),
# REQUESTS_P16 (1000000), KEYS (1000000), SERVER_CPU, CLIENT_CPU, RESULTS_DIR,
# RINGKV_BIN (build/ringkv), RINGKV_BENCH_BIN. Default run: about 1 minute.
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT=$(bench_root)

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
    REPEATS=${REPEATS:-1}
    REQUESTS_P1=${REQUESTS_P1:-50000}
    REQUESTS_P16=${REQUESTS_P16:-200000}
    RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results/tmp/quick}
fi
REPEATS=${REPEATS:-3}
REQUESTS_P1=${REQUESTS_P1:-200000}
REQUESTS_P16=${REQUESTS_P16:-1000000}
KEYS=${KEYS:-1000000}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results}
RINGKV_BIN=${RINGKV_BIN:-$ROOT/build/ringkv}

bench_need taskset redis-server redis-benchmark redis-cli awk
BENCH=$(bench_find_bench_bin)
read -r SCPU CCPU < <(bench_cpus)
WORK=$ROOT/bench/results/tmp/redis_compare
mkdir -p "$RESULTS_DIR" "$WORK" || bench_die "cannot create $RESULTS_DIR"
RUNS=$RESULTS_DIR/redis_compare-runs.tsv
printf 'server\ttest\tpipeline\trep\trequests\tops\tp50_ms\tp99_ms\tcpu_us_per_req\n' >"$RUNS"
bench_trap

declare -A PID PORT RSS0 RSS1 DBSIZE
SERVERS=()
NOTES=()

start_ringkv() {
    if [[ ! -x $RINGKV_BIN ]]; then
        NOTES+=("ringkv: no binary at $RINGKV_BIN")
        return
    fi
    local port mport cmd
    port=$(bench_free_port)
    mport=$(bench_free_port "$port" "${PORT[redis]:-}")
    mapfile -t cmd < <(bench_ringkv_cmd "$RINGKV_BIN" "$port" "$mport" 1)
    bench_start "$SCPU" "$WORK/ringkv.log" "${cmd[@]}"
    if ! bench_wait_resp "$port" "$BENCH_PID" 15; then
        NOTES+=("ringkv: did not start or answer PING ($(tail -n1 "$WORK/ringkv.log"))")
        bench_stop "$BENCH_PID"
        return
    fi
    PID[ringkv]=$BENCH_PID
    PORT[ringkv]=$port
    SERVERS+=(ringkv)
}

start_redis() {
    local port cmd
    port=$(bench_free_port "${PORT[ringkv]:-}")
    mapfile -t cmd < <(bench_redis_cmd "$port")
    bench_start "$SCPU" "$WORK/redis.log" "${cmd[@]}"
    bench_wait_resp "$port" "$BENCH_PID" 15 || bench_die "redis-server did not start"
    PID[redis]=$BENCH_PID
    PORT[redis]=$port
    SERVERS+=(redis)
}

# load_keys SERVER: KEYS keys with 32-byte values, each set once; RSS before and after.
load_keys() {
    local s=$1
    RSS0[$s]=$(bench_rss_kb "${PID[$s]}")
    taskset -c "$CCPU" "$BENCH" -s 127.0.0.1 -p "${PORT[$s]}" -t 1 -c 50 --pipeline 64 \
        --ratio 1:0 --key-pattern P:P -n allkeys --key-minimum 0 --key-maximum $((KEYS - 1)) \
        --key-prefix key: -d 32 --hide-histogram --hide-progress >"$WORK/load_$s.out" 2>&1 ||
        bench_die "loading $s failed: $(tail -n1 "$WORK/load_$s.out")"
    RSS1[$s]=$(bench_rss_kb "${PID[$s]}")
    DBSIZE[$s]=$(redis-cli -h 127.0.0.1 -p "${PORT[$s]}" dbsize 2>/dev/null | tr -dc 0-9)
    bench_log "$s: $KEYS keys loaded, RSS ${RSS0[$s]} -> ${RSS1[$s]} KiB, DBSIZE ${DBSIZE[$s]:-?}"
}

requests_for() { (($1 == 1)) && echo "$REQUESTS_P1" || echo "$REQUESTS_P16"; }

# measure SERVER TEST PIPELINE REP
measure() {
    local s=$1 test=$2 pipe=$3 rep=$4 n t0 t1 line ops p50 p99
    n=$(requests_for "$pipe")
    t0=$(bench_cpu_ticks "${PID[$s]}") || bench_die "$s is gone"
    taskset -c "$CCPU" redis-benchmark -h 127.0.0.1 -p "${PORT[$s]}" -c 50 -n "$n" -P "$pipe" \
        -t "$test" -d 32 -r 1000000 --csv >"$WORK/rb.csv" 2>&1 ||
        bench_die "redis-benchmark against $s failed: $(tail -n1 "$WORK/rb.csv")"
    t1=$(bench_cpu_ticks "${PID[$s]}") || bench_die "$s is gone"
    line=$(awk -F, -v t="${test^^}" '{ gsub(/"/, "") } $1 == t { print $2, $5, $7 }' "$WORK/rb.csv")
    [[ -n $line ]] || bench_die "no $test result from redis-benchmark against $s"
    read -r ops p50 p99 <<<"$line"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$test" "$pipe" "$rep" "$n" "$ops" "$p50" \
        "$p99" "$(bench_cpu_us_per_req $((t1 - t0)) "$n")" >>"$RUNS"
    bench_log "$s ${test^^} P$pipe #$rep: $ops ops/s, p99 $p99 ms," \
        "$(bench_cpu_us_per_req $((t1 - t0)) "$n") us CPU/req"
}

per_key() {
    awk -v a="${RSS0[$1]:-}" -v b="${RSS1[$1]:-}" -v n="$KEYS" \
        'BEGIN { if (a == "" || b == "") print "nan"; else printf "%.1f\n", (b - a) * 1024 / n }'
}

start_ringkv
start_redis
bench_log "servers on CPU $SCPU (${SERVERS[*]}), redis-benchmark on CPU $CCPU, $REPEATS rounds"
for s in "${SERVERS[@]}"; do load_keys "$s"; done
for ((rep = 1; rep <= REPEATS; rep++)); do
    order=("${SERVERS[@]}")
    ((rep % 2)) || mapfile -t order < <(printf '%s\n' "${SERVERS[@]}" | tac)
    for s in "${order[@]}"; do
        for pipe in 1 16; do
            for test in set get; do measure "$s" "$test" "$pipe" "$rep"; done
        done
    done
done

MD=$RESULTS_DIR/redis_compare.md
{
    echo "# ringkv vs redis-server (issue 2)"
    echo
    echo "Generated $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/redis_compare.sh\` on" \
         "$(bench_machine)."
    echo "ringkv --threads 1 and redis-server $(redis_version)," \
         "each pinned to CPU $SCPU; redis-benchmark pinned to CPU $CCPU: 50 clients, -r 1000000," \
         "-d 32, $REQUESTS_P1 requests at pipeline 1 and $REQUESTS_P16 at pipeline 16, medians of" \
         "$REPEATS rounds. CPU is the server's user+sys time (all threads, /proc/PID/stat)" \
         "per request."
    if ((${#NOTES[@]})); then
        echo
        printf -- '- %s\n' "${NOTES[@]}"
    fi
    echo
    bench_ab_table "$RUNS" ringkv redis ringkv redis "get set" "2 3 6 8 9"
    echo
    echo "Memory for $KEYS keys with 32-byte values (RSS growth while loading them into a" \
         "fresh server):"
    echo
    echo "| server | RSS before MiB | RSS after MiB | DBSIZE | bytes per key |"
    echo "|---|---:|---:|---:|---:|"
    for s in "${SERVERS[@]}"; do
        printf '| %s | %.1f | %.1f | %s | %s |\n' "$s" \
            "$(awk -v k="${RSS0[$s]}" 'BEGIN { print k / 1024 }')" \
            "$(awk -v k="${RSS1[$s]}" 'BEGIN { print k / 1024 }')" "${DBSIZE[$s]:-?}" \
            "$(per_key "$s")"
    done
    echo
    echo "Memory per key, ringkv / redis-server:" \
         "$(bench_ratio "$(per_key ringkv)" "$(per_key redis)")"
    echo
    echo "Every run: [redis_compare-runs.tsv](redis_compare-runs.tsv)."
} >"$MD"
cat "$MD"
[[ -n ${PID[ringkv]:-} ]]
