"""``task.available``: the records a task's data holds, written in each row, read back as a count, and told
by compare and gate when the examples that would decide are more than the task holds ("only a larger test
set would") or more than a ``--limit`` ran ("the task holds M")."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from gate_fixtures import latencies, make_row, make_run, sample_lines

from llmbench.errors import UserError
from llmbench.gate import UNDECIDED, evaluate, parse_rules
from llmbench.records import ResultRow, RunRecord
from llmbench.records.rows import examples_available, failed_row, task_entry
from llmbench.records.store import read_run, write_run, write_samples
from llmbench.report import build_comparison, load_runs
from llmbench.report.format import examples_needed_text
from llmbench.stats.noninferiority import UNDECIDED as NI_UNDECIDED
from llmbench.tasks import load_catalog

BEYOND = "only a larger test set is likely to"

# ---- the wording ---------------------------------------------------------------------------------------


def test_more_needed_than_the_task_holds_says_how_often_all_of_it_would_decide():
    text = examples_needed_text(2877, "the rows share 10", 10, 33)
    assert text == ("about 2,877 examples would decide, more than the 33 the task holds (the rows share 10): "
                    "all 33 would decide in about 5% of runs; only a larger test set is likely to")
    assert text.endswith(BEYOND)
    # 57 needed, 42 held: all 42 still decide in two runs of three, so no "only a larger test set"
    text = examples_needed_text(57, "the rows share 10", 10, 42)
    assert text == ("about 57 examples would decide, more than the 42 the task holds (the rows share 10): "
                    "all 42 would decide in about 67% of runs")
    timings = examples_needed_text(1500, "this run has 40", 40, 1200, "timings per side")
    assert timings.startswith("about 1,500 timings per side would decide, more than the 1,200 the task holds")


def test_the_paired_floor_is_named_only_for_a_paired_decision():
    from llmbench.stats.noninferiority import power_at

    paired = examples_needed_text(1914, "the rows share 5", 5, 5)
    assert paired.endswith("a paired test on 5 cannot reach the level at all; only a larger test set would")
    # an unpaired normal CI from recorded standard errors can decide on 5: its chance, not the paired floor
    unpaired = examples_needed_text(1914, "the rows share 5", 5, 5, paired=False)
    assert "paired test" not in unpaired
    assert f"all 5 would decide in about {power_at(5, 1914):.0%} of runs" in unpaired


def test_power_at_matches_a_simulation_of_runs_on_fewer_examples():
    import numpy as np

    from llmbench.stats.noninferiority import examples_to_decide, power_at, z_value

    rng = np.random.default_rng(7)
    gap, sd, margin = 0.05, 0.4, 0.0  # paired differences: mean 0.05, sd 0.4, against no drop
    needed = examples_to_decide(10, gap, sd / np.sqrt(10), margin)
    assert needed == 503  # (2.80 * 0.4 / 0.05) ** 2
    assert power_at(needed, needed) == pytest.approx(0.8, abs=1e-3)
    z = z_value()
    for m in (needed // 4, needed // 2, needed):
        draws = rng.normal(gap, sd, size=(4000, m))
        low = draws.mean(axis=1) - z * draws.std(axis=1, ddof=1) / np.sqrt(m)
        share = float((low > margin).mean())  # runs whose CI clears the margin: they decide
        assert share == pytest.approx(power_at(m, needed), abs=0.03), (m, share)


def test_fewer_needed_than_the_task_holds_past_a_limit_names_what_it_holds():
    text = examples_needed_text(57, "the rows share 10", 10, 4200)
    assert text == "about 57 examples would decide (the rows share 10; the task holds 4,200)"
    assert text.endswith("; the task holds 4,200)") and BEYOND not in text
    # exactly what the task holds still decides: not "more than"
    assert examples_needed_text(42, "the rows share 10", 10, 42) == \
        "about 42 examples would decide (the rows share 10; the task holds 42)"


def test_without_available_or_when_the_run_used_all_of_it_the_wording_is_the_old_one():
    assert examples_needed_text(57, "the rows share 10", 10, None) == \
        "about 57 examples would decide (the rows share 10)"
    # every record ran (no --limit below what the task holds): nothing more to say than the old wording
    assert examples_needed_text(8, "the rows share 10", 10, 10) == "about 8 examples would decide (the rows share 10)"


# ---- the row -------------------------------------------------------------------------------------------


def _task(size, with_spec=True):
    spec = SimpleNamespace(size=lambda: size) if with_spec else None
    return SimpleNamespace(name="qa", kind="qa", source_description="jsonl: data/qa.jsonl", spec=spec)


@pytest.mark.parametrize("size, n, expected", [
    (48, 10, 48),    # --limit 10 of 48 records
    (48, 48, 48),    # all of them
    (5, 10, None),   # fewer than ran (cannot be right): left out
    (None, 10, None),  # not countable (a hub dataset)
])
def test_task_entry_sets_available_from_the_spec_size_when_at_least_n(size, n, expected):
    entry = task_entry(_task(size), n, 32)
    assert entry.get("available") == expected and ("available" in entry) == (expected is not None)
    assert (entry["name"], entry["n"], entry["max_new_tokens"]) == ("qa", n, 32)


def test_task_entry_without_a_spec_or_examples_has_no_available():
    assert "available" not in task_entry(_task(48, with_spec=False), 10)
    assert "available" not in task_entry(SimpleNamespace(name="qa", kind="qa", source_description="s"), 10)
    assert "available" not in task_entry(_task(48), 0)
    assert "available" not in failed_row({"name": "m"}, _task(48), "did not load").task


def test_task_entry_of_a_builtin_task_run_with_a_limit():
    spec = load_catalog().tasks["translation-en-fr"]
    entry = task_entry(spec.task(10), 10, 64)
    assert entry["n"] == 10 and entry["available"] == spec.size() and spec.size() > 10


def _row(task: dict) -> ResultRow:
    return ResultRow(model={"name": "m"}, task={"name": "qa", "n": 10, **task})


def test_examples_available_is_the_fewest_and_none_when_a_row_does_not_say():
    assert examples_available(_row({"available": 48}), _row({"available": 33})) == 33
    assert examples_available(_row({"available": 48})) == 48
    assert examples_available(_row({"available": 48}), _row({})) is None
    assert examples_available(_row({"available": 48}), _row({"available": None})) is None
    assert examples_available() is None


@pytest.mark.parametrize("bad", [True, False, 33.0, "33"])
def test_examples_available_rejects_what_is_not_an_integer(bad):
    assert examples_available(_row({"available": 48}), _row({"available": bad})) is None
    assert examples_available(_row({"available": bad})) is None


# ---- compare and gate, end to end ----------------------------------------------------------------------

SMALL, LARGE = {0, 1, 2}, {0, 1, 3}  # 60% each on 5 questions, not the same ones: undecided


def _compare_run(root: Path, n: int, available: dict) -> Path:
    rows, lines = [], []
    for model, params, correct in (("small", int(1e8), SMALL), ("large", int(2e8), LARGE)):
        preds = [f"answer {i}" if i in correct else f"wrong {i}" for i in range(n)]
        refs = [[f"answer {i}"] for i in range(n)]
        lat = latencies(n, seed=len(model))
        row = make_row(model, "qa", preds, refs, lat)
        row.model["parameters"] = params
        if available.get(model) is not None:
            row.task["available"] = available[model]
        rows.append(row)
        lines += sample_lines(model, "qa", preds, refs, lat)
    record = RunRecord(run_id="run-available", created_at="2026-12-01T00:00:00+00:00", command="test",
                       environment={"hostname": "h"}, settings={"batch_size": 1, "setting": "latency"}, rows=rows)
    path = write_run(record, root)
    write_samples(path.parent, lines)
    return path.parent


def _verdict(run: Path):
    [task] = build_comparison(load_runs([str(run)])).tasks
    d = task.verdict.smallest_decision
    assert d.outcome == NI_UNDECIDED and d.examples_needed > 5, d
    return d, task.verdict.text


def test_compare_says_no_test_on_what_the_task_holds_could_decide(tmp_path):
    d, text = _verdict(_compare_run(tmp_path, 5, {"small": 5, "large": 5}))
    assert d.available == 5
    assert (f"about {d.examples_needed:,} examples would decide, more than the 5 the task holds (the rows share "
            "5): a paired test on 5 cannot reach the level at all; only a larger test set would") in text


def test_compare_names_what_the_task_holds_past_a_limit(tmp_path):
    d, text = _verdict(_compare_run(tmp_path, 5, {"small": 5000, "large": 8000}))
    assert d.available == 5000 and d.examples_needed <= 5000
    assert f"about {d.examples_needed:,} examples would decide (the rows share 5; the task holds 5,000)" in text
    assert BEYOND not in text


def test_compare_keeps_the_old_wording_when_a_row_does_not_say(tmp_path):
    d, text = _verdict(_compare_run(tmp_path, 5, {"small": 5000}))
    assert d.available is None
    assert f"about {d.examples_needed:,} examples would decide (the rows share 5))" in text
    assert "task holds" not in text


def test_llmbench_compare_prints_it(tmp_path, capsys, monkeypatch):
    from llmbench.cli import main
    from llmbench.cli.console import err, out

    monkeypatch.setenv("COLUMNS", "220")
    run = _compare_run(tmp_path, 5, {"small": 5, "large": 5})
    out.cache_clear()  # a fresh Console pair: it reads COLUMNS, and takes capsys's streams, when created
    err.cache_clear()
    try:
        main(["compare", str(run)])
    finally:
        out.cache_clear()
        err.cache_clear()
    printed = capsys.readouterr().out
    [line] = [x for x in printed.split("\nverdicts\n", 1)[1].splitlines() if x.startswith("qa: ")]
    assert "examples would decide, more than the 5 the task holds (the rows share 5)" in line
    assert line.endswith("a paired test on 5 cannot reach the level at all; only a larger test set would)")


def _set_available(run: Path, available) -> Path:
    path = run / "run.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    for row in data["rows"]:
        row["task"]["available"] = available
    path.write_text(json.dumps(data), encoding="utf-8")
    return run


def _gate(tmp_path, base_available, cand_available, rules):
    base = _set_available(make_run(tmp_path, "base", correct=range(36)), base_available)  # 40 questions
    cand = _set_available(make_run(tmp_path, "cand", correct=range(34)), cand_available)  # 2 of 40 flipped
    [check] = [c for c in evaluate(read_run(base), read_run(cand), parse_rules(rules)).checks
               if c.metric == "quality.exact_match"]
    assert check.status == UNDECIDED and check.examples_needed > 40, check
    return check


@pytest.mark.parametrize("rules, have", [(["quality.*:-2%"], "this run has 40"),
                                         (["quality.exact_match:noninferior:90%"], "the rows share 40")])
def test_gate_says_how_often_all_the_task_holds_would_decide(tmp_path, rules, have):
    check = _gate(tmp_path, 40, 5000, rules)  # the fewer of the two rows counts
    assert check.available == 40
    from llmbench.stats.noninferiority import power_at

    chance = power_at(40, check.examples_needed, 0.95)  # the gate's default significance, 0.05
    assert (f"about {check.examples_needed:,} examples would decide, more than the 40 the task holds ({have}): "
            f"all 40 would decide in about {chance:.0%} of runs") in check.message
    assert check.message.endswith(BEYOND) == (chance < 0.2)


@pytest.mark.parametrize("rules, have", [(["quality.*:-2%"], "this run has 40"),
                                         (["quality.exact_match:noninferior:90%"], "the rows share 40")])
def test_gate_names_what_the_task_holds_past_a_limit(tmp_path, rules, have):
    check = _gate(tmp_path, 1000, 1000, rules)
    assert check.available == 1000 and check.examples_needed <= 1000
    assert check.message.endswith(f"about {check.examples_needed:,} examples would decide ({have}; the task holds "
                                  "1,000)")
    assert BEYOND not in check.message


def test_gate_keeps_the_old_wording_without_available(tmp_path):
    check = _gate(tmp_path, None, 1000, ["quality.*:-2%"])
    assert check.available is None
    assert check.message.endswith(f"about {check.examples_needed:,} examples would decide (this run has 40)")


def test_gate_latency_checks_do_not_read_available(tmp_path):
    base = _set_available(make_run(tmp_path, "base", latency_noise=2.0), 40)
    cand = _set_available(make_run(tmp_path, "cand", latency_noise=2.0, latency_scale=1.5, latency_seed=1), 40)
    [check] = evaluate(read_run(base), read_run(cand), parse_rules(["latency.ttft_s.p50:+10%"])).checks
    assert check.status == UNDECIDED and check.examples_needed > 40 and check.available is None
    assert check.message.endswith(f"about {check.examples_needed:,} timings per side would decide (this run has 40)")


# ---- reading a record ----------------------------------------------------------------------------------

ROW = "row 1 (tiny-model / qa)"


@pytest.mark.parametrize("bad, shown", [(-1, "-1"), (True, "true"), ("48", '"48"'), (4.5, "4.5"), (2**53, str(2**53)),
                                        ([48], "[48]")])
def test_a_row_whose_available_is_not_a_count_is_refused(tmp_path, bad, shown):
    run = _set_available(make_run(tmp_path, "bad"), bad)
    with pytest.raises(UserError) as exc:
        read_run(run)
    assert f"{ROW}: task.available must be a count (an integer from 0) or null, got {shown}" in str(exc.value)


@pytest.mark.parametrize("good", [None, 40, 1000])  # at least task.n (40)
def test_a_count_or_null_is_read_as_it_is(tmp_path, good):
    assert read_run(_set_available(make_run(tmp_path, "ok"), good)).rows[0].task["available"] == good


def test_available_below_n_is_refused_when_read(tmp_path):
    # a row claiming its task holds 3 examples while it ran 40 is inconsistent (task_entry never writes one):
    # one clear line instead of a gate message built on it
    run = _set_available(make_run(tmp_path, "odd"), 3)
    with pytest.raises(UserError) as exc:
        read_run(run)
    assert "task.available (3) is below task.n (40)" in str(exc.value)
    assert read_run(_set_available(make_run(tmp_path, "even"), 40)).rows[0].task["available"] == 40
