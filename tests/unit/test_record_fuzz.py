"""Readers never trace back: hand-picked hostile records, then a seeded fuzz pass (tests/unit/record_fuzz.py)
through compare, export (csv, md, html, latex, json), gate (with its Markdown and JUnit files), baseline save
and plot: exit 0-3, never a traceback, exit 2 with one line ``error: ...``, and exports stay safe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_checks import one_line_error
from record_fuzz import RAW_BIG_FLOAT, RAW_BIG_INT, RAW_DEEP, RAW_HUGE_INT, run_cases, run_cli
from report_fixtures import two_runs

FAST_CASES = 1100  # N of the fast pass: 55 per chart-drawing command (html, plot), 110 per other one
SLOW_CASES = 5500


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz-base")
    two_runs(root)
    return root


def _splice(run: Path, old: str, new: str, name: str = "run.json") -> None:
    path = run / name
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _commands(runs: list[Path], tmp_path: Path) -> list[list[str]]:
    a, b = map(str, runs)
    return [["compare", a, b, "--resamples", "0"],
            *[["export", a, b, "-f", f, "-o", str(tmp_path / f"r.{f}"), "--resamples", "0"]
              for f in ("csv", "md", "html", "latex", "json")],
            ["gate", "--baseline", b, "--candidate", b], ["plot", a, b, "-o", str(tmp_path / "p"), "--format", "png"],
            ["baseline", "save", b, "--name", "x", "--dir", str(tmp_path / "bl")]]


@pytest.mark.parametrize("old, new, fragment", [
    ('"parameters": 268098176', f'"parameters": {RAW_HUGE_INT}', "model.parameters must be a positive number"),
    ('"parameters": 268098176', f'"parameters": {RAW_BIG_INT}', "model.parameters must be a positive number"),
    ('"load_time_s": 1.5', f'"load_time_s": {RAW_BIG_FLOAT}', "model.load_time_s must be a finite number"),
    ('"load_time_s": 1.5', '"load_time_s": NaN', "model.load_time_s must be a finite number"),
    ('"load_time_s": 1.5', f'"load_time_s": {RAW_DEEP}', "nested deeper than 64 levels"),
    ('"load_time_s": 1.5', '"load_time_s": ' + "[" * 70 + "]" * 70, "nested deeper than 64 levels"),
    ('"n": 12', '"n": "12"', "task.n must be a count"),
    ('"dtype": "float32"', '"dtype": 32', "model.dtype must be a string or null"),
    ('"scale": "0-100"', '"scale": ["0-100"]', "scale must be a string or null"),
    ('"rows": [', '"rows": [7, ', "a row must be an object"),
])
def test_hostile_run_json_is_one_line_for_every_command(tmp_path, old, new, fragment):
    runs = two_runs(tmp_path / "results")
    _splice(runs[1], old.replace(": ", ": ", 1), new)
    for args in _commands(runs, tmp_path):
        code, _, err, escaped = run_cli(args)
        assert escaped is None, escaped
        one_line_error(code, err, fragment)


@pytest.mark.parametrize("edit, fragment", [
    (lambda lines: lines + [lines[0]], "is already on line 1"),
    (lambda lines: [lines[0].replace('"index": 0', f'"index": {RAW_HUGE_INT}')] + lines[1:], "index must be"),
    (lambda lines: [lines[0].replace('"index": 0', '"index": -1')] + lines[1:], "index must be an example's"),
    (lambda lines: [lines[0].replace('"ttft_s": ', f'"ttft_s": {RAW_BIG_FLOAT}, "x": ')] + lines[1:],
     "ttft_s must be a finite number"),
    (lambda lines: [lines[0].replace('"references": [', '"references": [1, ')] + lines[1:],
     "references must be a list of strings"),
    (lambda lines: [lines[0].replace('"prompt": ', f'"deep": {RAW_DEEP}, "prompt": ')] + lines[1:],
     "nested deeper than 64 levels"),
])
def test_hostile_samples_are_one_line_naming_the_line(tmp_path, edit, fragment):
    runs = two_runs(tmp_path / "results")
    path = runs[1] / "samples.jsonl"
    path.write_text("\n".join(edit(path.read_text(encoding="utf-8").splitlines())) + "\n", encoding="utf-8")
    for args in _commands(runs, tmp_path)[:-1]:  # baseline save copies samples without reading them
        code, _, err, escaped = run_cli(args)
        assert escaped is None, escaped
        one_line_error(code, err, fragment)
        assert "samples.jsonl:" in err


def test_a_large_record_is_read_with_a_progress_line(tmp_path, monkeypatch):
    from llmbench.records import store

    runs = two_runs(tmp_path / "results")
    monkeypatch.setattr(store, "LARGE_RECORD_BYTES", 1000)
    code, _, err, _ = run_cli(["export", *map(str, runs), "-f", "json", "-o", str(tmp_path / "r.json")])
    assert code == 0, err
    assert f"reading run record {runs[0] / 'run.json'} (" in err and "MiB)..." in err
    assert f"reading samples {runs[1] / 'samples.jsonl'} (" in err
    code, _, err, _ = run_cli(["gate", "--baseline", str(runs[0]), "--candidate", str(runs[0])])
    assert err.count("reading run record") == 2 and err.count("reading samples") == 2
    monkeypatch.setattr(store, "LARGE_RECORD_BYTES", 10**9)
    code, _, err, _ = run_cli(["export", *map(str, runs), "-f", "json", "-o", str(tmp_path / "r2.json")])
    assert "reading" not in err


def test_fuzzed_records_never_trace_back(base, tmp_path):
    n, failures = run_cases(base, tmp_path, range(FAST_CASES))
    assert n == FAST_CASES
    assert not failures, f"{len(failures)} of {n} cases failed:\n" + "\n".join(failures[:5])


@pytest.mark.slow
def test_fuzzed_records_never_trace_back_bigger_pass(base, tmp_path):
    n, failures = run_cases(base, tmp_path, range(100_000, 100_000 + SLOW_CASES))
    assert not failures, f"{len(failures)} of {n} cases failed:\n" + "\n".join(failures[:5])


def test_the_fuzz_checks_catch_what_they_look_for():
    from record_fuzz import csv_problems, markdown_problems

    assert csv_problems('a,b\n=1+1,-0.5\n"\t=x",3\n') == ["=1+1", "\t=x"]
    assert markdown_problems("> **Warning:** x\n| <b> |\n") == ["| <b> |"]
    assert json.loads('{"a": 1}') == {"a": 1}
