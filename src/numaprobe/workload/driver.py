"""The inference driver: runs a model under layouts, one worker process per instance, all
started together; measures latency and throughput; keeps what was measured when something goes
wrong.

Modes: ``closed`` (every instance back to back: throughput), ``single`` (one instance at a
time, back to back: latency without interference), ``poisson`` (open loop, arrivals at a
target total rate, latency counted from each arrival).

Faults: a worker that fails or dies ends the others (SIGTERM; they report what they measured,
marked partial); Ctrl-C does the same; no worker outlives the driver.
"""
from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import UsageError
from .. import placement, stats, system
from ..noise import Noise
from ..topology import Topology, format_list, parse_list
from . import telemetry
from .layout import Layout

READY_TIMEOUT_S = 600  # building a session of a large model in an emulated VM is slow


class WorkerFailed(RuntimeError):
    """A worker could not start or died; ``partial`` holds what the others measured, and
    ``document`` (from infer.run_infer) the result document written from it."""

    def __init__(self, message: str, partial: "LayoutRun | None" = None,
                 document: dict | None = None):
        super().__init__(message)
        self.partial = partial
        self.document = document


class Interrupted(KeyboardInterrupt):
    """Ctrl-C: ``partial`` and ``document`` as for WorkerFailed."""

    def __init__(self, partial: "LayoutRun | None" = None, document: dict | None = None):
        super().__init__("interrupted")
        self.partial = partial
        self.document = document


@dataclass
class InstanceRun:
    index: int
    instance: dict
    latency_ns: np.ndarray
    start_offset_ns: np.ndarray
    window_ns: int
    counters: dict
    memory: dict            # node -> bytes resident there
    threads: int            # all of the worker's threads at the end
    partial: bool
    busy_threads: int | None = None   # those that ran >= 10 % of the window
    engine: dict | None = None        # the settings its engine resolved (engines.RESOLVED)
    accuracy: dict | None = None      # its outputs against f32 (worker.py), where checked
    profile: dict | None = None       # ns per kernel type, in a profiling pass (worker.py)
    perf: dict | None = None          # perf counters: counts and refusals (telemetry.py)

    @property
    def count(self) -> int:
        return int(self.latency_ns.size)

    @property
    def throughput(self) -> float:
        return self.count / (self.window_ns / 1e9) if self.window_ns > 0 else 0.0


@dataclass
class LayoutRun:
    layout: Layout
    mode: str
    duration: float
    instances: list[InstanceRun]
    machine: dict
    noise: Noise | None
    failures: list[str] = field(default_factory=list)
    rounds: list["LayoutRun"] = field(default_factory=list)  # a merged run's rounds, in order

    @property
    def partial(self) -> bool:
        return bool(self.failures) or any(i.partial for i in self.instances)

    @property
    def latencies(self) -> np.ndarray:
        return np.concatenate([i.latency_ns for i in self.instances]) if self.instances else np.array([])

    @property
    def throughput(self) -> float:
        if self.mode == "single":  # instances took turns: their rates do not add up
            return float(np.mean([i.throughput for i in self.instances])) if self.instances else 0.0
        return sum(i.throughput for i in self.instances)

    def throughput_bins(self, bins: int = 10) -> np.ndarray:
        """Total throughput in each tenth of the window: samples for an interval."""
        if not self.instances:
            return np.array([])
        win = max(i.window_ns for i in self.instances)
        edges = np.linspace(0, win, bins + 1)
        per = [np.histogram(i.start_offset_ns, edges)[0] for i in self.instances]
        total = np.sum(per, axis=0) if self.mode != "single" else np.mean(per, axis=0)
        return total / (win / bins / 1e9)

    @property
    def cpu_s(self) -> float:
        return sum(i.counters["cpu_s"] for i in self.instances)


