"""Idle memory latency: dependent loads through one random cycle of cache lines.

Method (DESIGN section 5): the chain covers one 64-byte line in every 128 bytes of a buffer
placed on the memory node (so the adjacent-line prefetcher never helps); the TLB-local kind
visits the lines of one page group (within the first-level TLB's reach) in random order before
moving on, so page walks do not pollute DRAM latency; the fully random kind does not. The
latency-versus-size sweep chains every line instead, so a size is exactly its footprint. The chase runs on a
thread pinned to a CPU of the CPU node; each sample is at least 10^6 loads; the first sample is
dropped (it warms caches and TLBs); the clock's read overhead is subtracted. Result: ns per
load, with its spread.

With a stopping rule (``target_ci``, ``budget``) a cell samples one sample at a time until the
95 % interval of its median is within the target or its share of the budget is spent
(stats.sample_until); the cell records which ended it.
"""
from __future__ import annotations

import math
import random
import statistics
import time
from dataclasses import dataclass

from ..errors import UsageError
from .. import _core, clock, placement
from ..kinds import Figure, Kind, register
from ..report import html as H, plots as P
from ..stats import Summary, median_interval, summarize
from ..topology import Topology, human_bytes
from . import _common as C

MIN_LOADS = 1 << 20  # >= 10^6 loads a sample
FIXED_SAMPLES = 5    # samples a cell takes without a stopping rule
RULE_MAX_SAMPLES = C.RULE_MAX_SAMPLES


@dataclass(frozen=True)
class LatencyResult:
    cpu: int
    cpu_node: int
    mem_node: int
    size: int               # bytes in the chain
    chain: str              # tlb-local or random
    page: str               # the page size asked for
    pages: dict             # where the pages were and what size they got (Pages.to_dict())
    loads: int              # loads per sample
    ns: Summary             # ns per load, first sample dropped
    ended_by: str | None = None  # with a stopping rule: what ended the sampling (stats.ENDED_BY)

    def to_dict(self) -> dict:
        d = {"cpu": self.cpu, "cpu_node": self.cpu_node, "mem_node": self.mem_node,
             "size": self.size, "chain": self.chain, "page": self.page, "pages": self.pages,
             "loads": self.loads, "ns": self.ns.to_dict()}
        if self.ended_by is not None:
            ci = median_interval(self.ns.samples) if self.ns.samples else None
            d["ended_by"], d["median_ci"] = self.ended_by, list(ci) if ci else None
        return d


def _chase(cpu: int, mem: placement.Memory, loads: int, samples: int, *, start: int = 0,
           warm: bool = False) -> list[float]:
    """ns per load of ``samples`` samples of ``loads`` loads, following the chain from its
    line at byte ``start``; a first sample runs before them and is dropped unless ``warm``
    (this CPU has just chased the chain)."""
    clk = clock.get()
    ticks, _, _, ran_on = _core.loaded_run([cpu], mem.address + start, loads,
                                           samples + (not warm))
    if ran_on[0] != cpu:
        raise RuntimeError(f"the chase thread ran on CPU {ran_on[0]}, not CPU {cpu}")
    return [clk.to_ns(max(t - clk.overhead_ticks, 0)) / loads for t in ticks[0 if warm else 1:]]


def _sample(cpu: int, mem: placement.Memory, loads: int, samples: int,
            rule: C.Rule | None, seed: int) -> tuple[list[float], str | None]:
    """A cell's samples and what ended them: without a rule, ``samples`` of them after a
    dropped warm-up (None); with one, one at a time until it stops (stats.sample_until). After
    the first, each sample starts at a random line of the chain: a chase starts where its call
    says, and walking the same lines again would find some of them still cached."""
    if rule is None:
        return _chase(cpu, mem, loads, samples), None
    rng, lines, drawn = random.Random(seed), mem.nbytes // C.CHAIN_STRIDE, []

    def draw():
        start = rng.randrange(lines) * C.CHAIN_STRIDE if drawn else 0
        (ns,) = _chase(cpu, mem, loads, 1, start=start, warm=bool(drawn))
        drawn.append(ns)
        return ns
    return C.sample(draw, rule)


