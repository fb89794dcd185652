"""Summaries and bootstrap confidence intervals. numpy only; every resampling is seeded.

Resampling is vectorised. A bootstrap draws ``resamples`` x ``n`` indices from a seeded generator; for a
metric whose corpus value depends only on the column sums of its per-sample statistics (every metric in
``llmbench.metrics``), those indices become a count matrix ``counts`` (how often each sample is drawn in
each resample) and the resampled sums are one product ``counts @ stats``, which the metric's
``aggregate_many`` maps to corpus values in one numpy pass. The indices are the ones the row-by-row loop
used, so a given seed gives the same numbers as before (to floating-point rounding).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

from llmbench.stats import permutation

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
CONFIDENCE = 0.95

#: ``aggregate_many(summed, n)``: resampled column sums, shape (R, k), and the sample count -> (R,) values
AggregateMany = Callable[[np.ndarray, int], np.ndarray]


@dataclass(frozen=True)
class Summary:
    """Distribution of one per-sample measurement: mean, percentiles and a 95% bootstrap CI of the mean."""

    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None
    ci_low: float | None
    ci_high: float | None
    n: int

    @classmethod
    def from_values(cls, values: Sequence[float], seed: int = DEFAULT_SEED,
                    groups: Sequence | None = None) -> "Summary":
        """Summary of the non-None ``values``. ``groups`` (one label per value) marks values measured together,
        such as the answers of one batch, which share their timings: the CI then resamples whole groups."""
        labels = range(len(values)) if groups is None else groups  # default: each value its own group
        kept = [(v, g) for v, g in zip(values, labels) if v is not None]
        arr = np.asarray([v for v, _ in kept], dtype=float)
        if arr.size == 0:
            return cls(None, None, None, None, None, None, 0)
        p50, p90, p99 = np.percentile(arr, [50, 90, 99])
        low, high = cluster_bootstrap_mean_ci(arr, [g for _, g in kept], seed=seed)
        return cls(float(arr.mean()), float(p50), float(p90), float(p99), low, high, int(arr.size))

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- seeded resampling


# Resampled arrays (indices, counts, gathered values) are evaluated in blocks of rows of about _BLOCK
# entries; index and count matrices up to _CACHE entries (8 bytes each) are kept for reuse, a few at a time.
_BLOCK = 1 << 20
_CACHE = 1 << 18
# resampled values of one side are kept, keyed on the side's data, when it has at most this many numbers
_CACHED_INPUT = 1 << 14


def _draw_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


@lru_cache(maxsize=16)
def _cached_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    idx = _draw_indices(n, resamples, seed)
    idx.flags.writeable = False
    return idx


def _resample_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) sample indices drawn with replacement; the same for the same (n, resamples, seed).

    Comparisons ask again and again for the same (n, resamples, seed), so small (read-only) arrays are cached.
    """
    n, resamples, seed = int(n), int(resamples), int(seed)
    if n * resamples <= _CACHE:
        return _cached_indices(n, resamples, seed)
    return _draw_indices(n, resamples, seed)


