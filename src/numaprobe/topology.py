"""What the machine is: CPUs, caches, NUMA nodes, what this process may use, and the settings
that change results. Read from /sys and /proc under a root that is an argument, never a global.

    >>> topo = numaprobe.topology.read()           # this machine
    >>> topo = numaprobe.topology.read("tests/data/sysfs/two-socket-smt")
    >>> topo.node_of(3), topo.cpu_nodes, topo.distance(0, 1)

The root defaults to ``$NUMAPROBE_SYSFS_ROOT`` or ``/``. ``capture(dir)`` copies exactly the
files the reader uses, so a user can send theirs and it becomes a test case. The files are read
through numaprobe.system, the one reader of /sys and /proc.

``read()`` reads everything, every time. Code that checks requests against the machine
(placement, the probes) asks ``current()`` instead: the description read once per process and
kept, the allowed CPUs and memory nodes read again at every call, and ``memory_now()`` for the
free memory of the nodes an allocation will use.

A machine without NUMA support in the kernel is one node holding every CPU.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UsageError
from .system import CapturingFS, FS, description_root, parse_status
from .words import ids as ids_words, plural

__all__ = [
    "Topology", "Cpu", "Cache", "Node", "Allowed", "Settings",
    "read", "current", "forget", "memory_now", "capture", "parse_list", "format_list",
    "human_bytes",
]


# ------------------------------------------------------------------------------ list syntax

# No id in a list can be this large: Linux caps CPUs at NR_CPUS (8192 in distribution kernels,
# at most 2^13 by Kconfig) and nodes at 2^10. A list is checked against it before it is expanded,
# so "0-999999999" is refused in one line instead of taking gigabytes.
MAX_ID = 1 << 20


def parse_list(text: str) -> tuple[int, ...]:
    """Parses the kernel's (and numactl's) list syntax: ``"0-3,8,10-11"`` -> (0,1,2,3,8,10,11).

    Raises UsageError naming the bad part (also for an id of MAX_ID or more, which no machine
    has). Empty text is the empty list. However long the text, the list holds at most MAX_ID
    ids."""
    out: set[int] = set()
    shown = _shown(text.strip())
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"([0-9]+)(?:-([0-9]+))?(?::([0-9]+))?", part)
        if not m or (m.group(2) is None and m.group(3) is not None):
            raise UsageError(f"cannot read {_shown(part)!r} in the list {shown!r}: "
                             "expected numbers and ranges like 0-3,8")
        lo = _bounded(m.group(1))
        hi = _bounded(m.group(2)) if m.group(2) is not None else lo
        step = _bounded(m.group(3) or "1")
        if hi < lo or step < 1:
            raise UsageError(f"bad range {_shown(part)!r} in {shown!r}")
        if hi >= MAX_ID:
            top = (m.group(2) or m.group(1)).lstrip("0")
            raise UsageError(f"{_shown(part)!r} in the list {shown!r} names id {_shown(top)}; "
                             f"no machine has that many CPUs or nodes (ids stay below {MAX_ID})")
        out.update(range(lo, hi + 1, step))
    return tuple(sorted(out))


def _bounded(digits: str) -> int:
    """int(digits), capped at MAX_ID: a number that large is refused anyway, and one longer
    than int()'s limit of 4300 digits must not reach int()."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= len(str(MAX_ID)) else MAX_ID


def _shown(text: str, most: int = 60) -> str:
    """Text as an error message quotes it: cut after ``most`` characters."""
    return text if len(text) <= most else text[:most] + "..."


def format_list(ids) -> str:
    """The inverse of parse_list: (0,1,2,3,8) -> ``"0-3,8"``."""
    ids = sorted(set(ids))
    parts, i = [], 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        parts.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ",".join(parts)


# ------------------------------------------------------------------------------ the objects

@dataclass(frozen=True)
class Cpu:
    id: int
    online: bool
    node: int
    package: int | None      # None where the kernel hides it (offline CPUs on x86)
    die: int | None
    core: int | None         # core_id: unique within a package only
    siblings: tuple[int, ...]  # SMT threads of the same core, itself included


@dataclass(frozen=True)
class Cache:
    level: int
    type: str                # Data, Instruction, Unified
    size: int                # bytes
    line_size: int | None    # bytes
    cpus: tuple[int, ...]    # the CPUs that share this cache instance


@dataclass(frozen=True)
class Node:
    id: int
    cpus: tuple[int, ...]    # every CPU of the node, offline ones included
    memory_total: int        # bytes; 0 for a node without memory
    memory_free: int         # bytes (MemFree)
    memory_reclaimable: int  # bytes of page cache the kernel can drop (Active+Inactive(file))
    distances: tuple[int, ...]  # SLIT row: distance to node k is distances[index of k]
    hugepages: dict          # page size in bytes -> {"total": n, "free": n}
    access: dict             # HMAT: class ("0", "1") -> {"initiators": [...], "read_latency": ns,
                             #   "write_latency": ns, "read_bandwidth": MB/s, "write_bandwidth": MB/s}

    @property
    def has_cpus(self) -> bool:
        return bool(self.cpus)

    @property
    def has_memory(self) -> bool:
        return self.memory_total > 0


