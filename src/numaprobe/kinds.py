"""The registry of result kinds: one object per kind, registered once, next to the code that
measures it (``probes/_latency.py`` holds the latency kinds, ``workload/infer.py`` the
inference ones, ...).

A kind knows everything numaprobe does with its documents: its title, its comparable figures
(``compare``), its CSV rows (``--csv``), its text table (what the CLI prints), its HTML section
(``report``) and its plots (``plot``, ``report``). Each function takes the whole document, so
a document from another machine or an older numaprobe renders the same as a fresh one. Adding
a kind is one module (and its tests): define a ``Kind`` there and ``register`` it.

    >>> from numaprobe import kinds
    >>> kinds.get("latency").title
    'idle memory latency'
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["Figure", "Kind", "register", "get", "names", "all_kinds"]


@dataclass(frozen=True)
class Figure:
    """One comparable figure of a document: a name that matches it across documents, its unit
    and direction, the value shown, and what an interval can be drawn from."""
    name: str
    unit: str
    higher_is_better: bool
    value: float                   # the statistic shown (median, percentile, mean)
    runs: tuple = ()               # one value per run or round: the unit of evidence
    noise: float | None = None     # foreign + stolen CPU share of its window (None: the doc's)
    family: str = "primary"        # "secondary" figures are tested as a family of their own

    @classmethod
    def of(cls, name: str, summary: dict, higher_is_better: bool) -> "Figure":
        """A figure from a stats.Summary's dict (median, samples, runs, unit)."""
        return cls(name, summary["unit"], higher_is_better, summary["median"],
                   runs=tuple(summary.get("runs", ())))


def _none(doc: dict) -> list:
    return []


@dataclass(frozen=True)
class Kind:
    """What numaprobe does with one kind of result document. Every function takes the whole
    document ({"kind", "result", "machine", ...}); ``figures``/``rows`` None: the kind has
    nothing to compare or tabulate."""
    name: str
    title: str
    text: Callable[[dict], str]                                   # the table people read
    html: Callable[[dict], str]                                   # the "results" section
    figures: Callable[[dict], list[Figure]] | None = None         # what compare matches
    rows: Callable[[dict], tuple[list, list]] | None = None       # (header, rows) for CSV
    plots: Callable[[dict], list[tuple[str, Callable]]] = field(default=_none)
    # plots: (figure name, build) pairs; build() returns a matplotlib Figure or None to skip


_REGISTRY: dict[str, Kind] = {}
# The modules that define kinds, imported on first use so that `import numaprobe` stays light.
_PROVIDERS = ("numaprobe.topology", "numaprobe.clock", "numaprobe.probes",
              "numaprobe.workload.infer", "numaprobe.workload.cost", "numaprobe.workload.tune",
              "numaprobe.compare", "numaprobe.fleet.report")
_loaded = False


def register(kind: Kind) -> Kind:
    """Adds a kind (once: a second kind of the same name is a programming error)."""
    if kind.name in _REGISTRY and _REGISTRY[kind.name] is not kind:
        raise RuntimeError(f"result kind {kind.name!r} is registered twice")
    _REGISTRY[kind.name] = kind
    return kind


def _load() -> None:
    global _loaded
    if not _loaded:
        for mod in _PROVIDERS:
            importlib.import_module(mod)
        _loaded = True


def names() -> tuple[str, ...]:
    """Every kind's name, in registration order."""
    _load()
    return tuple(_REGISTRY)


def all_kinds() -> tuple[Kind, ...]:
    _load()
    return tuple(_REGISTRY.values())


def get(name: str) -> Kind:
    """The kind of that name; ValueError listing the kinds for anything else."""
    _load()
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown result kind {name!r}; kinds: {', '.join(_REGISTRY)}") from None
