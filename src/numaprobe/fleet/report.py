"""The fleet report (``numaprobe fleet report DIR``): one row per host, the outliers on each
figure, and the settings that may explain them.

Input: numaprobe result documents, one or more per host (a quick check, probes, infer, sweep
or tune), gathered by any means. A host is the ``hostname`` its documents' machine
fingerprint records. Its figures are those its documents' kinds compare (kinds.Figure: the
same names across machines, "latency node 0 -> node 1", "read bandwidth node 0 -> node 0",
"c2c median", an inference layout's throughput), plus, for inference, the best layout's
throughput ("best throughput").

The outlier rule, per figure over the hosts that have it: the median m and the median
absolute deviation MAD; a host's robust z = 0.6745 (x - m) / MAD (Iglewicz and Hoaglin), an
outlier when |z| > Z_OUT (3.5). The MAD has a floor of MAD_FLOOR (1 %) of |m|, so that a fleet
whose hosts agree to the last digit does not call a 0.1 % difference an outlier. Fewer than
MIN_HOSTS (3) hosts name no outliers: there is no majority to differ from.

Settings (the fingerprint: CPU model and units, kernel, THP, NUMA balancing, governor,
topology, node sizes, usable CPUs, cgroup limits, virtualisation): each host's value against
the fleet's most common one; a host that differs is flagged even when no figure of its
stands out yet, and each outlier lists its host's differences as what may explain it, and
that its run was noisy where other work took more than stats.MAX_NOISE of its CPUs.
"""
from __future__ import annotations

import json
import os
import statistics
from collections import Counter
from pathlib import Path

from .. import kinds, results, stats
from ..noise import others_share
from ..words import plural
from .task import SETTLE_WINDOW_S
from ..errors import UsageError
from ..kinds import Kind, register

__all__ = ["Z_OUT", "MAD_FLOOR", "MIN_HOSTS", "SETTINGS", "outliers", "fleet_report",
           "load_dir"]

Z_OUT = 3.5
MAD_FLOOR = 0.01
MIN_HOSTS = 3
# Fingerprint keys compared across hosts, with the words for them.
SETTINGS = {"cpu_model": "CPU model", "cpu_features": "CPU units", "kernel": "kernel",
            "thp": "THP", "numa_balancing": "NUMA balancing", "governors": "CPU governor",
            "topology_digest": "topology (nodes, CPUs, SLIT)", "memory_nodes": "node memory",
            "usable_cpus": "usable CPUs", "cgroup": "cgroup limits",
            "virtualized": "virtualisation", "arch": "architecture"}


def outliers(values: dict, *, z_out: float = Z_OUT, floor: float = MAD_FLOOR) -> dict:
    """The rule on one figure: ``values`` host -> value. Returns {"median", "mad", "z":
    host -> robust z, "outliers": [hosts]} (no outliers with fewer than MIN_HOSTS)."""
    xs = [float(v) for v in values.values()]
    if not xs:
        return {"median": None, "mad": None, "z": {}, "outliers": []}
    m = statistics.median(xs)
    mad = statistics.median(abs(x - m) for x in xs)
    scale = max(mad, floor * abs(m)) or 1e-300
    z = {h: 0.6745 * (float(v) - m) / scale for h, v in values.items()}
    out = [h for h, s in z.items() if abs(s) > z_out] if len(xs) >= MIN_HOSTS else []
    return {"median": m, "mad": mad, "z": z, "outliers": sorted(out)}


def _setting(machine: dict, key: str):
    v = machine.get(key)
    return json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else v


def _words(v) -> str:
    if isinstance(v, str) and v[:1] in "[{":
        try:
            v = json.loads(v)
        except ValueError:
            pass
    if isinstance(v, list) and len(v) > 6:
        return f"{len(v)} items"
    return str(v)


