"""lm-eval's results as llmbench quality entries: only numbers a record can hold."""

from __future__ import annotations

import json

from llmbench.lmeval.results import _quality


def test_non_finite_metric_is_kept_as_null_with_a_note_and_nan_is_dropped():
    results = {"results": {"t": {"word_perplexity,none": float("inf"), "acc,none": 0.5,
                                 "acc_stderr,none": float("nan"), "bits,none": float("nan"),
                                 "alias": "t"}},
               "higher_is_better": {"t": {"acc": True, "word_perplexity": False}}}
    q = _quality(results, "t", {})
    assert q["acc"]["value"] == 0.5 and q["acc"]["stderr"] is None and q["acc"]["library"] == "lm-eval"
    assert q["word_perplexity"]["value"] is None and q["word_perplexity"]["note"] == "lm-eval reported inf"
    assert "bits" not in q
    json.dumps(q, allow_nan=False)  # writable as strict JSON
