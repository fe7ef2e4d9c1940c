#!/usr/bin/env bash
# ringkv-admin against a real node: status and ring tables, --json, the
# join/leave plans (--dry-run), the server's JSON errors with exit 1
# (404 unknown node, 409 the last node, 401 without the password), a join
# carried out (202: the node is contacted), exit 2 for usage.
set -u
bin=${RINGKV_BIN:?RINGKV_BIN is not set}
admin=${RINGKV_ADMIN_BIN:?RINGKV_ADMIN_BIN is not set}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.bash
source "$here/lib.bash"
fail=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi; }

dir=$(mktemp -d)
{ read -r port; read -r aport; read -r cport; read -r fport; } < <(itest_free_ports 4)
"$bin" --port "$port" --admin-port "$aport" --cluster-port "$cport" --memcache-port 0 \
    --threads 1 --partitions 64 \
    --requirepass s3cret --weight 150 --zone rack-1 --dir "$dir/data" > "$dir/log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
a() { "$admin" --host "127.0.0.1:$aport" --password s3cret "$@"; }
for _ in $(seq 1 500); do
    a status >/dev/null 2>&1 && break
    itest_running "$pid" || break
    sleep 0.02
done
if itest_uring_refused "$pid" "$dir/log"; then
    echo "skip: io_uring unavailable"; exit 77
fi
id=$(cat "$dir/data/node-id")

check "the node id is kept in the data directory" '[[ $id =~ ^[0-9a-f]{40}$ ]]'
check "status shows the node up with its address, id, weight, zone and share" \
    'a status | grep -Eq "^UP +127\.0\.0\.1:$port +$id +150 +rack-1 +64 +100\.0%$"'
check "status --json is the API's document" \
    '[ "$(a --json status | jq -r ".nodes[0].id, .nodes[0].status, .nodes[0].partitions" | tr "\n" " ")" = "$id up 64 " ]'
check "ring shows epoch, partitions and replicas" \
    'a ring | grep -Eq "^Ring epoch 1, hash [0-9a-f]{16}, 64 partitions, 1 replica\(s\), 0 pending"'
check "ring lists the member with what it owns" 'a ring | grep -Eq "^$id +150 +rack-1 +64 +64$"'
check "ring --json has an owner list per partition" \
    '[ "$(a --json ring | jq ".owners | length")" = 64 ]'
check "transfers prints the progress lines (nothing moves on one node)" \
    'a transfers | grep -Eq "^Ring epoch 1\. Pulling: 0 pending, 0 streaming, 0 done; 0 bytes \(0 keys\) received, 0 bytes/s, ETA 0 s" && a transfers | grep -q "^0 move(s) in the last ring change:"'
check "join --dry-run prints the plan: the new node takes its share" \
    'a join 127.0.0.2:16379 --dry-run | grep -Eq "^Plan \(dry run\): join of [0-9a-f]{40} -> ring epoch 2, hash [0-9a-f]{16}; 2[56] partition\(s\) move$"'
check "join takes no weight, zone or id (the node's own settings): exit 2" \
    '"$admin" join 127.0.0.2:16379 --weight 150 2>/dev/null; [ $? -eq 2 ]'
check "join --dry-run --json returns the moves" \
    '[ "$(a --json join 127.0.0.2:16379 --dry-run | jq "(.moves | length) == .moved and .moved >= 25 and .moved <= 26")" = true ]'
check "join without --dry-run asks the cluster to add the node" \
    'a join 127.0.0.2:16379 | grep -q "^Node 127.0.0.2:16379: joining"'
check "leave of the last node without --dry-run exits 1 with 409" \
    'out=$(a leave "$id" 2>&1); [ $? -eq 1 ] && grep -q "HTTP 409" <<<"$out"'
check "leave of an unknown node exits 1 with 404" \
    'out=$(a leave 0123456789abcdef0123456789abcdef01234567 --dry-run 2>&1); [ $? -eq 1 ] && grep -q "HTTP 404" <<<"$out"'
check "leave of the last node exits 1 with 409" \
    'out=$(a leave "$id" --dry-run 2>&1); [ $? -eq 1 ] && grep -q "HTTP 409" <<<"$out"'
check "without the password: exit 1 with 401" \
    'out=$("$admin" --host "127.0.0.1:$aport" status 2>&1); [ $? -eq 1 ] && grep -q "HTTP 401" <<<"$out"'
check "a usage mistake exits 2" '"$admin" frobnicate 2>/dev/null; [ $? -eq 2 ]'
check "a --host without a port is a usage mistake: exit 2" \
    'out=$("$admin" --host 127.0.0.1 status 2>&1); [ $? -eq 2 ] && grep -q "host:port" <<<"$out"'
check "leave of something that is not a node id exits 2 before asking" \
    'out=$(a leave ../health 2>&1); [ $? -eq 2 ] && grep -q "40 lowercase hex digits" <<<"$out"'
check "an address with nothing listening exits 1" \
    '"$admin" --host 127.0.0.1:1 status 2>/dev/null; [ $? -eq 1 ]'
# a server that answers without end (not an admin API): ringkv-admin stops
# reading at its limit (64 MiB) and exits 1 rather than growing
python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); s.settimeout(20)
open(sys.argv[2], "w").close()
c, _ = s.accept(); c.settimeout(20)
c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
chunk = b"[" * 65536
try:
    for _ in range(2048):  # 128 MiB at most, then it closes
        c.sendall(chunk)
except OSError:
    pass
' "$fport" "$dir/fake.ready" &
fake=$!
for _ in $(seq 1 250); do [ -e "$dir/fake.ready" ] && break; sleep 0.02; done
check "an endless answer: exit 1 at the reply limit" \
    'out=$("$admin" --host "127.0.0.1:$fport" status 2>&1); [ $? -eq 1 ] && grep -q "passes 64 MiB" <<<"$out"'
kill "$fake" 2>/dev/null; wait "$fake" 2>/dev/null
itest_stop "$pid"
rc=$?
check "SIGTERM stops the node with exit 0" '[ $rc -eq 0 ]'
trap - EXIT
rm -rf "$dir"
exit $fail
