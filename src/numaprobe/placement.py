"""Where things run and where their memory lives: pinning, memory policies, node-local
allocation, page placement asked from the kernel, migration.

    >>> node = numaprobe.read_topology().usable_mems[0]
    >>> with numaprobe.bound(cpus=[0], nodes=[node]):      # this thread: CPU 0, memory on node
    ...     ...
    >>> with numaprobe.alloc(1 << 26, node=node) as mem:   # 64 MiB bound to node, touched
    ...     a = numpy.frombuffer(mem, dtype=numpy.float64) # a view, no copy
    ...     print(mem.pages())                             # where every page is, per the kernel
    ...     del a                                          # views go before close()
    16384 pages of 4 KiB: node 0 100%; in 2 MiB pages: 100%

Every request is checked against the topology and this process's allowed sets before a system
call is made: a bad CPU or node is a ValueError that lists the valid ones, too little memory a
MemoryError that says how much there is, and nothing is left half-allocated.

Without ``topology=``, requests are checked against ``topology.current()``: the description read
once per process, with the allowed sets read at every call and, for alloc(), the free memory of
the nodes asked for. When a system call refuses a request that this check allowed, the
description is read again (the machine changed under the process) and the request checked
again, so the error says what is valid now.
"""
from __future__ import annotations

import contextlib
import errno
import math
import operator
import os
import re
import subprocess
from dataclasses import dataclass, field

from .errors import UsageError, NotEnoughMemory
from . import _core, system
from .topology import (Topology, current, default_root, forget, format_list, human_bytes,
                       memory_now, parse_list)

__all__ = [
    "pin", "pinned", "membind", "bound", "alloc", "Memory", "Pages", "where", "migrate",
    "run_bound", "check_cpus", "check_nodes", "likwid_cpus", "POLICIES", "PAGE_SIZES",
]

POLICIES = {"bind": _core.POLICY_BIND, "preferred": _core.POLICY_PREFERRED,
            "interleave": _core.POLICY_INTERLEAVE}
_POLICY_NAMES = {v: k for k, v in POLICIES.items()} | {
    _core.POLICY_DEFAULT: "default", _core.POLICY_LOCAL: "local"}
PAGE_SIZES = ("auto", "4k", "2m", "1g")
_2M, _1G = 2 << 20, 1 << 30
_BASE = os.sysconf("SC_PAGESIZE")


# ---------------------------------------------------------------------------- validation

def _refused(error: OSError, topology: Topology | None, recheck) -> None:
    """A system call refused a request that the check allowed: the kept description may be
    out of date (a CPU went offline, the cgroup's cpuset shrank). Without a given topology it
    is read again now and the request checked again against it: its ValueError, saying what
    is valid now, replaces the bare errno. With one, the caller's description stands and the
    OSError is theirs; the kept one is dropped all the same (the caller may have passed it
    on from current()), so the next call reads the machine again."""
    if topology is not None:
        forget()
        return
    try:
        recheck(current(refresh=True))
    except ValueError as e:
        raise e from error


def check_cpus(cpus, topology: Topology | None = None) -> tuple[int, ...]:
    """Returns the CPUs sorted, or raises ValueError saying which is wrong and what is valid:
    unknown, offline, or outside this process's allowed set (cgroup cpuset)."""
    return _checked(_valid_cpus, cpus, topology)


def check_nodes(nodes, topology: Topology | None = None, *, need: str = "memory") -> tuple[int, ...]:
    """Returns the nodes sorted, or raises ValueError: unknown node, a node without memory
    (need="memory") or without CPUs (need="cpus"), a node outside the allowed memory nodes."""
    return _checked(_valid_nodes, nodes, topology, need=need)


def _checked(valid, values, topology: Topology | None, **kw):
    """A check that says no against a description of this machine reads the machine again
    and asks once more before saying it: the description, kept or handed down, may be older
    than the machine (a CPU back online, a cpuset that grew). A captured tree or a document
    (another root) is used as it is."""
    try:
        return valid(values, current(topology), **kw)
    except UsageError:
        if topology is not None and str(topology.root) != str(default_root()):
            raise
        return valid(values, current(refresh=True), **kw)


