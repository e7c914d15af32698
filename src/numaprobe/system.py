"""The one reader of /sys and /proc: every file numaprobe reads there is read in this module.

Two roots, kept apart on purpose:

- **The description of the machine**, which topology.py turns into a ``Topology``: CPUs,
  caches, nodes and distances under /sys, and the /proc files that describe the machine and
  this process's limits (meminfo, cpuinfo, self/status's allowed lists, self/cgroup,
  sys/kernel). It is read through ``FS`` under a root that is an argument, by default
  ``$NUMAPROBE_SYSFS_ROOT`` or ``/`` (``description_root()``), so that a captured tree
  (tests/data/sysfs/<shape>) stands in for a machine this one is not. ``CapturingFS`` copies
  what it reads into another directory.
- **The live state of processes and CPU time**: /proc/stat, /proc/PID/{stat,status,numa_maps,
  smaps}, /proc/PID/task/TID/{status,comm,stat,schedstat,sched} and the nodes' numastat. The
  checks built on them (escaped threads, noise, telemetry) must see this machine now, so these
  readers read the real ``/`` unless a caller passes ``root=`` explicitly (tests do, with
  literal files). ``$NUMAPROBE_SYSFS_ROOT`` never redirects them: a captured description has
  no running processes, and reading its files would report stale numbers as live ones.

Parsers (``parse_*``) are pure functions on the text of one file; readers are thin: they read
the file and call its parser. Live readers raise OSError when the file cannot be read
(FileNotFoundError: the process or thread has ended), except where their docstring says
otherwise.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

from .errors import UsageError

__all__ = [
    "FS", "CapturingFS", "description_root", "LIVE", "HZ", "CpuTimes",
    "parse_stat", "parse_pid_stat", "parse_status", "parse_schedstat", "parse_sched",
    "parse_numa_maps", "parse_numastat", "parse_smaps",
    "cpu_times", "pid_stat", "status", "tasks", "comm", "schedstat", "sched", "threads",
    "numa_maps", "numastat", "smaps_huge",
]

LIVE = "/"                          # the root of live reads, unless a caller passes another
HZ = os.sysconf("SC_CLK_TCK")       # clock ticks (jiffies) per second, the unit of /proc/stat


# ------------------------------------------------------------------- the description's reader

def description_root() -> str:
    """Where the machine's description is read from: ``$NUMAPROBE_SYSFS_ROOT`` or ``/``."""
    return os.environ.get("NUMAPROBE_SYSFS_ROOT") or "/"


class FS:
    """Reads the machine's description relative to one root. A file that is missing or
    cannot be read is None (the description says what it can); one that is not text is a
    UsageError naming it."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, rel: str) -> Path:
        return self.root / rel.lstrip("/")

    def text(self, rel: str) -> str | None:
        try:
            return self.path(rel).read_text(encoding="utf-8")  # what the kernel writes, any locale
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return None
        except OSError:  # some sysfs files fail to read on some kernels (EIO, EINVAL)
            return None
        except UnicodeDecodeError as e:
            raise UsageError(f"{self.path(rel)}: not text (byte {e.object[e.start]:#04x} at "
                             f"offset {e.start}), so not a file the kernel wrote") from None

    def value(self, rel: str) -> str | None:
        t = self.text(rel)
        return None if t is None else t.strip()

    def int(self, rel: str) -> int | None:
        v = self.value(rel)
        try:
            return int(v) if v is not None else None
        except ValueError:
            return None

    def list(self, rel: str, pattern: str) -> list[str]:
        """Names in a directory that fully match a regex, in numeric-aware order."""
        try:
            names = os.listdir(self.path(rel))
        except OSError:
            return []
        rx = re.compile(pattern)
        return sorted((n for n in names if rx.fullmatch(n)),
                      key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)])


class CapturingFS(FS):
    """Reads like FS and copies what it reads into another directory."""

    def __init__(self, root, dest: Path):
        super().__init__(root)
        self.dest = dest

    def text(self, rel):
        t = super().text(rel)
        if t is not None:
            out = self.dest / rel.lstrip("/")
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(t, encoding="utf-8")
        return t

    def list(self, rel, pattern):
        names = super().list(rel, pattern)
        for n in names:
            src, out = self.path(rel) / n, self.dest / rel.lstrip("/") / n
            # Links (nodeN/cpuK, initiators/nodeM) become empty files: the reader only lists
            # them, and git keeps empty files but not empty directories.
            if src.is_dir() and not src.is_symlink():
                out.mkdir(parents=True, exist_ok=True)
            else:
                out.parent.mkdir(parents=True, exist_ok=True)
                out.touch()
        return names


# ------------------------------------------------------------------------------ parsers

@dataclass(frozen=True)
class CpuTimes:
    """One CPU's time since boot, from its ``cpuN`` line of /proc/stat, in clock ticks
    (``HZ`` a second). Fields the kernel does not report (old kernels) are 0.

    The rule for busy and steal, used by everything that reads /proc/stat:

    - ``busy`` = user + nice + system + irq + softirq: time this machine's CPU ran work.
      guest and guest_nice are already counted inside user and nice, so they are not added.
    - ``steal``: time the hypervisor gave this (virtual) CPU's physical CPU to someone else.
      Nobody on this machine ran then, so it is not busy time; it is reported on its own.
    - ``idle_all`` = idle + iowait.
    - ``total`` = busy + idle_all + steal: all the time that passed on the CPU.
    """
    user: int = 0
    nice: int = 0
    system: int = 0
    idle: int = 0
    iowait: int = 0
    irq: int = 0
    softirq: int = 0
    steal: int = 0
    guest: int = 0
    guest_nice: int = 0

    @property
    def busy(self) -> int:
        return self.user + self.nice + self.system + self.irq + self.softirq

    @property
    def idle_all(self) -> int:
        return self.idle + self.iowait

    @property
    def total(self) -> int:
        return self.busy + self.idle_all + self.steal

    def __sub__(self, other: "CpuTimes") -> "CpuTimes":
        """The time between two readings of the same CPU."""
        return CpuTimes(*(getattr(self, f.name) - getattr(other, f.name) for f in fields(self)))


_STAT_FIELDS = len(fields(CpuTimes))


def parse_stat(text: str) -> dict[int, CpuTimes]:
    """/proc/stat: every CPU's times, keyed by CPU id (the all-CPU ``cpu`` line is left out;
    offline CPUs have no line)."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"cpu(\d+)\s+(.*)", line)
        if m:
            v = [int(x) for x in m.group(2).split()[:_STAT_FIELDS]]
            out[int(m.group(1))] = CpuTimes(*v)
    return out