def load_dir(path: str | os.PathLike) -> tuple[list[tuple[str, dict]], list[dict]]:
    """The result documents under ``path`` (*.json, not recursive): ([(file, doc)], skipped
    [{"file", "why"}]). A file that is not a numaprobe document is skipped, saying why."""
    root = Path(path)
    if not root.is_dir():
        raise UsageError(f"{path}: not a directory (fleet report reads a directory of result "
                         "documents, one or more per host, e.g. from numaprobe ... -o host.json)")
    docs, skipped = [], []
    for p in sorted(root.glob("*.json")):
        try:
            doc = results.load(p)
        except (UsageError, OSError) as e:
            skipped.append({"file": p.name, "why": str(e)})
            continue
        if doc["kind"] == "fleet":
            skipped.append({"file": p.name, "why": "a fleet report itself, not a host's"})
            continue
        docs.append((p.name, doc))
    if not docs:
        raise UsageError(f"{path}: no numaprobe result documents (*.json) in it"
                         + (f"; skipped {len(skipped)}: " + "; ".join(
                             f"{s['file']}: {s['why'][:80]}" for s in skipped[:3])
                            if skipped else ""))
    return docs, skipped


def _host_figures(doc: dict) -> dict:
    """A document's figures by name (name -> (value, unit, higher_is_better))."""
    out = {}
    try:
        kind = kinds.get(doc["kind"])
    except ValueError:
        return out
    figs = kind.figures(doc) if kind.figures else []
    for f in figs:
        if f.family == "primary":
            out[f.name] = (f.value, f.unit, f.higher_is_better)
    if doc["kind"] in ("infer", "sweep"):
        best = max((d["throughput"]["per_s"] for d in doc["result"].get("layouts") or []
                    if d.get("throughput")), default=None)
        if best:
            out["best throughput"] = (best, "inferences/s", True)
    if doc["kind"] == "tune":
        # the final layout's, or where the ladder kept nothing, the one it started from
        r = doc["result"]
        best = ((r.get("final") or {}).get("best") or r.get("start")
                or next((s["best"] for s in r.get("steps") or [] if s.get("best")), None))
        if best and best.get("throughput"):
            out["best throughput"] = (best["throughput"], "inferences/s", True)
    if doc["kind"] in ("quick", "c2c"):
        c2c = doc["result"]["c2c"] if doc["kind"] == "quick" else doc["result"]
        if c2c and c2c.get("summary"):
            out["c2c median"] = (c2c["summary"]["median"], "ns", False)
    return out


def fleet_report(docs: list[tuple[str, dict]], skipped: list | None = None, *,
                 z_out: float = Z_OUT, hosts: list[str] | None = None) -> dict:
    """The fleet report (see the module's docstring) from [(file, document)]. ``hosts``: each
    document's host, where not its fingerprint's host name (the runner's node labels: two Ray
    nodes may share a host name)."""
    labels = hosts
    hosts: dict[str, dict] = {}
    for i, (name, doc) in enumerate(docs):
        host = (labels[i] if labels else None) or (doc.get("machine") or {}).get("hostname") \
            or Path(name).stem
        h = hosts.setdefault(host, {"host": host, "files": [], "figures": {},
                                    "machine": doc.get("machine") or {}, "documents": []})
        h["files"].append(name)
        h["documents"].append(doc)
        for k, v in _host_figures(doc).items():
            h["figures"][k] = v  # a later document of the host replaces an earlier figure
    names = sorted({k for h in hosts.values() for k in h["figures"]})
    figures = []
    for k in names:
        vals = {h: x["figures"][k][0] for h, x in hosts.items() if k in x["figures"]}
        unit, higher = next((x["figures"][k][1], x["figures"][k][2]) for x in hosts.values()
                            if k in x["figures"])
        rule = outliers(vals, z_out=z_out)
        figures.append({"name": k, "unit": unit, "higher_is_better": higher,
                        "hosts": len(vals), "median": rule["median"], "mad": rule["mad"],
                        "z": rule["z"], "outliers": [
                            {"host": o, "value": vals[o], "z": rule["z"][o],
                             "worse": (vals[o] < rule["median"]) == higher}
                            for o in rule["outliers"]]})
    settings = []
    for key, label in SETTINGS.items():
        have = {h: _setting(x["machine"], key) for h, x in hosts.items() if key in x["machine"]}
        if len(have) < 2:
            continue
        counts = Counter(have.values())
        majority, n = counts.most_common(1)[0]
        odd = sorted(h for h, v in have.items() if v != majority)
        if odd and n > len(have) / 2:
            settings.append({"key": key, "label": label, "majority": _words(majority),
                             "of": len(have), "differ": [
                                 {"host": h, "value": _words(have[h])} for h in odd]})
    why = {}
    for s in settings:
        for d in s["differ"]:
            why.setdefault(d["host"], []).append(
                f"{s['label']}: {d['value']} (the fleet's majority: {s['majority']})")
    noisy = {}  # a busy machine is a reason too, though not a setting
    for h, x in hosts.items():
        busy = max((others_share(doc.get("noise")) or 0.0 for doc in x["documents"]),
                   default=0.0)
        if busy > stats.MAX_NOISE:
            noisy[h] = [f"its run was noisy: other processes or the hypervisor took "
                        f"{100 * busy:.0f} % of its CPUs (more than {100 * stats.MAX_NOISE:g} %)"]
    for f in figures:
        for o in f["outliers"]:
            o["may_explain"] = why.get(o["host"], []) + noisy.get(o["host"], [])
    return {"hosts": [{"host": h["host"], "files": h["files"],
                       "figures": {k: v[0] for k, v in h["figures"].items()},
                       "differs": why.get(h["host"], []), "documents": h["documents"]}
                      for h in hosts.values()],
            "figures": figures, "settings": settings, "skipped": skipped or [],
            "rule": {"z_out": z_out, "mad_floor": MAD_FLOOR, "min_hosts": MIN_HOSTS,
                     "words": f"robust z = 0.6745 (x - median) / MAD over the hosts, outlier "
                              f"beyond {z_out:g} (MAD at least {100 * MAD_FLOOR:g} % of the "
                              f"median; {MIN_HOSTS} hosts or more)"}}


