"""Summaries and bootstrap confidence intervals. numpy only; every resampling is seeded."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
CONFIDENCE = 0.95


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
    def from_values(cls, values: Sequence[float], seed: int = DEFAULT_SEED) -> "Summary":
        arr = np.asarray([v for v in values if v is not None], dtype=float)
        if arr.size == 0:
            return cls(None, None, None, None, None, None, 0)
        p50, p90, p99 = np.percentile(arr, [50, 90, 99])
        low, high = bootstrap_ci(arr, seed=seed)
        return cls(float(arr.mean()), float(p50), float(p90), float(p99), low, high, int(arr.size))

    def to_dict(self) -> dict:
        return asdict(self)


def _resample_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(resamples, n))


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], float] | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = CONFIDENCE,
) -> tuple[float | None, float | None]:
    """Percentile bootstrap CI of ``statistic`` (default: mean) over the first axis of ``values``.

    ``values`` may be 2-D (one row of sufficient statistics per sample, e.g. BLEU n-gram counts); the
    statistic then receives the resampled rows. With one sample the CI collapses to the point value.
    """
    arr = np.asarray(values, dtype=float)
    n = arr.shape[0]
    if n == 0:
        return None, None
    stat = statistic or (lambda a: float(np.mean(a, axis=0)))
    if n == 1:
        v = float(stat(arr))
        return v, v
    idx = _resample_indices(n, resamples, seed)
    if statistic is None and arr.ndim == 1:
        dist = arr[idx].mean(axis=1)
    else:
        dist = np.array([stat(arr[i]) for i in idx], dtype=float)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(dist, [alpha, 1 - alpha])
    return float(low), float(high)


@dataclass(frozen=True)
class PairedDelta:
    """Candidate minus baseline, with a paired-bootstrap CI and a two-sided p-value."""

    baseline: float
    candidate: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int

    @property
    def significant(self) -> bool:
        """True when the 95% CI of the difference excludes zero."""
        return self.ci_low > 0 or self.ci_high < 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["significant"] = self.significant
        return d


def paired_bootstrap(
    baseline: Sequence | np.ndarray,
    candidate: Sequence | np.ndarray,
    statistic: Callable[[np.ndarray], float] | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = CONFIDENCE,
) -> PairedDelta:
    """Paired bootstrap of statistic(candidate) - statistic(baseline) over shared samples.

    Both inputs are aligned per sample (row i of each is the same prompt). The same resampled indices
    are applied to both sides, as in sacrebleu's paired bootstrap and Koehn (2004).
    """
    a = np.asarray(baseline, dtype=float)
    b = np.asarray(candidate, dtype=float)
    if a.shape[0] != b.shape[0]:
        raise ValueError("paired bootstrap needs the same samples on both sides")
    n = a.shape[0]
    if n == 0:
        raise ValueError("paired bootstrap needs at least one sample")
    stat = statistic or (lambda x: float(np.mean(x, axis=0)))
    va, vb = float(stat(a)), float(stat(b))
    idx = _resample_indices(n, resamples, seed)
    if statistic is None and a.ndim == 1:
        deltas = b[idx].mean(axis=1) - a[idx].mean(axis=1)
    else:
        deltas = np.array([stat(b[i]) - stat(a[i]) for i in idx], dtype=float)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(deltas, [alpha, 1 - alpha])
    # two-sided p: how often the resampled difference lands on the other side of zero
    p = 2 * min(float(np.mean(deltas <= 0)), float(np.mean(deltas >= 0)))
    return PairedDelta(va, vb, vb - va, float(low), float(high), min(1.0, p), n)


def unpaired_bootstrap(
    baseline: Sequence[float],
    candidate: Sequence[float],
    statistic: Callable[[np.ndarray], float] = np.median,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = CONFIDENCE,
) -> PairedDelta:
    """Bootstrap of statistic(candidate) - statistic(baseline), each side resampled on its own.

    For latency: per-sample timings of two runs are independent draws, not paired.
    """
    a = np.asarray(baseline, dtype=float)
    b = np.asarray(candidate, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError("bootstrap needs at least one value on each side")
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, a.size, size=(resamples, a.size))
    ib = rng.integers(0, b.size, size=(resamples, b.size))
    deltas = np.array([statistic(b[j]) - statistic(a[i]) for i, j in zip(ia, ib)], dtype=float)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(deltas, [alpha, 1 - alpha])
    p = 2 * min(float(np.mean(deltas <= 0)), float(np.mean(deltas >= 0)))
    va, vb = float(statistic(a)), float(statistic(b))
    return PairedDelta(va, vb, vb - va, float(low), float(high), min(1.0, p), int(min(a.size, b.size)))
