"""Field-level scores for structured extraction: the model must output a JSON object.

The reference is a JSON object string mapping field names to a string (or null). From the prediction the
first JSON object in the text is taken (prose around it and Markdown code fences are tolerated: each
``{`` is tried in turn with ``json.JSONDecoder().raw_decode`` until one decodes to an object).

Values are compared after normalisation (strip, casefold, collapse whitespace; non-strings are written as
JSON first, so 42 matches "42"); null, a missing key and "" all mean "absent". Field names match exactly.
Per sample: a predicted present field is a true positive if it equals the reference's value, a false
positive otherwise; a reference present field not matched is a false negative (a wrong value is therefore
one FP and one FN). An output with no parseable object makes every reference field a false negative.

Corpus precision, recall and F1 are micro-averaged: computed from TP, FP, FN summed over all samples.
``json_parse_failure_rate`` is the fraction of outputs with no parseable object (lower is better).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import numpy as np

import llmbench
from llmbench.errors import UserError
from llmbench.metrics.base import Metric, Predictions, References, check_inputs

# columns of the per-sample statistics
TP, FP, FN, FAILED = 0, 1, 2, 3

_DECODER = json.JSONDecoder()


def extract_json_object(text: str) -> dict | None:
    """The first JSON object embedded in ``text``, or None when there is none."""
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


def normalize_value(value: Any) -> str | None:
    """Comparable form of a field value; None when the field counts as absent."""
    if value is None:
        return None
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = " ".join(value.split()).casefold()
    return text or None


def present_fields(obj: dict) -> dict[str, str]:
    """Field name -> normalised value, for the fields that are present (not null / missing / empty)."""
    out = {}
    for key, value in obj.items():
        norm = normalize_value(value)
        if norm is not None:
            out[key] = norm
    return out


@lru_cache(maxsize=4096)
def _reference_fields(reference: str) -> tuple[tuple[str, str], ...]:
    try:
        obj = json.loads(reference)
    except json.JSONDecodeError as exc:
        raise UserError(f"JSON-field reference is not valid JSON ({exc.msg}): {reference[:80]!r}") from None
    if not isinstance(obj, dict):
        raise UserError(f"JSON-field reference must be a JSON object: {reference[:80]!r}")
    return tuple(present_fields(obj).items())


def field_counts(predicted: dict | None, reference: dict[str, str]) -> tuple[int, int, int]:
    """(TP, FP, FN) of one prediction (None: unparseable) against one reference's present fields."""
    if predicted is None:
        return 0, 0, len(reference)
    pred = present_fields(predicted)
    tp = sum(1 for key, value in pred.items() if reference.get(key) == value)
    return tp, len(pred) - tp, len(reference) - tp


def f1_from_counts(tp: float, fp: float, fn: float) -> float:
    """F1 = 2TP / (2TP + FP + FN); 1.0 when there was nothing to find and nothing was claimed."""
    denom = 2 * tp + fp + fn
    return 2 * tp / denom if denom else 1.0


def precision_from_counts(tp: float, fp: float, fn: float) -> float:
    """TP / (TP + FP); with no claims at all: 1.0 if nothing was missed, else 0.0."""
    if tp + fp:
        return tp / (tp + fp)
    return 1.0 if fn == 0 else 0.0


def recall_from_counts(tp: float, fp: float, fn: float) -> float:
    """TP / (TP + FN); with nothing to find: 1.0 if nothing was wrongly claimed, else 0.0."""
    if tp + fn:
        return tp / (tp + fn)
    return 1.0 if fp == 0 else 0.0


def json_field_stats(predictions: Predictions, references: References) -> np.ndarray:
    """Per-sample [TP, FP, FN, parse_failed]; with several references, the one with the best F1 counts."""
    preds, refs = check_inputs(predictions, references)
    out = np.zeros((len(preds), 4))
    for i, (p, rs) in enumerate(zip(preds, refs)):
        predicted = extract_json_object(p)
        best = None
        for r in rs:
            counts = field_counts(predicted, dict(_reference_fields(r)))
            if best is None or f1_from_counts(*counts) > f1_from_counts(*best):
                best = counts
        out[i, :3] = best
        out[i, FAILED] = float(predicted is None)
    return out


_FORMULAS = {
    "json_precision": precision_from_counts,
    "json_recall": recall_from_counts,
    "json_f1": f1_from_counts,
}


def _ratio(num: np.ndarray, denom: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """num / denom where denom is non-zero, else ``fallback``: the three formulas above on arrays."""
    safe = np.where(denom != 0, denom, 1.0)
    return np.where(denom != 0, num / safe, fallback)


def _many_precision(tp, fp, fn):
    return _ratio(tp, tp + fp, np.where(fn == 0, 1.0, 0.0))


def _many_recall(tp, fp, fn):
    return _ratio(tp, tp + fn, np.where(fp == 0, 1.0, 0.0))


def _many_f1(tp, fp, fn):
    return _ratio(2 * tp, 2 * tp + fp + fn, np.ones_like(tp))


_MANY_FORMULAS = {"json_precision": _many_precision, "json_recall": _many_recall, "json_f1": _many_f1}


class JsonFieldMetric(Metric):
    """One of json_precision / json_recall / json_f1 / json_parse_failure_rate (all share the stats)."""

    scale = "0-1"
    library = f"llmbench {llmbench.__version__} (json field matching)"

    def __init__(self, name: str):
        if name not in (*_FORMULAS, "json_parse_failure_rate"):
            raise ValueError(f"unsupported JSON metric {name!r}")
        self.name = name
        self.higher_is_better = name != "json_parse_failure_rate"

    def sample_stats(self, predictions: Predictions, references: References) -> np.ndarray:
        return json_field_stats(predictions, references)

    def aggregate(self, stats: np.ndarray) -> float:
        stats = np.asarray(stats)
        if self.name == "json_parse_failure_rate":
            return float(stats[:, FAILED].sum() / stats.shape[0])
        tp, fp, fn = stats[:, :3].sum(axis=0)
        return float(_FORMULAS[self.name](tp, fp, fn))

    def aggregate_many(self, summed: np.ndarray, n: int) -> np.ndarray:
        summed = np.atleast_2d(np.asarray(summed, dtype=float))
        if self.name == "json_parse_failure_rate":
            return summed[:, FAILED] / n
        return _MANY_FORMULAS[self.name](summed[:, TP], summed[:, FP], summed[:, FN])

    def row_scores(self, stats: np.ndarray) -> list[float]:
        scores = []
        for tp, fp, fn, failed in np.asarray(stats):
            if self.name == "json_parse_failure_rate":
                scores.append(float(failed))
            elif failed:
                scores.append(0.0)  # an unparseable output scores 0 for display, even against an empty reference
            else:
                scores.append(float(_FORMULAS[self.name](tp, fp, fn)))
        return scores
