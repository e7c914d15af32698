"""`numaprobe infer` and `numaprobe sweep`: layouts compared on one model, with intervals,
verdicts and the reasons.

Layouts run in rounds, interleaved (A B A B ...), so slow drift of the machine hits all of them
alike. Throughput intervals come from the window's tenths (and rounds); latency intervals from
bootstrapping the per-inference latencies."""
from __future__ import annotations

import sys
import textwrap
import time

import numpy as np

from .. import __version__, stats
from ..topology import Topology, read as read_topology
from . import driver
from .diagnose import diagnose
from .layout import Layout, parse_layout

RAW_LIMIT = 20000  # per-inference latencies kept in the document up to this many per layout


class _Bar:
    """Progress on stderr (a terminal only): what runs and about how long is left."""

    def __init__(self, enabled: bool | None, total_s: float):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.total, self.t0 = total_s, time.monotonic()

    def __call__(self, what: str, frac=None):
        if not self.enabled:
            return
        left = max(0.0, self.total - (time.monotonic() - self.t0))
        print(f"\r{what} (about {left:.0f} s left)"[:79].ljust(79), end="", file=sys.stderr,
              flush=True)

    def close(self):
        if self.enabled:
            print("\r" + " " * 79 + "\r", end="", file=sys.stderr, flush=True)


def _combine(runs: list[driver.LayoutRun]) -> driver.LayoutRun:
    """One run from several rounds of the same layout (instances appended, windows kept)."""
    first = runs[0]
    merged = driver.LayoutRun(layout=first.layout, mode=first.mode, duration=first.duration,
                              instances=[i for r in runs for i in r.instances],
                              machine=first.machine, noise=first.noise,
                              failures=[f for r in runs for f in r.failures])
    merged.rounds = runs  # type: ignore[attr-defined]
    return merged


def _throughput_samples(run) -> np.ndarray:
    rounds = getattr(run, "rounds", [run])
    return np.concatenate([r.throughput_bins() for r in rounds]) if rounds else np.array([])


def _per_inference(i: driver.InstanceRun) -> dict:
    """CPU time, page faults, context switches and migrations per inference."""
    if not i.count:
        return {}
    return {k: (v / i.count if v is not None else None) for k, v in i.counters.items()}


def summarize_run(run: driver.LayoutRun, topo: Topology, base: dict | None = None) -> dict:
    rounds = getattr(run, "rounds", [run])
    thr = float(np.mean([r.throughput for r in rounds])) if rounds else 0.0
    bins = _throughput_samples(run)
    lo, hi = stats.bootstrap_ci(bins, lambda s: float(np.mean(s))) if bins.size else (thr, thr)
    lat = run.latencies
    cpus = sorted({c for i in run.layout.instances for c in i.cpus})
    count = sum(i.count for i in run.instances)
    doc = {
        "layout": run.layout.to_dict(),
        "description": run.layout.describe(),
        "throughput": {"per_s": thr, "ci": [lo, hi], "bins": bins.tolist()},
        "latency": driver.latency_summary(lat),
        "cpus": len(cpus),
        "throughput_per_cpu": thr / len(cpus) if cpus else 0.0,
        "cpu_s_per_inference": run.cpu_s / count if count else None,
        "instances": [{"index": i.index, "cpus": i.instance["cpus"], "count": i.count,
                       "throughput": i.throughput, "partial": i.partial,
                       "p50_ms": float(np.median(i.latency_ns)) / 1e6 if i.count else None,
                       "memory_bytes_per_node": i.memory, "counters": i.counters,
                       "per_inference": _per_inference(i),
                       "cpu_utilisation": i.counters["cpu_s"] / (i.window_ns / 1e9)
                       if i.window_ns else None,
                       "threads": i.threads, "busy_threads": i.busy_threads}
                      for i in run.instances],
        "telemetry": run.machine,
        "noise": run.noise.to_dict() if run.noise else None,
        "diagnoses": diagnose(run, topo),
        "partial": run.partial, "failures": run.failures,
    }
    if lat.size <= RAW_LIMIT:
        doc["latency_ms"] = (lat / 1e6).round(4).tolist()
    if base is not None:
        doc["vs_first"] = compare(base, doc, run, run.mode)
    return doc


