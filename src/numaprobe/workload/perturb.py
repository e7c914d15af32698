"""Perturbation, the counter-free test of a bound (``infer --perturb``).

A layout runs again while numaprobe's own load (probes/_loaded.py's Background) runs on CPUs
the layout leaves free: memory traffic at a light and a full rate from all of them, and a
chase over the last-level cache from the first. What each load costs the layout's throughput says what the layout depends
on: a layout that streams its weights from DRAM loses much to traffic, a compute-bound one
little; one whose weights live in the last-level cache loses to the chase.

The evidence is rounds, as everywhere: each round runs every level (no load, then each
load) with fresh workers, in an order rotated round by round, and each load is compared with
no load over the rounds paired by number (stats.paired_ratio; Holm over the loads). The cost
of traffic is also given per GB/s it injected, so machines and layouts compare.

Where the load runs: free usable CPUs of the layout's memory node; where that node has none,
free CPUs of another node that read the layout's node (the words say so: that traffic also
crosses the interconnect). A layout that leaves no CPU free is "not measured": a load
time-sliced with the workload would measure CPU contention, not memory.
"""
from __future__ import annotations

import numpy as np

from .. import stats
from ..probes._loaded import Background
from ..topology import Topology, parse_list
from ..words import ids
from . import driver

__all__ = ["LOADS", "ROUNDS", "PERTURB_S", "free_cpus", "perturb", "summarize", "words"]

# (name, kind, delay): the loads, lightest first. A delay is spins between 512-byte blocks.
LOADS = (("traffic, light", "traffic", 40), ("traffic, full", "traffic", 0),
         ("cache", "cache", 0))
ROUNDS = 6          # rounds of every level (measured: 5 rounds of 1 s could detect only
                    # 27-47 % changes of the encoder at 20 inferences/s on this 2-core VM)
PERTURB_S = 2.0     # seconds each level runs in a round, at most infer's --duration
SENSITIVE = 0.05    # a load that costs 5 % or more, significantly, is worth a word


def free_cpus(layout: dict, topo: Topology) -> tuple[list[int], int, str | None]:
    """(CPUs for the load, the memory node it reads, a note) for a layout's document entry:
    the usable CPUs of its first instance's memory node that no instance uses, else those of
    another node (the note says so); ([], node, why) when none is free."""
    used: set[int] = set()
    for inst in layout["instances"]:
        used.update(parse_list(inst["cpus"]))
    first = layout["instances"][0]
    cpus = list(parse_list(first["cpus"]))
    node = (parse_list(first["nodes"])[0] if first.get("nodes") and first.get("policy")
            else topo.node_of(cpus[0]))
    here = [c for c in topo.cpus_of(node, usable=True) if c not in used] \
        if node in topo.cpu_nodes else []
    if here:
        return here, node, None
    away = [c for c in topo.usable_cpus if c not in used]
    if away:
        where = sorted({topo.node_of(c) for c in away})
        return away, node, (f"node {node} has no free CPU: the load runs on node(s) "
                            f"{', '.join(map(str, where))} and reads node {node}'s memory "
                            "across the interconnect")
    return [], node, (f"no free CPU: not measured (the layout uses all {len(used)} usable "
                      "CPUs, and a load sharing them would measure CPU contention, not "
                      "memory)")


def perturb(model: str, layout, topo: Topology, *, duration: float, warmup: int, dims,
            seed: int, variants, inputs, rounds: int = ROUNDS, progress=None) -> dict:
    """Runs ``layout`` (a Layout) under no load and under each of LOADS, ``rounds`` times
    interleaved, and returns summarize()'s dict."""
    cpus, node, note = free_cpus(layout.to_dict(), topo)
    if not cpus:
        return {"measured": False, "why": note, "node": node}
    levels = [("none", None, 0), *LOADS]
    runs: dict[str, list] = {name: [] for name, _, _ in levels}
    for r in range(rounds):
        for j in range(len(levels)):
            name, kind, delay = levels[(r + j) % len(levels)]
            if progress:
                progress(f"round {r + 1}/{rounds}: {name}")
            def go():
                return driver.run_layout(model, layout, mode="closed", duration=duration,
                                         warmup=warmup, dims=dims, seed=seed, topology=topo,
                                         check_accuracy=False, variants=variants,
                                         inputs=inputs)
            if kind is None:
                run, gbs = go(), 0.0
            else:
                # Traffic from every free CPU; the cache's chase from one (a chain per
                # CPU would cost a last-level cache of memory each).
                on = cpus if kind == "traffic" else cpus[:1]
                with Background(on, node, kind=kind, delay=delay, topology=topo) as load:
                    run = go()
                gbs = load.gbs
            runs[name].append({"throughput": run.throughput, "gbs": gbs})
    return summarize(runs, cpus=cpus, node=node, note=note)