def _spawn(cfg: dict, log, topology: Topology | None) -> subprocess.Popen:
    """Starts a worker already placed: it inherits the CPUs and memory policy from the fork,
    so even the interpreter's own memory lands on the instance's node. The worker's stdout
    and stderr go to its log (engines print there); what it tells the driver comes on a pipe
    of its own, which the returned process carries as its ``stdout``: the one place the
    driver reads it from."""
    inst = cfg["instance"]
    cpus = parse_list(inst["cpus"]) if inst["pin"] else None
    nodes = parse_list(inst["nodes"]) if inst["policy"] else None
    read, write = os.pipe()
    try:
        with placement.bound(cpus, nodes, inst["policy"] or "bind", topology=topology):
            p = subprocess.Popen([sys.executable, "-m", "numaprobe.workload.worker", str(write)],
                                 stdin=subprocess.PIPE, stdout=log, stderr=log, text=True,
                                 bufsize=1, pass_fds=(write,),
                                 start_new_session=True)  # Ctrl-C reaches the driver only
    except BaseException:
        os.close(read)
        raise
    finally:
        os.close(write)  # the worker holds its end; EOF here means it is gone
    p.stdout = os.fdopen(read, "r", buffering=1)
    p.stdin.write(json.dumps({**cfg, "parent": os.getpid()}) + "\n")
    p.stdin.flush()
    return p


def _describe_exit(p: subprocess.Popen) -> str:
    rc = p.poll()
    if rc is None:
        return "stopped answering"
    if rc < 0:
        name = signal.Signals(-rc).name
        hint = " (out of memory?)" if -rc == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with status {rc}"


MAX_DURATION_S = 86400.0  # a day: a longer window is a mistake (and far longer, an overflow)
MAX_RATE = 1e9            # per second: arrivals are timed in nanoseconds, one each at most


def _positive(value, limit: float) -> bool:
    """A number in (0, limit] (so not NaN or infinity); not a bool, though Python counts one."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and 0 < value <= limit)


def check_options(*, mode: str, duration, warmup, rate) -> None:
    """Refuses, before any worker starts, what a run cannot use: an unknown mode, a duration
    or rate that is not a finite positive number (infinity would overflow once workers are
    up), a warm-up that is not a whole number >= 0, and poisson without a rate."""
    if mode not in ("closed", "single", "poisson"):
        raise UsageError(f"unknown mode {mode!r}; modes: closed, single, poisson")
    if not _positive(duration, MAX_DURATION_S):
        raise UsageError(f"duration must be a number of seconds > 0 and at most "
                         f"{MAX_DURATION_S:g}, got {duration!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise UsageError(f"warmup must be a whole number of inferences >= 0, got {warmup!r}")
    if rate is not None and not _positive(rate, MAX_RATE):
        raise UsageError(f"rate must be a number of inferences per second > 0 and at most "
                         f"{MAX_RATE:g}, got {rate!r}")
    if mode == "poisson" and rate is None:
        raise UsageError("poisson mode needs a target rate > 0 (inferences per second, --rate)")


def run_layout(model: str, layout: Layout, *, mode: str = "closed", duration: float = 10.0,
               warmup: int = 5, dims: dict | None = None, rate: float | None = None,
               count: int | None = None, seed: int = 0, progress=None,
               topology: Topology | None = None, check_accuracy: bool = True,
               reference: str | None = None, variants: dict | None = None,
               inputs: str | None = None, profile: bool = False) -> LayoutRun:
    """Runs ``model`` (a path) under ``layout``; returns what was measured. With
    ``check_accuracy``, the first instance of each engine and precision other than f32 also
    measures its outputs against f32 (InstanceRun.accuracy), as every instance does against
    ``reference`` (a path; default the model itself) when that is another model.
    ``variants``: the file an instance of a precision runs instead ({"int8": the int8 copy},
    checked against ``model``); ``inputs``: an .npz file of real inputs (models.load_inputs),
    instance k feeding its sample k (default: inputs generated with seed k). ``profile``:
    a profiling pass (worker.py): InstanceRun.profile holds each kernel type's time."""
    check_options(mode=mode, duration=duration, warmup=warmup, rate=rate)
    n = len(layout.instances)
    procs: list[subprocess.Popen] = []
    logs = []
    results: dict[int, dict] = {}
    failures: list[str] = []
    sel = selectors.DefaultSelector()
    checked = set()
    try:
        for k, inst in enumerate(layout.instances):
            d = inst.to_dict()
            kind = (d["engine"], d["precision"])
            runs = (variants or {}).get(d["precision"], model)
            check = check_accuracy and kind not in checked and (
                d["precision"] != "f32" or reference not in (None, model) or runs != model)
            if check:
                checked.add(kind)
            cfg = {"model": runs, "instance": d, "mode": mode, "index": k, "inputs": inputs,
                   "profile": profile,
                   "dims": dims or {}, "warmup": warmup, "seed": seed, "count": count,
                   "rate_per_instance": (rate / n) if rate else None,
                   "reference": (reference or model) if check else None}
            log = tempfile.TemporaryFile(mode="w+")
            logs.append(log)
            procs.append(_spawn(cfg, log, topology))
            sel.register(procs[-1].stdout, selectors.EVENT_READ, k)
        _collect(sel, procs, logs, layout, "ready", time.monotonic() + READY_TIMEOUT_S,
                 failures, progress, f"{layout.name}: starting {n} worker(s)")
        if failures:
            raise WorkerFailed(failures[0])
        own0 = _own_cpu_s(procs)
        machine0, t0 = telemetry.Machine.now(), time.monotonic()
        start = time.monotonic_ns() + 100_000_000
        span = int(duration * 1e9)
        for k, p in enumerate(procs):
            s = start + (k * (span + 50_000_000) if mode == "single" else 0)
            p.stdin.write(json.dumps({"start_ns": s, "end_ns": s + span}) + "\n")
            p.stdin.flush()
        total = duration * (n if mode == "single" else 1)
        results = _collect(sel, procs, logs, layout, "result", time.monotonic() + total + 120,
                           failures, progress, f"{layout.name}: measuring {total:.0f} s", total)
        if failures:  # stop the others; what they measured comes back marked partial
            raise WorkerFailed(failures[0])
        seconds = time.monotonic() - t0
        machine = telemetry.Machine.now().since(machine0, seconds)
        own = _own_cpu_s(procs) - own0
    except KeyboardInterrupt:
        results.update(_stop_all(sel, procs, logs, failures))
        raise Interrupted(_assemble(layout, mode, duration, results, {}, None, failures))
    except WorkerFailed as e:
        results.update(_stop_all(sel, procs, logs, failures))
        e.partial = _assemble(layout, mode, duration, results, {}, None, failures)
        raise
    finally:
        _reap(procs)
        for log in logs:
            log.close()
    foreign = max(0.0, machine["busy_cpu_s"] - own)
    ncpu = len(machine["cpu_utilisation"]) or 1
    noise = Noise(seconds=seconds, cpus=ncpu, foreign=foreign, steal=machine["steal_cpu_s"],
                  own=own)  # busy excludes steal (system.CpuTimes): not foreign work
    return _assemble(layout, mode, duration, results, machine, noise, failures)


