"""Memory bandwidth: read, write, copy and triad kernels, regular and non-temporal stores, in
scalar, AVX2 and AVX-512 widths chosen at run time.

isa="auto" chooses by measuring, not by the widest the CPU has: one pass of each width over the
real arrays, then the fastest runs the repetitions. The widest is not always fastest: on this
project's AMD EPYC VM, triad with regular stores moved 28 GB/s scalar, 26 AVX2 and 23 AVX-512.
The trial's figures are kept in the result (isa_trials).

Each thread of a node's CPUs streams through its own arrays on the memory node; all threads
start each repetition together (a barrier) and a repetition's time runs from the first start
to the last end. GB/s counts the bytes the program asks to move (10^9 bytes a second); kernels
with regular stores also make the CPU read each destination line before writing it
(write-allocate), shown separately, as likwid-bench and STREAM do not count it either.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import _core, clock, placement
from ..stats import Summary, summarize
from ..topology import Topology
from . import _common as C


@dataclass(frozen=True)
class Kernel:
    name: str
    reads: int          # arrays read per element
    writes: int         # arrays written per element
    nt: bool            # non-temporal stores (no write-allocate)
    doc: str

    @property
    def streams(self) -> int:
        return self.reads + self.writes

    def program_bytes(self, n: int) -> int:
        return 8 * n * self.streams

    def allocate_bytes(self, n: int) -> int:
        """Extra reads of destination lines that regular stores cause."""
        return 0 if self.nt else 8 * n * self.writes


KERNELS = {k.name: k for k in (
    Kernel("read", 1, 0, False, "s += a[i]"),
    Kernel("write", 0, 1, False, "a[i] = s"),
    Kernel("write_nt", 0, 1, True, "a[i] = s, non-temporal stores"),
    Kernel("copy", 1, 1, False, "a[i] = b[i]"),
    Kernel("copy_nt", 1, 1, True, "a[i] = b[i], non-temporal stores"),
    Kernel("triad", 2, 1, False, "a[i] = b[i] + s * c[i]"),
    Kernel("triad_nt", 2, 1, True, "a[i] = b[i] + s * c[i], non-temporal stores"),
)}


@dataclass(frozen=True)
class BandwidthResult:
    kernel: str
    isa: str
    cpus: tuple
    mem_nodes: tuple        # the memory node of each thread's arrays
    bytes_per_thread: int   # per array
    gbs: Summary            # program bytes, GB/s, one sample per repetition
    allocate_gbs: float     # write-allocate traffic on top (median), GB/s
    checksum_ok: bool
    isa_trials: dict = None  # isa="auto": GB/s of one trial pass of each width

    def to_dict(self) -> dict:
        d = {"kernel": self.kernel, "isa": self.isa, "cpus": list(self.cpus),
             "mem_nodes": list(self.mem_nodes), "bytes_per_thread": self.bytes_per_thread,
             "gbs": self.gbs.to_dict(), "write_allocate_gbs": self.allocate_gbs,
             "checksum_ok": self.checksum_ok}
        if self.isa_trials:
            d["isa_trials"] = dict(self.isa_trials)
        return d


def _check_kernel(kernel: str, isa: str) -> tuple[Kernel, str | None]:
    """The kernel and the ISA asked for; None for "auto" when there is a choice to measure."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; kernels: {', '.join(KERNELS)}")
    supported = _core.isa_supported()
    if isa == "auto":
        return KERNELS[kernel], (None if len(supported) > 1 else supported[0])
    if isa not in supported:
        raise ValueError(f"this CPU cannot run {isa!r} kernels; it runs: {', '.join(supported)}")
    return KERNELS[kernel], isa


