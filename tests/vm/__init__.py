"""Run commands in a QEMU guest with several NUMA nodes (see harness.py).

    from tests.vm import run, TOPOLOGIES, available
    ok, why = available()                 # pytest.skip(why) when not ok
    rc = run("cxl", ["python", "-m", "pytest", "-p", "no:cacheprovider", "tests"])

CLI: python -m tests.vm TOPOLOGY [--timeout S] [--keep] [-v] -- COMMAND [ARGS...]
"""

from .harness import VMError, VMTimeout, VMUnavailable, available, run
from .topologies import TOPOLOGIES

__all__ = ["run", "available", "TOPOLOGIES", "VMError", "VMTimeout", "VMUnavailable"]
