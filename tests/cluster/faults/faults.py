#!/usr/bin/python3
"""faults.py: one fault round, run inside a network namespace of its own
(run.sh makes it; run this directly only inside one).

A 5-node cluster (N=3, R=2, W=2; cluster.py), the workload (workload.py)
running on all of them throughout, and a schedule of faults, each held for
--hold seconds under load, then healed, then the cluster waited on until it
is whole again (every member up, one ring). Faults (names for --faults):
  partition  nodes 1,2 | 3,4,5, both ways (nftables)
  oneway     node 1 cannot send to the others (they can still send to it)
  kill       kill -9 of node 2, restarted after the hold
  pause      SIGSTOP of node 3, SIGCONT after the hold
  wipe       node 4 killed, its data directory's stores removed (its id and
             cluster state kept), restarted at once
  skew       node 5 restarted with its wall clock 120 s behind (libfaketime),
             restarted with the true clock after the hold
  join       node 6, a new node (an empty directory), joins (seeded at
             node 1) under load; it stays a member and a coordinator until
             `leave`
  leave      node 6 leaves (DELETE /v1/nodes/{id} at node 1) under load,
             then is stopped
  rejoin     node 6 joins again with the directory it left with (not in
             the default schedule)
  pausejoin  SIGSTOP of node 3 across two ring changes: node 6 (new) joins
             and, once in the ring, leaves; node 3 gets SIGCONT after the
             hold, on a ring two epochs on (it is no coordinator meanwhile)
  mixed      partition 1,2 | 3,4,5 one way (3,4,5 cannot reach 1,2), kill -9
             of node 4 and SIGSTOP of node 2, all at once
The workload stops after --max-ops operations or when the schedule ends.
Then, once the cluster is whole, every key's replicas are read locally
(RING.GET key R 1 on each replica, found from GET /v1/ring) until they agree
or --converge seconds (default 60) pass, and checker.py judges the history.
Prints the phases, the checker's counts and the seconds to converge;
exit status 0 when every property holds and every node exits 0 on SIGTERM."""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import redis  # noqa: E402

import checker  # noqa: E402
from cluster import CLIENT_PORT, Cluster, host, wait_for  # noqa: E402
from workload import Workload  # noqa: E402

ALL_FAULTS = ["partition", "oneway", "kill", "pause", "wipe", "skew", "join", "leave",
              "pausejoin", "mixed"]
KNOWN_FAULTS = ALL_FAULTS + ["rejoin"]


def node_flags(args):
    """Flags every node gets: --node-flags, and a test's anti-entropy
    interval (--aae-interval) when the binary has that setting."""
    flags = args.node_flags.split()
    out = subprocess.run([args.binary, "--settings-markdown"], capture_output=True, text=True)
    if "`aae-interval`" in out.stdout and "--aae-interval" not in flags:
        flags += ["--aae-interval", str(args.aae_interval)]
    return flags


def say(t0, text):
    print("[%6.1f] %s" % (time.monotonic() - t0, text), flush=True)


