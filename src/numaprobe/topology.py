"""What the machine is: CPUs, caches, NUMA nodes, what this process may use, and the settings
that change results. Read from /sys and /proc under a root that is an argument, never a global.

    >>> topo = numaprobe.topology.read()           # this machine
    >>> topo = numaprobe.topology.read("tests/data/sysfs/two-socket-smt")
    >>> topo.node_of(3), topo.cpu_nodes, topo.distance(0, 1)

The root defaults to ``$NUMAPROBE_SYSFS_ROOT`` or ``/``. ``capture(dir)`` copies exactly the
files the reader uses, so a user can send theirs and it becomes a test case.

A machine without NUMA support in the kernel is one node holding every CPU.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Topology", "Cpu", "Cache", "Node", "Allowed", "Settings",
    "read", "capture", "parse_list", "format_list", "human_bytes",
]


# ------------------------------------------------------------------------------ list syntax

def parse_list(text: str) -> tuple[int, ...]:
    """Parses the kernel's (and numactl's) list syntax: ``"0-3,8,10-11"`` -> (0,1,2,3,8,10,11).

    Raises ValueError naming the bad part. Empty text is the empty list."""
    out: set[int] = set()
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?(?::(\d+))?", part)
        if not m or (m.group(2) is None and m.group(3) is not None):
            raise ValueError(f"cannot read {part!r} in the list {text.strip()!r}: "
                             "expected numbers and ranges like 0-3,8")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        step = int(m.group(3) or 1)
        if hi < lo or step < 1:
            raise ValueError(f"bad range {part!r} in {text.strip()!r}")
        out.update(range(lo, hi + 1, step))
    return tuple(sorted(out))


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
        raise ValueError(f"there is no node {node_id}; nodes: {format_list(self.node_ids)}")

    def cpu(self, cpu_id: int) -> Cpu:
        for c in self.cpus:
            if c.id == cpu_id:
                return c
        raise ValueError(f"there is no CPU {cpu_id}; CPUs: {format_list(c.id for c in self.cpus)}")

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
        """SLIT distance from node a to node b (10 = local)."""
        return self.node(a).distances[self.node_ids.index(b)]

    def free_bytes(self, node_id: int) -> int:
        """Bytes a bound allocation on the node can get: free memory plus droppable page cache.

        On a one-node machine the kernel's own MemAvailable is used: some hypervisors report
        per-node figures that cover only part of the memory."""
        if len(self.nodes) == 1 and self.memory_available is not None:
            return self.memory_available
        n = self.node(node_id)
        return n.memory_free + n.memory_reclaimable

    # --- documents -------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        del d["root"]
        for n in d["nodes"]:
            n["hugepages"] = {str(k): v for k, v in sorted(n["hugepages"].items())}
        return json.loads(json.dumps(d))  # tuples -> lists, keys -> str: JSON-exact

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

    def summary(self) -> str:
        """A few readable lines: nodes with CPUs and memory, distances, caches, allowed sets."""
        lines = []
        s = self.settings
        lines.append(f"{s.cpu_model or 'unknown CPU'}: {len(self.packages) or 1} package(s), "
                     f"{len(self.cores)} core(s), {len(self.online_cpus)} online CPU(s), "
                     f"{len(self.nodes)} NUMA node(s)"
                     + (" [virtual machine]" if s.virtualized else ""))
        for n in self.nodes:
            cpus = format_list(n.cpus) if n.cpus else "none (memory only)"
            hp = ", ".join(f"{human_bytes(k)} pages {v['free']}/{v['total']} free"
                           for k, v in sorted(n.hugepages.items()) if v["total"])
            lines.append(f"  node {n.id}: CPUs {cpus}; memory {_gib(n.memory_total)} "
                         f"({_gib(n.memory_free)} free)" + (f"; {hp}" if hp else ""))
        if len(self.nodes) > 1:
            ids = self.node_ids
            lines.append("  distances: " + "  ".join(
                f"{a}->" + ",".join(str(self.distance(a, b)) for b in ids) for a in ids))
        hmat = [(n.id, n.access["0"]) for n in self.nodes if "0" in n.access]
        for nid, acc in hmat:
            lines.append(f"  HMAT node {nid} from {format_list(acc['initiators'])}: "
                         f"read {acc.get('read_latency')} ns, {acc.get('read_bandwidth')} MB/s")
        seen = set()
        for c in self.caches:
            key = (c.level, c.type)
            if key in seen:
                continue
            seen.add(key)
            count = sum(1 for x in self.caches if (x.level, x.type) == key)
            lines.append(f"  L{c.level} {c.type.lower()}: {human_bytes(c.size)} x {count}, "
                         f"shared by {len(c.cpus)} CPU(s)")
        a = self.allowed
        lines.append(f"  allowed: CPUs {format_list(a.cpus)}, memory nodes {format_list(a.mems)}"
                     + (f", CPU quota {a.cpu_quota:g}" if a.cpu_quota is not None else ""))
        lines.append(f"  THP {s.thp}, NUMA balancing "
                     f"{'n/a' if s.numa_balancing is None else ('on' if s.numa_balancing else 'off')}"
                     f", governor {', '.join(s.governors) or 'n/a'}, clocksource {s.clocksource}")
        return "\n".join(lines)


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

class _FS:
    """Every read of /sys and /proc goes through here, relative to one root."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, rel: str) -> Path:
        return self.root / rel.lstrip("/")

    def text(self, rel: str) -> str | None:
        try:
            return self.path(rel).read_text()
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return None
        except OSError:  # some sysfs files fail to read on some kernels (EIO, EINVAL)
            return None

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


