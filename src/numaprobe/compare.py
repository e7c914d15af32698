"""`numaprobe compare A.json B.json [C.json ...]`: matched figures side by side, the change,
the ratio with a confidence interval and a verdict.

Each later document is compared with the first. A figure is matched by name (e.g. "latency
node 0 -> node 1", "naive throughput"). The unit of evidence is the run or the round, never
the correlated samples inside one window: a figure's interval and test come from one value
per run (probes with --repeat) or per round (infer and sweep: fresh workers each round), on
each side, by Welch's t on their logarithms (stats.unpaired_ratio). Across documents the runs
are unpaired, and a drift slower than a document is invisible to their spread: the interval
adds a drift between documents of sd --drift (DRIFT, 7.5 %: what separate identical runs on
this project's VMs differ by, see DRIFT), so that an A/A pair of documents rarely gets a
verdict. On a quiet bare-metal machine, measure yours (bench/aa.py prints it) and pass it.

- fewer than 3 runs on a side: "not established", with what to run;
- either side's window saw more foreign or stolen CPU time than --max-noise: "noisy: rerun";
- "faster" or "slower" only when Holm's rule over the family rejects (the primary figures of
  a kind form one family, latency percentiles of inference a second one, marked secondary),
  the interval excludes 1 and the change is at least --min-effect (2 %);
- otherwise "no significant change", always with the smallest change it could have detected.
"""
from __future__ import annotations

import textwrap

import numpy as np

from . import kinds, stats
from .errors import UsageError
from .kinds import Figure, Kind, register
from .noise import others_share
from .results import fingerprint_differences, workload_differences

MIN_EFFECT = stats.MIN_EFFECT_ROUNDS   # the smallest change called faster or slower
# The sd of a document's level around the machine's (log scale) beyond its rounds' spread:
# separate identical runs on this project's 2-core VM differed by 7.6 % (infer, memory-bound
# mlp, 8 documents of 10 rounds), 4.7 % (DRAM latency, 6 x --repeat 3) and 3.7 % (read
# bandwidth, 6 x --repeat 3), none of it visible as CPU noise: neighbours on the host share
# its memory. tests/test_verdicts.py simulates A/A pairs of documents with such a drift.
DRIFT = 0.075
MIN_RUNS = stats.MIN_ROUNDS             # runs on each side before there is a verdict


def figures(doc: dict) -> dict[str, Figure]:
    """The comparable figures of a document, by name (its kind says which: kinds.py)."""
    kind = kinds.get(doc["kind"])
    out = kind.figures(doc) if kind.figures else []
    if not out:
        raise UsageError(f"a document of kind {doc['kind']} has no measured figures to compare")
    return {f.name: f for f in out}


def _need_runs(kind: str) -> str:
    if kind in ("infer", "sweep"):
        return f"run both with --rounds {stats.MIN_ROUNDS} or more (default {stats.DEFAULT_ROUNDS})"
    if kind in ("clock", "quick"):
        return (f"a document of kind {kind} holds one run: compare a probe run with --repeat "
                f"{MIN_RUNS} or more instead")
    return f"measure both with --repeat {MIN_RUNS} or more"


def compare_pair(base: dict, doc: dict, *, min_effect: float = MIN_EFFECT,
                 max_noise: float = stats.MAX_NOISE, drift: float = DRIFT) -> list[dict]:
    """Every figure the two documents share, with its verdict (see the module's docstring)."""
    fa, fb = figures(base), figures(doc)
    common = [k for k in fa if k in fb]
    families = {k: sum(1 for j in common if fa[j].family == fa[k].family) for k in common}
    comps = {k: stats.unpaired_ratio([x for x in fa[k].runs if x], [x for x in fb[k].runs if x],
                                     higher_is_better=fa[k].higher_is_better, family=families[k],
                                     drift_sd=drift)
             for k in common}
    rejected = {}
    for family in ("primary", "secondary"):
        keys = [k for k in common if fa[k].family == family]
        rejected.update(zip(keys, stats.holm([comps[k].p_value for k in keys])))
    out = []
    for k in common:
        a, b, c = fa[k], fb[k], comps[k]
        noise = (a.noise if a.noise is not None else others_share(base.get("noise")),
                 b.noise if b.noise is not None else others_share(doc.get("noise")))
        v = stats.verdict(c, rejected=rejected[k], min_effect=min_effect, noise=noise,
                          max_noise=max_noise)
        detail = v.detail
        if v.word == stats.NOT_ESTABLISHED and min(c.n_a, c.n_b) < MIN_RUNS:
            detail = (f"needs {MIN_RUNS} runs on each side, has {c.n_a} and {c.n_b}: "
                      + _need_runs(base["kind"]))
        # The ratio the interval and the test are about (of the runs' geometric means) where
        # there are runs; else the figures' own.
        ratio = c.ratio if c.established else (b.value / a.value if a.value else None)
        out.append({"figure": k, "unit": a.unit, "a": a.value, "b": b.value,
                    "change_pct": 100 * (ratio - 1) if ratio is not None else None,
                    "ratio": ratio,
                    "ci": list(c.ci) if c.established else None, "verdict": v.word,
                    "detail": detail, "family": a.family, "higher_is_better": a.higher_is_better,
                    "interval_from": "runs" if c.established else None,
                    "p_value": c.p_value if c.established else None,
                    "mde": c.mde if c.established and np.isfinite(c.mde) else None,
                    "runs": [len(a.runs), len(b.runs)], "noise": list(noise)})
    return out


