"""Gate verdicts on constructed records: thresholds, noise, directions, missing data."""

from __future__ import annotations

import numpy as np
import pytest
from gate_fixtures import ENVIRONMENT, make_run
from test_permutation import exact_permutation_p

from llmbench.errors import UserError
from llmbench.gate import DEFAULT_RULES, FAIL, MISSING, NOT_CHECKED, PASS, UNDECIDED, describe, evaluate, parse_rules
from llmbench.gate.evaluate import NO_NOISE_MODEL, STRICT
from llmbench.records import SAMPLES_FILE
from llmbench.records.store import read_run

ROW = ("tiny-model", "qa")


def gate(base_dir, cand_dir, rules=DEFAULT_RULES, **kw):
    return evaluate(read_run(base_dir), read_run(cand_dir), parse_rules(rules), **kw)


def only(report, metric):
    found = [c for c in report.checks if c.metric == metric]
    assert len(found) == 1, [c.metric for c in report.checks]
    return found[0]


def test_identical_records_pass(tmp_path):
    base = make_run(tmp_path, "base", energy_joules=40.0)
    report = gate(base, base)
    assert report.passed and report.exit_code == 0
    assert {c.status for c in report.checks} == {PASS}
    assert len(report.checks) == len(DEFAULT_RULES)
    assert report.environment == [] and report.notes == []


def test_large_quality_drop_fails_naming_row_and_rule(tmp_path):
    base = make_run(tmp_path, "base", correct=range(36))
    cand = make_run(tmp_path, "cand", correct=range(12))
    report = gate(base, cand)
    assert report.exit_code == 1
    check = only(report, "quality.exact_match")
    assert check.status == FAIL
    assert (check.baseline, check.candidate) == (90.0, 30.0)
    assert check.p_value < 0.05 and check.ci_high < 0
    assert "paired randomization test over 40 shared samples" in check.method
    line = describe(check)
    assert "tiny-model / qa" in line and "quality.*:-2%" in line and "quality.exact_match" in line
    assert [c.metric for c in report.failures] == ["quality.exact_match"]


def test_small_quality_drop_within_noise_is_undecided_unless_strict(tmp_path):
    base = make_run(tmp_path, "base", correct=range(36))
    cand = make_run(tmp_path, "cand", correct=range(34))  # -5.6%: beyond 2%, but 2 of 40 samples
    report = gate(base, cand)
    check = only(report, "quality.exact_match")
    assert check.status == UNDECIDED and report.exit_code == 3
    assert check.p_value >= 0.05 and "within the noise" in check.message
    assert check.examples_needed > 40 and f"about {check.examples_needed:,} examples would decide" in check.message
    assert gate(base, cand, undecided="pass").exit_code == 0
    strict = only(gate(base, cand, strict=True), "quality.exact_match")
    assert strict.status == FAIL and strict.method == STRICT


def test_significance_level_is_honoured(tmp_path):
    base = make_run(tmp_path, "base", correct=range(36))
    cand = make_run(tmp_path, "cand", correct=range(31))  # 5 of 40 flipped: the exact sign-flip p is 2/2^5
    loose = only(gate(base, cand, significance=0.2), "quality.exact_match")
    tight = only(gate(base, cand, significance=0.01), "quality.exact_match")
    assert loose.p_value == tight.p_value == pytest.approx(2 / 32)
    assert loose.status == FAIL and tight.status == UNDECIDED


def test_improvement_never_fails(tmp_path):
    base = make_run(tmp_path, "base", correct=range(10), latency_scale=2.0, peak_rss=2e9)
    cand = make_run(tmp_path, "cand", correct=range(40), latency_scale=0.5, peak_rss=1e9)
    report = gate(base, cand, strict=True)
    assert report.passed