def latency(cpu_node: int, mem_node: int, *, size: int | None = None, page: str = "auto",
            chain: str = "tlb-local", samples: int | None = None, loads: int = MIN_LOADS,
            target_ci: float | None = None, budget: float | None = None,
            topology: Topology | None = None) -> LatencyResult:
    """Idle latency from a CPU of ``cpu_node`` to memory on ``mem_node``: ``samples`` samples
    (default 5); with ``target_ci`` (a fraction, default 0.02 when only a budget is given)
    or ``budget`` (seconds), until the 95 % interval of the median is within the target or
    the budget is spent, ``samples`` at most (default 100)."""
    topo = C.topology(topology)
    (cn,) = C.cpu_nodes(topo, [cpu_node])
    (mn,) = C.mem_nodes(topo, [mem_node])
    size = C.check_size(size if size is not None else default_size(topo), 2 * C.LINE)
    rule, samples, loads = _counts(samples, loads, target_ci, budget)
    C.check_chain(chain)
    cpu = C.node_cpu(topo, cn)
    with placement.alloc(size, node=mn, page=page, topology=topo) as mem:
        pages = C.build_chain(mem, chain)
        ns, ended_by = _sample(cpu, mem, loads, samples, rule, seed=mn)
    return LatencyResult(cpu=cpu, cpu_node=cn, mem_node=mn, size=size, chain=chain, page=page,
                         pages=pages.to_dict(), loads=loads, ns=summarize(ns, "ns"),
                         ended_by=ended_by)


def default_size(topo: Topology) -> int:
    """Well past the last-level cache: 8 x what the topology says, at least 256 MiB."""
    return max(8 * C.llc_bytes(topo), 256 << 20)


def _check_counts(samples, loads) -> tuple[int, int]:
    if not isinstance(samples, int) or samples < 1:
        raise UsageError(f"samples must be a whole number >= 1, got {samples!r}")
    if not isinstance(loads, int) or loads < 32:
        raise UsageError(f"loads must be a whole number >= 32, got {loads!r}")
    return samples, loads // 32 * 32


def _counts(samples, loads, target_ci, budget) -> tuple[C.Rule | None, int, int]:
    """The stopping rule (None: a fixed count), samples (the count, or the rule's most) and
    loads per sample, checked; the budget is the rule's whole (a matrix shares it out)."""
    if samples is None:
        samples = FIXED_SAMPLES if target_ci is None and budget is None else RULE_MAX_SAMPLES
    samples, loads = _check_counts(samples, loads)
    return C.stopping_rule(target_ci, budget, samples), samples, loads


@dataclass(frozen=True)
class LatencyMatrix:
    cpu_nodes: tuple
    mem_nodes: tuple
    cells: dict             # (cpu node, mem node) -> LatencyResult
    distances: dict         # (cpu node, mem node) -> SLIT
    hmat_ns: dict           # (cpu node, mem node) -> declared read latency, where declared
    stopping: dict | None = None  # the stopping rule, where one was used
    build_s: float | None = None  # seconds spent allocating and building the chains

    def ns(self, cpu_node: int, mem_node: int) -> float:
        return self.cells[(cpu_node, mem_node)].ns.median

    def warnings(self) -> list[str]:
        return [w for (a, b), r in self.cells.items()
                if (w := r.ns.warning(f"latency CPU node {a} -> memory node {b}"))]

    def to_dict(self) -> dict:
        return {"cpu_nodes": list(self.cpu_nodes), "mem_nodes": list(self.mem_nodes),
                "cells": [r.to_dict() for r in self.cells.values()],
                "distances": [[self.distances[(a, b)] for b in self.mem_nodes] for a in self.cpu_nodes],
                "hmat_read_latency_ns": [[self.hmat_ns.get((a, b)) for b in self.mem_nodes]
                                         for a in self.cpu_nodes],
                **({"stopping": dict(self.stopping)} if self.stopping else {}),
                **({"chain_build_s": self.build_s} if self.build_s is not None else {})}

    def table(self) -> str:
        return matrix_text(self.to_dict())


