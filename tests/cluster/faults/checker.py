#!/usr/bin/python3
"""checker.py: judges a fault round from its history (workload.py's JSON
lines) and the final state its driver read once the cluster settled.

Final state (JSON): {"keys": {key: {"replicas": {node: {"ctx": hex,
"siblings": [values]}}}}}, each replica read locally (RING.GET R 1 on that
replica: the coordinator's own store, no read repair). A key whose replicas
agree has one final sibling set. One whose replicas differ fails property 1
and is judged otherwise on what merging them would leave: the union of
their siblings less those that a RING.PUT or RING.DEL read (so a replica
that is merely behind is not also counted as an undone delete; property 4
is then judged on the keys whose replicas agree only).

Properties (a write is "maybe" when it was not acknowledged: it may have
been applied on some replicas):
 1 converged: every replica of every key holds the same siblings and the
   same version (context bytes).
 2 no acknowledged write lost: each acknowledged put/set value is among the
   final siblings, or was superseded: read by a put or RING.DEL (its context
   covered the value) that took effect (acknowledged, its value seen later,
   or a delete that may have been applied), or overwritten by a plain SET or
   DEL that took effect and ended after the value's write began (a plain
   write supersedes what its coordinator had seen). A superseding write
   that was acknowledged and lost is reported on its own.
 3 no value appears that nobody wrote: every sibling read (during the round
   or at the end) was written by some put/set, which began before the read
   ended.
 4 no acknowledged delete undone: no value that an acknowledged RING.DEL or
   RING.PUT read (and so superseded) is among the final siblings. (A plain
   DEL supersedes only what its coordinator had seen, so it promises nothing
   about a given earlier value.)
 5 siblings bounded by concurrent writers: in every sibling set seen (reads
   and final) no sibling is one that another sibling's writer read (it would
   be superseded), and there are no more siblings than writes of that key
   begun before the read ended.
Prints counts; exit status 1 on any violation.
Usage: checker.py HISTORY.jsonl FINAL.json [--max-report N]"""

import bisect
import json
import sys
from collections import defaultdict

PROPS = {
    1: "replicas differ",
    2: "acknowledged write lost",
    3: "value nobody wrote",
    4: "acknowledged delete/overwrite undone",
    5: "siblings beyond concurrent writers",
}


