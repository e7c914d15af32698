"""Layouts: how a model's instances are spread over the machine. An instance is one worker
process with its CPUs, its memory policy and node(s), its engine (ONNX Runtime or OpenVINO,
engines/), its threads and streams and its precision.

Presets, named after what they mean:

- ``naive``: one process, the engine's defaults (no pinning, no memory policy, thread
  pool sized by the engine itself): what most deployments run;
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
``{"instances": [{"cpus": "0-3", "policy": "bind", "nodes": "0", "intra": 4}]}``, and may
name the layout (``"name"``). Each instance has ``cpus`` (a list such as ``"0-3,8"``, a list
of numbers or one number; required), ``policy`` (bind, preferred, interleave; left out:
bind when ``nodes`` is given, else the kernel's default; null: the kernel's default),
``nodes`` (as ``cpus``; with a policy and no nodes, the node of the first CPU), ``intra`` (a whole number >= 0: ONNX Runtime's intra-op threads,
or all of an OpenVINO instance's threads; 0: the engine's default; default one per CPU),
``inter`` (>= 1; default 1), ``streams`` (OpenVINO's requests in flight, >= 0; 0: the
engine's own; default 1), ``spin`` and ``pin`` (true or false), ``engine`` (ort, openvino)
and ``precision`` (f32, bf16, f16); an instance without engine or precision takes the run's
(``--engines``, ``--precision``: ``combine``); ``batch`` (a whole number >= 1: the samples one
inference feeds, where the model has a batch dimension; left out: the run's, ``--dim batch=B``,
default 1; the instances of one layout share it). Anything else is refused, naming the file
and the field.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ..errors import UsageError
from ..placement import check_cpus, check_nodes
from ..topology import MAX_ID, Topology, format_list, parse_list
from ..words import ids, plural
from . import engines

__all__ = ["Instance", "Layout", "parse_layout", "PRESETS"]

PRESETS = ("naive", "one-per-node", "cores-per-instance=K", "remote-memory", "interleave",
           "NxT[@NODES]")


@dataclass(frozen=True)
class Instance:
    cpus: tuple[int, ...]          # the worker's CPU set
    policy: str | None = "bind"    # bind, preferred, interleave; None: the kernel's default
    nodes: tuple[int, ...] = ()    # memory nodes of the policy
    intra: int = 0                 # ONNX Runtime's intra-op threads, OpenVINO's threads
                                   # (0: the engine's default)
    inter: int = 1                 # inter-op threads (ONNX Runtime)
    spin: bool = True              # intra-op threads spin while waiting for work
    pin: bool = True               # pin the worker and the engine's threads to `cpus`
    engine: str | None = None      # ort, openvino; None: the run's (engines.DEFAULT_ENGINE)
    precision: str | None = None   # f32, bf16, f16; None: the run's (engines.DEFAULT_PRECISION)
    streams: int = 1               # requests in flight (OpenVINO); 0: the engine's own
    batch: int | None = None       # samples per inference; None: the run's (--dim batch=B)

    def to_dict(self) -> dict:
        """As a document and a worker see it: an engine or precision not set is the default."""
        d = asdict(self)
        d["cpus"] = format_list(self.cpus)
        d["nodes"] = format_list(self.nodes)
        d["engine"] = self.engine or engines.DEFAULT_ENGINE
        d["precision"] = self.precision or engines.DEFAULT_PRECISION
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
        return describe(self.to_dict())


def describe(layout: dict) -> str:
    """Where a layout's instances run and keep their memory (a Layout.to_dict(), or a
    document's entry of any version); what each engine took is the run's resolved settings
    (infer.py), and what was asked is ``asked_settings``."""
    parts = []
    for i in layout["instances"]:  # cpus and nodes as lists like "0-3,8"
        mem = f"memory {i['policy']} {i.get('nodes') or ''}".rstrip() if i.get("policy") \
            else "default memory"
        cpus = parse_list(i["cpus"]) if i.get("cpus") else ()
        parts.append(f"{ids('CPU', cpus) if cpus else 'CPUs not recorded'} ({mem})")
    batch = (layout["instances"][0].get("batch") if layout["instances"] else None)
    return (f"{layout['name']}: {plural(len(parts), 'instance')}"
            + (f" of batch {batch}" if batch else "") + ": " + "; ".join(parts))


def asked_settings(inst: dict) -> dict:
    """An instance's settings (Instance.to_dict(), or a document's older entry without
    engine fields) in the vocabulary of the engines' resolved ones (engines.RESOLVED), for a
    run that has none to show (it failed, or its document is older)."""
    name = inst.get("engine") or engines.DEFAULT_ENGINE
    streams = inst.get("streams", 1) if engines.get(name).streams else None
    return {"engine": name, "version": None, "precision": inst.get("precision") or
            engines.DEFAULT_PRECISION, "threads": inst.get("intra") or None,
            "inter": None if streams is not None else inst.get("inter", 1),
            "streams": streams or None, "spin": None if streams is not None else inst.get("spin"),
            "pin": inst.get("pin"), "hint": None}


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
    if not isinstance(spec, str):
        raise UsageError(f"a layout is a name or a file path, got {spec!r}")
    spec = spec.strip()
    by_node = _usable_by_node(topo)
    all_cpus = [c for cpus in by_node.values() for c in cpus]
    if spec == "naive":
        layout = Layout("naive", (Instance(cpus=tuple(all_cpus), policy=None, intra=0,
                                           spin=True, pin=False, streams=0),),
                        ("the engine's defaults: no pinning, no memory policy, its own pool "
                         "size",))
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
    elif m := re.fullmatch(r"cores-per-instance=([0-9]+)", spec):
        layout = _cores_per_instance(topo, by_node, _count(m.group(1), spec), spin, spec)
    elif m := re.fullmatch(r"([0-9]+)x([0-9]+)(?:@([0-9,\-]+))?", spec):
        layout = _n_by_t(topo, _count(m.group(1), spec), _count(m.group(2), spec), m.group(3),
                         spin, spec)
    elif Path(spec).suffix in (".json", ".toml"):
        return _from_file(Path(spec), topo, spin, force)
    else:
        raise UsageError(f"unknown layout {spec!r}; layouts: {', '.join(PRESETS)}, "
                         "or a .json/.toml file")
    validate(layout, topo, force=force)
    return layout


def _count(text: str, spec: str) -> int:
    """A number in a layout's name. One of more digits than MAX_ID is more than any machine
    has, and is refused before int(), which refuses thousands of digits with a ValueError."""
    if len(text) > len(str(MAX_ID)):
        shown = text if len(text) <= 12 else f"{text[:12]}... ({len(text)} digits)"
        raise UsageError(f"layout {spec[:40]!r}: {shown} is more than any machine has "
                         f"(CPU and node counts stay below {MAX_ID})")
    return int(text)


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


_FILE_KEYS = ("name", "instances")
_INSTANCE_KEYS = ("cpus", "policy", "nodes", "intra", "inter", "streams", "spin", "pin",
                  "engine", "precision", "batch")
_POLICIES = ("bind", "preferred", "interleave")


class _Bad(Exception):
    """A value of a layout file that is not allowed: where it is (a path such as
    ``instances/0/intra``; empty for the whole file) and what is wrong with it."""

    def __init__(self, where: str, why: str):
        super().__init__(f"{where}: {why}" if where else why)


def _shown(value) -> str:
    """A value as the file would write it (JSON notation), cut short."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):  # a TOML date
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _must(where: str, allowed: str, value) -> _Bad:
    return _Bad(where, f"must be {allowed}, got {_shown(value)}")


