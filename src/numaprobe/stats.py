"""Statistics that ship with every number: median, spread, sample count, and a warning when
the spread is too wide to believe."""
from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass

__all__ = ["Summary", "summarize", "CV_WARN"]

CV_WARN = 0.05  # a coefficient of variation above 5 % makes a figure untrustworthy


@dataclass(frozen=True)
class Summary:
    median: float
    min: float
    max: float
    mean: float
    cv: float                  # standard deviation / mean (0.02 = 2 %)
    n: int
    unit: str
    samples: tuple = ()        # the raw samples, where kept
    runs: tuple = ()           # each run's median, when the figure pools repeated runs

    def warning(self, what: str = "", limit: float = CV_WARN) -> str | None:
        if self.n > 1 and self.cv > limit:
            return (f"{what + ': ' if what else ''}spread too wide to trust "
                    f"(CV {100 * self.cv:.1f} % over {self.n} samples, limit {100 * limit:.0f} %)")
        return None

    def to_dict(self, samples: bool = True) -> dict:
        d = {"median": self.median, "min": self.min, "max": self.max, "mean": self.mean,
             "cv": self.cv, "n": self.n, "unit": self.unit}
        if samples and self.samples:
            d["samples"] = list(self.samples)
        if self.runs:
            d["runs"] = list(self.runs)
        return d

    def __str__(self) -> str:
        return f"{_fmt(self.median)} {self.unit} (min {_fmt(self.min)}, max {_fmt(self.max)}, " \
               f"CV {100 * self.cv:.1f} %, n={self.n})"


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"


def summarize(samples, unit: str, keep: bool = True) -> Summary:
    xs = [float(x) for x in samples]
    if not xs:
        raise ValueError("no samples to summarize")
    mean = statistics.fmean(xs)
    cv = statistics.pstdev(xs) / mean if len(xs) > 1 and mean else 0.0
    return Summary(median=statistics.median(xs), min=min(xs), max=max(xs), mean=mean,
                   cv=0.0 if math.isnan(cv) else cv, n=len(xs), unit=unit,
                   samples=tuple(xs) if keep else ())


def pool(summaries) -> Summary:
    """One figure measured in several runs: the samples pooled, each run's median kept in
    ``runs``, the unit that comparisons resample (drift between runs is then inside the
    interval, not only the noise within one)."""
    summaries = list(summaries)
    samples = [x for s in summaries for x in (s.samples or (s.median,))]
    return dataclasses.replace(summarize(samples, summaries[0].unit),
                               runs=tuple(s.median for s in summaries))


def merge_runs(results):
    """Results of the same measurement run several times, as one: every Summary pooled, a
    text that differs between runs listed once per value ("avx2, avx512"), every other value
    (CPUs, sizes, page counts) taken from the first run."""
    first = results[0]
    if isinstance(first, Summary):
        return pool(results)
    if dataclasses.is_dataclass(first) and not isinstance(first, type):
        return dataclasses.replace(first, **{
            f.name: merge_runs([getattr(r, f.name) for r in results])
            for f in dataclasses.fields(first) if f.init})
    if isinstance(first, dict) and all(r.keys() == first.keys() for r in results):
        return {k: merge_runs([r[k] for r in results]) for k in first}
    if isinstance(first, (list, tuple)) and all(len(r) == len(first) for r in results):
        return type(first)(merge_runs(list(x)) for x in zip(*results))
    if isinstance(first, str):  # a choice that differed between runs (isa="auto") says so
        return ", ".join(dict.fromkeys(results))
    return first


# ------------------------------------------------------------------ percentiles and intervals

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def percentile(sorted_xs, p: float) -> float:
    """Nearest-rank percentile of an ascending sequence (as MLPerf LoadGen and
    onnxruntime_perf_test compute them): the smallest value with at least p % at or below."""
    n = len(sorted_xs)
    if n == 0:
        raise ValueError("no samples")
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    rank = math.ceil(p / 100 * n)
    return float(sorted_xs[max(rank, 1) - 1])


