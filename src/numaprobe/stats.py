"""Statistics that ship with every number: median, spread, sample count, and a warning when
the spread is too wide to believe."""
from __future__ import annotations

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