def test_absolute_quality_rule(tmp_path):
    base = make_run(tmp_path, "base", correct=range(36))
    cand = make_run(tmp_path, "cand", correct=range(12))
    assert only(gate(base, cand, ["quality.exact_match:-70"]), "quality.exact_match").status == PASS
    check = only(gate(base, cand, ["quality.exact_match:-50"]), "quality.exact_match")
    assert check.status == FAIL and check.limit == 50


def test_latency_change_inside_noise_passes_large_one_fails(tmp_path):
    rules = ["latency.ttft_s.p50:+5%"]
    base = make_run(tmp_path, "base", latency_noise=0.5)
    small = make_run(tmp_path, "small", latency_noise=0.5, latency_scale=1.10)
    large = make_run(tmp_path, "large", latency_noise=0.5, latency_scale=2.0)
    inside = only(gate(base, small, rules), "latency.ttft_s.p50")
    assert inside.relative == pytest.approx(0.10)  # crosses the 5% margin ...
    assert inside.status == UNDECIDED and inside.p_value >= 0.05  # ... but not beyond the noise
    assert "timings per side would decide" in inside.message and inside.examples_needed > 40
    assert "permutation test of p50" in inside.method
    outside = only(gate(base, large, rules), "latency.ttft_s.p50")
    assert outside.status == FAIL and outside.p_value < 0.05
    assert only(gate(base, small, rules, strict=True), "latency.ttft_s.p50").status == FAIL


def test_latency_within_margin_passes_without_test(tmp_path):
    base = make_run(tmp_path, "base")
    cand = make_run(tmp_path, "cand", latency_scale=1.10)
    check = only(gate(base, cand, ["latency.tpot_s.p90:+15%"]), "latency.tpot_s.p90")
    assert check.status == PASS and check.message == "within limit" and check.p_value is None


def test_tokens_per_s_is_higher_is_better_point_value(tmp_path):
    base = make_run(tmp_path, "base")
    slow = make_run(tmp_path, "slow", latency_scale=1.5)
    check = only(gate(base, slow, ["latency.tokens_per_s:-10%"]), "latency.tokens_per_s")
    assert check.higher_is_better is True
    assert check.status == FAIL and check.method == NO_NOISE_MODEL
    fast = make_run(tmp_path, "fast", latency_scale=0.5)
    assert only(gate(base, fast, ["latency.tokens_per_s:-10%"]), "latency.tokens_per_s").status == PASS


def test_memory_compared_as_point_values(tmp_path):
    base = make_run(tmp_path, "base", peak_rss=1.0e9)
    ok = make_run(tmp_path, "ok", peak_rss=1.04e9)
    grown = make_run(tmp_path, "grown", peak_rss=1.2e9)
    rule = ["memory.peak_rss_bytes:+5%"]
    assert only(gate(base, ok, rule), "memory.peak_rss_bytes").status == PASS
    check = only(gate(base, grown, rule), "memory.peak_rss_bytes")
    assert check.status == FAIL and NO_NOISE_MODEL in check.message
    assert "GiB" in describe(check) or "MiB" in describe(check)


def test_memory_not_measured_on_either_side_is_skipped(tmp_path):
    base = make_run(tmp_path, "base")
    check = only(gate(base, base, ["memory.cuda_peak_allocated_bytes:+5%"]), "memory.cuda_peak_allocated_bytes")
    assert check.status == NOT_CHECKED and check.baseline is None


def test_energy_unavailable_is_missing_or_not_checked_with_reason_never_zero(tmp_path):
    base = make_run(tmp_path, "base", energy_joules=40.0)
    cand = make_run(tmp_path, "cand")  # energy unavailable
    check = only(gate(base, cand), "energy.joules_per_sample")
    assert check.status == MISSING  # one side measured: a metric present on one side only
    assert check.message == "energy unavailable in candidate: no RAPL powercap interface"
    assert check.baseline is None and check.candidate is None
    assert only(gate(base, cand, fail_on_missing=True), "energy.joules_per_sample").status == FAIL
    report = gate(cand, cand)
    both = only(report, "energy.joules_per_sample")
    assert both.status == NOT_CHECKED and both.message == "energy unavailable in both runs: no RAPL powercap interface"
    # every energy check of the gate was not checked: it says so (the CLI prints notes on stderr)
    assert any(n.startswith("no energy check was made: all 1 were not checked (energy unavailable in both runs")
               for n in report.notes)
    assert report.exit_code == 0


