"""The one metric shape: per-sample sufficient statistics -> corpus value, with a bootstrap CI.

Every metric turns (predictions, references) into a matrix with one row of sufficient statistics per
sample. ``aggregate`` turns any subset or resample of those rows into the corpus value, so the bootstrap
CI resamples samples (rows), exactly as sacrebleu's own bootstrap does for BLEU/chrF/TER.

Every built-in metric's corpus value depends only on the column sums of its rows and their number (a
mean, micro-averaged counts, sacrebleu's corpus formulas on summed statistics), so ``aggregate_many``
evaluates all bootstrap resamples at once from their column sums (``counts @ stats``, see
``llmbench.stats.resampled_sums``) instead of calling ``aggregate`` once per resample.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from llmbench.errors import UserError
from llmbench.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, bootstrap_ci, bootstrap_sums

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
    #: True when ``aggregate(rows)`` depends only on ``rows.sum(axis=0)`` and ``len(rows)``; the bootstrap
    #: then runs on resampled column sums through ``aggregate_many``. A metric whose corpus value needs
    #: the rows themselves (a median, say) sets it to False and is resampled row by row.
    additive: bool = True

    @abstractmethod
    def sample_stats(self, predictions: Predictions, references: References) -> np.ndarray:
        """Per-sample sufficient statistics, shape (n, k), float64."""

    @abstractmethod
    def aggregate(self, stats: np.ndarray) -> float:
        """Corpus value from rows of ``sample_stats`` (all of them, a subset or a bootstrap resample)."""

    def aggregate_many(self, summed: np.ndarray, n: int) -> np.ndarray:
        """Corpus values, shape (R,), of R sets of rows given only their column sums (R, k) and row count n.

        Row r must equal ``aggregate(rows_r)`` for any rows_r of n rows summing to ``summed[r]``. This
        default calls ``aggregate`` once per row, on n rows whose sums are ``summed[r]`` (the sums in the
        first row, zeros below); the built-in metrics override it with one numpy expression.
        """
        summed = np.atleast_2d(np.asarray(summed, dtype=float))
        rows = np.zeros((max(int(n), 1), summed.shape[1]))
        out = np.empty(summed.shape[0])
        for r, sums in enumerate(summed):
            rows[0] = sums
            out[r] = self.aggregate(rows)
        return out

    def stats_from_scores(self, scores: Sequence[float]) -> np.ndarray | None:
        """The ``sample_stats`` rows rebuilt from stored per-sample scores (``row_scores``), when they hold
        all of it; None (the default) when the scores do not determine the statistics."""
        return None

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
            if n == 1:
                low = high = value
            elif self.additive:
                low, high = bootstrap_sums(stats, self.aggregate_many, resamples=resamples, seed=seed)
            else:
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
