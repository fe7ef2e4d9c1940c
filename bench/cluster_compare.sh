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
#   there), RESULTS_DIR, RINGKV_BIN (build/ringkv), RINGKV_BENCH_BIN;
#   GENERATOR=memtier runs memtier_benchmark --cluster-mode (MEMTIER_BIN, or
#   the one on the PATH) with the same flags instead of ringkv-bench, for the
#   rounds (the keys are still loaded by ringkv-bench).
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
# cluster_compare-runs.tsv. Exit status 1 when a run gave no result or error
# replies, or a server process died.
# Every server is stopped by PID on exit; traffic stays on 127.0.0.1.
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_cluster_init cluster_compare 100000 10000 60 "$@"
bench_need redis-server
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
    bench_cluster_preload "$WORK/load.json" "${MODE[$c]}" "${PORT[$c]}" || continue
    bench_log "$c: $KEYS keys loaded ($((SECONDS - T0)) s)"
done

S0=$(bench_cpu_stat)
bench_cluster_rounds ringkv redis
S1=$(bench_cpu_stat)
bench_cluster_check "${CLUSTERS[@]}"

MD=$RESULTS_DIR/cluster_compare.md
# shellcheck disable=SC2086 # S0 and S1 are "steal total" pairs
{
    echo "# ringkv 3 nodes (N=3, R=2, W=2) vs Redis Cluster 3 masters x 2 replicas (issue 11)"
    echo
    echo "Generated $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/cluster_compare.sh\` on" \
         "$(bench_machine); redis-server $(redis_version)."
    echo "All 12 server processes pinned to CPU $SCPU (ringkv --threads 1, durability" \
         "\`$DURABILITY\`), ${GENERATOR:-ringkv-bench} on CPU $CCPU: 1 thread x $CLIENTS connections," \
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
    printf 'Target (issue 11): at pipeline 16, CPU/req ringkv/Redis Cluster at most 1.00:'
    for op in set get; do
        r=$(bench_ratio "$(bench_runs_median "$RUNS" ringkv 3 "$op" 4 16 11)" \
            "$(bench_runs_median "$RUNS" redis 3 "$op" 4 16 11)")
        printf ' %s %s (%s)%s' "${op^^}" "$r" "$(bench_verdict "$r" 1)" "$([[ $op == set ]] && echo ,)"
    done
    echo .
    echo "Error replies over all runs: ringkv $(bench_runs_total "$RUNS" ringkv 9)," \
         "Redis Cluster $(bench_runs_total "$RUNS" redis 9); MOVED: ringkv" \
         "$(bench_runs_total "$RUNS" ringkv 10), Redis Cluster $(bench_runs_total "$RUNS" redis 10)."
    echo
    echo "Every run: [cluster_compare-runs.tsv](cluster_compare-runs.tsv)."
} >"$MD"
cat "$MD"
exit "$FAILED"
