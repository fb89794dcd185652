"""Two rows are paired only over the same examples: a shared index whose example digest (or, in lines written
before digests, whose references) differ makes compare untested, the gate's checks of the row undecided (all but
the weights' memory), and a resume of a changed task refused (tests/unit/test_crash_safety.py)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from gate_fixtures import make_run
from test_report_compare import TASK, _m, _row, _samples

from llmbench.cli import cli
from llmbench.gate import DEFAULT_RULES, NOT_CHECKED, PASS, UNDECIDED, evaluate, parse_rules, verdict_line
from llmbench.gate.checks import NOT_PAIRED
from llmbench.records import SAMPLES_FILE
from llmbench.records.store import read_run
from llmbench.report.compare import compare_task
from llmbench.stats.significance import DifferentExamples, example_differences, quality_delta
from llmbench.tasks.task import Example


def _example(prompt="Q: 2+2?", refs=("4",)):
    return Example(0, {}, prompt, [{"role": "user", "content": prompt}], list(refs))


def test_the_digest_covers_prompt_turns_and_references_only():
    base = _example()
    assert len(base.digest) == 16 and base.digest == _example().digest
    assert _example(prompt="Q: 2+3?").digest != base.digest
    assert _example(refs=("four",)).digest != base.digest
    turns = Example(0, {}, base.prompt, [{"role": "system", "content": "Be brief."}, *base.messages], ["4"])
    assert turns.digest != base.digest
    assert Example(0, {"unused": 1}, base.prompt, base.messages, ["4"]).digest == base.digest


def _with_digests(samples: dict[int, dict], changed=()) -> dict[int, dict]:
    return {i: dict(s, example=f"{'x' if i in changed else 'd'}{i:015d}") for i, s in samples.items()}


def test_example_differences_count_the_shared_indices_that_differ():
    a = _with_digests(_samples("a", [True] * 10))
    assert example_differences(a, _with_digests(_samples("b", [False] * 10))) is None  # answers may differ
    why = example_differences(a, _with_digests(_samples("b", [True] * 10), changed={3, 7}))
    assert why.startswith("2 of 10 shared examples differ (first: index 3)")
    old = _samples("b", [True] * 10)  # no digests: the references decide
    old[5]["references"] = ["something else"]
    assert example_differences(_samples("a", [True] * 10), old).startswith("1 of 10 shared examples differ")
    with pytest.raises(DifferentExamples, match="1 of 10 shared examples differ"):
        quality_delta("exact_match", _samples("a", [True] * 10), old)


def test_compare_does_not_pair_rows_that_ran_different_examples():
    n = 40
    small = _m(_row("small", 100), _with_digests(_samples("small", [i % 4 == 0 for i in range(n)])))
    big = _m(_row("big", 400), _with_digests(_samples("big", [i % 10 != 0 for i in range(n)]), changed={0}))
    tc = compare_task(TASK, [small, big])
    assert tc.result("small").quality_significant is None  # was True over the same examples
    same = _m(_row("big", 400), _with_digests(_samples("big", [i % 10 != 0 for i in range(n)])))
    assert compare_task(TASK, [small, same]).result("small").quality_significant is True


def _change_examples(run_dir, changed=(), digests=False, task=None):
    """Give the run's sample lines example digests (``digests``) and change the examples at the indices
    ``changed`` (of ``task`` only, when given): their digests, or without digests their references."""
    path = run_dir / SAMPLES_FILE
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    for line in lines:
        change = line["index"] in changed and task in (None, line["task"])
        if digests:
            line["example"] = f"{'x' if change else 'd'}{line['index']:015d}"
        elif change:
            line["references"] = ["a changed answer"]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_gate_checks_on_different_examples_are_undecided_with_a_note(tmp_path):
    base = make_run(tmp_path, "base")
    cand = make_run(tmp_path, "cand")
    _change_examples(cand, changed={4})
    report = evaluate(read_run(base), read_run(cand), parse_rules(DEFAULT_RULES))
    # quality, and latency too (TTFT and TPOT depend on the prompts), peak memory (on their lengths)
    measured = [c for c in report.checks if c.status != NOT_CHECKED]
    assert {c.metric.split(".")[0] for c in measured} == {"quality", "latency", "memory"}
    assert {c.status for c in measured} == {UNDECIDED}
    assert all("ran different examples" in c.message for c in measured)
    assert [c.status for c in report.checks if c.metric.startswith("energy.")] == [NOT_CHECKED]  # unmeasured
    assert report.exit_code == 3
    [note] = [n for n in report.notes if "shared examples differ" in n]
    assert "1 of 40 shared examples differ (first: index 4)" in note
    assert note.endswith("; its quality, latency and memory checks are undecided")


def test_the_note_names_the_checks_the_different_examples_made_undecided(tmp_path):
    base, cand = make_run(tmp_path, "base"), make_run(tmp_path, "cand")
    _change_examples(cand, changed={4})
    report = evaluate(read_run(base), read_run(cand), parse_rules(["latency.ttft_s.p50:+15%"]))
    assert [c.status for c in report.checks] == [UNDECIDED]
    assert [n for n in report.notes if n.endswith("; its latency checks are undecided")]
    # what the weights hold does not depend on the examples: still gated, and the note says none changed
    report = evaluate(read_run(base), read_run(cand), parse_rules(["memory.weights_bytes:+0%"]))
    assert [c.status for c in report.checks] == [PASS] and report.exit_code == 0
    assert any(n.endswith("; none of its checks depends on them") for n in report.notes)


def test_the_verdict_gives_each_reason_for_undecided_checks_its_own_words(tmp_path):
    rows = [("tiny-model", "qa"), ("tiny-model", "trivia")]
    base = make_run(tmp_path, "base", rows=rows, n=3, correct={0, 1, 2})
    cand = make_run(tmp_path, "cand", rows=rows, n=3, correct=set())
    records = read_run(base), read_run(cand)
    line = verdict_line(evaluate(*records, parse_rules(["quality.*:-2%"])))
    assert line.startswith("UNDECIDED: 2 of 2 checks could not tell a worsening beyond the margin from noise")
    _change_examples(cand, changed={1}, task="qa")  # trivia's examples are the same: undecided from noise
    rules = parse_rules(["quality.*:-2%", "quality.exact_match:noninferior:98%"])
    report = evaluate(read_run(base), read_run(cand), rules)
    assert {c.method for c in report.checks if c.task == "qa"} == {NOT_PAIRED}
    assert verdict_line(report).startswith(
        "UNDECIDED: 4 of 4 checks undecided: 1 could not tell a worsening beyond the margin from noise; "
        "1 was neither proven to reach its non-inferiority share nor proven below it; "
        "2 were undecided because the runs ran different examples of the task (no regression proven")


def test_gate_command_says_the_runs_ran_different_examples_not_noise(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    base, cand = make_run(tmp_path, "base"), make_run(tmp_path, "cand")
    _change_examples(base, digests=True)
    _change_examples(cand, changed={7}, digests=True)
    result = CliRunner().invoke(cli, ["gate", "--baseline", str(base), "--candidate", str(cand)])
    assert result.exit_code == 3, result.output
    assert ("UNDECIDED: 4 of 5 checks were undecided because the runs ran different examples of the task "
            "(no regression proven, none ruled out), 1 not checked") in result.output
    assert "from noise" not in result.output
    assert "1 of 40 shared examples differ (first: index 7)" in result.output
