"""Result documents: every run leaves one versioned JSON document that can be compared with
another run, on this machine or another, and shown as a table or a picture.

    {"schema": "numaprobe-result", "schema_version": 1, "kind": "latency", "created": ...,
     "asked": {"command": ..., "options": {...}}, "machine": {fingerprint},
     "noise": {...} or null, "result": {kind-specific}, "warnings": [...]}

The JSON Schema ships beside this module (schema/result-v1.json); ``load`` validates every
document against it, after bringing a document written by an earlier schema version up to
date (``MIGRATIONS``), so a saved baseline stays comparable after an upgrade. What each kind's
``result`` holds, and how it is shown, is the kind's business (kinds.py).
"""
from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
import math
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Callable

from .errors import UsageError
from . import kinds
from ._version import __version__

from .topology import Topology

__all__ = ["SCHEMA", "SCHEMA_VERSION", "MIGRATIONS", "fingerprint", "document", "load",
           "write", "write_text", "check_output", "schema_path", "to_csv", "rows", "upgrade",
           "validate",
           "fingerprint_differences", "workload_differences"]

SCHEMA = "numaprobe-result"
SCHEMA_VERSION = 1
# version N -> a function that turns a version-N document into a version-(N+1) one. Each
# schema change adds one entry here and a fixture of the old version in tests/data/documents/.
MIGRATIONS: dict[int, Callable[[dict], dict]] = {}


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
    return {
        "topology_digest": digest, **shape,
        "online_cpus": len(topo.online_cpus), "usable_cpus": list(topo.usable_cpus),
        "cpu_model": s.cpu_model, "cpu_features": list(s.features),
        "kernel": platform.release(), "arch": platform.machine(),
        "virtualized": s.virtualized, "thp": s.thp, "numa_balancing": s.numa_balancing,
        "governors": list(s.governors), "clocksource": s.clocksource,
        "clock": ({"kind": clock["kind"], "hz": clock["hz"]} if clock else None),
        "versions": {"numaprobe": __version__, "python": platform.python_version(),
                     "numpy": _version("numpy"), "onnxruntime": _version("onnxruntime"),
                     "openvino": _version("openvino")},
        "hostname": platform.node(),
        "memory_nodes": {str(n.id): n.memory_total for n in topo.nodes if n.has_memory},
        "cgroup": {"cpus": list(topo.allowed.cgroup_cpus)
                   if topo.allowed.cgroup_cpus is not None else None,
                   "mems": list(topo.allowed.cgroup_mems)
                   if topo.allowed.cgroup_mems is not None else None,
                   "cpu_quota": topo.allowed.cpu_quota},
    }


def document(kind: str, result: dict, *, topo: Topology, asked: dict | None = None,
             noise: dict | None = None, warnings=(), clock: dict | None = None) -> dict:
    kinds.get(kind)  # a ValueError naming the kinds for an unknown one
    if clock is None:
        from . import clock as clk
        c = clk._clock  # the calibration in use, if any; no new calibration for a document
        clock = c.to_dict() if c is not None else None
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "kind": kind,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "asked": asked or {}, "machine": fingerprint(topo, clock), "noise": noise,
            "result": result, "warnings": list(warnings)}


def write(doc: dict, path: str | os.PathLike) -> None:
    """Writes the document to path (see write_text)."""
    write_text(path, dumps(doc) + "\n")


