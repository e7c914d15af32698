"""The models that ``numaprobe infer`` runs: built-in generated ones, ONNX files, and models
shipped inside installed PyPI packages.

- ``resolve(model)`` turns what the user typed (a builtin name, a path to an ``.onnx`` file,
  ``package:NAME`` or a bare known package name) into a ``ModelRef`` that points at a file.
- ``inputs(path)`` reads a model's input signature without onnxruntime.
- ``make_inputs(specs, dims)`` makes deterministic input arrays for it.
- ``describe(ref)`` is the model's entry in a result document.

Built-in models are generated deterministically (weights from ``numpy.random.default_rng(seed)``)
with the onnx helper API, float32, opset ``OPSET``, and cached on disk: they stand in for real
models of a known size and shape without downloading anything.  Their weights are random, so
their outputs mean nothing; their cost (bytes moved, FLOPs, working set) is what matters here.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import math
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import UsageError

__all__ = ["BUILTINS", "PACKAGES", "ModelRef", "InputSpec", "resolve", "inputs", "outputs",
           "has_batch_dim", "make_inputs", "describe", "default_cache_dir", "MODEL_VERSION", "OPSET"]

OPSET = 20          # ai.onnx opset of the built-in models (Gelu appeared in 20)
IR_VERSION = 9      # the lowest IR version that carries opset 20, for older onnxruntimes
MODEL_VERSION = 1   # bump whenever a builder changes what it writes: it names the cached files
BATCH_DEFAULT = 1   # the one dynamic dimension that has a default


# --------------------------------------------------------------------------------------------
# Building graphs
# --------------------------------------------------------------------------------------------

class _GraphBuilder:
    """Collects nodes and initializers with unique names; weights come from one seeded rng."""

    def __init__(self, name: str, seed: int):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def _fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, name: str, array: np.ndarray) -> str:
        """An initializer holding ``array`` as is."""
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(self, name: str, shape: tuple[int, ...], std: float) -> str:
        """A float32 initializer drawn from N(0, std²)."""
        w = self.rng.standard_normal(shape, dtype=np.float32)
        w *= np.float32(std)
        return self.const(name, w)

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs) -> str:
        """Adds one single-output node; returns its output name."""
        out = self._fresh(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def linear(self, x: str, n_in: int, n_out: int, prefix: str, std: float) -> str:
        """x @ W + b with W [n_in, n_out]."""
        w = self.weight(f"{prefix}.weight", (n_in, n_out), std)
        b = self.weight(f"{prefix}.bias", (n_out,), std)
        return self.op("Add", [self.op("MatMul", [x, w]), b])

    def model(self, graph_inputs, graph_outputs, doc: str) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.name, graph_inputs, graph_outputs,
                                  initializer=self.initializers)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="numaprobe", producer_version=str(MODEL_VERSION),
                              doc_string=doc)
        m.ir_version = IR_VERSION
        return m


def build_encoder(seed: int = 0, *, vocab: int = 30522, hidden: int = 384, layers: int = 6,
                  heads: int = 12, intermediate: int = 1536,
                  max_positions: int = 512) -> onnx.ModelProto:
    """A BERT-style post-LayerNorm transformer encoder shaped like MiniLM-L6 (all-MiniLM-L6-v2).

    Inputs ``input_ids`` and ``attention_mask``, int64 [batch, seq] (seq ≤ ``max_positions``);
    output ``last_hidden_state``, float32 [batch, seq, hidden].  With the defaults: 22.6 M
    parameters (90.3 MB), 11.7 M of them in the word-embedding table that a Gather reads sparsely.
    """
    if hidden % heads:
        raise UsageError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
    head_dim = hidden // heads
    g = _GraphBuilder("encoder", seed)
    std = 0.02  # BERT's initializer range

    # Embeddings: word (Gather on input_ids) + position (Gather on 0..seq-1), then LayerNorm.
    word = g.weight("embeddings.word", (vocab, hidden), std)
    pos = g.weight("embeddings.position", (max_positions, hidden), std)
    x = g.op("Gather", [word, "input_ids"], axis=0)                       # [b, s, h]
    seq = g.op("Gather", [g.op("Shape", ["input_ids"]), g.const("one", np.array(1, np.int64))],
               axis=0)                                                   # scalar s
    positions = g.op("Range", [g.const("zero", np.array(0, np.int64)), seq, "one"])
    x = g.op("Add", [x, g.op("Gather", [pos, positions], axis=0)])       # + [s, h]
    x = _layer_norm(g, x, hidden, "embeddings.ln")

    # Additive mask: 0 where attention_mask is 1, -10000 where it is 0, as [b, 1, 1, s].
    mask = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    mask = g.op("Mul", [g.op("Sub", [g.const("f_one", np.array(1, np.float32)), mask]),
                        g.const("mask_value", np.array(-10000.0, np.float32))])
    mask = g.op("Unsqueeze", [mask, g.const("axes_1_2", np.array([1, 2], np.int64))])

    split_heads = g.const("split_heads", np.array([0, 0, heads, head_dim], np.int64))
    merge_heads = g.const("merge_heads", np.array([0, 0, hidden], np.int64))
    scale = g.const("scale", np.array(1 / math.sqrt(head_dim), np.float32))
    for i in range(layers):
        p = f"layer{i}"

        def heads_of(name: str, perm: list[int]) -> str:
            # [b, s, h] -> [b, s, heads, head_dim] -> permuted
            t = g.linear(x, hidden, hidden, f"{p}.attention.{name}", std)
            return g.op("Transpose", [g.op("Reshape", [t, split_heads])], perm=perm)

        q = heads_of("query", [0, 2, 1, 3])                              # [b, H, s, d]
        k = heads_of("key", [0, 2, 3, 1])                                # [b, H, d, s]
        v = heads_of("value", [0, 2, 1, 3])                              # [b, H, s, d]
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), scale]), mask])
        probs = g.op("Softmax", [scores], axis=-1)                       # [b, H, s, s]
        ctx = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, merge_heads])                        # [b, s, h]
        attn = g.linear(ctx, hidden, hidden, f"{p}.attention.output", std)
        x = _layer_norm(g, g.op("Add", [attn, x]), hidden, f"{p}.attention.ln")

        ff = g.op("Gelu", [g.linear(x, hidden, intermediate, f"{p}.intermediate", std)])
        ff = g.linear(ff, intermediate, hidden, f"{p}.output", std)
        x = _layer_norm(g, g.op("Add", [ff, x]), hidden, f"{p}.output.ln")

    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))
    ids = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"])
           for n in ("input_ids", "attention_mask")]
    out = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                        ["batch", "seq", hidden])
    return g.model(ids, [out], build_encoder.__doc__.split("\n")[0])


def _layer_norm(g: _GraphBuilder, x: str, hidden: int, prefix: str) -> str:
    gamma = g.const(f"{prefix}.weight", np.ones(hidden, np.float32))
    beta = g.const(f"{prefix}.bias", np.zeros(hidden, np.float32))
    return g.op("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=1e-12)


def build_mlp(seed: int = 0, *, widths: tuple[int, ...] = (1024, 4096, 4096, 4096, 1024)
              ) -> onnx.ModelProto:
    """A stack of large dense layers (MatMul + Add + Relu; the last one without Relu).

    Input ``x`` float32 [batch, 1024]; output ``y`` float32 [batch, 1024].  With the default
    widths: 42.0 M parameters (168 MB), all of them read once per inference (memory bound at
    small batch).
    """
    g = _GraphBuilder("mlp", seed)
    x = "x"
    for i, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
        x = g.linear(x, n_in, n_out, f"fc{i}", math.sqrt(2 / n_in))  # He init: stays O(1)
        if i < len(widths) - 2:
            x = g.op("Relu", [x])
    g.nodes.append(helper.make_node("Identity", [x], ["y"], name="output"))
    return g.model([helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", widths[0]])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", widths[-1]])],
                   build_mlp.__doc__.split("\n")[0])


# (out_channels, max-pool after it) for each 3x3 Conv + Relu
_CONV_LAYERS = ((32, True), (64, True), (128, False), (128, True), (256, False), (256, True))


def build_conv(seed: int = 0, *, layers=_CONV_LAYERS, size: int = 224) -> onnx.ModelProto:
    """A VGG-like convolution stack: 3x3 Conv + Relu layers, 2x2 MaxPool after some, then global
    average pooling.

    Input ``x`` float32 [batch, 3, 224, 224]; output ``y`` float32 [batch, 256].  With the
    defaults: 1.1 M parameters (~4.5 MB) but 6.4 MB of activations per image after the first
    layer and ~3.3 GFLOP per image: compute and activation traffic dominate, not weights.
    """
    g = _GraphBuilder("conv", seed)
    x, channels = "x", 3
    for i, (out, pool) in enumerate(layers):
        w = g.weight(f"conv{i}.weight", (out, channels, 3, 3), math.sqrt(2 / (channels * 9)))
        b = g.weight(f"conv{i}.bias", (out,), 0.01)
        x = g.op("Relu", [g.op("Conv", [x, w, b], kernel_shape=[3, 3], pads=[1, 1, 1, 1])])
        if pool:
            x = g.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
        channels = out
    x = g.op("Flatten", [g.op("GlobalAveragePool", [x])], axis=1)
    g.nodes.append(helper.make_node("Identity", [x], ["y"], name="output"))
    return g.model(
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", channels])],
        build_conv.__doc__.split("\n")[0])


BUILTINS: dict[str, tuple[str, Callable[[int], onnx.ModelProto]]] = {
    "encoder": ("MiniLM-L6-shaped transformer encoder: hidden 384, 6 layers, 12 heads, "
                "22.6 M params (90 MB); inputs input_ids, attention_mask [batch, seq]",
                build_encoder),
    "mlp": ("dense MatMul+Add+Relu stack 1024-4096-4096-4096-1024: 42 M params (168 MB); "
            "input x [batch, 1024]", build_mlp),
    "conv": ("VGG-like stack of 6 3x3 Conv+Relu, 4 MaxPool: 1.1 M params (~4.5 MB), "
             "~3.3 GFLOP per image; input x [batch, 3, 224, 224]", build_conv),
}


# --------------------------------------------------------------------------------------------
# Models shipped inside PyPI packages
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _PackageModel:
    modules: tuple[str, ...]   # importable top-level packages that ship it, tried in order
    pattern: str               # glob for the .onnx file, matched at any depth in the package
    pip: str                   # what to pip install
    description: str
    prefer: str | None = None  # regex over the path: preferred among several matches
    in_extra: bool = False     # installed by numaprobe[models]


PACKAGES: dict[str, _PackageModel] = {
    "magika": _PackageModel(
        ("magika",), "models/*/model.onnx", "magika",
        "Google Magika file-type classifier (small 1-D conv + dense net, ~0.8 M params); "
        "input bytes int32 [batch, 2048]", prefer=r"standard_", in_extra=True),
    "rapidocr": _PackageModel(
        ("rapidocr", "rapidocr_onnxruntime"), "*rec*.onnx", "rapidocr",
        "RapidOCR (PaddleOCR) text-recognition model; input x float32 [batch, 3, 48, width]"),
}


def _find_package_model(name: str) -> tuple[Path, str]:
    """The .onnx file of package model ``name`` and the module it came from."""
    pm = PACKAGES[name]
    for module in pm.modules:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            continue
        found: list[Path] = []
        for root in spec.submodule_search_locations:
            found += sorted(Path(root).rglob(pm.pattern))
        if not found:
            raise UsageError(f"package model {name!r}: {module} is installed but ships no file "
                             f"matching {pm.pattern!r} (looked in "
                             f"{', '.join(spec.submodule_search_locations)})")
        if pm.prefer:
            preferred = [p for p in found if re.search(pm.prefer, str(p))]
            found = preferred or found
        return found[-1], module  # sorted: the latest version name wins among several
    raise UsageError(f"model {name!r} ships with the PyPI package {pm.pip}, which is not "
                     f"installed: pip install {pm.pip}"
                     + (" (or pip install 'numaprobe[models]')" if pm.in_extra else ""))


# --------------------------------------------------------------------------------------------
# Resolving what the user typed
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelRef:
    """A model on disk, ready to load."""
    name: str          # builtin or package name, or the file's stem
    path: str          # absolute path of the .onnx file
    source: str        # "file", "builtin" or "package"
    description: str
    bytes: int         # size of the .onnx file (external data files not included)


def default_cache_dir() -> Path:
    """Where built-in models are generated: ``$NUMAPROBE_CACHE`` if set, else
    ``$XDG_CACHE_HOME/numaprobe/models`` (``~/.cache/numaprobe/models``)."""
    env = os.environ.get("NUMAPROBE_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "numaprobe" / "models"


def resolve(model: str, cache_dir: str | None = None, seed: int = 0) -> ModelRef:
    """Turns ``model`` into a ``ModelRef``.

    ``model`` is, in the order tried:

    - ``package:NAME``: a model shipped in an installed PyPI package (``PACKAGES``), found
      without importing it; ValueError saying what to pip install if it is not installed;
    - a path (contains a path separator or ends in ``.onnx``): an existing ONNX file, checked
      with ``onnx.checker`` (ValueError "... is not an ONNX model: <reason>" if it fails);
    - a builtin name (``BUILTINS``): generated with ``seed`` into ``cache_dir`` (default
      ``default_cache_dir()``) on first use, then reused; the file name carries the name, the
      seed, ``MODEL_VERSION`` and the start of the content's SHA-256 (a damaged file is built
      again), and it is written to a temporary file and renamed, so that processes that race
      each get a complete file;
    - a wheel (``x.whl``, or ``x.whl#path/in/it.onnx`` when it holds several): the .onnx
      in it, extracted once into the cache (named by the wheel's hash);
    - a bare package name (``magika``), or any installed package that ships one .onnx file
      (``package:NAME`` too);
    - an existing file by any other name.

    ``seed`` only matters for builtins.  Anything else is a ValueError that lists the choices.
    """
    if model.startswith("package:"):
        name = model[len("package:"):]
        return _package_ref(name) if name in PACKAGES else _any_package_ref(name)
    wheel, hash_sign, member = model.partition(".whl#")
    if model.endswith(".whl") or hash_sign:
        return _wheel_ref(model if not hash_sign else wheel + ".whl", member or None, cache_dir)
    looks_like_path = os.sep in model or model.endswith(".onnx")
    if looks_like_path or (model not in BUILTINS and model not in PACKAGES
                           and os.path.isfile(model)):
        return _file_ref(model)
    if model in BUILTINS:
        return _builtin_ref(model, cache_dir, seed)
    if model in PACKAGES:
        return _package_ref(model)
    if re.fullmatch(r"[A-Za-z_][\w.]*", model) and _installed(model):
        return _any_package_ref(model)
    raise UsageError(
        f"unknown model {model!r}: built-in models are {', '.join(BUILTINS)}; package models "
        f"are {', '.join(PACKAGES)} (also as package:NAME); a path to a .onnx file works too")


def _installed(module: str) -> bool:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return False
    return spec is not None and bool(spec.submodule_search_locations)


def _one_of(found: list[str], where: str, how: str) -> str:
    """The one .onnx file found, or a refusal that lists them and says how to pick one."""
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError(f"{where} holds no .onnx file")
    listed = ", ".join(found[:8]) + (f" and {len(found) - 8} more" if len(found) > 8 else "")
    raise UsageError(f"{where} holds {len(found)} .onnx files ({listed}): {how}")


def _any_package_ref(name: str) -> ModelRef:
    """The .onnx file an installed package ships (found without importing it)."""
    if not _installed(name):
        raise UsageError(f"no installed package {name!r}; package models that numaprobe "
                         f"knows are {', '.join(PACKAGES)}, and any installed package that "
                         "ships one .onnx file works")
    roots = importlib.util.find_spec(name).submodule_search_locations
    found = sorted(str(p) for root in roots for p in Path(root).rglob("*.onnx"))
    path = _one_of(found, f"the installed package {name}", "give the path of one as --model")
    _check_onnx(path)
    return ModelRef(name, path, "package", f"{Path(path).name} from the installed {name} "
                    "package", os.path.getsize(path))


def _wheel_ref(wheel: str, member: str | None, cache_dir: str | None) -> ModelRef:
    """The .onnx file in a wheel, extracted into the cache the first time (a wheel is a zip)."""
    import zipfile
    try:
        with zipfile.ZipFile(wheel) as z:
            names = sorted(n for n in z.namelist() if n.endswith(".onnx"))
            if member is None:
                member = _one_of(names, f"the wheel {wheel}",
                                 f"pick one with --model {wheel}#{names[0] if names else ''}")
            elif member not in names:
                raise UsageError(f"the wheel {wheel} has no {member}; its .onnx files: "
                                 f"{', '.join(names) or 'none'}")
            data = z.read(member)
    except (zipfile.BadZipFile, OSError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else e
        raise UsageError(f"cannot read the wheel {wheel}: {why}") from None
    directory = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / "wheels"
    stem = f"{Path(wheel).stem}-{Path(member).stem}"
    ours = re.compile(rf"{re.escape(stem)}-[0-9a-f]{{{_NAMED_HASH}}}\.onnx")
    cached = [p for p in sorted(directory.glob(f"{stem}-*.onnx"))
              if ours.fullmatch(p.name) and _intact(p)]
    path = cached[0] if cached else _build_into(directory, stem, data)
    _check_onnx(str(path))
    return ModelRef(Path(member).stem, str(path.resolve()), "file",
                    f"{member} from the wheel {os.path.basename(wheel)}", path.stat().st_size)


def _check_onnx(path: str) -> None:
    try:
        onnx.checker.check_model(path)  # by path: also handles >2 GB models and external data
    except Exception as e:  # DecodeError, ValidationError, ...: all mean the same to the user
        reason = str(e).strip() or type(e).__name__
        raise UsageError(f"{path} is not an ONNX model: {reason}") from None


def _file_ref(model: str) -> ModelRef:
    path = os.path.abspath(os.path.expanduser(model))
    if not os.path.isfile(path):
        raise UsageError(f"no such model file: {model}"
                         + (" (is a directory)" if os.path.isdir(path) else ""))
    _check_onnx(path)
    return ModelRef(Path(path).stem, path, "file", f"ONNX file {path}", os.path.getsize(path))


def _package_ref(name: str) -> ModelRef:
    path, module = _find_package_model(name)
    _check_onnx(str(path))
    return ModelRef(name, str(path), "package",
                    f"{PACKAGES[name].description} (from the installed {module} package)",
                    path.stat().st_size)


_NAMED_HASH = 16  # hex digits of the SHA-256 in a cached file's name


def _builtin_ref(name: str, cache_dir: str | None, seed: int) -> ModelRef:
    """The cached file of a builtin, built first when there is none that is intact.

    The file's name ends in the start of its content's SHA-256 (``encoder-seed0-v1-<hash>.onnx``):
    a file cut short or damaged on disk no longer matches its name and is built again, without
    a second file to keep in step and without building the model to check it."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise UsageError(f"seed must be a non-negative integer, not {seed!r}")
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    stem = f"{name}-seed{seed}-v{MODEL_VERSION}"
    ours = re.compile(rf"{re.escape(stem)}-[0-9a-f]{{{_NAMED_HASH}}}\.onnx")
    cached = sorted(p for p in directory.glob(f"{stem}-*.onnx") if ours.fullmatch(p.name))
    path = next((p for p in cached if _intact(p)), None)
    if path is None:
        path = _build_into(directory, stem, BUILTINS[name][1](seed).SerializeToString())
    return ModelRef(name, str(path.resolve()), "builtin",
                    f"{BUILTINS[name][0]}; seed {seed}", path.stat().st_size)


def _intact(path: Path) -> bool:
    """Whether a cached file still holds what its name says; one that does not is removed."""
    if path.stem.rsplit("-", 1)[-1] == _sha256(str(path))[:_NAMED_HASH]:
        return True
    print(f"numaprobe: {path} is damaged or cut short; building it again", file=sys.stderr)
    with contextlib.suppress(OSError):  # a racing process removed it first, or it is not ours
        path.unlink()
    return False


def _build_into(directory: Path, stem: str, data: bytes) -> Path:
    """Writes a built model under its name and hash: to a temporary file, then renamed, so
    that racing processes each see no file or a whole one (the same: builders are
    deterministic)."""
    path = directory / f"{stem}-{hashlib.sha256(data).hexdigest()[:_NAMED_HASH]}.onnx"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise UsageError(f"cannot write built-in models into {directory}: {e.strerror} (set "
                         "NUMAPROBE_CACHE to a folder you can write)") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the cache may be shared
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InputSpec:
    """One graph input.  ``shape`` holds ints (fixed) and strs (the dynamic dimension's name;
    one the model leaves unnamed is called ``"<input>.dim<axis>"``); None if the model gives
    no shape at all.  ``dtype`` is a numpy dtype string ("float32", "int64", "bool", ...), or
    the ONNX type kind ("sequence", "map", "optional") for inputs that are not tensors."""
    name: str
    dtype: str
    shape: tuple | None


def inputs(path: str) -> list[InputSpec]:
    """The model's inputs, read from the file's graph (without external data and without
    onnxruntime); initializers that old exporters also list as inputs are left out."""
    return _inputs_of(onnx.load(str(path), load_external_data=False).graph)


def outputs(path: str) -> list[str]:
    """The names of the model's outputs, in the graph's order (the order engines return
    them in)."""
    return [o.name for o in onnx.load(str(path), load_external_data=False).graph.output]


def _inputs_of(graph: onnx.GraphProto) -> list[InputSpec]:
    initialized = {t.name for t in graph.initializer}
    specs = []
    for vi in graph.input:
        if vi.name in initialized:
            continue
        kind = vi.type.WhichOneof("value")
        if kind != "tensor_type":
            specs.append(InputSpec(vi.name, (kind or "unknown").replace("_type", ""), None))
            continue
        tt = vi.type.tensor_type
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type)).name
        if not tt.HasField("shape"):
            specs.append(InputSpec(vi.name, dtype, None))
            continue
        shape = []
        for axis, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                shape.append(int(d.dim_value))
            elif d.HasField("dim_param") and d.dim_param not in ("", "?"):
                shape.append(d.dim_param)
            else:
                shape.append(f"{vi.name}.dim{axis}")
        specs.append(InputSpec(vi.name, dtype, tuple(shape)))
    return specs