@dataclass(frozen=True)
class Allowed:
    """What this process may use."""
    cpus: tuple[int, ...]    # the affinity mask (Cpus_allowed_list)
    mems: tuple[int, ...]    # Mems_allowed_list
    cgroup: str | None       # the process's cgroup path
    cgroup_version: int | None
    cgroup_cpus: tuple[int, ...] | None   # cpuset effective CPUs, where a cpuset is visible
    cgroup_mems: tuple[int, ...] | None
    cpu_quota: float | None  # CPUs' worth of time the cgroup may use (cpu.max), None: no limit


@dataclass(frozen=True)
class Settings:
    """Settings of the machine that change measured results."""
    cpu_model: str | None
    numa_balancing: int | None   # /proc/sys/kernel/numa_balancing; None: kernel without it
    thp: str | None              # transparent huge pages: always, madvise, never
    thp_defrag: str | None
    governors: tuple[str, ...]   # distinct cpufreq governors; empty: no cpufreq (VMs)
    isolated: tuple[int, ...]    # isolcpus
    smt_active: bool | None
    tsc_flags: tuple[str, ...]   # constant_tsc, nonstop_tsc, tsc_reliable, tsc_known_freq...
    virtualized: bool            # the CPU says it runs under a hypervisor
    clocksource: str | None
    cpu_flags: tuple[str, ...] = ()  # /proc/cpuinfo's flags (x86) or Features (arm), sorted

    @property
    def features(self) -> tuple[str, ...]:
        """The CPU's vector and matrix units by name (FEATURES), in FEATURES' order."""
        return tuple(name for flag, name in FEATURES if flag in self.cpu_flags)


# The vector and matrix units that decide what inference can run fast, as /proc/cpuinfo
# names them (x86 "flags", aarch64 "Features") and as people know them. A flag says the
# CPU has the unit; AMX also needs the kernel's permission per process (arch_prctl).
FEATURES = (
    ("fma", "FMA"), ("avx2", "AVX2"), ("avx_vnni", "AVX-VNNI"),
    ("avx512f", "AVX-512F"), ("avx512_vnni", "AVX512-VNNI"), ("avx512_bf16", "AVX512-BF16"),
    ("avx512_fp16", "AVX512-FP16"), ("amx_tile", "AMX"), ("amx_bf16", "AMX-BF16"),
    ("amx_int8", "AMX-INT8"), ("amx_fp16", "AMX-FP16"),
    ("asimd", "NEON"), ("asimddp", "NEON-DOT"), ("asimdhp", "NEON-FP16"), ("bf16", "ARM-BF16"),
    ("i8mm", "ARM-I8MM"), ("sve", "SVE"), ("sve2", "SVE2"), ("sme", "SME"),
)


