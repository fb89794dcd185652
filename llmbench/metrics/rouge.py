"""ROUGE-1, ROUGE-2 and ROUGE-L F-measure from Google's ``rouge-score`` package (stemming on).

Per sample: ``RougeScorer([type], use_stemmer=True).score_multi(references, prediction)[type].fmeasure``,
i.e. with several references the one with the highest F-measure counts (rouge-score's own multi-reference
rule). Corpus value: the mean of the per-sample F-measures, on rouge-score's 0-1 scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np

from llmbench.metrics.base import Metric, Predictions, References, check_inputs

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def rouge_library() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"rouge-score {version('rouge-score')}"
    except PackageNotFoundError:  # pragma: no cover - installed as a dependency
        return "rouge-score"


@cache
def _scorer(types: tuple[str, ...]):
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(types), use_stemmer=True)


def rouge_f_scores(types: Sequence[str], predictions: Predictions, references: References) -> np.ndarray:
    """F-measure per sample and type in one scorer pass: shape (n, len(types)), columns in ``types`` order."""
    preds, refs = check_inputs(predictions, references)
    types = tuple(types)
    scorer = _scorer(types)
    out = np.zeros((len(preds), len(types)))
    for i, (p, rs) in enumerate(zip(preds, refs)):
        scores = scorer.score_multi(rs, p)
        out[i] = [scores[t].fmeasure for t in types]
    return out


class Rouge(Metric):
    """One ROUGE variant; ``sample_stats`` is the (n, 1) column of per-sample F-measures."""

    higher_is_better = True
    scale = "0-1"

    def __init__(self, rouge_type: str):
        if rouge_type not in ROUGE_TYPES:
            raise ValueError(f"unsupported rouge type {rouge_type!r}")
        self.name = rouge_type

    @property
    def library(self) -> str:  # type: ignore[override]
        return rouge_library()

    def sample_stats(self, predictions: Predictions, references: References) -> np.ndarray:
        return rouge_f_scores([self.name], predictions, references)

    def aggregate(self, stats: np.ndarray) -> float:
        return float(np.mean(np.asarray(stats)[:, 0]))

    def aggregate_many(self, summed: np.ndarray, n: int) -> np.ndarray:
        return np.atleast_2d(np.asarray(summed, dtype=float))[:, 0] / n

    def stats_from_scores(self, scores) -> np.ndarray | None:
        # row_scores are the F-measures themselves (0-1), written to samples.jsonl exactly
        values = np.asarray(scores, dtype=float)
        if values.size and (values.min() < 0 or values.max() > 1):
            return None
        return values.reshape(-1, 1)

    def row_scores(self, stats: np.ndarray) -> list[float]:
        return [float(v) for v in np.asarray(stats)[:, 0]]
