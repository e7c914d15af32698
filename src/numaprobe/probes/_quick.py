"""The quick check (``python -m numaprobe``): what the machine is, its latency and bandwidth
matrices, a core-to-core summary and what looks misconfigured, in seconds. Sizes and
repetitions scale with the machine: more nodes, fewer loads per cell."""
from __future__ import annotations

import time

from .. import clock
from .._version import __version__
from ..noise import NoiseMeter
from ..kinds import Kind, register
from ..report import html as H
from ..topology import Topology, current as current_topology
from . import _bandwidth, _c2c, _latency, _common as C
from ._bandwidth import bandwidth_matrix
from ._c2c import c2c_matrix
from ._latency import latency_matrix

LATENCY_BUDGET_LOADS = 24 << 20   # loads over all latency cells (about 2.5 s at 100 ns)
C2C_MAX_CPUS = 16                  # beyond this, one CPU per core, spread over the nodes


def _c2c_cpus(topo: Topology) -> list[int]:
    cpus = list(topo.usable_cpus)
    if len(cpus) <= C2C_MAX_CPUS:
        return cpus
    firsts = sorted({min(set(core) & set(cpus)) for core in topo.cores if set(core) & set(cpus)})
    step = max(1, len(firsts) // C2C_MAX_CPUS)
    return firsts[::step][:C2C_MAX_CPUS]


def quick_check(topology: Topology | None = None, progress: bool | None = None) -> dict:
    """Runs the quick check and returns its document (see cli.cmd_quick for the printing)."""
    t0 = time.monotonic()
    topo = current_topology(topology)
    bar = C.Progress(5, "quick check", progress)
    with NoiseMeter(topo.usable_cpus) as meter:
        try:
            clk = clock.calibrate(20_000_000)
            bar.step("clock")
            cells = len(C.cpu_nodes(topo)) * len(C.mem_nodes(topo))
            loads = max(LATENCY_BUDGET_LOADS // cells // 4, 1 << 18)  # 3 samples + warm-up
            size = max(2 * C.llc_bytes(topo), 64 << 20)
            lat = latency_matrix(size=size, samples=3, loads=loads, topology=topo, progress=False)
            bar.step("latency")
            # 4 x the LLC in all: at 2 x a read still hits the cache in part, and on this VM
            # its samples came out bimodal (11 and 35 GB/s, CV 45 %).
            bw_size = max(4 * C.llc_bytes(topo) // max(len(topo.usable_cpus), 1), 16 << 20)
            bws = {k: bandwidth_matrix(k, size=bw_size, reps=5, topology=topo, progress=False)
                   for k in ("read", "copy_nt")}
            bar.step("bandwidth")
            c2c = None
            if len(topo.usable_cpus) >= 2:
                c2c = c2c_matrix(_c2c_cpus(topo), rounds=5000, samples=3, topology=topo,
                                 progress=False)
            bar.step("core-to-core")
        finally:
            bar.close()
    noise = meter.result
    warnings = topo.warnings() + clk.warnings()
    if len(topo.nodes) == 1:
        warnings.append("one NUMA node: local-versus-remote effects cannot show on this machine")
    warnings += lat.warnings() + [w for m in bws.values() for w in m.warnings()]
    if c2c is not None:
        warnings += c2c.warnings()
    else:
        warnings.append("one usable CPU: no core-to-core latency")
    if (w := noise.warning()):
        warnings.append(w)
    return {
        "numaprobe": __version__, "kind": "quick",
        "topology": topo.to_dict(), "clock": clk.to_dict(),
        "latency": lat.to_dict(), "bandwidth": {k: m.to_dict() for k, m in bws.items()},
        "c2c": c2c.to_dict() if c2c is not None else None,
        "noise": noise.to_dict(), "warnings": warnings,
        "seconds": time.monotonic() - t0,
    }


# ------------------------------------------------------------------------ the result kind

def _text(doc: dict) -> str:
    r, noise = doc["result"], doc.get("noise")
    lines = [Topology.from_dict(r["topology"]).summary(), clock.summary_line(r["clock"])]
    tables = [_latency.matrix_text(r["latency"])] + [
        _bandwidth.matrix_text(m) for m in r["bandwidth"].values()]
    if r.get("c2c"):
        tables.append(_c2c.matrix_text(r["c2c"]))
    for table in tables:
        lines += ["", table]
    if noise:
        lines.append(f"\nnoise: other processes {100 * noise['foreign_fraction']:.1f} %, hypervisor "
                     f"steal {100 * noise['steal_fraction']:.1f} % of CPU time during the run")
    return "\n".join(lines)


def _figures(doc: dict) -> list:
    r = doc["result"]
    out = _latency.matrix_figures(r["latency"])
    for m in r["bandwidth"].values():
        out += _bandwidth.matrix_figures(m)
    if r.get("c2c"):
        out += _c2c.matrix_figures(r["c2c"])
    return out


def _rows(doc: dict) -> tuple[list, list]:
    r = doc["result"]
    parts = [("latency", _latency.matrix_rows(r["latency"]))] + [
        (f"bandwidth-{k}", _bandwidth.matrix_rows(m)) for k, m in r["bandwidth"].items()]
    header = ["table"] + parts[0][1][0]
    return header, [[name] + row for name, (_, rows) in parts for row in rows]


def _plots(doc: dict) -> list:
    r = doc["result"]
    out = [("latency-matrix", lambda: _latency.matrix_plot(doc, r["latency"]))]
    for k, m in r["bandwidth"].items():
        out.append((f"bandwidth-{k}-matrix", lambda m=m: _bandwidth.matrix_plot(doc, m)))
    if r.get("c2c"):
        out.append(("c2c-matrix", lambda: _c2c.matrix_plot(doc, r["c2c"])))
    return out


def _html(r: dict, machine: dict | None = None) -> str:
    out = []
    c = r.get("clock")
    if c:
        out.append(f"<p>{H.e(clock.summary_line(c))}</p>")
    if r.get("latency"):
        out.append(_latency.matrix_html(r["latency"], machine))
    for m in (r.get("bandwidth") or {}).values():
        out.append(_bandwidth.matrix_html(m, machine))
    out.append(_c2c.matrix_html(r["c2c"]) if r.get("c2c") else "<p class=muted>no core-to-core latency "
                                                    "(one usable CPU)</p>")
    if r.get("seconds") is not None:
        out.append(f"<p class='small muted'>the quick check took {r['seconds']:.1f} s</p>")
    return "\n".join(out)


register(Kind("quick", "quick check", text=_text,
              html=lambda doc: _html(doc["result"], doc.get("machine")),
              figures=_figures, rows=_rows, plots=_plots))
