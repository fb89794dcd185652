"""Data loader and metrics of one task exported from llmbench to lm-eval (EleutherAI lm-evaluation-harness).

Written by `llmbench tasks export-lm-eval`; self-contained: it needs only what lm-eval itself installs
(datasets, sacrebleu, rouge-score), not llmbench. The numbers are llmbench's, on llmbench's scales:

- bleu / chrf / ter: lm-eval's own corpus aggregations (sacrebleu with default settings, 0-100). Each
  document passes all its references, padded with None to the same count for every document, so that
  sacrebleu sees one reference stream per position and skips the missing entries.
- rouge1 / rouge2 / rougeL: rouge-score F-measure with stemming, best reference per document, mean (0-1).
- exact_match / f1: SQuAD v2.0 evaluator rules (normalise, best reference), mean of 0/100 scores (0-100).
- json_precision / json_recall / json_f1: fields of the first JSON object in the output against the
  reference object, micro-averaged over documents (0-1); json_parse_failure_rate: share of outputs with
  no JSON object (0-1, lower is better).
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from functools import lru_cache
from pathlib import Path

# --- task settings (rewritten by the export) ---
TASK = "example"
DATA_FILE = "example.jsonl"
METRICS = ("bleu", "chrf", "ter", "rouge1", "rouge2", "rougeL", "exact_match", "f1",
           "json_precision", "json_recall", "json_f1", "json_parse_failure_rate")
REF_WIDTH = 1
# --- end of task settings ---

_SACREBLEU = ("bleu", "chrf", "ter")
_ROUGE = ("rouge1", "rouge2", "rougeL")
_JSON_COUNTS = ("json_precision", "json_recall", "json_f1")


def load_dataset(**_metadata):
    """The exported examples as a `datasets.DatasetDict` with one `test` split (read next to this file)."""
    import datasets

    path = Path(__file__).with_name(DATA_FILE)
    with open(path, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def process_results(doc, results):
    """Per-document items of every metric of the task; lm-eval aggregates them as the YAML says."""
    prediction = results[0] if results else ""
    prediction = "" if prediction is None else str(prediction)
    references = [str(r) for r in doc["references"]] or [""]
    out = {}
    for name in METRICS:
        if name in _SACREBLEU:
            out[name] = (references + [None] * (REF_WIDTH - len(references)), prediction)
    rouge = [name for name in METRICS if name in _ROUGE]
    if rouge:
        scores = _rouge_scorer(tuple(rouge)).score_multi(references, prediction)
        for name in rouge:
            out[name] = scores[name].fmeasure
    if "exact_match" in METRICS or "f1" in METRICS:
        golds = _gold_answers(references)
        if "exact_match" in METRICS:
            out["exact_match"] = 100.0 * max(float(_normalize_answer(prediction) == _normalize_answer(g))
                                             for g in golds)
        if "f1" in METRICS:
            out["f1"] = 100.0 * max(_token_f1(prediction, g) for g in golds)
    if any(name.startswith("json_") for name in METRICS):
        predicted = _extract_json_object(prediction)
        best = None
        for ref in references:
            counts = _field_counts(predicted, dict(_reference_fields(ref)))
            if best is None or _f1_from_counts(*counts) > _f1_from_counts(*best):
                best = counts
        for name in _JSON_COUNTS:
            if name in METRICS:
                out[name] = best
        if "json_parse_failure_rate" in METRICS:
            out["json_parse_failure_rate"] = float(predicted is None)
    return {name: out[name] for name in METRICS}  # the task's order: its first metric is its primary one


# --- ROUGE (rouge-score) ----------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _rouge_scorer(types):
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(types), use_stemmer=True)


# --- SQuAD exact match and token F1 (official v2.0 evaluator rules) ---------------------------------

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def _normalize_answer(text):
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _token_f1(prediction, reference):
    pred = _normalize_answer(prediction).split()
    ref = _normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    overlap = sum((Counter(pred) & Counter(ref)).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred), overlap / len(ref)
    return 2 * precision * recall / (precision + recall)


def _gold_answers(references):
    kept = [r for r in references if _normalize_answer(r)]
    return kept or [""]


# --- JSON fields ------------------------------------------------------------------------------------

_DECODER = json.JSONDecoder()


def _extract_json_object(text):
    start = text.find("{")
    while start != -1:
        try:
            obj, _ = _DECODER.raw_decode(text, start)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            return obj
        start = text.find("{", start + 1)
    return None


def _normalize_value(value):
    if value is None:
        return None
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = " ".join(value.split()).casefold()
    return text or None


def _present_fields(obj):
    out = {}
    for key, value in obj.items():
        norm = _normalize_value(value)
        if norm is not None:
            out[key] = norm
    return out


@lru_cache(maxsize=4096)
def _reference_fields(reference):
    obj = json.loads(reference)
    if not isinstance(obj, dict):
        raise ValueError(f"JSON-field reference must be a JSON object: {reference[:80]!r}")
    return tuple(_present_fields(obj).items())


def _field_counts(predicted, reference):
    if predicted is None:
        return 0, 0, len(reference)
    pred = _present_fields(predicted)
    tp = sum(1 for key, value in pred.items() if reference.get(key) == value)
    return tp, len(pred) - tp, len(reference) - tp


def _f1_from_counts(tp, fp, fn):
    denom = 2 * tp + fp + fn
    return 2 * tp / denom if denom else 1.0


def _precision_from_counts(tp, fp, fn):
    if tp + fp:
        return tp / (tp + fp)
    return 1.0 if fn == 0 else 0.0


def _recall_from_counts(tp, fp, fn):
    if tp + fn:
        return tp / (tp + fn)
    return 1.0 if fp == 0 else 0.0


def _summed(items):
    tp = fp = fn = 0
    for a, b, c in items:
        tp, fp, fn = tp + a, fp + b, fn + c
    return tp, fp, fn


def json_precision(items):
    """Aggregation: micro-averaged field precision from per-document (TP, FP, FN)."""
    return _precision_from_counts(*_summed(items))


def json_recall(items):
    """Aggregation: micro-averaged field recall from per-document (TP, FP, FN)."""
    return _recall_from_counts(*_summed(items))


def json_f1(items):
    """Aggregation: micro-averaged field F1 from per-document (TP, FP, FN)."""
    return _f1_from_counts(*_summed(items))