def test_energy_of_a_window_too_short_for_the_sensor_is_skipped_not_compared(tmp_path):
    """An NVML counter steps about every 100 ms: a 60 ms window reads 0 or one whole step."""
    base = make_run(tmp_path, "base", energy_joules=0.0, energy_short_window=True)
    cand = make_run(tmp_path, "cand", energy_joules=30.0)
    check = only(gate(base, cand), "energy.joules_per_sample")
    assert check.status == NOT_CHECKED and "too short to compare in baseline" in check.message
    assert "shorter than 0.2 s" in check.message


def test_energy_growth_fails(tmp_path):
    base = make_run(tmp_path, "base", energy_joules=40.0)
    cand = make_run(tmp_path, "cand", energy_joules=60.0)
    check = only(gate(base, cand), "energy.joules_per_sample")
    assert check.status == FAIL and check.relative == pytest.approx(0.5)
    assert only(gate(base, make_run(tmp_path, "c2", energy_joules=44.0)), "energy.joules_per_sample").status == PASS


def test_missing_row_is_reported_not_zero(tmp_path):
    base = make_run(tmp_path, "base", rows=[ROW, ("tiny-model", "summarize")])
    cand = make_run(tmp_path, "cand", rows=[ROW, ("other-model", "qa")])
    report = gate(base, cand)
    missing = [c for c in report.checks if c.task == "summarize"]
    assert len(missing) == len(DEFAULT_RULES)
    assert {c.status for c in missing} == {MISSING}
    assert all(c.message == "row missing in candidate" and c.candidate is None for c in missing)
    assert report.passed
    assert any("other-model / qa" in n and "only in the candidate" in n for n in report.notes)
    strict = gate(base, cand, fail_on_missing=True)
    assert not strict.passed and {c.task for c in strict.failures} == {"summarize"}


def test_missing_metric_is_reported(tmp_path):
    extra = {"f1": {"value": 92.0, "ci_low": 85.0, "ci_high": 97.0, "higher_is_better": True,
                    "scale": "0-100", "n": 40}}
    base = make_run(tmp_path, "base", extra_quality=extra)
    cand = make_run(tmp_path, "cand")
    report = gate(base, cand, ["quality.*:-2%", "quality.bleu:-1"])
    f1 = only(report, "quality.f1")
    assert f1.status == MISSING and f1.message == "missing in candidate"
    assert only(report, "quality.exact_match").status == PASS
    # bleu is a known metric that neither row measured
    assert only(report, "quality.bleu").status == NOT_CHECKED
    assert report.passed
    assert not gate(base, cand, fail_on_missing=True).passed


def test_failed_candidate_row_is_a_regression(tmp_path):
    base = make_run(tmp_path, "base")
    cand = make_run(tmp_path, "cand", failed=(ROW,))
    report = gate(base, cand)
    assert report.exit_code == 1
    assert len(report.failures) == len(DEFAULT_RULES)
    assert all("candidate row failed: CUDA out of memory" in c.message for c in report.failures)


def test_failed_baseline_row_is_skipped(tmp_path):
    base = make_run(tmp_path, "base", failed=(ROW,))
    cand = make_run(tmp_path, "cand")
    report = gate(base, cand)
    assert report.passed and {c.status for c in report.checks} == {NOT_CHECKED}


def test_no_rows_in_common_is_bad_input(tmp_path):
    base = make_run(tmp_path, "base")
    cand = make_run(tmp_path, "cand", rows=[("other-model", "qa")])
    with pytest.raises(UserError, match="no model x task rows in common"):
        gate(base, cand)


