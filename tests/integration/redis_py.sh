#!/usr/bin/env bash
# redis-py (Debian's python3-redis) against a real node: connection set-up
# (CLIENT SETINFO/SETNAME where the library sends them), strings, pipelines,
# multi-key commands across shards, expiry, SCAN iteration, INFO parsing,
# error mapping, SLOWLOG, CONFIG SET and MONITOR, all through the library as
# applications use it. The node must then exit 0 on SIGTERM (itest_stop); a
# kernel that refuses io_uring is a skip (77).
set -u
# shellcheck source=lib.bash
source "$(dirname "$0")/lib.bash"
bin=${RINGKV_BIN:?RINGKV_BIN is not set}
py=/usr/bin/python3
"$py" -c 'import redis' 2>/dev/null || { echo "skip: python3-redis is not installed"; exit 77; }
dir=$(mktemp -d)
{ read -r port; read -r aport; read -r cport; } < <(itest_free_ports 3)
"$bin" --port "$port" --admin-port "$aport" --cluster-port "$cport" --memcache-port 0 --threads 3 \
    --dir "$dir/data" > "$dir/log" 2>&1 &
pid=$!
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
"$py" - "$port" <<'PY'
import sys, time
import redis

port = int(sys.argv[1])
deadline = time.time() + 10
while True:
    try:
        r = redis.Redis(host="127.0.0.1", port=port, client_name="itest", decode_responses=True)
        r.ping()
        break
    except redis.ConnectionError:
        if time.time() > deadline:
            raise
        time.sleep(0.02)

assert r.client_getname() == "itest"
assert r.set("greeting", "hello") is True
assert r.get("greeting") == "hello"
assert r.set("greeting", "again", nx=True) is None
assert r.incr("counter") == 1 and r.incrby("counter", 41) == 42
assert abs(r.incrbyfloat("f", 2.5) - 2.5) < 1e-9

keys = {"user:%d" % i: "v%d" % i for i in range(500)}
assert r.mset(keys) is True
assert r.mget(list(keys)) == list(keys.values())
assert r.exists(*list(keys)[:10], "nope") == 10

pipe = r.pipeline(transaction=False)
for i in range(1000):
    pipe.set("p:%d" % i, i)
    pipe.get("p:%d" % i)
replies = pipe.execute()
assert replies[0::2] == [True] * 1000
assert replies[1::2] == [str(i) for i in range(1000)]

assert r.expire("greeting", 100) is True
assert 0 < r.ttl("greeting") <= 100
assert r.persist("greeting") is True and r.ttl("greeting") == -1

seen = set(r.scan_iter(match="user:*", count=50))
assert seen == set(keys), len(seen)

info = r.info()
assert info["redis_version"] and info["connected_clients"] >= 1
assert r.dbsize() == len(keys) + 1000 + 3

try:
    r.incr("greeting")
    raise AssertionError("INCR of a non-number must fail")
except redis.ResponseError as e:
    assert "not an integer" in str(e)

# SLOWLOG, CONFIG SET and MONITOR through the library's own parsers
assert r.config_set("slowlog-log-slower-than", 0) is True
assert r.get("user:7") == "v7"
entries = r.slowlog_get(10)
assert any(e["command"] in ("GET user:7", b"GET user:7") for e in entries), entries
assert r.slowlog_len() >= 1 and r.slowlog_reset() is True
assert r.config_set("slowlog-log-slower-than", 10000) is True
assert r.config_get("slowlog-log-slower-than") == {"slowlog-log-slower-than": "10000"}
try:
    r.config_set("port", 1)
    raise AssertionError("CONFIG SET port must be refused")
except redis.ResponseError as e:
    assert "immutable" in str(e)
with r.monitor() as m:
    other = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
    other.set("watched", "1")
    line = next(m.listen())
    assert line["command"] == "SET watched 1" and line["client_address"] == "127.0.0.1", line

assert r.delete(*keys) == len(keys)
assert r.flushall() is True and r.dbsize() == 0
print("redis-py: all checks passed")
PY
rc=$?
if ((rc != 0)) && itest_uring_refused "$pid" "$dir/log"; then
    echo "skip: the kernel refuses io_uring here"
    exit 77
fi
if ! itest_stop "$pid"; then
    echo "FAIL: the node did not stop cleanly; its log:"
    tail -n 40 "$dir/log"
    rc=1
fi
pid=""
exit $rc
