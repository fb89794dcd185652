"""Verdicts: the smallest model proven enough (non-inferiority), its savings, and the size curve's knee.

These build ``TaskComparison`` objects by hand with stub tests; test_noninferiority.py runs the same logic
on constructed records through ``build_comparison``."""

from __future__ import annotations

import pytest

from llmbench.report.compare import ModelResult, TaskComparison
from llmbench.report.sizecurve import KNEE, NO_KNEE, TOO_FEW, UNDETERMINED, size_curve
from llmbench.report.verdict import task_verdict, within_margin
from llmbench.stats.noninferiority import ENOUGH, NOT_ENOUGH, UNDECIDED, Decision, Gain


def _res(model, params, quality, tpot=0.01, joules=1.0, rss=1e9, status="ok"):
    return ModelResult(model=model, parameters=params, status=status, run_id="r", quality=quality,
                       tpot_p50_s=tpot, joules_per_sample=joules, peak_memory_bytes=rss, memory_kind="rss")


def _task(results, hib=True, metric="rougeL", scale="0-1"):
    return TaskComparison("summarization", metric, hib, scale, None, results)


def _decider(outcomes: dict):
    """decide(best, model) from {model: (outcome, estimate, low, high)}."""
    def decide(best, model):
        outcome, est, lo, hi = outcomes[model]
        needed = 400 if outcome == UNDECIDED else None
        return Decision(outcome, "ratio", est, lo, hi, 0.95, 10, 0.1, needed, "stub")
    return decide


def test_the_smallest_model_proven_enough_is_chosen_with_its_savings():
    tc = _task([_res("tiny", 1e8, 0.2, tpot=0.002, joules=0.05),
                _res("gemma-2b", 2e9, 0.388, tpot=0.01, joules=0.28, rss=4e9),
                _res("phi-3b", 3.8e9, 0.392, tpot=0.02, joules=0.5, rss=8e9),
                _res("mistral-7b", 7e9, 0.40, tpot=0.032, joules=1.0, rss=16e9)])
    decide = _decider({"tiny": (NOT_ENOUGH, 0.5, 0.4, 0.6), "gemma-2b": (ENOUGH, 0.97, 0.96, 0.99),
                       "phi-3b": (ENOUGH, 0.98, 0.96, 1.0)})
    v = task_verdict(tc, 0.95, decide=decide, speed=lambda b, c: (3.2, 3.0, 3.4))
    assert (v.best, v.chosen) == ("mistral-7b", "gemma-2b")
    assert v.energy_frac == pytest.approx(0.28) and v.memory_frac == pytest.approx(0.25)
    assert v.text == ("gemma-2b is enough: 97% of mistral-7b's ROUGE-L [96%, 99%], above a 95% margin; at 3.2× "
                      "the speed [3.0×, 3.4×], 25% of the memory and 28% of the energy (memory and energy: one "
                      "measurement per row, no CI)")
    assert [r.decision.outcome for r in tc.results if r.decision] == [NOT_ENOUGH, ENOUGH, ENOUGH]


def test_a_point_value_within_the_margin_is_not_enough_without_proof():
    # 98% of the best by point value, as in the README's old verdict, but the CI spans the margin
    tc = _task([_res("small", 1e8, 0.337), _res("large", 2e8, 0.344)])
    v = task_verdict(tc, 0.95, decide=_decider({"small": (UNDECIDED, 0.98, 0.71, 1.31)}))
    assert v.chosen == "large"
    assert v.text.startswith("no smaller model is proven enough: large has the best ROUGE-L (0.344); small is "
                             "undecided (98% of large's ROUGE-L [71%, 131%], against a 95% margin; about 400 "
                             "examples would decide (the rows share 10))")


def test_without_tests_nothing_is_proven():
    tc = _task([_res("a", 1e8, 0.99), _res("b", 2e8, 1.0)])
    v = task_verdict(tc, 0.95)
    assert v.chosen == "b" and "no smaller model is proven enough" in v.text and "untested" in v.text


def test_lower_is_better_margin():
    assert within_margin(52, 50, 0.95, False)  # 52 <= 50 / 0.95 = 52.6
    assert not within_margin(53, 50, 0.95, False)
    tc = _task([_res("a", 1e8, 53.0), _res("b", 2e8, 52.0), _res("c", 4e8, 50.0)], hib=False, metric="ter",
               scale="0-100")
    v = task_verdict(tc, 0.95, decide=_decider({"a": (NOT_ENOUGH, 0.94, 0.9, 0.94), "b": (ENOUGH, 0.96, 0.95, 0.97)}))
    assert (v.best, v.chosen) == ("c", "b")
    assert v.quality_rel == pytest.approx(50 / 52)