def compare(base_doc: dict, doc: dict, run, mode: str) -> dict:
    """This layout against the first: throughput and p50 ratios with intervals, and a verdict
    on what the mode is about (throughput for closed loop, latency otherwise)."""
    out = {}
    a, b = np.asarray(base_doc["throughput"]["bins"]), np.asarray(doc["throughput"]["bins"])
    if a.size and b.size and a.mean() > 0:
        out["throughput_ratio"] = list(stats.ratio_ci(a, b, lambda s: float(np.mean(s)), boots=300))
    la, lb = base_doc.get("_lat"), run.latencies
    if la is not None and la.size and lb.size:
        out["p50_ratio"] = list(stats.ratio_ci(la, lb, stats.Percentile(50), boots=200))
    if mode == "closed" and "throughput_ratio" in out:
        out["verdict"] = stats.verdict(out["throughput_ratio"][1], out["throughput_ratio"][2], True)
    elif "p50_ratio" in out:
        out["verdict"] = stats.verdict(out["p50_ratio"][1], out["p50_ratio"][2], False)
    return out


def run_infer(model_ref, layouts: list[Layout], *, mode="closed", duration=10.0, rounds=1,
              warmup=5, dims=None, rate=None, seed=0, topology: Topology | None = None,
              progress: bool | None = None) -> dict:
    """Runs every layout ``rounds`` times, interleaved, and returns the result document.
    On a failure or Ctrl-C the exception carries ``document`` with what was measured."""
    topo = topology if topology is not None else read_topology()
    per_run = duration * max((len(l.instances) if mode == "single" else 1) for l in layouts)
    bar = _Bar(progress, rounds * sum(per_run + 3 for _ in layouts))
    runs: dict[int, list] = {k: [] for k in range(len(layouts))}
    error = None
    try:
        for r in range(rounds):
            for k, layout in enumerate(layouts):
                bar(f"round {r + 1}/{rounds}: {layout.name}")
                runs[k].append(driver.run_layout(
                    model_ref.path, layout, mode=mode, duration=duration, warmup=warmup,
                    dims=dims, rate=rate, seed=seed, topology=topo,
                    progress=lambda what, frac, r=r: bar(f"round {r + 1}/{rounds}: {what}")))
    except (driver.WorkerFailed, driver.Interrupted) as e:
        error = e
        if e.partial is not None and e.partial.instances:
            runs[[k for k, l in enumerate(layouts) if l is e.partial.layout][0]].append(e.partial)
    finally:
        bar.close()
    doc = document(model_ref, layouts, runs, topo, mode=mode, duration=duration, rounds=rounds,
                   dims=dims, rate=rate)
    if error is not None:
        doc["partial"] = True
        doc["error"] = str(error) if isinstance(error, driver.WorkerFailed) else "interrupted (Ctrl-C)"
        error.document = doc
        raise error
    return doc


def document(model_ref, layouts, runs, topo, **asked) -> dict:
    from .models import describe
    out, base, warnings = [], None, []
    for k, layout in enumerate(layouts):
        if not runs[k]:
            continue
        run = _combine(runs[k])
        d = summarize_run(run, topo, base)
        if base is None:
            base = dict(d, _lat=run.latencies)
        out.append(d)
        warnings += [f"{layout.name}: {w}" for w in d["latency"]["warnings"]]
    if len(topo.nodes) == 1:
        warnings.append("one NUMA node: memory placement cannot differ between layouts here")
    return {"kind": "infer", "numaprobe": __version__, "model": describe(model_ref),
            "asked": asked, "layouts": out, "warnings": warnings,
            "partial": any(d["partial"] for d in out)}


