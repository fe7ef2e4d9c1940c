#!/usr/bin/env bash
# bench/ab_cpu.sh: server CPU per request of two ringkv binaries, A/B in
# alternating rounds (for "does this change cost the request path anything").
#
# Each round starts binary A, then binary B (--threads 1 --storage memory,
# pinned to SERVER_CPU), preloads it, and measures the server's CPU time
# (user+sys of all its threads, /proc/PID/stat) over one redis-benchmark load
# pinned to CLIENT_CPU: GET and SET, 50 clients, pipeline 1 (N1 requests) and
# 16 (N16 requests), random keys over 1,000,000, 32-byte values. It prints
# every round and then the median per test with the ratio B/A.
#
# Usage: bench/ab_cpu.sh A_BIN B_BIN   (environment: ROUNDS (5), N1 (300000),
#   N16 (2000000), SERVER_CPU, CLIENT_CPU, A_ARGS, B_ARGS: extra flags per binary)
# Example: bench/ab_cpu.sh /tmp/ringkv.before build/ringkv
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
(($# == 2)) || bench_die "usage: bench/ab_cpu.sh A_BIN B_BIN"
bench_need taskset redis-server redis-benchmark redis-cli awk
read -r SCPU CCPU < <(bench_cpus)
ROUNDS=${ROUNDS:-5} N1=${N1:-300000} N16=${N16:-2000000}
declare -A BIN=([A]=$1 [B]=$2) ARGS=([A]=${A_ARGS:-} [B]=${B_ARGS:-})
bench_trap

# measure WHICH TEST PIPELINE: prints CPU microseconds per request.
measure() {
    local which=$1 test=$2 pipe=$3 port dir n t0 t1 ports
    n=$( ((pipe == 1)) && echo "$N1" || echo "$N16")
    port=$(bench_free_port)
    dir=$(mktemp -d)
    # shellcheck disable=SC2086
    mapfile -t ports < <(bench_ringkv_ports "${BIN[$which]}" "$port")
    bench_start "$SCPU" "$dir/log" "${BIN[$which]}" --threads 1 --storage memory --port "$port" \
        --memcache-port 0 --bind 127.0.0.1 --dir "$dir" "${ports[@]}" ${ARGS[$which]}
    bench_wait_resp "$port" "$BENCH_PID" 15 || bench_die "$which did not start: $(tail -n1 "$dir/log")"
    taskset -c "$CCPU" redis-benchmark -p "$port" -c 50 -n 100000 -P 16 -t set -d 32 -r 1000000 \
        -q >/dev/null
    t0=$(bench_cpu_ticks "$BENCH_PID")
    taskset -c "$CCPU" redis-benchmark -p "$port" -c 50 -n "$n" -P "$pipe" -t "$test" -d 32 \
        -r 1000000 -q >/dev/null
    t1=$(bench_cpu_ticks "$BENCH_PID")
    bench_stop "$BENCH_PID"
    rm -rf "$dir"
    bench_cpu_us_per_req $((t1 - t0)) "$n"
}

results=$(mktemp)
for ((r = 1; r <= ROUNDS; r++)); do
    for test in get set; do
        for pipe in 1 16; do
            for which in A B; do
                printf '%s\t%s\t%s\t%s\n' "$which" "$test" "$pipe" "$(measure "$which" "$test" "$pipe")"
            done
        done
    done | tee -a "$results"
done
printf '\n| test | pipeline | A us/req | B us/req | B/A |\n|---|---:|---:|---:|---:|\n'
for test in get set; do
    for pipe in 1 16; do
        a=$(awk -F'\t' -v t="$test" -v p="$pipe" '$1 == "A" && $2 == t && $3 == p { print $4 }' "$results" | bench_median)
        b=$(awk -F'\t' -v t="$test" -v p="$pipe" '$1 == "B" && $2 == t && $3 == p { print $4 }' "$results" | bench_median)
        printf '| %s | %s | %s | %s | %s |\n' "${test^^}" "$pipe" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b / a }')"
    done
done
rm -f "$results"
