"""Verdicts over rounds (stats.paired_ratio, holm, verdict ...): literal values, then
calibration by simulation with fixed seeds.

The round (a fresh run of fresh worker processes) is the unit of evidence. The simulations
draw round-level throughputs for a family of 3 layouts against a baseline, compare each with
paired_ratio, correct over the family with holm and take verdict(): an A/A family (all four
the same thing) must get any "faster"/"slower" in at most 5 % of draws, a real 10 % change
at a round-to-round CV of 5 % must be called "faster" in at least 80 % of draws at
stats.DEFAULT_ROUNDS, and the naive per-sample bootstrap of today fails the first check.
"""
import functools
import math

import numpy as np
import pytest

from numaprobe import stats

FIRM = ("faster", "slower")
LAYOUTS = 3
DRAWS = 2000


# ------------------------------------------------------------------------------ helpers

def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Binomial 95 % interval (Wilson score) of k successes in n draws."""
    p = k / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, mid - half), min(1.0, mid + half)


def rate_text(k: int, n: int) -> str:
    lo, hi = wilson(k, n)
    return f"{100 * k / n:.2f} % [{100 * lo:.2f}, {100 * hi:.2f}] ({k} of {n})"


def lognormal(rng, cv: float, size):
    """Log-normal factors of mean 1 and coefficient of variation ``cv``."""
    s = math.sqrt(math.log1p(cv * cv))
    return np.exp(s * rng.standard_normal(size) - s * s / 2)


def document(rng, n: int, case: str, effect: float = 0.0):
    """One document's round throughputs: the baseline's n rounds and each layout's, interleaved
    (round i of every layout ran in the same round). ``effect`` multiplies layout 1."""
    shape = (1 + LAYOUTS, n)
    if case.startswith("cv"):                     # log-normal round noise, CV in percent
        x = lognormal(rng, int(case[2:]) / 100, shape)
    elif case == "bimodal":                       # a 2-thread pool on a VM: full speed or 0.8
        x = np.where(rng.random(shape) < 0.5, 1.0, 0.8) * lognormal(rng, 0.02, shape)
    elif case == "drift":                         # 30 % linear trend over the document, shared
        trend = 1 + 0.3 * (np.arange(n) / (n - 1) - 0.5)
        x = trend * lognormal(rng, 0.05, shape)
    else:
        raise ValueError(case)
    x[1] *= 1 + effect
    return x[0], x[1:]


def family_words(base, layouts) -> list[str]:
    cmps = [stats.paired_ratio(base, rounds, higher_is_better=True) for rounds in layouts]
    rejected = stats.holm([c.p_value for c in cmps])
    return [stats.verdict(c, rejected=r).word for c, r in zip(cmps, rejected)]


@functools.lru_cache(maxsize=None)
def simulate(n: int, case: str, seed: int, draws: int = DRAWS, effect: float = 0.0):
    """(draws with any firm verdict in the family, draws where layout 1 was called faster)."""
    rng = np.random.default_rng(seed)
    any_firm = detected = 0
    for _ in range(draws):
        words = family_words(*document(rng, n, case, effect))
        any_firm += any(w in FIRM for w in words)
        detected += words[0] == "faster"
    return any_firm, detected


# ------------------------------------------------------------------- Student t, no scipy

@pytest.mark.parametrize("p, df, table", [
    (0.975, 1, 12.706), (0.975, 2, 4.303), (0.975, 3, 3.182), (0.975, 4, 2.776),
    (0.975, 5, 2.571), (0.975, 9, 2.262), (0.975, 10, 2.228), (0.975, 19, 2.093),
    (0.975, 20, 2.086), (0.975, 30, 2.042), (0.975, 60, 2.000), (0.975, 120, 1.980),
    (0.975, math.inf, 1.960), (0.995, 1, 63.657), (0.995, 10, 3.169), (0.95, 7, 1.895),
    (0.9, 15, 1.341), (0.8, 1, 1.376), (0.8, 4, 0.941), (0.8, 9, 0.883), (0.8, 10, 0.879),
    (0.8, 30, 0.854), (0.8, math.inf, 0.842)])
def test_t_quantile_matches_the_table(p, df, table):
    assert stats.t_quantile(p, df) == pytest.approx(table, abs=1e-3)
    assert stats.t_quantile(1 - p, df) == pytest.approx(-stats.t_quantile(p, df), abs=1e-9)
    assert stats.t_cdf(stats.t_quantile(p, df), df) == pytest.approx(p, abs=1e-9)


def test_t_cdf_and_incomplete_beta_known_values():
    assert stats.betainc(1, 1, 0.3) == pytest.approx(0.3)          # I_x(1, 1) = x
    assert stats.betainc(2.5, 1, 0.4) == pytest.approx(0.4 ** 2.5)  # I_x(a, 1) = x^a
    assert stats.betainc(3.7, 3.7, 0.5) == pytest.approx(0.5)       # symmetric at 1/2
    assert stats.t_cdf(0.0, 5) == 0.5
    assert stats.t_cdf(1.0, 1) == pytest.approx(0.75)               # Cauchy: 1/2 + atan(1)/pi
    assert stats.t_cdf(2.0, 2) == pytest.approx(0.5 + 2 / (2 * math.sqrt(6)))  # closed form
    # fractional df (Welch) lies between its neighbours
    assert stats.t_quantile(0.975, 5) < stats.t_quantile(0.975, 4.5) < stats.t_quantile(0.975, 4)
    with pytest.raises(ValueError):
        stats.t_quantile(1.0, 3)


# ------------------------------------------------------------------------ exact sign flip

def test_sign_flip_p_is_exact_for_small_n():
    # sums of +-1 +-2 +-3: |6| x2, |4| x2, |2| x2, |0| x2
    assert stats.sign_flip_p([1, 2, 3]) == 0.25           # only the observed and its mirror
    assert stats.sign_flip_p([1, -2, 3]) == 0.75          # |2|: 6 of the 8 are as extreme
    assert stats.sign_flip_p([-1, -2, -3]) == 0.25        # two-sided
    assert stats.sign_flip_p([1, 2, 3, 4, 5]) == 2 / 32
    assert stats.sign_flip_p([0.1] * 10) == 2 / 1024      # the floor 2 / 2**n
    assert stats.sign_flip_p([0, 0, 0]) == 1.0
    assert stats.sign_flip_p([1, 2, 3, 4]) == 2 / 16      # flipping the 1 already gives 8
    # 2, 1, 1, -1: |sum| = 3; 2 +-1 +-1 +-1 is 5 once and 3 three times (else 1 or -1):
    # with their mirror images 8 of the 16 patterns are as extreme
    assert stats.sign_flip_p([2, 1, 1, -1]) == 8 / 16


# --------------------------------------------------------------------- paired and unpaired

def test_paired_ratio_literal_values():
    d = np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06])    # log ratios: mean 0.035
    a = np.array([100.0, 120.0, 90.0, 110.0, 105.0, 95.0])
    c = stats.paired_ratio(a, a * np.exp(d), higher_is_better=True)
    sd = float(np.std(d, ddof=1))                         # 0.0187083
    assert c.n == 6 and c.paired and c.test == "exact sign-flip" and c.established
    assert c.ratio == pytest.approx(math.exp(0.035))
    half = 2.570582 * sd / math.sqrt(6)                   # t(0.975, 5)
    assert c.ci[0] == pytest.approx(math.exp(0.035 - half), rel=1e-6)
    assert c.ci[1] == pytest.approx(math.exp(0.035 + half), rel=1e-6)
    assert c.p_value == 2 / 64                            # every round faster: the floor
    assert c.sd_log == pytest.approx(sd)
    assert c.mde == pytest.approx(math.expm1((2.570582 + 0.919544) * sd / math.sqrt(6)),
                                  rel=1e-5)               # t(0.975, 5) + t(0.8, 5)
    assert "6 paired rounds" in c.basis and "0.031" in c.basis
    # 5 rounds: the exact test's floor 2/32 is above 5 %, so the t test decides (it assumes
    # log ratios near normal; its A/A rates are in stats.paired_ratio's comment)
    five = stats.paired_ratio(a[:5], a[:5] * np.exp(d[:5]), higher_is_better=True)
    sd5 = float(np.std(d[:5], ddof=1))
    assert five.test == "t" and math.isfinite(five.mde)
    assert five.p_value == pytest.approx(2 * (1 - stats.t_cdf(0.03 / (sd5 / math.sqrt(5)), 4)))
    # with 3 layouts Holm's first step is at 0.0167, below the floor of 6 rounds: t again
    assert stats.paired_ratio(a, a * np.exp(d), higher_is_better=True, family=3).test == "t"
    # at 7 rounds the floor 2/128 is below 0.0167: exact
    seven = stats.paired_ratio(np.ones(7), np.exp(np.linspace(0.01, 0.07, 7)),
                               higher_is_better=True, family=3)
    assert seven.test == "exact sign-flip" and seven.p_value == 2 / 128


def test_paired_ratio_uses_the_t_test_beyond_16_rounds():
    rng = np.random.default_rng(4)
    d = rng.normal(0, 1, 20)
    d = (d - d.mean()) / d.std(ddof=1)                    # mean 0, sd 1 exactly
    d += 2.093024 / math.sqrt(20)                         # t = 2.093: p = 0.05 at df 19
    c = stats.paired_ratio(np.ones(20), np.exp(d), higher_is_better=True)
    assert c.test == "t" and c.p_value == pytest.approx(0.05, abs=1e-5)
    assert c.ci[0] == pytest.approx(1.0, abs=1e-5)        # the 95 % interval just touches 1


def test_too_few_rounds_are_not_established():
    c = stats.paired_ratio([1.0, 1.1], [1.2, 1.3], higher_is_better=True)
    assert c.verdict == "not established" and not c.established
    assert "at least 3 rounds" in c.reason and f"--rounds {stats.DEFAULT_ROUNDS}" in c.reason
    assert math.isnan(c.p_value) and math.isinf(c.mde)
    v = stats.verdict(c, rejected=True)
    assert v.word == "not established" and v.detail == c.reason
    assert c.to_dict()["mde"] is None and c.to_dict()["ci"] == [None, None]
    u = stats.unpaired_ratio([1.0, 1.1, 1.0, 1.05], [1.2, 1.3], higher_is_better=True)
    assert u.verdict == "not established" and "B has 2 rounds" in u.reason
    with pytest.raises(ValueError):
        stats.paired_ratio([1, 2, 3], [1, 2], higher_is_better=True)
    with pytest.raises(ValueError):
        stats.paired_ratio([1, 2, 0], [1, 2, 3], higher_is_better=True)


def test_unpaired_ratio_is_welch_on_logs_and_says_what_it_cannot_see():
    a, b = np.exp([0.0, 0.1, 0.2]), np.exp([0.3, 0.4, 0.5, 0.6])
    c = stats.unpaired_ratio(a, b, higher_is_better=False)
    assert not c.paired and c.test == "Welch t" and (c.n_a, c.n_b, c.n) == (3, 4, 3)
    assert c.ratio == pytest.approx(math.exp(0.35))
    se = math.sqrt(0.01 / 3 + (0.05 / 3) / 4)             # var 0.01 and 0.016667
    df = se ** 4 / ((0.01 / 3) ** 2 / 2 + (0.05 / 12) ** 2 / 3)
    assert df == pytest.approx(4.959, abs=1e-3) and "df 5.0" in c.basis
    assert c.p_value == pytest.approx(2 * (1 - stats.t_cdf(0.35 / se, df)))
    assert c.ci[0] == pytest.approx(math.exp(0.35 - stats.t_quantile(0.975, df) * se))
    assert "drift" in c.caveat and "slower than a document" in c.caveat
    assert "slower than a document" in stats.unpaired_ratio.__doc__
    # an A/A pair whose second document ran on a machine 6 % slower: unpaired, that is an
    # effect; the same rounds paired in one document, the drift cancels
    rng = np.random.default_rng(9)
    x = lognormal(rng, 0.02, (2, 10))
    assert stats.unpaired_ratio(x[0], 0.94 * x[1], higher_is_better=True).p_value < 0.001
    drift = np.linspace(1.0, 0.94, 10)
    assert stats.paired_ratio(drift * x[0], drift * x[1], higher_is_better=True).p_value > 0.05


# ------------------------------------------------------------------------- Holm and rules

def test_holm_textbook():
    # sorted 0.005 <= .05/4, 0.01 <= .05/3, 0.03 > .05/2: stop
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == [True, False, False, True]
    assert stats.holm([0.01, 0.02, 0.03]) == [True, True, True]     # 1/3, 1/2, 1 of alpha
    assert stats.holm([0.02, 0.04]) == [True, True]                 # Bonferroni: only one
    assert stats.holm([0.04, 0.02], alpha=0.03) == [False, False]
    assert stats.holm([float("nan"), 0.001]) == [False, True]
    assert stats.holm([]) == []


def comparison(ratio, lo, hi, *, p=0.001, mde=0.041, higher=True, n=10):
    return stats.RoundComparison(ratio=ratio, ci=(lo, hi), p_value=p, n=n, paired=True,
                                 mde=mde, basis="test", higher_is_better=higher)


def test_verdict_rules():
    V = stats.verdict
    assert V(comparison(1.10, 1.05, 1.15), rejected=True).word == "faster"
    assert V(comparison(1.10, 1.05, 1.15, higher=False), rejected=True).word == "slower"
    assert V(comparison(0.90, 0.85, 0.95), rejected=True).word == "slower"
    assert V(comparison(0.90, 0.85, 0.95, higher=False), rejected=True).word == "faster"
    # each of the three conditions alone keeps it a null, which states its MDE
    for c, rejected in [(comparison(1.10, 1.05, 1.15), False),     # the family said no
                        (comparison(1.10, 0.99, 1.21), True),      # the interval holds 1
                        (comparison(1.01, 1.005, 1.015), True)]:   # below min_effect
        v = V(c, rejected=rejected)
        assert v.word == "no significant change"
        assert "could detect changes of 4.1 % or more" in v.detail
    assert "below the 2 % worth reporting" in V(comparison(1.01, 1.005, 1.015),
                                                rejected=True).detail
    assert V(comparison(1.01, 1.005, 1.015), rejected=True, min_effect=0.005).word == "faster"
    v = V(comparison(1.10, 1.05, 1.15), rejected=True, noise=(0.01, 0.08))
    assert v.word == "noisy: rerun" and "8 %" in v.detail and "during B" in v.detail
    assert V(comparison(1.10, 1.05, 1.15), rejected=True, noise=(0.01, 0.04)).word == "faster"
    v = V(comparison(1.0, 0.9, 1.1, mde=math.inf, n=4), rejected=False)
    assert v.word == "no significant change" and "could not detect any change" in v.detail
    assert str(v).startswith("no significant change (")
    with pytest.raises(TypeError):
        V(comparison(1.1, 1.05, 1.15))                   # rejected= is required


def test_rounds_needed():
    # paired, sd of the log ratios 0.0707 (CV 5 % on each side), 10 %:
    # n = 6: (2.571 + 0.920) * 0.0707 / sqrt 6 = 0.1008 > ln 1.1 = 0.0953; n = 7: 0.0896
    assert stats.rounds_needed(0.0707, 0.10) == 7
    assert stats.rounds_needed(0.0707, 0.10, family=3) > 7
    assert stats.rounds_needed(0.0, 0.10) == 6            # the exact test's floor 2/2**n
    assert stats.rounds_needed(0.0, 0.10, family=3) == 7
    assert stats.rounds_needed(0.0, 0.10, paired=False) == 3
    # unpaired: se = sd sqrt(2/n); 2 % at a spread of 5 % takes about a hundred rounds a side
    n = stats.rounds_needed(0.05, 0.02, paired=False)
    assert 95 <= n <= 105
    # consistent with the MDE a comparison reports
    rng = np.random.default_rng(5)
    for k in (8, 12, 20):
        d = rng.normal(0, 1, k)
        d = 0.03 * (d - d.mean()) / d.std(ddof=1)
        c = stats.paired_ratio(np.ones(k), np.exp(d), higher_is_better=True)
        need = stats.rounds_needed(c.sd_log, c.mde)
        assert need == k or (need < k and stats.rounds_needed(c.sd_log, c.mde * 0.999) > need)
    with pytest.raises(ValueError):
        stats.rounds_needed(0.05, 0.0)


def test_bimodal():
    assert stats.bimodal([1.0, 1.01, 0.99, 1.0, 0.8, 0.81, 0.79, 0.8])
    assert stats.bimodal([1, 1, 2, 2])                     # no spread, a gap
    assert not stats.bimodal(range(1, 9))                  # evenly spread
    assert not stats.bimodal([1, 1.01, 0.99, 1.0, 2.0])    # one outlier is not a mode
    assert not stats.bimodal([1, 2, 3]) and not stats.bimodal([5, 5, 5, 5])
    rng = np.random.default_rng(6)
    normal = sum(stats.bimodal(rng.normal(1, 0.05, 20)) for _ in range(500))
    modes = sum(stats.bimodal(np.where(rng.random(20) < 0.5, 1.0, 0.8)
                              * lognormal(rng, 0.02, 20)) for _ in range(500))
    assert normal <= 5 and modes >= 490


# ------------------------------------------------------------- percentiles over rounds

def _mixture_quantile(p: float, shift_sd: float) -> float:
    """The p-th percentile of 1 + N(0, shift_sd) + Exp(1): a round's shift, then the
    latencies within it (the distribution a fresh round draws from)."""
    s = np.linspace(-8 * shift_sd, 8 * shift_sd, 40001)
    w = np.exp(-0.5 * (s / shift_sd) ** 2)
    w /= w.sum()
    lo, hi = 0.0, 30.0
    for _ in range(60):
        mid = (lo + hi) / 2
        cdf = float(np.sum(w * np.where(s < mid - 1, -np.expm1(-(mid - 1 - s)), 0.0)))
        lo, hi = (mid, hi) if cdf < p / 100 else (lo, mid)
    return (lo + hi) / 2


@pytest.mark.parametrize("p", [50, 99])
def test_hierarchical_percentile_interval_covers(p):
    """10 rounds of 5000 latencies (above RESAMPLE_MAX in all: ranks are drawn), each round
    shifted by its own random amount: the 95 % interval covers the true percentile of the
    distribution a round draws from in about 95 % of 200 trials."""
    truth = _mixture_quantile(p, 0.3)
    rng = np.random.default_rng(7 + p)
    hits, trials = 0, 200
    for trial in range(trials):
        rounds = [1 + rng.normal(0, 0.3) + rng.exponential(1.0, 5000) for _ in range(10)]
        value, lo, hi = stats.percentile_ci_hierarchical(rounds, p, boots=400, seed=trial)
        assert lo <= value <= hi
        hits += lo <= truth <= hi
    assert 0.88 <= hits / trials <= 0.99, f"coverage {rate_text(hits, trials)}"


def test_hierarchical_percentile_literal_and_large():
    rounds = [np.arange(1.0, 101.0) + shift for shift in (0, 10, 20)]
    value, lo, hi = stats.percentile_ci_hierarchical(rounds, 50, boots=300)
    assert value == stats.percentile(np.sort(np.concatenate(rounds)), 50) == 60.0
    assert lo < 55 and hi > 65                            # the rounds' spread is in it
    same = [np.arange(1.0, 101.0)] * 3
    v, lo, hi = stats.percentile_ci_hierarchical(same, 50, boots=300)
    assert v == 50 and 30 < lo <= 50 <= hi < 70           # only the noise within rounds
    # 20 rounds of 25,000: ranks drawn, never a pooled resample of half a million
    rng = np.random.default_rng(8)
    big = [rng.exponential(1.0, 25_000) * (1 + 0.05 * rng.standard_normal()) for _ in range(20)]
    v, lo, hi = stats.percentile_ci_hierarchical(big, 99, boots=1000)
    assert lo < v < hi and v == stats.percentile(np.sort(np.concatenate(big)), 99)
    # the rank path agrees with a literal two-level resample of the same rounds
    small = big[:10]
    lit = []
    r2 = np.random.default_rng(0)
    for _ in range(300):
        pick = r2.integers(0, 10, 10)
        res = np.concatenate([small[j][r2.integers(0, 25_000, 25_000)] for j in pick])
        k = math.ceil(0.99 * res.size)
        lit.append(np.partition(res, k - 1)[k - 1])
    v, lo, hi = stats.percentile_ci_hierarchical(small, 99, boots=1000)
    c = stats.t_quantile(0.975, 9) / 1.959964 * math.sqrt(10 / 9)  # its small-R stretch
    llo = v - c * (v - np.quantile(lit, 0.025))
    lhi = v + c * (np.quantile(lit, 0.975) - v)
    width = lhi - llo
    assert abs(lo - llo) < 0.2 * width and abs(hi - lhi) < 0.2 * width


# ------------------------------------------------------------------ calibration: A/A

AA_CASES = [("cv2", 21), ("cv5", 22), ("cv8", 23), ("bimodal", 24), ("drift", 25)]


@pytest.mark.parametrize("case, seed", AA_CASES)
def test_aa_families_get_few_firm_verdicts(case, seed):
    """A/A: the baseline and 3 layouts are the same thing. Holm bounds the chance of any firm
    verdict in the family by 5 % and the exact test meets the bound closely (4-5 %), so a
    point estimate from 2000 draws lands on either side of 5 % by chance: the check is that
    the draws do not show the rate above 5 % (the binomial interval's lower end is at most
    5 %) and that the point is within one standard error of it; test_aa_pooled checks the
    point of all cases together."""
    k, _ = simulate(stats.DEFAULT_ROUNDS, case, seed)
    lo, _ = wilson(k, DRAWS)
    assert lo <= 0.05 and k / DRAWS <= 0.05 + math.sqrt(0.05 * 0.95 / DRAWS), \
        f"A/A {case}: any firm verdict in {rate_text(k, DRAWS)}"


def test_aa_pooled_and_beyond_the_exact_test():
    k = sum(simulate(stats.DEFAULT_ROUNDS, case, seed)[0] for case, seed in AA_CASES)
    assert k / (5 * DRAWS) <= 0.05, f"A/A pooled over 5 cases: {rate_text(k, 5 * DRAWS)}"
    # 20 rounds: the t test instead of the exact one, calibrated as well
    k, _ = simulate(20, "bimodal", 36, draws=1000)
    assert wilson(k, 1000)[0] <= 0.05, f"A/A bimodal, 20 rounds: {rate_text(k, 1000)}"


def across_documents(rng, draws: int, drift: float, allowed: float, effect: float = 0.0,
                     n: int = stats.DEFAULT_ROUNDS, cv: float = 0.05) -> int:
    """Pairs of separate documents (n rounds each, CV ``cv``) whose levels drift apart by a
    log-normal factor of sd ``drift`` each, B ``effect`` faster: how many got "faster" or
    "slower" from compare's rule (unpaired_ratio with drift_sd=``allowed``, one figure)."""
    firm = 0
    for _ in range(draws):
        a, b = lognormal(rng, cv, (2, n))
        a *= math.exp(drift * rng.standard_normal())
        b *= math.exp(drift * rng.standard_normal()) * (1 + effect)
        c = stats.unpaired_ratio(a, b, higher_is_better=True, drift_sd=allowed)
        firm += stats.verdict(c, rejected=c.p_value <= 0.05).word in FIRM
    return firm


