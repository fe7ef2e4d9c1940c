#!/usr/bin/env bash
# bench/join_under_load.sh: a fourth node joins a loaded 3-node cluster (N=3,
# R=2, W=2, storage = log): how long until the data is balanced, and the
# foreground p99 while the partitions move against before (issue 12's
# target: under 2x).
#
# How to reproduce:
#   cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build
#   bench/join_under_load.sh            # 300000 keys of 256 bytes, about 2 minutes
#   bench/join_under_load.sh --quick    # 30000 keys, to bench/results/tmp/quick/
# Options: --keys N (300000), --value-size BYTES (256), --rate N (foreground
#   requests per second in all, 10 connections at N/10 each; 2000),
#   --slices N (2-second measurements before the join, 8), --quick.
# Environment: SERVER_CPU, CLIENT_CPU (bench_cpus), JOINER_CPU (SERVER_CPU:
#   where the joiner runs; CLIENT_CPU on a 2-CPU machine gives it a core the
#   loaded nodes do not share, as a new machine would), RESULTS_DIR,
#   RINGKV_BIN (build/ringkv), RINGKV_BENCH_BIN; HANDOFF_RATE
#   (handoff-max-bytes-per-sec of the nodes, 64mb: ringkv's default);
#   KEEP_LOGS=1 copies the nodes' logs, and the last lines of each slice's
#   ringkv-bench output (slices.out: the first error reply), to
#   RESULTS_DIR/logs.
#
# The 3 nodes (one shard each) and the joiner share SERVER_CPU; ringkv-bench
# runs on CLIENT_CPU at a fixed rate (an open load, so that p99 measures the
# servers, not a queue of our own), SET:GET 1:4 on keys uniform over the
# loaded ones, through node 0 (which coordinates or forwards). It runs in
# 2-second slices: SLICES before the join, then from the joiner's start until
# the cluster is balanced (every node's INFO keyspace summed is 3 copies of
# every key and the joiner holds its share: the new replicas pulled their
# partitions and the old ones dropped theirs), and 3 slices after. p99 and
# p99.9 of each slice come from ringkv-bench's JSON; the table compares the
# p99 of every request of a phase (its slices' histograms merged: the
# issue's figure) during the transfer with before, and also the median
# p99 before with the worst and the median slice's p99 during it.
# The nodes' longest loop turn and their turns of 10 ms or more (INFO
# ringkv_longest_turn_us, ringkv_slow_turns; reset on the loaded nodes as the
# joiner starts, read at the end of the slice in which the cluster was
# balanced): wall time, so on a shared core they include other processes'
# slices; small ones rule out a stall of a node's own loop.
# Output: bench/results/join_under_load.md (RESULTS_DIR), the slices in
# join_under_load-runs.tsv. Exit 1 when a node died or requests failed.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_need jq redis-cli taskset
ROOT=$(bench_root)
BENCH=$(bench_find_bench_bin)
RINGKV_BIN=${RINGKV_BIN:-$ROOT/build/ringkv}
[[ -x $RINGKV_BIN ]] || bench_die "no ringkv at $RINGKV_BIN (build first)"
read -r SCPU CCPU < <(bench_cpus)
JCPU=${JOINER_CPU:-$SCPU}
KEYS=300000 VSIZE=256 RATE=2000 SLICES=8
RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results}
while (($#)); do
    case $1 in
    --keys) KEYS=${2:?}; shift ;;
    --value-size) VSIZE=${2:?}; shift ;;
    --rate) RATE=${2:?}; shift ;;
    --slices) SLICES=${2:?}; shift ;;
    --quick) KEYS=30000 SLICES=3 RESULTS_DIR=$ROOT/bench/results/tmp/quick ;;
    --help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) bench_die "unknown option $1 (--help)" ;;
    esac
    shift
done
mkdir -p "$RESULTS_DIR"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/join_under_load.XXXXXX")
POLLER=
trap '[[ -z $POLLER ]] || kill "$POLLER" 2>/dev/null; bench_stop_all
      [[ -z ${KEEP_LOGS:-} ]] || { mkdir -p "$RESULTS_DIR/logs" && cp "$WORK"/n*.log "$WORK/slices.out" "$RESULTS_DIR/logs/"; }
      rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM
