#!/usr/bin/python3
"""test_checker.py: the checker's self-test. A clean crafted history must
pass with the expected counts; each crafted violation must be flagged under
its property, and only there. Needs no cluster (ctest faults.checker)."""

import copy
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402


def rec(client, op, key, start, end, ok=True, value=None, read=None, node=1):
    r = {"client": client, "node": node, "op": op, "key": key, "start": start, "end": end,
         "ok": ok}
    if value is not None:
        r["value"] = value
    if read is not None:
        r["read"] = sorted(read)
        r["read_end"] = start + (end - start) / 2
    return r


def final_of(keys, ctx="aa"):
    """{"keys": ...} with every key's three replicas agreeing."""
    return {"keys": {k: {"replicas": {str(n): {"ctx": ctx, "siblings": sorted(s)}
                                      for n in (1, 2, 3)}} for k, s in keys.items()}}


# A clean history: on k1 a set, a put that read it, two concurrent puts
# (siblings); on k2 a put then a RING.DEL that read it; on k3 a value
# overwritten by a plain SET that did not read it; unacknowledged writes
# that vanished.
CLEAN = [
    rec(0, "set", "k1", 0.0, 0.1, value="c0.1"),
    rec(1, "put", "k1", 0.2, 0.3, value="c1.1", read=["c0.1"]),
    rec(0, "put", "k1", 0.4, 0.6, value="c0.2", read=["c1.1"]),
    rec(1, "put", "k1", 0.45, 0.65, value="c1.2", read=["c1.1"]),
    rec(2, "get", "k1", 0.7, 0.8, read=["c0.2", "c1.2"]),
    rec(0, "put", "k2", 1.0, 1.1, value="c0.3", read=[]),
    rec(2, "put", "k2", 1.05, 1.15, value="c0.3b", read=[]),
    rec(1, "rdel", "k2", 1.2, 1.3, read=["c0.3", "c0.3b"]),
    rec(2, "set", "k3", 2.0, 2.1, value="c2.1"),
    rec(3, "set", "k3", 2.2, 2.3, value="c3.1"),
    rec(3, "put", "k3", 2.4, 9.4, ok=False, value="c3.2", read=["c3.1"]),
    rec(4, "put", "k3", 2.5, 2.6, ok=False, read=None),   # its RING.GET failed
    rec(4, "del", "k4", 3.0, 3.1),
]
CLEAN_FINAL = final_of({"k1": {"c0.2", "c1.2"}, "k2": set(), "k3": {"c3.1"}, "k4": set()})


def expect(name, history, final, props):
    counts, viol = checker.check(history, final)
    flagged = {p for p, _ in viol}
    if flagged != set(props):
        print("FAIL %s: flagged %s, expected %s" % (name, sorted(flagged), sorted(props)))
        checker.report(counts, viol)
        return 1
    print("ok   %s: flagged %s" % (name, sorted(flagged) or "nothing"))
    return 0


def main():
    fails = 0
    counts, viol = checker.check(CLEAN, CLEAN_FINAL)
    want = {"writes_acked": 8, "writes_final": 3, "writes_superseded_by_context": 4,
            "writes_superseded_by_plain": 1, "writes_lost": 0, "deletes_acked": 1,
            "max_siblings": 2}
    got = {k: counts.get(k, 0) for k in want}
    if viol or got != want:
        print("FAIL clean history: counts %s, expected %s" % (got, want))
        checker.report(counts, viol)
        fails += 1
    else:
        print("ok   clean history: %s" % got)

    # (1) one replica holds another version
    final = copy.deepcopy(CLEAN_FINAL)
    final["keys"]["k1"]["replicas"]["3"]["ctx"] = "bb"
    fails += expect("replicas differ in version", CLEAN, final, [1])
    final = copy.deepcopy(CLEAN_FINAL)
    final["keys"]["k3"]["replicas"]["2"]["siblings"] = []
    fails += expect("replicas differ in siblings", CLEAN, final, [1])

    # a replica merely behind (it misses the last put and the RING.DEL) is
    # property 1 only, not also an undone delete or a superseded sibling
    final = copy.deepcopy(CLEAN_FINAL)
    final["keys"]["k1"]["replicas"]["2"] = {"ctx": "a0", "siblings": ["c1.1"]}
    final["keys"]["k2"]["replicas"]["3"] = {"ctx": "a0", "siblings": ["c0.3"]}
    fails += expect("a replica behind", CLEAN, final, [1])

    # (2) an acknowledged write nobody superseded is gone
    hist = CLEAN + [rec(5, "put", "k5", 4.0, 4.1, value="c5.1", read=[])]
    fails += expect("acknowledged write lost", hist, final_of(
        {"k1": {"c0.2", "c1.2"}, "k2": set(), "k3": {"c3.1"}, "k4": set(), "k5": set()}), [2])
    # a plain SET that ended before the write began cannot have superseded it
    hist = CLEAN + [rec(5, "set", "k5", 4.0, 4.1, value="c5.1"),
                    rec(6, "set", "k5", 3.0, 3.5, value="c6.1")]
    fails += expect("write lost behind an earlier SET", hist, final_of(
        {"k1": {"c0.2", "c1.2"}, "k2": set(), "k3": {"c3.1"}, "k4": set(), "k5": {"c6.1"}}),
        [2])

    # (3) a value nobody wrote, and one read before it was written
    final = copy.deepcopy(CLEAN_FINAL)
    for r in final["keys"]["k1"]["replicas"].values():
        r["siblings"] = sorted(r["siblings"] + ["ghost"])
    fails += expect("value nobody wrote", CLEAN, final, [3])
    hist = copy.deepcopy(CLEAN)
    hist[4]["read"] = ["c0.2", "c1.2", "c9.9"]
    hist.append(rec(9, "put", "k1", 5.0, 5.1, ok=False, value="c9.9", read=[]))
    fails += expect("value read before it was written", hist, CLEAN_FINAL, [3])

    # (4) an acknowledged RING.DEL undone
    final = copy.deepcopy(CLEAN_FINAL)
    for r in final["keys"]["k2"]["replicas"].values():
        r["siblings"] = ["c0.3"]
    fails += expect("acknowledged delete undone", CLEAN, final, [4])

    # (5) more siblings than writers, and a sibling beside its superseder
    hist = copy.deepcopy(CLEAN)
    hist[4]["read"] = ["c0.1", "c0.2", "c1.1", "c1.2"]
    fails += expect("sibling beside the write that read it", hist, CLEAN_FINAL, [5])
    hist = CLEAN + [rec(7, "set", "k6", 6.0, 6.1, value="c7.1"),
                    rec(8, "get", "k6", 5.0, 5.9, read=["c7.1"]),
                    rec(9, "set", "k6", 6.2, 6.3, value="c9.1"),
                    rec(8, "get", "k6", 6.21, 6.25, read=["c7.1", "c9.1"])]
    hist[-1]["read_end"] = 6.1
    fails += expect("more siblings than writes begun", hist, final_of(
        {"k1": {"c0.2", "c1.2"}, "k2": set(), "k3": {"c3.1"}, "k4": set(), "k6": {"c9.1"}}),
        [3, 5])

    print("checker self-test: %s" % ("FAILED" if fails else "passed"))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