def latency_matrix(cpu_nodes=None, mem_nodes=None, *, size: int | None = None,
                   page: str = "auto", chain: str = "tlb-local", samples: int | None = None,
                   loads: int = MIN_LOADS, target_ci: float | None = None,
                   budget: float | None = None, shares: dict | None = None,
                   topology: Topology | None = None,
                   progress: bool | None = None) -> LatencyMatrix:
    """Idle latency for every CPU node x every memory node (CPU-less nodes as columns).

    ``samples`` a cell (default 5); with ``target_ci`` or ``budget`` (seconds for the whole
    matrix) a stopping rule as in latency(), ``samples`` being a cell's most (default 100).
    Each cell's share of the budget is equal, or in proportion to ``shares``, a weight per
    (CPU node, memory node) (the quick check gives each its planned time)."""
    topo = C.topology(topology)
    cns, mns = C.cpu_nodes(topo, cpu_nodes), C.mem_nodes(topo, mem_nodes)
    size = C.check_size(size if size is not None else default_size(topo), 2 * C.LINE)
    rule, samples, loads = _counts(samples, loads, target_ci, budget)
    share = C.shares([(a, b) for a in cns for b in mns], shares)
    C.check_chain(chain)
    bar = C.Progress(len(cns) * len(mns), "latency", progress)
    cells, build_s = {}, 0.0
    try:
        # One chain per memory node, chased from each CPU node in turn.
        for b in mns:
            t0 = time.perf_counter()
            with placement.alloc(size, node=b, page=page, topology=topo) as mem:
                pages = C.build_chain(mem, chain)
                build_s += time.perf_counter() - t0
                for a in cns:
                    cpu = C.node_cpu(topo, a)
                    mine = rule and C.Rule(rule.target, rule.budget * share[(a, b)], samples)
                    ns, ended_by = _sample(cpu, mem, loads, samples, mine, seed=1000 * a + b)
                    cells[(a, b)] = LatencyResult(
                        cpu=cpu, cpu_node=a, mem_node=b, size=size, chain=chain, page=page,
                        pages=pages.to_dict(), loads=loads, ns=summarize(ns, "ns"),
                        ended_by=ended_by)
                    why = f" ({ended_by}, {len(ns)} samples)" if ended_by else ""
                    bar.step(f"CPU node {a} -> memory node {b}: "
                             f"{cells[(a, b)].ns.median:.1f} ns{why}")
    finally:
        bar.close()
    cells = {(a, b): cells[(a, b)] for a in cns for b in mns}
    stopping = rule and {"target": rule.target, "max_samples": samples,
                         "budget_s": None if rule.budget == math.inf else rule.budget}
    return LatencyMatrix(cpu_nodes=cns, mem_nodes=mns, cells=cells,
                         distances={(a, b): topo.distance(a, b) for a in cns for b in mns},
                         hmat_ns={(a, b): C.hmat(topo, a, b, "read_latency")
                                  for a in cns for b in mns},
                         stopping=stopping or None, build_s=build_s)


# ------------------------------------------------------------------- latency vs working set

@dataclass(frozen=True)
class Level:
    name: str               # L1, L2, L3... or DRAM
    ns: float               # latency on the plateau (median of its points)
    effective_size: int | None  # the largest size still at this level's latency (None: DRAM)
    reported_size: int | None   # what the topology says (per CPU's view), where known


@dataclass(frozen=True)
class Sweep:
    cpu: int
    mem_node: int
    chain: str
    points: tuple           # (size, Summary of ns per load)
    levels: tuple           # Level

    def to_dict(self) -> dict:
        return {"cpu": self.cpu, "mem_node": self.mem_node, "chain": self.chain,
                "points": [{"size": s, "ns": ns.to_dict()} for s, ns in self.points],
                "levels": [vars(lv) for lv in self.levels]}

    def table(self) -> str:
        return sweep_text(self.to_dict())


def sweep_sizes(lo: int, hi: int, per_octave: int = 4) -> list[int]:
    out, k = [], 0
    while True:
        s = int(lo * 2 ** (k / per_octave)) // C.LINE * C.LINE
        if s > hi:
            break
        if not out or s != out[-1]:
            out.append(s)
        k += 1
    return out