def resample_counts(indices: np.ndarray, n: int) -> np.ndarray:
    """(R, n) float matrix: how often each of the ``n`` samples is drawn in each row of ``indices``.

    ``resample_counts(idx, n) @ stats`` equals ``stats[idx].sum(axis=1)``: the column sums of every resample.
    """
    indices = np.asarray(indices)
    r = indices.shape[0]
    flat = (indices + (np.arange(r) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=r * n).reshape(r, n).astype(float)


@lru_cache(maxsize=16)
def _cached_counts(n: int, resamples: int, seed: int) -> np.ndarray:
    counts = resample_counts(_resample_indices(n, resamples, seed), n)
    counts.flags.writeable = False
    return counts


def _row_blocks(resamples: int, n: int):
    step = max(1, _BLOCK // max(n, 1))
    for start in range(0, resamples, step):
        yield slice(start, min(start + step, resamples))


def resampled_sums(stats: np.ndarray, resamples: int = DEFAULT_RESAMPLES,
                   seed: int = DEFAULT_SEED) -> np.ndarray:
    """(R, k) column sums of the R seeded resamples of the rows of ``stats`` (n, k): ``counts @ stats``."""
    arr = _as_rows(stats)
    n, resamples, seed = int(arr.shape[0]), int(resamples), int(seed)
    if n * resamples <= _CACHE:
        return _cached_counts(n, resamples, seed) @ arr
    idx = _draw_indices(n, resamples, seed)
    out = np.empty((resamples, arr.shape[1]))
    for rows in _row_blocks(resamples, n):
        out[rows] = resample_counts(idx[rows], n) @ arr
    return out


def resampled_values(stats: Sequence | np.ndarray, aggregate_many: AggregateMany,
                     resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> np.ndarray:
    """(R,) corpus values of the R seeded resamples of the rows of ``stats``, from their column sums.

    Kept for the rest of the process for small inputs (keyed on ``aggregate_many``, the content of
    ``stats``, ``resamples`` and ``seed``): a reference row compared with many others is resampled once.
    """
    arr = _as_rows(stats)
    if arr.size <= _CACHED_INPUT and resamples <= _CACHE and _is_hashable(aggregate_many):
        return _cached_values(aggregate_many, arr.tobytes(), arr.shape, int(resamples), int(seed))
    return np.asarray(aggregate_many(resampled_sums(arr, resamples, seed), arr.shape[0]), dtype=float)


@lru_cache(maxsize=128)
def _cached_values(aggregate_many: AggregateMany, data: bytes, shape: tuple[int, ...], resamples: int,
                   seed: int) -> np.ndarray:
    arr = np.frombuffer(data, dtype=float).reshape(shape)
    out = np.array(aggregate_many(resampled_sums(arr, resamples, seed), shape[0]), dtype=float)
    out.flags.writeable = False
    return out


def _as_rows(values) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    return arr.reshape(-1, 1) if arr.ndim == 1 else arr


def sorted_quantile(rows: np.ndarray, q: float) -> np.ndarray:
    """``np.quantile(rows, q, axis=-1)`` (numpy's default 'linear' method) of rows already sorted ascending.

    The same operations as numpy's ``_quantile``: virtual index (n - 1) * q, clipped to the ends, then
    numpy's ``_lerp`` between its two neighbours. (NaN rows are the caller's business.)
    """
    n = rows.shape[-1]
    virtual = (n - 1) * q
    if virtual >= n - 1:
        return rows[..., -1] + 0.0
    if virtual < 0:
        return rows[..., 0] + 0.0
    before = float(np.floor(virtual))
    gamma = virtual - before
    lo, hi = rows[..., int(before)], rows[..., int(before) + 1]
    diff = hi - lo
    return hi - diff * (1 - gamma) if gamma >= 0.5 else lo + diff * gamma


def _interval(dist: np.ndarray, confidence: float) -> tuple[float, float]:
    """``np.quantile(dist, [alpha, 1 - alpha])``, alpha = (1 - confidence) / 2, from one sort."""
    alpha = (1 - confidence) / 2
    ordered = np.sort(np.asarray(dist, dtype=float))
    if np.isnan(ordered[-1]):  # NaN sorts last; numpy's quantiles are NaN then
        return float("nan"), float("nan")
    return float(sorted_quantile(ordered, alpha)), float(sorted_quantile(ordered, 1 - alpha))


def smallest_paired_p(n: int) -> float:
    """The smallest two-sided p of an exact sign-flip test on n pairs, 2 / 2**n.

    A bootstrap over n pairs that all moved the same way has every resample on one side of zero (p = 0,
    a zero-width interval), however small n: one sample would look "significant". Its p is floored here, so
    fewer than 6 pairs can never be significant at 95%."""
    return min(1.0, 2.0 / 2.0 ** n) if n < 1024 else 0.0


def smallest_unpaired_p(na: int, nb: int) -> float:
    """The smallest two-sided p of an exact permutation test of two groups of na and nb values,
    2 / C(na + nb, na) (the unpaired counterpart of ``smallest_paired_p``)."""
    if min(na, nb) == 0:
        return 1.0
    if na + nb <= 1000:
        return min(1.0, 2.0 / math.comb(na + nb, na))
    # larger groups: log C(na + nb, na) by lgamma (C itself can be too large for a float); underflows to 0.0
    log_comb = math.lgamma(na + nb + 1) - math.lgamma(na + 1) - math.lgamma(nb + 1)
    return min(1.0, 2.0 * math.exp(-log_comb))


def paired_p_floor(n: int, resamples: int = DEFAULT_RESAMPLES) -> float:
    """The smallest p a paired comparison (``paired_bootstrap``) can report on n shared samples."""
    return max(permutation.smallest_paired_p(n, resamples), smallest_paired_p(n))


def unpaired_p_floor(na: int, nb: int, statistic: Callable = np.median, resamples: int = DEFAULT_RESAMPLES,
                     seed: int = DEFAULT_SEED) -> float:
    """The smallest p ``unpaired_bootstrap`` can report for groups of na and nb values and this statistic."""
    return max(permutation.smallest_unpaired_p(na, nb, statistic, resamples, seed, _resampled_statistic),
               smallest_unpaired_p(na, nb))


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
    arr = _as_rows(stats)
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
    idx = _resample_indices(n, resamples, seed)
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
    idx = _resample_indices(sums.size, resamples, seed)
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
    a, b = _as_rows(a), _as_rows(b)
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
    idx = _resample_indices(n, resamples, seed)
    if statistic is None and a.ndim == 1:
        deltas = b[idx].mean(axis=1) - a[idx].mean(axis=1)
    else:
        deltas = np.array([stat(b[i]) - stat(a[i]) for i in idx], dtype=float)
    low, high = _interval(deltas, confidence)
    p = max(permutation.paired_rows_p(a, b, statistic, resamples, seed), smallest_paired_p(n))
    return PairedDelta(va, vb, vb - va, low, high, p, n, confidence)


class Quantile:
    """``np.median`` (``percent=None``) or ``np.percentile(a, percent)`` (numpy's default 'linear' method),
    callable like them, that evaluates a stack of resamples fast.

    ``stat(rows, axis=1)`` on a 2-D array sorts every row once and interpolates between the two order
    statistics with numpy's own formulas (the mean of the middle pair for the median, numpy's ``_lerp``
    for a percentile) instead of partitioning row by row; the values are numpy's. Any other call is
    passed to numpy unchanged.
    """

    def __init__(self, percent: float | None = None):
        self.percent = percent

    def __repr__(self) -> str:
        return "Quantile(median)" if self.percent is None else f"Quantile({self.percent:g}%)"

    def _numpy(self, a, axis=None):
        if self.percent is None:
            return np.median(a, axis=axis)
        return np.percentile(a, self.percent, axis=axis)

    def __call__(self, a, axis=None):
        arr = np.asarray(a)
        if arr.ndim != 2 or axis not in (1, -1) or arr.shape[1] == 0 or arr.dtype.kind != "f":
            return self._numpy(a, axis=axis)
        rows = np.sort(arr, axis=1)
        if self.percent is None:  # np.median: the mean of the middle element(s)
            n, half = rows.shape[1], rows.shape[1] // 2
            out = rows[:, half] + 0.0 if n % 2 else (rows[:, half - 1] + rows[:, half]) / 2
        else:
            out = sorted_quantile(rows, float(np.true_divide(self.percent, 100)))
        return np.where(np.isnan(rows[:, -1]), np.nan, out)  # NaN sorts last; numpy returns NaN then


def _draw_unpaired(na: int, nb: int, resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, na, size=(resamples, na))
    ib = rng.integers(0, nb, size=(resamples, nb))
    return ia, ib


@lru_cache(maxsize=16)
def _cached_unpaired(na: int, nb: int, resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    ia, ib = _draw_unpaired(na, nb, resamples, seed)
    ia.flags.writeable = ib.flags.writeable = False
    return ia, ib


def _unpaired_indices(na: int, nb: int, resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The baseline's (resamples, na) and the candidate's (resamples, nb) indices, drawn in that order."""
    na, nb, resamples, seed = int(na), int(nb), int(resamples), int(seed)
    if (na + nb) * resamples <= _CACHE:
        return _cached_unpaired(na, nb, resamples, seed)
    return _draw_unpaired(na, nb, resamples, seed)


def _resampled_statistic(statistic: Callable, arr: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """statistic of every resample ``arr[idx[r]]``: vectorised with ``axis=1`` when the statistic takes it."""
    statistic = _FAST_EQUIVALENT.get(statistic, statistic) if _is_hashable(statistic) else statistic
    out = np.empty(idx.shape[0])
    for rows in _row_blocks(idx.shape[0], arr.size):
        try:
            block = np.asarray(statistic(arr[idx[rows]], axis=1), dtype=float)
        except TypeError:  # a statistic without an axis argument
            block = None
        if block is None or block.shape != (rows.stop - rows.start,):
            return np.array([statistic(arr[i]) for i in idx], dtype=float)
        out[rows] = block
    return out


def _is_hashable(value) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


# numpy reductions with a faster equal-valued stand-in over stacks of resamples
_FAST_EQUIVALENT: dict = {np.median: Quantile()}


@lru_cache(maxsize=128)
def _baseline_side(statistic: Callable, data: bytes, resamples: int, seed: int) -> np.ndarray:
    a = np.frombuffer(data, dtype=float)
    out = _resampled_statistic(statistic, a, _resample_indices(a.size, resamples, seed))
    out.flags.writeable = False
    return out


def _resampled_baseline(statistic: Callable, a: np.ndarray, nb: int, resamples: int, seed: int) -> np.ndarray:
    """The baseline side of ``unpaired_bootstrap``.

    Its indices are the generator's first draw, ``_resample_indices(na, resamples, seed)`` whatever the
    candidate, so a baseline compared with many candidates (a reference row) is resampled once and kept.
    """
    if a.ndim == 1 and a.size <= _CACHED_INPUT and resamples <= _CACHE and _is_hashable(statistic):
        return _baseline_side(statistic, a.tobytes(), int(resamples), int(seed))
    ia, _ = _unpaired_indices(a.size, nb, resamples, seed)
    return _resampled_statistic(statistic, a, ia)


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
    _, ib = _unpaired_indices(a.size, b.size, resamples, seed)
    deltas = _resampled_statistic(statistic, b, ib) - _resampled_baseline(statistic, a, b.size, resamples, seed)
    low, high = _interval(deltas, confidence)
    va, vb = float(statistic(a)), float(statistic(b))
    p = max(permutation.unpaired_p(a, b, statistic, resamples, seed, _resampled_statistic),
            smallest_unpaired_p(a.size, b.size))
    return PairedDelta(va, vb, vb - va, low, high, p, int(min(a.size, b.size)), confidence)
