"""BLEU, chrF and TER: thin wrappers over sacrebleu's corpus-level metrics with default settings.

The per-sample sufficient statistics are the ones sacrebleu itself extracts
(``Metric._extract_corpus_statistics``) and the corpus value is sacrebleu's
``Metric._compute_score_from_stats`` on their column sums: the very path sacrebleu's own
``corpus_score`` and bootstrap resampling take, so the values are sacrebleu's, on its 0-100 scale.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from llmbench.metrics.base import Metric, Predictions, References, check_inputs


def reference_streams(references: list[list[str]]) -> list[list[str | None]]:
    """Transpose per-sample reference lists into sacrebleu's reference streams.

    sacrebleu wants ``streams[j][i]`` = j-th reference of sample i. With a variable number of references,
    missing entries are ``None``, which sacrebleu drops when it caches references (an empty string would
    instead count as a real, empty reference).
    """
    width = max((len(r) for r in references), default=0)
    return [[r[j] if j < len(r) else None for r in references] for j in range(width)]


class SacreBleuMetric(Metric):
    """Common code for the three sacrebleu metrics."""

    scale = "0-100"

    @property
    def library(self) -> str:  # type: ignore[override]
        import sacrebleu

        return f"sacrebleu {sacrebleu.__version__}"

    def _new_corpus_metric(self):
        raise NotImplementedError

    @cached_property
    def corpus_metric(self):
        """The sacrebleu metric object with default settings, as ``sacrebleu.metrics.X()`` builds it."""
        return self._new_corpus_metric()

    @cached_property
    def sentence_metric(self):
        """The sacrebleu object whose ``sentence_score`` gives the per-sample display score."""
        return self.corpus_metric

    def sample_stats(self, predictions: Predictions, references: References) -> np.ndarray:
        preds, refs = check_inputs(predictions, references)
        if not preds:
            return np.zeros((0, 0))
        rows = self.corpus_metric._extract_corpus_statistics(preds, reference_streams(refs))
        return np.asarray(rows, dtype=float)

    def aggregate(self, stats: np.ndarray) -> float:
        return float(self.corpus_metric._compute_score_from_stats(np.asarray(stats).sum(axis=0)).score)

    def row_scores(self, stats: np.ndarray) -> list[float]:
        # sentence_score(hyp, refs) == _compute_score_from_stats(that sentence's row): same code path.
        return [float(self.sentence_metric._compute_score_from_stats(row.copy()).score) for row in stats]


class Bleu(SacreBleuMetric):
    """Corpus BLEU (``sacrebleu.metrics.BLEU()``: 13a tokenizer, exp smoothing, 4-grams, case-sensitive)."""

    name = "bleu"
    higher_is_better = True

    def _new_corpus_metric(self):
        from sacrebleu.metrics import BLEU

        return BLEU()

    @cached_property
    def sentence_metric(self):
        # sacrebleu recommends effective_order for sentence-level BLEU (and warns without it); it changes
        # only the score formula, not the statistics, so the same rows serve both.
        from sacrebleu.metrics import BLEU

        return BLEU(effective_order=True)


class Chrf(SacreBleuMetric):
    """Corpus chrF (``sacrebleu.metrics.CHRF()``: character 6-grams, no word n-grams, beta=2)."""

    name = "chrf"
    higher_is_better = True

    def _new_corpus_metric(self):
        from sacrebleu.metrics import CHRF

        return CHRF()


class Ter(SacreBleuMetric):
    """Corpus TER (``sacrebleu.metrics.TER()``: TERCOM tokenisation, case-insensitive, punctuation kept)."""

    name = "ter"
    higher_is_better = False

    def _new_corpus_metric(self):
        from sacrebleu.metrics import TER

        return TER()
