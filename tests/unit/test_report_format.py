"""One formatter for every command: the same row's parameter count, bytes, durations and energy print
identically in `run`'s table, `compare`, every export and `gate` (they used to disagree: a 999,885,952-parameter
model was "1000M" in the run table and "1B" in compare)."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from report_fixtures import make_row_and_samples
from rich.console import Console

from llmbench.cli import main
from llmbench.records import RunRecord
from llmbench.records.store import write_run, write_samples
from llmbench.report import build_comparison, load_runs
from llmbench.report.exporters import export
from llmbench.report.format import (
    fmt_bytes,
    fmt_field,
    fmt_field_change,
    fmt_joules,
    fmt_params,
    fmt_roofline,
    fmt_seconds,
    roofline_is_lower_bound,
    roofline_percent,
)

PARAMS = 999_885_952


@pytest.mark.parametrize("n, text", [
    (None, "?"), (999, "999"), (1000, "1K"), (96_000, "96K"), (134_515_008, "135M"), (268_098_176, "268M"),
    (999_400_000, "999M"), (999_885_952, "1B"), (1_500_000_000, "1.5B"), (7_241_732_096, "7.2B"),
    (9_960_000_000, "10B"), (70_553_706_496, "71B"),
])
def test_parameter_counts(n, text):
    assert fmt_params(n) == text


@pytest.mark.parametrize("n, text", [
    (None, "n/a"), (512, "512 B"), (1000, "0.977 KiB"), (1.05e9, "0.978 GiB"), (1.52e9, "1.42 GiB"),
    (994 * 2**20, "994 MiB"), (1023 * 2**20, "0.999 GiB"), (14.5e9, "13.5 GiB"),
])
def test_bytes(n, text):
    assert fmt_bytes(n) == text


def test_durations_energy_and_fields():
    assert [fmt_seconds(s) for s in (None, 0.0337, 0.155, 2.5)] == ["n/a", "33.7 ms", "155 ms", "2.5 s"]
    assert fmt_joules(None) == "n/a" and fmt_joules(0.21) == "0.21 J"
    assert fmt_field("memory.peak_rss_bytes", 1.52e9) == "1.42 GiB"
    assert fmt_field("latency.ttft_s.p50", 0.0337) == "33.7 ms"
    assert fmt_field("latency.tokens_per_s", 95.148) == "95.1"
    assert fmt_field("energy.joules_per_sample", 0.21) == "0.21 J"
    assert fmt_field("quality.bleu", 43.74812) == "43.75"
    assert fmt_field_change("memory.peak_rss_bytes", -2**20) == "-1 MiB"
    assert fmt_field_change("latency.tpot_s.p50", 0.00312) == "+3.12 ms"
    assert fmt_field_change("quality.exact_match", -15.0) == "-15"


def test_roofline_percent():
    assert [fmt_roofline(v) for v in (None, 57.4, 9.94, 9.96, 0.4234, 130.2)] == \
        ["n/a", "57%", "9.9%", "10%", "0.42%", "130%"]
    assert roofline_percent({"roofline": {"percent_of_peak": 12.5}}) == 12.5
    assert roofline_percent({"roofline": {"percent_of_peak": None, "reason": "peak bandwidth not measured"}}) is None
    assert roofline_percent({}) is None and roofline_percent(None) is None  # records from before the roofline
    assert fmt_field("latency.roofline.percent_of_peak", 31.2) == "31%"
    # KV-cache bytes unknown: the weights alone, a lower bound, marked so
    weights_only = {"roofline": {"percent_of_peak": 9.4,
                                 "reason": "KV-cache bytes unknown: weights only (a lower bound)"}}
    assert roofline_is_lower_bound(weights_only) and not roofline_is_lower_bound({"roofline": {"reason": None}})
    assert fmt_roofline(9.4, lower_bound=True) == "≥9.4%"
    assert fmt_field_change("latency.roofline.percent_of_peak", -3.14) == "-3.1 points"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One run of one row whose model has 999,885,952 parameters."""
    row, samples = make_row_and_samples("smollm2-135m", "summarization")
    row.model["parameters"] = PARAMS
    record = RunRecord(run_id="20250301-120000-one", created_at="2025-03-01T12:00:00+00:00", command="x",
                       environment={"hostname": "h"}, settings={"batch_size": 1, "setting": "latency"}, rows=[row])
    path = write_run(record, tmp_path_factory.mktemp("results"))
    write_samples(path.parent, samples)
    return path.parent


def _main(args, capsys) -> str:
    from llmbench.cli.console import err, out

    out.cache_clear()
    err.cache_clear()
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        assert exc.code == 0, capsys.readouterr().err
    return capsys.readouterr().out


