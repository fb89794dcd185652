"""The metric names: the one list that task files, the metric registry and the comparisons read."""

from __future__ import annotations

SACREBLEU_METRICS = ("bleu", "chrf", "ter")
ROUGE_METRICS = ("rouge1", "rouge2", "rougeL")
SQUAD_METRICS = ("exact_match", "f1")
JSON_METRICS = ("json_precision", "json_recall", "json_f1", "json_parse_failure_rate")
METRIC_NAMES: tuple[str, ...] = SACREBLEU_METRICS + ROUGE_METRICS + SQUAD_METRICS + JSON_METRICS

# Metrics that read every reference as a JSON object (llmbench.metrics.jsonfields): a task checks its
# references for them when it builds its examples, before a model is loaded.
JSON_OBJECT_METRICS = JSON_METRICS
