"""Benchmark: wall time of the quick check, ``python -m numaprobe -q``, against its goal.

Runs the quick check several times as a user would (a fresh interpreter each time, output
discarded) and prints the wall time of each run, median, min, max and CV, the goal (a median
of at most 4 s on a 2-core machine) and how busy the machine was with other work meanwhile
(the quick check's own CPU time is not counted as other work).

    python bench/quick_check.py [--runs 5] [--goal 4]
"""
import argparse
import resource
import statistics
import subprocess
import sys
import time

import numaprobe
from numaprobe.noise import NoiseMeter


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--goal", type=float, default=4.0, help="seconds (default 4: the goal on a 2-core machine)")
    args = ap.parse_args()
    topo = numaprobe.read_topology()
    print(f"quick check wall time, `{sys.executable} -m numaprobe -q`: {topo.settings.cpu_model}, "
          f"nodes {numaprobe.format_list(topo.node_ids)}, usable CPUs "
          f"{numaprobe.format_list(topo.usable_cpus)}", flush=True)
    times, child = [], 0.0
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the runs' own CPU time, for the report
    with NoiseMeter(topo.usable_cpus) as meter:
        for r in range(args.runs):
            print(f"run {r + 1}/{args.runs}", file=sys.stderr, end="\r")
            t0 = time.perf_counter()
            rc = subprocess.run([sys.executable, "-m", "numaprobe", "-q"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL).returncode
            times.append(time.perf_counter() - t0)
            if rc != 0:
                sys.exit(f"python -m numaprobe -q exited with {rc}")
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    child = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
    noise = meter.result  # the runs are waited-for children: counted as ours, not foreign
    med = statistics.median(times)
    print(f"runs (s): {', '.join(f'{t:.2f}' for t in times)}")
    print(f"wall time: median {med:.2f} s  min {min(times):.2f}  max {max(times):.2f}  "
          f"cv {statistics.pstdev(times) / statistics.fmean(times) * 100:.1f} %  "
          f"(quick check CPU time {child / args.runs:.2f} s a run)")
    verdict = "meets" if med <= args.goal else "MISSES"
    print(f"ratio median / goal {args.goal:g} s: {med / args.goal:.2f}x  {verdict} the goal (a median of at most {args.goal:g} s)")
    print(f"noise during the runs: other processes {100 * noise.foreign_fraction:.1f} %, "
          f"steal {100 * noise.steal_fraction:.1f} %")


if __name__ == "__main__":
    main()
