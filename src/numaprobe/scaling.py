"""A scaling model: the Universal Scalability Law (Gunther) fitted to throughput against a
count of workers (threads in one instance, or instances).

    X(N) = lam * N / (1 + sigma * (N - 1) + kappa * N * (N - 1))

``sigma`` (contention) is the share of the work that waits for something shared and
serialises: a lock, a memory controller, one thread's part. ``kappa`` (coherency) is a cost
that grows with pairs of workers: cache lines or locks bouncing between them; with kappa > 0
throughput peaks at N* = sqrt((1 - sigma) / kappa) and then falls. ``lam`` is one worker's
rate.

The fit is least squares on relative error (each point weighs by its share, so a slow point
counts as much as a fast one), with ``lam`` solved in closed form for each (sigma, kappa) and
(sigma, kappa) found on a grid, then on a finer grid around the best: no starting guess to
get wrong, no scipy. Intervals are bootstrap percentiles: resampling each point's rounds when
they are given, else the fit's relative residuals, from a fixed seed. Fewer than
``MIN_POINTS`` distinct counts is no fit ("too few points"): three parameters on three
points always fit exactly and say nothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["MIN_POINTS", "Fit", "usl", "fit", "too_few"]

MIN_POINTS = 4
BOOTSTRAP = 200
SEED = 20261201
_SIGMA = np.linspace(0.0, 1.0, 101)
_KAPPA = np.concatenate([[0.0], np.logspace(-7, 0, 100)])


def usl(n, lam: float, sigma: float, kappa: float):
    n = np.asarray(n, dtype=float)
    return lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


@dataclass(frozen=True)
class Fit:
    what: str                     # "threads in one instance", "instances"
    n: tuple[int, ...]            # the counts fitted
    x: tuple[float, ...]          # the throughput at each (the mean of its rounds)
    lam: float
    sigma: float
    kappa: float
    sigma_ci: tuple[float, float]
    kappa_ci: tuple[float, float]
    residuals: tuple[float, ...]  # (measured - fitted) / fitted, per point

    @property
    def peak_n(self) -> float:
        """Where throughput peaks (inf when it never does: kappa 0)."""
        return math.sqrt(max(0.0, 1 - self.sigma) / self.kappa) if self.kappa > 0 else math.inf

    @property
    def peak_x(self) -> float:
        """The highest throughput the model predicts (at peak_n; the limit lam / sigma when
        kappa is 0)."""
        if self.kappa > 0:
            return float(usl(self.peak_n, self.lam, self.sigma, self.kappa))
        return self.lam / self.sigma if self.sigma > 0 else math.inf

    def words(self) -> str:
        far = max(abs(r) for r in self.residuals)
        lo, hi = self.sigma_ci
        klo, khi = self.kappa_ci
        top = max(self.n)
        eff = self.x[self.n.index(top)] / (top * self.lam) if self.lam > 0 else float("nan")
        if math.isinf(self.peak_n):
            peak = f"no peak: it approaches {self.peak_x:.3g}/s" if math.isfinite(
                self.peak_x) else "no peak in sight (linear)"
        else:
            where = "beyond the counts measured" if self.peak_n > top else "within them"
            peak = f"peak {self.peak_x:.3g}/s at N = {self.peak_n:.1f}, {where}"
        meaning = ("a shared resource serialises part of the work" if lo > 0.02 else
                   "no significant contention")
        if klo > 0:
            meaning += "; crosstalk between workers grows with their pairs"
        return (f"{self.what}: contention sigma {self.sigma:.3f} [{lo:.3f}, {hi:.3f}], "
                f"coherency kappa {self.kappa:.2g} [{klo:.2g}, {khi:.2g}] ({meaning}); "
                f"{100 * eff:.0f} % efficient at N = {top}; {peak}; points within "
                f"{100 * far:.1f} % of the fit")

    def to_dict(self) -> dict:
        def finite(v):
            return v if math.isfinite(v) else None
        return {"what": self.what, "n": list(self.n), "x": list(self.x), "lam": self.lam,
                "sigma": self.sigma, "kappa": self.kappa, "sigma_ci": list(self.sigma_ci),
                "kappa_ci": list(self.kappa_ci), "residuals": list(self.residuals),
                "peak_n": finite(self.peak_n), "peak_x": finite(self.peak_x),
                "words": self.words()}


def too_few(what: str, n) -> dict:
    """The document's entry where there is nothing to fit."""
    distinct = sorted(set(n))
    return {"what": what, "n": distinct, "fit": None,
            "words": f"{what}: too few points for a scaling model ({len(distinct)} distinct "
                     f"count(s): {', '.join(map(str, distinct)) or 'none'}; {MIN_POINTS} or "
                     "more are needed)"}


