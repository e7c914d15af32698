"""Benchmark: do verdicts survive an A/A test on this machine? Real runs, not a simulation
(tests/test_verdicts.py simulates): each repeat runs

1. ``infer --layouts naive,naive``: the same layout as A and as B, interleaved in one document;
2. two separate, identical ``infer`` runs, then ``compare`` of their documents;
3. ``infer --layouts 1x1,2x1`` (where the machine has 2 CPUs or more): a real difference,
   which should still be called "faster";

all at numaprobe's defaults unless told otherwise, and prints how often an A/A pair got a
firm verdict ("faster" or "slower"), with a 95 % Wilson interval, how often the real
difference was called, and how far separate runs' levels drift apart (the sd that compare's
--drift allows for). numaprobe's goal: no firm A/A verdict in at least 4 of 5 repeats.

    python bench/aa.py [--repeats 5] [--model encoder] [--duration S] [--rounds N]
                       [--layouts naive,one-per-node,cores-per-instance=1]
"""
import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

FIRM = ("faster", "slower")


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, mid - half), min(1.0, mid + half)


def run(*args) -> dict:
    quiet = [] if args[0] == "compare" else ["-q"]  # compare has no progress to silence
    r = subprocess.run([sys.executable, "-m", "numaprobe", *args, "--json", *quiet],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"numaprobe {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return json.loads(r.stdout)


def level(doc: dict) -> tuple[float, float]:
    """A document's level: the mean log throughput of its first layout's rounds, and the
    variance of that mean from the rounds' spread."""
    xs = [math.log(r["throughput"]) for r in doc["result"]["layouts"][0]["rounds"]
          if r["throughput"]]
    m = sum(xs) / len(xs)
    return m, sum((x - m) ** 2 for x in xs) / (len(xs) - 1) / len(xs)


def words_within(doc: dict) -> list[str]:
    return [d["vs_first"]["verdict"] for d in doc["result"]["layouts"] if d.get("vs_first")]


def words_across(doc: dict) -> list[str]:
    return [f["verdict"] for c in doc["result"]["comparisons"] for f in c["figures"]
            if f.get("family", "primary") == "primary"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model", default=None, help="default: infer's (the built-in encoder)")
    ap.add_argument("--duration", type=float, help="default: infer's")
    ap.add_argument("--rounds", type=int, help="default: infer's")
    ap.add_argument("--layouts", default=None,
                    help="layouts of the two separate runs (default: infer's)")
    args = ap.parse_args()
    common = [*(["--model", args.model] if args.model else []),
              *(["--duration", str(args.duration)] if args.duration else []),
              *(["--rounds", str(args.rounds)] if args.rounds else [])]
    import numaprobe
    two_cpus = len(numaprobe.read_topology().usable_cpus) >= 2
    within, across, real, noisy, levels = [], [], [], 0, []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats):
            w = words_within(run("infer", "--layouts", "naive,naive", *common))
            paths = []
            for side in "ab":
                doc = run("infer", *common, *(["--layouts", args.layouts] if args.layouts else []))
                paths.append(Path(tmp, f"{k}-{side}.json"))
                paths[-1].write_text(json.dumps(doc))
                levels.append(level(doc))
            a = words_across(run("compare", *map(str, paths)))
            r = words_within(run("infer", "--layouts", "1x1,2x1", *common)) if two_cpus else []
            within.append(w)
            across.append(a)
            real.append(r)
            noisy += sum(x == "noisy: rerun" for x in w + a + r)
            print(f"repeat {k + 1}: naive,naive {w}; separate runs compared {sorted(set(a))}; "
                  f"1x1 -> 2x1 {r}", flush=True)
    n = args.repeats
    for name, runs in (("within one document (naive,naive)", within),
                       ("across two documents (compare)", across)):
        firm = sum(any(x in FIRM for x in ws) for ws in runs)
        lo, hi = wilson(firm, n)
        print(f"A/A {name}: a firm verdict in {firm} of {n} repeats "
              f"({100 * firm / n:.0f} %, 95 % interval {100 * lo:.0f}-{100 * hi:.0f} %)")
    if two_cpus:
        called = sum(ws == ["faster"] for ws in real)
        lo, hi = wilson(called, n)
        print(f"real difference 1x1 -> 2x1 called faster in {called} of {n} repeats "
              f"({100 * lo:.0f}-{100 * hi:.0f} %)")
    print(f"'noisy: rerun' verdicts: {noisy} (windows where others took more than 5 % of the CPUs)")
    if len(levels) >= 3:
        m = [x for x, _ in levels]
        mean = sum(m) / len(m)
        between = sum((x - mean) ** 2 for x in m) / (len(m) - 1)
        inside = sum(v for _, v in levels) / len(levels)
        print(f"drift between separate runs: sd {100 * math.sqrt(max(0.0, between - inside)):.1f} %"
              f" of the first layout's throughput ({len(m)} documents; their rounds' own "
              f"spread taken out): compare --drift takes it")
    ok = all(sum(any(x in FIRM for x in ws) for ws in runs) <= n // 5 for runs in (within, across))
    print("goal (no firm A/A verdict in at least 4 of 5 repeats):", "met" if ok else "MISSED")


if __name__ == "__main__":
    main()
