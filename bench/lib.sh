# shellcheck shell=bash
# bench/lib.sh: shell helpers for bench/compare, bench/trust, bench/redis_compare.sh
# and tests/integration/bench_e2e.sh. Source it; it only defines functions.
#
# Servers are started on 127.0.0.1 only, pinned with taskset, and remembered in
# BENCH_PIDS; bench_stop_all (installed as an EXIT trap by bench_trap) stops
# each by PID: SIGTERM, a deadline, then SIGKILL. Waits poll a condition with a
# deadline; none sleeps and hopes.

BENCH_PIDS=()
BENCH_CLK_TCK=$(getconf CLK_TCK)

bench_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
bench_die() { printf '%s: %s\n' "${0##*/}" "$*" >&2; exit 1; }

# bench_need CMD...: dies naming the first command that is not installed.
bench_need() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || bench_die "needs '$c' (not found in PATH)"
    done
}

# The repository root (the folder above bench/).
bench_root() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }

# bench_find_bench_bin: prints the ringkv-bench binary, building it when absent.
# $RINGKV_BENCH_BIN wins; else build/ringkv-bench under the root.
bench_find_bench_bin() {
    local root bin
    root=$(bench_root)
    bin=${RINGKV_BENCH_BIN:-$root/build/ringkv-bench}
    if [[ ! -x $bin && -z ${RINGKV_BENCH_BIN:-} ]]; then
        bench_log "building ringkv-bench in $root/build"
        { cmake -S "$root" -B "$root/build" &&
          cmake --build "$root/build" --target ringkv-bench -j "$(nproc)"; } >&2 ||
            bench_die "could not build ringkv-bench"
    fi
    [[ -x $bin ]] || bench_die "ringkv-bench not found at $bin (set RINGKV_BENCH_BIN)"
    printf '%s\n' "$bin"
}