def test_unknown_quality_metric_is_bad_input(tmp_path):
    base = make_run(tmp_path, "base")
    with pytest.raises(UserError, match="rule 'quality.blue:-1'.*did you mean 'bleu'"):
        gate(base, base, ["quality.blue:-1"])


def test_quality_metric_only_in_records_is_accepted(tmp_path):
    # lm-eval rows carry metrics llmbench does not implement; they are gated with their stderr
    acc = {"acc": {"value": 0.60, "stderr": 0.02, "higher_is_better": True, "scale": "0-1", "n": 500}}
    low = {"acc": {"value": 0.50, "stderr": 0.02, "higher_is_better": True, "scale": "0-1", "n": 500}}
    near = {"acc": {"value": 0.58, "stderr": 0.02, "higher_is_better": True, "scale": "0-1", "n": 500}}
    base = make_run(tmp_path, "base", extra_quality=acc)
    drop = only(gate(base, make_run(tmp_path, "low", extra_quality=low), ["quality.acc:-1%"]), "quality.acc")
    assert drop.status == FAIL and "stderr" in drop.method and drop.p_value < 0.05
    noisy = only(gate(base, make_run(tmp_path, "near", extra_quality=near), ["quality.acc:-1%"]), "quality.acc")
    assert noisy.status == UNDECIDED and noisy.p_value > 0.05
    assert noisy.examples_needed > 500 and "examples would decide (this run has 500)" in noisy.message


def test_without_samples_quality_falls_back_to_ci_overlap(tmp_path):
    base = make_run(tmp_path, "base", correct=range(36), with_samples=False)
    far = make_run(tmp_path, "far", correct=range(8), with_samples=False)
    near = make_run(tmp_path, "near", correct=range(33), with_samples=False)
    assert not (base / SAMPLES_FILE).exists()
    check = only(gate(base, far), "quality.exact_match")
    assert check.status == FAIL and "CI overlap" in check.method
    assert only(gate(base, near), "quality.exact_match").status == UNDECIDED


def test_without_samples_latency_mean_uses_ci_and_percentiles_have_no_noise_model(tmp_path):
    base = make_run(tmp_path, "base", with_samples=False)
    cand = make_run(tmp_path, "cand", latency_scale=1.5, with_samples=False)
    mean = only(gate(base, cand, ["latency.e2e_s.mean:+10%"]), "latency.e2e_s.mean")
    assert mean.status == FAIL and "CI overlap" in mean.method
    p90 = only(gate(base, cand, ["latency.e2e_s.p90:+10%"]), "latency.e2e_s.p90")
    assert p90.status == FAIL and p90.method == NO_NOISE_MODEL


def test_lower_is_better_quality_metric_direction(tmp_path):
    def ter(value):
        return {"ter": {"value": value, "ci_low": value - 2, "ci_high": value + 2, "higher_is_better": False,
                        "scale": "0-100", "n": 40}}

    base = make_run(tmp_path, "base", extra_quality=ter(50.0), with_samples=False)
    worse = make_run(tmp_path, "worse", extra_quality=ter(60.0), with_samples=False)
    better = make_run(tmp_path, "better", extra_quality=ter(40.0), with_samples=False)
    for rule in ("quality.ter:+5%", "quality.ter:-5%"):  # the sign does not matter
        check = only(gate(base, worse, [rule]), "quality.ter")
        assert check.status == FAIL and check.higher_is_better is False
        assert only(gate(base, better, [rule]), "quality.ter").status == PASS


def test_wildcard_expands_to_every_baseline_metric(tmp_path):
    extra = {"f1": {"value": 92.0, "ci_low": 85.0, "ci_high": 97.0, "higher_is_better": True,
                    "scale": "0-100", "n": 40}}
    base = make_run(tmp_path, "base", extra_quality=extra)
    report = gate(base, base, ["quality.*:-2%"])
    assert [c.metric for c in report.checks] == ["quality.exact_match", "quality.f1"]
    assert len(report.groups()) == 1


