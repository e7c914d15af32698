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

import numpy as np

from .errors import UsageError
from . import kinds, stats
from .kinds import Figure, Kind, register
from .results import fingerprint_differences, workload_differences

MIN_EFFECT = 0.02
MIN_RUNS = 3  # runs on each side before the interval resamples runs instead of samples


def figures(doc: dict) -> dict[str, Figure]:
    """The comparable figures of a document, by name (its kind says which: kinds.py)."""
    kind = kinds.get(doc["kind"])
    out = kind.figures(doc) if kind.figures else []
    if not out:
        raise UsageError(f"a {doc['kind']} document has no measured figures to compare")
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


def compare(docs: list[dict], names: list[str], min_effect: float = MIN_EFFECT, *,
            strict: bool = False) -> dict:
    """Every later document against the first: {"comparisons": [...], "warnings": [...]}.
    Documents whose workloads differ (command options, model) get a warning that names each
    difference; ``strict`` refuses them instead."""
    if len(docs) < 2:
        raise UsageError("compare needs two result documents or more")
    base = docs[0]
    out, warnings = [], []
    for doc, name in zip(docs[1:], names[1:]):
        if doc["kind"] != base["kind"]:
            raise UsageError(f"{names[0]} is a {base['kind']} result and {name} a {doc['kind']} "
                             "result: only results of the same kind compare")
        diffs = fingerprint_differences(base, doc)
        if diffs:
            warnings.append(f"{name} ran on a different machine or setup: " + "; ".join(diffs))
        work = workload_differences(base, doc)
        if work and strict:
            raise UsageError(f"{names[0]} and {name} measured different workloads (--strict): "
                             + "; ".join(work))
        if work:
            warnings.append(f"{name} measured a different workload than {names[0]}: "
                            + "; ".join(work))
        fa, fb = figures(base), figures(doc)
        common = [k for k in fa if k in fb]
        if not common:
            raise UsageError(f"{names[0]} and {name} share no figure to compare")
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


# ------------------------------------------------------------------------ the result kind

def _rows(r: dict) -> tuple[list, list]:
    return (["a", "b", "figure", "unit", "value_a", "value_b", "change_pct", "ratio",
             "ci_low", "ci_high", "verdict"],
            [[c["a"], c["b"], f["figure"], f["unit"], f["a"], f["b"], f["change_pct"],
              f["ratio"], *(f["ci"] or [None, None]), f["verdict"]]
             for c in r["comparisons"] for f in c["figures"]])


def _html(r: dict) -> str:
    from .report import html as H
    out = []
    for c in r.get("comparisons") or []:
        rows = [[f["figure"], f"{f['a']:.4g}", f"{f['b']:.4g}", f"{f['change_pct']:+.1f}%",
                 f"{f['ratio']:.3f}" + (f" [{f['ci'][0]:.3f},{f['ci'][1]:.3f}]" if f.get("ci") else ""),
                 f["verdict"]] for f in c.get("figures") or []]
        out.append(H.table(["figure", "A", "B", "change", "ratio [95% CI]", "verdict"], rows,
                          caption=f"{c['b']} against {c['a']} ({r.get('kind', '?')})"))
    return "\n".join(out) or "<p class=muted>nothing compared</p>"


register(Kind("compare", "comparison", text=lambda doc: table(doc["result"]),
              html=lambda doc: _html(doc["result"]), rows=lambda doc: _rows(doc["result"])))