class Round:
    def __init__(self, args):
        self.args = args
        self.t0 = time.monotonic()
        self.scratch = tempfile.mkdtemp(prefix="ringkv-faults-", dir=args.scratch)
        self.cluster = Cluster(args.binary, self.scratch, node_flags(args))
        self.work = None
        self.phases = []

    def log(self, text):
        say(self.t0, text)

    # ---- faults: apply() returns heal() ----
    def fault(self, name):
        c, a = self.cluster, self.args
        if name == "partition":
            c.drop([1, 2], [3, 4, 5])
            return c.heal
        if name == "oneway":
            c.drop([1], [2, 3, 4, 5], both=False)
            return c.heal
        if name == "kill":
            c.kill(2)
            return lambda: c.start(2)
        if name == "pause":
            c.pause(3)
            return lambda: c.resume(3)
        if name == "wipe":
            c.wipe(4)
            c.start(4)
            return lambda: None
        if name == "skew":
            c.stop(5)
            c.start(5, skew=a.skew)
            return lambda: (c.stop(5), c.start(5))
        if name == "pausejoin":
            return self.pause_join()
        if name in ("join", "rejoin", "leave") and (6 in c.members) == (name != "leave"):
            self.log("%s: node 6 is %s a member; nothing to do"
                     % (name, "not" if name == "leave" else "already"))
            return lambda: None
        if name in ("join", "rejoin"):
            if name == "join":
                shutil.rmtree(c.dir(6), ignore_errors=True)  # a new node each time
            c.join(6, seed=1)
            self.work.set_nodes(sorted(c.members))
            return lambda: None
        if name == "leave":
            self.work.set_nodes(sorted(c.members - {6}))
            c.leave(6, via=1)

            def heal():
                wait_for(lambda: c.left(6), 60, "node 6 left", 0.2)
                c.stop(6)
            return heal
        if name == "mixed":
            c.drop([3, 4, 5], [1, 2], both=False)
            c.kill(4)
            c.pause(2)

            def heal():
                c.heal()
                c.resume(2)
                c.start(4)
            return heal
        raise ValueError("unknown fault %r" % name)

    def pause_join(self):
        """A replica stopped across two ring changes: node 3 paused, node 6
        joins and, once the ring has it, leaves; node 3 resumes at the heal.
        It comes back on a ring two epochs on, calling itself whole for
        rings it never saw; before the handoff checks (shards/transfer.c,
        "Release") the old owners could drop the only copies of writes it
        lacked."""
        c = self.cluster
        if 6 in c.members:
            self.log("pausejoin: node 6 is already a member; nothing to do")
            return lambda: None
        c.pause(3)
        shutil.rmtree(c.dir(6), ignore_errors=True)
        c.join(6, seed=1)
        self.work.set_nodes(sorted(c.members - {3}))

        def in_ring():
            ring = c.ring(1)
            return ring is not None and c.ids[6] in json.dumps(ring.get("members"))
        wait_for(in_ring, 30, "node 6 in node 1's ring", 0.2)
        self.work.set_nodes(sorted(c.members - {3, 6}))
        c.leave(6, via=1)

        def heal():
            wait_for(lambda: c.left(6), 60, "node 6 left", 0.2)
            c.stop(6)
            c.resume(3)
            self.work.set_nodes(sorted(c.members))
        return heal

    def run_phase(self, name):
        before = dict(self.work.counts)
        self.log("fault %s" % name)
        self.work.allow_cold(self.args.cold_keys)
        self.work.take_errors()
        heal = self.fault(name)
        end = time.monotonic() + self.args.hold
        while time.monotonic() < end and not self.work.done():
            time.sleep(0.1)
        during = {k: self.work.counts[k] - before[k] for k in before}
        errors = self.work.take_errors()
        heal()
        self.cluster.wait_formed(self.args.settle)
        self.work.rebalance()
        after = dict(self.work.counts)
        time.sleep(self.args.calm)
        calm = {k: self.work.counts[k] - after[k] for k in after}
        self.log("healed %s: during it %d ops acked, %d failed; after it %d acked, %d failed"
                 % (name, during["acked"], during["failed"], calm["acked"], calm["failed"]))
        for (op, err), n in errors[:4]:
            self.log("    during %s: %d x %s: %s" % (name, n, op, err))
        self.phases.append({"fault": name, "during": during, "after": calm,
                            "errors_during": [[op, err, n] for (op, err), n in errors]})

    # ---- the end state ----
    def final_state(self, keys):
        """{"keys": {key: {"replicas": {node: {"ctx", "siblings"}}}}}, each
        replica read on its own node with R 1."""
        c = self.cluster
        some = min(c.members)
        ring = c.ring(some)
        by_id = {c.ids[i]: i for i in c.members}
        part_slots = 16384 // ring["partitions"]
        conns = {i: redis.Redis(host=host(i), port=CLIENT_PORT, socket_timeout=5)
                 for i in c.members}
        out = {}
        for key in keys:
            slot = conns[some].execute_command("CLUSTER KEYSLOT", key)
            owners = ring["owners"][slot // part_slots][:ring["replicas"]]
            reps = {}
            for oid in owners:
                i = by_id.get(oid)
                if i is None:
                    reps["?" + oid[:8]] = {"ctx": "", "siblings": [], "error": "not a member"}
                    continue
                try:
                    ctx, sibs = conns[i].execute_command("RING.GET", key, "R", "1")
                    reps[str(i)] = {"ctx": ctx.hex(), "siblings": sorted(v.decode() for v in sibs)}
                except redis.RedisError as e:
                    reps[str(i)] = {"ctx": "", "siblings": [], "error": str(e)}
            out[key] = {"replicas": reps}
        for r in conns.values():
            r.close()
        return {"keys": out}

    def converged(self, keys):
        state = self.final_state(keys)
        for doc in state["keys"].values():
            reps = list(doc["replicas"].values())
            if any("error" in r for r in reps) or \
                    len({(r["ctx"], tuple(r["siblings"])) for r in reps}) != 1:
                return False, state
        return True, state

    def run(self):
        a = self.args
        self.log("scratch %s" % self.scratch)
        self.cluster.form([1, 2, 3, 4, 5])
        self.log("5 nodes formed one cluster")
        hist = os.path.join(self.scratch, "history.jsonl")
        self.work = Workload(hist, [1, 2, 3, 4, 5], clients=a.clients, keys=a.keys,
                             max_ops=a.max_ops, seed=a.seed, pace=a.pace)
        self.work.allow_cold(a.cold_keys)  # some for the faults to come (a wipe, a leave)
        self.work.start()
        time.sleep(a.calm)
        deadline = time.monotonic() + a.duration
        schedule = a.faults.split(",")
        rounds = 0
        while not self.work.done():
            for name in schedule:
                if time.monotonic() >= deadline or self.work.done():
                    break
                self.run_phase(name)
            rounds += 1
            if not a.repeat or time.monotonic() >= deadline:
                break
        self.work.stop()
        self.log("workload stopped: %s" % self.work.counts)

        self.cluster.wait_formed(a.settle)
        healed = time.monotonic()
        keys = sorted({json.loads(line)["key"] for line in open(hist)})
        ok, state = False, None
        while True:
            ok, state = self.converged(keys)
            if ok or time.monotonic() - healed > a.converge:
                break
            time.sleep(0.5)
        took = time.monotonic() - healed
        self.log("replicas %s %.1f s after the cluster was whole"
                 % ("agreed" if ok else "still differ", took))
        final = os.path.join(self.scratch, "final.json")
        with open(final, "w") as f:
            json.dump(state, f, indent=1, sort_keys=True)
        with open(os.path.join(self.scratch, "phases.json"), "w") as f:
            json.dump(self.phases, f, indent=1)
        counts, viol = checker.check(checker.load_history(hist), state)
        checker.report(counts, viol)
        print("checker: converge_seconds=%.1f converged=%s" % (took, ok))
        return 0 if not viol else 1

    def finish(self, rc):
        bad = self.cluster.stop_all()
        self.cluster.heal()
        if bad:
            self.log("nodes that did not exit 0 on SIGTERM: %s" % bad)
            rc = rc or 1
        if rc and self.args.show_logs:
            for i in range(1, 7):
                path = os.path.join(self.scratch, "n%d.log" % i)
                if os.path.exists(path):
                    print("---- node %d (last 30 lines of %s)" % (i, path))
                    with open(path, errors="replace") as f:
                        print("".join(f.readlines()[-30:]), end="")
        if rc == 0 and not self.args.keep:
            shutil.rmtree(self.scratch, ignore_errors=True)
        else:
            self.log("kept %s (history.jsonl, final.json, phases.json, node logs)" % self.scratch)
        return rc


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--binary", default=os.environ.get("RINGKV_BIN", "build/ringkv"))
    p.add_argument("--scratch", default=None, help="where the run's directory is made")
    p.add_argument("--faults", default=",".join(ALL_FAULTS))
    p.add_argument("--hold", type=float, default=8, help="seconds each fault lasts")
    p.add_argument("--calm", type=float, default=2, help="seconds of load after each heal")
    p.add_argument("--settle", type=float, default=60, help="seconds to wait for a whole cluster")
    p.add_argument("--converge", type=float, default=60, help="seconds to wait for agreement")
    p.add_argument("--duration", type=float, default=300, help="seconds of faults at most")
    p.add_argument("--repeat", action="store_true", help="run the schedule again until --duration")
    p.add_argument("--max-ops", type=int, default=None)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--keys", type=int, default=40)
    p.add_argument("--cold-keys", type=int, default=150,
                   help="keys written once and never again, per fault (see workload.py)")
    p.add_argument("--pace", type=float, default=0.005, help="seconds each client waits between ops")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--skew", default="-120s", help="libfaketime offset of the skewed node")
    p.add_argument("--node-flags", default="", help="extra flags for every node")
    p.add_argument("--aae-interval", type=int, default=10,
                   help="the nodes' aae-interval, when they have the setting")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    p.add_argument("--show-logs", action="store_true", help="print node logs on failure")
    args = p.parse_args()
    for f in args.faults.split(","):
        if f not in KNOWN_FAULTS:
            p.error("unknown fault %r (known: %s)" % (f, ", ".join(KNOWN_FAULTS)))
    rnd = Round(args)
    rc = 1

    def stopped(signum, frame):
        raise SystemExit("stopped by signal %d" % signum)
    signal.signal(signal.SIGTERM, stopped)
    try:
        rc = rnd.run()
    except (TimeoutError, RuntimeError, OSError, redis.RedisError, SystemExit) as e:
        rnd.log("round failed: %s: %s" % (type(e).__name__, e))
        rc = 1
    finally:
        if rnd.work and not rnd.work.stopping.is_set():
            rnd.work.stop()
        rc = rnd.finish(rc)
    return rc


if __name__ == "__main__":
    sys.exit(main())
