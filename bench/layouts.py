"""Benchmark: the built-in encoder (MiniLM-L6-shaped, 128 tokens) under three layouts of this
machine's CPUs, in interleaved rounds: `naive` (ONNX Runtime's defaults), one process x all
CPUs pinned (1xN), and N processes x 1 thread (Nx1). Prints throughput and p50 latency with
intervals and each layout's ratio to naive, as `numaprobe infer` computes them.

On the 2-core development VM, 2 x 1 reached about 1.95x one core's throughput by hand and
1 x 2 about 1.7x with lower latency: the tool must show this trade-off on its own.

    python bench/layouts.py [--duration 10] [--rounds 3]
"""
import argparse
import json
import subprocess
import sys

import numaprobe


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    n = len(numaprobe.read_topology().usable_cpus)
    layouts = f"1x1,naive,1x{n},{n}x1"
    r = subprocess.run([sys.executable, "-m", "numaprobe", "infer", "--layouts", layouts,
                        "--duration", str(args.duration), "--rounds", str(args.rounds), "--json", "-q"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(r.stderr.strip())
    doc = json.loads(r.stdout)
    res = doc["result"]
    one = res["layouts"][0]["throughput"]["per_s"]
    print(f"encoder, {args.rounds} rounds x {args.duration:g} s, {doc['machine']['cpu_model']}")
    print(f"{'layout':<8}{'inf/s':>8} {'95% CI':>14}{'vs 1 core':>10}{'p50 ms':>9} {'95% CI':>15}  vs first (1x1)")
    for d in res["layouts"]:
        t, p = d["throughput"], d["latency"]["p50"]
        vs = d.get("vs_first", {})
        print(f"{d['layout']['name']:<8}{t['per_s']:8.2f} [{t['ci'][0]:5.2f},{t['ci'][1]:5.2f}]"
              f"{t['per_s'] / one:9.2f}x{p['ms']:9.2f} [{p['ci'][0]:6.2f},{p['ci'][1]:6.2f}]  "
              f"{vs.get('verdict', '(baseline)')}")
    for w in doc["warnings"]:
        print(f"warning: {w}")


if __name__ == "__main__":
    main()
