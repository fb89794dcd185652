"""llmbench.records.store: validation when reading records and samples, file modes, output-path helpers."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from report_fixtures import write_record

from llmbench.errors import UserError
from llmbench.records import RunRecord
from llmbench.records.output_files import refuse_overwrite, write_output
from llmbench.records.store import (
    expand_run_refs,
    read_run,
    read_samples,
    write_run,
    write_samples,
)

RUN = "20250301-120000-valid"


@pytest.fixture
def run_dir(tmp_path) -> Path:
    return write_record(tmp_path / "results", RUN, ["smollm2-135m"], ["translation-en-fr"])


def _edit(run_dir: Path, change) -> Path:
    path = run_dir / "run.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return path


def _row(data) -> dict:
    return data["rows"][0]


def _set(d: dict, key: str, value):
    d[key] = value


ROW = "row 1 (smollm2-135m / translation-en-fr)"


@pytest.mark.parametrize("change, fragment", [
    (lambda d: _set(_row(d)["quality"], "bleu", None), f"{ROW}: quality 'bleu' must be an object"),
    (lambda d: _set(_row(d)["quality"], "bleu", "high"), f"{ROW}: quality 'bleu' must be an object"),
    (lambda d: _set(_row(d)["quality"]["bleu"], "value", "high"), f"{ROW}: quality 'bleu' value must be a finite"),
    (lambda d: _set(_row(d)["quality"]["bleu"], "value", [1]), f"{ROW}: quality 'bleu' value must be a finite"),
    (lambda d: _set(_row(d)["quality"]["bleu"], "value", True), f"{ROW}: quality 'bleu' value must be a finite"),
    (lambda d: _set(_row(d)["quality"]["bleu"], "ci_low", "x"), f"{ROW}: quality 'bleu' ci_low must be a finite"),
    (lambda d: _set(_row(d)["quality"]["bleu"], "higher_is_better", "no"), "higher_is_better must be true or false"),
    (lambda d: _row(d).pop("model"), "row 1 (? / translation-en-fr): has no model"),
    (lambda d: _row(d).pop("task"), "row 1 (smollm2-135m / ?): has no task"),
    (lambda d: _row(d)["model"].pop("name"), "row 1 (? / translation-en-fr): model has no name"),
    (lambda d: _set(_row(d)["task"], "name", ""), "row 1 (smollm2-135m / ?): task has no name"),
    (lambda d: _set(_row(d)["task"], "name", 3), "task.name must be a string"),
    (lambda d: _set(_row(d), "model", "smollm2"), "model must be an object"),
    (lambda d: _set(_row(d)["model"], "parameters", "lots"), "model.parameters must be a positive number"),
    (lambda d: _set(_row(d)["model"], "parameters", -5), "model.parameters must be a positive number"),
    (lambda d: _set(_row(d)["model"], "parameters", float("nan")), "model.parameters must be a positive number"),
    (lambda d: _set(_row(d)["model"], "parameters", float("inf")), "model.parameters must be a positive number"),
    (lambda d: _set(_row(d)["memory"], "peak_rss_bytes", float("inf")), "memory.peak_rss_bytes must be a finite"),
    (lambda d: _set(_row(d)["latency"]["tpot_s"], "p50", float("nan")), "latency.tpot_s.p50 must be a finite"),
    (lambda d: _set(_row(d)["quality"]["bleu"], "ci_high", float("inf")), "quality 'bleu' ci_high must be a finite"),
    (lambda d: _set(_row(d), "status", "weird"), 'status must be "ok" or "failed"'),
    (lambda d: _set(_row(d), "latency", []), "latency must be an object"),
    (lambda d: _set(_row(d)["latency"]["ttft_s"], "p50", "fast"), "latency.ttft_s.p50 must be a finite number"),
    (lambda d: _set(_row(d)["latency"], "tokens_per_s", "many"), "latency.tokens_per_s must be a finite number"),
    (lambda d: _set(_row(d)["memory"], "peak_rss_bytes", "1 GB"), "memory.peak_rss_bytes must be a finite number"),
    (lambda d: _set(_row(d)["energy"], "joules_per_sample", "x"), "energy.joules_per_sample must be a finite number"),
    (lambda d: _set(_row(d)["energy"], "available", "yes"), "energy.available must be true or false"),
    (lambda d: _set(d, "rows", {"a": 1}), "rows must be a list of row objects"),
    (lambda d: _set(d, "rows", None), "rows must be a list of row objects"),
    (lambda d: _set(d, "rows", [1, 2]), "row 1: a row must be an object"),
    (lambda d: _set(d, "environment", "linux"), "environment must be an object"),
    (lambda d: _set(d["environment"], "torch", ["2.13"]), "environment.torch must be a string, number or null"),
    (lambda d: _set(d, "run_id", 5), "run_id must be a non-empty string"),
])
def test_bad_values_are_user_errors_naming_file_and_row(run_dir, change, fragment):
    path = _edit(run_dir, change)
    with pytest.raises(UserError) as exc:
        read_run(path)
    assert str(path) in str(exc.value) and fragment in str(exc.value)


def test_null_quality_value_means_not_measured(run_dir):
    _edit(run_dir, lambda d: _set(_row(d)["quality"]["bleu"], "value", None))
    assert read_run(run_dir).rows[0].quality["bleu"]["value"] is None


@pytest.mark.parametrize("version, fragment", [
    (None, "has no schema_version"),
    ("1", "schema_version '1', not an integer"),
    (0, "unknown schema_version 0"),
    (99, "schema_version 99, newer than this llmbench reads"),
])
def test_schema_version(run_dir, version, fragment):
    def change(d):
        if version is None:
            d.pop("schema_version")
        else:
            d["schema_version"] = version

    _edit(run_dir, change)
    with pytest.raises(UserError, match=fragment):
        read_run(run_dir)


def test_run_json_not_utf8(run_dir):
    (run_dir / "run.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(UserError, match="run.json: not UTF-8 text"):
        read_run(run_dir)


def test_samples_that_are_a_directory_are_bad_input_not_no_samples(run_dir):
    (run_dir / "samples.jsonl").unlink()
    assert read_samples(run_dir) == []  # a run without samples (lm-eval rows only) is fine
    (run_dir / "samples.jsonl").mkdir()
    with pytest.raises(UserError, match="samples.jsonl is not a file of samples"):
        read_samples(run_dir)


def test_samples_not_utf8_names_the_file(run_dir):
    (run_dir / "samples.jsonl").write_bytes(b'{"model": "m"}\n\xff\xfe\n')
    with pytest.raises(UserError) as exc:
        read_samples(run_dir)
    assert str(run_dir / "samples.jsonl") in str(exc.value) and "not UTF-8" in str(exc.value)


@pytest.mark.parametrize("line, fragment", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "a sample must be a JSON object"),
    ('{"task": "t", "index": 0}', "the sample has no model name"),
    ('{"model": "m", "task": "t", "index": "0"}', "index must be an integer"),
    ('{"model": "m", "task": "t", "index": 0, "ttft_s": "fast"}', "ttft_s must be a finite number"),
    ('{"model": "m", "task": "t", "index": 0, "scores": {"bleu": "x"}}', "score 'bleu' must be a finite"),
    ('{"model": "m", "task": "t", "index": 0, "batch": "0"}', "batch must be an integer"),
])
def test_bad_sample_line_names_file_and_line(run_dir, line, fragment):
    path = run_dir / "samples.jsonl"
    lines = path.read_text().splitlines()
    lines.insert(2, line)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError) as exc:
        read_samples(run_dir)
    assert str(exc.value).startswith(f"{path}:3: ") and fragment in str(exc.value)


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_written_records_have_the_usual_mode(tmp_path, umask):
    old = os.umask(umask)
    try:
        record = RunRecord(run_id="r", created_at="", command="", environment={})
        path = write_run(record, tmp_path)
        samples = write_samples(path.parent, [{"model": "m", "task": "t", "index": 0}])
    finally:
        os.umask(old)
    for p in (path, samples):
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask


def test_expand_run_refs_drops_the_same_run_spelled_twice(run_dir, monkeypatch):
    monkeypatch.chdir(run_dir.parent)
    paths = expand_run_refs([str(run_dir), RUN, f"./{RUN}/run.json", f"{RUN}/../{RUN}"])
    assert len(paths) == 1


def test_refuse_overwrite(run_dir, tmp_path):
    inputs = [run_dir / "run.json", run_dir / "samples.jsonl"]
    for bad in (run_dir / "run.json", run_dir / ".." / run_dir.name / "samples.jsonl"):
        with pytest.raises(UserError, match="refusing to write"):
            refuse_overwrite(bad, inputs)
    link = tmp_path / "link.json"
    link.symlink_to(run_dir / "run.json")
    with pytest.raises(UserError, match="refusing to write"):
        refuse_overwrite(link, inputs)
    hard = tmp_path / "hard.json"
    os.link(run_dir / "run.json", hard)
    with pytest.raises(UserError, match="refusing to write"):
        refuse_overwrite(hard, inputs)
    refuse_overwrite(run_dir / "report.md", inputs)  # anything else is fine


def test_write_output_errors(tmp_path):
    (tmp_path / "afile").write_text("x")
    cases = [("", "the output path is empty"), (tmp_path, "it is a directory"),
             (tmp_path / "afile" / "out.md", "afile is not a directory"),
             (tmp_path / "afile" / "sub" / "out.md", "afile is not a directory")]
    for path, fragment in cases:
        with pytest.raises(UserError) as exc:
            write_output(path, "text")
        shown = str(path) or "''"
        assert str(exc.value).startswith(f"cannot write {shown}: ") and fragment in str(exc.value)
    assert write_output(tmp_path / "new" / "out.md", "ok").read_text() == "ok"