# ------------------------------------------------------------------------ the result kind

KEY = ("latency", "read bandwidth", "copy_nt bandwidth", "c2c median", "best throughput")


def _key_figures(r: dict) -> list[dict]:
    """The report's columns: the key figures (latency per node pair, read and copy_nt
    bandwidth, c2c median, best throughput) that the hosts have, in that order."""
    return [f for prefix in KEY for f in r["figures"] if f["name"].startswith(prefix)]


def _short(name: str) -> str:
    return (name.replace("bandwidth node ", "bw ").replace("latency node ", "lat ")
            .replace(" -> node ", "->").replace("best throughput", "best/s")
            .replace("c2c median", "c2c"))


def fleet_text(doc: dict) -> str:
    r = doc["result"]
    cols = _key_figures(r)
    out = {(o["host"], f["name"]) for f in r["figures"] for o in f["outliers"]}
    width = max([len(h["host"]) for h in r["hosts"]] + [4])
    lines = [f"fleet: {plural(len(r['hosts']), 'host')}; outliers by {r['rule']['words']}"]
    head = "host".ljust(width) + "".join(f"{_short(f['name'])[:15]:>16}" for f in cols)
    lines.append(head)
    for h in r["hosts"]:
        row = h["host"].ljust(width)
        for f in cols:
            v = h["figures"].get(f["name"])
            cell = "-" if v is None else f"{v:.4g}" + ("!" if (h["host"], f["name"]) in out
                                                       else "")
            row += f"{cell:>16}"
        lines.append(row)
    if out:
        lines.append("!: an outlier on that figure")
    for f in r["figures"]:
        for o in f["outliers"]:
            side = "worse" if o["worse"] else "better"
            lines.append(f"{o['host']}: {f['name']} {o['value']:.4g} {f['unit']} against the "
                         f"fleet's median {f['median']:.4g} (z {o['z']:+.1f}, {side})"
                         + (f"; may explain it: {'; '.join(o['may_explain'])}"
                            if o["may_explain"] else "; no setting differs from the fleet's "
                            "and its run was quiet"))
    for s in r["settings"]:
        lines.append(f"{s['label']} differs from the fleet's majority ({s['majority']}, "
                     f"{s['of'] - len(s['differ'])} of {s['of']} hosts): "
                     + ", ".join(f"{d['host']} {d['value']}" for d in s["differ"]))
    for s in r["skipped"]:
        lines.append(f"skipped {s['file']}: {s['why']}")
    return "\n".join(lines + _runs_text(r))