def parse_pid_stat(text: str) -> dict[str, int]:
    """/proc/PID/stat or /proc/PID/task/TID/stat: page faults (minflt, majflt: counts) and CPU
    time (utime, stime; cutime, cstime: of the children waited for) in clock ticks."""
    # The command name in parentheses may hold spaces and ')': the fields follow the last ')'.
    f = text.rsplit(")", 1)[1].split()
    return {"minflt": int(f[7]), "majflt": int(f[9]), "utime": int(f[11]),
            "stime": int(f[12]), "cutime": int(f[13]), "cstime": int(f[14])}


def parse_status(text: str) -> dict[str, str]:
    """/proc/PID/status (or a thread's): every ``Key:\\tvalue`` line, the value stripped."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key] = value.strip()
    return out


def parse_schedstat(text: str) -> tuple[int, int, int]:
    """/proc/PID/task/TID/schedstat: (ns run on a CPU, ns waited on a run queue, time
    slices)."""
    run, wait, slices = (int(x) for x in text.split()[:3])
    return run, wait, slices


def parse_sched(text: str) -> dict[str, str]:
    """/proc/PID/task/TID/sched (CONFIG_SCHED_DEBUG): every ``key : value`` line, e.g.
    ``se.nr_migrations``; values as text (some are fractional)."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(\S+)\s*:\s*(\S+)\s*$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def parse_numa_maps(text: str) -> dict[int, int]:
    """/proc/PID/numa_maps: bytes of the process's own (anonymous) memory on each node: heap,
    arenas, weights. Shared libraries and other file pages live in the page cache, placed by
    whoever read them first, and are left out."""
    out: dict[int, int] = {}
    for line in text.splitlines():
        if " file=" in line or " anon=" not in line:
            continue
        kb = re.search(r"kernelpagesize_kB=(\d+)", line)
        size = int(kb.group(1)) * 1024 if kb else 4096
        for node, pages in re.findall(r" N(\d+)=(\d+)", line):
            out[int(node)] = out.get(int(node), 0) + int(pages) * size
    return out


def parse_numastat(text: str) -> dict[str, int]:
    """A node's numastat: counter name -> pages (numa_hit, numa_miss, local_node, ...)."""
    return {k: int(v) for k, v in (line.split() for line in text.splitlines() if line.strip())}