def test_one_row_prints_the_same_numbers_in_every_command(run_dir, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "300")
    from llmbench.cli.tables import run_table
    from llmbench.records.store import read_run

    record = read_run(run_dir)
    row = record.rows[0]
    expected = {
        "params": "1B",
        "ttft": fmt_seconds(row.latency["ttft_s"]["p50"]),
        "tpot": fmt_seconds(row.latency["tpot_s"]["p50"]),
        "memory": fmt_bytes(row.memory["peak_rss_bytes"]),
        "energy": fmt_joules(row.energy["joules_per_sample"]),
    }
    roof = fmt_roofline(row.latency["roofline"]["percent_of_peak"])
    assert roof.endswith("%") and roof != "n/a"
    # the rule itself, not only agreement: 1.05e9 bytes and the fixture's timings
    assert expected["memory"] == "0.978 GiB" and expected["energy"] == "0.21 J"
    assert expected["ttft"].endswith(" ms") and expected["tpot"].endswith(" ms")

    console = Console(record=True, width=300, file=io.StringIO())
    console.print(run_table(record))
    outputs = {"run": console.export_text()}
    outputs["compare"] = _main(["compare", run_dir], capsys)
    merged = load_runs([str(run_dir)])
    cmp = build_comparison(merged)
    for fmt in ("md", "html", "latex"):
        outputs[fmt] = export(cmp, merged, fmt, charts=False)
    rules = ["--rule", "latency.ttft_s.p50:+15%", "--rule", "latency.tpot_s.p50:+15%",
             "--rule", "memory.peak_rss_bytes:+10%", "--rule", "energy.joules_per_sample:+15%"]
    md = tmp_path / "gate.md"
    outputs["gate"] = _main(["gate", "--baseline", run_dir, "--candidate", run_dir, *rules, "--markdown", md],
                            capsys)
    outputs["gate markdown"] = md.read_text()
    for where, text in outputs.items():
        assert "1000M" not in text, where
        assert re.search(rf"(?<![\w.]){expected['params']}(?!\w)", text), where  # "1B" as a whole cell or "(1B)"
        for what in ("ttft", "tpot", "memory", "energy"):
            assert expected[what] in text, (where, what, expected[what])
        if not where.startswith("gate"):  # the gate shows only the fields its rules name
            assert (roof.replace("%", r"\%") if where == "latex" else roof) in text, (where, "% roofline")
    # the machine-readable exports keep the raw numbers
    [line] = list(csv.DictReader(io.StringIO(export(cmp, merged, "csv"))))
    assert int(line["parameters"]) == PARAMS and float(line["peak_memory_bytes"]) == row.memory["peak_rss_bytes"]
    data = json.loads(export(cmp, merged, "json"))
    assert data["rows"][0]["model"]["parameters"] == PARAMS
    percent = row.latency["roofline"]["percent_of_peak"]
    assert float(line["roofline_percent"]) == pytest.approx(percent, rel=1e-5)
    assert data["comparison"]["tasks"][0]["results"][0]["roofline_percent"] == pytest.approx(percent)


def test_run_table_keeps_variant_names_whole_in_120_columns():
    """Variant rows (``[bnb-4bit]``, ``[llamacpp]``) and a served load level: every name whole, every line within
    120 columns, the % of roofline shown ('n/a' where the row has none)."""
    from llmbench.cli.tables import run_table

    rows = []
    for suffix, percent in (("", 9.4), ("[bnb-4bit]", 31.2), ("[llamacpp]", None), ("@c4", 48.0)):
        for task in ("translation-en-fr", "summarization"):
            row, _ = make_row_and_samples("smollm2-135m", task)
            row.model["name"] += suffix
            row.latency["roofline"]["percent_of_peak"] = percent
            rows.append(row)
    record = RunRecord(run_id="r", created_at="2025-03-01T12:00:00+00:00", command="x", environment={},
                       settings={"batch_size": 1, "setting": "latency"}, rows=rows)
    console = Console(record=True, width=120, file=io.StringIO())
    console.print(run_table(record))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 120
    for name in ("smollm2-135m[bnb-4bit] (135M)", "smollm2-135m[llamacpp] (135M)", "smollm2-135m@c4 (135M)",
                 "translation-en-fr", "summarization"):
        assert name in text, name
    assert "roofline" in text and "31%" in text and "9.4%" in text and "48%" in text
    [llamacpp] = [line for line in text.splitlines() if "[llamacpp]" in line][:1]
    assert "n/a" in llamacpp and "ms" in llamacpp  # its numbers on its own line, the roofline n/a


def test_an_undecided_decision_no_count_can_settle_says_why():
    """No number of examples decides either when the estimate is exactly the margin or when its spread is
    unknown; the text names the one that holds."""
    from llmbench.report.format import decision_details
    from llmbench.stats.noninferiority import Decision

    on_margin = Decision("undecided", "ratio", 0.95, 0.90, 1.00, 0.95, 10, se=0.02)
    no_spread = Decision("undecided", "ratio", 0.97, 0.90, 1.04, 0.95, 10, se=None)
    assert decision_details(on_margin, "big", "BLEU", None).endswith("(the estimate sits on the margin)")
    assert decision_details(no_spread, "big", "BLEU", None).endswith("(its spread is unknown)")
