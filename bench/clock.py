"""Benchmark: numaprobe's clock against time.perf_counter_ns, side by side in one run.

Prints, over several alternating rounds (median and spread):
- the native read overhead of a serialised start/stop pair (ticks and ns), as kernels pay it;
- the cost of one read called from Python: numaprobe.clock.ticks() and time.perf_counter_ns(),
  and their ratio (numaprobe / perf_counter_ns: below 1.00 means numaprobe is cheaper);
- the agreement of the two independent calibrations and the declared frequency, if any.

    python bench/clock.py [--rounds 7]
"""
import argparse
import statistics
import sys
import time

from _common import spread
from numaprobe import clock


def per_call_ns(fn, n=200_000):
    t0 = time.perf_counter_ns()
    for _ in range(n):
        fn()
    return (time.perf_counter_ns() - t0) / n




def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    clk = clock.calibrate()
    nat_ticks, ours, theirs, agree = [], [], [], []
    for r in range(args.rounds):
        c = clock.calibrate(50_000_000)
        nat_ticks.append(c.overhead_ticks)
        agree.append(c.agreement * 1e6)
        # Alternate which goes first so drift and warm-up hit both alike.
        pair = [("ours", clock.ticks), ("theirs", time.perf_counter_ns)]
        for name, fn in (pair if r % 2 == 0 else pair[::-1]):
            (ours if name == "ours" else theirs).append(per_call_ns(fn))
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr, end="\r")
    print(f"clock: {clk.kind}, {clk.hz / 1e6:.3f} MHz, invariant {clk.invariant}, "
          f"declared {clk.declared_hz / 1e6 if clk.declared_hz else 'none'}")
    print(f"native start/stop pair (ticks):      {spread(nat_ticks)}")
    print(f"native start/stop pair (ns):         {spread([t / clk.ticks_per_ns for t in nat_ticks])}")
    print(f"calibration disagreement (ppm):      {spread(agree)}")
    print(f"numaprobe.clock.ticks() from Python: {spread(ours)}  ns/call")
    print(f"time.perf_counter_ns() from Python:  {spread(theirs)}  ns/call")
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"ratio numaprobe / perf_counter_ns (Python call): {ratio:.2f}x")
    print(f"native pair vs perf_counter_ns call: "
          f"{statistics.median(nat_ticks) / clk.ticks_per_ns / statistics.median(theirs):.2f}x")


if __name__ == "__main__":
    main()
