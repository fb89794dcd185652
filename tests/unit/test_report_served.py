"""Served rows (backend openai, one per load level) in `compare`, the exports and the run table: request and
output-token throughput, goodput, failed requests and device-wide energy shown only where a row has them;
the device note worded for a server; cost per correct answer over a level's wall time."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path

from report_fixtures import environment, make_row_and_samples, two_runs
from rich.console import Console

from llmbench.records import ResultRow, RunRecord
from llmbench.records.store import write_run, write_samples
from llmbench.report import build_comparison, load_runs
from llmbench.report.cost import correct_cost
from llmbench.report.exporters import export
from llmbench.report.exporters.csv import CSV_COLUMNS, SERVED_CSV_COLUMNS
from llmbench.report.format import field_kind, fmt_field, fmt_goodput, fmt_requests_rate
from llmbench.report.table import (
    DEVICE_WIDE,
    DEVICE_WIDE_NOTE,
    served_columns,
    served_notes,
    table_cells,
    table_headers,
)

RUN = "20250303-120000-served"
TASK = "translation-en-fr"


def served_row(name: str, concurrency: int, failed: int = 0, slo: bool = True,
               status: str = "ok") -> tuple[ResultRow, list[dict]]:
    """A served level row, shaped as llmbench.served_rows writes it, from the fixture's smollm2 answers."""
    row, samples = make_row_and_samples("smollm2-135m", TASK)
    row = copy.deepcopy(row)
    suffix = f"@c{concurrency}" if concurrency > 1 else ""
    n = len(samples)
    row.model.update(name=f"{name}{suffix}", backend="openai", device="server", dtype=None, server_model=name,
                     load={"concurrency": concurrency, "rate": None, "arrivals": "closed-loop",
                           "suffix": suffix, "duration_s": 2.0, "requests": n, "max_in_flight": concurrency,
                           "seed": None})
    if suffix:
        row.model["base_name"] = name
    lat = row.latency
    lat.update(setting="load" if suffix else "latency", requests={"sent": n, "ok": n - failed, "failed": failed},
               duration_s=2.0, requests_per_s=(n - failed) / 2.0,
               output_tokens_per_s=lat["total_new_tokens"] / 2.0, max_in_flight=concurrency,
               itl_s=lat["tpot_s"], token_source="server-usage")
    del lat["generate_s"]
    if slo:
        lat["goodput"] = {"slo": {"ttft_s": 0.5}, "met": n - failed - 1, "of": n,
                          "fraction": (n - failed - 1) / n, "requests_per_s": (n - failed - 1) / 2.0}
    row.energy.update(scope="device-wide (GPU 0, other work on it included)", method="nvml-energy-counter")
    row.memory = {"weights_bytes": None, "server_used_bytes": 2e9, "method": "nvml", "scope": "device-wide"}
    if status == "failed":
        row.status = "failed"
        row.error = f"{failed} of {n} requests failed (first: HTTP 500: engine crashed)"
    samples = [dict(s, model=row.model["name"], status="ok") for s in samples]
    return row, samples


def write_served_run(out: Path, levels=((1, 0, "ok"), (4, 3, "ok"))) -> Path:
    """One run: gemma3-270m in process (cpu) beside a served model's levels."""
    rows, samples = [], []
    row, s = make_row_and_samples("gemma3-270m", TASK)
    rows.append(row)
    samples += s
    for concurrency, failed, status in levels:
        row, s = served_row("smollm2-served", concurrency, failed, status=status)
        rows.append(row)
        samples += s
    record = RunRecord(run_id=RUN, created_at="2025-03-03T12:00:00+00:00", command="llmbench run ...",
                       environment=environment(), settings={"batch_size": 1, "setting": "latency", "seed": 0,
                                                            "max_new_tokens": 64, "tasks": [TASK]}, rows=rows)
    path = write_run(record, out)
    write_samples(path.parent, samples)
    return path.parent


def _compare(tmp_path, **kw):
    merged = load_runs([str(write_served_run(tmp_path, **kw))])
    return merged, build_comparison(merged, resamples=50)


