"""cluster.py: ringkv nodes for the fault suite, inside the network
namespace that run.sh made (so every address of 127.0.0.0/8 and every port
is ours, and nftables rules touch nothing else).

Node i (1..6) listens on 127.0.0.(10 + i): clients on 7001, admin HTTP on
8001, peers on 17001. Each has its own data directory under the run's
scratch directory (storage = log, so kill -9 and restart keep what was
acknowledged) and its own log file. Nodes are stopped by PID only.

Faults: kill(-9), pause/resume (SIGSTOP/SIGCONT), wipe (the data directory's
shards and manifest removed, the node id and cluster state kept: Riak's
KV-679 case), restart with a skewed clock (libfaketime in LD_PRELOAD), and
partitions: an nftables table `ringkv_faults` whose output chain drops
packets from one address set to another (both ways: two rules)."""

import ctypes
import http.client
import json
import os
import signal
import subprocess
import time

import redis

CLIENT_PORT, ADMIN_PORT, CLUSTER_PORT = 7001, 8001, 17001
FAKETIME_LIBS = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1"]


def _die_with_parent():
    """preexec_fn of a node: SIGKILL when the driver dies (PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


def host(i):
    return "127.0.0.%d" % (10 + i)


def wait_for(cond, timeout, what, step=0.1):
    """Polls cond() until it returns a true value (returned) or raises
    TimeoutError naming what after timeout seconds."""
    end = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() >= end:
            raise TimeoutError("%s: not within %.0f s" % (what, timeout))
        time.sleep(step)


def http_call(i, method, path, body=None, timeout=2.0):
    """(status, parsed JSON or None) of node i's admin API; (0, None) when
    it does not answer."""
    try:
        conn = http.client.HTTPConnection(host(i), ADMIN_PORT, timeout=timeout)
        data = json.dumps(body) if body is not None else None
        conn.request(method, path, body=data,
                     headers={"Content-Type": "application/json"} if data else {})
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            return resp.status, None
    except (OSError, http.client.HTTPException):
        return 0, None


class Cluster:
    def __init__(self, binary, scratch, extra_flags=()):
        self.binary = binary
        self.scratch = scratch
        self.extra = list(extra_flags)
        self.procs = {}      # i -> Popen of a running (or paused) node
        self.paused = set()
        self.ids = {}        # i -> node id, once seen
        self.members = set()  # nodes meant to be in the ring
        self.nft_rules = False

    # ---- processes ----
    def dir(self, i):
        return os.path.join(self.scratch, "n%d" % i)

    def start(self, i, seed=None, skew=None):
        """Starts node i (seeded at node `seed` when given); skew: a
        libfaketime offset such as "+90s" for this run of it. Waits until
        its /v1/health answers (15 s)."""
        argv = [self.binary, "--bind", host(i), "--port", str(CLIENT_PORT),
                "--admin-port", str(ADMIN_PORT), "--cluster-port", str(CLUSTER_PORT),
                "--memcache-port", "0", "--threads", "1", "--cpu-affinity", "no",
                "--dir", self.dir(i), "--replicas", "3", "--read-quorum", "2",
                "--write-quorum", "2", "--loglevel", "verbose"] + self.extra
        if seed is not None:
            argv += ["--seeds", "%s:%d" % (host(seed), CLUSTER_PORT)]
        env = dict(os.environ)
        if skew:
            lib = next((p for p in FAKETIME_LIBS if os.path.exists(p)), None)
            if not lib:
                raise RuntimeError("libfaketime is not installed")
            env.update(LD_PRELOAD=lib, FAKETIME=skew, FAKETIME_NO_CACHE="1")
        log = open(os.path.join(self.scratch, "n%d.log" % i), "ab")
        log.write(("---- start %s%s\n" % (" ".join(argv[1:3]),
                                          " skew " + skew if skew else "")).encode())
        log.flush()
        self.procs[i] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         preexec_fn=_die_with_parent)
        log.close()

        def healthy():
            if self.procs[i].poll() is not None:
                raise RuntimeError("node %d exited with %s at start; see %s/n%d.log"
                                   % (i, self.procs[i].returncode, self.scratch, i))
            st, doc = http_call(i, "GET", "/v1/health")
            return st == 200 and doc and doc.get("id")
        self.ids[i] = wait_for(healthy, 15, "node %d health" % i)

    def running(self, i):
        return i in self.procs and self.procs[i].poll() is None

    def kill(self, i):
        """kill -9 and reap."""
        p = self.procs.pop(i)
        p.send_signal(signal.SIGKILL)
        p.wait()
        self.paused.discard(i)

    def pause(self, i):
        self.procs[i].send_signal(signal.SIGSTOP)
        self.paused.add(i)

    def resume(self, i):
        self.procs[i].send_signal(signal.SIGCONT)
        self.paused.discard(i)

    def stop(self, i, timeout=10):
        """SIGTERM (after SIGCONT), SIGKILL past timeout; returns the exit
        status (None when it had to be killed)."""
        p = self.procs.pop(i, None)
        if p is None:
            return 0
        self.paused.discard(i)
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)
            p.send_signal(signal.SIGTERM)
            try:
                return p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGKILL)
                p.wait()
                return None
        return p.returncode

    def stop_all(self):
        bad = {}
        for i in sorted(self.procs):
            rc = self.stop(i)
            if rc != 0:
                bad[i] = rc
        return bad

    def wipe(self, i):
        """Node i (stopped first, by kill -9) loses its stored data but keeps
        its identity and cluster state."""
        if self.running(i):
            self.kill(i)
        d = self.dir(i)
        for name in os.listdir(d):
            if name.startswith("shard-") or name == "ringkv.meta":
                subprocess.run(["rm", "-rf", os.path.join(d, name)], check=True)

    # ---- membership ----
    def form(self, nodes):
        """Starts the nodes (the first alone, the rest seeded at it) and waits
        until they form one cluster."""
        first = nodes[0]
        for i in nodes:
            self.start(i, seed=None if i == first else first)
            self.members.add(i)
        self.wait_formed(30)

    def ring(self, i):
        st, doc = http_call(i, "GET", "/v1/ring")
        return doc if st == 200 else None

    def formed(self):
        """True when every member lists every member up and all have one
        ring of exactly those members (same hash), which their shards serve
        (CLUSTER INFO: that ring hash, every member up)."""
        want = {self.ids[i] for i in self.members}
        hashes = set()
        for i in self.members:
            st, doc = http_call(i, "GET", "/v1/nodes")
            if st != 200:
                return False
            up = {n["id"] for n in doc["nodes"] if n.get("status") == "up"}
            if not want <= up:
                return False
            ring = self.ring(i)
            if not ring or {m["id"] for m in ring.get("members", [])} != want:
                return False
            hashes.add(ring.get("hash"))
            if not self.shard_serves(i, ring.get("hash"), len(want)):
                return False
        return len(hashes) == 1

    def shard_serves(self, i, ring_hash, n):
        try:
            r = redis.Redis(host=host(i), port=CLIENT_PORT, socket_timeout=2)
            fields = r.execute_command("CLUSTER INFO")  # redis-py makes it a dict
            r.close()
        except (redis.RedisError, OSError):
            return False
        return str(fields.get("ringkv_ring_hash")) == ring_hash and \
            str(fields.get("ringkv_nodes_up")) == str(n)

    def wait_formed(self, timeout):
        wait_for(self.formed, timeout, "cluster of nodes %s formed" % sorted(self.members), 0.2)

    def join(self, i, seed):
        self.start(i, seed=seed)
        self.members.add(i)

    def leave(self, i, via):
        """Asks node `via` to remove node i (DELETE /v1/nodes/{id})."""
        st, doc = http_call(via, "DELETE", "/v1/nodes/" + self.ids[i])
        if st != 202:
            raise RuntimeError("leave of node %d: HTTP %d %s" % (i, st, doc))
        self.members.discard(i)

    def left(self, i):
        st, doc = http_call(i, "GET", "/v1/nodes")
        if st != 200:
            return False
        me = [n for n in doc["nodes"] if n["id"] == self.ids[i]]
        return bool(me) and me[0]["status"] == "left" or len(doc["nodes"]) == 1

    # ---- partitions (nftables, inside the namespace) ----
    def nft(self, script):
        subprocess.run(["nft", "-f", "-"], input=script.encode(), check=True)

    def drop(self, a, b, both=True):
        """Drops packets from nodes a to nodes b (and b to a when both)."""
        if not self.nft_rules:
            self.nft("add table inet ringkv_faults\n"
                     "add chain inet ringkv_faults out "
                     "{ type filter hook output priority 0; policy accept; }\n")
            self.nft_rules = True
        sa = ", ".join(host(i) for i in a)
        sb = ", ".join(host(i) for i in b)
        rules = "add rule inet ringkv_faults out ip saddr { %s } ip daddr { %s } drop\n" % (sa, sb)
        if both:
            rules += "add rule inet ringkv_faults out ip saddr { %s } ip daddr { %s } drop\n" % (sb, sa)
        self.nft(rules)

    def heal(self):
        if self.nft_rules:
            self.nft("delete table inet ringkv_faults\n")
            self.nft_rules = False