@dataclass(frozen=True)
class Topology:
    cpus: tuple[Cpu, ...]
    nodes: tuple[Node, ...]
    caches: tuple[Cache, ...]
    allowed: Allowed
    settings: Settings
    memory_available: int | None  # /proc/meminfo MemAvailable, bytes
    memory_total: int | None      # /proc/meminfo MemTotal, bytes
    numa: bool = True             # False: the kernel has no NUMA sysfs; one node was assumed
    root: str = field(default="/", compare=False)

    # --- look-ups --------------------------------------------------------------------
    def node(self, node_id: int) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise self._no_node(node_id)

    def _no_node(self, node_id) -> UsageError:
        return UsageError(f"there is no node {node_id}; nodes: {format_list(self.node_ids)}")

    def cpu(self, cpu_id: int) -> Cpu:
        for c in self.cpus:
            if c.id == cpu_id:
                return c
        raise UsageError(f"there is no CPU {cpu_id}; CPUs: {format_list(c.id for c in self.cpus)}")

    @property
    def node_ids(self) -> tuple[int, ...]:
        return tuple(n.id for n in self.nodes)

    @property
    def cpu_nodes(self) -> tuple[int, ...]:
        """Nodes with at least one online CPU."""
        online = set(self.online_cpus)
        return tuple(n.id for n in self.nodes if online.intersection(n.cpus))

    @property
    def memory_nodes(self) -> tuple[int, ...]:
        """Nodes with memory (CPU-less memory nodes included)."""
        return tuple(n.id for n in self.nodes if n.has_memory)

    @property
    def online_cpus(self) -> tuple[int, ...]:
        return tuple(c.id for c in self.cpus if c.online)

    @property
    def offline_cpus(self) -> tuple[int, ...]:
        return tuple(c.id for c in self.cpus if not c.online)

    @property
    def packages(self) -> tuple[int, ...]:
        return tuple(sorted({c.package for c in self.cpus if c.package is not None}))

    @property
    def cores(self) -> tuple[tuple[int, ...], ...]:
        """Physical cores as their SMT sibling groups (online CPUs)."""
        return tuple(sorted({c.siblings for c in self.cpus if c.online}))

    def node_of(self, cpu_id: int) -> int:
        return self.cpu(cpu_id).node

    def cpus_of(self, node_id: int, usable: bool = False) -> tuple[int, ...]:
        """The node's CPUs; with usable=True only the online ones this process may use."""
        cpus = self.node(node_id).cpus
        if usable:
            ok = set(self.usable_cpus)
            cpus = tuple(c for c in cpus if c in ok)
        return cpus

    @property
    def usable_cpus(self) -> tuple[int, ...]:
        """Online CPUs in this process's affinity mask."""
        online = set(self.online_cpus)
        return tuple(c for c in self.allowed.cpus if c in online)

    @property
    def usable_mems(self) -> tuple[int, ...]:
        """Nodes with memory that this process may allocate on."""
        mems = set(self.memory_nodes)
        return tuple(m for m in self.allowed.mems if m in mems)

    def distance(self, a: int, b: int) -> int:
        """SLIT distance from node a to node b (10 = local); UsageError for a node that is
        not there."""
        row, ids = self.node(a).distances, self.node_ids
        if b not in ids:
            raise self._no_node(b)
        return row[ids.index(b)]

    def free_bytes(self, node_id: int) -> int:
        """Bytes a bound allocation on the node can get: free memory plus droppable page cache.

        On a one-node machine the kernel's own MemAvailable is used: some hypervisors report
        per-node figures that cover only part of the memory."""
        if len(self.nodes) == 1 and self.memory_available is not None:
            return self.memory_available
        n = self.node(node_id)  # page cache counted twice by some kernels: never above total
        return min(n.memory_free + n.memory_reclaimable, n.memory_total)

    # --- documents -------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        del d["root"]
        for n in d["nodes"]:
            n["hugepages"] = {str(k): v for k, v in sorted(n["hugepages"].items())}
        return json.loads(json.dumps(d))  # tuples -> lists, keys -> str: JSON-exact

    @classmethod
    def from_dict(cls, d: dict) -> "Topology":
        """The inverse of to_dict: a topology from a result document (root: "document");
        UsageError where a node's distances are not one per node."""
        def tup(x):
            return tuple(tup(v) for v in x) if isinstance(x, list) else x

        def make(kind, item, **fix):  # fields a newer numaprobe added are left out
            known = {f.name for f in dataclasses.fields(kind)}
            return kind(**{k: tup(v) for k, v in item.items() if k in known} | fix)
        nodes = tuple(make(Node, n, hugepages={int(k): v for k, v in n["hugepages"].items()},
                           access=n["access"]) for n in d["nodes"])
        for n in nodes:
            if len(n.distances) != len(nodes):  # a SLIT row has one distance per node
                raise UsageError(f"node {n.id} has {len(n.distances)} distance(s) for "
                                 f"{len(nodes)} node(s)")
        return cls(cpus=tuple(make(Cpu, c) for c in d["cpus"]), nodes=nodes,
                   caches=tuple(make(Cache, c) for c in d["caches"]),
                   allowed=make(Allowed, d["allowed"]), settings=make(Settings, d["settings"]),
                   memory_available=d["memory_available"], memory_total=d["memory_total"],
                   numa=d.get("numa", True), root="document")

    def warnings(self) -> list[str]:
        """Settings worth a warning before measuring, in plain words."""
        out = []
        s, a = self.settings, self.allowed
        if s.numa_balancing:
            out.append("automatic NUMA balancing is on: the kernel migrates pages and threads "
                       "during runs (echo 0 > /proc/sys/kernel/numa_balancing)")
        if s.thp == "never":
            out.append("transparent huge pages are off: latency probes pay TLB misses unless "
                       "hugetlb pages are reserved")
        if set(s.governors) - {"performance"}:
            out.append(f"CPU frequency governor is {', '.join(s.governors)}, not performance: "
                       "clock speed may change during runs")
        online = set(self.online_cpus)
        limited = online - set(a.cpus)
        if limited:
            why = f"cgroup {a.cgroup}" if a.cgroup_cpus is not None and set(a.cgroup_cpus) != online \
                else "the affinity mask"
            out.append(f"this process may use CPUs {format_list(a.cpus)} only "
                       f"({len(limited)} of {len(online)} online CPUs excluded by {why})")
        if a.cpu_quota is not None and a.cpu_quota < len(self.usable_cpus):
            out.append(f"cgroup CPU quota is {a.cpu_quota:g} CPUs for {len(self.usable_cpus)} "
                       "usable CPUs: threads will be throttled")
        if self.offline_cpus:
            out.append(f"CPUs {format_list(self.offline_cpus)} are offline")
        if s.isolated:
            out.append(f"CPUs {format_list(s.isolated)} are isolated (isolcpus): the scheduler "
                       "does not balance onto them")
        if "constant_tsc" not in s.tsc_flags and s.tsc_flags:
            out.append("the TSC is not constant-rate: timings use it only after calibration")
        if not self.numa:
            out.append("the kernel exposes no NUMA nodes: treated as one node")
        total_nodes = sum(n.memory_total for n in self.nodes)
        if self.memory_total and total_nodes and abs(total_nodes - self.memory_total) > 0.1 * self.memory_total:
            out.append(f"the nodes report {_gib(total_nodes)} of memory but the kernel has "
                       f"{_gib(self.memory_total)}: per-node figures are incomplete on this "
                       "machine (a hypervisor's memory hot-plug, typically)")
        return out

    def node_bytes(self, node_id: int) -> int:
        """The node's memory; on a one-node machine the kernel's MemTotal, as free_bytes uses
        MemAvailable there (so the figures agree with what an allocation is checked against)."""
        if len(self.nodes) == 1 and self.memory_total is not None:
            return self.memory_total
        return self.node(node_id).memory_total

    def summary(self) -> str:
        """A few readable lines: nodes with CPUs and memory, distances, caches, allowed sets."""
        lines = []
        s = self.settings
        lines.append(f"{s.cpu_model or 'unknown CPU'}: {plural(len(self.packages) or 1, 'package')}, "
                     f"{plural(len(self.cores), 'core')}, "
                     f"{plural(len(self.online_cpus), 'online CPU')}, "
                     f"{plural(len(self.nodes), 'NUMA node')}"
                     + (" [virtual machine]" if s.virtualized else ""))
        if s.features:
            lines.append(f"  units: {', '.join(s.features)}")
        for n in self.nodes:
            cpus = format_list(n.cpus) if n.cpus else "none (memory only)"
            hp = ", ".join(f"{human_bytes(k)} pages {v['free']}/{v['total']} free"
                           for k, v in sorted(n.hugepages.items()) if v["total"])
            lines.append(f"  node {n.id}: CPUs {cpus}; memory {_gib(self.node_bytes(n.id))}, "
                         f"{_gib(self.free_bytes(n.id))} available"
                         + (f"; {hp}" if hp else ""))
        if len(self.nodes) > 1:  # as numactl -H prints it
            ids = self.node_ids
            width = max(4, len(str(max(ids))) + 2)
            lines.append("  node distances:")
            lines.append("  node" + "".join(f"{b:>{width}}" for b in ids))
            lines += [f"  {a:>3}:" + "".join(f"{self.distance(a, b):>{width}}" for b in ids)
                      for a in ids]
        hmat = [(n.id, n.access["0"]) for n in self.nodes if "0" in n.access]
        for nid, acc in hmat:
            lines.append(f"  HMAT node {nid} from {ids_words('node', acc['initiators'])}: read "
                         f"{acc.get('read_latency')} ns, {acc.get('read_bandwidth')} MB/s")
        lines += _smt_lines(self)
        seen = set()
        for c in self.caches:
            key = (c.level, c.type)
            if key in seen:
                continue
            seen.add(key)
            count = sum(1 for x in self.caches if (x.level, x.type) == key)
            lines.append(f"  L{c.level} {c.type.lower()}: {human_bytes(c.size)} x {count}, "
                         f"each shared by {plural(len(c.cpus), 'CPU')}")
        a = self.allowed
        lines.append(f"  allowed: CPUs {format_list(a.cpus)}, memory nodes {format_list(a.mems)}"
                     + (f", CPU quota {a.cpu_quota:g}" if a.cpu_quota is not None else ""))
        lines.append(f"  THP {s.thp}, NUMA balancing "
                     f"{'n/a' if s.numa_balancing is None else ('on' if s.numa_balancing else 'off')}"
                     f", governor {', '.join(s.governors) or 'n/a'}, clocksource {s.clocksource}")
        return "\n".join(lines)