# likwid's thread domains: the letter, what it names, and the CPUs of domain k.
_DOMAINS = {
    "N": ("the node (the whole machine)", lambda t, k: t.online_cpus if k == 0 else ()),
    "S": ("socket", lambda t, k: tuple(c.id for c in t.cpus if c.online and c.package == k)),
    "D": ("die", lambda t, k: _dies(t)[k] if k < len(_dies(t)) else ()),
    "M": ("NUMA memory domain", lambda t, k: tuple(c for c in t.cpus_of(k) if c in
                                                   t.online_cpus) if k in t.node_ids else ()),
    "C": ("last-level cache group", lambda t, k: _llc_groups(t)[k]
          if k < len(_llc_groups(t)) else ()),
}


def _dies(topo: Topology) -> list[tuple[int, ...]]:
    keys = sorted({(c.package, c.die) for c in topo.cpus if c.online})
    return [tuple(c.id for c in topo.cpus if c.online and (c.package, c.die) == k) for k in keys]


def _llc_groups(topo: Topology) -> list[tuple[int, ...]]:
    top = max((c.level for c in topo.caches), default=None)
    return sorted({c.cpus for c in topo.caches if c.level == top}) if top else [topo.online_cpus]


def likwid_cpus(text: str, topology: Topology | None = None) -> tuple[int, ...]:
    """CPUs from likwid's thread-domain syntax: ``S0:0-3`` is the first four CPUs of socket 0
    (``S0:`` all of them),
    counted as likwid does, physical cores first and their SMT siblings after (so on a 2-way
    SMT machine S0:0-3 are four distinct cores); domains N (the whole machine), S<k>
    (socket), D<k> (die), M<k> (NUMA domain), C<k> (last-level cache group); several joined
    by ``@`` (``S0:0-1@S1:0-1``). likwid's expression and scatter forms (E:, :scatter) are
    refused with what is accepted."""
    topo = current(topology)
    out: list[int] = []
    for part in text.strip().split("@"):
        m = re.fullmatch(r"([NSDMC])(\d*):([\d,\-:]*)", part.strip())
        if not m or (m.group(1) != "N" and not m.group(2)):
            raise UsageError(
                f"cannot read {part!r} as a likwid thread domain: use DOMAIN:INDICES such as "
                "N:0-7, S0:0-3, M1:0-1, C0:0-3 or D0:0-1, several joined by @")
        letter, k = m.group(1), int(m.group(2) or 0)
        what, cpus_of = _DOMAINS[letter]
        members = cpus_of(topo, k)
        if not members:
            raise UsageError(f"{part!r}: there is no {what} {letter}{m.group(2)} with online "
                             "CPUs on this machine")
        # likwid's order: the first thread of every core, then the second of every core, ...
        cores: dict[tuple, list[int]] = {}
        for c in sorted(members):
            cores.setdefault(topo.cpu(c).siblings, []).append(c)
        ordered = [t[i] for i in range(max(map(len, cores.values())))
                   for t in cores.values() if i < len(t)]
        for i in parse_list(m.group(3)) if m.group(3) else range(len(ordered)):  # S0: all
            if i >= len(ordered):
                raise UsageError(f"{part!r}: {letter}{m.group(2)} has {len(ordered)} CPUs "
                                 f"(indices 0-{len(ordered) - 1}), not index {i}")
            out.append(ordered[i])
    return tuple(dict.fromkeys(out))


def _valid_cpus(cpus, topo: Topology) -> tuple[int, ...]:
    cpus = tuple(sorted(set(_as_ints(cpus, "CPU"))))
    if not cpus:
        raise UsageError("no CPUs given; usable CPUs: " + format_list(topo.usable_cpus))
    known = {c.id for c in topo.cpus}
    online = set(topo.online_cpus)
    allowed = set(topo.allowed.cgroup_cpus or topo.online_cpus) & online
    for c in cpus:
        if c not in known:
            raise UsageError(f"CPU {c} does not exist; CPUs: {format_list(known)}")
        if c not in online:
            raise UsageError(f"CPU {c} is offline; online CPUs: {format_list(online)}")
        if c not in allowed:
            raise UsageError(f"CPU {c} is outside this process's allowed CPUs "
                             f"{format_list(allowed)} (cgroup {topo.allowed.cgroup})")
    return cpus


