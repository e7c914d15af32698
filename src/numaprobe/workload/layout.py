"""Layouts: how a model's instances are spread over the machine. An instance is one worker
process with its CPUs, its memory policy and node(s), and ONNX Runtime's thread counts.

Presets, named after what they mean:

- ``naive``: one process, ONNX Runtime's defaults (no pinning, no memory policy, thread
  pool sized by ONNX Runtime itself): what most deployments run;
- ``one-per-node``: one instance per node with CPUs, on all its usable CPUs, memory bound
  to that node;
- ``cores-per-instance=K``: instances of K cores (SMT siblings kept together), packed node
  by node, each with memory on its own node;
- ``remote-memory``: the CPUs of one node with memory on the farthest other node: the cost
  of getting placement wrong;
- ``interleave``: one instance on every usable CPU, memory interleaved over all nodes;
- ``NxT`` or ``NxT@NODES``: N instances of T threads (one CPU each), packed over the usable
  CPUs of NODES (default all), memory on each instance's node; ``1x2``, ``2x1@0``.

A file (JSON, or TOML on Python 3.11+) lists instances explicitly:
``{"instances": [{"cpus": "0-3", "policy": "bind", "nodes": "0", "intra": 4}]}``.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ..errors import UsageError
from ..placement import check_cpus, check_nodes
from ..topology import Topology, format_list, parse_list

__all__ = ["Instance", "Layout", "parse_layout", "PRESETS"]

PRESETS = ("naive", "one-per-node", "cores-per-instance=K", "remote-memory", "interleave",
           "NxT[@NODES]")


@dataclass(frozen=True)
class Instance:
    cpus: tuple[int, ...]          # the worker's CPU set
    policy: str | None = "bind"    # bind, preferred, interleave; None: the kernel's default
    nodes: tuple[int, ...] = ()    # memory nodes of the policy
    intra: int = 0                 # ONNX Runtime intra-op threads (0: its default)
    inter: int = 1                 # inter-op threads
    spin: bool = True              # intra-op threads spin while waiting for work
    pin: bool = True               # pin the worker and ONNX Runtime's threads to `cpus`

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cpus"] = format_list(self.cpus)
        d["nodes"] = format_list(self.nodes)
        return d


@dataclass(frozen=True)
class Layout:
    name: str
    instances: tuple[Instance, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def threads(self) -> int:
        return sum(i.intra for i in self.instances)

    def to_dict(self) -> dict:
        return {"name": self.name, "instances": [i.to_dict() for i in self.instances],
                "notes": list(self.notes)}

    def describe(self) -> str:
        parts = []
        for i in self.instances:
            mem = f"{i.policy} {format_list(i.nodes)}" if i.policy else "default memory"
            parts.append(f"CPUs {format_list(i.cpus)} x{i.intra or 'auto'} ({mem})")
        return f"{self.name}: {len(self.instances)} instance(s): " + "; ".join(parts)


def _usable_by_node(topo: Topology, nodes=None) -> dict[int, list[int]]:
    nodes = topo.cpu_nodes if nodes is None else check_nodes(nodes, topo, need="cpus")
    out = {n: list(topo.cpus_of(n, usable=True)) for n in nodes}
    return {n: c for n, c in out.items() if c}


def _mem_for(topo: Topology, node: int) -> tuple[str, tuple[int, ...]]:
    """Bind to the node's own memory; a node without memory prefers the nearest one that has."""
    if node in topo.usable_mems:
        return "bind", (node,)
    nearest = min(topo.usable_mems, key=lambda m: topo.distance(node, m))
    return "preferred", (nearest,)


def _cores(topo: Topology, cpus: list[int]) -> list[list[int]]:
    """CPUs grouped by physical core (SMT siblings together), in CPU order."""
    cpuset, seen, out = set(cpus), set(), []
    for c in cpus:
        if c in seen:
            continue
        group = [s for s in topo.cpu(c).siblings if s in cpuset] or [c]
        seen.update(group)
        out.append(sorted(group))
    return out