def _smt_lines(topo: "Topology") -> list[str]:
    """Which CPUs share a physical core (SMT siblings), wrapped to 79 columns."""
    shared = [c for c in topo.cores if len(c) > 1]
    if not shared:
        return ["  SMT: none (one CPU per core)"]
    text = "  ".join(",".join(map(str, c)) for c in shared)
    return textwrap.wrap(f"SMT siblings (CPUs that share a core): {text}", 77,
                         initial_indent="  ", subsequent_indent="    ")


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def human_bytes(n: float) -> str:
    """Bytes as numaprobe writes them: 4 KiB, 1.5 MiB, 2 GiB."""
    for unit, div in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= div:
            v = n / div
            return f"{v:.0f} {unit}" if abs(v - round(v)) < 0.05 else f"{v:.1f} {unit}"
    return f"{int(n)} B"


# ------------------------------------------------------------------------------ the reader

# The reader itself lives in system.py, the one module that reads /sys and /proc.
_FS, _CapturingFS = FS, CapturingFS
default_root = description_root


def read(root: str | os.PathLike | None = None) -> Topology:
    """Reads the topology under ``root`` (default: $NUMAPROBE_SYSFS_ROOT or /)."""
    root = default_root() if root is None else root
    return _read(_FS(root))


_kept: dict[str, Topology] = {}   # root -> the description read by current()
# A forked child reads its own once: it may be moved to another cgroup by whoever forked it.
os.register_at_fork(after_in_child=_kept.clear)