def latency_sweep(cpu_node: int | None = None, mem_node: int | None = None, *,
                  lo: int = 4 << 10, hi: int | None = None, per_octave: int = 4,
                  chain: str = "tlb-local", samples: int = 3, loads: int = MIN_LOADS,
                  topology: Topology | None = None, progress: bool | None = None) -> Sweep:
    """Latency at working-set sizes from ``lo`` to ``hi`` (default 8 x the reported LLC, at
    least 256 MiB), and the cache levels that the steps reveal."""
    topo = C.topology(topology)
    cn = C.cpu_nodes(topo, None if cpu_node is None else [cpu_node])[0]
    if mem_node is None:
        mem_node = cn if cn in topo.usable_mems else topo.usable_mems[0]
    (mn,) = C.mem_nodes(topo, [mem_node])
    hi = hi if hi is not None else default_size(topo)
    lo = C.check_size(lo, 2 * C.LINE, "smallest size")
    if hi < lo:
        raise UsageError(f"largest size {hi} is below the smallest {lo}")
    samples, loads = _check_counts(samples, loads)
    C.check_chain(chain)
    cpu = C.node_cpu(topo, cn)
    sizes = sweep_sizes(lo, hi, per_octave)
    bar = C.Progress(len(sizes), "latency sweep", progress)
    points = []
    try:
        # One buffer of the largest size; each point chains its first `s` bytes. Huge pages
        # (when available) keep the TLB out of the cache steps.
        with placement.alloc(hi, node=mn, topology=topo) as mem:
            pages = mem.pages()
            group = C.chain_group(pages, chain)
            for s in sizes:
                _core.chase_build(mem.address, s, C.LINE, min(group, s) if group else 0, s)
                ns = _chase(cpu, mem, loads, samples)
                points.append((s, summarize(ns, "ns")))
                bar.step(f"{human_bytes(s)}: {points[-1][1].median:.1f} ns")
    finally:
        bar.close()
    return Sweep(cpu=cpu, mem_node=mn, chain=chain, points=tuple(points),
                 levels=tuple(detect_levels(points, _reported(topo, cpu))))


def _reported(topo: Topology, cpu: int) -> list[int]:
    """Sizes of the data caches the topology lists for one CPU, by level."""
    sizes = {}
    for c in topo.caches:
        if cpu in c.cpus and c.type in ("Data", "Unified"):
            sizes[c.level] = c.size
    return [sizes[k] for k in sorted(sizes)]


MIN_LEVEL_SPAN = 2.0  # a cache level covers an octave of working-set sizes or more


