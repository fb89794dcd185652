"""Verdicts: the smallest model within the margin of the best, its savings, and the gain per doubling."""

from __future__ import annotations

import pytest

from llmbench.report.compare import ModelResult, TaskComparison
from llmbench.report.verdict import scaling_steps, task_verdict, within_margin


def _res(model, params, quality, tpot=0.01, joules=1.0, rss=1e9, status="ok"):
    return ModelResult(model=model, parameters=params, status=status, run_id="r", quality=quality,
                       tpot_p50_s=tpot, joules_per_sample=joules, peak_memory_bytes=rss, memory_kind="rss")


def _task(results, hib=True, metric="rougeL", scale="0-1"):
    return TaskComparison("summarization", metric, hib, scale, None, results)


def test_smallest_model_within_margin():
    tc = _task([_res("gemma-2b", 2e9, 0.388, tpot=0.01, joules=0.28, rss=4e9),
                _res("phi-3b", 3.8e9, 0.392, tpot=0.02, joules=0.5, rss=8e9),
                _res("mistral-7b", 7e9, 0.40, tpot=0.032, joules=1.0, rss=16e9),
                _res("tiny", 1e8, 0.2, tpot=0.002, joules=0.05)])
    v = task_verdict(tc, 0.95)
    assert (v.best, v.chosen) == ("mistral-7b", "gemma-2b")
    assert v.quality_rel == pytest.approx(0.97)
    assert v.energy_frac == pytest.approx(0.28) and v.speed_ratio == pytest.approx(3.2)
    assert v.text == ("gemma-2b reaches 97% of mistral-7b's ROUGE-L at 28% of the energy, 3.2× the speed "
                      "and 25% of the memory")


def test_margin_changes_the_choice():
    tc = _task([_res("a", 1e8, 0.80), _res("b", 2e8, 0.90), _res("c", 4e8, 1.00)])
    assert task_verdict(tc, 0.95).chosen == "c"
    assert task_verdict(tc, 0.90).chosen == "b"
    assert task_verdict(tc, 0.80).chosen == "a"


def test_lower_is_better_margin():
    assert within_margin(52, 50, 0.95, False)  # 52 <= 50 / 0.95 = 52.6
    assert not within_margin(53, 50, 0.95, False)
    tc = _task([_res("a", 1e8, 53.0), _res("b", 2e8, 52.0), _res("c", 4e8, 50.0)], hib=False, metric="ter",
               scale="0-100")
    v = task_verdict(tc, 0.95)
    assert (v.best, v.chosen) == ("c", "b")
    assert v.quality_rel == pytest.approx(50 / 52)


def test_best_is_chosen_when_nothing_smaller_is_close():
    v = task_verdict(_task([_res("a", 1e8, 0.2), _res("b", 2e8, 0.9)]), 0.95)
    assert v.chosen == v.best == "b"
    assert "no smaller model is within 95%" in v.text


def test_energy_unavailable_in_text():
    tc = _task([_res("a", 1e8, 0.99, joules=None), _res("b", 2e8, 1.0, joules=None)])
    v = task_verdict(tc, 0.95)
    assert v.energy_frac is None and "energy not measured" in v.text and "0 J" not in v.text


def test_failed_rows_are_ignored():
    tc = _task([_res("a", 1e8, 0.5), _res("b", 9e9, None, status="failed")])
    v = task_verdict(tc, 0.95)
    assert v.best == v.chosen == "a" and "smallest model" in v.text


def test_no_quality_at_all():
    v = task_verdict(_task([_res("a", 1e8, None, status="failed")]), 0.95)
    assert v.best is None and "no finished model" in v.text


def test_gain_per_doubling_and_diminishing_returns():
    results = [_res("m1", 1e8, 0.20), _res("m2", 2e8, 0.30), _res("m4", 4e8, 0.38), _res("m16", 16e8, 0.40)]
    steps = scaling_steps(results, True)
    assert [s.gain_per_doubling for s in steps] == pytest.approx([0.10, 0.08, 0.01])
    assert [s.diminishing for s in steps] == [False, False, True]
    v = task_verdict(_task(results), 0.95)
    assert v.diminishing_after == "m4"
    assert "m4 → m16 +0.010 (diminishing)" in v.scaling_text


def test_gain_reads_direction():
    steps = scaling_steps([_res("a", 1e8, 60.0), _res("b", 4e8, 50.0)], False)  # TER falls: a gain
    assert steps[0].gain == pytest.approx(10.0) and steps[0].gain_per_doubling == pytest.approx(5.0)


def test_tie_for_best_prefers_a_model_of_known_size():
    # a model of unknown size is not "the smallest" among equals
    v = task_verdict(_task([_res("unknown", None, 0.5), _res("known", 2e8, 0.5)]), 0.95)
    assert v.best == v.chosen == "known"