# Names exporters give a leading dimension they know nothing about; such a dimension on axis 0
# is taken to be the batch.  Meaningful names (e.g. "seq" on axis 0 of a seq-first model) are not.
_ANONYMOUS_DIM = re.compile(r"(unk__\d+|(p2o\.)?DynamicDimension\.\d+|N|n|None|-1|.+\.dim0)")


def _is_batch_dim(name: str, axis: int) -> bool:
    return name == "batch" or (axis == 0 and ("batch" in name.lower()
                                              or bool(_ANONYMOUS_DIM.fullmatch(name))))


def has_batch_dim(path: str) -> bool:
    """Whether one of the model's inputs has a dynamic batch dimension (one that --dim batch=B
    or a layout's batch sets)."""
    return any(isinstance(d, str) and _is_batch_dim(d, axis)
               for s in inputs(path) for axis, d in enumerate(s.shape or ()))


def make_inputs(specs: list[InputSpec], dims: Mapping[str, int] | None = None,
                seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic input arrays for ``specs``, one per input, for a given ``seed``.

    Every dynamic dimension must be given in ``dims`` by name (as ``inputs()`` reports it),
    except the batch: ``batch`` defaults to 1 (``BATCH_DEFAULT``), and a leading dimension
    named ``batch*`` or left anonymous by the exporter (``unk__214`` in magika,
    ``DynamicDimension.0``, ``x.dim0``, ...) takes the batch value unless given by its own name.
    Nothing else has a default: a missing one is a ValueError that says what to give, and a
    name in ``dims`` that no input has is a ValueError too (a typo would otherwise go unseen).

    Values, by input name and dtype:

    - integers named ``*position_ids*``: 0, 1, 2, ... along the last axis;
    - integers named ``*token_type*`` / ``*segment*``: zeros;
    - integers named ``*ids*``: uniform in [0, 1000) (valid token ids for any real vocabulary);
    - anything named ``*mask*``: ones (True for bool): nothing masked;
    - other integers: uniform in [0, 256) (clipped to the dtype), small enough to index tables;
    - floats: standard normal;
    - bool: False.
    """
    dims = dict(dims or {})
    for k, v in dims.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise UsageError(f"dimension {k}={v!r}: must be a positive integer")
    batch = int(dims.get("batch", BATCH_DEFAULT))
    given = ", ".join(f"{k}={v}" for k, v in dims.items()) or "nothing"
    rng = np.random.default_rng(seed)

    dynamic: set[str] = set()
    for s in specs:
        dynamic.update(d for d in (s.shape or ()) if isinstance(d, str))
    unused = sorted(set(dims) - dynamic - {"batch"})
    if unused:
        known = ", ".join(sorted(dynamic)) or "none"
        raise UsageError(f"dimension(s) {', '.join(unused)} given but no input has them; the "
                         f"dynamic dimensions of this model are {known}")

    arrays = {}
    for s in specs:
        if s.shape is None:
            raise UsageError(f"input {s.name!r} ({s.dtype}) has no tensor shape in the model: "
                             "cannot make a value for it")
        shape = []
        for axis, d in enumerate(s.shape):
            if isinstance(d, int):
                shape.append(d)
            elif d in dims:
                shape.append(int(dims[d]))
            elif _is_batch_dim(d, axis):
                shape.append(batch)
            else:
                raise UsageError(
                    f"input {s.name!r} has a dynamic dimension {d!r}: give it, e.g. "
                    f"--dim {d}=128 (given: {given}; only batch has a default, {BATCH_DEFAULT})")
        arrays[s.name] = _values(s, tuple(shape), rng)
    return arrays


def load_inputs(path: str, specs: list[InputSpec]) -> tuple[list[dict[str, np.ndarray]], dict]:
    """Real inputs from an .npz file (``numpy.savez``): one array per model input, named as
    the input is, shaped as the input (one sample) or with one leading axis more (that many
    samples, the same count for every input). Returns the samples (feeds) and the dynamic
    dimensions they fix (``{"seq": 77}``). Anything else is a UsageError naming the input
    and what was expected: a missing or extra array, a dtype of another kind (float for an
    integer input), a fixed dimension of another size, a dynamic one that two arrays give
    differently. Arrays are cast to the input's dtype within their kind (float64 -> float32)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise UsageError(f"--inputs {path}: no such file") from None
    except (OSError, ValueError) as e:  # not a zip, a pickled object, a damaged member
        raise UsageError(f"--inputs {path}: not an .npz file of arrays (numpy.savez): {e}") from None
    if not isinstance(arrays, dict) or not arrays:
        raise UsageError(f"--inputs {path}: holds no arrays")
    names = [s.name for s in specs]
    missing = [n for n in names if n not in arrays]
    extra = sorted(set(arrays) - set(names))
    if missing or extra:
        raise UsageError(f"--inputs {path}: " + "; ".join(filter(None, (
            missing and f"no array for input(s) {', '.join(missing)}",
            extra and f"array(s) {', '.join(extra)} match no input"))) +
            f"; the model's inputs are {', '.join(names)}")
    dims: dict[str, int] = {}
    counts = set()
    feeds_by_name = {}
    for s in specs:
        a = arrays[s.name]
        if s.shape is None:
            raise UsageError(f"input {s.name!r} has no tensor shape in the model")
        want = np.dtype(s.dtype)
        if a.dtype.kind != want.kind and not (want.kind in "iu" and a.dtype.kind in "iu"):
            raise UsageError(f"--inputs {path}: array {s.name!r} is {a.dtype}, the input is "
                             f"{want}")
        if a.ndim not in (len(s.shape), len(s.shape) + 1):
            raise UsageError(f"--inputs {path}: array {s.name!r} has shape {a.shape}; the "
                             f"input is {_shape_words(s.shape)}, with an optional leading "
                             "axis of samples")
        batched = a if a.ndim == len(s.shape) + 1 else a[None]
        counts.add(batched.shape[0])
        for axis, (d, n) in enumerate(zip(s.shape, batched.shape[1:])):
            if isinstance(d, int) and d != n:
                raise UsageError(f"--inputs {path}: array {s.name!r} has {n} on axis {axis}, "
                                 f"the input's is {d} (shape {_shape_words(s.shape)})")
            if isinstance(d, str) and dims.setdefault(d, int(n)) != n:
                raise UsageError(f"--inputs {path}: dimension {d} is {dims[d]} in one array "
                                 f"and {n} in {s.name!r}")
        feeds_by_name[s.name] = batched.astype(want, copy=False)
    if len(counts) > 1:
        raise UsageError(f"--inputs {path}: the arrays hold {sorted(counts)} samples; give "
                         "every input the same count")
    count = counts.pop()
    if count < 1:
        raise UsageError(f"--inputs {path}: holds no samples")
    return [{k: np.ascontiguousarray(v[i]) for k, v in feeds_by_name.items()}
            for i in range(count)], dims


def _shape_words(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _values(s: InputSpec, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    try:
        dtype = np.dtype(s.dtype)
    except TypeError:
        raise UsageError(f"input {s.name!r} is a {s.dtype}, not a tensor: not supported") from None
    name = s.name.lower()
    if "mask" in name and dtype.kind in "biuf":
        return np.ones(shape, dtype)
    if dtype.kind in "iu":
        if "position_ids" in name:
            return np.broadcast_to(np.arange(shape[-1] if shape else 1, dtype=dtype),
                                   shape).copy()
        if "token_type" in name or "segment" in name:
            return np.zeros(shape, dtype)
        high = min(1000 if "ids" in name else 256, int(np.iinfo(dtype).max) + 1)
        return rng.integers(0, high, size=shape, dtype=dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape, dtype=np.float32).astype(dtype, copy=False)
    if dtype.kind == "b":
        return np.zeros(shape, bool)
    raise UsageError(f"input {s.name!r} has dtype {s.dtype}: cannot make values for it")


# --------------------------------------------------------------------------------------------
# Documentation
# --------------------------------------------------------------------------------------------

def _sha256(path: str) -> str:
    """The file's SHA-256: the model's identity when documents are compared."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def describe(ref: ModelRef) -> dict:
    """The model's entry in a result document: identity, sizes and signature.

    ``sha256`` identifies the file (compare checks it); ``params`` counts the elements of all initializers and Constant tensors of the main graph;
    ``param_bytes`` their size in bytes (external data included); ``bytes`` the .onnx file.
    """
    m = onnx.load(ref.path, load_external_data=False)
    tensors = list(m.graph.initializer) + [a.t for n in m.graph.node if n.op_type == "Constant"
                                           for a in n.attribute if a.name == "value"]
    params = sum(math.prod(t.dims) for t in tensors)
    param_bytes = sum(math.prod(t.dims) * helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
                      for t in tensors if t.data_type != TensorProto.STRING)
    outputs = [{"name": o.name, "shape": list(_shape_of(o))} for o in m.graph.output]
    return {
        "name": ref.name,
        "source": ref.source,
        "path": ref.path,
        "description": ref.description,
        "bytes": ref.bytes,
        "sha256": _sha256(ref.path),
        "params": int(params),
        "param_bytes": int(param_bytes),
        "opsets": {(o.domain or "ai.onnx"): o.version for o in m.opset_import},
        "inputs": [{"name": s.name, "dtype": s.dtype,
                    "shape": None if s.shape is None else list(s.shape)}
                   for s in _inputs_of(m.graph)],
        "outputs": outputs,
    }


def _shape_of(vi: onnx.ValueInfoProto) -> tuple:
    tt = vi.type.tensor_type
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                 for d in tt.shape.dim)