def test_environment_differences_are_noted(tmp_path):
    base = make_run(tmp_path, "base")
    cand = make_run(tmp_path, "cand", environment={**ENVIRONMENT, "hostname": "laptop", "llmbench": "0.2.0"})
    report = gate(base, cand)
    assert report.passed
    assert any("hostname" in n for n in report.environment)
    assert any("llmbench" in n for n in report.environment)


def test_metric_library_versions_differ_only_when_both_records_name_them(tmp_path):
    base = make_run(tmp_path, "base")  # written before records named sacrebleu's version
    newer = make_run(tmp_path, "newer", environment={**ENVIRONMENT, "sacrebleu": "2.6.0"})
    other = make_run(tmp_path, "other", environment={**ENVIRONMENT, "sacrebleu": "2.4.3"})
    assert not any("sacrebleu" in n for n in gate(base, newer).environment)
    assert any("sacrebleu: 2.4.3, 2.6.0" in n for n in gate(other, newer).environment)


def test_lm_eval_metric_named_like_ours_is_gated_on_its_stderr_not_rescored(tmp_path):
    # identical predictions (our SQuAD EM would see no change), but lm-eval's own exact_match fell
    def lm(value):
        return {"exact_match": {"value": value, "stderr": 0.08, "higher_is_better": True, "scale": "0-1",
                                "n": 40, "library": "lm-eval"}}
    base = make_run(tmp_path, "base", extra_quality=lm(1.0))
    cand = make_run(tmp_path, "cand", extra_quality=lm(0.5))
    check = only(gate(base, cand), "quality.exact_match")
    assert check.status == FAIL
    assert "stderr" in check.method and "paired randomization" not in check.method


def test_one_shared_sample_is_never_a_significant_drop(tmp_path):
    base = make_run(tmp_path, "base", n=1, correct={0})
    cand = make_run(tmp_path, "cand", n=1, correct=set())
    check = only(gate(base, cand), "quality.exact_match")
    assert (check.baseline, check.candidate) == (100.0, 0.0)
    assert check.status == UNDECIDED and check.p_value == 1.0 and "too few samples" in check.message
    assert check.examples_needed is None and "more examples per task would decide" in check.message  # no spread


def test_a_gate_that_cannot_fail_on_too_few_samples_says_so(tmp_path):
    """3 shared samples: a paired test's smallest p is 2/2^3 = 0.25, so even 100 -> 0 cannot be proven; the
    checks are undecided (exit 3, not a silent pass), the report says they were blind, and point values
    (--strict) still catch it."""
    base = make_run(tmp_path, "base", n=3, correct={0, 1, 2})
    cand = make_run(tmp_path, "cand", n=3, correct=set(), latency_scale=3.0)
    report = gate(base, cand)
    check = only(report, "quality.exact_match")
    assert check.status == UNDECIDED and check.p_floor == 0.25 and "too few samples" in check.message
    assert check.examples_needed == 6 and report.exit_code == 3
    ttft = only(report, "latency.ttft_s.p50")
    # 3 against 3 timings: 2 of the C(6, 3) = 20 splits are as extreme for a mean, 4 for the median (its ties)
    assert ttft.status == UNDECIDED and ttft.p_floor == pytest.approx(exact_permutation_p([0, 1, 2], [3, 4, 5],
                                                                                           np.median))
    assert ttft.p_floor == pytest.approx(4 / 20)
    [note] = [n for n in report.notes if "could not fail" in n]
    assert "tiny-model / qa" in note and "at least 6 samples that differ" in note and "--strict" in note
    assert "latency check more timings" in note
    assert only(gate(base, cand, strict=True), "quality.exact_match").status == FAIL
    assert only(gate(base, cand, strict=True), "quality.exact_match").p_floor is None


