"""Merging rows of several runs: which row wins, samples kept per row, comparability warnings."""

from __future__ import annotations

from report_fixtures import RUN_LARGE, RUN_SMALL, environment, make_row_and_samples, two_runs, write_record

from llmbench.records import RunRecord
from llmbench.records.store import read_run
from llmbench.report.merge import load_runs, merge_records


def test_two_runs_merge_with_samples(tmp_path):
    merged = load_runs([str(p) for p in two_runs(tmp_path)])
    assert merged.run_ids == [RUN_SMALL, RUN_LARGE]
    assert merged.tasks() == ["translation-en-fr", "summarization"]
    assert {(r.model, r.task) for r in merged.rows} == {
        ("smollm2-135m", "translation-en-fr"), ("smollm2-135m", "summarization"),
        ("gemma3-270m", "translation-en-fr"), ("gemma3-270m", "summarization"),
        ("gemma3-1b", "translation-en-fr")}
    row = next(r for r in merged.rows if r.model == "gemma3-270m" and r.task == "summarization")
    assert row.run_id == RUN_LARGE and len(row.samples) == 10 and row.samples[0]["model"] == "gemma3-270m"
    assert merged.notes == []  # same machine, versions and settings


def test_glob_and_latest(tmp_path):
    two_runs(tmp_path)
    assert load_runs([str(tmp_path / "2025*")]).run_ids == [RUN_SMALL, RUN_LARGE]
    assert load_runs([], results_dir=tmp_path).run_ids == [RUN_LARGE]


def _record(run_id: str, rows, env=None) -> RunRecord:
    return RunRecord(run_id, "", "", env or environment(), {}, rows)


def test_later_run_wins_but_never_with_a_failure():
    from report_fixtures import failed_row

    ok, samples = make_row_and_samples("gemma3-270m", "summarization")
    ok2, samples2 = make_row_and_samples("gemma3-270m", "summarization", seed=5)
    merged = merge_records([(_record("20250101-a", [ok]), samples), (_record("20250102-b", [ok2]), samples2)])
    assert [r.run_id for r in merged.rows] == ["20250102-b"]
    assert any("appears in 20250101-a and 20250102-b" in n for n in merged.notes)

    failed = failed_row("gemma3-270m", "summarization")
    merged = merge_records([(_record("20250103-c", [failed]), []), (_record("20250101-a", [ok]), samples)])
    assert merged.rows[0].run_id == "20250101-a" and merged.rows[0].ok
    assert any("kept the finished row" in n for n in merged.notes)


def test_warns_about_different_machines_and_versions(tmp_path):
    write_record(tmp_path, RUN_SMALL, ["smollm2-135m"], ["summarization"])
    write_record(tmp_path, RUN_LARGE, ["gemma3-270m"], ["summarization"],
                 env=environment(hostname="other-box", torch="2.6.0"))
    merged = load_runs([str(tmp_path / RUN_SMALL), str(tmp_path / RUN_LARGE)])
    assert any("hostname" in n and "other-box" in n for n in merged.notes)
    assert any("torch" in n and "2.6.0" in n for n in merged.notes)


def test_warns_about_different_settings_and_devices(tmp_path):
    a = write_record(tmp_path, RUN_SMALL, ["smollm2-135m"], ["summarization"])
    b = write_record(tmp_path, RUN_LARGE, ["gemma3-270m"], ["summarization"])
    rec = read_run(b)
    rec.settings["max_new_tokens"] = 256
    rec.rows[0].model["device"] = "cuda"
    from llmbench.records.store import write_run

    write_run(rec, tmp_path)
    notes = load_runs([str(a), str(b)]).notes
    assert any("max_new_tokens" in n for n in notes)
    assert any("different devices" in n for n in notes)


def test_warns_when_one_run_swept_or_set_the_budget_and_the_other_did_not(tmp_path):
    from llmbench.records.store import write_run

    a = write_record(tmp_path, RUN_SMALL, ["smollm2-135m"], ["summarization"])
    b = write_record(tmp_path, RUN_LARGE, ["gemma3-270m"], ["summarization"])
    assert not any("settings.new_tokens" in n for n in load_runs([str(a), str(b)]).notes)  # neither set it
    rec = read_run(b)
    rec.settings["new_tokens"] = [16]  # --new-tokens 16 in one run only: its answers are capped at 16 tokens
    rec.settings["batch_sizes"] = [1, 4]
    write_run(rec, tmp_path)
    notes = load_runs([str(a), str(b)]).notes
    assert "runs differ in settings.new_tokens: None, [16]" in notes
    assert "runs differ in settings.batch_sizes: None, [1, 4]" in notes
