"""Records are shared files: whatever text they hold, no export carries an attack. CSV cells a spreadsheet
would read as a formula are neutralised (numbers stay numbers), Markdown escapes < > & | in every cell, and
names a record may not hold are refused at the CLI and by every reader."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from cli_checks import edit_run, one_line_error
from gate_fixtures import make_run
from record_fuzz import PAYLOADS, csv_problems, markdown_problems, run_cli
from report_fixtures import two_runs

from llmbench.names import LABEL_RE, row_name_problem
from llmbench.report.exporters.csv import csv_text, csv_value
from llmbench.report.format import md_cell, md_code

FORMULAS = ["=HYPERLINK(\"http://evil\",\"click\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\t=1",
            "\r=1", "\n=1", "  =1", "＝1+1", "＋1", "－1", "＠x"]
HTML = "<img src=x onerror=alert(1)> & <script>alert(1)</script> | x"


def test_csv_text_cells_that_read_as_formulas_get_a_quote_and_numbers_stay_numbers():
    for payload in FORMULAS:
        assert csv_text(payload) == "'" + payload.replace("\r", "\n")
        assert csv_value(payload) == "'" + payload.replace("\r", "\n")
    # a carriage return inside a cell: the csv module would leave it unquoted, and a spreadsheet would start a
    # new row there, with "=1" as its first cell
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([csv_text("x\r=1"), csv_text("y\r\n=2")])
    assert out.getvalue() == '"x\n=1","y\n=2"\n'
    for plain in ("smollm2-135m", "a=b", "x-1", "rapl", "", "'quoted"):
        assert csv_text(plain) == plain
    assert csv_value(-0.5) == "-0.5" and csv_value(-3) == "-3" and csv_value(-1.25e-7) == "-1.25e-07"
    assert csv_value(float("nan")) == "" and csv_value(float("-inf")) == "" and csv_value(None) == ""
    assert csv_value(float("inf")) == "inf"  # an unbounded CI end
    np = pytest.importorskip("numpy")
    assert csv_value(np.int64(-4)) == "-4" and csv_value(np.float32(-0.5)) == "-0.5"


def _hostile_runs(tmp_path):
    """The acceptance pair, with record text an attacker controls: an error, a device, an energy method, a
    prediction, a reference, a metric name and the environment."""
    runs = two_runs(tmp_path / "results")

    def change(data):
        failed = data["rows"][-1]
        failed["error"] = FORMULAS[0] + " " + HTML
        for row in data["rows"]:
            row["model"]["device"] = "=cmd|' /C calc'!A0"
            row["model"]["dtype"] = "@SUM(1)"
            row["energy"]["method"] = "+" + HTML
            if row["quality"]:
                row["quality"]["-evil<b>&"] = dict(next(iter(row["quality"].values())))
                first = next(iter(row["quality"]))
                row["quality"][first]["value"] = -0.5  # a negative number: stays a number in the CSV
        data["environment"]["gpu_name"] = "<script>x</script>"

    edit_run(runs[1], change)
    lines = (runs[1] / "samples.jsonl").read_text().splitlines()
    sample = json.loads(lines[0])
    sample["prediction"], sample["references"] = HTML, ["=1+1", HTML]
    (runs[1] / "samples.jsonl").write_text("\n".join([json.dumps(sample)] + lines[1:]) + "\n")
    return runs


@pytest.mark.parametrize("fmt", ["csv", "md", "html", "latex", "json"])
def test_no_export_carries_record_text_as_a_formula_or_markup(tmp_path, fmt):
    runs = _hostile_runs(tmp_path)
    target = tmp_path / f"report.{fmt}"
    code, _, err, escaped = run_cli(["export", *map(str, runs), "-f", fmt, "-o", str(target), "--resamples", "0"])
    assert escaped is None and code == 0, err
    text = target.read_bytes().decode("utf-8")  # as written: no newline translation
    if fmt == "csv":
        assert not csv_problems(text)
        rows = list(csv.DictReader(io.StringIO(text)))
        assert any(r["error"].startswith("'=HYPERLINK") for r in rows)
        assert "'=cmd|' /C calc'!A0" in {r["device"] for r in rows}
        assert any(r["quality"] == "-0.5" for r in rows)  # a number, not a neutralised text
        assert "'metric.-evil<b>&" not in text.splitlines()[0]  # the header starts with "metric."
        pd = pytest.importorskip("pandas")
        frame = pd.read_csv(io.StringIO(text))
        for column in ("quality", "ttft_p50_s", "tpot_p50_s", "parameters", "peak_memory_bytes"):
            assert frame[column].dtype.kind in "if", (column, frame[column].dtype)
        assert frame["quality"].min() == -0.5
    elif fmt == "md":
        assert not markdown_problems(text)
        assert "&lt;img src=x onerror=alert(1)&gt; &amp; &lt;script&gt;" in text and "\\| x" in text
    elif fmt == "html":
        assert "<script" not in text.lower() and "<img src=x" not in text and "<b>" not in text
        assert "&lt;img src=x onerror=alert(1)&gt;" in text
    elif fmt == "latex":
        assert not any(line.startswith(("=", "+", "@")) for line in text.splitlines())
        assert "% warning: runs differ in gpu_name" in text  # record text only in comment lines and cells
    else:
        json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))


def test_gate_markdown_escapes_every_cell_and_note(tmp_path):
    base = make_run(tmp_path, "20250101-000000-base", extra_quality={"x<b>&": {"value": 1.0}},
                    environment={"hostname": "<script>h</script>", "llmbench": "1"})
    cand = make_run(tmp_path, "20250102-000000-cand", failed=(("tiny-model", "qa"),))
    edit_run(cand, lambda d: d["rows"][0].update(error="<img src=x onerror=alert(1)> & =cmd"))
    md = tmp_path / "gate.md"
    code, _, err, escaped = run_cli(["gate", "--baseline", str(base), "--candidate", str(cand), "--markdown",
                                     str(md)])
    assert escaped is None and code == 1, err
    text = md.read_text(encoding="utf-8")
    assert not markdown_problems(text)
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; =cmd" in text and "x&lt;b&gt;&amp;" in text


def test_md_cell_and_md_code():
    assert md_cell("a<b>&c|d\\e\nf") == "a&lt;b&gt;&amp;c\\|d\\\\e f"
    assert md_code("20250101-000000-x") == "`20250101-000000-x`"
    assert md_code("x` <b>") == "x` &lt;b&gt;"  # nothing that could close the code span stays code


@pytest.mark.parametrize("label", ["=cmd", "-x", "@x", "<b>x", "a b", "x|y", "a&b", "_x", "x@c4", "x[int8]"])
def test_a_model_label_follows_the_task_name_rule(tmp_path, label):
    code, _, err, escaped = run_cli(["run", "-m", f"smollm2-135m,name={label}", "--out", str(tmp_path)])
    assert escaped is None
    one_line_error(code, err, "name= must be letters, digits")


def test_a_derived_model_name_that_no_record_could_hold_asks_for_a_label(tmp_path):
    code, _, err, _ = run_cli(["run", "-m", str(tmp_path / "my <model>"), "--out", str(tmp_path)])
    one_line_error(code, err, "give it a label with name=LABEL")


def test_the_label_rule_is_the_task_name_rule():
    from llmbench.tasks.spec import NAME_RE

    assert LABEL_RE.pattern == NAME_RE.pattern


@pytest.mark.parametrize("name", ["smollm2-135m", "smollm2-135m[int8]", "smollm2-135m[torchao-int8,static]",
                                  "smollm2-served@c4", "m@r2", "m@c4r2.5", "m@b4", "m@b4@n64", "lm-eval:hellaswag",
                                  "127.0.0.1:8000", "[::1]:8000", "Qwen2.5-0.5B", "模型-1"])
def test_names_llmbench_writes_stay_valid_in_records(tmp_path, name):
    assert row_name_problem(name) is None
    run = make_run(tmp_path, "20250101-000000-x", rows=((name, "qa"),))
    code, _, err, _ = run_cli(["export", str(run), "-f", "csv", "-o", str(tmp_path / "r.csv"), "--resamples", "0"])
    assert code == 0, err


@pytest.mark.parametrize("name", [p for p in PAYLOADS if row_name_problem(p)] + ["a b", "x" * 201])
def test_every_reader_refuses_a_name_no_record_may_hold(tmp_path, name):
    run = make_run(tmp_path, "20250101-000000-x")
    edit_run(run, lambda d: d["rows"][0]["model"].update(name=name))
    for args in (["compare", str(run)], ["export", str(run), "-f", "md", "-o", str(tmp_path / "r.md")],
                 ["gate", "--baseline", str(run), "--candidate", str(run)],
                 ["baseline", "save", str(run), "--name", "b", "--dir", str(tmp_path / "bl")]):
        code, _, err, escaped = run_cli(args)
        assert escaped is None
        one_line_error(code, err, "model")
        assert re.search(r"row 1", err)


def test_control_characters_in_record_text_never_reach_the_terminal(tmp_path):
    """A failed row's error and the environment may hold terminal escapes (colour, window title, cursor moves),
    a carriage return that overwrites a line, a bell: compare, export and gate show them as U+FFFD."""
    runs = two_runs(tmp_path / "results")
    hostile = "\x1b]0;pwned\x07 \x1b[2J\rspoof\x9b31m\x08"

    def change(data):
        data["rows"][-1]["error"] = "load failed: " + hostile
        data["environment"]["cpu_model"] = hostile
        data["environment"]["cuda"] = "12.\\u001b"  # a backslash, then text: no control character, kept

    edit_run(runs[1], change)
    md = tmp_path / "x.md"
    for args in (["compare", *map(str, runs)], ["export", str(runs[1]), "-o", str(md)],
                 ["gate", "--baseline", str(runs[1]), "--candidate", str(runs[1])]):
        code, stdout, stderr, escaped = run_cli(args)
        shown = stdout + stderr + (md.read_text() if md.exists() else "")
        assert escaped is None and code in (0, 1, 3), (args, code, stderr)
        assert not set("\x1b\x07\r\x08\x9b") & set(shown), (args, [c for c in shown if c in "\x1b\x07\r\x08\x9b"])
    from llmbench.records.store import read_run

    record = read_run(runs[1])
    assert record.rows[-1].error == "load failed: \ufffd]0;pwned\ufffd \ufffd[2J\ufffdspoof\ufffd31m\ufffd"
    assert record.environment["cuda"] == "12.\\u001b"
