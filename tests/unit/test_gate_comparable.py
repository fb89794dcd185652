"""The gate compares only what the two runs measured alike: settings that differ are warned about (the sweep
levels of --new-tokens and --batch-size included), and a row whose generation budget (task.max_new_tokens)
differs between baseline and candidate has its latency and energy checks undecided, with one warning."""

from __future__ import annotations

from gate_fixtures import make_run

from llmbench.gate import DEFAULT_RULES, PASS, UNDECIDED, evaluate, parse_rules, verdict_line
from llmbench.records.store import read_run

ROWS = [(f"model-{m}", task) for m in "abc" for task in ("qa", "trivia")]


def _records(tmp_path, budgets=(64, 16), rows=(("tiny-model", "qa"),), **cand):
    base = read_run(make_run(tmp_path, "base", rows=rows, energy_joules=2.0))
    candidate = read_run(make_run(tmp_path, "cand", rows=rows, energy_joules=2.0, **cand))
    for record, budget in zip((base, candidate), budgets):
        for row in record.rows:
            if budget is not None:
                row.task["max_new_tokens"] = budget
    return base, candidate


def test_new_tokens_and_batch_size_levels_are_compared_settings(tmp_path):
    base, cand = _records(tmp_path, budgets=(None, None))
    cand.settings.update(new_tokens=[16], batch_sizes=[1, 4])
    report = evaluate(base, cand, parse_rules(DEFAULT_RULES))
    assert "runs differ in setting new_tokens: not set (baseline) vs 16 (candidate)" in report.environment
    assert "runs differ in setting batch_sizes: not set (baseline) vs 1,4 (candidate)" in report.environment
    base.settings["new_tokens"] = [16]
    assert not any("new_tokens" in e for e in evaluate(base, cand, parse_rules(DEFAULT_RULES)).environment)


def test_rows_generated_under_other_budgets_have_their_quality_latency_and_energy_undecided(tmp_path):
    # 16 tokens instead of 64: shorter answers, half the time; no test can say the change made it faster
    base, cand = _records(tmp_path, latency_scale=0.5)
    rules = parse_rules([*DEFAULT_RULES, "latency.e2e_s.p50:+10%", "latency.tokens_per_s:-10%"])
    report = evaluate(base, cand, rules)
    by_metric = {c.metric: c for c in report.checks}
    timed = [c for m, c in by_metric.items() if m.startswith(("latency.", "energy.", "quality."))]
    assert {c.metric for c in timed} >= {"latency.e2e_s.p50", "latency.tokens_per_s", "latency.ttft_s.p50",
                                         "energy.joules_per_sample", "quality.exact_match"}
    assert {c.status for c in timed} == {UNDECIDED}
    assert all("generated up to 64 (baseline) and 16 (candidate) new tokens" in c.message for c in timed)
    # a budget of 16 cuts answers a budget of 64 finishes: quality is no more comparable than the timings
    assert by_metric["memory.peak_rss_bytes"].status == PASS
    assert report.exit_code == 3
    [note] = [n for n in report.notes if "task.max_new_tokens" in n]
    assert note.startswith("1 row generated up to a different number of new tokens")
    assert "tiny-model / qa (64 vs 16)" in note
    assert note.endswith("its quality, latency and energy checks are undecided")
    assert verdict_line(report).startswith(
        "UNDECIDED: 6 of 7 checks were undecided because the rows generated up to different numbers of new tokens")
    assert "noise" not in verdict_line(report)
    strict = evaluate(base, cand, rules, strict=True)  # point values would not compare them either
    assert {c.status for c in strict.checks if c.metric.startswith(("latency.", "energy.", "quality."))} == {
        UNDECIDED}


def test_one_warning_names_a_few_rows_of_other_budgets_and_counts_the_rest(tmp_path):
    base, cand = _records(tmp_path, rows=ROWS)
    report = evaluate(base, cand, parse_rules(["quality.*:-2%", "latency.tpot_s.p50:+15%"]))
    notes = [n for n in report.notes if "task.max_new_tokens" in n]
    assert len(notes) == 1
    assert notes[0].startswith("6 rows generated up to")
    assert "model-a / qa (64 vs 16), model-a / trivia (64 vs 16)" in notes[0] and "and 2 more;" in notes[0]
    assert "model-c / trivia" not in notes[0] and notes[0].endswith("their quality and latency checks are undecided")
    assert {c.status for c in report.checks if c.metric.startswith(("latency.", "quality."))} == {UNDECIDED}


def test_a_budget_note_says_when_no_check_depended_on_the_budget(tmp_path):
    base, cand = _records(tmp_path)
    report = evaluate(base, cand, parse_rules(["memory.weights_bytes:+0%"]))
    assert [c.status for c in report.checks] == [PASS]
    assert any(n.endswith("no quality, latency or energy check was made on them") for n in report.notes)


def test_equal_or_unrecorded_budgets_are_gated_as_usual(tmp_path):
    for budgets in ((16, 16), (64, None)):
        base, cand = _records(tmp_path / str(budgets[1]), budgets=budgets)
        report = evaluate(base, cand, parse_rules(DEFAULT_RULES))
        assert report.exit_code == 0 and not any("task.max_new_tokens" in n for n in report.notes)
        assert {c.status for c in report.checks if c.metric.startswith("latency.")} == {PASS}
