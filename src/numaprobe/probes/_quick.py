"""The quick check (``python -m numaprobe``): what the machine is, its latency and bandwidth
matrices, a core-to-core summary and what looks misconfigured, in seconds.

One function, plan(), decides what the quick check measures: latency from one CPU of each CPU
node to each memory node; bandwidth on the diagonal and one cell per remote distance class
(every cell with ``full``); core-to-core between one CPU per last-level cache and node, an SMT
pair and a pair sharing a last-level cache (every pair with ``all_pairs``). quick_check()
measures exactly that plan, and ``--plan`` prints it with the counts it implies (loads, bytes,
chains, round trips) and the time those take at stated rates (Rates), so the two cannot
disagree and the cost on a machine of any size is known before it runs. Every latency and
bandwidth cell and every core-to-core pair stops when the 95 % interval of its median is
within 2 % (stats.sample_until, through probes/_common.py's rule), or when its planned time is
spent; the document records which ended each. ``--budget`` scales the planned sampling time to
fit (fixed_seconds: what cannot scale)."""
from __future__ import annotations

import itertools
import statistics
import textwrap
import time
from dataclasses import asdict, dataclass, replace

from .. import _core, clock
from .._version import __version__
from ..noise import NoiseMeter
from ..kinds import Kind, register
from ..report import html as H
from ..errors import UsageError
from ..stats import DEFAULT_TARGET, MEDIAN_CI_MIN_SAMPLES
from ..topology import Topology, current as current_topology, format_list, human_bytes
from ..words import plural
from . import _bandwidth, _c2c, _latency, _learned, _common as C
from ._bandwidth import KERNELS, bandwidth_matrix
from ._c2c import c2c_matrix
from ._latency import latency_matrix


@dataclass(frozen=True)
class Rates:
    """What the estimate assumes: stated defaults, not measured on the machine. An estimate
    is counts (loads, bytes, round trips, kernel calls) times these, never a budget restated;
    a machine slower than they say ends its latency cells by their time share instead."""
    # DRAM: bare metal is often 90-120 ns local; a VM or a busy machine (this project's VMs:
    # 120-190 ns) more, and a latency cell's share of the time must hold six samples there.
    dram_ns: float = 150.0           # one dependent load from local DRAM
    remote_ns: float = 250.0         # from another node's memory (HMAT's figure where declared)
    thread_gbs: float = 10.0         # one thread streaming
    node_gbs: float = 50.0           # one memory node, all threads together (HMAT's where declared)
    touch_gbs: float = 4.0           # allocating, first touch and filling, from one thread
    chain_ns_per_line: float = 30.0  # building a chain: shuffling and linking one line
    c2c_ns: float = 150.0            # a cache line one way, within a package
    c2c_remote_ns: float = 300.0     # a cache line one way, between packages
    call_s: float = 200e-6           # one kernel call: starting and pinning its threads

    def text(self) -> str:
        return (f"DRAM {self.dram_ns:g} ns a load local, {self.remote_ns:g} ns remote (HMAT's "
                f"where declared); streaming {self.thread_gbs:g} GB/s a thread, at most "
                f"{self.node_gbs:g} GB/s a memory node (HMAT's where declared); allocating and "
                f"filling {self.touch_gbs:g} GB/s; chain building {self.chain_ns_per_line:g} ns "
                f"a line; core-to-core {self.c2c_ns:g} ns one way in a package, "
                f"{self.c2c_remote_ns:g} ns between packages; {1e6 * self.call_s:g} us a "
                f"kernel call")