def table(doc: dict) -> str:
    """Two lines per layout (80 columns): throughput with its interval, CPU time per
    inference and the comparison with the first layout; then p50/p90/p99 with intervals.
    Then each layout's diagnoses."""
    lines = [f"model {doc['model']['name']} ({doc['asked']['mode']} loop, "
             f"{doc['asked']['duration']:g} s x {doc['asked']['rounds']} round(s)); "
             "95 % intervals; n.s.: no significant difference",
             f"{'layout':<24}{'inferences/s':>13} {'interval':>15} {'CPU ms/inf':>11}  vs first"]
    for d in doc["layouts"]:
        t, lat = d["throughput"], d["latency"]
        vs = d.get("vs_first", {})
        ratio = vs.get("throughput_ratio") if doc["asked"]["mode"] == "closed" else vs.get("p50_ratio")
        verdict = vs.get("verdict", "").replace("no significant difference", "n.s.")
        vs_text = f"{ratio[0]:.2f}x {verdict}" if ratio else "(baseline)"
        cpu = f"{d['cpu_s_per_inference'] * 1e3:.1f}" if d["cpu_s_per_inference"] else "-"
        ci = f"[{t['ci'][0]:.1f}, {t['ci'][1]:.1f}]"
        lines.append(f"{d['layout']['name'][:23]:<24}{t['per_s']:13.1f} {ci:>15} {cpu:>11}  {vs_text}")
        pct = []
        for key in ("p50", "p90", "p99"):
            if lat.get(key):
                pct.append(f"{key} {lat[key]['ms']:.3g} ({lat[key]['ci'][0]:.3g}-{lat[key]['ci'][1]:.3g})")
        lines.append("    ms: " + "  ".join(pct))
    for d in doc["layouts"]:
        lines += textwrap.wrap(f"{d['layout']['name']}: {d['description'].split(': ', 1)[1]}",
                               79, subsequent_indent="    ")
        for x in d["diagnoses"]:
            lines += textwrap.wrap(f"- {x}", 79, initial_indent="  ", subsequent_indent="    ")
        if d["failures"]:
            lines += textwrap.wrap(f"! {'; '.join(d['failures'])}", 79, initial_indent="  ",
                                   subsequent_indent="    ")
    return "\n".join(lines)


# --------------------------------------------------------------------------------- sweep

def sweep_layouts(topo: Topology) -> list[Layout]:
    """Every split of the usable CPUs into N instances x T threads with N x T = CPUs, and the
    single-thread instance (1x1) as the reference for scaling efficiency."""
    n = len(topo.usable_cpus)
    specs = ["1x1"] + [f"{i}x{n // i}" for i in range(1, n + 1) if n % i == 0 and not (i == 1 and n == 1)]
    out = []
    for s in dict.fromkeys(specs):
        try:
            out.append(parse_layout(s, topo))
        except ValueError:
            continue  # a split that does not fit within nodes
    return out


def analyse_sweep(doc: dict, p99_max: float | None = None) -> dict:
    """Where throughput stops rising, the best layout for throughput and for latency."""
    rows = doc["layouts"]
    one = next((d for d in rows if d["layout"]["name"] == "1x1"), None)
    curve = []
    for d in rows:
        cpus = d["cpus"]
        eff = d["throughput"]["per_s"] / (cpus * one["throughput"]["per_s"]) if one and cpus else None
        curve.append({"layout": d["layout"]["name"], "instances": len(d["layout"]["instances"]),
                      "cpus": cpus, "throughput": d["throughput"]["per_s"],
                      "p50_ms": d["latency"]["p50"]["ms"] if d["latency"].get("p50") else None,
                      "p99_ms": d["latency"]["p99"]["ms"] if d["latency"].get("p99") else None,
                      "scaling_efficiency": eff})
    full = [c for c in curve if c["layout"] != "1x1" or len(curve) == 1]
    full.sort(key=lambda c: c["instances"])
    plateau = None
    for prev, cur in zip(full, full[1:]):
        if cur["throughput"] < 1.05 * prev["throughput"]:
            plateau = prev["layout"]
            break
    best_thr = max(full, key=lambda c: c["throughput"])
    ok = [c for c in full if p99_max is None or (c["p99_ms"] is not None and c["p99_ms"] <= p99_max)]
    best_lat = min(ok, key=lambda c: c["p50_ms"] if c["p50_ms"] is not None else float("inf")) if ok else None
    return {"curve": curve, "stops_rising_after": plateau, "best_throughput": best_thr["layout"],
            "best_latency": best_lat["layout"] if best_lat else None, "p99_max_ms": p99_max}