def dumps(doc: dict) -> str:
    """The document as JSON text. NaN and infinity are not JSON, and load() refuses them, so
    a figure that came out not finite (a bug: the kinds write None for "no figure") is
    written as null and the document's warnings say where, rather than writing a file that
    numaprobe itself could not read back."""
    try:
        return json.dumps(doc, indent=1, allow_nan=False)
    except ValueError:
        pass
    where = []

    def finite(x, path):
        if isinstance(x, float) and not math.isfinite(x):
            where.append(path or "/")
            return None
        if isinstance(x, dict):
            return {k: finite(v, f"{path}/{k}") for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [finite(v, f"{path}/{i}") for i, v in enumerate(x)]
        return x
    out = finite(doc, "")
    if isinstance(out.get("warnings"), list):
        out["warnings"].append(
            f"{len(where)} figure(s) came out as no finite number and are written as null: "
            + ", ".join(where[:5]) + (", ..." if len(where) > 5 else ""))
    return json.dumps(out, indent=1, allow_nan=False)


def check_output(path: str | os.PathLike) -> Path:
    """The file a result will be written to, checked before anything is measured: not a
    directory, in a folder that exists and may be written. A symlink means its target."""
    target = Path(os.path.realpath(path))
    if target.is_dir():
        raise UsageError(f"{path} is a directory: give a file name to write to")
    folder = target.parent
    if not folder.is_dir():
        raise UsageError(f"cannot write {path}: the folder {folder} does not exist")
    if target.exists() and not target.is_file():
        if not os.access(target, os.W_OK):
            raise UsageError(f"cannot write {path}: it may not be written")
    elif not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {path}: the folder {folder} may not be written")
    return target


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes text to path so that nothing is lost and nothing not ours is replaced: a regular
    file (or a new one) atomically, through a temporary file renamed over it, so a reader never
    sees half of it; a device or FIFO (-o /dev/null) by writing through it; a symlink's target,
    not the link. A failed write leaves no temporary file behind. Returns the path written."""
    target = check_output(path)
    if target.exists() and not target.is_file():
        with open(target, "w", encoding="utf-8") as f:
            f.write(text)
        return target
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def load(path: str | os.PathLike) -> dict:
    """Reads a result document, upgraded to this version's schema and validated against it;
    a ValueError that says what is wrong for anything else."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not a text file, so not a result document") from None
    try:
        doc = json.loads(text, parse_constant=_not_a_number, parse_float=_finite)
    except ValueError as e:
        raise UsageError(f"{path} is not JSON: {e}") from None
    except RecursionError:
        raise UsageError(f"{path} nests lists or objects too deeply to be a result "
                         "document") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise UsageError(f"{path} is not a numaprobe result document (no \"schema\": \"{SCHEMA}\")")
    doc = upgrade(doc, str(path))
    validate(doc, str(path))
    return doc


def _not_a_number(word: str):
    """NaN and Infinity are not JSON (RFC 8259), and numaprobe never writes them."""
    raise ValueError(f"{word} is not a JSON number")


def _finite(text: str) -> float:
    """A JSON number as a float, refused where it overflows to infinity (1e999)."""
    x = float(text)
    if not math.isfinite(x):
        raise ValueError(f"the number {text[:40]} is too large")
    return x


def upgrade(doc: dict, name: str = "the document") -> dict:
    """The document in this version's schema: migrated step by step from an earlier version."""
    version = doc.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise UsageError(f"{name} has no valid schema_version ({version!r})")
    if version > SCHEMA_VERSION:
        raise UsageError(f"{name} was written by a newer numaprobe (schema version {version}); "
                         f"this one reads versions 1 to {SCHEMA_VERSION}: upgrade numaprobe")
    while version < SCHEMA_VERSION:
        doc = MIGRATIONS[version](doc)
        version += 1
        doc["schema_version"] = version
    return doc


_validator = None


def validate(doc: dict, name: str = "the document") -> None:
    """Checks the document against the shipped schema and its kind against the registry, then
    that its kind can show it: what a schema cannot say (a matrix's cells cover its node
    lists, its distances match them) is what the kind's own text and figures look up."""
    global _validator
    import jsonschema
    if _validator is None:
        # JSON Schema counts 2.0 as an integer; numaprobe writes integers as integers and its
        # code tells them apart (isinstance(x, int)), so here an integer is a JSON integer.
        base = jsonschema.Draft202012Validator
        checker = base.TYPE_CHECKER.redefine(
            "integer", lambda _, x: isinstance(x, int) and not isinstance(x, bool))
        strict = jsonschema.validators.extend(base, type_checker=checker)
        _validator = strict(json.loads(schema_path().read_text()))
    try:
        kind = kinds.get(doc.get("kind"))
    except ValueError:
        raise UsageError(f"{name} has an unknown kind {doc.get('kind')!r}; kinds: "
                         f"{', '.join(kinds.names())}") from None
    invalid = f"{name} is not a valid {doc['kind']} document"
    err = jsonschema.exceptions.best_match(_validator.iter_errors(doc))
    if err is not None:
        where = "/".join(str(p) for p in err.absolute_path) or "the top level"
        raise UsageError(f"{invalid}: at {where}: {err.message[:300]}")
    try:
        kind.text(doc)
        if kind.figures is not None:
            kind.figures(doc)
    except UsageError as e:
        raise UsageError(f"{invalid}: {e}") from e
    except (KeyError, IndexError) as e:
        what = f"an entry {e}" if isinstance(e, KeyError) else "an entry past the end of a list"
        raise UsageError(f"{invalid}: its parts do not fit together (it refers to {what} "
                         "that it does not have)") from e


