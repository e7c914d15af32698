"""OpenVINO's CPU plugin, which reads the .onnx file directly.

Every setting that decides the speed is given explicitly, never left to a default that
changes with the CPU (on a CPU with AMX, OpenVINO's default precision is bf16):
``INFERENCE_PRECISION_HINT`` always; and unless the engine is to size itself (``threads`` and
``streams`` both 0: the ``naive`` layout), ``INFERENCE_NUM_THREADS`` (all the instance's
threads, shared by its streams), ``NUM_STREAMS``, ``ENABLE_CPU_PINNING`` and
``PERFORMANCE_HINT`` (LATENCY for one stream, THROUGHPUT for more). What the compiled model
took is read back (``get_property``): a CPU without bf16 units runs f32 whatever was asked,
and the resolved precision says so.

An instance with S streams keeps S requests in flight (``AsyncInferQueue``) and is told of
every completion. OpenVINO's pinning takes CPUs from the process's mask, which the worker has
set to the instance's CPUs before importing it; the worker's escaped-thread check holds it to
that (worker.py).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from . import Engine, Request, Session


class OpenVinoSession(Session):
    def __init__(self, req: Request):
        import openvino as ov
        config = {"INFERENCE_PRECISION_HINT": req.precision}
        if req.threads or req.streams:
            if req.threads:
                config["INFERENCE_NUM_THREADS"] = req.threads
            if req.streams:
                config["NUM_STREAMS"] = req.streams
            config["ENABLE_CPU_PINNING"] = req.pin
            config["PERFORMANCE_HINT"] = "LATENCY" if req.streams == 1 else "THROUGHPUT"
        self.asked = config
        self.compiled = ov.Core().compile_model(req.model, "CPU", config)
        self.inflight = max(1, int(self._get("NUM_STREAMS") or 1))
        self.queue = ov.AsyncInferQueue(self.compiled, self.inflight)
        self.queue.set_callback(lambda request, done: done())

    def _get(self, key: str):
        """A property of the compiled model; None where this OpenVINO does not have it."""
        try:
            return self.compiled.get_property(key)
        except RuntimeError:
            return None

    def run(self, feeds: dict) -> list[np.ndarray]:
        result = self.compiled(feeds)
        return [np.array(result[port]) for port in self.compiled.outputs]  # copies: reused

    def submit(self, feeds: dict, done: Callable[[], None]) -> None:
        self.queue.start_async(feeds, userdata=done)  # waits for an idle request when all run

    def wait(self) -> None:
        self.queue.wait_all()

    def resolved(self) -> dict:
        precision, hint = self._get("INFERENCE_PRECISION_HINT"), self._get("PERFORMANCE_HINT")
        threads, pin = self._get("INFERENCE_NUM_THREADS"), self._get("ENABLE_CPU_PINNING")
        return {"engine": ENGINE.name, "version": ENGINE.version(),
                "precision": precision.get_type_name() if precision is not None else None,
                "threads": int(threads) if threads else None, "inter": None,
                "streams": self.inflight, "spin": None,  # TBB's own: OpenVINO has no setting
                "pin": None if pin is None else bool(pin),
                "hint": getattr(hint, "name", None if hint is None else str(hint))}

    def close(self) -> None:
        del self.queue, self.compiled


ENGINE = Engine(name="openvino", title="OpenVINO", module="openvino",
                precisions=("f32", "bf16", "f16"), runs="OpenVINO's CPU plugin runs f32, bf16 and f16", streams=True,
                build=OpenVinoSession)