# bench_port_busy PORT: true when something holds the port on this machine (on
# any address, TCP or UDP: a cluster port needs both).
bench_port_busy() {
    local hex
    hex=$(printf ':%04X ' "$1")
    grep -qi "$hex" /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6 2>/dev/null &&
        return 0
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# bench_free_port [AVOID...]: prints a free port below the ephemeral range.
bench_free_port() {
    local p a tries=0 taken
    while ((tries++ < 500)); do
        p=$((20000 + RANDOM % 12000))
        taken=0
        for a in "$@"; do [[ $a == "$p" ]] && taken=1; done
        ((taken)) && continue
        bench_port_busy "$p" || { printf '%s\n' "$p"; return 0; }
    done
    bench_die "no free port found"
}

# bench_alive PID
bench_alive() { kill -0 "$1" 2>/dev/null; }

# bench_wait_resp PORT PID SECONDS: waits until PING on PORT answers PONG.
bench_wait_resp() {
    local port=$1 pid=$2 deadline=$((SECONDS + $3)) reply
    while ((SECONDS < deadline)); do
        bench_alive "$pid" || return 1
        reply=$(timeout 2 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)
        [[ $reply == PONG ]] && return 0
        sleep 0.05
    done
    return 1
}

# bench_wait_memcache PORT PID SECONDS: waits until "version" on PORT answers.
bench_wait_memcache() {
    local port=$1 pid=$2 deadline=$((SECONDS + $3)) line
    while ((SECONDS < deadline)); do
        bench_alive "$pid" || return 1
        line=$( { exec 3<>"/dev/tcp/127.0.0.1/$port" &&
                  printf 'version\r\n' >&3 && timeout 2 head -n1 <&3; } 2>/dev/null)
        [[ $line == VERSION* ]] && return 0
        sleep 0.05
    done
    return 1
}

# bench_start CPU LOG CMD...: starts CMD pinned to CPU with output to LOG;
# sets BENCH_PID and remembers it for bench_stop_all.
bench_start() {
    local cpu=$1 log=$2
    shift 2
    taskset -c "$cpu" "$@" >"$log" 2>&1 &
    BENCH_PID=$!
    BENCH_PIDS+=("$BENCH_PID")
}

# bench_stop PID: SIGTERM, up to 10 s to exit, then SIGKILL.
bench_stop() {
    local pid=$1 deadline=$((SECONDS + 10))
    bench_alive "$pid" || { wait "$pid" 2>/dev/null; return 0; }
    kill -TERM "$pid" 2>/dev/null
    while bench_alive "$pid" && ((SECONDS < deadline)); do
        # a child that has exited but is not yet reaped still answers kill -0
        [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && break
        sleep 0.05
    done
    bench_alive "$pid" && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

bench_stop_all() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do bench_stop "$pid"; done
    BENCH_PIDS=()
}

bench_trap() { trap 'bench_stop_all' EXIT; trap 'exit 130' INT TERM; }

# Server command lines. ringkv: bench_ringkv_cmd BIN PORT MCPORT THREADS, in
# memory as the redis-server it is compared with (no AOF, no snapshots).
bench_ringkv_cmd() {
    printf '%s\n' "$1" --port "$2" --memcache-port "$3" --threads "$4" --bind 127.0.0.1 \
        --storage memory
    bench_ringkv_ports "$1" "$2" "$3"
}
# bench_ringkv_ports BIN PORT...: for a binary with an admin API and a cluster
# port (after issue 9), flags that turn the API off and give it a free cluster
# port (none of PORT...), so that neither defaults onto a taken port (port +
# 1000, port + 10000); nothing for an older binary. One flag a line.
bench_ringkv_ports() {
    local bin=$1
    shift
    if bench_ringkv_has "$bin" cluster-port; then
        printf '%s\n' --admin-port 0 --cluster-port "$(bench_free_port "$@")"
    fi
}
bench_redis_cmd() {
    printf '%s\n' redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no \
        --protected-mode no --daemonize no
}
# bench_memcached_cmd PORT THREADS MEGABYTES
bench_memcached_cmd() {
    printf '%s\n' memcached -l 127.0.0.1 -p "$1" -U 0 -t "$2" -m "$3"
    [[ $(id -u) == 0 ]] && printf '%s\n' -u root
    return 0
}

# bench_cpu_ticks PID: user+sys clock ticks of all the process's threads so far.
bench_cpu_ticks() {
    local stat rest
    stat=$(<"/proc/$1/stat") || return 1
    rest=${stat##*) } # fields from 3 on; comm may hold spaces
    # shellcheck disable=SC2086 # split into fields on purpose
    set -- $rest
    printf "%s\n" $((${12} + ${13})) # utime (14) + stime (15)
}

# bench_cpu_us_per_req TICKS REQUESTS: microseconds of CPU per request.
bench_cpu_us_per_req() {
    awk -v t="$1" -v n="$2" -v hz="$BENCH_CLK_TCK" \
        'BEGIN { if (n > 0) printf "%.3f\n", t / hz * 1e6 / n; else print "nan" }'
}

# bench_cpu_stat: "STEAL TOTAL" clock ticks of all CPUs so far (from /proc/stat), so
# that two readings give the share of the machine the hypervisor took in between.
bench_cpu_stat() {
    awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print $9, t; exit }' /proc/stat
}

# bench_steal_pct BEFORE_STEAL BEFORE_TOTAL AFTER_STEAL AFTER_TOTAL: steal in percent.
bench_steal_pct() {
    awk -v s0="$1" -v t0="$2" -v s1="$3" -v t1="$4" \
        'BEGIN { if (t1 > t0) printf "%.1f\n", (s1 - s0) * 100 / (t1 - t0); else print "nan" }'
}

# bench_rss_kb PID: resident set size in KiB.
bench_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# bench_timed FILE CMD...: runs CMD; writes "user_s sys_s" of CMD and its children
# to FILE (from the shell's times builtin); returns CMD's status.
bench_timed() {
    local file=$1
    shift
    (
        "$@"
        rc=$?
        times >"$file.raw" # not in a pipeline: a forked times would see no children
        awk 'NR == 2 {
            for (i = 1; i <= 2; i++) {
                split($i, p, "m"); sub("s", "", p[2]); t[i] = p[1] * 60 + p[2]
            }
            printf "%.3f %.3f\n", t[1], t[2] }' "$file.raw" >"$file"
        rm -f "$file.raw"
        exit $rc
    )
}

# bench_keep_json SRC DST: keeps a ringkv-bench JSON report for the record; unless
# KEEP_HISTOGRAMS=1 its per-slot histograms (hundreds of KiB a run) are left out.
bench_keep_json() {
    if [[ ${KEEP_HISTOGRAMS:-0} == 1 ]]; then
        cp "$1" "$2"
    else
        jq 'walk(if type == "object" then del(.Histogram) else . end)' "$1" >"$2"
    fi
}

# bench_median: median of the numbers on stdin, one per line ("nan" if none).
bench_median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# bench_ratio A B: A / B to 2 decimals, "n/a" when either is missing.
bench_ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "" || b == "" || a == "nan" || b == "nan" || b + 0 == 0) print "n/a";
        else printf "%.2f\n", a / b }'
}