def test_aa_across_documents_holds_with_the_drift_allowed_for():
    """Separate identical runs on this project's VM drift apart by about 7.6 % (compare.DRIFT):
    the rounds alone call such A/A pairs faster or slower most of the time; with the drift
    allowed for, about 5 %. A real 30 % change is still found."""
    from numaprobe import compare
    rng = np.random.default_rng(51)
    blind = across_documents(rng, 1000, compare.DRIFT, 0.0)
    assert blind / 1000 > 0.5, f"rounds alone: {rate_text(blind, 1000)}"
    held = across_documents(rng, 2000, compare.DRIFT, compare.DRIFT)
    lo, _ = wilson(held, 2000)
    assert lo <= 0.05 and held / 2000 <= 0.05 + math.sqrt(0.05 * 0.95 / 2000), \
        f"A/A across documents, drift allowed for: {rate_text(held, 2000)}"
    # a machine quieter than allowed for: fewer false verdicts still
    assert across_documents(rng, 1000, 0.01, compare.DRIFT) / 1000 <= 0.01
    found = across_documents(rng, 1000, compare.DRIFT, compare.DRIFT, effect=0.30)
    assert found / 1000 >= 0.5, f"30 % across documents: {rate_text(found, 1000)}"


def test_the_drift_is_in_the_interval_and_the_caveat():
    a, b = [1.0, 1.1, 1.05, 0.95], [1.2, 1.25, 1.3, 1.15]
    c0 = stats.unpaired_ratio(a, b, higher_is_better=True)
    c1 = stats.unpaired_ratio(a, b, higher_is_better=True, drift_sd=0.05)
    la, lb = np.log(a), np.log(b)
    assert c1.ratio == c0.ratio and c1.p_value > c0.p_value
    # the drift's variance is known: it widens the error and adds no degrees of freedom
    va, vb = la.var(ddof=1) / 4, lb.var(ddof=1) / 4
    se1 = math.sqrt(va + vb + 2 * 0.05 ** 2)
    df1 = se1 ** 4 / (va ** 2 / 3 + vb ** 2 / 3)
    assert c1.ci[1] == pytest.approx(c1.ratio * math.exp(stats.t_quantile(0.975, df1) * se1))
    assert "drift between documents of sd 5 %" in c1.basis and "(--drift)" in c1.caveat
    with pytest.raises(ValueError, match="drift_sd must be a fraction"):
        stats.unpaired_ratio(a, b, higher_is_better=True, drift_sd=-0.1)


