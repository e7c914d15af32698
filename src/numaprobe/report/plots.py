"""Figures for result documents (matplotlib, Agg; imported only when a figure is drawn).

Every figure is built from the document alone, so a document from another machine draws the
same. Output is deterministic: fixed SVG ids, no dates in the metadata. Text in the SVGs is
drawn as paths, so an SVG looks the same without the fonts installed.
"""
from __future__ import annotations

import io
import math
from pathlib import Path

from ..topology import format_list, human_bytes

MISSING = "plots need matplotlib: pip install 'numaprobe[plot]'"
DPI = 100
ANNOTATE_MAX = 24       # a matrix wider than this gets colours only, no numbers in the cells
CDF_POINTS = 800        # a CDF curve is drawn through at most this many points
_RC = {"font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "legend.fontsize": 8.5,
       "xtick.labelsize": 9, "ytick.labelsize": 9, "svg.hashsalt": "numaprobe",
       "svg.fonttype": "path", "axes.spines.top": False, "axes.spines.right": False,
       "figure.dpi": DPI, "savefig.dpi": DPI, "path.simplify": True}


def _mpl():
    """matplotlib, or the one-line ImportError the CLI reports."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError(MISSING) from None
    return matplotlib


# ----------------------------------------------------------------------------- helpers

def machine_line(doc: dict) -> str:
    m = doc.get("machine") or {}
    parts = [m.get("cpu_model") or "unknown CPU"]
    if m.get("kernel"):
        parts.append(f"Linux {m['kernel']}")
    if m.get("hostname"):
        parts.append(f"host {m['hostname']}")
    return " \u00b7 ".join(parts)


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _titles(fig, ax, title: str, doc: dict, extra: str = "") -> None:
    fig.suptitle(title, x=0.01, ha="left", fontsize=11.5, fontweight="bold")
    sub = machine_line(doc) + (f"\n{extra}" if extra else "")
    ax.set_title(sub, loc="left", fontsize=8.5, color="0.3")


def _ink(cmap, norm, v) -> str:
    r, g, b, _ = cmap(norm(v))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def _heatmap(doc, title, rows, cols, values, *, unit, fmt, cmap, xlabel, ylabel,
             notes=None, extra="", diagonal_blank=False):
    """values[i][j] (None: blank); notes[i][j]: a small second line in the cell."""
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    nr, nc = len(rows), len(cols)
    arr = np.array([[np.nan if v is None else float(v) for v in row] for row in values], float)
    annotate = max(nr, nc) <= ANNOTATE_MAX
    cell = 1.0 if max(nr, nc) <= 6 else (0.6 if annotate else max(0.12, 8.0 / max(nr, nc)))
    label_w = max(len(s) for s in rows) * 0.075 + 0.9
    width = min(max(label_w + nc * cell + 1.6, 6.4), 14.0)
    height = min(max(nr * cell + 1.9, 3.4), 13.0)
    fig = _figure(width, height)
    ax = fig.add_subplot()
    cm = colormaps[cmap].with_extremes(bad="#eeeeee")
    finite = arr[np.isfinite(arr)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo * 0.9 if lo > 0 else lo - 1, hi * 1.1 if hi > 0 else hi + 1
    norm = Normalize(lo, hi)
    im = ax.imshow(np.ma.masked_invalid(arr), cmap=cm, norm=norm, aspect="auto",
                   interpolation="nearest")
    ax.set_xticks(range(nc), cols, rotation=0 if nc <= 8 else 90)
    ax.set_yticks(range(nr), rows)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    for s in ax.spines.values():
        s.set_visible(False)
    ax.tick_params(length=0)
    if annotate:
        size = 11 if max(nr, nc) <= 6 else (8.5 if max(nr, nc) <= 12 else 6.5)
        for i in range(nr):
            for j in range(nc):
                v = arr[i, j]
                if not np.isfinite(v):
                    if not (diagonal_blank and i == j):
                        ax.text(j, i, "n/a", ha="center", va="center", fontsize=size - 2,
                                color="0.45")
                    continue
                note = notes[i][j] if notes else None
                ink = _ink(cm, norm, v)
                ax.text(j, i, format(v, fmt), ha="center", va="center" if not note else "bottom",
                        fontsize=size, color=ink, fontweight="bold")
                if note:
                    ax.text(j, i + 0.08, note, ha="center", va="top", fontsize=size - 3.5,
                            color=ink)
    cb = fig.colorbar(im, ax=ax, shrink=0.9, pad=0.02)
    cb.set_label(unit)
    _titles(fig, ax, title, doc, extra)
    return fig


def _node_label(doc, node: int) -> str:
    for n in (doc.get("machine") or {}).get("nodes", []):
        if n.get("id") == node and not n.get("cpus"):
            return f"node {node}\n(no CPUs)"
    return f"node {node}"


# ------------------------------------------------------------------------------ figures

def _latency_matrix(doc, r, title="idle memory latency, ns per load (median)"):
    cells = {(c["cpu_node"], c["mem_node"]): c for c in r.get("cells", [])}
    if not cells:
        return None
    cpu_nodes, mem_nodes = r["cpu_nodes"], r["mem_nodes"]
    dist = r.get("distances") or []
    hmat = r.get("hmat_read_latency_ns") or []
    rows, values, notes = [], [], []
    for i, a in enumerate(cpu_nodes):
        cpu = next((c["cpu"] for (x, _), c in cells.items() if x == a), None)
        rows.append(f"node {a}" + (f" (CPU {cpu})" if cpu is not None else ""))
        values.append([cells[(a, b)]["ns"]["median"] if (a, b) in cells else None for b in mem_nodes])
        row_notes = []
        for j, b in enumerate(mem_nodes):
            d = dist[i][j] if i < len(dist) and j < len(dist[i]) else None
            h = hmat[i][j] if i < len(hmat) and j < len(hmat[i]) else None
            parts = ([f"distance {d}"] if d is not None else []) + ([f"HMAT {h} ns"] if h else [])
            row_notes.append(", ".join(parts) or None)
        notes.append(row_notes)
    return _heatmap(doc, title, rows, [_node_label(doc, b) for b in mem_nodes], values,
                    unit="ns per load", fmt=".1f", cmap="YlOrRd", xlabel="memory node",
                    ylabel="CPU node", notes=notes,
                    extra="darker = slower; the second line: SLIT distance (and HMAT where declared)")


def _bandwidth_matrix(doc, r):
    cells = {(c["cpu_node"], c["mem_node"]): c for c in r.get("cells", [])}
    if not cells:
        return None
    rows = []
    for a in r["cpu_nodes"]:
        c = next((c for (x, _), c in cells.items() if x == a), None)
        rows.append(f"node {a}" + (f" ({len(c['cpus'])} threads)" if c else ""))
    values = [[cells[(a, b)]["gbs"]["median"] if (a, b) in cells else None for b in r["mem_nodes"]]
              for a in r["cpu_nodes"]]
    return _heatmap(doc, f"{r['kernel']} bandwidth, GB/s (median; "
                    f"{', '.join(sorted({c.get('isa', '?') for c in r['cells']}))})",
                    rows, [_node_label(doc, b) for b in r["mem_nodes"]], values, unit="GB/s",
                    fmt=".1f", cmap="viridis", xlabel="memory node", ylabel="CPU node",
                    extra="threads = the usable CPUs of the CPU node; brighter = faster")


def _c2c_matrix(doc, r):
    pairs = r.get("pairs") or []
    if not pairs:
        return None
    cpus = list(r["cpus"])
    ns = {}
    for p in pairs:
        ns[(p["a"], p["b"])] = ns[(p["b"], p["a"])] = p["ns"]["median"]
    values = [[ns.get((a, b)) if a != b else None for b in cpus] for a in cpus]
    s = r.get("summary") or {}
    extra = ""
    if s:
        extra = (f"min {s['min']['ns']:.1f} ns (CPUs {s['min']['pair'][0]}-{s['min']['pair'][1]}), "
                 f"median {s['median']:.1f} ns, max {s['max']['ns']:.1f} ns "
                 f"(CPUs {s['max']['pair'][0]}-{s['max']['pair'][1]})")
    labels = [str(c) for c in cpus]
    return _heatmap(doc, f"core-to-core latency, ns one way (line on memory node {r.get('node')})",
                    labels, labels, values, unit="ns one way", fmt=".1f", cmap="YlOrRd",
                    xlabel="CPU", ylabel="CPU", extra=extra, diagonal_blank=True)


def _pow2_ticks(ax, lo: float, hi: float) -> None:
    k0, k1 = math.floor(math.log2(lo)), math.ceil(math.log2(hi))
    step = 1 if k1 - k0 <= 12 else 2
    ks = [k for k in range(k0, k1 + 1) if k % step == 0]
    ax.set_xticks([2.0 ** k for k in ks], [human_bytes(2 ** k) for k in ks])
    from matplotlib.ticker import NullLocator
    ax.xaxis.set_minor_locator(NullLocator())


def _log_y(ax) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


_LEVEL_COLOURS = ["#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#d62728"]


def _latency_sweep(doc, r):
    pts = sorted(r.get("points") or [], key=lambda p: p["size"])
    if not pts:
        return None
    xs = [p["size"] for p in pts]
    med = [p["ns"]["median"] for p in pts]
    fig = _figure(9.0, 5.4)
    ax = fig.add_subplot()
    ax.set_xscale("log", base=2)
    ax.fill_between(xs, [p["ns"]["min"] for p in pts], [p["ns"]["max"] for p in pts],
                    color="0.6", alpha=0.3, linewidth=0, label="min\u2013max of the samples")
    ax.plot(xs, med, "o-", color="black", markersize=3, linewidth=1.3, label="median latency")
    _log_y(ax)
    lo_x, hi_x = xs[0], xs[-1]
    levels = r.get("levels") or []
    start, outside = lo_x, []
    for k, lv in enumerate(levels):
        col = _LEVEL_COLOURS[k % len(_LEVEL_COLOURS)]
        end = lv.get("effective_size") or hi_x
        ax.hlines(lv["ns"], start, end, colors=col, linewidth=5, alpha=0.45,
                  label="level found (its latency)" if k == 0 else None)
        ax.annotate(f"{lv['name']} {lv['ns']:.3g} ns", (math.sqrt(start * end), lv["ns"]),
                    textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8.5,
                    color=col, fontweight="bold",
                    bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8))
        if lv.get("effective_size"):
            ax.axvline(lv["effective_size"], color=col, linewidth=1.2,
                       label="effective size (where latency rises)" if k == 0 else None)
            ax.annotate(f"{lv['name']} {human_bytes(lv['effective_size'])}",
                        (lv["effective_size"], 0.02), xycoords=("data", "axes fraction"),
                        rotation=90, ha="right", va="bottom", fontsize=8, color=col,
                        xytext=(-2, 0), textcoords="offset points")
            start = lv["effective_size"]
        rep = lv.get("reported_size")
        if rep:
            if lo_x <= rep <= hi_x:
                ax.axvline(rep, color=col, linewidth=1.2, linestyle="--",
                           label="size the topology reports" if not any(
                               h.get_label() == "size the topology reports"
                               for h in ax.get_lines()) else None)
                ax.annotate(f"{lv['name']} reported {human_bytes(rep)}", (rep, 0.98),
                            xycoords=("data", "axes fraction"), rotation=90, ha="right",
                            va="top", fontsize=8, color=col, xytext=(-2, 0),
                            textcoords="offset points")
            else:
                outside.append(f"{lv['name']} reported {human_bytes(rep)}")
    _pow2_ticks(ax, lo_x, hi_x)
    ax.set_xlim(lo_x / 1.15, hi_x * 1.15)
    ax.set_xlabel("working-set size (bytes in the chain, log scale)")
    ax.set_ylabel("latency, ns per load (log scale)")
    ax.grid(True, which="major", color="0.9", linewidth=0.8)
    fig.legend(loc="outside lower center", ncol=3, frameon=False)
    if outside:
        ax.text(0.99, 0.02, "outside the sweep: " + ", ".join(outside), transform=ax.transAxes,
                ha="right", va="bottom", fontsize=8, color="0.3")
    _titles(fig, ax, f"latency vs working-set size: CPU {r.get('cpu')}, memory node "
            f"{r.get('mem_node')}, {r.get('chain')} chain", doc)
    return fig


def _loaded_latency(doc, r):
    pts = sorted(r.get("points") or [], key=lambda p: p["gbs"])
    if not pts:
        return None
    fig = _figure(8.5, 5.2)
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
    _titles(fig, ax, f"loaded latency: chase on CPU {r.get('chase_cpu')} (node {r.get('cpu_node')})"
            f" to memory node {r.get('mem_node')}", doc,
            "labels: injection delay, spins between 512-byte blocks of the traffic threads "
            "(0 = full load)")
    return fig


def _bandwidth_threads(doc, r):
    runs = r.get("runs") or []
    if not runs:
        return None
    fig = _figure(8.0, 5.0)
    ax = fig.add_subplot()
    x = [len(u["cpus"]) for u in runs]
    y = [u["gbs"]["median"] for u in runs]
    err = [[max(0.0, u["gbs"]["median"] - u["gbs"]["min"]) for u in runs],
           [max(0.0, u["gbs"]["max"] - u["gbs"]["median"]) for u in runs]]
    ax.errorbar(x, y, yerr=err, fmt="o-", color="#1f77b4", ecolor="0.45", elinewidth=1.2,
                capsize=4, markersize=6, label="median (bars: min\u2013max)")
    for xi, yi in zip(x, y):
        ax.annotate(f"{yi:.1f}", (xi, yi), textcoords="offset points", xytext=(6, -12),
                    fontsize=8.5)
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(min(x) - 0.5, max(x) + 0.5)
    ax.set_ylim(bottom=0, top=max(u["gbs"]["max"] for u in runs) * 1.12)
    ax.set_xlabel("threads (one per CPU)")
    ax.set_ylabel("bandwidth, GB/s")
    ax.grid(True, color="0.9", linewidth=0.8)
    ax.legend(loc="lower right", frameon=False)
    first = runs[0]
    _titles(fig, ax, f"{first.get('kernel', '?')} bandwidth by threads, CPU node "
            f"{r.get('cpu_node')} ({first.get('isa', '?')})", doc)
    return fig


_PCTS = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999))


def _colours(n):
    from matplotlib import colormaps
    cm = colormaps["tab10"]
    return [cm(i % 10) for i in range(n)]


def _latency_cdf(doc, r):
    import numpy as np
    lays = r.get("layouts") or []
    if not lays:
        return None
    fig = _figure(9.0, 5.4)
    ax = fig.add_subplot()
    lo, hi = math.inf, 0.0
    for d, col in zip(lays, _colours(len(lays))):
        name, lat = d["layout"]["name"], d["latency"]
        raw = d.get("latency_ms")
        if raw:
            xs = np.sort(np.asarray(raw, float))
            n = xs.size
            idx = np.unique(np.linspace(0, n - 1, min(n, CDF_POINTS)).round().astype(int))
            ax.step(xs[idx], (idx + 1) / n, where="post", color=col, linewidth=1.6,
                    label=f"{name} ({n} inferences)")
            lo, hi = min(lo, float(xs[0])), max(hi, float(xs[-1]))
        marks = [(lat[k]["ms"], q, lat[k].get("enough_samples", True)) for k, q in _PCTS
                 if lat.get(k)]
        if not marks:
            continue
        if not raw:
            ax.plot([m[0] for m in marks], [m[1] for m in marks], "--", color=col, linewidth=1,
                    label=f"{name} (percentiles only: no per-inference latencies)")
        for ms, q, ok in marks:
            ax.plot([ms], [q], "o", color=col, markersize=6,
                    markerfacecolor=col if ok else "white", markeredgewidth=1.4)
        lo, hi = min(lo, min(m[0] for m in marks)), max(hi, max(m[0] for m in marks))
    if hi > 0 and lo > 0 and hi / lo > 8:
        ax.set_xscale("log")
        from matplotlib.ticker import FuncFormatter
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        xlabel = "latency per inference, ms (log scale)"
    else:
        xlabel = "latency per inference, ms"
    for k, q in _PCTS[:3]:
        ax.axhline(q, color="0.8", linewidth=0.8, zorder=0)
        ax.annotate(k, (1.0, q), xycoords=("axes fraction", "data"), xytext=(3, 0),
                    textcoords="offset points", va="center", fontsize=8, color="0.4")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of inferences at or below")
    ax.grid(True, axis="x", color="0.92", linewidth=0.8)
    ax.legend(loc="lower right", frameon=False)
    _titles(fig, ax, f"latency distribution per layout: model {r['model']['name']}", doc,
            "dots: p50, p90, p99, p99.9 (hollow: too few samples to trust)")
    return fig


def _throughput_bars(doc, r):
    lays = r.get("layouts") or []
    if not lays:
        return None
    names = [d["layout"]["name"] for d in lays]
    y = [d["throughput"]["per_s"] for d in lays]
    ci = [d["throughput"]["ci"] for d in lays]
    err = [[max(0.0, v - c[0]) for v, c in zip(y, ci)], [max(0.0, c[1] - v) for v, c in zip(y, ci)]]
    fig = _figure(min(max(5.5, 1.4 * len(lays) + 2.5), 14.0), 5.2)
    ax = fig.add_subplot()
    ax.bar(range(len(lays)), y, color=_colours(len(lays)), alpha=0.85, width=0.6)
    ax.errorbar(range(len(lays)), y, yerr=err, fmt="none", ecolor="black", capsize=6,
                elinewidth=1.2)
    top = max(c[1] for c in ci) if ci else max(y)
    mode = (r.get("asked") or {}).get("mode", "closed")
    for i, d in enumerate(lays):
        vs = d.get("vs_first") or {}
        ratio = vs.get("throughput_ratio" if mode == "closed" else "p50_ratio")
        what = "" if mode == "closed" else " p50"
        note = "baseline" if i == 0 else (f"{ratio[0]:.2f}x{what}, {vs.get('verdict', '')}"
                                          if ratio else "")
        ax.annotate(f"{y[i]:.1f}/s\n{note}", (i, ci[i][1]), textcoords="offset points",
                    xytext=(0, 5), ha="center", va="bottom", fontsize=8.5)
    ax.set_xticks(range(len(lays)), names, rotation=0 if len(lays) <= 5 else 30,
                  ha="center" if len(lays) <= 5 else "right")
    ax.set_ylim(0, top * 1.25 if top > 0 else 1)
    ax.set_ylabel("throughput, inferences/s")
    ax.set_xlabel("layout")
    ax.grid(True, axis="y", color="0.9", linewidth=0.8)
    ax.set_axisbelow(True)
    _titles(fig, ax, f"throughput per layout: model {r['model']['name']} ({mode} loop)", doc,
            "bars: mean; whiskers: 95 % confidence interval; each layout against the first")
    return fig


def _sweep_curve(doc, r):
    sw = r.get("sweep") or {}
    curve = sw.get("curve") or []
    if not curve:
        return None
    ci = {d["layout"]["name"]: d["throughput"]["ci"] for d in r.get("layouts", [])}
    full = sorted([c for c in curve if c["layout"] != "1x1" or len(curve) == 1],
                  key=lambda c: c["instances"])
    ref = [c for c in curve if c["layout"] == "1x1" and len(curve) > 1]
    fig = _figure(8.5, 5.2)
    ax = fig.add_subplot()

    def errs(cs):
        return [[max(0.0, c["throughput"] - ci.get(c["layout"], [c["throughput"]] * 2)[0]) for c in cs],
                [max(0.0, ci.get(c["layout"], [c["throughput"]] * 2)[1] - c["throughput"]) for c in cs]]
    ax.errorbar([c["instances"] for c in full], [c["throughput"] for c in full], yerr=errs(full),
                fmt="o-", color="#1f77b4", capsize=4, markersize=7,
                label="all usable CPUs split into instances x threads")
    if ref:
        ax.errorbar([c["instances"] for c in ref], [c["throughput"] for c in ref], yerr=errs(ref),
                    fmt="D", color="0.5", capsize=4, markersize=6,
                    label="1x1: one instance, one thread (reference)")
    for c in full + ref:
        p50 = f", p50 {c['p50_ms']:.3g} ms" if c.get("p50_ms") is not None else ""
        left = c in ref  # the reference sits at 1 instance too: its label goes to the left
        ax.annotate(f"{c['layout']}: {c['throughput']:.1f}/s{p50}", (c["instances"], c["throughput"]),
                    textcoords="offset points", xytext=(-14 if left else 14, -6), fontsize=8.5,
                    va="top", ha="right" if left else "left")
    by_name = {c["layout"]: c for c in curve}
    best_t, best_l = by_name.get(sw.get("best_throughput")), by_name.get(sw.get("best_latency"))
    if best_t:
        ax.plot([best_t["instances"]], [best_t["throughput"]], marker="*", markersize=20,
                color="#ffbf00", markeredgecolor="black", linestyle="none", zorder=5,
                label=f"best throughput: {best_t['layout']}")
    if best_l:
        ax.plot([best_l["instances"]], [best_l["throughput"]], marker="o", markersize=22,
                markerfacecolor="none", markeredgecolor="#2ca02c", markeredgewidth=2,
                linestyle="none", zorder=4, label=f"best latency (p50): {best_l['layout']}")
    stop = by_name.get(sw.get("stops_rising_after"))
    if stop:
        ax.axvline(stop["instances"], color="0.5", linestyle=":",
                   label=f"throughput stops rising after {stop['layout']}")
    xs = [c["instances"] for c in curve]
    ax.set_xticks(sorted(set(xs)))
    ax.set_xlim(min(xs) - (1.1 if ref else 0.5), max(xs) + 0.9)
    tops = [ci.get(c["layout"], [0, c["throughput"]])[1] for c in curve]
    ax.set_ylim(0, max(tops + [c["throughput"] for c in curve]) * 1.35 or 1)
    ax.set_xlabel("instances (processes)")
    ax.set_ylabel("throughput, inferences/s")
    ax.grid(True, color="0.9", linewidth=0.8)
    ax.legend(loc="upper left", frameon=False, markerscale=0.6)
    _titles(fig, ax, f"throughput vs instances: model {r['model']['name']}", doc,
            "whiskers: 95 % confidence interval")
    return fig


# ------------------------------------------------------------------------------ dispatch

def _builders(doc: dict):
    """(figure name, builder) for the document's kind; a builder returns None to skip."""
    kind, r = doc["kind"], doc.get("result") or {}
    if kind == "quick":
        out = []
        if r.get("latency"):
            out.append(("latency-matrix", lambda: _latency_matrix(doc, r["latency"])))
        for k, m in (r.get("bandwidth") or {}).items():
            out.append((f"bandwidth-{k}-matrix", lambda m=m: _bandwidth_matrix(doc, m)))
        if r.get("c2c"):
            out.append(("c2c-matrix", lambda: _c2c_matrix(doc, r["c2c"])))
        return out
    table = {
        "latency": [("matrix", lambda: _latency_matrix(doc, r))],
        "bandwidth": [("matrix", lambda: _bandwidth_matrix(doc, r))],
        "c2c": [("matrix", lambda: _c2c_matrix(doc, r))],
        "latency-sweep": [("curve", lambda: _latency_sweep(doc, r))],
        "loaded-latency": [("curve", lambda: _loaded_latency(doc, r))],
        "bandwidth-threads": [("scaling", lambda: _bandwidth_threads(doc, r))],
        "infer": [("latency-cdf", lambda: _latency_cdf(doc, r)),
                  ("throughput", lambda: _throughput_bars(doc, r))],
        "sweep": [("latency-cdf", lambda: _latency_cdf(doc, r)),
                  ("throughput", lambda: _throughput_bars(doc, r)),
                  ("scaling", lambda: _sweep_curve(doc, r))],
    }
    return table.get(kind, [])


def render(doc: dict, formats=("png", "svg")) -> list[tuple[str, dict]]:
    """Every figure of the document: [(name, {format: bytes})], name = '<kind>-<figure>'."""
    mpl = _mpl()
    out = []
    with mpl.rc_context(_RC):
        for name, build in _builders(doc):
            fig = build()
            if fig is None:
                continue
            data = {}
            for fmt in formats:
                buf = io.BytesIO()
                meta = {"Date": None} if fmt in ("svg", "pdf") else {"Software": None}
                fig.savefig(buf, format=fmt, dpi=DPI, metadata=meta, facecolor="white")
                data[fmt] = buf.getvalue()
            out.append((f"{doc['kind']}-{name}", data))
            fig.clear()
    return out


def plot_files(doc: dict, out_dir) -> list[Path]:
    """Writes <kind>-<figure>.png and .svg for each figure of the document into out_dir
    (created if missing); returns the paths written ([] for kinds without figures)."""
    out_dir = Path(out_dir)
    figs = render(doc)
    if figs:
        out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in figs:
        for fmt, blob in data.items():
            p = out_dir / f"{name}.{fmt}"
            p.write_bytes(blob)
            paths.append(p)
    return paths
