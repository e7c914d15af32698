"""One self-contained HTML page for one or more result documents: inline CSS, figures as
inline SVG, no script and no external reference, so it opens anywhere without a network.

The machine where the first document ran is one table at the top; each document gets its kind,
its label (file name, model), when it ran, the command, where its machine differs from the
first's, the noise, the warnings, the tables the CLI prints (same figures, same rounding) and
its figures.
"""
from __future__ import annotations

import argparse
import functools
import html
import re
import shlex
from pathlib import Path

from .. import kinds
from ..errors import UsageError
from .._version import __version__
from ..topology import format_list
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

def e(x) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def table(head, rows, *, caption=None, numeric=None, cls="") -> str:
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


def kv(pairs, cls: str = "kv") -> str:
    return (f'<table class="{cls}">' + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>"
                                           for k, v in pairs if v not in (None, "")) + "</table>")


def pct(x) -> str:
    return f"{100 * x:.1f} %"


# ------------------------------------------------------------------------ the envelope

def command_line(asked: dict) -> str:
    """The command as it ran, with every option it was given, as one line a shell can run
    again (shlex quoting): arguments in their place, options by their flag, unset ones left
    out. The CLI's parser says which is which; an option it does not know (a document from an
    older numaprobe) is shown as --name value."""
    cmd = asked.get("command") or "quick"
    actions = _cli_actions(cmd)
    args, flags, rest = [], [], []
    for k, v in (asked.get("options") or {}).items():
        a = actions.get(k)
        values = v if isinstance(v, list) else ([] if v is None else [v])
        if a is not None and not a.option_strings:
            (rest if a.nargs == argparse.REMAINDER else args).extend(_word(x) for x in values)
            continue
        flag = "--" + k.replace("_", "-")
        if a is not None:
            flag = next((o for o in a.option_strings if o.startswith("--")), a.option_strings[0])
            if a.nargs == 0:  # a switch: given when it is not its default
                if v != a.default:
                    flags.append(flag)
                continue
        if v is True:
            flags.append(flag)
        elif v is not False:
            for x in values:
                flags += [flag, _word(x)]
    words = ["numaprobe"] + ([] if cmd == "quick" else cmd.split()) + args + flags + rest
    return shlex.join(words)


def _word(x) -> str:
    """A value as the command line gives it: 2.0 as 2, and a float exactly as it was."""
    if isinstance(x, float) and float(f"{x:g}") == x:
        return f"{x:g}"
    return str(x)


@functools.lru_cache(maxsize=None)
def _cli_actions(command: str) -> dict:
    """The CLI's arguments of that subcommand ("quick": the top level; "fleet report": a
    subcommand's own), by their dest."""
    from ..cli import build_parser
    parser = build_parser()
    for word in ([] if command == "quick" else command.split()):
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction) and word in a.choices:
                parser = a.choices[word]
                break
    return {a.dest: a for a in parser._actions}


def _machine_pairs(m: dict) -> list[tuple[str, str]]:
    """The machine as (label, text) rows: the page's machine table, and what a later document
    is compared on to show only where its machine differs."""
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
    return [(k, v) for k, v in pairs if v not in (None, "")]


def _machine_differences(m: dict, first: dict) -> str:
    """A document's machine against the page's: the rows that differ, or one line."""
    ref, own = dict(_machine_pairs(first)), dict(_machine_pairs(m))
    diff = [(k, f"{v} (at the top: {ref[k]})" if k in ref else v)
            for k, v in own.items() if ref.get(k) != v]
    diff += [(k, "not recorded") for k in ref if k not in own]
    if not diff:
        return '<p class="small muted">machine: the one at the top of the page</p>'
    return ("<h3>machine: where it differs from the one at the top</h3>"
            + kv(diff, cls="kv machine-diff"))


def _noise(n, kind: str = "") -> str:
    if not n:
        if kind in ("infer", "sweep"):
            return ('<p class="muted">measured per layout: the "other load" column of the '
                    "layout table</p>")
        return '<p class="muted">not measured for this kind of run</p>'
    steal = n.get("steal_fraction")
    return (f"<p>other processes used {pct(n['foreign_fraction'])} and the hypervisor stole "
            f"{pct(steal) if steal is not None else '?'} of CPU time, over "
            f"{n['seconds']:.1f} s on {n['cpus']} CPU(s)</p>")


