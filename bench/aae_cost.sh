#!/usr/bin/env bash
# bench/aae_cost.sh: what active anti-entropy costs (issue 12): CPU and bytes
# of an exchange round over all Q partitions with 0% and 1% divergence, and
# foreground p99 with and without anti-entropy running.
#
# How to reproduce:
#   cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build
#   bench/aae_cost.sh           # 100,000 keys, 3 rounds; a few minutes on 2 CPUs
#   bench/aae_cost.sh --quick   # 10,000 keys, 1 round, to bench/results/tmp/quick/
# Options: --keys N (100000), --rounds N (3: foreground runs per setup),
#   --requests N (foreground requests per run, pipeline 1, 200000), --clients N
#   (50), --quick. Environment: SERVER_CPU (0), CLIENT_CPU (1), RESULTS_DIR,
#   RINGKV_BIN (build/ringkv), RINGKV_BENCH_BIN, WINDOW_S (10: the idle
#   measurement window).
#
# Two setups of 3 nodes on 127.0.0.1 (N=3, R=2, W=2, one shard each, the
# default 1024 partitions, every node pinned to SERVER_CPU): "aae" with
# aae-interval 1 (a round every second: the worst case of the setting), and
# "off" with aae-interval 0 (no trees). Each is loaded with KEYS keys.
# 0% divergence: over WINDOW_S seconds of no traffic, the CPU (user+sys of the
#   3 node processes) and the anti-entropy bytes (INFO ringkv_aae_bytes_sent,
#   summed) of "aae", less the CPU of "off" over the same window, per round
#   (a round is Q x (N - 1) = 2048 exchanges: each partition's first replica
#   with each other one).
# 1% divergence: node 3 of "aae" frozen (SIGSTOP) until the others see it
#   down, KEYS / 100 keys written again (W = 2 without it), node 3 thawed; from
#   then until the keys repaired (INFO ringkv_aae_keys_repaired, summed) reach
#   KEYS / 100: the seconds, CPU, bytes and exchanges it took.
# Foreground: SET alone and GET alone at pipeline 1, keys uniform over KEYS,
#   p99 and CPU per request against each setup (rounds alternate the order),
#   "aae" running its rounds every second meanwhile.
#
# Output: markdown on stdout and in RESULTS_DIR/aae_cost.md, runs in
# aae_cost-runs.tsv. Exit status 1 when a run gave no result or errors, or a
# node died. Every node is stopped by PID on exit.
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_cluster_init aae_cost 100000 10000 120 "$@"
WINDOW_S=${WINDOW_S:-10}
Q=1024
SETUPS=(aae off)
declare -A INTERVAL=([aae]=1 [off]=0) PIDS PORTS PORT MODE
declare -A LABEL=([aae]="aae-interval 1" [off]="aae-interval 0")

# info_sum SETUP FIELD: INFO's FIELD summed over the setup's nodes.
info_sum() {
    local p sum=0 v
    for p in ${PORTS[$1]}; do
        v=$(timeout 5 redis-cli -h 127.0.0.1 -p "$p" info stats 2>/dev/null | tr -d '\r' |
            sed -n "s/^$2:\([0-9]*\).*/\1/p" | head -n 1)
        sum=$((sum + ${v:-0}))
    done
    printf '%s\n' "$sum"
}
# cpu_s SETUP: user+sys seconds of the setup's nodes so far.
cpu_s() {
    # shellcheck disable=SC2086 # PIDS holds a list
    awk -v t="$(bench_cpu_ticks_sum ${PIDS[$1]})" -v hz="$BENCH_CLK_TCK" 'BEGIN { printf "%.3f\n", t / hz }'
}
# wait_field SETUP FIELD MIN SECONDS: until INFO's FIELD (summed) reaches MIN.
wait_field() {
    local deadline=$((SECONDS + $4))
    while ((SECONDS < deadline)); do
        (($(info_sum "$1" "$2") >= $3)) && return 0
        sleep 0.2
    done
    return 1
}
# wait_down PORT N SECONDS: the node at PORT counts N nodes down.
wait_down() {
    local deadline=$((SECONDS + $3))
    while ((SECONDS < deadline)); do
        timeout 5 redis-cli -h 127.0.0.1 -p "$1" cluster info 2>/dev/null | tr -d '\r' |
            grep -qx "ringkv_nodes_down:$2" && return 0
        sleep 0.2
    done
    return 1
}
calc() { awk "BEGIN { printf \"$1\\n\", $2 }"; }