def _own_cpu_s(procs) -> float:
    """CPU seconds used so far by the workers and by this driver: what the machine's busy
    time holds of ours, read over the same interval as the machine's (a worker's in-window
    counters leave out its wait for the start, its reading of counters and its exit, and
    a short window then looked noisy: 4-8 % "other processes" at 0.5 s on an idle machine).
    A worker that has exited but not been reaped still shows its times."""
    ticks = 0
    for p in procs:
        try:
            st = system.pid_stat(p.pid)
            ticks += st["utime"] + st["stime"]
        except (OSError, ValueError, KeyError):
            continue
    me = os.times()
    return ticks / system.HZ + me.user + me.system


def _collect(sel, procs, logs, layout, event, deadline, failures, progress, what,
             expected_s=None):
    """Reads one `event` line from every worker; records failures (which stop the wait)."""
    got: dict[int, dict] = {}
    t0 = time.monotonic()
    while len(got) + len(failures) < len(procs) and not failures:
        timeout = deadline - time.monotonic()
        if timeout <= 0:
            missing = [k for k in range(len(procs)) if k not in got]
            failures.append(f"worker {missing[0]} did not answer in time ({what})")
            break
        if progress:
            frac = (time.monotonic() - t0) / expected_s if expected_s else None
            progress(what, frac)
        for key, _ in sel.select(timeout=min(timeout, 0.5)):
            k = key.data
            line = procs[k].stdout.readline()
            if not line:
                sel.unregister(procs[k].stdout)
                procs[k].wait(timeout=5) if procs[k].poll() is None else None
                cpus = format_list(layout.instances[k].cpus)
                failures.append(f"worker {k} (CPUs {cpus}) {_describe_exit(procs[k])}"
                                + _last_words(logs[k]))
                continue
            msg = _message(line)
            if msg is None:  # the worker broke the protocol: it failed, as if it had crashed
                cpus, text = format_list(layout.instances[k].cpus), line.strip()
                failures.append(f"worker {k} (CPUs {cpus}) sent a line that is not a JSON "
                                f"message (protocol broken): {text[:80]!r}"
                                + ("..." if len(text) > 80 else ""))
                continue
            if msg["event"] == "error":
                failures.append(f"worker {k}: {msg['message']}")
            elif msg["event"] == event:
                got[k] = msg
                sel.unregister(procs[k].stdout)  # its next line belongs to the next phase
    for k in got:  # listen again for the next phase
        if procs[k].poll() is None and event == "ready":
            sel.register(procs[k].stdout, selectors.EVENT_READ, k)
    return got


