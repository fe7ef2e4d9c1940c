#!/usr/bin/env bash
# The bitmap commands (SETBIT GETBIT BITCOUNT BITPOS BITFIELD BITFIELD_RO
# BITOP), SUBSTR and LCS against
# redis-server, side by side: the same random commands (fixed seeds; every
# range form, BYTE and BIT, INT64 extremes, bad integers, units and bits,
# missing and empty keys, values of 0 to 40 bytes, whole all-zero and
# all-one words) go to a ringkv node and to redis-server, and every reply
# must be the same, errors included. The node must then exit 0 on SIGTERM
# (itest_stop). Skips (77) without redis-server or python3-redis, or when
# the kernel refuses io_uring.
set -u
# shellcheck source=lib.bash
source "$(dirname "$0")/lib.bash"
bin=${RINGKV_BIN:?RINGKV_BIN is not set}
py=/usr/bin/python3
command -v redis-server > /dev/null || { echo "skip: redis-server is not installed"; exit 77; }
# the replies compared are Redis 7.0's (6.x has no BIT unit; 7.2 checks some
# arguments before it looks the key up)
redis-server --version | grep -q ' v=7\.0\.' || { echo "skip: needs redis-server 7.0"; exit 77; }
"$py" -c 'import redis' 2>/dev/null || { echo "skip: python3-redis is not installed"; exit 77; }
dir=$(mktemp -d)
{ read -r port; read -r aport; read -r cport; } < <(itest_free_ports 3)
"$bin" --port "$port" --admin-port "$aport" --cluster-port "$cport" --memcache-port 0 --threads 2 \
    --dir "$dir/data" > "$dir/log" 2>&1 &
pid=$!
rpid=
trap 'kill "$pid" $rpid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
# redis-server on a port free a moment ago, until one answers PING (under
# CI's parallel tests another process once took the port first: it never
# answered); each try waits up to 10 s, or until that server exits
for _ in 1 2 3 4 5; do
    rport=$(itest_free_ports 1)
    redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
        > "$dir/redis.log" 2>&1 &
    rpid=$!
    for _ in $(seq 100); do
        [[ $(redis-cli -p "$rport" ping 2>/dev/null) == PONG ]] && break 2
        kill -0 "$rpid" 2>/dev/null || break
        sleep 0.1
    done
    echo "redis-server on port $rport did not answer; its log:"
    tail -n 5 "$dir/redis.log"
    kill "$rpid" 2>/dev/null
    wait "$rpid" 2>/dev/null
    rpid=
done
[[ -n $rpid ]] || { echo "FAIL: no redis-server answered"; exit 1; }
"$py" - "$port" "$rport" <<'PY'
import random, sys, time
import redis

def connect(port):
    deadline = time.time() + 10
    while True:
        try:
            r = redis.Redis(host="127.0.0.1", port=port)
            r.ping()
            return r
        except redis.ConnectionError:
            if time.time() > deadline:
                raise
            time.sleep(0.02)

ours, theirs = connect(int(sys.argv[1])), connect(int(sys.argv[2]))

def reply(r, args):
    try:
        return r.execute_command(*args)
    except redis.ResponseError as e:
        return "error: %s" % e

cases = differ = 0
def same(*args):
    global cases, differ
    cases += 1
    a, b = reply(ours, args), reply(theirs, args)
    if a != b:
        differ += 1
        if differ <= 20:
            print("differs: %r: ringkv %r, redis %r" % (args, a, b))

nums = ["0", "1", "-1", "2", "7", "8", "9", "-8", "-9", "15", "16", "100", "-100", "-200",
        "x", "3.5", "", "+1", "01", "9223372036854775807", "-9223372036854775808",
        "4294967295", "4294967296", "34359738367", "34359738368"]
