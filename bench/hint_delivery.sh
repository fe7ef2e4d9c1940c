#!/usr/bin/env bash
# bench/hint_delivery.sh: hinted handoff's delivery rate (issue 12): how fast
# a backlog of hints reaches an owner that comes back.
#
# How to reproduce:
#   cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build
#   bench/hint_delivery.sh                 # about 133,000 keys: about 100,000 hints
#   bench/hint_delivery.sh --keys 20000    # a smoke run
# Options: --keys N (keys written while the owner is down, 133334), --value N
#   (value bytes, 32), --rate SIZE (hint-max-bytes-per-sec of every node:
#   "1gb", no throttle to speak of; "16mb" is the default setting).
# Environment: SERVER_CPU (0), CLIENT_CPU (1), RESULTS_DIR (bench/results),
#   RINGKV_BIN (build/ringkv), RINGKV_BENCH_BIN.
#
# 4 nodes (one shard each, storage = memory, N=3 R=2 W=2) on 127.0.0.1, all
# pinned to SERVER_CPU. Node 3 is killed (-9); once node 0 counts it down,
# ringkv-bench (pinned to CLIENT_CPU) writes KEYS keys through node 0 (which
# forwards those it holds no replica of): every key whose top 3 holds node 3
# (about 3 in 4) is hinted to the node past the top 3, so about 0.75 x KEYS
# hints wait, spread over nodes 0..2 (INFO ringkv_hints_pending summed).
# Node 3 is restarted with the same directory (the same node, nothing
# stored); the backlog is polled every 0.1 s until it is empty. The rate is
# the hints (and their record bytes) delivered over the time from the first
# hint delivered to the last, and from the restart to the last; the stand-ins'
# own log lines (first send to last ack) give the exact delivery time.
#
# Output: a markdown report on stdout and in RESULTS_DIR/hint_delivery.md.
# Every node is stopped by PID on exit; traffic stays on 127.0.0.1.
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KEYS=133334 VALUE=32 RATE=1gb
while (($#)); do
    case $1 in
    --keys) KEYS=${2:?--keys N}; shift ;;
    --value) VALUE=${2:?--value N}; shift ;;
    --rate) RATE=${2:?--rate SIZE}; shift ;;
    -h | --help) sed -n '2,/^set /{/^set /d; s/^# \{0,1\}//; p}' "$0"; exit 0 ;;
    *) bench_die "unknown option '$1' (--help lists them)" ;;
    esac
    shift
done
ROOT=$(bench_root)
RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results}
RINGKV_BIN=${RINGKV_BIN:-$ROOT/build/ringkv}
bench_need taskset redis-cli awk
[[ -x $RINGKV_BIN ]] || bench_die "no ringkv binary at $RINGKV_BIN (build it, or set RINGKV_BIN)"
BENCH=$(bench_find_bench_bin) || exit 1
read -r SCPU CCPU < <(bench_cpus)
mkdir -p "$RESULTS_DIR" || bench_die "cannot create $RESULTS_DIR"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hint_delivery.XXXXXX") || bench_die "no scratch folder"
trap 'bench_stop_all; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

NODES=4
declare -a PORT CPORT PID
taken=()
for ((i = 0; i < NODES; i++)); do
    PORT[i]=$(bench_free_port "${taken[@]}")
    CPORT[i]=$(bench_free_port "${taken[@]}" "${PORT[i]}")
    taken+=("${PORT[i]}" "${CPORT[i]}")
done

# start_node I: node I (its directory kept across restarts), seeded at node 0.
start_node() {
    local i=$1 seeds=()
    ((i > 0)) && seeds=(--seeds "127.0.0.1:${CPORT[0]}")
    mkdir -p "$WORK/n$i"
    bench_start "$SCPU" "$WORK/n$i.log" "$RINGKV_BIN" --bind 127.0.0.1 --port "${PORT[i]}" \
        --memcache-port 0 --threads 1 --cpu-affinity no --storage memory --dir "$WORK/n$i" \
        --admin-port 0 --cluster-port "${CPORT[i]}" --replicas 3 --read-quorum 2 \
        --write-quorum 2 --hint-max-bytes-per-sec "$RATE" --hint-max-bytes 4gb "${seeds[@]}"
    PID[i]=$BENCH_PID
    bench_wait_resp "${PORT[i]}" "$BENCH_PID" 20 ||
        bench_die "node $i did not come up: $(tail -n 2 "$WORK/n$i.log")"
}

# info N FIELD: INFO's FIELD at node N (empty when it does not answer).
info() {
    timeout 5 redis-cli -h 127.0.0.1 -p "${PORT[$1]}" info all 2>/dev/null | tr -d '\r' |
        sed -n "s/^$2://p" | head -n 1
}
# pending FIELD: FIELD summed over nodes 0..2.
pending() {
    local i sum=0 v
    for ((i = 0; i < 3; i++)); do
        v=$(info "$i" "$1")
        sum=$((sum + ${v:-0}))
    done
    printf '%s\n' "$sum"
}
# wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}
sees_down() { [[ $(redis-cli -h 127.0.0.1 -p "${PORT[0]}" cluster info | tr -d '\r' |
    sed -n 's/^ringkv_nodes_down://p') == 1 ]]; }
sees_up() { [[ $(redis-cli -h 127.0.0.1 -p "${PORT[0]}" cluster info | tr -d '\r' |
    sed -n 's/^ringkv_nodes_up://p') == "$NODES" ]]; }
now_ms() { date +%s%3N; }

for ((i = 0; i < NODES; i++)); do start_node "$i"; done
bench_ringkv_cluster_wait 60 "$NODES" "${PORT[@]}" ||
    bench_die "the $NODES nodes did not agree on one ring within 60 s"
bench_log "4 nodes up on ports ${PORT[*]}"

