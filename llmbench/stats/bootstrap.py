"""Bootstrap confidence intervals: of one sample's statistic, of a paired difference (same samples on
both sides) and of an unpaired one (independent timings). numpy only; every resampling is seeded
(``llmbench.stats.resampling``); the p-values come from randomization tests (``llmbench.stats.permutation``)
floored at what the sample sizes allow (``llmbench.stats.floors``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

from llmbench.stats import permutation
from llmbench.stats.floors import smallest_paired_p, smallest_unpaired_p
from llmbench.stats.quantiles import sorted_quantile
from llmbench.stats.resampling import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    AggregateMany,
    as_rows,
    resample_indices,
    resampled_baseline,
    resampled_statistic,
    resampled_values,
    unpaired_indices,
)

CONFIDENCE = 0.95


def _interval(dist: np.ndarray, confidence: float) -> tuple[float, float]:
    """``np.quantile(dist, [alpha, 1 - alpha])``, alpha = (1 - confidence) / 2, from one sort."""
    alpha = (1 - confidence) / 2
    ordered = np.sort(np.asarray(dist, dtype=float))
    if np.isnan(ordered[-1]):  # NaN sorts last; numpy's quantiles are NaN then
        return float("nan"), float("nan")
    return float(sorted_quantile(ordered, alpha)), float(sorted_quantile(ordered, 1 - alpha))


# ---------------------------------------------------------------- one sample


def bootstrap_sums(
    stats: Sequence | np.ndarray,
    aggregate_many: AggregateMany,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = CONFIDENCE,
) -> tuple[float | None, float | None]:
    """Percentile bootstrap CI of a corpus value that depends only on the column sums of ``stats``.

    ``stats`` has one row of sufficient statistics per sample; ``aggregate_many(summed, n)`` maps (R, k)
    column sums of R resamples of n rows to R corpus values. Same indices, same numbers as
    ``bootstrap_ci(stats, statistic=aggregate)``.
    """
    arr = as_rows(stats)
    n = arr.shape[0]
    if n == 0:
        return None, None
    if n == 1:
        v = float(np.asarray(aggregate_many(arr.sum(axis=0)[None, :], 1))[0])
        return v, v
    return _interval(resampled_values(arr, aggregate_many, resamples, seed), confidence)


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], float] | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = CONFIDENCE,
    *,
    aggregate_many: AggregateMany | None = None,
) -> tuple[float | None, float | None]:
    """Percentile bootstrap CI of ``statistic`` (default: mean) over the first axis of ``values``.

    ``values`` may be 2-D (one row of sufficient statistics per sample, e.g. BLEU n-gram counts); the
    statistic then receives the resampled rows. With one sample the CI collapses to the point value.
    When the statistic depends only on the column sums of the rows, pass ``aggregate_many`` (see
    ``bootstrap_sums``): the resamples are then evaluated in one vectorised pass.
    """
    arr = np.asarray(values, dtype=float)
    n = arr.shape[0]
    if n == 0:
        return None, None
    if aggregate_many is not None and (statistic is None or n > 1):
        return bootstrap_sums(arr, aggregate_many, resamples=resamples, seed=seed, confidence=confidence)
    stat = statistic or (lambda a: float(np.mean(a, axis=0)))
    if n == 1:
        v = float(stat(arr))
        return v, v
    idx = resample_indices(n, resamples, seed)
    if statistic is None and (arr.ndim == 1 or arr.shape[1:] == (1,)):
        dist = arr.reshape(n)[idx].mean(axis=1)
    else:
        dist = np.array([stat(arr[i]) for i in idx], dtype=float)
    return _interval(dist, confidence)


def cluster_bootstrap_mean_ci(
    values: Sequence[float] | np.ndarray,
    groups: Sequence,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = CONFIDENCE,
) -> tuple[float | None, float | None]:
    """Percentile bootstrap CI of the mean of values that come in groups (a cluster bootstrap).

    Whole groups are resampled and each resample's mean is its values' total over their count, so values
    measured together (the answers of one batch share TTFT and end time) count as one draw, not as many
    independent ones. With one value per group this is ``bootstrap_ci`` of the mean, same numbers."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return None, None
    _, inverse = np.unique(np.asarray([str(g) for g in groups]), return_inverse=True)
    sums = np.bincount(inverse, weights=arr)
    counts = np.bincount(inverse).astype(float)
    if sums.size == arr.size:
        return bootstrap_ci(arr, resamples=resamples, seed=seed, confidence=confidence)
    if sums.size == 1:
        v = float(arr.mean())
        return v, v
    idx = resample_indices(sums.size, resamples, seed)
    return _interval(sums[idx].sum(axis=1) / counts[idx].sum(axis=1), confidence)


# ---------------------------------------------------------------- two samples


@dataclass(frozen=True)
class PairedDelta:
    """Candidate minus baseline, with a bootstrap CI and the two-sided p-value of a randomization test
    (llmbench.stats.permutation: swaps for paired samples, relabelling for unpaired ones)."""

    baseline: float
    candidate: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    confidence: float = CONFIDENCE

    @property
    def significant(self) -> bool:
        """True when the CI of the difference excludes zero and p < 1 - confidence (with too few samples for
        an exact test to get there, p is floored and nothing is significant, see ``smallest_paired_p``)."""
        return (self.ci_low > 0 or self.ci_high < 0) and self.p_value < 1 - self.confidence

    def to_dict(self) -> dict:
        d = asdict(self)
        d["significant"] = self.significant
        return d