def current(topology: Topology | None = None, *, refresh: bool = False) -> Topology:
    """The topology to check a request against: ``topology`` itself when one is given, else
    this machine's (root $NUMAPROBE_SYSFS_ROOT or /), read once per process and kept.

    What changes under a running process is not kept: this process's allowed CPUs and memory
    nodes (proc/self/status) are read again at every call; free memory is for the caller to
    read where it checks it (``memory_now``). ``refresh=True`` reads the whole description
    again and keeps that: placement does so when a system call refused a request that the
    kept description allowed (a CPU went offline, the cgroup's cpuset changed)."""
    if topology is not None:
        return topology
    root = str(default_root())
    kept = None if refresh else _kept.get(root)
    if kept is None:
        kept = _kept[root] = read(root)
        return kept
    fs = _FS(kept.root)
    status = fs.text(STATUS)
    if status is None:
        return kept
    cpus, mems = _allowed_sets(fs, status, tuple(c.id for c in kept.cpus), kept.node_ids)
    if (cpus, mems) == (kept.allowed.cpus, kept.allowed.mems):
        return kept
    return dataclasses.replace(kept, allowed=dataclasses.replace(kept.allowed, cpus=cpus,
                                                                 mems=mems))


def forget() -> None:
    """Drops the description current() keeps: its next call reads the machine again."""
    _kept.clear()


def memory_now(topo: Topology, nodes) -> Topology:
    """``topo`` with the memory figures of ``nodes`` read again under its root (free,
    reclaimable, huge pages per size) and the machine's MemAvailable: what changes while a
    process runs. A figure whose file cannot be read now keeps its old value."""
    fs = _FS(topo.root)
    meminfo = fs.text("proc/meminfo")
    available = _meminfo(meminfo, "MemAvailable") if meminfo is not None else None
    out = []
    for n in topo.nodes:
        if n.id in nodes and topo.numa:
            fresh, readable = _node_memory(fs, f"{NODE}/node{n.id}")
            if readable:
                n = dataclasses.replace(n, **fresh)
        elif n.id in nodes and meminfo is not None:  # no NUMA: the node is /proc/meminfo
            n = dataclasses.replace(n, memory_free=_meminfo(meminfo, "MemFree") or 0)
        out.append(n)
    return dataclasses.replace(topo, nodes=tuple(out), memory_available=(
        available if available is not None else topo.memory_available))


def capture(dest: str | os.PathLike, root: str | os.PathLike | None = None) -> Topology:
    """Copies the files the reader uses into ``dest`` (a new or empty directory) and returns
    the topology read while doing so; ``read(dest)`` then gives the same topology."""
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise UsageError(f"{dest} is not empty: capture into a new or empty directory")
    dest.mkdir(parents=True, exist_ok=True)
    root = default_root() if root is None else root
    topo = _read(_CapturingFS(root, dest))
    (dest / "expected.json").write_text(json.dumps(topo.to_dict(), indent=1) + "\n")
    return topo


CPU = "sys/devices/system/cpu"
NODE = "sys/devices/system/node"
STATUS = "proc/self/status"


def _ids(fs: _FS, rel: str) -> tuple[int, ...] | None:
    v = fs.value(rel)
    return None if v is None else _parsed(parse_list, v, fs, rel)


def _parsed(parse, text: str, fs: _FS, rel: str):
    """parse(text), with a failure naming the file it came from."""
    try:
        return parse(text)
    except UsageError as e:
        raise UsageError(f"{fs.path(rel)}: {e}") from None


