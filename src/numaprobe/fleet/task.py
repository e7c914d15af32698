"""What runs on each node of a fleet, inside a Ray task.

Standard library only, and shipped to the nodes by value (runner.py registers this module with
cloudpickle), so that a node whose Python lacks numaprobe still runs it and says so, instead of
failing to unpickle the task.

``probe`` answers before anything is measured: the host, its boot id (nodes that share one
share a machine and are measured one at a time), the CPUs a task may use, the numaprobe it
would run, and the digest of each file the command names. ``measure`` runs one numaprobe
command, ``python -m numaprobe ... --json``, as a subprocess:

- its environment is the node's, less what Ray sets for its tasks to cap thread pools
  (``DROP``: a measurement sets its own threads); what was dropped is returned;
- files the node lacks arrive as bytes and are written to a folder of its own, removed after;
- it stops with the task: the child asks for SIGTERM when its parent dies (PR_SET_DEATHSIG),
  a cancelled task sends SIGTERM to the child's process group, and a run past ``timeout``
  gets SIGTERM too (numaprobe then writes what it measured), SIGKILL 10 s later;
- the CPU time that Ray's own processes on the node (raylet, GCS, idle workers, agents) used
  while it ran is measured from /proc and returned as the run's Ray noise.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# What Ray sets for a task (OMP_NUM_THREADS to its CPU count) and its kin: thread-pool caps
# that would make the measurement's threads not the ones it asked for.
DROP = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
        "NUMEXPR_MAX_THREADS", "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS", "GOTO_NUM_THREADS",
        "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_THREAD_LIMIT")
# The interpreter that runs numaprobe on a node: this variable in the node's environment, or
# the Ray worker's own.
PYTHON_ENV = "NUMAPROBE_PYTHON"
# Set for the measurement: the host's label in the fleet.
HOST_ENV = "NUMAPROBE_FLEET_HOST"
KILL_AFTER_S = 10.0
# Before measuring, wait (at most SETTLE_MOST_S) until Ray's processes take less than
# SETTLE_SHARE of the node's CPUs over a SETTLE_WINDOW_S window: a node just started is still
# starting its idle workers.
SETTLE_SHARE = 0.05
SETTLE_WINDOW_S = 0.5
SETTLE_MOST_S = 10.0
_STDERR_KEPT = 4000

# The child's first lines: die with the parent, then run numaprobe as `python -m numaprobe`.
_LAUNCH = ("import ctypes, os, runpy, signal, sys\n"
           "ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)\n"
           "if os.getppid() != int(sys.argv[1]): sys.exit(143)\n"
           "sys.argv = ['numaprobe'] + sys.argv[2:]\n"
           "runpy.run_module('numaprobe', run_name='__main__', alter_sys=True)\n")


def python() -> str:
    return os.environ.get(PYTHON_ENV) or sys.executable


def scrubbed_env(env=None) -> tuple[dict, dict]:
    """(the environment for the measurement, {name: value} of what was dropped)."""
    env = dict(os.environ if env is None else env)
    dropped = {k: env.pop(k) for k in DROP if k in env}
    return env, dropped


def digest(path: str) -> str | None:
    """sha256 of a file, or None where it is not a readable file."""
    try:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    except OSError:
        return None


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return socket.gethostname()


def probe(paths=()) -> dict:
    """The node before anything runs: host, boot id, usable CPUs, the Python and numaprobe it
    would run (``numaprobe`` None and ``why`` where it cannot), and {path: sha256 or None}."""
    py = python()
    env, _ = scrubbed_env()
    try:
        r = subprocess.run([py, "-c", "import numaprobe; print(numaprobe.__version__)"],
                           capture_output=True, text=True, env=env, timeout=120)
        version = r.stdout.strip() if r.returncode == 0 else None
        why = None if version else (r.stderr.strip().splitlines() or ["no output"])[-1]
    except (OSError, subprocess.TimeoutExpired) as e:
        version, why = None, f"{py}: {e}"
    return {"hostname": socket.gethostname(), "boot_id": _boot_id(),
            "usable_cpus": len(os.sched_getaffinity(0)), "python": py, "numaprobe": version,
            "why": why, "files": {p: digest(p) for p in paths}}


# ------------------------------------------------------------------------------ Ray noise

_HZ = os.sysconf("SC_CLK_TCK")


def _is_ray(comm: str, cmdline: str) -> bool:
    return (comm in ("raylet", "gcs_server") or comm.startswith("ray::")
            or "/ray/" in cmdline or "ray._private" in cmdline or "ray/_private" in cmdline)


def ray_cpu(exclude=()) -> dict:
    """{(pid, start time): CPU-seconds} of Ray's processes on this node, less ``exclude``."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in exclude:
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        if not _is_ray(comm, cmdline):
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        out[(int(name), fields[19])] = (int(fields[11]) + int(fields[12])) / _HZ
    return out


