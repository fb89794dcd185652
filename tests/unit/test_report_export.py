"""Exports: golden Markdown/CSV/LaTeX, CSV through pandas, JSON, and an HTML report that escapes model text."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import pytest
from report_fixtures import RUN_LARGE, RUN_SMALL, two_runs

from llmbench.errors import UserError
from llmbench.report import build_comparison, load_runs
from llmbench.report.exporters import export, format_for
from llmbench.report.exporters.csv import CSV_COLUMNS
from llmbench.report.exporters.latex import latex_escape
from llmbench.report.format import fmt_bytes, fmt_params, fmt_seconds, fmt_speed

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
UPDATE = os.environ.get("LLMBENCH_UPDATE_GOLDEN") == "1"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    merged = load_runs([str(p) for p in two_runs(out)])
    return merged, build_comparison(merged)


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"missing golden file {path}; run with LLMBENCH_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


@pytest.mark.parametrize("fmt,name", [("md", "report.md"), ("csv", "report.csv"), ("latex", "report.tex")])
def test_golden(report, fmt, name):
    merged, cmp = report
    text = export(cmp, merged, fmt)
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", text), "no timestamps in reproducible exports"
    _check_golden(name, text)


def test_export_is_deterministic(report, tmp_path):
    merged, cmp = report
    again = load_runs([str(p) for p in two_runs(tmp_path)])
    for fmt in ("md", "csv", "latex"):
        assert export(build_comparison(again), again, fmt) == export(cmp, merged, fmt)


def test_csv_round_trips_through_pandas(report):
    pd = pytest.importorskip("pandas")
    merged, cmp = report
    df = pd.read_csv(io.StringIO(export(cmp, merged, "csv")))
    assert list(df.columns[: len(CSV_COLUMNS)]) == CSV_COLUMNS
    assert len(df) == 5  # 2 tasks x 2 models + one failed row
    assert set(df["model"]) == {"smollm2-135m", "gemma3-270m", "gemma3-1b"}
    ok = df[df.status == "ok"]
    assert ok["quality"].notna().all() and ok["parameters"].dtype.kind == "i"
    failed = df[df.status == "failed"].iloc[0]
    assert pd.isna(failed["quality"]) and pd.isna(failed["ttft_p50_s"]), "failed rows are empty, not zero"
    assert "out of memory" in failed["error"]
    row = df[(df.task == "translation-en-fr") & (df.model == "smollm2-135m")].iloc[0]
    assert row["ref_model"] == "gemma3-270m" and row["energy_ratio"] == pytest.approx(0.21 / 0.47, rel=1e-5)
    assert row["metric.bleu"] == pytest.approx(row["quality"])


def test_json_holds_the_merged_rows(report):
    merged, cmp = report
    data = json.loads(export(cmp, merged, "json"))
    assert [r["run_id"] for r in data["runs"]] == [RUN_SMALL, RUN_LARGE]
    assert len(data["rows"]) == 5
    assert {r["status"] for r in data["rows"]} == {"ok", "failed"}
    assert data["comparison"]["tasks"][0]["verdict"]["text"]


def test_markdown_marks_insignificant_and_failed(report):
    merged, cmp = report
    md = export(cmp, merged, "md")
    summ = md.split("## summarization")[1]
    assert "98% †" in summ  # smollm2 vs gemma on ROUGE-L: inside the noise
    trans = md.split("## translation-en-fr")[1].split("## summarization")[0]
    assert "| gemma3-1b | 1B | failed |" in trans
    assert "15% |" in trans and "15% †" not in trans  # a large BLEU gap is significant
    assert ("**Verdict:** no smaller model is proven enough: gemma3-270m has the best ROUGE-L (0.704); "
            "smollm2-135m is undecided (98% of gemma3-270m's ROUGE-L [") in md
    assert "| not enough 15% [" in trans


def test_energy_unavailable_is_na(tmp_path):
    merged = load_runs([str(p) for p in two_runs(tmp_path, energy=False)])
    cmp = build_comparison(merged)
    md = export(cmp, merged, "md")
    for t in cmp.tasks:
        for r in t.results:
            assert r.joules_per_sample is None and r.energy_ratio is None
    assert "| n/a |" in md and " 0 J" not in md


def test_html_escapes_model_text(tmp_path):
    evil = "<script>alert(1)</script>"

    def tamper(preds):
        preds[0] = f"{evil} le chat"
        return preds

    merged = load_runs([str(p) for p in two_runs(tmp_path, tamper=tamper)])
    html = export(build_comparison(merged), merged, "html")
    assert evil not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html.lower()  # the report itself runs no script at all
    assert html.count("data:image/png;base64,") == 2  # one chart per task, embedded
    assert not re.search(r"""(src|href)=["']https?:""", html), "self-contained: nothing fetched"
    assert "Verdict:" in html and "gemma3-1b" in html