RATES = Rates()
BUILD_SHARE_MAX = 0.20  # building the chains may take at most this share of the cells' time
# The rates the quick check measures once on a machine (probes/_learned.py) and its later
# plans use instead of the stated defaults.
LEARNED_RATES = ("dram_ns", "chain_ns_per_line", "touch_gbs", "node_gbs")
# The streaming rate learned: the lower quartile of LEARN_BW_REPS read passes with all of a
# node's CPUs, so that a bandwidth cell's planned time holds its BW_REPS repetitions in most
# runs (at the stated 10 GB/s a thread, this VM's reads, 11-22 GB/s from 2 threads, often got
# 4; at the slowest pass, 8.7 GB/s once, every cell ran to its most and the check took 10 %
# longer).
LEARN_BW_REPS = 5
CLOCK_WINDOW_NS = 20_000_000   # clock calibration: two windows of 20 ms
LAT_MAX_SAMPLES = 10           # a latency cell's most samples (after a dropped warm-up)
# A sample's loads: LAT_LOADS shared by every cell's most passes, as a power of two within
# LAT_LOADS_RANGE (2^20 on one node, 2^15 on 8 x 8 cells), so the cost grows slowly with nodes.
LAT_LOADS = 32 << 20
LAT_LOADS_RANGE = (1 << 15, 1 << 20)
BW_KERNELS = ("read", "copy_nt")
# Bandwidth cells and core-to-core pairs sample under the same rule as latency cells: until
# the median's interval is within 2 % or their planned time is spent. Their planned time is
# what BW_REPS repetitions (C2C_SAMPLES samples) take at the stated rates: the fewest that can
# bound a median (stats.MEDIAN_CI_MIN_SAMPLES); a faster machine may take up to twice that.
BW_REPS = MEDIAN_CI_MIN_SAMPLES
BW_MIN_BYTES = 4 << 20         # per array per thread
C2C_ROUNDS, C2C_SAMPLES = 5000, MEDIAN_CI_MIN_SAMPLES
MOST = 2                       # a bandwidth cell or c2c pair takes at most MOST x its plan


@dataclass(frozen=True)
class LatencyPlan:
    cells: tuple            # (CPU node, CPU, memory node)
    chain_bytes: int        # one chain per memory node
    loads: int              # per sample
    min_samples: int        # the fewest that can end by the target
    max_samples: int
    target: float           # the median's 95 % interval within +- this fraction
    ns: dict                # (CPU node, memory node) -> ns per load assumed
    sized: str = ""         # why the chain is this size

    def cell_seconds(self, rates: Rates, samples: int | None = None) -> dict:
        """Each cell's time at ``samples`` samples (default: its most) plus the warm-up; one
        kernel call a sample (the first also runs the warm-up)."""
        k = self.max_samples if samples is None else samples
        return {(a, b): (k + 1) * self.loads * self.ns[(a, b)] * 1e-9 + k * rates.call_s
                for a, _, b in self.cells}


@dataclass(frozen=True)
class BandwidthPlan:
    kernels: tuple
    cells: tuple            # (CPU node, memory node) measured, for each kernel
    represents: dict        # every cell -> the measured cell of its class (itself if measured)
    remote_distances: tuple  # the SLIT distances of the remote cells measured
    threads: dict           # CPU node -> threads (its usable CPUs)
    bytes_per_thread: int   # per array
    isa_trials: int         # one pass of each ISA width before the repetitions (0: one width)
    reps: int
    full: bool


@dataclass(frozen=True)
class C2CPlan:
    pairs: tuple            # ((CPU a, CPU b), why this pair)
    rounds: int
    samples: int
    all_pairs: bool


