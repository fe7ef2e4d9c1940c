#!/usr/bin/env bash
# redis-py's transactions against a real node: pipeline() is transactional by
# default (MULTI ... EXEC), and transaction(fn, *keys) is the WATCH / GET /
# MULTI / EXEC retry loop; both must work unchanged on keys of one hash slot
# ({hash tags}), a watched key changed by another client must make the loop
# retry, and keys of two slots must fail with CROSSSLOT (the node stays
# usable). The node runs 4 shards, so transactions run on other shards than
# their connection's. The node is stopped by PID and must exit 0
# (itest_stop); a kernel that refuses io_uring is a skip (77).
set -u
# shellcheck source=lib.bash
source "$(dirname "$0")/lib.bash"
py=/usr/bin/python3
"$py" -c 'import redis' 2>/dev/null || { echo "skip: python3-redis is not installed"; exit 77; }
itest_node_start 4
"$py" - "$port" <<'PY'
import sys, time
import redis

port = int(sys.argv[1])
deadline = time.time() + 10
while True:
    try:
        r = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
        r.ping()
        break
    except redis.ConnectionError:
        if time.time() > deadline:
            raise
        time.sleep(0.02)
other = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)

# pipeline(): transaction=True by default
for tag in range(20):
    k = "{cart%d}" % tag
    pipe = r.pipeline()
    pipe.set(k + ":items", 3).incr(k + ":items").incrby(k + ":total", 10).get(k + ":items")
    pipe.mset({k + ":a": "x", k + ":b": "y"}).mget(k + ":a", k + ":b", k + ":none")
    assert pipe.execute() == [True, 4, 10, "4", True, ["x", "y", None]], tag

# transaction(fn, key): WATCH, read, MULTI, write, EXEC; retried when the
# watched key changed under it (here: another client, on the first call only)
calls = []
def add_one(pipe):
    calls.append(1)
    n = int(pipe.get("{acct}balance") or 0)
    if len(calls) == 1:
        other.incrby("{acct}balance", 100)
    pipe.multi()
    pipe.set("{acct}balance", n + 1)
    pipe.get("{acct}balance")
r.set("{acct}balance", 5)
assert r.transaction(add_one, "{acct}balance") == [True, "106"]
assert len(calls) == 2, calls

# WatchError surfaces when the caller does not retry
with r.pipeline() as pipe:
    pipe.watch("{acct}balance")
    other.set("{acct}balance", 0)
    pipe.multi()
    pipe.set("{acct}balance", 42)
    try:
        pipe.execute()
        raise AssertionError("EXEC must fail after the watched key changed")
    except redis.WatchError:
        pass
assert r.get("{acct}balance") == "0"

# keys of two slots: CROSSSLOT, nothing applied, the connection still works
pipe = r.pipeline()
pipe.set("slot-one", 1).set("slot-two", 2)
try:
    pipe.execute()
    raise AssertionError("a transaction over two slots must fail")
except redis.ResponseError as e:
    assert "CROSSSLOT" in str(e), e
assert r.exists("slot-one", "slot-two") == 0

# a command error when queued aborts the whole transaction (EXECABORT)
pipe = r.pipeline()
pipe.set("{bad}k", 1).execute_command("NOSUCHCOMMAND", "{bad}k")
try:
    pipe.execute()
    raise AssertionError("an unknown command must abort the transaction")
except redis.ResponseError:
    pass
assert r.get("{bad}k") is None
assert r.ping() is True
print("redis-py transactions: all checks passed")
PY
itest_node_finish $?
