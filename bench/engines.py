"""Benchmark: numaprobe's OpenVINO worker against OpenVINO's own benchmark_app, on the same
model, CPUs, streams, threads and precision, alternating run by run; then numaprobe's best
layout per engine x precision against naive ONNX Runtime.

Part 1 prints, per configuration, both tools' throughput and p50 and their ratios (median over
the pairs). Goal: numaprobe >= 0.97x benchmark_app's throughput, p50 within 5 %. Both run
pinned to the same CPUs (benchmark_app under taskset, with -pin YES), with explicit streams
and threads (-hint none), for the same seconds. What differs by design: numaprobe starts a
worker process per run and feeds generated inputs, benchmark_app random ones.

Part 2 runs `numaprobe infer` with the layouts naive, 1xN and Nx1 under every engine and
every precision this CPU runs fast, and prints each against naive ONNX Runtime f32.

    python bench/engines.py [--model mlp] [--duration 10] [--pairs 3] [--skip-ladder]
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

import numaprobe
from _common import ratio_interval
from numaprobe.errors import UsageError
from numaprobe.topology import format_list
from numaprobe.workload import engines, models

THROUGHPUT = re.compile(r"Throughput:\s+([0-9.]+)\s+FPS")
MEDIAN = re.compile(r"Median:\s+([0-9.]+)\s+ms")


def numaprobe_run(model, cpus, streams, threads, precision, duration, tmp):
    layout = {"name": f"ov {streams}s{threads}t", "instances": [
        {"cpus": format_list(cpus), "engine": "openvino", "streams": streams, "intra": threads,
         "precision": precision}]}
    path = os.path.join(tmp, "layout.json")
    with open(path, "w") as f:
        json.dump(layout, f)
    r = subprocess.run([sys.executable, "-m", "numaprobe", "infer", "--model", model,
                        "--instances", path, "--duration", str(duration), "--rounds", "1",
                        "--allow-slow-precision", "--json", "-q"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"numaprobe infer failed: {r.stderr.strip()}")
    d = json.loads(r.stdout)["result"]["layouts"][0]
    return d["throughput"]["per_s"], d["latency"]["p50"]["ms"], d["settings"][0]


def benchmark_app(tool, path, shape, cpus, streams, threads, precision, duration):
    r = subprocess.run(["taskset", "-c", format_list(cpus), tool, "-m", path, "-d", "CPU",
                        "-hint", "none", "-nstreams", str(streams), "-nthreads", str(threads),
                        "-infer_precision", precision, "-pin", "YES", "-t", str(max(1, round(duration))),
                        "-data_shape", shape], capture_output=True, text=True)
    tput, med = THROUGHPUT.search(r.stdout), MEDIAN.search(r.stdout)
    if r.returncode != 0 or not tput or not med:
        sys.exit(f"benchmark_app failed: {(r.stderr or r.stdout).strip()[-800:]}")
    return float(tput.group(1)), float(med.group(1))


def versus_benchmark_app(args, topo, tmp):
    tool = shutil.which("benchmark_app") or os.path.join(os.path.dirname(sys.executable),
                                                         "benchmark_app")
    if not os.path.exists(tool):
        sys.exit("benchmark_app not found: pip install openvino (it ships the tool)")
    ref = models.resolve(args.model)
    feeds = models.make_inputs(models.inputs(ref.path), {"seq": 128} if args.model == "encoder"
                               else {})
    shape = ",".join(f"{k}[{','.join(map(str, v.shape))}]" for k, v in feeds.items())
    cpus = list(topo.usable_cpus)
    n = len(cpus)
    configs = [(1, n), (n, n)] if n > 1 else [(1, 1)]
    print(f"part 1: {args.model} on CPUs {format_list(cpus)}, {args.pairs} pairs x "
          f"{args.duration:g} s, f32, {topo.settings.cpu_model}")
    print(f"{'streams x threads':<18}{'numaprobe inf/s':>16}{'bench_app inf/s':>16}{'ratio':>7}"
          f"{'numaprobe p50':>15}{'bench_app p50':>15}{'ratio':>7}")
    for streams, threads in configs:
        ours, theirs = [], []
        for k in range(args.pairs):  # alternating, the order swapped pair by pair
            runs = [lambda: ours.append(numaprobe_run(args.model, cpus, streams, threads, "f32",
                                                      args.duration, tmp)),
                    lambda: theirs.append(benchmark_app(tool, ref.path, shape, cpus, streams,
                                                        threads, "f32", args.duration))]
            for run in (runs if k % 2 == 0 else runs[::-1]):
                run()
        t_ours = statistics.median(t for t, _, _ in ours)
        t_theirs = statistics.median(t for t, _ in theirs)
        p_ours = statistics.median(p for _, p, _ in ours)
        p_theirs = statistics.median(p for _, p in theirs)
        print(f"{f'{streams} x {threads}':<18}{t_ours:16.1f}{t_theirs:16.1f}"
              f"{t_ours / t_theirs:6.3f}x{p_ours:13.2f}ms{p_theirs:13.2f}ms"
              f"{p_ours / p_theirs:6.3f}x")
        print(f"    numaprobe resolved: {engines.describe(ours[-1][2])}")
        ratios = [a[0] / b[0] for a, b in zip(ours, theirs)]
        lo, hi = ratio_interval(ratios)
        print("    per pair, throughput numaprobe/benchmark_app: " + ", ".join(
            f"{a[0]:.1f}/{b[0]:.1f}" for a, b in zip(ours, theirs))
              + f"; ratio 95 % interval over pairs [{lo:.3f}, {hi:.3f}]: goal >= 0.97 "
              + ("met" if lo >= 0.97 else "missed" if hi < 0.97 else
                 "not resolved at this spread (more --pairs)"))


def fast(precision, topo) -> bool:
    """Whether this CPU has units for ``precision`` (engines.check_cpu would not refuse it)."""
    try:
        engines.check_cpu(precision, topo)
        return True
    except UsageError:
        return False


def ladder(args, topo):
    n = len(topo.usable_cpus)
    layouts = ",".join(dict.fromkeys(["naive", f"1x{n}", f"{n}x1"]))
    precisions = ["f32", "int8"] + [p for p in ("bf16",) if fast(p, topo)]
    r = subprocess.run([sys.executable, "-m", "numaprobe", "infer", "--model", args.model,
                        "--layouts", layouts, "--engines", "ort,openvino", "--precision",
                        ",".join(precisions), "--duration", str(args.duration / 2),
                        "--rounds", "3", "--json", "-q"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"numaprobe infer failed: {r.stderr.strip()}")
    res = json.loads(r.stdout)["result"]
    base = res["layouts"][0]
    print(f"\npart 2: {args.model}, layouts {layouts} x engines ort, openvino x precisions "
          f"{', '.join(precisions)}, 3 rounds x {args.duration / 2:g} s")
    print(f"{'engine precision':<18}{'best layout':<18}{'inf/s':>9}{'vs naive ort f32':>18}"
          f"  {'cosine vs f32':>13}")
    best = {}
    for d in res["layouts"]:
        s = d["settings"][0] if d["settings"] else {}
        key = (s.get("engine"), s.get("asked_precision"))
        if key not in best or d["throughput"]["per_s"] > best[key]["throughput"]["per_s"]:
            best[key] = d
    for (engine, precision), d in best.items():
        cos = min((o["cosine"] for a in d["accuracy"] for o in a["outputs"]), default=None)
        print(f"{f'{engine} {precision}':<18}{d['layout']['name']:<18}"
              f"{d['throughput']['per_s']:9.1f}"
              f"{d['throughput']['per_s'] / base['throughput']['per_s']:17.2f}x"
              f"  {'' if cos is None else f'{cos:.6f}':>13}")
    print("(the best of several layouts is picked after the fact: its ratio is optimistic)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--duration", type=int, default=10, help="seconds per run (whole: benchmark_app takes no fraction)")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--skip-ladder", action="store_true")
    args = ap.parse_args()
    topo = numaprobe.read_topology()
    with tempfile.TemporaryDirectory() as tmp:
        versus_benchmark_app(args, topo, tmp)
    if not args.skip_ladder:
        ladder(args, topo)


if __name__ == "__main__":
    main()
