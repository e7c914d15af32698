"""Core-to-core latency: a cache line passed between two pinned threads by compare-and-swap.
A round trip moves the line twice; one-way latency is half a round trip, the clock's read
overhead removed. Where the line lives (its memory node) is a parameter: it changes results
on machines whose coherence directory sits with the memory."""
from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass

from ..errors import UsageError
from .. import _core, clock, placement
from ..kinds import Figure, Kind, register
from ..report import html as H, plots as P
from ..stats import summarize
from ..topology import Topology, format_list
from ..words import plural
from . import _common as C


@dataclass(frozen=True)
class C2CMatrix:
    cpus: tuple
    node: int               # where the line lived
    rounds: int
    ns: dict                # (cpu a, cpu b) -> Summary of one-way ns, a < b
    ended_by: dict | None = None  # with a stopping rule: (a, b) -> what ended its sampling
    stopping: dict | None = None  # the stopping rule, where one was used

    def pairs_sorted(self):
        return sorted(self.ns.items(), key=lambda kv: kv[1].median)

    def summary(self) -> dict:
        items = self.pairs_sorted()
        meds = [s.median for _, s in items]
        return {"min": {"pair": list(items[0][0]), "ns": items[0][1].median},
                "median": statistics.median(meds),
                "max": {"pair": list(items[-1][0]), "ns": items[-1][1].median},
                "pairs": len(items)}

    def to_dict(self) -> dict:
        ended = self.ended_by or {}
        return {"cpus": list(self.cpus), "node": self.node, "rounds": self.rounds,
                "pairs": [{"a": a, "b": b, "ns": s.to_dict(),
                           **({"ended_by": ended[(a, b)]} if (a, b) in ended else {})}
                          for (a, b), s in self.ns.items()],
                "summary": self.summary(),
                **({"stopping": dict(self.stopping)} if self.stopping else {})}

    def warnings(self) -> list[str]:
        return [w for (a, b), s in self.ns.items()
                if (w := s.warning(f"core-to-core CPUs {a}-{b}", limit=0.10))]

    def table(self) -> str:
        return matrix_text(self.to_dict())