def _valid_nodes(nodes, topo: Topology, *, need: str = "memory") -> tuple[int, ...]:
    nodes = tuple(sorted(set(_as_ints(nodes, "node"))))
    if not nodes:
        raise UsageError("no nodes given; nodes: " + format_list(topo.node_ids))
    for n in nodes:
        if n not in topo.node_ids:
            raise UsageError(f"node {n} does not exist; nodes: {format_list(topo.node_ids)}")
        if need == "memory":
            if not topo.node(n).has_memory:
                raise UsageError(f"node {n} has no memory; nodes with memory: "
                                 f"{format_list(topo.memory_nodes)}")
            if n not in topo.allowed.mems:
                raise UsageError(f"node {n} is outside this process's allowed memory nodes "
                                 f"{format_list(topo.allowed.mems)}")
        elif need == "cpus" and n not in topo.cpu_nodes:
            raise UsageError(f"node {n} has no online CPUs; nodes with CPUs: "
                             f"{format_list(topo.cpu_nodes)}")
    return nodes


def _as_ints(values, what: str) -> list[int]:
    """CPU or node ids from what a caller may hand over: an int (numpy's too), an iterable of
    them, or a list in the kernel's syntax ("0-3,8"). A float, a bool or anything else is
    refused rather than rounded or read character by character."""
    if isinstance(values, str):
        return list(parse_list(values))
    if not isinstance(values, bool) and hasattr(values, "__index__"):
        values = [values]
    try:
        values = list(values)
    except TypeError:
        raise UsageError(f"{what} ids are whole numbers, a list of them or a list like "
                         f"'0-3,8', got {values!r}") from None
    out = []
    for v in values:
        if isinstance(v, bool):
            raise UsageError(f"{what} ids are whole numbers, got {v!r} (a bool)")
        try:
            v = operator.index(v)
        except TypeError:
            raise UsageError(f"{what} ids are whole numbers, got {v!r}") from None
        if v < 0:
            raise UsageError(f"{what} ids are not negative, got {v}")
        out.append(v)
    return out


# ------------------------------------------------------------------------------- pinning

def pin(cpus, *, process: bool = False, topology: Topology | None = None) -> frozenset[int]:
    """Pins the calling thread (or, with process=True, every thread of this process) to
    ``cpus``. Returns the previous CPU set of the calling thread."""
    cpus = check_cpus(cpus, topology)
    previous = _core.affinity_get(0)
    try:
        for tid in system.tasks() if process else [0]:
            try:
                _core.affinity_set(cpus, tid)
            except ProcessLookupError:  # a thread that ended meanwhile
                pass
    except OSError as e:
        _refused(e, topology, lambda fresh: check_cpus(cpus, fresh))
        raise
    return previous


@contextlib.contextmanager
def pinned(cpus, *, topology: Topology | None = None):
    """Pins the calling thread for the duration of the block; restores its previous CPU set,
    also on exceptions."""
    previous = pin(cpus, topology=topology)
    try:
        yield tuple(sorted(_core.affinity_get(0)))
    finally:
        _core.affinity_set(previous, 0)


def membind(nodes, policy: str = "bind", *, topology: Topology | None = None):
    """Sets the calling thread's memory policy for new allocations; returns the previous one
    as (policy code, nodes) for restoring with _core.mempolicy_set."""
    code = _policy_code(policy)
    nodes = check_nodes(nodes, topology)
    if policy == "preferred" and len(nodes) != 1:
        raise UsageError(f"preferred takes one node, got {format_list(nodes)}")
    previous = _core.mempolicy_get()
    try:
        _core.mempolicy_set(code, nodes)
    except OSError as e:
        _refused(e, topology, lambda fresh: check_nodes(nodes, fresh))
        raise
    return previous


def current_policy() -> tuple[str, tuple[int, ...]]:
    """The calling thread's memory policy: (name, nodes)."""
    code, nodes = _core.mempolicy_get()
    return _POLICY_NAMES.get(code, str(code)), tuple(sorted(nodes))