def _runs_text(r: dict) -> list[str]:
    """The runs' lines for the fleet report's text."""
    if not r.get("runs"):
        return []
    c = r["cluster"]
    lines = [f"ran '{r['command']}' on {c['nodes']} node(s) of {c['address']} "
             f"({c['machines']} machine(s); nodes of one machine one at a time)"]
    for x in r["runs"]:
        line = f"  {x['host']}: {x['state']}"
        if x["seconds"] is not None:
            line += f" in {x['seconds']:.1f} s"
        if x["why"]:
            line += f": {x['why']}"
        st = x.get("settle")
        if st and not st["settled"]:
            line += (f"; Ray's processes still took {100 * st['share']:.0f} % of its CPUs "
                     f"after {st['waited_s']:.0f} s of waiting")
        elif st and st["waited_s"] > 2 * SETTLE_WINDOW_S:
            line += f"; waited {st['waited_s']:.1f} s for Ray's processes to settle"
        if x["ray_noise"]:
            line += (f"; Ray's processes took {100 * x['ray_noise']['fraction']:.1f} % of "
                     f"its {x['ray_noise']['cpus']} CPUs")
        if x["dropped_env"]:
            line += "; dropped " + ", ".join(f"{k}={v}" for k, v in x["dropped_env"].items())
        for s in x["scaled"]:
            line += f"; {s}"
        if x["sent"]:
            line += "; sent " + ", ".join(os.path.basename(p) for p in x["sent"])
        lines.append(line)
    if r.get("interrupted"):
        lines.append("interrupted: the hosts above that finished are kept")
    return lines


def _html(doc: dict) -> str:
    from ..report import html as H
    r = doc["result"]
    cols = _key_figures(r)
    out = {(o["host"], f["name"]) for f in r["figures"] for o in f["outliers"]}
    rows = [[h["host"]] + ["-" if h["figures"].get(f["name"]) is None else
                           f"{h['figures'][f['name']]:.4g}"
                           + (" !" if (h["host"], f["name"]) in out else "") for f in cols]
            for h in r["hosts"]]
    parts = [H.table(["host"] + [f"{f['name']} ({f['unit']})" for f in cols], rows,
                     caption=f"the fleet: {r['rule']['words']}; !: an outlier")]
    items = [f"{o['host']}: {f['name']} {o['value']:.4g} {f['unit']} (median "
             f"{f['median']:.4g}, z {o['z']:+.1f}); may explain it: "
             + ("; ".join(o["may_explain"]) or "no setting differs")
             for f in r["figures"] for o in f["outliers"]]
    items += [f"{s['label']} differs from the fleet's majority ({s['majority']}): "
              + ", ".join(f"{d['host']} {d['value']}" for d in s["differ"])
              for s in r["settings"]]
    if items:
        parts.append('<ul class="warn">' + "".join(f"<li>{H.e(x)}</li>" for x in items)
                     + "</ul>")
    if r.get("runs"):
        parts.append(H.table(
            ["host", "state", "seconds", "why", "Ray's share of the CPUs", "environment dropped"],
            [[x["host"], x["state"], "-" if x["seconds"] is None else f"{x['seconds']:.1f}",
              x["why"] or "-",
              "-" if not x["ray_noise"] else f"{100 * x['ray_noise']['fraction']:.1f} %",
              ", ".join(f"{k}={v}" for k, v in x["dropped_env"].items()) or "-"]
             for x in r["runs"]],
            caption=f"the run: {r['command']} on every node of {r['cluster']['address']}"))
    return "\n".join(parts)


def _plot_heatmap(doc: dict):
    from ..report import plots as P
    r = doc["result"]
    cols = _key_figures(r)
    if not cols or not r["hosts"]:
        return None
    hosts = [h["host"] for h in r["hosts"]]
    values = [[f["z"].get(h) for f in cols] for h in hosts]
    notes = [[(f"{x['figures'][f['name']]:.3g}" if f["name"] in x["figures"] else None)
              for f in cols] for x in r["hosts"]]
    return P.heatmap(doc, "fleet: each host's deviation from the fleet's median (robust z)",
                     hosts, [_short(f["name"]) for f in cols], values, unit="robust z",
                     fmt="+.1f", cmap="coolwarm", xlabel="figure", ylabel="host",
                     notes=notes, extra=f"outliers beyond |z| {r['rule']['z_out']:g}")


register(Kind("fleet", "fleet report", text=fleet_text, html=_html,
              rows=lambda doc: (["host"] + [f["name"] for f in _key_figures(doc["result"])],
                                [[h["host"]] + [h["figures"].get(f["name"])
                                                for f in _key_figures(doc["result"])]
                                 for h in doc["result"]["hosts"]]),
              plots=lambda doc: [("heatmap", lambda: _plot_heatmap(doc))]))