for seed in (1, 2):
    rnd = random.Random(seed)
    values = [b"", b"\x00", b"\xff", b"\xff\xf0\x00", b"foobar", b"\x00\x00\x00\x01\x00",
              b"\xff" * 20 + b"\x7f", b"\x00" * 17 + b"\x80", b"\xff" * 24,
              bytes(rnd.randrange(256) for _ in range(40))]
    for v in values:
        for r in (ours, theirs):
            r.set("k", v)
        for _ in range(400):
            key = rnd.choice(["k", "k", "k", "missing"])
            kind = rnd.randrange(4)
            if kind == 0:
                args = ["BITCOUNT", key] + [rnd.choice(nums) for _ in range(rnd.choice([0, 1, 2, 2, 2]))]
                if len(args) == 4 and rnd.random() < 0.5:
                    args.append(rnd.choice(["BIT", "byte", "Bit", "bits"]))
            elif kind == 1:
                args = ["BITPOS", key, rnd.choice(["0", "1", "1", "0", "2", "x"])]
                args += [rnd.choice(nums) for _ in range(rnd.choice([0, 1, 2, 2]))]
                if len(args) == 5 and rnd.random() < 0.5:
                    args.append(rnd.choice(["BIT", "byte", "x"]))
                if rnd.random() < 0.03:
                    args += ["bit", "extra"]
            elif kind == 2:
                args = ["GETBIT", key, rnd.choice(nums + [str(rnd.randrange(400))] * 5)]
            else:
                args = ["SUBSTR", key, rnd.choice(nums), rnd.choice(nums)]
            same(*args)
        for _ in range(60):
            same("SETBIT", "k", rnd.choice(nums[:12] + [str(rnd.randrange(300))] * 8),
                 rnd.choice(["0", "1", "1", "0", "2", "-1", "x"]))
            same("GET", "k")
# BITFIELD and BITFIELD_RO: random fields of every width and kind, near
# the extremes (wrap, saturate, fail), offsets as bits and as #fields, bad
# types, offsets, values and subcommands; writes kept to small offsets (a
# write grows the value to its last bit)
types = ["i1", "i2", "i5", "i8", "i16", "i31", "i32", "i33", "i63", "i64", "u1", "u2", "u7",
         "u8", "u15", "u16", "u32", "u62", "u63"]
bad_types = ["u64", "i65", "i0", "u0", "I8", "U8", "8", "i", "i-1", "x8", "i+8", "i08", ""]
extremes = ["0", "1", "-1", "127", "128", "-128", "-129", "255", "256", "32767", "-32768",
            "65535", "2147483647", "-2147483648", "4294967295", "9223372036854775807",
            "-9223372036854775808", "4611686018427387903", "-4611686018427387904"]
def bf_offset(rnd, write):
    if rnd.random() < 0.25:
        return "#%d" % rnd.randrange(0 if write else -1, 6 if write else 40)
    if not write and rnd.random() < 0.1:
        return rnd.choice(["4294967295", "4294967296", "-1", "x", "#x", "#", "1.5", "99999999999999"])
    return str(rnd.randrange(0, 80 if write else 400))
def bf_field(rnd, write):
    t = rnd.choice(bad_types) if rnd.random() < 0.04 else rnd.choice(types)
    return [t, bf_offset(rnd, write)]
def bf_args(rnd, ro):
    args = ["BITFIELD_RO" if ro else "BITFIELD", rnd.choice(["b", "b", "b", "bmissing"])]
    for _ in range(rnd.choice([0, 1, 1, 2, 3, 5])):
        r = rnd.random()
        if r < 0.35:
            args += [rnd.choice(["GET", "get", "Get"])] + bf_field(rnd, False)
        elif r < 0.6 and not (ro and rnd.random() < 0.8):
            args += [rnd.choice(["SET", "set"])] + bf_field(rnd, True)
            args.append(rnd.choice(extremes + nums[:14] + [str(rnd.randrange(-1000, 1000))]))
        elif r < 0.85 and not (ro and rnd.random() < 0.8):
            args += [rnd.choice(["INCRBY", "incrby"])] + bf_field(rnd, True)
            args.append(rnd.choice(extremes + nums[:14] + [str(rnd.randrange(-300, 300))]))
        elif r < 0.97:
            args += ["OVERFLOW", rnd.choice(["WRAP", "sat", "FAIL", "fail", "Wrap", "bad"])]
        else:
            args += rnd.choice([["GET"], ["GET", "u8"], ["SET", "u8", "0"], ["FOO", "u8", "0"],
                                ["OVERFLOW"], ["INCRBY", "i8", "0"]])
    return args