HANDOFF_RATE=${HANDOFF_RATE:-64mb}

bench_ringkv_cluster_start "$WORK" "$SCPU" "$RINGKV_BIN" 3 1 log 3 2 2
PORTS=("${BENCH_RINGKV_PORTS[@]}")
PIDS=("${BENCH_RINGKV_PIDS[@]}")
SEED_CPORT=$(redis-cli -h 127.0.0.1 -p "${PORTS[0]}" cluster myid >/dev/null 2>&1 &&
    redis-cli -h 127.0.0.1 -p "${PORTS[0]}" cluster nodes | awk '/myself/ { split($2, a, "@"); print a[2] }')
[[ -n $SEED_CPORT ]] || bench_die "cannot read node 0's cluster port (CLUSTER NODES)"
bench_log "3 nodes on ${PORTS[*]}; loading $KEYS keys of $VSIZE bytes"
taskset -c "$CCPU" "$BENCH" -s 127.0.0.1 -p "${PORTS[0]}" -t 1 -c 50 --pipeline 32 --ratio 1:0 \
    --key-pattern P:P -n allkeys --key-maximum $((KEYS - 1)) -d "$VSIZE" --hide-histogram \
    --hide-progress --json-out-file "$WORK/load.json" >"$WORK/load.out" 2>&1 ||
    bench_die "loading failed: $(tail -n 1 "$WORK/load.out")"

# keys_on PORT: the node's INFO keyspace count.
keys_on() {
    timeout 5 redis-cli -h 127.0.0.1 -p "$1" info keyspace 2>/dev/null | tr -d '\r' |
        sed -n 's/^db0:keys=\([0-9]*\).*/\1/p'
}
# keyspace_count PORT: the node's INFO keyspace count in KEYSPACE_COUNT (0 when
# it does not answer), asked over bash's /dev/tcp: the poller below forks
# nothing, since hundreds of redis-cli, tr and sed processes a second took the
# nodes' CPU and the load generator's and showed up in the p99 measured.
keyspace_count() {
    local fd line body
    KEYSPACE_COUNT=0
    exec {fd}<>"/dev/tcp/127.0.0.1/$1" 2>/dev/null || return 0
    printf '*2\r\n$4\r\nINFO\r\n$8\r\nkeyspace\r\n' >&"$fd"
    if read -r -t 5 -u "$fd" line && [[ $line =~ ^\$([0-9]+) ]] &&
        read -r -t 5 -u "$fd" -N "${BASH_REMATCH[1]}" body && [[ $body =~ db0:keys=([0-9]+) ]]; then
        KEYSPACE_COUNT=${BASH_REMATCH[1]}
    fi
    exec {fd}>&-
}
# balanced PORT...: 3 copies of every key over the nodes, the last holding its share
# (at least half of the 3/4 a fourth node should hold).
balanced() {
    local p sum=0 last=0
    for p in "$@"; do
        keyspace_count "$p"
        sum=$((sum + KEYSPACE_COUNT)) last=$KEYSPACE_COUNT
    done
    ((sum == 3 * KEYS && last * 8 >= 3 * KEYS))
}

# slice PHASE N: one 2-second run of the foreground load; appends a row to the TSV.
RUNS=$RESULTS_DIR/join_under_load-runs.tsv
printf 'phase\tslice\tops_per_s\tp50_ms\tp99_ms\tp999_ms\terrors\n' >"$RUNS"
slice() {
    taskset -c "$CCPU" "$BENCH" -s 127.0.0.1 -p "${PORTS[0]}" -t 1 -c 10 --ratio 1:4 \
        --rate-limiting $((RATE / 10)) --key-maximum $((KEYS - 1)) -d "$VSIZE" \
        --test-time 2 -n 1000000000 --print-percentiles 50,99,99.9 --hide-histogram \
        --hide-progress --json-out-file "$WORK/slice.json" >"$WORK/slice.out" 2>&1
    { echo "== $1 $2"; grep -v '^ *$' "$WORK/slice.out" | tail -n 3; } >>"$WORK/slices.out"
    jq -r --arg ph "$1" --arg n "$2" '."ALL STATS".Totals as $t |
        [$ph, $n, $t."Ops/sec", $t."Percentile Latencies"."p50.00",
         $t."Percentile Latencies"."p99.00", $t."Percentile Latencies"."p99.90", $t.Errors] | @tsv' \
        "$WORK/slice.json" >>"$RUNS" 2>/dev/null || bench_log "slice $1 $2 gave no result"
    # the slice's histogram ([upper bound ms, count] pairs), for the phase's p99 over every request
    jq -r --arg ph "$1" '."ALL STATS".Totals.Histogram[] | [$ph, .[0], .[1]] | @tsv' \
        "$WORK/slice.json" >>"$WORK/hist.tsv" 2>/dev/null
}