def compare(docs: list[dict], names: list[str], min_effect: float = MIN_EFFECT, *,
            strict: bool = False, max_noise: float = stats.MAX_NOISE,
            drift: float = DRIFT) -> dict:
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
        if not any(k in fb for k in fa):
            raise UsageError(f"{names[0]} and {name} share no figure to compare")
        missing = sorted(set(fa) ^ set(fb))
        if missing:
            warnings.append(f"{len(missing)} figure(s) appear in one document only: "
                            + ", ".join(missing[:5]) + ("..." if len(missing) > 5 else ""))
        figs = compare_pair(base, doc, min_effect=min_effect, max_noise=max_noise, drift=drift)
        if any(f["verdict"] == stats.NOT_ESTABLISHED for f in figs):
            warnings.append(f"{name} against {names[0]}: some figures have fewer than "
                            f"{MIN_RUNS} runs on a side, so no verdict: {_need_runs(base['kind'])}")
        elif figs:
            warnings.append(f"{name} against {names[0]}: the runs of two documents are "
                            "unpaired; the intervals allow for a drift of the machine between "
                            f"them of sd {100 * drift:.2g} % (--drift)" if drift else
                            f"{name} against {names[0]}: the runs of two documents are "
                            "unpaired, and --drift 0 assumes the machine did not move between "
                            "them")
        out.append({"a": names[0], "b": name, "figures": figs})
    return {"kind": base["kind"], "comparisons": out, "min_effect": min_effect,
            "max_noise": max_noise, "drift": drift, "warnings": warnings}


def table(result: dict) -> str:
    """Each comparison: a line per figure, the verdict's detail beneath it where there is one
    (secondary figures marked with an asterisk)."""
    lines = []
    for c in result["comparisons"]:
        lines.append(f"{c['b']} against {c['a']} ({result['kind']})")
        lines.append(f"{'figure':<28}{'unit':>6}{'A':>10}{'B':>10}{'change':>9}  "
                     f"{'ratio [95% CI]':<21}verdict")
        for f in c["figures"]:
            ci = f"[{f['ci'][0]:.3f},{f['ci'][1]:.3f}]" if f["ci"] else ""
            star = "*" if f.get("family") == "secondary" else ""
            change = f"{f['change_pct']:+8.1f}%" if f["ratio"] is not None else f"{'-':>9}"
            ratio = f"{f['ratio']:.3f}" if f["ratio"] is not None else "  -  "
            name = f["figure"] + star
            if len(name) > 27:  # a long name gets its own line rather than being cut
                lines.append(name)
                name = ""
            lines.append(f"{name:<28}{f['unit'][:6]:>6}{f['a']:10.4g}{f['b']:10.4g}"
                         f"{change}  {ratio} {ci:<15}{f['verdict']}")
            if f.get("detail") and f["verdict"] != stats.NOT_ESTABLISHED:
                lines += textwrap.wrap(f["detail"], 79, initial_indent="    ",
                                       subsequent_indent="    ")
        if any(f.get("family") == "secondary" for f in c["figures"]):
            lines.append("* secondary: latency percentiles, tested as their own family")
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
        rows = [[f["figure"], f"{f['a']:.4g} {f['unit']}", f"{f['b']:.4g} {f['unit']}",
                 f"{f['change_pct']:+.1f}%" if f["ratio"] is not None else "-",
                 (f"{f['ratio']:.3f}" if f["ratio"] is not None else "-")
                 + (f" [{f['ci'][0]:.3f},{f['ci'][1]:.3f}]" if f.get("ci") else ""),
                 ("raw", H.e(f["verdict"]) + (f"<span class=sub>{H.e(f['detail'])}</span>"
                                             if f.get("detail") else ""))]
                for f in c.get("figures") or []]
        out.append(H.table(["figure", f"A: {c['a']}", f"B: {c['b']}", "change B/A",
                            "ratio [95 % CI]", "verdict"], rows,
                          caption=f"{c['b']} against {c['a']} ({r.get('kind', '?')})"))
    return "\n".join(out) or "<p class=muted>nothing compared</p>"


