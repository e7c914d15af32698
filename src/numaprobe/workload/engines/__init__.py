"""Engines: what builds a model and runs it inside a worker, one module per engine.

    ort.py       ONNX Runtime's CPU provider (the default, "ort")
    openvino.py  OpenVINO's CPU plugin ("openvino"), which reads .onnx files directly

A worker places itself (CPUs, memory policy) *before* it builds its engine: the engine's
library is imported inside ``Engine.build``, never when this package is imported, so the
weights and the engine's threads start out on the instance's CPUs and node (worker.py).

The interface, the same for every engine:

- ``Request``: what a worker asks for: the model file, its CPUs, threads, streams, spinning,
  pinning and precision, all explicit (0 threads and 0 streams: the engine sizes itself);
- ``Session``: what a build returns: ``run`` one inference (outputs back), ``submit`` one
  and be told when it is done (``inflight`` of them at once: 1 for ONNX Runtime, one per
  stream for OpenVINO), ``wait`` for those in flight, and ``resolved``: the settings the
  engine actually took, read back from it (``RESOLVED`` names the keys);
- ``limit``: why an engine cannot run a combination (ONNX Runtime's CPU provider has no bf16);
- ``check_cpu``: a precision this CPU has no units for, refused naming the missing flag;
- ``idle_units_hint``: the CPU's matrix units that a run leaves idle, and how to use them;
- ``accuracy``: an engine's outputs against an f32 reference on the same inputs;
- ``FAMILY``: the ONNX op type whose arithmetic an engine's kernel type does (cost.py counts
  ONNX op types; a profile names kernels: FusedMatMul, BiasGelu, FullyConnected).

A precision other than f32 is never silent: the worker measures its outputs against f32 on
the same inputs (driver.run_layout), and the engine says which precision it really ran.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ...errors import UsageError

__all__ = ["ENGINES", "PRECISIONS", "DEFAULT_ENGINE", "DEFAULT_PRECISION", "Engine", "Request",
           "Session", "RESOLVED", "get", "limit", "check_cpu", "cpu_flags", "idle_units",
           "idle_units_hint", "accuracy", "describe"]

# The ONNX op type that an engine's kernel type computes (its own name where it is one).
# Matrix products are one family, "MatMul", whatever the graph or the engine calls them
# (ONNX Runtime fuses MatMul + Add into Gemm).
FAMILY = {"FusedMatMul": "MatMul", "MatMulIntegerToFloat": "MatMul", "QLinearMatMul": "MatMul",
          "DynamicQuantizeMatMul": "MatMul", "MatMulInteger": "MatMul", "FusedGemm": "MatMul",
          "Gemm": "MatMul",
          "FusedConv": "Conv", "QLinearConv": "Conv", "ConvInteger": "Conv", "NchwcConv": "Conv",
          "BiasGelu": "Gelu", "FastGelu": "Gelu", "SkipLayerNormalization": "LayerNormalization",
          "FullyConnected": "MatMul", "Convolution": "Conv", "MVN": "LayerNormalization",
          "Pooling": "MaxPool"}

PRECISIONS = ("f32", "bf16", "f16", "int8")  # int8: a quantized copy of the model (quantize.py)
DEFAULT_ENGINE = "ort"
DEFAULT_PRECISION = "f32"

# The CPU flags (/proc/cpuinfo) that make a precision fast: any one of them will do. Without
# one, OpenVINO runs the model in f32 (or emulates the precision), so the run would not show
# what the precision is worth on a CPU that has the units.
# int8 has integer dot products on every x86-64-v3 CPU (AVX2's vpmaddubsw), faster with VNNI
# or AMX (MATRIX); on aarch64 it needs the dot-product instructions (asimddp).
UNITS = {"bf16": ("amx_bf16", "avx512_bf16"),
         "f16": ("amx_fp16", "avx512_fp16", "asimdhp"),  # asimdhp: aarch64's f16 arithmetic
         "int8": ("amx_int8", "avx512_vnni", "avx_vnni", "avx2", "asimddp")}
# The units that f32 leaves idle: a run that uses none of them is told what they may be worth.
MATRIX = {"bf16": ("amx_bf16", "avx512_bf16"), "f16": ("amx_fp16", "avx512_fp16"),
          "int8": ("amx_int8", "avx512_vnni", "avx_vnni")}
_UNIT_NAMES = {"amx_bf16": "AMX-BF16", "avx512_bf16": "AVX512-BF16", "amx_fp16": "AMX-FP16",
               "avx512_fp16": "AVX512-FP16", "asimdhp": "Arm FP16 arithmetic",
               "amx_int8": "AMX-INT8", "avx512_vnni": "AVX512-VNNI", "avx_vnni": "AVX-VNNI",
               "avx2": "AVX2", "asimddp": "Arm dot product"}

# What Session.resolved() holds (None: the engine has no such setting, or does not say).
RESOLVED = {
    "engine": "the engine's name (ENGINES)",
    "version": "the engine's package version",
    "precision": "the precision the engine ran, read back from it",
    "threads": "intra-op threads (ort) or all the instance's threads (openvino)",
    "inter": "inter-op threads (ort)",
    "streams": "streams, each with one request in flight (openvino)",
    "spin": "whether idle threads spin",
    "pin": "whether the engine's threads are pinned",
    "hint": "the performance hint (openvino)",
    "int8_layers": "how many compute layers ran in int8 (openvino, int8 only)",
}


@dataclass(frozen=True)
class Request:
    """What a worker asks of an engine. ``threads``: intra-op threads for ONNX Runtime, all
    of the instance's threads (shared by its streams) for OpenVINO; 0: the engine's own count.
    ``streams``: requests in flight at once (OpenVINO; ONNX Runtime has one); 0: the engine's
    own. ``cpus``: the instance's CPUs, which the worker has already pinned itself to when
    ``pin``; the engine pins its own threads inside them."""
    model: str
    cpus: tuple[int, ...]
    threads: int = 0
    inter: int = 1
    streams: int = 1
    spin: bool = True
    pin: bool = True
    precision: str = DEFAULT_PRECISION
    profile: bool = False   # time every kernel (a profiling pass: its speed is not compared)

    @classmethod
    def of(cls, model: str, instance: dict, *, precision: str | None = None,
           profile: bool = False) -> "Request":
        """The request for a layout instance (Instance.to_dict()), optionally at another
        precision (the f32 reference)."""
        from ...topology import parse_list
        return cls(model=model, cpus=parse_list(instance["cpus"]), threads=instance["intra"],
                   inter=instance.get("inter", 1), streams=instance.get("streams", 1),
                   spin=instance["spin"], pin=instance["pin"],
                   precision=precision or instance.get("precision") or DEFAULT_PRECISION,
                   profile=profile)


class Session:
    """A built model (see the module's docstring). Engines subclass it."""
    inflight: int = 1   # inferences that may be in flight at once

    def run(self, feeds: dict) -> list[np.ndarray]:
        """One inference, synchronously: the outputs, in the model's output order."""
        raise NotImplementedError

    def submit(self, feeds: dict, done: Callable) -> None:
        """Starts one inference and reports it finished by calling ``done(end_ns)``, its end
        on CLOCK_MONOTONIC in ns (None: now), at the latest by ``wait``. Returns when another
        may be submitted: at once while fewer than ``inflight`` run, else when one of them
        finishes. The base runs it synchronously (one in flight)."""
        self.run(feeds)
        done(None)

    def idle(self) -> None:
        """Returns when a submitted inference would start at once (a closed loop times each
        from here, so its latency holds no wait for a free request). The base: at once."""

    def wait(self) -> None:
        """Returns when every submitted inference has finished."""

    def resolved(self) -> dict:
        """The settings the engine took (keys: RESOLVED)."""
        raise NotImplementedError

    def mark(self) -> None:
        """With ``profile``: kernel times from here on are the ones ``op_times`` returns
        (the warm-up's are left out)."""

    def op_times(self) -> dict[str, int]:
        """With ``profile``: nanoseconds spent in each kernel type since ``mark``, as the
        engine names them (ONNX Runtime: its op types, fused ones included; OpenVINO: its
        layer types), from inferences run with ``run``."""
        return {}

    def close(self) -> None:
        """Frees the model (the f32 reference is closed before the measured model is built)."""


@dataclass(frozen=True)
class Engine:
    name: str                     # as --engines and layout files name it
    title: str                    # as people know it
    module: str                   # the package it imports (a missing one names its extra)
    precisions: tuple[str, ...]   # what it runs
    runs: str                     # the same, in words for a refusal
    streams: bool                 # several requests in flight in one instance
    build: Callable[[Request], Session]

    def require(self) -> None:
        """An ImportError naming the missing package (the CLI adds its pip command), raised
        before any worker starts rather than by each worker."""
        if importlib.util.find_spec(self.module) is None:
            raise ModuleNotFoundError(f"the {self.name} engine needs {self.module}, which is "
                                      "not installed", name=self.module)

    def version(self) -> str | None:
        try:
            return importlib.metadata.version(self.module)
        except importlib.metadata.PackageNotFoundError:
            return None


def _engines() -> dict[str, Engine]:
    from . import openvino, ort
    return {e.name: e for e in (ort.ENGINE, openvino.ENGINE)}


ENGINES: dict[str, Engine] = _engines()


def get(name: str | None) -> Engine:
    """The engine called ``name`` (None: the default), or a UsageError listing them."""
    engine = ENGINES.get(name or DEFAULT_ENGINE)
    if engine is None:
        raise UsageError(f"unknown engine {name!r}; engines: {', '.join(ENGINES)}")
    return engine


def limit(engine: str, precision: str, streams: int = 1) -> str | None:
    """Why ``engine`` cannot run ``precision`` with ``streams`` (None: it can). An unknown
    engine or precision is a UsageError listing what there is."""
    e = get(engine)
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; precisions: {', '.join(PRECISIONS)}")
    if precision not in e.precisions:
        others = [x.name for x in ENGINES.values() if precision in x.precisions]
        return f"{e.runs}; {precision} needs --engines {','.join(others)}"
    if streams > 1 and not e.streams:
        others = [x.name for x in ENGINES.values() if x.streams]
        return (f"{e.title} runs one request at a time per instance; {streams} streams need "
                f"engine {' or '.join(others)}")
    return None


def cpu_flags(topo) -> set[str] | None:
    """The CPU's flags as the topology read them (topology.Settings.cpu_flags: /proc/cpuinfo,
    or a captured tree's); None: none were read (or a document from before they were kept)."""
    return set(topo.settings.cpu_flags) or None


def idle_units(topo, precisions) -> tuple[list[str], list[str]]:
    """The CPU's matrix and low-precision units (MATRIX) that runs in ``precisions`` leave
    unused: their names ("AMX-BF16") and the precisions that would use them ("bf16")."""
    flags = cpu_flags(topo) or set()
    names, unused = [], []
    for precision, units in MATRIX.items():
        have = [_UNIT_NAMES[u] for u in units if u in flags]
        if have and precision not in precisions:
            names += have
            unused.append(precision)
    return names, unused


def idle_units_hint(topo, ran: Sequence[tuple[str, str]], *, command: str = "") -> str | None:
    """A line for runs (``ran``: engine and precision pairs) that leave the CPU's matrix
    units idle: "AMX-BF16, AVX512-BF16 present; f32 on ort uses none of them; try
    `--engines ort,openvino --precision f32,bf16`"; None when nothing is idle."""
    names, unused = idle_units(topo, {p for _, p in ran})
    if not names:
        return None
    engines_try = list(dict.fromkeys(e for e, _ in ran)) or [DEFAULT_ENGINE]
    for p in unused:  # an engine that runs it, where none of those that ran does
        if not any(p in ENGINES[e].precisions for e in engines_try):
            engines_try.append(next(e.name for e in ENGINES.values() if p in e.precisions))
    precs_ran = list(dict.fromkeys(p for _, p in ran)) or [DEFAULT_PRECISION]
    what = (" and ".join(f"{p} on {' and '.join(dict.fromkeys(e for e, q in ran if q == p))}"
                         for p in precs_ran) if ran else "f32 inference")
    verb = "use" if len(precs_ran) > 1 else "uses"
    return (f"{', '.join(names)} present; {what} {verb} none of them; try `{command}"
            f"--engines {','.join(engines_try)} --precision {','.join(precs_ran + unused)}`")


def check_cpu(precision: str, topo, *, allow_slow: bool = False) -> None:
    """Refuses a precision this CPU has no units for (UNITS), naming the flags it lacks,
    unless ``allow_slow``: it would run in f32 or emulated, which is not what the precision
    is worth."""
    units = UNITS.get(precision)
    if not units or allow_slow:
        return
    flags = cpu_flags(topo)
    if flags is not None and flags & set(units):
        return
    named = " or ".join(f"{_UNIT_NAMES[u]} ({u})" for u in units)
    model = getattr(getattr(topo, "settings", None), "cpu_model", None)
    has = (f"this CPU{f' ({model})' if model else ''} has no {' or '.join(units)} flag"
           if flags is not None else "the CPU's flags cannot be read (proc/cpuinfo)")
    raise UsageError(f"{precision} needs {named}; {has}, so the engine would run it in f32 or "
                     "emulate it slowly (--allow-slow-precision runs it anyway)")


def accuracy(reference: Sequence[np.ndarray], outputs: Sequence[np.ndarray],
             names: Sequence[str] | None = None) -> list[dict]:
    """Each output against the reference's, paired by position: the largest absolute error
    (max_abs), that error relative to the reference's largest magnitude (max_rel: values near
    zero do not blow it up) and the cosine similarity of the two, flattened (1.0: the same
    direction). A missing output or another shape is an error, not a figure."""
    if len(reference) != len(outputs):
        raise ValueError(f"the reference has {len(reference)} outputs, the run {len(outputs)}")
    out = []
    for k, (want, got) in enumerate(zip(reference, outputs)):
        want = np.asarray(want, dtype=np.float64).ravel()
        got = np.asarray(got, dtype=np.float64)
        if got.size != want.size:
            raise ValueError(f"output {k}: {got.size} values, the reference has {want.size}")
        got = got.ravel()
        err = np.abs(got - want)
        top = float(np.max(np.abs(want))) if want.size else 0.0
        norms = float(np.linalg.norm(want)) * float(np.linalg.norm(got))
        max_abs = float(err.max()) if err.size else 0.0
        out.append({"name": names[k] if names else f"output {k}", "max_abs": max_abs,
                    "max_rel": max_abs / top if top > 0 else (0.0 if max_abs == 0 else None),
                    "cosine": min(1.0, float(np.dot(want, got) / norms)) if norms > 0 else (
                        1.0 if max_abs == 0 else 0.0)})
    return out


def describe(r: dict) -> str:
    """Resolved settings (RESOLVED) in words: "openvino 2026.4.1: 2 streams x 1 thread
    (THROUGHPUT hint), pinned, f32"."""
    from ...words import plural
    head = " ".join(x for x in (r.get("engine"), r.get("version")) if x)
    threads, streams = r.get("threads"), r.get("streams")
    if streams:
        each = (plural(threads // streams, "thread") if threads and threads % streams == 0
                else f"{threads} threads shared" if threads else "the engine's threads")
        work = f"{plural(streams, 'stream')} x {each}"
    elif threads:
        work = f"{plural(threads, 'intra-op thread')}, {r.get('inter') or 1} inter-op"
    else:
        work = "the engine's own thread count"
    if r.get("hint"):
        work += f" ({r['hint']} hint)"
    spin = {True: "spinning", False: "not spinning", None: None}[r.get("spin")]
    pin = {True: "pinned", False: "not pinned", None: "the engine's own pinning"}[r.get("pin")]
    ran = r.get("precision") or "?"
    asked = r.get("asked_precision")
    prec = ran if not asked or asked == ran else f"{ran} ({asked} asked)"
    if r.get("int8_layers"):
        prec += f" ({r['int8_layers']})"
    created = (f"{plural(r['threads_created'], 'thread')} created"
               if r.get("threads_created") is not None else None)
    return f"{head}: " + ", ".join(x for x in (work, spin, pin, prec, created) if x)
