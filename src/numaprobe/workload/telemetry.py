"""What happened during a measured window, from /proc and /sys: the counters that explain a
layout's speed. Per worker (read inside it): CPU time, page faults, voluntary and involuntary
context switches and migrations of every thread, pages per node (numa_maps). Per machine (read
by the driver): CPU use per CPU, NUMA hits and misses per node (numastat).

Where the kernel offers them, performance counters too (``PerfCounters``: perf_event_open on
every thread of the worker): the hardware's cycles, instructions, last-level cache misses and
stalled cycles, and the kernel's software events; an event it does not offer is named with the
reason (most VMs offer no hardware events), never reported as zero.

Always read from the real /proc and /sys (numaprobe.system's live readers), also when
$NUMAPROBE_SYSFS_ROOT points the topology at a captured tree; ``root=`` is for tests."""
from __future__ import annotations

from dataclasses import dataclass

from .. import system

_HZ = system.HZ


def process_counters(pid: str = "self", *, root=system.LIVE) -> dict:
    """CPU seconds and page faults of a process; context switches and migrations summed over
    its threads (migrations None where the kernel does not count them)."""
    stat = system.pid_stat(pid, root=root)
    out = {"cpu_s": (stat["utime"] + stat["stime"]) / _HZ,
           "minor_faults": stat["minflt"], "major_faults": stat["majflt"],
           "voluntary_switches": 0, "involuntary_switches": 0}
    migrations, counted = 0, False
    for tid in system.tasks(pid, root=root):
        try:
            status = system.status(pid, tid, root=root)
        except FileNotFoundError:
            continue
        out["voluntary_switches"] += int(status["voluntary_ctxt_switches"])
        out["involuntary_switches"] += int(status["nonvoluntary_ctxt_switches"])
        try:
            sched = system.sched(tid, pid, root=root)
        except OSError:  # a kernel without CONFIG_SCHED_DEBUG, or the thread just ended
            continue
        migrations += int(sched.get("se.nr_migrations", 0))
        counted = True
    # None only where no thread's count could be read: 0 would claim that none migrated.
    out["migrations"] = migrations if counted else None
    return out


# name: (perf type, config): PERF_TYPE_HARDWARE 0 (user space only), PERF_TYPE_SOFTWARE 1.
PERF_EVENTS = {"cycles": (0, 0), "instructions": (0, 1), "llc_misses": (0, 3),
               "stalled_cycles_backend": (0, 8), "task_clock_ns": (1, 1),
               "context_switches": (1, 3), "migrations": (1, 4), "page_faults": (1, 2)}


class PerfCounters:
    """Every PERF_EVENTS counter on every thread of this process, counting from creation;
    ``stop()`` reads and closes them: {"counts": {event: total}, "refused": {event: why}}.
    Threads started later are not counted (a worker's pools exist after its warm-up)."""

    def __init__(self):
        from .. import _core
        self._core = _core
        self.fds: dict[str, list[int]] = {}
        self.refused: dict[str, str] = {}
        tids = system.tasks()
        for name, (kind, config) in PERF_EVENTS.items():
            fds = []
            for tid in tids:
                try:
                    fds.append(_core.perf_open(kind, config, tid))
                except OSError as e:
                    self.refused[name] = _perf_refusal(e)
                    break
            if name in self.refused:
                for fd in fds:
                    _core.perf_close(fd)
            else:
                self.fds[name] = fds

    def stop(self) -> dict:
        counts = {}
        for name, fds in self.fds.items():
            total = 0
            for fd in fds:
                try:
                    total += self._core.perf_read(fd)
                finally:
                    self._core.perf_close(fd)
            counts[name] = total
        self.fds = {}
        return {"counts": counts, "refused": dict(self.refused)}


def _perf_refusal(e: OSError) -> str:
    import errno
    if e.errno in (errno.ENOENT, errno.EOPNOTSUPP, errno.ENODEV):
        return f"not offered by this kernel or machine ({errno.errorcode[e.errno]})"
    if e.errno in (errno.EACCES, errno.EPERM):
        return ("not allowed (perf_event_paranoid; "
                "echo 2 > /proc/sys/kernel/perf_event_paranoid or run as root)")
    if e.errno == errno.ENOSYS:
        return "no perf_event_open in this kernel (ENOSYS)"
    return f"refused: {e.strerror}"


def thread_cpu_ns(pid: str = "self", *, root=system.LIVE) -> dict[int, int]:
    """CPU time of each thread so far, in ns: schedstat's first field (exact), else utime +
    stime from stat (clock ticks)."""
    out = {}
    for tid in system.tasks(pid, root=root):
        try:
            out[tid] = system.schedstat(tid, pid, root=root)[0]
        except (OSError, ValueError, IndexError):
            try:
                f = system.pid_stat(pid, tid, root=root)
                out[tid] = (f["utime"] + f["stime"]) * 1_000_000_000 // _HZ
            except (OSError, ValueError, IndexError):
                continue
    return out


def busy_threads(before: dict[int, int], after: dict[int, int], window_ns: int,
                 share: float = 0.10) -> int:
    """Threads that ran for at least ``share`` of the window: the ones that compete for CPUs.
    Idle pools (a BLAS library's, say) sleep through it and are not counted."""
    if window_ns <= 0:
        return 0
    return sum(1 for tid, ns in after.items() if ns - before.get(tid, 0) >= share * window_ns)


def delta(before: dict, after: dict) -> dict:
    return {k: (None if after[k] is None or before[k] is None else after[k] - before[k])
            for k in after}


def pages_per_node(pid: str = "self", *, root=system.LIVE) -> dict:
    """Bytes of the process's own (anonymous) memory on each node (keys: node ids as text),
    from numa_maps (see system.parse_numa_maps); {} where it cannot be read."""
    try:
        nodes = system.numa_maps(pid, root=root)
    except OSError:
        return {}
    return {str(n): b for n, b in nodes.items()}


# ------------------------------------------------------------------------- machine-wide

@dataclass
class Machine:
    """A snapshot of the machine-wide counters: every CPU's times (system.CpuTimes) and every
    node's numastat."""
    cpus: dict
    numa: dict

    @classmethod
    def now(cls, *, root=system.LIVE) -> "Machine":
        return cls(system.cpu_times(root), system.numastat(root))

    def since(self, before: "Machine", seconds: float) -> dict:
        """What happened between two snapshots: each CPU's busy share of the time that passed
        (cpu_utilisation), busy and stolen CPU-seconds summed over the CPUs (busy_cpu_s,
        steal_cpu_s: steal is not busy, see system.CpuTimes), numastat deltas per node."""
        util, busy, steal = {}, 0, 0
        for c, now in self.cpus.items():
            dt = now - before.cpus.get(c, now)
            util[str(c)] = dt.busy / dt.total if dt.total > 0 else 0.0
            busy += dt.busy
            steal += dt.steal
        numa = {str(n): {k: v - before.numa.get(n, {}).get(k, 0) for k, v in d.items()
                         if k in ("numa_hit", "numa_miss", "local_node", "other_node")}
                for n, d in self.numa.items()}
        return {"cpu_utilisation": util, "busy_cpu_s": busy / _HZ, "steal_cpu_s": steal / _HZ,
                "numastat": numa, "seconds": seconds}
