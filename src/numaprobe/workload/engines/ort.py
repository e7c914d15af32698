"""ONNX Runtime's CPU provider: one inference at a time per instance, on an intra-op pool of
``threads`` (0: ONNX Runtime sizes its own pool, the ``naive`` layout) and ``inter`` inter-op
threads, sequential execution, spinning as asked.

Pinning: ONNX Runtime's threads inherit the building thread's mask and memory policy; with
``pin`` its intra-op threads are also given one CPU each (its ids are 1-based and count the
threads beyond the caller), and the caller, the pool's first thread, is pinned to the first
CPU. Without ``threads`` ONNX Runtime's default pool pins its own threads wherever it likes:
the worker's escaped-thread check refuses such a layout when it is pinned.
"""
from __future__ import annotations

import numpy as np

from ... import placement
from . import Engine, Request, Session


class OrtSession(Session):
    def __init__(self, req: Request):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = req.threads
        so.inter_op_num_threads = req.inter
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if req.spin else "0")
        if req.pin and req.threads > 1:
            # One entry per thread beyond the caller; ONNX Runtime counts CPUs from 1.
            so.add_session_config_entry("session.intra_op_thread_affinities",
                                        ";".join(str(c + 1) for c in req.cpus[1:req.threads]))
        self.sess = ort.InferenceSession(req.model, so, providers=["CPUExecutionProvider"])
        if req.pin:
            placement.pin(req.cpus[:1])  # the caller is the intra-op pool's first thread
        self.req = req

    def run(self, feeds: dict) -> list[np.ndarray]:
        return self.sess.run(None, feeds)

    def resolved(self) -> dict:
        """ONNX Runtime reads back what it was given. A pool it sized itself (threads 0) is
        reported as None, and so is its pinning (that pool sets its own affinities); the
        worker counts the threads it created."""
        r = self.req
        return {"engine": ENGINE.name, "version": ENGINE.version(), "precision": "f32",
                "threads": r.threads or None, "inter": r.inter, "streams": None,
                "spin": r.spin, "pin": r.pin if r.threads else None, "hint": None}

    def close(self) -> None:
        del self.sess


def _build(req: Request) -> Session:
    if req.precision != "f32":  # engines.limit refuses it before any worker starts
        raise ValueError(f"onnxruntime's CPU provider runs f32, not {req.precision}")
    return OrtSession(req)


ENGINE = Engine(name="ort", title="ONNX Runtime", module="onnxruntime", precisions=("f32",),
                runs="onnxruntime's CPU provider runs f32 (and int8 models)", streams=False,
                build=_build)