# bench_cpus: "SERVER_CPU CLIENT_CPU", defaulting to 0 and 1 (0 and 0 on one CPU).
bench_cpus() {
    local n
    n=$(nproc)
    local s=${SERVER_CPU:-0} c=${CLIENT_CPU:-1}
    if ((n < 2)) && [[ -z ${CLIENT_CPU:-} ]]; then
        bench_log "only one CPU: server and generator share it"
        c=0
    fi
    printf '%s %s\n' "$s" "$c"
}

# redis_version: redis-server's version number.
redis_version() { redis-server --version | awk '{ print $3 }' | tr -d 'v='; }

# bench_machine: one line naming the machine, for reports.
bench_machine() {
    local model
    model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    printf '%s, %s CPUs, %s, kernel %s\n' "${model:-unknown CPU}" "$(nproc)" \
        "$(awk '/^MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo)" "$(uname -r)"
}

# Redis Cluster on 127.0.0.1, for tests/integration/bench_cluster.sh and
# bench/cluster_bench.sh. bench_redis_cluster_ports N: N free ports whose
# cluster bus ports (port + 10000) are free too and below the ephemeral range
# (where the kernel picks the ports tests bind to port 0 get), one a line.
bench_redis_cluster_ports() {
    local ports=() p ephemeral
    read -r ephemeral _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || ephemeral=32768
    ((ephemeral > 30100)) || ephemeral=65536 # too low to stay below: no such guard
    while ((${#ports[@]} < $1)); do
        p=$(bench_free_port "${ports[@]}")
        ((p + 10000 < ephemeral)) || continue
        bench_port_busy $((p + 10000)) || ports+=("$p")
    done
    printf '%s\n' "${ports[@]}"
}

# bench_redis_cluster_wait_ok SECONDS PORT...: every node says cluster_state:ok
# and all list the same CLUSTER SLOTS.
bench_redis_cluster_wait_ok() {
    local deadline=$((SECONDS + $1)) p ok first map
    shift
    while ((SECONDS < deadline)); do
        ok=1 first=
        for p in "$@"; do
            timeout 5 redis-cli -h 127.0.0.1 -p "$p" cluster info 2>/dev/null |
                grep -q '^cluster_state:ok' || ok=0
            map=$(timeout 5 redis-cli -h 127.0.0.1 -p "$p" cluster slots 2>/dev/null | paste -sd' ')
            [[ -z $first ]] && first=$map
            [[ $map == "$first" ]] || ok=0
        done
        ((ok)) && return 0
        sleep 0.1
    done
    return 1
}

# bench_redis_cluster_start DIR CPU PORT...: one master per PORT (redis-server
# pinned to CPU, in memory, data and logs under DIR/PORT), joined with
# redis-cli --cluster create; waits for cluster_state:ok. PIDs go to BENCH_PIDS.
bench_redis_cluster_start() {
    local dir=$1 cpu=$2
    shift 2
    bench_redis_cluster_create "$dir" "$cpu" 0 memory "$@"
}

# bench_redis_persist_flags DURABILITY: redis-server's flags, one a line, for
# "memory" (no AOF, no snapshots: ringkv's storage = memory) or "log" (AOF with
# appendfsync everysec and no snapshots: ringkv's default storage = log).
bench_redis_persist_flags() {
    case $1 in
    memory) printf '%s
' --save '' --appendonly no ;;
    log) printf '%s\n' --save '' --appendonly yes --appendfsync everysec ;;
    *) bench_die "durability '$1': memory or log" ;;
    esac
}