kill -KILL "${PID[3]}"
wait "${PID[3]}" 2>/dev/null
wait_for 30 sees_down || bench_die "node 0 never counted node 3 down"
bench_log "node 3 killed and seen down; writing $KEYS keys through node 0"

T0=$(now_ms)
timeout 600 taskset -c "$CCPU" "$BENCH" -s 127.0.0.1 -p "${PORT[0]}" -t 1 -c 50 --pipeline 16 \
    --ratio 1:0 --key-pattern P:P -n allkeys --key-minimum 0 --key-maximum $((KEYS - 1)) \
    -d "$VALUE" --hide-histogram --hide-progress --json-out-file "$WORK/load.json" \
    >"$WORK/load.out" 2>&1 || bench_die "loading failed: $(tail -n 2 "$WORK/load.out")"
LOAD_MS=$(($(now_ms) - T0))
# hints acked after the writes' W was met: until two readings agree
HINTS=$(pending ringkv_hints_pending)
for ((k = 0; k < 100; k++)); do
    sleep 0.3
    h=$(pending ringkv_hints_pending)
    ((h == HINTS)) && break
    HINTS=$h
done
BYTES=$(pending ringkv_hints_pending_bytes)
((HINTS > 0)) || bench_die "no hints were taken"
bench_log "$HINTS hints pending ($BYTES bytes) after $LOAD_MS ms of writes; restarting node 3"

T_RESTART=$(now_ms)
start_node 3
T_FIRST=0
left=$HINTS
deadline=$((SECONDS + 600))
while ((left > 0 && SECONDS < deadline)); do
    sleep 0.1
    left=$(pending ringkv_hints_pending)
    ((T_FIRST == 0 && left < HINTS)) && T_FIRST=$(now_ms)
done
T_END=$(now_ms)
((left == 0)) || bench_die "$left hints still pending after 600 s"
UP_MS=$(wait_for 30 sees_up && echo ok)
HELD=$(info 3 db0 | sed -n 's/^keys=\([0-9]*\).*/\1/p')

# The stand-ins' own account: each logs "hints: delivered N hints (B bytes) to
# <id> in T ms" when its backlog for <id> empties (T from its first send);
# the line's time stamp is the end. The window is the earliest start to the
# latest end over the three.
ID3=$(redis-cli -h 127.0.0.1 -p "${PORT[3]}" cluster myid | tr -d '\r')
LOGGED=$(for ((i = 0; i < 3; i++)); do
    grep -h "hints: delivered .* to $ID3 in " "$WORK/n$i.log" | tail -n 1 |
        while read -r ts _ _ _ _ _ n _ b _ _ _ _ t _; do
            end=$(date -d "$ts" +%s%3N)
            echo "$n ${b#(} $((end - t)) $end"
        done
done)
read -r LOG_HINTS LOG_BYTES LOG_MS < <(awk 'NR == 1 { s = $3; e = $4 } { h += $1; b += $2;
    if ($3 < s) s = $3; if ($4 > e) e = $4 } END { print h + 0, b + 0, e - s }' <<<"$LOGGED")

rate() { awk -v n="$1" -v ms="$2" -v d="$3" 'BEGIN { if (ms <= 0) print "n/a"; else printf "%.*f\n", d, n * 1000 / ms }'; }
DELIVER_MS=$((T_END - T_FIRST))
TOTAL_MS=$((T_END - T_RESTART))
MD=$RESULTS_DIR/hint_delivery.md
{
    echo "# Hinted handoff: delivery of a backlog to a restarted owner (issue 12)"
    echo
    echo "Generated $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/hint_delivery.sh\` on" \
         "$(bench_machine)."
    echo "4 nodes (one shard each, storage = memory, N=3 R=2 W=2), all pinned to CPU $SCPU;" \
         "ringkv-bench on CPU $CCPU. Node 3 killed (-9), $KEYS keys of $VALUE-byte values" \
         "written through node 0 ($LOAD_MS ms), node 3 restarted with its directory" \
         "(nothing stored). \`hint-max-bytes-per-sec\` $RATE (on every node)."
    echo
    echo "| figure | value |"
    echo "|---|---:|"
    echo "| hints pending before the restart (nodes 0..2) | $HINTS |"
    echo "| their record bytes | $BYTES |"
    echo "| restart to first hint delivered | $((T_FIRST - T_RESTART)) ms |"
    echo "| first hint sent to last acked (the stand-ins' logs) | $LOG_MS ms, $LOG_HINTS hints |"
    echo "| **delivery rate** (the stand-ins' logs) | **$(rate "$LOG_HINTS" "$LOG_MS" 0) hints/s, $(rate "$LOG_BYTES" $((LOG_MS * 1048576)) 2) MiB/s** |"
    echo "| first to last hint delivered (polled) | $DELIVER_MS ms |"
    echo "| delivery rate (polled, first to last) | $(rate "$HINTS" "$DELIVER_MS" 0) hints/s, $(rate "$BYTES" $((DELIVER_MS * 1048576)) 2) MiB/s |"
    echo "| rate from the restart | $(rate "$HINTS" "$TOTAL_MS" 0) hints/s, $(rate "$BYTES" $((TOTAL_MS * 1048576)) 2) MiB/s |"
    echo "| keys node 3 holds afterwards (INFO keyspace) | ${HELD:-n/a} |"
    echo
    echo "The delay to the first delivery is node 3's start, its being seen up by the"
    echo "stand-ins' failure detection, and the links made. The polled figures read the"
    echo "backlog (INFO of nodes 0..2) every 0.1 s, so they are good to about 0.1 s; the"
    echo "logged ones are the stand-ins' own (millisecond) times."
    echo "${UP_MS:+Node 0 counts all 4 nodes up again.}"
} | tee "$MD"