def _whole(value, least: int) -> bool:
    """A whole number >= least. Python's True is an int; a file's true is not a count."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _ids(where: str, value, what: str) -> tuple[int, ...]:
    """CPU or node ids: a list in the kernel's syntax ("0-3,8"), a list of ids, or one id."""
    if isinstance(value, str):
        try:
            return parse_list(value)
        except UsageError as e:
            raise _Bad(where, str(e)) from None
    if _whole(value, 0):
        return (value,)
    if isinstance(value, list) and all(_whole(v, 0) for v in value):
        return tuple(sorted(set(value)))
    raise _must(where, f'a {what} list: a string such as "0-3,8", a list of {what} numbers '
                       "or one number", value)


def _instance(where: str, item, topo: Topology, spin: bool) -> Instance:
    """One entry of a file's ``instances``, checked key by key (see the module's docstring)."""
    if not isinstance(item, dict):
        raise _must(where, f"a table of instance settings ({', '.join(_INSTANCE_KEYS)})", item)
    unknown = sorted(str(k) for k in item if k not in _INSTANCE_KEYS)
    if unknown:
        raise _Bad(where, f"unknown key(s) {', '.join(unknown)}; keys: "
                          f"{', '.join(_INSTANCE_KEYS)}")
    if "cpus" not in item:
        raise _Bad(where, "'cpus' is required")
    cpus = _ids(f"{where}/cpus", item["cpus"], "CPU")
    if not cpus:
        raise _must(f"{where}/cpus", "at least one CPU", item["cpus"])
    nodes = _ids(f"{where}/nodes", item["nodes"], "node") if "nodes" in item else ()
    policy = item.get("policy", "bind" if nodes else None)
    if policy is not None and policy not in _POLICIES:
        raise _must(f"{where}/policy", f"one of {', '.join(_POLICIES)} (or null: the kernel's "
                                       "default)", policy)
    if policy is not None and not nodes:
        try:
            nodes = (topo.node_of(cpus[0]),)
        except UsageError as e:
            raise _Bad(f"{where}/cpus", str(e)) from None
    named = {"engine": (item.get("engine"), tuple(engines.ENGINES)),
             "precision": (item.get("precision"), engines.PRECISIONS)}
    for key, (value, allowed) in named.items():
        if key in item and value not in allowed:
            raise _must(f"{where}/{key}", f"one of {', '.join(allowed)}", value)
    engine = engines.get(named["engine"][0])
    counts = {"intra": (item.get("intra", len(cpus)), 0, f" (0: {engine.title}'s default)"),
              "inter": (item.get("inter", 1), 1, ""),
              "streams": (item.get("streams", 1), 0, " (0: the engine's own)")}
    if "batch" in item:
        counts["batch"] = (item["batch"], 1, " (the samples one inference feeds)")
    for key, (value, least, note) in counts.items():
        if not _whole(value, least):
            raise _must(f"{where}/{key}", f"a whole number >= {least}{note}", value)
    flags = {"spin": item.get("spin", spin), "pin": item.get("pin", True)}
    for key, value in flags.items():
        if not isinstance(value, bool):
            raise _must(f"{where}/{key}", "true or false", value)
    inst = Instance(cpus=cpus, policy=policy, nodes=tuple(nodes), intra=counts["intra"][0],
                    inter=counts["inter"][0], streams=counts["streams"][0],
                    engine=named["engine"][0], precision=named["precision"][0],
                    batch=counts["batch"][0] if "batch" in counts else None, **flags)
    if inst.engine is not None:  # what this engine cannot run, named by the field that asks it
        precision = inst.precision or engines.DEFAULT_PRECISION
        for key, why in (("precision", engines.limit(inst.engine, precision)),
                         ("streams", engines.limit(inst.engine, precision, inst.streams))):
            if why:
                raise _Bad(f"{where}/{key}", why)
    return inst


