"""The exporter seam: every format is a registered class behind one protocol, and a new one is one
registration away from `llmbench export --format NAME` (here, a toy format defined by the test suite)."""

from __future__ import annotations

import pytest
from cli_checks import one_line_error
from report_fixtures import two_runs

from llmbench.cli import main
from llmbench.report.exporters import EXPORTERS, Exporter, ExportOptions, format_for, format_names, get_exporter


class ToyExporter:
    """One line per model x task: 'task model params'."""

    name = "toy"
    suffixes = (".toy",)

    def export(self, cmp, merged, options: ExportOptions) -> str:
        from llmbench.report.format import fmt_params

        return "".join(f"{t.task} {r.model} {fmt_params(r.parameters)}\n" for t in cmp.tasks for r in t.results)


@pytest.fixture
def toy():
    EXPORTERS.register("toy", ToyExporter)  # the one registration a new format needs
    yield
    EXPORTERS.unregister("toy")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return [str(p) for p in two_runs(tmp_path_factory.mktemp("results"))]


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


def test_built_in_formats_are_registered_classes_behind_one_protocol():
    assert format_names() == ["json", "csv", "md", "html", "latex"]
    for name in format_names():
        exporter = get_exporter(name)
        assert isinstance(exporter, Exporter) and exporter.name == name and exporter.suffixes
    assert format_for("x.markdown", None) == "md" and format_for("x.htm", None) == "html"


def test_a_toy_exporter_registered_by_the_tests_works_through_the_cli(toy, runs, tmp_path, capsys):
    out = tmp_path / "out.toy"
    code, _, err = _main(["export", *runs, "--format", "toy", "-o", out], capsys)
    assert code == 0, err
    assert "wrote toy" in err
    lines = out.read_text().splitlines()
    assert "translation-en-fr gemma3-1b 1B" in lines and "summarization smollm2-135m 135M" in lines
    by_suffix = tmp_path / "again.toy"  # its suffix selects it too
    code, _, err = _main(["export", *runs, "-o", by_suffix], capsys)
    assert code == 0, err
    assert by_suffix.read_text() == out.read_text()


def test_unknown_format_is_one_line_with_a_suggestion(runs, tmp_path, capsys):
    code, _, err = _main(["export", *runs, "--format", "lattex", "-o", tmp_path / "x.tex"], capsys)
    one_line_error(code, err, "unknown export format 'lattex'")
    assert "did you mean latex?" in err and "json, csv, md, html, latex" in err
    assert not (tmp_path / "x.tex").exists()


def test_unknown_extension_names_the_formats(runs, tmp_path, capsys):
    code, _, err = _main(["export", *runs, "-o", tmp_path / "x.toy"], capsys)  # not registered here
    one_line_error(code, err, "cannot tell the format of")
    assert "pass --format (json, csv, md, html, latex)" in err


def test_json_export_is_strict_json_even_with_an_unbounded_ci(runs):
    import json

    from llmbench.report import build_comparison, load_runs
    from llmbench.report.exporters import export

    merged = load_runs(runs)
    cmp = build_comparison(merged)
    r = cmp.tasks[0].results[0]
    r.quality_ci_high = float("inf")
    text = export(cmp, merged, "json")
    assert "Infinity" not in text and "NaN" not in text
    data = json.loads(text)
    assert data["comparison"]["tasks"][0]["results"][0]["quality_ci_high"] is None
