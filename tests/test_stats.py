"""Percentiles, intervals and verdicts against distributions whose answers are known."""
import numpy as np
import pytest

from numaprobe import stats


def test_nearest_rank_percentiles():
    xs = list(range(1, 101))  # 1..100
    assert stats.percentile(xs, 50) == 50 and stats.percentile(xs, 90) == 90
    assert stats.percentile(xs, 99) == 99 and stats.percentile(xs, 99.9) == 100
    assert stats.percentile([7.0], 99.9) == 7.0
    assert stats.percentile([1, 2, 3, 4], 25) == 1 and stats.percentile([1, 2, 3, 4], 26) == 2
    with pytest.raises(ValueError):
        stats.percentile([], 50)
    with pytest.raises(ValueError):
        stats.percentile([1], 0)


def test_min_samples():
    assert stats.min_samples(99) == 1000 and stats.min_samples(99.9) == 10000
    assert stats.min_samples(50) == 20


def test_bootstrap_interval_covers_the_true_median():
    rng = np.random.default_rng(1)
    hits = 0
    for trial in range(40):
        xs = rng.exponential(1.0, 400)  # true median ln 2
        lo, hi = stats.bootstrap_ci(xs, lambda s: stats.percentile(s, 50), boots=300, seed=trial)
        hits += lo <= np.log(2) <= hi
    assert hits >= 34  # a 95 % interval: about 38 of 40, allow for chance


@pytest.mark.parametrize("p, truth", [(50, np.log(2)), (99, np.log(100))])
def test_large_samples_draw_ranks_and_still_cover(p, truth):
    """Above RESAMPLE_MAX a percentile's interval comes from the order statistic's rank law,
    not from resamples: it must cover the true exponential quantile as often as a 95 %
    interval should, and agree with a real resampling bootstrap of the same sample."""
    rng = np.random.default_rng(3)
    n = stats.RESAMPLE_MAX * 3
    hits = 0
    for trial in range(40):
        xs = rng.exponential(1.0, n)
        lo, hi = stats.bootstrap_ci(xs, stats.Percentile(p), boots=400, seed=trial)
        hits += lo <= truth <= hi
    assert hits >= 34
    xs = np.sort(xs)
    plain = stats.bootstrap_ci(xs, lambda s: stats.percentile(s, p), boots=400, seed=1)
    drawn = stats.bootstrap_ci(xs, stats.Percentile(p), boots=400, seed=1)
    width = plain[1] - plain[0]
    assert abs(drawn[0] - plain[0]) < 0.25 * width and abs(drawn[1] - plain[1]) < 0.25 * width


def test_summary_warning():
    s = stats.summarize([1.0, 1.0, 2.0], "ns")
    assert s.warning("x") and "CV" in s.warning("x")
    assert stats.summarize([1.0, 1.01], "ns").warning() is None


def test_merge_runs_pools_summaries_and_keeps_the_rest():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Cell:
        cpu: int
        isa: str
        ns: stats.Summary
        pages: dict
        points: tuple

    def cell(xs, huge, isa="avx2"):
        return Cell(cpu=1, isa=isa, ns=stats.summarize(xs, "ns"), pages={"huge": huge},
                    points=((4096, stats.summarize([x / 2 for x in xs], "ns")),))

    merged = stats.merge_runs([cell([10, 11, 12], 1.0), cell([20, 21, 22], 0.5, "avx512"),
                               cell([30], 0.0)])
    assert merged.cpu == 1                                           # the first run's metadata
    assert merged.pages == {"huge": 0.5}                             # a fraction: the median
    assert merged.isa == "avx2, avx512"                              # a choice that differed
    assert merged.ns.runs == (11, 21, 30) and merged.ns.n == 7
    assert merged.ns.samples == (10, 11, 12, 20, 21, 22, 30) and merged.ns.median == 20
    assert merged.ns.to_dict()["runs"] == [11, 21, 30]
    size, pooled = merged.points[0]
    assert size == 4096 and pooled.runs == (5.5, 10.5, 15)
    assert "runs" not in stats.summarize([1.0], "ns").to_dict()


def test_merge_runs_bools_all_floats_median_ints_first():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Run:
        checksum_ok: bool
        allocate_gbs: float
        threads: int
        trials: dict

    merged = stats.merge_runs([Run(True, 9.0, 4, {"avx2": 3.0}), Run(False, 1.0, 8, {"avx2": 5.0}),
                               Run(True, 2.0, 16, {"avx2": 4.0})])
    assert merged.checksum_ok is False            # one bad run makes the repeat bad
    assert merged.allocate_gbs == 2.0             # the median run, not run 1's 9.0
    assert merged.threads == 4                    # counts and ids stay run 1's
    assert merged.trials == {"avx2": 4.0}
    assert stats.merge_runs([True, True]) is True
    assert stats.merge_runs([1.0, 2.0, 3.0, 10.0]) == 2.5
    assert isinstance(stats.merge_runs([1.5, 2]), float)   # a float figure stays a float
    assert stats.merge_runs([1, 2, 3]) == 1 and stats.merge_runs([None, 2.0]) is None