def _read_file(path: Path):
    """The data of a JSON or TOML file, or a UsageError naming it."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read layout file {path}: {e.strerror}") from None
    kind = path.suffix[1:].upper()
    try:
        text = raw.decode("utf-8")
        if path.suffix == ".toml":
            import tomllib
            return tomllib.loads(text)
        return json.loads(text)
    except ImportError:
        raise UsageError("TOML layout files need Python 3.11 or newer; use JSON") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"layout file {path} is not UTF-8 text ({kind} is): byte "
                         f"{e.start}") from None
    except (ValueError, RecursionError) as e:  # RecursionError: nested thousands deep
        raise UsageError(f"layout file {path} is not valid {kind}: "
                         f"{str(e) or type(e).__name__}") from None


def _from_file(path: Path, topo: Topology, spin: bool, force: bool) -> Layout:
    """A layout from a file; every refusal names the file and the field."""
    data = _read_file(path)
    try:
        if not isinstance(data, dict):
            raise _must("", "a table with a list 'instances'", data)
        unknown = sorted(str(k) for k in data if k not in _FILE_KEYS)
        if unknown:
            raise _Bad("", f"unknown key(s) {', '.join(unknown)}; keys: {', '.join(_FILE_KEYS)}")
        items = data.get("instances")
        if not isinstance(items, list) or not items:
            raise _must("instances", "a non-empty list of instances", items)
        name = data.get("name", path.stem)
        if not isinstance(name, str) or not name.strip():
            raise _must("name", "a non-empty string", name)
        layout = Layout(name, tuple(_instance(f"instances/{k}", item, topo, spin)
                                    for k, item in enumerate(items)))
        validate(layout, topo, force=force)
    except (_Bad, UsageError) as e:
        raise UsageError(f"layout file {path}: {e}") from None
    return layout


def validate(layout: Layout, topo: Topology, *, force: bool = False) -> None:
    """Refuses what the machine cannot hold (always) and what is probably a mistake
    (overlapping CPU sets, more threads than CPUs) unless ``force``. A refusal names the
    instance's field as a layout file would (``instances/0/cpus``)."""
    seen: dict[int, int] = {}
    for k, inst in enumerate(layout.instances):
        where = f"instances/{k}"
        try:
            check_cpus(inst.cpus, topo)
        except UsageError as e:
            raise UsageError(f"{where}/cpus: {e}") from None
        if inst.policy is not None:
            if inst.policy not in _POLICIES:
                raise UsageError(f"{where}/policy: unknown memory policy {inst.policy!r}; "
                                 f"policies: {', '.join(_POLICIES)}")
            try:
                check_nodes(inst.nodes, topo)
            except UsageError as e:
                raise UsageError(f"{where}/nodes: {e}") from None
            if inst.policy == "preferred" and len(inst.nodes) != 1:
                raise UsageError(f"{where}/nodes: preferred takes one node, got "
                                 f"{format_list(inst.nodes)}")
        if inst.intra < 0 or inst.inter < 1 or inst.streams < 0:
            raise UsageError(f"{where}: intra-op threads and streams must be >= 0 and "
                             "inter-op threads >= 1")
        if 0 < inst.intra < inst.streams:
            raise UsageError(f"{where}/streams: {inst.streams} streams need {inst.streams} "
                             f"threads or more; intra is {inst.intra}")
        for key, value, allowed in (("engine", inst.engine, engines.ENGINES),
                                    ("precision", inst.precision, engines.PRECISIONS)):
            if value is not None and value not in allowed:
                raise UsageError(f"{where}/{key}: unknown {key} {value!r}; {key}s: "
                                 f"{', '.join(allowed)}")
        if inst.batch is not None and (not isinstance(inst.batch, int) or inst.batch < 1):
            raise UsageError(f"{where}/batch: a whole number >= 1, got {inst.batch!r}")
        if inst.batch != layout.instances[0].batch:
            raise UsageError(f"{where}/batch: the instances of one layout share a batch size "
                             f"(instance 0 has {layout.instances[0].batch}, this one "
                             f"{inst.batch}); run different batches as different layouts")
        if not force and inst.intra > len(inst.cpus):
            raise UsageError(f"{where}/intra: {inst.intra} threads on {len(inst.cpus)} CPU(s) "
                             f"({format_list(inst.cpus)}): oversubscribed (use --force to run it)")
        for c in inst.cpus:
            if c in seen and not force:
                raise UsageError(f"instances {seen[c]} and {k} share CPU {c}: overlapping CPU "
                                 "sets (use --force to run it)")
            seen.setdefault(c, k)