# bench_redis_cluster_create DIR CPU REPLICAS DURABILITY PORT...: redis-server
# on each PORT (pinned to CPU, data and logs under DIR/PORT), joined with
# redis-cli --cluster create --cluster-replicas REPLICAS (PORT count / (REPLICAS
# + 1) masters); waits for cluster_state:ok, the same masters' slot map on every
# node and every replica in sync. PIDs go to BENCH_PIDS.
bench_redis_cluster_create() {
    local dir=$1 cpu=$2 replicas=$3 durability=$4 p persist
    shift 4
    mapfile -t persist < <(bench_redis_persist_flags "$durability")
    for p in "$@"; do
        mkdir -p "$dir/$p"
        bench_start "$cpu" "$dir/$p/log" redis-server --port "$p" --bind 127.0.0.1 \
            --cluster-enabled yes --cluster-config-file "$dir/$p/nodes.conf" --dir "$dir/$p" \
            "${persist[@]}" --protected-mode no --daemonize no
        bench_wait_resp "$p" "$BENCH_PID" 20 || bench_die "redis-server on port $p did not come up"
    done
    timeout 60 redis-cli --cluster create "${@/#/127.0.0.1:}" --cluster-replicas "$replicas" \
        --cluster-yes >"$dir/create.log" 2>&1 ||
        bench_die "redis-cli --cluster create failed: $(tail -n 3 "$dir/create.log")"
    bench_redis_cluster_wait_ok 60 "$@" || bench_die "the cluster did not reach cluster_state:ok in 60 s"
    ((replicas == 0)) || bench_redis_replicas_wait 60 "$@" ||
        bench_die "the replicas were not in sync within 60 s"
}

# bench_redis_replicas_wait SECONDS PORT...: every replica among PORT... has its
# link to its master up and no sync in progress.
bench_redis_replicas_wait() {
    local deadline=$((SECONDS + $1)) p info ok
    shift
    while ((SECONDS < deadline)); do
        ok=1
        for p in "$@"; do
            info=$(timeout 5 redis-cli -h 127.0.0.1 -p "$p" info replication 2>/dev/null | tr -d '\r')
            grep -q '^role:' <<<"$info" || ok=0
            grep -q '^role:slave' <<<"$info" || continue
            grep -q '^master_link_status:up' <<<"$info" &&
                grep -q '^master_sync_in_progress:0' <<<"$info" || ok=0
        done
        ((ok)) && return 0
        sleep 0.1
    done
    return 1
}

# ringkv clusters on 127.0.0.1, for bench/cluster_compare.sh and
# bench/replication_cost.sh: nodes on one address with ports of their own,
# started with the flags tests/cluster/cluster_harness.c gives its nodes.

# bench_ringkv_has BIN SETTING: true when the binary knows the setting.
# (grep reads it all: -q would stop early, and under pipefail the SIGPIPE that
# ringkv then gets made a setting it has read as missing)
bench_ringkv_has() { "$1" --settings-markdown 2>/dev/null | grep "^| \`$2\`" >/dev/null; }

# bench_ringkv_cluster_start DIR CPU BIN NODES THREADS DURABILITY N R W: NODES
# ringkv processes on 127.0.0.1 (pinned to CPU, THREADS shards each, storage
# memory or log, data and logs under DIR/nI), the others seeded at the first;
# `replicas` N, `read-quorum` R and `write-quorum` W where BIN has those
# settings (BENCH_RINGKV_NOTE says so where it does not). The admin API is off.
# Sets BENCH_RINGKV_PIDS and BENCH_RINGKV_PORTS (client ports), all in
# BENCH_PIDS too; waits (60 s) until every node sees the same ring of NODES up.
# shellcheck disable=SC2034 # BENCH_RINGKV_NOTE is the caller's to read
bench_ringkv_cluster_start() {
    local dir=$1 cpu=$2 bin=$3 nodes=$4 threads=$5 storage=$6 n=$7 r=$8 w=$9 i port cport
    local seed_flags=() quorum=() taken=()
    BENCH_RINGKV_PIDS=() BENCH_RINGKV_PORTS=() BENCH_RINGKV_NOTE=
    if bench_ringkv_has "$bin" replicas; then
        quorum=(--replicas "$n" --read-quorum "$r" --write-quorum "$w")
    else
        BENCH_RINGKV_NOTE="this ringkv has no replicas/read-quorum/write-quorum settings (N=$n R=$r W=$w not applied)"
    fi
    for ((i = 0; i < nodes; i++)); do
        port=$(bench_free_port "${taken[@]}")
        cport=$(bench_free_port "${taken[@]}" "$port")
        taken+=("$port" "$cport")
        mkdir -p "$dir/n$i"
        bench_start "$cpu" "$dir/n$i.log" "$bin" --bind 127.0.0.1 --port "$port" \
            --memcache-port 0 --threads "$threads" --cpu-affinity no --storage "$storage" \
            --dir "$dir/n$i" --admin-port 0 --cluster-port "$cport" "${seed_flags[@]}" "${quorum[@]}" \
            "${BENCH_RINGKV_EXTRA[@]}"
        bench_wait_resp "$port" "$BENCH_PID" 20 ||
            bench_die "ringkv node $i did not come up: $(tail -n 2 "$dir/n$i.log")"
        BENCH_RINGKV_PIDS+=("$BENCH_PID")
        BENCH_RINGKV_PORTS+=("$port")
        ((i > 0)) || seed_flags=(--seeds "127.0.0.1:$cport")
    done
    bench_ringkv_cluster_wait 60 "$nodes" "${BENCH_RINGKV_PORTS[@]}" ||
        bench_die "the $nodes ringkv nodes did not agree on one ring within 60 s"
}

