#!/usr/bin/env bash
# bench/cluster_bench.sh: ringkv-bench --cluster-mode against a 3-master Redis
# Cluster on 127.0.0.1, beside memtier_benchmark --cluster-mode (when
# installed) and redis-benchmark --cluster, the same load from each: SET alone
# and GET alone, 32-byte values, keys uniform over 1,000,000, 50 connections
# of one thread (each generator opens its own per master on top), pipeline 1
# and 16, REPEATS rounds alternating the generators. The masters share
# SERVER_CPU, the generator runs on CLIENT_CPU. Reports the median requests/s
# of each, each generator's own CPU time per request (user + sys of the
# process, from the shell's `times`; steadier than throughput on a busy
# machine) and ringkv-bench's MOVED count (0 on a steady cluster).
# Writes bench/results/cluster_bench.md (QUICK=1: shorter, to bench/results/tmp/quick/).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib.sh
source "$ROOT/bench/lib.sh"
bench_need jq taskset redis-server redis-cli redis-benchmark
BENCH=$(bench_find_bench_bin)
read -r SERVER_CPU CLIENT_CPU < <(bench_cpus)
REPEATS=${REPEATS:-3}
REQ_P1=${REQ_P1:-200000}
REQ_P16=${REQ_P16:-1000000}
OUT=$ROOT/bench/results
if [[ ${QUICK:-0} == 1 ]]; then
    REPEATS=1 REQ_P1=20000 REQ_P16=100000 OUT=$ROOT/bench/results/tmp/quick
fi
mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cluster_bench.XXXXXX")
trap 'bench_stop_all; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

mapfile -t PORTS < <(bench_redis_cluster_ports 3)
bench_redis_cluster_start "$WORK" "$SERVER_CPU" "${PORTS[@]}"
SEED=${PORTS[0]}
MEMTIER=$(command -v memtier_benchmark || true)
GENS="ringkv-bench redis-benchmark${MEMTIER:+ memtier}"
[[ -n $MEMTIER ]] || bench_log "memtier_benchmark is not installed: its rows are left out"

# gen GEN OP PIPELINE REQUESTS: runs one generator, its report to $WORK/run.json or run.csv.
gen() {
    local gen=$1 op=$2 pl=$3 n=$4 ratio
    ratio=$([[ $op == SET ]] && echo 1:0 || echo 0:1)
    case $gen in
    ringkv-bench)
        taskset -c "$CLIENT_CPU" "$BENCH" --cluster-mode -p "$SEED" -t 1 -c 50 --pipeline "$pl" \
            -n $((n / 50)) --ratio "$ratio" -d 32 --key-maximum 999999 --distinct-client-seed \
            --hide-histogram --hide-progress --json-out-file "$WORK/run.json" >/dev/null 2>&1 ;;
    memtier)
        taskset -c "$CLIENT_CPU" "$MEMTIER" --cluster-mode -s 127.0.0.1 -p "$SEED" -t 1 -c 50 \
            --pipeline "$pl" -n $((n / 50)) --ratio "$ratio" -d 32 --key-maximum 999999 \
            --distinct-client-seed --hide-histogram --json-out-file "$WORK/run.json" \
            >/dev/null 2>&1 ;;
    redis-benchmark)
        taskset -c "$CLIENT_CPU" redis-benchmark --cluster -h 127.0.0.1 -p "$SEED" -c 50 \
            -P "$pl" -n "$n" -d 32 -r 1000000 -t "${op,,}" --csv >"$WORK/run.csv" 2>/dev/null ;;
    esac
}

# run GEN OP PIPELINE REQUESTS: prints "requests/s moved cpu_us_per_request"; the
# CPU is the generator's alone (user + sys from the shell's times), not the parsing.
run() {
    local user sys rate moved
    rm -f "$WORK/run.json" "$WORK/run.csv"
    bench_timed "$WORK/times" gen "$@" || return 1
    read -r user sys <"$WORK/times"
    if [[ $1 == redis-benchmark ]]; then
        rate=$(awk -F'"' -v op="$2" '$2 == op { print $4 }' "$WORK/run.csv")
        moved=-
    else
        rate=$(jq -r '.["ALL STATS"].Totals["Ops/sec"]' "$WORK/run.json")
        moved=$(jq -r '.counts.moved // "-"' "$WORK/run.json")
    fi
    [[ -n $rate ]] || return 1
    awk -v r="$rate" -v m="$moved" -v u="$user" -v s="$sys" -v n="$4" \
        'BEGIN { printf "%s %s %.3f\n", r, m, (u + s) * 1e6 / n }'
}

