#!/usr/bin/env bash
# bench_e2e.sh: ringkv-bench against a real ringkv node, over RESP and memcached text.
#
# Starts $RINGKV_BIN on free ports of 127.0.0.1 (stopped by PID on exit),
# prepopulates a small key range with checked values, then runs a mixed,
# pipelined load bounded by --requests with --verify, and checks that the
# counts in the JSON add up: requests sent == replies == connections x
# requests; sets + gets == replies; hits + misses == gets; every get hits
# (the whole range was written); no error replies, lost connections or
# verify mismatches. The node's own DBSIZE must then equal the keys the two
# prepopulations wrote. Last, a rate-limited run bounded by time must
# account for exactly rate x connections x seconds requests (sent, or counted
# as unsent if the node fell far behind), at least 90% sent, all answered.
# The node must then exit 0 on SIGTERM (itest_stop).
# Exit 77 (skip) only when $RINGKV_BIN is missing or the kernel refuses io_uring.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../../bench/lib.sh
source "$HERE/../../bench/lib.sh"
# shellcheck source=lib.bash
source "$HERE/lib.bash"

if [[ -z ${RINGKV_BIN:-} || ! -x ${RINGKV_BIN:-} ]]; then
    echo "SKIP: RINGKV_BIN (${RINGKV_BIN:-unset}) is not an executable"
    exit 77
fi
BENCH=${RINGKV_BENCH_BIN:-$(dirname "$RINGKV_BIN")/ringkv-bench}
[[ -x $BENCH ]] || bench_die "ringkv-bench not found (RINGKV_BENCH_BIN=${RINGKV_BENCH_BIN:-unset})"
bench_need jq redis-cli

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench_e2e.XXXXXX")
trap 'bench_stop_all; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

PORT=$(bench_free_port)
MPORT=$(bench_free_port "$PORT")
mapfile -t CMD < <(bench_ringkv_cmd "$RINGKV_BIN" "$PORT" "$MPORT" 2)
"${CMD[@]}" >"$WORK/ringkv.log" 2>&1 &
BENCH_PIDS+=($!)
NODE=$!
if ! bench_wait_resp "$PORT" "$NODE" 20 || ! bench_wait_memcache "$MPORT" "$NODE" 10; then
    if itest_uring_refused "$NODE" "$WORK/ringkv.log"; then
        echo "SKIP: the kernel refuses io_uring here"
        exit 77
    fi
    echo "FAIL: ringkv did not come up on ports $PORT/$MPORT; its log:"
    tail -n 20 "$WORK/ringkv.log"
    exit 1
fi

FAILURES=0
check() { # check DESCRIPTION JQ-EXPRESSION FILE
    if [[ $(jq -r "$2" "$3") == true ]]; then
        echo "ok   $1"
    else
        echo "FAIL $1"
        FAILURES=$((FAILURES + 1))
    fi
}

THREADS=2 CLIENTS=4 REQUESTS=1500
TOTAL=$((THREADS * CLIENTS * REQUESTS))

# run_load NAME PORT PROTOCOL
run_load() {
    local name=$1 port=$2 proto=$3 json=$WORK/$1.json
    echo "# $name: $proto on port $port"
    if ! timeout 120 "$BENCH" -s 127.0.0.1 -p "$port" -P "$proto" -t "$THREADS" -c "$CLIENTS" \
        --pipeline 8 --ratio 1:3 -n "$REQUESTS" --key-prefix "e2e-$name-" --key-minimum 1 \
        --key-maximum 4000 --data-size-range 40-300 --prepopulate --verify \
        --distinct-client-seed --json-out-file "$json" --hide-histogram \
        >"$WORK/$name.out" 2>&1; then
        echo "FAIL $name: ringkv-bench exited non-zero:"
        tail -n 5 "$WORK/$name.out"
        FAILURES=$((FAILURES + 1))
        [[ -s $json ]] || return
    fi
    check "$name: requests sent == replies == $TOTAL" \
        ".counts.requests_sent == $TOTAL and .counts.replies == $TOTAL" "$json"
    check "$name: sets + gets == replies" ".counts.sets + .counts.gets == .counts.replies" "$json"
    check "$name: sets are a quarter (ratio 1:3)" ".counts.sets == $TOTAL / 4" "$json"
    check "$name: hits + misses == gets" ".counts.hits + .counts.misses == .counts.gets" "$json"
    check "$name: every get hits a prepopulated key" \
        ".counts.misses == 0 and .counts.hits > 0" "$json"
    check "$name: no error replies" ".counts.errors == 0" "$json"
    check "$name: no verify errors" ".counts.verify_errors == 0" "$json"
    check "$name: no lost connections" ".counts.connection_errors == 0" "$json"
    check "$name: JSON rows agree with counts" \
        '.["ALL STATS"].Sets.Count == .counts.sets and .["ALL STATS"].Gets.Count == .counts.gets
         and .["ALL STATS"].Totals.Count == .counts.replies' "$json"
    check "$name: every reply has a latency" \
        '([.["ALL STATS"].Totals.Histogram[][1]] | add) == .counts.replies' "$json"
}

run_load resp "$PORT" redis
run_load memcache "$MPORT" memcache_text

# Both protocols share one key space: 4000 keys per prefix, nothing else.
DBSIZE=$(timeout 5 redis-cli -h 127.0.0.1 -p "$PORT" dbsize 2>&1)
if [[ $DBSIZE == 8000 ]]; then
    echo "ok   node's DBSIZE equals the 8000 keys prepopulated"
else
    echo "FAIL node's DBSIZE is '$DBSIZE', not the 8000 keys prepopulated"
    FAILURES=$((FAILURES + 1))
fi

# Open loop: 4 connections at 250 requests/s each for 2 s is about 2000 requests.
RATE_JSON=$WORK/rate.json
echo "# rate: --rate-limiting 250, 1 x 4 connections, 2 s"
if ! timeout 60 "$BENCH" -s 127.0.0.1 -p "$PORT" -t 1 -c 4 --rate-limiting 250 --test-time 2 \
    --ratio 1:1 --key-prefix e2e-resp- --key-minimum 1 --key-maximum 4000 -d 64 \
    --json-out-file "$RATE_JSON" --hide-histogram >"$WORK/rate.out" 2>&1; then
    echo "FAIL rate: ringkv-bench exited non-zero:"
    tail -n 5 "$WORK/rate.out"
    FAILURES=$((FAILURES + 1))
fi
if [[ -s $RATE_JSON ]]; then
    check "rate: the schedule is 2000 requests, all accounted for" \
        '.counts.requests_sent + .counts.requests_due_unsent == 2000' "$RATE_JSON"
    check "rate: at least 90% of them sent" '.counts.requests_sent >= 1800' "$RATE_JSON"
    check "rate: every request answered, no errors" \
        '.counts.replies == .counts.requests_sent and .counts.errors == 0' "$RATE_JSON"
fi

if itest_stop "$NODE"; then
    echo "ok   ringkv ran to the end and exited 0 on SIGTERM"
else
    echo "FAIL ringkv exited during the test or did not stop cleanly; its log:"
    tail -n 20 "$WORK/ringkv.log"
    FAILURES=$((FAILURES + 1))
fi
BENCH_PIDS=() # the node is reaped: the EXIT trap must not signal its PID again
if ((FAILURES)); then
    echo "$FAILURES check(s) failed"
    exit 1
fi
echo "all checks passed"