# the forest plot's ratio axis is ticked at whichever of these fall inside it
_RATIO_TICKS = (0.01, 0.1, 0.2, 0.5, 0.67, 0.8, 0.9, 0.95, 0.98, 1.0, 1.02, 1.05, 1.1, 1.2, 1.5,
                2.0, 5.0, 10.0, 100.0)
# the verdict's colour in the forest plot: green better, red worse, grey no verdict
_VERDICT_COLOURS = {"faster": "#1d6f2a", "slower": "#b02a1a", stats.NO_CHANGE: "0.3",
                    stats.NOISY: "#c77c00", stats.NOT_ESTABLISHED: "0.55"}


def _plot_forest(doc: dict):
    """A forest plot: one row per compared figure, its ratio B / A with the 95 % interval over
    runs, a line at 1 (no change), a band for changes under --min-effect, and the verdict as
    colour and words at the right; a ratio without an interval is drawn hollow."""
    from .report import plots as P
    r = doc["result"]
    comps = r.get("comparisons") or []
    several = len(comps) > 1
    rows = [((f"{c['b']}: " if several else "") + f["figure"]
             + ("*" if f.get("family") == "secondary" else ""), f)
            for c in comps for f in c.get("figures") or []]
    if not rows:
        return None
    fig = P.figure(10.0, min(2.6 + 0.34 * len(rows), 40.0))
    ax = fig.add_subplot()
    spread = [np.log1p(r.get("min_effect") or MIN_EFFECT) * 2]
    right = []
    for i, (_, f) in enumerate(rows):
        col = _VERDICT_COLOURS.get(f["verdict"], "0.3")
        ratio, ci = f.get("ratio"), f.get("ci")
        if ci:
            ax.plot(ci, [i, i], color=col, linewidth=2.4, solid_capstyle="butt")
            spread += [abs(np.log(x)) for x in ci if x > 0]
        if ratio:
            ax.plot([ratio], [i], "o", color=col, markersize=7, markeredgewidth=1.5,
                    markerfacecolor=col if ci else "white")
            spread.append(abs(np.log(ratio)))
        right.append(((f"{ratio:.3f}" if ratio else "-")
                      + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "") + f"  {f['verdict']}",
                      col))
    me = r.get("min_effect") or MIN_EFFECT
    ax.axvspan(1 / (1 + me), 1 + me, color="0.93", zorder=0, linewidth=0)
    ax.axvline(1.0, color="black", linewidth=1.0, zorder=1)
    ax.set_xscale("log")
    span = float(np.exp(max(spread) * 1.15))
    ax.set_xlim(1 / span, span)
    from matplotlib.ticker import NullLocator
    ticks = [1.0]  # then the farthest first, none closer to another than a 7th of the axis
    for t in sorted(_RATIO_TICKS, key=lambda t: -abs(np.log(t))):
        if 1 / span <= t <= span and all(abs(np.log(t / u)) >= 2 * np.log(span) / 7
                                         for u in ticks):
            ticks.append(t)
    ticks.sort()
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_yticks(range(len(rows)), [label for label, _ in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    ax.grid(True, axis="y", color="0.94", linewidth=0.8)
    ax.set_xlabel("B / A (log scale): right of 1, B is higher")
    twin = ax.twinx()
    twin.set_ylim(ax.get_ylim())
    twin.set_yticks(range(len(rows)), [text for text, _ in right])
    twin.tick_params(axis="y", length=0)
    for label, (_, col) in zip(twin.get_yticklabels(), right):
        label.set_color(col)
    against = ", ".join(f"{c['b']} against {c['a']}" for c in comps)
    P.titles(fig, ax, f"comparison ({r.get('kind', '?')}): {against}", doc,
             f"dots: ratio; bars: 95 % interval over runs (hollow: no interval)\n"
             f"grey band: changes under --min-effect {100 * me:g} %"
             + ("; *: secondary figure (latency percentile)"
                if any(lab.endswith("*") for lab, _ in rows) else ""))
    return fig


register(Kind("compare", "comparison", text=lambda doc: table(doc["result"]),
              html=lambda doc: _html(doc["result"]), rows=lambda doc: _rows(doc["result"]),
              plots=lambda doc: [("forest", lambda: _plot_forest(doc))]))