def _paired_inputs(baseline, candidate) -> tuple[np.ndarray, np.ndarray, int]:
    a = np.asarray(baseline, dtype=float)
    b = np.asarray(candidate, dtype=float)
    if a.shape[0] != b.shape[0]:
        raise ValueError("paired bootstrap needs the same samples on both sides")
    n = a.shape[0]
    if n == 0:
        raise ValueError("paired bootstrap needs at least one sample")
    return a, b, n


def paired_bootstrap_sums(
    baseline: Sequence | np.ndarray,
    candidate: Sequence | np.ndarray,
    aggregate_many: AggregateMany,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = CONFIDENCE,
    statistic: Callable[[np.ndarray], float] | None = None,
) -> PairedDelta:
    """``paired_bootstrap`` for a corpus value that depends only on the column sums of the rows.

    The point values come from ``statistic`` on all rows when given (e.g. the metric's ``aggregate``),
    else from ``aggregate_many`` on the full sums; the resampled values of each side from
    ``resampled_values`` (the same count matrix for both sides: the resamples are paired), for the CI; the
    p-value from ``permutation.paired_sums_p`` (samples swapped between the sides).
    """
    a, b, n = _paired_inputs(baseline, candidate)
    a, b = as_rows(a), as_rows(b)
    if statistic is not None:
        va, vb = float(statistic(a)), float(statistic(b))
    else:
        full = np.asarray(aggregate_many(np.vstack([a.sum(axis=0), b.sum(axis=0)]), n), dtype=float)
        va, vb = float(full[0]), float(full[1])
    deltas = resampled_values(b, aggregate_many, resamples, seed) - resampled_values(a, aggregate_many, resamples, seed)
    low, high = _interval(deltas, confidence)
    p = max(permutation.paired_sums_p(a, b, aggregate_many, resamples, seed), smallest_paired_p(n))
    return PairedDelta(va, vb, vb - va, low, high, p, n, confidence)


def paired_bootstrap(
    baseline: Sequence | np.ndarray,
    candidate: Sequence | np.ndarray,
    statistic: Callable[[np.ndarray], float] | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = CONFIDENCE,
    *,
    aggregate_many: AggregateMany | None = None,
) -> PairedDelta:
    """Paired bootstrap of statistic(candidate) - statistic(baseline) over shared samples.

    Both inputs are aligned per sample (row i of each is the same prompt). The same resampled indices
    are applied to both sides, as in sacrebleu's paired bootstrap and Koehn (2004): that gives the CI. The
    p-value is a paired randomization test's (``permutation.paired_rows_p``). With ``aggregate_many``
    (statistic depends only on column sums) the resamples are vectorised, see ``paired_bootstrap_sums``.
    """
    if aggregate_many is not None:
        return paired_bootstrap_sums(baseline, candidate, aggregate_many, resamples=resamples, seed=seed,
                                     confidence=confidence, statistic=statistic)
    a, b, n = _paired_inputs(baseline, candidate)
    stat = statistic or (lambda x: float(np.mean(x, axis=0)))
    va, vb = float(stat(a)), float(stat(b))
    idx = resample_indices(n, resamples, seed)
    if statistic is None and a.ndim == 1:
        deltas = b[idx].mean(axis=1) - a[idx].mean(axis=1)
    else:
        deltas = np.array([stat(b[i]) - stat(a[i]) for i in idx], dtype=float)
    low, high = _interval(deltas, confidence)
    p = max(permutation.paired_rows_p(a, b, statistic, resamples, seed), smallest_paired_p(n))
    return PairedDelta(va, vb, vb - va, low, high, p, n, confidence)


def unpaired_bootstrap(
    baseline: Sequence[float],
    candidate: Sequence[float],
    statistic: Callable[..., float] = np.median,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = CONFIDENCE,
) -> PairedDelta:
    """Bootstrap of statistic(candidate) - statistic(baseline), each side resampled on its own, for the CI;
    the p-value from a permutation test of the pooled values (``permutation.unpaired_p``).

    For latency: per-sample timings of two runs are independent draws, not paired. ``statistic`` should
    accept ``axis`` like the numpy reductions (np.mean, np.median, a partial of np.percentile) so all
    resamples are evaluated in one call; one without it is called once per resample.
    """
    a = np.asarray(baseline, dtype=float)
    b = np.asarray(candidate, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError("bootstrap needs at least one value on each side")
    _, ib = unpaired_indices(a.size, b.size, resamples, seed)
    deltas = resampled_statistic(statistic, b, ib) - resampled_baseline(statistic, a, b.size, resamples, seed)
    low, high = _interval(deltas, confidence)
    va, vb = float(statistic(a)), float(statistic(b))
    p = max(permutation.unpaired_p(a, b, statistic, resamples, seed, resampled_statistic),
            smallest_unpaired_p(a.size, b.size))
    return PairedDelta(va, vb, vb - va, low, high, p, int(min(a.size, b.size)), confidence)