TSV=$WORK/runs.tsv
for pl in 1 16; do
    n=$([[ $pl == 1 ]] && echo "$REQ_P1" || echo "$REQ_P16")
    for op in SET GET; do
        for r in $(seq "$REPEATS"); do
            for gen in $GENS; do
                res=$(run "$gen" "$op" "$pl" "$n") || { bench_log "$gen $op p$pl failed"; continue; }
                printf '%s\t%s\t%s\t%s\n' "$pl" "$op" "$gen" "$res" >>"$TSV"
                bench_log "pipeline $pl $op $gen: $res"
            done
        done
    done
done

# median PIPELINE OP GEN FIELD (1 requests/s, 3 CPU us per request)
median() { awk -F'\t' -v pl="$1" -v op="$2" -v g="$3" -v k="${4:-1}" '$1 == pl && $2 == op &&
    $3 == g { split($4, f, " "); print f[k] }' "$TSV" | bench_median; }
# round_ratio PIPELINE OP: median over rounds of ringkv-bench / redis-benchmark
# requests/s, each round's pair run back to back (machine drift falls on both).
round_ratio() {
    awk -F'\t' -v pl="$1" -v op="$2" '$1 == pl && $2 == op {
        split($4, f, " ")
        if ($3 == "ringkv-bench") a[++na] = f[1]
        if ($3 == "redis-benchmark") b[++nb] = f[1] }
        END { for (i = 1; i <= na && i <= nb; i++) if (b[i] > 0) print a[i] / b[i] }' "$TSV" |
        bench_median | awk '{ if ($1 == "nan") print "n/a"; else printf "%.2f\n", $1 }'
}
{
    echo "# ringkv-bench --cluster-mode against a 3-master Redis Cluster"
    echo
    echo "$(bench_machine); redis-server $(redis_version); $(date -u +%Y-%m-%d)."
    echo "Masters on CPU $SERVER_CPU, generator on CPU $CLIENT_CPU; 1 thread x 50 connections,"
    echo "32-byte values, keys uniform over 1,000,000; $REPEATS rounds, medians (requests/s)."
    echo
    printf '| pipeline | op |'; for g in $GENS; do printf ' %s |' "$g"; done
    printf ' ringkv-bench / redis-benchmark (per round) |\n|---|---|'
    for _ in $GENS; do printf -- '---|'; done
    printf -- '---|\n'
    for pl in 1 16; do
        for op in SET GET; do
            printf '| %s | %s |' "$pl" "$op"
            for g in $GENS; do printf ' %.0f |' "$(median "$pl" "$op" "$g")"; done
            printf ' %s |\n' "$(round_ratio "$pl" "$op")"
        done
    done
    echo
    echo "Each generator's CPU per request (us, median):"
    echo
    printf '| pipeline | op |'; for g in $GENS; do printf ' %s |' "$g"; done
    printf '\n|---|---|'; for _ in $GENS; do printf -- '---|'; done
    echo
    for pl in 1 16; do
        for op in SET GET; do
            printf '| %s | %s |' "$pl" "$op"
            for g in $GENS; do printf ' %s |' "$(median "$pl" "$op" "$g" 3)"; done
            echo
        done
    done
    echo
    echo "CPU pressure at the end (/proc/pressure/cpu): $(head -n 1 /proc/pressure/cpu)."
    echo
    echo "MOVED counted by ringkv-bench over all runs: $(awk -F'\t' '$3 == "ringkv-bench" {
        split($4, f, " "); m += f[2] } END { print m + 0 }' "$TSV")."
    [[ -n $MEMTIER ]] || echo "memtier_benchmark was not installed: no memtier column."
} >"$OUT/cluster_bench.md"
cp "$TSV" "$OUT/cluster_bench-runs.tsv"
cat "$OUT/cluster_bench.md"
