"""Metrics by name (``get_metric``) and the helpers that score several metrics on the same outputs,
sharing work between related metrics."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache

import numpy as np

from llmbench.errors import UserError
from llmbench.metrics.base import Metric, Predictions, References, check_inputs
from llmbench.metrics.names import (
    JSON_METRICS,
    METRIC_NAMES,
    ROUGE_METRICS,
    SACREBLEU_METRICS,
    SQUAD_METRICS,
)
from llmbench.registry import close_matches
from llmbench.stats import DEFAULT_RESAMPLES, DEFAULT_SEED


@cache
def _build(name: str) -> Metric:
    if name in SACREBLEU_METRICS:
        from llmbench.metrics import text

        return {"bleu": text.Bleu, "chrf": text.Chrf, "ter": text.Ter}[name]()
    if name in ROUGE_METRICS:
        from llmbench.metrics.rouge import Rouge

        return Rouge(name)
    if name in SQUAD_METRICS:
        from llmbench.metrics.squad import F1, ExactMatch

        return {"exact_match": ExactMatch, "f1": F1}[name]()
    from llmbench.metrics.jsonfields import JsonFieldMetric

    return JsonFieldMetric(name)


def get_metric(name: str) -> Metric:
    """The metric called ``name``; an unknown name is a UserError that suggests the closest known one."""
    if name not in METRIC_NAMES:
        msg = f"unknown metric {name!r} (known: {', '.join(METRIC_NAMES)})"
        close = close_matches(str(name), METRIC_NAMES)
        if close:
            msg += f"; did you mean {close[0]!r}?"
        raise UserError(msg)
    return _build(name)


def _unique(names: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for n in names:
        get_metric(n)  # fail early, before any scoring work
        if n not in seen:
            seen.append(n)
    return seen


def sample_stats_all(names: Sequence[str], predictions: Predictions,
                     references: References) -> dict[str, np.ndarray]:
    """Per-sample sufficient statistics of every named metric, sharing work between related metrics.

    The ROUGE variants come from one scorer pass, EM and F1 from one normalisation pass, and the four
    json_* metrics share one parse of every output.
    """
    names = _unique(names)
    preds, refs = check_inputs(predictions, references)
    out: dict[str, np.ndarray] = {}
    rouge = [n for n in names if n in ROUGE_METRICS]
    if rouge:
        from llmbench.metrics.rouge import rouge_f_scores

        table = rouge_f_scores(rouge, preds, refs)
        for j, n in enumerate(rouge):
            out[n] = table[:, [j]]
    squad = [n for n in names if n in SQUAD_METRICS]
    if squad:
        from llmbench.metrics.squad import squad_scores

        table = squad_scores(preds, refs)
        for n in squad:
            out[n] = table[:, [SQUAD_METRICS.index(n)]]
    if any(n in JSON_METRICS for n in names):
        from llmbench.metrics.jsonfields import json_field_stats

        table = json_field_stats(preds, refs)
        for n in names:
            if n in JSON_METRICS:
                out[n] = table
    for n in names:
        if n not in out:
            out[n] = get_metric(n).sample_stats(preds, refs)
    return {n: out[n] for n in names}


def evaluate(names: Sequence[str], predictions: Predictions, references: References,
             seed: int = DEFAULT_SEED, resamples: int = DEFAULT_RESAMPLES) -> tuple[dict, list[dict]]:
    """Corpus results and per-sample scores of every named metric, from one statistics pass.

    Returns ``(compute_all(...), sample_scores_all(...))`` without scoring the outputs twice.
    """
    stats = sample_stats_all(names, predictions, references)
    results = {n: get_metric(n).summarize(s, seed=seed, resamples=resamples) for n, s in stats.items()}
    per_metric = {n: get_metric(n).row_scores(s) for n, s in stats.items()}
    per_sample = [{n: per_metric[n][i] for n in per_metric} for i in range(len(predictions))]
    return results, per_sample


def compute_all(names: Sequence[str], predictions: Predictions, references: References,
                seed: int = DEFAULT_SEED, resamples: int = DEFAULT_RESAMPLES) -> dict[str, dict]:
    """``{name: metric.compute(...)}`` for every named metric."""
    stats = sample_stats_all(names, predictions, references)
    return {n: get_metric(n).summarize(s, seed=seed, resamples=resamples) for n, s in stats.items()}


def sample_scores_all(names: Sequence[str], predictions: Predictions,
                      references: References) -> list[dict[str, float]]:
    """One ``{name: score}`` dict per sample, for samples.jsonl."""
    stats = sample_stats_all(names, predictions, references)
    per_metric = {n: get_metric(n).row_scores(s) for n, s in stats.items()}
    return [{n: per_metric[n][i] for n in per_metric} for i in range(len(predictions))]