def _best(n: np.ndarray, x: np.ndarray, sigmas: np.ndarray, kappas: np.ndarray):
    """(lam, sigma, kappa, cost) minimising the relative squared error over the grid."""
    s = sigmas[:, None, None]
    k = kappas[None, :, None]
    shape = n / (1 + s * (n - 1) + k * n * (n - 1))        # X / lam on the grid
    # Relative error (x - lam f) / x: lam = sum(f / x) / sum(f^2 / x^2).
    a, b = (shape / x).sum(-1), (shape ** 2 / x ** 2).sum(-1)
    lam = a / b
    cost = ((1 - lam[..., None] * shape / x) ** 2).sum(-1)
    i, j = np.unravel_index(np.argmin(cost), cost.shape)
    return float(lam[i, j]), float(sigmas[i]), float(kappas[j]), float(cost[i, j])


def _fit(n: np.ndarray, x: np.ndarray) -> tuple[float, float, float]:
    lam, s, k, _ = _best(n, x, _SIGMA, _KAPPA)
    for _ in range(2):  # finer grids around the best
        ds, dk = (0.01, 0.25) if _ == 0 else (0.0005, 0.02)
        sig = np.clip(np.linspace(s - ds, s + ds, 31), 0, 1)
        kap = (np.clip(np.linspace(k * (1 - dk), k * (1 + dk), 31), 0, None) if k > 0
               else np.concatenate([[0.0], np.logspace(-9, -6, 30)]))
        lam, s, k, _ = _best(n, x, sig, kap)
    return lam, s, k


def _widened(est: float, ci, factor: float, top: float) -> tuple[float, float]:
    lo, hi = float(ci[0]), float(ci[1])
    return (max(0.0, est - factor * max(0.0, est - lo)),
            min(top, est + factor * max(0.0, hi - est)))


def fit(what: str, points, rounds=None) -> dict:
    """The USL fitted to ``points`` [(N, throughput)] (one per distinct N: a repeated N keeps
    its mean), with bootstrap intervals: over ``rounds`` [[throughput per round] per point]
    when given, else over the fit's residuals. Returns the document's entry: ``fit`` holds
    Fit.to_dict(), or None with "too few points" in ``words``."""
    pts: dict[int, list[float]] = {}
    per_round: dict[int, list[float]] = {}
    for k, (n_, x_) in enumerate(points):
        if x_ and x_ > 0:
            pts.setdefault(int(n_), []).append(float(x_))
            if rounds is not None:
                per_round.setdefault(int(n_), []).extend(v for v in rounds[k] if v and v > 0)
    if len(pts) < MIN_POINTS:
        return too_few(what, list(pts))
    n = np.array(sorted(pts), dtype=float)
    x = np.array([np.mean(pts[int(v)]) for v in n])
    lam, s, k = _fit(n, x)
    fitted = usl(n, lam, s, k)
    rel = x / fitted - 1
    rng = np.random.default_rng(SEED)
    by_rounds = bool(per_round) and all(len(per_round.get(int(v), [])) >= 2 for v in n)
    boot_s, boot_k = [], []
    for _ in range(BOOTSTRAP):
        if by_rounds:
            xb = np.array([np.mean(rng.choice(per_round[int(v)], len(per_round[int(v)])))
                           for v in n])
        else:
            xb = fitted * (1 + rng.choice(rel, len(rel)))
        _, sb, kb = _fit(n, xb)
        boot_s.append(sb)
        boot_k.append(kb)
    # A percentile bootstrap of few values is too narrow (85 % coverage for 95 % by
    # simulation, 5 rounds a point): widen it by Student's t over the normal quantile and the
    # resampling's (m - 1) / m variance loss, m the rounds per point (or the points, less the
    # three parameters, for residuals). Calibrated in tests/test_scaling.py.
    m = min(len(per_round[int(v)]) for v in n) if by_rounds else len(n)
    df = m - 1 if by_rounds else max(1, len(n) - 3)
    from .stats import t_quantile
    widen = t_quantile(0.975, df) / 1.959964 * math.sqrt(m / max(1, m - 1 if by_rounds
                                                                   else len(n) - 3))
    f = Fit(what, tuple(int(v) for v in n), tuple(float(v) for v in x), lam, s, k,
            _widened(s, np.percentile(boot_s, [2.5, 97.5]), widen, 1.0),
            _widened(k, np.percentile(boot_k, [2.5, 97.5]), widen, math.inf),
            tuple(float(v) for v in rel))
    return {"what": what, "n": list(f.n), "fit": f.to_dict(), "words": f.words()}
