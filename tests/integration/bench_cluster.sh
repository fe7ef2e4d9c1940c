#!/usr/bin/env bash
# bench_cluster.sh: ringkv-bench --cluster-mode against a real 3-master Redis Cluster.
#
# Starts three redis-server processes with cluster-enabled on free ports of
# 127.0.0.1 (each port + 10000, the cluster bus, free too), joins them with
# redis-cli --cluster create and waits until every node reports
# cluster_state:ok and the same slot map (bench/lib.sh). Then:
#  1. a bounded run (--requests) from the slot map CLUSTER SLOTS gives: every
#     request answered, no errors, no MOVED or ASK (the map is right), and
#     every master holds keys (DBSIZE > 0 on each);
#  2. a timed run with --verify during which 200 slots move from one master
#     to another (redis-cli --cluster reshard, keys migrated): the run must
#     count MOVED > 0 (its map went stale) and still end clean: every request
#     answered, no error replies, no verify errors;
#  3. slots left MIGRATING on their master and IMPORTING on another (keys not
#     moved): requests for keys the master lacks get -ASK, which must be
#     counted and followed (ASK > 0), again with no errors.
# Every server is stopped by PID on exit. Skips (77) when redis-server or
# redis-cli is missing, or RINGKV_BENCH_BIN is unset and no build is found.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../../bench/lib.sh
source "$HERE/../../bench/lib.sh"
# shellcheck source=lib.bash
source "$HERE/lib.bash"

for c in redis-server redis-cli; do
    if ! command -v "$c" >/dev/null 2>&1; then
        echo "SKIP: $c is not installed (apt-get install redis-server redis-tools)"
        exit 77
    fi
done
bench_need jq
BENCH=${RINGKV_BENCH_BIN:-}
if [[ -z $BENCH ]]; then
    echo "SKIP: RINGKV_BENCH_BIN is not set (run through ctest)"
    exit 77
fi
[[ -x $BENCH ]] || bench_die "ringkv-bench not found at $BENCH"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench_cluster.XXXXXX")
trap 'bench_stop_all; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

mapfile -t PORTS < <(bench_redis_cluster_ports 3)
bench_redis_cluster_start "$WORK" "0-$(($(nproc) - 1))" "${PORTS[@]}"
rcli() { timeout 10 redis-cli -h 127.0.0.1 -p "$@"; }
echo "ok   3-master Redis Cluster on ports ${PORTS[*]}"

FAILURES=0
check() { # check DESCRIPTION JQ-EXPRESSION FILE
    if [[ $(jq -r "$2" "$3") == true ]]; then
        echo "ok   $1"
    else
        echo "FAIL $1 ($(jq -c .counts "$3"))"
        FAILURES=$((FAILURES + 1))
    fi
}
# bench NAME ARGS...: ringkv-bench --cluster-mode seeded at the first node, JSON to $WORK/NAME.json
bench() {
    local name=$1
    shift
    timeout 120 "$BENCH" --cluster-mode -s 127.0.0.1 -p "${PORTS[0]}" -t 2 -c 4 --hide-histogram \
        --json-out-file "$WORK/$name.json" "$@" >"$WORK/$name.out" 2>&1
}
bench_ok() { # bench_ok NAME STATUS: the run exited 0 and its JSON exists
    if (($2 != 0)) || [[ ! -s $WORK/$1.json ]]; then
        echo "FAIL $1: ringkv-bench exited $2:"
        tail -n 5 "$WORK/$1.out"
        FAILURES=$((FAILURES + 1))
        return 1
    fi
}

# 1. The map is right: no redirections, keys on every master.
REQUESTS=1000
TOTAL=$((2 * 4 * REQUESTS))
bench plain -n "$REQUESTS" --pipeline 8 --ratio 1:1 --key-prefix bc- --key-maximum 20000 \
    --distinct-client-seed
if bench_ok plain $?; then
    check "plain: $TOTAL requests sent and answered" \
        ".counts.requests_sent == $TOTAL and .counts.replies == $TOTAL" "$WORK/plain.json"
    check "plain: no errors, no lost connections" \
        ".counts.errors == 0 and .counts.connection_errors == 0" "$WORK/plain.json"
    check "plain: no MOVED, no ASK" ".counts.moved == 0 and .counts.ask == 0" "$WORK/plain.json"
    check "plain: the table has MOVED/sec" '.["ALL STATS"].Totals["MOVED/sec"] == 0' \
        "$WORK/plain.json"
