"""OpenVINO's CPU plugin, which reads the .onnx file directly.

Every setting that decides the speed is given explicitly, never left to a default that
changes with the CPU (on a CPU with AMX, OpenVINO's default precision is bf16):
``INFERENCE_PRECISION_HINT`` always; and unless the engine is to size itself (``threads`` and
``streams`` both 0: the ``naive`` layout), ``INFERENCE_NUM_THREADS`` (all the instance's
threads, shared by its streams), ``NUM_STREAMS``, ``ENABLE_CPU_PINNING`` and
``PERFORMANCE_HINT`` (LATENCY for one stream, THROUGHPUT for more). What the compiled model
took is read back (``get_property``): a CPU without bf16 units runs f32 whatever was asked,
and the resolved precision says so. int8 is the model's own (its QDQ pairs, quantize.py), run
with an f32 hint for what is left; the runtime model says how many compute layers ran in
u8/i8, and the resolved precision is int8 only where some did.

An instance with S streams keeps S requests in flight (``AsyncInferQueue``); each completion
is read back from its request, with no Python callback (see OpenVinoSession). OpenVINO's
pinning takes CPUs from the process's mask, which the worker has set to the instance's CPUs
before importing it; the worker's escaped-thread check holds it to that (worker.py).
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from . import Engine, Request, Session


class OpenVinoSession(Session):
    def __init__(self, req: Request):
        import openvino as ov
        # int8 is the model's own (the int8 copy's QDQ pairs); what is left runs in f32.
        config = {"INFERENCE_PRECISION_HINT": "f32" if req.precision == "int8" else req.precision}
        self.int8 = req.precision == "int8"
        if req.threads or req.streams:
            if req.threads:
                config["INFERENCE_NUM_THREADS"] = req.threads
            if req.streams:
                config["NUM_STREAMS"] = req.streams
            config["ENABLE_CPU_PINNING"] = req.pin
            config["PERFORMANCE_HINT"] = "LATENCY" if req.streams == 1 else "THROUGHPUT"
        if req.profile:
            config["PERF_COUNT"] = True
        self.asked = config
        self.compiled = ov.Core().compile_model(req.model, "CPU", config)
        self.profiling = req.profile
        self.request = self.compiled.create_infer_request() if req.profile else None
        self.times: dict[str, int] = {}
        self.inflight = max(1, int(self._get("NUM_STREAMS") or 1))
        # No Python callback: a completion that needed the GIL would make each stream's
        # thread wait for the interpreter (8 % of the throughput of 2 streams on 2 CPUs,
        # against benchmark_app, which has none either), and a callback that waits for the
        # GIL while start_async holds it deadlocks. Completions are read back from the
        # requests instead: a request that is idle again has finished, and its own clock
        # (``latency``) says how long it ran.
        self.queue = ov.AsyncInferQueue(self.compiled, self.inflight)
        self.pending: dict[int, tuple[Callable, int]] = {}  # request id -> (done, started ns)

    def _get(self, key: str):
        """A property of the compiled model; None where this OpenVINO does not have it."""
        try:
            return self.compiled.get_property(key)
        except RuntimeError:
            return None

    def run(self, feeds: dict) -> list[np.ndarray]:
        if self.request is not None:  # profiling: one request of our own, read after each run
            result = self.request.infer(feeds)
            for p in self.request.profiling_info:
                if p.status.name == "EXECUTED":
                    ns = int(p.real_time.total_seconds() * 1e9)
                    self.times[p.node_type] = self.times.get(p.node_type, 0) + ns
        else:
            result = self.compiled(feeds)
        return [np.array(result[port]) for port in self.compiled.outputs]  # copies: reused

    def mark(self) -> None:
        self.times = {}

    def op_times(self) -> dict[str, int]:
        """From OpenVINO's performance counts (PERF_COUNT), by layer type."""
        return dict(self.times)

    def _finished(self, rid: int) -> None:
        """Reports request ``rid``'s last inference, now that it is idle: done at its start
        plus the request's own measure of how long it ran."""
        done, started = self.pending.pop(rid)
        done(started + int(self.queue[rid].latency * 1e6))

    def submit(self, feeds: dict, done: Callable) -> None:
        rid = self.queue.get_idle_request_id()  # waits (in C++) until one is free
        if rid in self.pending:
            self._finished(rid)
        self.pending[rid] = (done, time.monotonic_ns())
        self.queue.start_async(feeds)  # takes that same idle request

    def idle(self) -> None:
        self.queue.get_idle_request_id()

    def wait(self) -> None:
        self.queue.wait_all()
        for rid in list(self.pending):
            self._finished(rid)

    def _int8_layers(self) -> tuple[int, int]:
        """Of the compiled model's compute layers (COMPUTE), how many run in u8/i8, as its
        runtime model says, and how many there are."""
        ran = [str(op.get_rt_info()["runtimePrecision"].astype(str))
               for op in self.compiled.get_runtime_model().get_ordered_ops()
               if "layerType" in op.get_rt_info()
               and op.get_rt_info()["layerType"].astype(str) in COMPUTE]
        return sum(p in ("u8", "i8") for p in ran), len(ran)

    def resolved(self) -> dict:
        precision, hint = self._get("INFERENCE_PRECISION_HINT"), self._get("PERFORMANCE_HINT")
        threads, pin = self._get("INFERENCE_NUM_THREADS"), self._get("ENABLE_CPU_PINNING")
        ran = precision.get_type_name() if precision is not None else None
        extra = {}
        if self.int8:  # int8 where its compute layers ran in it, whatever the hint says
            int8, layers = self._int8_layers()
            extra = {"int8_layers": f"{int8} of {layers} compute layers in int8"}
            ran = "int8" if int8 else ran
        return {**extra, "engine": ENGINE.name, "version": ENGINE.version(),
                "precision": ran,
                "threads": int(threads) if threads else None, "inter": None,
                "streams": self.inflight, "spin": None,  # TBB's own: OpenVINO has no setting
                "pin": None if pin is None else bool(pin),
                "hint": getattr(hint, "name", None if hint is None else str(hint))}

    def close(self) -> None:
        """Frees the model, once nothing is in flight."""
        self.wait()
        del self.queue, self.request, self.compiled


# The runtime model's layer types that do the arithmetic (the rest moves or converts data).
COMPUTE = ("FullyConnected", "Convolution", "MatMul", "GroupConvolution", "Deconvolution")

ENGINE = Engine(name="openvino", title="OpenVINO", module="openvino",
                precisions=("f32", "bf16", "f16", "int8"),
                runs="OpenVINO's CPU plugin runs f32, bf16, f16 and int8 (a quantized copy)",
                streams=True,
                build=OpenVinoSession)
