"""Loaded latency: the idle-latency chase on one CPU while the other CPUs of its node read
memory at several injection delays (a spin between 512-byte blocks). Each point pairs the
chase's latency with the bandwidth the readers achieved meanwhile: the latency-bandwidth
curve, as Intel MLC's loaded-latency mode draws it."""
from __future__ import annotations

from dataclasses import dataclass

from .. import _core, clock, placement
from ..stats import summarize
from ..topology import Topology
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
                            "gbs": p["gbs"]} for p in self.points]}

    def table(self) -> str:
        lines = [f"loaded latency: chase on CPU {self.chase_cpu}, traffic from CPUs "
                 f"{','.join(map(str, self.traffic_cpus)) or 'none'}, memory node {self.mem_node}",
                 f"{'delay':>8} {'latency ns':>12} {'traffic GB/s':>14}"]
        for p in self.points:
            lines.append(f"{p['delay']:>8} {p['latency'].median:12.1f} {p['gbs']:14.2f}")
        return "\n".join(lines)


def loaded_latency(cpu_node: int | None = None, mem_node: int | None = None, *,
                   delays=DELAYS, size: int | None = None, traffic_size: int = 64 << 20,
                   samples: int = 3, loads: int = MIN_LOADS, topology: Topology | None = None,
                   progress: bool | None = None) -> LoadedCurve:
    topo = C.topology(topology)
    cn = C.cpu_nodes(topo, None if cpu_node is None else [cpu_node])[0]
    if mem_node is None:
        mem_node = cn if cn in topo.usable_mems else topo.usable_mems[0]
    (mn,) = C.mem_nodes(topo, [mem_node])
    delays = [int(d) for d in delays]
    if not delays or min(delays) < 0:
        raise ValueError("delays must be whole numbers >= 0")
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
                lat, nbytes, span, ran_on = _core.loaded_run(
                    [chase_cpu, *traffic], chain.address, loads // 32 * 32, samples + 1,
                    [b.address for b in bufs], n, d)
                ns = [clk.to_ns(max(t - clk.overhead_ticks, 0)) / loads for t in lat[1:]]
                gbs = sum(nbytes) / clk.to_ns(span) if span else 0.0
                points.append({"delay": d, "latency": summarize(ns, "ns"), "gbs": gbs})
                bar.step(f"delay {d}: {points[-1]['latency'].median:.1f} ns at {gbs:.1f} GB/s")
    finally:
        for b in bufs:
            b.close()
        bar.close()
    return LoadedCurve(cpu_node=cn, mem_node=mn, chase_cpu=chase_cpu,
                       traffic_cpus=tuple(traffic), points=tuple(points))
