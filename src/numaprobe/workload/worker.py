"""One instance of a layout: a worker process that places itself, then builds its engine
(engines/), then measures. Run by the driver as ``python -m numaprobe.workload.worker FD``.

Order matters: the worker pins itself and sets its memory policy *before* importing the
engine and building the model, because the weights and arenas are first written while the
model is built, by the thread that builds it, and the engine's threads inherit the creating
thread's CPU mask and memory policy. After the warm-up (so pools that start with the first
inference are there too) every thread's mask is read from /proc and the worker refuses to run
if one escaped its CPUs, whichever engine made it.

A precision other than f32, or a model that is a stand-in for another (``reference``: the f32
original of an int8 copy), is measured against f32 first: the reference is built at f32 with the same engine, run on the
same inputs and closed before the measured model is built, and its outputs compared
(engines.accuracy).

Protocol (one JSON object a line) on its own pipe, the inherited descriptor FD, so that
whatever the engine prints on stdout or stderr (OpenVINO logs) goes to the log and cannot
break it: the driver writes the configuration on stdin; the worker answers {"event": "ready",
...} after warming up, waits for {"start_ns": T, "end_ns": T2} (CLOCK_MONOTONIC, shared by all
processes), measures in that window and answers {"event": "result", ...}. On SIGTERM while
measuring it stops early and still answers, marked partial; before that (starting, warming up,
waiting for the start) it has nothing to report and ends at once, as it does when its stdin
closes. Failures are {"event": "error", "message": ...} and a non-zero exit.

With ``profile`` in the configuration the window is a profiling pass (infer --profile): one
inference at a time with the engine's profiler on, and the result carries the time spent in
each kernel type (Session.op_times); its speed is never compared.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time

from .. import _core, placement, system
from ..topology import format_list, parse_list
from . import engines, telemetry

_stop = False
_channel = sys.stdout  # the protocol's pipe (main() opens the descriptor it was given)


def _on_term(signum, frame):
    global _stop
    _stop = True


def _send(obj) -> None:
    _channel.write(json.dumps(obj) + "\n")
    _channel.flush()


def _reference(engine, cfg: dict, inst: dict, feeds: dict) -> list | None:
    """The f32 outputs to measure this instance against (None: nothing to check). The
    reference model is built, run once and closed before the measured one is built, so the
    two never hold memory together."""
    if not cfg.get("reference"):
        return None
    ref = engine.build(engines.Request.of(cfg["reference"], inst, precision="f32"))
    try:
        return ref.run(feeds)
    finally:
        ref.close()


def _escaped(threads: list[dict], cpus) -> str | None:
    """The first thread whose mask leaves ``cpus``, in words; None when all stay inside."""
    allowed = set(cpus)
    for t in threads:
        if not set(parse_list(t["cpus"])) <= allowed:
            return (f"thread {t['tid']} ({t['name']}) may run on CPUs {t['cpus']}, outside "
                    f"the instance's CPUs {format_list(cpus)}: the layout did not hold")
    return None


def main() -> int:
    global _channel
    # Until it is ready the worker has measured nothing: SIGTERM ends it at once, even in the
    # middle of a model build or warm-up in C, so a driver that stops waits for nothing.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides; it sends SIGTERM
    if len(sys.argv) > 1:  # the protocol's pipe, kept from anything the worker starts
        os.set_inheritable(int(sys.argv[1]), False)
        _channel = os.fdopen(int(sys.argv[1]), "w", buffering=1)
    line = sys.stdin.readline()
    if not line:
        return 0  # the driver went away before it sent the configuration
    cfg = json.loads(line)
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
        threads_before = len(system.tasks())
        engine = engines.get(inst.get("engine"))
        from .models import inputs, load_inputs, make_inputs, outputs
        if cfg.get("inputs"):  # the user's own (--inputs): instance k feeds sample k
            samples, _ = load_inputs(cfg["inputs"], inputs(cfg["model"]))
            pick = cfg["index"] % len(samples)
            feeds, fed = samples[pick], f"{os.path.basename(cfg['inputs'])}, sample {pick}"
        else:
            dims = {**(cfg["dims"] or {}), **({"batch": inst["batch"]} if inst.get("batch")
                                              else {})}
            feeds = make_inputs(inputs(cfg["model"]), dims, seed=cfg["index"])
            fed = f"generated, seed {cfg['index']}"
        reference = _reference(engine, cfg, inst, feeds)
        session = engine.build(engines.Request.of(cfg["model"], inst,
                                                  profile=bool(cfg.get("profile"))))
        for _ in range(cfg["warmup"]):
            session.submit(feeds, lambda end: None)
        session.wait()
        accuracy = None
        if reference is not None:
            accuracy = {"reference": f"{engine.name} f32",
                        "inputs": fed,
                        "outputs": engines.accuracy(reference, session.run(feeds),
                                                    outputs(cfg["model"]))}
        threads = system.threads()  # the real /proc, whatever $NUMAPROBE_SYSFS_ROOT says
        escaped = _escaped(threads, cpus) if inst["pin"] else None
        if escaped:
            _send({"event": "error", "message": escaped})
            return 3
        resolved = {**session.resolved(), "asked_precision": inst.get("precision", "f32"),
                    "threads_created": len(threads) - threads_before}
    except Exception as e:  # reported to the driver, which says which worker failed and why
        _send({"event": "error", "message": f"{type(e).__name__}: {e}"})
        return 2
    signal.signal(signal.SIGTERM, _on_term)  # from here on, a stop is reported (partial)
    _send({"event": "ready", "pid": os.getpid(), "threads": threads})

    go = sys.stdin.readline()
    if not go:
        return 0  # the driver went away or stopped before the start
    go = json.loads(go)
    start, end = go["start_ns"], go["end_ns"]
    while time.monotonic_ns() < start and not _stop:
        time.sleep(min(0.001, max(0, (start - time.monotonic_ns()) / 1e9)))
    before, cpu_before = telemetry.process_counters(), telemetry.thread_cpu_ns()
    perf = telemetry.PerfCounters()
    # (submitted at, done at), appended whole as each inference is reported finished: with
    # several in flight (streams), in any order.
    done: list[tuple[int, int]] = []

    def finished(at: int):
        return lambda end: done.append((at, end or time.monotonic_ns()))
    submitted = 0
    session.mark()  # a profile holds the window's inferences, not the warm-up's
    if cfg.get("profile"):  # one at a time, each timed kernel by kernel (infer --profile)
        while not _stop and (t0 := time.monotonic_ns()) < end:
            session.run(feeds)
            done.append((t0, time.monotonic_ns()))
    elif cfg["mode"] == "poisson":
        import random
        rng = random.Random(cfg["seed"] * 1000 + cfg["index"])
        rate = cfg["rate_per_instance"]
        arrival = start + int(rng.expovariate(rate) * 1e9)
        while arrival < end and not _stop:
            while (now := time.monotonic_ns()) < arrival and not _stop:
                time.sleep(min(0.0005, (arrival - now) / 1e9))
            session.submit(feeds, finished(arrival))  # waiting counts: latency from arrival
            arrival += int(rng.expovariate(rate) * 1e9)
    else:
        limit = cfg.get("count") or float("inf")
        while not _stop and submitted < limit:
            session.idle()  # the clock starts when the inference can, not while it queues
            t0 = time.monotonic_ns()
            if t0 >= end:
                break
            session.submit(feeds, finished(t0))
            submitted += 1
    session.wait()
    stopped = time.monotonic_ns()
    counted = perf.stop()
    profile = session.op_times() if cfg.get("profile") else None
    session.close()  # here, not at interpreter exit, where an engine's threads may deadlock
    done.sort()
    lat = [b - a for a, b in done]
    arrivals = [a - start for a, _ in done]
    after, cpu_after = telemetry.process_counters(), telemetry.thread_cpu_ns()
    window = (max(stopped, end) if cfg["mode"] == "poisson" and not _stop else stopped) - start
    _send({"event": "result", "index": cfg["index"], "partial": _stop,
           "latency_ns": lat, "start_offset_ns": arrivals, "window_ns": window,
           "counters": telemetry.delta(before, after),
           "memory": telemetry.pages_per_node(), "threads": len(cpu_after),
           "busy_threads": telemetry.busy_threads(cpu_before, cpu_after, window),
           "engine": resolved, "accuracy": accuracy, "profile": profile, "perf": counted})
    return 0


if __name__ == "__main__":
    sys.exit(main())