def c2c_matrix(cpus=None, *, pairs=None, node: int | None = None, rounds: int = 20000,
               samples: int | None = None, target_ci: float | None = None,
               budget: float | None = None, topology: Topology | None = None,
               progress: bool | None = None) -> C2CMatrix:
    """One-way latency for every pair of ``cpus`` (default: every usable CPU), or only for
    ``pairs``, a list of (CPU, CPU) (the quick check's representatives): ``samples`` samples
    of ``rounds`` round trips a pair (default 5), or with ``target_ci`` or ``budget``
    (seconds for the whole matrix, shared equally) the stopping rule, ``samples`` a pair at
    most (default RULE_MAX_SAMPLES)."""
    topo = C.topology(topology)
    if pairs is not None:
        pairs = sorted({(min(a, b), max(a, b)) for a, b in pairs})
        if not pairs or any(a == b for a, b in pairs):
            raise UsageError(f"pairs must be pairs of two different CPUs; got {pairs[:8]}")
        cpus = sorted({c for p in pairs for c in p})
    cpus = placement.check_cpus(topo.usable_cpus if cpus is None else cpus, topo)
    if len(cpus) < 2:
        raise UsageError(f"core-to-core latency needs two CPUs or more; usable CPUs: "
                         f"{format_list(topo.usable_cpus)}")
    if samples is None:
        samples = 5 if target_ci is None and budget is None else C.RULE_MAX_SAMPLES
    if not isinstance(rounds, int) or rounds < 1 or not isinstance(samples, int) or samples < 1:
        raise UsageError("rounds and samples must be whole numbers >= 1")
    rule = C.stopping_rule(target_ci, budget, samples)
    if node is None:
        node = topo.node_of(cpus[0]) if topo.node_of(cpus[0]) in topo.usable_mems \
            else topo.usable_mems[0]
    (node,) = C.mem_nodes(topo, [node])
    clk = clock.get()
    pairs = pairs if pairs is not None else list(itertools.combinations(cpus, 2))
    bar = C.Progress(len(pairs), "core-to-core", progress)
    out, ended = {}, {}
    try:
        with placement.alloc(4096, node=node, page="4k", topology=topo) as line:
            for a, b in pairs:
                _core.c2c_run(a, b, line.address, max(rounds // 10, 1))  # warm-up

                def one(a=a, b=b):
                    return clk.to_ns(max(_core.c2c_run(a, b, line.address, rounds)
                                         - clk.overhead_ticks, 0)) / rounds / 2
                if rule is None:
                    ns, why = [one() for _ in range(samples)], ""
                else:
                    ns, ended[(a, b)] = C.sample(one, rule.share(1 / len(pairs)))
                    why = f" ({ended[(a, b)]}, {len(ns)} samples)"
                out[(a, b)] = summarize(ns, "ns")
                bar.step(f"CPUs {a} and {b}: {out[(a, b)].median:.1f} ns{why}")
    finally:
        bar.close()
    return C2CMatrix(cpus=tuple(cpus), node=node, rounds=rounds, ns=out,
                     ended_by=ended or None, stopping=rule.to_dict() if rule else None)


# ------------------------------------------------------------------------ the result kind

def matrix_text(r: dict) -> str:
    """The core-to-core matrix (a c2c document's result, or the quick check's part)."""
    cpus = r["cpus"]
    ns = {(p["a"], p["b"]): p["ns"]["median"] for p in r["pairs"]}
    lines = [f"core-to-core latency, ns one way (line on node {r['node']})",
             "CPU".rjust(5) + "".join(f"{c:>8}" for c in cpus)]
    for a in cpus:
        row = f"{a:>5}"
        for b in cpus:
            key = (min(a, b), max(a, b))
            row += f"{ns[key]:8.1f}" if key in ns and a != b else f"{'-':>8}"
        lines.append(row)
    lines.append(_summary(r["summary"]))
    if (why := C.ended_text(r["pairs"], r.get("stopping"), "pair")):
        lines.append(why)
    return "\n".join(lines)


def _summary(s: dict) -> str:
    """The matrix in one sentence: its fastest pair, median and slowest pair."""
    def pair(p):
        return f"CPUs {p[0]} and {p[1]}"
    return (f"min {s['min']['ns']:.1f} ns ({pair(s['min']['pair'])}), median "
            f"{s['median']:.1f} ns, max {s['max']['ns']:.1f} ns ({pair(s['max']['pair'])}) "
            f"over {plural(s['pairs'], 'pair')}")


def matrix_figures(r: dict) -> list[Figure]:
    return [Figure.of(f"core-to-core CPUs {p['a']}-{p['b']}", p["ns"], False) for p in r["pairs"]]


def matrix_rows(r: dict) -> tuple[list, list]:
    return (["cpu_a", "cpu_b", "median_ns", "min_ns", "max_ns", "cv"],
            [[p["a"], p["b"], p["ns"]["median"], p["ns"]["min"], p["ns"]["max"], p["ns"]["cv"]]
             for p in r["pairs"]])


def matrix_html(r: dict) -> str:
    s = r.get("summary") or {}
    out = []
    if s:
        out.append(f"<p>{H.e(_summary(s))}; the line lived on memory node "
                   f"{H.e(r.get('node'))}</p>")
    cpus = r.get("cpus") or []
    ns = {}
    for p in r.get("pairs") or []:
        ns[(p["a"], p["b"])] = ns[(p["b"], p["a"])] = p["ns"]["median"]
    table = H.table(["CPU"] + [str(c) for c in cpus],
                   [[str(a)] + [f"{ns[(a, b)]:.1f}" if (a, b) in ns and a != b else "-"
                                for b in cpus] for a in cpus],
                   caption="core-to-core latency, ns one way (median)")
    out.append(table if len(cpus) <= 16 else
               f"<details><summary>the full {len(cpus)} x {len(cpus)} matrix</summary>{table}</details>")
    return "\n".join(out)


def matrix_plot(doc, r):
    pairs = r.get("pairs") or []
    if not pairs:
        return None
    cpus = list(r["cpus"])
    ns = {}
    for p in pairs:
        ns[(p["a"], p["b"])] = ns[(p["b"], p["a"])] = p["ns"]["median"]
    values = [[ns.get((a, b)) if a != b else None for b in cpus] for a in cpus]
    s = r.get("summary") or {}
    extra = _summary(s) if s else ""
    labels = [str(c) for c in cpus]
    return P.heatmap(doc, f"core-to-core latency, ns one way (line on memory node {r.get('node')})",
                    labels, labels, values, unit="ns one way", fmt=".1f", cmap="YlOrRd",
                    xlabel="CPU", ylabel="CPU", extra=extra, diagonal_blank=True)


register(Kind(
    "c2c", "core-to-core latency",
    text=lambda doc: matrix_text(doc["result"]),
    html=lambda doc: matrix_html(doc["result"]),
    figures=lambda doc: matrix_figures(doc["result"]),
    rows=lambda doc: matrix_rows(doc["result"]),
    plots=lambda doc: [("matrix", lambda: matrix_plot(doc, doc["result"]))]))
