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

from ..errors import UsageError
from .. import _core, clock, placement
from ..kinds import Figure, Kind, register
from ..report import html as H, plots as P
from ..stats import Summary, median_interval, summarize
from ..topology import Topology, format_list
from ..words import plural
from . import _common as C


@dataclass(frozen=True)
class Kernel:
    """One entry of the C core's kernel table (np_bw_kernel_info in bandwidth.c)."""
    name: str
    doc: str
    streams: int        # arrays walked: reads + writes
    reads: int          # arrays read per element
    writes: int         # arrays written per element
    nt: bool            # non-temporal stores (no write-allocate)
    bytes: int          # bytes the program moves per element (8 a stream)

    def program_bytes(self, n: int) -> int:
        return n * self.bytes

    def allocate_bytes(self, n: int) -> int:
        """Extra reads of destination lines that regular stores cause."""
        return 0 if self.nt else 8 * n * self.writes


KERNELS = {k["name"]: Kernel(**k) for k in _core.bw_kernels()}  # the C table, in its order


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
    ended_by: str | None = None  # with a stopping rule: what ended the sampling

    def to_dict(self) -> dict:
        d = {"kernel": self.kernel, "isa": self.isa, "cpus": list(self.cpus),
             "mem_nodes": list(self.mem_nodes), "bytes_per_thread": self.bytes_per_thread,
             "gbs": self.gbs.to_dict(), "write_allocate_gbs": self.allocate_gbs,
             "checksum_ok": self.checksum_ok}
        if self.isa_trials:
            d["isa_trials"] = dict(self.isa_trials)
        if self.ended_by is not None:
            ci = median_interval(self.gbs.samples) if self.gbs.samples else None
            d["ended_by"], d["median_ci"] = self.ended_by, list(ci) if ci else None
        return d


def _check_kernel(kernel: str, isa: str) -> tuple[Kernel, str | None]:
    """The kernel and the ISA asked for; None for "auto" when there is a choice to measure."""
    if kernel not in KERNELS:
        raise UsageError(f"unknown kernel {kernel!r}; kernels: {', '.join(KERNELS)}")
    supported = _core.isa_supported()
    if isa == "auto":
        return KERNELS[kernel], (None if len(supported) > 1 else supported[0])
    if isa not in supported:
        raise UsageError(f"this CPU cannot run {isa!r} kernels; it runs: {', '.join(supported)}")
    return KERNELS[kernel], isa