def min_samples(p: float) -> int:
    """Samples a tail percentile needs to be more than the maximum: at least 10 beyond it
    (p99 needs 1000, p99.9 needs 10000)."""
    return math.ceil(round(10 / (1 - p / 100), 6)) if p < 100 else 1


@dataclass(frozen=True)
class Percentile:
    """The nearest-rank ``p``-th percentile as a statistic for bootstrap_ci and ratio_ci, which
    then need not resample large samples (see _percentile_draws)."""
    p: float

    def __call__(self, sorted_xs) -> float:
        return percentile(sorted_xs, self.p)


RESAMPLE_MAX = 20_000  # above this many samples a percentile's bootstrap draws ranks instead


def _percentile_draws(sorted_xs, p: float, boots: int, rng):
    """The bootstrap distribution of a nearest-rank percentile without resampling: in a
    resample of n, the k-th smallest value is x[J] where J - k follows the binomial law of how
    many draws fall below it, normal for large n with spread sqrt(n q (1 - q)). Sorting
    ``boots`` resamples of a million latencies takes minutes; this takes microseconds."""
    import numpy as np
    n = len(sorted_xs)
    k = max(math.ceil(p / 100 * n), 1)
    q = k / n
    ranks = np.rint(k + math.sqrt(n * q * (1 - q)) * rng.standard_normal(boots))
    return np.asarray(sorted_xs)[np.clip(ranks, 1, n).astype(np.int64) - 1]


def bootstrap_ci(samples, stat, *, boots: int = 400, conf: float = 0.95, seed: int = 0):
    """Percentile-bootstrap confidence interval of ``stat`` (a function of a sorted numpy
    array) over ``samples``: (low, high)."""
    import numpy as np
    xs = np.asarray(samples, dtype=np.float64)
    if xs.size < 2:
        v = stat(np.sort(xs)) if xs.size else float("nan")
        return v, v
    rng = np.random.default_rng(seed)
    a = (1 - conf) / 2
    if isinstance(stat, Percentile) and xs.size > RESAMPLE_MAX:
        vals = _percentile_draws(np.sort(xs), stat.p, boots, rng)
        return float(np.quantile(vals, a)), float(np.quantile(vals, 1 - a))
    vals = np.empty(boots)
    chunk = max(1, 2_000_000 // xs.size)  # bounded memory: chunk * n indices at a time
    for i in range(0, boots, chunk):
        k = min(chunk, boots - i)
        res = np.sort(xs[rng.integers(0, xs.size, size=(k, xs.size))], axis=1)
        vals[i:i + k] = [stat(r) for r in res]
    return float(np.quantile(vals, a)), float(np.quantile(vals, 1 - a))


def ratio_ci(a, b, stat, *, boots: int = 400, conf: float = 0.95, seed: int = 0):
    """stat(b) / stat(a) with a bootstrap interval, resampling both independently:
    (ratio, low, high)."""
    import numpy as np
    xa, xb = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    ratio = stat(xb) / stat(xa)
    rng = np.random.default_rng(seed)
    q = (1 - conf) / 2
    if isinstance(stat, Percentile) and max(xa.size, xb.size) > RESAMPLE_MAX:
        vals = _percentile_draws(xb, stat.p, boots, rng) / _percentile_draws(xa, stat.p, boots, rng)
        return float(ratio), float(np.quantile(vals, q)), float(np.quantile(vals, 1 - q))
    vals = np.empty(boots)
    for i in range(boots):
        ra = np.sort(xa[rng.integers(0, xa.size, xa.size)])
        rb = np.sort(xb[rng.integers(0, xb.size, xb.size)])
        vals[i] = stat(rb) / stat(ra)
    return float(ratio), float(np.quantile(vals, q)), float(np.quantile(vals, 1 - q))


def verdict(low: float, high: float, higher_is_better: bool) -> str:
    """'faster', 'slower' or 'no significant difference' from a ratio's interval (new / old)."""
    if low > 1:
        return "faster" if higher_is_better else "slower"
    if high < 1:
        return "slower" if higher_is_better else "faster"
    return "no significant difference"