def test_formatters():
    assert fmt_requests_rate(3.214) == "3.21" and fmt_requests_rate(142.3) == "142"
    assert fmt_requests_rate(None) == "n/a"
    assert fmt_goodput(0.85, 10.2) == "85% (10.2/s)" and fmt_goodput(None, 1.0) == "n/a"
    assert field_kind("latency.requests_per_s") == "rate" and field_kind("latency.output_tokens_per_s") == "rate"
    assert field_kind("latency.itl_s.p99") == "seconds"
    assert fmt_field("latency.requests_per_s", 6.0) == "6.0"


def test_served_columns_cells_and_marks(tmp_path):
    _, cmp = _compare(tmp_path)
    [tc] = cmp.tasks
    headers = table_headers(tc)
    assert served_columns(tc) == ["req/s", "out tok/s", "goodput"]
    assert headers[5:9] == ["tok/s", "req/s", "out tok/s", "goodput"]
    cells = {c[0].removesuffix(" (ref)"): dict(zip(headers, c)) for c in table_cells(tc)}
    assert all(len(c) == len(headers) for c in table_cells(tc))
    level = cells["smollm2-served@c4"]
    assert level["req/s"] == "4.5" and level["goodput"] == "67% (4/s)"
    assert level["out tok/s"] == fmt_field("latency.tokens_per_s", tc.result("smollm2-served@c4").output_tokens_per_s)
    assert level["J/sample"].endswith(f" {DEVICE_WIDE}")
    inproc = cells["gemma3-270m"]
    assert inproc["req/s"] == inproc["out tok/s"] == inproc["goodput"] == "n/a"
    assert DEVICE_WIDE not in inproc["J/sample"]
    notes = served_notes(tc)
    assert "smollm2-served@c4: 3 of 12 requests failed; its figures are over the answered ones" in notes
    assert DEVICE_WIDE_NOTE in notes and not any("smollm2-served:" in n for n in notes)


def test_goodput_column_only_when_a_row_has_it(tmp_path):
    rows, samples = [], []
    for model in ("gemma3-270m",):
        row, s = make_row_and_samples(model, TASK)
        rows.append(row)
        samples += s
    row, s = served_row("served", 4, slo=False)
    rows.append(row)
    samples += s
    record = RunRecord(run_id=RUN, created_at="2025-03-03T12:00:00+00:00", command="x", environment=environment(),
                       settings={"batch_size": 1, "setting": "latency", "tasks": [TASK]}, rows=rows)
    path = write_run(record, tmp_path)
    write_samples(path.parent, samples)
    [tc] = build_comparison(load_runs([str(path.parent)]), resamples=0).tasks
    assert served_columns(tc) == ["req/s", "out tok/s"]


def test_a_failed_level_says_how_many_requests_failed(tmp_path):
    _, cmp = _compare(tmp_path, levels=((1, 0, "ok"), (4, 5, "failed")))
    [tc] = cmp.tasks
    from llmbench.report.table import failures

    assert any(f.startswith("smollm2-served@c4: 5 of 12 requests failed") for f in failures(tc))
    bad = tc.result("smollm2-served@c4")
    assert not bad.ok and bad.requests_failed == 5 and bad.requests_sent == 12


def test_in_process_comparisons_keep_their_shape(tmp_path):
    """No served row: no extra column, no CSV column, no JSON key, no note (the goldens check the bytes)."""
    merged = load_runs([str(p) for p in two_runs(tmp_path)])
    cmp = build_comparison(merged, resamples=0)
    for tc in cmp.tasks:
        assert served_columns(tc) == [] and served_notes(tc) == []
        assert not any(h in table_headers(tc) for h in ("req/s", "out tok/s", "goodput"))
    header = export(cmp, merged, "csv").splitlines()[0].split(",")
    assert header[:len(CSV_COLUMNS)] == CSV_COLUMNS and not set(SERVED_CSV_COLUMNS) & set(header)
    data = json.loads(export(cmp, merged, "json"))
    result = data["comparison"]["tasks"][0]["results"][0]
    assert not set(SERVED_CSV_COLUMNS) & set(result)
    assert not any("server" in n for n in cmp.notes)


