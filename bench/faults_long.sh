#!/usr/bin/env bash
# bench/faults_long.sh: longer fault rounds than CI's faults_ci: the fault
# suite (tests/cluster/faults/run.sh, as root: it makes a network namespace)
# with the whole schedule repeated under load until DURATION seconds passed
# (or OPS operations were done), ROUNDS times with seeds 1, 2, ...; prints
# each round's checker counts and a line per round, and exits 1 when any
# round found a violation.
#
# Usage: sudo bench/faults_long.sh [extra faults.py options]
#   environment: ROUNDS (3), DURATION (600, seconds of faults per round),
#   OPS (unbounded), HOLD (10, seconds per fault), CLIENTS (8), KEYS (40),
#   COLD (300, keys written once per fault), FAULTS (all),
#   RINGKV_BIN (build/ringkv)
# Example: ROUNDS=1 DURATION=1800 FAULTS=partition,kill,mixed bench/faults_long.sh
set -uo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-600} HOLD=${HOLD:-10} CLIENTS=${CLIENTS:-8}
KEYS=${KEYS:-40} COLD=${COLD:-300}
FAULTS=${FAULTS:-partition,oneway,kill,pause,wipe,skew,join,leave,pausejoin,mixed}
export RINGKV_BIN=${RINGKV_BIN:-build/ringkv}
args=(--faults "$FAULTS" --repeat --duration "$DURATION" --hold "$HOLD" --clients "$CLIENTS"
      --keys "$KEYS" --cold-keys "$COLD" --show-logs)
[ -n "${OPS:-}" ] && args+=(--max-ops "$OPS")
failed=0
summary=()
for ((r = 1; r <= ROUNDS; r++)); do
    echo "== round $r of $ROUNDS (seed $r, ${DURATION}s of faults: $FAULTS)"
    out=$(mktemp)
    bash tests/cluster/faults/run.sh "${args[@]}" --seed "$r" "$@" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    ((rc == 77)) && exit 77
    ((rc != 0)) && failed=1
    summary+=("round $r: rc=$rc $(grep -h '^checker: ' "$out" | tr '\n' ' ')")
    rm -f "$out"
done
echo "== summary"
printf '%s\n' "${summary[@]}"
exit "$failed"