def default_size(topo: Topology, threads: int) -> int:
    """Bytes per array per thread: together well past the last-level cache."""
    total = max(4 * C.llc_bytes(topo), 256 << 20)
    return max(total // max(threads, 1) // 512 * 512, 16 << 20)


def run(cpus, mem_nodes, kernel: str = "read", *, isa: str = "auto", size: int | None = None,
        reps: int = 10, topology: Topology | None = None) -> BandwidthResult:
    """Runs ``kernel`` on ``cpus`` at once; thread i's arrays live on ``mem_nodes[i]``."""
    topo = C.topology(topology)
    k, isa = _check_kernel(kernel, isa)
    cpus = list(cpus)
    if len(set(cpus)) != len(cpus):
        raise ValueError(f"a CPU appears twice in {cpus}: one thread per CPU")
    placement.check_cpus(cpus, topo)
    mem_nodes = list(mem_nodes)
    C.mem_nodes(topo, sorted(set(mem_nodes)))
    if not isinstance(reps, int) or reps < 1:
        raise ValueError(f"repetitions must be a whole number >= 1, got {reps!r}")
    size = C.check_size(size if size is not None else default_size(topo, len(cpus)), 512,
                        "size per thread")
    n = size // 512 * 64  # doubles, a multiple of 64
    total = k.program_bytes(n) * len(cpus)
    arrays = max(k.streams, 1)
    mems = []
    try:
        for node in mem_nodes:
            mems.append([placement.alloc(n * 8, node=node, topology=topo) for _ in range(arrays)])
        for group in mems:  # sources hold known values, so checksums mean something
            for m in group[1:] if k.writes else group:
                _fill(m, n, 1.0)
        a = [g[0].address for g in mems]
        b = [g[1].address for g in mems] if k.reads and k.writes else None
        c = [g[2].address for g in mems] if k.reads == 2 else None
        trials = {}
        if isa is None:  # one pass of each width (the first also warms up); the fastest runs
            for j, cand in enumerate(_core.isa_supported()):
                s, e, _, _ = _core.bw_run(cpus, kernel, cand, n, a, b, c, 1, warmup=j == 0)
                trials[cand] = total / _spans(s, e)[0]
            isa = max(trials, key=trials.get)
        t0, t1, sums, ran_on = _core.bw_run(cpus, kernel, isa, n, a, b, c, reps, warmup=not trials)
    finally:
        for group in mems:
            for m in group:
                m.close()
    if ran_on != cpus:
        raise RuntimeError(f"threads ran on CPUs {ran_on}, not {cpus}")
    spans = _spans(t0, t1)
    gbs = summarize([total / ns for ns in spans], "GB/s")
    alloc = k.allocate_bytes(n) * len(cpus) / sorted(spans)[len(spans) // 2]
    ok = all(abs(s - n) < 1e-6 * n for s in sums) if kernel == "read" else True
    return BandwidthResult(kernel=kernel, isa=isa, cpus=tuple(cpus), mem_nodes=tuple(mem_nodes),
                           bytes_per_thread=n * 8, gbs=gbs, allocate_gbs=alloc, checksum_ok=ok,
                           isa_trials=trials or None)


def _spans(t0, t1) -> list[float]:
    """Each repetition's ns, from the first thread's start to the last thread's end."""
    clk = clock.get()
    return [clk.to_ns(max(e) - min(s)) for s, e in zip(t0, t1)]


def _fill(mem: placement.Memory, n: int, value: float) -> None:
    import numpy as np  # imported here: numaprobe's import stays light
    np.frombuffer(mem, dtype=np.float64, count=n)[:] = value


def bandwidth(cpu_node: int, mem_node: int, kernel: str = "read", *, threads: int | None = None,
              isa: str = "auto", size: int | None = None, reps: int = 10,
              topology: Topology | None = None) -> BandwidthResult:
    """Bandwidth from ``threads`` CPUs of ``cpu_node`` (default: all usable) to ``mem_node``."""
    topo = C.topology(topology)
    (cn,) = C.cpu_nodes(topo, [cpu_node])
    (mn,) = C.mem_nodes(topo, [mem_node])
    cpus = _node_cpus(topo, cn, threads)
    return run(cpus, [mn] * len(cpus), kernel, isa=isa, size=size, reps=reps, topology=topo)


def _node_cpus(topo: Topology, node: int, threads: int | None) -> list[int]:
    cpus = list(topo.cpus_of(node, usable=True))
    if threads is None:
        return cpus
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a whole number >= 1, got {threads!r}")
    if threads > len(cpus):
        raise ValueError(f"node {node} has {len(cpus)} usable CPU(s); asked for {threads} threads")
    return cpus[:threads]


@dataclass(frozen=True)
class BandwidthMatrix:
    kernel: str
    cpu_nodes: tuple
    mem_nodes: tuple
    cells: dict             # (cpu node, mem node) -> BandwidthResult

    def gbs(self, a: int, b: int) -> float:
        return self.cells[(a, b)].gbs.median

    def to_dict(self) -> dict:
        return {"kernel": self.kernel, "cpu_nodes": list(self.cpu_nodes),
                "mem_nodes": list(self.mem_nodes),
                "cells": [{"cpu_node": a, "mem_node": b, **r.to_dict()}
                          for (a, b), r in self.cells.items()]}

    def warnings(self) -> list[str]:
        return [w for (a, b), r in self.cells.items()
                if (w := r.gbs.warning(f"{self.kernel} bandwidth CPU node {a} -> memory node {b}"))]

    def table(self) -> str:
        isas = ", ".join(sorted({r.isa for r in self.cells.values()}))
        how = ", fastest in a trial" if any(r.isa_trials for r in self.cells.values()) else ""
        lines = [f"{self.kernel} bandwidth, GB/s (median; {isas}{how}; threads = the CPU node's "
                 "usable CPUs)",
                 "CPU node \\ memory node".ljust(24) + "".join(f"{'node ' + str(m):>10}"
                                                              for m in self.mem_nodes)]
        for a in self.cpu_nodes:
            lines.append(f"node {a} ({len(self.cells[(a, self.mem_nodes[0])].cpus)} threads)".ljust(24)
                         + "".join(f"{self.gbs(a, b):10.1f}" for b in self.mem_nodes))
        return "\n".join(lines)


def bandwidth_matrix(kernel: str = "read", cpu_nodes=None, mem_nodes=None, *,
                     threads: int | None = None, isa: str = "auto", size: int | None = None,
                     reps: int = 10, topology: Topology | None = None,
                     progress: bool | None = None) -> BandwidthMatrix:
    topo = C.topology(topology)
    _check_kernel(kernel, isa)
    cns, mns = C.cpu_nodes(topo, cpu_nodes), C.mem_nodes(topo, mem_nodes)
    bar = C.Progress(len(cns) * len(mns), f"{kernel} bandwidth", progress)
    cells = {}
    try:
        for a in cns:
            for b in mns:
                cells[(a, b)] = bandwidth(a, b, kernel, threads=threads, isa=isa, size=size,
                                          reps=reps, topology=topo)
                bar.step(f"node {a} -> node {b}: {cells[(a, b)].gbs.median:.1f} GB/s")
    finally:
        bar.close()
    return BandwidthMatrix(kernel=kernel, cpu_nodes=cns, mem_nodes=mns, cells=cells)


def peak_bandwidth(kernel: str = "read", *, isa: str = "auto", size: int | None = None,
                   reps: int = 10, topology: Topology | None = None) -> BandwidthResult:
    """The machine's aggregate: every usable CPU at once, each on its own node's memory (or the
    first usable memory node where its own has none)."""
    topo = C.topology(topology)
    cpus = list(topo.usable_cpus)
    mems = [topo.node_of(c) if topo.node_of(c) in topo.usable_mems else topo.usable_mems[0]
            for c in cpus]
    return run(cpus, mems, kernel, isa=isa, size=size, reps=reps, topology=topo)


def threads_sweep(cpu_node: int, mem_node: int, kernel: str = "read", *, isa: str = "auto",
                  size: int | None = None, reps: int = 5, topology: Topology | None = None,
                  progress: bool | None = None) -> list[BandwidthResult]:
    """Bandwidth with 1, 2, ... all usable CPUs of ``cpu_node``: where it stops rising is
    where the memory channels, not the cores, set the limit."""
    topo = C.topology(topology)
    (cn,) = C.cpu_nodes(topo, [cpu_node])
    count = len(topo.cpus_of(cn, usable=True))
    bar = C.Progress(count, f"{kernel} bandwidth by threads", progress)
    out = []
    try:
        for t in range(1, count + 1):
            out.append(bandwidth(cn, mem_node, kernel, threads=t, isa=isa, size=size, reps=reps,
                                 topology=topo))
            bar.step(f"{t} thread(s): {out[-1].gbs.median:.1f} GB/s")
    finally:
        bar.close()
    return out
