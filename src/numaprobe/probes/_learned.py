"""What numaprobe measured about this machine and keeps for next time: the last-level cache a
core can really use (the quick check's two-point test, probes/_latency.effective_cache) and
the rates the quick check's plan assumes (first touch, chain building, DRAM latency, a
node's streaming rate), so that the next plan sizes its chains from what is true and
estimates from measured rates.

One JSON file per machine, under ``$NUMAPROBE_LEARNED`` (a directory; ``off``: keep
nothing), else ``$XDG_CACHE_HOME/numaprobe/machines`` (``~/.cache/numaprobe/machines``),
named by a hash of what identifies the machine to the caches and rates: the CPU model, the
reported caches, the usable CPUs and the memory nodes with their sizes. A file that cannot
be read, is not numaprobe's, or describes another machine is ignored, never trusted; a
directory that cannot be written (a read-only home) keeps nothing and says so.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

from ..topology import Topology

SCHEMA = "numaprobe-learned"
VERSION = 2  # 2: the streaming rate (node_gbs) is kept too; a version-1 file is measured again


def directory() -> Path | None:
    env = os.environ.get("NUMAPROBE_LEARNED")
    if env == "off":
        return None
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "numaprobe" / "machines"


def identity(topo: Topology) -> dict:
    """What a finding depends on: another CPU, other caches, CPUs or memory is another
    machine as far as sizes and rates go."""
    return {"cpu_model": topo.settings.cpu_model,
            "caches": sorted([c.level, c.type or "", c.size or 0, len(c.cpus)]
                            for c in topo.caches),
            "usable_cpus": list(topo.usable_cpus),
            "mems": {str(n): topo.node(n).memory_total for n in topo.usable_mems}}


def _path(topo: Topology) -> Path | None:
    d = directory()
    if d is None:
        return None
    h = hashlib.sha256(json.dumps(identity(topo), sort_keys=True).encode()).hexdigest()[:16]
    return d / f"machine-{h}.json"


def load(topo: Topology) -> dict | None:
    """The findings kept for this machine, or None (none kept, unreadable, another's)."""
    p = _path(topo)
    if p is None:
        return None
    try:
        doc = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    if not (isinstance(doc, dict) and doc.get("schema") == SCHEMA
            and doc.get("version") == VERSION and doc.get("machine") == json.loads(
                json.dumps(identity(topo))) and isinstance(doc.get("findings"), dict)):
        return None
    return doc["findings"]


def save(topo: Topology, findings: dict) -> str | None:
    """Keeps ``findings`` for this machine (written whole, then renamed into place, so a
    reader never sees half a file); returns why it could not (None: kept)."""
    p = _path(topo)
    if p is None:
        return None
    doc = {"schema": SCHEMA, "version": VERSION, "machine": identity(topo),
           "saved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "findings": findings}
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".machine-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f, indent=1)
            os.replace(tmp, p)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as e:
        return f"could not keep what it measured about this machine in {p.parent}: " \
               f"{e.strerror or e}"
    return None
