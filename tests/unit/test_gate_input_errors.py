"""Bad input to `llmbench gate` and `llmbench baseline save`: exit code 2 with one line, never a pass."""

from __future__ import annotations

import os
import stat

import pytest
from cli_checks import edit_run, one_line_error
from gate_fixtures import make_run

from llmbench.cli import main
from llmbench.errors import UserError
from llmbench.gate import parse_rule, resolve_rules, save_baseline


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    results = tmp_path / "results"
    return {"base": make_run(results, "base", n=12), "same": make_run(results, "same", n=12)}


def run_main(capsys, *args) -> tuple[int, str, str]:
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err



# ---- 2. a quality value that is not a number is bad input, not "missing" ------------------------------

@pytest.mark.parametrize("value", ["high", [1], {"x": 1}])
def test_string_quality_value_exits_2(runs, capsys, value):
    edit_run(runs["same"], lambda d: d["rows"][0]["quality"]["exact_match"].__setitem__("value", value))
    code, _, err = run_main(capsys, "gate", "--baseline", runs["base"], "--candidate", runs["same"])
    one_line_error(code, err, "row 1 (tiny-model / qa): quality 'exact_match' value must be a finite number")


def test_samples_not_utf8_exits_2(runs, capsys):
    (runs["same"] / "samples.jsonl").write_bytes(b"\xff\xfe\n")
    code, _, err = run_main(capsys, "gate", "--baseline", runs["base"], "--candidate", runs["same"])
    one_line_error(code, err, "samples.jsonl: not UTF-8 text")


# ---- 5. [tool.llmbench.gate] in pyproject.toml ------------------------------------------------------

@pytest.mark.parametrize("toml, fragment", [
    ("[tool.llmbench.gate]\nrules = []\n", "'rules' is empty"),
    ('[tool.llmbench.gate]\nrulez = ["quality.*:0"]\n',
     "unknown key 'rulez' (did you mean 'rules'?) in [tool.llmbench.gate]; known keys: rules, significance"),
    ("[tool.llmbench]\ngate = 3\n", "[tool.llmbench] gate must be a table"),
    ('[tool]\nllmbench = "x"\n', "tool.llmbench must be a table"),
])
def test_bad_pyproject_gate_config(runs, capsys, tmp_path, toml, fragment):
    (tmp_path / "pyproject.toml").write_text(toml)
    with pytest.raises(UserError) as exc:
        resolve_rules(directory=tmp_path)
    assert fragment in str(exc.value)
    code, _, err = run_main(capsys, "gate", "--baseline", runs["base"], "--candidate", runs["same"])
    one_line_error(code, err, fragment)


def test_unknown_key_is_reported_even_with_rules_on_the_command_line(runs, capsys, tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.llmbench.gate]\nsignificanse = 0.1\n")
    code, _, err = run_main(capsys, "gate", "--baseline", runs["base"], "--candidate", runs["same"],
                            "--rule", "quality.*:0")
    one_line_error(code, err, "unknown key 'significanse' (did you mean 'significance'?)")


# ---- 6. amounts must be finite --------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["quality.f1:1e400", "latency.ttft_s.p50:+1e999%", "memory.peak_rss_bytes:9e9999"])
def test_infinite_amounts_are_rejected(text):
    with pytest.raises(UserError, match="too large to be a finite number"):
        parse_rule(text)


def test_infinite_amount_exits_2(runs, capsys):
    code, _, err = run_main(capsys, "gate", "--baseline", runs["base"], "--candidate", runs["same"],
                            "--rule", "quality.exact_match:1e400")
    one_line_error(code, err, "too large to be a finite number")


# ---- outputs never replace the records -----------------------------------------------------------------

def test_markdown_over_the_candidate_record_is_refused(runs, capsys):
    before = (runs["same"] / "run.json").read_bytes()
    code, _, err = run_main(capsys, "gate", "--baseline", runs["base"], "--candidate", runs["same"],
                            "--markdown", runs["same"] / "run.json")
    one_line_error(code, err, "refusing to write")
    assert (runs["same"] / "run.json").read_bytes() == before


def test_unwritable_markdown(runs, capsys, tmp_path):
    (tmp_path / "afile").write_text("x")
    code, _, err = run_main(capsys, "gate", "--baseline", runs["base"], "--candidate", runs["same"],
                            "--markdown", tmp_path / "afile" / "gate.md")
    afile = tmp_path / "afile"
    one_line_error(code, err, f"cannot write {afile / 'gate.md'}: {afile} is not a directory")


# ---- 7, 8, 10. baseline save ---------------------------------------------------------------------------

def test_save_refuses_a_run_without_rows(runs, capsys, tmp_path):
    edit_run(runs["base"], lambda d: d.__setitem__("rows", []))
    code, _, err = run_main(capsys, "baseline", "save", runs["base"], "--name", "main")
    one_line_error(code, err, f"no rows in {runs['base']}")
    assert not (tmp_path / "results" / "baselines").exists()


def test_save_refuses_a_run_without_samples(runs, capsys, tmp_path):
    (runs["base"] / "samples.jsonl").unlink()
    code, _, err = run_main(capsys, "baseline", "save", runs["base"], "--name", "main")
    one_line_error(code, err, "has no samples.jsonl")
    assert not (tmp_path / "results" / "baselines").exists()


@pytest.mark.parametrize("content, fragment", [(b"\xff\xfe\n", "not UTF-8 text"), (b"{oops\n", ":1: not valid JSON")])
def test_save_refuses_unreadable_samples(runs, capsys, tmp_path, content, fragment):
    (runs["base"] / "samples.jsonl").write_bytes(content)
    code, _, err = run_main(capsys, "baseline", "save", runs["base"], "--name", "main")
    one_line_error(code, err, fragment)
    assert not (tmp_path / "results" / "baselines").exists()


@pytest.mark.parametrize("where, fragment", [("under-file", "afile is not a directory"), ("empty", "--dir is empty")])
def test_save_unwritable_directory(runs, capsys, tmp_path, where, fragment):
    (tmp_path / "afile").write_text("x")
    directory = {"under-file": tmp_path / "afile" / "bl", "empty": ""}[where]
    code, _, err = run_main(capsys, "baseline", "save", runs["base"], "--name", "main", "--dir", directory)
    one_line_error(code, err, fragment)


def test_saved_copies_get_the_usual_mode(runs, tmp_path):
    for f in ("run.json", "samples.jsonl"):
        os.chmod(runs["base"] / f, 0o600)  # e.g. written by an older llmbench through mkstemp
    old = os.umask(0o022)
    try:
        save_baseline(runs["base"], "main", tmp_path / "bl")
        save_baseline(runs["same"], "main", tmp_path / "bl", force=True)
        os.chmod(runs["same"] / "run.json", 0o600)
        save_baseline(runs["same"], "main", tmp_path / "bl", force=True)
    finally:
        os.umask(old)
    for f in ("run.json", "samples.jsonl"):
        assert stat.S_IMODE((tmp_path / "bl" / "main" / f).stat().st_mode) == 0o644


@pytest.mark.parametrize("name", ["gate.rules", "gate.toml"])
def test_rules_file_not_utf8(tmp_path, name):
    (tmp_path / name).write_bytes(b"\xff\xfequality.*:0\n")
    with pytest.raises(UserError, match="not UTF-8 text"):
        resolve_rules(rules_file=tmp_path / name, directory=tmp_path)