def summarize(runs: dict, *, cpus, node: int, note: str | None) -> dict:
    """Each load against no load: the paired ratio of throughput over the rounds, Holm over
    the loads, the verdict, the GB/s the load took, and for traffic the share of throughput
    lost per GB/s injected. ``runs``: level name -> [{"throughput", "gbs"} per round], "none"
    the unloaded level; a round with no throughput on either side stays out of its pair."""
    base = runs["none"]
    names = [n for n in runs if n != "none"]
    family = stats.paired_family(
        [([x["throughput"] for x in base], [x["throughput"] for x in runs[n]]) for n in names],
        higher_is_better=True)
    loads = []
    for n, (c, v) in zip(names, family):
        gbs = float(np.median([x["gbs"] for x in runs[n]])) if runs[n] else 0.0
        kind = next((k for name, k, _ in LOADS if name == n), "traffic")
        finite = [x if np.isfinite(x) else None for x in (c.ratio, *c.ci)]
        d = {"load": n, "kind": kind, "gbs": gbs, "ratio": finite, "verdict": v.word,
             "detail": v.detail, "comparison": c.to_dict(),
             "rounds": [x["throughput"] for x in runs[n]]}
        if kind == "traffic" and gbs > 0 and finite[0] is not None:
            # lost per GB/s: (1 - ratio) / GB/s, its interval from the ratio's
            d["loss_per_gbs"] = [(1 - x) / gbs if x is not None else None
                                 for x in (finite[0], finite[2], finite[1])]
        loads.append(d)
    return {"measured": True, "cpus": list(cpus), "node": node, "note": note,
            "rounds": len(base), "none": [x["throughput"] for x in base], "loads": loads,
            "words": words(loads, cpus, node, note)}


def _sensitive(d: dict) -> bool:
    r = d["ratio"][0]
    return d["verdict"] == "slower" and r is not None and 1 - r >= SENSITIVE


def words(loads: list[dict], cpus, node: int, note: str | None) -> str:
    """What the loads did, and what that says about the bound, in one sentence or two."""
    by = {d["load"]: d for d in loads}
    parts = []
    for d in loads:
        r = d["ratio"]
        if d["verdict"] == "slower":
            what = (f"{100 * (1 - r[0]):.0f} % [{100 * (1 - r[2]):.0f}, "
                    f"{100 * (1 - r[1]):.0f}] of the throughput lost")
        elif d["verdict"] == "faster":
            what = f"throughput rose {100 * (r[0] - 1):.0f} % (implausible: rerun)"
            if d.get("loss_per_gbs"):
                what += f", {100 * d['loss_per_gbs'][0]:.2g} % per GB/s"
        elif d["verdict"] == stats.NO_CHANGE:
            what = f"no significant change ({d['detail']})"
        else:
            what = f"{d['verdict']} ({d['detail']})"
        rate = f" at {d['gbs']:.1f} GB/s" if d["kind"] == "traffic" else ""
        parts.append(f"{d['load']}{rate}: {what}")
    traffic = by.get("traffic, full")
    cache = by.get("cache")
    if traffic and _sensitive(traffic):
        meaning = "sensitive to memory bandwidth: it streams from DRAM"
    elif cache and _sensitive(cache):
        meaning = ("sensitive to the last-level cache, not to memory traffic: its working "
                   "set lives in that cache")
    elif all(d["verdict"] == stats.NO_CHANGE for d in loads):
        meaning = ("insensitive to memory traffic and cache pressure: bound by compute or by "
                   "overhead")
    else:
        meaning = "no clear dependence"
    src = (f"load on {ids('CPU', cpus)}" + (f" (the chase on CPU {cpus[0]})" if len(cpus) > 1
                                             and cache else "") + f" reading node {node}")
    return f"{meaning} ({src}; " + "; ".join(parts) + ")" + (f"; {note}" if note else "")