def _read(fs: _FS) -> Topology:
    if not fs.path(CPU).is_dir():
        raise UsageError(f"{fs.path(CPU)} does not exist: not a Linux sysfs tree "
                         f"(root {fs.root})")
    cpu_ids = _ids(fs, f"{CPU}/possible") or _ids(fs, f"{CPU}/present") or tuple(
        int(n[3:]) for n in fs.list(CPU, r"cpu\d+"))
    present = set(_ids(fs, f"{CPU}/present") or cpu_ids)
    cpu_ids = tuple(c for c in cpu_ids if c in present)
    # Only present CPUs are online: a list naming others would cost a read per id below.
    online = set(_ids(fs, f"{CPU}/online") or cpu_ids).intersection(cpu_ids)

    meminfo = fs.text("proc/meminfo")  # read once: a capture must save what was used
    nodes, numa = _read_nodes(fs, cpu_ids, meminfo)
    node_of = {c: n.id for n in nodes for c in n.cpus}
    cpus = []
    for c in cpu_ids:
        base = f"{CPU}/cpu{c}/topology"
        siblings = _ids(fs, f"{base}/thread_siblings_list") if c in online else None
        cpus.append(Cpu(
            id=c, online=c in online, node=node_of.get(c, nodes[0].id),
            package=fs.int(f"{base}/physical_package_id") if c in online else None,
            die=fs.int(f"{base}/die_id") if c in online else None,
            core=fs.int(f"{base}/core_id") if c in online else None,
            siblings=siblings or (c,)))
    return Topology(
        cpus=tuple(cpus), nodes=nodes, caches=_read_caches(fs, sorted(online)),
        allowed=_read_allowed(fs, cpu_ids, nodes), settings=_read_settings(fs, sorted(online)),
        memory_available=_meminfo(meminfo, "MemAvailable"),
        memory_total=_meminfo(meminfo, "MemTotal"),
        numa=numa, root=str(fs.root))


def _meminfo(text: str | None, key: str) -> int | None:
    """A value in bytes from /proc/meminfo or a node's meminfo ("Node 0 MemFree:  12 kB")."""
    if text is None:
        return None
    m = re.search(rf"^(?:Node \d+ )?{re.escape(key)}:\s+([0-9]{{1,20}})( kB)?$", text, re.M)
    if not m:
        return None
    return int(m.group(1)) * (1024 if m.group(2) else 1)


def _read_nodes(fs: _FS, cpu_ids, meminfo: str | None) -> tuple[tuple[Node, ...], bool]:
    online = f"{NODE}/online"
    node_ids = _ids(fs, online)
    for n in node_ids or ():
        # Every online node has its directory: a list that names others is not the kernel's
        # (and checking here keeps "0-1048575" from becoming a million nodes).
        if not fs.path(f"{NODE}/node{n}").is_dir():
            raise UsageError(f"{fs.path(online)}: lists node {n}, which has no directory "
                             f"{fs.path(NODE)}/node{n}")
    counted = fs.path(online) if node_ids else f"the node directories in {fs.path(NODE)}"
    node_ids = node_ids or tuple(int(n[4:]) for n in fs.list(NODE, r"node\d+"))
    if not node_ids:
        total = _meminfo(meminfo, "MemTotal") or 0
        free = _meminfo(meminfo, "MemFree") or 0
        return (Node(id=0, cpus=tuple(cpu_ids), memory_total=total, memory_free=free,
                     memory_reclaimable=0, distances=(10,), hugepages={}, access={}),), False
    nodes, known = [], set(cpu_ids)
    for n in node_ids:
        base = f"{NODE}/node{n}"
        # Offline CPUs leave the node's cpulist but keep their cpuN link in the node directory.
        cpus = set(_ids(fs, f"{base}/cpulist") or ())
        cpus.update(int(x[3:]) for x in fs.list(base, r"cpu\d+"))
        memory, _ = _node_memory(fs, base)
        dist = fs.value(f"{base}/distance")
        distances = (10,) * len(node_ids) if not dist else _parsed(
            lambda text: _parse_distances(text, len(node_ids), counted), dist, fs,
            f"{base}/distance")
        nodes.append(Node(id=n, cpus=tuple(sorted(cpus & known)), **memory, distances=distances,
                          access=_read_access(fs, base)))
    return tuple(nodes), True


def _parse_distances(text: str, count: int, counted: object) -> tuple[int, ...]:
    """A node's distance file: its SLIT distance to each of the ``count`` nodes (those of
    ``counted``, named in the error)."""
    parts = text.split()
    if len(parts) != count or not all(re.fullmatch(r"[0-9]{1,9}", p) for p in parts):
        raise UsageError(f"expected {count} distance(s), one per node of {counted}, got "
                         f"{_shown(text)!r}")
    return tuple(int(p) for p in parts)


def _node_memory(fs: _FS, base: str) -> tuple[dict, bool]:
    """A node's memory fields (Node's memory_total, memory_free, memory_reclaimable, bytes, and
    hugepages), and whether its meminfo could be read (the byte figures are 0 where not)."""
    mi = fs.text(f"{base}/meminfo")
    hugepages = {}
    for d in fs.list(f"{base}/hugepages", r"hugepages-\d+kB"):
        size = int(d[len("hugepages-"):-2]) * 1024
        hugepages[size] = {"total": fs.int(f"{base}/hugepages/{d}/nr_hugepages") or 0,
                           "free": fs.int(f"{base}/hugepages/{d}/free_hugepages") or 0}
    return {"memory_total": _meminfo(mi, "MemTotal") or 0,
            "memory_free": _meminfo(mi, "MemFree") or 0,
            "memory_reclaimable": (_meminfo(mi, "Active(file)") or 0)
            + (_meminfo(mi, "Inactive(file)") or 0),
            "hugepages": hugepages}, mi is not None