# bench_ringkv_cluster_wait SECONDS NODES PORT...: every node's CLUSTER INFO says
# cluster_state:ok with NODES known and up and the same ring hash; where one
# answers CLUSTER SLOTS, all answer the same map (its ranges in slot order:
# each node lists its own first).
bench_ringkv_cluster_wait() {
    local deadline=$((SECONDS + $1)) nodes=$2 p ok info hash first_hash first_map map
    shift 2
    while ((SECONDS < deadline)); do
        ok=1 first_hash='' first_map=''
        for p in "$@"; do
            info=$(timeout 5 redis-cli -h 127.0.0.1 -p "$p" cluster info 2>/dev/null | tr -d '\r')
            grep -qx 'cluster_state:ok' <<<"$info" &&
                grep -qx "cluster_known_nodes:$nodes" <<<"$info" &&
                grep -qx "ringkv_nodes_up:$nodes" <<<"$info" || ok=0
            hash=$(sed -n 's/^ringkv_ring_hash://p' <<<"$info")
            [[ -n $first_hash ]] || first_hash=$hash
            [[ -n $hash && $hash == "$first_hash" ]] || ok=0
            map=$(bench_cluster_slots "$p")
            [[ -n $first_map ]] || first_map=$map
            [[ $map == "$first_map" ]] || ok=0
        done
        ((ok)) && return 0
        sleep 0.1
    done
    return 1
}

# bench_cluster_slots PORT: the CLUSTER SLOTS reply as JSON on one line, its
# ranges in slot order (each ringkv node lists its own first), or nothing
# where the server does not answer it (an error reply).
bench_cluster_slots() {
    timeout 5 redis-cli -h 127.0.0.1 -p "$1" --json cluster slots 2>/dev/null |
        jq -c 'if type == "array" then sort_by(.[0]) else empty end' 2>/dev/null
    return 0
}

# bench_cpu_ticks_sum PID...: user+sys clock ticks of all these processes so far.
bench_cpu_ticks_sum() {
    local pid t sum=0
    for pid in "$@"; do
        t=$(bench_cpu_ticks "$pid") || return 1
        sum=$((sum + t))
    done
    printf '%s\n' "$sum"
}

