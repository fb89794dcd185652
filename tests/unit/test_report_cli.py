"""`llmbench compare / export / plot` end to end on two runs, without loading torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from report_fixtures import two_runs

from llmbench.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return [str(p) for p in two_runs(tmp_path_factory.mktemp("results"))]


def _main(args, capsys):
    from llmbench.cli.console import err, out

    out.cache_clear()  # a fresh Console per call: it reads COLUMNS when created
    err.cache_clear()
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_compare_prints_tables_and_verdicts(runs, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "220")
    code, out, _ = _main(["compare", *runs], capsys)
    assert code == 0
    assert "translation-en-fr" in out and "summarization" in out
    assert "gemma3-270m (ref)" in out and "failed" in out
    # 98% of the larger model's ROUGE-L by point value, but 10 samples cannot prove it enough
    assert "verdict: no smaller model is proven enough: gemma3-270m has the best ROUGE-L" in out
    assert "smollm2-135m is undecided (98% of gemma3-270m's ROUGE-L [" in out and "examples would decide" in out
    assert "98% †" in out and "undecided 98% [" in out
    # the verdicts again at the end, one line per task
    tail = out.split("\nverdicts\n", 1)[1].splitlines()
    assert [line.split(":")[0] for line in tail] == ["translation-en-fr", "summarization"]


def test_compare_narrow_terminal_splits_columns(runs):
    import io

    from rich.console import Console

    from llmbench.cli.report import _print_task
    from llmbench.report import build_comparison, load_runs

    cmp = build_comparison(load_runs(runs), resamples=0)
    buf = io.StringIO()
    console = Console(file=buf, width=80, soft_wrap=False)
    for t in cmp.tasks:
        _print_task(console, t)
    out = buf.getvalue()
    assert "Energy vs ref" in out and "smollm2-135m" in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_compare_user_errors(runs, capsys, tmp_path):
    code, _, err = _main(["compare", *runs, "--ref", "nope"], capsys)
    assert code == 2 and err.startswith("error: --ref 'nope'") and len(err.strip().splitlines()) == 1
    code, _, err = _main(["compare", str(tmp_path / "missing")], capsys)
    assert code == 2 and "no run record" in err
    code, _, err = _main(["compare", "--results-dir", str(tmp_path)], capsys)
    assert code == 2 and "no runs under" in err


def test_export_all_formats(runs, capsys, tmp_path):
    for fmt, name in [("json", "r.json"), ("csv", "r.csv"), ("md", "r.md"), ("html", "r.html"),
                      ("latex", "r.tex")]:
        code, _, err = _main(["export", *runs, "--format", fmt, "-o", str(tmp_path / name)], capsys)
        assert code == 0, err
        assert (tmp_path / name).stat().st_size > 500
    assert json.loads((tmp_path / "r.json").read_text())["rows"]
    code, out, _ = _main(["export", *runs, "-o", "-", "--format", "csv"], capsys)
    assert code == 0 and out.startswith("task,model,")
    code, _, err = _main(["export", *runs, "-o", str(tmp_path / "r.txt")], capsys)
    assert code == 2 and "--format" in err


def test_plot_writes_png_and_svg(runs, capsys, tmp_path):
    code, out, _ = _main(["plot", *runs, "-o", str(tmp_path / "plots")], capsys)
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "summarization.png", "summarization.svg", "translation-en-fr.png", "translation-en-fr.svg"]
    code, _, _ = _main(["plot", *runs, "-o", str(tmp_path / "svg"), "--format", "svg"], capsys)
    assert [p.suffix for p in (tmp_path / "svg").iterdir()] == [".svg", ".svg"]


def test_report_commands_never_import_torch(runs, tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from llmbench.cli import main
        runs = {runs!r}
        main(["compare", *runs])
        for fmt in ("json", "csv", "md", "html", "latex"):
            main(["export", *runs, "--format", fmt, "-o", {str(tmp_path)!r} + "/report." + fmt])
        main(["plot", *runs, "-o", {str(tmp_path / "plots")!r}])
        heavy = [m for m in ("torch", "transformers", "accelerate") if m in sys.modules]
        assert not heavy, heavy
        print("NO-TORCH-OK")
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "NO-TORCH-OK" in proc.stdout


def test_metric_names_from_records_are_shown_as_written_not_as_markup(runs, capsys, monkeypatch, tmp_path):
    """A metric name is record data (lm-eval's, another tool's): rich must not read it as markup."""
    import shutil

    name = "[bold]score[/]"
    copies = []
    for run in runs:
        dest = tmp_path / Path(run).name
        shutil.copytree(run, dest)
        record = json.loads((dest / "run.json").read_text())
        for row in record["rows"]:
            if row["quality"]:
                row["quality"] = {name: {**next(iter(row["quality"].values())), "library": "lm-eval"}}
        (dest / "run.json").write_text(json.dumps(record))
        copies.append(str(dest))
    monkeypatch.setenv("COLUMNS", "220")
    code, out, err = _main(["compare", *copies], capsys)
    assert code == 0, err
    assert f"{name} [95% CI]" in out