for s in "${SETUPS[@]}"; do
    # shellcheck disable=SC2034 # read by bench_ringkv_cluster_start (lib.sh)
    BENCH_RINGKV_EXTRA=(--aae-interval "${INTERVAL[$s]}" --partitions "$Q")
    bench_ringkv_cluster_start "$WORK/$s" "$SCPU" "$RINGKV_BIN" 3 1 memory 3 2 2
    PIDS[$s]="${BENCH_RINGKV_PIDS[*]}"
    PORTS[$s]="${BENCH_RINGKV_PORTS[*]}"
    PORT[$s]=${BENCH_RINGKV_PORTS[0]}
    MODE[$s]=plain
    [[ -n $(bench_cluster_slots "${PORT[$s]}") ]] && MODE[$s]=cluster
    bench_cluster_preload "$WORK/load.json" "${MODE[$s]}" "${PORT[$s]}" || exit 1
    bench_log "$s: 3 nodes on ports ${PORTS[$s]}, $KEYS keys loaded (${MODE[$s]})"
done

# 0% divergence: a full round's cost, idle otherwise.
wait_field aae ringkv_aae_exchanges $((2 * Q * 2)) 120 ||
    NOTES+=("aae: fewer than two rounds of exchanges within 120 s of the load.")
sleep 2 # the load's own repairs (writes that reached 2 of 3 first) are done
c0=$(cpu_s aae) o0=$(cpu_s off) x0=$(info_sum aae ringkv_aae_exchanges)
b0=$(info_sum aae ringkv_aae_bytes_sent) r0=$(info_sum aae ringkv_aae_bytes_received)
k0=$(info_sum aae ringkv_aae_keys_repaired)
sleep "$WINDOW_S"
c1=$(cpu_s aae) o1=$(cpu_s off) x1=$(info_sum aae ringkv_aae_exchanges)
b1=$(info_sum aae ringkv_aae_bytes_sent) r1=$(info_sum aae ringkv_aae_bytes_received)
k1=$(info_sum aae ringkv_aae_keys_repaired)
rounds0=$(calc '%.2f' "($x1 - $x0) / ($Q * 2)")
cpu0=$(calc '%.1f' "(($c1 - $c0) - ($o1 - $o0)) * 1000 / (($x1 - $x0) / ($Q * 2))")
bytes0=$(calc '%.0f' "(($b1 - $b0) + ($r1 - $r0)) / 2 / (($x1 - $x0) / ($Q * 2))")
bench_log "0%: $rounds0 rounds in $WINDOW_S s, $cpu0 ms CPU and $bytes0 bytes per round ($((k1 - k0)) keys repaired)"

# 1% divergence: node 3 misses KEYS / 100 writes.
read -r -a aae_pids <<<"${PIDS[aae]}"
read -r -a aae_ports <<<"${PORTS[aae]}"
diverged=$((KEYS / 100))
kill -STOP "${aae_pids[2]}"
wait_down "${aae_ports[0]}" 1 30 || bench_die "node 3 was not seen down within 30 s"
bench_cluster_preload "$WORK/div.json" "${MODE[aae]}" "${PORT[aae]}" 0 $((diverged - 1)) || true
kR=$(info_sum aae ringkv_aae_keys_repaired)
t0=$(date +%s.%N) c0=$(cpu_s aae) o0=$(cpu_s off) x0=$(info_sum aae ringkv_aae_exchanges)
b0=$(info_sum aae ringkv_aae_bytes_sent) r0=$(info_sum aae ringkv_aae_bytes_received)
kill -CONT "${aae_pids[2]}"
wait_down "${aae_ports[0]}" 0 30 || bench_die "node 3 was not seen up within 30 s"
tU=$(date +%s.%N)
wait_field aae ringkv_aae_keys_repaired $((kR + diverged)) 120 ||
    NOTES+=("1%: fewer than $diverged keys repaired within 120 s.")
t1=$(date +%s.%N) c1=$(cpu_s aae) o1=$(cpu_s off) x1=$(info_sum aae ringkv_aae_exchanges)
b1=$(info_sum aae ringkv_aae_bytes_sent) r1=$(info_sum aae ringkv_aae_bytes_received)
k1=$(info_sum aae ringkv_aae_keys_repaired)
secs1=$(calc '%.1f' "$t1 - $t0")
secsU=$(calc '%.1f' "$t1 - $tU")
cpu1=$(calc '%.0f' "(($c1 - $c0) - ($o1 - $o0)) * 1000")
bytes1=$(calc '%.0f' "(($b1 - $b0) + ($r1 - $r0)) / 2")
rounds1=$(calc '%.2f' "($x1 - $x0) / ($Q * 2)")
bench_log "1%: $((k1 - kR)) keys repaired in $secs1 s, $cpu1 ms CPU, $bytes1 bytes, $rounds1 rounds"

