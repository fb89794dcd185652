"""Decisions that hold: is a candidate within a margin of a reference (non-inferiority), and if the data
cannot tell, how many examples would?

Non-inferiority is not a difference test. "Not significantly different" on few samples means "not enough
data", never "equivalent". Here the candidate is

- *enough* when the lower bound of the paired 95% CI of (candidate / reference) clears the margin,
- *not enough* when the upper bound falls below it,
- *undecided* otherwise, with the number of examples at which the observed paired spread would decide.

The ratio is direction-adjusted (reference / candidate when lower is better, so above 1 is always better).
Where a ratio is meaningless (the denominator is 0 on the data or on a resample, e.g. a failure rate whose
best is 0) the difference is used instead, against an absolute margin. The CI comes from a paired bootstrap:
both sides are resampled with the same count matrix (``llmbench.stats.resampled_values`` with the same seed),
so a corpus metric such as BLEU is recomputed from the resampled corpus on both sides, as the CIs of the
runs themselves are.

Examples needed: the spread of the estimate shrinks as 1/sqrt(n), so the CI would clear (or miss) the
margin at ``n * ((z_conf + z_power) * se / |estimate - margin|)**2`` examples in ``power`` (80%) of runs, if
the true value is the observed one; ``se`` is read from the CI's half-width on the side facing the margin
(``side_se``). ``tests/unit/test_noninferiority.py`` checks that figure by simulation.

Few samples: a percentile bootstrap over a handful of samples is too narrow (identical outputs on 3 prompts
give a zero-width interval), so no decision is taken on fewer shared samples than a paired randomization
test needs to reach the level at all (6 at 95%, see ``smallest_paired_p``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Callable, Sequence

import numpy as np

from llmbench.stats.bootstrap import CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED, resampled_values, smallest_paired_p

ENOUGH, NOT_ENOUGH, UNDECIDED = "enough", "not enough", "undecided"
#: the share of repeated runs in which the CI at the examples-needed count decides, if the truth is as observed
POWER = 0.8

AggregateMany = Callable[[np.ndarray, int], np.ndarray]


def z_value(confidence: float = CONFIDENCE) -> float:
    """The two-sided normal quantile of a confidence level: 1.96 at 95% (levels that round to 1 in floating
    point, from a significance such as 1e-20, are taken as 1 - 1e-16)."""
    return NormalDist().inv_cdf(min((1 + confidence) / 2, 1 - 1e-16))


def min_paired_samples(confidence: float = CONFIDENCE) -> int:
    """The fewest paired samples on which a paired randomization test can reach ``1 - confidence``
    (6 at 95%): below it, nothing is decided."""
    return fewest_paired_samples(1 - confidence)


def fewest_paired_samples(alpha: float) -> int:
    """The fewest differing samples at which a paired test's smallest p falls below ``alpha``; where no count
    does (``alpha`` 0, or a confidence that rounds to 1), the count at which that p reaches 0.0 (1,024)."""
    n = 1
    while (p := smallest_paired_p(n)) >= alpha and p > 0:
        n += 1
    return n


def decide(ci_low: float, ci_high: float, margin: float) -> str:
    """enough (lower bound at or above the margin), not enough (upper bound below it), else undecided."""
    if ci_low >= margin:
        return ENOUGH
    if ci_high < margin:
        return NOT_ENOUGH
    return UNDECIDED


def examples_to_decide(n: int, estimate: float, se: float | None, margin: float, confidence: float = CONFIDENCE,
                       power: float = POWER, at_least: int = 1) -> int | None:
    """Examples at which a CI of this spread would clear or miss ``margin`` in ``power`` of runs, if the true
    value is ``estimate`` and the standard error ``se`` (observed on ``n`` examples) shrinks as 1/sqrt(n).

    None when no number would: the estimate sits exactly on the margin, or the spread is unknown. The result
    is at least ``at_least`` (e.g. the samples a randomization test needs to reach the level at all)."""
    if se is None or not math.isfinite(se) or not math.isfinite(estimate):
        return None
    gap = abs(estimate - margin)
    if gap == 0:
        return None
    z = z_value(confidence) + NormalDist().inv_cdf(power)
    need = math.ceil(n * (z * se / gap) ** 2) if se > 0 else 0
    return max(need, at_least)


def power_at(m: int, needed: int, confidence: float = CONFIDENCE, power: float = POWER) -> float:
    """The share of runs on ``m`` examples whose CI would decide, where ``needed`` examples decide in ``power``
    of them (``examples_to_decide``): the standardized gap grows as sqrt(m), so it is
    Phi((z_conf + z_power) * sqrt(m / needed) - z_conf)."""
    z_conf = z_value(confidence)
    dist = NormalDist()
    return dist.cdf((z_conf + dist.inv_cdf(power)) * math.sqrt(m / needed) - z_conf) if needed > 0 else 1.0


@dataclass(frozen=True)
class Decision:
    """The non-inferiority decision of a candidate against a reference on one metric.

    ``measure`` is "ratio" (candidate / reference, direction-adjusted; ``margin`` e.g. 0.95) or "difference"
    (candidate - reference, direction-adjusted; ``margin`` the largest allowed drop as a negative number).
    """

    outcome: str  # enough | not enough | undecided
    measure: str
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    margin: float
    n: int  # examples compared (shared samples, or the rows' sizes for the unpaired fallback)
    se: float | None = None  # bootstrap (or normal) standard error of the estimate
    examples_needed: int | None = None  # for an undecided decision: examples that would decide
    method: str = ""
    reason: str = ""  # why it is undecided when the data did not get a say (too few samples, no test)
    confidence: float = CONFIDENCE
    available: int | None = None  # the examples the task's data holds, where the rows say (task.available)

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return asdict(self)


def undecided(reason: str, margin: float, measure: str = "ratio", n: int = 0) -> Decision:
    """A decision the data could not make at all (no shared samples, tests turned off, ...)."""
    return Decision(UNDECIDED, measure, None, None, None, margin, n, reason=reason)


def side_se(estimate: float, ci_low: float, ci_high: float, margin: float, n: int,
            confidence: float = CONFIDENCE) -> float:
    """The standard error that moves the CI bound facing the margin: the half-width on that side over z,
    with Bessel's n / (n - 1) (a bootstrap's plug-in spread is that much too small). Skewed intervals (a
    ratio on few samples) are read on the side that decides."""
    width = estimate - ci_low if estimate >= margin else ci_high - estimate
    return width / z_value(confidence) * math.sqrt(n / (n - 1)) if n > 1 else math.inf


def _rows(stats) -> np.ndarray:
    arr = np.asarray(stats, dtype=float)
    return arr.reshape(-1, 1) if arr.ndim == 1 else arr


def _interval(dist: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    with np.errstate(invalid="ignore"):  # inf - inf between two infinite ratios: the bound is +inf
        lo, hi = np.quantile(dist, [alpha, 1 - alpha])
    return (float(lo) if not np.isnan(lo) else math.inf), (float(hi) if not np.isnan(hi) else math.inf)


def _paired(reference, candidate, aggregate_many: AggregateMany, resamples: int, seed: int):
    """Point values and paired resampled values (the same count matrix on both sides) of the two sides."""
    a, b = _rows(reference), _rows(candidate)
    if a.shape[0] != b.shape[0] or a.shape[0] == 0:
        raise ValueError("a paired comparison needs the same, non-empty samples on both sides")
    n = a.shape[0]
    va, vb = (float(v) for v in np.asarray(aggregate_many(np.vstack([a.sum(axis=0), b.sum(axis=0)]), n)))
    ra = resampled_values(a, aggregate_many, resamples, seed)
    rb = resampled_values(b, aggregate_many, resamples, seed)
    return n, va, vb, ra, rb


def paired_noninferiority(reference: Sequence | np.ndarray, candidate: Sequence | np.ndarray,
                          aggregate_many: AggregateMany, margin: float, higher_is_better: bool = True,
                          difference_margin: float | None = None, resamples: int = DEFAULT_RESAMPLES,
                          seed: int = DEFAULT_SEED, confidence: float = CONFIDENCE) -> Decision:
    """Non-inferiority of ``candidate`` against ``reference`` from per-sample sufficient statistics (row i of
    both is the same example; the corpus value depends on the column sums, see ``resampled_values``).

    ``margin``: the ratio to clear (0.95: at least 95% of the reference). ``difference_margin``: the largest
    allowed drop in the metric's unit, used when a ratio is meaningless (None: then such a comparison is
    undecided)."""
    n, va, vb, ra, rb = _paired(reference, candidate, aggregate_many, resamples, seed)
    # direction-adjusted ratio: candidate / reference, or reference / candidate when lower is better
    num, den, rnum, rden = (vb, va, rb, ra) if higher_is_better else (va, vb, ra, rb)
    method = f"paired bootstrap over {n} shared samples"
    with np.errstate(divide="ignore", invalid="ignore"):
        # meaningless when the reference scores 0: "x% of nothing", or 0% of a failure rate of 0
        if va > 0 and den > 0:
            # a resample whose reference value is 0 has no finite ratio: +inf when the candidate scores, and
            # 1 (the two equal) when both are 0; the bounds read them as the extremes they are
            dist = np.where(rden > 0, rnum / rden, np.where(rnum > 0, np.inf, 1.0))
            measure, estimate, bar = "ratio", num / den, margin
        elif difference_margin is not None:
            sign = 1.0 if higher_is_better else -1.0
            measure, estimate, dist, bar = "difference", sign * (vb - va), sign * (rb - ra), -abs(difference_margin)
        else:
            return undecided("a ratio is meaningless here (the reference's value is 0) and no absolute margin "
                             "was given", margin, "ratio", n)
    if resamples <= 1:
        return Decision(UNDECIDED, measure, estimate, None, None, bar, n, method=method,
                        reason="no resamples (--resamples 0): untested")
    lo, hi = _interval(dist, confidence)
    se = side_se(estimate, lo, hi, bar, n, confidence)
    floor = min_paired_samples(confidence)
    outcome, reason = decide(lo, hi, bar), ""
    if n < floor:
        outcome, reason = UNDECIDED, f"too few shared samples to decide ({n}; at least {floor})"
    needed = examples_to_decide(n, estimate, se, bar, confidence, at_least=max(floor, n + 1)) \
        if outcome == UNDECIDED else None
    return Decision(outcome, measure, estimate, lo, hi, bar, n, se, needed, method, reason, confidence)


def normal_noninferiority(reference: float, reference_se: float, candidate: float, candidate_se: float, n: int,
                          margin: float, higher_is_better: bool = True, difference_margin: float | None = None,
                          confidence: float = CONFIDENCE) -> Decision:
    """Non-inferiority from two values and their standard errors, unpaired (rows without shared per-sample
    outputs, such as lm-eval's metrics with their stderr): a normal CI, of the ratio by the delta method.
    Conservative next to a paired test, which removes the spread the two rows share."""
    num, den, se_num, se_den = ((candidate, reference, candidate_se, reference_se) if higher_is_better
                                else (reference, candidate, reference_se, candidate_se))
    method = "normal approximation from the recorded standard errors (unpaired)"
    if reference > 0 and den > 0:
        measure, estimate, bar = "ratio", num / den, margin
        se = math.hypot(se_num / den, num * se_den / den ** 2)  # delta method for num / den
    elif difference_margin is not None:
        sign = 1.0 if higher_is_better else -1.0
        measure, estimate, bar = "difference", sign * (candidate - reference), -abs(difference_margin)
        se = math.hypot(reference_se, candidate_se)
    else:
        return undecided("a ratio is meaningless here (the reference's value is 0)", margin, "ratio", n)
    z = z_value(confidence)
    lo, hi = estimate - z * se, estimate + z * se
    outcome = decide(lo, hi, bar)
    needed = examples_to_decide(n, estimate, se, bar, confidence, at_least=n + 1) if outcome == UNDECIDED else None
    return Decision(outcome, measure, estimate, lo, hi, bar, n, se, needed, method, "", confidence)


@dataclass(frozen=True)
class Gain:
    """A direction-adjusted difference (larger model minus smaller, positive = better) with its paired CI."""

    estimate: float
    ci_low: float | None
    ci_high: float | None
    se: float | None
    n: int

    def scaled(self, factor: float) -> Gain:
        """The same gain divided by ``factor`` (e.g. per doubling: by log2 of the size ratio)."""
        f = 1.0 / factor
        return Gain(self.estimate * f, None if self.ci_low is None else self.ci_low * f,
                    None if self.ci_high is None else self.ci_high * f, None if self.se is None else self.se * f,
                    self.n)

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return asdict(self)


def paired_gain(smaller: Sequence | np.ndarray, larger: Sequence | np.ndarray, aggregate_many: AggregateMany,
                higher_is_better: bool = True, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                confidence: float = CONFIDENCE) -> Gain:
    """value(larger) - value(smaller), sign-adjusted so positive is better, with its paired bootstrap CI."""
    n, va, vb, ra, rb = _paired(smaller, larger, aggregate_many, resamples, seed)
    sign = 1.0 if higher_is_better else -1.0
    if resamples <= 1:
        return Gain(sign * (vb - va), None, None, None, n)
    dist = sign * (rb - ra)
    lo, hi = _interval(dist, confidence)
    return Gain(sign * (vb - va), lo, hi, float(np.std(dist, ddof=1)), n)


def unpaired_ratio(numerator: Sequence[float], denominator: Sequence[float], statistic: Callable,
                   resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                   confidence: float = CONFIDENCE) -> tuple[float, float | None, float | None] | None:
    """statistic(numerator) / statistic(denominator) with a bootstrap CI, each side resampled on its own (two
    runs' timings are separate draws, not pairs); None when a side is empty or a statistic is not positive.

    ``statistic`` takes ``axis`` like a numpy reduction (``llmbench.stats.Quantile()`` for a median)."""
    a, b = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    if a.size == 0 or b.size == 0:
        return None
    sa, sb = float(statistic(a)), float(statistic(b))
    if sb <= 0 or sa <= 0:
        return None
    if resamples <= 1:
        return sa / sb, None, None
    rng = np.random.default_rng([seed, 0x0E7A])  # its own stream, apart from the paired resamples
    ra = np.asarray(statistic(a[rng.integers(0, a.size, size=(resamples, a.size))], axis=1), dtype=float)
    rb = np.asarray(statistic(b[rng.integers(0, b.size, size=(resamples, b.size))], axis=1), dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = ra / rb
    dist = dist[np.isfinite(dist)]
    if dist.size < 2:
        return sa / sb, None, None
    lo, hi = _interval(dist, confidence)
    return sa / sb, lo, hi