class _CapturingFS(_FS):
    """Reads like _FS and copies what it reads into another directory."""

    def __init__(self, root, dest: Path):
        super().__init__(root)
        self.dest = dest

    def text(self, rel):
        t = super().text(rel)
        if t is not None:
            out = self.dest / rel.lstrip("/")
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(t)
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


def default_root() -> str:
    return os.environ.get("NUMAPROBE_SYSFS_ROOT") or "/"


def read(root: str | os.PathLike | None = None) -> Topology:
    """Reads the topology under ``root`` (default: $NUMAPROBE_SYSFS_ROOT or /)."""
    root = default_root() if root is None else root
    return _read(_FS(root))


def capture(dest: str | os.PathLike, root: str | os.PathLike | None = None) -> Topology:
    """Copies the files the reader uses into ``dest`` (a new or empty directory) and returns
    the topology read while doing so; ``read(dest)`` then gives the same topology."""
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise ValueError(f"{dest} is not empty: capture into a new or empty directory")
    dest.mkdir(parents=True, exist_ok=True)
    root = default_root() if root is None else root
    topo = _read(_CapturingFS(root, dest))
    (dest / "expected.json").write_text(json.dumps(topo.to_dict(), indent=1) + "\n")
    return topo


CPU = "sys/devices/system/cpu"
NODE = "sys/devices/system/node"


def _ids(fs: _FS, rel: str) -> tuple[int, ...] | None:
    v = fs.value(rel)
    return None if v is None else parse_list(v)


def _read(fs: _FS) -> Topology:
    if not fs.path(CPU).is_dir():
        raise ValueError(f"{fs.path(CPU)} does not exist: not a Linux sysfs tree "
                         f"(root {fs.root})")
    cpu_ids = _ids(fs, f"{CPU}/possible") or _ids(fs, f"{CPU}/present") or tuple(
        int(n[3:]) for n in fs.list(CPU, r"cpu\d+"))
    present = set(_ids(fs, f"{CPU}/present") or cpu_ids)
    cpu_ids = tuple(c for c in cpu_ids if c in present)
    online = set(_ids(fs, f"{CPU}/online") or cpu_ids)

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
    m = re.search(rf"^(?:Node \d+ )?{re.escape(key)}:\s+(\d+)( kB)?$", text, re.M)
    if not m:
        return None
    return int(m.group(1)) * (1024 if m.group(2) else 1)