# Foreground p99 with and without anti-entropy.
for ((round = 1; round <= ROUNDS; round++)); do
    order=(aae off)
    ((round % 2)) || order=(off aae)
    for s in "${order[@]}"; do
        for op in set get; do
            # shellcheck disable=SC2086 # PIDS holds a list
            if ! res=$(bench_cluster_run "$WORK/run.json" "${MODE[$s]}" "${PORT[$s]}" "$op" 1 \
                "$REQUESTS_P1" ${PIDS[$s]}); then
                bench_log "$s $op #$round: no result"
                FAILED=1
                continue
            fi
            printf '%s\t%s\t%s\t1\t%s\t%s\n' "$s" "$round" "$op" "$REQUESTS_P1" "$res" >>"$RUNS"
            bench_log "$s ${op^^} #$round: ops/s p99_ms replies errors moved us/req:" \
                "$(tr '\t' ' ' <<<"$res")"
        done
    done
done
bench_cluster_check "${SETUPS[@]}"

MD=$RESULTS_DIR/aae_cost.md
{
    echo "# Anti-entropy's cost (issue 12)"
    echo
    echo "Generated $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/aae_cost.sh\` on $(bench_machine)."
    echo "3 nodes, N=3 R=2 W=2, one shard each, $Q partitions, all pinned to CPU $SCPU;" \
         "$KEYS keys of 32 bytes. CPU is user+sys of the 3 node processes, less the same" \
         "setup's CPU with aae-interval 0 over the same time. Bytes are anti-entropy's" \
         "payload (trees, keys, repaired states) as INFO counts them, sent and received averaged."
    echo "CPU pressure at the end: $(head -n 1 /proc/pressure/cpu 2>/dev/null || echo n/a)."
    if ((${#NOTES[@]})); then
        echo
        printf -- '- %s\n' "${NOTES[@]}"
    fi
    echo
    echo "| divergence | exchanges | rounds of $((Q * 2)) exchanges | seconds | CPU ms | bytes | CPU ms per round | bytes per round |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    printf '| 0%% (idle, %s s) | %s | %s | %s | %s | %s | %s | %s |\n' "$WINDOW_S" \
        "$(calc '%.0f' "$rounds0 * $Q * 2")" "$rounds0" "$WINDOW_S" \
        "$(calc '%.0f' "$cpu0 * $rounds0")" "$(calc '%.0f' "$bytes0 * $rounds0")" "$cpu0" "$bytes0"
    printf '| 1%% (%s keys missed by one replica) | %s | %s | %s | %s | %s | %s | %s |\n' \
        "$diverged" "$((x1 - x0))" "$rounds1" "$secs1" "$cpu1" "$bytes1" \
        "$(calc '%.1f' "$cpu1 / ($rounds1 > 0 ? $rounds1 : 1)")" \
        "$(calc '%.0f' "$bytes1 / ($rounds1 > 0 ? $rounds1 : 1)")"
    echo
    echo "1%: $((k1 - kR)) keys repaired (INFO ringkv_aae_keys_repaired) from the frozen node's" \
         "thaw until all $diverged were: $secs1 s, of which $secsU s after the first node saw it up" \
         "again (the rest: failure detection's verdict, during which exchanges with it already ran" \
         "at the nodes that saw it sooner). The counters and CPU are of that whole time; the" \
         "rounds column counts every exchange in it. Repair is capped at 64 keys per shard tick" \
         "(640 a second per shard) and aae-max-keys-per-exchange. Bytes are payload only: each" \
         "message also has its wire header (about 40 bytes)."
    echo
    echo "Per repaired key, everything in that time counted against the repair (an upper bound:" \
         "the idle rounds with the other nodes are in it): $(calc '%.0f' "$cpu1 * 1000 / ($k1 - $kR > 0 ? $k1 - $kR : 1)")" \
         "us of CPU and $(calc '%.0f' "$bytes1 / ($k1 - $kR > 0 ? $k1 - $kR : 1)") bytes."
    echo
    echo "Foreground (pipeline 1, $CLIENTS connections, $REQUESTS_P1 requests a run), medians of" \
         "$ROUNDS runs, while \"aae\" runs a round every second:"
    echo
    echo "| test | setup | ops/s | p99 ms | CPU us per request |"
    echo "|---|---|---:|---:|---:|"
    for op in set get; do
        for s in "${SETUPS[@]}"; do
            printf '| %s | %s | %s | %s | %s |\n' "${op^^}" "${LABEL[$s]}" \
                "$(bench_runs_median "$RUNS" "$s" 3 "$op" 4 1 6)" \
                "$(bench_runs_median "$RUNS" "$s" 3 "$op" 4 1 7)" \
                "$(bench_runs_median "$RUNS" "$s" 3 "$op" 4 1 11)"
        done
    done
    echo
    echo "Every run: [aae_cost-runs.tsv](aae_cost-runs.tsv)."
} >"$MD"
cat "$MD"
exit "$FAILED"