@contextlib.contextmanager
def bound(cpus=None, nodes=None, policy: str = "bind", *, cpunodes=None,
          topology: Topology | None = None):
    """Runs the block with the calling thread on ``cpus`` (or the CPUs of ``cpunodes``) and
    its new memory on ``nodes`` by ``policy``; restores affinity and policy on exit, also on
    exceptions. Either part may be omitted."""
    topo = current(topology)
    if cpunodes is not None:
        if cpus is not None:
            raise UsageError("give cpus or cpunodes, not both")
        cpus = [c for n in check_nodes(cpunodes, topo, need="cpus")
                for c in topo.cpus_of(n, usable=True)]
    if cpus is not None:
        cpus = check_cpus(cpus, topo)
    if nodes is not None:
        nodes = check_nodes(nodes, topo)
        _policy_code(policy)
    old_cpus = _core.affinity_get(0)
    old_policy = _core.mempolicy_get()
    try:
        if cpus is not None:
            try:
                _core.affinity_set(cpus, 0)
            except OSError as e:
                _refused(e, topology, lambda fresh: check_cpus(cpus, fresh))
                raise
        if nodes is not None:
            membind(nodes, policy, topology=topology)  # which rechecks if the kernel refuses
        yield
    finally:
        _core.mempolicy_set(*old_policy)
        _core.affinity_set(old_cpus, 0)


def _policy_code(policy: str) -> int:
    try:
        return POLICIES[policy]
    except (KeyError, TypeError):
        raise UsageError(f"unknown memory policy {policy!r}; policies: "
                         f"{', '.join(POLICIES)}") from None


def run_bound(cmd, cpus=None, nodes=None, policy: str = "bind", *, cpunodes=None, **popen):
    """Starts ``cmd`` (a list) as a child bound like ``numactl --physcpubind --membind``;
    returns the subprocess.Popen. The binding is set on this thread around the fork, which the
    child inherits, and restored here at once."""
    with bound(cpus, nodes, policy, cpunodes=cpunodes):
        return subprocess.Popen(cmd, **popen)


# ----------------------------------------------------------------------------- memory

@dataclass(frozen=True)
class Pages:
    """Where the pages of a range are, as the kernel reports them (move_pages)."""
    nbytes: int
    page_size: int                 # the stride asked about: the mapping's kernel page size
    per_node: dict                 # node -> pages present there
    not_present: int               # pages never touched (or swapped out)
    huge_bytes: int                # bytes in huge pages (THP's AnonHugePages, or hugetlb)
    kernel_page_size: int = field(default=0)

    @property
    def present(self) -> int:
        return sum(self.per_node.values())

    def fraction(self, node: int) -> float:
        """Share of present pages on ``node`` (0..1)."""
        return self.per_node.get(node, 0) / self.present if self.present else 0.0

    @property
    def huge_fraction(self) -> float:
        return min(1.0, self.huge_bytes / self.nbytes) if self.nbytes else 0.0

    def to_dict(self) -> dict:
        return {"nbytes": self.nbytes, "page_size": self.page_size,
                "per_node": {str(k): v for k, v in sorted(self.per_node.items())},
                "not_present": self.not_present, "huge_bytes": self.huge_bytes,
                "huge_fraction": round(self.huge_fraction, 4)}

    def __str__(self) -> str:
        nodes = ", ".join(f"node {n} {100 * self.fraction(n):.0f}%"
                          for n in sorted(self.per_node)) or "none present"
        s = f"{self.present + self.not_present} pages of {human_bytes(self.page_size)}: {nodes}"
        if self.not_present:
            s += f"; {self.not_present} not present"
        if self.page_size < _2M:
            s += f"; in 2 MiB pages: {100 * self.huge_fraction:.0f}%"
        return s


class Memory(_core.Region):
    """Memory from ``alloc()``: a buffer (numpy views it without copying), a context manager;
    ``close()`` may be called twice; any use after close raises ValueError."""

    def __init__(self, nbytes, backing, *, policy="bind", nodes=(), page="auto"):
        self.policy, self.nodes, self.page = policy, tuple(nodes), page

    def pages(self) -> Pages:
        """Where every page is now, asked from the kernel."""
        if self.closed:
            raise ValueError("the memory was closed (use after close())")
        return _pages(self.address, self.nbytes, self.page_size)

    def migrate(self, node: int, *, topology: Topology | None = None) -> Pages:
        """Moves every page to ``node`` and binds the range there (mbind with MPOL_MF_MOVE);
        verifies the move and returns the new placement."""
        if self.closed:
            raise ValueError("the memory was closed (use after close())")
        (node,) = check_nodes([node], topology)
        before = self.pages()
        self.bind(_core.POLICY_BIND, [node], _core.MF_MOVE | _core.MF_STRICT)
        self.policy, self.nodes = "bind", (node,)
        return _verify_moved(before, self.pages(), node)

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        """Closes the memory. While an exception is on its way out, a view that still exists
        (numpy's, often made by that exception's frame) must not hide it: the memory then stays
        mapped until the last view goes, and the exception says so in a note."""
        if error is None:
            self.close()
            return
        try:
            self.close()
        except BufferError as e:
            error.add_note(f"numaprobe: the memory of this with-block stays mapped until its "
                           f"last view is gone ({e})")

    def __repr__(self):
        state = "closed" if self.closed else f"{human_bytes(self.nbytes)} at {self.address:#x}"
        return f"<numaprobe.Memory {state} {self.policy} {format_list(self.nodes)} page={self.page}>"