# ------------------------------------------------------------- calibration: detection

def test_a_real_change_is_detected_at_the_default_rounds():
    """DEFAULT_ROUNDS is the smallest n at which a real 10 % change at CV 5 % (layout 1 of
    the family; the others A/A) is called "faster" in >= 80 % of draws."""
    n = stats.DEFAULT_ROUNDS
    _, hit = simulate(n, "cv5", 41, effect=0.10)
    assert hit / DRAWS >= 0.80, f"10 % at CV 5 %, {n} rounds: detected {rate_text(hit, DRAWS)}"
    _, hit = simulate(n - 1, "cv5", 42, effect=0.10)
    assert hit / DRAWS < 0.80, (f"{n - 1} rounds already detect 10 % at CV 5 % in "
                                f"{rate_text(hit, DRAWS)}: DEFAULT_ROUNDS could be smaller")


# ----------------------------------------------------- why the round is the unit

def test_the_naive_per_sample_bootstrap_gives_false_verdicts():
    """The same A/A families, each round now 50 per-tenth throughput samples (2 % noise within
    the round) around its round value: today's rule bootstraps the pooled samples of each side
    (the interval of the mean ratio) and says "faster"/"slower" when it excludes 1 and the
    change is >= 2 %. It sees the noise within rounds, not between them, and calls far more
    A/A families than the rounds do from the same data."""
    rng = np.random.default_rng(51)
    draws, n, per, boots = 300, stats.DEFAULT_ROUNDS, 50, 200
    naive = rounds_rule = 0
    for _ in range(draws):
        base, layouts = document(rng, n, "cv5")
        sides = [s[:, None] * lognormal(rng, 0.02, (n, per)) for s in (base, *layouts)]
        a = sides[0].ravel()
        ia = rng.integers(0, a.size, (boots, a.size))
        mean_a = a[ia].mean(axis=1)
        firm = False
        for b in (s.ravel() for s in sides[1:]):
            ratio = b.mean() / a.mean()
            boot = b[rng.integers(0, b.size, (boots, b.size))].mean(axis=1) / mean_a
            lo, hi = np.quantile(boot, [0.025, 0.975])
            firm |= bool((lo > 1 or hi < 1) and abs(ratio - 1) >= 0.02)
        naive += firm
        words = family_words(sides[0].mean(axis=1), [s.mean(axis=1) for s in sides[1:]])
        rounds_rule += any(w in FIRM for w in words)
    assert naive / draws > 0.30, f"naive: {rate_text(naive, draws)}"
    assert wilson(rounds_rule, draws)[0] <= 0.05, f"rounds: {rate_text(rounds_rule, draws)}"
    assert naive > 5 * max(rounds_rule, 1), \
        f"naive {rate_text(naive, draws)} against rounds {rate_text(rounds_rule, draws)}"


def test_rounds_that_do_not_vary_give_no_verdict():
    """Identical rounds on each side (a figure quantized to a few values) carry no spread: a
    3 % difference between them is not a p = 0 verdict but not established."""
    for cmp in (stats.paired_ratio, stats.unpaired_ratio):
        c = cmp([100.0] * 3, [103.0] * 3, higher_is_better=True)
        assert not c.established and "do not vary" in c.reason
        assert c.ratio == pytest.approx(1.03)
        assert stats.verdict(c, rejected=True).word == "not established"