def parse_layout(spec: str, topo: Topology, *, spin: bool = True, force: bool = False) -> Layout:
    """A layout from a preset name, an ``NxT[@NODES]`` spec or a file path."""
    spec = spec.strip()
    by_node = _usable_by_node(topo)
    all_cpus = [c for cpus in by_node.values() for c in cpus]
    if spec == "naive":
        layout = Layout("naive", (Instance(cpus=tuple(all_cpus), policy=None, intra=0,
                                           spin=True, pin=False),),
                        ("ONNX Runtime's defaults: no pinning, no memory policy, its own pool size",))
    elif spec == "one-per-node":
        layout = Layout(spec, tuple(
            Instance(cpus=tuple(cpus), policy=_mem_for(topo, n)[0], nodes=_mem_for(topo, n)[1],
                     intra=len(cpus), spin=spin) for n, cpus in by_node.items()))
    elif spec == "interleave":
        layout = Layout(spec, (Instance(cpus=tuple(all_cpus), policy="interleave",
                                        nodes=tuple(topo.usable_mems), intra=len(all_cpus),
                                        spin=spin),))
    elif spec == "remote-memory":
        layout = _remote(topo, by_node, spin)
    elif m := re.fullmatch(r"cores-per-instance=(\d+)", spec):
        layout = _cores_per_instance(topo, by_node, int(m.group(1)), spin, spec)
    elif m := re.fullmatch(r"(\d+)x(\d+)(?:@([\d,\-]+))?", spec):
        layout = _n_by_t(topo, int(m.group(1)), int(m.group(2)), m.group(3), spin, spec)
    elif Path(spec).suffix in (".json", ".toml"):
        layout = _from_file(Path(spec), topo, spin)
    else:
        raise UsageError(f"unknown layout {spec!r}; layouts: {', '.join(PRESETS)}, "
                         "or a .json/.toml file")
    validate(layout, topo, force=force)
    return layout


def _remote(topo, by_node, spin) -> Layout:
    cpu_node = next(iter(by_node))
    others = [m for m in topo.usable_mems if m != cpu_node]
    if not others:
        raise UsageError("remote-memory needs a second node with memory; this machine has "
                         f"memory nodes {format_list(topo.usable_mems)} only")
    far = max(others, key=lambda m: (topo.distance(cpu_node, m), m))
    cpus = by_node[cpu_node]
    return Layout("remote-memory", (Instance(cpus=tuple(cpus), policy="bind", nodes=(far,),
                                             intra=len(cpus), spin=spin),),
                  (f"CPUs of node {cpu_node}, memory on node {far} "
                   f"(distance {topo.distance(cpu_node, far)})",))


def _cores_per_instance(topo, by_node, k, spin, name) -> Layout:
    if k < 1:
        raise UsageError("cores-per-instance needs K >= 1")
    instances = []
    for n, cpus in by_node.items():
        cores = _cores(topo, cpus)
        for i in range(0, len(cores) - k + 1, k):
            group = sorted(c for core in cores[i:i + k] for c in core)
            policy, nodes = _mem_for(topo, n)
            instances.append(Instance(cpus=tuple(group), policy=policy, nodes=nodes,
                                      intra=len(group), spin=spin))
    if not instances:
        most = max(len(_cores(topo, c)) for c in by_node.values())
        raise UsageError(f"cores-per-instance={k}: no node has {k} usable cores (at most {most})")
    return Layout(name, tuple(instances))


