#!/usr/bin/env bash
# bench/ab_cluster.sh: server CPU per request of two ringkv binaries as
# 3-node clusters (replicas 3, read-quorum 2, write-quorum 2), A/B in
# alternating runs (bench/ab_cpu.sh is the same for a single node).
#
# Both clusters run side by side for the whole sitting (each node one
# shard, storage memory, all six pinned to SERVER_CPU), each loaded with
# KEYS keys of 32-byte values; then ROUNDS times, A then B, the same load
# from ringkv-bench --cluster-mode on CLIENT_CPU (50 connections, keys
# uniform over KEYS), and the user+sys time of the cluster's three node
# processes (/proc/PID/stat) per reply. Prints every run and then the
# medians with the ratio B/A. Alternating inside one sitting puts the
# machine's drift on both; single runs on a shared VM vary by +-15%.
#
# Usage: bench/ab_cluster.sh A_BIN B_BIN [get|set] [PIPELINE] [REQUESTS] [ROUNDS]
#   (defaults: get 16 1500000 5; environment: KEYS (200000), SERVER_CPU, CLIENT_CPU)
# Example: bench/ab_cluster.sh /tmp/ringkv.before build/ringkv set 16
# Every node is stopped by PID on exit; traffic stays on 127.0.0.1.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
(($# >= 2)) || bench_die "usage: bench/ab_cluster.sh A_BIN B_BIN [get|set] [PIPELINE] [REQUESTS] [ROUNDS]"
bench_need taskset redis-cli jq awk
declare -A BIN=([A]=$1 [B]=$2) PORT PIDS RUNS
OP=${3:-get} PIPE=${4:-16} N=${5:-1500000} ROUNDS=${6:-5} KEYS=${KEYS:-200000}
[[ $OP == get || $OP == set ]] || bench_die "the test is get or set, not $OP"
BENCH=$(bench_find_bench_bin)
read -r SCPU CCPU < <(bench_cpus)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ab_cluster.XXXXXX")
trap 'bench_stop_all; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

for w in A B; do
    mkdir -p "$WORK/$w"
    bench_ringkv_cluster_start "$WORK/$w" "$SCPU" "${BIN[$w]}" 3 1 memory 3 2 2
    PORT[$w]=${BENCH_RINGKV_PORTS[0]}
    PIDS[$w]="${BENCH_RINGKV_PIDS[*]}"
    taskset -c "$CCPU" "$BENCH" --cluster-mode -s 127.0.0.1 -p "${PORT[$w]}" -t 1 -c 50 \
        --pipeline 32 --ratio 1:0 --key-pattern P:P -n allkeys --key-minimum 0 \
        --key-maximum $((KEYS - 1)) -d 32 --hide-histogram --hide-progress >"$WORK/load.out" 2>&1 ||
        bench_die "loading $w failed: $(tail -n 1 "$WORK/load.out")"
done

ratio=1:0
[[ $OP == get ]] && ratio=0:1
for ((i = 0; i < ROUNDS; i++)); do
    for w in A B; do
        # shellcheck disable=SC2086 # PIDS holds the three PIDs
        t0=$(bench_cpu_ticks_sum ${PIDS[$w]}) || bench_die "a node of $w died"
        taskset -c "$CCPU" "$BENCH" --cluster-mode -s 127.0.0.1 -p "${PORT[$w]}" -t 1 -c 50 \
            --pipeline "$PIPE" -n $((N / 50)) --ratio "$ratio" -d 32 --key-maximum $((KEYS - 1)) \
            --distinct-client-seed --hide-histogram --hide-progress \
            --json-out-file "$WORK/run.json" >"$WORK/run.out" 2>&1 ||
            bench_die "run $w failed: $(tail -n 1 "$WORK/run.out")"
        # shellcheck disable=SC2086
        t1=$(bench_cpu_ticks_sum ${PIDS[$w]}) || bench_die "a node of $w died"
        replies=$(jq '.counts.replies' "$WORK/run.json")
        us=$(bench_cpu_us_per_req $((t1 - t0)) "$replies")
        printf '%s\t%s\tp%s\t%s us/req\n' "$w" "$OP" "$PIPE" "$us"
        RUNS[$w]+="$us "
    done
done
# shellcheck disable=SC2086 # one run per word
a=$(printf '%s\n' ${RUNS[A]} | bench_median)
# shellcheck disable=SC2086
b=$(printf '%s\n' ${RUNS[B]} | bench_median)
printf '\nmedian over %d rounds, %s at pipeline %s, 3 nodes: A %s, B %s us/req, B/A %s\n' \
    "$ROUNDS" "$OP" "$PIPE" "$a" "$b" "$(bench_ratio "$b" "$a")"
