"""The metric names: the one list that task files, the metric registry and the comparisons read."""

from __future__ import annotations

from collections.abc import Iterable

from llmbench.registry import did_you_mean

SACREBLEU_METRICS = ("bleu", "chrf", "ter")
ROUGE_METRICS = ("rouge1", "rouge2", "rougeL")
SQUAD_METRICS = ("exact_match", "f1")
JSON_METRICS = ("json_precision", "json_recall", "json_f1", "json_parse_failure_rate")
METRIC_NAMES: tuple[str, ...] = SACREBLEU_METRICS + ROUGE_METRICS + SQUAD_METRICS + JSON_METRICS

# Metrics that read every reference as a JSON object (llmbench.metrics.jsonfields): a task checks its
# references for them when it builds its examples, before a model is loaded.
JSON_OBJECT_METRICS = JSON_METRICS

_PREFIX, _SUFFIX, _OR = "; did you mean ", "?", " or "


def close_names(word: str, choices: Iterable[str], n: int = 1) -> list[str]:
    """The names ``llmbench.registry.did_you_mean`` suggests for ``word``, closest first (``[]``: none),
    for messages that quote or list them in their own style. Names never contain spaces."""
    hint = did_you_mean(word, choices, n=n)
    return hint[len(_PREFIX):-len(_SUFFIX)].split(_OR) if hint else []