def detect_levels(points, reported=(), step: float = 1.8) -> list[Level]:
    """Cache levels from latency over working-set size.

    Sizes are walked upwards; a point starts a new plateau when its latency exceeds ``step`` x
    the median of the current plateau (cache levels differ by 2x or more: L1 ~4 cycles, L2
    ~14, L3 ~40, DRAM hundreds). A plateau that spans less than an octave of sizes is a
    transition and joins the next: every real cache level spans more. A level's latency is
    the median of its plateau; memory's, the median of the plateau's top octave, where the
    last cache no longer helps (its hits fade out over several sizes). A level's effective
    size is the largest size whose latency is still below the geometric mean of its plateau
    and the next one: where half the cost of the next level is paid. The last plateau is
    memory (DRAM) when there is more than one."""
    meds = [(s, ns.median if hasattr(ns, "median") else float(ns)) for s, ns in points]
    # A lone spike (a preempted sample) is higher than both neighbours by a level's step:
    # it says nothing about the caches.
    meds = [p for k, p in enumerate(meds)
            if not (0 < k < len(meds) - 1 and p[1] > step * meds[k - 1][1]
                    and p[1] > step * meds[k + 1][1])]
    if not meds:
        return []
    plateaus = [[meds[0]]]
    for s, ns in meds[1:]:
        cur = sorted(x for _, x in plateaus[-1])
        if ns > step * cur[len(cur) // 2]:
            plateaus.append([(s, ns)])
        elif len(plateaus) > 1 and ns * step < cur[len(cur) // 2]:
            # Latency fell back a whole step: the "plateau" was a burst of noise over a few
            # sizes (latency never falls as the working set grows). Drop it.
            plateaus.pop()
            plateaus[-1].append((s, ns))
        else:
            plateaus[-1].append((s, ns))
    merged = []
    for k, p in enumerate(plateaus):
        if merged and merged[-1][-1][0] < MIN_LEVEL_SPAN * merged[-1][0][0]:
            p = merged.pop() + p  # a transition belongs to the next level
        merged.append(p)
    levels = []
    for k, p in enumerate(merged):
        lat = sorted(x for _, x in p)[len(p) // 2]
        last = k == len(merged) - 1
        if last and k > 0:
            top = sorted(x for s, x in p if s * 2 >= p[-1][0])
            levels.append(Level("DRAM", top[len(top) // 2], None, None))
            break
        nxt = merged[k + 1] if not last else None
        eff = p[-1][0]
        if nxt is not None:
            nlat = sorted(x for _, x in nxt)[len(nxt) // 2]
            mid = (lat * nlat) ** 0.5
            eff = max(s for s, x in meds if x <= mid and s <= nxt[-1][0]) if any(
                x <= mid for _, x in meds) else eff
        levels.append(Level(f"L{k + 1}", lat, eff, reported[k] if k < len(reported) else None))
    return levels


DRAM_WITHIN = 0.03  # a chase within 3 % of DRAM's latency gains nothing from the caches
# The smallest chain for a DRAM latency: on this project's 2-core VM (32 MiB of L3 reported)
# a 64 MiB chain read 3.0 % [-6.8, +1.0] below a 256 MiB one (bench/quick_precision.py).
CHAIN_FLOOR = 128 << 20


def chain_size(reported: int, ns_1x: float, ns_4x: float) -> tuple[int, str]:
    """The chain a DRAM latency needs, from a two-point test: a chase over the reported
    last-level cache (1x) against one over 4x it. When 1x already costs DRAM's latency
    (within DRAM_WITHIN), the caches a core can use are smaller than reported and a chain of
    1x defeats them; else they hold part of 1x and the chain is 2x, as when nothing is
    known. At least CHAIN_FLOOR either way. Returns (bytes, why in words)."""
    near = ns_1x >= (1 - DRAM_WITHIN) * ns_4x
    size = max(reported if near else 2 * reported, CHAIN_FLOOR)
    why = (f"a chase over the {human_bytes(reported)} of last-level cache reported costs "
           f"{ns_1x:.3g} ns a load, {100 * (1 - ns_1x / ns_4x):+.1f} % from DRAM's {ns_4x:.3g} "
           f"ns: " + ("the cache a core can use is smaller than reported; chains of 1x it"
                      if near else "the cache holds part of it; chains of 2x it"))
    return size, why


def effective_cache(topo: Topology, cpu: int, mem_node: int, *, loads: int = 1 << 20,
                    samples: int = 3) -> dict:
    """The two-point test (chain_size) on this machine, with what it cost: the seconds to
    allocate and fill, and to build the chains, per byte and per line (the quick check's
    plan keeps them as measured rates, probes/_learned.py)."""
    reported = C.llc_bytes(topo)
    got, touch_s, build_s, nbytes, lines = {}, 0.0, 0.0, 0, 0
    for n in (reported, max(4 * reported, 2 * CHAIN_FLOOR)):
        t0 = time.perf_counter()
        with placement.alloc(n, node=mem_node, topology=topo) as mem:
            t1 = time.perf_counter()
            C.build_chain(mem, "tlb-local")
            t2 = time.perf_counter()
            got[n] = statistics.median(_chase(cpu, mem, loads, samples))
        touch_s, build_s = touch_s + t1 - t0, build_s + t2 - t1
        nbytes, lines = nbytes + n, lines + n // C.CHAIN_STRIDE
    ns_1x, ns_4x = got[reported], got[max(4 * reported, 2 * CHAIN_FLOOR)]
    size, why = chain_size(reported, ns_1x, ns_4x)
    return {"reported_bytes": reported, "ns_1x": ns_1x, "ns_4x": ns_4x, "chain_bytes": size,
            "why": why, "touch_gbs": nbytes / touch_s / 1e9 if touch_s else None,
            "chain_ns_per_line": build_s / lines * 1e9 if lines else None,
            "dram_ns": ns_4x}


FITS_AT = 0.5  # a working set whose chase costs under half of DRAM's stays (mostly) cached


def fits_in_cache(nbytes: int, cpu: int, mem_node: int, topo: Topology, *,
                  loads: int = 1 << 20, samples: int = 3) -> dict:
    """Whether a working set of ``nbytes`` stays in the caches ``cpu`` can use, measured, not
    read off the topology (a VM may report 300 MiB of L3 it cannot use): a chase over
    ``nbytes`` against one over a size no cache holds (4 x the reported last-level cache, at
    least 64 MiB), both in memory of ``mem_node``. It fits when its loads cost under FITS_AT
    of DRAM's: most of them hit a cache. A working set over twice the reported cache cannot
    fit and is not measured. Returns {"fits", "size", "ns", "dram_ns", "words"}."""
    llc = C.llc_bytes(topo)
    size = max(C.LINE * 64, int(nbytes) // C.CHAIN_STRIDE * C.CHAIN_STRIDE)
    if size > 2 * llc:
        return {"fits": False, "size": size, "ns": None, "dram_ns": None,
                "words": f"{human_bytes(size)} exceed twice the {human_bytes(llc)} last-level "
                         "cache reported"}
    ref = max(4 * llc, 64 << 20)
    got = {}
    for n in (size, ref):
        with placement.alloc(n, node=mem_node, topology=topo) as mem:
            C.build_chain(mem, "tlb-local")
            got[n] = statistics.median(_chase(cpu, mem, loads, samples))
    ns, dram = got[size], got[ref]
    fits = ns < FITS_AT * dram
    return {"fits": fits, "size": size, "ns": ns, "dram_ns": dram,
            "words": (f"a chase over {human_bytes(size)} costs {ns:.3g} ns a load against "
                      f"{dram:.3g} ns from DRAM: " + ("they stay in cache" if fits else
                                                       "they do not stay in cache"))}


# ------------------------------------------------------------------------ the result kinds

def matrix_text(r: dict) -> str:
    """The latency matrix (a latency document's result, or the quick check's part) as text;
    four memory nodes fit in 80 columns."""
    cells = {(c["cpu_node"], c["mem_node"]): c for c in r["cells"]}
    mem_nodes = r["mem_nodes"]
    dist, hmat = r.get("distances") or [], r.get("hmat_read_latency_ns") or []
    head = "CPU \\ memory".ljust(16) + "".join(f"{'node ' + str(m):>16}" for m in mem_nodes)
    lines = ["idle latency, ns per load (median [SLIT distance|HMAT ns where declared])", head]
    for i, a in enumerate(r["cpu_nodes"]):
        row = f"node {a} (CPU {cells[(a, mem_nodes[0])]['cpu']})".ljust(16)
        for j, b in enumerate(mem_nodes):
            h = hmat[i][j] if i < len(hmat) and j < len(hmat[i]) else None
            extra = f" [{dist[i][j]}" + (f"|{h}]" if h else "]")
            row += f"{cells[(a, b)]['ns']['median']:8.1f}{extra:>8}"
        lines.append(row)
    if (why := C.ended_text(r["cells"], r.get("stopping"))):
        lines.append(why)
    return "\n".join(lines)


def sweep_text(r: dict) -> str:
    lines = [f"latency vs working set (CPU {r['cpu']}, memory node {r['mem_node']}, "
             f"{r['chain']} chain)"]
    for p in r["points"]:
        lines.append(f"  {human_bytes(p['size']):>10}  {p['ns']['median']:8.2f} ns")
    lines.append("levels found (effective size vs what the topology reports):")
    for lv in r["levels"]:
        eff = human_bytes(lv["effective_size"]) if lv["effective_size"] else "-"
        rep = human_bytes(lv["reported_size"]) if lv["reported_size"] else "-"
        lines.append(f"  {lv['name']:<5} {lv['ns']:8.2f} ns   effective {eff:>10}   reported {rep:>10}")
    return "\n".join(lines)


def matrix_figures(r: dict) -> list[Figure]:
    return [Figure.of(f"latency node {c['cpu_node']} -> node {c['mem_node']}", c["ns"], False)
            for c in r["cells"]]


def matrix_rows(r: dict) -> tuple[list, list]:
    return (["cpu_node", "mem_node", "median", "min", "max", "cv", "n", "unit"],
            [[c["cpu_node"], c["mem_node"], c["ns"]["median"], c["ns"]["min"], c["ns"]["max"],
              c["ns"]["cv"], c["ns"]["n"], c["ns"]["unit"]] for c in r["cells"]])


def matrix_html(r: dict, machine: dict | None = None) -> str:
    cells = {(c["cpu_node"], c["mem_node"]): c for c in r.get("cells", [])}
    dist, hmat = r.get("distances") or [], r.get("hmat_read_latency_ns") or []
    rows = []
    for i, a in enumerate(r["cpu_nodes"]):
        cpu = next((c["cpu"] for (x, _), c in cells.items() if x == a), "?")
        row = [f"node {a} (CPU {cpu})"]
        for j, b in enumerate(r["mem_nodes"]):
            c = cells.get((a, b))
            if c is None:
                row.append("-")
                continue
            d = dist[i][j] if i < len(dist) and j < len(dist[i]) else None
            h = hmat[i][j] if i < len(hmat) and j < len(hmat[i]) else None
            extra = f" [{d}" + (f"|{h}]" if h else "]") if d is not None else ""
            row.append(("raw", f"{c['ns']['median']:.1f}{H.e(extra)}"
                               f"<span class=sub>{H.e(H.sub(c['ns'], '.1f'))}</span>"))
        rows.append(row)
    return H.table(["CPU node \\ memory node"] + [H.node_head(machine, b) for b in r["mem_nodes"]],
                  rows, caption="idle latency, ns per load (median; [SLIT distance|HMAT ns where "
                          "declared]; below: min\u2013max and CV of the samples)")


def _html_latency_sweep(r: dict) -> str:
    levels = H.table(["level", "latency ns", "effective size", "reported size"],
                    [[lv["name"], f"{lv['ns']:.2f}",
                      human_bytes(lv["effective_size"]) if lv.get("effective_size") else "-",
                      human_bytes(lv["reported_size"]) if lv.get("reported_size") else "-"]
                     for lv in r.get("levels") or []],
                    caption="levels found (effective size vs what the topology reports)")
    points = H.table(["size", "median ns", "min", "max", "CV"],
                    [[human_bytes(p["size"]), f"{p['ns']['median']:.2f}", f"{p['ns']['min']:.2f}",
                      f"{p['ns']['max']:.2f}", H.pct(p["ns"]["cv"])] for p in r.get("points") or []])
    return (f"<p>CPU {H.e(r.get('cpu'))}, memory node {H.e(r.get('mem_node'))}, "
            f"{H.e(r.get('chain'))} chain</p>{levels}\n<details><summary>all "
            f"{len(r.get('points') or [])} working-set sizes</summary>{points}</details>")


def matrix_plot(doc, r, title="idle memory latency, ns per load (median)"):
    cells = {(c["cpu_node"], c["mem_node"]): c for c in r.get("cells", [])}
    if not cells:
        return None
    cpu_nodes, mem_nodes = r["cpu_nodes"], r["mem_nodes"]
    dist = r.get("distances") or []
    hmat = r.get("hmat_read_latency_ns") or []
    rows, values, notes = [], [], []
    for i, a in enumerate(cpu_nodes):
        cpu = next((c["cpu"] for (x, _), c in cells.items() if x == a), None)
        rows.append(f"node {a}" + (f" (CPU {cpu})" if cpu is not None else ""))
        values.append([cells[(a, b)]["ns"]["median"] if (a, b) in cells else None for b in mem_nodes])
        row_notes = []
        for j, b in enumerate(mem_nodes):
            d = dist[i][j] if i < len(dist) and j < len(dist[i]) else None
            h = hmat[i][j] if i < len(hmat) and j < len(hmat[i]) else None
            parts = ([f"distance {d}"] if d is not None else []) + ([f"HMAT {h} ns"] if h else [])
            row_notes.append(", ".join(parts) or None)
        notes.append(row_notes)
    return P.heatmap(doc, title, rows, [P.node_label(doc, b) for b in mem_nodes], values,
                    unit="ns per load", fmt=".1f", cmap="YlOrRd", xlabel="memory node",
                    ylabel="CPU node", notes=notes,
                    extra="darker = slower; the second line: SLIT distance (and HMAT where declared)")


_LEVEL_COLOURS = ["#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#d62728"]


def _plot_latency_sweep(doc, r):
    pts = sorted(r.get("points") or [], key=lambda p: p["size"])
    if not pts:
        return None
    xs = [p["size"] for p in pts]
    med = [p["ns"]["median"] for p in pts]
    fig = P.figure(9.0, 5.4)
    ax = fig.add_subplot()
    ax.set_xscale("log", base=2)
    ax.fill_between(xs, [p["ns"]["min"] for p in pts], [p["ns"]["max"] for p in pts],
                    color="0.6", alpha=0.3, linewidth=0, label="min\u2013max of the samples")
    ax.plot(xs, med, "o-", color="black", markersize=3, linewidth=1.3, label="median latency")
    P.log_y(ax)
    lo_x, hi_x = xs[0], xs[-1]
    levels = r.get("levels") or []
    start, outside = lo_x, []
    for k, lv in enumerate(levels):
        col = _LEVEL_COLOURS[k % len(_LEVEL_COLOURS)]
        end = lv.get("effective_size") or hi_x
        ax.hlines(lv["ns"], start, end, colors=col, linewidth=5, alpha=0.45,
                  label="level found (its latency)" if k == 0 else None)
        ax.annotate(f"{lv['name']} {lv['ns']:.3g} ns", (math.sqrt(start * end), lv["ns"]),
                    textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8.5,
                    color=col, fontweight="bold",
                    bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8))
        if lv.get("effective_size"):
            ax.axvline(lv["effective_size"], color=col, linewidth=1.2,
                       label="effective size (where latency rises)" if k == 0 else None)
            ax.annotate(f"{lv['name']} {human_bytes(lv['effective_size'])}",
                        (lv["effective_size"], 0.02), xycoords=("data", "axes fraction"),
                        rotation=90, ha="right", va="bottom", fontsize=8, color=col,
                        xytext=(-2, 0), textcoords="offset points")
            start = lv["effective_size"]
        rep = lv.get("reported_size")
        if rep:
            if lo_x <= rep <= hi_x:
                ax.axvline(rep, color=col, linewidth=1.2, linestyle="--",
                           label="size the topology reports" if not any(
                               h.get_label() == "size the topology reports"
                               for h in ax.get_lines()) else None)
                ax.annotate(f"{lv['name']} reported {human_bytes(rep)}", (rep, 0.98),
                            xycoords=("data", "axes fraction"), rotation=90, ha="right",
                            va="top", fontsize=8, color=col, xytext=(-2, 0),
                            textcoords="offset points")
            else:
                outside.append(f"{lv['name']} reported {human_bytes(rep)}")
    P.pow2_ticks(ax, lo_x, hi_x)
    ax.set_xlim(lo_x / 1.15, hi_x * 1.15)
    ax.set_xlabel("working-set size (bytes in the chain, log scale)")
    ax.set_ylabel("latency, ns per load (log scale)")
    ax.grid(True, which="major", color="0.9", linewidth=0.8)
    fig.legend(loc="outside lower center", ncol=3, frameon=False)
    if outside:
        ax.text(0.99, 0.02, "outside the sweep: " + ", ".join(outside), transform=ax.transAxes,
                ha="right", va="bottom", fontsize=8, color="0.3")
    P.titles(fig, ax, f"latency vs working-set size: CPU {r.get('cpu')}, memory node "
            f"{r.get('mem_node')}, {r.get('chain')} chain", doc)
    return fig


register(Kind(
    "latency", "idle memory latency",
    text=lambda doc: matrix_text(doc["result"]),
    html=lambda doc: matrix_html(doc["result"], doc.get("machine")),
    figures=lambda doc: matrix_figures(doc["result"]),
    rows=lambda doc: matrix_rows(doc["result"]),
    plots=lambda doc: [("matrix", lambda: matrix_plot(doc, doc["result"]))]))

register(Kind(
    "latency-sweep", "latency vs working-set size",
    text=lambda doc: sweep_text(doc["result"]),
    html=lambda doc: _html_latency_sweep(doc["result"]),
    figures=lambda doc: [Figure.of(f"latency at {p['size']} bytes", p["ns"], False)
                         for p in doc["result"]["points"]],
    rows=lambda doc: (["size", "median_ns", "min_ns", "max_ns", "cv"],
                      [[p["size"], p["ns"]["median"], p["ns"]["min"], p["ns"]["max"], p["ns"]["cv"]]
                       for p in doc["result"]["points"]]),
    plots=lambda doc: [("curve", lambda: _plot_latency_sweep(doc, doc["result"]))]))
