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

import threading
import time
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
        # One permit per request. Waiting for a free request happens here, on a semaphore
        # (which lets go of the GIL), never inside start_async or wait_all: those can block
        # holding the GIL while the completion callback that would free them needs it, and
        # the worker then hangs (seen here about one run in three).
        self._free = threading.Semaphore(self.inflight)

        def finished(request, done):
            try:
                done()
            finally:
                self._free.release()
        self.queue.set_callback(finished)

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
        self._free.acquire()  # a request is free: start_async does not wait
        self.queue.start_async(feeds, userdata=done)

    def idle(self) -> None:
        self._free.acquire()  # until a request is free; submit takes it again at once
        self._free.release()

    def wait(self) -> None:
        for _ in range(self.inflight):  # every callback has run
            self._free.acquire()
        for _ in range(self.inflight):
            self._free.release()
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
        """Frees the model. The queue's destructor waits for its callback threads while
        holding the GIL, and a callback that has released its permit may still need the GIL
        to return: wait for every callback, then let go of the GIL for a moment first."""
        self.wait()
        time.sleep(0.02)
        del self.queue, self.compiled


ENGINE = Engine(name="openvino", title="OpenVINO", module="openvino",
                precisions=("f32", "bf16", "f16"), runs="OpenVINO's CPU plugin runs f32, bf16 and f16", streams=True,
                build=OpenVinoSession)
