"""`llmbench gate` and `llmbench baseline` through click, main() and a real subprocess (exit codes)."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from gate_fixtures import ENVIRONMENT, make_run

from llmbench.cli import cli, main
from llmbench.errors import UserError
from llmbench.gate import DEFAULT_RULES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """A baseline, an identical candidate and one with a large quality drop; cwd is a bare tmp dir."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    results = tmp_path / "results"
    return {
        "base": make_run(results, "base"),
        "same": make_run(results, "same"),
        "drop": make_run(results, "drop", correct=range(8)),
    }


def invoke(*args):
    return CliRunner().invoke(cli, ["gate", *map(str, args)])


def run_main(capsys, *args) -> tuple[int, str, str]:
    try:
        main(["gate", *map(str, args)])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_identical_records_pass(runs):
    result = invoke("--baseline", runs["base"], "--candidate", runs["same"])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output and "built-in defaults" in result.output
    assert "energy unavailable" in result.output


def test_quality_drop_fails_naming_row_and_rule(runs):
    result = invoke("--baseline", runs["base"], "--candidate", runs["drop"])
    assert result.exit_code == 1
    fail_lines = [line for line in result.output.splitlines() if line.startswith("FAIL")]
    assert len(fail_lines) == 1
    assert "tiny-model / qa" in fail_lines[0] and "quality.*:-2%" in fail_lines[0]
    assert "REGRESSION" in result.output


def test_main_exit_codes(runs, capsys):
    assert run_main(capsys, "--baseline", runs["base"], "--candidate", runs["same"])[0] == 0
    code, out, _ = run_main(capsys, "--baseline", runs["base"], "--candidate", runs["drop"])
    assert code == 1 and "REGRESSION" in out


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--rule", "quality.bleu"], "bad rule"),
        (["--rule", "quality.bleu:much"], "not a number"),
        (["--rule", "latency.ttft.p50:+5%"], "unknown metric"),
        (["--rule", "quality.blue:-1"], "did you mean 'bleu'"),
        (["--rules", "absent.rules"], "does not exist"),
        (["--significance", "2"], "between 0 and 1"),
    ],
)
def test_bad_input_is_one_line_exit_2(runs, capsys, extra, fragment):
    code, _, err = run_main(capsys, "--baseline", runs["base"], "--candidate", runs["same"], *extra)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and fragment in err


def test_missing_files_and_unreadable_records_exit_2(runs, capsys, tmp_path):
    code, _, err = run_main(capsys, "--baseline", tmp_path / "nope", "--candidate", runs["same"])
    assert code == 2 and err.count("\n") == 1 and "no run record or baseline named" in err
    code, _, err = run_main(capsys, "--baseline", runs["base"], "--candidate", tmp_path / "nope")
    assert code == 2 and err.count("\n") == 1 and "no run record" in err
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "run.json").write_text("{not json")
    code, _, err = run_main(capsys, "--baseline", runs["base"], "--candidate", tmp_path / "garbage")
    assert code == 2 and err.count("\n") == 1 and "cannot read run record" in err


def test_no_rows_in_common_exit_2(runs, capsys, tmp_path):
    other = make_run(tmp_path / "results", "other", rows=[("other-model", "qa")])
    code, _, err = run_main(capsys, "--baseline", runs["base"], "--candidate", other)
    assert code == 2 and "no model x task rows in common" in err


def test_markdown_and_junit_files(runs, tmp_path):
    md, junit = tmp_path / "out" / "gate.md", tmp_path / "out" / "junit.xml"
    result = invoke("--baseline", runs["base"], "--candidate", runs["drop"], "--markdown", md, "--junit", junit)
    assert result.exit_code == 1
    assert "| Model | Task | Rule |" in md.read_text()
    cases = ET.parse(junit).getroot().findall("./testsuite/testcase")
    assert len(cases) == len(DEFAULT_RULES)
    assert sum(c.find("failure") is not None for c in cases) == 1


