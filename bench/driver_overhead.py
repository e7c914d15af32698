"""Benchmark: what numaprobe's inference driver adds per inference, against a bare
`session.run` loop on the same tiny model, the same CPU and the same thread settings,
alternating rounds.

numaprobe: one worker (1 instance x 1 thread, pinned), single-stream mode; per-inference cost =
its measured window / inferences. Bare: a subprocess pinned to the same CPU that builds the
same session and times `for _ in range(n): sess.run(...)`. Goal: at most 5 us of difference.

    python bench/driver_overhead.py [--rounds 5] [--duration 3]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np

import numaprobe
from numaprobe.noise import NoiseMeter
from numaprobe.workload import driver
from numaprobe.workload.layout import Instance, Layout

BARE = r"""
import json, os, sys, time
import numpy as np, onnxruntime as ort
os.sched_setaffinity(0, {int(sys.argv[2])})
so = ort.SessionOptions(); so.intra_op_num_threads = 1; so.inter_op_num_threads = 1
so.add_session_config_entry("session.intra_op.allow_spinning", "1")
sess = ort.InferenceSession(sys.argv[1], so, providers=["CPUExecutionProvider"])
feeds = {"x": np.random.default_rng(0).standard_normal((1, 64)).astype(np.float32)}
for _ in range(50): sess.run(None, feeds)
seconds = float(sys.argv[3]); n = 0; t0 = time.monotonic_ns()
while time.monotonic_ns() - t0 < seconds * 1e9:
    for _ in range(100): sess.run(None, feeds)
    n += 100
print(json.dumps({"us": (time.monotonic_ns() - t0) / n / 1e3}))
"""


def tiny_model(path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32), "w")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "tiny",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=3.0)
    args = ap.parse_args()
    topo = numaprobe.read_topology()
    cpu = topo.usable_cpus[-1]
    print(f"machine: {topo.settings.cpu_model}, CPU {cpu} for both; tiny model (64x64 MatMul)")
    ours, bare = [], []
    with tempfile.TemporaryDirectory() as d, NoiseMeter(topo.usable_cpus) as meter:
        path = os.path.join(d, "tiny.onnx")
        tiny_model(path)
        node = topo.node_of(cpu) if topo.node_of(cpu) in topo.usable_mems else topo.usable_mems[0]
        layout = Layout("1x1", (Instance(cpus=(cpu,), policy="bind", nodes=(node,), intra=1),))
        for r in range(args.rounds):
            order = ("ours", "bare") if r % 2 == 0 else ("bare", "ours")
            for which in order:
                if which == "ours":
                    run = driver.run_layout(path, layout, mode="single", duration=args.duration,
                                            warmup=50, dims={})
                    i = run.instances[0]
                    ours.append(i.window_ns / i.count / 1e3)
                else:
                    out = subprocess.run([sys.executable, "-c", BARE, path, str(cpu), str(args.duration)],
                                         capture_output=True, text=True, check=True)
                    bare.append(json.loads(out.stdout)["us"])
            print(f"round {r + 1}: numaprobe {ours[-1]:.2f} us, bare {bare[-1]:.2f} us", file=sys.stderr)
    noise = meter.result
    mo, mb = statistics.median(ours), statistics.median(bare)
    print(f"numaprobe single-stream: median {mo:.2f} us/inference (min {min(ours):.2f}, max {max(ours):.2f})")
    print(f"bare session.run loop:   median {mb:.2f} us/inference (min {min(bare):.2f}, max {max(bare):.2f})")
    print(f"difference: {mo - mb:+.2f} us per inference (goal <= 5 us): "
          f"{'met' if mo - mb <= 5 else 'NOT met'}; ratio {mo / mb:.3f}x")
    print(f"noise: other processes {100 * noise.foreign_fraction:.1f} % of the CPUs, "
          f"steal {100 * noise.steal_fraction:.1f} %")


if __name__ == "__main__":
    main()
