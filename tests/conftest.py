"""Test policy shared by every test file.

- Tests marked ``numa_vm`` need several NUMA nodes: they run inside the QEMU guest
  (``python -m tests.vm two-socket -- python -m pytest -m numa_vm tests/test_multinode.py``)
  and skip elsewhere, saying so. They all live in that one file (collection checks it).
- With NUMAPROBE_FAIL_ON_SKIP=1 (as .ci/run sets it) a skipped test fails the run, except a
  ``numa_vm`` test outside the guest: nothing that should run here may be skipped silently.
"""
import os
import tempfile

import pytest

# What the quick check learns about a machine (probes/_learned.py) goes to a folder of this
# session's, so tests neither read nor leave findings in the user's cache; subprocesses
# inherit it.
os.environ.setdefault("NUMAPROBE_LEARNED", tempfile.mkdtemp(prefix="numaprobe-learned-"))

IN_VM = bool(os.environ.get("NUMAPROBE_VM_TOPOLOGY"))
VM_HINT = ("needs several NUMA nodes: runs in the VM suite (python -m tests.vm two-socket -- "
           "python -m pytest -m numa_vm tests/test_multinode.py)")


VM_FILE = "test_multinode.py"  # the one file the VM suite collects (.ci/run)


def pytest_collection_modifyitems(config, items):
    # Collecting every test file under QEMU's emulation took five minutes of the VM suite's
    # seven, so it collects only VM_FILE: a numa_vm test anywhere else would never run.
    strays = [i.nodeid for i in items if "numa_vm" in i.keywords and i.path.name != VM_FILE]
    if strays:
        raise pytest.UsageError(f"numa_vm tests belong in tests/{VM_FILE}, which the VM suite "
                                f"runs: {', '.join(strays)}")
    if IN_VM:
        return
    for item in items:
        if "numa_vm" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=VM_HINT))


_bad_skips = []


def pytest_runtest_logreport(report):
    if report.skipped and os.environ.get("NUMAPROBE_FAIL_ON_SKIP") == "1":
        if IN_VM or "numa_vm" not in report.keywords:
            _bad_skips.append(f"{report.nodeid}: {report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr}")


def pytest_sessionfinish(session, exitstatus):
    if _bad_skips:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if _bad_skips:
        terminalreporter.write_line("")
        terminalreporter.write_line(
            f"FAILED: {len(_bad_skips)} test(s) skipped that must run here "
            "(NUMAPROBE_FAIL_ON_SKIP=1):", red=True)
        for line in _bad_skips:
            terminalreporter.write_line(f"  {line}")


def workers_alive():
    """numaprobe's inference workers that this test run started: descendants of this process
    (a developer's numaprobe running beside the tests is not ours). A test that wants to see
    that none was orphaned keeps the list from before and waits on it (psutil.wait_procs)."""
    import psutil
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if "numaprobe.workload.worker" in " ".join(p.cmdline()):
                out.append(p)
        except psutil.Error:
            continue
    return out


@pytest.fixture(scope="session")
def topo():
    import numaprobe
    return numaprobe.read_topology()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A small MLP: fast enough that a second holds hundreds of inferences."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((256, 512)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((512, 64)).astype(np.float32), "w2")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("MatMul", ["r", "w2"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 256])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 64])], [w1, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    onnx.save(model, path)
    return str(path)
