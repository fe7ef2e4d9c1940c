"""workload.py: concurrent clients on several coordinators, every operation
logged as one JSON line (the history the checker reads).

Each client is a thread with its own connection to one node (client c starts
at node c mod the nodes given, its home; it moves to the next node when its
node does not answer, and back home at rebalance(), after each fault). It loops over random keys of a small key space (so that clients
meet on keys) and does one of:
  put   RING.GET key, then RING.PUT key <that context> <a unique value>
  rdel  RING.GET key, then RING.DEL key <that context>
  set   SET key <a unique value>
  del   DEL key
  get   RING.GET key (a read, logged for what it saw)
A share of the puts ("cold" ones) go to a key never used before (fc:<n>,
as many as the driver allows: allow_cold(), some in each fault) and that
nobody touches again: on those, read
repair by later traffic cannot hide a replica that missed its write, so
they test hinted handoff, anti-entropy and partition transfers. Values are
unique ("c<client>.<seq>"), so the checker can tell every write apart. A record: {"client", "node", "op", "key", "value" (put, set),
"read" (the siblings the RING.GET saw: put, rdel, get), "start", "read_end",
"end" (seconds on this process's monotonic clock), "ok" (acknowledged),
"err" (the error or exception text when not)}. A write that is not
acknowledged (an error reply, a timeout, a dropped connection) may still
have been applied on some replicas: the checker treats it as "maybe".
Traffic goes only to the nodes' 127.0.0.x addresses."""

import json
import random
import threading
import time

import redis

from cluster import CLIENT_PORT, host

OPS = (("put", 35), ("cold", 15), ("set", 15), ("rdel", 10), ("del", 5), ("get", 20))


class Workload:
    def __init__(self, history_path, nodes, clients=8, keys=40, max_ops=None, seed=1,
                 timeout=8.0, pace=0.005):
        self.out = open(history_path, "w")
        self.lock = threading.Lock()
        self.nodes = list(nodes)
        self.clients = clients
        self.keys = ["fk:%d" % k for k in range(keys)]
        self.cold_limit = 0
        self.cold_next = 0
        self.max_ops = max_ops
        self.rng = random.Random(seed)
        self.timeout = timeout
        self.pace = pace
        self.stopping = threading.Event()
        self.threads = []
        self.t0 = time.monotonic()
        self.counts = {"ops": 0, "acked": 0, "failed": 0}
        self.errors = {}  # (op, first words of the error) -> count, since take_errors()
        self.generation = 0  # rebalance() counts up: clients go back home

    def rebalance(self):
        """Every client goes back to its home node before its next op."""
        with self.lock:
            self.generation += 1

    def set_nodes(self, nodes):
        """The coordinators clients may use from now on (a join adds one, a
        leave removes one)."""
        with self.lock:
            self.nodes = list(nodes)

    def log(self, rec):
        with self.lock:
            self.out.write(json.dumps(rec) + "\n")
            self.counts["ops"] += 1
            self.counts["acked" if rec["ok"] else "failed"] += 1
            if not rec["ok"]:
                what = (rec["op"] + (" (its read)" if "op_failed_at" in rec else ""),
                        " ".join(rec["err"].split()[:4]))
                self.errors[what] = self.errors.get(what, 0) + 1

    def take_errors(self):
        """The failures counted since the last call, most frequent first."""
        with self.lock:
            errs, self.errors = self.errors, {}
        return sorted(errs.items(), key=lambda kv: -kv[1])

    def now(self):
        return round(time.monotonic() - self.t0, 6)

    def start(self):
        for c in range(self.clients):
            t = threading.Thread(target=self.client, args=(c, self.rng.randrange(1 << 30)),
                                 daemon=True)
            t.start()
            self.threads.append(t)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(self.timeout * 3)
        self.out.close()

    def done(self):
        return self.max_ops is not None and self.counts["ops"] >= self.max_ops

    def allow_cold(self, n):
        """n more cold keys may be written from now on."""
        with self.lock:
            self.cold_limit += n

    def cold_key(self):
        """A key nobody used yet, or None when the allowance is used up."""
        with self.lock:
            if self.cold_next >= self.cold_limit:
                return None
            self.cold_next += 1
            return "fc:%d" % self.cold_next

    def connect(self, c, turn):
        with self.lock:
            nodes = self.nodes
        node = nodes[(c + turn) % len(nodes)]
        r = redis.Redis(host=host(node), port=CLIENT_PORT, socket_timeout=self.timeout,
                        socket_connect_timeout=2.0)
        return node, r

    def client(self, c, seed):
        rng = random.Random(seed)
        names = [o for o, _ in OPS]
        weights = [w for _, w in OPS]
        seq, turn, generation = 0, 0, self.generation
        node, r = self.connect(c, turn)
        while not self.stopping.is_set() and not self.done():
            with self.lock:
                moved = node not in self.nodes  # it is leaving: on to one that stays
                home = generation != self.generation and turn != 0
                generation = self.generation
            if moved or home:
                r.close()
                turn = turn + 1 if moved else 0
                node, r = self.connect(c, turn)
            op = rng.choices(names, weights)[0]
            key = rng.choice(self.keys)
            if op == "cold":
                op, key = "put", self.cold_key() or key
            seq += 1
            rec = {"client": c, "node": node, "op": op, "key": key, "start": self.now(),
                   "ok": False}
            if op in ("put", "set"):
                rec["value"] = "c%d.%d" % (c, seq)
            try:
                self.run(r, op, key, rec)
                rec["ok"] = True
            except redis.ResponseError as e:
                rec["err"] = str(e)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
                rec["err"] = "%s: %s" % (type(e).__name__, e)
                turn += 1  # the node may be down: the next op goes to another
                r.close()
                node, r = self.connect(c, turn)
            except (redis.RedisError, ValueError, TypeError) as e:  # a reply of another shape
                rec["err"] = "unexpected reply: %s: %s" % (type(e).__name__, e)
            rec["end"] = self.now()
            if op in ("put", "rdel", "get") and "read" not in rec:
                rec["op_failed_at"] = "read"  # nothing was written
            self.log(rec)
            time.sleep(self.pace)
        r.close()

    def run(self, r, op, key, rec):
        if op == "set":
            r.execute_command("SET", key, rec["value"])
        elif op == "del":
            r.execute_command("DEL", key)
        else:
            ctx, sibs = r.execute_command("RING.GET", key)
            rec["read"] = sorted(v.decode() for v in sibs)
            rec["read_end"] = self.now()
            if op == "put":
                r.execute_command("RING.PUT", key, ctx, rec["value"])
            elif op == "rdel":
                r.execute_command("RING.DEL", key, ctx)
