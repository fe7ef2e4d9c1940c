#!/usr/bin/env bash
# bench/cluster_compare.sh: a 3-node ringkv cluster (replicas 3, read-quorum 2,
# write-quorum 2) against a Redis Cluster of 3 masters with 2 replicas each
# (9 redis-server processes, redis-cli --cluster create --cluster-replicas 2),
# all on 127.0.0.1 with ports of their own, in one run.
#
# How to reproduce:
#   cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build
#   bench/cluster_compare.sh            # 3 rounds; about 3 minutes on 2 CPUs
#   bench/cluster_compare.sh --quick    # a smoke run, about 30 s, to bench/results/tmp/quick/
# Options: --rounds N (3), --requests N (requests per run at pipeline 1, 200000),
#   --requests-p16 N (1000000), --clients N (connections, 50), --keys N (keys
#   loaded first and then used, uniform, 100000), --durability memory|log
#   (memory), --quick (1 round, 20000 / 100000 requests, 10 clients, 10000 keys).
# Environment: SERVER_CPU (0), CLIENT_CPU (1), RUN_LIMIT_S (60: each run is cut
#   there), RESULTS_DIR, RINGKV_BIN (build/ringkv), RINGKV_BENCH_BIN.
#
# All twelve server processes are pinned to SERVER_CPU, each ringkv node with
# one shard (--threads 1, as each redis-server has one thread for commands);
# the generator, ringkv-bench --cluster-mode (slot map from CLUSTER SLOTS, each
# key sent to its slot's master; 1 thread x CLIENTS connections, each opening
# one per master), runs on CLIENT_CPU. Durability: "memory" is ringkv's
# storage = memory against redis-server without AOF or snapshots (as
# bench/redis_compare.sh); "log" is ringkv's default (storage = log,
# appendfsync everysec) against appendonly yes, appendfsync everysec, no
# snapshots (an AOF rewrite runs in a forked child whose CPU is not counted).
# Both clusters are loaded with KEYS keys first, then each round runs, for
# each cluster in turn (the order alternating between rounds, so that drift
# of the machine falls on both), SET alone and GET alone at pipeline 1 and 16,
# 32-byte values. Per run: throughput and p99 (ringkv-bench), and the total
# server CPU per request: user+sys of every server process of the cluster
# (/proc/PID/stat, all threads) before and after, divided by the replies.
# Until ringkv answers CLUSTER SLOTS, its runs go to its first node as a plain
# client (the report says so).
#
# Output: a markdown table (medians over rounds; ratios ringkv / Redis
# Cluster) on stdout and in RESULTS_DIR/cluster_compare.md, every run in
# cluster_compare-runs.tsv. Exit status 1 when a cluster could not be measured.
# Every server is stopped by PID on exit; traffic stays on 127.0.0.1.
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT=$(bench_root)
bench_cluster_args "$@"
if [[ ${QUICK:-0} == 1 ]]; then
    ROUNDS=${ROUNDS:-1} REQUESTS_P1=${REQUESTS_P1:-20000} REQUESTS_P16=${REQUESTS_P16:-100000}
    CLIENTS=${CLIENTS:-10} KEYS=${KEYS:-10000}
    RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results/tmp/quick}
fi
ROUNDS=${ROUNDS:-3} REQUESTS_P1=${REQUESTS_P1:-200000} REQUESTS_P16=${REQUESTS_P16:-1000000}
CLIENTS=${CLIENTS:-50} KEYS=${KEYS:-100000} DURABILITY=${DURABILITY:-memory}
RUN_LIMIT_S=${RUN_LIMIT_S:-60}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results}
RINGKV_BIN=${RINGKV_BIN:-$ROOT/build/ringkv}
bench_redis_persist_flags "$DURABILITY" >/dev/null
((KEYS >= 100)) || bench_die "--keys must be at least 100"

bench_need jq taskset redis-server redis-cli awk
[[ -x $RINGKV_BIN ]] || bench_die "no ringkv binary at $RINGKV_BIN (build it, or set RINGKV_BIN)"
BENCH=$(bench_find_bench_bin)
read -r SCPU CCPU < <(bench_cpus)
mkdir -p "$RESULTS_DIR" || bench_die "cannot create $RESULTS_DIR"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cluster_compare.XXXXXX")
trap 'bench_stop_all; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM
RUNS=$RESULTS_DIR/cluster_compare-runs.tsv
printf 'cluster\tround\top\tpipeline\trequests\tops\tp99_ms\treplies\terrors\tmoved\tcpu_us_per_req\n' \
    >"$RUNS"
NOTES=()
declare -A PIDS PORT MODE

T0=$SECONDS
bench_ringkv_cluster_start "$WORK/ringkv" "$SCPU" "$RINGKV_BIN" 3 1 "$DURABILITY" 3 2 2
PIDS[ringkv]="${BENCH_RINGKV_PIDS[*]}"
PORT[ringkv]=${BENCH_RINGKV_PORTS[0]}
[[ -z $BENCH_RINGKV_NOTE ]] || NOTES+=("ringkv: $BENCH_RINGKV_NOTE.")
if [[ -n $(bench_cluster_slots "${PORT[ringkv]}") ]]; then
    MODE[ringkv]=cluster
