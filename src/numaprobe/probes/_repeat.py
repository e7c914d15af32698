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


def repeat(measure, runs: int, *, topology: Topology | None = None):
    """Calls ``measure()`` ``runs`` times, back to back (each run covers every cell, so the
    cells are interleaved run by run), and returns one result of the same type with every
    Summary pooled (stats.merge_runs). A sweep's levels are found again on the pooled curve."""
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise UsageError(f"repeat must be a whole number >= 1, got {runs!r}")
    results = [measure() for _ in range(runs)]
    if runs == 1:
        return results[0]
    merged = stats.merge_runs(results)
    if isinstance(merged, Sweep):
        reported = _reported(C.topology(topology), merged.cpu)
        merged = dataclasses.replace(merged, levels=tuple(detect_levels(merged.points, reported)))
    return merged
