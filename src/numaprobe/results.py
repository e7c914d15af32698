"""Result documents: every run leaves one versioned JSON document that can be compared with
another run, on this machine or another, and shown as a table or a picture.

    {"schema": "numaprobe-result", "schema_version": 1, "kind": "latency", "created": ...,
     "asked": {"command": ..., "options": {...}}, "machine": {fingerprint},
     "noise": {...} or null, "result": {kind-specific}, "warnings": [...]}

The JSON Schema ships beside this module (schema/result-v1.json); tests validate every
subcommand's output against it.
"""
from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
import os
import platform
from importlib import metadata
from pathlib import Path

from .topology import Topology

__all__ = ["SCHEMA", "SCHEMA_VERSION", "KINDS", "fingerprint", "document", "load", "write",
           "schema_path", "to_csv", "fingerprint_differences"]

SCHEMA = "numaprobe-result"
SCHEMA_VERSION = 1
KINDS = ("quick", "topology", "clock", "latency", "latency-sweep", "bandwidth",
         "bandwidth-threads", "bandwidth-peak", "loaded-latency", "c2c", "infer", "sweep",
         "compare")


def schema_path() -> Path:
    return Path(__file__).parent / "schema" / f"result-v{SCHEMA_VERSION}.json"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def fingerprint(topo: Topology, clock: dict | None = None) -> dict:
    """What makes results from two machines (or two configurations) comparable or not."""
    shape = {"nodes": [{"id": n.id, "cpus": list(n.cpus), "memory_node": n.has_memory}
                       for n in topo.nodes],
             "distances": [list(n.distances) for n in topo.nodes]}
    digest = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]
    s = topo.settings
    from . import __version__
    return {
        "topology_digest": digest, **shape,
        "online_cpus": len(topo.online_cpus), "usable_cpus": list(topo.usable_cpus),
        "cpu_model": s.cpu_model, "kernel": platform.release(), "arch": platform.machine(),
        "virtualized": s.virtualized, "thp": s.thp, "numa_balancing": s.numa_balancing,
        "governors": list(s.governors), "clocksource": s.clocksource,
        "clock": ({"kind": clock["kind"], "hz": clock["hz"]} if clock else None),
        "versions": {"numaprobe": __version__, "python": platform.python_version(),
                     "numpy": _version("numpy"), "onnxruntime": _version("onnxruntime")},
        "hostname": platform.node(),
    }


def document(kind: str, result: dict, *, topo: Topology, asked: dict | None = None,
             noise: dict | None = None, warnings=(), clock: dict | None = None) -> dict:
    if kind not in KINDS:
        raise ValueError(f"unknown result kind {kind!r}; kinds: {', '.join(KINDS)}")
    if clock is None:
        from . import clock as clk
        c = clk._clock  # the calibration in use, if any; no new calibration for a document
        clock = c.to_dict() if c is not None else None
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "kind": kind,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "asked": asked or {}, "machine": fingerprint(topo, clock), "noise": noise,
            "result": result, "warnings": list(warnings)}


def write(doc: dict, path: str | os.PathLike) -> None:
    """Writes atomically: a reader never sees half a document."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, path)


def load(path: str | os.PathLike) -> dict:
    """Reads a result document; a clear ValueError for anything else."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}") from None
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise ValueError(f"{path} is not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ValueError(f"{path} is not a numaprobe result document (no \"schema\": \"{SCHEMA}\")")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{path} has schema version {doc.get('schema_version')}; this numaprobe "
                         f"reads version {SCHEMA_VERSION}")
    if doc.get("kind") not in KINDS:
        raise ValueError(f"{path} has an unknown kind {doc.get('kind')!r}")
    return doc


