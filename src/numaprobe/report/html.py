"""One self-contained HTML page for one or more result documents: inline CSS, figures as
inline SVG, no script and no external reference, so it opens anywhere without a network.

Each document gets its kind, when it ran, the command, the machine (a compact table), the
noise, the warnings, the tables the CLI prints (same figures, same rounding) and its figures.
"""
from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path

from .. import __version__
from ..topology import format_list, human_bytes
from . import plots

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;
 color:#1b1b1b;background:#fff;margin:0 auto;max-width:1080px;padding:16px 24px 48px}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:21px;margin:0 0 6px;padding-top:6px}
h3{font-size:16px;margin:18px 0 6px;color:#333}
section.doc{border-top:3px solid #2b5d8a;margin-top:28px;padding-top:8px}
.muted{color:#5a5a5a}.small{font-size:13px}
code,pre{font:13px/1.4 ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace}
code.cmd{background:#f3f5f7;border:1px solid #dde2e6;border-radius:3px;padding:2px 6px;
 display:inline-block;white-space:pre-wrap;word-break:break-word}
table{border-collapse:collapse;margin:4px 0 10px;font-size:14px}
th,td{border:1px solid #d5d9dd;padding:3px 9px;vertical-align:top}
th{background:#f1f4f7;text-align:left;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.n .sub{display:block;font-size:11.5px;color:#666}
table.kv th{width:150px;background:#f7f8fa;font-weight:600}
table.kv td{max-width:800px}
p.cap{font-weight:600;margin:12px 0 2px;color:#333}
ul.warn{background:#fff7e0;border:1px solid #efd27a;border-radius:4px;padding:8px 12px 8px 30px;
 margin:4px 0}
ul.warn li{margin:2px 0}
ul.diag{margin:2px 0 8px}
p.ok{color:#2c6e2f}
.faster{color:#1d6f2a;font-weight:600}.slower{color:#b02a1a;font-weight:600}
figure{margin:14px 0 18px;padding:0}
figure svg{max-width:100%;height:auto;display:block;border:1px solid #e6e8ea}
figcaption{font-size:12.5px;color:#555;margin-top:3px}
nav ol{margin:4px 0;padding-left:22px}
details{margin:6px 0}summary{cursor:pointer;color:#2b5d8a}
"""

_KIND_TITLE = {
    "quick": "quick check", "topology": "topology", "clock": "clock calibration",
    "latency": "idle memory latency", "latency-sweep": "latency vs working-set size",
    "bandwidth": "memory bandwidth", "bandwidth-threads": "bandwidth by threads",
    "bandwidth-peak": "aggregate (peak) bandwidth", "loaded-latency": "loaded latency",
    "c2c": "core-to-core latency", "infer": "inference layouts", "sweep": "instances x threads sweep",
    "compare": "comparison",
}


def e(x) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _table(head, rows, *, caption=None, numeric=None, cls="") -> str:
    """rows of cells; a cell is text (escaped) or ('raw', html). numeric: column indexes to
    right-align (default: all but the first)."""
    numeric = set(range(1, len(head))) if numeric is None else set(numeric)
    out = [f'<p class="cap">{e(caption)}</p>'] if caption else []
    out.append(f'<table class="{cls}">' if cls else "<table>")
    out.append("<tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>")
    for row in rows:
        tds = []
        for i, c in enumerate(row):
            body = c[1] if isinstance(c, tuple) and c and c[0] == "raw" else e(c)
            tds.append(f'<td class="n">{body}</td>' if i in numeric else f"<td>{body}</td>")
        out.append("<tr>" + "".join(tds) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _kv(pairs) -> str:
    return ('<table class="kv">' + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>"
                                           for k, v in pairs if v not in (None, "")) + "</table>")


def _pct(x) -> str:
    return f"{100 * x:.1f} %"


# ------------------------------------------------------------------------ the envelope

def command_line(asked: dict) -> str:
    """The command as it ran, with every option it was given (defaults included)."""
    cmd = asked.get("command") or "quick"
    words = ["numaprobe"] + ([] if cmd == "quick" else [cmd])
    for k, v in (asked.get("options") or {}).items():
        flag = "--" + k.replace("_", "-")
        if v is None or v is False or v == []:
            continue
        if v is True:
            words.append(flag)
        elif isinstance(v, list):
            for x in v:
                words += [flag, str(x)]
        else:
            words += [flag, str(v)]
    return " ".join(w if re.fullmatch(r"[\w@%+=:,./-]+", w) else repr(w) for w in words)


def _machine(m: dict) -> str:
    nodes = "; ".join(
        f"node {n['id']}: " + (f"CPUs {format_list(n['cpus'])}" if n.get("cpus") else "no CPUs")
        + ("" if n.get("memory_node", True) else ", no memory") for n in m.get("nodes", []))
    dist = " / ".join(" ".join(str(x) for x in row) for row in m.get("distances", []))
    clock = m.get("clock")
    v = m.get("versions") or {}
    pairs = [
        ("host", m.get("hostname")),
        ("CPU", f"{m.get('cpu_model')} ({m.get('arch', '?')}"
                + (", virtual machine)" if m.get("virtualized") else ")")),
        ("kernel", m.get("kernel")),
        ("NUMA nodes", nodes),
        ("distances (SLIT)", dist),
        ("usable CPUs", f"{format_list(m.get('usable_cpus', []))} of {m.get('online_cpus', '?')} online"
                        if m.get("usable_cpus") is not None else None),
        ("memory settings", f"THP {m.get('thp')}, NUMA balancing {m.get('numa_balancing')}"),
        ("CPU governor", ", ".join(sorted(set(m.get("governors") or []))) or "not reported"),
        ("clock", (f"{clock['kind']} {clock['hz'] / 1e6:.1f} MHz" if clock else "not calibrated")
                  + (f"; clocksource {m['clocksource']}" if m.get("clocksource") else "")),
        ("versions", ", ".join(f"{k} {x}" for k, x in v.items() if x)),
        ("topology digest", m.get("topology_digest")),
    ]
    return _kv(pairs)


def _noise(n, kind: str = "") -> str:
    if not n:
        if kind in ("infer", "sweep"):
            return ('<p class="muted">measured per layout: the "other load" column of the '
                    "layout table</p>")
        return '<p class="muted">not measured for this kind of run</p>'
    steal = n.get("steal_fraction")
    return (f"<p>other processes used {_pct(n['foreign_fraction'])} and the hypervisor stole "
            f"{_pct(steal) if steal is not None else '?'} of CPU time, over "
            f"{n['seconds']:.1f} s on {n['cpus']} CPU(s)</p>")


def _warnings(ws) -> str:
    if not ws:
        return '<p class="ok">none</p>'
    return '<ul class="warn">' + "".join(f"<li>{e(w)}</li>" for w in ws) + "</ul>"


# -------------------------------------------------------------------------- the tables

def _sub(s: dict, fmt: str) -> str:
    return f"{format(s['min'], fmt)}\u2013{format(s['max'], fmt)}, CV {100 * s['cv']:.1f} %"


def _node_head(machine: dict | None, node: int) -> str:
    for n in (machine or {}).get("nodes", []):
        if n.get("id") == node and not n.get("cpus"):
            return f"node {node} (no CPUs)"
    return f"node {node}"


def _latency_matrix(r: dict, machine: dict | None = None) -> str:
    cells = {(c["cpu_node"], c["mem_node"]): c for c in r.get("cells", [])}
    dist, hmat = r.get("distances") or [], r.get("hmat_read_latency_ns") or []
    rows = []
    for i, a in enumerate(r["cpu_nodes"]):
        cpu = next((c["cpu"] for (x, _), c in cells.items() if x == a), "?")
        row = [f"node {a} (CPU {cpu})"]
        for j, b in enumerate(r["mem_nodes"]):
            c = cells.get((a, b))
            if c is None:
                row.append("-")
                continue
            d = dist[i][j] if i < len(dist) and j < len(dist[i]) else None
            h = hmat[i][j] if i < len(hmat) and j < len(hmat[i]) else None
            extra = f" [{d}" + (f"|{h}]" if h else "]") if d is not None else ""
            row.append(("raw", f"{c['ns']['median']:.1f}{e(extra)}"
                               f"<span class=sub>{e(_sub(c['ns'], '.1f'))}</span>"))
        rows.append(row)
    return _table(["CPU node \\ memory node"] + [_node_head(machine, b) for b in r["mem_nodes"]],
                  rows, caption="idle latency, ns per load (median; [SLIT distance|HMAT ns where "
                          "declared]; below: min\u2013max and CV of the samples)")


def _bandwidth_matrix(r: dict, machine: dict | None = None) -> str:
    cells = {(c["cpu_node"], c["mem_node"]): c for c in r.get("cells", [])}
    if not cells:
        return '<p class="muted">no cells measured</p>'
    isa = ", ".join(sorted({c.get("isa", "?") for c in cells.values()}))
    rows = []
    for a in r["cpu_nodes"]:
        c0 = next((c for (x, _), c in cells.items() if x == a), None)
        row = [f"node {a} ({len(c0['cpus']) if c0 else '?'} threads)"]
        for b in r["mem_nodes"]:
            c = cells.get((a, b))
            row.append(("raw", f"{c['gbs']['median']:.1f}<span class=sub>{e(_sub(c['gbs'], '.1f'))}"
                               "</span>") if c else "-")
        rows.append(row)
    return _table(["CPU node \\ memory node"] + [_node_head(machine, b) for b in r["mem_nodes"]],
                  rows, caption=f"{r['kernel']} bandwidth, GB/s (median; {isa}; threads = usable CPUs "
                          "of the CPU node)")


def _c2c(r: dict) -> str:
    s = r.get("summary") or {}
    out = []
    if s:
        out.append(f"<p>min <b>{s['min']['ns']:.1f} ns</b> (CPUs {s['min']['pair'][0]}-"
                   f"{s['min']['pair'][1]}), median <b>{s['median']:.1f} ns</b>, max "
                   f"<b>{s['max']['ns']:.1f} ns</b> (CPUs {s['max']['pair'][0]}-"
                   f"{s['max']['pair'][1]}) over {s['pairs']} pair(s); the line lived on memory "
                   f"node {e(r.get('node'))}</p>")
    cpus = r.get("cpus") or []
    ns = {}
    for p in r.get("pairs") or []:
        ns[(p["a"], p["b"])] = ns[(p["b"], p["a"])] = p["ns"]["median"]
    table = _table(["CPU"] + [str(c) for c in cpus],
                   [[str(a)] + [f"{ns[(a, b)]:.1f}" if (a, b) in ns and a != b else "-"
                                for b in cpus] for a in cpus],
                   caption="core-to-core latency, ns one way (median)")
    out.append(table if len(cpus) <= 16 else
               f"<details><summary>the full {len(cpus)} x {len(cpus)} matrix</summary>{table}</details>")
    return "\n".join(out)


def _latency_sweep(r: dict) -> str:
    levels = _table(["level", "latency ns", "effective size", "reported size"],
                    [[lv["name"], f"{lv['ns']:.2f}",
                      human_bytes(lv["effective_size"]) if lv.get("effective_size") else "-",
                      human_bytes(lv["reported_size"]) if lv.get("reported_size") else "-"]
                     for lv in r.get("levels") or []],
                    caption="levels found (effective size vs what the topology reports)")
    points = _table(["size", "median ns", "min", "max", "CV"],
                    [[human_bytes(p["size"]), f"{p['ns']['median']:.2f}", f"{p['ns']['min']:.2f}",
                      f"{p['ns']['max']:.2f}", _pct(p["ns"]["cv"])] for p in r.get("points") or []])
    return (f"<p>CPU {e(r.get('cpu'))}, memory node {e(r.get('mem_node'))}, "
            f"{e(r.get('chain'))} chain</p>{levels}\n<details><summary>all "
            f"{len(r.get('points') or [])} working-set sizes</summary>{points}</details>")


def _loaded(r: dict) -> str:
    traffic = format_list(r.get("traffic_cpus") or []) or "none"
    return _table(["delay", "latency ns", "traffic GB/s", "latency min\u2013max"],
                  [[str(p["delay"]), f"{p['latency_ns']['median']:.1f}", f"{p['gbs']:.2f}",
                    f"{p['latency_ns']['min']:.1f}\u2013{p['latency_ns']['max']:.1f}"]
                   for p in r.get("points") or []],
                  caption=f"loaded latency: chase on CPU {r.get('chase_cpu')}, traffic from CPUs "
                          f"{traffic}, memory node {r.get('mem_node')}")


def _threads(r: dict) -> str:
    runs = r.get("runs") or []
    first = runs[0] if runs else {}
    return _table(["threads", "CPUs", "GB/s (median)", "min", "max", "CV"],
                  [[str(len(u["cpus"])), format_list(u["cpus"]), f"{u['gbs']['median']:.1f}",
                    f"{u['gbs']['min']:.1f}", f"{u['gbs']['max']:.1f}", _pct(u["gbs"]["cv"])]
                   for u in runs],
                  caption=f"{first.get('kernel', '?')} bandwidth by threads, CPU node "
                          f"{r.get('cpu_node')} ({first.get('isa', '?')})")


def _peak(r: dict) -> str:
    g = r["gbs"]
    return (f"<p>aggregate {e(r['kernel'])} bandwidth, all {len(r['cpus'])} usable CPUs on "
            f"their own nodes ({e(r.get('isa'))}): <b>{g['median']:.1f} GB/s</b> (min "
            f"{g['min']:.1f}, max {g['max']:.1f}, CV {100 * g['cv']:.1f} %, n={g['n']})</p>")


def _clock(r: dict) -> str:
    inv = {True: "invariant", False: "NOT invariant", None: "invariance unknown"}[r.get("invariant")]
    pairs = [("counter", f"{r['kind']} ({inv}), {r['hz'] / 1e6:.3f} MHz"),
             ("calibrations agree within", f"{100 * r['agreement']:.4f} %"),
             ("declared frequency", f"{r['declared_hz'] / 1e6:.3f} MHz" if r.get("declared_hz")
              else "none (no CPUID 0x15 or hypervisor timing leaf)"),
             ("read overhead", f"{r['overhead_ns']:.1f} ns"),
             ("resolution", f"{r['resolution_ns']:.2f} ns")]
    return _kv(pairs)


def _topology(r: dict) -> str:
    gib = 2 ** 30
    nodes = _table(["node", "CPUs", "memory GiB", "free GiB", "distances"],
                   [[str(n["id"]), format_list(n["cpus"]) or "none",
                     f"{n['memory_total'] / gib:.1f}", f"{n['memory_free'] / gib:.1f}",
                     " ".join(map(str, n.get("distances") or []))] for n in r.get("nodes", [])],
                   caption="NUMA nodes")
    caches = {}
    for c in r.get("caches", []):
        key = (c["level"], c["type"], c["size"])
        caches[key] = caches.get(key, 0) + 1
    ctab = _table(["level", "type", "size", "instances"],
                  [[f"L{lv}", t, human_bytes(s), str(k)] for (lv, t, s), k in sorted(caches.items())],
                  caption="caches", numeric=(2, 3))
    s, a = r.get("settings") or {}, r.get("allowed") or {}
    kv = _kv([("allowed CPUs", format_list(a.get("cpus", []))),
              ("allowed memory nodes", format_list(a.get("mems", []))),
              ("cgroup", f"{a.get('cgroup')} (v{a.get('cgroup_version')})"),
              ("SMT active", s.get("smt_active")),
              ("isolated CPUs", format_list(s.get("isolated") or []))])
    return nodes + ctab + kv


def _infer(r: dict, kind: str) -> str:
    asked = r.get("asked") or {}
    mode = asked.get("mode", "closed")
    model = r.get("model") or {}
    out = [f"<p>model <b>{e(model.get('name'))}</b> ({e(mode)} loop, {asked.get('duration', 0):g} s "
           f"x {e(asked.get('rounds'))} round(s)): {e(model.get('description'))}</p>"]
    rows, weak = [], False
    for k, d in enumerate(r.get("layouts") or []):
        t, lat = d["throughput"], d["latency"]

        def p(key):
            nonlocal weak
            if not lat.get(key):
                return "-"
            mark = "" if lat[key].get("enough_samples", True) else "\u2020"
            weak = weak or bool(mark)
            return f"{lat[key]['ms']:.2f}{mark}"
        vs = d.get("vs_first") or {}
        ratio = vs.get("throughput_ratio") if mode == "closed" else vs.get("p50_ratio")
        if ratio:
            verdict = vs.get("verdict", "")
            cls = "faster" if verdict == "faster" else ("slower" if verdict == "slower" else "")
            vs_cell = ("raw", f"{ratio[0]:.2f}x <span class='{cls}'>{e(verdict)}</span>"
                              f"<span class=sub>[{ratio[1]:.2f}, {ratio[2]:.2f}]</span>")
        else:
            vs_cell = "(baseline)" if k == 0 else "-"
        cpu = f"{d['cpu_s_per_inference'] * 1e3:.1f}m" if d.get("cpu_s_per_inference") else "-"
        noise = d.get("noise")
        rows.append([d["layout"]["name"], f"{t['per_s']:.1f}",
                     f"[{t['ci'][0]:.1f},{t['ci'][1]:.1f}]", p("p50"), p("p90"), p("p99"), cpu,
                     _pct(noise["foreign_fraction"]) if noise else "-", vs_cell])
    out.append(_table(["layout", "inf/s", "95% CI", "p50 ms", "p90", "p99", "CPU s",
                       "other load", "vs first"], rows,
                      caption="per layout: throughput (mean, 95 % CI), latency percentiles, CPU "
                              "seconds per inference, other processes' share of the CPUs, and "
                              "the layout against the first"))
    if weak:
        out.append('<p class="small muted">\u2020 too few samples for this percentile to be more '
                   "than the maximum; run longer</p>")
    out.append("<h4>layouts and diagnoses</h4>")
    for d in r.get("layouts") or []:
        desc = d.get("description", "")
        desc = desc.split(": ", 1)[1] if ": " in desc else desc
        items = "".join(f"<li>{e(x)}</li>" for x in d.get("diagnoses") or [])
        if d.get("failures"):
            items += f"<li><b>failed:</b> {e('; '.join(d['failures']))}</li>"
        out.append(f"<p><b>{e(d['layout']['name'])}</b>: {e(desc)}</p>"
                   + (f'<ul class="diag">{items}</ul>' if items else
                      '<p class="small muted">no diagnoses</p>'))
    if r.get("error"):
        out.append(f'<ul class="warn"><li>the run stopped early: {e(r["error"])}</li></ul>')
    sw = r.get("sweep")
    if kind == "sweep" and sw:
        rows = []
        for c in sw.get("curve") or []:
            rows.append([c["layout"], str(c["instances"]), str(c["cpus"]), f"{c['throughput']:.1f}",
                         f"{c['p50_ms']:.2f}" if c.get("p50_ms") is not None else "-",
                         f"{c['p99_ms']:.2f}" if c.get("p99_ms") is not None else "-",
                         f"{100 * c['scaling_efficiency']:.0f}%"
                         if c.get("scaling_efficiency") else "-"])
        out.append(_table(["layout", "instances", "CPUs", "inf/s", "p50 ms", "p99 ms",
                           "efficiency"], rows,
                          caption="throughput by instances (scaling efficiency vs one thread)"))
        bound = f" (p99 \u2264 {sw['p99_max_ms']} ms)" if sw.get("p99_max_ms") else ""
        stop = sw.get("stops_rising_after") or "it did not stop"
        out.append(f"<p>throughput stops rising after: <b>{e(stop)}</b><br>"
                   f"best for throughput: <b>{e(sw.get('best_throughput'))}</b>; best for latency"
                   f"{e(bound)}: <b>{e(sw.get('best_latency') or 'none meets the bound')}</b></p>")
    return "\n".join(out)


def _quick(r: dict, machine: dict | None = None) -> str:
    out = []
    c = r.get("clock")
    if c:
        out.append(f"<p>clock: {e(c['kind'])} {c['hz'] / 1e6:.1f} MHz, read {c['overhead_ns']:.1f} ns,"
                   f" calibrations agree within {100 * c['agreement']:.4f} %</p>")
    if r.get("latency"):
        out.append(_latency_matrix(r["latency"], machine))
    for m in (r.get("bandwidth") or {}).values():
        out.append(_bandwidth_matrix(m, machine))
    out.append(_c2c(r["c2c"]) if r.get("c2c") else "<p class=muted>no core-to-core latency "
                                                    "(one usable CPU)</p>")
    if r.get("seconds") is not None:
        out.append(f"<p class='small muted'>the quick check took {r['seconds']:.1f} s</p>")
    return "\n".join(out)


def _compare(r: dict) -> str:
    out = []
    for c in r.get("comparisons") or []:
        rows = [[f["figure"], f"{f['a']:.4g}", f"{f['b']:.4g}", f"{f['change_pct']:+.1f}%",
                 f"{f['ratio']:.3f}" + (f" [{f['ci'][0]:.3f},{f['ci'][1]:.3f}]" if f.get("ci") else ""),
                 f["verdict"]] for f in c.get("figures") or []]
        out.append(_table(["figure", "A", "B", "change", "ratio [95% CI]", "verdict"], rows,
                          caption=f"{c['b']} against {c['a']} ({r.get('kind', '?')})"))
    return "\n".join(out) or "<p class=muted>nothing compared</p>"


def _tables(doc: dict) -> str:
    kind, r, m = doc["kind"], doc.get("result") or {}, doc.get("machine")
    try:
        if kind == "quick":
            return _quick(r, m)
        if kind == "latency":
            return _latency_matrix(r, m)
        if kind == "bandwidth":
            return _bandwidth_matrix(r, m)
        if kind == "c2c":
            return _c2c(r)
        if kind == "latency-sweep":
            return _latency_sweep(r)
        if kind == "loaded-latency":
            return _loaded(r)
        if kind == "bandwidth-threads":
            return _threads(r)
        if kind == "bandwidth-peak":
            return _peak(r)
        if kind == "clock":
            return _clock(r)
        if kind == "topology":
            return _topology(r)
        if kind in ("infer", "sweep"):
            return _infer(r, kind)
        if kind == "compare":
            return _compare(r)
    except (KeyError, TypeError, IndexError, ValueError) as err:
        return (f'<ul class="warn"><li>this {e(kind)} result has an unexpected shape ({e(err)}); '
                f"its raw JSON follows</li></ul><pre>{e(json.dumps(r, indent=1)[:20000])}</pre>")
    return f"<pre>{e(json.dumps(r, indent=1)[:20000])}</pre>"


# ------------------------------------------------------------------------------- figures

def inline_svg(svg: bytes, prefix: str) -> str:
    """An SVG file made fit to sit in an HTML page: no XML prolog, DOCTYPE, comments or RDF
    metadata (they carry URLs), and its ids prefixed so that several SVGs on one page never
    resolve each other's references."""
    text = svg.decode("utf-8")
    text = re.sub(r"<\?xml.*?\?>", "", text, flags=re.S)
    text = re.sub(r"<!DOCTYPE.*?>", "", text, flags=re.S)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', text)
    text = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}{m.group(1)}"', text)
    text = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m.group(1)})", text)
    return text.strip()


def _figures(doc: dict, index: int) -> str:
    figs = plots.render(doc, formats=("svg",))
    if not figs:
        return ""
    out = ["<h3>figures</h3>"]
    for k, (name, data) in enumerate(figs):
        out.append(f"<figure>{inline_svg(data['svg'], f'd{index}f{k}-')}"
                   f"<figcaption>{e(name)}</figcaption></figure>")
    return "\n".join(out)


# ---------------------------------------------------------------------------------- page

def _section(doc: dict, index: int, first: dict | None, with_plots: bool) -> str:
    kind = doc.get("kind", "?")
    out = [f'<section class="doc" id="doc-{index}">',
           f"<h2>{index}. {e(_KIND_TITLE.get(kind, kind))} <span class='muted small'>"
           f"({e(kind)})</span></h2>",
           f"<p>ran <b>{e(doc.get('created'))}</b> &middot; command "
           f"<code class=cmd>{e(command_line(doc.get('asked') or {}))}</code></p>"]
    if first is not None and first is not doc:
        from ..results import fingerprint_differences
        try:
            diffs = fingerprint_differences(first, doc)
        except (KeyError, TypeError):
            diffs = []
        if diffs:
            out.append("<p class=small>machine differs from document 1's: "
                       + e("; ".join(diffs)) + "</p>")
    out += ["<h3>machine</h3>", _machine(doc.get("machine") or {}),
            "<h3>noise</h3>", _noise(doc.get("noise"), kind),
            "<h3>warnings</h3>", _warnings(doc.get("warnings")),
            "<h3>results</h3>", _tables(doc)]
    if with_plots:
        out.append(_figures(doc, index))
    out.append("</section>")
    return "\n".join(out)


def html_text(docs: list[dict], *, plots_: bool = True) -> str:
    """The page as a string (see html_report)."""
    if plots_:
        plots._mpl()  # the one-line ImportError before any work
    kinds = ", ".join(dict.fromkeys(d.get("kind", "?") for d in docs))
    title = f"numaprobe report: {kinds}" if docs else "numaprobe report"
    nav = "".join(f'<li><a href="#doc-{i}">{e(_KIND_TITLE.get(d.get("kind"), d.get("kind")))}'
                  f"</a> <span class='muted small'>{e(d.get('created'))}, "
                  f"{e((d.get('machine') or {}).get('hostname'))}</span></li>"
                  for i, d in enumerate(docs, 1))
    body = "\n".join(_section(d, i, docs[0], plots_) for i, d in enumerate(docs, 1))
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<h1>{e(title)}</h1>\n<p class='muted'>{len(docs)} result document(s), drawn by "
            f"numaprobe {e(__version__)}</p>\n<nav><ol>{nav}</ol></nav>\n{body}\n</body>\n</html>\n")


def html_report(docs: list[dict], path, *, plots: bool = True) -> Path:
    """Writes one self-contained HTML page for the documents (in order) to path; returns it.
    plots=False leaves the figures out (and needs no matplotlib)."""
    if isinstance(docs, dict):
        docs = [docs]
    text = html_text(list(docs), plots_=plots)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