for seed in (3, 4, 5):
    rnd = random.Random(seed)
    for v in (None, b"", b"\x80", b"\xff" * 9, b"\x7f\xff\xff\xff\x00\x01",
              bytes(rnd.randrange(256) for _ in range(12))):
        for r in (ours, theirs):
            r.delete("b")
            if v is not None:
                r.set("b", v)
        for _ in range(250):
            same(*bf_args(rnd, rnd.random() < 0.2))
            if rnd.random() < 0.2:
                same("GET", "b")
        same("GET", "b")
        same("EXISTS", "bmissing")
# BITOP: random sources of the one hash slot (missing, empty, different
# lengths, the destination among them), every operation, bad ones; then
# what the destination holds, and that its expiry went
for seed in (6, 7):
    rnd = random.Random(seed)
    names = ["{o}a", "{o}b", "{o}c", "{o}d", "{o}none"]
    for _ in range(300):
        for name in names[:4]:
            if rnd.random() < 0.3:
                v = bytes(rnd.randrange(256) for _ in range(rnd.choice([0, 1, 3, 8, 17])))
                for r in (ours, theirs):
                    r.set(name, v)
        op = rnd.choice(["AND", "or", "XOR", "Not", "NOT", "and", "nand"])
        srcs = [rnd.choice(names) for _ in range(rnd.choice([1, 1, 2, 3, 4]))]
        dst = rnd.choice(["{o}dst", "{o}dst", "{o}a"])
        if rnd.random() < 0.2:
            for r in (ours, theirs):
                r.set("{o}dst", "x", ex=100)
        same("BITOP", op, dst, *srcs)
        same("GET", dst)
        same("TTL", dst)
# LCS: random strings over small alphabets (long common runs, ties in
# the walk back), missing and empty keys, every option, MINMATCHLEN
# edge values, bad options and combinations; RESP3 for a few (IDX is a map)
lcs_opts = [[], ["LEN"], ["len"], ["IDX"], ["idx", "WITHMATCHLEN"], ["IDX", "MINMATCHLEN", "2"],
            ["IDX", "MINMATCHLEN", "0", "WITHMATCHLEN"], ["IDX", "minmatchlen", "-3"],
            ["IDX", "MINMATCHLEN", "4", "withmatchlen"], ["WITHMATCHLEN"], ["MINMATCHLEN", "1"],
            ["LEN", "IDX"], ["IDX", "LEN"], ["IDX", "MINMATCHLEN"], ["IDX", "MINMATCHLEN", "x"],
            ["IDX", "MINMATCHLEN", "9223372036854775808"], ["foo"], ["IDX", "IDX"], ["LEN", "LEN"]]
for seed in (8, 9):
    rnd = random.Random(seed)
    for _ in range(600):
        for name in ("{l}a", "{l}b"):
            if rnd.random() < 0.1:
                for r in (ours, theirs):
                    r.delete(name)
            else:
                alpha = rnd.choice([b"ab", b"abc", b"ACGT", bytes(range(256))])
                v = bytes(rnd.choice(alpha) for _ in range(rnd.choice([0, 1, 2, 5, 12, 30, 80])))
                for r in (ours, theirs):
                    r.set(name, v)
        a, b = rnd.choice([("{l}a", "{l}b"), ("{l}b", "{l}a"), ("{l}a", "{l}a"),
                           ("{l}a", "{l}none")])
        same("LCS", a, b, *rnd.choice(lcs_opts))
