#!/usr/bin/env bash
# The command line: --help, --version, bad settings, the README's settings
# table, and a config file overridden by flags (checked over RESP).
set -u
bin=${RINGKV_BIN:?RINGKV_BIN is not set}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.bash
source "$here/lib.bash"
fail=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi; }

check "--version prints the version" '"$bin" --version | grep -q "^ringkv [0-9]"'
check "--help lists every setting" '[ "$("$bin" --help | grep -c "^  --")" -ge 20 ]'
check "an unknown flag exits 2 with a reason" \
    '"$bin" --no-such 1 2>&1 | grep -q "unknown setting" && { "$bin" --no-such 1 2>/dev/null; [ $? -eq 2 ]; }'
check "a bad value names the setting" '"$bin" --port 99999 2>&1 | grep -q "port"'
check "a value size past what a data log record holds is refused at start-up" \
    'timeout 10 "$bin" --proto-max-bulk-len 2gb 2>&1 | grep -q "proto-max-bulk-len.*data log record"'
{ read -r wport; read -r wcport; } < <(itest_free_ports 2)
check "a wildcard bind with seeds is refused at start-up, in one line" \
    'out=$(timeout 10 "$bin" --bind 0.0.0.0 --seeds 127.0.0.2:17000 --port "$wport" \
         --cluster-port "$wcport" --admin-port 0 --memcache-port 0 --threads 1 \
         --dir "$(mktemp -d)" 2>&1); [ $? -eq 1 ] && printf "%s\n" "$out" | grep -q "wildcard address"'
check "the README lists every setting as the binary documents it" \
    'rows=$("$bin" --settings-markdown) && [ "$(printf "%s\n" "$rows" | wc -l)" -ge 20 ] &&
     printf "%s\n" "$rows" | while IFS= read -r line; do grep -qF -- "$line" "$here/../../README.md" || exit 1; done'

# A config file, overridden by a flag; the node reports the merged values.
dir=$(mktemp -d)
{ read -r port; read -r aport; read -r cport; } < <(itest_free_ports 3)
printf 'port = 1\nmaxmemory-policy = allkeys-lru\nmaxmemory = 1mb\n' > "$dir/ringkv.ini"
"$bin" "$dir/ringkv.ini" --port "$port" --admin-port "$aport" --cluster-port "$cport" \
    --memcache-port 0 --threads 1 --dir "$dir/data" > "$dir/log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 500); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    itest_running "$pid" || break
    sleep 0.02
done
if itest_uring_refused "$pid" "$dir/log"; then
    echo "skip: io_uring unavailable"; exit 77
fi
check "the file's policy is in force" \
    '[ "$(redis-cli -p "$port" config get maxmemory-policy | tail -1)" = "allkeys-lru" ]'
check "the file's size is parsed" '[ "$(redis-cli -p "$port" config get maxmemory | tail -1)" = "1048576" ]'
check "the flag overrides the file" '[ "$(redis-cli -p "$port" config get port | tail -1)" = "$port" ]'
# A second node on a port the first holds stops at start-up in one line,
# after asking for 5 s (SO_REUSEPORT, which the shards' listeners share, let
# it start and take half the connections); the same for the memcache port.
{ read -r p2; read -r a2; read -r c2; read -r mport; } < <(itest_free_ports 4)
check "a RESP port another node holds stops the start, in one line" \
    'out=$(timeout 20 "$bin" --port "$port" --admin-port "$a2" --cluster-port "$c2" \
         --memcache-port 0 --threads 2 --dir "$dir/data2" 2>&1); [ $? -eq 1 ] &&
     printf "%s\n" "$out" | grep -q "cannot listen on .*:$port: Address already in use"'
"$bin" --port "$p2" --admin-port 0 --cluster-port "$c2" --memcache-port "$mport" --threads 1 \
    --dir "$dir/data3" > "$dir/log3" 2>&1 &
pid3=$!
for _ in $(seq 1 500); do redis-cli -p "$p2" ping >/dev/null 2>&1 && break; sleep 0.02; done
{ read -r p4; read -r a4; read -r c4; } < <(itest_free_ports 3)
check "a memcache port another node holds stops the start, in one line" \
    'out=$(timeout 20 "$bin" --port "$p4" --admin-port "$a4" --cluster-port "$c4" \
         --memcache-port "$mport" --threads 2 --dir "$dir/data4" 2>&1); [ $? -eq 1 ] &&
     printf "%s\n" "$out" | grep -q "cannot listen on .*:$mport: Address already in use"'
itest_stop "$pid3" >/dev/null
# SIGHUP (a closed terminal, or a stopped node whose launcher exits: the
# kernel hangs up an orphaned process group) is ignored, as redis-server does
kill -HUP "$pid"
check "SIGHUP leaves the node running" \
    '[ "$(redis-cli -p "$port" ping)" = "PONG" ] && itest_running "$pid"'
itest_stop "$pid"
rc=$?
check "SIGTERM stops the node with exit 0" '[ $rc -eq 0 ]'
check "the log says it stopped cleanly" 'grep -q "stopped cleanly" "$dir/log"'
trap - EXIT
rm -rf "$dir"
exit $fail
