"""Summary of one per-sample measurement: mean, percentiles and a 95% bootstrap CI of the mean."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from llmbench.stats.bootstrap import cluster_bootstrap_mean_ci
from llmbench.stats.resampling import DEFAULT_SEED


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
