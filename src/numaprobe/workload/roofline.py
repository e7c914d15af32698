"""What bounds a layout: its achieved rates against the machine's ceilings (a roofline).

For each layout, per instance: the operations per second it achieved (the model's cost,
cost.py, x its throughput) against the compute ceiling of its CPUs for the precision its
engine computed in (numaprobe flops: the fastest kernel of that precision this CPU has, one
thread per core of the instance, all at once), and the weight bytes per second it read
against the read bandwidth of the level its weights live in: the DRAM of its memory node
when they do not stay in the last-level cache, that cache when they do (the bandwidth kernel
at the weights' size). Whether they stay is measured (probes/_latency.fits_in_cache: a chase
over the weights of every instance sharing that cache against one from DRAM), not read off
the cache size the topology reports. A share of a ceiling at or above ``BOUND_AT`` names
the bound; below it on both, the time goes elsewhere (synchronisation, small ops, the
framework), and the words say so.
"""
from __future__ import annotations

from ..topology import Topology, format_list, human_bytes, parse_list
from ..words import ids

__all__ = ["BOUND_AT", "KERNELS_FOR", "ceilings", "verdict", "bound", "work_of"]

BOUND_AT = 0.5
# The compute kernels for each precision, fastest first (probes/_flops.py).
KERNELS_FOR = {"f32": ("f32_avx512", "f32_avx2", "f32_sve", "f32_neon", "f32_scalar"),
               "bf16": ("bf16_amx", "bf16_avx512"),
               "int8": ("int8_amx", "int8_avx512", "int8_avxvnni")}
_NAMES = {"f32_avx512": "AVX-512 fp32", "f32_avx2": "AVX2 fp32", "f32_neon": "NEON fp32",
          "f32_sve": "SVE fp32",
          "f32_scalar": "scalar fp32", "bf16_amx": "AMX bf16", "bf16_avx512": "AVX512-BF16",
          "int8_amx": "AMX int8", "int8_avx512": "AVX512-VNNI int8",
          "int8_avxvnni": "AVX-VNNI int8"}


def _sharing(layout: dict, cpu: int, topo: Topology) -> int:
    """How many of the layout's instances run on the last-level cache that ``cpu`` uses
    (each holds its own copy of the weights there)."""
    from ..probes import _common as C
    group = next((set(g) for g, _ in C.llc_groups(topo) if cpu in g), {cpu})
    return max(1, sum(1 for i in layout["instances"] if parse_list(i["cpus"])
                      and parse_list(i["cpus"])[0] in group))


def ceilings(layout: dict, precision: str, weight_bytes: float, topo: Topology,
             cache: dict) -> dict:
    """The ceilings for a layout's first instance (layouts are symmetric), measured once per
    CPU set, node and precision (``cache``)."""
    from .. import _core
    from ..probes import _bandwidth, _flops, _latency
    inst = layout["instances"][0]
    cpus = list(parse_list(inst["cpus"]))
    node = (parse_list(inst["nodes"])[0] if inst.get("nodes") and inst.get("policy")
            else topo.node_of(cpus[0]))
    key = (tuple(cpus), node, precision)
    if key in cache:
        return cache[key]
    out: dict = {"cpus": format_list(cpus), "node": node}
    wanted = KERNELS_FOR.get(precision, ())
    kernel = next((k for k in wanted if _core.fl_supported(k) is None), None)
    if kernel is None:  # f16, or a CPU without that precision's units: the f32 ceiling
        kernel = next(k for k in KERNELS_FOR["f32"] if _core.fl_supported(k) is None)
        out["compute_note"] = (f"no {precision} kernel runs on this CPU: the fp32 ceiling "
                               "stands in")
    fl = _flops.flops([kernel], cpus=cpus, reps=3, pass_s=0.01, topology=topo,
                      progress=False)
    r = fl.results[kernel]
    out["compute"] = {"kernel": kernel, "name": _NAMES[kernel],
                      "ops_per_s": (r.all or r.one).median, "cores": r.cores}
    team = list(fl.cpus) or cpus[:1]
    shared = _sharing(layout, cpus[0], topo)
    total = weight_bytes * shared
    key2 = ("fits", cpus[0], node, int(total))
    if key2 not in cache:
        cache[key2] = _latency.fits_in_cache(int(total), cpus[0], node, topo)
    fit = cache[key2]
    whose = (f"the weights ({human_bytes(weight_bytes)}"
             + (f" x {shared} instances sharing the cache" if shared > 1 else "") + ")")
    if fit["fits"]:
        size = max(64 << 10, int(weight_bytes / len(team)))
        level, why = "the last-level cache", f"{whose} stay in cache: {fit['words']}"
    else:
        size = None
        level, why = f"node {node}'s DRAM", f"{whose} do not stay in cache: {fit['words']}"
    bw = _bandwidth.run(team, [node] * len(team), "read", size=size, reps=3, topology=topo)
    out["memory"] = {"level": level, "bytes_per_s": bw.gbs.median * 1e9,
                     "threads": len(team), "why": why, "fit": fit}
    cache[key] = out
    return out