def test_exports_show_the_served_figures(tmp_path):
    merged, cmp = _compare(tmp_path)
    md = export(cmp, merged, "md")
    assert "| req/s | out tok/s | goodput |" in md and f"0.47 J {DEVICE_WIDE}" not in md
    assert DEVICE_WIDE in md and f"- note: {DEVICE_WIDE_NOTE}" in md
    assert "- note: smollm2-served@c4: 3 of 12 requests failed" in md
    tex = export(cmp, merged, "latex")
    assert r"$^\ddagger$" in tex and "% note: smollm2-served@c4: 3 of 12 requests failed" in tex
    html = export(cmp, merged, "html", charts=False)
    assert "<th>req/s</th>" in html or "req/s" in html
    assert "3 of 12 requests failed" in html
    rows = list(csv.DictReader(io.StringIO(export(cmp, merged, "csv"))))
    by = {r["model"]: r for r in rows}
    assert by["smollm2-served@c4"]["requests_per_s"] == "4.5"
    assert by["smollm2-served@c4"]["requests_failed"] == "3" and by["smollm2-served@c4"]["requests_sent"] == "12"
    assert by["smollm2-served@c4"]["energy_scope"].startswith("device-wide")
    assert by["gemma3-270m"]["requests_per_s"] == "" and by["gemma3-270m"]["energy_scope"] == ""
    data = json.loads(export(cmp, merged, "json"))
    results = {r["model"]: r for r in data["comparison"]["tasks"][0]["results"]}
    assert results["smollm2-served@c4"]["goodput_fraction"] == 8 / 12
    assert "requests_per_s" not in results["gemma3-270m"]


def test_the_device_note_informs_about_served_rows(tmp_path):
    _, cmp = _compare(tmp_path)
    [note] = [n for n in cmp.notes if "server" in n]
    assert note == (f"rows of {TASK}: served rows ran on a server, the others on cpu: their latency includes the "
                    "network and the server's batching")
    assert not any("different devices" in n for n in cmp.notes)


def test_cost_per_correct_answer_of_a_served_level_uses_its_wall_time():
    row, samples = served_row("served", 4)
    row.quality = {"exact_match": {"value": 50.0, "scale": "0-100"}}
    lines = {i: dict(s, scores={"exact_match": 100.0 if i % 2 else 0.0}) for i, s in enumerate(samples)}
    cost = correct_cost(row, lines)
    assert cost.correct == 6 and cost.seconds_per_correct == 2.0 / 6  # duration_s, not the e2e summed
    inproc, _ = make_row_and_samples("gemma3-270m", TASK)
    inproc.quality = row.quality
    assert correct_cost(inproc, lines).seconds_per_correct == inproc.latency["generate_s"] / 6


def test_run_table_shows_served_throughput_within_120_columns():
    from llmbench.cli.tables import run_table

    rows = []
    for task in (TASK, "summarization"):
        row, _ = make_row_and_samples("smollm2-135m", task)
        row.model["name"] += "[bnb-4bit]"
        rows.append(row)
    level, _ = served_row("smollm2-served", 4, failed=3)
    rows.append(level)
    record = RunRecord(run_id="r", created_at="2025-03-01T12:00:00+00:00", command="x", environment={},
                       settings={"batch_size": 1, "setting": "latency"}, rows=rows)
    console = Console(record=True, width=120, file=io.StringIO())
    console.print(run_table(record))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 120
    assert "req/s" in text and "out tok/s" in text
    assert "4.5" in text and fmt_field("latency.tokens_per_s", level.latency["output_tokens_per_s"]) in text
    assert "smollm2-served@c4 (135M)" in text  # whole, on one line

    plain = RunRecord(run_id="r", created_at="2025-03-01T12:00:00+00:00", command="x", environment={},
                      settings={"batch_size": 1, "setting": "latency"}, rows=rows[:2])
    console = Console(record=True, width=120, file=io.StringIO())
    console.print(run_table(plain))
    assert "req/s" not in console.export_text()
