"""Decisions that hold, on constructed records with known answers: non-inferiority (enough / not enough /
undecided), the examples that would decide (checked by simulation), the size curve's knee and the cost per
correct answer, through ``build_comparison`` as `llmbench compare` runs them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gate_fixtures import latencies, make_row, sample_lines

from llmbench.metrics import get_metric
from llmbench.records import RunRecord
from llmbench.records.store import write_run, write_samples
from llmbench.report import build_comparison, load_runs
from llmbench.report.sizecurve import KNEE, NO_KNEE
from llmbench.stats.noninferiority import (
    ENOUGH,
    NOT_ENOUGH,
    UNDECIDED,
    examples_to_decide,
    min_paired_samples,
    paired_noninferiority,
)

EM = get_metric("exact_match")


def write_models(root: Path, models: dict[str, tuple[int, set[int]]], n: int, task: str = "qa",
                 energy_joules: float | None = None) -> Path:
    """One run: per model (parameters, indices answered right) an exact-match row over ``n`` questions."""
    rows, lines = [], []
    for model, (params, correct) in models.items():
        preds = [f"answer {i}" if i in correct else f"wrong {i}" for i in range(n)]
        refs = [[f"answer {i}"] for i in range(n)]
        lat = latencies(n, seed=len(model))
        row = make_row(model, task, preds, refs, lat, energy_joules=energy_joules)
        row.model["parameters"] = params
        rows.append(row)
        lines += sample_lines(model, task, preds, refs, lat)
    record = RunRecord(run_id=f"run-{len(models)}-{n}", created_at="2026-12-01T00:00:00+00:00", command="test",
                       environment={"hostname": "h"}, settings={"batch_size": 1, "setting": "latency"}, rows=rows)
    path = write_run(record, root)
    write_samples(path.parent, lines)
    return path.parent


def compare(run: Path, **kw):
    [task] = build_comparison(load_runs([str(run)]), **kw).tasks
    return task


def decision(task, model):
    return task.result(model).decision


# ---- acceptance: known answers ------------------------------------------------------------------------

def test_truly_equal_on_1000_samples_is_enough(tmp_path):
    # both right on about 80% of the questions, not the same ones: equal in expectation, not identical
    run = write_models(tmp_path, {"small": (int(1e8), set(range(101, 900))), "large": (int(2e8), set(range(800)))},
                       n=1000)
    task = compare(run)
    d = decision(task, "small")
    assert d.outcome == ENOUGH and d.measure == "ratio" and d.estimate == pytest.approx(799 / 800)
    assert d.ci_low >= 0.95 and d.examples_needed is None
    assert task.verdict.chosen == "small" and task.verdict.text.startswith("small is enough: 100% of large's EM")
    assert "above a 95% margin" in task.verdict.text


def test_the_same_on_5_samples_is_undecided_and_its_count_decides(tmp_path):
    pattern_small, pattern_large = {0, 1, 2}, {0, 1, 3}  # 60% each, on different questions
    task = compare(write_models(tmp_path / "five", {"small": (int(1e8), pattern_small),
                                                    "large": (int(2e8), pattern_large)}, n=5))
    # a tie: the smaller model has the best point value, which on 5 questions proves nothing
    v = task.verdict
    d = v.smallest_decision
    assert v.best == "small" and v.runner_up == "large" and d.outcome == UNDECIDED
    assert d.examples_needed is not None and d.examples_needed > 5
    assert v.text.startswith("small has the best EM (60.0) and is the smallest model, but not proven enough "
                             "against large: undecided")
    assert f"about {d.examples_needed:,} examples would decide (the rows share 5)" in v.text
    # the same questions again and again until there are that many: the paired spread per question is the same
    n = -(-d.examples_needed // 5) * 5
    tiled = {"small": (int(1e8), {i for i in range(n) if i % 5 in pattern_small}),
             "large": (int(2e8), {i for i in range(n) if i % 5 in pattern_large})}
    again = compare(write_models(tmp_path / "many", tiled, n=n)).verdict
    assert again.smallest_decision.outcome == ENOUGH, again.smallest_decision
    assert "and is the smallest model; enough against large" in again.text


def test_ten_percent_worse_on_1000_samples_is_not_enough(tmp_path):
    run = write_models(tmp_path, {"small": (int(1e8), set(range(720))), "large": (int(2e8), set(range(800)))},
                       n=1000)
    task = compare(run)
    d = decision(task, "small")
    assert d.outcome == NOT_ENOUGH and d.estimate == pytest.approx(0.9) and d.ci_high < 0.95
    assert "small is not enough (90% of large's EM" in task.verdict.text


def test_a_metric_whose_best_is_zero_is_decided_on_the_difference():
    # a failure rate (lower is better) of 0 for the best: "0% of it" would be meaningless, a difference is not
    best = np.zeros((200, 1))
    cand = np.zeros((200, 1))
    cand[:2] = 1.0  # 1% failures
    def rate(summed, n):  # the share of failures: a mean of 0/1 per sample
        return summed[:, 0] / n

    d = paired_noninferiority(best, cand, rate, 0.95, higher_is_better=False, difference_margin=0.05)
    assert d.measure == "difference" and d.margin == -0.05 and d.estimate == pytest.approx(-0.01)
    assert d.outcome == ENOUGH


def test_no_decision_on_fewer_samples_than_a_paired_test_needs():
    assert min_paired_samples() == 6
    same = np.ones((5, 1))  # identical answers on 5 questions: a zero-width bootstrap interval
    d = paired_noninferiority(same, same, EM.aggregate_many, 0.95)
    assert d.ci_low == d.ci_high == 1.0 and d.outcome == UNDECIDED and "too few shared samples" in d.reason
    assert d.examples_needed == 6


def test_examples_needed_arithmetic():
    # se 0.05 at n=100, 0.05 from the margin: (1.96 + 0.84)^2 = 7.85 -> 785 examples
    assert examples_to_decide(100, 1.0, 0.05, 0.95) == 785
    assert examples_to_decide(100, 0.95, 0.05, 0.95) is None  # on the margin: no number would
    assert examples_to_decide(100, 1.0, None, 0.95) is None


def _pilot(rng, n, p_large, flip):
    """Paired right/wrong answers: the candidate agrees with the larger model except on a share ``flip``."""
    large = (rng.random(n) < p_large).astype(float)
    small = large.copy()
    swap = rng.random(n) < flip
    small[swap] = 1 - small[swap]
    return large.reshape(-1, 1), small.reshape(-1, 1)


@pytest.mark.parametrize("seed, margin", [(0, 0.9), (5, 0.95)])  # one leans to enough, one to not enough
def test_examples_needed_is_checked_by_simulation(seed, margin):
    """Draw the examples-needed count from the pilot's own paired distribution many times: the CI decides
    (on the side the pilot leaned to) in about POWER = 80% of the draws."""
    rng = np.random.default_rng(seed)
    large, small = _pilot(rng, 200, 0.72, 0.15)
    pilot = paired_noninferiority(large, small, EM.aggregate_many, margin)
    assert pilot.outcome == UNDECIDED and 200 < pilot.examples_needed < 3000
    side = ENOUGH if pilot.estimate > margin else NOT_ENOUGH
    draws, hits = 250, 0
    for s in range(draws):
        idx = rng.integers(0, 200, pilot.examples_needed)
        hits += paired_noninferiority(large[idx], small[idx], EM.aggregate_many, margin, resamples=300,
                                      seed=s).outcome == side
    assert 0.68 <= hits / draws <= 0.92, hits / draws


# ---- the size curve and its knee on records -------------------------------------------------------------

def _curve_run(root, accuracies, n=1000):
    # nested right answers: a larger model is right wherever a smaller one is, so each step's gain is exact
    models = {f"m{i}": (int(1e8 * 2 ** i), set(range(round(a * n / 100)))) for i, a in enumerate(accuracies)}
    return write_models(root, models, n)


def test_knee_after_the_second_step_on_records(tmp_path):
    # gains per doubling 8, 4, 0.2, 0.1 points of exact match
    task = compare(_curve_run(tmp_path, [40, 48, 52, 52.2, 52.3]))
    curve = task.verdict.curve
    assert [round(s.gain_per_doubling, 1) for s in curve.steps] == [8.0, 4.0, 0.2, 0.1]
    assert curve.status == KNEE and curve.knee == "m2"
    assert task.verdict.knee_text.startswith("past m2 (400M), each doubling gains +0.1 EM")


def test_four_point_curve_knee(tmp_path):
    task = compare(_curve_run(tmp_path, [40, 48, 52, 52.2]))
    assert task.verdict.curve.knee == "m2"


def test_a_curve_without_knee_says_so(tmp_path):
    task = compare(_curve_run(tmp_path, [30, 38, 44, 49]))
    assert task.verdict.curve.status == NO_KNEE and "no knee in this range" in task.verdict.knee_text


def test_min_gain_moves_the_knee(tmp_path):
    run = _curve_run(tmp_path, [40, 48, 52, 52.2, 52.3])
    assert compare(run, min_gain=5.0).verdict.curve.knee == "m1"  # a 4-point step does not pay 5


# ---- cost per correct answer ---------------------------------------------------------------------------

def test_cost_per_correct_answer(tmp_path):
    run = write_models(tmp_path, {"small": (int(1e8), set(range(5))), "large": (int(2e8), set(range(8)))}, n=10,
                       energy_joules=20.0)
    task = compare(run)
    small = task.result("small").correct
    assert (small.correct, small.n, small.rule) == (5, 10, "exact match")
    assert small.joules_per_correct == pytest.approx(20.0 / 5)
    row = load_runs([str(run)]).rows[0].row
    assert small.seconds_per_correct == pytest.approx(row.latency["generate_s"] / 5)
    assert small.seconds_per_sample == pytest.approx(row.latency["generate_s"] / 10)
    none = write_models(tmp_path / "none", {"a": (int(1e8), set()), "b": (int(2e8), {1})}, n=10)
    nothing = compare(none).result("a").correct
    assert nothing.correct == 0 and nothing.joules_per_correct is None and nothing.seconds_per_correct is None


def test_the_paired_floor_ends_for_every_level_even_one_that_no_count_reaches():
    from llmbench.stats import smallest_paired_p
    from llmbench.stats.noninferiority import fewest_paired_samples, min_paired_samples

    assert fewest_paired_samples(0.05) == min_paired_samples(0.95) == 6  # 2 * 2**-5 = 0.0625 >= 0.05 > 0.03125
    for alpha in (0.5, 0.1, 0.0625, 0.01, 1e-6, 1e-20):
        n = fewest_paired_samples(alpha)
        assert smallest_paired_p(n) < alpha <= smallest_paired_p(n - 1) or n == 1
    # a significance of 0 (or a confidence of 1 - 1e-20, which rounds to 1): no count reaches it; the loop
    # stops where the smallest p is 0.0 in floating point instead of running forever
    assert fewest_paired_samples(0.0) == min_paired_samples(1 - 1e-20) == 1024
    assert smallest_paired_p(1024) == 0.0 < smallest_paired_p(1023)
