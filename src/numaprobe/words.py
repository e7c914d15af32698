"""Counts and id lists as a sentence says them: "1 CPU", "2 CPUs", "CPU 0", "CPUs 0-3"."""
from __future__ import annotations

__all__ = ["plural", "ids"]


def plural(n: int, noun: str, many: str | None = None) -> str:
    """``plural(1, "CPU")`` -> "1 CPU", ``plural(2, "CPU")`` -> "2 CPUs"; ``many`` for a noun
    whose plural is not noun + s ("instances" is; "delays" is; "processes" is not)."""
    return f"{n} {noun if n == 1 else many or noun + 's'}"


def ids(noun: str, values, many: str | None = None) -> str:
    """``ids("CPU", [0])`` -> "CPU 0", ``ids("CPU", [0, 1, 2])`` -> "CPUs 0-2"."""
    from .topology import format_list
    values = sorted(set(values))
    return f"{noun if len(values) == 1 else many or noun + 's'} {format_list(values)}"