def test_html_examples_show_each_models_own_prompt_when_they_differ(tmp_path):
    from llmbench.report.exporters.html import sample_examples

    merged = load_runs([str(p) for p in two_runs(tmp_path)])
    cmp = build_comparison(merged)
    task = cmp.tasks[0]
    [same] = sample_examples(task, 1)
    assert same["prompt_model"] is None and all(o["prompt"] is None for o in same["outputs"])
    models = [o["model"] for o in same["outputs"]]
    templated = "<|im_start|>user\n" + task.samples[models[1]][same["index"]]["prompt"]
    task.samples[models[1]][same["index"]]["prompt"] = templated
    [ex] = sample_examples(task, 1)
    assert ex["prompt_model"] == models[0] and ex["outputs"][1]["prompt"] == templated
    html = export(cmp, merged, "html")
    assert f"prompt ({models[1]})" in html and "&lt;|im_start|&gt;user" in html


def test_html_escapes_model_and_task_names(tmp_path):
    from report_fixtures import RUN_LARGE, write_record

    write_record(tmp_path, RUN_LARGE, ["gemma3-270m"], ["summarization"])
    merged = load_runs([str(tmp_path / RUN_LARGE)])
    merged.rows[0].row.model["name"] = "<b>bold</b>"
    html = export(build_comparison(merged), merged, "html")
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html


def test_format_for():
    assert format_for("x.tex", None) == "latex"
    assert format_for("x.CSV", None) == "csv"
    assert format_for("x.txt", "md") == "md"
    with pytest.raises(UserError):
        format_for("x.txt", None)


def test_formatters():
    assert fmt_params(134515008) == "135M" and fmt_params(999885952) == "1B" and fmt_params(None) == "?"
    assert fmt_params(7_241_732_096) == "7.2B"
    assert fmt_bytes(None) == "n/a" and fmt_bytes(1.52e9) == "1.42 GiB"
    assert fmt_seconds(0.0337) == "33.7 ms" and fmt_seconds(2.5) == "2.5 s" and fmt_seconds(None) == "n/a"
    assert fmt_speed(3.14) == "3.1× faster" and fmt_speed(0.5) == "2.0× slower" and fmt_speed(None) == "n/a"
    assert latex_escape("a_b 50% & 1.8× †") == r"a\_b 50\% \& 1.8$\times$ $^\dagger$"


def test_html_shows_the_roofline_column_and_the_variant_plots(report):
    pytest.importorskip("matplotlib")
    merged, cmp = report
    html = export(cmp, merged, "html")
    assert "<th>% roofline</th>" in html and "<td>25%</td>" in html and "<td>n/a</td>" in html
    assert html.count('<img class="chart"') == len(cmp.tasks)
    assert "against weight bytes held, energy per token and decode tokens/s with the Pareto frontier" in html


def test_hostile_names_stay_text_in_markdown_latex_and_plots(tmp_path):
    """A model name with markup, a line break and LaTeX/mathtext specials: one harmless line everywhere."""
    from report_fixtures import RUN_LARGE, write_record

    from llmbench.report.plots import task_png

    write_record(tmp_path, RUN_LARGE, ["gemma3-270m"], ["summarization"])
    merged = load_runs([str(tmp_path / RUN_LARGE)])
    evil = "m$\\bogus{$<script>x</script>|\n\\input{/etc/passwd}"
    merged.rows[0].row.model["name"] = evil
    cmp = build_comparison(merged)
    md = export(cmp, merged, "md")
    assert "<script>" not in md and "&lt;script&gt;" in md and "\n\\input" not in md
    tex = export(cmp, merged, "latex")
    # no line of the LaTeX starts with live record text: every record line is a cell or a % comment
    assert not any(line.lstrip().startswith("\\input") for line in tex.splitlines())
    assert "\\textbackslash{}input" in tex or "% " in tex
    assert task_png(cmp.tasks[0]).startswith(b"\x89PNG")  # "$" does not start mathtext and crash the chart