slice warmup 0 # not counted: the first slice after the load pays for its settling
for ((i = 0; i < SLICES; i++)); do slice before "$i"; done
port=$(bench_free_port "${PORTS[@]}")
cport=$(bench_free_port "${PORTS[@]}" "$port")
mkdir -p "$WORK/n3"
# the loaded nodes' loop-turn figures count from the join on (INFO
# ringkv_longest_turn_us, ringkv_slow_turns; binaries that have them)
for p in "${PORTS[@]}"; do timeout 5 redis-cli -h 127.0.0.1 -p "$p" config resetstat >/dev/null 2>&1; done
bench_log "node 3 joins (port $port, handoff-max-bytes-per-sec $HANDOFF_RATE)"
T0=$(date +%s%N)
bench_start "$JCPU" "$WORK/n3.log" "$RINGKV_BIN" --bind 127.0.0.1 --port "$port" --memcache-port 0 \
    --threads 1 --cpu-affinity no --storage log --dir "$WORK/n3" --admin-port 0 \
    --cluster-port "$cport" --seeds "127.0.0.1:$SEED_CPORT" --replicas 3 --read-quorum 2 \
    --write-quorum 2 --handoff-max-bytes-per-sec "$HANDOFF_RATE"
PIDS+=("$BENCH_PID")
ALL=("${PORTS[@]}" "$port")
# the poller waits between checks on a FIFO nobody writes to (read -t: no fork)
mkfifo "$WORK/never"
( exec {never}<>"$WORK/never"
  while ! balanced "${ALL[@]}"; do read -r -t 0.5 -u "$never" || true; done
  echo "${EPOCHREALTIME/./}000" >"$WORK/balanced" ) &
