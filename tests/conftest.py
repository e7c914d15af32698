"""Test policy shared by every test file.

- Tests marked ``numa_vm`` need several NUMA nodes: they run inside the QEMU guest
  (``python -m tests.vm two-socket -- python -m pytest -m numa_vm``) and skip elsewhere,
  saying so.
- With NUMAPROBE_FAIL_ON_SKIP=1 (as .ci/run sets it) a skipped test fails the run, except a
  ``numa_vm`` test outside the guest: nothing that should run here may be skipped silently.
"""
import os

import pytest

IN_VM = bool(os.environ.get("NUMAPROBE_VM_TOPOLOGY"))
VM_HINT = ("needs several NUMA nodes: runs in the VM suite "
           "(python -m tests.vm two-socket -- python -m pytest -m numa_vm)")


def pytest_collection_modifyitems(config, items):
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


@pytest.fixture(scope="session")
def topo():
    import numaprobe
    return numaprobe.read_topology()