def ray_noise(before: dict, after: dict, seconds: float, cpus: int) -> dict:
    """What Ray's processes took of the node's CPUs between two ray_cpu() readings (those alive
    at the end; one that started meanwhile counts from zero)."""
    used = sum(v - before.get(k, 0.0) for k, v in after.items())
    cap = seconds * cpus
    return {"cpu_s": used, "seconds": seconds, "cpus": cpus, "processes": len(after),
            "fraction": used / cap if cap > 0 else 0.0}


def settle(cpus: int, exclude=()) -> dict:
    """Wait until Ray's processes are quiet (see SETTLE_SHARE): {"waited_s", "share" (of the
    last window), "settled"}."""
    t0 = time.monotonic()
    while True:
        a = ray_cpu(exclude)
        time.sleep(SETTLE_WINDOW_S)
        share = ray_noise(a, ray_cpu(exclude), SETTLE_WINDOW_S, cpus)["fraction"]
        waited = time.monotonic() - t0
        if share < SETTLE_SHARE or waited >= SETTLE_MOST_S:
            return {"waited_s": waited, "share": share, "settled": share < SETTLE_SHARE}


# ------------------------------------------------------------------------------- measure

def _stop(p: subprocess.Popen) -> None:
    """SIGTERM to the child's process group (numaprobe stops its workers and writes what it
    has), SIGKILL after KILL_AFTER_S."""
    for sig, wait in ((signal.SIGTERM, KILL_AFTER_S), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            return
        try:
            p.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def measure(argv, *, label: str, files=None, timeout: float | None = None) -> dict:
    """Run ``python -m numaprobe ARGV`` (ARGV ends with --json) on this node. ``files``:
    {path: bytes} for paths the node lacks; ARGV's mentions of them are rewritten to the copies.
    Waits for Ray's processes to settle first (``settle``). Returns {"rc", "doc" (the
    document or None), "stderr" (its tail), "timed_out", "seconds", "dropped", "settle",
    "ray_noise", "python", "hostname"}."""
    env, dropped = scrubbed_env()
    env[HOST_ENV] = label
    argv = [str(a) for a in argv]
    tmp = tempfile.mkdtemp(prefix="numaprobe-fleet-") if files else None
    try:
        for i, (path, blob) in enumerate((files or {}).items()):
            copy = os.path.join(tmp, f"{i}-{os.path.basename(path)}")
            with open(copy, "wb") as f:
                f.write(blob)
            argv = [copy if a == path else a for a in argv]
        py = python()
        cpus = len(os.sched_getaffinity(0))
        settled = settle(cpus, exclude={os.getpid()})
        before = ray_cpu(exclude={os.getpid()})
        t0 = time.monotonic()
        p = subprocess.Popen([py, "-c", _LAUNCH, str(os.getpid()), *argv],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                             start_new_session=True)
        timed_out = False
        try:
            try:
                out, err = p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _stop(p)
                out, err = p.communicate()
        except BaseException:  # the task was cancelled: the child goes with it
            _stop(p)
            raise
        seconds = time.monotonic() - t0
        noise = ray_noise(before, ray_cpu(exclude={os.getpid(), p.pid}), seconds, cpus)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    try:
        doc = json.loads(out) if out.strip() else None
    except ValueError:
        doc = None
    return {"rc": p.returncode, "doc": doc if isinstance(doc, dict) else None,
            "stderr": err.decode(errors="replace")[-_STDERR_KEPT:], "timed_out": timed_out,
            "seconds": seconds, "dropped": dropped, "settle": settled, "ray_noise": noise,
            "python": py, "hostname": socket.gethostname()}