def fingerprint_differences(a: dict, b: dict) -> list[str]:
    """What differs between two machines' fingerprints, in words."""
    fa, fb = a["machine"], b["machine"]
    out = []
    labels = {"topology_digest": "topology (nodes, CPUs, distances)", "cpu_model": "CPU model",
              "cpu_features": "CPU units",
              "kernel": "kernel", "virtualized": "virtualisation", "thp": "THP mode",
              "numa_balancing": "NUMA balancing", "governors": "CPU governor",
              "usable_cpus": "usable CPUs", "memory_nodes": "node memory",
              "cgroup": "cgroup limits", "hostname": "host"}
    for key, label in labels.items():  # a field an older numaprobe did not record is no difference
        if key in fa and key in fb and fa[key] != fb[key]:
            out.append(f"{label}: {fa.get(key)} vs {fb.get(key)}")
    va, vb = fa.get("versions", {}), fb.get("versions", {})
    for k in sorted(set(va) | set(vb)):
        if va.get(k) != vb.get(k):
            out.append(f"{k} version: {va.get(k)} vs {vb.get(k)}")
    return out


# Options that change how long or how often a measurement runs, or how it is shown, but not
# what is measured: documents that differ only in these still measure the same workload.
_NOT_WORKLOAD = {"json", "csv", "output", "quiet", "repeat", "rounds", "max_rounds",
                 "target_effect", "max_noise", "min_effect", "strict", "files",
                 "allow_slow_precision"}


def workload_differences(a: dict, b: dict) -> list[str]:
    """What differs between two documents' workloads, in words: the command and its options
    (not those in _NOT_WORKLOAD), and for inference the model (name, size, parameters,
    inputs) and the engine settings that resolved."""
    out = []
    qa, qb = a.get("asked") or {}, b.get("asked") or {}
    if qa.get("command") != qb.get("command"):
        out.append(f"command: {qa.get('command')} vs {qb.get('command')}")
    oa, ob = qa.get("options") or {}, qb.get("options") or {}
    for k in sorted((set(oa) | set(ob)) - _NOT_WORKLOAD):
        if oa.get(k) != ob.get(k):
            out.append(f"--{k.replace('_', '-')}: {oa.get(k)} vs {ob.get(k)}")
    ma, mb = (a.get("result") or {}).get("model"), (b.get("result") or {}).get("model")
    if ma is not None or mb is not None:
        for k in ("name", "sha256", "bytes", "params", "inputs"):
            va, vb = (ma or {}).get(k), (mb or {}).get(k)
            if va is None or vb is None:  # not recorded on one side (an older document)
                continue
            if va != vb:
                out.append(f"model {k}: {va} vs {vb}")
    return out


# ------------------------------------------------------------------------------------ CSV

def rows(doc: dict) -> tuple[list[str], list[list]]:
    """The tabular part of a document: (header, rows), as its kind defines it."""
    kind = kinds.get(doc["kind"])
    if kind.rows is not None:
        return kind.rows(doc)
    # A kind without a table of its own: one row per comparable figure.
    figures = kind.figures(doc) if kind.figures else []
    if not figures:
        raise UsageError(f"a document of kind {doc['kind']} has no table for CSV")
    return (["figure", "unit", "value", "higher_is_better", "runs"],
            [[f.name, f.unit, f.value, f.higher_is_better, " ".join(f"{x:g}" for x in f.runs)]
             for f in figures])


def to_csv(doc: dict) -> str:
    header, data = rows(doc)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(data)
    return buf.getvalue()
