# shellcheck shell=bash
# tests/integration/lib.bash: helpers the integration scripts (*.sh) share.
# Source it; it only defines functions. (Named .bash so that CMake, which
# makes a test of every tests/integration/*.sh, leaves it alone.)
# A script's node is judged as harness.c judges one: it must still be running
# when the test ends and exit 0 on SIGTERM; anything else fails the test, so a
# crash at shutdown, or a leak that LeakSanitizer reports at exit in the
# sanitizer build, is never a pass. A kernel that refuses io_uring is a skip
# (exit 77), as everywhere else.

# itest_running PID: true while the process runs (an exited child that is
# not yet reaped still answers kill -0, so its state is read too).
itest_running() {
    kill -0 "$1" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]
}

# itest_stop PID [SECONDS]: stops a node started by this script: SIGTERM,
# then up to SECONDS (default 10) for it to exit, then SIGKILL. Returns 0
# when it was running and exited with status 0; otherwise says why on stderr
# and returns 1.
itest_stop() {
    local pid=$1 seconds=${2:-10} status end
    if ! itest_running "$pid"; then
        wait "$pid"
        echo "node (pid $pid) had exited before it was stopped (status $?)" >&2
        return 1
    fi
    kill -TERM "$pid"
    end=$((SECONDS + seconds))
    while itest_running "$pid"; do
        if ((SECONDS >= end)); then
            echo "node (pid $pid) still running ${seconds}s after SIGTERM; SIGKILL" >&2
            kill -KILL "$pid"
            wait "$pid"
            return 1
        fi
        sleep 0.01
    done
    wait "$pid"
    status=$?
    if ((status != 0)); then
        echo "node (pid $pid) exited with status $status after SIGTERM" >&2
        return 1
    fi
    return 0
}

# itest_uring_refused PID LOG: true when the node has exited and its log
# says that the kernel refuses io_uring (the node's start-up check).
itest_uring_refused() {
    ! itest_running "$1" && grep -q "io_uring" "$2"
}

# itest_free_ports N: N distinct loopback ports that were free a moment ago
# for TCP and UDP alike (bound together, then released), one per line. A node
# listens on three or four of them (clients, memcached, admin, cluster: TCP
# and UDP), so scripts name every port rather than let the admin and
# cluster ports default to port + 1000 and port + 10000, which may be taken
# (a port free for TCP only was once another test's gossip port).
itest_free_ports() {
    python3 -c '
import socket, sys
held = []
ports = []
while len(ports) < int(sys.argv[1]):
    t = socket.socket()
    t.bind(("127.0.0.1", 0))
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", t.getsockname()[1]))
    except OSError:
        held.append(t)  # kept until the end: not drawn again
        continue
    held += [t, u]
    ports.append(t.getsockname()[1])
print("\n".join(str(p) for p in ports))' "$1"
}

# itest_node_start THREADS: starts a node ($RINGKV_BIN) on free loopback
# ports with THREADS shards, no memcached port and a scratch data directory;
# sets pid, dir (scratch, removed at exit with the node stopped) and port.
# Does not wait for it to accept: the caller's client retries until then.
itest_node_start() {
    local aport cport
    dir=$(mktemp -d)
    { read -r port; read -r aport; read -r cport; } < <(itest_free_ports 3)
    "${RINGKV_BIN:?RINGKV_BIN is not set}" --port "$port" --admin-port "$aport" \
        --cluster-port "$cport" --memcache-port 0 --threads "$1" --dir "$dir/data" \
        > "$dir/log" 2>&1 &
    pid=$!
    trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
}

# itest_node_finish RC: the script's exit status once its checks returned
# RC: 77 when the node could not start because the kernel refuses io_uring;
# otherwise RC, or 1 when the node does not stop cleanly (its log is shown).
itest_node_finish() {
    local rc=$1
    if ((rc != 0)) && itest_uring_refused "$pid" "$dir/log"; then
        echo "skip: the kernel refuses io_uring here"
        return 77
    fi
    if ! itest_stop "$pid"; then
        echo "FAIL: the node did not stop cleanly; its log:"
        tail -n 40 "$dir/log"
        rc=1
    fi
    pid=""
    return "$rc"
}