def alloc(nbytes: int, node=None, *, nodes=None, policy: str = "bind", page: str = "auto",
          topology: Topology | None = None) -> Memory:
    """Maps ``nbytes`` of memory placed by ``policy`` on ``node`` (or ``nodes``), then touches
    every page so it is placed now, before anyone else writes it.

    policy: "bind" (only these nodes), "preferred" (this node, others when it is full),
    "interleave" (round-robin over the nodes). page: "auto" (hugetlb 2 MiB pages when enough
    are reserved on the nodes, else transparent huge pages for 2 MiB or more, else 4k), "4k",
    "2m" (hugetlb when reserved, else THP), "1g" (hugetlb only). The size obtained is reported by
    ``pages()``, not assumed. Default node: the nodes this process may allocate on.

    Free memory and free huge pages of the nodes are read when the request is checked, also
    when a ``topology`` is given (under its root): they change while a process runs.
    """
    topo = current(topology)
    nbytes = _check_size(nbytes)
    code = _policy_code(policy)
    if node is not None and nodes is not None:
        raise UsageError("give node or nodes, not both")
    nodes = check_nodes([node] if node is not None else
                        (nodes if nodes is not None else topo.usable_mems), topo)
    if policy == "preferred" and len(nodes) != 1:
        raise UsageError(f"preferred takes one node, got {format_list(nodes)}")
    topo = memory_now(topo, nodes)
    backing = _choose_backing(page, nbytes, nodes, policy, topo)
    if policy != "preferred":
        _check_free(nbytes, nodes, topo)

    def recheck(fresh):
        check_nodes(nodes, fresh)
        _choose_backing(page, nbytes, nodes, policy, memory_now(fresh, nodes))

    try:
        mem = Memory(nbytes, backing, policy=policy, nodes=nodes, page=page)
    except OSError as e:
        _refused(e, topology, recheck)
        raise
    try:
        mem.bind(code, nodes)
        mem.touch()
    except BaseException as e:
        mem.close()
        if isinstance(e, OSError):
            _refused(e, topology, recheck)
        raise
    return mem


def _check_size(nbytes) -> int:
    """A whole number of bytes (numpy integers too; a float only when it is whole)."""
    if isinstance(nbytes, float) and nbytes.is_integer():
        nbytes = int(nbytes)
    try:
        if isinstance(nbytes, bool):
            raise TypeError
        nbytes = operator.index(nbytes)
    except TypeError:
        raise UsageError(f"size must be a whole number of bytes, got {nbytes!r}") from None
    if nbytes <= 0:
        raise UsageError(f"size must be a positive number of bytes, got {nbytes}")
    return nbytes


def _check_free(nbytes: int, nodes, topo: Topology) -> None:
    # Interleave spreads the pages evenly, so each node must hold its share.
    share = nbytes / len(nodes)
    for n in nodes:
        free = topo.free_bytes(n)
        if share > free:
            raise NotEnoughMemory(
                f"node {n} has {human_bytes(free)} available, asked for {human_bytes(nbytes)}"
                + (f" ({human_bytes(int(share))} on each of {len(nodes)} nodes)" if len(nodes) > 1 else ""))


def _thp_modes(topo: Topology) -> bool:
    return topo.settings.thp in ("always", "madvise")


def _hugetlb_free(size: int, nbytes: int, nodes, topo: Topology) -> bool:
    need = math.ceil(nbytes / size / len(nodes))
    return all(topo.node(n).hugepages.get(size, {}).get("free", 0) >= need for n in nodes)


