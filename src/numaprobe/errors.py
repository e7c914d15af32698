"""The errors numaprobe raises on purpose, so that the command line can tell bad input (one
line, exit code 2) from a bug (a traceback and a request to report it).

Both are subclasses of the built-in exceptions the library promises: ``UsageError`` is a
``ValueError`` (a CPU, node, size, list or option that is not valid, with what is valid), and
``NotEnoughMemory`` a ``MemoryError`` (a node cannot hold what was asked, with what it has).
"""
from __future__ import annotations

__all__ = ["UsageError", "NotEnoughMemory"]


class UsageError(ValueError):
    """Input that is not valid; the message names what is wrong and what is allowed."""


class NotEnoughMemory(MemoryError):
    """A request that the memory it names cannot hold; the message says how much there is."""