def load_history(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def attempted(rec):
    """Whether the op's write was sent (a put/rdel whose RING.GET failed was not)."""
    if rec["op"] in ("put", "rdel"):
        return "read" in rec
    return rec["op"] in ("set", "del")


def check(history, final):
    """Returns (counts, violations): violations is a list of (property,
    text)."""
    viol = []
    counts = defaultdict(int)
    writer = {}                     # value -> record
    by_key = defaultdict(list)      # key -> write records (attempted)
    observed = set()                # values seen by any read or at the end
    for rec in history:
        counts["ops"] += 1
        counts["ops_acked" if rec["ok"] else "ops_failed"] += 1
        counts["op_%s" % rec["op"]] += 1
        if attempted(rec):
            by_key[rec["key"]].append(rec)
            if "value" in rec:
                writer[rec["value"]] = rec
        observed.update(rec.get("read", ()))

    # property 1 and the final sibling sets
    # values that a RING.PUT/RING.DEL which took effect (or, a delete, may
    # have) read: gone once replicas merge
    superseded = {v for recs in by_key.values() for x in recs for v in x.get("read", ())
                  if x["ok"] or x["op"] == "rdel" or x.get("value") in observed}
    final_sibs = {}
    for key, doc in final.get("keys", {}).items():
        reps = doc["replicas"]
        states = {(r["ctx"], tuple(sorted(r["siblings"]))) for r in reps.values()}
        union = set()
        for r in reps.values():
            union.update(r["siblings"])
        observed.update(union)
        counts["keys"] += 1
        if len(states) != 1:
            viol.append((1, "%s: replicas differ: %s" % (key, json.dumps(reps, sort_keys=True))))
            counts["keys_divergent"] += 1
            union = {v for v in union if v not in superseded}
        final_sibs[key] = union
        if not reps:
            viol.append((1, "%s: no replica could be read" % key))
    for key in by_key:
        if key not in final_sibs:
            viol.append((1, "%s: written but absent from the final state" % key))
            final_sibs[key] = set()

    def effective(rec):
        """The write took effect (or, for an unacknowledged delete, may have)."""
        if rec["ok"]:
            return True
        if "value" in rec:
            return rec["value"] in observed
        return True

    # property 3: every value seen was written, before it was seen
    seen_at = []  # (key, siblings, end time or None for final, what)
    for rec in history:
        if "read" in rec:
            seen_at.append((rec["key"], rec["read"], rec.get("read_end", rec.get("end")),
                            "a read by client %d" % rec["client"]))
    for key, sibs in final_sibs.items():
        seen_at.append((key, sorted(sibs), None, "the final state"))
    for key, sibs, t, what in seen_at:
        for v in sibs:
            w = writer.get(v)
            if w is None or w["key"] != key:
                viol.append((3, "%s: %r in %s was never written to this key" % (key, v, what)))
            elif t is not None and w["start"] > t:
                viol.append((3, "%s: %r in %s (at %.3f) was written only at %.3f"
                             % (key, v, what, t, w["start"])))

    # property 2: acknowledged writes are final or superseded
    readers = defaultdict(list)  # value -> writes (put/rdel) that read it
    for recs in by_key.values():
        for x in recs:
            for v in x.get("read", ()):
                readers[v].append(x)
    for key, recs in by_key.items():
        fin = final_sibs[key]
        # the two latest ends of plain writes that took effect (an
        # unacknowledged one may have been applied at any time: infinity)
        ends = sorted(((x["end"] if x["ok"] else float("inf")), id(x)) for x in recs
                      if x["op"] in ("set", "del") and effective(x))[-2:]
        for w in recs:
            if "value" not in w or not w["ok"]:
                continue
            counts["writes_acked"] += 1
            v = w["value"]
            if v in fin:
                counts["writes_final"] += 1
                continue
            plain_end = max((e for e, i in ends if i != id(w)), default=None)
            if any(effective(x) for x in readers.get(v, ())):
                counts["writes_superseded_by_context"] += 1
            elif plain_end is not None and plain_end > w["start"]:
                counts["writes_superseded_by_plain"] += 1
            else:
                counts["writes_lost"] += 1
                viol.append((2, "%s: %r (%s by client %d at %.3f-%.3f, via node %s) is neither "
                             "final %s nor superseded" % (key, v, w["op"], w["client"], w["start"],
                                                          w["end"], w["node"], sorted(fin))))

    # property 4: what an acknowledged RING.DEL / RING.PUT superseded stays gone
    for key, recs in by_key.items():
        fin = final_sibs[key]
        for x in recs:
            if x["op"] not in ("rdel", "put") or not x["ok"]:
                continue
            if x["op"] == "rdel":
                counts["deletes_acked"] += 1
            back = sorted(set(x["read"]) & fin)
            if back:
                viol.append((4, "%s: %s by client %d at %.3f-%.3f superseded %s, final has them: %s"
                             % (key, "RING.DEL" if x["op"] == "rdel" else "RING.PUT " + x["value"],
                                x["client"], x["start"], x["end"], back, sorted(fin))))
                if x["op"] == "rdel":
                    counts["deletes_undone"] += 1

    # property 5: sibling sets are antichains, bounded by the writes begun
    starts = defaultdict(list)
    for key, recs in by_key.items():
        starts[key] = sorted(x["start"] for x in recs if "value" in x)
    for key, sibs, t, what in seen_at:
        counts["max_siblings"] = max(counts["max_siblings"], len(sibs))
        for v in sibs:
            w = writer.get(v)
            covered = sorted(set(w.get("read", ())) & set(sibs)) if w else []
            if covered:
                viol.append((5, "%s: %s shows %r with %s, which its writer read"
                             % (key, what, v, covered)))
        begun = len(starts[key]) if t is None else bisect.bisect_right(starts[key], t)
        if len(sibs) > begun:
            viol.append((5, "%s: %s shows %d siblings, only %d writes had begun"
                         % (key, what, len(sibs), begun)))

    for p in PROPS:
        counts["violations_%d" % p] = sum(1 for q, _ in viol if q == p)
    return dict(counts), viol


def report(counts, viol, out=sys.stdout, max_report=20):
    order = ["ops", "ops_acked", "ops_failed", "op_put", "op_set", "op_rdel", "op_del", "op_get",
             "keys", "keys_divergent", "writes_acked", "writes_final", "writes_superseded_by_context",
             "writes_superseded_by_plain", "writes_lost", "deletes_acked", "deletes_undone",
             "max_siblings"]
    print("checker: " + " ".join("%s=%d" % (k, counts.get(k, 0)) for k in order), file=out)
    print("checker: violations " + " ".join(
        "(%d) %s=%d" % (p, PROPS[p], counts.get("violations_%d" % p, 0)) for p in PROPS), file=out)
    for p, text in viol[:max_report]:
        print("  violation (%d) %s" % (p, text), file=out)
    if len(viol) > max_report:
        print("  ... and %d more" % (len(viol) - max_report), file=out)


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    max_report = int(argv[argv.index("--max-report") + 1]) if "--max-report" in argv else 20
    with open(argv[2]) as f:
        final = json.load(f)
    counts, viol = check(load_history(argv[1]), final)
    report(counts, viol, max_report=max_report)
    return 1 if viol else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