def _message(line: str) -> dict | None:
    """A worker's line as a protocol message ({"event": ...}), or None when it is not one."""
    try:
        msg = json.loads(line)
    except ValueError:
        return None
    return msg if isinstance(msg, dict) and isinstance(msg.get("event"), str) else None


def _last_words(log) -> str:
    log.seek(0)
    lines = [l for l in log.read().strip().splitlines() if l.strip()]
    return f": {lines[-1][:300]}" if lines else ""


def _stop_all(sel, procs, logs, failures) -> dict:
    """SIGTERM every live worker and gather the partial results they send. A worker not yet
    measuring ends at once: SIGTERM ends one that is starting, and its closed stdin one that
    waits for the start (worker.py), so only those measuring are waited for."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    _close_stdin(procs)
    got: dict[int, dict] = {}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and sel.get_map():
        for key, _ in sel.select(timeout=0.2):
            k = key.data
            line = procs[k].stdout.readline()
            if not line:
                sel.unregister(procs[k].stdout)
                continue
            msg = _message(line)
            if msg is not None and msg["event"] == "result":
                got[k] = msg
    return got


def _close_stdin(procs) -> None:
    """No start will come: a worker waiting for one reads the end of its input and leaves."""
    for p in procs:
        try:
            if p.stdin and not p.stdin.closed:
                p.stdin.close()
        except OSError:  # the worker is gone: what was left in the pipe has nowhere to go
            pass


def _reap(procs) -> None:
    """No orphans: whatever is still running after a grace period is killed and waited for."""
    _close_stdin(procs)
    deadline = time.monotonic() + 5
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        if p.stdout:
            p.stdout.close()


def _assemble(layout, mode, duration, results, machine, noise, failures) -> LayoutRun:
    inst = []
    for k in sorted(results):
        r = results[k]
        inst.append(InstanceRun(
            index=k, instance=layout.instances[k].to_dict(),
            latency_ns=np.asarray(r["latency_ns"], dtype=np.int64),
            start_offset_ns=np.asarray(r["start_offset_ns"], dtype=np.int64),
            window_ns=int(r["window_ns"]), counters=r["counters"], memory=r["memory"],
            threads=r["threads"], partial=r["partial"], busy_threads=r.get("busy_threads"),
            engine=r.get("engine"), accuracy=r.get("accuracy"), profile=r.get("profile"),
            perf=r.get("perf")))
    return LayoutRun(layout=layout, mode=mode, duration=duration, instances=inst,
                     machine=machine, noise=noise, failures=list(failures))


# ------------------------------------------------------------------------------ summaries

def latency_summary(lat_ns: np.ndarray, boots: int = 300) -> dict:
    """p50/p90/p99/p99.9 (nearest rank) in ms with bootstrap intervals, and a warning for each
    tail percentile that has too few samples to mean anything."""
    xs = np.sort(lat_ns.astype(np.float64) / 1e6)
    out, thin = {"count": int(xs.size)}, []
    for p in stats.PERCENTILES:
        key = f"p{p:g}"
        if xs.size == 0:
            out[key] = None
            continue
        lo, hi = stats.bootstrap_ci(xs, stats.Percentile(p), boots=boots)
        out[key] = {"ms": stats.percentile(xs, p), "ci": [lo, hi],
                    "enough_samples": bool(xs.size >= stats.min_samples(p))}
        if xs.size < stats.min_samples(p):
            thin.append(f"{key} ({stats.min_samples(p)})")
    out["warnings"] = [f"{xs.size} samples, too few for {', '.join(thin)}: run longer"] if thin else []
    return out
