"""Figures for result documents (matplotlib, Agg; imported only when a figure is drawn).

Every figure is built from the document alone, so a document from another machine draws the
same. Output is deterministic: fixed SVG ids, no dates in the metadata. Text in the SVGs is
drawn as paths, so an SVG looks the same without the fonts installed.
"""
from __future__ import annotations

import io
import math
from pathlib import Path

from .. import kinds
from ..errors import UsageError
from ..topology import human_bytes

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


def figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def titles(fig, ax, title: str, doc: dict, extra: str = "") -> None:
    fig.suptitle(title, x=0.01, ha="left", fontsize=11.5, fontweight="bold")
    sub = machine_line(doc) + (f"\n{extra}" if extra else "")
    ax.set_title(sub, loc="left", fontsize=8.5, color="0.3")


def ink(cmap, norm, v) -> str:
    r, g, b, _ = cmap(norm(v))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def heatmap(doc, title, rows, cols, values, *, unit, fmt, cmap, xlabel, ylabel,
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
    fig = figure(width, height)
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
                colour = ink(cm, norm, v)
                ax.text(j, i, format(v, fmt), ha="center", va="center" if not note else "bottom",
                        fontsize=size, color=colour, fontweight="bold")
                if note:
                    ax.text(j, i + 0.08, note, ha="center", va="top", fontsize=size - 3.5,
                            color=colour)
    cb = fig.colorbar(im, ax=ax, shrink=0.9, pad=0.02)
    cb.set_label(unit)
    titles(fig, ax, title, doc, extra)
    return fig


def node_label(doc, node: int) -> str:
    for n in (doc.get("machine") or {}).get("nodes", []):
        if n.get("id") == node and not n.get("cpus"):
            return f"node {node}\n(no CPUs)"
    return f"node {node}"


def pow2_ticks(ax, lo: float, hi: float) -> None:
    k0, k1 = math.floor(math.log2(lo)), math.ceil(math.log2(hi))
    step = 1 if k1 - k0 <= 12 else 2
    ks = [k for k in range(k0, k1 + 1) if k % step == 0]
    ax.set_xticks([2.0 ** k for k in ks], [human_bytes(2 ** k) for k in ks])
    from matplotlib.ticker import NullLocator
    ax.xaxis.set_minor_locator(NullLocator())


def log_y(ax) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def tail_y(ax, levels, lowest: float) -> None:
    """A y axis for a distribution's tail: the fraction of samples slower than x (1 - F) on a
    log scale, from all of them down to ``lowest``, ticked at the percentiles' levels
    (levels: [("p99", 0.99), ...]; p99 sits where 1 % are slower), so that p99 and p99.9 read
    as plainly as the median."""
    from matplotlib.ticker import NullLocator
    ax.set_yscale("log")
    ax.set_ylim(lowest, 1.15)
    ax.set_yticks([1 - q for _, q in levels],
                  [f"{k} ({100 * (1 - q):g} %)" for k, q in levels])
    ax.yaxis.set_minor_locator(NullLocator())
    for _, q in levels:
        ax.axhline(1 - q, color="0.85", linewidth=0.8, zorder=0)


def legend_outside(ax, **kw) -> None:
    """The legend right of the axes, where it cannot cover a line (constrained layout makes
    room for it)."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False,
              **kw)


def colours(n):
    from matplotlib import colormaps
    cm = colormaps["tab10"]
    return [cm(i % 10) for i in range(n)]


def render(doc: dict, formats=("png", "svg")) -> list[tuple[str, dict]]:
    """Every figure of the document: [(name, {format: bytes})], name = '<kind>-<figure>'."""
    mpl = _mpl()
    out = []
    with mpl.rc_context(_RC):
        for name, build in kinds.get(doc["kind"]).plots(doc):
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


def plot_files(doc: dict, out_dir, name: str | None = None) -> list[Path]:
    """Writes each figure of the document into out_dir (created if missing) as
    <name>-<kind>-<figure>.png and .svg, or <kind>-<figure>.* without a name; returns the
    paths written ([] for a document without figures). name (the CLI passes the input file's
    stem) keeps two documents of one kind in one folder from overwriting each other."""
    if name is not None and (not name or "/" in name or name in (".", "..")):
        raise UsageError(f"a plot name must be part of a file name (not empty, no '/', not "
                         f"'.' or '..'), not {name!r}")
    out_dir = Path(out_dir)
    figs = render(doc)
    if figs:
        out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fig_name, data in figs:
        stem = f"{name}-{fig_name}" if name is not None else fig_name
        for fmt, blob in data.items():
            p = out_dir / f"{stem}.{fmt}"
            p.write_bytes(blob)
            paths.append(p)
    return paths
