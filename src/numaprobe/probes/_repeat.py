"""A probe run several times and pooled (``--repeat``): every figure keeps each run's median,
so a comparison can resample whole runs and its interval covers the drift between runs, which
on a shared or virtual machine is often larger than the noise within one."""
from __future__ import annotations

import dataclasses

from ..errors import UsageError
from .. import stats
from ..topology import Topology
from . import _common as C
from ._latency import Sweep, _reported, detect_levels


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during run ``done + 1`` of ``runs``: ``result`` pools the runs that
    finished (None when none did), so they are kept, marked partial, not thrown away."""

    def __init__(self, result, done: int, runs: int):
        super().__init__(f"interrupted after {done} of {runs} runs")
        self.result, self.done, self.runs = result, done, runs

    def warning(self) -> str:
        return (f"partial: interrupted after {self.done} of {self.runs} runs; the figures "
                f"pool the {self.done} that finished")


def repeat(measure, runs: int, *, topology: Topology | None = None, progress=None):
    """Calls ``measure()`` ``runs`` times, back to back (each run covers every cell, so the
    cells are interleaved run by run), and returns one result of the same type with every
    Summary pooled (stats.merge_runs). A sweep's levels are found again on the pooled curve.
    Interrupted, it raises ``Interrupted`` holding the finished runs pooled. ``progress``
    (None: shown, False: quiet) says after each run how long the rest will take."""
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise UsageError(f"repeat must be a whole number >= 1, got {runs!r}")
    line = C.Progress(runs, "runs", progress if runs > 1 else False)
    results = []
    try:
        for _ in range(runs):
            results.append(measure())
            line.step()
    except KeyboardInterrupt:
        raise Interrupted(_pooled(results, topology), len(results), runs) from None
    finally:
        line.close()
    return _pooled(results, topology)


def _pooled(results, topology):
    if len(results) <= 1:
        return results[0] if results else None
    merged = stats.merge_runs(results)
    if isinstance(merged, Sweep):
        reported = _reported(C.topology(topology), merged.cpu)
        merged = dataclasses.replace(merged, levels=tuple(detect_levels(merged.points, reported)))
    return merged
