"""Run commands in a QEMU guest with several NUMA nodes (see harness.py).

    import sys
    from tests.vm import run, TOPOLOGIES, available
    ok, why = available()                 # pytest.skip(why) when not ok
    rc = run("cxl", [sys.executable, "-m", "pytest", "-q", "tests/some_dir"])

CLI: python -m tests.vm TOPOLOGY [--timeout S] [--keep] [-v] -- COMMAND [ARGS...]

The guest's CPUs are emulated: Python runs there 10-20 times slower than on the host,
so keep what runs inside small (a pytest plugin such as hypothesis's costs ~10 s of
start-up there: `-p no:hypothesispytest`).
"""

from .harness import VMError, VMTimeout, VMUnavailable, available, run
from .topologies import TOPOLOGIES

__all__ = ["run", "available", "TOPOLOGIES", "VMError", "VMTimeout", "VMUnavailable"]
