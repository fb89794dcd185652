"""Quality metrics: name -> Metric, plus helpers that score several metrics on the same outputs.

Each metric reproduces its reference library's number on that library's scale (see docs/metrics.md):
sacrebleu for bleu/chrf/ter (0-100), rouge-score for rouge1/rouge2/rougeL (0-1), the SQuAD evaluator's
rules for exact_match/f1 (0-100), and llmbench's own field matching for the json_* metrics (0-1).

The names (``llmbench.metrics.names``) import nothing heavy, so reading task files needs no numpy; the
scoring helpers (``llmbench.metrics.scoring``) are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from llmbench.metrics.names import METRIC_NAMES

if TYPE_CHECKING:
    from llmbench.metrics.base import Metric
    from llmbench.metrics.scoring import compute_all, evaluate, get_metric, sample_scores_all, sample_stats_all

__all__ = [
    "METRIC_NAMES",
    "Metric",
    "compute_all",
    "evaluate",
    "get_metric",
    "sample_scores_all",
    "sample_stats_all",
]

_LAZY = {
    "Metric": "llmbench.metrics.base",
    "compute_all": "llmbench.metrics.scoring",
    "evaluate": "llmbench.metrics.scoring",
    "get_metric": "llmbench.metrics.scoring",
    "sample_scores_all": "llmbench.metrics.scoring",
    "sample_stats_all": "llmbench.metrics.scoring",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