def test_junit_parses_whatever_text_the_records_hold(runs, tmp_path):
    """A failed row's error may hold any character JSON can spell (terminal escapes, NUL, a lone surrogate);
    the JUnit file replaces those XML cannot hold, so CI can still parse it."""
    import json

    from llmbench.gate.display import xml_chars

    broken = make_run(tmp_path / "results", "broken", failed=(("tiny-model", "qa"),))
    record = json.loads((broken / "run.json").read_text())
    record["rows"][0]["error"] = "load failed: \x1b[31mboom\x00 \ud800 end"
    (broken / "run.json").write_text(json.dumps(record))
    junit = tmp_path / "junit.xml"
    invoke("--baseline", runs["base"], "--candidate", broken, "--junit", junit)
    root = ET.parse(junit).getroot()  # raises on a character XML cannot hold
    text = ET.tostring(root, encoding="unicode")
    assert "boom" in text and "\x1b" not in text and "\x00" not in text
    assert xml_chars("a\tb\nc\x07d\ufffe") == "a\tb\nc\ufffdd\ufffd"


def test_rules_from_options_and_pyproject_in_cwd(runs, tmp_path):
    slow = make_run(tmp_path / "results", "slow", latency_scale=1.3)
    # defaults (+15% on p50 latency) catch a 30% slowdown
    assert invoke("--baseline", runs["base"], "--candidate", slow).exit_code == 1
    # the project's own pyproject.toml in the working directory loosens it
    (tmp_path / "pyproject.toml").write_text('[tool.llmbench.gate]\nrules = ["latency.ttft_s.p50:+50%"]\n')
    result = invoke("--baseline", runs["base"], "--candidate", slow)
    assert result.exit_code == 0 and "pyproject.toml" in result.output
    # --rule replaces the pyproject rules
    assert invoke("--baseline", runs["base"], "--candidate", slow, "--rule", "latency.e2e_s.p90:+10%").exit_code == 1
    # a rules file as well
    (tmp_path / "ci.rules").write_text("quality.*:-2%\n")
    assert invoke("--baseline", runs["base"], "--candidate", slow, "--rules", "ci.rules").exit_code == 0


def test_strict_and_significance_options(runs, tmp_path):
    near = make_run(tmp_path / "results", "near", correct=range(34))  # -5.6%, only 2 samples differ
    assert invoke("--baseline", runs["base"], "--candidate", near).exit_code == 3  # past the margin, undecided
    assert invoke("--baseline", runs["base"], "--candidate", near, "--undecided", "pass").exit_code == 0
    assert invoke("--baseline", runs["base"], "--candidate", near, "--strict").exit_code == 1
    # the exact sign-flip test on the 2 differing samples: p = 2/2^2 = 0.5
    assert invoke("--baseline", runs["base"], "--candidate", near, "--significance", "0.6").exit_code == 1


def test_warns_about_different_machines(runs, tmp_path):
    elsewhere = make_run(tmp_path / "results", "elsewhere", environment={**ENVIRONMENT, "hostname": "laptop"})
    result = CliRunner().invoke(cli, ["gate", "--baseline", str(runs["base"]), "--candidate", str(elsewhere)])
    assert result.exit_code == 0
    assert "warning" in result.stderr and "hostname" in result.stderr


