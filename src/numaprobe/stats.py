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

    @classmethod
    def from_dict(cls, d: dict) -> "Summary":
        """The inverse of to_dict (a document's figure back as a Summary)."""
        return cls(d["median"], d["min"], d["max"], d["mean"], d["cv"], d["n"], d["unit"],
                   tuple(d.get("samples", ())), tuple(d.get("runs", ())))


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
    flag true only when it was true in every run (``checksum_ok``), a float the median of the
    runs' values, a text that differs between runs listed once per value ("avx2, avx512"),
    every other value (CPUs, sizes, counts) taken from the first run."""
    first = results[0]
    if isinstance(first, Summary):
        return pool(results)
    if isinstance(first, bool):
        return all(results) if all(isinstance(r, bool) for r in results) else first
    if isinstance(first, float):
        if all(isinstance(r, (int, float)) and not isinstance(r, bool) for r in results):
            return float(statistics.median(results))
        return first
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


# ---------------------------------------------------------------------- verdicts over rounds
#
# The unit of evidence is the *round*: a fresh run of fresh worker processes. Samples inside
# one round (per-inference latencies, per-tenth throughput) are correlated, they share that
# round's placement, page layout, frequency and neighbours, so an interval that resamples them
# measures the noise within one window and gives firm verdicts on an A/A test (the same thing
# run twice). Everything below takes one value per round (a round's throughput, median,
# p99 ...) and tests across rounds; percentile_ci_hierarchical resamples rounds first. These
# are pure functions: numbers in, numbers out, no I/O. Calibrated by simulation (fixed seeds)
# in tests/test_verdicts.py.
#
#   cmps = [paired_ratio(base_rounds, rounds, higher_is_better=True) for rounds in layouts]
#   rejected = holm([c.p_value for c in cmps])
#   words = [verdict(c, rejected=r, noise=(share_a, share_b)) for c, r in zip(cmps, rejected)]

# The rounds a comparison runs by default: the smallest n at which, in the simulation of
# tests/test_verdicts.py (a family of 3 layouts against a baseline, Holm over the family,
# 2000 draws per case, seeds fixed), A/A pairs get a firm verdict ("faster"/"slower") in at
# most 5 % of draws for log-normal round noise of CV 2, 5 and 8 %, bimodal rounds (1.0 or
# 0.8) and a slow drift shared within a document, AND a real 10 % throughput change at CV 5 %
# is called "faster" in at least 80 % of draws. Measured there at 10 rounds: any firm A/A
# verdict in 2.9 % (CV 2 %), 4.3 % (CV 5 %), 4.8 % (CV 8 %), 3.9 % (bimodal), 4.6 % (drift),
# 4.1 % [3.7, 4.5] pooled over 10,000 families (Holm's bound is 5 %); the 10 % change
# detected in 85 % [84, 87]; at 9 rounds in 77 % [75, 79] (78 % over 20,000 draws), so 9
# is not enough. The naive per-sample bootstrap on the same A/A families: 72 %.
# With the exact sign-flip test a family of 3 needs 7 rounds before any verdict is possible
# at all (2 / 2**7 <= 0.05 / 3); rounds_needed's t formula says 9 for this case, the exact
# test's discreteness costs about one round more.
DEFAULT_ROUNDS = 10

MIN_ROUNDS = 3        # rounds on each side below which a comparison is "not established"
EXACT_MAX_ROUNDS = 16  # paired: exact sign-flip test up to this many rounds, t test beyond
MIN_EFFECT_ROUNDS = 0.02  # the smallest change worth a firm verdict (as compare.MIN_EFFECT)
MAX_NOISE = 0.05      # a share of foreign or stolen CPU time above which a round is suspect

NOT_ESTABLISHED = "not established"
NOISY = "noisy: rerun"
NO_CHANGE = "no significant change"


import functools  # noqa: E402 (this section's own import)


# --- Student t without scipy

def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for a, b > 0 and 0 <= x <= 1."""
    if not (a > 0 and b > 0):
        raise ValueError("betainc needs a > 0 and b > 0")
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(ln_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(ln_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom (any real df > 0; inf is the
    normal law)."""
    if df <= 0:
        raise ValueError("degrees of freedom must be > 0")
    if math.isinf(df):
        return statistics.NormalDist().cdf(t)
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    x = df / (df + t * t)
    tail = 0.5 * betainc(df / 2.0, 0.5, x)  # P(T > |t|)
    return 1.0 - tail if t > 0 else tail


@functools.lru_cache(maxsize=4096)
def t_quantile(p: float, df: float) -> float:
    """The inverse of t_cdf: the t with P(T <= t) = p (0 < p < 1), accurate to ~1e-10;
    df may be fractional (Welch), inf gives the normal quantile."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_quantile needs 0 < p < 1, got {p}")
    if df <= 0:
        raise ValueError("degrees of freedom must be > 0")
    z = statistics.NormalDist().inv_cdf(p)
    if math.isinf(df) or df > 1e7:
        return z
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if p == 0.5:
        return 0.0
    lo, hi = 0.0, max(2.0 * z, 1.0)
    while t_cdf(hi, df) < p:          # bracket, then bisect and polish with Newton
        lo, hi = hi, 2.0 * hi
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-6 * max(1.0, hi):
            break
    t = 0.5 * (lo + hi)
    ln_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    for _ in range(3):
        pdf = math.exp(ln_c - (df + 1) / 2 * math.log1p(t * t / df))
        step = (t_cdf(t, df) - p) / pdf
        t -= step
        if abs(step) < 1e-12 * max(1.0, abs(t)):
            break
    return t


# --- comparing rounds

@dataclass(frozen=True)
class RoundComparison:
    """B against A over rounds (one value per round on each side). ``ratio`` is B/A (geometric
    means); ``ci`` its interval at ``confidence``; ``p_value`` two-sided against ratio 1 (feed
    a family's p-values to holm); ``mde`` the smallest change (a fraction: 0.041 = 4.1 %) this
    many rounds with this spread detect at 95 % confidence and 80 % power, inf where the test
    cannot reject at all; ``sd_log`` the between-round spread it came from (sd of the per-round
    log ratios when paired, of each side's log values, pooled, when not: what rounds_needed
    takes). ``verdict`` is "not established" (and ``reason`` says what to run) when a side has
    fewer than MIN_ROUNDS rounds, else None: the firm word needs the family, see verdict().
    ``caveat`` says what the design cannot see (unpaired: drift slower than a document)."""
    ratio: float
    ci: tuple
    p_value: float
    n: int                       # rounds (pairs when paired; the smaller side when not)
    paired: bool
    mde: float
    basis: str
    higher_is_better: bool
    confidence: float = 0.95
    sd_log: float = float("nan")
    test: str = ""               # "exact sign-flip", "t", "Welch t" or "" (not established)
    n_a: int = 0
    n_b: int = 0
    verdict: str | None = None   # "not established" or None
    reason: str = ""
    caveat: str = ""

    @property
    def established(self) -> bool:
        return self.verdict != NOT_ESTABLISHED

    @property
    def excludes_one(self) -> bool:
        lo, hi = self.ci
        return bool(lo > 1.0 or hi < 1.0)

    def to_dict(self) -> dict:
        """JSON-ready: NaN and inf (no interval, no detectable effect) become None."""
        def clean(x):
            return None if isinstance(x, float) and not math.isfinite(x) else x
        d = {k: clean(v) for k, v in dataclasses.asdict(self).items()}
        d["ci"] = [clean(x) for x in self.ci]
        return d


def _log_rounds(xs, side: str):
    import numpy as np
    x = np.asarray(xs, dtype=np.float64).ravel()
    with np.errstate(divide="ignore", invalid="ignore"):
        lx = np.log(x)                  # NaN below 0, -inf at 0, inf at inf: one check
    if not np.isfinite(lx).all():
        raise ValueError(f"rounds of {side} must be finite and > 0 (a ratio needs them)")
    return lx


def _mde_log(se: float, df: float, alpha: float, power: float) -> float:
    """The smallest true log effect a two-sided level-alpha t test detects with ``power``:
    (t_{1-alpha/2, df} + t_{power, df}) * se (the usual normal-theory sample-size formula with
    t quantiles in place of z)."""
    return (t_quantile(1.0 - alpha / 2.0, df) + t_quantile(power, df)) * se


def _exact_floor(n: int) -> float:
    """The smallest p-value the exact sign-flip test on n rounds can give: 2 / 2**n (the
    observed signs and their mirror image are always at least as extreme)."""
    return 2.0 / 2.0 ** n


@functools.lru_cache(maxsize=32)
def _sign_patterns(n: int):
    import numpy as np
    codes = np.arange(2 ** n, dtype=np.int64)[:, None]
    return np.where((codes >> np.arange(n)) & 1, -1.0, 1.0)


def sign_flip_p(d) -> float:
    """Exact two-sided p-value of the sign-flip permutation test of mean(d) = 0: the share of
    all 2**n sign patterns whose |sum| is at least the observed |sum|. Valid when each d is
    symmetric about 0 under the null (A and B exchangeable within a round), whatever its
    shape (bimodal rounds included). It cannot go below 2 / 2**n: 0.25 with 3 rounds,
    0.0625 with 5, 0.0156 with 7, 0.00195 with 10."""
    import numpy as np
    d = np.asarray(d, dtype=np.float64).ravel()
    n = d.size
    if n == 0:
        return 1.0
    if n > 24:
        raise ValueError("the exact sign-flip test enumerates 2**n patterns: use n <= 24")
    obs = abs(d.sum())
    sums = np.abs(_sign_patterns(n) @ d)
    tol = 1e-9 * max(np.abs(d).sum(), 1e-300)
    return float(np.count_nonzero(sums >= obs - tol)) / 2 ** n


def _alpha(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return 1.0 - confidence


ZERO_SPREAD = ("the rounds do not vary at all, so their spread, and with it any interval, cannot be "
                   "estimated (a figure rounded to a few values?)")


def _not_established(la, lb, paired, higher_is_better, confidence, caveat,
                     reason: str = "") -> RoundComparison:
    import numpy as np
    na, nb = la.size, lb.size
    ratio = float(np.exp(lb.mean() - la.mean())) if na and nb else float("nan")
    if not reason:
        short = " and ".join(f"{side} has {k} round{'' if k == 1 else 's'}"
                             for side, k in (("A", na), ("B", nb)) if k < MIN_ROUNDS)
        reason = (f"{short}; a verdict needs at least {MIN_ROUNDS} rounds on each side (each a "
                  f"fresh run of fresh worker processes): rerun with --rounds {DEFAULT_ROUNDS}")
    return RoundComparison(
        ratio=ratio, ci=(float("nan"), float("nan")), p_value=float("nan"), n=min(na, nb),
        paired=paired, mde=float("inf"), basis=f"{na} round(s) of A, {nb} of B: too few",
        higher_is_better=higher_is_better, confidence=confidence, n_a=na, n_b=nb,
        verdict=NOT_ESTABLISHED, reason=reason, caveat=caveat)


def paired_ratio(a_rounds, b_rounds, *, higher_is_better: bool, confidence: float = 0.95,
                 family: int = 1) -> RoundComparison:
    """B against A where round i of A and round i of B ran together (interleaved in the same
    document, so slow drift of the machine hits both and cancels in their ratio).

    ratio: the geometric mean of b_i / a_i. ci: a Student t interval on the log ratios
    d_i = ln(b_i / a_i), exponentiated. p_value (two-sided, ratio = 1): the exact sign-flip
    permutation test on the d_i, which assumes nothing about their shape, where it has the
    resolution: n <= EXACT_MAX_ROUNDS (16) and its floor 2 / 2**n (0.25 at 3 rounds, 0.031 at
    6, 0.0156 at 7) at or below alpha / ``family``; else the t test on the d_i, which assumes
    them near normal (so 3 rounds can still show a 2x change). mde: the smallest change
    detectable at 95 % confidence (``confidence``) and 80 % power from the observed sd of the
    d_i and n, (t_{1-a/2,n-1} + t_{0.8,n-1}) * sd / sqrt(n), as a fraction (expm1 of that)
    (``family``: the number of comparisons Holm will correct over; the p-value is the raw one).

    With fewer than MIN_ROUNDS (3) rounds the result's verdict is "not established" and its
    reason says what to run. Values must be > 0 (throughputs, latencies)."""
    alpha = _alpha(confidence)
    la, lb = _log_rounds(a_rounds, "A"), _log_rounds(b_rounds, "B")
    if la.size != lb.size:
        raise ValueError(f"paired rounds need as many rounds of A as of B "
                         f"(got {la.size} and {lb.size}): use unpaired_ratio")
    if la.size < MIN_ROUNDS:
        return _not_established(la, lb, True, higher_is_better, confidence, "")
    d = lb - la
    n = d.size
    mean = float(d.sum()) / n
    dm = d - mean
    sd = math.sqrt(float(dm @ dm) / (n - 1))
    if sd == 0.0:
        return _not_established(la, lb, True, higher_is_better, confidence, "",
                                reason=ZERO_SPREAD)
    se = sd / math.sqrt(n)
    tq = t_quantile(1.0 - alpha / 2.0, n - 1)
    ci = (math.exp(mean - tq * se), math.exp(mean + tq * se))
    # The exact test where it has the resolution (its floor 2 / 2**n can reach the family's
    # alpha); below that, and beyond 16 rounds, the t test. Simulated A/A rates of the t test
    # with Holm over 3 layouts (tests/test_verdicts.py's cases): 3.3-5.5 % for log-normal
    # rounds and drift at 3-6 rounds, but 7.9 % for bimodal rounds at 3, which is why the
    # default is DEFAULT_ROUNDS and infer flags bimodal rounds.
    exact = n <= EXACT_MAX_ROUNDS and _exact_floor(n) <= alpha / max(family, 1)
    if exact:
        p, test = sign_flip_p(d), "exact sign-flip"
        floor_note = (f"exact sign-flip test over all {2 ** n} sign patterns "
                      f"(p cannot go below {_exact_floor(n):.2g} with {n} rounds)")
    else:
        p, test = _t_p(mean, se, n - 1), "t"
        floor_note = f"t test on the log ratios (df {n - 1})"
    mde = _mde_fraction(se, n - 1, alpha / max(family, 1), 0.8,
                        _exact_floor(n) if exact else 0.0)
    basis = (f"{n} paired rounds: geometric mean of B/A per round, "
             f"{100 * confidence:g} % t interval on the log ratios (between-round sd "
             f"{100 * sd:.2g} %), {floor_note}")
    return RoundComparison(ratio=math.exp(mean), ci=ci, p_value=p, n=n, paired=True, mde=mde,
                           basis=basis, higher_is_better=higher_is_better,
                           confidence=confidence, sd_log=sd, test=test, n_a=n, n_b=n)


def _t_p(mean: float, se: float, df: float) -> float:
    if se == 0.0 or not math.isfinite(se):
        return 1.0 if mean == 0.0 else 0.0
    return min(1.0, 2.0 * (1.0 - t_cdf(abs(mean) / se, df)))


def _mde_fraction(se: float, df: float, alpha: float, power: float, floor: float) -> float:
    if floor > alpha:
        return float("inf")
    return math.expm1(_mde_log(se, df, alpha, power))


UNPAIRED_CAVEAT = ("rounds of two different documents: drift of the machine slower than a "
                   "document (an hour, a reboot, a neighbour) reads as an effect; pair the "
                   "layouts in one document where it matters")


def unpaired_ratio(a_rounds, b_rounds, *, higher_is_better: bool, confidence: float = 0.95,
                   family: int = 1, drift_sd: float = 0.0) -> RoundComparison:
    """B against A from rounds of two different documents (A's rounds ran, then B's): the
    ratio of the geometric means, a Welch t interval and two-sided Welch t test on the log
    values (Welch-Satterthwaite df), mde from the Welch standard error as in paired_ratio.

    The rounds cannot see drift slower than a document: whatever moved the machine between
    the two runs (another hour, a reboot, a neighbour, thermal state) is inside the ratio and
    not in their spread. ``drift_sd`` is that drift as a known variance component: each
    document's level is off by a log-normal factor of this sd, so the difference of the two
    gets 2 x drift_sd^2 beside the rounds' variance (known, so it adds no degrees of
    freedom). 0 assumes no drift. The result's ``caveat`` says what is assumed; prefer
    paired_ratio over layouts interleaved in one document. With fewer than MIN_ROUNDS (3)
    rounds on a side the verdict is "not established"."""
    alpha = _alpha(confidence)
    la, lb = _log_rounds(a_rounds, "A"), _log_rounds(b_rounds, "B")
    if min(la.size, lb.size) < MIN_ROUNDS:
        return _not_established(la, lb, False, higher_is_better, confidence, UNPAIRED_CAVEAT)
    na, nb = la.size, lb.size
    va, vb = float(la.var(ddof=1)), float(lb.var(ddof=1))
    if va == vb == 0.0:
        return _not_established(la, lb, False, higher_is_better, confidence, UNPAIRED_CAVEAT,
                                reason=ZERO_SPREAD)
    if not (isinstance(drift_sd, (int, float)) and 0 <= drift_sd < 1):
        raise ValueError(f"drift_sd must be a fraction from 0 to 1, got {drift_sd!r}")
    mean = float(lb.mean() - la.mean())
    rounds2 = va / na + vb / nb
    se2 = rounds2 + 2 * drift_sd ** 2
    se = math.sqrt(se2)
    if rounds2 > 0:
        df = se2 ** 2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
    else:
        df = float(na + nb - 2)
    df = max(df, 1.0)
    tq = t_quantile(1.0 - alpha / 2.0, df)
    ci = (math.exp(mean - tq * se), math.exp(mean + tq * se))
    sd = math.sqrt(((na - 1) * va + (nb - 1) * vb) / (na + nb - 2))
    mde = _mde_fraction(se, df, alpha / max(family, 1), 0.8, 0.0)
    basis = (f"{na} rounds of A and {nb} of B from different documents: ratio of geometric "
             f"means, {100 * confidence:g} % Welch t interval and test on the logs "
             f"(df {df:.1f}, between-round sd {100 * sd:.2g} %"
             + (f", plus a drift between documents of sd {100 * drift_sd:.2g} %)" if drift_sd
                else ")"))
    caveat = (UNPAIRED_CAVEAT if not drift_sd else
              f"rounds of two different documents: the interval allows for a drift of the "
              f"machine between them of sd {100 * drift_sd:.2g} % (--drift); a larger one (a "
              f"reboot, a neighbour) reads as an effect; pair the layouts in one document "
              f"where it matters")
    return RoundComparison(ratio=math.exp(mean), ci=ci, p_value=_t_p(mean, se, df),
                           n=min(na, nb), paired=False, mde=mde, basis=basis,
                           higher_is_better=higher_is_better, confidence=confidence,
                           sd_log=sd, test="Welch t", n_a=na, n_b=nb, caveat=caveat)


def holm(p_values, alpha: float = 0.05) -> list[bool]:
    """Holm's step-down rule over a family of p-values (e.g. every layout against the
    baseline): sort ascending, reject the k-th smallest (k = 0, 1, ...) while
    p_(k) <= alpha / (m - k), stop at the first that is not. Controls the chance of any false
    rejection in the family at ``alpha`` under any dependence. Returns the rejections in the
    order of the input; a NaN p-value (a comparison not established) is never rejected and
    counts in m."""
    ps = [float(p) for p in p_values]
    m = len(ps)
    order = sorted(range(m), key=lambda i: (math.isnan(ps[i]), ps[i]))
    out = [False] * m
    for k, i in enumerate(order):
        if math.isnan(ps[i]) or ps[i] > alpha / (m - k):
            break
        out[i] = True
    return out


@dataclass(frozen=True)
class Verdict:
    """A verdict word ("faster", "slower", "no significant change", "not established",
    "noisy: rerun") and the detail that goes with it (for "no significant change" always the
    smallest change the comparison could have detected)."""
    word: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.word} ({self.detail})" if self.detail else self.word


def _pct(x: float) -> str:
    return f"{100 * x:.2g} %" if abs(x) < 0.1 else f"{100 * x:.0f} %"


def verdict(comparison: "RoundComparison", *, rejected: bool,
            min_effect: float = MIN_EFFECT_ROUNDS, noise=None,
            max_noise: float = MAX_NOISE) -> "Verdict":
    """The verdict on one RoundComparison within its family: a Verdict(word, detail).

    - "not established": fewer than MIN_ROUNDS rounds on a side (detail: what to run);
    - "noisy: rerun": ``noise`` = (share_a, share_b), the largest share of foreign or stolen
      CPU time seen on each side (numaprobe.noise), and one is above ``max_noise``;
    - "faster" / "slower": only when ``rejected`` (the family rule, e.g. holm over every
      layout's p_value, rejected this one) AND the interval excludes 1 AND
      |ratio - 1| >= ``min_effect``; which of the two by higher_is_better;
    - "no significant change" otherwise, always with the comparison's MDE ("could detect
      changes of 4.1 % or more"), so that a null reads as "smaller than that", not as "none"."""
    c = comparison
    if not c.established:
        return Verdict(NOT_ESTABLISHED, c.reason)
    if noise is not None:
        loud = [(side, float(s)) for side, s in zip("AB", noise) if s is not None
                and float(s) > max_noise]
        if loud:
            return Verdict(NOISY, "; ".join(
                f"foreign or stolen CPU time was {_pct(s)} during {side} "
                f"(limit {_pct(max_noise)})" for side, s in loud))
    change = c.ratio - 1.0
    if rejected and c.excludes_one and abs(change) >= min_effect:
        better = (change > 0) == c.higher_is_better
        return Verdict("faster" if better else "slower",
                       f"{change:+.1%} [{c.ci[0] - 1:+.1%}, {c.ci[1] - 1:+.1%}] over "
                       f"{c.n} rounds, p = {c.p_value:.2g}")
    if not math.isfinite(c.mde):
        detect = (f"could not detect any change with {c.n} rounds: rerun with --rounds "
                  f"{DEFAULT_ROUNDS}")
    else:
        detect = f"could detect changes of {_pct(c.mde)} or more"
    if rejected and c.excludes_one:
        detect += f"; the {change:+.1%} seen is below the {_pct(min_effect)} worth reporting"
    return Verdict(NO_CHANGE, detect)


def paired_family(sides, *, higher_is_better: bool, noise=None, few=None,
                  min_effect: float = MIN_EFFECT_ROUNDS, max_noise: float = MAX_NOISE
                  ) -> list[tuple["RoundComparison", "Verdict"]]:
    """A family of paired comparisons and their verdicts: ``sides`` is [(A's figure per round,
    B's figure per round)], each B against its A over the rounds they ran together (a round
    without a figure on either side, None or 0, stays out of its pair), Holm over the family.
    ``noise``: per side pair the (share_a, share_b) for ``verdict``; ``few(k, n)``: why the
    k-th comparison's n pairs are too few to establish it, where the caller can say it
    better."""
    comps = []
    for k, (a, b) in enumerate(sides):
        pairs = [(x, y) for x, y in zip(a, b) if x and y]
        c = paired_ratio([x for x, _ in pairs], [y for _, y in pairs],
                         higher_is_better=higher_is_better, family=len(sides))
        if few is not None and not c.established and len(pairs) < MIN_ROUNDS:
            c = dataclasses.replace(c, reason=few(k, len(pairs)))
        comps.append(c)
    return [(c, verdict(c, rejected=rej, min_effect=min_effect, max_noise=max_noise,
                        noise=noise[k] if noise else None))
            for k, (c, rej) in enumerate(zip(comps, holm([c.p_value for c in comps])))]


def rounds_needed(sd_log: float, effect: float, *, confidence: float = 0.95,
                  power: float = 0.8, paired: bool = True, family: int = 1,
                  max_rounds: int = 100_000) -> int:
    """The smallest number of rounds (pairs when ``paired``, rounds per side when not) whose
    MDE is at most ``effect`` (a fraction: 0.02 for 2 %), for `--target-effect`. ``sd_log`` is
    the between-round spread as RoundComparison.sd_log gives it: the sd of the per-round log
    ratios when paired, of each side's log values when not (the standard error is then
    sd * sqrt(2 / n)). The MDE is (t_{1-a/2,df} + t_{power,df}) * se with a = (1 - confidence)
    / family; paired rounds use the exact sign-flip test up to 16 rounds, so n is at least
    the first whose floor 2 / 2**n is <= a. Never below MIN_ROUNDS."""
    if not effect > 0:
        raise ValueError("the target effect must be > 0")
    if not sd_log >= 0:
        raise ValueError("sd_log must be >= 0")
    alpha = _alpha(confidence) / max(family, 1)
    target = math.log1p(effect)
    for n in range(MIN_ROUNDS, max_rounds + 1):
        if paired:
            se, df = sd_log / math.sqrt(n), n - 1
            if n <= EXACT_MAX_ROUNDS and _exact_floor(n) > alpha:
                continue
        else:
            se, df = sd_log * math.sqrt(2.0 / n), 2 * n - 2
        if _mde_log(se, df, alpha, power) <= target:
            return n
    raise ValueError(f"more than {max_rounds} rounds needed for a {_pct(effect)} effect "
                     f"at a spread of {_pct(sd_log)}")


# --- percentiles over rounds

def percentile_ci_hierarchical(rounds, q: float, *, boots: int = 1000, seed: int = 0,
                               confidence: float = 0.95):
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of the latencies of every round
    pooled, with a two-level bootstrap interval: (value, lo, hi). Each resample draws rounds
    with replacement, then values with replacement within each drawn round, so the interval
    covers how rounds differ, not only the noise within one.

    Fast for large rounds: the pooled resample is never built. A resample's k-th smallest
    value is the J-th smallest of the drawn rounds' values (counted with their multiplicity),
    J - k following the binomial law of the within-round draws, normal with spread
    sqrt(N q (1 - q)), the rank trick of _percentile_draws; the J-th smallest is then found
    by bisection over the sorted union with searchsorted on each (sorted once) round. Below
    RESAMPLE_MAX values in all it resamples literally."""
    import numpy as np
    rs = [np.sort(np.asarray(r, dtype=np.float64).ravel()) for r in rounds]
    rs = [r for r in rs if r.size]
    if not rs:
        raise ValueError("no rounds with values")
    if not 0 < q <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {q}")
    alpha = _alpha(confidence)
    allv = np.sort(np.concatenate(rs))
    value = percentile(allv, q)
    R = len(rs)
    if R == 1:
        lo, hi = bootstrap_ci(rs[0], Percentile(q), boots=boots, conf=confidence, seed=seed)
        return value, lo, hi
    rng = np.random.default_rng(seed)
    sizes = np.array([r.size for r in rs], dtype=np.int64)
    picks = rng.integers(0, R, size=(boots, R))
    vals = np.empty(boots)
    if allv.size <= RESAMPLE_MAX:
        for b in range(boots):
            res = np.concatenate([rs[j][rng.integers(0, sizes[j], sizes[j])] for j in picks[b]])
            k = max(math.ceil(q / 100 * res.size), 1)   # nearest rank, as percentile()
            vals[b] = np.partition(res, k - 1)[k - 1]
    else:
        mult = np.zeros((boots, R), dtype=np.int64)
        np.add.at(mult, (np.repeat(np.arange(boots), R), picks.ravel()), 1)
        total = mult @ sizes
        k = np.maximum(np.ceil(q / 100 * total), 1)
        f = k / total
        ranks = np.rint(k + np.sqrt(total * f * (1 - f)) * rng.standard_normal(boots))
        ranks = np.clip(ranks, 1, total)
        lo_i = np.zeros(boots, dtype=np.int64)
        hi_i = np.full(boots, allv.size - 1, dtype=np.int64)
        while np.any(lo_i < hi_i):
            mid = (lo_i + hi_i) // 2
            v = allv[mid]
            count = np.zeros(boots, dtype=np.int64)
            for j in range(R):
                count += mult[:, j] * np.searchsorted(rs[j], v, side="right")
            ok = count >= ranks
            hi_i = np.where(ok, mid, hi_i)
            lo_i = np.where(ok, lo_i, mid + 1)
        vals = allv[lo_i]
    lo, hi = float(np.quantile(vals, alpha / 2)), float(np.quantile(vals, 1 - alpha / 2))
    # R rounds are a small sample of rounds: the bootstrap's spread is sqrt((R-1)/R) of the
    # round-to-round spread and its reference is normal where it should be t with R - 1 df,
    # so the distances from the value to either end are stretched by both (1.22 at 10 rounds)
    c = (t_quantile(1 - alpha / 2, R - 1) / statistics.NormalDist().inv_cdf(1 - alpha / 2)
         * math.sqrt(R / (R - 1)))
    return value, value - c * max(value - lo, 0.0), value + c * max(hi - value, 0.0)


# --- shape

BIMODAL_GAP = 3.0  # modes further apart than this many pooled within-cluster sds


def bimodal(values) -> bool:
    """True when the values fall in two modes further apart than their spread (e.g. rounds of
    a 2-thread ONNX Runtime pool on a VM, some at full speed and some at 0.8 of it). The rule:
    over the splits of the sorted values into a low and a high cluster of at least 2 values
    each, take the one with the smallest within-cluster sum of squares (the best 2-means split,
    always contiguous in 1-D); the values are bimodal when the empty gap between the clusters
    (the high cluster's smallest value minus the low cluster's largest) exceeds BIMODAL_GAP
    (3) times the pooled within-cluster sd. Fewer than 4 values, or all equal: False.

    The empty gap, not the distance between the cluster means: the best split of a plain
    normal sample has its means about 2.7 pooled sds apart, so a rule on the means fires on
    most unimodal samples. With the gap, simulated (2000 samples each): normal samples of 10
    values 3 %, of 20 none; log-normal (sd 0.5) 8 % and 2 %; rounds at 1.0 or 0.8 with 2 %
    noise 98 % and 100 %. Below 8 values it fires on 10-15 % of unimodal samples: too few to
    tell."""
    import numpy as np
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    n = x.size
    if n < 4 or x[0] == x[-1]:
        return False
    c1, c2 = np.cumsum(x), np.cumsum(x * x)
    i = np.arange(2, n - 1)                      # low cluster x[:i], high cluster x[i:]
    ss_lo = c2[i - 1] - c1[i - 1] ** 2 / i
    s_hi, s2_hi = c1[-1] - c1[i - 1], c2[-1] - c2[i - 1]
    ss_hi = s2_hi - s_hi ** 2 / (n - i)
    ss = np.maximum(ss_lo + ss_hi, 0.0)
    best = int(np.argmin(ss))
    split = int(i[best])
    sd = math.sqrt(ss[best] / (n - 2))
    gap = x[split] - x[split - 1]
    return bool(gap > BIMODAL_GAP * sd) if sd > 0 else bool(gap > 0)


# --- stopping when a figure is known

from .errors import UsageError  # noqa: E402 (this section's own import)

MEDIAN_CI_MIN_SAMPLES = 6  # the fewest samples whose extremes bound the median at 95 %
DEFAULT_TARGET = 0.02      # the quick check's: the median's interval within +-2 %
ENDED_BY = ("target", "budget", "samples")  # what ended a cell's sampling (sample_until)
_EXACT_MAX_N = 1000        # median_interval: exact binomial up to this many samples


def median_interval(samples, confidence: float = 0.95) -> tuple[float, float] | None:
    """A distribution-free ``confidence`` interval of the median: the order statistics
    [x_(k), x_(n+1-k)] with the largest k whose coverage, 1 - 2 P(Binomial(n, 1/2) < k), is
    still at least ``confidence`` (exact up to 1000 samples, the normal approximation
    beyond). It assumes nothing about the samples' shape, so a skewed latency stream (rare
    slow samples from interrupts) gets an honest interval. None when there are too few
    samples for any (fewer than 6 at 95 %)."""
    xs = sorted(float(x) for x in samples)
    n, alpha = len(xs), 1.0 - confidence
    if not 0 < alpha < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n > _EXACT_MAX_N:
        z = statistics.NormalDist().inv_cdf(1 - alpha / 2)
        k = max(int(math.floor((n - z * math.sqrt(n)) / 2)), 1)
        return xs[k - 1], xs[n - k]
    # 2 * sum_{i<k} C(n, i) <= alpha * 2^n, in integers (2^n overflows a float beyond 1023)
    from fractions import Fraction
    a = Fraction(alpha).limit_denominator(1 << 20)
    tail, k, c = 0, 0, 1                    # tail = sum_{i<k} C(n, i); c = C(n, k)
    while k < n // 2 and 2 * (tail + c) * a.denominator <= a.numerator * (1 << n):
        tail, k, c = tail + c, k + 1, c * (n - k) // (k + 1)
    return (xs[k - 1], xs[n - k]) if k >= 1 else None


@dataclass(frozen=True)
class Stopped:
    """What sample_until collected and why it stopped (``ended_by``: "target", the median's
    interval came within the target; "budget", the budget was spent; "samples", the most
    samples allowed were drawn)."""
    samples: tuple
    ended_by: str
    interval: tuple | None     # the median's interval when it stopped (None: too few samples)
    spent: float               # the samples' cost, in the budget's unit


def sample_until(draw, *, target: float | None = DEFAULT_TARGET, budget: float = math.inf,
                 max_samples: int | None = None, confidence: float = 0.95) -> Stopped:
    """Draws samples until the figure is known or its budget is spent, whichever comes first.

    ``draw()`` returns (value, cost): one sample and what it cost (seconds, or any unit
    ``budget`` is in). After each sample the rule stops when the ``confidence`` interval of
    the median (median_interval) lies within +-``target`` x the median, when the costs add up
    to ``budget`` or more, or when ``max_samples`` were drawn. At least one sample is always
    drawn, and the budget is checked after each, so the spending exceeds the budget by less
    than one sample's cost. ``target=None``: no target, only the budget and max_samples."""
    if target is not None and not (isinstance(target, (int, float)) and 0 < target < 1):
        raise UsageError(f"the target must be a fraction of the median between 0 and 1 "
                         f"(0.02 for 2 %), got {target!r}")
    if not (isinstance(budget, (int, float)) and budget > 0):
        raise UsageError(f"the budget must be a number above 0, got {budget!r}")
    if max_samples is not None and not (isinstance(max_samples, int) and max_samples >= 1):
        raise UsageError(f"max_samples must be a whole number >= 1, got {max_samples!r}")
    if target is None and budget == math.inf and max_samples is None:
        raise UsageError("sample_until needs a target, a budget or max_samples to stop")
    xs, spent = [], 0.0
    while True:
        value, cost = draw()
        xs.append(float(value))
        spent += float(cost)
        ci = median_interval(xs, confidence)
        if target is not None and ci is not None:
            med = statistics.median(xs)
            if max(med - ci[0], ci[1] - med) <= target * abs(med):
                return Stopped(tuple(xs), "target", ci, spent)
        if spent >= budget:
            return Stopped(tuple(xs), "budget", ci, spent)
        if max_samples is not None and len(xs) >= max_samples:
            return Stopped(tuple(xs), "samples", ci, spent)