def _read_nodes(fs: _FS, cpu_ids, meminfo: str | None) -> tuple[tuple[Node, ...], bool]:
    node_ids = _ids(fs, f"{NODE}/online") or tuple(int(n[4:]) for n in fs.list(NODE, r"node\d+"))
    if not node_ids:
        total = _meminfo(meminfo, "MemTotal") or 0
        free = _meminfo(meminfo, "MemFree") or 0
        return (Node(id=0, cpus=tuple(cpu_ids), memory_total=total, memory_free=free,
                     memory_reclaimable=0, distances=(10,), hugepages={}, access={}),), False
    nodes = []
    for n in node_ids:
        base = f"{NODE}/node{n}"
        # Offline CPUs leave the node's cpulist but keep their cpuN link in the node directory.
        cpus = set(_ids(fs, f"{base}/cpulist") or ())
        cpus.update(int(x[3:]) for x in fs.list(base, r"cpu\d+"))
        mi = fs.text(f"{base}/meminfo")
        hugepages = {}
        for d in fs.list(f"{base}/hugepages", r"hugepages-\d+kB"):
            size = int(d[len("hugepages-"):-2]) * 1024
            hugepages[size] = {"total": fs.int(f"{base}/hugepages/{d}/nr_hugepages") or 0,
                               "free": fs.int(f"{base}/hugepages/{d}/free_hugepages") or 0}
        dist = fs.value(f"{base}/distance")
        nodes.append(Node(
            id=n, cpus=tuple(sorted(c for c in cpus if c in set(cpu_ids))),
            memory_total=_meminfo(mi, "MemTotal") or 0,
            memory_free=_meminfo(mi, "MemFree") or 0,
            memory_reclaimable=(_meminfo(mi, "Active(file)") or 0) + (_meminfo(mi, "Inactive(file)") or 0),
            distances=tuple(int(x) for x in dist.split()) if dist else (10,) * len(node_ids),
            hugepages=hugepages, access=_read_access(fs, base)))
    return tuple(nodes), True


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
            caches.append(Cache(level=level, type=ctype, size=_parse_size(size),
                                line_size=fs.int(f"{d}/coherency_line_size"), cpus=sharing))
    return tuple(sorted(caches, key=lambda x: (x.level, x.type, x.cpus)))


def _parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+)\s*([KMG]?)", text.strip())
    if not m:
        raise ValueError(f"cannot read cache size {text!r}")
    return int(m.group(1)) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[m.group(2)]


def _status_list(status: str | None, key: str) -> tuple[int, ...] | None:
    if status is None:
        return None
    m = re.search(rf"^{key}:\s*(\S*)$", status, re.M)
    return parse_list(m.group(1)) if m else None


def _read_allowed(fs: _FS, cpu_ids, nodes) -> Allowed:
    status = fs.text("proc/self/status")
    cpus = _status_list(status, "Cpus_allowed_list") or tuple(cpu_ids)
    mems = _status_list(status, "Mems_allowed_list") or tuple(n.id for n in nodes)
    mems = tuple(m for m in mems if m in {n.id for n in nodes})
    cg_path, version, cg_cpus, cg_mems, quota = None, None, None, None, None
    for line in (fs.text("proc/self/cgroup") or "").splitlines():
        hid, controllers, path = line.split(":", 2)
        if hid == "0" and controllers == "" and fs.text("sys/fs/cgroup/cgroup.controllers") is not None:
            cg_path, version = path, 2
            d = "sys/fs/cgroup" + path.rstrip("/")
            cg_cpus = _ids(fs, f"{d}/cpuset.cpus.effective")
            cg_mems = _ids(fs, f"{d}/cpuset.mems.effective")
            # A quota set on any ancestor limits this cgroup too: the tightest one counts.
            quotas = [_cpu_max(fs.value(f"{anc}/cpu.max")) for anc in _ancestors(d)]
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
        clocksource=fs.value("sys/devices/system/clocksource/clocksource0/current_clocksource"))


def _bracketed(text: str | None) -> str | None:
    """"always [madvise] never" -> "madvise"."""
    if text is None:
        return None
    m = re.search(r"\[([^\]\s]+)\]", text)
    return m.group(1) if m else text
