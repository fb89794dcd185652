"""The one metric shape: per-sample sufficient statistics -> corpus value, with a bootstrap CI.

Every metric turns (predictions, references) into a matrix with one row of sufficient statistics per
sample. ``aggregate`` turns any subset or resample of those rows into the corpus value, so the bootstrap
CI resamples samples (rows), exactly as sacrebleu's own bootstrap does for BLEU/chrF/TER.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from llmbench.errors import UserError
from llmbench.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, bootstrap_ci

Predictions = Sequence[str]
References = Sequence[Sequence[str]]


def check_inputs(predictions: Predictions, references: References) -> tuple[list[str], list[list[str]]]:
    """Validate and normalise inputs: same length, at least one reference per sample, str everywhere.

    A ``None`` prediction (a generation that produced nothing) is scored as the empty string.
    A reference given as a bare string is taken as a one-element list.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} reference lists")
    preds = ["" if p is None else p for p in predictions]
    for i, p in enumerate(preds):
        if not isinstance(p, str):
            raise TypeError(f"prediction {i} is {type(p).__name__}, expected str")
    refs: list[list[str]] = []
    for i, r in enumerate(references):
        rs = [r] if isinstance(r, str) else list(r)
        if not rs:
            raise UserError(f"sample {i} has no reference (use \"\" for an explicit empty answer)")
        for x in rs:
            if not isinstance(x, str):
                raise TypeError(f"reference of sample {i} is {type(x).__name__}, expected str")
        refs.append(rs)
    return preds, refs


class Metric(ABC):
    """A quality metric. Subclasses set the class attributes and implement the three abstract methods."""

    name: str = ""
    higher_is_better: bool = True
    scale: str = "0-1"  # "0-100" or "0-1": the reference library's own scale
    library: str = ""  # the reference implementation and its version, e.g. "sacrebleu 2.6.0"

    @abstractmethod
    def sample_stats(self, predictions: Predictions, references: References) -> np.ndarray:
        """Per-sample sufficient statistics, shape (n, k), float64."""

    @abstractmethod
    def aggregate(self, stats: np.ndarray) -> float:
        """Corpus value from rows of ``sample_stats`` (all of them, a subset or a bootstrap resample)."""

    @abstractmethod
    def row_scores(self, stats: np.ndarray) -> list[float]:
        """A per-sample score for display, computed from the rows of ``sample_stats``."""

    def sample_scores(self, predictions: Predictions, references: References) -> list[float]:
        """One score per sample (sentence-level BLEU/chrF/TER, per-sample ROUGE/EM/F1/JSON F1)."""
        return self.row_scores(self.sample_stats(predictions, references))

    def summarize(self, stats: np.ndarray, seed: int = DEFAULT_SEED,
                  resamples: int = DEFAULT_RESAMPLES) -> dict:
        """Corpus value plus 95% percentile-bootstrap CI over samples, from precomputed stats."""
        stats = np.asarray(stats, dtype=float)
        n = int(stats.shape[0])
        if n == 0:
            value = low = high = None
        else:
            value = float(self.aggregate(stats))
            low, high = bootstrap_ci(stats, statistic=self.aggregate, resamples=resamples, seed=seed)
        return {
            "value": value,
            "ci_low": low,
            "ci_high": high,
            "higher_is_better": self.higher_is_better,
            "scale": self.scale,
            "n": n,
        }

    def compute(self, predictions: Predictions, references: References, seed: int = DEFAULT_SEED,
                resamples: int = DEFAULT_RESAMPLES) -> dict:
        """``{"value", "ci_low", "ci_high", "higher_is_better", "scale", "n"}`` for the whole corpus."""
        return self.summarize(self.sample_stats(predictions, references), seed=seed, resamples=resamples)

    def __repr__(self) -> str:
        return f"<metric {self.name} ({self.scale}, {'higher' if self.higher_is_better else 'lower'} is better)>"
