"""Bad input to `llmbench compare / export / plot`: one line `error: ...`, exit code 2, never a traceback;
outputs never replace the records they read."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cli_checks import edit_run, one_line_error
from report_fixtures import RUN_LARGE, RUN_SMALL, two_runs, write_record

from llmbench.cli import main

TASKS = ["translation-en-fr", "summarization"]


@pytest.fixture
def runs(tmp_path) -> list[Path]:
    return two_runs(tmp_path / "results")


def _main(args, capsys):
    from llmbench.cli.console import err, out

    out.cache_clear()
    err.cache_clear()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err



# ---- 1. outputs never replace inputs -------------------------------------------------------------

@pytest.mark.parametrize("name, fmt", [("run.json", None), ("samples.jsonl", "csv"), ("run.json", "md")])
def test_export_refuses_to_overwrite_its_input(runs, capsys, name, fmt):
    target = runs[0] / name
    before = target.read_bytes()
    args = ["export", *runs, "-o", target] + (["-f", fmt] if fmt else [])
    code, _, err = _main(args, capsys)
    one_line_error(code, err, "refusing to write")
    assert target.read_bytes() == before


def test_export_refuses_other_spellings_and_links(runs, capsys, tmp_path):
    before = (runs[1] / "run.json").read_bytes()
    spelled = runs[1] / ".." / runs[1].name / "run.json"
    code, _, err = _main(["export", *runs, "-o", spelled], capsys)
    one_line_error(code, err, "refusing to write")
    link = tmp_path / "report.json"
    link.symlink_to(runs[1] / "run.json")
    code, _, err = _main(["export", *runs, "-o", link], capsys)
    one_line_error(code, err, "refusing to write")
    assert (runs[1] / "run.json").read_bytes() == before


def test_plot_into_a_run_directory_never_replaces_its_record(runs, capsys):
    before = (runs[0] / "run.json").read_bytes()
    (runs[0] / "summarization.svg").symlink_to("run.json")
    code, _, err = _main(["plot", *runs, "-o", runs[0]], capsys)
    one_line_error(code, err, "refusing to write")
    assert (runs[0] / "run.json").read_bytes() == before


# ---- 2. malformed records -------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["compare", "export", "plot"])
@pytest.mark.parametrize("value, fragment", [
    (None, "quality 'bleu' must be an object"),
    ("high", "quality 'bleu' must be an object"),
    ({"value": "high", "higher_is_better": True}, "quality 'bleu' value must be a finite number"),
    ({"value": float("nan"), "higher_is_better": True}, "quality 'bleu' value must be a finite number"),
])
def test_bad_quality_entry_is_one_line(runs, capsys, tmp_path, command, value, fragment):
    edit_run(runs[0], lambda d: d["rows"][0]["quality"].__setitem__("bleu", value))
    out = {"compare": [], "export": ["-o", tmp_path / "r.md"], "plot": ["-o", tmp_path / "plots"]}[command]
    code, _, err = _main([command, *runs, "--resamples", "0", *out], capsys)
    one_line_error(code, err, fragment)
    assert "row 1 (smollm2-135m / translation-en-fr)" in err and str(runs[0] / "run.json") in err


def test_missing_model_name_is_one_line(runs, capsys):
    edit_run(runs[1], lambda d: d["rows"][0]["model"].pop("name"))
    code, _, err = _main(["compare", *runs], capsys)
    one_line_error(code, err, "model has no name")


# ---- 3. no rows -----------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["compare", "export", "plot"])
def test_a_run_without_rows_is_exit_2(runs, capsys, tmp_path, command):
    edit_run(runs[0], lambda d: d.__setitem__("rows", []))
    out = {"compare": [], "export": ["-o", tmp_path / "r.md"], "plot": ["-o", tmp_path / "plots"]}[command]
    code, _, err = _main([command, runs[0], *out], capsys)
    one_line_error(code, err, f"no rows in {runs[0]}")
    assert not (tmp_path / "r.md").exists() and not (tmp_path / "plots").exists()


def test_an_empty_run_among_others_is_skipped_with_a_warning(runs, capsys, tmp_path):
    empty = write_record(tmp_path / "results", "20250303-120000-empty", [], TASKS)
    code, out, err = _main(["compare", *runs, empty, "--resamples", "0"], capsys)
    assert code == 0 and "has no rows; skipped" in err and "translation-en-fr" in out


# ---- 4. samples.jsonl that cannot be read -----------------------------------------------------------

@pytest.mark.parametrize("command", ["compare", "export"])
def test_samples_not_utf8_is_one_line(runs, capsys, tmp_path, command):
    (runs[0] / "samples.jsonl").write_bytes(b"\xff\xfe\x00garbage\n")
    out = ["-o", tmp_path / "r.md"] if command == "export" else []
    code, _, err = _main([command, *runs, *out], capsys)
    one_line_error(code, err, f"cannot read {runs[0] / 'samples.jsonl'}: not UTF-8 text")


def test_bad_samples_line_names_file_and_line(runs, capsys):
    path = runs[0] / "samples.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:3] + ["{not json"] + lines[3:]) + "\n")
    code, _, err = _main(["compare", *runs], capsys)
    one_line_error(code, err, f"{path}:4: not valid JSON")


# ---- 9. .latex, duplicate plot formats ---------------------------------------------------------------

def test_latex_extension(runs, capsys, tmp_path):
    code, _, err = _main(["export", *runs, "--resamples", "0", "-o", tmp_path / "table.latex"], capsys)
    assert code == 0, err
    assert "\\begin{tabular}" in (tmp_path / "table.latex").read_text()


def test_plot_format_given_twice_writes_once(runs, capsys, tmp_path):
    code, out, err = _main(["plot", *runs, "-o", tmp_path / "p", "--format", "png", "--format", "png"], capsys)
    assert code == 0, err
    assert out.splitlines() == [str(tmp_path / "p" / f"{t}.png") for t in ("translation-en-fr", "summarization")]


# ---- 10. unwritable outputs --------------------------------------------------------------------------

@pytest.mark.parametrize("where, fragment", [
    ("dir", "it is a directory"),
    ("empty", "is empty"),
    ("under-file", "is not a directory"),
])
def test_export_unwritable_output(runs, capsys, tmp_path, where, fragment):
    (tmp_path / "afile").write_text("x")
    output = {"dir": tmp_path, "empty": "", "under-file": tmp_path / "afile" / "r.md"}[where]
    code, _, err = _main(["export", *runs, "-f", "md", "--resamples", "0", "-o", output], capsys)
    one_line_error(code, err, fragment)


@pytest.mark.parametrize("where, fragment", [
    ("file", "is not a directory"),
    ("empty", "is empty"),
    ("under-file", "is not a directory"),
])
def test_plot_unwritable_out_dir(runs, capsys, tmp_path, where, fragment):
    (tmp_path / "afile").write_text("x")
    output = {"file": tmp_path / "afile", "empty": "", "under-file": tmp_path / "afile" / "plots"}[where]
    code, _, err = _main(["plot", *runs, "-o", output], capsys)
    one_line_error(code, err, fragment)


def test_plot_cannot_write_a_file(runs, capsys, tmp_path):
    (tmp_path / "p" / "summarization.png").mkdir(parents=True)  # a directory where a figure goes
    code, _, err = _main(["plot", *runs, "-o", tmp_path / "p"], capsys)
    one_line_error(code, err, f"cannot write {tmp_path / 'p' / 'summarization.png'}")


# ---- 11. the same run twice, the same model twice ----------------------------------------------------------

def test_same_run_twice_says_so(runs, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # warnings name long paths
    copy = tmp_path / "copy" / RUN_SMALL
    shutil.copytree(runs[0], copy)
    code, _, err = _main(["compare", *runs, copy, "--resamples", "0"], capsys)
    assert code == 0
    text = " ".join(err.split())
    assert f"run {RUN_SMALL} is given twice ({runs[0]} and {copy})" in text
    assert f"appears in {RUN_SMALL} and {RUN_SMALL}" not in text
    # the same directory spelled twice is simply one run
    code, _, err = _main(["compare", runs[0], runs[0] / "run.json", "--resamples", "0"], capsys)
    assert code == 0 and "twice" not in err


def test_same_model_twice_in_one_run_says_so(runs, capsys):
    edit_run(runs[1], lambda d: d["rows"].append(d["rows"][0]))
    code, _, err = _main(["compare", runs[1], "--resamples", "0"], capsys)
    assert code == 0
    text = " ".join(err.split())
    assert f"gemma3-270m × translation-en-fr appears twice in run {RUN_LARGE}; using the later row" in text