def _choose_backing(page: str, nbytes: int, nodes, policy: str, topo: Topology) -> int:
    if page not in PAGE_SIZES:
        raise UsageError(f"unknown page size {page!r}; page sizes: {', '.join(PAGE_SIZES)}")
    exact = policy != "preferred"  # preferred may spill to nodes we did not count on
    hugetlb_2m = exact and _hugetlb_free(_2M, nbytes, nodes, topo)
    if page == "4k":
        return _core.BACKING_4K
    if page == "1g":
        if exact and _hugetlb_free(_1G, nbytes, nodes, topo):
            return _core.BACKING_HUGETLB_1G
        raise UsageError(
            f"1g pages are not available: too few free 1 GiB hugetlb pages on node(s) "
            f"{format_list(nodes)} (reserve them in /sys/devices/system/node/nodeN/hugepages/"
            f"hugepages-1048576kB/nr_hugepages); available: {_available(nbytes, nodes, policy, topo)}")
    if page == "2m":
        if hugetlb_2m:
            return _core.BACKING_HUGETLB_2M
        if _thp_modes(topo):
            return _core.BACKING_THP
        raise UsageError(
            f"2m pages are not available: no free 2 MiB hugetlb pages on node(s) "
            f"{format_list(nodes)} and transparent huge pages are '{topo.settings.thp}'; "
            f"available: {_available(nbytes, nodes, policy, topo)}")
    if hugetlb_2m and nbytes >= _2M:
        return _core.BACKING_HUGETLB_2M
    if _thp_modes(topo) and nbytes >= _2M:
        return _core.BACKING_THP
    return _core.BACKING_4K


def _available(nbytes, nodes, policy, topo) -> str:
    out = ["4k"]
    exact = policy != "preferred"
    if (exact and _hugetlb_free(_2M, nbytes, nodes, topo)) or _thp_modes(topo):
        out.append("2m")
    if exact and _hugetlb_free(_1G, nbytes, nodes, topo):
        out.append("1g")
    return ", ".join(out)


def _pages(address: int, nbytes: int, stride: int) -> Pages:
    kps, huge = system.smaps_huge(address, nbytes)
    stride = max(stride, kps)
    start = address - address % stride
    npages = -(-(address + nbytes - start) // stride)
    per_node, missing = {}, 0
    for n in _core.pages_where(start, npages, stride):
        if n >= 0:
            per_node[n] = per_node.get(n, 0) + 1
        else:
            missing += 1
    return Pages(nbytes=nbytes, page_size=stride, per_node=per_node, not_present=missing,
                 huge_bytes=min(huge, nbytes), kernel_page_size=kps)


def where(obj) -> Pages:
    """Where the pages of any buffer (Memory, numpy array, bytearray...) are now."""
    if isinstance(obj, Memory):
        return obj.pages()
    address, nbytes = _core.buffer_span(obj)
    if nbytes == 0:
        raise UsageError("the buffer is empty: no pages to look at")
    return _pages(address, nbytes, _BASE)


def migrate(obj, node: int, *, topology: Topology | None = None) -> Pages:
    """Moves the pages of any buffer to ``node`` (move_pages) and verifies that they are
    there. A Memory from alloc() is also re-bound to the node, so new pages follow."""
    if isinstance(obj, Memory):
        return obj.migrate(node, topology=topology)
    (node,) = check_nodes([node], topology)
    address, nbytes = _core.buffer_span(obj)
    if nbytes == 0:
        raise UsageError("the buffer is empty: no pages to move")
    kps, _ = system.smaps_huge(address, nbytes)
    start = address - address % kps
    npages = -(-(address + nbytes - start) // kps)
    before = _pages(address, nbytes, kps)
    _core.pages_migrate(start, npages, kps, node)
    return _verify_moved(before, _pages(address, nbytes, kps), node)


def _verify_moved(before: Pages, pages: Pages, node: int) -> Pages:
    stayed = pages.present - pages.per_node.get(node, 0)
    if stayed:
        raise OSError(errno.EBUSY, f"{stayed} of {pages.present} pages could not be moved to "
                      f"node {node} (now: {pages})")
    # Seen on Linux 6.1 with THP "always": a heap buffer whose huge pages it shares with other
    # objects was reported moved, yet afterwards its pages were unmapped, and came back on the
    # old node when touched. Say so rather than report the move as done.
    if pages.present < before.present:
        raise OSError(errno.EBUSY, f"{before.present - pages.present} of {before.present} pages "
                      f"were left unmapped by the move to node {node}, not moved (a transparent "
                      "huge page shared with other memory, typically); where they are shows "
                      "only once they are touched again")
    return pages
