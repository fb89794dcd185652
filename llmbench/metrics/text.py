"""BLEU, chrF and TER: thin wrappers over sacrebleu's corpus-level metrics with default settings.

The per-sample sufficient statistics are the ones sacrebleu itself extracts
(``Metric._extract_corpus_statistics``) and the corpus value is sacrebleu's
``Metric._compute_score_from_stats`` on their column sums: the very path sacrebleu's own
``corpus_score`` and bootstrap resampling take, so the values are sacrebleu's, on its 0-100 scale.

For the bootstrap, ``aggregate_many`` evaluates the same corpus formulas on many column sums at once:
numpy transcriptions of sacrebleu's ``BLEU.compute_bleu`` (exp smoothing, no effective order),
``CHRF._compute_f_score`` (effective-order averaging, no eps smoothing) and ``TER._compute_score_from_stats``,
operation for operation, so they agree with ``aggregate`` to rounding. With other settings than these
defaults they fall back to calling sacrebleu once per resample.
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

    def _aggregate_sums(self, summed: np.ndarray) -> np.ndarray | None:
        """Vectorised corpus formula on column sums (R, k); None when only sacrebleu's own code applies."""
        return None

    def aggregate_many(self, summed: np.ndarray, n: int) -> np.ndarray:
        summed = np.atleast_2d(np.asarray(summed, dtype=float))
        out = self._aggregate_sums(summed) if summed.size else None
        if out is None:
            return np.array([self.corpus_metric._compute_score_from_stats(row.copy()).score for row in summed],
                            dtype=float)
        return out

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

    def _aggregate_sums(self, summed: np.ndarray) -> np.ndarray | None:
        cm = self.corpus_metric
        order = cm.max_ngram_order
        if cm.smooth_method != "exp" or cm.effective_order or summed.shape[1] != 2 + 2 * order:
            return None
        # BLEU.compute_bleu on every row of summed = [sys_len, ref_len, correct_1..N, total_1..N], with the
        # resamples along the second axis (numpy is slow along short rows)
        cols = np.ascontiguousarray(summed.T)
        sys_len, ref_len = np.trunc(cols[0]), np.trunc(cols[1])
        correct, total = cols[2:2 + order], cols[2 + order:]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            short = sys_len < ref_len
            bp = 1.0
            if short.any():  # brevity penalty exp(1 - r/c); 0 without hypothesis words
                positive = sys_len > 0
                penalty = np.exp(1 - ref_len / np.where(positive, sys_len, 1.0))
                bp = np.where(short, np.where(positive, penalty, 0.0), 1.0)
            if (total != 0).all() and (correct != 0).all():
                # every order has hypothesis n-grams and matches: precision = 100 * correct / total
                logs = np.log(100. * correct / total)
            else:
                logs = _smoothed_log_precisions(correct, total)
            log_sum = logs[0]
            for j in range(1, order):  # sum() of the list, left to right
                log_sum = log_sum + logs[j]
            score = bp * np.exp(log_sum / order)
        # early stop when no n-gram of any order matched (sacrebleu #141)
        return np.where((correct != 0).any(axis=0), score, 0.0)


def _smoothed_log_precisions(correct: np.ndarray, total: np.ndarray) -> np.ndarray:
    """my_log of BLEU's n-gram precisions with 'exp' smoothing; (order, R) arrays, one resample a column.

    sacrebleu's loop over the orders stops at the first one with no hypothesis n-grams (that precision
    and every later one stays 0, which my_log floors to -9999999999); an order with no match has
    precision 100 / (smooth * total), smooth doubling at every such order.
    """
    alive = total != 0
    zero = correct == 0
    smooth = np.ones_like(total)
    for j in range(total.shape[0]):  # running products, order by order (numpy's accumulate is slow here)
        if j:
            alive[j] &= alive[j - 1]
        zero[j] &= alive[j]
        smooth[j] = np.where(zero[j], 2.0, 1.0) * (smooth[j - 1] if j else 1.0)
    safe_total = np.where(alive, total, 1.0)
    precision = np.where(zero, 100. / (smooth * safe_total), 100. * correct / safe_total)
    return np.where(alive, np.log(np.where(alive, precision, 1.0)), -9999999999.0)


class Chrf(SacreBleuMetric):
    """Corpus chrF (``sacrebleu.metrics.CHRF()``: character 6-grams, no word n-grams, beta=2)."""

    name = "chrf"
    higher_is_better = True

    def _new_corpus_metric(self):
        from sacrebleu.metrics import CHRF

        return CHRF()

    def _aggregate_sums(self, summed: np.ndarray) -> np.ndarray | None:
        cm = self.corpus_metric
        if cm.eps_smoothing or summed.shape[1] != 3 * cm.order:
            return None
        # CHRF._compute_f_score on every row of summed = [hyp, ref, match] per order, with the resamples
        # along the second axis
        cols = np.ascontiguousarray(summed.T)
        factor = cm.beta ** 2
        n_hyp, n_ref, n_match = cols[0::3], cols[1::3], cols[2::3]
        with np.errstate(divide="ignore", invalid="ignore"):
            both = (n_hyp > 0) & (n_ref > 0)  # only orders with both sides present enter the averages
            if both.all():
                prec, rec = n_match / n_hyp, n_match / n_ref
            else:
                prec = np.where(both, n_match / np.where(both, n_hyp, 1.0), 0.0)
                rec = np.where(both, n_match / np.where(both, n_ref, 1.0), 0.0)
            avg_prec, avg_rec = prec[0], rec[0]
            for i in range(1, cm.order):  # accumulated order by order, as sacrebleu does
                avg_prec = avg_prec + prec[i]
                avg_rec = avg_rec + rec[i]
            effective = both.sum(axis=0)
            has = effective > 0
            avg_prec = np.where(has, avg_prec / np.where(has, effective, 1), 0.0)
            avg_rec = np.where(has, avg_rec / np.where(has, effective, 1), 0.0)
            score = (1 + factor) * avg_prec * avg_rec
            score = score / ((factor * avg_prec) + avg_rec)
        return np.where((avg_prec + avg_rec) != 0, 100 * score, 0.0)


class Ter(SacreBleuMetric):
    """Corpus TER (``sacrebleu.metrics.TER()``: TERCOM tokenisation, case-insensitive, punctuation kept)."""

    name = "ter"
    higher_is_better = False

    def _new_corpus_metric(self):
        from sacrebleu.metrics import TER

        return TER()

    def _aggregate_sums(self, summed: np.ndarray) -> np.ndarray | None:
        if summed.shape[1] != 2:
            return None
        # TER._compute_score_from_stats: total edits / total (average) reference length
        edits, ref_len = summed[:, 0], summed[:, 1]
        ratio = edits / np.where(ref_len > 0, ref_len, 1.0)
        return 100 * np.where(ref_len > 0, ratio, np.where(edits > 0, 1.0, 0.0))