def combine(layouts: list[Layout], engine_names=(engines.DEFAULT_ENGINE,),
            precisions=(engines.DEFAULT_PRECISION,)) -> tuple[list[Layout], list[str]]:
    """Every layout under every engine x precision, layout by layout in the order asked, so
    the first layout's first combination is the baseline. An instance's own engine or
    precision (a layout file's) is kept. Names gain what varies, as the instances run it:
    ``2x1 openvino bf16`` when both lists name more than one, ``2x1 bf16`` when only
    precisions do.

    A combination an engine cannot run (engines.limit: ONNX Runtime has no bf16) is left
    out, and the notes returned say so; a precision that no engine asked can run, and a list
    with nothing in it or a name that is not an engine or a precision, is refused."""
    lists = {"engines": (list(dict.fromkeys(engine_names)), tuple(engines.ENGINES)),
             "precisions": (list(dict.fromkeys(precisions)), engines.PRECISIONS)}
    for what, (names, allowed) in lists.items():
        bad = [n for n in names if n not in allowed]
        if not names or bad:
            raise UsageError(f"unknown {what[:-1]} {bad[0]!r}; {what}: {', '.join(allowed)}"
                             if bad else f"no {what} given; {what}: {', '.join(allowed)}")
    names, precs = lists["engines"][0], lists["precisions"][0]
    out, left_out, ran = [], {}, set()
    for layout in layouts:
        mine: list[tuple] = []
        for e in names:
            for p in precs:
                insts = tuple(replace(i, engine=i.engine or e, precision=i.precision or p)
                              for i in layout.instances)
                why = next(filter(None, (engines.limit(i.engine, i.precision, i.streams)
                                         for i in insts)), None)
                if why:
                    left_out.setdefault((e, p), why)
                    continue
                ran.add(p)
                if insts in mine:  # a file that sets its own engine and precision runs once
                    continue
                mine.append(insts)
                ran_as = ("+".join(dict.fromkeys(i.engine for i in insts)),
                          "+".join(dict.fromkeys(i.precision for i in insts)))
                suffix = " ".join(x for x, many in zip(ran_as, (len(names) > 1, len(precs) > 1))
                                  if many)
                out.append(replace(layout, name=f"{layout.name} {suffix}" if suffix else
                                   layout.name, instances=insts))
    for (e, p), why in left_out.items():
        if p not in ran:
            raise UsageError(why)
    notes = [f"{e} {p} left out: {why}" for (e, p), why in left_out.items()]
    return out, notes


def with_spin(layout: Layout, spin: bool) -> Layout:
    return replace(layout, instances=tuple(replace(i, spin=spin) for i in layout.instances))