# bench_cluster_init NAME KEYS QUICK_KEYS RUN_LIMIT_S ARG...: the start of
# bench/cluster_compare.sh and bench/replication_cost.sh (NAME). Reads the
# options ARG...: --quick, --rounds N, --requests N (pipeline 1), --requests-p16
# N, --clients N, --keys N, --durability memory|log, --help (prints the
# script's header comment), over the environment's ROUNDS, REQUESTS_P1, ...;
# defaults 3 rounds, 200000 / 1000000 requests, 50 clients, KEYS keys, memory,
# and with --quick 1 round, 20000 / 100000, 10 clients, QUICK_KEYS keys,
# results under bench/results/tmp/quick. Checks the tools and binaries and sets
# BENCH, SCPU, CCPU, RINGKV_BIN, RESULTS_DIR, RUN_LIMIT_S, WORK (a scratch
# folder removed on exit, when every server is stopped too), RUNS (the runs'
# TSV, header written), NOTES=() and FAILED=0.
# shellcheck disable=SC2034 # the caller reads them
bench_cluster_init() {
    local name=$1 keys=$2 quick_keys=$3 limit=$4 root v
    shift 4
    while (($#)); do
        case $1 in
        --quick) QUICK=1 ;;
        --rounds) ROUNDS=${2:?--rounds N}; shift ;;
        --requests) REQUESTS_P1=${2:?--requests N}; shift ;;
        --requests-p16) REQUESTS_P16=${2:?--requests-p16 N}; shift ;;
        --clients) CLIENTS=${2:?--clients N}; shift ;;
        --keys) KEYS=${2:?--keys N}; shift ;;
        --durability) DURABILITY=${2:?--durability memory|log}; shift ;;
        -h | --help) sed -n '2,/^set /{/^set /d; s/^# \{0,1\}//; p}' "$0"; exit 0 ;;
        *) bench_die "unknown option '$1' (--help lists them)" ;;
        esac
        shift
    done
    root=$(bench_root)
    if [[ ${QUICK:-0} == 1 ]]; then
        ROUNDS=${ROUNDS:-1} REQUESTS_P1=${REQUESTS_P1:-20000} REQUESTS_P16=${REQUESTS_P16:-100000}
        CLIENTS=${CLIENTS:-10} KEYS=${KEYS:-$quick_keys}
        RESULTS_DIR=${RESULTS_DIR:-$root/bench/results/tmp/quick}
    fi
    ROUNDS=${ROUNDS:-3} REQUESTS_P1=${REQUESTS_P1:-200000} REQUESTS_P16=${REQUESTS_P16:-1000000}
    CLIENTS=${CLIENTS:-50} KEYS=${KEYS:-$keys} DURABILITY=${DURABILITY:-memory}
    RUN_LIMIT_S=${RUN_LIMIT_S:-$limit}
    RESULTS_DIR=${RESULTS_DIR:-$root/bench/results}
    RINGKV_BIN=${RINGKV_BIN:-$root/build/ringkv}
    for v in ROUNDS REQUESTS_P1 REQUESTS_P16 CLIENTS KEYS RUN_LIMIT_S; do
        [[ ${!v} =~ ^[1-9][0-9]*$ ]] || bench_die "$v must be a positive number, not '${!v}'"
    done
    ((KEYS >= 100)) || bench_die "--keys must be at least 100"
    bench_redis_persist_flags "$DURABILITY" >/dev/null
    bench_need jq taskset redis-cli awk
    [[ -x $RINGKV_BIN ]] || bench_die "no ringkv binary at $RINGKV_BIN (build it, or set RINGKV_BIN)"
    BENCH=$(bench_find_bench_bin) || exit 1
    read -r SCPU CCPU < <(bench_cpus)
    mkdir -p "$RESULTS_DIR" || bench_die "cannot create $RESULTS_DIR"
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX") || bench_die "no scratch folder"
    trap 'bench_stop_all; rm -rf "$WORK"' EXIT
    trap 'exit 130' INT TERM
    RUNS=$RESULTS_DIR/$name-runs.tsv
    printf 'name\tround\top\tpipeline\trequests\tops\tp99_ms\treplies\terrors\tmoved\tcpu_us_per_req\n' \
        >"$RUNS"
    NOTES=() FAILED=0
}

# bench_cluster_rounds A B: ROUNDS rounds, each running for A and then B (B
# first in even rounds) SET alone and GET alone at pipeline 1 (REQUESTS_P1)
# and 16 (REQUESTS_P16) with bench_cluster_run, through the port PORT[X] in
# mode MODE[X], the CPU summed over PIDS[X] (assoc arrays of the caller); a
# row per run in RUNS (columns 1-5: name, round, op, pipeline, requests; then
# bench_cluster_run's six). A run without a result sets FAILED=1.
# shellcheck disable=SC2034,SC2153 # FAILED is the caller's; MODE, PORT, PIDS too
bench_cluster_rounds() {
    local round x pipe op n res order
    for ((round = 1; round <= ROUNDS; round++)); do
        order=("$1" "$2")
        ((round % 2)) || order=("$2" "$1")
        for x in "${order[@]}"; do
            for pipe in 1 16; do
                for op in set get; do
                    n=$REQUESTS_P16
                    ((pipe == 1)) && n=$REQUESTS_P1
                    # shellcheck disable=SC2086 # PIDS holds a list
                    if ! res=$(bench_cluster_run "$WORK/run.json" "${MODE[$x]}" "${PORT[$x]}" \
                        "$op" "$pipe" "$n" ${PIDS[$x]}); then
                        bench_log "$x ${op^^} P$pipe #$round: no result" \
                            "($(tail -n 1 "$WORK/run.json.out" 2>/dev/null))"
                        FAILED=1
                        continue
                    fi
                    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$x" "$round" "$op" "$pipe" "$n" "$res" >>"$RUNS"
                    bench_log "$x ${op^^} P$pipe #$round: ops/s p99_ms replies errors moved us/req:" \
                        "$(tr '\t' ' ' <<<"$res")"
                done
            done
        done
    done
}