def verdict(d: dict, ceiling: dict) -> dict:
    """A layout's bound from its achieved rates (d["achieved"], for all its instances) and
    its instance's ceilings: the share of each, and the words."""
    n = len(d["layout"]["instances"]) or 1
    a = d.get("achieved")
    if not a:
        return {"bound": None, "words": "no achieved rate (not a closed loop, or the model "
                                        "could not be counted): no bound named"}
    ops = a["ops_per_s"] / n
    mem = a["weight_bytes_per_s"] / n
    c, m = ceiling["compute"], ceiling["memory"]
    fc, fm = ops / c["ops_per_s"], mem / m["bytes_per_s"]
    where = ids("CPU", parse_list(ceiling["cpus"]))
    if max(fc, fm) >= BOUND_AT and fc >= fm:
        bound, words = "compute", (f"compute-bound: {100 * fc:.0f} % of the {c['name']} peak "
                                   f"of {where} ({ops / 1e9:.3g} of {c['ops_per_s'] / 1e9:.3g} "
                                   f"G op/s)")
    elif max(fc, fm) >= BOUND_AT:
        bound, words = "memory", (f"memory-bound: weights stream at {100 * fm:.0f} % of the "
                                  f"read bandwidth of {m['level']} from {where} "
                                  f"({mem / 1e9:.3g} of {m['bytes_per_s'] / 1e9:.3g} GB/s)")
    else:
        bound, words = "neither", (f"neither: {100 * fc:.0f} % of compute ({c['name']}), "
                                   f"{100 * fm:.0f} % of bandwidth ({m['level']}); time goes "
                                   "to overhead (synchronisation, small ops, the framework)")
    if bound == "memory" and m.get("why"):
        words += f"; {m['why']}"
    if ceiling.get("compute_note"):
        words += f"; {ceiling['compute_note']}"
    return {"bound": bound, "compute_share": fc, "memory_share": fm,
            "ceilings": ceiling, "words": words}


def work_of(doc: dict, entry: dict) -> dict | None:
    """The model's cost per inference at a layout entry's batch (infer's document: ``cost``
    at the run's dimensions, ``cost_by_batch`` for layouts with a batch of their own)."""
    return (doc.get("cost_by_batch") or {}).get(str(entry.get("batch"))) or doc.get("cost")


def bound(entry: dict, work: dict | None, topo: Topology, cache: dict) -> dict:
    """A layout entry's roofline verdict (``verdict``) against ceilings measured now on its
    CPUs, once per CPU set and precision (``cache``), or {"bound": None, "words": why not}."""
    from ..errors import UsageError
    from .engines import DEFAULT_PRECISION
    if work is None:
        return {"bound": None, "words": "the model's cost is not known: no bound"}
    ran = (entry.get("settings") or [{}])[0].get("precision") or DEFAULT_PRECISION
    try:
        ceiling = ceilings(entry["layout"], ran, work["weight_bytes"], topo, cache)
    except (UsageError, OSError) as e:
        return {"bound": None, "words": f"the ceilings could not be measured: {e}"}
    return verdict(entry, ceiling)
