"""Cost per correct answer: latency and energy divided by the answers that were right, where a task has a
per-sample notion of "right".

An answer is correct when (in this order of preference, the first metric the row has):

- ``exact_match``: the normalised answer equals a reference (per-sample score at the top of its scale);
- ``json_f1``: the JSON object is fully right (every field present and correct: per-sample F1 of 1);
- ``f1``: token F1 at or above ``F1_CORRECT`` (50 on SQuAD's 0-100 scale).

BLEU, chrF, TER and ROUGE have no such notion: those tasks show no per-correct cost. Latency per correct
answer is the row's generation time (``latency.generate_s``: end-to-end seconds, one per batch) over the
correct ones; for a served row (a load level) it is the level's wall time (``latency.duration_s``: first
request sent -> last closed), since its requests overlap and their end-to-end times summed would count the
same seconds several times over at concurrency > 1;
energy per correct answer is the row's joules over the correct ones. No correct answer at all leaves both
undefined (n/a), never infinite or zero.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

#: per-sample F1 (0-100) at or above which an extractive answer counts as correct
F1_CORRECT = 50.0
_RULES = (("exact_match", "exact match"), ("json_f1", "JSON object fully right"),
          ("f1", f"F1 ≥ {F1_CORRECT:g}"))


@dataclass(frozen=True)
class CorrectCost:
    """How many of a row's answers were right, and what each right one cost."""

    metric: str  # the metric that decides correctness
    rule: str  # "exact match", "JSON object fully right", "F1 ≥ 50"
    correct: int
    n: int  # samples judged
    seconds_per_sample: float | None  # mean end-to-end generation time
    seconds_per_correct: float | None
    joules_per_correct: float | None

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return asdict(self)


def correctness_metric(metrics) -> str | None:
    """The metric that decides whether an answer is right, among ``metrics``; None when none can."""
    names = set(metrics)
    return next((m for m, _ in _RULES if m in names), None)


def is_correct(metric: str, score: float, scale: str | None = None) -> bool:
    """Whether one per-sample score of ``metric`` counts as a right answer."""
    top = 100.0 if scale == "0-100" or (scale is None and metric in ("exact_match", "f1")) else 1.0
    if metric == "exact_match":
        return score >= top - 1e-9
    if metric == "json_f1":
        return score >= 1.0 - 1e-9
    if metric == "f1":
        return score * (100.0 / top) >= F1_CORRECT - 1e-9
    return False


def _score(line: dict, metric: str) -> float | None:
    v = (line.get("scores") or {}).get(metric)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _generation_seconds(row, samples: dict[int, dict]) -> float | None:
    """The row's generation time: a served level's wall time (``latency.duration_s``), else its recorded
    ``generate_s`` (one e2e per batch), else the samples' e2e times summed, a batch's shared time counted once."""
    served = (row.latency or {}).get("duration_s") if (row.model or {}).get("load") is not None else None
    if isinstance(served, (int, float)) and not isinstance(served, bool) and math.isfinite(served) and served > 0:
        return float(served)  # a served level: its wall time, requests overlapping
    recorded = (row.latency or {}).get("generate_s")
    if isinstance(recorded, (int, float)) and not isinstance(recorded, bool) and math.isfinite(recorded):
        return float(recorded)
    units: dict = {}
    for key, line in samples.items():
        v = line.get("e2e_s")
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            return None
        units[("batch", line["batch"]) if isinstance(line.get("batch"), int) else ("sample", key)] = float(v)
    return math.fsum(units.values())


def correct_cost(row, samples: dict[int, dict]) -> CorrectCost | None:
    """The cost per correct answer of one finished row from its per-sample scores (samples.jsonl), or None when
    the row has no correctness metric, no scored samples, or a metric llmbench did not score (lm-eval's)."""
    metric = correctness_metric(row.quality)
    entry = row.quality.get(metric) if metric else None
    if metric is None or not samples or (isinstance(entry, dict) and entry.get("library") == "lm-eval"):
        return None
    scale = entry.get("scale") if isinstance(entry, dict) else None
    scores = [_score(line, metric) for line in samples.values()]
    if any(s is None for s in scores):
        return None  # a sample without its score: counting it as wrong would be made up
    correct = sum(is_correct(metric, s, scale) for s in scores)
    n = len(scores)
    total_s = _generation_seconds(row, samples)
    energy = row.energy or {}
    joules = None
    if energy.get("available") and not energy.get("short_window") and energy.get("joules_per_sample") is not None:
        joules = float(energy["joules_per_sample"]) * n
    return CorrectCost(metric, dict(_RULES)[metric], correct, n,
                       None if total_s is None else total_s / n,
                       None if total_s is None or not correct else total_s / correct,
                       None if joules is None or not correct else joules / correct)