else
    MODE[ringkv]=plain
    NOTES+=("ringkv does not answer CLUSTER SLOTS: its load went to its first node as a plain client (ringkv-bench without --cluster-mode).")
fi
bench_log "ringkv: 3 nodes on ports ${BENCH_RINGKV_PORTS[*]} ($((SECONDS - T0)) s)"

T0=$SECONDS
mapfile -t RPORTS < <(bench_redis_cluster_ports 9)
bench_redis_cluster_create "$WORK/redis" "$SCPU" 2 "$DURABILITY" "${RPORTS[@]}"
PIDS[redis]="${BENCH_PIDS[*]: -9}" # the last nine started
PORT[redis]=${RPORTS[0]}
MODE[redis]=cluster
bench_log "Redis Cluster: 3 masters x 2 replicas on ports ${RPORTS[*]} ($((SECONDS - T0)) s)"

CLUSTERS=(ringkv redis)
for c in "${CLUSTERS[@]}"; do
    T0=$SECONDS
    bench_cluster_preload "$WORK/load.json" "${MODE[$c]}" "${PORT[$c]}"
    bench_log "$c: $KEYS keys loaded ($((SECONDS - T0)) s)"
done

requests_for() { (($1 == 1)) && echo "$REQUESTS_P1" || echo "$REQUESTS_P16"; }
FAILED=0
S0=$(bench_cpu_stat)
for ((round = 1; round <= ROUNDS; round++)); do
    order=("${CLUSTERS[@]}")
    ((round % 2)) || order=(redis ringkv)
    for c in "${order[@]}"; do
        for pipe in 1 16; do
            for op in set get; do
                n=$(requests_for "$pipe")
                # shellcheck disable=SC2086 # PIDS holds a list
                if ! res=$(bench_cluster_run "$WORK/run.json" "${MODE[$c]}" "${PORT[$c]}" "$op" \
                    "$pipe" "$n" ${PIDS[$c]}); then
                    bench_log "$c ${op^^} P$pipe #$round: no result ($(tail -n 1 "$WORK/run.json.out"))"
                    FAILED=1
                    continue
                fi
                printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$round" "$op" "$pipe" "$n" "$res" >>"$RUNS"
                bench_log "$c ${op^^} P$pipe #$round: ops/s p99_ms replies errors moved us/req:" \
                    "$(tr '\t' ' ' <<<"$res")"
            done
        done
    done
done
S1=$(bench_cpu_stat)
for c in "${CLUSTERS[@]}"; do
    for pid in ${PIDS[$c]}; do
        bench_alive "$pid" || { NOTES+=("$c: server process $pid exited during the run."); FAILED=1; }
    done
done

# total CLUSTER COLUMN: the sum of a count over every run of the cluster
total() { awk -F'\t' -v c="$1" -v k="$2" 'NR > 1 && $1 == c { s += $k } END { print s + 0 }' "$RUNS"; }

MD=$RESULTS_DIR/cluster_compare.md
# shellcheck disable=SC2086 # S0 and S1 are "steal total" pairs
{
    echo "# ringkv 3 nodes (N=3, R=2, W=2) vs Redis Cluster 3 masters x 2 replicas (issue 11)"
    echo
    echo "Generated $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/cluster_compare.sh\` on" \
         "$(bench_machine); redis-server $(redis_version)."
    echo "All 12 server processes pinned to CPU $SCPU (ringkv --threads 1, durability" \
         "\`$DURABILITY\`), ringkv-bench on CPU $CCPU: 1 thread x $CLIENTS connections," \
         "32-byte values, keys uniform over $KEYS loaded first, $REQUESTS_P1 requests at" \
         "pipeline 1 and $REQUESTS_P16 at 16, medians of $ROUNDS alternating rounds." \
         "CPU is user+sys of every server process of the cluster (/proc/PID/stat) per reply;" \
         "ringkv load: ${MODE[ringkv]}, Redis Cluster load: --cluster-mode."
    echo "Steal during the rounds: $(bench_steal_pct $S0 $S1)%; CPU pressure at the end:" \
         "$(head -n 1 /proc/pressure/cpu 2>/dev/null || echo n/a)."
    if ((${#NOTES[@]})); then
        echo
        printf -- '- %s\n' "${NOTES[@]}"
    fi
    echo
    bench_ab_table "$RUNS" ringkv redis ringkv "Redis Cluster" "set get" "3 4 6 7 11"
    echo
    echo "Target (issue 11): at pipeline 16, CPU/req ringkv/Redis at most 1.00."
    echo "Error replies over all runs: ringkv $(total ringkv 9), Redis Cluster $(total redis 9);" \
         "MOVED: ringkv $(total ringkv 10), Redis Cluster $(total redis 10)."
    echo
    echo "Every run: [cluster_compare-runs.tsv](cluster_compare-runs.tsv)."
} >"$MD"
cat "$MD"
exit "$FAILED"