def test_baseline_save_list_and_gate_by_name(runs, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["baseline", "save", str(runs["base"]), "--name", "main"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "results" / "baselines" / "main" / "run.json").is_file()
    listed = runner.invoke(cli, ["baseline", "list"])
    assert listed.exit_code == 0 and "main" in listed.output and "base" in listed.output
    assert invoke("--baseline", "main", "--candidate", runs["same"]).exit_code == 0
    assert invoke("--baseline", "main", "--candidate", runs["drop"]).exit_code == 1
    again = runner.invoke(cli, ["baseline", "save", str(runs["drop"]), "--name", "main"])
    assert isinstance(again.exception, UserError) and "--force" in str(again.exception)


def test_baseline_save_errors_exit_2(runs, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["baseline", "save", str(runs["base"]), "--name", "../escape"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def _subprocess(args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "llmbench", *map(str, args)], cwd=cwd, env=env, check=False,
                          capture_output=True, text=True, timeout=120)


def test_exit_codes_in_a_subprocess(runs, tmp_path):
    ok = _subprocess(["gate", "--baseline", runs["base"], "--candidate", runs["same"]], tmp_path)
    assert ok.returncode == 0, ok.stderr
    bad = _subprocess(["gate", "--baseline", runs["base"], "--candidate", runs["drop"]], tmp_path)
    assert bad.returncode == 1, bad.stderr
    assert "tiny-model / qa" in bad.stdout and "quality.*:-2%" in bad.stdout
    wrong = _subprocess(["gate", "--baseline", runs["base"], "--candidate", runs["same"], "--rule", "x:1"],
                        tmp_path)
    assert wrong.returncode == 2
    assert wrong.stderr.strip().count("\n") == 0 and "Traceback" not in wrong.stderr


def test_too_few_samples_are_undecided_and_exit_3_not_silently_passed(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "200")
    base = make_run(tmp_path, "base3", n=3, correct={0, 1, 2})
    cand = make_run(tmp_path, "cand3", n=3, correct=set(), latency_scale=3.0)
    md = tmp_path / "gate.md"
    junit = tmp_path / "gate.xml"
    code, out, err = run_main(capsys, "--baseline", base, "--candidate", cand, "--markdown", md, "--junit", junit)
    assert code == 3  # too few samples cannot prove a regression, and the gate does not pass what it could not tell
    verdicts = [line.split()[-1] for line in out.splitlines() if line.startswith(("quality.", "latency."))]
    assert verdicts == ["undecided"] * 3
    assert "UNDECIDED tiny-model / qa: quality.exact_match" in out and "about 6 examples would decide" in out
    assert "UNDECIDED: 3 of 5 checks" in out and "exit 3" in out
    assert "could not fail" in err and "--strict" in err
    assert md.read_text().count("❓ undecided") == 3 and "### Undecided" in md.read_text()
    root = ET.parse(junit).getroot()
    assert [f.get("type") for f in root.iter("failure")] == ["undecided"] * 3
    code, _, _ = run_main(capsys, "--baseline", base, "--candidate", cand, "--undecided", "pass")
    assert code == 0
    code, out, _ = run_main(capsys, "--baseline", base, "--candidate", cand, "--strict")
    assert code == 1


def test_undecided_policy_from_pyproject_and_bad_values(runs, tmp_path, capsys):
    near = make_run(tmp_path / "results", "near", correct=range(34))
    (tmp_path / "pyproject.toml").write_text('[tool.llmbench.gate]\nundecided = "pass"\n')
    code, _, _ = run_main(capsys, "--baseline", runs["base"], "--candidate", near)
    assert code == 0
    (tmp_path / "pyproject.toml").write_text('[tool.llmbench.gate]\nundecided = "pas"\n')
    code, _, err = run_main(capsys, "--baseline", runs["base"], "--candidate", near)
    assert code == 2 and "undecided must be one of fail, pass" in err and "did you mean pass?" in err
    assert err.count("\n") == 1


def test_noninferiority_rule_through_the_cli(runs, tmp_path, capsys):
    rule = ("--rule", "quality.exact_match:noninferior:95%")
    code, out, _ = run_main(capsys, "--baseline", runs["base"], "--candidate", runs["same"], *rule)
    assert code == 0 and "≥95%" in out  # identical answers on 40 questions: proven
    code, out, _ = run_main(capsys, "--baseline", runs["base"], "--candidate", runs["drop"], *rule)
    assert code == 1 and "proven below 95% of the baseline" in out


def test_rules_file_significance_is_used_and_checked(runs, tmp_path, capsys):
    near = make_run(tmp_path / "results", "near2", correct=range(34))  # 2 samples differ: exact p = 0.5
    loose = tmp_path / "loose.toml"
    loose.write_text('rules = ["quality.*:-2%"]\nsignificance = 0.6\n')
    code, _, _ = run_main(capsys, "--baseline", runs["base"], "--candidate", near, "--rules", loose)
    assert code == 1  # p = 0.5 < 0.6 from the rules file
    bad = tmp_path / "bad.toml"
    bad.write_text('rules = ["quality.*:-2%"]\nsignificance = "high"\n')
    code, _, err = run_main(capsys, "--baseline", runs["base"], "--candidate", near, "--rules", bad)
    assert code == 2 and "significance level must be a number" in err and "Traceback" not in err


def test_markdown_and_junit_on_one_path_is_bad_input(runs, tmp_path, capsys):
    same = tmp_path / "out.txt"
    code, _, err = run_main(capsys, "--baseline", runs["base"], "--candidate", runs["same"], "--markdown", same,
                            "--junit", same)
    assert code == 2 and "same file" in err and not same.exists()
