"""int8 copies of a model, made once with onnxruntime.quantization and cached.

``static`` (the default): QuantizeLinear/DequantizeLinear pairs (QDQ) around MatMul, Gemm
and Conv, weights int8 per channel, activations uint8 with ranges calibrated on inputs:
``CALIBRATION_SAMPLES`` generated from the model's signature with fixed seeds, or the user's
own (``--inputs``). Both engines run such a file in int8: ONNX Runtime fuses the pairs into
its quantized kernels; OpenVINO runs the layers in u8/i8, which its runtime model shows
(engines/openvino.py reads it back). ``dynamic``: weights int8, activations quantized at run
time (MatMulInteger); ONNX Runtime runs it in int8, OpenVINO in f32, and says so.

A copy's name holds what made it: the source file's SHA-256, the method, the calibration
inputs' hash and ``QUANTIZE_VERSION``. A changed model or other calibration makes another
copy, so one on disk is never stale; it is written under a temporary name and renamed, so
racing processes see no file or a whole one.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import UsageError

__all__ = ["METHODS", "CALIBRATION_SAMPLES", "OPS", "int8_copy"]

METHODS = ("static", "dynamic")
CALIBRATION_SAMPLES = 8     # generated calibration inputs (seeds CALIBRATION_SEED + k)
CALIBRATION_SEED = 1000     # apart from the workers' seeds (0, 1, ...), which are measured
OPS = ("MatMul", "Gemm", "Conv")  # what is quantized; the rest stays f32
QUANTIZE_VERSION = 1        # bump whenever the recipe changes: it names the cached files
_NAMED_HASH = 16


def int8_copy(source: str, *, method: str = "static", dims: dict | None = None,
              samples: Sequence[dict] | None = None, cache_dir: str | None = None,
              say=None) -> dict:
    """The int8 copy of the model at ``source`` (made first when none is cached): a dict
    with ``path``, ``method``, ``calibration`` (in words), ``ops`` and ``cached`` (found on
    disk). ``samples``: calibration feeds (default: generated for ``dims``); ``say``: called
    with a line before a copy is made, which takes seconds."""
    from . import models
    if method not in METHODS:
        raise UsageError(f"unknown quantization {method!r}; methods: {', '.join(METHODS)}")
    if method == "static":
        if samples:
            feeds, calibration = list(samples), f"{len(samples)} given input(s)"
        else:
            specs = models.inputs(source)
            feeds = [models.make_inputs(specs, dims, seed=CALIBRATION_SEED + k)
                     for k in range(CALIBRATION_SAMPLES)]
            calibration = (f"{CALIBRATION_SAMPLES} generated inputs (seeds {CALIBRATION_SEED}-"
                           f"{CALIBRATION_SEED + CALIBRATION_SAMPLES - 1}): ranges from random "
                           "values, not from real data")
    else:
        feeds, calibration = [], "none (activations quantized at run time)"
    key = hashlib.sha256()
    key.update(f"{models._sha256(source)} {method} v{QUANTIZE_VERSION} {OPS}".encode())
    for feed in feeds:
        for name in sorted(feed):
            key.update(name.encode() + str(feed[name].dtype).encode() + str(feed[name].shape).encode())
            key.update(np.ascontiguousarray(feed[name]).tobytes())
    directory = Path(cache_dir) if cache_dir is not None else models.default_cache_dir()
    path = directory / (f"{Path(source).stem}-int8-{method}-"
                        f"{key.hexdigest()[:_NAMED_HASH]}.onnx")
    out = {"path": str(path), "method": method, "calibration": calibration, "ops": list(OPS),
           "cached": path.is_file()}
    if out["cached"]:
        return out
    if say:
        say(f"making the int8 copy ({method}; calibration: {calibration.split(':')[0]}); "
            f"it is cached in {directory}")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as e:
        raise UsageError(f"cannot write the int8 copy into {directory}: {e.strerror} (set "
                         "NUMAPROBE_CACHE to a folder you can write)") from None
    try:
        _quantize(source, tmp, method, feeds)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return out


def _quantize(source: str, target: str, method: str, feeds: list[dict]) -> None:
    try:
        from onnxruntime import quantization as q
    except ImportError as e:
        raise ModuleNotFoundError("int8 needs onnxruntime's quantization tools, which are not "
                                  "installed", name="onnxruntime") from e

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            self.left = iter(feeds)

        def get_next(self):
            return next(self.left, None)
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # its advice to pre-process, on the root logger
    try:
        if method == "static":
            q.quantize_static(source, target, Reader(), quant_format=q.QuantFormat.QDQ,
                              activation_type=q.QuantType.QUInt8,
                              weight_type=q.QuantType.QInt8, per_channel=True,
                              op_types_to_quantize=list(OPS))
        else:
            q.quantize_dynamic(source, target, weight_type=q.QuantType.QInt8,
                               op_types_to_quantize=list(OPS))
    except Exception as e:  # a graph the quantizer cannot take: a message, not a traceback
        raise UsageError(f"cannot make an int8 copy of {source} ({method}): "
                         f"{type(e).__name__}: {e}") from None
    finally:
        logging.disable(previous)
