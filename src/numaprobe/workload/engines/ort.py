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

import json
import os

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
        if req.profile:
            import tempfile
            so.enable_profiling = True
            so.profile_file_prefix = os.path.join(tempfile.gettempdir(),
                                                  f"numaprobe-profile-{os.getpid()}")
        self.runs, self.marked = 0, 0
        self.sess = ort.InferenceSession(req.model, so, providers=["CPUExecutionProvider"])
        if req.pin:
            placement.pin(req.cpus[:1])  # the caller is the intra-op pool's first thread
        self.req = req

    def run(self, feeds: dict) -> list[np.ndarray]:
        self.runs += 1
        return self.sess.run(None, feeds)

    def mark(self) -> None:
        self.marked = self.runs

    def op_times(self) -> dict[str, int]:
        """From ONNX Runtime's profile (a JSON trace it writes, read and removed here): each
        kernel's time, by op type, in the runs after ``mark`` (the trace's model_run events
        say where each run starts)."""
        path = self.sess.end_profiling()
        try:
            with open(path) as f:
                events = json.load(f)
        finally:
            os.unlink(path)
        starts = sorted(e["ts"] for e in events if e.get("name") == "model_run")
        cutoff = starts[self.marked] if self.marked < len(starts) else float("inf")
        out: dict[str, int] = {}
        for e in events:
            if (e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")
                    and e["ts"] >= cutoff):
                op = e.get("args", {}).get("op_name", "?")
                out[op] = out.get(op, 0) + int(e["dur"]) * 1000  # microseconds in the trace
        return out

    def resolved(self) -> dict:
        """ONNX Runtime reads back what it was given. A pool it sized itself (threads 0) is
        reported as None, and so is its pinning (that pool sets its own affinities); the
        worker counts the threads it created."""
        r = self.req
        return {"engine": ENGINE.name, "version": ENGINE.version(), "precision": r.precision,
                "threads": r.threads or None, "inter": r.inter, "streams": None,
                "spin": r.spin, "pin": r.pin if r.threads else None, "hint": None}

    def close(self) -> None:
        del self.sess


def _build(req: Request) -> Session:
    """An int8 request's model is the int8 copy (quantize.py), which the provider runs with
    its quantized kernels: the precision is the file's, ONNX Runtime has no setting for it."""
    if req.precision not in ENGINE.precisions:  # engines.limit refuses it before any worker
        raise ValueError(f"onnxruntime's CPU provider runs f32 and int8, not {req.precision}")
    return OrtSession(req)


ENGINE = Engine(name="ort", title="ONNX Runtime", module="onnxruntime", precisions=("f32", "int8"),
                runs="onnxruntime's CPU provider runs f32 and int8 (a quantized copy)", streams=False,
                build=_build)
