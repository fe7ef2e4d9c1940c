#!/usr/bin/env bash
# bench/replication_cost.sh: what replication costs in CPU and memory: 3 ringkv
# nodes at N=3 (replicas 3, read-quorum 2, write-quorum 2) against one node
# (N=1), on 127.0.0.1 with ports of their own, in one run.
#
# How to reproduce:
#   cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build
#   bench/replication_cost.sh           # 3 rounds, 1,000,000 keys; a few minutes on 2 CPUs
#   bench/replication_cost.sh --quick   # a smoke run, about 20 s, to bench/results/tmp/quick/
# Options: --rounds N (3), --requests N (requests per run at pipeline 1, 200000),
#   --requests-p16 N (1000000), --clients N (connections, 50), --keys N (keys
#   loaded for the memory figure, then used uniformly, 1000000), --durability
#   memory|log (memory: storage = memory; log: ringkv's default storage = log,
#   appendfsync everysec), --quick (1 round, 20000 / 100000 requests, 10
#   clients, 20000 keys).
# Environment: SERVER_CPU (0), CLIENT_CPU (1), RUN_LIMIT_S (120: each run is
#   cut there), RESULTS_DIR, RINGKV_BIN (build/ringkv), RINGKV_BENCH_BIN.
#
# Every node (one shard each, --threads 1) is pinned to SERVER_CPU, the
# generator ringkv-bench to CLIENT_CPU (--cluster-mode where the nodes answer
# CLUSTER SLOTS, else every request to the first node; the report says which).
# Memory: each setup, fresh, is loaded with exactly KEYS keys of 32-byte
# values (every key once, in two halves); the growth of RSS summed over its
# nodes (and of INFO used_memory, summed) is divided by KEYS and by the copies
# each key should have (min(N, nodes): 3 and 1), and the growth over the
# second half alone by its keys and the copies (fixed costs left out). Target (issue 11): at most 120 bytes
# per key per replica on 3 nodes (redis-server keeps about 133 per key,
# bench/results/redis_compare.md). The keys each node reports holding (INFO
# keyspace, summed) show whether the copies are there.
# CPU: then, in each round, for each setup in turn (alternating the order),
# SET alone and GET alone at pipeline 1 and 16, keys uniform over KEYS; the
# user+sys time of every node process (/proc/PID/stat) per reply. Targets
# (issue 11): 3 nodes / 1 node at most 3.5 per SET and 3 per GET.
#
# Output: markdown tables on stdout and in RESULTS_DIR/replication_cost.md,
# every run in replication_cost-runs.tsv. Exit status 1 when a run gave no
# result or error replies, or a node died (not for a target missed). Every
# node is stopped by PID on exit; traffic stays on 127.0.0.1.
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_cluster_init replication_cost 1000000 20000 120 "$@"
SETUPS=(three one)
declare -A NODES=([three]=3 [one]=1) NRW=([three]="3 2 2" [one]="1 1 1")
declare -A LABEL=([three]="3 nodes, N=3" [one]="1 node, N=1")
declare -A PIDS PORTS PORT MODE RSS0 RSSH RSS1 USED0 USED1 HELD

# info_sum SETUP FIELD: FIELD of INFO summed over the setup's nodes ("db0:keys=" for keys).
info_sum() {
    local p sum=0 v
    for p in ${PORTS[$1]}; do
        v=$(timeout 5 redis-cli -h 127.0.0.1 -p "$p" info all 2>/dev/null | tr -d '\r' |
            sed -n "s/^$2\([0-9]*\).*/\1/p" | head -n 1)
        sum=$((sum + ${v:-0}))
    done
    printf '%s\n' "$sum"
}
# rss_sum SETUP: RSS in KiB summed over the setup's nodes.
rss_sum() {
    local pid sum=0
    for pid in ${PIDS[$1]}; do sum=$((sum + $(bench_rss_kb "$pid"))); done
    printf '%s\n' "$sum"
}
# rss_settled SETUP: the RSS sum once two readings 0.5 s apart agree within 1%
# (writes past the write quorum finish in the background), at most 10 s.
rss_settled() {
    local a b deadline=$((SECONDS + 10))
    a=$(rss_sum "$1") b=$a
    while ((SECONDS < deadline)); do
        sleep 0.5
        b=$(rss_sum "$1")
        ((b - a <= a / 100 && a - b <= a / 100)) && break
        a=$b
    done
    printf '%s\n' "$b"
}

for s in "${SETUPS[@]}"; do
    T0=$SECONDS
    # shellcheck disable=SC2086 # NRW holds "N R W"
    bench_ringkv_cluster_start "$WORK/$s" "$SCPU" "$RINGKV_BIN" "${NODES[$s]}" 1 "$DURABILITY" \
        ${NRW[$s]}
    PIDS[$s]="${BENCH_RINGKV_PIDS[*]}"
    PORTS[$s]="${BENCH_RINGKV_PORTS[*]}"
    PORT[$s]=${BENCH_RINGKV_PORTS[0]}
    [[ -z $BENCH_RINGKV_NOTE ]] || NOTES+=("${LABEL[$s]}: $BENCH_RINGKV_NOTE.")
    MODE[$s]=plain
    [[ -n $(bench_cluster_slots "${BENCH_RINGKV_PORTS[0]}") ]] && MODE[$s]=cluster
    bench_log "$s: ${NODES[$s]} node(s) on ports ${PORTS[$s]}, load ${MODE[$s]} ($((SECONDS - T0)) s)"
    RSS0[$s]=$(rss_sum "$s")
    USED0[$s]=$(info_sum "$s" used_memory:)
    # in two halves: the second's growth leaves out what the first paid once
    # (connections, peer links and their buffers)
    bench_cluster_preload "$WORK/load.json" "${MODE[$s]}" "${PORT[$s]}" 0 $((KEYS / 2 - 1))
    RSSH[$s]=$(rss_settled "$s")
    bench_cluster_preload "$WORK/load.json" "${MODE[$s]}" "${PORT[$s]}" $((KEYS / 2)) $((KEYS - 1))
    RSS1[$s]=$(rss_settled "$s")
    USED1[$s]=$(info_sum "$s" used_memory:)
    HELD[$s]=$(info_sum "$s" db0:keys=)
    bench_log "$s: $KEYS keys loaded, RSS ${RSS0[$s]} -> ${RSS1[$s]} KiB, keys held ${HELD[$s]}"