def parse_smaps(text, address: int, nbytes: int) -> tuple[int, int]:
    """/proc/PID/smaps (text, or an iterable of its lines): (largest kernel page size in bytes,
    bytes in huge pages: THP's AnonHugePages plus hugetlb) of the mappings that overlap
    ``[address, address + nbytes)``. The page size is 0 when no mapping overlaps."""
    lines = text.splitlines() if isinstance(text, str) else text
    end = address + nbytes
    kps, huge, inside = 0, 0, False
    for line in lines:
        m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line)
        if m:
            lo, hi = int(m.group(1), 16), int(m.group(2), 16)
            inside = lo < end and hi > address
            continue
        if not inside:
            continue
        if line.startswith("KernelPageSize:"):
            kps = max(kps, int(line.split()[1]) * 1024)
        elif line.startswith(("AnonHugePages:", "Private_Hugetlb:", "Shared_Hugetlb:")):
            huge += int(line.split()[1]) * 1024
    return kps, huge


# ------------------------------------------------------------------------- live readers

def _proc(pid, tid, name: str) -> str:
    return f"proc/{pid}/task/{tid}/{name}" if tid is not None else f"proc/{pid}/{name}"


def _read(rel: str, root) -> str:
    return (Path(root) / rel).read_text()


def cpu_times(root: str | os.PathLike = LIVE) -> dict[int, CpuTimes]:
    """Every online CPU's times since boot (/proc/stat), keyed by CPU id."""
    return parse_stat(_read("proc/stat", root))


def pid_stat(pid="self", tid=None, *, root: str | os.PathLike = LIVE) -> dict[str, int]:
    """A process's (or one of its threads') faults and CPU ticks: see parse_pid_stat."""
    return parse_pid_stat(_read(_proc(pid, tid, "stat"), root))


def status(pid="self", tid=None, *, root: str | os.PathLike = LIVE) -> dict[str, str]:
    """A process's (or one of its threads') status: see parse_status."""
    return parse_status(_read(_proc(pid, tid, "status"), root))


def tasks(pid="self", *, root: str | os.PathLike = LIVE) -> list[int]:
    """The thread ids of a process, in increasing order."""
    return sorted(int(t) for t in os.listdir(Path(root) / f"proc/{pid}/task"))


def comm(tid, pid="self", *, root: str | os.PathLike = LIVE) -> str:
    """A thread's name."""
    return _read(_proc(pid, tid, "comm"), root).strip()


def schedstat(tid, pid="self", *, root: str | os.PathLike = LIVE) -> tuple[int, int, int]:
    """A thread's schedstat: see parse_schedstat."""
    return parse_schedstat(_read(_proc(pid, tid, "schedstat"), root))


def sched(tid, pid="self", *, root: str | os.PathLike = LIVE) -> dict[str, str]:
    """A thread's scheduler statistics (needs CONFIG_SCHED_DEBUG, as Debian's and most
    distributions' kernels have): see parse_sched."""
    return parse_sched(_read(_proc(pid, tid, "sched"), root))


def threads(pid="self", *, root: str | os.PathLike = LIVE) -> list[dict]:
    """Every thread of a process with the CPUs it may run on now: dicts with ``tid``,
    ``name`` and ``cpus`` (Cpus_allowed_list, kernel list syntax). Threads that end while
    being read are left out."""
    out = []
    for tid in tasks(pid, root=root):
        try:
            cpus = status(pid, tid, root=root)["Cpus_allowed_list"]
            name = comm(tid, pid, root=root)
        except (FileNotFoundError, ProcessLookupError):
            continue
        out.append({"tid": tid, "name": name, "cpus": cpus})
    return out


def numa_maps(pid="self", *, root: str | os.PathLike = LIVE) -> dict[int, int]:
    """Bytes of a process's anonymous memory per node: see parse_numa_maps."""
    return parse_numa_maps(_read(_proc(pid, None, "numa_maps"), root))


def smaps_huge(address: int, nbytes: int, pid="self", *,
               root: str | os.PathLike = LIVE) -> tuple[int, int]:
    """(kernel page size, bytes in huge pages) of a range of this process's memory, from
    smaps (see parse_smaps); the base page size when no mapping overlaps the range."""
    with open(Path(root) / _proc(pid, None, "smaps")) as f:  # can be megabytes: streamed
        kps, huge = parse_smaps(f, address, nbytes)
    return kps or os.sysconf("SC_PAGESIZE"), huge


def numastat(root: str | os.PathLike = LIVE) -> dict[int, dict[str, int]]:
    """Every node's NUMA counters since boot (see parse_numastat), keyed by node id; {} on a
    kernel without NUMA. A node whose file cannot be read is left out."""
    base = Path(root) / "sys/devices/system/node"
    out = {}
    for name in os.listdir(base) if base.is_dir() else ():
        if re.fullmatch(r"node\d+", name):
            try:
                text = (base / name / "numastat").read_text()
            except OSError:
                continue
            out[int(name[4:])] = parse_numastat(text)
    return out