@dataclass(frozen=True)
class QuickPlan:
    """What the quick check measures on a machine, and what that costs (estimate())."""
    machine: str
    packages: int
    nodes: int
    cpus: int
    clock_window_ns: int
    latency: LatencyPlan
    bandwidth: BandwidthPlan
    c2c: C2CPlan | None     # None: fewer than two usable CPUs
    package_of: dict        # CPU -> package, for the core-to-core rates
    bw_gbs: dict            # (CPU node, memory node) -> GB/s a memory node gives at most
    rates: Rates = RATES
    rates_from: str = "stated defaults"

    def estimate(self) -> dict:
        """Counts and seconds per part (clock, latency, bandwidth, core-to-core, total):
        ``seconds`` when every latency cell runs to its most samples, ``seconds_min`` when
        every one reaches its target at the fewest."""
        r, lat, bw = self.rates, self.latency, self.bandwidth
        out = {"clock": {"seconds": 2 * self.clock_window_ns * 1e-9 + 0.01}}
        out["clock"]["seconds_min"] = out["clock"]["seconds"]
        chains = len({b for _, _, b in lat.cells})
        build = chains * (lat.chain_bytes / r.touch_gbs * 1e-9
                          + lat.chain_bytes // C.CHAIN_STRIDE * r.chain_ns_per_line * 1e-9)
        most, least = lat.max_samples + 1, lat.min_samples + 1
        out["latency"] = {
            "cells": len(lat.cells), "chains": chains,
            "bytes_allocated": chains * lat.chain_bytes,
            "loads": most * lat.loads * len(lat.cells),
            "loads_min": least * lat.loads * len(lat.cells),
            "seconds": build + sum(lat.cell_seconds(r).values()),
            "seconds_min": build + sum(lat.cell_seconds(r, lat.min_samples).values()),
            "build_seconds": build,
            "build_share": build / (sum(lat.cell_seconds(r).values()) or 1.0)}
        alloc = streamed = seconds = 0.0
        for name in bw.kernels:
            k = KERNELS[name]
            n = bw.bytes_per_thread // 512 * 64          # doubles per array, as run() sizes it
            arrays, filled = max(k.streams, 1), max(k.streams, 1) - (1 if k.writes else 0)
            passes = (bw.isa_trials or 1) + bw.reps
            calls = bw.isa_trials + 1
            for a, b in bw.cells:
                t = bw.threads[a]
                made, put = t * arrays * n * 8, t * filled * n * 8
                moved = passes * t * n * k.bytes
                alloc, streamed = alloc + made + put, streamed + moved
                gbs = min(t * r.thread_gbs, self.bw_gbs[(a, b)])
                seconds += (made + put) / r.touch_gbs * 1e-9 + moved / gbs * 1e-9 \
                    + calls * r.call_s
        out["bandwidth"] = {"cells": len(bw.cells) * len(bw.kernels),
                            "bytes_allocated": int(alloc), "bytes_streamed": int(streamed),
                            "seconds": seconds, "seconds_min": seconds}
        if self.c2c is not None:
            c = self.c2c
            trips = max(c.rounds // 10, 1) + c.samples * c.rounds
            seconds = sum(trips * 2e-9 * (r.c2c_ns if self.package_of[a] == self.package_of[b]
                                          else r.c2c_remote_ns) + (1 + c.samples) * r.call_s
                          for (a, b), _ in c.pairs)
            out["c2c"] = {"pairs": len(c.pairs), "round_trips": trips * len(c.pairs),
                          "seconds": seconds, "seconds_min": seconds}
        out["total"] = {"seconds": sum(p["seconds"] for p in out.values()),
                        "seconds_min": sum(p["seconds_min"] for p in out.values())}
        return out

    def to_dict(self) -> dict:
        lat, bw = self.latency, self.bandwidth
        return {
            "machine": self.machine, "packages": self.packages, "nodes": self.nodes,
            "cpus": self.cpus, "clock_window_ns": self.clock_window_ns,
            "latency": {"cells": [{"cpu_node": a, "cpu": c, "mem_node": b,
                                   "ns_assumed": lat.ns[(a, b)]} for a, c, b in lat.cells],
                        "chain_bytes": lat.chain_bytes, "loads": lat.loads,
                        "min_samples": lat.min_samples, "max_samples": lat.max_samples,
                        "target": lat.target, "sized": lat.sized},
            "bandwidth": {"kernels": list(bw.kernels), "cells": [list(c) for c in bw.cells],
                          "represents": [{"cell": list(c), "measured": list(m)}
                                         for c, m in bw.represents.items() if c != m],
                          "remote_distances": list(bw.remote_distances),
                          "threads": {str(n): t for n, t in bw.threads.items()},
                          "bytes_per_thread": bw.bytes_per_thread,
                          "isa_trials": bw.isa_trials, "reps": bw.reps, "full": bw.full},
            "c2c": None if self.c2c is None else {
                "pairs": [{"a": a, "b": b, "why": why} for (a, b), why in self.c2c.pairs],
                "rounds": self.c2c.rounds, "samples": self.c2c.samples,
                "all_pairs": self.c2c.all_pairs},
            "rates": asdict(self.rates), "rates_from": self.rates_from,
            "estimate": self.estimate()}

    def text(self) -> str:
        return plan_text(self.to_dict())


def plan(topology: Topology | None = None, *, full: bool = False,
         all_pairs: bool = False, rates: Rates = RATES) -> QuickPlan:
    """What the quick check measures on ``topology`` (default: this machine); ``full``: every
    bandwidth cell; ``all_pairs``: core-to-core between every two usable CPUs."""
    topo = current_topology(topology)
    # What an earlier quick check measured on this machine (probes/_learned.py): the chain a
    # DRAM latency needs and the rates of its plan; given rates are taken as given.
    learned = (_learned.load(topo) or {}) if rates is RATES else {}
    cache, kept = learned.get("cache"), learned.get("rates") or {}
    when = learned.get("measured", "an earlier run")
    rates_from = "stated defaults"
    if kept:
        rates = replace(rates, **{k: float(v) for k, v in kept.items()
                                  if k in LEARNED_RATES and isinstance(v, (int, float))
                                  and 0 < v < 1e6})
        rates_from = (f"measured on this machine ({when}): "
                      + ", ".join(k for k in LEARNED_RATES if k in kept)
                      + "; the others stated defaults")
    reported = C.llc_bytes(topo)
    if cache and isinstance(cache.get("chain_bytes"), int) and cache["chain_bytes"] > 0:
        chain, sized = cache["chain_bytes"], f"{cache['why']} (measured {when})"
    else:
        chain = max(2 * reported, _latency.CHAIN_FLOOR)
        sized = (f"2 x the {human_bytes(reported)} of last-level cache reported, at least "
                 f"{human_bytes(_latency.CHAIN_FLOOR)}: what a core can use is not measured "
                 "yet (the quick check measures it once and keeps it)")
    cns, mns = C.cpu_nodes(topo), C.mem_nodes(topo)
    lat_cells = tuple((a, C.node_cpu(topo, a), b) for b in mns for a in cns)
    loads = LAT_LOADS // (len(lat_cells) * (LAT_MAX_SAMPLES + 1))
    loads = min(max(1 << (loads.bit_length() - 1), LAT_LOADS_RANGE[0]), LAT_LOADS_RANGE[1])
    ns = {(a, b): float(C.hmat(topo, a, b, "read_latency")
                        or (rates.dram_ns if a == b else rates.remote_ns))
          for a, _, b in lat_cells}
    latency = LatencyPlan(cells=lat_cells, chain_bytes=chain,
                          loads=loads, min_samples=MEDIAN_CI_MIN_SAMPLES,
                          max_samples=LAT_MAX_SAMPLES, target=DEFAULT_TARGET, ns=ns,
                          sized=sized)
    cells, represents = bandwidth_cells(topo, full=full)
    isas = len(_core.isa_supported())
    bandwidth = BandwidthPlan(
        kernels=BW_KERNELS, cells=cells, represents=represents,
        remote_distances=tuple(sorted({topo.distance(a, b) for a, b in cells if a != b})),
        threads={a: len(topo.cpus_of(a, usable=True)) for a in cns},
        bytes_per_thread=_bw_bytes(topo, smaller=bool(cache) and chain <= reported),
        isa_trials=isas if isas > 1 else 0, reps=BW_REPS,
        full=full)
    pairs = c2c_pairs(topo, all_pairs=all_pairs)
    c2c = C2CPlan(pairs, C2C_ROUNDS, C2C_SAMPLES, all_pairs) if pairs else None
    bw_gbs = {(a, b): (C.hmat(topo, a, b, "read_bandwidth") or 1000 * rates.node_gbs) / 1000
              for a in cns for b in mns}
    return QuickPlan(machine=topo.settings.cpu_model or "unknown CPU",
                     packages=len(topo.packages) or 1, nodes=len(topo.nodes),
                     cpus=len(topo.usable_cpus), clock_window_ns=CLOCK_WINDOW_NS,
                     latency=latency, bandwidth=bandwidth, c2c=c2c,
                     package_of={c: topo.cpu(c).package for c in topo.usable_cpus},
                     bw_gbs=bw_gbs, rates=rates, rates_from=rates_from)


def bandwidth_cells(topo: Topology, *, full: bool = False) -> tuple[tuple, dict]:
    """The bandwidth cells to measure, and for every cell the measured one that stands for it:
    the diagonal, and of the remote cells one per class, a class being the SLIT distance,
    whether the memory node has CPUs and what HMAT declares (cells alike in all three are
    alike by the firmware's own account); every cell with ``full``."""
    every = [(a, b) for a in C.cpu_nodes(topo) for b in C.mem_nodes(topo)]
    if full:
        return tuple(every), {c: c for c in every}
    first, represents = {}, {}
    for a, b in every:
        key = (a, b) if a == b else (
            topo.distance(a, b), topo.node(b).has_cpus,
            C.hmat(topo, a, b, "read_latency"), C.hmat(topo, a, b, "read_bandwidth"))
        represents[(a, b)] = first.setdefault(key, (a, b))
    return tuple(c for c in every if represents[c] == c), represents


def _bw_bytes(topo: Topology, smaller: bool = False) -> int:
    """Bytes per array per thread: a cell's threads together stream 4 x the last-level caches
    their node's CPUs share (at 2 x a read still hits the cache in part, and on a VM its
    samples came out bimodal: 11 and 35 GB/s, CV 45 %), at least 4 MiB each; one size for
    every cell, the largest a node needs. ``smaller``: the two-point test found that a chase
    over the reported cache already costs DRAM's latency, so half of that suffices."""
    groups = C.llc_groups(topo)
    sizes = []
    for n in C.cpu_nodes(topo):
        cpus = set(topo.cpus_of(n, usable=True))
        llc = sum(size for g, size in groups if cpus & set(g)) or C.llc_bytes(topo)
        sizes.append((2 if smaller else 4) * llc // len(cpus))
    return max(max(sizes) // 512 * 512, BW_MIN_BYTES)


def c2c_pairs(topo: Topology, *, all_pairs: bool = False) -> tuple:
    """Core-to-core pairs as ((CPU a, CPU b), why): every pair between one CPU of each
    last-level cache (and of each node whose cache spans nodes), one pair of SMT siblings and
    one pair of cores sharing a last-level cache, the levels at which a cache line's trip can
    differ; every pair of usable CPUs with ``all_pairs``. Empty with fewer than two."""
    usable = topo.usable_cpus
    if len(usable) < 2:
        return ()
    if all_pairs:
        return tuple((p, "every pair") for p in itertools.combinations(usable, 2))
    ok = set(usable)

    def siblings(c):
        return [s for s in topo.cpu(c).siblings if s in ok]

    firsts = {c for c in usable if c == min(siblings(c))}   # one CPU per core

    def pick(cpus):  # the last first thread (CPU 0 of a node tends to take more interrupts)
        return max([c for c in cpus if c in firsts] or cpus)

    groups = [g for g, _ in C.llc_groups(topo)]
    reps = {pick(g) for g in groups}
    for n in topo.cpu_nodes:
        mine = topo.cpus_of(n, usable=True)
        if mine and not reps & set(mine):
            reps.add(pick(mine))
    reps = sorted(reps)
    group_of = {c: g for g in groups for c in g}
    pairs = {}
    for a, b in itertools.combinations(reps, 2):
        pa, pb = topo.cpu(a).package, topo.cpu(b).package
        pairs[(a, b)] = ("other package" if pa != pb else
                         "same package, other node" if topo.node_of(a) != topo.node_of(b) else
                         "same node, other last-level cache")
    smt = next(((r, s) for r in reps for s in siblings(r) if s != r), None) or next(
        (tuple(u[:2]) for core in reversed(topo.cores)
         if len(u := [c for c in core if c in ok]) >= 2), None)
    if smt:
        pairs.setdefault(tuple(sorted(smt)), "SMT siblings")
    shared = next(((max(others), r) for r in reps
                   if (others := (set(group_of[r]) & firsts) - {r})), None)
    if shared:
        pairs.setdefault(tuple(sorted(shared)), "same last-level cache, other core")
    return tuple(pairs.items())


def quick_check(topology: Topology | None = None, progress: bool | None = None, *,
                full: bool = False, all_pairs: bool = False,
                budget: float | None = None) -> dict:
    """Runs the quick check (what plan() says) and returns its document, the plan included
    (see cli.cmd_quick for the printing). Every latency and bandwidth cell and every
    core-to-core pair samples until its median is known within 2 % or its planned time is
    spent; ``budget`` (seconds) scales every planned time to fit it (the fixed work, clock
    and allocation, cannot shrink: a budget below it is refused, naming it)."""
    t0 = time.monotonic()
    topo = current_topology(topology)
    learned_now, kept_note = None, None
    if _learned.directory() is not None and _learned.load(topo) is None:
        # Once per machine: what a core's caches really hold, and the rates of the plan.
        cn = C.cpu_nodes(topo)[0]
        mn = cn if cn in topo.usable_mems else topo.usable_mems[0]
        learned_now = _latency.effective_cache(topo, C.node_cpu(topo, cn), mn)
        learned_now["node_gbs"] = learn_node_gbs(topo, cn, mn)
        kept_note = _learned.save(topo, {
            "measured": time.strftime("%Y-%m-%d", time.gmtime()),
            "cache": {k: learned_now[k] for k in ("reported_bytes", "ns_1x", "ns_4x",
                                                  "chain_bytes", "why")},
            "rates": {k: learned_now[k] for k in LEARNED_RATES if learned_now.get(k)}})
    p = plan(topo, full=full, all_pairs=all_pairs)
    scale = 1.0
    if budget is not None:
        fixed, flexible = fixed_seconds(p)
        if not (isinstance(budget, (int, float)) and budget > fixed):
            raise UsageError(f"a budget of {budget!r} s is below what this machine's quick "
                             f"check must spend whatever it samples ({fixed:.2g} s: the clock, "
                             "building chains, allocating and filling arrays); allow more")
        scale = (budget - fixed) / flexible if flexible else 1.0
    bar = C.Progress(5, "quick check", progress)
    with NoiseMeter(topo.usable_cpus) as meter:
        try:
            clk = clock.calibrate(p.clock_window_ns)
            bar.step("clock")
            lat = latency_part(p, topo, scale)
            bar.step("latency")
            bws = {k: bandwidth_part(p, k, topo, scale) for k in p.bandwidth.kernels}
            bar.step("bandwidth")
            c2c = None
            if p.c2c is not None:
                c2c = c2c_matrix(pairs=[pair for pair, _ in p.c2c.pairs], rounds=p.c2c.rounds,
                                 samples=MOST * p.c2c.samples, target_ci=p.latency.target,
                                 budget=sampling_seconds(p)["c2c"] * scale, topology=topo,
                                 progress=False)
            bar.step("core-to-core")
        finally:
            bar.close()
    noise = meter.result
    warnings = topo.warnings() + clk.warnings()
    if len(topo.nodes) == 1:
        warnings.append("one NUMA node: local-versus-remote effects cannot show on this machine")
    warnings += lat.warnings() + [w for m in bws.values() for w in m.warnings()]
    if c2c is not None:
        warnings += c2c.warnings()
    else:
        warnings.append("one usable CPU: no core-to-core latency")
    if (w := noise.warning()):
        warnings.append(w)
    if kept_note:
        warnings.append(kept_note)
    from ..workload.engines import idle_units_hint  # no engine is imported: flags only
    if (w := idle_units_hint(topo, [], command="numaprobe infer ")):
        warnings.append(w)
    return {
        "numaprobe": __version__, "kind": "quick",
        "topology": topo.to_dict(), "clock": clk.to_dict(),
        "latency": lat.to_dict(), "bandwidth": {k: m.to_dict() for k, m in bws.items()},
        "c2c": c2c.to_dict() if c2c is not None else None,
        "plan": p.to_dict(), "budget_s": budget, "scale": scale,
        "learned": learned_now,
        "noise": noise.to_dict(), "warnings": warnings,
        "seconds": time.monotonic() - t0,
    }


def latency_part(p: QuickPlan, topo: Topology, scale: float = 1.0):
    """The quick check's latency matrix as plan ``p`` says, its times x ``scale``: each
    cell's share of the time is what the plan gives it, so a machine slower than the rates
    assume still ends within the plan."""
    lat = p.latency
    shares = {k: v * scale for k, v in lat.cell_seconds(p.rates).items()}
    return latency_matrix(size=lat.chain_bytes, samples=lat.max_samples, loads=lat.loads,
                          target_ci=lat.target, budget=sum(shares.values()), shares=shares,
                          topology=topo, progress=False)


def bandwidth_part(p: QuickPlan, kernel: str, topo: Topology, scale: float = 1.0):
    """The quick check's ``kernel`` bandwidth cells as plan ``p`` says, its time x
    ``scale``."""
    bw = p.bandwidth
    return bandwidth_matrix(kernel, size=bw.bytes_per_thread, reps=MOST * bw.reps,
                            cells=bw.cells, target_ci=p.latency.target,
                            budget=sampling_seconds(p)[kernel] * scale, topology=topo,
                            progress=False)


def learn_node_gbs(topo: Topology, cpu_node: int, mem_node: int) -> float:
    """GB/s of the read kernel with every usable CPU of ``cpu_node`` on ``mem_node``'s memory,
    the quick check's arrays: the lower quartile of LEARN_BW_REPS passes (the rate a plan
    assumes)."""
    r = _bandwidth.bandwidth(cpu_node, mem_node, "read", size=_bw_bytes(topo),
                             reps=LEARN_BW_REPS, topology=topo)
    return statistics.quantiles(r.gbs.samples, n=4, method="inclusive")[0]


def sampling_seconds(p: QuickPlan) -> dict:
    """The planned sampling time of each bandwidth kernel (all its cells: BW_REPS repetitions
    each at the stated rates, allocation and the ISA trials left out) and of core-to-core
    (all pairs: C2C_SAMPLES samples each): the budgets of their stopping rule."""
    r, bw = p.rates, p.bandwidth
    out = {}
    for name in bw.kernels:
        k = KERNELS[name]
        n = bw.bytes_per_thread // 512 * 64
        out[name] = sum(bw.reps * bw.threads[a] * n * k.bytes
                        / min(bw.threads[a] * r.thread_gbs, p.bw_gbs[(a, b)]) * 1e-9
                        + bw.reps * r.call_s for a, b in bw.cells)
    out["c2c"] = 0.0
    if p.c2c is not None:
        c = p.c2c
        out["c2c"] = sum(c.samples * (c.rounds * 2e-9 * (r.c2c_ns if p.package_of[a] ==
                                                         p.package_of[b] else r.c2c_remote_ns)
                                      + r.call_s) for (a, b), _ in c.pairs)
    return out


def fixed_seconds(p: QuickPlan) -> tuple[float, float]:
    """(the time the plan spends whatever the cells sample: clock, chain building,
    allocating and filling, ISA trials; the time the stopping rules share out), at the
    stated rates: what a --budget can and cannot scale."""
    est = p.estimate()
    flexible = sum(p.latency.cell_seconds(p.rates).values()) + sum(
        sampling_seconds(p).values())
    return max(0.0, est["total"]["seconds"] - flexible), flexible


# ------------------------------------------------------------------------ the plan as text

def plan_text(d: dict) -> str:
    """A plan (QuickPlan.to_dict(), also the quick check document's "plan") for people."""
    lat, bw, c2c, est = d["latency"], d["bandwidth"], d["c2c"], d["estimate"]
    mems = sorted({c["mem_node"] for c in lat["cells"]})
    cpu_nodes = sorted({c["cpu_node"] for c in lat["cells"]})
    every = len(cpu_nodes) * len(mems)
    lines = [f"quick check plan: {d['machine']}, {plural(d['packages'], 'package')}, "
             f"{plural(d['nodes'], 'NUMA node')}, {plural(d['cpus'], 'usable CPU')}",
             f"clock: calibrated over 2 x {d['clock_window_ns'] / 1e6:g} ms",
             f"latency: {plural(len(lat['cells']), 'cell')} (one CPU of each of "
             f"{plural(len(cpu_nodes), 'CPU node')} x {plural(len(mems), 'memory node')}), "
             f"{plural(len(mems), 'chain')} of {human_bytes(lat['chain_bytes'])} "
             "(one per memory node)",
             f"  a cell: samples of {lat['loads']} loads, after a warm-up, until the 95 % "
             f"interval of the median is within {100 * lat['target']:g} %: "
             f"{lat['min_samples']} to {lat['max_samples']}, within the cell's planned time"]
    if lat.get("sized"):
        lines += textwrap.wrap(f"  the chain's size: {lat['sized']}", 79,
                               subsequent_indent="    ")
    share = est["latency"].get("build_share")
    if share is not None:
        lines.append(f"  building the chains: {est['latency']['build_seconds']:.2f} s, "
                     f"{100 * share:.0f} % of the cells' time"
                     + (f" (more than the {100 * BUILD_SHARE_MAX:.0f} % aimed at)"
                        if share > BUILD_SHARE_MAX else ""))
    remote = bw["remote_distances"]
    how = ("every cell" if bw["full"] or len(bw["cells"]) == every else
           "the diagonal and one cell per remote class" +
           (f" (SLIT distance {', '.join(map(str, remote))})" if remote else "") +
           f"; --full measures all {every}")
    threads = sorted(set(bw["threads"].values()))
    isa = f"{bw['isa_trials']} ISA trial passes + " if bw["isa_trials"] else "a warm-up + "
    lines += [f"bandwidth: {', '.join(bw['kernels'])}: {len(bw['cells'])} of {every} cells "
              f"each, {how}",
              f"  {'/'.join(map(str, threads))} threads a cell (the CPU node's usable CPUs), "
              f"{human_bytes(bw['bytes_per_thread'])} per array a thread, {isa}"
              f"{bw['reps']} repetitions"]
    if c2c is None:
        lines.append("core-to-core: none (one usable CPU)")
    else:
        kinds = {}
        for p in c2c["pairs"]:
            kinds.setdefault(p["why"], []).append(f"{p['a']}-{p['b']}")
        said = "; ".join(f"{why}: " + (", ".join(v) if len(v) <= 3 else plural(len(v), "pair"))
                         for why, v in kinds.items())
        cpus = sorted({c for p in c2c["pairs"] for c in (p["a"], p["b"])})
        n = d["cpus"]
        every_pair = n * (n - 1) // 2
        lines += [f"core-to-core: {plural(len(c2c['pairs']), 'pair')} among CPUs "
                  f"{format_list(cpus)} ({said})"
                  + ("" if len(c2c["pairs"]) == every_pair else
                     f"; --all-pairs measures all {every_pair}"),
                  f"  {max(c2c['rounds'] // 10, 1)} + {c2c['samples']} x {c2c['rounds']} "
                  "round trips a pair"]
    lines += ["", f"{'estimate':<14}{'at most':>10}{'at least':>10}   counts"]
    counts = {
        "clock": "",
        "latency": lambda p: (f"{_count(p['loads_min'])}-{_count(p['loads'])} loads, "
                              f"{plural(p['chains'], 'chain')} built "
                              f"({human_bytes(p['bytes_allocated'])})"),
        "bandwidth": lambda p: (f"{human_bytes(p['bytes_allocated'])} allocated and filled, "
                                f"{human_bytes(p['bytes_streamed'])} streamed"),
        "c2c": lambda p: f"{_count(p['round_trips'])} round trips",
        "total": ""}
    for part, p in est.items():
        what = counts.get(part, "")
        lines.append(f"  {'core-to-core' if part == 'c2c' else part:<12}{p['seconds']:9.2f}s"
                     f"{p['seconds_min']:9.2f}s   " + (what(p) if callable(what) else what))
    lines += textwrap.wrap(f"rates assumed ({d.get('rates_from') or 'stated defaults'}): "
                           + Rates(**d["rates"]).text(), 79, subsequent_indent="  ")
    return "\n".join(lines)


def _count(n: float) -> str:
    return f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n / 1e3:.0f} K" if n >= 1e3 else f"{n:.0f}"


# ------------------------------------------------------------------------ the result kind

def _text(doc: dict) -> str:
    r, noise = doc["result"], doc.get("noise")
    lines = [Topology.from_dict(r["topology"]).summary(), clock.summary_line(r["clock"])]
    tables = [_latency.matrix_text(r["latency"])] + [
        _bandwidth.matrix_text(m) for m in r["bandwidth"].values()]
    if r.get("c2c"):
        tables.append(_c2c.matrix_text(r["c2c"]))
    for table in tables:
        lines += ["", table]
    p = r.get("plan")
    if p and p["bandwidth"]["represents"]:
        lines.append("bandwidth cells marked - share their SLIT distance, memory kind and HMAT "
                     "figures with a measured cell (python -m numaprobe --full measures all)")
    if noise:
        lines.append(f"\nnoise: other processes {100 * noise['foreign_fraction']:.1f} %, hypervisor "
                     f"steal {100 * noise['steal_fraction']:.1f} % of CPU time during the run")
    if p and r.get("seconds") is not None:
        est = p["estimate"]["total"]
        lines.append(f"time: {r['seconds']:.1f} s; planned {est['seconds_min']:.1f} to "
                     f"{est['seconds']:.1f} s at the stated rates (python -m numaprobe --plan)")
    return "\n".join(lines)


def _figures(doc: dict) -> list:
    r = doc["result"]
    out = _latency.matrix_figures(r["latency"])
    for m in r["bandwidth"].values():
        out += _bandwidth.matrix_figures(m)
    if r.get("c2c"):
        out += _c2c.matrix_figures(r["c2c"])
    return out


def _rows(doc: dict) -> tuple[list, list]:
    r = doc["result"]
    parts = [("latency", _latency.matrix_rows(r["latency"]))] + [
        (f"bandwidth-{k}", _bandwidth.matrix_rows(m)) for k, m in r["bandwidth"].items()]
    header = ["table"] + parts[0][1][0]
    return header, [[name] + row for name, (_, rows) in parts for row in rows]


def _plots(doc: dict) -> list:
    r = doc["result"]
    out = [("latency-matrix", lambda: _latency.matrix_plot(doc, r["latency"]))]
    for k, m in r["bandwidth"].items():
        out.append((f"bandwidth-{k}-matrix", lambda m=m: _bandwidth.matrix_plot(doc, m)))
    if r.get("c2c"):
        out.append(("c2c-matrix", lambda: _c2c.matrix_plot(doc, r["c2c"])))
    return out


def _html(r: dict, machine: dict | None = None) -> str:
    out = []
    c = r.get("clock")
    if c:
        out.append(f"<p>{H.e(clock.summary_line(c))}</p>")
    if r.get("latency"):
        out.append(_latency.matrix_html(r["latency"], machine))
    for m in (r.get("bandwidth") or {}).values():
        out.append(_bandwidth.matrix_html(m, machine))
    out.append(_c2c.matrix_html(r["c2c"]) if r.get("c2c") else "<p class=muted>no core-to-core latency "
                                                    "(one usable CPU)</p>")
    if r.get("seconds") is not None:
        out.append(f"<p class='small muted'>the quick check took {r['seconds']:.1f} s</p>")
    return "\n".join(out)


register(Kind("quick", "quick check", text=_text,
              html=lambda doc: _html(doc["result"], doc.get("machine")),
              figures=_figures, rows=_rows, plots=_plots))
