"""Benchmark: does the quick check's speed cost precision? In one run, pairs alternate

1. ``python -m numaprobe`` (the quick check, budgeted, its sizes from what it measured), and
2. the full probes: ``numaprobe latency --repeat 3`` (default sizes: 8 x the reported cache)
   and ``numaprobe bandwidth --kernel read`` / ``--kernel copy_nt`` (4 x the cache),

order flipped every pair, and prints the quick check's figure over the probe's for local DRAM
latency and read and copy_nt bandwidth: the geometric mean of the per-pair ratios with its 95 %
interval, against the goals (latency within 3 %, bandwidth within 5 %): met only when the
whole interval lies within the goal, missed when it lies outside, else not proven. Every
process is a fresh interpreter, as a user runs them; the noise of other processes is
reported.

    python bench/quick_precision.py [--pairs 5]
"""
import argparse
import json
import math
import statistics
import subprocess
import sys

import numaprobe
from _common import Noisy, ratio_interval, spread

GOALS = {"latency": 0.03, "read": 0.05, "copy_nt": 0.05}


def run(*args) -> dict:
    r = subprocess.run([sys.executable, "-m", "numaprobe", *args, "--json", "-q"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"numaprobe {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return json.loads(r.stdout)


def local_cell(cells: list, key: str) -> float:
    """The first diagonal cell's median (node 0 to node 0 on a one-node machine)."""
    c = next(c for c in cells if c["cpu_node"] == c["mem_node"])
    return c[key]["median"]


def quick() -> dict:
    r = run()["result"]
    return {"latency": local_cell(r["latency"]["cells"], "ns"),
            **{k: local_cell(m["cells"], "gbs") for k, m in r["bandwidth"].items()}}


def probes() -> dict:
    lat = run("latency", "--repeat", "3")["result"]
    out = {"latency": local_cell(lat["cells"], "ns")}
    for k in ("read", "copy_nt"):
        out[k] = local_cell(run("bandwidth", "--kernel", k)["result"]["cells"], "gbs")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=5)
    args = ap.parse_args()
    noisy = Noisy(numaprobe.read_topology().usable_cpus)
    rows = []
    for k in range(args.pairs):
        first, second = (quick, probes) if k % 2 == 0 else (probes, quick)
        a = noisy.measure(first)
        b = noisy.measure(second)
        q, p = (a, b) if first is quick else (b, a)
        rows.append((q, p))
        print(f"pair {k + 1}: " + "; ".join(f"{f} quick {q[f]:.4g} probe {p[f]:.4g}"
                                           for f in GOALS), flush=True)
    words = []
    for f, goal in GOALS.items():
        ratios = [q[f] / p[f] for q, p in rows]
        lo, hi = ratio_interval(ratios)
        mid = math.exp(statistics.fmean(math.log(r) for r in ratios))
        word = judge(mid, lo, hi, goal)
        words.append(word)
        print(f"{f:<8} quick / probe {mid:.3f}x [{lo:.3f}, {hi:.3f}] over {len(ratios)} pairs "
              f"(goal within {100 * goal:g} %: {word}); quick "
              f"{spread([q[f] for q, _ in rows])}; probe {spread([p[f] for _, p in rows])}")
    print(f"noise meanwhile: {noisy.text()}")
    print("goal (the quick check's figures within 3 % and 5 % of the probes'):",
          "MISSED" if "MISSED" in words else "not proven" if "not proven" in words else "met")


def judge(mid: float, lo: float, hi: float, goal: float) -> str:
    """'met' only when the whole 95 % interval of the ratio lies within 1 +- goal; 'MISSED'
    when the interval lies outside it (the quick check differs by more than the goal);
    otherwise 'not proven': the pairs are too few or too noisy to tell."""
    if 1 - goal <= lo and hi <= 1 + goal:
        return "met"
    if hi < 1 - goal or lo > 1 + goal:
        return "MISSED"
    return "not proven"


if __name__ == "__main__":
    main()