# bench_cluster_check X...: a note (NOTES) and FAILED=1 for each process of
# PIDS[X] that is gone, and for X's runs that got error replies (RUNS column 9).
# shellcheck disable=SC2034 # FAILED is the caller's
bench_cluster_check() {
    local x pid errors
    for x in "$@"; do
        for pid in ${PIDS[$x]}; do
            bench_alive "$pid" && continue
            NOTES+=("$x: server process $pid exited during the run.")
            FAILED=1
        done
        errors=$(bench_runs_total "$RUNS" "$x" 9)
        ((errors == 0)) && continue
        NOTES+=("$x: $errors error replies or lost connections (see the runs' TSV).")
        FAILED=1
    done
}

# bench_runs_total RUNS NAME COL: the sum of column COL over NAME's rows.
bench_runs_total() {
    awk -F'\t' -v s="$2" -v k="$3" 'NR > 1 && $1 == s { t += $k } END { print t + 0 }' "$1"
}

# bench_cluster_run JSON MODE PORT OP PIPELINE REQUESTS PID...: one ringkv-bench
# run pinned to $CCPU: OP (set or get) alone, 32-byte values, keys uniform over
# 0 .. $KEYS - 1, 1 thread x $CLIENTS connections, about REQUESTS in all, cut at
# $RUN_LIMIT_S seconds; MODE cluster (--cluster-mode, seeded at PORT) or plain
# (every request to PORT). Its report goes to JSON. Prints "ops/s p99_ms replies
# errors moved cpu_us_per_req", tab-separated, the CPU being user+sys of all of
# PID... over the run per reply; fails when the run left no report.
# GENERATOR=memtier runs memtier_benchmark instead ($MEMTIER_BIN, else the
# one on the PATH), with the same flags but --test-time (the timeout bounds
# it): its requests stand for the replies, its connection errors for the
# errors; it counts no MOVED (0 is printed).
bench_cluster_run() {
    local json=$1 mode=$2 port=$3 op=$4 pipe=$5 n=$6 t0 t1 ratio=1:0 cm=() gen=$BENCH
    local own=(--test-time "$RUN_LIMIT_S" --hide-progress)
    shift 6
    [[ $op == get ]] && ratio=0:1
    [[ $mode == cluster ]] && cm=(--cluster-mode)
    if [[ ${GENERATOR:-ringkv-bench} == memtier ]]; then # it takes -n or --test-time, not both
        gen=${MEMTIER_BIN:-$(command -v memtier_benchmark)} || return 1
        own=()
    fi
    rm -f "$json"
    t0=$(bench_cpu_ticks_sum "$@") || return 1
    timeout $((RUN_LIMIT_S + 30)) taskset -c "$CCPU" "$gen" "${cm[@]}" -s 127.0.0.1 -p "$port" \
        -t 1 -c "$CLIENTS" --pipeline "$pipe" -n $(((n + CLIENTS - 1) / CLIENTS)) \
        --ratio "$ratio" -d 32 --key-maximum $((KEYS - 1)) --distinct-client-seed \
        --hide-histogram "${own[@]}" --json-out-file "$json" >"$json.out" 2>&1
    t1=$(bench_cpu_ticks_sum "$@") || return 1
    [[ -s $json ]] || return 1
    jq -r --argjson ticks $((t1 - t0)) --argjson hz "$BENCH_CLK_TCK" '
        .["ALL STATS"].Totals as $t |
        (.counts // {replies: $t.Count, errors: ($t["Connection Errors"] // 0),
                     connection_errors: 0, moved: 0}) as $c |
        [($t["Ops/sec"] | round), ($t["Percentile Latencies"]["p99.00"] * 1000 | round) / 1000,
         $c.replies,
         $c.errors + $c.connection_errors, $c.moved,
         (if $c.replies > 0 then ($ticks / $hz * 1e9 / $c.replies | round) / 1000 else "nan" end)]
        | @tsv' "$json"
}

