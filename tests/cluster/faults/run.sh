#!/usr/bin/env bash
# tests/cluster/faults/run.sh: runs faults.py (its arguments passed on) in a
# network namespace of its own, ringkv-faults-<pid>, with only lo (up), so
# that the round's nodes (127.0.0.11-16), ports and nftables rules touch
# nothing else; the namespace is removed at exit. Needs root, ip (iproute2),
# nft (nftables) and /usr/bin/python3 with python3-redis: without them it
# says why and exits 77 (ctest's skip).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
skip() { echo "skip: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "the fault suite needs root (network namespaces, nftables)"
for tool in ip nft; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (iproute2, nftables)"
done
/usr/bin/python3 -c 'import redis' 2>/dev/null || skip "/usr/bin/python3 has no redis module (python3-redis)"
ns=ringkv-faults-$$
ip netns add "$ns" 2>/dev/null || skip "cannot make a network namespace here (ip netns add)"
child=""
# On exit, also when this script is stopped (ctest's timeout): the round is
# stopped by PID (its SIGTERM handler stops the nodes), then the namespace goes.
cleanup() {
    set +e
    if [ -n "$child" ]; then
        kill -TERM "$child" 2>/dev/null
        wait "$child"
    fi
    ip netns del "$ns"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
ip netns exec "$ns" ip link set lo up
ip netns exec "$ns" nft list ruleset >/dev/null 2>&1 || skip "nftables does not work in a namespace here"
ip netns exec "$ns" /usr/bin/python3 "$here/faults.py" "$@" &
child=$!
rc=0
wait "$child" || rc=$?
child=""
exit "$rc"
