"""numaprobe: how memory locality, core allocation and process layout decide the speed of a
machine and of the inference that runs on it.

The library: ``topology`` (what the machine is), ``placement`` (pinning, node-local memory),
``clock`` (the calibrated counter). The command line: ``python -m numaprobe --help``.
"""
import sys as _sys

if not _sys.platform.startswith("linux"):
    raise ImportError(f"numaprobe needs Linux (NUMA system calls, /sys and /proc); this is "
                      f"{_sys.platform}")

from ._version import __version__  # noqa: E402  (first: the one source, see _version.py)
from . import clock, topology  # noqa: E402
from .placement import (  # noqa: E402
    Memory, Pages, alloc, bound, membind, migrate, pin, pinned, run_bound, where)
from .topology import Topology, format_list, parse_list  # noqa: E402

__all__ = [
    "__version__", "Memory", "Pages", "Topology", "alloc", "bound", "clock", "format_list", "get_include",
    "membind", "migrate", "parse_list", "pin", "pinned", "read_topology", "run_bound",
    "topology", "where",
]


def read_topology(root=None) -> Topology:
    """The machine's topology (see numaprobe.topology.read)."""
    return topology.read(root)


def get_include() -> str:
    """The folder holding numaprobe/numaprobe.h, for building C or Cython code against it."""
    import os
    here = os.path.dirname(__file__)
    shipped = os.path.join(here, "include")
    # An editable install (pip install -e) leaves the header in the source tree.
    source = os.path.join(here, os.pardir, os.pardir, "native", "include")
    if not os.path.isdir(shipped) and os.path.isfile(os.path.join(source, "numaprobe", "numaprobe.h")):
        return os.path.normpath(source)
    return shipped
