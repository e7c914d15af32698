"""One instance of a layout: a worker process that places itself, then builds its ONNX
Runtime session, then measures. Run by the driver as ``python -m numaprobe.workload.worker``.

Order matters: the worker pins itself and sets its memory policy *before* importing ONNX
Runtime and building the session, because the weights and arenas are first written while the
session is built, by the thread that builds it, and ONNX Runtime's threads inherit the
creating thread's CPU mask and memory policy. After the build every thread's mask is read from
/proc and the worker refuses to run if one escaped its CPUs.

Protocol (one JSON object a line): the driver writes the configuration on stdin; the worker
answers {"event": "ready", ...} after warming up, waits for {"start_ns": T, "end_ns": T2}
(CLOCK_MONOTONIC, shared by all processes), measures in that window and answers
{"event": "result", ...}. On SIGTERM it stops early and still answers, marked partial.
Failures are {"event": "error", "message": ...} and a non-zero exit.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time

from .. import _core, placement, system
from ..topology import format_list, parse_list
from . import telemetry

_stop = False


def _on_term(signum, frame):
    global _stop
    _stop = True


def _send(obj) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _session(cfg: dict, inst: dict):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = inst["intra"]
    so.inter_op_num_threads = inst["inter"]
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if inst["spin"] else "0")
    cpus = parse_list(inst["cpus"])
    if inst["pin"] and inst["intra"] > 1:
        # One entry per thread beyond the caller; ONNX Runtime counts CPUs from 1.
        so.add_session_config_entry("session.intra_op_thread_affinities",
                                    ";".join(str(c + 1) for c in cpus[1:inst["intra"]]))
    return ort.InferenceSession(cfg["model"], so, providers=["CPUExecutionProvider"])


def main() -> int:
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides; it sends SIGTERM
    cfg = json.loads(sys.stdin.readline())
    # A driver that is killed (even by SIGKILL) takes its workers with it: nobody would read
    # what they measure, and they would hold the CPUs for the rest of --duration.
    _core.die_with_parent(signal.SIGKILL)
    if os.getppid() != cfg.get("parent", os.getppid()):
        return 1  # the driver died before the line above
    inst = cfg["instance"]
    cpus = parse_list(inst["cpus"])
    try:
        if inst["pin"]:
            placement.pin(cpus, process=True)
        if inst["policy"]:
            placement.membind(parse_list(inst["nodes"]), inst["policy"])
        sess = _session(cfg, inst)
        if inst["pin"]:
            placement.pin(cpus[:1])  # the caller is the intra-op pool's first thread
        threads = system.threads()  # the real /proc, whatever $NUMAPROBE_SYSFS_ROOT says
        if inst["pin"]:
            allowed = set(cpus)
            for t in threads:
                if not set(parse_list(t["cpus"])) <= allowed:
                    _send({"event": "error", "message":
                           f"thread {t['tid']} ({t['name']}) may run on CPUs {t['cpus']}, outside "
                           f"the instance's CPUs {format_list(cpus)}: the layout did not hold"})
                    return 3
        from .models import inputs, make_inputs
        feeds = make_inputs(inputs(cfg["model"]), cfg["dims"], seed=cfg["index"])
        for _ in range(cfg["warmup"]):
            sess.run(None, feeds)
    except Exception as e:  # reported to the driver, which says which worker failed and why
        _send({"event": "error", "message": f"{type(e).__name__}: {e}"})
        return 2
    _send({"event": "ready", "pid": os.getpid(), "threads": threads})

    go = sys.stdin.readline()
    if not go:
        return 0  # the driver went away before the start
    go = json.loads(go)
    start, end = go["start_ns"], go["end_ns"]
    while time.monotonic_ns() < start and not _stop:
        time.sleep(min(0.001, max(0, (start - time.monotonic_ns()) / 1e9)))
    before, cpu_before = telemetry.process_counters(), telemetry.thread_cpu_ns()
    lat, arrivals = [], []
    if cfg["mode"] == "poisson":
        import random
        rng = random.Random(cfg["seed"] * 1000 + cfg["index"])
        rate = cfg["rate_per_instance"]
        arrival = start + int(rng.expovariate(rate) * 1e9)
        while arrival < end and not _stop:
            while (now := time.monotonic_ns()) < arrival and not _stop:
                time.sleep(min(0.0005, (arrival - now) / 1e9))
            sess.run(None, feeds)
            done = time.monotonic_ns()
            lat.append(done - arrival)  # waiting counts: latency is from the arrival
            arrivals.append(arrival - start)
            arrival += int(rng.expovariate(rate) * 1e9)
    else:
        limit = cfg.get("count") or float("inf")
        while not _stop and len(lat) < limit:
            t0 = time.monotonic_ns()
            if t0 >= end:
                break
            sess.run(None, feeds)
            t1 = time.monotonic_ns()
            lat.append(t1 - t0)
            arrivals.append(t0 - start)
    stopped = time.monotonic_ns()
    after, cpu_after = telemetry.process_counters(), telemetry.thread_cpu_ns()
    window = (max(stopped, end) if cfg["mode"] == "poisson" and not _stop else stopped) - start
    _send({"event": "result", "index": cfg["index"], "partial": _stop,
           "latency_ns": lat, "start_offset_ns": arrivals, "window_ns": window,
           "counters": telemetry.delta(before, after),
           "memory": telemetry.pages_per_node(), "threads": len(cpu_after),
           "busy_threads": telemetry.busy_threads(cpu_before, cpu_after, window)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
