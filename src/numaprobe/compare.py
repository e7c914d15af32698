"""`numaprobe compare A.json B.json [C.json ...]`: matched figures side by side, the change,
the ratio with a confidence interval and a verdict.

Each later document is compared with the first. A figure is matched by name (e.g. "latency
node 0 -> node 1", "infer naive p50"); its interval comes from bootstrapping what both
documents keep: each run's median where the probe ran with --repeat (3 runs or more on both
sides), so the interval covers the drift between runs; else the raw samples of the one run,
which cover only the noise within it (the comparison then says so); the per-tenth throughput
and the latencies of inference runs, whose layouts ran in interleaved rounds. The verdict is
"faster" or "slower" only when the interval excludes 1 *and* the change is larger than the
smallest effect worth reporting (2 % by default): smaller differences are within what a
re-run moves on an ordinary machine.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import stats
from .results import fingerprint_differences

MIN_EFFECT = 0.02


@dataclass(frozen=True)
class Figure:
    name: str
    unit: str
    higher_is_better: bool
    value: float                   # the statistic shown (median, percentile, mean)
    samples: tuple = ()            # raw samples for the interval, where kept
    stat: str = "median"           # how value comes from the samples: median, mean, pNN
    runs: tuple = ()               # each run's median (probes run with --repeat)


MIN_RUNS = 3  # runs on each side before the interval resamples runs instead of samples


def _summary(name, s: dict, higher: bool) -> Figure:
    return Figure(name, s["unit"], higher, s["median"], tuple(s.get("samples", ())),
                  runs=tuple(s.get("runs", ())))


def figures(doc: dict) -> dict[str, Figure]:
    """The comparable figures of a document, by name."""
    kind, r = doc["kind"], doc["result"]
    out: list[Figure] = []
    if kind in ("latency", "quick"):
        lat = r if kind == "latency" else r["latency"]
        out += [_summary(f"latency node {c['cpu_node']} -> node {c['mem_node']}", c["ns"], False)
                for c in lat["cells"]]
    if kind in ("bandwidth", "quick"):
        mats = [r] if kind == "bandwidth" else list(r["bandwidth"].values())
        out += [_summary(f"{m['kernel']} bandwidth node {c['cpu_node']} -> node {c['mem_node']}",
                         c["gbs"], True) for m in mats for c in m["cells"]]
    if kind in ("c2c", "quick") and (kind == "c2c" or r.get("c2c")):
        c2c = r if kind == "c2c" else r["c2c"]
        out += [_summary(f"core-to-core CPUs {p['a']}-{p['b']}", p["ns"], False) for p in c2c["pairs"]]
    if kind == "latency-sweep":
        out += [_summary(f"latency at {p['size']} bytes", p["ns"], False) for p in r["points"]]
    if kind == "loaded-latency":
        out += [_summary(f"loaded latency at delay {p['delay']}", p["latency_ns"], False)
                for p in r["points"]]
    if kind == "bandwidth-threads":
        out += [_summary(f"{x['kernel']} bandwidth with {len(x['cpus'])} thread(s)", x["gbs"], True)
                for x in r["runs"]]
    if kind == "bandwidth-peak":
        out.append(_summary(f"aggregate {r['kernel']} bandwidth", r["gbs"], True))
    if kind == "clock":
        out.append(Figure("clock read overhead", "ns", False, r["overhead_ns"]))
    if kind in ("infer", "sweep"):
        for d in r["layouts"]:
            name = d["layout"]["name"]
            t = d["throughput"]
            out.append(Figure(f"{name} throughput", "inf/s", True, t["per_s"], tuple(t["bins"]), "mean"))
            raw = tuple(d.get("latency_ms", ()))
            for p in ("p50", "p90", "p99"):
                if d["latency"].get(p):
                    out.append(Figure(f"{name} {p} latency", "ms", False, d["latency"][p]["ms"],
                                      raw, p))
    if not out:
        raise ValueError(f"a {kind} document has no measured figures to compare")
    return {f.name: f for f in out}


def _stat(name: str):
    if name == "median":
        return lambda s: float(np.median(s))
    if name == "mean":
        return lambda s: float(np.mean(s))
    return stats.Percentile(float(name[1:]))


def compare_figure(a: Figure, b: Figure, min_effect: float = MIN_EFFECT) -> dict:
    ratio = b.value / a.value if a.value else float("nan")
    lo = hi = basis = None
    if len(a.runs) >= MIN_RUNS and len(b.runs) >= MIN_RUNS:
        _, lo, hi = stats.ratio_ci(a.runs, b.runs, stats.Percentile(50), boots=300)
        basis = "runs"
    elif len(a.samples) >= 2 and len(b.samples) >= 2:
        _, lo, hi = stats.ratio_ci(a.samples, b.samples, _stat(a.stat), boots=300)
        basis = "samples"
    if lo is None:
        verdict = "no interval (single values)"
    else:
        verdict = stats.verdict(lo, hi, a.higher_is_better)
        if verdict != "no significant difference" and abs(ratio - 1) < min_effect:
            verdict = "no significant difference"
        verdict = verdict.replace("difference", "change")
    return {"figure": a.name, "unit": a.unit, "a": a.value, "b": b.value,
            "change_pct": 100 * (ratio - 1), "ratio": ratio,
            "ci": [lo, hi] if lo is not None else None, "verdict": verdict,
            "higher_is_better": a.higher_is_better, "interval_from": basis}


def compare(docs: list[dict], names: list[str], min_effect: float = MIN_EFFECT) -> dict:
    """Every later document against the first: {"comparisons": [...], "warnings": [...]}."""
    if len(docs) < 2:
        raise ValueError("compare needs two result documents or more")
    base = docs[0]
    out, warnings = [], []
    for doc, name in zip(docs[1:], names[1:]):
        if doc["kind"] != base["kind"]:
            raise ValueError(f"{names[0]} is a {base['kind']} result and {name} a {doc['kind']} "
                             "result: only results of the same kind compare")
        diffs = fingerprint_differences(base, doc)
        if diffs:
            warnings.append(f"{name} ran on a different machine or setup: " + "; ".join(diffs))
        fa, fb = figures(base), figures(doc)
        common = [k for k in fa if k in fb]
        if not common:
            raise ValueError(f"{names[0]} and {name} share no figure to compare")
        missing = sorted(set(fa) ^ set(fb))
        if missing:
            warnings.append(f"{len(missing)} figure(s) appear in one document only: "
                            + ", ".join(missing[:5]) + ("..." if len(missing) > 5 else ""))
        figs = [compare_figure(fa[k], fb[k], min_effect) for k in common]
        if any(f["interval_from"] == "samples" for f in figs) and base["kind"] not in ("infer", "sweep"):
            warnings.append(
                f"{name} against {names[0]}: intervals from the samples of single runs cover the "
                "noise within a run, not the drift between runs, which can be larger (on the VM "
                "numaprobe is developed on, L1 latency moved 7-11 % between runs); for a verdict "
                f"that covers it, measure both with --repeat {MIN_RUNS} or more")
        out.append({"a": names[0], "b": name, "figures": figs})
    return {"kind": base["kind"], "comparisons": out, "min_effect": min_effect,
            "warnings": warnings}


def table(result: dict) -> str:
    lines = []
    for c in result["comparisons"]:
        lines.append(f"{c['b']} against {c['a']} ({result['kind']})")
        lines.append(f"{'figure':<34}{'A':>10}{'B':>10}{'change':>9}  {'ratio [95% CI]':<21}verdict")
        for f in c["figures"]:
            ci = f"[{f['ci'][0]:.3f},{f['ci'][1]:.3f}]" if f["ci"] else ""
            lines.append(f"{f['figure'][:33]:<34}{f['a']:10.4g}{f['b']:10.4g}"
                         f"{f['change_pct']:+8.1f}%  {f['ratio']:.3f} {ci:<15}{f['verdict']}")
    return "\n".join(lines)