def default_size(topo: Topology, threads: int) -> int:
    """Bytes per array per thread: together well past the last-level cache."""
    total = max(4 * C.llc_bytes(topo), 256 << 20)
    return max(total // max(threads, 1) // 512 * 512, 16 << 20)


def run(cpus, mem_nodes, kernel: str = "read", *, isa: str = "auto", size: int | None = None,
        reps: int = 10, topology: Topology | None = None, rule: C.Rule | None = None
        ) -> BandwidthResult:
    """Runs ``kernel`` on ``cpus`` at once, ``reps`` repetitions; thread i's arrays live on
    ``mem_nodes[i]``. With a stopping ``rule`` (C.stopping_rule) one repetition at a time
    until the median's interval is within its target or its budget is spent, ``rule.samples``
    at most."""
    topo = C.topology(topology)
    k, isa = _check_kernel(kernel, isa)
    cpus = list(cpus)
    if len(set(cpus)) != len(cpus):
        raise UsageError(f"a CPU appears twice in {cpus}: one thread per CPU")
    placement.check_cpus(cpus, topo)
    mem_nodes = list(mem_nodes)
    C.mem_nodes(topo, sorted(set(mem_nodes)))
    if not isinstance(reps, int) or reps < 1:
        raise UsageError(f"repetitions must be a whole number >= 1, got {reps!r}")
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
        if rule is None:
            t0, t1, sums, ran_on = _core.bw_run(cpus, kernel, isa, n, a, b, c, reps,
                                                warmup=not trials)
            spans, ended = _spans(t0, t1), None
        else:
            spans, sums, ran_on = [], [], None

            def draw():
                nonlocal ran_on
                s, e, sm, ran_on = _core.bw_run(cpus, kernel, isa, n, a, b, c, 1,
                                                warmup=not trials and not spans)
                spans.append(_spans(s, e)[0])
                sums[:] = sm
                return total / spans[-1]
            _, ended = C.sample(draw, rule)
    finally:
        for group in mems:
            for m in group:
                m.close()
    if ran_on != cpus:
        raise RuntimeError(f"threads ran on CPUs {ran_on}, not {cpus}")
    gbs = summarize([total / ns for ns in spans], "GB/s")
    alloc = k.allocate_bytes(n) * len(cpus) / sorted(spans)[len(spans) // 2]
    ok = all(abs(s - n) < 1e-6 * n for s in sums) if kernel == "read" else True
    return BandwidthResult(kernel=kernel, isa=isa, cpus=tuple(cpus), mem_nodes=tuple(mem_nodes),
                           bytes_per_thread=n * 8, gbs=gbs, allocate_gbs=alloc, checksum_ok=ok,
                           isa_trials=trials or None, ended_by=ended)


def _spans(t0, t1) -> list[float]:
    """Each repetition's ns, from the first thread's start to the last thread's end."""
    clk = clock.get()
    return [clk.to_ns(max(e) - min(s)) for s, e in zip(t0, t1)]


def _fill(mem: placement.Memory, n: int, value: float) -> None:
    import numpy as np  # imported here: numaprobe's import stays light
    np.frombuffer(mem, dtype=np.float64, count=n)[:] = value


def bandwidth(cpu_node: int, mem_node: int, kernel: str = "read", *, threads: int | None = None,
              isa: str = "auto", size: int | None = None, reps: int = 10,
              target_ci: float | None = None, budget: float | None = None,
              topology: Topology | None = None, rule: C.Rule | None = None) -> BandwidthResult:
    """Bandwidth from ``threads`` CPUs of ``cpu_node`` (default: all usable) to ``mem_node``:
    ``reps`` repetitions, or with ``target_ci`` (a fraction) or ``budget`` (seconds) until
    the median's 95 % interval is within the target or the budget is spent (``reps`` at most,
    default RULE_MAX_SAMPLES then)."""
    topo = C.topology(topology)
    (cn,) = C.cpu_nodes(topo, [cpu_node])
    (mn,) = C.mem_nodes(topo, [mem_node])
    cpus = _node_cpus(topo, cn, threads)
    rule = rule or C.stopping_rule(target_ci, budget, reps)
    return run(cpus, [mn] * len(cpus), kernel, isa=isa, size=size, reps=reps, topology=topo,
               rule=rule)


def _node_cpus(topo: Topology, node: int, threads: int | None) -> list[int]:
    cpus = list(topo.cpus_of(node, usable=True))
    if threads is None:
        return cpus
    if not isinstance(threads, int) or threads < 1:
        raise UsageError(f"threads must be a whole number >= 1, got {threads!r}")
    if threads > len(cpus):
        raise UsageError(f"node {node} has {len(cpus)} usable CPU(s); asked for {threads} threads")
    return cpus[:threads]


@dataclass(frozen=True)
class BandwidthMatrix:
    kernel: str
    cpu_nodes: tuple
    mem_nodes: tuple
    cells: dict             # (cpu node, mem node) -> BandwidthResult
    stopping: dict | None = None  # the stopping rule, where one was used

    def gbs(self, a: int, b: int) -> float:
        return self.cells[(a, b)].gbs.median

    def to_dict(self) -> dict:
        return {"kernel": self.kernel, "cpu_nodes": list(self.cpu_nodes),
                "mem_nodes": list(self.mem_nodes),
                "cells": [{"cpu_node": a, "mem_node": b, **r.to_dict()}
                          for (a, b), r in self.cells.items()],
                **({"stopping": dict(self.stopping)} if self.stopping else {})}

    def warnings(self) -> list[str]:
        return [w for (a, b), r in self.cells.items()
                if (w := r.gbs.warning(f"{self.kernel} bandwidth CPU node {a} -> memory node {b}"))]

    def table(self) -> str:
        return matrix_text(self.to_dict())


def bandwidth_matrix(kernel: str = "read", cpu_nodes=None, mem_nodes=None, *,
                     threads: int | None = None, isa: str = "auto", size: int | None = None,
                     reps: int | None = None, cells=None, target_ci: float | None = None,
                     budget: float | None = None, topology: Topology | None = None,
                     progress: bool | None = None) -> BandwidthMatrix:
    """``kernel``'s bandwidth for every CPU node x memory node, or only for ``cells``, a list
    of (CPU node, memory node) pairs (the quick check's one cell per distance class):
    ``reps`` repetitions a cell (default 10), or with ``target_ci`` or ``budget`` (seconds
    for the whole matrix, shared equally) the stopping rule, ``reps`` a cell at most
    (default RULE_MAX_SAMPLES)."""
    topo = C.topology(topology)
    _check_kernel(kernel, isa)
    cns, mns = C.cpu_nodes(topo, cpu_nodes), C.mem_nodes(topo, mem_nodes)
    every = [(a, b) for a in cns for b in mns]
    if cells is None:
        cells = every
    else:
        cells = [tuple(c) for c in cells]
        if not cells or any(c not in every for c in cells):
            raise UsageError(f"cells must be (CPU node, memory node) pairs of CPU nodes "
                             f"{format_list(cns)} and memory nodes {format_list(mns)}; got "
                             f"{cells[:8]}")
    if reps is None:
        reps = 10 if target_ci is None and budget is None else C.RULE_MAX_SAMPLES
    rule = C.stopping_rule(target_ci, budget, reps)
    bar = C.Progress(len(cells), f"{kernel} bandwidth", progress)
    out = {}
    try:
        for a, b in cells:
            r = out[(a, b)] = bandwidth(a, b, kernel, threads=threads, isa=isa, size=size,
                                        reps=reps, topology=topo,
                                        rule=rule and rule.share(1 / len(cells)))
            why = f" ({r.ended_by}, {len(r.gbs.samples)} repetitions)" if r.ended_by else ""
            bar.step(f"node {a} -> node {b}: {r.gbs.median:.1f} GB/s{why}")
    finally:
        bar.close()
    return BandwidthMatrix(kernel=kernel, cpu_nodes=cns, mem_nodes=mns, cells=out,
                           stopping=rule.to_dict() if rule else None)


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
            bar.step(f"{plural(t, 'thread')}: {out[-1].gbs.median:.1f} GB/s")
    finally:
        bar.close()
    return out


# ------------------------------------------------------------------------ the result kinds

def matrix_text(r: dict) -> str:
    """A bandwidth matrix (a bandwidth document's result, or one of the quick check's)."""
    cells = {(c["cpu_node"], c["mem_node"]): c for c in r["cells"]}
    mem_nodes = r["mem_nodes"]
    isas = ", ".join(sorted({c["isa"] for c in cells.values()}))
    how = ", fastest in a trial" if any(c.get("isa_trials") for c in cells.values()) else ""
    lines = [f"{r['kernel']} bandwidth, GB/s (median; {isas}{how}; threads = the CPU node's "
             "usable CPUs)",
             "CPU node \\ memory node".ljust(24) + "".join(f"{'node ' + str(m):>10}"
                                                          for m in mem_nodes)]
    for a in r["cpu_nodes"]:
        row = [cells[(a, b)] if (a, b) in cells else None for b in mem_nodes]
        threads = next((f"{len(c['cpus'])} threads" for c in row if c), "not measured")
        lines.append(f"node {a} ({threads})".ljust(24) + "".join(
            f"{c['gbs']['median']:10.1f}" if c else f"{'-':>10}" for c in row))
    if len(cells) < len(r["cpu_nodes"]) * len(mem_nodes):
        lines.append("-: not measured")
    if (why := C.ended_text(r["cells"], r.get("stopping"))):
        lines.append(why)
    return "\n".join(lines)


def matrix_figures(r: dict) -> list[Figure]:
    return [Figure.of(f"{r['kernel']} bandwidth node {c['cpu_node']} -> node {c['mem_node']}",
                      c["gbs"], True) for c in r["cells"]]


def matrix_rows(r: dict) -> tuple[list, list]:
    return (["cpu_node", "mem_node", "median", "min", "max", "cv", "n", "unit"],
            [[c["cpu_node"], c["mem_node"], c["gbs"]["median"], c["gbs"]["min"], c["gbs"]["max"],
              c["gbs"]["cv"], c["gbs"]["n"], c["gbs"]["unit"]] for c in r["cells"]])


def _threads_text(r: dict) -> str:
    runs = r["runs"]
    kernel = runs[0]["kernel"] if runs else "?"
    return "\n".join([f"{kernel} bandwidth by threads, CPU node {r['cpu_node']}"]
                     + [f"  {plural(len(u['cpus']), 'thread'):>11}  {Summary.from_dict(u['gbs'])}  [{u['isa']}]"
                        for u in runs])


def _peak_text(r: dict) -> str:
    return (f"aggregate {r['kernel']} bandwidth, all {len(r['cpus'])} usable CPUs on their own "
            f"nodes ({r['isa']}): {Summary.from_dict(r['gbs'])}")


def matrix_html(r: dict, machine: dict | None = None) -> str:
    cells = {(c["cpu_node"], c["mem_node"]): c for c in r.get("cells", [])}
    if not cells:
        return '<p class="muted">no cells measured</p>'
    isa = ", ".join(sorted({c.get("isa", "?") for c in cells.values()}))
    rows = []
    for a in r["cpu_nodes"]:
        c0 = next((c for (x, _), c in cells.items() if x == a), None)
        row = [f"node {a} ({len(c0['cpus']) if c0 else '?'} threads)"]
        for b in r["mem_nodes"]:
            c = cells.get((a, b))
            row.append(("raw", f"{c['gbs']['median']:.1f}<span class=sub>{H.e(H.sub(c['gbs'], '.1f'))}"
                               "</span>") if c else "-")
        rows.append(row)
    return H.table(["CPU node \\ memory node"] + [H.node_head(machine, b) for b in r["mem_nodes"]],
                  rows, caption=f"{r['kernel']} bandwidth, GB/s (median; {isa}; threads = usable CPUs "
                          "of the CPU node)")


def _html_threads(r: dict) -> str:
    runs = r.get("runs") or []
    first = runs[0] if runs else {}
    return H.table(["threads", "CPUs", "GB/s (median)", "min", "max", "CV"],
                  [[str(len(u["cpus"])), format_list(u["cpus"]), f"{u['gbs']['median']:.1f}",
                    f"{u['gbs']['min']:.1f}", f"{u['gbs']['max']:.1f}", H.pct(u["gbs"]["cv"])]
                   for u in runs],
                  caption=f"{first.get('kernel', '?')} bandwidth by threads, CPU node "
                          f"{r.get('cpu_node')} ({first.get('isa', '?')})")


def _html_peak(r: dict) -> str:
    g = r["gbs"]
    return (f"<p>aggregate {H.e(r['kernel'])} bandwidth, all {len(r['cpus'])} usable CPUs on "
            f"their own nodes ({H.e(r.get('isa'))}): <b>{g['median']:.1f} GB/s</b> (min "
            f"{g['min']:.1f}, max {g['max']:.1f}, CV {100 * g['cv']:.1f} %, n={g['n']})</p>")


def matrix_plot(doc, r):
    cells = {(c["cpu_node"], c["mem_node"]): c for c in r.get("cells", [])}
    if not cells:
        return None
    rows = []
    for a in r["cpu_nodes"]:
        c = next((c for (x, _), c in cells.items() if x == a), None)
        rows.append(f"node {a}" + (f" ({len(c['cpus'])} threads)" if c else ""))
    values = [[cells[(a, b)]["gbs"]["median"] if (a, b) in cells else None for b in r["mem_nodes"]]
              for a in r["cpu_nodes"]]
    return P.heatmap(doc, f"{r['kernel']} bandwidth, GB/s (median; "
                    f"{', '.join(sorted({c.get('isa', '?') for c in r['cells']}))})",
                    rows, [P.node_label(doc, b) for b in r["mem_nodes"]], values, unit="GB/s",
                    fmt=".1f", cmap="viridis", xlabel="memory node", ylabel="CPU node",
                    extra="threads = the usable CPUs of the CPU node; brighter = faster")


def _plot_bandwidth_threads(doc, r):
    runs = r.get("runs") or []
    if not runs:
        return None
    fig = P.figure(8.0, 5.0)
    ax = fig.add_subplot()
    x = [len(u["cpus"]) for u in runs]
    y = [u["gbs"]["median"] for u in runs]
    err = [[max(0.0, u["gbs"]["median"] - u["gbs"]["min"]) for u in runs],
           [max(0.0, u["gbs"]["max"] - u["gbs"]["median"]) for u in runs]]
    ax.errorbar(x, y, yerr=err, fmt="o-", color="#1f77b4", ecolor="0.45", elinewidth=1.2,
                capsize=4, markersize=6, label="median (bars: min\u2013max)")
    for xi, yi in zip(x, y):
        ax.annotate(f"{yi:.1f}", (xi, yi), textcoords="offset points", xytext=(6, -12),
                    fontsize=8.5)
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(min(x) - 0.5, max(x) + 0.5)
    ax.set_ylim(bottom=0, top=max(u["gbs"]["max"] for u in runs) * 1.12)
    ax.set_xlabel("threads (one per CPU)")
    ax.set_ylabel("bandwidth, GB/s")
    ax.grid(True, color="0.9", linewidth=0.8)
    ax.legend(loc="lower right", frameon=False)
    first = runs[0]
    P.titles(fig, ax, f"{first.get('kernel', '?')} bandwidth by threads, CPU node "
            f"{r.get('cpu_node')} ({first.get('isa', '?')})", doc)
    return fig


register(Kind(
    "bandwidth", "memory bandwidth",
    text=lambda doc: matrix_text(doc["result"]),
    html=lambda doc: matrix_html(doc["result"], doc.get("machine")),
    figures=lambda doc: matrix_figures(doc["result"]),
    rows=lambda doc: matrix_rows(doc["result"]),
    plots=lambda doc: [("matrix", lambda: matrix_plot(doc, doc["result"]))]))

register(Kind(
    "bandwidth-threads", "bandwidth by threads",
    text=lambda doc: _threads_text(doc["result"]),
    html=lambda doc: _html_threads(doc["result"]),
    figures=lambda doc: [Figure.of(f"{u['kernel']} bandwidth with {len(u['cpus'])} thread(s)",
                                   u["gbs"], True) for u in doc["result"]["runs"]],
    rows=lambda doc: (["threads", "median_gbs", "min_gbs", "max_gbs", "cv"],
                      [[len(u["cpus"]), u["gbs"]["median"], u["gbs"]["min"], u["gbs"]["max"],
                        u["gbs"]["cv"]] for u in doc["result"]["runs"]]),
    plots=lambda doc: [("scaling", lambda: _plot_bandwidth_threads(doc, doc["result"]))]))

register(Kind(
    "bandwidth-peak", "aggregate (peak) bandwidth",
    text=lambda doc: _peak_text(doc["result"]),
    html=lambda doc: _html_peak(doc["result"]),
    figures=lambda doc: [Figure.of(f"aggregate {doc['result']['kernel']} bandwidth",
                                   doc["result"]["gbs"], True)]))