def test_medians_of_four_timings_a_side_cannot_fail_and_are_flagged(tmp_path):
    """4 against 4: the mean's floor is 2/70, but the median's is 4/70 = 0.057, above 0.05."""
    base = make_run(tmp_path, "base", n=4)
    report = gate(base, make_run(tmp_path, "cand", n=4, latency_scale=10.0))
    ttft = only(report, "latency.ttft_s.p50")
    assert ttft.p_floor == pytest.approx(4 / 70) and ttft.status == UNDECIDED and "too few samples" in ttft.message
    assert [n for n in report.notes if "could not fail" in n]


def test_a_small_significance_level_gets_enough_arrangements_and_an_unreachable_one_says_so(tmp_path):
    """100 of 200 answers lost: random arrangements (1000 by default) resolve p only to 1/1001, so at 0.0005
    the gate draws more of them (20/alpha) and the loss fails; at 1e-7, past what it draws, it says that
    no check could fail instead of passing in silence."""
    base = make_run(tmp_path, "base", n=200, correct=range(200))
    cand = make_run(tmp_path, "cand", n=200, correct=range(100), latency_scale=3.0)
    check = only(gate(base, cand, significance=0.0005), "quality.exact_match")
    assert check.status == FAIL and check.p_value < 0.0005 and check.p_floor == pytest.approx(1 / 20001)
    unreachable = gate(base, cand, significance=1e-7)
    assert only(unreachable, "quality.exact_match").status == UNDECIDED
    assert [n for n in unreachable.notes if "could not fail" in n and "1e-07" in n]
    assert [n for n in gate(base, cand, significance=1e-20).notes if "could not fail" in n]  # no StopIteration


def test_enough_samples_leave_no_blind_check_note(tmp_path):
    base = make_run(tmp_path, "base", n=40)
    report = gate(base, make_run(tmp_path, "cand", n=40, latency_scale=1.5))
    assert not [n for n in report.notes if "could not fail" in n]
    assert all(c.p_floor is None or c.p_floor < 0.05 for c in report.checks)


def test_one_sample_without_per_sample_data_is_not_read_as_a_zero_width_ci(tmp_path):
    base = make_run(tmp_path, "base", n=1, correct={0}, with_samples=False)
    cand = make_run(tmp_path, "cand", n=1, correct=set(), with_samples=False)
    check = only(gate(base, cand), "quality.exact_match")
    assert check.status == UNDECIDED and "one sample" in check.method and check.p_value == 1.0
    assert only(gate(base, cand, strict=True), "quality.exact_match").status == FAIL


def test_noninferior_rule_passes_only_what_is_proven(tmp_path):
    rule = ["quality.exact_match:noninferior:90%"]
    base = make_run(tmp_path, "base", n=200, correct=range(160))  # 80%
    same = make_run(tmp_path, "same", n=200, correct=range(2, 162))  # 80%, 4 questions differ
    worse = make_run(tmp_path, "worse", n=200, correct=range(120))  # 75% of the baseline
    proven = only(gate(base, same, rule), "quality.exact_match")
    assert proven.status == PASS and proven.ratio == pytest.approx(1.0) and proven.ci_low >= 0.9
    assert "proven to reach 90% of the baseline" in proven.message
    below = only(gate(base, worse, rule), "quality.exact_match")
    assert below.status == FAIL and below.ci_high < 0.9 and "proven below" in below.message
    small_base = make_run(tmp_path, "b10", n=10, correct=range(8))
    small_cand = make_run(tmp_path, "c10", n=10, correct=range(1, 9))
    report = gate(small_base, small_cand, rule)
    open_question = only(report, "quality.exact_match")
    assert open_question.status == UNDECIDED and report.exit_code == 3
    assert open_question.examples_needed > 10 and "examples would decide" in open_question.message
    assert only(gate(small_base, small_cand, rule, strict=True), "quality.exact_match").status == PASS