done
[[ ${MODE[three]} == cluster ]] || NOTES+=("3 nodes: no CLUSTER SLOTS answer, so every request went to the first node as a plain client.")
((HELD[three] >= 3 * KEYS)) || NOTES+=("The 3 nodes hold ${HELD[three]} keys, not 3 x $KEYS: the copies were not made, so these figures do not measure replication.")

bench_cluster_rounds three one
bench_cluster_check "${SETUPS[@]}"

# per_replica BEFORE AFTER UNIT_BYTES COPIES [KEYS]: growth per key per copy, in bytes.
per_replica() {
    awk -v a="$1" -v b="$2" -v u="$3" -v c="$4" -v n="${5:-$KEYS}" \
        'BEGIN { if (a == "" || b == "") print "nan"; else printf "%.1f\n", (b - a) * u / n / c }'
}
errors=$(($(bench_runs_total "$RUNS" three 9) + $(bench_runs_total "$RUNS" one 9)))

MD=$RESULTS_DIR/replication_cost.md
{
    echo "# Replication's cost: 3 ringkv nodes at N=3 (R=2, W=2) vs 1 node at N=1 (issue 11)"
    echo
    echo "Generated $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/replication_cost.sh\` on" \
         "$(bench_machine)."
    echo "Every node pinned to CPU $SCPU (--threads 1, durability \`$DURABILITY\`)," \
         "ringkv-bench on CPU $CCPU: 1 thread x $CLIENTS connections, 32-byte values, keys" \
         "uniform over $KEYS loaded first, $REQUESTS_P1 requests at pipeline 1 and" \
         "$REQUESTS_P16 at 16, medians of $ROUNDS alternating rounds. CPU is user+sys of every" \
         "node process (/proc/PID/stat) per reply. Load: 3 nodes ${MODE[three]}, 1 node ${MODE[one]}."
    echo "CPU pressure at the end: $(head -n 1 /proc/pressure/cpu 2>/dev/null || echo n/a)."
    if ((${#NOTES[@]})); then
        echo
        printf -- '- %s\n' "${NOTES[@]}"
    fi
    echo
    bench_ab_table "$RUNS" three one "3 nodes" "1 node" "set get" "3 4 6 7 11"
    echo
    echo "Targets (issue 11), CPU per request 3 nodes / 1 node:"
    echo
    echo "| test | pipeline | ratio | target | |"
    echo "|---|---:|---:|---:|---|"
    for op in set get; do
        limit=$([[ $op == set ]] && echo 3.5 || echo 3)
        for pipe in 1 16; do
            r=$(bench_ratio "$(bench_runs_median "$RUNS" three 3 "$op" 4 "$pipe" 11)" \
                "$(bench_runs_median "$RUNS" one 3 "$op" 4 "$pipe" 11)")
            printf '| %s | %s | %s | %s | %s |\n' "${op^^}" "$pipe" "$r" "$limit" "$(bench_verdict "$r" "$limit")"
        done
    done
    echo
    echo "Error replies over all runs: $errors."
    echo
    echo "Memory for $KEYS keys with 32-byte values, loaded into each fresh setup (summed over" \
         "its nodes; per key and per copy the key should have):"
    echo
    echo "| setup | copies | RSS before MiB | RSS after MiB | keys held (INFO keyspace) |" \
         "RSS bytes per key per copy | second half only | used_memory bytes per key per copy |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for s in "${SETUPS[@]}"; do
        copies=${NRW[$s]%% *}
        printf '| %s | %s | %.1f | %.1f | %s | %s | %s | %s |\n' "${LABEL[$s]}" "$copies" \
            "$(awk -v k="${RSS0[$s]}" 'BEGIN { print k / 1024 }')" \
            "$(awk -v k="${RSS1[$s]}" 'BEGIN { print k / 1024 }')" "${HELD[$s]}" \
            "$(per_replica "${RSS0[$s]}" "${RSS1[$s]}" 1024 "$copies")" \
            "$(per_replica "${RSSH[$s]}" "${RSS1[$s]}" 1024 "$copies" $((KEYS - KEYS / 2)))" \
            "$(per_replica "${USED0[$s]}" "${USED1[$s]}" 1 "$copies")"
    done
    echo
    echo "Keys are loaded in two halves; \"second half only\" is the RSS growth while the second" \
         "half went in, per key of it: what a key costs once connections, peer links and" \
         "their buffers are paid for (the whole-run figure includes them; they weigh on small" \
         "runs). Target (issue 11): at most 120 bytes per key per copy on 3 nodes (RSS;" \
         "redis-server about 133 per key). Where the keys held are fewer than $KEYS x copies," \
         "the copies were not all made and the per-copy figures are too low."
    echo
    echo "Every run: [replication_cost-runs.tsv](replication_cost-runs.tsv)."
} >"$MD"
cat "$MD"
exit "$FAILED"