# bench_cluster_preload JSON MODE PORT [FIRST LAST]: sets every key FIRST ..
# LAST (0 .. $KEYS - 1) once (32-byte values, pipelined), so that GETs hit. On
# failure (error replies included) adds a note naming ringkv-bench's last
# words to NOTES, sets FAILED=1 and returns 1.
# shellcheck disable=SC2034 # FAILED is the caller's
bench_cluster_preload() {
    local cm=() first=${4:-0} last=${5:-$((KEYS - 1))}
    [[ $2 == cluster ]] && cm=(--cluster-mode)
    timeout $((RUN_LIMIT_S + 30)) taskset -c "$CCPU" "$BENCH" "${cm[@]}" -s 127.0.0.1 -p "$3" \
        -t 1 -c 50 --pipeline 32 --ratio 1:0 --key-pattern P:P -n allkeys --key-minimum "$first" \
        --key-maximum "$last" -d 32 --test-time "$RUN_LIMIT_S" --hide-histogram \
        --hide-progress --json-out-file "$1" >"$1.out" 2>&1 && return 0
    NOTES+=("loading keys $first to $last through port $3 failed: $(tail -n 1 "$1.out")")
    bench_log "${NOTES[-1]}"
    FAILED=1
    return 1
}

# bench_verdict RATIO LIMIT: "met" when RATIO <= LIMIT, else "**not met**" ("n/a"
# without a ratio).
bench_verdict() {
    awk -v r="$1" -v l="$2" 'BEGIN { if (r == "n/a") print "n/a"; else if (r + 0 <= l + 0) print "met"
        else print "**not met**" }'
}

# bench_runs_median RUNS NAME OPCOL OP PIPECOL PIPELINE COL: the median of
# column COL over the rows of the tab-separated RUNS (header line skipped) whose
# first column is NAME, column OPCOL is OP and column PIPECOL is PIPELINE.
bench_runs_median() {
    awk -F'\t' -v s="$2" -v co="$3" -v o="$4" -v cp="$5" -v p="$6" -v k="$7" \
        'NR > 1 && $1 == s && $co == o && $cp == p { print $k }' "$1" | bench_median
}

# bench_ab_table RUNS A B LABEL_A LABEL_B OPS COLS: a markdown table of A
# against B (values of the first column of the tab-separated RUNS, header line
# skipped), medians over their runs: a row per op of OPS ("get set") and
# pipeline 1 and 16; COLS "OP PIPELINE OPS P99 CPU" are the 1-based columns of
# those fields in RUNS. Ratios are A / B; the CPU one, in bold, is the figure
# that counts.
bench_ab_table() {
    local runs=$1 a=$2 b=$3 la=$4 lb=$5 ops=$6 op pipe ao bo ac bc
    local -a col
    read -ra col <<<"$7"
    # med NAME OP PIPELINE FIELD(2 ops, 3 p99, 4 cpu)
    med() { bench_runs_median "$runs" "$1" "${col[0]}" "$2" "${col[1]}" "$3" "${col[$4]}"; }
    echo "| test | pipeline | $la ops/s | $lb ops/s | ops $la/$lb | $la p99 ms |" \
         "$lb p99 ms | $la CPU us/req | $lb CPU us/req | **CPU/req $la/$lb** |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for op in $ops; do
        for pipe in 1 16; do
            ao=$(med "$a" "$op" "$pipe" 2)
            bo=$(med "$b" "$op" "$pipe" 2)
            ac=$(med "$a" "$op" "$pipe" 4)
            bc=$(med "$b" "$op" "$pipe" 4)
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | **%s** |\n' "${op^^}" "$pipe" \
                "$ao" "$bo" "$(bench_ratio "$ao" "$bo")" "$(med "$a" "$op" "$pipe" 3)" \
                "$(med "$b" "$op" "$pipe" 3)" "$ac" "$bc" "$(bench_ratio "$ac" "$bc")"
        done
    done
}
