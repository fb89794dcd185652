"""Two rows are paired only over the same examples: a shared index whose example digest (or, in lines written
before digests, whose references) differ makes compare untested, the gate's quality checks undecided, and a
resume of a changed task refused (tests/unit/test_crash_safety.py)."""

from __future__ import annotations

import json

import pytest
from gate_fixtures import make_run
from test_report_compare import TASK, _m, _row, _samples

from llmbench.gate import DEFAULT_RULES, PASS, UNDECIDED, evaluate, parse_rules
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


def test_gate_quality_checks_on_different_examples_are_undecided_with_a_note(tmp_path):
    base = make_run(tmp_path, "base")
    cand = make_run(tmp_path, "cand")
    path = cand / SAMPLES_FILE
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    lines[4]["references"] = ["a changed answer"]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    report = evaluate(read_run(base), read_run(cand), parse_rules(DEFAULT_RULES))
    quality = [c for c in report.checks if c.metric.startswith("quality.")]
    assert quality and {c.status for c in quality} == {UNDECIDED}
    assert all("ran different examples" in c.message for c in quality)
    assert report.exit_code == 3
    assert any("1 of 40 shared examples differ (first: index 4)" in note for note in report.notes)
    assert {c.status for c in report.checks if c.metric.startswith("latency.")} == {PASS}  # same timings