def _warnings(ws) -> str:
    if not ws:
        return '<p class="ok">none</p>'
    return '<ul class="warn">' + "".join(f"<li>{e(w)}</li>" for w in ws) + "</ul>"


# -------------------------------------------------------------------------- the tables

def sub(s: dict, fmt: str) -> str:
    return f"{format(s['min'], fmt)}\u2013{format(s['max'], fmt)}, CV {100 * s['cv']:.1f} %"


def node_head(machine: dict | None, node: int) -> str:
    for n in (machine or {}).get("nodes", []):
        if n.get("id") == node and not n.get("cpus"):
            return f"node {node} (no CPUs)"
    return f"node {node}"


def _tables(doc: dict) -> str:
    """The kind's own section (kinds.py); a document was validated when it was loaded, so a
    renderer that fails on one is a bug to report, not a shape to paper over."""
    return kinds.get(doc["kind"]).html(doc)


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

def label(doc: dict, name: str | None = None) -> str:
    """What tells a document from the others on the page: its file name (as given) and, for
    a workload, its model."""
    model = ((doc.get("result") or {}).get("model") or {}).get("name")
    return " \u00b7 ".join(x for x in (name, f"model {model}" if model else None) if x)


def _section(doc: dict, index: int, first: dict, name: str | None, with_plots: bool) -> str:
    kind = doc.get("kind", "?")
    tag = label(doc, name)
    out = [f'<section class="doc" id="doc-{index}">',
           f"<h2>{index}. {e(kinds.get(kind).title)} <span class='muted small'>"
           f"({e(kind)})</span>" + (f": <span class=label>{e(tag)}</span>" if tag else "")
           + "</h2>",
           f"<p>ran <b>{e(doc.get('created'))}</b> &middot; command "
           f"<code class=cmd>{e(command_line(doc.get('asked') or {}))}</code></p>",
           _machine_differences(doc.get("machine") or {}, first.get("machine") or {}),
           "<h3>noise</h3>", _noise(doc.get("noise"), kind),
           "<h3>warnings</h3>", _warnings(doc.get("warnings")),
           "<h3>results</h3>", _tables(doc)]
    if with_plots:
        out.append(_figures(doc, index))
    out.append("</section>")
    return "\n".join(out)


def html_text(docs: list[dict], *, plots_: bool = True, names: list[str] | None = None) -> str:
    """The page as a string (see html_report)."""
    if names is not None and len(names) != len(docs):
        raise UsageError(f"html_report got {len(docs)} document(s) but {len(names)} name(s): "
                         "give one name per document, or none")
    if plots_:
        plots._mpl()  # the one-line ImportError before any work
    names = list(names) if names is not None else [None] * len(docs)
    kinds_ = ", ".join(dict.fromkeys(d.get("kind", "?") for d in docs))
    title = f"numaprobe report: {kinds_}" if docs else "numaprobe report"
    nav = "".join(f'<li><a href="#doc-{i}">{e(kinds.get(d["kind"]).title)}'
                  + (f": {e(label(d, n))}" if label(d, n) else "")
                  + f"</a> <span class='muted small'>{e(d.get('created'))}, "
                  f"{e((d.get('machine') or {}).get('hostname'))}</span></li>"
                  for i, (d, n) in enumerate(zip(docs, names), 1))
    machine = ""
    if docs:
        machine = ("<h2>machine</h2><p class='small muted'>where document 1 ran"
                   + ("; each later document shows only where its machine differs"
                      if len(docs) > 1 else "") + "</p>"
                   + kv(_machine_pairs(docs[0].get("machine") or {}), cls="kv machine"))
    body = "\n".join(_section(d, i, docs[0], n, plots_)
                     for i, (d, n) in enumerate(zip(docs, names), 1))
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<h1>{e(title)}</h1>\n<p class='muted'>{len(docs)} result document(s), drawn by "
            f"numaprobe {e(__version__)}</p>\n<nav><ol>{nav}</ol></nav>\n{machine}\n{body}\n"
            "</body>\n</html>\n")


def html_report(docs: list[dict], path, *, plots: bool = True,
                names: list[str] | None = None) -> Path:
    """Writes one self-contained HTML page for the documents (in order) to path; returns it.
    plots=False leaves the figures out (and needs no matplotlib); names (the CLI passes the
    files' names) label each document, one name per document."""
    if isinstance(docs, dict):
        docs = [docs]
    text = html_text(list(docs), plots_=plots, names=names)
    from ..results import write_text
    write_text(path, text)
    return Path(path)