def test_energy_unavailable_in_text():
    tc = _task([_res("a", 1e8, 0.99, joules=None), _res("b", 2e8, 1.0, joules=None)])
    v = task_verdict(tc, 0.95, decide=_decider({"a": (ENOUGH, 0.99, 0.97, 1.01)}))
    assert v.energy_frac is None and "energy not measured" in v.text and "0 J" not in v.text


def test_failed_rows_are_ignored():
    tc = _task([_res("a", 1e8, 0.5), _res("b", 9e9, None, status="failed")])
    v = task_verdict(tc, 0.95)
    assert v.best == v.chosen == "a" and "smallest model" in v.text


def test_no_quality_at_all():
    v = task_verdict(_task([_res("a", 1e8, None, status="failed")]), 0.95)
    assert v.best is None and "no finished model" in v.text


def test_tie_for_best_prefers_a_model_of_known_size():
    # a model of unknown size is not "the smallest" among equals
    v = task_verdict(_task([_res("unknown", None, 0.5), _res("known", 2e8, 0.5)]), 0.95)
    assert v.best == v.chosen == "known"


def _gains(per_doubling: dict):
    """gain(small, large) with a tight CI around the given per-doubling gain (sizes double each step)."""
    def gain(a, b):
        g = per_doubling[(a, b)] if (a, b) in per_doubling else sum(per_doubling.values()) / len(per_doubling)
        return Gain(g, g - 0.1, g + 0.1, 0.05, 1000)
    return gain


def test_knee_after_the_last_step_that_pays():
    results = [_res(f"m{i}", 1e8 * 2 ** i, 40 + q, joules=None) for i, q in enumerate([0, 8, 12, 12.2, 12.3])]
    steps = {("m0", "m1"): 8.0, ("m1", "m2"): 4.0, ("m2", "m3"): 0.2, ("m3", "m4"): 0.1}
    curve = size_curve(results, "parameters", True, "EM", "0-100", 1.0, _gains(steps))
    assert curve.status == KNEE and curve.knee == "m2"  # after the second step
    assert [s.pays for s in curve.steps] == [True, True, False, False]
    assert curve.knee_text.startswith("past m2 (400M), each doubling gains")
    assert "more parameters stop paying here" in curve.knee_text


def test_a_curve_that_keeps_paying_has_no_knee():
    results = [_res(f"m{i}", 1e8 * 2 ** i, q) for i, q in enumerate([40.0, 48.0, 54.0, 59.0])]
    steps = {("m0", "m1"): 8.0, ("m1", "m2"): 6.0, ("m2", "m3"): 5.0}
    curve = size_curve(results, "parameters", True, "EM", "0-100", 1.0, _gains(steps))
    assert curve.status == NO_KNEE and curve.knee is None and "no knee" in curve.knee_text


def test_two_sizes_or_untested_steps_make_no_knee_claim():
    two = size_curve([_res("a", 1e8, 0.2), _res("b", 2e8, 0.3)], "parameters", True, "ROUGE-L", "0-1", 0.01,
                     lambda a, b: None)
    assert two.status == TOO_FEW and "three or more sizes" in two.knee_text
    assert two.steps[0].gain_per_doubling == pytest.approx(0.1) and two.steps[0].pays is None
    three = size_curve([_res("a", 1e8, 0.2), _res("b", 2e8, 0.3), _res("c", 4e8, 0.31)], "parameters", True,
                       "ROUGE-L", "0-1", 0.01, lambda a, b: None)
    assert three.status == UNDETERMINED and "not determined" in three.knee_text


def test_gain_reads_direction():
    curve = size_curve([_res("a", 1e8, 60.0), _res("b", 4e8, 50.0)], "parameters", False, "TER", "0-100", 1.0,
                       lambda a, b: None)  # TER falls: a gain
    assert curve.steps[0].gain_per_doubling == pytest.approx(5.0)


def test_quantized_variants_are_points_on_the_bytes_axis():
    # two sizes by parameters, four by weight bytes: a 4-bit and an 8-bit copy of each model
    results = []
    for name, params, wbytes, q in (("s-q4", 1e8, 5e7, 30.0), ("s", 1e8, 4e8, 38.0), ("l-q4", 4e8, 2e8, 36.0),
                                    ("l", 4e8, 1.6e9, 46.0)):
        r = _res(name, params, q)
        r.weights_bytes = wbytes
        results.append(r)
    tc = _task(results, metric="exact_match", scale="0-100")
    v = task_verdict(tc, 0.95)
    assert [p.model for p in v.curve.points] == ["s", "l"]  # the better variant per parameter count
    assert v.bytes_curve is not None and [p.model for p in v.bytes_curve.points] == ["s-q4", "l-q4", "s", "l"]
    assert "per doubling of weight bytes" in v.scaling_text