def _n_by_t(topo, n, t, nodes_text, spin, name) -> Layout:
    if n < 1 or t < 1:
        raise UsageError(f"layout {name!r}: instances and threads must be >= 1")
    by_node = _usable_by_node(topo, None if nodes_text is None else parse_list(nodes_text))
    # Pack instances node by node so none straddles two nodes when it fits in one.
    slots = [(node, cpus[i:i + t]) for node, cpus in by_node.items()
             for i in range(0, len(cpus) - t + 1, t)]
    if len(slots) < n:
        total = sum(len(c) for c in by_node.values())
        raise UsageError(f"layout {name!r} needs {n * t} CPUs in groups of {t} within a node; "
                         f"the usable CPUs ({total}: {format_list(c for v in by_node.values() for c in v)}) "
                         f"hold {len(slots)} such group(s)")
    instances = []
    for node, cpus in slots[:n]:
        policy, mem = _mem_for(topo, node)
        instances.append(Instance(cpus=tuple(cpus), policy=policy, nodes=mem, intra=t, spin=spin))
    return Layout(name, tuple(instances))


def _from_file(path: Path, topo: Topology, spin: bool) -> Layout:
    try:
        text = path.read_text()
    except OSError as e:
        raise UsageError(f"cannot read layout file {path}: {e.strerror}") from None
    try:
        if path.suffix == ".toml":
            import tomllib
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except ImportError:
        raise UsageError("TOML layout files need Python 3.11 or newer; use JSON") from None
    except ValueError as e:
        raise UsageError(f"layout file {path} is not valid {path.suffix[1:].upper()}: {e}") from None
    items = data.get("instances") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise UsageError(f"layout file {path} needs a non-empty list 'instances'")
    out = []
    allowed = {"cpus", "policy", "nodes", "intra", "inter", "spin", "pin"}
    for k, item in enumerate(items):
        unknown = set(item) - allowed
        if unknown:
            raise UsageError(f"layout file {path}, instance {k}: unknown key(s) "
                             f"{', '.join(sorted(unknown))}; keys: {', '.join(sorted(allowed))}")
        if "cpus" not in item:
            raise UsageError(f"layout file {path}, instance {k}: 'cpus' is required")
        cpus = parse_list(str(item["cpus"]))
        nodes = parse_list(str(item.get("nodes", ""))) if item.get("nodes", "") != "" else ()
        policy = item.get("policy", "bind" if nodes else None)
        if policy is not None and not nodes:
            nodes = (topo.node_of(cpus[0]),)
        out.append(Instance(cpus=cpus, policy=policy, nodes=tuple(nodes),
                            intra=int(item.get("intra", len(cpus))), inter=int(item.get("inter", 1)),
                            spin=bool(item.get("spin", spin)), pin=bool(item.get("pin", True))))
    return Layout(data.get("name", path.stem), tuple(out))


def validate(layout: Layout, topo: Topology, *, force: bool = False) -> None:
    """Refuses what the machine cannot hold (always) and what is probably a mistake
    (overlapping CPU sets, more threads than CPUs) unless ``force``."""
    seen: dict[int, int] = {}
    for k, inst in enumerate(layout.instances):
        check_cpus(inst.cpus, topo)
        if inst.policy is not None:
            if inst.policy not in ("bind", "preferred", "interleave"):
                raise UsageError(f"instance {k}: unknown memory policy {inst.policy!r}; "
                                 "policies: bind, preferred, interleave")
            check_nodes(inst.nodes, topo)
        if inst.intra < 0 or inst.inter < 1:
            raise UsageError(f"instance {k}: intra-op threads must be >= 0 and inter-op >= 1")
        if not force and inst.intra > len(inst.cpus):
            raise UsageError(f"instance {k} has {inst.intra} threads on {len(inst.cpus)} CPU(s) "
                             f"({format_list(inst.cpus)}): oversubscribed (use --force to run it)")
        for c in inst.cpus:
            if c in seen and not force:
                raise UsageError(f"instances {seen[c]} and {k} share CPU {c}: overlapping CPU "
                                 "sets (use --force to run it)")
            seen.setdefault(c, k)


def with_spin(layout: Layout, spin: bool) -> Layout:
    return replace(layout, instances=tuple(replace(i, spin=spin) for i in layout.instances))