def _read_access(fs: _FS, base: str) -> dict:
    """HMAT access classes of a memory target: access0 (best initiators of any kind) and
    access1 (best CPU initiators)."""
    out = {}
    for cls in fs.list(base, r"access\d+"):
        d = f"{base}/{cls}/initiators"
        entry = {"initiators": [int(x[4:]) for x in fs.list(d, r"node\d+")]}
        if not entry["initiators"]:
            continue  # a memory-less initiator node: its class lists targets, not initiators
        for key in ("read_latency", "write_latency", "read_bandwidth", "write_bandwidth"):
            entry[key] = fs.int(f"{d}/{key}")
        out[cls[len("access"):]] = entry
    return out


def _read_caches(fs: _FS, online) -> tuple[Cache, ...]:
    seen, caches = set(), []
    for c in online:
        base = f"{CPU}/cpu{c}/cache"
        for idx in fs.list(base, r"index\d+"):
            d = f"{base}/{idx}"
            level, ctype, size = fs.int(f"{d}/level"), fs.value(f"{d}/type"), fs.value(f"{d}/size")
            if level is None or ctype is None or not size:
                continue
            sharing = _ids(fs, f"{d}/shared_cpu_list") or (c,)
            key = (level, ctype, sharing)
            if key in seen:
                continue
            seen.add(key)
            caches.append(Cache(level=level, type=ctype, size=_parsed(_parse_size, size, fs, f"{d}/size"),
                                line_size=fs.int(f"{d}/coherency_line_size"), cpus=sharing))
    return tuple(sorted(caches, key=lambda x: (x.level, x.type, x.cpus)))


def _parse_size(text: str) -> int:
    m = re.fullmatch(r"([0-9]{1,18})\s*([KMG]?)", text.strip())
    if not m:
        raise UsageError(f"cannot read cache size {_shown(text)!r}: expected bytes or 32K, 1M")
    return int(m.group(1)) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[m.group(2)]


def _status_list(fs: _FS, status: str | None, key: str) -> tuple[int, ...] | None:
    value = parse_status(status).get(key) if status is not None else None
    return _parsed(parse_list, value, fs, STATUS) if value is not None else None


def _allowed_sets(fs: _FS, status: str | None, cpu_ids,
                  node_ids) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """This process's affinity mask and allowed memory nodes from proc/self/status (its text,
    read under fs's root): every CPU and node where the file does not say."""
    cpus = _status_list(fs, status, "Cpus_allowed_list") or tuple(cpu_ids)
    mems = _status_list(fs, status, "Mems_allowed_list") or tuple(node_ids)
    return cpus, tuple(m for m in mems if m in set(node_ids))


def _read_allowed(fs: _FS, cpu_ids, nodes) -> Allowed:
    cpus, mems = _allowed_sets(fs, fs.text(STATUS), cpu_ids, tuple(n.id for n in nodes))
    cg_path, version, cg_cpus, cg_mems, quota = None, None, None, None, None
    for line in (fs.text("proc/self/cgroup") or "").splitlines():
        if line.count(":") < 2:
            raise UsageError(f"{fs.path('proc/self/cgroup')}: cannot read the line "
                             f"{_shown(line)!r}: expected ID:CONTROLLERS:PATH")
        hid, controllers, path = line.split(":", 2)
        if hid == "0" and controllers == "" and fs.text("sys/fs/cgroup/cgroup.controllers") is not None:
            cg_path, version = path, 2
            d = "sys/fs/cgroup" + path.rstrip("/")
            cg_cpus = _ids(fs, f"{d}/cpuset.cpus.effective")
            cg_mems = _ids(fs, f"{d}/cpuset.mems.effective")
            # A quota set on any ancestor limits this cgroup too: the tightest one counts.
            quotas = [_parsed(_cpu_max, fs.value(f"{anc}/cpu.max"), fs, f"{anc}/cpu.max")
                      for anc in _ancestors(d)]
            quota = min((q for q in quotas if q is not None), default=None)
        elif "cpuset" in controllers.split(",") and version != 2:
            cg_path, version = path, 1
            d = "sys/fs/cgroup/cpuset" + path.rstrip("/")
            cg_cpus = _ids(fs, f"{d}/cpuset.effective_cpus") or _ids(fs, f"{d}/cpuset.cpus")
            cg_mems = _ids(fs, f"{d}/cpuset.effective_mems") or _ids(fs, f"{d}/cpuset.mems")
        elif "cpu" in controllers.split(",") and version != 2:
            d = f"sys/fs/cgroup/{controllers}" + path.rstrip("/")
            q, p = fs.int(f"{d}/cpu.cfs_quota_us"), fs.int(f"{d}/cpu.cfs_period_us")
            quota = q / p if q and q > 0 and p else None
    return Allowed(cpus=cpus, mems=mems, cgroup=cg_path, cgroup_version=version,
                   cgroup_cpus=cg_cpus, cgroup_mems=cg_mems, cpu_quota=quota)


