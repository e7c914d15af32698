"""Loaded latency: the idle-latency chase on one CPU while the other CPUs of its node read
memory at several injection delays (a spin between 512-byte blocks). Each point pairs the
chase's latency with the bandwidth the readers achieved meanwhile: the latency-bandwidth
curve, as Intel MLC's loaded-latency mode draws it."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError
from .. import _core, clock, placement
from ..kinds import Figure, Kind, register
from ..report import html as H, plots as P
from ..stats import summarize
from ..topology import Topology, format_list
from ..words import ids
from . import _common as C
from ._latency import MIN_LOADS, default_size

# Spins (pause instructions, ~10-40 ns each) between 512-byte blocks, light to full load.
DELAYS = (400, 100, 40, 20, 10, 5, 2, 0)


@dataclass(frozen=True)
class LoadedCurve:
    cpu_node: int
    mem_node: int
    chase_cpu: int
    traffic_cpus: tuple
    points: tuple           # dicts: delay, latency (Summary), gbs

    def to_dict(self) -> dict:
        return {"cpu_node": self.cpu_node, "mem_node": self.mem_node, "chase_cpu": self.chase_cpu,
                "traffic_cpus": list(self.traffic_cpus),
                "points": [{"delay": p["delay"], "latency_ns": p["latency"].to_dict(),
                            "gbs": p["gbs"],
                            **({"ended_by": p["ended_by"]} if p.get("ended_by") else {})}
                           for p in self.points]}

    def warnings(self) -> list[str]:
        """A curve whose latency falls as traffic rises is not a memory system's: the idle
        point was disturbed (or the traffic did not reach this memory)."""
        pts = sorted(self.points, key=lambda p: p["gbs"])
        if len(pts) >= 2 and pts[-1]["latency"].median < 0.95 * pts[0]["latency"].median:
            return [f"loaded latency falls as traffic rises ({pts[0]['latency'].median:.1f} ns "
                    f"at {pts[0]['gbs']:.2f} GB/s, {pts[-1]['latency'].median:.1f} ns at "
                    f"{pts[-1]['gbs']:.2f} GB/s): implausible, rerun on a quieter machine"]
        return []

    def table(self) -> str:
        return _text(self.to_dict())


def loaded_latency(cpu_node: int | None = None, mem_node: int | None = None, *,
                   delays=DELAYS, size: int | None = None, traffic_size: int = 64 << 20,
                   samples: int | None = None, loads: int = MIN_LOADS,
                   target_ci: float | None = None, budget: float | None = None,
                   topology: Topology | None = None,
                   progress: bool | None = None) -> LoadedCurve:
    """The chase's latency at each delay while the node's other CPUs read: ``samples`` a
    point (default 3) in one run, or with ``target_ci`` or ``budget`` (seconds for the curve,
    shared equally by its points) the stopping rule, one run a sample (each with its own
    warm-up), ``samples`` a point at most (default RULE_MAX_SAMPLES)."""
    topo = C.topology(topology)
    cn = C.cpu_nodes(topo, None if cpu_node is None else [cpu_node])[0]
    if mem_node is None:
        mem_node = cn if cn in topo.usable_mems else topo.usable_mems[0]
    (mn,) = C.mem_nodes(topo, [mem_node])
    delays = [int(d) for d in delays]
    if not delays or min(delays) < 0:
        raise UsageError("delays must be whole numbers >= 0")
    if samples is None:
        samples = 3 if target_ci is None and budget is None else C.RULE_MAX_SAMPLES
    if not isinstance(samples, int) or samples < 1:
        raise UsageError(f"samples must be a whole number >= 1, got {samples!r}")
    rule = C.stopping_rule(target_ci, budget, samples)
    cpus = list(topo.cpus_of(cn, usable=True))
    chase_cpu, traffic = cpus[-1], cpus[:-1]
    size = C.check_size(size if size is not None else default_size(topo), 128)
    n = C.check_size(traffic_size, 512, "traffic size") // 512 * 64
    clk = clock.get()
    bar = C.Progress(len(delays), "loaded latency", progress)
    points = []
    bufs = []
    try:
        with placement.alloc(size, node=mn, topology=topo) as chain:
            C.build_chain(chain, "tlb-local")
            for _ in traffic:
                bufs.append(placement.alloc(n * 8, node=mn, topology=topo))
            for d in delays:
                got = {"bytes": 0, "ticks": 0}

                def run(k, d=d):
                    """k timed samples after a warm-up, traffic meanwhile."""
                    lat, nbytes, span, _ = _core.loaded_run(
                        [chase_cpu, *traffic], chain.address, loads // 32 * 32, k + 1,
                        [b.address for b in bufs], n, d)
                    got["bytes"] += sum(nbytes)
                    got["ticks"] += span
                    return [clk.to_ns(max(t - clk.overhead_ticks, 0)) / loads for t in lat[1:]]
                if rule is None:
                    ns, ended = run(samples), None
                else:
                    ns, ended = C.sample(lambda: run(1)[0], rule.share(1 / len(delays)))
                gbs = got["bytes"] / clk.to_ns(got["ticks"]) if got["ticks"] else 0.0
                points.append({"delay": d, "latency": summarize(ns, "ns"), "gbs": gbs,
                               "ended_by": ended})
                bar.step(f"delay {d}: {points[-1]['latency'].median:.1f} ns at {gbs:.1f} GB/s")
    finally:
        for b in bufs:
            b.close()
        bar.close()
    return LoadedCurve(cpu_node=cn, mem_node=mn, chase_cpu=chase_cpu,
                       traffic_cpus=tuple(traffic), points=tuple(points))


class Background:
    """numaprobe's load beside a workload (``infer --perturb``), from ``with`` to its end:
    "traffic" reads memory of ``mem_node`` from each of ``cpus`` with ``delay`` spins
    between 512-byte blocks (the loaded-latency readers above), each over a buffer of at
    least twice the last-level cache it could hit; "cache" walks a chain of the last-level
    cache's size from each CPU (pressure on that cache, little on DRAM). The kernel runs in
    a thread of its own (its CPUs' threads are pinned by the team); after the block,
    ``gbs`` is the bandwidth it took and ``seconds`` how long it ran. MAX_S ends it by
    itself should the block never end (the thread is a daemon)."""
    MAX_S = 3600.0

    def __init__(self, cpus, mem_node: int, *, kind: str = "traffic", delay: int = 0,
                 topology: Topology | None = None):
        if kind not in ("traffic", "cache"):
            raise UsageError(f"unknown load {kind!r}; loads: traffic, cache")
        if not cpus:
            raise UsageError("a background load needs at least one CPU")
        self.topo = C.topology(topology)
        self.cpus, self.mem_node, self.kind, self.delay = list(cpus), mem_node, kind, int(delay)
        self.gbs = self.seconds = None
        self._mem, self._thread, self._got, self._error = [], None, None, None
        self._stop = _core.StopFlag()

    def __enter__(self) -> "Background":
        import threading
        llc = C.llc_bytes(self.topo)
        try:
            if self.kind == "traffic":
                per = max(64 << 20, -(-2 * llc // len(self.cpus)))
                self._n = per // 512 * 64
                self._mem = [placement.alloc(self._n * 8, node=self.mem_node,
                                             topology=self.topo) for _ in self.cpus]
                args = dict(bufs=[m.address for m in self._mem], n=self._n, delay=self.delay)
            else:
                self._mem = [placement.alloc(llc, node=self.mem_node, topology=self.topo)
                             for _ in self.cpus]
                for k, m in enumerate(self._mem):
                    C.build_chain(m, "random", seed=k + 1)
                args = dict(chains=[m.address for m in self._mem])
        except BaseException:
            self._free()
            raise
        clk = clock.get()
        max_ticks = int(self.MAX_S * 1e9 * clk.ticks_per_ns)

        def run():
            try:
                self._got = _core.load_run(self.cpus, self._stop, max_ticks, **args)
            except BaseException as e:  # reported by __exit__
                self._error = e
        self._thread = threading.Thread(target=run, name="numaprobe-load", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._free()
        if self._error is not None and exc[0] is None:
            raise self._error
        if self._got is not None:
            nbytes, ticks, _ = self._got
            ns = clock.get().to_ns(ticks)
            self.seconds = ns / 1e9
            self.gbs = sum(nbytes) / ns if ns else 0.0

    def _free(self) -> None:
        for m in self._mem:
            m.close()
        self._mem = []


# ------------------------------------------------------------------------ the result kind

def _text(r: dict) -> str:
    traffic = ids("CPU", r["traffic_cpus"]) if r["traffic_cpus"] else "no other CPU"
    lines = [f"loaded latency: chase on CPU {r['chase_cpu']}, traffic from {traffic}, memory "
             f"node {r['mem_node']}",
             f"{'delay spins':>12} {'latency ns':>12} {'traffic GB/s':>14}"]
    for p in r["points"]:
        lines.append(f"{p['delay']:>12} {p['latency_ns']['median']:12.1f} {p['gbs']:14.2f}")
    lines.append("delay: spin-loop iterations each traffic thread waits between 512-byte "
                 "blocks (0: flat out)")
    return "\n".join(lines)


def _html_loaded(r: dict) -> str:
    traffic = format_list(r.get("traffic_cpus") or []) or "none"
    return H.table(["delay spins", "latency ns", "traffic GB/s", "latency min\u2013max"],
                  [[str(p["delay"]), f"{p['latency_ns']['median']:.1f}", f"{p['gbs']:.2f}",
                    f"{p['latency_ns']['min']:.1f}\u2013{p['latency_ns']['max']:.1f}"]
                   for p in r.get("points") or []],
                  caption=f"loaded latency: chase on CPU {r.get('chase_cpu')}, traffic from CPUs "
                          f"{traffic}, memory node {r.get('mem_node')}")


def _plot_loaded_latency(doc, r):
    pts = sorted(r.get("points") or [], key=lambda p: p["gbs"])
    if not pts:
        return None
    fig = P.figure(8.5, 5.2)
    ax = fig.add_subplot()
    x = [p["gbs"] for p in pts]
    y = [p["latency_ns"]["median"] for p in pts]
    err = [[max(0.0, p["latency_ns"]["median"] - p["latency_ns"]["min"]) for p in pts],
           [max(0.0, p["latency_ns"]["max"] - p["latency_ns"]["median"]) for p in pts]]
    ax.errorbar(x, y, yerr=err, fmt="o-", color="#d62728", ecolor="0.55", elinewidth=1,
                capsize=3, markersize=5, label="median latency (bars: min\u2013max)")
    span = (max(x) - min(x)) or 1.0
    offsets = [(6, 5), (6, -13), (6, 15), (6, -23), (6, 25), (6, -33)]
    crowd, prev = 0, None
    for p, xi, yi in zip(pts, x, y):
        crowd = crowd + 1 if prev is not None and xi - prev < 0.05 * span else 0
        prev = xi
        ax.annotate(str(p["delay"]), (xi, yi), textcoords="offset points",
                    xytext=offsets[crowd % len(offsets)], fontsize=8.5, color="0.2",
                    bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.7))
    ax.set_xlim(left=-0.02 * max(x), right=max(x) * 1.12 if max(x) > 0 else 1)
    ax.set_ylim(bottom=0, top=max(p["latency_ns"]["max"] for p in pts) * 1.15)
    traffic = format_list(r.get("traffic_cpus") or []) or "none"
    ax.set_xlabel(f"read traffic achieved by CPUs {traffic} (GB/s)")
    ax.set_ylabel("latency, ns per load")
    ax.grid(True, color="0.9", linewidth=0.8)
    ax.legend(loc="lower right", frameon=False)
    P.titles(fig, ax, f"loaded latency: chase on CPU {r.get('chase_cpu')} (node {r.get('cpu_node')})"
            f" to memory node {r.get('mem_node')}", doc,
            "labels: injection delay, spins between 512-byte blocks of the traffic threads "
            "(0 = full load)")
    return fig


register(Kind(
    "loaded-latency", "loaded latency",
    text=lambda doc: _text(doc["result"]),
    html=lambda doc: _html_loaded(doc["result"]),
    figures=lambda doc: [Figure.of(f"loaded latency at delay {p['delay']}", p["latency_ns"], False)
                         for p in doc["result"]["points"]],
    rows=lambda doc: (["delay", "latency_ns", "gbs"],
                      [[p["delay"], p["latency_ns"]["median"], p["gbs"]]
                       for p in doc["result"]["points"]]),
    plots=lambda doc: [("curve", lambda: _plot_loaded_latency(doc, doc["result"]))]))