for args in (["LCS"], ["LCS", "{l}a"], ["SET", "{l}x", "ohmytext"], ["SET", "{l}y", "mynewtext"],
             ["LCS", "{l}x", "{l}y"], ["LCS", "{l}x", "{l}y", "LEN"],
             ["LCS", "{l}x", "{l}y", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"]):
    same(*args)
import socket
def resp3_reply(port, args):
    """The raw bytes of args' reply on a connection switched to RESP3."""
    def cmd(*a):
        return b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in
                                               (y.encode() if isinstance(y, str) else y for y in a))
    def until_pong(sock):
        got = b""
        while not got.endswith(b"+PONG\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            got += chunk
        return got[:-len(b"+PONG\r\n")]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(cmd("HELLO", "3") + cmd("PING"))
        until_pong(sock)
        sock.sendall(cmd(*args) + cmd("PING"))
        return until_pong(sock)
for args in (["LCS", "{l}x", "{l}y", "IDX"], ["LCS", "{l}x", "{l}y", "IDX", "WITHMATCHLEN"],
             ["LCS", "{l}x", "{l}y"], ["LCS", "{l}x", "{l}none", "IDX"]):
    cases += 1
    a, b = resp3_reply(int(sys.argv[1]), args), resp3_reply(int(sys.argv[2]), args)
    if a != b:
        differ += 1
        print("differs (RESP3): %r: ringkv %r, redis %r" % (args, a, b))
# the keys' flags (BITOP's destination OW update, its sources and LCS's
# keys RO access), and the name CLIENT LIST gives a connection's BITOP
for args in (["COMMAND GETKEYSANDFLAGS", "BITOP", "AND", "{o}d", "{o}a", "{o}b"],
             ["COMMAND GETKEYSANDFLAGS", "BITOP", "NOT", "{o}d", "{o}a"],
             ["COMMAND GETKEYSANDFLAGS", "LCS", "{l}a", "{l}b", "IDX"]):
    same(*args)
def last_cmd(r):
    named = redis.Redis(host="127.0.0.1", port=r.connection_pool.connection_kwargs["port"])
    named.execute_command("CLIENT", "SETNAME", "bitopper")
    named.execute_command("BITOP", "OR", "{o}dst", "{o}a")
    line = [l for l in r.execute_command("CLIENT", "LIST").decode().split("\n")
            if "name=bitopper" in l]
    named.close()
    return [f for f in line[0].split() if f.startswith("cmd=")] if line else None
cases += 1
if last_cmd(ours) != last_cmd(theirs):
    differ += 1
    print("differs: CLIENT LIST's cmd after BITOP: ringkv %r, redis %r" % (last_cmd(ours), last_cmd(theirs)))
for args in (["BITOP"], ["BITOP", "AND"], ["BITOP", "AND", "{o}dst"], ["BITOP", "NOT", "{o}dst"],
             ["BITOP", "NOT", "{o}dst", "{o}none"], ["EXISTS", "{o}dst"]):
    same(*args)
for args in (["BITFIELD"], ["BITFIELD_RO"], ["BITFIELD", "b", "GET", "u8"],
             ["BITFIELD", "b", "OVERFLOW", "FAIL", "SET", "u8", "0", "300", "GET", "u8", "0"],
             ["GET", "b"], ["BITFIELD", "z", "OVERFLOW", "FAIL", "INCRBY", "i8", "#3", "999"],
             ["GET", "z"], ["BITFIELD_RO", "b", "OVERFLOW", "SAT", "GET", "i8", "0"],
             ["BITFIELD_RO", "b", "GET", "i8", "0", "SET", "i8", "0", "1"],
             ["BITFIELD_RO", "b", "SET", "i8", "0", "x"]):
    same(*args)
for args in (["SETBIT", "k"], ["GETBIT", "k"], ["BITCOUNT"], ["BITPOS", "k"],
             ["SETBIT", "new", "4294967296", "1"], ["EXISTS", "new"]):
    same(*args)
print("%d commands, %d replies differ" % (cases, differ))
sys.exit(1 if differ else 0)
PY
rc=$?
if ((rc != 0)) && itest_uring_refused "$pid" "$dir/log"; then
    echo "skip: the kernel refuses io_uring"
    exit 77
fi
if ! itest_stop "$pid"; then
    echo "FAIL: the node did not stop cleanly; its log:"
    tail -n 40 "$dir/log"
    rc=1
fi
exit $rc