fi
for p in "${PORTS[@]}"; do
    n=$(rcli "$p" dbsize)
    if [[ $n =~ ^[0-9]+$ ]] && ((n > 0)); then
        echo "ok   master on port $p holds $n keys"
    else
        echo "FAIL master on port $p holds '$n' keys"
        FAILURES=$((FAILURES + 1))
    fi
done

# 2. Slots move during a run: MOVED is counted and followed.
FROM=$(rcli "${PORTS[0]}" cluster myid)
TO=$(rcli "${PORTS[1]}" cluster myid)
bench reshard --test-time 6 --pipeline 16 --ratio 1:1 --key-prefix rs- --key-maximum 20000 \
    --distinct-client-seed --data-size 64 --verify &
BENCH_RUN=$!
# the load has started once the first progress line is out
deadline=$((SECONDS + 30))
while ((SECONDS < deadline)) && ! grep -q '^\[RUN #1' "$WORK/reshard.out" 2>/dev/null; do
    sleep 0.05
done
if ! timeout 60 redis-cli --cluster reshard "127.0.0.1:${PORTS[0]}" --cluster-from "$FROM" \
    --cluster-to "$TO" --cluster-slots 200 --cluster-yes >"$WORK/reshard.log" 2>&1; then
    echo "FAIL redis-cli --cluster reshard:"
    tail -n 5 "$WORK/reshard.log"
    FAILURES=$((FAILURES + 1))
fi
if ! itest_running "$BENCH_RUN"; then
    echo "FAIL the run ended before the reshard did: nothing could go stale (slow machine?)"
    FAILURES=$((FAILURES + 1))
fi
wait "$BENCH_RUN"
if bench_ok reshard $?; then
    check "reshard: MOVED counted (the map went stale)" '.counts.moved > 0' "$WORK/reshard.json"
    check "reshard: every request answered, no errors, values intact" \
        '.counts.replies == .counts.requests_sent and .counts.errors == 0
         and .counts.verify_errors == 0 and .counts.connection_errors == 0 and .ok' \
        "$WORK/reshard.json"
    echo "     $(jq -r '"moved \(.counts.moved), ask \(.counts.ask), requests \(.counts.replies)"' \
        "$WORK/reshard.json")"
fi
bench_redis_cluster_wait_ok 30 "${PORTS[@]}" || bench_die "the cluster did not settle after the reshard"

# 3. Slots half migrated: keys the source lacks are answered with -ASK.
SRC_PORT=${PORTS[2]}
SRC=$(rcli "$SRC_PORT" cluster myid)
DST=$(rcli "${PORTS[1]}" cluster myid)
# the first 300 of its slots, from its own line of CLUSTER NODES ("lo-hi" or "slot" fields)
mapfile -t SLOTS < <(rcli "$SRC_PORT" cluster nodes | awk '/myself/ {
    for (i = 9; i <= NF; i++) {
        if ($i ~ /^\[/) continue
        n2 = split($i, r, "-"); lo = r[1]; hi = n2 > 1 ? r[2] : r[1]
        for (s = lo; s <= hi && n < 300; s++) { print s; n++ }
    } }')
for s in "${SLOTS[@]}"; do
    printf 'CLUSTER SETSLOT %s IMPORTING %s\n' "$s" "$SRC" >>"$WORK/importing.txt"
    printf 'CLUSTER SETSLOT %s MIGRATING %s\n' "$s" "$DST" >>"$WORK/migrating.txt"
done
rcli "${PORTS[1]}" <"$WORK/importing.txt" >/dev/null
rcli "$SRC_PORT" <"$WORK/migrating.txt" >/dev/null
bench ask -n 500 --pipeline 4 --ratio 1:1 --key-prefix ask- --key-maximum 20000 \
    --distinct-client-seed
if bench_ok ask $?; then
    check "ask: ASK counted and followed (${#SLOTS[@]} slots migrating)" '.counts.ask > 0' \
        "$WORK/ask.json"
    check "ask: every request answered, no errors" \
        '.counts.replies == .counts.requests_sent and .counts.errors == 0 and .ok' "$WORK/ask.json"
fi

for pid in "${BENCH_PIDS[@]}"; do
    itest_running "$pid" || { echo "FAIL redis-server (pid $pid) exited during the test"; FAILURES=$((FAILURES + 1)); }
done
if ((FAILURES)); then
    echo "$FAILURES check(s) failed"
    exit 1
fi
echo "all checks passed"
