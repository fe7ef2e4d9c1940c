#!/usr/bin/env bash
# redis_cli.sh: the stock redis-cli against one node: single commands, commands
# read from stdin, -x, -r, RESP3 (-3), pipe mode with 10k commands, --scan
# with and without --pattern, and INFO.
# Starts its own node on a free loopback port (ringkv from $RINGKV_BIN, or
# redis-server when RINGKV_TEST_TARGET=redis), waits for the port with a
# deadline, and stops it by PID on exit (SIGTERM, then SIGKILL past the
# deadline). A node that died or exited badly fails the script. Exit 0 when
# every check passed, 1 otherwise (printing the node's output), 77 (skip)
# when redis-cli is missing or the kernel refuses io_uring. The EXIT trap
# decides the status once: a skip stays a skip, and an exit it did not
# expect (set -u, a non-zero exit from anywhere) is a failure, never a pass.
set -u

# shellcheck source=lib.bash
source "$(dirname "$0")/lib.bash"

DEADLINE_S=10
KEYS=10000

command -v redis-cli >/dev/null || { echo "redis-cli not installed; skipping"; exit 77; }

workdir=$(mktemp -d /tmp/ringkv-it-cli-XXXXXX)
log="$workdir/server.log"
pid=""
port=""
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

now_ms() { date +%s%3N; }

# True when something listens on 127.0.0.1:$1 or any address (from /proc, no tools needed).
port_in_use() {
    local hex
    hex=$(printf ':%04X ' "$1")
    grep -h " 0A " /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '{print $2" "}' |
        grep -q -- "$hex"
}

port_accepts() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Stops the node by PID (itest_stop: SIGTERM, the deadline, SIGKILL). 0 when
# it was running and exited with status 0.
stop_node() {
    [ -n "$pid" ] || return 0
    local rc=0
    itest_stop "$pid" "$DEADLINE_S" || rc=1
    pid=""
    return "$rc"
}

cleanup() {
    local status=$?
    if [ "$status" -eq 77 ]; then
        stop_node
        rm -rf "$workdir"
        exit 77
    fi
    if [ "$status" -ne 0 ] && [ "$failures" -eq 0 ]; then
        fail "the script stopped early with status $status"
    fi
    stop_node || failures=$((failures + 1))
    if [ "$failures" -gt 0 ]; then
        echo "---- node output ($log) ----" >&2
        tail -c 32768 "$log" >&2
        echo "---- end of node output ----" >&2
    fi
    rm -rf "$workdir"
    if [ "$failures" -gt 0 ]; then
        echo "redis_cli.sh: $failures check(s) failed" >&2
        exit 1
    fi
    echo "redis_cli.sh: all checks passed"
    exit 0
}
trap cleanup EXIT

# Starts the node on a free port; retries with another port if it dies early.
start_node() {
    local attempt mc_port
    for attempt in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 40000))
        mc_port=$((port + 1))
        if port_in_use "$port" || port_in_use "$mc_port"; then
            continue
        fi
        if [ "${RINGKV_TEST_TARGET:-}" = "redis" ]; then
            (cd "$workdir" && exec redis-server --port "$port" --bind 127.0.0.1 --save '' \
                --appendonly no --databases 1) >"$log" 2>&1 &
        else
            if [ -z "${RINGKV_BIN:-}" ]; then
                echo "RINGKV_BIN is not set (ctest sets it; or RINGKV_TEST_TARGET=redis)" >&2
                failures=$((failures + 1))
                exit 1
            fi
            (cd "$workdir" && exec "$RINGKV_BIN" --port "$port" --memcache-port "$mc_port" \
                --admin-port 0 --threads 2 --bind 127.0.0.1) >"$log" 2>&1 &
        fi
        pid=$!
        local end=$(($(now_ms) + DEADLINE_S * 1000))
        while [ "$(now_ms)" -lt "$end" ]; do
            if ! kill -0 "$pid" 2>/dev/null; then
                break
            fi
            if port_accepts "$port"; then
                return 0
            fi
            sleep 0.01
        done
        if kill -0 "$pid" 2>/dev/null; then
            fail "node not accepting on port $port after ${DEADLINE_S}s"
            exit 1
        fi
        wait "$pid"
        echo "node exited early (status $?) on port $port; output:" >&2
        cat "$log" >&2
        if grep -q "io_uring" "$log"; then
            echo "the kernel refuses io_uring here; skipping" >&2
            pid=""
            exit 77
        fi
        pid=""
    done
    fail "could not start the node"
    exit 1
}