def fingerprint_differences(a: dict, b: dict) -> list[str]:
    """What differs between two machines' fingerprints, in words."""
    fa, fb = a["machine"], b["machine"]
    out = []
    labels = {"topology_digest": "topology (nodes, CPUs, distances)", "cpu_model": "CPU model",
              "kernel": "kernel", "virtualized": "virtualisation", "thp": "THP mode",
              "numa_balancing": "NUMA balancing", "governors": "CPU governor",
              "usable_cpus": "usable CPUs", "hostname": "host"}
    for key, label in labels.items():
        if fa.get(key) != fb.get(key):
            out.append(f"{label}: {fa.get(key)} vs {fb.get(key)}")
    va, vb = fa.get("versions", {}), fb.get("versions", {})
    for k in sorted(set(va) | set(vb)):
        if va.get(k) != vb.get(k):
            out.append(f"{k} version: {va.get(k)} vs {vb.get(k)}")
    return out


# ------------------------------------------------------------------------------------ CSV

def rows(doc: dict) -> tuple[list[str], list[list]]:
    """The tabular part of a document: (header, rows)."""
    kind, r = doc["kind"], doc["result"]
    if kind == "quick":
        parts = [("latency", "latency", r["latency"])] + [
            (f"bandwidth-{k}", "bandwidth", v) for k, v in r["bandwidth"].items()]
        out = []
        for name, sub_kind, part in parts:
            header, sub = rows({"kind": sub_kind, "result": part})
            out += [[name] + row for row in sub]
        return ["table"] + header, out
    if kind in ("latency", "bandwidth"):
        key = "ns" if kind == "latency" else "gbs"
        return (["cpu_node", "mem_node", "median", "min", "max", "cv", "n", "unit"],
                [[c["cpu_node"], c["mem_node"], c[key]["median"], c[key]["min"], c[key]["max"],
                  c[key]["cv"], c[key]["n"], c[key]["unit"]] for c in r["cells"]])
    if kind == "latency-sweep":
        return (["size", "median_ns", "min_ns", "max_ns", "cv"],
                [[p["size"], p["ns"]["median"], p["ns"]["min"], p["ns"]["max"], p["ns"]["cv"]]
                 for p in r["points"]])
    if kind == "c2c":
        return (["cpu_a", "cpu_b", "median_ns", "min_ns", "max_ns", "cv"],
                [[p["a"], p["b"], p["ns"]["median"], p["ns"]["min"], p["ns"]["max"], p["ns"]["cv"]]
                 for p in r["pairs"]])
    if kind == "loaded-latency":
        return (["delay", "latency_ns", "gbs"],
                [[p["delay"], p["latency_ns"]["median"], p["gbs"]] for p in r["points"]])
    if kind in ("bandwidth-threads",):
        return (["threads", "median_gbs", "min_gbs", "max_gbs", "cv"],
                [[len(x["cpus"]), x["gbs"]["median"], x["gbs"]["min"], x["gbs"]["max"], x["gbs"]["cv"]]
                 for x in r["runs"]])
    if kind == "compare":
        return (["a", "b", "figure", "unit", "value_a", "value_b", "change_pct", "ratio",
                 "ci_low", "ci_high", "verdict"],
                [[c["a"], c["b"], f["figure"], f["unit"], f["a"], f["b"], f["change_pct"],
                  f["ratio"], *(f["ci"] or [None, None]), f["verdict"]]
                 for c in r["comparisons"] for f in c["figures"]])
    if kind in ("infer", "sweep"):
        head = ["layout", "instances", "cpus", "throughput_per_s", "throughput_ci_low",
                "throughput_ci_high", "p50_ms", "p90_ms", "p99_ms", "p99.9_ms", "cpu_s_per_inference"]
        out = []
        for d in r["layouts"]:
            lat = d["latency"]
            p = lambda k: lat[k]["ms"] if lat.get(k) else None
            out.append([d["layout"]["name"], len(d["layout"]["instances"]), d["cpus"],
                        d["throughput"]["per_s"], *d["throughput"]["ci"], p("p50"), p("p90"),
                        p("p99"), p("p99.9"), d["cpu_s_per_inference"]])
        return head, out
    raise ValueError(f"a {kind} document has no table for CSV")


def to_csv(doc: dict) -> str:
    header, data = rows(doc)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(data)
    return buf.getvalue()