POLLER=$!
n=0
while [[ ! -s $WORK/balanced ]] && ((n < 150)); do slice during "$n"; n=$((n + 1)); done
kill "$POLLER" 2>/dev/null
wait "$POLLER" 2>/dev/null
POLLER=
# turn_figure PORT FIELD: an INFO stats field of a node ("n/a" without it)
turn_figure() {
    local v
    v=$(timeout 5 redis-cli -h 127.0.0.1 -p "$1" info stats 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p")
    echo "${v:-n/a}"
}
LONGEST=$(for p in "${ALL[@]}"; do
    v=$(turn_figure "$p" ringkv_longest_turn_us)
    [[ $v == n/a ]] && echo n/a || awk -v u="$v" 'BEGIN { printf "%.1f\n", u / 1000 }'
done | paste -sd' ')
SLOW=$(for p in "${ALL[@]}"; do turn_figure "$p" ringkv_slow_turns; done | paste -sd' ')
for ((i = 0; i < 3; i++)); do slice after "$i"; done
for pid in "${PIDS[@]}"; do bench_alive "$pid" || bench_die "a node died (pid $pid)"; done
[[ -s $WORK/balanced ]] || bench_die "not balanced within $((n * 2)) s"
BAL_S=$(awk -v a="$T0" -v b="$(cat "$WORK/balanced")" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
HELD=$(for p in "${ALL[@]}"; do keys_on "$p"; done | paste -sd' ')

# stat PHASE COLUMN FN: median or max of a column over a phase's slices.
stat() {
    awk -F'\t' -v ph="$1" -v c="$2" 'NR > 1 && $1 == ph { print $c }' "$RUNS" | sort -g |
        awk -v fn="$3" '{ v[n++] = $1 } END { if (!n) { print "n/a"; exit }
            if (fn == "max") print v[n - 1]; else print (n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) }'
}
# phase_pct PHASE P: the P-th percentile of every request of a phase (its slices'
# histograms merged): the upper bound of the slot holding it.
phase_pct() {
    awk -F'\t' -v ph="$1" '$1 == ph { n[$2] += $3; t += $3 } END { if (!t) { print "n/a"; exit }
        for (b in n) print b, n[b], t }' "$WORK/hist.tsv" | sort -g |
        awk -v p="$2" '{ s += $2; if (s >= p / 100 * $3) { print $1; exit } }'
}
B99=$(stat before 5 median) D99=$(stat during 5 median) W99=$(stat during 5 max)
AB99=$(phase_pct before 99) AD99=$(phase_pct during 99) AA99=$(phase_pct after 99)
ARATIO=$(bench_ratio "$AD99" "$AB99")
ERRORS=$(awk -F'\t' 'NR > 1 { s += $7 } END { print s + 0 }' "$RUNS")
RATIO=$(bench_ratio "$W99" "$B99") MRATIO=$(bench_ratio "$D99" "$B99")
MD=$RESULTS_DIR/join_under_load.md
{
    echo "# A fourth node joins a loaded 3-node cluster (issue 12)"
    echo
    echo "Generated $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/join_under_load.sh\` on $(bench_machine)."
    if [[ $JCPU == "$SCPU" ]]; then where="all on CPU $SCPU with the joiner"
    else where="on CPU $SCPU, the joiner on CPU $JCPU"; fi
    echo "3 nodes, N=3 R=2 W=2, storage = log (appendfsync everysec), one shard each, $where;" \
         "$KEYS keys of $VSIZE bytes loaded first. Foreground load:" \
         "ringkv-bench on CPU $CCPU through node 0, $RATE requests/s (10 connections at a fixed" \
         "rate), SET:GET 1:4, keys uniform over the loaded ones, in 2-second slices." \
         "handoff-max-bytes-per-sec $HANDOFF_RATE, handoff-concurrency 2 (defaults)."
    echo "CPU pressure at the end: $(head -n 1 /proc/pressure/cpu 2>/dev/null || echo n/a)."
    echo
    echo "| figure | value |"
    echo "|---|---:|"
    echo "| time from the joiner's start until balanced | $BAL_S s |"
    echo "| keys held per node after (INFO keyspace) | $HELD |"
    echo "| p99 of every request before (slices merged) | $AB99 ms |"
    echo "| p99 of every request during the transfer (slices merged) | $AD99 ms |"
    echo "| p99 of every request after | $AA99 ms |"
    echo "| during / before, every request | $ARATIO (target under 2: $(bench_verdict "$ARATIO" 2)) |"
    echo "| p99 before (median of $SLICES slices) | $B99 ms |"
    echo "| p99 during the transfer (median of $n slices) | $D99 ms |"
    echo "| p99 during the transfer (worst slice) | $W99 ms |"
    echo "| median during / before | $MRATIO (target under 2: $(bench_verdict "$MRATIO" 2)) |"
    echo "| worst during / before | $RATIO (target under 2: $(bench_verdict "$RATIO" 2)) |"
    echo "| error replies, all slices | $ERRORS |"
    echo "| longest loop turn from the join until balanced, nodes 0 to 3 (ms) | $LONGEST |"
    echo "| loop turns of 10 ms or more meanwhile, nodes 0 to 3 | $SLOW |"
    echo
    echo "Every slice:"
    echo
    echo "| phase | slice | ops/s | p50 ms | p99 ms | p99.9 ms | errors |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    awk -F'\t' 'NR > 1 { printf "| %s | %s | %.0f | %.3f | %.3f | %.3f | %s |\n", $1, $2, $3, $4, $5, $6, $7 }' "$RUNS"
} >"$MD"
cat "$MD"
((ERRORS == 0)) || exit 1