cli() {
    timeout "$DEADLINE_S" redis-cli -h 127.0.0.1 -p "$port" "$@"
}

# expect NAME WANT ACTUAL
expect() {
    if [ "$2" != "$3" ]; then
        fail "$1: want '$2', got '$3'"
    fi
}

start_node

# Single commands.
expect "SET" "OK" "$(cli SET greeting hello)"
expect "GET" "hello" "$(cli GET greeting)"
expect "GET missing (raw)" "" "$(cli GET nosuchkey)"
expect "GET missing" "(nil)" "$(cli --no-raw GET nosuchkey)"
expect "INCR" "1" "$(cli INCR counter)"
expect "PING" "PONG" "$(cli PING)"
expect "wrong arity" "ERR wrong number of arguments for 'get' command" "$(cli GET | head -n 1)"
expect "DEL" "2" "$(cli DEL greeting counter nosuchkey)"

# Commands read from stdin, -x, -r, RESP3.
stdin_out=$(printf 'SET x 1\nINCR x\nGET x\n' | cli | tr '\n' ' ')
expect "stdin commands" "OK 2 2 " "$stdin_out"
expect "-x" "OK" "$(printf 'from stdin' | cli -x SET fromstdin)"
expect "-x value" "from stdin" "$(cli GET fromstdin)"
expect "-r 100" "100" "$(cli -r 100 INCR repeated | tail -n 1)"
expect "RESP3 GET" "from stdin" "$(cli -3 GET fromstdin)"
expect "RESP3 GET missing" "(nil)" "$(cli -3 --no-raw GET nosuchkey)"

# Pipe mode: 10k SETs in RESP.
expect "FLUSHALL" "OK" "$(cli FLUSHALL)"
pipe_out=$(
    for ((i = 0; i < KEYS; i++)); do
        k="key:$i"
        v="val:$i"
        printf '*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n' "${#k}" "$k" "${#v}" "$v"
    done | timeout 60 redis-cli -h 127.0.0.1 -p "$port" --pipe 2>&1
)
case "$pipe_out" in
*"errors: 0, replies: $KEYS"*) ;;
*) fail "redis-cli --pipe: want 'errors: 0, replies: $KEYS', got: $pipe_out" ;;
esac
expect "DBSIZE after --pipe" "$KEYS" "$(cli DBSIZE)"
expect "GET key:0" "val:0" "$(cli GET key:0)"
expect "GET key:9999" "val:9999" "$(cli GET key:9999)"

# --scan: every key at least once; with --pattern exactly the matching ones.
scan_all=$(cli --scan | sort -u | wc -l)
expect "--scan distinct keys" "$KEYS" "$scan_all"
scan_pattern=$(cli --scan --pattern 'key:1*' | sort -u)
expect "--scan --pattern key:1* count" "1111" "$(printf '%s\n' "$scan_pattern" | wc -l)"
if printf '%s\n' "$scan_pattern" | grep -qv '^key:1'; then
    fail "--scan --pattern key:1* returned a key outside the pattern"
fi

# INFO.
info_server=$(cli INFO server)
case "$info_server" in
*"redis_version:"*) ;;
*) fail "INFO server has no redis_version: $info_server" ;;
esac
info_keyspace=$(cli INFO keyspace)
case "$info_keyspace" in
*"db0:keys=$KEYS,"*) ;;
*) fail "INFO keyspace: want db0:keys=$KEYS, got: $info_keyspace" ;;
esac
# Earlier redis-cli connections may still be closing on the server side.
end=$(($(now_ms) + DEADLINE_S * 1000))
while :; do
    clients=$(cli INFO clients | tr -d '\r' | sed -n 's/^connected_clients://p')
    [ "$clients" = "1" ] || [ "$(now_ms)" -ge "$end" ] && break
    sleep 0.01
done
expect "connected_clients" "1" "$clients"
exit 0
