"""What happened during a measured window, from /proc and /sys: the counters that explain a
layout's speed. Per worker (read inside it): CPU time, page faults, voluntary and involuntary
context switches and migrations of every thread, pages per node (numa_maps). Per machine (read
by the driver): CPU use per CPU, NUMA hits and misses per node (numastat)."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

_HZ = os.sysconf("SC_CLK_TCK")


def process_counters(pid: str = "self") -> dict:
    """CPU seconds and page faults of a process; context switches and migrations summed over
    its threads."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    out = {"cpu_s": (int(fields[11]) + int(fields[12])) / _HZ,
           "minor_faults": int(fields[7]), "major_faults": int(fields[9]),
           "voluntary_switches": 0, "involuntary_switches": 0, "migrations": 0}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            status = open(f"/proc/{pid}/task/{tid}/status").read()
        except FileNotFoundError:
            continue
        out["voluntary_switches"] += int(re.search(r"^voluntary_ctxt_switches:\s*(\d+)", status, re.M).group(1))
        out["involuntary_switches"] += int(re.search(r"^nonvoluntary_ctxt_switches:\s*(\d+)", status, re.M).group(1))
        try:  # needs CONFIG_SCHED_DEBUG, as Debian's and most distributions' kernels have
            m = re.search(r"^se\.nr_migrations\s*:\s*(\d+)", open(f"/proc/{pid}/task/{tid}/sched").read(), re.M)
            out["migrations"] += int(m.group(1)) if m else 0
        except OSError:
            out["migrations"] = None if out["migrations"] == 0 else out["migrations"]
    return out


def thread_cpu_ns(pid: str = "self") -> dict[int, int]:
    """CPU time of each thread so far, in ns: schedstat's first field (exact), else utime +
    stime from stat (clock ticks)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out[int(tid)] = int(open(f"/proc/{pid}/task/{tid}/schedstat").read().split()[0])
        except (OSError, ValueError, IndexError):
            try:
                f = open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
                out[int(tid)] = (int(f[11]) + int(f[12])) * 1_000_000_000 // _HZ
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


def pages_per_node(pid: str = "self") -> dict:
    """Bytes of the process's own (anonymous) memory on each node, from numa_maps: heap,
    arenas, weights. Shared libraries and other file pages live in the page cache, placed by
    whoever read them first, and are left out."""
    out: dict[str, int] = {}
    try:
        text = open(f"/proc/{pid}/numa_maps").read()
    except OSError:
        return out
    for line in text.splitlines():
        if " file=" in line or " anon=" not in line:
            continue
        kb = re.search(r"kernelpagesize_kB=(\d+)", line)
        size = int(kb.group(1)) * 1024 if kb else 4096
        for node, pages in re.findall(r" N(\d+)=(\d+)", line):
            out[node] = out.get(node, 0) + int(pages) * size
    return out


# ------------------------------------------------------------------------- machine-wide

def cpu_jiffies() -> dict[int, tuple[int, int]]:
    """Per CPU: (busy, total) jiffies since boot."""
    out = {}
    for line in open("/proc/stat"):
        m = re.match(r"cpu(\d+) (.*)", line)
        if m:
            v = [int(x) for x in m.group(2).split()]
            idle = v[3] + (v[4] if len(v) > 4 else 0)
            total = sum(v[:8])
            out[int(m.group(1))] = (total - idle, total)
    return out


def numastat() -> dict[int, dict[str, int]]:
    out = {}
    base = "/sys/devices/system/node"
    for name in os.listdir(base) if os.path.isdir(base) else ():
        if re.fullmatch(r"node\d+", name):
            try:
                text = open(f"{base}/{name}/numastat").read()
            except OSError:
                continue
            out[int(name[4:])] = {k: int(v) for k, v in (l.split() for l in text.splitlines())}
    return out


@dataclass
class Machine:
    """A snapshot of the machine-wide counters."""
    cpus: dict
    numa: dict

    @classmethod
    def now(cls) -> "Machine":
        return cls(cpu_jiffies(), numastat())

    def since(self, before: "Machine", seconds: float) -> dict:
        util = {}
        for c, (busy, total) in self.cpus.items():
            b0, t0 = before.cpus.get(c, (busy, total))
            util[str(c)] = (busy - b0) / (total - t0) if total > t0 else 0.0
        busy_s = sum(self.cpus[c][0] - before.cpus.get(c, self.cpus[c])[0] for c in self.cpus) / _HZ
        numa = {str(n): {k: v - before.numa.get(n, {}).get(k, 0) for k, v in d.items()
                         if k in ("numa_hit", "numa_miss", "local_node", "other_node")}
                for n, d in self.numa.items()}
        return {"cpu_utilisation": util, "busy_cpu_s": busy_s, "numastat": numa,
                "seconds": seconds}