def _ancestors(d: str) -> list[str]:
    """"sys/fs/cgroup/a/b" -> the cgroup and its parents below the root: [.../a/b, .../a]."""
    out = []
    while d != "sys/fs/cgroup":
        out.append(d)
        d = d.rsplit("/", 1)[0]
    return out


def _cpu_max(text: str | None) -> float | None:
    """cgroup v2 cpu.max: "max 100000" (no limit) or "150000 100000" (1.5 CPUs)."""
    if not text:
        return None
    quota, _, period = text.partition(" ")
    if quota == "max" or not period:
        return None
    if not re.fullmatch(r"[0-9]{1,18} [0-9]{1,18}", f"{quota} {period}") or int(period) == 0:
        raise UsageError(f"cannot read {_shown(text)!r}: expected \"max PERIOD\" or "
                         "\"QUOTA PERIOD\" in microseconds")
    return int(quota) / int(period)


def _read_settings(fs: _FS, online) -> Settings:
    cpuinfo = fs.text("proc/cpuinfo") or ""
    model = re.search(r"^(?:model name|Model|CPU part)\s*:\s*(.+)$", cpuinfo, re.M)
    flags_m = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", cpuinfo, re.M)
    flags = set(flags_m.group(1).split()) if flags_m else set()
    governors = {fs.value(f"{CPU}/cpu{c}/cpufreq/scaling_governor") for c in online}
    smt = fs.int(f"{CPU}/smt/active")
    return Settings(
        cpu_model=model.group(1).strip() if model else None,
        numa_balancing=fs.int("proc/sys/kernel/numa_balancing"),
        thp=_bracketed(fs.value("sys/kernel/mm/transparent_hugepage/enabled")),
        thp_defrag=_bracketed(fs.value("sys/kernel/mm/transparent_hugepage/defrag")),
        governors=tuple(sorted(g for g in governors if g)),
        isolated=_ids(fs, f"{CPU}/isolated") or (),
        smt_active=None if smt is None else bool(smt),
        tsc_flags=tuple(sorted(f for f in flags if f.startswith("tsc") or f in (
            "constant_tsc", "nonstop_tsc", "rdtscp"))),
        virtualized="hypervisor" in flags,
        clocksource=fs.value("sys/devices/system/clocksource/clocksource0/current_clocksource"),
        cpu_flags=tuple(sorted(flags)))


def _bracketed(text: str | None) -> str | None:
    """"always [madvise] never" -> "madvise"."""
    if text is None:
        return None
    m = re.search(r"\[([^\]\s]+)\]", text)
    return m.group(1) if m else text


# ------------------------------------------------------------------------ the result kind

def _html(r: dict) -> str:
    from .report import html as H
    gib = 2 ** 30
    nodes = H.table(["node", "CPUs", "memory GiB", "free GiB", "distances"],
                   [[str(n["id"]), format_list(n["cpus"]) or "none",
                     f"{n['memory_total'] / gib:.1f}", f"{n['memory_free'] / gib:.1f}",
                     " ".join(map(str, n.get("distances") or []))] for n in r.get("nodes", [])],
                   caption="NUMA nodes")
    caches = {}
    for c in r.get("caches", []):
        key = (c["level"], c["type"], c["size"])
        caches[key] = caches.get(key, 0) + 1
    ctab = H.table(["level", "type", "size", "instances"],
                  [[f"L{lv}", t, human_bytes(s), str(k)] for (lv, t, s), k in sorted(caches.items())],
                  caption="caches", numeric=(2, 3))
    s, a = r.get("settings") or {}, r.get("allowed") or {}
    kv = H.kv([("allowed CPUs", format_list(a.get("cpus", []))),
              ("allowed memory nodes", format_list(a.get("mems", []))),
              ("cgroup", f"{a.get('cgroup')} (v{a.get('cgroup_version')})"),
              ("SMT active", s.get("smt_active")),
              ("vector and matrix units", ", ".join(
                  n for f, n in FEATURES if f in (s.get("cpu_flags") or ())) or "none named"),
              ("isolated CPUs", format_list(s.get("isolated") or []))])
    return nodes + ctab + kv


def _register() -> None:
    from .kinds import Kind, register
    register(Kind("topology", "topology",
                  text=lambda doc: Topology.from_dict(doc["result"]).summary(),
                  html=lambda doc: _html(doc["result"]), rows=lambda doc: _rows(doc["result"])))


def _rows(r: dict) -> tuple[list, list]:
    """One row per CPU: where it sits (package, die, core, node), its SMT siblings, and
    whether this process may use it."""
    allowed = set((r.get("allowed") or {}).get("cpus", []))
    return (["cpu", "online", "allowed", "node", "package", "die", "core", "siblings"],
            [[c["id"], c["online"], c["id"] in allowed, c["node"], c["package"], c["die"],
              c["core"], format_list(c["siblings"])] for c in r.get("cpus", [])])


_register()
