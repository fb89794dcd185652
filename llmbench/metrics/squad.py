"""SQuAD exact match and token F1, following the official SQuAD v2.0 evaluation rules.

Normalisation (the same four steps in v1.1 and v2.0): lowercase; delete every character of
``string.punctuation``; replace the whole words a/an/the by a space; collapse whitespace.
Scoring (v2.0): EM = normalised strings equal; F1 = harmonic mean of token precision and recall with
multiset (Counter) overlap; if either side normalises to no tokens, F1 = EM (so a no-answer reference ""
scores 1 only for an empty prediction). References that normalise to nothing are ignored when another
reference has content; the sample takes its best reference. Corpus value: 100 x mean (the evaluator's scale).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from functools import lru_cache

import numpy as np

import llmbench
from llmbench.metrics.base import Metric, Predictions, References, check_inputs

_DELETE_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


@lru_cache(maxsize=1 << 16)
def normalize_answer(text: str) -> str:
    """SQuAD answer normalisation: lowercase, drop punctuation, drop articles, collapse whitespace."""
    text = text.lower()
    text = text.translate(_DELETE_PUNCTUATION)  # every character of string.punctuation deleted
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match_score(prediction: str, reference: str) -> float:
    """1.0 when both normalise to the same string, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def f1_score(prediction: str, reference: str) -> float:
    """Token-level F1 between the normalised strings (SQuAD v2.0 rule for empty sides)."""
    pred_tokens = normalize_answer(prediction).split()
    ref_tokens = normalize_answer(reference).split()
    if not pred_tokens or not ref_tokens:
        return float(pred_tokens == ref_tokens)
    overlap = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


def gold_answers(references: list[str]) -> list[str]:
    """References that normalise to something; [""] (no answer) when none does, as the v2.0 evaluator."""
    kept = [r for r in references if normalize_answer(r)]
    return kept or [""]


def squad_scores(predictions: Predictions, references: References) -> np.ndarray:
    """Per-sample (EM, F1) in 0-1, each the max over the sample's references: shape (n, 2)."""
    preds, refs = check_inputs(predictions, references)
    out = np.zeros((len(preds), 2))
    for i, (p, rs) in enumerate(zip(preds, refs)):
        golds = gold_answers(rs)
        out[i, 0] = max(exact_match_score(p, g) for g in golds)
        out[i, 1] = max(f1_score(p, g) for g in golds)
    return out


class _SquadMetric(Metric):
    higher_is_better = True
    scale = "0-100"
    library = f"llmbench {llmbench.__version__} (SQuAD v2.0 official evaluator rules)"
    _column = 0

    def sample_stats(self, predictions: Predictions, references: References) -> np.ndarray:
        return squad_scores(predictions, references)[:, [self._column]]

    def aggregate(self, stats: np.ndarray) -> float:
        column = np.asarray(stats)[:, 0]
        return float(100.0 * column.sum() / column.size)

    def aggregate_many(self, summed: np.ndarray, n: int) -> np.ndarray:
        return 100.0 * np.atleast_2d(np.asarray(summed, dtype=float))[:, 0] / n

    def stats_from_scores(self, scores) -> np.ndarray | None:
        # row_scores are 100 x the 0-1 statistic; EM scores must be exactly 0 or 100
        values = np.asarray(scores, dtype=float)
        if values.size and (values.min() < 0 or values.max() > 100):
            return None
        if self._column == 0 and not np.isin(values, (0.0, 100.0)).all():
            return None
        return (values / 100.0).reshape(-1, 1)

    def row_scores(self, stats: np.ndarray) -> list[float]:
        # per-sample on the same 0-100 scale as the corpus value
        return [float(100.0 * v) for v in np.asarray(stats)[:, 0]]


class ExactMatch(_SquadMetric):
    """SQuAD exact match, 0-100."""

    name = "exact_match"
    _column = 0


class F1(_SquadMetric):
    """SQuAD token F1, 0-100."""

    name = "f1"
    _column = 1
